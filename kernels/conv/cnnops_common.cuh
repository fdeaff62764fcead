// Device helpers of the pooling / batch norm / MSE kernels (kernels/conv/{pool2d,
// adaptive_pool2d,batchnorm,mse}_*.cu): typed element access of the plain-C descriptors of
// kernels/conv/conv.h, index decoding, pooling windows and adaptive bins, in namespace
// dlk::cnn beside kernels/common.cuh's shared pieces.
#ifndef DLK_KERNELS_CONV_CNNOPS_COMMON_CUH
#define DLK_KERNELS_CONV_CNNOPS_COMMON_CUH

#include "../common.cuh"
#include "conv.h"

namespace dlk {
namespace cnn {

// Element (n, c, h, w) of an image descriptor, as the accumulation type / stored from it.
template <typename T>
__device__ __forceinline__ typename AccT<T>::type ld4(const dlk_k_img &t, int64_t n, int64_t c, int64_t h,
                                                     int64_t w) {
  DLK_KCHECK(n >= 0 && n < t.n && c >= 0 && c < t.c && h >= 0 && h < t.h && w >= 0 && w < t.w);
  return to_acc(((const T *)t.data)[n * t.sn + c * t.sc + h * t.sh + w * t.sw]);
}
template <typename T>
__device__ __forceinline__ void st4(const dlk_k_img &t, int64_t n, int64_t c, int64_t h, int64_t w,
                                   typename AccT<T>::type v) {
  DLK_KCHECK(n >= 0 && n < t.n && c >= 0 && c < t.c && h >= 0 && h < t.h && w >= 0 && w < t.w);
  ((T *)t.data)[n * t.sn + c * t.sc + h * t.sh + w * t.sw] = from_acc<T>(v);
}

// Row-major index i over [N, C, H, W] -> (n, c, h, w), in NCHW order, or in NHWC order
// (channel innermost) when `cl`: consecutive threads then take consecutive channels.
__device__ __forceinline__ void unflatten4(int64_t i, int64_t C, int64_t H, int64_t W, bool cl, int64_t &n,
                                           int64_t &c, int64_t &h, int64_t &w) {
  if (cl) {
    c = i % C;
    i /= C;
    w = i % W;
    i /= W;
    h = i % H;
    n = i / H;
  } else {
    w = i % W;
    i /= W;
    h = i % H;
    i /= H;
    c = i % C;
    n = i / C;
  }
}

// The window of pool output (oh, ow) clipped to the input, exactly as the CPU reference
// (host/conv/conv_cpu.c): rows [h0, h1) step dh, columns alike. Max: the dilated window,
// starting at its first in-bounds row/column (h0 >= h1 or w0 >= w1: no input element).
// Avg (no dilation): hend = min(hs + kh, H + ph) before clipping gives the
// count_include_pad divisor, the clipped window the other one.
struct PoolWin {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};
__device__ __forceinline__ int64_t first_in_bounds(int64_t s, int64_t step) {
  return s >= 0 ? s : s + ((-s + step - 1) / step) * step;
}
__device__ __forceinline__ PoolWin pool_window(const dlk_k_pool2d_desc &p, int64_t H, int64_t W, int64_t oh,
                                               int64_t ow) {
  PoolWin r;
  const int64_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
  if (p.kind == 0) {
    r.h0 = first_in_bounds(hs, p.dh), r.w0 = first_in_bounds(ws, p.dw);
    const int64_t he = hs + (p.kh - 1) * p.dh + 1, we = ws + (p.kw - 1) * p.dw + 1;
    r.h1 = he < H ? he : H, r.w1 = we < W ? we : W;
    r.divisor = 1;
    return r;
  }
  int64_t he = hs + p.kh, we = ws + p.kw;
  if (he > H + p.ph) he = H + p.ph;
  if (we > W + p.pw) we = W + p.pw;
  const int64_t padded = (he - hs) * (we - ws);
  r.h0 = hs > 0 ? hs : 0, r.w0 = ws > 0 ? ws : 0;
  r.h1 = he < H ? he : H, r.w1 = we < W ? we : W;
  r.divisor = p.count_include_pad ? padded : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

// The first maximum of a max window in row-major window order (PyTorch's CPU rule: a
// later element replaces the current one when larger or NaN); *ah = -1 for a window
// without input elements (then the max is -inf).
template <typename T>
__device__ __forceinline__ typename AccT<T>::type window_max(const dlk_k_img &x, int64_t n, int64_t c,
                                                             const PoolWin &win, int64_t dh, int64_t dw,
                                                             int64_t *ah, int64_t *aw) {
  typedef typename AccT<T>::type A;
  A m = neg_inf<A>();
  *ah = win.h0, *aw = win.w0;
  if (win.h0 >= win.h1 || win.w0 >= win.w1) *ah = -1;
  for (int64_t h = win.h0; h < win.h1; h += dh)
    for (int64_t w = win.w0; w < win.w1; w += dw) {
      A v = ld4<T>(x, n, c, h, w);
      if (v > m || v != v) m = v, *ah = h, *aw = w;
    }
  return m;
}

// Adaptive pooling bin [bin_start, bin_end) of output index o, `in` values into `out`
// bins: floor(o in / out) and ceil((o + 1) in / out) (torch's START_IND / END_IND).
__device__ __forceinline__ int64_t bin_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
__device__ __forceinline__ int64_t bin_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

// Per-channel vector element i as AccT, or `dflt` when absent; and a store.
template <typename S>
__device__ __forceinline__ S ldc(const dlk_k_chan &v, int64_t i, S dflt) {
  return v.data ? ((const S *)v.data)[i * v.s] : dflt;
}
template <typename S>
__device__ __forceinline__ void stc(const dlk_k_chan &v, int64_t i, S x) {
  if (v.data) ((S *)v.data)[i * v.s] = x;
}

// Position m of a channel's M = N*H*W values -> (n, h, w), w fastest.
__device__ __forceinline__ void unflatten_m(int64_t m, int64_t H, int64_t W, int64_t &n, int64_t &h, int64_t &w) {
  w = m % W;
  m /= W;
  h = m % H;
  n = m / H;
}

}  // namespace cnn
}  // namespace dlk

#endif  // DLK_KERNELS_CONV_CNNOPS_COMMON_CUH
