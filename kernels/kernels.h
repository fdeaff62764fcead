/*
 * C-callable launchers of the hand-written CUDA kernels (kernels/<family>.cu). Internal: host/
 * calls these; they never call back into host/. Each returns the cudaError_t of the
 * launch as an int (0 = cudaSuccess) and takes the stream as a void * (cudaStream_t), so
 * this header needs no CUDA header. Pointers are device pointers.
 */
#ifndef DLK_KERNELS_H
#define DLK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- core.cu ---- */

/* Probe: 0 when the kernels of this build can run on the current device, else the
   cudaError_t (cudaErrorNoKernelImageForDevice for an unsupported architecture). */
int dlk_k_probe(void);

/* Up to 8-d strided element copy: dst[offset(i, dst_strides)] = src[offset(i, src_strides)]
   for each row-major index i < numel. elem_size 1, 2, 4 or 8 bytes. */
typedef struct dlk_k_copy_desc {
  int ndim;
  int64_t shape[8];
  int64_t dst_strides[8];
  int64_t src_strides[8];
} dlk_k_copy_desc;
int dlk_k_strided_copy(void *dst, const void *src, const dlk_k_copy_desc *d, int64_t numel,
                       int elem_size, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_H */
