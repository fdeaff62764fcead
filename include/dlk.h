/*
 * dlk — deep-learning kernels for NVIDIA GPUs, with a CPU reference for every op.
 *
 * The whole public C API. C99/C11 and C++ compatible; needs no CUDA header.
 *
 * Conventions (see README.md):
 *   - Every function returns a dlk_status and takes the context first, except the few
 *     fixed ones (dlk_context_create/destroy, dlk_status_string, dlk_context_last_error,
 *     dlk_version) and the pure, total helpers marked "pure" that cannot fail.
 *   - Tensors are plain descriptors (dlk_tensor) that own nothing. Shapes and strides
 *     are in elements. Inputs are `const dlk_tensor *`, outputs come last, optional
 *     arguments are NULL.
 *   - On any error the call returns a status, dlk_context_last_error() says exactly what
 *     was wrong, and outputs are left untouched. The library never prints or exits.
 *   - Any descriptor whose bytes are real memory gets an answer, a result or a refusal,
 *     and a call touches no memory outside its outputs' elements. Data is aligned to its
 *     element size. An op call whose outputs all have zero elements checks its arguments
 *     and returns DLK_OK at once, however large the other dims of its empty tensors.
 */
#ifndef DLK_H
#define DLK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLK_VERSION_MAJOR 0
#define DLK_VERSION_MINOR 1
#define DLK_VERSION_PATCH 0

#if defined(_WIN32)
#define DLK_API __declspec(dllexport)
#elif defined(__GNUC__)
#define DLK_API __attribute__((visibility("default")))
#else
#define DLK_API
#endif

/* ------------------------------------------------------------------------------------ */
/* Status codes: one X-macro table gives the enum, the names and the messages.          */
/* ------------------------------------------------------------------------------------ */

#define DLK_STATUS_TABLE(X)                                                               \
  X(DLK_OK, 0, "no error")                                                                \
  X(DLK_ERR_NULL_POINTER, 1, "a required pointer argument is NULL")                       \
  X(DLK_ERR_INVALID_ARGUMENT, 2, "an argument has an invalid value")                      \
  X(DLK_ERR_SHAPE_MISMATCH, 3, "tensor shapes do not agree")                              \
  X(DLK_ERR_DTYPE_MISMATCH, 4, "tensor dtype not allowed or not matching")                \
  X(DLK_ERR_DEVICE_MISMATCH, 5, "tensor lives on a different device than the context")    \
  X(DLK_ERR_LAYOUT, 6, "tensor strides or layout not allowed")                            \
  X(DLK_ERR_OVERFLOW, 7, "a size or index overflows")                                     \
  X(DLK_ERR_OUT_OF_RANGE, 8, "an index or id is out of range")                            \
  X(DLK_ERR_NOT_SUPPORTED, 9, "no variant supports this case")                            \
  X(DLK_ERR_OUT_OF_MEMORY, 10, "out of memory")                                           \
  X(DLK_ERR_WORKSPACE_LIMIT, 11, "the workspace cap is too small for this case")          \
  X(DLK_ERR_NO_DEVICE, 12, "no CUDA device present or CUDA support not built")            \
  X(DLK_ERR_ARCH_UNSUPPORTED, 13, "this GPU is older than the architectures built")       \
  X(DLK_ERR_CUDA, 14, "CUDA runtime error")                                               \
  X(DLK_ERR_CUBLAS, 15, "cuBLAS error")                                                   \
  X(DLK_ERR_CUDNN, 16, "cuDNN error")                                                     \
  X(DLK_ERR_IO, 17, "file input/output error")                                            \
  X(DLK_ERR_CORRUPT_FILE, 18, "file is corrupt or not in the expected format")            \
  X(DLK_ERR_NOT_FINITE, 19, "a value that must be finite is NaN or infinite")             \
  X(DLK_ERR_INTERRUPTED, 20, "interrupted")                                               \
  X(DLK_ERR_INTERNAL, 21, "internal error (a bug in dlk)")

typedef enum dlk_status {
#define DLK_X_ENUM(name, value, msg) name = value,
  DLK_STATUS_TABLE(DLK_X_ENUM)
#undef DLK_X_ENUM
      DLK_STATUS_COUNT
} dlk_status;

/* Name of a status ("DLK_ERR_SHAPE_MISMATCH"); "DLK_UNKNOWN_STATUS" for other values. */
DLK_API const char *dlk_status_string(dlk_status s);
/* One-line description of a status (the table's message). */
DLK_API const char *dlk_status_message(dlk_status s);
/* "0.1.0" */
DLK_API const char *dlk_version(void);

/* ------------------------------------------------------------------------------------ */
/* Types, devices, tensors                                                             */
/* ------------------------------------------------------------------------------------ */

#define DLK_MAX_DIMS 8

typedef enum dlk_dtype {
  DLK_F32 = 0,
  DLK_F16,
  DLK_BF16,
  DLK_F64,
  DLK_I32,
  DLK_I64,
  DLK_U8,
  DLK_DTYPE_COUNT
} dlk_dtype;

/* DLK_DEVICE_DEFAULT only in dlk_context_options: the first GPU if any, else the CPU.
   The values of DLK_CPU and DLK_CUDA equal DLPack's kDLCPU and kDLCUDA. */
typedef enum dlk_device_type {
  DLK_DEVICE_DEFAULT = 0,
  DLK_CPU = 1,
  DLK_CUDA = 2,
  DLK_DEVICE_TYPE_COUNT
} dlk_device_type;

typedef struct dlk_device {
  dlk_device_type type;
  int id; /* CUDA ordinal; 0 for the CPU */
} dlk_device;

/* A tensor descriptor. Owns nothing: `data` points at element [0,...,0]. */
typedef struct dlk_tensor {
  void *data;
  dlk_dtype dtype;
  dlk_device device;
  int ndim; /* 0..DLK_MAX_DIMS; 0 is a scalar */
  int64_t shape[DLK_MAX_DIMS];
  int64_t strides[DLK_MAX_DIMS]; /* in elements; may be 0 (broadcast) where an op allows */
} dlk_tensor;

/* pure: bytes per element (0 for an invalid dtype), name ("f32"), device type name. */
DLK_API size_t dlk_dtype_size(dlk_dtype t);
DLK_API const char *dlk_dtype_name(dlk_dtype t);
DLK_API const char *dlk_device_type_name(dlk_device_type t);
/* pure: number of elements (product of shape; 1 for a scalar, 0 if any dim is 0 or the
   descriptor is invalid). */
DLK_API int64_t dlk_tensor_numel(const dlk_tensor *t);
/* pure: 1 when the strides are the row-major contiguous strides of the shape (dims of
   size 1 take any stride; a tensor with no elements is contiguous). */
DLK_API int dlk_tensor_is_contiguous(const dlk_tensor *t);

typedef struct dlk_context dlk_context;

/* ------------------------------------------------------------------------------------ */
/* Context                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Options; an all-zero struct (or NULL) means the defaults. */
typedef struct dlk_context_options {
  dlk_device device;       /* DLK_DEVICE_DEFAULT: first GPU if any, else CPU */
  int allow_tf32;          /* let f32 GEMM-like ops use TF32 tensor cores */
  int deterministic;       /* every op gives bit-identical results run to run */
  int disable_autotune;    /* pick by heuristic instead of timing the variants */
  int unchecked_ids;       /* skip the host-visible id range check of GPU gathers
                              (embedding, cross-entropy): saves a sync; an out-of-range
                              id then gives a zero row / NaN loss, never a bad access */
  size_t workspace_limit;  /* bytes; 0 = unlimited */
  const char *force_variant; /* "op:id,op:id" like DLK_FORCE_VARIANT; copied */
  int cpu_threads;         /* threads for multi-threaded CPU variants; 0 = all cores */
} dlk_context_options;

/* NULL options: the defaults. Environment: DLK_FORCE_VARIANT=op:id,... adds forced
   variants (options win); DLK_AUTOTUNE_CACHE=FILE loads the autotune cache at creation
   (a corrupt or foreign file is ignored and reported through dlk_context_last_error with
   DLK_OK) and saves it at destroy. On failure *out is NULL. */
DLK_API dlk_status dlk_context_create(dlk_context **out, const dlk_context_options *opts);
DLK_API void dlk_context_destroy(dlk_context *ctx);
/* The detail of the last error on this context; never NULL, "" when there was none.
   A NULL context gives the message of the last failed dlk_context_create on this thread. */
DLK_API const char *dlk_context_last_error(const dlk_context *ctx);
DLK_API dlk_status dlk_context_clear_error(dlk_context *ctx);
DLK_API dlk_status dlk_context_device(dlk_context *ctx, dlk_device *out);
/* Run all work on the caller's stream (a cudaStream_t; NULL = the legacy default
   stream). Ignored for CPU contexts except that NULL is required. */
DLK_API dlk_status dlk_context_set_stream(dlk_context *ctx, void *stream);
DLK_API dlk_status dlk_context_get_stream(dlk_context *ctx, void **stream);
/* Wait for all work queued on the context's stream. */
DLK_API dlk_status dlk_synchronize(dlk_context *ctx);
DLK_API dlk_status dlk_context_set_deterministic(dlk_context *ctx, int on);
DLK_API dlk_status dlk_context_set_allow_tf32(dlk_context *ctx, int on);
DLK_API dlk_status dlk_context_set_workspace_limit(dlk_context *ctx, size_t bytes);
/* Bytes held by the workspace arena now. */
DLK_API dlk_status dlk_context_workspace_size(dlk_context *ctx, size_t *bytes);

typedef struct dlk_versions {
  int cuda_runtime;  /* e.g. 13000; 0 when not built with CUDA */
  int cuda_driver;   /* 0 when no driver */
  int cublas;        /* e.g. 130000; 0 when absent */
  int cudnn;         /* e.g. 91900; 0 when not built with cuDNN */
  int cudnn_built;   /* CUDNN_VERSION dlk was compiled against */
  const char *cuda_archs; /* the architectures built, e.g. "80;90" ("" CPU-only) */
} dlk_versions;
/* ctx may be NULL (then no handle is created; cuDNN's version is the loaded library's). */
DLK_API dlk_status dlk_query_versions(dlk_context *ctx, dlk_versions *out);

typedef struct dlk_device_props {
  char name[256];
  int compute_major, compute_minor;
  int sm_count;
  size_t total_memory;
  int clock_khz;        /* SM clock */
  int memory_clock_khz; /* may be 0 when the runtime does not report it */
  int memory_bus_bits;  /* may be 0 */
  int supported;        /* 1 when dlk has kernels for it (SASS or PTX) */
} dlk_device_props;
/* Number of CUDA devices (0 in a CPU-only build or without a driver). ctx may be NULL. */
DLK_API dlk_status dlk_device_count(dlk_context *ctx, int *count);
DLK_API dlk_status dlk_device_properties(dlk_context *ctx, int id, dlk_device_props *out);

/* ------------------------------------------------------------------------------------ */
/* Tensor helpers                                                                      */
/* ------------------------------------------------------------------------------------ */

/* Describe existing memory as a contiguous tensor (row-major strides). ctx may be NULL
   (the message is then lost). */
DLK_API dlk_status dlk_tensor_init(dlk_context *ctx, dlk_tensor *t, void *data, dlk_dtype dtype,
                                   dlk_device device, int ndim, const int64_t *shape);
/* Allocate a contiguous tensor on the context's device (cudaMalloc / malloc).
   Contents are undefined. Free with dlk_tensor_free. */
DLK_API dlk_status dlk_tensor_alloc(dlk_context *ctx, dlk_tensor *t, dlk_dtype dtype, int ndim,
                                    const int64_t *shape);
/* Frees memory from dlk_tensor_alloc and clears the descriptor; NULL data is a no-op. */
DLK_API dlk_status dlk_tensor_free(dlk_context *ctx, dlk_tensor *t);
/* Copy src into dst: same dtype and shape, any strides, any devices the context can
   reach (host<->device, device<->device, host<->host). Synchronous with respect to the
   host whenever host memory is involved. Overlapping dst and src are not allowed, nor a
   dst whose elements overlap each other (DLK_ERR_LAYOUT, as for every op's output; also
   in dlk_tensor_write and dlk_tensor_zero). */
DLK_API dlk_status dlk_tensor_copy(dlk_context *ctx, dlk_tensor *dst, const dlk_tensor *src);
/* Fill t (any strides, any device) from a dense row-major host buffer of exactly
   numel * dtype_size bytes, or read t into one (the buffer needs no alignment). */
DLK_API dlk_status dlk_tensor_write(dlk_context *ctx, dlk_tensor *t, const void *host,
                                    size_t bytes);
DLK_API dlk_status dlk_tensor_read(dlk_context *ctx, const dlk_tensor *t, void *host,
                                   size_t bytes);
/* Set every element to zero. */
DLK_API dlk_status dlk_tensor_zero(dlk_context *ctx, dlk_tensor *t);
/* Views (no copy): dims [start, start+len) of `dim`; swap two dims; reshape a contiguous
   tensor. */
DLK_API dlk_status dlk_tensor_slice(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t,
                                    int dim, int64_t start, int64_t len);
DLK_API dlk_status dlk_tensor_transpose(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t,
                                        int dim0, int dim1);
DLK_API dlk_status dlk_tensor_reshape(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t,
                                      int ndim, const int64_t *shape);
/* Check that a descriptor is well formed (dtype, ndim, non-negative shape and strides,
   sizes and byte spans that do not overflow 64 bits, non-NULL data when it has elements,
   data aligned to the element size (DLK_ERR_LAYOUT), addressed bytes that do not wrap
   around the address space); `name` is used in the message. Every function taking a
   tensor applies these rules first. */
DLK_API dlk_status dlk_tensor_validate(dlk_context *ctx, const dlk_tensor *t, const char *name);

/* ------------------------------------------------------------------------------------ */
/* DLPack >= 1.0 interop (ABI as published by the DLPack project, v1.1)                */
/* ------------------------------------------------------------------------------------ */

#if defined(DLPACK_DLPACK_H_) && (!defined(DLPACK_MAJOR_VERSION) || DLPACK_MAJOR_VERSION < 1)
#error "dlk.h needs DLPack >= 1.0 (DLManagedTensorVersioned); an older dlpack.h was included first"
#endif
#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_
#define DLPACK_MAJOR_VERSION 1
#define DLPACK_MINOR_VERSION 1

typedef struct {
  uint32_t major;
  uint32_t minor;
} DLPackVersion;

typedef enum {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17
} DLDeviceType;

typedef struct {
  DLDeviceType device_type;
  int32_t device_id;
} DLDevice;

typedef enum {
  kDLInt = 0U,
  kDLUInt = 1U,
  kDLFloat = 2U,
  kDLOpaqueHandle = 3U,
  kDLBfloat = 4U,
  kDLComplex = 5U,
  kDLBool = 6U,
  kDLFloat8_e3m4 = 7U,
  kDLFloat8_e4m3 = 8U,
  kDLFloat8_e4m3b11fnuz = 9U,
  kDLFloat8_e4m3fn = 10U,
  kDLFloat8_e4m3fnuz = 11U,
  kDLFloat8_e5m2 = 12U,
  kDLFloat8_e5m2fnuz = 13U,
  kDLFloat8_e8m0fnu = 14U,
  kDLFloat6_e2m3fn = 15U,
  kDLFloat6_e3m2fn = 16U,
  kDLFloat4_e2m1fn = 17U
} DLDataTypeCode;

typedef struct {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides; /* NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

#define DLPACK_FLAG_BITMASK_READ_ONLY (1UL << 0UL)
#define DLPACK_FLAG_BITMASK_IS_COPIED (1UL << 1UL)
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (1UL << 2UL)

typedef struct DLManagedTensorVersioned {
  DLPackVersion version;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned *self);
  uint64_t flags;
  DLTensor dl_tensor;
} DLManagedTensorVersioned;
#endif /* DLPACK_DLPACK_H_ */

/* View a DLPack tensor as a dlk_tensor without copying. The caller keeps `src` alive
   while the view is used and calls src->deleter(src) when done. Rejects a major version
   other than 1, lanes != 1, dtypes dlk lacks, devices other than CPU/CUDA/CUDAHost/
   CUDAManaged, read-only tensors when `writable` is set, and a byte_offset that wraps
   the address or leaves the data misaligned for the element type (DLK_ERR_LAYOUT). */
DLK_API dlk_status dlk_tensor_from_dlpack(dlk_context *ctx, dlk_tensor *out,
                                          const DLManagedTensorVersioned *src, int writable);
/* Export a dlk_tensor as a new DLManagedTensorVersioned (version 1.1) that views the
   same memory. Its deleter frees only the DLPack struct: the memory stays the caller's,
   who must keep it alive until the consumer calls the deleter. */
DLK_API dlk_status dlk_tensor_to_dlpack(dlk_context *ctx, const dlk_tensor *t,
                                        DLManagedTensorVersioned **out);

/* ------------------------------------------------------------------------------------ */
/* Variants, dispatch, autotune, explain                                               */
/* ------------------------------------------------------------------------------------ */

/* Variant ids: 0 CPU reference; 1..9 hand-written CUDA kernels (simplest first);
   10..19 vendor libraries (cuBLAS, cuBLASLt, cuDNN); 20..29 optimised CPU variants. */
typedef struct dlk_variant_info {
  int id;
  const char *name;            /* "cublaslt", "tiled_tc" ... */
  dlk_device_type device;      /* where it runs */
  const char *description;     /* one line */
} dlk_variant_info;

/* Ops that go through the dispatcher, by name ("gemm", "softmax_fwd", ...: the names
   DLK_FORCE_VARIANT and dlk_force_variant take; dlk_linear_forward runs "gemm"). */
DLK_API dlk_status dlk_op_count(dlk_context *ctx, int *count);
DLK_API dlk_status dlk_op_name(dlk_context *ctx, int index, const char **name);
/* Variants of an op. Writes up to `cap` rows; *count is the total. */
DLK_API dlk_status dlk_op_variants(dlk_context *ctx, const char *op, dlk_variant_info *out, int cap,
                                   int *count);
/* Force a variant for an op on this context (id -1: back to automatic). Forcing a variant
   that does not support a call makes that call fail with DLK_ERR_NOT_SUPPORTED and the
   reason, never fall back. */
DLK_API dlk_status dlk_force_variant(dlk_context *ctx, const char *op, int id);
/* The op name and variant id that ran the last dispatched call on this context. */
DLK_API dlk_status dlk_last_variant(dlk_context *ctx, const char **op, int *id);

/* Explain mode: while on, every op call checks its arguments exactly as usual but runs
   nothing; instead the context records, for that call, every variant of the op, whether
   it supports the case and why not, the workspace it needs, and which one AUTO would run
   (without timing); a call whose outputs are all empty says so instead. Read the report
   of the latest call with dlk_explain_report. */
DLK_API dlk_status dlk_explain_mode(dlk_context *ctx, int on);
DLK_API dlk_status dlk_explain_report(dlk_context *ctx, const char **text);

/* Autotune cache: the winner per (device name, op, shape key, options). Text file with a
   header and a checksum; a corrupt, truncated or foreign file gives DLK_ERR_CORRUPT_FILE
   and leaves the in-memory cache unchanged. Saving writes a temporary file and renames. */
DLK_API dlk_status dlk_autotune_load(dlk_context *ctx, const char *path);
DLK_API dlk_status dlk_autotune_save(dlk_context *ctx, const char *path);
DLK_API dlk_status dlk_autotune_clear(dlk_context *ctx);
DLK_API dlk_status dlk_autotune_entries(dlk_context *ctx, int *count);

/* ------------------------------------------------------------------------------------ */
/* nn: GEMM, linear, activations, softmax, cross-entropy, embedding, layer norm,         */
/* dropout, optimizers. Float ops take F32, F16, BF16 (F32 accumulation) and F64 (CPU    */
/* reference and where a GPU variant says so). Every op is (ctx, params, inputs...,      */
/* outputs...): a params struct for whatever is not a tensor, NULL meaning the defaults  */
/* each struct documents. Tensors may have any strides: the CPU reference takes every   */
/* layout, a fast variant that wants one (a unit stride, leading dims that merge into    */
/* rows) declines the others with the reason. Leading dims of N-d inputs are the rows.   */
/* ------------------------------------------------------------------------------------ */

typedef enum dlk_activation {
  DLK_ACT_NONE = 0,
  DLK_ACT_RELU,
  DLK_ACT_TANH,
  DLK_ACT_SIGMOID,
  DLK_ACT_GELU, /* exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
  DLK_ACTIVATION_COUNT
} dlk_activation;

/* C = alpha * A @ B + beta * C. A [M,K], B [K,N], C [M,N], or batched [Bt,M,K] @ [Bt,K,N]
   -> [Bt,M,N] (B may be 2-D and is then shared by the batch). Transposes are views
   (dlk_tensor_transpose). beta == 0 ignores C's old contents (NaN included). */
typedef struct dlk_gemm_params {
  double alpha, beta; /* NULL params: alpha 1, beta 0 */
} dlk_gemm_params;
DLK_API dlk_status dlk_gemm(dlk_context *ctx, const dlk_gemm_params *p, const dlk_tensor *a,
                            const dlk_tensor *b, dlk_tensor *c);

/* Linear layer, PyTorch layout: y = act(x @ w^T + b). x [..., in], w [out, in], b [out] or
   NULL, y [..., out]. z [..., out] (optional, NULL) receives the pre-activation
   x @ w^T + b, which linear_backward needs when act != NONE. */
typedef struct dlk_linear_params {
  dlk_activation act; /* NULL params: DLK_ACT_NONE */
} dlk_linear_params;
DLK_API dlk_status dlk_linear_forward(dlk_context *ctx, const dlk_linear_params *p,
                                      const dlk_tensor *x, const dlk_tensor *w,
                                      const dlk_tensor *b, dlk_tensor *y, dlk_tensor *z);
/* dz = dy * act'(z) (z required when act != NONE); dx = dz @ w; dw = dz^T @ x;
   db = sum over rows of dz. dx, dw, db may each be NULL when not wanted. Gradients are
   written, not accumulated. */
DLK_API dlk_status dlk_linear_backward(dlk_context *ctx, const dlk_linear_params *p,
                                       const dlk_tensor *x, const dlk_tensor *w,
                                       const dlk_tensor *z, const dlk_tensor *dy, dlk_tensor *dx,
                                       dlk_tensor *dw, dlk_tensor *db);

/* y = act(x + bias), bias [cols] broadcast over rows (NULL: no bias). x may equal y. */
typedef struct dlk_bias_act_params {
  dlk_activation act; /* NULL params: DLK_ACT_NONE */
} dlk_bias_act_params;
DLK_API dlk_status dlk_bias_act_forward(dlk_context *ctx, const dlk_bias_act_params *p,
                                        const dlk_tensor *x, const dlk_tensor *bias,
                                        dlk_tensor *y);
/* From the forward's input x: dx = dy * act'(x + bias); dbias = column sums of dx
   (NULL: not wanted). */
DLK_API dlk_status dlk_bias_act_backward(dlk_context *ctx, const dlk_bias_act_params *p,
                                         const dlk_tensor *x, const dlk_tensor *bias,
                                         const dlk_tensor *dy, dlk_tensor *dx,
                                         dlk_tensor *dbias);

/* Softmax or log-softmax over the last dim. */
typedef struct dlk_softmax_params {
  int log; /* 1: log-softmax. NULL params: 0 (softmax) */
} dlk_softmax_params;
DLK_API dlk_status dlk_softmax_forward(dlk_context *ctx, const dlk_softmax_params *p,
                                       const dlk_tensor *x, dlk_tensor *y);
/* From the forward's output y: softmax dx = y * (dy - sum(dy * y)); log-softmax
   dx = dy - exp(y) * sum(dy). */
DLK_API dlk_status dlk_softmax_backward(dlk_context *ctx, const dlk_softmax_params *p,
                                        const dlk_tensor *y, const dlk_tensor *dy,
                                        dlk_tensor *dx);

/* Cross-entropy of logits [N, C] against integer targets [N] (I32 or I64), as PyTorch's
   F.cross_entropy: loss_i = logsumexp(x_i) - x_i[t_i]; targets equal to ignore_index
   count for nothing (and not in the mean's denominator). A target outside [0, C) other
   than ignore_index is DLK_ERR_OUT_OF_RANGE. */
typedef enum dlk_reduction {
  DLK_REDUCE_MEAN = 0,
  DLK_REDUCE_SUM,
  DLK_REDUCE_NONE,
  DLK_REDUCTION_COUNT
} dlk_reduction;
typedef struct dlk_cross_entropy_params {
  dlk_reduction reduction; /* NULL params: DLK_REDUCE_MEAN, ignore_index -100 (PyTorch's) */
  int64_t ignore_index;
} dlk_cross_entropy_params;
/* loss: [] or [1] for MEAN/SUM, [N] for NONE; F32 for F16/BF16 logits, else the logits'
   dtype. lse [N] F32/F64 (optional): the row log-sum-exp, for the backward. */
DLK_API dlk_status dlk_cross_entropy_forward(dlk_context *ctx, const dlk_cross_entropy_params *p,
                                             const dlk_tensor *logits,
                                             const dlk_tensor *targets, dlk_tensor *loss,
                                             dlk_tensor *lse);
/* dlogits = dloss * (softmax(x) - onehot(t)) (/ count for MEAN). dloss has loss's shape. */
DLK_API dlk_status dlk_cross_entropy_backward(dlk_context *ctx,
                                              const dlk_cross_entropy_params *p,
                                              const dlk_tensor *logits,
                                              const dlk_tensor *targets,
                                              const dlk_tensor *dloss, dlk_tensor *dlogits);

/* Embedding: out[..., :] = table[ids[...], :]. ids I32/I64 any shape, table [V, D],
   out [ids..., D]. An id outside [0, V) is DLK_ERR_OUT_OF_RANGE (see unchecked_ids). */
typedef struct dlk_embedding_params {
  int64_t padding_idx; /* rows with this id get no gradient; -1: none. NULL params: -1 */
} dlk_embedding_params;
DLK_API dlk_status dlk_embedding_forward(dlk_context *ctx, const dlk_embedding_params *p,
                                         const dlk_tensor *ids, const dlk_tensor *table,
                                         dlk_tensor *out);
/* dtable = scatter-add of dout rows by id (written, not accumulated; rows no id hits are
   zero). Deterministic mode gives the same bits every run. */
DLK_API dlk_status dlk_embedding_backward(dlk_context *ctx, const dlk_embedding_params *p,
                                          const dlk_tensor *ids, const dlk_tensor *dout,
                                          dlk_tensor *dtable);

/* Layer norm over the last dim D: y = (x - mean) * rstd * gamma + beta,
   rstd = 1 / sqrt(var + eps) (biased variance). gamma, beta [D] or NULL. mean, rstd
   [rows] (optional outputs, F32; F64 for F64 x) for the backward. */
typedef struct dlk_layernorm_params {
  double eps; /* NULL params: 1e-5 (PyTorch's) */
} dlk_layernorm_params;
DLK_API dlk_status dlk_layernorm_forward(dlk_context *ctx, const dlk_layernorm_params *p,
                                         const dlk_tensor *x, const dlk_tensor *gamma,
                                         const dlk_tensor *beta, dlk_tensor *y,
                                         dlk_tensor *mean, dlk_tensor *rstd);
/* mean and rstd as written by the forward. dgamma, dbeta optional. */
DLK_API dlk_status dlk_layernorm_backward(dlk_context *ctx, const dlk_layernorm_params *p,
                                          const dlk_tensor *x, const dlk_tensor *gamma,
                                          const dlk_tensor *mean, const dlk_tensor *rstd,
                                          const dlk_tensor *dy, dlk_tensor *dx,
                                          dlk_tensor *dgamma, dlk_tensor *dbeta);

/* Dropout with a counter-based RNG: element i (row-major index) is kept when
   dlk_dropout_uniform(seed, offset + i) >= prob, and scaled by 1 / (1 - prob). The mask is
   a pure function of (seed, offset, i), identical on every device and variant, so the
   backward regenerates it and needs no mask tensor. */
typedef struct dlk_dropout_params {
  double prob; /* [0, 1). NULL params: prob 0.5 (PyTorch's), seed 0, offset 0 */
  uint64_t seed;
  uint64_t offset;
} dlk_dropout_params;
DLK_API dlk_status dlk_dropout_forward(dlk_context *ctx, const dlk_dropout_params *p,
                                       const dlk_tensor *x, dlk_tensor *y);
DLK_API dlk_status dlk_dropout_backward(dlk_context *ctx, const dlk_dropout_params *p,
                                        const dlk_tensor *dy, dlk_tensor *dx);
/* pure: the uniform [0, 1) number dropout draws for (seed, counter). */
DLK_API double dlk_dropout_uniform(uint64_t seed, uint64_t counter);

/* Optimizer steps on flat parameters (any shape), as torch.optim does them, updated in
   place. param and grad share a dtype (F32, F16, BF16, F64); state tensors are F32 (F64
   for F64 params); grad and states have param's number of elements (any shape; element
   i is the row-major i-th of each). Any strides on the CPU reference; the GPU variants
   want them contiguous. Every optimizer's params carry `step`, 1 on the first step. */
typedef struct dlk_sgd_params {
  double lr, momentum, dampening, weight_decay;
  int nesterov;
  int64_t step; /* 1 on the first step: torch initialises the momentum buffer to the
                   gradient then */
} dlk_sgd_params; /* NULL params: torch.optim.SGD's defaults (lr 1e-3, momentum,
                     dampening, weight_decay 0, nesterov 0), step 1 */
/* momentum_buf may be NULL when momentum == 0. */
DLK_API dlk_status dlk_sgd_step(dlk_context *ctx, const dlk_sgd_params *p, dlk_tensor *param,
                                const dlk_tensor *grad, dlk_tensor *momentum_buf);

typedef struct dlk_adam_params {
  double lr, beta1, beta2, eps, weight_decay;
  int adamw; /* 1: decoupled weight decay (AdamW); 0: L2 added to the gradient (Adam) */
  int64_t step; /* 1 on the first step: the bias corrections use it */
} dlk_adam_params; /* NULL params: torch.optim.Adam's defaults (lr 1e-3, betas 0.9 and
                      0.999, eps 1e-8, weight_decay 0), adamw 0, step 1 */
DLK_API dlk_status dlk_adam_step(dlk_context *ctx, const dlk_adam_params *p, dlk_tensor *param,
                                 const dlk_tensor *grad, dlk_tensor *exp_avg,
                                 dlk_tensor *exp_avg_sq);

typedef struct dlk_adagrad_params {
  double lr, lr_decay, weight_decay, eps;
  int64_t step; /* 1 on the first step */
} dlk_adagrad_params; /* NULL params: torch.optim.Adagrad's defaults (lr 1e-2, lr_decay 0,
                         weight_decay 0, eps 1e-10), step 1 */
DLK_API dlk_status dlk_adagrad_step(dlk_context *ctx, const dlk_adagrad_params *p,
                                    dlk_tensor *param, const dlk_tensor *grad,
                                    dlk_tensor *state_sum);

/* ------------------------------------------------------------------------------------ */
/* glove: GloVe word vectors (Pennington et al. 2014), file-compatible with the original */
/* C tool (stanfordnlp/GloVe): vocabulary, co-occurrence records, shuffle, AdaGrad        */
/* training, analogy evaluation and nearest neighbours.                                  */
/*                                                                                      */
/* Files (byte-compatible both ways with the tool):                                      */
/*   vocab.txt         "word count\n" lines, count descending, ties by byte order        */
/*   records (.bin)    dlk_glove_record[] with 1-based ids, no header                    */
/*   params (.bin)     2V x (d+1) doubles: rows 0..V-1 word vectors, V..2V-1 context     */
/*                     vectors, each d values then the bias (also the gradsq file)        */
/*   vectors (.txt)    "word v1 ... vd\n" (model 0/1/2), an optional "V d" header line,   */
/*                     and the "<unk>" row the tool appends (mean of the 100 rarest)     */
/*   checkpoint        dlk's own: params + AdaGrad state + epoch + options, checksummed,  */
/*                     written to PATH.tmp and renamed, so the last good one survives    */
/* Paths "-" mean stdin (readers) or stdout (writers of vocab and records).               */
/* ------------------------------------------------------------------------------------ */

/* One co-occurrence record exactly as the tool writes it: 16 bytes, ids 1-based. */
typedef struct dlk_glove_record {
  int32_t w1; /* word id (row w1-1 of the word vectors) */
  int32_t w2; /* context id (row V+w2-1) */
  double x;   /* weighted count, finite and > 0 */
} dlk_glove_record;

/* ---- vocabulary ---------------------------------------------------------------------- */

/* A vocabulary: words with counts, id i (1-based) = rank i. Built by feeding text, or
   loaded from vocab.txt. Tokens are maximal runs of bytes other than space, tab and
   newline ('\r' is ignored everywhere); a token longer than 999 bytes is cut at 999 (not
   inside a UTF-8 sequence), as the tool does. Lookups move found words to the front of
   their hash chain (as the tool's table does), so one vocabulary serves one thread at a
   time. */
typedef struct dlk_glove_vocab dlk_glove_vocab;

typedef struct dlk_glove_vocab_params {
  int64_t min_count; /* words seen fewer times are dropped (tool: -min-count, default 1) */
  int64_t max_vocab; /* keep at most this many words, 0 = no limit (-max-vocab) */
} dlk_glove_vocab_params;

/* An empty vocabulary that counts tokens fed to it. */
DLK_API dlk_status dlk_glove_vocab_create(dlk_context *ctx, dlk_glove_vocab **out);
/* Count the tokens of a piece of text. Pieces may cut tokens anywhere: a token split
   across two calls counts once. "<unk>" in the text is DLK_ERR_INVALID_ARGUMENT (the
   tool refuses it: it names the unknown-word row of vectors.txt). */
DLK_API dlk_status dlk_glove_vocab_add_text(dlk_context *ctx, dlk_glove_vocab *v, const char *text,
                                            size_t bytes);
/* Stop counting: sort by count (descending, ties by byte order as the tool compares:
   signed chars), apply max_vocab then min_count. An empty result (no tokens, or none
   frequent enough) is DLK_ERR_INVALID_ARGUMENT and leaves v counting. */
DLK_API dlk_status dlk_glove_vocab_finish(dlk_context *ctx, dlk_glove_vocab *v,
                                          const dlk_glove_vocab_params *p);
/* Read vocab.txt (duplicates, a missing count, a negative count, an empty file and
   "<unk>" are DLK_ERR_CORRUPT_FILE with the line number), write it ("-": stdout). */
DLK_API dlk_status dlk_glove_vocab_load(dlk_context *ctx, const char *path, dlk_glove_vocab **out);
DLK_API dlk_status dlk_glove_vocab_save(dlk_context *ctx, const dlk_glove_vocab *v,
                                        const char *path);
/* A NULL vocabulary is DLK_OK. */
DLK_API dlk_status dlk_glove_vocab_free(dlk_context *ctx, dlk_glove_vocab *v);
/* Words after finish/load (0 while counting); tokens counted so far (with duplicates);
   distinct words counted so far. */
DLK_API dlk_status dlk_glove_vocab_size(dlk_context *ctx, const dlk_glove_vocab *v, int64_t *size);
DLK_API dlk_status dlk_glove_vocab_tokens(dlk_context *ctx, const dlk_glove_vocab *v,
                                          int64_t *tokens, int64_t *distinct);
/* Word and count of id (1-based). The string lives as long as v. */
DLK_API dlk_status dlk_glove_vocab_word(dlk_context *ctx, const dlk_glove_vocab *v, int64_t id,
                                        const char **word, int64_t *count);
/* Id (1-based) of a word, 0 when absent. */
DLK_API dlk_status dlk_glove_vocab_find(dlk_context *ctx, const dlk_glove_vocab *v,
                                        const char *word, int64_t *id);

/* ---- co-occurrence ------------------------------------------------------------------- */

/* Co-occurrence counting as the tool's cooccur: out-of-vocabulary tokens are dropped
   first, then each in-vocabulary token (the target, w2) pairs with the up to `window`
   in-vocabulary tokens before it on the same line (w1), weight 1/distance (or 1); with
   symmetric, (w2, w1) gets the same weight too. Output: records sorted by (w1, w2),
   duplicates summed. Memory-bounded like the tool: on the CPU a dense table for pairs
   of frequent words plus a buffer of sparse records, sorted and spilled to temporary
   files and merged at the end (at most `max_temp_files` open at once); on a CUDA
   context chunks of tokens are counted on the GPU by sort-and-reduce and merged the
   same way. Byte-identical to the tool's output on the CPU while nothing spills (after a
   spill, sums of a pair split across files may differ from the tool in the last bit: dlk
   adds them in file order, the tool in its heap's order). */
typedef struct dlk_glove_cooccur_params {
  int window;             /* context words on each side (tool: -window-size, default 15) */
  int symmetric;          /* 1: left and right context (default); 0: left only */
  int distance_weighting; /* 1: weight 1/distance (default); 0: weight 1 */
  double memory_gb;       /* soft memory limit in GiB (-memory; default 3, the tool's code) */
  int64_t max_product;    /* dense table for rank products below this; 0: from memory_gb */
  int64_t overflow_length; /* sparse records buffered before a spill (at most 2^40);
                              0: from memory_gb */
  const char *temp_prefix; /* temporary files PREFIX_0001.bin ...; NULL: "overflow" */
  int max_temp_files;     /* merge fan-in; 0: 64 */
  int method;             /* 0: auto (GPU chunks on a CUDA context with a GPU row, else the
                             table); 1: the tool's dense table + spilled runs; 2: token chunks
                             counted by the glove_cooccur_chunk op (any device) */
  /* The table method reproduces a quirk of the tool's merge by default: when its last
     overflow file is empty (always so when every pair fits the dense table), the first
     record of the previous file is counted twice (record 0 of cooccurrence.bin is doubled).
     1: write the true sums instead. The chunk method always writes true sums. */
  int no_tool_quirks;
} dlk_glove_cooccur_params;
/* The tool's defaults into *out. */
DLK_API dlk_status dlk_glove_cooccur_defaults(dlk_context *ctx, dlk_glove_cooccur_params *out);

typedef struct dlk_glove_cooccur dlk_glove_cooccur;
typedef struct dlk_glove_cooccur_stats {
  int64_t tokens;        /* tokens read (in vocabulary or not) */
  int64_t in_vocab;      /* of which in the vocabulary */
  int64_t lines;
  int64_t records;       /* records written by finish */
  int64_t max_product, overflow_length; /* as used */
  int temp_files;        /* temporary files written */
  int used_gpu;          /* 1 when the chunks were counted on the GPU */
  int64_t chunk_ids;     /* token ids per chunk of the chunk method (0: table method); on a
                            GPU halved until the chunk's workspace fits the device */
} dlk_glove_cooccur_stats;

/* Start counting against a finished vocabulary (kept by pointer: keep it alive). */
DLK_API dlk_status dlk_glove_cooccur_create(dlk_context *ctx, const dlk_glove_cooccur_params *p,
                                            const dlk_glove_vocab *vocab,
                                            dlk_glove_cooccur **out);
/* Feed text; pieces may cut tokens and lines anywhere. */
DLK_API dlk_status dlk_glove_cooccur_add_text(dlk_context *ctx, dlk_glove_cooccur *c,
                                              const char *text, size_t bytes);
/* Write the sorted, summed records to path ("-": stdout) and remove the temporary files.
   On error nothing is left at path's temporary name and the temporary files are gone. */
DLK_API dlk_status dlk_glove_cooccur_finish(dlk_context *ctx, dlk_glove_cooccur *c,
                                            const char *path);
DLK_API dlk_status dlk_glove_cooccur_get_stats(dlk_context *ctx, const dlk_glove_cooccur *c,
                                               dlk_glove_cooccur_stats *out);
/* Removes any temporary files left. A NULL handle is DLK_OK. */
DLK_API dlk_status dlk_glove_cooccur_free(dlk_context *ctx, dlk_glove_cooccur *c);

/* ---- shuffle ------------------------------------------------------------------------- */

/* The tool's shuffle: chunks of array_size records are Fisher-Yates shuffled with the C
   library's rand() sequence for `seed` (dlk carries its own copy of glibc's generator,
   so the same seed gives the tool's output byte for byte) and written to temporary
   files, which are then merged by reading about array_size/files records from each in
   turn and shuffling each such block again. */
typedef struct dlk_glove_shuffle_params {
  uint32_t seed;          /* 0: from the clock, as the tool does (the used seed is returned) */
  double memory_gb;       /* -memory, default 2 */
  int64_t array_size;     /* records per chunk; 0: from memory_gb (-array-size) */
  const char *temp_prefix; /* NULL: "temp_shuffle" */
} dlk_glove_shuffle_params;
/* The tool's defaults into *out. */
DLK_API dlk_status dlk_glove_shuffle_defaults(dlk_context *ctx, dlk_glove_shuffle_params *out);
/* in_path, out_path: "-" for stdin/stdout. seed_used (may be NULL) gets the seed.
   records (may be NULL) gets the count. A file whose size is not a multiple of 16 is
   DLK_ERR_CORRUPT_FILE. */
DLK_API dlk_status dlk_glove_shuffle_file(dlk_context *ctx, const dlk_glove_shuffle_params *p,
                                          const char *in_path, const char *out_path,
                                          uint32_t *seed_used, int64_t *records);

/* ---- records for training ------------------------------------------------------------ */

/* Validated co-occurrence records ready for training: resident on the context's device
   when they fit max_resident_bytes, else streamed from the file in chunks each epoch.
   Opening checks the whole file once: size a multiple of 16, every id in [1, V], every
   count finite and > 0 (DLK_ERR_CORRUPT_FILE / DLK_ERR_OUT_OF_RANGE / DLK_ERR_NOT_FINITE
   with the record index). Streaming: a helper thread reads and checks chunk k+1 (and on a
   GPU uploads it from pinned memory on a stream of its own) while chunk k trains, into two
   chunk buffers allocated at open; each chunk is checked again as it is read (a file
   changed since opening stops the epoch at that chunk with the record's index). A records
   object serves one epoch at a time. */
typedef struct dlk_glove_records dlk_glove_records;
typedef struct dlk_glove_records_params {
  int64_t vocab_size;        /* V the ids must fit */
  size_t max_resident_bytes; /* 0: auto (half of free GPU memory; 1/4 of RAM on the CPU) */
  int64_t chunk_records;     /* records per streamed chunk; 0: auto (4M) */
} dlk_glove_records_params;
DLK_API dlk_status dlk_glove_records_open(dlk_context *ctx, const dlk_glove_records_params *p,
                                          const char *path, dlk_glove_records **out);
/* From host memory (copied; same checks). */
DLK_API dlk_status dlk_glove_records_from_host(dlk_context *ctx, const dlk_glove_records_params *p,
                                               const dlk_glove_record *recs, int64_t count,
                                               dlk_glove_records **out);
DLK_API dlk_status dlk_glove_records_info(dlk_context *ctx, const dlk_glove_records *r,
                                          int64_t *count, int *resident);
/* Use the context the records were made with. NULL records are DLK_OK. */
DLK_API dlk_status dlk_glove_records_free(dlk_context *ctx, dlk_glove_records *r);
/* Read or write a whole records file into/from host memory (*recs from malloc, free()). */
DLK_API dlk_status dlk_glove_records_read(dlk_context *ctx, const char *path,
                                          dlk_glove_record **recs, int64_t *count);
DLK_API dlk_status dlk_glove_records_write(dlk_context *ctx, const char *path,
                                           const dlk_glove_record *recs, int64_t count);

/* ---- model --------------------------------------------------------------------------- */

/* Parameters W [2V, d+1] and AdaGrad accumulators G [2V, d+1] on the context's device,
   contiguous. F64 (the CPU variants need it) or F32 (GPU variants that say so). */
typedef struct dlk_glove_model {
  int64_t vocab_size; /* V */
  int dim;            /* d (vector size, bias not included) */
  int64_t epoch;      /* epochs completed (kept in checkpoints) */
  dlk_tensor params;  /* [2V, d+1] */
  dlk_tensor gradsq;  /* [2V, d+1] */
} dlk_glove_model;

/* Allocate and initialise as the tool does: every value of W, biases included, is
   (rand() / RAND_MAX - 0.5) / d in row-major order with glibc's rand() after srand(seed)
   (so -seed S gives the tool's vectors.000.bin), G = 1. seed 0 is used as given (glibc
   treats srand(0) as srand(1)); the tool's "0 = clock" is the caller's choice. */
DLK_API dlk_status dlk_glove_model_create(dlk_context *ctx, int64_t vocab_size, int dim,
                                          dlk_dtype dtype, uint32_t seed, dlk_glove_model *m);
DLK_API dlk_status dlk_glove_model_free(dlk_context *ctx, dlk_glove_model *m);
/* The raw binary arrays (vectors.NNN.bin / gradsq.NNN.bin, -init-param-file): exactly
   2V(d+1) doubles, else DLK_ERR_CORRUPT_FILE; non-finite values are DLK_ERR_NOT_FINITE
   (and for gradsq, values <= 0). The model is untouched on error. Saving writes PATH.tmp
   and renames. */
DLK_API dlk_status dlk_glove_model_load_params(dlk_context *ctx, dlk_glove_model *m,
                                               const char *path);
DLK_API dlk_status dlk_glove_model_load_gradsq(dlk_context *ctx, dlk_glove_model *m,
                                               const char *path);
DLK_API dlk_status dlk_glove_model_save_params(dlk_context *ctx, const dlk_glove_model *m,
                                               const char *path);
DLK_API dlk_status dlk_glove_model_save_gradsq(dlk_context *ctx, const dlk_glove_model *m,
                                               const char *path);

/* Text output as the tool's save_params: one line per vocabulary word, then "<unk>"
   (the mean of the rows of the min(100, V) rarest words) unless no_unk. model 0: word row
   with bias then context row with bias; 1: word vector; 2: word + context vector.
   Values printed with "%lf". The vocabulary must have V words and no "<unk>". */
typedef struct dlk_glove_text_params {
  int model;        /* 0, 1 or 2 (default 2, as the tool) */
  int write_header; /* 1: first line "V d" (gensim) */
  int no_unk;       /* 1: leave out the <unk> row */
  int gradsq;       /* 1: write the accumulators (the tool's gradsq.txt: both rows, biases) */
} dlk_glove_text_params;
DLK_API dlk_status dlk_glove_save_text(dlk_context *ctx, const dlk_glove_text_params *p,
                                       const dlk_glove_model *m, const dlk_glove_vocab *vocab,
                                       const char *path);

/* Checkpoint: the model (W, G, epoch) and the training options, with a checksum. */
typedef struct dlk_glove_checkpoint_info {
  double eta, alpha, x_max, grad_clip;
  int keras;
  uint32_t seed;
  int64_t total_epochs; /* the run's planned epochs */
  char note[256];       /* free text, e.g. the input file; NUL-terminated */
} dlk_glove_checkpoint_info;
DLK_API dlk_status dlk_glove_checkpoint_save(dlk_context *ctx, const dlk_glove_model *m,
                                             const dlk_glove_checkpoint_info *info,
                                             const char *path);
/* Allocates *m on the context's device (dtype of the file, F64) and fills info (may be
   NULL). A truncated, corrupt or foreign file is DLK_ERR_CORRUPT_FILE; *m untouched. */
DLK_API dlk_status dlk_glove_checkpoint_load(dlk_context *ctx, const char *path,
                                             dlk_glove_model *m, dlk_glove_checkpoint_info *info);

/* ---- training ------------------------------------------------------------------------ */

/* One epoch of the tool's AdaGrad over the records (variants: 0 CPU reference, f64,
   records in order; 20 CPU Hogwild threads like the tool; 1..9 CUDA). Per record
   (i = w1-1, j = V+w2-1, X = x):
     diff  = w_i . w_j + b_i + b_j - log X          (keras: log(1 + X))
     fdiff = X > x_max ? diff : (X / x_max)^alpha * diff   (keras: no cap)
     a record whose diff or fdiff is not finite is skipped (counted in `skipped`);
     cost += 0.5 * fdiff * diff
     for each k < d: g1 = clip(fdiff * w_j[k]) * eta, g2 = clip(fdiff * w_i[k]) * eta,
       u1 = g1 / sqrt(G_i[k]), u2 = g2 / sqrt(G_j[k]); G_i[k] += g1^2; G_j[k] += g2^2
     the vector updates w_i -= u1, w_j -= u2 are dropped when sum(u1) or sum(u2) is not
       finite (the accumulators keep their update, as in the tool);
     b_i -= fdiff / sqrt(G_bi), b_j -= fdiff / sqrt(G_bj) (each dropped if not finite);
       G_bi += fdiff^2, G_bj += fdiff^2.
   clip(v) = min(max(v, -grad_clip), grad_clip). cost in the result = sum / records, as
   the tool prints it. */
typedef struct dlk_glove_train_params {
  double eta;       /* 0.05 */
  double alpha;     /* 0.75 */
  double x_max;     /* 100 */
  double grad_clip; /* 100 */
  int keras;        /* 1: target log(1+X) and weight (X/x_max)^alpha without the cap */
  int threads;      /* CPU Hogwild threads; 0: context cpu_threads, else all cores */
  /* Polled between chunks of records (and by the CPU trainers every 64k records): when
     it reads nonzero the epoch stops with DLK_ERR_INTERRUPTED; the model then holds a
     partial epoch (save nothing; the last checkpoint is the good one). May be NULL. */
  const volatile int *cancel;
  /* Called between chunks (may be NULL): records done of total, cost sum so far. */
  void (*progress)(void *user, int64_t done, int64_t total, double cost_sum);
  void *progress_user;
} dlk_glove_train_params;
/* The tool's defaults into *out (eta 0.05, alpha 0.75, x_max 100, grad_clip 100, the rest
   0/NULL). */
DLK_API dlk_status dlk_glove_train_defaults(dlk_context *ctx, dlk_glove_train_params *out);

typedef struct dlk_glove_epoch_result {
  double cost;      /* sum of record costs / records (the tool's printed figure) */
  double cost_sum;
  int64_t records;
  int64_t skipped;  /* records with a non-finite diff */
  int variant;      /* variant id that ran */
} dlk_glove_epoch_result;
/* Train one epoch and increment m->epoch. */
DLK_API dlk_status dlk_glove_train_epoch(dlk_context *ctx, const dlk_glove_train_params *p,
                                         dlk_glove_model *m, const dlk_glove_records *r,
                                         dlk_glove_epoch_result *out);

/* ---- evaluation ---------------------------------------------------------------------- */

/* Word vectors for evaluation, [V, D] F64 host rows in vocabulary order: from a model
   (which: 0 = [W | C] with biases as model 0, 1 = W, 2 = W + C) or read from a text
   vectors file checked against a vocabulary (a word that differs from the vocabulary's
   word at that line, a row of the wrong length, or a missing row is
   DLK_ERR_CORRUPT_FILE; the "<unk>" row and a "V d" header are skipped). *out is a CPU
   tensor from malloc: free with dlk_tensor_free. */
DLK_API dlk_status dlk_glove_embeddings(dlk_context *ctx, const dlk_glove_model *m, int which,
                                        dlk_tensor *out);
DLK_API dlk_status dlk_glove_vectors_load_text(dlk_context *ctx, const char *path,
                                               const dlk_glove_vocab *vocab, dlk_tensor *out);

/* Analogy accuracy exactly as the tool's eval/python/evaluate.py: rows are L2-normalised,
   questions with a word outside the vocabulary are dropped (counted in `seen` vs
   `total`), the prediction for "a b c d" is the argmax over all words of
   cos(w, w_b - w_a + w_c) with a, b, c excluded (first index on ties). The scores are
   one GEMM (dlk_gemm) of the normalised matrix with a batch of question vectors, on the
   context's device. Files: the 14 files of the standard set in the tool's order, the
   first 5 semantic, the rest syntactic; a missing file is DLK_ERR_IO. */
#define DLK_GLOVE_ANALOGY_FILES 14
typedef struct dlk_glove_analogy_result {
  int64_t correct[DLK_GLOVE_ANALOGY_FILES], seen[DLK_GLOVE_ANALOGY_FILES],
      total[DLK_GLOVE_ANALOGY_FILES];
  const char *file[DLK_GLOVE_ANALOGY_FILES];
  int64_t sem_correct, sem_seen, syn_correct, syn_seen, all_correct, all_seen, all_total;
} dlk_glove_analogy_result;
typedef struct dlk_glove_analogy_params {
  int batch;         /* questions per GEMM; 0: 100 like evaluate.py */
  int max_questions; /* per file, 0: all (for quick checks) */
} dlk_glove_analogy_params;
DLK_API dlk_status dlk_glove_analogy_eval(dlk_context *ctx, const dlk_glove_analogy_params *p,
                                          const dlk_tensor *vectors, const dlk_glove_vocab *vocab,
                                          const char *question_dir,
                                          dlk_glove_analogy_result *out);
/* Answer analogy questions given as 0-based rows a, b, c [n] (I32 host arrays): pred[q]
   is the best row other than a, b, c. */
DLK_API dlk_status dlk_glove_analogy_predict(dlk_context *ctx, const dlk_glove_analogy_params *p,
                                             const dlk_tensor *vectors, const int32_t *a,
                                             const int32_t *b, const int32_t *c, int64_t n,
                                             int32_t *pred);
/* The k nearest rows (cosine) to row `row`, itself excluded: ids (0-based) and
   similarities, best first. */
DLK_API dlk_status dlk_glove_neighbours(dlk_context *ctx, const dlk_tensor *vectors, int64_t row,
                                        int k, int32_t *ids, double *sims);

/* ------------------------------------------------------------------------------------ */
/* conv: 2-D convolution (forward with fused bias and activation, backward-data,         */
/* backward-filter and bias gradient) and the Gram matrix of feature maps.               */
/*                                                                                      */
/* Tensors are logically NCHW as in PyTorch: x [N, C, H, W], w [Cout, Cin/groups, kH, kW] */
/* (cross-correlation, as torch.nn.Conv2d), y [N, Cout, Ho, Wo] with                    */
/*   Ho = floor((H + 2 padding_h - dilation_h (kH - 1) - 1) / stride_h) + 1 (W alike).   */
/* Channels-last memory is a stride pattern, exactly as torch.channels_last (strides    */
/* [H*W*C, 1, W*C, C]), not a flag. Every op accepts any strides through the CPU        */
/* reference; fast variants say which layouts they take, and explain names the reason.  */
/* Dtypes: F32, F16, BF16 (F32 accumulation), F64; one dtype for all tensors of a call. */
/* TF32 only when the context allows it.                                                */
/* ------------------------------------------------------------------------------------ */

typedef struct dlk_conv2d_params {
  int64_t stride[2], padding[2], dilation[2]; /* {h, w}; 0 in stride/dilation means 1 */
  int64_t groups;                             /* 0 or 1: ordinary; Cin: depthwise */
  dlk_activation act;                         /* fused after the bias */
} dlk_conv2d_params;
/* y = act(z), z = conv2d(x, w) + b. NULL params: stride 1, padding 0, dilation 1, groups 1,
   no activation. z (optional) receives the pre-activation, which the backward needs when
   act != NONE. Groups must divide Cin and Cout; padding must be >= 0 and the dilated
   kernel must fit the padded input (Ho, Wo >= 1). */
DLK_API dlk_status dlk_conv2d_forward(dlk_context *ctx, const dlk_conv2d_params *p, const dlk_tensor *x,
                                      const dlk_tensor *w, const dlk_tensor *b /* [Cout] or NULL */,
                                      dlk_tensor *y, dlk_tensor *z /* pre-activation, or NULL */);
/* dx, dw, db each optional (NULL); z required when act != NONE; written, not accumulated.
   With g = dy * act'(z) (g = dy for NONE): dx = the transposed convolution of g with w,
   dw[k, c, r, s] = sum over n, oh, ow of g[n, k, oh, ow] x[n, c', oh*sh - ph + r*dh,
   ow*sw - pw + s*dw] (c' the input channel of c in k's group), db[k] = sum of g[:, k].
   Deterministic mode gives the same bits every run (no cross-block atomics). */
DLK_API dlk_status dlk_conv2d_backward(dlk_context *ctx, const dlk_conv2d_params *p, const dlk_tensor *x,
                                       const dlk_tensor *w, const dlk_tensor *z, const dlk_tensor *dy,
                                       dlk_tensor *dx, dlk_tensor *dw, dlk_tensor *db);
/* pure: the output size of one spatial dim, floor((in + 2 padding - dilation (kernel - 1)
   - 1) / stride) + 1 with stride/dilation 0 read as 1; <= 0 when the dilated kernel does
   not fit the padded input (or an argument is negative). */
DLK_API int64_t dlk_conv2d_output_dim(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                                      int64_t dilation);

/* Gram matrix of feature maps (neural style transfer). f [N, C, H, W] any strides; norm
   NONE divides by 1. NULL params: NONE. */
typedef enum dlk_gram_norm { DLK_GRAM_NONE = 0, DLK_GRAM_HW, DLK_GRAM_CHW } dlk_gram_norm;
typedef struct dlk_gram_params { dlk_gram_norm norm; } dlk_gram_params;
/* g[n] = F F^T / norm, F = f[n] viewed as [C, H*W] (norm H*W or C*H*W); g [N, C, C]. */
DLK_API dlk_status dlk_gram_forward(dlk_context *ctx, const dlk_gram_params *p, const dlk_tensor *f, dlk_tensor *g);
/* The true gradient for any dg (symmetric or not): df = (dg + dg^T) F / norm, written. */
DLK_API dlk_status dlk_gram_backward(dlk_context *ctx, const dlk_gram_params *p, const dlk_tensor *f,
                                     const dlk_tensor *dg, dlk_tensor *df);

/* ------------------------------------------------------------------------------------ */
/* conv family, part 2: pooling, batch norm, MSE loss (issue 11). Tensors are logically  */
/* NCHW as in PyTorch (x [N, C, H, W]); channels-last is a stride pattern                */
/* ([H*W*C, 1, W*C, C], as torch.channels_last). The CPU reference takes any strides;    */
/* fast variants say which layouts they take. F32, F16, BF16 (F32 accumulation), F64.    */
/* Gradients are written, not accumulated.                                              */
/* ------------------------------------------------------------------------------------ */

/* Max or average pooling as torch.nn.MaxPool2d / AvgPool2d. x [N, C, H, W], y [N, C, OH, OW]
   with OH = floor_or_ceil((H + 2 pad - dil (k - 1) - 1) / stride) + 1 (ceil_mode: ceil,
   and a last window that would start in the bottom/right padding is dropped, as torch);
   y's shape must be exactly that (OH, OW >= 1). Windows start at o * stride - pad.
   Max: the largest element of the window (NaN wins: a window holding NaN gives NaN);
   padding never wins; a dilated window that holds no input element (rows or columns
   stepping over the input) gives -inf and routes no gradient (torch gives -inf there
   with an out-of-range index). Avg: the window sum divided by the window's element count
   clipped to the input (count_include_pad 0) or to the padded input (1), as torch.
   Refused as torch refuses: padding > kernel / 2 (integer division, per dim), dilation
   other than 0/1 for AVG, a kernel < 1, a negative padding or stride. */
typedef enum dlk_pool_kind { DLK_POOL_MAX = 0, DLK_POOL_AVG, DLK_POOL_KIND_COUNT } dlk_pool_kind;
typedef struct dlk_pool2d_params {
  dlk_pool_kind kind;
  int64_t kernel[2], stride[2], padding[2], dilation[2]; /* stride 0: = kernel; dilation 0: 1 (max only) */
  int ceil_mode, count_include_pad;                      /* as torch.nn.MaxPool2d / AvgPool2d */
} dlk_pool2d_params;
/* NULL params are an error (the kernel size must be given). */
DLK_API dlk_status dlk_pool2d_forward(dlk_context *ctx, const dlk_pool2d_params *p,
                                      const dlk_tensor *x, dlk_tensor *y);
/* dx = the gradient of the forward: max routes each window's dy to the window's first
   maximum in row-major window order (PyTorch's CPU kernel: a later element replaces the
   current maximum only when it is larger or NaN, so among NaNs the last one; a window of
   -inf routes to its first element inside the input); avg spreads dy / divisor over the
   window. Overlapping windows add up. x is the forward's input; y its output (may be
   NULL: only a variant that needs it, cuDNN's, then declines). */
DLK_API dlk_status dlk_pool2d_backward(dlk_context *ctx, const dlk_pool2d_params *p,
                                       const dlk_tensor *x, const dlk_tensor *y,
                                       const dlk_tensor *dy, dlk_tensor *dx);

/* Adaptive average pooling to y's spatial size (torch's AdaptiveAvgPool2d bins): output
   row o averages input rows [floor(o H / OH), ceil((o + 1) H / OH)), columns alike.
   x [N, C, H, W] with H, W >= 1, y [N, C, OH, OW] with OH, OW >= 1 (OH > H is allowed). */
DLK_API dlk_status dlk_adaptive_avg_pool2d_forward(dlk_context *ctx, const dlk_tensor *x,
                                                   dlk_tensor *y);
/* dx[h, w] = sum over the bins that hold (h, w) of dy / (bin height * bin width). */
DLK_API dlk_status dlk_adaptive_avg_pool2d_backward(dlk_context *ctx, const dlk_tensor *dy,
                                                    dlk_tensor *dx);

/* Batch norm over the channel dim 1 of x [N, C], [N, C, L] or [N, C, H, W]
   (torch.nn.BatchNorm1d / 2d); statistics per channel over the M = N (L or H W) values.
     training:  mean = sum x / M, var = sum (x - mean)^2 / M (biased),
                rstd = 1 / sqrt(var + eps), y = (x - mean) rstd gamma + beta;
                running_mean = (1 - momentum) running_mean + momentum mean,
                running_var  = (1 - momentum) running_var + momentum var M / (M - 1)
                (unbiased, as torch); save_mean = mean, save_rstd = rstd.
     inference: y = (x - running_mean) / sqrt(running_var + eps) gamma + beta.
   gamma, beta [C] or NULL (1 and 0). Dtypes: y is x's dtype; gamma, beta, running stats,
   save_mean and save_rstd are F32 for F32/F16/BF16 x and F64 for F64 x.
   training: save_mean/save_rstd [C] are required; running_mean/running_var are both given
   (updated in place) or both NULL (not tracked); M = 1 is refused (torch does); M = 0
   writes nothing. inference: running stats required; save_mean/save_rstd may be NULL and
   are not written. NULL params: eps 1e-5, momentum 0.1, training 1. momentum in [0, 1]. */
typedef struct dlk_batchnorm_params { double eps, momentum; int training; } dlk_batchnorm_params;
DLK_API dlk_status dlk_batchnorm_forward(dlk_context *ctx, const dlk_batchnorm_params *p,
                                         const dlk_tensor *x, const dlk_tensor *gamma,
                                         const dlk_tensor *beta, dlk_tensor *running_mean,
                                         dlk_tensor *running_var, dlk_tensor *y,
                                         dlk_tensor *save_mean, dlk_tensor *save_rstd);
/* training: from the forward's save_mean/save_rstd, with xhat = (x - mean) rstd,
     dbeta = sum dy, dgamma = sum dy xhat, dx = gamma rstd (dy - dbeta / M - xhat dgamma / M).
   training = 0: the frozen affine map through the running statistics: pass running_mean
   as save_mean and running_var as save_rstd; rstd = 1 / sqrt(running_var + eps),
     dx = dy gamma rstd, dgamma = sum dy (x - running_mean) rstd, dbeta = sum dy.
   dx, dgamma, dbeta each optional (NULL); dgamma/dbeta are gamma's dtype. */
DLK_API dlk_status dlk_batchnorm_backward(dlk_context *ctx, const dlk_batchnorm_params *p,
                                          const dlk_tensor *x, const dlk_tensor *gamma,
                                          const dlk_tensor *save_mean,
                                          const dlk_tensor *save_rstd, const dlk_tensor *dy,
                                          dlk_tensor *dx, dlk_tensor *dgamma,
                                          dlk_tensor *dbeta);

/* Mean-squared error as torch's F.mse_loss (style, content and time-series losses):
   l_i = (x_i - target_i)^2; MEAN: sum l / numel (NaN for an empty x, as torch), SUM: sum l,
   NONE: l. x and target any shape (the same), any strides. loss [] or [1] for MEAN/SUM,
   x's shape for NONE, like cross-entropy; F32 for F16/BF16 x, else x's dtype. NULL
   params: MEAN. */
typedef struct dlk_mse_params { dlk_reduction reduction; } dlk_mse_params;
DLK_API dlk_status dlk_mse_loss_forward(dlk_context *ctx, const dlk_mse_params *p,
                                        const dlk_tensor *x, const dlk_tensor *target,
                                        dlk_tensor *loss);
/* dx = 2 (x - target) dloss (NONE: elementwise; SUM: the scalar; MEAN: the scalar / numel).
   dloss has loss's shape and dtype ([] or [1], or x's shape for NONE). */
DLK_API dlk_status dlk_mse_loss_backward(dlk_context *ctx, const dlk_mse_params *p,
                                         const dlk_tensor *x, const dlk_tensor *target,
                                         const dlk_tensor *dloss, dlk_tensor *dx);

/* ------------------------------------------------------------------------------------ */
/* attention: additive (Bahdanau) and Luong attention, scaled-dot-product multi-head     */
/* attention (SDPA). Float ops take F16, BF16 (F32 accumulation), F32 (its own path) and  */
/* F64 (CPU reference). Tensors may have any strides (fast variants want a unit stride   */
/* along the head dim and say so in explain).                                            */
/* ------------------------------------------------------------------------------------ */

/* ---- additive (Bahdanau) and Luong attention ----------------------------------------- */
/* Additive (Bahdanau) attention, the attention_keras semantics:
   e[b,i,j] = v_a . tanh(enc[b,j] W_a + dec[b,i] U_a); alpha[b,i,:] = softmax_j(e[b,i,:]);
   context[b,i] = sum_j alpha[b,i,j] enc[b,j].
   enc [B, Te, He], dec [B, Td, Hd], w_a [He, A], u_a [Hd, A], v_a [A] (attention_keras: A = He);
   enc_lengths I32/I64 [B] or NULL: encoder steps j >= length get weight 0 (a length of 0 is
   an error). Outputs context [B, Td, He] and weights [B, Td, Te].

   In full, with l = enc_lengths[b] (Te without it): encoder step j is visible iff j < l;
     e[b,i,j]      = sum_a v_a[a] tanh(sum_h enc[b,j,h] w_a[h,a] + sum_h dec[b,i,h] u_a[h,a])
     alpha[b,i,j]  = exp(e[b,i,j] - m) / sum_{j' < l} exp(e[b,i,j'] - m)   (j < l), 0 (j >= l)
     context[b,i]  = sum_{j < l} alpha[b,i,j] enc[b,j]
   Steps j >= l are never read (enc there may hold anything, NaN included), their weights
   are exactly 0. This is attention_keras's AttentionLayer (W_a [He, He], U_a [Hd, He],
   V_a [He, 1]: A = He there; dlk allows any A), whose outputs are (context, weights).
   Dtypes: enc, dec, w_a, u_a, v_a, context, weights share one float dtype; lengths I32 or
   I64 with values in [1, Te] (0 or > Te is DLK_ERR_OUT_OF_RANGE, checked before anything is
   written). Te, Td >= 1 (Td = 1 is the decoder loop's single step). */
DLK_API dlk_status dlk_additive_attention_forward(dlk_context *ctx, const dlk_tensor *enc, const dlk_tensor *dec, const dlk_tensor *w_a, const dlk_tensor *u_a,
    const dlk_tensor *v_a, const dlk_tensor *enc_lengths, dlk_tensor *context, dlk_tensor *weights);
/* From the forward's weights. dweights optional (a loss on the weights themselves);
   every gradient output optional; written, not accumulated.
   With dalpha[b,i,j] = dweights[b,i,j] + dcontext[b,i] . enc[b,j] (each term only when
   given; at least one of dcontext and dweights is given), for visible j:
     de[b,i,j]  = alpha (dalpha - sum_j' alpha[b,i,j'] dalpha[b,i,j'])
     H          = tanh(enc[b,j] W_a + dec[b,i] U_a)                 (recomputed, [A])
     dZ[b,i,j]  = de[b,i,j] v_a (1 - H^2)
     denc[b,j]  = sum_i alpha[b,i,j] dcontext[b,i] + W_a (sum_i dZ[b,i,j])
     ddec[b,i]  = U_a (sum_j dZ[b,i,j])
     dw_a       = sum_{b,j} enc[b,j]^T (sum_i dZ[b,i,j]);  du_a = sum_{b,i} dec[b,i]^T (sum_j dZ)
     dv_a       = sum_{b,i,j} de[b,i,j] H
   denc is exactly 0 on the steps j >= length. enc, dec, the weights and enc_lengths must be
   the forward's; the weights are read only on visible steps. */
DLK_API dlk_status dlk_additive_attention_backward(dlk_context *ctx, const dlk_tensor *enc, const dlk_tensor *dec, const dlk_tensor *w_a, const dlk_tensor *u_a,
    const dlk_tensor *v_a, const dlk_tensor *enc_lengths, const dlk_tensor *weights,
    const dlk_tensor *dcontext, const dlk_tensor *dweights, dlk_tensor *denc, dlk_tensor *ddec,
    dlk_tensor *dw_a, dlk_tensor *du_a, dlk_tensor *dv_a);

/* Luong attention: score dot (dec . enc), general (dec W enc^T, w [Hd, He]), concat
   (v . tanh(W [dec; enc]), w [A, Hd+He], v [A]); same masks and outputs as above.
   In full, e[b,i,j] is
     DOT      dec[b,i] . enc[b,j]                                   (Hd = He; w, v NULL)
     GENERAL  sum_{h,k} dec[b,i,h] w[h,k] enc[b,j,k]                (w [Hd, He]; v NULL)
     CONCAT   sum_a v[a] tanh(sum_h w[a,h] dec[b,i,h] + sum_k w[a,Hd+k] enc[b,j,k])
              (w [A, Hd + He], the layout of torch.nn.Linear(Hd + He, A, bias=False) applied
              to cat([dec, enc]); v [A])
   then alpha, context and the lengths exactly as additive attention. w and v are NULL
   where the score does not use them (DOT: both; GENERAL: v); giving one there is
   DLK_ERR_INVALID_ARGUMENT. NULL params: DOT. */
typedef enum dlk_luong_score { DLK_LUONG_DOT = 0, DLK_LUONG_GENERAL, DLK_LUONG_CONCAT } dlk_luong_score;
typedef struct dlk_luong_attention_params { dlk_luong_score score; } dlk_luong_attention_params;
DLK_API dlk_status dlk_luong_attention_forward(dlk_context *ctx, const dlk_luong_attention_params *p,
    const dlk_tensor *enc, const dlk_tensor *dec, const dlk_tensor *w, const dlk_tensor *v,
    const dlk_tensor *enc_lengths, dlk_tensor *context, dlk_tensor *weights);
/* The backward from the forward's weights, as additive attention's: dcontext and dweights
   each optional (at least one given); denc, ddec, dw, dv each optional (dw and dv NULL
   where w and v are), written, not accumulated; denc exactly 0 on steps j >= length. */
DLK_API dlk_status dlk_luong_attention_backward(dlk_context *ctx, const dlk_luong_attention_params *p,
    const dlk_tensor *enc, const dlk_tensor *dec, const dlk_tensor *w, const dlk_tensor *v,
    const dlk_tensor *enc_lengths, const dlk_tensor *weights, const dlk_tensor *dcontext,
    const dlk_tensor *dweights, dlk_tensor *denc, dlk_tensor *ddec, dlk_tensor *dw, dlk_tensor *dv);

/* ---- scaled-dot-product multi-head attention ----------------------------------------- */

/* Scaled-dot-product multi-head attention, torch.nn.functional.scaled_dot_product_attention:
   q [B, Hq, Tq, D], k [B, Hk, Tk, D], v [B, Hk, Tk, Dv], Hq a multiple of Hk (GQA/MQA);
   out [B, Hq, Tq, Dv]; lse [B, Hq, Tq] F32 (row log-sum-exp of the scaled, masked scores);
   D and Dv are not both 0 (DLK_ERR_SHAPE_MISMATCH: k and v would hold nothing).
   bias: optional additive [B or 1, Hq or 1, Tq, Tk] (size-1 dims broadcast via stride 0);
   a boolean mask is passed as a bias of 0 / -inf. q_lengths, k_lengths: I32/I64 [B] or NULL
   (padding / variable length). A row with every key masked gives out = 0 and lse = -inf.

   In full, for batch b, query head h (key/value head h / (Hq / Hk), as torch's enable_gqa),
   query i and key j, with ql = q_lengths[b] (else Tq) and kl = k_lengths[b] (else Tk):
     key j is visible to query i  iff  i < ql, j < kl and, when causal, j <= i + (kl - ql)
       (causal is bottom-right aligned per sequence, as FlashAttention and cuDNN);
     s_ij   = scale * q_i . k_j + bias[b, h, i, j]   (visible keys; -inf otherwise)
     lse_i  = log sum_j exp(s_ij)                     (-inf when no key is visible)
     p_ij   = exp(s_ij - lse_i)                       (0 on a row whose lse is -inf)
     out_i  = sum_j p_ij z_ij v_j,  z_ij = keep_ij / (1 - dropout)
     keep_ij = dlk_dropout_uniform(seed, offset + ((b Hq + h) Tq + i) Tk + j) >= dropout
   (the counter is the row-major index into the [B, Hq, Tq, Tk] weights; with dropout 0 every
   z_ij is 1). lse is taken before dropout and includes the bias.
   Dtypes: q, k, v, out, bias (and every gradient) share one float dtype; lse is F32, F64
   for F64 inputs; lengths are I32 or I64 with values in [1, T] (0 or > T is
   DLK_ERR_OUT_OF_RANGE, checked before anything is written). The bias may also be given
   with 2 or 3 dims (missing leading dims are 1) and any of its dims may be 1 (broadcast).
   NULL params: the defaults (scale 1/sqrt(D), not causal, no dropout). */
typedef struct dlk_sdpa_params {
  double scale;     /* 0: 1/sqrt(D) */
  int causal;       /* bottom-right aligned when Tq != Tk, as torch */
  double dropout;   /* on the attention weights, dlk_dropout's counter RNG */
  uint64_t seed, offset;
} dlk_sdpa_params;
/* lse may be NULL (inference: not written). */
DLK_API dlk_status dlk_sdpa_forward(dlk_context *ctx, const dlk_sdpa_params *p, const dlk_tensor *q,
    const dlk_tensor *k, const dlk_tensor *v, const dlk_tensor *bias, const dlk_tensor *q_lengths,
    const dlk_tensor *k_lengths, dlk_tensor *out, dlk_tensor *lse);
/* dq, dk, dv from the saved lse, never storing the attention matrix; dbias optional (a
   trainable bias gets its gradient, reduced over broadcast dims).
   With dp_ij = z_ij dout_i . v_j and delta_i = sum_j p_ij dp_ij (= dout_i . out_i; the fast
   variants take it from the out they are given, the CPU reference sums it exactly):
     ds_ij = p_ij (dp_ij - delta_i)
     dq_i = scale sum_j ds_ij k_j;  dk_j = scale sum_{h in group, i} ds_ij q_i;
     dv_j = sum_{h in group, i} p_ij z_ij dout_i;  dbias = ds summed over the bias's
     size-1 (broadcast) dims, in the bias's own shape.
   Masked keys, masked rows and rows with lse -inf get exact zeros, never NaN. q, k, v,
   bias, lengths and params must be the forward's; out and lse the forward's outputs.
   dq, dk, dv, dbias may each be NULL (not wanted); gradients are written, not
   accumulated. In deterministic mode every variant gives the same bits run to run. */
DLK_API dlk_status dlk_sdpa_backward(dlk_context *ctx, const dlk_sdpa_params *p, const dlk_tensor *q,
    const dlk_tensor *k, const dlk_tensor *v, const dlk_tensor *bias, const dlk_tensor *q_lengths,
    const dlk_tensor *k_lengths, const dlk_tensor *out, const dlk_tensor *lse,
    const dlk_tensor *dout, dlk_tensor *dq, dlk_tensor *dk, dlk_tensor *dv, dlk_tensor *dbias);

/* ------------------------------------------------------------------------------------ */
/* recurrent: RNN-tanh, RNN-relu, LSTM (with proj_size), GRU; one step ("cell") and whole */
/* sequences (layers, directions, variable lengths), forward and backward through time.  */
/* Semantics and weight layouts are exactly torch.nn.RNN / LSTM / GRU (and RNNCell,      */
/* LSTMCell, GRUCell), so a PyTorch state dict loads unchanged:                          */
/*   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu                      */
/*   LSTM  gates i, f, g, o (row blocks of W_ih, W_hh in that order):                    */
/*         i = sig(.), f = sig(.), g = tanh(.), o = sig(.), each W_i* x + b_i* + W_h* h + b_h* */
/*         c' = f c + i g, h' = o tanh(c'); with proj_size P: h' = W_hr (o tanh(c'))       */
/*   GRU   gates r, z, n: r = sig(W_ir x + b_ir + W_hr h + b_hr), z likewise,             */
/*         n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h              */
/*         gru_reset_before: n = tanh(W_in x + b_in + W_hn (r h) + b_hn) (Cho et al. 2014, */
/*         Keras reset_after=False), which PyTorch and cuDNN do not offer.                */
/* Dtypes: every float tensor of a call has x's dtype: F32, F16, BF16 (F32 arithmetic) or */
/* F64 (CPU reference). Inside a sequence the hidden state is rounded to that dtype after */
/* each step (it is y), the LSTM cell state is kept in F32 (F64 for F64). Tensors may    */
/* have any strides (fast variants decline layouts they cannot take; explain says why). */
/* ------------------------------------------------------------------------------------ */

typedef enum dlk_rnn_mode { DLK_RNN_TANH = 0, DLK_RNN_RELU, DLK_RNN_LSTM, DLK_RNN_GRU } dlk_rnn_mode;
/* One layer and direction, PyTorch's names; G = 1, 4, 3 gates. */
typedef struct dlk_rnn_weights {
  const dlk_tensor *w_ih, *w_hh;  /* [G*H, I], [G*H, P or H] */
  const dlk_tensor *b_ih, *b_hh;  /* [G*H] or NULL */
  const dlk_tensor *w_hr;         /* LSTM projection [P, H] or NULL */
} dlk_rnn_weights;
typedef struct dlk_rnn_grads {    /* same shapes; NULL members are not wanted; accumulated (+=) */
  dlk_tensor *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
} dlk_rnn_grads;
/* A gradient member for a weight that is absent (a NULL bias or w_hr) must be NULL. */

/* One step of a cell: the call a decoder loop makes each step, one fused launch on a GPU. */
typedef struct dlk_rnn_cell_params { dlk_rnn_mode mode; int gru_reset_before; } dlk_rnn_cell_params;
/* NULL cell params: {DLK_RNN_TANH, 0}, torch.nn.RNNCell's default. */
/* x [B, I], h [B, P or H], c [B, H] (LSTM only, else NULL); saved [B, S] in x's dtype or NULL,
   S = dlk_rnn_cell_saved_cols(mode, H): what the backward needs. */
DLK_API int64_t dlk_rnn_cell_saved_cols(dlk_rnn_mode mode, int64_t hidden_size); /* pure */
/* h NULL (and, for an LSTM, c NULL) means zeros, as PyTorch's cells without hx. h_out
   [B, P or H] is required; c_out [B, H] is required for an LSTM and NULL otherwise. The
   projection (w->w_hr) is LSTM only; P = w_hr's rows. saved: RNN h'; LSTM i, f, g, o,
   tanh(c'); GRU r, z, n and the recurrent part of n (each H columns, in that order). A
   negative mode or hidden_size gives 0 from dlk_rnn_cell_saved_cols. */
DLK_API dlk_status dlk_rnn_cell_forward(dlk_context *ctx, const dlk_rnn_cell_params *p, const dlk_rnn_weights *w,
                                        const dlk_tensor *x, const dlk_tensor *h, const dlk_tensor *c,
                                        dlk_tensor *h_out, dlk_tensor *c_out, dlk_tensor *saved);
/* saved required (from the forward); dx, dh, dc optional; weight gradients accumulated. */
/* x, h, c are the forward's inputs (h, c NULL: zeros). dh_out, dc_out NULL mean zero
   (dc_out and dc only for an LSTM). dw NULL: no weight gradients. */
DLK_API dlk_status dlk_rnn_cell_backward(dlk_context *ctx, const dlk_rnn_cell_params *p, const dlk_rnn_weights *w,
                                         const dlk_tensor *x, const dlk_tensor *h, const dlk_tensor *c,
                                         const dlk_tensor *saved, const dlk_tensor *dh_out, const dlk_tensor *dc_out,
                                         dlk_tensor *dx, dlk_tensor *dh, dlk_tensor *dc, const dlk_rnn_grads *dw);

/* A whole sequence: layers, directions, variable lengths. The params are required (the
   sizes have no default). */
typedef struct dlk_rnn_params {
  dlk_rnn_mode mode;
  int64_t hidden_size, proj_size;  /* proj_size 0: none (LSTM only) */
  int num_layers, bidirectional, batch_first, gru_reset_before;
  double dropout; uint64_t seed;   /* between layers, training only, dlk_dropout's counter RNG */
  int training;                    /* 1: keep what the backward needs in `reserve` */
} dlk_rnn_params;
/* weights: num_layers * D entries (D = 1 + bidirectional), layer-major, forward direction
   first; with proj_size P > 0 the hidden state is P wide (PyTorch's sizes), else H.
   x [T, B, I]; y [T, B, D*P or D*H] (batch_first: x, y, dy, dx are [B, T, ...]; the states
   never are); h0 [L*D, B, P or H], c0 [L*D, B, H], NULL = zeros; hn, cn optional, same shapes.
   lengths I32/I64 [B] or NULL, any order, each in [1, T]: packed-sequence semantics — y is 0
   past a sequence's end, its final state is at its own last step, the reverse direction
   starts there; in the backward, dy past the end is ignored and dx there is 0.
   reserve: a 1-D U8 tensor of dlk_rnn_reserve_size bytes, required when training. */
/* More precisely:
   - num_layers in [1, 64]; hidden_size >= 1; 0 < proj_size < hidden_size when set;
     dropout in [0, 1); layer l > 0 takes the previous layer's y as its input [.., D*P or D*H].
   - Dropout (training with dropout > 0): element (t, b, j) of layer l's input (l >= 1) is
     kept when dlk_dropout_uniform(seed, ((l - 1) * T + t) * B * W + b * W + j) >= dropout,
     W = D*P or D*H, and scaled by 1 / (1 - dropout); time-major indices also with batch_first.
   - lengths may live on the host (as PyTorch's pack_padded_sequence wants) or on the
     context's device (copied to the host first: one synchronisation).
   - reserve: contiguous, on the context's device, at least dlk_rnn_reserve_size bytes; it
     records the parameters and shapes that wrote it, and the backward refuses a reserve
     from a different configuration (it reads the reserve's 24-byte header first: on a GPU
     one small device-to-host copy). With training = 0 it is ignored (may be NULL).
   - cn is F32-or-better inside; c0 and cn have x's dtype.
   - a batch of no sequence (B = 0) writes nothing, the reserve included (whatever T is);
     its backward reads no reserve and adds nothing to the weight gradients. */
DLK_API dlk_status dlk_rnn_reserve_size(dlk_context *ctx, const dlk_rnn_params *p, const dlk_tensor *x, size_t *bytes);
DLK_API dlk_status dlk_rnn_forward(dlk_context *ctx, const dlk_rnn_params *p, const dlk_rnn_weights *weights,
                                   const dlk_tensor *x, const dlk_tensor *lengths, const dlk_tensor *h0,
                                   const dlk_tensor *c0, dlk_tensor *y, dlk_tensor *hn, dlk_tensor *cn,
                                   dlk_tensor *reserve);
/* Same params as the forward (training = 1). dy, dhn, dcn optional (NULL = zero); dx, dh0, dc0
   optional; weight gradients accumulated (+=) into dweights[], NULL members skipped. */
/* x, lengths, h0, c0, y and reserve are the forward's (the same lengths: the reserve does
   not record them). dweights NULL: no weight gradients, else num_layers * D entries. */
DLK_API dlk_status dlk_rnn_backward(dlk_context *ctx, const dlk_rnn_params *p, const dlk_rnn_weights *weights,
                                    const dlk_tensor *x, const dlk_tensor *lengths, const dlk_tensor *h0,
                                    const dlk_tensor *c0, const dlk_tensor *y, const dlk_tensor *reserve,
                                    const dlk_tensor *dy, const dlk_tensor *dhn, const dlk_tensor *dcn,
                                    dlk_tensor *dx, dlk_tensor *dh0, dlk_tensor *dc0, const dlk_rnn_grads *dweights);
/* Keras LSTM/GRU weights into PyTorch's layout, copied: kernel [I, G*H], recurrent_kernel
   [H, G*H], gate blocks i, f, c, o (LSTM) / z, r, h (GRU) reordered to i, f, g, o / r, z, n.
   bias: LSTM [4H] -> b_ih = bias, b_hh = 0; GRU reset_after=True [2, 3H] -> b_ih = row 0,
   b_hh = row 1; GRU reset_after=False [3H] -> b_ih = bias, b_hh = 0 (run it with
   gru_reset_before = 1); NULL -> both zero. */
/* Also SimpleRNN (DLK_RNN_TANH / RELU: one gate, bias [H]). All tensors one dtype, on the
   context's device; w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H]. b_ih may be NULL only
   when bias is NULL, b_hh only when the Keras bias has no recurrent row. */
DLK_API dlk_status dlk_rnn_weights_from_keras(dlk_context *ctx, dlk_rnn_mode mode, const dlk_tensor *kernel,
                                              const dlk_tensor *recurrent_kernel, const dlk_tensor *bias,
                                              dlk_tensor *w_ih, dlk_tensor *w_hh, dlk_tensor *b_ih, dlk_tensor *b_hh);

#ifdef __cplusplus
}
#endif
#endif /* DLK_H */
