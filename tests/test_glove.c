/* GloVe family tests: the tool's own outputs (tests/golden/glove) reproduced from its
   corpus, hand-checkable co-occurrence corpora, single-record updates against the
   formulas, round trips of every file format, checkpoint resume, a synthetic corpus with
   planted analogies, bad input, and (with --gpu) every GPU variant against the CPU
   reference. The analogy question set is read from DLK_GLOVE_EVAL_DIR (default
   /work/shared/data/glove-eval) and its cases skip with a message when it is absent. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sweep.h"
#include "glove/glove.h"
#include "glove/io.h"
#include "glove/vocab.h"

/* ---- small utilities ---- */

static char tmpdir[512];

static const char *tmp_path(const char *name) {
  static char buf[8][1024];
  static int k = 0;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

/* Removes the run's directory (registered with atexit, so every exit path cleans up;
   safe to call twice). */
static void remove_tmpdir(void) {
  if (!tmpdir[0]) return;
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (chdir("/") != 0 || system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  tmpdir[0] = '\0';
}

/* Each run works in a directory of its own (mkdtemp: unique even when ctest -j runs this
   program next to itself, another build's copy or glove_tool), and makes it the working
   directory, so that no file, not even one the library names relative to the current
   directory (default temporary prefixes), lands in a place another test shares. The
   source tree is then found through an absolute DLK_SOURCE_DIR. */
static void make_tmpdir(void) {
  const char *root = getenv("DLK_SOURCE_DIR");
  char abs_root[4096];
  if (!realpath(root && *root ? root : "..", abs_root)) {
    fprintf(stderr, "cannot resolve the source directory %s: %s\n", root && *root ? root : "..", strerror(errno));
    exit(1);
  }
  setenv("DLK_SOURCE_DIR", abs_root, 1);
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/dlk_glove_test_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
    exit(1);
  }
  atexit(remove_tmpdir);
  if (chdir(tmpdir) != 0) {
    fprintf(stderr, "cannot enter %s: %s\n", tmpdir, strerror(errno));
    exit(1);
  }
}

/* Whole file into memory (NULL when missing). */
static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) b[n] = '\0';
  if (len) *len = (size_t)n;
  return b;
}

static void __attribute__((unused)) write_all(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static bool files_equal(const char *a, const char *b, size_t *first_diff) {
  size_t na, nb;
  char *x = read_all(a, &na), *y = read_all(b, &nb);
  bool eq = x && y && na == nb && memcmp(x, y, na) == 0;
  if (first_diff) {
    *first_diff = 0;
    if (x && y)
      while (*first_diff < na && *first_diff < nb && x[*first_diff] == y[*first_diff]) (*first_diff)++;
  }
  free(x);
  free(y);
  return eq;
}

static const char *golden(const char *name) {
  static char buf[4][4200];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s", t_src_path("tests/golden/glove/"));
  strncat(buf[k], name, sizeof buf[k] - strlen(buf[k]) - 1);
  return buf[k];
}

/* Feed a whole text to a vocabulary or co-occurrence counter in pieces of `piece` bytes
   (0: all at once), so token and line boundaries fall inside pieces. */
static dlk_status vocab_from_text(dlk_context *ctx, const char *text, size_t n, size_t piece,
                                  const dlk_glove_vocab_params *p, dlk_glove_vocab **out) {
  dlk_glove_vocab *v;
  DLK_TRY(dlk_glove_vocab_create(ctx, &v));
  dlk_status s = DLK_OK;
  for (size_t o = 0; s == DLK_OK && o < n; o += piece ? piece : n)
    s = dlk_glove_vocab_add_text(ctx, v, text + o, piece && n - o > piece ? piece : n - o);
  if (s == DLK_OK) s = dlk_glove_vocab_finish(ctx, v, p);
  if (s != DLK_OK) {
    dlk_glove_vocab_free(ctx, v);
    return s;
  }
  *out = v;
  return DLK_OK;
}

static dlk_status cooccur_text(dlk_context *ctx, const dlk_glove_cooccur_params *p,
                               const dlk_glove_vocab *v, const char *text, size_t n, size_t piece,
                               const char *out_path, dlk_glove_cooccur_stats *st) {
  dlk_glove_cooccur *c;
  DLK_TRY(dlk_glove_cooccur_create(ctx, p, v, &c));
  dlk_status s = DLK_OK;
  for (size_t o = 0; s == DLK_OK && o < n; o += piece ? piece : n)
    s = dlk_glove_cooccur_add_text(ctx, c, text + o, piece && n - o > piece ? piece : n - o);
  if (s == DLK_OK) s = dlk_glove_cooccur_finish(ctx, c, out_path);
  if (s == DLK_OK && st) dlk_glove_cooccur_get_stats(ctx, c, st);
  dlk_glove_cooccur_free(ctx, c);
  return s;
}

static double *read_doubles(const char *path, int64_t *n) {
  size_t len;
  char *b = read_all(path, &len);
  if (n) *n = b ? (int64_t)(len / 8) : 0;
  return (double *)b;
}

static double max_abs_diff(const double *a, const double *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

/* The API's defaults (the context is only where a failure would be reported). */
static dlk_glove_train_params train_defaults(dlk_context *ctx, int threads) {
  dlk_glove_train_params p;
  memset(&p, 0, sizeof p);
  CHECK_OK(ctx, dlk_glove_train_defaults(ctx, &p));
  p.threads = threads;
  return p;
}

static dlk_glove_cooccur_params cooc_defaults(dlk_context *ctx) {
  dlk_glove_cooccur_params p;
  memset(&p, 0, sizeof p);
  CHECK_OK(ctx, dlk_glove_cooccur_defaults(ctx, &p));
  return p;
}

static dlk_glove_shuffle_params shuf_defaults(dlk_context *ctx) {
  dlk_glove_shuffle_params p;
  memset(&p, 0, sizeof p);
  CHECK_OK(ctx, dlk_glove_shuffle_defaults(ctx, &p));
  return p;
}

/* Host copy of a model array. */
static double *model_host(dlk_context *ctx, const dlk_tensor *t) {
  int64_t n = dlk_tensor_numel(t);
  double *h = malloc((size_t)n * sizeof *h);
  if (t->dtype == DLK_F64) {
    CHECK_OK(ctx, dlk_tensor_read(ctx, t, h, (size_t)n * sizeof *h));
  } else {
    float *f = malloc((size_t)n * sizeof *f);
    CHECK_OK(ctx, dlk_tensor_read(ctx, t, f, (size_t)n * sizeof *f));
    for (int64_t i = 0; i < n; i++) h[i] = f[i];
    free(f);
  }
  return h;
}

/* ---- glibc rand() replica ---- */
static void test_rand(void) {
  t_case = "glibc_rand";
  uint32_t seeds[] = {0, 1, 7, 12345, 2147483647u, 4000000000u};
  for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
    dlk_glibc_rand g;
    dlk_glibc_srand(&g, seeds[s]);
    srand(seeds[s]);
    int bad = 0;
    for (int i = 0; i < 100000; i++) bad += dlk_glibc_rand_next(&g) != rand();
    CHECK(bad == 0, "seed %u: %d of 100000 values differ from the C library's rand()", seeds[s], bad);
  }
}

/* ---- the tool's golden outputs ---- */

static dlk_glove_vocab *golden_vocab(dlk_context *ctx) {
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, dlk_glove_vocab_load(ctx, golden("vocab.txt"), &v));
  return v;
}

static void test_golden_vocab(dlk_context *ctx) {
  t_case = "golden/vocab";
  size_t n;
  char *text = read_all(golden("corpus.txt"), &n);
  CHECK(text != NULL, "golden corpus missing at %s", golden("corpus.txt"));
  if (!text) return;
  dlk_glove_vocab_params p = {3, 0};
  /* Whole, and in odd-sized pieces that cut tokens and lines. */
  size_t pieces[] = {0, 1, 7, 4093};
  for (size_t k = 0; k < sizeof pieces / sizeof *pieces; k++) {
    dlk_glove_vocab *v = NULL;
    CHECK_OK(ctx, vocab_from_text(ctx, text, n, pieces[k], &p, &v));
    if (!v) continue;
    int64_t V = 0, tokens = 0;
    dlk_glove_vocab_size(ctx, v, &V);
    dlk_glove_vocab_tokens(ctx, v, &tokens, NULL);
    CHECK(V == 1194, "V = %lld, the tool made 1194", (long long)V);
    CHECK(tokens == 43406, "tokens %lld, README says 43406", (long long)tokens);
    CHECK_OK(ctx, dlk_glove_vocab_save(ctx, v, tmp_path("vocab.txt")));
    size_t at;
    CHECK(files_equal(tmp_path("vocab.txt"), golden("vocab.txt"), &at),
          "vocab.txt differs from the tool's at byte %zu (piece %zu)", at, pieces[k]);
    dlk_glove_vocab_free(ctx, v);
  }
  free(text);
}

static void test_golden_cooccur(dlk_context *ctx) {
  t_case = "golden/cooccur";
  size_t n;
  char *text = read_all(golden("corpus.txt"), &n);
  dlk_glove_vocab *v = golden_vocab(ctx);
  if (!text || !v) return;
  dlk_glove_cooccur_params p = cooc_defaults(ctx);
  p.window = 5;
  p.method = 1;
  p.temp_prefix = tmp_path("overflow");
  dlk_glove_cooccur_stats st;
  CHECK_OK(ctx, cooccur_text(ctx, &p, v, text, n, 0, tmp_path("cooc.bin"), &st));
  size_t at;
  CHECK(files_equal(tmp_path("cooc.bin"), golden("cooccurrence.bin"), &at),
        "cooccurrence.bin differs from the tool's at byte %zu (record %zu)", at, at / 16);
  CHECK(st.records == 97755, "records %lld, the tool wrote 97755", (long long)st.records);
  CHECK(st.temp_files == 0, "no spill expected, %d temp files", st.temp_files);
  /* Pieces of 3 bytes: the same bytes. */
  CHECK_OK(ctx, cooccur_text(ctx, &p, v, text, n, 3, tmp_path("cooc3.bin"), NULL));
  CHECK(files_equal(tmp_path("cooc3.bin"), golden("cooccurrence.bin"), &at), "piecewise feed differs at %zu", at);
  free(text);
  dlk_glove_vocab_free(ctx, v);
}

static void test_golden_shuffle(dlk_context *ctx) {
  t_case = "golden/shuffle";
  dlk_glove_shuffle_params p = shuf_defaults(ctx);
  p.seed = 7;
  p.temp_prefix = tmp_path("temp_shuffle");
  uint32_t used = 0;
  int64_t recs = 0;
  CHECK_OK(ctx, dlk_glove_shuffle_file(ctx, &p, golden("cooccurrence.bin"), tmp_path("shuf.bin"), &used, &recs));
  CHECK(used == 7 && recs == 97755, "seed %u records %lld", used, (long long)recs);
  size_t at;
  CHECK(files_equal(tmp_path("shuf.bin"), golden("cooccurrence.shuf.bin"), &at),
        "shuffle -seed 7 differs from the tool's at byte %zu (record %zu)", at, at / 16);
}

/* vectors.000.bin: -seed 7 initialisation through the rand() replica. */
static void test_golden_init(dlk_context *ctx) {
  t_case = "golden/init";
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 7, &m));
  CHECK_OK(ctx, dlk_glove_model_save_params(ctx, &m, tmp_path("v000.bin")));
  size_t at;
  CHECK(files_equal(tmp_path("v000.bin"), golden("vectors.000.bin"), &at),
        "initial parameters differ from the tool's vectors.000.bin at byte %zu", at);
  double *g = model_host(ctx, &m.gradsq);
  int ones = 0;
  for (int64_t i = 0; i < 2 * 1194 * 11; i++) ones += g[i] == 1.0;
  CHECK(ones == 2 * 1194 * 11, "gradsq starts at 1");
  free(g);
  dlk_glove_model_free(ctx, &m);
}

/* Epoch 1 from vectors.000.bin with the single-threaded reference reproduces the tool's
   vectors.001.bin and gradsq.001.bin; epochs 1..3 print its costs; vectors.003.txt. */
static void test_golden_train(dlk_context *ctx) {
  t_case = "golden/train";
  dlk_glove_vocab *v = golden_vocab(ctx);
  if (!v) return;
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 1, &m));
  CHECK_OK(ctx, dlk_glove_model_load_params(ctx, &m, golden("vectors.000.bin")));
  dlk_glove_records_params rp = {1194, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &rp, golden("cooccurrence.shuf.bin"), &r));
  if (!r) return;
  CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", 0));
  dlk_glove_train_params tp = train_defaults(ctx, 1);
  const char *want_cost[3] = {"0.023937", "0.019329", "0.018418"};
  char *cost_txt = read_all(golden("cost.txt"), NULL);
  for (int e = 1; e <= 3; e++) {
    dlk_glove_epoch_result res;
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &tp, &m, r, &res));
    char line[64];
    snprintf(line, sizeof line, "iter: %03d, cost: %lf", e, res.cost);
    CHECK(cost_txt && strstr(cost_txt, line), "epoch %d printed \"%s\"; the tool printed %s", e, line,
          want_cost[e - 1]);
    CHECK(res.variant == 0 && res.records == 97755 && res.skipped == 0, "variant %d records %lld skipped %lld",
          res.variant, (long long)res.records, (long long)res.skipped);
    if (e == 1 || e == 3) {
      int64_t nw, ng;
      double *w = read_doubles(golden(e == 1 ? "vectors.001.bin" : "vectors.003.bin"), &nw);
      double *g = read_doubles(golden(e == 1 ? "gradsq.001.bin" : "gradsq.003.bin"), &ng);
      double *mw = model_host(ctx, &m.params), *mg = model_host(ctx, &m.gradsq);
      CHECK(nw == 2 * 1194 * 11 && ng == nw, "golden sizes");
      double dw = max_abs_diff(mw, w, nw), dg = 0;
      for (int64_t i = 0; i < ng; i++) {
        double rel = fabs(mg[i] - g[i]) / fmax(1.0, fabs(g[i]));
        if (rel > dg) dg = rel;
      }
      CHECK(dw <= 1e-12, "epoch %d: parameters differ from the tool's by %.3g (> 1e-12)", e, dw);
      CHECK(dg <= 1e-12, "epoch %d: AdaGrad state differs from the tool's by %.3g relative", e, dg);
      free(w), free(g), free(mw), free(mg);
    }
  }
  free(cost_txt);
  /* vectors.003.txt in the tool's text format (-model 2, <unk> row). */
  dlk_glove_text_params txt = {2, 0, 0, 0};
  CHECK_OK(ctx, dlk_glove_save_text(ctx, &txt, &m, v, tmp_path("vectors.003.txt")));
  size_t at;
  CHECK(files_equal(tmp_path("vectors.003.txt"), golden("vectors.003.txt"), &at),
        "vectors.003.txt differs from the tool's at byte %zu", at);
  dlk_force_variant(ctx, "glove_epoch", -1);
  dlk_glove_records_free(ctx, r);
  dlk_glove_model_free(ctx, &m);
  dlk_glove_vocab_free(ctx, v);
}

/* ---- tokenizer and vocabulary, by hand ---- */

static const char *vword(dlk_context *ctx, const dlk_glove_vocab *v, int64_t id, int64_t *count) {
  const char *w = NULL;
  CHECK_OK(ctx, dlk_glove_vocab_word(ctx, v, id, &w, count));
  return w ? w : "";
}

static void test_vocab_hand(dlk_context *ctx) {
  t_case = "vocab/hand";
  const char *text = "b a c a b a\n\nc  d\t\te\r\n";
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, vocab_from_text(ctx, text, strlen(text), 0, NULL, &v));
  if (v) {
    int64_t V, c;
    dlk_glove_vocab_size(ctx, v, &V);
    CHECK(V == 5, "V = %lld", (long long)V);
    const char *want[5] = {"a", "b", "c", "d", "e"};
    int64_t wc[5] = {3, 2, 2, 1, 1};
    for (int i = 0; i < 5 && i < V; i++) {
      const char *w = vword(ctx, v, i + 1, &c);
      CHECK(strcmp(w, want[i]) == 0 && c == wc[i], "id %d: %s %lld, want %s %lld", i + 1, w, (long long)c,
            want[i], (long long)wc[i]);
    }
    int64_t id;
    dlk_glove_vocab_find(ctx, v, "d", &id);
    CHECK(id == 4, "find d -> %lld", (long long)id);
    dlk_glove_vocab_find(ctx, v, "zz", &id);
    CHECK(id == 0, "find zz -> %lld", (long long)id);
    CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_glove_vocab_word(ctx, v, 6, NULL, NULL));
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_vocab_add_text(ctx, v, "x", 1));
    dlk_glove_vocab_free(ctx, v);
  }
  dlk_glove_vocab_params p = {2, 0};
  CHECK_OK(ctx, vocab_from_text(ctx, text, strlen(text), 0, &p, &v));
  if (v) {
    int64_t V;
    dlk_glove_vocab_size(ctx, v, &V);
    CHECK(V == 3, "min_count 2: V = %lld", (long long)V);
    dlk_glove_vocab_free(ctx, v);
  }
  dlk_glove_vocab_params q = {1, 2};
  CHECK_OK(ctx, vocab_from_text(ctx, text, strlen(text), 0, &q, &v));
  if (v) {
    int64_t V;
    dlk_glove_vocab_size(ctx, v, &V);
    CHECK(V == 2 && strcmp(vword(ctx, v, 1, NULL), "a") == 0, "max_vocab 2: V = %lld", (long long)V);
    dlk_glove_vocab_free(ctx, v);
  }
  /* Ties by the tool's signed-char compare: bytes >= 0x80 sort before ASCII. */
  const char *t2 = "z \xc3\xa9 y\n";
  CHECK_OK(ctx, vocab_from_text(ctx, t2, strlen(t2), 0, NULL, &v));
  if (v) {
    CHECK(strcmp(vword(ctx, v, 1, NULL), "\xc3\xa9") == 0 && strcmp(vword(ctx, v, 2, NULL), "y") == 0,
          "tie order: %s %s", vword(ctx, v, 1, NULL), vword(ctx, v, 2, NULL));
    dlk_glove_vocab_free(ctx, v);
  }
  /* A 1500-byte word keeps 999 bytes; a UTF-8 sequence cut at byte 999 is dropped. */
  char *lw = malloc(3000);
  memset(lw, 'a', 1500);
  lw[1500] = '\n';
  memset(lw + 1501, 'b', 998);
  lw[2499] = '\xc3', lw[2500] = '\xa9', lw[2501] = '\n';
  CHECK_OK(ctx, vocab_from_text(ctx, lw, 2502, 100, NULL, &v));
  if (v) {
    int64_t V;
    dlk_glove_vocab_size(ctx, v, &V);
    size_t l1 = strlen(vword(ctx, v, 1, NULL)), l2 = V > 1 ? strlen(vword(ctx, v, 2, NULL)) : 0;
    CHECK(V == 2 && ((l1 == 999 && l2 == 998) || (l1 == 998 && l2 == 999)), "long words: V %lld lengths %zu %zu",
          (long long)V, l1, l2);
    dlk_glove_vocab_free(ctx, v);
  }
  free(lw);
  /* "<unk>" in the corpus, an empty corpus, nothing frequent enough. */
  dlk_glove_vocab *u;
  CHECK_OK(ctx, dlk_glove_vocab_create(ctx, &u));
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_vocab_add_text(ctx, u, "a <unk> b", 9));
  CHECK(strstr(dlk_context_last_error(ctx), "<unk>") != NULL, "message names <unk>: %s", dlk_context_last_error(ctx));
  dlk_glove_vocab_free(ctx, u);
  CHECK_OK(ctx, dlk_glove_vocab_create(ctx, &u));
  CHECK_OK(ctx, dlk_glove_vocab_add_text(ctx, u, " \n\t\r\n", 5));
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_vocab_finish(ctx, u, NULL));
  CHECK(strstr(dlk_context_last_error(ctx), "no tokens") != NULL, "empty corpus message: %s", dlk_context_last_error(ctx));
  dlk_glove_vocab_free(ctx, u);
  dlk_glove_vocab_params big = {100, 0};
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, vocab_from_text(ctx, text, strlen(text), 0, &big, &v));
}

/* A 10 MB line: tokens are counted and windows run across it; one 10 MB token is cut. */
static void test_long_line(dlk_context *ctx) {
  t_case = "corpus/10MB line";
  size_t n = 10u << 20;
  char *t = malloc(n + 1);
  for (size_t i = 0; i < n; i++) t[i] = (i % 4 == 3) ? ' ' : (char)('a' + (i / 4) % 3);
  t[n] = '\0';
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, vocab_from_text(ctx, t, n, 1 << 20, NULL, &v));
  if (v) {
    int64_t V, tokens;
    dlk_glove_vocab_size(ctx, v, &V);
    dlk_glove_vocab_tokens(ctx, v, &tokens, NULL);
    CHECK(V == 3 && tokens == (int64_t)(n / 4), "V %lld tokens %lld", (long long)V, (long long)tokens);
    dlk_glove_cooccur_params p = cooc_defaults(ctx);
    p.window = 3;
    p.temp_prefix = tmp_path("ovl");
    dlk_glove_cooccur_stats st;
    CHECK_OK(ctx, cooccur_text(ctx, &p, v, t, n, 1 << 20, tmp_path("long.bin"), &st));
    CHECK(st.records == 9 && st.lines == 0, "records %lld lines %lld", (long long)st.records, (long long)st.lines);
    dlk_glove_vocab_free(ctx, v);
  }
  memset(t, 'q', n);
  CHECK_OK(ctx, vocab_from_text(ctx, t, n, 1 << 20, NULL, &v));
  if (v) {
    CHECK(strlen(vword(ctx, v, 1, NULL)) == 999, "10 MB token cut to 999 bytes");
    dlk_glove_vocab_free(ctx, v);
  }
  free(t);
}

/* ---- co-occurrence, by hand and against a brute-force count ---- */

static dlk_glove_vocab *vocab_abcd(dlk_context *ctx) {
  write_all(tmp_path("abcd.txt"), "a 10\nb 9\nc 8\nd 7\n", 17);
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, dlk_glove_vocab_load(ctx, tmp_path("abcd.txt"), &v));
  return v;
}

static bool recs_equal(const char *what, const dlk_glove_record *got, int64_t ng,
                       const dlk_glove_record *want, int64_t nw, double rtol) {
  bool ok = ng == nw;
  CHECK(ng == nw, "%s: %lld records, expected %lld", what, (long long)ng, (long long)nw);
  for (int64_t i = 0; ok && i < nw; i++) {
    bool same = got[i].w1 == want[i].w1 && got[i].w2 == want[i].w2 &&
                fabs(got[i].x - want[i].x) <= rtol * fabs(want[i].x);
    CHECK(same, "%s: record %lld is (%d, %d, %.17g), expected (%d, %d, %.17g)", what, (long long)i, got[i].w1,
          got[i].w2, got[i].x, want[i].w1, want[i].w2, want[i].x);
    ok = same;
  }
  return ok;
}

static void cooc_case(dlk_context *ctx, const char *name, const dlk_glove_vocab *v, const char *text,
                      int window, int sym, int dist, const dlk_glove_record *want, int64_t nw) {
  t_case = name;
  for (int method = 1; method <= 2; method++) {
    dlk_glove_cooccur_params p = cooc_defaults(ctx);
    p.window = window, p.symmetric = sym, p.distance_weighting = dist;
    p.method = method;
    p.no_tool_quirks = 1;
    p.temp_prefix = tmp_path("ovh");
    CHECK_OK(ctx, cooccur_text(ctx, &p, v, text, strlen(text), 2, tmp_path("hand.bin"), NULL));
    dlk_glove_record *got = NULL;
    int64_t ng = 0;
    CHECK_OK(ctx, dlk_glove_records_read(ctx, tmp_path("hand.bin"), &got, &ng));
    char what[96];
    snprintf(what, sizeof what, "%s (method %d)", name, method);
    recs_equal(what, got, ng, want, nw, 0);
    free(got);
  }
}

static void test_cooccur_hand(dlk_context *ctx) {
  dlk_glove_vocab *v = vocab_abcd(ctx);
  if (!v) return;
  /* a=1 b=2 c=3 d=4. Line "a b c": b-a at 1, c-b at 1, c-a at 2; line "d a": a-d at 1. */
  const dlk_glove_record w1[] = {{1, 2, 1}, {1, 3, .5}, {1, 4, 1}, {2, 1, 1}, {2, 3, 1}, {3, 1, .5}, {3, 2, 1}, {4, 1, 1}};
  cooc_case(ctx, "cooccur/basic", v, "a b c\nd a\n", 2, 1, 1, w1, 8);
  /* The window stops at 2: d pairs with c (1) and b (1/2), not a. */
  const dlk_glove_record w2[] = {{1, 2, 1}, {1, 3, .5}, {2, 1, 1}, {2, 3, 1}, {2, 4, .5}, {3, 1, .5}, {3, 2, 1}, {3, 4, 1}, {4, 2, .5}, {4, 3, 1}};
  cooc_case(ctx, "cooccur/window edge", v, "a b c d", 2, 1, 1, w2, 10);
  /* No window across a newline; out-of-vocabulary x and y are dropped before windowing. */
  const dlk_glove_record w3[] = {{1, 2, 1}, {2, 1, 1}};
  cooc_case(ctx, "cooccur/newline+oov", v, "a x y b\nc\n\nd\n", 3, 1, 1, w3, 2);
  /* Left context only. */
  const dlk_glove_record w4[] = {{1, 2, 1}, {1, 3, .5}, {2, 3, 1}};
  cooc_case(ctx, "cooccur/asymmetric", v, "a b c\n", 2, 0, 1, w4, 3);
  /* No distance weighting; repeated pairs summed; a word with itself. */
  const dlk_glove_record w5[] = {{1, 1, 2}, {1, 2, 4}, {2, 1, 4}, {2, 2, 2}};
  cooc_case(ctx, "cooccur/unweighted", v, "a b a b\n", 3, 1, 0, w5, 4);
  /* The tool's quirk, on by default: the first record counted twice. */
  t_case = "cooccur/tool quirk";
  dlk_glove_cooccur_params p = cooc_defaults(ctx);
  p.window = 2;
  p.temp_prefix = tmp_path("ovq");
  CHECK_OK(ctx, cooccur_text(ctx, &p, v, "a b c\nd a\n", 10, 0, tmp_path("q.bin"), NULL));
  dlk_glove_record *got = NULL;
  int64_t ng = 0;
  CHECK_OK(ctx, dlk_glove_records_read(ctx, tmp_path("q.bin"), &got, &ng));
  CHECK(ng == 8 && got && got[0].x == 2.0 && got[1].x == 0.5, "quirk: record 0 doubled (%g)", got ? got[0].x : -1);
  free(got);
  /* A corpus with no in-vocabulary token. */
  t_case = "cooccur/empty";
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, cooccur_text(ctx, &p, v, "x y z\n", 6, 0, tmp_path("e.bin"), NULL));
  CHECK(access(tmp_path("e.bin"), F_OK) != 0, "nothing written for an empty count");
  dlk_glove_vocab_free(ctx, v);
}

/* Brute force: every pair of every line, summed into a dense V x V table. */
static dlk_glove_record *brute_cooccur(const int32_t *ids, int64_t n, int64_t V, int window, bool sym,
                                       bool dist, int64_t *count) {
  double *t = calloc((size_t)(V * V), sizeof *t);
  int64_t start = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] == 0) {
      start = i + 1;
      continue;
    }
    for (int64_t k = i - 1; k >= start && k >= i - window; k--) {
      double w = dist ? 1.0 / (double)(i - k) : 1.0;
      t[(ids[k] - 1) * V + ids[i] - 1] += w;
      if (sym) t[(ids[i] - 1) * V + ids[k] - 1] += w;
    }
  }
  dlk_glove_record *r = malloc((size_t)(V * V) * sizeof *r);
  int64_t m = 0;
  for (int64_t a = 0; a < V; a++)
    for (int64_t b = 0; b < V; b++)
      if (t[a * V + b] != 0) r[m++] = (dlk_glove_record){(int32_t)a + 1, (int32_t)b + 1, t[a * V + b]};
  free(t);
  *count = m;
  return r;
}

/* A random corpus over words w1..wV with Zipf-like frequencies. */
static char *random_corpus(int V, int tokens, int32_t **ids_out, int64_t *nids) {
  char *t = malloc((size_t)tokens * 8 + 16);
  int32_t *ids = malloc(((size_t)tokens * 2 + 2) * sizeof *ids);
  size_t o = 0;
  int64_t k = 0;
  for (int i = 0; i < tokens; i++) {
    double u = t_uniform(0, 1);
    int w = (int)(pow(u, 2.5) * V) + 1;
    if (t_uniform(0, 1) < 0.05) {
      o += (size_t)sprintf(t + o, "oov%d ", i % 7); /* out of vocabulary */
    } else {
      o += (size_t)sprintf(t + o, "w%d ", w);
      ids[k++] = w;
    }
    if (t_uniform(0, 1) < 0.04) {
      t[o++] = '\n';
      ids[k++] = 0;
    }
  }
  t[o] = '\0';
  *ids_out = ids;
  *nids = k;
  return t;
}

static void test_cooccur_random(dlk_context *ctx) {
  t_case = "cooccur/random";
  t_seed(11);
  const int V = 60;
  /* The vocabulary file lists w1..wV in id order. */
  char vb[4096];
  size_t o = 0;
  for (int i = 1; i <= V; i++) o += (size_t)sprintf(vb + o, "w%d %d\n", i, 1000 - i);
  write_all(tmp_path("rv.txt"), vb, o);
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, dlk_glove_vocab_load(ctx, tmp_path("rv.txt"), &v));
  int32_t *ids;
  int64_t nids;
  char *text = random_corpus(V, 30000, &ids, &nids);
  for (int sym = 0; sym <= 1; sym++) {
    int64_t nw;
    dlk_glove_record *want = brute_cooccur(ids, nids, V, 7, sym, true, &nw);
    struct {
      const char *name;
      int method;
      int64_t max_product, overflow_length;
      double memory;
      int fan;
    } cfg[] = {{"table, no spill", 1, 0, 0, 0.01, 0},
               {"table, many spills, 3-way merges", 1, 20, 500, 0.01, 3},
               {"chunks through the op, many runs", 2, 0, 0, 2e-5, 4}};
    for (int c = 0; c < 3; c++) {
      dlk_glove_cooccur_params p = cooc_defaults(ctx);
      p.window = 7, p.symmetric = sym, p.method = cfg[c].method;
      p.max_product = cfg[c].max_product, p.overflow_length = cfg[c].overflow_length;
      p.memory_gb = cfg[c].memory, p.max_temp_files = cfg[c].fan, p.no_tool_quirks = 1;
      p.temp_prefix = tmp_path("ovr");
      dlk_glove_cooccur_stats st;
      CHECK_OK(ctx, cooccur_text(ctx, &p, v, text, strlen(text), 4099, tmp_path("r.bin"), &st));
      dlk_glove_record *got = NULL;
      int64_t ng = 0;
      CHECK_OK(ctx, dlk_glove_records_read(ctx, tmp_path("r.bin"), &got, &ng));
      char what[128];
      snprintf(what, sizeof what, "%s, symmetric %d", cfg[c].name, sym);
      recs_equal(what, got, ng, want, nw, 1e-12);
      if (c > 0) CHECK(st.temp_files > 3, "%s: %d temporary files (expected spills)", what, st.temp_files);
      free(got);
    }
    /* No temporary file is left behind. */
    char probe[1100];
    snprintf(probe, sizeof probe, "%s_0001.bin", tmp_path("ovr"));
    CHECK(access(probe, F_OK) != 0, "temporary files removed");
    free(want);
  }
  free(text);
  free(ids);
  dlk_glove_vocab_free(ctx, v);
}

/* The chunk op itself: every variant against the brute force, with a prefix. */
static void test_chunk_op(dlk_context *ctx, bool gpu) {
  t_case = gpu ? "cooccur_chunk/gpu" : "cooccur_chunk/cpu";
  t_seed(5);
  int64_t n = 20000, V = 300;
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  for (int64_t i = 0; i < n; i++) ids[i] = t_uniform(0, 1) < 0.03 ? 0 : (int32_t)(pow(t_uniform(0, 1), 2) * V) + 1;
  for (int64_t i = 0; i < 5; i++) ids[i] = (int32_t)i + 1; /* the prefix: no break inside */
  int count = 0;
  dlk_variant_info info[16];
  CHECK_OK(ctx, dlk_op_variants(ctx, "glove_cooccur_chunk", info, 16, &count));
  /* Reference: brute force over the whole array, minus the pairs among prefix targets. */
  int64_t nw;
  dlk_glove_record *all = brute_cooccur(ids, n, V, 5, true, true, &nw);
  int64_t np;
  dlk_glove_record *pre = brute_cooccur(ids, 5, V, 5, true, true, &np);
  for (int64_t i = 0, j = 0; i < nw; i++) {
    while (j < np && (pre[j].w1 < all[i].w1 || (pre[j].w1 == all[i].w1 && pre[j].w2 < all[i].w2))) j++;
    if (j < np && pre[j].w1 == all[i].w1 && pre[j].w2 == all[i].w2) all[i].x -= pre[j].x;
  }
  int64_t m = 0;
  for (int64_t i = 0; i < nw; i++)
    if (fabs(all[i].x) > 1e-9) all[m++] = all[i];
  int64_t cap = (n - 5) * 5 * 2;
  dlk_glove_record *out = malloc((size_t)cap * sizeof *out);
  int tested = 0;
  for (int k = 0; k < count && k < 16; k++) {
    if ((info[k].device == DLK_CUDA) != gpu) continue;
    CHECK_OK(ctx, dlk_force_variant(ctx, "glove_cooccur_chunk", info[k].id));
    int64_t got = -1;
    dlk_glove_cooccur_chunk_args a = {ids, n, 5, V, 5, true, true, out, cap, &got};
    CHECK_OK(ctx, dlk_dispatch(ctx, &dlk_glove_cooccur_chunk_op, &a));
    char what[64];
    snprintf(what, sizeof what, "variant %d %s", info[k].id, info[k].name);
    recs_equal(what, out, got, all, m, 1e-12);
    tested++;
  }
  dlk_force_variant(ctx, "glove_cooccur_chunk", -1);
  if (!gpu) CHECK(tested >= 1, "the CPU variant ran");
  free(ids), free(all), free(pre), free(out);
}

/* ---- shuffle ---- */

static int cmp_rec(const void *a, const void *b) {
  const dlk_glove_record *x = a, *y = b;
  if (x->w1 != y->w1) return x->w1 < y->w1 ? -1 : 1;
  if (x->w2 != y->w2) return x->w2 < y->w2 ? -1 : 1;
  return x->x < y->x ? -1 : x->x > y->x;
}

static void test_shuffle(dlk_context *ctx) {
  t_case = "shuffle";
  dlk_glove_record *orig = NULL;
  int64_t n = 0;
  CHECK_OK(ctx, dlk_glove_records_read(ctx, golden("cooccurrence.bin"), &orig, &n));
  if (!orig) return;
  /* Many chunks and temporary files, and a size that is an exact multiple. */
  int64_t sizes[] = {1000, 97755, 32585};
  for (int k = 0; k < 3; k++) {
    dlk_glove_shuffle_params p = shuf_defaults(ctx);
    p.seed = 3;
    p.array_size = sizes[k];
    p.temp_prefix = tmp_path("ts");
    CHECK_OK(ctx, dlk_glove_shuffle_file(ctx, &p, golden("cooccurrence.bin"), tmp_path("s1.bin"), NULL, NULL));
    CHECK_OK(ctx, dlk_glove_shuffle_file(ctx, &p, golden("cooccurrence.bin"), tmp_path("s2.bin"), NULL, NULL));
    CHECK(files_equal(tmp_path("s1.bin"), tmp_path("s2.bin"), NULL), "same seed, same output (array %lld)",
          (long long)sizes[k]);
    dlk_glove_record *s = NULL;
    int64_t ns = 0;
    CHECK_OK(ctx, dlk_glove_records_read(ctx, tmp_path("s1.bin"), &s, &ns));
    if (!s) continue;
    int moved = 0;
    for (int64_t i = 0; i < ns && i < n; i++) moved += cmp_rec(&s[i], &orig[i]) != 0;
    CHECK(ns == n && moved > n * 9 / 10, "array %lld: %lld records, %d moved", (long long)sizes[k], (long long)ns, moved);
    qsort(s, (size_t)ns, sizeof *s, cmp_rec);
    dlk_glove_record *o2 = malloc((size_t)n * sizeof *o2);
    memcpy(o2, orig, (size_t)n * sizeof *o2);
    qsort(o2, (size_t)n, sizeof *o2, cmp_rec);
    CHECK(ns == n && memcmp(s, o2, (size_t)n * sizeof *s) == 0, "a permutation of the input (array %lld)", (long long)sizes[k]);
    free(s), free(o2);
  }
  char probe[1100];
  snprintf(probe, sizeof probe, "%s_0000.bin", tmp_path("ts"));
  CHECK(access(probe, F_OK) != 0, "temporary files removed");
  /* A truncated input: refused, no output. */
  write_all(tmp_path("trunc.bin"), orig, 16 * 10 + 7);
  dlk_glove_shuffle_params p = shuf_defaults(ctx);
  p.seed = 1;
  p.temp_prefix = tmp_path("ts");
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_shuffle_file(ctx, &p, tmp_path("trunc.bin"), tmp_path("s3.bin"), NULL, NULL));
  CHECK(access(tmp_path("s3.bin"), F_OK) != 0 && access(tmp_path("s3.bin.tmp"), F_OK) != 0, "no output on error");
  free(orig);
}

/* ---- single-record updates against the formulas ---- */

/* The update rule written out plainly from include/dlk.h, on host arrays. */
static void formula_update(double *W, double *G, int64_t V, int d, dlk_glove_record r,
                           const dlk_glove_train_params *p, double *cost, int *skipped) {
  int64_t i = (r.w1 - 1) * (int64_t)(d + 1), j = (r.w2 - 1 + V) * (int64_t)(d + 1);
  double dot = 0;
  for (int k = 0; k < d; k++) dot += W[i + k] * W[j + k];
  double target = p->keras ? log(1 + r.x) : log(r.x);
  double diff = dot + W[i + d] + W[j + d] - target;
  double f = (!p->keras && r.x > p->x_max) ? 1.0 : pow(r.x / p->x_max, p->alpha);
  double fdiff = f * diff;
  if (!isfinite(diff) || !isfinite(fdiff)) {
    (*skipped)++;
    return;
  }
  *cost += 0.5 * fdiff * diff;
  double u1[64], u2[64], s1 = 0, s2 = 0;
  for (int k = 0; k < d; k++) {
    double g1 = fdiff * W[j + k], g2 = fdiff * W[i + k];
    g1 = g1 > p->grad_clip ? p->grad_clip : g1 < -p->grad_clip ? -p->grad_clip : g1;
    g2 = g2 > p->grad_clip ? p->grad_clip : g2 < -p->grad_clip ? -p->grad_clip : g2;
    g1 *= p->eta, g2 *= p->eta;
    u1[k] = g1 / sqrt(G[i + k]);
    u2[k] = g2 / sqrt(G[j + k]);
    G[i + k] += g1 * g1;
    G[j + k] += g2 * g2;
    s1 += u1[k], s2 += u2[k];
  }
  if (isfinite(s1) && isfinite(s2))
    for (int k = 0; k < d; k++) W[i + k] -= u1[k], W[j + k] -= u2[k];
  double bi = fdiff / sqrt(G[i + d]), bj = fdiff / sqrt(G[j + d]);
  if (isfinite(bi)) W[i + d] -= bi;
  if (isfinite(bj)) W[j + d] -= bj;
  G[i + d] += fdiff * fdiff;
  G[j + d] += fdiff * fdiff;
}

static void set_model(dlk_context *ctx, dlk_glove_model *m, const double *W, const double *G) {
  int64_t n = 2 * m->vocab_size * (m->dim + 1);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &m->params, W, (size_t)n * sizeof *W));
  CHECK_OK(ctx, dlk_tensor_write(ctx, &m->gradsq, G, (size_t)n * sizeof *G));
}

