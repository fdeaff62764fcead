// conv family, conv2d forward: z = conv(x, w) + b, y = act(z). The ladder:
//   1 direct     one thread per output element, any strides, every dtype
//   2 igemm      implicit GEMM with shared-memory tiles (64x64x16, 4x4 per thread), any
//                strides, every dtype
//   3 igemm_tc   implicit GEMM on tensor cores: mma.sync (f16/bf16 m16n8k16, TF32 m16n8k8
//                for f32 when allowed), 3-stage cp.async pipeline, channels-last only
//   4 depthwise  groups == C: an input patch per output tile in shared memory, NCHW only
// Launcher dlk_k_conv2d_fwd at the end; rows in host/conv/conv_cuda.c.
//
// The implicit GEMM of one group grp: rows m = (n, oh, ow) over N*Ho*Wo output pixels,
// columns j over the group's Kg output channels, reduction over the group's Cg*R*S taps:
//   C[m, j] = sum_kk A[m, kk] B[kk, j],  A[m, kk] = x[n, grp*Cg + c, ih, iw] (0 outside),
//   B[kk, j] = w[grp*Kg + j, c, r, s].
// Variant 2 orders kk as (c, r, s); variant 3 as (r, s, c), so that a run of channels is
// contiguous in channels-last memory.
#include <stdio.h>

#include "conv.cuh"

using namespace dlk;
using namespace dlk::conv;

namespace {

// Epilogue of one output element: v = acc + b[k]; z = v; y = act(v).
template <typename T>
__device__ __forceinline__ void fwd_store(const dlk_k_conv2d_fwd_desc &a, int64_t n, int64_t k, int64_t oh,
                                          int64_t ow, typename AccT<T>::type acc) {
  if (a.b.data) acc += to_acc(((const T *)a.b.data)[k * a.b.s]);
  if (a.z.data) st4<T>(a.z, n, k, oh, ow, acc);
  st4<T>(a.y, n, k, oh, ow, act_fwd(acc, a.act));
}

// ==== 1 direct ============================================================================
// Thread mapping: one thread per output element (n, k, oh, ow), grid-stride over the
// row-major index of [N, K, Ho, Wo]; each sums its Cg*R*S taps in (c, r, s) order. No
// shared memory.
template <typename T>
__global__ void fwd_direct_kernel(dlk_k_conv2d_fwd_desc a) {
  typedef typename AccT<T>::type A;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, total = g.n * g.k * g.ho * g.wo;
  for (int64_t i = gidx(); i < total; i += gstride()) {
    const int64_t ow = i % g.wo, oh = (i / g.wo) % g.ho, k = (i / (g.wo * g.ho)) % g.k, n = i / (g.wo * g.ho * g.k);
    const int64_t c0 = (k / kg) * cg;
    A acc = 0;
    for (int64_t c = 0; c < cg; c++)
      for (int64_t r = 0; r < g.r; r++) {
        const int64_t ih = in_pos(oh, r, g.stride[0], g.pad[0], g.dil[0]);
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t s = 0; s < g.s; s++) {
          const int64_t iw = in_pos(ow, s, g.stride[1], g.pad[1], g.dil[1]);
          if (iw < 0 || iw >= g.w) continue;
          acc += ld4<T>(a.x, n, c0 + c, ih, iw) * ld4<T>(a.w, k, c, r, s);
        }
      }
    fwd_store<T>(a, n, k, oh, ow, acc);
  }
}

// ==== 2 implicit GEMM, shared-memory tiles ===============================================
// Block tile 64 pixels (m) x 64 output channels (j) x 16 taps (kk), 256 threads, each
// computing a 4x4 block of outputs (rows ty*4.., columns tx*4.., ty = t / 16, tx = t % 16).
// Grid (ceil(M / 64), ceil(Kg / 64), groups). Per k-step every thread gathers 4 elements
// of A (its pixel m = t % 64, taps t / 64 + 4i) and 4 of B (channel j = t % 64, same
// taps) into shared memory, converted to the accumulation type:
//   As[16][64] (tap-major, so the 4 rows a thread reads are contiguous), Bs[16][64].
// Consecutive threads take consecutive pixels, so NCHW loads of x coalesce along W.

template <typename T>
__global__ __launch_bounds__(IG_THREADS) void fwd_igemm_kernel(dlk_k_conv2d_fwd_desc a) {
  typedef typename AccT<T>::type A;
  __shared__ A As[IG_BK][IG_BM];
  __shared__ A Bs[IG_BK][IG_BN];
  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, grp = blockIdx.z;
  const int64_t M = g.n * g.ho * g.wo, KK = cg * g.r * g.s, RS = g.r * g.s;
  const int64_t m0 = (int64_t)blockIdx.x * IG_BM, j0 = (int64_t)blockIdx.y * IG_BN;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;

  // The pixel this thread loads for A, decoded once.
  const int lm = t % IG_BM, lk = t / IG_BM; /* lk in 0..3 */
  const int64_t am = m0 + lm;
  const bool a_ok = am < M;
  int64_t an = 0, aih0 = 0, aiw0 = 0;
  if (a_ok) {
    const int64_t ow = am % g.wo, oh = (am / g.wo) % g.ho;
    an = am / (g.wo * g.ho);
    aih0 = oh * g.stride[0] - g.pad[0];
    aiw0 = ow * g.stride[1] - g.pad[1];
  }
  const T *xp = (const T *)a.x.data + an * a.x.st[0] + grp * cg * a.x.st[1];
  const int64_t bj = j0 + lm; /* the channel this thread loads for B */
  const bool b_ok = bj < kg;
  const T *wp = (const T *)a.w.data + (grp * kg + (b_ok ? bj : 0)) * a.w.st[0];

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
        const int64_t c = kk / RS, rs = kk % RS, r = rs / g.s, s = rs % g.s;
        if (a_ok) {
          const int64_t ih = aih0 + r * g.dil[0], iw = aiw0 + s * g.dil[1];
          if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
            av = to_acc(xp[c * a.x.st[1] + ih * a.x.st[2] + iw * a.x.st[3]]);
        }
        if (b_ok) bv = to_acc(wp[c * a.w.st[1] + r * a.w.st[2] + s * a.w.st[3]]);
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
    const int64_t ow = m % g.wo, oh = (m / g.wo) % g.ho, n = m / (g.wo * g.ho);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t jj = j0 + tx * 4 + j;
      if (jj < kg) fwd_store<T>(a, n, grp * kg + jj, oh, ow, acc[i][j]);
    }
  }
}

// ==== 3 implicit GEMM on tensor cores =====================================================
// Channels-last only: x, w and y (and z) have a unit channel stride, so the reduction,
// ordered (r, s, c), reads runs of channels; Cg is a multiple of 8 (f16/bf16) or 4 (f32),
// every other stride a multiple of that, and the pointers 16-byte aligned, so each run is
// whole 16-byte chunks for cp.async.
// Block tile 128 pixels x 64 output channels x one 64-byte chunk row of channels (32
// f16/bf16, 16 f32) per k-step; 4 warps as 2 (m) x 2 (n), each a 64 x 32 warp tile of
// 4 x 4 mma tiles; f32 accumulators in registers (64 per thread).
// Shared memory, per stage of a 3-stage cp.async ring: A [128 rows][4 chunks] and
// B [64 rows][4 chunks] of 16 bytes (12 KB; 36 KB in all), chunk c of row r stored at
// chunk c ^ ((r >> 1) & 3), so that the 8 row addresses of every ldmatrix phase and of
// every TF32 fragment load fall in distinct banks. Out-of-range pixels, channels and
// taps are zero-filled by cp.async's src-size.
// A k-step is one tap (r, s) and one chunk row of channels c0..c0+BK of the group; steps
// run over (r, s, c0) with c0 fastest. Each thread loads 4 A chunks (rows t/4 + 32i, chunk
// t%4) and 2 B chunks (rows t/4 + 32i); the pixel decode of its 4 A rows is done once.
constexpr int TC_BM = 128, TC_BN = 64, TC_STAGES = 3, TC_THREADS = 128;

