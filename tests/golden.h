/*
 * The one reader of the PyTorch golden fixtures (tests/golden/<family>/<file>.txt, made by
 * tests/golden/make_<family>_golden.py), shared by the test programs of every family. The
 * runners that call an op on a case and compare its outputs stay in each program.
 *
 * A fixture is whitespace-separated tokens ('#' at the start of a token comments out the
 * rest of its line), a sequence of cases:
 *     case <name> <op>
 *     param <key> <number>                                  zero or more
 *     in|out <tensor> <dtype> <ndim> <dim>... <value>...    numel values, row-major
 *     end
 * dtype is f32, f16, bf16, f64, i32 or i64; a value is anything strtod reads whole (nan,
 * inf, -inf included). Float values are rounded to their dtype (the file prints just
 * enough digits for it); integer ones are kept as read.
 *
 * golden_each(ctx, "tests/golden/nn/gemm.txt", fn, arg) calls fn on every case of a file
 * and returns how many there were. A file that cannot be read, a malformed case (an
 * unknown keyword or dtype, a number that does not parse whole, a name too long for its
 * field, a missing value, too many params or tensors) and a file without a case are
 * failures (CHECK) naming the file and line, never a silent pass. Sizes are those of the
 * largest user: 24 params (conv), 64 tensors (rnn's state dicts), tensor names of up to 39
 * characters (rnn's).
 *
 * Params stay text until a runner asks for one (g_num, g_u64, g_i64): one the case lacks,
 * or whose text does not parse whole as that kind of number, is a failure then.
 * Each lookup counts as a check.
 */
#ifndef DLK_TEST_GOLDEN_H
#define DLK_TEST_GOLDEN_H

#include <errno.h>

#include "check.h"

typedef struct {
  char name[40];
  int out; /* 0 in, 1 out */
  dlk_dtype dt;
  int ndim;
  int64_t shape[DLK_MAX_DIMS];
  int64_t n;
  double *v;
} gtensor;

typedef struct {
  char name[96], op[32];
  char pkey[24][24], pval[24][40];
  int np;
  gtensor t[64];
  int nt;
} gcase;

/* ---- params and tensors of a case ---- */

/* The value text of param `key`, or NULL when the case has none. */
static inline const char *g_param(const gcase *c, const char *key) {
  for (int i = 0; i < c->np; i++)
    if (strcmp(c->pkey[i], key) == 0) return c->pval[i];
  return NULL;
}

/* g_num, g_u64, g_i64: param `key` as a number. A failure (CHECK) when the case lacks it
   or its text does not parse whole (an integer: also when out of range). */
static inline const char *g_need(const gcase *c, const char *key) {
  const char *v = g_param(c, key);
  CHECK(v != NULL, "golden %s: no param %s", c->name, key);
  return v;
}
static inline void g_whole(const gcase *c, const char *key, const char *v, const char *end, int range) {
  if (end == v || *end != '\0' || range)
    CHECK(0, "golden %s: param %s = \"%s\" is not a number of its kind", c->name, key, v);
}
static inline double g_num(const gcase *c, const char *key) {
  const char *v = g_need(c, key);
  if (!v) return 0;
  char *end;
  const double x = strtod(v, &end);
  g_whole(c, key, v, end, 0);
  return x;
}
/* An integer param, read signed (strtoll, the bits returned) or unsigned (strtoull). */
static inline uint64_t g_int(const gcase *c, const char *key, int is_signed) {
  const char *v = g_need(c, key);
  if (!v) return 0;
  char *end;
  errno = 0;
  const uint64_t x = is_signed ? (uint64_t)strtoll(v, &end, 10) : strtoull(v, &end, 10);
  g_whole(c, key, v, end, errno == ERANGE);
  return x;
}
static inline uint64_t g_u64(const gcase *c, const char *key) { return g_int(c, key, 0); }
static inline int64_t g_i64(const gcase *c, const char *key) { return (int64_t)g_int(c, key, 1); }

/* Tensor `name` among the inputs (out 0) or the expected outputs (out 1); NULL if none. */
static inline gtensor *g_find(gcase *c, const char *name, int out) {
  for (int i = 0; i < c->nt; i++)
    if (c->t[i].out == out && strcmp(c->t[i].name, name) == 0) return &c->t[i];
  return NULL;
}

