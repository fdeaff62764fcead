/*
 * nn family: the public functions and the variant tables. One section per op (gemm and
 * linear, bias + activation, softmax, cross-entropy, embedding, layer norm, dropout,
 * optimizer steps), each in the same order: the autotune shape key, the heuristic, the
 * variant table written out row by row ({id, name, device, impl, description, supports,
 * workspace, run}: the CPU reference in nn_cpu.c, CUDA rows in nn_cuda.c over the kernels
 * of kernels/nn/, vendor rows in nn_cublas.c and nn_cudnn.c), the dlk_op, then the public
 * functions. Each public function checks its arguments (NULL pointers, dtypes, devices,
 * dims, every shape relation, output layouts and overlaps, parameter values; the shared
 * checks are core/check.h's), normalises the tensors into the op's record of nn.h (2-D
 * views, gemm operands as 3-D), and hands the record to dlk_dispatch.
 *
 * Rules common to every op:
 *   - every check runs before anything is written: a bad call leaves the outputs and the
 *     caller's data untouched;
 *   - an output must not have overlapping elements (DLK_ERR_LAYOUT) and must not overlap
 *     an input or another output (DLK_ERR_INVALID_ARGUMENT); the overlap test compares
 *     byte spans, so two interleaved views of one buffer count as overlapping. The
 *     documented in-place cases (bias_act_forward and dropout with y exactly x) are the
 *     exceptions;
 *   - a call that reads what it writes (gemm with beta != 0, the in-place cases) goes
 *     through a non-tunable twin of its op (same name, same variants), because the
 *     autotuner runs every candidate on the real tensors.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/check.h"
#include "nn.h"

/* ------------------------------------------------------------------------------------ */
/* NULL params: the defaults include/dlk.h documents on each params struct               */
/* ------------------------------------------------------------------------------------ */

static const dlk_gemm_params gemm_defaults = {1.0, 0.0};
static const dlk_linear_params linear_defaults = {DLK_ACT_NONE};
static const dlk_bias_act_params bias_act_defaults = {DLK_ACT_NONE};
static const dlk_softmax_params softmax_defaults = {0};
static const dlk_cross_entropy_params cross_entropy_defaults = {DLK_REDUCE_MEAN, -100};
static const dlk_embedding_params embedding_defaults = {-1};
static const dlk_layernorm_params layernorm_defaults = {1e-5};
static const dlk_dropout_params dropout_defaults = {0.5, 0, 0};
static const dlk_sgd_params sgd_defaults = {1e-3, 0.0, 0.0, 0.0, 0, 1};
static const dlk_adam_params adam_defaults = {1e-3, 0.9, 0.999, 1e-8, 0.0, 0, 1};
static const dlk_adagrad_params adagrad_defaults = {1e-2, 0.0, 0.0, 1e-10, 1};

/* ------------------------------------------------------------------------------------ */
/* Helpers: autotune key pieces, heuristic lookups, gemm operand views                  */
/* ------------------------------------------------------------------------------------ */

/* A row view [..., C] (2-D, or N-d when its leading dims do not merge): rows and columns. */
static int64_t nrows(const dlk_tensor *t) { return dlk_rows_of(t); }
static int64_t ncols(const dlk_tensor *t) { return t->shape[t->ndim - 1]; }

/* Layout class of a 2-D view (or the last two dims of a 3-D one): 'r' row-major (unit
   column stride), 'c' column-major (unit row stride), 's' anything else. */
static char layout_class(const dlk_tensor *t) {
  int64_t rs = t->strides[t->ndim - 2], cs = t->strides[t->ndim - 1];
  if (cs == 1 || t->shape[t->ndim - 1] == 1) return 'r';
  if (rs == 1 || t->shape[t->ndim - 2] == 1) return 'c';
  return 's';
}

/* 1 when the data is 16-byte aligned and every stride but the unit one keeps it so:
   vectorised variants want that. */
static int aligned16(const dlk_tensor *t) {
  size_t es = dlk_dtype_size(t->dtype);
  if ((uintptr_t)t->data % 16) return 0;
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] > 1 && t->strides[k] != 1 && ((size_t)t->strides[k] * es) % 16) return 0;
  return 1;
}

static const char *dt(const dlk_tensor *t) { return dlk_dtype_name(t->dtype); }

/* The lowest vendor id in a table, or -1. */
static int lowest_vendor(const dlk_variant *v, int n) {
  int best = -1;
  for (int i = 0; i < n; i++)
    if (v[i].id >= DLK_VARIANT_VENDOR_FIRST && v[i].id <= DLK_VARIANT_VENDOR_LAST &&
        (best < 0 || v[i].id < best))
      best = v[i].id;
  return best;
}

/* A 2-D [r, c] view as the 3-D [1, r, c] gemm operand. */
static dlk_tensor as3(const dlk_tensor *m) {
  dlk_tensor t = *m;
  t.ndim = 3;
  t.shape[2] = m->shape[1], t.strides[2] = m->strides[1];
  t.shape[1] = m->shape[0], t.strides[1] = m->strides[0];
  t.shape[0] = 1, t.strides[0] = 0;
  return t;
}

/* Swap the last two dims of a 3-D view. */
static dlk_tensor tr3(dlk_tensor t) {
  int64_t s = t.shape[1], st = t.strides[1];
  t.shape[1] = t.shape[2], t.strides[1] = t.strides[2];
  t.shape[2] = s, t.strides[2] = st;
  return t;
}

/* ------------------------------------------------------------------------------------ */
/* Bias + activation                                                                    */
/* ------------------------------------------------------------------------------------ */

static void bias_act_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_bias_act_fwd_args *a = args;
  snprintf(buf, n, "r%lld_c%lld_%s_x%c_y%c_bias%d_act%d_inplace%d_al%d", (long long)nrows(&a->x),
           (long long)ncols(&a->x), dt(&a->x), layout_class(&a->x), layout_class(&a->y),
           a->has_bias, (int)a->act, a->x.data == a->y.data, aligned16(&a->x) && aligned16(&a->y));
}

static void bias_act_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_bias_act_bwd_args *a = args;
  snprintf(buf, n, "r%lld_c%lld_%s_x%c_dy%c_dx%c_bias%d_act%d_dx%d_dbias%d",
           (long long)nrows(&a->x), (long long)ncols(&a->x), dt(&a->x), layout_class(&a->x),
           layout_class(&a->dy), a->has_dx ? layout_class(&a->dx) : '-', a->has_bias, (int)a->act,
           a->has_dx, a->has_dbias);
}

static const dlk_variant bias_act_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: y = act(x + bias) elementwise in f64", NULL, NULL,
     dlk_bias_act_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "one thread per element, any strides",
     dlk_bias_act_fwd_cuda_supports, NULL, dlk_bias_act_fwd_cuda_run},
    {2, "vec", DLK_CUDA, 2, "16-byte vectors over contiguous, aligned rows",
     dlk_bias_act_fwd_cuda_supports, NULL, dlk_bias_act_fwd_cuda_run},
#endif
};

static const dlk_variant bias_act_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: dy * act'(x + bias), column sums in f64", NULL,
     NULL, dlk_bias_act_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "dx one thread per element; dbias one thread per column over all rows",
     dlk_bias_act_bwd_cuda_supports, dlk_bias_act_bwd_cuda_workspace, dlk_bias_act_bwd_cuda_run},
    {2, "tiled", DLK_CUDA, 2,
     "dx and per-chunk column sums in one pass, chunks summed in order (workspace, no atomics)",
     dlk_bias_act_bwd_cuda_supports, dlk_bias_act_bwd_cuda_workspace, dlk_bias_act_bwd_cuda_run},
#endif
};

static int bias_act_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_bias_act_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->y);
}

/* In place (y exactly x): the non-tunable twin. */
static const dlk_op bias_act_fwd_op = {"bias_act_fwd", bias_act_fwd_variants, DLK_COUNT_OF(bias_act_fwd_variants),
    bias_act_fwd_key, NULL, true, bias_act_fwd_outputs};
static const dlk_op bias_act_fwd_once_op = {"bias_act_fwd", bias_act_fwd_variants, DLK_COUNT_OF(bias_act_fwd_variants),
    bias_act_fwd_key, NULL, false, bias_act_fwd_outputs};

static int bias_act_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_bias_act_bwd_args *a = args;
  int n = 0;
  if (a->has_dx) n = dlk_list_output(out, max, n, &a->dx);
  if (a->has_dbias) n = dlk_list_output(out, max, n, &a->dbias);
  return n;
}

static const dlk_op bias_act_bwd_op = {"bias_act_bwd", bias_act_bwd_variants, DLK_COUNT_OF(bias_act_bwd_variants),
    bias_act_bwd_key, NULL, true, bias_act_bwd_outputs};

dlk_status dlk_bias_act_forward(dlk_context *ctx, const dlk_bias_act_params *p, const dlk_tensor *x,
                                const dlk_tensor *bias, dlk_tensor *y) {
  static const char op[] = "bias_act_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &bias_act_defaults;
  DLK_TRY(dlk_check_activation(ctx, op, p->act));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  if (x->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., C]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "y", y));
  if (bias) {
    DLK_TRY(dlk_check_float(ctx, op, "bias", bias));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "bias", bias));
    DLK_TRY(dlk_check_vector(ctx, op, "bias", bias, x->shape[x->ndim - 1], "x's last dim"));
  }
  DLK_TRY(dlk_check_output(ctx, op, "y", y));
  const bool in_place = dlk_same_view(x, y) && dlk_tensor_numel(x) > 0;
  if (!in_place) DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "x", x));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "bias", bias));
  dlk_bias_act_fwd_args a;
  memset(&a, 0, sizeof a);
  a.act = p->act;
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &a.x));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "y", y, &a.y));
  a.has_bias = bias != NULL;
  if (bias) a.bias = *bias;
  return dlk_dispatch(ctx, in_place ? &bias_act_fwd_once_op : &bias_act_fwd_op, &a);
}

dlk_status dlk_bias_act_backward(dlk_context *ctx, const dlk_bias_act_params *p, const dlk_tensor *x,
                                 const dlk_tensor *bias, const dlk_tensor *dy, dlk_tensor *dx,
                                 dlk_tensor *dbias) {
  static const char op[] = "bias_act_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &bias_act_defaults;
  DLK_TRY(dlk_check_activation(ctx, op, p->act));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "dy", dy));
  DLK_TRY(dlk_check_float(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
  if (x->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., C]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dy", dy));
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
  const int64_t cols = x->shape[x->ndim - 1];
  if (bias) {
    DLK_TRY(dlk_check_float(ctx, op, "bias", bias));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "bias", bias));
    DLK_TRY(dlk_check_vector(ctx, op, "bias", bias, cols, "x's last dim"));
  }
  if (dbias) {
    DLK_TRY(dlk_check_float(ctx, op, "dbias", dbias));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dbias", dbias));
    DLK_TRY(dlk_check_vector(ctx, op, "dbias", dbias, cols, "x's last dim"));
  }
  DLK_TRY(dlk_check_output(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "x", x));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "bias", bias));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "dy", dy));
  if (dbias) {
    DLK_TRY(dlk_check_output(ctx, op, "dbias", dbias));
    DLK_TRY(dlk_check_disjoint(ctx, op, "dbias", dbias, "x", x));
    DLK_TRY(dlk_check_disjoint(ctx, op, "dbias", dbias, "bias", bias));
    DLK_TRY(dlk_check_disjoint(ctx, op, "dbias", dbias, "dy", dy));
    DLK_TRY(dlk_check_disjoint(ctx, op, "dbias", dbias, "dx", dx));
  }
  dlk_bias_act_bwd_args a;
  memset(&a, 0, sizeof a);
  a.act = p->act;
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &a.x));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dy", dy, &a.dy));
  a.has_bias = bias != NULL;
  if (bias) a.bias = *bias;
  a.has_dx = true;
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dx", dx, &a.dx));
  a.has_dbias = dbias != NULL;
  if (dbias) a.dbias = *dbias;
  return dlk_dispatch(ctx, &bias_act_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* GEMM and linear (op gemm: dlk_gemm, dlk_linear_forward, dlk_linear_backward)        */
/* ------------------------------------------------------------------------------------ */

static void gemm_key(const void *args, char *buf, size_t n) {
  const dlk_gemm_args *g = args;
  snprintf(buf, n, "b%lld_m%lld_n%lld_k%lld_%s_a%c_b%c%s_c%c_bias%d_act%d_z%d_beta%d_al%d",
           (long long)g->c.shape[0], (long long)g->c.shape[1], (long long)g->c.shape[2],
           (long long)g->a.shape[2], dt(&g->c), layout_class(&g->a), layout_class(&g->bmat),
           g->bmat.strides[0] == 0 && g->bmat.shape[0] > 1 ? "shared" : "", layout_class(&g->c),
           g->has_bias, (int)g->act, g->has_z, g->beta != 0.0,
           aligned16(&g->a) && aligned16(&g->bmat) && aligned16(&g->c));
}

static const dlk_variant gemm_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: triple loop, f64 accumulation, any strides", NULL,
     NULL, dlk_gemm_cpu_run},
#if DLK_HAVE_CUDA
    {1, "naive", DLK_CUDA, 1, "one thread per output element, any strides, f32/f16/bf16/f64",
     dlk_gemm_cuda_supports, NULL, dlk_gemm_cuda_run},
    {2, "tiled", DLK_CUDA, 2, "64x64x16 shared-memory tiles, 4x4 per thread, any strides",
     dlk_gemm_cuda_supports, NULL, dlk_gemm_cuda_run},
    {3, "mma_tc", DLK_CUDA, 3,
     "f16/bf16 tensor cores: mma.sync m16n8k16, 128x128x32 tiles, 4-stage cp.async, ldmatrix",
     dlk_gemm_cuda_supports, NULL, dlk_gemm_cuda_run},
    {4, "wgmma", DLK_CUDA, 4,
     "f16/bf16 Hopper tensor cores (sm_90a): wgmma m64n256k16 fed by TMA, 128x256x64 tiles, "
     "4-stage mbarrier pipeline, producer + 2 consumer warpgroups",
     dlk_gemm_cuda_supports, NULL, dlk_gemm_cuda_run},
    {10, "cublas", DLK_CUDA, 0,
     "cublasGemmStridedBatchedEx (f32 accumulate; TF32 only if allowed) + elementwise epilogue",
     dlk_gemm_cublas_supports, NULL, dlk_gemm_cublas_run},
    {11, "cublaslt", DLK_CUDA, 0,
     "cublasLtMatmul with the fused BIAS epilogue, 32 MiB workspace, plans cached per shape",
     dlk_gemm_cublas_supports, dlk_gemm_cublaslt_workspace, dlk_gemm_cublaslt_run},
#endif
};

/* gemm: the vendor library (cuBLAS) is the safe default for every shape. */
static int gemm_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx, (void)args;
  return lowest_vendor(gemm_variants, DLK_COUNT_OF(gemm_variants));
}

static int gemm_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_gemm_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->c);
  if (a->has_z) n = dlk_list_output(out, max, n, &a->z);
  return n;
}

/* beta != 0 reads c: such calls go through the non-tunable twin. */
static const dlk_op gemm_op = {"gemm", gemm_variants, DLK_COUNT_OF(gemm_variants),
    gemm_key, gemm_heuristic, true, gemm_outputs};
static const dlk_op gemm_once_op = {"gemm", gemm_variants, DLK_COUNT_OF(gemm_variants),
    gemm_key, gemm_heuristic, false, gemm_outputs};

dlk_status dlk_gemm(dlk_context *ctx, const dlk_gemm_params *p, const dlk_tensor *a, const dlk_tensor *b,
                    dlk_tensor *c) {
  static const char op[] = "gemm";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &gemm_defaults;
  DLK_TRY(dlk_check_float(ctx, op, "a", a));
  DLK_TRY(dlk_check_float(ctx, op, "b", b));
  DLK_TRY(dlk_check_float(ctx, op, "c", c));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "a", a, "b", b));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "a", a, "c", c));
  if (a->ndim != 2 && a->ndim != 3)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: a has %d dims, expected 2 ([M, K]) or 3 ([batch, M, K])",
                    op, a->ndim);
  if (b->ndim != 2 && !(a->ndim == 3 && b->ndim == 3))
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: b has %d dims, expected 2%s", op, b->ndim,
                    a->ndim == 3 ? " or 3 (a is batched)" : " (a is 2-D)");
  if (c->ndim != a->ndim)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: c has %d dims but a has %d", op, c->ndim, a->ndim);
  const int ab = a->ndim - 2, bb = b->ndim - 2; /* index of the row dim */
  const int64_t batch = a->ndim == 3 ? a->shape[0] : 1;
  const int64_t m = a->shape[ab], k = a->shape[ab + 1], n = b->shape[bb + 1];
  if (b->ndim == 3 && b->shape[0] != batch)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: b has batch %lld but a has batch %lld", op,
                    (long long)b->shape[0], (long long)batch);
  if (b->shape[bb] != k)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: a has %lld columns but b has %lld rows", op,
                    (long long)k, (long long)b->shape[bb]);
  if (a->ndim == 3 && c->shape[0] != batch)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: c has batch %lld but a has batch %lld", op,
                    (long long)c->shape[0], (long long)batch);
  if (c->shape[ab] != m)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: c has %lld rows but a has %lld", op,
                    (long long)c->shape[ab], (long long)m);
  if (c->shape[ab + 1] != n)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: c has %lld columns but b has %lld", op,
                    (long long)c->shape[ab + 1], (long long)n);
  DLK_TRY(dlk_check_finite(ctx, op, "alpha", p->alpha));
  DLK_TRY(dlk_check_finite(ctx, op, "beta", p->beta));
  DLK_TRY(dlk_check_output(ctx, op, "c", c));
  DLK_TRY(dlk_check_disjoint(ctx, op, "c", c, "a", a));
  DLK_TRY(dlk_check_disjoint(ctx, op, "c", c, "b", b));

  dlk_gemm_args g;
  memset(&g, 0, sizeof g);
  g.a = a->ndim == 3 ? *a : as3(a);
  g.bmat = b->ndim == 3 ? *b : as3(b);
  g.bmat.shape[0] = batch; /* a 2-D b is shared by the batch: batch stride 0 */
  g.c = c->ndim == 3 ? *c : as3(c);
  g.alpha = p->alpha;
  g.beta = p->beta;
  g.act = DLK_ACT_NONE;
  /* beta != 0 reads c: running it twice (as the autotuner would) changes the result. */
  return dlk_dispatch(ctx, p->beta != 0.0 ? &gemm_once_op : &gemm_op, &g);
}

/* The checks linear_forward and linear_backward share: params, activation, x [..., in],
   w [out, in] and the output-side tensor y (or dy) [..., out], all one float dtype. */
