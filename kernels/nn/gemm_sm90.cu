// nn family: gemm variant 4 "wgmma", the Hopper (sm_90a) tensor-core kernel.
//   c[b] = act(alpha * a[b] @ bmat[b] + beta * c[b] + bias), z[b] = the value before act.
// Status: compiled for sm_90a, never run (written without a GPU). Every piece that can be
// wrong in a way only a GPU shows is named in "First run" below.
//
// ---- Tiles and warpgroups ----
// Block tile 128 (m) x 256 (n) x 64 (k), f16/bf16 operands, f32 accumulators.
// 384 threads = 3 warpgroups of 128:
//   warpgroup 0  producer: gives registers away (setmaxnreg.dec 40); one thread issues
//                every TMA load (cp.async.bulk.tensor.3d) of the tile's k loop;
//   warpgroup 1  consumer 0: rows 0..63 of the tile, all 256 columns;
//   warpgroup 2  consumer 1: rows 64..127.
// Each consumer takes registers (setmaxnreg.inc 232) and runs, per 64-wide k block, four
// wgmma.mma_async.m64n256k16 (k 16 each) from shared memory into 128 f32 accumulators
// per thread (64 x 256 / 128 threads). Register budget: 128 x 40 + 256 x 232 = 64512 of the
// SM's 65536 (the kernel is compiled for 384 threads x 168).
//
// ---- Shared memory (dynamic, rounded up to 1024 bytes: the 128-byte swizzle repeats
// every 8 rows x 128 bytes and the wgmma descriptors assume a 1024-aligned atom) ----
//   4 stages x (A tile 128 x 64 = 16 KiB, B tile 256 x 64 = 32 KiB) = 192 KiB
//   full[4], empty[4] mbarriers (static shared memory)
// TMA writes every tile with CU_TENSOR_MAP_SWIZZLE_128B: the box's inner dimension is 64
// elements = 128 bytes, one smem row per outer index, 16-byte chunk c of row r stored at
// chunk c ^ (r % 8). Per operand layout:
//   K-major (unit stride along k: a with cs 1, b with rs 1 = the w^T of a linear layer):
//     one box {64 k, 128 m} (a) or {64 k, 256 n} (b): row = m or n, 128 bytes of k.
//     wgmma descriptor: SBO 1024 (next 8 rows), LBO unused (16), k step of 16 = +32 bytes.
//   MN-major (unit stride along m or n: a with rs 1, b with cs 1 = row-major [K, N]):
//     boxes {64 m|n, 64 k}, 2 for a / 4 for b, each 8 KiB: row = k, 128 bytes of m|n.
//     wgmma descriptor with the transpose bit: LBO 8192 (next 64-wide m|n atom = next
//     box), SBO 1024 (next 8 k rows), k step of 16 = +2048 bytes.
// Consumer c's 64-row half of A starts 8192 bytes into the A tile in both layouts.
// Out-of-range rows, columns and k are zero-filled by TMA (the maps have the exact M, N,
// K), so partial tiles need no special case; the epilogue guards its stores.
//
// ---- Pipeline protocol (stage s = kt % 4, round r = kt / 4) ----
//   full[s]:  1 arrival (the producer's arrive.expect_tx of the stage's 48 KiB) + the TMA
//             transaction bytes. Consumers wait for its phase r (parity r & 1).
//   empty[s]: 8 arrivals (lane 0 of each consumer warp) once the wgmmas that read the
//             stage are complete. The producer waits for phase r - 1 before refilling
//             (nothing to wait for in round 0).
//   Consumer loop, per k block kt: wait full[s]; wgmma.fence; 4 x wgmma; commit_group;
//   wait_group 1 (so the group of block kt-1 is done while block kt runs); release
//   empty[(kt-1) % 4]. After the loop: wait_group 0, then the epilogue.
// Every barrier wait has a 10-second watchdog that traps: a protocol bug shows up as a
// launch failure, not as a hung GPU test.
//
// ---- Epilogue (from registers, no shared memory) ----
// wgmma's accumulator layout: thread t of a consumer (warp w = t / 32, lane l) holds, for
// each 8-column block j (0..31), d[4j + r] at row w*16 + l/4 + 8*(r >= 2) and column
// 8j + 2*(l % 4) + (r & 1). Each pair (r, r+1) goes out as one 32-bit store when c (and z)
// have a unit column stride, else element by element; v = alpha*acc (+ beta*c) (+ bias);
// z = v; c = act(v); beta == 0 never reads c. Deterministic: no split-K, no atomics.
//
// ---- Grid ----
// Plain (not persistent): x walks the output tiles in groups of 8 tile-rows (blocks that
// run together share A and B panels in L2), y the batch (launched in chunks of 65535).
// A batch index goes to TMA as the third coordinate; an operand shared by the batch
// (batch stride 0) has a map with batch 1 and coordinate 0.
//
// ---- Host side ----
// The tensor maps are built per call with cuTensorMapEncodeTiled, fetched through
// cudaGetDriverEntryPointByVersion (no link-time dependency on libcuda), and passed as
// __grid_constant__ kernel parameters. Cost: one entry-point lookup and two encodes, pure
// host work of the order of microseconds (not measured); a per-context cache keyed by
// (pointer, shape, strides) is the next step if dispatch overhead matters.
//
// ---- First run on an H100: what to look at, in order ----
//  1. tests/gemm_sm90_check (ctest -R gemm_sm90_check --output-on-failure): the probes
//     run one tile with an identity operand and integer ids in the other, so each wrong
//     element prints where its value came from (swizzle / descriptor / fragment mapping).
//  2. A hang is impossible by design (watchdog), a trap = barrier protocol or TMA map.
//  3. Then the ladder of shapes (edges, batches, layouts) and test_nn --gpu (variant 4 in
//     the sweep), then dlk-bench --family nn (4096^3 bf16 against cuBLAS).
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include <cuda.h>          // CUtensorMap and its enums: types only, libcuda is not linked
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include "../common.cuh"
#include "gemm.cuh"
#include "nn.h"

#ifndef DLK_HAVE_SM90A
#define DLK_HAVE_SM90A 0
#endif

using namespace dlk;

namespace {

constexpr int WG_BM = 128, WG_BN = 256, WG_BK = 64, WG_STAGES = 4;
constexpr int WG_THREADS = 384;                          // producer + 2 consumer warpgroups
constexpr int WG_A_BYTES = WG_BM * WG_BK * 2;            // 16384
constexpr int WG_B_BYTES = WG_BN * WG_BK * 2;            // 32768
constexpr int WG_STAGE_BYTES = WG_A_BYTES + WG_B_BYTES;  // 49152, a multiple of 1024
constexpr int WG_BOX_BYTES = 64 * 64 * 2;                // one MN-major box: 8192
constexpr size_t WG_SMEM_BYTES = (size_t)WG_STAGES * WG_STAGE_BYTES + 1024;  // + alignment

static_assert(WG_STAGE_BYTES % 1024 == 0, "stages must keep the 1024-byte swizzle alignment");
static_assert(WG_A_BYTES / 2 == WG_BOX_BYTES, "a consumer's half of A is one 64-row box");

// Everything device-side is compiled for sm_90a only (other targets get a kernel that
// traps, and would warn about unused helpers).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)

constexpr int WG_CONSUMER_WARPS = 8;                           // arrivals on empty[s]
constexpr int WG_GROUP_M = 8;                                  // tile-rows per L2 group
constexpr unsigned long long WG_WATCHDOG_NS = 10000000000ull;  // 10 s

// ---- PTX wrappers ----

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Make the initialised barriers visible to the async proxy (TMA) and the other threads.
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

// Wait until the phase with parity `parity` of the barrier has completed. Traps after
// WG_WATCHDOG_NS so a protocol bug fails the launch instead of hanging the GPU.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  if (mbar_try(bar, parity)) return;
  const uint64_t t0 = global_ns();
  for (uint32_t spin = 1;; spin++) {
    if (mbar_try(bar, parity)) return;
    if ((spin & 0xfff) == 0 && global_ns() - t0 > WG_WATCHDOG_NS) __trap();
  }
}

