/* conv family, part 2: the CUDA (1..9) variant rows per op, as lists that
   host/conv/cnnops.c splices into its tables after the CPU row. Rows live in
   host/conv/cnnops_cuda.c (kernels in kernels/conv/). Included only when DLK_HAVE_CUDA. */
#ifndef DLK_CONV_CNNOPS_CUDA_H
#define DLK_CONV_CNNOPS_CUDA_H

#include "../internal.h"

#define DLK_POOL2D_FWD_GPU_VARIANTS
#define DLK_POOL2D_BWD_GPU_VARIANTS
#define DLK_ADAPTIVE_POOL2D_FWD_GPU_VARIANTS
#define DLK_ADAPTIVE_POOL2D_BWD_GPU_VARIANTS
#define DLK_BATCHNORM_FWD_GPU_VARIANTS
#define DLK_BATCHNORM_BWD_GPU_VARIANTS
#define DLK_MSE_FWD_GPU_VARIANTS
#define DLK_MSE_BWD_GPU_VARIANTS

#endif /* DLK_CONV_CNNOPS_CUDA_H */
