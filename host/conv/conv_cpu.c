/*
 * conv family, variant 0 of every op: the CPU reference. It is the spec the GPU variants
 * are tested against, so it is written for clarity, not speed: one loop nest per formula
 * of host/conv/conv.h, every element addressed through its tensor's own strides (so any
 * layout, channels-last included, is just a stride pattern), every float dtype read as
 * double through dlk_load, sums in double, each result rounded once to the output dtype.
 *
 * host/conv/conv.c has already checked every argument and normalised the geometry; these
 * functions cannot fail.
 */
#include <math.h>
#include <string.h>

#include "../core/half.h"
#include "conv.h"

static inline double ld(const dlk_tensor *t, int64_t off) { return dlk_load(t->data, t->dtype, off); }
static inline void st(const dlk_tensor *t, int64_t off, double v) { dlk_store(t->data, t->dtype, off, v); }

/* ---- conv2d_fwd ---------------------------------------------------------------------- */

/* z[n,k,oh,ow] = b[k] + sum_{c < Cg, r, s} x[n, grp*Cg + c, ih, iw] w[k, c, r, s] with
   ih = oh*sh - ph + r*dh, iw = ow*sw - pw + s*dw (taps outside the input are zero
   padding); y = act(z). z is stored from the unrounded sum, y = act of it. */
dlk_status dlk_conv2d_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_conv2d_fwd_args *a = args;
  const dlk_conv2d_geom *g = &a->g;
  const int64_t cg = g->c / g->groups, kg = g->k / g->groups;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t k = 0; k < g->k; k++) {
      const int64_t c0 = (k / kg) * cg; /* first input channel of k's group */
      const double bias = a->has_b ? ld(&a->b, k * a->b.strides[0]) : 0.0;
      for (int64_t oh = 0; oh < g->ho; oh++)
        for (int64_t ow = 0; ow < g->wo; ow++) {
          double acc = 0.0;
          for (int64_t c = 0; c < cg; c++)
            for (int64_t r = 0; r < g->r; r++) {
              const int64_t ih = oh * g->stride[0] - g->pad[0] + r * g->dil[0];
              if (ih < 0 || ih >= g->h) continue;
              for (int64_t s = 0; s < g->s; s++) {
                const int64_t iw = ow * g->stride[1] - g->pad[1] + s * g->dil[1];
                if (iw < 0 || iw >= g->w) continue;
                acc += ld(&a->x, dlk_at4(&a->x, n, c0 + c, ih, iw)) * ld(&a->w, dlk_at4(&a->w, k, c, r, s));
              }
            }
          const double z = acc + bias;
          if (a->has_z) st(&a->z, dlk_at4(&a->z, n, k, oh, ow), z);
          st(&a->y, dlk_at4(&a->y, n, k, oh, ow), dlk_conv_act(a->act, z));
        }
    }
  return DLK_OK;
}

/* ---- conv2d_bwd_data ----------------------------------------------------------------- */

/* Input position h is reached from output row oh by tap r when h = oh*sh - ph + r*dh,
   i.e. oh = (h + ph - r*dh) / sh when that divides exactly and lies in [0, Ho). */
static int64_t out_index(int64_t in, int64_t pad, int64_t tap, int64_t dil, int64_t stride, int64_t out_size) {
  const int64_t t = in + pad - tap * dil;
  if (t < 0 || t % stride != 0) return -1;
  const int64_t o = t / stride;
  return o < out_size ? o : -1;
}

/* dx[n, grp*Cg + c, h, w] = sum_{k in grp, r, s} dy[n, k, oh(h, r), ow(w, s)] w[k, c, r, s]
   over the taps whose output position exists (the gather form of the transposed
   convolution: each dx element is written once). */
dlk_status dlk_conv2d_bwd_data_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                   size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_conv2d_bwd_data_args *a = args;
  const dlk_conv2d_geom *g = &a->g;
  const int64_t cg = g->c / g->groups, kg = g->k / g->groups;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t ci = 0; ci < g->c; ci++) {
      const int64_t grp = ci / cg, c = ci % cg;
      for (int64_t h = 0; h < g->h; h++)
        for (int64_t w = 0; w < g->w; w++) {
          double acc = 0.0;
          /* no output channel (K = 0): no tap contributes, and an empty w's R x S may be huge */
          for (int64_t r = 0; kg > 0 && r < g->r; r++) {
            const int64_t oh = out_index(h, g->pad[0], r, g->dil[0], g->stride[0], g->ho);
            if (oh < 0) continue;
            for (int64_t s = 0; s < g->s; s++) {
              const int64_t ow = out_index(w, g->pad[1], s, g->dil[1], g->stride[1], g->wo);
              if (ow < 0) continue;
              for (int64_t k = grp * kg; k < (grp + 1) * kg; k++)
                acc += ld(&a->dy, dlk_at4(&a->dy, n, k, oh, ow)) * ld(&a->w, dlk_at4(&a->w, k, c, r, s));
            }
          }
          st(&a->dx, dlk_at4(&a->dx, n, ci, h, w), acc);
        }
    }
  return DLK_OK;
}

/* ---- conv2d_bwd_filter --------------------------------------------------------------- */

/* dw[k, c, r, s] = sum_{n, oh, ow} dy[n, k, oh, ow] x[n, grp*Cg + c, ih, iw] over in-range
   ih = oh*sh - ph + r*dh, iw = ow*sw - pw + s*dw. */
dlk_status dlk_conv2d_bwd_filter_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_conv2d_bwd_filter_args *a = args;
  const dlk_conv2d_geom *g = &a->g;
  const int64_t cg = g->c / g->groups, kg = g->k / g->groups;
  for (int64_t k = 0; k < g->k; k++) {
    const int64_t c0 = (k / kg) * cg;
    for (int64_t c = 0; c < cg; c++)
      for (int64_t r = 0; r < g->r; r++)
        for (int64_t s = 0; s < g->s; s++) {
          double acc = 0.0;
          for (int64_t n = 0; n < g->n; n++)
            for (int64_t oh = 0; oh < g->ho; oh++) {
              const int64_t ih = oh * g->stride[0] - g->pad[0] + r * g->dil[0];
              if (ih < 0 || ih >= g->h) continue;
              for (int64_t ow = 0; ow < g->wo; ow++) {
                const int64_t iw = ow * g->stride[1] - g->pad[1] + s * g->dil[1];
                if (iw < 0 || iw >= g->w) continue;
                acc += ld(&a->dy, dlk_at4(&a->dy, n, k, oh, ow)) * ld(&a->x, dlk_at4(&a->x, n, c0 + c, ih, iw));
              }
            }
          st(&a->dw, dlk_at4(&a->dw, k, c, r, s), acc);
        }
  }
  return DLK_OK;
}

/* ---- conv2d_bwd_bias ----------------------------------------------------------------- */

/* dz = dy * act'(z); db[k] = sum_{n, oh, ow} dz[n, k, oh, ow] (of the unrounded dz). */
dlk_status dlk_conv2d_bwd_bias_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                   size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_conv2d_bwd_bias_args *a = args;
  const dlk_tensor *dy = &a->dy;
  for (int64_t k = 0; k < dy->shape[1]; k++) {
    double sum = 0.0;
    for (int64_t n = 0; n < dy->shape[0]; n++)
      for (int64_t h = 0; h < dy->shape[2]; h++)
        for (int64_t w = 0; w < dy->shape[3]; w++) {
          double d = ld(dy, dlk_at4(dy, n, k, h, w));
          if (a->act != DLK_ACT_NONE) d *= dlk_conv_act_grad(a->act, ld(&a->z, dlk_at4(&a->z, n, k, h, w)));
          if (a->has_dz) st(&a->dz, dlk_at4(&a->dz, n, k, h, w), d);
          sum += d;
        }
    if (a->has_db) st(&a->db, k * a->db.strides[0], sum);
  }
  return DLK_OK;
}

/* ---- Gram matrix --------------------------------------------------------------------- */

