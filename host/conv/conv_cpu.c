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

/* Activations, as the nn family defines them: relu max(x, 0) keeping NaN; gelu exact,
   x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2. */
static double act_f(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : x;
    case DLK_ACT_TANH: return tanh(x);
    case DLK_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DLK_ACT_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    default: return x;
  }
}

/* d act / dz: relu 1[z > 0]; tanh 1 - tanh^2; sigmoid s (1 - s); gelu Phi(z) + z phi(z). */
static double act_grad(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : 1.0;
    case DLK_ACT_TANH: {
      double t = tanh(x);
      return 1.0 - t * t;
    }
    case DLK_ACT_SIGMOID: {
      double s = 1.0 / (1.0 + exp(-x));
      return s * (1.0 - s);
    }
    case DLK_ACT_GELU: {
      double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
      double pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
      return cdf + x * pdf;
    }
    default: return 1.0;
  }
}

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
          st(&a->y, dlk_at4(&a->y, n, k, oh, ow), act_f(a->act, z));
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
          for (int64_t r = 0; r < g->r; r++) {
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
          if (a->act != DLK_ACT_NONE) d *= act_grad(a->act, ld(&a->z, dlk_at4(&a->z, n, k, h, w)));
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
  for (int64_t n = 0; n < f->shape[0]; n++)
    for (int64_t i = 0; i < f->shape[1]; i++)
      for (int64_t j = 0; j < f->shape[1]; j++) {
        double acc = 0.0;
        for (int64_t h = 0; h < f->shape[2]; h++)
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
