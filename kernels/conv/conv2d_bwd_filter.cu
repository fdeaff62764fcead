// conv family, conv2d backward-filter:
//   dw[k, c, r, s] = sum over n, oh, ow of dy[n, k, oh, ow] x[n, grp*Cg + c, ih, iw].
// The ladder (every one deterministic: no atomics, sums in a fixed order):
//   1 direct     one thread per dw element, the whole sum in one thread; any strides
//   2 igemm      implicit GEMM with shared-memory tiles (64x64x16, 4x4 per thread), the
//                reduction split into slices whose partial tiles go to the workspace and
//                are added in slice order by a second kernel; any strides
//   4 depthwise  groups == C: one block per (output channel, slice of the batch) keeps the
//                R*S tap sums of its threads, reduces them in the block, writes partials
//                that a second kernel adds in slice order; NCHW only
// Launcher dlk_k_conv2d_bwd_filter at the end; rows in host/conv/conv_cuda.c.
//
// The implicit GEMM of one group grp: rows i over the group's Kg output channels, columns
// j = (c, r, s) over Cg*R*S, reduction over p = (n, oh, ow) in N*Ho*Wo:
//   A[i, p] = dy[n, grp*Kg + i, oh, ow],  B[p, j] = x[n, grp*Cg + c, ih, iw] (0 outside).
#include <stdio.h>

#include "conv.cuh"

using namespace dlk;
using namespace dlk::conv;

namespace {

// ==== 1 direct ============================================================================
// Thread mapping: one thread per dw element (k, c, r, s), grid-stride over the row-major
// index of [K, Cg, R, S]; each sums over (n, oh, ow) in that order. No shared memory.
template <typename T>
__global__ void bwd_filter_direct_kernel(dlk_k_conv2d_bwd_filter_desc a) {
  typedef typename AccT<T>::type A;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, total = g.k * cg * g.r * g.s;
  for (int64_t i = gidx(); i < total; i += gstride()) {
    const int64_t s = i % g.s, r = (i / g.s) % g.r, c = (i / (g.s * g.r)) % cg, k = i / (g.s * g.r * cg);
    const int64_t ci = (k / kg) * cg + c;
    A acc = 0;
    for (int64_t n = 0; n < g.n; n++)
      for (int64_t oh = 0; oh < g.ho; oh++) {
        const int64_t ih = in_pos(oh, r, g.stride[0], g.pad[0], g.dil[0]);
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t ow = 0; ow < g.wo; ow++) {
          const int64_t iw = in_pos(ow, s, g.stride[1], g.pad[1], g.dil[1]);
          if (iw < 0 || iw >= g.w) continue;
          acc += ld4<T>(a.dy, n, k, oh, ow) * ld4<T>(a.x, n, ci, ih, iw);
        }
      }
    st4<T>(a.dw, k, c, r, s, acc);
  }
}

// ==== 2 implicit GEMM with split-K partials ================================================
// Block tile 64 output channels (i) x 64 taps (j) x 16 pixels (p), 256 threads, 4x4
// outputs each (rows ty*4.., columns tx*4..). Grid (ceil(Kg / 64), ceil(Cg*R*S / 64),
// groups * slices): block z = grp * slices + slice sums p over its slice's range of
// ceil(P / slices) pixels (rounded to 16) and writes its tile to
//   ws[slice][k][j]  (accumulation type, k over all K, j over Cg*R*S);
// a second kernel (one thread per dw element) adds the slices in order. Each k-step a
// thread decodes one pixel p = t % 16 of the step and loads A for channels t/16 + 16q and
// B for taps t/16 + 16q (q < 4) into As[16][64], Bs[16][64] (pixel-major): 16 consecutive
// threads read 16 consecutive pixels.
constexpr int IG_BM = 64, IG_BN = 64, IG_BK = 16, IG_THREADS = 256, MAX_SLICES = 64;

struct Split {
  int64_t slices, chunk; /* chunk: pixels per slice, a multiple of IG_BK */
};

