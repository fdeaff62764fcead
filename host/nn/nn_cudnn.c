/*
 * nn family: the vendor softmax rows of host/nn/nn.c's softmax tables. 10 "cudnn": softmax
 * and log-softmax, forward and backward, as cuDNN backend graphs (host/cudnn/graph.h); the
 * vendor baseline dlk-bench compares the hand-written rows with. (The legacy
 * cudnnSoftmaxForward/Backward are deprecated in cuDNN 9 and not used.)
 *
 * Layout: the [rows, cols] matrix is the 4-d tensor [1, 1, rows, cols] with strides
 * (., ., row stride, 1); a row statistic is [1, 1, rows, 1] f32 in the workspace. A
 * reduction whose result feeds later nodes is not among the patterns cuDNN's generic fusion
 * engines list (only its fused attention engine does that), so every pass ends at its one
 * reduction or has none: one graph, one plan, one launch each:
 *
 *   forward   max     m  = max_j x                      (reduction MAX)
 *             sumexp  s  = sum_j exp(x - m)             (SUB, EXP, reduction ADD)
 *             log     ls = log s                        (log-softmax only; LOG)
 *             out     softmax y = exp(x - m) / s        (SUB, EXP, DIV)
 *                     log-softmax y = (x - m) - ls      (SUB, SUB)
 *   backward  dot     s  = sum_j dy y  (softmax), sum_j dy (log-softmax)
 *             out     softmax dx = (dy - s) y; log-softmax dx = dy - exp(y) s
 *
 * the CPU reference's formulas (host/nn/nn_cpu.c), f32 in between for f16/bf16 data.
 *
 * supports(): f32, f16, bf16 and f64 (whether an engine takes f64 is cuDNN's answer), unit
 * column stride and row stride >= cols, any size (backend tensors hold int64 sizes, so the
 * legacy API's 2^31-element limit is gone). Then every plan of the call is built (once per
 * shape, in the plan cache), so an engine that cuDNN does not have is a "not supported"
 * with cuDNN's reason, never a failed run. workspace(): the row statistics, then the
 * largest plan workspace. Deterministic mode asks for deterministic reductions and
 * excludes non-deterministic engines (graph.h).
 */
#include "nn.h"

/* Every host .c file is compiled in every build: a build without cuDNN gets an empty file. */
#if DLK_HAVE_CUDNN
#include <stdio.h>
#include <string.h>

#include "../cudnn/graph.h"

/* Tensor uids of the softmax graphs. */
enum { U_X = 1, U_Y, U_M, U_S, U_LS, U_DY, U_DX };

/* The passes; each one graph. */
typedef enum pass { FWD_MAX, FWD_SUMEXP, FWD_LOG, FWD_OUT, BWD_DOT, BWD_OUT } pass;
static const char *const pass_names[] = {"softmax_fwd/max", "softmax_fwd/sumexp",
                                         "softmax_fwd/log", "softmax_fwd/out",
                                         "softmax_bwd/dot", "softmax_bwd/out"};

/* What a build function sees: the op's argument record (one of the two). */
typedef struct graph_arg {
  const dlk_softmax_fwd_args *fwd;
  const dlk_softmax_bwd_args *bwd;
} graph_arg;

/* ---- supports: the static rules ---- */

static bool dtype_ok(dlk_dtype t) {
  return t == DLK_F32 || t == DLK_F16 || t == DLK_BF16 || t == DLK_F64;
}

/* One [rows, cols] operand as the graphs describe it, or false with the reason. */
static bool matrix_ok(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (t->ndim != 2) {
    snprintf(why, n, "%s's leading dims do not merge into rows (a %d-d view): the CPU reference takes it",
             name, t->ndim);
    return false;
  }
  if (!dtype_ok(t->dtype)) {
    snprintf(why, n, "%s is %s; the cuDNN softmax takes f32, f16, bf16 and f64", name,
             dlk_dtype_name(t->dtype));
    return false;
  }
  const int64_t rows = t->shape[0], cols = t->shape[1];
  if (cols > 1 && t->strides[1] != 1) {
    snprintf(why, n, "%s has column stride %lld; the cuDNN variant needs contiguous rows", name,
             (long long)t->strides[1]);
    return false;
  }
  if (rows > 1 && t->strides[0] < cols) {
    snprintf(why, n, "%s has row stride %lld < %lld columns", name, (long long)t->strides[0],
             (long long)cols);
    return false;
  }
  return true;
}

