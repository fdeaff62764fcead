/*
 * cuDNN backend-graph helper (graph.h says who calls what, the lifetimes, the caching and
 * the engine filtering). Every cuDNN call is checked: while building, a failure is
 * recorded in the builder with the step, cuDNN's status and cuDNN's detail
 * (cudnnGetLastErrorString); at execute time it becomes the context's last error.
 *
 * Attribute types and element counts follow the backend API reference and cudnn_graph.h
 * of cuDNN 9.19: tensors take DATA_TYPE (1), DIMENSIONS and STRIDES (INT64, ndim),
 * UNIQUE_ID and BYTE_ALIGNMENT (INT64, 1), IS_VIRTUAL and IS_BY_VALUE (BOOLEAN, 1, C's
 * bool); operation nodes take their tensors and descriptors as BACKEND_DESCRIPTOR (1);
 * convolution ALPHA/BETA are DOUBLE for a DOUBLE compute type, else FLOAT.
 */
#include "graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"

#define MAX_BOUND 64       /* non-virtual tensors of one graph, constants included */
#define MAX_CONFIGS 64     /* engine configurations read from one heuristics query */
#define MAX_PLAN_TRIES 48  /* plan finalizations tried before giving up */
#define CACHE_KEY_LEN 1024 /* prefix, name, shape key (DLK_CG_KEY_LEN) and options */

typedef union cg_value {
  float f;
  double d;
  int32_t i32;
  int64_t i64;
} cg_value;

struct dlk_cg_tensor {
  cudnnBackendDescriptor_t desc;
  int64_t uid;
  int ndim;
  int64_t dims[DLK_CG_MAX_DIMS], strides[DLK_CG_MAX_DIMS];
  cudnnDataType_t dt;
  bool is_virtual, by_value, constant;
  cg_value value; /* constants */
};

/* A growable array of descriptors. */
typedef struct desc_list {
  cudnnBackendDescriptor_t *d;
  int n, cap;
} desc_list;

struct dlk_cg {
  dlk_context *ctx;
  char name[64];
  cudnnDataType_t compute;
  bool deterministic, allow_tf32, runtime_compile;
  bool f32_math; /* a convolution or matmul reads f32: tensor cores would mean TF32 */
  dlk_status status;
  char why[DLK_CG_WHY_LEN];
  desc_list owned; /* every descriptor created, in creation order */
  desc_list ops;   /* the operation nodes, for the graph */
  dlk_cg_tensor **tensors;
  int n_tensors, cap_tensors;
  int64_t next_uid; /* for virtual tensors and constants */
};

/* One non-virtual tensor of a plan: bound by the caller, or a constant the plan holds. */
typedef struct cg_io {
  int64_t uid;
  bool constant;
  cg_value value;
} cg_io;

struct dlk_cg_plan {
  char name[64];
  bool refused; /* a cached refusal: only why is meaningful */
  char why[DLK_CG_WHY_LEN];
  cudnnHandle_t handle;
  cudnnBackendDescriptor_t plan;
  desc_list owned; /* the plan and everything it references, destroyed in reverse */
  int64_t workspace;
  cg_io io[MAX_BOUND];
  int n_io;
  char engine[128];
};

/* ---- messages and status ------------------------------------------------------------- */

/* Record the first failure; later ones are consequences and are dropped. */
static void cg_fail(dlk_cg *g, dlk_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void cg_fail(dlk_cg *g, dlk_status s, const char *fmt, ...) {
  if (g->status != DLK_OK) return;
  g->status = s;
  int k = snprintf(g->why, sizeof g->why, "cudnn: %s: ", g->name);
  if (k < 0 || (size_t)k >= sizeof g->why) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->why + k, sizeof g->why - (size_t)k, fmt, ap);
  va_end(ap);
}

/* A refusal of this case (cached) or a hard failure (not cached)? */
static dlk_status classify(cudnnStatus_t st) {
  const int cat = CUDNN_STATUS_CATEGORY((int)st);
  if (cat == CUDNN_STATUS_BAD_PARAM || cat == CUDNN_STATUS_NOT_SUPPORTED)
    return DLK_ERR_NOT_SUPPORTED;
  if (st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
      st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    return DLK_ERR_OUT_OF_MEMORY;
  return DLK_ERR_CUDNN;
}

/* "STATUS_NAME: detail" for a failed call, detail from cudnnGetLastErrorString. */
static void status_text(cudnnStatus_t st, char *buf, size_t n) {
  char detail[256] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  snprintf(buf, n, "%s%s%s", cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
}

/* Check a call made while building: false (and the failure recorded) unless it worked. */
static bool cg_check(dlk_cg *g, cudnnStatus_t st, const char *step, const char *what) {
  if (st == CUDNN_STATUS_SUCCESS) return true;
  char text[300];
  status_text(st, text, sizeof text);
  cg_fail(g, classify(st), "%s%s%s: %s", step, what[0] ? " " : "", what, text);
  return false;
}

static bool failed(const dlk_cg *g) {
  return g->status != DLK_OK;
}

/* ---- descriptor plumbing ------------------------------------------------------------- */

static bool list_push(desc_list *l, cudnnBackendDescriptor_t d) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 32;
    cudnnBackendDescriptor_t *nd = realloc(l->d, (size_t)cap * sizeof *nd);
    if (!nd) return false;
    l->d = nd;
    l->cap = cap;
  }
  l->d[l->n++] = d;
  return true;
}

/* Destroy in reverse creation order: users before what they reference. */
static void list_destroy(desc_list *l) {
  for (int i = l->n - 1; i >= 0; i--)
    if (l->d[i]) cudnnBackendDestroyDescriptor(l->d[i]);
  free(l->d);
  l->d = NULL;
  l->n = l->cap = 0;
}

/* A new descriptor owned by the builder, or NULL after a failure. */
static cudnnBackendDescriptor_t cg_create(dlk_cg *g, cudnnBackendDescriptorType_t type,
                                          const char *what) {
  if (failed(g)) return NULL;
  if (!list_push(&g->owned, NULL)) { /* the slot first: a made descriptor is never lost */
    cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    return NULL;
  }
  cudnnBackendDescriptor_t d = NULL;
  const bool ok = cg_check(g, cudnnBackendCreateDescriptor(type, &d), "create", what);
  g->owned.d[g->owned.n - 1] = ok ? d : NULL;
  return ok ? d : NULL;
}

/* Set one attribute; the message names it ("tensor uid 3: set TENSOR_STRIDES: ..."). */
static bool cg_set_(dlk_cg *g, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t attr,
                    cudnnBackendAttributeType_t type, int64_t count, const void *values,
                    const char *what, const char *attr_name) {
  if (failed(g) || !d) return false;
  char step[96];
  snprintf(step, sizeof step, "%s: set", what);
  return cg_check(g, cudnnBackendSetAttribute(d, attr, type, count, values), step, attr_name);
}
/* The attribute's name, without its CUDNN_ATTR_ prefix, goes into the message. */
static const char *attr_text(const char *spelled) {
  return strncmp(spelled, "CUDNN_ATTR_", 11) == 0 ? spelled + 11 : spelled;
}
#define CG_SET(g, d, attr, type, count, values, what) \
  cg_set_((g), (d), (attr), (type), (count), (values), (what), attr_text(#attr))

static bool cg_finalize(dlk_cg *g, cudnnBackendDescriptor_t d, const char *what) {
  if (failed(g) || !d) return false;
  char step[96];
  snprintf(step, sizeof step, "%s:", what);
  return cg_check(g, cudnnBackendFinalize(d), step, "finalize");
}

static void add_op(dlk_cg *g, cudnnBackendDescriptor_t op, const char *what) {
  if (!cg_finalize(g, op, what)) return;
  if (!list_push(&g->ops, op)) cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
}

/* ---- keys and small maps ------------------------------------------------------------- */

void dlk_cg_key_init(dlk_cg_key *k) {
  k->s[0] = '\0';
  k->overflow = false;
}

void dlk_cg_key_add(dlk_cg_key *k, const char *fmt, ...) {
  size_t used = strlen(k->s);
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(k->s + used, sizeof k->s - used, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= sizeof k->s - used) k->overflow = true;
}

void dlk_cg_key_tensor(dlk_cg_key *k, const char *tag, const dlk_tensor *t) {
  dlk_cg_key_add(k, "%s:%s:", tag, dlk_dtype_name(t->dtype));
  for (int i = 0; i < t->ndim; i++)
    dlk_cg_key_add(k, "%s%lld", i ? "x" : "", (long long)t->shape[i]);
  dlk_cg_key_add(k, ":");
  for (int i = 0; i < t->ndim; i++)
    dlk_cg_key_add(k, "%s%lld", i ? "," : "", (long long)t->strides[i]);
  dlk_cg_key_add(k, ":a%d;", dlk_cg_alignment(t->data));
}

int dlk_cg_alignment(const void *ptr) {
  const uintptr_t a = (uintptr_t)ptr;
  for (int al = 16; al > 1; al >>= 1)
    if (a % (uintptr_t)al == 0) return al;
  return 1;
}

bool dlk_cg_dtype(dlk_dtype t, cudnnDataType_t *out) {
  switch (t) {
    case DLK_F32: *out = CUDNN_DATA_FLOAT; return true;
    case DLK_F16: *out = CUDNN_DATA_HALF; return true;
    case DLK_BF16: *out = CUDNN_DATA_BFLOAT16; return true;
    case DLK_F64: *out = CUDNN_DATA_DOUBLE; return true;
    case DLK_I32: *out = CUDNN_DATA_INT32; return true;
    case DLK_I64: *out = CUDNN_DATA_INT64; return true;
    case DLK_U8: *out = CUDNN_DATA_UINT8; return true;
    default: return false;
  }
}

bool dlk_cg_activation(dlk_activation act, cudnnPointwiseMode_t *fwd, cudnnPointwiseMode_t *bwd) {
  cudnnPointwiseMode_t f, b;
  switch (act) {
    case DLK_ACT_RELU: f = CUDNN_POINTWISE_RELU_FWD, b = CUDNN_POINTWISE_RELU_BWD; break;
    case DLK_ACT_TANH: f = CUDNN_POINTWISE_TANH_FWD, b = CUDNN_POINTWISE_TANH_BWD; break;
    case DLK_ACT_SIGMOID: f = CUDNN_POINTWISE_SIGMOID_FWD, b = CUDNN_POINTWISE_SIGMOID_BWD; break;
    /* cuDNN's GELU_FWD is the erf form, dlk's; GELU_APPROX_TANH_FWD is the other one. */
    case DLK_ACT_GELU: f = CUDNN_POINTWISE_GELU_FWD, b = CUDNN_POINTWISE_GELU_BWD; break;
    default: return false;
  }
  if (fwd) *fwd = f;
  if (bwd) *bwd = b;
  return true;
}

static const char *mode_name(cudnnPointwiseMode_t m) {
  switch (m) {
    case CUDNN_POINTWISE_ADD: return "ADD";
    case CUDNN_POINTWISE_SUB: return "SUB";
    case CUDNN_POINTWISE_MUL: return "MUL";
    case CUDNN_POINTWISE_DIV: return "DIV";
    case CUDNN_POINTWISE_MAX: return "MAX";
    case CUDNN_POINTWISE_MIN: return "MIN";
    case CUDNN_POINTWISE_EXP: return "EXP";
    case CUDNN_POINTWISE_LOG: return "LOG";
    case CUDNN_POINTWISE_NEG: return "NEG";
    case CUDNN_POINTWISE_IDENTITY: return "IDENTITY";
    case CUDNN_POINTWISE_RELU_FWD: return "RELU_FWD";
    case CUDNN_POINTWISE_TANH_FWD: return "TANH_FWD";
    case CUDNN_POINTWISE_SIGMOID_FWD: return "SIGMOID_FWD";
    case CUDNN_POINTWISE_GELU_FWD: return "GELU_FWD";
    case CUDNN_POINTWISE_RELU_BWD: return "RELU_BWD";
    case CUDNN_POINTWISE_TANH_BWD: return "TANH_BWD";
    case CUDNN_POINTWISE_SIGMOID_BWD: return "SIGMOID_BWD";
    case CUDNN_POINTWISE_GELU_BWD: return "GELU_BWD";
    case CUDNN_POINTWISE_BINARY_SELECT: return "BINARY_SELECT";
    case CUDNN_POINTWISE_GEN_INDEX: return "GEN_INDEX";
    case CUDNN_POINTWISE_CMP_GE: return "CMP_GE";
    case CUDNN_POINTWISE_CMP_LT: return "CMP_LT";
    case CUDNN_POINTWISE_LOGICAL_AND: return "LOGICAL_AND";
    default: return "pointwise";
  }
}

/* ---- the builder --------------------------------------------------------------------- */

dlk_cg *dlk_cg_new(dlk_context *ctx, const char *name) {
  dlk_cg *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->ctx = ctx;
  snprintf(g->name, sizeof g->name, "%s", name ? name : "graph");
  g->compute = CUDNN_DATA_FLOAT;
  g->deterministic = ctx && ctx->opts.deterministic;
  g->allow_tf32 = ctx && ctx->opts.allow_tf32;
  g->runtime_compile = true;
  g->next_uid = DLK_CG_VIRTUAL_UID;
  return g;
}

void dlk_cg_free(dlk_cg *g) {
  if (!g) return;
  list_destroy(&g->owned);
  free(g->ops.d);
  for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i]);
  free(g->tensors);
  free(g);
}

dlk_status dlk_cg_status(const dlk_cg *g, char *why, size_t n) {
  if (why && n) snprintf(why, n, "%s", g->status == DLK_OK ? "" : g->why);
  return g->status;
}

void dlk_cg_set_compute(dlk_cg *g, cudnnDataType_t t) {
  g->compute = t;
}
void dlk_cg_no_runtime_compile(dlk_cg *g) {
  g->runtime_compile = false;
}
int dlk_cg_node_count(const dlk_cg *g) {
  return g->ops.n;
}

/* ---- tensors ------------------------------------------------------------------------- */

static const dlk_cg_tensor *find_uid(const dlk_cg *g, int64_t uid) {
  for (int i = 0; i < g->n_tensors; i++)
    if (g->tensors[i]->uid == uid) return g->tensors[i];
  return NULL;
}

static void packed_strides(int ndim, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

/* Validate, record and describe one tensor; NULL after a failure. */
static dlk_cg_tensor *make_tensor(dlk_cg *g, int64_t uid, cudnnDataType_t dt, int ndim,
                                  const int64_t *dims, const int64_t *strides, int align,
                                  bool is_virtual, bool by_value) {
  if (failed(g)) return NULL;
  char what[48];
  snprintf(what, sizeof what, "tensor uid %lld", (long long)uid);
  if (uid <= 0) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: uids are positive", what);
    return NULL;
  }
  if (find_uid(g, uid)) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: uid used twice in one graph", what);
    return NULL;
  }
  if (ndim < 1 || ndim > DLK_CG_MAX_DIMS || !dims || !strides) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: %d dims; cuDNN tensors have 1 to %d", what, ndim,
            DLK_CG_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 1) {
      cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: dim %d is %lld; cuDNN tensors are not empty", what,
              i, (long long)dims[i]);
      return NULL;
    }
    if (strides[i] < 0) {
      cg_fail(g, DLK_ERR_NOT_SUPPORTED, "%s: dim %d has stride %lld; cuDNN takes none < 0", what, i,
              (long long)strides[i]);
      return NULL;
    }
  }
  if (align < 1 || align > 256 || (align & (align - 1))) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: alignment %d is not a power of two", what, align);
    return NULL;
  }
  if (g->n_tensors == g->cap_tensors) {
    int cap = g->cap_tensors ? 2 * g->cap_tensors : 16;
    dlk_cg_tensor **nt = realloc(g->tensors, (size_t)cap * sizeof *nt);
    if (!nt) {
      cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
      return NULL;
    }
    g->tensors = nt;
    g->cap_tensors = cap;
  }
  dlk_cg_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    return NULL;
  }
  g->tensors[g->n_tensors++] = t;
  t->uid = uid;
  t->ndim = ndim;
  t->dt = dt;
  t->is_virtual = is_virtual;
  t->by_value = by_value;
  memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
  memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);

  const int64_t align64 = align, uid64 = uid;
  const bool virt = is_virtual, byval = by_value;
  cudnnBackendDescriptor_t d = cg_create(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, ndim, t->dims, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, ndim, t->strides, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid64, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align64, what);
  CG_SET(g, d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt, what);
  if (by_value) CG_SET(g, d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &byval, what);
  if (!cg_finalize(g, d, what)) return NULL;
  t->desc = d;
  return t;
}

dlk_cg_tensor *dlk_cg_tensor_new(dlk_cg *g, int64_t uid, dlk_dtype dt, int ndim,
                                 const int64_t *dims, const int64_t *strides, int align) {
  if (failed(g)) return NULL;
  cudnnDataType_t cdt;
  if (!dlk_cg_dtype(dt, &cdt)) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "tensor uid %lld: dtype %d has no cuDNN type",
            (long long)uid, (int)dt);
    return NULL;
  }
  if (uid >= DLK_CG_VIRTUAL_UID) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "tensor uid %lld: uids from %lld on are the helper's",
            (long long)uid, (long long)DLK_CG_VIRTUAL_UID);
    return NULL;
  }
  return make_tensor(g, uid, cdt, ndim, dims, strides, align, false, false);
}

dlk_cg_tensor *dlk_cg_tensor_of(dlk_cg *g, int64_t uid, const dlk_tensor *t) {
  if (failed(g)) return NULL;
  if (!t) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "tensor uid %lld: NULL dlk_tensor", (long long)uid);
    return NULL;
  }
  static const int64_t one = 1;
  if (t->ndim == 0) /* a scalar is a 1-element vector here */
    return dlk_cg_tensor_new(g, uid, t->dtype, 1, &one, &one, dlk_cg_alignment(t->data));
  if (t->ndim > DLK_CG_MAX_DIMS) return dlk_cg_tensor_new(g, uid, t->dtype, t->ndim, NULL, NULL, 1);
  /* A dim of size 1 may carry stride 0 in dlk (a broadcast view); its stride means nothing,
     and cuDNN is given the span of the dims after it instead, as a packed tensor has. */
  int64_t strides[DLK_CG_MAX_DIMS];
  for (int i = t->ndim - 1; i >= 0; i--) {
    strides[i] = t->strides[i];
    if (t->shape[i] != 1 || t->strides[i] != 0) continue;
    strides[i] = 1;
    for (int j = i + 1; j < t->ndim; j++)
      if (strides[j] * t->shape[j] > strides[i]) strides[i] = strides[j] * t->shape[j];
  }
  return dlk_cg_tensor_new(g, uid, t->dtype, t->ndim, t->shape, strides, dlk_cg_alignment(t->data));
}

dlk_cg_tensor *dlk_cg_virtual_as(dlk_cg *g, cudnnDataType_t dt, int ndim, const int64_t *dims) {
  if (failed(g)) return NULL;
  int64_t strides[DLK_CG_MAX_DIMS];
  if (ndim >= 1 && ndim <= DLK_CG_MAX_DIMS && dims) packed_strides(ndim, dims, strides);
  return make_tensor(g, g->next_uid++, dt, ndim, dims, strides, 16, true, false);
}

dlk_cg_tensor *dlk_cg_virtual(dlk_cg *g, int ndim, const int64_t *dims) {
  return dlk_cg_virtual_as(
      g, g->compute == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT, ndim, dims);
}

dlk_cg_tensor *dlk_cg_virtual_strided(dlk_cg *g, cudnnDataType_t dt, int ndim, const int64_t *dims,
                                      const int64_t *strides) {
  if (failed(g)) return NULL;
  return make_tensor(g, g->next_uid++, dt, ndim, dims, strides, 16, true, false);
}

dlk_cg_tensor *dlk_cg_virtual_like(dlk_cg *g, const dlk_cg_tensor *t) {
  if (failed(g)) return NULL;
  if (!t) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "virtual_like: NULL tensor");
    return NULL;
  }
  return dlk_cg_virtual(g, t->ndim, t->dims);
}

static bool scalar_dtype(dlk_cg *g, dlk_dtype dt, cudnnDataType_t *cdt, const char *what) {
  if (dt == DLK_F32 || dt == DLK_F64 || dt == DLK_I32 || dt == DLK_I64)
    return dlk_cg_dtype(dt, cdt);
  cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: by-value scalars are f32, f64, i32 or i64", what);
  return false;
}

dlk_cg_tensor *dlk_cg_scalar(dlk_cg *g, int64_t uid, dlk_dtype dt, int ndim) {
  if (failed(g)) return NULL;
  cudnnDataType_t cdt;
  if (!scalar_dtype(g, dt, &cdt, "scalar")) return NULL;
  if (uid >= DLK_CG_VIRTUAL_UID) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "scalar uid %lld: uids from %lld on are the helper's",
            (long long)uid, (long long)DLK_CG_VIRTUAL_UID);
    return NULL;
  }
  const int64_t ones[DLK_CG_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1};
  return make_tensor(g, uid, cdt, ndim, ones, ones, 16, false, true);
}

dlk_cg_tensor *dlk_cg_constant(dlk_cg *g, dlk_dtype dt, int ndim, double value) {
  if (failed(g)) return NULL;
  cudnnDataType_t cdt;
  if (!scalar_dtype(g, dt, &cdt, "constant")) return NULL;
  const int64_t ones[DLK_CG_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1};
  dlk_cg_tensor *t = make_tensor(g, g->next_uid++, cdt, ndim, ones, ones, 16, false, true);
  if (!t) return NULL;
  t->constant = true;
  switch (dt) {
    case DLK_F32: t->value.f = (float)value; break;
    case DLK_F64: t->value.d = value; break;
    case DLK_I32: t->value.i32 = (int32_t)value; break;
    default: t->value.i64 = (int64_t)value; break;
  }
  return t;
}

