// nn family: the gemm ladder. c[b] = act(alpha * a[b] @ bmat[b] + beta * c[b] + bias),
// z[b] = the value before act. Kernels (impl of the host/nn/nn_cuda.c rows), each followed
// by its launch:
//   1 naive   one thread per output element, any strides, every float dtype (GPU oracle)
//   2 tiled   64x64x16 shared-memory tiles, 4x4 outputs per thread, any strides
//   3 mma_tc  tensor cores (mma.sync m16n8k16, f32 accumulate) for f16/bf16, 128x128x32
//             block tile, 8 warps, 4-stage cp.async pipeline, ldmatrix, padded smem
//   4 wgmma   in gemm_sm90.cu (Hopper, sm_90a)
// then the epilogue kernel the vendor rows (cuBLAS, cuBLASLt) run after their gemm, and
// the launcher dlk_k_gemm (kernels/nn/nn.h) that picks the kernel by impl.
// No variant uses atomics or split-K: every result is bit-identical run to run.
#include <stdio.h>

#include "../common.cuh"
#include "gemm.cuh"
#include "nn.h"

using namespace dlk;

namespace {

bool empty(const dlk_k_gemm_desc *g) {
  return g->c.batch <= 0 || g->c.rows <= 0 || g->c.cols <= 0;
}

// ---- 1 naive ----
// Thread mapping: a grid-stride loop over the row-major index i of [B, M, N]
// (n fastest, so a warp writes consecutive columns); each thread runs the whole K loop for
// its element in the accumulation type. No shared memory.
template <typename T>
__global__ void gemm_naive_kernel(dlk_k_gemm_desc g) {
  typedef typename AccT<T>::type A;
  const int64_t M = g.c.rows, N = g.c.cols, K = g.a.cols;
  const int64_t total = g.c.batch * M * N;
  const A alpha = (A)g.alpha, beta = (A)g.beta;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n = i % N, t = i / N, m = t % M, b = t / M;
    const T *pa = (const T *)g.a.data + b * g.a.bs + m * g.a.rs;
    const T *pb = (const T *)g.b.data + b * g.b.bs + n * g.b.cs;
    A acc = 0;
    for (int64_t k = 0; k < K; k++) acc += to_acc(pa[k * g.a.cs]) * to_acc(pb[k * g.b.rs]);
    gemm_store<T, A>(g, alpha, beta, b, m, n, acc);
  }
}

template <typename T>
int launch_naive(const dlk_k_gemm_desc *g, cudaStream_t st) {
  const int64_t total = g->c.batch * g->c.rows * g->c.cols;
  DLK_LAUNCH(gemm_naive_kernel<T>, grid_for(total, 256), 256, 0, st)(*g);
  return (int)cudaGetLastError();
}

// ---- 2 tiled ----
// Block tile 64 (m) x 64 (n), k step 16, 256 threads as a 16x16 grid (ty, tx). Thread
// (ty, tx) owns outputs m = ty + 16 i, n = tx + 16 j (i, j < 4): strided so that smem
// reads are broadcasts (A) or consecutive words (B) and C stores by a warp are consecutive
// columns. Shared memory: As[16][65] (k, m) and Bs[16][65] (k, n) in the accumulation type,
// filled through the operands' strides (the unit-stride dim fastest across threads so the
// global loads coalesce; the +1 pad keeps the k-fastest stores conflict-free) with zeros
// outside [M, N, K]. Grid: x walks the tiles, y the batch (both grid-stride).
constexpr int TL_BM = 64, TL_BN = 64, TL_BK = 16, TL_THREADS = 256;

