/*
 * conv family tests, part 2: pooling, adaptive average pooling, batch norm, MSE loss
 * (to be folded into tests/test_conv.c with the convolution part: everything below main's
 * helpers is one contiguous section per kind of test).
 *
 * CPU run (default):
 *   1. golden fixtures made by PyTorch (tests/golden/conv/{pool2d,adaptive_pool2d,
 *      batchnorm,mse}.txt, see make_conv_golden.py) against the CPU reference, at the
 *      DESIGN.md tolerances, in the fixtures' layouts (NCHW or channels-last);
 *   2. finite-difference gradient checks in f64 of every CPU backward;
 *   3. the variant sweep over a CPU context: every op x case x dtype x layout, each
 *      variant against the CPU reference run with contiguous tensors on a second context
 *      (on the CPU: the reference is layout-independent, bit for bit);
 *   4. a table of bad inputs: exact status, a message naming the op, every output byte,
 *      the running statistics and every input byte unchanged;
 *   5. semantics pinned by the issue: first-maximum routing, NaN in a window, empty dilated
 *      windows, NULL params defaults, batch norm's running-stat update over two steps.
 * GPU run (--gpu; exit 77 when no GPU): the sweep over a CUDA context against the CPU
 *   reference on host copies of the same inputs, and device-side bad input.
 * DLK_TEST_QUICK=1 runs a small subset of the sweep (for compute-sanitizer).
 *
 * Every tensor of the sweep lives inside a larger allocation filled with 0xFF bytes (NaN
 * in every float dtype): a kernel that reads outside its view produces NaN, one that
 * writes outside it is caught by the guard check, and a call that fails must leave its
 * outputs entirely 0xFF.
 */
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "golden.h"
#include "sweep.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];
static int quick_mode = 0;

static double round_to(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}
static dlk_dtype stat_dt(dlk_dtype dt) { return dt == DLK_F64 ? DLK_F64 : DLK_F32; }

static int64_t t_numel(const dlk_tensor *t) {
  int64_t n = 1;
  for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
  return n;
}

/* Element offset of row-major index i. */
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

/* Layouts of test tensors: LC row-major; LH channels-last for 4-D (else LC); LP padded:
   unit dims get stride 2, each outer stride one more than dense, data at offset 1; LT the
   last two dims transposed in memory (2-D and up). */
enum { LC = 0, LH = 1, LP = 2, LT = 3 };

static void layout_strides(int ndim, const int64_t *shape, int layout, int64_t *st, int64_t *off) {
  int64_t sh[DLK_MAX_DIMS];
  for (int k = 0; k < ndim; k++) sh[k] = shape[k] > 0 ? shape[k] : 1;
  *off = 0;
  if (layout == LH && ndim == 4) {
    st[1] = 1, st[3] = sh[1], st[2] = sh[3] * sh[1], st[0] = sh[2] * sh[3] * sh[1];
  } else if (layout == LP && ndim >= 1) {
    st[ndim - 1] = 2;
    for (int k = ndim - 2; k >= 0; k--) st[k] = st[k + 1] * sh[k + 1] + 1;
    *off = 1;
  } else if (layout == LT && ndim >= 2) {
    int64_t tsh[DLK_MAX_DIMS], tst[DLK_MAX_DIMS];
    memcpy(tsh, sh, sizeof(int64_t) * (size_t)ndim);
    tsh[ndim - 1] = sh[ndim - 2], tsh[ndim - 2] = sh[ndim - 1];
    dense_strides(ndim, tsh, tst);
    for (int k = 0; k < ndim; k++) st[k] = tst[k];
    st[ndim - 1] = tst[ndim - 2], st[ndim - 2] = tst[ndim - 1];
  } else {
    dense_strides(ndim, sh, st);
  }
}

/* Elements spanned by a view with these strides (max offset + 1; 1 for a 0-d tensor). */
static int64_t span_of(int ndim, const int64_t *shape, const int64_t *st) {
  int64_t m = 0;
  for (int k = 0; k < ndim; k++)
    if (shape[k] > 0) m += (shape[k] - 1) * st[k];
  return m + 1;
}

/* ====================================================================================== */
/* Test tensors: a view inside a 0xFF-filled allocation, and a rig of the tensors of a call */
/* ====================================================================================== */

typedef struct {
  dlk_tensor v, base;
  int64_t off, base_n;
  int live;
} tt;

static dlk_status tt_make(dlk_context *ctx, tt *t, dlk_dtype dt, int ndim, const int64_t *shape, int layout) {
  memset(t, 0, sizeof *t);
  dlk_tensor v;
  memset(&v, 0, sizeof v);
  v.dtype = dt;
  v.ndim = ndim;
  for (int k = 0; k < ndim; k++) v.shape[k] = shape[k];
  int64_t off;
  layout_strides(ndim, shape, layout, v.strides, &off);
  int64_t bn = off + span_of(ndim, shape, v.strides) + 16; /* a guard zone past the end */
  dlk_status s = dlk_tensor_alloc(ctx, &t->base, dt, 1, &bn);
  if (s != DLK_OK) return s;
  size_t bytes = (size_t)bn * dlk_dtype_size(dt);
  unsigned char *ff = malloc(bytes);
  memset(ff, 0xFF, bytes);
  s = dlk_tensor_write(ctx, &t->base, ff, bytes);
  free(ff);
  if (s != DLK_OK) return s;
  v.device = t->base.device;
  v.data = (char *)t->base.data + off * (int64_t)dlk_dtype_size(dt);
  t->v = v;
  t->off = off;
  t->base_n = bn;
  t->live = 1;
  return DLK_OK;
}

static dlk_status tt_write(dlk_context *ctx, tt *t, const double *vals) {
  int64_t n = t_numel(&t->v);
  if (n == 0) return DLK_OK;
  size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  for (int64_t i = 0; i < n; i++) dlk_store(buf, t->v.dtype, i, vals[i]);
  dlk_status s = dlk_tensor_write(ctx, &t->v, buf, (size_t)n * es);
  free(buf);
  return s;
}

static dlk_status tt_read(dlk_context *ctx, const tt *t, double *out) {
  int64_t n = t_numel(&t->v);
  if (n == 0) return DLK_OK;
  size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  dlk_status s = dlk_tensor_read(ctx, &t->v, buf, (size_t)n * es);
  for (int64_t i = 0; i < n && s == DLK_OK; i++) out[i] = dlk_load(buf, t->v.dtype, i);
  free(buf);
  return s;
}

/* Base elements that are not 0xFF bytes: outside the view only, or all. */
static int64_t tt_dirty(dlk_context *ctx, const tt *t, int whole) {
  size_t es = dlk_dtype_size(t->v.dtype), bytes = (size_t)t->base_n * es;
  unsigned char *buf = malloc(bytes), *in = calloc((size_t)t->base_n, 1);
  int64_t bad = 0;
  if (dlk_tensor_read(ctx, &t->base, buf, bytes) != DLK_OK) {
    bad = -1;
  } else {
    if (!whole)
      for (int64_t i = 0; i < t_numel(&t->v); i++) in[t->off + t_offset(&t->v, i)] = 1;
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

/* Host arrays of doubles: the sweep harness's (tests/sweep.h). */
typedef sweep_set hset;
#define hs_add sweep_add
#define hs_uniform sweep_uniform
#define hs_free sweep_free

enum { R_IN = 0, R_OUT = 1, R_INOUT = 2 };
typedef struct {
  dlk_context *ctx;
  tt t[12];
  int role[12];
  const double *vals[12];
  int n;
} rig;

static tt *rig_add(rig *r, int role, dlk_dtype dt, int ndim, const int64_t *shape, int layout, const double *vals) {
  tt *t = &r->t[r->n];
  dlk_status s = tt_make(r->ctx, t, dt, ndim, shape, layout);
  if (s == DLK_OK && vals) s = tt_write(r->ctx, t, vals);
  CHECK(s == DLK_OK, "test tensor setup: %s: %s", dlk_status_string(s), dlk_context_last_error(r->ctx));
  r->role[r->n] = role;
  r->vals[r->n] = vals;
  r->n++;
  return t;
}
static dlk_tensor *rig_in(rig *r, dlk_dtype dt, int ndim, const int64_t *shape, int layout, const double *vals) {
  return &rig_add(r, R_IN, dt, ndim, shape, layout, vals)->v;
}
static dlk_tensor *rig_out(rig *r, dlk_dtype dt, int ndim, const int64_t *shape, int layout) {
  return &rig_add(r, R_OUT, dt, ndim, shape, layout, NULL)->v;
}
static dlk_tensor *rig_inout(rig *r, dlk_dtype dt, int ndim, const int64_t *shape, int layout, const double *vals) {
  return &rig_add(r, R_INOUT, dt, ndim, shape, layout, vals)->v;
}

/* After the call: read the outputs (in the order they were added) into out, check that
   nothing outside a view changed, that inputs are unchanged, and that a failed call left
   its outputs (and in-out state) untouched. Frees the tensors; returns s. */
static dlk_status rig_end(rig *r, dlk_status s, hset *out) {
  for (int i = 0; i < r->n; i++) {
    tt *t = &r->t[i];
    if (!t->live) continue;
    int64_t n = t_numel(&t->v);
    if (r->role[i] != R_IN && s == DLK_OK && out) {
      double *o = hs_add(out, t->v.dtype, n);
      CHECK(tt_read(r->ctx, t, o) == DLK_OK, "read back output %d", i);
    }
    if (r->role[i] == R_OUT && s != DLK_OK) {
      int64_t bad = tt_dirty(r->ctx, t, 1);
      CHECK(bad == 0, "failed call (%s) wrote %lld elements of output %d", dlk_status_string(s), (long long)bad, i);
    } else {
      int64_t bad = tt_dirty(r->ctx, t, 0);
      CHECK(bad == 0, "%lld elements outside the view of tensor %d changed", (long long)bad, i);
    }
    if (r->role[i] == R_IN || (r->role[i] == R_INOUT && s != DLK_OK)) {
      double *now = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
      CHECK(tt_read(r->ctx, t, now) == DLK_OK, "read back input %d", i);
      int64_t changed = 0;
      for (int64_t k = 0; k < n; k++)
        if (memcmp(&now[k], &r->vals[i][k], sizeof(double)) != 0 && !(isnan(now[k]) && isnan(r->vals[i][k])))
          changed++;
      CHECK(changed == 0, "input %d: %lld elements changed", i, (long long)changed);
      free(now);
    }
    tt_free(r->ctx, t);
  }
  r->n = 0;
  return s;
}

/* ====================================================================================== */
/* 1. Golden fixtures                                                                      */
/* ====================================================================================== */

/* Host tensors of a golden case, in the case's layout (channels-last for 4-D with cl). */
typedef struct {
  dlk_tensor t[16];
  void *mem[16];
  int n;
  int layout;
} ghost;

static dlk_tensor *g_host(ghost *h, const gtensor *g, int fill_ff) {
  dlk_tensor *t = &h->t[h->n];
  size_t es = dlk_dtype_size(g->dt);
  memset(t, 0, sizeof *t);
  t->dtype = g->dt;
  t->device = (dlk_device){DLK_CPU, 0};
  t->ndim = g->ndim;
  for (int k = 0; k < g->ndim; k++) t->shape[k] = g->shape[k];
  int64_t off;
  layout_strides(g->ndim, g->shape, h->layout, t->strides, &off);
  int64_t span = span_of(g->ndim, g->shape, t->strides);
  void *mem = malloc((size_t)span * es);
  h->mem[h->n++] = mem;
  t->data = mem;
  memset(mem, 0xFF, (size_t)span * es);
  if (!fill_ff)
    for (int64_t i = 0; i < g->n; i++) dlk_store(mem, g->dt, t_offset(t, i), g->v[i]);
  return t;
}

static void g_host_free(ghost *h) {
  for (int i = 0; i < h->n; i++) free(h->mem[i]);
  h->n = 0;
}

static dlk_tensor *g_in(ghost *h, gcase *c, const char *name) {
  gtensor *g = g_find(c, name, 0);
  return g ? g_host(h, g, 0) : NULL;
}
static dlk_tensor *g_out(ghost *h, gcase *c, const char *name) {
  gtensor *g = g_find(c, name, 1);
  return g ? g_host(h, g, 1) : NULL;
}

static void g_expect(gcase *c, const char *name, const dlk_tensor *got) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g != NULL && got != NULL, "golden %s: output %s missing", c->name, name);
  if (!g || !got) return;
  double *v = calloc((size_t)(g->n > 0 ? g->n : 1), sizeof(double));
  for (int64_t i = 0; i < g->n; i++) v[i] = dlk_load(got->data, got->dtype, t_offset(got, i));
  double atol, rtol;
  t_tolerance(g->dt, 0, &atol, &rtol);
  char what[160];
  snprintf(what, sizeof what, "golden %s: %s", c->name, name);
  t_close(what, v, g->v, g->n, atol, rtol);
  free(v);
}

static dlk_pool2d_params g_pool_params(const gcase *c) {
  dlk_pool2d_params p;
  memset(&p, 0, sizeof p);
  p.kind = (dlk_pool_kind)g_num(c, "kind");
  p.kernel[0] = (int64_t)g_num(c, "kh"), p.kernel[1] = (int64_t)g_num(c, "kw");
  p.stride[0] = (int64_t)g_num(c, "sh"), p.stride[1] = (int64_t)g_num(c, "sw");
  p.padding[0] = (int64_t)g_num(c, "ph"), p.padding[1] = (int64_t)g_num(c, "pw");
  p.dilation[0] = (int64_t)g_num(c, "dh"), p.dilation[1] = (int64_t)g_num(c, "dw");
  p.ceil_mode = (int)g_num(c, "ceil_mode");
  p.count_include_pad = (int)g_num(c, "count_include_pad");
  return p;
}

static void golden_run(dlk_context *ctx, gcase *c, void *unused) {
  (void)unused;
  ghost h;
  memset(&h, 0, sizeof h);
  h.layout = g_param(c, "cl") && g_num(c, "cl") != 0 ? LH : LC;
  dlk_status s = DLK_ERR_INTERNAL;
  const char *op = c->op;
  if (strcmp(op, "pool2d_fwd") == 0) {
    dlk_pool2d_params p = g_pool_params(c);
    dlk_tensor *y = g_out(&h, c, "y");
    s = dlk_pool2d_forward(ctx, &p, g_in(&h, c, "x"), y);
    if (s == DLK_OK) g_expect(c, "y", y);
  } else if (strcmp(op, "pool2d_bwd") == 0) {
    dlk_pool2d_params p = g_pool_params(c);
    dlk_tensor *dx = g_out(&h, c, "dx");
    s = dlk_pool2d_backward(ctx, &p, g_in(&h, c, "x"), NULL, g_in(&h, c, "dy"), dx);
    if (s == DLK_OK) g_expect(c, "dx", dx);
  } else if (strcmp(op, "adaptive_fwd") == 0) {
    dlk_tensor *y = g_out(&h, c, "y");
    s = dlk_adaptive_avg_pool2d_forward(ctx, g_in(&h, c, "x"), y);
    if (s == DLK_OK) g_expect(c, "y", y);
  } else if (strcmp(op, "adaptive_bwd") == 0) {
    dlk_tensor *dx = g_out(&h, c, "dx");
    s = dlk_adaptive_avg_pool2d_backward(ctx, g_in(&h, c, "dy"), dx);
    if (s == DLK_OK) g_expect(c, "dx", dx);
  } else if (strcmp(op, "batchnorm_fwd") == 0) {
    dlk_batchnorm_params p = {g_num(c, "eps"), g_num(c, "momentum"), (int)g_num(c, "training")};
    dlk_tensor *y = g_out(&h, c, "y"), *sm = g_out(&h, c, "save_mean"), *sr = g_out(&h, c, "save_rstd");
    dlk_tensor *rm = g_in(&h, c, "running_mean"), *rv = g_in(&h, c, "running_var");
    s = dlk_batchnorm_forward(ctx, &p, g_in(&h, c, "x"), g_in(&h, c, "gamma"), g_in(&h, c, "beta"), rm, rv, y, sm,
                              sr);
    if (s == DLK_OK) {
      g_expect(c, "y", y);
      if (p.training) g_expect(c, "save_mean", sm), g_expect(c, "save_rstd", sr);
      if (p.training && rm) g_expect(c, "running_mean", rm), g_expect(c, "running_var", rv);
    }
  } else if (strcmp(op, "batchnorm_bwd") == 0) {
    dlk_batchnorm_params p = {g_num(c, "eps"), 0.1, (int)g_num(c, "training")};
    dlk_tensor *dx = g_out(&h, c, "dx"), *dg = g_out(&h, c, "dgamma"), *db = g_out(&h, c, "dbeta");
    s = dlk_batchnorm_backward(ctx, &p, g_in(&h, c, "x"), g_in(&h, c, "gamma"), g_in(&h, c, "save_mean"),
                               g_in(&h, c, "save_rstd"), g_in(&h, c, "dy"), dx, dg, db);
    if (s == DLK_OK) g_expect(c, "dx", dx), g_expect(c, "dgamma", dg), g_expect(c, "dbeta", db);
  } else if (strcmp(op, "mse_fwd") == 0) {
    dlk_mse_params p = {(dlk_reduction)g_num(c, "reduction")};
    dlk_tensor *loss = g_out(&h, c, "loss");
    s = dlk_mse_loss_forward(ctx, &p, g_in(&h, c, "x"), g_in(&h, c, "target"), loss);
    if (s == DLK_OK) g_expect(c, "loss", loss);
  } else if (strcmp(op, "mse_bwd") == 0) {
    dlk_mse_params p = {(dlk_reduction)g_num(c, "reduction")};
    dlk_tensor *dx = g_out(&h, c, "dx");
    s = dlk_mse_loss_backward(ctx, &p, g_in(&h, c, "x"), g_in(&h, c, "target"), g_in(&h, c, "dloss"), dx);
    if (s == DLK_OK) g_expect(c, "dx", dx);
  } else {
    CHECK(0, "golden %s: unknown op %s", c->name, op);
    g_host_free(&h);
    return;
  }
  CHECK(s == DLK_OK, "golden %s: %s: %s", c->name, dlk_status_string(s), dlk_context_last_error(ctx));
  g_host_free(&h);
}

static void test_golden(dlk_context *ctx) {
  static const char *const files[] = {"pool2d", "adaptive_pool2d", "batchnorm", "mse"};
  int total = 0;
  for (int f = 0; f < N_OF(files); f++) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/golden/conv/%s.txt", files[f]);
    total += golden_each(ctx, rel, golden_run, NULL);
  }
  printf("golden: %d PyTorch cases checked\n", total);
}

/* ====================================================================================== */
/* 2. Finite-difference gradient checks of the CPU backward passes (f64)                   */
/* ====================================================================================== */

static dlk_tensor host64(double *p, int ndim, const int64_t *shape) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  dlk_status s = dlk_tensor_init(NULL, &t, p, DLK_F64, (dlk_device){DLK_CPU, 0}, ndim, shape);
  CHECK(s == DLK_OK, "host64 tensor: %s", dlk_context_last_error(NULL));
  return t;
}

/* A forward problem L = sum_i r_i out_i, evaluated through the public API. */
enum { FD_POOL, FD_ADAPTIVE, FD_BN, FD_MSE };
typedef struct {
  dlk_context *ctx;
  int kind;
  dlk_pool2d_params pp;
  dlk_batchnorm_params bp;
  dlk_mse_params mp;
  dlk_tensor in[5];
  int has[5];
  dlk_tensor out;
  const double *r;
  int64_t n_out;
} fdprob;

static double fd_loss(fdprob *p) {
  dlk_status s = DLK_ERR_INTERNAL;
  const dlk_tensor *in1 = p->has[1] ? &p->in[1] : NULL, *in2 = p->has[2] ? &p->in[2] : NULL;
  dlk_tensor *in3 = p->has[3] ? &p->in[3] : NULL, *in4 = p->has[4] ? &p->in[4] : NULL;
  switch (p->kind) {
    case FD_POOL: s = dlk_pool2d_forward(p->ctx, &p->pp, &p->in[0], &p->out); break;
    case FD_ADAPTIVE: s = dlk_adaptive_avg_pool2d_forward(p->ctx, &p->in[0], &p->out); break;
    case FD_BN: {
      /* training without running statistics (each evaluation would move them); its saved
         statistics go to scratch */
      double sm[64], sr[64];
      int64_t c = p->in[0].shape[1];
      dlk_tensor tsm = host64(sm, 1, &c), tsr = host64(sr, 1, &c);
      s = dlk_batchnorm_forward(p->ctx, &p->bp, &p->in[0], in1, in2, in3, in4, &p->out, &tsm, &tsr);
      break;
    }
    case FD_MSE: s = dlk_mse_loss_forward(p->ctx, &p->mp, &p->in[0], &p->in[1], &p->out); break;
  }
  if (s != DLK_OK) CHECK(0, "fd forward: %s: %s", dlk_status_string(s), dlk_context_last_error(p->ctx));
  double l = 0;
  const double *o = p->out.data;
  for (int64_t i = 0; i < p->n_out; i++) l += p->r[i] * o[i];
  return l;
}

/* Central differences of L in each element of x against the analytic gradient g. */
static void fd_check(const char *what, fdprob *p, double *x, int64_t n, const double *g) {
  const double h = 1e-6;
  int64_t bad = 0, worst = -1;
  double worst_err = 0, worst_fd = 0;
  for (int64_t i = 0; i < n; i++) {
    double xi = x[i];
    x[i] = xi + h;
    double lp = fd_loss(p);
    x[i] = xi - h;
    double lm = fd_loss(p);
    x[i] = xi;
    double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i]);
    if (!(err <= 1e-6 * (1 + fabs(g[i])))) {
      bad++;
      if (worst < 0 || err > worst_err) worst = i, worst_err = err, worst_fd = fd;
    }
  }
  CHECK(bad == 0, "%s: %lld of %lld gradients off; worst [%lld] analytic %.10g, finite difference %.10g", what,
        (long long)bad, (long long)n, (long long)worst, worst >= 0 ? g[worst] : 0.0, worst_fd);
}

static void fill(double *v, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) v[i] = t_uniform(lo, hi);
}

/* Distinct values at least 0.04 apart in a random order: no two elements of a max window
   within the step of a finite difference. */
static void fill_distinct(double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) v[i] = 0.05 * (double)i - 1.0 + t_uniform(0, 0.01);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(t_next() % (uint64_t)(i + 1));
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

static void test_fd_pool(dlk_context *ctx) {
  static const struct {
    dlk_pool_kind kind;
    int64_t k[2], s[2], p[2], d[2];
    int ceil, cip;
    int64_t h, w;
  } cases[] = {
      {DLK_POOL_MAX, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, 0, 6, 7},
      {DLK_POOL_MAX, {2, 3}, {1, 1}, {1, 1}, {2, 1}, 0, 0, 5, 6},
      {DLK_POOL_MAX, {3, 2}, {1, 2}, {0, 1}, {1, 3}, 1, 0, 7, 8},
      {DLK_POOL_AVG, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, 1, 6, 7},
      {DLK_POOL_AVG, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, 0, 6, 7},
      {DLK_POOL_AVG, {2, 3}, {1, 2}, {1, 0}, {0, 0}, 0, 0, 5, 6},
  };
  for (int i = 0; i < N_OF(cases); i++) {
    dlk_pool2d_params pp;
    memset(&pp, 0, sizeof pp);
    pp.kind = cases[i].kind;
    for (int d = 0; d < 2; d++)
      pp.kernel[d] = cases[i].k[d], pp.stride[d] = cases[i].s[d], pp.padding[d] = cases[i].p[d],
      pp.dilation[d] = cases[i].d[d];
    pp.ceil_mode = cases[i].ceil, pp.count_include_pad = cases[i].cip;
    int64_t xs[4] = {2, 2, cases[i].h, cases[i].w};
    int64_t ys[4] = {2, 2, 0, 0};
    for (int d = 0; d < 2; d++) {
      int64_t in = xs[2 + d], k = cases[i].k[d], pad = cases[i].p[d], st = cases[i].s[d],
              dil = cases[i].d[d] ? cases[i].d[d] : 1;
      int64_t out = (in + 2 * pad - dil * (k - 1) - 1 + (cases[i].ceil ? st - 1 : 0)) / st + 1;
      if (cases[i].ceil && (out - 1) * st >= in + pad) out--;
      ys[2 + d] = out;
    }
    int64_t nx = 4 * xs[2] * xs[3], ny = 4 * ys[2] * ys[3];
    double *x = malloc(sizeof(double) * (size_t)nx), *dx = malloc(sizeof(double) * (size_t)nx);
    double *y = malloc(sizeof(double) * (size_t)ny), *r = malloc(sizeof(double) * (size_t)ny);
    fill_distinct(x, nx);
    fill(r, ny, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_POOL, .pp = pp, .r = r, .n_out = ny};
    p.in[0] = host64(x, 4, xs);
    p.out = host64(y, 4, ys);
    dlk_tensor tdy = host64(r, 4, ys), tdx = host64(dx, 4, xs);
    CHECK_OK(ctx, dlk_pool2d_backward(ctx, &pp, &p.in[0], NULL, &tdy, &tdx));
    char what[64];
    snprintf(what, sizeof what, "fd pool2d case %d (%s) dx", i, pp.kind == DLK_POOL_MAX ? "max" : "avg");
    fd_check(what, &p, x, nx, dx);
    free(x), free(dx), free(y), free(r);
  }
}

static void test_fd_adaptive(dlk_context *ctx) {
  static const int64_t cases[][4] = {{5, 7, 3, 4}, {3, 2, 4, 5}, {6, 6, 1, 1}, {4, 9, 4, 2}};
  for (int i = 0; i < N_OF(cases); i++) {
    int64_t xs[4] = {2, 3, cases[i][0], cases[i][1]}, ys[4] = {2, 3, cases[i][2], cases[i][3]};
    int64_t nx = 6 * xs[2] * xs[3], ny = 6 * ys[2] * ys[3];
    double x[6 * 81], dx[6 * 81], y[6 * 81], r[6 * 81];
    fill(x, nx, -1, 1), fill(r, ny, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_ADAPTIVE, .r = r, .n_out = ny};
    p.in[0] = host64(x, 4, xs);
    p.out = host64(y, 4, ys);
    dlk_tensor tdy = host64(r, 4, ys), tdx = host64(dx, 4, xs);
    CHECK_OK(ctx, dlk_adaptive_avg_pool2d_backward(ctx, &tdy, &tdx));
    char what[64];
    snprintf(what, sizeof what, "fd adaptive_avg_pool2d case %d dx", i);
    fd_check(what, &p, x, nx, dx);
  }
}

static void test_fd_batchnorm(dlk_context *ctx) {
  static const int64_t shapes[][4] = {{3, 2, 2, 3}, {5, 3, 1, 1}, {2, 4, 3, 1}};
  static const int ndims[] = {4, 2, 3};
  for (int si = 0; si < 3; si++)
    for (int training = 0; training < 2; training++)
      for (int affine = 0; affine < 2; affine++) {
        int64_t xs[4], C = shapes[si][1], n = 1;
        for (int k = 0; k < 4; k++) xs[k] = shapes[si][k], n *= xs[k];
        double x[64], y[64], r[64], dx[64], g[8], b[8], rm[8], rv[8], sm[8], sr[8], dg[8], db[8];
        fill(x, n, -1, 2), fill(r, n, -1, 1), fill(g, C, 0.5, 1.5), fill(b, C, -1, 1);
        fill(rm, C, -0.5, 0.5), fill(rv, C, 0.5, 1.5);
        dlk_batchnorm_params bp = {1e-3, 0.1, training};
        fdprob p = {.ctx = ctx, .kind = FD_BN, .bp = bp, .r = r, .n_out = n};
        p.in[0] = host64(x, ndims[si], xs);
        p.in[1] = host64(g, 1, &C), p.in[2] = host64(b, 1, &C);
        p.in[3] = host64(rm, 1, &C), p.in[4] = host64(rv, 1, &C);
        p.has[0] = 1, p.has[1] = p.has[2] = affine, p.has[3] = p.has[4] = !training;
        p.out = host64(y, ndims[si], xs);
        dlk_tensor tdy = host64(r, ndims[si], xs), tdx = host64(dx, ndims[si], xs), tdg = host64(dg, 1, &C),
                   tdb = host64(db, 1, &C), tsm = host64(sm, 1, &C), tsr = host64(sr, 1, &C);
        const dlk_tensor *gamma = affine ? &p.in[1] : NULL;
        if (training) {
          CHECK_OK(ctx, dlk_batchnorm_forward(ctx, &bp, &p.in[0], gamma, affine ? &p.in[2] : NULL, NULL, NULL,
                                              &p.out, &tsm, &tsr));
          CHECK_OK(ctx, dlk_batchnorm_backward(ctx, &bp, &p.in[0], gamma, &tsm, &tsr, &tdy, &tdx, &tdg, &tdb));
        } else { /* frozen: the running statistics stand in for the saved ones */
          CHECK_OK(ctx, dlk_batchnorm_backward(ctx, &bp, &p.in[0], gamma, &p.in[3], &p.in[4], &tdy, &tdx, &tdg,
                                               &tdb));
        }
        char what[96];
        snprintf(what, sizeof what, "fd batchnorm %dd %s%s dx", ndims[si], training ? "training" : "frozen",
                 affine ? " affine" : "");
        fd_check(what, &p, x, n, dx);
        if (affine) {
          snprintf(what, sizeof what, "fd batchnorm %dd %s dgamma", ndims[si], training ? "training" : "frozen");
          fd_check(what, &p, g, C, dg);
          snprintf(what, sizeof what, "fd batchnorm %dd %s dbeta", ndims[si], training ? "training" : "frozen");
          fd_check(what, &p, b, C, db);
        } else {
          /* without gamma/beta the gradients are those of gamma = 1, beta = 0 */
          double g1[8], b0[8];
          for (int64_t c = 0; c < C; c++) g1[c] = 1, b0[c] = 0;
          p.in[1] = host64(g1, 1, &C), p.in[2] = host64(b0, 1, &C), p.has[1] = p.has[2] = 1;
          snprintf(what, sizeof what, "fd batchnorm %dd %s dgamma (gamma NULL)", ndims[si],
                   training ? "training" : "frozen");
          fd_check(what, &p, g1, C, dg);
          snprintf(what, sizeof what, "fd batchnorm %dd %s dbeta (beta NULL)", ndims[si],
                   training ? "training" : "frozen");
          fd_check(what, &p, b0, C, db);
        }
      }
}

