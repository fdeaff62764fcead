/*
 * nn family tests.
 *
 * CPU run (default):
 *   1. golden fixtures made by PyTorch (tests/golden/nn/NAME.txt, see make_nn_golden.py)
 *      against the CPU reference, at the tolerances of tests/check.h;
 *   2. finite-difference gradient checks in f64 of every CPU backward;
 *   3. the variant sweep (tests/sweep.h) over a CPU context: one row per op with a typed
 *      case table, every case x dtype x variant, variant 0 against an independent naive
 *      f64 computation written here, deterministic mode (bit-identical reruns), AUTO, and
 *      the autotune cache; then the GPU run's path (reference context) on a quick subset;
 *   4. a table of bad inputs: exact status, a message naming the op, every output byte
 *      and every input byte unchanged; the context still works afterwards;
 *   5. explain mode.
 * GPU run (--gpu; exit 77 when no GPU): the same sweep over a CUDA context, each variant
 *   against the CPU reference run on host copies of the same inputs, f32 GEMMs with TF32
 *   off and on; device-side bad input (ids and targets out of range, host tensors on a
 *   CUDA context).
 * DLK_TEST_QUICK=1 runs a small subset of the sweep (for compute-sanitizer).
 * --list-sweep-ops prints the ops the sweep rows cover (ctest sweep_coverage).
 */
#include <inttypes.h>
#include <unistd.h>

#include "golden.h"
#include "sweep.h"


#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];
static int quick_mode = 0;

/* ====================================================================================== */
/* Helpers: activations, host tensor offsets                                               */
/* ====================================================================================== */

static dlk_dtype stat_dt(dlk_dtype dt) { return dt == DLK_F64 ? DLK_F64 : DLK_F32; }

/* Independent copies of the activations (the test does not trust the library's). */
static double t_act(int act, double x) {
  switch (act) {
    case 1: return x > 0 || isnan(x) ? x : 0; /* torch.relu keeps NaN */
    case 2: return tanh(x);
    case 3: return 1 / (1 + exp(-x));
    case 4: return x * 0.5 * erfc(-x / sqrt(2.0)); /* x Phi(x) */
    default: return x;
  }
}
static double t_act_grad(int act, double x) {
  switch (act) {
    case 1: return x > 0;
    case 2: return 1 - tanh(x) * tanh(x);
    case 3: return exp(-x) / ((1 + exp(-x)) * (1 + exp(-x)));
    case 4: return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-x * x / 2) / sqrt(2 * M_PI);
    default: return 1;
  }
}

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

/* ====================================================================================== */
/* 1. Golden fixtures                                                                      */
/* ====================================================================================== */

/* A host tensor for a golden case: contiguous, or with its last two dims laid out
   transposed in memory when `transposed`. Buffers freed by g_host_free. */
typedef struct {
  dlk_tensor t[16];
  void *mem[16];
  int n;
} ghost;

static dlk_tensor *g_host(ghost *h, const gtensor *g, int transposed, int fill_ff) {
  dlk_tensor *t = &h->t[h->n];
  size_t es = dlk_dtype_size(g->dt);
  void *mem = malloc((size_t)(g->n > 0 ? g->n : 1) * es);
  h->mem[h->n++] = mem;
  memset(t, 0, sizeof *t);
  t->data = mem;
  t->dtype = g->dt;
  t->device = (dlk_device){DLK_CPU, 0};
  t->ndim = g->ndim;
  for (int k = 0; k < g->ndim; k++) t->shape[k] = g->shape[k];
  if (transposed && g->ndim >= 2) {
    int64_t st_shape[DLK_MAX_DIMS], st[DLK_MAX_DIMS];
    memcpy(st_shape, g->shape, sizeof st_shape);
    st_shape[g->ndim - 1] = g->shape[g->ndim - 2];
    st_shape[g->ndim - 2] = g->shape[g->ndim - 1];
    dense_strides(g->ndim, st_shape, st);
    for (int k = 0; k < g->ndim; k++) t->strides[k] = st[k];
    t->strides[g->ndim - 1] = st[g->ndim - 2];
    t->strides[g->ndim - 2] = st[g->ndim - 1];
  } else {
    dense_strides(g->ndim, g->shape, t->strides);
  }
  if (fill_ff) {
    memset(mem, 0xFF, (size_t)(g->n > 0 ? g->n : 1) * es);
  } else {
    for (int64_t i = 0; i < g->n; i++) dlk_store(mem, g->dt, t_offset(t, i), g->v[i]);
  }
  return t;
}

static void g_host_free(ghost *h) {
  for (int i = 0; i < h->n; i++) free(h->mem[i]);
  h->n = 0;
}

/* Input tensor `name` of the case (NULL when the case has none). */
static dlk_tensor *g_in(ghost *h, gcase *c, const char *name, int transposed) {
  gtensor *g = g_find(c, name, 0);
  return g ? g_host(h, g, transposed, 0) : NULL;
}
/* Output tensor shaped like the expected `name`, filled with 0xFF. */
static dlk_tensor *g_out(ghost *h, gcase *c, const char *name) {
  gtensor *g = g_find(c, name, 1);
  return g ? g_host(h, g, 0, 1) : NULL;
}

/* Compare a result tensor with the expected output `name`. */
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

static void golden_run(dlk_context *ctx, gcase *c, void *unused) {
  (void)unused;
  ghost h = {.n = 0};
  dlk_status s = DLK_ERR_INTERNAL;
  const char *op = c->op;
  if (strcmp(op, "gemm") == 0) {
    dlk_gemm_params p = {g_num(c, "alpha"), g_num(c, "beta")};
    dlk_tensor *a = g_in(&h, c, "a", (int)g_num(c, "ta")), *b = g_in(&h, c, "b", (int)g_num(c, "tb"));
    dlk_tensor *cc = g_in(&h, c, "c", 0);
    if (p.beta == 0) memset(cc->data, 0xFF, (size_t)t_numel(cc) * dlk_dtype_size(cc->dtype)); /* NaN: ignored */
    s = dlk_gemm(ctx, &p, a, b, cc);
    if (s == DLK_OK) g_expect(c, "c", cc);
  } else if (strcmp(op, "linear_fwd") == 0) {
    dlk_linear_params p = {(dlk_activation)g_num(c, "act")};
    dlk_tensor *y = g_out(&h, c, "y"), *z = g_out(&h, c, "z");
    s = dlk_linear_forward(ctx, &p, g_in(&h, c, "x", 0), g_in(&h, c, "w", 0), g_in(&h, c, "b", 0), y, z);
    if (s == DLK_OK) g_expect(c, "y", y), g_expect(c, "z", z);
  } else if (strcmp(op, "linear_bwd") == 0) {
    dlk_linear_params p = {(dlk_activation)g_num(c, "act")};
    dlk_tensor *dx = g_out(&h, c, "dx"), *dw = g_out(&h, c, "dw"), *db = g_out(&h, c, "db");
    s = dlk_linear_backward(ctx, &p, g_in(&h, c, "x", 0), g_in(&h, c, "w", 0), g_in(&h, c, "z", 0),
                            g_in(&h, c, "dy", 0), dx, dw, db);
    if (s == DLK_OK) g_expect(c, "dx", dx), g_expect(c, "dw", dw), g_expect(c, "db", db);
  } else if (strcmp(op, "bias_act_fwd") == 0) {
    dlk_tensor *y = g_out(&h, c, "y");
    dlk_bias_act_params bp = {(dlk_activation)g_num(c, "act")};
    s = dlk_bias_act_forward(ctx, &bp, g_in(&h, c, "x", 0), g_in(&h, c, "bias", 0), y);
    if (s == DLK_OK) g_expect(c, "y", y);
  } else if (strcmp(op, "bias_act_bwd") == 0) {
    dlk_tensor *dx = g_out(&h, c, "dx"), *dbias = g_out(&h, c, "dbias");
    dlk_bias_act_params bp = {(dlk_activation)g_num(c, "act")};
    s = dlk_bias_act_backward(ctx, &bp, g_in(&h, c, "x", 0), g_in(&h, c, "bias", 0), g_in(&h, c, "dy", 0), dx,
                              dbias);
    if (s == DLK_OK) {
      g_expect(c, "dx", dx);
      if (dbias) g_expect(c, "dbias", dbias);
    }
  } else if (strcmp(op, "softmax_fwd") == 0) {
    dlk_softmax_params p = {(int)g_num(c, "log")};
    dlk_tensor *y = g_out(&h, c, "y");
    s = dlk_softmax_forward(ctx, &p, g_in(&h, c, "x", 0), y);
    if (s == DLK_OK) g_expect(c, "y", y);
  } else if (strcmp(op, "softmax_bwd") == 0) {
    dlk_softmax_params p = {(int)g_num(c, "log")};
    dlk_tensor *dx = g_out(&h, c, "dx");
    s = dlk_softmax_backward(ctx, &p, g_in(&h, c, "y", 0), g_in(&h, c, "dy", 0), dx);
    if (s == DLK_OK) g_expect(c, "dx", dx);
  } else if (strcmp(op, "xent_fwd") == 0) {
    dlk_cross_entropy_params p = {(dlk_reduction)g_num(c, "reduction"), g_i64(c, "ignore_index")};
    dlk_tensor *loss = g_out(&h, c, "loss"), *lse = g_out(&h, c, "lse");
    s = dlk_cross_entropy_forward(ctx, &p, g_in(&h, c, "logits", 0), g_in(&h, c, "targets", 0), loss, lse);
    if (s == DLK_OK) g_expect(c, "loss", loss), g_expect(c, "lse", lse);
  } else if (strcmp(op, "xent_bwd") == 0) {
    dlk_cross_entropy_params p = {(dlk_reduction)g_num(c, "reduction"), g_i64(c, "ignore_index")};
    dlk_tensor *dl = g_out(&h, c, "dlogits");
    s = dlk_cross_entropy_backward(ctx, &p, g_in(&h, c, "logits", 0), g_in(&h, c, "targets", 0),
                                   g_in(&h, c, "dloss", 0), dl);
    if (s == DLK_OK) g_expect(c, "dlogits", dl);
  } else if (strcmp(op, "embedding_fwd") == 0) {
    dlk_embedding_params p = {g_i64(c, "padding_idx")};
    dlk_tensor *out = g_out(&h, c, "out");
    s = dlk_embedding_forward(ctx, &p, g_in(&h, c, "ids", 0), g_in(&h, c, "table", 0), out);
    if (s == DLK_OK) g_expect(c, "out", out);
  } else if (strcmp(op, "embedding_bwd") == 0) {
    dlk_embedding_params p = {g_i64(c, "padding_idx")};
    dlk_tensor *dt = g_out(&h, c, "dtable");
    s = dlk_embedding_backward(ctx, &p, g_in(&h, c, "ids", 0), g_in(&h, c, "dout", 0), dt);
    if (s == DLK_OK) g_expect(c, "dtable", dt);
  } else if (strcmp(op, "layernorm_fwd") == 0) {
    dlk_layernorm_params p = {g_num(c, "eps")};
    dlk_tensor *y = g_out(&h, c, "y"), *mean = g_out(&h, c, "mean"), *rstd = g_out(&h, c, "rstd");
    s = dlk_layernorm_forward(ctx, &p, g_in(&h, c, "x", 0), g_in(&h, c, "gamma", 0), g_in(&h, c, "beta", 0), y,
                              mean, rstd);
    if (s == DLK_OK) g_expect(c, "y", y), g_expect(c, "mean", mean), g_expect(c, "rstd", rstd);
  } else if (strcmp(op, "layernorm_bwd") == 0) {
    dlk_layernorm_params p = {g_num(c, "eps")};
    dlk_tensor *dx = g_out(&h, c, "dx"), *dg = g_out(&h, c, "dgamma"), *db = g_out(&h, c, "dbeta");
    s = dlk_layernorm_backward(ctx, &p, g_in(&h, c, "x", 0), g_in(&h, c, "gamma", 0), g_in(&h, c, "mean", 0),
                               g_in(&h, c, "rstd", 0), g_in(&h, c, "dy", 0), dx, dg, db);
    if (s == DLK_OK) g_expect(c, "dx", dx), g_expect(c, "dgamma", dg), g_expect(c, "dbeta", db);
  } else if (strcmp(op, "dropout") == 0) {
    dlk_dropout_params p = {g_num(c, "prob"), g_u64(c, "seed"), g_u64(c, "offset")};
    dlk_tensor *y = g_out(&h, c, "y"), *x = g_in(&h, c, "x", 0);
    s = g_num(c, "backward") != 0 ? dlk_dropout_backward(ctx, &p, x, y) : dlk_dropout_forward(ctx, &p, x, y);
    if (s == DLK_OK) g_expect(c, "y", y);
  } else if (strcmp(op, "sgd") == 0) {
    /* the fixture's first_step flag: step 1 (the buffer starts as the gradient) or a later one */
    dlk_sgd_params p = {g_num(c, "lr"), g_num(c, "momentum"), g_num(c, "dampening"), g_num(c, "weight_decay"),
                        (int)g_num(c, "nesterov"), g_num(c, "first_step") != 0 ? 1 : 2};
    dlk_tensor *param = g_in(&h, c, "param", 0), *buf = g_in(&h, c, "buf", 0);
    s = dlk_sgd_step(ctx, &p, param, g_in(&h, c, "grad", 0), buf);
    if (s == DLK_OK) {
      g_expect(c, "param", param);
      if (buf) g_expect(c, "buf", buf);
    }
  } else if (strcmp(op, "adam") == 0) {
    dlk_adam_params p = {g_num(c, "lr"), g_num(c, "beta1"), g_num(c, "beta2"), g_num(c, "eps"),
                         g_num(c, "weight_decay"), (int)g_num(c, "adamw"), g_i64(c, "step")};
    dlk_tensor *param = g_in(&h, c, "param", 0), *m = g_in(&h, c, "m", 0), *v = g_in(&h, c, "v", 0);
    s = dlk_adam_step(ctx, &p, param, g_in(&h, c, "grad", 0), m, v);
    if (s == DLK_OK) g_expect(c, "param", param), g_expect(c, "m", m), g_expect(c, "v", v);
  } else if (strcmp(op, "adagrad") == 0) {
    dlk_adagrad_params p = {g_num(c, "lr"), g_num(c, "lr_decay"), g_num(c, "weight_decay"), g_num(c, "eps"),
                            g_i64(c, "step")};
    dlk_tensor *param = g_in(&h, c, "param", 0), *sum = g_in(&h, c, "sum", 0);
    s = dlk_adagrad_step(ctx, &p, param, g_in(&h, c, "grad", 0), sum);
    if (s == DLK_OK) g_expect(c, "param", param), g_expect(c, "sum", sum);
  } else {
    CHECK(0, "golden %s: unknown op %s", c->name, op);
    g_host_free(&h);
    return;
  }
  CHECK(s == DLK_OK, "golden %s: %s: %s", c->name, dlk_status_string(s), dlk_context_last_error(ctx));
  g_host_free(&h);
}

static void test_golden(dlk_context *ctx) {
  static const char *const files[] = {"gemm", "linear", "bias_act", "softmax", "cross_entropy",
                                      "embedding", "layernorm", "dropout", "optim"};
  int total = 0;
  for (int f = 0; f < N_OF(files); f++) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/golden/nn/%s.txt", files[f]);
    total += golden_each(ctx, rel, golden_run, NULL);
  }
  printf("golden: %d PyTorch cases checked\n", total);
}

/* ====================================================================================== */
/* 2. Finite-difference gradient checks of the CPU backward passes (f64)                   */
/* ====================================================================================== */

static dlk_tensor host64(double *p, int ndim, int64_t d0, int64_t d1, int64_t d2) {
  int64_t shape[3] = {d0, d1, d2};
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  dlk_status s = dlk_tensor_init(NULL, &t, p, DLK_F64, (dlk_device){DLK_CPU, 0}, ndim, shape);
  CHECK(s == DLK_OK, "host64 tensor: %s", dlk_context_last_error(NULL));
  return t;
}

static dlk_tensor host_ids(int64_t *p, int64_t n) {
  dlk_tensor t;
  dlk_tensor_init(NULL, &t, p, DLK_I64, (dlk_device){DLK_CPU, 0}, 1, &n);
  return t;
}

enum { FD_LINEAR, FD_BIAS_ACT, FD_SOFTMAX, FD_XENT, FD_EMB, FD_LN, FD_DROPOUT };

/* A forward problem L = sum_i R_i * out_i, evaluated through the public API. */
typedef struct {
  dlk_context *ctx;
  int kind, act, flag;
  dlk_tensor in[4];
  dlk_tensor out;
  const double *r;
  int64_t n_out;
  int has_in[4];
  dlk_cross_entropy_params xp;
  dlk_dropout_params dp;
  dlk_embedding_params ep;
} fdprob;

static double fd_loss(fdprob *p) {
  dlk_status s = DLK_ERR_INTERNAL;
  const dlk_tensor *in1 = p->has_in[1] ? &p->in[1] : NULL, *in2 = p->has_in[2] ? &p->in[2] : NULL;
  switch (p->kind) {
    case FD_LINEAR: {
      dlk_linear_params lp = {(dlk_activation)p->act};
      s = dlk_linear_forward(p->ctx, &lp, &p->in[0], &p->in[1], in2, &p->out, NULL);
      break;
    }
    case FD_BIAS_ACT: {
      dlk_bias_act_params bp = {(dlk_activation)p->act};
      s = dlk_bias_act_forward(p->ctx, &bp, &p->in[0], in1, &p->out);
      break;
    }
    case FD_SOFTMAX: {
      dlk_softmax_params sp = {p->flag};
      s = dlk_softmax_forward(p->ctx, &sp, &p->in[0], &p->out);
      break;
    }
    case FD_XENT: s = dlk_cross_entropy_forward(p->ctx, &p->xp, &p->in[0], &p->in[1], &p->out, NULL); break;
    case FD_EMB: s = dlk_embedding_forward(p->ctx, &p->ep, &p->in[0], &p->in[1], &p->out); break;
    case FD_LN: {
      dlk_layernorm_params lp = {1e-5};
      s = dlk_layernorm_forward(p->ctx, &lp, &p->in[0], in1, in2, &p->out, NULL, NULL);
      break;
    }
    case FD_DROPOUT: s = dlk_dropout_forward(p->ctx, &p->dp, &p->in[0], &p->out); break;
  }
  if (s != DLK_OK) CHECK(0, "fd forward: %s: %s", dlk_status_string(s), dlk_context_last_error(p->ctx));
  double l = 0;
  const double *o = p->out.data;
  for (int64_t i = 0; i < p->n_out; i++) l += p->r[i] * o[i];
  return l;
}

/* Central differences of L in each element of x (skipping `skip_row` rows of `row_len`
   when skip_row >= 0) against the analytic gradient g. */
