/*
 * Internal declarations of host/core, shared by every family and vendor file: the context
 * layout, error helpers, tensor helpers, the variant row and op records and dispatch, the
 * plan cache. The argument checks are in check.h. Never installed; includes nothing
 * above core (no family, no vendor header).
 */
#ifndef DLK_INTERNAL_H
#define DLK_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dlk.h"

#define DLK_ERRMSG_LEN 1024
#define DLK_EXPLAIN_LEN 8192
#define DLK_KEY_LEN 256
#define DLK_MAX_FORCED 64

/* ---- autotune cache: open-addressing hash map from key string to variant id ---- */
typedef struct dlk_tune_entry {
  uint64_t hash;  /* 0 = empty slot */
  int variant;
  char key[DLK_KEY_LEN];
} dlk_tune_entry;

typedef struct dlk_tune_cache {
  dlk_tune_entry *slots;
  size_t cap;   /* power of two */
  size_t count;
} dlk_tune_cache;

typedef struct dlk_forced {
  char op[48];
  int id;
} dlk_forced;

struct dlk_context {
  dlk_device device;
  dlk_context_options opts; /* force_variant not kept: parsed into forced[] */
  char device_name[256];
  int cc_major, cc_minor;

  void *stream;        /* cudaStream_t */
  void *events[2];     /* cudaEvent_t pair for autotune timing, created lazily */
  /* The plan cache (dlk_plan_cache_get/put below): vendor handles, cuBLASLt plans, cuDNN
     descriptors and graphs, in insertion order. */
  struct dlk_plan_entry *plans;
  size_t n_plans, cap_plans;
  uint64_t plan_clock; /* counts gets and puts: each entry's recency for dlk_plan_cache_trim */

  /* Workspace arena: one device (or host, for a CPU context) block, grown on demand,
     handed to the variant that runs. */
  void *ws;
  size_t ws_size;
  /* Scratch arena for ops composed of other ops (linear backward holds dz here while
     the gemm variants use ws): a second block with the same growth rules. */
  void *scratch;
  size_t scratch_size;
  /* Small host scratch for flags read back from kernels (pinned on CUDA). */
  void *host_scratch;

  dlk_forced forced[DLK_MAX_FORCED];
  int n_forced;

  dlk_tune_cache tune;
  char tune_path[1024]; /* DLK_AUTOTUNE_CACHE, saved at destroy */

  int explain;
  char explain_text[DLK_EXPLAIN_LEN];

  const char *last_op;
  int last_variant;

  char err[DLK_ERRMSG_LEN];
};

/* ---- errors ---- */

/* Record a formatted message on ctx (may be NULL) and return s. */
dlk_status dlk_fail(dlk_context *ctx, dlk_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
dlk_status dlk_vfail(dlk_context *ctx, dlk_status s, const char *fmt, va_list ap);
/* Set the per-thread message of a failed dlk_context_create. */
void dlk_set_create_error(const char *msg);
/* Bounded append: snprintf at buf+strlen(buf). */
void dlk_appendf(char *buf, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define DLK_TRY(expr)                  \
  do {                                 \
    dlk_status dlk_s_ = (expr);        \
    if (dlk_s_ != DLK_OK) return dlk_s_; \
  } while (0)

/* A CUDA runtime return code -> status with file:line (context.c; compiled only with
   CUDA). `code` is the cudaError_t as int. The vendor libraries' own checks are in
   host/cublas/handle.h and host/cudnn/handle.h. */
dlk_status dlk_check_cuda(dlk_context *ctx, int code, const char *file, int line,
                          const char *expr);
#define DLK_CUDA_TRY(ctx, call) DLK_TRY(dlk_check_cuda((ctx), (int)(call), __FILE__, __LINE__, #call))

/* ---- tensor helpers (tensor.c); the argument checks built on them are in check.h ---- */

/* dlk_tensor_validate's rules with `op` in the message: DLK_OK or the first problem. */
dlk_status dlk_validate_tensor(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t);
/* dst must not overlap any byte range of src (both described tensors). */
bool dlk_tensors_overlap(const dlk_tensor *a, const dlk_tensor *b);
/* View an N-d tensor (N >= 1) as 2-D [rows, cols] where cols is the last dim and the
   leading dims collapse (needs them to be mergeable strides); false if not mergeable. */
bool dlk_as_matrix(const dlk_tensor *t, dlk_tensor *m);
/* Byte span [lo, hi) the tensor touches, relative to data. */
void dlk_tensor_span(const dlk_tensor *t, int64_t *lo, int64_t *hi);
/* Row-major contiguous strides for the shape. */
void dlk_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Element offset (in elements) of row-major linear index i. */
int64_t dlk_offset_of(const dlk_tensor *t, int64_t i);
/* A tensor [..., C] as rows: the number of rows (the product of the leading dims) and the
   element offset of row r (r row-major over the leading dims), for any strides. A 2-D
   view is the fast case; the CPU references read every N-d row view through these. */
int64_t dlk_rows_of(const dlk_tensor *t);
static inline int64_t dlk_row_offset(const dlk_tensor *t, int64_t r) {
  if (t->ndim == 2) return r * t->strides[0];
  int64_t off = 0;
  for (int k = t->ndim - 2; k >= 0; k--) {
    off += (r % t->shape[k]) * t->strides[k];
    r /= t->shape[k];
  }
  return off;
}

/* ---- dispatch (dispatch.c) ---- */

/* Variant ids: stable numbers in ranges that say what a variant is. The default ranking
   (when neither the autotuner nor the op's heuristic decides) prefers vendor, then the
   highest CUDA id, then optimised CPU, then the reference. */
enum {
  DLK_VARIANT_CPU_REF = 0,        /* the CPU reference: the spec every variant is tested against */
  DLK_VARIANT_CUDA_FIRST = 1,     /* hand-written CUDA kernels, simplest first ... */
  DLK_VARIANT_CUDA_LAST = 9,
  DLK_VARIANT_VENDOR_FIRST = 10,  /* vendor libraries (cuBLAS, cuBLASLt, cuDNN) */
  DLK_VARIANT_VENDOR_LAST = 19,
  DLK_VARIANT_CPU_OPT_FIRST = 20, /* optimised CPU code (threads, SIMD): e.g. Hogwild GloVe */
  DLK_VARIANT_CPU_OPT_LAST = 29
};

/* One implementation of an op: a row of the op's table, written out literally in the
   family file (host/<family>/<family>.c). `args` is the op's own argument record; `impl`
   is handed to every callback, so one supports/workspace/run triple serves a whole ladder
   of kernels (impl 1, 2, 3 of one launcher). */
typedef struct dlk_variant {
  int id;               /* DLK_VARIANT_* ranges above */
  const char *name;
  dlk_device_type device;
  int impl;
  const char *description;
  /* Can it run this call? If not, write the reason ("head dim 96 not a multiple of 32")
     to why and return false. NULL: supports everything on its device. Called only after
     the device type matched. Must honour ctx->opts.deterministic / allow_tf32. */
  bool (*supports)(const dlk_context *ctx, const void *args, int impl, char *why, size_t n);
  /* Workspace bytes it needs (NULL: none). */
  size_t (*workspace)(const dlk_context *ctx, const void *args, int impl);
  dlk_status (*run)(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes);
} dlk_variant;

/* Declarations of row functions in a family's internal header, one line each:
   DLK_RUN_FN(dlk_softmax_fwd_cuda_run); (definitions are written out in full). */
#define DLK_SUPPORTS_FN(name) \
  bool name(const dlk_context *ctx, const void *args, int impl, char *why, size_t n)
#define DLK_WORKSPACE_FN(name) size_t name(const dlk_context *ctx, const void *args, int impl)
#define DLK_RUN_FN(name) \
  dlk_status name(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes)

#define DLK_COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct dlk_op {
  const char *name;            /* "softmax_fwd": DLK_FORCE_VARIANT and autotune keys use it */
  const dlk_variant *variants; /* the table, CPU reference first */
  int count;
  /* Shape key for the autotune cache: everything that changes which variant is fastest
     (shapes, strides class, dtypes, flags). */
  void (*key)(const void *args, char *buf, size_t n);
  /* Preferred variant id when not autotuning, or -1: then the highest-ranked supported
     variant (vendor, then the highest CUDA id, then CPU). NULL = -1. */
  int (*heuristic)(const dlk_context *ctx, const void *args);
  /* false when a run changes its inputs (in-place optimizer steps): the autotuner must
     not run it more than once, so the heuristic decides. */
  bool tunable;
  /* Every output of the call, side outputs included (a loss, the lse, mean/rstd, an
     optimizer's state, a host count): writes up to `max` descriptors to out[] and returns
     how many outputs the call has. Only their shapes and dtypes must be exact (the
     dispatcher counts their elements). When every one has zero elements, dlk_dispatch
     returns DLK_OK at once for every variant, so no row loops over the huge other dims an
     empty tensor may have (x [2^40, 0]) or sizes a workspace from them. Required: test_core
     fails for an op without it. List with dlk_list_output below. */
  int (*outputs)(const void *args, dlk_tensor *out, int max);
} dlk_op;

/* The most outputs one call lists (dlk_op.outputs). */
#define DLK_MAX_OUTPUTS 16

/* For an op's outputs(): out[n] = *t when n < max; returns n + 1. A typical one:
     static int softmax_fwd_outputs(const void *args, dlk_tensor *out, int max) {
       const dlk_softmax_fwd_args *a = args;
       return dlk_list_output(out, max, 0, &a->y);
     }
   and optional outputs chain: n = dlk_list_output(out, max, n, &a->lse) under has_lse. */
static inline int dlk_list_output(dlk_tensor *out, int max, int n, const dlk_tensor *t) {
  if (n < max) out[n] = *t;
  return n + 1;
}
/* A contiguous stand-in descriptor for an output a record holds as a bare pointer (host
   counts, [rows, cols] arrays): ndim 0..2 with the given dims. */
dlk_tensor dlk_output_desc(void *data, dlk_dtype dtype, dlk_device_type device, int ndim,
                           int64_t d0, int64_t d1);
/* 1 when op lists outputs and every one of this call's has zero elements. */
bool dlk_outputs_empty(const dlk_op *op, const void *args);

/* Pick and run a variant (forced > cached > autotune > heuristic). In explain mode,
   writes the report and runs nothing. */
dlk_status dlk_dispatch(dlk_context *ctx, const dlk_op *op, const void *args);
/* Would dlk_dispatch find a variant for this call (forced, or any supported one)? DLK_OK,
   or the DLK_ERR_NOT_SUPPORTED and message dispatch would give; runs nothing. Composite
   ops check every step first, so a step that cannot run leaves all outputs unwritten. */
dlk_status dlk_dispatch_check(dlk_context *ctx, const dlk_op *op, const void *args);
/* The id of the row named `name` in a variant table, or -1 (heuristics look rows up by
   name so a build without that row falls back to the default ranking). Out of line on
   purpose: inlined into a heuristic, GCC -O3 with the sanitizers warns falsely
   (-Wstring-compare) on the constant-folded strcmp. */
int dlk_variant_by_name(const dlk_variant *v, int n, const char *name);
/* The op families of this build: a NULL-terminated list of NULL-terminated op lists
   (host/registry.c, above core and the families). dispatch.c walks it for dlk_op_count,
   dlk_op_variants and forcing by name. */
extern const dlk_op *const *const dlk_families[];
const dlk_op *dlk_find_op(const char *name);

/* "op:id,op:id" -> forced variants; `origin` names the source in messages. */
dlk_status dlk_parse_forced(dlk_context *ctx, const char *spec, const char *origin);
void dlk_tune_free(dlk_tune_cache *c);

/* Grow the workspace arena to at least `bytes` (respecting the cap). */
dlk_status dlk_workspace_reserve(dlk_context *ctx, size_t bytes, void **ptr);
/* The same for the scratch arena of composite ops (never passed to a variant). */
dlk_status dlk_scratch_reserve(dlk_context *ctx, size_t bytes, void **ptr);

/* ---- misc ---- */
/* Read the rest of f into malloc'd memory with a NUL after it: 0, or ENOMEM, EFBIG (more
   than max_bytes; 0: no limit) or EIO, with nothing allocated. Needs no context, so the
   tools' own readers use it too. (util.c) */
int dlk_read_all(FILE *f, size_t max_bytes, char **out, size_t *len);
/* The same for a file (or stdin for "-"); `op` names the caller in messages. More than
   max_bytes is DLK_ERR_CORRUPT_FILE. (util.c) */
dlk_status dlk_read_file(dlk_context *ctx, const char *op, const char *path, size_t max_bytes,
                         char **out, size_t *len);
bool dlk_is_float_dtype(dlk_dtype t);
bool dlk_mul_overflows(int64_t a, int64_t b, int64_t *out);
int dlk_env_flag(const char *name); /* getenv as 0/1 */

/* ---- the plan cache (context.c) ----
   Per-context state that vendor rows and families build once and reuse: handles,
   descriptors, execution plans. A key string (prefixed by its owner: "cublas",
   "cublaslt/plans", "cudnn/graph/...") maps to a pointer and the function that destroys
   it. Entries live until the context is destroyed (or their owner trims them, below), then
   go in reverse order of insertion (a plan made with a handle is destroyed before the
   handle). Lookup is a scan of the entries' hashes, meant for tens to a few hundred entries
   per context, not thousands: an owner with one entry per shape bounds its share with
   dlk_plan_cache_trim. */
/* *out = the pointer stored under key, or NULL (and DLK_OK) when there is none. */
dlk_status dlk_plan_cache_get(dlk_context *ctx, const char *key, void **out);
/* Store ptr under key (a copy of the key is kept); a key already present is replaced,
   its old pointer destroyed. destroy may be NULL (nothing to free). On failure (out of
   memory) destroy(ptr) has been called: the caller never leaks ptr. */
dlk_status dlk_plan_cache_put(dlk_context *ctx, const char *key, void *ptr,
                              void (*destroy)(void *ptr));
/* A bound for owners whose entries grow with the shapes a program uses (one cuDNN graph
   plan per shape: host/cudnn/graph.c keeps at most 256 under "cudnn/graph/"): destroy the
   least recently used entries (by get or put) whose key starts with prefix until at most
   keep of them remain, after the context's stream has finished the work queued with them.
   Every other entry stays, in its order, so context destroy still destroys a plan before
   the handle it was made with. Hence prefix must name entries nothing else uses (plans,
   never a handle: "cublas", "cublaslt" and "cudnn" start no "<owner>/" prefix). A pointer
   found under prefix is valid only until the next trim of that prefix. */
void dlk_plan_cache_trim(dlk_context *ctx, const char *prefix, size_t keep);
/* Entries whose key starts with prefix ("" for all). */
size_t dlk_plan_cache_count(const dlk_context *ctx, const char *prefix);

#if DLK_HAVE_CUDA
/* context.c: cudaSetDevice for the context's device (each public entry that touches the
   GPU calls it, so contexts on different GPUs can be used from one thread). */
dlk_status dlk_cuda_enter(dlk_context *ctx);
#endif

#endif /* DLK_INTERNAL_H */
