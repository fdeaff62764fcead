/*
 * rnn family, variant 0 of every op: the CPU reference, the spec the CUDA and cuDNN
 * variants are tested against. Written for clarity: one batch row at a time, every float
 * read as double through dlk_load (any strides), all arithmetic in double, each stored
 * value rounded once to its dtype.
 *
 * The formulas (PyTorch's; G gates of H rows each, row blocks of W_ih and W_hh):
 *   gi = W_ih x + b_ih, gh = W_hh h + b_hh                      [G*H]
 *   RNN   h' = act(gi + gh)
 *   LSTM  i, f, g, o = sig, sig, tanh, sig of (gi + gh) blocks 0..3
 *         c' = f c + i g, hp = o tanh(c'), h' = hp or W_hr hp (projection)
 *   GRU   r = sig(gi_r + gh_r), z = sig(gi_z + gh_z)
 *         hn = gh_n (PyTorch) or W_hn (r h) + b_hn (gru_reset_before)
 *         n = tanh(gi_n + r hn) (PyTorch) or tanh(gi_n + hn) (reset_before)
 *         h' = (1 - z) n + z h
 * saved per row: RNN h'; LSTM i f g o tanh(c'); GRU r z n hn.
 *
 * Backward of one step, from dh' (and dc' for an LSTM), with a = pre-activations:
 *   RNN   da = dh' act'(a), act' from h': tanh 1 - h'^2, relu [h' > 0]
 *   LSTM  dhp = dh' (or W_hr^T dh', and dW_hr += dh' hp^T)
 *         dc~ = dc' + dhp o (1 - tanh(c')^2); do = dhp tanh(c')
 *         di = dc~ g, df = dc~ c, dg = dc~ i, dc = dc~ f
 *         da_i = di i (1 - i), da_f = df f (1 - f), da_g = dg (1 - g^2), da_o = do o (1 - o)
 *   GRU   dn = dh' (1 - z), dz = dh' (h - n), dh = dh' z
 *         da_n = dn (1 - n^2), da_z = dz z (1 - z)
 *         PyTorch:      dr = da_n hn;  dgh_n = da_n r
 *         reset_before: d(rh) = W_hn^T da_n, dr = d(rh) h, dh += d(rh) r, dgh_n = da_n
 *                       (and the W_hn gradient takes r h where the others take h)
 *         da_r = dr r (1 - r)
 *   then dgi = da (PyTorch GRU: [da_r, da_z, da_n]), dgh = da (GRU: [da_r, da_z, dgh_n]),
 *   dx = W_ih^T dgi, dh += W_hh^T dgh (reset_before: the n block is in d(rh) already),
 *   dW_ih += dgi x^T, dW_hh += dgh h^T, db_ih += dgi, db_hh += dgh.
 *
 * A sequence is these cells step by step, layer by layer and direction by direction (see
 * host/rnn/rnn.h for the store the forward leaves in the training reserve); the backward
 * walks each layer's steps in the opposite order. The hidden state is rounded to the data
 * dtype after each step, the LSTM cell state to F32 (F64); gradients between steps and
 * the weight-gradient sums stay in double, added to the caller's gradients once.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/half.h"
#include "rnn.h"

/* ---- element access ---- */

static inline double ld(const dlk_tensor *t, int64_t off) { return dlk_load(t->data, t->dtype, off); }
static inline void st(const dlk_tensor *t, int64_t off, double v) { dlk_store(t->data, t->dtype, off, v); }
static inline int64_t at2(const dlk_tensor *t, int64_t i, int64_t j) {
  return i * t->strides[0] + j * t->strides[1];
}
static inline int64_t at3(const dlk_tensor *t, int64_t i, int64_t j, int64_t k) {
  return i * t->strides[0] + j * t->strides[1] + k * t->strides[2];
}
static inline double vec(const dlk_tensor *t, int64_t i) { return ld(t, i * t->strides[0]); }
/* v rounded to dtype dt. */
static double rnd(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}
static inline double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Bump allocator over the workspace: doubles, 64-byte aligned. */
typedef struct bump {
  char *p;
  size_t used;
} bump;
static double *take(bump *b, int64_t n) {
  double *r = (double *)(b->p + b->used);
  b->used += ((size_t)(n > 0 ? n : 1) * sizeof(double) + 63) & ~(size_t)63;
  return r;
}
static size_t need(int64_t n) { return ((size_t)(n > 0 ? n : 1) * sizeof(double) + 63) & ~(size_t)63; }

/* ---- one cell on one batch row ---- */

typedef struct cell {
  dlk_rnn_mode mode;
  bool reset_before;
  int64_t I, H, P, G;
  const dlk_rnn_w *w;
} cell;

/* Scratch a row needs: gi, gh [G*H]; hp, rh [H]. */
typedef struct rowtmp {
  double *gi, *gh, *hp, *rh;
} rowtmp;
static size_t rowtmp_bytes(const cell *c) { return 2 * need(c->G * c->H) + 2 * need(c->H); }
static void rowtmp_take(bump *b, const cell *c, rowtmp *t) {
  t->gi = take(b, c->G * c->H);
  t->gh = take(b, c->G * c->H);
  t->hp = take(b, c->H);
  t->rh = take(b, c->H);
}

/* out[g] = bias[g] + sum_k W[g, k] v[k] for rows g in [g0, g0 + n). */
static void matvec(const dlk_tensor *W, bool has_b, const dlk_tensor *b, const double *v, int64_t k_n,
                   int64_t g0, int64_t n, double *out) {
  for (int64_t g = g0; g < g0 + n; g++) {
    double acc = has_b ? vec(b, g) : 0.0;
    for (int64_t k = 0; k < k_n; k++) acc += ld(W, at2(W, g, k)) * v[k];
    out[g] = acc;
  }
}

/* Forward of one row: x [I], h [P], c [H] (LSTM) -> hn [P], cn [H] (LSTM), sv [S]. */
static void cell_fwd_row(const cell *cl, const double *x, const double *h, const double *c, double *hn,
                         double *cn, double *sv, rowtmp *t) {
  const dlk_rnn_w *w = cl->w;
  const int64_t H = cl->H, GH = cl->G * H;
  matvec(&w->w_ih, w->has_b_ih, &w->b_ih, x, cl->I, 0, GH, t->gi);
  /* reset_before: the n rows of W_hh take r h, known only after r. */
  const int64_t gh_rows = cl->mode == DLK_RNN_GRU && cl->reset_before ? 2 * H : GH;
  matvec(&w->w_hh, w->has_b_hh, &w->b_hh, h, cl->P, 0, gh_rows, t->gh);
  switch (cl->mode) {
    case DLK_RNN_TANH:
    case DLK_RNN_RELU:
      for (int64_t j = 0; j < H; j++) {
        double a = t->gi[j] + t->gh[j];
        /* relu keeps NaN, as torch.relu */
        hn[j] = cl->mode == DLK_RNN_TANH ? tanh(a) : (a <= 0 ? 0.0 : a);
        sv[j] = hn[j];
      }
      break;
    case DLK_RNN_LSTM:
      for (int64_t j = 0; j < H; j++) {
        double i = sig(t->gi[j] + t->gh[j]), f = sig(t->gi[H + j] + t->gh[H + j]);
        double g = tanh(t->gi[2 * H + j] + t->gh[2 * H + j]), o = sig(t->gi[3 * H + j] + t->gh[3 * H + j]);
        double cc = f * (c ? c[j] : 0.0) + i * g, tc = tanh(cc);
        cn[j] = cc;
        t->hp[j] = o * tc;
        sv[j] = i, sv[H + j] = f, sv[2 * H + j] = g, sv[3 * H + j] = o, sv[4 * H + j] = tc;
      }
      if (w->has_w_hr)
        matvec(&w->w_hr, false, NULL, t->hp, H, 0, cl->P, hn);
      else
        memcpy(hn, t->hp, (size_t)H * sizeof(double));
      break;
    case DLK_RNN_GRU: {
      for (int64_t j = 0; j < 2 * H; j++) t->gh[j] = sig(t->gi[j] + t->gh[j]); /* r, z */
      const double *r = t->gh, *z = t->gh + H;
      if (cl->reset_before) {
        for (int64_t k = 0; k < H; k++) t->rh[k] = r[k] * h[k];
        matvec(&w->w_hh, w->has_b_hh, &w->b_hh, t->rh, H, 2 * H, H, t->gh);
      }
      for (int64_t j = 0; j < H; j++) {
        double hnp = t->gh[2 * H + j];
        double n = tanh(t->gi[2 * H + j] + (cl->reset_before ? hnp : r[j] * hnp));
        hn[j] = (1.0 - z[j]) * n + z[j] * h[j];
        sv[j] = r[j], sv[H + j] = z[j], sv[2 * H + j] = n, sv[3 * H + j] = hnp;
      }
      break;
    }
  }
}

/* Weight-gradient sums of one layer and direction, in double (NULL: not wanted). */
typedef struct gacc {
  double *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
} gacc;

/* Backward of one row. x, h, c: the step's inputs; sv its saved values; dhn [P], dcn [H]
   (NULL: zero). dx [I] is accumulated (+=), dh [P] and dc [H] written. */
static void cell_bwd_row(const cell *cl, const double *x, const double *h, const double *c, const double *sv,
                         const double *dhn, const double *dcn, double *dx, double *dh, double *dc,
                         const gacc *ga, rowtmp *t) {
  const dlk_rnn_w *w = cl->w;
  const int64_t H = cl->H, G = cl->G, GH = G * H, P = cl->P;
  double *dgi = t->gi, *dgh = t->gh; /* the forward's scratch, reused */
  for (int64_t k = 0; k < P; k++) dh[k] = 0.0;
  const double *hin_n = h; /* what the n rows of W_hh multiplied in the forward */
  switch (cl->mode) {
    case DLK_RNN_TANH:
    case DLK_RNN_RELU:
      for (int64_t j = 0; j < H; j++) {
        double hv = sv[j], g = dhn ? dhn[j] : 0.0;
        dgi[j] = g * (cl->mode == DLK_RNN_TANH ? 1.0 - hv * hv : (hv > 0 ? 1.0 : 0.0));
        dgh[j] = dgi[j];
      }
      break;
    case DLK_RNN_LSTM: {
      double *dhp = t->hp; /* dL/d(o tanh c') */
      if (w->has_w_hr) {
        for (int64_t j = 0; j < H; j++) {
          double acc = 0.0;
          for (int64_t q = 0; q < P; q++) acc += (dhn ? dhn[q] : 0.0) * ld(&w->w_hr, at2(&w->w_hr, q, j));
          dhp[j] = acc;
        }
        if (ga->w_hr && dhn)
          for (int64_t q = 0; q < P; q++)
            for (int64_t j = 0; j < H; j++) ga->w_hr[q * H + j] += dhn[q] * sv[3 * H + j] * sv[4 * H + j];
      } else {
        for (int64_t j = 0; j < H; j++) dhp[j] = dhn ? dhn[j] : 0.0;
      }
      for (int64_t j = 0; j < H; j++) {
        double i = sv[j], f = sv[H + j], g = sv[2 * H + j], o = sv[3 * H + j], tc = sv[4 * H + j];
        double dct = (dcn ? dcn[j] : 0.0) + dhp[j] * o * (1.0 - tc * tc);
        double d_o = dhp[j] * tc, di = dct * g, df = dct * (c ? c[j] : 0.0), dg = dct * i;
        dc[j] = dct * f;
        dgi[j] = di * i * (1.0 - i);
        dgi[H + j] = df * f * (1.0 - f);
        dgi[2 * H + j] = dg * (1.0 - g * g);
        dgi[3 * H + j] = d_o * o * (1.0 - o);
      }
      memcpy(dgh, dgi, (size_t)GH * sizeof(double));
      break;
    }
    case DLK_RNN_GRU: {
      double *drh = t->hp;
      for (int64_t j = 0; j < H; j++) {
        double r = sv[j], z = sv[H + j], n = sv[2 * H + j], g = dhn ? dhn[j] : 0.0;
        double dn = g * (1.0 - z), dz = g * (h[j] - n);
        dh[j] = g * z;
        dgi[2 * H + j] = dn * (1.0 - n * n);
        dgi[H + j] = dz * z * (1.0 - z);
        (void)r;
      }
      if (cl->reset_before) {
        for (int64_t k = 0; k < H; k++) {
          double acc = 0.0;
          for (int64_t j = 0; j < H; j++) acc += dgi[2 * H + j] * ld(&w->w_hh, at2(&w->w_hh, 2 * H + j, k));
          drh[k] = acc;
          t->rh[k] = sv[k] * h[k];
        }
        hin_n = t->rh;
        for (int64_t j = 0; j < H; j++) {
          double r = sv[j];
          dh[j] += drh[j] * r;
          dgi[j] = drh[j] * h[j] * r * (1.0 - r);
          dgh[2 * H + j] = dgi[2 * H + j];
        }
      } else {
        for (int64_t j = 0; j < H; j++) {
          double r = sv[j], hnp = sv[3 * H + j];
          dgi[j] = dgi[2 * H + j] * hnp * r * (1.0 - r);
          dgh[2 * H + j] = dgi[2 * H + j] * r;
        }
      }
      for (int64_t j = 0; j < 2 * H; j++) dgh[j] = dgi[j];
      break;
    }
  }
  /* dx += W_ih^T dgi; dh += W_hh^T dgh (reset_before: without the n block). */
  for (int64_t k = 0; k < cl->I; k++) {
    double acc = 0.0;
    for (int64_t g = 0; g < GH; g++) acc += dgi[g] * ld(&w->w_ih, at2(&w->w_ih, g, k));
    dx[k] += acc;
  }
  const int64_t dh_rows = cl->mode == DLK_RNN_GRU && cl->reset_before ? 2 * H : GH;
  for (int64_t k = 0; k < P; k++) {
    double acc = 0.0;
    for (int64_t g = 0; g < dh_rows; g++) acc += dgh[g] * ld(&w->w_hh, at2(&w->w_hh, g, k));
    dh[k] += acc;
  }
  if (ga->w_ih)
    for (int64_t g = 0; g < GH; g++)
      for (int64_t k = 0; k < cl->I; k++) ga->w_ih[g * cl->I + k] += dgi[g] * x[k];
  if (ga->w_hh)
    for (int64_t g = 0; g < GH; g++) {
      const double *hin = cl->mode == DLK_RNN_GRU && g >= 2 * H ? hin_n : h;
      for (int64_t k = 0; k < P; k++) ga->w_hh[g * P + k] += dgh[g] * hin[k];
    }
  if (ga->b_ih)
    for (int64_t g = 0; g < GH; g++) ga->b_ih[g] += dgi[g];
  if (ga->b_hh)
    for (int64_t g = 0; g < GH; g++) ga->b_hh[g] += dgh[g];
}

/* Weight-gradient accumulators of one layer and direction: taken from the workspace,
   zeroed; only for wanted members. */
static size_t gacc_bytes(const cell *c) {
  const int64_t GH = c->G * c->H;
  return need(GH * c->I) + need(GH * c->P) + 2 * need(GH) + need(c->P * c->H);
}
static void gacc_take(bump *b, const cell *c, const dlk_rnn_gw *g, gacc *a) {
  const int64_t GH = c->G * c->H;
  memset(a, 0, sizeof *a);
  double *p;
#define GACC(field, n)                                 \
  p = take(b, n);                                      \
  if (g->has_##field) {                                \
    memset(p, 0, (size_t)(n) * sizeof(double));        \
    a->field = p;                                      \
  }
  GACC(w_ih, GH * c->I)
  GACC(w_hh, GH * c->P)
  GACC(b_ih, GH)
  GACC(b_hh, GH)
  GACC(w_hr, c->P * c->H)
#undef GACC
}
/* grad += sum, each element rounded once. */
static void gacc_store(const cell *c, const dlk_rnn_gw *g, const gacc *a) {
  const int64_t GH = c->G * c->H;
  if (a->w_ih)
    for (int64_t i = 0; i < GH; i++)
      for (int64_t k = 0; k < c->I; k++)
        st(&g->w_ih, at2(&g->w_ih, i, k), ld(&g->w_ih, at2(&g->w_ih, i, k)) + a->w_ih[i * c->I + k]);
  if (a->w_hh)
    for (int64_t i = 0; i < GH; i++)
      for (int64_t k = 0; k < c->P; k++)
        st(&g->w_hh, at2(&g->w_hh, i, k), ld(&g->w_hh, at2(&g->w_hh, i, k)) + a->w_hh[i * c->P + k]);
  if (a->b_ih)
    for (int64_t i = 0; i < GH; i++) st(&g->b_ih, i * g->b_ih.strides[0], vec(&g->b_ih, i) + a->b_ih[i]);
  if (a->b_hh)
    for (int64_t i = 0; i < GH; i++) st(&g->b_hh, i * g->b_hh.strides[0], vec(&g->b_hh, i) + a->b_hh[i]);
  if (a->w_hr)
    for (int64_t q = 0; q < c->P; q++)
      for (int64_t j = 0; j < c->H; j++)
        st(&g->w_hr, at2(&g->w_hr, q, j), ld(&g->w_hr, at2(&g->w_hr, q, j)) + a->w_hr[q * c->H + j]);
}

/* Row b of a 2-D tensor into doubles (absent: zeros). */
static void load_row(bool has, const dlk_tensor *t, int64_t b, int64_t n, double *out) {
  for (int64_t k = 0; k < n; k++) out[k] = has ? ld(t, at2(t, b, k)) : 0.0;
}

/* ====================================================================================== */
/* rnn_cell_fwd / rnn_cell_bwd                                                             */
/* ====================================================================================== */

static cell cell_of(dlk_rnn_mode mode, bool reset_before, int64_t I, int64_t H, int64_t P, const dlk_rnn_w *w) {
  cell c = {mode, reset_before, I, H, P, dlk_rnn_gates(mode), w};
  return c;
}

size_t dlk_rnn_cell_fwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_rnn_cell_fwd_args *a = args;
  cell c = cell_of(a->mode, a->reset_before, a->input, a->hidden, a->state, &a->w);
  return rowtmp_bytes(&c) + need(a->input) + 2 * need(a->state) + 2 * need(a->hidden) + need(a->saved_cols);
}

dlk_status dlk_rnn_cell_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_rnn_cell_fwd_args *a = args;
  cell c = cell_of(a->mode, a->reset_before, a->input, a->hidden, a->state, &a->w);
  bump b = {ws, 0};
  rowtmp t;
  rowtmp_take(&b, &c, &t);
  double *x = take(&b, c.I), *h = take(&b, c.P), *hn = take(&b, c.P);
  double *cc = take(&b, c.H), *cn = take(&b, c.H), *sv = take(&b, a->saved_cols);
  for (int64_t r = 0; r < a->batch; r++) {
    load_row(true, &a->x, r, c.I, x);
    load_row(a->has_h, &a->h, r, c.P, h);
    load_row(a->has_c, &a->c, r, c.H, cc);
    cell_fwd_row(&c, x, h, cc, hn, cn, sv, &t);
    for (int64_t k = 0; k < c.P; k++) st(&a->h_out, at2(&a->h_out, r, k), hn[k]);
    if (a->has_c_out)
      for (int64_t k = 0; k < c.H; k++) st(&a->c_out, at2(&a->c_out, r, k), cn[k]);
    if (a->has_saved)
      for (int64_t k = 0; k < a->saved_cols; k++) st(&a->saved, at2(&a->saved, r, k), sv[k]);
  }
  return DLK_OK;
}

size_t dlk_rnn_cell_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_rnn_cell_bwd_args *a = args;
  cell c = cell_of(a->mode, a->reset_before, a->input, a->hidden, a->state, &a->w);
  return rowtmp_bytes(&c) + gacc_bytes(&c) + 2 * need(c.I) + 3 * need(c.P) + 3 * need(c.H) +
         need(a->saved_cols);
}

dlk_status dlk_rnn_cell_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_rnn_cell_bwd_args *a = args;
  cell c = cell_of(a->mode, a->reset_before, a->input, a->hidden, a->state, &a->w);
  bump b = {ws, 0};
  rowtmp t;
  rowtmp_take(&b, &c, &t);
  gacc ga;
  gacc_take(&b, &c, &a->g, &ga);
  double *x = take(&b, c.I), *h = take(&b, c.P), *cc = take(&b, c.H), *sv = take(&b, a->saved_cols);
  double *dhn = take(&b, c.P), *dcn = take(&b, c.H), *dx = take(&b, c.I), *dh = take(&b, c.P),
         *dc = take(&b, c.H);
  for (int64_t r = 0; r < a->batch; r++) {
    load_row(true, &a->x, r, c.I, x);
    load_row(a->has_h, &a->h, r, c.P, h);
    load_row(a->has_c, &a->c, r, c.H, cc);
    load_row(true, &a->saved, r, a->saved_cols, sv);
    load_row(a->has_dh_out, &a->dh_out, r, c.P, dhn);
    load_row(a->has_dc_out, &a->dc_out, r, c.H, dcn);
    memset(dx, 0, (size_t)c.I * sizeof(double));
    cell_bwd_row(&c, x, h, cc, sv, dhn, dcn, dx, dh, dc, &ga, &t);
    if (a->has_dx)
      for (int64_t k = 0; k < c.I; k++) st(&a->dx, at2(&a->dx, r, k), dx[k]);
    if (a->has_dh)
      for (int64_t k = 0; k < c.P; k++) st(&a->dh, at2(&a->dh, r, k), dh[k]);
    if (a->has_dc)
      for (int64_t k = 0; k < c.H; k++) st(&a->dc, at2(&a->dc, r, k), dc[k]);
  }
  gacc_store(&c, &a->g, &ga);
  return DLK_OK;
}

/* ====================================================================================== */
/* rnn_fwd / rnn_bwd                                                                       */
/* ====================================================================================== */

/* A block of the store as a contiguous tensor [T, B, cols] of dtype dt. */
static dlk_tensor block(const dlk_rnn_fwd_args *a, void *store, size_t off, dlk_dtype dt, int64_t cols) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = (char *)store + off;
  t.dtype = dt;
  t.device = a->x.device;
  t.ndim = 3;
  t.shape[0] = a->T, t.shape[1] = a->B, t.shape[2] = cols;
  t.strides[2] = 1, t.strides[1] = cols, t.strides[0] = a->B * cols;
  return t;
}

/* Layer l's input: x, or the previous layer's output (after dropout when it is on). */
static dlk_tensor layer_in(const dlk_rnn_fwd_args *a, const dlk_rnn_layout *lo, void *store, int64_t l) {
  if (l == 0) return a->x;
  const size_t off = a->has_dropout ? lo->drop[l] : lo->ys[l - 1];
  return block(a, store, off, lo->dt, a->D * a->P);
}

/* State [L*D, B, n] entry (ld, b) into doubles (absent: zeros). */
static void load_state(bool has, const dlk_tensor *t, int64_t ld_, int64_t b, int64_t n, double *out) {
  for (int64_t k = 0; k < n; k++) out[k] = has ? ld(t, at3(t, ld_, b, k)) : 0.0;
}

static int64_t in_cols(const dlk_rnn_fwd_args *a, int64_t l) { return l == 0 ? a->I : a->D * a->P; }

/* Scratch of the forward beyond the store: one row's inputs and outputs, the running
   states of every batch row. */
static size_t fwd_scratch(const dlk_rnn_fwd_args *a) {
  int64_t imax = a->I > a->D * a->P ? a->I : a->D * a->P;
  dlk_rnn_w w;
  dlk_rnn_layer_w(a, 0, &w);
  cell c = cell_of(a->mode, a->reset_before, imax, a->H, a->P, &w);
  return rowtmp_bytes(&c) + need(imax) + need(a->P) + need(a->H) + need(dlk_rnn_saved_cols_of(a->mode, a->H)) +
         need(a->B * a->P) + need(a->B * a->H);
}

size_t dlk_rnn_fwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_rnn_fwd_args *a = args;
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  return (a->training ? 0 : lo.total) + fwd_scratch(a);
}

/* The forward, into `store` (the reserve's or the workspace's), scratch from b. */
static void seq_forward(const dlk_rnn_fwd_args *a, void *store, bump *b) {
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, D = a->D, S = lo.S;
  const int64_t imax = a->I > D * P ? a->I : D * P;
  dlk_rnn_w w;
  dlk_rnn_layer_w(a, 0, &w);
  cell c0 = cell_of(a->mode, a->reset_before, imax, H, P, &w);
  rowtmp t;
  rowtmp_take(b, &c0, &t);
  double *x = take(b, imax), *hn = take(b, P), *cn = take(b, H), *sv = take(b, S);
  double *hs = take(b, B * P), *cs = take(b, B * H);
  for (int64_t l = 0; l < a->L; l++) {
    dlk_tensor ys = block(a, store, lo.ys[l], lo.dt, D * P);
    if (l > 0 && a->has_dropout) {
      /* drop[l] = ys[l-1] * keep / (1 - p), keep from the counter RNG */
      dlk_tensor prev = block(a, store, lo.ys[l - 1], lo.dt, D * P), dr = block(a, store, lo.drop[l], lo.dt, D * P);
      for (int64_t ti = 0; ti < T; ti++)
        for (int64_t bi = 0; bi < B; bi++)
          for (int64_t j = 0; j < D * P; j++) {
            double u = dlk_dropout_uniform(a->seed, dlk_rnn_drop_counter(a, l, ti, bi, j));
            double v = u >= a->dropout ? ld(&prev, at3(&prev, ti, bi, j)) / (1.0 - a->dropout) : 0.0;
            st(&dr, at3(&dr, ti, bi, j), v);
          }
    }
    dlk_tensor in = layer_in(a, &lo, store, l);
    const int64_t I = in_cols(a, l);
    for (int64_t d = 0; d < D; d++) {
      const int64_t ldi = l * D + d;
      dlk_rnn_layer_w(a, ldi, &w);
      cell c = cell_of(a->mode, a->reset_before, I, H, P, &w);
      dlk_tensor gates = block(a, store, lo.gates[ldi], lo.dt, S);
      dlk_tensor cst = block(a, store, a->mode == DLK_RNN_LSTM ? lo.cs[ldi] : 0, lo.ct, H);
      for (int64_t bi = 0; bi < B; bi++) {
        load_state(a->has_h0, &a->h0, ldi, bi, P, hs + bi * P);
        if (a->mode == DLK_RNN_LSTM) load_state(a->has_c0, &a->c0, ldi, bi, H, cs + bi * H);
      }
      for (int64_t s = 0; s < T; s++) {
        const int64_t ti = d == 0 ? s : T - 1 - s;
        for (int64_t bi = 0; bi < B; bi++) {
          if (!dlk_rnn_active(a, ti, bi)) {
            /* past the end: y and the store hold zeros */
            for (int64_t k = 0; k < P; k++) st(&ys, at3(&ys, ti, bi, d * P + k), 0.0);
            for (int64_t k = 0; k < S; k++) st(&gates, at3(&gates, ti, bi, k), 0.0);
            if (a->mode == DLK_RNN_LSTM)
              for (int64_t k = 0; k < H; k++) st(&cst, at3(&cst, ti, bi, k), 0.0);
            continue;
          }
          for (int64_t k = 0; k < I; k++) x[k] = ld(&in, at3(&in, ti, bi, k));
          cell_fwd_row(&c, x, hs + bi * P, a->mode == DLK_RNN_LSTM ? cs + bi * H : NULL, hn, cn, sv, &t);
          for (int64_t k = 0; k < P; k++) {
            hs[bi * P + k] = rnd(lo.dt, hn[k]);
            st(&ys, at3(&ys, ti, bi, d * P + k), hn[k]);
          }
          for (int64_t k = 0; k < S; k++) st(&gates, at3(&gates, ti, bi, k), sv[k]);
          if (a->mode == DLK_RNN_LSTM)
            for (int64_t k = 0; k < H; k++) {
              cs[bi * H + k] = rnd(lo.ct, cn[k]);
              st(&cst, at3(&cst, ti, bi, k), cn[k]);
            }
        }
      }
      for (int64_t bi = 0; bi < B; bi++) {
        if (a->has_hn)
          for (int64_t k = 0; k < P; k++) st(&a->hn, at3(&a->hn, ldi, bi, k), hs[bi * P + k]);
        if (a->has_cn)
          for (int64_t k = 0; k < H; k++) st(&a->cn, at3(&a->cn, ldi, bi, k), cs[bi * H + k]);
      }
    }
  }
  dlk_tensor last = block(a, store, lo.ys[a->L - 1], lo.dt, D * P);
  for (int64_t ti = 0; ti < T; ti++)
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t j = 0; j < D * P; j++) st(&a->y, at3(&a->y, ti, bi, j), ld(&last, at3(&last, ti, bi, j)));
}

static void write_header(void *reserve, int format, uint64_t key) {
  dlk_rnn_reserve_header h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, "dlkrnn1", 8);
  h.format = (uint32_t)format;
  h.key_hash = key;
  memcpy(reserve, &h, sizeof h);
}

dlk_status dlk_rnn_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_rnn_fwd_args *a = args;
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  bump b = {ws, 0};
  void *store;
  if (a->training) {
    write_header(a->reserve.data, DLK_RNN_FORMAT_DLK, a->key_hash);
    store = (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER;
  } else {
    store = ws;
    b.used = lo.total;
  }
  seq_forward(a, store, &b);
  return DLK_OK;
}

/* Backward scratch: dy of the current layer and dx of the layer below (doubles), the
   running dh and dc of every row, a row's buffers, the weight-gradient sums. */
size_t dlk_rnn_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_rnn_bwd_args *ba = args;
  const dlk_rnn_fwd_args *a = &ba->f;
  const int64_t imax = a->I > a->D * a->P ? a->I : a->D * a->P;
  dlk_rnn_w w;
  dlk_rnn_layer_w(a, 0, &w);
  cell c = cell_of(a->mode, a->reset_before, imax, a->H, a->P, &w);
  return need(a->T * a->B * a->D * a->P) + need(a->T * a->B * imax) + need(a->B * a->P) + need(a->B * a->H) +
         rowtmp_bytes(&c) + gacc_bytes(&c) + 2 * need(imax) + 3 * need(a->P) + 2 * need(a->H) +
         need(dlk_rnn_saved_cols_of(a->mode, a->H));
}

dlk_status dlk_rnn_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)ctx, (void)impl, (void)ws_bytes;
  const dlk_rnn_bwd_args *ba = args;
  const dlk_rnn_fwd_args *a = &ba->f;
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  void *store = (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER;
  const int64_t T = a->T, B = a->B, H = a->H, P = a->P, D = a->D, S = lo.S, W = D * P;
  const int64_t imax = a->I > W ? a->I : W;
  bump b = {ws, 0};
  double *dyl = take(&b, T * B * W), *dxl = take(&b, T * B * imax);
  double *dhs = take(&b, B * P), *dcs = take(&b, B * H);
  dlk_rnn_w w;
  dlk_rnn_layer_w(a, 0, &w);
  cell cmax = cell_of(a->mode, a->reset_before, imax, H, P, &w);
  rowtmp t;
  rowtmp_take(&b, &cmax, &t);
  const size_t gacc_at = b.used;
  b.used += gacc_bytes(&cmax);
  double *x = take(&b, imax), *dxr = take(&b, imax), *hp = take(&b, P), *dh = take(&b, P), *dht = take(&b, P);
  double *cp = take(&b, H), *dc = take(&b, H), *sv = take(&b, S);

  /* dy of the top layer: the caller's, zero past each sequence's end. */
  for (int64_t ti = 0; ti < T; ti++)
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t j = 0; j < W; j++)
        dyl[(ti * B + bi) * W + j] =
            ba->has_dy && dlk_rnn_active(a, ti, bi) ? ld(&ba->dy, at3(&ba->dy, ti, bi, j)) : 0.0;

  for (int64_t l = a->L - 1; l >= 0; l--) {
    const int64_t I = in_cols(a, l);
    dlk_tensor in = layer_in(a, &lo, store, l), ys = block(a, store, lo.ys[l], lo.dt, W);
    memset(dxl, 0, (size_t)(T * B * I) * sizeof(double));
    for (int64_t d = 0; d < D; d++) {
      const int64_t ldi = l * D + d;
      dlk_rnn_layer_w(a, ldi, &w);
      cell c = cell_of(a->mode, a->reset_before, I, H, P, &w);
      dlk_rnn_gw gw;
      dlk_rnn_gw_from(ba->dweights ? &ba->dweights[ldi] : NULL, &gw);
      bump gb = {(char *)ws, gacc_at};
      gacc ga;
      gacc_take(&gb, &c, &gw, &ga);
      dlk_tensor gates = block(a, store, lo.gates[ldi], lo.dt, S);
      dlk_tensor cst = block(a, store, a->mode == DLK_RNN_LSTM ? lo.cs[ldi] : 0, lo.ct, H);
      for (int64_t bi = 0; bi < B; bi++) {
        load_state(ba->has_dhn, &ba->dhn, ldi, bi, P, dhs + bi * P);
        if (a->mode == DLK_RNN_LSTM) load_state(ba->has_dcn, &ba->dcn, ldi, bi, H, dcs + bi * H);
      }
      /* the forward's steps in reverse order */
      for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t ti = d == 0 ? s : T - 1 - s;
        for (int64_t bi = 0; bi < B; bi++) {
          if (!dlk_rnn_active(a, ti, bi)) continue;
          /* the state this step started from: the previous step's, or h0 / c0 */
          const int64_t tp = d == 0 ? ti - 1 : ti + 1;
          const bool first = d == 0 ? ti == 0 : tp >= T || !dlk_rnn_active(a, tp, bi);
          if (first) {
            load_state(a->has_h0, &a->h0, ldi, bi, P, hp);
            if (a->mode == DLK_RNN_LSTM) load_state(a->has_c0, &a->c0, ldi, bi, H, cp);
          } else {
            for (int64_t k = 0; k < P; k++) hp[k] = ld(&ys, at3(&ys, tp, bi, d * P + k));
            if (a->mode == DLK_RNN_LSTM)
              for (int64_t k = 0; k < H; k++) cp[k] = ld(&cst, at3(&cst, tp, bi, k));
          }
          for (int64_t k = 0; k < I; k++) x[k] = ld(&in, at3(&in, ti, bi, k));
          for (int64_t k = 0; k < S; k++) sv[k] = ld(&gates, at3(&gates, ti, bi, k));
          for (int64_t k = 0; k < P; k++) dht[k] = dhs[bi * P + k] + dyl[(ti * B + bi) * W + d * P + k];
          memset(dxr, 0, (size_t)I * sizeof(double));
          cell_bwd_row(&c, x, hp, a->mode == DLK_RNN_LSTM ? cp : NULL, sv, dht,
                       a->mode == DLK_RNN_LSTM ? dcs + bi * H : NULL, dxr, dh, dc, &ga, &t);
          for (int64_t k = 0; k < I; k++) dxl[(ti * B + bi) * I + k] += dxr[k];
          memcpy(dhs + bi * P, dh, (size_t)P * sizeof(double));
          if (a->mode == DLK_RNN_LSTM) memcpy(dcs + bi * H, dc, (size_t)H * sizeof(double));
        }
      }
      for (int64_t bi = 0; bi < B; bi++) {
        if (ba->has_dh0)
          for (int64_t k = 0; k < P; k++) st(&ba->dh0, at3(&ba->dh0, ldi, bi, k), dhs[bi * P + k]);
        if (ba->has_dc0)
          for (int64_t k = 0; k < H; k++) st(&ba->dc0, at3(&ba->dc0, ldi, bi, k), dcs[bi * H + k]);
      }
      gacc_store(&c, &gw, &ga);
    }
    if (l == 0) {
      if (ba->has_dx)
        for (int64_t ti = 0; ti < T; ti++)
          for (int64_t bi = 0; bi < B; bi++)
            for (int64_t k = 0; k < I; k++) st(&ba->dx, at3(&ba->dx, ti, bi, k), dxl[(ti * B + bi) * I + k]);
    } else {
      /* through the dropout between layers l-1 and l: the same mask, the same scale */
      for (int64_t ti = 0; ti < T; ti++)
        for (int64_t bi = 0; bi < B; bi++)
          for (int64_t j = 0; j < W; j++) {
            double g = dxl[(ti * B + bi) * W + j];
            if (a->has_dropout) {
              double u = dlk_dropout_uniform(a->seed, dlk_rnn_drop_counter(a, l, ti, bi, j));
              g = u >= a->dropout ? g / (1.0 - a->dropout) : 0.0;
            }
            dyl[(ti * B + bi) * W + j] = g;
          }
    }
  }
  return DLK_OK;
}

/* The backward reads the dlk reserve layout only. */
bool dlk_rnn_bwd_cpu_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)ctx, (void)impl;
  const dlk_rnn_bwd_args *a = args;
  if (a->format == DLK_RNN_FORMAT_DLK) return true;
  snprintf(why, n, "the reserve was written by another variant's forward (format %d)", a->format);
  return false;
}
