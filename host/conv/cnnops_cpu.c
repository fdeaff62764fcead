/*
 * conv family, part 2, variant 0 of every op: the CPU reference. This is the spec the GPU
 * variants are tested against, so it is written for clarity, not speed: short loops over
 * element offsets (any strides), every float dtype read as double through dlk_load, all
 * math in double, each result rounded once to the output dtype by dlk_store.
 *
 * host/conv/cnnops.c has already checked every argument and normalised the tensors (see
 * the records in host/conv/cnnops.h).
 */
#include <math.h>
#include <string.h>

#include "../half.h"
#include "cnnops.h"

static inline double ld(const dlk_tensor *t, int64_t off) { return dlk_load(t->data, t->dtype, off); }
static inline void st(const dlk_tensor *t, int64_t off, double v) { dlk_store(t->data, t->dtype, off, v); }
/* Offset of [n, c, h, w] of a 4-D view, and of [c] of a 1-D one. */
static inline int64_t at4(const dlk_tensor *t, int64_t n, int64_t c, int64_t h, int64_t w) {
  return n * t->strides[0] + c * t->strides[1] + h * t->strides[2] + w * t->strides[3];
}
static inline int64_t at1(const dlk_tensor *t, int64_t c) { return c * t->strides[0]; }

/* ====================================================================================== */
/* pool2d                                                                                  */
/* ====================================================================================== */

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
    int64_t h0 = hs, w0 = ws, h1 = hs + (p->kernel[0] - 1) * dh + 1, w1 = ws + (p->kernel[1] - 1) * dw + 1;
    while (h0 < 0) h0 += dh; /* first in-bounds row of the dilated window */
    while (w0 < 0) w0 += dw;
    win.h0 = h0, win.w0 = w0;
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
      double v = ld(x, at4(x, n, c, h, w));
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
              for (int64_t w = win.w0; w < win.w1; w++) s += ld(x, at4(x, n, c, h, w));
            v = s / win.divisor;
          }
          st(y, at4(y, n, c, oh, ow), v);
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
          double g = ld(dy, at4(dy, n, c, oh, ow));
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
        for (int64_t w = 0; w < W; w++) st(dx, at4(dx, n, c, h, w), acc[h * W + w]);
    }
  return DLK_OK;
}

/* Workspace of the pool backward: one f64 plane. */
size_t dlk_pool2d_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_pool2d_bwd_args *a = args;
  return (size_t)(a->x.shape[2] * a->x.shape[3]) * sizeof(double);
}

/* ====================================================================================== */
/* adaptive average pool2d                                                                 */
/* ====================================================================================== */

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
            for (int64_t w = w0; w < w1; w++) s += ld(x, at4(x, n, c, h, w));
          st(y, at4(y, n, c, oh, ow), s / (double)((h1 - h0) * (w1 - w0)));
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
              s += ld(dy, at4(dy, n, c, oh, ow)) / (double)((h1 - h0) * (w1 - w0));
            }
          }
          st(dx, at4(dx, n, c, h, w), s);
        }
  return DLK_OK;
}

/* ====================================================================================== */
/* batch norm                                                                              */
/* ====================================================================================== */

/* Two-pass mean and biased variance of channel c over N, H, W. */
static void channel_stats(const dlk_tensor *x, int64_t c, double *mean, double *var) {
  const int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
  const double m = (double)(N * H * W);
  double s = 0.0, q = 0.0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) s += ld(x, at4(x, n, c, h, w));
  *mean = s / m;
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) {
        double d = ld(x, at4(x, n, c, h, w)) - *mean;
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
          st(y, at4(y, n, c, h, w), (ld(x, at4(x, n, c, h, w)) - mean) * rstd * g + b);
  }
  return DLK_OK;
}

dlk_status dlk_batchnorm_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws, (void)ws_bytes;
  const dlk_batchnorm_bwd_args *a = args;
  const dlk_tensor *x = &a->x, *dy = &a->dy;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
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
          double d = ld(dy, at4(dy, n, c, h, w));
          sdy += d;
          sdyx += d * (ld(x, at4(x, n, c, h, w)) - mean) * rstd;
        }
    if (a->has_dgamma) st(&a->dgamma, at1(&a->dgamma, c), sdyx);
    if (a->has_dbeta) st(&a->dbeta, at1(&a->dbeta, c), sdy);
    if (!a->has_dx) continue;
    /* training: dx = g rstd (dy - sum dy / M - xhat sum(dy xhat) / M), as the batch
       statistics depend on x; inference: dx = g rstd dy (the statistics are constants) */
    for (int64_t n = 0; n < N; n++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) {
          double d = ld(dy, at4(dy, n, c, h, w));
          double v = d;
          if (a->training) {
            double xhat = (ld(x, at4(x, n, c, h, w)) - mean) * rstd;
            v = d - sdy / M - xhat * sdyx / M;
          }
          st(&a->dx, at4(&a->dx, n, c, h, w), g * rstd * v);
        }
  }
  return DLK_OK;
}

/* ====================================================================================== */
/* MSE loss                                                                                */
/* ====================================================================================== */

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