// Enough slices that the tiles fill a large GPU (about 1024 blocks), each at least 1024
// pixels long, at most MAX_SLICES.
Split split_for(const dlk_k_conv2d_geom &g) {
  const int64_t kg = g.k / g.groups, crs = (g.c / g.groups) * g.r * g.s, P = g.n * g.ho * g.wo;
  const int64_t tiles = ((kg + IG_BM - 1) / IG_BM) * ((crs + IG_BN - 1) / IG_BN) * g.groups;
  int64_t s = 1024 / (tiles > 0 ? tiles : 1);
  const int64_t by_len = (P + 1023) / 1024;
  if (s > by_len) s = by_len;
  if (s > MAX_SLICES) s = MAX_SLICES;
  if (s < 1) s = 1;
  while (s > 1 && g.groups * s > 65535) s--;
  Split sp;
  sp.chunk = (((P + s - 1) / s) + IG_BK - 1) / IG_BK * IG_BK;
  if (sp.chunk < IG_BK) sp.chunk = IG_BK;
  sp.slices = (P + sp.chunk - 1) / sp.chunk;
  if (sp.slices < 1) sp.slices = 1;
  return sp;
}

template <typename T>
__global__ __launch_bounds__(IG_THREADS) void bwd_filter_igemm_kernel(dlk_k_conv2d_bwd_filter_desc a, int64_t slices,
                                                                      int64_t chunk,
                                                                      typename AccT<T>::type *ws) {
  typedef typename AccT<T>::type A;
  __shared__ A As[IG_BK][IG_BM];
  __shared__ A Bs[IG_BK][IG_BN];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, RS = g.r * g.s, CRS = cg * RS;
  const int64_t grp = blockIdx.z / slices, slice = blockIdx.z % slices;
  const int64_t P = g.n * g.ho * g.wo, p_begin = slice * chunk, p_end = p_begin + chunk < P ? p_begin + chunk : P;
  const int64_t i0 = (int64_t)blockIdx.x * IG_BM, j0 = (int64_t)blockIdx.y * IG_BN;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16, lp = t % IG_BK, lr = t / IG_BK; /* lr in 0..15 */

  // The 4 channels (A) and 4 taps (B) this thread loads, decoded once.
  bool iok[4], jok[4];
  int64_t jc[4], jr[4], js[4];
  const T *dyk[4];
#pragma unroll
  for (int q = 0; q < 4; q++) {
    const int64_t i = i0 + lr + 16 * q;
    iok[q] = i < kg;
    dyk[q] = (const T *)a.dy.data + (grp * kg + (iok[q] ? i : 0)) * a.dy.st[1];
    const int64_t j = j0 + lr + 16 * q;
    jok[q] = j < CRS;
    const int64_t jj = jok[q] ? j : 0;
    jc[q] = grp * cg + jj / RS, jr[q] = (jj % RS) / g.s, js[q] = jj % g.s;
  }

  A acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0;

  for (int64_t p0 = p_begin; p0 < p_end; p0 += IG_BK) {
    const int64_t p = p0 + lp;
    const bool pok = p < p_end;
    int64_t n = 0, oh = 0, ow = 0;
    if (pok) ow = p % g.wo, oh = (p / g.wo) % g.ho, n = p / (g.wo * g.ho);
#pragma unroll
    for (int q = 0; q < 4; q++) {
      A av = 0, bv = 0;
      if (pok && iok[q]) av = to_acc(dyk[q][n * a.dy.st[0] + oh * a.dy.st[2] + ow * a.dy.st[3]]);
      if (pok && jok[q]) {
        const int64_t ih = in_pos(oh, jr[q], g.stride[0], g.pad[0], g.dil[0]);
        const int64_t iw = in_pos(ow, js[q], g.stride[1], g.pad[1], g.dil[1]);
        if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) bv = ld4<T>(a.x, n, jc[q], ih, iw);
      }
      As[lp][lr + 16 * q] = av;
      Bs[lp][lr + 16 * q] = bv;
    }
    __syncthreads();
#pragma unroll
    for (int kr = 0; kr < IG_BK; kr++) {
      A ar[4], br[4];
#pragma unroll
      for (int i = 0; i < 4; i++) ar[i] = As[kr][ty * 4 + i], br[i] = Bs[kr][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += ar[i] * br[j];
    }
    __syncthreads();
  }
  A *out = ws + slice * g.k * CRS;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t ii = i0 + ty * 4 + i;
    if (ii >= kg) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t jj = j0 + tx * 4 + j;
      if (jj < CRS) out[(grp * kg + ii) * CRS + jj] = acc[i][j];
    }
  }
}

