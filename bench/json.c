/*
 * dlk-bench's JSON: the writer of a report, and a small reader (a general JSON parser
 * into a tree, then the fields dlk-bench writes) so that a GPU run's file can be plotted
 * on another machine (--from-json). Non-finite numbers are written as null and read
 * back as NAN.
 *
 * Layout (one object per (case, variant) in "results"):
 *   {"dlk_bench": 1, "device": ..., "gpu": true, "quick": false, "date": ..., "commit": ...,
 *    "versions": {"dlk": ..., "cuda_runtime": ..., ...}, "peaks": {...},
 *    "copy_bandwidth_gbs": ..., "copy_source": ..., "results": [{...}, ...]}
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h" /* dlk_read_all */
#include "report.h"

/* ---- writer ------------------------------------------------------------------------------ */

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\t': fputs("\\t", f); break;
      case '\r': fputs("\\r", f); break;
      default:
        if (*p < 0x20)
          fprintf(f, "\\u%04x", *p);
        else
          fputc(*p, f);
    }
  }
  fputc('"', f);
}

static void put_num(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.9g", v);
  else
    fputs("null", f);
}

static void kv_str(FILE *f, const char *k, const char *v, int comma) {
  fprintf(f, "\"%s\": ", k);
  put_str(f, v);
  if (comma) fputs(", ", f);
}

static void kv_num(FILE *f, const char *k, double v, int comma) {
  fprintf(f, "\"%s\": ", k);
  put_num(f, v);
  if (comma) fputs(", ", f);
}

int bench_json_write(const bench_report *r, const char *path, char *err, size_t err_len) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, err_len, "cannot write: %s", strerror(errno));
    return 1;
  }
  fputs("{\n  \"dlk_bench\": 1,\n  ", f);
  kv_str(f, "device", r->device, 1);
  fprintf(f, "\"gpu\": %s, \"quick\": %s,\n  ", r->gpu ? "true" : "false",
          r->quick ? "true" : "false");
  kv_str(f, "date", r->date, 1);
  kv_str(f, "commit", r->commit, 0);
  fputs(",\n  \"versions\": {", f);
  kv_str(f, "dlk", r->dlk_version, 1);
  kv_num(f, "cuda_runtime", r->versions.cuda_runtime, 1);
  kv_num(f, "cuda_driver", r->versions.cuda_driver, 1);
  kv_num(f, "cublas", r->versions.cublas, 1);
  kv_num(f, "cudnn", r->versions.cudnn, 1);
  kv_num(f, "cudnn_built", r->versions.cudnn_built, 1);
  kv_str(f, "cuda_archs", r->cuda_archs, 0);
  fputs("},\n  \"peaks\": {", f);
  kv_str(f, "label", r->peaks.label, 1);
  kv_num(f, "bf16_tflops", r->peaks.bf16, 1);
  kv_num(f, "f16_tflops", r->peaks.f16, 1);
  kv_num(f, "tf32_tflops", r->peaks.tf32, 1);
  kv_num(f, "f32_tflops", r->peaks.f32, 1);
  kv_num(f, "memory_gbs", r->peaks.mem_gbs, 1);
  kv_str(f, "memory_source", r->peaks.mem_source, 0);
  fputs("},\n  ", f);
  kv_num(f, "copy_bandwidth_gbs", r->copy_gbs > 0 ? r->copy_gbs : NAN, 1);
  kv_str(f, "copy_source", r->copy_source, 0);
  fputs(",\n  \"results\": [", f);
  for (int i = 0; i < r->n; i++) {
    const bench_result *x = &r->results[i];
    fputs(i ? ",\n    {" : "\n    {", f);
    kv_str(f, "family", x->family, 1);
    kv_str(f, "case", x->name, 1);
    kv_str(f, "shape", x->shape, 1);
    kv_str(f, "dtype", x->dtype, 1);
    kv_str(f, "op", x->op, 1);
    kv_str(f, "bound", bench_bound_name(x->bound), 1);
    kv_num(f, "flops", x->flops, 1);
    kv_num(f, "bytes", x->bytes, 1);
    kv_num(f, "calls", x->calls, 1);
    kv_num(f, "target_us", x->target_us > 0 ? x->target_us : NAN, 1);
    fputs("\n     ", f);
    kv_num(f, "variant", x->variant, 1);
    kv_str(f, "variant_name", x->variant_name, 1);
    fprintf(f, "\"vendor\": %s, ", x->vendor ? "true" : "false");
    kv_str(f, "status", bench_outcome_name(x->outcome), 1);
    kv_str(f, "reason", x->reason, 1);
    kv_num(f, "runs", x->runs, 0);
    fputs(",\n     ", f);
    kv_num(f, "median_ms", x->median_ms, 1);
    kv_num(f, "min_ms", x->min_ms, 1);
    kv_num(f, "tflops", x->tflops, 1);
    kv_num(f, "gbs", x->gbs, 1);
    kv_num(f, "us_per_call", x->us_per_call, 1);
    kv_num(f, "peak", x->peak, 1);
    kv_num(f, "pct_peak", x->pct_peak, 1);
    kv_num(f, "pct_copy", x->pct_copy, 1);
    kv_num(f, "x_vendor", x->x_vendor, 1);
    kv_num(f, "check_err", x->check_err, 1);
    fprintf(f, "\"check_bad\": %s}", x->check_bad ? "true" : "false");
  }
  fputs("\n  ]\n}\n", f);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    snprintf(err, err_len, "write error");
    return 1;
  }
  return 0;
}

/* ---- reader: a small JSON parser ------------------------------------------------------- */

typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype t;
  double num;         /* J_NUM, J_BOOL (0/1) */
  char *str;          /* J_STR */
  struct jval *items; /* J_ARR, J_OBJ */
  char **keys;        /* J_OBJ */
  int n, cap;
} jval;

typedef struct jparser {
  const char *start, *p, *end;
  int depth;
  char *err;
  size_t err_len;
} jparser;

static void jfree(jval *v) {
  if (!v) return;
  free(v->str);
  for (int i = 0; i < v->n; i++) {
    jfree(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  memset(v, 0, sizeof *v);
}

static int jerr(jparser *ps, const char *what) {
  snprintf(ps->err, ps->err_len, "JSON: %s at byte %ld", what, (long)(ps->p - ps->start));
  return 1;
}

static void skip_ws(jparser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r'))
    ps->p++;
}

static int parse_value(jparser *ps, jval *v);

static int parse_string(jparser *ps, char **out) {
  if (ps->p >= ps->end || *ps->p != '"') return jerr(ps, "expected a string");
  ps->p++;
  size_t cap = 32, n = 0;
  char *s = malloc(cap);
  if (!s) return jerr(ps, "out of memory");
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if (c == '\\') {
      if (ps->p >= ps->end) break;
      char e = *ps->p++;
      switch (e) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u': {
          /* Only what the writer emits (control characters); others become '?'. */
          unsigned code = 0;
          for (int k = 0; k < 4; k++) {
            if (ps->p >= ps->end) break;
            char h = *ps->p++;
            code = code * 16 + (unsigned)(h >= 'a'   ? h - 'a' + 10
                                          : h >= 'A' ? h - 'A' + 10
                                                     : h - '0');
          }
          c = code < 0x80 ? (char)code : '?';
          break;
        }
        default: c = e; break; /* \" \\ \/ */
      }
    }
    if (n + 2 > cap) {
      char *ns = realloc(s, cap *= 2);
      if (!ns) {
        free(s);
        return jerr(ps, "out of memory");
      }
      s = ns;
    }
    s[n++] = c;
  }
  if (ps->p >= ps->end) {
    free(s);
    return jerr(ps, "unterminated string");
  }
  ps->p++;
  s[n] = '\0';
  *out = s;
  return 0;
}

static int push_item(jparser *ps, jval *v, int cap_keys) {
  if (v->n == v->cap) {
    int ncap = v->cap ? v->cap * 2 : 4;
    jval *ni = realloc(v->items, (size_t)ncap * sizeof *ni);
    if (!ni) return jerr(ps, "out of memory");
    v->items = ni;
    if (cap_keys) {
      char **nk = realloc(v->keys, (size_t)ncap * sizeof *nk);
      if (!nk) return jerr(ps, "out of memory");
      v->keys = nk;
    }
    v->cap = ncap;
  }
  memset(&v->items[v->n], 0, sizeof v->items[0]);
  if (cap_keys) v->keys[v->n] = NULL;
  v->n++;
  return 0;
}

