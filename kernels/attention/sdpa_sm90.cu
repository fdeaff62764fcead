// attention family: SDPA forward variant 3 "flash_wgmma", the Hopper (sm_90a) kernel in
// the manner of FlashAttention-3: TMA loads, wgmma tensor cores, warp-specialised
// producer/consumer warpgroups through an mbarrier pipeline, online softmax in registers.
// Status: compiled for sm_90a, never run (written without a GPU). "First run" below names
// what only a GPU can show wrong.
//
// ---- Scope ----
// f16/bf16, D == Dv in {64, 128} (others: variant 2), q/k/v with a unit head-dim stride and
// 16-byte aligned rows (TMA), no k_lengths (TMA loads whole key tiles: a padded key's v row
// would enter P V as 0 * v, which is NaN where the padding holds NaN; variant 2 never reads
// it). Causal, q_lengths, bias and dropout are applied in registers as in variant 2.
//
// ---- Tiles and warpgroups ----
// Block: 128 query rows of one (b, h), 384 threads = 3 warpgroups:
//   warpgroup 0  producer: setmaxnreg.dec 40; one thread issues every TMA load: Q once,
//                then per key block K (BN = 128 keys) and V into a 2-stage ring;
//   warpgroup 1  consumer 0: query rows 0..63 of the block;
//   warpgroup 2  consumer 1: rows 64..127.
// Each consumer (setmaxnreg.inc 232), per key block:
//   S (64 x 128 f32, 64 registers) = Q_c K^T      wgmma m64n128k16, A and B from shared memory
//   scale, bias, masks, online softmax (row max over the quad, as variant 2), dropout
//   O (64 x HD f32, HD/2 registers) *= alpha;  O += P V   wgmma m64nHDk16, A = P from
//     registers (the S accumulators rounded to T: the accumulator of an 8-column block and
//     the A fragment of a k16 step share the mma.sync m16n8k16 layout per warp), B = V
//   then releases the stage. No overlap of softmax with the next block's wgmma (FA3's
//   ping-pong scheduling and intra-warpgroup pipelining are the next step).
//
// ---- Shared memory (dynamic, 1024-aligned: the 128-byte swizzle atom is 8 rows x 128 B) ----
//   Q        HD/64 boxes {64 d, 128 rows}, 16 KiB each: box j holds d 64j..64j+63 of every
//            row, row r at 128 r bytes (swizzled); consumer c's rows start 8192 B in.
//   K[s]     HD/64 boxes {64 d, 128 keys}, 16 KiB each, the same layout.
//   V[s]     2 x (HD/64) boxes {64 d, 64 keys}, 8 KiB each, ordered [kb][dn]: key half kb,
//            d half dn at (kb HD/64 + dn) 8 KiB; rows are keys (128 bytes of d each).
//   full[2], empty[2], q_full mbarriers (static shared memory).
//   HD 128: 32 + 2 x (32 + 32) = 160 KiB; HD 64: 16 + 2 x (16 + 16) = 80 KiB.
// wgmma descriptors (PTX ISA "Matrix Descriptor Format", 128-byte swizzle):
//   Q and K are K-major (d contiguous): start + 32 B per k16 step inside a box, the next
//   box for k >= 64; SBO 1024 (next 8 rows), LBO 16 (unused).
//   V is MN-major for O = P V (n = d contiguous, k = keys): transpose bit, LBO 8192 (next
//   64-wide d atom = next box along dn), SBO 1024 (next 8 keys), start + 2048 B per k16
//   step inside a 64-key box, + 16384 B for the second key half (kb = 1).
// Out-of-range rows and keys (past Tq, Tk) are zero-filled by TMA.
//
// ---- Pipeline protocol (stage s = blk % 2, round r = blk / 2) ----
//   q_full:   1 arrival (expect_tx of Q's bytes) + the bytes; consumers wait parity 0.
//   full[s]:  1 arrival (expect_tx of K and V bytes) + the bytes; consumers wait parity r & 1.
//   empty[s]: 8 arrivals (lane 0 of each consumer warp) after the block's wgmmas complete;
//             the producer waits parity (r - 1) & 1 before refilling (not in round 0).
// Every wait has the 10-second watchdog of kernels/nn_gemm_sm90.cu: a protocol bug traps.
//
// ---- First run on an H100: what to look at, in order ----
//  1. test_attention --gpu, cases "one" and "t7" with the forward forced to flash_wgmma
//     (DLK_FORCE_VARIANT=sdpa_fwd:3): a wrong Q/K descriptor shows as S mismatching
//     everywhere; a wrong V descriptor or P fragment as O wrong while lse is right (lse
//     depends only on S).
//  2. A trap = barrier protocol or TMA map (cuTensorMapEncodeTiled's error comes back in
//     the run's message).
//  3. Then the sweep (every case with D == Dv in {64, 128}) and dlk-bench --family attention.
#include <string.h>

