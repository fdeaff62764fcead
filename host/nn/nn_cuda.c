/*
 * nn family: the hand-written CUDA variant rows (ids 1..9). Each row's supports() says
 * exactly why it cannot run a case (dtype, strides, alignment, sizes, deterministic
 * mode); run() turns the checked argument record (host/nn.h) into the launcher's plain
 * descriptor (kernels/kernels.h) and launches on the context's stream.
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

#include "../../kernels/kernels.h"

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

static bool ptr_aligned(const void *p, size_t bytes) {
  return ((uintptr_t)p % bytes) == 0;
}

static dlk_status enter(dlk_context *ctx) {
  return dlk_cuda_enter(ctx);
}

/* Run the id check and, unless unchecked_ids, wait for it and report the first bad id.
   skip: ignore_index / none (use_skip 0). */
static dlk_status check_ids(dlk_context *ctx, const char *op, const char *what,
                            const dlk_tensor *ids, int64_t limit, int use_skip, int64_t skip) {
  if (ctx->opts.unchecked_ids) return DLK_OK;
  dlk_k_vec v = kvec(ids);
  if (v.n <= 0) return DLK_OK;
  int64_t *flag = (int64_t *)ctx->host_scratch;
  if (!flag) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", op);
  DLK_CUDA_TRY(ctx, dlk_k_check_ids(&v, (int)ids->dtype, limit, use_skip, skip, flag, ctx->stream));
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
   gemm
   ====================================================================================== */

static dlk_k_gemm gemm_desc(const dlk_gemm_args *g) {
  dlk_k_gemm d;
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

static bool gemm_naive_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return gemm_dtypes((const dlk_gemm_args *)args, true, why, n);
}

static dlk_status gemm_naive_run(dlk_context *ctx, const void *args, void *ws, size_t ws_bytes) {
  (void)ws, (void)ws_bytes;
  dlk_k_gemm d = gemm_desc((const dlk_gemm_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_gemm_naive(&d, ctx->stream));
  return DLK_OK;
}

static dlk_status gemm_tiled_run(dlk_context *ctx, const void *args, void *ws, size_t ws_bytes) {
  (void)ws, (void)ws_bytes;
  dlk_k_gemm d = gemm_desc((const dlk_gemm_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_gemm_tiled(&d, ctx->stream));
  return DLK_OK;
}

static bool gemm_mma_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
  if (g->c.dtype == DLK_F32 || g->c.dtype == DLK_F64) {
    snprintf(why, n, "%s: the tensor-core kernel takes f16/bf16 only (no TF32 path)",
             dlk_dtype_name(g->c.dtype));
    return false;
  }
  if (!gemm_dtypes(g, false, why, n)) return false;
  dlk_k_gemm d = gemm_desc(g);
  return dlk_k_gemm_mma_check(&d, why, n) != 0;
}

static dlk_status gemm_mma_run(dlk_context *ctx, const void *args, void *ws, size_t ws_bytes) {
  (void)ws, (void)ws_bytes;
  dlk_k_gemm d = gemm_desc((const dlk_gemm_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_gemm_mma(&d, ctx->stream));
  return DLK_OK;
}

/* 4 wgmma: sm_90a only. The arch checks live here (the context knows the device); the
   layout/alignment rules in the kernel file (dlk_k_gemm_wgmma_check). */
static bool gemm_wgmma_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
#if !DLK_HAVE_SM90A
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
  if (!gemm_dtypes(g, false, why, n)) return false;
  dlk_k_gemm d = gemm_desc(g);
  return dlk_k_gemm_wgmma_check(&d, why, n) != 0;
#endif
}

static dlk_status gemm_wgmma_run(dlk_context *ctx, const void *args, void *ws, size_t ws_bytes) {
  (void)ws, (void)ws_bytes;
  dlk_k_gemm d = gemm_desc((const dlk_gemm_args *)args);
  char err[512] = "";
  DLK_TRY(enter(ctx));
  int rc = dlk_k_gemm_wgmma(&d, err, sizeof err, ctx->stream);
  if (rc != 0 && err[0]) {
    cudaGetLastError(); /* nothing was launched; keep the context clean */
    return dlk_fail(ctx, rc == cudaErrorInvalidValue ? DLK_ERR_NOT_SUPPORTED : DLK_ERR_CUDA,
                    "gemm/wgmma: %s", err);
  }
  DLK_CUDA_TRY(ctx, rc);
  return DLK_OK;
}

const dlk_variant dlk_gemm_naive = {1,
                                    "naive",
                                    DLK_CUDA,
                                    "one thread per output element, any strides, f32/f16/bf16/f64",
                                    gemm_naive_supports,
                                    NULL,
                                    gemm_naive_run};
const dlk_variant dlk_gemm_tiled = {2,
                                    "tiled",
                                    DLK_CUDA,
                                    "64x64x16 shared-memory tiles, 4x4 per thread, any strides",
                                    gemm_naive_supports,
                                    NULL,
                                    gemm_tiled_run};
const dlk_variant dlk_gemm_mma = {3,
                                  "mma_tc",
                                  DLK_CUDA,
                                  "f16/bf16 tensor cores: mma.sync m16n8k16, 128x128x32 tiles, "
                                  "4-stage cp.async, ldmatrix",
                                  gemm_mma_supports,
                                  NULL,
                                  gemm_mma_run};
const dlk_variant dlk_gemm_wgmma = {4,
                                    "wgmma",
                                    DLK_CUDA,
                                    "f16/bf16 Hopper tensor cores (sm_90a): wgmma m64n256k16 fed by "
                                    "TMA, 128x256x64 tiles, 4-stage mbarrier pipeline, producer + 2 "
                                    "consumer warpgroups",
                                    gemm_wgmma_supports,
                                    NULL,
                                    gemm_wgmma_run};

/* ======================================================================================
   bias + activation
   ====================================================================================== */

static dlk_k_bias_act bias_act_fwd_desc(const dlk_bias_act_fwd_args *a) {
  dlk_k_bias_act d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.act = (int)a->act;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  d.bias = kvec_opt(a->has_bias, &a->bias);
  return d;
}

static bool bias_act_fwd_dtypes(const dlk_bias_act_fwd_args *a, char *why, size_t n) {
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("y", &a->y, a->x.dtype, why, n)) return false;
  return !a->has_bias || same_dtype("bias", &a->bias, a->x.dtype, why, n);
}

static bool bias_act_fwd_simple_supports(const dlk_context *ctx, const void *args, char *why,
                                         size_t n) {
  (void)ctx;
  return bias_act_fwd_dtypes((const dlk_bias_act_fwd_args *)args, why, n);
}

static bool bias_act_fwd_vec_supports(const dlk_context *ctx, const void *args, char *why,
                                      size_t n) {
  (void)ctx;
  const dlk_bias_act_fwd_args *a = (const dlk_bias_act_fwd_args *)args;
  if (!bias_act_fwd_dtypes(a, why, n)) return false;
  dlk_k_bias_act d = bias_act_fwd_desc(a);
  const char *w = dlk_k_bias_act_fwd_vec_why(&d);
  if (w) snprintf(why, n, "%s", w);
  return w == NULL;
}

static dlk_status bias_act_fwd_simple_run(dlk_context *ctx, const void *args, void *ws,
                                          size_t wsb) {
  (void)ws, (void)wsb;
  dlk_k_bias_act d = bias_act_fwd_desc((const dlk_bias_act_fwd_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_fwd_simple(&d, ctx->stream));
  return DLK_OK;
}

static dlk_status bias_act_fwd_vec_run(dlk_context *ctx, const void *args, void *ws, size_t wsb) {
  (void)ws, (void)wsb;
  dlk_k_bias_act d = bias_act_fwd_desc((const dlk_bias_act_fwd_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_fwd_vec(&d, ctx->stream));
  return DLK_OK;
}

const dlk_variant dlk_bias_act_fwd_simple = {1,
                                             "simple",
                                             DLK_CUDA,
                                             "one thread per element, any strides",
                                             bias_act_fwd_simple_supports,
                                             NULL,
                                             bias_act_fwd_simple_run};
const dlk_variant dlk_bias_act_fwd_vec = {2,
                                          "vec",
                                          DLK_CUDA,
                                          "16-byte vectors over contiguous, aligned rows",
                                          bias_act_fwd_vec_supports,
                                          NULL,
                                          bias_act_fwd_vec_run};

static dlk_k_bias_act bias_act_bwd_desc(const dlk_bias_act_bwd_args *a) {
  dlk_k_bias_act d;
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

static bool bias_act_bwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_bias_act_bwd_args *a = (const dlk_bias_act_bwd_args *)args;
  dlk_dtype t = a->x.dtype;
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("dy", &a->dy, t, why, n)) return false;
  if (a->has_bias && !same_dtype("bias", &a->bias, t, why, n)) return false;
  if (a->has_dx && !same_dtype("dx", &a->dx, t, why, n)) return false;
  if (a->has_dbias && !same_dtype("dbias", &a->dbias, t, why, n)) return false;
  return true;
}

static size_t bias_act_bwd_tiled_ws(const dlk_context *ctx, const void *args) {
  (void)ctx;
  dlk_k_bias_act d = bias_act_bwd_desc((const dlk_bias_act_bwd_args *)args);
  return dlk_k_bias_act_bwd_ws(&d);
}

static dlk_status bias_act_bwd_simple_run(dlk_context *ctx, const void *args, void *ws,
                                          size_t wsb) {
  (void)ws, (void)wsb;
  dlk_k_bias_act d = bias_act_bwd_desc((const dlk_bias_act_bwd_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_bwd_simple(&d, ctx->stream));
  return DLK_OK;
}

static dlk_status bias_act_bwd_tiled_run(dlk_context *ctx, const void *args, void *ws, size_t wsb) {
  dlk_k_bias_act d = bias_act_bwd_desc((const dlk_bias_act_bwd_args *)args);
  if (wsb < dlk_k_bias_act_bwd_ws(&d))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "bias_act_bwd/tiled: workspace %zu < %zu bytes", wsb,
                    dlk_k_bias_act_bwd_ws(&d));
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_bias_act_bwd_tiled(&d, ws, ctx->stream));
  return DLK_OK;
}

const dlk_variant dlk_bias_act_bwd_simple = {
    1,
    "simple",
    DLK_CUDA,
    "dx one thread per element; dbias one thread per column over all rows",
    bias_act_bwd_supports,
    NULL,
    bias_act_bwd_simple_run};
const dlk_variant dlk_bias_act_bwd_tiled = {
    2,
    "tiled",
    DLK_CUDA,
    "dx and per-chunk column sums in one pass, chunks summed in order (workspace, no atomics)",
    bias_act_bwd_supports,
    bias_act_bwd_tiled_ws,
    bias_act_bwd_tiled_run};

/* ======================================================================================
   softmax
   ====================================================================================== */

static bool softmax_fwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  return float_dtype("x", &a->x, why, n) && same_dtype("y", &a->y, a->x.dtype, why, n);
}

