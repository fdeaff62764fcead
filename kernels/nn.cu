// nn family kernels other than gemm (kernels/nn_gemm.cu): bias + activation, softmax,
// cross-entropy, embedding, layer norm, dropout, optimizer steps. Launchers in
// kernels/kernels.h; rows in host/nn_cuda.c. Reductions never use float atomics (the one
// exception, embedding backward "atomic", is refused in deterministic mode by its row).
#include <climits>
#include <cmath>

#include <cub/device/device_radix_sort.cuh>

#include "nn_common.cuh"

using namespace dlk_nn;

namespace {

// A 16-byte vector of T (4 f32, 8 f16/bf16, 2 f64).
template <typename T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

// Row element access, vectorised (VEC: unit column stride, 16-byte aligned rows, C a
// multiple of V) or through the column stride.
template <typename T, bool VEC>
struct Row {
  typedef typename AccT<T>::type A;
  static constexpr int V = VEC ? Pack<T>::N : 1;
  __device__ __forceinline__ static void load(const T *row, int64_t c, int64_t cs, A *out) {
    if (VEC) {
      DLK_KCHECK(((uintptr_t)(row + c) & 15) == 0);
      Pack<T> p = *reinterpret_cast<const Pack<T> *>(row + c);
#pragma unroll
      for (int k = 0; k < V; k++) out[k] = to_acc(p.v[k]);
    } else {
      out[0] = to_acc(row[c * cs]);
    }
  }
  __device__ __forceinline__ static void store(T *row, int64_t c, int64_t cs, const A *in) {
    if (VEC) {
      DLK_KCHECK(((uintptr_t)(row + c) & 15) == 0);
      Pack<T> p;
#pragma unroll
      for (int k = 0; k < V; k++) p.v[k] = from_acc<T>(in[k]);
      *reinterpret_cast<Pack<T> *>(row + c) = p;
    } else {
      row[c * cs] = from_acc<T>(in[0]);
    }
  }
};

// Whether a [R, C] view can use 16-byte vectors of T along its rows.
template <typename T>
bool vec_ok(const dlk_k_mat &m) {
  const int V = Pack<T>::N;
  return m.cs == 1 && m.cols % V == 0 && (m.rows <= 1 || m.rs % V == 0) && aligned_ptr(m.data, 16);
}
bool vec_ok_dtype(int dtype, const dlk_k_mat &m) {
  switch (dtype) {
    case DLK_F32: return vec_ok<float>(m);
    case DLK_F16: return vec_ok<f16>(m);
    case DLK_BF16: return vec_ok<bf16>(m);
    case DLK_F64: return vec_ok<double>(m);
    default: return false;
  }
}
int vec_width(int dtype) {
  return dtype == DLK_F64 ? 2 : (dtype == DLK_F32 ? 4 : 8);
}

// Row groups: which rows a thread works on and how a group reduces.
//   MODE 1: one thread per row (block of 128 threads = 128 rows)
//   MODE 2: one warp per row (block of 256 threads = 8 rows)
//   MODE 3: one block per row (blockDim threads)
// Rows are walked grid-stride; the loop bound is uniform within a group, so warp
// shuffles and block barriers always see the whole group.
template <int MODE>
struct Grp {
  __device__ __forceinline__ static int64_t first() {
    return MODE == 1 ? blockIdx.x * (int64_t)blockDim.x + threadIdx.x
                     : (MODE == 2 ? blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5)
                                  : (int64_t)blockIdx.x);
  }
  __device__ __forceinline__ static int64_t step() {
    return MODE == 1 ? (int64_t)gridDim.x * blockDim.x
                     : (MODE == 2 ? (int64_t)gridDim.x * (blockDim.x >> 5) : (int64_t)gridDim.x);
  }
  __device__ __forceinline__ static int lane() {
    return MODE == 1 ? 0 : (MODE == 2 ? (int)(threadIdx.x & 31) : (int)threadIdx.x);
  }
  __device__ __forceinline__ static int size() {
    return MODE == 1 ? 1 : (MODE == 2 ? 32 : (int)blockDim.x);
  }
  // sm: 32 slots of shared memory, used by MODE 3 only.
  template <typename A>
  __device__ __forceinline__ static A sum(A v, A *sm) {
    if constexpr (MODE == 1) {
      return v;
    } else if constexpr (MODE == 2) {
      return warp_sum(v);
    } else {
      return block_sum(v, sm);
    }
  }
  template <typename A>
  __device__ __forceinline__ static MaxSum<A> ms(MaxSum<A> v, MaxSum<A> *sm) {
    if constexpr (MODE == 1) {
      return v;
    } else if constexpr (MODE == 2) {
      return warp_ms(v);
    } else {
      return block_ms(v, sm);
    }
  }
};

// Launch geometry of a row kernel: threads per block and blocks for R rows of C columns.
struct RowLaunch {
  unsigned blocks;
  int threads;
};
RowLaunch row_launch(int mode, int64_t R, int64_t C, int V) {
  RowLaunch l;
  if (mode == 1) {
    l.threads = 128;
    l.blocks = grid_for(R, 128);
  } else if (mode == 2) {
    l.threads = 256;
    l.blocks = grid_for(R, 8);
  } else {
    int64_t vecs = (C + V - 1) / V;  // enough threads for ~4 vectors each, 128..1024
    l.threads = vecs >= 4096 ? 1024 : (vecs >= 2048 ? 512 : (vecs >= 1024 ? 256 : 128));
    l.blocks = grid_for(R, 1);
  }
  return l;
}

// Online (max, sum exp) update with one value: one exp per element; the rescale
// exp(m_old - m_new) happens only when the max grows. x equal to the max adds exp(0) = 1
// without forming inf - inf (so a row of -inf gives lse -inf and a +inf entry lse +inf,
// as torch.logsumexp); NaN propagates into s.
template <typename A>
__device__ __forceinline__ void ms_push(MaxSum<A> &st, A x) {
  if (x > st.m) {
    st.s = st.s * m_exp(st.m - x) + (A)1;
    st.m = x;
  } else {
    st.s += x == st.m ? (A)1 : m_exp(x - st.m);
  }
}

// ==== bias + activation =================================================================

// Forward, simple. Thread mapping: geom2 over [R, C] (thread (ty, tx) -> row, column,
// both grid-stride); no shared memory.
template <typename T>
__global__ void bias_act_fwd_kernel(dlk_k_bias_act p) {
  typedef typename AccT<T>::type A;
  for (int64_t r = row0(); r < p.x.rows; r += row_step())
    for (int64_t c = col0(); c < p.x.cols; c += col_step()) {
      A v = to_acc(((const T *)p.x.data)[r * p.x.rs + c * p.x.cs]);
      if (p.bias.data) v += to_acc(((const T *)p.bias.data)[c * p.bias.s]);
      ((T *)p.y.data)[r * p.y.rs + c * p.y.cs] = from_acc<T>(act_fwd(v, p.act));
    }
}