static int parse_container(jparser *ps, jval *v, int obj) {
  v->t = obj ? J_OBJ : J_ARR;
  ps->p++;
  if (++ps->depth > 32) return jerr(ps, "nested too deep");
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
    ps->p++;
    ps->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(ps);
    if (push_item(ps, v, obj)) return 1;
    if (obj) {
      if (parse_string(ps, &v->keys[v->n - 1])) return 1;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return jerr(ps, "expected ':'");
      ps->p++;
    }
    if (parse_value(ps, &v->items[v->n - 1])) return 1;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
      ps->p++;
      ps->depth--;
      return 0;
    }
    return jerr(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_value(jparser *ps, jval *v) {
  skip_ws(ps);
  if (ps->p >= ps->end) return jerr(ps, "unexpected end");
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, v, c == '{');
  if (c == '"') {
    v->t = J_STR;
    return parse_string(ps, &v->str);
  }
  static const struct {
    const char *word;
    jtype t;
    double num;
  } words[] = {{"null", J_NULL, 0}, {"true", J_BOOL, 1}, {"false", J_BOOL, 0}};
  for (size_t i = 0; i < 3; i++) {
    size_t k = strlen(words[i].word);
    if ((size_t)(ps->end - ps->p) >= k && !strncmp(ps->p, words[i].word, k)) {
      v->t = words[i].t;
      v->num = words[i].num;
      ps->p += k;
      return 0;
    }
  }
  char buf[64];
  size_t k = 0;
  while (ps->p + k < ps->end && k < sizeof buf - 1 && strchr("+-0123456789.eE", ps->p[k])) k++;
  if (k == 0) return jerr(ps, "unexpected character");
  memcpy(buf, ps->p, k);
  buf[k] = '\0';
  char *e;
  v->num = strtod(buf, &e);
  if (*e) return jerr(ps, "bad number");
  v->t = J_NUM;
  ps->p += k;
  return 0;
}

static const jval *jget(const jval *o, const char *key) {
  if (!o || o->t != J_OBJ) return NULL;
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return &o->items[i];
  return NULL;
}

static double jnum(const jval *o, const char *key) {
  const jval *v = jget(o, key);
  return v && (v->t == J_NUM || v->t == J_BOOL) ? v->num : NAN;
}

static void jstr(const jval *o, const char *key, char *out, size_t n) {
  const jval *v = jget(o, key);
  snprintf(out, n, "%s", v && v->t == J_STR ? v->str : "");
}

static bench_bound bound_from(const char *s) {
  for (int b = 0; b < BENCH_BOUND_COUNT; b++)
    if (!strcmp(s, bench_bound_name((bench_bound)b))) return (bench_bound)b;
  return BENCH_COMPUTE;
}

static bench_outcome outcome_from(const char *s) {
  for (int o = 0; o < BENCH_OUTCOME_COUNT; o++)
    if (!strcmp(s, bench_outcome_name((bench_outcome)o))) return (bench_outcome)o;
  return BENCH_FAILED;
}

static int as_int(double v) {
  return isfinite(v) ? (int)v : 0;
}

