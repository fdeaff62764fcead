/* cuBLAS / cuBLASLt handles: created on first use and kept in the context's plan cache
   (destroyed with the context), bound to the context's stream. */
#include <cublasLt.h>
#include <cublas_v2.h>

#include "handle.h"

dlk_status dlk_check_cublas(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == CUBLAS_STATUS_SUCCESS) return DLK_OK;
  const char *base = file;
  for (const char *p = file; *p; p++)
    if (*p == '/') base = p + 1;
  return dlk_fail(ctx, code == CUBLAS_STATUS_ALLOC_FAILED ? DLK_ERR_OUT_OF_MEMORY : DLK_ERR_CUBLAS,
                  "%s:%d: %s: %s (%s)", base, line, expr, cublasGetStatusString((cublasStatus_t)code),
                  cublasGetStatusName((cublasStatus_t)code));
}

/* Destroy calls run at context destroy: their status cannot change what anyone sees. */
static void destroy_cublas(void *h) { cublasDestroy((cublasHandle_t)h); }
static void destroy_cublaslt(void *h) { cublasLtDestroy((cublasLtHandle_t)h); }

dlk_status dlk_cublas_handle(dlk_context *ctx, void **handle) {
  void *h;
  DLK_TRY(dlk_plan_cache_get(ctx, "cublas", &h));
  if (!h) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cublasHandle_t c;
    DLK_CUBLAS_TRY(ctx, cublasCreate(&c));
    DLK_TRY(dlk_plan_cache_put(ctx, "cublas", c, destroy_cublas));
    h = c;
  }
  DLK_CUBLAS_TRY(ctx, cublasSetStream((cublasHandle_t)h, (cudaStream_t)ctx->stream));
  *handle = h;
  return DLK_OK;
}

dlk_status dlk_cublaslt_handle(dlk_context *ctx, void **handle) {
  void *h;
  DLK_TRY(dlk_plan_cache_get(ctx, "cublaslt", &h));
  if (!h) {
    DLK_TRY(dlk_cuda_enter(ctx));
    cublasLtHandle_t c;
    DLK_CUBLAS_TRY(ctx, cublasLtCreate(&c));
    DLK_TRY(dlk_plan_cache_put(ctx, "cublaslt", c, destroy_cublaslt));
    h = c;
  }
  *handle = h;
  return DLK_OK;
}

int dlk_cublas_version(void) {
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS) return 0;
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  return major * 10000 + minor * 100 + patch;
}