// Forward, vectorised. Thread mapping: geom2 over [R, C/V]: thread (ty, tx) takes the
// 16-byte vector at columns V tx .. V tx + V - 1 of its row; bias read as vectors too.
template <typename T>
__global__ void bias_act_fwd_vec_kernel(dlk_k_bias_act p) {
  typedef typename AccT<T>::type A;
  constexpr int V = Pack<T>::N;
  const int64_t cv = p.x.cols / V;
  for (int64_t r = row0(); r < p.x.rows; r += row_step()) {
    for (int64_t cc = col0(); cc < cv; cc += col_step()) {
      const int64_t c = cc * V;
      A v[V], bb[V];
      Row<T, true>::load((const T *)p.x.data + r * p.x.rs, c, 1, v);
      if (p.bias.data) {
        Row<T, true>::load((const T *)p.bias.data, c, 1, bb);
#pragma unroll
        for (int k = 0; k < V; k++) v[k] += bb[k];
      }
#pragma unroll
      for (int k = 0; k < V; k++) v[k] = act_fwd(v[k], p.act);
      Row<T, true>::store((T *)p.y.data + r * p.y.rs, c, 1, v);
    }
  }
}

template <typename T>
__device__ __forceinline__ typename AccT<T>::type bias_act_grad(const dlk_k_bias_act &p, int64_t r,
                                                                int64_t c) {
  typedef typename AccT<T>::type A;
  A v = to_acc(((const T *)p.x.data)[r * p.x.rs + c * p.x.cs]);
  if (p.bias.data) v += to_acc(((const T *)p.bias.data)[c * p.bias.s]);
  return to_acc(((const T *)p.dy.data)[r * p.dy.rs + c * p.dy.cs]) * act_grad(v, p.act);
}

// Backward dx only. Thread mapping: geom2 over [R, C]; no shared memory.
template <typename T>
__global__ void bias_act_bwd_dx_kernel(dlk_k_bias_act p) {
  for (int64_t r = row0(); r < p.x.rows; r += row_step())
    for (int64_t c = col0(); c < p.x.cols; c += col_step())
      ((T *)p.dx.data)[r * p.dx.rs + c * p.dx.cs] = from_acc<T>(bias_act_grad<T>(p, r, c));
}

// Backward, simple dbias. Thread mapping: one thread per column (grid-stride), looping
// over all rows in order; writes dx on the way when wanted. The column sum is kept in
// f64: a sequential f32 sum over a few thousand rows drifts past the f32 tolerance
// (1e-5 + 1e-5 |ref|) on columns whose sum is near 0.
template <typename T>
__global__ void bias_act_bwd_col_kernel(dlk_k_bias_act p) {
  typedef typename AccT<T>::type A;
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < p.x.cols;
       c += (int64_t)gridDim.x * blockDim.x) {
    double s = 0;
    for (int64_t r = 0; r < p.x.rows; r++) {
      A g = bias_act_grad<T>(p, r, c);
      if (p.dx.data) ((T *)p.dx.data)[r * p.dx.rs + c * p.dx.cs] = from_acc<T>(g);
      s += (double)g;
    }
    ((T *)p.dbias.data)[c * p.dbias.s] = from_acc<T>((A)s);
  }
}

// Column sums in two passes (bias_act backward "tiled", layer norm backward 2).
// Rows are cut into `chunks` chunks of `chunk_rows` (a function of R only, so the order
// of additions never depends on the GPU). Pass 1: block (32, 8) owns 32 columns of one
// chunk; thread (tx, ty) sums rows ty, ty+8, ... of the chunk for column tx; the 8
// partials per column are added in ty order through smem [8][33], and written to
// partial[chunk][col]. Pass 2: one thread per column adds the chunks in order.
constexpr int CS_TX = 32, CS_TY = 8;
struct ColChunks {
  int64_t chunk_rows, chunks;
};
ColChunks col_chunks(int64_t R) {
  ColChunks c;
  c.chunk_rows = (R + 511) / 512;
  if (c.chunk_rows < 32) c.chunk_rows = 32;
  c.chunks = (R + c.chunk_rows - 1) / c.chunk_rows;
  if (c.chunks < 1) c.chunks = 1;
  return c;
}

template <typename T>
__global__ void bias_act_bwd_partial_kernel(dlk_k_bias_act p, int64_t chunk_rows,
                                            typename AccT<T>::type *partial) {
  typedef typename AccT<T>::type A;
  __shared__ A sm[CS_TY][CS_TX + 1];
  const int64_t C = p.x.cols, R = p.x.rows;
  const int64_t chunk = blockIdx.y;
  const int64_t r_end = min(R, (chunk + 1) * chunk_rows);
  for (int64_t c0 = blockIdx.x * (int64_t)CS_TX; c0 < C; c0 += (int64_t)gridDim.x * CS_TX) {
    const int64_t c = c0 + threadIdx.x;
    A s = 0;
    if (c < C) {
      for (int64_t r = chunk * chunk_rows + threadIdx.y; r < r_end; r += CS_TY) {
        A g = bias_act_grad<T>(p, r, c);
        if (p.dx.data) ((T *)p.dx.data)[r * p.dx.rs + c * p.dx.cs] = from_acc<T>(g);
        s += g;
      }
    }
    __syncthreads();
    sm[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      A t = sm[0][threadIdx.x];
      for (int k = 1; k < CS_TY; k++) t += sm[k][threadIdx.x];
      partial[chunk * C + c] = t;
    }
  }
}

// Pass 2: out[c] = sum over chunks of partial[chunk][c], in chunk order.
template <typename T>
__global__ void col_final_kernel(const typename AccT<T>::type *partial, int64_t chunks, int64_t C,
                                 dlk_k_vec out) {
  typedef typename AccT<T>::type A;
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
       c += (int64_t)gridDim.x * blockDim.x) {
    A s = 0;
    for (int64_t k = 0; k < chunks; k++) s += partial[k * C + c];
    ((T *)out.data)[c * out.s] = from_acc<T>(s);
  }
}

// ==== softmax ===========================================================================

// Forward. Group mapping per Grp<MODE>; each lane takes vectors lane, lane+size, ... of
// the row. Pass 1: online (max, sum) per lane, combined across the group; pass 2 writes
// y = exp(x - m) / s (or x - m - log s). Shared memory: 32 (max, sum) pairs and 32 A
// for the block reduction (MODE 3 only).
template <typename T, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void softmax_fwd_kernel(dlk_k_softmax p) {
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
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void softmax_bwd_kernel(dlk_k_softmax p) {
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
int softmax_launch(const dlk_k_softmax *p, bool fwd, cudaStream_t st) {
  const dlk_k_mat &in = fwd ? p->x : p->y;
  const bool vec = MODE != 1 && (fwd ? vec_ok<T>(p->x) && vec_ok<T>(p->y)
                                     : vec_ok<T>(p->y) && vec_ok<T>(p->dy) && vec_ok<T>(p->dx));
  RowLaunch l = row_launch(MODE, in.rows, in.cols, vec ? Pack<T>::N : 1);
  if (fwd) {
    if (vec)
      softmax_fwd_kernel<T, MODE, true><<<l.blocks, l.threads, 0, st>>>(*p);
    else
      softmax_fwd_kernel<T, MODE, false><<<l.blocks, l.threads, 0, st>>>(*p);
  } else {
    if (vec)
      softmax_bwd_kernel<T, MODE, true><<<l.blocks, l.threads, 0, st>>>(*p);
    else
      softmax_bwd_kernel<T, MODE, false><<<l.blocks, l.threads, 0, st>>>(*p);
  }
  return (int)cudaGetLastError();
}

template <typename T>
int softmax_mode(const dlk_k_softmax *p, int impl, bool fwd, cudaStream_t st) {
  switch (impl) {
    case 1: return softmax_launch<T, 1>(p, fwd, st);
    case 2: return softmax_launch<T, 2>(p, fwd, st);
    case 3: return softmax_launch<T, 3>(p, fwd, st);
    default: return (int)cudaErrorInvalidValue;
  }
}

// ==== id checks =========================================================================

// One block of 1024 threads: thread t scans ids t, t + 1024, ... and keeps the first bad
// position it sees; the block takes the minimum position (so the report is the first bad
// id, the same every run) and thread 0 writes {position, id} (or {-1, 0}) to `flag`,
// host-mapped memory the host reads after synchronising.
template <typename I>
__global__ __launch_bounds__(1024) void check_ids_kernel(dlk_k_vec ids, int64_t limit, int use_skip,
                                                         int64_t skip, int64_t *flag) {
  __shared__ long long sm[32];
  long long first = LLONG_MAX;
  for (int64_t i = threadIdx.x; i < ids.n; i += blockDim.x) {
    int64_t id = (int64_t)((const I *)ids.data)[i * ids.s];
    if ((id < 0 || id >= limit) && !(use_skip && id == skip)) {
      first = i;
      break;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    long long other = __shfl_xor_sync(0xffffffffu, first, o);
    first = other < first ? other : first;
  }
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = first;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long best = sm[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) best = sm[w] < best ? sm[w] : best;
    if (best == LLONG_MAX) {
      flag[0] = -1;
      flag[1] = 0;
    } else {
      flag[0] = best;
      flag[1] = (int64_t)((const I *)ids.data)[best * ids.s];
    }
    __threadfence_system();
  }
}

template <typename I>
__device__ __forceinline__ int64_t load_id(const dlk_k_vec &v, int64_t i) {
  return (int64_t)((const I *)v.data)[i * v.s];
}

// ==== cross-entropy =====================================================================

// Forward, one row per group (MODE 1 thread, MODE 3 block): online logsumexp of the row,
// then loss_i = lse - x[t] (0 for ignore_index, NaN for a target outside [0, C)).
// NONE writes loss_i; MEAN/SUM write it to ws (A[N]) for the fixed-order final sum.
template <typename T, typename I, int MODE, bool VEC>
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void xent_fwd_kernel(
    dlk_k_xent p, typename AccT<T>::type *row_loss) {
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
__global__ __launch_bounds__(1024) void xent_final_kernel(dlk_k_xent p, const A *row_loss) {
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
__global__ __launch_bounds__(1024) void xent_count_kernel(dlk_k_xent p, double *out) {
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
__global__ __launch_bounds__(MODE == 3 ? 1024 : 256) void xent_bwd_kernel(dlk_k_xent p,
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
int xent_launch(const dlk_k_xent *p, bool fwd, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  const bool vec = MODE != 1 && vec_ok<T>(p->logits) && (fwd || vec_ok<T>(p->dlogits));
  RowLaunch l = row_launch(MODE, p->logits.rows, p->logits.cols, vec ? Pack<T>::N : 1);
  if (fwd) {
    A *row_loss = (A *)ws;
    if (vec)
      xent_fwd_kernel<T, I, MODE, true><<<l.blocks, l.threads, 0, st>>>(*p, row_loss);
    else
      xent_fwd_kernel<T, I, MODE, false><<<l.blocks, l.threads, 0, st>>>(*p, row_loss);
    if (p->reduction != DLK_REDUCE_NONE) xent_final_kernel<A, I><<<1, 1024, 0, st>>>(*p, row_loss);
  } else {
    double *count = (double *)ws;
    if (p->reduction == DLK_REDUCE_MEAN) xent_count_kernel<I><<<1, 1024, 0, st>>>(*p, count);
    if (vec)
      xent_bwd_kernel<T, I, MODE, true><<<l.blocks, l.threads, 0, st>>>(*p, count);
    else
      xent_bwd_kernel<T, I, MODE, false><<<l.blocks, l.threads, 0, st>>>(*p, count);
  }
  return (int)cudaGetLastError();
}

template <typename T, typename I>
int xent_mode(const dlk_k_xent *p, int impl, bool fwd, void *ws, cudaStream_t st) {
  if (impl == 1) return xent_launch<T, I, 1>(p, fwd, ws, st);
  if (impl == 2) return xent_launch<T, I, 3>(p, fwd, ws, st);
  return (int)cudaErrorInvalidValue;
}

// ==== embedding =========================================================================

// Forward 1. Thread mapping: geom2 over out [N, D] (the id is read once per row); an id
// outside [0, V) gives 0 (never a read outside the table).
template <typename T, typename I>
__global__ void embedding_fwd_kernel(dlk_k_embedding p) {
  const int64_t V = p.table.rows;
  for (int64_t n = row0(); n < p.out.rows; n += row_step()) {
    const int64_t id = load_id<I>(p.ids, n);
    const bool ok = id >= 0 && id < V;
    for (int64_t d = col0(); d < p.out.cols; d += col_step())
      ((T *)p.out.data)[n * p.out.rs + d * p.out.cs] =
          ok ? ((const T *)p.table.data)[id * p.table.rs + d * p.table.cs] : from_acc<T>(0);
  }
}

// Forward 2. One warp per output row (8 per block of 256): the warp copies the table row
// in 16-byte vectors, lane l taking vectors l, l + 32, ...
template <typename T, typename I>
__global__ void embedding_fwd_vec_kernel(dlk_k_embedding p) {
  constexpr int V = Pack<T>::N;
  const int64_t D = p.out.cols, Vr = p.table.rows;
  const int lane = threadIdx.x & 31;
  for (int64_t n = Grp<2>::first(); n < p.out.rows; n += Grp<2>::step()) {
    const int64_t id = load_id<I>(p.ids, n);
    const bool ok = id >= 0 && id < Vr;
    Pack<T> *dst = reinterpret_cast<Pack<T> *>((T *)p.out.data + n * p.out.rs);
    const Pack<T> *src =
        reinterpret_cast<const Pack<T> *>((const T *)p.table.data + (ok ? id : 0) * p.table.rs);
    for (int64_t c = lane; c < D / V; c += 32) {
      Pack<T> v;
      if (ok) {
        v = src[c];
      } else {
#pragma unroll
        for (int k = 0; k < V; k++) v.v[k] = from_acc<T>(0);
      }
      dst[c] = v;
    }
  }
}

// dtable = 0 through its strides. Thread mapping: geom2 over [V, D].
template <typename T>
__global__ void zero_mat_kernel(dlk_k_mat m) {
  for (int64_t r = row0(); r < m.rows; r += row_step())
    for (int64_t c = col0(); c < m.cols; c += col_step())
      ((T *)m.data)[r * m.rs + c * m.cs] = from_acc<T>(0);
}

// Backward 1: geom2 over dout [N, D]; atomicAdd into dtable (F32/F64 only). Ids out of
// range or equal to padding_idx are skipped.
template <typename T, typename I>
__global__ void embedding_bwd_atomic_kernel(dlk_k_embedding p) {
  const int64_t V = p.table.rows;
  for (int64_t n = row0(); n < p.out.rows; n += row_step()) {
    const int64_t id = load_id<I>(p.ids, n);
    if (id < 0 || id >= V || id == p.padding_idx) continue;
    for (int64_t d = col0(); d < p.out.cols; d += col_step()) {
      DLK_KCHECK(d < p.table.cols);
      atomicAdd((T *)p.table.data + id * p.table.rs + d * p.table.cs,
                ((const T *)p.out.data)[n * p.out.rs + d * p.out.cs]);
    }
  }
}

// Backward 2, step 1: keys[i] = id (or V, a sentinel that sorts last, for ids out of
// range and padding_idx), vals[i] = i. Thread mapping: grid-stride over N.
template <typename I>
__global__ void embedding_keys_kernel(dlk_k_embedding p, uint32_t *keys, int32_t *vals) {
  const int64_t V = p.table.rows;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.ids.n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t id = load_id<I>(p.ids, i);
    keys[i] = (id < 0 || id >= V || id == p.padding_idx) ? (uint32_t)V : (uint32_t)id;
    vals[i] = (int32_t)i;
  }
}

// Backward 2, step 3: one warp per sorted entry j (8 per block); only the warp at the start
// of a run of equal keys works: for each 32-column slice (lane = column) it adds the dout
// rows of the run in sorted order (positions ascending: the radix sort is stable), in f64
// (a frequent id's run is thousands of rows long: an f32 sum that long drifts past the
// f32 tolerance), and writes the dtable row once.
template <typename T>
__global__ void embedding_runs_kernel(dlk_k_embedding p, const uint32_t *keys, const int32_t *vals,
                                      int64_t n) {
  typedef typename AccT<T>::type A;
  const uint32_t sentinel = (uint32_t)p.table.rows;
  const int64_t D = p.out.cols;
  const int lane = threadIdx.x & 31;
  for (int64_t j = Grp<2>::first(); j < n; j += Grp<2>::step()) {
    const uint32_t key = keys[j];
    if (key == sentinel || (j > 0 && keys[j - 1] == key)) continue;
    int64_t end = j + 1;
    while (end < n && keys[end] == key) end++;
    DLK_KCHECK((int64_t)key < p.table.rows);
    T *dst = (T *)p.table.data + (int64_t)key * p.table.rs;
    for (int64_t d = lane; d < D; d += 32) {
      double s = 0;
      for (int64_t q = j; q < end; q++) {
        DLK_KCHECK(vals[q] >= 0 && vals[q] < p.out.rows);
        s += (double)to_acc(((const T *)p.out.data)[(int64_t)vals[q] * p.out.rs + d * p.out.cs]);
      }
      dst[d * p.table.cs] = from_acc<T>((A)s);
    }
  }
}

// Workspace of backward 2: keys in/out (u32), vals in/out (i32), then cub's temp storage;
// each piece 256-byte aligned.
size_t align256(size_t b) {
  return (b + 255) & ~(size_t)255;
}
int key_bits(int64_t V) {
  int bits = 1;
  while (bits < 32 && ((int64_t)1 << bits) <= V) bits++;  // keys are 0..V (V the sentinel)
  return bits;
}

// ==== layer norm ========================================================================

// Forward. Group mapping per Grp<MODE> (1: thread per row, 2: warp per row). Three
// passes over the row: mean, then the biased variance sum((x - mean)^2)/D (two-pass:
// no cancellation), then y = (x - mean) rstd gamma + beta. No shared memory.
template <typename T, int MODE, bool VEC>
__global__ void layernorm_fwd_kernel(dlk_k_layernorm p) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  const int64_t R = p.x.rows, D = p.x.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *x = (const T *)p.x.data + r * p.x.rs;
    T *y = (T *)p.y.data + r * p.y.rs;
    // The mean's sum in f64: with one thread per row, a sequential f32 sum of D = 32000
    // values near 3 is off by ~1e-5 of the mean, which (x - mean) rstd carries into y past
    // the f32 tolerance (a float32 model of this order fails ~5% of y; f64 none).
    double s = 0;
    for (int64_t c = (int64_t)lane * V; c < D; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.x.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) s += (double)v[k];
    }
    const A mean = (A)(Grp<MODE>::sum(s, (double *)nullptr) / (double)D);
    A q = 0;
    for (int64_t c = (int64_t)lane * V; c < D; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.x.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) q += (v[k] - mean) * (v[k] - mean);
    }
    const A var = Grp<MODE>::sum(q, (A *)nullptr) / (A)D;
    const A rstd = (A)1 / m_sqrt(var + (A)p.eps);
    for (int64_t c = (int64_t)lane * V; c < D; c += (int64_t)size * V) {
      A v[V];
      IO::load(x, c, p.x.cs, v);
#pragma unroll
      for (int k = 0; k < V; k++) {
        A h = (v[k] - mean) * rstd;
        if (p.gamma.data) h *= to_acc(((const T *)p.gamma.data)[(c + k) * p.gamma.s]);
        if (p.beta.data) h += to_acc(((const T *)p.beta.data)[(c + k) * p.beta.s]);
        v[k] = h;
      }
      IO::store(y, c, p.y.cs, v);
    }
    if (lane == 0) {
      if (p.mean.data) ((A *)p.mean.data)[r * p.mean.s] = mean;
      if (p.rstd.data) ((A *)p.rstd.data)[r * p.rstd.s] = rstd;
    }
  }
}

// Backward dx. Same mapping; pass 1: a = sum(g), b = sum(g xhat) with g = dy gamma,
// xhat = (x - mean) rstd; pass 2: dx = rstd (g - a/D - xhat b/D).
template <typename T, int MODE, bool VEC>
__global__ void layernorm_bwd_dx_kernel(dlk_k_layernorm p) {
  typedef typename AccT<T>::type A;
  typedef Row<T, VEC> IO;
  constexpr int V = IO::V;
  const int64_t R = p.x.rows, D = p.x.cols;
  const int lane = Grp<MODE>::lane(), size = Grp<MODE>::size();
  for (int64_t r = Grp<MODE>::first(); r < R; r += Grp<MODE>::step()) {
    const T *x = (const T *)p.x.data + r * p.x.rs;
    const T *dy = (const T *)p.dy.data + r * p.dy.rs;
    T *dx = (T *)p.dx.data + r * p.dx.rs;
    const A mean = ((const A *)p.mean.data)[r * p.mean.s];
    const A rstd = ((const A *)p.rstd.data)[r * p.rstd.s];
    A sa = 0, sb = 0;
    for (int64_t c = (int64_t)lane * V; c < D; c += (int64_t)size * V) {
      A v[V], g[V];
      IO::load(x, c, p.x.cs, v);
      IO::load(dy, c, p.dy.cs, g);
#pragma unroll
      for (int k = 0; k < V; k++) {
        if (p.gamma.data) g[k] *= to_acc(((const T *)p.gamma.data)[(c + k) * p.gamma.s]);
        sa += g[k];
        sb += g[k] * (v[k] - mean) * rstd;
      }
    }
    const A ma = Grp<MODE>::sum(sa, (A *)nullptr) / (A)D;
    const A mb = Grp<MODE>::sum(sb, (A *)nullptr) / (A)D;
    for (int64_t c = (int64_t)lane * V; c < D; c += (int64_t)size * V) {
      A v[V], g[V];
      IO::load(x, c, p.x.cs, v);
      IO::load(dy, c, p.dy.cs, g);
#pragma unroll
      for (int k = 0; k < V; k++) {
        if (p.gamma.data) g[k] *= to_acc(((const T *)p.gamma.data)[(c + k) * p.gamma.s]);
        v[k] = rstd * (g[k] - ma - (v[k] - mean) * rstd * mb);
      }
      IO::store(dx, c, p.dx.cs, v);
    }
  }
}

template <typename T>
__device__ __forceinline__ void ln_col_terms(const dlk_k_layernorm &p, int64_t r, int64_t c,
                                             typename AccT<T>::type &dg,
                                             typename AccT<T>::type &db) {
  typedef typename AccT<T>::type A;
  const A mean = ((const A *)p.mean.data)[r * p.mean.s];
  const A rstd = ((const A *)p.rstd.data)[r * p.rstd.s];
  const A x = to_acc(((const T *)p.x.data)[r * p.x.rs + c * p.x.cs]);
  const A dy = to_acc(((const T *)p.dy.data)[r * p.dy.rs + c * p.dy.cs]);
  dg = dy * (x - mean) * rstd;
  db = dy;
}

// dgamma / dbeta, simple: one thread per column over all rows in order, summed in f64
// (as bias_act_bwd_col_kernel: a sequential f32 sum over ~1000 rows misses the f32
// tolerance on near-zero columns).
template <typename T>
__global__ void layernorm_bwd_col_kernel(dlk_k_layernorm p) {
  typedef typename AccT<T>::type A;
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < p.x.cols;
       c += (int64_t)gridDim.x * blockDim.x) {
    double sg = 0, sb = 0;
    for (int64_t r = 0; r < p.x.rows; r++) {
      A dg, db;
      ln_col_terms<T>(p, r, c, dg, db);
      sg += (double)dg;
      sb += (double)db;
    }
    if (p.dgamma.data) ((T *)p.dgamma.data)[c * p.dgamma.s] = from_acc<T>((A)sg);
    if (p.dbeta.data) ((T *)p.dbeta.data)[c * p.dbeta.s] = from_acc<T>((A)sb);
  }
}