static bool softmax_bwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  return float_dtype("y", &a->y, why, n) && same_dtype("dy", &a->dy, a->y.dtype, why, n) &&
         same_dtype("dx", &a->dx, a->y.dtype, why, n);
}

static dlk_status softmax_fwd_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  dlk_k_softmax d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.log = a->log;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_softmax_fwd(&d, impl, ctx->stream));
  return DLK_OK;
}

static dlk_status softmax_bwd_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  dlk_k_softmax d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->y.dtype;
  d.log = a->log;
  d.y = kmat2(&a->y);
  d.dy = kmat2(&a->dy);
  d.dx = kmat2(&a->dx);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_softmax_bwd(&d, impl, ctx->stream));
  return DLK_OK;
}

#define DLK_IMPL_RUN(fn, base, impl)                                               \
  static dlk_status fn(dlk_context *ctx, const void *args, void *ws, size_t wsb) { \
    (void)ws, (void)wsb;                                                           \
    return base(ctx, args, impl);                                                  \
  }
DLK_IMPL_RUN(softmax_fwd_1, softmax_fwd_impl, 1)
DLK_IMPL_RUN(softmax_fwd_2, softmax_fwd_impl, 2)
DLK_IMPL_RUN(softmax_fwd_3, softmax_fwd_impl, 3)
DLK_IMPL_RUN(softmax_bwd_1, softmax_bwd_impl, 1)
DLK_IMPL_RUN(softmax_bwd_2, softmax_bwd_impl, 2)
DLK_IMPL_RUN(softmax_bwd_3, softmax_bwd_impl, 3)