#include <type_traits>

#include <cuda.h>          // CUtensorMap and its enums: types only, libcuda is not linked
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include "sdpa_common.cuh"

#ifndef DLK_HAVE_SM90A
#define DLK_HAVE_SM90A 0
#endif

using namespace dlk;

namespace {

constexpr int W3_BM = 128, W3_BN = 128, W3_THREADS = 384;

template <int HD>
struct W3Cfg {
  static constexpr int Q_BYTES = W3_BM * HD * 2;
  static constexpr int K_BYTES = W3_BN * HD * 2;
  static constexpr int V_BYTES = W3_BN * HD * 2;
  static constexpr int STAGE = K_BYTES + V_BYTES;
  static constexpr size_t SMEM = (size_t)Q_BYTES + 2 * STAGE + 1024;  // + alignment
};
static_assert(W3Cfg<64>::STAGE % 1024 == 0 && W3Cfg<128>::STAGE % 1024 == 0, "1024-aligned stages");

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)

constexpr int W3_CONSUMER_WARPS = 8;
constexpr unsigned long long W3_WATCHDOG_NS = 10000000000ull;  // 10 s

__device__ __forceinline__ uint32_t s_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
// Wait for the phase with parity `parity`; traps after the watchdog (a hung GPU test is
// worse than a failed one).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  if (mbar_try(bar, parity)) return;
  const uint64_t t0 = global_ns();
  for (uint32_t spin = 1;; spin++) {
    if (mbar_try(bar, parity)) return;
    if ((spin & 0xfff) == 0 && global_ns() - t0 > W3_WATCHDOG_NS) __trap();
  }
}
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}
// One box of a 4-D tensor map (coordinates innermost first) into shared memory at dst.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap *map, int c0, int c1,
                                            int c2, int c3, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