// Second pass: dw[k, c, r, s] = sum over slices of ws[slice][k][(c, r, s)], in slice order.
// Thread mapping: one thread per dw element, grid-stride; no shared memory.
template <typename T>
__global__ void bwd_filter_slices_kernel(dlk_k_conv2d_bwd_filter_desc a, int64_t slices,
                                         const typename AccT<T>::type *ws) {
  typedef typename AccT<T>::type A;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, RS = g.r * g.s, CRS = cg * RS, total = g.k * CRS;
  for (int64_t i = gidx(); i < total; i += gstride()) {
    A v = 0;
    for (int64_t sl = 0; sl < slices; sl++) v += ws[sl * total + i];
    const int64_t k = i / CRS, j = i % CRS;
    st4<T>(a.dw, k, j / RS, (j % RS) / g.s, j % g.s, v);
  }
}

// ==== 4 depthwise =========================================================================
// groups == C, K = mult * C: dw[k, 0, r, s] sums dy[n, k] x[n, k / mult] products.
// Grid (K, slices): block (k, slice) takes the planes n of its slice; its 256 threads
// stride over the (n, oh, ow) of those planes (consecutive threads on consecutive ow) and
// accumulate all R*S taps in a per-thread array (at most DW_TAPS); each tap is then
// reduced over the block (block_sum, fixed order) and written to ws[slice][k][tap]. The
// second pass adds the slices in order. Shared memory: block_sum's 32 partials.
constexpr int DW_THREADS = 256, DW_TAPS = 25;

template <typename T>
__global__ __launch_bounds__(DW_THREADS) void bwd_filter_depthwise_kernel(dlk_k_conv2d_bwd_filter_desc a,
                                                                          int64_t planes_per_slice,
                                                                          typename AccT<T>::type *ws) {
  typedef typename AccT<T>::type A;
  __shared__ A red[32];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t k = blockIdx.x, slice = blockIdx.y, c = k / (g.k / g.c), RS = g.r * g.s;
  const int64_t n0 = slice * planes_per_slice, n1 = n0 + planes_per_slice < g.n ? n0 + planes_per_slice : g.n;
  const int64_t HW = g.ho * g.wo;
  A acc[DW_TAPS];
#pragma unroll
  for (int q = 0; q < DW_TAPS; q++) acc[q] = 0;
  for (int64_t e = threadIdx.x; e < (n1 - n0) * HW; e += DW_THREADS) {
    const int64_t n = n0 + e / HW, oh = (e % HW) / g.wo, ow = e % g.wo;
    const A d = ld4<T>(a.dy, n, k, oh, ow);
#pragma unroll
    for (int q = 0; q < DW_TAPS; q++) {
      if (q >= RS) break;
      const int64_t ih = in_pos(oh, q / g.s, g.stride[0], g.pad[0], g.dil[0]);
      const int64_t iw = in_pos(ow, q % g.s, g.stride[1], g.pad[1], g.dil[1]);
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) acc[q] += d * ld4<T>(a.x, n, c, ih, iw);
    }
  }
  for (int q = 0; q < RS; q++) {
    A v = 0;
#pragma unroll
    for (int u = 0; u < DW_TAPS; u++) /* static register indexing: pick acc[q] */
      if (u == q) v = acc[u];
    v = block_sum(v, red);
    if (threadIdx.x == 0) ws[(slice * g.k + k) * RS + q] = v;
  }
}

int64_t dw_slices(const dlk_k_conv2d_geom &g, int64_t *per) {
  // about 1024 blocks in all, each at least one plane
  int64_t s = 1024 / (g.k > 0 ? g.k : 1);
  if (s < 1) s = 1;
  if (s > g.n) s = g.n;
  if (s > 65535) s = 65535;
  if (s < 1) s = 1;
  *per = (g.n + s - 1) / s;
  if (*per < 1) *per = 1;
  return (g.n + *per - 1) / *per;
}

bool fail(char *why, size_t n, const char *msg) {
  if (why && n) snprintf(why, n, "%s", msg);
  return false;
}

