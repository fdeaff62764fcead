// Adaptive average pool2d backward: dx[n, c, h, w] = sum over the bins (oh, ow) holding
// (h, w) of dy[n, c, oh, ow] / (bin height * bin width).
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Thread mapping: one thread per input element (n, c, h, w), grid-stride over N*C*H*W in
// dx's memory order. The bins holding row h are among oh in [start(h; OH over H),
// end(h; OH over H)) (the bin formulas with the roles swapped), each tested for
// membership. No shared memory, no atomics: deterministic.
template <typename T>
__global__ void adaptive_pool2d_bwd_kernel(dlk_k_adaptive_pool2d_desc p, bool cl) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &dx = p.in, &dy = p.out;
  const int64_t total = dx.n * dx.c * dx.h * dx.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, h, w;
    unflatten4(i, dx.c, dx.h, dx.w, cl, n, c, h, w);
    A s = 0;
    for (int64_t oh = bin_start(h, dy.h, dx.h); oh < bin_end(h, dy.h, dx.h); oh++) {
      const int64_t h0 = bin_start(oh, dx.h, dy.h), h1 = bin_end(oh, dx.h, dy.h);
      if (h < h0 || h >= h1) continue;
      for (int64_t ow = bin_start(w, dy.w, dx.w); ow < bin_end(w, dy.w, dx.w); ow++) {
        const int64_t w0 = bin_start(ow, dx.w, dy.w), w1 = bin_end(ow, dx.w, dy.w);
        if (w < w0 || w >= w1) continue;
        s += ld4<T>(dy, n, c, oh, ow) / (A)((h1 - h0) * (w1 - w0));
      }
    }
    st4<T>(dx, n, c, h, w, s);
  }
}

template <typename T>
static int run_op(const dlk_k_adaptive_pool2d_desc *p, void *stream) {
  const int64_t total = p->in.n * p->in.c * p->in.h * p->in.w;
  DLK_LAUNCH(adaptive_pool2d_bwd_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, p->in.sc == 1 && p->in.c > 1);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_adaptive_pool2d_bwd(const dlk_k_adaptive_pool2d_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (impl != 1) return (int)cudaErrorInvalidValue;
  if (a->in.n * a->in.c * a->in.h * a->in.w == 0) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_op<T>(a, stream));
  return 0;
}
