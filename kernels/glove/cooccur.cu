// glove family, glove_cooccur_chunk: window pairs generated on the GPU, radix sort by pair
// key, then impl 1 `sort_rbk` (cub ReduceByKey) or impl 2 `sort_ordered` (each pair summed
// in generation order). Launcher in kernels/glove/glove.h, right under the kernels; rows
// in host/glove/glove_cuda.c.
#include <cuda/atomic>
#include <cuda/std/functional>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include "glove.cuh"

using namespace dlk_glove;

namespace {


// Pair key: w1 in the high bits, w2 in the low `bits` bits (bits = bit length of V), so
// the ascending key order is the (w1, w2) order and the sort needs only 2 * bits bits.

// Thread mapping: one thread per position t (grid-stride). Counts the weights target t
// generates (the CPU reference's loop: k = 1..window while t-k >= 0 and ids[t-k] > 0,
// twice when symmetric) and flags ids outside [0, V] (those also end the window, so the
// kernels never form a key from them). Shared memory: none.
__global__ void cooc_count_kernel(const int *ids, int64_t n, int64_t n_prefix, int64_t V, int W,
                                  int sym, long long *counts, unsigned long long *bad) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int id = ids[t];
    if (id < 0 || id > V) atomicAdd(bad, 1ull);
    if (t < n_prefix) continue;
    long long c = 0;
    if (id >= 1 && id <= V)
      for (int k = 1; k <= W && t - k >= 0; k++) {
        const int p = ids[t - k];
        if (p < 1 || p > V) break;
        c++;
      }
    counts[t - n_prefix] = sym ? 2 * c : c;
  }
}

// misc[0] = total weights generated (offsets are exclusive sums of counts). One thread.
__global__ void cooc_total_kernel(const long long *counts, const long long *offsets, int64_t m,
                                  long long *total) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *total = m > 0 ? offsets[m - 1] + counts[m - 1] : 0;
}

// Thread mapping: one thread per target t (grid-stride); it writes its weights at
// offsets[t - n_prefix] in the CPU reference's generation order (k ascending, the
// left-context record (ids[t-k], ids[t]) before its symmetric twin), so a stable sort
// keeps each pair's weights in the reference's summation order.
__global__ void cooc_gen_kernel(const int *ids, int64_t n, int64_t n_prefix, int sym, int dw,
                                int bits, const long long *counts, const long long *offsets,
                                unsigned long long *keys, double *vals, int64_t P) {
  for (int64_t t = n_prefix + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = t - n_prefix;
    const long long c = sym ? counts[j] / 2 : counts[j];
    long long o = offsets[j];
    const unsigned long long w2 = (unsigned)ids[t];
    for (int k = 1; k <= c; k++) {
      const unsigned long long w1 = (unsigned)ids[t - k];
      const double wt = dw ? 1.0 / (double)k : 1.0;
      GK_CHECK(o + (sym ? 2 : 1) <= P);
      keys[o] = (w1 << bits) | w2;
      vals[o++] = wt;
      if (sym) {
        keys[o] = (w2 << bits) | w1;
        vals[o++] = wt;
      }
    }
  }
}

// Records from ReduceByKey's unique keys and sums: one thread per record (grid-stride),
// the count read from device memory. Shared memory: none.
__global__ void cooc_pack_kernel(const unsigned long long *ukeys, const double *sums,
                                 const long long *nruns, int bits, GRec *out) {
  const int64_t R = *nruns;
  const unsigned long long mask = (1ull << bits) - 1;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R;
       i += (int64_t)gridDim.x * blockDim.x) {
    GRec r;
    r.w1 = (int)(ukeys[i] >> bits);
    r.w2 = (int)(ukeys[i] & mask);
    r.x = sums[i];
    out[i] = r;
  }
}

// Ordered sums. Thread mapping: one thread per sorted position p (grid-stride); the
// thread at the first position of a key sums that key's weights one by one in sorted
// order (= generation order: the sort is stable), which is exactly the CPU reference's
// order and bits, and writes the record at slot p; other slots get w1 = 0 and are
// dropped by the compaction that follows. Long runs (frequent pairs) are summed by one
// thread: fine, they are few.
__global__ void cooc_segsum_kernel(const unsigned long long *keys, const double *vals, int64_t P,
                                   int bits, GRec *out) {
  const unsigned long long mask = (1ull << bits) - 1;
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < P;
       p += (int64_t)gridDim.x * blockDim.x) {
    const unsigned long long k = keys[p];
    if (p > 0 && keys[p - 1] == k) {
      out[p].w1 = 0;
      continue;
    }
    double s = vals[p];
    for (int64_t j = p + 1; j < P && keys[j] == k; j++) s += vals[j];
    GRec r;
    r.w1 = (int)(k >> bits);
    r.w2 = (int)(k & mask);
    r.x = s;
    out[p] = r;
  }
}

