// rnn: the persistent sequence kernel (Diamos et al., "Persistent RNNs", ICML 2016):
// rnn_fwd variant 2 ("persistent", small batches, the input projection from a GEMM before)
// and variant 3 ("fused_b1", batch 1 inference, the input projection inside). One launch
// runs every step of one layer and direction: each block keeps its hidden units' rows of
// W_hh in shared memory for the whole sequence, so the recurrent weights are read from
// DRAM once instead of once per step, and a grid-wide barrier separates the steps.
//
// Grid-wide synchronisation: a hand-rolled barrier (one atomic counter and a generation
// word, spinning with __nanosleep), not cooperative_groups::grid_group::sync, because the
// emulated device (DLK_CUDA_EMU) runs plain atomics and spinning but may not implement
// grid.sync. On a real GPU the kernel is still launched with cudaLaunchCooperativeKernel:
// that launch fails rather than starting a grid whose blocks cannot all be resident at
// once, which is what keeps a spinning barrier from deadlocking.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnn_common.cuh"

#include "rnn_pointwise.cuh"

using namespace dlk_rnn;

namespace {

constexpr int kThreads = 256;
constexpr int kMaxB = 8;

// Loads of state another block wrote before the last barrier: volatile, so they are not
// served from a stale L1 line.
__device__ __forceinline__ float ld_shared_state(const float *p, int64_t i) { return *(const volatile float *)(p + i); }
template <typename T>
__device__ __forceinline__ float ld_shared_state(const T *p, int64_t i) { // f16, bf16: the 16 bits
  const unsigned short bits = *(const volatile unsigned short *)(p + i);
  T v;
  memcpy(&v, &bits, sizeof v);
  return to_f(v);
}

// bar[0]: arrivals of the current generation; bar[1]: the generation. Thread 0 of each
// block arrives after a fence that publishes the block's writes; the last arrival resets
// the counter and bumps the generation; the others spin on the generation.
__device__ void grid_barrier(unsigned *bar, unsigned nblocks) {
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

// Thread mapping: block x owns hidden units [x U, x U + U) (U = ceil(H / gridDim.x)); its
// 8 warps take the units in turn; for a unit j a warp computes the G x B dot products of
// W_hh rows (g H + j) with the B staged states (lanes stride over k, butterfly sums), and
// lane q < B runs the pointwise for row q. Shared memory: the block's W_hh rows
// [G][U][H] of T, the previous state [B][H] as f32, and (fused input) x_t [B][I] as f32.
// The state double-buffers in hbuf [2][B][H] (T, rounded as the spec says); the cell
// state of (b, j) lives in cbuf [B][H] (f32) and only its owning lane touches it.
template <typename T>
__global__ void __launch_bounds__(kThreads) rnn_persist_kernel(dlk_k_rnn_persist_desc a, T *hbuf, float *cbuf,
                                                               unsigned *bar) {
  DLK_DYNAMIC_SHARED(float4, smem_f4);
  const int G = a.mode == DLK_RNN_LSTM ? 4 : a.mode == DLK_RNN_GRU ? 3 : 1;
  const int64_t H = a.H, B = a.B, GH = G * H, S = H * (a.mode == DLK_RNN_LSTM ? 5 : a.mode == DLK_RNN_GRU ? 4 : 1);
  const int64_t U = (H + gridDim.x - 1) / gridDim.x, u0 = (int64_t)blockIdx.x * U;
  const int64_t nU = H - u0 < U ? (H - u0 > 0 ? H - u0 : 0) : U;
  T *sw = (T *)smem_f4;
  float *sh = (float *)((char *)smem_f4 + (((size_t)G * U * H * sizeof(T) + 15) & ~(size_t)15));
  float *sx = sh + B * H;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;

  for (int64_t i = threadIdx.x; i < G * nU * H; i += blockDim.x) {
    const int64_t k = i % H, u = (i / H) % nU, g = i / (H * nU);
    sw[(g * U + u) * H + k] = ((const T *)a.w_hh.data)[(g * H + u0 + u) * a.w_hh.rs + k * a.w_hh.cs];
  }
  for (int64_t i = threadIdx.x; i < B * nU; i += blockDim.x) {
    const int64_t b = i / nU, j = u0 + i % nU;
    const float h = a.h0 ? ld_as(a.h0, a.dtype, b * a.h0s0 + j * a.h0s1) : 0.0f;
    hbuf[b * H + j] = from_f<T>(h);
    cbuf[b * H + j] = a.c0 ? ld_as(a.c0, a.dtype, b * a.c0s0 + j * a.c0s1) : 0.0f;
  }
  grid_barrier(bar, gridDim.x);

  for (int64_t s = 0; s < a.T; s++) {
    const int64_t t = a.dir == 0 ? s : a.T - 1 - s;
    T *hcur = hbuf + (s & 1) * B * H, *hnxt = hbuf + ((s + 1) & 1) * B * H;
    for (int64_t i = threadIdx.x; i < B * H; i += blockDim.x) sh[i] = ld_shared_state(hcur, i);
    if (a.fuse_input)
      for (int64_t i = threadIdx.x; i < B * a.I; i += blockDim.x) {
        const int64_t b = i / a.I, k = i % a.I;
        sx[i] = to_f(((const T *)a.x)[t * a.xs0 + b * a.xs1 + k * a.xs2]);
      }
    __syncthreads();
    FwdOut o;
    o.dtype = a.dtype, o.c_dtype = DLK_F32, o.c_out2_dtype = DLK_F32, o.H = H;
    o.h = {hcur, H, 1}, o.c = {cbuf, H, 1}, o.h_out = {hnxt, H, 1}, o.hp_out = {nullptr, 0, 0};
    o.c_out = {cbuf, H, 1};
    o.c_out2 = {a.cs ? (float *)a.cs + t * B * H : nullptr, H, 1};
    o.y = {(char *)a.ys + (t * B * a.ys_w + a.ys_off) * (int64_t)sizeof(T), a.ys_w, 1};
    o.saved = {a.saved ? (char *)a.saved + t * B * S * (int64_t)sizeof(T) : nullptr, S, 1};
    o.rh = {nullptr, 0, 0}, o.rz = {nullptr, 0, 0};
    for (int64_t u = warp; u < nU; u += nwarps) {
      const int64_t j = u0 + u;
      float acc[4][kMaxB], accx[4][kMaxB];
#pragma unroll
      for (int g = 0; g < 4; g++)
#pragma unroll
        for (int q = 0; q < kMaxB; q++) acc[g][q] = accx[g][q] = 0.0f;
      for (int64_t k = lane; k < H; k += 32) {
        float hk[kMaxB];
#pragma unroll
        for (int q = 0; q < kMaxB; q++) hk[q] = q < B ? sh[q * H + k] : 0.0f;
#pragma unroll
        for (int g = 0; g < 4; g++) {
          if (g >= G) break;
          const float w = to_f(sw[(g * U + u) * H + k]);
#pragma unroll
          for (int q = 0; q < kMaxB; q++) acc[g][q] += w * hk[q];
        }
      }
      if (a.fuse_input)
        for (int64_t k = lane; k < a.I; k += 32) {
          float xk[kMaxB];
#pragma unroll
          for (int q = 0; q < kMaxB; q++) xk[q] = q < B ? sx[q * a.I + k] : 0.0f;
#pragma unroll
          for (int g = 0; g < 4; g++) {
            if (g >= G) break;
            const float w = to_f(((const T *)a.w_ih.data)[(g * H + j) * a.w_ih.rs + k * a.w_ih.cs]);
#pragma unroll
            for (int q = 0; q < kMaxB; q++) accx[g][q] += w * xk[q];
          }
        }
      // Only the batch's rows: rows q >= B are never read (a batch-1 step needs G sums,
      // not 8 G); B is uniform over the grid, so the warp leaves the loop together.
#pragma unroll
      for (int g = 0; g < 4; g++) {
        if (g >= G) break;
#pragma unroll
        for (int q = 0; q < kMaxB; q++) {
          if (q >= B) break;
          acc[g][q] = warp_sum(acc[g][q]);
          if (a.fuse_input) accx[g][q] = warp_sum(accx[g][q]);
        }
      }
#pragma unroll
      for (int q = 0; q < kMaxB; q++) {
        if (q != lane || q >= B) continue;
        if (!active(a.lens, t, q)) {
          hnxt[q * H + j] = hcur[q * H + j]; // the state stays
          pw_fwd_inactive(o, a.mode, 0, q, j);
          continue;
        }
        float gi[4] = {0, 0, 0, 0}, gh[4] = {0, 0, 0, 0};
#pragma unroll
        for (int g = 0; g < 4; g++) {
          if (g >= G) break;
          const int64_t r = g * H + j;
          gi[g] = a.fuse_input ? accx[g][q] + (a.b_ih ? ld_as(a.b_ih, a.dtype, r * a.b_ih_s) : 0.0f)
                               : to_f(((const T *)a.gi)[(t * B + q) * GH + r]);
          gh[g] = acc[g][q] + (a.b_hh ? ld_as(a.b_hh, a.dtype, r * a.b_hh_s) : 0.0f);
        }
        pw_fwd(o, a.mode, 0, q, j, gi, gh);
      }
    }
    grid_barrier(bar, gridDim.x);
  }
  T *hfin = hbuf + (a.T & 1) * B * H;
  for (int64_t i = threadIdx.x; i < B * nU; i += blockDim.x) {
    const int64_t b = i / nU, j = u0 + i % nU;
    if (a.hn) st_as(a.hn, a.dtype, b * a.hns0 + j * a.hns1, to_f(hfin[b * H + j]));
    if (a.cn) st_as(a.cn, a.dtype, b * a.cns0 + j * a.cns1, cbuf[b * H + j]);
  }
}

size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }

const void *kernel_of(int dtype) {
  switch (dtype) {
    case DLK_F32: return (const void *)rnn_persist_kernel<float>;
    case DLK_F16: return (const void *)rnn_persist_kernel<f16>;
    case DLK_BF16: return (const void *)rnn_persist_kernel<bf16>;
    default: return nullptr;
  }
}

size_t smem_bytes(const dlk_k_rnn_persist_desc *a, int64_t blocks) {
  const int64_t G = a->mode == DLK_RNN_LSTM ? 4 : a->mode == DLK_RNN_GRU ? 3 : 1;
  const int64_t U = (a->H + blocks - 1) / blocks;
  const size_t es = a->dtype == DLK_F32 ? 4 : 2;
  return (((size_t)(G * U * a->H) * es + 15) & ~(size_t)15) + (size_t)(a->B * a->H) * 4 +
         (a->fuse_input ? (size_t)(a->B * a->I) * 4 : 0);
}

}  // namespace