static dlk_status check_linear(dlk_context *ctx, const char *op, const dlk_linear_params *p,
                               const dlk_tensor *x, const dlk_tensor *w, const char *yname,
                               const dlk_tensor *y) {
  DLK_TRY(dlk_check_activation(ctx, op, p->act));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "w", w));
  DLK_TRY(dlk_check_float(ctx, op, yname, y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "w", w));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, yname, y));
  if (x->ndim < 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., in]", op);
  if (w->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w has %d dims, expected 2 ([out, in])", op, w->ndim);
  if (x->shape[x->ndim - 1] != w->shape[1])
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x has %lld columns, w has %lld", op,
                    (long long)x->shape[x->ndim - 1], (long long)w->shape[1]);
  DLK_TRY(dlk_check_leading_dims(ctx, op, "x", x, yname, y));
  return dlk_check_last_dim(ctx, op, yname, y, w->shape[0], "w's rows");
}

/* Staging: linear's gemm takes its row operands (x, y, z, dy, dx) as 2-D views. One whose
   leading dims do not merge goes through a contiguous copy in the scratch arena, carved
   after `base_bytes` the caller keeps for itself (linear_backward's dz): inputs are copied
   in before the gemm, outputs copied back after it (none of it in explain mode, where
   nothing runs). Every variant then sees plain 2-D views. */
#define MAX_STAGED 5
typedef struct stage {
  int n;
  const dlk_tensor *orig[MAX_STAGED];
  dlk_tensor *view[MAX_STAGED]; /* the caller's 2-D view, pointed at the copy */
  dlk_tensor copy[MAX_STAGED];
  bool out[MAX_STAGED];
  size_t bytes; /* after base_bytes, 256-byte aligned pieces */
} stage;

static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

/* Register view (from dlk_check_as_matrix of t) when it did not come out 2-D. */
static void stage_add(stage *st, const dlk_tensor *t, dlk_tensor *view, bool out) {
  if (!t || view->ndim == 2) return;
  st->orig[st->n] = t;
  st->view[st->n] = view;
  st->out[st->n] = out;
  st->bytes += align256((size_t)dlk_tensor_numel(t) * dlk_dtype_size(t->dtype));
  st->n++;
}

/* Reserve the scratch arena (base_bytes for the caller, then the copies), point each
   staged view at its copy and copy the inputs in. *base: the caller's part. */
static dlk_status stage_in(dlk_context *ctx, stage *st, size_t base_bytes, void **base) {
  *base = NULL;
  size_t total = align256(base_bytes) + st->bytes;
  if (total == 0) return DLK_OK;
  void *mem = NULL;
  DLK_TRY(dlk_scratch_reserve(ctx, total, &mem));
  *base = mem;
  char *at = (char *)mem + align256(base_bytes);
  for (int i = 0; i < st->n; i++) {
    dlk_tensor *c = &st->copy[i];
    *c = *st->orig[i];
    c->data = at;
    c->device = ctx->device;
    dlk_contiguous_strides(c->ndim, c->shape, c->strides);
    at += align256((size_t)dlk_tensor_numel(c) * dlk_dtype_size(c->dtype));
    if (!dlk_as_matrix(c, st->view[i])) return dlk_fail(ctx, DLK_ERR_INTERNAL, "staging: copy not 2-D");
    if (!st->out[i] && !ctx->explain) DLK_TRY(dlk_tensor_copy(ctx, c, st->orig[i]));
  }
  return DLK_OK;
}

/* After the gemm(s): the staged outputs back to where the caller wants them. */
static dlk_status stage_out(dlk_context *ctx, stage *st) {
  if (ctx->explain) return DLK_OK;
  for (int i = 0; i < st->n; i++)
    if (st->out[i]) DLK_TRY(dlk_tensor_copy(ctx, (dlk_tensor *)st->orig[i], &st->copy[i]));
  return DLK_OK;
}

dlk_status dlk_linear_forward(dlk_context *ctx, const dlk_linear_params *p, const dlk_tensor *x,
                              const dlk_tensor *w, const dlk_tensor *b, dlk_tensor *y, dlk_tensor *z) {
  static const char op[] = "linear_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &linear_defaults;
  DLK_TRY(check_linear(ctx, op, p, x, w, "y", y));
  const int64_t out = w->shape[0];
  if (b) {
    DLK_TRY(dlk_check_float(ctx, op, "b", b));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "b", b));
    DLK_TRY(dlk_check_vector(ctx, op, "b", b, out, "w's rows"));
  }
  if (z) {
    DLK_TRY(dlk_check_float(ctx, op, "z", z));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "z", z));
    DLK_TRY(dlk_check_same_shape(ctx, op, "y", y, "z", z));
  }
  DLK_TRY(dlk_check_output(ctx, op, "y", y));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "x", x));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "w", w));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "b", b));
  if (z) {
    DLK_TRY(dlk_check_output(ctx, op, "z", z));
    DLK_TRY(dlk_check_disjoint(ctx, op, "z", z, "x", x));
    DLK_TRY(dlk_check_disjoint(ctx, op, "z", z, "w", w));
    DLK_TRY(dlk_check_disjoint(ctx, op, "z", z, "b", b));
    DLK_TRY(dlk_check_disjoint(ctx, op, "z", z, "y", y));
  }
  dlk_tensor x2, y2, z2;
  memset(&z2, 0, sizeof z2);
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &x2));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "y", y, &y2));
  if (z) DLK_TRY(dlk_check_as_matrix(ctx, op, "z", z, &z2));
  stage st = {0};
  stage_add(&st, x, &x2, false);
  stage_add(&st, y, &y2, true);
  stage_add(&st, z, &z2, true);
  void *unused;
  if (st.n) DLK_TRY(stage_in(ctx, &st, 0, &unused));

  /* y = act(x @ w^T + b): the gemm with bmat = w^T as a view. */
  dlk_gemm_args g;
  memset(&g, 0, sizeof g);
  g.a = as3(&x2);
  g.bmat = tr3(as3(w));
  g.c = as3(&y2);
  g.alpha = 1.0;
  g.beta = 0.0;
  g.has_bias = b != NULL;
  if (b) g.bias = *b;
  g.act = p->act;
  g.has_z = z != NULL;
  if (z) g.z = as3(&z2);
  DLK_TRY(dlk_dispatch(ctx, &gemm_op, &g));
  return stage_out(ctx, &st);
}

/* One step of a composite op: dispatch, and in explain mode keep each step's report. */
static dlk_status dispatch_step(dlk_context *ctx, const dlk_op *op, const void *args, char *report,
                                size_t n) {
  dlk_status s = dlk_dispatch(ctx, op, args);
  if (ctx->explain) dlk_appendf(report, n, "%s", ctx->explain_text);
  return s;
}

