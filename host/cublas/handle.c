/* cuBLAS / cuBLASLt handles: created on first use, bound to the context's stream. */
#include <cublasLt.h>
#include <cublas_v2.h>

#include "../core/internal.h"

dlk_status dlk_check_cublas(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == CUBLAS_STATUS_SUCCESS) return DLK_OK;
  const char *base = file;
  for (const char *p = file; *p; p++)
    if (*p == '/') base = p + 1;
  return dlk_fail(ctx, code == CUBLAS_STATUS_ALLOC_FAILED ? DLK_ERR_OUT_OF_MEMORY : DLK_ERR_CUBLAS,
                  "%s:%d: %s: %s (%s)", base, line, expr, cublasGetStatusString((cublasStatus_t)code),
                  cublasGetStatusName((cublasStatus_t)code));
}

dlk_status dlk_cublas_handle(dlk_context *ctx, void **handle) {
  if (!ctx->cublas) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cublasHandle_t h;
    DLK_CUBLAS_TRY(ctx, cublasCreate(&h));
    ctx->cublas = h;
    DLK_CUBLAS_TRY(ctx, cublasSetStream(h, (cudaStream_t)ctx->stream));
  }
  *handle = ctx->cublas;
  return DLK_OK;
}

dlk_status dlk_cublaslt_handle(dlk_context *ctx, void **handle) {
  if (!ctx->cublaslt) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cublasLtHandle_t h;
    DLK_CUBLAS_TRY(ctx, cublasLtCreate(&h));
    ctx->cublaslt = h;
  }
  *handle = ctx->cublaslt;
  return DLK_OK;
}

dlk_status dlk_cublas_set_stream(dlk_context *ctx) {
  if (ctx->cublas) DLK_CUBLAS_TRY(ctx, cublasSetStream((cublasHandle_t)ctx->cublas, (cudaStream_t)ctx->stream));
  return DLK_OK;
}

void dlk_cublas_release(dlk_context *ctx) {
  if (ctx->cublas) cublasDestroy((cublasHandle_t)ctx->cublas);
  if (ctx->cublaslt) cublasLtDestroy((cublasLtHandle_t)ctx->cublaslt);
  ctx->cublas = ctx->cublaslt = NULL;
}

int dlk_cublas_version(void) {
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS) return 0;
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  return major * 10000 + minor * 100 + patch;
}
