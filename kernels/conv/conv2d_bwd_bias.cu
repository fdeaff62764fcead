// conv family, conv2d backward through the bias and the activation: dz = dy * act'(z)
// (written when dz.data is set) and db[k] = the sum of dz over n, h, w (when db.data is
// set); the first step of dlk_conv2d_backward. The ladder (both deterministic: fixed-order
// sums, no atomics):
//   1 channel    one block per channel k (grid-stride over k): its threads stride over the
//                channel's N*H*W elements, then a block reduction
//   2 chunked    grid (chunks, K): block (chunk, k) reduces one chunk of channel k into
//                ws[chunk][k]; a second kernel adds the chunks in order. For few channels
//                with many elements each, where variant 1 leaves the GPU idle
// Launcher dlk_k_conv2d_bwd_bias at the end; rows in host/conv/conv_cuda.c.
#include <stdio.h>

#include "conv.cuh"

using namespace dlk;
using namespace dlk::conv;

namespace {

constexpr int BB_THREADS = 256;

// Elements [e0, e1) of channel k (row-major over n, h, w): write dz, return the sum.
template <typename T>
__device__ typename AccT<T>::type bias_range(const dlk_k_conv2d_bwd_bias_desc &a, int64_t k, int64_t e0,
                                             int64_t e1) {
  typedef typename AccT<T>::type A;
  const int64_t HW = a.h * a.w;
  A sum = 0;
  for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
    const int64_t n = e / HW, h = (e % HW) / a.w, w = e % a.w;
    A d = ld4<T>(a.dy, n, k, h, w);
    if (a.act != DLK_ACT_NONE) d *= act_grad(ld4<T>(a.z, n, k, h, w), a.act);
    if (a.dz.data) st4<T>(a.dz, n, k, h, w, d);
    sum += d;
  }
  return sum;
}

// 1: thread mapping: block per channel (grid-stride over K), BB_THREADS threads striding
// over its elements (consecutive threads on consecutive w). Shared memory: block_sum's
// 32 partials.
template <typename T>
__global__ __launch_bounds__(BB_THREADS) void bias_channel_kernel(dlk_k_conv2d_bwd_bias_desc a) {
  typedef typename AccT<T>::type A;
  __shared__ A red[32];
  const int64_t per = a.n * a.h * a.w;
  for (int64_t k = blockIdx.x; k < a.k; k += gridDim.x) {
    A s = block_sum(bias_range<T>(a, k, 0, per), red);
    if (a.db.data && threadIdx.x == 0) ((T *)a.db.data)[k * a.db.s] = from_acc<T>(s);
  }
}

// 2, pass 1: block (chunk, k) over elements [chunk * len, +len) of channel k.
template <typename T>
__global__ __launch_bounds__(BB_THREADS) void bias_chunk_kernel(dlk_k_conv2d_bwd_bias_desc a, int64_t len,
                                                                typename AccT<T>::type *partial) {
  typedef typename AccT<T>::type A;
  __shared__ A red[32];
  const int64_t per = a.n * a.h * a.w, e0 = blockIdx.x * len, e1 = e0 + len < per ? e0 + len : per;
  for (int64_t k = blockIdx.y; k < a.k; k += gridDim.y) {
    A s = block_sum(bias_range<T>(a, k, e0, e1), red);
    if (threadIdx.x == 0) partial[blockIdx.x * a.k + k] = s;
  }
}

// 2, pass 2: db[k] = sum over chunks of partial[chunk][k], in chunk order; one thread per
// channel.
template <typename T>
__global__ void bias_final_kernel(dlk_k_conv2d_bwd_bias_desc a, int64_t chunks,
                                  const typename AccT<T>::type *partial) {
  typedef typename AccT<T>::type A;
  for (int64_t k = gidx(); k < a.k; k += gstride()) {
    A s = 0;
    for (int64_t c = 0; c < chunks; c++) s += partial[c * a.k + k];
    ((T *)a.db.data)[k * a.db.s] = from_acc<T>(s);
  }
}

// Chunks of variant 2: about 8 blocks of work per 1024 elements, at most 1024 chunks,
// each at least 4096 elements long.
int64_t chunk_len(const dlk_k_conv2d_bwd_bias_desc *a, int64_t *chunks) {
  const int64_t per = a->n * a->h * a->w;
  int64_t len = (per + 1023) / 1024;
  if (len < 4096) len = 4096;
  *chunks = (per + len - 1) / len;
  if (*chunks < 1) *chunks = 1;
  return len;
}

}  // namespace

extern "C" size_t dlk_k_conv2d_bwd_bias_ws(const dlk_k_conv2d_bwd_bias_desc *a, int impl) {
  if (impl != 2) return 0;
  int64_t chunks;
  chunk_len(a, &chunks);
  return (size_t)(chunks * a->k) * (a->dtype == DLK_F64 ? 8 : 4);
}

extern "C" int dlk_k_conv2d_bwd_bias(const dlk_k_conv2d_bwd_bias_desc *a, int impl, void *ws, void *stream) {
  if (a->k == 0 || (!a->dz.data && !a->db.data)) return 0;
  const unsigned kblocks = (unsigned)(a->k < 65535 ? a->k : 65535);
  switch (impl) {
    case 1: DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(bias_channel_kernel<T>, kblocks, BB_THREADS, 0, stream)(*a)); break;
    case 2: {
      int64_t chunks;
      const int64_t len = chunk_len(a, &chunks);
      if (!a->db.data) { /* dz alone needs no sums: the per-channel pass writes it */
        DLK_DISPATCH_FLOAT(a->dtype, T, DLK_LAUNCH(bias_channel_kernel<T>, kblocks, BB_THREADS, 0, stream)(*a));
        break;
      }
      if (!ws) return (int)cudaErrorInvalidValue;
      DLK_DISPATCH_FLOAT(a->dtype, T, {
        typedef typename AccT<T>::type A;
        DLK_LAUNCH(bias_chunk_kernel<T>, dim3((unsigned)chunks, kblocks), BB_THREADS, 0, stream)(*a, len, (A *)ws);
        DLK_LAUNCH(bias_final_kernel<T>, grid_for(a->k, 256), 256, 0, stream)(*a, chunks, (const A *)ws);
      });
      break;
    }
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
