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
  if (impl == 3 && ctx->cc_major < 8) return why_set(why, n, "tensor-core kernel needs compute capability 8.0+");
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
  /* every kernel of the ladder is deterministic: nothing to check for that */
  if (impl == 3 && ctx->cc_major < 8) return why_set(why, n, "tensor-core kernel needs compute capability 8.0+");
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

/* ====================================================================================== */
/* Pooling, adaptive average pooling, batch norm, MSE loss: rows over the kernels of      */
/* kernels/conv/conv.h. Every kernel takes any strides and every float dtype; the         */
/* ladders' rungs differ in thread order and passes, and all are deterministic.          */
/* ====================================================================================== */

static dlk_k_img k_img(const dlk_tensor *t) {
  dlk_k_img k;
  k.data = t->data;
  k.n = t->shape[0], k.c = t->shape[1], k.h = t->shape[2], k.w = t->shape[3];
  k.sn = t->strides[0], k.sc = t->strides[1], k.sh = t->strides[2], k.sw = t->strides[3];
  return k;
}

static dlk_k_chan k_chan(const dlk_tensor *t, bool present) {
  dlk_k_chan v = {NULL, 0};
  if (present) v.data = t->data, v.s = t->ndim >= 1 ? t->strides[0] : 0;
  return v;
}

static dlk_status cnn_enter(dlk_context *ctx) { return dlk_cuda_enter(ctx); }

/* ---- pool2d ---- */

static void pool_desc(const dlk_pool2d_params *p, dlk_k_pool2d_desc *d) {
  memset(d, 0, sizeof *d);
  d->kind = (int)p->kind;
  d->count_include_pad = p->count_include_pad;
  d->kh = p->kernel[0], d->kw = p->kernel[1], d->sh = p->stride[0], d->sw = p->stride[1];
  d->ph = p->padding[0], d->pw = p->padding[1], d->dh = p->dilation[0], d->dw = p->dilation[1];
}

static void pool_fwd_desc(const dlk_pool2d_fwd_args *a, dlk_k_pool2d_desc *d) {
  pool_desc(&a->p, d);
  d->dtype = (int)a->x.dtype;
  d->x = k_img(&a->x), d->y = k_img(&a->y);
}

static void pool_bwd_desc(const dlk_pool2d_bwd_args *a, dlk_k_pool2d_desc *d) {
  pool_desc(&a->p, d);
  d->dtype = (int)a->x.dtype;
  d->x = k_img(&a->x), d->dy = k_img(&a->dy), d->dx = k_img(&a->dx);
}

bool dlk_pool2d_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx, (void)args, (void)why, (void)n, (void)impl;
  return true; /* any strides, every float dtype */
}

dlk_status dlk_pool2d_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_pool2d_desc d;
  pool_fwd_desc(args, &d);
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_pool2d_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_pool2d_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx;
  const dlk_pool2d_bwd_args *a = args;
  if (impl == 2 && a->p.kind == DLK_POOL_MAX && a->x.shape[2] * a->x.shape[3] > INT32_MAX)
    return why_set(why, n, "an H*W plane of more than 2^31 - 1 elements (the argmax is an int32 offset)");
  return true;
}

size_t dlk_pool2d_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_pool2d_desc d;
  pool_bwd_desc(args, &d);
  return dlk_k_pool2d_bwd_ws(&d, impl);
}

dlk_status dlk_pool2d_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  dlk_k_pool2d_desc d;
  pool_bwd_desc(args, &d);
  if (ws_bytes < dlk_k_pool2d_bwd_ws(&d, impl))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "pool2d_bwd: workspace %zu < %zu bytes", ws_bytes,
                    dlk_k_pool2d_bwd_ws(&d, impl));
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_pool2d_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- adaptive average pool2d ---- */

static void adaptive_desc(const dlk_adaptive_pool2d_args *a, dlk_k_adaptive_pool2d_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->in.dtype;
  d->in = k_img(&a->in), d->out = k_img(&a->out);
}

dlk_status dlk_adaptive_pool2d_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                            size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_adaptive_pool2d_desc d;
  adaptive_desc(args, &d);
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adaptive_pool2d_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

dlk_status dlk_adaptive_pool2d_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                            size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_adaptive_pool2d_desc d;
  adaptive_desc(args, &d);
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_adaptive_pool2d_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- batch norm ---- */

dlk_status dlk_batchnorm_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_batchnorm_fwd_args *a = args;
  dlk_k_batchnorm_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.training = a->training;
  d.eps = a->eps, d.momentum = a->momentum;
  d.x = k_img(&a->x), d.y = k_img(&a->y);
  d.gamma = k_chan(&a->gamma, a->has_gamma), d.beta = k_chan(&a->beta, a->has_beta);
  d.running_mean = k_chan(&a->running_mean, a->has_running);
  d.running_var = k_chan(&a->running_var, a->has_running);
  d.save_mean = k_chan(&a->save_mean, a->has_save), d.save_rstd = k_chan(&a->save_rstd, a->has_save);
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_batchnorm_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

static void bn_bwd_desc(const dlk_batchnorm_bwd_args *a, dlk_k_batchnorm_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)a->x.dtype;
  d->training = a->training;
  d->eps = a->eps;
  d->x = k_img(&a->x), d->dy = k_img(&a->dy);
  if (a->has_dx) d->dx = k_img(&a->dx);
  d->gamma = k_chan(&a->gamma, a->has_gamma);
  d->save_mean = k_chan(&a->mean, true), d->save_rstd = k_chan(&a->stat, true);
  d->dgamma = k_chan(&a->dgamma, a->has_dgamma), d->dbeta = k_chan(&a->dbeta, a->has_dbeta);
}

size_t dlk_batchnorm_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_batchnorm_desc d;
  bn_bwd_desc(args, &d);
  return dlk_k_batchnorm_bwd_ws(&d, impl);
}

dlk_status dlk_batchnorm_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  dlk_k_batchnorm_desc d;
  bn_bwd_desc(args, &d);
  if (ws_bytes < dlk_k_batchnorm_bwd_ws(&d, impl))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "batchnorm_bwd: workspace %zu < %zu bytes", ws_bytes,
                    dlk_k_batchnorm_bwd_ws(&d, impl));
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_batchnorm_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ---- MSE loss ---- */

/* Strides of t, or of a 0-d/[1] loss (unused then). */
static void mse_strides(const dlk_tensor *t, int64_t *st) {
  for (int k = 0; k < 8; k++) st[k] = k < t->ndim ? t->strides[k] : 0;
}

static void mse_desc(dlk_reduction r, const dlk_tensor *x, const dlk_tensor *target, const dlk_tensor *loss,
                     const dlk_tensor *dloss, const dlk_tensor *dx, dlk_k_mse_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)x->dtype;
  d->reduction = (int)r;
  d->ndim = x->ndim;
  d->numel = dlk_tensor_numel(x);
  for (int k = 0; k < x->ndim; k++) d->shape[k] = x->shape[k];
  d->x = x->data, d->target = target->data;
  mse_strides(x, d->sx), mse_strides(target, d->st);
  if (loss) d->loss = loss->data, mse_strides(loss, d->sl);
  if (dloss) d->dloss = dloss->data, mse_strides(dloss, d->sl);
  if (dx) d->dx = dx->data, mse_strides(dx, d->sdx);
}

/* impl 2 flattens: every tensor of the elementwise part must be contiguous. */
static bool mse_contig(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (dlk_tensor_is_contiguous(t)) return true;
  snprintf(why, n, "%s is not contiguous (the contiguous variant flattens it)", name);
  return false;
}

bool dlk_mse_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx;
  const dlk_mse_fwd_args *a = args;
  if (impl != 2) return true;
  return mse_contig("x", &a->x, why, n) && mse_contig("target", &a->target, why, n) &&
         (a->reduction != DLK_REDUCE_NONE || mse_contig("loss", &a->loss, why, n));
}

size_t dlk_mse_fwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  const dlk_mse_fwd_args *a = args;
  dlk_k_mse_desc d;
  mse_desc(a->reduction, &a->x, &a->target, &a->loss, NULL, NULL, &d);
  return dlk_k_mse_fwd_ws(&d, impl);
}

dlk_status dlk_mse_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  const dlk_mse_fwd_args *a = args;
  dlk_k_mse_desc d;
  mse_desc(a->reduction, &a->x, &a->target, &a->loss, NULL, NULL, &d);
  if (ws_bytes < dlk_k_mse_fwd_ws(&d, impl))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "mse_loss_fwd: workspace %zu < %zu bytes", ws_bytes,
                    dlk_k_mse_fwd_ws(&d, impl));
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_mse_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_mse_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx;
  const dlk_mse_bwd_args *a = args;
  if (impl != 2) return true;
  return mse_contig("x", &a->x, why, n) && mse_contig("target", &a->target, why, n) &&
         mse_contig("dx", &a->dx, why, n) && (a->reduction != DLK_REDUCE_NONE || mse_contig("dloss", &a->dloss, why, n));
}

dlk_status dlk_mse_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_mse_bwd_args *a = args;
  dlk_k_mse_desc d;
  mse_desc(a->reduction, &a->x, &a->target, NULL, &a->dloss, &a->dx, &d);
  DLK_TRY(cnn_enter(ctx));
  DLK_CUDA_TRY(ctx, dlk_k_mse_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

#endif /* DLK_HAVE_CUDA */