/* ---- the graphs ---- */

/* [rows, cols] as [1, 1, rows, cols]. */
static dlk_cg_tensor *matrix(dlk_cg *g, int64_t uid, const dlk_tensor *t) {
  const int64_t rows = t->shape[0], cols = t->shape[1];
  const int64_t rs = rows > 1 ? t->strides[0] : cols;
  const int64_t dims[4] = {1, 1, rows, cols}, strides[4] = {rows * rs, rows * rs, rs, 1};
  return dlk_cg_tensor_new(g, uid, t->dtype, 4, dims, strides, dlk_cg_alignment(t->data));
}

/* Row statistics are f32, f64 for f64 data. */
static dlk_dtype stat_dtype(dlk_dtype data) {
  return data == DLK_F64 ? DLK_F64 : DLK_F32;
}

/* A row statistic [1, 1, rows, 1] in the workspace (256-byte aligned slices). */
static dlk_cg_tensor *row_stat(dlk_cg *g, int64_t uid, const dlk_tensor *t) {
  const int64_t rows = t->shape[0];
  const int64_t dims[4] = {1, 1, rows, 1}, strides[4] = {rows, rows, 1, 1};
  return dlk_cg_tensor_new(g, uid, stat_dtype(t->dtype), 4, dims, strides, 16);
}

/* A full-size f32 intermediate. */
static dlk_cg_tensor *full(dlk_cg *g, const dlk_tensor *t) {
  const int64_t dims[4] = {1, 1, t->shape[0], t->shape[1]};
  return dlk_cg_virtual(g, 4, dims);
}

static void set_compute(dlk_cg *g, dlk_dtype t) {
  if (t == DLK_F64) dlk_cg_set_compute(g, CUDNN_DATA_DOUBLE);
}

static void fwd_max(dlk_cg *g, const void *arg) {
  const dlk_softmax_fwd_args *a = ((const graph_arg *)arg)->fwd;
  set_compute(g, a->x.dtype);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_MAX, matrix(g, U_X, &a->x), row_stat(g, U_M, &a->x));
}

static void fwd_sumexp(dlk_cg *g, const void *arg) {
  const dlk_softmax_fwd_args *a = ((const graph_arg *)arg)->fwd;
  set_compute(g, a->x.dtype);
  dlk_cg_tensor *t = full(g, &a->x), *e = full(g, &a->x);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, matrix(g, U_X, &a->x), row_stat(g, U_M, &a->x), t);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, t, NULL, e);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, row_stat(g, U_S, &a->x));
}

static void fwd_log(dlk_cg *g, const void *arg) {
  const dlk_softmax_fwd_args *a = ((const graph_arg *)arg)->fwd;
  set_compute(g, a->x.dtype);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_LOG, row_stat(g, U_S, &a->x), NULL, row_stat(g, U_LS, &a->x));
}

static void fwd_out(dlk_cg *g, const void *arg) {
  const dlk_softmax_fwd_args *a = ((const graph_arg *)arg)->fwd;
  set_compute(g, a->x.dtype);
  dlk_cg_tensor *x = matrix(g, U_X, &a->x), *y = matrix(g, U_Y, &a->y);
  dlk_cg_tensor *t = full(g, &a->x);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, x, row_stat(g, U_M, &a->x), t);
  if (a->log) {
    dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, t, row_stat(g, U_LS, &a->x), y);
  } else {
    dlk_cg_tensor *e = full(g, &a->x);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, t, NULL, e);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_DIV, e, row_stat(g, U_S, &a->x), y);
  }
}

static void bwd_dot(dlk_cg *g, const void *arg) {
  const dlk_softmax_bwd_args *a = ((const graph_arg *)arg)->bwd;
  set_compute(g, a->y.dtype);
  dlk_cg_tensor *dy = matrix(g, U_DY, &a->dy), *s = row_stat(g, U_S, &a->y);
  if (a->log) {
    dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, dy, s);
  } else {
    dlk_cg_tensor *p = full(g, &a->y);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, dy, matrix(g, U_Y, &a->y), p);
    dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, p, s);
  }
}

