/* cuDNN handle: created on first use (a program that never calls a cuDNN variant never
   loads cuDNN's engines), bound to the context's stream. */
#include <cudnn.h>

#include "../core/internal.h"

dlk_status dlk_check_cudnn(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == CUDNN_STATUS_SUCCESS) return DLK_OK;
  const char *base = file;
  for (const char *p = file; *p; p++)
    if (*p == '/') base = p + 1;
  char detail[256] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  return dlk_fail(ctx, code == CUDNN_STATUS_ALLOC_FAILED ? DLK_ERR_OUT_OF_MEMORY : DLK_ERR_CUDNN,
                  "%s:%d: %s: %s%s%s", base, line, expr, cudnnGetErrorString((cudnnStatus_t)code),
                  detail[0] ? ": " : "", detail);
}

dlk_status dlk_cudnn_handle(dlk_context *ctx, void **handle) {
  if (!ctx->cudnn) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cudnnHandle_t h;
    DLK_CUDNN_TRY(ctx, cudnnCreate(&h));
    ctx->cudnn = h;
    DLK_CUDNN_TRY(ctx, cudnnSetStream(h, (cudaStream_t)ctx->stream));
  }
  *handle = ctx->cudnn;
  return DLK_OK;
}

dlk_status dlk_cudnn_tensors(dlk_context *ctx, void **handle, void *desc[3]) {
  DLK_TRY(dlk_cudnn_handle(ctx, handle));
  for (int i = 0; i < 3; i++) {
    if (!ctx->cudnn_tensors[i]) {
      cudnnTensorDescriptor_t d;
      DLK_CUDNN_TRY(ctx, cudnnCreateTensorDescriptor(&d));
      ctx->cudnn_tensors[i] = d;
    }
    desc[i] = ctx->cudnn_tensors[i];
  }
  return DLK_OK;
}

dlk_status dlk_cudnn_set_stream(dlk_context *ctx) {
  if (ctx->cudnn) DLK_CUDNN_TRY(ctx, cudnnSetStream((cudnnHandle_t)ctx->cudnn, (cudaStream_t)ctx->stream));
  return DLK_OK;
}

void dlk_cudnn_release(dlk_context *ctx) {
  for (int i = 0; i < 3; i++) {
    if (ctx->cudnn_tensors[i]) cudnnDestroyTensorDescriptor((cudnnTensorDescriptor_t)ctx->cudnn_tensors[i]);
    ctx->cudnn_tensors[i] = NULL;
  }
  if (ctx->cudnn) cudnnDestroy((cudnnHandle_t)ctx->cudnn);
  ctx->cudnn = NULL;
}

int dlk_cudnn_version(void) { return (int)cudnnGetVersion(); }
int dlk_cudnn_built_version(void) { return CUDNN_VERSION; }
