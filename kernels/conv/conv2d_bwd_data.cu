// conv family, conv2d backward-data: dx = the transposed convolution of dy (the gradient
// at the pre-activation) with w. The ladder:
//   1 direct     one thread per dx element, gathering the taps that reach it; any strides
//   2 igemm      implicit GEMM with shared-memory tiles (64x64x16, 4x4 per thread); any
//                strides
//   4 depthwise  groups == C: one thread per dx element with the channel's filter in
//                shared memory; NCHW only
// Every kernel writes each dx element once (a gather, no atomics): deterministic.
// Launcher dlk_k_conv2d_bwd_data at the end; rows in host/conv/conv_cuda.c.
//
// The implicit GEMM of one group grp: rows m = (n, h, w) over N*H*W input pixels, columns
// j over the group's Cg input channels, reduction over kk = (k, r, s) in Kg*R*S:
//   A[m, kk] = dy[n, grp*Kg + k, oh, ow] with oh = (h + ph - r*dh) / sh when that divides
//              exactly and lies in [0, Ho) (ow alike), else 0;
//   B[kk, j] = w[grp*Kg + k, j, r, s].
#include <stdio.h>

#include "conv.cuh"

using namespace dlk;
using namespace dlk::conv;

namespace {

// ==== 1 direct ============================================================================
// Thread mapping: one thread per dx element (n, c, h, w), grid-stride over the row-major
// index of [N, C, H, W]; loops r, s (skipping taps whose output position does not
// exist), then the group's output channels k. No shared memory.
template <typename T>
__global__ void bwd_data_direct_kernel(dlk_k_conv2d_bwd_data_desc a) {
  typedef typename AccT<T>::type A;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, total = g.n * g.c * g.h * g.w;
  for (int64_t i = gidx(); i < total; i += gstride()) {
    const int64_t w = i % g.w, h = (i / g.w) % g.h, ci = (i / (g.w * g.h)) % g.c, n = i / (g.w * g.h * g.c);
    const int64_t grp = ci / cg, c = ci % cg;
    A acc = 0;
    for (int64_t r = 0; r < g.r; r++) {
      const int64_t oh = out_pos(h, r, g.stride[0], g.pad[0], g.dil[0], g.ho);
      if (oh < 0) continue;
      for (int64_t s = 0; s < g.s; s++) {
        const int64_t ow = out_pos(w, s, g.stride[1], g.pad[1], g.dil[1], g.wo);
        if (ow < 0) continue;
        for (int64_t k = grp * kg; k < (grp + 1) * kg; k++) acc += ld4<T>(a.dy, n, k, oh, ow) * ld4<T>(a.w, k, c, r, s);
      }
    }
    st4<T>(a.dx, n, ci, h, w, acc);
  }
}

// ==== 2 implicit GEMM, shared-memory tiles ===============================================
// Block tile 64 input pixels (m) x 64 input channels (j) x 16 reduction taps (kk), 256
// threads, 4x4 outputs each (rows ty*4.., columns tx*4.., ty = t / 16, tx = t % 16). Grid
// (ceil(N*H*W / 64), ceil(Cg / 64), groups). Each k-step a thread gathers 4 elements of A
// (its pixel m = t % 64, taps t / 64 + 4i) and 4 of B (channel j = t % 64, same taps)
// into As[16][64] and Bs[16][64] (accumulation type), tap-major.
constexpr int IG_BM = 64, IG_BN = 64, IG_BK = 16, IG_THREADS = 256;

template <typename T>
__global__ __launch_bounds__(IG_THREADS) void bwd_data_igemm_kernel(dlk_k_conv2d_bwd_data_desc a) {
  typedef typename AccT<T>::type A;
  __shared__ A As[IG_BK][IG_BM];
  __shared__ A Bs[IG_BK][IG_BN];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, grp = blockIdx.z;
  const int64_t M = g.n * g.h * g.w, KK = kg * g.r * g.s, RS = g.r * g.s;
  const int64_t m0 = (int64_t)blockIdx.x * IG_BM, j0 = (int64_t)blockIdx.y * IG_BN;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int lm = t % IG_BM, lk = t / IG_BM;

  const int64_t am = m0 + lm;
  const bool a_ok = am < M;
  int64_t an = 0, ah = 0, aw = 0;
  if (a_ok) aw = am % g.w, ah = (am / g.w) % g.h, an = am / (g.w * g.h);
  const T *dyp = (const T *)a.dy.data + an * a.dy.st[0] + grp * kg * a.dy.st[1];
  const int64_t bj = j0 + lm;
  const bool b_ok = bj < cg;
  const T *wp = (const T *)a.w.data + grp * kg * a.w.st[0] + (b_ok ? bj : 0) * a.w.st[1];

  A acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0;

  for (int64_t k0 = 0; k0 < KK; k0 += IG_BK) {
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int kr = lk + 4 * q;
      const int64_t kk = k0 + kr;
      A av = 0, bv = 0;
      if (kk < KK) {
        const int64_t k = kk / RS, rs = kk % RS, r = rs / g.s, s = rs % g.s;
        if (a_ok) {
          const int64_t oh = out_pos(ah, r, g.stride[0], g.pad[0], g.dil[0], g.ho);
          const int64_t ow = out_pos(aw, s, g.stride[1], g.pad[1], g.dil[1], g.wo);
          if (oh >= 0 && ow >= 0) av = to_acc(dyp[k * a.dy.st[1] + oh * a.dy.st[2] + ow * a.dy.st[3]]);
        }
        if (b_ok) bv = to_acc(wp[k * a.w.st[0] + r * a.w.st[2] + s * a.w.st[3]]);
      }
      As[kr][lm] = av;
      Bs[kr][lm] = bv;
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
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= M) continue;
    const int64_t w = m % g.w, h = (m / g.w) % g.h, n = m / (g.w * g.h);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t jj = j0 + tx * 4 + j;
      if (jj < cg) st4<T>(a.dx, n, grp * cg + jj, h, w, acc[i][j]);
    }
  }
}

