/*
 * dlk-glove: GloVe word vectors from a text corpus with dlk.
 *
 *   dlk-glove train CORPUS --out DIR [--vector-size 50 --iter 25 --window 15 --min-count 5
 *             --max-vocab 0 --x-max 100 --alpha 0.75 --eta 0.05 --seed S --device cuda|cpu
 *             --threads N --memory GB --eval QDIR --resume | --force --quiet]
 *       the whole pipeline: DIR/vocab.txt, DIR/cooccurrence.bin, DIR/cooccurrence.shuf.bin,
 *       then training with a progress bar (records/s, cost, ETA) on stderr, the cost of
 *       every epoch in DIR/cost.log, DIR/checkpoint.dlk after every epoch (written to a
 *       temporary file and renamed), DIR/vectors.txt (+ .bin) at the end. DIR/settings.txt
 *       records the settings and the corpus (size and hash): --resume continues only a run
 *       of the same corpus and settings, from its checkpoint; an existing run is replaced
 *       only with --force. Ctrl-C stops within a chunk of records and keeps the last
 *       checkpoint. A run that fails or is stopped before its first checkpoint removes
 *       what it wrote (and DIR, when it made it).
 *   dlk-glove vocab | cooccur | shuffle | fit [the tool's flags]
 *       drop-in replacements of the tool's vocab_count, cooccur, shuffle and glove: the
 *       same single-dash flags, stdin/stdout, output names and stderr messages; plus
 *       -device cuda|cpu.
 *   dlk-glove eval --vocab-file vocab.txt --vectors-file vectors.txt [--questions DIR]
 *       analogy accuracy as the tool's eval/python/evaluate.py prints it.
 *   dlk-glove neighbours WORD... --vocab-file vocab.txt --vectors-file vectors.txt [-k 10]
 *
 * Flags take one or two dashes. Every flag is checked before any work: an unknown one is
 * an error that names the closest known flag, numbers are range-checked, input files
 * must be readable and output folders writable. Exit status: 0, 1 (failure), 2 (bad
 * command line), 130 (interrupted).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dlk.h"

static volatile int g_cancel = 0;
static void on_sigint(int sig) {
  (void)sig;
  g_cancel = 1;
  signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

/* ---- messages ------------------------------------------------------------------------- */

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "dlk-glove: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* A failed dlk call: says what failed; returns the exit status (130 when interrupted). */
static int report(dlk_context *ctx, dlk_status s, const char *what) {
  if (s == DLK_ERR_INTERRUPTED || g_cancel) {
    fprintf(stderr, "\ndlk-glove: interrupted (%s)\n", what);
    return 130;
  }
  msg("%s: %s: %s", what, dlk_status_string(s), dlk_context_last_error(ctx));
  return 1;
}

/* In a function with `int rc` and an `out:` label that frees what it holds. */
#define TRY(call, what)                 \
  do {                                  \
    dlk_status try_s_ = (call);         \
    if (try_s_ != DLK_OK) {             \
      rc = report(ctx, try_s_, (what)); \
      goto out;                         \
    }                                   \
  } while (0)
#define FAIL(...)     \
  do {                \
    msg(__VA_ARGS__); \
    rc = 1;           \
    goto out;         \
  } while (0)

/* ---- flags -------------------------------------------------------------------------------- */

/* A command's flags: each known by name (no dashes), typed and range-checked when the
   command line is read, before anything runs. */
typedef enum flag_kind { FLAG_BOOL, FLAG_INT, FLAG_NUM, FLAG_STR } flag_kind;
typedef struct flag_spec {
  const char *name;
  flag_kind kind;
  long long ilo, ihi; /* FLAG_INT: accepted values */
  double nlo, nhi;    /* FLAG_NUM: accepted values ... */
  bool open_lo;       /* ... with nlo itself excluded (x > 0) */
  const char *alias;  /* another spelling: the value goes to this flag */
} flag_spec;
#define F_INT(n, lo, hi) \
  { n, FLAG_INT, lo, hi, 0, 0, false, NULL }
#define F_NUM(n, lo, hi) \
  { n, FLAG_NUM, 0, 0, lo, hi, false, NULL }
#define F_POS(n, hi) \
  { n, FLAG_NUM, 0, 0, 0, hi, true, NULL } /* > 0 */
#define F_STR(n) \
  { n, FLAG_STR, 0, 0, 0, 0, false, NULL }
#define F_BOOL(n) \
  { n, FLAG_BOOL, 0, 0, 0, 0, false, NULL }
#define F_ALIAS(n, of) \
  { n, FLAG_STR, 0, 0, 0, 0, false, of }
#define I64MAX ((long long)INT64_MAX)
#define U32MAX 4294967295LL

enum { MAX_FLAGS = 40, MAX_POS = 64 };
typedef struct flags {
  const char *cmd;  /* "train" */
  const char *dash; /* how this command's help spells its flags: "-" or "--" */
  const flag_spec *spec;
  int n;
  const char *value[MAX_FLAGS]; /* NULL: not given */
  const char *pos[MAX_POS];
  int npos;
} flags;

/* Edit distance (insert, delete, substitute, swap of neighbours) for "did you mean". */
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 60 || lb > 60) return 99;
  int d[61][61];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] +
                (a[i - 1] != b[j - 1] && !(strchr("-_", a[i - 1]) && strchr("-_", b[j - 1])));
      int best = d[i - 1][j] + 1 < d[i][j - 1] + 1 ? d[i - 1][j] + 1 : d[i][j - 1] + 1;
      if (sub < best) best = sub;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

static const char *closest(const char *word, const char *const *names, int n) {
  const char *best = NULL;
  int bd = INT_MAX;
  for (int i = 0; i < n; i++) {
    int dd = edit_distance(word, names[i]);
    /* A known flag the word starts with, or that starts with the word, is closer still. */
    size_t lw = strlen(word), ln = strlen(names[i]);
    if (lw > 1 && (strncmp(word, names[i], lw < ln ? lw : ln) == 0)) dd = dd < 2 ? dd : 2;
    if (dd < bd) bd = dd, best = names[i];
  }
  return best;
}

static int find_spec(const flags *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->spec[i].name, name) == 0) return i;
  return -1;
}

static int flag_error(const flags *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int flag_error(const flags *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "dlk-glove %s: ", f->cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return 2;
}

/* Checks one value against its flag's type and range. */
static int check_value(const flags *f, const flag_spec *s, const char *shown, const char *v) {
  char *end;
  if (s->kind == FLAG_INT) {
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end) return flag_error(f, "%s wants an integer, not \"%s\"", shown, v);
    if (errno == ERANGE || x < s->ilo || x > s->ihi)
      return flag_error(f, "%s %s is out of range: it takes %lld..%lld", shown, v, s->ilo, s->ihi);
  } else if (s->kind == FLAG_NUM) {
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end) return flag_error(f, "%s wants a number, not \"%s\"", shown, v);
    bool low = s->open_lo ? !(x > s->nlo) : !(x >= s->nlo);
    if (!isfinite(x) || low || x > s->nhi) {
      if (s->nhi >= 1e300)
        return flag_error(f, "%s %s is out of range: it takes a number %s %g", shown, v,
                          s->open_lo ? ">" : ">=", s->nlo);
      return flag_error(f, "%s %s is out of range: it takes a number %s %g and <= %g", shown, v,
                        s->open_lo ? ">" : ">=", s->nlo, s->nhi);
    }
  } else if (s->kind == FLAG_STR && !*v) {
    return flag_error(f, "%s wants a value, not an empty string", shown);
  }
  return 0;
}

/* Reads argv (argv[0] is the command) into f: flags with one or two dashes, their values,
   and up to max_pos positional arguments ("--" ends the flags). Every unknown flag is
   named (its value, if the next word looks like one, is passed over). 0, or 2 after the
   messages. */
static int parse_flags(flags *f, int argc, char **argv, int max_pos) {
  const char *names[MAX_FLAGS];
  for (int i = 0; i < f->n; i++) names[i] = f->spec[i].name;
  bool only_pos = false;
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (f->npos >= max_pos || f->npos >= MAX_POS)
        return max_pos == 0
                   ? flag_error(f, "takes no argument \"%s\" (flags start with %s)", a, f->dash)
                   : flag_error(f, "too many arguments at \"%s\"", a);
      f->pos[f->npos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    int k = find_spec(f, name);
    if (k < 0) {
      const char *c = closest(name, names, f->n);
      bad = flag_error(f, "unknown flag %s (did you mean %s%s? dlk-glove %s --help lists them)", a,
                       f->dash, c ? c : "", f->cmd);
      if (i + 1 < argc && argv[i + 1][0] != '-') i++;
      continue;
    }
    const flag_spec *s = &f->spec[k];
    if (s->alias) k = find_spec(f, s->alias), s = &f->spec[k];
    const char *v = "1";
    if (s->kind != FLAG_BOOL) {
      if (i + 1 >= argc) return flag_error(f, "%s needs a value", a);
      v = argv[++i];
      int rc = check_value(f, s, a, v);
      if (rc) return rc;
    }
    if (f->value[k]) return flag_error(f, "%s%s is given twice", f->dash, s->name);
    f->value[k] = v;
  }
  return bad;
}

static const char *flag_raw(const flags *f, const char *name) {
  int k = find_spec(f, name);
  return k >= 0 ? f->value[k] : NULL;
}
static bool given(const flags *f, const char *name) {
  return flag_raw(f, name) != NULL;
}
static long long flag_int(const flags *f, const char *name, long long def) {
  const char *v = flag_raw(f, name);
  return v ? strtoll(v, NULL, 10) : def;
}
static double flag_num(const flags *f, const char *name, double def) {
  const char *v = flag_raw(f, name);
  return v ? strtod(v, NULL) : def;
}
static const char *flag_str(const flags *f, const char *name, const char *def) {
  const char *v = flag_raw(f, name);
  return v ? v : def;
}

static bool wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "-help") || !strcmp(argv[i], "--help"))
      return true;
  return false;
}

/* ---- paths: checked before any work ----------------------------------------------------- */

/* A readable file that is not a folder. 0, or 1 after a message. */
static int need_readable(const char *what, const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    msg("%s %s: %s", what, path, strerror(errno));
    return 1;
  }
  struct stat st;
  int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  close(fd);
  if (dir) {
    msg("%s %s is a folder, not a file", what, path);
    return 1;
  }
  return 0;
}

/* The folder of a path ("." when it has none). */
static void folder_of(const char *path, char *out, size_t n) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(out, n, ".");
  else if (slash == path)
    snprintf(out, n, "/");
  else
    snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/* Files can be created in `dir`: tried by creating (and removing) one. 0, or 1 after a
   message naming `what`. */
static int need_writable_dir(const char *what, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    msg("%s: folder %s: %s", what, dir, strerror(errno));
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    msg("%s: %s is not a folder", what, dir);
    return 1;
  }
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.dlk-glove-probe-%ld", dir, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    msg("%s: cannot write in %s: %s", what, dir, strerror(errno));
    return 1;
  }
  close(fd);
  unlink(probe);
  return 0;
}

/* Output files named PREFIX... can be written next to PREFIX. */
static int need_writable_prefix(const char *what, const char *prefix) {
  char dir[4200];
  folder_of(prefix, dir, sizeof dir);
  return need_writable_dir(what, dir);
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* ---- context and streams ---------------------------------------------------------------- */

/* -device cuda|cpu; default: the GPU if present else the CPU. NULL after a message. */
static dlk_context *make_context(const flags *f, int threads) {
  const char *dev = flag_str(f, "device", NULL);
  dlk_context_options o;
  memset(&o, 0, sizeof o);
  o.cpu_threads = threads > 0 ? threads : 0;
  if (!dev)
    o.device = (dlk_device){DLK_DEVICE_DEFAULT, 0};
  else if (strcmp(dev, "cuda") == 0 || strcmp(dev, "gpu") == 0)
    o.device = (dlk_device){DLK_CUDA, 0};
  else
    o.device = (dlk_device){DLK_CPU, 0};
  dlk_context *ctx = NULL;
  dlk_status s = dlk_context_create(&ctx, &o);
  if (s != DLK_OK) {
    msg("cannot use device %s: %s: %s", dev ? dev : "(default)", dlk_status_string(s),
        dlk_context_last_error(NULL));
    return NULL;
  }
  return ctx;
}

/* -device: checked with the other flags. */
static int check_device(const flags *f) {
  const char *dev = flag_str(f, "device", NULL);
  if (dev && strcmp(dev, "cuda") && strcmp(dev, "gpu") && strcmp(dev, "cpu"))
    return flag_error(f, "%sdevice \"%s\": cuda or cpu", f->dash, dev);
  return 0;
}

/* FNV-1a over the corpus: train's settings name the corpus by size and this hash. */
static void fnv1a(uint64_t *h, const char *p, size_t n) {
  uint64_t x = *h;
  for (size_t i = 0; i < n; i++) x = (x ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  *h = x;
}
#define FNV_START 0xcbf29ce484222325ULL

/* Feed a stream to a consumer (or only hash it: fn NULL) in 1 MiB pieces, stopping at
   Ctrl-C. 0, or the exit status after a message. */
typedef dlk_status (*feed_fn)(dlk_context *, void *, const char *, size_t);
static int feed_stream(dlk_context *ctx, FILE *in, const char *name, feed_fn fn, void *obj,
                       uint64_t *hash, int64_t *bytes) {
  static char buf[1 << 20];
  for (;;) {
    if (g_cancel) return report(ctx, DLK_ERR_INTERRUPTED, name);
    size_t n = fread(buf, 1, sizeof buf, in);
    if (n) {
      if (fn) {
        dlk_status s = fn(ctx, obj, buf, n);
        if (s != DLK_OK) return report(ctx, s, name);
      }
      if (hash) fnv1a(hash, buf, n);
      if (bytes) *bytes += (int64_t)n;
    }
    if (n < sizeof buf) break;
  }
  if (ferror(in)) {
    msg("read error on %s: %s", name, strerror(errno));
    return 1;
  }
  return 0;
}
static dlk_status feed_vocab(dlk_context *ctx, void *v, const char *t, size_t n) {
  return dlk_glove_vocab_add_text(ctx, v, t, n);
}
static dlk_status feed_cooc(dlk_context *ctx, void *c, const char *t, size_t n) {
  return dlk_glove_cooccur_add_text(ctx, c, t, n);
}

/* ---- vocab (vocab_count) ---------------------------------------------------------------- */

static int do_vocab(dlk_context *ctx, FILE *in, const char *in_name, const char *out,
                    long long min_count, long long max_vocab, int verbose, uint64_t *hash,
                    int64_t *bytes) {
  int rc = 0;
  dlk_glove_vocab *v = NULL;
  TRY(dlk_glove_vocab_create(ctx, &v), "vocab");
  fprintf(stderr, "BUILDING VOCABULARY\n");
  if ((rc = feed_stream(ctx, in, in_name, feed_vocab, v, hash, bytes)) != 0) goto out;
  int64_t tokens = 0, distinct = 0;
  dlk_glove_vocab_tokens(ctx, v, &tokens, &distinct);
  if (verbose > 1) fprintf(stderr, "Processed %lld tokens.\n", (long long)tokens);
  if (verbose > 1) fprintf(stderr, "Counted %lld unique words.\n", (long long)distinct);
  dlk_glove_vocab_params p = {min_count, max_vocab};
  TRY(dlk_glove_vocab_finish(ctx, v, &p), "vocab");
  int64_t V = 0;
  dlk_glove_vocab_size(ctx, v, &V);
  if (max_vocab > 0 && max_vocab < distinct && V == max_vocab) {
    if (verbose > 0) fprintf(stderr, "Truncating vocabulary at size %lld.\n", max_vocab);
  } else if (V < distinct) {
    if (verbose > 0) fprintf(stderr, "Truncating vocabulary at min count %lld.\n", min_count);
  }
  fprintf(stderr, "Using vocabulary of size %lld.\n\n", (long long)V);
  TRY(dlk_glove_vocab_save(ctx, v, out), "vocab");
out:
  dlk_glove_vocab_free(ctx, v);
  return rc;
}

static const flag_spec vocab_flags[] = {
    F_INT("verbose", 0, 2),
    F_INT("max-vocab", 0, I64MAX),
    F_INT("min-count", 0, I64MAX),
    F_STR("device"),
};

static void vocab_usage(void) {
  printf("Simple tool to extract unigram counts (dlk-glove vocab: drop-in for vocab_count)\n\n");
  printf("Usage options:\n\t-verbose <int>\n\t\tSet verbosity: 0, 1, or 2 (default)\n");
  printf(
      "\t-max-vocab <int>\n\t\tUpper bound on vocabulary size, i.e. keep the <int> most frequent "
      "words.\n");
  printf(
      "\t-min-count <int>\n\t\tLower limit such that words which occur fewer than <int> times are "
      "discarded.\n");
  printf("\t-device cuda|cpu\n");
  printf(
      "\nExample usage:\n./dlk-glove vocab -verbose 2 -max-vocab 100000 -min-count 10 < corpus.txt "
      "> vocab.txt\n");
}

static int cmd_vocab(int argc, char **argv) {
  if (argc == 1 || wants_help(argc, argv)) {
    vocab_usage();
    return 0;
  }
  flags f = {"vocab", "-", vocab_flags, (int)(sizeof vocab_flags / sizeof *vocab_flags), {0},
             {0},     0};
  int rc = parse_flags(&f, argc, argv, 0);
  if (rc || (rc = check_device(&f))) return rc;
  dlk_context *ctx = make_context(&f, 0);
  if (!ctx) return 1;
  signal(SIGINT, on_sigint);
  rc = do_vocab(ctx, stdin, "stdin", "-", flag_int(&f, "min-count", 1),
                flag_int(&f, "max-vocab", 0), (int)flag_int(&f, "verbose", 2), NULL, NULL);
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- cooccur ------------------------------------------------------------------------------ */

static int do_cooccur(dlk_context *ctx, FILE *in, const char *in_name, const char *vocab_file,
                      const char *out, const dlk_glove_cooccur_params *p, int verbose) {
  int rc = 0;
  dlk_glove_vocab *v = NULL;
  dlk_glove_cooccur *c = NULL;
  fprintf(stderr, "COUNTING COOCCURRENCES\n");
  if (verbose > 0) {
    fprintf(stderr, "window size: %d\n", p->window);
    fprintf(stderr, "context: %s\n", p->symmetric ? "symmetric" : "asymmetric");
  }
  if (verbose > 1) fprintf(stderr, "Reading vocab from file \"%s\"...", vocab_file);
  TRY(dlk_glove_vocab_load(ctx, vocab_file, &v), "cooccur");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  if (verbose > 1) fprintf(stderr, "loaded %lld words.\n", (long long)V);
  TRY(dlk_glove_cooccur_create(ctx, p, v, &c), "cooccur");
  dlk_glove_cooccur_stats st;
  dlk_glove_cooccur_get_stats(ctx, c, &st);
  if (verbose > 1) fprintf(stderr, "max product: %lld\n", (long long)st.max_product);
  if (verbose > 1) fprintf(stderr, "overflow length: %lld\n", (long long)st.overflow_length);
  if ((rc = feed_stream(ctx, in, in_name, feed_cooc, c, NULL, NULL)) != 0) goto out;
  TRY(dlk_glove_cooccur_finish(ctx, c, out), "cooccur");
  dlk_glove_cooccur_get_stats(ctx, c, &st);
  if (verbose > 1) fprintf(stderr, "Processed %lld tokens.\n", (long long)st.tokens);
  if (verbose > 1)
    fprintf(stderr, "%d temporary file(s); counted on the %s.\n", st.temp_files,
            st.used_gpu ? "GPU" : "CPU");
  fprintf(stderr, "Merging cooccurrence files: processed %lld lines.\n\n", (long long)st.records);
out:
  dlk_glove_cooccur_free(ctx, c);
  dlk_glove_vocab_free(ctx, v);
  return rc;
}

static const flag_spec cooccur_flags[] = {
    F_INT("verbose", 0, 2),
    F_INT("symmetric", 0, 1),
    F_INT("window-size", 1, 100000),
    F_STR("vocab-file"),
    F_POS("memory", 1e6),
    F_INT("max-product", 0, I64MAX),
    F_INT("overflow-length", 0, I64MAX),
    F_STR("overflow-file"),
    F_INT("distance-weighting", 0, 1),
    F_STR("device"),
};

static int cmd_cooccur(int argc, char **argv) {
  if (argc == 1 || wants_help(argc, argv)) {
    printf(
        "Tool to calculate word-word cooccurrence statistics (dlk-glove cooccur: drop-in for "
        "cooccur)\n\n");
    printf(
        "Usage options:\n\t-verbose <int>\n\t-symmetric <int>\n\t-window-size <int>\n\t-vocab-file "
        "<file>\n");
    printf(
        "\t-memory <float>\n\t-max-product <int>\n\t-overflow-length <int>\n\t-overflow-file "
        "<file>\n");
    printf("\t-distance-weighting <int>\n\t-device cuda|cpu\n");
    printf(
        "\nExample usage:\n./dlk-glove cooccur -verbose 2 -symmetric 0 -window-size 10 -vocab-file "
        "vocab.txt -memory 8.0 -overflow-file tempoverflow < corpus.txt > cooccurrences.bin\n");
    return 0;
  }
  flags f = {
      "cooccur", "-", cooccur_flags, (int)(sizeof cooccur_flags / sizeof *cooccur_flags), {0},
      {0},       0};
  int rc = parse_flags(&f, argc, argv, 0);
  if (rc || (rc = check_device(&f))) return rc;
  const char *vocab_file = flag_str(&f, "vocab-file", "vocab.txt");
  const char *overflow = flag_str(&f, "overflow-file", "overflow");
  if (need_readable("-vocab-file", vocab_file) || need_writable_prefix("-overflow-file", overflow))
    return 1;
  dlk_context *ctx = make_context(&f, 0);
  if (!ctx) return 1;
  signal(SIGINT, on_sigint);
  dlk_glove_cooccur_params p;
  TRY(dlk_glove_cooccur_defaults(ctx, &p), "cooccur");
  p.symmetric = (int)flag_int(&f, "symmetric", 1);
  p.window = (int)flag_int(&f, "window-size", 15);
  p.memory_gb = flag_num(&f, "memory", 3.0);
  p.distance_weighting = (int)flag_int(&f, "distance-weighting", 1);
  p.max_product = flag_int(&f, "max-product", 0);
  p.overflow_length = flag_int(&f, "overflow-length", 0);
  p.temp_prefix = overflow;
  rc = do_cooccur(ctx, stdin, "stdin", vocab_file, "-", &p, (int)flag_int(&f, "verbose", 2));
out:
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- shuffle ------------------------------------------------------------------------------ */

static const flag_spec shuffle_flags[] = {
    F_INT("verbose", 0, 2), F_POS("memory", 1e6),     F_INT("array-size", 0, I64MAX / 16),
    F_STR("temp-file"),     F_INT("seed", 0, U32MAX), F_STR("device"),
};

static int cmd_shuffle(int argc, char **argv) {
  if (argc == 1 || wants_help(argc, argv)) {
    printf(
        "Tool to shuffle entries of word-word cooccurrence files (dlk-glove shuffle: drop-in for "
        "shuffle)\n\n");
    printf(
        "Usage options:\n\t-verbose <int>\n\t-memory <float>\n\t-array-size <int>\n\t-temp-file "
        "<file>\n\t-seed <int>\n");
    printf("\t-device cuda|cpu\n");
    printf(
        "\nExample usage:\n./dlk-glove shuffle -verbose 2 -memory 8.0 < cooccurrence.bin > "
        "cooccurrence.shuf.bin\n");
    return 0;
  }
  flags f = {
      "shuffle", "-", shuffle_flags, (int)(sizeof shuffle_flags / sizeof *shuffle_flags), {0},
      {0},       0};
  int rc = parse_flags(&f, argc, argv, 0);
  if (rc || (rc = check_device(&f))) return rc;
  const char *temp = flag_str(&f, "temp-file", "temp_shuffle");
  if (need_writable_prefix("-temp-file", temp)) return 1;
  int verbose = (int)flag_int(&f, "verbose", 2);
  dlk_context *ctx = make_context(&f, 0);
  if (!ctx) return 1;
  dlk_glove_shuffle_params p;
  TRY(dlk_glove_shuffle_defaults(ctx, &p), "shuffle");
  p.memory_gb = flag_num(&f, "memory", 2.0);
  p.array_size = flag_int(&f, "array-size", 0);
  p.temp_prefix = temp;
  p.seed = (uint32_t)flag_int(&f, "seed", 0);
  if (p.seed == 0) p.seed = (uint32_t)time(NULL);
  fprintf(stderr, "Using random seed %d\n", (int)p.seed);
  fprintf(stderr, "SHUFFLING COOCCURRENCES\n");
  if (verbose > 0)
    fprintf(stderr, "array size: %lld\n",
            p.array_size ? (long long)p.array_size
                         : (long long)(0.95 * p.memory_gb * 1073741824.0 / 16));
  int64_t n = 0;
  TRY(dlk_glove_shuffle_file(ctx, &p, "-", "-", NULL, &n), "shuffle");
  fprintf(stderr, "Merging temp files: processed %lld lines.\n\n", (long long)n);
out:
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- training progress --------------------------------------------------------------------- */

typedef struct progress {
  double t0;
  int epoch, epochs;
  int show;  /* a terminal: draw the line */
  int width; /* terminal columns: the line never wraps, so \r returns to its start */
  int drawn; /* characters on the line now */
  double last_draw;
} progress;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int terminal_width(void) {
  struct winsize ws;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  const char *c = getenv("COLUMNS");
  int n = c ? atoi(c) : 0;
  return n > 0 ? n : 80;
}

/* Blank the progress line and return to its start. */
static void progress_clear(progress *p) {
  if (!p->show || !p->drawn) return;
  fprintf(stderr, "\r%*s\r", p->drawn, "");
  p->drawn = 0;
  fflush(stderr);
}

static void on_progress(void *user, int64_t done, int64_t total, double cost_sum) {
  progress *p = user;
  if (!p->show) return;
  double t = now();
  if (t - p->last_draw < 0.2 && done < total) return;
  p->last_draw = t;
  double el = t - p->t0, rate = el > 0 ? done / el : 0;
  double rem = rate > 0 ? (double)(total - done) / rate : 0;
  double epochs_left = p->epochs - p->epoch;
  double eta = rem + (rate > 0 ? epochs_left * (double)total / rate : 0);
  int w = 30, fill = total ? (int)(w * (double)done / (double)total) : w;
  char bar[64], line[256];
  for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
  bar[w] = '\0';
  int n =
      snprintf(line, sizeof line, "epoch %d/%d [%s] %5.1f%% %7.3fM rec/s cost %.6f ETA %dm%02ds",
               p->epoch, p->epochs, bar, total ? 100.0 * done / total : 100.0, rate / 1e6,
               done ? cost_sum / (double)done : 0.0, (int)(eta / 60), (int)fmod(eta, 60));
  if (n < 0) return;
  if (n >= (int)sizeof line) n = (int)sizeof line - 1;
  if (n > p->width - 1) n = p->width - 1; /* the last column would wrap on some terminals */
  line[n] = '\0';
  /* Spaces over whatever the previous line had beyond this one. */
  fprintf(stderr, "\r%s%*s", line, p->drawn > n ? p->drawn - n : 0, "");
  if (p->drawn > n) fprintf(stderr, "\r%s", line);
  p->drawn = n;
  fflush(stderr);
}

/* ---- fit (glove) --------------------------------------------------------------------------- */

/* The tool's save_params(nb_iter): nb_iter < 0 final ("%s.bin"/".txt"), 0 the initial
   parameters (binary always), > 0 checkpoints ("%s.%03d.bin"). 0, or the exit status. */
static int save_params(dlk_context *ctx, const dlk_glove_model *m, const dlk_glove_vocab *v,
                       const char *save_file, const char *gradsq_file, int save_gradsq, int binary,
                       const dlk_glove_text_params *tp, int nb_iter) {
  int rc = 0;
  char path[4200];
  char suffix[16] = "";
  if (nb_iter >= 0) snprintf(suffix, sizeof suffix, ".%03d", nb_iter);
  if (binary > 0 || nb_iter == 0) {
    snprintf(path, sizeof path, "%s%s.bin", save_file, suffix);
    TRY(dlk_glove_model_save_params(ctx, m, path), "saving parameters");
    if (save_gradsq) {
      snprintf(path, sizeof path, "%s%s.bin", gradsq_file, suffix);
      TRY(dlk_glove_model_save_gradsq(ctx, m, path), "saving gradsq");
    }
  }
  if (binary != 1) {
    snprintf(path, sizeof path, "%s%s.txt", save_file, suffix);
    TRY(dlk_glove_save_text(ctx, tp, m, v, path), "saving vectors");
    if (save_gradsq) {
      dlk_glove_text_params g = *tp;
      g.gradsq = 1;
      snprintf(path, sizeof path, "%s%s.txt", gradsq_file, suffix);
      TRY(dlk_glove_save_text(ctx, &g, m, v, path), "saving gradsq text");
    }
  }
out:
  return rc;
}

static void timestamp(char *buf, size_t n) {
  time_t t = time(NULL);
  strftime(buf, n, "%x - %I:%M.%S%p", localtime(&t));
}

static const flag_spec fit_flags[] = {
    F_INT("verbose", 0, 2),
    F_INT("write-header", 0, 1),
    F_INT("vector-size", 1, 1 << 20),
    F_INT("threads", 0, 4096),
    F_INT("iter", 0, 100000),
    F_POS("eta", 1e6),
    F_NUM("alpha", 0, 100),
    F_POS("x-max", 1e300),
    F_POS("grad-clip", 1e300),
    F_INT("binary", 0, 2),
    F_INT("model", 0, 2),
    F_STR("input-file"),
    F_STR("vocab-file"),
    F_STR("save-file"),
    F_STR("gradsq-file"),
    F_INT("save-gradsq", 0, 1),
    F_INT("checkpoint-every", 0, 100000),
    F_INT("load-init-param", 0, 1),
    F_INT("save-init-param", 0, 1),
    F_STR("init-param-file"),
    F_INT("load-init-gradsq", 0, 1),
    F_STR("init-gradsq-file"),
    F_INT("seed", 0, U32MAX),
    F_INT("keras", 0, 1),
    F_STR("device"),
};

static void fit_usage(void) {
  printf("GloVe: Global Vectors for Word Representation (dlk-glove fit: drop-in for glove)\n\n");
  printf(
      "Usage options:\n\t-verbose <int>\n\t-write-header <int>\n\t-vector-size <int>\n\t-threads "
      "<int>\n");
  printf(
      "\t-iter <int>\n\t-eta <float>\n\t-alpha <float>\n\t-x-max <float>\n\t-grad-clip <float>\n");
  printf(
      "\t-binary <int>\n\t-model <int>\n\t-input-file <file>\n\t-vocab-file <file>\n\t-save-file "
      "<file>\n");
  printf(
      "\t-gradsq-file <file>\n\t-save-gradsq <int>\n\t-checkpoint-every <int>\n\t-load-init-param "
      "<int>\n");
  printf(
      "\t-save-init-param <int>\n\t-init-param-file <file>\n\t-load-init-gradsq "
      "<int>\n\t-init-gradsq-file <file>\n");
  printf(
      "\t-seed <int>\n\t-keras <int>\n\t\t1: target log(1+X), weight without the cap\n\t-device "
      "cuda|cpu\n");
  printf(
      "\nExample usage:\n./dlk-glove fit -input-file cooccurrence.shuf.bin -vocab-file vocab.txt "
      "-save-file vectors -gradsq-file gradsq -verbose 2 -vector-size 100 -threads 16 -alpha 0.75 "
      "-x-max 100.0 -eta 0.05 -binary 2 -model 2\n\n");
}

/* The training options shared by fit and train. */
static int train_params(dlk_context *ctx, const flags *f, dlk_glove_train_params *tp) {
  int rc = 0;
  TRY(dlk_glove_train_defaults(ctx, tp), "train");
  tp->eta = flag_num(f, "eta", 0.05);
  tp->alpha = flag_num(f, "alpha", 0.75);
  tp->x_max = flag_num(f, "x-max", 100.0);
  tp->grad_clip = flag_num(f, "grad-clip", 100.0);
  tp->keras = (int)flag_int(f, "keras", 0);
  tp->cancel = &g_cancel;
out:
  return rc;
}

static int cmd_fit(int argc, char **argv) {
  if (argc == 1 || wants_help(argc, argv)) {
    fit_usage();
    return 0;
  }
  flags f = {"fit", "-", fit_flags, (int)(sizeof fit_flags / sizeof *fit_flags), {0}, {0}, 0};
  int rc = parse_flags(&f, argc, argv, 0);
  if (rc || (rc = check_device(&f))) return rc;
  int verbose = (int)flag_int(&f, "verbose", 2);
  int d = (int)flag_int(&f, "vector-size", 50);
  int iters = (int)flag_int(&f, "iter", 25);
  int binary = (int)flag_int(&f, "binary", 0);
  int model_kind = (int)flag_int(&f, "model", 2);
  int save_gradsq = (int)flag_int(&f, "save-gradsq", 0);
  const char *vocab_file = flag_str(&f, "vocab-file", "vocab.txt");
  const char *save_file = flag_str(&f, "save-file", "vectors");
  const char *gradsq_file = flag_str(&f, "gradsq-file", NULL);
  if (gradsq_file)
    save_gradsq = 1;
  else
    gradsq_file = "gradsq";
  const char *input = flag_str(&f, "input-file", "cooccurrence.shuf.bin");
  int ckpt_every = (int)flag_int(&f, "checkpoint-every", 0);
  const char *init_param = flag_str(&f, "init-param-file", "vectors.000.bin");
  int load_init_param = (int)flag_int(&f, "load-init-param", 0);
  int save_init_param = (int)flag_int(&f, "save-init-param", 0);
  const char *init_gradsq = flag_str(&f, "init-gradsq-file", "gradsq.000.bin");
  int load_init_gradsq = (int)flag_int(&f, "load-init-gradsq", 0);
  long long seed = flag_int(&f, "seed", 0);
  int threads = (int)flag_int(&f, "threads", 8);
  dlk_glove_text_params txt = {model_kind, (int)flag_int(&f, "write-header", 0), 0, 0};

  /* Every input readable and every output folder writable before training starts. */
  if (need_readable("-input-file", input) || need_readable("-vocab-file", vocab_file) ||
      (load_init_param && need_readable("-init-param-file", init_param)) ||
      (load_init_gradsq && need_readable("-init-gradsq-file", init_gradsq)) ||
      need_writable_prefix("-save-file", save_file) ||
      (save_gradsq && need_writable_prefix("-gradsq-file", gradsq_file)))
    return 1;
  struct stat ist;
  if (stat(input, &ist) == 0 && S_ISREG(ist.st_mode) && ist.st_size == 0) {
    msg("-input-file %s holds no records: nothing to train on", input);
    return 1;
  }

  dlk_context *ctx = make_context(&f, threads);
  if (!ctx) return 1;
  dlk_glove_vocab *v = NULL;
  dlk_glove_records *r = NULL;
  dlk_glove_model m;
  bool have_model = false;
  dlk_glove_train_params tp;
  if ((rc = train_params(ctx, &f, &tp)) != 0) goto out;
  tp.threads = threads;
  signal(SIGINT, on_sigint);

  TRY(dlk_glove_vocab_load(ctx, vocab_file, &v), "reading the vocabulary");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  fprintf(stderr, "TRAINING MODEL\n");
  dlk_glove_records_params rp = {V, 0, 0};
  TRY(dlk_glove_records_open(ctx, &rp, input, &r), "reading the co-occurrence records");
  int64_t n;
  int resident;
  dlk_glove_records_info(ctx, r, &n, &resident);
  fprintf(stderr, "Read %lld lines.\n", (long long)n);
  if (n == 0) FAIL("-input-file %s holds no records: nothing to train on", input);
  if (verbose > 1) fprintf(stderr, "Initializing parameters...");
  if (seed == 0) seed = (long long)time(NULL);
  fprintf(stderr, "Using random seed %d\n", (int)seed);
  TRY(dlk_glove_model_create(ctx, V, d, DLK_F64, (uint32_t)seed, &m), "creating the model");
  have_model = true;
  if (load_init_param) {
    fprintf(stderr, "\nLoading initial parameters from %s \n", init_param);
    TRY(dlk_glove_model_load_params(ctx, &m, init_param), "loading initial parameters");
  }
  if (load_init_gradsq) {
    fprintf(stderr, "\nLoading initial squared gradients from %s \n", init_gradsq);
    TRY(dlk_glove_model_load_gradsq(ctx, &m, init_gradsq), "loading initial squared gradients");
  }
  if (verbose > 1) fprintf(stderr, "done.\n");
  if (save_init_param) {
    if (verbose > 1) fprintf(stderr, "Saving initial parameters... ");
    if ((rc = save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt, 0)) != 0)
      goto out;
    if (verbose > 1) fprintf(stderr, "done.\n");
  }
  if (verbose > 0) {
    fprintf(stderr, "vector size: %d\n", d);
    fprintf(stderr, "vocab size: %lld\n", (long long)V);
    fprintf(stderr, "x_max: %lf\n", tp.x_max);
    fprintf(stderr, "alpha: %lf\n", tp.alpha);
  }
  for (int b = 0; b < iters; b++) {
    dlk_glove_epoch_result res;
    TRY(dlk_glove_train_epoch(ctx, &tp, &m, r, &res), "training");
    char tb[80];
    timestamp(tb, sizeof tb);
    fprintf(stderr, "%s, iter: %03d, cost: %lf\n", tb, b + 1, res.cost);
    if (ckpt_every > 0 && (b + 1) % ckpt_every == 0) {
      fprintf(stderr, "    saving intermediate parameters for iter %03d...", b + 1);
      if ((rc = save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt,
                            b + 1)) != 0)
        goto out;
      fprintf(stderr, "done.\n");
    }
  }
  rc = save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt, -1);
out:
  if (have_model) dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, r);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- eval / neighbours ------------------------------------------------------------------------
 */

static const char *default_questions(void) {
  const char *e = getenv("DLK_GLOVE_EVAL_DIR");
  return e && *e ? e : "/work/shared/data/glove-eval";
}

/* "12.34% (5/40)", or "- (0/0)" when no question of the group was seen. */
static void print_acc(const char *label, int64_t correct, int64_t seen, const char *sep) {
  if (seen > 0)
    printf("%s %.2f%%%s(%lld/%lld)\n", label, 100.0 * (double)correct / (double)seen, sep,
           (long long)correct, (long long)seen);
  else
    printf("%s -%s(0/0: no question with every word in the vocabulary)\n", label, sep);
}

static void print_eval(const dlk_glove_analogy_result *r) {
  for (int i = 0; i < DLK_GLOVE_ANALOGY_FILES; i++) {
    printf("%s:\n", r->file[i]);
    print_acc("ACCURACY TOP1:", r->correct[i], r->seen[i], " ");
  }
  if (r->all_total > 0)
    printf("Questions seen/total: %.2f%% (%lld/%lld)\n", 100.0 * r->all_seen / r->all_total,
           (long long)r->all_seen, (long long)r->all_total);
  else
    printf("Questions seen/total: - (0/0)\n");
  print_acc("Semantic accuracy:", r->sem_correct, r->sem_seen, "  ");
  print_acc("Syntactic accuracy:", r->syn_correct, r->syn_seen, "  ");
  print_acc("Total accuracy:", r->all_correct, r->all_seen, "  ");
}

static const flag_spec eval_flags[] = {
    F_STR("vocab-file"),   F_ALIAS("vocab_file", "vocab-file"),
    F_STR("vectors-file"), F_ALIAS("vectors_file", "vectors-file"),
    F_STR("questions"),    F_INT("batch", 1, 100000),
    F_STR("device"),
};

static int load_vectors_checked(const flags *f, const char **vocab_file, const char **vec_file) {
  *vocab_file = flag_str(f, "vocab-file", "vocab.txt");
  *vec_file = flag_str(f, "vectors-file", "vectors.txt");
  return need_readable("--vocab-file", *vocab_file) || need_readable("--vectors-file", *vec_file);
}

static int cmd_eval(int argc, char **argv) {
  if (wants_help(argc, argv)) {
    printf(
        "usage: dlk-glove eval --vocab-file vocab.txt --vectors-file vectors.txt [--questions "
        "DIR]\n"
        "       [--batch 100] [--device cuda|cpu]\n");
    return 0;
  }
  flags f = {"eval", "--", eval_flags, (int)(sizeof eval_flags / sizeof *eval_flags), {0}, {0}, 0};
  int rc = parse_flags(&f, argc, argv, 0);
  if (rc || (rc = check_device(&f))) return rc;
  const char *vocab_file, *vec_file, *qdir = flag_str(&f, "questions", default_questions());
  struct stat st;
  if (load_vectors_checked(&f, &vocab_file, &vec_file)) return 1;
  errno = 0;
  if (stat(qdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    msg("--questions %s: %s", qdir, errno ? strerror(errno) : "not a folder");
    return 1;
  }
  dlk_context *ctx = make_context(&f, 0);
  if (!ctx) return 1;
  dlk_glove_vocab *v = NULL;
  dlk_tensor E = {0};
  TRY(dlk_glove_vocab_load(ctx, vocab_file, &v), "reading the vocabulary");
  TRY(dlk_glove_vectors_load_text(ctx, vec_file, v, &E), "reading the vectors");
  dlk_glove_analogy_params ap = {(int)flag_int(&f, "batch", 100), 0};
  dlk_glove_analogy_result res;
  TRY(dlk_glove_analogy_eval(ctx, &ap, &E, v, qdir, &res), "evaluating");
  print_eval(&res);
out:
  if (E.data) dlk_tensor_free(ctx, &E);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return rc;
}

static const flag_spec neighbours_flags[] = {
    F_STR("vocab-file"),   F_ALIAS("vocab_file", "vocab-file"),
    F_STR("vectors-file"), F_ALIAS("vectors_file", "vectors-file"),
    F_INT("k", 1, 100000), F_STR("device"),
};

static int cmd_neighbours(int argc, char **argv) {
  const char *use =
      "usage: dlk-glove neighbours WORD... --vocab-file F --vectors-file F [-k 10] [--device "
      "cuda|cpu]";
  if (wants_help(argc, argv)) {
    printf("%s\n", use);
    return 0;
  }
  flags f = {"neighbours",
             "--",
             neighbours_flags,
             (int)(sizeof neighbours_flags / sizeof *neighbours_flags),
             {0},
             {0},
             0};
  int rc = parse_flags(&f, argc, argv, MAX_POS);
  if (rc || (rc = check_device(&f))) return rc;
  if (f.npos == 0) {
    fprintf(stderr, "%s\n", use);
    return 2;
  }
  const char *vocab_file, *vec_file;
  if (load_vectors_checked(&f, &vocab_file, &vec_file)) return 1;
  int k = (int)flag_int(&f, "k", 10);
  dlk_context *ctx = make_context(&f, 0);
  if (!ctx) return 1;
  dlk_glove_vocab *v = NULL;
  dlk_tensor E = {0};
  int32_t *ids = NULL;
  double *sims = NULL;
  int64_t wid[MAX_POS];
  TRY(dlk_glove_vocab_load(ctx, vocab_file, &v), "reading the vocabulary");
  /* Every word looked up before any is answered: an unknown word is an error. */
  int missing = 0;
  for (int a = 0; a < f.npos; a++) {
    TRY(dlk_glove_vocab_find(ctx, v, f.pos[a], &wid[a]), "neighbours");
    if (!wid[a]) {
      msg("neighbours: \"%s\" is not in the vocabulary (%s)", f.pos[a], vocab_file);
      missing++;
    }
  }
  if (missing) {
    rc = 1;
    goto out;
  }
  TRY(dlk_glove_vectors_load_text(ctx, vec_file, v, &E), "reading the vectors");
  ids = malloc(sizeof *ids * (size_t)k);
  sims = malloc(sizeof *sims * (size_t)k);
  if (!ids || !sims) FAIL("out of memory");
  for (int a = 0; a < f.npos; a++) {
    TRY(dlk_glove_neighbours(ctx, &E, wid[a] - 1, k, ids, sims), "neighbours");
    printf("%s:\n", f.pos[a]);
    for (int i = 0; i < k && ids[i] >= 0; i++) {
      const char *w;
      dlk_glove_vocab_word(ctx, v, ids[i] + 1, &w, NULL);
      printf("  %-20s %.4f\n", w, sims[i]);
    }
  }
out:
  free(ids);
  free(sims);
  if (E.data) dlk_tensor_free(ctx, &E);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- train: the whole pipeline -------------------------------------------------------------- */

static const flag_spec train_flags[] = {
    F_STR("out"),
    F_INT("vector-size", 1, 1 << 20),
    F_INT("iter", 1, 100000),
    F_INT("window", 1, 100000),
    F_ALIAS("window-size", "window"),
    F_INT("min-count", 0, I64MAX),
    F_INT("max-vocab", 0, I64MAX),
    F_POS("x-max", 1e300),
    F_NUM("alpha", 0, 100),
    F_POS("eta", 1e6),
    F_POS("grad-clip", 1e300),
    F_INT("keras", 0, 1),
    F_INT("seed", 0, U32MAX),
    F_STR("device"),
    F_INT("threads", 0, 4096),
    F_POS("memory", 1e6),
    F_STR("eval"),
    F_BOOL("resume"),
    F_BOOL("force"),
    F_BOOL("quiet"),
};

static void train_usage(FILE *to) {
  fprintf(to,
          "usage: dlk-glove train CORPUS --out DIR [--vector-size 50 --iter 25 --window 15 "
          "--min-count 5\n"
          "        --max-vocab 0 --x-max 100 --alpha 0.75 --eta 0.05 --grad-clip 100 --keras 0 "
          "--seed S\n"
          "        --device cuda|cpu --threads N --memory GB --eval QDIR --quiet]\n"
          "        [--resume: continue DIR's run | --force: replace DIR's run]\n");
}

/* The files of a run folder (settings.txt first: it is what makes a folder a run). */
static const char *const run_files[] = {
    "settings.txt",   "vocab.txt",          "cooccurrence.bin", "cooccurrence.shuf.bin",
    "checkpoint.dlk", "checkpoint.dlk.tmp", "cost.log",         "vectors.txt",
    "vectors.bin"};
#define N_RUN_FILES ((int)(sizeof run_files / sizeof *run_files))

/* What a run was started with: settings.txt holds one "key value" line each, and
   --resume refuses a command line or corpus that disagrees. */
typedef struct run_settings {
  char corpus[4096];
  long long corpus_bytes;
  unsigned long long corpus_hash;
  long long vector_size, window, min_count, max_vocab, keras, seed;
  double x_max, alpha, eta, grad_clip;
} run_settings;

/* The shortest "%g" that reads back as the same double (0.05, not 0.050000000000000003). */
static const char *exact(char *buf, size_t n, double x) {
  for (int prec = 6; prec < 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) return buf;
  }
  snprintf(buf, n, "%.17g", x);
  return buf;
}

static int write_settings(const char *path, const run_settings *s) {
  FILE *f = fopen(path, "w");
  if (!f) {
    msg("cannot write %s: %s", path, strerror(errno));
    return 1;
  }
  fprintf(f, "# dlk-glove train: this run's settings; --resume refuses to continue with others\n");
  fprintf(f, "corpus %s\ncorpus-bytes %lld\ncorpus-fnv1a64 %016llx\n", s->corpus, s->corpus_bytes,
          s->corpus_hash);
  fprintf(f, "vector-size %lld\nwindow %lld\nmin-count %lld\nmax-vocab %lld\n", s->vector_size,
          s->window, s->min_count, s->max_vocab);
  char b[4][40];
  fprintf(f, "x-max %s\nalpha %s\neta %s\ngrad-clip %s\nkeras %lld\nseed %lld\n",
          exact(b[0], 40, s->x_max), exact(b[1], 40, s->alpha), exact(b[2], 40, s->eta),
          exact(b[3], 40, s->grad_clip), s->keras, s->seed);
  if (fclose(f) != 0) {
    msg("cannot write %s: %s", path, strerror(errno));
    return 1;
  }
  return 0;
}

static int read_settings(const char *path, run_settings *s) {
  FILE *f = fopen(path, "r");
  if (!f) {
    msg("--resume: %s: %s (a run of an older dlk-glove: --force starts it again)", path,
        strerror(errno));
    return 1;
  }
  memset(s, 0, sizeof *s);
  static const char *const keys[] = {
      "corpus", "corpus-bytes", "corpus-fnv1a64", "vector-size", "window", "min-count", "max-vocab",
      "keras",  "seed",         "x-max",          "alpha",       "eta",    "grad-clip"};
  enum { N_KEYS = sizeof keys / sizeof *keys };
  long long *ints[N_KEYS] = {NULL,       &s->corpus_bytes, NULL,          &s->vector_size,
                             &s->window, &s->min_count,    &s->max_vocab, &s->keras,
                             &s->seed};
  double *nums[N_KEYS] = {[9] = &s->x_max, [10] = &s->alpha, [11] = &s->eta, [12] = &s->grad_clip};
  unsigned seen = 0;
  char line[4200];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *sp = strchr(line, ' ');
    if (line[0] == '#' || !sp) continue;
    *sp = '\0';
    const char *v = sp + 1;
    for (int k = 0; k < N_KEYS; k++) {
      if (strcmp(line, keys[k]) != 0) continue;
      seen |= 1u << k;
      if (k == 0)
        snprintf(s->corpus, sizeof s->corpus, "%s", v);
      else if (k == 2)
        s->corpus_hash = strtoull(v, NULL, 16);
      else if (ints[k])
        *ints[k] = strtoll(v, NULL, 10);
      else
        *nums[k] = strtod(v, NULL);
    }
  }
  fclose(f);
  for (int k = 0; k < N_KEYS; k++)
    if (!(seen & (1u << k))) {
      msg("--resume: %s has no \"%s\" line: --force starts the run again", path, keys[k]);
      return 1;
    }
  return 0;
}

/* The corpus's size and hash: one read of the whole file. */
static int hash_file(const char *path, long long *bytes, unsigned long long *hash) {
  FILE *in = fopen(path, "rb");
  if (!in) {
    msg("cannot open %s: %s", path, strerror(errno));
    return 1;
  }
  uint64_t h = FNV_START;
  int64_t n = 0;
  int rc = feed_stream(NULL, in, path, NULL, NULL, &h, &n);
  fclose(in);
  *bytes = n;
  *hash = h;
  return rc;
}

/* --resume: the flags the user gave must agree with the run's settings (those not given
   take the run's values); the corpus must be the same bytes. 0, or 1 after naming every
   difference. */
static int compare_settings(const flags *f, const char *dir, const char *corpus, run_settings *s) {
  char diff[2048] = "";
  size_t used = 0;
#define DIFF(...)                                                             \
  do {                                                                        \
    if (used < sizeof diff)                                                   \
      used += (size_t)snprintf(diff + used, sizeof diff - used, __VA_ARGS__); \
  } while (0)
  static const char *const ints[] = {"vector-size", "window", "min-count",
                                     "max-vocab",   "keras",  "seed"};
  long long *ivals[] = {&s->vector_size, &s->window, &s->min_count,
                        &s->max_vocab,   &s->keras,  &s->seed};
  for (int i = 0; i < 6; i++)
    if (given(f, ints[i]) && flag_int(f, ints[i], 0) != *ivals[i])
      DIFF("\n  --%s %lld (the run's: %lld)", ints[i], flag_int(f, ints[i], 0), *ivals[i]);
  static const char *const nums[] = {"x-max", "alpha", "eta", "grad-clip"};
  double *nvals[] = {&s->x_max, &s->alpha, &s->eta, &s->grad_clip};
  for (int i = 0; i < 4; i++)
    if (given(f, nums[i]) && flag_num(f, nums[i], 0) != *nvals[i])
      DIFF("\n  --%s %g (the run's: %g)", nums[i], flag_num(f, nums[i], 0), *nvals[i]);
  long long bytes;
  unsigned long long hash;
  struct stat st;
  if (stat(corpus, &st) == 0 && (long long)st.st_size != s->corpus_bytes)
    DIFF("\n  corpus %.300s has %lld bytes (the run's, %.300s: %lld)", corpus,
         (long long)st.st_size, s->corpus, s->corpus_bytes);
  else if (hash_file(corpus, &bytes, &hash) != 0)
    return 1;
  else if (bytes != s->corpus_bytes || hash != s->corpus_hash)
    DIFF(
        "\n  corpus %.300s is not the text the run was started with (%.300s: same size, other "
        "bytes)",
        corpus, s->corpus);
#undef DIFF
  if (!diff[0]) return 0;
  msg("--resume: %s was started with other settings or input:%s\n"
      "drop the flags to continue it, or --force to start it again",
      dir, diff);
  return 1;
}

/* A fresh run undoes itself until its first checkpoint: on failure or Ctrl-C before then
   the files it wrote go, and so does the folder when it made it. */
typedef struct run_undo {
  bool armed;
  bool made_dir;
  const char *dir;
} run_undo;

static void undo_run(run_undo *u) {
  if (!u->armed) return;
  char p[4200];
  for (int i = 0; i < N_RUN_FILES; i++) {
    snprintf(p, sizeof p, "%s/%s", u->dir, run_files[i]);
    unlink(p);
  }
  if (u->made_dir) rmdir(u->dir);
  msg("nothing kept: %s %s", u->dir, u->made_dir ? "removed" : "left as it was");
  u->armed = false;
}

static int cmd_train(int argc, char **argv) {
  if (wants_help(argc, argv)) {
    train_usage(stdout);
    return 0;
  }
  flags f = {"train", "--", train_flags, (int)(sizeof train_flags / sizeof *train_flags), {0},
             {0},     0};
  int rc = parse_flags(&f, argc, argv, 1);
  if (rc || (rc = check_device(&f))) return rc;
  if (f.npos != 1 || !given(&f, "out")) {
    train_usage(stderr);
    return 2;
  }
  const char *corpus = f.pos[0];
  const char *dir = flag_str(&f, "out", NULL);
  int iters = (int)flag_int(&f, "iter", 25);
  double memory = flag_num(&f, "memory", 3.0);
  int resume = given(&f, "resume"), force = given(&f, "force"), quiet = given(&f, "quiet");
  int threads = (int)flag_int(&f, "threads", 0);
  const char *qdir = flag_str(&f, "eval", NULL);
  if (resume && force)
    return flag_error(&f, "--resume continues a run, --force replaces it: one or the other");
  run_settings set;
  memset(&set, 0, sizeof set);
  set.vector_size = flag_int(&f, "vector-size", 50);
  set.window = flag_int(&f, "window", 15);
  set.min_count = flag_int(&f, "min-count", 5);
  set.max_vocab = flag_int(&f, "max-vocab", 0);
  set.x_max = flag_num(&f, "x-max", 100.0);
  set.alpha = flag_num(&f, "alpha", 0.75);
  set.eta = flag_num(&f, "eta", 0.05);
  set.grad_clip = flag_num(&f, "grad-clip", 100.0);
  set.keras = flag_int(&f, "keras", 0);
  set.seed = flag_int(&f, "seed", 0);

  char vocab_p[4200], cooc_p[4200], shuf_p[4200], ckpt_p[4200], log_p[4200], vec_p[4200],
      tmp_p[4200], set_p[4200];
  snprintf(vocab_p, sizeof vocab_p, "%s/vocab.txt", dir);
  snprintf(cooc_p, sizeof cooc_p, "%s/cooccurrence.bin", dir);
  snprintf(shuf_p, sizeof shuf_p, "%s/cooccurrence.shuf.bin", dir);
  snprintf(ckpt_p, sizeof ckpt_p, "%s/checkpoint.dlk", dir);
  snprintf(log_p, sizeof log_p, "%s/cost.log", dir);
  snprintf(vec_p, sizeof vec_p, "%s/vectors", dir);
  snprintf(set_p, sizeof set_p, "%s/settings.txt", dir);

  /* ---- every check before any work ---- */
  if (need_readable("corpus", corpus)) return 1;
  if (qdir) {
    struct stat qs;
    errno = 0;
    if (stat(qdir, &qs) != 0 || !S_ISDIR(qs.st_mode)) {
      msg("--eval %s: %s", qdir, errno ? strerror(errno) : "not a folder");
      return 1;
    }
  }
  struct stat ds;
  bool dir_exists = stat(dir, &ds) == 0;
  if (dir_exists && !S_ISDIR(ds.st_mode)) {
    msg("--out %s exists and is not a folder", dir);
    return 1;
  }
  char found[512] = "";
  for (int i = 0; dir_exists && i < N_RUN_FILES; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, run_files[i]);
    if (exists(p) && strlen(found) + strlen(run_files[i]) + 3 < sizeof found)
      snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", found[0] ? ", " : "",
               run_files[i]);
  }
  if (resume) {
    if (!dir_exists || !exists(ckpt_p)) {
      msg("--resume: %s holds no checkpoint to continue from%s; leave out --resume to start a "
          "run%s",
          dir, dir_exists ? "" : " (no such folder)",
          found[0] ? " (with --force, since it holds some files)" : "");
      return 1;
    }
    run_settings saved;
    if (read_settings(set_p, &saved) || compare_settings(&f, dir, corpus, &saved)) return 1;
    set = saved;
  } else if (found[0] && !force) {
    msg("--out %s holds a run (%s): --resume continues it, --force replaces it", dir, found);
    return 1;
  }
  /* The folder, or where it will be made, takes files. */
  if (dir_exists)
    snprintf(tmp_p, sizeof tmp_p, "%s", dir);
  else
    folder_of(dir, tmp_p, sizeof tmp_p);
  if (need_writable_dir("--out", tmp_p)) return 1;

  /* ---- the run ---- */
  run_undo undo = {false, false, dir};
  if (!resume) {
    if (force && found[0]) {
      fprintf(stderr, "dlk-glove: --force: replacing the run in %s (%s)\n", dir, found);
      for (int i = 0; i < N_RUN_FILES; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, run_files[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
          msg("--force: cannot remove %s: %s", p, strerror(errno));
          return 1;
        }
      }
    }
    if (!dir_exists && mkdir(dir, 0777) != 0) {
      msg("cannot create %s: %s", dir, strerror(errno));
      return 1;
    }
    undo = (run_undo){true, !dir_exists, dir};
  }
  dlk_context *ctx = make_context(&f, threads);
  if (!ctx) {
    undo_run(&undo);
    return 1;
  }
  dlk_glove_vocab *v = NULL;
  dlk_glove_records *r = NULL;
  dlk_glove_model m;
  bool have_model = false;
  dlk_glove_train_params tp;
  progress pg = {0};
  FILE *in = NULL;
  if ((rc = train_params(ctx, &f, &tp)) != 0) goto out;
  tp.threads = threads;
  signal(SIGINT, on_sigint);
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  fprintf(stderr, "dlk-glove train on the %s\n", dev.type == DLK_CUDA ? "GPU" : "CPU");
  double t0 = now();
  if (!(resume && exists(vocab_p))) {
    if (!(in = fopen(corpus, "rb"))) FAIL("cannot open %s: %s", corpus, strerror(errno));
    uint64_t h = FNV_START;
    int64_t bytes = 0;
    if ((rc = do_vocab(ctx, in, corpus, vocab_p, set.min_count, set.max_vocab, 1, &h, &bytes)) != 0)
      goto out;
    fclose(in);
    in = NULL;
    if (!resume) {
      char *abs = realpath(corpus, NULL);
      snprintf(set.corpus, sizeof set.corpus, "%s", abs ? abs : corpus);
      free(abs);
      set.corpus_bytes = bytes;
      set.corpus_hash = h;
    }
  }
  if (!resume) {
    if (set.seed == 0) set.seed = (long long)(uint32_t)time(NULL);
    if ((rc = write_settings(set_p, &set)) != 0) goto out;
  }
  if (!(resume && exists(cooc_p))) {
    if (!(in = fopen(corpus, "rb"))) FAIL("cannot open %s: %s", corpus, strerror(errno));
    dlk_glove_cooccur_params cp;
    TRY(dlk_glove_cooccur_defaults(ctx, &cp), "cooccur");
    cp.window = (int)set.window;
    cp.memory_gb = memory;
    snprintf(tmp_p, sizeof tmp_p, "%s/overflow", dir);
    cp.temp_prefix = tmp_p;
    double t = now();
    if ((rc = do_cooccur(ctx, in, corpus, vocab_p, cooc_p, &cp, 1)) != 0) goto out;
    fprintf(stderr, "co-occurrence: %.2f s\n", now() - t);
    fclose(in);
    in = NULL;
  }
  if (!(resume && exists(shuf_p))) {
    dlk_glove_shuffle_params sp;
    TRY(dlk_glove_shuffle_defaults(ctx, &sp), "shuffle");
    sp.seed = (uint32_t)set.seed;
    sp.memory_gb = memory;
    snprintf(tmp_p, sizeof tmp_p, "%s/temp_shuffle", dir);
    sp.temp_prefix = tmp_p;
    double t = now();
    uint32_t used;
    TRY(dlk_glove_shuffle_file(ctx, &sp, cooc_p, shuf_p, &used, NULL), "shuffle");
    fprintf(stderr, "shuffle (seed %u): %.2f s\n", used, now() - t);
  }
  if (g_cancel) {
    rc = report(ctx, DLK_ERR_INTERRUPTED, "before training");
    goto out;
  }
  TRY(dlk_glove_vocab_load(ctx, vocab_p, &v), "reading the vocabulary");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  dlk_glove_records_params rp = {V, 0, 0};
  TRY(dlk_glove_records_open(ctx, &rp, shuf_p, &r), "reading the records");
  int64_t n;
  dlk_glove_records_info(ctx, r, &n, NULL);
  if (n == 0)
    FAIL("%s holds no co-occurrence records (every line of %s has one word?): nothing to train on",
         cooc_p, corpus);
  dlk_glove_checkpoint_info info;
  memset(&info, 0, sizeof info);
  if (resume) {
    TRY(dlk_glove_checkpoint_load(ctx, ckpt_p, &m, &info), "loading the checkpoint");
    have_model = true;
    if (m.vocab_size != V)
      FAIL("%s has V = %lld, %s has %lld words", ckpt_p, (long long)m.vocab_size, vocab_p,
           (long long)V);
    if (m.dim != set.vector_size)
      FAIL("%s has vector size %d, %s says %lld", ckpt_p, m.dim, set_p, set.vector_size);
    fprintf(stderr, "resuming after epoch %lld of %d from %s\n", (long long)m.epoch, iters, ckpt_p);
  } else {
    TRY(dlk_glove_model_create(ctx, V, (int)set.vector_size, DLK_F64, (uint32_t)set.seed, &m),
        "creating the model");
    have_model = true;
    FILE *lg = fopen(log_p, "w");
    if (!lg) FAIL("cannot write %s: %s", log_p, strerror(errno));
    fclose(lg);
  }
  tp.eta = set.eta, tp.alpha = set.alpha, tp.x_max = set.x_max, tp.grad_clip = set.grad_clip;
  tp.keras = (int)set.keras;
  info.eta = tp.eta, info.alpha = tp.alpha, info.x_max = tp.x_max, info.grad_clip = tp.grad_clip;
  info.keras = tp.keras;
  info.seed = (uint32_t)set.seed;
  info.total_epochs = iters;
  snprintf(info.note, sizeof info.note, "%s", corpus);
  fprintf(stderr, "training: V = %lld, d = %d, %lld records, %d epochs, x_max %g\n", (long long)V,
          m.dim, (long long)n, iters, tp.x_max);
  pg = (progress){now(), 0, iters, !quiet && isatty(2), terminal_width(), 0, 0};
  tp.progress = on_progress;
  tp.progress_user = &pg;
  double train_t0 = now();
  int64_t start_epoch = m.epoch;
  while (m.epoch < iters) {
    pg.epoch = (int)m.epoch + 1;
    pg.t0 = now();
    double te = now();
    dlk_glove_epoch_result res;
    dlk_status s = dlk_glove_train_epoch(ctx, &tp, &m, r, &res);
    progress_clear(&pg);
    if (s == DLK_ERR_INTERRUPTED) {
      fprintf(stderr, "interrupted in epoch %lld: %s keeps epoch %lld; run again with --resume\n",
              (long long)m.epoch + 1, exists(ckpt_p) ? ckpt_p : "(no checkpoint yet)",
              (long long)m.epoch);
      rc = 130;
      goto out;
    }
    TRY(s, "training");
    double secs = now() - te;
    fprintf(stderr, "epoch %03lld cost %.6f  %.2f s  %.3fM records/s  (variant %d)\n",
            (long long)m.epoch, res.cost, secs, n / secs / 1e6, res.variant);
    FILE *lg = fopen(log_p, "a");
    if (lg) {
      fprintf(lg, "iter: %03lld, cost: %lf, seconds: %.3f\n", (long long)m.epoch, res.cost, secs);
      fclose(lg);
    }
    TRY(dlk_glove_checkpoint_save(ctx, &m, &info, ckpt_p), "saving the checkpoint");
    undo.armed = false; /* a checkpoint exists: from here on the run is kept for --resume */
    if (g_cancel) {
      fprintf(stderr, "interrupted: %s holds epoch %lld; run again with --resume\n", ckpt_p,
              (long long)m.epoch);
      rc = 130;
      goto out;
    }
  }
  double train_s = now() - train_t0;
  dlk_glove_text_params txt = {2, 0, 0, 0};
  if ((rc = save_params(ctx, &m, v, vec_p, "gradsq", 0, 2, &txt, -1)) != 0) goto out;
  fprintf(stderr,
          "wrote %s.txt and %s.bin; training %.2f s (%lld epochs, %.3fM records/s), total %.2f s\n",
          vec_p, vec_p, train_s, (long long)(m.epoch - start_epoch),
          train_s > 0 ? (double)n * (double)(m.epoch - start_epoch) / train_s / 1e6 : 0.0,
          now() - t0);
  if (qdir) {
    dlk_tensor E;
    TRY(dlk_glove_embeddings(ctx, &m, 2, &E), "embeddings");
    dlk_glove_analogy_result res;
    dlk_status s = dlk_glove_analogy_eval(ctx, NULL, &E, v, qdir, &res);
    dlk_tensor_free(ctx, &E);
    TRY(s, "evaluating");
    print_eval(&res);
  }
out:
  progress_clear(&pg);
  if (in) fclose(in);
  if (have_model) dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, r);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  if (rc) undo_run(&undo);
  return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *to) {
  fprintf(
      to,
      "usage: dlk-glove COMMAND ...   (dlk-glove COMMAND --help for its flags)\n"
      "  train CORPUS --out DIR [--vector-size 50 --iter 25 --window 15 --min-count 5 --x-max 100\n"
      "        --seed S --device cuda|cpu --threads N --memory GB --eval QDIR --resume | --force]\n"
      "  vocab | cooccur | shuffle | fit   drop-in for vocab_count, cooccur, shuffle, glove\n"
      "  eval --vocab-file F --vectors-file F [--questions DIR]\n"
      "  neighbours WORD... --vocab-file F --vectors-file F [-k 10]\n");
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } cmds[] = {
      {"train", cmd_train},         {"vocab", cmd_vocab},     {"vocab_count", cmd_vocab},
      {"cooccur", cmd_cooccur},     {"shuffle", cmd_shuffle}, {"fit", cmd_fit},
      {"glove", cmd_fit},           {"eval", cmd_eval},       {"neighbours", cmd_neighbours},
      {"neighbors", cmd_neighbours}};
  enum { N = sizeof cmds / sizeof *cmds };
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (int i = 0; i < N; i++)
    if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].run(argc - 1, argv + 1);
  const char *names[N];
  for (int i = 0; i < N; i++) names[i] = cmds[i].name;
  fprintf(stderr, "dlk-glove: unknown command \"%s\" (did you mean %s?)\n", argv[1],
          closest(argv[1], names, N));
  usage(stderr);
  return 2;
}