static void fd_check(const char *what, fdprob *p, double *x, int64_t n, const double *g, int64_t skip_row,
                     int64_t row_len) {
  const double h = 1e-6;
  int64_t bad = 0, worst = -1;
  double worst_err = 0, worst_fd = 0;
  for (int64_t i = 0; i < n; i++) {
    if (skip_row >= 0 && i / row_len == skip_row) continue;
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
  CHECK(bad == 0, "%s: %lld of %lld gradients off; worst [%lld] analytic %.10g, finite difference %.10g",
        what, (long long)bad, (long long)n, (long long)worst, worst >= 0 ? g[worst] : 0.0, worst_fd);
}

static void fill(double *v, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) v[i] = t_uniform(lo, hi);
}

static void test_fd_linear(dlk_context *ctx) {
  static const char *const names[] = {"none", "relu", "tanh", "sigmoid", "gelu"};
  for (int act = 0; act < 5; act++) {
    double x[24], w[20], b[5], r[30], y[30], z[30], dx[24], dw[20], db[5];
    fill(x, 24, -1, 1), fill(w, 20, -1, 1), fill(b, 5, -0.5, 0.5), fill(r, 30, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_LINEAR, .act = act, .r = r, .n_out = 30};
    p.in[0] = host64(x, 3, 2, 3, 4), p.in[1] = host64(w, 2, 5, 4, 0), p.in[2] = host64(b, 1, 5, 0, 0);
    p.has_in[0] = p.has_in[1] = p.has_in[2] = 1;
    p.out = host64(y, 3, 2, 3, 5);
    dlk_tensor tz = host64(z, 3, 2, 3, 5), tdy = host64(r, 3, 2, 3, 5), tdx = host64(dx, 3, 2, 3, 4),
               tdw = host64(dw, 2, 5, 4, 0), tdb = host64(db, 1, 5, 0, 0);
    dlk_linear_params lp = {(dlk_activation)act};
    CHECK_OK(ctx, dlk_linear_forward(ctx, &lp, &p.in[0], &p.in[1], &p.in[2], &p.out, &tz));
    CHECK_OK(ctx, dlk_linear_backward(ctx, &lp, &p.in[0], &p.in[1], &tz, &tdy, &tdx, &tdw, &tdb));
    char what[64];
    snprintf(what, sizeof what, "fd linear %s dx", names[act]);
    fd_check(what, &p, x, 24, dx, -1, 0);
    snprintf(what, sizeof what, "fd linear %s dw", names[act]);
    fd_check(what, &p, w, 20, dw, -1, 0);
    snprintf(what, sizeof what, "fd linear %s db", names[act]);
    fd_check(what, &p, b, 5, db, -1, 0);
  }
}

static void test_fd_bias_act(dlk_context *ctx) {
  for (int act = 0; act < 5; act++) {
    double x[18], b[6], r[18], y[18], dx[18], db[6];
    fill(x, 18, -2, 2), fill(b, 6, -1, 1), fill(r, 18, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_BIAS_ACT, .act = act, .r = r, .n_out = 18};
    p.in[0] = host64(x, 2, 3, 6, 0), p.in[1] = host64(b, 1, 6, 0, 0);
    p.has_in[0] = p.has_in[1] = 1;
    p.out = host64(y, 2, 3, 6, 0);
    dlk_tensor tdy = host64(r, 2, 3, 6, 0), tdx = host64(dx, 2, 3, 6, 0), tdb = host64(db, 1, 6, 0, 0);
    dlk_bias_act_params bp = {(dlk_activation)act};
    CHECK_OK(ctx, dlk_bias_act_backward(ctx, &bp, &p.in[0], &p.in[1], &tdy, &tdx, &tdb));
    char what[64];
    snprintf(what, sizeof what, "fd bias_act %d dx", act);
    fd_check(what, &p, x, 18, dx, -1, 0);
    snprintf(what, sizeof what, "fd bias_act %d dbias", act);
    fd_check(what, &p, b, 6, db, -1, 0);
  }
}

static void test_fd_softmax(dlk_context *ctx) {
  for (int log = 0; log < 2; log++) {
    double x[21], r[21], y[21], yy[21], dx[21];
    fill(x, 21, -2, 2), fill(r, 21, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_SOFTMAX, .flag = log, .r = r, .n_out = 21};
    p.in[0] = host64(x, 2, 3, 7, 0);
    p.has_in[0] = 1;
    p.out = host64(y, 2, 3, 7, 0);
    dlk_tensor ty = host64(yy, 2, 3, 7, 0), tdy = host64(r, 2, 3, 7, 0), tdx = host64(dx, 2, 3, 7, 0);
    dlk_softmax_params sp = {log};
    CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &p.in[0], &ty));
    CHECK_OK(ctx, dlk_softmax_backward(ctx, &sp, &ty, &tdy, &tdx));
    fd_check(log ? "fd log_softmax dx" : "fd softmax dx", &p, x, 21, dx, -1, 0);
  }
}

static void test_fd_xent(dlk_context *ctx) {
  for (int red = 0; red < 3; red++) {
    double x[20], r[5], loss[5], dx[20];
    int64_t tg[5] = {0, -100, 3, 1, 2};
    fill(x, 20, -2, 2), fill(r, 5, -1, 1);
    int64_t nl = red == DLK_REDUCE_NONE ? 5 : 1;
    fdprob p = {.ctx = ctx, .kind = FD_XENT, .r = r, .n_out = nl};
    p.xp = (dlk_cross_entropy_params){(dlk_reduction)red, -100};
    p.in[0] = host64(x, 2, 5, 4, 0), p.in[1] = host_ids(tg, 5);
    p.has_in[0] = p.has_in[1] = 1;
    p.out = host64(loss, 1, nl, 0, 0);
    dlk_tensor tdl = host64(r, 1, nl, 0, 0), tdx = host64(dx, 2, 5, 4, 0);
    CHECK_OK(ctx, dlk_cross_entropy_backward(ctx, &p.xp, &p.in[0], &p.in[1], &tdl, &tdx));
    char what[64];
    snprintf(what, sizeof what, "fd cross_entropy reduction %d dlogits", red);
    fd_check(what, &p, x, 20, dx, -1, 0);
  }
}

static void test_fd_embedding(dlk_context *ctx) {
  for (int pad = -1; pad <= 3; pad += 4) {
    double table[12], r[18], out[18], dt[12];
    int64_t ids[6] = {1, 3, 1, 0, 2, 3};
    fill(table, 12, -1, 1), fill(r, 18, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_EMB, .r = r, .n_out = 18};
    p.ep.padding_idx = pad;
    p.in[0] = host_ids(ids, 6), p.in[1] = host64(table, 2, 4, 3, 0);
    p.has_in[0] = p.has_in[1] = 1;
    p.out = host64(out, 2, 6, 3, 0);
    dlk_tensor tdo = host64(r, 2, 6, 3, 0), tdt = host64(dt, 2, 4, 3, 0);
    CHECK_OK(ctx, dlk_embedding_backward(ctx, &p.ep, &p.in[0], &tdo, &tdt));
    fd_check(pad < 0 ? "fd embedding dtable" : "fd embedding dtable (padding)", &p, table, 12, dt, pad, 3);
    if (pad >= 0) CHECK(dt[9] == 0 && dt[10] == 0 && dt[11] == 0, "padding row has zero gradient");
  }
}

static void test_fd_layernorm(dlk_context *ctx) {
  for (int affine = 0; affine < 2; affine++) {
    double x[15], g[5], b[5], r[15], y[15], mean[3], rstd[3], dx[15], dg[5], db[5];
    fill(x, 15, -2, 3), fill(g, 5, 0.5, 1.5), fill(b, 5, -1, 1), fill(r, 15, -1, 1);
    fdprob p = {.ctx = ctx, .kind = FD_LN, .r = r, .n_out = 15};
    p.in[0] = host64(x, 2, 3, 5, 0), p.in[1] = host64(g, 1, 5, 0, 0), p.in[2] = host64(b, 1, 5, 0, 0);
    p.has_in[0] = 1;
    p.has_in[1] = p.has_in[2] = affine;
    p.out = host64(y, 2, 3, 5, 0);
    dlk_tensor tm = host64(mean, 1, 3, 0, 0), tr = host64(rstd, 1, 3, 0, 0), tdy = host64(r, 2, 3, 5, 0),
               tdx = host64(dx, 2, 3, 5, 0), tdg = host64(dg, 1, 5, 0, 0), tdb = host64(db, 1, 5, 0, 0);
    dlk_layernorm_params lp = {1e-5};
    CHECK_OK(ctx, dlk_layernorm_forward(ctx, &lp, &p.in[0], affine ? &p.in[1] : NULL, affine ? &p.in[2] : NULL,
                                        &p.out, &tm, &tr));
    CHECK_OK(ctx, dlk_layernorm_backward(ctx, &lp, &p.in[0], affine ? &p.in[1] : NULL, &tm, &tr, &tdy, &tdx,
                                         &tdg, &tdb));
    fd_check(affine ? "fd layernorm dx (affine)" : "fd layernorm dx", &p, x, 15, dx, -1, 0);
    if (affine) {
      fd_check("fd layernorm dgamma", &p, g, 5, dg, -1, 0);
      fd_check("fd layernorm dbeta", &p, b, 5, db, -1, 0);
    }
  }
}

static void test_fd_dropout(dlk_context *ctx) {
  double x[20], r[20], y[20], dx[20];
  fill(x, 20, -1, 1), fill(r, 20, -1, 1);
  fdprob p = {.ctx = ctx, .kind = FD_DROPOUT, .r = r, .n_out = 20};
  p.dp = (dlk_dropout_params){0.4, 99, 7};
  p.in[0] = host64(x, 2, 4, 5, 0);
  p.has_in[0] = 1;
  p.out = host64(y, 2, 4, 5, 0);
  dlk_tensor tdy = host64(r, 2, 4, 5, 0), tdx = host64(dx, 2, 4, 5, 0);
  CHECK_OK(ctx, dlk_dropout_backward(ctx, &p.dp, &tdy, &tdx));
  fd_check("fd dropout dx", &p, x, 20, dx, -1, 0);
}

static void test_fd(dlk_context *ctx) {
  t_case = "finite differences";
  int before = t_checks;
  test_fd_linear(ctx);
  test_fd_bias_act(ctx);
  test_fd_softmax(ctx);
  test_fd_xent(ctx);
  test_fd_embedding(ctx);
  test_fd_layernorm(ctx);
  test_fd_dropout(ctx);
  printf("finite differences: %d checks\n", t_checks - before);
}

/* ====================================================================================== */
/* 3. The variant sweep (tests/sweep.h): one row per op, typed case tables                 */
/* ====================================================================================== */

/* Each op's case struct starts with sweep_tags; layouts default to SW_CONTIG. */

/* ---- gemm: c = alpha a b + beta c, a [batch?, m, k], b [batch?, k, n] ---- */

typedef struct {
  sweep_tags tags;
  int64_t batch; /* 0: 2-D operands */
  int64_t m, n, k;
  bool shared_b; /* batched a and c with a 2-D b, shared by the batch */
  double alpha, beta;
  sweep_layout a, b, c;
} gemm_case;

static void gemm_sizes(const gemm_case *c, int64_t *nb, int64_t *bb) {
  *nb = c->batch ? c->batch : 1;
  *bb = c->batch && !c->shared_b ? *nb : 1;
}

static void gen_gemm(const void *vc, dlk_dtype dt, sweep_set *in) {
  const gemm_case *c = vc;
  int64_t nb, bb;
  gemm_sizes(c, &nb, &bb);
  sweep_uniform(in, dt, nb * c->m * c->k, -1, 1);
  sweep_uniform(in, dt, bb * c->k * c->n, -1, 1);
  sweep_uniform(in, dt, nb * c->m * c->n, -1, 1);
}

static dlk_status run_gemm(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const gemm_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t nb, bb;
  gemm_sizes(c, &nb, &bb);
  int64_t sa[3] = {nb, c->m, c->k}, sb[3] = {bb, c->k, c->n}, sc[3] = {nb, c->m, c->n};
  int na = c->batch ? 3 : 2, nbd = bb > 1 || (c->batch && !c->shared_b) ? 3 : 2;
  sweep_tensor *a = sweep_in(&r, dt, na, sa + 3 - na, c->a, in->a[0].v);
  sweep_tensor *b = sweep_in(&r, dt, nbd, sb + 3 - nbd, c->b, in->a[1].v);
  /* beta == 0: c starts as the +inf fill and must be ignored (reading it gives NaN) */
  sweep_tensor *cc = c->beta != 0 ? sweep_inout(&r, dt, na, sc + 3 - na, c->c, in->a[2].v)
                                  : sweep_out(&r, dt, na, sc + 3 - na, c->c);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_gemm_params p = {c->alpha, c->beta};
  if (!r.failed) s = dlk_gemm(ctx, &p, &a->v, &b->v, &cc->v);
  return sweep_end(&r, s, out);
}

static void naive_gemm(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const gemm_case *c = vc;
  int64_t nb, bb, m = c->m, n = c->n, k = c->k;
  gemm_sizes(c, &nb, &bb);
  const double *a = in->a[0].v, *b = in->a[1].v, *c0 = in->a[2].v;
  double *o = sweep_add(ref, dt, nb * m * n);
  for (int64_t q = 0; q < nb; q++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0;
        for (int64_t p = 0; p < k; p++) acc += a[(q * m + i) * k + p] * b[((bb > 1 ? q : 0) * k + p) * n + j];
        double v = c->alpha * acc;
        if (c->beta != 0) v += c->beta * c0[(q * m + i) * n + j];
        o[(q * m + i) * n + j] = v;
      }
}

/* ---- linear: x [rows, in] (or [split, rows/split, in]), w [out, in] ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, in, out;
  int64_t split; /* > 0: x is [split, rows/split, in] */
  dlk_activation act;
  bool has_bias, want_z;
  bool nan_in_x; /* a NaN at x[1][0]: row 1 of y and z must come out NaN through every
                    activation (torch.relu keeps NaN, and so must a vendor epilogue) */
  sweep_layout x, w, y;
} linear_fwd_case;

typedef struct {
  sweep_tags tags;
  int64_t rows, in, out, split;
  dlk_activation act;
  bool want_dx, want_dw, want_db;
  sweep_layout x, dy, dx;
} linear_bwd_case;

static int lin_shape(int64_t rows, int64_t split, int64_t cols, int64_t *shape) {
  if (split > 0) {
    shape[0] = split, shape[1] = rows / split, shape[2] = cols;
    return 3;
  }
  shape[0] = rows, shape[1] = cols;
  return 2;
}

static void gen_linear_fwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const linear_fwd_case *c = vc;
  double s = 1 / sqrt((double)(c->in > 0 ? c->in : 1));
  double *x = sweep_uniform(in, dt, c->rows * c->in, -1, 1);
  if (c->nan_in_x && c->rows > 1 && c->in > 0) x[c->in] = NAN;
  sweep_uniform(in, dt, c->out * c->in, -s, s);
  sweep_uniform(in, dt, c->out, -0.5, 0.5);
}

static dlk_status run_linear_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                 sweep_set *out) {
  const linear_fwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sx[3], sy[3], sw[2] = {c->out, c->in};
  int nd = lin_shape(c->rows, c->split, c->in, sx);
  lin_shape(c->rows, c->split, c->out, sy);
  sweep_tensor *x = sweep_in(&r, dt, nd, sx, c->x, in->a[0].v);
  sweep_tensor *w = sweep_in(&r, dt, 2, sw, c->w, in->a[1].v);
  sweep_tensor *b = c->has_bias ? sweep_in(&r, dt, 1, &c->out, SW_CONTIG, in->a[2].v) : NULL;
  sweep_tensor *y = sweep_out(&r, dt, nd, sy, c->y);
  sweep_tensor *z = c->want_z ? sweep_out(&r, dt, nd, sy, SW_CONTIG) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_linear_params p = {c->act};
  if (!r.failed) s = dlk_linear_forward(ctx, &p, &x->v, &w->v, b ? &b->v : NULL, &y->v, z ? &z->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_linear_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const linear_fwd_case *c = vc;
  int64_t rows = c->rows, ni = c->in, no = c->out;
  const double *x = in->a[0].v, *w = in->a[1].v, *b = in->a[2].v;
  double *y = sweep_add(ref, dt, rows * no), *z = c->want_z ? sweep_add(ref, dt, rows * no) : NULL;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t o = 0; o < no; o++) {
      double v = c->has_bias ? b[o] : 0;
      for (int64_t k = 0; k < ni; k++) v += x[i * ni + k] * w[o * ni + k];
      y[i * no + o] = t_act(c->act, v);
      if (z) z[i * no + o] = v;
    }
}

static void gen_linear_bwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const linear_bwd_case *c = vc;
  double s = 1 / sqrt((double)(c->out > 0 ? c->out : 1));
  sweep_uniform(in, dt, c->rows * c->in, -1, 1);  /* x */
  sweep_uniform(in, dt, c->out * c->in, -1, 1);   /* w */
  sweep_uniform(in, dt, c->rows * c->out, -2, 2); /* z */
  sweep_uniform(in, dt, c->rows * c->out, -s, s); /* dy */
}

static dlk_status run_linear_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                 sweep_set *out) {
  const linear_bwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sx[3], sy[3], sw[2] = {c->out, c->in};
  int nd = lin_shape(c->rows, c->split, c->in, sx);
  lin_shape(c->rows, c->split, c->out, sy);
  sweep_tensor *x = sweep_in(&r, dt, nd, sx, c->x, in->a[0].v);
  sweep_tensor *w = sweep_in(&r, dt, 2, sw, SW_CONTIG, in->a[1].v);
  sweep_tensor *z = c->act ? sweep_in(&r, dt, nd, sy, SW_CONTIG, in->a[2].v) : NULL;
  sweep_tensor *dy = sweep_in(&r, dt, nd, sy, c->dy, in->a[3].v);
  sweep_tensor *dx = c->want_dx ? sweep_out(&r, dt, nd, sx, c->dx) : NULL;
  sweep_tensor *dw = c->want_dw ? sweep_out(&r, dt, 2, sw, SW_CONTIG) : NULL;
  sweep_tensor *db = c->want_db ? sweep_out(&r, dt, 1, &c->out, SW_CONTIG) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_linear_params p = {c->act};
  if (!r.failed)
    s = dlk_linear_backward(ctx, &p, &x->v, &w->v, z ? &z->v : NULL, &dy->v, dx ? &dx->v : NULL,
                            dw ? &dw->v : NULL, db ? &db->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_linear_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const linear_bwd_case *c = vc;
  int64_t rows = c->rows, ni = c->in, no = c->out;
  int act = c->act;
  const double *x = in->a[0].v, *w = in->a[1].v, *z = in->a[2].v, *dy = in->a[3].v;
  /* dz = dy * act'(z); dlk rounds it to the dtype before the two GEMMs (db sums it
     unrounded) */
  double *g = calloc((size_t)(rows * no > 0 ? rows * no : 1), sizeof(double));
  double *gd = calloc((size_t)(rows * no > 0 ? rows * no : 1), sizeof(double));
  for (int64_t i = 0; i < rows * no; i++) {
    gd[i] = act ? dy[i] * t_act_grad(act, z[i]) : dy[i];
    g[i] = act ? sweep_round(dt, gd[i]) : gd[i];
  }
  if (c->want_dx) {
    double *dx = sweep_add(ref, dt, rows * ni);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t k = 0; k < ni; k++) {
        double acc = 0;
        for (int64_t o = 0; o < no; o++) acc += g[i * no + o] * w[o * ni + k];
        dx[i * ni + k] = acc;
      }
  }
  if (c->want_dw) {
    double *dw = sweep_add(ref, dt, no * ni);
    for (int64_t o = 0; o < no; o++)
      for (int64_t k = 0; k < ni; k++) {
        double acc = 0;
        for (int64_t i = 0; i < rows; i++) acc += g[i * no + o] * x[i * ni + k];
        dw[o * ni + k] = acc;
      }
  }
  if (c->want_db) {
    double *db = sweep_add(ref, dt, no);
    for (int64_t o = 0; o < no; o++)
      for (int64_t i = 0; i < rows; i++) db[o] += gd[i * no + o];
  }
  free(g);
  free(gd);
}