static inline void g_free(gcase *c) {
  for (int i = 0; i < c->nt; i++) free(c->t[i].v);
  c->nt = 0;
}

/* ---- reading ---- */

/* Tokens of a whole file held in memory (g_next writes a '\0' after each token). */
typedef struct {
  char *p, *end;
  int line, tok_line; /* the line reached, and that of the last token */
  const char *err;    /* what was wrong, after a format error */
} gtok;

static inline int g_space(char ch) { return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r'; }

static inline char *g_next(gtok *t) {
  for (;;) {
    while (g_space(*t->p)) t->line += *t->p++ == '\n';
    if (*t->p != '#') break;
    while (*t->p && *t->p != '\n') t->p++;
  }
  if (!*t->p) return NULL;
  char *s = t->p;
  t->tok_line = t->line;
  while (*t->p && !g_space(*t->p)) t->p++;
  if (*t->p) t->line += *t->p == '\n', *t->p++ = '\0';
  return s;
}

static inline int g_bad(gtok *t, const char *why) {
  t->err = why;
  return -1;
}

/* Copies s into dst[size]; 0 when it does not fit. */
static inline int g_copy(char *dst, size_t size, const char *s) {
  if (strlen(s) >= size) return 0;
  memcpy(dst, s, strlen(s) + 1);
  return 1;
}

/* A whole-token integer >= 0. */
static inline int g_count(const char *s, int64_t *x) {
  char *end;
  errno = 0;
  const long long v = strtoll(s, &end, 10);
  *x = v;
  return end != s && *end == '\0' && errno != ERANGE && v >= 0;
}

static inline int g_dtype(const char *s, dlk_dtype *dt) {
  static const char *const names[] = {"f32", "f16", "bf16", "f64", "i32", "i64"}; /* dlk_dtype order */
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (strcmp(s, names[i]) == 0) return *dt = (dlk_dtype)i, 1;
  return 0;
}

/* One in/out tensor after its keyword. */
static inline int g_read_tensor(gtok *tk, gtensor *t) {
  char *tn = g_next(tk), *ds = g_next(tk), *nd = g_next(tk);
  if (!tn || !ds || !nd) return g_bad(tk, "the file ends inside a tensor header");
  if (!g_copy(t->name, sizeof t->name, tn)) return g_bad(tk, "tensor name too long");
  if (!g_dtype(ds, &t->dt)) return g_bad(tk, "unknown dtype");
  int64_t ndim;
  if (!g_count(nd, &ndim) || ndim > DLK_MAX_DIMS) return g_bad(tk, "bad ndim");
  t->ndim = (int)ndim;
  /* a value takes at least two bytes of what is left: that bounds numel (no overflow,
     no huge allocation from a corrupt dim) */
  const int64_t most = (int64_t)(tk->end - tk->p) / 2 + 1;
  t->n = 1;
  for (int k = 0; k < t->ndim; k++) {
    char *d = g_next(tk);
    if (!d) return g_bad(tk, "the file ends inside a shape");
    if (!g_count(d, &t->shape[k])) return g_bad(tk, "bad dim");
    if (t->shape[k] > 0 && t->n > most / t->shape[k]) return g_bad(tk, "more values than the file holds");
    t->n *= t->shape[k];
  }
  t->v = calloc((size_t)(t->n > 0 ? t->n : 1), sizeof(double));
  if (!t->v) return g_bad(tk, "out of memory");
  const int is_int = t->dt == DLK_I32 || t->dt == DLK_I64;
  for (int64_t i = 0; i < t->n; i++) {
    char *d = g_next(tk), *end;
    if (!d) return g_bad(tk, "the file ends inside a tensor's values");
    const double x = strtod(d, &end);
    if (end == d || *end != '\0') return g_bad(tk, "a value that is not a number");
    if (is_int) {
      t->v[i] = x;
    } else { /* round to the dtype */
      unsigned char b[8];
      dlk_store(b, t->dt, 0, x);
      t->v[i] = dlk_load(b, t->dt, 0);
    }
  }
  return 1;
}

/* The next case into c (its tensors freed by g_free, also after an error): 1, 0 at the
   end of the file, -1 on a format error (tk->err says what). */
static inline int g_read_case(gtok *tk, gcase *c) {
  memset(c, 0, sizeof *c);
  char *w = g_next(tk);
  if (!w) return 0;
  if (strcmp(w, "case") != 0) return g_bad(tk, "expected 'case'");
  char *name = g_next(tk), *op = g_next(tk);
  if (!name || !op) return g_bad(tk, "the file ends inside a case header");
  if (!g_copy(c->name, sizeof c->name, name) || !g_copy(c->op, sizeof c->op, op))
    return g_bad(tk, "case name or op too long");
  while ((w = g_next(tk)) != NULL) {
    if (strcmp(w, "end") == 0) return 1;
    if (strcmp(w, "param") == 0) {
      char *k = g_next(tk), *v = g_next(tk);
      if (!k || !v) return g_bad(tk, "the file ends inside a param");
      if (c->np >= (int)(sizeof c->pkey / sizeof c->pkey[0])) return g_bad(tk, "too many params");
      if (!g_copy(c->pkey[c->np], sizeof c->pkey[0], k) || !g_copy(c->pval[c->np], sizeof c->pval[0], v))
        return g_bad(tk, "param key or value too long");
      c->np++;
    } else if (strcmp(w, "in") == 0 || strcmp(w, "out") == 0) {
      if (c->nt >= (int)(sizeof c->t / sizeof c->t[0])) return g_bad(tk, "too many tensors");
      gtensor *t = &c->t[c->nt++];
      t->out = w[0] == 'o';
      if (g_read_tensor(tk, t) < 0) return -1;
    } else {
      return g_bad(tk, "unknown keyword");
    }
  }
  return g_bad(tk, "the file ends inside a case (no 'end')");
}

/* The whole text file at path, '\0'-terminated, its length in *len; NULL with *why when it
   cannot be read or holds a NUL byte (where the tokens would stop unnoticed). */
static inline char *g_slurp(const char *path, size_t *len, const char **why) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return *why = strerror(errno), NULL;
  char *buf = NULL;
  const long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
  if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
    *why = "cannot seek";
  } else if ((buf = malloc((size_t)size + 1)) == NULL) {
    *why = "out of memory";
  } else if ((*len = fread(buf, 1, (size_t)size, fp)) != (size_t)size) {
    *why = "short read";
  } else if (buf[*len] = '\0', memchr(buf, '\0', *len) != NULL) {
    *why = "a NUL byte in the text";
  } else {
    fclose(fp);
    return buf;
  }
  free(buf);
  fclose(fp);
  return NULL;
}

/* Runs fn on every case of the fixture `rel` (a path under the source tree, see
   t_src_path), t_case set to "golden <case name>"; returns the number of cases. Three
   checks a file: it was read, it ended without a format error, it held a case. */
typedef void golden_fn(dlk_context *ctx, gcase *c, void *arg);
static inline int golden_each(dlk_context *ctx, const char *rel, golden_fn *fn, void *arg) {
  char path[4096], label[160];
  snprintf(path, sizeof path, "%s", t_src_path(rel));
  t_case = "golden";
  size_t len = 0;
  const char *why = "";
  char *buf = g_slurp(path, &len, &why);
  CHECK(buf != NULL, "cannot read %s: %s (DLK_SOURCE_DIR names the source tree)", path, why);
  if (!buf) return 0;
  gtok tk = {buf, buf + len, 1, 1, NULL};
  gcase *c = calloc(1, sizeof *c);
  int r = c ? 1 : -1, n = 0;
  if (!c) tk.err = "out of memory";
  while (c && (r = g_read_case(&tk, c)) == 1) {
    snprintf(label, sizeof label, "golden %s", c->name);
    t_case = label;
    fn(ctx, c, arg);
    g_free(c);
    n++;
  }
  if (c) g_free(c);
  t_case = "golden";
  CHECK(r == 0, "%s:%d: format error after %d cases: %s", path, tk.tok_line, n, tk.err ? tk.err : "?");
  CHECK(n > 0, "%s holds no case", path);
  free(c);
  free(buf);
  t_case = "";
  return n;
}

#endif /* DLK_TEST_GOLDEN_H */
