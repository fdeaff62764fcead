// Device helpers of the SDPA kernels (sdpa_fwd.cu, sdpa_bwd.cu, sdpa_sm90.cu), on top of
// kernels/common.cuh (AccT, to_acc/from_acc, warp reductions, DLK_LAUNCH): the
// per-sequence lengths and visibility rule, the dropout keep test, the mma.sync / ldmatrix
// / cp.async wrappers of the tensor-core variants, and the checks both directions'
// tensor-core variants share.
#ifndef DLK_SDPA_COMMON_CUH
#define DLK_SDPA_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../common.cuh"
#include "attention.h"

namespace dlk {

// Length of sequence b (`full` when there is no lengths tensor). Out-of-range values were
// refused before launch (dlk_k_sdpa_check_lengths); the clamp keeps every access in bounds
// when the caller chose unchecked ids.
__device__ __forceinline__ int64_t seq_len(const void *p, int dtype, int64_t s, int64_t b,
                                           int64_t full) {
  if (!p) return full;
  int64_t v = dtype == DLK_I64 ? ((const int64_t *)p)[b * s] : (int64_t)((const int32_t *)p)[b * s];
  return v < 0 ? 0 : (v > full ? full : v);
}

// Key j visible to query i (both in range of their tensors) given the lengths ql, kl:
// i < ql, j < kl, and with causal j <= i + kl - ql (bottom-right, per sequence).
__device__ __forceinline__ bool visible(int64_t i, int64_t j, int64_t ql, int64_t kl, int causal) {
  return i < ql && j < kl && (!causal || j <= i + kl - ql);
}

// The counter-based RNG of dlk_dropout (host/nn.h dlk_mix64), an identical copy.
__device__ __forceinline__ uint64_t mix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Weight (b, h, i, j) kept by dropout? (Always when there is no dropout.)
__device__ __forceinline__ bool keep(const dlk_k_sdpa_desc &a, int64_t b, int64_t h, int64_t i,
                                     int64_t j) {
  if (a.drop_threshold == 0) return true;
  const uint64_t idx =
      (((uint64_t)b * (uint64_t)a.Hq + (uint64_t)h) * (uint64_t)a.Tq + (uint64_t)i) *
          (uint64_t)a.Tk +
      (uint64_t)j;
  return (mix64(a.seed, a.offset + idx) >> 11) >= a.drop_threshold;
}

// Element pointers.
template <typename T>
__device__ __forceinline__ T *at4(const dlk_k_t4 &t, int64_t a, int64_t b, int64_t c, int64_t d) {
  return (T *)t.data + a * t.s0 + b * t.s1 + c * t.s2 + d * t.s3;
}

// Scores. Thread mapping: a grid-stride loop over the row-major index of [B, Hq, Tq, Tk]
// (j fastest, so a warp reads consecutive bias elements); each thread computes one score
// in the accumulation type: scale q_i . k_j + bias_ij where key j is visible, else -inf.
// Rows and keys past the lengths are never read. No shared memory. The naive variant's
// first kernel in both directions (the backward recomputes the scores); static, as every
// kernel defined in a header.
template <typename T>
static __global__ void naive_scores_kernel(dlk_k_sdpa_desc a, typename AccT<T>::type *S) {
  typedef typename AccT<T>::type A;
  const int64_t total = a.B * a.Hq * a.Tq * a.Tk, G = a.Hq / a.Hk;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = idx;
    const int64_t j = t % a.Tk;
    t /= a.Tk;
    const int64_t i = t % a.Tq;
    t /= a.Tq;
    const int64_t h = t % a.Hq, b = t / a.Hq;
    const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
    A s = -INFINITY;
    if (visible(i, j, ql, kl, a.causal)) {
      const T *q = at4<const T>(a.q, b, h, i, 0), *k = at4<const T>(a.k, b, h / G, j, 0);
      A dot = 0;
      for (int64_t d = 0; d < a.D; d++) dot += to_acc(q[d * a.q.s3]) * to_acc(k[d * a.k.s3]);
      s = (A)a.scale * dot;
      if (a.bias.data) s += to_acc(*at4<const T>(a.bias, b, h, i, j));
    }
    S[idx] = s;
  }
}