static void test_single_records(dlk_context *ctx) {
  const int64_t V = 7;
  const int d = 5;
  const int64_t n = 2 * V * (d + 1);
  t_seed(21);
  /* Small counts, a count above x_max (no weight), a huge fdiff (clipped components),
     the Keras variant. */
  struct {
    const char *name;
    dlk_glove_record r;
    double scale, clip;
    int keras;
  } cases[] = {{"plain", {2, 3, 4.5}, 0.1, 100, 0},       {"x > x_max", {1, 1, 350.0}, 0.1, 100, 0},
               {"clipped", {4, 6, 1e-3}, 30.0, 0.5, 0},   {"keras", {7, 2, 120.0}, 0.1, 100, 1},
               {"same ids", {3, 3, 2.0}, 0.1, 100, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int variants[2] = {0, 20};
    for (int vi = 0; vi < 2; vi++) {
      char name[64];
      snprintf(name, sizeof name, "update/%s/variant %d", cases[c].name, variants[vi]);
      t_case = name;
      double *W = malloc(n * sizeof *W), *G = malloc(n * sizeof *G), *W2 = malloc(n * sizeof *W), *G2 = malloc(n * sizeof *G);
      for (int64_t k = 0; k < n; k++) W[k] = t_uniform(-1, 1) * cases[c].scale, G[k] = t_uniform(1, 3);
      memcpy(W2, W, n * sizeof *W), memcpy(G2, G, n * sizeof *G);
      dlk_glove_model m;
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, 1, &m));
      set_model(ctx, &m, W, G);
      dlk_glove_train_params p = train_defaults(ctx, 1);
      p.grad_clip = cases[c].clip;
      p.keras = cases[c].keras;
      p.x_max = 100;
      double cost = 0;
      int sk = 0;
      formula_update(W2, G2, V, d, cases[c].r, &p, &cost, &sk);
      dlk_glove_records_params rp = {V, 0, 0};
      dlk_glove_records *r = NULL;
      CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, &cases[c].r, 1, &r));
      CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", variants[vi]));
      dlk_glove_epoch_result res;
      CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, r, &res));
      double *gw = model_host(ctx, &m.params), *gg = model_host(ctx, &m.gradsq);
      t_close("parameters", gw, W2, n, 1e-14, 1e-13);
      t_close("accumulators", gg, G2, n, 1e-14, 1e-13);
      CHECK(fabs(res.cost - cost) <= 1e-13 * fabs(cost) + 1e-300, "cost %.17g formula %.17g", res.cost, cost);
      CHECK(res.variant == variants[vi] && m.epoch == 1, "variant %d epoch %lld", res.variant, (long long)m.epoch);
      /* The weight really was clipped where it should be. */
      if (cases[c].clip < 1) {
        int moved = 0;
        for (int64_t k = 0; k < n; k++) moved += gw[k] != W[k];
        CHECK(moved > 0, "clipped case moved parameters");
      }
      free(gw), free(gg), free(W), free(G), free(W2), free(G2);
      dlk_glove_records_free(ctx, r);
      dlk_glove_model_free(ctx, &m);
    }
  }
  dlk_force_variant(ctx, "glove_epoch", -1);

  /* Non-finite: a record whose diff overflows is skipped and changes nothing; a zero
     accumulator makes the vector step infinite: dropped, while G still takes t^2. */
  for (int vi = 0; vi < 2; vi++) {
    t_case = vi ? "update/non-finite/variant 20" : "update/non-finite/variant 0";
    double *W = malloc(n * sizeof *W), *G = malloc(n * sizeof *G);
    for (int64_t k = 0; k < n; k++) W[k] = 0.1, G[k] = 1.0;
    for (int k = 0; k < d; k++) W[0 * (d + 1) + k] = 1e300, W[(V + 0) * (d + 1) + k] = 1e300;
    dlk_glove_model m;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, 1, &m));
    set_model(ctx, &m, W, G);
    dlk_glove_record rec[2] = {{1, 1, 3.0}, {2, 3, 3.0}};
    dlk_glove_records_params rp = {V, 0, 0};
    dlk_glove_records *r = NULL;
    CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, rec, 1, &r));
    CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", vi ? 20 : 0));
    dlk_glove_train_params p = train_defaults(ctx, 1);
    dlk_glove_epoch_result res;
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, r, &res));
    double *gw = model_host(ctx, &m.params);
    CHECK(res.skipped == 1 && res.cost == 0 && memcmp(gw, W, n * sizeof *W) == 0, "skipped %lld, untouched",
          (long long)res.skipped);
    free(gw);
    dlk_glove_records_free(ctx, r);
    for (int64_t k = 0; k < n; k++) W[k] = 0.1;
    int64_t row2 = 1 * (d + 1);
    for (int k = 0; k <= d; k++) G[row2 + k] = 0.0; /* word 2's accumulators */
    set_model(ctx, &m, W, G);
    CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, rec + 1, 1, &r));
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, r, &res));
    gw = model_host(ctx, &m.params);
    double *gg = model_host(ctx, &m.gradsq);
    int wrow_same = 1, crow_same = 1;
    for (int k = 0; k <= d; k++) wrow_same &= gw[row2 + k] == 0.1;
    int64_t crow = (V + 2) * (d + 1);
    for (int k = 0; k < d; k++) crow_same &= gw[crow + k] == 0.1;
    CHECK(res.skipped == 0 && wrow_same && crow_same, "infinite vector step dropped for both rows, bias step dropped");
    CHECK(gw[crow + d] != 0.1, "the finite bias step of the context row is applied");
    CHECK(gg[row2] > 0 && gg[crow] > 1.0, "accumulators still updated");
    free(gw), free(gg), free(W), free(G);
    dlk_glove_records_free(ctx, r);
    dlk_glove_model_free(ctx, &m);
  }
  dlk_force_variant(ctx, "glove_epoch", -1);
}

/* ---- Hogwild, streaming, cancel ---- */

static void test_hogwild_stream(dlk_context *ctx) {
  t_case = "hogwild";
  dlk_glove_records_params rp = {1194, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &rp, golden("cooccurrence.shuf.bin"), &r));
  if (!r) return;
  double ref_cost[2] = {0, 0};
  int threads[] = {1, 2, 3};
  for (int ti = -1; ti < 3; ti++) {
    dlk_glove_model m;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 7, &m));
    CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", ti < 0 ? 0 : 20));
    dlk_glove_train_params p = train_defaults(ctx, ti < 0 ? 1 : threads[ti]);
    for (int e = 0; e < 2; e++) {
      dlk_glove_epoch_result res;
      CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, r, &res));
      if (ti < 0) ref_cost[e] = res.cost;
      else
        /* Several threads run the ranges concurrently: with 1194 words their updates
           collide often, so the cost of a whole epoch moves by a few percent. */
        CHECK(fabs(res.cost - ref_cost[e]) <= (threads[ti] == 1 ? 1e-9 : 0.05) * ref_cost[e],
              "%d threads, epoch %d: cost %.8f vs reference %.8f", threads[ti], e + 1, res.cost, ref_cost[e]);
    }
    dlk_glove_model_free(ctx, &m);
  }
  /* The heuristic: Hogwild when several threads are asked for. */
  dlk_force_variant(ctx, "glove_epoch", -1);
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 7, &m));
  dlk_glove_train_params p2 = train_defaults(ctx, 2);
  dlk_glove_epoch_result res;
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p2, &m, r, &res));
  CHECK(res.variant == 20, "2 threads pick cpu_hogwild, got %d", res.variant);
  dlk_glove_train_params p1 = train_defaults(ctx, 1);
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p1, &m, r, &res));
  CHECK(res.variant == 0, "1 thread picks the reference, got %d", res.variant);
  /* Deterministic mode: racing threads are refused with the reason; AUTO runs the
     reference even when threads are asked for; one Hogwild thread is deterministic. */
  t_case = "hogwild/deterministic mode";
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p2, &m, r, &res));
  CHECK(res.variant == 0, "deterministic, 2 threads: AUTO picks the reference, got %d", res.variant);
  CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", 20));
  int64_t epoch_before = m.epoch;
  CHECK_STATUS(ctx, DLK_ERR_NOT_SUPPORTED, dlk_glove_train_epoch(ctx, &p2, &m, r, &res));
  CHECK(strstr(dlk_context_last_error(ctx), "not deterministic") != NULL && m.epoch == epoch_before, "reason: %s",
        dlk_context_last_error(ctx));
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p1, &m, r, &res));
  CHECK(res.variant == 20, "one Hogwild thread runs in deterministic mode, got %d", res.variant);
  dlk_force_variant(ctx, "glove_epoch", -1);
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
  t_case = "hogwild";
  dlk_glove_model_free(ctx, &m);

  /* Streamed in chunks of 1000 records: the same bits as resident (variant 0). */
  t_case = "streaming";
  dlk_glove_records_params sp = {1194, 1, 1000};
  dlk_glove_records *s = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp, golden("cooccurrence.shuf.bin"), &s));
  int resident = 1;
  if (s) dlk_glove_records_info(ctx, s, NULL, &resident);
  CHECK(resident == 0, "max_resident_bytes 1 streams");
  dlk_glove_model a, b;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 9, &a));
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 9, &b));
  CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", 0));
  dlk_glove_epoch_result ra, rb;
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p1, &a, r, &ra));
  if (s) CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p1, &b, s, &rb));
  double *wa = model_host(ctx, &a.params), *wb = model_host(ctx, &b.params);
  CHECK(memcmp(wa, wb, 2 * 1194 * 11 * sizeof(double)) == 0, "streamed == resident, bit for bit");
  CHECK(fabs(ra.cost - rb.cost) <= 1e-12 * ra.cost, "cost %.17g vs %.17g (sums per chunk)", ra.cost, rb.cost);
  free(wa), free(wb);

  /* Cancel: before the first chunk nothing changes; mid-epoch the call stops with
     DLK_ERR_INTERRUPTED and the epoch counter stays. */
  t_case = "cancel";
  volatile int cancel = 1;
  dlk_glove_train_params pc = train_defaults(ctx, 1);
  pc.cancel = &cancel;
  double *before = model_host(ctx, &a.params);
  CHECK_STATUS(ctx, DLK_ERR_INTERRUPTED, dlk_glove_train_epoch(ctx, &pc, &a, r, &ra));
  double *after = model_host(ctx, &a.params);
  CHECK(memcmp(before, after, 2 * 1194 * 11 * sizeof(double)) == 0 && a.epoch == 1, "untouched when cancelled first");
  free(before), free(after);
  dlk_force_variant(ctx, "glove_epoch", -1);
  dlk_glove_model_free(ctx, &a);
  dlk_glove_model_free(ctx, &b);
  dlk_glove_records_free(ctx, s);
  dlk_glove_records_free(ctx, r);
}

static void cancel_after_first(void *user, int64_t done, int64_t total, double cost) {
  (void)done, (void)total, (void)cost;
  *(volatile int *)user = 1;
}

static void test_cancel_mid(dlk_context *ctx) {
  t_case = "cancel/mid-epoch";
  dlk_glove_records_params sp = {1194, 1, 5000};
  dlk_glove_records *s = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp, golden("cooccurrence.shuf.bin"), &s));
  if (!s) return;
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 9, &m));
  volatile int cancel = 0;
  dlk_glove_train_params p = train_defaults(ctx, 2);
  p.cancel = &cancel;
  p.progress = cancel_after_first;
  p.progress_user = (void *)&cancel;
  dlk_glove_epoch_result res;
  CHECK_STATUS(ctx, DLK_ERR_INTERRUPTED, dlk_glove_train_epoch(ctx, &p, &m, s, &res));
  CHECK(m.epoch == 0, "epoch counter unchanged: %lld", (long long)m.epoch);
  CHECK(strstr(dlk_context_last_error(ctx), "5000") != NULL, "message says where: %s", dlk_context_last_error(ctx));
  dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, s);
}

/* The reader thread of streamed epochs: chunk sizes that do and do not divide the file,
   progress after every chunk, a file that changes under an open records object (a bad
   record in a late chunk, then a truncation): a clear status naming the record, the epoch
   not counted, and the same object usable again once the file is good. */
typedef struct progress_log {
  int64_t calls, last_done, total;
  bool monotone;
} progress_log;

static void log_progress(void *user, int64_t done, int64_t total, double cost) {
  (void)cost;
  progress_log *l = user;
  l->monotone = l->monotone && done > l->last_done && done <= total;
  l->calls++, l->last_done = done, l->total = total;
}

static void test_stream_reader(dlk_context *ctx) {
  t_case = "streaming/reader";
  dlk_glove_record *recs = NULL;
  int64_t n = 0;
  CHECK_OK(ctx, dlk_glove_records_read(ctx, golden("cooccurrence.shuf.bin"), &recs, &n));
  if (!recs) return;
  const int64_t V = 1194;
  CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", 0));
  dlk_glove_train_params p = train_defaults(ctx, 1);
  /* Against resident records with the same chunk_records: a resident epoch runs in pieces
     of min(chunk, max(n/64, 64k)) records, which here is the streamed chunk (n < 64k), so
     even the cost sums add in the same order: every bit must agree. */
  const int64_t chunks[] = {1, 7, 4096, 20011, 1 << 20};
  for (int c = 0; c < 5; c++) {
    int64_t ch = chunks[c];
    n = ch == 1 ? 300 : 20011; /* 20011 is prime: no chunk size here divides it */
    write_all(tmp_path("stream.bin"), recs, (size_t)n * sizeof *recs);
    dlk_glove_records_params sp = {V, 1, ch};
    dlk_glove_records *s = NULL;
    CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp, tmp_path("stream.bin"), &s));
    dlk_glove_records_params rq = {V, 0, ch};
    dlk_glove_records *rr = NULL;
    CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rq, recs, n, &rr));
    if (!s || !rr) {
      dlk_glove_records_free(ctx, s), dlk_glove_records_free(ctx, rr);
      continue;
    }
    int resident = 1;
    dlk_glove_records_info(ctx, s, NULL, &resident);
    CHECK(!resident, "chunk %lld: streamed", (long long)ch);
    dlk_glove_model a, b;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 10, DLK_F64, 5, &a));
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 10, DLK_F64, 5, &b));
    progress_log lg = {0, 0, 0, true};
    dlk_glove_train_params ps = p;
    ps.progress = log_progress, ps.progress_user = &lg;
    for (int e = 0; e < 2; e++) {
      dlk_glove_epoch_result ra, rb;
      memset(&ra, 0, sizeof ra), memset(&rb, 0, sizeof rb);
      CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &a, rr, &ra));
      lg.last_done = 0;
      CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &ps, &b, s, &rb));
      CHECK(ra.records == n && rb.records == n && rb.cost > 0, "chunk %lld epoch %d: %lld records", (long long)ch, e,
            (long long)rb.records);
      CHECK(ra.cost == rb.cost && ra.skipped == rb.skipped, "chunk %lld: cost %.17g vs %.17g", (long long)ch,
            rb.cost, ra.cost);
    }
    int64_t nch = (n + ch - 1) / ch;
    CHECK(lg.monotone && lg.calls == 2 * nch && lg.last_done == n && lg.total == n,
          "chunk %lld: %lld progress calls (expected %lld), last %lld of %lld", (long long)ch, (long long)lg.calls,
          (long long)(2 * nch), (long long)lg.last_done, (long long)lg.total);
    double *wa = model_host(ctx, &a.params), *wb = model_host(ctx, &b.params);
    double *ga = model_host(ctx, &a.gradsq), *gb = model_host(ctx, &b.gradsq);
    size_t bytes = (size_t)(2 * V * 11) * sizeof(double);
    CHECK(memcmp(wa, wb, bytes) == 0 && memcmp(ga, gb, bytes) == 0 && b.epoch == 2,
          "chunk %lld: streamed == resident, bit for bit", (long long)ch);
    free(wa), free(wb), free(ga), free(gb);
    dlk_glove_model_free(ctx, &a), dlk_glove_model_free(ctx, &b);
    dlk_glove_records_free(ctx, s), dlk_glove_records_free(ctx, rr);
  }
  /* The file changes after opening: a bad id in chunk 4 (records 3000..3999), then a NaN,
     then the file is cut short. Each epoch fails at that chunk with the record's index;
     the epoch counter stays; the good file trains again with the same object. */
  n = 20011;
  write_all(tmp_path("stream.bin"), recs, (size_t)n * sizeof *recs);
  dlk_glove_records_params sp = {V, 1, 1000};
  dlk_glove_records *s = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp, tmp_path("stream.bin"), &s));
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 10, DLK_F64, 5, &m));
  struct {
    const char *name;
    int64_t at;
    dlk_glove_record bad;
    dlk_status want;
    const char *says;
  } cases[] = {{"id > V", 3456, {(int32_t)V + 1, 1, 1.0}, DLK_ERR_OUT_OF_RANGE, "record 3456"},
               {"NaN count", 19999, {1, 2, NAN}, DLK_ERR_NOT_FINITE, "record 19999"},
               {"zero count", 0, {1, 2, 0.0}, DLK_ERR_OUT_OF_RANGE, "record 0"}};
  for (int k = 0; k < 3 && s; k++) {
    dlk_glove_record *mod = malloc((size_t)n * sizeof *mod);
    memcpy(mod, recs, (size_t)n * sizeof *mod);
    mod[cases[k].at] = cases[k].bad;
    write_all(tmp_path("stream.bin"), mod, (size_t)n * sizeof *mod);
    free(mod);
    progress_log lg = {0, 0, 0, true};
    dlk_glove_train_params ps = p;
    ps.progress = log_progress, ps.progress_user = &lg;
    dlk_glove_epoch_result out;
    memset(&out, 0x7f, sizeof out);
    dlk_glove_epoch_result before = out;
    CHECK_STATUS(ctx, cases[k].want, dlk_glove_train_epoch(ctx, &ps, &m, s, &out));
    CHECK(strstr(dlk_context_last_error(ctx), cases[k].says) != NULL, "%s: message %s", cases[k].name,
          dlk_context_last_error(ctx));
    CHECK(m.epoch == 0 && memcmp(&out, &before, sizeof out) == 0, "%s: no epoch claimed", cases[k].name);
    CHECK(lg.last_done == cases[k].at / 1000 * 1000, "%s: trained up to the bad chunk (%lld)", cases[k].name,
          (long long)lg.last_done);
  }
  /* Cut short: the reader hits the end of the file inside chunk 16. */
  write_all(tmp_path("stream.bin"), recs, (size_t)15500 * sizeof *recs);
  if (s) {
    CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_train_epoch(ctx, &p, &m, s, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "short read at record 15500") != NULL, "message: %s",
          dlk_context_last_error(ctx));
  }
  remove(tmp_path("stream.bin"));
  if (s) {
    CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_train_epoch(ctx, &p, &m, s, NULL));
    CHECK(strstr(dlk_context_last_error(ctx), "cannot reopen") != NULL, "message: %s", dlk_context_last_error(ctx));
  }
  /* Good again: the same object trains a whole epoch. */
  write_all(tmp_path("stream.bin"), recs, (size_t)n * sizeof *recs);
  if (s) CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, s, NULL));
  CHECK(m.epoch == 1, "epoch counted once the file is good: %lld", (long long)m.epoch);
  /* Many short epochs in a row (threads started and joined each time), one cancelled
     from the progress callback part way. */
  for (int e = 0; e < 20 && s; e++) CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, s, NULL));
  volatile int cancel = 0;
  dlk_glove_train_params pc = p;
  pc.cancel = &cancel;
  pc.progress = cancel_after_first;
  pc.progress_user = (void *)&cancel;
  if (s) CHECK_STATUS(ctx, DLK_ERR_INTERRUPTED, dlk_glove_train_epoch(ctx, &pc, &m, s, NULL));
  CHECK(m.epoch == 21, "cancelled epoch not counted: %lld", (long long)m.epoch);
  dlk_force_variant(ctx, "glove_epoch", -1);
  dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, s);
  free(recs);
}

/* ---- file formats: round trips ---- */

static void test_roundtrips(dlk_context *ctx) {
  t_case = "roundtrip/vocab";
  dlk_glove_vocab *v = golden_vocab(ctx), *v2 = NULL;
  if (!v) return;
  CHECK_OK(ctx, dlk_glove_vocab_save(ctx, v, tmp_path("v2.txt")));
  CHECK_OK(ctx, dlk_glove_vocab_load(ctx, tmp_path("v2.txt"), &v2));
  CHECK(files_equal(tmp_path("v2.txt"), golden("vocab.txt"), NULL), "vocab save(load(x)) == x");
  dlk_glove_vocab_free(ctx, v2);

  t_case = "roundtrip/records";
  dlk_glove_record *recs = NULL;
  int64_t n = 0;
  CHECK_OK(ctx, dlk_glove_records_read(ctx, golden("cooccurrence.shuf.bin"), &recs, &n));
  CHECK_OK(ctx, dlk_glove_records_write(ctx, tmp_path("r2.bin"), recs, n));
  CHECK(files_equal(tmp_path("r2.bin"), golden("cooccurrence.shuf.bin"), NULL), "records write(read(x)) == x");
  free(recs);

  t_case = "roundtrip/params";
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 3, &m));
  CHECK_OK(ctx, dlk_glove_model_load_params(ctx, &m, golden("vectors.003.bin")));
  CHECK_OK(ctx, dlk_glove_model_load_gradsq(ctx, &m, golden("gradsq.003.bin")));
  CHECK_OK(ctx, dlk_glove_model_save_params(ctx, &m, tmp_path("p.bin")));
  CHECK_OK(ctx, dlk_glove_model_save_gradsq(ctx, &m, tmp_path("g.bin")));
  CHECK(files_equal(tmp_path("p.bin"), golden("vectors.003.bin"), NULL), "params byte-identical");
  CHECK(files_equal(tmp_path("g.bin"), golden("gradsq.003.bin"), NULL), "gradsq byte-identical");

  t_case = "roundtrip/text";
  for (int model = 0; model <= 2; model++) {
    for (int header = 0; header <= 1; header++) {
      dlk_glove_text_params tp = {model, header, 0, 0};
      CHECK_OK(ctx, dlk_glove_save_text(ctx, &tp, &m, v, tmp_path("t.txt")));
      size_t len;
      char *txt = read_all(tmp_path("t.txt"), &len);
      int lines = 0;
      for (size_t i = 0; txt && i < len; i++) lines += txt[i] == '\n';
      CHECK(lines == 1194 + 1 + header, "model %d header %d: %d lines", model, header, lines);
      CHECK(txt && (header ? strncmp(txt, "1194 10\n", 8) == 0 : strncmp(txt, "and ", 4) == 0), "first line");
      CHECK(txt && strstr(txt, "\n<unk> ") != NULL, "<unk> row present");
      free(txt);
      dlk_tensor E, T;
      CHECK_OK(ctx, dlk_glove_embeddings(ctx, &m, model, &E));
      CHECK_OK(ctx, dlk_glove_vectors_load_text(ctx, tmp_path("t.txt"), v, &T));
      if (E.data && T.data) {
        CHECK(T.shape[0] == E.shape[0] && T.shape[1] == E.shape[1], "text shape %lldx%lld vs %lldx%lld",
              (long long)T.shape[0], (long long)T.shape[1], (long long)E.shape[0], (long long)E.shape[1]);
        if (T.shape[1] == E.shape[1]) t_close("text values (%lf)", T.data, E.data, dlk_tensor_numel(&E), 5.1e-7, 0);
      }
      dlk_tensor_free(ctx, &E);
      dlk_tensor_free(ctx, &T);
    }
  }
  dlk_glove_text_params gq = {2, 0, 0, 1};
  CHECK_OK(ctx, dlk_glove_save_text(ctx, &gq, &m, v, tmp_path("gq.txt")));
  char *g = read_all(tmp_path("gq.txt"), NULL);
  int fields = 0;
  for (char *c = g; c && *c && *c != '\n'; c++) fields += *c == ' ';
  CHECK(fields == 22 && g && !strstr(g, "<unk>"), "gradsq text: both rows with biases (%d values), no <unk>", fields);
  free(g);

  t_case = "roundtrip/checkpoint";
  m.epoch = 3;
  dlk_glove_checkpoint_info info = {0.05, 0.75, 100, 100, 0, 7, 25, "golden"};
  CHECK_OK(ctx, dlk_glove_checkpoint_save(ctx, &m, &info, tmp_path("c.dlk")));
  dlk_glove_model m2;
  dlk_glove_checkpoint_info i2;
  CHECK_OK(ctx, dlk_glove_checkpoint_load(ctx, tmp_path("c.dlk"), &m2, &i2));
  if (m2.params.data) {
    double *a = model_host(ctx, &m.params), *b = model_host(ctx, &m2.params);
    double *c = model_host(ctx, &m.gradsq), *d = model_host(ctx, &m2.gradsq);
    size_t bytes = 2 * 1194 * 11 * sizeof(double);
    CHECK(memcmp(a, b, bytes) == 0 && memcmp(c, d, bytes) == 0, "W and G identical");
    CHECK(m2.epoch == 3 && m2.vocab_size == 1194 && m2.dim == 10, "header");
    CHECK(i2.seed == 7 && i2.total_epochs == 25 && i2.eta == 0.05 && strcmp(i2.note, "golden") == 0, "options");
    free(a), free(b), free(c), free(d);
    dlk_glove_model_free(ctx, &m2);
  }
  dlk_glove_model_free(ctx, &m);
  dlk_glove_vocab_free(ctx, v);
}

/* 3 epochs straight == 1 epoch, checkpoint, load, 2 epochs: bit for bit. */
static void test_resume(dlk_context *ctx) {
  t_case = "checkpoint/resume";
  dlk_glove_records_params rp = {1194, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &rp, golden("cooccurrence.shuf.bin"), &r));
  if (!r) return;
  CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", 0));
  dlk_glove_train_params p = train_defaults(ctx, 1);
  dlk_glove_model a, b;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 7, &a));
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 1194, 10, DLK_F64, 7, &b));
  dlk_glove_epoch_result res;
  double cost_a[3], cost_b[3];
  for (int e = 0; e < 3; e++) {
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &a, r, &res));
    cost_a[e] = res.cost;
  }
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &b, r, &res));
  cost_b[0] = res.cost;
  CHECK_OK(ctx, dlk_glove_checkpoint_save(ctx, &b, NULL, tmp_path("resume.dlk")));
  dlk_glove_model_free(ctx, &b);
  CHECK_OK(ctx, dlk_glove_checkpoint_load(ctx, tmp_path("resume.dlk"), &b, NULL));
  CHECK(b.epoch == 1, "epoch 1 in the checkpoint");
  for (int e = 1; e < 3 && b.params.data; e++) {
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &b, r, &res));
    cost_b[e] = res.cost;
  }
  if (b.params.data) {
    double *wa = model_host(ctx, &a.params), *wb = model_host(ctx, &b.params);
    double *ga = model_host(ctx, &a.gradsq), *gb = model_host(ctx, &b.gradsq);
    size_t bytes = 2 * 1194 * 11 * sizeof(double);
    CHECK(memcmp(wa, wb, bytes) == 0 && memcmp(ga, gb, bytes) == 0, "resumed run == straight run, bit for bit");
    CHECK(cost_a[2] == cost_b[2] && cost_a[1] == cost_b[1] && b.epoch == 3, "same costs");
    free(wa), free(wb), free(ga), free(gb);
  }
  dlk_force_variant(ctx, "glove_epoch", -1);
  dlk_glove_model_free(ctx, &a);
  dlk_glove_model_free(ctx, &b);
  dlk_glove_records_free(ctx, r);
}

/* ---- bad input ---- */

typedef struct fail_after {
  size_t budget;
} fail_after;
/* A full disk: the first `budget` bytes are written, then every write fails (ENOSPC). */
static size_t full_disk_fwrite(const void *p, size_t size, size_t n, FILE *f, void *user) {
  fail_after *fa = user;
  size_t bytes = size * n;
  if (bytes <= fa->budget) {
    fa->budget -= bytes;
    return fwrite(p, size, n, f);
  }
  size_t part = fa->budget;
  fa->budget = 0;
  if (part) fwrite(p, 1, part, f);
  errno = ENOSPC;
  return part / (size ? size : 1);
}

static void write_recs(const char *path, const dlk_glove_record *r, int n) { write_all(path, r, (size_t)n * sizeof *r); }

static void test_bad_input(dlk_context *ctx) {
  const int64_t V = 10;
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_glove_records *r = NULL;
  dlk_glove_record *rr = NULL;
  int64_t rn;

  t_case = "bad/records";
  dlk_glove_record good[3] = {{1, 2, 1.0}, {3, 4, 2.5}, {10, 10, 0.5}};
  write_recs(tmp_path("good.bin"), good, 3);
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &rp, tmp_path("good.bin"), &r));
  dlk_glove_records_free(ctx, r);
  r = NULL;
  write_all(tmp_path("trunc.bin"), good, 40); /* 2.5 records */
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_records_open(ctx, &rp, tmp_path("trunc.bin"), &r));
  CHECK(r == NULL, "no handle on error");
  CHECK(strstr(dlk_context_last_error(ctx), "multiple of 16") != NULL, "message: %s", dlk_context_last_error(ctx));
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_records_read(ctx, tmp_path("trunc.bin"), &rr, &rn));
  /* Misaligned: the same bytes shifted by 4 read ids from the wrong fields. */
  char shifted[52] = {0};
  memcpy(shifted + 4, good, 48);
  write_all(tmp_path("shift.bin"), shifted, 48);
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_glove_records_open(ctx, &rp, tmp_path("shift.bin"), &r));
  struct {
    dlk_glove_record rec;
    dlk_status want;
    const char *name;
  } bad[] = {{{0, 1, 1.0}, DLK_ERR_OUT_OF_RANGE, "id 0"},
             {{-3, 1, 1.0}, DLK_ERR_OUT_OF_RANGE, "negative id"},
             {{1, 11, 1.0}, DLK_ERR_OUT_OF_RANGE, "id V+1"},
             {{1, 2, NAN}, DLK_ERR_NOT_FINITE, "NaN count"},
             {{1, 2, INFINITY}, DLK_ERR_NOT_FINITE, "inf count"},
             {{1, 2, -1.0}, DLK_ERR_OUT_OF_RANGE, "negative count"},
             {{1, 2, 0.0}, DLK_ERR_OUT_OF_RANGE, "zero count"}};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    t_case = bad[k].name;
    dlk_glove_record recs[3] = {good[0], bad[k].rec, good[1]};
    write_recs(tmp_path("bad.bin"), recs, 3);
    CHECK_STATUS(ctx, bad[k].want, dlk_glove_records_open(ctx, &rp, tmp_path("bad.bin"), &r));
    CHECK(strstr(dlk_context_last_error(ctx), "record 1") != NULL, "%s: message names the record: %s", bad[k].name,
          dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, bad[k].want, dlk_glove_records_from_host(ctx, &rp, recs, 3, &r));
    /* Streaming mode checks too. */
    dlk_glove_records_params sp = {V, 1, 1};
    CHECK_STATUS(ctx, bad[k].want, dlk_glove_records_open(ctx, &sp, tmp_path("bad.bin"), &r));
  }

  t_case = "bad/model files";
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 4, DLK_F64, 1, &m));
  double *before = model_host(ctx, &m.params);
  /* A params file for another vocabulary size (the vocab disagrees with the vectors). */
  double junk[2 * 11 * 5];
  for (int i = 0; i < 2 * 11 * 5; i++) junk[i] = 0.25;
  write_all(tmp_path("p11.bin"), junk, sizeof junk);
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_model_load_params(ctx, &m, tmp_path("p11.bin")));
  CHECK(strstr(dlk_context_last_error(ctx), "disagrees") != NULL, "message: %s", dlk_context_last_error(ctx));
  junk[7] = NAN;
  write_all(tmp_path("pnan.bin"), junk, 2 * 10 * 5 * sizeof(double));
  CHECK_STATUS(ctx, DLK_ERR_NOT_FINITE, dlk_glove_model_load_params(ctx, &m, tmp_path("pnan.bin")));
  junk[7] = 0.0;
  write_all(tmp_path("g0.bin"), junk, 2 * 10 * 5 * sizeof(double));
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_glove_model_load_gradsq(ctx, &m, tmp_path("g0.bin")));
  double *after = model_host(ctx, &m.params);
  CHECK(memcmp(before, after, 2 * 10 * 5 * sizeof(double)) == 0, "model untouched by failed loads");
  free(after);
  /* Records checked against another V than the model's. */
  dlk_glove_records_params rp9 = {9, 0, 0};
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp9, good, 2, &r));
  dlk_glove_train_params tp = train_defaults(ctx, 1);
  CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_glove_train_epoch(ctx, &tp, &m, r, NULL));
  dlk_glove_records_free(ctx, r);
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, good, 3, &r));
  dlk_glove_train_params badp = tp;
  badp.eta = NAN;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &badp, &m, r, NULL));
  badp = tp;
  badp.x_max = 0;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &badp, &m, r, NULL));
  after = model_host(ctx, &m.params);
  CHECK(memcmp(before, after, 2 * 10 * 5 * sizeof(double)) == 0 && m.epoch == 0, "model untouched by refused epochs");
  free(after);
  dlk_glove_records_free(ctx, r);
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_model_create(ctx, 0, 4, DLK_F64, 1, &m));
  CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_glove_model_create(ctx, 5, 4, DLK_I32, 1, &m));

  t_case = "bad/vocab files";
  const char *vbad[][2] = {{"a 5\nb 4\na 3\n", "duplicate"}, {"a 5\nb\n", "no count"},
                           {"a 5\nb -4\n", "negative"},     {"", "no words"},
                           {"a 5\n<unk> 4\n", "<unk>"},      {"a 5\n\nb 4\n", "empty word"},
                           {"a 5x\n", "not a non-negative integer"}};
  for (size_t k = 0; k < sizeof vbad / sizeof *vbad; k++) {
    write_all(tmp_path("badv.txt"), vbad[k][0], strlen(vbad[k][0]));
    dlk_glove_vocab *bv = NULL;
    CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_vocab_load(ctx, tmp_path("badv.txt"), &bv));
    CHECK(strstr(dlk_context_last_error(ctx), vbad[k][1]) != NULL, "vocab \"%s\": %s", vbad[k][1], dlk_context_last_error(ctx));
  }

  t_case = "bad/vectors vs vocab";
  write_all(tmp_path("v3.txt"), "a 5\nb 4\nc 3\n", 12);
  dlk_glove_vocab *v3 = NULL;
  CHECK_OK(ctx, dlk_glove_vocab_load(ctx, tmp_path("v3.txt"), &v3));
  const char *vecs[][2] = {{"a 1 2\nb 3 4\nc 5 6\nd 7 8\n", "not in the vocabulary"},
                           {"a 1 2\nb 3 4\n", "no row for"},
                           {"a 1 2\nb 3 4 5\nc 5 6\n", "values"},
                           {"a 1 2\nb 3 x\nc 5 6\n", "not a finite number"},
                           {"a 1 2\nb 3 4\nb 3 4\nc 1 1\n", "twice"}};
  for (size_t k = 0; k < sizeof vecs / sizeof *vecs; k++) {
    write_all(tmp_path("vec.txt"), vecs[k][0], strlen(vecs[k][0]));
    dlk_tensor T = {0};
    CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_vectors_load_text(ctx, tmp_path("vec.txt"), v3, &T));
    CHECK(strstr(dlk_context_last_error(ctx), vecs[k][1]) != NULL && T.data == NULL, "vectors \"%s\": %s", vecs[k][1],
          dlk_context_last_error(ctx));
  }
  write_all(tmp_path("vec.txt"), "3 2\na 1 2\nb 3 4\nc 5 6\n<unk> 0 0\n", 32);
  dlk_tensor T;
  CHECK_OK(ctx, dlk_glove_vectors_load_text(ctx, tmp_path("vec.txt"), v3, &T));
  CHECK(T.data && T.shape[0] == 3 && T.shape[1] == 2 && ((double *)T.data)[5] == 6, "header and <unk> skipped");
  dlk_tensor_free(ctx, &T);
  /* Text output needs a vocabulary of the model's size. */
  CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_glove_save_text(ctx, NULL, &m, v3, tmp_path("x.txt")));
  dlk_glove_vocab_free(ctx, v3);

  t_case = "bad/full disk";
  /* A good checkpoint, then saves that run out of space at several points: each fails
     with DLK_ERR_IO and leaves the good file byte for byte, and no temporary file. */
  CHECK_OK(ctx, dlk_glove_checkpoint_save(ctx, &m, NULL, tmp_path("good.dlk")));
  size_t good_len;
  char *good_bytes = read_all(tmp_path("good.dlk"), &good_len);
  dlk_glove_model m2;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 4, DLK_F64, 99, &m2));
  m2.epoch = 5;
  size_t budgets[] = {0, 10, 400, good_len - 8, good_len - 1};
  for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
    fail_after fa = {budgets[k]};
    dlk_glove_writer w = {full_disk_fwrite, &fa};
    CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_checkpoint_save_with(ctx, &m2, NULL, tmp_path("good.dlk"), &w));
    CHECK(strstr(dlk_context_last_error(ctx), "No space") != NULL, "message: %s", dlk_context_last_error(ctx));
    size_t now_len;
    char *now = read_all(tmp_path("good.dlk"), &now_len);
    CHECK(now && now_len == good_len && memcmp(now, good_bytes, good_len) == 0, "budget %zu: the good checkpoint survives",
          budgets[k]);
    free(now);
    CHECK(access(tmp_path("good.dlk.tmp"), F_OK) != 0, "no temporary file left");
    fa.budget = budgets[k];
    if (budgets[k] < 2 * 10 * 5 * sizeof(double)) /* the params file is 800 bytes */
      CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_model_save_with(ctx, &m2, false, tmp_path("p.bin"), &w));
  }
  free(good_bytes);
  dlk_glove_model lm;
  CHECK_OK(ctx, dlk_glove_checkpoint_load(ctx, tmp_path("good.dlk"), &lm, NULL));
  CHECK(lm.epoch == 0, "the good checkpoint loads");
  dlk_glove_model_free(ctx, &lm);
  CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_checkpoint_save(ctx, &m2, NULL, "/nonexistent-dir/x.dlk"));

  t_case = "bad/checkpoint";
  char *ck = read_all(tmp_path("good.dlk"), &good_len);
  ck[good_len / 2] ^= 0x40;
  write_all(tmp_path("flip.dlk"), ck, good_len);
  memset(&lm, 0x5a, sizeof lm);
  dlk_glove_model untouched = lm;
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_checkpoint_load(ctx, tmp_path("flip.dlk"), &lm, NULL));
  CHECK(strstr(dlk_context_last_error(ctx), "checksum") != NULL, "flipped bit: %s", dlk_context_last_error(ctx));
  CHECK(memcmp(&lm, &untouched, sizeof lm) == 0, "output untouched on error");
  write_all(tmp_path("short.dlk"), ck, good_len - 9);
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_checkpoint_load(ctx, tmp_path("short.dlk"), &lm, NULL));
  write_all(tmp_path("magic.dlk"), "not a checkpoint at all, not at all", 35);
  CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_glove_checkpoint_load(ctx, tmp_path("magic.dlk"), &lm, NULL));
  free(ck);
  free(before);
  dlk_glove_model_free(ctx, &m2);
  dlk_glove_model_free(ctx, &m);
}

/* ---- evaluation ---- */

/* Brute-force analogy answer from the definition. */
static int32_t brute_analogy(const double *E, int64_t V, int64_t D, int32_t a, int32_t b, int32_t c) {
  double *n = malloc((size_t)(V * D) * sizeof *n);
  for (int64_t r = 0; r < V; r++) {
    double s = 0;
    for (int64_t k = 0; k < D; k++) s += E[r * D + k] * E[r * D + k];
    for (int64_t k = 0; k < D; k++) n[r * D + k] = E[r * D + k] / sqrt(s);
  }
  int32_t best = -1;
  double bv = -INFINITY;
  for (int64_t r = 0; r < V; r++) {
    if (r == a || r == b || r == c) continue;
    double s = 0;
    for (int64_t k = 0; k < D; k++) s += n[r * D + k] * (n[b * D + k] - n[a * D + k] + n[c * D + k]);
    if (s > bv) bv = s, best = (int32_t)r;
  }
  free(n);
  return best;
}

static void test_analogy_brute(dlk_context *ctx) {
  t_case = "analogy/brute force";
  t_seed(77);
  int64_t V = 300, D = 16;
  double *E = malloc((size_t)(V * D) * sizeof *E);
  for (int64_t i = 0; i < V * D; i++) E[i] = t_uniform(-1, 1);
  dlk_tensor t;
  int64_t shape[2] = {V, D};
  CHECK_OK(ctx, dlk_tensor_init(ctx, &t, E, DLK_F64, (dlk_device){DLK_CPU, 0}, 2, shape));
  int64_t nq = 250;
  int32_t *a = malloc(nq * sizeof *a), *b = malloc(nq * sizeof *b), *c = malloc(nq * sizeof *c), *p = malloc(nq * sizeof *p);
  for (int64_t q = 0; q < nq; q++) a[q] = (int32_t)t_uniform(0, V), b[q] = (int32_t)t_uniform(0, V), c[q] = (int32_t)t_uniform(0, V);
  dlk_glove_analogy_params ap = {37, 0};
  CHECK_OK(ctx, dlk_glove_analogy_predict(ctx, &ap, &t, a, b, c, nq, p));
  int bad = 0;
  for (int64_t q = 0; q < nq; q++) bad += p[q] != brute_analogy(E, V, D, a[q], b[q], c[q]);
  CHECK(bad == 0, "%d of %lld predictions differ from the brute force", bad, (long long)nq);
  /* Neighbours. */
  int32_t ids[5];
  double sims[5];
  CHECK_OK(ctx, dlk_glove_neighbours(ctx, &t, 17, 5, ids, sims));
  double *sim = malloc(V * sizeof *sim);
  double n17 = 0;
  for (int64_t k = 0; k < D; k++) n17 += E[17 * D + k] * E[17 * D + k];
  for (int64_t r = 0; r < V; r++) {
    double s = 0, nr = 0;
    for (int64_t k = 0; k < D; k++) s += E[r * D + k] * E[17 * D + k], nr += E[r * D + k] * E[r * D + k];
    sim[r] = r == 17 ? -INFINITY : s / sqrt(nr * n17);
  }
  for (int k = 0; k < 5; k++) {
    int64_t best = 0;
    for (int64_t r = 1; r < V; r++)
      if (sim[r] > sim[best]) best = r;
    CHECK(ids[k] == best && fabs(sims[k] - sim[best]) < 1e-12, "neighbour %d: %d (%.6f), brute %lld (%.6f)", k, ids[k],
          sims[k], (long long)best, sim[best]);
    sim[best] = -INFINITY;
  }
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_glove_neighbours(ctx, &t, V, 5, ids, sims));
  a[3] = (int32_t)V;
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_glove_analogy_predict(ctx, &ap, &t, a, b, c, nq, p));
  free(sim), free(a), free(b), free(c), free(p), free(E);
}

/* A synthetic language with planted structure: words x{i}_{g} carry an identity i and a
   gender g; two-word lines pair the two genders of one identity (40%), two identities of
   one gender (40%), or two random words. Then log co-occurrence ~ u_i + v_g, training
   must lower the cost every epoch and learn x_i_0 : x_i_1 :: x_j_0 : x_j_1. */
static void test_synthetic(dlk_context *ctx) {
  t_case = "synthetic";
  t_seed(2024);
  const int N = 24;
  size_t cap = 4u << 20, o = 0;
  char *text = malloc(cap);
  for (int s = 0; s < 60000; s++) {
    double u = t_uniform(0, 1);
    int i = (int)t_uniform(0, N), j = (int)t_uniform(0, N), g = (int)t_uniform(0, 2), h = g;
    if (u < 0.4) j = i, g = 0, h = 1;
    else if (u >= 0.8) h = (int)t_uniform(0, 2);
    if (t_uniform(0, 1) < 0.5) {
      int t = i;
      i = j, j = t, t = g, g = h, h = t;
    }
    o += (size_t)snprintf(text + o, cap - o, "x%d_%d x%d_%d\n", i, g, j, h);
  }
  dlk_glove_vocab *v = NULL;
  CHECK_OK(ctx, vocab_from_text(ctx, text, o, 0, NULL, &v));
  if (!v) return;
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  dlk_glove_cooccur_params cp = cooc_defaults(ctx);
  cp.window = 3;
  cp.temp_prefix = tmp_path("syn");
  CHECK_OK(ctx, cooccur_text(ctx, &cp, v, text, o, 0, tmp_path("syn.bin"), NULL));
  dlk_glove_shuffle_params sp = shuf_defaults(ctx);
  sp.seed = 5;
  sp.temp_prefix = tmp_path("synt");
  CHECK_OK(ctx, dlk_glove_shuffle_file(ctx, &sp, tmp_path("syn.bin"), tmp_path("syn.shuf.bin"), NULL, NULL));
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &rp, tmp_path("syn.shuf.bin"), &r));
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, V, 16, DLK_F64, 3, &m));
  /* One thread (the reference, records in order): the curve and the accuracy are then
     the same on every run, whatever else the machine is doing. Hogwild's own checks are
     in test_hogwild_stream. */
  dlk_glove_train_params tp = train_defaults(ctx, 1);
  tp.x_max = 10;
  double prev = INFINITY;
  int falls = 0;
  for (int e = 0; e < 30 && r; e++) {
    dlk_glove_epoch_result res;
    CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &tp, &m, r, &res));
    falls += res.cost < prev;
    prev = res.cost;
  }
  CHECK(falls >= 28, "cost fell in %d of 30 epochs (last %.5f)", falls, prev);
  dlk_tensor E;
  CHECK_OK(ctx, dlk_glove_embeddings(ctx, &m, 2, &E));
  /* Questions i0 i1 j0 j1, through the file-based evaluation in the tool's layout. */
  char qdir[1100];
  snprintf(qdir, sizeof qdir, "%s", tmp_path("questions"));
  mkdir(qdir, 0777);
  static const char *names[DLK_GLOVE_ANALOGY_FILES] = {
      "capital-common-countries.txt", "capital-world.txt", "currency.txt", "city-in-state.txt",
      "family.txt", "gram1-adjective-to-adverb.txt", "gram2-opposite.txt", "gram3-comparative.txt",
      "gram4-superlative.txt", "gram5-present-participle.txt", "gram6-nationality-adjective.txt",
      "gram7-past-tense.txt", "gram8-plural.txt", "gram9-plural-verbs.txt"};
  int nq = 0;
  for (int f = 0; f < DLK_GLOVE_ANALOGY_FILES; f++) {
    char path[1300], buf[8192];
    size_t bo = 0;
    snprintf(path, sizeof path, "%s/%s", qdir, names[f]);
    for (int k = 0; k < 20; k++) {
      int i = (f * 20 + k) % N, j = (f * 7 + k * 5 + 1) % N;
      if (j == i) j = (j + 1) % N;
      if (f == 0 && k == 0) bo += (size_t)snprintf(buf + bo, sizeof buf - bo, "x%d_0 unknownword x%d_0 x%d_1\n", i, j, j);
      else bo += (size_t)snprintf(buf + bo, sizeof buf - bo, "x%d_0 x%d_1 x%d_0 x%d_1\n", i, i, j, j), nq++;
    }
    write_all(path, buf, bo);
  }
  dlk_glove_analogy_result res;
  CHECK_OK(ctx, dlk_glove_analogy_eval(ctx, NULL, &E, v, qdir, &res));
  CHECK(res.all_total == 280 && res.all_seen == nq && res.sem_seen == 99 && res.syn_seen == 180,
        "seen %lld of %lld (sem %lld syn %lld)", (long long)res.all_seen, (long long)res.all_total,
        (long long)res.sem_seen, (long long)res.syn_seen);
  double acc = res.all_seen ? (double)res.all_correct / res.all_seen : 0;
  CHECK(acc >= 0.9, "planted analogies: accuracy %.3f (%lld/%lld) below 0.9", acc, (long long)res.all_correct,
        (long long)res.all_seen);
  printf("synthetic corpus: final cost %.5f, analogy accuracy %.1f%%\n", prev, 100 * acc);
  CHECK_STATUS(ctx, DLK_ERR_IO, dlk_glove_analogy_eval(ctx, NULL, &E, v, tmp_path("nowhere"), &res));
  dlk_tensor_free(ctx, &E);
  dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, r);
  dlk_glove_vocab_free(ctx, v);
  free(text);
}

/* The real question set, when present: counts and predictions against the brute force
   on the tool's own vectors.003.txt. */
static void test_eval_data(dlk_context *ctx) {
  t_case = "analogy/question set";
  const char *dir = getenv("DLK_GLOVE_EVAL_DIR");
  if (!dir || !*dir) dir = "/work/shared/data/glove-eval";
  char probe[1200];
  snprintf(probe, sizeof probe, "%s/family.txt", dir);
  if (access(probe, R_OK) != 0) {
    printf("analogy question set not found at %s (set DLK_GLOVE_EVAL_DIR): question-set cases skipped\n", dir);
    return;
  }
  dlk_glove_vocab *v = golden_vocab(ctx);
  dlk_tensor E;
  CHECK_OK(ctx, dlk_glove_vectors_load_text(ctx, golden("vectors.003.txt"), v, &E));
  if (!E.data) return;
  dlk_glove_analogy_result res;
  CHECK_OK(ctx, dlk_glove_analogy_eval(ctx, NULL, &E, v, dir, &res));
  CHECK(res.all_total == 19544, "19544 questions, read %lld", (long long)res.all_total);
  /* Independent count of the questions whose words are all in the vocabulary, and the
     brute-force answers of the family file. */
  snprintf(probe, sizeof probe, "%s/family.txt", dir);
  FILE *f = fopen(probe, "r");
  char line[512];
  int64_t seen = 0, correct = 0;
  while (f && fgets(line, sizeof line, f)) {
    char w[4][128];
    if (sscanf(line, "%127s %127s %127s %127s", w[0], w[1], w[2], w[3]) != 4) continue;
    int64_t id[4];
    bool all = true;
    for (int k = 0; k < 4; k++) dlk_glove_vocab_find(ctx, v, w[k], &id[k]), all = all && id[k];
    if (!all) continue;
    seen++;
    correct += brute_analogy(E.data, E.shape[0], E.shape[1], (int32_t)id[0] - 1, (int32_t)id[1] - 1, (int32_t)id[2] - 1) ==
               id[3] - 1;
  }
  if (f) fclose(f);
  CHECK(res.seen[4] == seen && res.correct[4] == correct, "family: seen %lld correct %lld, brute %lld %lld",
        (long long)res.seen[4], (long long)res.correct[4], (long long)seen, (long long)correct);
  printf("question set on the golden vectors: seen %lld/%lld, accuracy %.2f%%\n", (long long)res.all_seen,
         (long long)res.all_total, res.all_seen ? 100.0 * res.all_correct / res.all_seen : 0.0);
  dlk_tensor_free(ctx, &E);
  dlk_glove_vocab_free(ctx, v);
}

/* ---- API conformance: status + context first, NULL objects free as DLK_OK ---- */

static void test_api_conformance(dlk_context *ctx) {
  t_case = "api/defaults and frees";
  dlk_glove_train_params tp;
  memset(&tp, 0x5a, sizeof tp);
  CHECK_OK(ctx, dlk_glove_train_defaults(ctx, &tp));
  CHECK(tp.eta == 0.05 && tp.alpha == 0.75 && tp.x_max == 100.0 && tp.grad_clip == 100.0 && tp.keras == 0 &&
            tp.threads == 0 && tp.cancel == NULL && tp.progress == NULL && tp.progress_user == NULL,
        "train defaults: eta %g alpha %g x_max %g clip %g", tp.eta, tp.alpha, tp.x_max, tp.grad_clip);
  dlk_glove_cooccur_params cp;
  memset(&cp, 0x5a, sizeof cp);
  CHECK_OK(ctx, dlk_glove_cooccur_defaults(ctx, &cp));
  CHECK(cp.window == 15 && cp.symmetric == 1 && cp.distance_weighting == 1 && cp.memory_gb == 3.0 &&
            cp.max_product == 0 && cp.overflow_length == 0 && cp.temp_prefix == NULL &&
            cp.max_temp_files == 64 && cp.method == 0 && cp.no_tool_quirks == 0,
        "cooccur defaults: window %d memory %g", cp.window, cp.memory_gb);
  dlk_glove_shuffle_params sp;
  memset(&sp, 0x5a, sizeof sp);
  CHECK_OK(ctx, dlk_glove_shuffle_defaults(ctx, &sp));
  CHECK(sp.seed == 0 && sp.memory_gb == 2.0 && sp.array_size == 0 && sp.temp_prefix == NULL,
        "shuffle defaults: memory %g", sp.memory_gb);
  /* NULL out: a status and a message, nothing else. */
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_glove_train_defaults(ctx, NULL));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_glove_cooccur_defaults(ctx, NULL));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_glove_shuffle_defaults(ctx, NULL));
  /* NULL context: DLK_ERR_NULL_POINTER (no message: there is no context to hold it). */
  CHECK(dlk_glove_train_defaults(NULL, &tp) == DLK_ERR_NULL_POINTER, "train defaults without a context");
  CHECK(dlk_glove_cooccur_defaults(NULL, &cp) == DLK_ERR_NULL_POINTER, "cooccur defaults without a context");
  CHECK(dlk_glove_shuffle_defaults(NULL, &sp) == DLK_ERR_NULL_POINTER, "shuffle defaults without a context");
  /* Freeing nothing is fine; a context is still required. */
  CHECK_OK(ctx, dlk_glove_vocab_free(ctx, NULL));
  CHECK_OK(ctx, dlk_glove_cooccur_free(ctx, NULL));
  CHECK_OK(ctx, dlk_glove_records_free(ctx, NULL));
  CHECK(dlk_glove_vocab_free(NULL, NULL) == DLK_ERR_NULL_POINTER, "vocab free without a context");
  CHECK(dlk_glove_cooccur_free(NULL, NULL) == DLK_ERR_NULL_POINTER, "cooccur free without a context");
  CHECK(dlk_glove_records_free(NULL, NULL) == DLK_ERR_NULL_POINTER, "records free without a context");
  /* And real objects free with DLK_OK. */
  dlk_glove_vocab *v = vocab_abcd(ctx);
  dlk_glove_cooccur *c = NULL;
  if (v) CHECK_OK(ctx, dlk_glove_cooccur_create(ctx, &cp, v, &c));
  CHECK_OK(ctx, dlk_glove_cooccur_free(ctx, c));
  /* overflow_length INT64_MAX ("never spill") overflowed the buffer's growth cap on the
     first token (found by tests/fuzz/fuzz_api.c): limits far from int64's end. */
  if (v) {
    dlk_glove_cooccur_params big = cp;
    big.method = 1;
    big.overflow_length = INT64_MAX;
    c = (dlk_glove_cooccur *)&big;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_cooccur_create(ctx, &big, v, &c));
    CHECK(c == (dlk_glove_cooccur *)&big, "refused create set *out");
    big.overflow_length = (int64_t)1 << 40;
    c = NULL;
    CHECK_OK(ctx, dlk_glove_cooccur_create(ctx, &big, v, &c));
    CHECK_OK(ctx, dlk_glove_cooccur_add_text(ctx, c, "a b c d a b\n", 12));
    CHECK_OK(ctx, dlk_glove_cooccur_free(ctx, c));
  }
  dlk_glove_record rec = {1, 2, 3.0};
  dlk_glove_records_params rp = {4, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, &rec, 1, &r));
  CHECK_OK(ctx, dlk_glove_records_free(ctx, r));
  CHECK_OK(ctx, dlk_glove_vocab_free(ctx, v));
}

/* ---- dispatch: listing, forcing, explain ---- */

static void test_dispatch(dlk_context *ctx) {
  t_case = "dispatch";
  const char *ops[] = {"glove_epoch", "glove_cooccur_chunk", "glove_topk"};
  for (int k = 0; k < 3; k++) {
    dlk_variant_info info[16];
    int n = 0;
    CHECK_OK(ctx, dlk_op_variants(ctx, ops[k], info, 16, &n));
    CHECK(n >= 1 && info[0].id == 0 && info[0].device == DLK_CPU, "%s: %d variants, first %d", ops[k], n, n ? info[0].id : -1);
  }
  dlk_variant_info info[16];
  int n = 0;
  dlk_op_variants(ctx, "glove_epoch", info, 16, &n);
  CHECK(n >= 2 && info[1].id == 20 && strcmp(info[1].name, "cpu_hogwild") == 0, "hogwild listed");
  dlk_glove_model m;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 10, 4, DLK_F64, 1, &m));
  dlk_glove_record rec = {1, 2, 3.0};
  dlk_glove_records_params rp = {10, 0, 0};
  dlk_glove_records *r = NULL;
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, &rec, 1, &r));
  dlk_glove_train_params p = train_defaults(ctx, 4);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, dlk_glove_train_epoch(ctx, &p, &m, r, NULL));
  const char *rep = NULL;
  dlk_explain_report(ctx, &rep);
  CHECK(rep && strstr(rep, "cpu_hogwild") && strstr(rep, "cpu_ref") && m.epoch == 0, "explain: %s", rep ? rep : "");
  /* Explain mode runs nothing, so it answers nothing: analogy_predict once copied the
     unwritten top-k buffer into pred (found by tests/fuzz/fuzz_api.c). */
  {
    double E[12] = {1, 0, 0, 1, 1, 1, -1, 0, 0, -1, 2, 1};
    dlk_tensor vec;
    CHECK_OK(ctx, dlk_tensor_init(ctx, &vec, E, DLK_F64, (dlk_device){DLK_CPU, 0}, 2, (int64_t[]){6, 2}));
    int32_t qa[2] = {0, 1}, qb[2] = {1, 2}, qc[2] = {2, 3}, pred[2] = {-7, -7};
    int32_t ids[2] = {-7, -7};
    double sims[2] = {-7, -7};
    CHECK_OK(ctx, dlk_glove_analogy_predict(ctx, NULL, &vec, qa, qb, qc, 2, pred));
    CHECK(pred[0] == -7 && pred[1] == -7, "explain mode wrote predictions %d %d", pred[0], pred[1]);
    CHECK_OK(ctx, dlk_glove_neighbours(ctx, &vec, 0, 2, ids, sims));
    CHECK(ids[0] == -7 && ids[1] == -7 && sims[0] == -7, "explain mode wrote neighbours");
  }
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  /* A model struct the caller filled in by hand: its sizes are checked before 2V(d+1) is
     computed (dim INT_MAX made d + 1 overflow; found by fuzz_api). */
  {
    dlk_glove_model h = m;
    const int64_t epoch = m.epoch;
    dlk_glove_epoch_result res;
    memset(&res, 0x5A, sizeof res);
    unsigned char before[sizeof res];
    memcpy(before, &res, sizeof res);
    h.dim = INT32_MAX;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    h = m, h.vocab_size = INT64_MAX;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    h = m, h.dim = -1;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_embeddings(ctx, &h, 1, &(dlk_tensor){0}));
    h = m, h.gradsq = h.params; /* one buffer for both */
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    h = m, h.params.strides[0] = 1; /* not contiguous */
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    h = m, h.params.data = (char *)h.params.data + 1; /* misaligned */
    CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    h = m, h.epoch = INT64_MAX; /* the increment overflowed (fuzz_api) */
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    CHECK(h.epoch == INT64_MAX, "refused epoch changed the count");
    h = m, h.epoch = -3;
    CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_glove_train_epoch(ctx, &p, &h, r, &res));
    CHECK(m.epoch == epoch && memcmp(&res, before, sizeof res) == 0, "refused epochs changed something");
  }
  /* An F32 model: the CPU variants say why not. */
  dlk_glove_model mf;
  CHECK_OK(ctx, dlk_glove_model_create(ctx, 10, 4, DLK_F32, 1, &mf));
  CHECK_STATUS(ctx, DLK_ERR_NOT_SUPPORTED, dlk_glove_train_epoch(ctx, &p, &mf, r, NULL));
  CHECK(strstr(dlk_context_last_error(ctx), "F64") != NULL, "reason: %s", dlk_context_last_error(ctx));
  dlk_glove_model_free(ctx, &mf);
  dlk_glove_records_free(ctx, r);
  dlk_glove_model_free(ctx, &m);
}

static void run_cpu_cases(dlk_context *ctx) {
  test_rand();
  test_golden_vocab(ctx);
  test_golden_cooccur(ctx);
  test_golden_shuffle(ctx);
  test_golden_init(ctx);
  test_golden_train(ctx);
  test_vocab_hand(ctx);
  test_long_line(ctx);
  test_cooccur_hand(ctx);
  test_cooccur_random(ctx);
  test_chunk_op(ctx, false);
  test_shuffle(ctx);
  test_single_records(ctx);
  test_hogwild_stream(ctx);
  test_cancel_mid(ctx);
  test_stream_reader(ctx);
  test_roundtrips(ctx);
  test_resume(ctx);
  test_bad_input(ctx);
  test_analogy_brute(ctx);
  test_synthetic(ctx);
  test_eval_data(ctx);
  test_dispatch(ctx);
  test_api_conformance(ctx);
}

/* ---- GPU: every GPU variant against the CPU reference ----
   Thresholds as the GPU kernels' design predicts them (kernels/glove/epoch.cu), so that
   a kernel that is merely close shows up: det (F64) is the sequential rule in record
   order, only the dot-product order and exp/log instead of pow differ: 1e-10 from cpu_ref
   after an epoch, bits identical run to run; det F32: the cost within 1e-4; warp: the cost
   within 0.5%, parameters within 2% rms; sort_ordered: the CPU's bytes; sort_rbk: keys
   equal, sums within 1e-12; topk: the same ids and values as cpu_ref. DLK_TEST_QUICK=1
   (compute-sanitizer runs) keeps every kind of case but few and small. */

static bool gpu_quick;

static int gpu_rows(dlk_context *ctx, const char *op, dlk_variant_info *info, int cap) {
  int n = 0, k = 0;
  dlk_variant_info all[32];
  dlk_op_variants(ctx, op, all, 32, &n);
  for (int i = 0; i < n && i < 32; i++)
    if (all[i].device == DLK_CUDA && k < cap) info[k++] = all[i];
  return k;
}

static bool is_det_row(const dlk_variant_info *v) { return v->id == 2 || strstr(v->name, "det") != NULL; }

/* Root-mean-square difference relative to the reference's rms. */
static double rel_rms(const double *a, const double *ref, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; i++) d += (a[i] - ref[i]) * (a[i] - ref[i]), r += ref[i] * ref[i];
  return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Records for the epoch cases: the golden shuffled file, or (quick) its first 4096. */
static dlk_glove_record *gpu_epoch_records(int64_t *n) {
  dlk_glove_record *recs = NULL;
  size_t len = 0;
  char *b = read_all(golden("cooccurrence.shuf.bin"), &len);
  CHECK(b != NULL && len % 16 == 0 && len > 0, "golden records readable");
  if (!b) return NULL;
  recs = (dlk_glove_record *)b;
  *n = (int64_t)(len / 16);
  if (gpu_quick && *n > 4096) *n = 4096;
  return recs;
}

/* One epoch with variant `id` forced (or the heuristic when id < 0). */
static dlk_status gpu_epoch(dlk_context *ctx, int id, dlk_glove_model *m, const dlk_glove_records *r,
                            dlk_glove_epoch_result *res) {
  dlk_force_variant(ctx, "glove_epoch", id);
  dlk_glove_train_params p = train_defaults(ctx, 1);
  memset(res, 0, sizeof *res);
  dlk_status s = dlk_glove_train_epoch(ctx, &p, m, r, res);
  dlk_force_variant(ctx, "glove_epoch", -1);
  return s;
}

/* Hogwild's band around cpu_ref, (cost, parameters rms): 0.5% and 2% on a GPU, whose
   blocks run side by side so that the records go roughly in file order. The emulated device
   (t_emulated_device) runs a grid's blocks one after another on each of its cores, so the
   records go in another order (block-major), and one epoch over the 4096 quick records
   moves with the order: 7 emulated runs (issue 9) gave cost +3.2% to +7.2% and parameters
   0.24-0.25 rms off cpu_ref (streamed: up to ~6% and 0.13); over the whole golden set the
   same kernel lands at +0.7-0.8% and 0.06-0.14, i.e. it is the order, not the kernel. There
   the band is 12% and 0.35; the exact checks (one record, records sharing no row: every
   variant to 1e-12) hold the arithmetic on every device. */
static void hog_band(dlk_context *ctx, double *cost, double *params) {
  const int emu = t_emulated_device(ctx);
  *cost = emu ? 0.12 : 5e-3;
  *params = emu ? 0.35 : 0.02;
}

static void gpu_epoch_cases(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *ep, int nep) {
  const int64_t V = 1194;
  const int d = 10;
  const int64_t nv = 2 * V * (d + 1);
  int64_t n = 0;
  dlk_glove_record *recs = gpu_epoch_records(&n);
  if (!recs) return;
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_glove_records *rc = NULL, *rg = NULL;
  CHECK_OK(cpu, dlk_glove_records_from_host(cpu, &rp, recs, n, &rc));
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, recs, n, &rg));
  if (!rc || !rg) {
    dlk_glove_records_free(cpu, rc), dlk_glove_records_free(ctx, rg), free(recs);
    return;
  }
  /* The reference: cpu_ref from the tool's initial vectors (-seed 7). */
  dlk_glove_model mc;
  dlk_glove_epoch_result rref;
  CHECK_OK(cpu, dlk_glove_model_create(cpu, V, d, DLK_F64, 7, &mc));
  CHECK_OK(cpu, gpu_epoch(cpu, 0, &mc, rc, &rref));
  double *wref = model_host(cpu, &mc.params), *gref = model_host(cpu, &mc.gradsq);
  /* The tool's own epoch 1 (only for the whole golden set). */
  int64_t ntool = 0;
  double *wtool = gpu_quick ? NULL : read_doubles(golden("vectors.001.bin"), &ntool);
  for (int k = 0; k < nep; k++) {
    for (int dt = 0; dt < 2; dt++) {
      char name[96];
      snprintf(name, sizeof name, "gpu/glove_epoch/%d %s/%s", ep[k].id, ep[k].name, dt ? "F32" : "F64");
      t_case = name;
      dlk_dtype dtype = dt ? DLK_F32 : DLK_F64;
      dlk_glove_model mg, mg2;
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dtype, 7, &mg));
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dtype, 7, &mg2));
      dlk_glove_epoch_result r1, r2;
      dlk_status s = gpu_epoch(ctx, ep[k].id, &mg, rg, &r1);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        printf("%s: not supported (%s)\n", name, dlk_context_last_error(ctx));
        dlk_glove_model_free(ctx, &mg), dlk_glove_model_free(ctx, &mg2);
        continue;
      }
      CHECK(s == DLK_OK, "epoch: %s", dlk_context_last_error(ctx));
      CHECK(r1.variant == ep[k].id && r1.records == n && r1.skipped == 0, "variant %d records %lld skipped %lld",
            r1.variant, (long long)r1.records, (long long)r1.skipped);
      double *w = model_host(ctx, &mg.params), *g = model_host(ctx, &mg.gradsq);
      double rc_rel = fabs(r1.cost - rref.cost) / rref.cost;
      if (is_det_row(&ep[k])) {
        if (dt == 0) {
          /* The sequential rule: only summation order and exp/log vs pow differ. */
          CHECK(rc_rel <= 1e-10, "det F64 cost %.17g vs cpu_ref %.17g (rel %.3g)", r1.cost, rref.cost, rc_rel);
          t_close("det F64 params vs cpu_ref", w, wref, nv, 1e-10, 1e-10);
          t_close("det F64 gradsq vs cpu_ref", g, gref, nv, 1e-10, 1e-10);
          if (wtool && ntool == nv) t_close("det F64 params vs the tool's vectors.001.bin", w, wtool, nv, 1e-10, 1e-10);
        } else {
          CHECK(rc_rel <= 1e-4, "det F32 cost %.9g vs cpu_ref %.9g (rel %.3g > 1e-4)", r1.cost, rref.cost, rc_rel);
          double e = rel_rms(w, wref, nv);
          CHECK(e <= 1e-3, "det F32 params within 1e-3 rms of cpu_ref (%.3g)", e);
        }
        /* The same bits twice (parameters, accumulators, cost). */
        CHECK_OK(ctx, gpu_epoch(ctx, ep[k].id, &mg2, rg, &r2));
        double *w2 = model_host(ctx, &mg2.params), *g2 = model_host(ctx, &mg2.gradsq);
        CHECK(memcmp(w, w2, (size_t)nv * sizeof *w) == 0 && memcmp(g, g2, (size_t)nv * sizeof *g) == 0 &&
                  r1.cost == r2.cost,
              "deterministic: identical bits on a second run (cost %.17g vs %.17g)", r1.cost, r2.cost);
        free(w2), free(g2);
      } else {
        /* Hogwild: races change the bits, not the result (hog_band). */
        double band_cost, band_params;
        hog_band(ctx, &band_cost, &band_params);
        CHECK(rc_rel <= band_cost, "cost %.9g vs cpu_ref %.9g (rel %.3g > %g)", r1.cost, rref.cost, rc_rel, band_cost);
        double e = rel_rms(w, wref, nv);
        CHECK(e <= band_params, "parameters within %g rms of cpu_ref (%.4f)", band_params, e);
      }
      free(w), free(g);
      dlk_glove_model_free(ctx, &mg), dlk_glove_model_free(ctx, &mg2);
    }
  }
  /* A single record, and a batch of records that share no row (any order is the same
     order), in F64: every variant equals the reference to 1e-12. */
  dlk_glove_record one[1] = {{5, 9, 3.5}}, batch[300];
  for (int i = 0; i < 300; i++)
    batch[i] = (dlk_glove_record){i + 1, (int32_t)V - i, 0.5 + (i % 17) * 7.25};
  struct {
    const char *name;
    const dlk_glove_record *r;
    int64_t n;
  } exact[] = {{"single record", one, 1}, {"300 records sharing no row", batch, gpu_quick ? 40 : 300}};
  for (int c = 0; c < 2; c++) {
    dlk_glove_records *xc = NULL, *xg = NULL;
    CHECK_OK(cpu, dlk_glove_records_from_host(cpu, &rp, exact[c].r, exact[c].n, &xc));
    CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, exact[c].r, exact[c].n, &xg));
    dlk_glove_model a;
    dlk_glove_epoch_result ra, rb;
    CHECK_OK(cpu, dlk_glove_model_create(cpu, V, d, DLK_F64, 11, &a));
    CHECK_OK(cpu, gpu_epoch(cpu, 0, &a, xc, &ra));
    double *x = model_host(cpu, &a.params), *xg2 = model_host(cpu, &a.gradsq);
    for (int k = 0; k < nep && xg; k++) {
      char name[128];
      snprintf(name, sizeof name, "gpu/glove_epoch/%d %s/%s", ep[k].id, ep[k].name, exact[c].name);
      t_case = name;
      dlk_glove_model b;
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, 11, &b));
      if (gpu_epoch(ctx, ep[k].id, &b, xg, &rb) == DLK_OK) {
        double *y = model_host(ctx, &b.params), *yg = model_host(ctx, &b.gradsq);
        t_close("params", y, x, nv, 1e-12, 1e-12);
        t_close("gradsq", yg, xg2, nv, 1e-12, 1e-12);
        CHECK(fabs(rb.cost - ra.cost) <= 1e-12 * ra.cost, "cost %.17g vs %.17g", rb.cost, ra.cost);
        free(y), free(yg);
      } else {
        CHECK(0, "epoch failed: %s", dlk_context_last_error(ctx));
      }
      dlk_glove_model_free(ctx, &b);
    }
    free(x), free(xg2);
    dlk_glove_model_free(cpu, &a);
    dlk_glove_records_free(cpu, xc), dlk_glove_records_free(ctx, xg);
  }
  /* Deterministic mode: warp refuses with the reason, AUTO picks the deterministic row. */
  t_case = "gpu/glove_epoch/deterministic mode";
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
  for (int k = 0; k < nep; k++) {
    dlk_glove_model mg;
    dlk_glove_epoch_result r1;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, 7, &mg));
    dlk_status s = gpu_epoch(ctx, ep[k].id, &mg, rg, &r1);
    if (is_det_row(&ep[k])) {
      CHECK(s == DLK_OK, "det in deterministic mode: %s", dlk_context_last_error(ctx));
    } else {
      CHECK(s == DLK_ERR_NOT_SUPPORTED && strstr(dlk_context_last_error(ctx), "not deterministic"),
            "%s forced in deterministic mode: %s (%s)", ep[k].name, dlk_status_string(s), dlk_context_last_error(ctx));
      CHECK(mg.epoch == 0, "a refused epoch is not counted");
    }
    dlk_glove_model_free(ctx, &mg);
  }
  {
    dlk_glove_model mg;
    dlk_glove_epoch_result r1;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, 7, &mg));
    CHECK_OK(ctx, gpu_epoch(ctx, -1, &mg, rg, &r1));
    bool det = false;
    for (int k = 0; k < nep; k++) det = det || (ep[k].id == r1.variant && is_det_row(&ep[k]));
    CHECK(det, "deterministic mode: AUTO ran variant %d", r1.variant);
    dlk_glove_model_free(ctx, &mg);
  }
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
  /* Bad ids that reach a kernel (the host checks bypassed through the op itself): a
     status, the host outputs untouched, and a chunk of only bad records leaves the
     model's bits as they were. */
  int64_t sh[1] = {3 * 16};
  dlk_tensor bad;
  dlk_glove_record badr[3] = {{(int32_t)V + 1, 1, 2.0}, {0, 5, 2.0}, {3, -4, 2.0}};
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &bad, DLK_U8, 1, sh));
  CHECK_OK(ctx, dlk_tensor_write(ctx, &bad, badr, sizeof badr));
  for (int k = 0; k < nep && bad.data; k++) {
    for (int dt = 0; dt < 2; dt++) {
      char name[96];
      snprintf(name, sizeof name, "gpu/glove_epoch/%d %s/%s/bad ids", ep[k].id, ep[k].name, dt ? "F32" : "F64");
      t_case = name;
      dlk_glove_model mg;
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dt ? DLK_F32 : DLK_F64, 7, &mg));
      double *before = model_host(ctx, &mg.params), *gbefore = model_host(ctx, &mg.gradsq);
      double cost = -12345.0;
      int64_t skipped = -777;
      dlk_glove_epoch_args a;
      memset(&a, 0, sizeof a);
      a.dtype = mg.params.dtype, a.params = mg.params.data, a.gradsq = mg.gradsq.data;
      a.vocab_size = V, a.dim = d, a.records = bad.data, a.count = 3;
      a.eta = 0.05, a.alpha = 0.75, a.x_max = 100, a.grad_clip = 100, a.threads = 1;
      a.cost_sum = &cost, a.skipped = &skipped;
      CHECK_OK(ctx, dlk_force_variant(ctx, "glove_epoch", ep[k].id));
      CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_dispatch(ctx, &dlk_glove_epoch_op, &a));
      dlk_force_variant(ctx, "glove_epoch", -1);
      CHECK(cost == -12345.0 && skipped == -777, "outputs untouched (cost %g skipped %lld)", cost, (long long)skipped);
      double *after = model_host(ctx, &mg.params), *gafter = model_host(ctx, &mg.gradsq);
      CHECK(memcmp(before, after, (size_t)nv * sizeof *after) == 0 &&
                memcmp(gbefore, gafter, (size_t)nv * sizeof *gafter) == 0,
            "no row touched by records outside [1, V]");
      free(before), free(after), free(gbefore), free(gafter);
      dlk_glove_model_free(ctx, &mg);
    }
  }
  dlk_tensor_free(ctx, &bad);
  free(wref), free(gref), free(wtool);
  dlk_glove_model_free(cpu, &mc);
  dlk_glove_records_free(cpu, rc), dlk_glove_records_free(ctx, rg);
  free(recs);
}

/* Every thread mapping of the epoch kernels (the cases above use d = 10 only): row
   lengths d + 1 that pick each (group size, values per lane, 16-byte vectors or not) of
   warp and each register count of det, the three-pass loop for long rows included, F64
   and F32. A single record and records that share no row (any order is the reference's
   order) match cpu_ref (F64 1e-12, F32 1e-5 rms); det on records that share rows all the
   time is the sequential rule (F64 1e-9, F32 1e-4 rms) and gives the same bits twice. */
static void gpu_epoch_dim_cases(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *ep, int nep) {
  const int64_t V = 64;
  const int dims[] = {1, 2, 3, 7, 15, 20, 31, 50, 63, 100, 127, 200, 255, 300, 511, 600};
  const int64_t nconf = gpu_quick ? 300 : 2000;
  dlk_glove_record one[1] = {{5, 9, 3.5}}, apart[64];
  dlk_glove_record *conf = malloc((size_t)nconf * sizeof *conf);
  for (int i = 0; i < 64; i++) apart[i] = (dlk_glove_record){i + 1, (int32_t)V - i, 0.5 + (i % 17) * 7.25};
  for (int64_t i = 0; i < nconf; i++)
    conf[i] = (dlk_glove_record){(int32_t)(1 + (i * 7) % 13), (int32_t)(1 + (i * 5) % 11), 0.5 + (double)(i % 23) * 6.1};
  struct {
    const char *name;
    const dlk_glove_record *r;
    int64_t n;
    bool shared;
  } sets[] = {{"single record", one, 1, false}, {"64 records sharing no row", apart, 64, false},
              {"records sharing rows", conf, nconf, true}};
  dlk_glove_records_params rp = {V, 0, 0};
  for (int si = 0; si < 3; si++) {
    dlk_glove_records *xc = NULL, *xg = NULL;
    CHECK_OK(cpu, dlk_glove_records_from_host(cpu, &rp, sets[si].r, sets[si].n, &xc));
    CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, sets[si].r, sets[si].n, &xg));
    for (size_t di = 0; di < sizeof dims / sizeof dims[0] && xc && xg; di++) {
      const int d = dims[di];
      const int64_t nv = 2 * V * (d + 1);
      dlk_glove_model a;
      dlk_glove_epoch_result ra;
      CHECK_OK(cpu, dlk_glove_model_create(cpu, V, d, DLK_F64, 11, &a));
      CHECK_OK(cpu, gpu_epoch(cpu, 0, &a, xc, &ra));
      double *wref = model_host(cpu, &a.params), *gref = model_host(cpu, &a.gradsq);
      for (int k = 0; k < nep; k++) {
        if (sets[si].shared && !is_det_row(&ep[k])) continue; /* Hogwild races there */
        for (int dt = 0; dt < 2; dt++) {
          char name[160];
          snprintf(name, sizeof name, "gpu/glove_epoch/%d %s/%s/d %d/%s", ep[k].id, ep[k].name, dt ? "F32" : "F64",
                   d, sets[si].name);
          t_case = name;
          dlk_glove_model b;
          dlk_glove_epoch_result rb;
          CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dt ? DLK_F32 : DLK_F64, 11, &b));
          dlk_status s = gpu_epoch(ctx, ep[k].id, &b, xg, &rb);
          CHECK(s == DLK_OK, "epoch: %s", dlk_context_last_error(ctx));
          if (s != DLK_OK) {
            dlk_glove_model_free(ctx, &b);
            continue;
          }
          CHECK(rb.skipped == ra.skipped && rb.records == sets[si].n, "skipped %lld (ref %lld), records %lld",
                (long long)rb.skipped, (long long)ra.skipped, (long long)rb.records);
          double *w = model_host(ctx, &b.params), *g = model_host(ctx, &b.gradsq);
          double crel = fabs(rb.cost - ra.cost) / ra.cost;
          if (dt == 0) {
            double tol = sets[si].shared ? 1e-9 : 1e-12;
            t_close("params", w, wref, nv, tol, tol);
            t_close("gradsq", g, gref, nv, tol, tol);
            CHECK(crel <= tol, "cost %.17g vs cpu_ref %.17g (rel %.3g)", rb.cost, ra.cost, crel);
          } else {
            /* The cost gets 1e-6 absolute too: a record whose diff is near 0 has a tiny
               cost that f32 inputs change by a large relative amount. */
            double tol = sets[si].shared ? 1e-4 : 1e-5, ew = rel_rms(w, wref, nv), eg = rel_rms(g, gref, nv);
            CHECK(ew <= tol && eg <= tol && fabs(rb.cost - ra.cost) <= tol * ra.cost + 1e-6,
                  "F32 vs cpu_ref: params %.3g, gradsq %.3g rms, cost %.9g vs %.9g (tol %g)", ew, eg, rb.cost, ra.cost,
                  tol);
          }
          if (is_det_row(&ep[k])) {
            dlk_glove_model b2;
            dlk_glove_epoch_result rb2;
            CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dt ? DLK_F32 : DLK_F64, 11, &b2));
            CHECK_OK(ctx, gpu_epoch(ctx, ep[k].id, &b2, xg, &rb2));
            double *w2 = model_host(ctx, &b2.params), *g2 = model_host(ctx, &b2.gradsq);
            CHECK(memcmp(w, w2, (size_t)nv * sizeof *w) == 0 && memcmp(g, g2, (size_t)nv * sizeof *g) == 0 &&
                      rb.cost == rb2.cost,
                  "deterministic: identical bits on a second run");
            free(w2), free(g2);
            dlk_glove_model_free(ctx, &b2);
          }
          free(w), free(g);
          dlk_glove_model_free(ctx, &b);
        }
      }
      free(wref), free(gref);
      dlk_glove_model_free(cpu, &a);
    }
    dlk_glove_records_free(cpu, xc), dlk_glove_records_free(ctx, xg);
  }
  free(conf);
}

/* Streamed records on the GPU (reader thread, pinned buffers, uploads on a second stream):
   det streamed in the resident run's pieces gives the resident run's bits; det streamed
   in small chunks is still the sequential rule (1e-10 from cpu_ref); warp streamed keeps
   the cost within 0.5%; a bad record in a late chunk stops the epoch with the record's
   index and no epoch counted. */
static void gpu_stream_cases(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *ep, int nep) {
  const int64_t V = 1194;
  const int d = 10;
  const int64_t nv = 2 * V * (d + 1);
  int64_t n = 0;
  dlk_glove_record *recs = gpu_epoch_records(&n);
  if (!recs) return;
  write_all(tmp_path("gpu_stream.bin"), recs, (size_t)n * sizeof *recs);
  /* A resident epoch runs in pieces of max(n / 64, 64k) records (capped by the chunk). */
  int64_t piece = n / 64 < 65536 ? 65536 : n / 64;
  dlk_glove_records_params rp = {V, 0, 0}, sp_same = {V, 1, piece}, sp_small = {V, 1, gpu_quick ? 1000 : 7000};
  dlk_glove_records *res = NULL, *same = NULL, *small = NULL, *rc = NULL;
  CHECK_OK(ctx, dlk_glove_records_from_host(ctx, &rp, recs, n, &res));
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp_same, tmp_path("gpu_stream.bin"), &same));
  CHECK_OK(ctx, dlk_glove_records_open(ctx, &sp_small, tmp_path("gpu_stream.bin"), &small));
  CHECK_OK(cpu, dlk_glove_records_from_host(cpu, &rp, recs, n, &rc));
  int resident = 1;
  if (small) dlk_glove_records_info(ctx, small, NULL, &resident);
  CHECK(!resident, "max_resident_bytes 1 streams on the GPU");
  dlk_glove_model mc;
  dlk_glove_epoch_result rref;
  CHECK_OK(cpu, dlk_glove_model_create(cpu, V, d, DLK_F64, 7, &mc));
  if (rc) CHECK_OK(cpu, gpu_epoch(cpu, 0, &mc, rc, &rref));
  double *wref = model_host(cpu, &mc.params);
  for (int k = 0; k < nep && res && same && small && rc; k++) {
    for (int dt = 0; dt < 2; dt++) {
      char name[96];
      snprintf(name, sizeof name, "gpu/streamed/%d %s/%s", ep[k].id, ep[k].name, dt ? "F32" : "F64");
      t_case = name;
      dlk_dtype dtype = dt ? DLK_F32 : DLK_F64;
      dlk_glove_model a, b, c;
      dlk_glove_epoch_result ra, rb, rcs;
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dtype, 7, &a));
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dtype, 7, &b));
      CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, dtype, 7, &c));
      dlk_status s = gpu_epoch(ctx, ep[k].id, &a, res, &ra);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        dlk_glove_model_free(ctx, &a), dlk_glove_model_free(ctx, &b), dlk_glove_model_free(ctx, &c);
        continue;
      }
      CHECK(s == DLK_OK, "resident: %s", dlk_context_last_error(ctx));
      CHECK_OK(ctx, gpu_epoch(ctx, ep[k].id, &b, same, &rb));
      CHECK_OK(ctx, gpu_epoch(ctx, ep[k].id, &c, small, &rcs));
      CHECK(rb.records == n && rcs.records == n && b.epoch == 1 && c.epoch == 1, "streamed epochs counted");
      double *wa = model_host(ctx, &a.params), *wb = model_host(ctx, &b.params), *wc = model_host(ctx, &c.params);
      if (is_det_row(&ep[k])) {
        CHECK(memcmp(wa, wb, (size_t)nv * sizeof *wa) == 0 && ra.cost == rb.cost,
              "det: streamed in the resident pieces == resident, bit for bit");
        if (dt == 0) t_close("det F64 streamed in small chunks vs cpu_ref", wc, wref, nv, 1e-10, 1e-10);
        double tol = dt == 0 ? 1e-10 : 1e-4;
        CHECK(fabs(rcs.cost - rref.cost) <= tol * rref.cost, "small chunks: cost %.17g vs cpu_ref %.17g", rcs.cost,
              rref.cost);
      } else {
        double band_cost, band_params;
        hog_band(ctx, &band_cost, &band_params);
        CHECK(fabs(rb.cost - rref.cost) <= band_cost * rref.cost && fabs(rcs.cost - rref.cost) <= band_cost * rref.cost,
              "warp streamed: cost %.9g / %.9g vs cpu_ref %.9g", rb.cost, rcs.cost, rref.cost);
        double e = rel_rms(wc, wref, nv);
        CHECK(e <= band_params, "warp streamed: parameters within %g rms (%.4f)", band_params, e);
      }
      free(wa), free(wb), free(wc);
      dlk_glove_model_free(ctx, &a), dlk_glove_model_free(ctx, &b), dlk_glove_model_free(ctx, &c);
    }
  }
  /* A record broken after opening, in the last chunk: the epoch stops there. */
  t_case = "gpu/streamed/bad record";
  if (small && n > 10) {
    dlk_glove_record *mod = malloc((size_t)n * sizeof *mod);
    memcpy(mod, recs, (size_t)n * sizeof *mod);
    mod[n - 3].w2 = (int32_t)V + 5;
    write_all(tmp_path("gpu_stream.bin"), mod, (size_t)n * sizeof *mod);
    free(mod);
    dlk_glove_model m;
    dlk_glove_epoch_result r;
    CHECK_OK(ctx, dlk_glove_model_create(ctx, V, d, DLK_F32, 7, &m));
    char want[64];
    snprintf(want, sizeof want, "record %lld", (long long)(n - 3));
    CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, gpu_epoch(ctx, -1, &m, small, &r));
    CHECK(strstr(dlk_context_last_error(ctx), want) != NULL && m.epoch == 0, "stopped at %s: %s", want,
          dlk_context_last_error(ctx));
    write_all(tmp_path("gpu_stream.bin"), recs, (size_t)n * sizeof *recs);
    CHECK_OK(ctx, gpu_epoch(ctx, -1, &m, small, &r));
    CHECK(m.epoch == 1, "the good file trains again");
    dlk_glove_model_free(ctx, &m);
  }
  free(wref);
  dlk_glove_model_free(cpu, &mc);
  dlk_glove_records_free(ctx, res), dlk_glove_records_free(ctx, same), dlk_glove_records_free(ctx, small);
  dlk_glove_records_free(cpu, rc);
  free(recs);
}

/* One chunk through a forced variant; *count = -1 before. */
static dlk_status chunk_run_variant(dlk_context *ctx, int id, const int32_t *ids, int64_t n, int64_t n_prefix,
                                    int64_t V, int window, bool sym, bool dist, dlk_glove_record *out,
                                    int64_t cap, int64_t *count) {
  dlk_force_variant(ctx, "glove_cooccur_chunk", id);
  dlk_glove_cooccur_chunk_args a = {ids, n, n_prefix, V, window, sym, dist, out, cap, count};
  dlk_status s = dlk_dispatch(ctx, &dlk_glove_cooccur_chunk_op, &a);
  dlk_force_variant(ctx, "glove_cooccur_chunk", -1);
  return s;
}

static void gpu_chunk_cases(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *ch, int nch) {
  t_seed(31);
  const int64_t V = gpu_quick ? 50 : 3000;
  const int64_t n = gpu_quick ? 3000 : 200000;
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  for (int64_t i = 0; i < n; i++)
    ids[i] = t_uniform(0, 1) < 0.04 ? 0 : (int32_t)(pow(t_uniform(0, 1), 2.5) * (double)V) + 1;
  struct {
    int64_t n_prefix;
    int window;
    bool sym, dist;
    bool breaks_at_ends;
  } cfg[] = {{5, 5, true, true, true},   {0, 15, true, true, false}, {3, 3, false, true, true},
             {0, 1, true, false, false}, {10, 10, true, false, true}, {0, 15, false, false, true}};
  int ncfg = gpu_quick ? 2 : 6;
  for (int c = 0; c < ncfg; c++) {
    /* The prefix holds no line break; with breaks at both ends the targets start and end
       with one. */
    for (int64_t i = 0; i < cfg[c].n_prefix; i++) ids[i] = (int32_t)(i % V) + 1;
    if (cfg[c].breaks_at_ends) ids[cfg[c].n_prefix] = 0, ids[n - 1] = 0;
    else ids[cfg[c].n_prefix] = 1, ids[n - 1] = 2;
    int64_t cap = (n - cfg[c].n_prefix) * cfg[c].window * (cfg[c].sym ? 2 : 1);
    dlk_glove_record *want = malloc((size_t)cap * sizeof *want), *got = malloc((size_t)cap * sizeof *got);
    int64_t nw = -1;
    CHECK_OK(cpu, chunk_run_variant(cpu, 0, ids, n, cfg[c].n_prefix, V, cfg[c].window, cfg[c].sym, cfg[c].dist,
                                    want, cap, &nw));
    for (int k = 0; k < nch; k++) {
      char name[160];
      snprintf(name, sizeof name, "gpu/cooccur_chunk/%d %s/prefix %lld window %d sym %d dist %d%s", ch[k].id,
               ch[k].name, (long long)cfg[c].n_prefix, cfg[c].window, cfg[c].sym, cfg[c].dist,
               cfg[c].breaks_at_ends ? " breaks at both ends" : "");
      t_case = name;
      int64_t ng = -1;
      memset(got, 0, (size_t)cap * sizeof *got);
      dlk_status s = chunk_run_variant(ctx, ch[k].id, ids, n, cfg[c].n_prefix, V, cfg[c].window, cfg[c].sym,
                                       cfg[c].dist, got, cap, &ng);
      CHECK(s == DLK_OK, "chunk: %s", dlk_context_last_error(ctx));
      if (s != DLK_OK) continue;
      if (strstr(ch[k].name, "ordered")) {
        /* The reference's order of generation and summation: the same bytes. */
        CHECK(ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0,
              "sort_ordered: %lld records, the reference %lld, bytes %s", (long long)ng, (long long)nw,
              ng == nw ? "differ" : "-");
      } else {
        recs_equal(name, got, ng, want, nw, 1e-12);
      }
    }
    free(want), free(got);
  }
  /* Deterministic mode: sort_rbk refuses, AUTO runs a row that gives the reference's bytes. */
  t_case = "gpu/cooccur_chunk/deterministic mode";
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
  {
    int64_t cap = n * 5 * 2, nw = -1, ng = -1;
    for (int64_t i = 0; i < 5; i++) ids[i] = (int32_t)i + 1;
    dlk_glove_record *want = malloc((size_t)cap * sizeof *want), *got = malloc((size_t)cap * sizeof *got);
    CHECK_OK(cpu, chunk_run_variant(cpu, 0, ids, n, 5, V, 5, true, true, want, cap, &nw));
    for (int k = 0; k < nch; k++) {
      if (!strstr(ch[k].name, "rbk")) continue;
      dlk_status s = chunk_run_variant(ctx, ch[k].id, ids, n, 5, V, 5, true, true, got, cap, &ng);
      CHECK(s == DLK_ERR_NOT_SUPPORTED && strstr(dlk_context_last_error(ctx), "not deterministic"),
            "sort_rbk forced in deterministic mode: %s (%s)", dlk_status_string(s), dlk_context_last_error(ctx));
    }
    ng = -1;
    CHECK_OK(ctx, chunk_run_variant(ctx, -1, ids, n, 5, V, 5, true, true, got, cap, &ng));
    CHECK(ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0, "AUTO in deterministic mode: the reference's bytes");
    free(want), free(got);
  }
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
  /* Bad ids: an id > V, then a negative one: DLK_ERR_OUT_OF_RANGE, out and the count untouched. */
  for (int b = 0; b < 2; b++) {
    int64_t m = gpu_quick ? 500 : 5000, cap = m * 5 * 2;
    int32_t *bid = malloc((size_t)m * sizeof *bid);
    for (int64_t i = 0; i < m; i++) bid[i] = (int32_t)(i % V) + 1;
    bid[m / 2] = b == 0 ? (int32_t)V + 1 : -3;
    dlk_glove_record *out = malloc((size_t)cap * sizeof *out), *orig = malloc((size_t)cap * sizeof *orig);
    memset(out, 0xA5, (size_t)cap * sizeof *out);
    memcpy(orig, out, (size_t)cap * sizeof *out);
    for (int k = 0; k < nch; k++) {
      char name[96];
      snprintf(name, sizeof name, "gpu/cooccur_chunk/%d %s/bad id %s", ch[k].id, ch[k].name, b ? "-3" : "V+1");
      t_case = name;
      int64_t cnt = -42;
      CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, chunk_run_variant(ctx, ch[k].id, bid, m, 0, V, 5, true, true, out, cap, &cnt));
      CHECK(cnt == -42 && memcmp(out, orig, (size_t)cap * sizeof *out) == 0, "outputs untouched (count %lld)",
            (long long)cnt);
    }
    free(bid), free(out), free(orig);
  }
  /* Ids past 65535 (the cases above stay below 3001): pair keys of 2 x 18 bits, wider
     than 32, with frequent pairs among the largest ids (V, V - 1, V - 2). */
  {
    const int64_t VB = 200000, nb = gpu_quick ? 2000 : 50000, np = 3;
    int32_t *bi = malloc((size_t)nb * sizeof *bi);
    for (int64_t i = 0; i < nb; i++)
      bi[i] = t_uniform(0, 1) < 0.03 ? 0 : (int32_t)(pow(t_uniform(0, 1), 4.0) * (double)VB) + 1;
    for (int64_t i = 0; i + 3 < nb; i += 97) bi[i] = (int32_t)VB, bi[i + 1] = (int32_t)VB - 1, bi[i + 2] = (int32_t)VB - 2;
    for (int64_t i = 0; i < np; i++) bi[i] = (int32_t)(VB - i);
    int64_t cap = (nb - np) * 7 * 2, nw = -1;
    dlk_glove_record *want = malloc((size_t)cap * sizeof *want), *got = malloc((size_t)cap * sizeof *got);
    CHECK_OK(cpu, chunk_run_variant(cpu, 0, bi, nb, np, VB, 7, true, true, want, cap, &nw));
    for (int k = 0; k < nch; k++) {
      char name[96];
      snprintf(name, sizeof name, "gpu/cooccur_chunk/%d %s/V %lld (keys over 32 bits)", ch[k].id, ch[k].name,
               (long long)VB);
      t_case = name;
      int64_t ng = -1;
      dlk_status s = chunk_run_variant(ctx, ch[k].id, bi, nb, np, VB, 7, true, true, got, cap, &ng);
      CHECK(s == DLK_OK, "chunk: %s", dlk_context_last_error(ctx));
      if (s != DLK_OK) continue;
      if (strstr(ch[k].name, "ordered"))
        CHECK(ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0, "sort_ordered: %lld records (ref %lld), "
              "the reference's bytes", (long long)ng, (long long)nw);
      else
        recs_equal(name, got, ng, want, nw, 1e-12);
    }
    free(bi), free(want), free(got);
  }
  free(ids);
}

/* Scores with ties (multiples of 0.25), NaN and -inf; exclusion lists with valid rows,
   -1, rows past the end and other negatives. */
static void topk_case(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *tk, int ntk, dlk_dtype dt,
                      int64_t rows, int64_t cols, const int *ks, int nks, bool lanes_list) {
  int64_t N = rows * cols;
  double *sd = malloc((size_t)N * sizeof *sd);
  float *sf = malloc((size_t)N * sizeof *sf);
  for (int64_t i = 0; i < N; i++) {
    double u = t_uniform(0, 1);
    double v = floor(t_uniform(-4, 4) * 4) / 4; /* ties */
    if (u < 0.03) v = NAN;
    else if (u < 0.05) v = -INFINITY;
    sd[i] = v, sf[i] = (float)v;
  }
  /* Column 0 all NaN except two rows: most slots stay empty (-1, -inf). */
  for (int64_t r = 0; r < rows; r++) sd[r * cols] = sf[r * cols] = (r == rows / 2 || r == rows - 1) ? 1.0 : NAN;
  const int ne = 5;
  int32_t *ex = malloc((size_t)(cols * ne) * sizeof *ex);
  for (int64_t q = 0; q < cols; q++) {
    ex[q * ne + 0] = (int32_t)(t_uniform(0, 1) * (double)rows);
    ex[q * ne + 1] = -1;
    ex[q * ne + 2] = (int32_t)rows + (int32_t)(q % 3); /* past the end: ignored */
    ex[q * ne + 3] = -7;                              /* another negative: ignored */
    ex[q * ne + 4] = q % 2 ? ex[q * ne + 0] : (int32_t)(rows - 1); /* a duplicate, or the last row */
  }
  int64_t shape[2] = {rows, cols};
  dlk_tensor host, dev;
  CHECK_OK(cpu, dlk_tensor_init(cpu, &host, dt == DLK_F64 ? (void *)sd : (void *)sf, dt, (dlk_device){DLK_CPU, 0}, 2, shape));
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &dev, dt, 2, shape));
  CHECK_OK(ctx, dlk_tensor_write(ctx, &dev, dt == DLK_F64 ? (void *)sd : (void *)sf, (size_t)N * dlk_dtype_size(dt)));
  for (int ki = 0; ki < nks && dev.data; ki++) {
    int k = ks[ki];
    int32_t *ic = malloc((size_t)(cols * k) * sizeof *ic), *ig = malloc((size_t)(cols * k) * sizeof *ig);
    double *vc = malloc((size_t)(cols * k) * sizeof *vc), *vg = malloc((size_t)(cols * k) * sizeof *vg);
    dlk_glove_topk_args ac = {host, ex, ne, k, ic, vc};
    CHECK_OK(cpu, dlk_dispatch(cpu, &dlk_glove_topk_op, &ac));
    for (int t = 0; t < ntk; t++) {
      bool lanes = strstr(tk[t].name, "lanes") != NULL;
      if (lanes != lanes_list) continue;
      char name[160];
      snprintf(name, sizeof name, "gpu/topk/%d %s/%s %lldx%lld k %d", tk[t].id, tk[t].name, dlk_dtype_name(dt),
               (long long)rows, (long long)cols, k);
      t_case = name;
      for (int64_t i = 0; i < cols * k; i++) ig[i] = -99, vg[i] = 99;
      dlk_glove_topk_args ag = {dev, ex, ne, k, ig, vg};
      CHECK_OK(ctx, dlk_force_variant(ctx, "glove_topk", tk[t].id));
      dlk_status s = dlk_dispatch(ctx, &dlk_glove_topk_op, &ag);
      dlk_force_variant(ctx, "glove_topk", -1);
      CHECK(s == DLK_OK, "topk: %s", dlk_context_last_error(ctx));
      if (s != DLK_OK) continue;
      int64_t bad = 0, first = -1;
      for (int64_t i = 0; i < cols * k; i++) {
        bool same = ig[i] == ic[i] && (vg[i] == vc[i] || (isnan(vg[i]) && isnan(vc[i])));
        if (!same && bad++ == 0) first = i;
      }
      CHECK(bad == 0, "%lld of %lld slots differ; first: column %lld slot %lld got (%d, %g) want (%d, %g)",
            (long long)bad, (long long)(cols * k), (long long)(first >= 0 ? first / k : -1),
            (long long)(first >= 0 ? first % k : -1), first >= 0 ? ig[first] : 0, first >= 0 ? vg[first] : 0.0,
            first >= 0 ? ic[first] : 0, first >= 0 ? vc[first] : 0.0);
    }
    free(ic), free(ig), free(vc), free(vg);
  }
  dlk_tensor_free(ctx, &dev);
  free(sd), free(sf), free(ex);
}

static void gpu_topk_cases(dlk_context *ctx, dlk_context *cpu, const dlk_variant_info *tk, int ntk) {
  t_seed(123);
  const int lanes_k[] = {1, 3, 32};
  const int64_t shapes[][2] = {{1000, 1}, {1000, 7}, {3001, 130}, {40, 3}};
  int nshape = gpu_quick ? 2 : 4;
  for (int dt = 0; dt < 2; dt++) {
    dlk_dtype dtype = dt ? DLK_F32 : DLK_F64;
    for (int s = 0; s < nshape; s++) {
      int64_t rows = gpu_quick ? shapes[s][0] / 10 : shapes[s][0], cols = shapes[s][1];
      int sort_k[] = {1, 33, 100, (int)rows + 5};
      topk_case(ctx, cpu, tk, ntk, dtype, rows, cols, lanes_k, gpu_quick ? 2 : 3, true);
      topk_case(ctx, cpu, tk, ntk, dtype, rows, cols, sort_k, 4, false);
    }
  }
}

static void run_gpu_cases(dlk_context *ctx) {
  gpu_quick = getenv("DLK_TEST_QUICK") && atoi(getenv("DLK_TEST_QUICK")) != 0;
  dlk_variant_info ep[16], ch[16], tk[16];
  int nep = gpu_rows(ctx, "glove_epoch", ep, 16), nch = gpu_rows(ctx, "glove_cooccur_chunk", ch, 16),
      ntk = gpu_rows(ctx, "glove_topk", tk, 16);
  if (nep + nch + ntk == 0) {
    printf("test_glove --gpu: no GPU variant of any glove op is registered: skipped\n");
    exit(77);
  }
  dlk_context *cpu = t_cpu_context();
  if (nep) gpu_epoch_cases(ctx, cpu, ep, nep);
  if (nep) gpu_epoch_dim_cases(ctx, cpu, ep, nep);
  if (nep) gpu_stream_cases(ctx, cpu, ep, nep);
  if (nch) gpu_chunk_cases(ctx, cpu, ch, nch);
  if (nch && !gpu_quick) test_chunk_op(ctx, true);
  if (ntk) gpu_topk_cases(ctx, cpu, tk, ntk);
  /* Co-occurrence on the GPU context (chunks) against the CPU's true sums: with the chunk
     sized from the memory budget, and with a small workspace cap that makes the host halve
     its chunks until the rows' workspace fits (many chunks, runs, a merge). */
  int64_t uncapped_chunk = 0;
  for (int capped = 0; capped < 2 && nch; capped++) {
    t_case = capped ? "gpu/cooccur end to end/workspace cap 8 MB" : "gpu/cooccur end to end";
    size_t n;
    char *text = read_all(golden("corpus.txt"), &n);
    if (gpu_quick && text && n > 20000) n = 20000;
    dlk_glove_vocab *v = golden_vocab(cpu);
    dlk_glove_cooccur_params cp = cooc_defaults(ctx);
    cp.window = 5;
    cp.no_tool_quirks = 1;
    cp.temp_prefix = tmp_path("gov");
    dlk_glove_cooccur_stats st;
    memset(&st, 0, sizeof st);
    if (capped) CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, (size_t)8 << 20));
    CHECK_OK(ctx, cooccur_text(ctx, &cp, v, text, n, 0, tmp_path("gc.bin"), &st));
    if (capped) CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 0));
    CHECK(st.used_gpu == 1, "counted on the GPU");
    if (!capped) uncapped_chunk = st.chunk_ids;
    /* The rows' workspace is a few hundred bytes per id: 8 MB holds tens of thousands. */
    if (capped)
      CHECK(st.chunk_ids >= 4096 && st.chunk_ids < uncapped_chunk && st.chunk_ids <= 65536 &&
                (st.chunk_ids > st.in_vocab + st.lines || st.temp_files >= 2),
            "chunks sized to the cap: %lld ids (uncapped %lld) for %lld tokens, %d runs", (long long)st.chunk_ids,
            (long long)uncapped_chunk, (long long)(st.in_vocab + st.lines), st.temp_files);
    CHECK_OK(cpu, cooccur_text(cpu, &cp, v, text, n, 0, tmp_path("cc.bin"), NULL));
    dlk_glove_record *g = NULL, *c = NULL;
    int64_t ng = 0, nc = 0;
    dlk_glove_records_read(cpu, tmp_path("gc.bin"), &g, &ng);
    dlk_glove_records_read(cpu, tmp_path("cc.bin"), &c, &nc);
    if (g && c) recs_equal("GPU vs CPU co-occurrence", g, ng, c, nc, 1e-12);
    free(g), free(c), free(text);
    dlk_glove_vocab_free(ctx, v);
  }
  /* Top-k through the analogy search: predictions agree with the CPU (F32 scores on the
     GPU: near ties may differ, at most 1%). */
  if (ntk) {
    t_case = "gpu/analogy";
    t_seed(77);
    int64_t V = gpu_quick ? 300 : 2000, D = 32, nq = gpu_quick ? 100 : 500;
    double *E = malloc((size_t)(V * D) * sizeof *E);
    for (int64_t i = 0; i < V * D; i++) E[i] = t_uniform(-1, 1);
    dlk_tensor t;
    int64_t shape[2] = {V, D};
    dlk_tensor_init(cpu, &t, E, DLK_F64, (dlk_device){DLK_CPU, 0}, 2, shape);
    int32_t *a = malloc(nq * 4), *b = malloc(nq * 4), *c = malloc(nq * 4), *pc = malloc(nq * 4), *pg = malloc(nq * 4);
    for (int64_t q = 0; q < nq; q++) a[q] = (int32_t)t_uniform(0, V), b[q] = (int32_t)t_uniform(0, V), c[q] = (int32_t)t_uniform(0, V);
    CHECK_OK(cpu, dlk_glove_analogy_predict(cpu, NULL, &t, a, b, c, nq, pc));
    CHECK_OK(ctx, dlk_glove_analogy_predict(ctx, NULL, &t, a, b, c, nq, pg));
    int diff = 0;
    for (int64_t q = 0; q < nq; q++) diff += pc[q] != pg[q];
    CHECK(diff <= nq / 100, "%d of %lld GPU predictions differ from the CPU", diff, (long long)nq);
    free(E), free(a), free(b), free(c), free(pc), free(pg);
  }
  dlk_context_destroy(cpu);
}

/* ====================================================================================== */
/* The variant sweep (tests/sweep.h): every variant of glove_epoch, glove_cooccur_chunk    */
/* and glove_topk against the written-out rules here (CPU) or the CPU reference (--gpu).   */
/* ====================================================================================== */

/* ---- glove_epoch: one pass of AdaGrad over `count` records, params/gradsq [2V, dim+1] ---- */

typedef struct {
  sweep_tags tags;
  int64_t vocab;
  int dim; /* <= 64 (formula_update's scratch) */
  int64_t count;
  int threads; /* CPU Hogwild threads: more than one races (the cases with threads keep a
                  large vocabulary, so that few records share a row at once) */
  bool keras;
} epoch_case;

static dlk_glove_train_params sweep_train_params(const epoch_case *c) {
  dlk_glove_train_params p;
  memset(&p, 0, sizeof p);
  p.eta = 0.05, p.alpha = 0.75, p.x_max = 100, p.grad_clip = 100, p.keras = c->keras;
  return p;
}

/* in: params, gradsq, and the records as their 16 bytes each (U8). */
static void gen_epoch(const void *vc, dlk_dtype dt, sweep_set *in) {
  const epoch_case *c = vc;
  const int64_t n = 2 * c->vocab * (c->dim + 1);
  double *w = sweep_add(in, dt, n), *g = sweep_add(in, dt, n);
  for (int64_t i = 0; i < n; i++) w[i] = (t_uniform(0, 1) - 0.5) / c->dim, g[i] = 1;
  double *bytes = sweep_add(in, DLK_U8, 16 * c->count);
  for (int64_t r = 0; r < c->count; r++) {
    dlk_glove_record rec = {(int32_t)t_uniform(1, (double)c->vocab + 1), (int32_t)t_uniform(1, (double)c->vocab + 1),
                            t_uniform(1, 200)};
    unsigned char b[16];
    memcpy(b, &rec, 16);
    for (int k = 0; k < 16; k++) bytes[16 * r + k] = b[k];
  }
}

/* out: params, gradsq, the cost sum and the skipped count. */
static dlk_status run_epoch(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const epoch_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t shape[2] = {2 * c->vocab, c->dim + 1}, nb = 16 * c->count;
  sweep_tensor *w = sweep_inout(&r, dt, 2, shape, SW_CONTIG, in->a[0].v);
  sweep_tensor *g = sweep_inout(&r, dt, 2, shape, SW_CONTIG, in->a[1].v);
  sweep_tensor *rec = sweep_in(&r, DLK_U8, 1, &nb, SW_CONTIG, in->a[2].v);
  dlk_glove_train_params p = sweep_train_params(c);
  double cost = 0;
  int64_t skipped = 0;
  dlk_glove_epoch_args a = {dt, w->v.data, g->v.data, c->vocab, c->dim, rec->v.data, c->count,
                            p.eta, p.alpha, p.x_max, p.grad_clip, c->keras, c->threads, NULL, &cost, &skipped};
  dlk_status s = DLK_ERR_INTERNAL;
  if (!r.failed) s = dlk_dispatch(ctx, &dlk_glove_epoch_op, &a);
  sweep_end(&r, s, out);
  if (s == DLK_OK) {
    sweep_add(out, DLK_F64, 1)[0] = cost;
    sweep_add(out, DLK_I64, 1)[0] = (double)skipped;
  }
  return s;
}

static void naive_epoch(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const epoch_case *c = vc;
  const int64_t n = 2 * c->vocab * (c->dim + 1);
  double *w = sweep_add(ref, dt, n), *g = sweep_add(ref, dt, n);
  memcpy(w, in->a[0].v, (size_t)n * sizeof *w);
  memcpy(g, in->a[1].v, (size_t)n * sizeof *g);
  dlk_glove_train_params p = sweep_train_params(c);
  double cost = 0;
  int skipped = 0;
  for (int64_t r = 0; r < c->count; r++) {
    unsigned char b[16];
    for (int k = 0; k < 16; k++) b[k] = (unsigned char)in->a[2].v[16 * r + k];
    dlk_glove_record rec;
    memcpy(&rec, b, 16);
    formula_update(w, g, c->vocab, c->dim, rec, &p, &cost, &skipped);
  }
  sweep_add(ref, DLK_F64, 1)[0] = cost;
  sweep_add(ref, DLK_I64, 1)[0] = skipped;
}

/* The exact variants (the reference, the GPU's det, one Hogwild thread) follow the rule in
   record order: within 1e-10 of it (only summation order and exp/log against pow differ).
   The racing ones (Hogwild with several threads, the GPU's warp) change the bits by
   design, and on these small random problems (a few records per row) the order moves the
   parameters a lot and the cost of the epoch by several percent: they are held to that
   cost within 10% (a record skipped or misapplied moves it far more), the same count of
   skipped records, and finite parameters. Their closer checks on the tool's real records
   are test_hogwild_stream (CPU) and gpu_epoch_cases. */
static int compare_epoch(const char *what, const void *vc, int variant, const sweep_set *got, const sweep_set *ref,
                         int tf32) {
  (void)tf32;
  const epoch_case *c = vc;
  CHECK(got->n == 4 && ref->n == 4, "%s: %d outputs, reference %d", what, got->n, ref->n);
  if (got->n != 4 || ref->n != 4) return 0;
  const bool exact = variant == 0 || variant == 2 || (variant == 20 && c->threads <= 1);
  int ok = got->a[3].v[0] == ref->a[3].v[0];
  CHECK(ok, "%s: %g records skipped, reference %g", what, got->a[3].v[0], ref->a[3].v[0]);
  double cost = got->a[2].v[0], want = ref->a[2].v[0], rel = fabs(cost - want) / (want > 0 ? want : 1);
  if (exact) {
    char w[600];
    snprintf(w, sizeof w, "%s: params", what);
    ok = t_close(w, got->a[0].v, ref->a[0].v, ref->a[0].n, 1e-10, 1e-10) && ok;
    snprintf(w, sizeof w, "%s: gradsq", what);
    ok = t_close(w, got->a[1].v, ref->a[1].v, ref->a[1].n, 1e-10, 1e-10) && ok;
    CHECK(rel <= 1e-10, "%s: cost %.17g vs %.17g", what, cost, want);
    return ok && rel <= 1e-10;
  }
  CHECK(rel <= 0.1, "%s: cost %.9g vs %.9g (rel %.3g > 10%%)", what, cost, want, rel);
  int64_t bad = 0;
  for (int i = 0; i < 2; i++)
    for (int64_t k = 0; k < got->a[i].n; k++) bad += !isfinite(got->a[i].v[k]);
  CHECK(bad == 0, "%s: %lld parameters or accumulators not finite", what, (long long)bad);
  return ok && rel <= 0.1 && bad == 0;
}

static const epoch_case epoch_cases[] = {
    {.vocab = 1, .dim = 1, .count = 1, .threads = 1},
    {.vocab = 7, .dim = 5, .count = 50, .threads = 1},
    {.vocab = 1000, .dim = 10, .count = 2000, .threads = 4},
    {.vocab = 20, .dim = 16, .count = 1000, .threads = 1, .keras = true},
    {.vocab = 2000, .dim = 8, .count = 3000, .threads = 3},
    {.vocab = 10, .dim = 4, .count = 0, .threads = 2},
    {.vocab = 4000, .dim = 50, .count = 20000, .threads = 4, .tags.big = true},
};

/* ---- glove_cooccur_chunk: a chunk of token ids (0 = line break) into summed records ---- */

typedef struct {
  sweep_tags tags;
  int64_t vocab, n, n_prefix;
  int window;
  bool symmetric, distance_weighting;
} chunk_case;

static void gen_chunk(const void *vc, dlk_dtype dt, sweep_set *in) {
  (void)dt;
  const chunk_case *c = vc;
  double *ids = sweep_add(in, DLK_I32, c->n);
  for (int64_t i = 0; i < c->n; i++) ids[i] = t_uniform(0, 1) < 0.05 ? 0 : (double)(int32_t)t_uniform(1, (double)c->vocab + 1);
}

/* out: the records' w1 and w2 (I32) and x (F64), in the order given. */
static dlk_status run_chunk(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  (void)dt;
  const chunk_case *c = vc;
  int32_t *ids = malloc((size_t)(c->n > 0 ? c->n : 1) * sizeof *ids);
  for (int64_t i = 0; i < c->n; i++) ids[i] = (int32_t)in->a[0].v[i];
  int64_t cap = (c->n - c->n_prefix) * c->window * (c->symmetric ? 2 : 1) + 1, count = 0;
  dlk_glove_record *recs = malloc((size_t)cap * sizeof *recs);
  dlk_glove_cooccur_chunk_args a = {ids,      c->n, c->n_prefix, c->vocab, c->window, c->symmetric,
                                    c->distance_weighting, recs, cap, &count};
  dlk_status s = dlk_dispatch(ctx, &dlk_glove_cooccur_chunk_op, &a);
  if (s == DLK_OK) {
    double *w1 = sweep_add(out, DLK_I32, count), *w2 = sweep_add(out, DLK_I32, count),
           *x = sweep_add(out, DLK_F64, count);
    for (int64_t i = 0; i < count; i++) w1[i] = recs[i].w1, w2[i] = recs[i].w2, x[i] = recs[i].x;
  }
  free(ids);
  free(recs);
  return s;
}

/* The rule of glove.h written out: every target at t >= n_prefix with each of the `window`
   ids before it on its line, in a dense table, then the nonzero pairs in (w1, w2) order. */
static void naive_chunk(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  (void)dt;
  const chunk_case *c = vc;
  const int64_t V = c->vocab;
  double *t = calloc((size_t)(V * V), sizeof *t);
  const double *ids = in->a[0].v;
  for (int64_t i = c->n_prefix; i < c->n; i++) {
    if (ids[i] == 0) continue;
    for (int64_t k = 1; k <= c->window && i - k >= 0 && ids[i - k] > 0; k++) {
      double w = c->distance_weighting ? 1.0 / (double)k : 1.0;
      int64_t a = (int64_t)ids[i - k] - 1, b = (int64_t)ids[i] - 1;
      t[a * V + b] += w;
      if (c->symmetric) t[b * V + a] += w;
    }
  }
  int64_t m = 0;
  for (int64_t i = 0; i < V * V; i++) m += t[i] != 0;
  double *w1 = sweep_add(ref, DLK_I32, m), *w2 = sweep_add(ref, DLK_I32, m), *x = sweep_add(ref, DLK_F64, m);
  m = 0;
  for (int64_t a = 0; a < V; a++)
    for (int64_t b = 0; b < V; b++)
      if (t[a * V + b] != 0) w1[m] = (double)(a + 1), w2[m] = (double)(b + 1), x[m++] = t[a * V + b];
  free(t);
}

static const chunk_case chunk_cases[] = {
    {.vocab = 1, .n = 1, .window = 1, .symmetric = true, .distance_weighting = true},
    {.vocab = 5, .n = 40, .window = 2, .symmetric = true, .distance_weighting = true},
    {.vocab = 5, .n = 40, .n_prefix = 3, .window = 3},
    {.vocab = 60, .n = 3000, .n_prefix = 15, .window = 15, .symmetric = true, .distance_weighting = true},
    {.vocab = 200, .n = 5000, .window = 10, .distance_weighting = true},
    {.vocab = 9, .n = 0, .window = 5, .symmetric = true},
    {.vocab = 300, .n = 100000, .n_prefix = 15, .window = 15, .symmetric = true, .distance_weighting = true,
     .tags.big = true},
};

/* ---- glove_topk: per column, the k rows with the largest scores, best first ---- */

typedef struct {
  sweep_tags tags;
  int64_t rows, cols;
  int k;
  int n_exclude; /* rows excluded per column (some -1 or past the end: ignored) */
} topk_sweep_case;

/* in: scores (ties at multiples of 0.25, 3% NaN, 2% -inf) and the exclusion lists (I32). */
static void gen_topk(const void *vc, dlk_dtype dt, sweep_set *in) {
  const topk_sweep_case *c = vc;
  double *s = sweep_add(in, dt, c->rows * c->cols);
  for (int64_t i = 0; i < c->rows * c->cols; i++) {
    double u = t_uniform(0, 1), v = floor(t_uniform(-4, 4) * 4) / 4;
    s[i] = u < 0.03 ? NAN : u < 0.05 ? -INFINITY : v;
  }
  double *ex = sweep_add(in, DLK_I32, c->cols * c->n_exclude);
  for (int64_t i = 0; i < c->cols * c->n_exclude; i++)
    ex[i] = i % 3 == 2 ? -1 : (double)(int32_t)t_uniform(0, (double)c->rows + 2);
}

/* out: ids (I32) and values (F64), [cols, k]. */
static dlk_status run_topk(dlk_context *ctx, const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *out) {
  const topk_sweep_case *c = vc;
  sweep_rig r = {.ctx = ctx};
  int64_t shape[2] = {c->rows, c->cols}, nk = c->cols * c->k;
  sweep_tensor *s = sweep_in(&r, dt, 2, shape, SW_CONTIG, in->a[0].v);
  int32_t *ex = malloc((size_t)(c->cols * c->n_exclude + 1) * sizeof *ex), *idx = malloc((size_t)(nk + 1) * sizeof *idx);
  double *val = malloc((size_t)(nk + 1) * sizeof *val);
  for (int64_t i = 0; i < c->cols * c->n_exclude; i++) ex[i] = (int32_t)in->a[1].v[i];
  for (int64_t i = 0; i < nk; i++) idx[i] = -99, val[i] = 99;
  dlk_glove_topk_args a = {s->v, ex, c->n_exclude, c->k, idx, val};
  dlk_status st = DLK_ERR_INTERNAL;
  if (!r.failed) st = dlk_dispatch(ctx, &dlk_glove_topk_op, &a);
  sweep_end(&r, st, out);
  if (st == DLK_OK) {
    double *oi = sweep_add(out, DLK_I32, nk), *ov = sweep_add(out, DLK_F64, nk);
    for (int64_t i = 0; i < nk; i++) oi[i] = idx[i], ov[i] = val[i];
  }
  free(ex), free(idx), free(val);
  return st;
}

/* Per column: rows not excluded and not NaN, by score descending, ties to the lower row;
   missing slots get -1 and -inf. */
static void naive_topk(const void *vc, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  (void)dt;
  const topk_sweep_case *c = vc;
  double *oi = sweep_add(ref, DLK_I32, c->cols * c->k), *ov = sweep_add(ref, DLK_F64, c->cols * c->k);
  char *taken = calloc((size_t)(c->rows + 1), 1);
  for (int64_t q = 0; q < c->cols; q++) {
    memset(taken, 0, (size_t)(c->rows + 1));
    for (int e = 0; e < c->n_exclude; e++) {
      int64_t r = (int64_t)in->a[1].v[q * c->n_exclude + e];
      if (r >= 0 && r < c->rows) taken[r] = 1;
    }
    for (int s = 0; s < c->k; s++) {
      int64_t best = -1;
      for (int64_t r = 0; r < c->rows; r++) {
        double v = in->a[0].v[r * c->cols + q];
        if (taken[r] || isnan(v)) continue;
        if (best < 0 || v > in->a[0].v[best * c->cols + q]) best = r;
      }
      oi[q * c->k + s] = (double)best;
      ov[q * c->k + s] = best < 0 ? -INFINITY : in->a[0].v[best * c->cols + q];
      if (best >= 0) taken[best] = 1;
    }
  }
  free(taken);
}

static const topk_sweep_case topk_sweep_cases[] = {
    {.rows = 1, .cols = 1, .k = 1},
    {.rows = 40, .cols = 3, .k = 5, .n_exclude = 3},
    {.rows = 100, .cols = 7, .k = 32, .n_exclude = 5},
    {.rows = 10, .cols = 4, .k = 40, .n_exclude = 2},
    {.rows = 1000, .cols = 33, .k = 3, .n_exclude = 4},
    {.rows = 3001, .cols = 130, .k = 100, .n_exclude = 5, .tags.big = true},
};

static const dlk_dtype f64_only[] = {DLK_F64}, f64_f32[] = {DLK_F64, DLK_F32};

static const sweep_op glove_rows[] = {
    {"glove_epoch", "glove_epoch", SWEEP_CASES(epoch_cases), gen_epoch, run_epoch, naive_epoch, 0, 0, f64_only, 1,
     compare_epoch},
    {"glove_cooccur_chunk", "glove_cooccur_chunk", SWEEP_CASES(chunk_cases), gen_chunk, run_chunk, naive_chunk, 0, 1,
     f64_only, 1, NULL},
    {"glove_topk", "glove_topk", SWEEP_CASES(topk_sweep_cases), gen_topk, run_topk, naive_topk, 0, 1, f64_f32, 2,
     NULL},
};

int main(int argc, char **argv) {
  if (sweep_list_ops(argc, argv, glove_rows, (int)(sizeof glove_rows / sizeof glove_rows[0]))) return 0;
  signal(SIGPIPE, SIG_IGN);
  make_tmpdir();
  int rc;
  const int nrows = (int)(sizeof glove_rows / sizeof glove_rows[0]);
  if (t_want_gpu(argc, argv)) {
    dlk_context *ctx = t_gpu_context_or_skip("test_glove");
    run_gpu_cases(ctx);
    /* Last, so the cases above keep their random inputs. */
    dlk_context *cpu = t_cpu_context();
    sweep_run(ctx, cpu, glove_rows, nrows, gpu_quick);
    dlk_context_destroy(cpu);
    dlk_context_destroy(ctx);
    rc = t_summary("test_glove --gpu");
  } else {
    dlk_context *ctx = t_cpu_context();
    run_cpu_cases(ctx);
    sweep_run(ctx, NULL, glove_rows, nrows, 0);
    dlk_context *ref = t_cpu_context();
    sweep_run(ctx, ref, glove_rows, nrows, 1); /* the GPU run's path, quick */
    dlk_context_destroy(ref);
    dlk_context_destroy(ctx);
    rc = t_summary("test_glove");
  }
  remove_tmpdir();
  return rc;
}