__device__ __forceinline__ int tc_swz(int row, int chunk) {
  return row * 4 + (chunk ^ ((row >> 1) & 3));
}

template <typename T>
__global__ __launch_bounds__(TC_THREADS) void fwd_tc_kernel(dlk_k_conv2d_fwd_desc a) {
#if !defined(DLK_CUDA_EMU) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
  constexpr int EPC = 16 / (int)sizeof(T); /* elements per 16-byte chunk */
  constexpr int BK = 4 * EPC;              /* channels per k-step */
  typedef uint4 chunk_t;
  __shared__ chunk_t sA[TC_STAGES][TC_BM * 4];
  __shared__ chunk_t sB[TC_STAGES][TC_BN * 4];

  const dlk_k_conv2d_geom g = a.g;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, grp = blockIdx.z;
  const int64_t M = g.n * g.ho * g.wo;
  const int64_t m0 = (int64_t)blockIdx.x * TC_BM, j0 = (int64_t)blockIdx.y * TC_BN;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, wm = warp >> 1, wn = warp & 1;
  const int lrow = t >> 2, lchunk = t & 3;

  // The 4 A rows (pixels) and 2 B rows (output channels) this thread loads.
  const T *arow[4];
  int64_t aih0[4], aiw0[4];
  bool aok[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t m = m0 + lrow + 32 * i;
    aok[i] = m < M;
    const int64_t mm = aok[i] ? m : 0;
    const int64_t ow = mm % g.wo, oh = (mm / g.wo) % g.ho, n = mm / (g.wo * g.ho);
    aih0[i] = oh * g.stride[0] - g.pad[0];
    aiw0[i] = ow * g.stride[1] - g.pad[1];
    arow[i] = (const T *)a.x.data + n * a.x.st[0] + grp * cg;
  }
  const T *brow[2];
  bool bok[2];
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int64_t j = j0 + lrow + 32 * i;
    bok[i] = j < kg;
    brow[i] = (const T *)a.w.data + (grp * kg + (bok[i] ? j : 0)) * a.w.st[0];
  }

  const int64_t cchunks = (cg + BK - 1) / BK, KT = g.r * g.s * cchunks;
  auto load = [&](int stage, int64_t kt) {
    const int64_t c0 = (kt % cchunks) * BK, rs = kt / cchunks, r = rs / g.s, s = rs % g.s;
    const int64_t c = c0 + lchunk * EPC;
    const bool cok = c < cg;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int64_t ih = aih0[i] + r * g.dil[0], iw = aiw0[i] + s * g.dil[1];
      const bool ok = aok[i] && cok && ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
      const T *src = ok ? arow[i] + ih * a.x.st[2] + iw * a.x.st[3] + c : (const T *)a.x.data;
      cp_async16(&sA[stage][tc_swz(lrow + 32 * i, lchunk)], src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const bool ok = bok[i] && cok;
      const T *src = ok ? brow[i] + r * a.w.st[2] + s * a.w.st[3] + c : (const T *)a.w.data;
      cp_async16(&sB[stage][tc_swz(lrow + 32 * i, lchunk)], src, ok ? 16 : 0);
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
    // Refill the stage computed in the previous iteration (every thread is past it).
    if (kt + TC_STAGES - 1 < KT) load((int)((kt + TC_STAGES - 1) % TC_STAGES), kt + TC_STAGES - 1);
    cp_async_commit();
    const int stage = (int)(kt % TC_STAGES);
    const chunk_t *As = sA[stage], *Bs = sB[stage];
#pragma unroll
    for (int ks = 0; ks < 2; ks++) { /* two mma k-steps per 64-byte chunk row */
      uint32_t af[4][4], bf[4][2];
      if constexpr (sizeof(T) == 2) {
        // ldmatrix.x4: lanes 0-15 address rows 0-15 at chunk 2ks, lanes 16-31 at chunk 2ks+1.
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int row = wm * 64 + i * 16 + (lane & 15);
          ldmatrix_x4(af[i], &As[tc_swz(row, ks * 2 + (lane >> 4))]);
        }
        // B stored [n][k]: one x4 gives two n8 tiles (k 0-7 and 8-15 of each).
#pragma unroll
        for (int jp = 0; jp < 2; jp++) {
          const int row = wn * 32 + (jp * 2 + (lane >> 4)) * 8 + (lane & 7);
          uint32_t r4[4];
          ldmatrix_x4(r4, &Bs[tc_swz(row, ks * 2 + ((lane >> 3) & 1))]);
          bf[jp * 2][0] = r4[0], bf[jp * 2][1] = r4[1], bf[jp * 2 + 1][0] = r4[2], bf[jp * 2 + 1][1] = r4[3];
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) mma_16816<T>(acc[i][j], af[i], bf[j]);
      } else {
        // TF32 m16n8k8 fragments by plain loads: a0 (row g, k t), a1 (g+8, t), a2 (g, t+4),
        // a3 (g+8, t+4); b0 (k t, n g), b1 (k t+4, n g); g = lane / 4, t = lane % 4. The
        // k-step covers chunks 2ks (k 0-3) and 2ks+1 (k 4-7).
        const float *Af = (const float *)As, *Bf = (const float *)Bs;
        const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int r0 = wm * 64 + i * 16 + gq;
          af[i][0] = to_tf32(Af[tc_swz(r0, ks * 2) * 4 + tq]);
          af[i][1] = to_tf32(Af[tc_swz(r0 + 8, ks * 2) * 4 + tq]);
          af[i][2] = to_tf32(Af[tc_swz(r0, ks * 2 + 1) * 4 + tq]);
          af[i][3] = to_tf32(Af[tc_swz(r0 + 8, ks * 2 + 1) * 4 + tq]);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const int n0 = wn * 32 + j * 8 + gq;
          bf[j][0] = to_tf32(Bf[tc_swz(n0, ks * 2) * 4 + tq]);
          bf[j][1] = to_tf32(Bf[tc_swz(n0, ks * 2 + 1) * 4 + tq]);
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) mma_1688_tf32(acc[i][j], af[i], bf[j]);
      }
    }
  }
  cp_async_wait<0>();

  // Epilogue: accumulator q of tile (i, j) is row g (+8 for q >= 2), column 2t (+1 for odd q).
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int64_t m = m0 + wm * 64 + i * 16 + (lane >> 2) + h * 8;
      if (m >= M) continue;
      const int64_t ow = m % g.wo, oh = (m / g.wo) % g.ho, n = m / (g.wo * g.ho);
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int64_t jj = j0 + wn * 32 + j * 8 + (lane & 3) * 2 + e;
          if (jj < kg) fwd_store<T>(a, n, grp * kg + jj, oh, ow, acc[i][j][h * 2 + e]);
        }
    }