__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}

// One box of a 3-D tensor map (coordinates innermost first, in elements) into shared
// memory at dst; completion counts its bytes on barrier bar.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap *map, int c0, int c1,
                                            int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
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

// Keep the compiler from moving accumulator reads/writes across the asynchronous wgmmas.
__device__ __forceinline__ void acc_fence(float (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// Shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format" of wgmma):
// bits 0-13 start address >> 4, 16-29 leading byte offset >> 4, 32-45 stride byte offset
// >> 4, 49-51 base offset (0: the atoms are 1024-aligned), 62-63 swizzle (1 = 128 bytes).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo & 0x3FFFF) >> 4) << 16) |
         ((uint64_t)((sbo & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

// d[0..127] += A (64 x 16 from desc da) * B (16 x 256 from desc db). TA/TB: 0 K-major,
// 1 MN-major (the transpose bits, valid for 16-bit types). scale-d is 1 (accumulate).
#define DLK_ACC8(i)                                                                           \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define DLK_WGMMA_M64N256K16(TYPE)                                                             \
  asm volatile(                                                                                \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                            \
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE                             \
      " {"                                                                                     \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                 \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "       \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "       \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "       \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "       \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "       \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, " \
      "%111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, "   \
      "%125, %126, %127}, %128, %129, p, 1, 1, %131, %132;\n}\n"                               \
      : DLK_ACC8(0), DLK_ACC8(8), DLK_ACC8(16), DLK_ACC8(24), DLK_ACC8(32), DLK_ACC8(40),      \
        DLK_ACC8(48), DLK_ACC8(56), DLK_ACC8(64), DLK_ACC8(72), DLK_ACC8(80), DLK_ACC8(88),    \
        DLK_ACC8(96), DLK_ACC8(104), DLK_ACC8(112), DLK_ACC8(120)                              \
      : "l"(da), "l"(db), "r"(1), "n"(TA), "n"(TB))

template <typename T, int TA, int TB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db) {
  if constexpr (std::is_same<T, bf16>::value) {
    DLK_WGMMA_M64N256K16("bf16");
  } else {
    DLK_WGMMA_M64N256K16("f16");
  }
}
#undef DLK_WGMMA_M64N256K16
#undef DLK_ACC8


#endif  // sm_90a

// ---- the kernel ----
// A_K / B_K: operand is K-major (true) or MN-major (false); see the comment at the top.
// batch0: first batch index of this launch (blockIdx.y adds to it). a_batched/b_batched:
// 0 for an operand shared by the batch (its map has batch 1).
template <typename T, bool A_K, bool B_K>
__global__ __launch_bounds__(WG_THREADS,
                             1) void gemm_wgmma_kernel(const __grid_constant__ CUtensorMap map_a,
                                                       const __grid_constant__ CUtensorMap map_b,
                                                       const dlk_k_gemm_desc g, int tiles_m, int tiles_n,
                                                       int batch0, int a_batched, int b_batched,
                                                       int pair_ok) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(8) uint64_t full_bar[WG_STAGES], empty_bar[WG_STAGES];
  DLK_DYNAMIC_SHARED(unsigned char, wg_smem, 1024);
  const uint32_t smem0 = (smem_addr(wg_smem) + 1023u) & ~1023u;
  DLK_KCHECK(blockDim.x == WG_THREADS);
#ifdef DLK_DEBUG_KERNELS
  {
    uint32_t dyn;
    asm volatile("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(dyn));
    DLK_KCHECK(smem0 + WG_STAGES * WG_STAGE_BYTES <= smem_addr(wg_smem) + dyn);
  }
#endif
  const int wg = threadIdx.x / 128;
  const int64_t M = g.c.rows, N = g.c.cols, K = g.a.cols;
  const int nk = (int)((K + WG_BK - 1) / WG_BK);
  const int b = batch0 + (int)blockIdx.y;

  // Grouped tile order: tile-rows [first_m, first_m + 8) sweep the columns together.
  const int tile = blockIdx.x;
  const int group_size = WG_GROUP_M * tiles_n;
  const int first_m = (tile / group_size) * WG_GROUP_M;
  const int gm = min(tiles_m - first_m, WG_GROUP_M);
  const int m0 = (first_m + (tile % group_size) % gm) * WG_BM;
  const int n0 = ((tile % group_size) / gm) * WG_BN;
  DLK_KCHECK(m0 < M && n0 < N && b < g.c.batch);
  (void)N;  // read by the debug check only

  if (threadIdx.x == 0) {
    for (int s = 0; s < WG_STAGES; s++) {
      mbar_init(smem_addr(&full_bar[s]), 1);
      mbar_init(smem_addr(&empty_bar[s]), WG_CONSUMER_WARPS);
    }
    mbar_init_fence();
  }
  __syncthreads();  // the last block-wide barrier: the roles never meet again

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
      tma_prefetch_map(&map_a);
      tma_prefetch_map(&map_b);
      const int ba = a_batched ? b : 0, bb = b_batched ? b : 0;
      for (int kt = 0; kt < nk; kt++) {
        const int s = kt % WG_STAGES;
        if (kt >= WG_STAGES) mbar_wait(smem_addr(&empty_bar[s]), ((kt / WG_STAGES) - 1) & 1);
        const uint32_t full = smem_addr(&full_bar[s]);
        const uint32_t sa = smem0 + s * WG_STAGE_BYTES, sb = sa + WG_A_BYTES;
        const int k0 = kt * WG_BK;
        mbar_expect_tx(full, WG_STAGE_BYTES);
        if (A_K) {
          tma_load_3d(sa, &map_a, k0, m0, ba, full);
        } else {
#pragma unroll
          for (int j = 0; j < WG_BM / 64; j++)
            tma_load_3d(sa + j * WG_BOX_BYTES, &map_a, m0 + 64 * j, k0, ba, full);
        }
        if (B_K) {
          tma_load_3d(sb, &map_b, k0, n0, bb, full);
        } else {
#pragma unroll
          for (int j = 0; j < WG_BN / 64; j++)
            tma_load_3d(sb + j * WG_BOX_BYTES, &map_b, n0 + 64 * j, k0, bb, full);
        }
      }
    }
    return;
  }

  // ---- consumers ----
  setmaxnreg_inc<232>();
  const int cw = wg - 1;  // 0: rows 0..63 of the tile, 1: rows 64..127
  const int lane = threadIdx.x & 31, wi = (threadIdx.x >> 5) & 3;  // warp in the warpgroup
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; i++) acc[i] = 0.f;

  for (int kt = 0; kt < nk; kt++) {
    const int s = kt % WG_STAGES;
    mbar_wait(smem_addr(&full_bar[s]), (kt / WG_STAGES) & 1);
    const uint32_t sa = smem0 + s * WG_STAGE_BYTES + cw * (WG_A_BYTES / 2);
    const uint32_t sb = smem0 + s * WG_STAGE_BYTES + WG_A_BYTES;
    acc_fence(acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < WG_BK / 16; kk++) {
      const uint64_t da =
          A_K ? smem_desc(sa + kk * 32, 16, 1024) : smem_desc(sa + kk * 2048, WG_BOX_BYTES, 1024);
      const uint64_t db =
          B_K ? smem_desc(sb + kk * 32, 16, 1024) : smem_desc(sb + kk * 2048, WG_BOX_BYTES, 1024);
      wgmma_m64n256k16<T, A_K ? 0 : 1, B_K ? 0 : 1>(acc, da, db);
    }
    wgmma_commit();
    acc_fence(acc);
    wgmma_wait<1>();  // block kt-1's group is complete: its stage may be refilled
    acc_fence(acc);
    if (kt > 0) {
      __syncwarp();
      if (lane == 0) mbar_arrive(smem_addr(&empty_bar[(kt - 1) % WG_STAGES]));
    }
  }
  wgmma_wait<0>();
  acc_fence(acc);

  // ---- epilogue ----
  const float alpha = (float)g.alpha, beta = (float)g.beta;
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int64_t m = (int64_t)m0 + cw * 64 + wi * 16 + (lane >> 2) + 8 * h;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < WG_BN / 8; j++) {
      const int64_t n = (int64_t)n0 + j * 8 + 2 * (lane & 3);
      gemm_store2<T>(g, pair_ok != 0, alpha, beta, b, m, n, acc[4 * j + 2 * h],
                   acc[4 * j + 2 * h + 1]);
    }
  }
