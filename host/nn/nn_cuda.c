/*
 * nn family: the hand-written CUDA rows (ids 1..9) of the tables in host/nn/nn.c. One
 * supports/workspace/run triple per op serves its whole ladder: `impl` is the kernel
 * number handed to the launcher of kernels/nn/nn.h (impl 1 the simplest). supports()
 * says exactly why a kernel cannot run a case (dtype, strides, alignment, sizes,
 * deterministic mode); run() turns the checked argument record (host/nn/nn.h) into the
 * launcher's plain descriptor and launches on the context's stream.
 *
 * Gathers (cross-entropy targets, embedding ids) first run a one-block id check that
 * writes the first bad position into ctx->host_scratch (pinned, device-visible); unless
 * ctx->opts.unchecked_ids, run() synchronises and fails with DLK_ERR_OUT_OF_RANGE before
 * any output is written. With unchecked_ids a bad id gives NaN loss / a zero row, never an
 * out-of-bounds access.
 */
#include "nn.h"

/* Every host .c file is compiled in every build: a CPU-only build gets an empty file. */
#if DLK_HAVE_CUDA
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../../kernels/nn/nn.h"

/* ---- descriptors from checked tensors ---- */

static dlk_k_mat kmat3(const dlk_tensor *t) {
  dlk_k_mat m = {t->data,       t->shape[0],   t->shape[1],  t->shape[2],
                 t->strides[0], t->strides[1], t->strides[2]};
  return m;
}

static dlk_k_mat kmat2(const dlk_tensor *t) {
  dlk_k_mat m = {t->data, 1, t->shape[0], t->shape[1], 0, t->strides[0], t->strides[1]};
  return m;
}

/* A vector from a 0-d or 1-d tensor ([] is one element). */
static dlk_k_vec kvec(const dlk_tensor *t) {
  dlk_k_vec v = {t->data, 1, 1};
  if (t->ndim >= 1) {
    v.n = t->shape[0];
    v.s = t->strides[0];
  }
  return v;
}

static dlk_k_vec kvec_opt(bool has, const dlk_tensor *t) {
  dlk_k_vec v = {NULL, 0, 0};
  return has ? kvec(t) : v;
}

static dlk_k_mat kmat2_opt(bool has, const dlk_tensor *t) {
  dlk_k_mat m = {NULL, 0, 0, 0, 0, 0, 0};
  return has ? kmat2(t) : m;
}

/* Accumulation / statistics dtype of a float dtype: F64 for F64, else F32. */
static dlk_dtype acc_dtype(dlk_dtype t) {
  return t == DLK_F64 ? DLK_F64 : DLK_F32;
}

static bool is_float(dlk_dtype t) {
  return t == DLK_F32 || t == DLK_F16 || t == DLK_BF16 || t == DLK_F64;
}

/* `name` must have dtype `want`. */
static bool same_dtype(const char *name, const dlk_tensor *t, dlk_dtype want, char *why, size_t n) {
  if (t->dtype == want) return true;
  snprintf(why, n, "%s is %s, expected %s", name, dlk_dtype_name(t->dtype), dlk_dtype_name(want));
  return false;
}

static bool float_dtype(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (is_float(t->dtype)) return true;
  snprintf(why, n, "%s dtype %s is not a float dtype", name, dlk_dtype_name(t->dtype));
  return false;
}

static bool id_dtype(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (t->dtype == DLK_I32 || t->dtype == DLK_I64) return true;
  snprintf(why, n, "%s dtype %s is not i32/i64", name, dlk_dtype_name(t->dtype));
  return false;
}

/* The records hold 2-D row views and 1-D vectors, except where a tensor's leading dims do
   not merge into rows (or its strides do not flatten): then the N-d tensor, which only the
   CPU reference reads. The kernels take the 2-D and 1-D ones. */
static bool is_matrix(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (t->ndim == 2) return true;
  snprintf(why, n, "%s's leading dims do not merge into rows (strides of a %d-d view): the CPU "
           "reference takes it", name, t->ndim);
  return false;
}

static bool is_vector(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (t->ndim <= 1) return true;
  snprintf(why, n, "%s's strides do not flatten to one dim (a %d-d view): the CPU reference takes it",
           name, t->ndim);
  return false;
}

static bool ptr_aligned(const void *p, size_t bytes) {
  return ((uintptr_t)p % bytes) == 0;
}

