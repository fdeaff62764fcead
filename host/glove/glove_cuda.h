/* glove family: the CUDA variant rows (1..9) per op, as lists that host/glove.c splices
   into its tables after the CPU rows. The rows live in host/glove_cuda.c (glue) and call
   the launchers of kernels/glove.cu (kernels/glove_kernels.h). See host/glove.h for the
   argument records and host/cpu/glove_cpu.c for the rule every variant must match.
   Included only when DLK_HAVE_CUDA. */
#ifndef DLK_GLOVE_CUDA_H
#define DLK_GLOVE_CUDA_H

#include "../core/internal.h"

/* glove_epoch: 1 `warp` (lock-free Hogwild, a group of 8/16/32 lanes per record, F32 and
   F64; refused in deterministic mode), 2 `det` (each row sees its updates in record
   order: the same bits every run). */
extern const dlk_variant dlk_glove_epoch_warp, dlk_glove_epoch_det;
#define DLK_GLOVE_EPOCH_GPU_VARIANTS &dlk_glove_epoch_warp, &dlk_glove_epoch_det,

/* glove_cooccur_chunk: GPU sort-and-reduce of a token chunk. 1 `sort_rbk` (cub radix
   sort + cub ReduceByKey; refused in deterministic mode), 2 `sort_ordered` (radix sort +
   each pair's weights summed in generation order: the CPU reference's bits). */
extern const dlk_variant dlk_glove_cooccur_chunk_rbk, dlk_glove_cooccur_chunk_ordered;
#define DLK_GLOVE_COOCCUR_CHUNK_GPU_VARIANTS &dlk_glove_cooccur_chunk_rbk, &dlk_glove_cooccur_chunk_ordered,

/* glove_topk: 1 `lanes` (k <= 32: registers per lane, row slices merged), 2 `sort` (any
   k: stable radix sort of each column). */
extern const dlk_variant dlk_glove_topk_lanes, dlk_glove_topk_sort;
#define DLK_GLOVE_TOPK_GPU_VARIANTS &dlk_glove_topk_lanes, &dlk_glove_topk_sort,

#endif /* DLK_GLOVE_CUDA_H */