static void bwd_out(dlk_cg *g, const void *arg) {
  const dlk_softmax_bwd_args *a = ((const graph_arg *)arg)->bwd;
  set_compute(g, a->y.dtype);
  dlk_cg_tensor *y = matrix(g, U_Y, &a->y), *dy = matrix(g, U_DY, &a->dy);
  dlk_cg_tensor *dx = matrix(g, U_DX, &a->dx), *s = row_stat(g, U_S, &a->y);
  dlk_cg_tensor *t = full(g, &a->y), *u = full(g, &a->y);
  if (a->log) { /* dx = dy - exp(y) s */
    dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, y, NULL, t);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, t, s, u);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, dy, u, dx);
  } else { /* dx = (dy - s) y */
    dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, dy, s, t);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, t, y, dx);
  }
}

static const dlk_cg_build_fn builders[] = {fwd_max, fwd_sumexp, fwd_log, fwd_out, bwd_dot, bwd_out};

/* Everything a pass's plan depends on. */
static void pass_key(pass p, const graph_arg *ga, dlk_cg_key *k) {
  dlk_cg_key_init(k);
  if (ga->fwd) {
    const dlk_softmax_fwd_args *a = ga->fwd;
    if (p == FWD_LOG) {
      dlk_cg_key_add(k, "rows%lld:%s", (long long)a->x.shape[0],
                     dlk_dtype_name(stat_dtype(a->x.dtype)));
      return;
    }
    if (p == FWD_OUT) dlk_cg_key_add(k, "log%d;", a->log);
    dlk_cg_key_tensor(k, "x", &a->x);
    if (p == FWD_OUT) dlk_cg_key_tensor(k, "y", &a->y);
  } else {
    const dlk_softmax_bwd_args *a = ga->bwd;
    dlk_cg_key_add(k, "log%d;", a->log);
    dlk_cg_key_tensor(k, "dy", &a->dy);
    if (!(p == BWD_DOT && a->log)) dlk_cg_key_tensor(k, "y", &a->y);
    if (p == BWD_OUT) dlk_cg_key_tensor(k, "dx", &a->dx);
  }
}

/* The passes of one call, in order. */
static int passes_of(const graph_arg *ga, pass *out) {
  int n = 0;
  if (ga->fwd) {
    out[n++] = FWD_MAX;
    out[n++] = FWD_SUMEXP;
    if (ga->fwd->log) out[n++] = FWD_LOG;
    out[n++] = FWD_OUT;
  } else {
    out[n++] = BWD_DOT;
    out[n++] = BWD_OUT;
  }
  return n;
}

/* Bytes of one row statistic, rounded to 256 so that each slice stays aligned. */
static size_t stat_bytes(const dlk_tensor *t) {
  return ((size_t)t->shape[0] * dlk_dtype_size(stat_dtype(t->dtype)) + 255) & ~(size_t)255;
}
static int n_stats(const graph_arg *ga) {
  return ga->fwd ? (ga->fwd->log ? 3 : 2) : 1;
}

/* Every plan of the call builds (supports), and the largest plan workspace; on the
   context supports() and workspace() receive as const (graph.h: dlk_cg_memo_context). */
static bool plans_ok(const dlk_context *cctx, const graph_arg *ga, size_t *plan_ws, char *why,
                     size_t n) {
  dlk_context *ctx = dlk_cg_memo_context(cctx);
  pass ps[4];
  const int np = passes_of(ga, ps);
  *plan_ws = 0;
  for (int i = 0; i < np; i++) {
    dlk_cg_key k;
    pass_key(ps[i], ga, &k);
    const dlk_cg_plan *p;
    if (dlk_cg_plan_find(ctx, pass_names[ps[i]], &k, builders[ps[i]], ga, &p, why, n) != DLK_OK)
      return false;
    if (dlk_cg_plan_workspace(p) > *plan_ws) *plan_ws = dlk_cg_plan_workspace(p);
  }
  return true;
}

static bool empty(const dlk_tensor *t) {
  return t->shape[0] == 0 || t->shape[1] == 0;
}

/* Run the passes: the row statistics first in the workspace, the plans' workspace after. */
static dlk_status run_passes(dlk_context *ctx, const graph_arg *ga, const dlk_tensor *in0,
                             const dlk_tensor *in1, const dlk_tensor *out, void *ws,
                             size_t ws_bytes) {
  const size_t sb = stat_bytes(in0), stats = (size_t)n_stats(ga) * sb;
  if (ws_bytes < stats || !ws)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "softmax/cudnn: workspace of %zu bytes, need %zu",
                    ws_bytes, stats);
  char *base = ws;
  void *m = base, *s = ga->fwd ? base + sb : base, *ls = base + 2 * sb; /* bwd: s only */
  void *plan_ws = base + stats;
  const size_t plan_ws_bytes = ws_bytes - stats;
  /* Every tensor any pass names; each plan takes the ones its graph has. */
  dlk_cg_bind b[7];
  int nb = 0;
  if (ga->fwd) {
    b[nb++] = (dlk_cg_bind){U_X, in0->data};
    b[nb++] = (dlk_cg_bind){U_Y, out->data};
    b[nb++] = (dlk_cg_bind){U_M, m};
    if (ga->fwd->log) b[nb++] = (dlk_cg_bind){U_LS, ls};
  } else {
    b[nb++] = (dlk_cg_bind){U_Y, in0->data};
    b[nb++] = (dlk_cg_bind){U_DY, in1->data};
    b[nb++] = (dlk_cg_bind){U_DX, out->data};
  }
  b[nb++] = (dlk_cg_bind){U_S, s};
  pass ps[4];
  const int np = passes_of(ga, ps);
  for (int i = 0; i < np; i++) {
    dlk_cg_key k;
    pass_key(ps[i], ga, &k);
    const dlk_cg_plan *p; /* found, then executed before the next find (graph.h) */
    DLK_TRY(dlk_cg_plan_get(ctx, pass_names[ps[i]], &k, builders[ps[i]], ga, &p));
    DLK_TRY(dlk_cg_execute(ctx, p, b, nb, plan_ws, plan_ws_bytes));
  }
  return DLK_OK;
}

/* ---- the rows ---- */

bool dlk_softmax_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)impl;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  if (!matrix_ok("x", &a->x, why, n) || !matrix_ok("y", &a->y, why, n)) return false;
  if (empty(&a->x)) return true;
  const graph_arg ga = {a, NULL};
  size_t plan_ws;
  return plans_ok(ctx, &ga, &plan_ws, why, n);
}

bool dlk_softmax_bwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)impl;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  if (!matrix_ok("y", &a->y, why, n) || !matrix_ok("dy", &a->dy, why, n) ||
      !matrix_ok("dx", &a->dx, why, n))
    return false;
  if (empty(&a->y)) return true;
  const graph_arg ga = {NULL, a};
  size_t plan_ws;
  return plans_ok(ctx, &ga, &plan_ws, why, n);
}

static size_t workspace_of(const dlk_context *ctx, const graph_arg *ga, const dlk_tensor *t) {
  if (empty(t)) return 0;
  char why[DLK_CG_WHY_LEN];
  size_t plan_ws;
  if (!plans_ok(ctx, ga, &plan_ws, why, sizeof why)) return 0; /* supports() said no */
  return (size_t)n_stats(ga) * stat_bytes(t) + plan_ws;
}

size_t dlk_softmax_fwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  const graph_arg ga = {a, NULL};
  return workspace_of(ctx, &ga, &a->x);
}

size_t dlk_softmax_bwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  const graph_arg ga = {NULL, a};
  return workspace_of(ctx, &ga, &a->y);
}

dlk_status dlk_softmax_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)impl;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  if (empty(&a->x)) return DLK_OK;
  const graph_arg ga = {a, NULL};
  return run_passes(ctx, &ga, &a->x, NULL, &a->y, ws, ws_bytes);
}

dlk_status dlk_softmax_bwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)impl;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  if (empty(&a->y)) return DLK_OK;
  const graph_arg ga = {NULL, a};
  return run_passes(ctx, &ga, &a->y, &a->dy, &a->dx, ws, ws_bytes);
}

#else
typedef int dlk_nn_cudnn_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDNN */
