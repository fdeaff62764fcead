/*
 * rnn family: the hand-written CUDA rows.
 *
 *   rnn_cell_fwd 1 "fused"       both gate GEMVs and the pointwise in one launch
 *                                (kernels/rnn/rnn_cell.cu); GRU reset_before and the LSTM
 *                                projection take a second launch
 *   rnn_cell_bwd 1 "gemm"        pointwise kernel, then GEMMs through the gemm dispatch
 *   rnn_fwd      1 "gemm"        one GEMM for the input projection of all steps, then per
 *                                step a recurrent GEMM and one fused pointwise gate kernel
 *                2 "persistent"  the input-projection GEMM, then one persistent launch per
 *                                layer and direction (W_hh on chip, grid barrier per step)
 *                3 "fused_b1"    batch-1 inference: one persistent launch per layer and
 *                                direction with the input projection inside
 *   rnn_bwd      1 "gemm"        per step the pointwise backward and the recurrent GEMM,
 *                                then one GEMM each for dx, dW_ih, dW_hh per layer
 *
 * Variants 1 and 2 of the sequence, and the cell backward, are composites: their GEMMs go
 * through the gemm dispatch (cuBLAS or dlk's kernels), which uses the context's workspace
 * arena, so their own buffers live in the scratch arena (host/core's rule for composite
 * ops); their supports() holds that scratch to the context's workspace cap.
 *
 * Every forward variant writes the dlk reserve layout (host/rnn/rnn.h), so the gemm
 * backward reads the reserve of any of them.
 */
#include "rnn.h"

#if DLK_HAVE_CUDA
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../../kernels/rnn/rnn.h"

/* ---- small helpers ---- */

static size_t al(size_t v) { return (v + 255) & ~(size_t)255; }
static size_t es_of(dlk_dtype t) { return dlk_dtype_size(t); }

typedef struct bump {
  char *p;
  size_t used;
} bump;
static void *take(bump *b, size_t bytes) {
  void *r = b->p ? b->p + b->used : NULL;
  b->used += al(bytes ? bytes : 1);
  return r;
}

static dlk_k_rnn_mat kmat(const dlk_tensor *t) {
  dlk_k_rnn_mat m = {t->data, t->strides[0], t->strides[1]};
  return m;
}
static dlk_k_rnn_mat kmat_opt(bool has, const dlk_tensor *t) {
  dlk_k_rnn_mat m = {NULL, 0, 0};
  return has ? kmat(t) : m;
}
static dlk_k_rnn_mat dmat(void *p, int64_t rs) {
  dlk_k_rnn_mat m = {p, rs, 1};
  return m;
}
/* p advanced by n elements of dtype t */
static void *adv(const void *p, int64_t n, dlk_dtype t) { return p ? (char *)p + n * (int64_t)es_of(t) : NULL; }

/* A 2-D tensor over device memory. */
static dlk_tensor t2(const dlk_context *ctx, dlk_dtype dt, const void *p, int64_t r, int64_t c, int64_t rs, int64_t cs) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = (void *)p;
  t.dtype = dt;
  t.device = ctx->device;
  t.ndim = 2;
  t.shape[0] = r, t.shape[1] = c;
  t.strides[0] = rs, t.strides[1] = cs;
  return t;
}
/* Rows [r0, r0 + n) of a 2-D tensor, and entries [r0, r0 + n) of a 1-D one. */
static dlk_tensor rows_of(const dlk_tensor *t, int64_t r0, int64_t n) {
  dlk_tensor v = *t;
  v.data = adv(t->data, r0 * t->strides[0], t->dtype);
  v.shape[0] = n;
  return v;
}
static dlk_tensor transposed(dlk_tensor t) {
  int64_t s = t.shape[0], st = t.strides[0];
  t.shape[0] = t.shape[1], t.strides[0] = t.strides[1];
  t.shape[1] = s, t.strides[1] = st;
  return t;
}

/* c = a @ b (+ c when beta is 1), through the gemm dispatch. */
static dlk_status gemm(dlk_context *ctx, const dlk_tensor *a, const dlk_tensor *b, dlk_tensor *c, double beta) {
  if (a->shape[0] == 0 || c->shape[1] == 0) return DLK_OK;
  dlk_gemm_params p = {1.0, beta};
  return dlk_gemm(ctx, &p, a, b, c);
}
/* y = x @ w^T + b (b may be NULL), through the linear dispatch. */
static dlk_status linear(dlk_context *ctx, const dlk_tensor *x, const dlk_tensor *w, const dlk_tensor *b, dlk_tensor *y) {
  if (x->shape[0] == 0) return DLK_OK;
  dlk_linear_params p = {DLK_ACT_NONE};
  return dlk_linear_forward(ctx, &p, x, w, b, y, NULL);
}

static bool gpu_dtype(dlk_dtype t, char *why, size_t n) {
  if (t == DLK_F32 || t == DLK_F16 || t == DLK_BF16) return true;
  snprintf(why, n, "%s runs on the CPU reference (F32, F16, BF16 here)", dlk_dtype_name(t));
  return false;
}

/* Composite rows keep their buffers in the scratch arena: hold it to the workspace cap. */
static bool scratch_fits(const dlk_context *ctx, size_t bytes, char *why, size_t n) {
  if (!ctx->opts.workspace_limit || bytes <= ctx->opts.workspace_limit) return true;
  snprintf(why, n, "needs %zu bytes of scratch, the workspace cap is %zu", bytes, ctx->opts.workspace_limit);
  return false;
}

static dlk_status run_done(dlk_context *ctx, const char *op, int id) {
  ctx->last_op = op; /* the nested GEMMs recorded themselves */
  ctx->last_variant = id;
  return DLK_OK;
}

