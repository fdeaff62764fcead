// The emulated device's own tests (tests/emu): kernels that are right must give the right
// answer, and kernels that are wrong in each way a finder is meant for must be reported as
// such (a finder that does not fire fails this test).
//   test_emu          correct kernels, launch errors, f16/bf16 rounding, CUB, finders
//   test_emu oob      a kernel writing past its buffer: under ASan the process must die with
//                     a heap-buffer-overflow report (ctest checks the text); elsewhere 77
//   test_emu bench    fiber cost per CUDA thread (informational)
// Compiled like the kernels (C++17, tests/emu/include first, DLK_CUDA_EMU, and the racecheck
// instrumentation when the build has it); the shared-memory race check runs on every launch
// here, so the correct kernels also show it raises no false alarm.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>
#include <cuda/atomic>
#include <cuda/std/functional>
#include <algorithm>
#include <vector>

#include "../../kernels/attention/attention.h"
#include "../../kernels/nn/nn.h"
#include "../../kernels/rnn/rnn.h"
#include "emu_launch.h"
#include "dlk.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__) && !defined(DLK_EMU_RACECHECK_BUILD)  // kernel-address defines it too
#define EMU_ASAN 1
#endif

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                               \
  do {                                                                 \
    checks++;                                                          \
    if (!(cond)) {                                                     \
      failures++;                                                      \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                    \
      fprintf(stderr, "\n");                                           \
    }                                                                  \
  } while (0)

template <class T>
static T *dev_alloc(size_t n) {
  void *p = nullptr;
  cudaMalloc(&p, n * sizeof(T));
  cudaMemset(p, 0, n * sizeof(T));
  return (T *)p;
}

// ==== correct kernels ======================================================================

// Block sum: warp shuffles, then lane 0 of each warp through shared memory, then warp 0.
__global__ void k_block_sum(const float *x, int n, float *out) {
  __shared__ float part[32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? x[i] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
  }
}

// Shuffles of every kind with a width of 8, ballot/any/all, barrier reductions.
__global__ void k_collectives(int *out) {
  const int t = threadIdx.x, lane = t & 31;
  int *o = out + t * 12;
  o[0] = __shfl_sync(0xffffffffu, t * 10, 3, 8);       // lane 3 of my 8-lane segment
  o[1] = __shfl_up_sync(0xffffffffu, t, 2, 8);         // t - 2 unless below my segment
  o[2] = __shfl_down_sync(0xffffffffu, t, 3, 8);       // t + 3 unless past my segment
  o[3] = __shfl_xor_sync(0xffffffffu, t, 5, 8);        // lane ^ 5 in the segment
  o[4] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
  o[5] = __any_sync(0xffffffffu, lane == 17);
  o[6] = __all_sync(0xffffffffu, lane < 31);
  o[7] = __syncthreads_count(t % 5 == 0);
  o[8] = __syncthreads_and(t < 1000);
  o[9] = __syncthreads_or(t == 77);
  const double d = __shfl_sync(0xffffffffu, 0.5 + t, 31);  // 8-byte values
  o[10] = (int)(d * 2);
  o[11] = (int)__match_any_sync(0xffffffffu, lane / 4);
}

// Threads that exit early are counted out: the live lanes of the last warp still meet.
__global__ void k_early_exit(int n, int *out) {
  const int t = threadIdx.x, base = t & ~31;
  if (t >= n) return;
  const unsigned live = n - base >= 32 ? 0xffffffffu : (1u << (n - base)) - 1;
  const int s = __shfl_sync(live, t, 0);
  __syncwarp(live);
  out[t] = s + (int)__popc(live);
}

__global__ void k_atomics(float *f, double *d, int *i, unsigned long long *u, int *mx, int *cas) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(f, 0.25f);
  atomicAdd(d, 0.5);
  atomicAdd(i, 1);
  atomicAdd(u, 2ull);
  atomicMax(mx, g);
  atomicMin(mx + 1, -g);
  atomicCAS(cas, g, g + 1);  // one after another: only the thread whose id equals *cas moves it
  atomicExch(cas + 1, 7);
}

// Dynamic shared memory: each block fills and reverses its own array.
__global__ void k_dynamic_smem(int n, int *out) {
  DLK_DYNAMIC_SHARED(int, buf);
  for (int j = threadIdx.x; j < n; j += blockDim.x) buf[j] = blockIdx.x * 100000 + j;
  __syncthreads();
  for (int j = threadIdx.x; j < n; j += blockDim.x) out[blockIdx.x * n + j] = buf[n - 1 - j];
}

// Producer warp / consumer warp through a release/acquire flag; the consumer spins with
// __nanosleep (which must let the producer run).
__global__ void k_flag(int *data, int *flag, int *seen) {
  if (threadIdx.x == 0) {
    for (int k = 0; k < 1000; k++) data[k] = k * 3;
    cuda::atomic_ref<int, cuda::thread_scope_device> f(*flag);
    f.store(1, cuda::memory_order_release);
  } else if (threadIdx.x == 32) {
    cuda::atomic_ref<int, cuda::thread_scope_device> f(*flag);
    while (f.load(cuda::memory_order_acquire) != 1) __nanosleep(100);
    int s = 0;
    for (int k = 0; k < 1000; k++) s += data[k];
    *seen = s;
  }
}

