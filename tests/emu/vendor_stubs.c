/* The emulated device (DLK_CUDA_EMU) has no cuBLAS, cuBLASLt or cuDNN: this file stands in
   for their implementation files in that build (host/cublas/, host/cudnn/ with graph.c,
   host/<family>/<family>_cudnn.c and nn_cublas.c; cmake/dlk_emu.cmake leaves them out). The
   vendor rows stay in every op's table with their ids and names (the emulated build
   defines DLK_HAVE_CUDNN for the family files), and each refuses every case with the
   reason, so dlk_explain and the sweeps say why they did not run.
   A family that adds a vendor row adds its three functions here (one DLK_EMU_VENDOR_ROW
   line); the emulated build does not link until it does. */
#include <stdio.h>

#include "../../host/attention/attention.h"
#include "../../host/conv/conv.h"
#include "../../host/core/internal.h"
#include "../../host/cublas/handle.h"
#include "../../host/cudnn/handle.h"
#include "../../host/nn/nn.h"
#include "../../host/rnn/rnn.h"

static const char kWhy[] = "not in the emulated build (vendor libraries need a real GPU)";

static bool emu_refuses(char *why, size_t n) {
  if (why && n) snprintf(why, n, "%s", kWhy);
  return false;
}

/* A vendor row's supports (always false, with the reason), workspace (0) and run
   (DLK_ERR_NOT_SUPPORTED). Pass NONE for a function the row does not have. */
#define DLK_EMU_SUPPORTS(name)                                                        \
  DLK_SUPPORTS_FN(name) {                                                             \
    (void)ctx, (void)args, (void)impl;                                                \
    return emu_refuses(why, n);                                                       \
  }
#define DLK_EMU_WORKSPACE(name)                                                       \
  DLK_WORKSPACE_FN(name) {                                                            \
    (void)ctx, (void)args, (void)impl;                                                \
    return 0;                                                                         \
  }
#define DLK_EMU_RUN(name)                                                             \
  DLK_RUN_FN(name) {                                                                  \
    (void)args, (void)impl, (void)ws, (void)ws_bytes;                                 \
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s: %s", #name, kWhy);               \
  }
#define DLK_EMU_VENDOR_ROW(prefix) \
  DLK_EMU_SUPPORTS(prefix##_supports) DLK_EMU_WORKSPACE(prefix##_workspace) DLK_EMU_RUN(prefix##_run)

/* host/nn/nn_cublas.c: gemm 10 cublas, 11 cublaslt */
DLK_EMU_SUPPORTS(dlk_gemm_cublas_supports)
DLK_EMU_RUN(dlk_gemm_cublas_run)
DLK_EMU_WORKSPACE(dlk_gemm_cublaslt_workspace)
DLK_EMU_RUN(dlk_gemm_cublaslt_run)
/* host/nn/nn_cudnn.c */
DLK_EMU_VENDOR_ROW(dlk_softmax_fwd_cudnn)
DLK_EMU_VENDOR_ROW(dlk_softmax_bwd_cudnn)
/* host/conv/conv_cudnn.c */
DLK_EMU_VENDOR_ROW(dlk_conv2d_fwd_cudnn)
DLK_EMU_VENDOR_ROW(dlk_conv2d_bwd_data_cudnn)
DLK_EMU_VENDOR_ROW(dlk_conv2d_bwd_filter_cudnn)
/* host/attention/attention_cudnn.c */
DLK_EMU_VENDOR_ROW(dlk_sdpa_fwd_cudnn)
DLK_EMU_VENDOR_ROW(dlk_sdpa_bwd_cudnn)
/* host/rnn/rnn_cudnn.c: rnn_fwd 10 cudnn, 11 cudnn_persist; rnn_bwd 10 cudnn */
DLK_EMU_VENDOR_ROW(dlk_rnn_fwd_cudnn)
DLK_EMU_VENDOR_ROW(dlk_rnn_bwd_cudnn)
/* rnn_reserve_size asks for cuDNN's reserve besides dlk's: 0, cuDNN cannot run the case. */
size_t dlk_rnn_cudnn_reserve_bytes(dlk_context *ctx, const dlk_rnn_fwd_args *a) {
  (void)ctx, (void)a;
  return 0;
}

/* host/cublas/handle.c, host/cudnn/handle.c: what the rest of the library calls
   (dlk_query_versions reports version 0: absent). */
dlk_status dlk_check_cublas(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == 0) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_CUBLAS, "%s:%d: %s: %s", file, line, expr, kWhy);
}
dlk_status dlk_cublas_handle(dlk_context *ctx, void **handle) {
  *handle = NULL;
  return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "cuBLAS: %s", kWhy);
}
dlk_status dlk_cublaslt_handle(dlk_context *ctx, void **handle) {
  *handle = NULL;
  return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "cuBLASLt: %s", kWhy);
}
int dlk_cublas_version(void) { return 0; }
dlk_status dlk_check_cudnn(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == 0) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_CUDNN, "%s:%d: %s: %s", file, line, expr, kWhy);
}
dlk_status dlk_cudnn_handle(dlk_context *ctx, void **handle) {
  *handle = NULL;
  return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "cuDNN: %s", kWhy);
}
int dlk_cudnn_version(void) { return 0; }
int dlk_cudnn_built_version(void) { return 0; }