#else
  // Not sm_90a: the host never launches this (dlk_k_gemm_supports and the row's
  // supports() refuse first); if a driver ever picked this image, fail loudly.
  (void)map_a, (void)map_b, (void)g, (void)tiles_m, (void)tiles_n, (void)batch0, (void)a_batched,
      (void)b_batched, (void)pair_ok;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

// ---- host side ----

// How one operand goes to TMA. The operand is the logical rows x K matrix (a: M x K;
// b^T: N x K) with strides s_k along k and s_mn along rows.
struct OpLayout {
  bool kmajor;           // unit stride along k (else along rows)
  int64_t inner, outer;  // the map's dims 0 and 1 (k, rows) or (rows, k)
  int64_t lead;          // stride of dim 1, elements
  bool batched;          // a batch dim with its own stride (else shared: map batch 1)
  int64_t bs;
};

const int64_t WG_COORD_MAX = 0x7fffffffLL - 512;  // TMA coordinates are signed 32-bit

// Can TMA read this operand as K-major (kmajor) or MN-major? "" when it can, else why.
bool try_layout(const char *name, const char *ld, const dlk_k_mat &t, int64_t rows, int64_t K,
                int64_t s_k, int64_t s_mn, bool kmajor, OpLayout *L, char *why, size_t n) {
  const int64_t unit = kmajor ? s_k : s_mn, unit_count = kmajor ? K : rows;
  if (unit != 1 && unit_count != 1) {
    snprintf(why, n, "%s has no unit stride (strides %lld, %lld): TMA needs k or %s contiguous",
             name, (long long)t.rs, (long long)t.cs, name[0] == 'a' ? "m" : "n");
    return false;
  }
  L->kmajor = kmajor;
  L->inner = kmajor ? K : rows;
  L->outer = kmajor ? rows : K;
  L->lead = kmajor ? s_mn : s_k;
  if (L->outer > 1) {
    if (L->lead <= 0 || L->lead % 8 != 0) {
      snprintf(why, n, "%s %lld not a multiple of 8 (TMA needs 16-byte row strides)", ld,
               (long long)L->lead);
      return false;
    }
    if (L->lead < L->inner) {
      snprintf(why, n, "%s %lld is below the row length %lld (rows overlap)", ld,
               (long long)L->lead, (long long)L->inner);
      return false;
    }
    if (L->lead >= (1LL << 38)) {
      snprintf(why, n, "%s %lld too large for TMA (stride >= 2^40 bytes)", ld, (long long)L->lead);
      return false;
    }
  }
  L->batched = t.batch > 1 && t.bs != 0;
  L->bs = t.bs;
  if (L->batched) {
    if (t.bs < 0 || t.bs % 8 != 0 || t.bs >= (1LL << 38)) {
      snprintf(why, n, "%s batch stride %lld not a positive multiple of 8 below 2^38", name,
               (long long)t.bs);
      return false;
    }
  }
  if (((uintptr_t)t.data % 16) != 0) {
    snprintf(why, n, "%s not 16-byte aligned", name);
    return false;
  }
  return true;
}