template <typename T>
__global__ __launch_bounds__(TL_THREADS) void gemm_tiled_kernel(dlk_k_gemm_desc g, int64_t tiles_n,
                                                                int64_t tiles) {
  typedef typename AccT<T>::type A;
  __shared__ A As[TL_BK][TL_BM + 1];
  __shared__ A Bs[TL_BK][TL_BN + 1];
  const int64_t M = g.c.rows, N = g.c.cols, K = g.a.cols;
  const A alpha = (A)g.alpha, beta = (A)g.beta;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const bool a_kfast = g.a.cs == 1, b_kfast = g.b.rs == 1;
  for (int64_t b = blockIdx.y; b < g.c.batch; b += gridDim.y) {
    const T *pa = (const T *)g.a.data + b * g.a.bs;
    const T *pb = (const T *)g.b.data + b * g.b.bs;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
      const int64_t m0 = (t / tiles_n) * TL_BM, n0 = (t % tiles_n) * TL_BN;
      A acc[4][4];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
      for (int64_t k0 = 0; k0 < K; k0 += TL_BK) {
        __syncthreads();  // the previous step's reads of As/Bs are done
#pragma unroll
        for (int r = 0; r < 4; r++) {
          int e = tid + r * TL_THREADS;
          int kk = a_kfast ? (e & 15) : (e >> 6), mm = a_kfast ? (e >> 4) : (e & 63);
          int64_t m = m0 + mm, k = k0 + kk;
          As[kk][mm] = (m < M && k < K) ? to_acc(pa[m * g.a.rs + k * g.a.cs]) : (A)0;
          kk = b_kfast ? (e & 15) : (e >> 6);
          int nn = b_kfast ? (e >> 4) : (e & 63);
          int64_t n = n0 + nn;
          k = k0 + kk;
          Bs[kk][nn] = (n < N && k < K) ? to_acc(pb[k * g.b.rs + n * g.b.cs]) : (A)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TL_BK; kk++) {
          A ar[4], br[4];
#pragma unroll
          for (int i = 0; i < 4; i++) ar[i] = As[kk][ty + 16 * i];
#pragma unroll
          for (int j = 0; j < 4; j++) br[j] = Bs[kk][tx + 16 * j];
#pragma unroll
          for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] += ar[i] * br[j];
        }
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int64_t m = m0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          int64_t n = n0 + tx + 16 * j;
          if (n < N) gemm_store<T, A>(g, alpha, beta, b, m, n, acc[i][j]);
        }
      }
    }
  }
}

template <typename T>
int launch_tiled(const dlk_k_gemm_desc *g, cudaStream_t st) {
  const int64_t tiles_n = (g->c.cols + TL_BN - 1) / TL_BN;
  const int64_t tiles = ((g->c.rows + TL_BM - 1) / TL_BM) * tiles_n;
  dim3 grid((unsigned)(tiles < (1 << 30) ? tiles : (1 << 30)),
            (unsigned)(g->c.batch < 65535 ? g->c.batch : 65535));
  DLK_LAUNCH(gemm_tiled_kernel<T>, grid, TL_THREADS, 0, st)(*g, tiles_n, tiles);
  return (int)cudaGetLastError();
}

// ---- 3 mma_tc ----
// Block tile 128 (m) x 128 (n) x 32 (k), 256 threads = 8 warps as 2 (m) x 4 (n); each warp
// computes 64 x 32 = 4 x 4 mma tiles of 16x8, accumulating in 64 f32 registers per thread.
// Operands stream through a 4-stage cp.async (16-byte, zero-filling) pipeline into shared
// memory; fragments come out with ldmatrix (.trans for an operand whose unit stride is
// along m or n). Shared memory per stage and operand, in elements, padded by 8 (16 bytes)
// per row so the 8 row addresses of each ldmatrix phase fall in distinct banks:
//   k-contiguous operand  (a with cs 1, b with rs 1): [128 rows][32 + 8]
//   m/n-contiguous operand (a with rs 1, b with cs 1): [32 k][128 + 8]
// 4 stages: at most 4 * 2 * 128 * 40 * 2 B = 80 KiB (dynamic). Tiles are walked in groups
// of 8 tile-rows (m) so concurrent blocks share A and B panels in L2. Edges: rows or
// columns past M/N/K are zero-filled by cp.async's src-size and never stored.
constexpr int MM_BM = 128, MM_BN = 128, MM_BK = 32, MM_STAGES = 4, MM_THREADS = 256, MM_PAD = 8,
              MM_GROUP_M = 8;

template <bool KMAJOR>
struct MmTile {
  static constexpr int LD = KMAJOR ? MM_BK + MM_PAD : 128 + MM_PAD;
  static constexpr int ROWS = KMAJOR ? 128 : MM_BK;
  static constexpr int ELEMS = ROWS * LD;
};

#if !defined(DLK_CUDA_EMU)  // inline PTX (cp.async, ldmatrix, mma.sync): a real GPU only
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}
// 16-byte async copy global -> shared; only src_bytes (0..16) are read, the rest is zero.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
// d += a (16x16, row) * b (16x8, col), f32 accumulate.
template <typename T>
__device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]);
template <>
__device__ __forceinline__ void mma16816<bf16>(float d[4], const uint32_t a[4],
                                               const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma16816<f16>(float d[4], const uint32_t a[4],
                                              const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ int clamp8(int64_t v) {
  return v <= 0 ? 0 : (v >= 8 ? 8 : (int)v);
}

// Copy one operand tile (128 x 32 of a, or 32 x 128 of b) for k-step k0 into shared memory.
// `rows_of` indexes the 128-long dim (m for a, n for b), `lead` is the stride along the
// non-contiguous dim, `count` the size of the 128-long dim (M or N).
// K-major: 512 chunks of 8 elements = 128 rows x 4 chunks; chunk c -> row c/4, k 8 (c%4).
// MN-major: 512 chunks = 32 k-rows x 16 chunks; chunk c -> k c/16, m/n 8 (c%16).
template <typename T, bool KMAJOR>
__device__ __forceinline__ void load_tile(T *s, const T *g, int64_t lead, int64_t r0, int64_t count,
                                          int64_t k0, int64_t K) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    int c = tid + i * MM_THREADS;
    int row, col;
    int64_t gr, gk;
    int valid;
    if (KMAJOR) {
      row = c >> 2;
      col = (c & 3) * 8;
      gr = r0 + row;
      gk = k0 + col;
      valid = gr < count ? clamp8(K - gk) : 0;
    } else {
      row = c >> 4;
      col = (c & 15) * 8;
      gk = k0 + row;
      gr = r0 + col;
      valid = gk < K ? clamp8(count - gr) : 0;
    }
    const T *src = valid ? (KMAJOR ? g + gr * lead + gk : g + gk * lead + gr) : g;
    DLK_KCHECK(row < MmTile<KMAJOR>::ROWS && col + 8 <= MmTile<KMAJOR>::LD - MM_PAD);
    cp_async16(s + row * MmTile<KMAJOR>::LD + col, src, valid * 2);
  }
}


template <typename T, bool A_K, bool B_K>
__global__ __launch_bounds__(MM_THREADS, 2) void gemm_mma_kernel(dlk_k_gemm_desc g, int tiles_m,
                                                                 int tiles_n, int pair_ok) {
  typedef MmTile<A_K> TA;
  typedef MmTile<B_K> TB;
  DLK_DYNAMIC_SHARED(unsigned char, mm_smem);
  T *sA = (T *)mm_smem;
  T *sB = sA + MM_STAGES * TA::ELEMS;
  const int64_t M = g.c.rows, N = g.c.cols, K = g.a.cols;
  const float alpha = (float)g.alpha, beta = (float)g.beta;
  const int64_t a_lead = A_K ? g.a.rs : g.a.cs, b_lead = B_K ? g.b.cs : g.b.rs;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = warp >> 2, wn = warp & 3;
  const int nk = (int)((K + MM_BK - 1) / MM_BK);

  // Grouped tile order: tiles [group*8, group*8+8) of m sweep n together.
  const int tile = blockIdx.x;
  const int group_size = MM_GROUP_M * tiles_n;
  const int first_m = (tile / group_size) * MM_GROUP_M;
  const int gm = min(tiles_m - first_m, MM_GROUP_M);
  const int64_t m0 = (int64_t)(first_m + (tile % group_size) % gm) * MM_BM;
  const int64_t n0 = (int64_t)((tile % group_size) / gm) * MM_BN;

  for (int64_t b = blockIdx.y; b < g.c.batch; b += gridDim.y) {
    const T *pa = (const T *)g.a.data + b * g.a.bs;
    const T *pb = (const T *)g.b.data + b * g.b.bs;
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

    __syncthreads();  // a previous batch's last reads of the stages are done
#pragma unroll
    for (int s = 0; s < MM_STAGES - 1; s++) {
      if (s < nk) {
        load_tile<T, A_K>(sA + s * TA::ELEMS, pa, a_lead, m0, M, (int64_t)s * MM_BK, K);
        load_tile<T, B_K>(sB + s * TB::ELEMS, pb, b_lead, n0, N, (int64_t)s * MM_BK, K);
      }
      cp_async_commit();
    }
    for (int kt = 0; kt < nk; kt++) {
      cp_async_wait<MM_STAGES - 2>();  // tile kt has landed (this thread's copies)
      __syncthreads();                 // ... everyone's; and stage (kt-1) is free
      const int nt = kt + MM_STAGES - 1;
      if (nt < nk) {
        const int st = nt % MM_STAGES;
        load_tile<T, A_K>(sA + st * TA::ELEMS, pa, a_lead, m0, M, (int64_t)nt * MM_BK, K);
        load_tile<T, B_K>(sB + st * TB::ELEMS, pb, b_lead, n0, N, (int64_t)nt * MM_BK, K);
      }
      cp_async_commit();
      const T *sa = sA + (kt % MM_STAGES) * TA::ELEMS;
      const T *sb = sB + (kt % MM_STAGES) * TB::ELEMS;
#pragma unroll
      for (int kk = 0; kk < MM_BK / 16; kk++) {
        uint32_t af[4][4], bfr[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) {
          if (A_K) {
            // matrices (m 0-7,k 0-7) (m 8-15,k 0-7) (m 0-7,k 8-15) (m 8-15,k 8-15) = a0..a3
            int row = wm * 64 + i * 16 + (lane & 15), col = kk * 16 + (lane >> 4) * 8;
            ldmatrix_x4(af[i], sa + row * TA::LD + col);
          } else {
            // stored [k][m]: transposed 8x8 loads; lanes 8-15 take m + 8, 16-31 k + 8
            int krow = kk * 16 + (lane & 7) + ((lane >> 4) << 3);
            int mcol = wm * 64 + i * 16 + ((lane >> 3) & 1) * 8;
            ldmatrix_x4_trans(af[i], sa + krow * TA::LD + mcol);
          }
        }
#pragma unroll
        for (int jj = 0; jj < 2; jj++) {
          uint32_t r[4];
          if (B_K) {
            // stored [n][k]: (n 0-7,k 0-7) (n 0-7,k 8-15) (n 8-15,k 0-7) (n 8-15,k 8-15)
            int nrow = wn * 32 + jj * 16 + (lane & 7) + ((lane >> 4) << 3);
            int kcol = kk * 16 + ((lane >> 3) & 1) * 8;
            ldmatrix_x4(r, sb + nrow * TB::LD + kcol);
          } else {
            // stored [k][n]: same four matrices, transposed on load
            int krow = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
            int ncol = wn * 32 + jj * 16 + (lane >> 4) * 8;
            ldmatrix_x4_trans(r, sb + krow * TB::LD + ncol);
          }
          bfr[2 * jj][0] = r[0];
          bfr[2 * jj][1] = r[1];
          bfr[2 * jj + 1][0] = r[2];
          bfr[2 * jj + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) mma16816<T>(acc[i][j], af[i], bfr[j]);
      }
    }
    cp_async_wait<0>();

    // Accumulator (i, j, r): row wm*64 + i*16 + lane/4 (+8 for r >= 2),
    // column wn*32 + j*8 + 2*(lane%4) (+1 for odd r).
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int64_t m = m0 + wm * 64 + i * 16 + (lane >> 2) + h * 8;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const int64_t n = n0 + wn * 32 + j * 8 + 2 * (lane & 3);
          gemm_store2<T>(g, pair_ok != 0, alpha, beta, b, m, n, acc[i][j][2 * h],
                        acc[i][j][2 * h + 1]);
        }
      }
    }
  }
}

