// Device helpers shared by the nn family's kernels (kernels/nn.cu, kernels/nn_gemm.cu):
// dtype conversions, the accumulation type, activations and their derivatives, warp and
// block reductions, grid sizing. Included only by .cu files of the nn family.
#ifndef DLK_NN_COMMON_CUH
#define DLK_NN_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "dlk.h"
#include "kernels.h"

// Bounds checks for a debugging build (-DDLK_DEBUG_KERNELS): a violated index invariant
// traps, so compute-sanitizer or the next CUDA call reports the kernel at fault.
#ifdef DLK_DEBUG_KERNELS
#define DLK_KCHECK(cond)   \
  do {                     \
    if (!(cond)) __trap(); \
  } while (0)
#else
#define DLK_KCHECK(cond) \
  do {                   \
  } while (0)
#endif

namespace dlk_nn {

typedef __half f16;
typedef __nv_bfloat16 bf16;

// Accumulation type: f32 for every 16/32-bit dtype, f64 for f64.
template <typename T>
struct AccT {
  typedef float type;
};
template <>
struct AccT<double> {
  typedef double type;
};

__device__ __forceinline__ float to_acc(float v) {
  return v;
}
__device__ __forceinline__ float to_acc(f16 v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_acc(bf16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ double to_acc(double v) {
  return v;
}

template <typename T>
__device__ __forceinline__ T from_acc(typename AccT<T>::type v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ f16 from_acc<f16>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ bf16 from_acc<bf16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ double from_acc<double>(double v) {
  return v;
}

// Precise (not the fast-intrinsic) math in the accumulation type.
__device__ __forceinline__ float m_exp(float v) {
  return expf(v);
}
__device__ __forceinline__ double m_exp(double v) {
  return exp(v);
}
__device__ __forceinline__ float m_log(float v) {
  return logf(v);
}
__device__ __forceinline__ double m_log(double v) {
  return log(v);
}
__device__ __forceinline__ float m_sqrt(float v) {
  return sqrtf(v);
}
__device__ __forceinline__ double m_sqrt(double v) {
  return sqrt(v);
}
__device__ __forceinline__ float m_tanh(float v) {
  return tanhf(v);
}
__device__ __forceinline__ double m_tanh(double v) {
  return tanh(v);
}
__device__ __forceinline__ float m_erf(float v) {
  return erff(v);
}
__device__ __forceinline__ double m_erf(double v) {
  return erf(v);
}
__device__ __forceinline__ float m_max(float a, float b) {
  return fmaxf(a, b);
}
__device__ __forceinline__ double m_max(double a, double b) {
  return fmax(a, b);
}
template <typename A>
__device__ __forceinline__ A neg_inf() {
  return (A)-INFINITY;
}

// act(v) for a dlk_activation, as the CPU reference: relu v <= 0 ? 0 : v (NaN stays NaN,
// as torch.relu; its derivative passes the gradient at NaN like threshold_backward).
// gelu is exact: 0.5 v (1 + erf(v / sqrt 2)).
template <typename A>
__device__ __forceinline__ A act_fwd(A v, int act) {
  switch (act) {
    case DLK_ACT_RELU: return v <= (A)0 ? (A)0 : v;
    case DLK_ACT_TANH: return m_tanh(v);
    case DLK_ACT_SIGMOID: return (A)1 / ((A)1 + m_exp(-v));
    case DLK_ACT_GELU: return (A)0.5 * v * ((A)1 + m_erf(v * (A)0.70710678118654752440));
    default: return v;
  }
}

// act'(v) at the pre-activation v: relu 1[v > 0]; tanh 1 - tanh^2; sigmoid s (1 - s);
// gelu Phi(v) + v phi(v), phi(v) = exp(-v^2/2) / sqrt(2 pi).
template <typename A>
__device__ __forceinline__ A act_grad(A v, int act) {
  switch (act) {
    case DLK_ACT_RELU: return v <= (A)0 ? (A)0 : (A)1;
    case DLK_ACT_TANH: {
      A t = m_tanh(v);
      return (A)1 - t * t;
    }
    case DLK_ACT_SIGMOID: {
      A s = (A)1 / ((A)1 + m_exp(-v));
      return s * ((A)1 - s);
    }
    case DLK_ACT_GELU: {
      A cdf = (A)0.5 * ((A)1 + m_erf(v * (A)0.70710678118654752440));
      A pdf = m_exp((A)-0.5 * v * v) * (A)0.39894228040143267794;
      return cdf + v * pdf;
    }
    default: return (A)1;
  }
}

// ---- reductions (fixed order: bit-identical run to run) ----

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = m_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Online softmax state: running max m and sum s of exp(x - m). Combining two states:
// m = max(m1, m2), s = s1 exp(m1 - m) + s2 exp(m2 - m). A side whose max equals m adds
// its s unscaled, so equal infinite maxima never form inf - inf; the empty state
// (m = -inf, s = 0) is the identity.
template <typename A>
struct MaxSum {
  A m, s;
};
template <typename A>
__device__ __forceinline__ MaxSum<A> ms_combine(MaxSum<A> a, MaxSum<A> b) {
  A m = m_max(a.m, b.m);
  A sa = a.m == m ? a.s : a.s * m_exp(a.m - m);
  A sb = b.m == m ? b.s : b.s * m_exp(b.m - m);
  return MaxSum<A>{m, sa + sb};
}
template <typename A>
__device__ __forceinline__ MaxSum<A> warp_ms(MaxSum<A> v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> w{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = ms_combine(v, w);
  }
  return v;
}

// Block reductions over all threads of a block (blockDim.x a multiple of 32, <= 1024):
// warps reduce by shuffles, lane 0 of each warp stores into sm[warp], and then every
// thread combines sm[0..nwarps) in order, so all threads get the same total without a
// third barrier. The leading barrier protects sm from a previous use.
template <typename A>
__device__ A block_sum(A v, A *sm) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  A t = sm[0];
  for (int i = 1; i < nw; i++) t += sm[i];
  return t;
}
template <typename A>
__device__ MaxSum<A> block_ms(MaxSum<A> v, MaxSum<A> *sm) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_ms(v);
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  MaxSum<A> t = sm[0];
  for (int i = 1; i < nw; i++) t = ms_combine(t, sm[i]);
  return t;
}

// ---- launch geometry ----

// Blocks for a grid-stride loop over n items with `threads` per block: enough to fill
// the GPU, capped so the grid limit (2^31 - 1) is never reached.
static inline unsigned grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;
  return (unsigned)b;
}

// 2-D grid-stride geometry for elementwise work over [R, C] without per-element
// divisions: block (bx, by) with bx a power of two in [32, 256] that covers short rows,
// by = 256 / bx rows per block; grid capped (x at 2^16, y at 65535), the kernels loop
//   for (r = blockIdx.y * by + ty; r < R; r += gridDim.y * by)
//     for (c = blockIdx.x * bx + tx; c < C; c += gridDim.x * bx)
struct Geom2 {
  dim3 grid, block;
};
static inline Geom2 geom2(int64_t R, int64_t C) {
  int bx = 32;
  while (bx < 256 && bx < C) bx <<= 1;
  int by = 256 / bx;
  int64_t gx = (C + bx - 1) / bx, gy = (R + by - 1) / by;
  if (gx < 1) gx = 1;
  if (gy < 1) gy = 1;
  if (gx > (1 << 16)) gx = 1 << 16;
  if (gy > 65535) gy = 65535;
  Geom2 g;
  g.grid = dim3((unsigned)gx, (unsigned)gy);
  g.block = dim3((unsigned)bx, (unsigned)by);
  return g;
}
__device__ __forceinline__ int64_t row0() {
  return blockIdx.y * (int64_t)blockDim.y + threadIdx.y;
}
__device__ __forceinline__ int64_t row_step() {
  return (int64_t)gridDim.y * blockDim.y;
}
__device__ __forceinline__ int64_t col0() {
  return blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t col_step() {
  return (int64_t)gridDim.x * blockDim.x;
}

// Whether pointer p and every multiple of the element strides keep `bytes` alignment.
static inline bool aligned_ptr(const void *p, int bytes) {
  return ((uintptr_t)p % bytes) == 0;
}

// Run `body` with T bound to the C++ type of a float dlk_dtype; other dtypes give
// cudaErrorInvalidValue.
#define DLK_NN_DISPATCH_FLOAT(dtype, T, ...)    \
  switch (dtype) {                              \
    case DLK_F32: {                             \
      typedef float T;                          \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_F16: {                             \
      typedef dlk_nn::f16 T;                    \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_BF16: {                            \
      typedef dlk_nn::bf16 T;                   \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_F64: {                             \
      typedef double T;                         \
      __VA_ARGS__;                              \
    } break;                                    \
    default: return (int)cudaErrorInvalidValue; \
  }

// ---- the gemm epilogue shared by the gemm variants (kernels/nn_gemm*.cu) ----
// ---- the epilogue, one element: v = alpha*acc (+ beta*c_old) (+ bias); z = v; c = act(v).
// beta == 0 never reads c (its old contents may be NaN).
template <typename T, typename A>
__device__ __forceinline__ void gemm_store(const dlk_k_gemm &g, A alpha, A beta, int64_t b,
                                           int64_t m, int64_t n, A acc) {
  DLK_KCHECK(b < g.c.batch && m < g.c.rows && n < g.c.cols);
  A v = alpha * acc;
  T *c = (T *)g.c.data + b * g.c.bs + m * g.c.rs + n * g.c.cs;
  if (beta != (A)0) v += beta * to_acc(*c);
  if (g.bias.data) v += to_acc(((const T *)g.bias.data)[n * g.bias.s]);
  if (g.z.data) ((T *)g.z.data)[b * g.z.bs + m * g.z.rs + n * g.z.cs] = from_acc<T>(v);
  *c = from_acc<T>(act_fwd(v, g.act));
}

__device__ __forceinline__ void store_pair(f16 *p, float a, float b) {
  *(__half2 *)p = __floats2half2_rn(a, b);
}
__device__ __forceinline__ void store_pair(bf16 *p, float a, float b) {
  *(__nv_bfloat162 *)p = __floats2bfloat162_rn(a, b);
}
__device__ __forceinline__ float2 load_pair(const f16 *p) {
  return __half22float2(*(const __half2 *)p);
}
__device__ __forceinline__ float2 load_pair(const bf16 *p) {
  return __bfloat1622float2(*(const __nv_bfloat162 *)p);
}

// Two horizontally adjacent outputs (m, n) and (m, n+1). `pair_ok`: c (and z) have unit
// column stride and 4-byte aligned even offsets, so both go as one 32-bit access.
template <typename T>
__device__ __forceinline__ void gemm_store2(const dlk_k_gemm &g, bool pair_ok, float alpha,
                                           float beta, int64_t b, int64_t m, int64_t n, float v0,
                                           float v1) {
  const int64_t N = g.c.cols;
  if (pair_ok && n + 1 < N) {
    T *c = (T *)g.c.data + b * g.c.bs + m * g.c.rs + n;
    v0 *= alpha;
    v1 *= alpha;
    if (beta != 0.f) {
      float2 o = load_pair(c);
      v0 += beta * o.x;
      v1 += beta * o.y;
    }
    if (g.bias.data) {
      const T *bias = (const T *)g.bias.data;
      v0 += to_acc(bias[n * g.bias.s]);
      v1 += to_acc(bias[(n + 1) * g.bias.s]);
    }
    if (g.z.data) store_pair((T *)g.z.data + b * g.z.bs + m * g.z.rs + n, v0, v1);
    store_pair(c, act_fwd(v0, g.act), act_fwd(v1, g.act));
  } else {
    if (n < N) gemm_store<T, float>(g, alpha, beta, b, m, n, v0);
    if (n + 1 < N) gemm_store<T, float>(g, alpha, beta, b, m, n + 1, v1);
  }
}

}  // namespace dlk_nn

#endif  // DLK_NN_COMMON_CUH
