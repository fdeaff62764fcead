/*
 * C-callable launchers of the nn family's kernels, used by the CUDA and vendor rows of
 * host/nn/ (nn_cuda.c, nn_cublas.c). One .cu file per op, each launcher right under its
 * kernels:
 *   gemm.cu (1 naive, 2 tiled, 3 mma_tc, the vendor epilogue)  gemm_sm90.cu (4 wgmma)
 *   pointwise.cu (bias + activation, dropout)  softmax.cu  cross_entropy.cu  check_ids.cu
 *   embedding.cu  layernorm.cu  optim.cu (SGD, Adam, AdaGrad)
 * The launcher convention (dlk_k_<op>(desc, impl, ws, stream), _ws, _supports) and the
 * shared descriptor pieces dlk_k_mat / dlk_k_vec are in kernels/common.h.
 */
#ifndef DLK_KERNELS_NN_H
#define DLK_KERNELS_NN_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- gemm (gemm.cu, gemm_sm90.cu) ----
   c = act(alpha * a @ b + beta * c + bias), z = the value before act.
   a [B,M,K], b [B,K,N], c and z [B,M,N], bias [N]; one dtype for all. beta == 0 never
   reads c. z.data / bias.data NULL: absent. */
typedef struct dlk_k_gemm_desc {
  int dtype;
  int act;
  double alpha, beta;
  dlk_k_mat a, b, c, z;
  dlk_k_vec bias;
  int add_bias; /* dlk_k_gemm_epilogue only: 0 when the library already added the bias */
  /* Optional (NULL: none): impl 4 writes the detail of a failure that is not a plain CUDA
     error here (tensor-map encoding, entry-point lookup, refused shape). */
  char *err;
  size_t err_len;
} dlk_k_gemm_desc;
/* impl 1 "naive": one thread per output element; F32/F16/BF16/F64; any strides.
   impl 2 "tiled": 64x64 shared-memory tiles, 4x4 per thread; F32/F16/BF16 (f32 math),
     F64; any strides.
   impl 3 "mma_tc": tensor cores (mma.sync m16n8k16, f32 accumulate) for F16/BF16.
   impl 4 "wgmma": Hopper tensor cores, wgmma.mma_async fed by TMA (cp.async.bulk.tensor)
     through a 4-stage mbarrier pipeline, 128x256x64 block tile, one producer and two
     consumer warpgroups; F16/BF16, sm_90a only (the kernel has a body only when the
     build's DLK_CUDA_ARCHS lists 90a; the caller checks the device is 9.0).
   No workspace. */
int dlk_k_gemm(const dlk_k_gemm_desc *a, int impl, void *ws, void *stream);
/* impl 1, 2: 1. impl 3: the operands fit the mma kernel's loads ("a rows not 16-byte
   aligned: leading stride 100 not a positive multiple of 8"). impl 4: they fit TMA's
   rules (each operand with a unit stride along k or along m/n, 16-byte aligned base,
   leading and batch strides multiples of 8, k > 0). Host code only: callable without a
   GPU. */
int dlk_k_gemm_supports(const dlk_k_gemm_desc *a, int impl, char *why, size_t why_len);
/* The epilogue alone over c, after a vendor gemm wrote alpha*a@b + beta*c there:
   v = c + bias (when add_bias); z = v; c = act(v). */
int dlk_k_gemm_epilogue(const dlk_k_gemm_desc *a, void *stream);

/* ---- bias + activation (pointwise.cu) ----
   Element (r, c) of x, y, dy, dx as dlk_k_mat with batch 1. */
typedef struct dlk_k_bias_act_desc {
  int dtype;
  int act;
  dlk_k_mat x, y;   /* forward: y = act(x + bias) (x may alias y exactly) */
  dlk_k_mat dy, dx; /* backward: g = dy * act'(x + bias); dx = g (dx.data NULL: absent) */
  dlk_k_vec bias;   /* NULL data: none */
  dlk_k_vec dbias;  /* backward: column sums of g (NULL data: absent) */
} dlk_k_bias_act_desc;
/* Forward. impl 1 "simple": one thread per element, any strides. impl 2 "vec": 16-byte
   vectors; needs dlk_k_bias_act_fwd_supports. No workspace. */
int dlk_k_bias_act_fwd_supports(const dlk_k_bias_act_desc *a, int impl, char *why, size_t n);
int dlk_k_bias_act_fwd(const dlk_k_bias_act_desc *a, int impl, void *ws, void *stream);
/* Backward. impl 1 "simple": dx elementwise, dbias one thread per column over all rows.
   impl 2 "tiled": one pass writes dx and per-chunk column partial sums into ws, a second
   sums the chunks in order (deterministic, no atomics). */