/* ====================================================================================== */
/* rnn_cell_fwd 1: fused                                                                   */
/* ====================================================================================== */

static dlk_k_rnn_cell_fwd_desc cell_fwd_desc(const dlk_rnn_cell_fwd_args *a) {
  dlk_k_rnn_cell_fwd_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)a->x.dtype;
  d.mode = (int)a->mode;
  d.reset_before = a->reset_before;
  d.B = a->batch, d.I = a->input, d.H = a->hidden, d.P = a->state;
  d.x = kmat(&a->x);
  d.h = kmat_opt(a->has_h, &a->h);
  d.c = kmat_opt(a->has_c, &a->c);
  d.w_ih = kmat(&a->w.w_ih);
  d.w_hh = kmat(&a->w.w_hh);
  d.w_hr = kmat_opt(a->w.has_w_hr, &a->w.w_hr);
  if (a->w.has_b_ih) d.b_ih = a->w.b_ih.data, d.b_ih_s = a->w.b_ih.strides[0];
  if (a->w.has_b_hh) d.b_hh = a->w.b_hh.data, d.b_hh_s = a->w.b_hh.strides[0];
  d.h_out = kmat(&a->h_out);
  d.c_out = kmat_opt(a->has_c_out, &a->c_out);
  d.saved = kmat_opt(a->has_saved, &a->saved);
  return d;
}

bool dlk_rnn_cell_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_rnn_cell_fwd_args *a = args;
  if (!gpu_dtype(a->x.dtype, why, n)) return false;
  if ((a->batch + 7) / 8 > 65535) {
    snprintf(why, n, "batch %lld over 524280 rows", (long long)a->batch);
    return false;
  }
  return true;
}

size_t dlk_rnn_cell_fwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  dlk_k_rnn_cell_fwd_desc d = cell_fwd_desc(args);
  return dlk_k_rnn_cell_fwd_ws(&d, impl);
}

dlk_status dlk_rnn_cell_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws_bytes;
  DLK_TRY(dlk_cuda_enter(ctx));
  dlk_k_rnn_cell_fwd_desc d = cell_fwd_desc(args);
  DLK_CUDA_TRY(ctx, dlk_k_rnn_cell_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ====================================================================================== */
/* rnn_cell_bwd 1: pointwise kernel + GEMMs                                                */
/* ====================================================================================== */

typedef struct cell_bwd_bufs {
  void *dgi, *dgh, *dhd, *dhp, *hp, *drh, *rh;
} cell_bwd_bufs;

static size_t cell_bwd_layout(const dlk_rnn_cell_bwd_args *a, char *base, cell_bwd_bufs *o) {
  const size_t es = es_of(a->x.dtype);
  const int64_t B = a->batch, H = a->hidden, P = a->state, GH = dlk_rnn_gates(a->mode) * H;
  bump b = {base, 0};
  memset(o, 0, sizeof *o);
  o->dgi = take(&b, (size_t)(B * GH) * es);
  if (a->mode == DLK_RNN_GRU) o->dgh = take(&b, (size_t)(B * GH) * es);
  o->dhd = take(&b, (size_t)(B * P) * es);
  if (a->w.has_w_hr) o->dhp = take(&b, (size_t)(B * H) * es), o->hp = take(&b, (size_t)(B * H) * es);
  if (a->reset_before) o->drh = take(&b, (size_t)(B * H) * es), o->rh = take(&b, (size_t)(B * H) * es);
  return b.used;
}

bool dlk_rnn_cell_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_rnn_cell_bwd_args *a = args;
  cell_bwd_bufs o;
  return gpu_dtype(a->x.dtype, why, n) && scratch_fits(ctx, cell_bwd_layout(a, NULL, &o), why, n);
}

dlk_status dlk_rnn_cell_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_rnn_cell_bwd_args *a = args;
  DLK_TRY(dlk_cuda_enter(ctx));
  const dlk_dtype dt = a->x.dtype;
  const int64_t B = a->batch, H = a->hidden, P = a->state, G = dlk_rnn_gates(a->mode), GH = G * H;
  const bool rb = a->reset_before, proj = a->w.has_w_hr;
  cell_bwd_bufs o;
  void *base = NULL;
  DLK_TRY(dlk_scratch_reserve(ctx, cell_bwd_layout(a, NULL, &o), &base));
  cell_bwd_layout(a, base, &o);
  dlk_tensor dgi = t2(ctx, dt, o.dgi, B, GH, GH, 1);
  dlk_tensor dgh = a->mode == DLK_RNN_GRU ? t2(ctx, dt, o.dgh, B, GH, GH, 1) : dgi;
  dlk_tensor dh = a->has_dh ? a->dh : t2(ctx, dt, o.dhd, B, P, P, 1);
  if (proj && a->has_dh_out) { /* dhp = dh' W_hr */
    dlk_tensor dhp = t2(ctx, dt, o.dhp, B, H, H, 1);
    DLK_TRY(gemm(ctx, &a->dh_out, &a->w.w_hr, &dhp, 0.0));
  }
  dlk_k_rnn_step_bwd_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = d.c_dtype = d.dc_dtype = d.dh_dtype = (int)dt;
  d.mode = (int)a->mode;
  d.phase = rb ? 1 : 0;
  d.B = B, d.H = H, d.P = P;
  d.saved = kmat(&a->saved);
  d.h = kmat_opt(a->has_h, &a->h);
  d.c = kmat_opt(a->has_c, &a->c);
  d.dh = proj ? dmat(NULL, 0) : kmat_opt(a->has_dh_out, &a->dh_out);
  d.dhp = proj && a->has_dh_out ? dmat(o.dhp, H) : dmat(NULL, 0);
  d.dc = kmat_opt(a->has_dc_out, &a->dc_out);
  d.dgi = dmat(o.dgi, GH);
  d.dgh = a->mode == DLK_RNN_GRU ? dmat(o.dgh, GH) : dmat(NULL, 0);
  d.dc_out = kmat_opt(a->has_dc, &a->dc);
  d.dh_direct = kmat(&dh);
  d.hp_out = proj ? dmat(o.hp, H) : dmat(NULL, 0);
  DLK_CUDA_TRY(ctx, dlk_k_rnn_step_bwd(&d, 0, NULL, ctx->stream));
  if (rb) { /* d(rh) = da_n W_hn, then the r gate */
    dlk_tensor dan = t2(ctx, dt, adv(o.dgi, 2 * H, dt), B, H, GH, 1), whn = rows_of(&a->w.w_hh, 2 * H, H);
    dlk_tensor drh = t2(ctx, dt, o.drh, B, H, H, 1);
    DLK_TRY(gemm(ctx, &dan, &whn, &drh, 0.0));
    d.phase = 2;
    d.drh = dmat(o.drh, H);
    d.rh_out = dmat(o.rh, H);
    DLK_CUDA_TRY(ctx, dlk_k_rnn_step_bwd(&d, 0, NULL, ctx->stream));
  }
  const int64_t hrows = rb ? 2 * H : GH; /* reset_before: the n rows went through d(rh) */
  if (a->has_dh) { /* the gradient of h (also when h was absent: zeros) */
    dlk_tensor g = t2(ctx, dt, o.dgh ? o.dgh : o.dgi, B, hrows, GH, 1), w = rows_of(&a->w.w_hh, 0, hrows);
    DLK_TRY(gemm(ctx, &g, &w, &dh, 1.0));
  }
  if (a->has_dx) DLK_TRY(gemm(ctx, &dgi, &a->w.w_ih, (dlk_tensor *)&a->dx, 0.0));
  if (a->g.has_w_ih) {
    dlk_tensor gt = transposed(dgi);
    DLK_TRY(gemm(ctx, &gt, &a->x, (dlk_tensor *)&a->g.w_ih, 1.0));
  }
  if (a->g.has_w_hh && a->has_h) {
    dlk_tensor gt = transposed(t2(ctx, dt, dgh.data, B, hrows, GH, 1)), dw = rows_of(&a->g.w_hh, 0, hrows);
    DLK_TRY(gemm(ctx, &gt, &a->h, &dw, 1.0));
    if (rb) {
      dlk_tensor gn = transposed(t2(ctx, dt, adv(dgh.data, 2 * H, dt), B, H, GH, 1)), rh = t2(ctx, dt, o.rh, B, H, H, 1);
      dlk_tensor dwn = rows_of(&a->g.w_hh, 2 * H, H);
      DLK_TRY(gemm(ctx, &gn, &rh, &dwn, 1.0));
    }
  }
  dlk_k_rnn_colsum_desc cs = {(int)dt, B, GH, o.dgi, GH, NULL, 0};
  if (a->g.has_b_ih) {
    cs.dst = a->g.b_ih.data, cs.dst_s = a->g.b_ih.strides[0];
    DLK_CUDA_TRY(ctx, dlk_k_rnn_colsum(&cs, 0, NULL, ctx->stream));
  }
  if (a->g.has_b_hh) {
    cs.src = dgh.data;
    cs.dst = a->g.b_hh.data, cs.dst_s = a->g.b_hh.strides[0];
    DLK_CUDA_TRY(ctx, dlk_k_rnn_colsum(&cs, 0, NULL, ctx->stream));
  }
  if (a->g.has_w_hr && a->has_dh_out) {
    dlk_tensor gt = transposed(a->dh_out), hp = t2(ctx, dt, o.hp, B, H, H, 1);
    DLK_TRY(gemm(ctx, &gt, &hp, (dlk_tensor *)&a->g.w_hr, 1.0));
  }
  return run_done(ctx, "rnn_cell_bwd", 1);
}

/* ====================================================================================== */
/* rnn_fwd 1, 2, 3                                                                          */
/* ====================================================================================== */

/* The row stride of x as time-major rows [T*B, I] (row t*B + b), when its memory allows
   that view without a copy (a batch_first x does only for B = 1 or T = 1). */
static bool x_rows(const dlk_rnn_fwd_args *a, int64_t *rs) {
  if (a->B <= 1)
    *rs = a->x.strides[0];
  else if (a->T <= 1 || a->x.strides[0] == a->B * a->x.strides[1])
    *rs = a->x.strides[1];
  else
    return false;
  return true;
}
static bool x_time_major(const dlk_rnn_fwd_args *a) {
  int64_t rs;
  return x_rows(a, &rs);
}

typedef struct fwd_bufs {
  void *gi, *gh, *ghn, *hcur, *ccur, *hp, *htmp, *rh, *rz, *lens, *xbuf, *store, *persist;
} fwd_bufs;

static size_t fwd_layout(const dlk_rnn_fwd_args *a, int impl, size_t persist_ws, char *base, fwd_bufs *o) {
  const size_t es = es_of(a->x.dtype);
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, GH = dlk_rnn_gates(a->mode) * H;
  bump b = {base, 0};
  memset(o, 0, sizeof *o);
  if (impl != 3) o->gi = take(&b, (size_t)(T * B * GH) * es);
  if (impl == 1) {
    o->gh = take(&b, (size_t)(B * GH) * es);
    o->ghn = take(&b, (size_t)(B * H) * es);
    o->hcur = take(&b, (size_t)(B * P) * es);
    o->ccur = take(&b, (size_t)(B * H) * 4);
    o->hp = take(&b, (size_t)(B * H) * es);
    o->htmp = take(&b, (size_t)(B * P) * es);
    o->rh = take(&b, (size_t)(B * H) * es);
    o->rz = take(&b, (size_t)(2 * B * H) * 4);
  } else {
    o->persist = take(&b, persist_ws);
  }
  o->lens = take(&b, (size_t)B * 4);
  if (!x_time_major(a) && impl != 3) o->xbuf = take(&b, (size_t)(T * B * a->I) * es);
  if (!a->training) {
    dlk_rnn_layout lo;
    dlk_rnn_layout_of(a, &lo);
    o->store = take(&b, lo.total);
  }
  return b.used;
}

