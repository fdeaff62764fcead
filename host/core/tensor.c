/* Tensor descriptors: validation, allocation, copies between devices and strides, views,
   and DLPack interop. */
#include <stdlib.h>
#include <string.h>

#include "check.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "../../kernels/core/core.h"
#endif

static const size_t dtype_sizes[DLK_DTYPE_COUNT] = {4, 2, 2, 8, 4, 8, 1};
static const char *const dtype_names[DLK_DTYPE_COUNT] = {"f32", "f16", "bf16", "f64",
                                                         "i32", "i64", "u8"};

size_t dlk_dtype_size(dlk_dtype t) {
  return (unsigned)t < DLK_DTYPE_COUNT ? dtype_sizes[t] : 0;
}

const char *dlk_dtype_name(dlk_dtype t) {
  return (unsigned)t < DLK_DTYPE_COUNT ? dtype_names[t] : "invalid-dtype";
}

const char *dlk_device_type_name(dlk_device_type t) {
  switch (t) {
    case DLK_DEVICE_DEFAULT: return "default";
    case DLK_CPU: return "cpu";
    case DLK_CUDA: return "cuda";
    default: return "invalid-device";
  }
}

bool dlk_is_float_dtype(dlk_dtype t) {
  return t == DLK_F32 || t == DLK_F16 || t == DLK_BF16 || t == DLK_F64;
}

bool dlk_mul_overflows(int64_t a, int64_t b, int64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}

int64_t dlk_tensor_numel(const dlk_tensor *t) {
  if (!t || t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return 0;
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] <= 0 || dlk_mul_overflows(n, t->shape[i], &n)) return 0;
  }
  return n;
}

void dlk_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  /* Saturates instead of overflowing: a shape that large fails validation afterwards. */
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    if (dlk_mul_overflows(s, shape[i] > 0 ? shape[i] : 1, &s)) s = INT64_MAX;
  }
}

int dlk_tensor_is_contiguous(const dlk_tensor *t) {
  if (!t || t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return 0;
  /* No elements: nothing to lay out, so contiguous whatever the strides (as PyTorch; and
     dlk_tensor_init's strides for [2, 0] are then contiguous too). */
  bool empty = false;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0) return 0;
    empty |= t->shape[i] == 0;
  }
  if (empty) return 1;
  /* s = the product of the dims inside dim i, checked: once it overflows no stride can
     equal it, so only dims of size 1 (whose stride is free) may remain. */
  int64_t s = 1;
  bool s_overflowed = false;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (s_overflowed || t->strides[i] != s) return 0;
    s_overflowed = dlk_mul_overflows(s, t->shape[i], &s);
  }
  return 1;
}

int64_t dlk_offset_of(const dlk_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int k = t->ndim - 1; k >= 0; k--) {
    off += (i % t->shape[k]) * t->strides[k];
    i /= t->shape[k];
  }
  return off;
}

int64_t dlk_rows_of(const dlk_tensor *t) {
  int64_t r = 1;
  for (int k = 0; k + 1 < t->ndim; k++) r *= t->shape[k];
  return r;
}

void dlk_tensor_span(const dlk_tensor *t, int64_t *lo, int64_t *hi) {
  /* No elements: no bytes. Otherwise checked (validated descriptors never saturate). */
  *lo = 0;
  *hi = 0;
  if (dlk_tensor_numel(t) == 0) return;
  int64_t max = 0, step;
  for (int k = 0; k < t->ndim; k++) {
    if (dlk_mul_overflows(t->shape[k] - 1, t->strides[k], &step) ||
        __builtin_add_overflow(max, step, &max)) {
      *hi = INT64_MAX;
      return;
    }
  }
  if (__builtin_add_overflow(max, 1, &max) ||
      dlk_mul_overflows(max, (int64_t)dlk_dtype_size(t->dtype), hi))
    *hi = INT64_MAX;
}

