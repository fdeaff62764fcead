/*
 * rnn cases of dlk-bench (issue 12): DeepBench's recurrent set, one layer, one direction,
 * input size = hidden size, (hidden, batch, steps):
 *   RNN-tanh  (1760, 16, 50), (2560, 64, 50)
 *   LSTM      (512, 16, 25), (1024, 128, 25), (4096, 64, 25), (1536, 8, 50), (256, 16, 150),
 *             inference (512, 1, 25)
 *   GRU       (2816, 32, 750), (1024, 64, 1500), inference (2816, 1, 1500)
 * each as "fwd" (training forward, writing the reserve; inference cases run with
 * training = 0) and "fwd+bwd" (training forward, then the backward with dx, dh0 and every
 * weight gradient) in f32 and f16, plus the LSTM cell step at batch 1, hidden 512.
 * Every variant of rnn_fwd (and of rnn_cell_fwd) is timed; in the fwd+bwd cases the
 * backward runs AUTO, which takes the variant that reads the reserve the forced forward
 * wrote (the gemm backward after dlk's forwards, cuDNN's after cuDNN's).
 * flops: forward 2 T B G H (I + H) (gates' GEMMs; the pointwise is not counted), fwd+bwd
 * three times that (dx and dh, dW_ih and dW_hh). Without a GPU the shapes shrink to hidden
 * 32, batch 2, 5 steps (the CPU reference is a spec, not a fast path).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { K_FWD = 0, K_FWDBWD = 1, K_INFER = 2, K_CELL = 3 };

typedef struct rnn_state {
  dlk_rnn_params p;
  dlk_tensor x, y, hn, cn, res, dy, dx, dh0, dc0;
  dlk_tensor w[4], g[4];
  dlk_rnn_weights wt;
  dlk_rnn_grads gr;
  dlk_tensor h, c, ho, co, sv; /* cell */
} rnn_state;

static int64_t gates(dlk_rnn_mode m) { return m == DLK_RNN_LSTM ? 4 : m == DLK_RNN_GRU ? 3 : 1; }

static void rnn_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  rnn_state *s = state;
  if (!s) return;
  dlk_tensor *all[] = {&s->x, &s->y, &s->hn, &s->cn, &s->res, &s->dy, &s->dx, &s->dh0, &s->dc0,
                       &s->h, &s->c, &s->ho, &s->co, &s->sv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bench_free(env, all[i]);
  for (int i = 0; i < 4; i++) bench_free(env, &s->w[i]), bench_free(env, &s->g[i]);
  free(s);
}

