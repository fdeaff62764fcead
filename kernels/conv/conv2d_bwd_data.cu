// conv family, conv2d backward-data: dx = the transposed convolution of dy (the gradient
// at the pre-activation) with w. The ladder:
//   1 direct     one thread per dx element, gathering the taps that reach it; any strides
//   2 igemm      implicit GEMM with shared-memory tiles (64x64x16, 4x4 per thread); any
//                strides
//   3 igemm_tc   implicit GEMM on tensor cores (mma.sync m16n8k16, ldmatrix(.trans),
//                3-stage cp.async); f16/bf16 channels-last
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
    ig_tile_fma(As, Bs, tx, ty, acc);
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

// ==== 3 implicit GEMM on tensor cores =====================================================
// f16/bf16, channels-last only: dy, w and dx have a unit channel stride; Kg and Cg are
// multiples of 8, every other stride too, pointers 16-byte aligned (whole 16-byte runs of
// channels for cp.async). The reduction is ordered (r, s, k) with k fastest, so an A row
// (one input pixel, one tap) is a run of Kg contiguous dy channels, and a B row (one k of
// one tap) a run of Cg contiguous w channels ([K, R, S, C] memory).
// Block tile 128 input pixels x 64 input channels x 32 output channels k per step; 4 warps
// as 2 (m) x 2 (n), each 64 x 32 as 4 x 4 mma.sync m16n8k16 tiles, f32 accumulators.
// Shared memory per stage of a 3-stage cp.async ring (36 KB in all):
//   A [128 rows = pixels][4 chunks = 32 k] at chunk c ^ ((row >> 1) & 3)  (ldmatrix)
//   B [32 rows = k][8 chunks = 64 c]       at chunk c ^ (row & 7)         (ldmatrix.trans)
// An A row whose tap does not reach an output position (stride > 1, borders) is
// zero-filled by cp.async's src-size, as are k, c and pixels past the end.
constexpr int TC_BM = 128, TC_BN = 64, TC_BK = 32, TC_STAGES = 3, TC_THREADS = 128;

__device__ __forceinline__ int swz_a(int row, int chunk) {
  return row * 4 + (chunk ^ ((row >> 1) & 3));
}
__device__ __forceinline__ int swz_b(int row, int chunk) {
  return row * 8 + (chunk ^ (row & 7));
}

