// nn family, elementwise ops: bias + activation (forward, backward) and dropout. Launchers
// in kernels/nn/nn.h, each right under its kernels; rows in host/nn/nn_cuda.c.
#include <climits>
#include <cmath>
#include <cstdio>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

// ---- bias + activation =================================================================

// Forward, simple. Thread mapping: geom2 over [R, C] (thread (ty, tx) -> row, column,
// both grid-stride); no shared memory.
template <typename T>
__global__ void bias_act_fwd_kernel(dlk_k_bias_act_desc p) {
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
__global__ void bias_act_fwd_vec_kernel(dlk_k_bias_act_desc p) {
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


}  // namespace

extern "C" int dlk_k_bias_act_fwd_supports(const dlk_k_bias_act_desc *p, int impl, char *why,
                                           size_t n) {
  if (impl == 1) return 1;
  if (impl != 2) {
    snprintf(why, n, "no bias_act_fwd kernel %d", impl);
    return 0;
  }
  const char *w = nullptr;
  if (p->x.cs != 1 || p->y.cs != 1)
    w = "x or y rows not contiguous (column stride != 1)";
  else if (p->x.cols % vec_width(p->dtype) != 0)
    w = "columns not a multiple of the 16-byte vector width";
  else if (!vec_ok_dtype(p->dtype, p->x) || !vec_ok_dtype(p->dtype, p->y))
    w = "x or y rows not 16-byte aligned (pointer or row stride)";
  else if (p->bias.data && (p->bias.s != 1 || !aligned_ptr(p->bias.data, 16)))
    w = "bias not contiguous and 16-byte aligned";
  if (w) snprintf(why, n, "%s", w);
  return w == nullptr;
}

extern "C" int dlk_k_bias_act_fwd(const dlk_k_bias_act_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  if (p->x.rows <= 0 || p->x.cols <= 0) return 0;
  if (impl == 1) {
    Geom2 g = geom2(p->x.rows, p->x.cols);
    DLK_DISPATCH_FLOAT(p->dtype, T, DLK_LAUNCH(bias_act_fwd_kernel<T>, g.grid, g.block, 0, stream)(*p));
  } else {
    char why[128];
    if (impl != 2 || !dlk_k_bias_act_fwd_supports(p, 2, why, sizeof why)) return (int)cudaErrorInvalidValue;
    Geom2 g = geom2(p->x.rows, p->x.cols / vec_width(p->dtype));
    DLK_DISPATCH_FLOAT(p->dtype, T, DLK_LAUNCH(bias_act_fwd_vec_kernel<T>, g.grid, g.block, 0, stream)(*p));
  }
  return (int)cudaGetLastError();
}

namespace {

template <typename T>
__device__ __forceinline__ typename AccT<T>::type bias_act_grad(const dlk_k_bias_act_desc &p, int64_t r,
                                                                int64_t c) {
  typedef typename AccT<T>::type A;
  A v = to_acc(((const T *)p.x.data)[r * p.x.rs + c * p.x.cs]);
  if (p.bias.data) v += to_acc(((const T *)p.bias.data)[c * p.bias.s]);
  return to_acc(((const T *)p.dy.data)[r * p.dy.rs + c * p.dy.cs]) * act_grad(v, p.act);
}

// Backward dx only. Thread mapping: geom2 over [R, C]; no shared memory.
template <typename T>
__global__ void bias_act_bwd_dx_kernel(dlk_k_bias_act_desc p) {
  for (int64_t r = row0(); r < p.x.rows; r += row_step())
    for (int64_t c = col0(); c < p.x.cols; c += col_step())
      ((T *)p.dx.data)[r * p.dx.rs + c * p.dx.cs] = from_acc<T>(bias_act_grad<T>(p, r, c));
}

// Backward, simple dbias. Thread mapping: one thread per column (grid-stride), looping
// over all rows in order; writes dx on the way when wanted. The column sum is kept in
// f64: a sequential f32 sum over a few thousand rows drifts past the f32 tolerance
// (1e-5 + 1e-5 |ref|) on columns whose sum is near 0.
template <typename T>
__global__ void bias_act_bwd_col_kernel(dlk_k_bias_act_desc p) {
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

template <typename T>
__global__ void bias_act_bwd_partial_kernel(dlk_k_bias_act_desc p, int64_t chunk_rows,
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

}  // namespace

// impl 2 with dbias: the per-chunk column partials, A[chunks][C].
extern "C" size_t dlk_k_bias_act_bwd_ws(const dlk_k_bias_act_desc *p, int impl) {
  if (impl != 2 || !p->dbias.data) return 0;
  ColChunks cc = col_chunks(p->x.rows);
  return (size_t)(cc.chunks * p->x.cols) * (p->dtype == DLK_F64 ? 8 : 4);
}

extern "C" int dlk_k_bias_act_bwd(const dlk_k_bias_act_desc *p, int impl, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t R = p->x.rows, C = p->x.cols;
  if (C <= 0) return 0;
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  if (!p->dbias.data) {
    if (R <= 0) return 0;
    Geom2 g = geom2(R, C);
    DLK_DISPATCH_FLOAT(p->dtype, T, DLK_LAUNCH(bias_act_bwd_dx_kernel<T>, g.grid, g.block, 0, st)(*p));
    return (int)cudaGetLastError();
  }
  if (impl == 1) {
    // Also right for R == 0: every column sum is 0.
    DLK_DISPATCH_FLOAT(p->dtype, T,
                       DLK_LAUNCH(bias_act_bwd_col_kernel<T>, grid_for(C, 128), 128, 0, st)(*p));
    return (int)cudaGetLastError();
  }
  ColChunks cc = col_chunks(R);
  int64_t col_blocks = (C + CS_TX - 1) / CS_TX;
  dim3 grid((unsigned)(col_blocks < 65535 ? col_blocks : 65535), (unsigned)cc.chunks);
  DLK_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    DLK_LAUNCH(bias_act_bwd_partial_kernel<T>, grid, dim3(CS_TX, CS_TY), 0, st)(*p, cc.chunk_rows, (A *)ws);
    DLK_LAUNCH(col_final_kernel<T>, grid_for(C, 256), 256, 0, st)((const A *)ws, cc.chunks, C, p->dbias);
  });
  return (int)cudaGetLastError();
}

namespace {

// ---- dropout ===========================================================================

// The same function as dlk_mix64 in host/nn/nn.h (SplitMix64 finaliser of seed + golden *
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

}  // namespace

extern "C" int dlk_k_dropout_supports(const dlk_k_dropout_desc *p, int impl, char *why, size_t n) {
  if (impl == 1) return 1;
  if (impl != 2) {
    snprintf(why, n, "no dropout kernel %d", impl);
    return 0;
  }
  const char *w = nullptr;
  int64_t expect = 1;
  for (int k = p->ndim - 1; k >= 0 && !w; k--) {
    if (p->shape[k] != 1 && (p->x_strides[k] != expect || p->y_strides[k] != expect))
      w = "x or y not contiguous";
    expect *= p->shape[k];
  }
  if (!w && (!aligned_ptr(p->x, 16) || !aligned_ptr(p->y, 16))) w = "x or y not 16-byte aligned";
  if (w) snprintf(why, n, "%s", w);
  return w == nullptr;
}

extern "C" int dlk_k_dropout(const dlk_k_dropout_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  cudaStream_t st = (cudaStream_t)stream;
  int64_t total = 1;
  for (int k = 0; k < p->ndim; k++) total *= p->shape[k];
  if (total <= 0) return 0;
  if (p->ndim < 0 || p->ndim > 8 || !(p->prob >= 0.0 && p->prob < 1.0) || (impl != 1 && impl != 2))
    return (int)cudaErrorInvalidValue;
  const uint64_t thresh = dropout_thresh(p->prob);
  if (impl == 2) {
    char why[64];
    if (!dlk_k_dropout_supports(p, 2, why, sizeof why)) return (int)cudaErrorInvalidValue;
    const int V = vec_width(p->dtype);
    DLK_DISPATCH_FLOAT(p->dtype, T,
                       DLK_LAUNCH(dropout_vec_kernel<T>, grid_for((total + V - 1) / V, 256), 256, 0, st)(*p, total, thresh));
  } else {
    DLK_DISPATCH_FLOAT(p->dtype, T,
                       DLK_LAUNCH(dropout_kernel<T>, grid_for(total, 256), 256, 0, st)(*p, thresh));
  }
  return (int)cudaGetLastError();
}

namespace {

// Test helper: out[i] = mix64(seed, counter0 + i), grid-stride, one value per thread.
__global__ void mix64_fill_kernel(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = mix64(seed, counter0 + (uint64_t)i);
}

}  // namespace

extern "C" int dlk_k_mix64_fill(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out,
                                void *stream) {
  if (n <= 0) return 0;
  DLK_LAUNCH(mix64_fill_kernel, grid_for(n, 256), 256, 0, stream)(seed, counter0, n, out);
  return (int)cudaGetLastError();
}
