// nn family, cross-entropy over logits [N, C] (forward with the fixed-order reduction,
// backward): 1 thread per row, 2 block per row. Launchers in kernels/nn/nn.h, right under
// the kernels; rows in host/nn/nn_cuda.c (which runs dlk_k_check_ids first).
#include <climits>
#include <cmath>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

template <typename I>
__device__ __forceinline__ int64_t load_id(const dlk_k_vec &v, int64_t i) {
  return (int64_t)((const I *)v.data)[i * v.s];
}

// ---- cross-entropy =====================================================================

// Forward, one row per group (MODE 1 thread, MODE 3 block): online logsumexp of the row,
// then loss_i = lse - x[t] (0 for ignore_index, NaN for a target outside [0, C)).
// NONE writes loss_i; MEAN/SUM write it to ws (A[N]) for the fixed-order final sum.
template <typename T, typename I, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void cross_entropy_fwd_kernel(
    dlk_k_cross_entropy_desc p, typename AccT<T>::type *row_loss) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  __shared__ MaxSum<A> sm[32];
  const int64_t R = p.logits.rows, C = p.logits.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *x = (const T *)p.logits.data + r * p.logits.rs;
    MaxSum<A> st{neg_inf<A>(), (A)0};
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.logits.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) ms_push(st, v[k]);
    }
    st = Grp<MODE>::ms(st, sm);
    if (lane != 0) continue;
    const A lse = st.m + m_log(st.s);
    const int64_t t = load_id<I>(p.targets, r);
    A loss;
    if (t == p.ignore_index)
      loss = 0;
    else if (t < 0 || t >= C)
      loss = (A)NAN;
    else {
      DLK_KCHECK(t >= 0 && t < C);
      loss = lse - to_acc(x[t * p.logits.cs]);
    }
    if (p.lse.data) ((A *)p.lse.data)[r * p.lse.s] = lse;
    if (p.reduction == DLK_REDUCE_NONE)
      ((A *)p.loss.data)[r * p.loss.s] = loss;
    else
      row_loss[r] = loss;
  }
}

// Final reduction: one block of 1024 threads; thread t adds rows t, t + 1024, ... in f64,
// then the block sum (fixed order). MEAN divides by the count of targets != ignore_index
// (0 / 0 = NaN as torch when every target is ignored). Writes loss[0].
template <typename A, typename I>
__global__ __launch_bounds__(1024) void cross_entropy_final_kernel(dlk_k_cross_entropy_desc p, const A *row_loss) {
  __shared__ double sm[32];
  double s = 0, cnt = 0;
  for (int64_t i = threadIdx.x; i < p.logits.rows; i += blockDim.x) {
    s += (double)row_loss[i];
    cnt += load_id<I>(p.targets, i) != p.ignore_index ? 1.0 : 0.0;
  }
  s = block_sum(s, sm);
  cnt = block_sum(cnt, sm);
  if (threadIdx.x == 0) ((A *)p.loss.data)[0] = (A)(p.reduction == DLK_REDUCE_MEAN ? s / cnt : s);
}

// Count of targets != ignore_index (for the MEAN backward), one block, into *out.
template <typename I>
__global__ __launch_bounds__(1024) void cross_entropy_count_kernel(dlk_k_cross_entropy_desc p, double *out) {
  __shared__ double sm[32];
  double cnt = 0;
  for (int64_t i = threadIdx.x; i < p.logits.rows; i += blockDim.x)
    cnt += load_id<I>(p.targets, i) != p.ignore_index ? 1.0 : 0.0;
  cnt = block_sum(cnt, sm);
  if (threadIdx.x == 0) *out = cnt;
}

// Backward: per row, the logsumexp again (pass 1), then
// dx_j = w (exp(x_j - lse) - [j == t]) with w = dloss_i (or dloss_0 for MEAN/SUM, / count
// for MEAN); ignored rows get zeros, rows with a bad target NaN.
template <typename T, typename I, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void cross_entropy_bwd_kernel(dlk_k_cross_entropy_desc p,
                                                                          const double *count) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  __shared__ MaxSum<A> sm[32];
  const int64_t R = p.logits.rows, C = p.logits.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *x = (const T *)p.logits.data + r * p.logits.rs;
    T *dx = (T *)p.dlogits.data + r * p.dlogits.rs;
    const int64_t t = load_id<I>(p.targets, r);
    A w;
    if (p.reduction == DLK_REDUCE_NONE)
      w = ((const A *)p.dloss.data)[r * p.dloss.s];
    else
      w = ((const A *)p.dloss.data)[0];
    if (p.reduction == DLK_REDUCE_MEAN) w = w / (A)*count;
    const bool ignored = t == p.ignore_index, bad = !ignored && (t < 0 || t >= C);
    A lse = 0;
    if (!ignored && !bad) {
      MaxSum<A> st{neg_inf<A>(), (A)0};
      for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
        A v[V];
        IO::load(x, c, p.logits.cs, v);
#pragma unroll
        for (int k = 0; k < V; k++) ms_push(st, v[k]);
      }
      st = Grp<MODE>::ms(st, sm);
      lse = st.m + m_log(st.s);
    }
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.logits.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) {
        if (ignored)
          v[k] = 0;
        else if (bad)
          v[k] = (A)NAN;
        else
          v[k] = w * (m_exp(v[k] - lse) - (c + k == t ? (A)1 : (A)0));
      }
      IO::store(dx, c, p.dlogits.cs, v);
    }
  }
}

