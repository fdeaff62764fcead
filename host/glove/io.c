/*
 * glove family: every file format, each readable and writable byte-compatibly with the
 * original tool, and the atomic writer behind them (PATH.tmp, fsync, rename: a crash or a
 * full disk never damages the previous file).
 *
 *   vocab.txt      "word count\n" per word, rank order
 *   records        {int32 w1; int32 w2; double x} x n, no header
 *   params/gradsq  2V x (d+1) doubles, row-major (vectors.NNN.bin / gradsq.NNN.bin)
 *   vectors.txt    the tool's save_params text ("%lf"), model 0/1/2, header, <unk>
 *   checkpoint     magic, sizes, epoch, options, W, G, FNV-1a 64 checksum
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "glove.h"
#include "io.h"
#include "vocab.h"

/* ---- atomic output --------------------------------------------------------------------- */

static size_t plain_fwrite(const void *p, size_t size, size_t n, FILE *f, void *user) {
  (void)user;
  return fwrite(p, size, n, f);
}

dlk_status dlk_glove_out_open(dlk_context *ctx, const char *op, const char *path,
                              const dlk_glove_writer *w, dlk_glove_out *o) {
  memset(o, 0, sizeof *o);
  o->w = w;
  if (strcmp(path, "-") == 0) {
    o->f = stdout;
    o->is_stdout = true;
    snprintf(o->path, sizeof o->path, "stdout");
    return DLK_OK;
  }
  if (strlen(path) >= sizeof o->path - 8)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: path too long", op);
  snprintf(o->path, sizeof o->path, "%s", path);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
  o->f = fopen(o->tmp, "wb");
  if (!o->f)
    return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot create %s: %s", op, o->tmp, strerror(errno));
  return DLK_OK;
}

dlk_status dlk_glove_out_write(dlk_context *ctx, const char *op, dlk_glove_out *o,
                               const void *data, size_t bytes) {
  if (o->failed) return dlk_fail(ctx, DLK_ERR_IO, "%s: writing %s failed earlier", op, o->path);
  if (bytes == 0) return DLK_OK;
  errno = 0;
  size_t got = o->w && o->w->write_fn ? o->w->write_fn(data, 1, bytes, o->f, o->w->user)
                                      : plain_fwrite(data, 1, bytes, o->f, NULL);
  if (got != bytes) {
    o->failed = true;
    int e = errno ? errno : ENOSPC;
    return dlk_fail(ctx, DLK_ERR_IO, "%s: writing %s failed after a short write: %s", op,
                    o->is_stdout ? "stdout" : o->tmp, strerror(e));
  }
  return DLK_OK;
}

dlk_status dlk_glove_out_commit(dlk_context *ctx, const char *op, dlk_glove_out *o) {
  if (o->is_stdout) {
    if (fflush(stdout) != 0 || o->failed)
      return dlk_fail(ctx, DLK_ERR_IO, "%s: writing to stdout failed: %s", op, strerror(errno));
    return DLK_OK;
  }
  bool ok = !o->failed && fflush(o->f) == 0;
  int e = errno;
  if (ok && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != EROFS) ok = false, e = errno;
  ok = (fclose(o->f) == 0) && ok;
  o->f = NULL;
  if (!ok) {
    remove(o->tmp);
    return dlk_fail(ctx, DLK_ERR_IO, "%s: writing %s failed: %s; %s left as it was", op, o->tmp,
                    strerror(e ? e : EIO), o->path);
  }
  if (rename(o->tmp, o->path) != 0) {
    e = errno;
    remove(o->tmp);
    return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot rename %s to %s: %s", op, o->tmp, o->path, strerror(e));
  }
  return DLK_OK;
}

void dlk_glove_out_abort(dlk_glove_out *o) {
  if (o->is_stdout) return;
  if (o->f) fclose(o->f);
  o->f = NULL;
  if (o->tmp[0]) remove(o->tmp);
}

/* Buffered formatted writes through an out (text formats). */
typedef struct textbuf {
  dlk_glove_out *o;
  char buf[1 << 16];
  size_t n;
  dlk_status st;
} textbuf;