// K-major first (the common case: row-major a, the w^T of a linear layer), else MN-major.
bool op_layout(const char *name, const char *ld, const dlk_k_mat &t, int64_t rows, int64_t K,
               int64_t s_k, int64_t s_mn, OpLayout *L, char *why, size_t n) {
  if (try_layout(name, ld, t, rows, K, s_k, s_mn, true, L, why, n)) return true;
  char why_mn[256];
  if (try_layout(name, ld, t, rows, K, s_k, s_mn, false, L, why_mn, sizeof why_mn)) return true;
  // Report the MN-major reason when that was the layout the operand has.
  if (s_k != 1 && K != 1) snprintf(why, n, "%s", why_mn);
  return false;
}

bool wg_check(const dlk_k_gemm_desc *g, OpLayout *la, OpLayout *lb, char *why, size_t n) {
  const int64_t M = g->c.rows, N = g->c.cols, K = g->a.cols;
  if (g->dtype != DLK_F16 && g->dtype != DLK_BF16) {
    snprintf(why, n, "%s not supported (f16/bf16 only)", g->dtype == DLK_F32 ? "f32" : "f64");
    return false;
  }
  if (K == 0) {
    snprintf(why, n, "k = 0: nothing to multiply (naive and tiled handle it)");
    return false;
  }
  if (M > WG_COORD_MAX || N > WG_COORD_MAX || K > WG_COORD_MAX || g->c.batch > 0x7fffffffLL) {
    snprintf(why, n, "m %lld, n %lld, k %lld or batch %lld beyond TMA's 32-bit coordinates",
             (long long)M, (long long)N, (long long)K, (long long)g->c.batch);
    return false;
  }
  if (!op_layout("a", "lda", g->a, M, K, g->a.cs, g->a.rs, la, why, n)) return false;
  if (!op_layout("b", "ldb", g->b, N, K, g->b.rs, g->b.cs, lb, why, n)) return false;
  const int64_t tiles = ((M + WG_BM - 1) / WG_BM) * ((N + WG_BN - 1) / WG_BN);
  if (tiles > 0x7fffffffLL) {
    snprintf(why, n, "%lld output tiles exceed the grid", (long long)tiles);
    return false;
  }
  return true;
}