static void test_fd_mse(dlk_context *ctx) {
  for (int red = 0; red < 3; red++) {
    int64_t xs[3] = {2, 3, 4}, one = 1;
    double x[24], t[24], l[24], r[24], dx[24];
    fill(x, 24, -1, 1), fill(t, 24, -1, 1), fill(r, 24, -1, 1);
    dlk_mse_params mp = {(dlk_reduction)red};
    int64_t nl = red == DLK_REDUCE_NONE ? 24 : 1;
    fdprob p = {.ctx = ctx, .kind = FD_MSE, .mp = mp, .r = r, .n_out = nl};
    p.in[0] = host64(x, 3, xs), p.in[1] = host64(t, 3, xs);
    p.out = red == DLK_REDUCE_NONE ? host64(l, 3, xs) : host64(l, 1, &one);
    dlk_tensor tdl = red == DLK_REDUCE_NONE ? host64(r, 3, xs) : host64(r, 1, &one), tdx = host64(dx, 3, xs);
    CHECK_OK(ctx, dlk_mse_loss_backward(ctx, &mp, &p.in[0], &p.in[1], &tdl, &tdx));
    char what[64];
    snprintf(what, sizeof what, "fd mse_loss reduction %d dx", red);
    fd_check(what, &p, x, 24, dx);
  }
}

static void test_fd(dlk_context *ctx) {
  t_case = "finite differences";
  int before = t_checks;
  test_fd_pool(ctx);
  test_fd_adaptive(ctx);
  test_fd_batchnorm(ctx);
  test_fd_mse(ctx);
  printf("finite differences: %d checks\n", t_checks - before);
}

/* ====================================================================================== */
/* 3. The variant sweep                                                                    */
/* ====================================================================================== */

/* One case of an op; the meaning of d[], fl, f0, f1 is given per op below. pp: the pool
   parameters (pool ops). */
typedef struct {
  sweep_tags tags; /* big: GPU run only; notune: the call updates state it reads */
  int64_t d[6];
  int fl;
  double f0, f1;
  dlk_pool2d_params pp;
} scase;

/* Layout codes of a call: every image tensor in LC, LH or LP; LM mixed (inputs
   channels-last, outputs padded). Per-channel vectors are strided (stride 2) under LP and
   LM. */
enum { LM = 4 };
static int lay_in(int lay) { return lay == LM ? LH : lay; }
static int lay_out(int lay) { return lay == LM ? LP : lay; }
static int lay_vec(int lay) { return lay == LP || lay == LM ? LP : LC; }

typedef void (*gen_fn)(const scase *, dlk_dtype, hset *in);
typedef dlk_status (*run_fn)(dlk_context *, const scase *, dlk_dtype, int lay, const hset *in, hset *out);

#define PP(kind, kh, kw, sh, sw, ph, pw, dh, dw, ceil, cip) \
  { (dlk_pool_kind)(kind), {kh, kw}, {sh, sw}, {ph, pw}, {dh, dw}, ceil, cip }

/* The pooled size of one dim, as the library computes it (tested by the goldens). */
static int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t st, int64_t dil, int ceil) {
  if (st == 0) st = k;
  if (dil == 0) dil = 1;
  int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil ? st - 1 : 0);
  int64_t out = (num >= 0 ? num / st : -((-num + st - 1) / st)) + 1;
  if (ceil && (out - 1) * st >= in + pad) out--;
  return out;
}

static void pool_shapes(const scase *c, int64_t *xs, int64_t *ys) {
  for (int k = 0; k < 4; k++) xs[k] = c->d[k];
  ys[0] = xs[0], ys[1] = xs[1];
  for (int d = 0; d < 2; d++)
    ys[2 + d] = pool_out(xs[2 + d], c->pp.kernel[d], c->pp.padding[d], c->pp.stride[d], c->pp.dilation[d],
                         c->pp.ceil_mode);
}

/* ---- pool2d: d = {N, C, H, W}; fl bit 0: a NaN in x; bit 1 (backward): pass y; bit 2:
   inputs from few distinct values (ties in every window) ---- */

static void gen_pool_x(const scase *c, dlk_dtype dt, hset *in, int64_t n) {
  double *x = hs_uniform(in, dt, n, -2, 2);
  if (c->fl & 4)
    for (int64_t i = 0; i < n; i++) x[i] = (double)(int)(t_next() % 3) - 1;
  if (c->fl & 1) x[n / 2] = NAN;
}

static void gen_pool_fwd(const scase *c, dlk_dtype dt, hset *in) {
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  gen_pool_x(c, dt, in, xs[0] * xs[1] * xs[2] * xs[3]);
}

static dlk_status run_pool_fwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, 4, xs, lay_in(lay), in->a[0].v), *y = rig_out(&r, dt, 4, ys, lay_out(lay));
  return rig_end(&r, dlk_pool2d_forward(ctx, &c->pp, x, y), out);
}

static void gen_pool_bwd(const scase *c, dlk_dtype dt, hset *in) {
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  gen_pool_fwd(c, dt, in);
  hs_uniform(in, dt, ys[0] * ys[1] * ys[2] * ys[3], -1, 1); /* dy */
  /* y (only passed through; the library must not need it) */
  hs_uniform(in, dt, ys[0] * ys[1] * ys[2] * ys[3], -1, 1);
}

static dlk_status run_pool_bwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, 4, xs, lay_in(lay), in->a[0].v);
  dlk_tensor *dy = rig_in(&r, dt, 4, ys, lay_in(lay), in->a[1].v);
  dlk_tensor *y = c->fl & 2 ? rig_in(&r, dt, 4, ys, lay_in(lay), in->a[2].v) : NULL;
  dlk_tensor *dx = rig_out(&r, dt, 4, xs, lay_out(lay));
  return rig_end(&r, dlk_pool2d_backward(ctx, &c->pp, x, y, dy, dx), out);
}

/* ---- adaptive_avg_pool2d: d = {N, C, H, W, OH, OW} ---- */

static void gen_adaptive_fwd(const scase *c, dlk_dtype dt, hset *in) {
  hs_uniform(in, dt, c->d[0] * c->d[1] * c->d[2] * c->d[3], -2, 2);
}

static dlk_status run_adaptive_fwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in,
                                   hset *out) {
  int64_t xs[4] = {c->d[0], c->d[1], c->d[2], c->d[3]}, ys[4] = {c->d[0], c->d[1], c->d[4], c->d[5]};
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, 4, xs, lay_in(lay), in->a[0].v), *y = rig_out(&r, dt, 4, ys, lay_out(lay));
  return rig_end(&r, dlk_adaptive_avg_pool2d_forward(ctx, x, y), out);
}

static void gen_adaptive_bwd(const scase *c, dlk_dtype dt, hset *in) {
  hs_uniform(in, dt, c->d[0] * c->d[1] * c->d[4] * c->d[5], -2, 2);
}

static dlk_status run_adaptive_bwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in,
                                   hset *out) {
  int64_t xs[4] = {c->d[0], c->d[1], c->d[2], c->d[3]}, ys[4] = {c->d[0], c->d[1], c->d[4], c->d[5]};
  rig r = {.ctx = ctx};
  dlk_tensor *dy = rig_in(&r, dt, 4, ys, lay_in(lay), in->a[0].v), *dx = rig_out(&r, dt, 4, xs, lay_out(lay));
  return rig_end(&r, dlk_adaptive_avg_pool2d_backward(ctx, dy, dx), out);
}

/* ---- batchnorm: d = {ndim, N, C, H, W}; fl bit 0 training, bit 1 gamma and beta, bit 2
   running statistics (fwd); bwd: bits 3, 4, 5 ask for dx, dgamma, dbeta; f0 eps, f1
   momentum ---- */

static int bn_shape(const scase *c, int64_t *sh) {
  int nd = (int)c->d[0];
  for (int k = 0; k < nd; k++) sh[k] = c->d[1 + k];
  return nd;
}
static int64_t bn_numel(const scase *c) {
  int64_t sh[4], n = 1;
  int nd = bn_shape(c, sh);
  for (int k = 0; k < nd; k++) n *= sh[k];
  return n;
}

static void gen_bn_fwd(const scase *c, dlk_dtype dt, hset *in) {
  dlk_dtype sd = stat_dt(dt);
  int64_t C = c->d[2];
  double *x = hs_uniform(in, dt, bn_numel(c), -1, 3);
  (void)x;
  hs_uniform(in, sd, C, 0.5, 1.5);  /* gamma */
  hs_uniform(in, sd, C, -1, 1);     /* beta */
  hs_uniform(in, sd, C, -0.5, 0.5); /* running_mean */
  hs_uniform(in, sd, C, 0.5, 2);    /* running_var */
}

static dlk_status run_bn_fwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t sh[4], C = c->d[2];
  int nd = bn_shape(c, sh);
  dlk_dtype sd = stat_dt(dt);
  int training = c->fl & 1, affine = c->fl & 2, running = c->fl & 4, lv = lay_vec(lay);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, nd, sh, lay_in(lay), in->a[0].v);
  dlk_tensor *g = affine ? rig_in(&r, sd, 1, &C, lv, in->a[1].v) : NULL;
  dlk_tensor *b = affine ? rig_in(&r, sd, 1, &C, lv, in->a[2].v) : NULL;
  dlk_tensor *rm = NULL, *rv = NULL;
  if (running && training)
    rm = rig_inout(&r, sd, 1, &C, lv, in->a[3].v), rv = rig_inout(&r, sd, 1, &C, lv, in->a[4].v);
  else if (running)
    rm = rig_in(&r, sd, 1, &C, lv, in->a[3].v), rv = rig_in(&r, sd, 1, &C, lv, in->a[4].v);
  dlk_tensor *y = rig_out(&r, dt, nd, sh, lay_out(lay));
  dlk_tensor *sm = training ? rig_out(&r, sd, 1, &C, lv) : NULL, *sr = training ? rig_out(&r, sd, 1, &C, lv) : NULL;
  dlk_batchnorm_params p = {c->f0, c->f1, training};
  return rig_end(&r, dlk_batchnorm_forward(ctx, &p, x, g, b, rm, rv, y, sm, sr), out);
}

static void gen_bn_bwd(const scase *c, dlk_dtype dt, hset *in) {
  dlk_dtype sd = stat_dt(dt);
  int64_t sh[4], C = c->d[2];
  int nd = bn_shape(c, sh);
  int64_t n = bn_numel(c), per = n / (C ? C : 1);
  double *x = hs_uniform(in, dt, n, -1, 3);
  hs_uniform(in, sd, C, 0.5, 1.5); /* gamma */
  double *mean = hs_add(in, sd, C), *stat = hs_add(in, sd, C);
  hs_uniform(in, dt, n, -1, 1); /* dy */
  int64_t inner = nd >= 3 ? sh[2] * (nd == 4 ? sh[3] : 1) : 1;
  for (int64_t ch = 0; ch < C; ch++) {
    if (!(c->fl & 1)) { /* frozen: a running mean and variance */
      mean[ch] = round_to(sd, t_uniform(-0.5, 0.5));
      stat[ch] = round_to(sd, t_uniform(0.5, 2));
      continue;
    }
    /* training: the batch statistics of x, as the forward saves them */
    double s = 0, q = 0;
    for (int64_t i = 0; i < sh[0]; i++)
      for (int64_t j = 0; j < inner; j++) s += x[(i * C + ch) * inner + j];
    double m = per ? s / (double)per : 0;
    for (int64_t i = 0; i < sh[0]; i++)
      for (int64_t j = 0; j < inner; j++) q += (x[(i * C + ch) * inner + j] - m) * (x[(i * C + ch) * inner + j] - m);
    mean[ch] = round_to(sd, m);
    stat[ch] = round_to(sd, 1 / sqrt((per ? q / (double)per : 0) + c->f0));
  }
}

static dlk_status run_bn_bwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t sh[4], C = c->d[2];
  int nd = bn_shape(c, sh);
  dlk_dtype sd = stat_dt(dt);
  int lv = lay_vec(lay);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, nd, sh, lay_in(lay), in->a[0].v);
  dlk_tensor *g = c->fl & 2 ? rig_in(&r, sd, 1, &C, lv, in->a[1].v) : NULL;
  dlk_tensor *m = rig_in(&r, sd, 1, &C, lv, in->a[2].v), *st = rig_in(&r, sd, 1, &C, lv, in->a[3].v);
  dlk_tensor *dy = rig_in(&r, dt, nd, sh, lay_in(lay), in->a[4].v);
  dlk_tensor *dx = c->fl & 8 ? rig_out(&r, dt, nd, sh, lay_out(lay)) : NULL;
  dlk_tensor *dg = c->fl & 16 ? rig_out(&r, sd, 1, &C, lv) : NULL, *db = c->fl & 32 ? rig_out(&r, sd, 1, &C, lv) : NULL;
  dlk_batchnorm_params p = {c->f0, 0.1, c->fl & 1};
  return rig_end(&r, dlk_batchnorm_backward(ctx, &p, x, g, m, st, dy, dx, dg, db), out);
}