/* g[n, i, j] = scale sum_{h, w} f[n, i, h, w] f[n, j, h, w]. */
dlk_status dlk_gram_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_gram_fwd_args *a = args;
  const dlk_tensor *f = &a->f;
  /* maps without pixels (H or W 0, the other possibly huge): g = 0 without looping */
  const int64_t H = f->shape[3] > 0 ? f->shape[2] : 0;
  for (int64_t n = 0; n < f->shape[0]; n++)
    for (int64_t i = 0; i < f->shape[1]; i++)
      for (int64_t j = 0; j < f->shape[1]; j++) {
        double acc = 0.0;
        for (int64_t h = 0; h < H; h++)
          for (int64_t w = 0; w < f->shape[3]; w++)
            acc += ld(f, dlk_at4(f, n, i, h, w)) * ld(f, dlk_at4(f, n, j, h, w));
        st(&a->g, n * a->g.strides[0] + i * a->g.strides[1] + j * a->g.strides[2], a->scale * acc);
      }
  return DLK_OK;
}

/* df[n, i, h, w] = scale sum_j (dg[n, i, j] + dg[n, j, i]) f[n, j, h, w]: the gradient of
   g = scale F F^T for any dg, symmetric or not. */
dlk_status dlk_gram_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_gram_bwd_args *a = args;
  const dlk_tensor *f = &a->f, *dg = &a->dg;
  for (int64_t n = 0; n < f->shape[0]; n++)
    for (int64_t i = 0; i < f->shape[1]; i++)
      for (int64_t h = 0; h < f->shape[2]; h++)
        for (int64_t w = 0; w < f->shape[3]; w++) {
          double acc = 0.0;
          for (int64_t j = 0; j < f->shape[1]; j++) {
            const double sym = ld(dg, n * dg->strides[0] + i * dg->strides[1] + j * dg->strides[2]) +
                               ld(dg, n * dg->strides[0] + j * dg->strides[1] + i * dg->strides[2]);
            acc += sym * ld(f, dlk_at4(f, n, j, h, w));
          }
          st(&a->df, dlk_at4(&a->df, n, i, h, w), a->scale * acc);
        }
  return DLK_OK;
}

/* ====================================================================================== */
/* Pooling, adaptive average pooling, batch norm, MSE loss                                 */
/* ====================================================================================== */

/* Offset of [c] of a per-channel vector. */
static inline int64_t at1(const dlk_tensor *t, int64_t c) { return c * t->strides[0]; }

/* ---- pool2d -------------------------------------------------------------------------- */

/* The window of output (oh, ow) clipped to the input, and its average-pool divisor:
   rows [h0, h1) step dil_h, cols alike. As torch: hend = min(hstart + k, H + pad) before
   clipping gives the count_include_pad divisor, the clipped window the other one. */
typedef struct {
  int64_t h0, h1, w0, w1;
  double divisor;
} pool_window;

static pool_window window_of(const dlk_pool2d_params *p, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  pool_window win;
  const int64_t hs = oh * p->stride[0] - p->padding[0], ws = ow * p->stride[1] - p->padding[1];
  if (p->kind == DLK_POOL_MAX) {
    /* max: the dilated window; rows hs + i dil for i < k, those inside [0, H) */
    const int64_t dh = p->dilation[0], dw = p->dilation[1];
    const int64_t h1 = hs + (p->kernel[0] - 1) * dh + 1, w1 = ws + (p->kernel[1] - 1) * dw + 1;
    /* first in-bounds row (column) of the dilated window: hs + ceil(-hs / dh) dh when hs < 0
       (computed, not stepped to: the padding may be 2^30) */
    win.h0 = hs < 0 ? hs + (-hs + dh - 1) / dh * dh : hs;
    win.w0 = ws < 0 ? ws + (-ws + dw - 1) / dw * dw : ws;
    win.h1 = h1 < H ? h1 : H, win.w1 = w1 < W ? w1 : W;
    win.divisor = 1.0;
    return win;
  }
  int64_t he = hs + p->kernel[0], we = ws + p->kernel[1];
  if (he > H + p->padding[0]) he = H + p->padding[0];
  if (we > W + p->padding[1]) we = W + p->padding[1];
  const double padded = (double)((he - hs) * (we - ws));
  win.h0 = hs > 0 ? hs : 0, win.w0 = ws > 0 ? ws : 0;
  win.h1 = he < H ? he : H, win.w1 = we < W ? we : W;
  win.divisor = p->count_include_pad ? padded : (double)((win.h1 - win.h0) * (win.w1 - win.w0));
  return win;
}

/* Max of a window in row-major window order, as PyTorch's CPU kernel: the first in-bounds
   element starts as the argmax with -inf as the max; a later element replaces it when it
   is larger or NaN. Returns the max, the argmax in *ah, *aw; *ah = -1 when the window
   holds no element of the input (a dilated window can fall between the rows: then the
   max is -inf and the gradient goes nowhere). */
static double window_max(const dlk_tensor *x, const dlk_pool2d_params *p, int64_t n, int64_t c,
                         const pool_window *win, int64_t *ah, int64_t *aw) {
  double m = -INFINITY;
  *ah = win->h0, *aw = win->w0;
  if (win->h0 >= win->h1 || win->w0 >= win->w1) *ah = -1;
  for (int64_t h = win->h0; h < win->h1; h += p->dilation[0])
    for (int64_t w = win->w0; w < win->w1; w += p->dilation[1]) {
      double v = ld(x, dlk_at4(x, n, c, h, w));
      if (v > m || isnan(v)) m = v, *ah = h, *aw = w;
    }
  return m;
}

dlk_status dlk_pool2d_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_pool2d_fwd_args *a = args;
  const dlk_tensor *x = &a->x, *y = &a->y;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t oh = 0; oh < y->shape[2]; oh++)
        for (int64_t ow = 0; ow < y->shape[3]; ow++) {
          pool_window win = window_of(&a->p, H, W, oh, ow);
          double v;
          if (a->p.kind == DLK_POOL_MAX) {
            int64_t ah, aw;
            v = window_max(x, &a->p, n, c, &win, &ah, &aw);
          } else {
            /* avg: sum of the in-bounds elements / divisor */
            double s = 0.0;
            for (int64_t h = win.h0; h < win.h1; h++)
              for (int64_t w = win.w0; w < win.w1; w++) s += ld(x, dlk_at4(x, n, c, h, w));
            v = s / win.divisor;
          }
          st(y, dlk_at4(y, n, c, oh, ow), v);
        }
  return DLK_OK;
}

dlk_status dlk_pool2d_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_pool2d_bwd_args *a = args;
  const dlk_tensor *x = &a->x, *dy = &a->dy, *dx = &a->dx;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t OH = dy->shape[2], OW = dy->shape[3];
  /* Accumulate each plane of dx in f64 (the workspace: H W doubles), then round once:
     dx[h, w] = sum over windows o that route to (h, w) of dy[o] (max: o's argmax is (h, w);
     avg: (h, w) in o's window, dy[o] / divisor). */
  double *acc = ws;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      memset(acc, 0, (size_t)(H * W) * sizeof *acc);
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          pool_window win = window_of(&a->p, H, W, oh, ow);
          double g = ld(dy, dlk_at4(dy, n, c, oh, ow));
          if (a->p.kind == DLK_POOL_MAX) {
            int64_t ah, aw;
            window_max(x, &a->p, n, c, &win, &ah, &aw);
            if (ah >= 0) acc[ah * W + aw] += g;
          } else {
            for (int64_t h = win.h0; h < win.h1; h++)
              for (int64_t w = win.w0; w < win.w1; w++) acc[h * W + w] += g / win.divisor;
          }
        }
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) st(dx, dlk_at4(dx, n, c, h, w), acc[h * W + w]);
    }
  return DLK_OK;
}

/* Workspace of the pool backward: one f64 plane. */
size_t dlk_pool2d_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_pool2d_bwd_args *a = args;
  return (size_t)(a->x.shape[2] * a->x.shape[3]) * sizeof(double);
}

/* ---- adaptive average pool2d ----------------------------------------------------- */

dlk_status dlk_adaptive_pool2d_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                           size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_adaptive_pool2d_args *a = args;
  const dlk_tensor *x = &a->in, *y = &a->out;
  const int64_t H = x->shape[2], W = x->shape[3], OH = y->shape[2], OW = y->shape[3];
  /* y[oh, ow] = mean of x over rows [start(oh), end(oh)) and cols [start(ow), end(ow)) */
  for (int64_t n = 0; n < x->shape[0]; n++)
    for (int64_t c = 0; c < x->shape[1]; c++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          int64_t h0 = dlk_adaptive_start(oh, H, OH), h1 = dlk_adaptive_end(oh, H, OH);
          int64_t w0 = dlk_adaptive_start(ow, W, OW), w1 = dlk_adaptive_end(ow, W, OW);
          double s = 0.0;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) s += ld(x, dlk_at4(x, n, c, h, w));
          st(y, dlk_at4(y, n, c, oh, ow), s / (double)((h1 - h0) * (w1 - w0)));
        }
  return DLK_OK;
}

dlk_status dlk_adaptive_pool2d_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                           size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_adaptive_pool2d_args *a = args;
  const dlk_tensor *dx = &a->in, *dy = &a->out;
  const int64_t H = dx->shape[2], W = dx->shape[3], OH = dy->shape[2], OW = dy->shape[3];
  /* dx[h, w] = sum over bins (oh, ow) holding (h, w) of dy[oh, ow] / area(oh, ow); the bins
     holding row h are among oh in [start(h; OH over H), end(h; OH over H)) (the same
     formulas with the roles swapped), each tested. */
  for (int64_t n = 0; n < dx->shape[0]; n++)
    for (int64_t c = 0; c < dx->shape[1]; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) {
          double s = 0.0;
          for (int64_t oh = dlk_adaptive_start(h, OH, H); oh < dlk_adaptive_end(h, OH, H); oh++) {
            int64_t h0 = dlk_adaptive_start(oh, H, OH), h1 = dlk_adaptive_end(oh, H, OH);
            if (h < h0 || h >= h1) continue;
            for (int64_t ow = dlk_adaptive_start(w, OW, W); ow < dlk_adaptive_end(w, OW, W); ow++) {
              int64_t w0 = dlk_adaptive_start(ow, W, OW), w1 = dlk_adaptive_end(ow, W, OW);
              if (w < w0 || w >= w1) continue;
              s += ld(dy, dlk_at4(dy, n, c, oh, ow)) / (double)((h1 - h0) * (w1 - w0));
            }
          }
          st(dx, dlk_at4(dx, n, c, h, w), s);
        }
  return DLK_OK;
}

/* ---- batch norm ------------------------------------------------------------------ */

/* Two-pass mean and biased variance of channel c over N, H, W. */
static void channel_stats(const dlk_tensor *x, int64_t c, double *mean, double *var) {
  const int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
  const double m = (double)(N * H * W);
  double s = 0.0, q = 0.0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) s += ld(x, dlk_at4(x, n, c, h, w));
  *mean = s / m;
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) {
        double d = ld(x, dlk_at4(x, n, c, h, w)) - *mean;
        q += d * d;
      }
  *var = q / m;
}

dlk_status dlk_batchnorm_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_batchnorm_fwd_args *a = args;
  const dlk_tensor *x = &a->x, *y = &a->y;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], M = N * H * W;
  if (a->training && M == 0) return DLK_OK; /* no values: nothing to normalise or learn */
  for (int64_t c = 0; c < C; c++) {
    double mean, rstd;
    if (a->training) {
      /* batch statistics; running = (1 - m) running + m batch with the unbiased variance */
      double var;
      channel_stats(x, c, &mean, &var);
      rstd = 1.0 / sqrt(var + a->eps);
      if (a->has_running) {
        const double mom = a->momentum, unbiased = var * (double)M / (double)(M - 1);
        double rm = ld(&a->running_mean, at1(&a->running_mean, c));
        double rv = ld(&a->running_var, at1(&a->running_var, c));
        st(&a->running_mean, at1(&a->running_mean, c), (1.0 - mom) * rm + mom * mean);
        st(&a->running_var, at1(&a->running_var, c), (1.0 - mom) * rv + mom * unbiased);
      }
      st(&a->save_mean, at1(&a->save_mean, c), mean);
      st(&a->save_rstd, at1(&a->save_rstd, c), rstd);
    } else {
      mean = ld(&a->running_mean, at1(&a->running_mean, c));
      rstd = 1.0 / sqrt(ld(&a->running_var, at1(&a->running_var, c)) + a->eps);
    }
    /* y = (x - mean) rstd gamma + beta */
    const double g = a->has_gamma ? ld(&a->gamma, at1(&a->gamma, c)) : 1.0;
    const double b = a->has_beta ? ld(&a->beta, at1(&a->beta, c)) : 0.0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++)
          st(y, dlk_at4(y, n, c, h, w), (ld(x, dlk_at4(x, n, c, h, w)) - mean) * rstd * g + b);
  }
  return DLK_OK;
}

