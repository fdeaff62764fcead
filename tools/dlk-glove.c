/*
 * dlk-glove: GloVe word vectors from a text corpus with dlk.
 *
 *   dlk-glove train CORPUS --out DIR [--vector-size 50 --iter 25 --window 15 --min-count 5
 *             --max-vocab 0 --x-max 100 --alpha 0.75 --eta 0.05 --seed S --device cuda|cpu
 *             --threads N --memory GB --eval QDIR --resume]
 *       the whole pipeline: DIR/vocab.txt, DIR/cooccurrence.bin, DIR/cooccurrence.shuf.bin,
 *       then training with a progress bar (records/s, cost, ETA) on stderr, the cost of
 *       every epoch in DIR/cost.log, DIR/checkpoint.dlk after every epoch (written to a
 *       temporary file and renamed), DIR/vectors.txt (+ .bin) at the end. Ctrl-C stops
 *       within a chunk of records and keeps the last checkpoint: --resume continues.
 *   dlk-glove vocab | cooccur | shuffle | fit [the tool's flags]
 *       drop-in replacements of the tool's vocab_count, cooccur, shuffle and glove: the
 *       same single-dash flags, stdin/stdout, output names and stderr messages; plus
 *       -device cuda|cpu.
 *   dlk-glove eval --vocab-file vocab.txt --vectors-file vectors.txt [--questions DIR]
 *       analogy accuracy as the tool's eval/python/evaluate.py prints it.
 *   dlk-glove neighbours WORD --vocab-file vocab.txt --vectors-file vectors.txt [-k 10]
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dlk.h"

static volatile int g_cancel = 0;
static void on_sigint(int sig) {
  (void)sig;
  g_cancel = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "dlk-glove: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void check(dlk_context *ctx, dlk_status s, const char *what) {
  if (s == DLK_OK) return;
  if (s == DLK_ERR_INTERRUPTED) {
    fprintf(stderr, "\ndlk-glove: interrupted (%s)\n", dlk_context_last_error(ctx));
    exit(130);
  }
  die("%s: %s: %s", what, dlk_status_string(s), dlk_context_last_error(ctx));
}

/* ---- arguments: the tool's find_arg (exact flag, value after it), also with "--" ---- */

static int find_arg(const char *name, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-') a++;
    if (strcmp(a, name) == 0) {
      if (i == argc - 1) {
        printf("No argument given for %s\n", name);
        exit(1);
      }
      return i;
    }
  }
  return -1;
}
static const char *arg_str(const char *name, int argc, char **argv, const char *def) {
  int i = find_arg(name, argc, argv);
  return i > 0 ? argv[i + 1] : def;
}
static long long arg_ll(const char *name, int argc, char **argv, long long def) {
  int i = find_arg(name, argc, argv);
  if (i < 0) return def;
  char *end;
  errno = 0;
  long long v = strtoll(argv[i + 1], &end, 10);
  if (errno || *end) die("%s: \"%s\" is not an integer", name, argv[i + 1]);
  return v;
}
static double arg_f(const char *name, int argc, char **argv, double def) {
  int i = find_arg(name, argc, argv);
  if (i < 0) return def;
  char *end;
  double v = strtod(argv[i + 1], &end);
  if (*end || !isfinite(v)) die("%s: \"%s\" is not a number", name, argv[i + 1]);
  return v;
}
static int has_flag(const char *name, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-') a++;
    if (strcmp(a, name) == 0) return 1;
  }
  return 0;
}

/* -device cuda|cpu; default: the GPU if present else the CPU. */
static dlk_context *make_context(int argc, char **argv, int threads) {
  const char *dev = arg_str("-device", argc, argv, NULL);
  dlk_context_options o;
  memset(&o, 0, sizeof o);
  o.cpu_threads = threads > 0 ? threads : 0;
  if (!dev) o.device = (dlk_device){DLK_DEVICE_DEFAULT, 0};
  else if (strcmp(dev, "cuda") == 0 || strcmp(dev, "gpu") == 0) o.device = (dlk_device){DLK_CUDA, 0};
  else if (strcmp(dev, "cpu") == 0) o.device = (dlk_device){DLK_CPU, 0};
  else die("-device: \"%s\" is neither cuda nor cpu", dev);
  dlk_context *ctx = NULL;
  dlk_status s = dlk_context_create(&ctx, &o);
  if (s != DLK_OK)
    die("cannot use device %s: %s: %s", dev ? dev : "(default)", dlk_status_string(s),
        dlk_context_last_error(NULL));
  return ctx;
}

/* Feed a stream to a consumer in 1 MiB pieces. */
typedef dlk_status (*feed_fn)(dlk_context *, void *, const char *, size_t);
static dlk_status feed_stream(dlk_context *ctx, FILE *in, feed_fn fn, void *obj,
                              void (*progress)(long long bytes)) {
  static char buf[1 << 20];
  long long total = 0;
  for (;;) {
    size_t n = fread(buf, 1, sizeof buf, in);
    if (n) {
      dlk_status s = fn(ctx, obj, buf, n);
      if (s != DLK_OK) return s;
      total += (long long)n;
      if (progress) progress(total);
    }
    if (n < sizeof buf) break;
  }
  if (ferror(in)) die("read error on the corpus: %s", strerror(errno));
  return DLK_OK;
}
static dlk_status feed_vocab(dlk_context *ctx, void *v, const char *t, size_t n) {
  return dlk_glove_vocab_add_text(ctx, v, t, n);
}
static dlk_status feed_cooc(dlk_context *ctx, void *c, const char *t, size_t n) {
  return dlk_glove_cooccur_add_text(ctx, c, t, n);
}

/* ---- vocab (vocab_count) ---- */

static int do_vocab(dlk_context *ctx, FILE *in, const char *out, long long min_count,
                    long long max_vocab, int verbose) {
  dlk_glove_vocab *v;
  check(ctx, dlk_glove_vocab_create(ctx, &v), "vocab");
  fprintf(stderr, "BUILDING VOCABULARY\n");
  check(ctx, feed_stream(ctx, in, feed_vocab, v, NULL), "vocab");
  int64_t tokens = 0, distinct = 0;
  dlk_glove_vocab_tokens(ctx, v, &tokens, &distinct);
  if (verbose > 1) fprintf(stderr, "Processed %lld tokens.\n", (long long)tokens);
  if (verbose > 1) fprintf(stderr, "Counted %lld unique words.\n", (long long)distinct);
  dlk_glove_vocab_params p = {min_count, max_vocab};
  check(ctx, dlk_glove_vocab_finish(ctx, v, &p), "vocab");
  int64_t V = 0;
  dlk_glove_vocab_size(ctx, v, &V);
  if (max_vocab > 0 && max_vocab < distinct && V == max_vocab) {
    if (verbose > 0) fprintf(stderr, "Truncating vocabulary at size %lld.\n", max_vocab);
  } else if (V < distinct) {
    if (verbose > 0) fprintf(stderr, "Truncating vocabulary at min count %lld.\n", min_count);
  }
  fprintf(stderr, "Using vocabulary of size %lld.\n\n", (long long)V);
  check(ctx, dlk_glove_vocab_save(ctx, v, out), "vocab");
  check(ctx, dlk_glove_vocab_free(ctx, v), "vocab");
  return 0;
}

static int cmd_vocab(int argc, char **argv) {
  if (argc == 1) {
    printf("Simple tool to extract unigram counts (dlk-glove vocab: drop-in for vocab_count)\n\n");
    printf("Usage options:\n\t-verbose <int>\n\t\tSet verbosity: 0, 1, or 2 (default)\n");
    printf("\t-max-vocab <int>\n\t\tUpper bound on vocabulary size, i.e. keep the <int> most frequent words.\n");
    printf("\t-min-count <int>\n\t\tLower limit such that words which occur fewer than <int> times are discarded.\n");
    printf("\nExample usage:\n./dlk-glove vocab -verbose 2 -max-vocab 100000 -min-count 10 < corpus.txt > vocab.txt\n");
    return 0;
  }
  int verbose = (int)arg_ll("-verbose", argc, argv, 2);
  dlk_context *ctx = make_context(argc, argv, 0);
  int rc = do_vocab(ctx, stdin, "-", arg_ll("-min-count", argc, argv, 1), arg_ll("-max-vocab", argc, argv, 0), verbose);
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- cooccur ---- */

static int do_cooccur(dlk_context *ctx, FILE *in, const char *vocab_file, const char *out,
                      const dlk_glove_cooccur_params *p, int verbose) {
  fprintf(stderr, "COUNTING COOCCURRENCES\n");
  if (verbose > 0) {
    fprintf(stderr, "window size: %d\n", p->window);
    fprintf(stderr, "context: %s\n", p->symmetric ? "symmetric" : "asymmetric");
  }
  dlk_glove_vocab *v;
  if (verbose > 1) fprintf(stderr, "Reading vocab from file \"%s\"...", vocab_file);
  check(ctx, dlk_glove_vocab_load(ctx, vocab_file, &v), "cooccur");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  if (verbose > 1) fprintf(stderr, "loaded %lld words.\n", (long long)V);
  dlk_glove_cooccur *c;
  check(ctx, dlk_glove_cooccur_create(ctx, p, v, &c), "cooccur");
  dlk_glove_cooccur_stats st;
  dlk_glove_cooccur_get_stats(ctx, c, &st);
  if (verbose > 1) fprintf(stderr, "max product: %lld\n", (long long)st.max_product);
  if (verbose > 1) fprintf(stderr, "overflow length: %lld\n", (long long)st.overflow_length);
  dlk_status s = feed_stream(ctx, in, feed_cooc, c, NULL);
  if (s == DLK_OK) s = dlk_glove_cooccur_finish(ctx, c, out);
  dlk_glove_cooccur_get_stats(ctx, c, &st);
  dlk_glove_cooccur_free(ctx, c);
  check(ctx, s, "cooccur");
  if (verbose > 1) fprintf(stderr, "Processed %lld tokens.\n", (long long)st.tokens);
  if (verbose > 1)
    fprintf(stderr, "%d temporary file(s); counted on the %s.\n", st.temp_files, st.used_gpu ? "GPU" : "CPU");
  fprintf(stderr, "Merging cooccurrence files: processed %lld lines.\n\n", (long long)st.records);
  check(ctx, dlk_glove_vocab_free(ctx, v), "cooccur");
  return 0;
}

static dlk_glove_cooccur_params cooc_params(dlk_context *ctx, int argc, char **argv) {
  dlk_glove_cooccur_params p;
  check(ctx, dlk_glove_cooccur_defaults(ctx, &p), "cooccur");
  p.symmetric = (int)arg_ll("-symmetric", argc, argv, 1);
  p.window = (int)arg_ll("-window-size", argc, argv, 15);
  p.memory_gb = arg_f("-memory", argc, argv, 3.0);
  p.distance_weighting = (int)arg_ll("-distance-weighting", argc, argv, 1);
  p.max_product = arg_ll("-max-product", argc, argv, 0);
  p.overflow_length = arg_ll("-overflow-length", argc, argv, 0);
  p.temp_prefix = arg_str("-overflow-file", argc, argv, "overflow");
  return p;
}

static int cmd_cooccur(int argc, char **argv) {
  if (argc == 1) {
    printf("Tool to calculate word-word cooccurrence statistics (dlk-glove cooccur: drop-in for cooccur)\n\n");
    printf("Usage options:\n\t-verbose <int>\n\t-symmetric <int>\n\t-window-size <int>\n\t-vocab-file <file>\n");
    printf("\t-memory <float>\n\t-max-product <int>\n\t-overflow-length <int>\n\t-overflow-file <file>\n");
    printf("\t-distance-weighting <int>\n\t-device cuda|cpu\n");
    printf("\nExample usage:\n./dlk-glove cooccur -verbose 2 -symmetric 0 -window-size 10 -vocab-file vocab.txt -memory 8.0 -overflow-file tempoverflow < corpus.txt > cooccurrences.bin\n");
    return 0;
  }
  dlk_context *ctx = make_context(argc, argv, 0);
  dlk_glove_cooccur_params p = cooc_params(ctx, argc, argv);
  int rc = do_cooccur(ctx, stdin, arg_str("-vocab-file", argc, argv, "vocab.txt"), "-", &p,
                      (int)arg_ll("-verbose", argc, argv, 2));
  dlk_context_destroy(ctx);
  return rc;
}

/* ---- shuffle ---- */

static int cmd_shuffle(int argc, char **argv) {
  if (argc == 1) {
    printf("Tool to shuffle entries of word-word cooccurrence files (dlk-glove shuffle: drop-in for shuffle)\n\n");
    printf("Usage options:\n\t-verbose <int>\n\t-memory <float>\n\t-array-size <int>\n\t-temp-file <file>\n\t-seed <int>\n");
    printf("\nExample usage:\n./dlk-glove shuffle -verbose 2 -memory 8.0 < cooccurrence.bin > cooccurrence.shuf.bin\n");
    return 0;
  }
  int verbose = (int)arg_ll("-verbose", argc, argv, 2);
  dlk_context *ctx = make_context(argc, argv, 0);
  dlk_glove_shuffle_params p;
  check(ctx, dlk_glove_shuffle_defaults(ctx, &p), "shuffle");
  p.memory_gb = arg_f("-memory", argc, argv, 2.0);
  p.array_size = arg_ll("-array-size", argc, argv, 0);
  p.temp_prefix = arg_str("-temp-file", argc, argv, "temp_shuffle");
  p.seed = (uint32_t)arg_ll("-seed", argc, argv, 0);
  if (p.seed == 0) p.seed = (uint32_t)time(NULL);
  fprintf(stderr, "Using random seed %d\n", (int)p.seed);
  fprintf(stderr, "SHUFFLING COOCCURRENCES\n");
  if (verbose > 0)
    fprintf(stderr, "array size: %lld\n",
            p.array_size ? (long long)p.array_size : (long long)(0.95 * p.memory_gb * 1073741824.0 / 16));
  int64_t n = 0;
  check(ctx, dlk_glove_shuffle_file(ctx, &p, "-", "-", NULL, &n), "shuffle");
  fprintf(stderr, "Merging temp files: processed %lld lines.\n\n", (long long)n);
  dlk_context_destroy(ctx);
  return 0;
}

/* ---- training progress ---- */

typedef struct progress {
  double t0;
  int epoch, epochs;
  int64_t total_all; /* records per epoch */
  int show;
  double last_draw;
} progress;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
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
  char bar[64];
  for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
  bar[w] = '\0';
  fprintf(stderr, "\repoch %d/%d [%s] %5.1f%% %7.3fM rec/s cost %.6f ETA %dm%02ds   ", p->epoch, p->epochs,
          bar, total ? 100.0 * done / total : 100.0, rate / 1e6, done ? cost_sum / (double)done : 0.0,
          (int)(eta / 60), (int)fmod(eta, 60));
  fflush(stderr);
}

static dlk_glove_train_params train_params(dlk_context *ctx, int argc, char **argv) {
  dlk_glove_train_params tp;
  check(ctx, dlk_glove_train_defaults(ctx, &tp), "train");
  tp.eta = arg_f("-eta", argc, argv, 0.05);
  tp.alpha = arg_f("-alpha", argc, argv, 0.75);
  tp.x_max = arg_f("-x-max", argc, argv, 100.0);
  tp.grad_clip = arg_f("-grad-clip", argc, argv, 100.0);
  tp.keras = (int)arg_ll("-keras", argc, argv, 0);
  tp.threads = (int)arg_ll("-threads", argc, argv, 8);
  tp.cancel = &g_cancel;
  return tp;
}

/* ---- fit (glove) ---- */

/* The tool's save_params(nb_iter): nb_iter < 0 final ("%s.bin"/".txt"), 0 the initial
   parameters (binary always), > 0 checkpoints ("%s.%03d.bin"). */
static void save_params(dlk_context *ctx, const dlk_glove_model *m, const dlk_glove_vocab *v,
                        const char *save_file, const char *gradsq_file, int save_gradsq, int binary,
                        const dlk_glove_text_params *tp, int nb_iter) {
  char path[4200];
  char suffix[16] = "";
  if (nb_iter >= 0) snprintf(suffix, sizeof suffix, ".%03d", nb_iter);
  if (binary > 0 || nb_iter == 0) {
    snprintf(path, sizeof path, "%s%s.bin", save_file, suffix);
    check(ctx, dlk_glove_model_save_params(ctx, m, path), "saving parameters");
    if (save_gradsq) {
      snprintf(path, sizeof path, "%s%s.bin", gradsq_file, suffix);
      check(ctx, dlk_glove_model_save_gradsq(ctx, m, path), "saving gradsq");
    }
  }
  if (binary != 1) {
    snprintf(path, sizeof path, "%s%s.txt", save_file, suffix);
    check(ctx, dlk_glove_save_text(ctx, tp, m, v, path), "saving vectors");
    if (save_gradsq) {
      dlk_glove_text_params g = *tp;
      g.gradsq = 1;
      snprintf(path, sizeof path, "%s%s.txt", gradsq_file, suffix);
      check(ctx, dlk_glove_save_text(ctx, &g, m, v, path), "saving gradsq text");
    }
  }
}

static void timestamp(char *buf, size_t n) {
  time_t t = time(NULL);
  strftime(buf, n, "%x - %I:%M.%S%p", localtime(&t));
}

static int cmd_fit(int argc, char **argv) {
  if (argc == 1) {
    printf("GloVe: Global Vectors for Word Representation (dlk-glove fit: drop-in for glove)\n\n");
    printf("Usage options:\n\t-verbose <int>\n\t-write-header <int>\n\t-vector-size <int>\n\t-threads <int>\n");
    printf("\t-iter <int>\n\t-eta <float>\n\t-alpha <float>\n\t-x-max <float>\n\t-grad-clip <float>\n");
    printf("\t-binary <int>\n\t-model <int>\n\t-input-file <file>\n\t-vocab-file <file>\n\t-save-file <file>\n");
    printf("\t-gradsq-file <file>\n\t-save-gradsq <int>\n\t-checkpoint-every <int>\n\t-load-init-param <int>\n");
    printf("\t-save-init-param <int>\n\t-init-param-file <file>\n\t-load-init-gradsq <int>\n\t-init-gradsq-file <file>\n");
    printf("\t-seed <int>\n\t-keras <int>\n\t\t1: target log(1+X), weight without the cap\n\t-device cuda|cpu\n");
    printf("\nExample usage:\n./dlk-glove fit -input-file cooccurrence.shuf.bin -vocab-file vocab.txt -save-file vectors -gradsq-file gradsq -verbose 2 -vector-size 100 -threads 16 -alpha 0.75 -x-max 100.0 -eta 0.05 -binary 2 -model 2\n\n");
    return 0;
  }
  int verbose = (int)arg_ll("-verbose", argc, argv, 2);
  int d = (int)arg_ll("-vector-size", argc, argv, 50);
  int iters = (int)arg_ll("-iter", argc, argv, 25);
  int binary = (int)arg_ll("-binary", argc, argv, 0);
  int model_kind = (int)arg_ll("-model", argc, argv, 2);
  if (model_kind != 0 && model_kind != 1) model_kind = 2;
  int save_gradsq = (int)arg_ll("-save-gradsq", argc, argv, 0);
  const char *vocab_file = arg_str("-vocab-file", argc, argv, "vocab.txt");
  const char *save_file = arg_str("-save-file", argc, argv, "vectors");
  const char *gradsq_file = arg_str("-gradsq-file", argc, argv, NULL);
  if (gradsq_file) save_gradsq = 1;
  else gradsq_file = "gradsq";
  const char *input = arg_str("-input-file", argc, argv, "cooccurrence.shuf.bin");
  int ckpt_every = (int)arg_ll("-checkpoint-every", argc, argv, 0);
  const char *init_param = arg_str("-init-param-file", argc, argv, "vectors.000.bin");
  int load_init_param = (int)arg_ll("-load-init-param", argc, argv, 0);
  int save_init_param = (int)arg_ll("-save-init-param", argc, argv, 0);
  const char *init_gradsq = arg_str("-init-gradsq-file", argc, argv, "gradsq.000.bin");
  int load_init_gradsq = (int)arg_ll("-load-init-gradsq", argc, argv, 0);
  long long seed = arg_ll("-seed", argc, argv, 0);
  dlk_glove_text_params txt = {model_kind, (int)arg_ll("-write-header", argc, argv, 0), 0, 0};
  dlk_context *ctx = make_context(argc, argv, (int)arg_ll("-threads", argc, argv, 8));
  dlk_glove_train_params tp = train_params(ctx, argc, argv);
  signal(SIGINT, on_sigint);

  dlk_glove_vocab *v;
  check(ctx, dlk_glove_vocab_load(ctx, vocab_file, &v), "reading the vocabulary");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  fprintf(stderr, "TRAINING MODEL\n");
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_glove_records *r;
  check(ctx, dlk_glove_records_open(ctx, &rp, input, &r), "reading the co-occurrence records");
  int64_t n;
  int resident;
  dlk_glove_records_info(ctx, r, &n, &resident);
  fprintf(stderr, "Read %lld lines.\n", (long long)n);
  if (verbose > 1) fprintf(stderr, "Initializing parameters...");
  if (seed == 0) seed = (long long)time(NULL);
  fprintf(stderr, "Using random seed %d\n", (int)seed);
  dlk_glove_model m;
  check(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, (uint32_t)seed, &m), "creating the model");
  if (load_init_param) {
    fprintf(stderr, "\nLoading initial parameters from %s \n", init_param);
    check(ctx, dlk_glove_model_load_params(ctx, &m, init_param), "loading initial parameters");
  }
  if (load_init_gradsq) {
    fprintf(stderr, "\nLoading initial squared gradients from %s \n", init_gradsq);
    check(ctx, dlk_glove_model_load_gradsq(ctx, &m, init_gradsq), "loading initial squared gradients");
  }
  if (verbose > 1) fprintf(stderr, "done.\n");
  if (save_init_param) {
    if (verbose > 1) fprintf(stderr, "Saving initial parameters... ");
    save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt, 0);
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
    check(ctx, dlk_glove_train_epoch(ctx, &tp, &m, r, &res), "training");
    char tb[80];
    timestamp(tb, sizeof tb);
    fprintf(stderr, "%s, iter: %03d, cost: %lf\n", tb, b + 1, res.cost);
    if (ckpt_every > 0 && (b + 1) % ckpt_every == 0) {
      fprintf(stderr, "    saving intermediate parameters for iter %03d...", b + 1);
      save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt, b + 1);
      fprintf(stderr, "done.\n");
    }
  }
  save_params(ctx, &m, v, save_file, gradsq_file, save_gradsq, binary, &txt, -1);
  dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, r);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return 0;
}

/* ---- eval / neighbours ---- */

static void load_vectors(dlk_context *ctx, int argc, char **argv, dlk_glove_vocab **v, dlk_tensor *E) {
  const char *vocab_file = arg_str("-vocab-file", argc, argv, arg_str("-vocab_file", argc, argv, "vocab.txt"));
  const char *vec_file =
      arg_str("-vectors-file", argc, argv, arg_str("-vectors_file", argc, argv, "vectors.txt"));
  check(ctx, dlk_glove_vocab_load(ctx, vocab_file, v), "reading the vocabulary");
  check(ctx, dlk_glove_vectors_load_text(ctx, vec_file, *v, E), "reading the vectors");
}

static const char *default_questions(void) {
  const char *e = getenv("DLK_GLOVE_EVAL_DIR");
  return e && *e ? e : "/work/shared/data/glove-eval";
}

static void print_eval(const dlk_glove_analogy_result *r) {
  for (int i = 0; i < DLK_GLOVE_ANALOGY_FILES; i++) {
    printf("%s:\n", r->file[i]);
    printf("ACCURACY TOP1: %.2f%% (%lld/%lld)\n", r->seen[i] ? 100.0 * r->correct[i] / r->seen[i] : NAN,
           (long long)r->correct[i], (long long)r->seen[i]);
  }
  printf("Questions seen/total: %.2f%% (%lld/%lld)\n", r->all_total ? 100.0 * r->all_seen / r->all_total : 0.0,
         (long long)r->all_seen, (long long)r->all_total);
  printf("Semantic accuracy: %.2f%%  (%lld/%lld)\n", r->sem_seen ? 100.0 * r->sem_correct / r->sem_seen : 0.0,
         (long long)r->sem_correct, (long long)r->sem_seen);
  printf("Syntactic accuracy: %.2f%%  (%lld/%lld)\n", r->syn_seen ? 100.0 * r->syn_correct / r->syn_seen : 0.0,
         (long long)r->syn_correct, (long long)r->syn_seen);
  printf("Total accuracy: %.2f%%  (%lld/%lld)\n", r->all_seen ? 100.0 * r->all_correct / r->all_seen : 0.0,
         (long long)r->all_correct, (long long)r->all_seen);
}

static int cmd_eval(int argc, char **argv) {
  dlk_context *ctx = make_context(argc, argv, 0);
  dlk_glove_vocab *v;
  dlk_tensor E;
  load_vectors(ctx, argc, argv, &v, &E);
  dlk_glove_analogy_params ap = {(int)arg_ll("-batch", argc, argv, 100), 0};
  dlk_glove_analogy_result res;
  check(ctx, dlk_glove_analogy_eval(ctx, &ap, &E, v, arg_str("-questions", argc, argv, default_questions()), &res),
        "evaluating");
  print_eval(&res);
  dlk_tensor_free(ctx, &E);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return 0;
}

static int cmd_neighbours(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') die("usage: dlk-glove neighbours WORD --vocab-file F --vectors-file F [-k 10]");
  dlk_context *ctx = make_context(argc, argv, 0);
  dlk_glove_vocab *v;
  dlk_tensor E;
  load_vectors(ctx, argc, argv, &v, &E);
  int k = (int)arg_ll("-k", argc, argv, 10);
  for (int a = 1; a < argc && argv[a][0] != '-'; a++) {
    int64_t id;
    dlk_glove_vocab_find(ctx, v, argv[a], &id);
    if (!id) {
      printf("%s: not in the vocabulary\n", argv[a]);
      continue;
    }
    int32_t *ids = malloc(sizeof *ids * (size_t)k);
    double *sims = malloc(sizeof *sims * (size_t)k);
    check(ctx, dlk_glove_neighbours(ctx, &E, id - 1, k, ids, sims), "neighbours");
    printf("%s:\n", argv[a]);
    for (int i = 0; i < k && ids[i] >= 0; i++) {
      const char *w;
      dlk_glove_vocab_word(ctx, v, ids[i] + 1, &w, NULL);
      printf("  %-20s %.4f\n", w, sims[i]);
    }
    free(ids), free(sims);
  }
  dlk_tensor_free(ctx, &E);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return 0;
}

/* ---- train: the whole pipeline ---- */

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int cmd_train(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') die("usage: dlk-glove train CORPUS --out DIR [options] (see the top of dlk-glove.c)");
  const char *corpus = argv[1];
  const char *dir = arg_str("-out", argc, argv, NULL);
  if (!dir) die("train: --out DIR is required");
  int d = (int)arg_ll("-vector-size", argc, argv, 50);
  int iters = (int)arg_ll("-iter", argc, argv, 25);
  int window = (int)arg_ll("-window", argc, argv, arg_ll("-window-size", argc, argv, 15));
  long long min_count = arg_ll("-min-count", argc, argv, 5), max_vocab = arg_ll("-max-vocab", argc, argv, 0);
  double memory = arg_f("-memory", argc, argv, 3.0);
  long long seed = arg_ll("-seed", argc, argv, 0);
  int resume = has_flag("-resume", argc, argv);
  int quiet = has_flag("-quiet", argc, argv);
  int threads = (int)arg_ll("-threads", argc, argv, 0);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("cannot create %s: %s", dir, strerror(errno));
  char vocab_p[4200], cooc_p[4200], shuf_p[4200], ckpt_p[4200], log_p[4200], vec_p[4200], tmp_p[4200];
  snprintf(vocab_p, sizeof vocab_p, "%s/vocab.txt", dir);
  snprintf(cooc_p, sizeof cooc_p, "%s/cooccurrence.bin", dir);
  snprintf(shuf_p, sizeof shuf_p, "%s/cooccurrence.shuf.bin", dir);
  snprintf(ckpt_p, sizeof ckpt_p, "%s/checkpoint.dlk", dir);
  snprintf(log_p, sizeof log_p, "%s/cost.log", dir);
  snprintf(vec_p, sizeof vec_p, "%s/vectors", dir);
  snprintf(tmp_p, sizeof tmp_p, "%s/overflow", dir);
  dlk_context *ctx = make_context(argc, argv, threads);
  dlk_glove_train_params tp = train_params(ctx, argc, argv);
  tp.threads = threads;
  signal(SIGINT, on_sigint);
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  fprintf(stderr, "dlk-glove train on the %s\n", dev.type == DLK_CUDA ? "GPU" : "CPU");
  double t0 = now();
  if (!(resume && exists(vocab_p))) {
    FILE *in = fopen(corpus, "rb");
    if (!in) die("cannot open %s: %s", corpus, strerror(errno));
    do_vocab(ctx, in, vocab_p, min_count, max_vocab, 1);
    fclose(in);
  }
  if (!(resume && exists(cooc_p))) {
    FILE *in = fopen(corpus, "rb");
    if (!in) die("cannot open %s: %s", corpus, strerror(errno));
    dlk_glove_cooccur_params cp;
    check(ctx, dlk_glove_cooccur_defaults(ctx, &cp), "cooccur");
    cp.window = window;
    cp.memory_gb = memory;
    cp.temp_prefix = tmp_p;
    double t = now();
    do_cooccur(ctx, in, vocab_p, cooc_p, &cp, 1);
    fprintf(stderr, "co-occurrence: %.2f s\n", now() - t);
    fclose(in);
  }
  if (!(resume && exists(shuf_p))) {
    dlk_glove_shuffle_params sp;
    check(ctx, dlk_glove_shuffle_defaults(ctx, &sp), "shuffle");
    sp.seed = seed ? (uint32_t)seed : 0;
    sp.memory_gb = memory;
    snprintf(tmp_p, sizeof tmp_p, "%s/temp_shuffle", dir);
    sp.temp_prefix = tmp_p;
    double t = now();
    uint32_t used;
    check(ctx, dlk_glove_shuffle_file(ctx, &sp, cooc_p, shuf_p, &used, NULL), "shuffle");
    fprintf(stderr, "shuffle (seed %u): %.2f s\n", used, now() - t);
  }
  dlk_glove_vocab *v;
  check(ctx, dlk_glove_vocab_load(ctx, vocab_p, &v), "reading the vocabulary");
  int64_t V;
  dlk_glove_vocab_size(ctx, v, &V);
  dlk_glove_records_params rp = {V, 0, 0};
  dlk_glove_records *r;
  check(ctx, dlk_glove_records_open(ctx, &rp, shuf_p, &r), "reading the records");
  int64_t n;
  dlk_glove_records_info(ctx, r, &n, NULL);
  dlk_glove_model m;
  dlk_glove_checkpoint_info info;
  memset(&info, 0, sizeof info);
  if (resume && exists(ckpt_p)) {
    check(ctx, dlk_glove_checkpoint_load(ctx, ckpt_p, &m, &info), "loading the checkpoint");
    if (m.vocab_size != V) die("%s has V = %lld, %s has %lld words", ckpt_p, (long long)m.vocab_size, vocab_p, (long long)V);
    fprintf(stderr, "resuming after epoch %lld of %d from %s\n", (long long)m.epoch, iters, ckpt_p);
    tp.eta = info.eta, tp.alpha = info.alpha, tp.x_max = info.x_max, tp.grad_clip = info.grad_clip;
    tp.keras = info.keras;
  } else {
    if (seed == 0) seed = (long long)time(NULL);
    check(ctx, dlk_glove_model_create(ctx, V, d, DLK_F64, (uint32_t)seed, &m), "creating the model");
    FILE *lg = fopen(log_p, "w");
    if (lg) fclose(lg);
  }
  info.eta = tp.eta, info.alpha = tp.alpha, info.x_max = tp.x_max, info.grad_clip = tp.grad_clip;
  info.keras = tp.keras;
  info.seed = (uint32_t)seed;
  info.total_epochs = iters;
  snprintf(info.note, sizeof info.note, "%s", corpus);
  fprintf(stderr, "training: V = %lld, d = %d, %lld records, %d epochs, x_max %g\n", (long long)V, m.dim,
          (long long)n, iters, tp.x_max);
  progress pg = {now(), 0, iters, n, !quiet && isatty(2), 0};
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
    if (s == DLK_ERR_INTERRUPTED) {
      fprintf(stderr, "\ninterrupted in epoch %lld: %s keeps epoch %lld; run again with --resume\n",
              (long long)m.epoch + 1, exists(ckpt_p) ? ckpt_p : "(no checkpoint yet)", (long long)m.epoch);
      exit(130);
    }
    check(ctx, s, "training");
    double secs = now() - te;
    if (pg.show) fprintf(stderr, "\r%*s\r", 110, "");
    fprintf(stderr, "epoch %03lld cost %.6f  %.2f s  %.3fM records/s  (variant %d)\n", (long long)m.epoch,
            res.cost, secs, n / secs / 1e6, res.variant);
    FILE *lg = fopen(log_p, "a");
    if (lg) {
      fprintf(lg, "iter: %03lld, cost: %lf, seconds: %.3f\n", (long long)m.epoch, res.cost, secs);
      fclose(lg);
    }
    check(ctx, dlk_glove_checkpoint_save(ctx, &m, &info, ckpt_p), "saving the checkpoint");
    if (g_cancel) {
      fprintf(stderr, "interrupted: %s holds epoch %lld; run again with --resume\n", ckpt_p, (long long)m.epoch);
      exit(130);
    }
  }
  double train_s = now() - train_t0;
  dlk_glove_text_params txt = {2, 0, 0, 0};
  save_params(ctx, &m, v, vec_p, "gradsq", 0, 2, &txt, -1);
  fprintf(stderr, "wrote %s.txt and %s.bin; training %.2f s (%lld epochs, %.3fM records/s), total %.2f s\n",
          vec_p, vec_p, train_s, (long long)(m.epoch - start_epoch),
          train_s > 0 ? (double)n * (double)(m.epoch - start_epoch) / train_s / 1e6 : 0.0, now() - t0);
  const char *qdir = arg_str("-eval", argc, argv, NULL);
  if (qdir) {
    dlk_tensor E;
    check(ctx, dlk_glove_embeddings(ctx, &m, 2, &E), "embeddings");
    dlk_glove_analogy_result res;
    check(ctx, dlk_glove_analogy_eval(ctx, NULL, &E, v, qdir, &res), "evaluating");
    print_eval(&res);
    dlk_tensor_free(ctx, &E);
  }
  dlk_glove_model_free(ctx, &m);
  dlk_glove_records_free(ctx, r);
  dlk_glove_vocab_free(ctx, v);
  dlk_context_destroy(ctx);
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: dlk-glove COMMAND ...\n"
          "  train CORPUS --out DIR [--vector-size 50 --iter 25 --window 15 --min-count 5 --x-max 100\n"
          "        --seed S --device cuda|cpu --threads N --memory GB --eval QDIR --resume]\n"
          "  vocab | cooccur | shuffle | fit   drop-in for vocab_count, cooccur, shuffle, glove\n"
          "  eval --vocab-file F --vectors-file F [--questions DIR]\n"
          "  neighbours WORD... --vocab-file F --vectors-file F [-k 10]\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const char *c = argv[1];
  argc--, argv++;
  if (strcmp(c, "train") == 0) return cmd_train(argc, argv);
  if (strcmp(c, "vocab") == 0 || strcmp(c, "vocab_count") == 0) return cmd_vocab(argc, argv);
  if (strcmp(c, "cooccur") == 0) return cmd_cooccur(argc, argv);
  if (strcmp(c, "shuffle") == 0) return cmd_shuffle(argc, argv);
  if (strcmp(c, "fit") == 0 || strcmp(c, "glove") == 0) return cmd_fit(argc, argv);
  if (strcmp(c, "eval") == 0) return cmd_eval(argc, argv);
  if (strcmp(c, "neighbours") == 0 || strcmp(c, "neighbors") == 0) return cmd_neighbours(argc, argv);
  usage();
  return 2;
}
