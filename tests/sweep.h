/*
 * The variant sweep, the one harness every family's test program runs
 * (tests/test_<family>.c): every op x case x dtype x variant, each variant forced in turn
 * and compared with the CPU reference (or, on a CPU context, with the test's own naive
 * computation), deterministic mode (two runs, the same bits, or an honest
 * NOT_SUPPORTED), AUTO through explain, the real call and the autotune cache.
 *
 * A family describes each op by a sweep_op row: a typed case table (its own struct, whose
 * first member is sweep_tags), and three functions of one case and dtype:
 *   gen    draws the inputs into a sweep_set (host doubles, already rounded to dtype);
 *   run    builds the call's tensors with a sweep_rig and calls the public function;
 *   naive  computes the expected outputs from the inputs, written plainly in the test.
 * A variant that cannot run a case (DLK_ERR_NOT_SUPPORTED) is counted as skipped with its
 * reason, never as passed; the report lists passed/skipped per variant. When no variant of
 * the context's device can run a case (a layout only the CPU reference takes, on a CUDA
 * context), AUTO must fail the same way, with explain saying so.
 *
 * Tensors of a rig live inside a larger allocation: the guard zone around a view holds
 * 0xFF bytes (NaN in every float dtype), so a kernel that reads outside its view produces
 * NaN and one that writes outside it is caught; an output view starts as +inf (the
 * sentinel: not NaN, so an element a kernel never writes is caught even where the
 * reference is NaN, and a read of the output before it is written, such as a gemm that
 * reads c with beta 0, turns into NaN or inf). After a call: nothing outside a view
 * changed, inputs are unchanged, every output element was written, and a failed call left
 * its outputs as they were.
 *
 * Coverage: `prog --list-sweep-ops` prints the dispatcher ops the program's rows force
 * (sweep_list_ops); ctest's sweep_coverage fails when an op that dlk_op_count lists is in
 * no family program's list, so an op cannot ship without a sweep row.
 */
#ifndef DLK_TEST_SWEEP_H
#define DLK_TEST_SWEEP_H

#include <stdbool.h>

#include "check.h"

/* ---- host arrays ---- */

#define SWEEP_MAX_ARRAYS 8
typedef struct sweep_array {
  double *v;
  int64_t n;
  dlk_dtype dt;
} sweep_array;
/* The inputs, outputs or expected outputs of one call, in a fixed order per op. */
typedef struct sweep_set {
  sweep_array a[SWEEP_MAX_ARRAYS];
  int n;
} sweep_set;

/* v rounded to dt and back. */
double sweep_round(dlk_dtype dt, double v);
/* A zeroed array of n values appended to s. */
double *sweep_add(sweep_set *s, dlk_dtype dt, int64_t n);
/* n uniform values in [lo, hi) rounded to dt, appended to s. */
double *sweep_uniform(sweep_set *s, dlk_dtype dt, int64_t n, double lo, double hi);
void sweep_free(sweep_set *s);
/* Every array of got against ref at its dtype's tolerance (TF32: f32 at 1e-3); 1 when
   all are within. An element still +inf (the output fill) where the reference is not
   +inf is reported as never written. */
int sweep_compare(const char *what, const sweep_set *got, const sweep_set *ref, int tf32);
/* The same with extra_atol added to every output's absolute tolerance (an op whose error
   grows with the problem, e.g. a dot product's with its length; say why where it is used). */
int sweep_compare_wider(const char *what, const sweep_set *got, const sweep_set *ref, int tf32, double extra_atol);
/* The same bits in every array (NaN payloads included). */
int sweep_identical(const sweep_set *a, const sweep_set *b);

/* ---- test tensors: views inside guarded allocations ---- */

typedef enum sweep_layout {
  SW_CONTIG = 0,  /* row-major contiguous */
  SW_TRANSPOSED,  /* the last two dims swapped in memory (column-major matrices) */
  SW_PADDED,      /* rows padded by 3 elements, the start one element off alignment */
  SW_PERMUTED,    /* the first two dims swapped in memory: with 3 or more dims, leading
                     dims that do not merge into rows (only the CPU reference takes
                     them); with 2, as SW_TRANSPOSED */
  SW_CHANNELS_LAST /* 4-D [N, C, H, W] laid out as torch.channels_last: strides
                      [H*W*C, 1, W*C, C]; other ranks row-major */
} sweep_layout;

typedef struct sweep_tensor {
  dlk_tensor v;    /* the view handed to the library */
  dlk_tensor base; /* the allocation around it */
  int64_t off;     /* element offset of v.data in base */
  int64_t base_n;
  int live;
} sweep_tensor;

/* The tensors of one call, in the order they are added; sweep_end checks them. */
#define SWEEP_MAX_TENSORS 12
typedef struct sweep_rig {
  dlk_context *ctx;
  sweep_tensor t[SWEEP_MAX_TENSORS];
  int role[SWEEP_MAX_TENSORS];
  const double *vals[SWEEP_MAX_TENSORS];
  int n;
  int failed; /* a tensor could not be set up: run must not call the library */
} sweep_rig;

sweep_tensor *sweep_in(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape,
                       sweep_layout lay, const double *vals);
sweep_tensor *sweep_out(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape,
                        sweep_layout lay);
/* Read and written in place (optimizer state, in-place ops): starts as vals. */
sweep_tensor *sweep_inout(sweep_rig *r, dlk_dtype dt, int ndim, const int64_t *shape,
                          sweep_layout lay, const double *vals);
/* After the call (status s): appends the outputs (out and inout tensors, in the order
   added) to out, checks the guard zones and the inputs (and, for a failed call, that
   the outputs are still their fill), frees the tensors; returns s. An element never
   written reads back as +inf, which sweep_compare holds against the reference. */
dlk_status sweep_end(sweep_rig *r, dlk_status s, sweep_set *out);

/* ---- the rows ---- */

/* The first member of every case struct. */
typedef struct sweep_tags {
  bool big;    /* large shapes (tiling paths): only in the run against a reference
                  context (the GPU run), not on the CPU nor in the quick subset */
  bool notune; /* the call reads what it writes: the autotuner must not time it */
} sweep_tags;

typedef struct sweep_op {
  const char *label; /* what the report calls it ("linear_fwd") */
  const char *op;    /* the dispatcher op that dlk_force_variant selects ("gemm") */
  const void *cases; /* an array of the op's case struct (first member sweep_tags) */
  int ncases;
  size_t case_size;
  void (*gen)(const void *c, dlk_dtype dt, sweep_set *in);
  dlk_status (*run)(dlk_context *ctx, const void *c, dlk_dtype dt, const sweep_set *in,
                    sweep_set *out);
  void (*naive)(const void *c, dlk_dtype dt, const sweep_set *in, sweep_set *ref);
  int tf32;    /* f32 is also run with allow_tf32 on a CUDA context */
  int tunable; /* 1: one dispatch of a tunable op (the first AUTO call adds a cache entry);
                  0: never tuned (no entry); -1: a composite of several dispatches (the
                  count is not checked) */
  const dlk_dtype *dtypes; /* NULL: f32, f16, bf16, f64 */
  int ndtypes;
  /* NULL: sweep_compare. Else the op's own comparison, told which variant ran (e.g.
     Hogwild variants race: their bits change, their result must not). */
  int (*compare)(const char *what, const void *c, int variant, const sweep_set *got,
                 const sweep_set *ref, int tf32);
} sweep_op;

/* The cases, count and element size of a case table, for a sweep_op initializer. */
#define SWEEP_CASES(table) (table), (int)(sizeof(table) / sizeof((table)[0])), sizeof((table)[0])

/* The sweep over ops[0..n): ctx is the context under test; ref_ctx, when not NULL, a CPU
   context whose reference run gives the expected outputs (the GPU run), else the naive
   functions do. quick (DLK_TEST_QUICK): 0 every case; 1 the first 3 cases of each op in
   f32 and f16 only (compute-sanitizer, ASan); 2 every case but the big ones, in every dtype
   (the emulated device, tests/emu). Prints the per-variant report. */
void sweep_run(dlk_context *ctx, dlk_context *ref_ctx, const sweep_op *ops, int n, int quick);

/* With --list-sweep-ops among the arguments: prints each op the rows force, one per line,
   and returns 1 (the program then exits 0); else 0. */
int sweep_list_ops(int argc, char **argv, const sweep_op *ops, int n);

#endif /* DLK_TEST_SWEEP_H */
