/*
 * glove cases of dlk-bench (issue 4), through the public calls so every variant of each
 * dispatched op is timed:
 *   glove_epoch  one training epoch (dlk_glove_train_epoch) over N synthetic records with
 *                Zipf-distributed word ids, at (V, d) = (80000, 50) and (5000, 50);
 *                records/s = N / time. bytes per record: the record (16) + the two rows
 *                and their accumulators read and written (4 (d+1) doubles, twice).
 *                Every run changes the model (no output compared).
 *   glove_topk   the analogy search's top-1 over a [V, 100] score matrix with 3 rows
 *                excluded per column; bytes = the scores read once.
 * N is 20M records (V 80000) on a GPU, 1M (quick: 500k) on the CPU; V 5000 with 500k / 200k
 * (the CPU run of the whole bench stays under a minute on 2 cores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct epoch_state {
  dlk_glove_model m;
  dlk_glove_records *r;
  int64_t n;
} epoch_state;

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static void epoch_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  epoch_state *s = state;
  if (!s) return;
  dlk_glove_records_free(env->ctx, s->r);
  if (s->m.params.data) dlk_glove_model_free(env->ctx, &s->m);
  free(s);
}

static dlk_status epoch_setup(const bench_env *env, const bench_case *c, void **state) {
  epoch_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t V = c->dims[0], d = c->dims[1], n = c->dims[2];
  dlk_glove_record *h = malloc((size_t)n * sizeof *h);
  if (!h) return DLK_ERR_OUT_OF_MEMORY;
  /* Zipf-like ids (rank ~ V u^3) and counts falling with the ranks, as real records have. */
  uint64_t rs = 0x9E3779B97F4A7C15ULL;
  for (int64_t i = 0; i < n; i++) {
    double u1 = rng_unit(&rs), u2 = rng_unit(&rs);
    int32_t a = (int32_t)(u1 * u1 * u1 * (double)V) + 1, b = (int32_t)(u2 * u2 * u2 * (double)V) + 1;
    h[i] = (dlk_glove_record){a, b, 1.0 + 5000.0 / ((double)a * (double)b)};
  }
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_status st = dlk_glove_records_from_host(env->ctx, &rp, h, n, &s->r);
  free(h);
  BENCH_TRY(st);
  s->n = n;
  return dlk_glove_model_create(env->ctx, V, (int)d, DLK_F64, 1, &s->m);
}

static dlk_status epoch_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c, (void)variant;
  epoch_state *s = state;
  dlk_glove_train_params p;
  BENCH_TRY(dlk_glove_train_defaults(env->ctx, &p));
  p.threads = 0; /* the context's cpu_threads, else every core */
  return dlk_glove_train_epoch(env->ctx, &p, &s->m, s->r, NULL);
}

static void add_epoch(bench_registry *r, int64_t V, int64_t d, int64_t n) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "glove";
  c.op = "glove_epoch";
  snprintf(c.name, sizeof c.name, "glove_epoch");
  snprintf(c.shape, sizeof c.shape, "V%lld d%lld n%lld", (long long)V, (long long)d, (long long)n);
  snprintf(c.dtype, sizeof c.dtype, "f64");
  c.bound = BENCH_MEMORY;
  c.bytes = (double)n * (16.0 + 4.0 * (double)(d + 1) * 8.0 * 2.0);
  c.note = "records/s = n / time; the model changes every run";
  c.dims[0] = V, c.dims[1] = d, c.dims[2] = n;
  c.setup = epoch_setup;
  c.run = epoch_run;
  c.teardown = epoch_teardown;
  bench_add(r, &c);
}

/* ---- top-k ---- */

typedef struct topk_state {
  dlk_tensor e, q, qt, scores;
  int32_t *idx;
  double *val;
  int32_t *ex;
} topk_state;

static void topk_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  topk_state *s = state;
  if (!s) return;
  bench_free(env, &s->scores);
  free(s->idx), free(s->val), free(s->ex);
  free(s);
}

static dlk_status topk_setup(const bench_env *env, const bench_case *c, void **state) {
  topk_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t V = c->dims[0], Q = c->dims[1];
  int64_t sh[2] = {V, Q};
  BENCH_TRY(bench_alloc(env, &s->scores, env->gpu ? DLK_F32 : DLK_F64, 2, sh));
  BENCH_TRY(bench_fill(env, &s->scores, -1, 1, 31));
  s->idx = malloc((size_t)Q * sizeof *s->idx);
  s->val = malloc((size_t)Q * sizeof *s->val);
  s->ex = malloc((size_t)Q * 3 * sizeof *s->ex);
  if (!s->idx || !s->val || !s->ex) return DLK_ERR_OUT_OF_MEMORY;
  for (int64_t i = 0; i < Q * 3; i++) s->ex[i] = (int32_t)((i * 7919) % V);
  return DLK_OK;
}

/* The op has no public entry of its own (dlk_glove_analogy_predict runs it after the
   GEMM); the case times it alone through the internal dispatcher. */
#include "glove.h"
static dlk_status topk_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c, (void)variant;
  topk_state *s = state;
  dlk_glove_topk_args a = {s->scores, s->ex, 3, 1, s->idx, s->val};
  return dlk_dispatch(env->ctx, &dlk_glove_topk_op, &a);
}

static void add_topk(bench_registry *r, int64_t V, int64_t Q, int gpu) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "glove";
  c.op = "glove_topk";
  snprintf(c.name, sizeof c.name, "glove_topk");
  snprintf(c.shape, sizeof c.shape, "%lldx%lld k1", (long long)V, (long long)Q);
  snprintf(c.dtype, sizeof c.dtype, gpu ? "f32" : "f64");
  c.bound = BENCH_MEMORY;
  c.bytes = (double)V * (double)Q * (gpu ? 4.0 : 8.0);
  c.dims[0] = V, c.dims[1] = Q;
  c.setup = topk_setup;
  c.run = topk_run;
  c.teardown = topk_teardown;
  bench_add(r, &c);
}

void bench_family_glove(bench_registry *r, const bench_env *env);
void bench_family_glove(bench_registry *r, const bench_env *env) {
  if (env->gpu) {
    add_epoch(r, 80000, 50, 20000000);
    add_epoch(r, 5000, 50, 2000000);
    add_topk(r, 80000, 100, 1);
  } else {
    add_epoch(r, 80000, 50, env->quick ? 500000 : 1000000);
    add_epoch(r, 5000, 50, env->quick ? 200000 : 500000);
    add_topk(r, 20000, 100, 0);
  }
}
