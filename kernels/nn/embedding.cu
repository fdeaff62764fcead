// nn family, embedding lookup (forward: 1 element per thread, 2 warp per row with
// vectors) and its gradient (1 atomic scatter, 2 sorted and deterministic). Launchers in
// kernels/nn/nn.h, right under their kernels; rows in host/nn/nn_cuda.c (which runs
// dlk_k_check_ids first).
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cmath>
#include <cstdio>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

template <typename I>
__device__ __forceinline__ int64_t load_id(const dlk_k_vec &v, int64_t i) {
  return (int64_t)((const I *)v.data)[i * v.s];
}

// ---- embedding =========================================================================

// Forward 1. Thread mapping: geom2 over out [N, D] (the id is read once per row); an id
// outside [0, V) gives 0 (never a read outside the table).
template <typename T, typename I>
__global__ void embedding_fwd_kernel(dlk_k_embedding_desc p) {
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
__global__ void embedding_fwd_vec_kernel(dlk_k_embedding_desc p) {
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


}  // namespace

extern "C" int dlk_k_embedding_fwd_supports(const dlk_k_embedding_desc *p, int impl, char *why,
                                            size_t n) {
  if (impl == 1) return 1;
  if (impl != 2) {
    snprintf(why, n, "no embedding_fwd kernel %d", impl);
    return 0;
  }
  const char *w = nullptr;
  if (p->table.cs != 1 || p->out.cs != 1)
    w = "table or out rows not contiguous (column stride != 1)";
  else if (p->out.cols % vec_width(p->dtype) != 0)
    w = "D not a multiple of the 16-byte vector width";
  else if (!vec_ok_dtype(p->dtype, p->table) || !vec_ok_dtype(p->dtype, p->out))
    w = "table or out rows not 16-byte aligned (pointer or row stride)";
  if (w) snprintf(why, n, "%s", w);
  return w == nullptr;
}

extern "C" int dlk_k_embedding_fwd(const dlk_k_embedding_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  cudaStream_t st = (cudaStream_t)stream;
  const int64_t total = p->out.rows * p->out.cols;
  if (total <= 0) return 0;
  char why[96];
  if ((impl != 1 && impl != 2) || !dlk_k_embedding_fwd_supports(p, impl, why, sizeof why))
    return (int)cudaErrorInvalidValue;
  const bool i64 = p->id_dtype == DLK_I64;
  if (impl == 1) {
    Geom2 g = geom2(p->out.rows, p->out.cols);
    DLK_DISPATCH_FLOAT(p->dtype, T, {
      if (i64)
        DLK_LAUNCH(embedding_fwd_kernel<T, int64_t>, g.grid, g.block, 0, st)(*p);
      else
        DLK_LAUNCH(embedding_fwd_kernel<T, int32_t>, g.grid, g.block, 0, st)(*p);
    });
  } else {
    DLK_DISPATCH_FLOAT(p->dtype, T, {
      if (i64)
        DLK_LAUNCH(embedding_fwd_vec_kernel<T, int64_t>, grid_for(p->out.rows, 8), 256, 0, st)(*p);
      else
        DLK_LAUNCH(embedding_fwd_vec_kernel<T, int32_t>, grid_for(p->out.rows, 8), 256, 0, st)(*p);
    });
  }
  return (int)cudaGetLastError();
}

namespace {

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
__global__ void embedding_bwd_atomic_kernel(dlk_k_embedding_desc p) {
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
__global__ void embedding_keys_kernel(dlk_k_embedding_desc p, uint32_t *keys, int32_t *vals) {
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
__global__ void embedding_runs_kernel(dlk_k_embedding_desc p, const uint32_t *keys, const int32_t *vals,
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

// Bytes cub needs to sort n (key, value) pairs of key_bits(V) bits, or the error that kept
// cub from sizing the sort.
cudaError_t sort_temp(const dlk_k_embedding_desc *p, size_t *temp) {
  *temp = 0;
  if (p->ids.n <= 0) return cudaSuccess;
  cudaError_t e = cub::DeviceRadixSort::SortPairs(
      nullptr, *temp, (const uint32_t *)nullptr, (uint32_t *)nullptr, (const int32_t *)nullptr,
      (int32_t *)nullptr, (int)p->ids.n, 0, key_bits(p->table.rows));
  if (e != cudaSuccess) cudaGetLastError();
  return e;
}

int embedding_bwd_atomic(const dlk_k_embedding_desc *p, cudaStream_t st) {
  const int64_t tv = p->table.rows * p->table.cols, total = p->out.rows * p->out.cols;
  if (tv <= 0) return 0;
  const bool i64 = p->id_dtype == DLK_I64;
  const Geom2 gz = geom2(p->table.rows, p->table.cols), g = geom2(p->out.rows, p->out.cols);
  if (p->dtype == DLK_F32) {
    DLK_LAUNCH(zero_mat_kernel<float>, gz.grid, gz.block, 0, st)(p->table);
    if (total > 0) {
      if (i64)
        DLK_LAUNCH(embedding_bwd_atomic_kernel<float, int64_t>, g.grid, g.block, 0, st)(*p);
      else
        DLK_LAUNCH(embedding_bwd_atomic_kernel<float, int32_t>, g.grid, g.block, 0, st)(*p);
    }
  } else if (p->dtype == DLK_F64) {
    DLK_LAUNCH(zero_mat_kernel<double>, gz.grid, gz.block, 0, st)(p->table);
    if (total > 0) {
      if (i64)
        DLK_LAUNCH(embedding_bwd_atomic_kernel<double, int64_t>, g.grid, g.block, 0, st)(*p);
      else
        DLK_LAUNCH(embedding_bwd_atomic_kernel<double, int32_t>, g.grid, g.block, 0, st)(*p);
    }
  } else {
    return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}

int embedding_bwd_sorted(const dlk_k_embedding_desc *p, void *ws, cudaStream_t st) {
  const int64_t tv = p->table.rows * p->table.cols, n = p->ids.n;
  if (tv <= 0) return 0;
  const Geom2 gz = geom2(p->table.rows, p->table.cols);
  DLK_DISPATCH_FLOAT(p->dtype, T, DLK_LAUNCH(zero_mat_kernel<T>, gz.grid, gz.block, 0, st)(p->table));
  if (n <= 0 || p->out.cols <= 0) return (int)cudaGetLastError();
  size_t temp_bytes;
  cudaError_t e = sort_temp(p, &temp_bytes);
  if (e != cudaSuccess) return (int)e;
  const size_t keys = align256((size_t)n * 4);
  char *base = (char *)ws;
  uint32_t *k_in = (uint32_t *)base, *k_out = (uint32_t *)(base + keys);
  int32_t *v_in = (int32_t *)(base + 2 * keys), *v_out = (int32_t *)(base + 3 * keys);
  void *temp = base + 4 * keys;
  temp_bytes = align256(temp_bytes);
  if (p->id_dtype == DLK_I64)
    DLK_LAUNCH(embedding_keys_kernel<int64_t>, grid_for(n, 256), 256, 0, st)(*p, k_in, v_in);
  else
    DLK_LAUNCH(embedding_keys_kernel<int32_t>, grid_for(n, 256), 256, 0, st)(*p, k_in, v_in);
  e = cudaGetLastError();
  if (e != cudaSuccess) return (int)e;
  e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, k_in, k_out, v_in, v_out, (int)n, 0,
                                      key_bits(p->table.rows), st);
  if (e != cudaSuccess) return (int)e;
  DLK_DISPATCH_FLOAT(p->dtype, T,
                     DLK_LAUNCH(embedding_runs_kernel<T>, grid_for(n, 8), 256, 0, st)(*p, k_out, v_out, n));
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_embedding_bwd_supports(const dlk_k_embedding_desc *p, int impl, char *why,
                                            size_t n) {
  if (impl == 1) return 1;
  if (impl != 2) {
    snprintf(why, n, "no embedding_bwd kernel %d", impl);
    return 0;
  }
  size_t temp;
  cudaError_t e = sort_temp(p, &temp);
  if (e != cudaSuccess) {
    snprintf(why, n, "sizing the radix sort failed (%s)", cudaGetErrorString(e));
    return 0;
  }
  return 1;
}

// impl 2: keys in/out (u32), vals in/out (i32), then cub's temp storage, each piece
// 256-byte aligned.
extern "C" size_t dlk_k_embedding_bwd_ws(const dlk_k_embedding_desc *p, int impl) {
  if (impl != 2) return 0;
  size_t temp;
  if (sort_temp(p, &temp) != cudaSuccess) return 0;
  const int64_t n = p->ids.n;
  const size_t keys = align256((size_t)(n > 0 ? n : 0) * 4);
  return 4 * keys + align256(temp);
}

extern "C" int dlk_k_embedding_bwd(const dlk_k_embedding_desc *p, int impl, void *ws, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (impl == 1) return embedding_bwd_atomic(p, st);
  if (impl == 2) return embedding_bwd_sorted(p, ws, st);
  return (int)cudaErrorInvalidValue;
}
