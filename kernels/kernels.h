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

/* ---- nn.cu, nn_gemm.cu (nn family) ----
   Descriptors are plain C: data pointers are device pointers, strides are in elements,
   `dtype` is a dlk_dtype value and `act` a dlk_activation value (include/dlk.h). Every
   launcher returns the cudaError_t of its launches (0 = cudaSuccess) and leaves a
   zero-sized problem as a no-op. */

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

/* gemm: c = act(alpha * a @ b + beta * c + bias), z = the value before act.
   a [B,M,K], b [B,K,N], c and z [B,M,N], bias [N]; one dtype for all. beta == 0 never
   reads c. z.data / bias.data NULL: absent. */
typedef struct dlk_k_gemm {
  int dtype;
  int act;
  double alpha, beta;
  dlk_k_mat a, b, c, z;
  dlk_k_vec bias;
} dlk_k_gemm;
/* 1: one thread per output element; F32/F16/BF16/F64; any strides. */
int dlk_k_gemm_naive(const dlk_k_gemm *g, void *stream);
/* 2: 64x64 shared-memory tiles, 4x4 per thread; F32/F16/BF16 (f32 math), F64; any strides. */
int dlk_k_gemm_tiled(const dlk_k_gemm *g, void *stream);
/* 3: tensor cores (mma.sync m16n8k16, f32 accumulate) for F16/BF16. Run it only when
   dlk_k_gemm_mma_check accepted g (it refuses anything else with cudaErrorInvalidValue). */
int dlk_k_gemm_mma(const dlk_k_gemm *g, void *stream);
/* 1 when dlk_k_gemm_mma can run g; else 0 and the reason in why ("a rows not 16-byte
   aligned: leading stride 100 not a positive multiple of 8"). */
int dlk_k_gemm_mma_check(const dlk_k_gemm *g, char *why, size_t why_len);
/* 4 "wgmma" (kernels/nn_gemm_sm90.cu): Hopper tensor cores, wgmma.mma_async fed by TMA
   (cp.async.bulk.tensor) through a 4-stage mbarrier pipeline, 128x256x64 block tile, one
   producer and two consumer warpgroups; F16/BF16 only, sm_90a only (the kernel has a body
   only when the build's DLK_CUDA_ARCHS lists 90a; the caller checks the device is 9.0).
   dlk_k_gemm_wgmma_check: 1 when g fits TMA's rules (each operand with a unit stride along
   k or along m/n, 16-byte aligned base, leading and batch strides multiples of 8, k > 0),
   else 0 and the reason in why. dlk_k_gemm_wgmma: the cudaError_t; on a failure that is
   not a plain CUDA error (tensor-map encoding, entry-point lookup, refused shape) err
   gets the detail ("cuTensorMapEncodeTiled(a) failed with CUresult 1: dims {...}"). */
int dlk_k_gemm_wgmma_check(const dlk_k_gemm *g, char *why, size_t why_len);
int dlk_k_gemm_wgmma(const dlk_k_gemm *g, char *err, size_t err_len, void *stream);
/* The epilogue alone over c (after a vendor gemm wrote alpha*a@b + beta*c there):
   v = c + bias; z = v; c = act(v). `add_bias` 0 when the bias was already added. */
int dlk_k_gemm_epilogue(const dlk_k_gemm *g, int add_bias, void *stream);

/* bias_act: element (r, c) of x, y, dy, dx as dlk_k_mat with batch 1. */
typedef struct dlk_k_bias_act {
  int dtype;
  int act;
  dlk_k_mat x, y;  /* forward: y = act(x + bias) (x may alias y exactly) */
  dlk_k_mat dy, dx; /* backward: g = dy * act'(x + bias); dx = g (dx.data NULL: absent) */
  dlk_k_vec bias;  /* NULL data: none */
  dlk_k_vec dbias; /* backward: column sums of g (NULL data: absent) */
} dlk_k_bias_act;
/* 1 "simple": one thread per element, any strides. */
int dlk_k_bias_act_fwd_simple(const dlk_k_bias_act *p, void *stream);
/* 2 "vec": 16-byte vectors; needs dlk_k_bias_act_fwd_vec_why(p) == NULL. */
int dlk_k_bias_act_fwd_vec(const dlk_k_bias_act *p, void *stream);
const char *dlk_k_bias_act_fwd_vec_why(const dlk_k_bias_act *p);
/* Backward. 1 "simple": dx elementwise, dbias one thread per column over all rows.
   2 "tiled": one pass writes dx and per-chunk column partial sums into ws, a second sums
   the chunks in order (deterministic, no atomics). ws: dlk_k_bias_act_bwd_ws bytes. */
int dlk_k_bias_act_bwd_simple(const dlk_k_bias_act *p, void *stream);
size_t dlk_k_bias_act_bwd_ws(const dlk_k_bias_act *p);
int dlk_k_bias_act_bwd_tiled(const dlk_k_bias_act *p, void *ws, void *stream);

/* softmax over the last dim of [R, C] views. Forward: y = softmax(x) or log_softmax(x);
   backward from y: dx = y*(dy - sum(dy*y)), or for log: dx = dy - exp(y)*sum(dy).
   `impl`: 1 one thread per row, 2 one warp per row, 3 one block per row (2 and 3: online
   single-pass max/sum, 16-byte vectors when rows are contiguous and aligned). */
typedef struct dlk_k_softmax {
  int dtype;
  int log;
  dlk_k_mat x, y;  /* forward */
  dlk_k_mat dy, dx; /* backward (reads y) */
} dlk_k_softmax;
int dlk_k_softmax_fwd(const dlk_k_softmax *p, int impl, void *stream);
int dlk_k_softmax_bwd(const dlk_k_softmax *p, int impl, void *stream);

/* Id range check for gathers (embedding ids, cross-entropy targets): one block scans
   ids (I32/I64, n entries, stride s) and writes to `flag` (host-mapped memory the
   caller reads after synchronising): flag[0] = first position whose id is outside
   [0, limit) and != skip (or -1), flag[1] = that id. `use_skip` 0: no id is skipped. */
int dlk_k_check_ids(const dlk_k_vec *ids, int id_dtype, int64_t limit, int use_skip,
                    int64_t skip, int64_t *flag, void *stream);

/* cross-entropy over logits [N, C]; targets [N] I32/I64. Loss dtype F32 for F16/BF16
   logits, else the logits' dtype (F32/F64); lse likewise F32/F64. reduction: a
   dlk_reduction value. A target outside [0, C) (not ignore_index) gives NaN loss and
   a NaN gradient row; never an out-of-bounds read. `impl`: 1 thread per row, 2 block per
   row. ws: dlk_k_xent_ws bytes (per-row losses, summed in a fixed order). */
typedef struct dlk_k_xent {
  int dtype;      /* logits, dlogits */
  int loss_dtype; /* loss, dloss, lse: F32 or F64 */
  int target_dtype;
  int reduction;
  int64_t ignore_index;
  dlk_k_mat logits, dlogits;
  dlk_k_vec targets, loss, lse, dloss; /* lse.data NULL: absent; loss.n 1 or N */
} dlk_k_xent;
size_t dlk_k_xent_ws(const dlk_k_xent *p);
int dlk_k_xent_fwd(const dlk_k_xent *p, int impl, void *ws, void *stream);
/* dlogits = dloss_i * (softmax(x_i) - onehot(t_i)) (/ count for MEAN, count of the
   non-ignored targets: computed on the device into ws). */
int dlk_k_xent_bwd(const dlk_k_xent *p, int impl, void *ws, void *stream);

/* embedding: ids [N] (I32/I64), table [V, D], out [N, D]. */
typedef struct dlk_k_embedding {
  int dtype;
  int id_dtype;
  int64_t padding_idx; /* backward: that row gets zero gradient; -1 none */
  dlk_k_vec ids;
  dlk_k_mat table, out; /* forward: table -> out; backward: out is dout, table is dtable */
} dlk_k_embedding;
/* Forward. impl 1: one thread per element, any strides; 2: one warp per row with 16-byte
   vectors (needs dlk_k_embedding_fwd_vec_why == NULL). An id outside [0, V) gives a
   zero row. */
int dlk_k_embedding_fwd(const dlk_k_embedding *p, int impl, void *stream);
const char *dlk_k_embedding_fwd_vec_why(const dlk_k_embedding *p);
/* Backward 1 "atomic": zero dtable, then atomicAdd scatter (F32/F64; order-dependent
   rounding, so not deterministic). */
int dlk_k_embedding_bwd_atomic(const dlk_k_embedding *p, void *stream);
/* Backward 2 "sorted": radix-sort (id, position) pairs in ws, then one warp per run of
   equal ids sums its rows in position order (deterministic). ws bytes from
   dlk_k_embedding_bwd_ws (0 with *err set when the sort cannot be sized). */
size_t dlk_k_embedding_bwd_ws(const dlk_k_embedding *p, int *err);
int dlk_k_embedding_bwd_sorted(const dlk_k_embedding *p, void *ws, size_t ws_bytes,
                               void *stream);

/* layernorm over the last dim D of [R, D] views. mean/rstd [R] F32 (F64 for F64 x). */
typedef struct dlk_k_layernorm {
  int dtype;
  double eps;
  dlk_k_mat x, y, dy, dx;
  dlk_k_vec gamma, beta, mean, rstd, dgamma, dbeta; /* NULL data: absent */
} dlk_k_layernorm;
/* impl 1: one thread per row; 2: one warp per row (two-pass mean/variance). */
int dlk_k_layernorm_fwd(const dlk_k_layernorm *p, int impl, void *stream);
/* Backward: xhat = (x - mean)*rstd, g = dy*gamma; dx = rstd*(g - mean(g) -
   xhat*mean(g*xhat)); dgamma = sum_rows dy*xhat; dbeta = sum_rows dy.
   impl 1: thread per row / thread per column; 2: warp per row, column sums by row
   chunks into ws then a fixed-order pass (deterministic). */
size_t dlk_k_layernorm_bwd_ws(const dlk_k_layernorm *p, int impl);
int dlk_k_layernorm_bwd(const dlk_k_layernorm *p, int impl, void *ws, void *stream);

/* dropout: y = x * (u(seed, offset + i) >= prob) / (1 - prob), i the row-major index of
   an up-to-8-d shape. impl 1: any strides; 2: contiguous, 16-byte vectors (needs
   dlk_k_dropout_vec_why == NULL). */
typedef struct dlk_k_dropout_desc {
  int dtype;
  double prob;
  uint64_t seed, offset;
  int ndim;
  int64_t shape[8], x_strides[8], y_strides[8];
  const void *x;
  void *y;
} dlk_k_dropout_desc;
int dlk_k_dropout(const dlk_k_dropout_desc *p, int impl, void *stream);
const char *dlk_k_dropout_vec_why(const dlk_k_dropout_desc *p);
/* The device copy of dlk_mix64 (for the tests: must equal host/nn.h's). Writes n values
   of mix64(seed, counter0 + i) to out (device memory). */
int dlk_k_mix64_fill(uint64_t seed, uint64_t counter0, int64_t n, uint64_t *out, void *stream);

/* Optimizers on contiguous flat tensors of n elements; param and grad `dtype`, state
   F32 (F64 for F64). Scalars are prepared on the host (double) exactly as torch.optim.
   impl 1: one element per thread; 2: 4 elements per thread with vector loads (needs every
   pointer aligned to 4 elements; given less it runs impl 1). */
typedef struct dlk_k_sgd_desc {
  int dtype;
  int64_t n;
  double lr, momentum, dampening, weight_decay;
  int nesterov, first_step;
  void *param;
  const void *grad;
  void *buf; /* NULL when momentum == 0 */
} dlk_k_sgd_desc;
int dlk_k_sgd(const dlk_k_sgd_desc *p, int impl, void *stream);
typedef struct dlk_k_adam_desc {
  int dtype;
  int64_t n;
  double lr, beta1, beta2, eps, weight_decay;
  int adamw;
  /* lr / (1 - beta1^t) and sqrt(1 - beta2^t), as torch computes them in double */
  double step_size, bias_correction2_sqrt;
  void *param;
  const void *grad;
  void *m, *v;
} dlk_k_adam_desc;
int dlk_k_adam(const dlk_k_adam_desc *p, int impl, void *stream);
typedef struct dlk_k_adagrad_desc {
  int dtype;
  int64_t n;
  double clr, weight_decay, eps; /* clr = lr / (1 + (step - 1) * lr_decay) */
  void *param;
  const void *grad;
  void *sum;
} dlk_k_adagrad_desc;
int dlk_k_adagrad(const dlk_k_adagrad_desc *p, int impl, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_H */