const dlk_variant dlk_softmax_fwd_thread = {1,
                                            "rowthread",
                                            DLK_CUDA,
                                            "one thread per row, online max/sum, any strides",
                                            softmax_fwd_supports,
                                            NULL,
                                            softmax_fwd_1};
const dlk_variant dlk_softmax_fwd_warp = {
    2,
    "rowwarp",
    DLK_CUDA,
    "one warp per row, online max/sum, 16-byte vectors when contiguous",
    softmax_fwd_supports,
    NULL,
    softmax_fwd_2};
const dlk_variant dlk_softmax_fwd_block = {
    3,
    "rowblock",
    DLK_CUDA,
    "one block per row, online max/sum, 16-byte vectors when contiguous",
    softmax_fwd_supports,
    NULL,
    softmax_fwd_3};
const dlk_variant dlk_softmax_bwd_thread = {
    1,    "rowthread",  DLK_CUDA, "one thread per row, any strides", softmax_bwd_supports,
    NULL, softmax_bwd_1};
const dlk_variant dlk_softmax_bwd_warp = {2,
                                          "rowwarp",
                                          DLK_CUDA,
                                          "one warp per row, 16-byte vectors when contiguous",
                                          softmax_bwd_supports,
                                          NULL,
                                          softmax_bwd_2};