dlk_status dlk_batchnorm_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_batchnorm_bwd_args *a = args;
  const dlk_tensor *x = &a->x, *dy = &a->dy;
  const int64_t H = x->shape[2], W = x->shape[3], C = x->shape[1];
  /* an empty batch (M = 0, its other dims possibly huge): the sums are 0, no loop runs */
  const int64_t N = H > 0 && W > 0 ? x->shape[0] : 0;
  const double M = (double)(N * H * W);
  for (int64_t c = 0; c < C; c++) {
    const double mean = ld(&a->mean, at1(&a->mean, c));
    const double stat = ld(&a->stat, at1(&a->stat, c));
    const double rstd = a->training ? stat : 1.0 / sqrt(stat + a->eps);
    const double g = a->has_gamma ? ld(&a->gamma, at1(&a->gamma, c)) : 1.0;
    /* sums over N, H, W: dbeta = sum dy, dgamma = sum dy xhat, xhat = (x - mean) rstd */
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) {
          double d = ld(dy, dlk_at4(dy, n, c, h, w));
          sdy += d;
          sdyx += d * (ld(x, dlk_at4(x, n, c, h, w)) - mean) * rstd;
        }
    if (a->has_dgamma) st(&a->dgamma, at1(&a->dgamma, c), sdyx);
    if (a->has_dbeta) st(&a->dbeta, at1(&a->dbeta, c), sdy);
    if (!a->has_dx) continue;
    /* training: dx = g rstd (dy - sum dy / M - xhat sum(dy xhat) / M), as the batch
       statistics depend on x; inference: dx = g rstd dy (the statistics are constants) */
    for (int64_t n = 0; n < N; n++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) {
          double d = ld(dy, dlk_at4(dy, n, c, h, w));
          double v = d;
          if (a->training) {
            double xhat = (ld(x, dlk_at4(x, n, c, h, w)) - mean) * rstd;
            v = d - sdy / M - xhat * sdyx / M;
          }
          st(&a->dx, dlk_at4(&a->dx, n, c, h, w), g * rstd * v);
        }
  }
  return DLK_OK;
}

/* ---- MSE loss -------------------------------------------------------------------- */

dlk_status dlk_mse_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_mse_fwd_args *a = args;
  const int64_t n = dlk_tensor_numel(&a->x);
  /* l_i = (x_i - t_i)^2 over the row-major index i; MEAN sum / n (0 / 0 = NaN when
     empty, as torch), SUM sum, NONE l */
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = ld(&a->x, dlk_offset_of(&a->x, i)) - ld(&a->target, dlk_offset_of(&a->target, i));
    if (a->reduction == DLK_REDUCE_NONE)
      st(&a->loss, dlk_offset_of(&a->loss, i), d * d);
    else
      sum += d * d;
  }
  if (a->reduction == DLK_REDUCE_MEAN) st(&a->loss, 0, sum / (double)n);
  if (a->reduction == DLK_REDUCE_SUM) st(&a->loss, 0, sum);
  return DLK_OK;
}

dlk_status dlk_mse_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_mse_bwd_args *a = args;
  const int64_t n = dlk_tensor_numel(&a->x);
  /* dx_i = 2 (x_i - t_i) scale_i; scale_i = dloss_i (NONE), dloss (SUM), dloss / n (MEAN) */
  const double s = a->reduction == DLK_REDUCE_NONE ? 0.0
                   : a->reduction == DLK_REDUCE_SUM ? ld(&a->dloss, 0)
                                                    : ld(&a->dloss, 0) / (double)n;
  for (int64_t i = 0; i < n; i++) {
    double d = ld(&a->x, dlk_offset_of(&a->x, i)) - ld(&a->target, dlk_offset_of(&a->target, i));
    double scale = a->reduction == DLK_REDUCE_NONE ? ld(&a->dloss, dlk_offset_of(&a->dloss, i)) : s;
    st(&a->dx, dlk_offset_of(&a->dx, i), 2.0 * d * scale);
  }
  return DLK_OK;
}
