/*
 * glove family, internal: the argument record of every dispatched op, the row functions
 * each backend provides, and the helpers the family's files share (defined in glove.c).
 *
 * Files of the family, each depending only on those above it:
 *   host/glove/vocab.c    tokenizer and vocabulary (vocab.h)
 *   host/glove/glove.c    public training/eval entry points: checks, records, dispatch,
 *                         streaming of record chunks, op tables; the shared helpers
 *   host/glove/glove_cpu.c  id 0 of every op (the CPU reference, the spec) and id 20 of
 *                         glove_epoch (Hogwild pthreads)
 *   host/glove/glove_cuda.c  CUDA rows (1..9) over kernels/glove/ (glove.h there)
 *   host/glove/io.c       every file format: vocab.txt, records, params/gradsq binary,
 *                         vectors text, checkpoint; atomic writes (io.h)
 *   host/glove/cooccur.c  co-occurrence (dense table + spilled sorted runs + merge, or
 *                         GPU chunks) and the tool's shuffle
 *   tests/test_glove.c    everything against the reference, the tool's golden files
 *
 * Dispatched ops (stable names, for DLK_FORCE_VARIANT and the autotune cache):
 *   glove_epoch          one pass of AdaGrad over a chunk of records
 *   glove_cooccur_chunk  count a chunk of token ids into sorted, summed records
 *   glove_topk           per-column top-k of a score matrix with excluded rows
 */
#ifndef DLK_GLOVE_H
#define DLK_GLOVE_H

#include <stdio.h>

#include "../core/internal.h"

/* ---- glove_epoch --------------------------------------------------------------------
   One pass over `count` records in the order given (variant 0 exactly in that order;
   Hogwild and GPU variants in any order, with races). The update rule is the one in
   include/dlk.h (dlk_glove_train_epoch). The records are already validated: ids in
   [1, vocab_size], x finite and > 0; a variant need not check them again.
   params and gradsq: [2V, dim+1] row-major contiguous, `dtype` (F64, or F32 where a
   variant says so), on the context's device. records: `count` records on the context's
   device. The run writes *cost_sum (sum of 0.5*fdiff*diff over applied records) and
   *skipped (records whose diff or fdiff was not finite) to HOST memory before it
   returns (a GPU variant synchronises). */
typedef struct dlk_glove_epoch_args {
  dlk_dtype dtype;
  void *params;
  void *gradsq;
  int64_t vocab_size; /* V */
  int dim;            /* d */
  const dlk_glove_record *records;
  int64_t count;
  double eta, alpha, x_max, grad_clip;
  bool keras;
  int threads;                 /* CPU Hogwild: resolved thread count (>= 1) */
  const volatile int *cancel;  /* CPU variants poll it every 64k records; may be NULL */
  double *cost_sum;            /* host out */
  int64_t *skipped;            /* host out */
} dlk_glove_epoch_args;

/* ---- glove_cooccur_chunk -------------------------------------------------------------
   Count a chunk of a token-id stream into records sorted by (w1, w2) with duplicates
   summed. ids: HOST memory, n entries; 0 is a line break, 1..vocab_size are in-vocabulary
   words (out-of-vocabulary tokens were dropped before). The first n_prefix entries are
   context only (the end of the previous chunk's current line, at most `window` ids):
   they pair with targets at positions >= n_prefix but are never targets themselves.
   For a target at position t (ids[t] > 0, t >= n_prefix) and k = 1..window while t-k >= 0
   and ids[t-k] > 0: weight = distance_weighting ? 1.0/k : 1.0; record (ids[t-k], ids[t])
   += weight and, when symmetric, (ids[t], ids[t-k]) += weight.
   Sum order: the CPU reference sums each pair's weights in generation order (t
   ascending, then k ascending, the left-context record before its symmetric twin), which
   is the tool's order; other variants may sum in any order (results then differ in the
   last bits). out: HOST buffer of out_cap records; out_cap >= n_pairs(=number of
   weights generated) is always enough; a variant returns DLK_ERR_INTERNAL if it would
   overflow (the host sizes it). *out_count gets the number of records. */
typedef struct dlk_glove_cooccur_chunk_args {
  const int32_t *ids;
  int64_t n, n_prefix;
  int64_t vocab_size;
  int window;
  bool symmetric, distance_weighting;
  dlk_glove_record *out;
  int64_t out_cap;
  int64_t *out_count;
} dlk_glove_cooccur_chunk_args;

/* ---- glove_topk ------------------------------------------------------------------------
   scores [rows, cols] (F32 or F64, row-major contiguous, on the context's device):
   column q holds the scores of every row for query q. For each column, the k rows with
   the largest scores, best first, skipping the rows listed in exclude[q * n_exclude ..]
   (HOST, 0-based, -1 = none); ties go to the lower row index (numpy argmax). NaN scores
   never win. Rows fewer than k + n_exclude: the missing slots get id -1 and -inf.
   idx [cols, k] and val [cols, k]: HOST memory. */
typedef struct dlk_glove_topk_args {
  dlk_tensor scores;
  const int32_t *exclude;
  int n_exclude;
  int k;
  int32_t *idx;
  double *val;
} dlk_glove_topk_args;

/* ---- the row functions of the variant tables in host/glove/glove.c ----
   Declared with core/internal.h's DLK_SUPPORTS_FN / DLK_WORKSPACE_FN / DLK_RUN_FN. */

/* host/glove/glove_cpu.c: the CPU reference (id 0) of every op and the Hogwild trainer
   (id 20) of glove_epoch. */
