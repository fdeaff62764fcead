/*
 * conv family: the public functions. Each one checks its arguments (NULL pointers,
 * parameters, dtypes, devices, dims, every shape relation, output layouts and overlaps),
 * builds the op's argument record of host/conv/conv.h, and hands it to the dispatcher
 * with the op's variant table, which is written out here row by row.
 *
 * Layout of this file (each op family a contiguous section, in this order):
 *   1. checks shared by the family's ops
 *   2. conv2d: shape keys, variant tables, ops, dlk_conv2d_forward / dlk_conv2d_backward
 *   3. Gram matrix: the same for dlk_gram_forward / dlk_gram_backward
 *   4. pooling, adaptive pooling, batch norm, MSE (their own sections, after these)
 *   5. the family's ops registry line (dlk_conv_ops)
 *
 * Rules common to every op (as in the nn family):
 *   - every check runs before anything is written: a bad call leaves the outputs and the
 *     caller's data untouched;
 *   - an output must not have overlapping elements (DLK_ERR_LAYOUT) and must not overlap
 *     an input or another output (DLK_ERR_INVALID_ARGUMENT);
 *   - tensors keep their strides: channels-last is a stride pattern, and a variant that
 *     cannot take a layout declines it in supports() with the reason.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/check.h"
#include "conv.h"

/* ------------------------------------------------------------------------------------ */
/* 1. Checks shared by the family                                                        */
/* ------------------------------------------------------------------------------------ */

static const char *dt(const dlk_tensor *t) { return dlk_dtype_name(t->dtype); }

/* t has `want` dims; `what` names them in the message ("[N, C, H, W]"). */
static dlk_status check_ndim(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             int want, const char *what) {
  if (t->ndim == want) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d (%s)", op, name, t->ndim,
                  want, what);
}

/* Dim `dim` of t is `want`; `what` says where the expectation comes from (the output-size
   formula with the numbers filled in, "x's batch, dim 0"). */
static dlk_status check_dim(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t, int dim,
                            int64_t want, const char *what) {
  if (t->shape[dim] == want) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d, expected %lld (%s)", op, name,
                  (long long)t->shape[dim], dim, (long long)want, what);
}

/* Each present output is free of self-overlap and disjoint from every input and from the
   outputs before it. */
static dlk_status check_outputs(dlk_context *ctx, const char *op, int n_out, dlk_tensor *const *outs,
                                const char *const *out_names, int n_in, const dlk_tensor *const *ins,
                                const char *const *in_names) {
  for (int i = 0; i < n_out; i++) {
    if (!outs[i]) continue;
    DLK_TRY(dlk_check_output(ctx, op, out_names[i], outs[i]));
    for (int j = 0; j < n_in; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], in_names[j], ins[j]));
    for (int j = 0; j < i; j++) DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], out_names[j], outs[j]));
  }
  return DLK_OK;
}

/* One step of a composite op: dispatch, and in explain mode keep each step's report. */
static dlk_status dispatch_step(dlk_context *ctx, const dlk_op *op, const void *args, char *report, size_t n) {
  dlk_status s = dlk_dispatch(ctx, op, args);
  if (ctx->explain) dlk_appendf(report, n, "%s", ctx->explain_text);
  return s;
}

/* Layout class of a 4-D tensor for shape keys: 'n' NCHW-dense, 'h' channels-last-dense
   (torch.channels_last), 's' anything else. Dims of size 1 do not count. */
static char layout4(const dlk_tensor *t) {
  static const int orders[2][4] = {{3, 2, 1, 0}, {1, 3, 2, 0}}; /* innermost first */
  static const char names[2] = {'n', 'h'};
  for (int o = 0; o < 2; o++) {
    int64_t want = 1;
    bool ok = true;
    for (int i = 0; i < 4 && ok; i++) {
      const int d = orders[o][i];
      if (t->shape[d] != 1 && t->strides[d] != want) ok = false;
      want *= t->shape[d];
    }
    if (ok) return names[o];
  }
  return 's';
}

/* 1 when data is 16-byte aligned (vectorised and cp.async variants want it). */
static int aligned16(const dlk_tensor *t) { return (uintptr_t)t->data % 16 == 0; }

/* A dense tensor of t's shape in the scratch arena, channels-last when t's channel stride
   is 1 (so the fast variants see the layout the caller uses), else NCHW. */
static dlk_status scratch_like4(dlk_context *ctx, const dlk_tensor *t, dlk_tensor *out) {
  memset(out, 0, sizeof *out);
  out->dtype = t->dtype;
  out->device = ctx->device;
  out->ndim = 4;
  memcpy(out->shape, t->shape, sizeof(int64_t) * 4);
  const int64_t c = t->shape[1], h = t->shape[2], w = t->shape[3];
  if (t->strides[1] == 1 && c > 1) {
    out->strides[0] = h * w * c, out->strides[1] = 1, out->strides[2] = w * c, out->strides[3] = c;
  } else {
    out->strides[0] = c * h * w, out->strides[1] = h * w, out->strides[2] = w, out->strides[3] = 1;
  }
  const size_t bytes = (size_t)dlk_tensor_numel(t) * dlk_dtype_size(t->dtype);
  if (bytes) DLK_TRY(dlk_scratch_reserve(ctx, bytes, &out->data));
  return DLK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* 2. conv2d                                                                             */
/* ------------------------------------------------------------------------------------ */

/* ---- shape keys: everything that changes which variant is fastest ---- */

static int geom_key(const dlk_conv2d_geom *g, char *buf, size_t n) {
  return snprintf(buf, n, "n%lld_c%lld_h%lld_w%lld_k%lld_r%lld_s%lld_st%lldx%lld_p%lldx%lld_d%lldx%lld_g%lld",
                  (long long)g->n, (long long)g->c, (long long)g->h, (long long)g->w, (long long)g->k,
                  (long long)g->r, (long long)g->s, (long long)g->stride[0], (long long)g->stride[1],
                  (long long)g->pad[0], (long long)g->pad[1], (long long)g->dil[0], (long long)g->dil[1],
                  (long long)g->groups);
}

static void conv2d_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_conv2d_fwd_args *a = args;
  int k = geom_key(&a->g, buf, n);
  if (k < 0 || (size_t)k >= n) return;
  snprintf(buf + k, n - (size_t)k, "_%s_x%c_w%c_y%c_b%d_z%d_act%d_al%d", dt(&a->x), layout4(&a->x), layout4(&a->w),
           layout4(&a->y), a->has_b, a->has_z, (int)a->act,
           aligned16(&a->x) && aligned16(&a->w) && aligned16(&a->y));
}

static void conv2d_bwd_data_key(const void *args, char *buf, size_t n) {
  const dlk_conv2d_bwd_data_args *a = args;
  int k = geom_key(&a->g, buf, n);
  if (k < 0 || (size_t)k >= n) return;
  snprintf(buf + k, n - (size_t)k, "_%s_w%c_dy%c_dx%c_al%d", dt(&a->dy), layout4(&a->w), layout4(&a->dy),
           layout4(&a->dx), aligned16(&a->w) && aligned16(&a->dy) && aligned16(&a->dx));
}

static void conv2d_bwd_filter_key(const void *args, char *buf, size_t n) {
  const dlk_conv2d_bwd_filter_args *a = args;
  int k = geom_key(&a->g, buf, n);
  if (k < 0 || (size_t)k >= n) return;
  snprintf(buf + k, n - (size_t)k, "_%s_x%c_dy%c_dw%c_al%d", dt(&a->dy), layout4(&a->x), layout4(&a->dy),
           layout4(&a->dw), aligned16(&a->x) && aligned16(&a->dy) && aligned16(&a->dw));
}

static void conv2d_bwd_bias_key(const void *args, char *buf, size_t n) {
  const dlk_conv2d_bwd_bias_args *a = args;
  snprintf(buf, n, "n%lld_k%lld_h%lld_w%lld_%s_dy%c_dz%d_db%d_act%d", (long long)a->dy.shape[0],
           (long long)a->dy.shape[1], (long long)a->dy.shape[2], (long long)a->dy.shape[3], dt(&a->dy),
           layout4(&a->dy), a->has_dz, a->has_db, (int)a->act);
}

/* ---- variant tables: the CPU reference first, then the CUDA rows, cuDNN, the CPU
   variant ---- */