/* ---- bias + activation: x [rows, cols], bias [cols] ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, cols;
  dlk_activation act;
  bool has_bias, in_place;
  sweep_layout x, y;
} bias_act_fwd_case;

typedef struct {
  sweep_tags tags;
  int64_t rows, cols;
  dlk_activation act;
  bool has_bias, want_dbias;
  sweep_layout x, dy, dx;
} bias_act_bwd_case;

static void gen_bias_act_fwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const bias_act_fwd_case *c = vc;
  sweep_uniform(in, dt, c->rows * c->cols, -3, 3);
  sweep_uniform(in, dt, c->cols, -1, 1);
}

static dlk_status run_bias_act_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                   sweep_set *out) {
  const bias_act_fwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[2] = {c->rows, c->cols};
  sweep_tensor *x, *y;
  if (c->in_place) {
    x = y = sweep_inout(&r, dt, 2, sh, c->x, in->a[0].v);
  } else {
    x = sweep_in(&r, dt, 2, sh, c->x, in->a[0].v);
    y = sweep_out(&r, dt, 2, sh, c->y);
  }
  sweep_tensor *b = c->has_bias ? sweep_in(&r, dt, 1, &c->cols, SW_CONTIG, in->a[1].v) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_bias_act_params p = {c->act};
  if (!r.failed) s = dlk_bias_act_forward(ctx, &p, &x->v, b ? &b->v : NULL, &y->v);
  return sweep_end(&r, s, out);
}

static void naive_bias_act_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const bias_act_fwd_case *c = vc;
  double *y = sweep_add(ref, dt, c->rows * c->cols);
  for (int64_t i = 0; i < c->rows; i++)
    for (int64_t j = 0; j < c->cols; j++)
      y[i * c->cols + j] = t_act(c->act, in->a[0].v[i * c->cols + j] + (c->has_bias ? in->a[1].v[j] : 0));
}

static void gen_bias_act_bwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const bias_act_bwd_case *c = vc;
  sweep_uniform(in, dt, c->rows * c->cols, -3, 3);
  sweep_uniform(in, dt, c->cols, -1, 1);
  sweep_uniform(in, dt, c->rows * c->cols, -1, 1);
}

static dlk_status run_bias_act_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                   sweep_set *out) {
  const bias_act_bwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[2] = {c->rows, c->cols};
  sweep_tensor *x = sweep_in(&r, dt, 2, sh, c->x, in->a[0].v);
  sweep_tensor *b = c->has_bias ? sweep_in(&r, dt, 1, &c->cols, SW_CONTIG, in->a[1].v) : NULL;
  sweep_tensor *dy = sweep_in(&r, dt, 2, sh, c->dy, in->a[2].v);
  sweep_tensor *dx = sweep_out(&r, dt, 2, sh, c->dx);
  sweep_tensor *db = c->want_dbias ? sweep_out(&r, dt, 1, &c->cols, SW_PADDED) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_bias_act_params p = {c->act};
  if (!r.failed)
    s = dlk_bias_act_backward(ctx, &p, &x->v, b ? &b->v : NULL, &dy->v, &dx->v, db ? &db->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_bias_act_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const bias_act_bwd_case *c = vc;
  int64_t rows = c->rows, cols = c->cols;
  double *dx = sweep_add(ref, dt, rows * cols), *db = c->want_dbias ? sweep_add(ref, dt, cols) : NULL;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      double pre = in->a[0].v[i * cols + j] + (c->has_bias ? in->a[1].v[j] : 0);
      double g = in->a[2].v[i * cols + j] * t_act_grad(c->act, pre);
      dx[i * cols + j] = g;
      if (db) db[j] += g;
    }
}

/* ---- softmax over the last dim of [rows, cols] (or [split, rows/split, cols]) ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, cols, split;
  bool log;
  bool specials; /* see softmax_specials */
  sweep_layout x, y;
} softmax_fwd_case;

typedef struct {
  sweep_tags tags;
  int64_t rows, cols, split;
  bool log, specials;
  sweep_layout y, dy, dx;
} softmax_bwd_case;

/* Row 0 all -inf, row 1 one +inf, row 2 one NaN (each a NaN row in the reference, as
   torch.softmax), and -inf at every third entry of the other rows (masked logits). */
static void softmax_specials(bool specials, int64_t rows, int64_t cols, double *x) {
  if (!specials || cols < 1) return;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      double *v = &x[i * cols + j];
      if (i == 0 || (i > 2 && (i + j) % 3 == 0)) *v = -INFINITY;
      if (i == 1 && j == cols / 2) *v = INFINITY;
      if (i == 2 && j == cols / 2) *v = NAN;
    }
}

static int row_shape(int64_t rows, int64_t cols, int64_t split, int64_t *shape) {
  if (split > 0) {
    shape[0] = split, shape[1] = rows / split, shape[2] = cols;
    return 3;
  }
  shape[0] = rows, shape[1] = cols;
  return 2;
}

static void softmax_rows(const double *x, double *y, int64_t rows, int64_t cols, int is_log) {
  for (int64_t i = 0; i < rows; i++) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < cols; j++) m = x[i * cols + j] > m ? x[i * cols + j] : m;
    for (int64_t j = 0; j < cols; j++) s += exp(x[i * cols + j] - m);
    for (int64_t j = 0; j < cols; j++)
      y[i * cols + j] = is_log ? x[i * cols + j] - m - log(s) : exp(x[i * cols + j] - m) / s;
  }
}

static void gen_softmax_fwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const softmax_fwd_case *c = vc;
  softmax_specials(c->specials, c->rows, c->cols, sweep_uniform(in, dt, c->rows * c->cols, -4, 4));
}

static dlk_status run_softmax_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                  sweep_set *out) {
  const softmax_fwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[3];
  int nd = row_shape(c->rows, c->cols, c->split, sh);
  sweep_tensor *x = sweep_in(&r, dt, nd, sh, c->x, in->a[0].v);
  sweep_tensor *y = sweep_out(&r, dt, nd, sh, c->y);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_softmax_params p = {c->log};
  if (!r.failed) s = dlk_softmax_forward(ctx, &p, &x->v, &y->v);
  return sweep_end(&r, s, out);
}

static void naive_softmax_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const softmax_fwd_case *c = vc;
  softmax_rows(in->a[0].v, sweep_add(ref, dt, c->rows * c->cols), c->rows, c->cols, c->log);
}

/* y is the (log-)softmax of random logits */
static void gen_softmax_bwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const softmax_bwd_case *c = vc;
  int64_t n = c->rows * c->cols;
  double *x = calloc((size_t)(n > 0 ? n : 1), sizeof(double)), *y = sweep_add(in, dt, n);
  for (int64_t i = 0; i < n; i++) x[i] = t_uniform(-4, 4);
  softmax_specials(c->specials, c->rows, c->cols, x);
  softmax_rows(x, y, c->rows, c->cols, c->log);
  for (int64_t i = 0; i < n; i++) y[i] = sweep_round(dt, y[i]);
  free(x);
  sweep_uniform(in, dt, n, -1, 1);
}

static dlk_status run_softmax_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                                  sweep_set *out) {
  const softmax_bwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[3];
  int nd = row_shape(c->rows, c->cols, c->split, sh);
  sweep_tensor *y = sweep_in(&r, dt, nd, sh, c->y, in->a[0].v);
  sweep_tensor *dy = sweep_in(&r, dt, nd, sh, c->dy, in->a[1].v);
  sweep_tensor *dx = sweep_out(&r, dt, nd, sh, c->dx);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_softmax_params p = {c->log};
  if (!r.failed) s = dlk_softmax_backward(ctx, &p, &y->v, &dy->v, &dx->v);
  return sweep_end(&r, s, out);
}

static void naive_softmax_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const softmax_bwd_case *c = vc;
  int64_t rows = c->rows, cols = c->cols;
  const double *y = in->a[0].v, *dy = in->a[1].v;
  double *dx = sweep_add(ref, dt, rows * cols);
  for (int64_t i = 0; i < rows; i++) {
    double dot = 0;
    for (int64_t j = 0; j < cols; j++) dot += c->log ? dy[i * cols + j] : dy[i * cols + j] * y[i * cols + j];
    for (int64_t j = 0; j < cols; j++) {
      int64_t k = i * cols + j;
      dx[k] = c->log ? dy[k] - exp(y[k]) * dot : y[k] * (dy[k] - dot);
    }
  }
}

/* ---- cross-entropy over logits [n, classes] ---- */

typedef enum {
  IGNORE_NONE = 0,        /* every target a class */
  IGNORE_EVERY_THIRD = 1, /* rows 1, 4, 7, ... have target -100 (the default ignore_index) */
  IGNORE_ALL = 2,         /* every target -100 */
  IGNORE_CLASS_1 = 3      /* ignore_index is class 1 */
} ignore_pattern;

typedef struct {
  sweep_tags tags;
  int64_t n, classes;
  dlk_reduction reduction;
  bool want_lse, i64_targets;
  ignore_pattern ignore;
  sweep_layout logits, targets, dlogits; /* dlogits: backward only */
} cross_entropy_case;

static int64_t xent_ignore(const cross_entropy_case *c) { return c->ignore == IGNORE_CLASS_1 ? 1 : -100; }
static dlk_dtype xent_tdt(const cross_entropy_case *c) { return c->i64_targets ? DLK_I64 : DLK_I32; }

static void gen_xent(const cross_entropy_case *c, dlk_dtype dt, sweep_set *in, int bwd) {
  int64_t n = c->n, cls = c->classes;
  sweep_uniform(in, dt, n * cls, -3, 3);
  double *t = sweep_add(in, xent_tdt(c), n);
  for (int64_t i = 0; i < n; i++) {
    t[i] = (double)(int64_t)t_uniform(0, (double)cls);
    if ((c->ignore == IGNORE_EVERY_THIRD && i % 3 == 1) || c->ignore == IGNORE_ALL) t[i] = -100;
  }
  if (bwd) sweep_uniform(in, stat_dt(dt), c->reduction == DLK_REDUCE_NONE ? n : 1, 0.5, 2);
}
static void gen_xent_fwd(const void *vc, dlk_dtype dt, sweep_set *in) { gen_xent(vc, dt, in, 0); }
static void gen_xent_bwd(const void *vc, dlk_dtype dt, sweep_set *in) { gen_xent(vc, dt, in, 1); }

/* loss and dloss: [N] for NONE, [1] for MEAN, [] for SUM (both accepted). */
static sweep_tensor *xent_loss_tensor(sweep_rig *r, const cross_entropy_case *c, dlk_dtype dt,
                                      const double *vals) {
  int64_t n = c->n, one = 1;
  int nd = c->reduction == DLK_REDUCE_SUM ? 0 : 1;
  const int64_t *sh = c->reduction == DLK_REDUCE_NONE ? &n : &one;
  return vals ? sweep_in(r, stat_dt(dt), nd, sh, SW_CONTIG, vals) : sweep_out(r, stat_dt(dt), nd, sh, SW_CONTIG);
}

static dlk_status run_xent_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                               sweep_set *out) {
  const cross_entropy_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[2] = {c->n, c->classes};
  sweep_tensor *x = sweep_in(&r, dt, 2, sh, c->logits, in->a[0].v);
  sweep_tensor *t = sweep_in(&r, xent_tdt(c), 1, &c->n, c->targets, in->a[1].v);
  sweep_tensor *loss = xent_loss_tensor(&r, c, dt, NULL);
  sweep_tensor *lse = c->want_lse ? sweep_out(&r, stat_dt(dt), 1, &c->n, SW_CONTIG) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_cross_entropy_params p = {c->reduction, xent_ignore(c)};
  if (!r.failed) s = dlk_cross_entropy_forward(ctx, &p, &x->v, &t->v, &loss->v, lse ? &lse->v : NULL);
  return sweep_end(&r, s, out);
}

static double lse_row(const double *x, int64_t cols) {
  double m = -INFINITY, s = 0;
  for (int64_t j = 0; j < cols; j++) m = x[j] > m ? x[j] : m;
  for (int64_t j = 0; j < cols; j++) s += exp(x[j] - m);
  return m + log(s);
}

static void naive_xent_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const cross_entropy_case *c = vc;
  int64_t n = c->n, cls = c->classes, ign = xent_ignore(c);
  double *loss = sweep_add(ref, stat_dt(dt), c->reduction == DLK_REDUCE_NONE ? n : 1);
  double *lse = c->want_lse ? sweep_add(ref, stat_dt(dt), n) : NULL;
  double sum = 0, cnt = 0;
  for (int64_t i = 0; i < n; i++) {
    double l = lse_row(in->a[0].v + i * cls, cls);
    int64_t t = (int64_t)in->a[1].v[i];
    double li = t == ign ? 0 : l - in->a[0].v[i * cls + t];
    if (t != ign) sum += li, cnt++;
    if (c->reduction == DLK_REDUCE_NONE) loss[i] = li;
    if (lse) lse[i] = l;
  }
  if (c->reduction == DLK_REDUCE_MEAN) loss[0] = cnt > 0 ? sum / cnt : NAN;
  if (c->reduction == DLK_REDUCE_SUM) loss[0] = sum;
}

static dlk_status run_xent_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                               sweep_set *out) {
  const cross_entropy_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[2] = {c->n, c->classes};
  sweep_tensor *x = sweep_in(&r, dt, 2, sh, c->logits, in->a[0].v);
  sweep_tensor *t = sweep_in(&r, xent_tdt(c), 1, &c->n, c->targets, in->a[1].v);
  sweep_tensor *dl = xent_loss_tensor(&r, c, dt, in->a[2].v);
  sweep_tensor *dx = sweep_out(&r, dt, 2, sh, c->dlogits);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_cross_entropy_params p = {c->reduction, xent_ignore(c)};
  if (!r.failed) s = dlk_cross_entropy_backward(ctx, &p, &x->v, &t->v, &dl->v, &dx->v);
  return sweep_end(&r, s, out);
}

static void naive_xent_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const cross_entropy_case *c = vc;
  int64_t n = c->n, cls = c->classes, ign = xent_ignore(c);
  int red = c->reduction;
  double *dx = sweep_add(ref, dt, n * cls), cnt = 0;
  for (int64_t i = 0; i < n; i++) cnt += (int64_t)in->a[1].v[i] != ign;
  for (int64_t i = 0; i < n; i++) {
    int64_t t = (int64_t)in->a[1].v[i];
    if (t == ign) continue; /* zero gradient */
    double scale = red == DLK_REDUCE_NONE ? in->a[2].v[i] : red == DLK_REDUCE_SUM ? in->a[2].v[0] : in->a[2].v[0] / cnt;
    double l = lse_row(in->a[0].v + i * cls, cls);
    for (int64_t j = 0; j < cls; j++) dx[i * cls + j] = scale * (exp(in->a[0].v[i * cls + j] - l) - (j == t));
  }
}

/* ---- embedding: ids [n] (or [2, n/2]), table [vocab, dim] ---- */

typedef struct {
  sweep_tags tags;
  int64_t n, vocab, dim;
  bool collide; /* ids drawn from [0, min(vocab, 3)): long runs of one id */
  bool i64_ids;
  bool padding; /* padding_idx = (vocab - 1) / 2, and ids[1] is it */
  bool ids_2d;  /* ids [2, n/2] */
  sweep_layout ids;
  sweep_layout table, out;   /* forward */
  sweep_layout dout, dtable; /* backward */
} embedding_case;

static int64_t emb_pad(const embedding_case *c) { return c->padding ? (c->vocab - 1) / 2 : -1; }
static dlk_dtype emb_idt(const embedding_case *c) { return c->i64_ids ? DLK_I64 : DLK_I32; }
static int emb_ids_shape(const embedding_case *c, int64_t *sh) {
  if (c->ids_2d) {
    sh[0] = 2, sh[1] = c->n / 2;
    return 2;
  }
  sh[0] = c->n;
  return 1;
}

static void gen_emb(const embedding_case *c, dlk_dtype dt, sweep_set *in, int bwd) {
  int64_t n = c->n, v = c->vocab, dim = c->dim;
  double *ids = sweep_add(in, emb_idt(c), n);
  double hi = (double)(c->collide && v > 3 ? 3 : v);
  for (int64_t i = 0; i < n; i++) ids[i] = (double)(int64_t)t_uniform(0, hi);
  if (n > 1 && emb_pad(c) >= 0) ids[1] = (double)emb_pad(c);
  double *vals = sweep_uniform(in, dt, bwd ? n * dim : v * dim, -1, 1);
  /* Colliding ids sum thousands of gradient rows per id. Multiples of 1/64 in [-1, 1] keep
     every partial sum exact in f32 (< 2^24 / 64 in magnitude), so the f32 atomic variant,
     whose order of additions is the hardware's, must still match exactly: the check is
     that every row is counted once, not how rounding fell. */
  if (bwd && c->collide)
    for (int64_t i = 0; i < n * dim; i++) vals[i] = round(vals[i] * 64) / 64;
}
static void gen_emb_fwd(const void *vc, dlk_dtype dt, sweep_set *in) { gen_emb(vc, dt, in, 0); }
static void gen_emb_bwd(const void *vc, dlk_dtype dt, sweep_set *in) { gen_emb(vc, dt, in, 1); }

static dlk_status run_emb_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const embedding_case *c = vc, *cm = c;
  sweep_rig r = {.ctx = ctx};
  int64_t si[3], st[2] = {c->vocab, c->dim};
  int ni = emb_ids_shape(cm, si);
  si[ni] = c->dim;
  sweep_tensor *ids = sweep_in(&r, emb_idt(cm), ni, si, c->ids, in->a[0].v);
  sweep_tensor *table = sweep_in(&r, dt, 2, st, c->table, in->a[1].v);
  sweep_tensor *o = sweep_out(&r, dt, ni + 1, si, c->out);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_embedding_params p = {emb_pad(cm)};
  if (!r.failed) s = dlk_embedding_forward(ctx, &p, &ids->v, &table->v, &o->v);
  return sweep_end(&r, s, out);
}

static void naive_emb_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const embedding_case *c = vc;
  int64_t n = c->n, dim = c->dim;
  double *o = sweep_add(ref, dt, n * dim);
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < dim; k++) o[i * dim + k] = in->a[1].v[(int64_t)in->a[0].v[i] * dim + k];
}

static dlk_status run_emb_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const embedding_case *c = vc, *cm = c;
  sweep_rig r = {.ctx = ctx};
  int64_t si[3], st[2] = {c->vocab, c->dim};
  int ni = emb_ids_shape(cm, si);
  si[ni] = c->dim;
  sweep_tensor *ids = sweep_in(&r, emb_idt(cm), ni, si, c->ids, in->a[0].v);
  sweep_tensor *dout = sweep_in(&r, dt, ni + 1, si, c->dout, in->a[1].v);
  sweep_tensor *dtab = sweep_out(&r, dt, 2, st, c->dtable);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_embedding_params p = {emb_pad(cm)};
  if (!r.failed) s = dlk_embedding_backward(ctx, &p, &ids->v, &dout->v, &dtab->v);
  return sweep_end(&r, s, out);
}

static void naive_emb_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const embedding_case *c = vc;
  int64_t n = c->n, dim = c->dim;
  double *o = sweep_add(ref, dt, c->vocab * dim);
  for (int64_t i = 0; i < n; i++) {
    int64_t id = (int64_t)in->a[0].v[i];
    if (id == emb_pad(c)) continue;
    for (int64_t k = 0; k < dim; k++) o[id * dim + k] += in->a[1].v[i * dim + k];
  }
}

/* ---- layer norm over the last dim of [rows, dim] (or [split, rows/split, dim]) ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, dim, split;
  double eps;
  bool has_gamma, has_beta, want_mean, want_rstd;
  sweep_layout x, y;
} layernorm_fwd_case;

typedef struct {
  sweep_tags tags;
  int64_t rows, dim, split;
  double eps;
  bool has_gamma, want_dx, want_dgamma, want_dbeta;
  sweep_layout x, dy, dx;
} layernorm_bwd_case;

static void ln_stats(const double *x, int64_t rows, int64_t dim, double eps, double *mean, double *rstd) {
  for (int64_t i = 0; i < rows; i++) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < dim; j++) m += x[i * dim + j];
    m /= (double)dim;
    for (int64_t j = 0; j < dim; j++) v += (x[i * dim + j] - m) * (x[i * dim + j] - m);
    v /= (double)dim;
    mean[i] = m;
    rstd[i] = 1 / sqrt(v + eps);
  }
}

static void gen_ln_fwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const layernorm_fwd_case *c = vc;
  sweep_uniform(in, dt, c->rows * c->dim, 1, 5);
  sweep_uniform(in, dt, c->dim, 0.5, 1.5);
  sweep_uniform(in, dt, c->dim, -1, 1);
}

/* mean/rstd shaped as x's leading dims when split, else [rows]. */
static int ln_stat_shape(int64_t rows, int64_t split, int64_t *sh) {
  if (split > 0) {
    sh[0] = split, sh[1] = rows / split;
    return 2;
  }
  sh[0] = rows;
  return 1;
}

static dlk_status run_ln_fwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                             sweep_set *out) {
  const layernorm_fwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[3], ss[2];
  int nd = row_shape(c->rows, c->dim, c->split, sh), ns = ln_stat_shape(c->rows, c->split, ss);
  sweep_tensor *x = sweep_in(&r, dt, nd, sh, c->x, in->a[0].v);
  sweep_tensor *g = c->has_gamma ? sweep_in(&r, dt, 1, &c->dim, SW_CONTIG, in->a[1].v) : NULL;
  sweep_tensor *b = c->has_beta ? sweep_in(&r, dt, 1, &c->dim, SW_PADDED, in->a[2].v) : NULL;
  sweep_tensor *y = sweep_out(&r, dt, nd, sh, c->y);
  sweep_tensor *mean = c->want_mean ? sweep_out(&r, stat_dt(dt), ns, ss, SW_CONTIG) : NULL;
  sweep_tensor *rstd = c->want_rstd ? sweep_out(&r, stat_dt(dt), ns, ss, SW_CONTIG) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_layernorm_params p = {c->eps};
  if (!r.failed)
    s = dlk_layernorm_forward(ctx, &p, &x->v, g ? &g->v : NULL, b ? &b->v : NULL, &y->v, mean ? &mean->v : NULL,
                              rstd ? &rstd->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_ln_fwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const layernorm_fwd_case *c = vc;
  int64_t rows = c->rows, dim = c->dim;
  double *y = sweep_add(ref, dt, rows * dim);
  double *mean = c->want_mean ? sweep_add(ref, stat_dt(dt), rows) : NULL;
  double *rstd = c->want_rstd ? sweep_add(ref, stat_dt(dt), rows) : NULL;
  double *m = calloc((size_t)rows + 1, sizeof(double)), *rs = calloc((size_t)rows + 1, sizeof(double));
  ln_stats(in->a[0].v, rows, dim, c->eps, m, rs);
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t j = 0; j < dim; j++) {
      double v = (in->a[0].v[i * dim + j] - m[i]) * rs[i];
      if (c->has_gamma) v *= in->a[1].v[j];
      if (c->has_beta) v += in->a[2].v[j];
      y[i * dim + j] = v;
    }
    if (mean) mean[i] = m[i];
    if (rstd) rstd[i] = rs[i];
  }
  free(m);
  free(rs);
}

static void gen_ln_bwd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const layernorm_bwd_case *c = vc;
  int64_t rows = c->rows, dim = c->dim;
  double *x = sweep_uniform(in, dt, rows * dim, 1, 5);
  sweep_uniform(in, dt, dim, 0.5, 1.5);
  double *mean = sweep_add(in, stat_dt(dt), rows), *rstd = sweep_add(in, stat_dt(dt), rows);
  ln_stats(x, rows, dim, c->eps, mean, rstd);
  for (int64_t i = 0; i < rows; i++)
    mean[i] = sweep_round(stat_dt(dt), mean[i]), rstd[i] = sweep_round(stat_dt(dt), rstd[i]);
  sweep_uniform(in, dt, rows * dim, -1, 1);
}

static dlk_status run_ln_bwd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                             sweep_set *out) {
  const layernorm_bwd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[3], ss[2];
  int nd = row_shape(c->rows, c->dim, c->split, sh), ns = ln_stat_shape(c->rows, c->split, ss);
  sweep_tensor *x = sweep_in(&r, dt, nd, sh, c->x, in->a[0].v);
  sweep_tensor *g = c->has_gamma ? sweep_in(&r, dt, 1, &c->dim, SW_CONTIG, in->a[1].v) : NULL;
  sweep_tensor *mean = sweep_in(&r, stat_dt(dt), ns, ss, SW_CONTIG, in->a[2].v);
  sweep_tensor *rstd = sweep_in(&r, stat_dt(dt), ns, ss, ns == 1 ? SW_PADDED : SW_CONTIG, in->a[3].v); /* strided 1-D */
  sweep_tensor *dy = sweep_in(&r, dt, nd, sh, c->dy, in->a[4].v);
  sweep_tensor *dx = c->want_dx ? sweep_out(&r, dt, nd, sh, c->dx) : NULL;
  sweep_tensor *dg = c->want_dgamma ? sweep_out(&r, dt, 1, &c->dim, SW_CONTIG) : NULL;
  sweep_tensor *db = c->want_dbeta ? sweep_out(&r, dt, 1, &c->dim, SW_PADDED) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_layernorm_params p = {c->eps};
  if (!r.failed)
    s = dlk_layernorm_backward(ctx, &p, &x->v, g ? &g->v : NULL, &mean->v, &rstd->v, &dy->v, dx ? &dx->v : NULL,
                               dg ? &dg->v : NULL, db ? &db->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_ln_bwd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const layernorm_bwd_case *c = vc;
  int64_t rows = c->rows, dim = c->dim;
  const double *x = in->a[0].v, *gm = in->a[1].v, *mean = in->a[2].v, *rstd = in->a[3].v, *dy = in->a[4].v;
  double *dx = c->want_dx ? sweep_add(ref, dt, rows * dim) : NULL;
  double *dg = c->want_dgamma ? sweep_add(ref, dt, dim) : NULL;
  double *db = c->want_dbeta ? sweep_add(ref, dt, dim) : NULL;
  for (int64_t i = 0; i < rows; i++) {
    double a = 0, b = 0; /* a = mean(g), b = mean(g xhat) with g = dy gamma */
    for (int64_t j = 0; j < dim; j++) {
      double xh = (x[i * dim + j] - mean[i]) * rstd[i], g = dy[i * dim + j] * (c->has_gamma ? gm[j] : 1);
      a += g / (double)dim;
      b += g * xh / (double)dim;
      if (dg) dg[j] += dy[i * dim + j] * xh;
      if (db) db[j] += dy[i * dim + j];
    }
    for (int64_t j = 0; dx && j < dim; j++) {
      double xh = (x[i * dim + j] - mean[i]) * rstd[i], g = dy[i * dim + j] * (c->has_gamma ? gm[j] : 1);
      dx[i * dim + j] = rstd[i] * (g - a - xh * b);
    }
  }
}

/* ---- dropout over [rows, cols] ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, cols;
  uint64_t seed, offset;
  double prob;
  bool backward, in_place;
  sweep_layout x, y;
} dropout_case;

/* The documented mask, written out again here: SplitMix64-style finaliser of
   seed + golden * (counter + 1); the top 53 bits / 2^53. */
static double ref_uniform(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

static void gen_dropout(const void *vc, dlk_dtype dt, sweep_set *in) {
  const dropout_case *c = vc;
  sweep_uniform(in, dt, c->rows * c->cols, -2, 2);
}

static dlk_status run_dropout(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const dropout_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t sh[2] = {c->rows, c->cols};
  sweep_tensor *x, *y;
  if (c->in_place) {
    x = y = sweep_inout(&r, dt, 2, sh, c->x, in->a[0].v);
  } else {
    x = sweep_in(&r, dt, 2, sh, c->x, in->a[0].v);
    y = sweep_out(&r, dt, 2, sh, c->y);
  }
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_dropout_params p = {c->prob, c->seed, c->offset};
  if (!r.failed)
    s = c->backward ? dlk_dropout_backward(ctx, &p, &x->v, &y->v) : dlk_dropout_forward(ctx, &p, &x->v, &y->v);
  return sweep_end(&r, s, out);
}

static void naive_dropout(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const dropout_case *c = vc;
  int64_t n = c->rows * c->cols;
  double *y = sweep_add(ref, dt, n);
  for (int64_t i = 0; i < n; i++)
    y[i] = ref_uniform(c->seed, c->offset + (uint64_t)i) >= c->prob ? in->a[0].v[i] / (1 - c->prob) : 0;
}

/* ---- optimizer steps over n elements ---- */

typedef struct {
  sweep_tags tags;
  int64_t n;
  bool momentum;     /* 0.9 */
  bool nesterov;
  bool first_step;
  bool weight_decay; /* 0.01 */
  bool dampening;    /* 0.2 */
  sweep_layout lay;  /* of every tensor (SW_PADDED: stride 2, off alignment) */
} sgd_case;

static dlk_sgd_params sgd_params(const sgd_case *c) {
  dlk_sgd_params p = {0.1, c->momentum ? 0.9 : 0, c->dampening ? 0.2 : 0, c->weight_decay ? 0.01 : 0, c->nesterov,
                      c->first_step ? 1 : 2};
  return p;
}

static void gen_sgd(const void *vc, dlk_dtype dt, sweep_set *in) {
  const sgd_case *c = vc;
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, stat_dt(dt), c->n, -1, 1);
}

static dlk_status run_sgd(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const sgd_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  sweep_tensor *p = sweep_inout(&r, dt, 1, &c->n, c->lay, in->a[0].v);
  sweep_tensor *g = sweep_in(&r, dt, 1, &c->n, c->lay, in->a[1].v);
  sweep_tensor *b = c->momentum ? sweep_inout(&r, stat_dt(dt), 1, &c->n, c->lay, in->a[2].v) : NULL;
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_sgd_params sp = sgd_params(c);
  if (!r.failed) s = dlk_sgd_step(ctx, &sp, &p->v, &g->v, b ? &b->v : NULL);
  return sweep_end(&r, s, out);
}

static void naive_sgd(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const sgd_case *c = vc;
  dlk_sgd_params p = sgd_params(c);
  int64_t n = c->n;
  double *w = sweep_add(ref, dt, n), *buf = c->momentum ? sweep_add(ref, stat_dt(dt), n) : NULL;
  for (int64_t i = 0; i < n; i++) {
    double d = in->a[1].v[i] + p.weight_decay * in->a[0].v[i];
    if (buf) {
      buf[i] = c->first_step ? d : p.momentum * in->a[2].v[i] + (1 - p.dampening) * d;
      d = p.nesterov ? d + p.momentum * buf[i] : buf[i];
    }
    w[i] = in->a[0].v[i] - p.lr * d;
  }
}

typedef struct {
  sweep_tags tags;
  int64_t n, step;
  bool adamw;
  bool weight_decay; /* 0.01 */
  sweep_layout lay;  /* of every tensor */
} adam_case;

static dlk_adam_params adam_params(const adam_case *c) {
  dlk_adam_params p = {1e-3, 0.9, 0.999, 1e-8, c->weight_decay ? 0.01 : 0, c->adamw, c->step};
  return p;
}

static void gen_adam(const void *vc, dlk_dtype dt, sweep_set *in) {
  const adam_case *c = vc;
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, stat_dt(dt), c->n, -0.1, 0.1);
  sweep_uniform(in, stat_dt(dt), c->n, 0, 0.01);
}

static dlk_status run_adam(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const adam_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  sweep_tensor *p = sweep_inout(&r, dt, 1, &c->n, c->lay, in->a[0].v);
  sweep_tensor *g = sweep_in(&r, dt, 1, &c->n, c->lay, in->a[1].v);
  sweep_tensor *m = sweep_inout(&r, stat_dt(dt), 1, &c->n, c->lay, in->a[2].v);
  sweep_tensor *v = sweep_inout(&r, stat_dt(dt), 1, &c->n, c->lay, in->a[3].v);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_adam_params ap = adam_params(c);
  if (!r.failed) s = dlk_adam_step(ctx, &ap, &p->v, &g->v, &m->v, &v->v);
  return sweep_end(&r, s, out);
}

static void naive_adam(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const adam_case *c = vc;
  dlk_adam_params p = adam_params(c);
  int64_t n = c->n;
  double *w = sweep_add(ref, dt, n), *m = sweep_add(ref, stat_dt(dt), n), *v = sweep_add(ref, stat_dt(dt), n);
  double bc1 = 1 - pow(p.beta1, (double)p.step), bc2 = 1 - pow(p.beta2, (double)p.step);
  for (int64_t i = 0; i < n; i++) {
    double wi = in->a[0].v[i], g = in->a[1].v[i];
    if (p.adamw) wi -= p.lr * p.weight_decay * wi;
    else g += p.weight_decay * wi;
    m[i] = p.beta1 * in->a[2].v[i] + (1 - p.beta1) * g;
    v[i] = p.beta2 * in->a[3].v[i] + (1 - p.beta2) * g * g;
    w[i] = wi - p.lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + p.eps);
  }
}

typedef struct {
  sweep_tags tags;
  int64_t n, step;
  bool lr_decay;     /* 0.01 */
  bool weight_decay; /* 0.01 */
  sweep_layout lay;  /* of every tensor */
} adagrad_case;

static dlk_adagrad_params adagrad_params(const adagrad_case *c) {
  dlk_adagrad_params p = {0.1, c->lr_decay ? 0.01 : 0, c->weight_decay ? 0.01 : 0, 1e-10, c->step};
  return p;
}

static void gen_adagrad(const void *vc, dlk_dtype dt, sweep_set *in) {
  const adagrad_case *c = vc;
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, dt, c->n, -1, 1);
  sweep_uniform(in, stat_dt(dt), c->n, 0.1, 1);
}

static dlk_status run_adagrad(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const adagrad_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  sweep_tensor *p = sweep_inout(&r, dt, 1, &c->n, c->lay, in->a[0].v);
  sweep_tensor *g = sweep_in(&r, dt, 1, &c->n, c->lay, in->a[1].v);
  sweep_tensor *sum = sweep_inout(&r, stat_dt(dt), 1, &c->n, c->lay, in->a[2].v);
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_adagrad_params ap = adagrad_params(c);
  if (!r.failed) s = dlk_adagrad_step(ctx, &ap, &p->v, &g->v, &sum->v);
  return sweep_end(&r, s, out);
}

static void naive_adagrad(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const adagrad_case *c = vc;
  dlk_adagrad_params p = adagrad_params(c);
  int64_t n = c->n;
  double *w = sweep_add(ref, dt, n), *sum = sweep_add(ref, stat_dt(dt), n);
  double clr = p.lr / (1 + (double)(p.step - 1) * p.lr_decay);
  for (int64_t i = 0; i < n; i++) {
    double g = in->a[1].v[i] + p.weight_decay * in->a[0].v[i];
    sum[i] = in->a[2].v[i] + g * g;
    w[i] = in->a[0].v[i] - clr * g / (sqrt(sum[i]) + p.eps);
  }
}

/* ---- the case tables: sizes 1, odd sizes, non-multiples of 16/32/64/128, rows of 4096 and
   32000, transposed and padded/misaligned operands, batch-shared B ---- */

static const gemm_case gemm_cases[] = {
    {.m = 1, .n = 1, .k = 1, .alpha = 1},
    {.m = 7, .n = 5, .k = 3, .alpha = 1},
    {.m = 16, .n = 16, .k = 16, .alpha = 1},
    {.m = 33, .n = 17, .k = 65, .alpha = 1, .a = SW_TRANSPOSED},
    {.m = 64, .n = 128, .k = 32, .alpha = 1, .b = SW_TRANSPOSED},
    {.m = 127, .n = 129, .k = 31, .alpha = 1, .a = SW_TRANSPOSED, .b = SW_TRANSPOSED, .c = SW_PADDED},
    {.m = 1, .n = 257, .k = 300, .alpha = 1},
    {.m = 255, .n = 1, .k = 130, .alpha = 1, .a = SW_PADDED},
    {.m = 45, .n = 37, .k = 29, .alpha = 0.5, .beta = 0.7, .c = SW_PADDED, .tags.notune = true},
    {.m = 4, .n = 6, .k = 0, .alpha = 1},
    {.m = 4, .n = 6, .k = 0, .alpha = 1, .beta = 1, .tags.notune = true},
    {.m = 0, .n = 5, .k = 3, .alpha = 1},
    {.batch = 3, .m = 17, .n = 9, .k = 33, .alpha = 1},
    {.batch = 4, .m = 31, .n = 20, .k = 7, .shared_b = true, .alpha = 1},
    {.batch = 2, .m = 64, .n = 64, .k = 64, .shared_b = true, .alpha = 1, .b = SW_TRANSPOSED},
    {.batch = 5, .m = 32, .n = 48, .k = 40, .alpha = -1, .beta = 0.5, .a = SW_TRANSPOSED, .c = SW_PADDED, .tags.notune = true},
    {.m = 200, .n = 96, .k = 512, .alpha = 1, .tags.big = true},
    {.m = 5, .n = 1000, .k = 1024, .alpha = 1, .b = SW_TRANSPOSED, .tags.big = true},
    {.m = 128, .n = 128, .k = 128, .alpha = 1, .tags.big = true},
    {.batch = 8, .m = 64, .n = 80, .k = 96, .alpha = 1, .tags.big = true},
    /* tensor-core variants (mma_tc, wgmma) need 8-multiple leading dims: m-major a with
       k-major b; both batched with beta on a contiguous c (paired 32-bit loads of c);
       a shared n-major b; more than 65535 batches (grid y chunks, TMA batch coordinate) */
    {.m = 72, .n = 40, .k = 48, .alpha = 1, .a = SW_TRANSPOSED, .b = SW_TRANSPOSED},
    {.batch = 3, .m = 40, .n = 24, .k = 56, .alpha = 0.5, .beta = -1, .a = SW_TRANSPOSED, .b = SW_TRANSPOSED, .tags.notune = true},
    {.batch = 3, .m = 24, .n = 40, .k = 16, .shared_b = true, .alpha = 1},
    {.batch = 65600, .m = 2, .n = 8, .k = 8, .alpha = 1, .tags.big = true},
};

static const linear_fwd_case linear_fwd_cases[] = {
    {.rows = 1, .in = 1, .out = 1, .has_bias = true, .want_z = true},
    {.rows = 7, .in = 13, .out = 5, .act = DLK_ACT_RELU, .has_bias = true, .want_z = true},
    {.rows = 6, .in = 10, .out = 9, .split = 2, .act = DLK_ACT_TANH, .has_bias = true},
    {.rows = 33, .in = 100, .out = 17, .act = DLK_ACT_SIGMOID, .want_z = true, .x = SW_PADDED, .w = SW_TRANSPOSED},
    {.rows = 64, .in = 128, .out = 96, .act = DLK_ACT_GELU, .has_bias = true, .want_z = true, .y = SW_PADDED},
    {.rows = 5, .in = 64, .out = 3, .act = DLK_ACT_RELU, .x = SW_TRANSPOSED},
    {.rows = 0, .in = 8, .out = 4, .act = DLK_ACT_GELU, .has_bias = true, .want_z = true},
    {.rows = 256, .in = 512, .out = 384, .act = DLK_ACT_GELU, .has_bias = true, .want_z = true, .tags.big = true},
    {.rows = 1000, .in = 64, .out = 32, .split = 4, .act = DLK_ACT_RELU, .has_bias = true, .want_z = true, .tags.big = true},
    /* relu + bias without z (the case a fused vendor RELU_BIAS epilogue would take);
       aligned for mma_tc/wgmma */
    {.rows = 40, .in = 64, .out = 48, .act = DLK_ACT_RELU, .has_bias = true},
    /* a NaN in x: relu and gelu keep it, with and without bias and z */
    {.rows = 40, .in = 64, .out = 48, .act = DLK_ACT_RELU, .has_bias = true, .nan_in_x = true},
    {.rows = 9, .in = 24, .out = 16, .act = DLK_ACT_RELU, .nan_in_x = true},
    {.rows = 9, .in = 24, .out = 16, .act = DLK_ACT_GELU, .has_bias = true, .want_z = true, .nan_in_x = true},
    /* leading dims that do not merge: staged through contiguous copies, every variant runs */
    {.rows = 6, .in = 5, .out = 4, .split = 3, .act = DLK_ACT_TANH, .has_bias = true, .want_z = true,
     .x = SW_PERMUTED, .y = SW_PERMUTED},
};

static const linear_bwd_case linear_bwd_cases[] = {
    {.rows = 1, .in = 1, .out = 1, .want_dx = true, .want_dw = true, .want_db = true},
    {.rows = 7, .in = 13, .out = 5, .act = DLK_ACT_RELU, .want_dx = true, .want_dw = true, .want_db = true},
    {.rows = 6, .in = 10, .out = 9, .split = 2, .act = DLK_ACT_TANH, .want_dx = true, .want_dw = true, .want_db = true},
    {.rows = 33, .in = 100, .out = 17, .act = DLK_ACT_SIGMOID, .want_dx = true, .want_dw = true, .want_db = true, .x = SW_PADDED, .dy = SW_PADDED},
    {.rows = 64, .in = 128, .out = 96, .act = DLK_ACT_GELU, .want_dx = true, .want_db = true, .dx = SW_PADDED},
    {.rows = 9, .in = 20, .out = 11, .act = DLK_ACT_GELU, .want_dw = true},
    {.rows = 9, .in = 20, .out = 11, .act = DLK_ACT_RELU, .want_db = true},
    {.rows = 9, .in = 20, .out = 11, .want_dx = true, .want_db = true, .x = SW_TRANSPOSED},
    {.rows = 0, .in = 5, .out = 4, .act = DLK_ACT_TANH, .want_dx = true, .want_dw = true, .want_db = true},
    {.rows = 256, .in = 512, .out = 384, .act = DLK_ACT_GELU, .want_dx = true, .want_dw = true, .want_db = true, .tags.big = true},
    /* leading dims that do not merge: staged */
    {.rows = 6, .in = 5, .out = 4, .split = 3, .act = DLK_ACT_GELU, .want_dx = true, .want_dw = true,
     .want_db = true, .x = SW_PERMUTED, .dy = SW_PERMUTED, .dx = SW_PERMUTED},
};

static const bias_act_fwd_case bias_act_fwd_cases[] = {
    {.rows = 1, .cols = 1, .has_bias = true},
    {.rows = 3, .cols = 7, .act = DLK_ACT_RELU, .has_bias = true},
    {.rows = 64, .cols = 128, .act = DLK_ACT_TANH, .has_bias = true},
    {.rows = 33, .cols = 1000, .act = DLK_ACT_SIGMOID, .has_bias = true, .x = SW_PADDED, .y = SW_PADDED},
    {.rows = 5, .cols = 4096, .act = DLK_ACT_GELU, .has_bias = true},
    {.rows = 17, .cols = 31, .act = DLK_ACT_RELU, .x = SW_TRANSPOSED},
    {.rows = 16, .cols = 64, .act = DLK_ACT_GELU, .has_bias = true, .in_place = true, .x = SW_PADDED, .tags.notune = true},
    {.rows = 2, .cols = 32000, .act = DLK_ACT_RELU, .has_bias = true},
    {.rows = 0, .cols = 5, .act = DLK_ACT_RELU, .has_bias = true},
    {.rows = 512, .cols = 1024, .act = DLK_ACT_GELU, .has_bias = true, .tags.big = true},
    /* the vec variant in place (aligned) and without a bias */
    {.rows = 16, .cols = 64, .act = DLK_ACT_SIGMOID, .has_bias = true, .in_place = true, .tags.notune = true},
    {.rows = 8, .cols = 64, .act = DLK_ACT_SIGMOID},
};

static const bias_act_bwd_case bias_act_bwd_cases[] = {
    {.rows = 1, .cols = 1, .has_bias = true, .want_dbias = true},
    {.rows = 3, .cols = 7, .act = DLK_ACT_RELU, .has_bias = true, .want_dbias = true},
    {.rows = 64, .cols = 128, .act = DLK_ACT_TANH, .want_dbias = true},
    {.rows = 33, .cols = 1000, .act = DLK_ACT_SIGMOID, .has_bias = true, .want_dbias = true, .x = SW_PADDED, .dy = SW_PADDED, .dx = SW_PADDED},
    {.rows = 5, .cols = 4096, .act = DLK_ACT_GELU, .has_bias = true, .want_dbias = true},
    {.rows = 17, .cols = 31, .act = DLK_ACT_RELU, .has_bias = true, .x = SW_TRANSPOSED, .dx = SW_TRANSPOSED},
    {.rows = 1000, .cols = 33, .act = DLK_ACT_GELU, .has_bias = true, .want_dbias = true},
    {.rows = 2, .cols = 32000, .act = DLK_ACT_TANH, .has_bias = true, .want_dbias = true},
    {.rows = 0, .cols = 5, .act = DLK_ACT_RELU, .has_bias = true, .want_dbias = true},
    {.rows = 4096, .cols = 256, .act = DLK_ACT_GELU, .has_bias = true, .want_dbias = true, .tags.big = true},
};

static const softmax_fwd_case softmax_fwd_cases[] = {
    {.rows = 4, .cols = 1},
    {.rows = 3, .cols = 2, .log = true},
    {.rows = 5, .cols = 7},
    {.rows = 8, .cols = 31, .log = true},
    {.rows = 8, .cols = 32},
    {.rows = 8, .cols = 33, .split = 2, .log = true},
    {.rows = 6, .cols = 127, .x = SW_PADDED, .y = SW_PADDED},
    {.rows = 6, .cols = 128, .log = true, .x = SW_PADDED},
    {.rows = 16, .cols = 1000},
    {.rows = 16, .cols = 1024, .log = true},
    {.rows = 7, .cols = 1025},
    {.rows = 4, .cols = 4096, .log = true},
    {.rows = 4, .cols = 4096},
    {.rows = 2, .cols = 32000},
    {.rows = 2, .cols = 32000, .log = true},
    {.rows = 9, .cols = 17, .x = SW_TRANSPOSED, .y = SW_TRANSPOSED},
    {.rows = 0, .cols = 10},
    {.rows = 1024, .cols = 1000, .tags.big = true},
    {.rows = 64, .cols = 32000, .log = true, .tags.big = true},
    /* -inf / +inf / NaN rows and masked entries, unvectorised and 16-byte vectorised */
    {.rows = 6, .cols = 37, .specials = true},
    {.rows = 6, .cols = 37, .log = true, .specials = true},
    {.rows = 5, .cols = 64, .specials = true},
    {.rows = 5, .cols = 2048, .log = true, .specials = true},
    /* leading dims that do not merge into rows: the CPU reference takes them */
    {.rows = 6, .cols = 5, .split = 2, .x = SW_PERMUTED},
    {.rows = 12, .cols = 7, .split = 3, .log = true, .x = SW_PERMUTED, .y = SW_PERMUTED},
};

/* The backward runs the forward's shapes. */
static const softmax_bwd_case softmax_bwd_cases[] = {
    {.rows = 4, .cols = 1},
    {.rows = 3, .cols = 2, .log = true},
    {.rows = 5, .cols = 7},
    {.rows = 8, .cols = 31, .log = true},
    {.rows = 8, .cols = 32},
    {.rows = 8, .cols = 33, .split = 2, .log = true},
    {.rows = 6, .cols = 127, .y = SW_PADDED, .dy = SW_PADDED, .dx = SW_PADDED},
    {.rows = 6, .cols = 128, .log = true, .y = SW_PADDED},
    {.rows = 16, .cols = 1000},
    {.rows = 16, .cols = 1024, .log = true},
    {.rows = 7, .cols = 1025},
    {.rows = 4, .cols = 4096, .log = true},
    {.rows = 4, .cols = 4096},
    {.rows = 2, .cols = 32000},
    {.rows = 2, .cols = 32000, .log = true},
    {.rows = 9, .cols = 17, .y = SW_TRANSPOSED, .dy = SW_TRANSPOSED, .dx = SW_TRANSPOSED},
    {.rows = 0, .cols = 10},
    {.rows = 1024, .cols = 1000, .tags.big = true},
    {.rows = 64, .cols = 32000, .log = true, .tags.big = true},
    /* -inf / +inf / NaN rows and masked entries, unvectorised and 16-byte vectorised */
    {.rows = 6, .cols = 37, .specials = true},
    {.rows = 6, .cols = 37, .log = true, .specials = true},
    {.rows = 5, .cols = 64, .specials = true},
    {.rows = 5, .cols = 2048, .log = true, .specials = true},
    /* leading dims that do not merge into rows */
    {.rows = 6, .cols = 5, .split = 2, .y = SW_PERMUTED},
    {.rows = 12, .cols = 7, .split = 3, .log = true, .y = SW_PERMUTED, .dy = SW_PERMUTED, .dx = SW_PERMUTED},
};

static const cross_entropy_case cross_entropy_cases[] = {
    {.n = 1, .classes = 1, .reduction = DLK_REDUCE_MEAN, .want_lse = true},
    {.n = 6, .classes = 5, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .ignore = IGNORE_EVERY_THIRD},
    {.n = 6, .classes = 5, .reduction = DLK_REDUCE_SUM, .i64_targets = true},
    {.n = 6, .classes = 5, .reduction = DLK_REDUCE_NONE, .want_lse = true, .i64_targets = true, .ignore = IGNORE_EVERY_THIRD, .targets = SW_PADDED},
    {.n = 7, .classes = 33, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .ignore = IGNORE_ALL},
    {.n = 7, .classes = 33, .reduction = DLK_REDUCE_SUM, .ignore = IGNORE_CLASS_1},
    {.n = 64, .classes = 1000, .reduction = DLK_REDUCE_MEAN, .want_lse = true},
    {.n = 33, .classes = 1024, .reduction = DLK_REDUCE_NONE, .want_lse = true, .i64_targets = true, .logits = SW_PADDED, .dlogits = SW_PADDED},
    {.n = 8, .classes = 4096, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .ignore = IGNORE_EVERY_THIRD},
    {.n = 4, .classes = 32000, .reduction = DLK_REDUCE_SUM, .want_lse = true},
    {.n = 4, .classes = 32000, .reduction = DLK_REDUCE_NONE, .want_lse = true, .i64_targets = true},
    {.n = 9, .classes = 17, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .logits = SW_TRANSPOSED, .dlogits = SW_TRANSPOSED},
    {.n = 0, .classes = 10, .reduction = DLK_REDUCE_MEAN, .want_lse = true},
    {.n = 256, .classes = 32000, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .tags.big = true},
    /* more rows than the 1024 threads of the id check and the final sum/count kernels */
    {.n = 2000, .classes = 7, .reduction = DLK_REDUCE_MEAN, .want_lse = true, .ignore = IGNORE_EVERY_THIRD},
};

static const embedding_case embedding_fwd_cases[] = {
    {.n = 1, .vocab = 1, .dim = 1},
    {.n = 7, .vocab = 5, .dim = 4, .i64_ids = true},
    {.n = 8, .vocab = 10, .dim = 3, .padding = true, .ids_2d = true},
    {.n = 64, .vocab = 1000, .dim = 128, .table = SW_PADDED, .out = SW_PADDED},
    {.n = 33, .vocab = 50, .dim = 31, .i64_ids = true, .padding = true, .table = SW_TRANSPOSED},
    {.n = 100, .vocab = 7, .dim = 64, .collide = true},
    {.n = 0, .vocab = 5, .dim = 4},
    {.n = 4096, .vocab = 32000, .dim = 256, .i64_ids = true, .tags.big = true},
    /* ids a transposed [2, 3] (strides that do not flatten), out [2, 3, D] likewise */
    {.n = 6, .vocab = 7, .dim = 3, .ids_2d = true, .ids = SW_TRANSPOSED, .out = SW_PERMUTED},
};

static const embedding_case embedding_bwd_cases[] = {
    {.n = 1, .vocab = 1, .dim = 1},
    {.n = 7, .vocab = 5, .dim = 4, .i64_ids = true},
    {.n = 8, .vocab = 10, .dim = 3, .padding = true, .ids_2d = true},
    {.n = 64, .vocab = 1000, .dim = 128, .dout = SW_PADDED, .dtable = SW_PADDED},
    {.n = 33, .vocab = 50, .dim = 31, .i64_ids = true, .padding = true, .dout = SW_TRANSPOSED, .dtable = SW_TRANSPOSED},
    {.n = 1000, .vocab = 7, .dim = 64, .collide = true},
    {.n = 1000, .vocab = 3, .dim = 33, .collide = true, .padding = true},
    {.n = 0, .vocab = 5, .dim = 4},
    {.n = 4096, .vocab = 32000, .dim = 256, .i64_ids = true, .tags.big = true},
    {.n = 20000, .vocab = 10, .dim = 128, .collide = true, .tags.big = true},
    /* ids a transposed [2, 3], dout [2, 3, D] with leading dims that do not merge */
    {.n = 6, .vocab = 7, .dim = 3, .ids_2d = true, .padding = true, .ids = SW_TRANSPOSED, .dout = SW_PERMUTED},
};

static const layernorm_fwd_case layernorm_fwd_cases[] = {
    {.rows = 1, .dim = 1, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 3, .dim = 7, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 8, .dim = 32, .split = 2, .eps = 1e-5, .has_gamma = true, .want_mean = true, .want_rstd = true},
    {.rows = 5, .dim = 33, .eps = 1e-5, .has_beta = true, .want_mean = true, .x = SW_PADDED, .y = SW_PADDED},
    {.rows = 16, .dim = 1000, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 4, .dim = 1024, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 3, .dim = 4096, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 2, .dim = 32000, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 9, .dim = 17, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true, .x = SW_TRANSPOSED},
    {.rows = 0, .dim = 8, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true},
    {.rows = 7, .dim = 64, .eps = 1e-3},
    {.rows = 1024, .dim = 1024, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true, .want_rstd = true, .tags.big = true},
    /* leading dims that do not merge into rows */
    {.rows = 8, .dim = 7, .split = 2, .eps = 1e-5, .has_gamma = true, .has_beta = true, .want_mean = true,
     .want_rstd = true, .x = SW_PERMUTED, .y = SW_PERMUTED},
};

static const layernorm_bwd_case layernorm_bwd_cases[] = {
    {.rows = 1, .dim = 1, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 3, .dim = 7, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 8, .dim = 32, .split = 2, .eps = 1e-5, .has_gamma = true, .want_dx = true},
    {.rows = 5, .dim = 33, .eps = 1e-5, .want_dx = true, .want_dgamma = true, .want_dbeta = true, .x = SW_PADDED, .dy = SW_PADDED, .dx = SW_PADDED},
    {.rows = 16, .dim = 1000, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 4, .dim = 1024, .eps = 1e-5, .has_gamma = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 3, .dim = 4096, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 2, .dim = 32000, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 9, .dim = 17, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true, .x = SW_TRANSPOSED, .dx = SW_TRANSPOSED},
    {.rows = 1000, .dim = 48, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 0, .dim = 8, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true},
    {.rows = 1024, .dim = 1024, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true, .want_dbeta = true, .tags.big = true},
    /* leading dims that do not merge into rows */
    {.rows = 8, .dim = 7, .split = 2, .eps = 1e-5, .has_gamma = true, .want_dx = true, .want_dgamma = true,
     .want_dbeta = true, .x = SW_PERMUTED, .dy = SW_PERMUTED, .dx = SW_PERMUTED},
};

static const dropout_case dropout_cases[] = {
    {.rows = 1, .cols = 1, .seed = 1, .prob = 0.5},
    {.rows = 7, .cols = 13, .seed = 42, .prob = 0.0},
    {.rows = 33, .cols = 100, .seed = 7, .offset = 1000, .prob = 0.3, .backward = true, .x = SW_PADDED, .y = SW_PADDED},
    {.rows = 64, .cols = 1024, .seed = 123, .offset = 5, .prob = 0.9},
    {.rows = 17, .cols = 31, .seed = 9, .prob = 0.5, .backward = true, .x = SW_TRANSPOSED},
    {.rows = 16, .cols = 64, .seed = 5, .prob = 0.2, .in_place = true, .tags.notune = true},
    {.rows = 4, .cols = 32000, .seed = 77, .offset = 1 << 20, .prob = 0.1},
    {.rows = 0, .cols = 5, .seed = 1, .prob = 0.5},
    {.rows = 1024, .cols = 4096, .seed = 3, .prob = 0.5, .tags.big = true},
};

static const sgd_case sgd_cases[] = {
    {.n = 1},
    {.n = 7, .momentum = true, .first_step = true},
    {.n = 1000, .momentum = true, .weight_decay = true, .dampening = true},
    {.n = 4099, .momentum = true, .nesterov = true, .weight_decay = true},
    {.n = 0, .momentum = true},
    {.n = 1 << 20, .momentum = true, .tags.big = true},
    {.n = 33, .momentum = true, .nesterov = true, .lay = SW_PADDED}, /* strided: the CPU reference */
};

static const adam_case adam_cases[] = {
    {.n = 1, .step = 1},
    {.n = 7, .step = 1, .adamw = true, .weight_decay = true},
    {.n = 1000, .step = 5, .weight_decay = true},
    {.n = 4099, .step = 10, .adamw = true, .weight_decay = true},
    {.n = 1 << 20, .step = 3, .adamw = true, .tags.big = true},
    {.n = 33, .step = 2, .adamw = true, .lay = SW_PADDED},
};

static const adagrad_case adagrad_cases[] = {
    {.n = 1, .step = 1},
    {.n = 7, .step = 1, .lr_decay = true},
    {.n = 1000, .step = 4, .lr_decay = true, .weight_decay = true},
    {.n = 4099, .step = 2, .weight_decay = true},
    {.n = 1 << 20, .step = 3, .lr_decay = true, .weight_decay = true, .tags.big = true},
    {.n = 33, .step = 2, .lr_decay = true, .lay = SW_PADDED},
};

/* ---- the rows ---- */

#define ROW(label, op, cases, gen, run, naive, tf32, tunable) \
  {label, op, SWEEP_CASES(cases), gen, run, naive, tf32, tunable, NULL, 0, NULL}

/* gemm in f32 (TF32 off): the kernels accumulate the K products in f32, one rounding per
   step, so the absolute error grows with K, not with |c|: the running sum of K products of
   U(-1, 1) inputs reaches ~sqrt(k / 9) at step k, and the rounding errors add up to
   u * sqrt(sum_k k / 9) = u * K / sqrt(18) per unit of |alpha| (u = 2^-24). A simulation of
   the case M 5, N 1000, K 1024 (sequential f32 sums, with and without FMA) puts the worst
   element of 5000 at 3-3.5 times that, 4e-5 to 5e-5, against 1e-5 + 1e-5 |c| for a c near
   zero: naive and tiled both failed there by 1.4e-5 (issue 9, phase 1). The tolerance is
   widened by 6 u K / sqrt(18) |alpha| (+8.7e-5 at K 1024, +5e-6 at K 64); a wrong index or
   a lost term is off by ~0.1 or more, far outside it. f16/bf16 (f32 accumulation inside a
   tolerance of 1e-3 and up), f64 and TF32 keep the per-dtype tolerance. */
static int compare_gemm(const char *what, const void *vc, int variant, const sweep_set *got, const sweep_set *ref,
                        int tf32) {
  (void)variant;
  const gemm_case *c = vc;
  const double extra =
      !tf32 && ref->n > 0 && ref->a[0].dt == DLK_F32 ? 6 * 0x1p-24 * (double)c->k / sqrt(18.0) * fabs(c->alpha) : 0;
  return sweep_compare_wider(what, got, ref, tf32, extra);
}

static const sweep_op nn_rows[] = {
    {"gemm", "gemm", SWEEP_CASES(gemm_cases), gen_gemm, run_gemm, naive_gemm, 1, 1, NULL, 0, compare_gemm},
    ROW("linear_fwd", "gemm", linear_fwd_cases, gen_linear_fwd, run_linear_fwd, naive_linear_fwd, 1, 1),
    ROW("linear_bwd", "gemm", linear_bwd_cases, gen_linear_bwd, run_linear_bwd, naive_linear_bwd, 1, -1),
    ROW("bias_act_fwd", "bias_act_fwd", bias_act_fwd_cases, gen_bias_act_fwd, run_bias_act_fwd,
        naive_bias_act_fwd, 0, 1),
    ROW("bias_act_bwd", "bias_act_bwd", bias_act_bwd_cases, gen_bias_act_bwd, run_bias_act_bwd,
        naive_bias_act_bwd, 0, 1),
    ROW("softmax_fwd", "softmax_fwd", softmax_fwd_cases, gen_softmax_fwd, run_softmax_fwd, naive_softmax_fwd, 0, 1),
    ROW("softmax_bwd", "softmax_bwd", softmax_bwd_cases, gen_softmax_bwd, run_softmax_bwd, naive_softmax_bwd, 0, 1),
    ROW("cross_entropy_fwd", "cross_entropy_fwd", cross_entropy_cases, gen_xent_fwd, run_xent_fwd, naive_xent_fwd,
        0, 1),
    ROW("cross_entropy_bwd", "cross_entropy_bwd", cross_entropy_cases, gen_xent_bwd, run_xent_bwd, naive_xent_bwd,
        0, 1),
    ROW("embedding_fwd", "embedding_fwd", embedding_fwd_cases, gen_emb_fwd, run_emb_fwd, naive_emb_fwd, 0, 1),
    ROW("embedding_bwd", "embedding_bwd", embedding_bwd_cases, gen_emb_bwd, run_emb_bwd, naive_emb_bwd, 0, 1),
    ROW("layernorm_fwd", "layernorm_fwd", layernorm_fwd_cases, gen_ln_fwd, run_ln_fwd, naive_ln_fwd, 0, 1),
    ROW("layernorm_bwd", "layernorm_bwd", layernorm_bwd_cases, gen_ln_bwd, run_ln_bwd, naive_ln_bwd, 0, 1),
    ROW("dropout", "dropout", dropout_cases, gen_dropout, run_dropout, naive_dropout, 0, 1),
    ROW("sgd_step", "sgd_step", sgd_cases, gen_sgd, run_sgd, naive_sgd, 0, 0),
    ROW("adam_step", "adam_step", adam_cases, gen_adam, run_adam, naive_adam, 0, 0),
    ROW("adagrad_step", "adagrad_step", adagrad_cases, gen_adagrad, run_adagrad, naive_adagrad, 0, 0),
};

/* ctx is a CUDA context and ref_ctx a CPU one (the GPU run); or ctx is a CPU context
   checked against the naive computations (ref_ctx NULL). */
static void test_sweep(dlk_context *ctx, dlk_context *ref_ctx, int quick) {
  sweep_run(ctx, ref_ctx, nn_rows, N_OF(nn_rows), quick);
}

/* ====================================================================================== */
/* 4. Bad input: exact status, a message naming the op, nothing written                    */
/* ====================================================================================== */

/* Every input of the table lives in `in` (and ids/targets in `ids`), every output in
   `out` (0xFF): after each call both pools must be byte-for-byte what they were. */
typedef struct {
  dlk_context *ctx;
  float in[1024], in_copy[1024];
  float out[1024];
  int64_t ids[32], ids_copy[32];
  int32_t ids32[8];
} benv;

static dlk_tensor bt(void *p, dlk_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2) {
  int64_t sh[3] = {d0, d1, d2};
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

/* A GPU variant id of op in this build's table, or -1. */
static int gpu_variant_of(dlk_context *ctx, const char *op) {
  dlk_variant_info v[32];
  int n = 0;
  if (dlk_op_variants(ctx, op, v, 32, &n) != DLK_OK) return -1;
  for (int i = 0; i < n && i < 32; i++)
    if (v[i].device == DLK_CUDA) return v[i].id;
  return -1;
}

#define BAD(w, o, call) \
  do {                  \
    *want = (w);        \
    *op = (o);          \
    return (call);      \
  } while (0)

/* Case k of the table: sets the expected status and the op name the message must hold
   (NULL: no context, no message), returns what the call returned; -1 past the end. */
static int bad_call(benv *e, int k, dlk_status *want, const char **op, char *what, size_t what_len) {
  dlk_context *ctx = e->ctx;
  float *I = e->in, *O = e->out;
  /* valid tensors, each in its own part of the pools */
  dlk_tensor A = bt(I, DLK_F32, 2, 4, 3, 0), Bm = bt(I + 12, DLK_F32, 2, 3, 5, 0), C = bt(O, DLK_F32, 2, 4, 5, 0);
  dlk_tensor X = bt(I + 32, DLK_F32, 3, 2, 3, 4), W = bt(I + 64, DLK_F32, 2, 5, 4, 0), B = bt(I + 96, DLK_F32, 1, 5, 0, 0);
  dlk_tensor Y = bt(O + 32, DLK_F32, 3, 2, 3, 5), Z = bt(O + 64, DLK_F32, 3, 2, 3, 5);
  dlk_tensor DY = bt(I + 128, DLK_F32, 3, 2, 3, 5), ZI = bt(I + 160, DLK_F32, 3, 2, 3, 5);
  dlk_tensor DX = bt(O + 96, DLK_F32, 3, 2, 3, 4), DW = bt(O + 128, DLK_F32, 2, 5, 4, 0), DB = bt(O + 160, DLK_F32, 1, 5, 0, 0);
  dlk_tensor SX = bt(I + 192, DLK_F32, 2, 3, 6, 0), SY = bt(O + 192, DLK_F32, 2, 3, 6, 0);
  dlk_tensor SDY = bt(I + 224, DLK_F32, 2, 3, 6, 0), SDX = bt(O + 224, DLK_F32, 2, 3, 6, 0);
  dlk_tensor LG = bt(I + 256, DLK_F32, 2, 4, 4, 0), TG = bt(e->ids, DLK_I64, 1, 4, 0, 0);
  dlk_tensor LOSS = bt(O + 256, DLK_F32, 0, 0, 0, 0), LOSSN = bt(O + 260, DLK_F32, 1, 4, 0, 0);
  dlk_tensor LSE = bt(O + 272, DLK_F32, 1, 4, 0, 0), DLOSS = bt(I + 288, DLK_F32, 0, 0, 0, 0);
  dlk_tensor DLG = bt(O + 288, DLK_F32, 2, 4, 4, 0);
  dlk_tensor IDS = bt(e->ids + 8, DLK_I64, 1, 5, 0, 0), TAB = bt(I + 320, DLK_F32, 2, 4, 3, 0);
  dlk_tensor EO = bt(O + 320, DLK_F32, 2, 5, 3, 0), EDO = bt(I + 352, DLK_F32, 2, 5, 3, 0);
  dlk_tensor DTAB = bt(O + 352, DLK_F32, 2, 4, 3, 0);
  dlk_tensor LX = bt(I + 384, DLK_F32, 2, 3, 5, 0), GA = bt(I + 400, DLK_F32, 1, 5, 0, 0), BE = bt(I + 416, DLK_F32, 1, 5, 0, 0);
  dlk_tensor LY = bt(O + 384, DLK_F32, 2, 3, 5, 0), MEAN = bt(O + 400, DLK_F32, 1, 3, 0, 0), RSTD = bt(O + 404, DLK_F32, 1, 3, 0, 0);
  dlk_tensor LDY = bt(I + 432, DLK_F32, 2, 3, 5, 0), LM = bt(I + 448, DLK_F32, 1, 3, 0, 0), LR = bt(I + 452, DLK_F32, 1, 3, 0, 0);
  dlk_tensor LDX = bt(O + 416, DLK_F32, 2, 3, 5, 0), DGA = bt(O + 432, DLK_F32, 1, 5, 0, 0), DBE = bt(O + 440, DLK_F32, 1, 5, 0, 0);
  dlk_tensor P = bt(I + 480, DLK_F32, 1, 10, 0, 0), G = bt(I + 496, DLK_F32, 1, 10, 0, 0);
  dlk_tensor M = bt(I + 512, DLK_F32, 1, 10, 0, 0), V = bt(I + 528, DLK_F32, 1, 10, 0, 0), BUF = bt(I + 544, DLK_F32, 1, 10, 0, 0);
  dlk_gemm_params gp = {1, 0};
  dlk_linear_params relu = {DLK_ACT_RELU}, none = {DLK_ACT_NONE};
  dlk_softmax_params sp = {0};
  dlk_cross_entropy_params xp = {DLK_REDUCE_MEAN, -100}, xpn = {DLK_REDUCE_NONE, -100};
  dlk_embedding_params ep = {-1};
  dlk_layernorm_params lp = {1e-5};
  dlk_dropout_params dp = {0.5, 1, 0};
  dlk_sgd_params sgd = {0.1, 0.9, 0, 0, 0, 2};
  dlk_adam_params adam = {1e-3, 0.9, 0.999, 1e-8, 0, 0, 1};
  dlk_adagrad_params ada = {0.1, 0, 0, 1e-10, 1};
  dlk_tensor t, t2;
#define WHAT(s) snprintf(what, what_len, "%s", s)
  switch (k) {
    case 0: WHAT("gemm: b NULL"); BAD(DLK_ERR_NULL_POINTER, "gemm", dlk_gemm(ctx, NULL, &A, NULL, &C));
    case 1: WHAT("gemm: a NULL"); BAD(DLK_ERR_NULL_POINTER, "gemm", dlk_gemm(ctx, &gp, NULL, &Bm, &C));
    case 2: WHAT("gemm: K mismatch"); t = bt(I + 12, DLK_F32, 2, 2, 5, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "gemm", dlk_gemm(ctx, &gp, &A, &t, &C));
    case 3: WHAT("gemm: c has the wrong rows"); t = bt(O, DLK_F32, 2, 3, 5, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "gemm", dlk_gemm(ctx, &gp, &A, &Bm, &t));
    case 4: WHAT("gemm: b is f16"); t = Bm, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "gemm", dlk_gemm(ctx, &gp, &A, &t, &C));
    case 5: WHAT("gemm: alpha NaN"); gp.alpha = NAN; BAD(DLK_ERR_NOT_FINITE, "gemm", dlk_gemm(ctx, &gp, &A, &Bm, &C));
    case 6: WHAT("gemm: c broadcast (stride 0)"); t = C, t.strides[0] = 0;
      BAD(DLK_ERR_LAYOUT, "gemm", dlk_gemm(ctx, &gp, &A, &Bm, &t));
    case 7: WHAT("gemm: c overlaps a"); t = bt(I + 4, DLK_F32, 2, 4, 5, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "gemm", dlk_gemm(ctx, &gp, &A, &Bm, &t));
    case 8: WHAT("gemm: a is 4-D"); t = bt(I, DLK_F32, 3, 1, 4, 3), t.ndim = 4, t.shape[3] = 1, t.strides[3] = 1;
      BAD(DLK_ERR_SHAPE_MISMATCH, "gemm", dlk_gemm(ctx, &gp, &t, &Bm, &C));
    case 9: WHAT("linear_forward: x has 300 columns, w has 299"); t = bt(I, DLK_F32, 2, 1, 300, 0);
      t2 = bt(I + 300, DLK_F32, 2, 1, 299, 0);
      {
        dlk_tensor y1 = bt(O, DLK_F32, 2, 1, 1, 0);
        dlk_status s = dlk_linear_forward(ctx, &none, &t, &t2, NULL, &y1, NULL);
        CHECK(strstr(dlk_context_last_error(ctx), "x has 300 columns, w has 299") != NULL, "message: %s",
              dlk_context_last_error(ctx));
        BAD(DLK_ERR_SHAPE_MISMATCH, "linear_forward", s);
      }
    case 10: WHAT("linear_forward: w on a CUDA device"); t = W, t.device = (dlk_device){DLK_CUDA, 0};
      BAD(DLK_ERR_DEVICE_MISMATCH, "linear_forward", dlk_linear_forward(ctx, &relu, &X, &t, &B, &Y, &Z));
    case 11: WHAT("linear_forward: bias has 4 elements"); t = bt(I + 96, DLK_F32, 1, 4, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "linear_forward", dlk_linear_forward(ctx, &relu, &X, &W, &t, &Y, &Z));
    case 12: WHAT("linear_forward: activation 99"); relu.act = (dlk_activation)99;
      BAD(DLK_ERR_INVALID_ARGUMENT, "linear_forward", dlk_linear_forward(ctx, &relu, &X, &W, &B, &Y, &Z));
    case 13: WHAT("linear_forward: y has a negative dim"); t = Y, t.shape[0] = -2;
      BAD(DLK_ERR_INVALID_ARGUMENT, "linear_forward", dlk_linear_forward(ctx, &relu, &X, &W, &B, &t, &Z));
    case 14: WHAT("linear_forward: y's rows overlap (row stride 0)"); t = Y, t.strides[t.ndim - 2] = 0;
      BAD(DLK_ERR_LAYOUT, "linear_forward", dlk_linear_forward(ctx, &relu, &X, &W, &B, &t, &Z));
    case 15: WHAT("linear_backward: relu without z");
      BAD(DLK_ERR_NULL_POINTER, "linear_backward", dlk_linear_backward(ctx, &relu, &X, &W, NULL, &DY, &DX, &DW, &DB));
    case 16: WHAT("linear_backward: dw has the wrong shape (dx valid, must stay untouched)");
      t = bt(O + 128, DLK_F32, 2, 4, 5, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "linear_backward", dlk_linear_backward(ctx, &relu, &X, &W, &ZI, &DY, &DX, &t, &DB));
    case 17: WHAT("linear_backward: db overlaps dx"); t = bt(O + 98, DLK_F32, 1, 5, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "linear_backward", dlk_linear_backward(ctx, &relu, &X, &W, &ZI, &DY, &DX, &DW, &t));
    case 18: WHAT("bias_act_forward: y shape mismatch"); t = bt(O + 192, DLK_F32, 2, 6, 3, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "bias_act_forward", dlk_bias_act_forward(ctx, &(dlk_bias_act_params){DLK_ACT_GELU}, &SX, NULL, &t));
    case 19: WHAT("bias_act_backward: dx NULL");
      BAD(DLK_ERR_NULL_POINTER, "bias_act_backward", dlk_bias_act_backward(ctx, &(dlk_bias_act_params){DLK_ACT_TANH}, &SX, NULL, &SDY, NULL, NULL));
    case 20: WHAT("softmax_forward: x is i32"); t = SX, t.dtype = DLK_I32;
      BAD(DLK_ERR_DTYPE_MISMATCH, "softmax_forward", dlk_softmax_forward(ctx, &sp, &t, &SY));
    case 21: WHAT("softmax_forward: sizes overflow"); t = SX, t.shape[0] = INT64_MAX / 2, t.strides[0] = 6;
      BAD(DLK_ERR_OVERFLOW, "softmax_forward", dlk_softmax_forward(ctx, &sp, &t, &SY));
    case 22: WHAT("softmax_backward: dx is f64"); t = SDX, t.dtype = DLK_F64;
      BAD(DLK_ERR_DTYPE_MISMATCH, "softmax_backward", dlk_softmax_backward(ctx, &sp, &SX, &SDY, &t));
    case 23: WHAT("softmax_forward: y NULL (NULL params are the defaults)");
      BAD(DLK_ERR_NULL_POINTER, "softmax_forward", dlk_softmax_forward(ctx, NULL, &SX, NULL));
    case 24: WHAT("cross_entropy_forward: target 7 >= C");
      e->ids[2] = 7;
      {
        dlk_status s = dlk_cross_entropy_forward(ctx, &xp, &LG, &TG, &LOSS, &LSE);
        CHECK(strstr(dlk_context_last_error(ctx), "targets[2] = 7") != NULL, "message names row and value: %s",
              dlk_context_last_error(ctx));
        BAD(DLK_ERR_OUT_OF_RANGE, "cross_entropy_forward", s);
      }
    case 25: WHAT("cross_entropy_forward: target -3 (not ignore_index)"); e->ids[1] = -3;
      BAD(DLK_ERR_OUT_OF_RANGE, "cross_entropy_forward", dlk_cross_entropy_forward(ctx, &xpn, &LG, &TG, &LOSSN, NULL));
    case 26: WHAT("cross_entropy_forward: targets are f32"); t = bt(I + 300, DLK_F32, 1, 4, 0, 0);
      BAD(DLK_ERR_DTYPE_MISMATCH, "cross_entropy_forward", dlk_cross_entropy_forward(ctx, &xp, &LG, &t, &LOSS, NULL));
    case 27: WHAT("cross_entropy_forward: NONE loss has 3 elements"); t = bt(O + 260, DLK_F32, 1, 3, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "cross_entropy_forward", dlk_cross_entropy_forward(ctx, &xpn, &LG, &TG, &t, NULL));
    case 28: WHAT("cross_entropy_forward: loss is f16"); t = LOSS, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "cross_entropy_forward", dlk_cross_entropy_forward(ctx, &xp, &LG, &TG, &t, NULL));
    case 29: WHAT("cross_entropy_backward: target 4 >= C"); e->ids[3] = 4;
      BAD(DLK_ERR_OUT_OF_RANGE, "cross_entropy_backward", dlk_cross_entropy_backward(ctx, &xp, &LG, &TG, &DLOSS, &DLG));
    case 30: WHAT("cross_entropy_forward: reduction 7"); xp.reduction = (dlk_reduction)7;
      BAD(DLK_ERR_INVALID_ARGUMENT, "cross_entropy_forward", dlk_cross_entropy_forward(ctx, &xp, &LG, &TG, &LOSS, NULL));
    case 31: WHAT("embedding_forward: id 9 >= V"); e->ids[10] = 9;
      {
        dlk_status s = dlk_embedding_forward(ctx, &ep, &IDS, &TAB, &EO);
        CHECK(strstr(dlk_context_last_error(ctx), "ids[2] = 9") != NULL, "message: %s", dlk_context_last_error(ctx));
        BAD(DLK_ERR_OUT_OF_RANGE, "embedding_forward", s);
      }
    case 32: WHAT("embedding_backward: id -1"); e->ids[12] = -1;
      BAD(DLK_ERR_OUT_OF_RANGE, "embedding_backward", dlk_embedding_backward(ctx, &ep, &IDS, &EDO, &DTAB));
    case 33: WHAT("embedding_backward: padding_idx == V"); ep.padding_idx = 4;
      BAD(DLK_ERR_OUT_OF_RANGE, "embedding_backward", dlk_embedding_backward(ctx, &ep, &IDS, &EDO, &DTAB));
    case 34: WHAT("embedding_forward: padding_idx -5"); ep.padding_idx = -5;
      BAD(DLK_ERR_OUT_OF_RANGE, "embedding_forward", dlk_embedding_forward(ctx, &ep, &IDS, &TAB, &EO));
    case 35: WHAT("embedding_forward: out has D 4"); t = bt(O + 320, DLK_F32, 2, 5, 4, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "embedding_forward", dlk_embedding_forward(ctx, &ep, &IDS, &TAB, &t));
    case 36: WHAT("layernorm_forward: eps NaN"); lp.eps = NAN;
      BAD(DLK_ERR_NOT_FINITE, "layernorm_forward", dlk_layernorm_forward(ctx, &lp, &LX, &GA, &BE, &LY, &MEAN, &RSTD));
    case 37: WHAT("layernorm_forward: eps -1"); lp.eps = -1;
      BAD(DLK_ERR_INVALID_ARGUMENT, "layernorm_forward", dlk_layernorm_forward(ctx, &lp, &LX, &GA, &BE, &LY, &MEAN, &RSTD));
    case 38: WHAT("layernorm_forward: gamma has 6 elements"); t = bt(I + 400, DLK_F32, 1, 6, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "layernorm_forward", dlk_layernorm_forward(ctx, &lp, &LX, &t, &BE, &LY, &MEAN, &RSTD));
    case 39: WHAT("layernorm_forward: mean is f16"); t = MEAN, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "layernorm_forward", dlk_layernorm_forward(ctx, &lp, &LX, &GA, &BE, &LY, &t, &RSTD));
    case 40: WHAT("layernorm_backward: rstd NULL");
      BAD(DLK_ERR_NULL_POINTER, "layernorm_backward",
          dlk_layernorm_backward(ctx, &lp, &LX, &GA, &LM, NULL, &LDY, &LDX, &DGA, &DBE));
    case 41: WHAT("layernorm_backward: dgamma overlaps dx"); t = bt(O + 420, DLK_F32, 1, 5, 0, 0);
      BAD(DLK_ERR_INVALID_ARGUMENT, "layernorm_backward",
          dlk_layernorm_backward(ctx, &lp, &LX, &GA, &LM, &LR, &LDY, &LDX, &t, &DBE));
    case 42: WHAT("dropout_forward: prob 1"); dp.prob = 1.0;
      BAD(DLK_ERR_INVALID_ARGUMENT, "dropout_forward", dlk_dropout_forward(ctx, &dp, &SX, &SY));
    case 43: WHAT("dropout_forward: prob -0.1"); dp.prob = -0.1;
      BAD(DLK_ERR_INVALID_ARGUMENT, "dropout_forward", dlk_dropout_forward(ctx, &dp, &SX, &SY));
    case 44: WHAT("dropout_backward: prob NaN"); dp.prob = NAN;
      BAD(DLK_ERR_INVALID_ARGUMENT, "dropout_backward", dlk_dropout_backward(ctx, &dp, &SDY, &SDX));
    case 45: WHAT("dropout_backward: shape mismatch"); t = bt(O + 224, DLK_F32, 2, 6, 3, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "dropout_backward", dlk_dropout_backward(ctx, &dp, &SDY, &t));
    case 46: WHAT("sgd_step: momentum without a buffer");
      BAD(DLK_ERR_NULL_POINTER, "sgd_step", dlk_sgd_step(ctx, &sgd, &P, &G, NULL));
    case 47: WHAT("sgd_step: nesterov with dampening"); sgd.nesterov = 1, sgd.dampening = 0.1;
      BAD(DLK_ERR_INVALID_ARGUMENT, "sgd_step", dlk_sgd_step(ctx, &sgd, &P, &G, &BUF));
    case 48: WHAT("sgd_step: lr inf"); sgd.lr = INFINITY;
      BAD(DLK_ERR_NOT_FINITE, "sgd_step", dlk_sgd_step(ctx, &sgd, &P, &G, &BUF));
    case 49: WHAT("adam_step: beta1 1"); adam.beta1 = 1.0;
      BAD(DLK_ERR_INVALID_ARGUMENT, "adam_step", dlk_adam_step(ctx, &adam, &P, &G, &M, &V));
    case 50: WHAT("adam_step: step 0"); adam.step = 0;
      BAD(DLK_ERR_INVALID_ARGUMENT, "adam_step", dlk_adam_step(ctx, &adam, &P, &G, &M, &V));
    case 51: WHAT("adam_step: exp_avg is f16"); t = M, t.dtype = DLK_F16;
      BAD(DLK_ERR_DTYPE_MISMATCH, "adam_step", dlk_adam_step(ctx, &adam, &P, &G, &t, &V));
    case 52: WHAT("adam_step: param's elements overlap (stride 0)"); t = bt(I + 480, DLK_F32, 1, 5, 0, 0), t.strides[0] = 0;
      t2 = bt(I + 496, DLK_F32, 1, 5, 0, 0);
      {
        dlk_tensor m5 = bt(I + 512, DLK_F32, 1, 5, 0, 0), v5 = bt(I + 528, DLK_F32, 1, 5, 0, 0);
        BAD(DLK_ERR_LAYOUT, "adam_step", dlk_adam_step(ctx, &adam, &t, &t2, &m5, &v5));
      }
    case 53: WHAT("adagrad_step: state_sum has 9 elements"); t = bt(I + 544, DLK_F32, 1, 9, 0, 0);
      BAD(DLK_ERR_SHAPE_MISMATCH, "adagrad_step", dlk_adagrad_step(ctx, &ada, &P, &G, &t));
    case 54: WHAT("adagrad_step: state_sum is the grad"); BAD(DLK_ERR_INVALID_ARGUMENT, "adagrad_step", dlk_adagrad_step(ctx, &ada, &P, &G, &G));
    case 55: WHAT("NULL context"); BAD(DLK_ERR_NULL_POINTER, NULL, dlk_softmax_forward(NULL, &sp, &SX, &SY));
    case 56: {
      /* A forced variant that cannot run this call: a GPU row on this CPU context, or (in a
         CPU-only build, where the table has none) forcing an id the op lacks. */
      int gid = gpu_variant_of(ctx, "softmax_fwd");
      if (gid < 0) {
        WHAT("force softmax_fwd:7 (no such variant)");
        BAD(DLK_ERR_INVALID_ARGUMENT, "softmax_fwd", dlk_force_variant(ctx, "softmax_fwd", 7));
      }
      WHAT("forced GPU variant on a CPU context");
      CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_fwd", gid));
      dlk_status s = dlk_softmax_forward(ctx, &sp, &SX, &SY);
      CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_fwd", -1));
      /* the message is the call's, not the unforce's */
      BAD(DLK_ERR_NOT_SUPPORTED, "softmax_fwd", s);
    }
    case 57: WHAT("explain mode still checks arguments");
      CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
      {
        t = SX, t.dtype = DLK_U8;
        dlk_status s = dlk_softmax_forward(ctx, &sp, &t, &SY);
        dlk_explain_mode(ctx, 0);
        BAD(DLK_ERR_DTYPE_MISMATCH, "softmax_forward", s);
      }
    case 58: WHAT("embedding_forward: ids 8-D"); t = bt(e->ids + 8, DLK_I64, 1, 1, 0, 0), t.ndim = 8;
      for (int q = 0; q < 8; q++) t.shape[q] = 1, t.strides[q] = 1;
      BAD(DLK_ERR_SHAPE_MISMATCH, "embedding_forward", dlk_embedding_forward(ctx, &ep, &t, &TAB, &EO));
    case 59: WHAT("gemm: c is NULL data with elements"); t = C, t.data = NULL;
      BAD(DLK_ERR_NULL_POINTER, "gemm", dlk_gemm(ctx, &gp, &A, &Bm, &t));
    default: return -1;
  }
#undef WHAT
}

static void test_bad_input(dlk_context *ctx) {
  benv *e = calloc(1, sizeof *e);
  e->ctx = ctx;
  for (int i = 0; i < 1024; i++) e->in[i] = (float)t_uniform(0.1, 1); /* > 0: valid variances too */
  int64_t ids[32] = {0, 3, -100, 1, 0, 0, 0, 0, 0, 2, 1, 2, 3};
  memcpy(e->ids, ids, sizeof ids);
  int n = 0;
  for (int k = 0;; k++) {
    memcpy(e->in_copy, e->in, sizeof e->in);
    memcpy(e->ids_copy, e->ids, sizeof e->ids);
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
    for (int i = 0; i < 1024; i++) {
      uint32_t b;
      memcpy(&b, &e->out[i], 4);
      out_dirty += b != 0xFFFFFFFFu;
    }
    CHECK(out_dirty == 0, "%d output floats written", out_dirty);
    /* the data-dependent cases changed ids on purpose before the call; compare after
       restoring only what this case set */
    CHECK(memcmp(e->in, e->in_copy, sizeof e->in) == 0, "inputs changed");
    CHECK(memcmp(e->ids, e->ids_copy, sizeof e->ids) == 0 || k == 24 || k == 25 || k == 29 || k == 31 || k == 32,
          "ids changed");
    memcpy(e->ids, ids, sizeof ids);
  }
  t_case = "bad input";
  CHECK(n >= 30, "only %d bad-input cases", n);
  /* the context still works after all of that: a softmax against the naive one */
  dlk_tensor x = bt(e->in + 192, DLK_F32, 2, 3, 6, 0), y = bt(e->out + 192, DLK_F32, 2, 3, 6, 0);
  dlk_softmax_params sp = {0};
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &x, &y));
  double xd[18], want[18], got[18];
  for (int i = 0; i < 18; i++) xd[i] = e->in[192 + i], got[i] = e->out[192 + i];
  softmax_rows(xd, want, 3, 6, 0);
  t_close("softmax after the failures", got, want, 18, 1e-6, 1e-6);
  printf("bad input: %d cases\n", n);
  free(e);
}

/* ====================================================================================== */
/* 5. Explain, the autotune cache on a CPU context, the dropout RNG                        */
/* ====================================================================================== */

static void test_explain(dlk_context *ctx) {
  t_case = "explain";
  float x[12], y[12];
  for (int i = 0; i < 12; i++) x[i] = (float)i;
  memset(y, 0xFF, sizeof y);
  dlk_tensor tx = bt(x, DLK_F32, 2, 3, 4, 0), ty = bt(y, DLK_F32, 2, 3, 4, 0);
  dlk_softmax_params sp = {1};
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  const char *report = NULL;
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(report && strstr(report, "softmax_fwd") != NULL, "report names the op:\n%s", report);
  dlk_variant_info vs[32];
  int nv = 0;
  CHECK_OK(ctx, dlk_op_variants(ctx, "softmax_fwd", vs, 32, &nv));
  for (int i = 0; i < nv && i < 32; i++) {
    char line[64];
    snprintf(line, sizeof line, "%2d %-14s ", vs[i].id, vs[i].name);
    const char *l = report ? strstr(report, line) : NULL;
    CHECK(l != NULL, "variant %d %s listed:\n%s", vs[i].id, vs[i].name, report);
    /* each variant line says supported, or not supported with a reason */
    if (l) CHECK(strncmp(l + strlen(line), "supported", 9) == 0 || strncmp(l + strlen(line), "not supported: ", 15) == 0,
                 "variant %d has a verdict: %s", vs[i].id, l);
  }
  CHECK(report && strstr(report, "AUTO would run: 0") != NULL, "AUTO line:\n%s", report);
  int dirty = 0;
  for (int i = 0; i < 12; i++) {
    uint32_t b;
    memcpy(&b, &y[i], 4);
    dirty += b != 0xFFFFFFFFu;
  }
  CHECK(dirty == 0, "explain mode wrote %d outputs", dirty);
  /* a composite op reports every step */
  float lx[8], lw[6], lz[12], ldy[12], ldx[8], ldw[6], ldb[3];
  for (int i = 0; i < 8; i++) lx[i] = 0.1f * (float)i;
  for (int i = 0; i < 6; i++) lw[i] = 0.2f * (float)i;
  for (int i = 0; i < 12; i++) lz[i] = (float)i - 6, ldy[i] = 1;
  dlk_tensor X = bt(lx, DLK_F32, 2, 4, 2, 0), W = bt(lw, DLK_F32, 2, 3, 2, 0), Z = bt(lz, DLK_F32, 2, 4, 3, 0);
  dlk_tensor DY = bt(ldy, DLK_F32, 2, 4, 3, 0), DX = bt(ldx, DLK_F32, 2, 4, 2, 0), DW = bt(ldw, DLK_F32, 2, 3, 2, 0);
  dlk_tensor DB = bt(ldb, DLK_F32, 1, 3, 0, 0);
  dlk_linear_params lp = {DLK_ACT_GELU};
  CHECK_OK(ctx, dlk_linear_backward(ctx, &lp, &X, &W, &Z, &DY, &DX, &DW, &DB));
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  const char *g1 = report ? strstr(report, "gemm on") : NULL;
  CHECK(report && strstr(report, "bias_act_bwd on") != NULL && g1 && strstr(g1 + 1, "gemm on") != NULL,
        "linear_backward explains its three steps:\n%s", report);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  CHECK(!isnan(y[0]), "runs again once explain is off");
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h ? h : 1;
}

/* On a CPU context nothing is timed, so the cache only changes through files: build one
   for the key explain reports, load it, and check that AUTO takes it from the cache and
   that a save/load round trip keeps it. */