#else
  (void)a;
  __trap();
#endif
}

// ==== 4 depthwise =========================================================================
// groups == C and K = mult * C: output channel k reads input channel k / mult alone.
// Thread mapping: block (32, 8) computes an 8 x 32 tile of one (n, k) output plane, one
// output per thread; blocks loop over the planes in z (grid-stride). Shared memory: the
// input patch the tile reads, ((8-1)*sh + (R-1)*dh + 1) x ((32-1)*sw + (S-1)*dw + 1) values
// (zero outside the input), and the R*S filter taps; the launcher checks it fits.
constexpr int DW_TX = 32, DW_TY = 8;

template <typename T>
__global__ __launch_bounds__(DW_TX *DW_TY) void fwd_depthwise_kernel(dlk_k_conv2d_fwd_desc a, int ph, int pw) {
  typedef typename AccT<T>::type A;
  DLK_DYNAMIC_SHARED(unsigned char, dw_smem);
  A *patch = (A *)dw_smem, *taps = patch + (int64_t)ph * pw;
  const dlk_k_conv2d_geom g = a.g;
  const int64_t mult = g.k / g.c;
  const int64_t oh0 = (int64_t)blockIdx.y * DW_TY, ow0 = (int64_t)blockIdx.x * DW_TX;
  const int64_t ih0 = oh0 * g.stride[0] - g.pad[0], iw0 = ow0 * g.stride[1] - g.pad[1];
  const int tid = threadIdx.y * DW_TX + threadIdx.x, nthr = DW_TX * DW_TY;
  for (int64_t plane = blockIdx.z; plane < g.n * g.k; plane += gridDim.z) {
    const int64_t n = plane / g.k, k = plane % g.k, c = k / mult;
    __syncthreads(); /* the previous plane's reads are done */
    for (int i = tid; i < ph * pw; i += nthr) {
      const int64_t ih = ih0 + i / pw, iw = iw0 + i % pw;
      patch[i] = (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) ? ld4<T>(a.x, n, c, ih, iw) : (A)0;
    }
    for (int i = tid; i < g.r * g.s; i += nthr) taps[i] = ld4<T>(a.w, k, 0, i / g.s, i % g.s);
    __syncthreads();
    const int64_t oh = oh0 + threadIdx.y, ow = ow0 + threadIdx.x;
    if (oh < g.ho && ow < g.wo) {
      A acc = 0;
      for (int r = 0; r < g.r; r++)
        for (int s = 0; s < g.s; s++)
          acc += patch[(threadIdx.y * g.stride[0] + r * g.dil[0]) * pw + threadIdx.x * g.stride[1] + s * g.dil[1]] *
                 taps[r * g.s + s];
      fwd_store<T>(a, n, k, oh, ow, acc);
    }
  }
}

