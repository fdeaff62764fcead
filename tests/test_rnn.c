/*
 * rnn family tests.
 *
 * CPU run (default):
 *   1. golden fixtures (tests/golden/rnn/{cell,seq,keras}.txt, see make_rnn_golden.py):
 *      torch.nn cells and sequences (2 layers, bidirectional, packed variable lengths,
 *      proj_size, batch_first, no bias) forward and backward, and the Keras import
 *      against the Keras formulas, each with contiguous and with padded-stride tensors;
 *   2. finite differences in f64 of every CPU backward: cells of every mode (GRU both
 *      ways, LSTM with a projection), sequences with layers, directions, lengths,
 *      batch_first, projection, dropout; gradients accumulate (+=);
 *   3. invariants of the reference: a sequence equals its cells step by step, a packed
 *      batch equals its sequences one by one, batch_first and strided views give the same
 *      bits, lengths all T equal no lengths;
 *   4. bad input: exact status, a message naming the op and the tensor, every output,
 *      state, gradient and reserve byte untouched;
 *   5. explain mode, op registry.
 * GPU run (--gpu; exit 77 without a GPU): every variant of every op against the CPU
 *   reference on host copies of the same inputs, over the shape table, F32, F16,
 *   BF16; the reserve round trip between forward and backward variants.
 */
#include <inttypes.h>
#include <unistd.h>

#include "check.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];

static double round_to(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}

static void *xcalloc(int64_t n, size_t es) {
  void *p = calloc((size_t)(n > 0 ? n : 1), es);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}
static double *dalloc(int64_t n) { return xcalloc(n, sizeof(double)); }
static double *dcopy(const double *v, int64_t n) {
  double *r = dalloc(n);
  if (v) memcpy(r, v, (size_t)(n > 0 ? n : 0) * sizeof(double));
  return r;
}

/* ====================================================================================== */
/* Device tensors: a view inside one allocation on the context's device                  */
/* ====================================================================================== */

enum { LC = 0, LP = 1 }; /* contiguous; padded rows (last-dim stride 1, row stride +3) at offset 1 */

typedef struct tb {
  dlk_tensor t;    /* the view */
  dlk_tensor mem;  /* the whole allocation, 1-D U8 */
  int live;
} tb;

static int64_t t_numel(const dlk_tensor *t) {
  int64_t n = 1;
  for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
  return n;
}
static int64_t t_offset(const dlk_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int k = t->ndim - 1; k >= 0; k--) {
    off += (i % t->shape[k]) * t->strides[k];
    i /= t->shape[k];
  }
  return off;
}

/* A tensor of shape on ctx's device, its bytes 0xFF. */
static void tb_make(dlk_context *ctx, tb *b, dlk_dtype dt, int nd, const int64_t *shape, int layout) {
  memset(b, 0, sizeof *b);
  dlk_tensor *v = &b->t;
  v->dtype = dt;
  v->ndim = nd;
  int64_t s = 1, off = layout == LP ? 1 : 0;
  for (int k = nd - 1; k >= 0; k--) {
    v->shape[k] = shape[k];
    v->strides[k] = s;
    int64_t ext = shape[k] > 0 ? shape[k] : 1;
    s *= (layout == LP && k == nd - 1 && nd >= 2) ? ext + 3 : ext;
  }
  const size_t es = dlk_dtype_size(dt);
  int64_t span = off + 1;
  for (int k = 0; k < nd; k++) span += (shape[k] > 0 ? shape[k] - 1 : 0) * v->strides[k];
  int64_t bytes = (span + 2) * (int64_t)es;
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &b->mem, DLK_U8, 1, &bytes));
  CHECK_OK(ctx, dlk_context_device(ctx, &v->device));
  v->data = (char *)b->mem.data + off * (int64_t)es;
  b->live = 1;
  unsigned char *ff = xcalloc(bytes, 1);
  memset(ff, 0xFF, (size_t)bytes);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &b->mem, ff, (size_t)bytes));
  free(ff);
}

static unsigned char *tb_bytes(dlk_context *ctx, const tb *b) {
  unsigned char *h = xcalloc(b->mem.shape[0], 1);
  CHECK_OK(ctx, dlk_tensor_read(ctx, &b->mem, h, (size_t)b->mem.shape[0]));
  return h;
}

static void tb_write(dlk_context *ctx, tb *b, const double *vals) {
  unsigned char *h = tb_bytes(ctx, b);
  const int64_t off0 = ((char *)b->t.data - (char *)b->mem.data) / (int64_t)dlk_dtype_size(b->t.dtype);
  for (int64_t i = 0, n = t_numel(&b->t); i < n; i++)
    dlk_store(h, b->t.dtype, off0 + t_offset(&b->t, i), vals ? vals[i] : 0.0);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &b->mem, h, (size_t)b->mem.shape[0]));
  free(h);
}

static double *tb_read(dlk_context *ctx, const tb *b) {
  unsigned char *h = tb_bytes(ctx, b);
  const int64_t n = t_numel(&b->t), off0 = ((char *)b->t.data - (char *)b->mem.data) / (int64_t)dlk_dtype_size(b->t.dtype);
  double *v = dalloc(n);
  for (int64_t i = 0; i < n; i++) v[i] = dlk_load(h, b->t.dtype, off0 + t_offset(&b->t, i));
  free(h);
  return v;
}

/* Elements outside the view must still be 0xFF. */
static void tb_guard(dlk_context *ctx, const tb *b, const char *what) {
  unsigned char *h = tb_bytes(ctx, b);
  const size_t es = dlk_dtype_size(b->t.dtype);
  const int64_t n = t_numel(&b->t), off0 = ((char *)b->t.data - (char *)b->mem.data) / (int64_t)es;
  unsigned char *inview = xcalloc(b->mem.shape[0], 1);
  for (int64_t i = 0; i < n; i++) memset(inview + (off0 + t_offset(&b->t, i)) * (int64_t)es, 1, es);
  int64_t bad = 0;
  for (int64_t k = 0; k < b->mem.shape[0]; k++)
    if (!inview[k] && h[k] != 0xFF) bad++;
  CHECK(bad == 0, "%s: %lld bytes outside the view written", what, (long long)bad);
  free(inview);
  free(h);
}

static void tb_free(dlk_context *ctx, tb *b) {
  if (b->live) dlk_tensor_free(ctx, &b->mem);
  b->live = 0;
}

/* ====================================================================================== */
/* Problems: a model (weights as host doubles) and a call                                  */
/* ====================================================================================== */

#define MAXLD 8
enum { W_IH = 0, W_HH, B_IH, B_HH, W_HR, NW };
static const char *const wname[NW] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"};

typedef struct model {
  int mode, reset_before;
  int64_t I, H, P, L, D, G;
  int bias, proj;
  double *w[MAXLD][NW]; /* NULL: absent */
  int64_t rows[MAXLD][NW], cols[MAXLD][NW]; /* cols 0: 1-D */
} model;

static int64_t mgates(int mode) { return mode == DLK_RNN_LSTM ? 4 : mode == DLK_RNN_GRU ? 3 : 1; }

static void model_shapes(model *m) {
  m->G = mgates(m->mode);
  const int64_t GH = m->G * m->H;
  for (int64_t l = 0; l < m->L; l++)
    for (int64_t d = 0; d < m->D; d++) {
      int64_t k = l * m->D + d;
      m->rows[k][W_IH] = GH, m->cols[k][W_IH] = l == 0 ? m->I : m->D * m->P;
      m->rows[k][W_HH] = GH, m->cols[k][W_HH] = m->P;
      m->rows[k][B_IH] = GH, m->cols[k][B_IH] = 0;
      m->rows[k][B_HH] = GH, m->cols[k][B_HH] = 0;
      m->rows[k][W_HR] = m->P, m->cols[k][W_HR] = m->H;
    }
}
static int64_t wnumel(const model *m, int k, int j) { return m->rows[k][j] * (m->cols[k][j] ? m->cols[k][j] : 1); }
static int has_w(const model *m, int j) { return j == W_HR ? m->proj : (j == B_IH || j == B_HH) ? m->bias : 1; }

static void model_random(model *m, dlk_dtype dt, double scale) {
  model_shapes(m);
  for (int k = 0; k < m->L * m->D; k++)
    for (int j = 0; j < NW; j++) {
      m->w[k][j] = NULL;
      if (!has_w(m, j)) continue;
      int64_t n = wnumel(m, k, j);
      m->w[k][j] = dalloc(n);
      for (int64_t i = 0; i < n; i++) m->w[k][j][i] = round_to(dt, t_uniform(-scale, scale));
    }
}
static void model_free(model *m) {
  for (int k = 0; k < MAXLD; k++)
    for (int j = 0; j < NW; j++) free(m->w[k][j]), m->w[k][j] = NULL;
}

/* Weights on a device: tensors and the API arrays. */
typedef struct dweights {
  tb t[MAXLD][NW];
  dlk_rnn_weights w[MAXLD];
  tb g[MAXLD][NW];
  dlk_rnn_grads gr[MAXLD];
  int ngrad;
} dweights;

static void wshape(const model *m, int k, int j, int *nd, int64_t *sh) {
  sh[0] = m->rows[k][j], sh[1] = m->cols[k][j];
  *nd = m->cols[k][j] ? 2 : 1;
}

/* grads: 0 none, 1 zero-initialised gradient tensors, 2 initialised to `ginit` values. */
static void dw_make(dlk_context *ctx, dweights *dw, const model *m, dlk_dtype dt, int layout, int grads,
                    double *const ginit[MAXLD][NW]) {
  memset(dw, 0, sizeof *dw);
  for (int k = 0; k < m->L * m->D; k++) {
    const dlk_tensor *p[NW] = {0};
    for (int j = 0; j < NW; j++) {
      if (!m->w[k][j]) continue;
      int nd;
      int64_t sh[2];
      wshape(m, k, j, &nd, sh);
      tb_make(ctx, &dw->t[k][j], dt, nd, sh, layout);
      tb_write(ctx, &dw->t[k][j], m->w[k][j]);
      p[j] = &dw->t[k][j].t;
      if (grads) {
        tb_make(ctx, &dw->g[k][j], dt, nd, sh, layout);
        tb_write(ctx, &dw->g[k][j], grads == 2 ? ginit[k][j] : NULL);
      }
    }
    dw->w[k] = (dlk_rnn_weights){p[W_IH], p[W_HH], p[B_IH], p[B_HH], p[W_HR]};
    if (grads) {
      dlk_tensor *g[NW] = {0};
      for (int j = 0; j < NW; j++) g[j] = dw->g[k][j].live ? &dw->g[k][j].t : NULL;
      dw->gr[k] = (dlk_rnn_grads){g[W_IH], g[W_HH], g[B_IH], g[B_HH], g[W_HR]};
    }
  }
  dw->ngrad = grads;
}

static void dw_free(dlk_context *ctx, dweights *dw) {
  for (int k = 0; k < MAXLD; k++)
    for (int j = 0; j < NW; j++) tb_free(ctx, &dw->t[k][j]), tb_free(ctx, &dw->g[k][j]);
}

/* A sequence call. */
typedef struct seqp {
  model m;
  int64_t T, B;
  int batch_first;
  int64_t lens[64];
  int has_lens, lens_i32;
  double dropout;
  uint64_t seed;
  int has_h0, has_c0;
  double *x, *h0, *c0, *dy, *dhn, *dcn; /* dy etc. NULL: not given */
} seqp;

typedef struct seqres {
  double *y, *hn, *cn, *dx, *dh0, *dc0;
  double *g[MAXLD][NW];
} seqres;

static void res_free(seqres *r) {
  free(r->y), free(r->hn), free(r->cn), free(r->dx), free(r->dh0), free(r->dc0);
  for (int k = 0; k < MAXLD; k++)
    for (int j = 0; j < NW; j++) free(r->g[k][j]);
  memset(r, 0, sizeof *r);
}

static int64_t xcount(const seqp *s) { return s->T * s->B * s->m.I; }
static int64_t ycount(const seqp *s) { return s->T * s->B * s->m.D * s->m.P; }
static int64_t hcount(const seqp *s) { return s->m.L * s->m.D * s->B * s->m.P; }
static int64_t ccount(const seqp *s) { return s->m.L * s->m.D * s->B * s->m.H; }
/* host arrays are in the call's layout (batch_first: [B, T, .]) */
static void seq_shape(const seqp *s, int64_t last, int64_t *sh) {
  sh[0] = s->batch_first ? s->B : s->T;
  sh[1] = s->batch_first ? s->T : s->B;
  sh[2] = last;
}

static dlk_rnn_params seq_params(const seqp *s, int training) {
  dlk_rnn_params p;
  memset(&p, 0, sizeof p);
  p.mode = (dlk_rnn_mode)s->m.mode;
  p.hidden_size = s->m.H;
  p.proj_size = s->m.proj ? s->m.P : 0;
  p.num_layers = (int)s->m.L;
  p.bidirectional = s->m.D == 2;
  p.batch_first = s->batch_first;
  p.gru_reset_before = s->m.reset_before;
  p.dropout = s->dropout;
  p.seed = s->seed;
  p.training = training;
  return p;
}

/* Run the forward, and the backward when `backward` is 1 (2: a training forward only,
   so dropout is on), on ctx; results as host doubles. Gradients accumulate into tensors initialised from ginit (NULL: zeros).
   Returns the first failing status. */
static dlk_status run_seq(dlk_context *ctx, const seqp *s, dlk_dtype dt, int layout, int backward,
                          double *const ginit[MAXLD][NW], seqres *out) {
  memset(out, 0, sizeof *out);
  const model *m = &s->m;
  dweights dw;
  const int training = backward != 0;
  if (backward == 2) backward = 0;
  dw_make(ctx, &dw, m, dt, layout, backward ? (ginit ? 2 : 1) : 0, ginit);
  int64_t sx[3], sy[3], sh[3] = {m->L * m->D, s->B, m->P}, sc[3] = {m->L * m->D, s->B, m->H};
  seq_shape(s, m->I, sx);
  seq_shape(s, m->D * m->P, sy);
  tb x, y, h0, c0, hn, cn, lens, res, dy, dhn, dcn, dx, dh0, dc0;
  memset(&lens, 0, sizeof lens), memset(&res, 0, sizeof res);
  tb_make(ctx, &x, dt, 3, sx, layout);
  tb_write(ctx, &x, s->x);
  tb_make(ctx, &y, dt, 3, sy, layout);
  tb_make(ctx, &hn, dt, 3, sh, layout);
  memset(&h0, 0, sizeof h0), memset(&c0, 0, sizeof c0), memset(&cn, 0, sizeof cn);
  if (s->has_h0) tb_make(ctx, &h0, dt, 3, sh, layout), tb_write(ctx, &h0, s->h0);
  const int lstm = m->mode == DLK_RNN_LSTM;
  if (lstm) {
    tb_make(ctx, &cn, dt, 3, sc, layout);
    if (s->has_c0) tb_make(ctx, &c0, dt, 3, sc, layout), tb_write(ctx, &c0, s->c0);
  }
  /* lengths on the host (a CUDA context takes them there too) */
  dlk_tensor lt;
  int64_t l64[64];
  int32_t l32[64];
  if (s->has_lens) {
    for (int64_t b = 0; b < s->B; b++) l64[b] = s->lens[b], l32[b] = (int32_t)s->lens[b];
    CHECK_OK(ctx, dlk_tensor_init(ctx, &lt, s->lens_i32 ? (void *)l32 : (void *)l64, s->lens_i32 ? DLK_I32 : DLK_I64,
                                  (dlk_device){DLK_CPU, 0}, 1, &s->B));
  }
  dlk_rnn_params p = seq_params(s, training);
  dlk_status st = DLK_OK;
  if (training) {
    size_t bytes = 0;
    st = dlk_rnn_reserve_size(ctx, &p, &x.t, &bytes);
    int64_t nb = (int64_t)bytes;
    if (st == DLK_OK) {
      CHECK_OK(ctx, dlk_tensor_alloc(ctx, &res.mem, DLK_U8, 1, &nb));
      res.t = res.mem, res.live = 1;
    }
  }
  if (st == DLK_OK)
    st = dlk_rnn_forward(ctx, &p, dw.w, &x.t, s->has_lens ? &lt : NULL, s->has_h0 ? &h0.t : NULL,
                         s->has_c0 && lstm ? &c0.t : NULL, &y.t, &hn.t, lstm ? &cn.t : NULL, training ? &res.t : NULL);
  if (st == DLK_OK) {
    tb_guard(ctx, &y, "y");
    out->y = tb_read(ctx, &y);
    out->hn = tb_read(ctx, &hn);
    if (lstm) out->cn = tb_read(ctx, &cn);
  }
  memset(&dy, 0, sizeof dy), memset(&dhn, 0, sizeof dhn), memset(&dcn, 0, sizeof dcn);
  memset(&dx, 0, sizeof dx), memset(&dh0, 0, sizeof dh0), memset(&dc0, 0, sizeof dc0);
  if (st == DLK_OK && backward) {
    if (s->dy) tb_make(ctx, &dy, dt, 3, sy, layout), tb_write(ctx, &dy, s->dy);
    if (s->dhn) tb_make(ctx, &dhn, dt, 3, sh, layout), tb_write(ctx, &dhn, s->dhn);
    if (s->dcn && lstm) tb_make(ctx, &dcn, dt, 3, sc, layout), tb_write(ctx, &dcn, s->dcn);
    tb_make(ctx, &dx, dt, 3, sx, layout);
    tb_make(ctx, &dh0, dt, 3, sh, layout);
    if (lstm) tb_make(ctx, &dc0, dt, 3, sc, layout);
    st = dlk_rnn_backward(ctx, &p, dw.w, &x.t, s->has_lens ? &lt : NULL, s->has_h0 ? &h0.t : NULL,
                          s->has_c0 && lstm ? &c0.t : NULL, &y.t, &res.t, s->dy ? &dy.t : NULL,
                          s->dhn ? &dhn.t : NULL, s->dcn && lstm ? &dcn.t : NULL, &dx.t, &dh0.t,
                          lstm ? &dc0.t : NULL, dw.gr);
    if (st == DLK_OK) {
      tb_guard(ctx, &dx, "dx");
      out->dx = tb_read(ctx, &dx);
      out->dh0 = tb_read(ctx, &dh0);
      if (lstm) out->dc0 = tb_read(ctx, &dc0);
      for (int k = 0; k < m->L * m->D; k++)
        for (int j = 0; j < NW; j++)
          if (dw.g[k][j].live) out->g[k][j] = tb_read(ctx, &dw.g[k][j]);
    }
  }
  tb *all[] = {&x, &y, &h0, &c0, &hn, &cn, &res, &dy, &dhn, &dcn, &dx, &dh0, &dc0};
  for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
  dw_free(ctx, &dw);
  return st;
}

/* A cell call. */
typedef struct cellp {
  model m; /* L = D = 1 */
  int64_t B;
  int has_h, has_c;
  double *x, *h, *c, *dh, *dc;
} cellp;

typedef struct cellres {
  double *h, *c, *saved, *dx, *dh, *dc;
  double *g[NW];
} cellres;

static void cres_free(cellres *r) {
  free(r->h), free(r->c), free(r->saved), free(r->dx), free(r->dh), free(r->dc);
  for (int j = 0; j < NW; j++) free(r->g[j]);
  memset(r, 0, sizeof *r);
}

static dlk_status run_cell(dlk_context *ctx, const cellp *cp, dlk_dtype dt, int layout, int backward, cellres *out) {
  memset(out, 0, sizeof *out);
  const model *m = &cp->m;
  dweights dw;
  dw_make(ctx, &dw, m, dt, layout, backward, NULL);
  const int lstm = m->mode == DLK_RNN_LSTM;
  const int64_t S = dlk_rnn_cell_saved_cols((dlk_rnn_mode)m->mode, m->H);
  int64_t sx[2] = {cp->B, m->I}, sh[2] = {cp->B, m->P}, sc[2] = {cp->B, m->H}, ss[2] = {cp->B, S};
  tb x, h, c, ho, co, sv, dho, dco, dx, dh, dc;
  memset(&h, 0, sizeof h), memset(&c, 0, sizeof c), memset(&co, 0, sizeof co);
  memset(&dho, 0, sizeof dho), memset(&dco, 0, sizeof dco), memset(&dx, 0, sizeof dx);
  memset(&dh, 0, sizeof dh), memset(&dc, 0, sizeof dc);
  tb_make(ctx, &x, dt, 2, sx, layout), tb_write(ctx, &x, cp->x);
  if (cp->has_h) tb_make(ctx, &h, dt, 2, sh, layout), tb_write(ctx, &h, cp->h);
  if (cp->has_c && lstm) tb_make(ctx, &c, dt, 2, sc, layout), tb_write(ctx, &c, cp->c);
  tb_make(ctx, &ho, dt, 2, sh, layout);
  if (lstm) tb_make(ctx, &co, dt, 2, sc, layout);
  tb_make(ctx, &sv, dt, 2, ss, layout);
  dlk_rnn_cell_params p = {(dlk_rnn_mode)m->mode, m->reset_before};
  dlk_status st = dlk_rnn_cell_forward(ctx, &p, &dw.w[0], &x.t, cp->has_h ? &h.t : NULL,
                                       cp->has_c && lstm ? &c.t : NULL, &ho.t, lstm ? &co.t : NULL, &sv.t);
  if (st == DLK_OK) {
    tb_guard(ctx, &ho, "h_out");
    out->h = tb_read(ctx, &ho);
    if (lstm) out->c = tb_read(ctx, &co);
    out->saved = tb_read(ctx, &sv);
  }
  if (st == DLK_OK && backward) {
    if (cp->dh) tb_make(ctx, &dho, dt, 2, sh, layout), tb_write(ctx, &dho, cp->dh);
    if (cp->dc && lstm) tb_make(ctx, &dco, dt, 2, sc, layout), tb_write(ctx, &dco, cp->dc);
    tb_make(ctx, &dx, dt, 2, sx, layout);
    tb_make(ctx, &dh, dt, 2, sh, layout);
    if (lstm) tb_make(ctx, &dc, dt, 2, sc, layout);
    st = dlk_rnn_cell_backward(ctx, &p, &dw.w[0], &x.t, cp->has_h ? &h.t : NULL, cp->has_c && lstm ? &c.t : NULL,
                               &sv.t, cp->dh ? &dho.t : NULL, cp->dc && lstm ? &dco.t : NULL, &dx.t, &dh.t,
                               lstm ? &dc.t : NULL, &dw.gr[0]);
    if (st == DLK_OK) {
      out->dx = tb_read(ctx, &dx);
      out->dh = tb_read(ctx, &dh);
      if (lstm) out->dc = tb_read(ctx, &dc);
      for (int j = 0; j < NW; j++)
        if (dw.g[0][j].live) out->g[j] = tb_read(ctx, &dw.g[0][j]);
    }
  }
  tb *all[] = {&x, &h, &c, &ho, &co, &sv, &dho, &dco, &dx, &dh, &dc};
  for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
  dw_free(ctx, &dw);
  return st;
}

/* ====================================================================================== */
/* 1. Golden fixtures                                                                      */
/* ====================================================================================== */

typedef struct {
  char name[40];
  int out;
  dlk_dtype dt;
  int ndim;
  int64_t shape[DLK_MAX_DIMS];
  int64_t n;
  double *v;
} gtensor;

typedef struct {
  char name[96], op[32];
  char pkey[16][24], pval[16][40];
  int np;
  gtensor t[64];
  int nt;
} gcase;

static int parse_dtype(const char *s, dlk_dtype *dt) {
  static const char *const names[] = {"f32", "f16", "bf16", "f64", "i32", "i64"};
  for (int i = 0; i < N_OF(names); i++)
    if (strcmp(s, names[i]) == 0) return *dt = (dlk_dtype)i, 1;
  return 0;
}
static int64_t g_i64(const gcase *c, const char *key) {
  for (int i = 0; i < c->np; i++)
    if (strcmp(c->pkey[i], key) == 0) return strtoll(c->pval[i], NULL, 10);
  CHECK(0, "golden %s: no param %s", c->name, key);
  return 0;
}
static gtensor *g_find(gcase *c, const char *name, int out) {
  for (int i = 0; i < c->nt; i++)
    if (c->t[i].out == out && strcmp(c->t[i].name, name) == 0) return &c->t[i];
  return NULL;
}
static void g_free(gcase *c) {
  for (int i = 0; i < c->nt; i++) free(c->t[i].v);
  c->nt = 0;
}

typedef struct {
  char *buf, *p;
} gtok;
static char *g_next(gtok *t) {
  for (;;) {
    while (*t->p == ' ' || *t->p == '\n' || *t->p == '\t' || *t->p == '\r') t->p++;
    if (*t->p == '#') {
      while (*t->p && *t->p != '\n') t->p++;
      continue;
    }
    break;
  }
  if (!*t->p) return NULL;
  char *s = t->p;
  while (*t->p && *t->p != ' ' && *t->p != '\n' && *t->p != '\t' && *t->p != '\r') t->p++;
  if (*t->p) *t->p++ = '\0';
  return s;
}

/* The next case: 1, 0 at the end, -1 on a format error. */
static int g_read_case(gtok *tk, gcase *c) {
  memset(c, 0, sizeof *c);
  char *w = g_next(tk);
  if (!w) return 0;
  if (strcmp(w, "case") != 0) return -1;
  char *name = g_next(tk), *op = g_next(tk);
  if (!name || !op) return -1;
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->op, sizeof c->op, "%s", op);
  while ((w = g_next(tk)) != NULL) {
    if (strcmp(w, "end") == 0) return 1;
    if (strcmp(w, "param") == 0) {
      char *k = g_next(tk), *v = g_next(tk);
      if (!k || !v || c->np >= 16) return -1;
      snprintf(c->pkey[c->np], sizeof c->pkey[0], "%s", k);
      snprintf(c->pval[c->np], sizeof c->pval[0], "%s", v);
      c->np++;
    } else if (strcmp(w, "in") == 0 || strcmp(w, "out") == 0) {
      if (c->nt >= N_OF(c->t)) return -1;
      gtensor *t = &c->t[c->nt++];
      t->out = w[0] == 'o';
      char *tn = g_next(tk), *ds = g_next(tk), *nd = g_next(tk);
      if (!tn || !ds || !nd || !parse_dtype(ds, &t->dt)) return -1;
      snprintf(t->name, sizeof t->name, "%s", tn);
      t->ndim = atoi(nd);
      if (t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return -1;
      t->n = 1;
      for (int k = 0; k < t->ndim; k++) {
        char *d = g_next(tk);
        if (!d) return -1;
        t->shape[k] = strtoll(d, NULL, 10);
        t->n *= t->shape[k];
      }
      t->v = dalloc(t->n);
      for (int64_t i = 0; i < t->n; i++) {
        char *d = g_next(tk);
        if (!d) return -1;
        double x = strtod(d, NULL);
        t->v[i] = (t->dt == DLK_I32 || t->dt == DLK_I64) ? x : round_to(t->dt, x);
      }
    } else {
      return -1;
    }
  }
  return -1;
}

static const double *g_vals(gcase *c, const char *name, int out) {
  gtensor *g = g_find(c, name, out);
  return g ? g->v : NULL;
}

static void g_cmp(gcase *c, const char *name, const char *what, const double *got, int layout) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g && got, "golden %s: output %s missing", c->name, name);
  if (!g || !got) return;
  double atol, rtol;
  t_tolerance(g->dt, 0, &atol, &rtol);
  char w[200];
  snprintf(w, sizeof w, "golden %s (%s): %s", c->name, layout == LC ? "contiguous" : "padded", what);
  t_close(w, got, g->v, g->n, atol, rtol);
}

/* The model of a golden case from its state-dict tensors ("weight_ih_l0_reverse", or
   "weight_ih" for a cell). */
static void g_model(gcase *c, model *m, int cell) {
  for (int64_t l = 0; l < m->L; l++)
    for (int64_t d = 0; d < m->D; d++)
      for (int j = 0; j < NW; j++) {
        char n[64];
        if (cell)
          snprintf(n, sizeof n, "%s", wname[j]);
        else
          snprintf(n, sizeof n, "%s_l%lld%s", wname[j], (long long)l, d ? "_reverse" : "");
        const double *v = g_vals(c, n, 0);
        m->w[l * m->D + d][j] = v ? dcopy(v, g_find(c, n, 0)->n) : NULL;
      }
  model_shapes(m);
}

static void golden_cell(dlk_context *ctx, gcase *c, int layout) {
  cellp cp;
  memset(&cp, 0, sizeof cp);
  gtensor *gx = g_find(c, "x", 0), *gw = g_find(c, "weight_ih", 0);
  model *m = &cp.m;
  m->mode = (int)g_i64(c, "mode");
  m->reset_before = (int)g_i64(c, "reset_before");
  m->G = mgates(m->mode);
  m->I = gx->shape[1], m->H = gw->shape[0] / m->G, m->P = m->H, m->L = m->D = 1;
  m->bias = g_find(c, "bias_ih", 0) != NULL;
  g_model(c, m, 1);
  cp.B = gx->shape[0];
  cp.x = gx->v;
  cp.has_h = g_find(c, "h", 0) != NULL, cp.h = (double *)g_vals(c, "h", 0);
  cp.has_c = g_find(c, "c", 0) != NULL, cp.c = (double *)g_vals(c, "c", 0);
  cp.dh = (double *)g_vals(c, "dh", 0), cp.dc = (double *)g_vals(c, "dc", 0);
  cellres r;
  CHECK_OK(ctx, run_cell(ctx, &cp, gx->dt, layout, 1, &r));
  g_cmp(c, "h_out", "h_out", r.h, layout);
  if (m->mode == DLK_RNN_LSTM) g_cmp(c, "c_out", "c_out", r.c, layout);
  g_cmp(c, "dx", "dx", r.dx, layout);
  if (cp.has_h) g_cmp(c, "dh_in", "dh", r.dh, layout);
  if (cp.has_c) g_cmp(c, "dc_in", "dc", r.dc, layout);
  for (int j = 0; j < NW; j++) {
    char n[64];
    snprintf(n, sizeof n, "grad_%s", wname[j]);
    if (g_find(c, n, 1)) g_cmp(c, n, n, r.g[j], layout);
  }
  cres_free(&r);
  model_free(m);
}

static void golden_seq(dlk_context *ctx, gcase *c, int layout) {
  seqp s;
  memset(&s, 0, sizeof s);
  model *m = &s.m;
  gtensor *gx = g_find(c, "x", 0);
  m->mode = (int)g_i64(c, "mode");
  m->reset_before = (int)g_i64(c, "reset_before");
  m->H = g_i64(c, "hidden");
  int64_t proj = g_i64(c, "proj");
  m->proj = proj > 0;
  m->P = proj > 0 ? proj : m->H;
  m->L = g_i64(c, "layers");
  m->D = g_i64(c, "bidir") ? 2 : 1;
  m->bias = g_find(c, "bias_ih_l0", 0) != NULL;
  s.batch_first = (int)g_i64(c, "batch_first");
  m->I = gx->shape[2];
  s.T = gx->shape[s.batch_first ? 1 : 0], s.B = gx->shape[s.batch_first ? 0 : 1];
  g_model(c, m, 0);
  s.x = gx->v;
  gtensor *gl = g_find(c, "lengths", 0);
  if (gl) {
    s.has_lens = 1;
    s.lens_i32 = layout == LP; /* both index dtypes */
    for (int64_t b = 0; b < s.B; b++) s.lens[b] = (int64_t)gl->v[b];
  }
  s.has_h0 = g_find(c, "h0", 0) != NULL, s.h0 = (double *)g_vals(c, "h0", 0);
  s.has_c0 = g_find(c, "c0", 0) != NULL, s.c0 = (double *)g_vals(c, "c0", 0);
  const int bwd = (int)g_i64(c, "backward");
  s.dy = (double *)g_vals(c, "dy", 0), s.dhn = (double *)g_vals(c, "dhn", 0), s.dcn = (double *)g_vals(c, "dcn", 0);
  seqres r;
  CHECK_OK(ctx, run_seq(ctx, &s, gx->dt, layout, bwd, NULL, &r));
  g_cmp(c, "y", "y", r.y, layout);
  g_cmp(c, "hn", "hn", r.hn, layout);
  if (m->mode == DLK_RNN_LSTM) g_cmp(c, "cn", "cn", r.cn, layout);
  if (bwd) {
    g_cmp(c, "dx", "dx", r.dx, layout);
    if (s.has_h0) g_cmp(c, "dh0", "dh0", r.dh0, layout);
    if (s.has_c0) g_cmp(c, "dc0", "dc0", r.dc0, layout);
    for (int64_t l = 0; l < m->L; l++)
      for (int64_t d = 0; d < m->D; d++)
        for (int j = 0; j < NW; j++) {
          char n[64];
          snprintf(n, sizeof n, "grad_%s_l%lld%s", wname[j], (long long)l, d ? "_reverse" : "");
          if (g_find(c, n, 1)) g_cmp(c, n, n, r.g[l * m->D + d][j], layout);
        }
  }
  res_free(&r);
  model_free(m);
}

/* Keras: import, compare the PyTorch layout, then run the sequence and compare with the
   Keras layer's output. */
static void golden_keras(dlk_context *ctx, gcase *c, int layout) {
  const int mode = (int)g_i64(c, "mode"), reset_after = (int)g_i64(c, "reset_after");
  gtensor *gk = g_find(c, "kernel", 0), *grk = g_find(c, "recurrent_kernel", 0), *gb = g_find(c, "bias", 0);
  gtensor *gx = g_find(c, "x", 0);
  const dlk_dtype dt = gk->dt;
  const int64_t G = mgates(mode), I = gk->shape[0], H = gk->shape[1] / G;
  tb k, rk, b, wih, whh, bih, bhh;
  memset(&b, 0, sizeof b);
  tb_make(ctx, &k, dt, 2, gk->shape, layout), tb_write(ctx, &k, gk->v);
  tb_make(ctx, &rk, dt, 2, grk->shape, layout), tb_write(ctx, &rk, grk->v);
  if (gb) tb_make(ctx, &b, dt, gb->ndim, gb->shape, layout), tb_write(ctx, &b, gb->v);
  int64_t swi[2] = {G * H, I}, swh[2] = {G * H, H}, sb[1] = {G * H};
  tb_make(ctx, &wih, dt, 2, swi, layout);
  tb_make(ctx, &whh, dt, 2, swh, layout);
  tb_make(ctx, &bih, dt, 1, sb, layout);
  tb_make(ctx, &bhh, dt, 1, sb, layout);
  CHECK_OK(ctx, dlk_rnn_weights_from_keras(ctx, (dlk_rnn_mode)mode, &k.t, &rk.t, gb ? &b.t : NULL, &wih.t, &whh.t,
                                           &bih.t, &bhh.t));
  double *v[4] = {tb_read(ctx, &wih), tb_read(ctx, &whh), tb_read(ctx, &bih), tb_read(ctx, &bhh)};
  static const char *const on[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
  for (int i = 0; i < 4; i++) {
    gtensor *e = g_find(c, on[i], 1);
    int same = e && memcmp(v[i], e->v, (size_t)e->n * sizeof(double)) == 0;
    CHECK(same, "golden %s: %s differs from the documented mapping", c->name, on[i]);
  }
  /* The Keras layer through dlk: batch_first, zero initial state. */
  seqp s;
  memset(&s, 0, sizeof s);
  s.m.mode = mode, s.m.reset_before = mode == DLK_RNN_GRU && !reset_after;
  s.m.I = I, s.m.H = H, s.m.P = H, s.m.L = 1, s.m.D = 1, s.m.bias = 1;
  model_shapes(&s.m);
  for (int i = 0; i < 4; i++) s.m.w[0][i] = v[i];
  s.batch_first = 1;
  s.B = gx->shape[0], s.T = gx->shape[1];
  s.x = gx->v;
  seqres r;
  CHECK_OK(ctx, run_seq(ctx, &s, dt, layout, 0, NULL, &r));
  g_cmp(c, "y", "Keras layer output", r.y, layout);
  g_cmp(c, "hn", "Keras final state", r.hn, layout);
  res_free(&r);
  model_free(&s.m);
  tb *all[] = {&k, &rk, &b, &wih, &whh, &bih, &bhh};
  for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = xcalloc(n + 1, 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

static void golden_file(dlk_context *ctx, const char *file, int half_ok) {
  char path[1024];
  const char *src = getenv("DLK_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/golden/rnn/%s", src ? src : ".", file);
  char *buf = read_text(path);
  CHECK(buf != NULL, "cannot read %s", path);
  if (!buf) return;
  gtok tk = {buf, buf};
  gcase *c = xcalloc(1, sizeof *c);
  int n = 0, r;
  while ((r = g_read_case(&tk, c)) == 1) {
    n++;
    dlk_dtype dt = c->t[0].dt;
    if ((dt == DLK_F16 || dt == DLK_BF16) && !half_ok) {
      g_free(c);
      continue;
    }
    for (int layout = LC; layout <= LP; layout++) {
      snprintf(t_case_buf, sizeof t_case_buf, "golden %s", c->name);
      t_case = t_case_buf;
      if (strcmp(c->op, "rnn_cell") == 0)
        golden_cell(ctx, c, layout);
      else if (strcmp(c->op, "rnn_seq") == 0)
        golden_seq(ctx, c, layout);
      else if (strcmp(c->op, "keras") == 0)
        golden_keras(ctx, c, layout);
      else
        CHECK(0, "unknown golden op %s", c->op);
    }
    g_free(c);
  }
  CHECK(r == 0, "%s: format error after %d cases", path, n);
  CHECK(n > 0, "%s: no cases", path);
  free(c);
  free(buf);
  t_case = "";
}

static void test_golden(dlk_context *ctx, int half_ok) {
  golden_file(ctx, "cell.txt", half_ok);
  golden_file(ctx, "seq.txt", half_ok);
  golden_file(ctx, "keras.txt", half_ok);
}

/* ====================================================================================== */
/* 2. Finite differences (f64, CPU reference)                                              */
/* ====================================================================================== */

static void fill(double *v, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) v[i] = t_uniform(lo, hi);
}

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  if (a && b)
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* loss = <y, dy> + <hn, dhn> + <cn, dcn> of a forward. */
static double seq_loss(dlk_context *ctx, const seqp *s) {
  seqres r;
  dlk_status st = run_seq(ctx, s, DLK_F64, LC, s->dropout > 0 ? 2 : 0, NULL, &r);
  CHECK(st == DLK_OK, "fd forward: %s", dlk_context_last_error(ctx));
  double v = dot(r.y, s->dy, ycount(s)) + dot(r.hn, s->dhn, hcount(s)) + dot(r.cn, s->dcn, ccount(s));
  res_free(&r);
  return v;
}

/* Central differences of every element of v against the analytical gradient g. */
static void fd_vec(const char *what, dlk_context *ctx, seqp *s, double *v, int64_t n, const double *g) {
  const double eps = 1e-6;
  int64_t bad = 0, worst = -1;
  double worst_err = 0;
  for (int64_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + eps;
    double lp = seq_loss(ctx, s);
    v[i] = keep - eps;
    double lm = seq_loss(ctx, s);
    v[i] = keep;
    double num = (lp - lm) / (2 * eps), err = fabs(num - g[i]);
    if (err > 1e-6 + 1e-5 * fabs(num)) {
      bad++;
      if (err > worst_err) worst_err = err, worst = i;
    }
  }
  CHECK(bad == 0, "fd %s: %lld of %lld off, worst [%lld] analytic %.10g numeric err %.3g", what, (long long)bad,
        (long long)n, (long long)worst, worst >= 0 ? g[worst] : 0.0, worst_err);
}

static void fd_seq(dlk_context *ctx, const char *name, seqp *s) {
  snprintf(t_case_buf, sizeof t_case_buf, "fd %s", name);
  t_case = t_case_buf;
  const model *m = &s->m;
  s->x = dalloc(xcount(s)), fill(s->x, xcount(s), -1, 1);
  s->h0 = dalloc(hcount(s)), fill(s->h0, hcount(s), -0.5, 0.5);
  s->c0 = dalloc(ccount(s)), fill(s->c0, ccount(s), -0.5, 0.5);
  s->dy = dalloc(ycount(s)), fill(s->dy, ycount(s), -1, 1);
  s->dhn = dalloc(hcount(s)), fill(s->dhn, hcount(s), -1, 1);
  s->dcn = m->mode == DLK_RNN_LSTM ? dalloc(ccount(s)) : NULL;
  if (s->dcn) fill(s->dcn, ccount(s), -1, 1);
  s->has_h0 = s->has_c0 = 1;
  seqres r;
  CHECK_OK(ctx, run_seq(ctx, s, DLK_F64, LC, 1, NULL, &r));
  if (r.dx) {
    fd_vec("dx", ctx, s, s->x, xcount(s), r.dx);
    fd_vec("dh0", ctx, s, s->h0, hcount(s), r.dh0);
    if (m->mode == DLK_RNN_LSTM) fd_vec("dc0", ctx, s, s->c0, ccount(s), r.dc0);
    for (int k = 0; k < m->L * m->D; k++)
      for (int j = 0; j < NW; j++)
        if (s->m.w[k][j]) {
          char w[64];
          snprintf(w, sizeof w, "weights[%d].%s", k, wname[j]);
          fd_vec(w, ctx, s, s->m.w[k][j], wnumel(m, k, j), r.g[k][j]);
        }
    /* past a sequence's end dx is exactly 0 */
    if (s->has_lens)
      for (int64_t t = 0; t < s->T; t++)
        for (int64_t b = 0; b < s->B; b++)
          if (t >= s->lens[b])
            for (int64_t i = 0; i < m->I; i++) {
              int64_t at = s->batch_first ? (b * s->T + t) * m->I + i : (t * s->B + b) * m->I + i;
              CHECK(r.dx[at] == 0.0, "dx[t=%lld, b=%lld] = %g past the end", (long long)t, (long long)b, r.dx[at]);
            }
  }
  /* gradients accumulate: a second backward onto the first's gradients gives twice them */
  seqres r2;
  double *init[MAXLD][NW];
  for (int k = 0; k < MAXLD; k++)
    for (int j = 0; j < NW; j++) init[k][j] = r.g[k][j];
  CHECK_OK(ctx, run_seq(ctx, s, DLK_F64, LC, 1, init, &r2));
  for (int k = 0; k < m->L * m->D; k++)
    for (int j = 0; j < NW; j++)
      if (r.g[k][j] && r2.g[k][j]) {
        double *twice = dalloc(wnumel(m, k, j));
        for (int64_t i = 0; i < wnumel(m, k, j); i++) twice[i] = 2 * r.g[k][j][i];
        t_close("accumulated gradient", r2.g[k][j], twice, wnumel(m, k, j), 1e-12, 1e-12);
        free(twice);
      }
  res_free(&r2);
  res_free(&r);
  free(s->x), free(s->h0), free(s->c0), free(s->dy), free(s->dhn), free(s->dcn);
  model_free(&s->m);
  t_case = "";
}

/* A cell through the sequence machinery would hide cell bugs: the cell's own FD. */
static double cell_loss(dlk_context *ctx, const cellp *cp) {
  cellres r;
  dlk_status st = run_cell(ctx, cp, DLK_F64, LC, 0, &r);
  CHECK(st == DLK_OK, "fd cell forward: %s", dlk_context_last_error(ctx));
  double v = dot(r.h, cp->dh, cp->B * cp->m.P) + dot(r.c, cp->dc, cp->B * cp->m.H);
  cres_free(&r);
  return v;
}

static void fd_cell_vec(const char *what, dlk_context *ctx, cellp *cp, double *v, int64_t n, const double *g) {
  const double eps = 1e-6;
  int64_t bad = 0, worst = -1;
  double worst_err = 0;
  for (int64_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + eps;
    double lp = cell_loss(ctx, cp);
    v[i] = keep - eps;
    double lm = cell_loss(ctx, cp);
    v[i] = keep;
    double num = (lp - lm) / (2 * eps), err = fabs(num - g[i]);
    if (err > 1e-7 + 1e-6 * fabs(num)) {
      bad++;
      if (err > worst_err) worst_err = err, worst = i;
    }
  }
  CHECK(bad == 0, "fd cell %s: %lld of %lld off, worst [%lld] analytic %.10g err %.3g", what, (long long)bad,
        (long long)n, (long long)worst, worst >= 0 ? g[worst] : 0.0, worst_err);
}

static void fd_cell(dlk_context *ctx, const char *name, int mode, int reset_before, int proj, int bias, int states) {
  snprintf(t_case_buf, sizeof t_case_buf, "fd cell %s", name);
  t_case = t_case_buf;
  cellp cp;
  memset(&cp, 0, sizeof cp);
  model *m = &cp.m;
  m->mode = mode, m->reset_before = reset_before;
  m->I = 3, m->H = 4, m->P = proj ? 2 : 4, m->L = m->D = 1, m->bias = bias, m->proj = proj;
  model_random(m, DLK_F64, 0.8);
  cp.B = 3;
  cp.has_h = cp.has_c = states;
  cp.x = dalloc(cp.B * m->I), fill(cp.x, cp.B * m->I, -1, 1);
  cp.h = dalloc(cp.B * m->P), fill(cp.h, cp.B * m->P, -0.7, 0.7);
  cp.c = dalloc(cp.B * m->H), fill(cp.c, cp.B * m->H, -0.7, 0.7);
  cp.dh = dalloc(cp.B * m->P), fill(cp.dh, cp.B * m->P, -1, 1);
  cp.dc = mode == DLK_RNN_LSTM ? dalloc(cp.B * m->H) : NULL;
  if (cp.dc) fill(cp.dc, cp.B * m->H, -1, 1);
  cellres r;
  CHECK_OK(ctx, run_cell(ctx, &cp, DLK_F64, LC, 1, &r));
  if (r.dx) {
    fd_cell_vec("dx", ctx, &cp, cp.x, cp.B * m->I, r.dx);
    if (states) fd_cell_vec("dh", ctx, &cp, cp.h, cp.B * m->P, r.dh);
    if (states && mode == DLK_RNN_LSTM) fd_cell_vec("dc", ctx, &cp, cp.c, cp.B * m->H, r.dc);
    for (int j = 0; j < NW; j++)
      if (m->w[0][j]) fd_cell_vec(wname[j], ctx, &cp, m->w[0][j], wnumel(m, 0, j), r.g[j]);
  }
  cres_free(&r);
  free(cp.x), free(cp.h), free(cp.c), free(cp.dh), free(cp.dc);
  model_free(m);
  t_case = "";
}

static void seq_init(seqp *s, int mode, int64_t I, int64_t H, int64_t P, int64_t L, int64_t D, int64_t T, int64_t B) {
  memset(s, 0, sizeof *s);
  s->m.mode = mode, s->m.I = I, s->m.H = H, s->m.P = P ? P : H, s->m.proj = P > 0;
  s->m.L = L, s->m.D = D, s->m.bias = 1;
  s->T = T, s->B = B;
}

static void test_fd(dlk_context *ctx) {
  fd_cell(ctx, "tanh", DLK_RNN_TANH, 0, 0, 1, 1);
  fd_cell(ctx, "relu", DLK_RNN_RELU, 0, 0, 1, 1);
  fd_cell(ctx, "lstm", DLK_RNN_LSTM, 0, 0, 1, 1);
  fd_cell(ctx, "lstm_proj", DLK_RNN_LSTM, 0, 1, 1, 1);
  fd_cell(ctx, "lstm_nostate", DLK_RNN_LSTM, 0, 0, 1, 0);
  fd_cell(ctx, "gru", DLK_RNN_GRU, 0, 0, 1, 1);
  fd_cell(ctx, "gru_reset_before", DLK_RNN_GRU, 1, 0, 1, 1);
  fd_cell(ctx, "gru_nobias", DLK_RNN_GRU, 0, 0, 0, 1);

  static const struct {
    const char *name;
    int mode, rb;
    int64_t I, H, P, L, D, T, B;
    int bf, lens, dropout, bias;
  } cases[] = {
      {"tanh_2l_bi_packed", DLK_RNN_TANH, 0, 2, 3, 0, 2, 2, 4, 3, 0, 1, 0, 1},
      {"relu_1l", DLK_RNN_RELU, 0, 3, 3, 0, 1, 1, 4, 2, 0, 0, 0, 1},
      {"lstm_2l_bi_packed", DLK_RNN_LSTM, 0, 2, 3, 0, 2, 2, 4, 3, 0, 1, 0, 1},
      {"lstm_proj_2l_bi_bf", DLK_RNN_LSTM, 0, 2, 3, 2, 2, 2, 3, 2, 1, 1, 0, 1},
      {"lstm_2l_dropout", DLK_RNN_LSTM, 0, 2, 3, 0, 2, 1, 4, 2, 0, 0, 1, 1},
      {"gru_2l_bi_packed", DLK_RNN_GRU, 0, 2, 3, 0, 2, 2, 4, 3, 0, 1, 0, 1},
      {"gru_reset_before_bi_packed_bf", DLK_RNN_GRU, 1, 3, 3, 0, 1, 2, 4, 3, 1, 1, 0, 1},
      {"gru_nobias_bi_dropout", DLK_RNN_GRU, 0, 2, 2, 0, 2, 2, 3, 2, 0, 0, 1, 0},
  };
  for (int i = 0; i < N_OF(cases); i++) {
    seqp s;
    seq_init(&s, cases[i].mode, cases[i].I, cases[i].H, cases[i].P, cases[i].L, cases[i].D, cases[i].T, cases[i].B);
    s.m.reset_before = cases[i].rb;
    s.m.bias = cases[i].bias;
    s.batch_first = cases[i].bf;
    if (cases[i].lens) {
      s.has_lens = 1;
      for (int64_t b = 0; b < s.B; b++) s.lens[b] = 1 + (b * 7 + 2) % s.T; /* unsorted, includes 1 and T */
      s.lens[0] = s.T;
      s.lens[s.B - 1] = 1;
    }
    if (cases[i].dropout) s.dropout = 0.4, s.seed = 77 + (uint64_t)i;
    model_random(&s.m, DLK_F64, 0.7);
    fd_seq(ctx, cases[i].name, &s);
  }
}

/* ====================================================================================== */
/* main                                                                                    */
/* ====================================================================================== */

int main(int argc, char **argv) {
  t_seed(12);
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_rnn");
    dlk_context_destroy(g);
    return t_summary("test_rnn --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  test_golden(ctx, 1);
  test_fd(ctx);
  dlk_context_destroy(ctx);
  return t_summary("test_rnn");
}
