// pool2d forward: y[n, c, oh, ow] = the max (first maximum, NaN wins) or the mean of the
// window of output (oh, ow), as the CPU reference (host/conv/conv_cpu.c).
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Thread mapping: one thread per output element, grid-stride over N*C*OH*OW; `cl` walks
// the outputs channel-innermost (rung 2 on channels-last x: neighbouring threads read
// neighbouring channels of the same window). No shared memory: each thread reads its
// window from global memory; overlapping windows of neighbours are served by L1/L2.
// Accumulation in AccT (f32 for f16/bf16/f32, f64 for f64).
template <typename T>
__global__ void pool2d_fwd_kernel(dlk_k_pool2d_desc p, bool cl) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &x = p.x, &y = p.y;
  const int64_t total = y.n * y.c * y.h * y.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, oh, ow;
    unflatten4(i, y.c, y.h, y.w, cl, n, c, oh, ow);
    const PoolWin win = pool_window(p, x.h, x.w, oh, ow);
    A v;
    if (p.kind == 0) {
      int64_t ah, aw;
      v = window_max<T>(x, n, c, win, p.dh, p.dw, &ah, &aw);
    } else {
      A s = 0;
      for (int64_t h = win.h0; h < win.h1; h++)
        for (int64_t w = win.w0; w < win.w1; w++) s += ld4<T>(x, n, c, h, w);
      v = s / (A)win.divisor;
    }
    st4<T>(y, n, c, oh, ow, v);
  }
}

template <typename T>
static int run_pool2d_fwd(const dlk_k_pool2d_desc *p, bool cl, void *stream) {
  const int64_t total = p->y.n * p->y.c * p->y.h * p->y.w;
  DLK_LAUNCH(pool2d_fwd_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, cl);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_pool2d_fwd(const dlk_k_pool2d_fwd_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  if (a->y.n * a->y.c * a->y.h * a->y.w == 0) return 0;
  const bool cl = impl == 2 && a->x.sc == 1 && a->x.c > 1;
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_pool2d_fwd<T>(a, cl, stream));
  return 0;
}
