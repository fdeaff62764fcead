/*
 * dlk-bench: the case interface that op families implement.
 *
 * A family adds one file, bench/bench_<family>.c, defining
 *
 *     void bench_family_<family>(bench_registry *r, const bench_env *env)
 *
 * which calls bench_add() once per case. bench/CMakeLists.txt finds every bench_*.c and
 * generates the list of these functions (bench_families.h), so adding a family is adding
 * one file; nothing else changes.
 *
 * A case is one (op, shape, dtype). The harness runs it with every variant:
 *   - op != NULL: every variant the dispatcher lists for `op` that runs on the context's
 *     device; the harness forces it (dlk_force_variant) around its runs, so `run` just
 *     makes the public call. A variant that answers DLK_ERR_NOT_SUPPORTED is reported as
 *     such with dlk_context_last_error() as the reason.
 *   - op == NULL: the case's own `variants` (a copy, a host-overhead loop); `run` gets the
 *     id and does what it says.
 * Ids follow the dispatcher's convention everywhere: 0 CPU reference, 1..9 hand-written
 * CUDA, 10..19 vendor (the "x vendor" column divides by the best of these), 20.. CPU.
 *
 * Sizes: env->gpu says whether the context is on a CUDA device; without one the family
 * registers smaller shapes, picked with bench_cpu_size(): by default so that the whole
 * CPU suite takes at most 15 s on 2 cores, larger with --full (env->full: about a minute),
 * smallest with --quick. Setup allocates through the context (bench_alloc) and fills
 * with bench_fill; nothing is allocated inside `run`.
 */
#ifndef DLK_BENCH_H
#define DLK_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "dlk.h"

/* What a case is rated by. */
typedef enum bench_bound {
  BENCH_COMPUTE = 0, /* TFLOP/s against the dense peak of the case's dtype */
  BENCH_MEMORY,      /* GB/s (bytes read + written) against the device's memory bandwidth
                        and against the copy bandwidth dlk-bench measures itself */
  BENCH_HOST,        /* host microseconds per call (no kernel time), against target_us */
  BENCH_BOUND_COUNT
} bench_bound;

typedef struct bench_env {
  dlk_context *ctx;
  int gpu;   /* 1: ctx is on a CUDA device */
  int quick; /* --quick: fewer runs, and on the CPU the smallest shapes */
  int full;  /* --full: on the CPU the larger shapes (wins over --quick's) */
} bench_env;

/* A CPU case's size: --full's, --quick's or the default. */
static inline int64_t bench_cpu_size(const bench_env *env, int64_t quick, int64_t dflt,
                                     int64_t full) {
  return env->full ? full : env->quick ? quick : dflt;
}

/* A variant of a case that does not go through the dispatcher (op == NULL). It runs on
   the context's device. */
typedef struct bench_variant {
  int id;
  const char *name;
  const char *description;
} bench_variant;

typedef struct bench_case bench_case;
struct bench_case {
  const char *family;            /* "nn" */
  const char *op;                /* dispatcher op whose variants are timed ("gemm"), or NULL */
  const bench_variant *variants; /* op == NULL: the case's own variants */
  int n_variants;
  char name[48];  /* what is run: "gemm", "softmax_fwd" */
  char shape[64]; /* "4096x4096x4096" (M x N x K), "8192x1024" ... */
  char dtype[8];  /* "f32", "tf32", "f16", "bf16": also the column of the peak table */
  bench_bound bound;
  double flops;     /* floating-point operations per run (0: not rated in FLOP/s) */
  double bytes;     /* minimal bytes read + written per run (0: not rated in GB/s) */
  double calls;     /* BENCH_HOST: calls per run (time is divided by it); else 0 or 1 */
  double target_us; /* BENCH_HOST: the target per call, drawn as a line */
  int allow_tf32;   /* the harness turns the context's allow_tf32 on while it runs */
  const char *note; /* optional one line shown under the table ("cache-hit path") */

  /* Free for the family's own use (dims, dtype, flags) in setup/run. */
  int64_t dims[4];
  dlk_dtype dt;
  int arg;

  /* setup: allocate and fill inputs and outputs, store them in *state. Called once per
     case; every variant then runs on the same tensors. */
  dlk_status (*setup)(const bench_env *env, const bench_case *c, void **state);
  /* One timed run: enqueue the work on the context's stream (GPU) or do it (CPU). Must
     not allocate. For BENCH_HOST cases, `calls` calls, host-timed, synchronised after. */
  dlk_status (*run)(const bench_env *env, const bench_case *c, void *state, int variant);
  /* Optional: the output the variants must agree on (read after the warm-up run). NULL
     for cases whose runs change their own inputs (optimizer steps). */
  const dlk_tensor *(*output)(void *state);
  void (*teardown)(const bench_env *env, const bench_case *c, void *state);
};

typedef struct bench_registry bench_registry;
/* Copies *c into the registry. */
void bench_add(bench_registry *r, const bench_case *c);

/* ---- helpers for setup functions (dlk-bench.c) ---- */

/* Return the status of a failing dlk call (setup functions are a chain of them). */
#define BENCH_TRY(expr)                      \
  do {                                       \
    dlk_status bench_s_ = (expr);            \
    if (bench_s_ != DLK_OK) return bench_s_; \
  } while (0)

/* Allocate a contiguous tensor on the context's device (fails with a message in
   dlk_context_last_error). */
dlk_status bench_alloc(const bench_env *env, dlk_tensor *t, dlk_dtype dt, int ndim,
                       const int64_t *shape);
/* Fill with uniform numbers in [lo, hi) from a seeded generator, converting to the
   tensor's dtype, in chunks (a 100M-element tensor never needs a 100M host buffer).
   Integer dtypes get integers in [lo, hi). */
dlk_status bench_fill(const bench_env *env, dlk_tensor *t, double lo, double hi, uint64_t seed);
/* dlk_tensor_free that ignores NULL data (teardown of a partly set up state). */
void bench_free(const bench_env *env, dlk_tensor *t);

#endif /* DLK_BENCH_H */