/* ---- mse_loss: d = {ndim, d0, d1, d2, d3}; fl = reduction; bit 4: loss as [1] ---- */

static int mse_shape(const scase *c, int64_t *sh) {
  int nd = (int)c->d[0];
  for (int k = 0; k < nd; k++) sh[k] = c->d[1 + k];
  return nd;
}
static int64_t mse_numel(const scase *c) {
  int64_t sh[4], n = 1;
  int nd = mse_shape(c, sh);
  for (int k = 0; k < nd; k++) n *= sh[k];
  return n;
}
/* The loss's dims: x's for NONE, [1] or [] otherwise. */
static int mse_loss_shape(const scase *c, int64_t *sh) {
  if ((c->fl & 3) == DLK_REDUCE_NONE) return mse_shape(c, sh);
  sh[0] = 1;
  return c->fl & 16 ? 1 : 0;
}
/* MSE layouts: LC, LT (transposed) and LP; LH means LT here. */
static int mse_lay(int lay) { return lay == LH || lay == LM ? LT : lay; }

static void gen_mse_fwd(const scase *c, dlk_dtype dt, hset *in) {
  int64_t n = mse_numel(c);
  hs_uniform(in, dt, n, -2, 2);
  hs_uniform(in, dt, n, -2, 2);
}

static dlk_status run_mse_fwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t sh[4], ls[4];
  int nd = mse_shape(c, sh), nl = mse_loss_shape(c, ls);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, nd, sh, mse_lay(lay), in->a[0].v), *t = rig_in(&r, dt, nd, sh, LC, in->a[1].v);
  dlk_tensor *loss = rig_out(&r, stat_dt(dt), nl, ls, mse_lay(lay));
  dlk_mse_params p = {(dlk_reduction)(c->fl & 3)};
  return rig_end(&r, dlk_mse_loss_forward(ctx, &p, x, t, loss), out);
}

static void gen_mse_bwd(const scase *c, dlk_dtype dt, hset *in) {
  int64_t ls[4], nl_elems = 1;
  int nl = mse_loss_shape(c, ls);
  for (int k = 0; k < nl; k++) nl_elems *= ls[k];
  gen_mse_fwd(c, dt, in);
  hs_uniform(in, stat_dt(dt), nl_elems, -1, 1);
}

static dlk_status run_mse_bwd(dlk_context *ctx, const scase *c, dlk_dtype dt, int lay, const hset *in, hset *out) {
  int64_t sh[4], ls[4];
  int nd = mse_shape(c, sh), nl = mse_loss_shape(c, ls);
  rig r = {.ctx = ctx};
  dlk_tensor *x = rig_in(&r, dt, nd, sh, mse_lay(lay), in->a[0].v), *t = rig_in(&r, dt, nd, sh, LP, in->a[1].v);
  dlk_tensor *dl = rig_in(&r, stat_dt(dt), nl, ls, LC, in->a[2].v);
  dlk_tensor *dx = rig_out(&r, dt, nd, sh, mse_lay(lay) == LT ? LP : mse_lay(lay));
  dlk_mse_params p = {(dlk_reduction)(c->fl & 3)};
  return rig_end(&r, dlk_mse_loss_backward(ctx, &p, x, t, dl, dx), out);
}

/* ---- the case tables: odd sizes, 1x1 and 7x7 windows, stride 2, dilation 2, padding
   half the window, output size 1, batch 1 and 32, ceil_mode, count_include_pad, ties,
   NaN ---- */

static const scase pool_cases[] = {
    {{false, false}, {1, 1, 1, 1}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 7, 5}, 0, 0, 0, PP(0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 9, 8}, 0, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {1, 4, 11, 13}, 0, 0, 0, PP(0, 3, 3, 1, 1, 1, 1, 2, 2, 0, 0)},
    {{false, false}, {2, 2, 9, 9}, 0, 0, 0, PP(0, 7, 7, 2, 2, 3, 3, 0, 0, 1, 0)},
    {{false, false}, {3, 2, 3, 3}, 0, 0, 0, PP(0, 3, 2, 1, 1, 1, 1, 2, 3, 0, 0)}, /* output height 1 */
    {{false, false}, {2, 3, 6, 7}, 1, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {2, 3, 6, 7}, 4, 0, 0, PP(0, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0)},
    {{false, false}, {32, 3, 5, 5}, 0, 0, 0, PP(0, 2, 2, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {1, 1, 1, 1}, 0, 0, 0, PP(1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 7, 5}, 0, 0, 0, PP(1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1)},
    {{false, false}, {2, 3, 9, 8}, 0, 0, 0, PP(1, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1)},
    {{false, false}, {2, 3, 9, 8}, 0, 0, 0, PP(1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0)},
    {{false, false}, {1, 2, 10, 11}, 0, 0, 0, PP(1, 7, 7, 2, 2, 3, 3, 0, 0, 1, 0)},
    {{false, false}, {2, 2, 7, 3}, 0, 0, 0, PP(1, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0)},
    {{false, false}, {32, 4, 5, 6}, 0, 0, 0, PP(1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 1)},
    {{false, false}, {2, 3, 2, 2}, 0, 0, 0, PP(1, 3, 3, 1, 1, 1, 1, 0, 0, 1, 0)}, /* output 2x2 from 2x2 */
    {{true, false}, {32, 64, 56, 56}, 0, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0)},
    {{true, false}, {32, 256, 14, 14}, 0, 0, 0, PP(1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1)},
};

static const scase pool_bwd_cases[] = {
    {{false, false}, {1, 1, 1, 1}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 7, 5}, 2, 0, 0, PP(0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 9, 8}, 0, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {1, 4, 11, 13}, 2, 0, 0, PP(0, 3, 3, 1, 1, 1, 1, 2, 2, 0, 0)},
    {{false, false}, {2, 2, 9, 9}, 0, 0, 0, PP(0, 7, 7, 2, 2, 3, 3, 0, 0, 1, 0)},
    {{false, false}, {3, 2, 3, 3}, 0, 0, 0, PP(0, 3, 2, 1, 1, 1, 1, 2, 3, 0, 0)},
    {{false, false}, {2, 3, 6, 7}, 4, 0, 0, PP(0, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 6, 7}, 1, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {32, 3, 5, 5}, 0, 0, 0, PP(0, 2, 2, 2, 2, 1, 1, 0, 0, 1, 0)},
    {{false, false}, {2, 3, 7, 5}, 0, 0, 0, PP(1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1)},
    {{false, false}, {2, 3, 9, 8}, 2, 0, 0, PP(1, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1)},
    {{false, false}, {2, 3, 9, 8}, 0, 0, 0, PP(1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0)},
    {{false, false}, {1, 2, 10, 11}, 0, 0, 0, PP(1, 7, 7, 2, 2, 3, 3, 0, 0, 1, 0)},
    {{false, false}, {2, 2, 7, 3}, 0, 0, 0, PP(1, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0)},
    {{false, false}, {32, 4, 5, 6}, 0, 0, 0, PP(1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 1)},
    {{true, false}, {32, 64, 56, 56}, 0, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0)},
    {{true, false}, {32, 256, 14, 14}, 0, 0, 0, PP(1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1)},
};

static const scase adaptive_cases[] = {
    {{false, false}, {1, 1, 1, 1, 1, 1}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 3, 7, 5, 3, 2}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 5, 7, 7, 1, 1}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {1, 2, 3, 4, 5, 7}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {2, 2, 10, 9, 4, 4}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{false, false}, {32, 3, 6, 6, 6, 6}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{true, false}, {32, 2048, 7, 7, 1, 1}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
    {{true, false}, {8, 512, 14, 14, 7, 7}, 0, 0, 0, PP(0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
};

static const scase bn_fwd_cases[] = {
    {{false, true}, {4, 2, 3, 4, 5}, 7, 1e-5, 0.1, {0}},   {{false, false}, {4, 3, 2, 3, 3}, 1, 1e-5, 0.1, {0}},
    {{false, false}, {4, 1, 3, 5, 7}, 3, 1e-3, 0.3, {0}},   {{false, true}, {2, 8, 5, 1, 1}, 7, 1e-5, 0.1, {0}},
    {{false, true}, {3, 4, 3, 9, 1}, 5, 1e-5, 0.0, {0}},   {{false, true}, {4, 2, 1, 1, 1}, 7, 1e-5, 1.0, {0}},
    {{false, false}, {4, 2, 3, 4, 5}, 6, 1e-5, 0.1, {0}},   {{false, false}, {4, 2, 3, 4, 5}, 4, 1e-5, 0.1, {0}},
    {{false, false}, {2, 5, 3, 1, 1}, 6, 1e-3, 0.1, {0}},   {{false, true}, {4, 32, 16, 7, 7}, 7, 1e-5, 0.1, {0}},
    {{false, true}, {4, 0, 3, 4, 5}, 7, 1e-5, 0.1, {0}},   {{true, true}, {4, 32, 64, 56, 56}, 7, 1e-5, 0.1, {0}},
    {{true, false}, {4, 32, 256, 14, 14}, 6, 1e-5, 0.1, {0}},
};

static const scase bn_bwd_cases[] = {
    {{false, false}, {4, 2, 3, 4, 5}, 1 | 2 | 8 | 16 | 32, 1e-5, 0, {0}},
    {{false, false}, {4, 3, 2, 3, 3}, 1 | 8 | 16 | 32, 1e-5, 0, {0}},
    {{false, false}, {4, 1, 3, 5, 7}, 1 | 2 | 8, 1e-3, 0, {0}},
    {{false, false}, {2, 8, 5, 1, 1}, 1 | 2 | 16 | 32, 1e-5, 0, {0}},
    {{false, false}, {3, 4, 3, 9, 1}, 1 | 2 | 8 | 32, 1e-5, 0, {0}},
    {{false, false}, {4, 2, 3, 4, 5}, 2 | 8 | 16 | 32, 1e-5, 0, {0}},
    {{false, false}, {4, 3, 2, 3, 3}, 8 | 16, 1e-5, 0, {0}},
    {{false, false}, {4, 32, 16, 7, 7}, 1 | 2 | 8 | 16 | 32, 1e-5, 0, {0}},
    {{false, false}, {4, 0, 3, 4, 5}, 1 | 2 | 8 | 16 | 32, 1e-5, 0, {0}},
    {{true, false}, {4, 32, 64, 56, 56}, 1 | 2 | 8 | 16 | 32, 1e-5, 0, {0}},
};

static const scase mse_cases[] = {
    {{false, false}, {0, 0, 0, 0, 0}, 0, 0, 0, {0}},        {{false, false}, {0, 0, 0, 0, 0}, 2, 0, 0, {0}},
    {{false, false}, {1, 1, 0, 0, 0}, 1 | 16, 0, 0, {0}},   {{false, false}, {2, 3, 5, 0, 0}, 0, 0, 0, {0}},
    {{false, false}, {2, 3, 5, 0, 0}, 1, 0, 0, {0}},        {{false, false}, {2, 3, 5, 0, 0}, 2, 0, 0, {0}},
    {{false, false}, {3, 4, 7, 9, 0}, 0 | 16, 0, 0, {0}},   {{false, false}, {4, 2, 3, 17, 33}, 1, 0, 0, {0}},
    {{false, false}, {4, 2, 3, 17, 33}, 2, 0, 0, {0}},      {{false, false}, {1, 5000, 0, 0, 0}, 0, 0, 0, {0}},
    {{false, false}, {2, 0, 7, 0, 0}, 0, 0, 0, {0}},        {{false, false}, {2, 0, 7, 0, 0}, 2, 0, 0, {0}},
    {{true, false}, {1, 1 << 20, 0, 0, 0}, 0, 0, 0, {0}},  {{true, false}, {4, 8, 64, 56, 56}, 2, 0, 0, {0}},
};


/* ---- the naive truth of the sweep on a CPU context (tests/sweep.h): each op computed
   here again, plainly, from its PyTorch definition ---- */

static double nv_round(dlk_dtype dt, double v) { return sweep_round(dt, v); }

/* x [N, C, H, W] row-major logical values. */
static double nv_at(const double *x, const int64_t *s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return x[((n * s[1] + c) * s[2] + h) * s[3] + w];
}

/* torch's pooling window of output (oh, ow): rows/cols [h0, h1) step dil, the divisor.
   Returns 0 when a max window holds no input element. */
static int nv_window(const dlk_pool2d_params *p0, int64_t H, int64_t W, int64_t oh, int64_t ow, int64_t *h0,
                     int64_t *h1, int64_t *w0, int64_t *w1, int64_t *dh, int64_t *dw, double *div) {
  dlk_pool2d_params p = *p0;
  for (int d = 0; d < 2; d++) {
    if (!p.stride[d]) p.stride[d] = p.kernel[d];
    if (!p.dilation[d]) p.dilation[d] = 1;
  }
  int64_t hs = oh * p.stride[0] - p.padding[0], ws = ow * p.stride[1] - p.padding[1];
  *dh = p.dilation[0], *dw = p.dilation[1];
  if (p.kind == DLK_POOL_MAX) {
    int64_t he = hs + (p.kernel[0] - 1) * p.dilation[0] + 1, we = ws + (p.kernel[1] - 1) * p.dilation[1] + 1;
    while (hs < 0) hs += p.dilation[0];
    while (ws < 0) ws += p.dilation[1];
    *h0 = hs, *w0 = ws, *h1 = he < H ? he : H, *w1 = we < W ? we : W;
    *div = 1;
    return *h0 < *h1 && *w0 < *w1;
  }
  int64_t he = hs + p.kernel[0], we = ws + p.kernel[1];
  if (he > H + p.padding[0]) he = H + p.padding[0];
  if (we > W + p.padding[1]) we = W + p.padding[1];
  const double pool_size = (double)((he - hs) * (we - ws));
  *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws, *h1 = he < H ? he : H, *w1 = we < W ? we : W;
  *div = p.count_include_pad ? pool_size : (double)((*h1 - *h0) * (*w1 - *w0));
  return 1;
}

static void naive_pool_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  double *y = sweep_add(ref, dt, ys[0] * ys[1] * ys[2] * ys[3]);
  const double *x = in->a[0].v;
  int64_t i = 0;
  for (int64_t n = 0; n < ys[0]; n++)
    for (int64_t ch = 0; ch < ys[1]; ch++)
      for (int64_t oh = 0; oh < ys[2]; oh++)
        for (int64_t ow = 0; ow < ys[3]; ow++, i++) {
          int64_t h0, h1, w0, w1, dh, dw;
          double div, v = c->pp.kind == DLK_POOL_MAX ? -INFINITY : 0;
          nv_window(&c->pp, xs[2], xs[3], oh, ow, &h0, &h1, &w0, &w1, &dh, &dw, &div);
          for (int64_t h = h0; h < h1; h += dh)
            for (int64_t w = w0; w < w1; w += dw) {
              double e = nv_at(x, xs, n, ch, h, w);
              if (c->pp.kind == DLK_POOL_AVG) v += e;
              else if (e > v || isnan(e)) v = e;
            }
          y[i] = nv_round(dt, c->pp.kind == DLK_POOL_AVG ? v / div : v);
        }
}

static void naive_pool_bwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  int64_t xs[4], ys[4];
  pool_shapes(c, xs, ys);
  const int64_t nx = xs[0] * xs[1] * xs[2] * xs[3];
  double *dx = sweep_add(ref, dt, nx);
  const double *x = in->a[0].v, *dy = in->a[1].v;
  int64_t i = 0;
  for (int64_t n = 0; n < ys[0]; n++)
    for (int64_t ch = 0; ch < ys[1]; ch++)
      for (int64_t oh = 0; oh < ys[2]; oh++)
        for (int64_t ow = 0; ow < ys[3]; ow++, i++) {
          int64_t h0, h1, w0, w1, dh, dw, ah = -1, aw = -1;
          double div, m = -INFINITY;
          if (!nv_window(&c->pp, xs[2], xs[3], oh, ow, &h0, &h1, &w0, &w1, &dh, &dw, &div)) continue;
          for (int64_t h = h0; h < h1; h += dh)
            for (int64_t w = w0; w < w1; w += dw) {
              if (c->pp.kind == DLK_POOL_AVG) {
                dx[((n * xs[1] + ch) * xs[2] + h) * xs[3] + w] += dy[i] / div;
                continue;
              }
              double e = nv_at(x, xs, n, ch, h, w);
              if (ah < 0 || e > m || isnan(e)) m = e, ah = h, aw = w;
            }
          if (c->pp.kind == DLK_POOL_MAX) dx[((n * xs[1] + ch) * xs[2] + ah) * xs[3] + aw] += dy[i];
        }
  for (int64_t k = 0; k < nx; k++) dx[k] = nv_round(dt, dx[k]);
}

static void naive_adaptive_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const int64_t N = c->d[0], C = c->d[1], H = c->d[2], W = c->d[3], OH = c->d[4], OW = c->d[5];
  const int64_t xs[4] = {N, C, H, W};
  double *y = sweep_add(ref, dt, N * C * OH * OW);
  int64_t i = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++, i++) {
          /* rows [floor(oh H / OH), ceil((oh + 1) H / OH)) */
          int64_t h0 = (int64_t)floor((double)(oh * H) / (double)OH), h1 = (int64_t)ceil((double)((oh + 1) * H) / (double)OH);
          int64_t w0 = (int64_t)floor((double)(ow * W) / (double)OW), w1 = (int64_t)ceil((double)((ow + 1) * W) / (double)OW);
          double sum = 0;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) sum += nv_at(in->a[0].v, xs, n, ch, h, w);
          y[i] = nv_round(dt, sum / (double)((h1 - h0) * (w1 - w0)));
        }
}

/* The backward as a scatter of each bin's dy / area (the library gathers). */
static void naive_adaptive_bwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const int64_t N = c->d[0], C = c->d[1], H = c->d[2], W = c->d[3], OH = c->d[4], OW = c->d[5];
  double *dx = sweep_add(ref, dt, N * C * H * W);
  int64_t i = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++, i++) {
          int64_t h0 = (int64_t)floor((double)(oh * H) / (double)OH), h1 = (int64_t)ceil((double)((oh + 1) * H) / (double)OH);
          int64_t w0 = (int64_t)floor((double)(ow * W) / (double)OW), w1 = (int64_t)ceil((double)((ow + 1) * W) / (double)OW);
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++)
              dx[((n * C + ch) * H + h) * W + w] += in->a[0].v[i] / (double)((h1 - h0) * (w1 - w0));
        }
  for (int64_t k = 0; k < N * C * H * W; k++) dx[k] = nv_round(dt, dx[k]);
}

/* Channel ch of x [N, C, inner] as (sum, count) passes. */
static void nv_bn_stats(const double *x, int64_t N, int64_t C, int64_t inner, int64_t ch, double *mean, double *var) {
  double s = 0, q = 0, m = (double)(N * inner);
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < inner; j++) s += x[(n * C + ch) * inner + j];
  *mean = s / m;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < inner; j++) q += (x[(n * C + ch) * inner + j] - *mean) * (x[(n * C + ch) * inner + j] - *mean);
  *var = q / m;
}

static void naive_bn_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const dlk_dtype sd = stat_dt(dt);
  int64_t sh[4] = {0, 0, 1, 1};
  const int nd = bn_shape(c, sh);
  const int64_t N = sh[0], C = sh[1], inner = bn_numel(c) / (N * C != 0 ? N * C : 1), M = N * inner;
  const int training = c->fl & 1, affine = c->fl & 2, running = c->fl & 4;
  (void)nd;
  double *rm = NULL, *rv = NULL, *sm = NULL, *sr = NULL;
  if (training && running) rm = sweep_add(ref, sd, C), rv = sweep_add(ref, sd, C);
  double *y = sweep_add(ref, dt, bn_numel(c));
  if (training) sm = sweep_add(ref, sd, C), sr = sweep_add(ref, sd, C);
  const double *x = in->a[0].v;
  for (int64_t ch = 0; ch < C; ch++) {
    double mean, var, rstd;
    if (training && M == 0) { /* nothing written: the outputs keep their fill (NaN) */
      if (rm) rm[ch] = in->a[3].v[ch], rv[ch] = in->a[4].v[ch];
      sm[ch] = sr[ch] = NAN;
      continue;
    }
    if (training) {
      nv_bn_stats(x, N, C, inner, ch, &mean, &var);
      rstd = 1 / sqrt(var + c->f0);
      sm[ch] = nv_round(sd, mean), sr[ch] = nv_round(sd, rstd);
      if (rm) {
        rm[ch] = nv_round(sd, (1 - c->f1) * in->a[3].v[ch] + c->f1 * mean);
        rv[ch] = nv_round(sd, (1 - c->f1) * in->a[4].v[ch] + c->f1 * var * (double)M / (double)(M - 1));
      }
    } else {
      mean = in->a[3].v[ch], rstd = 1 / sqrt(in->a[4].v[ch] + c->f0);
    }
    const double g = affine ? in->a[1].v[ch] : 1, b = affine ? in->a[2].v[ch] : 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < inner; j++) {
        const int64_t k = (n * C + ch) * inner + j;
        y[k] = nv_round(dt, (x[k] - mean) * rstd * g + b);
      }
  }
}

static void naive_bn_bwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const dlk_dtype sd = stat_dt(dt);
  int64_t sh[4] = {0, 0, 1, 1};
  bn_shape(c, sh);
  const int64_t N = sh[0], C = sh[1], inner = bn_numel(c) / (N * C != 0 ? N * C : 1);
  const double M = (double)(N * inner);
  const double *x = in->a[0].v, *gam = in->a[1].v, *mean = in->a[2].v, *stat = in->a[3].v, *dy = in->a[4].v;
  double *dx = c->fl & 8 ? sweep_add(ref, dt, bn_numel(c)) : NULL;
  double *dg = c->fl & 16 ? sweep_add(ref, sd, C) : NULL, *db = c->fl & 32 ? sweep_add(ref, sd, C) : NULL;
  for (int64_t ch = 0; ch < C; ch++) {
    const double rstd = c->fl & 1 ? stat[ch] : 1 / sqrt(stat[ch] + c->f0), g = c->fl & 2 ? gam[ch] : 1;
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < inner; j++) {
        const int64_t k = (n * C + ch) * inner + j;
        sdy += dy[k], sdyx += dy[k] * (x[k] - mean[ch]) * rstd;
      }
    if (dg) dg[ch] = nv_round(sd, sdyx);
    if (db) db[ch] = nv_round(sd, sdy);
    if (!dx) continue;
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < inner; j++) {
        const int64_t k = (n * C + ch) * inner + j;
        const double xhat = (x[k] - mean[ch]) * rstd;
        dx[k] = nv_round(dt, c->fl & 1 ? g * rstd * (dy[k] - sdy / M - xhat * sdyx / M) : g * rstd * dy[k]);
      }
  }
}

static void naive_mse_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const int64_t n = mse_numel(c);
  const int red = c->fl & 3;
  double *l = sweep_add(ref, stat_dt(dt), red == DLK_REDUCE_NONE ? n : 1), sum = 0;
  for (int64_t i = 0; i < n; i++) {
    const double d = in->a[0].v[i] - in->a[1].v[i];
    if (red == DLK_REDUCE_NONE) l[i] = nv_round(stat_dt(dt), d * d);
    sum += d * d;
  }
  if (red != DLK_REDUCE_NONE) l[0] = nv_round(stat_dt(dt), red == DLK_REDUCE_MEAN ? sum / (double)n : sum);
}

static void naive_mse_bwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const scase *c = cv;
  const int64_t n = mse_numel(c);
  const int red = c->fl & 3;
  double *dx = sweep_add(ref, dt, n);
  for (int64_t i = 0; i < n; i++) {
    const double g = red == DLK_REDUCE_NONE ? in->a[2].v[i] : red == DLK_REDUCE_SUM ? in->a[2].v[0] : in->a[2].v[0] / (double)n;
    dx[i] = nv_round(dt, 2 * (in->a[0].v[i] - in->a[1].v[i]) * g);
  }
}

/* The rows (tests/sweep.h): contiguous NCHW tensors; the layout sweep below adds
   channels-last, padded and mixed layouts against the reference. */
#define M2_GEN(name) \
  static void m2_gen_##name(const void *c, dlk_dtype dt, sweep_set *in) { gen_##name(c, dt, in); }
#define M2_RUN(name)                                                                                   \
  static dlk_status m2_run_##name(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, \
                                  sweep_set *out) {                                                    \
    return run_##name(ctx, c, dt, LC, in, out);                                                        \
  }
M2_GEN(pool_fwd) M2_RUN(pool_fwd) M2_GEN(pool_bwd) M2_RUN(pool_bwd)
M2_GEN(adaptive_fwd) M2_RUN(adaptive_fwd) M2_GEN(adaptive_bwd) M2_RUN(adaptive_bwd)
M2_GEN(bn_fwd) M2_RUN(bn_fwd) M2_GEN(bn_bwd) M2_RUN(bn_bwd)
M2_GEN(mse_fwd) M2_RUN(mse_fwd) M2_GEN(mse_bwd) M2_RUN(mse_bwd)

#define ROW(label, op, cases, name, tunable) \
  {label, op, SWEEP_CASES(cases), m2_gen_##name, m2_run_##name, naive_##name, 0, tunable, NULL, 0, NULL}
static const sweep_op cnn_rows[] = {
    ROW("pool2d_fwd", "pool2d_fwd", pool_cases, pool_fwd, 1),
    ROW("pool2d_bwd", "pool2d_bwd", pool_bwd_cases, pool_bwd, 1),
    ROW("adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_fwd", adaptive_cases, adaptive_fwd, 1),
    ROW("adaptive_avg_pool2d_bwd", "adaptive_avg_pool2d_bwd", adaptive_cases, adaptive_bwd, 1),
    ROW("batchnorm_fwd", "batchnorm_fwd", bn_fwd_cases, bn_fwd, 1),
    ROW("batchnorm_bwd", "batchnorm_bwd", bn_bwd_cases, bn_bwd, 1),
    ROW("mse_loss_fwd", "mse_loss_fwd", mse_cases, mse_fwd, 1),
    ROW("mse_loss_bwd", "mse_loss_bwd", mse_cases, mse_bwd, 1),
};
#define N_CNN_ROWS ((int)(sizeof cnn_rows / sizeof cnn_rows[0]))

typedef struct {
  const char *op; /* the dispatcher op */
  const scase *cases;
  int ncases;
  gen_fn gen;
  run_fn run;
  int nlay;       /* layouts tried: LC, LH, LP, LM (first nlay of them) */
} layout_op;

#define LAYOUT(op, cases, gen, run, nlay) {op, cases, N_OF(cases), gen, run, nlay}
static const layout_op layout_ops[] = {
    LAYOUT("pool2d_fwd", pool_cases, gen_pool_fwd, run_pool_fwd, 4),
    LAYOUT("pool2d_bwd", pool_bwd_cases, gen_pool_bwd, run_pool_bwd, 4),
    LAYOUT("adaptive_avg_pool2d_fwd", adaptive_cases, gen_adaptive_fwd, run_adaptive_fwd, 4),
    LAYOUT("adaptive_avg_pool2d_bwd", adaptive_cases, gen_adaptive_bwd, run_adaptive_bwd, 4),
    LAYOUT("batchnorm_fwd", bn_fwd_cases, gen_bn_fwd, run_bn_fwd, 4),
    LAYOUT("batchnorm_bwd", bn_bwd_cases, gen_bn_bwd, run_bn_bwd, 4),
    LAYOUT("mse_loss_fwd", mse_cases, gen_mse_fwd, run_mse_fwd, 3),
    LAYOUT("mse_loss_bwd", mse_cases, gen_mse_bwd, run_mse_bwd, 3),
};
static const int sweep_layouts[] = {LC, LH, LP, LM};
static const dlk_dtype sweep_dtypes[] = {DLK_F32, DLK_F16, DLK_BF16, DLK_F64};

/* Every op of this part that the registry lists must have a sweep row. */
static void check_sweep_covers_ops(dlk_context *ctx) {
  static const char *const ours[] = {"pool2d_fwd",    "pool2d_bwd",    "adaptive_avg_pool2d_fwd",
                                     "adaptive_avg_pool2d_bwd", "batchnorm_fwd", "batchnorm_bwd",
                                     "mse_loss_fwd",  "mse_loss_bwd"};
  t_case = "sweep coverage";
  for (int i = 0; i < N_OF(ours); i++) {
    int found = 0, nv = 0;
    for (int k = 0; k < N_OF(layout_ops); k++) found += strcmp(layout_ops[k].op, ours[i]) == 0;
    CHECK(found == 1, "op %s has %d sweep rows", ours[i], found);
    CHECK_OK(ctx, dlk_op_variants(ctx, ours[i], NULL, 0, &nv));
    CHECK(nv >= 1, "op %s is registered with %d variants", ours[i], nv);
  }
}

/* The layout sweep (beside tests/sweep.h's rows, whose layouts are row-major ones): for
   each op x case x dtype, the reference outputs (variant 0 on `ref`, contiguous NCHW),
   then every variant of `ctx`'s device x layout (NCHW, channels-last, padded, mixed)
   against them, and AUTO. Deterministic mode: a second run of each variant gives the same
   bits. */
static void test_layouts(dlk_context *ctx, dlk_context *ref, int quick, int gpu) {
  check_sweep_covers_ops(ctx);
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  int runs = 0, skips = 0;
  for (int o = 0; o < N_OF(layout_ops); o++) {
    const layout_op *op = &layout_ops[o];
    dlk_variant_info vs[32];
    int nv = 0;
    CHECK_OK(ctx, dlk_op_variants(ctx, op->op, vs, 32, &nv));
    for (int ci = 0; ci < op->ncases; ci++) {
      const scase *c = &op->cases[ci];
      if (c->tags.big && (!gpu || quick)) continue; /* as the sweep: big ones not in a quick run */
      if (quick == 1 && ci % 3 != 0) continue;
      for (int di = 0; di < N_OF(sweep_dtypes); di++) {
        dlk_dtype dt = sweep_dtypes[di];
        if (c->tags.big && dt == DLK_F64) continue;
        hset in = {.n = 0}, want = {.n = 0};
        t_seed(0x5EED0000ULL + (uint64_t)(o * 1000 + ci * 10 + di));
        op->gen(c, dt, &in);
        snprintf(t_case_buf, sizeof t_case_buf, "layouts %s case %d %s: reference", op->op, ci, dlk_dtype_name(dt));
        t_case = t_case_buf;
        CHECK_OK(ref, dlk_force_variant(ref, op->op, 0));
        dlk_status s = op->run(ref, c, dt, LC, &in, &want);
        CHECK_OK(ref, dlk_force_variant(ref, op->op, -1));
        CHECK(s == DLK_OK, "reference run: %s: %s", dlk_status_string(s), dlk_context_last_error(ref));
        if (s != DLK_OK) {
          hs_free(&in);
          hs_free(&want);
          continue;
        }
        for (int k = -1; k < nv && k < 32; k++) {
          if (k >= 0 && vs[k].device != dev.type) continue;
          for (int li = 0; li < op->nlay; li++) {
            int lay = sweep_layouts[li];
            if (k < 0 && li > 0) break; /* AUTO: once, contiguous */
            snprintf(t_case_buf, sizeof t_case_buf, "layouts %s case %d %s layout %d variant %s", op->op, ci,
                     dlk_dtype_name(dt), lay, k < 0 ? "AUTO" : vs[k].name);
            t_case = t_case_buf;
            if (k >= 0) CHECK_OK(ctx, dlk_force_variant(ctx, op->op, vs[k].id));
            hset got = {.n = 0}, again = {.n = 0};
            s = op->run(ctx, c, dt, lay, &in, &got);
            if (s == DLK_ERR_NOT_SUPPORTED && k >= 0) {
              skips++;
              hs_free(&got);
              CHECK_OK(ctx, dlk_force_variant(ctx, op->op, -1));
              continue;
            }
            CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
            if (s == DLK_OK) {
              sweep_compare(t_case_buf, &got, &want, 0);
              runs++;
              if (li == 0 && k >= 0) { /* deterministic: the same bits on a rerun */
                CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
                s = op->run(ctx, c, dt, lay, &in, &again);
                CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
                if (s == DLK_OK) CHECK(sweep_identical(&got, &again), "deterministic rerun differs");
                else CHECK(s == DLK_ERR_NOT_SUPPORTED, "deterministic rerun: %s", dlk_status_string(s));
              }
            }
            hs_free(&got);
            hs_free(&again);
            if (k >= 0) CHECK_OK(ctx, dlk_force_variant(ctx, op->op, -1));
          }
        }
        hs_free(&in);
        hs_free(&want);
      }
    }
  }
  printf("layouts%s: %d runs compared with the reference, %d not supported\n", quick ? " (quick)" : "", runs, skips);
}

/* ====================================================================================== */
/* 4. Bad input: a status, a message naming the op, outputs and running stats untouched     */
/* ====================================================================================== */

/* A CPU f32 (or other dtype) tensor over p with up to 4 dims, contiguous. */
static dlk_tensor bt(void *p, dlk_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  int64_t sh[4] = {d0, d1, d2, d3};
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = p;
  t.dtype = dt;
  t.device = (dlk_device){DLK_CPU, 0};
  t.ndim = ndim;
  for (int k = 0; k < ndim; k++) t.shape[k] = sh[k];
  dense_strides(ndim, t.shape, t.strides);
  return t;
}

/* Inputs live in in[], outputs and running statistics in out[] (0xFF before each case). */
typedef struct {
  dlk_context *ctx;
  float in[2048], in_copy[2048];
  float out[2048];
} benv;

/* Runs bad case k; returns the status, or -1 past the last case. */
static int bad_call(benv *e, int k, dlk_status *want, const char **op, char *what, size_t wn) {
  dlk_context *ctx = e->ctx;
  float *I = e->in, *O = e->out;
  /* pool: x [2, 3, 6, 5], y [2, 3, 3, 2] for 2x2 stride 2 */
  dlk_tensor X = bt(I, DLK_F32, 4, 2, 3, 6, 5), Y = bt(O, DLK_F32, 4, 2, 3, 3, 2);
  dlk_tensor DY = bt(I + 200, DLK_F32, 4, 2, 3, 3, 2), DX = bt(O + 200, DLK_F32, 4, 2, 3, 6, 5);
  dlk_pool2d_params pp;
  memset(&pp, 0, sizeof pp);
  pp.kind = DLK_POOL_MAX, pp.kernel[0] = pp.kernel[1] = 2;
  /* adaptive: x [2, 3, 6, 5] -> y [2, 3, 4, 4] */
  dlk_tensor AY = bt(O + 400, DLK_F32, 4, 2, 3, 4, 4), ADY = bt(I + 400, DLK_F32, 4, 2, 3, 4, 4);
  /* batch norm: x [4, 3, 2, 5], stats [3] */
  dlk_tensor BX = bt(I + 600, DLK_F32, 4, 4, 3, 2, 5), BY = bt(O + 600, DLK_F32, 4, 4, 3, 2, 5);
  dlk_tensor G = bt(I + 720, DLK_F32, 1, 3, 0, 0, 0), B = bt(I + 724, DLK_F32, 1, 3, 0, 0, 0);
  dlk_tensor RM = bt(O + 720, DLK_F32, 1, 3, 0, 0, 0), RV = bt(O + 724, DLK_F32, 1, 3, 0, 0, 0);
  dlk_tensor SM = bt(O + 728, DLK_F32, 1, 3, 0, 0, 0), SR = bt(O + 732, DLK_F32, 1, 3, 0, 0, 0);
  dlk_tensor ISM = bt(I + 728, DLK_F32, 1, 3, 0, 0, 0), ISR = bt(I + 732, DLK_F32, 1, 3, 0, 0, 0);
  dlk_tensor BDY = bt(I + 740, DLK_F32, 4, 4, 3, 2, 5), BDX = bt(O + 740, DLK_F32, 4, 4, 3, 2, 5);
  dlk_tensor DG = bt(O + 860, DLK_F32, 1, 3, 0, 0, 0), DB = bt(O + 864, DLK_F32, 1, 3, 0, 0, 0);
  dlk_batchnorm_params bp = {1e-5, 0.1, 1};
  /* mse: x, target [3, 4], loss [] */
  dlk_tensor MX = bt(I + 900, DLK_F32, 2, 3, 4, 0, 0), MT = bt(I + 912, DLK_F32, 2, 3, 4, 0, 0);
  dlk_tensor ML = bt(O + 900, DLK_F32, 0, 0, 0, 0, 0), MDL = bt(I + 924, DLK_F32, 0, 0, 0, 0, 0);
  dlk_tensor MDX = bt(O + 910, DLK_F32, 2, 3, 4, 0, 0);
  dlk_mse_params mp = {DLK_REDUCE_MEAN};
  dlk_tensor t, t2;
#define WHAT(s) snprintf(what, wn, "%s", s)
#define BAD(st, o, call) \
  do {                   \
    *want = (st);        \
    *op = (o);           \
    return (int)(call);  \
  } while (0)
  switch (k) {
    case 0: WHAT("pool2d_forward: params NULL");
      BAD(DLK_ERR_NULL_POINTER, "pool2d_forward", dlk_pool2d_forward(ctx, NULL, &X, &Y));
    case 1: WHAT("pool2d_forward: x with 3 dims"); t = bt(I, DLK_F32, 3, 3, 6, 5, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &t, &Y));
    case 2: WHAT("pool2d_forward: kernel 0"); pp.kernel[1] = 0;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 3: WHAT("pool2d_forward: negative padding"); pp.padding[0] = -1;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 4: WHAT("pool2d_forward: padding more than half the kernel"); pp.padding[0] = 2;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 5: WHAT("pool2d_forward: avg with dilation 2"); pp.kind = DLK_POOL_AVG, pp.dilation[0] = 2;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 6: WHAT("pool2d_forward: kind 7"); pp.kind = (dlk_pool_kind)7;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 7: WHAT("pool2d_forward: kernel larger than the padded input (output size 0)");
      pp.kernel[0] = pp.kernel[1] = 9, t = bt(O, DLK_F32, 4, 2, 3, 1, 1);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 8: WHAT("pool2d_forward: y has the wrong pooled height"); t = bt(O, DLK_F32, 4, 2, 3, 4, 2);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 9: WHAT("pool2d_forward: channel mismatch"); t = bt(O, DLK_F32, 4, 2, 4, 3, 2);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 10: WHAT("pool2d_forward: y is f16"); t = Y, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 11: WHAT("pool2d_forward: y overlaps x"); t = bt(I + 10, DLK_F32, 4, 2, 3, 3, 2);
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 12: WHAT("pool2d_forward: y with overlapping elements"); t = Y, t.strides[3] = 0;
      BAD(DLK_ERR_LAYOUT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &t));
    case 13: WHAT("pool2d_forward: x is i32"); t = X, t.dtype = DLK_I32;
      BAD(DLK_ERR_DTYPE_MISMATCH, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &t, &Y));
    case 14: WHAT("pool2d_forward: stride -1"); pp.stride[1] = -1;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 15: WHAT("pool2d_backward: dx shape wrong"); t = bt(O + 200, DLK_F32, 4, 2, 3, 6, 4);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_backward", dlk_pool2d_backward(ctx, &pp, &X, NULL, &DY, &t));
    case 16: WHAT("pool2d_backward: dy shape wrong"); t = bt(I + 200, DLK_F32, 4, 2, 3, 2, 2);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_backward", dlk_pool2d_backward(ctx, &pp, &X, NULL, &t, &DX));
    case 17: WHAT("pool2d_backward: y shape differs from dy"); t = bt(I + 300, DLK_F32, 4, 2, 3, 3, 3);
      BAD(DLK_ERR_SHAPE_MISMATCH, "pool2d_backward", dlk_pool2d_backward(ctx, &pp, &X, &t, &DY, &DX));
    case 18: WHAT("pool2d_backward: dx is dy"); t = bt(I + 200, DLK_F32, 4, 2, 3, 6, 5);
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_backward", dlk_pool2d_backward(ctx, &pp, &X, NULL, &DY, &t));
    case 19: WHAT("pool2d_backward: params NULL");
      BAD(DLK_ERR_NULL_POINTER, "pool2d_backward", dlk_pool2d_backward(ctx, NULL, &X, NULL, &DY, &DX));
    case 20: WHAT("adaptive_avg_pool2d_forward: y batch differs"); t = bt(O + 400, DLK_F32, 4, 1, 3, 4, 4);
      BAD(DLK_ERR_SHAPE_MISMATCH, "adaptive_avg_pool2d_forward", dlk_adaptive_avg_pool2d_forward(ctx, &X, &t));
    case 21: WHAT("adaptive_avg_pool2d_forward: y height 0"); t = bt(O + 400, DLK_F32, 4, 2, 3, 0, 4);
      BAD(DLK_ERR_SHAPE_MISMATCH, "adaptive_avg_pool2d_forward", dlk_adaptive_avg_pool2d_forward(ctx, &X, &t));
    case 22: WHAT("adaptive_avg_pool2d_forward: x 3 dims"); t = bt(I, DLK_F32, 3, 3, 6, 5, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "adaptive_avg_pool2d_forward", dlk_adaptive_avg_pool2d_forward(ctx, &t, &AY));
    case 23: WHAT("adaptive_avg_pool2d_backward: dx NULL");
      BAD(DLK_ERR_NULL_POINTER, "adaptive_avg_pool2d_backward", dlk_adaptive_avg_pool2d_backward(ctx, &ADY, NULL));
    case 24: WHAT("adaptive_avg_pool2d_backward: channel mismatch"); t = bt(O, DLK_F32, 4, 2, 2, 6, 5);
      BAD(DLK_ERR_SHAPE_MISMATCH, "adaptive_avg_pool2d_backward", dlk_adaptive_avg_pool2d_backward(ctx, &ADY, &t));
    case 25: WHAT("batchnorm_forward: gamma has 4 elements"); t = bt(I + 720, DLK_F32, 1, 4, 0, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &t, &B, &RM, &RV, &BY, &SM, &SR));
    case 26: WHAT("batchnorm_forward: running_var NULL, running_mean given");
      BAD(DLK_ERR_NULL_POINTER, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, NULL, &BY, &SM, &SR));
    case 27: WHAT("batchnorm_forward: inference without running stats"); bp.training = 0;
      BAD(DLK_ERR_NULL_POINTER, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, NULL, NULL, &BY, NULL, NULL));
    case 28: WHAT("batchnorm_forward: training without save_rstd");
      BAD(DLK_ERR_NULL_POINTER, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &RV, &BY, &SM, NULL));
    case 29: WHAT("batchnorm_forward: one value per channel in training"); t = bt(I + 600, DLK_F32, 2, 1, 3, 0, 0);
      t2 = bt(O + 600, DLK_F32, 2, 1, 3, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &t, &G, &B, &RM, &RV, &t2, &SM, &SR));
    case 30: WHAT("batchnorm_forward: running_mean is f16"); t = RM, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &t, &RV, &BY, &SM, &SR));
    case 31: WHAT("batchnorm_forward: momentum 1.5"); bp.momentum = 1.5;
      BAD(DLK_ERR_INVALID_ARGUMENT, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &RV, &BY, &SM, &SR));
    case 32: WHAT("batchnorm_forward: eps NaN"); bp.eps = NAN;
      BAD(DLK_ERR_NOT_FINITE, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &RV, &BY, &SM, &SR));
    case 33: WHAT("batchnorm_forward: save_mean overlaps running_var"); t = bt(O + 725, DLK_F32, 1, 3, 0, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &RV, &BY, &t, &SR));
    case 34: WHAT("batchnorm_forward: x with 5 dims"); t = bt(I + 600, DLK_F32, 4, 4, 3, 2, 5), t.ndim = 5;
      t.shape[4] = 1, t.strides[4] = 1;
      BAD(DLK_ERR_SHAPE_MISMATCH, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &t, &G, &B, &RM, &RV, &BY, &SM, &SR));
    case 35: WHAT("batchnorm_forward: y shape differs"); t = bt(O + 600, DLK_F32, 4, 4, 3, 5, 2);
      BAD(DLK_ERR_SHAPE_MISMATCH, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &RV, &t, &SM, &SR));
    case 36: WHAT("batchnorm_forward: f16 x with f16 gamma"); t = bt(I + 600, DLK_F16, 4, 4, 3, 2, 5);
      t2 = bt(O + 600, DLK_F16, 4, 4, 3, 2, 5);
      {
        dlk_tensor g16 = G;
        g16.dtype = DLK_F16;
        BAD(DLK_ERR_DTYPE_MISMATCH, "batchnorm_forward",
            dlk_batchnorm_forward(ctx, &bp, &t, &g16, NULL, &RM, &RV, &t2, &SM, &SR));
      }
    case 37: WHAT("batchnorm_backward: save_mean NULL");
      BAD(DLK_ERR_NULL_POINTER, "batchnorm_backward",
          dlk_batchnorm_backward(ctx, &bp, &BX, &G, NULL, &ISR, &BDY, &BDX, &DG, &DB));
    case 38: WHAT("batchnorm_backward: dgamma is 2-D"); t = bt(O + 860, DLK_F32, 2, 1, 3, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "batchnorm_backward",
          dlk_batchnorm_backward(ctx, &bp, &BX, &G, &ISM, &ISR, &BDY, &BDX, &t, &DB));
    case 39: WHAT("batchnorm_backward: dx overlaps dbeta"); t = bt(O + 860, DLK_F32, 4, 4, 3, 2, 5);
      BAD(DLK_ERR_INVALID_ARGUMENT, "batchnorm_backward",
          dlk_batchnorm_backward(ctx, &bp, &BX, &G, &ISM, &ISR, &BDY, &t, NULL, &DB));
    case 40: WHAT("batchnorm_backward: dy channels differ"); t = bt(I + 740, DLK_F32, 4, 4, 2, 3, 5);
      BAD(DLK_ERR_SHAPE_MISMATCH, "batchnorm_backward",
          dlk_batchnorm_backward(ctx, &bp, &BX, &G, &ISM, &ISR, &t, &BDX, &DG, &DB));
    case 41: WHAT("mse_loss_forward: target shape differs"); t = bt(I + 912, DLK_F32, 2, 4, 3, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &MX, &t, &ML));
    case 42: WHAT("mse_loss_forward: loss [2] for MEAN"); t = bt(O + 900, DLK_F32, 1, 2, 0, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &MX, &MT, &t));
    case 43: WHAT("mse_loss_forward: loss [] for NONE"); mp.reduction = DLK_REDUCE_NONE;
      BAD(DLK_ERR_SHAPE_MISMATCH, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &MX, &MT, &ML));
    case 44: WHAT("mse_loss_forward: reduction 5"); mp.reduction = (dlk_reduction)5;
      BAD(DLK_ERR_INVALID_ARGUMENT, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &MX, &MT, &ML));
    case 45: WHAT("mse_loss_forward: f16 x with f16 loss"); t = MX, t.dtype = DLK_F16, t2 = MT, t2.dtype = DLK_F16;
      {
        dlk_tensor l16 = ML;
        l16.dtype = DLK_F16;
        BAD(DLK_ERR_DTYPE_MISMATCH, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &t, &t2, &l16));
      }
    case 46: WHAT("mse_loss_forward: target is f64"); t = MT, t.dtype = DLK_F64;
      BAD(DLK_ERR_DTYPE_MISMATCH, "mse_loss_forward", dlk_mse_loss_forward(ctx, &mp, &MX, &t, &ML));
    case 47: WHAT("mse_loss_backward: dx overlaps dloss"); t = bt(I + 920, DLK_F32, 2, 3, 4, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "mse_loss_backward", dlk_mse_loss_backward(ctx, &mp, &MX, &MT, &MDL, &t));
    case 48: WHAT("mse_loss_backward: dloss NULL");
      BAD(DLK_ERR_NULL_POINTER, "mse_loss_backward", dlk_mse_loss_backward(ctx, &mp, &MX, &MT, NULL, &MDX));
    case 49: WHAT("NULL context"); BAD(DLK_ERR_NULL_POINTER, NULL, dlk_pool2d_forward(NULL, &pp, &X, &Y));
    case 50: WHAT("pool2d_forward: x data NULL"); t = X, t.data = NULL;
      BAD(DLK_ERR_NULL_POINTER, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &t, &Y));
    case 51: WHAT("pool2d_forward: kernel 2^40"); pp.kernel[0] = (int64_t)1 << 40;
      BAD(DLK_ERR_INVALID_ARGUMENT, "pool2d_forward", dlk_pool2d_forward(ctx, &pp, &X, &Y));
    case 52: WHAT("batchnorm_forward: running stats overlap each other"); t = bt(O + 721, DLK_F32, 1, 3, 0, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "batchnorm_forward",
          dlk_batchnorm_forward(ctx, &bp, &BX, &G, &B, &RM, &t, &BY, &SM, &SR));
    default: return -1;
  }
#undef WHAT
#undef BAD
}

static void test_bad_input(dlk_context *ctx) {
  benv *e = calloc(1, sizeof *e);
  e->ctx = ctx;
  for (int i = 0; i < 2048; i++) e->in[i] = (float)t_uniform(0.1, 1);
  int n = 0;
  for (int k = 0;; k++) {
    memcpy(e->in_copy, e->in, sizeof e->in);
    memset(e->out, 0xFF, sizeof e->out);
    dlk_context_clear_error(ctx);
    dlk_status want = DLK_OK;
    const char *op = NULL;
    char what[128] = "";
    int s = bad_call(e, k, &want, &op, what, sizeof what);
    if (s < 0) break;
    snprintf(t_case_buf, sizeof t_case_buf, "bad input %d: %s", k, what);
    t_case = t_case_buf;
    n++;
    CHECK(s == (int)want, "got %s, expected %s (%s)", dlk_status_string((dlk_status)s), dlk_status_string(want),
          dlk_context_last_error(ctx));
    if (op) {
      const char *msg = dlk_context_last_error(ctx);
      CHECK(msg[0] != '\0' && strstr(msg, op) != NULL, "message \"%s\" does not name %s", msg, op);
    }
    int out_dirty = 0;
    for (int i = 0; i < 2048; i++) {
      uint32_t b;
      memcpy(&b, &e->out[i], 4);
      out_dirty += b != 0xFFFFFFFFu;
    }
    CHECK(out_dirty == 0, "%d output floats (or running statistics) written", out_dirty);
    CHECK(memcmp(e->in, e->in_copy, sizeof e->in) == 0, "inputs changed");
  }
  t_case = "bad input";
  CHECK(n >= 50, "only %d bad-input cases", n);
  /* the context still works: a max pool of a known input */
  float x[16], y[4];
  for (int i = 0; i < 16; i++) x[i] = (float)((i * 7) % 16);
  dlk_tensor tx = bt(x, DLK_F32, 4, 1, 1, 4, 4), ty = bt(y, DLK_F32, 4, 1, 1, 2, 2);
  dlk_pool2d_params pp;
  memset(&pp, 0, sizeof pp);
  pp.kernel[0] = pp.kernel[1] = 2;
  CHECK_OK(ctx, dlk_pool2d_forward(ctx, &pp, &tx, &ty));
  CHECK(y[0] == 12 && y[1] == 14 && y[2] == 15 && y[3] == 13, "max pool after the failures: %g %g %g %g", y[0], y[1],
        y[2], y[3]);
  printf("bad input: %d cases\n", n);
  free(e);
}

/* ====================================================================================== */
/* 5. Semantics the issue pins                                                             */
/* ====================================================================================== */

static void test_semantics(dlk_context *ctx) {
  t_case = "semantics: max pool routing";
  dlk_pool2d_params pp;
  memset(&pp, 0, sizeof pp);
  pp.kernel[0] = pp.kernel[1] = 2;
  float x[4], y[1], dy[1] = {1}, dx[4];
  dlk_tensor tx = bt(x, DLK_F32, 4, 1, 1, 2, 2), ty = bt(y, DLK_F32, 4, 1, 1, 1, 1);
  dlk_tensor tdy = bt(dy, DLK_F32, 4, 1, 1, 1, 1), tdx = bt(dx, DLK_F32, 4, 1, 1, 2, 2);
  /* ties: the first maximum in row-major window order gets the gradient */
  x[0] = 1, x[1] = 3, x[2] = 3, x[3] = 2;
  CHECK_OK(ctx, dlk_pool2d_forward(ctx, &pp, &tx, &ty));
  CHECK_OK(ctx, dlk_pool2d_backward(ctx, &pp, &tx, &ty, &tdy, &tdx));
  CHECK(y[0] == 3 && dx[0] == 0 && dx[1] == 1 && dx[2] == 0 && dx[3] == 0, "ties: y %g dx %g %g %g %g", y[0], dx[0],
        dx[1], dx[2], dx[3]);
  /* NaN wins, and among NaNs the last (PyTorch's CPU kernel) */
  x[0] = NAN, x[1] = 3, x[2] = NAN, x[3] = 2;
  CHECK_OK(ctx, dlk_pool2d_forward(ctx, &pp, &tx, &ty));
  CHECK_OK(ctx, dlk_pool2d_backward(ctx, &pp, &tx, NULL, &tdy, &tdx));
  CHECK(isnan(y[0]) && dx[0] == 0 && dx[1] == 0 && dx[2] == 1 && dx[3] == 0, "NaN: y %g dx %g %g %g %g", y[0], dx[0],
        dx[1], dx[2], dx[3]);
  /* a window of -inf routes to its first element inside the input (padding never wins) */
  float ninf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, y4[4], dy4[4] = {1, 2, 3, 4}, dx4[4];
  dlk_tensor tn = bt(ninf, DLK_F32, 4, 1, 1, 2, 2), ty4 = bt(y4, DLK_F32, 4, 1, 1, 2, 2);
  dlk_tensor tdy4 = bt(dy4, DLK_F32, 4, 1, 1, 2, 2), tdx4 = bt(dx4, DLK_F32, 4, 1, 1, 2, 2);
  pp.stride[0] = pp.stride[1] = 1, pp.padding[0] = pp.padding[1] = 1;
  pp.ceil_mode = 0;
  int64_t xs3[4] = {1, 1, 2, 2}, ys3[4] = {1, 1, 3, 3};
  float y9[9], dy9[9], dx9[4];
  for (int i = 0; i < 9; i++) dy9[i] = 1;
  dlk_tensor ty9, tdy9, tdx9;
  dlk_tensor_init(NULL, &ty9, y9, DLK_F32, (dlk_device){DLK_CPU, 0}, 4, ys3);
  dlk_tensor_init(NULL, &tdy9, dy9, DLK_F32, (dlk_device){DLK_CPU, 0}, 4, ys3);
  dlk_tensor_init(NULL, &tdx9, dx9, DLK_F32, (dlk_device){DLK_CPU, 0}, 4, xs3);
  CHECK_OK(ctx, dlk_pool2d_forward(ctx, &pp, &tn, &ty9));
  CHECK_OK(ctx, dlk_pool2d_backward(ctx, &pp, &tn, NULL, &tdy9, &tdx9));
  /* windows (3x3 outputs over the 1-padded 2x2): each routes to its first in-bounds
     element: counts 4, 2, 2, 1 */
  CHECK(y9[0] == -INFINITY && dx9[0] == 4 && dx9[1] == 2 && dx9[2] == 2 && dx9[3] == 1, "-inf: dx %g %g %g %g",
        dx9[0], dx9[1], dx9[2], dx9[3]);
  (void)ty4, (void)tdy4, (void)tdx4;
  /* a dilated window that holds no input element: -inf, and its gradient goes nowhere */
  pp.dilation[0] = pp.dilation[1] = 3;
  float xe[4] = {1, 2, 3, 4}, ye[1], dye[1] = {5}, dxe[4];
  dlk_tensor txe = bt(xe, DLK_F32, 4, 1, 1, 2, 2), tye = bt(ye, DLK_F32, 4, 1, 1, 1, 1);
  dlk_tensor tdye = bt(dye, DLK_F32, 4, 1, 1, 1, 1), tdxe = bt(dxe, DLK_F32, 4, 1, 1, 2, 2);
  CHECK_OK(ctx, dlk_pool2d_forward(ctx, &pp, &txe, &tye));
  CHECK_OK(ctx, dlk_pool2d_backward(ctx, &pp, &txe, NULL, &tdye, &tdxe));
  CHECK(ye[0] == -INFINITY && dxe[0] == 0 && dxe[1] == 0 && dxe[2] == 0 && dxe[3] == 0,
        "empty dilated window: y %g dx %g %g %g %g", ye[0], dxe[0], dxe[1], dxe[2], dxe[3]);

  t_case = "semantics: batch norm";
  /* NULL params: eps 1e-5, momentum 0.1, training 1; two steps of the running statistics
     as torch: running = (1 - m) running + m batch, unbiased variance */
  float bx[12], by[12], by2[12], rm[2] = {0.5f, -1}, rv[2] = {2, 3}, sm[2], sr[2];
  for (int i = 0; i < 12; i++) bx[i] = (float)((i * 5) % 7) - 2.5f;
  dlk_tensor tbx = bt(bx, DLK_F32, 3, 3, 2, 2, 0), tby = bt(by, DLK_F32, 3, 3, 2, 2, 0);
  dlk_tensor trm = bt(rm, DLK_F32, 1, 2, 0, 0, 0), trv = bt(rv, DLK_F32, 1, 2, 0, 0, 0);
  dlk_tensor tsm = bt(sm, DLK_F32, 1, 2, 0, 0, 0), tsr = bt(sr, DLK_F32, 1, 2, 0, 0, 0);
  double erm[2] = {0.5, -1}, erv[2] = {2, 3};
  for (int step = 0; step < 2; step++) {
    CHECK_OK(ctx, dlk_batchnorm_forward(ctx, NULL, &tbx, NULL, NULL, &trm, &trv, &tby, &tsm, &tsr));
    for (int c = 0; c < 2; c++) {
      double mean = 0, var = 0;
      for (int n = 0; n < 3; n++)
        for (int l = 0; l < 2; l++) mean += bx[n * 4 + c * 2 + l];
      mean /= 6;
      for (int n = 0; n < 3; n++)
        for (int l = 0; l < 2; l++) var += (bx[n * 4 + c * 2 + l] - mean) * (bx[n * 4 + c * 2 + l] - mean);
      erm[c] = 0.9 * erm[c] + 0.1 * mean;
      erv[c] = 0.9 * erv[c] + 0.1 * var / 5;
      CHECK(fabs(rm[c] - erm[c]) < 1e-6 && fabs(rv[c] - erv[c]) < 1e-6, "step %d channel %d: running %g %g, want %g %g",
            step, c, rm[c], rv[c], erm[c], erv[c]);
      CHECK(fabs(sm[c] - mean) < 1e-6 && fabs(sr[c] - 1 / sqrt(var / 6 + 1e-5)) < 1e-5, "saved stats channel %d", c);
    }
  }
  dlk_batchnorm_params explicit_p = {1e-5, 0.1, 1};
  CHECK_OK(ctx, dlk_batchnorm_forward(ctx, &explicit_p, &tbx, NULL, NULL, NULL, NULL, &tby, &tsm, &tsr));
  CHECK_OK(ctx, dlk_batchnorm_forward(ctx, NULL, &tbx, NULL, NULL, NULL, NULL, &tby, &tsm, &tsr));
  memcpy(by2, by, sizeof by);
  CHECK_OK(ctx, dlk_batchnorm_forward(ctx, &explicit_p, &tbx, NULL, NULL, NULL, NULL, &tby, &tsm, &tsr));
  CHECK(memcmp(by, by2, sizeof by) == 0, "NULL params are eps 1e-5, momentum 0.1, training 1");
  /* inference does not write save_mean / save_rstd even when given */
  dlk_batchnorm_params inf = {1e-5, 0.1, 0};
  memset(sm, 0xFF, sizeof sm), memset(sr, 0xFF, sizeof sr);
  CHECK_OK(ctx, dlk_batchnorm_forward(ctx, &inf, &tbx, NULL, NULL, &trm, &trv, &tby, &tsm, &tsr));
  CHECK(isnan(sm[0]) && isnan(sr[1]), "inference wrote the saved statistics");
  /* an empty batch in training: nothing is written, the running statistics stay */
  float keep_rm[2], keep_rv[2];
  memcpy(keep_rm, rm, sizeof rm), memcpy(keep_rv, rv, sizeof rv);
  dlk_tensor empty = bt(bx, DLK_F32, 4, 0, 2, 3, 3), empty_y = bt(by, DLK_F32, 4, 0, 2, 3, 3);
  CHECK_OK(ctx, dlk_batchnorm_forward(ctx, NULL, &empty, NULL, NULL, &trm, &trv, &empty_y, &tsm, &tsr));
  CHECK(memcmp(rm, keep_rm, sizeof rm) == 0 && memcmp(rv, keep_rv, sizeof rv) == 0, "empty batch moved the stats");

  t_case = "semantics: mse";
  float mx[6] = {1, 2, 3, 4, 5, 6}, mt[6] = {0, 2, 5, 4, 5, 3}, ml[1], ml2[1];
  dlk_tensor tmx = bt(mx, DLK_F32, 2, 2, 3, 0, 0), tmt = bt(mt, DLK_F32, 2, 2, 3, 0, 0);
  dlk_tensor tml = bt(ml, DLK_F32, 0, 0, 0, 0, 0), tml1 = bt(ml2, DLK_F32, 1, 1, 0, 0, 0);
  CHECK_OK(ctx, dlk_mse_loss_forward(ctx, NULL, &tmx, &tmt, &tml));
  CHECK(fabs(ml[0] - 14.0 / 6) < 1e-6, "NULL params: MEAN (%g)", ml[0]);
  dlk_mse_params sum = {DLK_REDUCE_SUM};
  CHECK_OK(ctx, dlk_mse_loss_forward(ctx, &sum, &tmx, &tmt, &tml1));
  CHECK(ml2[0] == 14, "SUM into a [1] loss (%g)", ml2[0]);
  float e0[1];
  dlk_tensor te = bt(mx, DLK_F32, 1, 0, 0, 0, 0), tel = bt(e0, DLK_F32, 0, 0, 0, 0, 0);
  CHECK_OK(ctx, dlk_mse_loss_forward(ctx, NULL, &te, &te, &tel));
  CHECK(isnan(e0[0]), "MEAN of nothing is NaN, as torch (%g)", e0[0]);
}

