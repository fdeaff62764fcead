/*
 * cuDNN plumbing for the vendor rows of any family (host/<family>/<family>_cudnn.c) and for the
 * backend-graph helper (host/cudnn/graph.c): the per-context handle (kept in the
 * context's plan cache, created on first use, so a program that never calls a cuDNN
 * variant never loads cuDNN's engines) and the status check. Compiled only with cuDNN.
 */
#ifndef DLK_CUDNN_HANDLE_H
#define DLK_CUDNN_HANDLE_H

#include "../core/internal.h"

/* A cudnnStatus_t (as int) -> status with file:line, cuDNN's message and its last-error
   detail. */
dlk_status dlk_check_cudnn(dlk_context *ctx, int code, const char *file, int line,
                           const char *expr);
#define DLK_CUDNN_TRY(ctx, call) \
  DLK_TRY(dlk_check_cudnn((ctx), (int)(call), __FILE__, __LINE__, #call))

/* The context's cudnnHandle_t, bound to the context's stream (on every call, so it
   follows dlk_context_set_stream). */
dlk_status dlk_cudnn_handle(dlk_context *ctx, void **handle);
/* cudnnGetVersion() of the loaded library, and CUDNN_VERSION of the headers built with. */
int dlk_cudnn_version(void);
int dlk_cudnn_built_version(void);

#endif /* DLK_CUDNN_HANDLE_H */
