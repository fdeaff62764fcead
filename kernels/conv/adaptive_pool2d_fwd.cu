// Adaptive average pool2d forward: y[n, c, oh, ow] = the mean of x over rows
// [floor(oh H / OH), ceil((oh + 1) H / OH)) and columns alike (torch's bins).
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Thread mapping: one thread per output element, grid-stride over N*C*OH*OW, in x's memory
// order (channel-innermost for channels-last x). No shared memory; f32 accumulation
// (f64 for f64).
template <typename T>
__global__ void adaptive_pool2d_fwd_kernel(dlk_k_adaptive_pool2d_desc p, bool cl) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &x = p.in, &y = p.out;
  const int64_t total = y.n * y.c * y.h * y.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, oh, ow;
    unflatten4(i, y.c, y.h, y.w, cl, n, c, oh, ow);
    const int64_t h0 = bin_start(oh, x.h, y.h), h1 = bin_end(oh, x.h, y.h);
    const int64_t w0 = bin_start(ow, x.w, y.w), w1 = bin_end(ow, x.w, y.w);
    A s = 0;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) s += ld4<T>(x, n, c, h, w);
    st4<T>(y, n, c, oh, ow, s / (A)((h1 - h0) * (w1 - w0)));
  }
}

template <typename T>
static int run_op(const dlk_k_adaptive_pool2d_desc *p, void *stream) {
  const int64_t total = p->out.n * p->out.c * p->out.h * p->out.w;
  DLK_LAUNCH(adaptive_pool2d_fwd_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, p->in.sc == 1 && p->in.c > 1);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_adaptive_pool2d_fwd(const dlk_k_adaptive_pool2d_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (impl != 1) return (int)cudaErrorInvalidValue;
  if (a->out.n * a->out.c * a->out.h * a->out.w == 0) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_op<T>(a, stream));
  return 0;
}
