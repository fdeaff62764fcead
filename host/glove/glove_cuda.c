/*
 * glove family: the CUDA rows (ids 1..9) of the glove_epoch, glove_cooccur_chunk and
 * glove_topk tables in host/glove/glove.c, one supports/workspace/run triple per op for
 * its whole ladder (`impl` is the kernel of kernels/glove/glove.h). supports() says
 * exactly why a kernel cannot run a call (dtype, alignment, sizes, deterministic mode);
 * workspace() asks the launcher for the bytes of its layout (dispatch reserves them in
 * the context's arena; nothing is allocated here); run() turns the op record
 * (host/glove/glove.h) into the launcher's descriptor, launches on the context's stream
 * and reads the small results back through the context's pinned host scratch.
 *
 *   glove_epoch          1 warp          Hogwild, a group of 8/16/32 lanes per record,
 *                                        atomic adds, in-flight records capped
 *                        2 det           rows updated in record order: same bits each run
 *   glove_cooccur_chunk  1 sort_rbk      cub radix sort + cub ReduceByKey
 *                        2 sort_ordered  radix sort + per-pair sums in generation order
 *   glove_topk           1 lanes         k <= 32, per-lane lists over row slices
 *                        2 sort          any k, stable radix sort per column
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "glove.h"

#if DLK_HAVE_CUDA

#include <cuda_runtime_api.h>

#include "../../kernels/glove/glove.h"

static bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* ======================================================================================
   glove_epoch: 1 warp, 2 det (kernels/glove/epoch.cu)
   ====================================================================================== */

static dlk_k_glove_epoch_desc epoch_desc(const dlk_glove_epoch_args *a) {
  dlk_k_glove_epoch_desc e;
  memset(&e, 0, sizeof e);
  e.dtype = (int)a->dtype;
  e.params = a->params;
  e.gradsq = a->gradsq;
  e.vocab_size = a->vocab_size;
  e.dim = a->dim;
  e.records = a->records;
  e.count = a->count;
  e.eta = a->eta, e.alpha = a->alpha, e.x_max = a->x_max, e.grad_clip = a->grad_clip;
  e.keras = a->keras ? 1 : 0;
  return e;
}

/* What both epoch kernels need. threads and cancel are CPU-only fields: ignored. */
static bool epoch_common(const dlk_glove_epoch_args *a, char *why, size_t n) {
  if (a->dtype != DLK_F32 && a->dtype != DLK_F64) {
    snprintf(why, n, "needs F32 or F64 parameters, got %s", dlk_dtype_name(a->dtype));
    return false;
  }
  if (a->dim < 1) {
    snprintf(why, n, "vector size %d < 1", a->dim);
    return false;
  }
  if (a->vocab_size < 1 || a->vocab_size >= INT32_MAX) {
    snprintf(why, n, "vocab_size %lld not in [1, 2^31 - 1)", (long long)a->vocab_size);
    return false;
  }
  if (a->count > 0 && !aligned16(a->records)) {
    snprintf(why, n, "records not 16-byte aligned (the kernels load each record in one 16-byte read)");
    return false;
  }
  return true;
}

bool dlk_glove_epoch_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                   size_t n) {
  const dlk_glove_epoch_args *a = args;
  if (impl == 1) {
    if (ctx->opts.deterministic) {
      snprintf(why, n, "not deterministic: lock-free Hogwild updates race between records that share a row (det is)");
      return false;
    }
    return epoch_common(a, why, n);
  }
  if (!epoch_common(a, why, n)) return false;
  if (a->count >= INT32_MAX) {
    snprintf(why, n, "chunk of %lld records: the schedule indexes records with 32 bits (< 2^31 - 1)",
             (long long)a->count);
    return false;
  }
  dlk_k_glove_epoch_desc e = epoch_desc(a);
  if (a->count > 0 && dlk_k_glove_epoch_ws(&e, 2) == 0) {
    snprintf(why, n, "cub could not size the radix sort of the schedule");
    return false;
  }
  return true;
}

size_t dlk_glove_epoch_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  const dlk_glove_epoch_args *a = args;
  if (impl == 2 && a->count <= 0) return 0;
  dlk_k_glove_epoch_desc e = epoch_desc(a);
  return dlk_k_glove_epoch_ws(&e, impl);
}

