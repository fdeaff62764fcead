/* glove family: the CUDA variant rows (1..9) per op, as lists that host/glove.c splices
   into its tables after the CPU rows. The rows live in host/glove_cuda.c (glue) and call
   the launchers of kernels/glove.cu. See host/glove.h for the argument records and
   /work/briefs/glove_contract.md for what each variant must do. Empty until the GPU
   variants land. */
#ifndef DLK_GLOVE_CUDA_H
#define DLK_GLOVE_CUDA_H

#include "internal.h"

/* glove_epoch: e.g. `&dlk_glove_epoch_warp, &dlk_glove_epoch_det,` (ids 1 and 2). */
#define DLK_GLOVE_EPOCH_GPU_VARIANTS
/* glove_cooccur_chunk: GPU sort-and-reduce of a token chunk. */
#define DLK_GLOVE_COOCCUR_CHUNK_GPU_VARIANTS
/* glove_topk: per-column top-k of the similarity scores. */
#define DLK_GLOVE_TOPK_GPU_VARIANTS

#endif /* DLK_GLOVE_CUDA_H */
