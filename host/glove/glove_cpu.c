/*
 * glove family, CPU variants:
 *   glove_epoch          0 "cpu_ref"      single thread, f64, records in order: the spec
 *                        20 "cpu_hogwild" pthreads over contiguous record ranges, lock-free
 *                           updates like the tool (races between threads are accepted)
 *   glove_cooccur_chunk  0 "cpu_ref"      pairs generated in the tool's order, stable radix
 *                           sort by (w1, w2), duplicates summed in that order
 *   glove_topk           0 "cpu_ref"      row-major scan keeping the best k per column
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "glove.h"

/* ---- glove_epoch --------------------------------------------------------------------
   This file is compiled with -fno-math-errno (CMakeLists.txt): sqrt never sees a negative
   here (accumulators start at 1 and only grow), and without the errno path gcc vectorises
   the component loops. Only errno handling changes, never a result. */

typedef struct hyper {
  double eta, alpha, x_max, clip;
  bool keras;
} hyper;

/* The tool's check_nan: a non-finite bias step is dropped. */
static inline double finite_or_zero(double v) { return isfinite(v) ? v : 0.0; }

/* fmin(fmax(v, -c), c) for c > 0, NaN included (fmax(NaN, -c) = -c), written as two
   selects so that it vectorises (gcc calls the library fmin/fmax otherwise). */
static inline double clip(double v, double c) {
  v = v > -c ? v : -c;
  return v < c ? v : c;
}

/* The vector-component updates of one record, shared by both CPU variants. Elementwise
   only (every operation correctly rounded, so a vectorised loop gives the same bits as
   the tool's scalar one): t = clip(fdiff * w_other) * eta, u = t / sqrt(G), G += t^2.
   Returns sum(u1) and sum(u2) in index order (the tool's order). */
static inline void component_updates(const double *restrict w1, const double *restrict w2,
                                      double *restrict g1, double *restrict g2,
                                      double *restrict u1, double *restrict u2, int d,
                                      double fdiff, double c, double eta, double *s1, double *s2) {
  for (int b = 0; b < d; b++) {
    double t1 = clip(fdiff * w2[b], c) * eta;
    double t2 = clip(fdiff * w1[b], c) * eta;
    u1[b] = t1 / sqrt(g1[b]);
    u2[b] = t2 / sqrt(g2[b]);
    g1[b] += t1 * t1;
    g2[b] += t2 * t2;
  }
  double a = 0, z = 0;
  for (int b = 0; b < d; b++) {
    a += u1[b];
    z += u2[b];
  }
  *s1 = a;
  *s2 = z;
}

/* w -= u when both sums are finite (the tool drops the whole vector step otherwise; the
   accumulators keep their update); then the biases: b -= fdiff / sqrt(G_b), no eta, no
   clipping, a non-finite step dropped; G_b += fdiff^2. */
static inline void apply_updates(double *restrict w1, double *restrict w2, double *restrict g1,
                                 double *restrict g2, const double *restrict u1,
                                 const double *restrict u2, int d, double fdiff, double s1,
                                 double s2) {
  if (isfinite(s1) && isfinite(s2)) {
    for (int b = 0; b < d; b++) {
      w1[b] -= u1[b];
      w2[b] -= u2[b];
    }
  }
  w1[d] -= finite_or_zero(fdiff / sqrt(g1[d]));
  w2[d] -= finite_or_zero(fdiff / sqrt(g2[d]));
  fdiff *= fdiff;
  g1[d] += fdiff;
  g2[d] += fdiff;
}

/* One record, exactly the tool's arithmetic (order of operations included), so a single
   thread reproduces its vectors.NNN.bin to the last bit or close to it. u1, u2: d
   scratch doubles. Returns false when the record is skipped. */
static inline bool ref_record(double *W, double *G, int64_t V, int d, const dlk_glove_record *rec,
                              const hyper *h, double *cost, double *u1, double *u2) {
  const int64_t row = d + 1;
  double *w1 = W + (int64_t)(rec->w1 - 1) * row, *w2 = W + ((int64_t)(rec->w2 - 1) + V) * row;
  double *g1 = G + (int64_t)(rec->w1 - 1) * row, *g2 = G + ((int64_t)(rec->w2 - 1) + V) * row;
  double x = rec->x;
  double diff = 0;
  for (int b = 0; b < d; b++) diff += w1[b] * w2[b];
  diff += w1[d] + w2[d] - (h->keras ? log1p(x) : log(x));
  /* f(X) = (X / x_max)^alpha capped at 1 (the Keras-style variant drops the cap). */
  double fdiff = (x > h->x_max && !h->keras) ? diff : pow(x / h->x_max, h->alpha) * diff;
  if (!isfinite(diff) || !isfinite(fdiff)) return false;
  *cost += 0.5 * fdiff * diff;
  double s1, s2;
  component_updates(w1, w2, g1, g2, u1, u2, d, fdiff, h->clip, h->eta, &s1, &s2);
  apply_updates(w1, w2, g1, g2, u1, u2, d, fdiff, s1, s2);
  return true;
}

/* Hogwild's record: the same rule; the dot product with four partial sums and the weight
   as exp(alpha (log X - log x_max)) reusing log X (the order of additions differs from
   the reference in the last bits, as any change of thread count does in the tool). */
static inline bool hog_record(double *W, double *G, int64_t V, int d, const dlk_glove_record *rec,
                              const hyper *h, double log_xmax, double *cost, double *u1,
                              double *u2) {
  const int64_t row = d + 1;
  double *w1 = W + (int64_t)(rec->w1 - 1) * row, *w2 = W + ((int64_t)(rec->w2 - 1) + V) * row;
  double *g1 = G + (int64_t)(rec->w1 - 1) * row, *g2 = G + ((int64_t)(rec->w2 - 1) + V) * row;
  double x = rec->x;
  double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  int b = 0;
  for (; b + 4 <= d; b += 4) {
    p0 += w1[b] * w2[b];
    p1 += w1[b + 1] * w2[b + 1];
    p2 += w1[b + 2] * w2[b + 2];
    p3 += w1[b + 3] * w2[b + 3];
  }
  for (; b < d; b++) p0 += w1[b] * w2[b];
  double lx = log(x);
  double diff = (p0 + p1) + (p2 + p3) + w1[d] + w2[d] - (h->keras ? log1p(x) : lx);
  double weight = (x > h->x_max && !h->keras) ? 1.0 : exp(h->alpha * (lx - log_xmax));
  double fdiff = weight * diff;
  if (!isfinite(diff) || !isfinite(fdiff)) return false;
  *cost += 0.5 * fdiff * diff;
  double s1, s2;
  component_updates(w1, w2, g1, g2, u1, u2, d, fdiff, h->clip, h->eta, &s1, &s2);
  apply_updates(w1, w2, g1, g2, u1, u2, d, fdiff, s1, s2);
  return true;
}

/* Start loading the four rows of a record a few places ahead: the shuffled records hit
   the table at random, and a large table misses the caches on every record. */
#define PREFETCH 8
static inline void prefetch_rows(const double *W, const double *G, int64_t V, int d,
                                 const dlk_glove_record *r) {
  const int64_t row = d + 1, bytes = row * (int64_t)sizeof(double);
  const char *p[4] = {(const char *)(W + (int64_t)(r->w1 - 1) * row),
                      (const char *)(W + ((int64_t)(r->w2 - 1) + V) * row),
                      (const char *)(G + (int64_t)(r->w1 - 1) * row),
                      (const char *)(G + ((int64_t)(r->w2 - 1) + V) * row)};
  for (int k = 0; k < 4; k++)
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p[k] + o, 1, 3);
}

#define CANCEL_EVERY 65536

/* A range of records. Built twice on x86-64 (AVX2 and the baseline) and picked at load
   time, so the elementwise loops run 4 doubles wide where the CPU can. Returns false
   when cancelled. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(DLK_NO_CLONES)
#define DLK_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DLK_CLONES
#endif
DLK_CLONES
static bool run_range(const dlk_glove_epoch_args *a, int64_t begin, int64_t end, bool reference,
                      double *u1, double *u2, double *cost_out, int64_t *skipped_out) {
  const hyper h = {a->eta, a->alpha, a->x_max, a->grad_clip, a->keras};
  const double log_xmax = log(a->x_max);
  double *W = a->params, *G = a->gradsq;
  const int64_t V = a->vocab_size;
  const int d = a->dim;
  double cost = 0;
  int64_t skipped = 0;
  bool stopped = false;
  for (int64_t i = begin; i < end; i++) {
    if (((i - begin) & (CANCEL_EVERY - 1)) == 0 && i > begin && a->cancel && *a->cancel) {
      stopped = true;
      break;
    }
    if (i + PREFETCH < end) prefetch_rows(W, G, V, d, &a->records[i + PREFETCH]);
    bool ok = reference ? ref_record(W, G, V, d, &a->records[i], &h, &cost, u1, u2)
                        : hog_record(W, G, V, d, &a->records[i], &h, log_xmax, &cost, u1, u2);
    skipped += !ok;
  }
  *cost_out = cost;
  *skipped_out = skipped;
  return !stopped;
}

bool dlk_glove_epoch_cpu_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  (void)ctx;
  const dlk_glove_epoch_args *a = args;
  if (a->dtype != DLK_F64) {
    snprintf(why, n, "needs F64 parameters, got %s", dlk_dtype_name(a->dtype));
    return false;
  }
  return true;
}

/* Scratch for u1, u2: 2d doubles. */
size_t dlk_glove_epoch_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  (void)ctx;
  const dlk_glove_epoch_args *a = args;
  return 2 * (size_t)a->dim * sizeof(double);
}

dlk_status dlk_glove_epoch_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws_bytes;
  const dlk_glove_epoch_args *a = args;
  double *u1 = ws, *u2 = (double *)ws + a->dim, cost;
  int64_t skipped;
  if (!run_range(a, 0, a->count, true, u1, u2, &cost, &skipped))
    return dlk_fail(ctx, DLK_ERR_INTERRUPTED, "glove_epoch: cancelled");
  *a->cost_sum = cost;
  *a->skipped = skipped;
  return DLK_OK;
}


/* ---- Hogwild ----
   Each thread takes a contiguous range of records like the tool's threads take
   contiguous ranges of the file, and updates the shared parameters without locks. */
typedef struct hog_job {
  const dlk_glove_epoch_args *a;
  int64_t begin, end;
  double *u; /* 2d scratch */
  double cost;
  int64_t skipped;
  bool stopped;
} hog_job;

static void *hog_thread(void *p) {
  hog_job *j = p;
  j->stopped = !run_range(j->a, j->begin, j->end, false, j->u, j->u + j->a->dim, &j->cost, &j->skipped);
  return NULL;
}

#define HOG_MAX_THREADS 256

static int hog_threads(const dlk_glove_epoch_args *a) {
  int t = a->threads < 1 ? 1 : a->threads > HOG_MAX_THREADS ? HOG_MAX_THREADS : a->threads;
  if (t > a->count) t = a->count > 0 ? (int)a->count : 1;
  return t;
}

size_t dlk_glove_epoch_hogwild_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  (void)ctx;
  const dlk_glove_epoch_args *a = args;
  /* Per thread: a job record and 2d doubles, each padded to 128 bytes (no false sharing). */
  size_t per = ((sizeof(hog_job) + 127) / 128 + (2 * (size_t)a->dim * sizeof(double) + 127) / 128) * 128;
  return (size_t)hog_threads(a) * per + 128;
}

/* With more than one thread the updates race (lock-free by design), so the bits depend on
   timing: refused in deterministic mode (one thread is the reference's order). */
bool dlk_glove_epoch_hogwild_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_glove_epoch_args *a = args;
  if (ctx->opts.deterministic && hog_threads(a) > 1) {
    snprintf(why, n, "not deterministic: %d threads race on shared rows (cpu_ref is)", hog_threads(a));
    return false;
  }
  return dlk_glove_epoch_cpu_supports(ctx, args, impl, why, n);
}

dlk_status dlk_glove_epoch_hogwild_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws_bytes;
  const dlk_glove_epoch_args *a = args;
  int nt = hog_threads(a);
  size_t job_bytes = (sizeof(hog_job) + 127) / 128 * 128;
  size_t u_bytes = (2 * (size_t)a->dim * sizeof(double) + 127) / 128 * 128;
  char *base = (char *)(((uintptr_t)ws + 127) & ~(uintptr_t)127);
  hog_job *jobs[HOG_MAX_THREADS];
  /* The tool's split: n/T records each, the last thread also the remainder. */
  int64_t per = a->count / nt;
  for (int t = 0; t < nt; t++) {
    hog_job *j = (hog_job *)(base + (size_t)t * (job_bytes + u_bytes));
    memset(j, 0, sizeof *j);
    j->a = a;
    j->u = (double *)((char *)j + job_bytes);
    j->begin = per * t;
    j->end = t == nt - 1 ? a->count : per * (t + 1);
    jobs[t] = j;
  }
  pthread_t tid[HOG_MAX_THREADS];
  int started = 0;
  if (nt > 1) {
    for (; started < nt - 1; started++)
      if (pthread_create(&tid[started], NULL, hog_thread, jobs[started + 1]) != 0) break;
  }
  /* This thread runs range 0; ranges whose thread could not start run here after it. */
  hog_thread(jobs[0]);
  for (int t = started + 1; t < nt; t++) hog_thread(jobs[t]);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
  double cost = 0;
  int64_t skipped = 0;
  bool stopped = false;
  for (int t = 0; t < nt; t++) {
    cost += jobs[t]->cost;
    skipped += jobs[t]->skipped;
    stopped = stopped || jobs[t]->stopped;
  }
  if (stopped) return dlk_fail(ctx, DLK_ERR_INTERRUPTED, "glove_epoch: cancelled");
  *a->cost_sum = cost;
  *a->skipped = skipped;
  return DLK_OK;
}


/* ---- glove_cooccur_chunk --------------------------------------------------------------- */

static int64_t chunk_pairs_bound(const dlk_glove_cooccur_chunk_args *a) {
  int64_t targets = a->n - a->n_prefix;
  return targets * a->window * (a->symmetric ? 2 : 1);
}

/* Workspace: the sort's second buffer, one record per generated weight. */
size_t dlk_glove_cooccur_chunk_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  (void)ctx;
  const dlk_glove_cooccur_chunk_args *a = args;
  int64_t b = chunk_pairs_bound(a);
  return (size_t)(b > 0 ? b : 0) * sizeof(dlk_glove_record) + DLK_GLOVE_SORT_EXTRA;
}

/* One stable counting-sort pass on a 16-bit digit of w1 or w2. */
#define RADIX_BUCKETS (1 << 16)
static void radix_pass(const dlk_glove_record *src, dlk_glove_record *dst, int64_t n, bool use_w1,
                       int shift, int64_t *count) {
  memset(count, 0, RADIX_BUCKETS * sizeof *count);
  for (int64_t i = 0; i < n; i++) {
    uint32_t k = (uint32_t)(use_w1 ? src[i].w1 : src[i].w2);
    count[(k >> shift) & 0xFFFF]++;
  }
  int64_t sum = 0;
  for (int b = 0; b < RADIX_BUCKETS; b++) {
    int64_t c = count[b];
    count[b] = sum;
    sum += c;
  }
  for (int64_t i = 0; i < n; i++) {
    uint32_t k = (uint32_t)(use_w1 ? src[i].w1 : src[i].w2);
    dst[count[(k >> shift) & 0xFFFF]++] = src[i];
  }
}

/* Stable LSD radix sort of n records by (w1, w2); tmp holds n records plus
   DLK_GLOVE_SORT_EXTRA bytes of counters. The result lands in recs. The high 16-bit
   digit is sorted only when ids reach 65536. */
void dlk_glove_sort_records(dlk_glove_record *recs, void *tmp, int64_t n, int64_t vocab_size) {
  int64_t *count = (int64_t *)((dlk_glove_record *)tmp + n);
  dlk_glove_record *a = recs, *b = tmp;
  int passes = vocab_size >= 65536 ? 2 : 1;
  for (int key = 0; key < 2; key++) {    /* w2 first (least significant), then w1 */
    for (int p = 0; p < passes; p++) {
      radix_pass(a, b, n, key == 1, 16 * p, count);
      dlk_glove_record *t = a;
      a = b;
      b = t;
    }
  }
  if (a != recs) memcpy(recs, a, (size_t)n * sizeof *recs);
}

int64_t dlk_glove_reduce_sorted(dlk_glove_record *recs, int64_t n) {
  if (n == 0) return 0;
  int64_t o = 0;
  for (int64_t i = 1; i < n; i++) {
    if (recs[i].w1 == recs[o].w1 && recs[i].w2 == recs[o].w2)
      recs[o].x += recs[i].x;
    else
      recs[++o] = recs[i];
  }
  return o + 1;
}

dlk_status dlk_glove_cooccur_chunk_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws_bytes;
  const dlk_glove_cooccur_chunk_args *a = args;
  const int32_t *ids = a->ids;
  int64_t m = 0;
  for (int64_t t = a->n_prefix; t < a->n; t++) {
    int32_t w2 = ids[t];
    if (w2 <= 0) continue;
    for (int k = 1; k <= a->window && t - k >= 0 && ids[t - k] > 0; k++) {
      double wt = a->distance_weighting ? 1.0 / (double)k : 1.0;
      if (m + (a->symmetric ? 2 : 1) > a->out_cap)
        return dlk_fail(ctx, DLK_ERR_INTERNAL, "glove_cooccur_chunk: out_cap %lld too small",
                        (long long)a->out_cap);
      a->out[m++] = (dlk_glove_record){ids[t - k], w2, wt};
      if (a->symmetric) a->out[m++] = (dlk_glove_record){w2, ids[t - k], wt};
    }
  }
  dlk_glove_sort_records(a->out, ws, m, a->vocab_size);
  *a->out_count = dlk_glove_reduce_sorted(a->out, m);
  return DLK_OK;
}


/* ---- glove_topk ------------------------------------------------------------------------ */

static bool excluded(const dlk_glove_topk_args *a, int64_t q, int64_t r) {
  for (int e = 0; e < a->n_exclude; e++)
    if (a->exclude[q * a->n_exclude + e] == r) return true;
  return false;
}

dlk_status dlk_glove_topk_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_glove_topk_args *a = args;
  int64_t rows = a->scores.shape[0], cols = a->scores.shape[1];
  int k = a->k;
  for (int64_t q = 0; q < cols; q++)
    for (int s = 0; s < k; s++) a->idx[q * k + s] = -1, a->val[q * k + s] = -INFINITY;
  bool f64 = a->scores.dtype == DLK_F64;
  const double *sd = a->scores.data;
  const float *sf = a->scores.data;
  /* Rows in ascending order, strict '>' so the lower row keeps a tie. */
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t q = 0; q < cols; q++) {
      double v = f64 ? sd[r * cols + q] : (double)sf[r * cols + q];
      double *val = a->val + q * k;
      int32_t *idx = a->idx + q * k;
      if (v != v) continue; /* NaN never wins */
      if (idx[k - 1] >= 0 && !(v > val[k - 1])) continue;
      if (excluded(a, q, r)) continue;
      int s = k - 1;
      while (s > 0 && (v > val[s - 1] || idx[s - 1] < 0)) {
        val[s] = val[s - 1];
        idx[s] = idx[s - 1];
        s--;
      }
      val[s] = v;
      idx[s] = (int32_t)r;
    }
  }
  return DLK_OK;
}

bool dlk_glove_topk_cpu_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  (void)ctx;
  const dlk_glove_topk_args *a = args;
  if (a->scores.dtype != DLK_F64 && a->scores.dtype != DLK_F32) {
    snprintf(why, n, "scores must be F32 or F64");
    return false;
  }
  return true;
}