bool dlk_tensors_overlap(const dlk_tensor *a, const dlk_tensor *b) {
  if (dlk_tensor_numel(a) == 0 || dlk_tensor_numel(b) == 0) return false;
  if (a->device.type != b->device.type || a->device.id != b->device.id) return false;
  int64_t alo, ahi, blo, bhi;
  dlk_tensor_span(a, &alo, &ahi);
  dlk_tensor_span(b, &blo, &bhi);
  /* As integers: the two may be different objects (validated spans do not wrap). */
  const uintptr_t pa = (uintptr_t)a->data, pb = (uintptr_t)b->data;
  return pa + (uintptr_t)alo < pb + (uintptr_t)bhi && pb + (uintptr_t)blo < pa + (uintptr_t)ahi;
}

bool dlk_as_matrix(const dlk_tensor *t, dlk_tensor *m) {
  if (t->ndim < 1) return false;
  *m = *t;
  m->ndim = 2;
  int last = t->ndim - 1;
  m->shape[1] = t->shape[last];
  m->strides[1] = t->strides[last];
  /* Rows: the product of the leading dims (validated: the product of the nonzero dims
     fits int64). With no elements any strides merge: nothing is addressed. */
  int64_t rows = 1;
  bool empty = t->shape[last] == 0;
  for (int k = 0; k < last; k++) {
    if (t->shape[k] == 0) empty = true;
    if (t->shape[k] > 0 && dlk_mul_overflows(rows, t->shape[k], &rows)) return false;
  }
  for (int k = 0; k < last; k++)
    if (t->shape[k] == 0) rows = 0;
  if (empty) {
    m->shape[0] = rows;
    m->strides[0] = 0;
    return true;
  }
  /* Walk the leading dims from the innermost out; each must step by the stride of the
     dims inside it (dims of size 1 are free). */
  int64_t inner = 1, row_stride = -1, want;
  for (int k = last - 1; k >= 0; k--) {
    if (t->shape[k] == 1) continue;
    if (row_stride < 0) {
      row_stride = t->strides[k];
    } else if (dlk_mul_overflows(row_stride, inner, &want) || t->strides[k] != want) {
      return false;
    }
    inner *= t->shape[k]; /* a factor of rows: cannot overflow */
  }
  m->shape[0] = rows;
  if (row_stride < 0) {
    /* One row: its stride is never used; the dense one where it fits. */
    int64_t cs = t->strides[last] ? t->strides[last] : 1;
    if (dlk_mul_overflows(t->shape[last], cs, &row_stride)) row_stride = 0;
  }
  m->strides[0] = row_stride;
  return true;
}

/* ---- validation ---- */

dlk_status dlk_validate_tensor(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t) {
  if (!t) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: %s is NULL", op, name);
  if ((unsigned)t->dtype >= DLK_DTYPE_COUNT)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s has invalid dtype %d", op, name, (int)t->dtype);
  if (t->ndim < 0 || t->ndim > DLK_MAX_DIMS)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s has ndim %d (allowed 0..%d)", op, name,
                    t->ndim, DLK_MAX_DIMS);
  if (t->device.type != DLK_CPU && t->device.type != DLK_CUDA)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s has invalid device type %d", op, name,
                    (int)t->device.type);
  if (t->device.id < 0 || (t->device.type == DLK_CPU && t->device.id != 0))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s has invalid device id %d", op, name,
                    t->device.id);
  /* Sizes: the product of the nonzero dims and the span of the elements must fit 64-bit
     indexing, also for an empty tensor (views and row merges of it multiply its dims);
     the span and the elements of a nonempty one must fit in bytes too. */
  const int64_t es = (int64_t)dlk_dtype_size(t->dtype);
  int64_t dims = 1, span = 0, step, bytes;
  bool empty = false;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s has negative size %lld in dim %d", op,
                      name, (long long)t->shape[i], i);
    if (t->strides[i] < 0)
      return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: %s has negative stride %lld in dim %d", op, name,
                      (long long)t->strides[i], i);
    if (t->shape[i] == 0) {
      empty = true;
      continue;
    }
    if (dlk_mul_overflows(dims, t->shape[i], &dims) ||
        dlk_mul_overflows(t->shape[i] - 1, t->strides[i], &step) ||
        __builtin_add_overflow(span, step, &span))
      return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: %s: sizes overflow 64-bit indexing", op, name);
  }
  if (__builtin_add_overflow(span, 1, &span) || dlk_mul_overflows(span, es, &bytes) ||
      dlk_mul_overflows(empty ? 0 : dims, es, &step))
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: %s: byte size overflows", op, name);
  /* Data: present when there are elements, aligned to the element size (every load and
     store is of a whole element; a GPU faults on a misaligned one), and the addressed
     bytes [data, data + bytes) must not wrap around the address space. */
  if (!empty && !t->data) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: %s has NULL data", op, name);
  const uintptr_t addr = (uintptr_t)t->data;
  if (addr % (uintptr_t)es)
    return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: %s: data %p is not aligned to its %lld-byte %s elements",
                    op, name, t->data, (long long)es, dlk_dtype_name(t->dtype));
  if (!empty && addr > UINTPTR_MAX - (uintptr_t)(bytes - 1))
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: %s: its %lld bytes from %p wrap around the address space",
                    op, name, (long long)bytes, t->data);
  return DLK_OK;
}

dlk_status dlk_tensor_validate(dlk_context *ctx, const dlk_tensor *t, const char *name) {
  return dlk_validate_tensor(ctx, "dlk_tensor_validate", name ? name : "tensor", t);
}

/* ---- construction ---- */

/* A valid, maximally aligned address: the stand-in data of a descriptor checked before
   its memory exists (dlk_tensor_alloc) or of an empty one (dlk_tensor_reshape). Never
   read or written. */
static max_align_t placeholder;

dlk_status dlk_tensor_init(dlk_context *ctx, dlk_tensor *t, void *data, dlk_dtype dtype,
                           dlk_device device, int ndim, const int64_t *shape) {
  if (!t) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_tensor_init: t is NULL");
  if (ndim < 0 || ndim > DLK_MAX_DIMS)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "dlk_tensor_init: ndim %d not in 0..%d", ndim,
                    DLK_MAX_DIMS);
  if (ndim > 0 && !shape) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_tensor_init: shape is NULL");
  dlk_tensor n;
  memset(&n, 0, sizeof n);
  n.data = data;
  n.dtype = dtype;
  n.device = device;
  n.ndim = ndim;
  for (int i = 0; i < ndim; i++) n.shape[i] = shape[i];
  dlk_contiguous_strides(ndim, n.shape, n.strides);
  DLK_TRY(dlk_validate_tensor(ctx, "dlk_tensor_init", "tensor", &n));
  *t = n;
  return DLK_OK;
}

dlk_status dlk_tensor_alloc(dlk_context *ctx, dlk_tensor *t, dlk_dtype dtype, int ndim,
                            const int64_t *shape) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!t) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_tensor_alloc: t is NULL");
  dlk_tensor n;
  /* Validate with an aligned stand-in pointer, then allocate. */
  DLK_TRY(dlk_tensor_init(ctx, &n, &placeholder, dtype, ctx->device, ndim, shape));
  size_t bytes = (size_t)dlk_tensor_numel(&n) * dlk_dtype_size(dtype);
  void *p = NULL;
  if (ctx->device.type == DLK_CPU) {
    p = bytes ? malloc(bytes) : NULL;
    if (bytes && !p)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "dlk_tensor_alloc: malloc of %zu bytes failed", bytes);
  } else {
#if DLK_HAVE_CUDA
    DLK_TRY(dlk_cuda_enter(ctx));
    if (bytes) {
      cudaError_t e = cudaMalloc(&p, bytes);
      if (e != cudaSuccess) {
        cudaGetLastError();
        return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "dlk_tensor_alloc: cudaMalloc of %zu bytes: %s",
                        bytes, cudaGetErrorString(e));
      }
    }
#else
    return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "dlk_tensor_alloc: built without CUDA");
#endif
  }
  n.data = p;
  *t = n;
  return DLK_OK;
}

dlk_status dlk_tensor_free(dlk_context *ctx, dlk_tensor *t) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!t) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_tensor_free: t is NULL");
  if (t->data) {
    if (t->device.type == DLK_CPU) {
      free(t->data);
    } else {
#if DLK_HAVE_CUDA
      DLK_TRY(dlk_cuda_enter(ctx));
      DLK_CUDA_TRY(ctx, cudaFree(t->data));
#else
      return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "dlk_tensor_free: built without CUDA");
#endif
    }
  }
  memset(t, 0, sizeof *t);
  return DLK_OK;
}

/* ---- copies ---- */

/* Host strided copy of n elements of `es` bytes; a plain memcpy when both are dense. */
static void host_copy(const dlk_tensor *dst, const dlk_tensor *src, int64_t n) {
  size_t es = dlk_dtype_size(src->dtype);
  if (dlk_tensor_is_contiguous(dst) && dlk_tensor_is_contiguous(src)) {
    memmove(dst->data, src->data, (size_t)n * es);
    return;
  }
  /* Odometer over the coordinates: no division per element. */
  int64_t idx[DLK_MAX_DIMS] = {0};
  int64_t so = 0, dof = 0;
  int nd = src->ndim;
  for (int64_t i = 0; i < n; i++) {
    memcpy((char *)dst->data + dof * (int64_t)es, (const char *)src->data + so * (int64_t)es, es);
    for (int k = nd - 1; k >= 0; k--) {
      if (++idx[k] < src->shape[k]) {
        so += src->strides[k];
        dof += dst->strides[k];
        break;
      }
      so -= (src->shape[k] - 1) * src->strides[k];
      dof -= (dst->shape[k] - 1) * dst->strides[k];
      idx[k] = 0;
    }
  }
}

static dlk_status check_reachable(dlk_context *ctx, const char *fn, const char *name,
                                  const dlk_tensor *t) {
  if (t->device.type == DLK_CPU) return DLK_OK;
  if (ctx->device.type != DLK_CUDA || t->device.id != ctx->device.id)
    return dlk_fail(ctx, DLK_ERR_DEVICE_MISMATCH, "%s: %s is on cuda:%d, the context on %s:%d", fn,
                    name, t->device.id, dlk_device_type_name(ctx->device.type), ctx->device.id);
  return DLK_OK;
}

#if DLK_HAVE_CUDA
static void fill_desc(dlk_k_strided_copy_desc *d, const dlk_tensor *dst, const dlk_tensor *src,
                      int64_t n) {
  memset(d, 0, sizeof *d);
  d->dst = dst->data;
  d->src = src->data;
  d->numel = n;
  d->elem_size = (int)dlk_dtype_size(src->dtype);
  d->ndim = src->ndim;
  for (int k = 0; k < src->ndim; k++) {
    d->shape[k] = src->shape[k];
    d->dst_strides[k] = dst->strides[k];
    d->src_strides[k] = src->strides[k];
  }
}

/* Device-to-device strided copy on the context's stream. */
static dlk_status device_copy(dlk_context *ctx, const dlk_tensor *dst, const dlk_tensor *src, int64_t n) {
  size_t es = dlk_dtype_size(src->dtype);
  if (dlk_tensor_is_contiguous(dst) && dlk_tensor_is_contiguous(src)) {
    DLK_CUDA_TRY(ctx, cudaMemcpyAsync(dst->data, src->data, (size_t)n * es, cudaMemcpyDeviceToDevice,
                                      (cudaStream_t)ctx->stream));
    return DLK_OK;
  }
  dlk_k_strided_copy_desc d;
  fill_desc(&d, dst, src, n);
  DLK_CUDA_TRY(ctx, dlk_k_strided_copy(&d, 1, NULL, ctx->stream));
  return DLK_OK;
}