// dgamma / dbeta pass 1 (see ColChunks): partial[0][chunk][col] for dgamma and
// partial[1][chunk][col] for dbeta. Block (32, 8), smem 2 x [8][33].
template <typename T>
__global__ void layernorm_bwd_partial_kernel(dlk_k_layernorm p, int64_t chunk_rows, int64_t chunks,
                                             typename AccT<T>::type *partial) {
  typedef typename AccT<T>::type A;
  __shared__ A sg_sm[CS_TY][CS_TX + 1];
  __shared__ A sb_sm[CS_TY][CS_TX + 1];
  const int64_t C = p.x.cols, R = p.x.rows;
  const int64_t chunk = blockIdx.y;
  const int64_t r_end = min(R, (chunk + 1) * chunk_rows);
  for (int64_t c0 = blockIdx.x * (int64_t)CS_TX; c0 < C; c0 += (int64_t)gridDim.x * CS_TX) {
    const int64_t c = c0 + threadIdx.x;
    A sg = 0, sb = 0;
    if (c < C) {
      for (int64_t r = chunk * chunk_rows + threadIdx.y; r < r_end; r += CS_TY) {
        A dg, db;
        ln_col_terms<T>(p, r, c, dg, db);
        sg += dg;
        sb += db;
      }
    }
    __syncthreads();
    sg_sm[threadIdx.y][threadIdx.x] = sg;
    sb_sm[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      A tg = sg_sm[0][threadIdx.x], tb = sb_sm[0][threadIdx.x];
      for (int k = 1; k < CS_TY; k++) {
        tg += sg_sm[k][threadIdx.x];
        tb += sb_sm[k][threadIdx.x];
      }
      partial[chunk * C + c] = tg;
      partial[(chunks + chunk) * C + c] = tb;
    }
  }
}

// ==== dropout ===========================================================================

// The same function as dlk_mix64 in host/nn.h (SplitMix64 finaliser of seed + golden *
// (counter + 1)); the tests compare the two.
__host__ __device__ __forceinline__ uint64_t mix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
// keep <=> u >= prob with u = k 2^-53, k = mix64 >> 11 (the CPU reference's test). Both
// k 2^-53 and prob 2^53 are exact in double, so u >= prob <=> k >= ceil(prob 2^53) =
// `thresh` (dropout_thresh): one integer compare instead of a u64 -> f64 conversion.
__device__ __forceinline__ bool dropout_keep(uint64_t seed, uint64_t counter, uint64_t thresh) {
  return (mix64(seed, counter) >> 11) >= thresh;
}
uint64_t dropout_thresh(double prob) {
  return (uint64_t)ceil(prob * 9007199254740992.0);
}

// Dropout 1. Thread mapping: grid-stride over the row-major index i of the shape; each
// thread peels i into coordinates (last dim fastest) for both strided offsets.
template <typename T>
__global__ void dropout_kernel(dlk_k_dropout_desc p, uint64_t thresh) {
  typedef typename AccT<T>::type A;
  int64_t total = 1;
  for (int k = 0; k < p.ndim; k++) total *= p.shape[k];
  const A scale = (A)(1.0 / (1.0 - p.prob));
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rem = i, xo = 0, yo = 0;
    for (int k = p.ndim - 1; k >= 0; k--) {
      int64_t c = rem % p.shape[k];
      rem /= p.shape[k];
      xo += c * p.x_strides[k];
      yo += c * p.y_strides[k];
    }
    A v = to_acc(((const T *)p.x)[xo]);
    ((T *)p.y)[yo] =
        from_acc<T>(dropout_keep(p.seed, p.offset + (uint64_t)i, thresh) ? v * scale : (A)0);
  }
}

// Dropout 2: both contiguous. Thread mapping: grid-stride over 16-byte vectors; the
// n % V tail (no full vector) is done by the first threads of block 0.
template <typename T>
__global__ void dropout_vec_kernel(dlk_k_dropout_desc p, int64_t total, uint64_t thresh) {
  typedef typename AccT<T>::type A;
  constexpr int V = Pack<T>::N;
  const A scale = (A)(1.0 / (1.0 - p.prob));
  const int64_t nv = total / V;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nv;
       i += (int64_t)gridDim.x * blockDim.x) {
    A v[V];
    Row<T, true>::load((const T *)p.x, i * V, 1, v);
#pragma unroll
    for (int k = 0; k < V; k++)
      v[k] = dropout_keep(p.seed, p.offset + (uint64_t)(i * V + k), thresh) ? v[k] * scale : (A)0;
    Row<T, true>::store((T *)p.y, i * V, 1, v);
  }
  if (blockIdx.x == 0 && threadIdx.x < total - nv * V) {
    int64_t i = nv * V + threadIdx.x;
    A v = to_acc(((const T *)p.x)[i]);
    ((T *)p.y)[i] =
        from_acc<T>(dropout_keep(p.seed, p.offset + (uint64_t)i, thresh) ? v * scale : (A)0);
  }
}

// Test helper: out[i] = mix64(seed, counter0 + i), grid-stride, one value per thread.
__global__ void mix64_fill_kernel(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = mix64(seed, counter0 + (uint64_t)i);
}

// ==== optimizers ========================================================================
// Each element update is a device function of (param, grad, state) in the accumulation
// type; kernel 1 maps one element per thread (grid-stride), kernel 2 four elements per
// thread through aligned 4-element vector loads, with the n % 4 tail in block 0.

template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

// torch.optim.SGD: g += wd p; buf = first ? g : momentum buf + (1 - dampening) g;
// g = nesterov ? g + momentum buf : buf; p -= lr g.
template <typename A>
struct SgdOp {
  A lr, momentum, dampening, wd;
  int nesterov, first, has_buf;
  __device__ __forceinline__ void operator()(A &p, A g, A &buf, A &) const {
    if (wd != (A)0) g += wd * p;
    if (has_buf) {
      buf = first ? g : momentum * buf + ((A)1 - dampening) * g;
      g = nesterov ? g + momentum * buf : buf;
    }
    p -= lr * g;
  }
};