cudnnBackendDescriptor_t dlk_cg_tensor_desc(const dlk_cg_tensor *t) {
  return t ? t->desc : NULL;
}

/* ---- operation nodes ----------------------------------------------------------------- */

/* Every operand present: names holds one word per tensor ("x dy dx"); the first missing
   one is the failure. */
static bool need(dlk_cg *g, const char *what, const char *names, int n, dlk_cg_tensor *const *ts) {
  if (failed(g)) return false;
  for (int i = 0; i < n; i++) {
    const size_t len = strcspn(names, " ");
    if (!ts[i]) {
      cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: %.*s is NULL", what, (int)len, names);
      return false;
    }
    names += len + (names[len] == ' ');
  }
  return true;
}
/* clang-format off */
#define TENSORS(...) (dlk_cg_tensor *const[]){__VA_ARGS__}
/* clang-format on */

static cudnnBackendDescriptor_t pointwise_desc(dlk_cg *g, cudnnPointwiseMode_t mode,
                                               const int64_t *axis, const char *what) {
  cudnnBackendDescriptor_t pw = cg_create(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, what);
  CG_SET(g, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, what);
  CG_SET(g, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &g->compute, what);
  if (axis) CG_SET(g, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, axis, what);
  cg_finalize(g, pw, what);
  return pw;
}

/* One pointwise node: the descriptor and the operation over x [, b [, t]] -> y, or the
   backward form (x, dy -> dx) when dx is given. */
static void pointwise_node(dlk_cg *g, cudnnPointwiseMode_t mode, const int64_t *axis,
                           dlk_cg_tensor *x, dlk_cg_tensor *b, dlk_cg_tensor *t, dlk_cg_tensor *y,
                           dlk_cg_tensor *dy, dlk_cg_tensor *dx) {
  char what[48];
  snprintf(what, sizeof what, "pointwise %s", mode_name(mode));
  cudnnBackendDescriptor_t pw = pointwise_desc(g, mode, axis, what);
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x->desc,
         what);
  if (b)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b->desc,
           what);
  if (t)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t->desc,
           what);
  if (y)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y->desc,
           what);
  if (dy)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_DYDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &dy->desc, what);
  if (dx)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_DXDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &dx->desc, what);
  add_op(g, op, what);
}

/* Modes with two operands (x and b). */
static bool binary_mode(cudnnPointwiseMode_t m) {
  return (m >= CUDNN_POINTWISE_ADD && m <= CUDNN_POINTWISE_SUB) || m == CUDNN_POINTWISE_ATAN2 ||
         (m >= CUDNN_POINTWISE_CMP_EQ && m <= CUDNN_POINTWISE_CMP_LE) ||
         m == CUDNN_POINTWISE_LOGICAL_AND || m == CUDNN_POINTWISE_LOGICAL_OR;
}

void dlk_cg_pointwise(dlk_cg *g, cudnnPointwiseMode_t mode, dlk_cg_tensor *x, dlk_cg_tensor *b,
                      dlk_cg_tensor *y) {
  if (!need(g, mode_name(mode), "x y", 2, TENSORS(x, y))) return;
  if (binary_mode(mode) != (b != NULL)) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "pointwise %s: %s", mode_name(mode),
            b ? "a unary mode given a second operand" : "a binary mode without its b operand");
    return;
  }
  pointwise_node(g, mode, NULL, x, b, NULL, y, NULL, NULL);
}

void dlk_cg_pointwise_bwd(dlk_cg *g, cudnnPointwiseMode_t mode, dlk_cg_tensor *x, dlk_cg_tensor *dy,
                          dlk_cg_tensor *dx) {
  if (!need(g, mode_name(mode), "x dy dx", 3, TENSORS(x, dy, dx))) return;
  pointwise_node(g, mode, NULL, x, NULL, NULL, NULL, dy, dx);
}

void dlk_cg_select(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *cond,
                   dlk_cg_tensor *y) {
  if (!need(g, "select", "a b cond y", 4, TENSORS(a, b, cond, y))) return;
  pointwise_node(g, CUDNN_POINTWISE_BINARY_SELECT, NULL, a, b, cond, y, NULL, NULL);
}

void dlk_cg_gen_index(dlk_cg *g, dlk_cg_tensor *x, int64_t axis, dlk_cg_tensor *y) {
  if (!need(g, "gen_index", "x y", 2, TENSORS(x, y))) return;
  if (axis < 0 || axis >= x->ndim) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "gen_index: axis %lld of a %d-d tensor", (long long)axis,
            x->ndim);
    return;
  }
  pointwise_node(g, CUDNN_POINTWISE_GEN_INDEX, &axis, x, NULL, NULL, y, NULL, NULL);
}

void dlk_cg_reduction(dlk_cg *g, cudnnReduceTensorOp_t op_kind, dlk_cg_tensor *x,
                      dlk_cg_tensor *y) {
  if (!need(g, "reduction", "x y", 2, TENSORS(x, y))) return;
  static const char what[] = "reduction";
  bool shapes_ok = x->ndim == y->ndim;
  for (int i = 0; shapes_ok && i < x->ndim; i++) /* x's, 1, or a divisor (grouped) */
    shapes_ok = y->dims[i] >= 1 && x->dims[i] % y->dims[i] == 0;
  if (!shapes_ok) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT,
            "reduction: y's dims must be x's or 1 (or divide x's: grouped)");
    return;
  }
  cudnnBackendDescriptor_t red = cg_create(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, what);
  CG_SET(g, red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op_kind,
         what);
  CG_SET(g, red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &g->compute, what);
#if CUDNN_VERSION >= 91100
  /* Asked for only in deterministic mode (the default lets cuDNN split rows with atomics);
     a cuDNN older than 9.11 loaded at run time does not know the attribute. */
  if (g->deterministic && cudnnGetVersion() >= 91100) {
    const bool yes = true;
    CG_SET(g, red, CUDNN_ATTR_REDUCTION_IS_DETERMINISTIC, CUDNN_TYPE_BOOLEAN, 1, &yes, what);
  }
#endif
  cg_finalize(g, red, what);
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &red, what);
  add_op(g, op, what);
}

void dlk_cg_reshape(dlk_cg *g, dlk_cg_tensor *x, dlk_cg_tensor *y) {
  if (!need(g, "reshape", "x y", 2, TENSORS(x, y))) return;
  static const char what[] = "reshape";
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y->desc,
         what);
  add_op(g, op, what);
}

void dlk_cg_matmul_ex(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *c,
                      dlk_cg_tensor *m_override, dlk_cg_tensor *n_override,
                      dlk_cg_tensor *k_override) {
  if (!need(g, "matmul", "a b c", 3, TENSORS(a, b, c))) return;
  static const char what[] = "matmul";
  /* f32 data from memory would run on TF32 tensor cores; a fused graph's f32 intermediate
     (the composed SDPA's dS) is the engine's own business. */
  if ((a->dt == CUDNN_DATA_FLOAT && !a->is_virtual) ||
      (b->dt == CUDNN_DATA_FLOAT && !b->is_virtual))
    g->f32_math = true;
  cudnnBackendDescriptor_t mm = cg_create(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR, what);
  CG_SET(g, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &g->compute, what);
  cg_finalize(g, mm, what);
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, what);
  if (m_override)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR,
           1, &m_override->desc, what);
  if (n_override)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR,
           1, &n_override->desc, what);
  if (k_override)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR,
           1, &k_override->desc, what);
  add_op(g, op, what);
}

void dlk_cg_matmul(dlk_cg *g, dlk_cg_tensor *a, dlk_cg_tensor *b, dlk_cg_tensor *c) {
  dlk_cg_matmul_ex(g, a, b, c, NULL, NULL, NULL);
}

dlk_cg_conv dlk_cg_conv2d(const int64_t stride[2], const int64_t padding[2],
                          const int64_t dilation[2]) {
  dlk_cg_conv c;
  memset(&c, 0, sizeof c);
  c.spatial = 2;
  for (int i = 0; i < 2; i++) {
    c.stride[i] = stride && stride[i] ? stride[i] : 1;
    c.dilation[i] = dilation && dilation[i] ? dilation[i] : 1;
    c.pre_pad[i] = c.post_pad[i] = padding ? padding[i] : 0;
  }
  return c;
}

/* The convolution descriptor shared by the three directions. */
static cudnnBackendDescriptor_t conv_desc(dlk_cg *g, const dlk_cg_conv *c, const char *what) {
  if (failed(g)) return NULL;
  if (!c || c->spatial < 1 || c->spatial > 3) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: %d spatial dims (1 to 3)", what, c ? c->spatial : 0);
    return NULL;
  }
  const int64_t nsp = c->spatial;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnBackendDescriptor_t cd = cg_create(g, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &g->compute, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nsp, c->dilation, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nsp, c->stride, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nsp, c->pre_pad, what);
  CG_SET(g, cd, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nsp, c->post_pad, what);
  cg_finalize(g, cd, what);
  return cd;
}

/* The attribute names of one convolution direction: its three tensors in the order the
   public functions take them, then the descriptor, alpha and beta. */
typedef struct conv_attrs {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t t[3], desc, alpha, beta;
  const char *names; /* "x w y" */
} conv_attrs;

static void conv_node(dlk_cg *g, const conv_attrs *at, const char *what, const dlk_cg_conv *c,
                      dlk_cg_tensor *t0, dlk_cg_tensor *t1, dlk_cg_tensor *t2) {
  if (!need(g, what, at->names, 3, TENSORS(t0, t1, t2))) return;
  dlk_cg_tensor *ts[3] = {t0, t1, t2};
  for (int i = 0; i < 3; i++)
    if (c && ts[i]->ndim != c->spatial + 2) {
      cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%s: operand %d (of \"%s\") has %d dims, expected %d",
              what, i + 1, at->names, ts[i]->ndim, c->spatial + 2);
      return;
    }
  for (int i = 0; i < 3; i++)
    if (ts[i]->dt == CUDNN_DATA_FLOAT) g->f32_math = true;
  cudnnBackendDescriptor_t cd = conv_desc(g, c, what);
  cudnnBackendDescriptor_t op = cg_create(g, at->type, what);
  const cudnnBackendAttributeType_t desc = CUDNN_TYPE_BACKEND_DESCRIPTOR;
  cg_set_(g, op, at->desc, desc, 1, &cd, what, "CONV_DESC");
  const char *name = at->names; /* "x w y": the words name the three operands */
  for (int i = 0; i < 3; i++) {
    char word[8];
    const size_t len = strcspn(name, " ");
    snprintf(word, sizeof word, "%.*s", (int)len, name);
    name += len + (name[len] == ' ');
    cg_set_(g, op, at->t[i], desc, 1, &ts[i]->desc, what, word);
  }
  /* y = alpha * conv + beta * y with alpha 1, beta 0, in the compute type's precision. */
  const double alpha_d = 1.0, beta_d = 0.0;
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const bool dbl = g->compute == CUDNN_DATA_DOUBLE;
  const cudnnBackendAttributeType_t scal = dbl ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT;
  cg_set_(g, op, at->alpha, scal, 1, dbl ? (const void *)&alpha_d : (const void *)&alpha_f, what,
          "ALPHA");
  cg_set_(g, op, at->beta, scal, 1, dbl ? (const void *)&beta_d : (const void *)&beta_f, what,
          "BETA");
  add_op(g, op, what);
}

void dlk_cg_conv_fwd(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *x, dlk_cg_tensor *w,
                     dlk_cg_tensor *y) {
  static const conv_attrs at = {
      CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
      {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y},
      CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
      CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
      CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
      "x w y"};
  conv_node(g, &at, "conv fwd", c, x, w, y);
}

void dlk_cg_conv_bwd_data(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *w, dlk_cg_tensor *dy,
                          dlk_cg_tensor *dx) {
  static const conv_attrs at = {
      CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
      {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX},
      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
      "w dy dx"};
  conv_node(g, &at, "conv bwd data", c, w, dy, dx);
}

void dlk_cg_conv_bwd_filter(dlk_cg *g, const dlk_cg_conv *c, dlk_cg_tensor *x, dlk_cg_tensor *dy,
                            dlk_cg_tensor *dw) {
  static const conv_attrs at = {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                                {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW},
                                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
                                "x dy dw"};
  conv_node(g, &at, "conv bwd filter", c, x, dy, dw);
}

/* ---- SDPA nodes ---------------------------------------------------------------------- */

/* The single SDPA operation nodes: forward from cuDNN 9.13, backward from 9.17, sequence
   lengths on the forward from 9.15 (backend API reference, "since" of each attribute). */
#define SDPA_FWD_VERSION 91300
#define SDPA_FWD_SEQLEN_VERSION 91500
#define SDPA_BWD_VERSION 91700

static void version_text(long v, char *buf, size_t n) {
  snprintf(buf, n, "%d.%d.%d", (int)(v / 10000 % 1000), (int)(v / 100 % 100), (int)(v % 100));
}

bool dlk_cg_sdpa_available(bool backward, char *why, size_t n) {
  const long need = backward ? SDPA_BWD_VERSION : SDPA_FWD_VERSION;
  char want[32], have[32];
  version_text(need, want, sizeof want);
  if ((long)CUDNN_VERSION < need) {
    version_text((long)CUDNN_VERSION, have, sizeof have);
    if (why && n)
      snprintf(why, n, "the single SDPA_%s node needs cuDNN >= %s; built with %s",
               backward ? "BWD" : "FWD", want, have);
    return false;
  }
  if ((long)cudnnGetVersion() < need) {
    version_text((long)cudnnGetVersion(), have, sizeof have);
    if (why && n)
      snprintf(why, n, "the single SDPA_%s node needs cuDNN >= %s; this process loaded %s",
               backward ? "BWD" : "FWD", want, have);
    return false;
  }
  if (why && n) why[0] = '\0';
  return true;
}

void dlk_cg_sdpa_fwd(dlk_cg *g, const dlk_cg_sdpa_fwd_io *io) {
  static const char what[] = "sdpa_fwd";
  if (failed(g)) return;
  char why[160];
  if (!dlk_cg_sdpa_available(false, why, sizeof why)) {
    cg_fail(g, DLK_ERR_NOT_SUPPORTED, "%s: %s", what, why);
    return;
  }
  if (!need(g, what, "q k v o", 4, TENSORS(io->q, io->k, io->v, io->o))) return;
#if CUDNN_VERSION >= SDPA_FWD_VERSION
  if ((io->seq_len_q || io->seq_len_kv) && cudnnGetVersion() < SDPA_FWD_SEQLEN_VERSION) {
    cg_fail(g, DLK_ERR_NOT_SUPPORTED, "%s: sequence lengths on this node need cuDNN >= 9.15", what);
    return;
  }
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR, what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &io->q->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &io->k->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &io->v->desc,
         what);
  CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &io->o->desc,
         what);
  if (io->stats)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &io->stats->desc, what);
  if (io->scale)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &io->scale->desc, what);
#if CUDNN_VERSION >= SDPA_FWD_SEQLEN_VERSION
  if (io->seq_len_q)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_QDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &io->seq_len_q->desc, what);
  if (io->seq_len_kv)
    CG_SET(g, op, CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_KVDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
           &io->seq_len_kv->desc, what);
#else
  if (io->seq_len_q || io->seq_len_kv) {
    cg_fail(g, DLK_ERR_NOT_SUPPORTED, "%s: sequence lengths on this node need cuDNN >= 9.15", what);
    return;
  }
#endif
  add_op(g, op, what);
#endif
}

void dlk_cg_sdpa_bwd(dlk_cg *g, const dlk_cg_sdpa_bwd_io *io) {
  static const char what[] = "sdpa_bwd";
  if (failed(g)) return;
  char why[160];
  if (!dlk_cg_sdpa_available(true, why, sizeof why)) {
    cg_fail(g, DLK_ERR_NOT_SUPPORTED, "%s: %s", what, why);
    return;
  }
  if (!need(g, what, "q k v o d_o stats dq dk dv", 9,
            TENSORS(io->q, io->k, io->v, io->o, io->d_o, io->stats, io->dq, io->dk, io->dv)))
    return;
#if CUDNN_VERSION >= SDPA_BWD_VERSION
  cudnnBackendDescriptor_t op = cg_create(g, CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR, what);
#define LINK(attr, t) \
  if (t) CG_SET(g, op, attr, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &(t)->desc, what)
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_QDESC, io->q);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_KDESC, io->k);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_VDESC, io->v);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_ODESC, io->o);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_DODDESC, io->d_o);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_STATSDESC, io->stats);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_SCALEDESC, io->scale);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_SEQ_LEN_QDESC, io->seq_len_q);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_SEQ_LEN_KVDESC, io->seq_len_kv);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_DQDESC, io->dq);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_DKDESC, io->dk);
  LINK(CUDNN_ATTR_OPERATION_SDPA_BWD_DVDESC, io->dv);
#undef LINK
  add_op(g, op, what);
#endif
}

/* ---- engine choice and the plan ------------------------------------------------------ */

/* What cuDNN says of one engine configuration. */
typedef struct engine_notes {
  int64_t index;
  bool nondeterministic, reduced_precision, tensor_core, down_convert, runtime_compiled;
} engine_notes;

static cudnnStatus_t read_notes(cudnnBackendDescriptor_t cfg, engine_notes *en) {
  memset(en, 0, sizeof *en);
  en->index = -1;
  cudnnBackendDescriptor_t eng = NULL;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng);
  int64_t n = 0;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                  1, &n, &eng);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n,
                                  &en->index);
  cudnnBackendNumericalNote_t num[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  int64_t n_num = 0;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                  CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_num, num);
  cudnnBackendBehaviorNote_t beh[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  int64_t n_beh = 0;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                  CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n_beh, beh);
  if (eng) cudnnBackendDestroyDescriptor(eng);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  for (int64_t i = 0; i < n_num && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
    if (num[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) en->nondeterministic = true;
    if (num[i] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) en->reduced_precision = true;
    if (num[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) en->tensor_core = true;
    if (num[i] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) en->down_convert = true;
  }
  for (int64_t i = 0; i < n_beh && i < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT; i++)
    if (beh[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) en->runtime_compiled = true;
  return CUDNN_STATUS_SUCCESS;
}

/* Why the search found nothing, for the refusal. */
typedef struct search_log {
  int configs, tried, no_det, no_reduced, no_tf32, no_runtime;
  char last[400]; /* cuDNN's last reason */
} search_log;

/* The engine-filtering rules of graph.h: the log's counter of the rule that excludes this
   engine, or NULL when it may run. */
static int *excluded_by(const dlk_cg *g, const engine_notes *en, search_log *log) {
  if (g->deterministic && en->nondeterministic) return &log->no_det;
  if (en->reduced_precision) return &log->no_reduced;
  if (g->f32_math && !g->allow_tf32 && (en->tensor_core || en->down_convert)) return &log->no_tf32;
  if (en->runtime_compiled && !g->runtime_compile) return &log->no_runtime;
  return NULL;
}

/* Finalize a plan from cfg: true and *plan set on success; false with log->last set when
   cuDNN refuses; a hard failure is recorded in g. */
static bool try_plan(dlk_cg *g, cudnnHandle_t h, cudnnBackendDescriptor_t cfg,
                     const engine_notes *en, search_log *log, cudnnBackendDescriptor_t *plan) {
  *plan = NULL;
  cudnnBackendDescriptor_t p = NULL;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &p);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(p);
  log->tried++;
  if (st == CUDNN_STATUS_SUCCESS) {
    *plan = p;
    return true;
  }
  char text[256];
  status_text(st, text, sizeof text);
  if (p) cudnnBackendDestroyDescriptor(p);
  if (classify(st) != DLK_ERR_NOT_SUPPORTED) {
    cg_fail(g, classify(st), "plan for engine %lld: %s", (long long)en->index, text);
    return false;
  }
  snprintf(log->last, sizeof log->last, "%s (plan for engine %lld)", text, (long long)en->index);
  return false;
}

/* The engine configurations heuristics mode `mode` ranks for graph, best first, into cfgs
   (created here, the caller destroys them); their number, 0 when there are none or cuDNN
   refused (log->last says why; a hard failure is recorded in g). */
static int heuristic_configs(dlk_cg *g, cudnnBackendDescriptor_t graph, cudnnBackendHeurMode_t mode,
                             const char *mode_txt, cudnnBackendDescriptor_t cfgs[MAX_CONFIGS],
                             search_log *log) {
  cudnnBackendDescriptor_t heur = NULL;
  int64_t count = 0, got = 0;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(heur);
  if (st == CUDNN_STATUS_SUCCESS) /* how many: no array */
    st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, NULL);
  if (count > MAX_CONFIGS) count = MAX_CONFIGS;
  /* cuDNN fills descriptors the caller made. */
  for (int64_t i = 0; st == CUDNN_STATUS_SUCCESS && i < count; i++)
    st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[i]);
  if (st == CUDNN_STATUS_SUCCESS && count > 0)
    st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs);
  if (st != CUDNN_STATUS_SUCCESS) {
    char text[256];
    status_text(st, text, sizeof text);
    if (classify(st) == DLK_ERR_NOT_SUPPORTED)
      snprintf(log->last, sizeof log->last, "%s (%s)", text, mode_txt);
    else
      cg_fail(g, classify(st), "%s: %s", mode_txt, text);
    got = 0;
  }
  if (heur) cudnnBackendDestroyDescriptor(heur);
  if (got > count) got = count;
  if (got == 0 && st == CUDNN_STATUS_SUCCESS)
    snprintf(log->last, sizeof log->last, "no engine configuration (%s)", mode_txt);
  return (int)got;
}

/* One heuristics query and the plan from its first acceptable configuration: true when a
   plan was made (it and its configuration then belong to g). Precompiled engines are tried
   first, in the heuristic's order, then the runtime-compiled ones: a plan of the first kind
   is ready at once, one of the second is compiled by NVRTC when it is finalized. */
static bool search_mode(dlk_cg *g, cudnnHandle_t h, cudnnBackendDescriptor_t graph,
                        cudnnBackendHeurMode_t mode, search_log *log, engine_notes *chosen) {
  const char *mode_txt = mode == CUDNN_HEUR_MODE_FALLBACK ? "heuristics FALLBACK" : "heuristics A";
  cudnnBackendDescriptor_t cfgs[MAX_CONFIGS] = {NULL};
  const int got = heuristic_configs(g, graph, mode, mode_txt, cfgs, log);
  log->configs += got;
  engine_notes notes[MAX_CONFIGS];
  bool usable[MAX_CONFIGS];
  for (int i = 0; i < got; i++) {
    const cudnnStatus_t st = read_notes(cfgs[i], &notes[i]);
    usable[i] = st == CUDNN_STATUS_SUCCESS;
    if (!usable[i]) {
      char text[256];
      status_text(st, text, sizeof text);
      snprintf(log->last, sizeof log->last, "%s (engine notes of configuration %d, %s)", text, i,
               mode_txt);
      continue;
    }
    int *rule = excluded_by(g, &notes[i], log);
    if (rule) {
      (*rule)++;
      usable[i] = false;
    }
  }
  bool made = false;
  for (int pass = 0; pass < 2 && !made && !failed(g); pass++)
    for (int i = 0; i < got && !made && !failed(g) && log->tried < MAX_PLAN_TRIES; i++) {
      if (!usable[i] || notes[i].runtime_compiled != (pass == 1)) continue;
      cudnnBackendDescriptor_t plan;
      if (!try_plan(g, h, cfgs[i], &notes[i], log, &plan)) continue;
      /* The configuration and the plan now belong to g, later to the plan entry. */
      const bool kept = list_push(&g->owned, cfgs[i]);
      if (kept) cfgs[i] = NULL;
      if (!kept || !list_push(&g->owned, plan)) {
        cudnnBackendDestroyDescriptor(plan);
        cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "plan: out of memory");
        break;
      }
      *chosen = notes[i];
      made = true;
    }
  for (int i = 0; i < MAX_CONFIGS; i++)
    if (cfgs[i]) cudnnBackendDestroyDescriptor(cfgs[i]);
  return made;
}

/* "engine 7 (tensor cores, runtime-compiled)". */
static void describe_engine(const engine_notes *en, char *buf, size_t n) {
  char notes[96] = "";
  if (en->tensor_core) dlk_appendf(notes, sizeof notes, ", tensor cores");
  if (en->down_convert) dlk_appendf(notes, sizeof notes, ", down-converted inputs");
  if (en->nondeterministic) dlk_appendf(notes, sizeof notes, ", non-deterministic");
  if (en->runtime_compiled) dlk_appendf(notes, sizeof notes, ", runtime-compiled");
  snprintf(buf, n, "engine %lld%s%s%s", (long long)en->index, notes[0] ? " (" : "",
           notes[0] ? notes + 2 : "", notes[0] ? ")" : "");
}

static void plan_destroy(void *ptr) {
  dlk_cg_plan *p = ptr;
  if (!p) return;
  list_destroy(&p->owned);
  free(p);
}

/* The operation graph, the engine search and the plan; NULL with g's status set when any
   step fails. */
static dlk_cg_plan *finalize_plan(dlk_cg *g, cudnnHandle_t h) {
  if (failed(g)) return NULL;
  if (g->ops.n == 0) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "the graph has no operation");
    return NULL;
  }
  int n_io = 0;
  for (int i = 0; i < g->n_tensors; i++) n_io += !g->tensors[i]->is_virtual;
  if (n_io > MAX_BOUND) {
    cg_fail(g, DLK_ERR_INVALID_ARGUMENT, "%d non-virtual tensors (at most %d)", n_io, MAX_BOUND);
    return NULL;
  }
  static const char what[] = "operation graph";
  cudnnBackendDescriptor_t graph = cg_create(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, what);
  CG_SET(g, graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, what);
  CG_SET(g, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->ops.n, g->ops.d,
         what);
  if (!cg_finalize(g, graph, what)) return NULL;

  search_log log;
  memset(&log, 0, sizeof log);
  engine_notes chosen;
  memset(&chosen, 0, sizeof chosen);
  static const cudnnBackendHeurMode_t modes[] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
  bool made = false;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0] && !made && !failed(g); m++)
    made = search_mode(g, h, graph, modes[m], &log, &chosen);
  if (failed(g)) return NULL;
  if (!made) {
    char excluded[160] = "";
    if (log.no_det) dlk_appendf(excluded, sizeof excluded, ", %d non-deterministic", log.no_det);
    if (log.no_reduced)
      dlk_appendf(excluded, sizeof excluded, ", %d with reduced-precision reduction",
                  log.no_reduced);
    if (log.no_tf32) dlk_appendf(excluded, sizeof excluded, ", %d TF32 (not allowed)", log.no_tf32);
    if (log.no_runtime)
      dlk_appendf(excluded, sizeof excluded, ", %d runtime-compiled", log.no_runtime);
    /* cuDNN's reason first: explain's line may be cut short after it. */
    cg_fail(g, DLK_ERR_NOT_SUPPORTED, "no engine: %s [%d configurations, %d plans tried%s%s]",
            log.last[0] ? log.last : "every engine excluded", log.configs, log.tried,
            excluded[0] ? "; excluded:" : "", excluded + (excluded[0] ? 1 : 0));
    return NULL;
  }

  dlk_cg_plan *p = calloc(1, sizeof *p);
  if (!p) {
    cg_fail(g, DLK_ERR_OUT_OF_MEMORY, "plan: out of memory");
    return NULL;
  }
  snprintf(p->name, sizeof p->name, "%s", g->name);
  p->handle = h;
  p->plan = g->owned.d[g->owned.n - 1];
  p->owned = g->owned; /* the plan takes every descriptor */
  memset(&g->owned, 0, sizeof g->owned);
  int64_t n = 0;
  cudnnStatus_t st = cudnnBackendGetAttribute(p->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                              CUDNN_TYPE_INT64, 1, &n, &p->workspace);
  if (!cg_check(g, st, "plan: get", "EXECUTION_PLAN_WORKSPACE_SIZE") || p->workspace < 0) {
    if (!failed(g))
      cg_fail(g, DLK_ERR_CUDNN, "plan: workspace of %lld bytes", (long long)p->workspace);
    plan_destroy(p);
    return NULL;
  }
  for (int i = 0; i < g->n_tensors; i++) {
    const dlk_cg_tensor *t = g->tensors[i];
    if (t->is_virtual) continue;
    p->io[p->n_io].uid = t->uid;
    p->io[p->n_io].constant = t->constant;
    p->io[p->n_io].value = t->value;
    p->n_io++;
  }
  describe_engine(&chosen, p->engine, sizeof p->engine);
  return p;
}

/* ---- plans: find, cache, execute ----------------------------------------------------- */

dlk_status dlk_cg_plan_find(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                            dlk_cg_build_fn build, const void *arg, const dlk_cg_plan **out,
                            char *why, size_t n) {
  *out = NULL;
  if (why && n) why[0] = '\0';
  char ck[CACHE_KEY_LEN];
  const int len = snprintf(ck, sizeof ck, DLK_CG_CACHE_PREFIX "%s|%s|det=%d|tf32=%d", name, key->s,
                           ctx->opts.deterministic != 0, ctx->opts.allow_tf32 != 0);
  if (key->overflow || len < 0 || (size_t)len >= sizeof ck) {
    if (why && n) snprintf(why, n, "cudnn: %s: plan key too long", name);
    return DLK_ERR_INTERNAL;
  }
  void *hit = NULL;
  dlk_status s = dlk_plan_cache_get(ctx, ck, &hit);
  if (s != DLK_OK) {
    if (why && n) snprintf(why, n, "%s", dlk_context_last_error(ctx));
    return s;
  }
  if (hit) {
    const dlk_cg_plan *p = hit;
    if (p->refused) {
      if (why && n) snprintf(why, n, "%s", p->why);
      return DLK_ERR_NOT_SUPPORTED;
    }
    *out = p;
    return DLK_OK;
  }

  dlk_cg *g = dlk_cg_new(ctx, name);
  if (!g) {
    if (why && n) snprintf(why, n, "cudnn: %s: out of memory", name);
    return DLK_ERR_OUT_OF_MEMORY;
  }
  build(g, arg);
  dlk_cg_plan *p = NULL;
  if (!failed(g) && ctx->device.type != DLK_CUDA) { /* the handle lives on the context's GPU */
    if (why && n) snprintf(why, n, "cudnn: %s: needs a CUDA context", name);
    dlk_cg_free(g);
    return DLK_ERR_DEVICE_MISMATCH;
  }
  if (!failed(g)) {
    void *h = NULL;
    s = dlk_cudnn_handle(ctx, &h);
    if (s != DLK_OK) {
      if (why && n) snprintf(why, n, "%s", dlk_context_last_error(ctx));
      dlk_cg_free(g);
      return s;
    }
    p = finalize_plan(g, (cudnnHandle_t)h);
  }
  s = dlk_cg_status(g, why, n);
  if (s == DLK_ERR_NOT_SUPPORTED) { /* cache the refusal: cuDNN is asked once per key */
    p = calloc(1, sizeof *p);
    if (p) {
      p->refused = true;
      snprintf(p->name, sizeof p->name, "%s", name);
      snprintf(p->why, sizeof p->why, "%s", g->why);
    }
  }
  dlk_cg_free(g);
  if (!p) return s;
  /* Room for p under the bound (graph.h): the least recently used graph plan goes. */
  dlk_plan_cache_trim(ctx, DLK_CG_CACHE_PREFIX, DLK_CG_PLAN_CAP - 1);
  const dlk_status put = dlk_plan_cache_put(ctx, ck, p, plan_destroy); /* owns p from here */
  if (put != DLK_OK) {
    if (why && n) snprintf(why, n, "%s", dlk_context_last_error(ctx));
    return put;
  }
  if (s == DLK_OK) *out = p;
  return s;
}

dlk_status dlk_cg_plan_get(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                           dlk_cg_build_fn build, const void *arg, const dlk_cg_plan **out) {
  char why[DLK_CG_WHY_LEN];
  const dlk_status s = dlk_cg_plan_find(ctx, name, key, build, arg, out, why, sizeof why);
  if (s != DLK_OK) return dlk_fail(ctx, s, "%s", why[0] ? why : "cudnn: plan failed");
  return DLK_OK;
}

bool dlk_cg_supports(dlk_context *ctx, const char *name, const dlk_cg_key *key,
                     dlk_cg_build_fn build, const void *arg, char *why, size_t n) {
  const dlk_cg_plan *p;
  return dlk_cg_plan_find(ctx, name, key, build, arg, &p, why, n) == DLK_OK;
}

size_t dlk_cg_plan_workspace(const dlk_cg_plan *p) {
  return p && !p->refused ? (size_t)p->workspace : 0;
}

const char *dlk_cg_plan_engine(const dlk_cg_plan *p) {
  return p ? p->engine : "";
}

/* A failed call at execute time as the context's last error. */
static dlk_status exec_fail(dlk_context *ctx, const dlk_cg_plan *p, cudnnStatus_t st,
                            const char *step) {
  char text[300];
  status_text(st, text, sizeof text);
  const dlk_status s =
      classify(st) == DLK_ERR_OUT_OF_MEMORY ? DLK_ERR_OUT_OF_MEMORY : DLK_ERR_CUDNN;
  return dlk_fail(ctx, s, "cudnn: %s: %s: %s", p->name, step, text);
}

dlk_status dlk_cg_execute(dlk_context *ctx, const dlk_cg_plan *p, const dlk_cg_bind *binds,
                          int n_binds, void *ws, size_t ws_bytes) {
  if (!p || p->refused) return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: execute without a plan");
  if ((size_t)p->workspace > ws_bytes || (p->workspace > 0 && !ws))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: %zu bytes of workspace, the plan needs %lld",
                    p->name, ws ? ws_bytes : 0, (long long)p->workspace);
  if (n_binds < 0 || (n_binds > 0 && !binds))
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: bad bindings", p->name);
  int64_t uids[MAX_BOUND];
  void *ptrs[MAX_BOUND];
  for (int i = 0; i < p->n_io; i++) {
    uids[i] = p->io[i].uid;
    ptrs[i] = NULL;
    if (p->io[i].constant) {
      ptrs[i] = (void *)&p->io[i].value; /* by value: a host pointer to the constant */
      continue;
    }
    for (int j = 0; j < n_binds; j++)
      if (binds[j].uid == uids[i]) {
        if (ptrs[i])
          return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: uid %lld bound twice", p->name,
                          (long long)uids[i]);
        ptrs[i] = (void *)binds[j].ptr;
        if (!ptrs[i])
          return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: uid %lld bound to NULL", p->name,
                          (long long)uids[i]);
      }
    if (!ptrs[i])
      return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: uid %lld is not bound", p->name,
                      (long long)uids[i]);
  }
  void *h = NULL;
  DLK_TRY(dlk_cudnn_handle(ctx, &h));
  if ((cudnnHandle_t)h != p->handle)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "cudnn: %s: plan made on another handle", p->name);

  cudnnBackendDescriptor_t vp = NULL;
  void *workspace = p->workspace > 0 ? ws : NULL;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
  const char *step = "create variant pack";
  if (st == CUDNN_STATUS_SUCCESS) {
    step = "variant pack: set VARIANT_PACK_UNIQUE_IDS";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, p->n_io,
                                  uids);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    step = "variant pack: set VARIANT_PACK_DATA_POINTERS";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                  p->n_io, ptrs);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    step = "variant pack: set VARIANT_PACK_WORKSPACE";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                                  &workspace);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    step = "variant pack: finalize";
    st = cudnnBackendFinalize(vp);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    step = "execute";
    st = cudnnBackendExecute((cudnnHandle_t)h, p->plan, vp);
  }
  const dlk_status s = st == CUDNN_STATUS_SUCCESS ? DLK_OK : exec_fail(ctx, p, st, step);
  if (vp) cudnnBackendDestroyDescriptor(vp);
  return s;
}