static const dlk_variant conv2d_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: direct loops in f64, any strides, groups, dilation", NULL, NULL,
     dlk_conv2d_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "direct", DLK_CUDA, 1, "one thread per output, any strides", dlk_conv2d_fwd_cuda_supports, NULL,
     dlk_conv2d_fwd_cuda_run},
    {2, "igemm", DLK_CUDA, 2, "implicit GEMM, 64x64x16 shared-memory tiles, 4x4 per thread, any strides",
     dlk_conv2d_fwd_cuda_supports, NULL, dlk_conv2d_fwd_cuda_run},
    {3, "igemm_tc", DLK_CUDA, 3,
     "implicit GEMM on tensor cores (mma.sync f16/bf16, TF32 when allowed), 3-stage cp.async, channels-last",
     dlk_conv2d_fwd_cuda_supports, NULL, dlk_conv2d_fwd_cuda_run},
    {4, "depthwise", DLK_CUDA, 4, "groups == C: input patch per 8x32 output tile in shared memory, NCHW",
     dlk_conv2d_fwd_cuda_supports, NULL, dlk_conv2d_fwd_cuda_run},
#endif
#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN backend graph: conv, bias add, activation fused; plan cached per shape",
     dlk_conv2d_fwd_cudnn_supports, dlk_conv2d_fwd_cudnn_workspace, dlk_conv2d_fwd_cudnn_run},
#endif
    {20, "im2col", DLK_CPU, 0, "CPU: unrolled columns x weights, f32 math (f64 for f64), any strides", NULL,
     dlk_conv2d_fwd_im2col_workspace, dlk_conv2d_fwd_im2col_run},
};

static const dlk_variant conv2d_bwd_data_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: gather form of the transposed convolution in f64, any strides", NULL,
     NULL, dlk_conv2d_bwd_data_cpu_run},
#if DLK_HAVE_CUDA
    {1, "direct", DLK_CUDA, 1, "one thread per dx element gathering its taps, any strides",
     dlk_conv2d_bwd_data_cuda_supports, NULL, dlk_conv2d_bwd_data_cuda_run},
    {2, "igemm", DLK_CUDA, 2, "implicit GEMM over input pixels, 64x64x16 shared-memory tiles, any strides",
     dlk_conv2d_bwd_data_cuda_supports, NULL, dlk_conv2d_bwd_data_cuda_run},
    {3, "igemm_tc", DLK_CUDA, 3, "implicit GEMM on tensor cores (mma.sync f16/bf16, ldmatrix.trans), channels-last",
     dlk_conv2d_bwd_data_cuda_supports, NULL, dlk_conv2d_bwd_data_cuda_run},
    {4, "depthwise", DLK_CUDA, 4, "groups == C: one thread per dx element, filter in shared memory, NCHW",
     dlk_conv2d_bwd_data_cuda_supports, NULL, dlk_conv2d_bwd_data_cuda_run},
#endif
#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN backend graph (conv backward-data), plan cached per shape",
     dlk_conv2d_bwd_data_cudnn_supports, dlk_conv2d_bwd_data_cudnn_workspace, dlk_conv2d_bwd_data_cudnn_run},
#endif
    {20, "im2col", DLK_CPU, 0, "CPU: weights^T x dy into columns, then col2im; f32 math (f64 for f64)", NULL,
     dlk_conv2d_bwd_data_im2col_workspace, dlk_conv2d_bwd_data_im2col_run},
};

static const dlk_variant conv2d_bwd_filter_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: one f64 sum per filter tap, any strides", NULL, NULL,
     dlk_conv2d_bwd_filter_cpu_run},
#if DLK_HAVE_CUDA
    {1, "direct", DLK_CUDA, 1, "one thread per filter tap summing every pixel, any strides (deterministic)",
     dlk_conv2d_bwd_filter_cuda_supports, dlk_conv2d_bwd_filter_cuda_workspace, dlk_conv2d_bwd_filter_cuda_run},
    {2, "igemm", DLK_CUDA, 2,
     "implicit GEMM, 64x64x16 tiles, split-K partials summed in slice order (deterministic), any strides",
     dlk_conv2d_bwd_filter_cuda_supports, dlk_conv2d_bwd_filter_cuda_workspace, dlk_conv2d_bwd_filter_cuda_run},
    {3, "igemm_tc", DLK_CUDA, 3,
     "implicit GEMM on tensor cores (mma.sync f16/bf16), split-K in slice order (deterministic), channels-last",
     dlk_conv2d_bwd_filter_cuda_supports, dlk_conv2d_bwd_filter_cuda_workspace, dlk_conv2d_bwd_filter_cuda_run},
    {4, "depthwise", DLK_CUDA, 4, "groups == C: block per (filter, batch slice), block sums, slice order; NCHW",
     dlk_conv2d_bwd_filter_cuda_supports, dlk_conv2d_bwd_filter_cuda_workspace, dlk_conv2d_bwd_filter_cuda_run},
#endif
#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0,
     "cuDNN backend graph (conv backward-filter), plan cached per shape; deterministic engines in deterministic mode",
     dlk_conv2d_bwd_filter_cudnn_supports, dlk_conv2d_bwd_filter_cudnn_workspace, dlk_conv2d_bwd_filter_cudnn_run},
#endif
    {20, "im2col", DLK_CPU, 0, "CPU: dy x unrolled columns^T per image, summed in image order; f32 math (f64 for f64)",
     NULL, dlk_conv2d_bwd_filter_im2col_workspace, dlk_conv2d_bwd_filter_im2col_run},
};

static const dlk_variant conv2d_bwd_bias_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: dy * act'(z), channel sums in f64", NULL, NULL,
     dlk_conv2d_bwd_bias_cpu_run},
#if DLK_HAVE_CUDA
    {1, "channel", DLK_CUDA, 1, "one block per channel, block reduction (deterministic)", NULL,
     dlk_conv2d_bwd_bias_cuda_workspace, dlk_conv2d_bwd_bias_cuda_run},
    {2, "chunked", DLK_CUDA, 2, "blocks per (chunk, channel), partials summed in chunk order (deterministic)", NULL,
     dlk_conv2d_bwd_bias_cuda_workspace, dlk_conv2d_bwd_bias_cuda_run},
#endif
};

/* ---- outputs: what each op writes (the dispatcher returns at once when all are empty) ---- */

static int conv2d_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_conv2d_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->y);
  if (a->has_z) n = dlk_list_output(out, max, n, &a->z);
  return n;
}

static int conv2d_bwd_data_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_conv2d_bwd_data_args *a = args;
  return dlk_list_output(out, max, 0, &a->dx);
}

static int conv2d_bwd_filter_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_conv2d_bwd_filter_args *a = args;
  return dlk_list_output(out, max, 0, &a->dw);
}

/* dz (the scratch dy * act'(z) for the data and filter steps) and db: both written. */
static int conv2d_bwd_bias_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_conv2d_bwd_bias_args *a = args;
  int n = 0;
  if (a->has_dz) n = dlk_list_output(out, max, n, &a->dz);
  if (a->has_db) n = dlk_list_output(out, max, n, &a->db);
  return n;
}

static const dlk_op conv2d_fwd_op = {"conv2d_fwd", conv2d_fwd_variants, DLK_COUNT_OF(conv2d_fwd_variants),
                                     conv2d_fwd_key, NULL, true, conv2d_fwd_outputs};
static const dlk_op conv2d_bwd_data_op = {"conv2d_bwd_data", conv2d_bwd_data_variants,
                                          DLK_COUNT_OF(conv2d_bwd_data_variants), conv2d_bwd_data_key, NULL, true,
                                          conv2d_bwd_data_outputs};
static const dlk_op conv2d_bwd_filter_op = {"conv2d_bwd_filter", conv2d_bwd_filter_variants,
                                            DLK_COUNT_OF(conv2d_bwd_filter_variants), conv2d_bwd_filter_key, NULL,
                                            true, conv2d_bwd_filter_outputs};
static const dlk_op conv2d_bwd_bias_op = {"conv2d_bwd_bias", conv2d_bwd_bias_variants,
                                          DLK_COUNT_OF(conv2d_bwd_bias_variants), conv2d_bwd_bias_key, NULL, true,
                                          conv2d_bwd_bias_outputs};

/* ---- public functions ---- */

int64_t dlk_conv2d_output_dim(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  if (stride == 0) stride = 1;
  if (dilation == 0) dilation = 1;
  if (in < 0 || kernel < 1 || stride < 0 || padding < 0 || dilation < 0) return 0;
  if (in > INT64_MAX / 4 || padding > INT64_MAX / 8 || kernel - 1 > (INT64_MAX / 4) / dilation) return 0;
  const int64_t span = dilation * (kernel - 1) + 1; /* the dilated kernel */
  if (in + 2 * padding < span) return 0;
  return (in + 2 * padding - span) / stride + 1;
}

/* The parameters, normalised (NULL: the defaults); values checked. Sizes are bounded so
   that every product below stays far from int64 overflow. */
static dlk_status conv2d_params(dlk_context *ctx, const char *op, const dlk_conv2d_params *p, dlk_conv2d_geom *g,
                                dlk_activation *act) {
  static const char *const hw[2] = {"h", "w"};
  const int64_t big = (int64_t)1 << 31;
  memset(g, 0, sizeof *g);
  *act = DLK_ACT_NONE;
  for (int i = 0; i < 2; i++) g->stride[i] = g->dil[i] = 1;
  g->groups = 1;
  if (!p) return DLK_OK;
  DLK_TRY(dlk_check_activation(ctx, op, p->act));
  *act = p->act;
  for (int i = 0; i < 2; i++) {
    if (p->stride[i] < 0 || p->stride[i] >= big)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: stride[%d] (%s) is %lld, must be >= 1 (0 means 1)", op, i,
                      hw[i], (long long)p->stride[i]);
    if (p->dilation[i] < 0 || p->dilation[i] >= big)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dilation[%d] (%s) is %lld, must be >= 1 (0 means 1)", op,
                      i, hw[i], (long long)p->dilation[i]);
    if (p->padding[i] < 0 || p->padding[i] >= big)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: padding[%d] (%s) is %lld, must be >= 0", op, i, hw[i],
                      (long long)p->padding[i]);
    if (p->stride[i]) g->stride[i] = p->stride[i];
    if (p->dilation[i]) g->dil[i] = p->dilation[i];
    g->pad[i] = p->padding[i];
  }
  if (p->groups < 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: groups is %lld, must be >= 1 (0 means 1)", op,
                    (long long)p->groups);
  if (p->groups) g->groups = p->groups;
  return DLK_OK;
}

/* x [N, C, H, W] and w [K, C / groups, R, S], one float dtype; fills the geometry. */
static dlk_status conv2d_geometry(dlk_context *ctx, const char *op, const dlk_tensor *x, const dlk_tensor *w,
                                  dlk_conv2d_geom *g) {
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "w", w));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "w", w));
  DLK_TRY(check_ndim(ctx, op, "x", x, 4, "[N, C, H, W]"));
  DLK_TRY(check_ndim(ctx, op, "w", w, 4, "[Cout, Cin / groups, kH, kW]"));
  g->n = x->shape[0], g->c = x->shape[1], g->h = x->shape[2], g->w = x->shape[3];
  g->k = w->shape[0], g->r = w->shape[2], g->s = w->shape[3];
  if (g->c % g->groups)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: groups %lld does not divide x's %lld input channels (dim 1)",
                    op, (long long)g->groups, (long long)g->c);
  if (g->k % g->groups)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: groups %lld does not divide w's %lld output channels (dim 0)",
                    op, (long long)g->groups, (long long)g->k);
  if (w->shape[1] != g->c / g->groups)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: x has %lld channels (dim 1) but w expects %lld (w dim 1 is %lld per group, %lld groups)", op,
                    (long long)g->c, (long long)(w->shape[1] * g->groups), (long long)w->shape[1],
                    (long long)g->groups);
  static const char *const names[2] = {"height", "width"};
  const int64_t in[2] = {g->h, g->w}, ker[2] = {g->r, g->s};
  int64_t out[2];
  for (int i = 0; i < 2; i++) {
    if (ker[i] < 1)
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w has kernel %s 0 (dim %d)", op, names[i], 2 + i);
    if (ker[i] - 1 > (INT64_MAX / 4) / g->dil[i])
      return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: the dilated kernel %s overflows (w dim %d: %lld taps, dilation %lld)",
                      op, names[i], 2 + i, (long long)ker[i], (long long)g->dil[i]);
    const int64_t span = g->dil[i] * (ker[i] - 1) + 1;
    if (in[i] + 2 * g->pad[i] < span)
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: the dilated kernel %s %lld (w dim %d: %lld taps, dilation %lld) is larger than x's padded "
                      "%s %lld (x dim %d: %lld + 2 x padding %lld): the output %s would be <= 0",
                      op, names[i], (long long)span, 2 + i, (long long)ker[i], (long long)g->dil[i], names[i],
                      (long long)(in[i] + 2 * g->pad[i]), 2 + i, (long long)in[i], (long long)g->pad[i], names[i]);
    out[i] = (in[i] + 2 * g->pad[i] - span) / g->stride[i] + 1;
  }
  g->ho = out[0], g->wo = out[1];
  return DLK_OK;
}

/* t is [N, K, Ho, Wo] for the geometry (y, z, dy). */
static dlk_status check_out4(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             const dlk_conv2d_geom *g) {
  DLK_TRY(check_ndim(ctx, op, name, t, 4, "[N, Cout, Ho, Wo]"));
  DLK_TRY(check_dim(ctx, op, name, t, 0, g->n, "x's batch, dim 0"));
  DLK_TRY(check_dim(ctx, op, name, t, 1, g->k, "w's output channels, dim 0"));
  char what[160];
  snprintf(what, sizeof what, "Ho = (H + 2 ph - dh (kH - 1) - 1) / sh + 1 = (%lld + %lld - %lld - 1) / %lld + 1",
           (long long)g->h, (long long)(2 * g->pad[0]), (long long)(g->dil[0] * (g->r - 1)),
           (long long)g->stride[0]);
  DLK_TRY(check_dim(ctx, op, name, t, 2, g->ho, what));
  snprintf(what, sizeof what, "Wo = (W + 2 pw - dw (kW - 1) - 1) / sw + 1 = (%lld + %lld - %lld - 1) / %lld + 1",
           (long long)g->w, (long long)(2 * g->pad[1]), (long long)(g->dil[1] * (g->s - 1)),
           (long long)g->stride[1]);
  return check_dim(ctx, op, name, t, 3, g->wo, what);
}

/* A same-dtype float tensor of exactly `like`'s shape (dx like x, dw like w). */
static dlk_status check_like(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             const char *like_name, const dlk_tensor *like) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, like_name, like, name, t));
  DLK_TRY(check_ndim(ctx, op, name, t, like->ndim, like_name));
  for (int d = 0; d < like->ndim; d++) {
    char what[48];
    snprintf(what, sizeof what, "%s's dim %d", like_name, d);
    DLK_TRY(check_dim(ctx, op, name, t, d, like->shape[d], what));
  }
  return DLK_OK;
}

/* A bias-like vector [K] of x's dtype. */
static dlk_status check_bias(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *b,
                             const dlk_tensor *x, int64_t k) {
  DLK_TRY(dlk_check_float(ctx, op, name, b));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, name, b));
  DLK_TRY(check_ndim(ctx, op, name, b, 1, "[Cout]"));
  return check_dim(ctx, op, name, b, 0, k, "w's output channels, dim 0");
}

dlk_status dlk_conv2d_forward(dlk_context *ctx, const dlk_conv2d_params *p, const dlk_tensor *x, const dlk_tensor *w,
                              const dlk_tensor *b, dlk_tensor *y, dlk_tensor *z) {
  static const char op[] = "conv2d_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_conv2d_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(conv2d_params(ctx, op, p, &a.g, &a.act));
  DLK_TRY(conv2d_geometry(ctx, op, x, w, &a.g));
  DLK_TRY(dlk_check_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  DLK_TRY(check_out4(ctx, op, "y", y, &a.g));
  if (b) DLK_TRY(check_bias(ctx, op, "b", b, x, a.g.k));
  if (z) {
    DLK_TRY(dlk_check_float(ctx, op, "z", z));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "z", z));
    DLK_TRY(check_out4(ctx, op, "z", z, &a.g));
  }
  dlk_tensor *outs[2] = {y, z};
  static const char *const out_names[2] = {"y", "z"};
  const dlk_tensor *ins[3] = {x, w, b};
  static const char *const in_names[3] = {"x", "w", "b"};
  DLK_TRY(check_outputs(ctx, op, 2, outs, out_names, 3, ins, in_names));
  a.x = *x, a.w = *w, a.y = *y;
  a.has_b = b != NULL;
  if (b) a.b = *b;
  a.has_z = z != NULL;
  if (z) a.z = *z;
  return dlk_dispatch(ctx, &conv2d_fwd_op, &a);
}

dlk_status dlk_conv2d_backward(dlk_context *ctx, const dlk_conv2d_params *p, const dlk_tensor *x, const dlk_tensor *w,
                               const dlk_tensor *z, const dlk_tensor *dy, dlk_tensor *dx, dlk_tensor *dw,
                               dlk_tensor *db) {
  static const char op[] = "conv2d_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_conv2d_geom g;
  dlk_activation act;
  DLK_TRY(conv2d_params(ctx, op, p, &g, &act));
  DLK_TRY(conv2d_geometry(ctx, op, x, w, &g));
  DLK_TRY(dlk_check_float(ctx, op, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dy", dy));
  DLK_TRY(check_out4(ctx, op, "dy", dy, &g));
  if (act != DLK_ACT_NONE && !z)
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: z (the pre-activation from conv2d_forward) is NULL but act is %d",
                    op, (int)act);
  if (z) {
    DLK_TRY(dlk_check_float(ctx, op, "z", z));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "z", z));
    DLK_TRY(check_out4(ctx, op, "z", z, &g));
  }
  if (dx) DLK_TRY(check_like(ctx, op, "dx", dx, "x", x));
  if (dw) DLK_TRY(check_like(ctx, op, "dw", dw, "w", w));
  if (db) DLK_TRY(check_bias(ctx, op, "db", db, x, g.k));
  dlk_tensor *outs[3] = {dx, dw, db};
  static const char *const out_names[3] = {"dx", "dw", "db"};
  const dlk_tensor *ins[4] = {x, w, z, dy};
  static const char *const in_names[4] = {"x", "w", "z", "dy"};
  DLK_TRY(check_outputs(ctx, op, 3, outs, out_names, 4, ins, in_names));

  char report[DLK_EXPLAIN_LEN];
  snprintf(report, sizeof report,
           "%s: composite (conv2d_bwd_bias for dz = dy * act'(z) and db, conv2d_bwd_data for dx, "
           "conv2d_bwd_filter for dw)\n",
           op);
  if (!dx && !dw && !db) {
    if (ctx->explain)
      snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s: nothing asked (dx, dw, db all NULL)\n", op);
    return DLK_OK;
  }

  /* Step 1 (conv2d_bwd_bias): dz = dy * act'(z) into the scratch arena when dx or dw need
     it, with db = its channel sums. With act NONE, dz = dy and the step runs only for db. */
  dlk_conv2d_bwd_bias_args ba;
  memset(&ba, 0, sizeof ba);
  ba.act = act;
  ba.dy = *dy;
  if (act != DLK_ACT_NONE) ba.z = *z;
  ba.has_db = db != NULL;
  if (db) ba.db = *db;
  dlk_tensor dz = *dy;
  if (act != DLK_ACT_NONE && (dx || dw)) {
    DLK_TRY(scratch_like4(ctx, dy, &dz));
    ba.has_dz = true;
    ba.dz = dz;
  }
  const bool run_bias = ba.has_dz || ba.has_db;

  dlk_conv2d_bwd_data_args da;
  memset(&da, 0, sizeof da);
  da.g = g, da.w = *w, da.dy = dz;
  if (dx) da.dx = *dx;
  dlk_conv2d_bwd_filter_args fa;
  memset(&fa, 0, sizeof fa);
  fa.g = g, fa.x = *x, fa.dy = dz;
  if (dw) fa.dw = *dw;

  /* Every step must have a variant before the first one writes anything. */
  if (!ctx->explain) {
    if (run_bias) DLK_TRY(dlk_dispatch_check(ctx, &conv2d_bwd_bias_op, &ba));
    if (dx) DLK_TRY(dlk_dispatch_check(ctx, &conv2d_bwd_data_op, &da));
    if (dw) DLK_TRY(dlk_dispatch_check(ctx, &conv2d_bwd_filter_op, &fa));
  }
  if (run_bias) DLK_TRY(dispatch_step(ctx, &conv2d_bwd_bias_op, &ba, report, sizeof report));
  if (dx) DLK_TRY(dispatch_step(ctx, &conv2d_bwd_data_op, &da, report, sizeof report));
  if (dw) DLK_TRY(dispatch_step(ctx, &conv2d_bwd_filter_op, &fa, report, sizeof report));
  if (ctx->explain) snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s", report);
  return DLK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* 3. Gram matrix                                                                        */
/* ------------------------------------------------------------------------------------ */

static void gram_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_gram_fwd_args *a = args;
  snprintf(buf, n, "n%lld_c%lld_h%lld_w%lld_%s_f%c", (long long)a->f.shape[0], (long long)a->f.shape[1],
           (long long)a->f.shape[2], (long long)a->f.shape[3], dt(&a->f), layout4(&a->f));
}

static void gram_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_gram_bwd_args *a = args;
  snprintf(buf, n, "n%lld_c%lld_h%lld_w%lld_%s_f%c_df%c", (long long)a->f.shape[0], (long long)a->f.shape[1],
           (long long)a->f.shape[2], (long long)a->f.shape[3], dt(&a->f), layout4(&a->f), layout4(&a->df));
}

static const dlk_variant gram_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: one f64 dot product per entry, any strides", NULL, NULL,
     dlk_gram_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gemm", DLK_CUDA, 1, "batched GEMM F F^T / norm through dlk_gemm (every gemm variant), H and W mergeable",
     dlk_gram_fwd_cuda_supports, NULL, dlk_gram_fwd_cuda_run},
#endif
};

static const dlk_variant gram_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: (dg + dg^T) F / norm in f64, any strides", NULL, NULL,
     dlk_gram_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gemm", DLK_CUDA, 1, "two batched GEMMs through dlk_gemm: dg F, then + dg^T F (beta 1)",
     dlk_gram_bwd_cuda_supports, NULL, dlk_gram_bwd_cuda_run},
#endif
};

static int gram_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_gram_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->g);
}

static int gram_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_gram_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->df);
}

static const dlk_op gram_fwd_op = {"gram_fwd", gram_fwd_variants, DLK_COUNT_OF(gram_fwd_variants), gram_fwd_key, NULL,
                                   true, gram_fwd_outputs};
/* (gram_bwd's GPU row writes df with its first GEMM and adds with the second: a rerun
   gives the same df, so the op may be timed.) */
static const dlk_op gram_bwd_op = {"gram_bwd", gram_bwd_variants, DLK_COUNT_OF(gram_bwd_variants), gram_bwd_key, NULL,
                                   true, gram_bwd_outputs};

/* The norm's divisor, checked: H*W or C*H*W must not be 0 (0 / 0 has no gradient). */
static dlk_status gram_scale(dlk_context *ctx, const char *op, const dlk_gram_params *p, const dlk_tensor *f,
                             double *scale) {
  const dlk_gram_norm norm = p ? p->norm : DLK_GRAM_NONE;
  const int64_t hw = f->shape[2] * f->shape[3];
  switch (norm) {
    case DLK_GRAM_NONE: *scale = 1.0; return DLK_OK;
    case DLK_GRAM_HW:
    case DLK_GRAM_CHW: {
      const int64_t d = norm == DLK_GRAM_HW ? hw : hw * f->shape[1];
      if (d == 0)
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: f has %s = 0 (dims %s) and the norm divides by it", op,
                        norm == DLK_GRAM_HW ? "H*W" : "C*H*W", norm == DLK_GRAM_HW ? "2, 3" : "1, 2, 3");
      *scale = 1.0 / (double)d;
      return DLK_OK;
    }
    default:
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: norm %d is not one of NONE, HW, CHW", op, (int)norm);
  }
}

/* f [N, C, H, W] float; t [N, C, C] of f's dtype. */
static dlk_status check_gram(dlk_context *ctx, const char *op, const dlk_tensor *f, const char *name,
                             const dlk_tensor *t) {
  DLK_TRY(dlk_check_float(ctx, op, "f", f));
  DLK_TRY(check_ndim(ctx, op, "f", f, 4, "[N, C, H, W]"));
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "f", f, name, t));
  DLK_TRY(check_ndim(ctx, op, name, t, 3, "[N, C, C]"));
  DLK_TRY(check_dim(ctx, op, name, t, 0, f->shape[0], "f's batch, dim 0"));
  DLK_TRY(check_dim(ctx, op, name, t, 1, f->shape[1], "f's channels, dim 1"));
  return check_dim(ctx, op, name, t, 2, f->shape[1], "f's channels, dim 1");
}

dlk_status dlk_gram_forward(dlk_context *ctx, const dlk_gram_params *p, const dlk_tensor *f, dlk_tensor *g) {
  static const char op[] = "gram_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(check_gram(ctx, op, f, "g", g));
  dlk_gram_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(gram_scale(ctx, op, p, f, &a.scale));
  DLK_TRY(dlk_check_output(ctx, op, "g", g));
  DLK_TRY(dlk_check_disjoint(ctx, op, "g", g, "f", f));
  a.f = *f, a.g = *g;
  return dlk_dispatch(ctx, &gram_fwd_op, &a);
}

