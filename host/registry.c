/*
 * What this build holds: the op families (in the order dlk_op_count / dlk_op_name list
 * their ops) and the vendor libraries dlk_query_versions reports. This file sits above
 * host/core and the families: core walks dlk_families (declared in core/internal.h)
 * without knowing which families exist, and includes no family or vendor header. Adding
 * a family is two lines here: its extern and its entry.
 */
#include <string.h>

#include "core/internal.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cublas/handle.h"
#if DLK_HAVE_CUDNN
#include "cudnn/handle.h"
#endif
#endif

#ifndef DLK_CUDA_ARCHS_STR
#define DLK_CUDA_ARCHS_STR ""
#endif

extern const dlk_op *const dlk_nn_ops[];    /* host/nn/nn.c */
extern const dlk_op *const dlk_glove_ops[]; /* host/glove/glove.c */
extern const dlk_op *const dlk_conv_ops[];  /* host/conv/conv.c */
extern const dlk_op *const dlk_attention_ops[]; /* host/attention/attention.c */
extern const dlk_op *const dlk_rnn_ops[];   /* host/rnn/rnn.c */

const dlk_op *const *const dlk_families[] = {
    dlk_nn_ops,
    dlk_glove_ops,
    dlk_conv_ops,
    dlk_attention_ops,
    dlk_rnn_ops,
    NULL,
};

dlk_status dlk_query_versions(dlk_context *ctx, dlk_versions *out) {
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_query_versions: out is NULL");
  memset(out, 0, sizeof *out);
  out->cuda_archs = DLK_CUDA_ARCHS_STR;
#if DLK_HAVE_CUDA
  if (cudaRuntimeGetVersion(&out->cuda_runtime) != cudaSuccess) out->cuda_runtime = 0;
  if (cudaDriverGetVersion(&out->cuda_driver) != cudaSuccess) out->cuda_driver = 0;
  cudaGetLastError();
  out->cublas = dlk_cublas_version();
#if DLK_HAVE_CUDNN
  out->cudnn = dlk_cudnn_version();
  out->cudnn_built = dlk_cudnn_built_version();
#endif
#endif
  return DLK_OK;
}