dlk_status dlk_linear_backward(dlk_context *ctx, const dlk_linear_params *p, const dlk_tensor *x,
                               const dlk_tensor *w, const dlk_tensor *z, const dlk_tensor *dy,
                               dlk_tensor *dx, dlk_tensor *dw, dlk_tensor *db) {
  static const char op[] = "linear_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &linear_defaults;
  DLK_TRY(check_linear(ctx, op, p, x, w, "dy", dy));
  const int64_t out = w->shape[0];
  if (p->act != DLK_ACT_NONE) {
    if (!z)
      return dlk_fail(ctx, DLK_ERR_NULL_POINTER,
                      "%s: z (the pre-activation from linear_forward) is NULL but act is %d", op,
                      (int)p->act);
  }
  if (z) {
    DLK_TRY(dlk_check_float(ctx, op, "z", z));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "z", z));
    DLK_TRY(dlk_check_same_shape(ctx, op, "dy", dy, "z", z));
  }
  dlk_tensor *outs[3] = {dx, dw, db};
  static const char *const out_names[3] = {"dx", "dw", "db"};
  if (dx) {
    DLK_TRY(dlk_check_float(ctx, op, "dx", dx));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
    DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
  }
  if (dw) {
    DLK_TRY(dlk_check_float(ctx, op, "dw", dw));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dw", dw));
    DLK_TRY(dlk_check_same_shape(ctx, op, "w", w, "dw", dw));
  }
  if (db) {
    DLK_TRY(dlk_check_float(ctx, op, "db", db));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "db", db));
    DLK_TRY(dlk_check_vector(ctx, op, "db", db, out, "w's rows"));
  }
  for (int i = 0; i < 3; i++) {
    if (!outs[i]) continue;
    DLK_TRY(dlk_check_output(ctx, op, out_names[i], outs[i]));
    DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], "x", x));
    DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], "w", w));
    DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], "z", z));
    DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], "dy", dy));
    for (int j = 0; j < i; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], out_names[j], outs[j]));
  }
  dlk_tensor x2, dy2, z2, dx2;
  memset(&z2, 0, sizeof z2);
  memset(&dx2, 0, sizeof dx2);
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &x2));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dy", dy, &dy2));
  if (z) DLK_TRY(dlk_check_as_matrix(ctx, op, "z", z, &z2));
  if (dx) DLK_TRY(dlk_check_as_matrix(ctx, op, "dx", dx, &dx2));
  stage st = {0};
  stage_add(&st, x, &x2, false);
  stage_add(&st, dy, &dy2, false);
  stage_add(&st, z, &z2, false);
  stage_add(&st, dx, &dx2, true);

  char report[DLK_EXPLAIN_LEN];
  snprintf(report, sizeof report, "%s: composite (bias_act_bwd for dz and db, gemm for dx and dw)\n", op);
  if (!dx && !dw && !db) {
    if (ctx->explain) snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s: nothing asked (dx, dw, db all NULL)\n", op);
    return DLK_OK;
  }

  /* g = dz = dy * act'(z): into the scratch arena when dx or dw need it (the gemm variants
     use the workspace arena), fused with db = column sums of g. With act NONE, g = dy. */
  const bool want_g = p->act != DLK_ACT_NONE && (dx || dw);
  const int64_t rows = nrows(&dy2);
  void *buf = NULL;
  DLK_TRY(stage_in(ctx, &st, want_g ? (size_t)rows * (size_t)out * dlk_dtype_size(dy->dtype) : 0, &buf));
  dlk_tensor g2 = dy2;
  dlk_bias_act_bwd_args ba;
  memset(&ba, 0, sizeof ba);
  ba.act = p->act;
  ba.x = p->act != DLK_ACT_NONE ? z2 : dy2; /* x is only read for act' */
  ba.dy = dy2;
  ba.has_dbias = db != NULL;
  if (db) ba.dbias = *db;
  if (want_g) {
    memset(&g2, 0, sizeof g2);
    g2.data = buf;
    g2.dtype = dy->dtype;
    g2.device = ctx->device;
    g2.ndim = 2;
    g2.shape[0] = rows, g2.shape[1] = out;
    g2.strides[0] = out, g2.strides[1] = 1;
    ba.has_dx = true;
    ba.dx = g2;
  }
  dlk_gemm_args gdx, gdw;
  memset(&gdx, 0, sizeof gdx);
  memset(&gdw, 0, sizeof gdw);
  gdx.a = as3(&g2); /* dx = g @ w: [R, out] @ [out, in] */
  gdx.bmat = as3(w);
  gdx.c = as3(&dx2);
  gdx.alpha = 1.0;
  gdw.a = tr3(as3(&g2)); /* dw = g^T @ x: [out, R] @ [R, in] */
  gdw.bmat = as3(&x2);
  if (dw) gdw.c = as3(dw);
  gdw.alpha = 1.0;
  const bool run_ba = ba.has_dx || ba.has_dbias;

  /* Every step must have a variant before the first one writes anything. */
  if (!ctx->explain) {
    if (run_ba) DLK_TRY(dlk_dispatch_check(ctx, &bias_act_bwd_op, &ba));
    if (dx) DLK_TRY(dlk_dispatch_check(ctx, &gemm_op, &gdx));
    if (dw) DLK_TRY(dlk_dispatch_check(ctx, &gemm_op, &gdw));
  }
  if (run_ba) DLK_TRY(dispatch_step(ctx, &bias_act_bwd_op, &ba, report, sizeof report));
  if (dx) DLK_TRY(dispatch_step(ctx, &gemm_op, &gdx, report, sizeof report));
  if (dw) DLK_TRY(dispatch_step(ctx, &gemm_op, &gdw, report, sizeof report));
  if (ctx->explain) snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s", report);
  return stage_out(ctx, &st);
}

/* ------------------------------------------------------------------------------------ */
/* Softmax                                                                              */
/* ------------------------------------------------------------------------------------ */

static void softmax_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_softmax_fwd_args *a = args;
  snprintf(buf, n, "r%lld_c%lld_%s_x%c_y%c_log%d_al%d", (long long)nrows(&a->x),
           (long long)ncols(&a->x), dt(&a->x), layout_class(&a->x), layout_class(&a->y), a->log,
           aligned16(&a->x) && aligned16(&a->y));
}

static void softmax_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_softmax_bwd_args *a = args;
  snprintf(buf, n, "r%lld_c%lld_%s_y%c_dy%c_dx%c_log%d_al%d", (long long)nrows(&a->y),
           (long long)ncols(&a->y), dt(&a->y), layout_class(&a->y), layout_class(&a->dy),
           layout_class(&a->dx), a->log, aligned16(&a->y) && aligned16(&a->dy) && aligned16(&a->dx));
}

static const dlk_variant softmax_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: max-subtracted (log-)softmax per row in f64", NULL,
     NULL, dlk_softmax_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "rowthread", DLK_CUDA, 1, "one thread per row, online max/sum, any strides",
     dlk_softmax_fwd_cuda_supports, NULL, dlk_softmax_fwd_cuda_run},
    {2, "rowwarp", DLK_CUDA, 2, "one warp per row, online max/sum, 16-byte vectors when contiguous",
     dlk_softmax_fwd_cuda_supports, NULL, dlk_softmax_fwd_cuda_run},
    {3, "rowblock", DLK_CUDA, 3, "one block per row, online max/sum, 16-byte vectors when contiguous",
     dlk_softmax_fwd_cuda_supports, NULL, dlk_softmax_fwd_cuda_run},
#endif
#if DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN backend graphs: row max, sum of exp, (log,) output; contiguous rows",
     dlk_softmax_fwd_cudnn_supports, dlk_softmax_fwd_cudnn_workspace, dlk_softmax_fwd_cudnn_run},
#endif
};

static const dlk_variant softmax_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: (log-)softmax backward per row in f64", NULL, NULL,
     dlk_softmax_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "rowthread", DLK_CUDA, 1, "one thread per row, any strides", dlk_softmax_bwd_cuda_supports,
     NULL, dlk_softmax_bwd_cuda_run},
    {2, "rowwarp", DLK_CUDA, 2, "one warp per row, 16-byte vectors when contiguous",
     dlk_softmax_bwd_cuda_supports, NULL, dlk_softmax_bwd_cuda_run},
    {3, "rowblock", DLK_CUDA, 3, "one block per row, 16-byte vectors when contiguous",
     dlk_softmax_bwd_cuda_supports, NULL, dlk_softmax_bwd_cuda_run},
#endif
#if DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN backend graphs: row dot, output; contiguous rows",
     dlk_softmax_bwd_cudnn_supports, dlk_softmax_bwd_cudnn_workspace, dlk_softmax_bwd_cudnn_run},
#endif
};

/* Row ops: one warp per row while a row fits a warp's registers comfortably (up to 1024
   columns: 32 lanes x 32 values), one block per row beyond that, where a warp per row
   would leave most of the GPU idle on few long rows. Looked up by name so a table
   without that row falls back to the default ranking. */
static int softmax_fwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx;
  const dlk_softmax_fwd_args *a = args;
  return dlk_variant_by_name(softmax_fwd_variants, DLK_COUNT_OF(softmax_fwd_variants), ncols(&a->x) <= 1024 ? "rowwarp" : "rowblock");
}

static int softmax_bwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx;
  const dlk_softmax_bwd_args *a = args;
  return dlk_variant_by_name(softmax_bwd_variants, DLK_COUNT_OF(softmax_bwd_variants), ncols(&a->y) <= 1024 ? "rowwarp" : "rowblock");
}

static int softmax_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_softmax_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->y);
}

static const dlk_op softmax_fwd_op = {"softmax_fwd", softmax_fwd_variants, DLK_COUNT_OF(softmax_fwd_variants),
    softmax_fwd_key, softmax_fwd_heuristic, true, softmax_fwd_outputs};

static int softmax_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_softmax_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->dx);
}

static const dlk_op softmax_bwd_op = {"softmax_bwd", softmax_bwd_variants, DLK_COUNT_OF(softmax_bwd_variants),
    softmax_bwd_key, softmax_bwd_heuristic, true, softmax_bwd_outputs};

dlk_status dlk_softmax_forward(dlk_context *ctx, const dlk_softmax_params *p, const dlk_tensor *x,
                               dlk_tensor *y) {
  static const char op[] = "softmax_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &softmax_defaults;
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  if (x->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., C]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "y", y));
  DLK_TRY(dlk_check_output(ctx, op, "y", y));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "x", x));
  dlk_softmax_fwd_args a;
  memset(&a, 0, sizeof a);
  a.log = p->log != 0;
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &a.x));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "y", y, &a.y));
  return dlk_dispatch(ctx, &softmax_fwd_op, &a);
}

dlk_status dlk_softmax_backward(dlk_context *ctx, const dlk_softmax_params *p, const dlk_tensor *y,
                                const dlk_tensor *dy, dlk_tensor *dx) {
  static const char op[] = "softmax_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &softmax_defaults;
  DLK_TRY(dlk_check_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_float(ctx, op, "dy", dy));
  DLK_TRY(dlk_check_float(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "y", y, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "y", y, "dx", dx));
  if (y->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: y is a scalar, expected [..., C]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "y", y, "dy", dy));
  DLK_TRY(dlk_check_same_shape(ctx, op, "y", y, "dx", dx));
  DLK_TRY(dlk_check_output(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "y", y));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "dy", dy));
  dlk_softmax_bwd_args a;
  memset(&a, 0, sizeof a);
  a.log = p->log != 0;
  DLK_TRY(dlk_check_as_matrix(ctx, op, "y", y, &a.y));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dy", dy, &a.dy));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dx", dx, &a.dx));
  return dlk_dispatch(ctx, &softmax_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* Cross-entropy                                                                        */
/* ------------------------------------------------------------------------------------ */

static void cross_entropy_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_cross_entropy_fwd_args *a = args;
  snprintf(buf, n, "n%lld_c%lld_%s_t%s_x%c_red%d_lse%d", (long long)a->logits.shape[0],
           (long long)a->logits.shape[1], dt(&a->logits), dt(&a->targets), layout_class(&a->logits),
           (int)a->reduction, a->has_lse);
}

static void cross_entropy_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_cross_entropy_bwd_args *a = args;
  snprintf(buf, n, "n%lld_c%lld_%s_t%s_x%c_dx%c_red%d", (long long)a->logits.shape[0],
           (long long)a->logits.shape[1], dt(&a->logits), dt(&a->targets), layout_class(&a->logits),
           layout_class(&a->dlogits), (int)a->reduction);
}

static const dlk_variant cross_entropy_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: logsumexp - x[t] per row in f64, ids checked first",
     NULL, NULL, dlk_cross_entropy_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "rowthread", DLK_CUDA, 1, "one thread per row: online logsumexp; fixed-order final sum",
     dlk_cross_entropy_fwd_cuda_supports, dlk_cross_entropy_fwd_cuda_workspace,
     dlk_cross_entropy_fwd_cuda_run},
    {2, "rowblock", DLK_CUDA, 2, "one block per row: online logsumexp, vectors; fixed-order final sum",
     dlk_cross_entropy_fwd_cuda_supports, dlk_cross_entropy_fwd_cuda_workspace,
     dlk_cross_entropy_fwd_cuda_run},
#endif
};

static const dlk_variant cross_entropy_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: softmax - onehot per row in f64, ids checked first",
     NULL, NULL, dlk_cross_entropy_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "rowthread", DLK_CUDA, 1, "one thread per row: logsumexp then softmax - onehot",
     dlk_cross_entropy_bwd_cuda_supports, dlk_cross_entropy_bwd_cuda_workspace,
     dlk_cross_entropy_bwd_cuda_run},
    {2, "rowblock", DLK_CUDA, 2, "one block per row: logsumexp then softmax - onehot",
     dlk_cross_entropy_bwd_cuda_supports, dlk_cross_entropy_bwd_cuda_workspace,
     dlk_cross_entropy_bwd_cuda_run},
#endif
};

/* Cross-entropy: a thread per row only pays off for a handful of classes. */
static int cross_entropy_fwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx;
  const dlk_cross_entropy_fwd_args *a = args;
  return dlk_variant_by_name(cross_entropy_fwd_variants, DLK_COUNT_OF(cross_entropy_fwd_variants), a->logits.shape[1] <= 32 ? "rowthread" : "rowblock");
}

static int cross_entropy_bwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx;
  const dlk_cross_entropy_bwd_args *a = args;
  return dlk_variant_by_name(cross_entropy_bwd_variants, DLK_COUNT_OF(cross_entropy_bwd_variants), a->logits.shape[1] <= 32 ? "rowthread" : "rowblock");
}

static int cross_entropy_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_cross_entropy_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->loss);
  if (a->has_lse) n = dlk_list_output(out, max, n, &a->lse);
  return n;
}

static const dlk_op cross_entropy_fwd_op = {"cross_entropy_fwd", cross_entropy_fwd_variants, DLK_COUNT_OF(cross_entropy_fwd_variants),
    cross_entropy_fwd_key, cross_entropy_fwd_heuristic, true, cross_entropy_fwd_outputs};

static int cross_entropy_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_cross_entropy_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->dlogits);
}

static const dlk_op cross_entropy_bwd_op = {"cross_entropy_bwd", cross_entropy_bwd_variants, DLK_COUNT_OF(cross_entropy_bwd_variants),
    cross_entropy_bwd_key, cross_entropy_bwd_heuristic, true, cross_entropy_bwd_outputs};

/* loss / dloss: [N] for NONE, [] or [1] for MEAN/SUM (normalised to a 1-D [1] view);
   dtype F32 for half-precision logits, else the logits' dtype. */
static dlk_status check_loss(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             const dlk_tensor *logits, dlk_reduction red, dlk_tensor *view) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  DLK_TRY(dlk_check_dtype(ctx, op, name, t, logits->dtype == DLK_F64 ? DLK_F64 : DLK_F32));
  const int64_t rows = logits->shape[0];
  if (red == DLK_REDUCE_NONE) {
    DLK_TRY(dlk_check_vector(ctx, op, name, t, rows, "reduction NONE: one per row of logits"));
    *view = *t;
    return DLK_OK;
  }
  if (!(t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1)))
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims%s, expected [] or [1] for reduction %s",
                    op, name, t->ndim, t->ndim == 1 ? " of more than one element" : "",
                    red == DLK_REDUCE_MEAN ? "MEAN" : "SUM");
  *view = *t;
  view->ndim = 1;
  view->shape[0] = 1;
  view->strides[0] = 1;
  return DLK_OK;
}

static dlk_status check_cross_entropy_common(dlk_context *ctx, const char *op, const dlk_cross_entropy_params *p,
                                    const dlk_tensor *logits, const dlk_tensor *targets) {
  if ((unsigned)p->reduction >= DLK_REDUCTION_COUNT)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: reduction %d is not MEAN, SUM or NONE", op,
                    (int)p->reduction);
  DLK_TRY(dlk_check_float(ctx, op, "logits", logits));
  DLK_TRY(dlk_check_index(ctx, op, "targets", targets));
  if (logits->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: logits has %d dims, expected 2 ([N, C])", op,
                    logits->ndim);
  return dlk_check_vector(ctx, op, "targets", targets, logits->shape[0], "one per row of logits");
}

dlk_status dlk_cross_entropy_forward(dlk_context *ctx, const dlk_cross_entropy_params *p,
                                     const dlk_tensor *logits, const dlk_tensor *targets, dlk_tensor *loss,
                                     dlk_tensor *lse) {
  static const char op[] = "cross_entropy_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &cross_entropy_defaults;
  DLK_TRY(check_cross_entropy_common(ctx, op, p, logits, targets));
  dlk_cross_entropy_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_loss(ctx, op, "loss", loss, logits, p->reduction, &a.loss));
  if (lse) {
    DLK_TRY(dlk_check_tensor(ctx, op, "lse", lse));
    DLK_TRY(dlk_check_dtype(ctx, op, "lse", lse, dlk_stat_dtype(logits->dtype)));
    DLK_TRY(dlk_check_vector(ctx, op, "lse", lse, logits->shape[0], "one per row of logits"));
    DLK_TRY(dlk_check_output(ctx, op, "lse", lse));
    DLK_TRY(dlk_check_disjoint(ctx, op, "lse", lse, "logits", logits));
    DLK_TRY(dlk_check_disjoint(ctx, op, "lse", lse, "targets", targets));
    DLK_TRY(dlk_check_disjoint(ctx, op, "lse", lse, "loss", loss));
  }
  DLK_TRY(dlk_check_output(ctx, op, "loss", loss));
  DLK_TRY(dlk_check_disjoint(ctx, op, "loss", loss, "logits", logits));
  DLK_TRY(dlk_check_disjoint(ctx, op, "loss", loss, "targets", targets));
  a.reduction = p->reduction;
  a.ignore_index = p->ignore_index;
  a.logits = *logits;
  a.targets = *targets;
  a.has_lse = lse != NULL;
  if (lse) a.lse = *lse;
  return dlk_dispatch(ctx, &cross_entropy_fwd_op, &a);
}

dlk_status dlk_cross_entropy_backward(dlk_context *ctx, const dlk_cross_entropy_params *p,
                                      const dlk_tensor *logits, const dlk_tensor *targets,
                                      const dlk_tensor *dloss, dlk_tensor *dlogits) {
  static const char op[] = "cross_entropy_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &cross_entropy_defaults;
  DLK_TRY(check_cross_entropy_common(ctx, op, p, logits, targets));
  dlk_cross_entropy_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_loss(ctx, op, "dloss", dloss, logits, p->reduction, &a.dloss));
  DLK_TRY(dlk_check_float(ctx, op, "dlogits", dlogits));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "logits", logits, "dlogits", dlogits));
  DLK_TRY(dlk_check_same_shape(ctx, op, "logits", logits, "dlogits", dlogits));
  DLK_TRY(dlk_check_output(ctx, op, "dlogits", dlogits));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dlogits", dlogits, "logits", logits));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dlogits", dlogits, "targets", targets));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dlogits", dlogits, "dloss", dloss));
  a.reduction = p->reduction;
  a.ignore_index = p->ignore_index;
  a.logits = *logits;
  a.targets = *targets;
  a.dlogits = *dlogits;
  return dlk_dispatch(ctx, &cross_entropy_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* Embedding                                                                            */
/* ------------------------------------------------------------------------------------ */

static void embedding_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_embedding_fwd_args *a = args;
  snprintf(buf, n, "n%lld_v%lld_d%lld_%s_ids%s_t%c_o%c", (long long)dlk_tensor_numel(&a->ids),
           (long long)a->table.shape[0], (long long)a->table.shape[1], dt(&a->table), dt(&a->ids),
           layout_class(&a->table), layout_class(&a->out));
}

static void embedding_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_embedding_bwd_args *a = args;
  snprintf(buf, n, "n%lld_v%lld_d%lld_%s_ids%s_g%c_t%c_pad%d", (long long)dlk_tensor_numel(&a->ids),
           (long long)a->dtable.shape[0], (long long)a->dtable.shape[1], dt(&a->dtable), dt(&a->ids),
           layout_class(&a->dout), layout_class(&a->dtable), a->padding_idx >= 0);
}