size_t dlk_k_bias_act_bwd_ws(const dlk_k_bias_act_desc *a, int impl);
int dlk_k_bias_act_bwd(const dlk_k_bias_act_desc *a, int impl, void *ws, void *stream);

/* ---- softmax (softmax.cu) ----
   Over the last dim of [R, C] views. Forward: y = softmax(x) or log_softmax(x); backward
   from y: dx = y*(dy - sum(dy*y)), or for log: dx = dy - exp(y)*sum(dy).
   impl 1 one thread per row, 2 one warp per row, 3 one block per row (2 and 3: online
   single-pass max/sum, 16-byte vectors when rows are contiguous and aligned). No
   workspace. */
typedef struct dlk_k_softmax_desc {
  int dtype;
  int log;
  dlk_k_mat x, y;   /* forward */
  dlk_k_mat dy, dx; /* backward (reads y) */
} dlk_k_softmax_desc;
int dlk_k_softmax_fwd(const dlk_k_softmax_desc *a, int impl, void *ws, void *stream);
int dlk_k_softmax_bwd(const dlk_k_softmax_desc *a, int impl, void *ws, void *stream);

/* ---- id range check for gathers (check_ids.cu) ----
   Embedding ids and cross-entropy targets: one block scans ids (I32/I64, n entries,
   stride s) and writes to `flag` (host-mapped memory the caller reads after
   synchronising): flag[0] = first position whose id is outside [0, limit) and != skip
   (or -1), flag[1] = that id. `use_skip` 0: no id is skipped. A helper the rows share,
   not an op: (desc, stream). */
typedef struct dlk_k_check_ids_desc {
  dlk_k_vec ids;
  int id_dtype;
  int64_t limit;
  int use_skip;
  int64_t skip;
  int64_t *flag;
} dlk_k_check_ids_desc;
int dlk_k_check_ids(const dlk_k_check_ids_desc *a, void *stream);

/* ---- cross-entropy (cross_entropy.cu) ----
   Over logits [N, C]; targets [N] I32/I64. Loss dtype F32 for F16/BF16 logits, else the
   logits' dtype (F32/F64); lse likewise F32/F64. reduction: a dlk_reduction value. A
   target outside [0, C) (not ignore_index) gives NaN loss and a NaN gradient row; never
   an out-of-bounds read. impl 1 thread per row, 2 block per row. ws:
   dlk_k_cross_entropy_ws bytes (per-row losses, summed in a fixed order; the MEAN count
   for backward). */
typedef struct dlk_k_cross_entropy_desc {
  int dtype;      /* logits, dlogits */
  int loss_dtype; /* loss, dloss, lse: F32 or F64 */
  int target_dtype;
  int reduction;
  int64_t ignore_index;
  dlk_k_mat logits, dlogits;
  dlk_k_vec targets, loss, lse, dloss; /* lse.data NULL: absent; loss.n 1 or N */
} dlk_k_cross_entropy_desc;
size_t dlk_k_cross_entropy_ws(const dlk_k_cross_entropy_desc *a, int impl);
int dlk_k_cross_entropy_fwd(const dlk_k_cross_entropy_desc *a, int impl, void *ws, void *stream);
/* dlogits = dloss_i * (softmax(x_i) - onehot(t_i)) (/ count for MEAN, count of the
   non-ignored targets: computed on the device into ws). */
int dlk_k_cross_entropy_bwd(const dlk_k_cross_entropy_desc *a, int impl, void *ws, void *stream);

/* ---- embedding (embedding.cu) ----
   ids [N] (I32/I64), table [V, D], out [N, D]. */
typedef struct dlk_k_embedding_desc {
  int dtype;
  int id_dtype;
  int64_t padding_idx; /* backward: that row gets zero gradient; -1 none */
  dlk_k_vec ids;
  dlk_k_mat table, out; /* forward: table -> out; backward: out is dout, table is dtable */
} dlk_k_embedding_desc;
/* Forward. impl 1: one thread per element, any strides; 2: one warp per row with 16-byte
   vectors (needs dlk_k_embedding_fwd_supports). An id outside [0, V) gives a zero row.
   No workspace. */
int dlk_k_embedding_fwd_supports(const dlk_k_embedding_desc *a, int impl, char *why, size_t n);
int dlk_k_embedding_fwd(const dlk_k_embedding_desc *a, int impl, void *ws, void *stream);
/* Backward. impl 1 "atomic": zero dtable, then atomicAdd scatter (F32/F64; order-
   dependent rounding, so not deterministic); no workspace. impl 2 "sorted": radix-sort
   (id, position) pairs in ws, then one warp per run of equal ids sums its rows in
   position order (deterministic); _supports says when the sort cannot be sized. */
int dlk_k_embedding_bwd_supports(const dlk_k_embedding_desc *a, int impl, char *why, size_t n);
size_t dlk_k_embedding_bwd_ws(const dlk_k_embedding_desc *a, int impl);
int dlk_k_embedding_bwd(const dlk_k_embedding_desc *a, int impl, void *ws, void *stream);

/* ---- layer norm (layernorm.cu) ----
   Over the last dim D of [R, D] views. mean/rstd [R] F32 (F64 for F64 x). */
typedef struct dlk_k_layernorm_desc {
  int dtype;
  double eps;
  dlk_k_mat x, y, dy, dx;
  dlk_k_vec gamma, beta, mean, rstd, dgamma, dbeta; /* NULL data: absent */
} dlk_k_layernorm_desc;
/* impl 1: one thread per row; 2: one warp per row (two-pass mean/variance). No
   workspace. */
int dlk_k_layernorm_fwd(const dlk_k_layernorm_desc *a, int impl, void *ws, void *stream);
/* Backward: xhat = (x - mean)*rstd, g = dy*gamma; dx = rstd*(g - mean(g) -
   xhat*mean(g*xhat)); dgamma = sum_rows dy*xhat; dbeta = sum_rows dy.
   impl 1: thread per row / thread per column; 2: warp per row, column sums by row
   chunks into ws then a fixed-order pass (deterministic). */
size_t dlk_k_layernorm_bwd_ws(const dlk_k_layernorm_desc *a, int impl);
int dlk_k_layernorm_bwd(const dlk_k_layernorm_desc *a, int impl, void *ws, void *stream);

/* ---- dropout (pointwise.cu) ----
   y = x * (u(seed, offset + i) >= prob) / (1 - prob), i the row-major index of an
   up-to-8-d shape. impl 1: any strides; 2: contiguous, 16-byte vectors (needs
   dlk_k_dropout_supports). No workspace. */
typedef struct dlk_k_dropout_desc {
  int dtype;
  double prob;
  uint64_t seed, offset;
  int ndim;
  int64_t shape[8], x_strides[8], y_strides[8];
  const void *x;
  void *y;
} dlk_k_dropout_desc;
int dlk_k_dropout_supports(const dlk_k_dropout_desc *a, int impl, char *why, size_t n);
int dlk_k_dropout(const dlk_k_dropout_desc *a, int impl, void *ws, void *stream);
/* The device copy of dlk_mix64 (host/nn/nn.h), for a test that compares the two: writes
   n values of mix64(seed, counter0 + i) to out (device memory). */
int dlk_k_mix64_fill(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out, void *stream);

/* ---- optimizer steps (optim.cu) ----
   On contiguous flat tensors of n elements; param and grad `dtype`, state F32 (F64 for
   F64). Scalars are prepared on the host (double) exactly as torch.optim. impl 1: one
   element per thread; 2: 4 elements per thread with vector loads (needs every pointer
   aligned to 4 elements; given less it runs impl 1). No workspace. */
typedef struct dlk_k_sgd_step_desc {
  int dtype;
  int64_t n;
  double lr, momentum, dampening, weight_decay;
  int nesterov, first_step;
  void *param;
  const void *grad;
  void *buf; /* NULL when momentum == 0 */
} dlk_k_sgd_step_desc;
int dlk_k_sgd_step(const dlk_k_sgd_step_desc *a, int impl, void *ws, void *stream);
typedef struct dlk_k_adam_step_desc {
  int dtype;
  int64_t n;
  double lr, beta1, beta2, eps, weight_decay;
  int adamw;
  /* lr / (1 - beta1^t) and sqrt(1 - beta2^t), as torch computes them in double */
  double step_size, bias_correction2_sqrt;
  void *param;
  const void *grad;
  void *m, *v;
} dlk_k_adam_step_desc;
int dlk_k_adam_step(const dlk_k_adam_step_desc *a, int impl, void *ws, void *stream);
typedef struct dlk_k_adagrad_step_desc {
  int dtype;
  int64_t n;
  double clr, weight_decay, eps; /* clr = lr / (1 + (step - 1) * lr_decay) */
  void *param;
  const void *grad;
  void *sum;
} dlk_k_adagrad_step_desc;
int dlk_k_adagrad_step(const dlk_k_adagrad_step_desc *a, int impl, void *ws, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_NN_H */