/* dims: hidden, batch, steps; arg: mode; c->dt; kind in dims[3]. */
static dlk_status rnn_setup(const bench_env *env, const bench_case *c, void **state) {
  rnn_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  const dlk_rnn_mode mode = (dlk_rnn_mode)c->arg;
  const int64_t H = c->dims[0], B = c->dims[1], T = c->dims[2], kind = c->dims[3], G = gates(mode), I = H;
  const double a = 1.0 / (double)H; /* U(-1/sqrt H, 1/sqrt H) in spirit: small enough to stay tame */
  int64_t sw[4][2] = {{G * H, I}, {G * H, H}, {G * H, 1}, {G * H, 1}};
  for (int i = 0; i < 4; i++) {
    BENCH_TRY(bench_alloc(env, &s->w[i], c->dt, i < 2 ? 2 : 1, sw[i]));
    BENCH_TRY(bench_fill(env, &s->w[i], -a * 8, a * 8, 40 + (uint64_t)i));
  }
  s->wt = (dlk_rnn_weights){&s->w[0], &s->w[1], &s->w[2], &s->w[3], NULL};
  if (kind == K_CELL) {
    int64_t sx[2] = {B, I}, sh[2] = {B, H}, ss[2] = {B, dlk_rnn_cell_saved_cols(mode, H)};
    BENCH_TRY(bench_alloc(env, &s->x, c->dt, 2, sx));
    BENCH_TRY(bench_alloc(env, &s->h, c->dt, 2, sh));
    BENCH_TRY(bench_alloc(env, &s->c, c->dt, 2, sh));
    BENCH_TRY(bench_alloc(env, &s->ho, c->dt, 2, sh));
    BENCH_TRY(bench_alloc(env, &s->co, c->dt, 2, sh));
    BENCH_TRY(bench_alloc(env, &s->sv, c->dt, 2, ss));
    BENCH_TRY(bench_fill(env, &s->x, -1, 1, 50));
    BENCH_TRY(bench_fill(env, &s->h, -0.5, 0.5, 51));
    BENCH_TRY(bench_fill(env, &s->c, -0.5, 0.5, 52));
    return DLK_OK;
  }
  s->p.mode = mode;
  s->p.hidden_size = H;
  s->p.num_layers = 1;
  s->p.training = kind != K_INFER;
  int64_t sx[3] = {T, B, I}, sy[3] = {T, B, H}, sh[3] = {1, B, H};
  BENCH_TRY(bench_alloc(env, &s->x, c->dt, 3, sx));
  BENCH_TRY(bench_fill(env, &s->x, -1, 1, 53));
  BENCH_TRY(bench_alloc(env, &s->y, c->dt, 3, sy));
  BENCH_TRY(bench_alloc(env, &s->hn, c->dt, 3, sh));
  if (mode == DLK_RNN_LSTM) BENCH_TRY(bench_alloc(env, &s->cn, c->dt, 3, sh));
  if (s->p.training) {
    size_t bytes = 0;
    BENCH_TRY(dlk_rnn_reserve_size(env->ctx, &s->p, &s->x, &bytes));
    int64_t nb = (int64_t)bytes;
    BENCH_TRY(bench_alloc(env, &s->res, DLK_U8, 1, &nb));
  }
  if (kind == K_FWDBWD) {
    BENCH_TRY(bench_alloc(env, &s->dy, c->dt, 3, sy));
    BENCH_TRY(bench_fill(env, &s->dy, -1, 1, 54));
    BENCH_TRY(bench_alloc(env, &s->dx, c->dt, 3, sx));
    BENCH_TRY(bench_alloc(env, &s->dh0, c->dt, 3, sh));
    if (mode == DLK_RNN_LSTM) BENCH_TRY(bench_alloc(env, &s->dc0, c->dt, 3, sh));
    for (int i = 0; i < 4; i++) {
      BENCH_TRY(bench_alloc(env, &s->g[i], c->dt, i < 2 ? 2 : 1, sw[i]));
      BENCH_TRY(bench_fill(env, &s->g[i], 0, 0, 1));
    }
    s->gr = (dlk_rnn_grads){&s->g[0], &s->g[1], &s->g[2], &s->g[3], NULL};
  }
  return DLK_OK;
}

static dlk_status rnn_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  rnn_state *s = state;
  const int64_t kind = c->dims[3];
  const bool lstm = c->arg == DLK_RNN_LSTM;
  if (kind == K_CELL) {
    dlk_rnn_cell_params p = {(dlk_rnn_mode)c->arg, 0};
    return dlk_rnn_cell_forward(env->ctx, &p, &s->wt, &s->x, &s->h, lstm ? &s->c : NULL, &s->ho,
                                lstm ? &s->co : NULL, NULL);
  }
  BENCH_TRY(dlk_rnn_forward(env->ctx, &s->p, &s->wt, &s->x, NULL, NULL, NULL, &s->y, &s->hn, lstm ? &s->cn : NULL,
                            s->p.training ? &s->res : NULL));
  if (kind != K_FWDBWD) return DLK_OK;
  return dlk_rnn_backward(env->ctx, &s->p, &s->wt, &s->x, NULL, NULL, NULL, &s->y, &s->res, &s->dy, NULL, NULL, &s->dx,
                          &s->dh0, lstm ? &s->dc0 : NULL, &s->gr);
}

static const dlk_tensor *rnn_output(void *state) {
  rnn_state *s = state;
  return s->dx.data ? &s->dx : s->ho.data ? &s->ho : &s->y;
}

static void add_rnn(bench_registry *r, dlk_rnn_mode mode, int64_t H, int64_t B, int64_t T, int kind, dlk_dtype dt) {
  static const char *const mn[4] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
  static const char *const kn[4] = {"fwd", "fwd+bwd", "infer", "cell"};
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "rnn";
  c.op = kind == K_CELL ? "rnn_cell_fwd" : "rnn_fwd";
  snprintf(c.name, sizeof c.name, "%s_%s", mn[mode], kn[kind]);
  if (kind == K_CELL)
    snprintf(c.shape, sizeof c.shape, "h%lld b%lld", (long long)H, (long long)B);
  else
    snprintf(c.shape, sizeof c.shape, "h%lld b%lld t%lld", (long long)H, (long long)B, (long long)T);
  snprintf(c.dtype, sizeof c.dtype, "%s", dt == DLK_F32 ? "f32" : "f16");
  const double G = (double)gates(mode), steps = kind == K_CELL ? 1.0 : (double)T;
  c.flops = 2.0 * steps * (double)B * G * (double)H * (2.0 * (double)H) * (kind == K_FWDBWD ? 3.0 : 1.0);
  c.bytes = (G * (double)H * 2.0 * (double)H) * (double)dlk_dtype_size(dt); /* the weights, once */
  /* batch <= 16: the recurrent GEMMs are matrix-vector-like and read W_hh every step */
  c.bound = B <= 16 ? BENCH_MEMORY : BENCH_COMPUTE;
  if (c.bound == BENCH_MEMORY) c.bytes *= steps * (kind == K_FWDBWD ? 3.0 : 1.0);
  c.dims[0] = H, c.dims[1] = B, c.dims[2] = T, c.dims[3] = kind;
  c.arg = (int)mode;
  c.dt = dt;
  c.setup = rnn_setup;
  c.run = rnn_run;
  c.output = rnn_output;
  c.teardown = rnn_teardown;
  c.note = kind == K_CELL ? "one LSTM cell step (x, h, c -> h', c'), target <= 10 us per step on a GPU"
                          : "one layer, one direction, input = hidden; fwd+bwd: backward AUTO on the "
                            "forced forward's reserve, weight gradients accumulated";
  bench_add(r, &c);
}

void bench_family_rnn(bench_registry *r, const bench_env *env) {
  if (!env->gpu) { /* the CPU reference: tiny shapes (about 2 s for the family) */
    add_rnn(r, DLK_RNN_TANH, 32, 2, 5, K_FWD, DLK_F32);
    add_rnn(r, DLK_RNN_LSTM, 32, 2, 5, K_FWD, DLK_F32);
    add_rnn(r, DLK_RNN_LSTM, 32, 2, 5, K_FWDBWD, DLK_F32);
    add_rnn(r, DLK_RNN_LSTM, 32, 1, 5, K_INFER, DLK_F32);
    add_rnn(r, DLK_RNN_GRU, 32, 2, 5, K_FWD, DLK_F32);
    add_rnn(r, DLK_RNN_LSTM, 64, 1, 1, K_CELL, DLK_F32);
    return;
  }
  static const struct {
    dlk_rnn_mode mode;
    int64_t h, b, t;
    int infer;
  } cases[] = {
      {DLK_RNN_TANH, 1760, 16, 50, 0},  {DLK_RNN_TANH, 2560, 64, 50, 0}, {DLK_RNN_LSTM, 512, 16, 25, 0},
      {DLK_RNN_LSTM, 1024, 128, 25, 0}, {DLK_RNN_LSTM, 4096, 64, 25, 0}, {DLK_RNN_LSTM, 1536, 8, 50, 0},
      {DLK_RNN_LSTM, 256, 16, 150, 0},  {DLK_RNN_LSTM, 512, 1, 25, 1},   {DLK_RNN_GRU, 2816, 32, 750, 0},
      {DLK_RNN_GRU, 1024, 64, 1500, 0}, {DLK_RNN_GRU, 2816, 1, 1500, 1},
  };
  static const dlk_dtype dts[] = {DLK_F32, DLK_F16};
  const int n = env->quick ? 4 : (int)(sizeof cases / sizeof cases[0]);
  for (int d = 0; d < 2; d++)
    for (int i = 0; i < n; i++) {
      if (cases[i].infer) {
        add_rnn(r, cases[i].mode, cases[i].h, cases[i].b, cases[i].t, K_INFER, dts[d]);
        continue;
      }
      add_rnn(r, cases[i].mode, cases[i].h, cases[i].b, cases[i].t, K_FWD, dts[d]);
      add_rnn(r, cases[i].mode, cases[i].h, cases[i].b, cases[i].t, K_FWDBWD, dts[d]);
    }
  add_rnn(r, DLK_RNN_LSTM, 512, 1, 1, K_CELL, DLK_F32);
  add_rnn(r, DLK_RNN_LSTM, 512, 1, 1, K_CELL, DLK_F16);
}