/* Host <-> device: stage through dense buffers on whichever side is strided. */
static dlk_status cross_copy(dlk_context *ctx, const dlk_tensor *dst, const dlk_tensor *src, int64_t n) {
  size_t es = dlk_dtype_size(src->dtype), bytes = (size_t)n * es;
  bool to_device = dst->device.type == DLK_CUDA;
  const dlk_tensor *host = to_device ? src : dst, *dev = to_device ? dst : src;
  dlk_tensor host_dense = *host, dev_dense = *dev;
  dlk_contiguous_strides(host->ndim, host->shape, host_dense.strides);
  dlk_contiguous_strides(dev->ndim, dev->shape, dev_dense.strides);
  void *hbuf = NULL;
  if (!dlk_tensor_is_contiguous(host)) {
    hbuf = malloc(bytes);
    if (!hbuf) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "dlk_tensor_copy: staging %zu bytes", bytes);
    host_dense.data = hbuf;
  }
  if (!dlk_tensor_is_contiguous(dev)) {
    void *ws;
    dlk_status s = dlk_workspace_reserve(ctx, bytes, &ws);
    if (s != DLK_OK) {
      free(hbuf);
      return s;
    }
    dev_dense.data = ws;
  }
  cudaStream_t st = (cudaStream_t)ctx->stream;
  dlk_status s = DLK_OK;
  if (to_device) {
    if (hbuf) host_copy(&host_dense, host, n);
    s = dlk_check_cuda(ctx, cudaMemcpyAsync(dev_dense.data, host_dense.data, bytes,
                                            cudaMemcpyHostToDevice, st), __FILE__, __LINE__, "H2D");
    if (s == DLK_OK && dev_dense.data != dev->data) s = device_copy(ctx, dev, &dev_dense, n);
    if (s == DLK_OK) s = dlk_check_cuda(ctx, cudaStreamSynchronize(st), __FILE__, __LINE__, "sync");
  } else {
    if (dev_dense.data != dev->data) s = device_copy(ctx, &dev_dense, dev, n);
    if (s == DLK_OK)
      s = dlk_check_cuda(ctx, cudaMemcpyAsync(host_dense.data, dev_dense.data, bytes,
                                              cudaMemcpyDeviceToHost, st), __FILE__, __LINE__, "D2H");
    if (s == DLK_OK) s = dlk_check_cuda(ctx, cudaStreamSynchronize(st), __FILE__, __LINE__, "sync");
    if (s == DLK_OK && hbuf) host_copy(host, &host_dense, n);
  }
  free(hbuf);
  return s;
}
#endif

/* dlk_tensor_copy with the public function's name (fn) and the tensors' names in the
   messages: write and read are copies from and to a dense host view (`own`: built by
   host_view from a checked descriptor, and only memcpy'd, so its buffer need not be
   aligned to the element size). */
static dlk_status copy_named(dlk_context *ctx, const char *fn, const char *dn, dlk_tensor *dst,
                             const char *sn, const dlk_tensor *src, const dlk_tensor *own) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!own || dst != own) DLK_TRY(dlk_validate_tensor(ctx, fn, dn, dst));
  if (!own || src != own) DLK_TRY(dlk_validate_tensor(ctx, fn, sn, src));
  DLK_TRY(check_reachable(ctx, fn, dn, dst));
  DLK_TRY(check_reachable(ctx, fn, sn, src));
  if (dst->dtype != src->dtype)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s, %s is %s (no conversion)", fn, dn,
                    dlk_dtype_name(dst->dtype), sn, dlk_dtype_name(src->dtype));
  DLK_TRY(dlk_check_same_shape(ctx, fn, dn, dst, sn, src));
  int64_t n = dlk_tensor_numel(src);
  if (n == 0) return DLK_OK;
  /* The ops' rule for every output: no two elements share memory (on a GPU duplicate
     writes race). */
  DLK_TRY(dlk_check_output(ctx, fn, dn, dst));
  DLK_TRY(dlk_check_disjoint(ctx, fn, dn, dst, sn, src));
  if (dst->device.type == DLK_CPU && src->device.type == DLK_CPU) {
    host_copy(dst, src, n);
    return DLK_OK;
  }
#if DLK_HAVE_CUDA
  DLK_TRY(dlk_cuda_enter(ctx));
  if (dst->device.type == DLK_CUDA && src->device.type == DLK_CUDA) return device_copy(ctx, dst, src, n);
  return cross_copy(ctx, dst, src, n);
#else
  return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "%s: built without CUDA", fn);
#endif
}

dlk_status dlk_tensor_copy(dlk_context *ctx, dlk_tensor *dst, const dlk_tensor *src) {
  return copy_named(ctx, "dlk_tensor_copy", "dst", dst, "src", src, NULL);
}

static dlk_status host_view(dlk_context *ctx, const char *fn, const dlk_tensor *t, const void *host,
                            size_t bytes, dlk_tensor *h) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  int64_t n = dlk_tensor_numel(t);
  size_t want = (size_t)n * dlk_dtype_size(t->dtype);
  if (bytes != want)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: buffer has %zu bytes, the tensor needs %zu", fn,
                    bytes, want);
  if (want && !host) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: host buffer is NULL", fn);
  if (want && (uintptr_t)host > UINTPTR_MAX - (want - 1))
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: host buffer of %zu bytes from %p wraps around the "
                    "address space", fn, want, host);
  *h = *t;
  h->data = (void *)host;
  h->device = (dlk_device){DLK_CPU, 0};
  dlk_contiguous_strides(t->ndim, t->shape, h->strides);
  return DLK_OK;
}

dlk_status dlk_tensor_write(dlk_context *ctx, dlk_tensor *t, const void *host, size_t bytes) {
  dlk_tensor h;
  DLK_TRY(host_view(ctx, "dlk_tensor_write", t, host, bytes, &h));
  return copy_named(ctx, "dlk_tensor_write", "t", t, "host buffer", &h, &h);
}

dlk_status dlk_tensor_read(dlk_context *ctx, const dlk_tensor *t, void *host, size_t bytes) {
  dlk_tensor h;
  DLK_TRY(host_view(ctx, "dlk_tensor_read", t, host, bytes, &h));
  return copy_named(ctx, "dlk_tensor_read", "host buffer", &h, "t", t, &h);
}

dlk_status dlk_tensor_zero(dlk_context *ctx, dlk_tensor *t) {
  static const char fn[] = "dlk_tensor_zero";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  DLK_TRY(check_reachable(ctx, fn, "t", t));
  int64_t n = dlk_tensor_numel(t);
  if (n == 0) return DLK_OK;
  DLK_TRY(dlk_check_output(ctx, fn, "t", t));
  size_t es = dlk_dtype_size(t->dtype);
  /* A broadcast source: one zero element with all strides 0. */
  static const uint64_t zero = 0;
  dlk_tensor z = *t;
  for (int k = 0; k < z.ndim; k++) z.strides[k] = 0;
  if (t->device.type == DLK_CPU) {
    if (dlk_tensor_is_contiguous(t)) {
      memset(t->data, 0, (size_t)n * es);
    } else {
      z.data = (void *)&zero;
      host_copy(t, &z, n);
    }
    return DLK_OK;
  }
#if DLK_HAVE_CUDA
  DLK_TRY(dlk_cuda_enter(ctx));
  if (dlk_tensor_is_contiguous(t)) {
    DLK_CUDA_TRY(ctx, cudaMemsetAsync(t->data, 0, (size_t)n * es, (cudaStream_t)ctx->stream));
    return DLK_OK;
  }
  void *ws;
  DLK_TRY(dlk_workspace_reserve(ctx, 8, &ws));
  DLK_CUDA_TRY(ctx, cudaMemsetAsync(ws, 0, 8, (cudaStream_t)ctx->stream));
  z.data = ws;
  return device_copy(ctx, t, &z, n);
#else
  return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "%s: built without CUDA", fn);
#endif
}

/* ---- views ---- */

dlk_status dlk_tensor_slice(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t, int dim,
                            int64_t start, int64_t len) {
  static const char fn[] = "dlk_tensor_slice";
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  if (!view) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: view is NULL", fn);
  if (dim < 0 || dim >= t->ndim)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dim %d not in [0, %d)", fn, dim, t->ndim);
  if (start < 0 || len < 0 || start > t->shape[dim] || len > t->shape[dim] - start)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: [%lld, %lld+%lld) outside dim %d of size %lld", fn,
                    (long long)start, (long long)start, (long long)len, dim, (long long)t->shape[dim]);
  dlk_tensor v = *t;
  /* Only a tensor with elements moves its data (start < shape: within its validated span);
     an empty one may have NULL data, and a view of it addresses nothing. */
  if (len > 0 && dlk_tensor_numel(t) > 0)
    v.data = (char *)t->data + start * t->strides[dim] * (int64_t)dlk_dtype_size(t->dtype);
  v.shape[dim] = len;
  *view = v;
  return DLK_OK;
}

dlk_status dlk_tensor_transpose(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t, int dim0,
                                int dim1) {
  static const char fn[] = "dlk_tensor_transpose";
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  if (!view) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: view is NULL", fn);
  if (dim0 < 0 || dim0 >= t->ndim || dim1 < 0 || dim1 >= t->ndim)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dims %d, %d not in [0, %d)", fn, dim0, dim1,
                    t->ndim);
  dlk_tensor v = *t;
  v.shape[dim0] = t->shape[dim1];
  v.shape[dim1] = t->shape[dim0];
  v.strides[dim0] = t->strides[dim1];
  v.strides[dim1] = t->strides[dim0];
  *view = v;
  return DLK_OK;
}

dlk_status dlk_tensor_reshape(dlk_context *ctx, dlk_tensor *view, const dlk_tensor *t, int ndim,
                              const int64_t *shape) {
  static const char fn[] = "dlk_tensor_reshape";
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  if (!view) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: view is NULL", fn);
  if (!dlk_tensor_is_contiguous(t))
    return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: t is not contiguous (copy it first)", fn);
  dlk_tensor v;
  DLK_TRY(dlk_tensor_init(ctx, &v, t->data ? t->data : (void *)&placeholder, t->dtype, t->device, ndim, shape));
  v.data = t->data;
  if (dlk_tensor_numel(&v) != dlk_tensor_numel(t))
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %lld elements cannot take a shape of %lld", fn,
                    (long long)dlk_tensor_numel(t), (long long)dlk_tensor_numel(&v));
  *view = v;
  return DLK_OK;
}

/* ---- DLPack ---- */

static bool dtype_from_dl(DLDataType d, dlk_dtype *out) {
  if (d.lanes != 1) return false;
  switch (d.code) {
    case kDLFloat:
      if (d.bits == 32) return *out = DLK_F32, true;
      if (d.bits == 16) return *out = DLK_F16, true;
      if (d.bits == 64) return *out = DLK_F64, true;
      return false;
    case kDLBfloat:
      return d.bits == 16 ? (*out = DLK_BF16, true) : false;
    case kDLInt:
      if (d.bits == 32) return *out = DLK_I32, true;
      if (d.bits == 64) return *out = DLK_I64, true;
      return false;
    case kDLUInt:
    case kDLBool:
      return d.bits == 8 ? (*out = DLK_U8, true) : false;
    default:
      return false;
  }
}

static DLDataType dtype_to_dl(dlk_dtype t) {
  static const DLDataType map[DLK_DTYPE_COUNT] = {
      {kDLFloat, 32, 1}, {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}, {kDLFloat, 64, 1},
      {kDLInt, 32, 1},   {kDLInt, 64, 1},   {kDLUInt, 8, 1}};
  return map[t];
}