struct ValidRec {
  __host__ __device__ bool operator()(const GRec &r) const { return r.w1 > 0; }
};

struct CoocLayout {
  int *ids;
  long long *counts, *offsets;
  unsigned long long *kA, *kB;
  double *xA, *xB;
  long long *misc; // [0] total, [1] runs / selected
  unsigned long long *bad;
  void *temp;
  size_t temp_bytes;
  bool ok;
};

int64_t cooc_pair_bound(const dlk_k_glove_cooccur_chunk_desc *c) {
  const int64_t m = c->n - c->n_prefix;
  return m > 0 ? m * (int64_t)c->window * (c->symmetric ? 2 : 1) : 0;
}

// cub temp bytes for the three passes over P pairs and m counts (max of them).
size_t cooc_temp(int64_t m, int64_t P, int bits, int ordered, bool *ok) {
  size_t t1 = 0, t2 = 0, t3 = 0;
  *ok = true;
  const int64_t mm = m > 0 ? m : 1, pp = P > 0 ? P : 1;
  if (cub::DeviceScan::ExclusiveSum(nullptr, t1, (const long long *)nullptr, (long long *)nullptr,
                                    mm) != cudaSuccess)
    *ok = false;
  cub::DoubleBuffer<unsigned long long> k(nullptr, nullptr);
  cub::DoubleBuffer<double> v(nullptr, nullptr);
  if (cub::DeviceRadixSort::SortPairs(nullptr, t2, k, v, pp, 0, 2 * bits) != cudaSuccess)
    *ok = false;
  if (ordered) {
    if (cub::DeviceSelect::If(nullptr, t3, (const GRec *)nullptr, (GRec *)nullptr,
                              (long long *)nullptr, pp, ValidRec()) != cudaSuccess)
      *ok = false;
  } else {
    if (cub::DeviceReduce::ReduceByKey(nullptr, t3, (const unsigned long long *)nullptr,
                                       (unsigned long long *)nullptr, (const double *)nullptr,
                                       (double *)nullptr, (long long *)nullptr,
                                       cuda::std::plus<double>(), pp) != cudaSuccess)
      *ok = false;
  }
  if (!*ok) cudaGetLastError();
  size_t t = t1 > t2 ? t1 : t2;
  return t > t3 ? t : t3;
}

// Region A = [kA | xA] and region B = [kB | xB] are each 16 P contiguous bytes, so the
// region the sort left free holds P records for the output.
CoocLayout cooc_layout(Carve &c, const dlk_k_glove_cooccur_chunk_desc *d, int ordered) {
  CoocLayout l;
  const int64_t m = d->n - d->n_prefix > 0 ? d->n - d->n_prefix : 0;
  const int64_t P = cooc_pair_bound(d);
  const size_t pp = (size_t)(P > 0 ? P : 1);
  const int bits = bit_length((uint64_t)d->vocab_size);
  l.ids = c.take<int>((size_t)(d->n > 0 ? d->n : 1));
  l.counts = c.take<long long>((size_t)(m > 0 ? m : 1));
  l.offsets = c.take<long long>((size_t)(m > 0 ? m : 1));
  l.kA = c.take<unsigned long long>(pp);
  l.xA = l.kA ? reinterpret_cast<double *>(l.kA + pp) : nullptr;
  c.off += pp * sizeof(double);
  l.kB = c.take<unsigned long long>(pp);
  l.xB = l.kB ? reinterpret_cast<double *>(l.kB + pp) : nullptr;
  c.off += pp * sizeof(double);
  l.misc = c.take<long long>(2);
  l.bad = c.take<unsigned long long>(1);
  l.temp_bytes = cooc_temp(m, P, bits, ordered, &l.ok);
  l.temp = c.take<char>(l.temp_bytes);
  return l;
}

