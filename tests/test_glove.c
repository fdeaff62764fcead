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

#include "check.h"
#include "glove.h"

/* ---- small utilities ---- */

static char tmpdir[512];

static const char *tmp_path(const char *name) {
  static char buf[8][1024];
  static int k = 0;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static void make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/dlk_glove_test_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
    exit(1);
  }
}

static void remove_tmpdir(void) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
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
    dlk_glove_vocab_free(v);
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
  dlk_glove_cooccur_free(c);
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

static dlk_glove_train_params train_defaults(int threads) {
  dlk_glove_train_params p = dlk_glove_train_defaults();
  p.threads = threads;
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
    dlk_glove_vocab_free(v);
  }
  free(text);
}

static void test_golden_cooccur(dlk_context *ctx) {
  t_case = "golden/cooccur";
  size_t n;
  char *text = read_all(golden("corpus.txt"), &n);
  dlk_glove_vocab *v = golden_vocab(ctx);
  if (!text || !v) return;
  dlk_glove_cooccur_params p = dlk_glove_cooccur_defaults();
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
  dlk_glove_vocab_free(v);
}

static void test_golden_shuffle(dlk_context *ctx) {
  t_case = "golden/shuffle";
  dlk_glove_shuffle_params p = dlk_glove_shuffle_defaults();
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
  dlk_glove_train_params tp = train_defaults(1);
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
  dlk_glove_vocab_free(v);
}

static void run_cpu_cases(dlk_context *ctx) {
  test_rand();
  test_golden_vocab(ctx);
  test_golden_cooccur(ctx);
  test_golden_shuffle(ctx);
  test_golden_init(ctx);
  test_golden_train(ctx);
}

static void run_gpu_cases(dlk_context *ctx) { (void)ctx; }

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  make_tmpdir();
  int rc;
  if (t_want_gpu(argc, argv)) {
    dlk_context *ctx = t_gpu_context_or_skip("test_glove");
    run_gpu_cases(ctx);
    dlk_context_destroy(ctx);
    rc = t_summary("test_glove --gpu");
  } else {
    dlk_context *ctx = t_cpu_context();
    run_cpu_cases(ctx);
    dlk_context_destroy(ctx);
    rc = t_summary("test_glove");
  }
  remove_tmpdir();
  return rc;
}
