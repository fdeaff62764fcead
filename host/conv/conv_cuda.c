/*
 * conv family: the rows of the hand-written CUDA kernels (kernels/conv/). One
 * supports/workspace/run triple per op serves its whole ladder through `impl`, which is
 * the kernel's number in the launcher (1 direct, 2 igemm, 3 igemm_tc, 4 depthwise; bias:
 * 1 channel, 2 chunked); the reasons a kernel declines a case come from the launcher's
 * _supports, so host and kernel never disagree. The Gram rows run the batched GEMM
 * through the gemm op's own dispatch (dlk_gemm), so every gemm variant serves them.
 */
#include <string.h>

#include "conv.h"

#if DLK_HAVE_CUDA
#include "../../kernels/conv/conv.h"

/* ---- records -> plain-C kernel descriptors ---- */

static dlk_k_conv2d_geom k_geom(const dlk_conv2d_geom *g) {
  dlk_k_conv2d_geom k;
  k.n = g->n, k.c = g->c, k.h = g->h, k.w = g->w;
  k.k = g->k, k.r = g->r, k.s = g->s, k.ho = g->ho, k.wo = g->wo;
  for (int i = 0; i < 2; i++) k.stride[i] = g->stride[i], k.pad[i] = g->pad[i], k.dil[i] = g->dil[i];
  k.groups = g->groups;
  return k;
}

static dlk_k_t4 k_t4(const dlk_tensor *t) {
  dlk_k_t4 k;
  k.data = t->data;
  for (int i = 0; i < 4; i++) k.st[i] = t->ndim == 4 ? t->strides[i] : 0;
  return k;
}

static dlk_k_vec k_vec(const dlk_tensor *t, bool present) {
  dlk_k_vec v = {NULL, 0, 0};
  if (present) v.data = t->data, v.n = t->shape[0], v.s = t->strides[0];
  return v;
}

static void fwd_desc(const dlk_context *ctx, const dlk_conv2d_fwd_args *a, dlk_k_conv2d_fwd_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->x.dtype;
  d->act = (int)a->act;
  d->allow_tf32 = ctx->opts.allow_tf32 != 0;
  d->g = k_geom(&a->g);
  d->x = k_t4(&a->x), d->w = k_t4(&a->w), d->y = k_t4(&a->y);
  if (a->has_z) d->z = k_t4(&a->z);
  d->b = k_vec(&a->b, a->has_b);
}

static void data_desc(const dlk_conv2d_bwd_data_args *a, dlk_k_conv2d_bwd_data_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->dy.dtype;
  d->g = k_geom(&a->g);
  d->w = k_t4(&a->w), d->dy = k_t4(&a->dy), d->dx = k_t4(&a->dx);
}

static void filter_desc(const dlk_conv2d_bwd_filter_args *a, dlk_k_conv2d_bwd_filter_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->dy.dtype;
  d->g = k_geom(&a->g);
  d->x = k_t4(&a->x), d->dy = k_t4(&a->dy), d->dw = k_t4(&a->dw);
}

static void bias_desc(const dlk_conv2d_bwd_bias_args *a, dlk_k_conv2d_bwd_bias_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->dy.dtype;
  d->act = (int)a->act;
  d->n = a->dy.shape[0], d->k = a->dy.shape[1], d->h = a->dy.shape[2], d->w = a->dy.shape[3];
  d->dy = k_t4(&a->dy);
  if (a->act != DLK_ACT_NONE) d->z = k_t4(&a->z);
  if (a->has_dz) d->dz = k_t4(&a->dz);
  d->db = k_vec(&a->db, a->has_db);
}

/* A kernel of the ladder refuses f64 when it has no f64 path (the tensor-core one); the
   launchers' own _supports say everything else. */
static bool why_set(char *why, size_t n, const char *msg) {
  snprintf(why, n, "%s", msg);
  return false;
}

/* ---- conv2d_fwd ---- */

bool dlk_conv2d_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  dlk_k_conv2d_fwd_desc d;
  fwd_desc(ctx, args, &d);
  if (impl == 3 && ctx->cc_major < 8) return why_set(why, n, "tensor-core kernel needs compute capability 8.0+");
  return dlk_k_conv2d_fwd_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_conv2d_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_conv2d_fwd_desc d;
  fwd_desc(ctx, args, &d);
  DLK_CUDA_TRY(ctx, dlk_k_conv2d_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- conv2d_bwd_data ---- */

bool dlk_conv2d_bwd_data_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx;
  dlk_k_conv2d_bwd_data_desc d;
  data_desc(args, &d);
  return dlk_k_conv2d_bwd_data_supports(&d, impl, why, n) != 0;
}

