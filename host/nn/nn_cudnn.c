/*
 * nn family: the vendor softmax rows of host/nn/nn.c's softmax tables. 10 "cudnn": cudnnSoftmaxForward / cudnnSoftmaxBackward
 * (algorithm ACCURATE, the max-subtracted softmax, or LOG for log-softmax; mode INSTANCE,
 * i.e. over C·H·W of each N). It is the vendor baseline dlk-bench compares the hand-written
 * rows with.
 *
 * Layout: the [rows, cols] matrix is the 4-d tensor N = rows, C = cols, H = W = 1 with
 * strides (row stride, 1, 1, 1). cuDNN's legacy tensors hold int sizes and strides and at
 * most 2^31 - 1 elements including padding between rows, so larger matrices are refused
 * with the reason, as are non-unit column strides (the hand-written rows take any
 * strides). Types: float, half and double (the legacy softmax takes no bf16); alpha and
 * beta are float for float/half data and double for double data, as cuDNN requires.
 * cuDNN's softmax is deterministic; it needs no workspace.
 *
 * Backward with LOG takes y = log-softmax(x) and computes dx = dy - exp(y)·Σdy, the same
 * formula as the CPU reference (host/nn/nn_cpu.c).
 */
#include "nn.h"

/* Every host .c file is compiled in every build: a build without cuDNN gets an empty file. */
#if DLK_HAVE_CUDNN
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <cudnn.h>

#include "../cudnn/handle.h"


static bool cudnn_dtype(dlk_dtype t, cudnnDataType_t *out) {
  switch (t) {
    case DLK_F32: *out = CUDNN_DATA_FLOAT; return true;
    case DLK_F16: *out = CUDNN_DATA_HALF; return true;
    case DLK_F64: *out = CUDNN_DATA_DOUBLE; return true;
    default: return false;
  }
}

/* One [rows, cols] operand as cuDNN can describe it, or false with the reason. */
static bool cudnn_matrix_ok(const char *name, const dlk_tensor *t, char *why, size_t n) {
  cudnnDataType_t dt;
  if (t->ndim != 2) {
    snprintf(why, n, "%s's leading dims do not merge into rows (a %d-d view): the CPU reference takes it",
             name, t->ndim);
    return false;
  }
  if (!cudnn_dtype(t->dtype, &dt)) {
    snprintf(why, n, "%s is %s; cuDNN's softmax takes f32, f16 and f64", name,
             dlk_dtype_name(t->dtype));
    return false;
  }
  const int64_t rows = t->shape[0], cols = t->shape[1];
  if (cols > 1 && t->strides[1] != 1) {
    snprintf(why, n, "%s has column stride %lld; cuDNN variant needs contiguous rows", name,
             (long long)t->strides[1]);
    return false;
  }
  const int64_t rs = rows > 1 ? t->strides[0] : cols;
  if (rows > 1 && rs < cols) {
    snprintf(why, n, "%s has row stride %lld < %lld columns", name, (long long)rs, (long long)cols);
    return false;
  }
  /* elements spanned, padding between rows included */
  const int64_t span = rows > 0 ? (rows - 1) * rs + cols : 0;
  if (rows > INT_MAX || cols > INT_MAX || rs > INT_MAX || span > INT_MAX) {
    snprintf(why, n, "%s spans %lld elements; cuDNN's legacy tensors hold at most 2^31-1", name,
             (long long)span);
    return false;
  }
  return true;
}

/* Three tensor descriptors, created on first use and reused by every call (one entry of
   the context's plan cache): no allocation per call. */
typedef struct softmax_tensors {
  cudnnTensorDescriptor_t d[3];
} softmax_tensors;

static void softmax_tensors_free(void *p) {
  softmax_tensors *t = (softmax_tensors *)p;
  for (int i = 0; i < 3; i++)
    if (t->d[i]) cudnnDestroyTensorDescriptor(t->d[i]);
  free(t);
}

static dlk_status cudnn_tensors(dlk_context *ctx, void **handle, void *desc[3]) {
  DLK_TRY(dlk_cudnn_handle(ctx, handle));
  void *cached;
  DLK_TRY(dlk_plan_cache_get(ctx, "cudnn/softmax/tensors", &cached));
  softmax_tensors *t = (softmax_tensors *)cached;
  if (!t) {
    t = (softmax_tensors *)calloc(1, sizeof *t);
    if (!t) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "softmax/cudnn: out of memory");
    for (int i = 0; i < 3; i++) {
      cudnnStatus_t st = cudnnCreateTensorDescriptor(&t->d[i]);
      if (st != CUDNN_STATUS_SUCCESS) {
        softmax_tensors_free(t);
        DLK_CUDNN_TRY(ctx, st);
      }
    }
    DLK_TRY(dlk_plan_cache_put(ctx, "cudnn/softmax/tensors", t, softmax_tensors_free));
  }
  for (int i = 0; i < 3; i++) desc[i] = t->d[i];
  return DLK_OK;
}

static dlk_status set_desc(dlk_context *ctx, void *desc, const dlk_tensor *t) {
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  if (!cudnn_dtype(t->dtype, &dt)) /* supports() refused it; kept as a guard */
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "softmax/cudnn: dtype %s",
                    dlk_dtype_name(t->dtype));
  const int rows = (int)t->shape[0], cols = (int)t->shape[1];
  const int rs = t->shape[0] > 1 ? (int)t->strides[0] : cols;
  DLK_CUDNN_TRY(ctx, cudnnSetTensor4dDescriptorEx((cudnnTensorDescriptor_t)desc, dt, rows, cols, 1,
                                                  1, rs, 1, 1, 1));
  return DLK_OK;
}

bool dlk_softmax_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)ctx, (void)impl;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  return cudnn_matrix_ok("x", &a->x, why, n) && cudnn_matrix_ok("y", &a->y, why, n);
}

bool dlk_softmax_bwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                    size_t n) {
  (void)ctx, (void)impl;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  return cudnn_matrix_ok("y", &a->y, why, n) && cudnn_matrix_ok("dy", &a->dy, why, n) &&
         cudnn_matrix_ok("dx", &a->dx, why, n);
}

/* alpha = 1, beta = 0 in the scaling type cuDNN reads for this data type. */
typedef struct scaling {
  float f[2];
  double d[2];
} scaling;

static const void *alpha_of(const scaling *s, dlk_dtype t) {
  return t == DLK_F64 ? (const void *)&s->d[0] : (const void *)&s->f[0];
}
static const void *beta_of(const scaling *s, dlk_dtype t) {
  return t == DLK_F64 ? (const void *)&s->d[1] : (const void *)&s->f[1];
}

dlk_status dlk_softmax_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_softmax_fwd_args *a = (const dlk_softmax_fwd_args *)args;
  if (a->x.shape[0] == 0 || a->x.shape[1] == 0) return DLK_OK;
  void *h, *desc[3];
  DLK_TRY(cudnn_tensors(ctx, &h, desc));
  DLK_TRY(set_desc(ctx, desc[0], &a->x));
  DLK_TRY(set_desc(ctx, desc[1], &a->y));
  const scaling s = {{1.0f, 0.0f}, {1.0, 0.0}};
  DLK_CUDNN_TRY(ctx, cudnnSoftmaxForward(
                         (cudnnHandle_t)h, a->log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                         CUDNN_SOFTMAX_MODE_INSTANCE, alpha_of(&s, a->x.dtype),
                         (cudnnTensorDescriptor_t)desc[0], a->x.data, beta_of(&s, a->x.dtype),
                         (cudnnTensorDescriptor_t)desc[1], a->y.data));
  return DLK_OK;
}

dlk_status dlk_softmax_bwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_softmax_bwd_args *a = (const dlk_softmax_bwd_args *)args;
  if (a->y.shape[0] == 0 || a->y.shape[1] == 0) return DLK_OK;
  void *h, *desc[3];
  DLK_TRY(cudnn_tensors(ctx, &h, desc));
  DLK_TRY(set_desc(ctx, desc[0], &a->y));
  DLK_TRY(set_desc(ctx, desc[1], &a->dy));
  DLK_TRY(set_desc(ctx, desc[2], &a->dx));
  const scaling s = {{1.0f, 0.0f}, {1.0, 0.0}};
  DLK_CUDNN_TRY(
      ctx, cudnnSoftmaxBackward(
               (cudnnHandle_t)h, a->log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
               CUDNN_SOFTMAX_MODE_INSTANCE, alpha_of(&s, a->y.dtype),
               (cudnnTensorDescriptor_t)desc[0], a->y.data, (cudnnTensorDescriptor_t)desc[1],
               a->dy.data, beta_of(&s, a->y.dtype), (cudnnTensorDescriptor_t)desc[2], a->dx.data));
  return DLK_OK;
}

#else
typedef int dlk_nn_cudnn_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDNN */
