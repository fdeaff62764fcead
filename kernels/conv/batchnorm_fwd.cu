// Batch norm forward over dim 1 of x [N, C, H, W] (host/conv/conv_cpu.c is the spec):
//   training: mean, biased var over the M = N H W values of each channel, rstd =
//             1 / sqrt(var + eps); save_mean, save_rstd written; running stats updated as
//             torch (unbiased variance M / (M - 1)); y = (x - mean) rstd gamma + beta;
//   inference: y from the running statistics.
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Training statistics. Thread mapping: one block of 256 threads per channel (grid-stride
// over channels); the threads stride over the channel's M values (w fastest). Two passes
// over x, each summed in f64 per thread and combined by a block sum (warp shuffles, then
// the warps' partials in order through 32 doubles of shared memory): the mean, then the
// sum of squared deviations. Thread 0 writes the statistics.
template <typename T>
__global__ void batchnorm_stats_kernel(dlk_k_batchnorm_desc p) {
  typedef typename AccT<T>::type S; /* the statistics' dtype: f32, f64 for f64 */
  __shared__ double sm[32];
  const dlk_k_img &x = p.x;
  const int64_t M = x.n * x.h * x.w;
  for (int64_t c = blockIdx.x; c < x.c; c += gridDim.x) {
    double s = 0;
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      int64_t n, h, w;
      unflatten_m(m, x.h, x.w, n, h, w);
      s += (double)ld4<T>(x, n, c, h, w);
    }
    const double mean = block_sum(s, sm) / (double)M;
    double q = 0;
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      int64_t n, h, w;
      unflatten_m(m, x.h, x.w, n, h, w);
      const double d = (double)ld4<T>(x, n, c, h, w) - mean;
      q += d * d;
    }
    const double var = block_sum(q, sm) / (double)M;
    if (threadIdx.x == 0) {
      stc<S>(p.save_mean, c, (S)mean);
      stc<S>(p.save_rstd, c, (S)(1.0 / sqrt(var + p.eps)));
      if (p.running_mean.data) {
        const double mom = p.momentum, unbiased = var * (double)M / (double)(M - 1);
        S *rm = (S *)p.running_mean.data + c * p.running_mean.s, *rv = (S *)p.running_var.data + c * p.running_var.s;
        *rm = (S)((1.0 - mom) * (double)*rm + mom * mean);
        *rv = (S)((1.0 - mom) * (double)*rv + mom * unbiased);
      }
    }
  }
}

// Normalisation. Thread mapping: one thread per element, grid-stride over N*C*H*W in x's
// memory order (channel-innermost for channels-last x). Each thread reads its channel's
// mean and rstd (saved, or from the running statistics) and gamma, beta; AccT math.
template <typename T>
__global__ void batchnorm_apply_kernel(dlk_k_batchnorm_desc p, bool cl) {
  typedef typename AccT<T>::type A;
  const dlk_k_img &x = p.x, &y = p.y;
  const int64_t total = x.n * x.c * x.h * x.w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n, c, h, w;
    unflatten4(i, x.c, x.h, x.w, cl, n, c, h, w);
    A mean, rstd;
    if (p.training) {
      mean = ldc<A>(p.save_mean, c, 0), rstd = ldc<A>(p.save_rstd, c, 1);
    } else {
      mean = ldc<A>(p.running_mean, c, 0);
      rstd = (A)1 / m_sqrt(ldc<A>(p.running_var, c, 1) + (A)p.eps);
    }
    const A g = ldc<A>(p.gamma, c, 1), b = ldc<A>(p.beta, c, 0);
    st4<T>(y, n, c, h, w, (ld4<T>(x, n, c, h, w) - mean) * rstd * g + b);
  }
}

template <typename T>
static int run_op(const dlk_k_batchnorm_desc *p, void *stream) {
  if (p->training) {
    DLK_LAUNCH(batchnorm_stats_kernel<T>, (unsigned)(p->x.c < 65535 ? p->x.c : 65535), 256, 0, stream)(*p);
  }
  const int64_t total = p->x.n * p->x.c * p->x.h * p->x.w;
  DLK_LAUNCH(batchnorm_apply_kernel<T>, grid_for(total, 256), 256, 0, stream)(*p, p->x.sc == 1 && p->x.c > 1);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_batchnorm_fwd(const dlk_k_batchnorm_fwd_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (impl != 1) return (int)cudaErrorInvalidValue;
  if (a->x.n * a->x.c * a->x.h * a->x.w == 0) return 0; /* training with M = 0 writes nothing */
  DLK_DISPATCH_FLOAT(a->dtype, T, return run_op<T>(a, stream));
  return 0;
}
