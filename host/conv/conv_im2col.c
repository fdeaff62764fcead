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

/* The workspace, in elements of the accumulation type: col (CRS x P), the group's
   weights (Kg x CRS), the output block (Kg x P, or Cg x H*W for the data gradient). */
static size_t ws_elems(const dlk_conv2d_geom *g) {
  const size_t cg = (size_t)(g->c / g->groups), kg = (size_t)(g->k / g->groups);
  const size_t crs = cg * (size_t)(g->r * g->s), p = (size_t)(g->ho * g->wo), hw = (size_t)(g->h * g->w);
  const size_t out = kg * p > cg * hw ? kg * p : cg * hw;
  return crs * p + kg * crs + out;
}

/* Activation (as the CPU reference). */
static double act_f(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : x;
    case DLK_ACT_TANH: return tanh(x);
    case DLK_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DLK_ACT_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    default: return x;
  }
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
              dlk_store(a->y.data, a->y.dtype, dlk_at4(&a->y, n, kk, oh, ow), act_f(a->act, z));                  \
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
  return ws_elems(&a->g) * acc_bytes(a->x.dtype);
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
  return (ws_elems(g) + (size_t)(g->k / g->groups) * (size_t)(g->ho * g->wo)) * acc_bytes(a->dy.dtype);
}

dlk_status dlk_conv2d_bwd_data_im2col_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_conv2d_bwd_data_args *a = args;
  if (a->dy.dtype == DLK_F64) data_double(a, ws);
  else data_float(a, ws);
  return DLK_OK;
}

size_t dlk_conv2d_bwd_filter_im2col_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_conv2d_bwd_filter_args *a = args;
  return ws_elems(&a->g) * acc_bytes(a->dy.dtype);
}

dlk_status dlk_conv2d_bwd_filter_im2col_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                            size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_conv2d_bwd_filter_args *a = args;
  if (a->dy.dtype == DLK_F64) filter_double(a, ws);
  else filter_float(a, ws);
  return DLK_OK;
}
