/* nn family: the CUDA (1..9) and vendor (10+) variant rows per op, as lists that
   host/nn.c splices into its tables after the CPU row. Rows live in host/nn_cuda.c
   (hand-written kernels) and host/cublas/gemm_cublas.c (cuBLAS, cuBLASLt). */
#ifndef DLK_NN_CUDA_H
#define DLK_NN_CUDA_H

#include "internal.h"

#define DLK_GEMM_GPU_VARIANTS
#define DLK_BIAS_ACT_FWD_GPU_VARIANTS
#define DLK_BIAS_ACT_BWD_GPU_VARIANTS
#define DLK_SOFTMAX_FWD_GPU_VARIANTS
#define DLK_SOFTMAX_BWD_GPU_VARIANTS
#define DLK_XENT_FWD_GPU_VARIANTS
#define DLK_XENT_BWD_GPU_VARIANTS
#define DLK_EMBEDDING_FWD_GPU_VARIANTS
#define DLK_EMBEDDING_BWD_GPU_VARIANTS
#define DLK_LAYERNORM_FWD_GPU_VARIANTS
#define DLK_LAYERNORM_BWD_GPU_VARIANTS
#define DLK_DROPOUT_GPU_VARIANTS
#define DLK_SGD_GPU_VARIANTS
#define DLK_ADAM_GPU_VARIANTS
#define DLK_ADAGRAD_GPU_VARIANTS

#endif /* DLK_NN_CUDA_H */