// torch.optim.Adam / AdamW: AdamW p *= 1 - lr wd, Adam g += wd p; m += (1 - b1)(g - m)
// (lerp); v = b2 v + (1 - b2) g^2; p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
template <typename A>
struct AdamOp {
  A lr, b1, b2, eps, wd, step_size, bc2_sqrt;
  int adamw;
  __device__ __forceinline__ void operator()(A &p, A g, A &m, A &v) const {
    if (wd != (A)0) {
      if (adamw)
        p *= (A)1 - lr * wd;
      else
        g += wd * p;
    }
    m += ((A)1 - b1) * (g - m);
    v = b2 * v + ((A)1 - b2) * g * g;
    const A denom = m_sqrt(v) / bc2_sqrt + eps;
    p -= step_size * (m / denom);
  }
};

// torch.optim.Adagrad: g += wd p; sum += g^2; p -= clr g / (sqrt(sum) + eps).
template <typename A>
struct AdagradOp {
  A clr, wd, eps;
  __device__ __forceinline__ void operator()(A &p, A g, A &sum, A &) const {
    if (wd != (A)0) g += wd * p;
    sum += g * g;
    p -= clr * (g / (m_sqrt(sum) + eps));
  }
};

// s1 / s2: state arrays of A (s2 may be NULL, then a dummy).
template <typename T, typename Op>
__device__ __forceinline__ void optim_one(const Op &op, T *param, const T *grad,
                                          typename AccT<T>::type *s1, typename AccT<T>::type *s2,
                                          int64_t i) {
  typedef typename AccT<T>::type A;
  A p = to_acc(param[i]), a = s1 ? s1[i] : (A)0, b = s2 ? s2[i] : (A)0;
  op(p, to_acc(grad[i]), a, b);
  param[i] = from_acc<T>(p);
  if (s1) s1[i] = a;
  if (s2) s2[i] = b;
}

template <typename T, typename Op>
__global__ void optim_kernel(Op op, int64_t n, T *param, const T *grad, typename AccT<T>::type *s1,
                             typename AccT<T>::type *s2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    optim_one<T, Op>(op, param, grad, s1, s2, i);
}

template <typename T, typename Op>
__global__ void optim_vec_kernel(Op op, int64_t n, T *param, const T *grad,
                                 typename AccT<T>::type *s1, typename AccT<T>::type *s2) {
  typedef typename AccT<T>::type A;
  const int64_t nq = n / 4;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nq;
       i += (int64_t)gridDim.x * blockDim.x) {
    Quad<T> pq = reinterpret_cast<Quad<T> *>(param)[i];
    const Quad<T> gq = reinterpret_cast<const Quad<T> *>(grad)[i];
    Quad<A> aq, bq;
    if (s1) aq = reinterpret_cast<Quad<A> *>(s1)[i];
    if (s2) bq = reinterpret_cast<Quad<A> *>(s2)[i];
#pragma unroll
    for (int k = 0; k < 4; k++) {
      A p = to_acc(pq.v[k]), a = s1 ? aq.v[k] : (A)0, b = s2 ? bq.v[k] : (A)0;
      op(p, to_acc(gq.v[k]), a, b);
      pq.v[k] = from_acc<T>(p);
      aq.v[k] = a;
      bq.v[k] = b;
    }
    reinterpret_cast<Quad<T> *>(param)[i] = pq;
    if (s1) reinterpret_cast<Quad<A> *>(s1)[i] = aq;
    if (s2) reinterpret_cast<Quad<A> *>(s2)[i] = bq;
  }
  if (blockIdx.x == 0 && threadIdx.x < n - nq * 4)
    optim_one<T, Op>(op, param, grad, s1, s2, nq * 4 + threadIdx.x);
}

template <typename T, typename Op>
int optim_launch(const Op &op, int impl, int64_t n, void *param, const void *grad, void *s1,
                 void *s2, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  if (n <= 0) return 0;
  const bool aligned = aligned_ptr(param, 4 * sizeof(T)) && aligned_ptr(grad, 4 * sizeof(T)) &&
                       (!s1 || aligned_ptr(s1, 4 * sizeof(A))) &&
                       (!s2 || aligned_ptr(s2, 4 * sizeof(A)));
  if (impl == 2 && aligned)
    optim_vec_kernel<T, Op><<<grid_for((n + 3) / 4, 256), 256, 0, st>>>(
        op, n, (T *)param, (const T *)grad, (A *)s1, (A *)s2);
  else
    optim_kernel<T, Op>
        <<<grid_for(n, 256), 256, 0, st>>>(op, n, (T *)param, (const T *)grad, (A *)s1, (A *)s2);
  return (int)cudaGetLastError();
}

}  // namespace

// ==== launchers =========================================================================

extern "C" int dlk_k_bias_act_fwd_simple(const dlk_k_bias_act *p, void *stream) {
  if (p->x.rows <= 0 || p->x.cols <= 0) return 0;
  Geom2 g = geom2(p->x.rows, p->x.cols);
  DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                        bias_act_fwd_kernel<T><<<g.grid, g.block, 0, (cudaStream_t)stream>>>(*p));
  return (int)cudaGetLastError();
}

extern "C" const char *dlk_k_bias_act_fwd_vec_why(const dlk_k_bias_act *p) {
  if (p->x.cs != 1 || p->y.cs != 1) return "x or y rows not contiguous (column stride != 1)";
  const int V = vec_width(p->dtype);
  if (p->x.cols % V != 0) return "columns not a multiple of the 16-byte vector width";
  if (!vec_ok_dtype(p->dtype, p->x) || !vec_ok_dtype(p->dtype, p->y))
    return "x or y rows not 16-byte aligned (pointer or row stride)";
  if (p->bias.data && (p->bias.s != 1 || !aligned_ptr(p->bias.data, 16)))
    return "bias not contiguous and 16-byte aligned";
  return nullptr;
}

extern "C" int dlk_k_bias_act_fwd_vec(const dlk_k_bias_act *p, void *stream) {
  if (p->x.rows * p->x.cols <= 0) return 0;
  if (dlk_k_bias_act_fwd_vec_why(p)) return (int)cudaErrorInvalidValue;
  Geom2 g = geom2(p->x.rows, p->x.cols / vec_width(p->dtype));
  DLK_NN_DISPATCH_FLOAT(
      p->dtype, T, bias_act_fwd_vec_kernel<T><<<g.grid, g.block, 0, (cudaStream_t)stream>>>(*p));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_bias_act_bwd_simple(const dlk_k_bias_act *p, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t total = p->x.rows * p->x.cols;
  if (p->x.cols <= 0) return 0;
  if (p->dbias.data) {
    // Also right for R == 0: every column sum is 0.
    DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                          bias_act_bwd_col_kernel<T><<<grid_for(p->x.cols, 128), 128, 0, st>>>(*p));
  } else if (total > 0) {
    Geom2 g = geom2(p->x.rows, p->x.cols);
    DLK_NN_DISPATCH_FLOAT(p->dtype, T, bias_act_bwd_dx_kernel<T><<<g.grid, g.block, 0, st>>>(*p));
  }
  return (int)cudaGetLastError();
}

extern "C" size_t dlk_k_bias_act_bwd_ws(const dlk_k_bias_act *p) {
  if (!p->dbias.data) return 0;
  ColChunks cc = col_chunks(p->x.rows);
  return (size_t)(cc.chunks * p->x.cols) * (p->dtype == DLK_F64 ? 8 : 4);
}