dlk_status dlk_conv2d_bwd_data_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_conv2d_bwd_data_desc d;
  data_desc(args, &d);
  DLK_CUDA_TRY(ctx, dlk_k_conv2d_bwd_data(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- conv2d_bwd_filter ---- */

bool dlk_conv2d_bwd_filter_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx; /* every kernel of the ladder is deterministic */
  dlk_k_conv2d_bwd_filter_desc d;
  filter_desc(args, &d);
  return dlk_k_conv2d_bwd_filter_supports(&d, impl, why, n) != 0;
}

size_t dlk_conv2d_bwd_filter_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_conv2d_bwd_filter_desc d;
  filter_desc(args, &d);
  return dlk_k_conv2d_bwd_filter_ws(&d, impl);
}

dlk_status dlk_conv2d_bwd_filter_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_conv2d_bwd_filter_desc d;
  filter_desc(args, &d);
  DLK_CUDA_TRY(ctx, dlk_k_conv2d_bwd_filter(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- conv2d_bwd_bias ---- */

size_t dlk_conv2d_bwd_bias_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_conv2d_bwd_bias_desc d;
  bias_desc(args, &d);
  return dlk_k_conv2d_bwd_bias_ws(&d, impl);
}

dlk_status dlk_conv2d_bwd_bias_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_conv2d_bwd_bias_desc d;
  bias_desc(args, &d);
  DLK_CUDA_TRY(ctx, dlk_k_conv2d_bwd_bias(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- Gram: batched GEMM through dlk_gemm ---- */

/* f [N, C, H, W] as the [N, C, H*W] matrix stack F, when H and W merge into one dim. */
static bool as_nc_hw(const dlk_tensor *f, dlk_tensor *m) {
  const int64_t h = f->shape[2], w = f->shape[3];
  int64_t hw_stride = f->strides[3];
  if (h > 1 && w > 1 && f->strides[2] != w * f->strides[3]) return false;
  if (w == 1) hw_stride = f->strides[2];
  *m = *f;
  m->ndim = 3;
  m->shape[2] = h * w;
  m->strides[2] = h * w > 1 ? hw_stride : 1;
  return true;
}

/* Swap the last two dims of a 3-D view. */
static dlk_tensor tr3(dlk_tensor t) {
  int64_t s = t.shape[1], st = t.strides[1];
  t.shape[1] = t.shape[2], t.strides[1] = t.strides[2];
  t.shape[2] = s, t.strides[2] = st;
  return t;
}

/* Run the nested gemm calls, then say the Gram op ran (dlk_last_variant). */
static dlk_status gemm_step(dlk_context *ctx, double alpha, double beta, const dlk_tensor *a, const dlk_tensor *b,
                            dlk_tensor *c) {
  const dlk_gemm_params p = {alpha, beta};
  const char *op = ctx->last_op;
  const int id = ctx->last_variant;
  dlk_status s = dlk_gemm(ctx, &p, a, b, c);
  ctx->last_op = op, ctx->last_variant = id;
  return s;
}

bool dlk_gram_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_gram_fwd_args *a = args;
  dlk_tensor m;
  if (!as_nc_hw(&a->f, &m)) return why_set(why, n, "f's H and W strides do not merge into one dim (H*W)");
  return true;
}

/* g[n] = scale F[n] F[n]^T */
dlk_status dlk_gram_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_gram_fwd_args *a = args;
  dlk_tensor f3, g = a->g;
  as_nc_hw(&a->f, &f3);
  const dlk_tensor ft = tr3(f3);
  return gemm_step(ctx, a->scale, 0.0, &f3, &ft, &g);
}

bool dlk_gram_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_gram_bwd_args *a = args;
  dlk_tensor m;
  if (!as_nc_hw(&a->f, &m)) return why_set(why, n, "f's H and W strides do not merge into one dim (H*W)");
  if (!as_nc_hw(&a->df, &m)) return why_set(why, n, "df's H and W strides do not merge into one dim (H*W)");
  return true;
}

/* df[n] = scale dg[n] F[n] + scale dg[n]^T F[n] (the second gemm accumulates, beta 1). */
dlk_status dlk_gram_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_gram_bwd_args *a = args;
  dlk_tensor f3, df3;
  as_nc_hw(&a->f, &f3);
  as_nc_hw(&a->df, &df3);
  const dlk_tensor dgt = tr3(a->dg);
  DLK_TRY(gemm_step(ctx, a->scale, 0.0, &a->dg, &f3, &df3));
  return gemm_step(ctx, a->scale, 1.0, &dgt, &f3, &df3);
}

#endif /* DLK_HAVE_CUDA */
