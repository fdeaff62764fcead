/*
 * Plain-C pieces shared by every family's launcher header (kernels/<family>/<family>.h).
 *
 * The launcher convention, for every op of every family:
 *   int    dlk_k_<op>(const dlk_k_<op>_desc *a, int impl, void *ws, void *stream);
 *   size_t dlk_k_<op>_ws(const dlk_k_<op>_desc *a, int impl);              (when it needs ws)
 *   int    dlk_k_<op>_supports(const dlk_k_<op>_desc *a, int impl, char *why, size_t n);
 * `impl` is the kernel of the op's ladder (the variant row's impl), `ws` the workspace the
 * row's workspace() asked for (dlk_k_<op>_ws bytes), `stream` a cudaStream_t. A launcher
 * returns the cudaError_t of its launches as an int (0 = cudaSuccess) and leaves a
 * zero-sized problem as a no-op; _supports returns 1, or 0 with the reason in why.
 * Descriptors are plain C: device pointers (unless a field says HOST), strides in
 * elements, `dtype` a dlk_dtype value and `act` a dlk_activation value (include/dlk.h),
 * so these headers need no CUDA header. Kernels never call back into host/.
 */
#ifndef DLK_KERNELS_COMMON_H
#define DLK_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Element (b, r, c) at data[b*bs + r*rs + c*cs]; bs 0 for an operand shared by the batch.
   A 2-D matrix is the same with batch 1. */
typedef struct dlk_k_mat {
  void *data;
  int64_t batch, rows, cols;
  int64_t bs, rs, cs;
} dlk_k_mat;

/* Element i at data[i*s]. */
typedef struct dlk_k_vec {
  void *data;
  int64_t n, s;
} dlk_k_vec;

#endif /* DLK_KERNELS_COMMON_H */