// Build the 3-D map {inner, outer, batch} with a {64, box_outer, 1} box, 128-byte swizzle,
// zero fill out of bounds. Strides of dims that have one index are never used to address
// memory but must still be positive multiples of 16 bytes.
int encode_map(PFN_cuTensorMapEncodeTiled_v12000 encode, CUtensorMap *map, const char *name,
               CUtensorMapDataType dt, void *base, const OpLayout &L, int64_t batch,
               uint32_t box_outer, char *err, size_t n) {
  const cuuint64_t lead_bytes = (cuuint64_t)(L.outer > 1 ? L.lead : (L.inner + 7) / 8 * 8) * 2;
  const cuuint64_t dims[3] = {(cuuint64_t)L.inner, (cuuint64_t)L.outer,
                              (cuuint64_t)(L.batched ? batch : 1)};
  const cuuint64_t strides[2] = {lead_bytes,
                                 L.batched ? (cuuint64_t)L.bs * 2 : lead_bytes * dims[1]};
  const cuuint32_t box[3] = {64, box_outer, 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  CUresult r = encode(map, dt, 3, base, dims, strides, box, elem_strides,
                      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    snprintf(err, n,
             "cuTensorMapEncodeTiled(%s) failed with CUresult %d: dims {%llu, %llu, %llu} "
             "strides {%llu, %llu} bytes, box {64, %u, 1}, base %p",
             name, (int)r, (unsigned long long)dims[0], (unsigned long long)dims[1],
             (unsigned long long)dims[2], (unsigned long long)strides[0],
             (unsigned long long)strides[1], box_outer, base);
    return (int)cudaErrorInvalidValue;
  }
  return 0;
}

template <typename T, bool A_K, bool B_K>
int launch_wgmma(const dlk_k_gemm_desc *g, const CUtensorMap &ma, const CUtensorMap &mb, int a_batched,
                 int b_batched, int pair_ok, cudaStream_t st) {
  const int tiles_m = (int)((g->c.rows + WG_BM - 1) / WG_BM);
  const int tiles_n = (int)((g->c.cols + WG_BN - 1) / WG_BN);
  cudaError_t e =
      cudaFuncSetAttribute(gemm_wgmma_kernel<T, A_K, B_K>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, (int)WG_SMEM_BYTES);
  if (e != cudaSuccess) return (int)e;
  for (int64_t b0 = 0; b0 < g->c.batch; b0 += 65535) {
    const int64_t nb = g->c.batch - b0 < 65535 ? g->c.batch - b0 : 65535;
    dim3 grid((unsigned)(tiles_m * tiles_n), (unsigned)nb);
    DLK_LAUNCH(gemm_wgmma_kernel<T, A_K, B_K>, grid, WG_THREADS, WG_SMEM_BYTES, st)(
        ma, mb, *g, tiles_m, tiles_n, (int)b0, a_batched, b_batched, pair_ok);
    e = cudaGetLastError();
    if (e != cudaSuccess) return (int)e;
  }
  return 0;
}

template <typename T>
int launch_wgmma_layout(const dlk_k_gemm_desc *g, bool a_k, bool b_k, const CUtensorMap &ma,
                        const CUtensorMap &mb, int a_batched, int b_batched, int pair_ok,
                        cudaStream_t st) {
  if (a_k && b_k) return launch_wgmma<T, true, true>(g, ma, mb, a_batched, b_batched, pair_ok, st);
  if (a_k) return launch_wgmma<T, true, false>(g, ma, mb, a_batched, b_batched, pair_ok, st);
  if (b_k) return launch_wgmma<T, false, true>(g, ma, mb, a_batched, b_batched, pair_ok, st);
  return launch_wgmma<T, false, false>(g, ma, mb, a_batched, b_batched, pair_ok, st);
}

}  // namespace

namespace dlk {

int gemm_wgmma_supports(const dlk_k_gemm_desc *g, char *why, size_t why_len) {
  OpLayout la, lb;
  return wg_check(g, &la, &lb, why, why_len) ? 1 : 0;
}

int gemm_wgmma(const dlk_k_gemm_desc *g, cudaStream_t st) {
  char scratch[8];
  char *err = g->err && g->err_len ? g->err : scratch;
  const size_t err_len = g->err && g->err_len ? g->err_len : sizeof scratch;
  err[0] = '\0';
  if (g->c.batch <= 0 || g->c.rows <= 0 || g->c.cols <= 0) return 0;
  if (!DLK_HAVE_SM90A) {
    snprintf(err, err_len, "built without sm_90a (add 90a to DLK_CUDA_ARCHS)");
    return (int)cudaErrorNotSupported;
  }
  OpLayout la, lb;
  if (!wg_check(g, &la, &lb, err, err_len)) return (int)cudaErrorInvalidValue;

  void *fn = NULL;
  cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
  cudaError_t e =
      cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q);
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || fn == NULL) {
    snprintf(err, err_len,
             "cuTensorMapEncodeTiled not found in the driver (cudaGetDriverEntryPointByVersion: "
             "%s, query result %d)",
             cudaGetErrorString(e), (int)q);
    return e != cudaSuccess ? (int)e : (int)cudaErrorNotSupported;
  }
  PFN_cuTensorMapEncodeTiled_v12000 encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
  const CUtensorMapDataType dt =
      g->dtype == DLK_F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  CUtensorMap ma, mb;
  int rc = encode_map(encode, &ma, "a", dt, g->a.data, la, g->c.batch, la.kmajor ? WG_BM : 64, err,
                      err_len);
  if (rc) return rc;
  rc = encode_map(encode, &mb, "b", dt, g->b.data, lb, g->c.batch, lb.kmajor ? WG_BN : 64, err,
                  err_len);
  if (rc) return rc;

  // 32-bit pair stores: unit column stride, even row/batch strides, 4-byte aligned base.
  auto pair_fits = [](const dlk_k_mat &t) {
    return t.cs == 1 && t.rs % 2 == 0 && t.bs % 2 == 0 && aligned_ptr(t.data, 4);
  };
  const int pair_ok = pair_fits(g->c) && (!g->z.data || pair_fits(g->z));
  if (g->dtype == DLK_F16)
    return launch_wgmma_layout<f16>(g, la.kmajor, lb.kmajor, ma, mb, la.batched, lb.batched,
                                    pair_ok, st);
  return launch_wgmma_layout<bf16>(g, la.kmajor, lb.kmajor, ma, mb, la.batched, lb.batched, pair_ok,
                                   st);
}

}  // namespace dlk
