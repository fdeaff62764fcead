// glove family, glove_topk: per-column top-k of a score matrix. impl 1 `lanes` (k <= 32,
// lists in registers), impl 2 `sort` (any k, stable radix sort per column). Launcher in
// kernels/glove/glove.h, right under the kernels; rows in host/glove/glove_cuda.c.
#include <cuda/atomic>
#include <cuda/std/functional>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include "glove.cuh"

using namespace dlk_glove;

namespace {


// The order of the CPU reference: higher score first, the lower row on a tie; an empty
// slot (row -1) is worse than any candidate (a -inf score included). NaN never enters.
__device__ __forceinline__ bool better(double v, int r, double bv, int br) {
  return br < 0 || v > bv || (v == bv && r < br);
}

__device__ __forceinline__ bool excluded(const int *ex, int nex, int64_t q, int r) {
  for (int e = 0; e < nex; e++)
    if (ex[q * nex + e] == r) return true;
  return false;
}

// Insert (v, r) into the sorted list (best first) of K entries, if it beats the last.
template <int K> __device__ __forceinline__ void list_insert(double *val, int *idx, double v, int r) {
  val[K - 1] = v;
  idx[K - 1] = r;
#pragma unroll
  for (int i = K - 1; i > 0; i--) {
    if (better(val[i], idx[i], val[i - 1], idx[i - 1])) {
      const double tv = val[i];
      const int ti = idx[i];
      val[i] = val[i - 1], idx[i] = idx[i - 1];
      val[i - 1] = tv, idx[i - 1] = ti;
    }
  }
}

template <typename S> __device__ __forceinline__ double load_score(const S *p) {
  return (double)__ldg(p);
}

// Variant 1 `lanes`, pass 1.
// Thread mapping: block (x, y) of 128 threads = 4 warps; lane l of every warp owns column
// q = 32 x + l (coalesced row reads); warp w of block row y walks the rows
// r = 4 y + w, + 4 gridDim.y, ... keeping a sorted list of the K best (K = k rounded up to
// a power of two) in registers; at the end it writes its list as partial (4 y + w) of
// column q. Shared memory: none. The exclusion list is consulted only for a candidate
// that would enter the list.
template <typename S, int K>
__global__ void __launch_bounds__(128) topk_lanes_kernel(const S *scores, int64_t rows,
                                                         int64_t cols, const int *ex, int nex,
                                                         double *pval, int *pidx) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t q = (int64_t)blockIdx.x * 32 + lane;
  const int64_t walker = (int64_t)blockIdx.y * 4 + w, nwalk = (int64_t)gridDim.y * 4;
  if (q >= cols) return;
  double val[K];
  int idx[K];
#pragma unroll
  for (int i = 0; i < K; i++) val[i] = -INFINITY, idx[i] = -1;
  for (int64_t r = walker; r < rows; r += nwalk) {
    const double v = load_score(scores + r * cols + q);
    if (v != v) continue;
    if (!better(v, (int)r, val[K - 1], idx[K - 1])) continue;
    if (excluded(ex, nex, q, (int)r)) continue;
    list_insert<K>(val, idx, v, (int)r);
  }
  const int64_t base = (walker * cols + q) * K;
#pragma unroll
  for (int i = 0; i < K; i++) pval[base + i] = val[i], pidx[base + i] = idx[i];
}

// Pass 2: one thread per column merges the nparts sorted partial lists (each list is
// sorted, so a list is left at its first entry that cannot enter) and writes the first
// k entries.
template <int K>
__global__ void topk_merge_kernel(const double *pval, const int *pidx, int64_t nparts,
                                  int64_t cols, int k, double *oval, int *oidx) {
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < cols;
       q += (int64_t)gridDim.x * blockDim.x) {
    double val[K];
    int idx[K];
#pragma unroll
    for (int i = 0; i < K; i++) val[i] = -INFINITY, idx[i] = -1;
    for (int64_t p = 0; p < nparts; p++) {
      const int64_t base = (p * cols + q) * K;
      for (int i = 0; i < K; i++) {
        const int r = pidx[base + i];
        const double v = pval[base + i];
        if (r < 0 || !better(v, r, val[K - 1], idx[K - 1])) break;
        list_insert<K>(val, idx, v, r);
      }
    }
#pragma unroll
    for (int i = 0; i < K; i++)
      if (i < k) oval[q * k + i] = val[i], oidx[q * k + i] = idx[i];
  }
}

