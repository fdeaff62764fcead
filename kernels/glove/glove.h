/*
 * C-callable launchers of the glove family's CUDA kernels, used by the variant rows of
 * host/glove/glove_cuda.c. One .cu file per op, each launcher right under its kernels:
 *   epoch.cu (glove_epoch: 1 warp, 2 det)  cooccur.cu (glove_cooccur_chunk: 1 sort_rbk,
 *   2 sort_ordered)  topk.cu (glove_topk: 1 lanes, 2 sort)
 * The launcher convention is kernels/common.h's: dlk_k_<op>(desc, impl, ws, stream) and
 * dlk_k_<op>_ws(desc, impl). Device pointers unless a field says HOST. `pinned` is at
 * least 64 bytes of pinned host memory (the context's host scratch) used to read back
 * small results. These launchers produce host outputs (epoch cost, co-occurrence
 * records, top-k), so they synchronise the stream before they return.
 */
#ifndef DLK_KERNELS_GLOVE_H
#define DLK_KERNELS_GLOVE_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- glove_epoch (epoch.cu) ------------------------------------------------------------ */

/* Results read back to the host. bad_ids: records whose ids were outside [1, V] (never
   touched; the host checks make it 0). stalled: det only, records whose wait for their
   predecessors hit the 10 s watchdog (a bug, never expected: the run is then an error). */
typedef struct dlk_k_glove_epoch_out {
  double cost_sum;
  int64_t skipped;
  int64_t bad_ids;
  int64_t stalled;
} dlk_k_glove_epoch_out;

/* One chunk of AdaGrad updates (the rule of include/dlk.h, dlk_glove_train_epoch).
   params, gradsq: [2V, dim+1] contiguous, dtype DLK_F32 or DLK_F64. records: `count`
   16-byte records {int32 w1, int32 w2, double x} (16-byte aligned). */
typedef struct dlk_k_glove_epoch_desc {
  int dtype;
  void *params, *gradsq;
  int64_t vocab_size;
  int dim;
  const void *records;
  int64_t count;
  double eta, alpha, x_max, grad_clip;
  int keras;
  void *pinned;
  dlk_k_glove_epoch_out *out; /* HOST */
} dlk_k_glove_epoch_desc;

/* impl 1 `warp`: lock-free Hogwild, a group of 8/16/32 lanes per record; changes are
   atomic adds to the rows (stale reads, no lost steps); records in flight are capped from
   the chunk's hottest row (see HOG_HOT in epoch.cu), which costs one histogram pass and a
   stream synchronisation per chunk. Workspace grows with V (2 V counters).
   impl 2 `det`: every row sees its updates in record order (each record waits for the
   previous record of its word row and of its context row), so the result is the same
   bits on every run; costs reduced in a fixed order. count must be < 2^31; its workspace
   size is 0 when cub cannot size the schedule's sorts (the row then refuses the call). */
size_t dlk_k_glove_epoch_ws(const dlk_k_glove_epoch_desc *a, int impl);
int dlk_k_glove_epoch(const dlk_k_glove_epoch_desc *a, int impl, void *ws, void *stream);

/* ---- glove_cooccur_chunk (cooccur.cu) ---------------------------------------------------- */

typedef struct dlk_k_glove_cooccur_chunk_desc {
  const int32_t *ids; /* HOST, n ids (0 = line break, 1..V words) */
  int64_t n, n_prefix, vocab_size;
  int window, symmetric, distance_weighting;
  void *pinned;
  void *out_host;     /* HOST, out_cap records, sorted by (w1, w2), summed */
  int64_t out_cap;
  int64_t *out_count; /* HOST: the number of records */
  int64_t *bad_ids;   /* HOST: > 0 when ids outside [0, V] were found (nothing written) */
} dlk_k_glove_cooccur_chunk_desc;

/* Count the chunk into out_host. impl 1 `sort_rbk`: cub::DeviceReduce::ReduceByKey (fast,
   sum order not fixed); impl 2 `sort_ordered`: each pair's weights summed by one thread in
   generation order (deterministic, the CPU reference's bits). The workspace size is 0
   when cub cannot size it (then the row refuses the case). */
size_t dlk_k_glove_cooccur_chunk_ws(const dlk_k_glove_cooccur_chunk_desc *a, int impl);
int dlk_k_glove_cooccur_chunk(const dlk_k_glove_cooccur_chunk_desc *a, int impl, void *ws,
                              void *stream);

/* ---- glove_topk (topk.cu) ------------------------------------------------------------------ */

typedef struct dlk_k_glove_topk_desc {
  int dtype;          /* DLK_F32 or DLK_F64 */
  const void *scores; /* [rows, cols] row-major contiguous */
  int64_t rows, cols;
  const int32_t *exclude; /* HOST [cols, n_exclude], -1 = none */
  int n_exclude;
  int k;
  int32_t *idx_host; /* HOST [cols, k] */
  double *val_host;  /* HOST [cols, k] */
} dlk_k_glove_topk_desc;

/* impl 1 `lanes` (k <= DLK_K_GLOVE_TOPK_LANES_MAX_K): lanes over 32 columns, warps over
   row slices, per-lane sorted lists in registers, then a merge of the slices.
   impl 2 `sort` (any k): stable radix sort of every column by score (rows * cols < 2^31);
   its workspace size is 0 when cub cannot size the sort. */
#define DLK_K_GLOVE_TOPK_LANES_MAX_K 32
size_t dlk_k_glove_topk_ws(const dlk_k_glove_topk_desc *a, int impl);
int dlk_k_glove_topk(const dlk_k_glove_topk_desc *a, int impl, void *ws, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DLK_KERNELS_GLOVE_H */