template <int N>
__device__ __forceinline__ void acc_fence(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
// Shared-memory matrix descriptor: start >> 4 (bits 0-13), LBO >> 4 (16-29), SBO >> 4
// (32-45), base offset 0 (atoms 1024-aligned), swizzle 128 B (bits 62-63 = 1).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo & 0x3FFFF) >> 4) << 16) |
         ((uint64_t)((sbo & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

#define W3_ACC8(i)                                                                            \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define W3_ACC32(i) W3_ACC8(i), W3_ACC8(i + 8), W3_ACC8(i + 16), W3_ACC8(i + 24)
#define W3_REGS32                                                                              \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, "                                                                            \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31"
#define W3_REGS64                                                                                \
  W3_REGS32                                                                                      \
  ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, " \
  "%50, %51, %52, "                                                                              \
  "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// d (64 x 128) (+)= A (64 x 16, desc da) B (16 x 128, desc db); both K-major. scale_d 0:
// d = A B (the old d ignored), 1: d += A B.
#define W3_SS_N128(TYPE)                                                          \
  asm volatile(                                                                   \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" W3_REGS64 \
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"                                          \
      : W3_ACC32(0), W3_ACC32(32)                                                 \
      : "l"(da), "l"(db), "r"(scale_d))
template <typename T>
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], uint64_t da, uint64_t db,
                                              int scale_d) {
  if constexpr (std::is_same<T, bf16>::value) {
    W3_SS_N128("bf16");
  } else {
    W3_SS_N128("f16");
  }
}

// d (64 x N) += A (64 x 16 from registers a[4], the mma.sync m16n8k16 A layout per warp)
// B (16 x N, desc db, MN-major: transpose bit 1). N 128: accumulators %0..%63, A %64..%67,
// the descriptor %68, scale-d %69; N 64: %0..%31, %32..%35, %36, %37.
#define W3_RS_N128(TYPE)                                                          \
  asm volatile(                                                                   \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" W3_REGS64 \
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                            \
      : W3_ACC32(0), W3_ACC32(32)                                                 \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1))
#define W3_RS_N64(TYPE)                                                          \
  asm volatile(                                                                  \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                               \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" W3_REGS32 \
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                           \
      : W3_ACC32(0)                                                              \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1))
template <typename T, int N>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (N == 128) {
    if constexpr (std::is_same<T, bf16>::value) {
      W3_RS_N128("bf16");
    } else {
      W3_RS_N128("f16");
    }
  } else {
    if constexpr (std::is_same<T, bf16>::value) {
      W3_RS_N64("bf16");
    } else {
      W3_RS_N64("f16");
    }
  }
}

#endif  // sm_90a

// The kernel. HD: 64 or 128 (= D = Dv). Maps: q {D, Tq, Hq, B} box {64, 128}; k {D, Tk, Hk,
// B} box {64, 128}; v {Dv, Tk, Hk, B} box {64, 64}.
template <typename T, int HD>
__global__ __launch_bounds__(W3_THREADS, 1) void flash_fwd_wgmma_kernel(
    const __grid_constant__ CUtensorMap map_q, const __grid_constant__ CUtensorMap map_k,
    const __grid_constant__ CUtensorMap map_v, const dlk_k_sdpa_desc a) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  typedef W3Cfg<HD> C;
  constexpr int NBOX = HD / 64;  // 64-wide d boxes
  __shared__ __align__(8) uint64_t full_bar[2], empty_bar[2], q_bar;
  DLK_DYNAMIC_SHARED(unsigned char, w3_smem, 1024);
  const uint32_t smem0 = (s_addr(w3_smem) + 1023u) & ~1023u;
  const uint32_t sq = smem0, sstage = smem0 + C::Q_BYTES;
  const int wg = threadIdx.x / 128;
  const int64_t i0 = (int64_t)blockIdx.x * W3_BM, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (a.Hq / a.Hk);
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq), kl = a.Tk;

  // Key blocks: up to the last key visible to the block's last live row.
  const int64_t last_row = (i0 + W3_BM < ql ? i0 + W3_BM : ql) - 1;
  int64_t jmax = last_row < i0 ? -1 : kl - 1;
  if (a.causal && jmax >= 0 && last_row + kl - ql < jmax) jmax = last_row + kl - ql;
  const int nblocks = jmax < 0 ? 0 : (int)(jmax / W3_BN) + 1;

  if (threadIdx.x == 0) {
    for (int s = 0; s < 2; s++) {
      mbar_init(s_addr(&full_bar[s]), 1);
      mbar_init(s_addr(&empty_bar[s]), W3_CONSUMER_WARPS);
    }
    mbar_init(s_addr(&q_bar), 1);
    mbar_init_fence();
  }
  __syncthreads();  // the last block-wide barrier: the roles never meet again

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0 && nblocks > 0) {
      tma_prefetch_map(&map_q);
      tma_prefetch_map(&map_k);
      tma_prefetch_map(&map_v);
      mbar_expect_tx(s_addr(&q_bar), C::Q_BYTES);
#pragma unroll
      for (int j = 0; j < NBOX; j++)
        tma_load_4d(sq + j * 16384, &map_q, 64 * j, (int)i0, (int)h, (int)b, s_addr(&q_bar));
      for (int blk = 0; blk < nblocks; blk++) {
        const int s = blk & 1;
        if (blk >= 2) mbar_wait(s_addr(&empty_bar[s]), ((blk >> 1) - 1) & 1);
        const uint32_t full = s_addr(&full_bar[s]);
        const uint32_t sk = sstage + s * C::STAGE, sv = sk + C::K_BYTES;
        const int j0 = blk * W3_BN;
        mbar_expect_tx(full, C::STAGE);
#pragma unroll
        for (int j = 0; j < NBOX; j++)
          tma_load_4d(sk + j * 16384, &map_k, 64 * j, j0, (int)hk, (int)b, full);
#pragma unroll
        for (int kb = 0; kb < 2; kb++)
#pragma unroll
          for (int dn = 0; dn < NBOX; dn++)
            tma_load_4d(sv + (kb * NBOX + dn) * 8192, &map_v, 64 * dn, j0 + 64 * kb, (int)hk,
                        (int)b, full);
      }
    }
    return;
  }

  // ---- consumers ----
  setmaxnreg_inc<232>();
  const int cw = wg - 1;
  const int lane = threadIdx.x & 31, wi = (threadIdx.x >> 5) & 3;
  const int g = lane >> 2, tq = lane & 3;
  const float log2e = 1.4426950408889634f, sc = (float)a.scale * log2e;
  const int64_t ri[2] = {i0 + cw * 64 + wi * 16 + g, i0 + cw * 64 + wi * 16 + g + 8};
  float o[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; i++) o[i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  if (nblocks > 0) mbar_wait(s_addr(&q_bar), 0);
  for (int blk = 0; blk < nblocks; blk++) {
    const int s = blk & 1;
    const int64_t j0 = (int64_t)blk * W3_BN;
    mbar_wait(s_addr(&full_bar[s]), (blk >> 1) & 1);
    const uint32_t sk = sstage + s * C::STAGE, sv = sk + C::K_BYTES;

    // S = Q_c K^T
    float sacc[64];
#pragma unroll
    for (int i = 0; i < 64; i++) sacc[i] = 0.f;
    acc_fence(sacc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      const uint32_t qa = sq + (kk >> 2) * 16384 + cw * 8192 + (kk & 3) * 32;
      const uint32_t kb = sk + (kk >> 2) * 16384 + (kk & 3) * 32;
      wgmma_ss_n128<T>(sacc, smem_desc(qa, 16, 1024), smem_desc(kb, 16, 1024), kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    acc_fence(sacc);

    // scale, bias, masks (log2 domain); sacc[4 j + r]: row ri[r >> 1], key j0 + 8 j + 2 tq + (r &
    // 1)
#pragma unroll
    for (int n = 0; n < 16; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float x = sacc[4 * n + e] * sc;
        const int64_t i = ri[e >> 1], j = j0 + n * 8 + 2 * tq + (e & 1);
        if (!visible(i, j, ql, kl, a.causal)) {
          x = -INFINITY;
        } else if (a.bias.data) {
          x += to_acc(*at4<const T>(a.bias, b, h, i, j)) * log2e;
        }
        sacc[4 * n + e] = x;
      }
    // online softmax (as variant 2)
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < 16; n++)
        mx = fmaxf(mx, fmaxf(sacc[4 * n + 2 * r], sacc[4 * n + 2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[r] = exp2f(m[r] - m_use);
      m[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < 16; n++) {
        sacc[4 * n + 2 * r] = exp2f(sacc[4 * n + 2 * r] - m_use);
        sacc[4 * n + 2 * r + 1] = exp2f(sacc[4 * n + 2 * r + 1] - m_use);
        sum += sacc[4 * n + 2 * r] + sacc[4 * n + 2 * r + 1];
      }
      l[r] = l[r] * alpha[r] + sum;
    }
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
      o[4 * n] *= alpha[0], o[4 * n + 1] *= alpha[0];
      o[4 * n + 2] *= alpha[1], o[4 * n + 3] *= alpha[1];
    }
    if (a.drop_threshold) {
      const float zs = (float)a.drop_scale;
#pragma unroll
      for (int n = 0; n < 16; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int64_t i = ri[e >> 1], j = j0 + n * 8 + 2 * tq + (e & 1);
          sacc[4 * n + e] = keep(a, b, h, i, j) ? sacc[4 * n + e] * zs : 0.f;
        }
    }

    // O += P V: every P fragment is made before the fence (a register written between
    // wgmma.fence and the wgmma that reads it makes ptxas serialise them)
    uint32_t pa[W3_BN / 16][4];
#pragma unroll
    for (int kk = 0; kk < W3_BN / 16; kk++) {
      pa[kk][0] = pack2<T>(sacc[8 * kk], sacc[8 * kk + 1]);
      pa[kk][1] = pack2<T>(sacc[8 * kk + 2], sacc[8 * kk + 3]);
      pa[kk][2] = pack2<T>(sacc[8 * kk + 4], sacc[8 * kk + 5]);
      pa[kk][3] = pack2<T>(sacc[8 * kk + 6], sacc[8 * kk + 7]);
    }
#pragma unroll
    for (int kk = 0; kk < W3_BN / 16; kk++)
#pragma unroll
      for (int r = 0; r < 4; r++) asm volatile("" : "+r"(pa[kk][r])::"memory");
    acc_fence(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < W3_BN / 16; kk++) {
      const uint32_t vb = sv + (kk >> 2) * (NBOX * 8192) + (kk & 3) * 2048;
      wgmma_rs<T, HD>(o, pa[kk], smem_desc(vb, 8192, 1024));
    }
    wgmma_commit();
    wgmma_wait<0>();
    acc_fence(o);
    __syncwarp();
    if (lane == 0) mbar_arrive(s_addr(&empty_bar[s]));
  }

  // ---- epilogue (registers -> global, as variant 2) ----
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float lt = l[r];
    lt += __shfl_xor_sync(0xffffffffu, lt, 1);
    lt += __shfl_xor_sync(0xffffffffu, lt, 2);
    const float inv = lt > 0.f ? 1.f / lt : 0.f;
    const float lse = lt > 0.f ? (m[r] + log2f(lt)) * 0.6931471805599453f : -INFINITY;
    const int64_t i = ri[r];
    if (i >= a.Tq) continue;
    T *out = at4<T>(a.out, b, h, i, 0);
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
      const int64_t d = n * 8 + 2 * tq;
      *(uint32_t *)(out + d) = pack2<T>(o[4 * n + 2 * r] * inv, o[4 * n + 2 * r + 1] * inv);
    }
    if (tq == 0 && a.lse) ((float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] = lse;
  }
#else
  // Not sm_90a: the host never launches this (the row's supports() refuses first).
  (void)map_q, (void)map_k, (void)map_v, (void)a;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

// ---- host side ----

const int64_t W3_COORD_MAX = 0x7fffffffLL - 512;

bool w3_check(const dlk_k_sdpa_desc *a, char *why, size_t n) {
  if (!tc_problem(a, "wgmma tensor cores", why, n)) return false;
  if (a->D != a->Dv || (a->D != 64 && a->D != 128)) {
    snprintf(why, n, "head dims D %lld, Dv %lld: the wgmma kernel takes D == Dv in {64, 128}",
             (long long)a->D, (long long)a->Dv);
    return false;
  }
  if (a->k_len) {
    snprintf(
        why, n,
        "k_lengths: TMA loads whole key tiles (padded keys would be read); flash_mma takes them");
    return false;
  }
  if (!tc_tensor("q", a->q, a->D, why, n) || !tc_tensor("k", a->k, a->D, why, n) ||
      !tc_tensor("v", a->v, a->Dv, why, n))
    return false;
  if (a->out.s3 != 1 || (a->out.s0 | a->out.s1 | a->out.s2) % 2 || (uintptr_t)a->out.data % 4) {
    snprintf(why, n, "out needs a unit head-dim stride and 4-byte aligned rows (paired stores)");
    return false;
  }
  if (a->Tq > W3_COORD_MAX || a->Tk > W3_COORD_MAX) {
    snprintf(why, n, "sequences beyond TMA's 32-bit coordinates");
    return false;
  }
  const dlk_k_t4 *ts[3] = {&a->q, &a->k, &a->v};
  for (int i = 0; i < 3; i++)
    if (ts[i]->s0 >= (1LL << 38) || ts[i]->s1 >= (1LL << 38) || ts[i]->s2 >= (1LL << 38)) {
      snprintf(why, n, "%s strides too large for TMA (>= 2^40 bytes)",
               i == 0   ? "q"
               : i == 1 ? "k"
                        : "v");
      return false;
    }
  return true;
}

// A 4-D map {d, rows, heads, batch} of a [B, H, T, D] tensor (unit d stride), box {64, rows_box,
// 1, 1}, 128-byte swizzle, zero fill out of bounds. Strides of dims of one index must still
// be positive multiples of 16 bytes.
int encode4(PFN_cuTensorMapEncodeTiled_v12000 encode, CUtensorMap *map, const char *name,
            CUtensorMapDataType dt, const dlk_k_t4 &t, int64_t B, int64_t H, int64_t T, int64_t D,
            uint32_t rows_box, char *err, size_t n) {
  const cuuint64_t dims[4] = {(cuuint64_t)D, (cuuint64_t)T, (cuuint64_t)H, (cuuint64_t)B};
  const cuuint64_t row = (cuuint64_t)(T > 1 ? t.s2 : D) * 2;
  const cuuint64_t head = H > 1 ? (cuuint64_t)t.s1 * 2 : row * (cuuint64_t)T;
  const cuuint64_t batch = B > 1 ? (cuuint64_t)t.s0 * 2 : head * (cuuint64_t)H;
  const cuuint64_t strides[3] = {row < 16 ? 16 : row, head < 16 ? 16 : head,
                                 batch < 16 ? 16 : batch};
  const cuuint32_t box[4] = {64, rows_box, 1, 1};
  const cuuint32_t es[4] = {1, 1, 1, 1};
  CUresult r = encode(map, dt, 4, t.data, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    snprintf(err, n,
             "cuTensorMapEncodeTiled(%s) failed with CUresult %d: dims {%llu, %llu, %llu, %llu} "
             "strides {%llu, "
             "%llu, %llu} bytes, box {64, %u, 1, 1}",
             name, (int)r, (unsigned long long)dims[0], (unsigned long long)dims[1],
             (unsigned long long)dims[2], (unsigned long long)dims[3],
             (unsigned long long)strides[0], (unsigned long long)strides[1],
             (unsigned long long)strides[2], rows_box);
    return (int)cudaErrorInvalidValue;
  }
  return 0;
}

template <typename T, int HD>
int launch_w3(const dlk_k_sdpa_desc *a, const CUtensorMap &mq, const CUtensorMap &mk,
              const CUtensorMap &mv, cudaStream_t st) {
  const size_t smem = W3Cfg<HD>::SMEM;
  cudaError_t e = cudaFuncSetAttribute(flash_fwd_wgmma_kernel<T, HD>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)((a->Tq + W3_BM - 1) / W3_BM), (unsigned)a->Hq, (unsigned)a->B);
  DLK_LAUNCH(flash_fwd_wgmma_kernel<T, HD>, grid, W3_THREADS, smem, st)(mq, mk, mv, *a);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_sdpa_fwd_wgmma_supports(const dlk_k_sdpa_desc *a, char *why, size_t n) {
#if defined(DLK_CUDA_EMU)
  snprintf(why, n, "needs a real GPU (inline PTX)");
  return 0;
#else
  if (!DLK_HAVE_SM90A) {
    snprintf(why, n, "built without sm_90a (add 90a to DLK_CUDA_ARCHS)");
    return 0;
  }
  return w3_check(a, why, n) ? 1 : 0;
#endif
}

extern "C" int dlk_k_sdpa_fwd_wgmma(const dlk_k_sdpa_desc *a, char *err, size_t err_len,
                                    void *stream) {
  if (err_len) err[0] = '\0';
  if (a->B <= 0 || a->Hq <= 0 || a->Tq <= 0) return 0;
  if (!dlk_k_sdpa_fwd_wgmma_supports(a, err, err_len)) return (int)cudaErrorInvalidValue;
  void *fn = NULL;
  cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
  cudaError_t e =
      cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q);
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || fn == NULL) {
    snprintf(err, err_len, "cuTensorMapEncodeTiled not found in the driver (%s, query result %d)",
             cudaGetErrorString(e), (int)q);
    return e != cudaSuccess ? (int)e : (int)cudaErrorNotSupported;
  }
  PFN_cuTensorMapEncodeTiled_v12000 encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
  const CUtensorMapDataType dt =
      a->dtype == DLK_F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  CUtensorMap mq, mk, mv;
  int rc = encode4(encode, &mq, "q", dt, a->q, a->B, a->Hq, a->Tq, a->D, W3_BM, err, err_len);
  if (!rc) rc = encode4(encode, &mk, "k", dt, a->k, a->B, a->Hk, a->Tk, a->D, W3_BN, err, err_len);
  if (!rc) rc = encode4(encode, &mv, "v", dt, a->v, a->B, a->Hk, a->Tk, a->Dv, 64, err, err_len);
  if (rc) return rc;
  cudaStream_t st = (cudaStream_t)stream;
  if (a->dtype == DLK_F16)
    return a->D == 64 ? launch_w3<f16, 64>(a, mq, mk, mv, st)
                      : launch_w3<f16, 128>(a, mq, mk, mv, st);
  return a->D == 64 ? launch_w3<bf16, 64>(a, mq, mk, mv, st)
                    : launch_w3<bf16, 128>(a, mq, mk, mv, st);
}
