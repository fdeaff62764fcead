/* nn family: the CUDA (1..9) and vendor (10+) variant rows per op, as lists that
   host/nn.c splices into its tables after the CPU row. Rows live in host/nn_cuda.c
   (hand-written kernels, kernels/nn.cu and kernels/nn_gemm.cu) and
   host/cublas/gemm_cublas.c (cuBLAS, cuBLASLt) and host/cudnn/softmax_cudnn.c. Included only when
   DLK_HAVE_CUDA. */
#ifndef DLK_NN_CUDA_H
#define DLK_NN_CUDA_H

#include "../core/internal.h"

/* host/nn_cuda.c */
extern const dlk_variant dlk_gemm_naive, dlk_gemm_tiled, dlk_gemm_mma, dlk_gemm_wgmma;
extern const dlk_variant dlk_bias_act_fwd_simple, dlk_bias_act_fwd_vec;
extern const dlk_variant dlk_bias_act_bwd_simple, dlk_bias_act_bwd_tiled;
extern const dlk_variant dlk_softmax_fwd_thread, dlk_softmax_fwd_warp, dlk_softmax_fwd_block;
extern const dlk_variant dlk_softmax_bwd_thread, dlk_softmax_bwd_warp, dlk_softmax_bwd_block;
extern const dlk_variant dlk_xent_fwd_thread, dlk_xent_fwd_block;
extern const dlk_variant dlk_xent_bwd_thread, dlk_xent_bwd_block;
extern const dlk_variant dlk_embedding_fwd_simple, dlk_embedding_fwd_vec;
extern const dlk_variant dlk_embedding_bwd_atomic, dlk_embedding_bwd_sorted;
extern const dlk_variant dlk_layernorm_fwd_thread, dlk_layernorm_fwd_warp;
extern const dlk_variant dlk_layernorm_bwd_simple, dlk_layernorm_bwd_warp;
extern const dlk_variant dlk_dropout_strided, dlk_dropout_vec;
extern const dlk_variant dlk_sgd_simple, dlk_sgd_vec;
extern const dlk_variant dlk_adam_simple, dlk_adam_vec;
extern const dlk_variant dlk_adagrad_simple, dlk_adagrad_vec;
/* host/cublas/gemm_cublas.c */
extern const dlk_variant dlk_gemm_cublas, dlk_gemm_cublaslt;
/* host/cudnn/softmax_cudnn.c (built only with cuDNN) */
#if DLK_HAVE_CUDNN
extern const dlk_variant dlk_softmax_fwd_cudnn, dlk_softmax_bwd_cudnn;
#define DLK_SOFTMAX_FWD_CUDNN_VARIANTS &dlk_softmax_fwd_cudnn,
#define DLK_SOFTMAX_BWD_CUDNN_VARIANTS &dlk_softmax_bwd_cudnn,
#else
#define DLK_SOFTMAX_FWD_CUDNN_VARIANTS
#define DLK_SOFTMAX_BWD_CUDNN_VARIANTS
#endif

#define DLK_GEMM_GPU_VARIANTS                                                         \
  &dlk_gemm_naive, &dlk_gemm_tiled, &dlk_gemm_mma, &dlk_gemm_wgmma, &dlk_gemm_cublas, \
      &dlk_gemm_cublaslt,
#define DLK_BIAS_ACT_FWD_GPU_VARIANTS &dlk_bias_act_fwd_simple, &dlk_bias_act_fwd_vec,
#define DLK_BIAS_ACT_BWD_GPU_VARIANTS &dlk_bias_act_bwd_simple, &dlk_bias_act_bwd_tiled,
#define DLK_SOFTMAX_FWD_GPU_VARIANTS                                      \
  &dlk_softmax_fwd_thread, &dlk_softmax_fwd_warp, &dlk_softmax_fwd_block, \
      DLK_SOFTMAX_FWD_CUDNN_VARIANTS
#define DLK_SOFTMAX_BWD_GPU_VARIANTS                                      \
  &dlk_softmax_bwd_thread, &dlk_softmax_bwd_warp, &dlk_softmax_bwd_block, \
      DLK_SOFTMAX_BWD_CUDNN_VARIANTS
#define DLK_XENT_FWD_GPU_VARIANTS &dlk_xent_fwd_thread, &dlk_xent_fwd_block,
#define DLK_XENT_BWD_GPU_VARIANTS &dlk_xent_bwd_thread, &dlk_xent_bwd_block,
#define DLK_EMBEDDING_FWD_GPU_VARIANTS &dlk_embedding_fwd_simple, &dlk_embedding_fwd_vec,
#define DLK_EMBEDDING_BWD_GPU_VARIANTS &dlk_embedding_bwd_atomic, &dlk_embedding_bwd_sorted,
#define DLK_LAYERNORM_FWD_GPU_VARIANTS &dlk_layernorm_fwd_thread, &dlk_layernorm_fwd_warp,
#define DLK_LAYERNORM_BWD_GPU_VARIANTS &dlk_layernorm_bwd_simple, &dlk_layernorm_bwd_warp,
#define DLK_DROPOUT_GPU_VARIANTS &dlk_dropout_strided, &dlk_dropout_vec,
#define DLK_SGD_GPU_VARIANTS &dlk_sgd_simple, &dlk_sgd_vec,
#define DLK_ADAM_GPU_VARIANTS &dlk_adam_simple, &dlk_adam_vec,
#define DLK_ADAGRAD_GPU_VARIANTS &dlk_adagrad_simple, &dlk_adagrad_vec,

#endif /* DLK_NN_CUDA_H */