// Per-thread identities in a 3-d grid of 3-d blocks.
__global__ void k_ids(int *out) {
  const int b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

__global__ void k_trivial(int *out) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *out = 1;
}

// A grid-wide barrier as kernels/rnn/rnn_persistent.cu writes it (an arrival counter and a
// generation word; thread 0 spins on the generation with __nanosleep): each round, every
// block publishes a value, meets the others, and sums what all blocks published.
__device__ void grid_sync(unsigned *bar, unsigned nblocks) {
  __syncthreads();
  if (threadIdx.x == 0) {
    volatile unsigned *gen = bar + 1;
    const unsigned g = *gen;
    __threadfence();
    if (atomicAdd(bar, 1u) == nblocks - 1) {
      atomicExch(bar, 0u);
      __threadfence();
      atomicAdd(bar + 1, 1u);
    } else {
      while (*gen == g) __nanosleep(64);
    }
    __threadfence();
  }
  __syncthreads();
}
__global__ void k_grid_barrier(unsigned *bar, int *vals, int *sums, int rounds) {
  for (int r = 0; r < rounds; r++) {
    if (threadIdx.x == 0) vals[blockIdx.x] = (int)blockIdx.x * 10 + r;
    grid_sync(bar, gridDim.x);
    if (threadIdx.x == 0) {
      int t = 0;
      for (unsigned b = 0; b < gridDim.x; b++) t += *(volatile int *)(vals + b);
      sums[r * gridDim.x + blockIdx.x] = t;
    }
    grid_sync(bar, gridDim.x);  // nobody overwrites vals before every block has read them
  }
}

// ==== broken kernels (each must be reported) ==================================================

