/*
 * cuBLAS / cuBLASLt plumbing for the vendor rows of any family (host/<family>/<family>_cublas.c):
 * the per-context handles (kept in the context's plan cache, created on first use) and
 * the status check. Compiled only with CUDA.
 */
#ifndef DLK_CUBLAS_HANDLE_H
#define DLK_CUBLAS_HANDLE_H

#include "../core/internal.h"

/* A cublasStatus_t (as int) -> status with file:line and the library's message. */
dlk_status dlk_check_cublas(dlk_context *ctx, int code, const char *file, int line,
                            const char *expr);
#define DLK_CUBLAS_TRY(ctx, call) \
  DLK_TRY(dlk_check_cublas((ctx), (int)(call), __FILE__, __LINE__, #call))

/* The context's cublasHandle_t, bound to the context's stream (on every call, so it
   follows dlk_context_set_stream). */
dlk_status dlk_cublas_handle(dlk_context *ctx, void **handle);
/* The context's cublasLtHandle_t (cuBLASLt takes the stream per call). */
dlk_status dlk_cublaslt_handle(dlk_context *ctx, void **handle);
/* cuBLAS's version as major * 10000 + minor * 100 + patch, 0 when unknown. */
int dlk_cublas_version(void);

#endif /* DLK_CUBLAS_HANDLE_H */
