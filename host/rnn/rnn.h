/*
 * rnn family, internal: the records (host/rnn/rnn_args.h), the shared helpers
 * (host/rnn/rnn_layout.h) and the variant rows' functions.
 *
 * Files of the family:
 *   host/rnn/rnn.c         public functions: checks, records, shape keys, variant tables
 *   host/rnn/rnn_layout.c  records to per-layer weights, the dlk reserve layout
 *   host/rnn/rnn_cpu.c     variant 0 of every op: the CPU reference (the spec)
 *   host/rnn/rnn_cuda.c    CUDA rows (1..9)
 *   host/rnn/rnn_cudnn.c   vendor rows (10, 11): cuDNN's RNN API
 *   kernels/rnn/           the kernels (launcher prototypes in kernels/rnn/rnn.h)
 *   tests/test_rnn.c       goldens, finite differences, bad input, sweep, every variant
 */
#ifndef DLK_RNN_H
#define DLK_RNN_H

#include "rnn_args.h"
#include "rnn_layout.h"

/* ---- variant rows: the functions; the rows are written out in host/rnn/rnn.c ---- */
DLK_WORKSPACE_FN(dlk_rnn_cell_fwd_cpu_workspace);
DLK_RUN_FN(dlk_rnn_cell_fwd_cpu_run);
DLK_WORKSPACE_FN(dlk_rnn_cell_bwd_cpu_workspace);
DLK_RUN_FN(dlk_rnn_cell_bwd_cpu_run);
DLK_WORKSPACE_FN(dlk_rnn_fwd_cpu_workspace);
DLK_RUN_FN(dlk_rnn_fwd_cpu_run);
DLK_SUPPORTS_FN(dlk_rnn_bwd_cpu_supports);
DLK_WORKSPACE_FN(dlk_rnn_bwd_cpu_workspace);
DLK_RUN_FN(dlk_rnn_bwd_cpu_run);
#if DLK_HAVE_CUDA
DLK_SUPPORTS_FN(dlk_rnn_cell_fwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_rnn_cell_fwd_cuda_workspace);
DLK_RUN_FN(dlk_rnn_cell_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_rnn_cell_bwd_cuda_supports);
DLK_RUN_FN(dlk_rnn_cell_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_rnn_fwd_cuda_supports);
DLK_RUN_FN(dlk_rnn_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_rnn_bwd_cuda_supports);
DLK_RUN_FN(dlk_rnn_bwd_cuda_run);
#if DLK_HAVE_CUDNN
DLK_SUPPORTS_FN(dlk_rnn_fwd_cudnn_supports);
DLK_WORKSPACE_FN(dlk_rnn_fwd_cudnn_workspace);
DLK_RUN_FN(dlk_rnn_fwd_cudnn_run);
DLK_SUPPORTS_FN(dlk_rnn_bwd_cudnn_supports);
DLK_WORKSPACE_FN(dlk_rnn_bwd_cudnn_workspace);
DLK_RUN_FN(dlk_rnn_bwd_cudnn_run);
/* Bytes of a cuDNN-format reserve (header included), 0 when cuDNN cannot run the case. */
size_t dlk_rnn_cudnn_reserve_bytes(dlk_context *ctx, const dlk_rnn_fwd_args *a);
#endif
#endif

#endif /* DLK_RNN_H */