dlk_status dlk_gram_backward(dlk_context *ctx, const dlk_gram_params *p, const dlk_tensor *f, const dlk_tensor *dg,
                             dlk_tensor *df) {
  static const char op[] = "gram_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(check_gram(ctx, op, f, "dg", dg));
  DLK_TRY(check_like(ctx, op, "df", df, "f", f));
  dlk_gram_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(gram_scale(ctx, op, p, f, &a.scale));
  dlk_tensor *outs[1] = {df};
  static const char *const out_names[1] = {"df"};
  const dlk_tensor *ins[2] = {f, dg};
  static const char *const in_names[2] = {"f", "dg"};
  DLK_TRY(check_outputs(ctx, op, 1, outs, out_names, 2, ins, in_names));
  a.f = *f, a.dg = *dg, a.df = *df;
  return dlk_dispatch(ctx, &gram_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* 4. Pooling, adaptive average pooling, batch norm, MSE loss                             */
/* ------------------------------------------------------------------------------------ */

/* ---- variant tables: the CPU reference first, then the CUDA rows (host/conv/conv_cuda.c,
   kernels/conv/conv.h); every kernel takes any strides and every float dtype, and all
   are deterministic (no atomics) ---- */

static const dlk_variant pool2d_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: window max (PyTorch's first-maximum order) or mean in f64, any strides",
     NULL, NULL, dlk_pool2d_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "direct", DLK_CUDA, 1, "one thread per output in NCHW order, window read from global, any strides",
     dlk_pool2d_fwd_cuda_supports, NULL, dlk_pool2d_fwd_cuda_run},
    {2, "layout", DLK_CUDA, 2,
     "one thread per output in x's memory order (channel-innermost for channels-last), any strides",
     dlk_pool2d_fwd_cuda_supports, NULL, dlk_pool2d_fwd_cuda_run},
#endif
};

static const dlk_variant pool2d_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: dy routed to each window's first maximum / spread over it, f64 planes",
     NULL, dlk_pool2d_bwd_cpu_workspace, dlk_pool2d_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gather", DLK_CUDA, 1,
     "one thread per input element gathers its windows (max: recomputes their first maximum); deterministic",
     dlk_pool2d_bwd_cuda_supports, dlk_pool2d_bwd_cuda_workspace, dlk_pool2d_bwd_cuda_run},
    {2, "argmax", DLK_CUDA, 2,
     "max: one pass stores each window's first maximum (int32 workspace), then the gather; deterministic",
     dlk_pool2d_bwd_cuda_supports, dlk_pool2d_bwd_cuda_workspace, dlk_pool2d_bwd_cuda_run},
#endif
};

static const dlk_variant adaptive_pool2d_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: mean over torch's adaptive bins in f64, any strides", NULL, NULL,
     dlk_adaptive_pool2d_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "direct", DLK_CUDA, 1, "one thread per output averaging its bin, any strides", NULL, NULL,
     dlk_adaptive_pool2d_fwd_cuda_run},
#endif
};

static const dlk_variant adaptive_pool2d_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: each input element gathers dy / area of the bins holding it, f64",
     NULL, NULL, dlk_adaptive_pool2d_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gather", DLK_CUDA, 1, "one thread per input element gathers dy / area of its bins; deterministic", NULL,
     NULL, dlk_adaptive_pool2d_bwd_cuda_run},
#endif
};

static const dlk_variant batchnorm_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: two-pass channel mean and biased variance in f64, torch's running stats",
     NULL, NULL, dlk_batchnorm_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "channel_block", DLK_CUDA, 1,
     "one block per channel: f64 two-pass statistics, running stats; then one thread per element", NULL, NULL,
     dlk_batchnorm_fwd_cuda_run},
#endif
};

static const dlk_variant batchnorm_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: channel sums of dy and dy xhat in f64 (training or frozen statistics)",
     NULL, NULL, dlk_batchnorm_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "channel_block", DLK_CUDA, 1,
     "one block per channel: f64 sums of dy and dy xhat (workspace); then one thread per element for dx", NULL,
     dlk_batchnorm_bwd_cuda_workspace, dlk_batchnorm_bwd_cuda_run},
#endif
};

static const dlk_variant mse_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: (x - t)^2 summed in f64 over the row-major index, any strides", NULL,
     NULL, dlk_mse_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "strided", DLK_CUDA, 1, "one thread per element through the strides; MEAN/SUM: f64 block partials added in order",
     dlk_mse_fwd_cuda_supports, dlk_mse_fwd_cuda_workspace, dlk_mse_fwd_cuda_run},
    {2, "contig", DLK_CUDA, 2, "as strided with flat offsets (contiguous tensors)", dlk_mse_fwd_cuda_supports,
     dlk_mse_fwd_cuda_workspace, dlk_mse_fwd_cuda_run},
#endif
};

static const dlk_variant mse_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: 2 (x - t) dloss (/ numel for MEAN), any strides", NULL, NULL,
     dlk_mse_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "strided", DLK_CUDA, 1, "one thread per element through the strides", dlk_mse_bwd_cuda_supports, NULL,
     dlk_mse_bwd_cuda_run},
    {2, "contig", DLK_CUDA, 2, "as strided with flat offsets (contiguous tensors)", dlk_mse_bwd_cuda_supports, NULL,
     dlk_mse_bwd_cuda_run},
#endif
};

/* ---- shape keys: everything that changes which variant is fastest ---- */

static void pool_params_key(const dlk_pool2d_params *p, char *buf, size_t n) {
  snprintf(buf, n, "%s_k%lldx%lld_s%lldx%lld_p%lldx%lld_d%lldx%lld_cm%d_cip%d",
           p->kind == DLK_POOL_MAX ? "max" : "avg", (long long)p->kernel[0], (long long)p->kernel[1],
           (long long)p->stride[0], (long long)p->stride[1], (long long)p->padding[0],
           (long long)p->padding[1], (long long)p->dilation[0], (long long)p->dilation[1], p->ceil_mode,
           p->count_include_pad);
}

static void shape4(const dlk_tensor *t, char *buf, size_t n) {
  snprintf(buf, n, "%lldx%lldx%lldx%lld", (long long)t->shape[0], (long long)t->shape[1],
           (long long)t->shape[2], (long long)t->shape[3]);
}

static void pool2d_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_pool2d_fwd_args *a = args;
  char pk[128], xs[80], ys[80];
  pool_params_key(&a->p, pk, sizeof pk);
  shape4(&a->x, xs, sizeof xs), shape4(&a->y, ys, sizeof ys);
  snprintf(buf, n, "x%s_y%s_%s_%s_x%c_y%c", xs, ys, dt(&a->x), pk, layout4(&a->x), layout4(&a->y));
}

static void pool2d_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_pool2d_bwd_args *a = args;
  char pk[128], xs[80], ys[80];
  pool_params_key(&a->p, pk, sizeof pk);
  shape4(&a->x, xs, sizeof xs), shape4(&a->dy, ys, sizeof ys);
  snprintf(buf, n, "x%s_dy%s_%s_%s_x%c_dy%c_dx%c_y%d", xs, ys, dt(&a->x), pk, layout4(&a->x),
           layout4(&a->dy), layout4(&a->dx), a->has_y);
}

static void adaptive_pool2d_key(const void *args, char *buf, size_t n) {
  const dlk_adaptive_pool2d_args *a = args;
  char xs[80], ys[80];
  shape4(&a->in, xs, sizeof xs), shape4(&a->out, ys, sizeof ys);
  snprintf(buf, n, "in%s_out%s_%s_in%c_out%c", xs, ys, dt(&a->in), layout4(&a->in), layout4(&a->out));
}

static void batchnorm_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_batchnorm_fwd_args *a = args;
  char xs[80];
  shape4(&a->x, xs, sizeof xs);
  snprintf(buf, n, "x%s_%s_x%c_y%c_train%d_g%d_b%d_run%d_save%d", xs, dt(&a->x), layout4(&a->x),
           layout4(&a->y), a->training, a->has_gamma, a->has_beta, a->has_running, a->has_save);
}

static void batchnorm_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_batchnorm_bwd_args *a = args;
  char xs[80];
  shape4(&a->x, xs, sizeof xs);
  snprintf(buf, n, "x%s_%s_x%c_dy%c_train%d_g%d_dx%d_dg%d_db%d", xs, dt(&a->x), layout4(&a->x),
           layout4(&a->dy), a->training, a->has_gamma, a->has_dx, a->has_dgamma, a->has_dbeta);
}

static void mse_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_mse_fwd_args *a = args;
  snprintf(buf, n, "n%lld_%s_red%d_contig%d", (long long)dlk_tensor_numel(&a->x), dt(&a->x), (int)a->reduction,
           dlk_tensor_is_contiguous(&a->x) && dlk_tensor_is_contiguous(&a->target) &&
               (a->reduction != DLK_REDUCE_NONE || dlk_tensor_is_contiguous(&a->loss)));
}

static void mse_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_mse_bwd_args *a = args;
  snprintf(buf, n, "n%lld_%s_red%d_contig%d", (long long)dlk_tensor_numel(&a->x), dt(&a->x), (int)a->reduction,
           dlk_tensor_is_contiguous(&a->x) && dlk_tensor_is_contiguous(&a->target) &&
               dlk_tensor_is_contiguous(&a->dx) &&
               (a->reduction != DLK_REDUCE_NONE || dlk_tensor_is_contiguous(&a->dloss)));
}

/* ---- outputs: what each op writes (the dispatcher returns at once when all are empty) ---- */

static int pool2d_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_pool2d_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->y);
}

static int pool2d_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_pool2d_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->dx);
}

/* One record for both directions: `in` is the backward's output (dx), `out` the
   forward's (y). */
static int adaptive_pool2d_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_adaptive_pool2d_args *a = args;
  return dlk_list_output(out, max, 0, &a->out);
}

static int adaptive_pool2d_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_adaptive_pool2d_args *a = args;
  return dlk_list_output(out, max, 0, &a->in);
}

/* y; in training also save_mean/save_rstd and the running statistics it updates, [C]
   each: non-empty whenever C > 0, so a training call on an empty batch (M = 0, which
   writes nothing, include/dlk.h) still reaches the variant, which returns at once. */
static int batchnorm_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_batchnorm_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->y);
  if (a->has_save) {
    n = dlk_list_output(out, max, n, &a->save_mean);
    n = dlk_list_output(out, max, n, &a->save_rstd);
  }
  if (a->training && a->has_running) {
    n = dlk_list_output(out, max, n, &a->running_mean);
    n = dlk_list_output(out, max, n, &a->running_var);
  }
  return n;
}

/* dx, dgamma, dbeta as asked: dgamma and dbeta are sums over the batch, written (as
   zeros) also when the batch is empty. */
static int batchnorm_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_batchnorm_bwd_args *a = args;
  int n = 0;
  if (a->has_dx) n = dlk_list_output(out, max, n, &a->dx);
  if (a->has_dgamma) n = dlk_list_output(out, max, n, &a->dgamma);
  if (a->has_dbeta) n = dlk_list_output(out, max, n, &a->dbeta);
  return n;
}

/* loss: [] or [1] for MEAN and SUM (never empty: an empty x gives NaN or 0), x's shape
   for NONE. */
static int mse_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_mse_fwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->loss);
}

static int mse_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_mse_bwd_args *a = args;
  return dlk_list_output(out, max, 0, &a->dx);
}

/* ---- the ops ---- */

static const dlk_op pool2d_fwd_op = {"pool2d_fwd", pool2d_fwd_variants, DLK_COUNT_OF(pool2d_fwd_variants),
                                     pool2d_fwd_key, NULL, true, pool2d_fwd_outputs};
static const dlk_op pool2d_bwd_op = {"pool2d_bwd", pool2d_bwd_variants, DLK_COUNT_OF(pool2d_bwd_variants),
                                     pool2d_bwd_key, NULL, true, pool2d_bwd_outputs};
static const dlk_op adaptive_pool2d_fwd_op = {"adaptive_avg_pool2d_fwd", adaptive_pool2d_fwd_variants,
                                              DLK_COUNT_OF(adaptive_pool2d_fwd_variants), adaptive_pool2d_key, NULL,
                                              true, adaptive_pool2d_fwd_outputs};
static const dlk_op adaptive_pool2d_bwd_op = {"adaptive_avg_pool2d_bwd", adaptive_pool2d_bwd_variants,
                                              DLK_COUNT_OF(adaptive_pool2d_bwd_variants), adaptive_pool2d_key, NULL,
                                              true, adaptive_pool2d_bwd_outputs};
static const dlk_op batchnorm_fwd_op = {"batchnorm_fwd", batchnorm_fwd_variants, DLK_COUNT_OF(batchnorm_fwd_variants),
                                        batchnorm_fwd_key, NULL, true, batchnorm_fwd_outputs};
/* training with running statistics updates them: never timed by the autotuner */
static const dlk_op batchnorm_fwd_once_op = {"batchnorm_fwd", batchnorm_fwd_variants,
                                             DLK_COUNT_OF(batchnorm_fwd_variants), batchnorm_fwd_key, NULL, false,
                                             batchnorm_fwd_outputs};
static const dlk_op batchnorm_bwd_op = {"batchnorm_bwd", batchnorm_bwd_variants, DLK_COUNT_OF(batchnorm_bwd_variants),
                                        batchnorm_bwd_key, NULL, true, batchnorm_bwd_outputs};
static const dlk_op mse_fwd_op = {"mse_loss_fwd", mse_fwd_variants, DLK_COUNT_OF(mse_fwd_variants), mse_fwd_key, NULL,
                                  true, mse_fwd_outputs};
static const dlk_op mse_bwd_op = {"mse_loss_bwd", mse_bwd_variants, DLK_COUNT_OF(mse_bwd_variants), mse_bwd_key, NULL,
                                  true, mse_bwd_outputs};

/* ---- checks of this section (beside those of section 1 and host/core/check.h) ---- */

/* A present, well-formed float tensor on the context's device. */
static dlk_status need_float(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  DLK_TRY(dlk_check_need(ctx, op, name, t));
  return dlk_check_float(ctx, op, name, t);
}

/* A per-channel vector: [C], the given dtype. */
static dlk_status check_channel_vec(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                                    int64_t C, dlk_dtype want) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  DLK_TRY(dlk_check_dtype(ctx, op, name, t, want));
  if (t->ndim != 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected 1 ([C] = [%lld])", op, name,
                    t->ndim, (long long)C);
  if (t->shape[0] != C)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld elements, expected %lld (x's channels, dim 1)",
                    op, name, (long long)t->shape[0], (long long)C);
  return DLK_OK;
}

/* An image tensor: a float tensor with 4 dims [N, C, H, W]. */
static dlk_status check_image(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  DLK_TRY(dlk_check_need(ctx, op, name, t));
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  return check_ndim(ctx, op, name, t, 4, "[N, C, H, W]");
}

/* ---- pool2d ---------------------------------------------------------------------- */

/* Largest kernel, stride, padding or dilation accepted: products of two stay in int64. */
#define POOL_PARAM_MAX ((int64_t)1 << 31)

/* Check the parameters and fill *q with the normalised ones (stride 0 -> kernel,
   dilation 0 -> 1). */
static dlk_status check_pool_params(dlk_context *ctx, const char *op, const dlk_pool2d_params *p,
                                    dlk_pool2d_params *q) {
  if (!p) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: params is NULL (the kernel size must be given)", op);
  if ((unsigned)p->kind >= DLK_POOL_KIND_COUNT)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: kind %d is not DLK_POOL_MAX or DLK_POOL_AVG", op,
                    (int)p->kind);
  *q = *p;
  static const char *const dim_name[2] = {"height", "width"};
  for (int d = 0; d < 2; d++) {
    if (p->kernel[d] < 1 || p->kernel[d] > POOL_PARAM_MAX)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: kernel[%d] (%s) is %lld, must be in [1, 2^31]", op, d,
                      dim_name[d], (long long)p->kernel[d]);
    if (p->stride[d] < 0 || p->stride[d] > POOL_PARAM_MAX)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: stride[%d] (%s) is %lld, must be in [0, 2^31] (0: the kernel)",
                      op, d, dim_name[d], (long long)p->stride[d]);
    if (p->padding[d] < 0)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: padding[%d] (%s) is %lld, must be >= 0", op, d,
                      dim_name[d], (long long)p->padding[d]);
    if (p->dilation[d] < 0 || p->dilation[d] > POOL_PARAM_MAX)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dilation[%d] (%s) is %lld, must be in [0, 2^31] (0: 1)",
                      op, d, dim_name[d], (long long)p->dilation[d]);
    if (p->kind == DLK_POOL_AVG && p->dilation[d] > 1)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dilation[%d] (%s) is %lld, average pooling has none (0 or 1)",
                      op, d, dim_name[d], (long long)p->dilation[d]);
    /* torch: "pad should be smaller than or equal to half of kernel size" (kernel / 2,
       the undilated kernel, integer division) */
    if (p->padding[d] > p->kernel[d] / 2)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                      "%s: padding[%d] (%s) is %lld, more than half the kernel (%lld / 2 = %lld), as torch refuses",
                      op, d, dim_name[d], (long long)p->padding[d], (long long)p->kernel[d],
                      (long long)(p->kernel[d] / 2));
    if (q->stride[d] == 0) q->stride[d] = q->kernel[d];
    if (q->dilation[d] == 0) q->dilation[d] = 1;
  }
  q->ceil_mode = p->ceil_mode != 0;
  q->count_include_pad = p->count_include_pad != 0;
  return DLK_OK;
}

/* The pooled size of x's spatial dims, each >= 1, else the reason. */
static dlk_status pool_out_shape(dlk_context *ctx, const char *op, const dlk_pool2d_params *q, const dlk_tensor *x,
                                 int64_t out[2]) {
  static const char *const dim_name[2] = {"height", "width"};
  for (int d = 0; d < 2; d++) {
    int64_t in = x->shape[2 + d];
    out[d] = dlk_pool_out_size(in, q->kernel[d], q->padding[d], q->stride[d], q->dilation[d], q->ceil_mode);
    if (out[d] < 1)
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: x has %lld in dim %d (%s): with padding %lld the window of %lld (dilation %lld) does "
                      "not fit, output size %lld",
                      op, (long long)in, 2 + d, dim_name[d], (long long)q->padding[d], (long long)q->kernel[d],
                      (long long)q->dilation[d], (long long)out[d]);
  }
  return DLK_OK;
}

