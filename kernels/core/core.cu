// Core kernels: the architecture probe and the N-d strided copy behind dlk_tensor_copy.
// Launchers in kernels/core/core.h, each right under its kernel.
#include "../common.cuh"
#include "core.h"

namespace {

__global__ void dlk_probe_kernel(int *p) {
  if (p) *p = 1;
}

}  // namespace

extern "C" int dlk_k_probe(void) {
  // cudaFuncGetAttributes fails with cudaErrorNoKernelImageForDevice when this binary
  // holds neither SASS for the device nor PTX it can JIT: the check context creation
  // turns into DLK_ERR_ARCH_UNSUPPORTED.
  cudaFuncAttributes attr;
  return (int)cudaFuncGetAttributes(&attr, dlk_probe_kernel);
}

namespace {

// Thread mapping: a grid-stride loop over the row-major linear index i of the shape; each
// thread peels i into coordinates (last dim fastest) and forms both offsets. The element
// is moved as an integer of elem_size bytes, so every dtype shares one kernel. No shared
// memory.
template <typename T>
__global__ void strided_copy_kernel(T *__restrict__ dst, const T *__restrict__ src,
                                    dlk_k_strided_copy_desc d) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < d.numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rem = i, so = 0, dof = 0;
    for (int k = d.ndim - 1; k >= 0; k--) {
      int64_t c = rem % d.shape[k];
      rem /= d.shape[k];
      so += c * d.src_strides[k];
      dof += c * d.dst_strides[k];
    }
    dst[dof] = src[so];
  }
}

template <typename T>
int launch_copy(const dlk_k_strided_copy_desc *d, cudaStream_t st) {
  int threads = 256;
  int64_t blocks = (d->numel + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  DLK_LAUNCH(strided_copy_kernel<T>, (unsigned)blocks, threads, 0, st)((T *)d->dst, (const T *)d->src, *d);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_strided_copy(const dlk_k_strided_copy_desc *a, int impl, void *ws, void *stream) {
  (void)ws;
  if (a->numel <= 0) return 0;
  if (impl != 1) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  switch (a->elem_size) {
    case 1: return launch_copy<unsigned char>(a, st);
    case 2: return launch_copy<unsigned short>(a, st);
    case 4: return launch_copy<unsigned int>(a, st);
    case 8: return launch_copy<unsigned long long>(a, st);
    default: return (int)cudaErrorInvalidValue;
  }
}