template <typename T, typename I, int MODE>
int cross_entropy_launch(const dlk_k_cross_entropy_desc *p, bool fwd, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  const bool vec = MODE != 1 && vec_ok<T>(p->logits) && (fwd || vec_ok<T>(p->dlogits));
  RowLaunch l = row_launch(MODE, p->logits.rows, p->logits.cols, vec ? Pack<T>::N : 1);
  if (fwd) {
    A *row_loss = (A *)ws;
    if (vec)
      DLK_LAUNCH(cross_entropy_fwd_kernel<T, I, MODE, true>, l.blocks, l.threads, 0, st)(*p, row_loss);
    else
      DLK_LAUNCH(cross_entropy_fwd_kernel<T, I, MODE, false>, l.blocks, l.threads, 0, st)(*p, row_loss);
    if (p->reduction != DLK_REDUCE_NONE) DLK_LAUNCH(cross_entropy_final_kernel<A, I>, 1, 1024, 0, st)(*p, row_loss);
  } else {
    double *count = (double *)ws;
    if (p->reduction == DLK_REDUCE_MEAN) DLK_LAUNCH(cross_entropy_count_kernel<I>, 1, 1024, 0, st)(*p, count);
    if (vec)
      DLK_LAUNCH(cross_entropy_bwd_kernel<T, I, MODE, true>, l.blocks, l.threads, 0, st)(*p, count);
    else
      DLK_LAUNCH(cross_entropy_bwd_kernel<T, I, MODE, false>, l.blocks, l.threads, 0, st)(*p, count);
  }
  return (int)cudaGetLastError();
}

template <typename T, typename I>
int cross_entropy_mode(const dlk_k_cross_entropy_desc *p, int impl, bool fwd, void *ws, cudaStream_t st) {
  if (impl == 1) return cross_entropy_launch<T, I, 1>(p, fwd, ws, st);
  if (impl == 2) return cross_entropy_launch<T, I, 3>(p, fwd, ws, st);
  return (int)cudaErrorInvalidValue;
}

}  // namespace

// forward: per-row losses (MEAN/SUM); backward: one double (the MEAN count).
extern "C" size_t dlk_k_cross_entropy_ws(const dlk_k_cross_entropy_desc *p, int impl) {
  (void)impl;
  size_t row = (size_t)(p->logits.rows > 0 ? p->logits.rows : 0) * (p->dtype == DLK_F64 ? 8 : 4);
  return row > 8 ? row : 8;
}

extern "C" int dlk_k_cross_entropy_fwd(const dlk_k_cross_entropy_desc *p, int impl, void *ws,
                                       void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (p->logits.rows <= 0 && p->reduction == DLK_REDUCE_NONE) return 0;
  if (p->logits.cols <= 0 && p->logits.rows > 0) return (int)cudaErrorInvalidValue;
  if (p->target_dtype != DLK_I32 && p->target_dtype != DLK_I64) return (int)cudaErrorInvalidValue;
  const bool i64 = p->target_dtype == DLK_I64;
  DLK_DISPATCH_FLOAT(p->dtype, T,
                     return i64 ? cross_entropy_mode<T, int64_t>(p, impl, true, ws, st)
                                : cross_entropy_mode<T, int32_t>(p, impl, true, ws, st));
  return 0;
}

extern "C" int dlk_k_cross_entropy_bwd(const dlk_k_cross_entropy_desc *p, int impl, void *ws,
                                       void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (p->logits.rows <= 0 || p->logits.cols <= 0) return 0;
  if (p->target_dtype != DLK_I32 && p->target_dtype != DLK_I64) return (int)cudaErrorInvalidValue;
  const bool i64 = p->target_dtype == DLK_I64;
  DLK_DISPATCH_FLOAT(p->dtype, T,
                     return i64 ? cross_entropy_mode<T, int64_t>(p, impl, false, ws, st)
                                : cross_entropy_mode<T, int32_t>(p, impl, false, ws, st));
  return 0;
}