dlk_status dlk_tensor_from_dlpack(dlk_context *ctx, dlk_tensor *out, const DLManagedTensorVersioned *src,
                                  int writable) {
  static const char fn[] = "dlk_tensor_from_dlpack";
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: out is NULL", fn);
  if (!src) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: src is NULL", fn);
  if (src->version.major != DLPACK_MAJOR_VERSION)
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s: DLPack version %u.%u, dlk reads major version %d",
                    fn, src->version.major, src->version.minor, DLPACK_MAJOR_VERSION);
  if (writable && (src->flags & DLPACK_FLAG_BITMASK_READ_ONLY))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: tensor is read-only but writable was asked", fn);
  const DLTensor *d = &src->dl_tensor;
  if (d->ndim < 0 || d->ndim > DLK_MAX_DIMS)
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s: ndim %d (dlk allows up to %d)", fn, d->ndim,
                    DLK_MAX_DIMS);
  if (d->ndim > 0 && !d->shape) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: shape is NULL", fn);
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  if (!dtype_from_dl(d->dtype, &t.dtype))
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: DLPack dtype code %u bits %u lanes %u has no dlk dtype",
                    fn, d->dtype.code, d->dtype.bits, d->dtype.lanes);
  switch (d->device.device_type) {
    case kDLCPU:
    case kDLCUDAHost:
      t.device = (dlk_device){DLK_CPU, 0};
      break;
    case kDLCUDA:
    case kDLCUDAManaged:
      t.device = (dlk_device){DLK_CUDA, d->device.device_id};
      break;
    default:
      return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s: DLPack device type %d is not CPU or CUDA", fn,
                      (int)d->device.device_type);
  }
  t.ndim = d->ndim;
  for (int i = 0; i < d->ndim; i++) t.shape[i] = d->shape[i];
  if (d->strides) {
    for (int i = 0; i < d->ndim; i++) t.strides[i] = d->strides[i];
  } else {
    dlk_contiguous_strides(t.ndim, t.shape, t.strides);
  }
  /* data + byte_offset as an address: an offset past the end of the address space, or
     one that leaves the first element misaligned, describes no tensor dlk can read. */
  if (d->data) {
    const uintptr_t base = (uintptr_t)d->data;
    const size_t es = dlk_dtype_size(t.dtype);
    if (d->byte_offset > (uint64_t)(UINTPTR_MAX - base))
      return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: byte_offset %llu from data %p wraps around the "
                      "address space", fn, (unsigned long long)d->byte_offset, d->data);
    if ((base + (uintptr_t)d->byte_offset) % es)
      return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: data %p + byte_offset %llu is not aligned to the "
                      "%zu-byte %s elements", fn, d->data, (unsigned long long)d->byte_offset, es,
                      dlk_dtype_name(t.dtype));
    t.data = (void *)(base + (uintptr_t)d->byte_offset);
  }
  DLK_TRY(dlk_validate_tensor(ctx, fn, "src", &t));
  *out = t;
  return DLK_OK;
}

typedef struct {
  DLManagedTensorVersioned m;
  int64_t shape[DLK_MAX_DIMS];
  int64_t strides[DLK_MAX_DIMS];
} dlk_dlpack_box;

static void dlpack_deleter(DLManagedTensorVersioned *self) {
  free(self); /* the box starts with m */
}

dlk_status dlk_tensor_to_dlpack(dlk_context *ctx, const dlk_tensor *t, DLManagedTensorVersioned **out) {
  static const char fn[] = "dlk_tensor_to_dlpack";
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: out is NULL", fn);
  DLK_TRY(dlk_validate_tensor(ctx, fn, "t", t));
  dlk_dlpack_box *b = calloc(1, sizeof *b);
  if (!b) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  b->m.version = (DLPackVersion){DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  b->m.manager_ctx = b;
  b->m.deleter = dlpack_deleter;
  b->m.flags = 0;
  DLTensor *d = &b->m.dl_tensor;
  d->data = t->data;
  d->device.device_type = t->device.type == DLK_CUDA ? kDLCUDA : kDLCPU;
  d->device.device_id = t->device.id;
  d->ndim = t->ndim;
  d->dtype = dtype_to_dl(t->dtype);
  for (int i = 0; i < t->ndim; i++) {
    b->shape[i] = t->shape[i];
    b->strides[i] = t->strides[i];
  }
  d->shape = b->shape;
  d->strides = b->strides;
  d->byte_offset = 0;
  *out = &b->m;
  return DLK_OK;
}
