// pool2d backward: dx[n, c, h, w] = sum of dy over the windows that route to (h, w): for
// max, the windows whose first maximum is (h, w); for avg, every window holding (h, w),
// dy / divisor. The same windows and maxima as the CPU reference (host/conv/conv_cpu.c).
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// The windows (oh, ow) that can hold input row h: oh = (h + ph - i dh) / sh for a tap i
// in [0, kh) where the division is exact and 0 <= oh < OH (columns alike). A gather over
// taps visits each window at most once (a window holds each input row at one tap).
__device__ __forceinline__ bool tap_window(int64_t h, int64_t pad, int64_t i, int64_t dil, int64_t stride,
                                           int64_t out, int64_t *o) {
  const int64_t num = h + pad - i * dil;
  if (num < 0 || num % stride) return false;
  *o = num / stride;
  return *o < out;
}

// Rung 1 "gather". Thread mapping: one thread per input element (n, c, h, w), grid-stride
// over N*C*H*W in x's memory order (channel-innermost for channels-last x). Each thread
// loops over the kh*kw taps, finds the window of each tap, and for max recomputes that
// window's first maximum (kh*kw reads) to see whether it is (h, w). No shared memory, no
// atomics: every dx element is written once, deterministic.
// Rung 2 "argmax": the same gather, but a max window's argmax comes from `amax` (int32
// plane offset h*W + w of each output, -1 for none) written by pool2d_argmax_kernel.
template <typename T>
__global__ void pool2d_bwd_kernel(dlk_k_pool2d_desc p, bool cl, const int32_t *amax) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &x = p.x, &dy = p.dy, &dx = p.dx;
  const int64_t total = x.n * x.c * x.h * x.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, h, w;
    unflatten4(i, x.c, x.h, x.w, cl, n, c, h, w);
    A acc = 0;
    for (int64_t ti = 0; ti < p.kh; ti++) {
      int64_t oh;
      if (!tap_window(h, p.ph, ti, p.dh, p.sh, dy.h, &oh)) continue;
      for (int64_t tj = 0; tj < p.kw; tj++) {
        int64_t ow;
        if (!tap_window(w, p.pw, tj, p.dw, p.sw, dy.w, &ow)) continue;
        const A g = ld4<T>(dy, n, c, oh, ow);
        if (p.kind == 0) {
          bool mine;
          if (amax) {
            mine = amax[((n * dy.c + c) * dy.h + oh) * dy.w + ow] == (int32_t)(h * x.w + w);
          } else {
            const PoolWin win = pool_window(p, x.h, x.w, oh, ow);
            int64_t ah, aw;
            window_max<T>(x, n, c, win, p.dh, p.dw, &ah, &aw);
            mine = ah == h && aw == w;
          }
          if (mine) acc += g;
        } else {
          const PoolWin win = pool_window(p, x.h, x.w, oh, ow);
          acc += g / (A)win.divisor;
        }
      }
    }
    st4<T>(dx, n, c, h, w, acc);
  }
}

// Rung 2, first pass: one thread per output, its window's first maximum as an int32
// plane offset (-1: the window holds no input element) into amax [N, C, OH, OW] dense.
template <typename T>
__global__ void pool2d_argmax_kernel(dlk_k_pool2d_desc p, int32_t *amax) {
  const dlk_k_img &x = p.x, &dy = p.dy;
  const int64_t total = dy.n * dy.c * dy.h * dy.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, oh, ow;
    unflatten4(i, dy.c, dy.h, dy.w, false, n, c, oh, ow);
    const PoolWin win = pool_window(p, x.h, x.w, oh, ow);
    int64_t ah, aw;
    window_max<T>(x, n, c, win, p.dh, p.dw, &ah, &aw);
    amax[i] = ah < 0 ? -1 : (int32_t)(ah * x.w + aw);
  }
}

template <typename T>
static int run_pool2d_bwd(const dlk_k_pool2d_desc *p, int impl, bool cl, void *ws, void *stream) {
  const int32_t *amax = NULL;
  if (impl == 2 && p->kind == 0) {
    const int64_t outs = p->dy.n * p->dy.c * p->dy.h * p->dy.w;
    if (outs) DLK_LAUNCH(pool2d_argmax_kernel<T>, grid_for(outs, 256), 256, 0, stream)(*p, (int32_t *)ws);
    amax = (const int32_t *)ws;
  }
  const int64_t total = p->x.n * p->x.c * p->x.h * p->x.w;
  DLK_LAUNCH(pool2d_bwd_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, cl, amax);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t dlk_k_pool2d_bwd_ws(const dlk_k_pool2d_bwd_desc *a, int impl) {
  if (impl != 2 || a->kind != 0) return 0;
  return (size_t)(a->dy.n * a->dy.c * a->dy.h * a->dy.w) * sizeof(int32_t);
}

extern "C" int dlk_k_pool2d_bwd(const dlk_k_pool2d_bwd_desc *a, int impl, void *ws, void *stream) {
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  if (a->x.n * a->x.c * a->x.h * a->x.w == 0) return 0;
  /* rung 2's int32 plane offsets */
  if (impl == 2 && a->kind == 0 && (a->x.h * a->x.w > INT32_MAX || !ws)) return (int)cudaErrorInvalidValue;
  const bool cl = a->x.sc == 1 && a->x.c > 1;
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_pool2d_bwd<T>(a, impl, cl, ws, stream));
  return 0;
}