static void tb_flush(dlk_context *ctx, const char *op, textbuf *t) {
  if (t->st == DLK_OK && t->n) t->st = dlk_glove_out_write(ctx, op, t->o, t->buf, t->n);
  t->n = 0;
}

static void tb_printf(dlk_context *ctx, const char *op, textbuf *t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tb_printf(dlk_context *ctx, const char *op, textbuf *t, const char *fmt, ...) {
  if (t->st != DLK_OK) return;
  if (sizeof t->buf - t->n < 2048) tb_flush(ctx, op, t);
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(t->buf + t->n, sizeof t->buf - t->n, fmt, ap);
  va_end(ap);
  if (k < 0) {
    t->st = dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: formatting failed", op);
  } else if ((size_t)k >= sizeof t->buf - t->n) {
    /* A long word: write directly. */
    tb_flush(ctx, op, t);
    char *big = malloc((size_t)k + 1);
    if (!big) {
      t->st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
      return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    if (t->st == DLK_OK) t->st = dlk_glove_out_write(ctx, op, t->o, big, (size_t)k);
    free(big);
  } else {
    t->n += (size_t)k;
  }
}

/* ---- whole-file reads ------------------------------------------------------------------ */

/* ---- vocab.txt --------------------------------------------------------------------------- */

dlk_status dlk_glove_vocab_load(dlk_context *ctx, const char *path, dlk_glove_vocab **out) {
  if (!path || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_load: NULL argument");
  char *buf;
  size_t len;
  DLK_TRY(dlk_read_file(ctx, "glove_vocab_load", path, 0, &buf, &len));
  dlk_glove_vocab *v;
  dlk_status st = dlk_glove_vocab_alloc(ctx, &v);
  if (st != DLK_OK) {
    free(buf);
    return st;
  }
  size_t pos = 0;
  int64_t line = 0;
  while (st == DLK_OK && pos < len) {
    line++;
    size_t end = pos;
    while (end < len && buf[end] != '\n') end++;
    size_t e = end;
    if (e > pos && buf[e - 1] == '\r') e--;
    /* "word count": the word is the bytes up to the first space or tab. */
    size_t w = pos;
    while (w < e && buf[w] != ' ' && buf[w] != '\t' && buf[w] != '\0') w++;
    const char *why = NULL;
    size_t c = w;
    while (c < e && (buf[c] == ' ' || buf[c] == '\t')) c++;
    char *num_end = NULL;
    long long count = 0;
    if (w == pos) why = "empty word (blank line or leading space)";
    else if (w - pos >= DLK_GLOVE_MAX_WORD) why = "word longer than 999 bytes";
    else if (c == w || c == e) why = "no count after the word";
    else {
      errno = 0;
      count = strtoll(buf + c, &num_end, 10);
      while (num_end && num_end < buf + e && (*num_end == ' ' || *num_end == '\t')) num_end++;
      if (errno || num_end != buf + e || !(buf[c] >= '0' && buf[c] <= '9'))
        why = buf[c] == '-' ? "negative count" : "the count is not a non-negative integer";
    }
    if (!why && w - pos == 5 && memcmp(buf + pos, "<unk>", 5) == 0)
      why = "\"<unk>\" is reserved for the unknown-word row";
    if (!why && dlk_glove_vocab_lookup(v, buf + pos, (int)(w - pos)) != 0) why = "duplicate word";
    if (why) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "glove_vocab_load: %s line %lld: %s", path,
                    (long long)line, why);
    } else if (!dlk_glove_vocab_append(v, buf + pos, (int)(w - pos), count)) {
      st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_vocab_load: out of memory");
    }
    pos = end + 1;
  }
  free(buf);
  if (st == DLK_OK && v->n == 0)
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "glove_vocab_load: %s has no words", path);
  if (st != DLK_OK) {
    dlk_glove_vocab_release(v);
    return st;
  }
  v->finished = true;
  *out = v;
  return DLK_OK;
}

dlk_status dlk_glove_vocab_save(dlk_context *ctx, const dlk_glove_vocab *v, const char *path) {
  if (!v || !path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_save: NULL argument");
  if (!v->finished) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_vocab_save: vocabulary not finished");
  dlk_glove_out o;
  DLK_TRY(dlk_glove_out_open(ctx, "glove_vocab_save", path, NULL, &o));
  textbuf *t = calloc(1, sizeof *t);
  if (!t) {
    dlk_glove_out_abort(&o);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_vocab_save: out of memory");
  }
  t->o = &o;
  for (int64_t i = 0; i < v->n && t->st == DLK_OK; i++)
    tb_printf(ctx, "glove_vocab_save", t, "%s %lld\n", dlk_glove_word_str(v, i), (long long)v->w[i].count);
  tb_flush(ctx, "glove_vocab_save", t);
  dlk_status st = t->st;
  free(t);
  if (st != DLK_OK) {
    dlk_glove_out_abort(&o);
    return st;
  }
  return dlk_glove_out_commit(ctx, "glove_vocab_save", &o);
}

/* ---- records --------------------------------------------------------------------------- */

dlk_status dlk_glove_records_read(dlk_context *ctx, const char *path, dlk_glove_record **recs,
                                  int64_t *count) {
  if (!path || !recs || !count) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_records_read: NULL argument");
  char *buf;
  size_t len;
  DLK_TRY(dlk_read_file(ctx, "glove_records_read", path, 0, &buf, &len));
  if (len % sizeof(dlk_glove_record)) {
    free(buf);
    return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                    "glove_records_read: %s has %zu bytes, not a multiple of 16 (truncated or not "
                    "a records file)",
                    path, len);
  }
  *recs = (dlk_glove_record *)buf; /* malloc'd, suitably aligned */
  *count = (int64_t)(len / sizeof(dlk_glove_record));
  return DLK_OK;
}

dlk_status dlk_glove_records_write(dlk_context *ctx, const char *path, const dlk_glove_record *recs,
                                   int64_t count) {
  if (!path || (!recs && count)) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_records_write: NULL argument");
  if (count < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_records_write: count < 0");
  dlk_glove_out o;
  DLK_TRY(dlk_glove_out_open(ctx, "glove_records_write", path, NULL, &o));
  dlk_status st = dlk_glove_out_write(ctx, "glove_records_write", &o, recs, (size_t)count * sizeof *recs);
  if (st != DLK_OK) {
    dlk_glove_out_abort(&o);
    return st;
  }
  return dlk_glove_out_commit(ctx, "glove_records_write", &o);
}

/* ---- model arrays ---------------------------------------------------------------------- */

static int64_t model_elems(const dlk_glove_model *m) { return 2 * m->vocab_size * (m->dim + 1); }

/* The model checks of glove.c (sizes in range, so model_elems cannot overflow). */
static dlk_status check_model(dlk_context *ctx, const char *op, const dlk_glove_model *m) {
  return dlk_glove_check_model(ctx, op, m);
}

/* Copy a model array (params or gradsq) to a new host f64 buffer. */
static dlk_status array_to_host(dlk_context *ctx, const char *op, const dlk_tensor *t, double **out) {
  int64_t n = dlk_tensor_numel(t);
  double *h = malloc((size_t)n * sizeof *h);
  if (!h) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld doubles)", op, (long long)n);
  dlk_status st;
  if (t->dtype == DLK_F64) {
    st = dlk_tensor_read(ctx, t, h, (size_t)n * sizeof *h);
  } else {
    /* F32 model: read into the upper half of the buffer's bytes, widen from the top. */
    float *f = (float *)h;
    st = dlk_tensor_read(ctx, t, f + n, (size_t)n * sizeof *f);
    for (int64_t i = 0; st == DLK_OK && i < n; i++) h[i] = (double)f[n + i];
  }
  if (st != DLK_OK) {
    free(h);
    return st;
  }
  *out = h;
  return DLK_OK;
}

static dlk_status array_from_host(dlk_context *ctx, dlk_tensor *t, double *h) {
  int64_t n = dlk_tensor_numel(t);
  if (t->dtype == DLK_F64) return dlk_tensor_write(ctx, t, h, (size_t)n * sizeof *h);
  float *f = (float *)h; /* narrow in place, front to back */
  for (int64_t i = 0; i < n; i++) f[i] = (float)h[i];
  return dlk_tensor_write(ctx, t, f, (size_t)n * sizeof *f);
}

static dlk_status load_array(dlk_context *ctx, dlk_glove_model *m, bool gradsq, const char *path) {
  const char *op = gradsq ? "glove_model_load_gradsq" : "glove_model_load_params";
  DLK_TRY(check_model(ctx, op, m));
  if (!path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: path is NULL", op);
  FILE *f = fopen(path, "rb");
  if (!f) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
  int64_t n = model_elems(m);
  double *h = malloc((size_t)n * sizeof *h);
  if (!h) {
    fclose(f);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  }
  size_t got = fread(h, sizeof *h, (size_t)n, f);
  char extra;
  bool more = fread(&extra, 1, 1, f) == 1;
  bool err = ferror(f) != 0;
  fclose(f);
  dlk_status st = DLK_OK;
  if (err) st = dlk_fail(ctx, DLK_ERR_IO, "%s: read error on %s", op, path);
  else if ((int64_t)got != n || more)
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                  "%s: %s holds %s%lld doubles, the model needs 2V(d+1) = 2*%lld*%d = %lld: the "
                  "vocabulary or -vector-size disagrees with the file",
                  op, path, more ? "more than " : "", (long long)got, (long long)m->vocab_size,
                  m->dim + 1, (long long)n);
  for (int64_t i = 0; st == DLK_OK && i < n; i++) {
    if (!isfinite(h[i]))
      st = dlk_fail(ctx, DLK_ERR_NOT_FINITE, "%s: %s: value %lld (row %lld, column %lld) is %g", op,
                    path, (long long)i, (long long)(i / (m->dim + 1)), (long long)(i % (m->dim + 1)), h[i]);
    else if (gradsq && !(h[i] > 0))
      st = dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                    "%s: %s: accumulator %lld is %g; AdaGrad accumulators must be > 0", op, path,
                    (long long)i, h[i]);
  }
  if (st == DLK_OK) st = array_from_host(ctx, gradsq ? &m->gradsq : &m->params, h);
  free(h);
  return st;
}

dlk_status dlk_glove_model_load_params(dlk_context *ctx, dlk_glove_model *m, const char *path) {
  return load_array(ctx, m, false, path);
}
dlk_status dlk_glove_model_load_gradsq(dlk_context *ctx, dlk_glove_model *m, const char *path) {
  return load_array(ctx, m, true, path);
}

dlk_status dlk_glove_model_save_with(dlk_context *ctx, const dlk_glove_model *m, bool gradsq,
                                     const char *path, const dlk_glove_writer *w) {
  const char *op = gradsq ? "glove_model_save_gradsq" : "glove_model_save_params";
  DLK_TRY(check_model(ctx, op, m));
  if (!path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: path is NULL", op);
  double *h;
  DLK_TRY(array_to_host(ctx, op, gradsq ? &m->gradsq : &m->params, &h));
  dlk_glove_out o;
  dlk_status st = dlk_glove_out_open(ctx, op, path, w, &o);
  if (st == DLK_OK) {
    st = dlk_glove_out_write(ctx, op, &o, h, (size_t)model_elems(m) * sizeof *h);
    if (st == DLK_OK) st = dlk_glove_out_commit(ctx, op, &o);
    else dlk_glove_out_abort(&o);
  }
  free(h);
  return st;
}

dlk_status dlk_glove_model_save_params(dlk_context *ctx, const dlk_glove_model *m, const char *path) {
  return dlk_glove_model_save_with(ctx, m, false, path, NULL);
}
dlk_status dlk_glove_model_save_gradsq(dlk_context *ctx, const dlk_glove_model *m, const char *path) {
  return dlk_glove_model_save_with(ctx, m, true, path, NULL);
}

/* ---- vectors text ---------------------------------------------------------------------- */

dlk_status dlk_glove_save_text(dlk_context *ctx, const dlk_glove_text_params *pp,
                               const dlk_glove_model *m, const dlk_glove_vocab *vocab,
                               const char *path) {
  const char *op = "glove_save_text";
  DLK_TRY(check_model(ctx, op, m));
  if (!vocab || !path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  dlk_glove_text_params p = {2, 0, 0, 0};
  if (pp) p = *pp;
  if (p.model < 0 || p.model > 2)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: model %d not 0, 1 or 2", op, p.model);
  if (!vocab->finished || vocab->n != m->vocab_size)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: the vocabulary has %lld words, the model %lld", op,
                    (long long)(vocab->finished ? vocab->n : 0), (long long)m->vocab_size);
  double *W;
  DLK_TRY(array_to_host(ctx, op, p.gradsq ? &m->gradsq : &m->params, &W));
  const int64_t V = m->vocab_size, d = m->dim, row = d + 1;
  dlk_glove_out o;
  textbuf *t = calloc(1, sizeof *t);
  dlk_status st = t ? dlk_glove_out_open(ctx, op, path, NULL, &o)
                    : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  if (st != DLK_OK) {
    free(W), free(t);
    return st;
  }
  t->o = &o;
  if (p.write_header && !p.gradsq) tb_printf(ctx, op, t, "%lld %d\n", (long long)V, m->dim);
  for (int64_t a = 0; a < V && t->st == DLK_OK; a++) {
    tb_printf(ctx, op, t, "%s", dlk_glove_word_str(vocab, a));
    const double *w = W + a * row, *c = W + (V + a) * row;
    if (p.gradsq || p.model == 0) {
      for (int64_t b = 0; b < row; b++) tb_printf(ctx, op, t, " %lf", w[b]);
      for (int64_t b = 0; b < row; b++) tb_printf(ctx, op, t, " %lf", c[b]);
    } else if (p.model == 1) {
      for (int64_t b = 0; b < d; b++) tb_printf(ctx, op, t, " %lf", w[b]);
    } else {
      for (int64_t b = 0; b < d; b++) tb_printf(ctx, op, t, " %lf", w[b] + c[b]);
    }
    tb_printf(ctx, op, t, "\n");
  }
  if (!p.no_unk && !p.gradsq && t->st == DLK_OK) {
    /* <unk>: the mean of the rarest min(100, V) words' rows, accumulated as the tool does
       (each term divided first, rows in id order). */
    double *u = calloc((size_t)row * 2, sizeof *u);
    if (!u) {
      t->st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    } else {
      double *uc = u + row;
      int64_t rare = V < 100 ? V : 100;
      for (int64_t a = V - rare; a < V; a++)
        for (int64_t b = 0; b < row; b++) {
          u[b] += W[a * row + b] / (double)rare;
          uc[b] += W[(V + a) * row + b] / (double)rare;
        }
      tb_printf(ctx, op, t, "<unk>");
      if (p.model == 0) {
        for (int64_t b = 0; b < row; b++) tb_printf(ctx, op, t, " %lf", u[b]);
        for (int64_t b = 0; b < row; b++) tb_printf(ctx, op, t, " %lf", uc[b]);
      } else if (p.model == 1) {
        for (int64_t b = 0; b < d; b++) tb_printf(ctx, op, t, " %lf", u[b]);
      } else {
        for (int64_t b = 0; b < d; b++) tb_printf(ctx, op, t, " %lf", u[b] + uc[b]);
      }
      tb_printf(ctx, op, t, "\n");
      free(u);
    }
  }
  tb_flush(ctx, op, t);
  st = t->st;
  free(t);
  free(W);
  if (st != DLK_OK) {
    dlk_glove_out_abort(&o);
    return st;
  }
  return dlk_glove_out_commit(ctx, op, &o);
}

/* Parse one double token; false if not a number. */
static bool parse_double(const char *s, const char *e, double *out) {
  char tmp[128];
  size_t n = (size_t)(e - s);
  if (n == 0 || n >= sizeof tmp) return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char *end;
  errno = 0;
  *out = strtod(tmp, &end);
  return end == tmp + n;
}

dlk_status dlk_glove_vectors_load_text(dlk_context *ctx, const char *path,
                                       const dlk_glove_vocab *vocab, dlk_tensor *out) {
  const char *op = "glove_vectors_load_text";
  if (!path || !vocab || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  if (!vocab->finished || vocab->n < 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: the vocabulary is empty or not finished", op);
  char *buf;
  size_t len;
  DLK_TRY(dlk_read_file(ctx, op, path, 0, &buf, &len));
  int64_t V = vocab->n, D = -1, line = 0;
  double *M = NULL;
  unsigned char *seen = calloc((size_t)V, 1);
  dlk_status st = seen ? DLK_OK : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  size_t pos = 0;
  while (st == DLK_OK && pos < len) {
    line++;
    size_t end = pos;
    while (end < len && buf[end] != '\n') end++;
    size_t e = end;
    while (e > pos && (buf[e - 1] == '\r' || buf[e - 1] == ' ')) e--;
    size_t w = pos;
    while (w < e && buf[w] != ' ') w++;
    /* Count the values. */
    int64_t nv = 0;
    for (size_t k = w; k < e;) {
      while (k < e && buf[k] == ' ') k++;
      if (k == e) break;
      while (k < e && buf[k] != ' ') k++;
      nv++;
    }
    if (e == pos) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s line %lld is empty", op, path, (long long)line);
      break;
    }
    if (line == 1 && nv == 1) {
      /* "V d" header line (-write-header) when both are integers. */
      double a, b;
      if (parse_double(buf + pos, buf + w, &a) && parse_double(buf + w + 1, buf + e, &b) &&
          a == floor(a) && b == floor(b) && dlk_glove_vocab_lookup(vocab, buf + pos, (int)(w - pos)) == 0) {
        pos = end + 1;
        continue;
      }
    }
    if (w - pos == 5 && memcmp(buf + pos, "<unk>", 5) == 0) {
      pos = end + 1;
      continue;
    }
    int64_t id = w - pos < DLK_GLOVE_MAX_WORD ? dlk_glove_vocab_lookup(vocab, buf + pos, (int)(w - pos)) : 0;
    if (id == 0) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                    "%s: %s line %lld: word \"%.*s\" is not in the vocabulary (the vocab and the "
                    "vectors file disagree)",
                    op, path, (long long)line, (int)(w - pos > 60 ? 60 : w - pos), buf + pos);
      break;
    }
    if (D < 0) {
      D = nv;
      if (D < 1) {
        st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s line %lld has no values", op, path, (long long)line);
        break;
      }
      M = calloc((size_t)V * (size_t)D, sizeof *M);
      if (!M) {
        st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
        break;
      }
    }
    if (nv != D) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s line %lld has %lld values, earlier lines %lld",
                    op, path, (long long)line, (long long)nv, (long long)D);
      break;
    }
    if (seen[id - 1]) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s line %lld: word \"%s\" appears twice", op, path,
                    (long long)line, dlk_glove_word_str(vocab, id - 1));
      break;
    }
    seen[id - 1] = 1;
    size_t k = w;
    for (int64_t j = 0; j < D; j++) {
      while (buf[k] == ' ') k++;
      size_t s = k;
      while (k < e && buf[k] != ' ') k++;
      double v;
      if (!parse_double(buf + s, buf + k, &v) || !isfinite(v)) {
        st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s line %lld: value %lld is not a finite number",
                      op, path, (long long)line, (long long)j + 1);
        break;
      }
      M[(id - 1) * D + j] = v;
    }
    pos = end + 1;
  }
  if (st == DLK_OK && D < 0) st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s has no vectors", op, path);
  for (int64_t i = 0; st == DLK_OK && i < V; i++)
    if (!seen[i])
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                    "%s: %s has no row for vocabulary word %lld \"%s\" (the vocab and the vectors "
                    "file disagree)",
                    op, path, (long long)i + 1, dlk_glove_word_str(vocab, i));
  free(buf);
  free(seen);
  if (st != DLK_OK) {
    free(M);
    return st;
  }
  int64_t shape[2] = {V, D};
  st = dlk_tensor_init(ctx, out, M, DLK_F64, (dlk_device){DLK_CPU, 0}, 2, shape);
  if (st != DLK_OK) free(M);
  return st;
}

/* ---- checkpoint ------------------------------------------------------------------------ */

/* Layout (native little-endian):
     char magic[12] "DLKGLOVECKPT"; uint32 version = 1
     int64 V; int32 d; int32 keras; int64 epoch; int64 total_epochs; uint32 seed; uint32 pad
     double eta, alpha, x_max, grad_clip
     char note[256]
     double W[2V(d+1)]; double G[2V(d+1)]
     uint64 FNV-1a 64 of every byte before it                                           */
#define CKPT_MAGIC "DLKGLOVECKPT"
typedef struct ckpt_header {
  char magic[12];
  uint32_t version;
  int64_t V;
  int32_t d, keras;
  int64_t epoch, total_epochs;
  uint32_t seed, pad;
  double eta, alpha, x_max, grad_clip;
  char note[256];
} ckpt_header;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}
#define FNV_INIT 1469598103934665603ULL

dlk_status dlk_glove_checkpoint_save_with(dlk_context *ctx, const dlk_glove_model *m,
                                          const dlk_glove_checkpoint_info *info, const char *path,
                                          const dlk_glove_writer *w) {
  const char *op = "glove_checkpoint_save";
  DLK_TRY(check_model(ctx, op, m));
  if (!path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: path is NULL", op);
  if (strcmp(path, "-") == 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: needs a file path", op);
  ckpt_header h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, CKPT_MAGIC, 12);
  h.version = 1;
  h.V = m->vocab_size;
  h.d = m->dim;
  h.epoch = m->epoch;
  if (info) {
    h.keras = info->keras;
    h.total_epochs = info->total_epochs;
    h.seed = info->seed;
    h.eta = info->eta, h.alpha = info->alpha, h.x_max = info->x_max, h.grad_clip = info->grad_clip;
    memcpy(h.note, info->note, sizeof h.note);
    h.note[sizeof h.note - 1] = '\0';
  }
  double *W = NULL, *G = NULL;
  dlk_status st = array_to_host(ctx, op, &m->params, &W);
  if (st == DLK_OK) st = array_to_host(ctx, op, &m->gradsq, &G);
  if (st != DLK_OK) {
    free(W);
    return st;
  }
  size_t bytes = (size_t)model_elems(m) * sizeof(double);
  uint64_t sum = fnv1a(FNV_INIT, &h, sizeof h);
  sum = fnv1a(sum, W, bytes);
  sum = fnv1a(sum, G, bytes);
  dlk_glove_out o;
  st = dlk_glove_out_open(ctx, op, path, w, &o);
  if (st == DLK_OK) {
    st = dlk_glove_out_write(ctx, op, &o, &h, sizeof h);
    if (st == DLK_OK) st = dlk_glove_out_write(ctx, op, &o, W, bytes);
    if (st == DLK_OK) st = dlk_glove_out_write(ctx, op, &o, G, bytes);
    if (st == DLK_OK) st = dlk_glove_out_write(ctx, op, &o, &sum, sizeof sum);
    if (st == DLK_OK) st = dlk_glove_out_commit(ctx, op, &o);
    else dlk_glove_out_abort(&o);
  }
  free(W);
  free(G);
  return st;
}

dlk_status dlk_glove_checkpoint_save(dlk_context *ctx, const dlk_glove_model *m,
                                     const dlk_glove_checkpoint_info *info, const char *path) {
  return dlk_glove_checkpoint_save_with(ctx, m, info, path, NULL);
}

dlk_status dlk_glove_checkpoint_load(dlk_context *ctx, const char *path, dlk_glove_model *m,
                                     dlk_glove_checkpoint_info *info) {
  const char *op = "glove_checkpoint_load";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!path || !m) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  FILE *f = fopen(path, "rb");
  if (!f) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
  ckpt_header h;
  dlk_status st = DLK_OK;
  double *W = NULL, *G = NULL;
  long long fsize = -1;
  if (fseeko(f, 0, SEEK_END) == 0) fsize = (long long)ftello(f);
  rewind(f);
  if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CKPT_MAGIC, 12) != 0) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s is not a dlk glove checkpoint (bad magic or too short)", op, path);
    goto done;
  }
  if (h.version != 1) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s has version %u, this dlk reads version 1", op, path, h.version);
    goto done;
  }
  if (h.V < 1 || h.V > ((int64_t)1 << 31) || h.d < 1 || h.d > (1 << 20) || h.epoch < 0 || h.pad != 0 ||
      h.note[sizeof h.note - 1] != '\0' || (h.keras != 0 && h.keras != 1)) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s: implausible header (V %lld, d %d, epoch %lld)", op,
                  path, (long long)h.V, h.d, (long long)h.epoch);
    goto done;
  }
  int64_t n = 2 * h.V * (h.d + 1);
  long long want = (long long)sizeof h + 2 * n * (long long)sizeof(double) + 8;
  if (fsize != want) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s has %lld bytes, V %lld and d %d need %lld (truncated?)",
                  op, path, fsize, (long long)h.V, h.d, want);
    goto done;
  }
  W = malloc((size_t)n * sizeof *W);
  G = malloc((size_t)n * sizeof *G);
  if (!W || !G) {
    st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    goto done;
  }
  uint64_t sum;
  if (fread(W, sizeof *W, (size_t)n, f) != (size_t)n || fread(G, sizeof *G, (size_t)n, f) != (size_t)n ||
      fread(&sum, sizeof sum, 1, f) != 1) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s is truncated", op, path);
    goto done;
  }
  uint64_t got = fnv1a(FNV_INIT, &h, sizeof h);
  got = fnv1a(got, W, (size_t)n * sizeof *W);
  got = fnv1a(got, G, (size_t)n * sizeof *G);
  if (got != sum) {
    st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s: checksum mismatch (the file is damaged)", op, path);
    goto done;
  }
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(W[i]) || !isfinite(G[i]) || !(G[i] > 0)) {
      st = dlk_fail(ctx, DLK_ERR_NOT_FINITE, "%s: %s: value %lld is not finite (or accumulator <= 0)",
                    op, path, (long long)i);
      goto done;
    }
  dlk_glove_model nm;
  memset(&nm, 0, sizeof nm);
  int64_t shape[2] = {2 * h.V, h.d + 1};
  st = dlk_tensor_alloc(ctx, &nm.params, DLK_F64, 2, shape);
  if (st == DLK_OK) {
    st = dlk_tensor_alloc(ctx, &nm.gradsq, DLK_F64, 2, shape);
    if (st != DLK_OK) dlk_tensor_free(ctx, &nm.params);
  }
  if (st != DLK_OK) goto done;
  nm.vocab_size = h.V;
  nm.dim = h.d;
  nm.epoch = h.epoch;
  st = dlk_tensor_write(ctx, &nm.params, W, (size_t)n * sizeof *W);
  if (st == DLK_OK) st = dlk_tensor_write(ctx, &nm.gradsq, G, (size_t)n * sizeof *G);
  if (st != DLK_OK) {
    dlk_tensor_free(ctx, &nm.params);
    dlk_tensor_free(ctx, &nm.gradsq);
    goto done;
  }
  *m = nm;
  if (info) {
    memset(info, 0, sizeof *info);
    info->eta = h.eta, info->alpha = h.alpha, info->x_max = h.x_max, info->grad_clip = h.grad_clip;
    info->keras = h.keras;
    info->seed = h.seed;
    info->total_epochs = h.total_epochs;
    memcpy(info->note, h.note, sizeof info->note);
    info->note[sizeof info->note - 1] = '\0';
  }
done:
  fclose(f);
  free(W);
  free(G);
  return st;
}
