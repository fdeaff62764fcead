// dlk's emulated CUDA device: the CUB device-wide algorithms dlk calls, as host code over
// "device" memory (ordinary host memory here). Same signatures and the same results CUB
// gives: the radix sorts are stable LSD sorts on the bits [begin_bit, end_bit) only;
// scans, selections and reductions go left to right. Temporary storage is asked for and
// used as CUB asks (a size query with d_temp_storage == nullptr first): a call given less
// than it asked for returns cudaErrorInvalidValue instead of writing past the workspace.
#ifndef DLK_EMU_CUB_CUH
#define DLK_EMU_CUB_CUH

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda_runtime.h"

namespace cub {

template <class T>
struct DoubleBuffer {
  T *d_buffers[2];
  int selector;
  DoubleBuffer() : selector(0) { d_buffers[0] = d_buffers[1] = nullptr; }
  DoubleBuffer(T *current, T *alternate) : selector(0) {
    d_buffers[0] = current;
    d_buffers[1] = alternate;
  }
  T *Current() { return d_buffers[selector]; }
  T *Alternate() { return d_buffers[selector ^ 1]; }
};

namespace emu {
inline size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

inline cudaError_t too_small(const char *what, size_t have, size_t need) {
  fprintf(stderr, "dlk-emu: cub::%s given %zu bytes of temporary storage, needs %zu\n", what, have,
          need);
  return cudaErrorInvalidValue;
}

// Keys as unsigned integers in sort order (signed: sign bit flipped).
template <class K>
inline uint64_t ordered(K k) {
  static_assert(std::is_integral<K>::value, "the emulated radix sort takes integer keys");
  typedef typename std::make_unsigned<K>::type U;
  U u = (U)k;
  if (std::is_signed<K>::value) u ^= (U)((U)1 << (sizeof(K) * 8 - 1));
  return (uint64_t)u;
}

// One stable counting-sort pass per 8-bit digit of [begin, end), reading (kin, vin) first
// and ping-ponging between the buffer pairs 0 (k0, v0) and 1 (k1, v1). *final_buf >= 0 on
// entry: the result must land there; -1: start with buffer 0. On return: where it is.
template <class K, class V>
void radix_passes(const K *kin, const V *vin, K *k0, V *v0, K *k1, V *v1, int64_t n, int begin,
                  int end, bool desc, int *final_buf) {
  const int passes = end > begin ? (end - begin + 7) / 8 : 0;
  const K *ks = kin;
  const V *vs = vin;
  // The last pass must land in buffer *final_buf when >= 0; else alternate from buffer 0.
  int dst = (*final_buf >= 0) ? ((passes % 2 == 1) ? *final_buf : *final_buf ^ 1) : 0;
  if (passes == 0) {
    dst = *final_buf >= 0 ? *final_buf : 0;
    K *kd = dst ? k1 : k0;
    V *vd = dst ? v1 : v0;
    if (kd != ks) memmove(kd, ks, (size_t)n * sizeof(K));
    if (vs && vd != vs) memmove(vd, vs, (size_t)n * sizeof(V));
    *final_buf = dst;
    return;
  }
  static thread_local int64_t count[257];
  for (int p = 0; p < passes; p++) {
    const int shift = begin + 8 * p;
    const int bits = end - shift < 8 ? end - shift : 8;
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    K *kd = dst ? k1 : k0;
    V *vd = dst ? v1 : v0;
    memset(count, 0, sizeof count);
    for (int64_t i = 0; i < n; i++) {
      uint64_t d = (ordered(ks[i]) >> shift) & mask;
      if (desc) d = mask - d;
      count[d + 1]++;
    }
    for (int d = 0; d < 256; d++) count[d + 1] += count[d];
    for (int64_t i = 0; i < n; i++) {
      uint64_t d = (ordered(ks[i]) >> shift) & mask;
      if (desc) d = mask - d;
      const int64_t at = count[d]++;
      kd[at] = ks[i];
      if (vs) vd[at] = vs[i];
    }
    ks = kd;
    vs = vs ? vd : nullptr;
    *final_buf = dst;
    dst ^= 1;
  }
}

template <class K, class V, class N>
cudaError_t sort_pairs(void *temp, size_t &bytes, const K *kin, K *kout, const V *vin, V *vout,
                       N num, int begin, int end, bool desc, const char *what) {
  const int64_t n = (int64_t)num;
  const size_t need = 2 * 256 + align256((size_t)(n > 0 ? n : 0) * sizeof(K)) +
                      align256((size_t)(n > 0 ? n : 0) * sizeof(V));
  if (!temp) {
    bytes = need;
    return cudaSuccess;
  }
  if (bytes < need) return too_small(what, bytes, need);
  if (n <= 0) return cudaSuccess;
  if (begin < 0 || end > (int)(8 * sizeof(K)) || begin > end) return cudaErrorInvalidValue;
  char *t = (char *)(((uintptr_t)temp + 255) & ~(uintptr_t)255);
  K *kt = (K *)t;
  V *vt = (V *)(t + align256((size_t)n * sizeof(K)));
  int final_buf = 0;  // buffer 0 = out
  radix_passes(kin, vin, kout, vout, kt, vt, n, begin, end, desc, &final_buf);
  return cudaSuccess;
}

template <class K, class V, class N>
cudaError_t sort_pairs_db(void *temp, size_t &bytes, DoubleBuffer<K> &keys, DoubleBuffer<V> &vals,
                          N num, int begin, int end, bool desc) {
  const int64_t n = (int64_t)num;
  if (!temp) {
    bytes = 256;
    return cudaSuccess;
  }
  if (n <= 0) return cudaSuccess;
  if (begin < 0 || end > (int)(8 * sizeof(K)) || begin > end) return cudaErrorInvalidValue;
  // Passes alternate between the two buffers starting from Current; `final` names the
  // buffer (relative to the selector) holding the result.
  const int sel = keys.selector;
  K *kb[2] = {keys.d_buffers[sel ^ 1], keys.d_buffers[sel]};
  V *vb[2] = {vals.d_buffers[sel ^ 1], vals.d_buffers[sel]};
  int final_buf = -1;  // pass 1 reads Current (buffer 1) into buffer 0, and so on
  radix_passes((const K *)kb[1], (const V *)vb[1], kb[0], vb[0], kb[1], vb[1], n, begin, end, desc,
               &final_buf);
  const int result = final_buf == 0 ? (sel ^ 1) : sel;
  keys.selector = result;
  vals.selector = result;
  return cudaSuccess;
}
}  // namespace emu

struct DeviceRadixSort {
  template <class K, class V, class N>
  static cudaError_t SortPairs(void *temp, size_t &bytes, const K *kin, K *kout, const V *vin,
                               V *vout, N n, int begin_bit = 0, int end_bit = sizeof(K) * 8,
                               cudaStream_t = 0) {
    return emu::sort_pairs(temp, bytes, kin, kout, vin, vout, n, begin_bit, end_bit, false,
                           "DeviceRadixSort::SortPairs");
  }
  template <class K, class V, class N>
  static cudaError_t SortPairs(void *temp, size_t &bytes, DoubleBuffer<K> &keys,
                               DoubleBuffer<V> &vals, N n, int begin_bit = 0,
                               int end_bit = sizeof(K) * 8, cudaStream_t = 0) {
    return emu::sort_pairs_db(temp, bytes, keys, vals, n, begin_bit, end_bit, false);
  }
  template <class K, class V, class N>
  static cudaError_t SortPairsDescending(void *temp, size_t &bytes, const K *kin, K *kout,
                                         const V *vin, V *vout, N n, int begin_bit = 0,
                                         int end_bit = sizeof(K) * 8, cudaStream_t = 0) {
    return emu::sort_pairs(temp, bytes, kin, kout, vin, vout, n, begin_bit, end_bit, true,
                           "DeviceRadixSort::SortPairsDescending");
  }
  template <class K, class V, class N>
  static cudaError_t SortPairsDescending(void *temp, size_t &bytes, DoubleBuffer<K> &keys,
                                         DoubleBuffer<V> &vals, N n, int begin_bit = 0,
                                         int end_bit = sizeof(K) * 8, cudaStream_t = 0) {
    return emu::sort_pairs_db(temp, bytes, keys, vals, n, begin_bit, end_bit, true);
  }
};

struct DeviceScan {
  template <class In, class Out, class N>
  static cudaError_t ExclusiveSum(void *temp, size_t &bytes, In in, Out out, N num,
                                  cudaStream_t = 0) {
    if (!temp) {
      bytes = 256;
      return cudaSuccess;
    }
    typedef typename std::decay<decltype(*out)>::type T;
    T acc = T();
    for (int64_t i = 0; i < (int64_t)num; i++) {
      const T v = (T)in[i];
      out[i] = acc;
      acc = acc + v;
    }
    return cudaSuccess;
  }
  template <class In, class Out, class N>
  static cudaError_t InclusiveSum(void *temp, size_t &bytes, In in, Out out, N num,
                                  cudaStream_t = 0) {
    if (!temp) {
      bytes = 256;
      return cudaSuccess;
    }
    typedef typename std::decay<decltype(*out)>::type T;
    T acc = T();
    for (int64_t i = 0; i < (int64_t)num; i++) {
      acc = acc + (T)in[i];
      out[i] = acc;
    }
    return cudaSuccess;
  }
};

struct DeviceSelect {
  template <class In, class Out, class NumSel, class N, class Op>
  static cudaError_t If(void *temp, size_t &bytes, In in, Out out, NumSel num_selected, N num,
                        Op op, cudaStream_t = 0) {
    if (!temp) {
      bytes = 256;
      return cudaSuccess;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < (int64_t)num; i++)
      if (op(in[i])) out[k++] = in[i];
    *num_selected = k;
    return cudaSuccess;
  }
};

struct DeviceReduce {
  template <class KIn, class KOut, class VIn, class VOut, class NumRuns, class Op, class N>
  static cudaError_t ReduceByKey(void *temp, size_t &bytes, KIn keys_in, KOut unique_out,
                                 VIn vals_in, VOut aggr_out, NumRuns num_runs, Op op, N num,
                                 cudaStream_t = 0) {
    if (!temp) {
      bytes = 256;
      return cudaSuccess;
    }
    const int64_t n = (int64_t)num;
    int64_t runs = 0;
    for (int64_t i = 0; i < n;) {
      auto key = keys_in[i];
      auto acc = vals_in[i];
      int64_t j = i + 1;
      for (; j < n && keys_in[j] == key; j++) acc = op(acc, vals_in[j]);
      unique_out[runs] = key;
      aggr_out[runs] = acc;
      runs++;
      i = j;
    }
    *num_runs = runs;
    return cudaSuccess;
  }
};

}  // namespace cub
#endif