// ==== 4 depthwise =========================================================================
// groups == C, K = mult * C: dx[n, c] gathers from the mult output channels c*mult.. of
// dy. Thread mapping: block (32, 8) covers an 8 x 32 tile of one (n, c) dx plane, one
// element per thread; blocks loop over the planes in z. Shared memory: the mult * R * S
// filter taps of channel c (at most 4096 values, checked by _supports).
constexpr int DW_TX = 32, DW_TY = 8, DW_MAX_TAPS = 4096;

template <typename T>
__global__ __launch_bounds__(DW_TX *DW_TY) void bwd_data_depthwise_kernel(dlk_k_conv2d_bwd_data_desc a) {
  typedef typename AccT<T>::type A;
  extern __shared__ unsigned char dw_smem[];
  A *taps = (A *)dw_smem;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t mult = g.k / g.c, RS = g.r * g.s;
  const int tid = threadIdx.y * DW_TX + threadIdx.x, nthr = DW_TX * DW_TY;
  for (int64_t plane = blockIdx.z; plane < g.n * g.c; plane += gridDim.z) {
    const int64_t n = plane / g.c, c = plane % g.c;
    __syncthreads();
    for (int64_t i = tid; i < mult * RS; i += nthr) taps[i] = ld4<T>(a.w, c * mult + i / RS, 0, (i % RS) / g.s, i % g.s);
    __syncthreads();
    const int64_t h = (int64_t)blockIdx.y * DW_TY + threadIdx.y, w = (int64_t)blockIdx.x * DW_TX + threadIdx.x;
    if (h >= g.h || w >= g.w) continue;
    A acc = 0;
    for (int64_t r = 0; r < g.r; r++) {
      const int64_t oh = out_pos(h, r, g.stride[0], g.pad[0], g.dil[0], g.ho);
      if (oh < 0) continue;
      for (int64_t s = 0; s < g.s; s++) {
        const int64_t ow = out_pos(w, s, g.stride[1], g.pad[1], g.dil[1], g.wo);
        if (ow < 0) continue;
        for (int64_t q = 0; q < mult; q++) acc += ld4<T>(a.dy, n, c * mult + q, oh, ow) * taps[q * RS + r * g.s + s];
      }
    }
    st4<T>(a.dx, n, c, h, w, acc);
  }
}

bool fail(char *why, size_t n, const char *msg) {
  if (why && n) snprintf(why, n, "%s", msg);
  return false;
}

bool dw_ok(const dlk_k_conv2d_bwd_data_desc *a, char *why, size_t n) {
  const dlk_k_conv2d_geom &g = a->g;
  if (g.groups != g.c || g.c == 0) return fail(why, n, "not depthwise (groups != C)");
  if (a->dy.st[3] != 1 || a->dx.st[3] != 1)
    return fail(why, n, "dy and dx must be NCHW (unit W stride); channels-last depthwise runs on igemm");
  if ((g.k / g.c) * g.r * g.s > DW_MAX_TAPS) return fail(why, n, "more than 4096 filter taps per channel");
  return true;
}

}  // namespace

extern "C" int dlk_k_conv2d_bwd_data_supports(const dlk_k_conv2d_bwd_data_desc *a, int impl, char *why, size_t n) {
  switch (impl) {
    case 1:
    case 2: return 1;
    case 4: return dw_ok(a, why, n);
    default: return fail(why, n, "no such kernel");
  }
}

extern "C" int dlk_k_conv2d_bwd_data(const dlk_k_conv2d_bwd_data_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  const dlk_k_conv2d_geom &g = a->g;
  const int64_t total = g.n * g.c * g.h * g.w;
  if (total == 0) return 0;
  if (!dlk_k_conv2d_bwd_data_supports(a, impl, NULL, 0)) return (int)cudaErrorInvalidValue;
  switch (impl) {
    case 1:
      DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(bwd_data_direct_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a));
      break;
    case 2: {
      const int64_t M = g.n * g.h * g.w, cg = g.c / g.groups;
      if ((cg + IG_BN - 1) / IG_BN > 65535 || g.groups > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((M + IG_BM - 1) / IG_BM), (unsigned)((cg + IG_BN - 1) / IG_BN), (unsigned)g.groups);
      DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(bwd_data_igemm_kernel<T>, grid, IG_THREADS, 0, stream)(*a));
      break;
    }
    case 4: {
      const int64_t planes = g.n * g.c;
      if ((g.h + DW_TY - 1) / DW_TY > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((g.w + DW_TX - 1) / DW_TX), (unsigned)((g.h + DW_TY - 1) / DW_TY),
                (unsigned)(planes < 65535 ? planes : 65535));
      const size_t bytes = (size_t)((g.k / g.c) * g.r * g.s) * (a->dtype == DLK_F64 ? 8 : 4);
      DLK_DISPATCH_FLOAT(a->dtype, T,
                         DLK_LAUNCH(bwd_data_depthwise_kernel<T>, grid, dim3(DW_TX, DW_TY), bytes, stream)(*a));
      break;
    }
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
