/*
 * nn cases of dlk-bench (issue 3), each run through the public call so that every
 * variant the dispatcher lists for the op is timed:
 *   gemm       C = A @ B at (M, N, K) = (4096, 4096, 4096), (1, 4096, 4096),
 *              (8192, 1024, 4096) in f32, tf32 (f32 tensors, allow_tf32 on), f16, bf16.
 *              flops = 2 M N K; bytes = (M K + K N + M N) * element size (each operand
 *              once: the minimum). M = 1 is a matrix-vector product, memory-bound, and
 *              rated in GB/s.
 *   softmax    softmax over the last dim at rows x cols = (8192, 1024), (4096, 32000),
 *              f32/f16/bf16; bytes = 2 R C es (read x, write y).
 *   layernorm  layer norm with gamma, beta and the saved mean/rstd at the same shapes;
 *              bytes = 2 R C es + 2 C es + 2 R * 4.
 *   adam       one Adam step on 100M parameters (f32; bf16 params with f32 state);
 *              bytes per parameter = 3 es (param read + written, grad read) + 16 (f32
 *              exp_avg and exp_avg_sq, each read + written).
 * Without a GPU the shapes shrink (rows to 512 and 128, GEMMs to 256..1024, Adam to 4M) so that the
 * CPU reference suite finishes in well under a minute; tf32 cases exist only on a GPU
 * (the CPU reference has no TF32 mode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char *dtype_label(dlk_dtype dt, int tf32) {
  if (tf32) return "tf32";
  return dt == DLK_F32 ? "f32" : dt == DLK_F16 ? "f16" : "bf16";
}

static double esize(dlk_dtype dt) {
  return (double)dlk_dtype_size(dt);
}

/* ---- gemm ------------------------------------------------------------------------------- */

typedef struct gemm_state {
  dlk_tensor a, b, c;
} gemm_state;

static void gemm_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  gemm_state *s = state;
  if (!s) return;
  bench_free(env, &s->a);
  bench_free(env, &s->b);
  bench_free(env, &s->c);
  free(s);
}

static dlk_status gemm_setup(const bench_env *env, const bench_case *c, void **state) {
  gemm_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t m = c->dims[0], n = c->dims[1], k = c->dims[2];
  int64_t sa[2] = {m, k}, sb[2] = {k, n}, sc[2] = {m, n};
  BENCH_TRY(bench_alloc(env, &s->a, c->dt, 2, sa));
  BENCH_TRY(bench_alloc(env, &s->b, c->dt, 2, sb));
  BENCH_TRY(bench_alloc(env, &s->c, c->dt, 2, sc));
  BENCH_TRY(bench_fill(env, &s->a, -1, 1, 11));
  BENCH_TRY(bench_fill(env, &s->b, -1, 1, 12));
  return DLK_OK;
}

static dlk_status gemm_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c, (void)variant;
  gemm_state *s = state;
  dlk_gemm_params p = {1.0, 0.0};
  return dlk_gemm(env->ctx, &p, &s->a, &s->b, &s->c);
}

static const dlk_tensor *gemm_output(void *state) {
  return &((gemm_state *)state)->c;
}

static void add_gemm(bench_registry *r, int64_t m, int64_t n, int64_t k, dlk_dtype dt, int tf32) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "nn";
  c.op = "gemm";
  snprintf(c.name, sizeof c.name, "gemm");
  snprintf(c.shape, sizeof c.shape, "%lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
  snprintf(c.dtype, sizeof c.dtype, "%s", dtype_label(dt, tf32));
  c.flops = 2.0 * (double)m * (double)n * (double)k;
  c.bytes = ((double)m * k + (double)k * n + (double)m * n) * esize(dt);
  /* Arithmetic intensity 2MNK / bytes: below ~50 flop/byte no GPU of the table is compute
     bound (H100: 990 TFLOP/s / 3.35 TB/s = 295 for bf16, 20 for f32). M = 1 gives ~1. */
  c.bound = m < 16 ? BENCH_MEMORY : BENCH_COMPUTE;
  c.allow_tf32 = tf32;
  c.dims[0] = m;
  c.dims[1] = n;
  c.dims[2] = k;
  c.dt = dt;
  c.setup = gemm_setup;
  c.run = gemm_run;
  c.output = gemm_output;
  c.teardown = gemm_teardown;
  c.note =
      "C = A @ B (alpha 1, beta 0), shape M x N x K, row-major A [M,K], B [K,N]; "
      "M = 1 is a matrix-vector product rated in GB/s";
  bench_add(r, &c);
}

/* ---- softmax and layer norm ------------------------------------------------------------ */

typedef struct row_state {
  dlk_tensor x, y, gamma, beta, mean, rstd;
} row_state;

enum { ROW_SOFTMAX = 0, ROW_LAYERNORM = 1 };

static void row_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  row_state *s = state;
  if (!s) return;
  bench_free(env, &s->x);
  bench_free(env, &s->y);
  bench_free(env, &s->gamma);
  bench_free(env, &s->beta);
  bench_free(env, &s->mean);
  bench_free(env, &s->rstd);
  free(s);
}

static dlk_status row_setup(const bench_env *env, const bench_case *c, void **state) {
  row_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t shape[2] = {c->dims[0], c->dims[1]};
  BENCH_TRY(bench_alloc(env, &s->x, c->dt, 2, shape));
  BENCH_TRY(bench_alloc(env, &s->y, c->dt, 2, shape));
  /* Logits in [-4, 4): exp spans e^8, enough to make the max-subtraction matter. */
  BENCH_TRY(bench_fill(env, &s->x, -4, 4, 21));
  if (c->arg == ROW_LAYERNORM) {
    int64_t d = c->dims[1], rows = c->dims[0];
    BENCH_TRY(bench_alloc(env, &s->gamma, c->dt, 1, &d));
    BENCH_TRY(bench_alloc(env, &s->beta, c->dt, 1, &d));
    BENCH_TRY(bench_alloc(env, &s->mean, DLK_F32, 1, &rows));
    BENCH_TRY(bench_alloc(env, &s->rstd, DLK_F32, 1, &rows));
    BENCH_TRY(bench_fill(env, &s->gamma, 0.5, 1.5, 22));
    BENCH_TRY(bench_fill(env, &s->beta, -0.5, 0.5, 23));
  }
  return DLK_OK;
}

static dlk_status row_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  row_state *s = state;
  if (c->arg == ROW_SOFTMAX) {
    dlk_softmax_params p = {0};
    return dlk_softmax_forward(env->ctx, &p, &s->x, &s->y);
  }
  dlk_layernorm_params p = {1e-5};
  return dlk_layernorm_forward(env->ctx, &p, &s->x, &s->gamma, &s->beta, &s->y, &s->mean, &s->rstd);
}

static const dlk_tensor *row_output(void *state) {
  return &((row_state *)state)->y;
}

static void add_row(bench_registry *r, int kind, int64_t rows, int64_t cols, dlk_dtype dt) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "nn";
  c.op = kind == ROW_SOFTMAX ? "softmax_fwd" : "layernorm_fwd";
  snprintf(c.name, sizeof c.name, "%s", kind == ROW_SOFTMAX ? "softmax" : "layernorm");
  snprintf(c.shape, sizeof c.shape, "%lldx%lld", (long long)rows, (long long)cols);
  snprintf(c.dtype, sizeof c.dtype, "%s", dtype_label(dt, 0));
  c.bound = BENCH_MEMORY;
  double n = (double)rows * (double)cols;
  if (kind == ROW_SOFTMAX) {
    c.bytes = 2 * n * esize(dt);
    c.flops = 4 * n; /* max, sub+exp, sum, scale: not what it is rated by */
    c.note = "softmax over the last dim; bytes = read x + write y";
  } else {
    c.bytes = 2 * n * esize(dt) + 2.0 * cols * esize(dt) + 2.0 * rows * 4;
    c.flops = 8 * n;
    c.note =
        "layer norm over the last dim with gamma, beta, saved mean and rstd (f32); "
        "bytes = x + y + gamma + beta + mean + rstd";
  }
  c.dims[0] = rows;
  c.dims[1] = cols;
  c.dt = dt;
  c.arg = kind;
  c.setup = row_setup;
  c.run = row_run;
  c.output = row_output;
  c.teardown = row_teardown;
  bench_add(r, &c);
}

/* ---- adam ---------------------------------------------------------------------------------- */

typedef struct adam_state {
  dlk_tensor param, grad, m, v;
} adam_state;

static void adam_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  adam_state *s = state;
  if (!s) return;
  bench_free(env, &s->param);
  bench_free(env, &s->grad);
  bench_free(env, &s->m);
  bench_free(env, &s->v);
  free(s);
}

static dlk_status adam_setup(const bench_env *env, const bench_case *c, void **state) {
  adam_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t n = c->dims[0];
  BENCH_TRY(bench_alloc(env, &s->param, c->dt, 1, &n));
  BENCH_TRY(bench_alloc(env, &s->grad, c->dt, 1, &n));
  BENCH_TRY(bench_alloc(env, &s->m, DLK_F32, 1, &n));
  BENCH_TRY(bench_alloc(env, &s->v, DLK_F32, 1, &n));
  BENCH_TRY(bench_fill(env, &s->param, -1, 1, 31));
  BENCH_TRY(bench_fill(env, &s->grad, -1e-2, 1e-2, 32));
  BENCH_TRY(dlk_tensor_zero(env->ctx, &s->m));
  BENCH_TRY(dlk_tensor_zero(env->ctx, &s->v));
  return DLK_OK;
}

static dlk_status adam_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c, (void)variant;
  adam_state *s = state;
  /* torch.optim.AdamW defaults; every run is "step 1" so the runs do the same work. */
  dlk_adam_params p = {1e-3, 0.9, 0.999, 1e-8, 1e-2, 1, 1};
  return dlk_adam_step(env->ctx, &p, &s->param, &s->grad, &s->m, &s->v);
}

static void add_adam(bench_registry *r, int64_t n, dlk_dtype dt) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "nn";
  c.op = "adam_step";
  snprintf(c.name, sizeof c.name, "adam");
  if (n % 1000000 == 0)
    snprintf(c.shape, sizeof c.shape, "%lldM params", (long long)(n / 1000000));
  else
    snprintf(c.shape, sizeof c.shape, "%lld params", (long long)n);
  snprintf(c.dtype, sizeof c.dtype, "%s", dtype_label(dt, 0));
  c.bound = BENCH_MEMORY;
  c.bytes = (double)n * (3 * esize(dt) + 16);
  c.flops = 12.0 * (double)n;
  c.dims[0] = n;
  c.dt = dt;
  c.setup = adam_setup;
  c.run = adam_run;
  c.output = NULL; /* each run updates its own inputs: nothing stable to compare */
  c.teardown = adam_teardown;
  c.note =
      "AdamW step (lr 1e-3, betas 0.9/0.999, weight decay 1e-2), f32 state; bytes = "
      "param r+w, grad r, exp_avg r+w, exp_avg_sq r+w";
  bench_add(r, &c);
}

/* ---- registration -------------------------------------------------------------------------- */

void bench_family_nn(bench_registry *r, const bench_env *env) {
  static const dlk_dtype float_types[] = {DLK_F32, DLK_F16, DLK_BF16};
  int gpu = env->gpu;

  /* GEMM: the shapes on a GPU; on the CPU the same aspect ratios, smaller. */
  int64_t gemm_shapes[3][3] = {{4096, 4096, 4096}, {1, 4096, 4096}, {8192, 1024, 4096}};
  if (!gpu) {
    int64_t sq = bench_cpu_size(env, 64, 128, 256), mv = bench_cpu_size(env, 512, 1024, 1024);
    int64_t cpu[3][3] = {{sq, sq, sq}, {1, mv, mv}, {bench_cpu_size(env, 128, 128, 512), 64, 256}};
    memcpy(gemm_shapes, cpu, sizeof cpu);
  }
  for (int s = 0; s < 3; s++) {
    for (int t = 0; t < 3; t++) {
      add_gemm(r, gemm_shapes[s][0], gemm_shapes[s][1], gemm_shapes[s][2], float_types[t], 0);
      if (t == 0 && gpu)
        add_gemm(r, gemm_shapes[s][0], gemm_shapes[s][1], gemm_shapes[s][2], DLK_F32, 1);
    }
  }

  /* Softmax and layer norm: far fewer rows on the CPU (1/64 and 1/512 by default, 1/16 and
     1/32 with --full). */
  int64_t row_shapes[2][2] = {{8192, 1024}, {4096, 32000}};
  if (!gpu) {
    row_shapes[0][0] = bench_cpu_size(env, 64, 128, 512);
    row_shapes[1][0] = bench_cpu_size(env, 8, 8, 128);
  }
  for (int kind = 0; kind < 2; kind++)
    for (int s = 0; s < 2; s++)
      for (int t = 0; t < 3; t++)
        add_row(r, kind, row_shapes[s][0], row_shapes[s][1], float_types[t]);

  /* Adam: 100M parameters (f32, and bf16 params with f32 state). */
  int64_t n = gpu ? 100000000 : bench_cpu_size(env, 250000, 500000, 4000000);
  add_adam(r, n, DLK_F32);
  add_adam(r, n, DLK_BF16);
}