int cooc_run(const dlk_k_glove_cooccur_chunk_desc *d, int ordered, void *ws, size_t ws_bytes,
             cudaStream_t st) {
  void *pinned = d->pinned, *out_host = d->out_host;
  const int64_t out_cap = d->out_cap;
  int64_t *out_count = d->out_count, *bad_ids = d->bad_ids;
  Carve c = {static_cast<char *>(ws), 0};
  const CoocLayout l = cooc_layout(c, d, ordered);
  if (!l.ok || c.off > ws_bytes) return (int)cudaErrorInvalidValue;
  const int64_t n = d->n, m = n - d->n_prefix, V = d->vocab_size;
  const int bits = bit_length((uint64_t)V);
  const int sym = d->symmetric != 0;
  *out_count = 0;
  *bad_ids = 0;
  if (m <= 0) return 0;
  volatile long long *h = static_cast<volatile long long *>(pinned);
  // 1. ids up, count the weights per target, offsets, the total and the bad ids back.
  GK_TRY(cudaMemcpyAsync(l.ids, d->ids, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, st));
  GK_TRY(cudaMemsetAsync(l.bad, 0, sizeof(unsigned long long), st));
  DLK_LAUNCH(cooc_count_kernel, grid_for(n, 256), 256, 0, st)(l.ids, n, d->n_prefix, V, d->window, sym,
                                                      l.counts, l.bad);
  GK_TRY(cudaGetLastError());
  size_t tb = l.temp_bytes;
  GK_TRY(cub::DeviceScan::ExclusiveSum(l.temp, tb, l.counts, l.offsets, m, st));
  DLK_LAUNCH(cooc_total_kernel, 1, 32, 0, st)(l.counts, l.offsets, m, l.misc);
  GK_TRY(cudaGetLastError());
  GK_TRY(cudaMemcpyAsync((void *)h, l.misc, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaMemcpyAsync((void *)(h + 1), l.bad, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  const int64_t P = h[0];
  if (h[1] != 0) {
    *bad_ids = h[1];
    return 0;
  }
  if (P < 0 || P > cooc_pair_bound(d)) return (int)cudaErrorInvalidValue;
  if (P == 0) return 0;
  // 2. generate, 3. stable sort by key over 2 * bits bits.
  DLK_LAUNCH(cooc_gen_kernel, grid_for(m, 256), 256, 0, st)(l.ids, n, d->n_prefix, sym,
                                                    d->distance_weighting, bits, l.counts,
                                                    l.offsets, l.kA, l.xA, P);
  GK_TRY(cudaGetLastError());
  cub::DoubleBuffer<unsigned long long> keys(l.kA, l.kB);
  cub::DoubleBuffer<double> vals(l.xA, l.xB);
  tb = l.temp_bytes;
  GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, keys, vals, P, 0, 2 * bits, st));
  // Keys and values flip together (same passes); the record views below rely on it.
  if (keys.selector != vals.selector) return (int)cudaErrorInvalidValue;
  const unsigned long long *ks = keys.Current();
  const double *xs = vals.Current();
  unsigned long long *ko = keys.Alternate();
  double *xo = vals.Alternate();
  GRec *recS = reinterpret_cast<GRec *>(keys.Current());  // region of the sorted data
  GRec *recO = reinterpret_cast<GRec *>(ko);              // the other region
  // 4. sums per key, as records in region S.
  tb = l.temp_bytes;
  if (ordered) {
    DLK_LAUNCH(cooc_segsum_kernel, grid_for(P, 256), 256, 0, st)(ks, xs, P, bits, recO);
    GK_TRY(cudaGetLastError());
    GK_TRY(cub::DeviceSelect::If(l.temp, tb, recO, recS, l.misc + 1, P, ValidRec(), st));
  } else {
    GK_TRY(cub::DeviceReduce::ReduceByKey(l.temp, tb, ks, ko, xs, xo, l.misc + 1,
                                          cuda::std::plus<double>(), P, st));
    DLK_LAUNCH(cooc_pack_kernel, grid_for(P, 256), 256, 0, st)(ko, xo, l.misc + 1, bits, recS);
    GK_TRY(cudaGetLastError());
  }
  GK_TRY(cudaMemcpyAsync((void *)h, l.misc + 1, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  const int64_t R = h[0];
  *out_count = R;
  if (R < 0 || R > out_cap) return 0;  // the caller sees out_count > out_cap
  GK_TRY(cudaMemcpyAsync(out_host, recS, (size_t)R * sizeof(GRec), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  return 0;
}

}  // namespace

extern "C" size_t dlk_k_glove_cooccur_chunk_ws(const dlk_k_glove_cooccur_chunk_desc *a, int impl) {
  if (impl != 1 && impl != 2) return 0;
  Carve cv = {nullptr, 0};
  const CoocLayout l = cooc_layout(cv, a, impl == 2);
  return l.ok ? cv.off + 256 : 0;
}

extern "C" int dlk_k_glove_cooccur_chunk(const dlk_k_glove_cooccur_chunk_desc *a, int impl, void *ws,
                                         void *stream) {
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  return cooc_run(a, impl == 2, ws, dlk_k_glove_cooccur_chunk_ws(a, impl),
                  static_cast<cudaStream_t>(stream));
}