static const dlk_variant embedding_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: row gather, ids checked first", NULL, NULL,
     dlk_embedding_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "one thread per element, any strides", dlk_embedding_fwd_cuda_supports,
     NULL, dlk_embedding_fwd_cuda_run},
    {2, "rowvec", DLK_CUDA, 2, "one warp per row, 16-byte vectors", dlk_embedding_fwd_cuda_supports,
     NULL, dlk_embedding_fwd_cuda_run},
#endif
};

static const dlk_variant embedding_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: rows grouped by id (counting sort), f64 sums", NULL,
     dlk_embedding_bwd_cpu_workspace, dlk_embedding_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "atomic", DLK_CUDA, 1, "zero, then atomicAdd scatter (f32/f64; not deterministic)",
     dlk_embedding_bwd_cuda_supports, dlk_embedding_bwd_cuda_workspace, dlk_embedding_bwd_cuda_run},
    {2, "sorted", DLK_CUDA, 2,
     "radix-sort (id, position), one warp per run of equal ids sums in order (deterministic)",
     dlk_embedding_bwd_cuda_supports, dlk_embedding_bwd_cuda_workspace, dlk_embedding_bwd_cuda_run},
#endif
};

static int embedding_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_embedding_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->out);
}

static const dlk_op embedding_fwd_op = {"embedding_fwd", embedding_fwd_variants, DLK_COUNT_OF(embedding_fwd_variants),
    embedding_fwd_key, NULL, true, embedding_fwd_outputs};

static int embedding_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_embedding_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->dtable);
}

static const dlk_op embedding_bwd_op = {"embedding_bwd", embedding_bwd_variants, DLK_COUNT_OF(embedding_bwd_variants),
    embedding_bwd_key, NULL, true, embedding_bwd_outputs};

/* ids [...], rows [..., D] (ids' shape plus one), flattened to [N] and [N, D]. */
static dlk_status check_embedding_common(dlk_context *ctx, const char *op, const dlk_embedding_params *p,
                                         const dlk_tensor *ids, const char *rows_name,
                                         const dlk_tensor *rows, const char *table_name,
                                         const dlk_tensor *table, dlk_tensor *ids1, dlk_tensor *rows2) {
  DLK_TRY(dlk_check_index(ctx, op, "ids", ids));
  DLK_TRY(dlk_check_float(ctx, op, table_name, table));
  DLK_TRY(dlk_check_float(ctx, op, rows_name, rows));
  DLK_TRY(dlk_check_same_dtype(ctx, op, table_name, table, rows_name, rows));
  if (table->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected 2 ([V, D])", op,
                    table_name, table->ndim);
  const int64_t vocab = table->shape[0], dim = table->shape[1];
  if (p->padding_idx < -1 || p->padding_idx >= vocab)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: padding_idx %lld is outside [0, %lld) and not -1",
                    op, (long long)p->padding_idx, (long long)vocab);
  if (ids->ndim >= DLK_MAX_DIMS)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: ids has %d dims, at most %d allowed (%s has one more)",
                    op, ids->ndim, DLK_MAX_DIMS - 1, rows_name);
  if (rows->ndim != ids->ndim + 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d (ids' dims plus D)", op,
                    rows_name, rows->ndim, ids->ndim + 1);
  for (int k = 0; k < ids->ndim; k++)
    if (rows->shape[k] != ids->shape[k])
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d but ids has %lld", op,
                      rows_name, (long long)rows->shape[k], k, (long long)ids->shape[k]);
  DLK_TRY(dlk_check_last_dim(ctx, op, rows_name, rows, dim, "the table's D"));
  DLK_TRY(dlk_check_as_vector(ctx, op, "ids", ids, ids1));
  return dlk_check_as_matrix(ctx, op, rows_name, rows, rows2);
}

dlk_status dlk_embedding_forward(dlk_context *ctx, const dlk_embedding_params *p, const dlk_tensor *ids,
                                 const dlk_tensor *table, dlk_tensor *out) {
  static const char op[] = "embedding_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &embedding_defaults;
  dlk_embedding_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_embedding_common(ctx, op, p, ids, "out", out, "table", table, &a.ids, &a.out));
  DLK_TRY(dlk_check_output(ctx, op, "out", out));
  DLK_TRY(dlk_check_disjoint(ctx, op, "out", out, "ids", ids));
  DLK_TRY(dlk_check_disjoint(ctx, op, "out", out, "table", table));
  a.padding_idx = p->padding_idx;
  a.table = *table;
  return dlk_dispatch(ctx, &embedding_fwd_op, &a);
}

dlk_status dlk_embedding_backward(dlk_context *ctx, const dlk_embedding_params *p, const dlk_tensor *ids,
                                  const dlk_tensor *dout, dlk_tensor *dtable) {
  static const char op[] = "embedding_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &embedding_defaults;
  dlk_embedding_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_embedding_common(ctx, op, p, ids, "dout", dout, "dtable", dtable, &a.ids, &a.dout));
  DLK_TRY(dlk_check_output(ctx, op, "dtable", dtable));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dtable", dtable, "ids", ids));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dtable", dtable, "dout", dout));
  a.padding_idx = p->padding_idx;
  a.dtable = *dtable;
  return dlk_dispatch(ctx, &embedding_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* Layer norm                                                                           */
/* ------------------------------------------------------------------------------------ */

static void layernorm_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_layernorm_fwd_args *a = args;
  snprintf(buf, n, "r%lld_d%lld_%s_x%c_y%c_g%d_b%d_m%d_s%d_al%d", (long long)nrows(&a->x),
           (long long)ncols(&a->x), dt(&a->x), layout_class(&a->x), layout_class(&a->y),
           a->has_gamma, a->has_beta, a->has_mean, a->has_rstd, aligned16(&a->x) && aligned16(&a->y));
}

static void layernorm_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_layernorm_bwd_args *a = args;
  snprintf(buf, n, "r%lld_d%lld_%s_x%c_dy%c_g%d_dx%d_dg%d_db%d", (long long)nrows(&a->x),
           (long long)ncols(&a->x), dt(&a->x), layout_class(&a->x), layout_class(&a->dy),
           a->has_gamma, a->has_dx, a->has_dgamma, a->has_dbeta);
}

static const dlk_variant layernorm_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: two-pass mean and biased variance in f64", NULL,
     NULL, dlk_layernorm_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "rowthread", DLK_CUDA, 1, "one thread per row, two-pass mean/variance",
     dlk_layernorm_fwd_cuda_supports, NULL, dlk_layernorm_fwd_cuda_run},
    {2, "rowwarp", DLK_CUDA, 2, "one warp per row, two-pass mean/variance, vectors when contiguous",
     dlk_layernorm_fwd_cuda_supports, NULL, dlk_layernorm_fwd_cuda_run},
#endif
};

static const dlk_variant layernorm_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: layer norm backward from saved mean/rstd in f64",
     NULL, NULL, dlk_layernorm_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "dx one thread per row; dgamma/dbeta one thread per column",
     dlk_layernorm_bwd_cuda_supports, dlk_layernorm_bwd_cuda_workspace, dlk_layernorm_bwd_cuda_run},
    {2, "rowwarp", DLK_CUDA, 2,
     "dx one warp per row; dgamma/dbeta by row chunks summed in order (workspace, no atomics)",
     dlk_layernorm_bwd_cuda_supports, dlk_layernorm_bwd_cuda_workspace, dlk_layernorm_bwd_cuda_run},
#endif
};

/* Layer norm: the warp-per-row kernels. */
static int layernorm_fwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx, (void)args;
  return dlk_variant_by_name(layernorm_fwd_variants, DLK_COUNT_OF(layernorm_fwd_variants), "rowwarp");
}

static int layernorm_bwd_heuristic(const dlk_context *ctx, const void *args) {
  (void)ctx, (void)args;
  return dlk_variant_by_name(layernorm_bwd_variants, DLK_COUNT_OF(layernorm_bwd_variants), "rowwarp");
}

static int layernorm_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_layernorm_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->y);
  if (a->has_mean) n = dlk_list_output(out, max, n, &a->mean);
  if (a->has_rstd) n = dlk_list_output(out, max, n, &a->rstd);
  return n;
}

static const dlk_op layernorm_fwd_op = {"layernorm_fwd", layernorm_fwd_variants, DLK_COUNT_OF(layernorm_fwd_variants),
    layernorm_fwd_key, layernorm_fwd_heuristic, true, layernorm_fwd_outputs};

static int layernorm_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_layernorm_bwd_args *a = args;
  int n = 0;
  if (a->has_dx) n = dlk_list_output(out, max, n, &a->dx);
  if (a->has_dgamma) n = dlk_list_output(out, max, n, &a->dgamma);
  if (a->has_dbeta) n = dlk_list_output(out, max, n, &a->dbeta);
  return n;
}

static const dlk_op layernorm_bwd_op = {"layernorm_bwd", layernorm_bwd_variants, DLK_COUNT_OF(layernorm_bwd_variants),
    layernorm_bwd_key, layernorm_bwd_heuristic, true, layernorm_bwd_outputs};

/* A per-row statistic (mean, rstd): [rows], x's leading dims, or those plus a trailing 1
   (PyTorch's saved shape); F32 (F64 for F64 x). Flattened to a 1-D [rows] view. */
static dlk_status check_stat(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             const dlk_tensor *x, int64_t rows, dlk_tensor *v) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  DLK_TRY(dlk_check_dtype(ctx, op, name, t, dlk_stat_dtype(x->dtype)));
  bool ok = t->ndim == 1 && t->shape[0] == rows;
  if (!ok && (t->ndim == x->ndim - 1 || (t->ndim == x->ndim && t->shape[t->ndim - 1] == 1))) {
    ok = true;
    for (int k = 0; k + 1 < x->ndim; k++) ok = ok && t->shape[k] == x->shape[k];
  }
  if (!ok)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: %s has %d dims (first %lld), expected [%lld] (one per row of x) or x's "
                    "leading dims",
                    op, name, t->ndim, t->ndim ? (long long)t->shape[0] : -1LL, (long long)rows);
  return dlk_check_as_vector(ctx, op, name, t, v);
}

static dlk_status check_param_vec(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                                  const dlk_tensor *x) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, name, t));
  return dlk_check_vector(ctx, op, name, t, x->shape[x->ndim - 1], "x's last dim");
}

dlk_status dlk_layernorm_forward(dlk_context *ctx, const dlk_layernorm_params *p, const dlk_tensor *x,
                                 const dlk_tensor *gamma, const dlk_tensor *beta, dlk_tensor *y,
                                 dlk_tensor *mean, dlk_tensor *rstd) {
  static const char op[] = "layernorm_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &layernorm_defaults;
  DLK_TRY(dlk_check_at_least(ctx, op, "eps", p->eps, 0.0));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  if (x->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., D]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "y", y));
  if (gamma) DLK_TRY(check_param_vec(ctx, op, "gamma", gamma, x));
  if (beta) DLK_TRY(check_param_vec(ctx, op, "beta", beta, x));
  dlk_layernorm_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &a.x));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "y", y, &a.y));
  const int64_t rows = nrows(&a.x);
  if (mean) DLK_TRY(check_stat(ctx, op, "mean", mean, x, rows, &a.mean));
  if (rstd) DLK_TRY(check_stat(ctx, op, "rstd", rstd, x, rows, &a.rstd));
  const dlk_tensor *ins[3] = {x, gamma, beta}, *outs[3] = {y, mean, rstd};
  static const char *const in_names[3] = {"x", "gamma", "beta"}, *const out_names[3] = {"y", "mean", "rstd"};
  for (int i = 0; i < 3; i++) {
    if (!outs[i]) continue;
    DLK_TRY(dlk_check_output(ctx, op, out_names[i], outs[i]));
    for (int j = 0; j < 3; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], in_names[j], ins[j]));
    for (int j = 0; j < i; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], out_names[j], outs[j]));
  }
  a.eps = p->eps;
  a.has_gamma = gamma != NULL;
  if (gamma) a.gamma = *gamma;
  a.has_beta = beta != NULL;
  if (beta) a.beta = *beta;
  a.has_mean = mean != NULL;
  a.has_rstd = rstd != NULL;
  return dlk_dispatch(ctx, &layernorm_fwd_op, &a);
}

dlk_status dlk_layernorm_backward(dlk_context *ctx, const dlk_layernorm_params *p, const dlk_tensor *x,
                                  const dlk_tensor *gamma, const dlk_tensor *mean, const dlk_tensor *rstd,
                                  const dlk_tensor *dy, dlk_tensor *dx, dlk_tensor *dgamma,
                                  dlk_tensor *dbeta) {
  static const char op[] = "layernorm_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &layernorm_defaults;
  DLK_TRY(dlk_check_at_least(ctx, op, "eps", p->eps, 0.0));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dy", dy));
  if (x->ndim < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x is a scalar, expected [..., D]", op);
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dy", dy));
  if (gamma) DLK_TRY(check_param_vec(ctx, op, "gamma", gamma, x));
  DLK_TRY(dlk_check_need(ctx, op, "mean", mean));
  DLK_TRY(dlk_check_need(ctx, op, "rstd", rstd));
  dlk_layernorm_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(dlk_check_as_matrix(ctx, op, "x", x, &a.x));
  DLK_TRY(dlk_check_as_matrix(ctx, op, "dy", dy, &a.dy));
  const int64_t rows = nrows(&a.x);
  DLK_TRY(check_stat(ctx, op, "mean", mean, x, rows, &a.mean));
  DLK_TRY(check_stat(ctx, op, "rstd", rstd, x, rows, &a.rstd));
  if (dx) {
    DLK_TRY(dlk_check_float(ctx, op, "dx", dx));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
    DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
    DLK_TRY(dlk_check_as_matrix(ctx, op, "dx", dx, &a.dx));
  }
  if (dgamma) DLK_TRY(check_param_vec(ctx, op, "dgamma", dgamma, x));
  if (dbeta) DLK_TRY(check_param_vec(ctx, op, "dbeta", dbeta, x));
  const dlk_tensor *ins[5] = {x, gamma, mean, rstd, dy}, *outs[3] = {dx, dgamma, dbeta};
  static const char *const in_names[5] = {"x", "gamma", "mean", "rstd", "dy"},
                           *const out_names[3] = {"dx", "dgamma", "dbeta"};
  for (int i = 0; i < 3; i++) {
    if (!outs[i]) continue;
    DLK_TRY(dlk_check_output(ctx, op, out_names[i], outs[i]));
    for (int j = 0; j < 5; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], in_names[j], ins[j]));
    for (int j = 0; j < i; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], out_names[j], outs[j]));
  }
  if (!dx && !dgamma && !dbeta) {
    if (ctx->explain) snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s: nothing asked (dx, dgamma, dbeta all NULL)\n", op);
    return DLK_OK;
  }
  a.eps = p->eps;
  a.has_gamma = gamma != NULL;
  if (gamma) a.gamma = *gamma;
  a.has_dx = dx != NULL;
  a.has_dgamma = dgamma != NULL;
  if (dgamma) a.dgamma = *dgamma;
  a.has_dbeta = dbeta != NULL;
  if (dbeta) a.dbeta = *dbeta;
  return dlk_dispatch(ctx, &layernorm_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* Dropout (forward and backward are one op)                                            */
/* ------------------------------------------------------------------------------------ */

/* dlk_dropout_uniform, the mask every variant draws, is defined with the reference
   (nn_cpu.c). */

static void dropout_key(const void *args, char *buf, size_t n) {
  const dlk_dropout_args *a = args;
  snprintf(buf, n, "n%lld_%s_contig%d_inplace%d_al%d", (long long)dlk_tensor_numel(&a->x), dt(&a->x),
           dlk_tensor_is_contiguous(&a->x) && dlk_tensor_is_contiguous(&a->y), a->x.data == a->y.data,
           aligned16(&a->x) && aligned16(&a->y));
}

static const dlk_variant dropout_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: counter-based mask per row-major index", NULL, NULL,
     dlk_dropout_cpu_run},
#if DLK_HAVE_CUDA
    {1, "strided", DLK_CUDA, 1, "one thread per element, any strides, up to 8 dims",
     dlk_dropout_cuda_supports, NULL, dlk_dropout_cuda_run},
    {2, "vec", DLK_CUDA, 2, "contiguous, 16-byte vectors", dlk_dropout_cuda_supports, NULL,
     dlk_dropout_cuda_run},
#endif
};

static int dropout_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_dropout_args *a = args;
  return dlk_list_output(out, max, 0, &a->y);
}

/* In place (y exactly x): the non-tunable twin. */
static const dlk_op dropout_op = {"dropout", dropout_variants, DLK_COUNT_OF(dropout_variants),
    dropout_key, NULL, true, dropout_outputs};
static const dlk_op dropout_once_op = {"dropout", dropout_variants, DLK_COUNT_OF(dropout_variants),
    dropout_key, NULL, false, dropout_outputs};

static dlk_status dropout_common(dlk_context *ctx, const char *op, const dlk_dropout_params *p,
                                 const char *xn, const dlk_tensor *x, const char *yn, dlk_tensor *y) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &dropout_defaults;
  if (!(p->prob >= 0.0 && p->prob < 1.0))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: prob %g is outside [0, 1)", op, p->prob);
  DLK_TRY(dlk_check_float(ctx, op, xn, x));
  DLK_TRY(dlk_check_float(ctx, op, yn, y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, xn, x, yn, y));
  DLK_TRY(dlk_check_same_shape(ctx, op, xn, x, yn, y));
  DLK_TRY(dlk_check_output(ctx, op, yn, y));
  const bool in_place = dlk_same_view(x, y) && dlk_tensor_numel(x) > 0;
  if (!in_place) DLK_TRY(dlk_check_disjoint(ctx, op, yn, y, xn, x));
  dlk_dropout_args a;
  memset(&a, 0, sizeof a);
  a.prob = p->prob;
  a.seed = p->seed;
  a.offset = p->offset;
  a.x = *x;
  a.y = *y;
  return dlk_dispatch(ctx, in_place ? &dropout_once_op : &dropout_op, &a);
}

dlk_status dlk_dropout_forward(dlk_context *ctx, const dlk_dropout_params *p, const dlk_tensor *x,
                               dlk_tensor *y) {
  return dropout_common(ctx, "dropout_forward", p, "x", x, "y", y);
}

/* The same mask, regenerated from (seed, offset, i): dx = dy * keep / (1 - p). */
dlk_status dlk_dropout_backward(dlk_context *ctx, const dlk_dropout_params *p, const dlk_tensor *dy,
                                dlk_tensor *dx) {
  return dropout_common(ctx, "dropout_backward", p, "dy", dy, "dx", dx);
}

/* ------------------------------------------------------------------------------------ */
/* Optimizer steps                                                                      */
/* ------------------------------------------------------------------------------------ */