extern "C" int dlk_k_bias_act_bwd_tiled(const dlk_k_bias_act *p, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t R = p->x.rows, C = p->x.cols;
  if (C <= 0) return 0;
  if (!p->dbias.data) {
    if (R <= 0) return 0;
    Geom2 g = geom2(R, C);
    DLK_NN_DISPATCH_FLOAT(p->dtype, T, bias_act_bwd_dx_kernel<T><<<g.grid, g.block, 0, st>>>(*p));
    return (int)cudaGetLastError();
  }
  ColChunks cc = col_chunks(R);
  int64_t col_blocks = (C + CS_TX - 1) / CS_TX;
  dim3 grid((unsigned)(col_blocks < 65535 ? col_blocks : 65535), (unsigned)cc.chunks);
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    bias_act_bwd_partial_kernel<T><<<grid, dim3(CS_TX, CS_TY), 0, st>>>(*p, cc.chunk_rows, (A *)ws);
    col_final_kernel<T><<<grid_for(C, 256), 256, 0, st>>>((const A *)ws, cc.chunks, C, p->dbias);
  });
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_softmax_fwd(const dlk_k_softmax *p, int impl, void *stream) {
  if (p->x.rows <= 0 || p->x.cols <= 0) return 0;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, return softmax_mode<T>(p, impl, true, (cudaStream_t)stream));
  return 0;
}

extern "C" int dlk_k_softmax_bwd(const dlk_k_softmax *p, int impl, void *stream) {
  if (p->y.rows <= 0 || p->y.cols <= 0) return 0;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, return softmax_mode<T>(p, impl, false, (cudaStream_t)stream));
  return 0;
}

extern "C" int dlk_k_check_ids(const dlk_k_vec *ids, int id_dtype, int64_t limit, int use_skip,
                               int64_t skip, int64_t *flag, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (id_dtype == DLK_I64)
    check_ids_kernel<int64_t><<<1, 1024, 0, st>>>(*ids, limit, use_skip, skip, flag);
  else if (id_dtype == DLK_I32)
    check_ids_kernel<int32_t><<<1, 1024, 0, st>>>(*ids, limit, use_skip, skip, flag);
  else
    return (int)cudaErrorInvalidValue;
  return (int)cudaGetLastError();
}

extern "C" size_t dlk_k_xent_ws(const dlk_k_xent *p) {
  // forward: per-row losses (MEAN/SUM); backward: one double (the MEAN count).
  size_t row = (size_t)(p->logits.rows > 0 ? p->logits.rows : 0) * (p->dtype == DLK_F64 ? 8 : 4);
  return row > 8 ? row : 8;
}

extern "C" int dlk_k_xent_fwd(const dlk_k_xent *p, int impl, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (p->logits.rows <= 0 && p->reduction == DLK_REDUCE_NONE) return 0;
  if (p->logits.cols <= 0 && p->logits.rows > 0) return (int)cudaErrorInvalidValue;
  if (p->target_dtype != DLK_I32 && p->target_dtype != DLK_I64) return (int)cudaErrorInvalidValue;
  const bool i64 = p->target_dtype == DLK_I64;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                        return i64 ? xent_mode<T, int64_t>(p, impl, true, ws, st)
                                   : xent_mode<T, int32_t>(p, impl, true, ws, st));
  return 0;
}

extern "C" int dlk_k_xent_bwd(const dlk_k_xent *p, int impl, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (p->logits.rows <= 0 || p->logits.cols <= 0) return 0;
  if (p->target_dtype != DLK_I32 && p->target_dtype != DLK_I64) return (int)cudaErrorInvalidValue;
  const bool i64 = p->target_dtype == DLK_I64;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                        return i64 ? xent_mode<T, int64_t>(p, impl, false, ws, st)
                                   : xent_mode<T, int32_t>(p, impl, false, ws, st));
  return 0;
}

extern "C" const char *dlk_k_embedding_fwd_vec_why(const dlk_k_embedding *p) {
  if (p->table.cs != 1 || p->out.cs != 1)
    return "table or out rows not contiguous (column stride != 1)";
  if (p->out.cols % vec_width(p->dtype) != 0) return "D not a multiple of the 16-byte vector width";
  dlk_k_mat t = p->table;
  if (!vec_ok_dtype(p->dtype, t) || !vec_ok_dtype(p->dtype, p->out))
    return "table or out rows not 16-byte aligned (pointer or row stride)";
  return nullptr;
}

extern "C" int dlk_k_embedding_fwd(const dlk_k_embedding *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t total = p->out.rows * p->out.cols;
  if (total <= 0) return 0;
  if (impl == 2 && dlk_k_embedding_fwd_vec_why(p)) return (int)cudaErrorInvalidValue;
  const bool i64 = p->id_dtype == DLK_I64;
  if (impl == 1) {
    Geom2 g = geom2(p->out.rows, p->out.cols);
    DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
      if (i64)
        embedding_fwd_kernel<T, int64_t><<<g.grid, g.block, 0, st>>>(*p);
      else
        embedding_fwd_kernel<T, int32_t><<<g.grid, g.block, 0, st>>>(*p);
    });
  } else {
    DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
      if (i64)
        embedding_fwd_vec_kernel<T, int64_t><<<grid_for(p->out.rows, 8), 256, 0, st>>>(*p);
      else
        embedding_fwd_vec_kernel<T, int32_t><<<grid_for(p->out.rows, 8), 256, 0, st>>>(*p);
    });
  }
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_embedding_bwd_atomic(const dlk_k_embedding *p, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t tv = p->table.rows * p->table.cols, total = p->out.rows * p->out.cols;
  if (tv <= 0) return 0;
  const bool i64 = p->id_dtype == DLK_I64;
  const Geom2 gz = geom2(p->table.rows, p->table.cols), g = geom2(p->out.rows, p->out.cols);
  if (p->dtype == DLK_F32) {
    zero_mat_kernel<float><<<gz.grid, gz.block, 0, st>>>(p->table);
    if (total > 0) {
      if (i64)
        embedding_bwd_atomic_kernel<float, int64_t><<<g.grid, g.block, 0, st>>>(*p);
      else
        embedding_bwd_atomic_kernel<float, int32_t><<<g.grid, g.block, 0, st>>>(*p);
    }
  } else if (p->dtype == DLK_F64) {
    zero_mat_kernel<double><<<gz.grid, gz.block, 0, st>>>(p->table);
    if (total > 0) {
      if (i64)
        embedding_bwd_atomic_kernel<double, int64_t><<<g.grid, g.block, 0, st>>>(*p);
      else
        embedding_bwd_atomic_kernel<double, int32_t><<<g.grid, g.block, 0, st>>>(*p);
    }
  } else {
    return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}

extern "C" size_t dlk_k_embedding_bwd_ws(const dlk_k_embedding *p, int *err) {
  *err = 0;
  const int64_t n = p->ids.n;
  size_t temp = 0;
  if (n > 0) {
    cudaError_t e = cub::DeviceRadixSort::SortPairs(
        nullptr, temp, (const uint32_t *)nullptr, (uint32_t *)nullptr, (const int32_t *)nullptr,
        (int32_t *)nullptr, (int)n, 0, key_bits(p->table.rows));
    if (e != cudaSuccess) {
      cudaGetLastError();
      *err = (int)e;
      return 0;
    }
  }
  const size_t keys = align256((size_t)(n > 0 ? n : 0) * 4);
  return 4 * keys + align256(temp);
}

extern "C" int dlk_k_embedding_bwd_sorted(const dlk_k_embedding *p, void *ws, size_t ws_bytes,
                                          void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t tv = p->table.rows * p->table.cols, n = p->ids.n;
  if (tv <= 0) return 0;
  const Geom2 gz = geom2(p->table.rows, p->table.cols);
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, zero_mat_kernel<T><<<gz.grid, gz.block, 0, st>>>(p->table));
  if (n <= 0 || p->out.cols <= 0) return (int)cudaGetLastError();
  const size_t keys = align256((size_t)n * 4);
  char *base = (char *)ws;
  uint32_t *k_in = (uint32_t *)base, *k_out = (uint32_t *)(base + keys);
  int32_t *v_in = (int32_t *)(base + 2 * keys), *v_out = (int32_t *)(base + 3 * keys);
  void *temp = base + 4 * keys;
  size_t temp_bytes = ws_bytes > 4 * keys ? ws_bytes - 4 * keys : 0;
  if (p->id_dtype == DLK_I64)
    embedding_keys_kernel<int64_t><<<grid_for(n, 256), 256, 0, st>>>(*p, k_in, v_in);
  else
    embedding_keys_kernel<int32_t><<<grid_for(n, 256), 256, 0, st>>>(*p, k_in, v_in);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return (int)e;
  e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, k_in, k_out, v_in, v_out, (int)n, 0,
                                      key_bits(p->table.rows), st);
  if (e != cudaSuccess) return (int)e;
  DLK_NN_DISPATCH_FLOAT(
      p->dtype, T, embedding_runs_kernel<T><<<grid_for(n, 8), 256, 0, st>>>(*p, k_out, v_out, n));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_layernorm_fwd(const dlk_k_layernorm *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t R = p->x.rows, D = p->x.cols;
  // D == 0 with mean/rstd wanted still runs: the reference writes mean = 0/0 = NaN and
  // rstd = NaN for each row (the kernel's column loops are then empty).
  if (R <= 0 || (D <= 0 && !p->mean.data && !p->rstd.data)) return 0;
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    if (impl == 1) {
      layernorm_fwd_kernel<T, 1, false><<<grid_for(R, 128), 128, 0, st>>>(*p);
    } else if (vec_ok<T>(p->x) && vec_ok<T>(p->y)) {
      layernorm_fwd_kernel<T, 2, true><<<grid_for(R, 8), 256, 0, st>>>(*p);
    } else {
      layernorm_fwd_kernel<T, 2, false><<<grid_for(R, 8), 256, 0, st>>>(*p);
    }
  });
  return (int)cudaGetLastError();
}

