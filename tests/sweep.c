/* The variant sweep: see sweep.h. */
#include "sweep.h"

#include <unistd.h>

/* ====================================================================================== */
/* Host arrays                                                                             */
/* ====================================================================================== */

double sweep_round(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}

double *sweep_add(sweep_set *s, dlk_dtype dt, int64_t n) {
  if (s->n >= SWEEP_MAX_ARRAYS) {
    fprintf(stderr, "sweep_set overflow\n");
    exit(2);
  }
  sweep_array *a = &s->a[s->n++];
  a->v = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  a->n = n;
  a->dt = dt;
  return a->v;
}

void sweep_free(sweep_set *s) {
  for (int i = 0; i < s->n; i++) free(s->a[i].v);
  s->n = 0;
}

double *sweep_uniform(sweep_set *s, dlk_dtype dt, int64_t n, double lo, double hi) {
  double *v = sweep_add(s, dt, n);
  for (int64_t i = 0; i < n; i++) v[i] = sweep_round(dt, t_uniform(lo, hi));
  return v;
}

static int same_bits(const double *a, const double *b, int64_t n) {
  return n == 0 || memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

int sweep_identical(const sweep_set *a, const sweep_set *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++)
    if (a->a[i].n != b->a[i].n || !same_bits(a->a[i].v, b->a[i].v, a->a[i].n)) return 0;
  return 1;
}

int sweep_compare(const char *what, const sweep_set *got, const sweep_set *ref, int tf32) {
  return sweep_compare_wider(what, got, ref, tf32, 0);
}

int sweep_compare_wider(const char *what, const sweep_set *got, const sweep_set *ref, int tf32, double extra_atol) {
  CHECK(got->n == ref->n, "%s: %d outputs, reference has %d", what, got->n, ref->n);
  int ok = got->n == ref->n;
  for (int i = 0; ok && i < got->n; i++) {
    double atol, rtol;
    t_tolerance(ref->a[i].dt, tf32 && ref->a[i].dt == DLK_F32, &atol, &rtol);
    atol += extra_atol;
    char w[600];
    snprintf(w, sizeof w, "%s: output %d", what, i);
    CHECK(got->a[i].n == ref->a[i].n, "%s: %lld elements, reference %lld", w, (long long)got->a[i].n,
          (long long)ref->a[i].n);
    if (got->a[i].n != ref->a[i].n) return 0;
    int64_t unwritten = 0, first = -1;
    for (int64_t k = 0; k < got->a[i].n; k++)
      if (isinf(got->a[i].v[k]) && got->a[i].v[k] > 0 && !(isinf(ref->a[i].v[k]) && ref->a[i].v[k] > 0)) {
        if (first < 0) first = k;
        unwritten++;
      }
    CHECK(unwritten == 0, "%s: %lld elements still +inf, the output fill, where the reference is not "
          "(first [%lld], reference %.9g): never written", w, (long long)unwritten, (long long)first,
          first >= 0 ? ref->a[i].v[first] : 0.0);
    ok = t_close(w, got->a[i].v, ref->a[i].v, got->a[i].n, atol, rtol) && unwritten == 0 && ok;
  }
  return ok;
}

/* ====================================================================================== */
/* Test tensors: a view inside a guarded allocation                                        */
/* ====================================================================================== */

static int64_t numel(const dlk_tensor *t) {
  int64_t n = 1;
  for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
  return n;
}

/* Element offset of row-major index i. */
static int64_t offset_of(const dlk_tensor *t, int64_t i) {
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

static dlk_status write_values(dlk_context *ctx, sweep_tensor *t, const double *vals, double fill) {
  int64_t n = numel(&t->v);
  if (n == 0) return DLK_OK;
  size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  for (int64_t i = 0; i < n; i++) dlk_store(buf, t->v.dtype, i, vals ? vals[i] : fill);
  dlk_status s = dlk_tensor_write(ctx, &t->v, buf, (size_t)n * es);
  free(buf);
  return s;
}

static dlk_status make_tensor(dlk_context *ctx, sweep_tensor *t, dlk_dtype dt, int ndim, const int64_t *shape,
                              sweep_layout layout) {
  memset(t, 0, sizeof *t);
  dlk_tensor v;
  memset(&v, 0, sizeof v);
  v.dtype = dt;
  v.ndim = ndim;
  for (int k = 0; k < ndim; k++) v.shape[k] = shape[k];
  int64_t n = numel(&v), size = n, off = 0;
  if (layout == SW_PERMUTED && ndim >= 3) {
    int64_t st_shape[DLK_MAX_DIMS], st[DLK_MAX_DIMS];
    memcpy(st_shape, shape, sizeof(int64_t) * (size_t)ndim);
    st_shape[0] = shape[1];
    st_shape[1] = shape[0];
    dense_strides(ndim, st_shape, st);
    for (int k = 0; k < ndim; k++) v.strides[k] = st[k];
    v.strides[0] = st[1];
    v.strides[1] = st[0];
  } else if ((layout == SW_TRANSPOSED || layout == SW_PERMUTED) && ndim >= 2) {
    int64_t st_shape[DLK_MAX_DIMS], st[DLK_MAX_DIMS];
    memcpy(st_shape, shape, sizeof(int64_t) * (size_t)ndim);
    st_shape[ndim - 1] = shape[ndim - 2];
    st_shape[ndim - 2] = shape[ndim - 1];
    dense_strides(ndim, st_shape, st);
    for (int k = 0; k < ndim; k++) v.strides[k] = st[k];
    v.strides[ndim - 1] = st[ndim - 2];
    v.strides[ndim - 2] = st[ndim - 1];
  } else if (layout == SW_CHANNELS_LAST && ndim == 4) {
    v.strides[1] = 1;
    v.strides[3] = shape[1];
    v.strides[2] = shape[3] * shape[1];
    v.strides[0] = shape[2] * shape[3] * shape[1];
  } else if (layout == SW_PADDED && ndim >= 1) {
    off = 1; /* misaligned start */
    if (ndim == 1) {
      v.strides[0] = 2;
      size = 1 + 2 * shape[0];
    } else {
      int64_t pitch = shape[ndim - 1] + 3, rows = 1;
      v.strides[ndim - 1] = 1;
      v.strides[ndim - 2] = pitch;
      for (int k = ndim - 3; k >= 0; k--) v.strides[k] = v.strides[k + 1] * shape[k + 1];
      for (int k = 0; k < ndim - 1; k++) rows *= shape[k];
      size = 1 + pitch * rows;
    }
  } else {
    dense_strides(ndim, shape, v.strides);
  }
  int64_t bn = size + 16; /* a guard zone past the end catches overruns of any layout */
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

static dlk_status read_values(dlk_context *ctx, const sweep_tensor *t, double *out) {
  int64_t n = numel(&t->v);
  if (n == 0) return DLK_OK;
  size_t es = dlk_dtype_size(t->v.dtype);
  unsigned char *buf = malloc((size_t)n * es);
  dlk_status s = dlk_tensor_read(ctx, &t->v, buf, (size_t)n * es);
  for (int64_t i = 0; i < n && s == DLK_OK; i++) out[i] = dlk_load(buf, t->v.dtype, i);
  free(buf);
  return s;
}

/* Elements of the allocation that are not as they were filled: outside the view, 0xFF
   bytes; inside it (only with `view`), +inf. -1 when the read fails. */
static int64_t changed_fill(dlk_context *ctx, const sweep_tensor *t, int view) {
  size_t es = dlk_dtype_size(t->v.dtype), bytes = (size_t)t->base_n * es;
  unsigned char *buf = malloc(bytes), *in = calloc((size_t)t->base_n, 1), inf[8];
  dlk_store(inf, t->v.dtype, 0, INFINITY);
  int64_t bad = 0;
  if (dlk_tensor_read(ctx, &t->base, buf, bytes) != DLK_OK) {
    bad = -1;
  } else {
    int64_t n = numel(&t->v);
    for (int64_t i = 0; i < n; i++) in[t->off + offset_of(&t->v, i)] = 1;
    for (int64_t e = 0; e < t->base_n; e++) {
      const unsigned char *b = buf + (size_t)e * es;
      if (in[e]) {
        bad += view && memcmp(b, inf, es) != 0;
      } else {
        for (size_t k = 0; k < es; k++)
          if (b[k] != 0xFF) {
            bad++;
            break;
          }
      }
    }
  }
  free(buf);
  free(in);
  return bad;
}

enum { R_IN = 0, R_OUT = 1, R_INOUT = 2 };

static sweep_tensor *rig_add(sweep_rig *r, int role, dlk_dtype dt, int ndim, const int64_t *shape,
                             sweep_layout layout, const double *vals) {
  if (r->n >= SWEEP_MAX_TENSORS) {
    fprintf(stderr, "sweep_rig overflow\n");
    exit(2);
  }
  sweep_tensor *t = &r->t[r->n];
  dlk_status s = make_tensor(r->ctx, t, dt, ndim, shape, layout);
  if (s == DLK_OK) s = write_values(r->ctx, t, vals, INFINITY);
  CHECK(s == DLK_OK, "test tensor setup: %s: %s", dlk_status_string(s), dlk_context_last_error(r->ctx));
  if (s != DLK_OK) r->failed = 1;
  r->role[r->n] = role;
  r->vals[r->n] = vals;
  r->n++;
  return t;
}

sweep_tensor *sweep_in(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape, sweep_layout lay,
                       const double *vals) {
  return rig_add(r, R_IN, dt, ndim, shape, lay, vals);
}

sweep_tensor *sweep_out(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape, sweep_layout lay) {
  return rig_add(r, R_OUT, dt, ndim, shape, lay, NULL);
}

sweep_tensor *sweep_inout(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape, sweep_layout lay,
                          const double *vals) {
  return rig_add(r, R_INOUT, dt, ndim, shape, lay, vals);
}

dlk_status sweep_end(sweep_rig *r, dlk_status s, sweep_set *out) {
  for (int i = 0; i < r->n; i++) {
    sweep_tensor *t = &r->t[i];
    if (!t->live) continue;
    int64_t n = numel(&t->v);
    if (r->role[i] != R_IN && s == DLK_OK && out) {
      double *o = sweep_add(out, t->v.dtype, n);
      CHECK(read_values(r->ctx, t, o) == DLK_OK, "read back output %d", i);
    }
    if (r->role[i] == R_OUT && s != DLK_OK) {
      int64_t bad = changed_fill(r->ctx, t, 1);
      CHECK(bad == 0, "failed call (%s) wrote %lld elements of output %d", dlk_status_string(s),
            (long long)bad, i);
    } else {
      int64_t bad = changed_fill(r->ctx, t, 0);
      CHECK(bad == 0, "%lld elements outside the view of tensor %d changed", (long long)bad, i);
    }
    if (r->role[i] == R_IN || (r->role[i] == R_INOUT && s != DLK_OK)) {
      double *now = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
      CHECK(read_values(r->ctx, t, now) == DLK_OK, "read back input %d", i);
      int64_t changed = 0;
      for (int64_t k = 0; k < n; k++)
        if (memcmp(&now[k], &r->vals[i][k], sizeof(double)) != 0 && !(isnan(now[k]) && isnan(r->vals[i][k])))
          changed++;
      CHECK(changed == 0, "input %d: %lld elements changed", i, (long long)changed);
      free(now);
    }
    if (t->live) dlk_tensor_free(r->ctx, &t->base);
    t->live = 0;
  }
  r->n = 0;
  return s;
}

/* ====================================================================================== */
/* The sweep                                                                               */
/* ====================================================================================== */

static const dlk_dtype all_dtypes[] = {DLK_F32, DLK_F16, DLK_BF16, DLK_F64};
static char case_buf[512];

static const sweep_tags *tags_of(const sweep_op *op, int ci) {
  return (const sweep_tags *)((const char *)op->cases + (size_t)ci * op->case_size);
}
static const void *case_of(const sweep_op *op, int ci) { return tags_of(op, ci); }

/* variant: the id that ran (dlk_last_variant). */
static int compare(dlk_context *ctx, const sweep_op *op, const void *c, const char *what, const sweep_set *got,
                   const sweep_set *ref, int tf32) {
  if (!op->compare) return sweep_compare(what, got, ref, tf32);
  const char *name;
  int variant = -1;
  dlk_last_variant(ctx, &name, &variant);
  return op->compare(what, c, variant, got, ref, tf32);
}

/* Bookkeeping per (op, variant): passes, skips (with the first reason), refusals of
   deterministic mode. */
typedef struct {
  const char *label;
  int id;
  char name[32];
  int passed, skipped, det_ok, det_refused;
  char reason[200];
} tally;
static tally tallies[512];
static int n_tallies;

static tally *tally_of(const char *label, const dlk_variant_info *v) {
  for (int i = 0; i < n_tallies; i++)
    if (tallies[i].label == label && tallies[i].id == v->id) return &tallies[i];
  if (n_tallies == (int)(sizeof tallies / sizeof tallies[0])) return &tallies[0];
  tally *t = &tallies[n_tallies++];
  memset(t, 0, sizeof *t);
  t->label = label;
  t->id = v->id;
  snprintf(t->name, sizeof t->name, "%s", v->name);
  return t;
}

/* Variant lines of an explain report ("  <id> <name> supported...") that are not "not
   supported". */
static int explain_supported(const char *report) {
  int n = 0;
  for (const char *line = report; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
    if (strncmp(buf, "  ", 2) == 0 && strstr(buf, " supported") && !strstr(buf, " not supported")) n++;
  }
  return n;
}

/* The autotune cache after the first AUTO call of a case: one new entry when more than one
   variant could run it and it was not cached yet; once per op also a save/load round
   trip that keeps the choice. */
static void check_autotune(dlk_context *ctx, const sweep_op *op, const void *c, dlk_dtype dt,
                           const sweep_set *in, int before, int supported, int was_cached,
                           int *round_trip_done) {
  int after = -1;
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &after));
  const char *opname = NULL;
  int chosen = -1;
  CHECK_OK(ctx, dlk_last_variant(ctx, &opname, &chosen));
  if (op->tunable < 0) return; /* several dispatches, each may add its own entry */
  dlk_device dev;
  CHECK_OK(ctx, dlk_context_device(ctx, &dev));
  /* the dispatcher times candidates only on a CUDA context (a CPU op with an optimised
     variant beside its reference is chosen by rank) */
  if (!op->tunable || ((const sweep_tags *)c)->notune || was_cached || supported <= 1 || dev.type != DLK_CUDA) {
    CHECK(after == before, "autotune: %d entries before, %d after (no tuning expected: %d supported%s)",
          before, after, supported, was_cached ? ", cached" : "");
    return;
  }
  CHECK(after == before + 1, "autotune: %d entries before the first AUTO call, %d after (%d variants "
        "supported)", before, after, supported);
  if (after != before + 1 || *round_trip_done) return;
  *round_trip_done = 1;
  char path[128];
  snprintf(path, sizeof path, "/tmp/dlk-test-sweep-tune-%d.txt", (int)getpid());
  CHECK_OK(ctx, dlk_autotune_save(ctx, path));
  CHECK_OK(ctx, dlk_autotune_clear(ctx));
  int n = -1;
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 0, "cleared cache has %d entries", n);
  CHECK_OK(ctx, dlk_autotune_load(ctx, path));
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == after, "cache reloaded with %d entries, saved %d", n, after);
  remove(path);
  /* the reloaded choice is what AUTO runs now */
  const char *report = "";
  sweep_set tmp = {.n = 0};
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  op->run(ctx, c, dt, in, &tmp);
  sweep_free(&tmp);
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  char want[64];
  snprintf(want, sizeof want, "AUTO would run: %d (autotune cache)", chosen);
  CHECK(strstr(report, want) != NULL, "after the round trip explain says:\n%s(expected \"%s\")", report, want);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  dlk_status s = op->run(ctx, c, dt, in, &tmp);
  sweep_free(&tmp);
  int again = -1;
  CHECK(s == DLK_OK, "AUTO after reload: %s", dlk_context_last_error(ctx));
  CHECK_OK(ctx, dlk_last_variant(ctx, &opname, &again));
  CHECK(again == chosen, "AUTO ran %d after the reload, %d before", again, chosen);
}

/* One case of one op in one dtype: every variant (forced), deterministic reruns, AUTO. */
static void sweep_case(dlk_context *ctx, dlk_context *ref_ctx, const sweep_op *op, int ci, dlk_dtype dt,
                       int *round_trip_done) {
  const void *c = case_of(op, ci);
  sweep_set in = {.n = 0}, ref = {.n = 0};
  op->gen(c, dt, &in);
  snprintf(case_buf, sizeof case_buf, "%s #%d %s reference", op->label, ci, dlk_dtype_name(dt));
  t_case = case_buf;
  if (ref_ctx) {
    /* the CPU reference itself, not whatever AUTO would pick there (an optimised CPU row) */
    CHECK_OK(ref_ctx, dlk_force_variant(ref_ctx, op->op, 0));
    dlk_status s = op->run(ref_ctx, c, dt, &in, &ref);
    CHECK_OK(ref_ctx, dlk_force_variant(ref_ctx, op->op, -1));
    CHECK(s == DLK_OK, "CPU reference: %s: %s", dlk_status_string(s), dlk_context_last_error(ref_ctx));
    if (s != DLK_OK) goto done;
  } else {
    op->naive(c, dt, &in, &ref);
  }
  dlk_variant_info vs[32];
  int nv = 0;
  CHECK_OK(ctx, dlk_op_variants(ctx, op->op, vs, 32, &nv));
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  for (int tf32 = 0; tf32 < 2; tf32++) {
    if (tf32 && !(op->tf32 && dt == DLK_F32 && dev.type == DLK_CUDA)) continue;
    CHECK_OK(ctx, dlk_context_set_allow_tf32(ctx, tf32));
    int ran = 0; /* variants of ctx's device that took the case */
    for (int k = 0; k < nv && k < 32; k++) {
      tally *ty = tally_of(op->label, &vs[k]);
      snprintf(case_buf, sizeof case_buf, "%s #%d %s%s variant %d %s", op->label, ci, dlk_dtype_name(dt),
               tf32 ? " tf32" : "", vs[k].id, vs[k].name);
      CHECK_OK(ctx, dlk_force_variant(ctx, op->op, vs[k].id));
      sweep_set out = {.n = 0};
      dlk_status s = op->run(ctx, c, dt, &in, &out);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        if (!ty->skipped) snprintf(ty->reason, sizeof ty->reason, "%s", dlk_context_last_error(ctx));
        ty->skipped++;
        sweep_free(&out);
        continue;
      }
      CHECK(s == DLK_OK, "%s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
      ran++;
      if (s == DLK_OK && compare(ctx, op, c, case_buf, &out, &ref, tf32)) ty->passed++;
      sweep_free(&out);
      if (tf32 || s != DLK_OK) continue;
      /* deterministic mode: two runs, the same bits, or an honest NOT_SUPPORTED */
      sweep_set o1 = {.n = 0}, o2 = {.n = 0};
      CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
      dlk_status s1 = op->run(ctx, c, dt, &in, &o1), s2 = op->run(ctx, c, dt, &in, &o2);
      CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
      if (s1 == DLK_ERR_NOT_SUPPORTED) {
        CHECK(s2 == DLK_ERR_NOT_SUPPORTED, "deterministic: refused once, then %s", dlk_status_string(s2));
        ty->det_refused++;
      } else {
        CHECK(s1 == DLK_OK && s2 == DLK_OK, "deterministic runs: %s, %s: %s", dlk_status_string(s1),
              dlk_status_string(s2), dlk_context_last_error(ctx));
        if (s1 == DLK_OK && s2 == DLK_OK) {
          int same = sweep_identical(&o1, &o2);
          CHECK(same, "deterministic mode: two runs differ");
          if (compare(ctx, op, c, case_buf, &o1, &ref, 0) && same) ty->det_ok++;
        }
      }
      sweep_free(&o1);
      sweep_free(&o2);
    }
    CHECK_OK(ctx, dlk_force_variant(ctx, op->op, -1));

    /* AUTO: what explain says first, then the real call and the cache */
    snprintf(case_buf, sizeof case_buf, "%s #%d %s%s AUTO", op->label, ci, dlk_dtype_name(dt),
             tf32 ? " tf32" : "");
    const char *report = "";
    sweep_set out = {.n = 0};
    CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
    dlk_status se = op->run(ctx, c, dt, &in, &out);
    sweep_free(&out);
    CHECK(se == DLK_OK, "explain: %s: %s", dlk_status_string(se), dlk_context_last_error(ctx));
    CHECK_OK(ctx, dlk_explain_report(ctx, &report));
    int supported = explain_supported(report), cached = strstr(report, "(autotune cache)") != NULL;
    /* (a case whose outputs are all empty runs no variant: explain says that instead) */
    CHECK(strstr(report, "AUTO would") != NULL || strstr(report, "every output is empty") != NULL,
          "explain report: %s", report);
    /* (read before explain mode goes off: that clears the text `report` points into) */
    const int auto_fails = strstr(report, "AUTO would fail") != NULL;
    if (ran == 0) CHECK(auto_fails, "no variant ran the case; explain says:\n%s", report);
    CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
    if (ran == 0) { /* nothing here takes the case: AUTO fails too, and says why */
      dlk_status s = op->run(ctx, c, dt, &in, &out);
      sweep_free(&out);
      CHECK(s == DLK_ERR_NOT_SUPPORTED, "AUTO with no variant for the case: %s", dlk_status_string(s));
      continue;
    }
    int before = -1;
    CHECK_OK(ctx, dlk_autotune_entries(ctx, &before));
    dlk_status s = op->run(ctx, c, dt, &in, &out);
    CHECK(s == DLK_OK, "AUTO: %s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
    if (s == DLK_OK) {
      compare(ctx, op, c, case_buf, &out, &ref, tf32);
      if (dev.type == DLK_CPU) {
        const char *name;
        int id = -1;
        CHECK_OK(ctx, dlk_last_variant(ctx, &name, &id));
        CHECK(id == 0 || (id >= 20 && id <= 29), "AUTO on a CPU context ran variant %d", id);
      }
      check_autotune(ctx, op, c, dt, &in, before, supported, cached, round_trip_done);
    }
    sweep_free(&out);
  }
  CHECK_OK(ctx, dlk_context_set_allow_tf32(ctx, 0));
done:
  sweep_free(&in);
  sweep_free(&ref);
}

void sweep_run(dlk_context *ctx, dlk_context *ref_ctx, const sweep_op *ops, int n, int quick) {
  int before = t_checks, n_cases = 0;
  n_tallies = 0;
  for (int o = 0; o < n; o++) {
    const sweep_op *op = &ops[o];
    const dlk_dtype *dts = op->dtypes ? op->dtypes : all_dtypes;
    const int ndt = op->dtypes ? op->ndtypes : (int)(sizeof all_dtypes / sizeof all_dtypes[0]);
    int round_trip_done = 0;
    for (int ci = 0; ci < op->ncases; ci++) {
      if (tags_of(op, ci)->big && (!ref_ctx || quick)) continue;
      if (quick == 1 && ci >= 3) continue;
      for (int k = 0; k < ndt; k++) {
        if (quick == 1 && dts[k] != DLK_F32 && dts[k] != DLK_F16 && ndt > 1) continue;
        sweep_case(ctx, ref_ctx, op, ci, dts[k], &round_trip_done);
        n_cases++;
      }
    }
  }
  printf("sweep%s%s: %d cases (op x shape x dtype), %d checks\n", ref_ctx ? " against a reference context" : "",
         quick == 1 ? " (quick subset)" : (quick ? " (every case but the big ones)" : ""), n_cases,
         t_checks - before);
  printf("  %-20s %3s %-16s %7s %7s %9s %8s\n", "op", "id", "variant", "passed", "skipped", "det-same",
         "det-refused");
  for (int i = 0; i < n_tallies; i++) {
    tally *t = &tallies[i];
    printf("  %-20s %3d %-16s %7d %7d %9d %8d%s%s\n", t->label, t->id, t->name, t->passed, t->skipped,
           t->det_ok, t->det_refused, t->skipped ? "  first skip: " : "", t->skipped ? t->reason : "");
  }
}

int sweep_list_ops(int argc, char **argv, const sweep_op *ops, int n) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list-sweep-ops") != 0) continue;
    for (int o = 0; o < n; o++) {
      int seen = 0;
      for (int p = 0; p < o; p++) seen = seen || strcmp(ops[p].op, ops[o].op) == 0;
      if (!seen) printf("%s\n", ops[o].op);
    }
    return 1;
  }
  return 0;
}
