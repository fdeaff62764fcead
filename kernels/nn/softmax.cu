// nn family, softmax and log-softmax over the last dim (forward, backward): the ladder
// 1 thread per row, 2 warp per row, 3 block per row. Launchers in kernels/nn/nn.h, right
// under the kernels; rows in host/nn/nn_cuda.c.
#include <climits>
#include <cmath>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

// ---- softmax ===========================================================================

// Forward. Group mapping per Grp<MODE>; each lane takes vectors lane, lane+size, ... of
// the row. Pass 1: online (max, sum) per lane, combined across the group; pass 2 writes
// y = exp(x - m) / s (or x - m - log s). Shared memory: 32 (max, sum) pairs and 32 A
// for the block reduction (MODE 3 only).
template <typename T, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void softmax_fwd_kernel(dlk_k_softmax_desc p) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  __shared__ MaxSum<A> sm[32];
  const int64_t R = p.x.rows, C = p.x.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *x = (const T *)p.x.data + r * p.x.rs;
    T *y = (T *)p.y.data + r * p.y.rs;
    MaxSum<A> st{neg_inf<A>(), (A)0};
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.x.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) ms_push(st, v[k]);
    }
    st = Grp<MODE>::ms(st, sm);
    // A +inf entry: the reference (and torch.softmax) forms exp(x - m) with m = +inf, so
    // exp(inf - inf) = NaN makes the sum and every output of the row NaN. The online
    // state instead holds s = count of +inf entries, which would give 0 at the finite
    // entries (and -inf for log-softmax); force the NaN.
    if (st.m == -neg_inf<A>()) st.s = (A)NAN;
    const A inv = (A)1 / st.s, lse_shift = st.m + m_log(st.s);
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.x.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) v[k] = p.log ? v[k] - lse_shift : m_exp(v[k] - st.m) * inv;
      IO::store(y, c, p.y.cs, v);
    }
  }
}

// Backward from y. Pass 1: d = sum(dy * y) (softmax) or sum(dy) (log-softmax) over the
// group; pass 2: dx = y (dy - d) or dy - exp(y) d. Same mapping as the forward.
template <typename T, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void softmax_bwd_kernel(dlk_k_softmax_desc p) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  __shared__ A sm[32];
  const int64_t R = p.y.rows, C = p.y.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *y = (const T *)p.y.data + r * p.y.rs;
    const T *dy = (const T *)p.dy.data + r * p.dy.rs;
    T *dx = (T *)p.dx.data + r * p.dx.rs;
    A d = 0;
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A vy[V], vd[V];
      IO::load(y, c, p.y.cs, vy);
      IO::load(dy, c, p.dy.cs, vd);
#pragma unroll
      for (int k = 0; k < V; k++) d += p.log ? vd[k] : vd[k] * vy[k];
    }
    d = Grp<MODE>::sum(d, sm);
    for (int64_t c = (int64_t)lane * V; c < C; c += (int64_t)size * V) {
      A vy[V], vd[V];
      IO::load(y, c, p.y.cs, vy);
      IO::load(dy, c, p.dy.cs, vd);
#pragma unroll
      for (int k = 0; k < V; k++) vd[k] = p.log ? vd[k] - m_exp(vy[k]) * d : vy[k] * (vd[k] - d);
      IO::store(dx, c, p.dx.cs, vd);
    }
  }
}

template <typename T, int MODE>
int softmax_launch(const dlk_k_softmax_desc *p, bool fwd, cudaStream_t st) {
  const dlk_k_mat &in = fwd ? p->x : p->y;
  const bool vec = MODE != 1 && (fwd ? vec_ok<T>(p->x) && vec_ok<T>(p->y)
                                     : vec_ok<T>(p->y) && vec_ok<T>(p->dy) && vec_ok<T>(p->dx));
  RowLaunch l = row_launch(MODE, in.rows, in.cols, vec ? Pack<T>::N : 1);
  if (fwd) {
    if (vec)
      DLK_LAUNCH(softmax_fwd_kernel<T, MODE, true>, l.blocks, l.threads, 0, st)(*p);
    else
      DLK_LAUNCH(softmax_fwd_kernel<T, MODE, false>, l.blocks, l.threads, 0, st)(*p);
  } else {
    if (vec)
      DLK_LAUNCH(softmax_bwd_kernel<T, MODE, true>, l.blocks, l.threads, 0, st)(*p);
    else
      DLK_LAUNCH(softmax_bwd_kernel<T, MODE, false>, l.blocks, l.threads, 0, st)(*p);
  }
  return (int)cudaGetLastError();
}

template <typename T>
int softmax_mode(const dlk_k_softmax_desc *p, int impl, bool fwd, cudaStream_t st) {
  switch (impl) {
    case 1: return softmax_launch<T, 1>(p, fwd, st);
    case 2: return softmax_launch<T, 2>(p, fwd, st);
    case 3: return softmax_launch<T, 3>(p, fwd, st);
    default: return (int)cudaErrorInvalidValue;
  }
}

}  // namespace

extern "C" int dlk_k_softmax_fwd(const dlk_k_softmax_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  if (p->x.rows <= 0 || p->x.cols <= 0) return 0;
  DLK_DISPATCH_FLOAT(p->dtype, T, return softmax_mode<T>(p, impl, true, (cudaStream_t)stream));
  return 0;
}

extern "C" int dlk_k_softmax_bwd(const dlk_k_softmax_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  if (p->y.rows <= 0 || p->y.cols <= 0) return 0;
  DLK_DISPATCH_FLOAT(p->dtype, T, return softmax_mode<T>(p, impl, false, (cudaStream_t)stream));
  return 0;
}