template <typename T>
__global__ __launch_bounds__(TC_THREADS) void bwd_data_tc_kernel(dlk_k_conv2d_bwd_data_desc a) {
#if !defined(DLK_CUDA_EMU) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
  __shared__ uint4 sA[TC_STAGES][TC_BM * 4];
  __shared__ uint4 sB[TC_STAGES][TC_BK * 8];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, grp = blockIdx.z;
  const int64_t M = g.n * g.h * g.w;
  const int64_t m0 = (int64_t)blockIdx.x * TC_BM, j0 = (int64_t)blockIdx.y * TC_BN;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, wm = warp >> 1, wn = warp & 1;

  // A: rows t/4 + 32i (i < 4), chunk t%4. B: rows t/8 + 16i (i < 2), chunk t%8.
  const int arow0 = t >> 2, achunk = t & 3, brow0 = t >> 3, bchunk = t & 7;
  int64_t ah[4], aw[4];
  const T *abase[4];
  bool aok[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t m = m0 + arow0 + 32 * i;
    aok[i] = m < M;
    const int64_t mm = aok[i] ? m : 0;
    aw[i] = mm % g.w, ah[i] = (mm / g.w) % g.h;
    abase[i] = (const T *)a.dy.data + (mm / (g.w * g.h)) * a.dy.st[0] + grp * kg;
  }
  const int64_t bc = j0 + bchunk * 8; /* the 8 input channels of this thread's B chunk */
  const bool bcok = bc < cg;

  const int64_t kchunks = (kg + TC_BK - 1) / TC_BK, KT = g.r * g.s * kchunks;
  auto load = [&](int stage, int64_t kt) {
    const int64_t k0 = (kt % kchunks) * TC_BK, rs = kt / kchunks, r = rs / g.s, s = rs % g.s;
    const int64_t ka = k0 + achunk * 8;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int64_t oh = out_pos(ah[i], r, g.stride[0], g.pad[0], g.dil[0], g.ho);
      const int64_t ow = out_pos(aw[i], s, g.stride[1], g.pad[1], g.dil[1], g.wo);
      const bool ok = aok[i] && ka < kg && oh >= 0 && ow >= 0;
      const T *src = ok ? abase[i] + oh * a.dy.st[2] + ow * a.dy.st[3] + ka : (const T *)a.dy.data;
      cp_async16(&sA[stage][swz_a(arow0 + 32 * i, achunk)], src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int64_t k = k0 + brow0 + 16 * i;
      const bool ok = bcok && k < kg;
      const T *src = ok ? (const T *)a.w.data + (grp * kg + k) * a.w.st[0] + r * a.w.st[2] + s * a.w.st[3] + bc
                        : (const T *)a.w.data;
      cp_async16(&sB[stage][swz_b(brow0 + 16 * i, bchunk)], src, ok ? 16 : 0);
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;

#pragma unroll
  for (int st = 0; st < TC_STAGES - 1; st++) {
    if (st < KT) load(st, st);
    cp_async_commit();
  }
  for (int64_t kt = 0; kt < KT; kt++) {
    cp_async_wait<TC_STAGES - 2>();
    __syncthreads();
    if (kt + TC_STAGES - 1 < KT) load((int)((kt + TC_STAGES - 1) % TC_STAGES), kt + TC_STAGES - 1);
    cp_async_commit();
    const int stage = (int)(kt % TC_STAGES);
#pragma unroll
    for (int ks = 0; ks < 2; ks++) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; i++)
        ldmatrix_x4(af[i], &sA[stage][swz_a(wm * 64 + i * 16 + (lane & 15), ks * 2 + (lane >> 4))]);
      // B stored [k][c]: ldmatrix.trans of the 8x8 blocks (k 0-7 | 8-15) x (c tile jp*2 | jp*2+1).
#pragma unroll
      for (int jp = 0; jp < 2; jp++) {
        const int q = lane >> 3;
        const int krow = ks * 16 + (q & 1) * 8 + (lane & 7);
        const int cchunk = (wn * 32 + jp * 16 + (q >> 1) * 8) >> 3;
        uint32_t r4[4];
        ldmatrix_x4_trans(r4, &sB[stage][swz_b(krow, cchunk)]);
        bf[jp * 2][0] = r4[0], bf[jp * 2][1] = r4[1], bf[jp * 2 + 1][0] = r4[2], bf[jp * 2 + 1][1] = r4[3];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) mma_16816<T>(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int64_t m = m0 + wm * 64 + i * 16 + (lane >> 2) + h * 8;
      if (m >= M) continue;
      const int64_t w = m % g.w, hh = (m / g.w) % g.h, n = m / (g.w * g.h);
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int64_t jj = j0 + wn * 32 + j * 8 + (lane & 3) * 2 + e;
          if (jj < cg) st4<T>(a.dx, n, grp * cg + jj, hh, w, acc[i][j][h * 2 + e]);
        }
    }
#else
  (void)a;
  __trap();
#endif
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
  DLK_DYNAMIC_SHARED(unsigned char, dw_smem);
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

#if !defined(DLK_CUDA_EMU)  // the tensor-core kernel's rules (impl 3 needs a real GPU there)
bool tc_ok(const dlk_k_conv2d_bwd_data_desc *a, char *why, size_t n) {
  char buf[160];
  const dlk_k_conv2d_geom &g = a->g;
  if (a->dtype != DLK_F16 && a->dtype != DLK_BF16) return fail(why, n, "tensor cores here take f16 or bf16");
  if (a->dy.st[1] != 1 || a->w.st[1] != 1 || a->dx.st[1] != 1)
    return fail(why, n, "dy, w and dx must be channels-last (unit channel stride)");
  if ((g.c / g.groups) % 8 || (g.k / g.groups) % 8) {
    snprintf(buf, sizeof buf, "channels per group (%lld in, %lld out) not multiples of 8 (16-byte runs)",
             (long long)(g.c / g.groups), (long long)(g.k / g.groups));
    return fail(why, n, buf);
  }
  const dlk_k_t4 *ops[2] = {&a->dy, &a->w};
  for (int i = 0; i < 2; i++) {
    if ((uintptr_t)ops[i]->data % 16) return fail(why, n, i ? "w not 16-byte aligned" : "dy not 16-byte aligned");
    for (int d = 0; d < 4; d++)
      if (d != 1 && ops[i]->st[d] % 8) {
        snprintf(buf, sizeof buf, "%s stride %lld of dim %d not a multiple of 8 (16-byte runs)", i ? "w" : "dy",
                 (long long)ops[i]->st[d], d);
        return fail(why, n, buf);
      }
  }
  return true;
}
#endif  // !DLK_CUDA_EMU

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
    case 3: {
      const int64_t M = g.n * g.h * g.w, cg = g.c / g.groups;
      if ((cg + TC_BN - 1) / TC_BN > 65535 || g.groups > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((M + TC_BM - 1) / TC_BM), (unsigned)((cg + TC_BN - 1) / TC_BN), (unsigned)g.groups);
      if (a->dtype == DLK_F16)
        DLK_LAUNCH(bwd_data_tc_kernel<f16>, grid, TC_THREADS, 0, stream)(*a);
      else
        DLK_LAUNCH(bwd_data_tc_kernel<bf16>, grid, TC_THREADS, 0, stream)(*a);
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
