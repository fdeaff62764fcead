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
 *   reference on host copies of the same inputs, over the issue's shape table, F32, F16,
 *   BF16; the reserve round trip between forward and backward variants.
 *   DLK_TEST_QUICK=1: the sweep's quick subset and a few shapes (compute-sanitizer, ASan);
 *   2: every case but the big ones, hidden 257 and more (the emulated device, ctest label emu).
 */
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "golden.h"
#include "core/internal.h" /* the forced-variant list (sweep rows pair forward and backward) */
#include "sweep.h"

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
  int has_lens, lens_i32, lens_on_device;
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
  tb ldev;
  memset(&ldev, 0, sizeof ldev);
  if (s->has_lens) {
    for (int64_t b = 0; b < s->B; b++) l64[b] = s->lens[b], l32[b] = (int32_t)s->lens[b];
    CHECK_OK(ctx, dlk_tensor_init(ctx, &lt, s->lens_i32 ? (void *)l32 : (void *)l64, s->lens_i32 ? DLK_I32 : DLK_I64,
                                  (dlk_device){DLK_CPU, 0}, 1, &s->B));
    if (s->lens_on_device) { /* the same lengths on the context's device */
      int64_t nb = s->B * (int64_t)dlk_dtype_size(lt.dtype);
      CHECK_OK(ctx, dlk_tensor_alloc(ctx, &ldev.mem, DLK_U8, 1, &nb));
      ldev.live = 1;
      CHECK_OK(ctx, dlk_tensor_write(ctx, &ldev.mem, lt.data, (size_t)nb));
      lt.data = ldev.mem.data;
      CHECK_OK(ctx, dlk_context_device(ctx, &lt.device));
    }
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
  tb *all[] = {&x, &y, &h0, &c0, &hn, &cn, &res, &dy, &dhn, &dcn, &dx, &dh0, &dc0, &ldev};
  for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
  dw_free(ctx, &dw);
  return st;
}

/* A cell call. */
typedef struct cellp {
  model m; /* L = D = 1 */
  int64_t B;
  int has_h, has_c;
  int null_params; /* pass NULL params (the documented default: a tanh cell) */
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
  dlk_status st = dlk_rnn_cell_forward(ctx, cp->null_params ? NULL : &p, &dw.w[0], &x.t, cp->has_h ? &h.t : NULL,
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
    st = dlk_rnn_cell_backward(ctx, cp->null_params ? NULL : &p, &dw.w[0], &x.t, cp->has_h ? &h.t : NULL, cp->has_c && lstm ? &c.t : NULL,
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

/* One case, in both layouts. gpu: a CUDA context, whose variants take F32 and 16-bit
   floats: the F64 cases are the CPU reference's, and the 16-bit sequences are checked
   against it by the sweep. */
static void golden_case(dlk_context *ctx, gcase *c, void *gpu) {
  if (*(const int *)gpu && c->t[0].dt != DLK_F32) return;
  for (int layout = LC; layout <= LP; layout++) {
    if (strcmp(c->op, "rnn_cell") == 0)
      golden_cell(ctx, c, layout);
    else if (strcmp(c->op, "rnn_seq") == 0)
      golden_seq(ctx, c, layout);
    else if (strcmp(c->op, "keras") == 0)
      golden_keras(ctx, c, layout);
    else
      CHECK(0, "unknown golden op %s", c->op);
  }
}

static void test_golden(dlk_context *ctx, int gpu) {
  golden_each(ctx, "tests/golden/rnn/cell.txt", golden_case, &gpu);
  golden_each(ctx, "tests/golden/rnn/seq.txt", golden_case, &gpu);
  golden_each(ctx, "tests/golden/rnn/keras.txt", golden_case, &gpu);
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
/* 3. Invariants of the reference                                                          */
/* ====================================================================================== */

static int same(const double *a, const double *b, int64_t n) {
  return (!a && !b) || (a && b && memcmp(a, b, (size_t)n * sizeof(double)) == 0);
}

static void seq_random_inputs(seqp *s) {
  s->x = dalloc(xcount(s)), fill(s->x, xcount(s), -1, 1);
  s->h0 = dalloc(hcount(s)), fill(s->h0, hcount(s), -0.5, 0.5);
  s->c0 = dalloc(ccount(s)), fill(s->c0, ccount(s), -0.5, 0.5);
  s->dy = dalloc(ycount(s)), fill(s->dy, ycount(s), -1, 1);
  s->dhn = dalloc(hcount(s)), fill(s->dhn, hcount(s), -1, 1);
  s->dcn = dalloc(ccount(s)), fill(s->dcn, ccount(s), -1, 1);
  s->has_h0 = 1, s->has_c0 = s->m.mode == DLK_RNN_LSTM;
}
static void seq_free_inputs(seqp *s) {
  free(s->x), free(s->h0), free(s->c0), free(s->dy), free(s->dhn), free(s->dcn);
  s->x = s->h0 = s->c0 = s->dy = s->dhn = s->dcn = NULL;
}

static void all_same(const char *what, const seqp *s, const seqres *a, const seqres *b, int bwd) {
  CHECK(same(a->y, b->y, ycount(s)), "%s: y differs", what);
  CHECK(same(a->hn, b->hn, hcount(s)), "%s: hn differs", what);
  CHECK(same(a->cn, b->cn, ccount(s)), "%s: cn differs", what);
  if (!bwd) return;
  CHECK(same(a->dx, b->dx, xcount(s)), "%s: dx differs", what);
  CHECK(same(a->dh0, b->dh0, hcount(s)), "%s: dh0 differs", what);
  CHECK(same(a->dc0, b->dc0, ccount(s)), "%s: dc0 differs", what);
  for (int k = 0; k < s->m.L * s->m.D; k++)
    for (int j = 0; j < NW; j++)
      CHECK(same(a->g[k][j], b->g[k][j], wnumel(&s->m, k, j)), "%s: gradient weights[%d].%s differs", what, k, wname[j]);
}

/* Host array in [T, B, n] <-> [B, T, n]. */
static double *swap_tb(const double *v, int64_t d0, int64_t d1, int64_t n) {
  double *r = dalloc(d0 * d1 * n);
  for (int64_t i = 0; i < d0; i++)
    for (int64_t j = 0; j < d1; j++) memcpy(r + (j * d0 + i) * n, v + (i * d1 + j) * n, (size_t)n * sizeof(double));
  return r;
}

static void test_invariants(dlk_context *ctx) {
  static const int modes[][2] = {{DLK_RNN_TANH, 0}, {DLK_RNN_RELU, 0}, {DLK_RNN_LSTM, 0}, {DLK_RNN_GRU, 0}, {DLK_RNN_GRU, 1}};
  for (int mi = 0; mi < N_OF(modes); mi++)
    for (int proj = 0; proj <= (modes[mi][0] == DLK_RNN_LSTM); proj++) {
      const dlk_dtype dt = DLK_F32;
      snprintf(t_case_buf, sizeof t_case_buf, "invariants mode %d rb %d proj %d", modes[mi][0], modes[mi][1], proj);
      t_case = t_case_buf;
      seqp s;
      seq_init(&s, modes[mi][0], 3, 5, proj ? 3 : 0, 2, 2, 5, 4);
      s.m.reset_before = modes[mi][1];
      model_random(&s.m, dt, 0.6);
      seq_random_inputs(&s);
      for (int64_t i = 0; i < xcount(&s); i++) s.x[i] = round_to(dt, s.x[i]);
      for (int64_t i = 0; i < hcount(&s); i++) s.h0[i] = round_to(dt, s.h0[i]);
      for (int64_t i = 0; i < ccount(&s); i++) s.c0[i] = round_to(dt, s.c0[i]);
      seqres base, r;
      CHECK_OK(ctx, run_seq(ctx, &s, dt, LC, 1, NULL, &base));
      /* padded-stride tensors: the same bits */
      CHECK_OK(ctx, run_seq(ctx, &s, dt, LP, 1, NULL, &r));
      all_same("padded strides", &s, &base, &r, 1);
      res_free(&r);
      /* lengths all T: the same bits as no lengths */
      s.has_lens = 1;
      for (int64_t b = 0; b < s.B; b++) s.lens[b] = s.T;
      CHECK_OK(ctx, run_seq(ctx, &s, dt, LC, 1, NULL, &r));
      all_same("lengths all T", &s, &base, &r, 1);
      res_free(&r);
      s.has_lens = 0;
      /* batch_first: the same bits, transposed */
      {
        seqp bf = s;
        bf.batch_first = 1;
        bf.x = swap_tb(s.x, s.T, s.B, s.m.I);
        bf.dy = swap_tb(s.dy, s.T, s.B, s.m.D * s.m.P);
        CHECK_OK(ctx, run_seq(ctx, &bf, dt, LC, 1, NULL, &r));
        double *y = swap_tb(r.y, s.B, s.T, s.m.D * s.m.P), *dx = swap_tb(r.dx, s.B, s.T, s.m.I);
        free(r.y), free(r.dx);
        r.y = y, r.dx = dx;
        all_same("batch_first", &s, &base, &r, 1);
        res_free(&r);
        free(bf.x), free(bf.dy);
      }
      res_free(&base);
      /* a packed batch: each sequence alone gives the same bits */
      s.has_lens = 1;
      const int64_t lens[4] = {3, 5, 1, 4};
      for (int64_t b = 0; b < s.B; b++) s.lens[b] = lens[b];
      CHECK_OK(ctx, run_seq(ctx, &s, dt, LC, 1, NULL, &base));
      for (int64_t b = 0; b < s.B; b++) {
        seqp one = s;
        const int64_t Tb = lens[b], W = s.m.D * s.m.P, LD = s.m.L * s.m.D;
        one.B = 1, one.T = Tb, one.has_lens = 0;
        one.x = dalloc(Tb * s.m.I), one.dy = dalloc(Tb * W);
        one.h0 = dalloc(LD * s.m.P), one.c0 = dalloc(LD * s.m.H), one.dhn = dalloc(LD * s.m.P), one.dcn = dalloc(LD * s.m.H);
        for (int64_t t = 0; t < Tb; t++) {
          memcpy(one.x + t * s.m.I, s.x + (t * s.B + b) * s.m.I, (size_t)s.m.I * sizeof(double));
          memcpy(one.dy + t * W, s.dy + (t * s.B + b) * W, (size_t)W * sizeof(double));
        }
        for (int64_t k = 0; k < LD; k++) {
          memcpy(one.h0 + k * s.m.P, s.h0 + (k * s.B + b) * s.m.P, (size_t)s.m.P * sizeof(double));
          memcpy(one.dhn + k * s.m.P, s.dhn + (k * s.B + b) * s.m.P, (size_t)s.m.P * sizeof(double));
          memcpy(one.c0 + k * s.m.H, s.c0 + (k * s.B + b) * s.m.H, (size_t)s.m.H * sizeof(double));
          memcpy(one.dcn + k * s.m.H, s.dcn + (k * s.B + b) * s.m.H, (size_t)s.m.H * sizeof(double));
        }
        CHECK_OK(ctx, run_seq(ctx, &one, dt, LC, 1, NULL, &r));
        int ok = 1;
        for (int64_t t = 0; t < s.T && r.y; t++)
          for (int64_t j = 0; j < W; j++) {
            double want = t < Tb ? r.y[t * W + j] : 0.0;
            ok &= base.y[(t * s.B + b) * W + j] == want;
          }
        for (int64_t k = 0; k < LD && r.hn; k++)
          for (int64_t j = 0; j < s.m.P; j++) ok &= base.hn[(k * s.B + b) * s.m.P + j] == r.hn[k * s.m.P + j];
        for (int64_t t = 0; t < s.T && r.dx; t++)
          for (int64_t j = 0; j < s.m.I; j++) {
            double want = t < Tb ? r.dx[t * s.m.I + j] : 0.0;
            ok &= base.dx[(t * s.B + b) * s.m.I + j] == want;
          }
        for (int64_t k = 0; k < LD && r.dh0; k++)
          for (int64_t j = 0; j < s.m.P; j++) ok &= base.dh0[(k * s.B + b) * s.m.P + j] == r.dh0[k * s.m.P + j];
        CHECK(ok, "packed row %lld differs from the sequence run alone", (long long)b);
        res_free(&r);
        free(one.x), free(one.dy), free(one.h0), free(one.c0), free(one.dhn), free(one.dcn);
      }
      res_free(&base);
      /* one layer, one direction: the sequence is its cells step by step */
      {
        seqp one;
        seq_init(&one, s.m.mode, 3, 5, proj ? 3 : 0, 1, 1, 4, 2);
        one.m.reset_before = s.m.reset_before;
        model_random(&one.m, DLK_F64, 0.6);
        seq_random_inputs(&one);
        CHECK_OK(ctx, run_seq(ctx, &one, DLK_F64, LC, 0, NULL, &r));
        cellp cp;
        memset(&cp, 0, sizeof cp);
        cp.m = one.m;
        cp.B = one.B, cp.has_h = 1, cp.has_c = 1;
        double *h = dcopy(one.h0, one.B * one.m.P), *c = dcopy(one.c0, one.B * one.m.H);
        int ok = 1;
        for (int64_t t = 0; t < one.T; t++) {
          cellres cr;
          cp.x = one.x + t * one.B * one.m.I, cp.h = h, cp.c = c;
          CHECK_OK(ctx, run_cell(ctx, &cp, DLK_F64, LC, 0, &cr));
          if (!cr.h) break;
          ok &= same(cr.h, r.y + t * one.B * one.m.P, one.B * one.m.P);
          memcpy(h, cr.h, (size_t)(one.B * one.m.P) * sizeof(double));
          if (cr.c) memcpy(c, cr.c, (size_t)(one.B * one.m.H) * sizeof(double));
          cres_free(&cr);
        }
        CHECK(ok, "the sequence differs from its cells step by step");
        free(h), free(c);
        res_free(&r);
        seq_free_inputs(&one);
        model_free(&one.m);
      }
      seq_free_inputs(&s);
      model_free(&s.m);
    }
  t_case = "";
}

/* ====================================================================================== */
/* 4. Bad input                                                                            */
/* ====================================================================================== */

/* Every output byte of the fixture, to prove a failed call wrote nothing. */
typedef struct snap {
  unsigned char *b[64];
  const tb *t[64];
  int n;
} snap;
static void snap_take(dlk_context *ctx, snap *s, const tb *const *ts, int n) {
  s->n = 0;
  for (int i = 0; i < n; i++)
    if (ts[i]->live) s->t[s->n] = ts[i], s->b[s->n++] = tb_bytes(ctx, ts[i]);
}
static int snap_same(dlk_context *ctx, const snap *s) {
  int ok = 1;
  for (int i = 0; i < s->n; i++) {
    unsigned char *now = tb_bytes(ctx, s->t[i]);
    ok &= memcmp(now, s->b[i], (size_t)s->t[i]->mem.shape[0]) == 0;
    free(now);
  }
  return ok;
}
static void snap_free(snap *s) {
  for (int i = 0; i < s->n; i++) free(s->b[i]);
  s->n = 0;
}

typedef struct badfx {
  dlk_context *ctx;
  model m, mg; /* LSTM 2 layers bidirectional; GRU 1 layer */
  dweights w, wg;
  tb x, y, h0, c0, hn, cn, res, dy, dhn, dcn, dx, dh0, dc0, yg, hng;
  tb cx, ch, cc, cho, cco, csv, cdx, cdh, cdc;
  dlk_tensor lens;
  int64_t lens_v[3];
  const tb *outs[64];
  int nouts;
} badfx;

static void bad_expect(badfx *f, const char *what, dlk_status want, const char *substr, dlk_status got) {
  dlk_context *ctx = f->ctx;
  const char *msg = dlk_context_last_error(ctx);
  CHECK(got == want, "%s: got %s, expected %s (%s)", what, dlk_status_string(got), dlk_status_string(want), msg);
  CHECK(strstr(msg, substr) != NULL, "%s: message \"%s\" does not name \"%s\"", what, msg, substr);
}

#define BAD(f, what, want, substr, call)                                      \
  do {                                                                        \
    snap sn_;                                                                 \
    snap_take((f)->ctx, &sn_, (f)->outs, (f)->nouts);                         \
    dlk_context_clear_error((f)->ctx);                                        \
    dlk_status got_ = (call);                                                 \
    bad_expect((f), (what), (want), (substr), got_);                          \
    CHECK(snap_same((f)->ctx, &sn_), "%s: an output was written", (what));    \
    snap_free(&sn_);                                                          \
  } while (0)

static void test_bad_input(dlk_context *ctx) {
  t_case = "bad input";
  badfx *f = xcalloc(1, sizeof *f);
  f->ctx = ctx;
  const dlk_dtype dt = DLK_F32;
  const int64_t T = 4, B = 3, I = 3, H = 4;
  f->m.mode = DLK_RNN_LSTM, f->m.I = I, f->m.H = H, f->m.P = H, f->m.L = 2, f->m.D = 2, f->m.bias = 1;
  model_random(&f->m, dt, 0.5);
  f->mg.mode = DLK_RNN_GRU, f->mg.I = I, f->mg.H = H, f->mg.P = H, f->mg.L = 1, f->mg.D = 1, f->mg.bias = 1;
  model_random(&f->mg, dt, 0.5);
  dw_make(ctx, &f->w, &f->m, dt, LC, 1, NULL);
  dw_make(ctx, &f->wg, &f->mg, dt, LC, 1, NULL);
  int64_t sx[3] = {T, B, I}, sy[3] = {T, B, 2 * H}, sh[3] = {4, B, H}, syg[3] = {T, B, H}, shg[3] = {1, B, H};
  double *xv = dalloc(T * B * I);
  fill(xv, T * B * I, -1, 1);
  tb_make(ctx, &f->x, dt, 3, sx, LC), tb_write(ctx, &f->x, xv);
  tb_make(ctx, &f->h0, dt, 3, sh, LC), tb_write(ctx, &f->h0, NULL);
  tb_make(ctx, &f->c0, dt, 3, sh, LC), tb_write(ctx, &f->c0, NULL);
  tb_make(ctx, &f->y, dt, 3, sy, LC);
  tb_make(ctx, &f->hn, dt, 3, sh, LC);
  tb_make(ctx, &f->cn, dt, 3, sh, LC);
  tb_make(ctx, &f->yg, dt, 3, syg, LC);
  tb_make(ctx, &f->hng, dt, 3, shg, LC);
  tb_make(ctx, &f->dy, dt, 3, sy, LC), tb_write(ctx, &f->dy, NULL);
  tb_make(ctx, &f->dhn, dt, 3, sh, LC), tb_write(ctx, &f->dhn, NULL);
  tb_make(ctx, &f->dcn, dt, 3, sh, LC), tb_write(ctx, &f->dcn, NULL);
  tb_make(ctx, &f->dx, dt, 3, sx, LC);
  tb_make(ctx, &f->dh0, dt, 3, sh, LC);
  tb_make(ctx, &f->dc0, dt, 3, sh, LC);
  f->lens_v[0] = 4, f->lens_v[1] = 2, f->lens_v[2] = 1;
  CHECK_OK(ctx, dlk_tensor_init(ctx, &f->lens, f->lens_v, DLK_I64, (dlk_device){DLK_CPU, 0}, 1, &B));
  dlk_rnn_params p;
  memset(&p, 0, sizeof p);
  p.mode = DLK_RNN_LSTM, p.hidden_size = H, p.num_layers = 2, p.bidirectional = 1, p.training = 1;
  size_t rbytes = 0;
  CHECK_OK(ctx, dlk_rnn_reserve_size(ctx, &p, &f->x.t, &rbytes));
  int64_t rb = (int64_t)rbytes;
  tb_make(ctx, &f->res, DLK_U8, 1, &rb, LC);
  /* cell tensors */
  int64_t s2x[2] = {B, I}, s2h[2] = {B, H}, s2s[2] = {B, 5 * H};
  tb_make(ctx, &f->cx, dt, 2, s2x, LC), tb_write(ctx, &f->cx, xv);
  tb_make(ctx, &f->ch, dt, 2, s2h, LC), tb_write(ctx, &f->ch, NULL);
  tb_make(ctx, &f->cc, dt, 2, s2h, LC), tb_write(ctx, &f->cc, NULL);
  tb_make(ctx, &f->cho, dt, 2, s2h, LC);
  tb_make(ctx, &f->cco, dt, 2, s2h, LC);
  tb_make(ctx, &f->csv, dt, 2, s2s, LC);
  tb_make(ctx, &f->cdx, dt, 2, s2x, LC);
  tb_make(ctx, &f->cdh, dt, 2, s2h, LC);
  tb_make(ctx, &f->cdc, dt, 2, s2h, LC);
  const tb *outs[] = {&f->y, &f->hn, &f->cn, &f->res, &f->dx, &f->dh0, &f->dc0, &f->yg, &f->hng,
                      &f->cho, &f->cco, &f->csv, &f->cdx, &f->cdh, &f->cdc};
  for (int i = 0; i < N_OF(outs); i++) f->outs[f->nouts++] = outs[i];
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < NW; j++)
      if (f->w.g[k][j].live) f->outs[f->nouts++] = &f->w.g[k][j];

  dlk_rnn_weights *W = f->w.w;
  dlk_tensor *x = &f->x.t, *y = &f->y.t, *h0 = &f->h0.t, *c0 = &f->c0.t, *hn = &f->hn.t, *cn = &f->cn.t;
  dlk_tensor *res = &f->res.t, *lens = &f->lens;
#define FWD(pp, ww, xx, ll, hh0, cc0, yy, hhn, ccn, rr) dlk_rnn_forward(ctx, pp, ww, xx, ll, hh0, cc0, yy, hhn, ccn, rr)
#define GOOD_FWD(pp) FWD(pp, W, x, lens, h0, c0, y, hn, cn, res)
  /* the fixture itself is good */
  CHECK_OK(ctx, GOOD_FWD(&p));
  CHECK_OK(ctx, dlk_rnn_backward(ctx, &p, W, x, lens, h0, c0, y, res, &f->dy.t, &f->dhn.t, &f->dcn.t, &f->dx.t,
                                 &f->dh0.t, &f->dc0.t, f->w.gr));
  {
    dlk_rnn_params q;
    q = p, q.mode = (dlk_rnn_mode)7;
    BAD(f, "mode 7", DLK_ERR_INVALID_ARGUMENT, "mode", GOOD_FWD(&q));
    q = p, q.hidden_size = 0;
    BAD(f, "hidden 0", DLK_ERR_INVALID_ARGUMENT, "hidden_size", GOOD_FWD(&q));
    /* 8 x hidden_size overflowed (undefined behaviour) in the size checks (fuzz_api) */
    const int64_t huge_h[3] = {INT64_MAX, INT64_MAX / 8 + 1, INT64_C(1) << 62};
    for (int i = 0; i < 3; i++) {
      q = p, q.hidden_size = huge_h[i];
      BAD(f, "hidden huge", DLK_ERR_OVERFLOW, "hidden_size", GOOD_FWD(&q));
      size_t rsz = 77;
      BAD(f, "hidden huge: reserve size", DLK_ERR_OVERFLOW, "hidden_size", dlk_rnn_reserve_size(ctx, &q, x, &rsz));
      CHECK(rsz == 77, "reserve_size refused but set *bytes");
    }
    q = p, q.proj_size = H;
    BAD(f, "proj == hidden", DLK_ERR_INVALID_ARGUMENT, "proj_size", GOOD_FWD(&q));
    q = p, q.mode = DLK_RNN_GRU, q.proj_size = 2;
    BAD(f, "proj with GRU", DLK_ERR_INVALID_ARGUMENT, "proj_size", GOOD_FWD(&q));
    q = p, q.num_layers = 0;
    BAD(f, "0 layers", DLK_ERR_INVALID_ARGUMENT, "num_layers", GOOD_FWD(&q));
    q = p, q.dropout = 1.0;
    BAD(f, "dropout 1", DLK_ERR_INVALID_ARGUMENT, "dropout", GOOD_FWD(&q));
    q = p, q.dropout = NAN;
    BAD(f, "dropout NaN", DLK_ERR_INVALID_ARGUMENT, "dropout", GOOD_FWD(&q));
    q = p, q.gru_reset_before = 1;
    BAD(f, "reset_before with LSTM", DLK_ERR_INVALID_ARGUMENT, "gru_reset_before", GOOD_FWD(&q));
    q = p, q.batch_first = 2;
    BAD(f, "batch_first 2", DLK_ERR_INVALID_ARGUMENT, "batch_first", GOOD_FWD(&q));
    q = p, q.num_layers = 3;
    BAD(f, "3 layers, 4 weight sets", DLK_ERR_NULL_POINTER, "weights[4].w_ih", FWD(&q, W, x, lens, NULL, NULL, y, NULL, NULL, res));
    BAD(f, "params NULL", DLK_ERR_NULL_POINTER, "params", GOOD_FWD(NULL));
    BAD(f, "x NULL", DLK_ERR_NULL_POINTER, "x", FWD(&p, W, NULL, lens, h0, c0, y, hn, cn, res));
    BAD(f, "weights NULL", DLK_ERR_NULL_POINTER, "weights", FWD(&p, NULL, x, lens, h0, c0, y, hn, cn, res));
    BAD(f, "y NULL", DLK_ERR_NULL_POINTER, "y", FWD(&p, W, x, lens, h0, c0, NULL, hn, cn, res));
  }
  {
    dlk_tensor x2 = *x;
    x2.ndim = 2;
    BAD(f, "x 2-D", DLK_ERR_SHAPE_MISMATCH, "x has 2 dims", FWD(&p, W, &x2, lens, h0, c0, y, hn, cn, res));
    x2 = *x, x2.device = (dlk_device){DLK_CUDA, 0};
    BAD(f, "x on a GPU", DLK_ERR_DEVICE_MISMATCH, "x", FWD(&p, W, &x2, lens, h0, c0, y, hn, cn, res));
  }
  {
    dlk_rnn_weights w2[4];
    memcpy(w2, W, sizeof w2);
    dlk_tensor t = *W[2].w_ih;
    t.shape[1] = 5;
    w2[2].w_ih = &t;
    BAD(f, "layer 1 w_ih columns", DLK_ERR_SHAPE_MISMATCH, "weights[2].w_ih", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    dlk_tensor u = *W[3].w_hh;
    u.shape[0] = 4 * (H + 1); /* another layer's hidden size */
    w2[3].w_hh = &u;
    BAD(f, "hidden size of layer 1 differs", DLK_ERR_SHAPE_MISMATCH, "weights[3].w_hh", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    dlk_tensor b = *W[0].b_ih;
    b.shape[0] = 15;
    w2[0].b_ih = &b;
    BAD(f, "b_ih length", DLK_ERR_SHAPE_MISMATCH, "weights[0].b_ih", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    w2[1].w_hr = W[1].w_hh;
    BAD(f, "w_hr without proj", DLK_ERR_INVALID_ARGUMENT, "weights[1].w_hr", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    w2[3].w_ih = NULL;
    BAD(f, "w_ih NULL", DLK_ERR_NULL_POINTER, "weights[3].w_ih", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    dlk_tensor d = *W[3].w_hh;
    d.device = (dlk_device){DLK_CUDA, 0};
    w2[3].w_hh = &d;
    BAD(f, "weight on a GPU", DLK_ERR_DEVICE_MISMATCH, "weights[3].w_hh", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
    memcpy(w2, W, sizeof w2);
    dlk_tensor e = *W[1].b_hh;
    e.dtype = DLK_F64;
    w2[1].b_hh = &e;
    BAD(f, "bias f64 with f32 x", DLK_ERR_DTYPE_MISMATCH, "weights[1].b_hh", FWD(&p, w2, x, lens, h0, c0, y, hn, cn, res));
  }
  {
    int64_t bad_lens[3][3] = {{4, 0, 1}, {4, 5, 1}, {-1, 2, 2}};
    for (int i = 0; i < 3; i++) {
      dlk_tensor l2;
      CHECK_OK(ctx, dlk_tensor_init(ctx, &l2, bad_lens[i], DLK_I64, (dlk_device){DLK_CPU, 0}, 1, &B));
      BAD(f, "length outside [1, T]", DLK_ERR_OUT_OF_RANGE, "lengths[", FWD(&p, W, x, &l2, h0, c0, y, hn, cn, res));
    }
    dlk_tensor l3 = *lens;
    l3.shape[0] = 2;
    BAD(f, "lengths of 2", DLK_ERR_SHAPE_MISMATCH, "lengths", FWD(&p, W, x, &l3, h0, c0, y, hn, cn, res));
    l3 = *lens, l3.dtype = DLK_F64;
    BAD(f, "lengths f64", DLK_ERR_DTYPE_MISMATCH, "lengths", FWD(&p, W, x, &l3, h0, c0, y, hn, cn, res));
    l3 = *lens, l3.device = (dlk_device){DLK_CUDA, 0};
    BAD(f, "lengths on another device", DLK_ERR_DEVICE_MISMATCH, "lengths", FWD(&p, W, x, &l3, h0, c0, y, hn, cn, res));
  }
  {
    dlk_rnn_params g = p;
    g.mode = DLK_RNN_GRU, g.num_layers = 1, g.bidirectional = 0;
    dlk_tensor c1 = f->hng.t, h1 = f->hng.t;
    BAD(f, "c0 for a GRU", DLK_ERR_INVALID_ARGUMENT, "c0", FWD(&g, f->wg.w, x, lens, NULL, &c1, &f->yg.t, &f->hng.t, NULL, res));
    (void)h1;
    BAD(f, "cn for a GRU", DLK_ERR_INVALID_ARGUMENT, "cn", FWD(&g, f->wg.w, x, lens, NULL, NULL, &f->yg.t, &f->hng.t, cn, res));
  }
  BAD(f, "no reserve when training", DLK_ERR_NULL_POINTER, "reserve", FWD(&p, W, x, lens, h0, c0, y, hn, cn, NULL));
  {
    dlk_tensor r2 = *res;
    r2.shape[0] -= 1;
    BAD(f, "reserve too small", DLK_ERR_SHAPE_MISMATCH, "reserve", FWD(&p, W, x, lens, h0, c0, y, hn, cn, &r2));
    r2 = *res, r2.dtype = DLK_F32, r2.shape[0] /= 4;
    BAD(f, "reserve f32", DLK_ERR_DTYPE_MISMATCH, "reserve", FWD(&p, W, x, lens, h0, c0, y, hn, cn, &r2));
  }
  {
    dlk_tensor t = *h0;
    t.dtype = DLK_F64;
    BAD(f, "h0 f64", DLK_ERR_DTYPE_MISMATCH, "h0", FWD(&p, W, x, lens, &t, c0, y, hn, cn, res));
    t = *h0, t.shape[1] = 2;
    BAD(f, "h0 batch", DLK_ERR_SHAPE_MISMATCH, "h0", FWD(&p, W, x, lens, &t, c0, y, hn, cn, res));
    t = *y, t.shape[2] = H;
    BAD(f, "y width", DLK_ERR_SHAPE_MISMATCH, "y", FWD(&p, W, x, lens, h0, c0, &t, hn, cn, res));
    t = *y, t.strides[0] = 0;
    BAD(f, "y self-overlap", DLK_ERR_LAYOUT, "y", FWD(&p, W, x, lens, h0, c0, &t, hn, cn, res));
    BAD(f, "hn is h0", DLK_ERR_INVALID_ARGUMENT, "overlap", FWD(&p, W, x, lens, h0, c0, y, h0, cn, res));
    BAD(f, "cn is hn", DLK_ERR_INVALID_ARGUMENT, "overlap", FWD(&p, W, x, lens, h0, c0, y, hn, hn, res));
    dlk_tensor yx = *x;
    yx.shape[2] = 2 * H, yx.strides[1] = 2 * H, yx.strides[0] = B * 2 * H;
    BAD(f, "y over x", DLK_ERR_INVALID_ARGUMENT, "overlap", FWD(&p, W, x, lens, h0, c0, &yx, hn, cn, res));
    dlk_tensor cw = *cn;
    cw.data = W[0].w_hh->data; /* 48 of the weight's 64 elements */
    BAD(f, "cn over a weight", DLK_ERR_INVALID_ARGUMENT, "overlap", FWD(&p, W, x, lens, h0, c0, y, hn, &cw, res));
  }
  /* backward */
#define BWD(pp, rr, ddy, ddx, gg) \
  dlk_rnn_backward(ctx, pp, W, x, lens, h0, c0, y, rr, ddy, &f->dhn.t, &f->dcn.t, ddx, &f->dh0.t, &f->dc0.t, gg)
  {
    dlk_rnn_params q = p;
    q.training = 0;
    BAD(f, "backward with training 0", DLK_ERR_INVALID_ARGUMENT, "training", BWD(&q, res, &f->dy.t, &f->dx.t, f->w.gr));
    q = p, q.dropout = 0.25;
    BAD(f, "reserve of another configuration", DLK_ERR_SHAPE_MISMATCH, "reserve", BWD(&q, res, &f->dy.t, &f->dx.t, f->w.gr));
    q = p, q.seed = 99;
    BAD(f, "reserve of another seed", DLK_ERR_INVALID_ARGUMENT, "reserve", BWD(&q, res, &f->dy.t, &f->dx.t, f->w.gr));
    BAD(f, "reserve NULL", DLK_ERR_NULL_POINTER, "reserve", BWD(&p, NULL, &f->dy.t, &f->dx.t, f->w.gr));
    tb blank;
    int64_t rb2 = (int64_t)rbytes;
    tb_make(ctx, &blank, DLK_U8, 1, &rb2, LC);
    BAD(f, "reserve never written", DLK_ERR_INVALID_ARGUMENT, "reserve", BWD(&p, &blank.t, &f->dy.t, &f->dx.t, f->w.gr));
    tb_free(ctx, &blank);
    dlk_tensor t = f->dy.t;
    t.shape[0] = 3;
    BAD(f, "dy steps", DLK_ERR_SHAPE_MISMATCH, "dy", BWD(&p, res, &t, &f->dx.t, f->w.gr));
    dlk_tensor dxy = f->dx.t;
    dxy.data = f->dy.t.data;
    BAD(f, "dx over dy", DLK_ERR_INVALID_ARGUMENT, "overlap", BWD(&p, res, &f->dy.t, &dxy, f->w.gr));
    dlk_rnn_grads g2[4];
    memcpy(g2, f->w.gr, sizeof g2);
    dlk_tensor gt = *g2[1].w_ih;
    gt.shape[1] = 2;
    g2[1].w_ih = &gt;
    BAD(f, "gradient shape", DLK_ERR_SHAPE_MISMATCH, "dweights[1].w_ih", BWD(&p, res, &f->dy.t, &f->dx.t, g2));
    memcpy(g2, f->w.gr, sizeof g2);
    g2[2].w_hr = g2[2].w_hh;
    BAD(f, "gradient of an absent weight", DLK_ERR_INVALID_ARGUMENT, "dweights[2].w_hr", BWD(&p, res, &f->dy.t, &f->dx.t, g2));
    memcpy(g2, f->w.gr, sizeof g2);
    g2[3].b_hh = g2[3].b_ih;
    BAD(f, "two gradients on one tensor", DLK_ERR_INVALID_ARGUMENT, "overlap", BWD(&p, res, &f->dy.t, &f->dx.t, g2));
    memcpy(g2, f->w.gr, sizeof g2);
    g2[0].w_hh = (dlk_tensor *)W[0].w_hh;
    BAD(f, "gradient is the weight", DLK_ERR_INVALID_ARGUMENT, "overlap", BWD(&p, res, &f->dy.t, &f->dx.t, g2));
  }
  /* cells */
  {
    dlk_rnn_cell_params cpl = {DLK_RNN_LSTM, 0}, cpg = {DLK_RNN_GRU, 0};
    dlk_tensor *cx = &f->cx.t, *ch = &f->ch.t, *cc = &f->cc.t, *cho = &f->cho.t, *cco = &f->cco.t, *csv = &f->csv.t;
    CHECK_OK(ctx, dlk_rnn_cell_forward(ctx, &cpl, &W[0], cx, ch, cc, cho, cco, csv));
    BAD(f, "cell: c for a GRU", DLK_ERR_INVALID_ARGUMENT, "c is given", dlk_rnn_cell_forward(ctx, &cpg, &f->wg.w[0], cx, ch, cc, cho, NULL, NULL));
    BAD(f, "cell: c_out missing", DLK_ERR_NULL_POINTER, "c_out", dlk_rnn_cell_forward(ctx, &cpl, &W[0], cx, ch, cc, cho, NULL, csv));
    BAD(f, "cell: c_out for a GRU", DLK_ERR_INVALID_ARGUMENT, "c_out", dlk_rnn_cell_forward(ctx, &cpg, &f->wg.w[0], cx, ch, NULL, cho, cco, NULL));
    dlk_tensor t = *csv;
    t.shape[1] = 4 * H;
    BAD(f, "cell: saved columns", DLK_ERR_SHAPE_MISMATCH, "saved", dlk_rnn_cell_forward(ctx, &cpl, &W[0], cx, ch, cc, cho, cco, &t));
    BAD(f, "cell: LSTM weights as GRU", DLK_ERR_SHAPE_MISMATCH, "w_ih", dlk_rnn_cell_forward(ctx, &cpg, &W[0], cx, ch, NULL, cho, NULL, NULL));
    dlk_rnn_weights w1 = W[0];
    dlk_tensor u = *W[0].w_hh;
    u.shape[1] = 3;
    w1.w_hh = &u;
    BAD(f, "cell: w_hh columns", DLK_ERR_SHAPE_MISMATCH, "w_hh", dlk_rnn_cell_forward(ctx, &cpl, &w1, cx, ch, cc, cho, cco, csv));
    BAD(f, "cell: h_out is h", DLK_ERR_INVALID_ARGUMENT, "overlap", dlk_rnn_cell_forward(ctx, &cpl, &W[0], cx, ch, cc, ch, cco, csv));
    dlk_rnn_cell_params bad = {DLK_RNN_LSTM, 1};
    BAD(f, "cell: reset_before for LSTM", DLK_ERR_INVALID_ARGUMENT, "gru_reset_before", dlk_rnn_cell_forward(ctx, &bad, &W[0], cx, ch, cc, cho, cco, csv));
    BAD(f, "cell bwd: saved NULL", DLK_ERR_NULL_POINTER, "saved",
        dlk_rnn_cell_backward(ctx, &cpl, &W[0], cx, ch, cc, NULL, cho, cco, &f->cdx.t, &f->cdh.t, &f->cdc.t, NULL));
    dlk_tensor sg = *csv;
    sg.shape[1] = 4 * H; /* a GRU's saved columns */
    BAD(f, "cell bwd: dc for a GRU", DLK_ERR_INVALID_ARGUMENT, "dc",
        dlk_rnn_cell_backward(ctx, &cpg, &f->wg.w[0], cx, ch, NULL, &sg, cho, NULL, &f->cdx.t, &f->cdh.t, &f->cdc.t, NULL));
    BAD(f, "cell bwd: dx is x", DLK_ERR_INVALID_ARGUMENT, "overlap",
        dlk_rnn_cell_backward(ctx, &cpl, &W[0], cx, ch, cc, csv, cho, cco, cx, &f->cdh.t, &f->cdc.t, NULL));
    dlk_rnn_grads g1 = f->w.gr[0];
    g1.w_hr = g1.w_hh;
    BAD(f, "cell bwd: gradient of absent w_hr", DLK_ERR_INVALID_ARGUMENT, "w_hr",
        dlk_rnn_cell_backward(ctx, &cpl, &W[0], cx, ch, cc, csv, cho, cco, &f->cdx.t, &f->cdh.t, &f->cdc.t, &g1));
  }
  /* Keras import */
  {
    const int64_t G = 3;
    int64_t sk[2] = {I, G * H}, srk[2] = {H, G * H}, sb2[2] = {2, G * H}, sb3[2] = {3, G * H}, swi[2] = {G * H, I},
            swh[2] = {G * H, H}, sb[1] = {G * H};
    tb k, rk, b2, b3, wi, wh, bi, bh;
    tb_make(ctx, &k, dt, 2, sk, LC), tb_write(ctx, &k, NULL);
    tb_make(ctx, &rk, dt, 2, srk, LC), tb_write(ctx, &rk, NULL);
    tb_make(ctx, &b2, dt, 2, sb2, LC), tb_write(ctx, &b2, NULL);
    tb_make(ctx, &b3, dt, 2, sb3, LC), tb_write(ctx, &b3, NULL);
    tb_make(ctx, &wi, dt, 2, swi, LC), tb_make(ctx, &wh, dt, 2, swh, LC);
    tb_make(ctx, &bi, dt, 1, sb, LC), tb_make(ctx, &bh, dt, 1, sb, LC);
    const tb *ko[] = {&wi, &wh, &bi, &bh};
    int n0 = f->nouts;
    for (int i = 0; i < 4; i++) f->outs[f->nouts++] = ko[i];
    dlk_tensor kk = k.t;
    kk.shape[1] = 10;
    BAD(f, "keras: kernel columns", DLK_ERR_SHAPE_MISMATCH, "kernel",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &kk, &rk.t, &b2.t, &wi.t, &wh.t, &bi.t, &bh.t));
    BAD(f, "keras: bias [3, 3H]", DLK_ERR_SHAPE_MISMATCH, "bias",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &k.t, &rk.t, &b3.t, &wi.t, &wh.t, &bi.t, &bh.t));
    BAD(f, "keras: b_hh NULL with a recurrent bias row", DLK_ERR_NULL_POINTER, "b_hh",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &k.t, &rk.t, &b2.t, &wi.t, &wh.t, &bi.t, NULL));
    BAD(f, "keras: GRU weights as LSTM", DLK_ERR_SHAPE_MISMATCH, "kernel",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_LSTM, &k.t, &rk.t, NULL, &wi.t, &wh.t, &bi.t, &bh.t));
    dlk_tensor w2 = wi.t;
    w2.shape[1] = 2;
    BAD(f, "keras: w_ih shape", DLK_ERR_SHAPE_MISMATCH, "w_ih",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &k.t, &rk.t, &b2.t, &w2, &wh.t, &bi.t, &bh.t));
    dlk_tensor row0 = bi.t;
    row0.data = b2.t.data;
    BAD(f, "keras: b_ih over the bias", DLK_ERR_INVALID_ARGUMENT, "overlap",
        dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &k.t, &rk.t, &b2.t, &wi.t, &wh.t, &row0, &bh.t));
    CHECK_OK(ctx, dlk_rnn_weights_from_keras(ctx, DLK_RNN_GRU, &k.t, &rk.t, &b2.t, &wi.t, &wh.t, &bi.t, &bh.t));
    f->nouts = n0;
    tb *all[] = {&k, &rk, &b2, &b3, &wi, &wh, &bi, &bh};
    for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
  }
  /* the context still works */
  CHECK_OK(ctx, GOOD_FWD(&p));
  CHECK(dlk_rnn_cell_saved_cols(DLK_RNN_LSTM, 7) == 35 && dlk_rnn_cell_saved_cols(DLK_RNN_GRU, 7) == 28 &&
            dlk_rnn_cell_saved_cols(DLK_RNN_TANH, 7) == 7 && dlk_rnn_cell_saved_cols((dlk_rnn_mode)9, 7) == 0 &&
            dlk_rnn_cell_saved_cols(DLK_RNN_GRU, -1) == 0,
        "dlk_rnn_cell_saved_cols");
#undef BWD
#undef GOOD_FWD
#undef FWD
  tb *all[] = {&f->x, &f->y, &f->h0, &f->c0, &f->hn, &f->cn, &f->res, &f->dy, &f->dhn, &f->dcn, &f->dx, &f->dh0,
               &f->dc0, &f->yg, &f->hng, &f->cx, &f->ch, &f->cc, &f->cho, &f->cco, &f->csv, &f->cdx, &f->cdh, &f->cdc};
  for (int i = 0; i < N_OF(all); i++) tb_free(ctx, all[i]);
  dw_free(ctx, &f->w), dw_free(ctx, &f->wg);
  model_free(&f->m), model_free(&f->mg);
  free(xv);
  free(f);
  t_case = "";
}

/* ====================================================================================== */
/* 5. Explain mode and the registry                                                        */
/* ====================================================================================== */

static void test_explain(dlk_context *ctx) {
  /* NULL cell params are a tanh cell (torch.nn.RNNCell's default) */
  {
    t_case = "NULL params";
    cellp cp;
    memset(&cp, 0, sizeof cp);
    cp.m.mode = DLK_RNN_TANH, cp.m.I = 3, cp.m.H = 4, cp.m.P = 4, cp.m.L = cp.m.D = 1, cp.m.bias = 1;
    model_random(&cp.m, DLK_F32, 0.5);
    cp.B = 2, cp.has_h = 1;
    cp.x = dalloc(6), cp.h = dalloc(8), cp.dh = dalloc(8);
    fill(cp.x, 6, -1, 1), fill(cp.h, 8, -1, 1), fill(cp.dh, 8, -1, 1);
    cellres a, b;
    CHECK_OK(ctx, run_cell(ctx, &cp, DLK_F32, LC, 1, &a));
    cp.null_params = 1;
    CHECK_OK(ctx, run_cell(ctx, &cp, DLK_F32, LC, 1, &b));
    CHECK(a.h && b.h && same(a.h, b.h, 8) && same(a.dx, b.dx, 6), "NULL params differ from a tanh cell");
    cres_free(&a), cres_free(&b);
    free(cp.x), free(cp.h), free(cp.dh);
    model_free(&cp.m);
  }
  t_case = "explain";
  static const char *const ops[] = {"rnn_cell_fwd", "rnn_cell_bwd", "rnn_fwd", "rnn_bwd"};
  for (int i = 0; i < N_OF(ops); i++) {
    dlk_variant_info info[16];
    int n = 0;
    CHECK_OK(ctx, dlk_op_variants(ctx, ops[i], info, 16, &n));
    CHECK(n >= 1 && info[0].id == 0, "%s: the CPU reference is variant 0", ops[i]);
  }
  seqp s;
  seq_init(&s, DLK_RNN_GRU, 2, 3, 0, 1, 2, 3, 2);
  s.m.reset_before = 1;
  model_random(&s.m, DLK_F32, 0.5);
  seq_random_inputs(&s);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  seqres r;
  dlk_status st = run_seq(ctx, &s, DLK_F32, LC, 1, NULL, &r);
  CHECK(st == DLK_OK, "explain run: %s", dlk_context_last_error(ctx));
  const char *text = NULL;
  CHECK_OK(ctx, dlk_explain_report(ctx, &text));
  CHECK(text && strstr(text, "rnn_bwd") && strstr(text, "cpu_ref"), "explain report: %s", text ? text : "(null)");
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  res_free(&r);
  seq_free_inputs(&s);
  model_free(&s.m);
  t_case = "";
}

/* ====================================================================================== */
/* 6. GPU: every variant against the CPU reference                                         */
/* ====================================================================================== */

static int quick_mode = 0;

/* Tolerances of a whole recurrence, looser than DESIGN.md's single-op ones on purpose:
   the GPU variants sum the gate GEMMs in another order and (for F16/BF16) round h, the
   gates and the GEMM outputs to 16 bits every step, and those errors travel through up to
   50 steps and 2 layers. */
static void seq_tolerance(dlk_dtype dt, double *atol, double *rtol) {
  switch (dt) {
    case DLK_F16: *atol = 1e-2, *rtol = 1e-2; break;
    case DLK_BF16: *atol = 6e-2, *rtol = 6e-2; break;
    default: *atol = 2e-4, *rtol = 2e-4; break;
  }
}

/* ReLU: a pre-activation within a rounding of 0 takes either side of the kink on the two
   devices (another summation order), and the gradient through that unit is then 0 on one
   and not on the other. Its gradients may have a few such elements off (F32: at most 1 in
   500); in 16 bits the kinks are too many to tell from bugs and only the forward is held. */
static void close_kinks(const char *what, const double *got, const double *ref, int64_t n, double atol, double rtol) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++)
    if (!(fabs(got[i] - ref[i]) <= atol + rtol * fabs(ref[i]))) bad++;
  CHECK(bad <= n / 500 + 1, "%s: %lld of %lld elements off (ReLU kinks allow %lld)", what, (long long)bad, (long long)n,
        (long long)(n / 500 + 1));
}

static void cmp_res(const char *what, const seqp *s, dlk_dtype dt, const seqres *got, const seqres *ref, int bwd) {
  if (s->m.mode == DLK_RNN_RELU && dt != DLK_F32) bwd = 0;
  const int kinks = s->m.mode == DLK_RNN_RELU;
  double atol, rtol;
  seq_tolerance(dt, &atol, &rtol);
  char w[256];
#define CMP(field, n)                                                        \
  if (ref->field) {                                                          \
    snprintf(w, sizeof w, "%s: %s", what, #field);                           \
    CHECK(got->field != NULL, "%s missing", w);                              \
    if (got->field && kinks && bwd) close_kinks(w, got->field, ref->field, n, atol, rtol); \
    else if (got->field) t_close(w, got->field, ref->field, n, atol, rtol);  \
  }
  CMP(y, ycount(s))
  CMP(hn, hcount(s))
  CMP(cn, ccount(s))
  if (bwd) {
    CMP(dx, xcount(s))
    CMP(dh0, hcount(s))
    CMP(dc0, ccount(s))
    for (int k = 0; k < s->m.L * s->m.D; k++)
      for (int j = 0; j < NW; j++)
        if (ref->g[k][j]) {
          snprintf(w, sizeof w, "%s: gradient weights[%d].%s", what, k, wname[j]);
          CHECK(got->g[k][j] != NULL, "%s missing", w);
          /* weight gradients sum over T*B rows: scale the absolute tolerance */
          if (got->g[k][j] && kinks) close_kinks(w, got->g[k][j], ref->g[k][j], wnumel(&s->m, k, j), atol * 4, rtol * 4);
          else if (got->g[k][j]) t_close(w, got->g[k][j], ref->g[k][j], wnumel(&s->m, k, j), atol * 4, rtol * 4);
        }
  }
#undef CMP
}

static int variant_ids(dlk_context *ctx, const char *op, int *ids, const char **names) {
  dlk_variant_info info[16];
  int n = 0, k = 0;
  if (dlk_op_variants(ctx, op, info, 16, &n) != DLK_OK) return 0;
  for (int i = 0; i < n && i < 16; i++)
    if (info[i].device == DLK_CUDA) ids[k] = info[i].id, names[k++] = info[i].name;
  return k;
}

typedef struct gcasedef {
  int mode, rb;
  int64_t I, H, P, L, D, T, B;
  int lens, bf;
  double dropout;
} gcasedef;

static void gpu_seq_case(dlk_context *g, dlk_context *cpu, const gcasedef *c, dlk_dtype dt) {
  seqp s;
  seq_init(&s, c->mode, c->I, c->H, c->P, c->L, c->D, c->T, c->B);
  s.m.reset_before = c->rb;
  s.batch_first = c->bf;
  s.dropout = c->dropout, s.seed = 5;
  if (c->lens) {
    s.has_lens = 1;
    for (int64_t b = 0; b < s.B; b++) s.lens[b] = 1 + (b * 13 + 3) % s.T;
    s.lens[0] = s.T;
    if (s.B > 1) s.lens[s.B - 1] = 1; /* a length-1 sequence among long ones */
    s.lens_on_device = c->lens == 2;
  }
  /* W ~ U(-1/sqrt(H), 1/sqrt(H)): the recurrent map's spectral radius is about 0.6, so
     the recurrence contracts and 50 steps of 16-bit rounding stay comparable; a chaotic
     recurrence (radius > 1) amplifies any rounding difference exponentially */
  model_random(&s.m, dt, 1.0 / sqrt((double)c->H));
  seq_random_inputs(&s);
  double *arrs[] = {s.x, s.h0, s.c0, s.dy, s.dhn, s.dcn};
  int64_t ns[] = {xcount(&s), hcount(&s), ccount(&s), ycount(&s), hcount(&s), ccount(&s)};
  for (int i = 0; i < 6; i++)
    for (int64_t k = 0; k < ns[i]; k++) arrs[i][k] = round_to(dt, arrs[i][k]);
  snprintf(t_case_buf, sizeof t_case_buf, "gpu seq mode %d rb %d I %lld H %lld P %lld L %lld D %lld T %lld B %lld lens %d bf %d %s",
           c->mode, c->rb, (long long)c->I, (long long)c->H, (long long)c->P, (long long)c->L, (long long)c->D,
           (long long)c->T, (long long)c->B, c->lens, c->bf, dlk_dtype_name(dt));
  t_case = t_case_buf;
  seqres ref_inf, ref;
  CHECK_OK(cpu, run_seq(cpu, &s, dt, LC, 0, NULL, &ref_inf));
  CHECK_OK(cpu, run_seq(cpu, &s, dt, LC, 1, NULL, &ref));
  int fids[16], bids[16];
  const char *fnames[16], *bnames[16];
  const int nf = variant_ids(g, "rnn_fwd", fids, fnames), nb = variant_ids(g, "rnn_bwd", bids, bnames);
  for (int i = 0; i < nf; i++) {
    char what[128];
    CHECK_OK(g, dlk_force_variant(g, "rnn_fwd", fids[i]));
    /* inference */
    seqres r;
    dlk_status st = run_seq(g, &s, dt, c->bf ? LC : LP, 0, NULL, &r);
    if (st == DLK_ERR_NOT_SUPPORTED) {
      if (!quick_mode) printf("  skip fwd %s (inference): %s\n", fnames[i], dlk_context_last_error(g));
    } else {
      CHECK(st == DLK_OK, "fwd %s: %s", fnames[i], dlk_context_last_error(g));
      snprintf(what, sizeof what, "fwd %s inference", fnames[i]);
      if (st == DLK_OK) cmp_res(what, &s, dt, &r, &ref_inf, 0);
    }
    res_free(&r);
    /* training, then every backward that reads its reserve */
    for (int j = 0; j < nb; j++) {
      /* on the emulated device the vendor rows refuse every case ("not in the emulated
         build"): the training forward before them would run only to be thrown away */
      if (bids[j] >= 10 && t_emulated_device(g)) continue;
      CHECK_OK(g, dlk_force_variant(g, "rnn_bwd", bids[j]));
      st = run_seq(g, &s, dt, LC, 1, NULL, &r);
      if (st == DLK_ERR_NOT_SUPPORTED) {
        if (!quick_mode) printf("  skip fwd %s + bwd %s: %s\n", fnames[i], bnames[j], dlk_context_last_error(g));
      } else {
        CHECK(st == DLK_OK, "fwd %s + bwd %s: %s", fnames[i], bnames[j], dlk_context_last_error(g));
        snprintf(what, sizeof what, "fwd %s + bwd %s", fnames[i], bnames[j]);
        if (st == DLK_OK) cmp_res(what, &s, dt, &r, &ref, 1);
      }
      res_free(&r);
    }
    CHECK_OK(g, dlk_force_variant(g, "rnn_bwd", -1));
  }
  CHECK_OK(g, dlk_force_variant(g, "rnn_fwd", -1));
  /* AUTO */
  seqres r;
  CHECK_OK(g, run_seq(g, &s, dt, LC, 1, NULL, &r));
  if (r.y) cmp_res("AUTO", &s, dt, &r, &ref, 1);
  res_free(&r);
  res_free(&ref), res_free(&ref_inf);
  seq_free_inputs(&s);
  model_free(&s.m);
  t_case = "";
}

static void gpu_cell_case(dlk_context *g, dlk_context *cpu, int mode, int rb, int64_t I, int64_t H, int64_t P,
                          int64_t B, dlk_dtype dt) {
  cellp cp;
  memset(&cp, 0, sizeof cp);
  model *m = &cp.m;
  m->mode = mode, m->reset_before = rb, m->I = I, m->H = H, m->P = P ? P : H, m->proj = P > 0;
  m->L = m->D = 1, m->bias = 1;
  model_random(m, dt, 1.0 / sqrt((double)H));
  cp.B = B, cp.has_h = cp.has_c = 1;
  cp.x = dalloc(B * I), fill(cp.x, B * I, -1, 1);
  cp.h = dalloc(B * m->P), fill(cp.h, B * m->P, -0.5, 0.5);
  cp.c = dalloc(B * H), fill(cp.c, B * H, -0.5, 0.5);
  cp.dh = dalloc(B * m->P), fill(cp.dh, B * m->P, -1, 1);
  cp.dc = dalloc(B * H), fill(cp.dc, B * H, -1, 1);
  double *arrs[] = {cp.x, cp.h, cp.c, cp.dh, cp.dc};
  int64_t ns[] = {B * I, B * m->P, B * H, B * m->P, B * H};
  for (int i = 0; i < 5; i++)
    for (int64_t k = 0; k < ns[i]; k++) arrs[i][k] = round_to(dt, arrs[i][k]);
  snprintf(t_case_buf, sizeof t_case_buf, "gpu cell mode %d rb %d I %lld H %lld P %lld B %lld %s", mode, rb,
           (long long)I, (long long)H, (long long)P, (long long)B, dlk_dtype_name(dt));
  t_case = t_case_buf;
  cellres ref, r;
  CHECK_OK(cpu, run_cell(cpu, &cp, dt, LC, 1, &ref));
  int fids[16], bids[16];
  const char *fn[16], *bn[16];
  const int nf = variant_ids(g, "rnn_cell_fwd", fids, fn), nbw = variant_ids(g, "rnn_cell_bwd", bids, bn);
  double atol, rtol;
  t_tolerance(dt, 0, &atol, &rtol);
  atol *= 4, rtol *= 4; /* gate sums in another order, saved gates rounded before the backward */
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nbw; j++) {
      CHECK_OK(g, dlk_force_variant(g, "rnn_cell_fwd", fids[i]));
      CHECK_OK(g, dlk_force_variant(g, "rnn_cell_bwd", bids[j]));
      dlk_status st = run_cell(g, &cp, dt, LP, 1, &r);
      CHECK(st == DLK_OK, "cell %s + %s: %s", fn[i], bn[j], dlk_context_last_error(g));
      if (st == DLK_OK) {
        t_close("cell h_out", r.h, ref.h, B * m->P, atol, rtol);
        if (ref.c) t_close("cell c_out", r.c, ref.c, B * H, atol, rtol);
        t_close("cell dx", r.dx, ref.dx, B * I, atol, rtol);
        t_close("cell dh", r.dh, ref.dh, B * m->P, atol, rtol);
        if (ref.dc) t_close("cell dc", r.dc, ref.dc, B * H, atol, rtol);
        for (int k = 0; k < NW; k++)
          if (ref.g[k]) t_close(wname[k], r.g[k], ref.g[k], wnumel(m, 0, k), atol * 4, rtol * 4);
      }
      cres_free(&r);
    }
  CHECK_OK(g, dlk_force_variant(g, "rnn_cell_fwd", -1));
  CHECK_OK(g, dlk_force_variant(g, "rnn_cell_bwd", -1));
  cres_free(&ref);
  free(cp.x), free(cp.h), free(cp.c), free(cp.dh), free(cp.dc);
  model_free(m);
  t_case = "";
}

static void test_gpu(dlk_context *g) {
  dlk_context *cpu = t_cpu_context();
  CHECK_OK(g, dlk_context_set_allow_tf32(g, 0));
  static const int modes[][2] = {{DLK_RNN_TANH, 0}, {DLK_RNN_RELU, 0}, {DLK_RNN_LSTM, 0}, {DLK_RNN_GRU, 0}, {DLK_RNN_GRU, 1}};
  static const dlk_dtype dts[] = {DLK_F32, DLK_F16, DLK_BF16};
  /* the issue's table, covered pairwise: hidden 1, 7, 64, 257, 1024; batch 1, 3, 64; length
     1, 5, 50; layers 1, 2; one and two directions; with and without lengths (2: on the
     device); the persistent kernel's batches (<= 8) and the fused kernel's batch 1 */
  static const gcasedef shapes[] = {
      /* mode rb  I     H    P  L  D   T   B lens bf dropout */
      {0, 0, 3, 1, 0, 2, 2, 5, 3, 1, 0, 0},
      {0, 0, 5, 7, 0, 2, 2, 50, 3, 1, 1, 0},
      {0, 0, 16, 64, 0, 1, 2, 5, 64, 2, 0, 0},
      {0, 0, 16, 64, 0, 2, 1, 50, 1, 0, 0, 0.3},
      {0, 0, 64, 64, 0, 1, 1, 50, 8, 1, 0, 0},
      {0, 0, 33, 257, 0, 2, 2, 5, 3, 1, 0, 0},
      {0, 0, 64, 257, 0, 1, 1, 50, 1, 0, 0, 0},
      {0, 0, 128, 1024, 0, 1, 1, 5, 1, 0, 0, 0},
      {0, 0, 64, 1024, 0, 1, 2, 1, 3, 0, 1, 0},
      {0, 0, 16, 64, 0, 2, 2, 20, 1, 0, 1, 0}, /* batch_first at batch 1: x's rows without a copy */
  };
  /* DLK_TEST_QUICK: 1 the first 3 shapes and 2 cells; 2 every shape and cell but the big
     ones, hidden 257 and more as in the sweep (the emulated device: that keeps the
     persistent kernel's batches 1 to 8, fused_b1 and dropout between layers) */
  const int nshapes = quick_mode == 1 ? 3 : N_OF(shapes);
  for (int d = 0; d < N_OF(dts); d++)
    for (int mi = 0; mi < N_OF(modes); mi++)
      for (int k = 0; k < nshapes; k++) {
        if (quick_mode && shapes[k].H >= 257) continue;
        gcasedef c = shapes[k];
        c.mode = modes[mi][0], c.rb = modes[mi][1];
        gpu_seq_case(g, cpu, &c, dts[d]);
        if (c.mode == DLK_RNN_LSTM && c.H >= 7 && k < 6) { /* with a projection */
          c.P = c.H / 2;
          gpu_seq_case(g, cpu, &c, dts[d]);
        }
      }
  static const int64_t cells[][4] = {{3, 1, 0, 1}, {5, 7, 0, 3}, {64, 64, 0, 64}, {33, 257, 0, 3},
                                     {512, 512, 0, 1}, {100, 1024, 0, 9}, {16, 64, 32, 3}};
  for (int d = 0; d < N_OF(dts); d++)
    for (int mi = 0; mi < N_OF(modes); mi++)
      for (int k = 0; k < (quick_mode == 1 ? 2 : N_OF(cells)); k++) {
        if (cells[k][2] && modes[mi][0] != DLK_RNN_LSTM) continue;
        if (quick_mode && cells[k][1] >= 257) continue;
        gpu_cell_case(g, cpu, modes[mi][0], modes[mi][1], cells[k][0], cells[k][1], cells[k][2], cells[k][3], dts[d]);
      }
  /* host tensors on a CUDA context are a device mismatch, outputs untouched */
  {
    t_case = "gpu bad input";
    dlk_rnn_params p;
    memset(&p, 0, sizeof p);
    p.mode = DLK_RNN_GRU, p.hidden_size = 4, p.num_layers = 1;
    float xh[2 * 3 * 2], yh[2 * 3 * 4], wih[12 * 2], whh[12 * 4];
    memset(yh, 0x7f, sizeof yh);
    dlk_tensor x, y, wi, wh;
    int64_t sx[3] = {2, 3, 2}, sy[3] = {2, 3, 4}, swi[2] = {12, 2}, swh[2] = {12, 4};
    dlk_tensor_init(g, &x, xh, DLK_F32, (dlk_device){DLK_CPU, 0}, 3, sx);
    dlk_tensor_init(g, &y, yh, DLK_F32, (dlk_device){DLK_CPU, 0}, 3, sy);
    dlk_tensor_init(g, &wi, wih, DLK_F32, (dlk_device){DLK_CPU, 0}, 2, swi);
    dlk_tensor_init(g, &wh, whh, DLK_F32, (dlk_device){DLK_CPU, 0}, 2, swh);
    dlk_rnn_weights w = {&wi, &wh, NULL, NULL, NULL};
    CHECK_STATUS(g, DLK_ERR_DEVICE_MISMATCH, dlk_rnn_forward(g, &p, &w, &x, NULL, NULL, NULL, &y, NULL, NULL, NULL));
    CHECK(((unsigned char *)yh)[0] == 0x7f, "y written after a failed call");
    t_case = "";
  }
  dlk_context_destroy(cpu);
}

/* ====================================================================================== */
/* 7. The variant sweep (tests/sweep.h): every op x case x dtype x variant                */
/* ====================================================================================== */

/* One case of any of the four ops. Which optional tensors a call has is chosen per case
   so that a call stays within the sweep's 12 tensors. gmask: the weight gradients asked
   for, bit j of member j (w_ih, w_hh, b_ih, b_hh, w_hr) of every layer and direction. */
typedef struct rnn_case {
  sweep_tags tags;
  int mode, rb;
  int64_t I, H, P, L, D, T, B;
  int bias, h0, c0, lens, bf, dhn, dcn, gmask;
  sweep_layout lay;
} rnn_case;

static int64_t rc_P(const rnn_case *c) { return c->P ? c->P : c->H; }
static int rc_lstm(const rnn_case *c) { return c->mode == DLK_RNN_LSTM; }
static int64_t rc_len(const rnn_case *c, int64_t b) {
  return c->lens ? 1 + (b * 5 + 2) % c->T : c->T; /* row 0 full? (2 % T) + 1: not always; any order */
}
static int rc_has(const rnn_case *c, int j) { return j == W_HR ? c->P > 0 : (j == B_IH || j == B_HH) ? c->bias : 1; }

/* The case's model: shapes only. */
static void rc_shapes(const rnn_case *c, model *m) {
  memset(m, 0, sizeof *m);
  m->mode = c->mode, m->reset_before = c->rb, m->I = c->I, m->H = c->H, m->P = rc_P(c), m->proj = c->P > 0;
  m->L = c->L, m->D = c->D, m->bias = c->bias;
  model_shapes(m);
}
/* ... with weights from the flat array W (layer-major, members in order). */
static void rc_model(const rnn_case *c, const double *W, model *m) {
  rc_shapes(c, m);
  int64_t off = 0;
  for (int k = 0; k < c->L * c->D; k++)
    for (int j = 0; j < NW; j++)
      if (rc_has(c, j)) {
        m->w[k][j] = (double *)W + off; /* views, not owned: never model_free'd */
        off += wnumel(m, k, j);
      }
}
static int64_t rc_wcount(const rnn_case *c) {
  model m;
  rc_shapes(c, &m);
  int64_t n = 0;
  for (int k = 0; k < c->L * c->D; k++)
    for (int j = 0; j < NW; j++)
      if (rc_has(c, j)) n += wnumel(&m, k, j);
  return n;
}

/* ---- the naive model, written again here from the formulas of include/dlk.h ---- */

static double nsig(double v) { return 1 / (1 + exp(-v)); }
/* W[g, :] . v */
static double ndot(const double *W, int64_t cols, int64_t g, const double *v) {
  double s = 0;
  for (int64_t k = 0; k < cols; k++) s += W[g * cols + k] * v[k];
  return s;
}

/* One step for one row: x [I], h [P], c [H] -> h' [P], c' [H], saved [S] (optional). */
static void nv_cell(const model *m, int ld, int64_t I, const double *x, const double *h, const double *c, double *ho,
                    double *co, double *sv) {
  const int64_t H = m->H, P = m->P;
  double *const *w = m->w[ld];
  double hp[512], rh[512];
  for (int64_t j = 0; j < H; j++) {
    double gi[4], gh[4];
    for (int g = 0; g < m->G; g++) {
      gi[g] = ndot(w[W_IH], I, g * H + j, x) + (w[B_IH] ? w[B_IH][g * H + j] : 0);
      gh[g] = ndot(w[W_HH], P, g * H + j, h) + (w[B_HH] ? w[B_HH][g * H + j] : 0);
    }
    if (m->mode == DLK_RNN_TANH || m->mode == DLK_RNN_RELU) {
      double a = gi[0] + gh[0];
      ho[j] = m->mode == DLK_RNN_TANH ? tanh(a) : (a > 0 ? a : 0);
      if (sv) sv[j] = ho[j];
    } else if (m->mode == DLK_RNN_LSTM) {
      double i = nsig(gi[0] + gh[0]), f = nsig(gi[1] + gh[1]), g = tanh(gi[2] + gh[2]), o = nsig(gi[3] + gh[3]);
      co[j] = f * c[j] + i * g;
      hp[j] = o * tanh(co[j]);
      if (sv) sv[j] = i, sv[H + j] = f, sv[2 * H + j] = g, sv[3 * H + j] = o, sv[4 * H + j] = tanh(co[j]);
    } else {
      double r = nsig(gi[0] + gh[0]), z = nsig(gi[1] + gh[1]);
      rh[j] = r * h[j];
      if (sv) sv[j] = r, sv[H + j] = z;
      hp[j] = gi[2]; /* the x-part of n, finished below */
    }
  }
  if (m->mode == DLK_RNN_LSTM)
    for (int64_t q = 0; q < P; q++) ho[q] = m->proj ? ndot(w[W_HR], H, q, hp) : hp[q];
  if (m->mode == DLK_RNN_GRU)
    for (int64_t j = 0; j < H; j++) {
      const double r = nsig(ndot(w[W_IH], I, j, x) + (w[B_IH] ? w[B_IH][j] : 0) + ndot(w[W_HH], P, j, h) +
                            (w[B_HH] ? w[B_HH][j] : 0));
      const double z = nsig(ndot(w[W_IH], I, H + j, x) + (w[B_IH] ? w[B_IH][H + j] : 0) + ndot(w[W_HH], P, H + j, h) +
                            (w[B_HH] ? w[B_HH][H + j] : 0));
      const double bn = w[B_HH] ? w[B_HH][2 * H + j] : 0;
      const double hn = m->reset_before ? ndot(w[W_HH], H, 2 * H + j, rh) + bn : ndot(w[W_HH], P, 2 * H + j, h) + bn;
      const double n = tanh(hp[j] + (m->reset_before ? hn : r * hn));
      ho[j] = (1 - z) * n + z * h[j];
      if (sv) sv[2 * H + j] = n, sv[3 * H + j] = hn;
    }
}

/* The sequence: x as given (batch_first or not), time-major states; rnd_dt rounds h after
   each step (dlk's spec) and c to f32, or F64 for none. */
static void nv_seq(const rnn_case *c, const model *m, dlk_dtype rnd_dt, const double *x, const double *h0,
                   const double *c0, double *y, double *hn, double *cn) {
  const int64_t T = c->T, B = c->B, H = c->H, P = m->P, D = c->D, W = D * P;
  const dlk_dtype cdt = rnd_dt == DLK_F64 ? DLK_F64 : DLK_F32;
  double *in = dalloc(T * B * (c->I > W ? c->I : W)), *out = dalloc(T * B * W);
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < c->I; i++)
        in[(t * B + b) * c->I + i] = x[c->bf ? (b * T + t) * c->I + i : (t * B + b) * c->I + i];
  int64_t I = c->I;
  double h[512], cc[512], ho[512], co[512];
  for (int64_t l = 0; l < c->L; l++) {
    memset(out, 0, (size_t)(T * B * W) * sizeof(double));
    for (int64_t d = 0; d < D; d++) {
      const int ld = (int)(l * D + d);
      for (int64_t b = 0; b < B; b++) {
        for (int64_t k = 0; k < P; k++) h[k] = h0 ? h0[(ld * B + b) * P + k] : 0;
        for (int64_t k = 0; k < H; k++) cc[k] = c0 ? c0[(ld * B + b) * H + k] : 0;
        const int64_t len = rc_len(c, b);
        for (int64_t s2 = 0; s2 < len; s2++) {
          const int64_t t = d == 0 ? s2 : len - 1 - s2;
          nv_cell(m, ld, I, in + (t * B + b) * I, h, cc, ho, co, NULL);
          for (int64_t k = 0; k < P; k++) h[k] = round_to(rnd_dt, ho[k]), out[(t * B + b) * W + d * P + k] = h[k];
          if (c->mode == DLK_RNN_LSTM)
            for (int64_t k = 0; k < H; k++) cc[k] = round_to(cdt, co[k]);
        }
        for (int64_t k = 0; k < P; k++) hn[(ld * B + b) * P + k] = h[k];
        if (cn)
          for (int64_t k = 0; k < H; k++) cn[(ld * B + b) * H + k] = cc[k];
      }
    }
    memcpy(in, out, (size_t)(T * B * W) * sizeof(double));
    I = W;
  }
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < W; j++) y[c->bf ? (b * T + t) * W + j : (t * B + b) * W + j] = out[(t * B + b) * W + j];
  free(in), free(out);
}

/* ---- gen / run / naive ---- */

enum { S_X = 0, S_W, S_H0, S_C0, S_DY, S_DHN, S_DCN, S_SAVED };

static int64_t rc_xn(const rnn_case *c) { return c->T * c->B * c->I; }
static int64_t rc_yn(const rnn_case *c) { return c->T * c->B * c->D * rc_P(c); }
static int64_t rc_hn(const rnn_case *c) { return c->L * c->D * c->B * rc_P(c); }
static int64_t rc_cn(const rnn_case *c) { return c->L * c->D * c->B * c->H; }

static void gen_seq(const void *vc, dlk_dtype dt, sweep_set *in) {
  const rnn_case *c = vc;
  const double a = 1 / sqrt((double)c->H);
  sweep_uniform(in, dt, rc_xn(c), -1, 1);
  sweep_uniform(in, dt, rc_wcount(c), -a, a);
  sweep_uniform(in, dt, c->h0 ? rc_hn(c) : 0, -0.5, 0.5);
  sweep_uniform(in, dt, c->c0 && rc_lstm(c) ? rc_cn(c) : 0, -0.5, 0.5);
  sweep_uniform(in, dt, rc_yn(c), -1, 1);
  sweep_uniform(in, dt, c->dhn ? rc_hn(c) : 0, -1, 1);
  sweep_uniform(in, dt, c->dcn && rc_lstm(c) ? rc_cn(c) : 0, -1, 1);
}

/* The weight tensors of the call (rig inputs, in W's order) and the gradient tensors asked
   for (rig outputs, after the others). */
static void rig_weights(sweep_rig *r, const rnn_case *c, dlk_dtype dt, const double *W, dlk_rnn_weights *w) {
  model m;
  rc_model(c, W, &m);
  for (int k = 0; k < c->L * c->D; k++) {
    const dlk_tensor *t[NW] = {0};
    for (int j = 0; j < NW; j++) {
      if (!rc_has(c, j)) continue;
      int nd;
      int64_t sh[2];
      wshape(&m, k, j, &nd, sh);
      sweep_tensor *st = sweep_in(r, dt, nd, sh, nd == 2 ? c->lay : SW_CONTIG, m.w[k][j]);
      t[j] = st ? &st->v : NULL;
    }
    w[k] = (dlk_rnn_weights){t[W_IH], t[W_HH], t[B_IH], t[B_HH], t[W_HR]};
  }
}
/* n zeros that stay valid for the program's life: one buffer, never moved (a rig keeps
   the pointers it was given), as large as the largest weight of the case tables. */
static const double *zeros(int64_t n) {
  enum { CAP = 1 << 21 };
  static double *z = NULL;
  if (!z) z = dalloc(CAP);
  if (n > CAP) {
    fprintf(stderr, "zeros: %lld > %d\n", (long long)n, CAP);
    exit(2);
  }
  return z;
}

