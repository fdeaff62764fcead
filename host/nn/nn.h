/*
 * nn family, internal: the argument record of every op (what host/nn/nn.c builds after
 * checking the public call) and the row functions each backend file provides.
 *
 * Files of the family:
 *   host/nn/nn.c         public functions, checks, argument records, shape keys, and each
 *                        op's variant table written out row by row
 *   host/nn/nn_cpu.c     id 0 of every op: the CPU reference (the spec)
 *   host/nn/nn_cuda.c    CUDA rows (1..9): supports() and run() per op, one pair for the
 *                        whole ladder, over the launchers of kernels/nn/nn.h
 *   kernels/nn/          the CUDA kernels, one .cu per op, each launcher under its kernels
 *   host/nn/nn_cublas.c  vendor rows (10, 11) of gemm: cuBLAS, cuBLASLt
 *   host/nn/nn_cudnn.c   vendor rows (10) of softmax: cuDNN
 *   tests/test_nn.c      every op x shape x dtype x variant against the CPU reference
 *
 * Conventions of the records: tensors are already checked (device, dtype, shapes) and
 * normalised: matrices are 2-D views [rows, cols] with any strides (dlk_as_matrix),
 * gemm operands are 3-D [batch, rows, cols] with batch stride 0 for a shared operand.
 * Optional tensors have a has_<name> flag; when it is false the tensor is zeroed.
 */
#ifndef DLK_NN_H
#define DLK_NN_H

#include "../core/internal.h"

/* gemm: c[b] = act(alpha * a[b] @ bb[b] + beta * c[b] + bias); z[b] (optional) gets the
   value before act. a [B,M,K], bmat [B,K,N], c [B,M,N], bias [N]. Used by dlk_gemm
   (no bias, act NONE) and dlk_linear_forward/backward (bmat is w transposed, a view). */
typedef struct dlk_gemm_args {
  dlk_tensor a, bmat, c;
  double alpha, beta;
  bool has_bias;
  dlk_tensor bias;
  dlk_activation act;
  bool has_z;
  dlk_tensor z;
} dlk_gemm_args;

/* bias_act_fwd: y = act(x + bias) on [R, C] views; bias [C]. x and y may alias exactly. */
typedef struct dlk_bias_act_fwd_args {
  dlk_activation act;
  dlk_tensor x, y;
  bool has_bias;
  dlk_tensor bias;
} dlk_bias_act_fwd_args;

/* bias_act_bwd: g = dy * act'(x + bias); dx = g (optional); dbias = column sums of g
   (optional). At least one of dx, dbias is present. */
typedef struct dlk_bias_act_bwd_args {
  dlk_activation act;
  dlk_tensor x, dy;
  bool has_bias;
  dlk_tensor bias;
  bool has_dx;
  dlk_tensor dx;
  bool has_dbias;
  dlk_tensor dbias;
} dlk_bias_act_bwd_args;

/* softmax_fwd / softmax_bwd over the last dim of [R, C] views. */
typedef struct dlk_softmax_fwd_args {
  bool log;
  dlk_tensor x, y;
} dlk_softmax_fwd_args;
typedef struct dlk_softmax_bwd_args {
  bool log;
  dlk_tensor y, dy, dx;
} dlk_softmax_bwd_args;

/* cross_entropy_fwd: logits [N, C], targets [N] (I32/I64), loss [1] (MEAN/SUM) or [N]
   (NONE), lse [N] optional. */
typedef struct dlk_cross_entropy_fwd_args {
  dlk_reduction reduction;
  int64_t ignore_index;
  dlk_tensor logits, targets, loss;
  bool has_lse;
  dlk_tensor lse;
} dlk_cross_entropy_fwd_args;
/* cross_entropy_bwd: dloss [1] or [N] like loss. */
typedef struct dlk_cross_entropy_bwd_args {
  dlk_reduction reduction;
  int64_t ignore_index;
  dlk_tensor logits, targets, dloss, dlogits;
} dlk_cross_entropy_bwd_args;

/* embedding_fwd: ids [N] (flattened), table [V, D], out [N, D]. */
typedef struct dlk_embedding_fwd_args {
  int64_t padding_idx;
  dlk_tensor ids, table, out;
} dlk_embedding_fwd_args;
/* embedding_bwd: dtable [V, D] = scatter-add of dout [N, D] rows by ids [N]; rows with
   padding_idx get zero. */
typedef struct dlk_embedding_bwd_args {
  int64_t padding_idx;
  dlk_tensor ids, dout, dtable;
} dlk_embedding_bwd_args;

/* layernorm_fwd / layernorm_bwd over the last dim of [R, D] views; mean/rstd [R]. */
typedef struct dlk_layernorm_fwd_args {
  double eps;
  dlk_tensor x, y;
  bool has_gamma, has_beta, has_mean, has_rstd;
  dlk_tensor gamma, beta, mean, rstd;
} dlk_layernorm_fwd_args;
typedef struct dlk_layernorm_bwd_args {
  double eps;
  dlk_tensor x, mean, rstd, dy;
  bool has_gamma;
  dlk_tensor gamma;
  bool has_dx, has_dgamma, has_dbeta;
  dlk_tensor dx, dgamma, dbeta;
} dlk_layernorm_bwd_args;

/* dropout (forward and backward are the same op: y = x * keep(i) / (1 - p) where i is
   the row-major index; backward passes dy as x). x, y same shape, any strides. */
typedef struct dlk_dropout_args {
  double prob;
  uint64_t seed, offset;
  dlk_tensor x, y;
} dlk_dropout_args;

/* Optimizer steps on contiguous flat tensors (all the same numel). */
typedef struct dlk_sgd_step_args {
  dlk_sgd_params p;
  int first_step; /* p.step == 1: the momentum buffer starts as the gradient */
  dlk_tensor param, grad;
  bool has_buf;
  dlk_tensor buf;
} dlk_sgd_step_args;
typedef struct dlk_adam_step_args {
  dlk_adam_params p;
  dlk_tensor param, grad, m, v;
} dlk_adam_step_args;
typedef struct dlk_adagrad_step_args {
  dlk_adagrad_params p;
  dlk_tensor param, grad, sum;
} dlk_adagrad_step_args;

/* The counter-based RNG of dropout, shared by the CPU reference and the kernels:
   a SplitMix64-style finaliser of (seed, counter); the top 53 bits give [0, 1). Kernels
   carry an identical copy (kernels/nn/pointwise.cu); the dropout sweep holds every
   variant's mask to the reference's. */
static inline uint64_t dlk_mix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* ---- the row functions of the variant tables in host/nn/nn.c ----
   Declared with core/internal.h's DLK_SUPPORTS_FN / DLK_WORKSPACE_FN / DLK_RUN_FN (the
   signatures of dlk_variant's callbacks). One supports/workspace/run triple serves a
   whole ladder, `impl` being the kernel number the row hands over. */

/* host/nn/nn_cpu.c: the CPU reference (id 0) of every op. */
DLK_RUN_FN(dlk_gemm_cpu_run);
DLK_RUN_FN(dlk_bias_act_fwd_cpu_run);
DLK_RUN_FN(dlk_bias_act_bwd_cpu_run);
DLK_RUN_FN(dlk_softmax_fwd_cpu_run);
DLK_RUN_FN(dlk_softmax_bwd_cpu_run);
DLK_RUN_FN(dlk_cross_entropy_fwd_cpu_run);
DLK_RUN_FN(dlk_cross_entropy_bwd_cpu_run);
DLK_RUN_FN(dlk_embedding_fwd_cpu_run);
DLK_WORKSPACE_FN(dlk_embedding_bwd_cpu_workspace);
DLK_RUN_FN(dlk_embedding_bwd_cpu_run);
DLK_RUN_FN(dlk_layernorm_fwd_cpu_run);
DLK_RUN_FN(dlk_layernorm_bwd_cpu_run);
DLK_RUN_FN(dlk_dropout_cpu_run);
DLK_RUN_FN(dlk_sgd_step_cpu_run);
DLK_RUN_FN(dlk_adam_step_cpu_run);
DLK_RUN_FN(dlk_adagrad_step_cpu_run);

#if DLK_HAVE_CUDA
/* host/nn/nn_cuda.c: the hand-written kernels (ids 1..9) of kernels/nn/. */
DLK_SUPPORTS_FN(dlk_gemm_cuda_supports);
DLK_RUN_FN(dlk_gemm_cuda_run);
DLK_SUPPORTS_FN(dlk_bias_act_fwd_cuda_supports);
DLK_RUN_FN(dlk_bias_act_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_bias_act_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_bias_act_bwd_cuda_workspace);
DLK_RUN_FN(dlk_bias_act_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_softmax_fwd_cuda_supports);
DLK_RUN_FN(dlk_softmax_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_softmax_bwd_cuda_supports);
DLK_RUN_FN(dlk_softmax_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_cross_entropy_fwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_cross_entropy_fwd_cuda_workspace);
DLK_RUN_FN(dlk_cross_entropy_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_cross_entropy_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_cross_entropy_bwd_cuda_workspace);
DLK_RUN_FN(dlk_cross_entropy_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_embedding_fwd_cuda_supports);
DLK_RUN_FN(dlk_embedding_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_embedding_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_embedding_bwd_cuda_workspace);
DLK_RUN_FN(dlk_embedding_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_layernorm_fwd_cuda_supports);
DLK_RUN_FN(dlk_layernorm_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_layernorm_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_layernorm_bwd_cuda_workspace);
DLK_RUN_FN(dlk_layernorm_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_dropout_cuda_supports);
DLK_RUN_FN(dlk_dropout_cuda_run);
DLK_SUPPORTS_FN(dlk_sgd_step_cuda_supports);
DLK_RUN_FN(dlk_sgd_step_cuda_run);
DLK_SUPPORTS_FN(dlk_adam_step_cuda_supports);
DLK_RUN_FN(dlk_adam_step_cuda_run);
DLK_SUPPORTS_FN(dlk_adagrad_step_cuda_supports);
DLK_RUN_FN(dlk_adagrad_step_cuda_run);

/* host/nn/nn_cublas.c: gemm through cuBLAS (id 10) and cuBLASLt (id 11). */
DLK_SUPPORTS_FN(dlk_gemm_cublas_supports);
DLK_RUN_FN(dlk_gemm_cublas_run);
DLK_WORKSPACE_FN(dlk_gemm_cublaslt_workspace);
DLK_RUN_FN(dlk_gemm_cublaslt_run);
#endif

#if DLK_HAVE_CUDNN
/* host/nn/nn_cudnn.c: softmax through cuDNN (id 10). */
DLK_SUPPORTS_FN(dlk_softmax_fwd_cudnn_supports);
DLK_RUN_FN(dlk_softmax_fwd_cudnn_run);
DLK_SUPPORTS_FN(dlk_softmax_bwd_cudnn_supports);
DLK_RUN_FN(dlk_softmax_bwd_cudnn_run);
#endif

#endif /* DLK_NN_H */