template <typename T, bool A_K, bool B_K>
int launch_mma(const dlk_k_gemm_desc *g, int pair_ok, cudaStream_t st) {
  const int tiles_m = (int)((g->c.rows + MM_BM - 1) / MM_BM);
  const int tiles_n = (int)((g->c.cols + MM_BN - 1) / MM_BN);
  const size_t smem = (size_t)MM_STAGES * (MmTile<A_K>::ELEMS + MmTile<B_K>::ELEMS) * sizeof(T);
  cudaError_t e = cudaFuncSetAttribute(gemm_mma_kernel<T, A_K, B_K>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)(tiles_m * tiles_n), (unsigned)(g->c.batch < 65535 ? g->c.batch : 65535));
  DLK_LAUNCH(gemm_mma_kernel<T, A_K, B_K>, grid, MM_THREADS, smem, st)(*g, tiles_m, tiles_n, pair_ok);
  return (int)cudaGetLastError();
}

template <typename T>
int launch_mma_layout(const dlk_k_gemm_desc *g, bool a_k, bool b_k, int pair_ok, cudaStream_t st) {
  if (a_k && b_k) return launch_mma<T, true, true>(g, pair_ok, st);
  if (a_k) return launch_mma<T, true, false>(g, pair_ok, st);
  if (b_k) return launch_mma<T, false, true>(g, pair_ok, st);
  return launch_mma<T, false, false>(g, pair_ok, st);
}

// Layout of one mma operand: 1 k-contiguous, 0 m/n-contiguous, -1 neither.
// `rows` is the size along the 128-long dim (M or N), `rs_k`/`rs_mn` the strides along k
// and along that dim.
int mma_layout(int64_t rows, int64_t K, int64_t s_k, int64_t s_mn) {
  if (s_k == 1 || K == 1) return 1;
  if (s_mn == 1 || rows == 1) return 0;
  return -1;
}

// The mma kernel's rules on the operands (dlk_k_gemm_supports, impl 3).
int mma_supports(const dlk_k_gemm_desc *g, char *why, size_t why_len) {
  const int64_t M = g->c.rows, N = g->c.cols, K = g->a.cols;
  if (g->dtype != DLK_F16 && g->dtype != DLK_BF16) {
    snprintf(why, why_len, "tensor-core mma.sync path is f16/bf16 only (dtype %d)", g->dtype);
    return 0;
  }
  const struct {
    const char *name;
    const dlk_k_mat *t;
    int64_t rows, s_k, s_mn;
  } ops[2] = {{"a", &g->a, M, g->a.cs, g->a.rs}, {"b", &g->b, N, g->b.rs, g->b.cs}};
  for (int i = 0; i < 2; i++) {
    const dlk_k_mat *t = ops[i].t;
    int lay = mma_layout(ops[i].rows, K, ops[i].s_k, ops[i].s_mn);
    if (lay < 0) {
      snprintf(why, why_len, "%s has no unit stride (strides %lld, %lld): needs k or %s contiguous",
               ops[i].name, (long long)t->rs, (long long)t->cs, i == 0 ? "m" : "n");
      return 0;
    }
    int64_t lead = lay ? ops[i].s_mn : ops[i].s_k;
    int64_t lead_count = lay ? ops[i].rows : K;
    if (lead_count > 1 && (lead <= 0 || lead % 8 != 0)) {
      snprintf(why, why_len,
               "%s rows not 16-byte aligned: leading stride %lld not a positive multiple of 8",
               ops[i].name, (long long)lead);
      return 0;
    }
    if (t->batch > 1 && t->bs % 8 != 0) {
      snprintf(why, why_len, "%s batch stride %lld not a multiple of 8", ops[i].name,
               (long long)t->bs);
      return 0;
    }
    if (t->bs < 0) {
      snprintf(why, why_len, "%s has a negative batch stride", ops[i].name);
      return 0;
    }
    if (!aligned_ptr(t->data, 16)) {
      snprintf(why, why_len, "%s data pointer not 16-byte aligned", ops[i].name);
      return 0;
    }
  }
  const int64_t tiles = ((M + MM_BM - 1) / MM_BM) * ((N + MM_BN - 1) / MM_BN);
  if (tiles > 0x7fffffff) {
    snprintf(why, why_len, "%lld output tiles exceed the grid", (long long)tiles);
    return 0;
  }
  return 1;
}