dlk_status dlk_glove_epoch_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                    size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_glove_epoch_args *a = args;
  const char *name = impl == 2 ? "glove_epoch/det" : "glove_epoch/warp";
  if (a->count == 0) {
    *a->cost_sum = 0;
    *a->skipped = 0;
    return DLK_OK;
  }
  DLK_TRY(dlk_cuda_enter(ctx));
  if (!ctx->host_scratch) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", name);
  dlk_k_glove_epoch_desc e = epoch_desc(a);
  dlk_k_glove_epoch_out o;
  memset(&o, 0, sizeof o);
  e.pinned = ctx->host_scratch;
  e.out = &o;
  DLK_CUDA_TRY(ctx, dlk_k_glove_epoch(&e, impl, ws, ctx->stream));
  if (o.bad_ids)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                    "%s: %lld records with an id outside [1, %lld] reached the kernel and were left "
                    "out (the host's record checks were bypassed); the other records were applied",
                    name, (long long)o.bad_ids, (long long)a->vocab_size);
  if (o.stalled)
    return dlk_fail(ctx, DLK_ERR_INTERNAL,
                    "%s: %lld records waited more than 10 s for the previous record of their rows "
                    "(a scheduling bug) and were dropped; this epoch's model is not trustworthy",
                    name, (long long)o.stalled);
  *a->cost_sum = o.cost_sum;
  *a->skipped = o.skipped;
  return DLK_OK;
}

/* ======================================================================================
   glove_cooccur_chunk: 1 sort_rbk, 2 sort_ordered (kernels/glove/cooccur.cu)
   ====================================================================================== */

static dlk_k_glove_cooccur_chunk_desc cooc_desc(const dlk_glove_cooccur_chunk_args *a) {
  dlk_k_glove_cooccur_chunk_desc c;
  memset(&c, 0, sizeof c);
  c.ids = a->ids;
  c.n = a->n;
  c.n_prefix = a->n_prefix;
  c.vocab_size = a->vocab_size;
  c.window = a->window;
  c.symmetric = a->symmetric ? 1 : 0;
  c.distance_weighting = a->distance_weighting ? 1 : 0;
  return c;
}

bool dlk_glove_cooccur_chunk_cuda_supports(const dlk_context *ctx, const void *args, int impl,
                                           char *why, size_t n) {
  const dlk_glove_cooccur_chunk_args *a = args;
  if (impl == 1 && ctx->opts.deterministic) {
    snprintf(why, n, "not deterministic: cub ReduceByKey adds a pair's f64 weights in an order that "
             "can change between runs (sort_ordered is)");
    return false;
  }
  if (a->n < 0 || a->n_prefix < 0 || a->n_prefix > a->n) {
    snprintf(why, n, "n %lld, n_prefix %lld: need 0 <= n_prefix <= n", (long long)a->n,
             (long long)a->n_prefix);
    return false;
  }
  if (a->window < 1) {
    snprintf(why, n, "window %d < 1", a->window);
    return false;
  }
  if (a->vocab_size < 1 || a->vocab_size >= INT32_MAX) {
    snprintf(why, n, "vocab_size %lld not in [1, 2^31 - 1)", (long long)a->vocab_size);
    return false;
  }
  if (a->n > 0 && !a->ids) {
    snprintf(why, n, "ids is NULL");
    return false;
  }
  /* Pairs bound: targets * window * (2 if symmetric) must fit the sizes the sort takes. */
  int64_t targets = a->n - a->n_prefix, bound;
  if (dlk_mul_overflows(targets, (int64_t)a->window * (a->symmetric ? 2 : 1), &bound) ||
      bound > ((int64_t)1 << 40)) {
    snprintf(why, n, "%lld targets x window %d generate too many pairs for one chunk",
             (long long)targets, a->window);
    return false;
  }
  dlk_k_glove_cooccur_chunk_desc c = cooc_desc(a);
  if (targets > 0 && dlk_k_glove_cooccur_chunk_ws(&c, impl) == 0) {
    snprintf(why, n, "cub could not size the sort of %lld pairs", (long long)bound);
    return false;
  }
  return true;
}

size_t dlk_glove_cooccur_chunk_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  const dlk_glove_cooccur_chunk_args *a = args;
  if (a->n - a->n_prefix <= 0) return 0;
  dlk_k_glove_cooccur_chunk_desc c = cooc_desc(a);
  return dlk_k_glove_cooccur_chunk_ws(&c, impl);
}

