/*
 * glove cases of dlk-bench (issue 4). Every variant the dispatcher lists for the op is
 * timed, on the GPU when there is one, else on the CPU at smaller sizes (seconds):
 *   glove_epoch          one epoch (dlk_glove_train_epoch) over a synthetic record set
 *                        resident on the context's device: V words, d dims, n records
 *                        whose ids follow a Zipf law (s = 1, like word frequencies, so
 *                        frequent rows collide as in real data) and counts X = e^u, u
 *                        uniform in [0, 6). bytes = n (16 + 8 (d + 1) es): the record plus
 *                        the four rows (word, context, their AdaGrad state) read and
 *                        written once each: the row traffic. records/s = n / median time
 *                        (n is in the shape). The model keeps training from run to run
 *                        (no output check). GPU: F64 at the tool's d = 50 (V 80000, 20M
 *                        records; V 5000, 2M), F32, the GPU's fast path, at d = 50 and
 *                        300 and F64 at d = 300 (V 100000). CPU: F64 at d = 50, V 80000
 *                        and V 5000 with 50k records each (--full: 1M and 500k; --quick:
 *                        25k), so that the default CPU run of the whole bench takes
 *                        seconds.
 *   glove_epoch_stream   the same records trained resident vs streamed from a file
 *                        (issue 4's target: a streamed epoch at >= 50% of the in-memory
 *                        speed). Variants: `resident` and `streamed` (max_resident_bytes
 *                        1: chunks read from the file by the reader thread into pinned
 *                        buffers, checked and, on a GPU, uploaded while the previous chunk
 *                        trains). Both rate the same bytes, so streamed GB/s / resident
 *                        GB/s is the fraction of the in-memory speed. The file is written
 *                        at setup, so it is read from the page cache: this measures dlk's
 *                        pipeline, not the disk.
 *   glove_cooccur_chunk  counting one chunk of a synthetic token stream (Zipf ids over V,
 *                        lines of 5..40 tokens) into sorted, summed records, window 15,
 *                        symmetric, 1/distance weights: dlk_dispatch of the chunk op on
 *                        host ids, results back in host memory (what dlk_glove_cooccur
 *                        does per chunk). bytes = 4 n + 16 P: the ids read and the P
 *                        weighted pairs the window generates, each once (the least any
 *                        method moves); tokens/s = n / median time.
 *   glove_topk           the analogy search's top-1 over a [V, 100] score matrix with 3
 *                        rows excluded per column; bytes = the scores read once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "glove/glove.h"

/* xorshift64*, seeded: the same synthetic data on every machine. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* Zipf(1) over 1..V by inverting the CDF (table of V doubles, binary search). */
typedef struct zipf {
  double *cdf;
  int64_t V;
} zipf;

static bool zipf_init(zipf *z, int64_t V) {
  z->V = V;
  z->cdf = malloc((size_t)V * sizeof *z->cdf);
  if (!z->cdf) return false;
  double s = 0;
  for (int64_t i = 0; i < V; i++) z->cdf[i] = (s += 1.0 / (double)(i + 1));
  for (int64_t i = 0; i < V; i++) z->cdf[i] /= s;
  return true;
}

static int32_t zipf_draw(const zipf *z, uint64_t *s) {
  double u = rng_uniform(s);
  int64_t lo = 0, hi = z->V - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (z->cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (int32_t)(lo + 1);
}

/* ---- glove_epoch ------------------------------------------------------------------------ */

typedef struct epoch_state {
  dlk_glove_model m;
  dlk_glove_records *r;
  bool have_model;
} epoch_state;

static void epoch_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  epoch_state *s = state;
  if (!s) return;
  if (s->have_model) dlk_glove_model_free(env->ctx, &s->m);
  dlk_glove_records_free(env->ctx, s->r);
  free(s);
}

static dlk_status epoch_setup(const bench_env *env, const bench_case *c, void **state) {
  epoch_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t V = c->dims[0], n = c->dims[2];
  int d = (int)c->dims[1];
  zipf z;
  if (!zipf_init(&z, V)) return DLK_ERR_OUT_OF_MEMORY;
  dlk_glove_record *recs = malloc((size_t)n * sizeof *recs);
  if (!recs) {
    free(z.cdf);
    return DLK_ERR_OUT_OF_MEMORY;
  }
  uint64_t seed = 0x51AB1E5EEDULL;
  for (int64_t i = 0; i < n; i++) {
    recs[i].w1 = zipf_draw(&z, &seed);
    recs[i].w2 = zipf_draw(&z, &seed);
    recs[i].x = exp(6.0 * rng_uniform(&seed));
  }
  free(z.cdf);
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_status st = dlk_glove_records_from_host(env->ctx, &rp, recs, n, &s->r);
  free(recs);
  BENCH_TRY(st);
  BENCH_TRY(dlk_glove_model_create(env->ctx, V, d, c->dt, 1, &s->m));
  s->have_model = true;
  return DLK_OK;
}

static dlk_status epoch_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c, (void)variant;
  epoch_state *s = state;
  dlk_glove_train_params p;
  BENCH_TRY(dlk_glove_train_defaults(env->ctx, &p)); /* threads 0: every core on a CPU */
  return dlk_glove_train_epoch(env->ctx, &p, &s->m, s->r, NULL);
}

static void add_epoch(bench_registry *r, int64_t V, int d, int64_t n, dlk_dtype dt) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "glove";
  c.op = "glove_epoch";
  snprintf(c.name, sizeof c.name, "glove_epoch");
  snprintf(c.shape, sizeof c.shape, "V=%lld,d=%d,n=%lld", (long long)V, d, (long long)n);
  snprintf(c.dtype, sizeof c.dtype, "%s", dt == DLK_F64 ? "f64" : "f32");
  c.bound = BENCH_MEMORY;
  c.bytes = (double)n * (16.0 + 8.0 * (d + 1) * (double)dlk_dtype_size(dt));
  c.dims[0] = V;
  c.dims[1] = d;
  c.dims[2] = n;
  c.dt = dt;
  c.setup = epoch_setup;
  c.run = epoch_run;
  c.teardown = epoch_teardown;
  c.note =
      "one GloVe epoch (AdaGrad) over n Zipf-distributed records resident on the context's "
      "device; "
      "records/s = n / median; GB/s counts the record and four rows of d+1 values read and "
      "written once";
  bench_add(r, &c);
}

/* ---- glove_epoch: streamed vs resident ------------------------------------------------------ */

enum { STREAM_RESIDENT = 1, STREAM_STREAMED = 2, STREAM_RESIDENT_CPU = 20, STREAM_STREAMED_CPU = 21 };

static const bench_variant stream_variants_gpu[] = {
    {STREAM_RESIDENT, "resident", "records resident on the device (dlk_glove_records_open, auto)"},
    {STREAM_STREAMED, "streamed",
     "max_resident_bytes 1: chunks read from the file by a reader thread into pinned buffers, "
     "checked and uploaded on a second stream while the previous chunk trains"},
};
static const bench_variant stream_variants_cpu[] = {
    {STREAM_RESIDENT_CPU, "resident", "records resident in host memory"},
    {STREAM_STREAMED_CPU, "streamed", "max_resident_bytes 1: chunks read by a reader thread while the previous one trains"},
};

typedef struct stream_state {
  dlk_glove_model m;
  bool have_model;
  dlk_glove_records *resident, *streamed;
  char path[512];
} stream_state;

static void stream_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  stream_state *s = state;
  if (!s) return;
  if (s->have_model) dlk_glove_model_free(env->ctx, &s->m);
  dlk_glove_records_free(env->ctx, s->resident);
  dlk_glove_records_free(env->ctx, s->streamed);
  if (s->path[0]) unlink(s->path);
  free(s);
}

static dlk_status stream_setup(const bench_env *env, const bench_case *c, void **state) {
  stream_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t V = c->dims[0], n = c->dims[2], chunk = c->dims[3];
  int d = (int)c->dims[1];
  const char *tmp = getenv("TMPDIR");
  snprintf(s->path, sizeof s->path, "%s/dlk_bench_glove_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(s->path);
  if (fd < 0) {
    s->path[0] = '\0';
    return DLK_ERR_IO;
  }
  close(fd);
  zipf z;
  if (!zipf_init(&z, V)) return DLK_ERR_OUT_OF_MEMORY;
  /* Written 1M records at a time: the same Zipf records as the epoch case. */
  const int64_t piece = 1 << 20;
  dlk_glove_record *recs = malloc((size_t)piece * sizeof *recs);
  FILE *f = recs ? fopen(s->path, "wb") : NULL;
  uint64_t seed = 0x51AB1E5EEDULL;
  bool ok = f != NULL;
  for (int64_t i = 0; ok && i < n; i += piece) {
    int64_t m = n - i < piece ? n - i : piece;
    for (int64_t k = 0; k < m; k++) {
      recs[k].w1 = zipf_draw(&z, &seed);
      recs[k].w2 = zipf_draw(&z, &seed);
      recs[k].x = exp(6.0 * rng_uniform(&seed));
    }
    ok = fwrite(recs, sizeof *recs, (size_t)m, f) == (size_t)m;
  }
  if (f && fclose(f) != 0) ok = false;
  free(recs);
  free(z.cdf);
  if (!ok) return DLK_ERR_IO;
  dlk_glove_records_params rp = {V, (size_t)-1, chunk}, sp = {V, 1, chunk};
  BENCH_TRY(dlk_glove_records_open(env->ctx, &rp, s->path, &s->resident));
  BENCH_TRY(dlk_glove_records_open(env->ctx, &sp, s->path, &s->streamed));
  BENCH_TRY(dlk_glove_model_create(env->ctx, V, d, c->dt, 1, &s->m));
  s->have_model = true;
  return DLK_OK;
}

static dlk_status stream_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c;
  stream_state *s = state;
  dlk_glove_train_params p;
  BENCH_TRY(dlk_glove_train_defaults(env->ctx, &p));
  bool streamed = variant == STREAM_STREAMED || variant == STREAM_STREAMED_CPU;
  return dlk_glove_train_epoch(env->ctx, &p, &s->m, streamed ? s->streamed : s->resident, NULL);
}

static void add_stream(bench_registry *r, const bench_env *env, int64_t V, int d, int64_t n,
                       int64_t chunk, dlk_dtype dt) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "glove";
  c.op = NULL;
  c.variants = env->gpu ? stream_variants_gpu : stream_variants_cpu;
  c.n_variants = 2;
  snprintf(c.name, sizeof c.name, "glove_epoch_stream");
  snprintf(c.shape, sizeof c.shape, "V=%lld,d=%d,n=%lld,chunk=%lld", (long long)V, d, (long long)n,
           (long long)chunk);
  snprintf(c.dtype, sizeof c.dtype, "%s", dt == DLK_F64 ? "f64" : "f32");
  c.bound = BENCH_MEMORY;
  c.bytes = (double)n * (16.0 + 8.0 * (d + 1) * (double)dlk_dtype_size(dt));
  c.dims[0] = V;
  c.dims[1] = d;
  c.dims[2] = n;
  c.dims[3] = chunk;
  c.dt = dt;
  c.setup = stream_setup;
  c.run = stream_run;
  c.teardown = stream_teardown;
  c.note =
      "one epoch over the same n records, resident vs streamed from a file in chunks (issue 4: "
      "streamed >= 50% of the resident speed; the ratio of the two GB/s figures); the file sits "
      "in the page cache";
  bench_add(r, &c);
}

/* ---- glove_topk ------------------------------------------------------------------------- */

typedef struct topk_state {
  dlk_tensor scores;
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

/* ---- glove_cooccur_chunk ------------------------------------------------------------------ */

typedef struct cooc_state {
  int32_t *ids;
  dlk_glove_record *out;
  int64_t n, out_cap, count;
} cooc_state;

static void cooc_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)env, (void)c;
  cooc_state *s = state;
  if (!s) return;
  free(s->ids);
  free(s->out);
  free(s);
}

static dlk_status cooc_setup(const bench_env *env, const bench_case *c, void **state) {
  (void)env;
  cooc_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t V = c->dims[0], n = c->dims[1], W = c->dims[2];
  zipf z;
  if (!zipf_init(&z, V)) return DLK_ERR_OUT_OF_MEMORY;
  s->n = n;
  s->ids = malloc((size_t)n * sizeof *s->ids);
  s->out_cap = n * W * 2;
  s->out = malloc((size_t)s->out_cap * sizeof *s->out);
  if (!s->ids || !s->out) {
    free(z.cdf);
    return DLK_ERR_OUT_OF_MEMORY;
  }
  uint64_t seed = 0xC0CC0Cull;
  int64_t left = 0;
  for (int64_t i = 0; i < n; i++) {
    if (left == 0) {
      left = 5 + (int64_t)(rng_next(&seed) % 36);
      if (i > 0) {
        s->ids[i] = 0; /* line break */
        continue;
      }
    }
    s->ids[i] = zipf_draw(&z, &seed);
    left--;
  }
  free(z.cdf);
  return DLK_OK;
}

static dlk_status cooc_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  cooc_state *s = state;
  dlk_glove_cooccur_chunk_args a = {s->ids, s->n, 0, c->dims[0], (int)c->dims[2], true, true,
                                    s->out, s->out_cap, &s->count};
  return dlk_dispatch(env->ctx, &dlk_glove_cooccur_chunk_op, &a);
}

static void add_cooc(bench_registry *r, int64_t V, int64_t n, int W) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "glove";
  c.op = "glove_cooccur_chunk";
  snprintf(c.name, sizeof c.name, "glove_cooccur_chunk");
  snprintf(c.shape, sizeof c.shape, "V=%lld,n=%lld,win=%d", (long long)V, (long long)n, W);
  snprintf(c.dtype, sizeof c.dtype, "f64");
  c.bound = BENCH_MEMORY;
  /* Pairs: each target pairs with up to W earlier tokens of its line (lines of 5..40
     tokens, so fewer near line starts); 2 W n bounds it and is what the rate uses. */
  c.bytes = 4.0 * (double)n + 16.0 * 2.0 * (double)W * (double)n;
  c.dims[0] = V;
  c.dims[1] = n;
  c.dims[2] = W;
  c.setup = cooc_setup;
  c.run = cooc_run;
  c.teardown = cooc_teardown;
  c.note =
      "co-occurrence count of one chunk of n Zipf token ids (window 15, symmetric, 1/k) into "
      "sorted summed records in host memory; tokens/s = n / median; GB/s uses the bound "
      "4 n + 16 x 2 W n";
  bench_add(r, &c);
}

void bench_family_glove(bench_registry *r, const bench_env *env);
void bench_family_glove(bench_registry *r, const bench_env *env) {
  if (env->gpu) {
    add_epoch(r, 80000, 50, 20000000, DLK_F64);
    add_epoch(r, 5000, 50, 2000000, DLK_F64);
    /* The tool's default d = 50 and the common d = 300, a 100k vocabulary, 16M records
       (four chunks of the default 4M); F32 is the GPU's fast path. */
    add_epoch(r, 100000, 50, 16 << 20, DLK_F32);
    add_epoch(r, 100000, 300, 4 << 20, DLK_F32);
    add_epoch(r, 100000, 300, 4 << 20, DLK_F64);
    add_topk(r, 80000, 100, 1);
    add_cooc(r, 100000, 2 << 20, 15);
    /* 32M records (512 MB) in 8 chunks of the default 4M, F32 at the tool's d = 50: the
       fast kernel, where streaming has the least time to hide behind. */
    add_stream(r, env, 100000, 50, (int64_t)32 << 20, (int64_t)4 << 20, DLK_F32);
  } else {
    add_epoch(r, 80000, 50, bench_cpu_size(env, 25000, 50000, 1000000), DLK_F64);
    add_epoch(r, 5000, 50, bench_cpu_size(env, 25000, 50000, 500000), DLK_F64);
    add_topk(r, 20000, 100, 0);
    add_cooc(r, 10000, bench_cpu_size(env, 20000, 20000, 100000), 15);
    /* Hogwild on every core; 8 chunks. */
    int64_t n = bench_cpu_size(env, (int64_t)32 << 10, (int64_t)64 << 10, (int64_t)256 << 10);
    add_stream(r, env, 10000, 50, n, n / 8, DLK_F64);
  }
}
