/*
 * C-callable launchers of the core kernels (kernels/core/core.cu), used by host/core:
 * the architecture probe and the N-d strided copy behind dlk_tensor_copy. Conventions in
 * kernels/common.h.
 */
#ifndef DLK_KERNELS_CORE_H
#define DLK_KERNELS_CORE_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Probe: 0 when the kernels of this build can run on the current device, else the
   cudaError_t (cudaErrorNoKernelImageForDevice for an unsupported architecture). */
int dlk_k_probe(void);

/* Up to 8-d strided element copy: dst[offset(i, dst_strides)] = src[offset(i, src_strides)]
   for each row-major index i < numel. elem_size 1, 2, 4 or 8 bytes. impl 1 (the one
   kernel: one thread per element, grid-stride); no workspace. */
typedef struct dlk_k_strided_copy_desc {
  void *dst;
  const void *src;
  int64_t numel;
  int elem_size;
  int ndim;
  int64_t shape[8];
  int64_t dst_strides[8];
  int64_t src_strides[8];
} dlk_k_strided_copy_desc;
int dlk_k_strided_copy(const dlk_k_strided_copy_desc *a, int impl, void *ws, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_CORE_H */
