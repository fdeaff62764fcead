/* Argument checks shared by every op family; see check.h. */
#include <math.h>
#include <stdio.h>

#include "check.h"

/* ---- presence, well-formedness, device, dtype ---- */

dlk_status dlk_check_need(dlk_context *ctx, const char *op, const char *name, const void *p) {
  return p ? DLK_OK : dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: %s is NULL", op, name);
}

dlk_status dlk_check_tensor(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  DLK_TRY(dlk_validate_tensor(ctx, op, name, t));
  if (t->device.type != ctx->device.type || t->device.id != ctx->device.id)
    return dlk_fail(ctx, DLK_ERR_DEVICE_MISMATCH, "%s: %s is on %s:%d, the context on %s:%d", op,
                    name, dlk_device_type_name(t->device.type), t->device.id,
                    dlk_device_type_name(ctx->device.type), ctx->device.id);
  return DLK_OK;
}

dlk_status dlk_check_float(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  if (t->dtype == DLK_F32 || t->dtype == DLK_F16 || t->dtype == DLK_BF16 || t->dtype == DLK_F64)
    return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s, expected f32, f16, bf16 or f64", op,
                  name, dlk_dtype_name(t->dtype));
}

dlk_status dlk_check_index(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  if (t->dtype != DLK_I32 && t->dtype != DLK_I64)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s, expected i32 or i64", op, name,
                    dlk_dtype_name(t->dtype));
  return DLK_OK;
}

dlk_status dlk_check_dtype(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                           dlk_dtype want) {
  if (t->dtype != want)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s, expected %s", op, name,
                    dlk_dtype_name(t->dtype), dlk_dtype_name(want));
  return DLK_OK;
}

dlk_status dlk_check_same_dtype(dlk_context *ctx, const char *op, const char *na,
                                const dlk_tensor *a, const char *nb, const dlk_tensor *b) {
  if (a->dtype == b->dtype) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s but %s is %s", op, nb,
                  dlk_dtype_name(b->dtype), na, dlk_dtype_name(a->dtype));
}

dlk_dtype dlk_stat_dtype(dlk_dtype data) { return data == DLK_F64 ? DLK_F64 : DLK_F32; }

/* ---- shapes ---- */

dlk_status dlk_check_ndim(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                          int ndim) {
  if (t->ndim != ndim)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d", op, name,
                    t->ndim, ndim);
  return DLK_OK;
}

dlk_status dlk_check_dim(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                         int dim, int64_t want) {
  if (dim < 0 || dim >= t->ndim || t->shape[dim] != want)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d, expected %lld", op,
                    name, dim >= 0 && dim < t->ndim ? (long long)t->shape[dim] : -1LL, dim,
                    (long long)want);
  return DLK_OK;
}

static void shape_str(const dlk_tensor *t, char *buf, size_t n) {
  buf[0] = '\0';
  dlk_appendf(buf, n, "[");
  for (int i = 0; i < t->ndim; i++) dlk_appendf(buf, n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  dlk_appendf(buf, n, "]");
}

dlk_status dlk_check_same_shape(dlk_context *ctx, const char *op, const char *na, const dlk_tensor *a,
                                const char *nb, const dlk_tensor *b) {
  bool same = a->ndim == b->ndim;
  for (int i = 0; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
  if (same) return DLK_OK;
  char sa[160], sb[160];
  shape_str(a, sa, sizeof sa);
  shape_str(b, sb, sizeof sb);
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has shape %s but %s has shape %s", op, na,
                  sa, nb, sb);
}

dlk_status dlk_check_last_dim(dlk_context *ctx, const char *op, const char *name,
                              const dlk_tensor *t, int64_t want, const char *what) {
  if (t->ndim >= 1 && t->shape[t->ndim - 1] == want) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in its last dim, expected %lld (%s)",
                  op, name, t->ndim >= 1 ? (long long)t->shape[t->ndim - 1] : -1LL, (long long)want,
                  what);
}

dlk_status dlk_check_vector(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                            int64_t want, const char *what) {
  if (t->ndim != 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected 1 (%s)", op, name,
                    t->ndim, what);
  if (t->shape[0] != want)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld elements, expected %lld (%s)", op,
                    name, (long long)t->shape[0], (long long)want, what);
  return DLK_OK;
}

dlk_status dlk_check_leading_dims(dlk_context *ctx, const char *op, const char *na,
                                  const dlk_tensor *a, const char *nb, const dlk_tensor *b) {
  if (b->ndim != a->ndim)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims but %s has %d", op, nb, b->ndim,
                    na, a->ndim);
  for (int k = 0; k + 1 < a->ndim; k++)
    if (a->shape[k] != b->shape[k])
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d but %s has %lld", op,
                      nb, (long long)b->shape[k], k, na, (long long)a->shape[k]);
  return DLK_OK;
}

dlk_status dlk_check_same_numel(dlk_context *ctx, const char *op, const char *name,
                                const dlk_tensor *t, const char *of_name, const dlk_tensor *of) {
  int64_t n = dlk_tensor_numel(t), want = dlk_tensor_numel(of);
  if (n == want) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld elements, %s has %lld", op, name,
                  (long long)n, of_name, (long long)want);
}

/* ---- outputs and overlap ---- */

dlk_status dlk_check_output(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t) {
  int idx[DLK_MAX_DIMS], n = 0;
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] > 1) idx[n++] = k;
  if (dlk_tensor_numel(t) == 0) return DLK_OK;
  for (int i = 1; i < n; i++) /* insertion sort by stride */
    for (int j = i; j > 0 && t->strides[idx[j]] < t->strides[idx[j - 1]]; j--) {
      int s = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = s;
    }
  int64_t span = 0;
  for (int i = 0; i < n; i++) {
    int k = idx[i];
    if (t->strides[k] <= span)
      return dlk_fail(ctx, DLK_ERR_LAYOUT,
                      "%s: output %s has overlapping elements (stride %lld in dim %d of size %lld)",
                      op, name, (long long)t->strides[k], k, (long long)t->shape[k]);
    span += (t->shape[k] - 1) * t->strides[k];
  }
  return DLK_OK;
}

dlk_status dlk_check_disjoint(dlk_context *ctx, const char *op, const char *na, const dlk_tensor *a,
                              const char *nb, const dlk_tensor *b) {
  if (!a || !b || !dlk_tensors_overlap(a, b)) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s and %s overlap in memory", op, na, nb);
}

bool dlk_same_view(const dlk_tensor *a, const dlk_tensor *b) {
  if (a->data != b->data || a->ndim != b->ndim || a->dtype != b->dtype) return false;
  for (int k = 0; k < a->ndim; k++)
    if (a->shape[k] != b->shape[k] || (a->shape[k] > 1 && a->strides[k] != b->strides[k])) return false;
  return true;
}

/* ---- views ---- */

dlk_status dlk_check_as_matrix(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t, dlk_tensor *m) {
  if (t->ndim < 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s is a scalar, expected at least 1 dim", op, name);
  if (!dlk_as_matrix(t, m)) *m = *t; /* leading dims that do not merge: the N-d row view */
  return DLK_OK;
}

dlk_status dlk_check_as_vector(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t, dlk_tensor *v) {
  dlk_tensor e = *t, m;
  if (e.ndim >= DLK_MAX_DIMS)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, at most %d allowed here", op,
                    name, e.ndim, DLK_MAX_DIMS - 1);
  e.shape[e.ndim] = 1; /* [..., 1] so that dlk_as_matrix merges all of t into rows */
  e.strides[e.ndim] = 1;
  e.ndim++;
  if (!dlk_as_matrix(&e, &m)) {
    *v = *t; /* strides that do not flatten: the N-d tensor, read in row-major order */
    return DLK_OK;
  }
  *v = m;
  v->ndim = 1;
  v->shape[0] = m.shape[0];
  v->strides[0] = m.strides[0];
  return DLK_OK;
}

/* ---- scalars ---- */

dlk_status dlk_check_activation(dlk_context *ctx, const char *op, dlk_activation act) {
  if ((unsigned)act < DLK_ACTIVATION_COUNT) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: activation %d is not one of NONE, RELU, TANH, "
                  "SIGMOID, GELU", op, (int)act);
}

dlk_status dlk_check_finite(dlk_context *ctx, const char *op, const char *name, double v) {
  if (isfinite(v)) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_NOT_FINITE, "%s: %s is %g", op, name, v);
}

dlk_status dlk_check_at_least(dlk_context *ctx, const char *op, const char *name, double v, double lo) {
  DLK_TRY(dlk_check_finite(ctx, op, name, v));
  if (v >= lo) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s is %g, must be >= %g", op, name, v, lo);
}