bool dw_ok(const dlk_k_conv2d_bwd_filter_desc *a, char *why, size_t n) {
  const dlk_k_conv2d_geom &g = a->g;
  if (g.groups != g.c || g.c == 0) return fail(why, n, "not depthwise (groups != C)");
  if (a->dy.st[3] != 1 || a->x.st[3] != 1)
    return fail(why, n, "x and dy must be NCHW (unit W stride); channels-last depthwise runs on igemm");
  if (g.r * g.s > DW_TAPS) return fail(why, n, "more than 25 filter taps (5x5)");
  if (g.k > 2147483647) return fail(why, n, "too many channels for one grid row");
  return true;
}

size_t acc_size(int dtype) {
  return dtype == DLK_F64 ? 8 : 4;
}

}  // namespace

extern "C" int dlk_k_conv2d_bwd_filter_supports(const dlk_k_conv2d_bwd_filter_desc *a, int impl, char *why,
                                                size_t n) {
  switch (impl) {
    case 1:
    case 2: return 1;
    case 4: return dw_ok(a, why, n);
    default: return fail(why, n, "no such kernel");
  }
}

extern "C" size_t dlk_k_conv2d_bwd_filter_ws(const dlk_k_conv2d_bwd_filter_desc *a, int impl) {
  const dlk_k_conv2d_geom &g = a->g;
  const size_t dw_elems = (size_t)(g.k * (g.c / (g.groups ? g.groups : 1)) * g.r * g.s);
  if (impl == 2) return (size_t)split_for(g).slices * dw_elems * acc_size(a->dtype);
  if (g.n * g.ho * g.wo == 0) return 0;
  if (impl == 4 && g.c > 0) {
    int64_t per;
    return (size_t)dw_slices(g, &per) * dw_elems * acc_size(a->dtype);
  }
  return 0;
}

extern "C" int dlk_k_conv2d_bwd_filter(const dlk_k_conv2d_bwd_filter_desc *a, int impl, void *ws, void *stream) {
  const dlk_k_conv2d_geom &g = a->g;
  const int64_t total = g.k * (g.c / g.groups) * g.r * g.s;
  if (total == 0) return 0;
  if (!dlk_k_conv2d_bwd_filter_supports(a, impl, NULL, 0)) return (int)cudaErrorInvalidValue;
  if (g.n * g.ho * g.wo == 0 && impl != 1) { /* an empty sum: dw = 0 (the second pass over no slices) */
    DLK_DISPATCH_FLOAT(a->dtype, T, {
      typedef typename AccT<T>::type A;
      DLK_LAUNCH(bwd_filter_slices_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a, 0, (const A *)ws);
    });
    return (int)cudaGetLastError();
  }
  switch (impl) {
    case 1:
      DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(bwd_filter_direct_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a));
      break;
    case 2: {
      if (!ws) return (int)cudaErrorInvalidValue;
      const Split sp = split_for(g);
      const int64_t kg = g.k / g.groups, crs = (g.c / g.groups) * g.r * g.s;
      if ((crs + IG_BN - 1) / IG_BN > 65535 || g.groups * sp.slices > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((kg + IG_BM - 1) / IG_BM), (unsigned)((crs + IG_BN - 1) / IG_BN),
                (unsigned)(g.groups * sp.slices));
      DLK_DISPATCH_FLOAT(a->dtype, T, {
        typedef typename AccT<T>::type A;
        DLK_LAUNCH(bwd_filter_igemm_kernel<T>, grid, IG_THREADS, 0, stream)(*a, sp.slices, sp.chunk, (A *)ws);
        DLK_LAUNCH(bwd_filter_slices_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a, sp.slices, (const A *)ws);
      });
      break;
    }
    case 4: {
      if (!ws) return (int)cudaErrorInvalidValue;
      int64_t per;
      const int64_t slices = dw_slices(g, &per);
      dim3 grid((unsigned)g.k, (unsigned)slices);
      DLK_DISPATCH_FLOAT(a->dtype, T, {
        typedef typename AccT<T>::type A;
        DLK_LAUNCH(bwd_filter_depthwise_kernel<T>, grid, DW_THREADS, 0, stream)(*a, per, (A *)ws);
        DLK_LAUNCH(bwd_filter_slices_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a, slices, (const A *)ws);
      });
      break;
    }
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