/* The workspace the row asked for must have arrived (dispatch reserves it). */
static dlk_status need_ws(dlk_context *ctx, const char *op, size_t have, size_t need) {
  if (have >= need) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: workspace %zu < %zu bytes", op, have, need);
}

/* Run the id check and, unless unchecked_ids, wait for it and report the first bad id.
   skip: ignore_index / none (use_skip 0). */
static dlk_status check_ids(dlk_context *ctx, const char *op, const char *what,
                            const dlk_tensor *ids, int64_t limit, int use_skip, int64_t skip) {
  if (ctx->opts.unchecked_ids) return DLK_OK;
  dlk_k_check_ids_desc d;
  memset(&d, 0, sizeof d);
  d.ids = kvec(ids);
  if (d.ids.n <= 0) return DLK_OK;
  int64_t *flag = (int64_t *)ctx->host_scratch;
  if (!flag) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", op);
  d.id_dtype = (int)ids->dtype;
  d.limit = limit;
  d.use_skip = use_skip;
  d.skip = skip;
  d.flag = flag;
  DLK_CUDA_TRY(ctx, dlk_k_check_ids(&d, ctx->stream));
  DLK_CUDA_TRY(ctx, cudaStreamSynchronize((cudaStream_t)ctx->stream));
  /* volatile: the kernel wrote this memory behind the compiler's back */
  volatile int64_t *vf = flag;
  if (vf[0] >= 0) {
    if (use_skip)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                      "%s: %s[%lld] = %lld is outside [0, %lld) and not ignore_index %lld", op,
                      what, (long long)vf[0], (long long)vf[1], (long long)limit, (long long)skip);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: %s[%lld] = %lld is outside [0, %lld)", op, what,
                    (long long)vf[0], (long long)vf[1], (long long)limit);
  }
  return DLK_OK;
}

/* ======================================================================================
   gemm: 1 naive, 2 tiled, 3 mma_tc, 4 wgmma (kernels/nn/gemm.cu, gemm_sm90.cu)
   ====================================================================================== */

static dlk_k_gemm_desc gemm_desc(const dlk_gemm_args *g) {
  dlk_k_gemm_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)g->c.dtype;
  d.act = (int)g->act;
  d.alpha = g->alpha;
  d.beta = g->beta;
  d.a = kmat3(&g->a);
  d.b = kmat3(&g->bmat);
  d.c = kmat3(&g->c);
  if (g->has_z) d.z = kmat3(&g->z);
  if (g->has_bias) d.bias = kvec(&g->bias);
  return d;
}

/* One dtype for a, b, c, bias, z; a float dtype (f64 only when allow_f64). */
static bool gemm_dtypes(const dlk_gemm_args *g, bool allow_f64, char *why, size_t n) {
  dlk_dtype t = g->c.dtype;
  if (!float_dtype("c", &g->c, why, n)) return false;
  if (t == DLK_F64 && !allow_f64) {
    snprintf(why, n, "f64 not supported (use naive, tiled or cublas)");
    return false;
  }
  if (!same_dtype("a", &g->a, t, why, n) || !same_dtype("b", &g->bmat, t, why, n)) return false;
  if (g->has_bias && !same_dtype("bias", &g->bias, t, why, n)) return false;
  if (g->has_z && !same_dtype("z", &g->z, t, why, n)) return false;
  return true;
}

/* 4 wgmma is sm_90a only: the arch checks live here (the context knows the device), the
   layout/alignment rules in the kernel file (dlk_k_gemm_supports). */
static bool gemm_wgmma_arch(const dlk_context *ctx, const dlk_gemm_args *g, char *why, size_t n) {
#if defined(DLK_CUDA_EMU)
  (void)ctx, (void)g;
  snprintf(why, n, "needs a real GPU (inline PTX: wgmma, TMA, mbarrier)");
  return false;
#elif !DLK_HAVE_SM90A
  (void)ctx, (void)g;
  snprintf(why, n, "built without sm_90a (add 90a to DLK_CUDA_ARCHS)");
  return false;
#else
  /* sm_90a code runs on compute capability 9.0 exactly (not 8.x, not 10.x). */
  if (ctx->cc_major != 9 || ctx->cc_minor != 0) {
    snprintf(why, n, "device is sm_%d%d, needs sm_90 (wgmma/TMA code is sm_90a only)",
             ctx->cc_major, ctx->cc_minor);
    return false;
  }
  if (g->c.dtype != DLK_F16 && g->c.dtype != DLK_BF16) {
    snprintf(why, n, "%s not supported (f16/bf16 only)", dlk_dtype_name(g->c.dtype));
    return false;
  }
  return true;
#endif
}