static void sgd_step_key(const void *args, char *buf, size_t n) {
  const dlk_sgd_step_args *a = args;
  snprintf(buf, n, "n%lld_%s_mom%d_nest%d", (long long)dlk_tensor_numel(&a->param), dt(&a->param),
           a->has_buf, a->p.nesterov);
}

static void adam_step_key(const void *args, char *buf, size_t n) {
  const dlk_adam_step_args *a = args;
  snprintf(buf, n, "n%lld_%s_w%d", (long long)dlk_tensor_numel(&a->param), dt(&a->param), a->p.adamw);
}

static void adagrad_step_key(const void *args, char *buf, size_t n) {
  const dlk_adagrad_step_args *a = args;
  snprintf(buf, n, "n%lld_%s", (long long)dlk_tensor_numel(&a->param), dt(&a->param));
}

static const dlk_variant sgd_step_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: torch.optim.SGD step in f64", NULL, NULL,
     dlk_sgd_step_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "one element per thread", dlk_sgd_step_cuda_supports, NULL,
     dlk_sgd_step_cuda_run},
    {2, "vec", DLK_CUDA, 2, "4 elements per thread, vector loads", dlk_sgd_step_cuda_supports, NULL,
     dlk_sgd_step_cuda_run},
#endif
};

static const dlk_variant adam_step_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: torch.optim.Adam/AdamW step in f64", NULL, NULL,
     dlk_adam_step_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "one element per thread", dlk_adam_step_cuda_supports, NULL,
     dlk_adam_step_cuda_run},
    {2, "vec", DLK_CUDA, 2, "4 elements per thread, vector loads", dlk_adam_step_cuda_supports,
     NULL, dlk_adam_step_cuda_run},
#endif
};

static const dlk_variant adagrad_step_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: torch.optim.Adagrad step in f64", NULL, NULL,
     dlk_adagrad_step_cpu_run},
#if DLK_HAVE_CUDA
    {1, "simple", DLK_CUDA, 1, "one element per thread", dlk_adagrad_step_cuda_supports, NULL,
     dlk_adagrad_step_cuda_run},
    {2, "vec", DLK_CUDA, 2, "4 elements per thread, vector loads", dlk_adagrad_step_cuda_supports,
     NULL, dlk_adagrad_step_cuda_run},
#endif
};

static int sgd_step_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_sgd_step_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->param);
  if (a->has_buf) n = dlk_list_output(out, max, n, &a->buf);
  return n;
}

/* Optimizer steps update their inputs: never timed by the autotuner. */
static const dlk_op sgd_step_op = {"sgd_step", sgd_step_variants, DLK_COUNT_OF(sgd_step_variants),
    sgd_step_key, NULL, false, sgd_step_outputs};

static int adam_step_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_adam_step_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->param);
  n = dlk_list_output(out, max, n, &a->m);
  n = dlk_list_output(out, max, n, &a->v);
  return n;
}

static const dlk_op adam_step_op = {"adam_step", adam_step_variants, DLK_COUNT_OF(adam_step_variants),
    adam_step_key, NULL, false, adam_step_outputs};

static int adagrad_step_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_adagrad_step_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->param);
  n = dlk_list_output(out, max, n, &a->sum);
  return n;
}

static const dlk_op adagrad_step_op = {"adagrad_step", adagrad_step_variants, DLK_COUNT_OF(adagrad_step_variants),
    adagrad_step_key, NULL, false, adagrad_step_outputs};

/* param (updated in place) and grad: same float dtype and element count, any shapes and
   strides (element i is the row-major i-th of each); param's elements distinct. */
static dlk_status check_param_grad(dlk_context *ctx, const char *op, dlk_tensor *param,
                                   const dlk_tensor *grad) {
  DLK_TRY(dlk_check_float(ctx, op, "param", param));
  DLK_TRY(dlk_check_float(ctx, op, "grad", grad));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "param", param, "grad", grad));
  DLK_TRY(dlk_check_same_numel(ctx, op, "grad", grad, "param", param));
  DLK_TRY(dlk_check_output(ctx, op, "param", param));
  return dlk_check_disjoint(ctx, op, "param", param, "grad", grad);
}

/* An optimizer state (updated in place): F32 (F64 for F64 params), param's element
   count, any strides, its elements distinct, overlapping nothing else. */
static dlk_status check_state(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                              const dlk_tensor *param, const dlk_tensor *grad) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  DLK_TRY(dlk_check_dtype(ctx, op, name, t, dlk_stat_dtype(param->dtype)));
  DLK_TRY(dlk_check_same_numel(ctx, op, name, t, "param", param));
  DLK_TRY(dlk_check_output(ctx, op, name, t));
  DLK_TRY(dlk_check_disjoint(ctx, op, name, t, "param", param));
  return dlk_check_disjoint(ctx, op, name, t, "grad", grad);
}

dlk_status dlk_sgd_step(dlk_context *ctx, const dlk_sgd_params *p, dlk_tensor *param, const dlk_tensor *grad,
                        dlk_tensor *momentum_buf) {
  static const char op[] = "sgd_step";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &sgd_defaults;
  DLK_TRY(dlk_check_at_least(ctx, op, "lr", p->lr, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "momentum", p->momentum, 0.0));
  DLK_TRY(dlk_check_finite(ctx, op, "dampening", p->dampening));
  DLK_TRY(dlk_check_at_least(ctx, op, "weight_decay", p->weight_decay, 0.0));
  if (p->nesterov && (p->momentum <= 0.0 || p->dampening != 0.0))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)", op,
                    p->momentum, p->dampening);
  if (p->step < 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: step %lld, must be >= 1 (1 on the first step)",
                    op, (long long)p->step);
  DLK_TRY(check_param_grad(ctx, op, param, grad));
  const bool has_buf = p->momentum != 0.0;
  if (has_buf) {
    if (!momentum_buf)
      return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: momentum_buf is NULL but momentum is %g", op, p->momentum);
    DLK_TRY(check_state(ctx, op, "momentum_buf", momentum_buf, param, grad));
  }
  dlk_sgd_step_args a;
  memset(&a, 0, sizeof a);
  a.p = *p;
  a.first_step = p->step == 1;
  a.param = *param;
  a.grad = *grad;
  a.has_buf = has_buf;
  if (has_buf) a.buf = *momentum_buf;
  return dlk_dispatch(ctx, &sgd_step_op, &a);
}

dlk_status dlk_adam_step(dlk_context *ctx, const dlk_adam_params *p, dlk_tensor *param,
                         const dlk_tensor *grad, dlk_tensor *exp_avg, dlk_tensor *exp_avg_sq) {
  static const char op[] = "adam_step";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &adam_defaults;
  DLK_TRY(dlk_check_at_least(ctx, op, "lr", p->lr, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "eps", p->eps, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "weight_decay", p->weight_decay, 0.0));
  if (!(p->beta1 >= 0.0 && p->beta1 < 1.0))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: beta1 %g is outside [0, 1)", op, p->beta1);
  if (!(p->beta2 >= 0.0 && p->beta2 < 1.0))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: beta2 %g is outside [0, 1)", op, p->beta2);
  if (p->step < 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: step %lld, must be >= 1 (1 on the first step)",
                    op, (long long)p->step);
  DLK_TRY(check_param_grad(ctx, op, param, grad));
  DLK_TRY(check_state(ctx, op, "exp_avg", exp_avg, param, grad));
  DLK_TRY(check_state(ctx, op, "exp_avg_sq", exp_avg_sq, param, grad));
  DLK_TRY(dlk_check_disjoint(ctx, op, "exp_avg_sq", exp_avg_sq, "exp_avg", exp_avg));
  dlk_adam_step_args a;
  memset(&a, 0, sizeof a);
  a.p = *p;
  a.param = *param;
  a.grad = *grad;
  a.m = *exp_avg;
  a.v = *exp_avg_sq;
  return dlk_dispatch(ctx, &adam_step_op, &a);
}

dlk_status dlk_adagrad_step(dlk_context *ctx, const dlk_adagrad_params *p, dlk_tensor *param,
                            const dlk_tensor *grad, dlk_tensor *state_sum) {
  static const char op[] = "adagrad_step";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &adagrad_defaults;
  DLK_TRY(dlk_check_at_least(ctx, op, "lr", p->lr, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "lr_decay", p->lr_decay, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "weight_decay", p->weight_decay, 0.0));
  DLK_TRY(dlk_check_at_least(ctx, op, "eps", p->eps, 0.0));
  if (p->step < 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: step %lld, must be >= 1 (1 on the first step)",
                    op, (long long)p->step);
  DLK_TRY(check_param_grad(ctx, op, param, grad));
  DLK_TRY(check_state(ctx, op, "state_sum", state_sum, param, grad));
  dlk_adagrad_step_args a;
  memset(&a, 0, sizeof a);
  a.p = *p;
  a.param = *param;
  a.grad = *grad;
  a.sum = *state_sum;
  return dlk_dispatch(ctx, &adagrad_step_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* The family's ops, in dlk_op_count order (host/registry.c lists the families)         */
/* ------------------------------------------------------------------------------------ */

const dlk_op *const dlk_nn_ops[] = {
    &gemm_op,          &bias_act_fwd_op,     &bias_act_bwd_op,      &softmax_fwd_op,
    &softmax_bwd_op,   &cross_entropy_fwd_op, &cross_entropy_bwd_op, &embedding_fwd_op,
    &embedding_bwd_op, &layernorm_fwd_op,    &layernorm_bwd_op,     &dropout_op,
    &sgd_step_op,      &adam_step_op,        &adagrad_step_op,      NULL};
