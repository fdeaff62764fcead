// conv family, conv2d backward-filter:
//   dw[k, c, r, s] = sum over n, oh, ow of dy[n, k, oh, ow] x[n, grp*Cg + c, ih, iw].
// The ladder (every one deterministic: no atomics, sums in a fixed order):
//   1 direct     one thread per dw element, the whole sum in one thread; any strides
//   2 igemm      implicit GEMM with shared-memory tiles (64x64x16, 4x4 per thread), the
//                reduction split into slices whose partial tiles go to the workspace and
//                are added in slice order by a second kernel; any strides
//   3 igemm_tc   implicit GEMM on tensor cores (mma.sync m16n8k16 from ldmatrix.trans,
//                3-stage cp.async), split-K partials as in 2; f16/bf16 channels-last
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
constexpr int MAX_SLICES = 64;

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
    ig_tile_fma(As, Bs, tx, ty, acc);
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

// ==== 3 implicit GEMM on tensor cores, split-K ============================================
// f16/bf16, channels-last x and dy (unit channel stride), Cg and Kg multiples of 8, other
// strides multiples of 8, pointers 16-byte aligned. Per group: rows i over Kg, columns
// j = (r, s, c) with c fastest over R*S*Cg, reduction over the pixels p of a slice:
//   A[i, p] = dy[n, i, oh, ow] (a pixel's run of Kg channels), B[p, j] = x[n, c, ih, iw].
// Both tiles are stored pixel-major as the memory has them, [p][channels], and the mma
// fragments come out with ldmatrix.trans. Block tile 64 (i) x 128 (j) x 32 pixels; 4 warps
// as 2 x 2, each 32 x 64 as 2 x 8 mma.sync m16n8k16 tiles; f32 accumulators. Shared memory
// per stage of a 3-stage cp.async ring (36 KB in all):
//   A [32 rows = p][8 chunks = 64 i], B [32 rows = p][16 chunks = 128 j], chunk c of row
//   r at c ^ (r & 7), so the 8 rows of each ldmatrix phase fall in distinct banks.
// Each 16-byte B chunk is 8 channels of one tap (Cg % 8 == 0), decoded once per thread.
// The block writes its partial tile to ws[slice][k][(c, r, s)] (w's order), and the slice
// pass adds the slices in order, as for variant 2: deterministic.
constexpr int TB_BM = 64, TB_BN = 128, TB_BK = 32, TB_STAGES = 3, TB_THREADS = 128;

__device__ __forceinline__ int swz8(int row, int chunk, int chunks) {
  return row * chunks + ((chunk & ~7) | ((chunk & 7) ^ (row & 7)));
}

template <typename T>
__global__ __launch_bounds__(TB_THREADS) void bwd_filter_tc_kernel(dlk_k_conv2d_bwd_filter_desc a, int64_t slices,
                                                                   int64_t chunk, float *ws) {
#if !defined(DLK_CUDA_EMU) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
  __shared__ uint4 sA[TB_STAGES][TB_BK * 8];
  __shared__ uint4 sB[TB_STAGES][TB_BK * 16];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, RS = g.r * g.s, RSC = RS * cg;
  const int64_t grp = blockIdx.z / slices, slice = blockIdx.z % slices;
  const int64_t P = g.n * g.ho * g.wo, p_begin = slice * chunk, p_end = p_begin + chunk < P ? p_begin + chunk : P;
  const int64_t i0 = (int64_t)blockIdx.x * TB_BM, j0 = (int64_t)blockIdx.y * TB_BN;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, wm = warp >> 1, wn = warp & 1;

  // A: rows t/8 + 16q (q < 2), chunk t%8 (channels i0 + 8 chunk). B: rows t/16 + 8q (q < 4),
  // chunk t%16 (columns j0 + 8 chunk: one tap, 8 channels).
  const int arow0 = t >> 3, achunk = t & 7, brow0 = t >> 4, bchunk = t & 15;
  const int64_t ai = i0 + achunk * 8;
  const bool aiok = ai < kg;
  const int64_t bj = j0 + bchunk * 8;
  const bool bjok = bj < RSC;
  const int64_t brs = bjok ? bj / cg : 0, bc = bjok ? bj % cg : 0, br = brs / g.s, bs = brs % g.s;

  auto load = [&](int stage, int64_t p0) {
#pragma unroll
    for (int q = 0; q < 2; q++) {
      const int64_t p = p0 + arow0 + 16 * q;
      const bool ok = aiok && p < p_end;
      const T *src = (const T *)a.dy.data;
      if (ok) {
        const int64_t ow = p % g.wo, oh = (p / g.wo) % g.ho, n = p / (g.wo * g.ho);
        src += n * a.dy.st[0] + oh * a.dy.st[2] + ow * a.dy.st[3] + grp * kg + ai;
      }
      cp_async16(&sA[stage][swz8(arow0 + 16 * q, achunk, 8)], src, ok ? 16 : 0);
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int64_t p = p0 + brow0 + 8 * q;
      bool ok = bjok && p < p_end;
      const T *src = (const T *)a.x.data;
      if (ok) {
        const int64_t ow = p % g.wo, oh = (p / g.wo) % g.ho, n = p / (g.wo * g.ho);
        const int64_t ih = in_pos(oh, br, g.stride[0], g.pad[0], g.dil[0]);
        const int64_t iw = in_pos(ow, bs, g.stride[1], g.pad[1], g.dil[1]);
        ok = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
        if (ok) src += n * a.x.st[0] + ih * a.x.st[2] + iw * a.x.st[3] + grp * cg + bc;
      }
      cp_async16(&sB[stage][swz8(brow0 + 8 * q, bchunk, 16)], src, ok ? 16 : 0);
    }
  };

  float acc[2][8][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;

  const int64_t KT = (p_end - p_begin + TB_BK - 1) / TB_BK;
#pragma unroll
  for (int st = 0; st < TB_STAGES - 1; st++) {
    if (st < KT) load(st, p_begin + st * TB_BK);
    cp_async_commit();
  }
  for (int64_t kt = 0; kt < KT; kt++) {
    cp_async_wait<TB_STAGES - 2>();
    __syncthreads();
    if (kt + TB_STAGES - 1 < KT)
      load((int)((kt + TB_STAGES - 1) % TB_STAGES), p_begin + (kt + TB_STAGES - 1) * TB_BK);
    cp_async_commit();
    const int stage = (int)(kt % TB_STAGES);
    const int q = lane >> 3;
#pragma unroll
    for (int ks = 0; ks < 2; ks++) {
      uint32_t af[2][4], bf[8][2];
      // A [p][i]: blocks (p 0-7, i 0-7), (p 0-7, i 8-15), (p 8-15, i 0-7), (p 8-15, i 8-15)
      // transposed give a0..a3 of the row-major (i, p) fragment.
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
        const int prow = ks * 16 + (q >> 1) * 8 + (lane & 7);
        const int ichunk = ((wm * 32 + mi * 16) >> 3) + (q & 1);
        ldmatrix_x4_trans(af[mi], &sA[stage][swz8(prow, ichunk, 8)]);
      }
      // B [p][j]: blocks (p 0-7 | 8-15) x (j tile 2jp | 2jp+1) transposed give b0, b1.
#pragma unroll
      for (int jp = 0; jp < 4; jp++) {
        const int prow = ks * 16 + (q & 1) * 8 + (lane & 7);
        const int jchunk = ((wn * 64 + jp * 16) >> 3) + (q >> 1);
        uint32_t r4[4];
        ldmatrix_x4_trans(r4, &sB[stage][swz8(prow, jchunk, 16)]);
        bf[jp * 2][0] = r4[0], bf[jp * 2][1] = r4[1], bf[jp * 2 + 1][0] = r4[2], bf[jp * 2 + 1][1] = r4[3];
      }
#pragma unroll
      for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int nj = 0; nj < 8; nj++) mma_16816<T>(acc[mi][nj], af[mi], bf[nj]);
    }
  }
  cp_async_wait<0>();
  float *out = ws + slice * g.k * RSC;
#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int64_t i = i0 + wm * 32 + mi * 16 + (lane >> 2) + h * 8;
      if (i >= kg) continue;
#pragma unroll
      for (int nj = 0; nj < 8; nj++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int64_t j = j0 + wn * 64 + nj * 8 + (lane & 3) * 2 + e;
          if (j >= RSC) continue;
          const int64_t rs = j / cg, c = j % cg; /* -> w's order (c, r, s) */
          out[(grp * kg + i) * RSC + c * RS + rs] = acc[mi][nj][h * 2 + e];
        }
    }
#else
  (void)a, (void)slices, (void)chunk, (void)ws;
  __trap();
#endif
}

// Slices of the tensor-core variant: about 1024 blocks, each at least 1024 pixels, at
// most MAX_SLICES.
Split tc_split_for(const dlk_k_conv2d_geom &g) {
  const int64_t kg = g.k / g.groups, rsc = (g.c / g.groups) * g.r * g.s, P = g.n * g.ho * g.wo;
  const int64_t tiles = ((kg + TB_BM - 1) / TB_BM) * ((rsc + TB_BN - 1) / TB_BN) * g.groups;
  int64_t s = 1024 / (tiles > 0 ? tiles : 1);
  const int64_t by_len = (P + 1023) / 1024;
  if (s > by_len) s = by_len;
  if (s > MAX_SLICES) s = MAX_SLICES;
  if (s < 1) s = 1;
  while (s > 1 && g.groups * s > 65535) s--;
  Split sp;
  sp.chunk = (((P + s - 1) / s) + TB_BK - 1) / TB_BK * TB_BK;
  if (sp.chunk < TB_BK) sp.chunk = TB_BK;
  sp.slices = (P + sp.chunk - 1) / sp.chunk;
  if (sp.slices < 1) sp.slices = 1;
  return sp;
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

#if !defined(DLK_CUDA_EMU)  // the tensor-core kernel's rules (impl 3 needs a real GPU there)
bool tc_ok(const dlk_k_conv2d_bwd_filter_desc *a, char *why, size_t n) {
  char buf[160];
  const dlk_k_conv2d_geom &g = a->g;
  if (a->dtype != DLK_F16 && a->dtype != DLK_BF16) return fail(why, n, "tensor cores here take f16 or bf16");
  if (a->x.st[1] != 1 || a->dy.st[1] != 1) return fail(why, n, "x and dy must be channels-last (unit channel stride)");
  if ((g.c / g.groups) % 8 || (g.k / g.groups) % 8) {
    snprintf(buf, sizeof buf, "channels per group (%lld in, %lld out) not multiples of 8 (16-byte runs)",
             (long long)(g.c / g.groups), (long long)(g.k / g.groups));
    return fail(why, n, buf);
  }
  const dlk_k_t4 *ops[2] = {&a->x, &a->dy};
  for (int i = 0; i < 2; i++) {
    if ((uintptr_t)ops[i]->data % 16) return fail(why, n, i ? "dy not 16-byte aligned" : "x not 16-byte aligned");
    for (int d = 0; d < 4; d++)
      if (d != 1 && ops[i]->st[d] % 8) {
        snprintf(buf, sizeof buf, "%s stride %lld of dim %d not a multiple of 8 (16-byte runs)", i ? "dy" : "x",
                 (long long)ops[i]->st[d], d);
        return fail(why, n, buf);
      }
  }
  return true;
}
#endif  // !DLK_CUDA_EMU

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
    case 3:
#if defined(DLK_CUDA_EMU)
      return fail(why, n, "needs a real GPU (inline PTX)");
#else
      return tc_ok(a, why, n);
#endif
    case 4: return dw_ok(a, why, n);
    default: return fail(why, n, "no such kernel");
  }
}

extern "C" size_t dlk_k_conv2d_bwd_filter_ws(const dlk_k_conv2d_bwd_filter_desc *a, int impl) {
  const dlk_k_conv2d_geom &g = a->g;
  const size_t dw_elems = (size_t)(g.k * (g.c / (g.groups ? g.groups : 1)) * g.r * g.s);
  if (impl == 2) return (size_t)split_for(g).slices * dw_elems * acc_size(a->dtype);
  if (impl == 3) return (size_t)tc_split_for(g).slices * dw_elems * sizeof(float);
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
    case 3: {
      if (!ws) return (int)cudaErrorInvalidValue;
      const Split sp = tc_split_for(g);
      const int64_t kg = g.k / g.groups, rsc = (g.c / g.groups) * g.r * g.s;
      if ((rsc + TB_BN - 1) / TB_BN > 65535 || g.groups * sp.slices > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((kg + TB_BM - 1) / TB_BM), (unsigned)((rsc + TB_BN - 1) / TB_BN),
                (unsigned)(g.groups * sp.slices));
      if (a->dtype == DLK_F16) {
        DLK_LAUNCH(bwd_filter_tc_kernel<f16>, grid, TB_THREADS, 0, stream)(*a, sp.slices, sp.chunk, (float *)ws);
        DLK_LAUNCH(bwd_filter_slices_kernel<f16>, grid_for(total, 256), 256, 0, stream)(*a, sp.slices,
                                                                                       (const float *)ws);
      } else {
        DLK_LAUNCH(bwd_filter_tc_kernel<bf16>, grid, TB_THREADS, 0, stream)(*a, sp.slices, sp.chunk, (float *)ws);
        DLK_LAUNCH(bwd_filter_slices_kernel<bf16>, grid_for(total, 256), 256, 0, stream)(*a, sp.slices,
                                                                                        (const float *)ws);
      }
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