extern "C" int dlk_k_rnn_persist_plan(dlk_k_rnn_persist_desc *a, size_t *ws_bytes, char *why, size_t n) {
  const void *k = kernel_of(a->dtype);
  if (!k) {
    snprintf(why, n, "dtype %d: F32, F16, BF16 only", a->dtype);
    return 0;
  }
  if (a->B > kMaxB) {
    snprintf(why, n, "batch %lld: the persistent kernel takes at most %d rows", (long long)a->B, kMaxB);
    return 0;
  }
  int dev = a->device, sms = 0, optin = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) {
    cudaGetLastError();
    snprintf(why, n, "cannot query the device");
    return 0;
  }
#if !defined(DLK_CUDA_EMU)
  int coop = 0;
  if (cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess || !coop) {
    cudaGetLastError();
    snprintf(why, n, "the device has no cooperative launch (needed to guarantee co-resident blocks)");
    return 0;
  }
#endif
  int64_t blocks = sms < a->H ? sms : a->H;
#if defined(DLK_CUDA_EMU)
  // The emulated device runs a grid's blocks on a pool of OS threads (DLK_EMU_THREADS,
  // default the core count), each block to its end: a spinning barrier needs every block
  // running at once, so the grid is at most the pool (its co-residency rule; a larger grid
  // is reported as a deadlock there). The barrier's spin yields through __nanosleep.
  if (blocks > dlk_emu_resident_blocks()) blocks = dlk_emu_resident_blocks();
#endif
  const int64_t U = (a->H + blocks - 1) / blocks;
  blocks = (a->H + U - 1) / U; // no block without units
  const size_t smem = smem_bytes(a, blocks);
  if (smem > (size_t)optin) {
    snprintf(why, n, "W_hh slice of %zu bytes per block is over the %d bytes of shared memory (hidden %lld)", smem, optin,
             (long long)a->H);
    return 0;
  }
  if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess) {
    cudaGetLastError();
    snprintf(why, n, "cannot raise the kernel's shared memory to %zu bytes", smem);
    return 0;
  }
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, kThreads, smem) != cudaSuccess) {
    cudaGetLastError();
    per_sm = 0;
  }
  if ((int64_t)per_sm * sms < blocks) {
    snprintf(why, n, "%lld blocks cannot all be resident (%d per SM x %d SMs)", (long long)blocks, per_sm, sms);
    return 0;
  }
  a->blocks = (int)blocks;
  const size_t es = a->dtype == DLK_F32 ? 4 : 2;
  *ws_bytes = align256((size_t)(2 * a->B * a->H) * es) + align256((size_t)(a->B * a->H) * 4) + 256;
  return 1;
}

extern "C" int dlk_k_rnn_persist(const dlk_k_rnn_persist_desc *a, int impl, void *ws, void *stream) {
  (void)impl;
  if (a->B == 0 || a->H == 0) return 0;
  const void *k = kernel_of(a->dtype);
  if (!k || a->blocks < 1) return (int)cudaErrorInvalidValue;
  const size_t es = a->dtype == DLK_F32 ? 4 : 2;
  char *p = (char *)ws;
  void *hbuf = p;
  float *cbuf = (float *)(p + align256((size_t)(2 * a->B * a->H) * es));
  unsigned *bar = (unsigned *)((char *)cbuf + align256((size_t)(a->B * a->H) * 4));
  cudaError_t e = cudaMemsetAsync(bar, 0, 256, (cudaStream_t)stream);
  if (e != cudaSuccess) return (int)e;
  const size_t smem = smem_bytes(a, a->blocks);
  dlk_k_rnn_persist_desc d = *a;
#if defined(DLK_CUDA_EMU)
  switch (a->dtype) {
    case DLK_F32: DLK_LAUNCH(rnn_persist_kernel<float>, a->blocks, kThreads, smem, stream)(d, (float *)hbuf, cbuf, bar); break;
    case DLK_F16: DLK_LAUNCH(rnn_persist_kernel<f16>, a->blocks, kThreads, smem, stream)(d, (f16 *)hbuf, cbuf, bar); break;
    default: DLK_LAUNCH(rnn_persist_kernel<bf16>, a->blocks, kThreads, smem, stream)(d, (bf16 *)hbuf, cbuf, bar); break;
  }
  return (int)cudaGetLastError();
#else
  // Not DLK_LAUNCH: the cooperative launch is what guarantees every block is resident
  // (see the file comment); the barrier itself is the hand-rolled one.
  void *args[] = {&d, &hbuf, &cbuf, &bar};
  return (int)cudaLaunchCooperativeKernel(k, dim3((unsigned)a->blocks), dim3(kThreads), args, smem, (cudaStream_t)stream);
#endif
}