// Patch size of the depthwise tile and its shared-memory bytes.
void dw_patch(const dlk_k_conv2d_geom &g, size_t acc_bytes, int *ph, int *pw, size_t *bytes) {
  const int64_t h = (DW_TY - 1) * g.stride[0] + (g.r - 1) * g.dil[0] + 1;
  const int64_t w = (DW_TX - 1) * g.stride[1] + (g.s - 1) * g.dil[1] + 1;
  *ph = (int)(h < (1 << 20) ? h : (1 << 20));
  *pw = (int)(w < (1 << 20) ? w : (1 << 20));
  *bytes = ((size_t)h * (size_t)w + (size_t)(g.r * g.s)) * acc_bytes;
}

constexpr size_t DW_SMEM_MAX = 48 * 1024;

// ---- checks shared by _supports and the launcher ----

bool fail(char *why, size_t n, const char *msg) {
  if (why && n) snprintf(why, n, "%s", msg);
  return false;
}

#if !defined(DLK_CUDA_EMU)  // the tensor-core kernel's rules (impl 3 needs a real GPU there)
bool unit_c(const dlk_k_t4 &t) {
  return t.st[1] == 1;
}
bool tc_ok(const dlk_k_conv2d_fwd_desc *a, char *why, size_t n) {
  char buf[160];
  const dlk_k_conv2d_geom &g = a->g;
  const int64_t cg = g.c / g.groups;
  if (a->dtype != DLK_F16 && a->dtype != DLK_BF16 && a->dtype != DLK_F32)
    return fail(why, n, "tensor cores take f16, bf16 or f32 (as TF32)");
  if (a->dtype == DLK_F32 && !a->allow_tf32) return fail(why, n, "f32 needs TF32, which the context does not allow");
  const int64_t epc = a->dtype == DLK_F32 ? 4 : 8;
  if (!unit_c(a->x) || !unit_c(a->w) || !unit_c(a->y) || (a->z.data && !unit_c(a->z)))
    return fail(why, n, "x, w, y and z must be channels-last (unit channel stride)");
  if (cg % epc) {
    snprintf(buf, sizeof buf, "channels per group %lld not a multiple of %lld (16-byte runs)", (long long)cg,
             (long long)epc);
    return fail(why, n, buf);
  }
  const dlk_k_t4 *ops[2] = {&a->x, &a->w};
  for (int i = 0; i < 2; i++) {
    if ((uintptr_t)ops[i]->data % 16) return fail(why, n, i ? "w not 16-byte aligned" : "x not 16-byte aligned");
    for (int d = 0; d < 4; d++)
      if (d != 1 && ops[i]->st[d] % epc) {
        snprintf(buf, sizeof buf, "%s stride %lld of dim %d not a multiple of %lld (16-byte runs)", i ? "w" : "x",
                 (long long)ops[i]->st[d], d, (long long)epc);
        return fail(why, n, buf);
      }
  }
  return true;
}
#endif  // !DLK_CUDA_EMU

