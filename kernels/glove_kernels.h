/*
 * C-callable launchers of the glove family's CUDA kernels (kernels/glove.cu), used by the
 * variant rows of host/glove_cuda.c. Same conventions as kernels/kernels.h: each returns
 * the cudaError_t of its CUDA calls as an int (0 = cudaSuccess), takes the stream as a
 * void * (cudaStream_t), and needs no CUDA header. Device pointers unless a name says
 * HOST. `ws` is the workspace the row's workspace() callback asked for (the `*_ws`
 * function below with the same descriptor); `pinned` is at least 64 bytes of pinned host
 * memory (the context's host scratch) used to read back small results.
 *
 * The launchers that produce host outputs (epoch cost, co-occurrence records, top-k)
 * synchronise the stream before they return.
 */
#ifndef DLK_GLOVE_KERNELS_H
#define DLK_GLOVE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- glove_epoch ---------------------------------------------------------------------- */

/* One chunk of AdaGrad updates (the rule of include/dlk.h, dlk_glove_train_epoch).
   params, gradsq: [2V, dim+1] contiguous, dtype DLK_F32 or DLK_F64. records: `count`
   16-byte records {int32 w1, int32 w2, double x} (16-byte aligned). */
typedef struct dlk_k_glove_epoch {
  int dtype;
  void *params, *gradsq;
  int64_t vocab_size;
  int dim;
  const void *records;
  int64_t count;
  double eta, alpha, x_max, grad_clip;
  int keras;
} dlk_k_glove_epoch;

/* Results read back to the host. bad_ids: records whose ids were outside [1, V] (never
   touched; the host checks make it 0). stalled: det only, records whose wait for their
   predecessors hit the 10 s watchdog (a bug, never expected: the run is then an error). */
typedef struct dlk_k_glove_epoch_out {
  double cost_sum;
  int64_t skipped;
  int64_t bad_ids;
  int64_t stalled;
} dlk_k_glove_epoch_out;

/* 1 `warp`: lock-free Hogwild, a group of 8/16/32 lanes per record; changes are atomic
   adds to the rows (stale reads, no lost steps); records in flight are capped from the
   chunk's hottest row (see HOG_HOT in glove.cu), which costs one histogram pass and a
   stream synchronisation per chunk. Workspace grows with V (2 V counters). */
size_t dlk_k_glove_epoch_warp_ws(const dlk_k_glove_epoch *e);
int dlk_k_glove_epoch_warp(const dlk_k_glove_epoch *e, void *ws, size_t ws_bytes, void *pinned,
                           dlk_k_glove_epoch_out *out, void *stream);
/* 2 `det`: every row sees its updates in record order (each record waits for the
   previous record of its word row and of its context row), so the result is the same
   bits on every run; costs reduced in a fixed order. count must be < 2^31. */
size_t dlk_k_glove_epoch_det_ws(const dlk_k_glove_epoch *e);
int dlk_k_glove_epoch_det(const dlk_k_glove_epoch *e, void *ws, size_t ws_bytes, void *pinned,
                          dlk_k_glove_epoch_out *out, void *stream);

/* ---- glove_cooccur_chunk ---------------------------------------------------------------- */

typedef struct dlk_k_glove_cooc_desc {
  const int32_t *ids; /* HOST, n ids (0 = line break, 1..V words) */
  int64_t n, n_prefix, vocab_size;
  int window, symmetric, distance_weighting;
  /* 0: cub::DeviceReduce::ReduceByKey (fast, sum order not fixed); 1: each pair's weights
     summed by one thread in generation order (deterministic, the CPU reference's bits). */
  int ordered;
} dlk_k_glove_cooc_desc;

/* Workspace bytes; 0 when cub cannot size it (then the row refuses the case). */
size_t dlk_k_glove_cooc_ws(const dlk_k_glove_cooc_desc *c);
/* Count the chunk into out_host (HOST, out_cap records, sorted by (w1, w2), summed);
   *out_count records. *bad_ids > 0: ids outside [0, V] were found and nothing was
   written. Returns cudaErrorInvalidValue when the records would not fit out_cap. */
int dlk_k_glove_cooc_count(const dlk_k_glove_cooc_desc *c, void *ws, size_t ws_bytes, void *pinned,
                     void *out_host, int64_t out_cap, int64_t *out_count, int64_t *bad_ids,
                     void *stream);

/* ---- glove_topk -------------------------------------------------------------------------- */

typedef struct dlk_k_glove_topk {
  int dtype;          /* DLK_F32 or DLK_F64 */
  const void *scores; /* [rows, cols] row-major contiguous */
  int64_t rows, cols;
  const int32_t *exclude; /* HOST [cols, n_exclude], -1 = none */
  int n_exclude;
  int k;
} dlk_k_glove_topk;

/* 1 `lanes` (k <= 32): lanes over 32 columns, warps over row slices, per-lane sorted
   lists in registers, then a merge of the slices. */
#define DLK_K_GLOVE_TOPK_LANES_MAX_K 32
size_t dlk_k_glove_topk_lanes_ws(const dlk_k_glove_topk *t);
int dlk_k_glove_topk_lanes(const dlk_k_glove_topk *t, void *ws, size_t ws_bytes, int32_t *idx_host,
                           double *val_host, void *stream);
/* 2 `sort` (any k): stable radix sort of every column by score (rows * cols < 2^31). */
size_t dlk_k_glove_topk_sort_ws(const dlk_k_glove_topk *t);
int dlk_k_glove_topk_sort(const dlk_k_glove_topk *t, void *ws, size_t ws_bytes, int32_t *idx_host,
                          double *val_host, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DLK_GLOVE_KERNELS_H */