struct TopkLanesLayout {
  int *ex;
  double *pval, *oval;
  int *pidx, *oidx;
};

int topk_K(int k) {
  int K = 1;
  while (K < k) K <<= 1;
  return K;
}

// Row slices: enough blocks to fill the device, at most 2048 / K slices of 4 walkers
// (bounds the merge), at least 256 rows per walker where possible.
int64_t topk_slices(int64_t rows, int K) {
  int64_t s = rows / 1024;
  const int64_t cap = 2048 / K;
  if (s > cap) s = cap;
  return s < 1 ? 1 : s;
}

TopkLanesLayout topk_lanes_layout(Carve &c, const dlk_k_glove_topk_desc *t) {
  TopkLanesLayout l;
  const int K = topk_K(t->k);
  const int64_t parts = topk_slices(t->rows, K) * 4;
  const size_t cols = (size_t)(t->cols > 0 ? t->cols : 1);
  l.ex = c.take<int>(cols * (size_t)(t->n_exclude > 0 ? t->n_exclude : 1));
  l.pval = c.take<double>((size_t)parts * cols * K);
  l.pidx = c.take<int>((size_t)parts * cols * K);
  l.oval = c.take<double>(cols * (size_t)t->k);
  l.oidx = c.take<int>(cols * (size_t)t->k);
  return l;
}

template <typename S, int K>
int topk_lanes_launch(const dlk_k_glove_topk_desc *t, const TopkLanesLayout &l, cudaStream_t st) {
  const int64_t slices = topk_slices(t->rows, K);
  dim3 grid((unsigned)((t->cols + 31) / 32), (unsigned)slices);
  DLK_LAUNCH(topk_lanes_kernel<S, K>, grid, 128, 0, st)(static_cast<const S *>(t->scores), t->rows,
                                                t->cols, l.ex, t->n_exclude, l.pval, l.pidx);
  GK_TRY(cudaGetLastError());
  DLK_LAUNCH(topk_merge_kernel<K>, grid_for(t->cols, 128), 128, 0, st)(l.pval, l.pidx, slices * 4,
                                                               t->cols, t->k, l.oval, l.oidx);
  return (int)cudaGetLastError();
}

template <typename S>
int topk_lanes_dispatch(const dlk_k_glove_topk_desc *t, const TopkLanesLayout &l, cudaStream_t st) {
  switch (topk_K(t->k)) {
    case 1: return topk_lanes_launch<S, 1>(t, l, st);
    case 2: return topk_lanes_launch<S, 2>(t, l, st);
    case 4: return topk_lanes_launch<S, 4>(t, l, st);
    case 8: return topk_lanes_launch<S, 8>(t, l, st);
    case 16: return topk_lanes_launch<S, 16>(t, l, st);
    case 32: return topk_lanes_launch<S, 32>(t, l, st);
    default: return (int)cudaErrorInvalidValue;
  }
}

// Results back: (cols * k) ids and values.
int topk_copy_out(const dlk_k_glove_topk_desc *t, const int *oidx, const double *oval,
                  int32_t *idx_host, double *val_host, cudaStream_t st) {
  const size_t n = (size_t)t->cols * (size_t)t->k;
  GK_TRY(cudaMemcpyAsync(idx_host, oidx, n * sizeof(int), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaMemcpyAsync(val_host, oval, n * sizeof(double), cudaMemcpyDeviceToHost, st));
  return (int)cudaStreamSynchronize(st);
}

int topk_upload_exclude(const dlk_k_glove_topk_desc *t, int *ex, cudaStream_t st) {
  if (t->n_exclude <= 0) return 0;
  const size_t n = (size_t)t->cols * (size_t)t->n_exclude;
  return (int)cudaMemcpyAsync(ex, t->exclude, n * sizeof(int), cudaMemcpyHostToDevice, st);
}

// ---- variant 2 `sort` ----
// Keys: an order-preserving map of the f64 score to u64 (sign bit flipped for
// positives, every bit for negatives; -0 counts as +0 like the reference's compare),
// NaN and excluded rows 0 (below every score, -inf included). Values: the index
// i = q * rows + r of the transposed matrix. A stable descending sort orders each score
// class by i, i.e. lower row first on ties; a second stable sort by column then groups
// the columns without changing that order.

__device__ __forceinline__ unsigned long long score_key(double v) {
  if (v != v) return 0ull;
  if (v == 0.0) v = 0.0;  // -0 == +0
  const unsigned long long b = (unsigned long long)__double_as_longlong(v);
  return (b >> 63) ? ~b : (b | (1ull << 63));
}

__device__ __forceinline__ double key_score(unsigned long long k) {
  const unsigned long long b = (k >> 63) ? (k & ~(1ull << 63)) : ~k;
  return __longlong_as_double((long long)b);
}

// Thread mapping: one thread per score in row-major order (coalesced reads), written
// to its transposed position q * rows + r.
template <typename S>
__global__ void topk_keys_kernel(const S *scores, int64_t rows, int64_t cols,
                                 unsigned long long *keys, int *vals) {
  const int64_t N = rows * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, q = i - r * cols;
    const int64_t pos = q * rows + r;
    keys[pos] = score_key(load_score(scores + i));
    vals[pos] = (int)pos;
  }
}

// Excluded rows get key 0: one thread per (column, exclusion) entry (grid-stride); -1
// and ids outside [0, rows) change nothing. Shared memory: none.
__global__ void topk_exclude_kernel(const int *ex, int nex, int64_t rows, int64_t cols,
                                    unsigned long long *keys) {
  const int64_t N = cols * nex;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = i / nex;
    const int r = ex[i];
    if (r >= 0 && r < rows) keys[q * rows + r] = 0ull;
  }
}

// Second-sort keys: the column of each first-sorted entry and its position. One thread
// per entry (grid-stride). Shared memory: none.
__global__ void topk_segkeys_kernel(const int *svals, int64_t N, int64_t rows, unsigned *seg,
                                    int *pos) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < N;
       p += (int64_t)gridDim.x * blockDim.x) {
    seg[p] = (unsigned)(svals[p] / rows);
    pos[p] = (int)p;
  }
}

// The first k entries of each column: one thread per output slot (q, j < k), grid-stride;
// key 0 (NaN, excluded) and j >= rows give the empty slot (-1, -inf). Shared memory: none.
__global__ void topk_sort_out_kernel(const unsigned long long *skeys, const int *svals,
                                     const int *spos, int64_t rows, int64_t cols, int k,
                                     double *oval, int *oidx) {
  const int64_t N = cols * k;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = i / k, j = i - q * k;
    double v = -INFINITY;
    int r = -1;
    if (j < rows) {
      const int64_t p = spos ? spos[q * rows + j] : j;
      const unsigned long long key = skeys[p];
      if (key != 0ull) {
        v = key_score(key);
        r = (int)(svals[p] - (svals[p] / rows) * rows);
      }
    }
    oval[i] = v;
    oidx[i] = r;
  }
}

struct TopkSortLayout {
  unsigned long long *kA, *kB;
  int *vA, *vB;
  unsigned *sA, *sB;
  int *pA, *pB;
  int *ex;
  double *oval;
  int *oidx;
  void *temp;
  size_t temp_bytes;
  bool ok;
};

TopkSortLayout topk_sort_layout(Carve &c, const dlk_k_glove_topk_desc *t) {
  TopkSortLayout l;
  const int64_t N = t->rows * t->cols;
  const size_t nn = (size_t)(N > 0 ? N : 1), cols = (size_t)(t->cols > 0 ? t->cols : 1);
  const bool two = t->cols > 1;
  l.kA = c.take<unsigned long long>(nn);
  l.kB = c.take<unsigned long long>(nn);
  l.vA = c.take<int>(nn);
  l.vB = c.take<int>(nn);
  l.sA = c.take<unsigned>(two ? nn : 1);
  l.sB = c.take<unsigned>(two ? nn : 1);
  l.pA = c.take<int>(two ? nn : 1);
  l.pB = c.take<int>(two ? nn : 1);
  l.ex = c.take<int>(cols * (size_t)(t->n_exclude > 0 ? t->n_exclude : 1));
  l.oval = c.take<double>(cols * (size_t)t->k);
  l.oidx = c.take<int>(cols * (size_t)t->k);
  size_t t1 = 0, t2 = 0;
  l.ok = true;
  {
    cub::DoubleBuffer<unsigned long long> k(nullptr, nullptr);
    cub::DoubleBuffer<int> v(nullptr, nullptr);
    if (cub::DeviceRadixSort::SortPairsDescending(nullptr, t1, k, v, (int64_t)nn) != cudaSuccess)
      l.ok = false;
  }
  if (two) {
    cub::DoubleBuffer<unsigned> k(nullptr, nullptr);
    cub::DoubleBuffer<int> v(nullptr, nullptr);
    if (cub::DeviceRadixSort::SortPairs(nullptr, t2, k, v, (int64_t)nn, 0,
                                        bit_length((uint64_t)t->cols)) != cudaSuccess)
      l.ok = false;
  }
  if (!l.ok) cudaGetLastError();
  l.temp_bytes = t1 > t2 ? t1 : t2;
  l.temp = c.take<char>(l.temp_bytes);
  return l;
}