const dlk_variant dlk_softmax_bwd_block = {3,
                                           "rowblock",
                                           DLK_CUDA,
                                           "one block per row, 16-byte vectors when contiguous",
                                           softmax_bwd_supports,
                                           NULL,
                                           softmax_bwd_3};

/* ======================================================================================
   cross-entropy
   ====================================================================================== */

static bool xent_fwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_xent_fwd_args *a = (const dlk_xent_fwd_args *)args;
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

static bool xent_bwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_xent_bwd_args *a = (const dlk_xent_bwd_args *)args;
  if (!float_dtype("logits", &a->logits, why, n) || !id_dtype("targets", &a->targets, why, n))
    return false;
  if (!same_dtype("dlogits", &a->dlogits, a->logits.dtype, why, n)) return false;
  return same_dtype("dloss", &a->dloss, acc_dtype(a->logits.dtype), why, n);
}

static dlk_k_xent xent_fwd_desc(const dlk_xent_fwd_args *a) {
  dlk_k_xent d;
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

static dlk_k_xent xent_bwd_desc(const dlk_xent_bwd_args *a) {
  dlk_k_xent d;
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

static size_t xent_fwd_ws(const dlk_context *ctx, const void *args) {
  (void)ctx;
  dlk_k_xent d = xent_fwd_desc((const dlk_xent_fwd_args *)args);
  return dlk_k_xent_ws(&d);
}

static size_t xent_bwd_ws(const dlk_context *ctx, const void *args) {
  (void)ctx;
  dlk_k_xent d = xent_bwd_desc((const dlk_xent_bwd_args *)args);
  return dlk_k_xent_ws(&d);
}

static dlk_status xent_fwd_impl(dlk_context *ctx, const void *args, void *ws, size_t wsb,
                                int impl) {
  const dlk_xent_fwd_args *a = (const dlk_xent_fwd_args *)args;
  dlk_k_xent d = xent_fwd_desc(a);
  if (wsb < dlk_k_xent_ws(&d))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "cross_entropy_fwd: workspace %zu < %zu bytes", wsb,
                    dlk_k_xent_ws(&d));
  DLK_TRY(enter(ctx));
  DLK_TRY(check_ids(ctx, "cross_entropy_fwd", "targets", &a->targets, a->logits.shape[1], 1,
                    a->ignore_index));
  DLK_CUDA_TRY(ctx, dlk_k_xent_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

static dlk_status xent_bwd_impl(dlk_context *ctx, const void *args, void *ws, size_t wsb,
                                int impl) {
  const dlk_xent_bwd_args *a = (const dlk_xent_bwd_args *)args;
  dlk_k_xent d = xent_bwd_desc(a);
  if (wsb < dlk_k_xent_ws(&d))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "cross_entropy_bwd: workspace %zu < %zu bytes", wsb,
                    dlk_k_xent_ws(&d));
  DLK_TRY(enter(ctx));
  DLK_TRY(check_ids(ctx, "cross_entropy_bwd", "targets", &a->targets, a->logits.shape[1], 1,
                    a->ignore_index));
  DLK_CUDA_TRY(ctx, dlk_k_xent_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

#define DLK_IMPL_RUN_WS(fn, base, impl)                                            \
  static dlk_status fn(dlk_context *ctx, const void *args, void *ws, size_t wsb) { \
    return base(ctx, args, ws, wsb, impl);                                         \
  }
DLK_IMPL_RUN_WS(xent_fwd_1, xent_fwd_impl, 1)
DLK_IMPL_RUN_WS(xent_fwd_2, xent_fwd_impl, 2)
DLK_IMPL_RUN_WS(xent_bwd_1, xent_bwd_impl, 1)
DLK_IMPL_RUN_WS(xent_bwd_2, xent_bwd_impl, 2)

const dlk_variant dlk_xent_fwd_thread = {
    1,
    "rowthread",
    DLK_CUDA,
    "one thread per row: online logsumexp; fixed-order final sum",
    xent_fwd_supports,
    xent_fwd_ws,
    xent_fwd_1};
const dlk_variant dlk_xent_fwd_block = {
    2,
    "rowblock",
    DLK_CUDA,
    "one block per row: online logsumexp, vectors; fixed-order final sum",
    xent_fwd_supports,
    xent_fwd_ws,
    xent_fwd_2};
const dlk_variant dlk_xent_bwd_thread = {1,
                                         "rowthread",
                                         DLK_CUDA,
                                         "one thread per row: logsumexp then softmax - onehot",
                                         xent_bwd_supports,
                                         xent_bwd_ws,
                                         xent_bwd_1};
const dlk_variant dlk_xent_bwd_block = {2,
                                        "rowblock",
                                        DLK_CUDA,
                                        "one block per row: logsumexp then softmax - onehot",
                                        xent_bwd_supports,
                                        xent_bwd_ws,
                                        xent_bwd_2};

/* ======================================================================================
   embedding
   ====================================================================================== */

static dlk_k_embedding emb_fwd_desc(const dlk_embedding_fwd_args *a) {
  dlk_k_embedding d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->table.dtype;
  d.id_dtype = (int)a->ids.dtype;
  d.padding_idx = a->padding_idx;
  d.ids = kvec(&a->ids);
  d.table = kmat2(&a->table);
  d.out = kmat2(&a->out);
  return d;
}

static dlk_k_embedding emb_bwd_desc(const dlk_embedding_bwd_args *a) {
  dlk_k_embedding d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->dtable.dtype;
  d.id_dtype = (int)a->ids.dtype;
  d.padding_idx = a->padding_idx;
  d.ids = kvec(&a->ids);
  d.table = kmat2(&a->dtable);
  d.out = kmat2(&a->dout);
  return d;
}

static bool emb_fwd_dtypes(const dlk_embedding_fwd_args *a, char *why, size_t n) {
  return id_dtype("ids", &a->ids, why, n) && float_dtype("table", &a->table, why, n) &&
         same_dtype("out", &a->out, a->table.dtype, why, n);
}

static bool emb_fwd_simple_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return emb_fwd_dtypes((const dlk_embedding_fwd_args *)args, why, n);
}

static bool emb_fwd_vec_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_embedding_fwd_args *a = (const dlk_embedding_fwd_args *)args;
  if (!emb_fwd_dtypes(a, why, n)) return false;
  dlk_k_embedding d = emb_fwd_desc(a);
  const char *w = dlk_k_embedding_fwd_vec_why(&d);
  if (w) snprintf(why, n, "%s", w);
  return w == NULL;
}

static dlk_status emb_fwd_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_embedding_fwd_args *a = (const dlk_embedding_fwd_args *)args;
  dlk_k_embedding d = emb_fwd_desc(a);
  DLK_TRY(enter(ctx));
  DLK_TRY(check_ids(ctx, "embedding_fwd", "ids", &a->ids, a->table.shape[0], 0, 0));
  DLK_CUDA_TRY(ctx, dlk_k_embedding_fwd(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(emb_fwd_1, emb_fwd_impl, 1)
DLK_IMPL_RUN(emb_fwd_2, emb_fwd_impl, 2)

const dlk_variant dlk_embedding_fwd_simple = {
    1,    "simple", DLK_CUDA, "one thread per element, any strides", emb_fwd_simple_supports,
    NULL, emb_fwd_1};
const dlk_variant dlk_embedding_fwd_vec = {
    2,    "rowvec", DLK_CUDA, "one warp per row, 16-byte vectors", emb_fwd_vec_supports,
    NULL, emb_fwd_2};

static bool emb_bwd_dtypes(const dlk_embedding_bwd_args *a, char *why, size_t n) {
  return id_dtype("ids", &a->ids, why, n) && float_dtype("dtable", &a->dtable, why, n) &&
         same_dtype("dout", &a->dout, a->dtable.dtype, why, n);
}

static bool emb_bwd_atomic_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  if (!emb_bwd_dtypes(a, why, n)) return false;
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

static bool emb_bwd_sorted_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  if (!emb_bwd_dtypes(a, why, n)) return false;
  if (a->ids.shape[0] > INT32_MAX) {
    snprintf(why, n, "%lld ids: the sort takes at most 2^31 - 1", (long long)a->ids.shape[0]);
    return false;
  }
  if (a->dtable.shape[0] >= (int64_t)UINT32_MAX) {
    snprintf(why, n, "vocabulary of %lld rows does not fit 32-bit sort keys",
             (long long)a->dtable.shape[0]);
    return false;
  }
  dlk_k_embedding d = emb_bwd_desc(a);
  int err = 0;
  dlk_k_embedding_bwd_ws(&d, &err);
  if (err) {
    snprintf(why, n, "sizing the radix sort failed (%s)", cudaGetErrorString((cudaError_t)err));
    return false;
  }
  return true;
}

static size_t emb_bwd_sorted_ws(const dlk_context *ctx, const void *args) {
  (void)ctx;
  dlk_k_embedding d = emb_bwd_desc((const dlk_embedding_bwd_args *)args);
  int err = 0;
  return dlk_k_embedding_bwd_ws(&d, &err);
}

static dlk_status emb_bwd_atomic_run(dlk_context *ctx, const void *args, void *ws, size_t wsb) {
  (void)ws, (void)wsb;
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  dlk_k_embedding d = emb_bwd_desc(a);
  DLK_TRY(enter(ctx));
  DLK_TRY(check_ids(ctx, "embedding_bwd", "ids", &a->ids, a->dtable.shape[0], 0, 0));
  DLK_CUDA_TRY(ctx, dlk_k_embedding_bwd_atomic(&d, ctx->stream));
  return DLK_OK;
}

static dlk_status emb_bwd_sorted_run(dlk_context *ctx, const void *args, void *ws, size_t wsb) {
  const dlk_embedding_bwd_args *a = (const dlk_embedding_bwd_args *)args;
  dlk_k_embedding d = emb_bwd_desc(a);
  int err = 0;
  size_t need = dlk_k_embedding_bwd_ws(&d, &err);
  if (err) DLK_CUDA_TRY(ctx, err);
  if (wsb < need)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "embedding_bwd/sorted: workspace %zu < %zu bytes", wsb,
                    need);
  DLK_TRY(enter(ctx));
  DLK_TRY(check_ids(ctx, "embedding_bwd", "ids", &a->ids, a->dtable.shape[0], 0, 0));
  DLK_CUDA_TRY(ctx, dlk_k_embedding_bwd_sorted(&d, ws, wsb, ctx->stream));
  return DLK_OK;
}

const dlk_variant dlk_embedding_bwd_atomic = {
    1,
    "atomic",
    DLK_CUDA,
    "zero, then atomicAdd scatter (f32/f64; not deterministic)",
    emb_bwd_atomic_supports,
    NULL,
    emb_bwd_atomic_run};
const dlk_variant dlk_embedding_bwd_sorted = {
    2,
    "sorted",
    DLK_CUDA,
    "radix-sort (id, position), one warp per run of equal ids sums in order (deterministic)",
    emb_bwd_sorted_supports,
    emb_bwd_sorted_ws,
    emb_bwd_sorted_run};

/* ======================================================================================
   layer norm
   ====================================================================================== */

static bool ln_fwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_layernorm_fwd_args *a = (const dlk_layernorm_fwd_args *)args;
  dlk_dtype t = a->x.dtype, acc = acc_dtype(t);
  if (!float_dtype("x", &a->x, why, n) || !same_dtype("y", &a->y, t, why, n)) return false;
  if (a->has_gamma && !same_dtype("gamma", &a->gamma, t, why, n)) return false;
  if (a->has_beta && !same_dtype("beta", &a->beta, t, why, n)) return false;
  if (a->has_mean && !same_dtype("mean", &a->mean, acc, why, n)) return false;
  if (a->has_rstd && !same_dtype("rstd", &a->rstd, acc, why, n)) return false;
  return true;
}

static dlk_status ln_fwd_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_layernorm_fwd_args *a = (const dlk_layernorm_fwd_args *)args;
  dlk_k_layernorm d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.eps = a->eps;
  d.x = kmat2(&a->x);
  d.y = kmat2(&a->y);
  d.gamma = kvec_opt(a->has_gamma, &a->gamma);
  d.beta = kvec_opt(a->has_beta, &a->beta);
  d.mean = kvec_opt(a->has_mean, &a->mean);
  d.rstd = kvec_opt(a->has_rstd, &a->rstd);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_layernorm_fwd(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(ln_fwd_1, ln_fwd_impl, 1)
DLK_IMPL_RUN(ln_fwd_2, ln_fwd_impl, 2)

const dlk_variant dlk_layernorm_fwd_thread = {
    1,    "rowthread", DLK_CUDA, "one thread per row, two-pass mean/variance", ln_fwd_supports,
    NULL, ln_fwd_1};
const dlk_variant dlk_layernorm_fwd_warp = {
    2,
    "rowwarp",
    DLK_CUDA,
    "one warp per row, two-pass mean/variance, vectors when contiguous",
    ln_fwd_supports,
    NULL,
    ln_fwd_2};

static dlk_k_layernorm ln_bwd_desc(const dlk_layernorm_bwd_args *a) {
  dlk_k_layernorm d;
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

static bool ln_bwd_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  const dlk_layernorm_bwd_args *a = (const dlk_layernorm_bwd_args *)args;
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

static size_t ln_bwd_warp_ws(const dlk_context *ctx, const void *args) {
  (void)ctx;
  dlk_k_layernorm d = ln_bwd_desc((const dlk_layernorm_bwd_args *)args);
  return dlk_k_layernorm_bwd_ws(&d, 2);
}

static dlk_status ln_bwd_impl(dlk_context *ctx, const void *args, void *ws, size_t wsb, int impl) {
  dlk_k_layernorm d = ln_bwd_desc((const dlk_layernorm_bwd_args *)args);
  if (wsb < dlk_k_layernorm_bwd_ws(&d, impl))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "layernorm_bwd: workspace %zu < %zu bytes", wsb,
                    dlk_k_layernorm_bwd_ws(&d, impl));
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_layernorm_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN_WS(ln_bwd_1, ln_bwd_impl, 1)
DLK_IMPL_RUN_WS(ln_bwd_2, ln_bwd_impl, 2)

const dlk_variant dlk_layernorm_bwd_simple = {
    1,
    "simple",
    DLK_CUDA,
    "dx one thread per row; dgamma/dbeta one thread per column",
    ln_bwd_supports,
    NULL,
    ln_bwd_1};
const dlk_variant dlk_layernorm_bwd_warp = {
    2,
    "rowwarp",
    DLK_CUDA,
    "dx one warp per row; dgamma/dbeta by row chunks summed in order (workspace, no atomics)",
    ln_bwd_supports,
    ln_bwd_warp_ws,
    ln_bwd_2};

/* ======================================================================================
   dropout
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

static bool dropout_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
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
  return true;
}

static bool dropout_vec_supports(const dlk_context *ctx, const void *args, char *why, size_t n) {
  if (!dropout_supports(ctx, args, why, n)) return false;
  dlk_k_dropout_desc d = dropout_desc((const dlk_dropout_args *)args);
  const char *w = dlk_k_dropout_vec_why(&d);
  if (w) snprintf(why, n, "%s", w);
  return w == NULL;
}

static dlk_status dropout_impl(dlk_context *ctx, const void *args, int impl) {
  dlk_k_dropout_desc d = dropout_desc((const dlk_dropout_args *)args);
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_dropout(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(dropout_1, dropout_impl, 1)
DLK_IMPL_RUN(dropout_2, dropout_impl, 2)

const dlk_variant dlk_dropout_strided = {1,
                                         "strided",
                                         DLK_CUDA,
                                         "one thread per element, any strides, up to 8 dims",
                                         dropout_supports,
                                         NULL,
                                         dropout_1};
const dlk_variant dlk_dropout_vec = {
    2, "vec", DLK_CUDA, "contiguous, 16-byte vectors", dropout_vec_supports, NULL, dropout_2};

/* ======================================================================================
   optimizers
   ====================================================================================== */

/* param/grad one float dtype, states its accumulation dtype, all contiguous, same numel.
   vec: every pointer aligned to 4 elements. */
static bool optim_check(const char *states[], const dlk_tensor *st[], int nst,
                        const dlk_tensor *param, const dlk_tensor *grad, bool vec, char *why,
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
    if (vec && !ptr_aligned(all[i]->data, 4 * dlk_dtype_size(all[i]->dtype))) {
      snprintf(why, n, "%s not aligned to 4 elements (%zu bytes) for the vector loads", names[i],
               4 * dlk_dtype_size(all[i]->dtype));
      return false;
    }
  }
  return true;
}

static bool sgd_check(const void *args, bool vec, char *why, size_t n) {
  const dlk_sgd_args *a = (const dlk_sgd_args *)args;
  const char *names[1] = {"momentum_buf"};
  const dlk_tensor *st[1] = {&a->buf};
  if (a->p.momentum != 0.0 && !a->has_buf) {
    snprintf(why, n, "momentum %g needs momentum_buf", a->p.momentum);
    return false;
  }
  return optim_check(names, st, a->p.momentum != 0.0 ? 1 : 0, &a->param, &a->grad, vec, why, n);
}
static bool sgd_supports_1(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return sgd_check(args, false, why, n);
}
static bool sgd_supports_2(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return sgd_check(args, true, why, n);
}

static dlk_status sgd_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_sgd_args *a = (const dlk_sgd_args *)args;
  dlk_k_sgd_desc d;
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
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_sgd(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(sgd_1, sgd_impl, 1)
DLK_IMPL_RUN(sgd_2, sgd_impl, 2)

static bool adam_check(const void *args, bool vec, char *why, size_t n) {
  const dlk_adam_args *a = (const dlk_adam_args *)args;
  const char *names[2] = {"exp_avg", "exp_avg_sq"};
  const dlk_tensor *st[2] = {&a->m, &a->v};
  if (a->p.step < 1) {
    snprintf(why, n, "step %lld < 1", (long long)a->p.step);
    return false;
  }
  return optim_check(names, st, 2, &a->param, &a->grad, vec, why, n);
}
static bool adam_supports_1(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return adam_check(args, false, why, n);
}
static bool adam_supports_2(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return adam_check(args, true, why, n);
}

static dlk_status adam_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_adam_args *a = (const dlk_adam_args *)args;
  dlk_k_adam_desc d;
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
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adam(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(adam_1, adam_impl, 1)
DLK_IMPL_RUN(adam_2, adam_impl, 2)

static bool adagrad_check(const void *args, bool vec, char *why, size_t n) {
  const dlk_adagrad_args *a = (const dlk_adagrad_args *)args;
  const char *names[1] = {"state_sum"};
  const dlk_tensor *st[1] = {&a->sum};
  if (a->p.step < 1) {
    snprintf(why, n, "step %lld < 1", (long long)a->p.step);
    return false;
  }
  return optim_check(names, st, 1, &a->param, &a->grad, vec, why, n);
}
static bool adagrad_supports_1(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return adagrad_check(args, false, why, n);
}
static bool adagrad_supports_2(const dlk_context *ctx, const void *args, char *why, size_t n) {
  (void)ctx;
  return adagrad_check(args, true, why, n);
}

static dlk_status adagrad_impl(dlk_context *ctx, const void *args, int impl) {
  const dlk_adagrad_args *a = (const dlk_adagrad_args *)args;
  dlk_k_adagrad_desc d;
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
  DLK_TRY(enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adagrad(&d, impl, ctx->stream));
  return DLK_OK;
}
DLK_IMPL_RUN(adagrad_1, adagrad_impl, 1)
DLK_IMPL_RUN(adagrad_2, adagrad_impl, 2)

const dlk_variant dlk_sgd_simple = {
    1, "simple", DLK_CUDA, "one element per thread", sgd_supports_1, NULL, sgd_1};
const dlk_variant dlk_sgd_vec = {
    2, "vec", DLK_CUDA, "4 elements per thread, vector loads", sgd_supports_2, NULL, sgd_2};
const dlk_variant dlk_adam_simple = {
    1, "simple", DLK_CUDA, "one element per thread", adam_supports_1, NULL, adam_1};
const dlk_variant dlk_adam_vec = {
    2, "vec", DLK_CUDA, "4 elements per thread, vector loads", adam_supports_2, NULL, adam_2};
const dlk_variant dlk_adagrad_simple = {
    1, "simple", DLK_CUDA, "one element per thread", adagrad_supports_1, NULL, adagrad_1};
const dlk_variant dlk_adagrad_vec = {
    2, "vec", DLK_CUDA, "4 elements per thread, vector loads", adagrad_supports_2, NULL, adagrad_2};

#else
typedef int dlk_nn_cuda_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDA */
