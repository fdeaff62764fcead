/*
 * conv family tests.
 *
 * CPU run (default):
 *   1. golden fixtures made by PyTorch (tests/golden/conv/NAME.txt, see
 *      make_conv_golden.py) against the CPU reference, at the DESIGN.md tolerances, each
 *      in the layout the case asks for (NCHW or channels-last memory);
 *   2. finite-difference checks in f64 of every CPU backward (conv2d dx, dw, db through
 *      every activation; Gram df);
 *   3. the variant sweep over a CPU context: every op x variant x dtype x layout on the
 *      shape table below against the CPU reference run on NCHW-dense copies of the same
 *      inputs; deterministic mode gives the same bits twice;
 *   4. a table of bad inputs: exact status, a message naming the tensor and dimension,
 *      every output byte unchanged, inputs unchanged;
 *   5. explain mode.
 * GPU run (--gpu; exit 77 when no GPU): the same sweep over a CUDA context, each variant
 *   against the CPU reference on host copies of the same inputs, f32 with TF32 off and
 *   on; layouts a forced variant declines; host tensors on a CUDA context.
 * DLK_TEST_QUICK=1 runs a small subset of the sweep (for compute-sanitizer).
 *
 * Every tensor of the sweep lives inside a larger allocation filled with 0xFF bytes (NaN
 * in every float dtype): a kernel that reads outside its view produces NaN, one that
 * writes outside it is caught by the guard check, and a call that fails must leave its
 * outputs entirely 0xFF.
 *
 * Sections: harness (tensors, rig, golden reader), conv2d, Gram, then the ops the
 * family adds after them (pooling, batch norm, MSE), then main.
 */
#include <inttypes.h>

#include "check.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];
static int quick_mode = 0;

/* ====================================================================================== */
/* Harness: host arrays, test tensors in guarded allocations, the rig of one call          */
/* ====================================================================================== */

static double round_to(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}

/* Uniform values in [lo, hi) rounded to dt (malloc'd; n may be 0). */
static double *h_uniform(dlk_dtype dt, int64_t n, double lo, double hi) {
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; i++) v[i] = round_to(dt, t_uniform(lo, hi));
  return v;
}

static int64_t prod(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= shape[k];
  return n;
}

/* Element offset of row-major (logical) index i. */
static int64_t t_offset(const dlk_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int k = t->ndim - 1; k >= 0; k--) {
    off += (i % t->shape[k]) * t->strides[k];
    i /= t->shape[k];
  }
  return off;
}

static void dense_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    strides[k] = s;
    s *= shape[k] > 0 ? shape[k] : 1;
  }
}

/* Layouts of a test tensor: NCHW-dense (row-major), channels-last (4-D: torch's
   channels_last strides; other ranks: row-major), odd (row pitch + 3, every outer stride
   one element more than needed, data one element past a 16-byte boundary; 1-D stride 2). */
enum { L_NCHW = 0, L_NHWC = 1, L_ODD = 2, L_COUNT };
static const char *const layout_names[L_COUNT] = {"nchw", "nhwc", "odd"};

/* Strides for a layout; returns the elements the view spans from its first element. */
static int64_t layout_strides(int layout, int ndim, const int64_t *shape, int64_t *st) {
  if (layout == L_NHWC && ndim == 4) {
    const int64_t c = shape[1], h = shape[2], w = shape[3];
    st[1] = 1, st[3] = c, st[2] = w * c, st[0] = h * w * c;
  } else if (layout == L_ODD && ndim >= 1) {
    int64_t s = ndim == 1 ? 2 : 1;
    for (int k = ndim - 1; k >= 0; k--) {
      st[k] = s;
      s = s * (shape[k] > 0 ? shape[k] : 1) + (k == ndim - 1 ? 3 : 1);
    }
  } else {
    dense_strides(ndim, shape, st);
  }
  int64_t span = 1;
  for (int k = 0; k < ndim; k++)
    if (shape[k] > 0) span += (shape[k] - 1) * st[k];
  return prod(ndim, shape) == 0 ? 0 : span;
}

typedef struct {
  dlk_tensor v, base;
  int64_t off; /* element offset of v.data in base */
  int64_t base_n;
  int live;
} tt;

static dlk_status tt_make(dlk_context *ctx, tt *t, dlk_dtype dt, int ndim, const int64_t *shape, int layout) {
  memset(t, 0, sizeof *t);
  dlk_tensor v;
  memset(&v, 0, sizeof v);
  v.dtype = dt;
  v.ndim = ndim;
  for (int k = 0; k < ndim; k++) v.shape[k] = shape[k];
  const int64_t span = layout_strides(layout, ndim, shape, v.strides);
  const int64_t off = layout == L_ODD ? 1 : 0;
  const int64_t bn = off + span + 16; /* a guard zone past the end catches overruns */
  dlk_status s = dlk_tensor_alloc(ctx, &t->base, dt, 1, &bn);
  if (s != DLK_OK) return s;
  const size_t bytes = (size_t)bn * dlk_dtype_size(dt);
  unsigned char *ff = malloc(bytes);
  memset(ff, 0xFF, bytes);
  s = dlk_tensor_write(ctx, &t->base, ff, bytes);
  free(ff);
  if (s != DLK_OK) {
    dlk_tensor_free(ctx, &t->base);
    return s;
  }
  v.device = t->base.device;
  v.data = (char *)t->base.data + off * (int64_t)dlk_dtype_size(dt);
  t->v = v;
  t->off = off;
  t->base_n = bn;
  t->live = 1;
  return DLK_OK;
}

static dlk_status tt_write(dlk_context *ctx, tt *t, const double *vals) {
  const int64_t n = prod(t->v.ndim, t->v.shape);
  if (n == 0) return DLK_OK;
  const size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  for (int64_t i = 0; i < n; i++) dlk_store(buf, t->v.dtype, i, vals[i]);
  dlk_status s = dlk_tensor_write(ctx, &t->v, buf, (size_t)n * es);
  free(buf);
  return s;
}

static dlk_status tt_read(dlk_context *ctx, const tt *t, double *out) {
  const int64_t n = prod(t->v.ndim, t->v.shape);
  if (n == 0) return DLK_OK;
  const size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  dlk_status s = dlk_tensor_read(ctx, &t->v, buf, (size_t)n * es);
  for (int64_t i = 0; i < n && s == DLK_OK; i++) out[i] = dlk_load(buf, t->v.dtype, i);
  free(buf);
  return s;
}

/* Number of base elements that are not 0xFF bytes: outside the view only, or all. */
static int64_t tt_dirty(dlk_context *ctx, const tt *t, int whole) {
  const size_t es = dlk_dtype_size(t->v.dtype), bytes = (size_t)t->base_n * es;
  unsigned char *buf = malloc(bytes), *in = calloc((size_t)t->base_n, 1);
  int64_t bad = 0;
  if (dlk_tensor_read(ctx, &t->base, buf, bytes) != DLK_OK) {
    bad = -1;
  } else {
    const int64_t n = prod(t->v.ndim, t->v.shape);
    if (!whole)
      for (int64_t i = 0; i < n; i++) in[t->off + t_offset(&t->v, i)] = 1;
    for (int64_t e = 0; e < t->base_n; e++) {
      if (in[e]) continue;
      for (size_t b = 0; b < es; b++)
        if (buf[(size_t)e * es + b] != 0xFF) {
          bad++;
          break;
        }
    }
  }
  free(buf);
  free(in);
  return bad;
}

static void tt_free(dlk_context *ctx, tt *t) {
  if (t->live) dlk_tensor_free(ctx, &t->base);
  t->live = 0;
}

/* ---- a rig: the tensors of one call; inputs are checked unchanged afterwards ---- */

enum { R_IN = 0, R_OUT = 1 };
#define RIG_MAX 12
typedef struct {
  dlk_context *ctx;
  tt t[RIG_MAX];
  int role[RIG_MAX];
  const double *vals[RIG_MAX];
  int n;
  int failed;
} rig;

static dlk_tensor *rig_add(rig *r, int role, dlk_dtype dt, int ndim, const int64_t *shape, int layout,
                           const double *vals) {
  if (r->n >= RIG_MAX) {
    fprintf(stderr, "rig overflow\n");
    exit(2);
  }
  tt *t = &r->t[r->n];
  dlk_status s = tt_make(r->ctx, t, dt, ndim, shape, layout);
  if (s == DLK_OK && vals) s = tt_write(r->ctx, t, vals);
  CHECK(s == DLK_OK, "test tensor setup: %s: %s", dlk_status_string(s), dlk_context_last_error(r->ctx));
  if (s != DLK_OK) r->failed = 1;
  r->role[r->n] = role;
  r->vals[r->n] = vals;
  r->n++;
  return &t->v;
}
static dlk_tensor *rig_in(rig *r, dlk_dtype dt, int ndim, const int64_t *shape, int layout, const double *vals) {
  return rig_add(r, R_IN, dt, ndim, shape, layout, vals);
}
static dlk_tensor *rig_out(rig *r, dlk_dtype dt, int ndim, const int64_t *shape, int layout) {
  return rig_add(r, R_OUT, dt, ndim, shape, layout, NULL);
}

/* After the call: read the outputs (in the order they were added) into out[] (malloc'd,
   NULL when the call failed), check that nothing outside a view changed, that inputs are
   unchanged, and that a failed call left its outputs untouched. Frees the tensors. */
static dlk_status rig_end(rig *r, dlk_status s, double **out) {
  int k = 0;
  for (int i = 0; i < r->n; i++) {
    tt *t = &r->t[i];
    const int64_t n = prod(t->v.ndim, t->v.shape);
    if (r->role[i] == R_OUT && out) out[k] = NULL;
    if (!t->live) {
      if (r->role[i] == R_OUT) k++;
      continue;
    }
    if (r->role[i] == R_OUT) {
      if (s == DLK_OK && out) {
        out[k] = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        CHECK(tt_read(r->ctx, t, out[k]) == DLK_OK, "read back output %d", i);
      }
      k++;
      const int64_t bad = tt_dirty(r->ctx, t, s != DLK_OK);
      if (s != DLK_OK)
        CHECK(bad == 0, "failed call (%s) wrote %lld elements of output %d", dlk_status_string(s), (long long)bad, i);
      else
        CHECK(bad == 0, "%lld elements outside the view of output %d changed", (long long)bad, i);
    } else {
      const int64_t bad = tt_dirty(r->ctx, t, 0);
      CHECK(bad == 0, "%lld elements outside the view of input %d changed", (long long)bad, i);
      double *now = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
      CHECK(tt_read(r->ctx, t, now) == DLK_OK, "read back input %d", i);
      int64_t changed = 0;
      for (int64_t e = 0; e < n; e++)
        if (memcmp(&now[e], &r->vals[i][e], sizeof(double)) != 0 && !(isnan(now[e]) && isnan(r->vals[i][e])))
          changed++;
      CHECK(changed == 0, "input %d: %lld elements changed", i, (long long)changed);
      free(now);
    }
    tt_free(r->ctx, t);
  }
  r->n = 0;
  return s;
}

static void free_outs(double **out, int n) {
  for (int i = 0; i < n; i++) free(out[i]), out[i] = NULL;
}

/* ====================================================================================== */
/* Golden fixtures: reader                                                                 */
/* ====================================================================================== */

typedef struct {
  char name[32];
  int out; /* 0 in, 1 out */
  dlk_dtype dt;
  int ndim;
  int64_t shape[DLK_MAX_DIMS];
  int64_t n;
  double *v;
} gtensor;

typedef struct {
  char name[96], op[32];
  char pkey[24][24], pval[24][40];
  int np;
  gtensor t[16];
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

/* Whitespace tokenizer over a whole file with '#' comment lines removed. */
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

/* Reads the next case; 1 on success, 0 at the end, -1 on a format error. */
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
      if (!k || !v || c->np >= 24) return -1;
      snprintf(c->pkey[c->np], sizeof c->pkey[0], "%s", k);
      snprintf(c->pval[c->np], sizeof c->pval[0], "%s", v);
      c->np++;
    } else if (strcmp(w, "in") == 0 || strcmp(w, "out") == 0) {
      if (c->nt >= 16) return -1;
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
      t->v = calloc((size_t)(t->n > 0 ? t->n : 1), sizeof(double));
      for (int64_t i = 0; i < t->n; i++) {
        char *d = g_next(tk);
        if (!d) return -1;
        /* the file prints just enough digits for the dtype: round to it */
        t->v[i] = round_to(t->dt, strtod(d, NULL));
      }
    } else {
      return -1;
    }
  }
  return -1;
}

/* Runs fn on every case of tests/golden/conv/<file>.txt; returns the number of cases. */
static int golden_file(dlk_context *ctx, const char *file, void (*fn)(dlk_context *, gcase *)) {
  char rel[128];
  snprintf(rel, sizeof rel, "tests/golden/conv/%s.txt", file);
  const char *path = t_src_path(rel);
  FILE *fp = fopen(path, "rb");
  t_case = "golden";
  CHECK(fp != NULL, "cannot open %s (set DLK_SOURCE_DIR to the source tree)", path);
  if (!fp) return 0;
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  size_t got = fread(buf, 1, (size_t)len, fp);
  buf[got] = '\0';
  fclose(fp);
  gtok tk = {buf, buf};
  gcase c;
  int r, n = 0;
  while ((r = g_read_case(&tk, &c)) == 1) {
    snprintf(t_case_buf, sizeof t_case_buf, "golden %s", c.name);
    t_case = t_case_buf;
    fn(ctx, &c);
    g_free(&c);
    n++;
  }
  t_case = "golden";
  CHECK(r == 0, "%s: format error after %d cases", path, n);
  g_free(&c);
  CHECK(n > 0, "%s holds no case", path);
  free(buf);
  return n;
}

/* Golden input `name` as a rig input in `layout` (NULL when the case has none). */
static dlk_tensor *g_rig_in(rig *r, gcase *c, const char *name, int layout) {
  gtensor *g = g_find(c, name, 0);
  return g ? rig_in(r, g->dt, g->ndim, g->shape, layout, g->v) : NULL;
}
/* A rig output shaped like the expected `name`. */
static dlk_tensor *g_rig_out(rig *r, gcase *c, const char *name, int layout) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g != NULL, "golden %s: no output %s", c->name, name);
  return g ? rig_out(r, g->dt, g->ndim, g->shape, layout) : NULL;
}
/* Compare a result (logical row-major doubles) with the expected output `name`. */
static void g_expect(gcase *c, const char *name, const double *got) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g != NULL && got != NULL, "golden %s: output %s missing", c->name, name);
  if (!g || !got) return;
  double atol, rtol;
  t_tolerance(g->dt, 0, &atol, &rtol);
  char what[160];
  snprintf(what, sizeof what, "golden %s: %s", c->name, name);
  t_close(what, got, g->v, g->n, atol, rtol);
}

/* ====================================================================================== */
/* conv2d                                                                                  */
/* ====================================================================================== */

/* One convolution problem. */
typedef struct {
  const char *name;
  int64_t n, c, h, w, k, r, s;
  int64_t stride[2], pad[2], dil[2], groups;
  int bias;
  int act;
} conv_case;

static dlk_conv2d_params cc_params(const conv_case *cc) {
  dlk_conv2d_params p;
  memset(&p, 0, sizeof p);
  for (int i = 0; i < 2; i++) p.stride[i] = cc->stride[i], p.padding[i] = cc->pad[i], p.dilation[i] = cc->dil[i];
  p.groups = cc->groups;
  p.act = (dlk_activation)cc->act;
  return p;
}

static int64_t cc_out(const conv_case *cc, int i) {
  const int64_t in = i ? cc->w : cc->h, ker = i ? cc->s : cc->r;
  return dlk_conv2d_output_dim(in, ker, cc->stride[i], cc->pad[i], cc->dil[i]);
}

static void cc_shapes(const conv_case *cc, int64_t xs[4], int64_t ws[4], int64_t ys[4]) {
  const int64_t g = cc->groups ? cc->groups : 1;
  xs[0] = cc->n, xs[1] = cc->c, xs[2] = cc->h, xs[3] = cc->w;
  ws[0] = cc->k, ws[1] = cc->c / g, ws[2] = cc->r, ws[3] = cc->s;
  ys[0] = cc->n, ys[1] = cc->k, ys[2] = cc_out(cc, 0), ys[3] = cc_out(cc, 1);
}

/* Host values of one problem (logical NCHW row-major). */
typedef struct {
  double *x, *w, *b, *z, *dy;
} conv_vals;

static void cv_free(conv_vals *v) {
  free(v->x), free(v->w), free(v->b), free(v->z), free(v->dy);
  memset(v, 0, sizeof *v);
}

/* x uniform in [-1, 1), w scaled by 1 / sqrt(fan-in), b in [-0.5, 0.5), z in [-2, 2) with
   no value near 0 (relu's kink), dy scaled so that dw (N Ho Wo products) stays O(1). */
static void cv_make(const conv_case *cc, dlk_dtype dt, conv_vals *v) {
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  const double fan = (double)(ws[1] * ws[2] * ws[3]), wsc = fan > 0 ? 1.0 / sqrt(fan) : 1.0;
  const double dsc = fmin(1.0, 2.0 / sqrt((double)(ys[0] * ys[2] * ys[3] > 0 ? ys[0] * ys[2] * ys[3] : 1)));
  v->x = h_uniform(dt, prod(4, xs), -1, 1);
  v->w = h_uniform(dt, prod(4, ws), -wsc, wsc);
  v->b = h_uniform(dt, cc->k, -0.5, 0.5);
  v->z = h_uniform(dt, prod(4, ys), -2, 2);
  for (int64_t i = 0; i < prod(4, ys); i++)
    if (fabs(v->z[i]) < 0.05) v->z[i] = round_to(dt, v->z[i] < 0 ? -0.5 : 0.5);
  v->dy = h_uniform(dt, prod(4, ys), -dsc, dsc);
}

/* What a conv call computes. */
enum { K_FWD = 0, K_BWD_DATA, K_BWD_FILTER, K_BWD_BIAS, K_BWD_ALL, K_KIND_COUNT };
static const char *const kind_names[K_KIND_COUNT] = {"fwd", "bwd_data", "bwd_filter", "bwd_bias", "bwd_all"};
/* The dispatch op a kind exercises (what the sweep forces). */
static const char *const kind_ops[K_KIND_COUNT] = {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter",
                                                   "conv2d_bwd_bias", NULL};

/* Run one conv call on ctx with every tensor in `layout` (1-D tensors NCHW-dense unless
   the layout is odd). Outputs in order: fwd y, z; bwd dx, dw, db (those computed).
   Returns the status; out[] gets the results (NULL for absent ones). */
static dlk_status conv_call(dlk_context *ctx, int kind, const conv_case *cc, dlk_dtype dt, int layout,
                            const conv_vals *v, double **out) {
  int64_t xs[4], ws[4], ys[4], ks[1] = {cc->k};
  cc_shapes(cc, xs, ws, ys);
  const dlk_conv2d_params p = cc_params(cc);
  const int l1 = layout == L_ODD ? L_ODD : L_NCHW;
  rig r = {.ctx = ctx};
  dlk_status s;
  if (kind == K_FWD) {
    dlk_tensor *x = rig_in(&r, dt, 4, xs, layout, v->x), *w = rig_in(&r, dt, 4, ws, layout, v->w);
    dlk_tensor *b = cc->bias ? rig_in(&r, dt, 1, ks, l1, v->b) : NULL;
    dlk_tensor *y = rig_out(&r, dt, 4, ys, layout), *z = rig_out(&r, dt, 4, ys, layout);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_conv2d_forward(ctx, &p, x, w, b, y, z);
    return rig_end(&r, s, out);
  }
  dlk_tensor *x = rig_in(&r, dt, 4, xs, layout, v->x), *w = rig_in(&r, dt, 4, ws, layout, v->w);
  dlk_tensor *z = cc->act ? rig_in(&r, dt, 4, ys, layout, v->z) : NULL;
  dlk_tensor *dy = rig_in(&r, dt, 4, ys, layout, v->dy);
  dlk_tensor *dx = NULL, *dw = NULL, *db = NULL;
  if (kind == K_BWD_DATA || kind == K_BWD_ALL) dx = rig_out(&r, dt, 4, xs, layout);
  if (kind == K_BWD_FILTER || kind == K_BWD_ALL) dw = rig_out(&r, dt, 4, ws, layout);
  if (kind == K_BWD_BIAS || kind == K_BWD_ALL) db = rig_out(&r, dt, 1, ks, l1);
  s = r.failed ? DLK_ERR_INTERNAL : dlk_conv2d_backward(ctx, &p, x, w, z, dy, dx, dw, db);
  return rig_end(&r, s, out);
}

static int kind_outputs(int kind) { return kind == K_FWD ? 2 : kind == K_BWD_ALL ? 3 : 1; }

/* ---- goldens ---- */

static void golden_conv(dlk_context *ctx, gcase *c) {
  conv_case cc;
  memset(&cc, 0, sizeof cc);
  cc.name = c->name;
  cc.stride[0] = g_i64(c, "stride_h"), cc.stride[1] = g_i64(c, "stride_w");
  cc.pad[0] = g_i64(c, "pad_h"), cc.pad[1] = g_i64(c, "pad_w");
  cc.dil[0] = g_i64(c, "dil_h"), cc.dil[1] = g_i64(c, "dil_w");
  cc.groups = g_i64(c, "groups");
  cc.act = (int)g_i64(c, "act");
  const int layout = g_i64(c, "cl") ? L_NHWC : L_NCHW;
  const dlk_conv2d_params p = cc_params(&cc);
  rig r = {.ctx = ctx};
  double *out[3] = {NULL, NULL, NULL};
  dlk_status s;
  if (strcmp(c->op, "conv2d_fwd") == 0) {
    dlk_tensor *x = g_rig_in(&r, c, "x", layout), *w = g_rig_in(&r, c, "w", layout), *b = g_rig_in(&r, c, "b", L_NCHW);
    dlk_tensor *y = g_rig_out(&r, c, "y", layout), *z = g_rig_out(&r, c, "z", layout);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_conv2d_forward(ctx, &p, x, w, b, y, z);
    rig_end(&r, s, out);
    if (s == DLK_OK) g_expect(c, "y", out[0]), g_expect(c, "z", out[1]);
  } else if (strcmp(c->op, "conv2d_bwd") == 0) {
    dlk_tensor *x = g_rig_in(&r, c, "x", layout), *w = g_rig_in(&r, c, "w", layout), *z = g_rig_in(&r, c, "z", layout);
    dlk_tensor *dy = g_rig_in(&r, c, "dy", layout);
    dlk_tensor *dx = g_rig_out(&r, c, "dx", layout), *dw = g_rig_out(&r, c, "dw", layout);
    dlk_tensor *db = g_rig_out(&r, c, "db", L_NCHW);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_conv2d_backward(ctx, &p, x, w, z, dy, dx, dw, db);
    rig_end(&r, s, out);
    if (s == DLK_OK) g_expect(c, "dx", out[0]), g_expect(c, "dw", out[1]), g_expect(c, "db", out[2]);
  } else {
    CHECK(0, "unknown op %s", c->op);
    return;
  }
  CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
  free_outs(out, 3);
}

/* ---- finite differences (f64, CPU reference) ---- */

/* L = sum(y * dy) with y = act(conv(x, w) + b): central differences of L in every element
   of x, w and b against dx, dw, db from dlk_conv2d_backward with that dy and the z of the
   forward. */
static double fd_loss(dlk_context *ctx, const conv_case *cc, const conv_vals *v) {
  double *out[2] = {NULL, NULL};
  dlk_status s = conv_call(ctx, K_FWD, cc, DLK_F64, L_NCHW, v, out);
  CHECK(s == DLK_OK, "fd forward: %s", dlk_context_last_error(ctx));
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  double l = 0;
  for (int64_t i = 0; s == DLK_OK && i < prod(4, ys); i++) l += out[0][i] * v->dy[i];
  free_outs(out, 2);
  return l;
}

static void fd_conv_case(dlk_context *ctx, const conv_case *cc) {
  snprintf(t_case_buf, sizeof t_case_buf, "fd conv2d %s act %d", cc->name, cc->act);
  t_case = t_case_buf;
  conv_vals v;
  cv_make(cc, DLK_F64, &v);
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  /* z from the forward: the backward's act' reads it */
  double *fo[2] = {NULL, NULL};
  CHECK_OK(ctx, conv_call(ctx, K_FWD, cc, DLK_F64, L_NCHW, &v, fo));
  if (!fo[1]) return cv_free(&v);
  memcpy(v.z, fo[1], (size_t)prod(4, ys) * sizeof(double));
  free_outs(fo, 2);
  double *g[3] = {NULL, NULL, NULL};
  CHECK_OK(ctx, conv_call(ctx, K_BWD_ALL, cc, DLK_F64, L_NCHW, &v, g));
  double *params[3] = {v.x, v.w, v.b};
  const int64_t counts[3] = {prod(4, xs), prod(4, ws), cc->bias ? cc->k : 0};
  static const char *const names[3] = {"dx", "dw", "db"};
  const double h = 1e-6;
  for (int t = 0; t < 3 && g[0]; t++) {
    double *fd = malloc((size_t)(counts[t] > 0 ? counts[t] : 1) * sizeof(double));
    for (int64_t i = 0; i < counts[t]; i++) {
      const double keep = params[t][i];
      params[t][i] = keep + h;
      const double lp = fd_loss(ctx, cc, &v);
      params[t][i] = keep - h;
      const double lm = fd_loss(ctx, cc, &v);
      params[t][i] = keep;
      fd[i] = (lp - lm) / (2 * h);
    }
    char what[96];
    snprintf(what, sizeof what, "finite differences of %s", names[t]);
    /* central differences with h = 1e-6 on O(1) values: ~1e-9 truncation and rounding */
    if (counts[t]) t_close(what, g[t], fd, counts[t], 1e-7, 1e-6);
    free(fd);
  }
  free_outs(g, 3);
  cv_free(&v);
}

/* ---- the shape table of the sweep ---- */

/* name, N, C, H, W, K, R, S, stride, pad, dil, groups, bias, act */
static const conv_case sweep_cases[] = {
    {"3x3_odd", 2, 3, 7, 9, 5, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1, 0},
    {"1x1", 2, 8, 5, 6, 12, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, 1, 0},
    {"1x1_s2", 1, 6, 7, 8, 4, 1, 1, {2, 2}, {0, 0}, {1, 1}, 1, 0, 0},
    {"7x7_s2", 1, 3, 17, 15, 8, 7, 7, {2, 2}, {3, 3}, {1, 1}, 1, 1, 1},
    {"dil2", 2, 4, 9, 10, 6, 3, 3, {1, 1}, {2, 2}, {2, 2}, 1, 1, 0},
    {"groups2", 2, 6, 7, 7, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2, 1, 1},
    {"depthwise", 2, 8, 9, 9, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 8, 1, 0},
    {"depthwise_s2_mult2", 1, 5, 10, 11, 10, 3, 3, {2, 2}, {1, 1}, {1, 1}, 5, 0, 0},
    {"pad_ge_half", 1, 3, 5, 6, 4, 3, 5, {1, 2}, {2, 3}, {1, 1}, 1, 1, 2},
    {"out1", 2, 3, 3, 4, 4, 3, 3, {1, 1}, {1, 1}, {2, 2}, 1, 1, 0},
    {"asym", 1, 5, 8, 11, 7, 3, 2, {2, 1}, {1, 0}, {1, 3}, 1, 1, 4},
    {"batch32", 32, 3, 6, 5, 4, 3, 3, {2, 1}, {1, 1}, {1, 1}, 1, 1, 1},
    {"c16_tc", 2, 16, 9, 11, 24, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1, 1},
    {"c32_1x1_tc", 2, 32, 6, 7, 64, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, 1, 0},
    {"c16_s2_tc", 1, 16, 12, 13, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 1, 0, 3},
    {"c32_groups2_tc", 1, 32, 7, 6, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2, 1, 0},
    {"dw_c32", 2, 32, 12, 10, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 32, 1, 1},
    {"dw_5x5_dil", 1, 16, 11, 9, 16, 5, 5, {1, 1}, {4, 2}, {2, 1}, 16, 1, 0},
    {"empty_batch", 0, 3, 5, 5, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1, 1},
};

static const dlk_dtype sweep_dtypes[] = {DLK_F32, DLK_F16, DLK_BF16, DLK_F64};

/* Variant ids of an op that run on the context's device. */
static int device_variants(dlk_context *ctx, const char *op, int *ids, int cap) {
  dlk_variant_info info[32];
  int count = 0, n = 0;
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  CHECK_OK(ctx, dlk_op_variants(ctx, op, info, 32, &count));
  for (int i = 0; i < count && i < 32; i++)
    if (info[i].device == dev.type && n < cap) ids[n++] = info[i].id;
  return n;
}

typedef struct {
  int ran, unsupported;
} sweep_stats;

/* Every variant of the kind's op, every dtype and layout, on one case: each result
   against the CPU reference (a CPU context, NCHW-dense copies of the same inputs). */
static void sweep_conv_case(dlk_context *ctx, dlk_context *cpu, const conv_case *cc, int kind, int tf32,
                            sweep_stats *st) {
  const char *op = kind_ops[kind];
  int ids[32];
  const int nv = device_variants(ctx, op, ids, 32);
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  const int nout = kind_outputs(kind);
  for (int d = 0; d < N_OF(sweep_dtypes); d++) {
    const dlk_dtype dt = sweep_dtypes[d];
    if (tf32 && dt != DLK_F32) continue;
    conv_vals v;
    cv_make(cc, dt, &v);
    double *ref[3] = {NULL, NULL, NULL};
    snprintf(t_case_buf, sizeof t_case_buf, "sweep %s %s %s reference", kind_names[kind], cc->name, dlk_dtype_name(dt));
    t_case = t_case_buf;
    dlk_status rs = conv_call(cpu, kind, cc, dt, L_NCHW, &v, ref);
    CHECK(rs == DLK_OK, "reference: %s: %s", dlk_status_string(rs), dlk_context_last_error(cpu));
    double atol, rtol;
    t_tolerance(dt, tf32, &atol, &rtol);
    for (int i = 0; i < nv && rs == DLK_OK; i++)
      for (int layout = 0; layout < L_COUNT; layout++) {
        if (quick_mode && layout == L_ODD) continue;
        snprintf(t_case_buf, sizeof t_case_buf, "sweep %s:%d %s %s %s%s", op, ids[i], cc->name, dlk_dtype_name(dt),
                 layout_names[layout], tf32 ? " tf32" : "");
        t_case = t_case_buf;
        CHECK_OK(ctx, dlk_force_variant(ctx, op, ids[i]));
        double *got[3] = {NULL, NULL, NULL};
        dlk_status s = conv_call(ctx, kind, cc, dt, layout, &v, got);
        if (s == DLK_ERR_NOT_SUPPORTED) {
          CHECK(strstr(dlk_context_last_error(ctx), "(") != NULL, "no reason given: %s", dlk_context_last_error(ctx));
          st->unsupported++;
        } else {
          CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
          st->ran++;
          for (int k = 0; k < nout && s == DLK_OK; k++) {
            int64_t n = 0;
            int64_t xs[4], ws[4], ys[4];
            cc_shapes(cc, xs, ws, ys);
            if (kind == K_FWD) n = prod(4, ys);
            else if (kind == K_BWD_DATA) n = prod(4, xs);
            else if (kind == K_BWD_FILTER) n = prod(4, ws);
            else if (kind == K_BWD_BIAS) n = cc->k;
            char what[64];
            snprintf(what, sizeof what, "output %d", k);
            if (got[k] && ref[k]) t_close(what, got[k], ref[k], n, atol, rtol);
          }
          /* deterministic mode: the same bits on a rerun */
          if (s == DLK_OK && dev.type == DLK_CUDA && (kind == K_BWD_FILTER || kind == K_BWD_DATA)) {
            double *again[3] = {NULL, NULL, NULL}, *first[3] = {NULL, NULL, NULL};
            CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
            dlk_status s1 = conv_call(ctx, kind, cc, dt, layout, &v, first);
            dlk_status s2 = conv_call(ctx, kind, cc, dt, layout, &v, again);
            CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
            if (s1 == DLK_OK && s2 == DLK_OK) {
              int64_t xs[4], ws[4], ys[4];
              cc_shapes(cc, xs, ws, ys);
              const int64_t n = kind == K_BWD_FILTER ? prod(4, ws) : prod(4, xs);
              CHECK(memcmp(first[0], again[0], (size_t)n * sizeof(double)) == 0, "deterministic mode: reruns differ");
            }
            free_outs(first, 3), free_outs(again, 3);
          }
        }
        free_outs(got, 3);
      }
    CHECK_OK(ctx, dlk_force_variant(ctx, op, -1));
    free_outs(ref, 3);
    cv_free(&v);
  }
}

static void sweep_conv(dlk_context *ctx, dlk_context *cpu, int tf32) {
  sweep_stats st = {0, 0};
  for (int i = 0; i < N_OF(sweep_cases); i++) {
    if (quick_mode && i % 4) continue;
    for (int kind = K_FWD; kind <= K_BWD_BIAS; kind++) sweep_conv_case(ctx, cpu, &sweep_cases[i], kind, tf32, &st);
  }
  printf("sweep conv2d%s: %d variant runs checked, %d declined (unsupported, with a reason)\n", tf32 ? " (tf32)" : "",
         st.ran, st.unsupported);
}

/* ====================================================================================== */
/* Gram matrix                                                                             */
/* ====================================================================================== */

static void golden_gram(dlk_context *ctx, gcase *c) {
  dlk_gram_params p = {(dlk_gram_norm)g_i64(c, "norm")};
  const int layout = g_i64(c, "cl") ? L_NHWC : L_NCHW;
  rig r = {.ctx = ctx};
  double *out[1] = {NULL};
  dlk_status s;
  if (strcmp(c->op, "gram_fwd") == 0) {
    dlk_tensor *f = g_rig_in(&r, c, "f", layout), *g = g_rig_out(&r, c, "g", L_NCHW);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_gram_forward(ctx, &p, f, g);
    rig_end(&r, s, out);
    if (s == DLK_OK) g_expect(c, "g", out[0]);
  } else if (strcmp(c->op, "gram_bwd") == 0) {
    dlk_tensor *f = g_rig_in(&r, c, "f", layout), *dg = g_rig_in(&r, c, "dg", L_NCHW);
    dlk_tensor *df = g_rig_out(&r, c, "df", layout);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_gram_backward(ctx, &p, f, dg, df);
    rig_end(&r, s, out);
    if (s == DLK_OK) g_expect(c, "df", out[0]);
  } else {
    CHECK(0, "unknown op %s", c->op);
    return;
  }
  CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
  free_outs(out, 1);
}

typedef struct {
  const char *name;
  int64_t n, c, h, w;
  int norm;
} gram_case;

static const gram_case gram_cases[] = {
    {"plain", 2, 3, 4, 5, 0}, {"hw", 3, 8, 7, 9, 1},   {"chw", 1, 16, 6, 6, 2},
    {"one", 1, 1, 1, 1, 1},   {"c64", 2, 64, 5, 7, 1}, {"empty", 0, 4, 3, 3, 1},
};

/* Gram forward (kind 0) or backward (kind 1) on ctx; out[0] is g or df. */
static dlk_status gram_call(dlk_context *ctx, int kind, const gram_case *gc, dlk_dtype dt, int layout, const double *f,
                            const double *dg, double **out) {
  const int64_t fs[4] = {gc->n, gc->c, gc->h, gc->w}, gs[3] = {gc->n, gc->c, gc->c};
  dlk_gram_params p = {(dlk_gram_norm)gc->norm};
  const int l3 = layout == L_ODD ? L_ODD : L_NCHW;
  rig r = {.ctx = ctx};
  dlk_tensor *ft = rig_in(&r, dt, 4, fs, layout, f);
  dlk_status s;
  if (kind == 0) {
    dlk_tensor *g = rig_out(&r, dt, 3, gs, l3);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_gram_forward(ctx, &p, ft, g);
  } else {
    dlk_tensor *dgt = rig_in(&r, dt, 3, gs, l3, dg), *df = rig_out(&r, dt, 4, fs, layout);
    s = r.failed ? DLK_ERR_INTERNAL : dlk_gram_backward(ctx, &p, ft, dgt, df);
  }
  return rig_end(&r, s, out);
}

static void fd_gram(dlk_context *ctx) {
  for (int norm = 0; norm < 3; norm++) {
    const gram_case gc = {"fd", 2, 3, 2, 3, norm};
    snprintf(t_case_buf, sizeof t_case_buf, "fd gram norm %d", norm);
    t_case = t_case_buf;
    const int64_t nf = gc.n * gc.c * gc.h * gc.w, ng = gc.n * gc.c * gc.c;
    double *f = h_uniform(DLK_F64, nf, -1, 1), *dg = h_uniform(DLK_F64, ng, -1, 1);
    double *df[1] = {NULL};
    CHECK_OK(ctx, gram_call(ctx, 1, &gc, DLK_F64, L_NCHW, f, dg, df));
    double *fd = malloc((size_t)nf * sizeof(double));
    const double h = 1e-6;
    for (int64_t i = 0; i < nf; i++) {
      double l[2];
      for (int side = 0; side < 2; side++) {
        const double keep = f[i];
        f[i] = keep + (side ? -h : h);
        double *g[1] = {NULL};
        CHECK_OK(ctx, gram_call(ctx, 0, &gc, DLK_F64, L_NCHW, f, NULL, g));
        l[side] = 0;
        for (int64_t j = 0; g[0] && j < ng; j++) l[side] += g[0][j] * dg[j];
        free_outs(g, 1);
        f[i] = keep;
      }
      fd[i] = (l[0] - l[1]) / (2 * h);
    }
    if (df[0]) t_close("finite differences of df", df[0], fd, nf, 1e-7, 1e-6);
    free_outs(df, 1);
    free(fd), free(f), free(dg);
  }
}

static void sweep_gram(dlk_context *ctx, dlk_context *cpu, int tf32) {
  sweep_stats st = {0, 0};
  for (int ci = 0; ci < N_OF(gram_cases); ci++)
    for (int kind = 0; kind < 2; kind++) {
      const gram_case *gc = &gram_cases[ci];
      const char *op = kind ? "gram_bwd" : "gram_fwd";
      int ids[32];
      const int nv = device_variants(ctx, op, ids, 32);
      for (int d = 0; d < N_OF(sweep_dtypes); d++) {
        const dlk_dtype dt = sweep_dtypes[d];
        if (tf32 && dt != DLK_F32) continue;
        const int64_t nf = gc->n * gc->c * gc->h * gc->w, ng = gc->n * gc->c * gc->c;
        double *f = h_uniform(dt, nf, -1, 1), *dg = h_uniform(dt, ng, -1, 1);
        double *ref[1] = {NULL};
        snprintf(t_case_buf, sizeof t_case_buf, "sweep %s %s %s reference", op, gc->name, dlk_dtype_name(dt));
        t_case = t_case_buf;
        CHECK_OK(cpu, gram_call(cpu, kind, gc, dt, L_NCHW, f, dg, ref));
        double atol, rtol;
        t_tolerance(dt, tf32, &atol, &rtol);
        for (int i = 0; i < nv && ref[0]; i++)
          for (int layout = 0; layout < L_COUNT; layout++) {
            snprintf(t_case_buf, sizeof t_case_buf, "sweep %s:%d %s %s %s%s", op, ids[i], gc->name, dlk_dtype_name(dt),
                     layout_names[layout], tf32 ? " tf32" : "");
            t_case = t_case_buf;
            CHECK_OK(ctx, dlk_force_variant(ctx, op, ids[i]));
            double *got[1] = {NULL};
            dlk_status s = gram_call(ctx, kind, gc, dt, layout, f, dg, got);
            if (s == DLK_ERR_NOT_SUPPORTED) {
              st.unsupported++;
            } else {
              CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
              st.ran++;
              if (got[0]) t_close("output", got[0], ref[0], kind ? nf : ng, atol, rtol);
            }
            free_outs(got, 1);
          }
        CHECK_OK(ctx, dlk_force_variant(ctx, op, -1));
        free_outs(ref, 1);
        free(f), free(dg);
      }
    }
  printf("sweep gram%s: %d variant runs checked, %d declined\n", tf32 ? " (tf32)" : "", st.ran, st.unsupported);
}

/* ====================================================================================== */
/* Bad input                                                                               */
/* ====================================================================================== */

/* A valid forward/backward setup on the CPU context that one bad case then spoils. */
typedef struct {
  dlk_conv2d_params p;
  int64_t xs[4], ws[4], ys[4], bs[1];
} bad_setup;

static bad_setup bad_default(void) {
  bad_setup b;
  memset(&b, 0, sizeof b);
  b.p.stride[0] = b.p.stride[1] = 1;
  b.p.padding[0] = b.p.padding[1] = 1;
  const int64_t xs[4] = {2, 4, 6, 5}, ws[4] = {6, 4, 3, 3}, ys[4] = {2, 6, 6, 5};
  memcpy(b.xs, xs, sizeof xs), memcpy(b.ws, ws, sizeof ws), memcpy(b.ys, ys, sizeof ys);
  b.bs[0] = 6;
  return b;
}

/* Run a forward with the setup's shapes (x of xnd dims, the rest 4-D); expect `want` and
   a message holding every one of the NULL-terminated `words`. */
static void bad_fwd(dlk_context *ctx, const char *what, const bad_setup *b, int xnd, dlk_status want,
                    const char *const *words) {
  snprintf(t_case_buf, sizeof t_case_buf, "bad input: forward: %s", what);
  t_case = t_case_buf;
  rig r = {.ctx = ctx};
  double *xv = h_uniform(DLK_F32, prod(xnd, b->xs), -1, 1), *wv = h_uniform(DLK_F32, prod(4, b->ws), -1, 1);
  double *bv = h_uniform(DLK_F32, b->bs[0], -1, 1);
  dlk_tensor *x = rig_in(&r, DLK_F32, xnd, b->xs, L_NCHW, xv), *w = rig_in(&r, DLK_F32, 4, b->ws, L_NCHW, wv);
  dlk_tensor *bias = rig_in(&r, DLK_F32, 1, b->bs, L_NCHW, bv);
  dlk_tensor *y = rig_out(&r, DLK_F32, 4, b->ys, L_NCHW), *z = rig_out(&r, DLK_F32, 4, b->ys, L_NCHW);
  dlk_status s = dlk_conv2d_forward(ctx, &b->p, x, w, bias, y, z);
  CHECK(s == want, "got %s, expected %s (%s)", dlk_status_string(s), dlk_status_string(want), dlk_context_last_error(ctx));
  const char *msg = dlk_context_last_error(ctx);
  for (int i = 0; words && words[i]; i++)
    CHECK(strstr(msg, words[i]) != NULL, "message \"%s\" does not name \"%s\"", msg, words[i]);
  rig_end(&r, s, NULL);
  free(xv), free(wv), free(bv);
}

static void test_bad_input(dlk_context *ctx) {
  bad_setup b;
#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})
  b = bad_default();
  b.xs[1] = 3, b.ws[1] = 4;
  bad_fwd(ctx, "channel mismatch", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("x", "dim 1", "w"));
  b = bad_default();
  b.p.groups = 3;
  bad_fwd(ctx, "groups not dividing Cin", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("groups 3", "x", "dim 1"));
  b = bad_default();
  b.p.groups = 4, b.ws[1] = 1;
  bad_fwd(ctx, "groups not dividing Cout", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("groups 4", "w", "dim 0"));
  b = bad_default();
  b.p.padding[0] = 0, b.ys[2] = 4;
  b.xs[2] = 2;
  bad_fwd(ctx, "kernel larger than padded input", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("x", "dim 2", "height"));
  b = bad_default();
  b.p.dilation[1] = 4; /* dilated kernel 9 > 5 + 2 */
  bad_fwd(ctx, "output size <= 0 (dilation)", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("x", "dim 3", "width", "<= 0"));
  b = bad_default();
  b.p.padding[1] = -1;
  bad_fwd(ctx, "negative padding", &b, 4, DLK_ERR_INVALID_ARGUMENT, WORDS("padding[1]", "-1"));
  b = bad_default();
  b.p.stride[0] = -2;
  bad_fwd(ctx, "negative stride", &b, 4, DLK_ERR_INVALID_ARGUMENT, WORDS("stride[0]"));
  b = bad_default();
  b.p.groups = -1;
  bad_fwd(ctx, "negative groups", &b, 4, DLK_ERR_INVALID_ARGUMENT, WORDS("groups"));
  b = bad_default();
  b.p.act = (dlk_activation)9;
  bad_fwd(ctx, "bad activation", &b, 4, DLK_ERR_INVALID_ARGUMENT, WORDS("activation 9"));
  b = bad_default();
  memmove(b.xs, b.xs + 1, 3 * sizeof(int64_t));
  bad_fwd(ctx, "x with 3 dims", &b, 3, DLK_ERR_SHAPE_MISMATCH, WORDS("x", "3 dims", "[N, C, H, W]"));
  b = bad_default();
  b.ys[2] = 5;
  bad_fwd(ctx, "y height wrong", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("y", "dim 2", "Ho"));
  b = bad_default();
  b.ys[1] = 5;
  bad_fwd(ctx, "y channels wrong", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("y", "dim 1"));
  b = bad_default();
  b.bs[0] = 5;
  bad_fwd(ctx, "bias length wrong", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("b", "dim 0"));
  b = bad_default();
  b.ws[2] = 0;
  bad_fwd(ctx, "kernel of height 0", &b, 4, DLK_ERR_SHAPE_MISMATCH, WORDS("w", "dim 2"));

  /* NULL pointers, dtype and device mismatch, overlapping outputs, backward shapes */
  {
    snprintf(t_case_buf, sizeof t_case_buf, "bad input: NULL, dtype, overlap, backward shapes");
    t_case = t_case_buf;
    b = bad_default();
    rig r = {.ctx = ctx};
    double *xv = h_uniform(DLK_F32, prod(4, b.xs), -1, 1), *wv = h_uniform(DLK_F32, prod(4, b.ws), -1, 1);
    double *dyv = h_uniform(DLK_F32, prod(4, b.ys), -1, 1), *w16v = h_uniform(DLK_F16, prod(4, b.ws), -1, 1);
    dlk_tensor *x = rig_in(&r, DLK_F32, 4, b.xs, L_NCHW, xv), *w = rig_in(&r, DLK_F32, 4, b.ws, L_NCHW, wv);
    dlk_tensor *dy = rig_in(&r, DLK_F32, 4, b.ys, L_NHWC, dyv), *w16 = rig_in(&r, DLK_F16, 4, b.ws, L_NCHW, w16v);
    dlk_tensor *y = rig_out(&r, DLK_F32, 4, b.ys, L_NCHW);
    const int64_t bad_ws[4] = {6, 4, 3, 2}, dbs[1] = {6};
    dlk_tensor *dx = rig_out(&r, DLK_F32, 4, b.xs, L_NHWC), *dw_bad = rig_out(&r, DLK_F32, 4, bad_ws, L_NCHW);
    dlk_tensor *db = rig_out(&r, DLK_F32, 1, dbs, L_NCHW);
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(ctx, &b.p, NULL, w, NULL, y, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "x is NULL"), "%s", dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, NULL, NULL));
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(NULL, &b.p, x, w, NULL, y, NULL));
    CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_conv2d_forward(ctx, &b.p, x, w16, NULL, y, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "w is f16"), "%s", dlk_context_last_error(ctx));
    /* y overlapping itself: a zero stride */
    dlk_tensor yb = *y;
    yb.strides[1] = 0;
    CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, &yb, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "y") && strstr(dlk_context_last_error(ctx), "dim 1"), "%s",
          dlk_context_last_error(ctx));
    /* z == y: outputs overlap */
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, y, y));
    /* backward: dw of the wrong shape, z missing with an activation, dx overlapping dy */
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, dx, dw_bad, db));
    CHECK(strstr(dlk_context_last_error(ctx), "dw") && strstr(dlk_context_last_error(ctx), "dim 3"), "%s",
          dlk_context_last_error(ctx));
    dlk_conv2d_params pr = b.p;
    pr.act = DLK_ACT_RELU;
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_backward(ctx, &pr, x, w, NULL, dy, dx, NULL, db));
    CHECK(strstr(dlk_context_last_error(ctx), "z"), "%s", dlk_context_last_error(ctx));
    dlk_tensor db_on_x = *db; /* db inside x's memory */
    db_on_x.data = x->data;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, dx, NULL, &db_on_x));
    CHECK(strstr(dlk_context_last_error(ctx), "db and x overlap"), "%s", dlk_context_last_error(ctx));
    const int64_t bad_dbs[1] = {5};
    dlk_tensor db5 = *db;
    db5.shape[0] = bad_dbs[0];
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, NULL, NULL, &db5));
    CHECK(strstr(dlk_context_last_error(ctx), "db") && strstr(dlk_context_last_error(ctx), "dim 0"), "%s",
          dlk_context_last_error(ctx));
    /* Gram: g of the wrong shape, bad norm */
    const int64_t gs[3] = {2, 4, 5};
    dlk_tensor *g = rig_out(&r, DLK_F32, 3, gs, L_NCHW);
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_gram_forward(ctx, NULL, x, g));
    CHECK(strstr(dlk_context_last_error(ctx), "g has 5 in dim 2"), "%s", dlk_context_last_error(ctx));
    const int64_t gs_ok[3] = {2, 4, 4};
    dlk_tensor *g_ok = rig_out(&r, DLK_F32, 3, gs_ok, L_NCHW);
    dlk_gram_params gp = {(dlk_gram_norm)7};
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_gram_forward(ctx, &gp, x, g_ok));
    CHECK(strstr(dlk_context_last_error(ctx), "norm 7"), "%s", dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_gram_backward(ctx, NULL, x, g, dx));
    rig_end(&r, DLK_ERR_INVALID_ARGUMENT, NULL); /* every output must still be all 0xFF */
    free(xv), free(wv), free(dyv), free(w16v);
  }
#undef WORDS
}

/* A forced variant that cannot take a call fails it with DLK_ERR_NOT_SUPPORTED and the
   reason, never falls back, and leaves the outputs untouched (conv_call's rig checks
   that). On a GPU: every CUDA variant of conv2d_fwd forced on a channels-last and an
   odd-strided depthwise problem; the NCHW-only depthwise kernel must decline both with a
   reason naming the layout. On the CPU: the im2col variant forced under a workspace cap
   it does not fit. */
static void test_forced_layout(dlk_context *ctx) {
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  const conv_case cc = {"forced_dw", 2, 8, 9, 9, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 8, 1, 0};
  conv_vals v;
  cv_make(&cc, DLK_F32, &v);
  if (dev.type == DLK_CPU) {
    t_case = "forced im2col under a workspace cap";
    CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 64));
    CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", 20));
    double *out[2] = {NULL, NULL};
    dlk_status s = conv_call(ctx, K_FWD, &cc, DLK_F32, L_NCHW, &v, out);
    CHECK(s == DLK_ERR_NOT_SUPPORTED, "got %s", dlk_status_string(s));
    CHECK(strstr(dlk_context_last_error(ctx), "workspace") != NULL, "%s", dlk_context_last_error(ctx));
    free_outs(out, 2);
    CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", -1));
    CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 0));
    cv_free(&v);
    return;
  }
  int ids[32];
  const int nv = device_variants(ctx, "conv2d_fwd", ids, 32);
  int declined = 0;
  for (int i = 0; i < nv; i++)
    for (int layout = L_NHWC; layout <= L_ODD; layout++) {
      snprintf(t_case_buf, sizeof t_case_buf, "forced conv2d_fwd:%d on %s", ids[i], layout_names[layout]);
      t_case = t_case_buf;
      CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", ids[i]));
      double *out[2] = {NULL, NULL};
      dlk_status s = conv_call(ctx, K_FWD, &cc, DLK_F32, layout, &v, out);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        CHECK(strstr(dlk_context_last_error(ctx), "conv2d_fwd") != NULL, "%s", dlk_context_last_error(ctx));
        if (ids[i] == 4) {
          declined++;
          CHECK(strstr(dlk_context_last_error(ctx), "NCHW") != NULL, "%s", dlk_context_last_error(ctx));
        }
      } else {
        CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
      }
      free_outs(out, 2);
    }
  CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", -1));
  t_case = "forced layout";
  CHECK(declined == 2, "the depthwise kernel (4) did not decline channels-last and odd strides");
  cv_free(&v);
}

/* ====================================================================================== */
/* Explain mode                                                                            */
/* ====================================================================================== */

static void test_explain(dlk_context *ctx) {
  t_case = "explain";
  const conv_case cc = {"explain", 1, 3, 5, 5, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1, 1};
  conv_vals v;
  cv_make(&cc, DLK_F32, &v);
  const char *report = NULL;
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  double *out[3] = {NULL, NULL, NULL};
  CHECK_OK(ctx, conv_call(ctx, K_FWD, &cc, DLK_F32, L_NCHW, &v, out)); /* outputs stay 0xFF: NaN */
  CHECK(out[0] && isnan(out[0][0]), "explain mode ran the forward");
  free_outs(out, 3);
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(strstr(report, "conv2d_fwd") && strstr(report, "cpu_ref"), "forward report:\n%s", report);
  CHECK_OK(ctx, conv_call(ctx, K_BWD_ALL, &cc, DLK_F32, L_NCHW, &v, out));
  free_outs(out, 3);
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(strstr(report, "conv2d_bwd_bias") && strstr(report, "conv2d_bwd_data") && strstr(report, "conv2d_bwd_filter"),
        "backward report:\n%s", report);
  /* explain still checks the arguments */
  conv_case bad = cc;
  bad.pad[0] = -1;
  CHECK(conv_call(ctx, K_FWD, &bad, DLK_F32, L_NCHW, &v, NULL) == DLK_ERR_INVALID_ARGUMENT, "explain skipped a check");
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  cv_free(&v);
}

/* ====================================================================================== */
/* main                                                                                    */
/* ====================================================================================== */

/* Force one variant id on every conv op that has it (-1: back to AUTO). */
static void force_all(dlk_context *ctx, int id) {
  static const char *const ops[] = {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter", "conv2d_bwd_bias",
                                    "gram_fwd", "gram_bwd"};
  for (int i = 0; i < N_OF(ops); i++) {
    int ids[32];
    const int nv = device_variants(ctx, ops[i], ids, 32);
    for (int k = 0; k < nv; k++)
      if (ids[k] == id || id < 0) CHECK_OK(ctx, dlk_force_variant(ctx, ops[i], id));
  }
}

/* The goldens through the CPU reference (forced), then through AUTO (the optimised CPU
   variant where it has a row). */
static void test_golden(dlk_context *ctx) {
  int n = 0;
  for (int pass = 0; pass < 2; pass++) {
    force_all(ctx, pass == 0 ? 0 : -1);
    n += golden_file(ctx, "conv2d", golden_conv);
    n += golden_file(ctx, "gram", golden_gram);
  }
  force_all(ctx, -1);
  printf("golden: %d PyTorch case runs checked (CPU reference, then AUTO)\n", n);
}

static void test_fd(dlk_context *ctx) {
  static const conv_case fd_cases[] = {
      {"3x3", 2, 3, 5, 4, 2, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1, 0},
      {"s2_dil_grouped", 1, 4, 7, 6, 4, 3, 2, {2, 1}, {2, 1}, {2, 2}, 2, 1, 1},
      {"depthwise_tanh", 1, 3, 5, 5, 3, 3, 3, {2, 2}, {1, 1}, {1, 1}, 3, 1, 2},
      {"sigmoid_pad_big", 1, 2, 3, 3, 2, 2, 3, {1, 1}, {2, 2}, {1, 1}, 1, 1, 3},
      {"gelu_1x1", 2, 3, 3, 2, 2, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, 1, 4},
      {"nobias", 1, 2, 4, 4, 3, 3, 3, {1, 2}, {0, 1}, {1, 1}, 1, 0, 0},
  };
  /* every CPU backward: the reference, then the im2col variant */
  for (int pass = 0; pass < 2; pass++) {
    force_all(ctx, pass == 0 ? 0 : 20);
    for (int i = 0; i < N_OF(fd_cases); i++) fd_conv_case(ctx, &fd_cases[i]);
    fd_gram(ctx);
  }
  force_all(ctx, -1);
  printf("finite differences: conv2d dx, dw, db (%d cases) and gram df, CPU reference and im2col\n",
         N_OF(fd_cases));
}

int main(int argc, char **argv) {
  t_seed(20240917);
  quick_mode = getenv("DLK_TEST_QUICK") && atoi(getenv("DLK_TEST_QUICK")) != 0;
  dlk_context *cpu = t_cpu_context();
  if (t_want_gpu(argc, argv)) {
    dlk_context *gpu = t_gpu_context_or_skip("test_conv");
    sweep_conv(gpu, cpu, 0);
    sweep_gram(gpu, cpu, 0);
    CHECK_OK(gpu, dlk_context_set_allow_tf32(gpu, 1));
    sweep_conv(gpu, cpu, 1);
    sweep_gram(gpu, cpu, 1);
    CHECK_OK(gpu, dlk_context_set_allow_tf32(gpu, 0));
    test_forced_layout(gpu);
    /* host tensors on a CUDA context: a device mismatch naming the tensor */
    {
      t_case = "gpu: host tensors";
      const conv_case cc = {"host", 1, 2, 4, 4, 2, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 0, 0};
      conv_vals v;
      cv_make(&cc, DLK_F32, &v);
      rig r = {.ctx = cpu};
      int64_t xs[4], ws[4], ys[4];
      cc_shapes(&cc, xs, ws, ys);
      dlk_tensor *x = rig_in(&r, DLK_F32, 4, xs, L_NCHW, v.x), *w = rig_in(&r, DLK_F32, 4, ws, L_NCHW, v.w);
      dlk_tensor *y = rig_out(&r, DLK_F32, 4, ys, L_NCHW);
      const dlk_conv2d_params p = cc_params(&cc);
      CHECK_STATUS(gpu, DLK_ERR_DEVICE_MISMATCH, dlk_conv2d_forward(gpu, &p, x, w, NULL, y, NULL));
      CHECK(strstr(dlk_context_last_error(gpu), "x is on cpu"), "%s", dlk_context_last_error(gpu));
      rig_end(&r, DLK_ERR_DEVICE_MISMATCH, NULL);
      cv_free(&v);
    }
    dlk_context_destroy(gpu);
  } else {
    test_golden(cpu);
    test_fd(cpu);
    sweep_conv(cpu, cpu, 0);
    sweep_gram(cpu, cpu, 0);
    test_bad_input(cpu);
    test_forced_layout(cpu);
    test_explain(cpu);
  }
  dlk_context_destroy(cpu);
  return t_summary("test_conv");
}
