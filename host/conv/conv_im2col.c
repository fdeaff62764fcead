/*
 * conv family, variant 20 "im2col" (optimised CPU): each (image, group) is unrolled into
 * a column matrix in the workspace and the convolution becomes a matrix product whose
 * inner loop runs over contiguous memory, so the compiler vectorises it. f32, f16 and
 * bf16 compute in float (f16/bf16 read and written through their conversions), f64 in
 * double; one thread; any strides (the unrolling reads through each tensor's strides).
 * Every sum runs in a fixed order: deterministic.
 *
 * With CRS = Cg*R*S taps (kk = (c*R + r)*S + s, w's own order) and P = Ho*Wo pixels:
 *   col[kk][p]  = x[n, grp*Cg + c, ih(p, r), iw(p, s)]   (0 outside the input)
 *   forward     out[k][p]  = sum_kk wg[k][kk] col[kk][p]                 then bias, act
 *   bwd data    dcol[kk][p] = sum_k wg[k][kk] dy[n, grp*Kg + k][p]; dx = col2im(dcol)
 *   bwd filter  dw[k][kk]  += sum_p dy[n, grp*Kg + k][p] col[kk][p]      over every n
 */
#include <math.h>
#include <string.h>

#include "../core/half.h"
#include "conv.h"

/* Accumulation type per dtype: 8 for f64 (double), else 4 (float). */
static size_t acc_bytes(dlk_dtype t) { return t == DLK_F64 ? 8 : 4; }

/* a * b and a + b in size_t, SIZE_MAX when they do not fit (no arena grants SIZE_MAX: the
   row then fails with DLK_ERR_OUT_OF_MEMORY instead of running on a wrapped size). */
static size_t mul_sz(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
static size_t add_sz(size_t a, size_t b) {
  size_t r;
  return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

/* The workspace, in elements of the accumulation type: col (CRS x P), the group's
   weights (Kg x CRS), the output block (Kg x P, or Cg x H*W for the data gradient).
   Each dim product fits (every tensor's dims do), their products with each other are
   checked: an empty x's H x W or an empty w's R x S may be huge. */
static size_t ws_elems(const dlk_conv2d_geom *g) {
  const size_t cg = (size_t)(g->c / g->groups), kg = (size_t)(g->k / g->groups);
  const size_t crs = mul_sz(cg, mul_sz((size_t)g->r, (size_t)g->s));
  const size_t p = mul_sz((size_t)g->ho, (size_t)g->wo), hw = mul_sz((size_t)g->h, (size_t)g->w);
  const size_t kp = mul_sz(kg, p), chw = mul_sz(cg, hw);
  return add_sz(add_sz(mul_sz(crs, p), mul_sz(kg, crs)), kp > chw ? kp : chw);
}

/* Calls without work for the products: the data gradient of a conv with no output
   channels (K = 0: w holds no element, its R x S may be huge) is 0, the filter gradient
   over no image (N = 0: x's H x W may be huge) is 0. They write the zeros directly and
   take no workspace. */
static bool data_is_zero(const dlk_conv2d_geom *g) { return g->k == 0; }
static bool filter_is_zero(const dlk_conv2d_geom *g) { return g->n == 0; }
static void zero4(const dlk_tensor *t) {
  for (int64_t i0 = 0; i0 < t->shape[0]; i0++)
    for (int64_t i1 = 0; i1 < t->shape[1]; i1++)
      for (int64_t i2 = 0; i2 < t->shape[2]; i2++)
        for (int64_t i3 = 0; i3 < t->shape[3]; i3++) dlk_store(t->data, t->dtype, dlk_at4(t, i0, i1, i2, i3), 0.0);
}

/* The kernels, once for float and once for double (T): unrolling, the three products and
   col2im. Tensors are read and written through dlk_load/dlk_store (any dtype, any
   strides); the products touch only the workspace. */
#define DEFINE_IM2COL(T)                                                                                           \
  static void im2col_##T(const dlk_conv2d_geom *g, const dlk_tensor *x, int64_t n, int64_t c0, T *col) {            \
    const int64_t cg = g->c / g->groups, P = g->ho * g->wo;                                                       \
    for (int64_t c = 0; c < cg; c++)                                                                               \
      for (int64_t r = 0; r < g->r; r++)                                                                           \
        for (int64_t s = 0; s < g->s; s++) {                                                                       \
          T *row = col + ((c * g->r + r) * g->s + s) * P;                                                          \
          for (int64_t oh = 0; oh < g->ho; oh++) {                                                                 \
            const int64_t ih = oh * g->stride[0] - g->pad[0] + r * g->dil[0];                                       \
            for (int64_t ow = 0; ow < g->wo; ow++) {                                                               \
              const int64_t iw = ow * g->stride[1] - g->pad[1] + s * g->dil[1];                                     \
              row[oh * g->wo + ow] = (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w)                                 \
                                         ? (T)dlk_load(x->data, x->dtype, dlk_at4(x, n, c0 + c, ih, iw))          \
                                         : (T)0;                                                                   \
            }                                                                                                      \
          }                                                                                                        \
        }                                                                                                          \
  }                                                                                                                \
  /* The group's weights as wg[k][kk] (k < Kg). */                                                                 \
  static void load_w_##T(const dlk_conv2d_geom *g, const dlk_tensor *w, int64_t k0, T *wg) {                        \
    const int64_t cg = g->c / g->groups, kg = g->k / g->groups, crs = cg * g->r * g->s;                           \
    for (int64_t k = 0; k < kg; k++)                                                                               \
      for (int64_t kk = 0; kk < crs; kk++)                                                                         \
        wg[k * crs + kk] = (T)dlk_load(w->data, w->dtype,                                                          \
                                       dlk_at4(w, k0 + k, kk / (g->r * g->s), (kk / g->s) % g->r, kk % g->s));   \
  }                                                                                                                \
  /* out[k][p] = sum_kk wg[k][kk] col[kk][p] */                                                                    \
  static void mm_fwd_##T(int64_t kg, int64_t crs, int64_t P, const T *wg, const T *col, T *out) {                   \
    for (int64_t k = 0; k < kg; k++) {                                                                             \
      T *o = out + k * P;                                                                                          \
      for (int64_t p = 0; p < P; p++) o[p] = 0;                                                                    \
      for (int64_t kk = 0; kk < crs; kk++) {                                                                       \
        const T wv = wg[k * crs + kk];                                                                             \
        const T *cr = col + kk * P;                                                                                \
        for (int64_t p = 0; p < P; p++) o[p] += wv * cr[p];                                                        \
      }                                                                                                            \
    }                                                                                                              \
  }                                                                                                                \
  /* dcol[kk][p] = sum_k wg[k][kk] dyg[k][p] (dyg: the group's dy as [Kg][P]) */                                   \
  static void mm_data_##T(int64_t kg, int64_t crs, int64_t P, const T *wg, const T *dyg, T *dcol) {                 \
    memset(dcol, 0, sizeof(T) * (size_t)(crs * P));                                                                \
    for (int64_t k = 0; k < kg; k++)                                                                               \
      for (int64_t kk = 0; kk < crs; kk++) {                                                                       \
        const T wv = wg[k * crs + kk];                                                                             \
        const T *d = dyg + k * P;                                                                                  \
        T *o = dcol + kk * P;                                                                                      \
        for (int64_t p = 0; p < P; p++) o[p] += wv * d[p];                                                         \
      }                                                                                                            \
  }                                                                                                                \
  /* dwg[k][kk] += sum_p dyg[k][p] col[kk][p] */                                                                   \
  static void mm_filter_##T(int64_t kg, int64_t crs, int64_t P, const T *dyg, const T *col, T *dwg) {               \
    for (int64_t k = 0; k < kg; k++)                                                                               \
      for (int64_t kk = 0; kk < crs; kk++) {                                                                       \
        const T *d = dyg + k * P, *cr = col + kk * P;                                                              \
        T acc = 0;                                                                                                 \
        for (int64_t p = 0; p < P; p++) acc += d[p] * cr[p];                                                       \
        dwg[k * crs + kk] += acc;                                                                                  \
      }                                                                                                            \
  }                                                                                                                \
  /* dimg[c][h*W + w] = sum of the dcol entries that unrolled (c, h, w) */                                          \
  static void col2im_##T(const dlk_conv2d_geom *g, const T *dcol, T *dimg) {                                       \
    const int64_t cg = g->c / g->groups, P = g->ho * g->wo, HW = g->h * g->w;                                     \
    memset(dimg, 0, sizeof(T) * (size_t)(cg * HW));                                                                \
    for (int64_t c = 0; c < cg; c++)                                                                               \
      for (int64_t r = 0; r < g->r; r++)                                                                           \
        for (int64_t s = 0; s < g->s; s++) {                                                                       \
          const T *row = dcol + ((c * g->r + r) * g->s + s) * P;                                                   \
          for (int64_t oh = 0; oh < g->ho; oh++) {                                                                 \
            const int64_t ih = oh * g->stride[0] - g->pad[0] + r * g->dil[0];                                       \
            if (ih < 0 || ih >= g->h) continue;                                                                    \
            for (int64_t ow = 0; ow < g->wo; ow++) {                                                               \
              const int64_t iw = ow * g->stride[1] - g->pad[1] + s * g->dil[1];                                     \
              if (iw >= 0 && iw < g->w) dimg[c * HW + ih * g->w + iw] += row[oh * g->wo + ow];                     \
            }                                                                                                      \
          }                                                                                                        \
        }                                                                                                          \
  }                                                                                                                \
  /* The group's dy of image n as dyg[k][p]. */                                                                    \
  static void load_dy_##T(const dlk_conv2d_geom *g, const dlk_tensor *dy, int64_t n, int64_t k0, T *dyg) {          \
    const int64_t kg = g->k / g->groups;                                                                           \
    for (int64_t k = 0; k < kg; k++)                                                                               \
      for (int64_t oh = 0; oh < g->ho; oh++)                                                                       \
        for (int64_t ow = 0; ow < g->wo; ow++)                                                                     \
          dyg[(k * g->ho + oh) * g->wo + ow] = (T)dlk_load(dy->data, dy->dtype, dlk_at4(dy, n, k0 + k, oh, ow));  \
  }

DEFINE_IM2COL(float)
DEFINE_IM2COL(double)

/* The run functions for one accumulation type T. */
#define DEFINE_RUNS(T)                                                                                             \
  static void fwd_##T(const dlk_conv2d_fwd_args *a, T *ws) {                                                       \
    const dlk_conv2d_geom *g = &a->g;                                                                              \
    const int64_t cg = g->c / g->groups, kg = g->k / g->groups, crs = cg * g->r * g->s, P = g->ho * g->wo;       \
    T *col = ws, *wg = col + crs * P, *out = wg + kg * crs;                                                        \
    for (int64_t grp = 0; grp < g->groups; grp++) {                                                                \
      load_w_##T(g, &a->w, grp * kg, wg);                                                                          \
      for (int64_t n = 0; n < g->n; n++) {                                                                         \
        im2col_##T(g, &a->x, n, grp * cg, col);                                                                    \
        mm_fwd_##T(kg, crs, P, wg, col, out);                                                                      \
        for (int64_t k = 0; k < kg; k++) {                                                                         \
          const int64_t kk = grp * kg + k;                                                                         \
          const double b = a->has_b ? dlk_load(a->b.data, a->b.dtype, kk * a->b.strides[0]) : 0.0;                \
          for (int64_t oh = 0; oh < g->ho; oh++)                                                                   \
            for (int64_t ow = 0; ow < g->wo; ow++) {                                                               \
              const double z = (double)out[k * P + oh * g->wo + ow] + b;                                           \
              if (a->has_z) dlk_store(a->z.data, a->z.dtype, dlk_at4(&a->z, n, kk, oh, ow), z);                   \
              dlk_store(a->y.data, a->y.dtype, dlk_at4(&a->y, n, kk, oh, ow), dlk_conv_act(a->act, z));                  \
            }                                                                                                      \
        }                                                                                                          \
      }                                                                                                            \
    }                                                                                                              \
  }                                                                                                                \
  static void data_##T(const dlk_conv2d_bwd_data_args *a, T *ws) {                                                 \
    const dlk_conv2d_geom *g = &a->g;                                                                              \
    const int64_t cg = g->c / g->groups, kg = g->k / g->groups, crs = cg * g->r * g->s, P = g->ho * g->wo;       \
    T *dcol = ws, *wg = dcol + crs * P, *dimg = wg + kg * crs;                                                     \
    /* dy of the group goes where the unrolled columns of the forward would: after dimg */                        \
    T *dyg = dimg + (kg * P > cg * g->h * g->w ? kg * P : cg * g->h * g->w);                                       \
    for (int64_t grp = 0; grp < g->groups; grp++) {                                                                \
      load_w_##T(g, &a->w, grp * kg, wg);                                                                          \
      for (int64_t n = 0; n < g->n; n++) {                                                                         \
        load_dy_##T(g, &a->dy, n, grp * kg, dyg);                                                                  \
        mm_data_##T(kg, crs, P, wg, dyg, dcol);                                                                    \
        col2im_##T(g, dcol, dimg);                                                                                 \
        for (int64_t c = 0; c < cg; c++)                                                                           \
          for (int64_t h = 0; h < g->h; h++)                                                                       \
            for (int64_t w = 0; w < g->w; w++)                                                                     \
              dlk_store(a->dx.data, a->dx.dtype, dlk_at4(&a->dx, n, grp * cg + c, h, w),                           \
                        (double)dimg[(c * g->h + h) * g->w + w]);                                                  \
      }                                                                                                            \
    }                                                                                                              \
  }                                                                                                                \
  static void filter_##T(const dlk_conv2d_bwd_filter_args *a, T *ws) {                                             \
    const dlk_conv2d_geom *g = &a->g;                                                                              \
    const int64_t cg = g->c / g->groups, kg = g->k / g->groups, crs = cg * g->r * g->s, P = g->ho * g->wo;       \
    T *col = ws, *dwg = col + crs * P, *dyg = dwg + kg * crs;                                                      \
    for (int64_t grp = 0; grp < g->groups; grp++) {                                                                \
      memset(dwg, 0, sizeof(T) * (size_t)(kg * crs));                                                             \
      for (int64_t n = 0; n < g->n; n++) {                                                                         \
        im2col_##T(g, &a->x, n, grp * cg, col);                                                                    \
        load_dy_##T(g, &a->dy, n, grp * kg, dyg);                                                                  \
        mm_filter_##T(kg, crs, P, dyg, col, dwg);                                                                  \
      }                                                                                                            \
      for (int64_t k = 0; k < kg; k++)                                                                             \
        for (int64_t kk = 0; kk < crs; kk++)                                                                       \
          dlk_store(a->dw.data, a->dw.dtype,                                                                       \
                    dlk_at4(&a->dw, grp * kg + k, kk / (g->r * g->s), (kk / g->s) % g->r, kk % g->s),              \
                    (double)dwg[k * crs + kk]);                                                                    \
    }                                                                                                              \
  }

DEFINE_RUNS(float)
DEFINE_RUNS(double)

/* ---- the row functions ---- */

size_t dlk_conv2d_fwd_im2col_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_conv2d_fwd_args *a = args;
  return mul_sz(ws_elems(&a->g), acc_bytes(a->x.dtype));
}

dlk_status dlk_conv2d_fwd_im2col_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_conv2d_fwd_args *a = args;
  if (a->x.dtype == DLK_F64) fwd_double(a, ws);
  else fwd_float(a, ws);
  return DLK_OK;
}

/* Data gradient: dcol, weights, dimg, and the group's dy (Kg x P) after them. */
size_t dlk_conv2d_bwd_data_im2col_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_conv2d_bwd_data_args *a = args;
  const dlk_conv2d_geom *g = &a->g;
  if (data_is_zero(g)) return 0;
  const size_t dyg = mul_sz((size_t)(g->k / g->groups), mul_sz((size_t)g->ho, (size_t)g->wo));
  return mul_sz(add_sz(ws_elems(g), dyg), acc_bytes(a->dy.dtype));
}

dlk_status dlk_conv2d_bwd_data_im2col_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_conv2d_bwd_data_args *a = args;
  if (data_is_zero(&a->g)) zero4(&a->dx);
  else if (a->dy.dtype == DLK_F64) data_double(a, ws);
  else data_float(a, ws);
  return DLK_OK;
}

size_t dlk_conv2d_bwd_filter_im2col_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_conv2d_bwd_filter_args *a = args;
  return filter_is_zero(&a->g) ? 0 : mul_sz(ws_elems(&a->g), acc_bytes(a->dy.dtype));
}

dlk_status dlk_conv2d_bwd_filter_im2col_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                            size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_conv2d_bwd_filter_args *a = args;
  if (filter_is_zero(&a->g)) zero4(&a->dw);
  else if (a->dy.dtype == DLK_F64) filter_double(a, ws);
  else filter_float(a, ws);
  return DLK_OK;
}
