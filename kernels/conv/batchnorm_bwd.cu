// Batch norm backward (host/conv/conv_cpu.c is the spec). With xhat = (x - mean) rstd:
//   dbeta = sum dy, dgamma = sum dy xhat over each channel's M = N H W values;
//   training:  dx = gamma rstd (dy - dbeta / M - xhat dgamma / M);
//   inference: rstd = 1 / sqrt(running_var + eps), dx = gamma rstd dy (frozen statistics).
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// rstd of channel c: the saved one (training) or from the running variance.
template <typename A>
__device__ __forceinline__ A bn_rstd(const dlk_k_batchnorm_desc &p, int64_t c) {
  const A stat = ldc<A>(p.save_rstd, c, 1);
  return p.training ? stat : (A)1 / m_sqrt(stat + (A)p.eps);
}

// Channel sums. Thread mapping: one block of 256 threads per channel (grid-stride over
// channels), threads striding over the M values; f64 per-thread sums combined by block
// sums (32 doubles of shared memory). Thread 0 writes dgamma/dbeta and the two sums to
// sums[2c], sums[2c + 1] (f64 workspace) for the dx pass.
template <typename T>
__global__ void batchnorm_bwd_sums_kernel(dlk_k_batchnorm_desc p, double *sums) {
  typedef typename AccT<T>::type S;
  __shared__ double sm[32];
  const dlk_k_img &x = p.x, &dy = p.dy;
  const int64_t M = x.n * x.h * x.w;
  for (int64_t c = blockIdx.x; c < x.c; c += gridDim.x) {
    const double mean = (double)ldc<S>(p.save_mean, c, 0), rstd = (double)bn_rstd<S>(p, c);
    double sdy = 0, sdyx = 0;
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      int64_t n, h, w;
      unflatten_m(m, x.h, x.w, n, h, w);
      const double d = (double)ld4<T>(dy, n, c, h, w);
      sdy += d;
      sdyx += d * ((double)ld4<T>(x, n, c, h, w) - mean) * rstd;
    }
    sdy = block_sum(sdy, sm);
    sdyx = block_sum(sdyx, sm);
    if (threadIdx.x == 0) {
      stc<S>(p.dgamma, c, (S)sdyx);
      stc<S>(p.dbeta, c, (S)sdy);
      if (sums) sums[2 * c] = sdy, sums[2 * c + 1] = sdyx;
    }
  }
}

// dx. Thread mapping: one thread per element, grid-stride over N*C*H*W in x's memory
// order; AccT math from the channel's sums (training) or the frozen rstd.
template <typename T>
__global__ void batchnorm_bwd_dx_kernel(dlk_k_batchnorm_desc p, const double *sums, bool cl) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &x = p.x, &dy = p.dy, &dx = p.dx;
  const int64_t total = x.n * x.c * x.h * x.w;
  const A M = (A)(x.n * x.h * x.w);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, h, w;
    unflatten4(i, x.c, x.h, x.w, cl, n, c, h, w);
    const A rstd = bn_rstd<A>(p, c), g = ldc<A>(p.gamma, c, 1), d = ld4<T>(dy, n, c, h, w);
    A v = d;
    if (p.training) {
      const A xhat = (ld4<T>(x, n, c, h, w) - ldc<A>(p.save_mean, c, 0)) * rstd;
      v = d - (A)sums[2 * c] / M - xhat * (A)sums[2 * c + 1] / M;
    }
    st4<T>(dx, n, c, h, w, g * rstd * v);
  }
}

template <typename T>
static int run_op(const dlk_k_batchnorm_desc *p, void *ws, void *stream) {
  const bool need_sums = (p->training && p->dx.data) || p->dgamma.data || p->dbeta.data;
  if (need_sums && p->x.c > 0) {
    DLK_LAUNCH(batchnorm_bwd_sums_kernel<T>, (unsigned)(p->x.c < 65535 ? p->x.c : 65535), 256, 0, stream)(*p, (double *)ws);
  }
  const int64_t total = p->x.n * p->x.c * p->x.h * p->x.w;
  if (p->dx.data && total > 0) {
    DLK_LAUNCH(batchnorm_bwd_dx_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, (const double *)ws, p->x.sc == 1 && p->x.c > 1);
  }
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t dlk_k_batchnorm_bwd_ws(const dlk_k_batchnorm_bwd_desc *a, int impl) {
  (void)impl;
  return (size_t)(2 * a->x.c) * sizeof(double);
}

extern "C" int dlk_k_batchnorm_bwd(const dlk_k_batchnorm_bwd_desc *a, int impl, void *ws, void *stream) {
  if (impl != 1) return (int)cudaErrorInvalidValue;
  if (a->x.c == 0) return 0;
  if (!ws) return (int)cudaErrorInvalidValue;
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_op<T>(a, ws, stream));
  return 0;
}