bool dlk_gemm_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                            size_t n) {
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
  if (impl == 3 && (g->c.dtype == DLK_F32 || g->c.dtype == DLK_F64)) {
    snprintf(why, n, "%s: the tensor-core kernel takes f16/bf16 only (no TF32 path)",
             dlk_dtype_name(g->c.dtype));
    return false;
  }
  if (impl == 4 && !gemm_wgmma_arch(ctx, g, why, n)) return false;
  if (!gemm_dtypes(g, impl <= 2, why, n)) return false;
  dlk_k_gemm_desc d = gemm_desc(g);
  return dlk_k_gemm_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_gemm_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                             size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_gemm_desc d = gemm_desc((const dlk_gemm_args *)args);
  char err[512] = "";
  d.err = err;
  d.err_len = sizeof err;
  DLK_TRY(dlk_cuda_enter(ctx));
  int rc = dlk_k_gemm(&d, impl, ws, ctx->stream);
  if (rc != 0 && err[0]) {
    cudaGetLastError(); /* nothing was launched; keep the context clean */
    return dlk_fail(ctx, rc == cudaErrorInvalidValue ? DLK_ERR_NOT_SUPPORTED : DLK_ERR_CUDA,
                    "gemm/wgmma: %s", err);
  }
  DLK_CUDA_TRY(ctx, rc);
  return DLK_OK;
}

/* ======================================================================================
   bias + activation: 1 simple, 2 vec / tiled (kernels/nn/pointwise.cu)
   ====================================================================================== */

static dlk_k_bias_act_desc bias_act_fwd_desc(const dlk_bias_act_fwd_args *a) {
  dlk_k_bias_act_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.act = (int)a->act;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  d.bias = kvec_opt(a->has_bias, &a->bias);
  return d;
}

bool dlk_bias_act_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)ctx;
  const dlk_bias_act_fwd_args *a = (const dlk_bias_act_fwd_args *)args;
  if (!is_matrix("x", &a->x, why, n) || !is_matrix("y", &a->y, why, n)) return false;
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("y", &a->y, a->x.dtype, why, n)) return false;
  if (a->has_bias && !same_dtype("bias", &a->bias, a->x.dtype, why, n)) return false;
  dlk_k_bias_act_desc d = bias_act_fwd_desc(a);
  return dlk_k_bias_act_fwd_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_bias_act_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_bias_act_desc d = bias_act_fwd_desc((const dlk_bias_act_fwd_args *)args);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

static dlk_k_bias_act_desc bias_act_bwd_desc(const dlk_bias_act_bwd_args *a) {
  dlk_k_bias_act_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.act = (int)a->act;
  d.x = kmat2(&a->x);
  d.dy = kmat2(&a->dy);
  d.dx = kmat2_opt(a->has_dx, &a->dx);
  d.bias = kvec_opt(a->has_bias, &a->bias);
  d.dbias = kvec_opt(a->has_dbias, &a->dbias);
  return d;
}

bool dlk_bias_act_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)ctx, (void)impl;
  const dlk_bias_act_bwd_args *a = (const dlk_bias_act_bwd_args *)args;
  if (!is_matrix("x", &a->x, why, n) || !is_matrix("dy", &a->dy, why, n)) return false;
  if (a->has_dx && !is_matrix("dx", &a->dx, why, n)) return false;
  dlk_dtype t = a->x.dtype;
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("dy", &a->dy, t, why, n)) return false;
  if (a->has_bias && !same_dtype("bias", &a->bias, t, why, n)) return false;
  if (a->has_dx && !same_dtype("dx", &a->dx, t, why, n)) return false;
  if (a->has_dbias && !same_dtype("dbias", &a->dbias, t, why, n)) return false;
  return true;
}

size_t dlk_bias_act_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_bias_act_desc d = bias_act_bwd_desc((const dlk_bias_act_bwd_args *)args);
  return dlk_k_bias_act_bwd_ws(&d, impl);
}