/* ====================================================================================== */
/* 5b. Hostile shapes and parameters (fuzz_api): calls whose work is not bounded by any     */
/*     tensor's memory (an empty x's huge dims, a huge kernel's padding) finish at once     */
/* ====================================================================================== */

static void test_hostile(dlk_context *ctx) {
  t_watchdog_arm("test_cnnops: a call on hostile shapes");
  const int64_t T40 = (int64_t)1 << 40, T30 = (int64_t)1 << 30, T31 = (int64_t)1 << 31;
  static float in[16], out[1024];
  for (int i = 0; i < 16; i++) in[i] = (float)i - 3.0f;
  double t0 = t_now_s();

  /* batch norm backward over an empty batch x [2^40, 3, 0, 1]: dgamma = dbeta = 0 (sums
     over nothing); the reference looped over the 2^40 batch rows of each channel */
  t_case = "hostile: batchnorm_backward, N = 2^40 and H = 0";
  for (int training = 0; training < 2; training++) {
    dlk_batchnorm_params p = {1e-5, 0.1, training};
    dlk_tensor x = bt(in, DLK_F32, 4, T40, 3, 0, 1), dy = x, dx = x;
    dlk_tensor sm = bt(in, DLK_F32, 1, 3, 0, 0, 0), sr = bt(in + 3, DLK_F32, 1, 3, 0, 0, 0);
    dlk_tensor dg = bt(out, DLK_F32, 1, 3, 0, 0, 0), db = bt(out + 3, DLK_F32, 1, 3, 0, 0, 0);
    for (int i = 0; i < 6; i++) out[i] = NAN;
    CHECK_OK(ctx, dlk_batchnorm_backward(ctx, &p, &x, NULL, &sm, &sr, &dy, &dx, &dg, &db));
    for (int i = 0; i < 6; i++) CHECK(out[i] == 0.0f, "training %d: dgamma/dbeta[%d] = %g", training, i, out[i]);
  }

  /* max pooling with a kernel of 2^31 and padding 2^30: the first in-bounds row of each
     window was found by stepping from -2^30 one dilation at a time */
  t_case = "hostile: pool2d, kernel 2^31, padding 2^30";
  {
    dlk_pool2d_params p;
    memset(&p, 0, sizeof p);
    p.kind = DLK_POOL_MAX;
    p.kernel[0] = p.kernel[1] = T31;
    p.padding[0] = p.padding[1] = T30;
    p.stride[0] = p.stride[1] = 1;
    /* x [1, 1, 1, 1]: OH = (1 + 2^31 - (2^31 - 1) - 1) / 1 + 1 = 2; every window holds x */
    dlk_tensor x = bt(in, DLK_F32, 4, 1, 1, 1, 1), y = bt(out, DLK_F32, 4, 1, 1, 2, 2);
    CHECK_OK(ctx, dlk_pool2d_forward(ctx, &p, &x, &y));
    for (int i = 0; i < 4; i++) CHECK(out[i] == in[0], "y[%d] = %g, expected x = %g", i, out[i], in[0]);
    dlk_tensor dy = bt(in + 4, DLK_F32, 4, 1, 1, 2, 2), dx = bt(out + 8, DLK_F32, 4, 1, 1, 1, 1);
    CHECK_OK(ctx, dlk_pool2d_backward(ctx, &p, &x, NULL, &dy, &dx));
    CHECK(out[8] == in[4] + in[5] + in[6] + in[7], "dx = %g, expected the sum of dy", out[8]);
    /* x [1, 1, 0, 2^40] (no element), kernel {2, 2^31}, padding {1, 2^30}, stride {1, 2^31}:
       y [1, 1, 1, 513] of windows holding nothing: -inf */
    p.kernel[0] = 2, p.padding[0] = 1, p.stride[1] = T31;
    x = bt(in, DLK_F32, 4, 1, 1, 0, T40), y = bt(out, DLK_F32, 4, 1, 1, 1, 513);
    CHECK_OK(ctx, dlk_pool2d_forward(ctx, &p, &x, &y));
    CHECK(isinf(out[0]) && out[0] < 0 && isinf(out[512]) && out[512] < 0, "y %g %g, expected -inf", out[0],
          out[512]);
  }
  const double took = t_now_s() - t0;
  t_case = "hostile: time";
  CHECK(took < 1.0, "the calls took %.3f s", took);
  t_watchdog_disarm();
}

/* ====================================================================================== */
/* 6. Explain, and bad input that needs a CUDA context                                     */
/* ====================================================================================== */

/* Explain on any context: every variant of pool2d_fwd listed with a verdict, nothing
   written, and AUTO named. */
static void test_explain(dlk_context *ctx) {
  t_case = "explain";
  int64_t xs[4] = {1, 2, 5, 5}, ys[4] = {1, 2, 2, 2};
  rig r = {.ctx = ctx};
  double xv[50];
  for (int i = 0; i < 50; i++) xv[i] = i;
  dlk_tensor *x = rig_in(&r, DLK_F32, 4, xs, LC, xv), *y = rig_out(&r, DLK_F32, 4, ys, LH);
  dlk_pool2d_params pp;
  memset(&pp, 0, sizeof pp);
  pp.kernel[0] = pp.kernel[1] = 2;
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  dlk_status s = dlk_pool2d_forward(ctx, &pp, x, y);
  const char *text = NULL;
  static char report[8192];
  CHECK_OK(ctx, dlk_explain_report(ctx, &text));
  snprintf(report, sizeof report, "%s", text ? text : ""); /* explain_mode(0) clears the text */
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  CHECK(s == DLK_OK, "explain call: %s", dlk_context_last_error(ctx));
  rig_end(&r, DLK_ERR_INTERNAL, NULL); /* as a failed call: the output must be untouched */
  dlk_variant_info vs[32];
  int nv = 0;
  CHECK_OK(ctx, dlk_op_variants(ctx, "pool2d_fwd", vs, 32, &nv));
  CHECK(nv >= 1, "pool2d_fwd has variants");
  for (int i = 0; i < nv && i < 32; i++) CHECK(strstr(report, vs[i].name) != NULL, "%s listed:\n%s", vs[i].name, report);
  CHECK(strstr(report, "pool2d_fwd") && strstr(report, "AUTO would"), "report:\n%s", report);
}

/* A CUDA context: host tensors refused, the CPU reference forced there refused with its
   reason, the contiguous MSE variant forced on a transposed x refused with its reason,
   and each refusal leaves the output untouched. */
static void test_gpu_bad(dlk_context *g) {
  t_case = "gpu bad input";
  float hx[16], hy[4];
  for (int i = 0; i < 16; i++) hx[i] = (float)i;
  memset(hy, 0xFF, sizeof hy);
  dlk_tensor x = bt(hx, DLK_F32, 4, 1, 1, 4, 4), y = bt(hy, DLK_F32, 4, 1, 1, 2, 2);
  dlk_pool2d_params pp;
  memset(&pp, 0, sizeof pp);
  pp.kernel[0] = pp.kernel[1] = 2;
  CHECK_STATUS(g, DLK_ERR_DEVICE_MISMATCH, dlk_pool2d_forward(g, &pp, &x, &y));
  CHECK(strstr(dlk_context_last_error(g), "pool2d_forward") != NULL, "message: %s", dlk_context_last_error(g));
  uint32_t b;
  memcpy(&b, &hy[0], 4);
  CHECK(b == 0xFFFFFFFFu, "host output written by a refused call");

  static const scase pc = {{false, false}, {2, 3, 6, 7}, 0, 0, 0, PP(0, 3, 3, 2, 2, 1, 1, 0, 0, 1, 0)};
  hset in = {.n = 0}, out = {.n = 0};
  gen_pool_fwd(&pc, DLK_F32, &in);
  CHECK_OK(g, dlk_force_variant(g, "pool2d_fwd", 0));
  dlk_status s = run_pool_fwd(g, &pc, DLK_F32, LC, &in, &out); /* rig_end: outputs untouched */
  CHECK(s == DLK_ERR_NOT_SUPPORTED, "cpu_ref forced on a CUDA context: %s", dlk_status_string(s));
  CHECK(strstr(dlk_context_last_error(g), "pool2d_fwd") != NULL, "message: %s", dlk_context_last_error(g));
  CHECK_OK(g, dlk_force_variant(g, "pool2d_fwd", -1));
  hs_free(&in), hs_free(&out);

  static const scase mc = {{false, false}, {2, 7, 9, 0, 0}, 0, 0, 0, {0}};
  gen_mse_fwd(&mc, DLK_F32, &in);
  CHECK_OK(g, dlk_force_variant(g, "mse_loss_fwd", 2));
  s = run_mse_fwd(g, &mc, DLK_F32, LT, &in, &out);
  CHECK(s == DLK_ERR_NOT_SUPPORTED, "contig forced on a transposed x: %s", dlk_status_string(s));
  CHECK(strstr(dlk_context_last_error(g), "not contiguous") != NULL, "the reason: %s", dlk_context_last_error(g));
  CHECK_OK(g, dlk_force_variant(g, "mse_loss_fwd", -1));
  hs_free(&in), hs_free(&out);
}

int main(int argc, char **argv) {
  if (sweep_list_ops(argc, argv, cnn_rows, N_CNN_ROWS)) return 0;
  quick_mode = t_quick_mode();
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_cnnops");
    dlk_context *cpu = t_cpu_context();
    sweep_run(g, cpu, cnn_rows, N_CNN_ROWS, quick_mode);
    test_layouts(g, cpu, quick_mode, 1);
    test_gpu_bad(g);
    test_explain(g);
    dlk_context_destroy(cpu);
    dlk_context_destroy(g);
    return t_summary("test_cnnops --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  dlk_context *ref = t_cpu_context();
  test_golden(ctx);
  test_fd(ctx);
  sweep_run(ctx, NULL, cnn_rows, N_CNN_ROWS, 0);
  test_layouts(ctx, ref, quick_mode, 0);
  test_bad_input(ctx);
  test_semantics(ctx);
  test_hostile(ctx);
  test_explain(ctx);
  dlk_context_destroy(ref);
  dlk_context_destroy(ctx);
  return t_summary("test_cnnops");
}