/* A [T, B, n] block of the store as time-major rows [T*B, n]. */
static dlk_tensor store_rows(const dlk_context *ctx, const dlk_rnn_fwd_args *a, void *store, size_t off, int64_t n) {
  return t2(ctx, a->x.dtype, (char *)store + off, a->T * a->B, n, n, 1);
}

/* Layer l's input as time-major rows (x copied when its rows do not merge). */
static dlk_tensor layer_input(dlk_context *ctx, const dlk_rnn_fwd_args *a, const dlk_rnn_layout *lo, void *store,
                              void *xbuf, int64_t l) {
  if (l > 0) return store_rows(ctx, a, store, a->has_dropout ? lo->drop[l] : lo->ys[l - 1], a->D * a->P);
  if (xbuf) return t2(ctx, a->x.dtype, xbuf, a->T * a->B, a->I, a->I, 1);
  int64_t rs = 0;
  x_rows(a, &rs); /* true here: else the caller made xbuf */
  return t2(ctx, a->x.dtype, a->x.data, a->T * a->B, a->I, rs, a->x.strides[2]);
}

static dlk_status copy_x(dlk_context *ctx, const dlk_rnn_fwd_args *a, void *xbuf) {
  dlk_k_rnn_copy3_desc c = {(int)a->x.dtype, (int)a->x.dtype, a->T, a->B, a->I, a->x.data, a->x.strides[0],
                            a->x.strides[1], a->x.strides[2], xbuf, a->B * a->I, a->I, 1, NULL, 0, 0};
  DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
  return DLK_OK;
}

/* dst [B, n] (strides) <- entry ld of a state tensor [L*D, B, n] (absent: zeros). */
static dlk_status state_in(dlk_context *ctx, bool has, const dlk_tensor *s, int64_t ld, int64_t B, int64_t n,
                           dlk_dtype dst_dt, void *dst) {
  dlk_k_rnn_copy3_desc c = {has ? (int)s->dtype : (int)dst_dt, (int)dst_dt, 1, B, n,
                            has ? adv(s->data, ld * s->strides[0], s->dtype) : NULL,
                            0, has ? s->strides[1] : 0, has ? s->strides[2] : 0, dst, 0, n, 1, NULL, 0, 0};
  DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
  return DLK_OK;
}
/* entry ld of a state tensor <- src [B, n] contiguous */
static dlk_status state_out(dlk_context *ctx, const dlk_tensor *s, int64_t ld, int64_t B, int64_t n, dlk_dtype src_dt,
                            const void *src) {
  dlk_k_rnn_copy3_desc c = {(int)src_dt, (int)s->dtype, 1, B, n, src, 0, n, 1,
                            adv(s->data, ld * s->strides[0], s->dtype), 0, s->strides[1], s->strides[2], NULL, 0, 0};
  DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
  return DLK_OK;
}

static dlk_status upload_lens(dlk_context *ctx, const dlk_rnn_fwd_args *a, void *dev) {
  if (!a->has_lengths || a->B == 0) return DLK_OK;
  DLK_CUDA_TRY(ctx, cudaMemcpyAsync(dev, a->lens, (size_t)a->B * 4, cudaMemcpyHostToDevice, (cudaStream_t)ctx->stream));
  return DLK_OK;
}

static dlk_status dropout_layer(dlk_context *ctx, const dlk_rnn_fwd_args *a, const void *src, void *dst, int64_t l) {
  dlk_k_rnn_dropout_desc d = {(int)a->x.dtype, a->T, a->B, a->D * a->P, src, dst, a->dropout, a->seed,
                              dlk_rnn_drop_counter(a, l, 0, 0, 0)};
  DLK_CUDA_TRY(ctx, dlk_k_rnn_dropout(&d, 0, NULL, ctx->stream));
  return DLK_OK;
}

/* The persistent kernel's descriptor for layer l, direction d. */
static dlk_k_rnn_persist_desc persist_desc(const dlk_rnn_fwd_args *a, int impl) {
  dlk_k_rnn_persist_desc p;
  memset(&p, 0, sizeof p);
  p.device = a->x.device.id;
  p.dtype = (int)a->x.dtype;
  p.mode = (int)a->mode;
  p.fuse_input = impl == 3;
  p.T = a->T, p.B = a->B, p.I = a->I, p.H = a->H;
  return p;
}

/* Can the persistent kernel take every layer (the largest input is layer 0's or D*H)? */
static bool persist_ok(const dlk_rnn_fwd_args *a, int impl, size_t *ws, char *why, size_t n) {
  if (a->mode == DLK_RNN_GRU && a->reset_before) {
    snprintf(why, n, "gru_reset_before needs a second barrier per step: not in the persistent kernel");
    return false;
  }
  if (a->P != a->H) {
    snprintf(why, n, "LSTM projection: not in the persistent kernel");
    return false;
  }
  if (impl == 3 && (a->B != 1 || a->training)) {
    snprintf(why, n, "batch-1 inference only (batch %lld, training %d)", (long long)a->B, a->training);
    return false;
  }
  dlk_k_rnn_persist_desc p = persist_desc(a, impl);
  if (impl == 3 && a->D * a->P > p.I) p.I = a->D * a->P;
  return dlk_k_rnn_persist_plan(&p, ws, why, n) != 0;
}

bool dlk_rnn_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  const dlk_rnn_fwd_args *a = args;
  if (!gpu_dtype(a->x.dtype, why, n)) return false;
  size_t pws = 0;
  if (impl != 1 && !persist_ok(a, impl, &pws, why, n)) return false;
  fwd_bufs o;
  return scratch_fits(ctx, fwd_layout(a, impl, pws, NULL, &o), why, n);
}

dlk_status dlk_rnn_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ws, (void)ws_bytes;
  const dlk_rnn_fwd_args *a = args;
  DLK_TRY(dlk_cuda_enter(ctx));
  const dlk_dtype dt = a->x.dtype;
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, D = a->D, W = D * P, GH = dlk_rnn_gates(a->mode) * H;
  const bool lstm = a->mode == DLK_RNN_LSTM, rb = a->reset_before, proj = P != H;
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  char why[256];
  size_t pws = 0;
  if (impl != 1 && !persist_ok(a, impl, &pws, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "rnn_fwd/%d: %s", impl, why);
  fwd_bufs o;
  void *base = NULL;
  DLK_TRY(dlk_scratch_reserve(ctx, fwd_layout(a, impl, pws, NULL, &o), &base));
  fwd_layout(a, impl, pws, base, &o);
  DLK_TRY(upload_lens(ctx, a, o.lens));
  const int32_t *lens = a->has_lengths ? (const int32_t *)o.lens : NULL;
  void *store = o.store;
  if (a->training) {
    dlk_rnn_reserve_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "dlkrnn1", 8);
    h.format = DLK_RNN_FORMAT_DLK;
    h.key_hash = a->key_hash;
    DLK_CUDA_TRY(ctx, cudaMemcpyAsync(a->reserve.data, &h, sizeof h, cudaMemcpyHostToDevice, (cudaStream_t)ctx->stream));
    store = (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER;
  }
  if (o.xbuf) DLK_TRY(copy_x(ctx, a, o.xbuf));

  for (int64_t l = 0; l < a->L; l++) {
    if (l > 0 && a->has_dropout)
      DLK_TRY(dropout_layer(ctx, a, (char *)store + lo.ys[l - 1], (char *)store + lo.drop[l], l));
    dlk_tensor xin = layer_input(ctx, a, &lo, store, o.xbuf, l);
    const int64_t I = xin.shape[1];
    for (int64_t d = 0; d < D; d++) {
      const int64_t ldi = l * D + d;
      dlk_rnn_w w;
      dlk_rnn_layer_w(a, ldi, &w);
      void *ys = (char *)store + lo.ys[l], *gates = a->training ? (char *)store + lo.gates[ldi] : NULL;
      void *cs = a->training && lstm ? (char *)store + lo.cs[ldi] : NULL;
      if (impl != 3) { /* gi = x W_ih^T + b_ih for every step at once */
        dlk_tensor gi = t2(ctx, dt, o.gi, T * B, GH, GH, 1);
        DLK_TRY(linear(ctx, &xin, &w.w_ih, w.has_b_ih ? &w.b_ih : NULL, &gi));
      }
      if (impl != 1) {
        dlk_k_rnn_persist_desc p = persist_desc(a, impl);
        if (impl == 3 && D * P > p.I) p.I = D * P;
        size_t need_ws = 0;
        if (!dlk_k_rnn_persist_plan(&p, &need_ws, why, sizeof why))
          return dlk_fail(ctx, DLK_ERR_INTERNAL, "rnn_fwd/%d: %s", impl, why);
        p.I = I;
        p.dir = (int)d;
        p.lens = lens;
        p.w_hh = kmat(&w.w_hh);
        p.w_ih = kmat(&w.w_ih);
        if (w.has_b_ih) p.b_ih = w.b_ih.data, p.b_ih_s = w.b_ih.strides[0];
        if (w.has_b_hh) p.b_hh = w.b_hh.data, p.b_hh_s = w.b_hh.strides[0];
        p.gi = o.gi;
        p.x = xin.data, p.xs0 = B * xin.strides[0], p.xs1 = xin.strides[0], p.xs2 = xin.strides[1];
        if (a->has_h0) {
          p.h0 = adv(a->h0.data, ldi * a->h0.strides[0], dt);
          p.h0s0 = a->h0.strides[1], p.h0s1 = a->h0.strides[2];
        }
        if (a->has_c0) {
          p.c0 = adv(a->c0.data, ldi * a->c0.strides[0], dt);
          p.c0s0 = a->c0.strides[1], p.c0s1 = a->c0.strides[2];
        }
        p.ys = ys, p.ys_w = W, p.ys_off = d * P;
        p.saved = gates, p.cs = cs;
        if (a->has_hn) {
          p.hn = adv(a->hn.data, ldi * a->hn.strides[0], dt);
          p.hns0 = a->hn.strides[1], p.hns1 = a->hn.strides[2];
        }
        if (a->has_cn) {
          p.cn = adv(a->cn.data, ldi * a->cn.strides[0], dt);
          p.cns0 = a->cn.strides[1], p.cns1 = a->cn.strides[2];
        }
        DLK_CUDA_TRY(ctx, dlk_k_rnn_persist(&p, impl, o.persist, ctx->stream));
        continue;
      }
      /* variant 1: per step a recurrent GEMM and the fused gate kernel */
      DLK_TRY(state_in(ctx, a->has_h0, &a->h0, ldi, B, P, dt, o.hcur));
      if (lstm) DLK_TRY(state_in(ctx, a->has_c0, &a->c0, ldi, B, H, DLK_F32, o.ccur));
      dlk_tensor hcur = t2(ctx, dt, o.hcur, B, P, P, 1), whh = rb ? rows_of(&w.w_hh, 0, 2 * H) : w.w_hh;
      dlk_tensor bhh = w.has_b_hh && rb ? rows_of(&w.b_hh, 0, 2 * H) : w.b_hh;
      dlk_tensor gh = t2(ctx, dt, o.gh, B, rb ? 2 * H : GH, rb ? 2 * H : GH, 1);
      for (int64_t s = 0; s < T; s++) {
        const int64_t t = d == 0 ? s : T - 1 - s;
        DLK_TRY(linear(ctx, &hcur, &whh, w.has_b_hh ? &bhh : NULL, &gh));
        dlk_k_rnn_step_fwd_desc k;
        memset(&k, 0, sizeof k);
        k.dtype = (int)dt, k.c_dtype = DLK_F32, k.c_out2_dtype = DLK_F32, k.mode = (int)a->mode;
        k.phase = rb ? 1 : 0;
        k.B = B, k.H = H, k.P = P, k.t = t, k.lens = lens;
        k.gi = dmat(adv(o.gi, t * B * GH, dt), GH);
        k.gh = dmat(o.gh, gh.shape[1]);
        k.h = dmat(o.hcur, P);
        k.c = lstm ? dmat(o.ccur, H) : dmat(NULL, 0);
        k.c_out = k.c;
        k.c_out2 = dmat(cs ? (char *)cs + (size_t)(t * B * H) * 4 : NULL, H);
        k.saved = dmat(gates ? adv(gates, t * B * lo.S, dt) : NULL, lo.S);
        k.y = dmat(proj ? NULL : adv(ys, t * B * W + d * P, dt), W);
        if (proj)
          k.hp_out = dmat(o.hp, H);
        else
          k.h_out = dmat(o.hcur, P);
        if (rb) k.rh = dmat(o.rh, H), k.rz = dmat(o.rz, 2 * H);
        DLK_CUDA_TRY(ctx, dlk_k_rnn_step_fwd(&k, 0, NULL, ctx->stream));
        if (rb) { /* hn = W_hn (r h) + b_hn, then n and h' */
          dlk_tensor rh = t2(ctx, dt, o.rh, B, H, H, 1), whn = rows_of(&w.w_hh, 2 * H, H);
          dlk_tensor bhn = w.has_b_hh ? rows_of(&w.b_hh, 2 * H, H) : w.b_hh, ghn = t2(ctx, dt, o.ghn, B, H, H, 1);
          DLK_TRY(linear(ctx, &rh, &whn, w.has_b_hh ? &bhn : NULL, &ghn));
          k.phase = 2;
          k.gh = dmat(o.ghn, H);
          DLK_CUDA_TRY(ctx, dlk_k_rnn_step_fwd(&k, 0, NULL, ctx->stream));
        }
        if (proj) { /* h' = W_hr hp, committed for the rows still inside their sequence */
          dlk_tensor hp = t2(ctx, dt, o.hp, B, H, H, 1), ht = t2(ctx, dt, o.htmp, B, P, P, 1);
          DLK_TRY(linear(ctx, &hp, &w.w_hr, NULL, &ht));
          dlk_k_rnn_commit_desc c = {(int)dt, B, P, t, lens, dmat(o.htmp, P), dmat(o.hcur, P),
                                     dmat(adv(ys, t * B * W + d * P, dt), W)};
          DLK_CUDA_TRY(ctx, dlk_k_rnn_commit(&c, 0, NULL, ctx->stream));
        }
      }
      if (a->has_hn) DLK_TRY(state_out(ctx, &a->hn, ldi, B, P, dt, o.hcur));
      if (a->has_cn) DLK_TRY(state_out(ctx, &a->cn, ldi, B, H, DLK_F32, o.ccur));
    }
  }
  /* y <- the last layer's output */
  dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, T, B, W, (char *)store + lo.ys[a->L - 1], B * W, W, 1,
                            a->y.data, a->y.strides[0], a->y.strides[1], a->y.strides[2], NULL, 0, 0};
  DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
  return run_done(ctx, "rnn_fwd", impl);
}

/* ====================================================================================== */
/* rnn_bwd 1: backward through time with GEMMs                                              */
/* ====================================================================================== */

typedef struct bwd_bufs {
  void *dg, *dgh, *hprev, *cprev, *dht, *hp, *rh, *dy, *dx, *dh, *dh2, *dc, *dhp, *drh, *lens, *xbuf;
} bwd_bufs;

static size_t bwd_layout(const dlk_rnn_bwd_args *ba, char *base, bwd_bufs *o) {
  const dlk_rnn_fwd_args *a = &ba->f;
  const size_t es = es_of(a->x.dtype);
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, W = a->D * P, GH = dlk_rnn_gates(a->mode) * H;
  const int64_t imax = a->I > W ? a->I : W;
  bump b = {base, 0};
  memset(o, 0, sizeof *o);
  o->dg = take(&b, (size_t)(T * B * GH) * es);
  if (a->mode == DLK_RNN_GRU) o->dgh = take(&b, (size_t)(T * B * GH) * es);
  o->hprev = take(&b, (size_t)(T * B * P) * es);
  if (a->mode == DLK_RNN_LSTM) o->cprev = take(&b, (size_t)(T * B * H) * 4);
  if (P != H) o->dht = take(&b, (size_t)(T * B * P) * es), o->hp = take(&b, (size_t)(T * B * H) * es);
  if (a->reset_before) o->rh = take(&b, (size_t)(T * B * H) * es), o->drh = take(&b, (size_t)(B * H) * es);
  o->dy = take(&b, (size_t)(T * B * W) * es);
  o->dx = take(&b, (size_t)(T * B * imax) * es);
  o->dh = take(&b, (size_t)(B * P) * 4);  /* the running gradient of h, f32 */
  o->dh2 = take(&b, (size_t)(B * P) * es); /* the recurrent GEMM's product of the last step */
  o->dc = take(&b, (size_t)(B * H) * 4);
  if (P != H) o->dhp = take(&b, (size_t)(B * H) * es);
  o->lens = take(&b, (size_t)B * 4);
  if (!x_time_major(a)) o->xbuf = take(&b, (size_t)(T * B * a->I) * es);
  return b.used;
}

bool dlk_rnn_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_rnn_bwd_args *a = args;
  if (a->format != DLK_RNN_FORMAT_DLK) {
    snprintf(why, n, "the reserve was written by another variant's forward (format %d)", a->format);
    return false;
  }
  bwd_bufs o;
  return gpu_dtype(a->f.x.dtype, why, n) && scratch_fits(ctx, bwd_layout(a, NULL, &o), why, n);
}

dlk_status dlk_rnn_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_rnn_bwd_args *ba = args;
  const dlk_rnn_fwd_args *a = &ba->f;
  DLK_TRY(dlk_cuda_enter(ctx));
  const dlk_dtype dt = a->x.dtype;
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, D = a->D, W = D * P, GH = dlk_rnn_gates(a->mode) * H;
  const bool lstm = a->mode == DLK_RNN_LSTM, gru = a->mode == DLK_RNN_GRU, rb = a->reset_before, proj = P != H;
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  bwd_bufs o;
  void *base = NULL;
  DLK_TRY(dlk_scratch_reserve(ctx, bwd_layout(ba, NULL, &o), &base));
  bwd_layout(ba, base, &o);
  DLK_TRY(upload_lens(ctx, a, o.lens));
  const int32_t *lens = a->has_lengths ? (const int32_t *)o.lens : NULL;
  void *store = (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER;
  if (o.xbuf) DLK_TRY(copy_x(ctx, a, o.xbuf));
  const int64_t hrows = rb ? 2 * H : GH;

  for (int64_t l = a->L - 1; l >= 0; l--) {
    dlk_tensor xin = layer_input(ctx, a, &lo, store, o.xbuf, l);
    const int64_t I = xin.shape[1];
    dlk_tensor dX = t2(ctx, dt, o.dx, T * B, I, I, 1);
    /* this layer's output gradient: the caller's dy on top, else the buffer */
    const bool top = l == a->L - 1;
    for (int64_t d = 0; d < D; d++) {
      const int64_t ldi = l * D + d;
      dlk_rnn_w w;
      dlk_rnn_layer_w(a, ldi, &w);
      dlk_rnn_gw g;
      dlk_rnn_gw_from(ba->dweights ? &ba->dweights[ldi] : NULL, &g);
      void *gates = (char *)store + lo.gates[ldi], *ys = (char *)store + lo.ys[l];
      /* the states each step started from */
      dlk_k_rnn_prev_desc pv = {(int)dt, (int)dt, (int)dt, (int)d, T, B, P, lens, adv(ys, d * P, dt), B * W, W, 1,
                                a->has_h0 ? adv(a->h0.data, ldi * a->h0.strides[0], dt) : NULL,
                                a->h0.strides[1], a->h0.strides[2], o.hprev};
      DLK_CUDA_TRY(ctx, dlk_k_rnn_prev(&pv, 0, NULL, ctx->stream));
      if (lstm) {
        dlk_k_rnn_prev_desc pc = {DLK_F32, DLK_F32, (int)dt, (int)d, T, B, H, lens, (char *)store + lo.cs[ldi], B * H, H,
                                  1, a->has_c0 ? adv(a->c0.data, ldi * a->c0.strides[0], dt) : NULL,
                                  a->c0.strides[1], a->c0.strides[2], o.cprev};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_prev(&pc, 0, NULL, ctx->stream));
      }
      DLK_TRY(state_in(ctx, ba->has_dhn, &ba->dhn, ldi, B, P, DLK_F32, o.dh));
      DLK_TRY(state_in(ctx, false, NULL, ldi, B, P, dt, o.dh2));
      if (lstm) DLK_TRY(state_in(ctx, ba->has_dcn, &ba->dcn, ldi, B, H, DLK_F32, o.dc));
      dlk_tensor dh2 = t2(ctx, dt, o.dh2, B, P, P, 1), whh = rows_of(&w.w_hh, 0, hrows);
      for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t t = d == 0 ? s : T - 1 - s;
        dlk_k_rnn_mat dy_t = {NULL, 0, 0};
        if (top && ba->has_dy)
          dy_t = (dlk_k_rnn_mat){adv(ba->dy.data, t * ba->dy.strides[0] + d * P * ba->dy.strides[2], dt),
                                 ba->dy.strides[1], ba->dy.strides[2]};
        else if (!top)
          dy_t = dmat(adv(o.dy, t * B * W + d * P, dt), W);
        dlk_k_rnn_step_bwd_desc k;
        memset(&k, 0, sizeof k);
        k.dtype = (int)dt, k.c_dtype = DLK_F32, k.dc_dtype = DLK_F32, k.dh_dtype = DLK_F32, k.mode = (int)a->mode;
        k.B = B, k.H = H, k.P = P, k.t = t, k.lens = lens;
        k.dh = dmat(o.dh, P), k.dh2 = dmat(o.dh2, P);
        k.saved = dmat(adv(gates, t * B * lo.S, dt), lo.S);
        k.h = dmat(adv(o.hprev, t * B * P, dt), P);
        k.c = lstm ? dmat((char *)o.cprev + (size_t)(t * B * H) * 4, H) : dmat(NULL, 0);
        k.dc = k.dc_out = lstm ? dmat(o.dc, H) : dmat(NULL, 0);
        k.dgi = dmat(adv(o.dg, t * B * GH, dt), GH);
        k.dgh = gru ? dmat(adv(o.dgh, t * B * GH, dt), GH) : dmat(NULL, 0);
        k.dh_direct = dmat(o.dh, P);
        if (proj) { /* dh_tot, then dhp = dh_tot W_hr, then the cell */
          void *dht = adv(o.dht, t * B * P, dt);
          k.phase = 3;
          k.dy = dy_t, k.dht_out = dmat(dht, P);
          DLK_CUDA_TRY(ctx, dlk_k_rnn_step_bwd(&k, 0, NULL, ctx->stream));
          dlk_tensor dhtt = t2(ctx, dt, dht, B, P, P, 1), dhp = t2(ctx, dt, o.dhp, B, H, H, 1);
          DLK_TRY(gemm(ctx, &dhtt, &w.w_hr, &dhp, 0.0));
          k.phase = 0;
          k.dy = dmat(NULL, 0), k.dhp = dmat(o.dhp, H);
          k.hp_out = dmat(adv(o.hp, t * B * H, dt), H);
        } else {
          k.phase = rb ? 1 : 0;
          k.dy = dy_t;
        }
        DLK_CUDA_TRY(ctx, dlk_k_rnn_step_bwd(&k, 0, NULL, ctx->stream));
        if (rb) {
          dlk_tensor dan = t2(ctx, dt, adv(o.dg, t * B * GH + 2 * H, dt), B, H, GH, 1), whn = rows_of(&w.w_hh, 2 * H, H);
          dlk_tensor drh = t2(ctx, dt, o.drh, B, H, H, 1);
          DLK_TRY(gemm(ctx, &dan, &whn, &drh, 0.0));
          k.phase = 2;
          k.drh = dmat(o.drh, H);
          k.rh_out = dmat(adv(o.rh, t * B * H, dt), H);
          DLK_CUDA_TRY(ctx, dlk_k_rnn_step_bwd(&k, 0, NULL, ctx->stream));
        }
        /* the previous step's dh: dh (f32, the pointwise part) + dh2 = dgh W_hh */
        dlk_tensor dg = t2(ctx, dt, adv(gru ? o.dgh : o.dg, t * B * GH, dt), B, hrows, GH, 1);
        DLK_TRY(gemm(ctx, &dg, &whh, &dh2, 0.0));
      }
      if (ba->has_dh0) {
        dlk_k_rnn_copy3_desc c = {(int)dt, DLK_F32, 1, B, P, o.dh2, 0, P, 1, o.dh, 0, P, 1, NULL, 0, 1};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
        DLK_TRY(state_out(ctx, &ba->dh0, ldi, B, P, DLK_F32, o.dh));
      }
      if (ba->has_dc0) DLK_TRY(state_out(ctx, &ba->dc0, ldi, B, H, DLK_F32, o.dc));
      /* the layer-wide GEMMs */
      dlk_tensor dG = t2(ctx, dt, o.dg, T * B, GH, GH, 1), dGh = gru ? t2(ctx, dt, o.dgh, T * B, GH, GH, 1) : dG;
      DLK_TRY(gemm(ctx, &dG, &w.w_ih, &dX, d == 0 ? 0.0 : 1.0));
      if (g.has_w_ih) {
        dlk_tensor gt = transposed(dG);
        DLK_TRY(gemm(ctx, &gt, &xin, &g.w_ih, 1.0));
      }
      if (g.has_w_hh) {
        dlk_tensor gt = transposed(t2(ctx, dt, dGh.data, T * B, hrows, GH, 1)), hp = t2(ctx, dt, o.hprev, T * B, P, P, 1);
        dlk_tensor dw = rows_of(&g.w_hh, 0, hrows);
        DLK_TRY(gemm(ctx, &gt, &hp, &dw, 1.0));
        if (rb) {
          dlk_tensor gn = transposed(t2(ctx, dt, adv(dGh.data, 2 * H, dt), T * B, H, GH, 1));
          dlk_tensor rh = t2(ctx, dt, o.rh, T * B, H, H, 1), dwn = rows_of(&g.w_hh, 2 * H, H);
          DLK_TRY(gemm(ctx, &gn, &rh, &dwn, 1.0));
        }
      }
      dlk_k_rnn_colsum_desc cs = {(int)dt, T * B, GH, o.dg, GH, NULL, 0};
      if (g.has_b_ih) {
        cs.dst = g.b_ih.data, cs.dst_s = g.b_ih.strides[0];
        DLK_CUDA_TRY(ctx, dlk_k_rnn_colsum(&cs, 0, NULL, ctx->stream));
      }
      if (g.has_b_hh) {
        cs.src = dGh.data;
        cs.dst = g.b_hh.data, cs.dst_s = g.b_hh.strides[0];
        DLK_CUDA_TRY(ctx, dlk_k_rnn_colsum(&cs, 0, NULL, ctx->stream));
      }
      if (g.has_w_hr) {
        dlk_tensor gt = transposed(t2(ctx, dt, o.dht, T * B, P, P, 1)), hp = t2(ctx, dt, o.hp, T * B, H, H, 1);
        DLK_TRY(gemm(ctx, &gt, &hp, &g.w_hr, 1.0));
      }
    }
    if (l == 0) {
      if (ba->has_dx) {
        dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, T, B, I, o.dx, B * I, I, 1, ba->dx.data, ba->dx.strides[0],
                                  ba->dx.strides[1], ba->dx.strides[2], lens, 1, 0};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
      }
    } else if (a->has_dropout) {
      DLK_TRY(dropout_layer(ctx, a, o.dx, o.dy, l));
    } else {
      dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, T, B, W, o.dx, B * W, W, 1, o.dy, B * W, W, 1, NULL, 0, 0};
      DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
    }
  }
  return run_done(ctx, "rnn_bwd", 1);
}

#endif /* DLK_HAVE_CUDA */
