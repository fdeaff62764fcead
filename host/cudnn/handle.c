/* cuDNN handle: created on first use and kept in the context's plan cache (destroyed with
   the context, after every plan made with it), bound to the context's stream. */
#include <cudnn.h>

#include "handle.h"

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

/* Runs at context destroy: its status cannot change what anyone sees. */
static void destroy_cudnn(void *h) { cudnnDestroy((cudnnHandle_t)h); }

dlk_status dlk_cudnn_handle(dlk_context *ctx, void **handle) {
  void *h;
  DLK_TRY(dlk_plan_cache_get(ctx, "cudnn", &h));
  if (!h) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cudnnHandle_t c;
    DLK_CUDNN_TRY(ctx, cudnnCreate(&c));
    DLK_TRY(dlk_plan_cache_put(ctx, "cudnn", c, destroy_cudnn));
    h = c;
  }
  DLK_CUDNN_TRY(ctx, cudnnSetStream((cudnnHandle_t)h, (cudaStream_t)ctx->stream));
  *handle = h;
  return DLK_OK;
}

int dlk_cudnn_version(void) { return (int)cudnnGetVersion(); }
int dlk_cudnn_built_version(void) { return CUDNN_VERSION; }