static inline size_t acc_size(int dtype) {
  return dtype == DLK_F64 ? 8 : 4;
}

// ---- the tensor-core variants' checks (host side) ----

// A tensor the tensor-core kernels read with 16-byte cp.async rows: unit stride along the
// head dim, the other strides multiples of 8 elements, a 16-byte aligned base.
static inline bool tc_tensor(const char *name, const dlk_k_t4 &t, int64_t last, char *why,
                             size_t n) {
  if (!t.data) return true;
  if (t.s3 != 1 && last > 1) {
    snprintf(why, n, "%s has stride %lld along the head dim (needs 1)", name, (long long)t.s3);
    return false;
  }
  if (t.s0 % 8 || t.s1 % 8 || t.s2 % 8) {
    snprintf(why, n, "%s strides %lld, %lld, %lld not multiples of 8 (16-byte rows)", name,
             (long long)t.s0, (long long)t.s1, (long long)t.s2);
    return false;
  }
  if ((uintptr_t)t.data % 16) {
    snprintf(why, n, "%s not 16-byte aligned", name);
    return false;
  }
  return true;
}

// The shape and dtype rules of the tensor-core variants.
static inline bool tc_problem(const dlk_k_sdpa_desc *a, const char *what, char *why, size_t n) {
  if (a->dtype != DLK_F16 && a->dtype != DLK_BF16) {
    snprintf(why, n, "%s: f16/bf16 only (this is %s)", what,
             a->dtype == DLK_F32   ? "f32"
             : a->dtype == DLK_F64 ? "f64"
                                   : "another dtype");
    return false;
  }
  if (a->D > 256 || a->Dv > 256) {
    snprintf(why, n, "head dims D %lld, Dv %lld: at most 256", (long long)a->D, (long long)a->Dv);
    return false;
  }
  if (a->B > 65535 || a->Hq > 65535) {
    snprintf(why, n, "B %lld or Hq %lld beyond the grid (65535)", (long long)a->B,
             (long long)a->Hq);
    return false;
  }
  if (a->Tq > (1LL << 31) - 256 || a->Tk > (1LL << 31) - 256) {
    snprintf(why, n, "sequence beyond 2^31");
    return false;
  }
  return true;
}

// Padded head dim of the tile: the smallest of 32, 64, 128, 256 that holds max(D, Dv).
static inline int tc_head_dim(const dlk_k_sdpa_desc *a) {
  int64_t d = a->D > a->Dv ? a->D : a->Dv;
  return d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 256;
}

// ---- PTX wrappers of the tensor-core variants (sm_80+) ----
#if !defined(DLK_CUDA_EMU)

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
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma16816<f16>(float d[4], const uint32_t a[4],
                                              const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two floats rounded to T and packed in one 32-bit register (the low half is `lo`), as an
// mma operand holds two adjacent k elements.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<f16>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *(uint32_t *)&h;
}
template <>
__device__ __forceinline__ uint32_t pack2<bf16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *(uint32_t *)&h;
}

// Copy rows [r0, r0 + R) x head-dim columns [0, HD) of a [rows, cols] slice (row stride rs,
// unit column stride) into shared memory [R][HD + 8] with 16-byte cp.async, zero-filling
// rows >= rlim and columns >= clim (the padding of the head dim, rows past a length or
// past the tensor: never read from global memory). NT threads share the copy.
template <typename T, int R, int HD, int NT>
__device__ __forceinline__ void load_rows(T *s, const T *g, int64_t rs, int64_t r0, int64_t rlim,
                                          int64_t clim, int tid) {
  constexpr int CH = HD / 8, P = HD + 8;
#pragma unroll
  for (int c = tid; c < R * CH; c += NT) {
    const int row = c / CH, col = (c % CH) * 8;
    const int64_t gr = r0 + row;
    int valid = 0;
    if (gr < rlim && col < clim) valid = clim - col >= 8 ? 8 : (int)(clim - col);
    const T *src = valid ? g + gr * rs + col : g;
    cp_async16(s + row * P + col, src, valid * 2);
  }
}

#endif  // !DLK_CUDA_EMU

}  // namespace dlk

#endif  // DLK_SDPA_COMMON_CUH
