// Device helpers of the rnn family's kernels, beside kernels/common.cuh (DLK_LAUNCH,
// warp_sum, f16/bf16): dtype-dispatched loads and stores (the pointwise kernels are
// memory-bound and take the dtype at run time, uniform across the grid) and the gates.
#ifndef DLK_RNN_COMMON_CUH
#define DLK_RNN_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "../common.cuh"
#include "dlk.h"
#include "rnn.h"

// Bounds checks of a debugging build (-DDLK_DEBUG_KERNELS): a broken index invariant traps.
#define DLK_RNN_KCHECK(cond) DLK_KCHECK(cond)

namespace dlk_rnn {

using dlk::bf16;
using dlk::f16;

__device__ __forceinline__ float ld_as(const void *p, int dtype, int64_t i) {
  switch (dtype) {
    case DLK_F16: return __half2float(((const f16 *)p)[i]);
    case DLK_BF16: return __bfloat162float(((const bf16 *)p)[i]);
    case DLK_F64: return (float)((const double *)p)[i];
    default: return ((const float *)p)[i];
  }
}

__device__ __forceinline__ void st_as(void *p, int dtype, int64_t i, float v) {
  switch (dtype) {
    case DLK_F16: ((f16 *)p)[i] = __float2half_rn(v); break;
    case DLK_BF16: ((bf16 *)p)[i] = __float2bfloat16_rn(v); break;
    case DLK_F64: ((double *)p)[i] = (double)v; break;
    default: ((float *)p)[i] = v; break;
  }
}

// [b, j] of a matrix operand; absent (NULL) reads as 0.
__device__ __forceinline__ float ldm(const dlk_k_rnn_mat &m, int dtype, int64_t b, int64_t j) {
  return m.data ? ld_as(m.data, dtype, b * m.rs + j * m.cs) : 0.0f;
}
__device__ __forceinline__ void stm(const dlk_k_rnn_mat &m, int dtype, int64_t b, int64_t j, float v) {
  if (m.data) st_as(m.data, dtype, b * m.rs + j * m.cs, v);
}

// Typed loads of the compute-bound kernels.
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(f16 v) { return __half2float(v); }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ f16 from_f<f16>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }

// Precise math (expf / tanhf, not the fast intrinsics): the CPU reference is the spec.
__device__ __forceinline__ float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

using dlk::warp_sum;

__device__ __forceinline__ bool active(const int32_t *lens, int64_t t, int64_t b) {
  return !lens || t < (int64_t)lens[b];
}

// Blocks for a grid-stride loop over n items (capped: the loop covers the rest).
inline unsigned grid_1d(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65535 * 16) g = 65535 * 16;
  return (unsigned)g;
}

}  // namespace dlk_rnn

#endif  // DLK_RNN_COMMON_CUH