int bench_json_read(bench_report *r, const char *path, char *err, size_t err_len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_len, "cannot open: %s", strerror(errno));
    return 1;
  }
  char *buf = NULL;
  size_t n = 0;
  int e = dlk_read_all(f, (size_t)256 << 20, &buf, &n);
  fclose(f);
  if (e) {
    snprintf(err, err_len, "%s", e == ENOMEM  ? "out of memory"
                                 : e == EFBIG ? "larger than 256 MiB"
                                              : "read error");
    return 1;
  }
  jparser ps = {buf, buf, buf + n, 0, err, err_len};
  jval root = {0};
  int bad = parse_value(&ps, &root);
  free(buf);
  if (bad) {
    jfree(&root);
    return 1;
  }
  if (root.t != J_OBJ || !(jnum(&root, "dlk_bench") == 1)) {
    snprintf(err, err_len, "not a dlk-bench JSON file (no \"dlk_bench\": 1)");
    jfree(&root);
    return 1;
  }
  memset(r, 0, sizeof *r);
  jstr(&root, "device", r->device, sizeof r->device);
  r->gpu = jnum(&root, "gpu") == 1;
  r->quick = jnum(&root, "quick") == 1;
  jstr(&root, "date", r->date, sizeof r->date);
  jstr(&root, "commit", r->commit, sizeof r->commit);
  const jval *ver = jget(&root, "versions");
  jstr(ver, "dlk", r->dlk_version, sizeof r->dlk_version);
  r->versions.cuda_runtime = as_int(jnum(ver, "cuda_runtime"));
  r->versions.cuda_driver = as_int(jnum(ver, "cuda_driver"));
  r->versions.cublas = as_int(jnum(ver, "cublas"));
  r->versions.cudnn = as_int(jnum(ver, "cudnn"));
  r->versions.cudnn_built = as_int(jnum(ver, "cudnn_built"));
  jstr(ver, "cuda_archs", r->cuda_archs, sizeof r->cuda_archs);
  const jval *pk = jget(&root, "peaks");
  jstr(pk, "label", r->peaks.label, sizeof r->peaks.label);
  r->peaks.bf16 = jnum(pk, "bf16_tflops");
  r->peaks.f16 = jnum(pk, "f16_tflops");
  r->peaks.tf32 = jnum(pk, "tf32_tflops");
  r->peaks.f32 = jnum(pk, "f32_tflops");
  r->peaks.mem_gbs = jnum(pk, "memory_gbs");
  jstr(pk, "memory_source", r->peaks.mem_source, sizeof r->peaks.mem_source);
  r->copy_gbs = jnum(&root, "copy_bandwidth_gbs");
  if (!(r->copy_gbs > 0)) r->copy_gbs = 0;
  jstr(&root, "copy_source", r->copy_source, sizeof r->copy_source);
  const jval *res = jget(&root, "results");
  if (!res || res->t != J_ARR) {
    snprintf(err, err_len, "no \"results\" array");
    jfree(&root);
    return 1;
  }
  for (int i = 0; i < res->n; i++) {
    const jval *o = &res->items[i];
    bench_result *x = bench_report_push(r);
    if (!x) {
      snprintf(err, err_len, "out of memory");
      jfree(&root);
      bench_report_free(r);
      return 1;
    }
    char s[64];
    jstr(o, "family", x->family, sizeof x->family);
    jstr(o, "case", x->name, sizeof x->name);
    jstr(o, "shape", x->shape, sizeof x->shape);
    jstr(o, "dtype", x->dtype, sizeof x->dtype);
    jstr(o, "op", x->op, sizeof x->op);
    jstr(o, "bound", s, sizeof s);
    x->bound = bound_from(s);
    x->flops = jnum(o, "flops");
    x->bytes = jnum(o, "bytes");
    x->calls = jnum(o, "calls");
    x->target_us = jnum(o, "target_us");
    if (!(x->target_us > 0)) x->target_us = 0;
    x->variant = as_int(jnum(o, "variant"));
    jstr(o, "variant_name", x->variant_name, sizeof x->variant_name);
    x->vendor = jnum(o, "vendor") == 1;
    jstr(o, "status", s, sizeof s);
    x->outcome = outcome_from(s);
    jstr(o, "reason", x->reason, sizeof x->reason);
    x->runs = as_int(jnum(o, "runs"));
    x->median_ms = jnum(o, "median_ms");
    x->min_ms = jnum(o, "min_ms");
    x->tflops = jnum(o, "tflops");
    x->gbs = jnum(o, "gbs");
    x->us_per_call = jnum(o, "us_per_call");
    x->peak = jnum(o, "peak");
    x->pct_peak = jnum(o, "pct_peak");
    x->pct_copy = jnum(o, "pct_copy");
    x->x_vendor = jnum(o, "x_vendor");
    x->check_err = jnum(o, "check_err");
    x->check_bad = jnum(o, "check_bad") == 1;
  }
  jfree(&root);
  return 0;
}