__global__ void k_divergent(int *out) {
  if (threadIdx.x < 32)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void k_exit_before_barrier(int *out) {
  __shared__ int s[64];
  if (threadIdx.x == 40) return;
  s[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[63 - threadIdx.x];
}
__global__ void k_lane_missing(int *out) {  // lane 31 is not in the mask lanes 0..30 read
  if ((threadIdx.x & 31) == 31) return;
  out[threadIdx.x] = __shfl_sync(0x7fffffffu, (int)threadIdx.x, (threadIdx.x + 1) & 31);
}
__global__ void k_mask_exited(int *out) {  // full mask, lane 7 has exited
  if (threadIdx.x == 7) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
__global__ void k_mask_not_self(int *out) {
  out[threadIdx.x] = __shfl_sync(0xfffffffeu, (int)threadIdx.x, 1);
}
__global__ void k_mask_disagree(int *out) {
  const unsigned m = threadIdx.x < 16 ? 0xffffffffu : 0xffff0000u;
  out[threadIdx.x] = (int)__ballot_sync(m, 1);
}
__global__ void k_deadlock(int *out) {  // lane 0 waits at a barrier, lanes 1-31 in a shuffle
  if (threadIdx.x == 0) __syncthreads();
  else out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0);
}
__global__ void k_partial_warp(int *out) {  // a block of 40: warp 1 has 8 lanes
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
__global__ void k_trap(int *out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1;
}
__global__ void k_race(int *out) {  // neighbour's slot read with no barrier after the write
  __shared__ int s[256];
  s[threadIdx.x] = (int)threadIdx.x;
  out[threadIdx.x] = s[(threadIdx.x + 64) % blockDim.x];
}
__global__ void k_uninit(int *out) {  // reads a slot no thread wrote
  __shared__ int s[256];
  if (threadIdx.x < 128) s[threadIdx.x] = 1;
  __syncthreads();
  out[threadIdx.x] = s[255 - threadIdx.x];
}
__global__ void k_oob(int *p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) p[i] = i;  // <= : one past the end
}

// ==== test drivers =============================================================================

static void expect_report(const char *what, cudaError_t got, const char *kernel, const char *text) {
  const char *rep = dlk_emu_last_report();
  CHECK(got == cudaErrorLaunchFailure, "%s: launch returned %s", what, cudaGetErrorName(got));
  CHECK(strstr(rep, kernel) != nullptr && strstr(rep, text) != nullptr && strstr(rep, "block (") &&
            strstr(rep, "thread ("),
        "%s: report should name %s and say '%s': [%s]", what, kernel, text, rep);
  CHECK(cudaGetLastError() == cudaSuccess, "%s: the error was not cleared by cudaGetLastError", what);
}

static void test_correct() {
  // block sums over many blocks
  const int n = 1000003, threads = 256, blocks = (n + threads - 1) / threads;
  std::vector<float> hx(n);
  for (int i = 0; i < n; i++) hx[i] = (float)((i * 37) % 101 - 50) / 8.f;
  float *x = dev_alloc<float>(n), *part = dev_alloc<float>(blocks);
  cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  DLK_LAUNCH(k_block_sum, blocks, threads, 0, nullptr)(x, n, part);
  CHECK(cudaGetLastError() == cudaSuccess, "block sum launch");
  std::vector<float> hp(blocks);
  cudaMemcpy(hp.data(), part, blocks * sizeof(float), cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int b = 0; b < blocks; b++) {
    double s = 0;
    for (int i = b * threads; i < n && i < (b + 1) * threads; i++) s += hx[i];
    bad += hp[b] != (float)s;  // multiples of 1/8: exact in any order
  }
  CHECK(bad == 0, "block sums: %d of %d blocks wrong", bad, blocks);

  // collectives
  const int ct = 96;
  int *co = dev_alloc<int>(ct * 12);
  DLK_LAUNCH(k_collectives, 1, ct, 0, nullptr)(co);
  CHECK(cudaGetLastError() == cudaSuccess, "collectives launch");
  std::vector<int> hc(ct * 12);
  cudaMemcpy(hc.data(), co, hc.size() * sizeof(int), cudaMemcpyDeviceToHost);
  int cnt5 = 0;
  for (int t = 0; t < ct; t++) cnt5 += t % 5 == 0;
  unsigned b3 = 0;
  for (int l = 0; l < 32; l++) b3 |= (l % 3 == 0 ? 1u : 0u) << l;
  bad = 0;
  for (int t = 0; t < ct; t++) {
    const int lane = t & 31, seg = lane & ~7, w0 = t - lane;
    const int *o = &hc[t * 12];
    bad += o[0] != (w0 + seg + 3) * 10;
    bad += o[1] != (lane - 2 < seg ? t : t - 2);
    bad += o[2] != (lane + 3 >= seg + 8 ? t : t + 3);
    bad += o[3] != w0 + (lane ^ 5);
    bad += (unsigned)o[4] != b3;
    bad += o[5] != 1 || o[6] != 0;
    bad += o[7] != cnt5 || o[8] != 1 || o[9] != 1;
    bad += o[10] != (int)((0.5 + w0 + 31) * 2);
    bad += (unsigned)o[11] != (0xfu << (lane / 4 * 4));
    if (bad) {
      fprintf(stderr, "collectives: thread %d: %d %d %d %d %x %d %d %d %d %d %d %x\n", t, o[0], o[1],
              o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10], o[11]);
      break;
    }
  }
  CHECK(bad == 0, "collective results");

  // early exit: 50 threads, lanes 18..31 of warp 1 gone
  int *eo = dev_alloc<int>(64);
  DLK_LAUNCH(k_early_exit, 1, 64, 0, nullptr)(50, eo);
  CHECK(cudaGetLastError() == cudaSuccess, "early-exit launch: %s", dlk_emu_last_report());
  std::vector<int> he(64);
  cudaMemcpy(he.data(), eo, 64 * sizeof(int), cudaMemcpyDeviceToHost);
  bad = 0;
  for (int t = 0; t < 50; t++) bad += he[t] != (t < 32 ? 0 + 32 : 32 + 18);
  CHECK(bad == 0, "early exit: live lanes met (%d %d)", he[0], he[40]);

  // atomics across blocks (and OS threads)
  float *af = dev_alloc<float>(1);
  double *ad = dev_alloc<double>(1);
  int *ai = dev_alloc<int>(1), *amx = dev_alloc<int>(2), *acas = dev_alloc<int>(2);
  unsigned long long *au = dev_alloc<unsigned long long>(1);
  const int ab = 64, at = 128, total = ab * at;
  DLK_LAUNCH(k_atomics, ab, at, 0, nullptr)(af, ad, ai, au, amx, acas);
  float hf;
  double hd;
  int hi, hm[2], hcas[2];
  unsigned long long hu;
  cudaMemcpy(&hf, af, 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(&hd, ad, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(&hi, ai, 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(&hu, au, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(hm, amx, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(hcas, acas, 8, cudaMemcpyDeviceToHost);
  CHECK(hf == 0.25f * total && hd == 0.5 * total && hi == total && hu == 2ull * total,
        "atomic adds: %g %g %d %llu", hf, hd, hi, hu);
  CHECK(hm[0] == total - 1 && hm[1] == -(total - 1), "atomicMax/Min: %d %d", hm[0], hm[1]);
  CHECK(hcas[0] >= 1 && hcas[1] == 7, "atomicCAS/Exch: %d %d", hcas[0], hcas[1]);

  // dynamic shared memory, 64 KiB: refused until the kernel's attribute allows it
  const int dn = 16384;
  int *dout = dev_alloc<int>(4 * dn);
  DLK_LAUNCH(k_dynamic_smem, 4, 256, dn * sizeof(int), nullptr)(dn, dout);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue, "64 KiB dynamic smem without the attribute");
  CHECK(cudaFuncSetAttribute(k_dynamic_smem, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             dn * (int)sizeof(int)) == cudaSuccess,
        "attribute");
  DLK_LAUNCH(k_dynamic_smem, 4, 256, dn * sizeof(int), nullptr)(dn, dout);
  CHECK(cudaGetLastError() == cudaSuccess, "dynamic smem launch: %s", dlk_emu_last_report());
  std::vector<int> hdo(4 * dn);
  cudaMemcpy(hdo.data(), dout, hdo.size() * sizeof(int), cudaMemcpyDeviceToHost);
  bad = 0;
  for (int b = 0; b < 4; b++)
    for (int j = 0; j < dn; j++) bad += hdo[b * dn + j] != b * 100000 + dn - 1 - j;
  CHECK(bad == 0, "dynamic smem contents");

  // release/acquire flag between warps with __nanosleep
  int *fd = dev_alloc<int>(1000), *ff = dev_alloc<int>(1), *fs = dev_alloc<int>(1);
  DLK_LAUNCH(k_flag, 1, 64, 0, nullptr)(fd, ff, fs);
  int hs = 0;
  cudaMemcpy(&hs, fs, 4, cudaMemcpyDeviceToHost);
  CHECK(cudaGetLastError() == cudaSuccess && hs == 3 * 999 * 1000 / 2, "flag handoff: %d", hs);

  // 3-d ids
  int *ids = dev_alloc<int>(2 * 3 * 4 * 60);
  DLK_LAUNCH(k_ids, dim3(2, 3, 4), dim3(5, 4, 3), 0, nullptr)(ids);
  std::vector<int> hids(2 * 3 * 4 * 60);
  cudaMemcpy(hids.data(), ids, hids.size() * sizeof(int), cudaMemcpyDeviceToHost);
  bad = 0;
  for (int b = 0; b < 24; b++)
    for (int t = 0; t < 60; t++) bad += hids[b * 60 + t] != b * 1000 + t;
  CHECK(bad == 0, "3-d thread and block ids");

  // launch configuration errors, as CUDA returns them
  int *one = dev_alloc<int>(1);
  DLK_LAUNCH(k_trivial, 1, 1025, 0, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads");
  DLK_LAUNCH(k_trivial, dim3(1, 65536), 32, 0, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 65536");
  DLK_LAUNCH(k_trivial, dim3(1, 1, 65536), 32, 0, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.z 65536");
  DLK_LAUNCH(k_trivial, 1, dim3(1, 1, 65), 0, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "block.z 65");
  DLK_LAUNCH(k_trivial, 0, 32, 0, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "empty grid");
  CHECK(cudaFuncSetAttribute(k_trivial, cudaFuncAttributeMaxDynamicSharedMemorySize, 232449) ==
            cudaErrorInvalidValue,
        "more than 227 KiB refused");
  cudaGetLastError();
  DLK_LAUNCH(k_trivial, 1, 32, 232448 + 1, nullptr)(one);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue, "smem over 227 KiB");

  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0) == cudaSuccess && strcmp(p.name, "dlk-emu") == 0 &&
            p.major == 9 && p.minor == 0 && p.sharedMemPerBlockOptin == 232448,
        "device properties");
  for (void *q : {(void *)x, (void *)part, (void *)co, (void *)eo, (void *)af, (void *)ad, (void *)ai,
                  (void *)amx, (void *)acas, (void *)au, (void *)dout, (void *)fd, (void *)ff,
                  (void *)fs, (void *)ids, (void *)one})
    cudaFree(q);
}

// The grid barrier on a grid of what runs at once (dlk_emu_resident_blocks()): every round
// each block sees every other block's value of that round.
static void test_grid_barrier() {
  const int nb = dlk_emu_resident_blocks(), rounds = 20;
  CHECK(nb >= 1, "resident blocks %d", nb);
  unsigned *bar = dev_alloc<unsigned>(2);
  int *vals = dev_alloc<int>(nb), *sums = dev_alloc<int>(nb * rounds);
  DLK_LAUNCH(k_grid_barrier, nb, 96, 0, nullptr)(bar, vals, sums, rounds);
  CHECK(cudaGetLastError() == cudaSuccess, "grid barrier launch: %s", dlk_emu_last_report());
  std::vector<int> h(nb * rounds);
  cudaMemcpy(h.data(), sums, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int r = 0; r < rounds; r++)
    for (int b = 0; b < nb; b++) bad += h[r * nb + b] != 10 * nb * (nb - 1) / 2 + nb * r;
  CHECK(bad == 0, "grid barrier: %d of %d sums wrong (a block read a value of another round)", bad, nb * rounds);
  cudaFree(bar), cudaFree(vals), cudaFree(sums);
}

static void test_half() {
  // round to nearest even at the ties, overflow, subnormals, NaN
  CHECK(__half2float(__float2half_rn(1.0f + 0x1p-11f)) == 1.0f, "half tie to even (down)");
  CHECK(__half2float(__float2half_rn(1.0f + 0x3p-11f)) == 1.0f + 0x1p-9f, "half tie to even (up)");
  CHECK(__half2float(__float2half_rn(65519.f)) == 65504.f, "65519 -> 65504");
  CHECK(__hisinf(__float2half_rn(65520.f)) == 1, "65520 -> inf");
  CHECK(__half2float(__float2half_rn(0x1p-24f)) == 0x1p-24f, "smallest subnormal");
  CHECK(__half2float(__float2half_rn(0x1p-25f)) == 0.f, "half of it ties to 0");
  CHECK(__half2float(__float2half_rn(0x3p-25f)) == 0x2p-24f, "1.5 ulp ties to even 2");
  CHECK(__hisnan(__float2half_rn(NAN)), "NaN stays NaN");
  CHECK(__bfloat162float(__float2bfloat16_rn(1.0f + 0x1p-8f)) == 1.0f, "bf16 tie to even (down)");
  CHECK(__bfloat162float(__float2bfloat16_rn(1.0f + 0x3p-8f)) == 1.0f + 0x1p-6f, "bf16 tie (up)");
  const float nb = __bfloat162float(__float2bfloat16_rn(NAN));
  CHECK(nb != nb, "bf16 NaN");
  // every half converts to float and back unchanged
  int bad = 0;
  for (unsigned h = 0; h < 65536; h++) {
    __half x;
    x.__x = (unsigned short)h;
    const float f = __half2float(x);
    if (f == f && __float2half_rn(f).__x != h) bad++;
  }
  CHECK(bad == 0, "half -> float -> half round trip: %d", bad);
}

static void test_cub() {
  const int n = 5000;
  std::vector<unsigned> k(n), v(n);
  for (int i = 0; i < n; i++) k[i] = (unsigned)((i * 7919) % 613), v[i] = (unsigned)i;
  unsigned *dk = dev_alloc<unsigned>(n), *dk2 = dev_alloc<unsigned>(n), *dv = dev_alloc<unsigned>(n),
           *dv2 = dev_alloc<unsigned>(n);
  cudaMemcpy(dk, k.data(), n * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dv, v.data(), n * 4, cudaMemcpyHostToDevice);
  size_t tb = 0;
  CHECK(cub::DeviceRadixSort::SortPairs(nullptr, tb, dk, dk2, dv, dv2, n, 0, 10) == cudaSuccess, "size");
  void *t = nullptr;
  cudaMalloc(&t, tb);
  CHECK(cub::DeviceRadixSort::SortPairs(t, tb, dk, dk2, dv, dv2, n, 0, 10) == cudaSuccess, "sort");
  std::vector<unsigned> ok(n), ov(n);
  cudaMemcpy(ok.data(), dk2, n * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(ov.data(), dv2, n * 4, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int i = 1; i < n; i++) bad += ok[i - 1] > ok[i] || (ok[i - 1] == ok[i] && ov[i - 1] > ov[i]);
  CHECK(bad == 0, "SortPairs: sorted and stable");
  size_t small = tb - 1;
  CHECK(cub::DeviceRadixSort::SortPairs(t, small, dk, dk2, dv, dv2, n, 0, 10) == cudaErrorInvalidValue,
        "too little temporary storage is refused");
  // descending, double buffer
  cub::DoubleBuffer<unsigned> kb(dk, dk2), vb(dv, dv2);
  cudaMemcpy(dk, k.data(), n * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dv, v.data(), n * 4, cudaMemcpyHostToDevice);
  CHECK(cub::DeviceRadixSort::SortPairsDescending(t, tb, kb, vb, n) == cudaSuccess, "desc");
  cudaMemcpy(ok.data(), kb.Current(), n * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(ov.data(), vb.Current(), n * 4, cudaMemcpyDeviceToHost);
  bad = 0;
  for (int i = 1; i < n; i++) bad += ok[i - 1] < ok[i] || (ok[i - 1] == ok[i] && ov[i - 1] > ov[i]);
  CHECK(bad == 0, "SortPairsDescending (DoubleBuffer): sorted and stable");
  // scan, select, reduce by key
  std::vector<long long> in(n), out(n);
  for (int i = 0; i < n; i++) in[i] = i % 7;
  long long *din = dev_alloc<long long>(n), *dout = dev_alloc<long long>(n), *dnum = dev_alloc<long long>(1);
  cudaMemcpy(din, in.data(), n * 8, cudaMemcpyHostToDevice);
  CHECK(cub::DeviceScan::ExclusiveSum(t, tb, din, dout, n) == cudaSuccess, "scan");
  cudaMemcpy(out.data(), dout, n * 8, cudaMemcpyDeviceToHost);
  long long acc = 0;
  bad = 0;
  for (int i = 0; i < n; i++) bad += out[i] != acc, acc += in[i];
  CHECK(bad == 0, "ExclusiveSum");
  struct Even {
    bool operator()(long long x) const { return x % 2 == 0; }
  };
  CHECK(cub::DeviceSelect::If(t, tb, din, dout, dnum, n, Even()) == cudaSuccess, "select");
  long long nsel = 0;
  cudaMemcpy(&nsel, dnum, 8, cudaMemcpyDeviceToHost);
  long long want = 0;
  for (int i = 0; i < n; i++) want += in[i] % 2 == 0;
  CHECK(nsel == want, "Select::If count %lld vs %lld", nsel, want);
  std::vector<unsigned> keys = {1, 1, 2, 3, 3, 3, 1};
  std::vector<double> vals = {1, 2, 3, 4, 5, 6, 7};
  unsigned *rk = dev_alloc<unsigned>(7), *uk = dev_alloc<unsigned>(7);
  double *rv = dev_alloc<double>(7), *av = dev_alloc<double>(7);
  cudaMemcpy(rk, keys.data(), 28, cudaMemcpyHostToDevice);
  cudaMemcpy(rv, vals.data(), 56, cudaMemcpyHostToDevice);
  CHECK(cub::DeviceReduce::ReduceByKey(t, tb, rk, uk, rv, av, dnum, cuda::std::plus<double>(), 7) ==
            cudaSuccess,
        "reduce by key");
  double hav[4];
  cudaMemcpy(&nsel, dnum, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(hav, av, 32, cudaMemcpyDeviceToHost);
  CHECK(nsel == 4 && hav[0] == 3 && hav[1] == 3 && hav[2] == 15 && hav[3] == 7, "ReduceByKey runs");
  for (void *q : {(void *)dk, (void *)dk2, (void *)dv, (void *)dv2, t, (void *)din, (void *)dout,
                  (void *)dnum, (void *)rk, (void *)uk, (void *)rv, (void *)av})
    cudaFree(q);
}

static void test_finders(bool racecheck) {
  int *o = dev_alloc<int>(256);
  DLK_LAUNCH(k_divergent, 1, 64, 0, nullptr)(o);
  expect_report("divergent barrier", cudaGetLastError(), "k_divergent", "divergent __syncthreads");
  DLK_LAUNCH(k_exit_before_barrier, 1, 64, 0, nullptr)(o);
  expect_report("exit before barrier", cudaGetLastError(), "k_exit_before_barrier", "exited");
  DLK_LAUNCH(k_lane_missing, 2, 32, 0, nullptr)(o);
  expect_report("lane missing from the mask", cudaGetLastError(), "k_lane_missing",
                "reads lane 31, which mask 0x7fffffff does not name");
  DLK_LAUNCH(k_mask_exited, 1, 32, 0, nullptr)(o);
  expect_report("mask names an exited lane", cudaGetLastError(), "k_mask_exited", "exited");
  DLK_LAUNCH(k_mask_not_self, 1, 32, 0, nullptr)(o);
  expect_report("mask without the caller", cudaGetLastError(), "k_mask_not_self",
                "does not name the calling lane 0");
  DLK_LAUNCH(k_mask_disagree, 1, 32, 0, nullptr)(o);
  expect_report("lanes disagree on the mask", cudaGetLastError(), "k_mask_disagree", "with mask");
  DLK_LAUNCH(k_deadlock, 1, 32, 0, nullptr)(o);
  expect_report("barrier vs shuffle", cudaGetLastError(), "k_deadlock", "deadlock");
  DLK_LAUNCH(k_partial_warp, 1, 40, 0, nullptr)(o);
  expect_report("mask names absent lanes", cudaGetLastError(), "k_partial_warp", "absent");
  DLK_LAUNCH(k_trap, 3, 32, 0, nullptr)(o);
  expect_report("__trap", cudaGetLastError(), "k_trap", "__trap()");
  {  // a grid barrier in a grid larger than what runs at once: reported, not a hang
    const int nb = dlk_emu_resident_blocks() + 1;
    unsigned *bar = dev_alloc<unsigned>(2);
    int *vals = dev_alloc<int>(nb), *sums = dev_alloc<int>(nb);
    DLK_LAUNCH(k_grid_barrier, nb, 64, 0, nullptr)(bar, vals, sums, 1);
    expect_report("grid barrier past co-residency", cudaGetLastError(), "k_grid_barrier", "have not started");
    cudaFree(bar), cudaFree(vals), cudaFree(sums);
  }
  // the device still works after each report
  DLK_LAUNCH(k_trivial, 1, 32, 0, nullptr)(o);
  CHECK(cudaGetLastError() == cudaSuccess, "a launch after the reports");
  if (racecheck) {
    DLK_LAUNCH(k_race, 2, 256, 0, nullptr)(o);
    expect_report("shared-memory race", cudaGetLastError(), "k_race", "shared-memory race");
    DLK_LAUNCH(k_uninit, 1, 256, 0, nullptr)(o);
    expect_report("uninitialised shared read", cudaGetLastError(), "k_uninit", "uninitialised");
  } else {
    printf("test_emu: racecheck not in this build (ASan build or DLK_EMU_RACECHECK=OFF): its "
           "finder is not tested here\n");
  }
  cudaFree(o);
}

// Two launchers no dlk op reaches in the emulated build, checked against the host here:
// the gemm epilogue (it runs after a cuBLAS gemm only) and the device copy of the dropout
// RNG (which must equal the host's, the formula behind dlk_dropout_uniform).
static void test_launchers() {
  const int M = 5, N = 7;
  std::vector<float> c(M * N), bias(N);
  for (int i = 0; i < M * N; i++) c[i] = (float)(i % 9) - 4.f;
  for (int j = 0; j < N; j++) bias[j] = 0.5f * (float)j - 1.f;
  float *dc = dev_alloc<float>(M * N), *dz = dev_alloc<float>(M * N), *db = dev_alloc<float>(N);
  cudaMemcpy(dc, c.data(), c.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(db, bias.data(), N * 4, cudaMemcpyHostToDevice);
  dlk_k_gemm_desc g;
  memset(&g, 0, sizeof g);
  g.dtype = DLK_F32;
  g.act = DLK_ACT_RELU;
  g.c = dlk_k_mat{dc, 1, M, N, 0, N, 1};
  g.z = dlk_k_mat{dz, 1, M, N, 0, N, 1};
  g.bias = dlk_k_vec{db, N, 1};
  g.add_bias = 1;
  CHECK(dlk_k_gemm_epilogue(&g, nullptr) == 0, "gemm epilogue launch");
  std::vector<float> hc(M * N), hz(M * N);
  cudaMemcpy(hc.data(), dc, hc.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(hz.data(), dz, hz.size() * 4, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int i = 0; i < M * N; i++) {
    const float v = c[i] + bias[i % N];
    bad += hz[i] != v || hc[i] != (v <= 0.f ? 0.f : v);
  }
  CHECK(bad == 0, "gemm epilogue: c = relu(c + bias), z = c + bias");
  const int64_t n = 10000;
  uint64_t *dm = dev_alloc<uint64_t>(n);
  CHECK(dlk_k_mix64_fill(42, 1000, n, dm, nullptr) == 0, "mix64 fill launch");
  std::vector<uint64_t> hm(n);
  cudaMemcpy(hm.data(), dm, n * 8, cudaMemcpyDeviceToHost);
  bad = 0;
  for (int64_t i = 0; i < n; i++) bad += (double)(hm[i] >> 11) * 0x1p-53 != dlk_dropout_uniform(42, 1000 + (uint64_t)i);
  CHECK(bad == 0, "device mix64 == the host's (dlk_dropout_uniform): %d differ", bad);
  cudaFree(dc), cudaFree(dz), cudaFree(db), cudaFree(dm);
}

// rnn's same-dtype f64 copy (rnn_copy3_f64_kernel), which no row reaches (the rnn GPU rows
// take F32, F16 and BF16 only): every bit kept (values f32 cannot hold), strided source,
// rows past a sequence's end zeroed, then accumulated.
static void test_rnn_copy3_f64() {
  const int64_t T = 3, B = 2, n = 5, ss0 = B * 8, ss1 = 8;  // source rows padded to 8
  std::vector<double> src(T * ss0), want(T * B * n);
  for (size_t i = 0; i < src.size(); i++) src[i] = 1.0 + (double)i * 0x1p-40;
  int32_t lens[2] = {3, 1};
  double *ds = dev_alloc<double>(src.size()), *dd = dev_alloc<double>(T * B * n);
  int32_t *dl = dev_alloc<int32_t>(2);
  cudaMemcpy(ds, src.data(), src.size() * 8, cudaMemcpyHostToDevice);
  cudaMemcpy(dl, lens, sizeof lens, cudaMemcpyHostToDevice);
  dlk_k_rnn_copy3_desc c = {DLK_F64, DLK_F64, T, B, n, ds, ss0, ss1, 1, dd, B * n, n, 1, dl, 1, 0};
  CHECK(dlk_k_rnn_copy3(&c, 0, nullptr, nullptr) == 0, "rnn copy3 f64 launch");
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t k = 0; k < n; k++) want[(t * B + b) * n + k] = t < lens[b] ? src[t * ss0 + b * ss1 + k] : 0.0;
  std::vector<double> got(T * B * n);
  cudaMemcpy(got.data(), dd, got.size() * 8, cudaMemcpyDeviceToHost);
  CHECK(memcmp(got.data(), want.data(), got.size() * 8) == 0, "rnn copy3 f64: masked strided copy not bit for bit");
  c.lens = nullptr, c.mask_past_end = 0, c.accumulate = 1;
  CHECK(dlk_k_rnn_copy3(&c, 0, nullptr, nullptr) == 0, "rnn copy3 f64 accumulate launch");
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t k = 0; k < n; k++) want[(t * B + b) * n + k] += src[t * ss0 + b * ss1 + k];
  cudaMemcpy(got.data(), dd, got.size() * 8, cudaMemcpyDeviceToHost);
  CHECK(memcmp(got.data(), want.data(), got.size() * 8) == 0, "rnn copy3 f64: accumulate not bit for bit");
  cudaFree(ds), cudaFree(dd), cudaFree(dl);
}

// The SDPA vendor row's helpers (kernels/attention/sdpa_fwd.cu), which only the cuDNN row
// calls, against attention.h's rules on a small problem: B 2, Hq 2, Tq 3, Tk 4, Dv 2, f32,
// q lengths {2, 3}, k lengths {4, 1}.
static void test_sdpa_vendor_helpers() {
  const int64_t B = 2, H = 2, Tq = 3, Tk = 4, Dv = 2, rows = B * H * Tq;
  const int32_t qlh[2] = {2, 3}, klh[2] = {4, 1};
  int32_t *ql = dev_alloc<int32_t>(2), *kl = dev_alloc<int32_t>(2), *qo = dev_alloc<int32_t>(2),
          *ko = dev_alloc<int32_t>(2);
  cudaMemcpy(ql, qlh, sizeof qlh, cudaMemcpyHostToDevice);
  cudaMemcpy(kl, klh, sizeof klh, cudaMemcpyHostToDevice);
  float *out = dev_alloc<float>(rows * Dv), *lse = dev_alloc<float>(rows), *stats = dev_alloc<float>(rows);
  dlk_k_sdpa_desc a;
  memset(&a, 0, sizeof a);
  a.dtype = DLK_F32, a.B = B, a.Hq = a.Hk = H, a.Tq = Tq, a.Tk = Tk, a.D = Dv, a.Dv = Dv, a.scale = 1;
  a.out = dlk_k_t4{out, H * Tq * Dv, Tq * Dv, Dv, 1};
  a.lse = lse, a.lse_s0 = H * Tq, a.lse_s1 = Tq, a.lse_s2 = 1;
  a.q_len = ql, a.k_len = kl, a.q_len_dtype = a.k_len_dtype = DLK_I32, a.q_len_s = a.k_len_s = 1;
  // lengths as I32, and the full T for a side without lengths
  CHECK(dlk_k_sdpa_lengths_i32(&a, qo, ko, nullptr) == 0, "lengths launch");
  int32_t h[4];
  cudaMemcpy(h, qo, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(h + 2, ko, 8, cudaMemcpyDeviceToHost);
  CHECK(h[0] == 2 && h[1] == 3 && h[2] == 4 && h[3] == 1, "lengths %d %d / %d %d", h[0], h[1], h[2], h[3]);
  dlk_k_sdpa_desc nolen = a;
  nolen.k_len = nullptr;
  CHECK(dlk_k_sdpa_lengths_i32(&nolen, qo, ko, nullptr) == 0, "lengths launch");
  cudaMemcpy(h + 2, ko, 8, cudaMemcpyDeviceToHost);
  CHECK(h[2] == Tk && h[3] == Tk, "no k lengths: full Tk, got %d %d", h[2], h[3]);
  // clear_padding (forward): out 0 and lse -inf on query rows past q_len, the rest kept
  std::vector<float> ho(rows * Dv, 7.f), hl(rows, 3.f);
  cudaMemcpy(out, ho.data(), ho.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(lse, hl.data(), hl.size() * 4, cudaMemcpyHostToDevice);
  CHECK(dlk_k_sdpa_clear_padding(&a, 0, nullptr) == 0, "clear_padding launch");
  cudaMemcpy(ho.data(), out, ho.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(hl.data(), lse, hl.size() * 4, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = r % Tq, b = r / (Tq * H);
    const bool pad = i >= qlh[b];
    bad += hl[r] != (pad ? -INFINITY : 3.f);
    for (int64_t d = 0; d < Dv; d++) bad += ho[r * Dv + d] != (pad ? 0.f : 7.f);
  }
  CHECK(bad == 0, "clear_padding: %d values off", bad);
  // vendor_fwd_finish: rows past q_len, or with -inf stats (every score -inf), get out 0 and
  // lse -inf; the other rows' stats go to lse as they are. Row 1 of (b 0, h 0): -inf stats.
  std::vector<float> hs(rows);
  for (int64_t r = 0; r < rows; r++) hs[r] = 0.25f * (float)r;
  hs[1] = -INFINITY;
  std::fill(ho.begin(), ho.end(), 7.f);
  cudaMemcpy(out, ho.data(), ho.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(stats, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice);
  CHECK(dlk_k_sdpa_vendor_fwd_finish(&a, stats, nullptr) == 0, "vendor_fwd_finish launch");
  cudaMemcpy(ho.data(), out, ho.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(hl.data(), lse, hl.size() * 4, cudaMemcpyDeviceToHost);
  bad = 0;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = r % Tq, b = r / (Tq * H);
    const bool masked = i >= qlh[b] || r == 1;
    bad += hl[r] != (masked ? -INFINITY : hs[r]);
    for (int64_t d = 0; d < Dv; d++) bad += ho[r * Dv + d] != (masked ? 0.f : 7.f);
  }
  CHECK(bad == 0, "vendor_fwd_finish: %d values off", bad);
  // vendor_bwd_stats: +inf past q_len and where lse is -inf, lse elsewhere
  for (int64_t r = 0; r < rows; r++) hl[r] = r == 4 ? -INFINITY : 0.5f * (float)r;
  cudaMemcpy(lse, hl.data(), hl.size() * 4, cudaMemcpyHostToDevice);
  CHECK(dlk_k_sdpa_vendor_bwd_stats(&a, stats, nullptr) == 0, "vendor_bwd_stats launch");
  cudaMemcpy(hs.data(), stats, hs.size() * 4, cudaMemcpyDeviceToHost);
  bad = 0;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = r % Tq, b = r / (Tq * H);
    bad += hs[r] != ((i >= qlh[b] || r == 4) ? INFINITY : hl[r]);
  }
  CHECK(bad == 0, "vendor_bwd_stats: %d values off", bad);
  cudaFree(ql), cudaFree(kl), cudaFree(qo), cudaFree(ko), cudaFree(out), cudaFree(lse), cudaFree(stats);
}

static double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "oob") == 0) {
#ifndef EMU_ASAN
    printf("test_emu oob: skipped: not an ASan build (an out-of-bounds write is only caught there)\n");
    return 77;
#else
    int *p = dev_alloc<int>(1000);
    DLK_LAUNCH(k_oob, 4, 256, 0, nullptr)(p, 1000);
    printf("test_emu oob: the out-of-bounds write was NOT reported\n");
    return 1;
#endif
  }
  if (argc > 1 && strcmp(argv[1], "bench") == 0) {
    int *o = dev_alloc<int>(1);
    const int blocks = 4096, threads = 256;
    double t0 = now_s();
    DLK_LAUNCH(k_trivial, blocks, threads, 0, nullptr)(o);
    double t1 = now_s();
    DLK_LAUNCH(k_collectives, blocks / 4, 96, 0, nullptr)(dev_alloc<int>(96 * 12));
    double t2 = now_s();
    printf("test_emu bench: %.0f ns per CUDA thread (start, run, end); %.0f ns per thread of a "
           "kernel with 17 collectives and 3 barriers\n",
           (t1 - t0) * 1e9 / (blocks * threads), (t2 - t1) * 1e9 / (blocks / 4 * 96));
    return 0;
  }
#if defined(DLK_EMU_RACECHECK_BUILD) && !defined(EMU_ASAN)
  setenv("DLK_EMU_RACECHECK", "1", 1);  // before the first launch: every launch is checked
  const bool racecheck = true;
#else
  const bool racecheck = false;
#endif
  // the co-residency finder's wait (default 5 s), short here
  setenv("DLK_EMU_SPIN_S", "0.5", 1);
  test_correct();
  test_grid_barrier();
  test_half();
  test_cub();
  test_launchers();
  test_sdpa_vendor_helpers();
  test_rnn_copy3_f64();
  test_finders(racecheck);
  printf("test_emu: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