template <typename S>
int topk_sort_run(const dlk_k_glove_topk_desc *t, const TopkSortLayout &l, cudaStream_t st) {
  const int64_t rows = t->rows, cols = t->cols, N = rows * cols;
  DLK_LAUNCH(topk_keys_kernel<S>, grid_for(N, 256), 256, 0, st)(static_cast<const S *>(t->scores), rows,
                                                        cols, l.kA, l.vA);
  GK_TRY(cudaGetLastError());
  if (t->n_exclude > 0) {
    DLK_LAUNCH(topk_exclude_kernel, grid_for(cols * t->n_exclude, 256), 256, 0, st)(
        l.ex, t->n_exclude, rows, cols, l.kA);
    GK_TRY(cudaGetLastError());
  }
  cub::DoubleBuffer<unsigned long long> keys(l.kA, l.kB);
  cub::DoubleBuffer<int> vals(l.vA, l.vB);
  size_t tb = l.temp_bytes;
  GK_TRY(cub::DeviceRadixSort::SortPairsDescending(l.temp, tb, keys, vals, N, 0, 64, st));
  const int *spos = nullptr;
  if (cols > 1) {
    DLK_LAUNCH(topk_segkeys_kernel, grid_for(N, 256), 256, 0, st)(vals.Current(), N, rows, l.sA, l.pA);
    GK_TRY(cudaGetLastError());
    cub::DoubleBuffer<unsigned> sk(l.sA, l.sB);
    cub::DoubleBuffer<int> sp(l.pA, l.pB);
    tb = l.temp_bytes;
    GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, sk, sp, N, 0,
                                           bit_length((uint64_t)cols), st));
    spos = sp.Current();
  }
  DLK_LAUNCH(topk_sort_out_kernel, grid_for(cols * t->k, 256), 256, 0, st)(
      keys.Current(), vals.Current(), spos, rows, cols, t->k, l.oval, l.oidx);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t dlk_k_glove_topk_ws(const dlk_k_glove_topk_desc *t, int impl) {
  Carve c = {nullptr, 0};
  if (impl == 1) {
    topk_lanes_layout(c, t);
    return c.off + 256;
  }
  if (impl == 2) {
    const TopkSortLayout l = topk_sort_layout(c, t);
    return l.ok ? c.off + 256 : 0;
  }
  return 0;
}

extern "C" int dlk_k_glove_topk(const dlk_k_glove_topk_desc *t, int impl, void *ws, void *stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  Carve c = {static_cast<char *>(ws), 0};
  if (impl == 1) {
    if (t->k < 1 || t->k > DLK_K_GLOVE_TOPK_LANES_MAX_K || t->rows < 1 || t->cols < 1)
      return (int)cudaErrorInvalidValue;
    const TopkLanesLayout l = topk_lanes_layout(c, t);
    GK_TRY((cudaError_t)topk_upload_exclude(t, l.ex, st));
    if (t->dtype == DLK_F64)
      GK_TRY((cudaError_t)topk_lanes_dispatch<double>(t, l, st));
    else if (t->dtype == DLK_F32)
      GK_TRY((cudaError_t)topk_lanes_dispatch<float>(t, l, st));
    else
      return (int)cudaErrorInvalidValue;
    return topk_copy_out(t, l.oidx, l.oval, t->idx_host, t->val_host, st);
  }
  if (impl != 2 || t->k < 1 || t->rows < 1 || t->cols < 1 || t->rows * t->cols >= INT32_MAX)
    return (int)cudaErrorInvalidValue;
  const TopkSortLayout l = topk_sort_layout(c, t);
  if (!l.ok) return (int)cudaErrorInvalidValue;
  GK_TRY((cudaError_t)topk_upload_exclude(t, l.ex, st));
  if (t->dtype == DLK_F64)
    GK_TRY((cudaError_t)topk_sort_run<double>(t, l, st));
  else if (t->dtype == DLK_F32)
    GK_TRY((cudaError_t)topk_sort_run<float>(t, l, st));
  else
    return (int)cudaErrorInvalidValue;
  return topk_copy_out(t, l.oidx, l.oval, t->idx_host, t->val_host, st);
}