extern "C" size_t dlk_k_layernorm_bwd_ws(const dlk_k_layernorm *p, int impl) {
  if (impl != 2 || (!p->dgamma.data && !p->dbeta.data)) return 0;
  ColChunks cc = col_chunks(p->x.rows);
  return (size_t)(2 * cc.chunks * p->x.cols) * (p->dtype == DLK_F64 ? 8 : 4);
}

extern "C" int dlk_k_layernorm_bwd(const dlk_k_layernorm *p, int impl, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t R = p->x.rows, D = p->x.cols;
  if (D <= 0) return 0;
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    if (p->dx.data && R > 0) {
      if (impl == 1)
        layernorm_bwd_dx_kernel<T, 1, false><<<grid_for(R, 128), 128, 0, st>>>(*p);
      else if (vec_ok<T>(p->x) && vec_ok<T>(p->dy) && vec_ok<T>(p->dx))
        layernorm_bwd_dx_kernel<T, 2, true><<<grid_for(R, 8), 256, 0, st>>>(*p);
      else
        layernorm_bwd_dx_kernel<T, 2, false><<<grid_for(R, 8), 256, 0, st>>>(*p);
    }
    if (p->dgamma.data || p->dbeta.data) {
      if (impl == 1) {
        layernorm_bwd_col_kernel<T><<<grid_for(D, 128), 128, 0, st>>>(*p);
      } else {
        ColChunks cc = col_chunks(R);
        int64_t col_blocks = (D + CS_TX - 1) / CS_TX;
        dim3 grid((unsigned)(col_blocks < 65535 ? col_blocks : 65535), (unsigned)cc.chunks);
        A *partial = (A *)ws;
        layernorm_bwd_partial_kernel<T>
            <<<grid, dim3(CS_TX, CS_TY), 0, st>>>(*p, cc.chunk_rows, cc.chunks, partial);
        if (p->dgamma.data)
          col_final_kernel<T><<<grid_for(D, 256), 256, 0, st>>>(partial, cc.chunks, D, p->dgamma);
        if (p->dbeta.data)
          col_final_kernel<T>
              <<<grid_for(D, 256), 256, 0, st>>>(partial + cc.chunks * D, cc.chunks, D, p->dbeta);
      }
    }
  });
  return (int)cudaGetLastError();
}

extern "C" const char *dlk_k_dropout_vec_why(const dlk_k_dropout_desc *p) {
  int64_t expect = 1;
  for (int k = p->ndim - 1; k >= 0; k--) {
    if (p->shape[k] != 1 && (p->x_strides[k] != expect || p->y_strides[k] != expect))
      return "x or y not contiguous";
    expect *= p->shape[k];
  }
  if (!aligned_ptr(p->x, 16) || !aligned_ptr(p->y, 16)) return "x or y not 16-byte aligned";
  return nullptr;
}

extern "C" int dlk_k_dropout(const dlk_k_dropout_desc *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  int64_t total = 1;
  for (int k = 0; k < p->ndim; k++) total *= p->shape[k];
  if (total <= 0) return 0;
  if (p->ndim < 0 || p->ndim > 8 || !(p->prob >= 0.0 && p->prob < 1.0))
    return (int)cudaErrorInvalidValue;
  const uint64_t thresh = dropout_thresh(p->prob);
  if (impl == 2) {
    if (dlk_k_dropout_vec_why(p)) return (int)cudaErrorInvalidValue;
    const int V = vec_width(p->dtype);
    DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                          dropout_vec_kernel<T>
                          <<<grid_for((total + V - 1) / V, 256), 256, 0, st>>>(*p, total, thresh));
  } else {
    DLK_NN_DISPATCH_FLOAT(p->dtype, T,
                          dropout_kernel<T><<<grid_for(total, 256), 256, 0, st>>>(*p, thresh));
  }
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_mix64_fill(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out,
                                void *stream) {
  if (n <= 0) return 0;
  mix64_fill_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>(seed, counter0, n, out);
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_sgd(const dlk_k_sgd_desc *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const bool has_buf = p->momentum != 0.0;
  if (has_buf && !p->buf) return (int)cudaErrorInvalidValue;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    SgdOp<A> op{(A)p->lr,    (A)p->momentum, (A)p->dampening, (A)p->weight_decay,
                p->nesterov, p->first_step,  has_buf};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, has_buf ? p->buf : nullptr, nullptr,
                           st);
  });
  return 0;
}

extern "C" int dlk_k_adam(const dlk_k_adam_desc *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    AdamOp<A> op{(A)p->lr,
                 (A)p->beta1,
                 (A)p->beta2,
                 (A)p->eps,
                 (A)p->weight_decay,
                 (A)p->step_size,
                 (A)p->bias_correction2_sqrt,
                 p->adamw};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, p->m, p->v, st);
  });
  return 0;
}

extern "C" int dlk_k_adagrad(const dlk_k_adagrad_desc *p, int impl, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  DLK_NN_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    AdagradOp<A> op{(A)p->clr, (A)p->weight_decay, (A)p->eps};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, p->sum, nullptr, st);
  });
  return 0;
}