dlk_status dlk_bias_act_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  dlk_k_bias_act_desc d = bias_act_bwd_desc((const dlk_bias_act_bwd_args *)args);
  DLK_TRY(need_ws(ctx, impl == 2 ? "bias_act_bwd/tiled" : "bias_act_bwd/simple", ws_bytes,
                  dlk_k_bias_act_bwd_ws(&d, impl)));
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   softmax: 1 rowthread, 2 rowwarp, 3 rowblock (kernels/nn/softmax.cu)
   ====================================================================================== */

bool dlk_softmax_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                   size_t n) {
  (void)ctx, (void)impl;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  if (!is_matrix("x", &a->x, why, n) || !is_matrix("y", &a->y, why, n)) return false;
  return float_dtype("x", &a->x, why, n) && same_dtype("y", &a->y, a->x.dtype, why, n);
}

dlk_status dlk_softmax_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                    size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  dlk_k_softmax_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.log = a->log;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_softmax_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_softmax_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                   size_t n) {
  (void)ctx, (void)impl;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  if (!is_matrix("y", &a->y, why, n) || !is_matrix("dy", &a->dy, why, n) || !is_matrix("dx", &a->dx, why, n))
    return false;
  return float_dtype("y", &a->y, why, n) && same_dtype("dy", &a->dy, a->y.dtype, why, n) &&
         same_dtype("dx", &a->dx, a->y.dtype, why, n);
}

dlk_status dlk_softmax_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                    size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  dlk_k_softmax_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->y.dtype;
  d.log = a->log;
  d.y = kmat2(&a->y);
  d.dy = kmat2(&a->dy);
  d.dx = kmat2(&a->dx);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_softmax_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   cross-entropy: 1 rowthread, 2 rowblock (kernels/nn/cross_entropy.cu)
   ====================================================================================== */

static dlk_k_cross_entropy_desc cross_entropy_fwd_desc(const dlk_cross_entropy_fwd_args *a) {
  dlk_k_cross_entropy_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->logits.dtype;
  d.loss_dtype = (int)acc_dtype(a->logits.dtype);
  d.target_dtype = (int)a->targets.dtype;
  d.reduction = (int)a->reduction;
  d.ignore_index = a->ignore_index;
  d.logits = kmat2(&a->logits);
  d.targets = kvec(&a->targets);
  d.loss = kvec(&a->loss);
  d.lse = kvec_opt(a->has_lse, &a->lse);
  return d;
}

static dlk_k_cross_entropy_desc cross_entropy_bwd_desc(const dlk_cross_entropy_bwd_args *a) {
  dlk_k_cross_entropy_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->logits.dtype;
  d.loss_dtype = (int)acc_dtype(a->logits.dtype);
  d.target_dtype = (int)a->targets.dtype;
  d.reduction = (int)a->reduction;
  d.ignore_index = a->ignore_index;
  d.logits = kmat2(&a->logits);
  d.dlogits = kmat2(&a->dlogits);
  d.targets = kvec(&a->targets);
  d.dloss = kvec(&a->dloss);
  return d;
}

bool dlk_cross_entropy_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl,
                                         char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_cross_entropy_fwd_args *a = (const dlk_cross_entropy_fwd_args *)args;
  if (!float_dtype("logits", &a->logits, why, n) || !id_dtype("targets", &a->targets, why, n))
    return false;
  dlk_dtype acc = acc_dtype(a->logits.dtype);
  if (!same_dtype("loss", &a->loss, acc, why, n)) return false;
  if (a->has_lse && !same_dtype("lse", &a->lse, acc, why, n)) return false;
  if (a->logits.shape[1] < 1) {
    snprintf(why, n, "logits have no classes");
    return false;
  }
  return true;
}

size_t dlk_cross_entropy_fwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_cross_entropy_desc d = cross_entropy_fwd_desc((const dlk_cross_entropy_fwd_args *)args);
  return dlk_k_cross_entropy_ws(&d, impl);
}

dlk_status dlk_cross_entropy_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                          size_t ws_bytes) {
  const dlk_cross_entropy_fwd_args *a = (const dlk_cross_entropy_fwd_args *)args;
  dlk_k_cross_entropy_desc d = cross_entropy_fwd_desc(a);
  DLK_TRY(need_ws(ctx, "cross_entropy_fwd", ws_bytes, dlk_k_cross_entropy_ws(&d, impl)));
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(check_ids(ctx, "cross_entropy_fwd", "targets", &a->targets, a->logits.shape[1], 1,
                    a->ignore_index));
  DLK_CUDA_TRY(ctx, dlk_k_cross_entropy_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_cross_entropy_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl,
                                         char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_cross_entropy_bwd_args *a = (const dlk_cross_entropy_bwd_args *)args;
  if (!float_dtype("logits", &a->logits, why, n) || !id_dtype("targets", &a->targets, why, n))
    return false;
  if (!same_dtype("dlogits", &a->dlogits, a->logits.dtype, why, n)) return false;
  return same_dtype("dloss", &a->dloss, acc_dtype(a->logits.dtype), why, n);
}

size_t dlk_cross_entropy_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_cross_entropy_desc d = cross_entropy_bwd_desc((const dlk_cross_entropy_bwd_args *)args);
  return dlk_k_cross_entropy_ws(&d, impl);
}

dlk_status dlk_cross_entropy_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                          size_t ws_bytes) {
  const dlk_cross_entropy_bwd_args *a = (const dlk_cross_entropy_bwd_args *)args;
  dlk_k_cross_entropy_desc d = cross_entropy_bwd_desc(a);
  DLK_TRY(need_ws(ctx, "cross_entropy_bwd", ws_bytes, dlk_k_cross_entropy_ws(&d, impl)));
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(check_ids(ctx, "cross_entropy_bwd", "targets", &a->targets, a->logits.shape[1], 1,
                    a->ignore_index));
  DLK_CUDA_TRY(ctx, dlk_k_cross_entropy_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   embedding: forward 1 simple, 2 rowvec; backward 1 atomic, 2 sorted
   (kernels/nn/embedding.cu)
   ====================================================================================== */

static dlk_k_embedding_desc emb_fwd_desc(const dlk_embedding_fwd_args *a) {
  dlk_k_embedding_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->table.dtype;
  d.id_dtype = (int)a->ids.dtype;
  d.padding_idx = a->padding_idx;
  d.ids = kvec(&a->ids);
  d.table = kmat2(&a->table);
  d.out = kmat2(&a->out);
  return d;
}

static dlk_k_embedding_desc emb_bwd_desc(const dlk_embedding_bwd_args *a) {
  dlk_k_embedding_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->dtable.dtype;
  d.id_dtype = (int)a->ids.dtype;
  d.padding_idx = a->padding_idx;
  d.ids = kvec(&a->ids);
  d.table = kmat2(&a->dtable);
  d.out = kmat2(&a->dout);
  return d;
}

bool dlk_embedding_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                     size_t n) {
  (void)ctx;
  const dlk_embedding_fwd_args *a = (const dlk_embedding_fwd_args *)args;
  if (!is_vector("ids", &a->ids, why, n) || !is_matrix("out", &a->out, why, n)) return false;
  if (!id_dtype("ids", &a->ids, why, n) || !float_dtype("table", &a->table, why, n) ||
      !same_dtype("out", &a->out, a->table.dtype, why, n))
    return false;
  dlk_k_embedding_desc d = emb_fwd_desc(a);
  return dlk_k_embedding_fwd_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_embedding_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                      size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_embedding_fwd_args *a = (const dlk_embedding_fwd_args *)args;
  dlk_k_embedding_desc d = emb_fwd_desc(a);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(check_ids(ctx, "embedding_fwd", "ids", &a->ids, a->table.shape[0], 0, 0));
  DLK_CUDA_TRY(ctx, dlk_k_embedding_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_embedding_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                     size_t n) {
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  if (!is_vector("ids", &a->ids, why, n) || !is_matrix("dout", &a->dout, why, n)) return false;
  if (!id_dtype("ids", &a->ids, why, n) || !float_dtype("dtable", &a->dtable, why, n) ||
      !same_dtype("dout", &a->dout, a->dtable.dtype, why, n))
    return false;
  if (impl == 1) {
    if (ctx->opts.deterministic) {
      snprintf(why, n, "float atomicAdd order changes the rounding: not deterministic (use sorted)");
      return false;
    }
    if (a->dtable.dtype != DLK_F32 && a->dtable.dtype != DLK_F64) {
      snprintf(why, n, "%s atomics would accumulate in 16 bits (use sorted)",
               dlk_dtype_name(a->dtable.dtype));
      return false;
    }
    return true;
  }
  if (a->ids.shape[0] > INT32_MAX) {
    snprintf(why, n, "%lld ids: the sort takes at most 2^31 - 1", (long long)a->ids.shape[0]);
    return false;
  }
  if (a->dtable.shape[0] >= (int64_t)UINT32_MAX) {
    snprintf(why, n, "vocabulary of %lld rows does not fit 32-bit sort keys",
             (long long)a->dtable.shape[0]);
    return false;
  }
  dlk_k_embedding_desc d = emb_bwd_desc(a);
  return dlk_k_embedding_bwd_supports(&d, impl, why, n) != 0;
}

size_t dlk_embedding_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_embedding_desc d = emb_bwd_desc((const dlk_embedding_bwd_args *)args);
  return dlk_k_embedding_bwd_ws(&d, impl);
}

dlk_status dlk_embedding_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                      size_t ws_bytes) {
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  dlk_k_embedding_desc d = emb_bwd_desc(a);
  DLK_TRY(need_ws(ctx, impl == 2 ? "embedding_bwd/sorted" : "embedding_bwd/atomic", ws_bytes,
                  dlk_k_embedding_bwd_ws(&d, impl)));
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(check_ids(ctx, "embedding_bwd", "ids", &a->ids, a->dtable.shape[0], 0, 0));
  DLK_CUDA_TRY(ctx, dlk_k_embedding_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   layer norm: forward 1 rowthread, 2 rowwarp; backward 1 simple, 2 rowwarp
   (kernels/nn/layernorm.cu)
   ====================================================================================== */

bool dlk_layernorm_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                     size_t n) {
  (void)ctx, (void)impl;
  const dlk_layernorm_fwd_args *a = (const dlk_layernorm_fwd_args *)args;
  if (!is_matrix("x", &a->x, why, n) || !is_matrix("y", &a->y, why, n)) return false;
  if ((a->has_mean && !is_vector("mean", &a->mean, why, n)) || (a->has_rstd && !is_vector("rstd", &a->rstd, why, n)))
    return false;
  dlk_dtype t = a->x.dtype, acc = acc_dtype(t);
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("y", &a->y, t, why, n)) return false;
  if (a->has_gamma && !same_dtype("gamma", &a->gamma, t, why, n)) return false;
  if (a->has_beta && !same_dtype("beta", &a->beta, t, why, n)) return false;
  if (a->has_mean && !same_dtype("mean", &a->mean, acc, why, n)) return false;
  if (a->has_rstd && !same_dtype("rstd", &a->rstd, acc, why, n)) return false;
  return true;
}

dlk_status dlk_layernorm_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                      size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_layernorm_fwd_args *a = (const dlk_layernorm_fwd_args *)args;
  dlk_k_layernorm_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.eps = a->eps;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  d.gamma = kvec_opt(a->has_gamma, &a->gamma);
  d.beta = kvec_opt(a->has_beta, &a->beta);
  d.mean = kvec_opt(a->has_mean, &a->mean);
  d.rstd = kvec_opt(a->has_rstd, &a->rstd);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_layernorm_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

static dlk_k_layernorm_desc ln_bwd_desc(const dlk_layernorm_bwd_args *a) {
  dlk_k_layernorm_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.eps = a->eps;
  d.x = kmat2(&a->x);
  d.dy = kmat2(&a->dy);
  d.dx = kmat2_opt(a->has_dx, &a->dx);
  d.gamma = kvec_opt(a->has_gamma, &a->gamma);
  d.mean = kvec(&a->mean);
  d.rstd = kvec(&a->rstd);
  d.dgamma = kvec_opt(a->has_dgamma, &a->dgamma);
  d.dbeta = kvec_opt(a->has_dbeta, &a->dbeta);
  return d;
}

bool dlk_layernorm_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                     size_t n) {
  (void)ctx, (void)impl;
  const dlk_layernorm_bwd_args *a = (const dlk_layernorm_bwd_args *)args;
  if (!is_matrix("x", &a->x, why, n) || !is_matrix("dy", &a->dy, why, n)) return false;
  if (a->has_dx && !is_matrix("dx", &a->dx, why, n)) return false;
  if (!is_vector("mean", &a->mean, why, n) || !is_vector("rstd", &a->rstd, why, n)) return false;
  dlk_dtype t = a->x.dtype, acc = acc_dtype(t);
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("dy", &a->dy, t, why, n)) return false;
  if (!same_dtype("mean", &a->mean, acc, why, n) || !same_dtype("rstd", &a->rstd, acc, why, n))
    return false;
  if (a->has_gamma && !same_dtype("gamma", &a->gamma, t, why, n)) return false;
  if (a->has_dx && !same_dtype("dx", &a->dx, t, why, n)) return false;
  if (a->has_dgamma && !same_dtype("dgamma", &a->dgamma, t, why, n)) return false;
  if (a->has_dbeta && !same_dtype("dbeta", &a->dbeta, t, why, n)) return false;
  return true;
}

size_t dlk_layernorm_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_layernorm_desc d = ln_bwd_desc((const dlk_layernorm_bwd_args *)args);
  return dlk_k_layernorm_bwd_ws(&d, impl);
}

dlk_status dlk_layernorm_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                      size_t ws_bytes) {
  dlk_k_layernorm_desc d = ln_bwd_desc((const dlk_layernorm_bwd_args *)args);
  DLK_TRY(need_ws(ctx, "layernorm_bwd", ws_bytes, dlk_k_layernorm_bwd_ws(&d, impl)));
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_layernorm_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   dropout: 1 strided, 2 vec (kernels/nn/pointwise.cu)
   ====================================================================================== */

static dlk_k_dropout_desc dropout_desc(const dlk_dropout_args *a) {
  dlk_k_dropout_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.prob = a->prob;
  d.seed = a->seed;
  d.offset = a->offset;
  d.ndim = a->x.ndim;
  for (int k = 0; k < a->x.ndim && k < 8; k++) {
    d.shape[k] = a->x.shape[k];
    d.x_strides[k] = a->x.strides[k];
    d.y_strides[k] = a->y.strides[k];
  }
  d.x = a->x.data;
  d.y = a->y.data;
  return d;
}

bool dlk_dropout_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                               size_t n) {
  (void)ctx;
  const dlk_dropout_args *a = (const dlk_dropout_args *)args;
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("y", &a->y, a->x.dtype, why, n)) return false;
  if (a->x.ndim != a->y.ndim || a->x.ndim > 8) {
    snprintf(why, n, "x has %d dims, y %d (at most 8, equal)", a->x.ndim, a->y.ndim);
    return false;
  }
  if (!(a->prob >= 0.0 && a->prob < 1.0)) {
    snprintf(why, n, "prob %g outside [0, 1)", a->prob);
    return false;
  }
  dlk_k_dropout_desc d = dropout_desc(a);
  return dlk_k_dropout_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_dropout_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_dropout_desc d = dropout_desc((const dlk_dropout_args *)args);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_dropout(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ======================================================================================
   optimizer steps: 1 simple, 2 vec (kernels/nn/optim.cu)
   ====================================================================================== */

/* param/grad one float dtype, states their accumulation dtype, all contiguous, same
   numel. impl 2 (vec): every pointer aligned to 4 elements. */
static bool optim_check(const char *states[], const dlk_tensor *st[], int nst,
                        const dlk_tensor *param, const dlk_tensor *grad, int impl, char *why,
                        size_t n) {
  if (!float_dtype("param", param, why, n) || !same_dtype("grad", grad, param->dtype, why, n))
    return false;
  dlk_dtype acc = acc_dtype(param->dtype);
  int64_t numel = dlk_tensor_numel(param);
  const dlk_tensor *all[4] = {param, grad, NULL, NULL};
  const char *names[4] = {"param", "grad", NULL, NULL};
  for (int i = 0; i < nst; i++) {
    if (!same_dtype(states[i], st[i], acc, why, n)) return false;
    all[2 + i] = st[i];
    names[2 + i] = states[i];
  }
  for (int i = 0; i < 2 + nst; i++) {
    if (!dlk_tensor_is_contiguous(all[i])) {
      snprintf(why, n, "%s not contiguous", names[i]);
      return false;
    }
    if (dlk_tensor_numel(all[i]) != numel) {
      snprintf(why, n, "%s has %lld elements, param %lld", names[i],
               (long long)dlk_tensor_numel(all[i]), (long long)numel);
      return false;
    }
    if (impl == 2 && !ptr_aligned(all[i]->data, 4 * dlk_dtype_size(all[i]->dtype))) {
      snprintf(why, n, "%s not aligned to 4 elements (%zu bytes) for the vector loads", names[i],
               4 * dlk_dtype_size(all[i]->dtype));
      return false;
    }
  }
  return true;
}

bool dlk_sgd_step_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                size_t n) {
  (void)ctx;
  const dlk_sgd_step_args *a = (const dlk_sgd_step_args *)args;
  const char *names[1] = {"momentum_buf"};
  const dlk_tensor *st[1] = {&a->buf};
  if (a->p.momentum != 0.0 && !a->has_buf) {
    snprintf(why, n, "momentum %g needs momentum_buf", a->p.momentum);
    return false;
  }
  return optim_check(names, st, a->p.momentum != 0.0 ? 1 : 0, &a->param, &a->grad, impl, why, n);
}

dlk_status dlk_sgd_step_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_sgd_step_args *a = (const dlk_sgd_step_args *)args;
  dlk_k_sgd_step_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->param.dtype;
  d.n = dlk_tensor_numel(&a->param);
  d.lr = a->p.lr;
  d.momentum = a->p.momentum;
  d.dampening = a->p.dampening;
  d.weight_decay = a->p.weight_decay;
  d.nesterov = a->p.nesterov;
  d.first_step = a->first_step;
  d.param = a->param.data;
  d.grad = a->grad.data;
  d.buf = a->p.momentum != 0.0 ? a->buf.data : NULL;
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_sgd_step(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_adam_step_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                 size_t n) {
  (void)ctx;
  const dlk_adam_step_args *a = (const dlk_adam_step_args *)args;
  const char *names[2] = {"exp_avg", "exp_avg_sq"};
  const dlk_tensor *st[2] = {&a->m, &a->v};
  if (a->p.step < 1) {
    snprintf(why, n, "step %lld < 1", (long long)a->p.step);
    return false;
  }
  return optim_check(names, st, 2, &a->param, &a->grad, impl, why, n);
}

dlk_status dlk_adam_step_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                  size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_adam_step_args *a = (const dlk_adam_step_args *)args;
  dlk_k_adam_step_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->param.dtype;
  d.n = dlk_tensor_numel(&a->param);
  d.lr = a->p.lr;
  d.beta1 = a->p.beta1;
  d.beta2 = a->p.beta2;
  d.eps = a->p.eps;
  d.weight_decay = a->p.weight_decay;
  d.adamw = a->p.adamw;
  /* torch: bias_correction1 = 1 - beta1 ** step; step_size = lr / bias_correction1;
     bias_correction2_sqrt = sqrt(1 - beta2 ** step), all Python floats (double). */
  d.step_size = a->p.lr / (1.0 - pow(a->p.beta1, (double)a->p.step));
  d.bias_correction2_sqrt = sqrt(1.0 - pow(a->p.beta2, (double)a->p.step));
  d.param = a->param.data;
  d.grad = a->grad.data;
  d.m = a->m.data;
  d.v = a->v.data;
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adam_step(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_adagrad_step_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)ctx;
  const dlk_adagrad_step_args *a = (const dlk_adagrad_step_args *)args;
  const char *names[1] = {"state_sum"};
  const dlk_tensor *st[1] = {&a->sum};
  if (a->p.step < 1) {
    snprintf(why, n, "step %lld < 1", (long long)a->p.step);
    return false;
  }
  return optim_check(names, st, 1, &a->param, &a->grad, impl, why, n);
}

dlk_status dlk_adagrad_step_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_adagrad_step_args *a = (const dlk_adagrad_step_args *)args;
  dlk_k_adagrad_step_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->param.dtype;
  d.n = dlk_tensor_numel(&a->param);
  /* torch: clr = lr / (1 + (step - 1) * lr_decay) */
  d.clr = a->p.lr / (1.0 + (double)(a->p.step - 1) * a->p.lr_decay);
  d.weight_decay = a->p.weight_decay;
  d.eps = a->p.eps;
  d.param = a->param.data;
  d.grad = a->grad.data;
  d.sum = a->sum.data;
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adagrad_step(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

#else
typedef int dlk_nn_cuda_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDA */
