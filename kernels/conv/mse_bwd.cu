// MSE loss backward: dx_i = 2 (x_i - t_i) scale_i, scale_i = dloss_i (NONE), dloss (SUM),
// dloss / numel (MEAN). host/conv/conv_cpu.c is the spec.
#include "cnnops_common.cuh"

using namespace dlk;
using namespace dlk::cnn;

namespace {

// Thread mapping: one thread per element, grid-stride; offsets flat when CONTIG, else
// through each tensor's strides from the row-major index. AccT math.
template <typename T, bool CONTIG>
__global__ void mse_bwd_kernel(dlk_k_mse_desc p) {
  typedef typename AccT<T>::type A;
  const A* dl = (const A *)p.dloss;
  A scale = 0;
  if (p.reduction != 2) scale = p.reduction == 1 ? dl[0] : dl[0] / (A)p.numel;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.numel; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ox = i, ot = i, ol = i, od = i;
    if (!CONTIG) {
      ox = ot = ol = od = 0;
      int64_t r = i;
      for (int k = p.ndim - 1; k >= 0; k--) {
        const int64_t j = r % p.shape[k];
        r /= p.shape[k];
        ox += j * p.sx[k], ot += j * p.st[k], ol += j * p.sl[k], od += j * p.sdx[k];
      }
    }
    const A s = p.reduction == 2 ? dl[ol] : scale;
    const A d = to_acc(((const T *)p.x)[ox]) - to_acc(((const T *)p.target)[ot]);
    ((T *)p.dx)[od] = from_acc<T>((A)2 * d * s);
  }
}

template <typename T, bool CONTIG>
static int run_op(const dlk_k_mse_desc *p, void *stream) {
  DLK_LAUNCH(mse_bwd_kernel<T, CONTIG>, grid_for(p->numel, 256), 256, 0, stream)(*p);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_mse_bwd(const dlk_k_mse_bwd_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (impl != 1 && impl != 2) return (int)cudaErrorInvalidValue;
  if (a->numel == 0) return 0;
  if (impl == 2) {
    DLK_DISPATCH_FLOAT(a->dtype, T, return (run_op<T, true>(a, stream)));
  } else {
    DLK_DISPATCH_FLOAT(a->dtype, T, return (run_op<T, false>(a, stream)));
  }
  return 0;
}
