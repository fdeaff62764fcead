/*
 * conv family tests.
 *
 * CPU run (default):
 *   1. golden fixtures made by PyTorch (tests/golden/conv/NAME.txt, see
 *      make_conv_golden.py), each in the memory layout the case asks for (NCHW or
 *      channels-last), through the CPU reference and then through AUTO (the im2col
 *      variant), at the DESIGN.md tolerances;
 *   2. finite-difference checks in f64 of every CPU backward (conv2d dx, dw, db through
 *      every activation; Gram df), for the reference and the im2col variant;
 *   3. the variant sweep (tests/sweep.h): every op x case x dtype x variant, each case in
 *      NCHW, channels-last and padded/misaligned memory, against the naive computations
 *      written here (independent of the library's reference); then the GPU run's path
 *      (the reference through a second context) on the quick subset;
 *   4. a table of bad inputs: exact status, a message naming the tensor and dimension,
 *      every output untouched, inputs unchanged; a forced variant that cannot take a call
 *      fails it with the reason;
 *   5. explain mode.
 * GPU run (--gpu; exit 77 when no GPU): the same sweep over a CUDA context against the
 *   CPU reference (f32 also with TF32), the larger cases (tags.big) included; the
 *   NCHW-only depthwise kernel forced on channels-last and strided memory; host tensors
 *   on a CUDA context.
 * DLK_TEST_QUICK=1 runs the quick subset of the sweep (for compute-sanitizer).
 *
 * Sections: harness (golden reader, calls through a sweep rig), conv2d, Gram, then the
 * ops the family adds after them (pooling, batch norm, MSE), then bad input, explain,
 * the rows and main.
 */
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "golden.h"
#include "sweep.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];
static int quick_mode = 0;

/* ====================================================================================== */
/* Harness                                                                                 */
/* ====================================================================================== */

static int64_t prod(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= shape[k];
  return n;
}

static const char *layout_name(sweep_layout l) {
  return l == SW_CHANNELS_LAST ? "nhwc" : l == SW_PADDED ? "padded" : "nchw";
}

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

/* ---- golden fixtures (read by golden.h) ---- */

/* Golden input `name` as a rig input in `lay` (NULL when the case has none). */
static dlk_tensor *g_rig_in(sweep_rig *r, gcase *c, const char *name, sweep_layout lay) {
  gtensor *g = g_find(c, name, 0);
  return g ? &sweep_in(r, g->dt, g->ndim, g->shape, lay, g->v)->v : NULL;
}
/* A rig output shaped like the expected `name`. */
static dlk_tensor *g_rig_out(sweep_rig *r, gcase *c, const char *name, sweep_layout lay) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g != NULL, "golden %s: no output %s", c->name, name);
  return g ? &sweep_out(r, g->dt, g->ndim, g->shape, lay)->v : NULL;
}
/* The outputs of a golden call (in rig order) against the expected ones named in order. */
static void g_expect(gcase *c, const sweep_set *got, const char *const *names, int n) {
  CHECK(got->n == n, "golden %s: %d outputs, expected %d", c->name, got->n, n);
  for (int i = 0; i < n && i < got->n; i++) {
    gtensor *g = g_find(c, names[i], 1);
    CHECK(g != NULL, "golden %s: output %s missing", c->name, names[i]);
    if (!g) continue;
    double atol, rtol;
    t_tolerance(g->dt, 0, &atol, &rtol);
    char what[160];
    snprintf(what, sizeof what, "golden %s: %s", c->name, names[i]);
    t_close(what, got->a[i].v, g->v, g->n, atol, rtol);
  }
}

/* ====================================================================================== */
/* conv2d                                                                                  */
/* ====================================================================================== */

/* One convolution problem, in one memory layout (every 4-D tensor of the call). */
typedef struct {
  sweep_tags tags;
  const char *name;
  int64_t n, c, h, w, k, r, s;
  int64_t stride[2], pad[2], dil[2], groups;
  int bias;
  int act;
  sweep_layout lay;
} conv_case;

static dlk_conv2d_params cc_params(const conv_case *cc) {
  dlk_conv2d_params p;
  memset(&p, 0, sizeof p);
  for (int i = 0; i < 2; i++) p.stride[i] = cc->stride[i], p.padding[i] = cc->pad[i], p.dilation[i] = cc->dil[i];
  p.groups = cc->groups;
  p.act = (dlk_activation)cc->act;
  return p;
}

static int64_t cc_groups(const conv_case *cc) { return cc->groups ? cc->groups : 1; }

static int64_t cc_out(const conv_case *cc, int i) {
  const int64_t in = i ? cc->w : cc->h, ker = i ? cc->s : cc->r;
  return dlk_conv2d_output_dim(in, ker, cc->stride[i], cc->pad[i], cc->dil[i]);
}

static void cc_shapes(const conv_case *cc, int64_t xs[4], int64_t ws[4], int64_t ys[4]) {
  xs[0] = cc->n, xs[1] = cc->c, xs[2] = cc->h, xs[3] = cc->w;
  ws[0] = cc->k, ws[1] = cc->c / cc_groups(cc), ws[2] = cc->r, ws[3] = cc->s;
  ys[0] = cc->n, ys[1] = cc->k, ys[2] = cc_out(cc, 0), ys[3] = cc_out(cc, 1);
}

/* The inputs of every conv row, in this order: x, w, b, z, dy (logical NCHW order).
   x uniform in [-1, 1), w scaled by 1 / sqrt(fan-in), b in [-0.5, 0.5), z in [-2, 2) away
   from 0 (relu's kink), dy scaled so that dw (N Ho Wo products) stays O(1). */
enum { IN_X = 0, IN_W, IN_B, IN_Z, IN_DY };

static void gen_conv(const void *cv, dlk_dtype dt, sweep_set *in) {
  const conv_case *cc = cv;
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  const double fan = (double)(ws[1] * ws[2] * ws[3]), wsc = fan > 0 ? 1.0 / sqrt(fan) : 1.0;
  const int64_t pix = ys[0] * ys[2] * ys[3];
  const double dsc = fmin(1.0, 2.0 / sqrt((double)(pix > 0 ? pix : 1)));
  sweep_uniform(in, dt, prod(4, xs), -1, 1);
  sweep_uniform(in, dt, prod(4, ws), -wsc, wsc);
  sweep_uniform(in, dt, cc->k, -0.5, 0.5);
  double *z = sweep_uniform(in, dt, prod(4, ys), -2, 2);
  for (int64_t i = 0; i < prod(4, ys); i++)
    if (fabs(z[i]) < 0.05) z[i] = sweep_round(dt, z[i] < 0 ? -0.5 : 0.5);
  sweep_uniform(in, dt, prod(4, ys), -dsc, dsc);
}

/* What a conv call computes; the dispatcher op each kind forces in the sweep. */
enum { K_FWD = 0, K_BWD_DATA, K_BWD_FILTER, K_BWD_BIAS, K_BWD_BIAS_DZ, K_BWD_ALL };

/* One conv call on ctx, every 4-D tensor in the case's layout (b, db: contiguous, or
   strided when the layout is padded). Outputs, in order: forward y, z; backward dx, dw,
   db (those the kind asks for). */
static dlk_status conv_call(dlk_context *ctx, int kind, const conv_case *cc, dlk_dtype dt, const sweep_set *in,
                            sweep_set *out) {
  int64_t xs[4], ws[4], ys[4], ks[1] = {cc->k};
  cc_shapes(cc, xs, ws, ys);
  const dlk_conv2d_params p = cc_params(cc);
  const sweep_layout l4 = cc->lay, l1 = cc->lay == SW_PADDED ? SW_PADDED : SW_CONTIG;
  sweep_rig r = {.ctx = ctx};
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_tensor *x = &sweep_in(&r, dt, 4, xs, l4, in->a[IN_X].v)->v, *w = &sweep_in(&r, dt, 4, ws, l4, in->a[IN_W].v)->v;
  if (kind == K_FWD) {
    dlk_tensor *b = cc->bias ? &sweep_in(&r, dt, 1, ks, l1, in->a[IN_B].v)->v : NULL;
    dlk_tensor *y = &sweep_out(&r, dt, 4, ys, l4)->v, *z = &sweep_out(&r, dt, 4, ys, l4)->v;
    if (!r.failed) s = dlk_conv2d_forward(ctx, &p, x, w, b, y, z);
    return sweep_end(&r, s, out);
  }
  dlk_tensor *z = cc->act ? &sweep_in(&r, dt, 4, ys, l4, in->a[IN_Z].v)->v : NULL;
  dlk_tensor *dy = &sweep_in(&r, dt, 4, ys, l4, in->a[IN_DY].v)->v;
  dlk_tensor *dx = NULL, *dw = NULL, *db = NULL;
  if (kind == K_BWD_DATA || kind == K_BWD_BIAS_DZ || kind == K_BWD_ALL) dx = &sweep_out(&r, dt, 4, xs, l4)->v;
  if (kind == K_BWD_FILTER || kind == K_BWD_ALL) dw = &sweep_out(&r, dt, 4, ws, l4)->v;
  if (kind == K_BWD_BIAS || kind == K_BWD_BIAS_DZ || kind == K_BWD_ALL) db = &sweep_out(&r, dt, 1, ks, l1)->v;
  if (!r.failed) s = dlk_conv2d_backward(ctx, &p, x, w, z, dy, dx, dw, db);
  return sweep_end(&r, s, out);
}

/* ---- the naive computations (the sweep's truth on the CPU), written independently of
   the library's reference ---- */

static double n_act(int act, double v) {
  switch (act) {
    case 1: return v > 0 || isnan(v) ? v : 0;
    case 2: return tanh(v);
    case 3: return 1 / (1 + exp(-v));
    case 4: return v * 0.5 * erfc(-v / sqrt(2.0));
    default: return v;
  }
}
static double n_act_grad(int act, double v) {
  switch (act) {
    case 1: return v > 0;
    case 2: return 1 - tanh(v) * tanh(v);
    case 3: return exp(-v) / ((1 + exp(-v)) * (1 + exp(-v)));
    case 4: return 0.5 * erfc(-v / sqrt(2.0)) + v * exp(-v * v / 2) / sqrt(2 * M_PI);
    default: return 1;
  }
}

/* Index helpers over logical row-major arrays. */
#define I4(d, a, b, c, e) ((((a) * (d)[1] + (b)) * (d)[2] + (c)) * (d)[3] + (e))

/* Every (output element, tap) pair of the convolution: calls fn with the flat indices
   of y, x and w when the tap reads inside the input. */
typedef void (*tap_fn)(void *u, int64_t yi, int64_t xi, int64_t wi);
static void each_tap(const conv_case *cc, tap_fn fn, void *u) {
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  const int64_t kg = cc->k / cc_groups(cc), cg = cc->c / cc_groups(cc);
  for (int64_t n = 0; n < ys[0]; n++)
    for (int64_t k = 0; k < ys[1]; k++)
      for (int64_t oh = 0; oh < ys[2]; oh++)
        for (int64_t ow = 0; ow < ys[3]; ow++)
          for (int64_t c = 0; c < cg; c++)
            for (int64_t r = 0; r < cc->r; r++)
              for (int64_t s = 0; s < cc->s; s++) {
                const int64_t ih = oh * (cc->stride[0] ? cc->stride[0] : 1) - cc->pad[0] + r * (cc->dil[0] ? cc->dil[0] : 1);
                const int64_t iw = ow * (cc->stride[1] ? cc->stride[1] : 1) - cc->pad[1] + s * (cc->dil[1] ? cc->dil[1] : 1);
                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w) continue;
                fn(u, I4(ys, n, k, oh, ow), I4(xs, n, (k / kg) * cg + c, ih, iw), I4(ws, k, c, r, s));
              }
}

typedef struct {
  const double *x, *w, *g;
  double *y, *dx, *dw;
} tap_data;
static void tap_fwd(void *u, int64_t yi, int64_t xi, int64_t wi) {
  tap_data *d = u;
  d->y[yi] += d->x[xi] * d->w[wi];
}
static void tap_data_grad(void *u, int64_t yi, int64_t xi, int64_t wi) {
  tap_data *d = u;
  d->dx[xi] += d->g[yi] * d->w[wi];
}
static void tap_filter_grad(void *u, int64_t yi, int64_t xi, int64_t wi) {
  tap_data *d = u;
  d->dw[wi] += d->g[yi] * d->x[xi];
}

static void naive_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const conv_case *cc = cv;
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  const int64_t ny = prod(4, ys), hw = ys[2] * ys[3];
  double *acc = calloc((size_t)(ny > 0 ? ny : 1), sizeof(double));
  tap_data d = {in->a[IN_X].v, in->a[IN_W].v, NULL, acc, NULL, NULL};
  each_tap(cc, tap_fwd, &d);
  double *y = sweep_add(ref, dt, ny), *z = sweep_add(ref, dt, ny);
  for (int64_t i = 0; i < ny; i++) {
    const double v = acc[i] + (cc->bias ? in->a[IN_B].v[(i / hw) % cc->k] : 0.0);
    z[i] = sweep_round(dt, v);
    y[i] = sweep_round(dt, n_act(cc->act, v));
  }
  free(acc);
}

/* The gradient at the pre-activation as the library forms it: dy * act'(z), rounded to
   the dtype when there is an activation (it lives in a tensor of that dtype). */
static double *naive_dz(const conv_case *cc, dlk_dtype dt, const sweep_set *in, int rounded) {
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  const int64_t ny = prod(4, ys);
  double *g = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(double));
  for (int64_t i = 0; i < ny; i++) {
    g[i] = in->a[IN_DY].v[i];
    if (cc->act) {
      g[i] *= n_act_grad(cc->act, in->a[IN_Z].v[i]);
      if (rounded) g[i] = sweep_round(dt, g[i]);
    }
  }
  return g;
}

static void naive_grads(const conv_case *cc, dlk_dtype dt, const sweep_set *in, sweep_set *ref, int want_dx,
                        int want_dw, int want_db) {
  int64_t xs[4], ws[4], ys[4];
  cc_shapes(cc, xs, ws, ys);
  double *g = naive_dz(cc, dt, in, 1);
  tap_data d = {in->a[IN_X].v, in->a[IN_W].v, g, NULL, NULL, NULL};
  if (want_dx) {
    double *acc = calloc((size_t)(prod(4, xs) > 0 ? prod(4, xs) : 1), sizeof(double));
    d.dx = acc;
    each_tap(cc, tap_data_grad, &d);
    double *dx = sweep_add(ref, dt, prod(4, xs));
    for (int64_t i = 0; i < prod(4, xs); i++) dx[i] = sweep_round(dt, acc[i]);
    free(acc);
  }
  if (want_dw) {
    double *acc = calloc((size_t)(prod(4, ws) > 0 ? prod(4, ws) : 1), sizeof(double));
    d.dw = acc;
    each_tap(cc, tap_filter_grad, &d);
    double *dw = sweep_add(ref, dt, prod(4, ws));
    for (int64_t i = 0; i < prod(4, ws); i++) dw[i] = sweep_round(dt, acc[i]);
    free(acc);
  }
  if (want_db) { /* from the unrounded dz */
    double *ge = naive_dz(cc, dt, in, 0), *db = sweep_add(ref, dt, cc->k);
    const int64_t hw = ys[2] * ys[3];
    double *acc = calloc((size_t)(cc->k > 0 ? cc->k : 1), sizeof(double));
    for (int64_t i = 0; i < prod(4, ys); i++) acc[(i / hw) % cc->k] += ge[i];
    for (int64_t k = 0; k < cc->k; k++) db[k] = sweep_round(dt, acc[k]);
    free(acc);
    free(ge);
  }
  free(g);
}

static void naive_bwd_data(const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  naive_grads(c, dt, in, ref, 1, 0, 0);
}
static void naive_bwd_filter(const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  naive_grads(c, dt, in, ref, 0, 1, 0);
}
static void naive_bwd_bias(const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  naive_grads(c, dt, in, ref, 0, 0, 1);
}
static void naive_bwd_bias_dz(const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  naive_grads(c, dt, in, ref, 1, 0, 1);
}

static dlk_status run_fwd(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  return conv_call(ctx, K_FWD, c, dt, in, out);
}
static dlk_status run_bwd_data(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  return conv_call(ctx, K_BWD_DATA, c, dt, in, out);
}
static dlk_status run_bwd_filter(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in,
                                 sweep_set *out) {
  return conv_call(ctx, K_BWD_FILTER, c, dt, in, out);
}
static dlk_status run_bwd_bias(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  return conv_call(ctx, K_BWD_BIAS, c, dt, in, out);
}
static dlk_status run_bwd_bias_dz(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in,
                                  sweep_set *out) {
  return conv_call(ctx, K_BWD_BIAS_DZ, c, dt, in, out);
}

/* ---- the shape table: each shape in the three layouts ---- */

#define CONV3(...)                                   \
  {__VA_ARGS__, .lay = SW_CONTIG}, {__VA_ARGS__, .lay = SW_CHANNELS_LAST}, { \
    __VA_ARGS__, .lay = SW_PADDED                    \
  }
#define G(sh, sw) .stride = {sh, sw}
#define P(ph, pw) .pad = {ph, pw}
#define D(dh, dw) .dil = {dh, dw}

static const conv_case conv_cases[] = {
    CONV3(.name = "3x3_odd", .n = 2, .c = 3, .h = 7, .w = 9, .k = 5, .r = 3, .s = 3, G(1, 1), P(1, 1), D(1, 1),
          .groups = 1, .bias = 1),
    CONV3(.name = "1x1", .n = 2, .c = 8, .h = 5, .w = 6, .k = 12, .r = 1, .s = 1, .bias = 1),
    CONV3(.name = "1x1_s2", .n = 1, .c = 6, .h = 7, .w = 8, .k = 4, .r = 1, .s = 1, G(2, 2)),
    CONV3(.name = "7x7_s2", .n = 1, .c = 3, .h = 17, .w = 15, .k = 8, .r = 7, .s = 7, G(2, 2), P(3, 3), .bias = 1,
          .act = 1),
    CONV3(.name = "dil2", .n = 2, .c = 4, .h = 9, .w = 10, .k = 6, .r = 3, .s = 3, P(2, 2), D(2, 2), .bias = 1),
    CONV3(.name = "groups2", .n = 2, .c = 6, .h = 7, .w = 7, .k = 8, .r = 3, .s = 3, P(1, 1), .groups = 2,
          .bias = 1, .act = 1),
    CONV3(.name = "depthwise", .n = 2, .c = 8, .h = 9, .w = 9, .k = 8, .r = 3, .s = 3, P(1, 1), .groups = 8,
          .bias = 1),
    CONV3(.name = "depthwise_s2_mult2", .n = 1, .c = 5, .h = 10, .w = 11, .k = 10, .r = 3, .s = 3, G(2, 2), P(1, 1),
          .groups = 5),
    CONV3(.name = "pad_ge_half", .n = 1, .c = 3, .h = 5, .w = 6, .k = 4, .r = 3, .s = 5, G(1, 2), P(2, 3),
          .bias = 1, .act = 2),
    CONV3(.name = "out1", .n = 2, .c = 3, .h = 3, .w = 4, .k = 4, .r = 3, .s = 3, P(1, 1), D(2, 2), .bias = 1),
    CONV3(.name = "asym_gelu", .n = 1, .c = 5, .h = 8, .w = 11, .k = 7, .r = 3, .s = 2, G(2, 1), P(1, 0), D(1, 3),
          .bias = 1, .act = 4),
    CONV3(.name = "batch32_sigmoid", .n = 32, .c = 3, .h = 6, .w = 5, .k = 4, .r = 3, .s = 3, G(2, 1), P(1, 1),
          .bias = 1, .act = 3),
    CONV3(.name = "c16_tc", .n = 2, .c = 16, .h = 9, .w = 11, .k = 24, .r = 3, .s = 3, P(1, 1), .bias = 1, .act = 1),
    CONV3(.name = "c32_1x1_tc", .n = 2, .c = 32, .h = 6, .w = 7, .k = 64, .r = 1, .s = 1, .bias = 1),
    CONV3(.name = "c16_s2_tc", .n = 1, .c = 16, .h = 12, .w = 13, .k = 32, .r = 3, .s = 3, G(2, 2), P(1, 1)),
    CONV3(.name = "c32_groups2_tc", .n = 1, .c = 32, .h = 7, .w = 6, .k = 32, .r = 3, .s = 3, P(1, 1), .groups = 2,
          .bias = 1),
    CONV3(.name = "dw_c32", .n = 2, .c = 32, .h = 12, .w = 10, .k = 32, .r = 3, .s = 3, P(1, 1), .groups = 32,
          .bias = 1, .act = 1),
    CONV3(.name = "dw_5x5_dil", .n = 1, .c = 16, .h = 11, .w = 9, .k = 16, .r = 5, .s = 5, P(4, 2), D(2, 1),
          .groups = 16, .bias = 1),
    CONV3(.name = "empty_batch", .n = 0, .c = 3, .h = 5, .w = 5, .k = 4, .r = 3, .s = 3, P(1, 1), .bias = 1,
          .act = 1),
    /* GPU run only: several blocks of every tile, several split-K slices, TC k-loops */
    CONV3(.tags.big = true, .name = "big_c64_k96", .n = 1, .c = 64, .h = 12, .w = 12, .k = 96, .r = 3, .s = 3,
          P(1, 1), .bias = 1, .act = 1),
    CONV3(.tags.big = true, .name = "big_p2048", .n = 2, .c = 16, .h = 32, .w = 32, .k = 32, .r = 3, .s = 3,
          P(1, 1), .bias = 1),
    CONV3(.tags.big = true, .name = "big_dw", .n = 4, .c = 64, .h = 28, .w = 28, .k = 64, .r = 3, .s = 3, G(2, 2),
          P(1, 1), .groups = 64),
};

/* ---- goldens ---- */

static void golden_conv(dlk_context *ctx, gcase *c, void *unused) {
  (void)unused;
  conv_case cc;
  memset(&cc, 0, sizeof cc);
  cc.name = c->name;
  cc.stride[0] = g_i64(c, "stride_h"), cc.stride[1] = g_i64(c, "stride_w");
  cc.pad[0] = g_i64(c, "pad_h"), cc.pad[1] = g_i64(c, "pad_w");
  cc.dil[0] = g_i64(c, "dil_h"), cc.dil[1] = g_i64(c, "dil_w");
  cc.groups = g_i64(c, "groups");
  cc.act = (int)g_i64(c, "act");
  const sweep_layout lay = g_i64(c, "cl") ? SW_CHANNELS_LAST : SW_CONTIG;
  const dlk_conv2d_params p = cc_params(&cc);
  sweep_rig r = {.ctx = ctx};
  sweep_set out = {0};
  dlk_status s = DLK_ERR_INTERNAL;
  if (strcmp(c->op, "conv2d_fwd") == 0) {
    dlk_tensor *x = g_rig_in(&r, c, "x", lay), *w = g_rig_in(&r, c, "w", lay), *b = g_rig_in(&r, c, "b", SW_CONTIG);
    dlk_tensor *y = g_rig_out(&r, c, "y", lay), *z = g_rig_out(&r, c, "z", lay);
    if (!r.failed) s = dlk_conv2d_forward(ctx, &p, x, w, b, y, z);
    sweep_end(&r, s, &out);
    static const char *const names[] = {"y", "z"};
    if (s == DLK_OK) g_expect(c, &out, names, 2);
  } else if (strcmp(c->op, "conv2d_bwd") == 0) {
    dlk_tensor *x = g_rig_in(&r, c, "x", lay), *w = g_rig_in(&r, c, "w", lay), *z = g_rig_in(&r, c, "z", lay);
    dlk_tensor *dy = g_rig_in(&r, c, "dy", lay);
    dlk_tensor *dx = g_rig_out(&r, c, "dx", lay), *dw = g_rig_out(&r, c, "dw", lay);
    dlk_tensor *db = g_rig_out(&r, c, "db", SW_CONTIG);
    if (!r.failed) s = dlk_conv2d_backward(ctx, &p, x, w, z, dy, dx, dw, db);
    sweep_end(&r, s, &out);
    static const char *const names[] = {"dx", "dw", "db"};
    if (s == DLK_OK) g_expect(c, &out, names, 3);
  } else {
    CHECK(0, "unknown op %s", c->op);
  }
  CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
  sweep_free(&out);
}

/* ---- finite differences (f64) ---- */

/* L = sum(y * dy), y = act(conv(x, w) + b), the forward through the library. */
static double fd_loss(dlk_context *ctx, const conv_case *cc, const sweep_set *in) {
  sweep_set out = {0};
  dlk_status s = conv_call(ctx, K_FWD, cc, DLK_F64, in, &out);
  CHECK(s == DLK_OK, "fd forward: %s", dlk_context_last_error(ctx));
  double l = 0;
  for (int64_t i = 0; s == DLK_OK && i < out.a[0].n; i++) l += out.a[0].v[i] * in->a[IN_DY].v[i];
  sweep_free(&out);
  return l;
}

/* Central differences of L in every element of x, w and b against dx, dw, db from
   dlk_conv2d_backward with that dy and the forward's z. */
static void fd_conv_case(dlk_context *ctx, const conv_case *cc) {
  snprintf(t_case_buf, sizeof t_case_buf, "fd conv2d %s act %d", cc->name, cc->act);
  t_case = t_case_buf;
  sweep_set in = {0}, fo = {0}, g = {0};
  gen_conv(cc, DLK_F64, &in);
  CHECK_OK(ctx, conv_call(ctx, K_FWD, cc, DLK_F64, &in, &fo)); /* z from the forward */
  if (fo.n == 2) memcpy(in.a[IN_Z].v, fo.a[1].v, (size_t)fo.a[1].n * sizeof(double));
  CHECK_OK(ctx, conv_call(ctx, K_BWD_ALL, cc, DLK_F64, &in, &g));
  const int targets[3] = {IN_X, IN_W, IN_B};
  static const char *const names[3] = {"dx", "dw", "db"};
  const double h = 1e-6;
  for (int t = 0; t < 3 && g.n == 3; t++) {
    if (t == 2 && !cc->bias) continue;
    sweep_array *p = &in.a[targets[t]];
    double *fd = malloc((size_t)(p->n > 0 ? p->n : 1) * sizeof(double));
    for (int64_t i = 0; i < p->n; i++) {
      const double keep = p->v[i];
      p->v[i] = keep + h;
      const double lp = fd_loss(ctx, cc, &in);
      p->v[i] = keep - h;
      const double lm = fd_loss(ctx, cc, &in);
      p->v[i] = keep;
      fd[i] = (lp - lm) / (2 * h);
    }
    char what[96];
    snprintf(what, sizeof what, "finite differences of %s", names[t]);
    /* central differences with h = 1e-6 on O(1) values: ~1e-9 truncation and rounding */
    t_close(what, g.a[t].v, fd, p->n, 1e-7, 1e-6);
    free(fd);
  }
  sweep_free(&in), sweep_free(&fo), sweep_free(&g);
}

/* ====================================================================================== */
/* Gram matrix                                                                             */
/* ====================================================================================== */

typedef struct {
  sweep_tags tags;
  const char *name;
  int64_t n, c, h, w;
  int norm;
  sweep_layout lay;
} gram_case;

static void golden_gram(dlk_context *ctx, gcase *c, void *unused) {
  (void)unused;
  dlk_gram_params p = {(dlk_gram_norm)g_i64(c, "norm")};
  const sweep_layout lay = g_i64(c, "cl") ? SW_CHANNELS_LAST : SW_CONTIG;
  sweep_rig r = {.ctx = ctx};
  sweep_set out = {0};
  dlk_status s = DLK_ERR_INTERNAL;
  if (strcmp(c->op, "gram_fwd") == 0) {
    dlk_tensor *f = g_rig_in(&r, c, "f", lay), *g = g_rig_out(&r, c, "g", SW_CONTIG);
    if (!r.failed) s = dlk_gram_forward(ctx, &p, f, g);
    sweep_end(&r, s, &out);
    static const char *const names[] = {"g"};
    if (s == DLK_OK) g_expect(c, &out, names, 1);
  } else if (strcmp(c->op, "gram_bwd") == 0) {
    dlk_tensor *f = g_rig_in(&r, c, "f", lay), *dg = g_rig_in(&r, c, "dg", SW_CONTIG);
    dlk_tensor *df = g_rig_out(&r, c, "df", lay);
    if (!r.failed) s = dlk_gram_backward(ctx, &p, f, dg, df);
    sweep_end(&r, s, &out);
    static const char *const names[] = {"df"};
    if (s == DLK_OK) g_expect(c, &out, names, 1);
  } else {
    CHECK(0, "unknown op %s", c->op);
  }
  CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
  sweep_free(&out);
}

/* Inputs: f, then dg (uniform in [-1, 1)). */
static void gen_gram(const void *cv, dlk_dtype dt, sweep_set *in) {
  const gram_case *gc = cv;
  sweep_uniform(in, dt, gc->n * gc->c * gc->h * gc->w, -1, 1);
  sweep_uniform(in, dt, gc->n * gc->c * gc->c, -1, 1);
}

/* Gram forward (kind 0) or backward (kind 1); out: g or df. */
static dlk_status gram_call(dlk_context *ctx, int kind, const gram_case *gc, dlk_dtype dt, const sweep_set *in,
                            sweep_set *out) {
  const int64_t fs[4] = {gc->n, gc->c, gc->h, gc->w}, gs[3] = {gc->n, gc->c, gc->c};
  const dlk_gram_params p = {(dlk_gram_norm)gc->norm};
  const sweep_layout l3 = gc->lay == SW_PADDED ? SW_PADDED : SW_CONTIG;
  sweep_rig r = {.ctx = ctx};
  dlk_status s = DLK_ERR_INTERNAL;
  dlk_tensor *f = &sweep_in(&r, dt, 4, fs, gc->lay, in->a[0].v)->v;
  if (kind == 0) {
    dlk_tensor *g = &sweep_out(&r, dt, 3, gs, l3)->v;
    if (!r.failed) s = dlk_gram_forward(ctx, &p, f, g);
  } else {
    dlk_tensor *dg = &sweep_in(&r, dt, 3, gs, l3, in->a[1].v)->v, *df = &sweep_out(&r, dt, 4, fs, gc->lay)->v;
    if (!r.failed) s = dlk_gram_backward(ctx, &p, f, dg, df);
  }
  return sweep_end(&r, s, out);
}

static dlk_status run_gram_fwd(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  return gram_call(ctx, 0, c, dt, in, out);
}
static dlk_status run_gram_bwd(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  return gram_call(ctx, 1, c, dt, in, out);
}

static double gram_scale(const gram_case *gc) {
  return gc->norm == 1 ? 1.0 / (double)(gc->h * gc->w) : gc->norm == 2 ? 1.0 / (double)(gc->c * gc->h * gc->w) : 1.0;
}

/* g[n,i,j] = scale sum_p F[n,i,p] F[n,j,p] */
static void naive_gram_fwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const gram_case *gc = cv;
  const int64_t hw = gc->h * gc->w, C = gc->c;
  const double *f = in->a[0].v;
  double *g = sweep_add(ref, dt, gc->n * C * C);
  for (int64_t n = 0; n < gc->n; n++)
    for (int64_t i = 0; i < C; i++)
      for (int64_t j = 0; j < C; j++) {
        double acc = 0;
        for (int64_t p = 0; p < hw; p++) acc += f[(n * C + i) * hw + p] * f[(n * C + j) * hw + p];
        g[(n * C + i) * C + j] = sweep_round(dt, gram_scale(gc) * acc);
      }
}

/* df[n,i,p] = scale sum_j (dg[n,i,j] + dg[n,j,i]) F[n,j,p] */
static void naive_gram_bwd(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const gram_case *gc = cv;
  const int64_t hw = gc->h * gc->w, C = gc->c;
  const double *f = in->a[0].v, *dg = in->a[1].v;
  double *df = sweep_add(ref, dt, gc->n * C * hw);
  for (int64_t n = 0; n < gc->n; n++)
    for (int64_t i = 0; i < C; i++)
      for (int64_t p = 0; p < hw; p++) {
        double acc = 0;
        for (int64_t j = 0; j < C; j++)
          acc += (dg[(n * C + i) * C + j] + dg[(n * C + j) * C + i]) * f[(n * C + j) * hw + p];
        df[(n * C + i) * hw + p] = sweep_round(dt, gram_scale(gc) * acc);
      }
}

#define GRAM3(...)                                   \
  {__VA_ARGS__, .lay = SW_CONTIG}, {__VA_ARGS__, .lay = SW_CHANNELS_LAST}, { \
    __VA_ARGS__, .lay = SW_PADDED                    \
  }

static const gram_case gram_cases[] = {
    GRAM3(.name = "plain", .n = 2, .c = 3, .h = 4, .w = 5, .norm = 0),
    GRAM3(.name = "hw", .n = 3, .c = 8, .h = 7, .w = 9, .norm = 1),
    GRAM3(.name = "chw", .n = 1, .c = 16, .h = 6, .w = 6, .norm = 2),
    GRAM3(.name = "one", .n = 1, .c = 1, .h = 1, .w = 1, .norm = 1),
    GRAM3(.name = "c64", .n = 2, .c = 64, .h = 5, .w = 7, .norm = 1),
    GRAM3(.name = "empty", .n = 0, .c = 4, .h = 3, .w = 3, .norm = 1),
    GRAM3(.tags.big = true, .name = "big_c256", .n = 2, .c = 256, .h = 16, .w = 16, .norm = 2),
};

/* df from gram_backward against central differences of L = sum(g * dg) in f. */
static void fd_gram(dlk_context *ctx) {
  for (int norm = 0; norm < 3; norm++) {
    const gram_case gc = {.name = "fd", .n = 2, .c = 3, .h = 2, .w = 3, .norm = norm};
    snprintf(t_case_buf, sizeof t_case_buf, "fd gram norm %d", norm);
    t_case = t_case_buf;
    sweep_set in = {0}, df = {0};
    gen_gram(&gc, DLK_F64, &in);
    CHECK_OK(ctx, gram_call(ctx, 1, &gc, DLK_F64, &in, &df));
    sweep_array *f = &in.a[0];
    const double *dg = in.a[1].v;
    double *fd = malloc((size_t)f->n * sizeof(double));
    const double h = 1e-6;
    for (int64_t i = 0; i < f->n; i++) {
      double l[2];
      for (int side = 0; side < 2; side++) {
        const double keep = f->v[i];
        f->v[i] = keep + (side ? -h : h);
        sweep_set g = {0};
        CHECK_OK(ctx, gram_call(ctx, 0, &gc, DLK_F64, &in, &g));
        l[side] = 0;
        for (int64_t j = 0; g.n == 1 && j < g.a[0].n; j++) l[side] += g.a[0].v[j] * dg[j];
        sweep_free(&g);
        f->v[i] = keep;
      }
      fd[i] = (l[0] - l[1]) / (2 * h);
    }
    if (df.n == 1) t_close("finite differences of df", df.a[0].v, fd, f->n, 1e-7, 1e-6);
    free(fd);
    sweep_free(&in), sweep_free(&df);
  }
}

/* ====================================================================================== */
/* (pooling, batch norm and MSE add their sections here, after Gram)                       */
/* ====================================================================================== */

/* ====================================================================================== */
/* Bad input                                                                               */
/* ====================================================================================== */

/* A valid forward setup (x [2, 4, 6, 5], w [6, 4, 3, 3], padding 1) that one bad case then
   spoils. */
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

/* A forward with the setup's shapes (x of xnd dims, the rest 4-D): expect `want` and a
   message holding every one of the NULL-terminated `words`; outputs untouched. */
static void bad_fwd(dlk_context *ctx, const char *what, const bad_setup *b, int xnd, dlk_status want,
                    const char *const *words) {
  snprintf(t_case_buf, sizeof t_case_buf, "bad input: forward: %s", what);
  t_case = t_case_buf;
  sweep_rig r = {.ctx = ctx};
  sweep_set v = {0};
  sweep_uniform(&v, DLK_F32, prod(xnd, b->xs), -1, 1);
  sweep_uniform(&v, DLK_F32, prod(4, b->ws), -1, 1);
  sweep_uniform(&v, DLK_F32, b->bs[0], -1, 1);
  dlk_tensor *x = &sweep_in(&r, DLK_F32, xnd, b->xs, SW_CONTIG, v.a[0].v)->v;
  dlk_tensor *w = &sweep_in(&r, DLK_F32, 4, b->ws, SW_CONTIG, v.a[1].v)->v;
  dlk_tensor *bias = &sweep_in(&r, DLK_F32, 1, b->bs, SW_CONTIG, v.a[2].v)->v;
  dlk_tensor *y = &sweep_out(&r, DLK_F32, 4, b->ys, SW_CONTIG)->v, *z = &sweep_out(&r, DLK_F32, 4, b->ys, SW_CONTIG)->v;
  dlk_status s = r.failed ? DLK_ERR_INTERNAL : dlk_conv2d_forward(ctx, &b->p, x, w, bias, y, z);
  CHECK(s == want, "got %s, expected %s (%s)", dlk_status_string(s), dlk_status_string(want), dlk_context_last_error(ctx));
  const char *msg = dlk_context_last_error(ctx);
  for (int i = 0; words && words[i]; i++)
    CHECK(strstr(msg, words[i]) != NULL, "message \"%s\" does not name \"%s\"", msg, words[i]);
  sweep_end(&r, s, NULL); /* a failed call: outputs still their fill, inputs unchanged */
  sweep_free(&v);
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
    sweep_rig r = {.ctx = ctx};
    sweep_set v = {0};
    sweep_uniform(&v, DLK_F32, prod(4, b.xs), -1, 1);
    sweep_uniform(&v, DLK_F32, prod(4, b.ws), -1, 1);
    sweep_uniform(&v, DLK_F32, prod(4, b.ys), -1, 1);
    sweep_uniform(&v, DLK_F16, prod(4, b.ws), -1, 1);
    dlk_tensor *x = &sweep_in(&r, DLK_F32, 4, b.xs, SW_CONTIG, v.a[0].v)->v;
    dlk_tensor *w = &sweep_in(&r, DLK_F32, 4, b.ws, SW_CONTIG, v.a[1].v)->v;
    dlk_tensor *dy = &sweep_in(&r, DLK_F32, 4, b.ys, SW_CHANNELS_LAST, v.a[2].v)->v;
    dlk_tensor *w16 = &sweep_in(&r, DLK_F16, 4, b.ws, SW_CONTIG, v.a[3].v)->v;
    dlk_tensor *y = &sweep_out(&r, DLK_F32, 4, b.ys, SW_CONTIG)->v;
    const int64_t bad_ws[4] = {6, 4, 3, 2}, dbs[1] = {6}, gs[3] = {2, 4, 5}, gs_ok[3] = {2, 4, 4};
    dlk_tensor *dx = &sweep_out(&r, DLK_F32, 4, b.xs, SW_CHANNELS_LAST)->v;
    dlk_tensor *dw_bad = &sweep_out(&r, DLK_F32, 4, bad_ws, SW_CONTIG)->v;
    dlk_tensor *db = &sweep_out(&r, DLK_F32, 1, dbs, SW_CONTIG)->v;
    dlk_tensor *g = &sweep_out(&r, DLK_F32, 3, gs, SW_CONTIG)->v, *g_ok = &sweep_out(&r, DLK_F32, 3, gs_ok, SW_CONTIG)->v;
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(ctx, &b.p, NULL, w, NULL, y, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "x is NULL"), "%s", dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, NULL, NULL));
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_forward(NULL, &b.p, x, w, NULL, y, NULL));
    CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_conv2d_forward(ctx, &b.p, x, w16, NULL, y, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "w is f16"), "%s", dlk_context_last_error(ctx));
    dlk_tensor yb = *y; /* y overlapping itself: a zero stride */
    yb.strides[1] = 0;
    CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, &yb, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "y") && strstr(dlk_context_last_error(ctx), "dim 1"), "%s",
          dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_conv2d_forward(ctx, &b.p, x, w, NULL, y, y)); /* z == y */
    /* backward: dw of the wrong shape, z missing with an activation, db over x, db length */
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, dx, dw_bad, db));
    CHECK(strstr(dlk_context_last_error(ctx), "dw") && strstr(dlk_context_last_error(ctx), "dim 3"), "%s",
          dlk_context_last_error(ctx));
    dlk_conv2d_params pr = b.p;
    pr.act = DLK_ACT_RELU;
    CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_conv2d_backward(ctx, &pr, x, w, NULL, dy, dx, NULL, db));
    CHECK(strstr(dlk_context_last_error(ctx), "z"), "%s", dlk_context_last_error(ctx));
    dlk_tensor db_on_x = *db;
    db_on_x.data = x->data;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, dx, NULL, &db_on_x));
    CHECK(strstr(dlk_context_last_error(ctx), "db and x overlap"), "%s", dlk_context_last_error(ctx));
    dlk_tensor db5 = *db;
    db5.shape[0] = 5;
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_conv2d_backward(ctx, &b.p, x, w, NULL, dy, NULL, NULL, &db5));
    CHECK(strstr(dlk_context_last_error(ctx), "db") && strstr(dlk_context_last_error(ctx), "dim 0"), "%s",
          dlk_context_last_error(ctx));
    /* a kernel whose dilated size overflows int64 */
    dlk_tensor whuge = *w;
    whuge.shape[2] = (int64_t)1 << 40, whuge.strides[2] = 0;
    dlk_conv2d_params ph = b.p;
    ph.dilation[0] = ((int64_t)1 << 31) - 1;
    CHECK_STATUS(ctx, DLK_ERR_OVERFLOW, dlk_conv2d_forward(ctx, &ph, x, &whuge, NULL, y, NULL));
    /* Gram: g of the wrong shape, bad norm, df of the wrong shape */
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_gram_forward(ctx, NULL, x, g));
    CHECK(strstr(dlk_context_last_error(ctx), "g has 5 in dim 2"), "%s", dlk_context_last_error(ctx));
    dlk_gram_params gp = {(dlk_gram_norm)7};
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_gram_forward(ctx, &gp, x, g_ok));
    CHECK(strstr(dlk_context_last_error(ctx), "norm 7"), "%s", dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_gram_backward(ctx, NULL, x, g, dx));
    sweep_end(&r, DLK_ERR_INVALID_ARGUMENT, NULL); /* every output must still be its fill */
    sweep_free(&v);
  }
#undef WORDS
}

/* ====================================================================================== */
/* Hostile shapes (fuzz_api's findings): empty tensors whose other dims are huge, kernels */
/* of an empty weight, sizes at the edge of int64                                          */
/* ====================================================================================== */

/* An f32 descriptor over data, row-major strides (a dim of 0 counts as 1). */
static dlk_tensor hdesc(void *data, int nd, const int64_t *shape) { return t_host_tensor(data, DLK_F32, nd, shape); }

static void fill_f32(float *v, int n, float x) {
  for (int i = 0; i < n; i++) v[i] = x;
}

static int all_f32(const float *v, int n, float x) {
  for (int i = 0; i < n; i++)
    if (v[i] != x) return 0;
  return 1;
}

static void test_hostile_shapes(dlk_context *ctx) {
  t_watchdog_arm("test_conv: a call on hostile shapes");
  const int64_t T40 = (int64_t)1 << 40;
  static float xv[64], wv[64], dyv[64], dxv[64], dwv[64], dbv[8], gv[64];
  fill_f32(xv, 64, 0.5f), fill_f32(wv, 64, 0.25f), fill_f32(dyv, 64, 1.0f);
  /* ids: AUTO (-1: im2col on the CPU), the reference (0), im2col (20) forced */
  static const int ids[3] = {-1, 0, 20};
  for (int v = 0; v < 3; v++) {
    snprintf(t_case_buf, sizeof t_case_buf, "hostile: conv2d_backward, N = 0 and H = 2^40 (variant %d)", ids[v]);
    t_case = t_case_buf;
    force_all(ctx, ids[v]);
    double t0 = t_now_s();
    /* N = 0: dw and db are sums over no image: zeros. im2col sized its workspace from
       Ho x Wo = 2^40 x 7 pixels (791 TB: the malloc failed after db was written). */
    const int64_t xs[4] = {0, 5, T40, 8}, ws4[4] = {2, 5, 2, 2}, ys[4] = {0, 2, T40 - 1, 7}, bs[1] = {2};
    dlk_tensor x = hdesc(xv, 4, xs), w = hdesc(wv, 4, ws4), dy = hdesc(dyv, 4, ys), dx = hdesc(dxv, 4, xs);
    dlk_tensor dw = hdesc(dwv, 4, ws4), db = hdesc(dbv, 1, bs);
    fill_f32(dwv, 40, NAN), fill_f32(dbv, 2, NAN);
    CHECK_OK(ctx, dlk_conv2d_backward(ctx, NULL, &x, &w, NULL, &dy, &dx, &dw, &db));
    CHECK(all_f32(dwv, 40, 0.0f) && all_f32(dbv, 2, 0.0f), "dw %g db %g: not zeros", dwv[0], dbv[0]);
    /* K = 0: w [0, 1, 2^31, 1] holds no element, so nothing bounds its kernel height;
       dx = 0. The reference looped over the 2^31 taps for each dx element, im2col asked
       for a 2^31 x 12-column workspace (96 GB). */
    dlk_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.padding[0] = (int64_t)1 << 30;
    const int64_t xs2[4] = {1, 1, 3, 3}, ws2[4] = {0, 1, (int64_t)1 << 31, 1}, ys2[4] = {1, 0, 4, 3};
    dlk_tensor x2 = hdesc(xv, 4, xs2), w2 = hdesc(wv, 4, ws2), dy2 = hdesc(dyv, 4, ys2), dx2 = hdesc(dxv, 4, xs2);
    fill_f32(dxv, 9, NAN);
    CHECK_OK(ctx, dlk_conv2d_backward(ctx, &p, &x2, &w2, NULL, &dy2, &dx2, NULL, NULL));
    CHECK(all_f32(dxv, 9, 0.0f), "dx %g: not zeros", dxv[0]);
    /* Gram of maps with no pixels (H = 2^40, W = 0): g = 0 (the reference looped 2^40 rows
       per entry) */
    const int64_t fs[4] = {2, 3, T40, 0}, gs[3] = {2, 3, 3};
    dlk_tensor f = hdesc(xv, 4, fs), g = hdesc(gv, 3, gs);
    fill_f32(gv, 18, NAN);
    if (ids[v] != 20) { /* gram has no im2col row */
      CHECK_OK(ctx, dlk_gram_forward(ctx, NULL, &f, &g));
      CHECK(all_f32(gv, 18, 0.0f), "g %g: not zeros", gv[0]);
    }
    const double took = t_now_s() - t0;
    CHECK(took < 1.0, "the calls took %.3f s", took);
    force_all(ctx, -1);
  }
  /* The largest height an f32 x can describe (its bytes must fit int64) plus the largest
     padding: H + 2 padding still fits, the output is empty, nothing runs. */
  t_case = "hostile: conv2d_forward, H = INT64_MAX / 4 with padding 2^31 - 1, stride 4";
  {
    const int64_t big = INT64_MAX / 4, pad = ((int64_t)1 << 31) - 1;
    const int64_t xs[4] = {0, 1, big, 1}, ws4[4] = {1, 1, 1, 1}, ys[4] = {0, 1, (big + 2 * pad - 1) / 4 + 1, 1};
    dlk_tensor x = hdesc(xv, 4, xs), w = hdesc(wv, 4, ws4), y = hdesc(dxv, 4, ys);
    dlk_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.padding[0] = pad;
    p.stride[0] = 4;
    CHECK_OK(ctx, dlk_conv2d_forward(ctx, &p, &x, &w, NULL, &y, NULL));
  }
  t_watchdog_disarm();
}

/* A forced variant that cannot take a call fails it with DLK_ERR_NOT_SUPPORTED and the
   reason, never falls back, and leaves the outputs untouched. On a GPU: every CUDA
   variant of conv2d_fwd forced on a channels-last and a padded depthwise problem; the
   NCHW-only depthwise kernel (4) must decline channels-last, naming the layout, and run
   the padded one (NCHW with padded rows and a misaligned start: its unit W stride is all
   it needs). On the CPU: the im2col variant forced under a workspace cap it does not fit. */
static void test_forced(dlk_context *ctx) {
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  conv_case cc = {.name = "forced_dw", .n = 2, .c = 8, .h = 9, .w = 9, .k = 8, .r = 3, .s = 3, .pad = {1, 1},
                  .groups = 8, .bias = 1};
  sweep_set in = {0};
  gen_conv(&cc, DLK_F32, &in);
  if (dev.type == DLK_CPU) {
    t_case = "forced im2col under a workspace cap";
    CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 64));
    CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", 20));
    dlk_status s = conv_call(ctx, K_FWD, &cc, DLK_F32, &in, NULL);
    CHECK(s == DLK_ERR_NOT_SUPPORTED, "got %s", dlk_status_string(s));
    CHECK(strstr(dlk_context_last_error(ctx), "workspace") != NULL, "%s", dlk_context_last_error(ctx));
    CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", -1));
    CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 0));
    sweep_free(&in);
    return;
  }
  int ids[32];
  const int nv = device_variants(ctx, "conv2d_fwd", ids, 32);
  int declined = 0;
  for (int i = 0; i < nv; i++)
    for (int l = 0; l < 2; l++) {
      cc.lay = l ? SW_PADDED : SW_CHANNELS_LAST;
      snprintf(t_case_buf, sizeof t_case_buf, "forced conv2d_fwd:%d on %s", ids[i], layout_name(cc.lay));
      t_case = t_case_buf;
      CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", ids[i]));
      dlk_status s = conv_call(ctx, K_FWD, &cc, DLK_F32, &in, NULL);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        CHECK(strstr(dlk_context_last_error(ctx), "conv2d_fwd") != NULL, "%s", dlk_context_last_error(ctx));
        if (ids[i] == 4) {
          declined++;
          CHECK(cc.lay == SW_CHANNELS_LAST, "depthwise declined NCHW memory: %s", dlk_context_last_error(ctx));
          CHECK(strstr(dlk_context_last_error(ctx), "NCHW") != NULL, "%s", dlk_context_last_error(ctx));
        }
      } else {
        CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
      }
    }
  CHECK_OK(ctx, dlk_force_variant(ctx, "conv2d_fwd", -1));
  t_case = "forced layout";
  CHECK(declined == 1, "the depthwise kernel (4) did not decline channels-last memory (and only that)");
  sweep_free(&in);
}

/* ====================================================================================== */
/* Explain mode                                                                            */
/* ====================================================================================== */

static void test_explain(dlk_context *ctx) {
  t_case = "explain";
  const conv_case cc = {.name = "explain", .n = 1, .c = 3, .h = 5, .w = 5, .k = 4, .r = 3, .s = 3, .pad = {1, 1},
                        .bias = 1, .act = 1};
  sweep_set in = {0}, out = {0};
  gen_conv(&cc, DLK_F32, &in);
  const char *report = NULL;
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, conv_call(ctx, K_FWD, &cc, DLK_F32, &in, &out));
  CHECK(out.n == 2 && isinf(out.a[0].v[0]), "explain mode ran the forward"); /* still the fill */
  sweep_free(&out);
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(strstr(report, "conv2d_fwd") && strstr(report, "cpu_ref") && strstr(report, "im2col"), "forward report:\n%s",
        report);
  CHECK_OK(ctx, conv_call(ctx, K_BWD_ALL, &cc, DLK_F32, &in, &out));
  sweep_free(&out);
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(strstr(report, "conv2d_bwd_bias") && strstr(report, "conv2d_bwd_data") && strstr(report, "conv2d_bwd_filter"),
        "backward report:\n%s", report);
  conv_case bad = cc; /* explain still checks the arguments */
  bad.pad[0] = -1;
  CHECK(conv_call(ctx, K_FWD, &bad, DLK_F32, &in, NULL) == DLK_ERR_INVALID_ARGUMENT, "explain skipped a check");
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  sweep_free(&in);
}

/* ====================================================================================== */
/* The rows and main                                                                       */
/* ====================================================================================== */

#define ROW(label, op, cases, gen, run, naive, tf32, tunable) \
  {label, op, SWEEP_CASES(cases), gen, run, naive, tf32, tunable, NULL, 0, NULL}

static const sweep_op conv_rows[] = {
    ROW("conv2d_fwd", "conv2d_fwd", conv_cases, gen_conv, run_fwd, naive_fwd, 1, 1),
    ROW("conv2d_bwd_data", "conv2d_bwd_data", conv_cases, gen_conv, run_bwd_data, naive_bwd_data, 1, -1),
    ROW("conv2d_bwd_filter", "conv2d_bwd_filter", conv_cases, gen_conv, run_bwd_filter, naive_bwd_filter, 1, -1),
    ROW("conv2d_bwd_bias (db)", "conv2d_bwd_bias", conv_cases, gen_conv, run_bwd_bias, naive_bwd_bias, 0, -1),
    ROW("conv2d_bwd_bias (dz, db)", "conv2d_bwd_bias", conv_cases, gen_conv, run_bwd_bias_dz, naive_bwd_bias_dz, 0,
        -1),
    ROW("gram_fwd", "gram_fwd", gram_cases, gen_gram, run_gram_fwd, naive_gram_fwd, 1, 1),
    ROW("gram_bwd", "gram_bwd", gram_cases, gen_gram, run_gram_bwd, naive_gram_bwd, 1, 1),
};

static void test_golden(dlk_context *ctx) {
  int n = 0;
  for (int pass = 0; pass < 2; pass++) { /* the CPU reference, then AUTO */
    force_all(ctx, pass == 0 ? 0 : -1);
    n += golden_each(ctx, "tests/golden/conv/conv2d.txt", golden_conv, NULL);
    n += golden_each(ctx, "tests/golden/conv/gram.txt", golden_gram, NULL);
  }
  force_all(ctx, -1);
  printf("golden: %d PyTorch case runs checked (CPU reference, then AUTO)\n", n);
}

static void test_fd(dlk_context *ctx) {
  static const conv_case fd_cases[] = {
      {.name = "3x3", .n = 2, .c = 3, .h = 5, .w = 4, .k = 2, .r = 3, .s = 3, .pad = {1, 1}, .bias = 1},
      {.name = "s2_dil_grouped", .n = 1, .c = 4, .h = 7, .w = 6, .k = 4, .r = 3, .s = 2, .stride = {2, 1},
       .pad = {2, 1}, .dil = {2, 2}, .groups = 2, .bias = 1, .act = 1},
      {.name = "depthwise_tanh", .n = 1, .c = 3, .h = 5, .w = 5, .k = 3, .r = 3, .s = 3, .stride = {2, 2},
       .pad = {1, 1}, .groups = 3, .bias = 1, .act = 2},
      {.name = "sigmoid_pad_big", .n = 1, .c = 2, .h = 3, .w = 3, .k = 2, .r = 2, .s = 3, .pad = {2, 2}, .bias = 1,
       .act = 3},
      {.name = "gelu_1x1", .n = 2, .c = 3, .h = 3, .w = 2, .k = 2, .r = 1, .s = 1, .bias = 1, .act = 4},
      {.name = "nobias", .n = 1, .c = 2, .h = 4, .w = 4, .k = 3, .r = 3, .s = 3, .stride = {1, 2}, .pad = {0, 1}},
  };
  for (int pass = 0; pass < 2; pass++) { /* every CPU backward: the reference, then im2col */
    force_all(ctx, pass == 0 ? 0 : 20);
    for (int i = 0; i < N_OF(fd_cases); i++) fd_conv_case(ctx, &fd_cases[i]);
    fd_gram(ctx);
  }
  force_all(ctx, -1);
  printf("finite differences: conv2d dx, dw, db (%d cases) and gram df, CPU reference and im2col\n",
         N_OF(fd_cases));
}

int main(int argc, char **argv) {
  if (sweep_list_ops(argc, argv, conv_rows, N_OF(conv_rows))) return 0;
  quick_mode = t_quick_mode();
  if (t_want_gpu(argc, argv)) {
    dlk_context *gpu = t_gpu_context_or_skip("test_conv");
    dlk_context *cpu = t_cpu_context();
    sweep_run(gpu, cpu, conv_rows, N_OF(conv_rows), quick_mode);
    test_forced(gpu);
    { /* host tensors on a CUDA context: a device mismatch naming the tensor */
      t_case = "gpu: host tensors";
      const conv_case cc = {.name = "host", .n = 1, .c = 2, .h = 4, .w = 4, .k = 2, .r = 3, .s = 3, .pad = {1, 1}};
      sweep_set in = {0};
      gen_conv(&cc, DLK_F32, &in);
      sweep_rig r = {.ctx = cpu};
      int64_t xs[4], ws[4], ys[4];
      cc_shapes(&cc, xs, ws, ys);
      dlk_tensor *x = &sweep_in(&r, DLK_F32, 4, xs, SW_CONTIG, in.a[IN_X].v)->v;
      dlk_tensor *w = &sweep_in(&r, DLK_F32, 4, ws, SW_CONTIG, in.a[IN_W].v)->v;
      dlk_tensor *y = &sweep_out(&r, DLK_F32, 4, ys, SW_CONTIG)->v;
      const dlk_conv2d_params p = cc_params(&cc);
      CHECK_STATUS(gpu, DLK_ERR_DEVICE_MISMATCH, dlk_conv2d_forward(gpu, &p, x, w, NULL, y, NULL));
      CHECK(strstr(dlk_context_last_error(gpu), "x is on cpu"), "%s", dlk_context_last_error(gpu));
      sweep_end(&r, DLK_ERR_DEVICE_MISMATCH, NULL);
      sweep_free(&in);
    }
    dlk_context_destroy(cpu);
    dlk_context_destroy(gpu);
    return t_summary("test_conv --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  test_golden(ctx);
  test_fd(ctx);
  sweep_run(ctx, NULL, conv_rows, N_OF(conv_rows), 0);
  /* the GPU run's path (the reference through a second context) on the quick subset */
  dlk_context *ref = t_cpu_context();
  sweep_run(ctx, ref, conv_rows, N_OF(conv_rows), 1);
  dlk_context_destroy(ref);
  test_bad_input(ctx);
  test_hostile_shapes(ctx);
  test_forced(ctx);
  test_explain(ctx);
  dlk_context_destroy(ctx);
  return t_summary("test_conv");
}