int launch_mma_tc(const dlk_k_gemm_desc *g, cudaStream_t st) {
  char why[8];
  if (!mma_supports(g, why, sizeof why)) return (int)cudaErrorInvalidValue;
  const int64_t M = g->c.rows, N = g->c.cols, K = g->a.cols;
  const bool a_k = mma_layout(M, K, g->a.cs, g->a.rs) == 1;
  const bool b_k = mma_layout(N, K, g->b.rs, g->b.cs) == 1;
  // 32-bit pair stores: unit column stride, even row/batch strides, 4-byte aligned base.
  auto pair_fits = [](const dlk_k_mat &t) {
    return t.cs == 1 && t.rs % 2 == 0 && t.bs % 2 == 0 && aligned_ptr(t.data, 4);
  };
  const int pair_ok = pair_fits(g->c) && (!g->z.data || pair_fits(g->z));
  if (g->dtype == DLK_F16) return launch_mma_layout<f16>(g, a_k, b_k, pair_ok, st);
  return launch_mma_layout<bf16>(g, a_k, b_k, pair_ok, st);
}
#else   // DLK_CUDA_EMU: impl 3's supports() says "needs a real GPU"
int launch_mma_tc(const dlk_k_gemm_desc *, cudaStream_t) {
  return (int)cudaErrorNotSupported;
}
#endif  // !DLK_CUDA_EMU

// ---- the epilogue for the vendor rows ----
// Thread mapping: geom2 over the B*M rows and N columns (row -> (b, m) once per row);
// no shared memory.
template <typename T>
__global__ void gemm_epilogue_kernel(dlk_k_gemm_desc g, int add_bias) {
  typedef typename AccT<T>::type A;
  const int64_t M = g.c.rows, N = g.c.cols, rows = g.c.batch * M;
  for (int64_t row = row0(); row < rows; row += row_step()) {
    const int64_t b = row / M, m = row % M;
    T *crow = (T *)g.c.data + b * g.c.bs + m * g.c.rs;
    for (int64_t n = col0(); n < N; n += col_step()) {
      T *c = crow + n * g.c.cs;
      A v = to_acc(*c);
      if (add_bias && g.bias.data) v += to_acc(((const T *)g.bias.data)[n * g.bias.s]);
      if (g.z.data) ((T *)g.z.data)[b * g.z.bs + m * g.z.rs + n * g.z.cs] = from_acc<T>(v);
      *c = from_acc<T>(act_fwd(v, g.act));
    }
  }
}

}  // namespace

extern "C" int dlk_k_gemm_epilogue(const dlk_k_gemm_desc *g, void *stream) {
  if (empty(g)) return 0;
  const Geom2 geo = geom2(g->c.batch * g->c.rows, g->c.cols);
  DLK_DISPATCH_FLOAT(g->dtype, T,
                     DLK_LAUNCH(gemm_epilogue_kernel<T>, geo.grid, geo.block, 0, stream)(*g, g->add_bias));
  return (int)cudaGetLastError();
}

// ---- the launcher ----

extern "C" int dlk_k_gemm_supports(const dlk_k_gemm_desc *g, int impl, char *why, size_t why_len) {
  switch (impl) {
    case 1:
    case 2: return 1;
    case 3:
#if defined(DLK_CUDA_EMU)
      snprintf(why, why_len, "needs a real GPU (inline PTX: mma.sync, ldmatrix, cp.async)");
      return 0;
#else
      return mma_supports(g, why, why_len);
#endif
    case 4: return gemm_wgmma_supports(g, why, why_len);
    default: snprintf(why, why_len, "no gemm kernel %d", impl); return 0;
  }
}

extern "C" int dlk_k_gemm(const dlk_k_gemm_desc *g, int impl, void *ws, void *stream) {
  (void)ws;
  if (g->err && g->err_len) g->err[0] = '\0';
  if (empty(g)) return 0;
  cudaStream_t st = (cudaStream_t)stream;
  switch (impl) {
    case 1: DLK_DISPATCH_FLOAT(g->dtype, T, return launch_naive<T>(g, st)); return 0;
    case 2: DLK_DISPATCH_FLOAT(g->dtype, T, return launch_tiled<T>(g, st)); return 0;
    case 3: return launch_mma_tc(g, st);
    case 4: return gemm_wgmma(g, st);
    default: return (int)cudaErrorInvalidValue;
  }
}
