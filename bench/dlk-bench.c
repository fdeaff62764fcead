/*
 * dlk-bench: times every variant of every registered case (bench.h) and reports median
 * and min time, achieved TFLOP/s or GB/s, the fraction of the device's peak and of the
 * copy bandwidth measured here, and the ratio to the vendor variant on the same case.
 *
 *   dlk-bench [--family F] [--variant V] [--dtype T] [--json FILE] [--plot FILE.svg]
 *             [--from-json FILE] [--quick] [--full] [--list] [--cpu] [--runs N]
 *
 * Method (GPU): per (case, variant) one warm-up run (synchronised: it reports "not
 * supported" and grows the workspace), its output read back and compared with the first
 * variant's, two more warm-up runs, then N timed runs; before each timed run a
 * cudaMemsetAsync of twice the L2 size on the same stream flushes L2, and a pair of CUDA
 * events around the run measures it. N >= 20 (>= 5 with --quick), more for short runs
 * (up to 100, about 200 ms of timed work). Host-overhead cases are timed with the
 * monotonic clock around the calls only (synchronised before and after, untimed).
 * Without a GPU the same statistics are taken with the monotonic clock on the CPU cases
 * (smaller shapes: the whole run in seconds; --full: larger ones, about a minute on 2
 * cores), flushing a 32 MiB buffer between runs. Every option is checked before any case
 * runs (an unknown variant or dtype, an output file that cannot be written).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_families.h"
#include "bench_git.h"
#include "core/half.h"
#include "report.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#define MAX_RUNS 100
#define MAX_VARIANTS 32
#define CPU_FLUSH_BYTES ((size_t)32 << 20)

/* ---- the registry ---------------------------------------------------------------------- */

struct bench_registry {
  bench_case *cases;
  int n, cap;
  int oom;
};

void bench_add(bench_registry *r, const bench_case *c) {
  if (r->n == r->cap) {
    int ncap = r->cap ? r->cap * 2 : 64;
    bench_case *nc = realloc(r->cases, (size_t)ncap * sizeof *nc);
    if (!nc) {
      r->oom = 1;
      return;
    }
    r->cases = nc;
    r->cap = ncap;
  }
  r->cases[r->n++] = *c;
}

#define X(f) void bench_family_##f(bench_registry *r, const bench_env *env);
BENCH_FAMILIES(X)
#undef X

static const struct {
  const char *name;
  void (*add)(bench_registry *r, const bench_env *env);
} families[] = {
#define X(f) {#f, bench_family_##f},
    BENCH_FAMILIES(X)
#undef X
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

/* ---- helpers for setup functions --------------------------------------------------------- */

dlk_status bench_alloc(const bench_env *env, dlk_tensor *t, dlk_dtype dt, int ndim,
                       const int64_t *shape) {
  return dlk_tensor_alloc(env->ctx, t, dt, ndim, shape);
}

void bench_free(const bench_env *env, dlk_tensor *t) {
  if (t && t->data) dlk_tensor_free(env->ctx, t);
}

/* SplitMix64: a seeded, machine-independent stream. */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

dlk_status bench_fill(const bench_env *env, dlk_tensor *t, double lo, double hi, uint64_t seed) {
  int64_t n = dlk_tensor_numel(t);
  size_t es = dlk_dtype_size(t->dtype);
  if (n == 0) return DLK_OK;
  int64_t rows = t->ndim ? t->shape[0] : 1, inner = n / rows;
  /* Chunks of about 4M elements along dim 0. */
  int64_t chunk = inner >= ((int64_t)1 << 22) ? 1 : ((int64_t)1 << 22) / inner;
  if (chunk > rows) chunk = rows;
  void *buf = malloc((size_t)(chunk * inner) * es);
  if (!buf) return DLK_ERR_OUT_OF_MEMORY;
  uint64_t st = seed;
  int is_int = t->dtype == DLK_I32 || t->dtype == DLK_I64 || t->dtype == DLK_U8;
  dlk_status s = DLK_OK;
  for (int64_t r0 = 0; r0 < rows && s == DLK_OK; r0 += chunk) {
    int64_t len = rows - r0 < chunk ? rows - r0 : chunk;
    for (int64_t i = 0; i < len * inner; i++) {
      double u = (double)(splitmix(&st) >> 11) * (1.0 / 9007199254740992.0);
      double v = lo + (hi - lo) * u;
      dlk_store(buf, t->dtype, i, is_int ? floor(v) : v);
    }
    dlk_tensor view = *t;
    if (t->ndim) s = dlk_tensor_slice(env->ctx, &view, t, 0, r0, len);
    if (s == DLK_OK) s = dlk_tensor_write(env->ctx, &view, buf, (size_t)(len * inner) * es);
  }
  free(buf);
  return s;
}

/* ---- timing -------------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct bench_timer {
  const bench_env *env;
  void *flush; /* device buffer of 2x L2 (GPU) or a host buffer (CPU) */
  size_t flush_bytes;
#if DLK_HAVE_CUDA
  cudaEvent_t ev[2 * MAX_RUNS];
  int n_ev;
#endif
} bench_timer;

#if DLK_HAVE_CUDA
/* CUDA runtime failures inside the harness: a message and DLK_ERR_CUDA. */
#define BENCH_CUDA(call, msg, len)                                 \
  do {                                                             \
    cudaError_t e_ = (call);                                       \
    if (e_ != cudaSuccess) {                                       \
      snprintf(msg, len, "%s: %s", #call, cudaGetErrorString(e_)); \
      cudaGetLastError();                                          \
      return DLK_ERR_CUDA;                                         \
    }                                                              \
  } while (0)
#endif

static dlk_status timer_init(bench_timer *tm, const bench_env *env, char *msg, size_t len) {
  memset(tm, 0, sizeof *tm);
  tm->env = env;
  if (!env->gpu) {
    tm->flush_bytes = CPU_FLUSH_BYTES;
    tm->flush = malloc(tm->flush_bytes);
    if (!tm->flush) {
      snprintf(msg, len, "cannot allocate the %zu-byte cache flush buffer", tm->flush_bytes);
      return DLK_ERR_OUT_OF_MEMORY;
    }
    return DLK_OK;
  }
#if DLK_HAVE_CUDA
  dlk_device dev;
  dlk_context_device(env->ctx, &dev);
  int l2 = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev.id), msg, len);
  tm->flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : (64 << 20));
  BENCH_CUDA(cudaMalloc(&tm->flush, tm->flush_bytes), msg, len);
  for (tm->n_ev = 0; tm->n_ev < 2 * MAX_RUNS; tm->n_ev++)
    BENCH_CUDA(cudaEventCreate(&tm->ev[tm->n_ev]), msg, len);
  return DLK_OK;
#else
  snprintf(msg, len, "built without CUDA");
  return DLK_ERR_NO_DEVICE;
#endif
}

static void timer_free(bench_timer *tm) {
  if (!tm->env) return;
  if (!tm->env->gpu) {
    free(tm->flush);
  } else {
#if DLK_HAVE_CUDA
    for (int i = 0; i < tm->n_ev; i++) cudaEventDestroy(tm->ev[i]);
    if (tm->flush) cudaFree(tm->flush);
    cudaGetLastError();
#endif
  }
  memset(tm, 0, sizeof *tm);
}

static dlk_status run_failed(const bench_env *env, dlk_status s, char *msg, size_t len) {
  snprintf(msg, len, "%s", dlk_context_last_error(env->ctx));
  if (!msg[0]) snprintf(msg, len, "%s", dlk_status_string(s));
  return s;
}

/* `runs` timed runs of variant v; ms[i] is run i in milliseconds (per run, not per call). */
static dlk_status time_runs(bench_timer *tm, const bench_case *c, void *state, int v, int runs,
                            double *ms, char *msg, size_t len) {
  const bench_env *env = tm->env;
  dlk_status s = DLK_OK;
  if (c->bound == BENCH_HOST) {
    /* Host time of the calls only: the queue is drained before and after, untimed. */
    for (int i = 0; i < runs; i++) {
      if ((s = dlk_synchronize(env->ctx)) != DLK_OK) return run_failed(env, s, msg, len);
      double t0 = now_ms();
      s = c->run(env, c, state, v);
      ms[i] = now_ms() - t0;
      if (s != DLK_OK) return run_failed(env, s, msg, len);
    }
    if ((s = dlk_synchronize(env->ctx)) != DLK_OK) return run_failed(env, s, msg, len);
    return DLK_OK;
  }
  if (!env->gpu) {
    for (int i = 0; i < runs; i++) {
      /* Evict the caches: write a buffer larger than what the run can keep cached. */
      memset(tm->flush, i & 0xff, tm->flush_bytes);
      double t0 = now_ms();
      s = c->run(env, c, state, v);
      ms[i] = now_ms() - t0;
      if (s != DLK_OK) return run_failed(env, s, msg, len);
    }
    return DLK_OK;
  }
#if DLK_HAVE_CUDA
  void *stream = NULL;
  dlk_context_get_stream(env->ctx, &stream);
  cudaStream_t st = (cudaStream_t)stream;
  if (runs > MAX_RUNS) runs = MAX_RUNS;
  int done = 0;
  for (; done < runs; done++) {
    BENCH_CUDA(cudaMemsetAsync(tm->flush, done & 0xff, tm->flush_bytes, st), msg, len);
    BENCH_CUDA(cudaEventRecord(tm->ev[2 * done], st), msg, len);
    s = c->run(env, c, state, v);
    if (s != DLK_OK) break;
    BENCH_CUDA(cudaEventRecord(tm->ev[2 * done + 1], st), msg, len);
  }
  /* Drain before reporting, whatever happened. */
  cudaError_t e = cudaStreamSynchronize(st);
  if (s != DLK_OK) return run_failed(env, s, msg, len);
  BENCH_CUDA(e, msg, len);
  for (int i = 0; i < runs; i++) {
    float t = 0;
    BENCH_CUDA(cudaEventElapsedTime(&t, tm->ev[2 * i], tm->ev[2 * i + 1]), msg, len);
    ms[i] = t;
  }
  return DLK_OK;
#else
  snprintf(msg, len, "built without CUDA");
  return DLK_ERR_NO_DEVICE;
#endif
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_of(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- output check: every variant's output against the first variant's ---------------- */

typedef struct bench_ref {
  double *v;
  int64_t n;
  double scale; /* max |v|, at least 1 */
  int variant;
} bench_ref;

/* Read t (contiguous) to host doubles; NULL on failure. */
static double *read_doubles(const bench_env *env, const dlk_tensor *t, int64_t *n_out) {
  int64_t n = dlk_tensor_numel(t);
  size_t es = dlk_dtype_size(t->dtype);
  void *raw = malloc((size_t)n * es);
  double *v = malloc((size_t)n * sizeof *v);
  if (!raw || !v || dlk_tensor_read(env->ctx, t, raw, (size_t)n * es) != DLK_OK) {
    free(raw);
    free(v);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) v[i] = dlk_load(raw, t->dtype, i);
  free(raw);
  *n_out = n;
  return v;
}

/* Agreement allowed between two variants, relative to max |ref|: accumulation order and
   the output's rounding (f16 half-ulp 5e-4, bf16 4e-3, TF32 inputs ~1e-3 each). */
static double check_tolerance(const char *dtype) {
  if (!strcmp(dtype, "f32")) return 1e-4;
  if (!strcmp(dtype, "tf32")) return 1e-2;
  if (!strcmp(dtype, "f16")) return 1e-2;
  if (!strcmp(dtype, "bf16")) return 3e-2;
  return 1e-2;
}

static void check_output(const bench_env *env, const bench_case *c, void *state, int v,
                         bench_ref *ref, bench_result *res) {
  if (!c->output) return;
  const dlk_tensor *out = c->output(state);
  if (!out) return;
  int64_t n = 0;
  double *got = read_doubles(env, out, &n);
  if (!got) return;
  if (!ref->v) {
    double m = 1.0;
    for (int64_t i = 0; i < n; i++)
      if (fabs(got[i]) > m) m = fabs(got[i]);
    ref->v = got;
    ref->n = n;
    ref->scale = m;
    ref->variant = v;
    res->check_err = 0;
    return;
  }
  double worst = 0;
  for (int64_t i = 0; i < n && i < ref->n; i++) {
    double d = fabs(got[i] - ref->v[i]);
    if (isnan(d) && !(isnan(got[i]) && isnan(ref->v[i]))) d = INFINITY;
    if (d > worst) worst = d;
  }
  if (n != ref->n) worst = INFINITY;
  res->check_err = worst / ref->scale;
  res->check_bad = !(res->check_err <= check_tolerance(c->dtype));
  free(got);
}

/* ---- one case ---------------------------------------------------------------------------- */

typedef struct bench_opts {
  const char *family, *variant, *dtype, *json, *plot, *from_json;
  int quick, full, list, cpu, runs;
} bench_opts;

typedef struct bench_vrow {
  int id;
  char name[48];
  char description[160];
} bench_vrow;

static int variant_selected(const bench_opts *o, const bench_vrow *v) {
  if (!o->variant) return 1;
  char *end;
  long id = strtol(o->variant, &end, 10);
  if (*o->variant && *end == '\0') return id == v->id;
  return strcmp(o->variant, v->name) == 0;
}

/* The variants of a case that run on the context's device. */
static int case_variants(const bench_env *env, const bench_case *c, bench_vrow *rows, int cap) {
  int n = 0;
  if (!c->op) {
    for (int i = 0; i < c->n_variants && n < cap; i++, n++) {
      rows[n].id = c->variants[i].id;
      snprintf(rows[n].name, sizeof rows[n].name, "%s", c->variants[i].name);
      snprintf(rows[n].description, sizeof rows[n].description, "%s",
               c->variants[i].description ? c->variants[i].description : "");
    }
    return n;
  }
  dlk_variant_info info[MAX_VARIANTS];
  int count = 0;
  if (dlk_op_variants(env->ctx, c->op, info, MAX_VARIANTS, &count) != DLK_OK) return -1;
  dlk_device dev;
  dlk_context_device(env->ctx, &dev);
  for (int i = 0; i < count && i < MAX_VARIANTS && n < cap; i++) {
    if (info[i].device != dev.type) continue;
    rows[n].id = info[i].id;
    snprintf(rows[n].name, sizeof rows[n].name, "%s", info[i].name);
    snprintf(rows[n].description, sizeof rows[n].description, "%s", info[i].description);
    n++;
  }
  return n;
}

static bench_result *new_result(bench_report *rep, const bench_case *c, const char *op,
                                const bench_vrow *v) {
  bench_result *x = bench_report_push(rep);
  if (!x) return NULL;
  snprintf(x->family, sizeof x->family, "%s", c->family);
  snprintf(x->name, sizeof x->name, "%s", c->name);
  snprintf(x->shape, sizeof x->shape, "%s", c->shape);
  snprintf(x->dtype, sizeof x->dtype, "%s", c->dtype);
  snprintf(x->op, sizeof x->op, "%s", op ? op : "");
  x->bound = c->bound;
  x->flops = c->flops;
  x->bytes = c->bytes;
  x->calls = c->calls > 0 ? c->calls : 1;
  x->target_us = c->target_us;
  x->variant = v ? v->id : -1;
  if (v) snprintf(x->variant_name, sizeof x->variant_name, "%s", v->name);
  x->vendor = v && v->id >= 10 && v->id < 20;
  return x;
}

/* Rates and ratios of the results [from, to) of one case. */
static void derive(bench_report *rep, int from, int to) {
  double vendor_best = NAN;
  for (int i = from; i < to; i++) {
    bench_result *x = &rep->results[i];
    if (x->outcome != BENCH_RAN) continue;
    double s = x->median_ms * 1e-3;
    if (x->flops > 0) x->tflops = x->flops / s / 1e12;
    if (x->bytes > 0) x->gbs = x->bytes / s / 1e9;
    if (x->bound == BENCH_HOST) x->us_per_call = x->median_ms * 1e3 / x->calls;
    x->peak =
        x->bound == BENCH_HOST ? x->target_us : bench_peak_of(&rep->peaks, x->dtype, x->bound);
    if (x->bound == BENCH_COMPUTE) x->pct_peak = x->tflops / x->peak;
    if (x->bound == BENCH_MEMORY) {
      x->pct_peak = x->gbs / x->peak;
      if (rep->copy_gbs > 0) x->pct_copy = x->gbs / rep->copy_gbs;
    }
    if (x->bound == BENCH_HOST && x->target_us > 0) x->pct_peak = x->target_us / x->us_per_call;
    if (x->vendor && !(x->median_ms >= vendor_best)) vendor_best = x->median_ms;
  }
  for (int i = from; i < to; i++) {
    bench_result *x = &rep->results[i];
    if (x->outcome == BENCH_RAN && vendor_best > 0) x->x_vendor = vendor_best / x->median_ms;
  }
}

/* Discover the dispatcher op a case's public call uses: one call in explain mode (runs
   nothing), whose report starts with the op name. */
static int discover_op(const bench_env *env, const bench_case *c, void *state, char *op, size_t n) {
  const char *text = NULL;
  dlk_explain_mode(env->ctx, 1);
  dlk_status s = c->run(env, c, state, 0);
  if (s == DLK_OK) dlk_explain_report(env->ctx, &text);
  dlk_explain_mode(env->ctx, 0);
  if (!text || !*text) return 0;
  size_t k = strcspn(text, " \n");
  if (k == 0 || k >= n) return 0;
  memcpy(op, text, k);
  op[k] = '\0';
  return 1;
}

static void run_variant(bench_timer *tm, const bench_opts *o, const bench_case *c, void *state,
                        const char *op, const bench_vrow *v, bench_ref *ref, bench_result *x) {
  const bench_env *env = tm->env;
  char msg[sizeof x->reason];
  msg[0] = '\0';
  if (op && dlk_force_variant(env->ctx, op, v->id) != DLK_OK) {
    x->outcome = BENCH_FAILED;
    snprintf(x->reason, sizeof x->reason, "cannot force: %s", dlk_context_last_error(env->ctx));
    return;
  }
  dlk_context_clear_error(env->ctx);
  double ms[MAX_RUNS];
  /* Warm-up 1, synchronised: the variant says here whether it supports the case. */
  double t0 = now_ms();
  dlk_status s = c->run(env, c, state, v->id);
  if (s == DLK_OK) s = dlk_synchronize(env->ctx);
  double first_ms = now_ms() - t0;
  if (s != DLK_OK) {
    run_failed(env, s, msg, sizeof msg);
    x->outcome = s == DLK_ERR_NOT_SUPPORTED ? BENCH_NOT_SUPPORTED : BENCH_FAILED;
    snprintf(x->reason, sizeof x->reason, "%s", msg);
    goto out;
  }
  check_output(env, c, state, v->id, ref, x);
  int base = o->runs > 0 ? o->runs : (o->quick ? 5 : 20);
  int runs = base;
  if (env->gpu && c->bound != BENCH_HOST) {
    /* Two more warm-up runs, which also size the number of timed runs. */
    if ((s = time_runs(tm, c, state, v->id, 2, ms, msg, sizeof msg)) != DLK_OK) goto fail;
    double warm = ms[0] < ms[1] ? ms[0] : ms[1];
    double budget = o->quick ? 50.0 : 200.0;
    int cap = o->quick ? 20 : MAX_RUNS;
    if (o->runs <= 0 && warm > 0 && budget / warm > runs) runs = (int)(budget / warm);
    if (runs > cap && o->runs <= 0) runs = cap;
  }
  (void)first_ms;
  if (runs > MAX_RUNS) runs = MAX_RUNS;
  if ((s = time_runs(tm, c, state, v->id, runs, ms, msg, sizeof msg)) != DLK_OK) goto fail;
  x->runs = runs;
  x->min_ms = ms[0];
  for (int i = 1; i < runs; i++)
    if (ms[i] < x->min_ms) x->min_ms = ms[i];
  x->median_ms = median_of(ms, runs);
  x->outcome = BENCH_RAN;
  goto out;
fail:
  x->outcome = s == DLK_ERR_NOT_SUPPORTED ? BENCH_NOT_SUPPORTED : BENCH_FAILED;
  snprintf(x->reason, sizeof x->reason, "%s", msg);
out:
  if (op) dlk_force_variant(env->ctx, op, -1);
}

/* Runs every selected variant of case c; appends its results to rep. Returns the number
   of results added (0: nothing selected), -1 when the case could not be set up. */
static int run_case(bench_timer *tm, const bench_opts *o, const bench_case *c, bench_report *rep,
                    int force_all_variants) {
  const bench_env *env = tm->env;
  void *state = NULL;
  int from = rep->n;
  dlk_context_set_allow_tf32(env->ctx, c->allow_tf32);
  dlk_context_clear_error(env->ctx);
  dlk_status s = c->setup ? c->setup(env, c, &state) : DLK_OK;
  if (s != DLK_OK) {
    bench_result *x = new_result(rep, c, c->op, NULL);
    if (x) {
      /* A setup that answers NOT_SUPPORTED (an op not built in) is not a failure. */
      x->outcome = s == DLK_ERR_NOT_SUPPORTED ? BENCH_NOT_SUPPORTED : BENCH_FAILED;
      snprintf(x->reason, sizeof x->reason, "setup: %s: %s", dlk_status_string(s),
               dlk_context_last_error(env->ctx));
    }
    if (c->teardown) c->teardown(env, c, state);
    dlk_context_set_allow_tf32(env->ctx, 0);
    return x ? 1 : -1;
  }
  char op[48] = "";
  if (c->op) {
    snprintf(op, sizeof op, "%s", c->op);
    int count;
    if (dlk_op_variants(env->ctx, op, NULL, 0, &count) != DLK_OK) {
      char found[48];
      if (discover_op(env, c, state, found, sizeof found)) {
        fprintf(stderr, "dlk-bench: %s: the dispatcher has no op \"%s\"; the call uses \"%s\"\n",
                c->name, op, found);
        snprintf(op, sizeof op, "%s", found);
      }
    }
  }
  bench_case cc = *c;
  if (c->op) cc.op = op;
  bench_vrow rows[MAX_VARIANTS];
  int n = case_variants(env, &cc, rows, MAX_VARIANTS);
  bench_ref ref = {0};
  if (n < 0) {
    bench_result *x = new_result(rep, c, op, NULL);
    if (x) {
      x->outcome = BENCH_FAILED;
      snprintf(x->reason, sizeof x->reason, "%s", dlk_context_last_error(env->ctx));
    }
  }
  if (n == 0) {
    /* Say so rather than print nothing: e.g. an op with no CUDA variant yet. */
    bench_result *x = new_result(rep, c, op, NULL);
    if (x) {
      dlk_device dev;
      dlk_context_device(env->ctx, &dev);
      x->outcome = BENCH_NOT_SUPPORTED;
      snprintf(x->reason, sizeof x->reason, "no variant of %s runs on a %s context", op,
               dlk_device_type_name(dev.type));
    }
  }
  for (int i = 0; i < n; i++) {
    if (!force_all_variants && !variant_selected(o, &rows[i])) continue;
    bench_result *x = new_result(rep, c, c->op ? op : NULL, &rows[i]);
    if (!x) break;
    run_variant(tm, o, &cc, state, c->op ? op : NULL, &rows[i], &ref, x);
  }
  free(ref.v);
  if (c->teardown) c->teardown(env, c, state);
  dlk_context_set_allow_tf32(env->ctx, 0);
  return rep->n - from;
}

/* ---- the table -------------------------------------------------------------------------- */

static void fmt_time(char *b, size_t n, double ms) {
  if (!(ms >= 0))
    snprintf(b, n, "-");
  else if (ms < 1e-3)
    snprintf(b, n, "%.1f ns", ms * 1e6);
  else if (ms < 1.0)
    snprintf(b, n, "%.2f us", ms * 1e3);
  else if (ms < 1e3)
    snprintf(b, n, "%.3f ms", ms);
  else
    snprintf(b, n, "%.3f s", ms * 1e-3);
}

static void fmt_num(char *b, size_t n, double v) {
  if (!isfinite(v))
    snprintf(b, n, "-");
  else if (v >= 100)
    snprintf(b, n, "%.0f", v);
  else if (v >= 10)
    snprintf(b, n, "%.1f", v);
  else if (v >= 0.01)
    snprintf(b, n, "%.2f", v);
  else
    snprintf(b, n, "%.2g", v);
}

static void fmt_pct(char *b, size_t n, double v) {
  if (!isfinite(v))
    snprintf(b, n, "-");
  else
    snprintf(b, n, "%.0f%%", v * 100);
}

/* CPU runs show GFLOP/s: TFLOP/s would print 0.001. Host-overhead cases (dispatch) fill
   their own column, time/call, and leave the rate columns empty. */
static void print_header(int gpu) {
  printf("%-14s %-16s %-5s %-20s %10s %10s %9s %8s %8s %6s %6s %7s  %s\n", "case", "shape", "dtype",
         "variant", "median", "min", "time/call", gpu ? "TFLOP/s" : "GFLOP/s", "GB/s", "%peak",
         "%copy", "xvendor", "check");
}

static void print_rows(const bench_report *rep, int from, int to) {
  for (int i = from; i < to; i++) {
    const bench_result *x = &rep->results[i];
    char var[64];
    if (x->variant >= 0)
      snprintf(var, sizeof var, "%2d %s%s", x->variant, x->variant_name, x->vendor ? "*" : "");
    else
      snprintf(var, sizeof var, "-");
    printf("%-14s %-16s %-5s %-20s ", x->name, x->shape, x->dtype, var);
    if (x->outcome != BENCH_RAN) {
      printf("%s: %s\n", x->outcome == BENCH_NOT_SUPPORTED ? "not supported" : "FAILED", x->reason);
      continue;
    }
    char med[24], mn[24], per[24] = "-", tf[16], gb[16], pk[16], cp[16], xv[16], ck[48];
    fmt_time(med, sizeof med, x->median_ms);
    fmt_time(mn, sizeof mn, x->min_ms);
    fmt_num(tf, sizeof tf, rep->gpu ? x->tflops : x->tflops * 1e3);
    fmt_num(gb, sizeof gb, x->gbs);
    fmt_pct(cp, sizeof cp, x->pct_copy);
    if (isfinite(x->x_vendor))
      snprintf(xv, sizeof xv, "%.2fx", x->x_vendor);
    else
      snprintf(xv, sizeof xv, "-");
    if (x->bound == BENCH_HOST) {
      /* The per-call time has its own column; %peak shows the target. */
      fmt_time(per, sizeof per, x->us_per_call * 1e-3);
      snprintf(tf, sizeof tf, "-");
      snprintf(gb, sizeof gb, "-");
      if (x->target_us > 0)
        snprintf(pk, sizeof pk, "%s", x->us_per_call <= x->target_us ? "<tgt" : ">TGT");
      else
        snprintf(pk, sizeof pk, "-");
    } else {
      fmt_pct(pk, sizeof pk, x->pct_peak);
    }
    if (isnan(x->check_err))
      snprintf(ck, sizeof ck, "-");
    else if (x->check_err == 0 && !x->check_bad)
      snprintf(ck, sizeof ck, "reference");
    else
      snprintf(ck, sizeof ck, "%s %.1e", x->check_bad ? "DIFFERS" : "ok", x->check_err);
    printf("%10s %10s %9s %8s %8s %6s %6s %7s  %s\n", med, mn, per, tf, gb, pk, cp, xv, ck);
  }
}

/* ---- targets (issue 3) ------------------------------------------------------------------- */

/* A target attached to a case by its family (bench_case has no field for it: the harness
   knows the few targets of issue 3 by case name, so families stay simple). */
static void print_targets(const bench_report *rep) {
  int header = 0;
  for (int i = 0; i < rep->n;) {
    int j = i;
    while (j < rep->n && !strcmp(rep->results[j].name, rep->results[i].name) &&
           !strcmp(rep->results[j].shape, rep->results[i].shape) &&
           !strcmp(rep->results[j].dtype, rep->results[i].dtype))
      j++;
    const bench_result *a = &rep->results[i];
    const bench_result *best = NULL, *best_hand = NULL;
    for (int k = i; k < j; k++) {
      const bench_result *x = &rep->results[k];
      if (x->outcome != BENCH_RAN) continue;
      if (!best || x->median_ms < best->median_ms) best = x;
      if (x->variant >= 1 && x->variant <= 9 && (!best_hand || x->median_ms < best_hand->median_ms))
        best_hand = x;
    }
    char line[320] = "";
    if (a->bound == BENCH_COMPUTE && rep->gpu && !strcmp(a->name, "gemm") &&
        !strcmp(a->shape, "4096x4096x4096") &&
        (!strcmp(a->dtype, "bf16") || !strcmp(a->dtype, "f16"))) {
      double xb = best ? best->x_vendor : NAN, xh = best_hand ? best_hand->x_vendor : NAN;
      snprintf(line, sizeof line,
               "gemm 4096^3 %-4s best variant %.2fx vendor (target 0.95: %s); best hand-written "
               "%s %.2fx (target 0.70%s: %s)",
               a->dtype, xb, xb >= 0.95 ? "met" : "NOT met",
               best_hand ? best_hand->variant_name : "(none)", xh,
               strcmp(a->dtype, "bf16") ? ", set for bf16" : "", xh >= 0.70 ? "met" : "NOT met");
    } else if (a->bound == BENCH_MEMORY && rep->gpu && best && strcmp(a->family, "core") != 0) {
      snprintf(line, sizeof line,
               "%-11s %-11s %-4s best %s %.0f%% of copy bandwidth (target 85%%: %s)", a->name,
               a->shape, a->dtype, best->variant_name, best->pct_copy * 100,
               best->pct_copy >= 0.85 ? "met" : "NOT met");
    } else if (a->bound == BENCH_HOST && best && a->target_us > 0) {
      snprintf(line, sizeof line, "%-11s %-11s %.3f us per call (target < %.0f us: %s)", a->name,
               best->variant_name, best->us_per_call, a->target_us,
               best->us_per_call < a->target_us ? "met" : "NOT met");
    }
    if (line[0]) {
      if (!header)
        printf("\ntargets (issue 3)%s:\n", rep->gpu ? "" : " (GPU targets need a GPU run)");
      header = 1;
      printf("  %s\n", line);
    }
    i = j;
  }
}

/* ---- report header ----------------------------------------------------------------------- */

static void cpu_model(char *out, size_t n) {
  snprintf(out, n, "CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    char *colon = strchr(line, ':');
    if (!colon) break;
    colon++;
    while (*colon == ' ' || *colon == '\t') colon++;
    colon[strcspn(colon, "\n")] = '\0';
    snprintf(out, n, "CPU: %s", colon);
    break;
  }
  fclose(f);
}

static void fill_header(bench_report *rep, const bench_env *env, const bench_opts *o) {
  rep->gpu = env->gpu;
  rep->quick = o->quick;
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(rep->date, sizeof rep->date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  snprintf(rep->commit, sizeof rep->commit, "%s", BENCH_GIT_COMMIT);
  snprintf(rep->dlk_version, sizeof rep->dlk_version, "%s", dlk_version());
  dlk_query_versions(env->ctx, &rep->versions);
  snprintf(rep->cuda_archs, sizeof rep->cuda_archs, "%s",
           rep->versions.cuda_archs ? rep->versions.cuda_archs : "");
  rep->versions.cuda_archs = NULL; /* the copy above is what the report keeps */
  long threads = 0;
#ifdef _SC_NPROCESSORS_ONLN
  threads = sysconf(_SC_NPROCESSORS_ONLN);
#endif
  if (env->gpu) {
    dlk_device dev;
    dlk_device_props p;
    dlk_context_device(env->ctx, &dev);
    if (dlk_device_properties(env->ctx, dev.id, &p) == DLK_OK) {
      snprintf(rep->device, sizeof rep->device, "%s", p.name);
      bench_peaks_for(p.name, p.memory_clock_khz, p.memory_bus_bits, &rep->peaks);
    }
  } else {
    char model[200];
    cpu_model(model, sizeof model);
    snprintf(rep->device, sizeof rep->device, "%s (%ld threads)", model, threads);
    bench_peaks_for("", 0, 0, &rep->peaks);
  }
}

static void print_banner(const bench_report *rep) {
  printf("dlk-bench: dlk %s, commit %s, %s\n", rep->dlk_version, rep->commit, rep->date);
  printf("device: %s\n", rep->device);
  const dlk_versions *v = &rep->versions;
  if (rep->gpu) {
    printf("CUDA runtime %d, driver %d, cuBLAS %d, cuDNN %d (built against %d), archs %s\n",
           v->cuda_runtime, v->cuda_driver, v->cublas, v->cudnn, v->cudnn_built, rep->cuda_archs);
    const bench_peaks *p = &rep->peaks;
    if (p->label[0])
      printf(
          "peaks (%s, dense, datasheet): bf16 %.0f, f16 %.0f, tf32 %.0f, f32 %.1f TFLOP/s; "
          "memory %.0f GB/s\n",
          p->label, p->bf16, p->f16, p->tf32, p->f32, p->mem_gbs);
    else
      printf("peaks: device not in the table; memory %s GB/s (%s)\n",
             isfinite(p->mem_gbs) ? "see below" : "unknown",
             p->mem_source[0] ? p->mem_source : "-");
  }
  printf("runs: median and min of >= %d timed runs after warm-up, %s\n", rep->quick ? 5 : 20,
         rep->gpu ? "CUDA events, L2 flushed (2x L2 memset) before each run"
                  : "monotonic clock, 32 MiB written between runs to evict the caches");
  printf(
      "* = vendor variant (id 10..19); xvendor = best vendor time / this time; %%copy = GB/s "
      "over the measured copy bandwidth; check = max difference from the first variant's "
      "output, relative to its largest value\n\n");
}

/* ---- options ------------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: dlk-bench [--family F] [--variant ID|NAME] [--dtype f32|tf32|f16|bf16|f64]\n"
          "                 [--json FILE] [--plot FILE.svg] [--from-json FILE] [--quick]\n"
          "                 [--full] [--runs N] [--cpu] [--list] [--help]\n"
          "  --family F      only the cases of family F (%s",
          N_FAMILIES ? families[0].name : "");
  for (int i = 1; i < N_FAMILIES; i++) fprintf(f, ", %s", families[i].name);
  fprintf(f,
          ")\n"
          "  --variant V     only variant V (an id or a name)\n"
          "  --dtype T       only cases of dtype T\n"
          "  --json FILE     also write the results as JSON\n"
          "  --plot FILE     also draw them as an SVG bar chart\n"
          "  --from-json F   run nothing: read a saved JSON (e.g. from a GPU run) and print,\n"
          "                  plot (--plot) or rewrite (--json) it\n"
          "  --quick         fewer runs (>= 5) and, on the CPU, the smallest shapes\n"
          "  --full          on the CPU, the larger shapes (about a minute on 2 cores; the\n"
          "                  default CPU run takes seconds); no effect on a GPU\n"
          "  --runs N        exactly N timed runs per variant (5..%d)\n"
          "  --cpu           bench the CPU cases even when a GPU is present\n"
          "  --list          list the cases and their variants, run nothing\n",
          MAX_RUNS);
}

/* Whether `path` can be written: opened for appending (which leaves an existing file as it
   is) and closed; a file that did not exist is removed again. 0, or 1 with the reason. */
static int probe_output(const char *path, char *err, size_t len) {
  FILE *t = fopen(path, "r");
  int existed = t != NULL;
  if (t) fclose(t);
  FILE *f = fopen(path, "a");
  if (!f) {
    snprintf(err, len, "cannot be written: %s", strerror(errno));
    return 1;
  }
  fclose(f);
  if (!existed) remove(path);
  return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--family"))
      slot = &o->family;
    else if (!strcmp(a, "--variant"))
      slot = &o->variant;
    else if (!strcmp(a, "--dtype"))
      slot = &o->dtype;
    else if (!strcmp(a, "--json"))
      slot = &o->json;
    else if (!strcmp(a, "--plot"))
      slot = &o->plot;
    else if (!strcmp(a, "--from-json"))
      slot = &o->from_json;
    if (slot) {
      if (i + 1 >= argc) {
        fprintf(stderr, "dlk-bench: %s needs a value\n", a);
        return 2;
      }
      *slot = argv[++i];
      continue;
    }
    if (!strcmp(a, "--quick"))
      o->quick = 1;
    else if (!strcmp(a, "--full"))
      o->full = 1;
    else if (!strcmp(a, "--list"))
      o->list = 1;
    else if (!strcmp(a, "--cpu"))
      o->cpu = 1;
    else if (!strcmp(a, "--runs") && i + 1 < argc) {
      char *end;
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 5 || n > MAX_RUNS) {
        fprintf(stderr, "dlk-bench: --runs wants 5..%d\n", MAX_RUNS);
        return 2;
      }
      o->runs = (int)n;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else {
      fprintf(stderr, "dlk-bench: unknown argument \"%s\"\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (o->family) {
    int ok = 0;
    for (int i = 0; i < N_FAMILIES; i++) ok |= !strcmp(o->family, families[i].name);
    if (!ok) {
      fprintf(stderr, "dlk-bench: no family \"%s\"\n", o->family);
      usage(stderr);
      return 2;
    }
  }
  if (o->dtype && strcmp(o->dtype, "f32") && strcmp(o->dtype, "tf32") && strcmp(o->dtype, "f16") &&
      strcmp(o->dtype, "bf16") && strcmp(o->dtype, "f64")) {
    fprintf(stderr, "dlk-bench: --dtype wants f32, tf32, f16, bf16 or f64 (the GloVe cases)\n");
    return 2;
  }
  /* The output files, before any work: a run must not end in a path that cannot be written. */
  const char *outs[2] = {o->json, o->plot}, *names[2] = {"--json", "--plot"};
  for (int i = 0; i < 2; i++) {
    if (!outs[i]) continue;
    char err[256];
    if (probe_output(outs[i], err, sizeof err)) {
      fprintf(stderr, "dlk-bench: %s %s: %s\n", names[i], outs[i], err);
      return 2;
    }
  }
  return 0;
}

static int case_selected(const bench_opts *o, const bench_case *c) {
  if (o->family && strcmp(o->family, c->family)) return 0;
  if (o->dtype && strcmp(o->dtype, c->dtype)) return 0;
  return 1;
}

/* The copy case: the harness runs it first (whatever the filters, when a memory-bound
   case is selected) because memory-bound cases are rated against it. */
static int is_copy_reference(const bench_case *c) {
  return !strcmp(c->family, "core") && !strcmp(c->name, "copy");
}

static void list_cases(const bench_env *env, const bench_registry *reg, const bench_opts *o) {
  for (int i = 0; i < reg->n; i++) {
    const bench_case *c = &reg->cases[i];
    if (!case_selected(o, c)) continue;
    printf("%-6s %-14s %-16s %-5s %-8s op %s\n", c->family, c->name, c->shape, c->dtype,
           bench_bound_name(c->bound), c->op ? c->op : "(own variants)");
    if (c->op) {
      dlk_variant_info info[MAX_VARIANTS];
      int count = 0;
      if (dlk_op_variants(env->ctx, c->op, info, MAX_VARIANTS, &count) != DLK_OK) {
        printf("         (%s)\n", dlk_context_last_error(env->ctx));
        continue;
      }
      for (int k = 0; k < count && k < MAX_VARIANTS; k++)
        printf("         %2d %-16s %-4s %s\n", info[k].id, info[k].name,
               dlk_device_type_name(info[k].device), info[k].description);
    } else {
      for (int k = 0; k < c->n_variants; k++)
        printf("         %2d %-16s      %s\n", c->variants[k].id, c->variants[k].name,
               c->variants[k].description ? c->variants[k].description : "");
    }
  }
}

/* --variant must name a variant of a selected case (an id or a name): else an error that
   lists the ones it could name, before any case runs. A variant of the selected cases
   that runs only on the other kind of device is an error too. 0, or 2 after a message. */
static int check_variant(const bench_env *env, const bench_registry *reg, const bench_opts *o) {
  if (!o->variant) return 0;
  dlk_device dev;
  dlk_context_device(env->ctx, &dev);
  char known[2048] = "";
  size_t used = 0;
  int here = 0, elsewhere = 0;
  for (int i = 0; i < reg->n; i++) {
    const bench_case *c = &reg->cases[i];
    if (!case_selected(o, c)) continue;
    dlk_variant_info info[MAX_VARIANTS];
    int count = 0;
    if (c->op) {
      if (dlk_op_variants(env->ctx, c->op, info, MAX_VARIANTS, &count) != DLK_OK) count = 0;
    } else {
      for (int k = 0; k < c->n_variants && k < MAX_VARIANTS; k++, count++) {
        memset(&info[k], 0, sizeof info[k]);
        info[k].id = c->variants[k].id;
        info[k].name = c->variants[k].name;
        info[k].device = dev.type;
      }
    }
    for (int k = 0; k < count && k < MAX_VARIANTS; k++) {
      bench_vrow row = {info[k].id, "", ""};
      snprintf(row.name, sizeof row.name, "%s", info[k].name);
      if (variant_selected(o, &row)) {
        if (info[k].device == dev.type)
          here++;
        else
          elsewhere++;
      }
      char item[80];
      snprintf(item, sizeof item, "%s (%d)", info[k].name, info[k].id);
      if (!strstr(known, item) && used + strlen(item) + 3 < sizeof known)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", item);
    }
  }
  if (here) return 0;
  if (elsewhere)
    fprintf(stderr,
            "dlk-bench: --variant %s: it runs only on a %s device, and this run is on the %s\n",
            o->variant, dev.type == DLK_CUDA ? "CPU" : "CUDA", dlk_device_type_name(dev.type));
  else
    fprintf(stderr, "dlk-bench: --variant %s: no such variant in the selected cases; known: %s\n",
            o->variant, known[0] ? known : "(none)");
  return 2;
}

/* Group boundaries: results of one case are consecutive. */
static int same_case(const bench_result *a, const bench_result *b) {
  return !strcmp(a->family, b->family) && !strcmp(a->name, b->name) &&
         !strcmp(a->shape, b->shape) && !strcmp(a->dtype, b->dtype);
}

static int outputs(const bench_opts *o, const bench_report *rep) {
  char err[512];
  int rc = 0;
  if (o->json) {
    if (bench_json_write(rep, o->json, err, sizeof err)) {
      fprintf(stderr, "dlk-bench: --json %s: %s\n", o->json, err);
      rc = 1;
    } else {
      printf("wrote %s\n", o->json);
    }
  }
  if (o->plot) {
    if (bench_plot_svg(rep, o->plot, err, sizeof err)) {
      fprintf(stderr, "dlk-bench: --plot %s: %s\n", o->plot, err);
      rc = 1;
    } else {
      printf("wrote %s\n", o->plot);
    }
  }
  return rc;
}

static int from_json(const bench_opts *o) {
  bench_report rep;
  memset(&rep, 0, sizeof rep);
  char err[512];
  if (bench_json_read(&rep, o->from_json, err, sizeof err)) {
    fprintf(stderr, "dlk-bench: --from-json %s: %s\n", o->from_json, err);
    return 1;
  }
  print_banner(&rep);
  print_header(rep.gpu);
  for (int i = 0; i < rep.n;) {
    int j = i + 1;
    while (j < rep.n && same_case(&rep.results[i], &rep.results[j])) j++;
    print_rows(&rep, i, j);
    i = j;
  }
  print_targets(&rep);
  int rc = outputs(o, &rep);
  bench_report_free(&rep);
  return rc;
}

int main(int argc, char **argv) {
  bench_opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (o.from_json) return from_json(&o);

  int ngpu = 0;
  dlk_device_count(NULL, &ngpu);
  dlk_context_options copts;
  memset(&copts, 0, sizeof copts);
  copts.device = (dlk_device){ngpu > 0 && !o.cpu ? DLK_CUDA : DLK_CPU, 0};
  dlk_context *ctx = NULL;
  dlk_status s = dlk_context_create(&ctx, &copts);
  if (s != DLK_OK) {
    fprintf(stderr, "dlk-bench: cannot create a %s context: %s: %s%s\n",
            copts.device.type == DLK_CUDA ? "CUDA" : "CPU", dlk_status_string(s),
            dlk_context_last_error(NULL),
            copts.device.type == DLK_CUDA ? " (--cpu benches the CPU reference instead)" : "");
    return 1;
  }
  bench_env env = {ctx, copts.device.type == DLK_CUDA, o.quick, o.full};

  bench_registry reg = {0};
  for (int i = 0; i < N_FAMILIES; i++) families[i].add(&reg, &env);
  if (reg.oom) {
    fprintf(stderr, "dlk-bench: out of memory registering cases\n");
    return 1;
  }
  if ((rc = check_variant(&env, &reg, &o)) != 0) {
    free(reg.cases);
    dlk_context_destroy(ctx);
    return rc;
  }
  if (!env.gpu && !o.list)
    printf("%s: running the CPU reference cases at %s sizes%s\n",
           ngpu > 0 ? "--cpu" : "no CUDA device",
           o.full    ? "the larger (--full)"
           : o.quick ? "the smallest (--quick)"
                     : "smaller",
           o.full || o.quick ? "" : " (--full: larger ones, about a minute)");
  if (o.list) {
    list_cases(&env, &reg, &o);
    free(reg.cases);
    dlk_context_destroy(ctx);
    return 0;
  }

  bench_report rep;
  memset(&rep, 0, sizeof rep);
  fill_header(&rep, &env, &o);
  print_banner(&rep);

  bench_timer tm;
  char msg[512];
  if (timer_init(&tm, &env, msg, sizeof msg) != DLK_OK) {
    fprintf(stderr, "dlk-bench: %s\n", msg);
    return 1;
  }
  /* The copy reference first when any memory-bound case is selected. */
  int want_copy = 0;
  for (int i = 0; i < reg.n; i++)
    if (case_selected(&o, &reg.cases[i]) && reg.cases[i].bound == BENCH_MEMORY) want_copy = 1;
  print_header(rep.gpu);
  int ran = 0, failed = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < reg.n; i++) {
      const bench_case *c = &reg.cases[i];
      int copy_ref = is_copy_reference(c);
      if (pass == 0 && !copy_ref) continue;
      if (pass == 1 && copy_ref) continue;
      if (!case_selected(&o, c) && !(copy_ref && want_copy)) continue;
      int from = rep.n;
      int n = run_case(&tm, &o, c, &rep, copy_ref && want_copy);
      if (n < 0) {
        fprintf(stderr, "dlk-bench: out of memory\n");
        return 1;
      }
      if (copy_ref) {
        for (int k = from; k < rep.n; k++) {
          bench_result *x = &rep.results[k];
          if (x->outcome != BENCH_RAN) continue;
          double gbs = x->bytes / (x->median_ms * 1e-3) / 1e9;
          if (gbs > rep.copy_gbs) {
            rep.copy_gbs = gbs;
            snprintf(rep.copy_source, sizeof rep.copy_source, "%s %s", x->name, x->variant_name);
          }
        }
      }
      derive(&rep, from, rep.n);
      print_rows(&rep, from, rep.n);
      for (int k = from; k < rep.n; k++) {
        ran += rep.results[k].outcome == BENCH_RAN;
        failed += rep.results[k].outcome == BENCH_FAILED;
      }
    }
  }
  timer_free(&tm);
  if (rep.copy_gbs > 0)
    printf("\nmeasured copy bandwidth: %.1f GB/s (%s, bytes read + written)\n", rep.copy_gbs,
           rep.copy_source);
  if (rep.gpu && isfinite(rep.peaks.mem_gbs) && !rep.peaks.label[0])
    printf("memory bandwidth from the memory clock x bus width: %.0f GB/s\n", rep.peaks.mem_gbs);
  int header = 0;
  for (int i = 0; i < reg.n; i++) {
    if (!reg.cases[i].note || !case_selected(&o, &reg.cases[i])) continue;
    int dup = 0;
    for (int k = 0; k < i; k++)
      dup |= reg.cases[k].note && !strcmp(reg.cases[k].note, reg.cases[i].note) &&
             !strcmp(reg.cases[k].name, reg.cases[i].name);
    if (dup) continue;
    if (!header) printf("\nnotes:\n");
    header = 1;
    printf("  %s: %s\n", reg.cases[i].name, reg.cases[i].note);
  }
  print_targets(&rep);
  printf("\n%d variant runs timed, %d failed\n", ran, failed);
  rc = outputs(&o, &rep);
  bench_report_free(&rep);
  free(reg.cases);
  dlk_context_destroy(ctx);
  if (ran == 0) {
    fprintf(
        stderr, "dlk-bench: nothing was timed: no case matched the filters on this device%s\n",
        !env.gpu && o.dtype && !strcmp(o.dtype, "tf32") ? " (tf32 cases exist on a GPU only)" : "");
    return 1;
  }
  return rc || failed ? 1 : 0;
}