bool dw_ok(const dlk_k_conv2d_fwd_desc *a, char *why, size_t n) {
  const dlk_k_conv2d_geom &g = a->g;
  if (g.groups != g.c || g.c == 0) return fail(why, n, "not depthwise (groups != C)");
  if (a->x.st[3] != 1 || a->y.st[3] != 1 || (a->z.data && a->z.st[3] != 1))
    return fail(why, n, "x, y and z must be NCHW (unit W stride); channels-last depthwise runs on igemm");
  int ph, pw;
  size_t bytes;
  dw_patch(g, a->dtype == DLK_F64 ? 8 : 4, &ph, &pw, &bytes);
  if (bytes > DW_SMEM_MAX) return fail(why, n, "the input patch of a tile does not fit 48 KB of shared memory");
  return true;
}

}  // namespace

extern "C" int dlk_k_conv2d_fwd_supports(const dlk_k_conv2d_fwd_desc *a, int impl, char *why, size_t n) {
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

extern "C" int dlk_k_conv2d_fwd(const dlk_k_conv2d_fwd_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  const dlk_k_conv2d_geom &g = a->g;
  const int64_t total = g.n * g.k * g.ho * g.wo;
  if (total == 0) return 0;
  if (!dlk_k_conv2d_fwd_supports(a, impl, NULL, 0)) return (int)cudaErrorInvalidValue;
  const int64_t M = g.n * g.ho * g.wo, kg = g.k / g.groups;
  switch (impl) {
    case 1:
      DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(fwd_direct_kernel<T>, grid_for(total, 256), 256, 0, stream)(*a));
      break;
    case 2: {
      if (g.groups > 65535) return (int)cudaErrorInvalidConfiguration;
      dim3 grid((unsigned)((M + IG_BM - 1) / IG_BM), (unsigned)((kg + IG_BN - 1) / IG_BN), (unsigned)g.groups);
      if ((kg + IG_BN - 1) / IG_BN > 65535) return (int)cudaErrorInvalidConfiguration;
      DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(fwd_igemm_kernel<T>, grid, IG_THREADS, 0, stream)(*a));
      break;
    }
    case 3: {
      dim3 grid((unsigned)((M + TC_BM - 1) / TC_BM), (unsigned)((kg + TC_BN - 1) / TC_BN), (unsigned)g.groups);
      if ((kg + TC_BN - 1) / TC_BN > 65535 || g.groups > 65535) return (int)cudaErrorInvalidConfiguration;
      switch (a->dtype) {
        case DLK_F16: DLK_LAUNCH(fwd_tc_kernel<f16>, grid, TC_THREADS, 0, stream)(*a); break;
        case DLK_BF16: DLK_LAUNCH(fwd_tc_kernel<bf16>, grid, TC_THREADS, 0, stream)(*a); break;
        case DLK_F32: DLK_LAUNCH(fwd_tc_kernel<float>, grid, TC_THREADS, 0, stream)(*a); break;
        default: return (int)cudaErrorInvalidValue;
      }
      break;
    }
    case 4: {
      int ph, pw;
      size_t bytes;
      dw_patch(g, a->dtype == DLK_F64 ? 8 : 4, &ph, &pw, &bytes);
      const int64_t planes = g.n * g.k;
      dim3 grid((unsigned)((g.wo + DW_TX - 1) / DW_TX), (unsigned)((g.ho + DW_TY - 1) / DW_TY),
                (unsigned)(planes < 65535 ? planes : 65535));
      if ((g.ho + DW_TY - 1) / DW_TY > 65535) return (int)cudaErrorInvalidConfiguration;
      DLK_DISPATCH_FLOAT(a->dtype, T,
                         DLK_LAUNCH(fwd_depthwise_kernel<T>, grid, dim3(DW_TX, DW_TY), bytes, stream)(*a, ph, pw));
      break;
    }
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
