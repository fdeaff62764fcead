// Device helpers of the additive (Bahdanau) and Luong attention kernels (additive_fwd.cu,
// additive_bwd.cu), on top of kernels/common.cuh: the encoder length of a sequence, 3-D
// element pointers, the tanh of the fused kernels, and the geometry both fused directions
// share with their host-side launchers.
#ifndef DLK_ADDITIVE_CUH
#define DLK_ADDITIVE_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../common.cuh"
#include "attention.h"

namespace dlk {
namespace attn {

// The scores of the three kinds (dlk_k_attn_desc.kind).
enum { ADDITIVE = 0, DOT = 1, GENERAL = 2 };

// Encoder length of sequence b (Te without lengths). Out-of-range values were refused
// before launch; the clamp keeps every access in bounds when the caller chose unchecked
// ids (a length 0 then gives zero weights and a zero context, never NaN).
__device__ __forceinline__ int64_t seq_len(const dlk_k_attn_desc &a, int64_t b) {
  if (!a.len) return a.Te;
  const int64_t v = a.len_dtype == DLK_I64 ? ((const int64_t *)a.len)[b * a.len_s]
                                           : (int64_t)((const int32_t *)a.len)[b * a.len_s];
  return v < 0 ? 0 : (v > a.Te ? a.Te : v);
}

template <typename T>
__device__ __forceinline__ T *at3(const dlk_k_t3 &t, int64_t a, int64_t b, int64_t c) {
  return (T *)t.data + a * t.s0 + b * t.s1 + c * t.s2;
}

// tanh of the fused kernels: 1 - 2 / (e^{2x} + 1) with the fast exponential and division
// (ex2.approx and rcp.approx: a few instructions instead of tanhf's rational
// approximation). Its absolute error stays within a few 1e-7 over the whole line, which
// is what matters here: each tanh is multiplied by v_a and summed into a score. It
// saturates to exactly +-1 (e^{2x} = inf gives 2 / inf = 0) and keeps NaN. f64 keeps the
// library tanh.
__device__ __forceinline__ float tanh_fast(float x) {
  return 1.0f - __fdividef(2.0f, __expf(2.0f * x) + 1.0f);
}
__device__ __forceinline__ double tanh_fast(double x) {
  return tanh(x);
}

// Bytes of one accumulator (f32, f64 for f64 data).
inline size_t acc_bytes(int dtype) {
  return dtype == DLK_F64 ? 8 : 4;
}

inline int64_t query_dim(const dlk_k_attn_desc *a) {
  return a->kind == ADDITIVE ? a->A : a->He;
}

// Geometry of the fused forward (a function of the problem alone, so the workspace the
// host sizes and the launch agree, and results never depend on the GPU): TI decoder steps
// per block (4, or 1 when Td < 4: the single-step form), `nsplit` splits of each
// sequence's visible encoder steps (more than one only when B x tiles blocks would not
// fill the GPU twice over, or when a split's scores would not fit shared memory), `ch` the
// most steps a split holds, `smem` the dynamic shared memory: queries [TI][QD], v [A]
// (additive), scores [TI][ch], (m, l) [TI][2], in accumulators.
struct FusedGeom {
  int ti;
  int64_t tiles, nsplit, ch;
  size_t smem;
};
constexpr int FZ_THREADS = 256, FZ_WARPS = FZ_THREADS / 32;
constexpr size_t FZ_SMEM = 48 * 1024;
constexpr int64_t FZ_TARGET_BLOCKS = 264;  // two waves of a 132-SM GPU
constexpr int64_t FZ_MIN_SPLIT = 32;       // encoder steps per split, at least

inline bool fused_geom(const dlk_k_attn_desc *a, FusedGeom *g, char *why, size_t n) {
  const size_t es = acc_bytes(a->dtype);
  g->ti = a->Td >= 4 ? 4 : 1;
  g->tiles = (a->Td + g->ti - 1) / g->ti;
  const int64_t qd = query_dim(a);
  const size_t fixed =
      ((size_t)g->ti * (size_t)qd + (a->kind == ADDITIVE ? (size_t)a->A : 0) + 2 * (size_t)g->ti) *
      es;
  const size_t row = (size_t)g->ti * es;  // one encoder step's scores
  if (fixed + row * FZ_MIN_SPLIT > FZ_SMEM) {
    if (why)
      snprintf(why, n,
               "the query vectors (%d x %lld) do not fit the fused kernel's %zu bytes of shared "
               "memory",
               g->ti, (long long)qd, FZ_SMEM);
    return false;
  }
  if (g->tiles > 65535) {
    if (why) snprintf(why, n, "Td %lld exceeds the fused kernel's grid", (long long)a->Td);
    return false;
  }
  const int64_t base = a->B * g->tiles, ch_max = (int64_t)((FZ_SMEM - fixed) / row);
  int64_t ns = base > 0 && base < FZ_TARGET_BLOCKS ? (FZ_TARGET_BLOCKS + base - 1) / base : 1;
  const int64_t ns_cap = (a->Te + FZ_MIN_SPLIT - 1) / FZ_MIN_SPLIT;
  if (ns > ns_cap) ns = ns_cap;
  if (ns < (a->Te + ch_max - 1) / ch_max) ns = (a->Te + ch_max - 1) / ch_max;
  if (ns < 1) ns = 1;
  g->nsplit = ns;
  g->ch = (a->Te + ns - 1) / ns;
  if (g->ch < 1) g->ch = 1;
  g->smem = fixed + row * (size_t)g->ch;
  if (a->B * ns > 0x7fffffff) {
    if (why) snprintf(why, n, "B x splits exceed the fused kernel's grid");
    return false;
  }
  return true;
}

}  // namespace attn
}  // namespace dlk

#endif  // DLK_ADDITIVE_CUH
