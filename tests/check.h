/*
 * A small test harness shared by the tests/test_<family>.c programs: checks that count
 * failures and keep going, a seeded RNG, tolerance comparison, and the GPU/skip logic.
 *
 * A test program runs its CPU cases by default; with --gpu it runs its GPU cases and
 * exits 77 (ctest: skipped) when no CUDA device is usable. The variant sweep every family
 * runs is in sweep.h.
 */
#ifndef DLK_TEST_CHECK_H
#define DLK_TEST_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlk.h"
#include "core/half.h"

/* The counters, the case label and the RNG state are one per program, also when a test
   program is several files (test_nn.c + sweep.c): weak definitions, merged by the linker. */
#define T_SHARED __attribute__((weak))
T_SHARED int t_failures = 0, t_checks = 0;
T_SHARED const char *t_case = "";

#define CHECK(cond, ...)                                                 \
  do {                                                                   \
    t_checks++;                                                          \
    if (!(cond)) {                                                       \
      t_failures++;                                                      \
      fprintf(stderr, "FAIL %s:%d [%s] %s: ", __FILE__, __LINE__, t_case, #cond); \
      fprintf(stderr, __VA_ARGS__);                                      \
      fprintf(stderr, "\n");                                             \
    }                                                                    \
  } while (0)

/* A dlk call that must succeed; prints the context's message when it does not. */
#define CHECK_OK(ctx, call)                                                               \
  do {                                                                                    \
    dlk_status s_ = (call);                                                               \
    CHECK(s_ == DLK_OK, "%s -> %s: %s", #call, dlk_status_string(s_), dlk_context_last_error(ctx)); \
  } while (0)

/* A dlk call that must fail with `want` and leave a non-empty message. */
#define CHECK_STATUS(ctx, want, call)                                                  \
  do {                                                                                 \
    dlk_status s_ = (call);                                                            \
    CHECK(s_ == (want), "%s -> %s, expected %s (%s)", #call, dlk_status_string(s_),    \
          dlk_status_string(want), dlk_context_last_error(ctx));                       \
    if (s_ != DLK_OK) CHECK(dlk_context_last_error(ctx)[0] != '\0', "no message for %s", #call); \
  } while (0)

/* ---- a watchdog for calls that must return at once (hostile shapes: a dim of 2^40 that
   nothing bounds must not be looped over). t_watchdog_arm("test_rnn: a call on hostile
   shapes"): still running 60 s later, the program prints "FAIL <what> hung (> 60 s)" and
   exits 1; t_watchdog_disarm() restores the previous SIGALRM handler. ---- */
T_SHARED char t_watchdog_msg[200];
T_SHARED struct sigaction t_watchdog_old;
static inline void t_watchdog_fire(int sig) {
  (void)sig;
  if (write(2, t_watchdog_msg, strlen(t_watchdog_msg)) < 0) _exit(2);
  _exit(1);
}
static inline void t_watchdog_arm(const char *what) {
  snprintf(t_watchdog_msg, sizeof t_watchdog_msg, "FAIL %s hung (> 60 s)\n", what);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = t_watchdog_fire;
  sigaction(SIGALRM, &sa, &t_watchdog_old);
  alarm(60);
}
static inline void t_watchdog_disarm(void) {
  alarm(0);
  sigaction(SIGALRM, &t_watchdog_old, NULL);
}
static inline double t_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A CPU tensor over caller memory with row-major strides (a dim of 0 counts as 1, so an
   empty tensor with huge other dims still has in-range strides). */
static inline dlk_tensor t_host_tensor(void *data, dlk_dtype dt, int nd, const int64_t *shape) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.device = (dlk_device){DLK_CPU, 0};
  t.ndim = nd;
  int64_t st = 1;
  for (int k = nd - 1; k >= 0; k--) {
    t.shape[k] = shape[k];
    t.strides[k] = st;
    st *= shape[k] > 0 ? shape[k] : 1;
  }
  return t;
}

static inline int t_summary(const char *prog) {
  printf("%s: %d checks, %d failures\n", prog, t_checks, t_failures);
  if (t_checks == 0) {
    fprintf(stderr, "%s: no checks ran: that is a failure\n", prog);
    return 1;
  }
  return t_failures ? 1 : 0;
}

/* xorshift64*: reproducible across machines. */
T_SHARED uint64_t t_rng_state = 0x9E3779B97F4A7C15ULL;
static inline void t_seed(uint64_t s) { t_rng_state = s ? s : 0x9E3779B97F4A7C15ULL; }
static inline uint64_t t_next(void) {
  t_rng_state ^= t_rng_state >> 12;
  t_rng_state ^= t_rng_state << 25;
  t_rng_state ^= t_rng_state >> 27;
  return t_rng_state * 2685821657736338717ULL;
}
/* Uniform in [lo, hi). */
static inline double t_uniform(double lo, double hi) {
  return lo + (hi - lo) * (double)(t_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* Tolerances of README.md (Tests): |got - ref| <= atol + rtol * |ref|. */
static inline void t_tolerance(dlk_dtype t, int tf32, double *atol, double *rtol) {
  switch (t) {
    case DLK_F16: *atol = 1e-3, *rtol = 4e-3; break;
    case DLK_BF16: *atol = 1e-2, *rtol = 2e-2; break;
    case DLK_F64: *atol = 1e-12, *rtol = 1e-12; break;
    default: *atol = *rtol = tf32 ? 1e-3 : 1e-5; break;
  }
}

/* Compare n doubles; reports the worst element. Returns 1 when all are within. */
static inline int t_close(const char *what, const double *got, const double *ref, int64_t n,
                          double atol, double rtol) {
  int64_t worst = -1, bad = 0;
  double worst_excess = 0;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs(got[i] - ref[i]), lim = atol + rtol * fabs(ref[i]);
    int ok = err <= lim || (isnan(got[i]) && isnan(ref[i])) ||
             (isinf(got[i]) && isinf(ref[i]) && (got[i] > 0) == (ref[i] > 0));
    if (!ok) {
      bad++;
      double excess = isnan(err) ? INFINITY : err - lim;
      if (worst < 0 || excess > worst_excess) worst = i, worst_excess = excess;
    }
  }
  CHECK(bad == 0, "%s: %lld of %lld elements off; worst [%lld] got %.9g ref %.9g (atol %g rtol %g)",
        what, (long long)bad, (long long)n, (long long)worst, worst >= 0 ? got[worst] : 0.0,
        worst >= 0 ? ref[worst] : 0.0, atol, rtol);
  return bad == 0;
}

/* Is the program asked for its GPU cases? */
static inline int t_want_gpu(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--gpu") == 0) return 1;
  return 0;
}

/* A CUDA context, or exit 77 (skipped) with the reason when none can be had. */
static inline dlk_context *t_gpu_context_or_skip(const char *prog) {
  int n = 0;
  dlk_device_count(NULL, &n);
  if (n == 0) {
    printf("%s --gpu: no CUDA device present (or CUDA not built): skipped\n", prog);
    exit(77);
  }
  dlk_context_options o;
  memset(&o, 0, sizeof o);
  o.device = (dlk_device){DLK_CUDA, 0};
  dlk_context *ctx = NULL;
  dlk_status s = dlk_context_create(&ctx, &o);
  if (s != DLK_OK) {
    fprintf(stderr, "%s --gpu: a CUDA device is present but the context failed: %s: %s\n", prog,
            dlk_status_string(s), dlk_context_last_error(NULL));
    exit(1); /* a GPU that is there but unusable is a failure, not a skip */
  }
  return ctx;
}

/* Is ctx on the emulated CUDA device (DLK_CUDA_EMU, tests/emu)? It runs the kernels on the
   CPU with a grid's blocks one after another on each core, not side by side as a GPU runs
   them: a result that depends on how the GPU interleaves blocks (Hogwild's staleness) is
   checked there with a band that allows for the emulator's order. */
static inline int t_emulated_device(dlk_context *ctx) {
  dlk_device_props p;
  memset(&p, 0, sizeof p);
  return dlk_device_properties(ctx, 0, &p) == DLK_OK && strcmp(p.name, "dlk-emu") == 0;
}

/* DLK_TEST_QUICK: 0 (unset) every case; 1 a small subset (compute-sanitizer, ASan); 2 every
   case but the big ones (the emulated device). */
static inline int t_quick_mode(void) {
  const char *q = getenv("DLK_TEST_QUICK");
  return q ? atoi(q) : 0;
}

static inline dlk_context *t_cpu_context(void) {
  dlk_context_options o;
  memset(&o, 0, sizeof o);
  o.device = (dlk_device){DLK_CPU, 0};
  dlk_context *ctx = NULL;
  if (dlk_context_create(&ctx, &o) != DLK_OK) {
    fprintf(stderr, "cannot create a CPU context: %s\n", dlk_context_last_error(NULL));
    exit(1);
  }
  return ctx;
}

/* Path of a file under the source tree (DLK_SOURCE_DIR from ctest, else "."), in a static
   buffer. */
static inline const char *t_src_path(const char *rel) {
  static char buf[4096];
  const char *root = getenv("DLK_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "..", rel);
  return buf;
}

#endif /* DLK_TEST_CHECK_H */