dlk_status dlk_glove_cooccur_chunk_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                            size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_glove_cooccur_chunk_args *a = args;
  const char *name = impl == 2 ? "glove_cooccur_chunk/sort_ordered" : "glove_cooccur_chunk/sort_rbk";
  if (a->n - a->n_prefix <= 0) {
    *a->out_count = 0;
    return DLK_OK;
  }
  DLK_TRY(dlk_cuda_enter(ctx));
  if (!ctx->host_scratch) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", name);
  dlk_k_glove_cooccur_chunk_desc c = cooc_desc(a);
  int64_t count = 0, bad = 0;
  c.pinned = ctx->host_scratch;
  c.out_host = a->out;
  c.out_cap = a->out_cap;
  c.out_count = &count;
  c.bad_ids = &bad;
  DLK_CUDA_TRY(ctx, dlk_k_glove_cooccur_chunk(&c, impl, ws, ctx->stream));
  if (bad)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: %lld ids outside [0, %lld] in the chunk; nothing written",
                    name, (long long)bad, (long long)a->vocab_size);
  if (count > a->out_cap)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: %lld records do not fit out_cap %lld; nothing written",
                    name, (long long)count, (long long)a->out_cap);
  *a->out_count = count;
  return DLK_OK;
}

/* ======================================================================================
   glove_topk: 1 lanes, 2 sort (kernels/glove/topk.cu)
   ====================================================================================== */

static dlk_k_glove_topk_desc topk_desc(const dlk_glove_topk_args *a) {
  dlk_k_glove_topk_desc t;
  memset(&t, 0, sizeof t);
  t.dtype = (int)a->scores.dtype;
  t.scores = a->scores.data;
  t.rows = a->scores.ndim == 2 ? a->scores.shape[0] : 0;
  t.cols = a->scores.ndim == 2 ? a->scores.shape[1] : 0;
  t.exclude = a->exclude;
  t.n_exclude = a->n_exclude;
  t.k = a->k;
  t.idx_host = a->idx;
  t.val_host = a->val;
  return t;
}

bool dlk_glove_topk_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                  size_t n) {
  (void)ctx;
  const dlk_glove_topk_args *a = args;
  const dlk_tensor *s = &a->scores;
  if (s->dtype != DLK_F32 && s->dtype != DLK_F64) {
    snprintf(why, n, "scores must be F32 or F64, got %s", dlk_dtype_name(s->dtype));
    return false;
  }
  if (s->ndim != 2 || !dlk_tensor_is_contiguous(s)) {
    snprintf(why, n, "scores must be a contiguous 2-D [rows, cols] tensor");
    return false;
  }
  if (s->shape[0] >= INT32_MAX) {
    snprintf(why, n, "%lld rows: row ids are 32-bit", (long long)s->shape[0]);
    return false;
  }
  if (a->k < 1) {
    snprintf(why, n, "k %d < 1", a->k);
    return false;
  }
  if (a->n_exclude < 0 || (a->n_exclude > 0 && !a->exclude)) {
    snprintf(why, n, "n_exclude %d with exclude %s", a->n_exclude, a->exclude ? "set" : "NULL");
    return false;
  }
  if (impl == 1) {
    if (a->k > DLK_K_GLOVE_TOPK_LANES_MAX_K) {
      snprintf(why, n, "k %d > %d (the lists live in registers; sort takes any k)", a->k,
               DLK_K_GLOVE_TOPK_LANES_MAX_K);
      return false;
    }
    return true;
  }
  int64_t N;
  if (dlk_mul_overflows(a->scores.shape[0], a->scores.shape[1], &N) || N >= INT32_MAX) {
    snprintf(why, n, "rows x cols = %lld x %lld: the sort indexes scores with 32 bits",
             (long long)a->scores.shape[0], (long long)a->scores.shape[1]);
    return false;
  }
  dlk_k_glove_topk_desc t = topk_desc(a);
  if (N > 0 && dlk_k_glove_topk_ws(&t, 2) == 0) {
    snprintf(why, n, "cub could not size the sort of %lld scores", (long long)N);
    return false;
  }
  return true;
}

size_t dlk_glove_topk_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_glove_topk_desc t = topk_desc(args);
  if (t.rows < 1 || t.cols < 1) return 0;
  return dlk_k_glove_topk_ws(&t, impl);
}

dlk_status dlk_glove_topk_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                   size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_glove_topk_args *a = args;
  dlk_k_glove_topk_desc t = topk_desc(a);
  if (t.cols < 1) return DLK_OK;
  if (t.rows < 1) {
    /* No rows: every slot is empty, as the reference leaves it. */
    for (int64_t i = 0; i < t.cols * a->k; i++) a->idx[i] = -1, a->val[i] = -INFINITY;
    return DLK_OK;
  }
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_glove_topk(&t, impl, ws, ctx->stream));
  return DLK_OK;
}

#else
typedef int dlk_glove_cuda_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDA */
