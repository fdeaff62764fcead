/*
 * cuDNN backend-graph helper: C functions over the backend API (cudnnBackendCreateDescriptor,
 * SetAttribute, Finalize, GetAttribute, Execute) that let a vendor row describe its
 * operation graph in a few lines, and find the finalized execution plan again on every
 * later call. Used by the softmax rows (host/nn/nn_cudnn.c) and the SDPA rows
 * (host/attention/attention_cudnn.c), and meant for conv2d.
 * The legacy cudnnConvolutionForward / cudnnSoftmaxForward family is deprecated in cuDNN 9
 * and is not used.
 *
 * Who calls what. A vendor row writes one build function per graph,
 *     static void graph(dlk_cg *g, const void *args)
 * that declares tensors (dlk_cg_tensor_of, dlk_cg_virtual, dlk_cg_scalar, ...) and
 * operation nodes (dlk_cg_conv_fwd, dlk_cg_pointwise, dlk_cg_reduction, dlk_cg_matmul,
 * dlk_cg_sdpa_fwd, ...), and a key naming everything the graph depends on (dlk_cg_key_*:
 * dims, strides, dtypes, pointer alignment, parameters). Its supports() calls
 * dlk_cg_supports, its workspace() reads dlk_cg_plan_workspace, and its run() calls
 * dlk_cg_plan_get and dlk_cg_execute with the device pointers bound by tensor uid.
 *
 * Building (first call per key only). dlk_cg_plan_find runs the build function on a fresh
 * builder, finalizes the operation graph on the context's cuDNN handle, asks the
 * heuristics for engine configurations (mode A, then FALLBACK), filters them (below) and
 * finalizes an execution plan from the first one that cuDNN accepts. Errors are sticky
 * in the builder: the first failing call records a status and a message naming the graph,
 * the step and cuDNN's status and detail ("cudnn: sdpa_fwd: no engine:
 * CUDNN_STATUS_NOT_SUPPORTED_SHAPE: <detail> (plan for engine 3) [...]"), every later call is a
 * no-op, and the builder destroys everything it created. Build functions therefore need no error
 * checks.
 *
 * Engine filtering. Always out: engines with the REDUCED_PRECISION_REDUCTION note (dlk
 * accumulates in f32). Deterministic context: engines with the NONDETERMINISTIC note are
 * out, and reductions ask for deterministic kernels (cuDNN >= 9.11). A graph whose
 * convolution or matmul reads f32 on a context without TF32: engines with the
 * TENSOR_CORE or DOWN_CONVERT_INPUTS notes are out. Runtime-compiled engines (NVRTC; the
 * first plan of a key then takes from milliseconds to a second) are tried after every
 * precompiled one, and not at all after dlk_cg_no_runtime_compile; pointwise/reduction-only
 * graphs usually have no other kind. When nothing is left, the refusal says how many
 * engines each rule excluded and cuDNN's last reason.
 *
 * Caching and lifetime. A plan lives in the context's plan cache (dlk_plan_cache_*,
 * host/core/internal.h) under "cudnn/graph/<name>|<key>|det=D|tf32=T", with every
 * descriptor it references; the cache destroys it (at eviction or context destroy; the
 * cuDNN handle's entry, "cudnn", is older than any plan made with it, so it goes after
 * them). A refusal (cuDNN said not supported, or bad parameter, for this case) is cached
 * too, so supports() asks cuDNN once per key and explain repeats cuDNN's reason; hard
 * failures (no GPU, out of memory, internal errors) are not cached.
 *
 * The bound. One plan per shape and pass would grow without end in a program that sees
 * ever new shapes (sequence lengths), so at most DLK_CG_PLAN_CAP entries live under
 * "cudnn/graph/": before a new one is stored, the least recently used one goes
 * (dlk_plan_cache_trim, which only ever removes entries under that prefix, never the
 * handle, and keeps the others' order). Hence: a plan pointer is valid until the next
 * dlk_cg_plan_find / _get on the context (a build may evict it): find a plan, execute
 * it, then find the next one; never keep one across calls. The variant pack is made per
 * execute (it holds this call's pointers) and destroyed right after; execution is on the
 * handle's stream, the context's stream.
 *
 * supports() and workspace() build plans, so they call cuDNN (and create the handle) the
 * first time a key is seen, through a context they receive as const: see
 * dlk_cg_memo_context.
 */
#ifndef DLK_CUDNN_GRAPH_H
#define DLK_CUDNN_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cudnn.h>

#include "../core/internal.h"

#define DLK_CG_MAX_DIMS 8              /* CUDNN_DIM_MAX */
#define DLK_CG_WHY_LEN 512             /* longest message a builder keeps */
#define DLK_CG_KEY_LEN 768             /* longest shape key (the cache key adds name and options) */
#define DLK_CG_VIRTUAL_UID (1LL << 40) /* uids from here on are the builder's own */
#define DLK_CG_CACHE_PREFIX "cudnn/graph/" /* the plan cache keys of graph plans */
#define DLK_CG_PLAN_CAP 256                /* graph plans (and refusals) kept per context */

/* The context a row's supports() or workspace() may build plans on. Those receive it as
   const (core/internal.h's row signature), and finding a plan may build and cache one.
   The plan cache is a memo: a build changes nothing a caller can observe (the same
   answers, the context's last error untouched, no plan pointer held across calls), so
   the const is cast away here, in one place, and not in every cuDNN row. */
static inline dlk_context *dlk_cg_memo_context(const dlk_context *ctx) {
  return (dlk_context *)ctx;
}

/* A graph under construction (opaque). */
typedef struct dlk_cg dlk_cg;
/* A tensor of a graph under construction (opaque; owned by the builder). */
typedef struct dlk_cg_tensor dlk_cg_tensor;
/* A finalized execution plan and everything it references (opaque; owned by the cache). */
typedef struct dlk_cg_plan dlk_cg_plan;

typedef void (*dlk_cg_build_fn)(dlk_cg *g, const void *arg);

/* ---- keys ---------------------------------------------------------------------------- */

/* A shape key under construction; too long a key makes dlk_cg_plan_find fail (never a
   truncated key that could name two cases). */
typedef struct dlk_cg_key {
  char s[DLK_CG_KEY_LEN];
  bool overflow;
} dlk_cg_key;

void dlk_cg_key_init(dlk_cg_key *k);
/* Append printf-style text. */
void dlk_cg_key_add(dlk_cg_key *k, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append "tag:dtype:dims:strides:aN" (N the alignment of t->data, as dlk_cg_tensor_of
   declares it): everything a plan assumes about a tensor. */
void dlk_cg_key_tensor(dlk_cg_key *k, const char *tag, const dlk_tensor *t);

/* The largest of 16, 8, 4, 2, 1 bytes that divides the address. */
int dlk_cg_alignment(const void *ptr);
/* dlk dtype -> cuDNN data type; false for none. */
bool dlk_cg_dtype(dlk_dtype t, cudnnDataType_t *out);
/* Activation -> pointwise modes (forward, and backward taking x and dy); false for NONE. */
bool dlk_cg_activation(dlk_activation act, cudnnPointwiseMode_t *fwd, cudnnPointwiseMode_t *bwd);

/* ---- the builder --------------------------------------------------------------------- */

/* A new, empty builder; name starts every message ("conv2d_fwd", "softmax_fwd/max").
   NULL only when out of memory. dlk_cg_plan_find makes its own; tests and callers that
   want to check a graph without a GPU make one here, build, and read dlk_cg_status. */
dlk_cg *dlk_cg_new(dlk_context *ctx, const char *name);
/* Destroy a builder and every descriptor it still owns. */
void dlk_cg_free(dlk_cg *g);
/* DLK_OK, or the first failure with its message in why. DLK_ERR_NOT_SUPPORTED: cuDNN
   refused this case; DLK_ERR_INVALID_ARGUMENT: the build function misused the helper. */
dlk_status dlk_cg_status(const dlk_cg *g, char *why, size_t n);
/* Math precision of the nodes declared from here on (CUDNN_DATA_FLOAT by default; DOUBLE
   for f64 graphs, BOOLEAN around logical pointwise nodes). */
void dlk_cg_set_compute(dlk_cg *g, cudnnDataType_t t);
/* Exclude runtime-compiled (NVRTC) engines for this graph. */
void dlk_cg_no_runtime_compile(dlk_cg *g);
/* Number of operation nodes so far (tests). */
int dlk_cg_node_count(const dlk_cg *g);

/* ---- tensors ------------------------------------------------------------------------- */
/* Dims are logical (PyTorch order: N, C, H, W ...) and strides in elements give the
   layout; 1 to 8 dims. uid names a tensor in dlk_cg_execute's bindings: small positive
   numbers chosen by the row (an enum), unique within the graph. */

/* A tensor in device memory; align is the byte alignment the plan may assume of its
   pointer (dlk_cg_alignment; part of the key). */
dlk_cg_tensor *dlk_cg_tensor_new(dlk_cg *g, int64_t uid, dlk_dtype dt, int ndim,
                                 const int64_t *dims, const int64_t *strides, int align);
/* The same from a dlk tensor (its shape, strides, dtype and data pointer's alignment). */
dlk_cg_tensor *dlk_cg_tensor_of(dlk_cg *g, int64_t uid, const dlk_tensor *t);
/* An intermediate that stays inside the fused graph: packed strides, the current compute
   type (FLOAT) or dt. */
dlk_cg_tensor *dlk_cg_virtual(dlk_cg *g, int ndim, const int64_t *dims);
dlk_cg_tensor *dlk_cg_virtual_as(dlk_cg *g, cudnnDataType_t dt, int ndim, const int64_t *dims);
/* A virtual tensor of t's dims. */
dlk_cg_tensor *dlk_cg_virtual_like(dlk_cg *g, const dlk_cg_tensor *t);
/* An intermediate with the strides given: a transposed view that a reshape node produces
   (the composed SDPA backward's P^T and dS^T). */
dlk_cg_tensor *dlk_cg_virtual_strided(dlk_cg *g, cudnnDataType_t dt, int ndim, const int64_t *dims,
                                      const int64_t *strides);
/* A scalar passed by value, its value bound per call by uid to a host pointer (SDPA's
   scale): ndim dims of 1. dt F32, F64, I32 or I64. */
dlk_cg_tensor *dlk_cg_scalar(dlk_cg *g, int64_t uid, dlk_dtype dt, int ndim);
/* A by-value constant fixed with the graph and kept in the plan (-inf for a mask). */
dlk_cg_tensor *dlk_cg_constant(dlk_cg *g, dlk_dtype dt, int ndim, double value);
/* The tensor's descriptor (finalized), for tests. */
cudnnBackendDescriptor_t dlk_cg_tensor_desc(const dlk_cg_tensor *t);

/* ---- operation nodes ------------------------------------------------------------------ */

/* y = mode(x) or mode(x, b): ADD, SUB, MUL, DIV, MAX, MIN, EXP, LOG, NEG, RELU_FWD,
   TANH_FWD, SIGMOID_FWD, GELU_FWD, IDENTITY, CMP_*, LOGICAL_*, ...; b (NULL for unary
   modes) broadcasts along its dims of 1. */
void dlk_cg_pointwise(dlk_cg *g, cudnnPointwiseMode_t mode, dlk_cg_tensor *x, dlk_cg_tensor *b,
                      dlk_cg_tensor *y);
/* dx = mode'(x) * dy for the backward modes (RELU_BWD, TANH_BWD, SIGMOID_BWD, GELU_BWD). */
void dlk_cg_pointwise_bwd(dlk_cg *g, cudnnPointwiseMode_t mode, dlk_cg_tensor *x, dlk_cg_tensor *dy,
                          dlk_cg_tensor *dx);
/* y = cond ? a : b (BINARY_SELECT). */
void dlk_cg_select(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *cond,
                   dlk_cg_tensor *y);
/* y = the index of each element of x along axis (GEN_INDEX; masks). */
void dlk_cg_gen_index(dlk_cg *g, dlk_cg_tensor *x, int64_t axis, dlk_cg_tensor *y);
/* y = op over the dims where y has 1 and x does not (ADD, MAX, MIN, MUL, AMAX, ...). A dim
   of y may also divide x's (grouped: y[.., h, ..] = op over x[.., h*G .. h*G+G-1, ..], the
   composed SDPA backward's sum of the query heads of a GQA group). */
void dlk_cg_reduction(dlk_cg *g, cudnnReduceTensorOp_t op, dlk_cg_tensor *x, dlk_cg_tensor *y);
/* y = x viewed with y's dims and strides (RESHAPE; e.g. a transpose of the last two dims). */
void dlk_cg_reshape(dlk_cg *g, dlk_cg_tensor *x, dlk_cg_tensor *y);
/* c[..., M, N] = a[..., M, K] @ b[..., K, N] (batch dims broadcast); the overrides (NULL
   for none) are per-batch M, N, K tensors for ragged batches. An f32 operand read from
   memory (not a virtual intermediate) makes the graph "f32 math" for the TF32 rule of
   the engine filter (graph.h's top); a fused graph's f32 intermediates do not. */
void dlk_cg_matmul(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *c);
void dlk_cg_matmul_ex(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *c,
                      dlk_cg_tensor *m_override, dlk_cg_tensor *n_override,
                      dlk_cg_tensor *k_override);

/* Convolution (cross-correlation, as PyTorch): x [N, C, H, W], w [K, C/groups, R, S],
   y [N, K, P, Q]; groups follow from the shapes. */
typedef struct dlk_cg_conv {
  int spatial; /* 2 for conv2d (up to 3) */
  int64_t stride[3], pre_pad[3], post_pad[3], dilation[3];
} dlk_cg_conv;
/* conv2d parameters as dlk takes them ({h, w}; 0 in stride/dilation means 1). */
dlk_cg_conv dlk_cg_conv2d(const int64_t stride[2], const int64_t padding[2],
                          const int64_t dilation[2]);
void dlk_cg_conv_fwd(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *x, dlk_cg_tensor *w,
                     dlk_cg_tensor *y);
void dlk_cg_conv_bwd_data(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *w, dlk_cg_tensor *dy,
                          dlk_cg_tensor *dx);
void dlk_cg_conv_bwd_filter(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *x, dlk_cg_tensor *dy,
                            dlk_cg_tensor *dw);

/* Fused scaled-dot-product attention as one node (cuDNN >= 9.13 forward, >= 9.17
   backward; see dlk_cg_sdpa_available). q [B, Hq, Tq, D], k [B, Hk, Tk, D],
   v [B, Hk, Tk, Dv], o [B, Hq, Tq, Dv], stats [B, Hq, Tq, 1] F32 (log-sum-exp; NULL in
   inference), scale a [1,1,1,1] F32 scalar, seq_len_q / seq_len_kv [B, 1, 1, 1] I32 or
   NULL (cuDNN >= 9.15). Masks other than lengths and bias need the composed graph
   (matmul, pointwise, reduction nodes) in this cuDNN. */
typedef struct dlk_cg_sdpa_fwd_io {
  dlk_cg_tensor *q, *k, *v, *o, *stats, *scale, *seq_len_q, *seq_len_kv;
} dlk_cg_sdpa_fwd_io;
typedef struct dlk_cg_sdpa_bwd_io {
  dlk_cg_tensor *q, *k, *v, *o, *d_o, *stats, *scale, *seq_len_q, *seq_len_kv;
  dlk_cg_tensor *dq, *dk, *dv;
} dlk_cg_sdpa_bwd_io;
void dlk_cg_sdpa_fwd(dlk_cg *g, const dlk_cg_sdpa_fwd_io *io);
void dlk_cg_sdpa_bwd(dlk_cg *g, const dlk_cg_sdpa_bwd_io *io);
/* Whether this build and the loaded cuDNN have the single SDPA node; the reason (built
   version, loaded version) in why when not. */
bool dlk_cg_sdpa_available(bool backward, char *why, size_t n);

/* ---- plans and execution ------------------------------------------------------------- */

/* The plan for (name, key, the context's deterministic/TF32 options): from the plan
   cache, or built with build(g, arg), finalized and cached. A cached or new refusal is
   DLK_ERR_NOT_SUPPORTED with cuDNN's reason in why; the context's last error is left alone
   (supports() calls it), except when the cuDNN handle itself cannot be made. */
dlk_status dlk_cg_plan_find(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                            dlk_cg_build_fn build, const void *arg, const dlk_cg_plan **out,
                            char *why, size_t n);
/* The same for run(): a failure is also the context's last error. */
dlk_status dlk_cg_plan_get(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                           dlk_cg_build_fn build, const void *arg, const dlk_cg_plan **out);
/* For supports(): true when the plan builds, else false with the reason. A row passes
   dlk_cg_memo_context(ctx). */
bool dlk_cg_supports(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                     dlk_cg_build_fn build, const void *arg, char *why, size_t n);
/* Workspace bytes the plan needs on execute. */
size_t dlk_cg_plan_workspace(const dlk_cg_plan *p);
/* "engine 7 (tensor cores, runtime-compiled)": which engine the plan runs. */
const char *dlk_cg_plan_engine(const dlk_cg_plan *p);

/* A device pointer (or, for a by-value scalar, a host pointer to its value) for a uid. */
typedef struct dlk_cg_bind {
  int64_t uid;
  const void *ptr;
} dlk_cg_bind;
/* Run the plan on the context's stream: every non-virtual tensor of the graph bound once
   (constants are bound by the plan itself), ws at least dlk_cg_plan_workspace bytes.
   Bindings of uids the graph does not have are ignored, so a row with several graphs can
   pass one list to all of them. */
dlk_status dlk_cg_execute(dlk_context *ctx, const dlk_cg_plan *p, const dlk_cg_bind *binds,
                          int n_binds, void *ws, size_t ws_bytes);

#endif /* DLK_CUDNN_GRAPH_H */
