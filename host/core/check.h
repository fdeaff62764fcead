/*
 * Argument checks shared by every op family (host/core/check.c). Each one returns DLK_OK
 * or fails with a status and a message naming the public function (`op`), the tensor and
 * the dimension ("softmax_forward: y has shape [2, 3] but x has shape [2, 4]"), so a
 * family file keeps only the checks that are its op's own. Tensors are `const dlk_tensor *`
 * and may be NULL only where a check says so.
 */
#ifndef DLK_CHECK_H
#define DLK_CHECK_H

#include "internal.h"

/* ---- presence, well-formedness, device, dtype ---- */

/* p must not be NULL (DLK_ERR_NULL_POINTER "op: name is NULL"). */
dlk_status dlk_check_need(dlk_context *ctx, const char *op, const char *name, const void *p);
/* A well-formed descriptor (dlk_tensor_validate's rules) on the context's device (a CPU
   tensor on a CUDA context is DLK_ERR_DEVICE_MISMATCH). */
dlk_status dlk_check_tensor(dlk_context *ctx, const char *op, const char *name,
                            const dlk_tensor *t);
/* dlk_check_tensor plus a float dtype: F32, F16, BF16 or F64. */
dlk_status dlk_check_float(dlk_context *ctx, const char *op, const char *name,
                           const dlk_tensor *t);
/* dlk_check_tensor plus an index dtype: I32 or I64. */
dlk_status dlk_check_index(dlk_context *ctx, const char *op, const char *name,
                           const dlk_tensor *t);
dlk_status dlk_check_dtype(dlk_context *ctx, const char *op, const char *name,
                           const dlk_tensor *t, dlk_dtype want);
/* b has a's dtype ("op: nb is f16 but na is f32"). */
dlk_status dlk_check_same_dtype(dlk_context *ctx, const char *op, const char *na,
                                const dlk_tensor *a, const char *nb, const dlk_tensor *b);
/* The dtype of float statistics (layer norm mean/rstd, cross-entropy lse and the loss of
   half-precision logits, optimizer states): F64 for F64 data, else F32. */
dlk_dtype dlk_stat_dtype(dlk_dtype data);

/* ---- shapes ---- */

dlk_status dlk_check_ndim(dlk_context *ctx, const char *op, const char *name,
                          const dlk_tensor *t, int ndim);
/* Dim `dim` of t is `want`. */
dlk_status dlk_check_dim(dlk_context *ctx, const char *op, const char *name,
                         const dlk_tensor *t, int dim, int64_t want);
dlk_status dlk_check_same_shape(dlk_context *ctx, const char *op, const char *na,
                                const dlk_tensor *a, const char *nb, const dlk_tensor *b);
/* The last dim of t is `want`; `what` says where want comes from ("w's rows"). */
dlk_status dlk_check_last_dim(dlk_context *ctx, const char *op, const char *name,
                              const dlk_tensor *t, int64_t want, const char *what);
/* t is 1-D with `want` elements ("op: bias has 7 elements, expected 8 (x's last dim)"). */
dlk_status dlk_check_vector(dlk_context *ctx, const char *op, const char *name,
                            const dlk_tensor *t, int64_t want, const char *what);
/* b has a's number of dims and a's leading dims (all but the last). */
dlk_status dlk_check_leading_dims(dlk_context *ctx, const char *op, const char *na,
                                  const dlk_tensor *a, const char *nb, const dlk_tensor *b);
/* t and `of` have the same number of elements (any shapes). */
dlk_status dlk_check_same_numel(dlk_context *ctx, const char *op, const char *name,
                                const dlk_tensor *t, const char *of_name, const dlk_tensor *of);

/* ---- outputs and overlap ---- */

/* An output's elements are distinct memory (DLK_ERR_LAYOUT otherwise): with the dims of
   size > 1 sorted by stride, each stride steps past everything the smaller dims span. */
dlk_status dlk_check_output(dlk_context *ctx, const char *op, const char *name,
                            const dlk_tensor *t);
/* a and b (either may be NULL) touch no common byte (DLK_ERR_INVALID_ARGUMENT). Byte
   spans are compared, so two interleaved views of one buffer count as overlapping. */
dlk_status dlk_check_disjoint(dlk_context *ctx, const char *op, const char *na,
                              const dlk_tensor *a, const char *nb, const dlk_tensor *b);
/* b is exactly a: same memory, dtype, shape and strides (the allowed in-place case). */
bool dlk_same_view(const dlk_tensor *a, const dlk_tensor *b);

/* ---- views ---- */

/* [..., C] as rows of C: a 2-D [rows, C] view when the leading dims merge, else t itself
   (an N-d row view: rows are the leading dims in row-major order, dlk_rows_of and
   dlk_row_offset read it). The CPU references take both; a fast variant that needs the
   2-D view declines the other with the reason. A 0-d tensor is DLK_ERR_SHAPE_MISMATCH. */
dlk_status dlk_check_as_matrix(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t, dlk_tensor *m);
/* Any shape (fewer than DLK_MAX_DIMS dims) as a vector of its elements in row-major order:
   a 1-D view when the strides flatten, else t itself (element i at dlk_offset_of(t, i)). */
dlk_status dlk_check_as_vector(dlk_context *ctx, const char *op, const char *name,
                               const dlk_tensor *t, dlk_tensor *v);

/* ---- scalars ---- */

dlk_status dlk_check_activation(dlk_context *ctx, const char *op, dlk_activation act);
/* v is finite (DLK_ERR_NOT_FINITE). */
dlk_status dlk_check_finite(dlk_context *ctx, const char *op, const char *name, double v);
/* v is finite and >= lo. */
dlk_status dlk_check_at_least(dlk_context *ctx, const char *op, const char *name, double v,
                              double lo);

#endif /* DLK_CHECK_H */