/* y (or dy) is [N, C, OH, OW] for x [N, C, H, W]. */
static dlk_status check_pooled(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                               const dlk_tensor *x, const int64_t out[2]) {
  DLK_TRY(check_dim(ctx, op, name, t, 0, x->shape[0], "x's batch"));
  DLK_TRY(check_dim(ctx, op, name, t, 1, x->shape[1], "x's channels"));
  DLK_TRY(check_dim(ctx, op, name, t, 2, out[0], "the pooled height"));
  return check_dim(ctx, op, name, t, 3, out[1], "the pooled width");
}

dlk_status dlk_pool2d_forward(dlk_context *ctx, const dlk_pool2d_params *p, const dlk_tensor *x, dlk_tensor *y) {
  static const char op[] = "pool2d_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_pool2d_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_pool_params(ctx, op, p, &a.p));
  DLK_TRY(check_image(ctx, op, "x", x));
  DLK_TRY(check_image(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  int64_t out[2];
  DLK_TRY(pool_out_shape(ctx, op, &a.p, x, out));
  DLK_TRY(check_pooled(ctx, op, "y", y, x, out));
  DLK_TRY(dlk_check_output(ctx, op, "y", y));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "x", x));
  a.x = *x;
  a.y = *y;
  return dlk_dispatch(ctx, &pool2d_fwd_op, &a);
}

dlk_status dlk_pool2d_backward(dlk_context *ctx, const dlk_pool2d_params *p, const dlk_tensor *x,
                               const dlk_tensor *y, const dlk_tensor *dy, dlk_tensor *dx) {
  static const char op[] = "pool2d_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_pool2d_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(check_pool_params(ctx, op, p, &a.p));
  DLK_TRY(check_image(ctx, op, "x", x));
  DLK_TRY(check_image(ctx, op, "dy", dy));
  DLK_TRY(check_image(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
  int64_t out[2];
  DLK_TRY(pool_out_shape(ctx, op, &a.p, x, out));
  DLK_TRY(check_pooled(ctx, op, "dy", dy, x, out));
  if (y) {
    DLK_TRY(check_image(ctx, op, "y", y));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
    DLK_TRY(dlk_check_same_shape(ctx, op, "dy", dy, "y", y));
  }
  dlk_tensor *outs[1] = {dx};
  const dlk_tensor *ins[3] = {x, y, dy};
  static const char *const out_names[1] = {"dx"}, *const in_names[3] = {"x", "y", "dy"};
  DLK_TRY(check_outputs(ctx, op, 1, outs, out_names, 3, ins, in_names));
  a.x = *x;
  a.dy = *dy;
  a.dx = *dx;
  a.has_y = y != NULL;
  if (y) a.y = *y;
  return dlk_dispatch(ctx, &pool2d_bwd_op, &a);
}

/* ---- adaptive average pool2d ----------------------------------------------------- */

/* big [N, C, H, W] and small [N, C, OH, OW]: same dtype, batch and channels, every spatial
   size >= 1. */
static dlk_status check_adaptive(dlk_context *ctx, const char *op, const char *nbig, const dlk_tensor *big,
                                 const char *nsmall, const dlk_tensor *small) {
  DLK_TRY(check_image(ctx, op, nbig, big));
  DLK_TRY(check_image(ctx, op, nsmall, small));
  DLK_TRY(dlk_check_same_dtype(ctx, op, nbig, big, nsmall, small));
  DLK_TRY(check_dim(ctx, op, nsmall, small, 0, big->shape[0], "the batch"));
  DLK_TRY(check_dim(ctx, op, nsmall, small, 1, big->shape[1], "the channels"));
  const dlk_tensor *ts[2] = {big, small};
  const char *names[2] = {nbig, nsmall};
  for (int i = 0; i < 2; i++)
    for (int k = 2; k < 4; k++)
      if (ts[i]->shape[k] < 1)
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d, expected >= 1 (a spatial size)", op,
                        names[i], (long long)ts[i]->shape[k], k);
  return DLK_OK;
}

dlk_status dlk_adaptive_avg_pool2d_forward(dlk_context *ctx, const dlk_tensor *x, dlk_tensor *y) {
  static const char op[] = "adaptive_avg_pool2d_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(check_adaptive(ctx, op, "x", x, "y", y));
  DLK_TRY(dlk_check_output(ctx, op, "y", y));
  DLK_TRY(dlk_check_disjoint(ctx, op, "y", y, "x", x));
  dlk_adaptive_pool2d_args a = {*x, *y};
  return dlk_dispatch(ctx, &adaptive_pool2d_fwd_op, &a);
}

dlk_status dlk_adaptive_avg_pool2d_backward(dlk_context *ctx, const dlk_tensor *dy, dlk_tensor *dx) {
  static const char op[] = "adaptive_avg_pool2d_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(check_adaptive(ctx, op, "dx", dx, "dy", dy));
  DLK_TRY(dlk_check_output(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_disjoint(ctx, op, "dx", dx, "dy", dy));
  dlk_adaptive_pool2d_args a = {*dx, *dy};
  return dlk_dispatch(ctx, &adaptive_pool2d_bwd_op, &a);
}

/* ---- batch norm ------------------------------------------------------------------ */

static const dlk_batchnorm_params bn_defaults = {1e-5, 0.1, 1};

static dlk_status check_bn_params(dlk_context *ctx, const char *op, const dlk_batchnorm_params *p) {
  DLK_TRY(dlk_check_finite(ctx, op, "eps", p->eps));
  if (p->eps < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: eps is %g, must be >= 0", op, p->eps);
  DLK_TRY(dlk_check_finite(ctx, op, "momentum", p->momentum));
  if (p->momentum < 0 || p->momentum > 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: momentum is %g, must be in [0, 1]", op, p->momentum);
  return DLK_OK;
}

/* x: a float tensor [N, C], [N, C, L] or [N, C, H, W]. */
static dlk_status check_bn_x(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *x) {
  DLK_TRY(need_float(ctx, op, name, x));
  if (x->ndim < 2 || x->ndim > 4)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected 2, 3 or 4 ([N, C], [N, C, L], [N, C, H, W])",
                    op, name, x->ndim);
  return DLK_OK;
}

/* [N, C], [N, C, L] -> a 4-D view with trailing dims of size 1. */
static dlk_tensor as4(const dlk_tensor *t) {
  dlk_tensor v = *t;
  for (int k = t->ndim; k < 4; k++) v.shape[k] = 1, v.strides[k] = 1;
  v.ndim = 4;
  return v;
}

dlk_status dlk_batchnorm_forward(dlk_context *ctx, const dlk_batchnorm_params *p, const dlk_tensor *x,
                                 const dlk_tensor *gamma, const dlk_tensor *beta, dlk_tensor *running_mean,
                                 dlk_tensor *running_var, dlk_tensor *y, dlk_tensor *save_mean,
                                 dlk_tensor *save_rstd) {
  static const char op[] = "batchnorm_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &bn_defaults;
  DLK_TRY(check_bn_params(ctx, op, p));
  DLK_TRY(check_bn_x(ctx, op, "x", x));
  DLK_TRY(need_float(ctx, op, "y", y));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "y", y));
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "y", y));
  const int64_t C = x->shape[1];
  const dlk_dtype sd = dlk_stat_dtype(x->dtype);
  const bool training = p->training != 0;
  if (gamma) DLK_TRY(check_channel_vec(ctx, op, "gamma", gamma, C, sd));
  if (beta) DLK_TRY(check_channel_vec(ctx, op, "beta", beta, C, sd));
  if (!running_mean != !running_var)
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: %s is NULL but %s is not (give both running statistics or none)",
                    op, running_mean ? "running_var" : "running_mean", running_mean ? "running_mean" : "running_var");
  if (!training && !running_mean)
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: running_mean and running_var are NULL in inference (training 0)", op);
  if (running_mean) {
    DLK_TRY(check_channel_vec(ctx, op, "running_mean", running_mean, C, sd));
    DLK_TRY(check_channel_vec(ctx, op, "running_var", running_var, C, sd));
  }
  if (training) {
    DLK_TRY(dlk_check_need(ctx, op, "save_mean", save_mean));
    DLK_TRY(dlk_check_need(ctx, op, "save_rstd", save_rstd));
  }
  if (training) { /* inference ignores them: checked only when they are written */
    DLK_TRY(check_channel_vec(ctx, op, "save_mean", save_mean, C, sd));
    DLK_TRY(check_channel_vec(ctx, op, "save_rstd", save_rstd, C, sd));
  }
  int64_t m = 1;
  for (int k = 0; k < x->ndim; k++)
    if (k != 1) m *= x->shape[k];
  if (training && m == 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: training with one value per channel (x's dims other than 1 multiply to 1): the batch "
                    "variance is undefined (torch refuses it too)",
                    op);
  dlk_tensor *outs[5] = {y, training ? save_mean : NULL, training ? save_rstd : NULL,
                               training ? running_mean : NULL, training ? running_var : NULL};
  static const char *const out_names[5] = {"y", "save_mean", "save_rstd", "running_mean", "running_var"};
  const dlk_tensor *ins[5] = {x, gamma, beta, training ? NULL : running_mean, training ? NULL : running_var};
  static const char *const in_names[5] = {"x", "gamma", "beta", "running_mean", "running_var"};
  DLK_TRY(check_outputs(ctx, op, 5, outs, out_names, 5, ins, in_names));

  dlk_batchnorm_fwd_args a;
  memset(&a, 0, sizeof a);
  a.eps = p->eps;
  a.momentum = p->momentum;
  a.training = training;
  a.x = as4(x);
  a.y = as4(y);
  a.has_gamma = gamma != NULL;
  if (gamma) a.gamma = *gamma;
  a.has_beta = beta != NULL;
  if (beta) a.beta = *beta;
  a.has_running = running_mean != NULL;
  if (running_mean) a.running_mean = *running_mean, a.running_var = *running_var;
  a.has_save = training;
  if (training) a.save_mean = *save_mean, a.save_rstd = *save_rstd;
  return dlk_dispatch(ctx, training && a.has_running ? &batchnorm_fwd_once_op : &batchnorm_fwd_op, &a);
}

