// Core kernels: the architecture probe and the N-d strided copy behind dlk_tensor_copy.
#include <cuda_runtime.h>

#include "kernels.h"

__global__ void dlk_probe_kernel(int *p) {
  if (p) *p = 1;
}

extern "C" int dlk_k_probe(void) {
  // cudaFuncGetAttributes fails with cudaErrorNoKernelImageForDevice when this binary
  // holds neither SASS for the device nor PTX it can JIT: the check context creation
  // turns into DLK_ERR_ARCH_UNSUPPORTED.
  cudaFuncAttributes attr;
  return (int)cudaFuncGetAttributes(&attr, dlk_probe_kernel);
}

// Thread mapping: a grid-stride loop over the row-major linear index i of the shape; each
// thread peels i into coordinates (last dim fastest) and forms both offsets. The element
// is moved as an integer of elem_size bytes, so every dtype shares one kernel.
template <typename T>
__global__ void strided_copy_kernel(T *__restrict__ dst, const T *__restrict__ src,
                                    dlk_k_copy_desc d, int64_t numel) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel;
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
static int launch_copy(void *dst, const void *src, const dlk_k_copy_desc *d, int64_t numel,
                       cudaStream_t st) {
  int threads = 256;
  int64_t blocks = (numel + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  strided_copy_kernel<T><<<(unsigned)blocks, threads, 0, st>>>((T *)dst, (const T *)src, *d, numel);
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_strided_copy(void *dst, const void *src, const dlk_k_copy_desc *d,
                                  int64_t numel, int elem_size, void *stream) {
  if (numel <= 0) return 0;
  cudaStream_t st = (cudaStream_t)stream;
  switch (elem_size) {
    case 1: return launch_copy<unsigned char>(dst, src, d, numel, st);
    case 2: return launch_copy<unsigned short>(dst, src, d, numel, st);
    case 4: return launch_copy<unsigned int>(dst, src, d, numel, st);
    case 8: return launch_copy<unsigned long long>(dst, src, d, numel, st);
    default: return (int)cudaErrorInvalidValue;
  }
}
