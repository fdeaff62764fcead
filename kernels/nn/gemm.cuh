// Helpers shared by the gemm kernels (kernels/nn/gemm.cu, kernels/nn/gemm_sm90.cu): the
// one-element and paired epilogue stores, and the wgmma entry points gemm.cu's launcher
// calls (defined in gemm_sm90.cu).
#ifndef DLK_NN_GEMM_CUH
#define DLK_NN_GEMM_CUH

#include "../common.cuh"
#include "nn.h"

namespace dlk {

// ---- the gemm epilogue shared by the gemm kernels (gemm.cu, gemm_sm90.cu) ----
// ---- the epilogue, one element: v = alpha*acc (+ beta*c_old) (+ bias); z = v; c = act(v).
// beta == 0 never reads c (its old contents may be NaN).
template <typename T, typename A>
__device__ __forceinline__ void gemm_store(const dlk_k_gemm_desc &g, A alpha, A beta, int64_t b,
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
__device__ __forceinline__ void gemm_store2(const dlk_k_gemm_desc &g, bool pair_ok, float alpha,
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

// impl 4 (gemm_sm90.cu): the TMA layout rules (dlk_k_gemm_supports) and the launch; a
// failure that is not a plain CUDA error leaves its detail in g->err.
int gemm_wgmma_supports(const dlk_k_gemm_desc *g, char *why, size_t why_len);
int gemm_wgmma(const dlk_k_gemm_desc *g, cudaStream_t st);

}  // namespace dlk

#endif  // DLK_NN_GEMM_CUH