dlk_status dlk_batchnorm_backward(dlk_context *ctx, const dlk_batchnorm_params *p, const dlk_tensor *x,
                                  const dlk_tensor *gamma, const dlk_tensor *save_mean, const dlk_tensor *save_rstd,
                                  const dlk_tensor *dy, dlk_tensor *dx, dlk_tensor *dgamma, dlk_tensor *dbeta) {
  static const char op[] = "batchnorm_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &bn_defaults;
  DLK_TRY(check_bn_params(ctx, op, p));
  DLK_TRY(check_bn_x(ctx, op, "x", x));
  DLK_TRY(need_float(ctx, op, "dy", dy));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dy", dy));
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dy", dy));
  const int64_t C = x->shape[1];
  const dlk_dtype sd = dlk_stat_dtype(x->dtype);
  const bool training = p->training != 0;
  if (gamma) DLK_TRY(check_channel_vec(ctx, op, "gamma", gamma, C, sd));
  const char *mname = training ? "save_mean" : "save_mean (the running mean)";
  const char *sname = training ? "save_rstd" : "save_rstd (the running variance)";
  DLK_TRY(dlk_check_need(ctx, op, mname, save_mean));
  DLK_TRY(dlk_check_need(ctx, op, sname, save_rstd));
  DLK_TRY(check_channel_vec(ctx, op, "save_mean", save_mean, C, sd));
  DLK_TRY(check_channel_vec(ctx, op, "save_rstd", save_rstd, C, sd));
  if (dx) {
    DLK_TRY(need_float(ctx, op, "dx", dx));
    DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
    DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
  }
  if (dgamma) DLK_TRY(check_channel_vec(ctx, op, "dgamma", dgamma, C, sd));
  if (dbeta) DLK_TRY(check_channel_vec(ctx, op, "dbeta", dbeta, C, sd));
  dlk_tensor *outs[3] = {dx, dgamma, dbeta};
  const dlk_tensor *ins[5] = {x, gamma, save_mean, save_rstd, dy};
  static const char *const out_names[3] = {"dx", "dgamma", "dbeta"},
                           *const in_names[5] = {"x", "gamma", "save_mean", "save_rstd", "dy"};
  DLK_TRY(check_outputs(ctx, op, 3, outs, out_names, 5, ins, in_names));
  if (!dx && !dgamma && !dbeta) {
    if (ctx->explain)
      snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s: nothing asked (dx, dgamma, dbeta all NULL)\n", op);
    return DLK_OK;
  }
  dlk_batchnorm_bwd_args a;
  memset(&a, 0, sizeof a);
  a.eps = p->eps;
  a.training = training;
  a.x = as4(x);
  a.dy = as4(dy);
  a.mean = *save_mean;
  a.stat = *save_rstd;
  a.has_gamma = gamma != NULL;
  if (gamma) a.gamma = *gamma;
  a.has_dx = dx != NULL;
  if (dx) a.dx = as4(dx);
  a.has_dgamma = dgamma != NULL;
  if (dgamma) a.dgamma = *dgamma;
  a.has_dbeta = dbeta != NULL;
  if (dbeta) a.dbeta = *dbeta;
  return dlk_dispatch(ctx, &batchnorm_bwd_op, &a);
}

/* ---- MSE loss -------------------------------------------------------------------- */

static const dlk_mse_params mse_defaults = {DLK_REDUCE_MEAN};

static dlk_status check_reduction(dlk_context *ctx, const char *op, dlk_reduction r) {
  if ((unsigned)r < DLK_REDUCTION_COUNT) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: reduction %d is not MEAN, SUM or NONE", op, (int)r);
}

/* The loss tensor (or dloss): the loss dtype of x; [] or [1] for MEAN/SUM, x's shape for
   NONE. */
static dlk_status check_loss(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             const dlk_tensor *x, dlk_reduction r) {
  DLK_TRY(dlk_check_need(ctx, op, name, t));
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  DLK_TRY(dlk_check_dtype(ctx, op, name, t, dlk_stat_dtype(x->dtype)));
  if (r == DLK_REDUCE_NONE) return dlk_check_same_shape(ctx, op, "x", x, name, t);
  if (t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1)) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims (first %lld), expected [] or [1] (reduction %s)",
                  op, name, t->ndim, t->ndim ? (long long)t->shape[0] : 0LL, r == DLK_REDUCE_MEAN ? "MEAN" : "SUM");
}

static dlk_status check_mse_inputs(dlk_context *ctx, const char *op, const dlk_mse_params *p, const dlk_tensor *x,
                                   const dlk_tensor *target) {
  DLK_TRY(check_reduction(ctx, op, p->reduction));
  DLK_TRY(need_float(ctx, op, "x", x));
  DLK_TRY(need_float(ctx, op, "target", target));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "target", target));
  return dlk_check_same_shape(ctx, op, "x", x, "target", target);
}

dlk_status dlk_mse_loss_forward(dlk_context *ctx, const dlk_mse_params *p, const dlk_tensor *x,
                                const dlk_tensor *target, dlk_tensor *loss) {
  static const char op[] = "mse_loss_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &mse_defaults;
  DLK_TRY(check_mse_inputs(ctx, op, p, x, target));
  DLK_TRY(check_loss(ctx, op, "loss", loss, x, p->reduction));
  DLK_TRY(dlk_check_output(ctx, op, "loss", loss));
  DLK_TRY(dlk_check_disjoint(ctx, op, "loss", loss, "x", x));
  DLK_TRY(dlk_check_disjoint(ctx, op, "loss", loss, "target", target));
  dlk_mse_fwd_args a = {p->reduction, *x, *target, *loss};
  return dlk_dispatch(ctx, &mse_fwd_op, &a);
}

dlk_status dlk_mse_loss_backward(dlk_context *ctx, const dlk_mse_params *p, const dlk_tensor *x,
                                 const dlk_tensor *target, const dlk_tensor *dloss, dlk_tensor *dx) {
  static const char op[] = "mse_loss_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &mse_defaults;
  DLK_TRY(check_mse_inputs(ctx, op, p, x, target));
  DLK_TRY(check_loss(ctx, op, "dloss", dloss, x, p->reduction));
  DLK_TRY(need_float(ctx, op, "dx", dx));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "x", x, "dx", dx));
  DLK_TRY(dlk_check_same_shape(ctx, op, "x", x, "dx", dx));
  dlk_tensor *outs[1] = {dx};
  const dlk_tensor *ins[3] = {x, target, dloss};
  static const char *const out_names[1] = {"dx"}, *const in_names[3] = {"x", "target", "dloss"};
  DLK_TRY(check_outputs(ctx, op, 1, outs, out_names, 3, ins, in_names));
  dlk_mse_bwd_args a = {p->reduction, *x, *target, *dloss, *dx};
  return dlk_dispatch(ctx, &mse_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* 5. The family's ops, for dlk_op_count / dlk_op_variants / forcing by name              */
/* ------------------------------------------------------------------------------------ */

const dlk_op *const dlk_conv_ops[] = {&conv2d_fwd_op, &conv2d_bwd_data_op, &conv2d_bwd_filter_op,
                                      &conv2d_bwd_bias_op, &gram_fwd_op, &gram_bwd_op, &pool2d_fwd_op,
                                      &pool2d_bwd_op, &adaptive_pool2d_fwd_op, &adaptive_pool2d_bwd_op,
                                      &batchnorm_fwd_op, &batchnorm_bwd_op, &mse_fwd_op, &mse_bwd_op, NULL};