static void test_autotune_cpu(dlk_context *ctx) {
  t_case = "autotune (cpu)";
  float x[64], y[64];
  for (int i = 0; i < 64; i++) x[i] = (float)t_uniform(-1, 1);
  dlk_tensor tx = bt(x, DLK_F32, 2, 8, 8, 0), ty = bt(y, DLK_F32, 2, 8, 8, 0);
  dlk_softmax_params sp = {0};
  CHECK_OK(ctx, dlk_autotune_clear(ctx));
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  int n = -1;
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 0, "a CPU context does not autotune (%d entries)", n);
  const char *report = NULL;
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  const char *k0 = report ? strstr(report, "(key ") : NULL;
  const char *k1 = k0 ? strchr(k0, ')') : NULL;
  CHECK(k0 && k1, "explain gives the key:\n%s", report);
  if (!k0 || !k1) {
    dlk_explain_mode(ctx, 0);
    return;
  }
  char key[512];
  snprintf(key, sizeof key, "%.*s", (int)(k1 - k0 - 5), k0 + 5);
  CHECK(strncmp(key, "softmax_fwd|", 12) == 0 && strstr(key, "r8_c8_f32") != NULL, "key %s", key);
  char body[1024], path[128];
  snprintf(body, sizeof body, "dlk-autotune 1\ndevice cpu\n%s 0\n", key);
  snprintf(path, sizeof path, "/tmp/dlk-test-nn-cpu-tune-%d.txt", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f) {
    fprintf(f, "%schecksum %016" PRIx64 "\n", body, fnv1a(body, strlen(body)));
    fclose(f);
  }
  CHECK_OK(ctx, dlk_autotune_load(ctx, path));
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 1, "one entry loaded (%d)", n);
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(report && strstr(report, "AUTO would run: 0 (autotune cache)") != NULL, "cache hit:\n%s", report);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  CHECK_OK(ctx, dlk_autotune_save(ctx, path));
  CHECK_OK(ctx, dlk_autotune_clear(ctx));
  CHECK_OK(ctx, dlk_autotune_load(ctx, path));
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 1, "round trip keeps the entry (%d)", n);
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  const char *op = NULL;
  int id = -1;
  CHECK_OK(ctx, dlk_last_variant(ctx, &op, &id));
  CHECK(op && strcmp(op, "softmax_fwd") == 0 && id == 0, "ran %s/%d", op ? op : "?", id);
  /* an entry naming a variant the op lacks: the file is refused, the cache kept */
  snprintf(body, sizeof body, "dlk-autotune 1\ndevice cpu\n%s 42\n", key);
  f = fopen(path, "wb");
  if (f) {
    fprintf(f, "%schecksum %016" PRIx64 "\n", body, fnv1a(body, strlen(body)));
    fclose(f);
  }
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_autotune_load(ctx, path));
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 1, "refused file leaves the cache (%d)", n);
  remove(path);
  CHECK_OK(ctx, dlk_autotune_clear(ctx));
}

/* NULL params mean the defaults include/dlk.h documents: every op called with NULL and
   with those defaults written out gives the same bits. */
static void test_null_params(dlk_context *ctx) {
  t_case = "NULL params";
  enum { N = 24 };
  double in[N], in2[N], wv[36], ya[N], yb[N], sa[N], sb[N], s2a[N], s2b[N];
  int64_t ids[4] = {0, 2, 1, 3}, tg[4] = {1, 0, 5, -100};
  for (int i = 0; i < N; i++) in[i] = sin(i + 1.0), in2[i] = cos(2.0 * i) * 0.5;
  for (int i = 0; i < 36; i++) wv[i] = cos(0.3 * i);
  dlk_tensor x = bt(in, DLK_F64, 2, 4, 6, 0), w = bt(wv, DLK_F64, 2, 6, 6, 0);
  dlk_tensor A = bt(ya, DLK_F64, 2, 4, 6, 0), B = bt(yb, DLK_F64, 2, 4, 6, 0);
#define SAME(what, call_null, call_def)                                                     \
  do {                                                                                      \
    memset(ya, 0, sizeof ya), memset(yb, 0, sizeof yb);                                     \
    CHECK_OK(ctx, call_null);                                                               \
    CHECK_OK(ctx, call_def);                                                                \
    CHECK(memcmp(ya, yb, sizeof ya) == 0, "%s: NULL params differ from the defaults", what); \
  } while (0)
  dlk_gemm_params gp = {1, 0};
  dlk_tensor A6 = bt(ya, DLK_F64, 2, 4, 6, 0), B6 = bt(yb, DLK_F64, 2, 4, 6, 0);
  SAME("gemm", dlk_gemm(ctx, NULL, &x, &w, &A6), dlk_gemm(ctx, &gp, &x, &w, &B6));
  dlk_linear_params lp = {DLK_ACT_NONE};
  SAME("linear_forward", dlk_linear_forward(ctx, NULL, &x, &w, NULL, &A, NULL),
       dlk_linear_forward(ctx, &lp, &x, &w, NULL, &B, NULL));
  dlk_bias_act_params bp = {DLK_ACT_NONE};
  SAME("bias_act_forward", dlk_bias_act_forward(ctx, NULL, &x, NULL, &A), dlk_bias_act_forward(ctx, &bp, &x, NULL, &B));
  dlk_softmax_params sp = {0};
  SAME("softmax_forward", dlk_softmax_forward(ctx, NULL, &x, &A), dlk_softmax_forward(ctx, &sp, &x, &B));
  dlk_layernorm_params lnp = {1e-5};
  SAME("layernorm_forward", dlk_layernorm_forward(ctx, NULL, &x, NULL, NULL, &A, NULL, NULL),
       dlk_layernorm_forward(ctx, &lnp, &x, NULL, NULL, &B, NULL, NULL));
  dlk_dropout_params dp = {0.5, 0, 0};
  SAME("dropout_forward", dlk_dropout_forward(ctx, NULL, &x, &A), dlk_dropout_forward(ctx, &dp, &x, &B));
  dlk_tensor tids = bt(ids, DLK_I64, 1, 4, 0, 0), table = bt(in, DLK_F64, 2, 4, 6, 0);
  dlk_embedding_params ep = {-1};
  SAME("embedding_forward", dlk_embedding_forward(ctx, NULL, &tids, &table, &A),
       dlk_embedding_forward(ctx, &ep, &tids, &table, &B));
  dlk_tensor ttg = bt(tg, DLK_I64, 1, 4, 0, 0), la = bt(ya, DLK_F64, 0, 0, 0, 0), lb = bt(yb, DLK_F64, 0, 0, 0, 0);
  dlk_cross_entropy_params xp = {DLK_REDUCE_MEAN, -100};
  SAME("cross_entropy_forward (target -100 ignored)", dlk_cross_entropy_forward(ctx, NULL, &x, &ttg, &la, NULL),
       dlk_cross_entropy_forward(ctx, &xp, &x, &ttg, &lb, NULL));
  /* optimizers: same start, one step each */
  dlk_tensor g = bt(in2, DLK_F64, 1, N, 0, 0), pa = bt(ya, DLK_F64, 1, N, 0, 0), pb = bt(yb, DLK_F64, 1, N, 0, 0);
  dlk_tensor ma = bt(sa, DLK_F64, 1, N, 0, 0), mb = bt(sb, DLK_F64, 1, N, 0, 0);
  dlk_tensor va = bt(s2a, DLK_F64, 1, N, 0, 0), vb = bt(s2b, DLK_F64, 1, N, 0, 0);
#define START() memcpy(ya, in, sizeof ya), memcpy(yb, in, sizeof yb), memset(sa, 0, sizeof sa), memset(sb, 0, sizeof sb), \
                memset(s2a, 0, sizeof s2a), memset(s2b, 0, sizeof s2b)
  dlk_sgd_params sgd = {1e-3, 0, 0, 0, 0, 1};
  START();
  CHECK_OK(ctx, dlk_sgd_step(ctx, NULL, &pa, &g, NULL));
  CHECK_OK(ctx, dlk_sgd_step(ctx, &sgd, &pb, &g, NULL));
  CHECK(memcmp(ya, yb, sizeof ya) == 0 && memcmp(ya, in, sizeof ya) != 0, "sgd_step: NULL params differ");
  dlk_adam_params adam = {1e-3, 0.9, 0.999, 1e-8, 0, 0, 1};
  START();
  CHECK_OK(ctx, dlk_adam_step(ctx, NULL, &pa, &g, &ma, &va));
  CHECK_OK(ctx, dlk_adam_step(ctx, &adam, &pb, &g, &mb, &vb));
  CHECK(memcmp(ya, yb, sizeof ya) == 0 && memcmp(sa, sb, sizeof sa) == 0, "adam_step: NULL params differ");
  dlk_adagrad_params ada = {1e-2, 0, 0, 1e-10, 1};
  START();
  CHECK_OK(ctx, dlk_adagrad_step(ctx, NULL, &pa, &g, &ma));
  CHECK_OK(ctx, dlk_adagrad_step(ctx, &ada, &pb, &g, &mb));
  CHECK(memcmp(ya, yb, sizeof ya) == 0 && memcmp(sa, sb, sizeof sa) == 0, "adagrad_step: NULL params differ");
#undef START
#undef SAME
  (void)A, (void)B;
}

static void test_dropout_rng(dlk_context *ctx) {
  t_case = "dropout rng";
  int mismatch = 0, out_of_range = 0;
  double sum = 0;
  for (uint64_t i = 0; i < 100000; i++) {
    uint64_t seed = i * 0x12345ULL, ctr = i * 7919ULL + (i << 40);
    double u = dlk_dropout_uniform(seed, ctr);
    mismatch += u != ref_uniform(seed, ctr);
    out_of_range += !(u >= 0 && u < 1);
    sum += dlk_dropout_uniform(42, i);
  }
  CHECK(mismatch == 0, "%d draws differ from the documented formula", mismatch);
  CHECK(out_of_range == 0, "%d draws outside [0, 1)", out_of_range);
  CHECK(fabs(sum / 100000 - 0.5) < 0.005, "mean of 1e5 draws %.4f", sum / 100000);
  /* the kept fraction of a large tensor is 1 - p, and kept values are scaled */
  enum { N = 200000 };
  float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) x[i] = 1.0f;
  dlk_tensor tx = bt(x, DLK_F32, 1, N, 0, 0), ty = bt(y, DLK_F32, 1, N, 0, 0);
  dlk_dropout_params p = {0.3, 2024, 5};
  CHECK_OK(ctx, dlk_dropout_forward(ctx, &p, &tx, &ty));
  int kept = 0, bad = 0;
  for (int i = 0; i < N; i++) {
    kept += y[i] != 0;
    bad += y[i] != 0 && fabsf(y[i] - (float)(1 / 0.7)) > 1e-6f;
  }
  CHECK(fabs((double)kept / N - 0.7) < 0.005, "kept fraction %.4f for p = 0.3", (double)kept / N);
  CHECK(bad == 0, "%d kept values not scaled by 1/(1-p)", bad);
  /* same (seed, offset) -> same mask; in place equals out of place */
  CHECK_OK(ctx, dlk_dropout_forward(ctx, &p, &tx, &tx));
  CHECK(memcmp(x, y, N * sizeof(float)) == 0, "in-place dropout differs from out-of-place");
  free(x);
  free(y);
}


/* ====================================================================================== */
/* GPU-only bad input: host tensors on a CUDA context, the CPU row forced there, and ids /  */
/* targets out of range through every variant (checked on the device)                      */
/* ====================================================================================== */

static void gpu_bad_ids(dlk_context *g, const char *label, const char *force, const void *c, int64_t rows,
                        void (*gen)(const void *, dlk_dtype, sweep_set *),
                        dlk_status (*run)(dlk_context *, const void *, dlk_dtype, const sweep_set *, sweep_set *),
                        int which, double bad_value, const char *msg_op) {
  sweep_set in = {.n = 0};
  gen(c, DLK_F32, &in);
  in.a[which].v[rows > 2 ? 2 : 0] = bad_value;
  dlk_variant_info vs[32];
  int nv = 0;
  CHECK_OK(g, dlk_op_variants(g, force, vs, 32, &nv));
  for (int k = -1; k < nv && k < 32; k++) {
    if (k >= 0 && vs[k].device != DLK_CUDA) continue;
    snprintf(t_case_buf, sizeof t_case_buf, "gpu bad ids: %s %s = %g, variant %s", label, which ? "target" : "id",
             bad_value, k < 0 ? "AUTO" : vs[k].name);
    t_case = t_case_buf;
    if (k >= 0) CHECK_OK(g, dlk_force_variant(g, force, vs[k].id));
    sweep_set out = {.n = 0};
    dlk_status s = run(g, c, DLK_F32, &in, &out); /* sweep_end checks the outputs stay untouched */
    sweep_free(&out);
    if (k >= 0) CHECK_OK(g, dlk_force_variant(g, force, -1));
    if (s == DLK_ERR_NOT_SUPPORTED && k >= 0) continue;
    CHECK(s == DLK_ERR_OUT_OF_RANGE, "got %s: %s", dlk_status_string(s), dlk_context_last_error(g));
    CHECK(strstr(dlk_context_last_error(g), msg_op) != NULL, "message names %s: %s", msg_op, dlk_context_last_error(g));
  }
  sweep_free(&in);
}

static void test_gpu_bad(dlk_context *g) {
  t_case = "gpu bad input";
  /* host tensors on a CUDA context */
  float hx[12], hy[12];
  for (int i = 0; i < 12; i++) hx[i] = (float)i;
  memset(hy, 0xFF, sizeof hy);
  dlk_tensor x = bt(hx, DLK_F32, 2, 3, 4, 0), y = bt(hy, DLK_F32, 2, 3, 4, 0);
  dlk_softmax_params sp = {0};
  CHECK_STATUS(g, DLK_ERR_DEVICE_MISMATCH, dlk_softmax_forward(g, &sp, &x, &y));
  CHECK(strstr(dlk_context_last_error(g), "softmax_forward") != NULL, "message: %s", dlk_context_last_error(g));
  int dirty = 0;
  for (int i = 0; i < 12; i++) {
    uint32_t b;
    memcpy(&b, &hy[i], 4);
    dirty += b != 0xFFFFFFFFu;
  }
  CHECK(dirty == 0, "host output written by a refused call");
  /* the CPU reference forced on a CUDA context */
  static const softmax_fwd_case sm = {.rows = 3, .cols = 4};
  sweep_set in = {.n = 0}, out = {.n = 0};
  gen_softmax_fwd(&sm, DLK_F32, &in);
  CHECK_OK(g, dlk_force_variant(g, "softmax_fwd", 0));
  dlk_status s = run_softmax_fwd(g, &sm, DLK_F32, &in, &out);
  CHECK(s == DLK_ERR_NOT_SUPPORTED, "cpu_ref forced on a CUDA context: %s", dlk_status_string(s));
  CHECK(strstr(dlk_context_last_error(g), "softmax_fwd") != NULL, "message: %s", dlk_context_last_error(g));
  CHECK_OK(g, dlk_force_variant(g, "softmax_fwd", -1));
  sweep_free(&in);
  sweep_free(&out);
  /* ids and targets out of range, every variant: OUT_OF_RANGE (or NOT_SUPPORTED when
     forced), outputs untouched */
  static const cross_entropy_case xc = {.n = 6, .classes = 5, .reduction = DLK_REDUCE_MEAN, .want_lse = true};
  static const embedding_case ec = {.n = 7, .vocab = 5, .dim = 4};
  gpu_bad_ids(g, "cross_entropy_fwd", "cross_entropy_fwd", &xc, xc.n, gen_xent_fwd, run_xent_fwd, 1, 5, "cross_entropy");
  gpu_bad_ids(g, "cross_entropy_fwd", "cross_entropy_fwd", &xc, xc.n, gen_xent_fwd, run_xent_fwd, 1, -7, "cross_entropy");
  gpu_bad_ids(g, "cross_entropy_bwd", "cross_entropy_bwd", &xc, xc.n, gen_xent_bwd, run_xent_bwd, 1, 5, "cross_entropy");
  gpu_bad_ids(g, "embedding_fwd", "embedding_fwd", &ec, ec.n, gen_emb_fwd, run_emb_fwd, 0, 5, "embedding");
  gpu_bad_ids(g, "embedding_bwd", "embedding_bwd", &ec, ec.n, gen_emb_bwd, run_emb_bwd, 0, -1, "embedding");
  /* and the context still works */
  t_case = "gpu bad input: afterwards";
  gen_softmax_fwd(&sm, DLK_F32, &in);
  sweep_set ref = {.n = 0};
  naive_softmax_fwd(&sm, DLK_F32, &in, &ref);
  CHECK_OK(g, run_softmax_fwd(g, &sm, DLK_F32, &in, &out));
  sweep_compare("softmax after the failures", &out, &ref, 0);
  sweep_free(&in);
  sweep_free(&out);
  sweep_free(&ref);
}

/* Explain on a CUDA context: every variant listed with a verdict, the CPU row refused
   with its reason, and the AUTO line. */
static void test_explain_gpu(dlk_context *g) {
  t_case = "explain (gpu)";
  static const softmax_fwd_case sm = {.rows = 64, .cols = 1000};
  sweep_set in = {.n = 0}, out = {.n = 0};
  gen_softmax_fwd(&sm, DLK_F16, &in);
  CHECK_OK(g, dlk_explain_mode(g, 1));
  dlk_status s = run_softmax_fwd(g, &sm, DLK_F16, &in, &out);
  CHECK(s == DLK_OK, "explain call: %s", dlk_context_last_error(g));
  const char *report = NULL;
  CHECK_OK(g, dlk_explain_report(g, &report));
  printf("explain on the GPU:\n%s", report ? report : "(none)\n");
  dlk_variant_info vs[32];
  int nv = 0;
  CHECK_OK(g, dlk_op_variants(g, "softmax_fwd", vs, 32, &nv));
  for (int i = 0; i < nv && i < 32; i++) CHECK(report && strstr(report, vs[i].name), "%s listed", vs[i].name);
  const char *cpu_line = report ? strstr(report, " cpu_ref ") : NULL;
  const char *cpu_eol = cpu_line ? strchr(cpu_line, '\n') : NULL;
  const char *cpu_why = cpu_line ? strstr(cpu_line, "not supported: runs on the CPU") : NULL;
  CHECK(cpu_why && (!cpu_eol || cpu_why < cpu_eol), "CPU row refused with a reason:\n%s", report);
  CHECK(report && strstr(report, "AUTO would"), "AUTO line");
  /* Only now: turning explain mode off clears the report that `report` points into. */
  CHECK_OK(g, dlk_explain_mode(g, 0));
  /* explain ran nothing: the outputs came back as the +inf fill */
  int64_t ff = 0;
  for (int64_t i = 0; out.n > 0 && i < out.a[0].n; i++) ff += isinf(out.a[0].v[i]) && out.a[0].v[i] > 0;
  CHECK(out.n == 1 && ff == out.a[0].n, "explain mode wrote outputs");
  sweep_free(&in);
  sweep_free(&out);
}

int main(int argc, char **argv) {
  if (sweep_list_ops(argc, argv, nn_rows, N_OF(nn_rows))) return 0;
  quick_mode = t_quick_mode();
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_nn");
    dlk_context *cpu = t_cpu_context();
    test_sweep(g, cpu, quick_mode);
    test_gpu_bad(g);
    test_explain_gpu(g);
    dlk_context_destroy(cpu);
    dlk_context_destroy(g);
    return t_summary("test_nn --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  test_golden(ctx);
  test_fd(ctx);
  test_sweep(ctx, NULL, 0);
  /* the GPU run's path (reference through a second context) on the quick subset */
  dlk_context *ref = t_cpu_context();
  test_sweep(ctx, ref, 1);
  dlk_context_destroy(ref);
  test_bad_input(ctx);
  test_explain(ctx);
  test_autotune_cpu(ctx);
  test_dropout_rng(ctx);
  test_null_params(ctx);
  dlk_context_destroy(ctx);
  return t_summary("test_nn");
}