static void rig_grads(sweep_rig *r, const rnn_case *c, dlk_dtype dt, dlk_rnn_grads *g) {
  model m;
  rc_shapes(c, &m);
  for (int k = 0; k < c->L * c->D; k++) {
    dlk_tensor *t[NW] = {0};
    for (int j = 0; j < NW; j++) {
      if (!rc_has(c, j) || !(c->gmask >> j & 1)) continue;
      int nd;
      int64_t sh[2];
      wshape(&m, k, j, &nd, sh);
      /* accumulated (+=): start from zeros (the rig keeps the pointer until sweep_end) */
      sweep_tensor *st = sweep_inout(r, dt, nd, sh, SW_CONTIG, zeros(wnumel(&m, k, j)));
      t[j] = st ? &st->v : NULL;
    }
    g[k] = (dlk_rnn_grads){t[W_IH], t[W_HH], t[B_IH], t[B_HH], t[W_HR]};
  }
}

static void seq_shapes(const rnn_case *c, int64_t *sx, int64_t *sy, int64_t *sh, int64_t *sc) {
  sx[0] = c->bf ? c->B : c->T, sx[1] = c->bf ? c->T : c->B, sx[2] = c->I;
  sy[0] = sx[0], sy[1] = sx[1], sy[2] = c->D * rc_P(c);
  sh[0] = c->L * c->D, sh[1] = c->B, sh[2] = rc_P(c);
  sc[0] = c->L * c->D, sc[1] = c->B, sc[2] = c->H;
}

static dlk_rnn_params rc_params(const rnn_case *c, int training) {
  dlk_rnn_params p;
  memset(&p, 0, sizeof p);
  p.mode = (dlk_rnn_mode)c->mode, p.hidden_size = c->H, p.proj_size = c->P, p.num_layers = (int)c->L;
  p.bidirectional = c->D == 2, p.batch_first = c->bf, p.gru_reset_before = c->rb, p.training = training;
  return p;
}

static int32_t rc_lens32[64];
static dlk_tensor rc_lengths(const rnn_case *c) {
  dlk_tensor t;
  for (int64_t b = 0; b < c->B; b++) rc_lens32[b] = (int32_t)rc_len(c, b);
  dlk_tensor_init(NULL, &t, rc_lens32, DLK_I32, (dlk_device){DLK_CPU, 0}, 1, &c->B);
  return t;
}

static dlk_status run_seq_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const rnn_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sx[3], sy[3], sh[3], sc[3];
  seq_shapes(c, sx, sy, sh, sc);
  dlk_rnn_weights w[MAXLD];
  sweep_tensor *x = sweep_in(&r, dt, 3, sx, c->lay, in->a[S_X].v);
  rig_weights(&r, c, dt, in->a[S_W].v, w);
  sweep_tensor *h0 = c->h0 ? sweep_in(&r, dt, 3, sh, SW_CONTIG, in->a[S_H0].v) : NULL;
  sweep_tensor *c0 = c->c0 && rc_lstm(c) ? sweep_in(&r, dt, 3, sc, SW_CONTIG, in->a[S_C0].v) : NULL;
  sweep_tensor *y = sweep_out(&r, dt, 3, sy, c->lay);
  sweep_tensor *hn = sweep_out(&r, dt, 3, sh, SW_CONTIG);
  sweep_tensor *cn = rc_lstm(c) ? sweep_out(&r, dt, 3, sc, SW_CONTIG) : NULL;
  dlk_tensor lens = rc_lengths(c);
  dlk_rnn_params p = rc_params(c, 0);
  dlk_status s = DLK_ERR_INTERNAL;
  if (!r.failed)
    s = dlk_rnn_forward(ctx, &p, w, &x->v, c->lens ? &lens : NULL, h0 ? &h0->v : NULL, c0 ? &c0->v : NULL, &y->v,
                        &hn->v, cn ? &cn->v : NULL, NULL);
  return sweep_end(&r, s, out);
}

static void naive_seq_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const rnn_case *c = vc;
  model m;
  rc_model(c, in->a[S_W].v, &m);
  double *y = sweep_add(ref, dt, rc_yn(c)), *hn = sweep_add(ref, dt, rc_hn(c));
  double *cn = rc_lstm(c) ? sweep_add(ref, dt, rc_cn(c)) : NULL;
  nv_seq(c, &m, dt, in->a[S_X].v, c->h0 ? in->a[S_H0].v : NULL, c->c0 ? in->a[S_C0].v : NULL, y, hn, cn);
}

/* The forward variant whose reserve the forced backward reads (the backward's sweep forces
   only rnn_bwd): the cuDNN backward after cuDNN's forward, the others after the gemm (GPU)
   or reference (CPU) forward. */
static int paired_forward(const dlk_context *ctx) {
  for (int i = 0; i < ctx->n_forced; i++)
    if (strcmp(ctx->forced[i].op, "rnn_bwd") == 0) return ctx->forced[i].id >= 10 ? 10 : ctx->device.type == DLK_CUDA;
  return -1;
}

static dlk_status run_seq_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const rnn_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sx[3], sy[3], sh[3], sc[3];
  seq_shapes(c, sx, sy, sh, sc);
  dlk_rnn_weights w[MAXLD];
  dlk_rnn_grads g[MAXLD];
  sweep_tensor *x = sweep_in(&r, dt, 3, sx, c->lay, in->a[S_X].v);
  rig_weights(&r, c, dt, in->a[S_W].v, w);
  sweep_tensor *h0 = c->h0 ? sweep_in(&r, dt, 3, sh, SW_CONTIG, in->a[S_H0].v) : NULL;
  sweep_tensor *c0 = c->c0 && rc_lstm(c) ? sweep_in(&r, dt, 3, sc, SW_CONTIG, in->a[S_C0].v) : NULL;
  sweep_tensor *dy = sweep_in(&r, dt, 3, sy, c->lay, in->a[S_DY].v);
  sweep_tensor *dhn = c->dhn ? sweep_in(&r, dt, 3, sh, SW_CONTIG, in->a[S_DHN].v) : NULL;
  sweep_tensor *dcn = c->dcn && rc_lstm(c) ? sweep_in(&r, dt, 3, sc, SW_CONTIG, in->a[S_DCN].v) : NULL;
  sweep_tensor *dx = sweep_out(&r, dt, 3, sx, c->lay);
  sweep_tensor *dh0 = c->h0 ? sweep_out(&r, dt, 3, sh, SW_CONTIG) : NULL;
  sweep_tensor *dc0 = c->c0 && rc_lstm(c) ? sweep_out(&r, dt, 3, sc, SW_CONTIG) : NULL;
  rig_grads(&r, c, dt, g);
  dlk_tensor lens = rc_lengths(c), y, res;
  memset(&res, 0, sizeof res);
  dlk_rnn_params p = rc_params(c, 1);
  dlk_status s = DLK_ERR_INTERNAL;
  size_t bytes = 0;
  /* the forward that writes the reserve (outside the rig: its y is not an output here) */
  if (!r.failed && (s = dlk_rnn_reserve_size(ctx, &p, &x->v, &bytes)) == DLK_OK) {
    int64_t nb = (int64_t)bytes;
    s = dlk_tensor_alloc(ctx, &res, DLK_U8, 1, &nb);
    if (s == DLK_OK) s = dlk_tensor_alloc(ctx, &y, dt, 3, sy);
    if (s == DLK_OK) {
      const int fwd = paired_forward(ctx);
      if (fwd >= 0) dlk_force_variant(ctx, "rnn_fwd", fwd);
      s = dlk_rnn_forward(ctx, &p, w, &x->v, c->lens ? &lens : NULL, h0 ? &h0->v : NULL, c0 ? &c0->v : NULL, &y, NULL,
                          NULL, &res);
      if (fwd >= 0) dlk_force_variant(ctx, "rnn_fwd", -1);
      if (s == DLK_ERR_NOT_SUPPORTED) s = DLK_ERR_NOT_SUPPORTED; /* counted as this variant's skip */
      else if (s == DLK_OK)
        s = dlk_rnn_backward(ctx, &p, w, &x->v, c->lens ? &lens : NULL, h0 ? &h0->v : NULL, c0 ? &c0->v : NULL, &y,
                             &res, &dy->v, dhn ? &dhn->v : NULL, dcn ? &dcn->v : NULL, &dx->v, dh0 ? &dh0->v : NULL,
                             dc0 ? &dc0->v : NULL, g);
      dlk_tensor_free(ctx, &y);
    }
    dlk_tensor_free(ctx, &res);
  }
  return sweep_end(&r, s, out);
}

/* loss = <y, dy> + <hn, dhn> + <cn, dcn> of the unrounded naive forward. */
static double seq_loss_naive(const rnn_case *c, const sweep_set *in, const double *x, const double *W, const double *h0,
                             const double *c0) {
  model m;
  rc_model(c, W, &m);
  double *y = dalloc(rc_yn(c)), *hn = dalloc(rc_hn(c)), *cn = dalloc(rc_cn(c));
  nv_seq(c, &m, DLK_F64, x, h0, c0, y, hn, rc_lstm(c) ? cn : NULL);
  double l = dot(y, in->a[S_DY].v, rc_yn(c));
  if (c->dhn) l += dot(hn, in->a[S_DHN].v, rc_hn(c));
  if (c->dcn && rc_lstm(c)) l += dot(cn, in->a[S_DCN].v, rc_cn(c));
  free(y), free(hn), free(cn);
  return l;
}

/* The gradients by central differences of the naive forward (independent of any backward
   code: the truth the CPU reference is held to here; f64 FD is checked in section 2). */
static void fd_grad(const rnn_case *c, const sweep_set *in, double *xs[4], int which, double *g, int64_t n) {
  const double eps = 1e-5;
  double *v = xs[which];
  for (int64_t i = 0; i < n; i++) {
    const double keep = v[i];
    v[i] = keep + eps;
    const double lp = seq_loss_naive(c, in, xs[0], xs[1], xs[2], xs[3]);
    v[i] = keep - eps;
    const double lm = seq_loss_naive(c, in, xs[0], xs[1], xs[2], xs[3]);
    v[i] = keep;
    g[i] = (lp - lm) / (2 * eps);
  }
}

static void naive_seq_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const rnn_case *c = vc;
  double *xs[4] = {dcopy(in->a[S_X].v, rc_xn(c)), dcopy(in->a[S_W].v, rc_wcount(c)),
                   c->h0 ? dcopy(in->a[S_H0].v, rc_hn(c)) : NULL,
                   c->c0 && rc_lstm(c) ? dcopy(in->a[S_C0].v, rc_cn(c)) : NULL};
  fd_grad(c, in, xs, 0, sweep_add(ref, dt, rc_xn(c)), rc_xn(c));
  if (c->h0) fd_grad(c, in, xs, 2, sweep_add(ref, dt, rc_hn(c)), rc_hn(c));
  if (c->c0 && rc_lstm(c)) fd_grad(c, in, xs, 3, sweep_add(ref, dt, rc_cn(c)), rc_cn(c));
  double *gw = dalloc(rc_wcount(c));
  fd_grad(c, in, xs, 1, gw, rc_wcount(c));
  model m;
  rc_model(c, gw, &m); /* the gradient laid out like W */
  for (int k = 0; k < c->L * c->D; k++)
    for (int j = 0; j < NW; j++)
      if (rc_has(c, j) && (c->gmask >> j & 1))
        memcpy(sweep_add(ref, dt, wnumel(&m, k, j)), m.w[k][j], (size_t)wnumel(&m, k, j) * sizeof(double));
  free(gw);
  for (int i = 0; i < 4; i++) free(xs[i]);
}

/* ---- cells (L = D = T = 1: the same case struct) ---- */

static void gen_cell(const void *vc, dlk_dtype dt, sweep_set *in) {
  const rnn_case *c = vc;
  const double a = 1 / sqrt((double)c->H);
  const int64_t P = rc_P(c);
  sweep_uniform(in, dt, c->B * c->I, -1, 1);
  sweep_uniform(in, dt, rc_wcount(c), -a, a);
  sweep_uniform(in, dt, c->h0 ? c->B * P : 0, -0.5, 0.5);
  sweep_uniform(in, dt, c->c0 && rc_lstm(c) ? c->B * c->H : 0, -0.5, 0.5);
  sweep_uniform(in, dt, c->B * P, -1, 1);                              /* S_DY: dh_out */
  sweep_add(in, dt, 0);                                                 /* S_DHN: unused */
  sweep_uniform(in, dt, c->dcn && rc_lstm(c) ? c->B * c->H : 0, -1, 1); /* S_DCN: dc_out */
  /* saved: what the forward keeps, from the naive cell, rounded to dt */
  model m;
  rc_model(c, in->a[S_W].v, &m);
  const int64_t S = dlk_rnn_cell_saved_cols((dlk_rnn_mode)c->mode, c->H);
  double *sv = sweep_add(in, dt, c->B * S), ho[512], co[512], zero[512] = {0};
  for (int64_t b = 0; b < c->B; b++) {
    nv_cell(&m, 0, c->I, in->a[S_X].v + b * c->I, c->h0 ? in->a[S_H0].v + b * P : zero,
            c->c0 && rc_lstm(c) ? in->a[S_C0].v + b * c->H : zero, ho, co, sv + b * S);
    for (int64_t k = 0; k < S; k++) sv[b * S + k] = sweep_round(dt, sv[b * S + k]);
  }
}

static dlk_status run_cell_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const rnn_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  const int64_t P = rc_P(c), S = dlk_rnn_cell_saved_cols((dlk_rnn_mode)c->mode, c->H);
  int64_t sx[2] = {c->B, c->I}, sh[2] = {c->B, P}, sc[2] = {c->B, c->H}, ss[2] = {c->B, S};
  dlk_rnn_weights w[1];
  sweep_tensor *x = sweep_in(&r, dt, 2, sx, c->lay, in->a[S_X].v);
  rig_weights(&r, c, dt, in->a[S_W].v, w);
  sweep_tensor *h = c->h0 ? sweep_in(&r, dt, 2, sh, SW_CONTIG, in->a[S_H0].v) : NULL;
  sweep_tensor *cc = c->c0 && rc_lstm(c) ? sweep_in(&r, dt, 2, sc, SW_CONTIG, in->a[S_C0].v) : NULL;
  sweep_tensor *ho = sweep_out(&r, dt, 2, sh, c->lay);
  sweep_tensor *co = rc_lstm(c) ? sweep_out(&r, dt, 2, sc, SW_CONTIG) : NULL;
  sweep_tensor *sv = sweep_out(&r, dt, 2, ss, SW_CONTIG);
  dlk_rnn_cell_params p = {(dlk_rnn_mode)c->mode, c->rb};
  dlk_status s = DLK_ERR_INTERNAL;
  if (!r.failed)
    s = dlk_rnn_cell_forward(ctx, &p, w, &x->v, h ? &h->v : NULL, cc ? &cc->v : NULL, &ho->v, co ? &co->v : NULL,
                             &sv->v);
  return sweep_end(&r, s, out);
}

static void naive_cell_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const rnn_case *c = vc;
  model m;
  rc_model(c, in->a[S_W].v, &m);
  const int64_t P = rc_P(c), S = dlk_rnn_cell_saved_cols((dlk_rnn_mode)c->mode, c->H);
  double *ho = sweep_add(ref, dt, c->B * P), *co = rc_lstm(c) ? sweep_add(ref, dt, c->B * c->H) : NULL;
  double *sv = sweep_add(ref, dt, c->B * S), zero[512] = {0}, cb[512];
  for (int64_t b = 0; b < c->B; b++)
    nv_cell(&m, 0, c->I, in->a[S_X].v + b * c->I, c->h0 ? in->a[S_H0].v + b * P : zero,
            c->c0 && rc_lstm(c) ? in->a[S_C0].v + b * c->H : zero, ho + b * P, co ? co + b * c->H : cb, sv + b * S);
}

static dlk_status run_cell_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const rnn_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  const int64_t P = rc_P(c), S = dlk_rnn_cell_saved_cols((dlk_rnn_mode)c->mode, c->H);
  int64_t sx[2] = {c->B, c->I}, sh[2] = {c->B, P}, sc[2] = {c->B, c->H}, ss[2] = {c->B, S};
  dlk_rnn_weights w[1];
  dlk_rnn_grads g[1];
  sweep_tensor *x = sweep_in(&r, dt, 2, sx, c->lay, in->a[S_X].v);
  rig_weights(&r, c, dt, in->a[S_W].v, w);
  sweep_tensor *h = c->h0 ? sweep_in(&r, dt, 2, sh, SW_CONTIG, in->a[S_H0].v) : NULL;
  sweep_tensor *cc = c->c0 && rc_lstm(c) ? sweep_in(&r, dt, 2, sc, SW_CONTIG, in->a[S_C0].v) : NULL;
  sweep_tensor *sv = sweep_in(&r, dt, 2, ss, SW_CONTIG, in->a[S_SAVED].v);
  sweep_tensor *dho = sweep_in(&r, dt, 2, sh, SW_CONTIG, in->a[S_DY].v);
  sweep_tensor *dco = c->dcn && rc_lstm(c) ? sweep_in(&r, dt, 2, sc, SW_CONTIG, in->a[S_DCN].v) : NULL;
  sweep_tensor *dx = sweep_out(&r, dt, 2, sx, c->lay);
  sweep_tensor *dh = c->h0 ? sweep_out(&r, dt, 2, sh, SW_CONTIG) : NULL;
  sweep_tensor *dc = c->c0 && rc_lstm(c) ? sweep_out(&r, dt, 2, sc, SW_CONTIG) : NULL;
  rig_grads(&r, c, dt, g);
  dlk_rnn_cell_params p = {(dlk_rnn_mode)c->mode, c->rb};
  dlk_status s = DLK_ERR_INTERNAL;
  if (!r.failed)
    s = dlk_rnn_cell_backward(ctx, &p, w, &x->v, h ? &h->v : NULL, cc ? &cc->v : NULL, &sv->v, &dho->v,
                              dco ? &dco->v : NULL, &dx->v, dh ? &dh->v : NULL, dc ? &dc->v : NULL, g);
  return sweep_end(&r, s, out);
}

/* loss = <h', dh'> + <c', dc'> of the unrounded naive cell. */
static double cell_loss_naive(const rnn_case *c, const sweep_set *in, const double *x, const double *W, const double *h,
                              const double *cc) {
  model m;
  rc_model(c, W, &m);
  const int64_t P = rc_P(c);
  double ho[512], co[512], zero[512] = {0}, l = 0;
  for (int64_t b = 0; b < c->B; b++) {
    nv_cell(&m, 0, c->I, x + b * c->I, h ? h + b * P : zero, cc ? cc + b * c->H : zero, ho, co, NULL);
    l += dot(ho, in->a[S_DY].v + b * P, P);
    if (c->dcn && rc_lstm(c)) l += dot(co, in->a[S_DCN].v + b * c->H, c->H);
  }
  return l;
}

static void fd_cell_grad(const rnn_case *c, const sweep_set *in, double *xs[4], int which, double *g, int64_t n) {
  const double eps = 1e-5;
  double *v = xs[which];
  for (int64_t i = 0; i < n; i++) {
    const double keep = v[i];
    v[i] = keep + eps;
    const double lp = cell_loss_naive(c, in, xs[0], xs[1], xs[2], xs[3]);
    v[i] = keep - eps;
    const double lm = cell_loss_naive(c, in, xs[0], xs[1], xs[2], xs[3]);
    v[i] = keep;
    g[i] = (lp - lm) / (2 * eps);
  }
}

static void naive_cell_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const rnn_case *c = vc;
  const int64_t P = rc_P(c);
  double *xs[4] = {dcopy(in->a[S_X].v, c->B * c->I), dcopy(in->a[S_W].v, rc_wcount(c)),
                   c->h0 ? dcopy(in->a[S_H0].v, c->B * P) : NULL,
                   c->c0 && rc_lstm(c) ? dcopy(in->a[S_C0].v, c->B * c->H) : NULL};
  fd_cell_grad(c, in, xs, 0, sweep_add(ref, dt, c->B * c->I), c->B * c->I);
  if (c->h0) fd_cell_grad(c, in, xs, 2, sweep_add(ref, dt, c->B * P), c->B * P);
  if (c->c0 && rc_lstm(c)) fd_cell_grad(c, in, xs, 3, sweep_add(ref, dt, c->B * c->H), c->B * c->H);
  double *gw = dalloc(rc_wcount(c));
  fd_cell_grad(c, in, xs, 1, gw, rc_wcount(c));
  model m;
  rc_model(c, gw, &m);
  for (int j = 0; j < NW; j++)
    if (rc_has(c, j) && (c->gmask >> j & 1))
      memcpy(sweep_add(ref, dt, wnumel(&m, 0, j)), m.w[0][j], (size_t)wnumel(&m, 0, j) * sizeof(double));
  free(gw);
  for (int i = 0; i < 4; i++) free(xs[i]);
}

/* The reference (variant 0) against the naive model: DESIGN.md's tolerances (the
   gradients' truth is central differences, good to ~1e-9, so F64 gradients are not in
   these rows; section 2 holds them at 1e-6). A GPU variant against the reference: the
   tolerances of a whole recurrence (seq_tolerance), weight gradients 4x (sums over all
   steps and rows). */
static int rnn_compare(const char *what, const void *vc, int variant, const sweep_set *got, const sweep_set *ref,
                       int tf32) {
  (void)vc, (void)tf32;
  int ok = 1;
  for (int i = 0; i < ref->n && i < got->n; i++) {
    double atol, rtol;
    if (variant == 0)
      t_tolerance(ref->a[i].dt, 0, &atol, &rtol);
    else
      seq_tolerance(ref->a[i].dt, &atol, &rtol), atol *= 4, rtol *= 4;
    char w[256];
    snprintf(w, sizeof w, "%s [output %d]", what, i);
    ok &= t_close(w, got->a[i].v, ref->a[i].v, ref->a[i].n, atol, rtol);
  }
  CHECK(got->n == ref->n, "%s: %d outputs, expected %d", what, got->n, ref->n);
  return ok;
}

#define M_LSTM DLK_RNN_LSTM
#define M_GRU DLK_RNN_GRU
#define M_TANH DLK_RNN_TANH
#define M_RELU DLK_RNN_RELU
#define G_W 3    /* w_ih, w_hh */
#define G_ALL 31 /* every member */

static const rnn_case seq_fwd_cases[] = {
    {.mode = M_LSTM, .I = 3, .H = 4, .L = 1, .D = 1, .T = 4, .B = 2, .bias = 1, .h0 = 1, .c0 = 1, .lens = 1},
    {.mode = M_GRU, .I = 3, .H = 4, .L = 2, .D = 1, .T = 5, .B = 3, .h0 = 1},
    {.mode = M_GRU, .rb = 1, .I = 2, .H = 3, .L = 1, .D = 2, .T = 4, .B = 3, .lens = 1, .bf = 1},
    {.mode = M_TANH, .I = 3, .H = 5, .L = 1, .D = 2, .T = 3, .B = 2, .bias = 1, .h0 = 1, .lay = SW_PADDED},
    {.mode = M_RELU, .I = 4, .H = 3, .L = 1, .D = 1, .T = 6, .B = 1, .bias = 1},
    {.mode = M_LSTM, .I = 3, .H = 4, .L = 1, .D = 2, .T = 5, .B = 1, .bias = 1, .bf = 1},
    {.mode = M_LSTM, .I = 3, .H = 5, .P = 3, .L = 1, .D = 1, .T = 4, .B = 2, .bias = 1, .h0 = 1, .c0 = 1},
    {.tags.big = true, .mode = M_LSTM, .I = 64, .H = 257, .L = 1, .D = 1, .T = 20, .B = 8, .bias = 1, .h0 = 1, .c0 = 1},
    {.tags.big = true, .mode = M_GRU, .I = 32, .H = 1024, .L = 1, .D = 1, .T = 5, .B = 1, .bias = 1},
};
static const rnn_case seq_bwd_cases[] = {
    {.mode = M_LSTM, .I = 3, .H = 4, .L = 1, .D = 1, .T = 4, .B = 2, .c0 = 1, .dhn = 1, .dcn = 1, .gmask = G_W},
    {.mode = M_GRU, .I = 3, .H = 4, .L = 1, .D = 1, .T = 4, .B = 3, .bias = 1, .h0 = 1, .lens = 1, .gmask = G_W},
    {.mode = M_GRU, .rb = 1, .I = 2, .H = 3, .L = 1, .D = 1, .T = 4, .B = 2, .h0 = 1, .dhn = 1, .gmask = G_W, .bf = 1},
    {.mode = M_TANH, .I = 3, .H = 3, .L = 2, .D = 1, .T = 5, .B = 2, .gmask = G_W},
    {.mode = M_TANH, .I = 2, .H = 3, .L = 1, .D = 2, .T = 3, .B = 2, .lens = 1, .gmask = G_W, .lay = SW_PADDED},
    {.mode = M_LSTM, .I = 3, .H = 4, .P = 2, .L = 1, .D = 1, .T = 3, .B = 2, .gmask = G_ALL},
    {.tags.big = true, .mode = M_LSTM, .I = 64, .H = 257, .L = 1, .D = 1, .T = 10, .B = 4, .gmask = G_W},
};
static const rnn_case cell_fwd_cases[] = {
    {.mode = M_LSTM, .I = 3, .H = 4, .L = 1, .D = 1, .T = 1, .B = 3, .bias = 1, .h0 = 1, .c0 = 1},
    {.mode = M_GRU, .I = 4, .H = 3, .L = 1, .D = 1, .T = 1, .B = 2, .bias = 1, .h0 = 1},
    {.mode = M_GRU, .rb = 1, .I = 3, .H = 4, .L = 1, .D = 1, .T = 1, .B = 2, .bias = 1, .h0 = 1},
    {.mode = M_TANH, .I = 5, .H = 6, .L = 1, .D = 1, .T = 1, .B = 4, .bias = 1, .h0 = 1, .lay = SW_PADDED},
    {.mode = M_RELU, .I = 3, .H = 2, .L = 1, .D = 1, .T = 1, .B = 1},
    {.mode = M_LSTM, .I = 3, .H = 5, .P = 2, .L = 1, .D = 1, .T = 1, .B = 2, .h0 = 1, .c0 = 1},
    {.tags.big = true, .mode = M_LSTM, .I = 512, .H = 512, .L = 1, .D = 1, .T = 1, .B = 1, .bias = 1, .h0 = 1, .c0 = 1},
    {.tags.big = true, .mode = M_GRU, .I = 100, .H = 500, .L = 1, .D = 1, .T = 1, .B = 9, .bias = 1, .h0 = 1},
};
static const rnn_case cell_bwd_cases[] = {
    {.mode = M_LSTM, .I = 3, .H = 4, .L = 1, .D = 1, .T = 1, .B = 3, .h0 = 1, .dcn = 1, .gmask = G_W},
    {.mode = M_GRU, .I = 3, .H = 4, .L = 1, .D = 1, .T = 1, .B = 2, .bias = 1, .h0 = 1, .gmask = G_W},
    {.mode = M_GRU, .rb = 1, .I = 2, .H = 3, .L = 1, .D = 1, .T = 1, .B = 2, .h0 = 1, .gmask = G_W},
    {.mode = M_TANH, .I = 3, .H = 5, .L = 1, .D = 1, .T = 1, .B = 2, .bias = 1, .h0 = 1, .gmask = 12},
    {.mode = M_LSTM, .I = 3, .H = 4, .P = 2, .L = 1, .D = 1, .T = 1, .B = 2, .h0 = 1, .c0 = 1, .gmask = 16},
    {.tags.big = true, .mode = M_LSTM, .I = 64, .H = 257, .L = 1, .D = 1, .T = 1, .B = 8, .h0 = 1, .dcn = 1,
     .gmask = G_W},
};

/* F32, F16, BF16: the dtypes every variant takes (F64 is the CPU reference's alone, held
   by the goldens and section 2's finite differences; the backward's naive truth, central
   differences, could not hold F64 to its tolerance anyway). */
static const dlk_dtype rnn_dtypes[] = {DLK_F32, DLK_F16, DLK_BF16};
static const sweep_op rnn_rows[] = {
    {"rnn_cell_fwd", "rnn_cell_fwd", SWEEP_CASES(cell_fwd_cases), gen_cell, run_cell_fwd, naive_cell_fwd, 0, 1,
     rnn_dtypes, 3, rnn_compare},
    {"rnn_cell_bwd", "rnn_cell_bwd", SWEEP_CASES(cell_bwd_cases), gen_cell, run_cell_bwd, naive_cell_bwd, 0, -1,
     rnn_dtypes, 3, rnn_compare},
    {"rnn_fwd", "rnn_fwd", SWEEP_CASES(seq_fwd_cases), gen_seq, run_seq_fwd, naive_seq_fwd, 0, -1, rnn_dtypes, 3,
     rnn_compare},
    {"rnn_bwd", "rnn_bwd", SWEEP_CASES(seq_bwd_cases), gen_seq, run_seq_bwd, naive_seq_bwd, 0, -1, rnn_dtypes, 3,
     rnn_compare},
};

/* ====================================================================================== */
/* main                                                                                    */
/* ====================================================================================== */

/* ---- hostile shapes (fuzz_api): a batch of no sequence whose other dims are huge ---- */


/* B = 0 with T = 2^40: no sequence, so the training forward writes nothing (y, hn are
   empty, and no reserve is needed: the backward of such a call reads none) and the
   backward adds nothing to the weight gradients. The reference stepped through the 2^40
   time steps of no row: the reserve made the forward's outputs non-empty. */
static void test_hostile(dlk_context *ctx) {
  t_case = "hostile: B = 0, T = 2^40";
  t_watchdog_arm("test_rnn: a call on hostile shapes");
  const int64_t T40 = (int64_t)1 << 40, H = 2;
  static float wih[2], whh[4], gih[2], ghh[4], buf[16];
  static unsigned char res[512];
  for (int i = 0; i < 2; i++) wih[i] = 0.5f, gih[i] = 1.0f;
  for (int i = 0; i < 4; i++) whh[i] = 0.25f, ghh[i] = 1.0f;
  memset(res, 0xAB, sizeof res);
  const int64_t sx[3] = {T40, 0, 1}, sy[3] = {T40, 0, H}, sh[3] = {1, 0, H}, swih[2] = {H, 1}, swhh[2] = {H, H};
  dlk_tensor x = t_host_tensor(buf, DLK_F32, 3, sx), y = t_host_tensor(buf, DLK_F32, 3, sy), hn = t_host_tensor(buf, DLK_F32, 3, sh);
  dlk_tensor dx = x, dy = y, dh0 = hn;
  dlk_tensor tw_ih = t_host_tensor(wih, DLK_F32, 2, swih), tw_hh = t_host_tensor(whh, DLK_F32, 2, swhh);
  dlk_tensor tg_ih = t_host_tensor(gih, DLK_F32, 2, swih), tg_hh = t_host_tensor(ghh, DLK_F32, 2, swhh);
  dlk_rnn_weights w = {&tw_ih, &tw_hh, NULL, NULL, NULL};
  dlk_rnn_grads g = {&tg_ih, &tg_hh, NULL, NULL, NULL};
  dlk_rnn_params p;
  memset(&p, 0, sizeof p);
  p.mode = DLK_RNN_TANH, p.hidden_size = H, p.num_layers = 1, p.training = 1;
  size_t bytes = 0;
  CHECK_OK(ctx, dlk_rnn_reserve_size(ctx, &p, &x, &bytes));
  CHECK(bytes <= sizeof res, "reserve of %zu bytes for no sequence", bytes);
  int64_t rb = (int64_t)bytes;
  dlk_tensor r = t_host_tensor(res, DLK_U8, 1, &rb);
  const double t0 = t_now_s();
  CHECK_OK(ctx, dlk_rnn_forward(ctx, &p, &w, &x, NULL, NULL, NULL, &y, &hn, NULL, &r));
  CHECK_OK(ctx, dlk_rnn_backward(ctx, &p, &w, &x, NULL, NULL, NULL, &y, &r, &dy, NULL, NULL, &dx, &dh0, NULL, &g));
  const double took = t_now_s() - t0;
  CHECK(took < 1.0, "the calls took %.3f s", took);
  CHECK(gih[0] == 1.0f && ghh[3] == 1.0f, "the gradients changed: %g %g", gih[0], ghh[3]);
  for (size_t i = 0; i < sizeof res; i++)
    if (res[i] != 0xAB) {
      CHECK(0, "the reserve was written at byte %zu", i);
      break;
    }
  /* explain says the calls write nothing */
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, dlk_rnn_backward(ctx, &p, &w, &x, NULL, NULL, NULL, &y, &r, &dy, NULL, NULL, &dx, &dh0, NULL, &g));
  const char *rep = "";
  CHECK_OK(ctx, dlk_explain_report(ctx, &rep));
  CHECK(strstr(rep, "every output is empty") != NULL, "report: %s", rep);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  t_watchdog_disarm();
}

int main(int argc, char **argv) {
  t_seed(12);
  if (sweep_list_ops(argc, argv, rnn_rows, N_OF(rnn_rows))) return 0;
  quick_mode = t_quick_mode();
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_rnn");
    dlk_context *cpu = t_cpu_context();
    sweep_run(g, cpu, rnn_rows, N_OF(rnn_rows), quick_mode);
    dlk_context_destroy(cpu);
    test_golden(g, 1);
    test_gpu(g);
    dlk_context_destroy(g);
    return t_summary("test_rnn --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  test_golden(ctx, 0);
  test_fd(ctx);
  test_invariants(ctx);
  test_bad_input(ctx);
  test_hostile(ctx);
  test_explain(ctx);
  sweep_run(ctx, NULL, rnn_rows, N_OF(rnn_rows), 0);
  dlk_context *ref = t_cpu_context(); /* the GPU run's path, on the quick subset */
  sweep_run(ctx, ref, rnn_rows, N_OF(rnn_rows), 1);
  dlk_context_destroy(ref);
  dlk_context_destroy(ctx);
  return t_summary("test_rnn");
}
