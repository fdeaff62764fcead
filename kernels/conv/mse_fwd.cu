// MSE loss forward: l_i = (x_i - t_i)^2; MEAN sum / numel (0 / 0 = NaN when empty, as
// torch), SUM sum, NONE l. host/conv/conv_cpu.c is the spec.
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Element offsets of row-major index i in x, target and (NONE) loss: flat when CONTIG,
// else through each tensor's strides.
template <bool CONTIG>
__device__ __forceinline__ void mse_offsets(const dlk_k_mse_desc &p, int64_t i, int64_t &ox, int64_t &ot,
                                            int64_t &ol) {
  if (CONTIG) {
    ox = ot = ol = i;
    return;
  }
  ox = ot = ol = 0;
  for (int k = p.ndim - 1; k >= 0; k--) {
    const int64_t j = i % p.shape[k];
    i /= p.shape[k];
    ox += j * p.sx[k], ot += j * p.st[k], ol += j * p.sl[k];
  }
}

// NONE. Thread mapping: one thread per element, grid-stride; AccT math, the loss in its
// dtype (f32; f64 for f64).
template <typename T, bool CONTIG>
__global__ void mse_none_kernel(dlk_k_mse_desc p) {
  typedef typename AccT<T>::type S;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.numel; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ox, ot, ol;
    mse_offsets<CONTIG>(p, i, ox, ot, ol);
    const S d = to_acc(((const T *)p.x)[ox]) - to_acc(((const T *)p.target)[ot]);
    ((S *)p.loss)[ol] = d * d;
  }
}

// MEAN/SUM, pass 1. Thread mapping: grid-stride over the elements, one f64 sum per thread,
// a block sum (32 doubles of shared memory) into partial[blockIdx.x].
template <typename T, bool CONTIG>
__global__ void mse_partial_kernel(dlk_k_mse_desc p, double *partial) {
  __shared__ double sm[32];
  double s = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.numel; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ox, ot, ol;
    mse_offsets<CONTIG>(p, i, ox, ot, ol);
    const double d = (double)to_acc(((const T *)p.x)[ox]) - (double)to_acc(((const T *)p.target)[ot]);
    s += d * d;
  }
  s = block_sum(s, sm);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// MEAN/SUM, pass 2: one block adds the partials in a fixed order (deterministic) and
// writes the loss.
template <typename T>
__global__ void mse_final_kernel(dlk_k_mse_desc p, const double *partial, int nparts) {
  typedef typename AccT<T>::type S;
  __shared__ double sm[32];
  double s = 0;
  for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += partial[i];
  s = block_sum(s, sm);
  if (threadIdx.x == 0) *(S *)p.loss = (S)(p.reduction == 0 ? s / (double)p.numel : s);
}

// Blocks of pass 1 (and partials in the workspace): enough to fill the GPU, at most 1024.
static int mse_parts(int64_t numel) {
  unsigned g = grid_for(numel, 256);
  return (int)(g < 1024 ? g : 1024);
}

template <typename T, bool CONTIG>
static int run_op(const dlk_k_mse_desc *p, void *ws, void *stream) {
  if (p->reduction == 2) {
    if (p->numel == 0) return 0;
    DLK_LAUNCH(mse_none_kernel<T, CONTIG>, grid_for(p->numel, 256), 256, 0, stream)(*p);
  } else {
    const int parts = mse_parts(p->numel);
    DLK_LAUNCH(mse_partial_kernel<T, CONTIG>, parts, 256, 0, stream)(*p, (double *)ws);
    DLK_LAUNCH(mse_final_kernel<T>, 1, 1024, 0, stream)(*p, (const double *)ws, parts);
  }
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t dlk_k_mse_fwd_ws(const dlk_k_mse_fwd_desc *a, int impl) {
  (void)impl;
  return a->reduction == 2 ? 0 : (size_t)mse_parts(a->numel) * sizeof(double);
}

extern "C" int dlk_k_mse_fwd(const dlk_k_mse_fwd_desc *a, int impl, void *ws, void *stream) {
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  if (a->reduction != 2 && !ws) return (int)cudaErrorInvalidValue;
  if (impl == 2) {
    DLK_DISPATCH_FLOAT(a->dtype, T, return (run_op<T, true>(a, ws, stream)));
  } else {
    DLK_DISPATCH_FLOAT(a->dtype, T, return (run_op<T, false>(a, ws, stream)));
  }
  return 0;
}