DLK_SUPPORTS_FN(dlk_glove_epoch_cpu_supports);
DLK_WORKSPACE_FN(dlk_glove_epoch_cpu_workspace);
DLK_RUN_FN(dlk_glove_epoch_cpu_run);
DLK_SUPPORTS_FN(dlk_glove_epoch_hogwild_supports);
DLK_WORKSPACE_FN(dlk_glove_epoch_hogwild_workspace);
DLK_RUN_FN(dlk_glove_epoch_hogwild_run);
DLK_WORKSPACE_FN(dlk_glove_cooccur_chunk_cpu_workspace);
DLK_RUN_FN(dlk_glove_cooccur_chunk_cpu_run);
DLK_SUPPORTS_FN(dlk_glove_topk_cpu_supports);
DLK_RUN_FN(dlk_glove_topk_cpu_run);

#if DLK_HAVE_CUDA
/* host/glove/glove_cuda.c: the kernels of kernels/glove/ (ids 1..9). */
DLK_SUPPORTS_FN(dlk_glove_epoch_cuda_supports);
DLK_WORKSPACE_FN(dlk_glove_epoch_cuda_workspace);
DLK_RUN_FN(dlk_glove_epoch_cuda_run);
DLK_SUPPORTS_FN(dlk_glove_cooccur_chunk_cuda_supports);
DLK_WORKSPACE_FN(dlk_glove_cooccur_chunk_cuda_workspace);
DLK_RUN_FN(dlk_glove_cooccur_chunk_cuda_run);
DLK_SUPPORTS_FN(dlk_glove_topk_cuda_supports);
DLK_WORKSPACE_FN(dlk_glove_topk_cuda_workspace);
DLK_RUN_FN(dlk_glove_topk_cuda_run);
#endif

extern const dlk_op dlk_glove_epoch_op, dlk_glove_cooccur_chunk_op, dlk_glove_topk_op;

/* ---- shared helpers (glove.c) ---- */

/* glibc's rand() (the TYPE_3 additive feedback generator of its default 128-byte state)
   as a value, so the tool's rand() sequences are reproduced without global state:
   state[i] = 16807 * state[i-1] mod (2^31 - 1) seeded from srand's seed, then each step
   state[f] += state[r] (mod 2^32, f = r + 3 on a ring of 31) and returns state[f] >> 1;
   srand discards the first 310 steps. */
typedef struct dlk_glibc_rand {
  int32_t state[31];
  int f, r;
} dlk_glibc_rand;
void dlk_glibc_srand(dlk_glibc_rand *g, uint32_t seed);
int32_t dlk_glibc_rand_next(dlk_glibc_rand *g);
#define DLK_GLIBC_RAND_MAX 2147483647

/* A model the caller hands in (train, embeddings, save, checkpoint): created, V in
   [1, 2^31) and d in [1, 2^20] as dlk_glove_model_create makes them (so 2V(d+1) cannot
   overflow), params and gradsq well-formed contiguous [2V, d+1] tensors of one dtype (F64
   or F32) on the context's device. */
dlk_status dlk_glove_check_model(dlk_context *ctx, const char *op, const dlk_glove_model *m);
/* Check records in host memory: ids in [1, V], x finite and > 0. `base` is the index of
   recs[0] in the file (for the message). */
dlk_status dlk_glove_check_records(dlk_context *ctx, const char *what,
                                   const dlk_glove_record *recs, int64_t n, int64_t vocab_size,
                                   int64_t base);
/* The same check without a context (for threads that must not touch one): DLK_OK, or the
   status and in msg the message dlk_glove_check_records would record. */
dlk_status dlk_glove_check_records_msg(const char *what, const dlk_glove_record *recs, int64_t n,
                                       int64_t vocab_size, int64_t base, char *msg, size_t len);

/* Stable LSD radix sort of n records by (w1, w2) (host/glove/glove_cpu.c): tmp holds n
   records plus DLK_GLOVE_SORT_EXTRA bytes. Then sum runs of equal keys in place (in
   order), returning the new count. */
#define DLK_GLOVE_SORT_EXTRA ((size_t)(1 << 16) * sizeof(int64_t))
void dlk_glove_sort_records(dlk_glove_record *recs, void *tmp, int64_t n, int64_t vocab_size);
int64_t dlk_glove_reduce_sorted(dlk_glove_record *recs, int64_t n);

/* madvise(MADV_HUGEPAGE) on the 2 MiB-aligned inside of a large host block not touched
   yet (glove.c): random access to big tables then costs far fewer TLB misses and page
   faults. Advice only. */
void dlk_glove_huge_pages(void *p, size_t bytes);

/* Resolved CPU thread count: explicit > ctx cpu_threads > online cores. */
int dlk_glove_cpu_threads(const dlk_context *ctx, int requested);

/* Host staging buffers that the GPU reads or writes (record chunks, token ids, counted
   records): pinned (cudaMallocHost) on a CUDA context, so copies run at full PCIe speed
   and asynchronously; malloc on a CPU one, or when the driver refuses to pin that much
   (*pinned says which). NULL when out of memory. Free with dlk_glove_host_free. */
void *dlk_glove_host_alloc(const dlk_context *ctx, size_t bytes, bool *pinned);
void dlk_glove_host_free(void *p, bool pinned);
/* Device memory a workspace may take now: cudaMemGetInfo's free bytes plus the
   workspace arena the context holds (it is freed before it grows); 0 on a CPU context. */
dlk_status dlk_glove_device_free_bytes(dlk_context *ctx, size_t *bytes);

#endif /* DLK_GLOVE_H */
