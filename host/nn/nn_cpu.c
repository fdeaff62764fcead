/*
 * nn family, variant 0 of every op: the CPU reference. This is the spec the GPU variants
 * are tested against, so it is written for clarity, not speed: short loops over element
 * offsets (any strides), every float dtype read as double through dlk_load, all math in
 * double, each result rounded once to the output dtype by dlk_store.
 *
 * host/nn/nn.c has already checked every argument (devices, dtypes, shapes, overlaps)
 * and normalised the tensors (see the records in host/nn/nn.h). What is left here are the checks
 * that need the data: target and id ranges, done before anything is written.
 */
#include <math.h>
#include <string.h>

#include "../core/half.h"
#include "nn.h"

/* ---- helpers ---- */

static inline double ld(const dlk_tensor *t, int64_t off) { return dlk_load(t->data, t->dtype, off); }
static inline void st(const dlk_tensor *t, int64_t off, double v) { dlk_store(t->data, t->dtype, off, v); }
/* Offset of row i, column j of a row view [..., C] (2-D, or N-d when its leading dims do
   not merge: any strides), of [b, i, j] of a 3-D view, and of element i (row-major) of a
   vector of any shape. nrows/ncols: the row view's row count and last dim. */
static inline int64_t at2(const dlk_tensor *t, int64_t i, int64_t j) {
  return dlk_row_offset(t, i) + j * t->strides[t->ndim - 1];
}
static inline int64_t at1(const dlk_tensor *t, int64_t i) {
  return t->ndim == 1 ? i * t->strides[0] : dlk_offset_of(t, i);
}
static inline int64_t nrows(const dlk_tensor *t) { return dlk_rows_of(t); }
static inline int64_t ncols(const dlk_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t at3(const dlk_tensor *t, int64_t b, int64_t i, int64_t j) {
  return b * t->strides[0] + i * t->strides[1] + j * t->strides[2];
}

/* Activations. gelu is the exact one: x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2. */
static double act_f(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : x; /* NaN stays NaN, as torch.relu */
    case DLK_ACT_TANH: return tanh(x);
    case DLK_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DLK_ACT_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    default: return x;
  }
}

/* d act / dx at the pre-activation x:
   relu 1[x > 0] (0 at x = 0, as PyTorch); tanh 1 - tanh^2; sigmoid s (1 - s);
   gelu Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi). */
static double act_grad(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : 1.0; /* torch's threshold_backward: NaN passes */
    case DLK_ACT_TANH: {
      double t = tanh(x);
      return 1.0 - t * t;
    }
    case DLK_ACT_SIGMOID: {
      double s = 1.0 / (1.0 + exp(-x));
      return s * (1.0 - s);
    }
    case DLK_ACT_GELU: {
      double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
      double pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
      return cdf + x * pdf;
    }
    default: return 1.0;
  }
}

/* ---- gemm: c[b] = act(alpha * a[b] @ bmat[b] + beta * c[b] + bias), z[b] before act ---- */

dlk_status dlk_gemm_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_gemm_args *g = args;
  const int64_t nb = g->c.shape[0], m = g->c.shape[1], n = g->c.shape[2], k = g->a.shape[2];
  for (int64_t b = 0; b < nb; b++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0.0;
        for (int64_t p = 0; p < k; p++) acc += ld(&g->a, at3(&g->a, b, i, p)) * ld(&g->bmat, at3(&g->bmat, b, p, j));
        double v = g->alpha * acc;
        /* beta == 0 ignores c's old contents entirely (it may hold NaN). */
        if (g->beta != 0.0) v += g->beta * ld(&g->c, at3(&g->c, b, i, j));
        if (g->has_bias) v += ld(&g->bias, j * g->bias.strides[0]);
        if (g->has_z) st(&g->z, at3(&g->z, b, i, j), v);
        st(&g->c, at3(&g->c, b, i, j), act_f(g->act, v));
      }
  return DLK_OK;
}

/* ---- bias + activation ---- */

dlk_status dlk_bias_act_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_bias_act_fwd_args *a = args;
  /* y = act(x + bias); x and y may be the same view: each element is read before it is
     written. */
  for (int64_t i = 0; i < nrows(&a->x); i++)
    for (int64_t j = 0; j < ncols(&a->x); j++) {
      double v = ld(&a->x, at2(&a->x, i, j));
      if (a->has_bias) v += ld(&a->bias, j * a->bias.strides[0]);
      st(&a->y, at2(&a->y, i, j), act_f(a->act, v));
    }
  return DLK_OK;
}

dlk_status dlk_bias_act_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_bias_act_bwd_args *a = args;
  /* g = dy * act'(x + bias); dx = g; dbias[j] = sum_i g[i, j]. */
  for (int64_t j = 0; j < ncols(&a->x); j++) {
    double col = 0.0;
    for (int64_t i = 0; i < nrows(&a->x); i++) {
      double pre = ld(&a->x, at2(&a->x, i, j));
      if (a->has_bias) pre += ld(&a->bias, j * a->bias.strides[0]);
      double g = ld(&a->dy, at2(&a->dy, i, j)) * act_grad(a->act, pre);
      if (a->has_dx) st(&a->dx, at2(&a->dx, i, j), g);
      col += g;
    }
    if (a->has_dbias) st(&a->dbias, j * a->dbias.strides[0], col);
  }
  return DLK_OK;
}

/* ---- softmax / log-softmax over the last dim ---- */

dlk_status dlk_softmax_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_softmax_fwd_args *a = args;
  const int64_t cols = ncols(&a->x);
  for (int64_t i = 0; i < nrows(&a->x); i++) {
    /* Stable: m = max_j x_j, s = sum_j exp(x_j - m);
       softmax y_j = exp(x_j - m) / s, log-softmax y_j = x_j - m - log s.
       A row of -inf gives NaN, as PyTorch. */
    double m = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < cols; j++) m = fmax(m, ld(&a->x, at2(&a->x, i, j)));
    for (int64_t j = 0; j < cols; j++) s += exp(ld(&a->x, at2(&a->x, i, j)) - m);
    for (int64_t j = 0; j < cols; j++) {
      double d = ld(&a->x, at2(&a->x, i, j)) - m;
      st(&a->y, at2(&a->y, i, j), a->log ? d - log(s) : exp(d) / s);
    }
  }
  return DLK_OK;
}

dlk_status dlk_softmax_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_softmax_bwd_args *a = args;
  const int64_t cols = ncols(&a->y);
  for (int64_t i = 0; i < nrows(&a->y); i++) {
    /* softmax:     dx_j = y_j (dy_j - sum_k dy_k y_k)
       log-softmax: dx_j = dy_j - exp(y_j) sum_k dy_k */
    double dot = 0.0;
    for (int64_t j = 0; j < cols; j++) {
      double dy = ld(&a->dy, at2(&a->dy, i, j));
      dot += a->log ? dy : dy * ld(&a->y, at2(&a->y, i, j));
    }
    for (int64_t j = 0; j < cols; j++) {
      double y = ld(&a->y, at2(&a->y, i, j)), dy = ld(&a->dy, at2(&a->dy, i, j));
      st(&a->dx, at2(&a->dx, i, j), a->log ? dy - exp(y) * dot : y * (dy - dot));
    }
  }
  return DLK_OK;
}

/* ---- cross-entropy ---- */

/* Every target is in [0, C) or equal to ignore_index; checked before anything is written. */
static dlk_status check_targets(dlk_context *ctx, const char *op, const dlk_tensor *t, int64_t classes,
                                int64_t ignore_index) {
  for (int64_t i = 0; i < dlk_tensor_numel(t); i++) {
    int64_t v = dlk_load_index(t->data, t->dtype, at1(t, i));
    if (v != ignore_index && (v < 0 || v >= classes))
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                      "%s: targets[%lld] = %lld is outside [0, %lld) and is not ignore_index %lld", op,
                      (long long)i, (long long)v, (long long)classes, (long long)ignore_index);
  }
  return DLK_OK;
}

/* logsumexp of row i: m + log sum_j exp(x_j - m), with m = 0 when the max is infinite
   (as torch.logsumexp: a row of -inf gives -inf, a +inf entry gives +inf). */
static double row_lse(const dlk_tensor *x, int64_t i) {
  double m = -INFINITY, s = 0.0;
  for (int64_t j = 0; j < ncols(x); j++) m = fmax(m, ld(x, at2(x, i, j)));
  if (isinf(m)) m = 0.0;
  for (int64_t j = 0; j < ncols(x); j++) s += exp(ld(x, at2(x, i, j)) - m);
  return m + log(s);
}

dlk_status dlk_cross_entropy_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws, (void)ws_bytes;
  const dlk_cross_entropy_fwd_args *a = args;
  const int64_t rows = nrows(&a->logits), cols = ncols(&a->logits);
  DLK_TRY(check_targets(ctx, "cross_entropy_forward", &a->targets, cols, a->ignore_index));
  /* loss_i = lse_i - x_i[t_i]; ignored rows count 0 and are left out of the mean's
     denominator (a mean over no rows is 0 / 0 = NaN, as PyTorch). */
  double sum = 0.0, count = 0.0;
  for (int64_t i = 0; i < rows; i++) {
    int64_t t = dlk_load_index(a->targets.data, a->targets.dtype, at1(&a->targets, i));
    double lse = row_lse(&a->logits, i);
    double li = 0.0;
    if (t != a->ignore_index) {
      li = lse - ld(&a->logits, at2(&a->logits, i, t));
      sum += li;
      count += 1.0;
    }
    if (a->reduction == DLK_REDUCE_NONE) st(&a->loss, at1(&a->loss, i), li);
    if (a->has_lse) st(&a->lse, at1(&a->lse, i), lse);
  }
  if (a->reduction == DLK_REDUCE_MEAN) st(&a->loss, 0, sum / count);
  if (a->reduction == DLK_REDUCE_SUM) st(&a->loss, 0, sum);
  return DLK_OK;
}

dlk_status dlk_cross_entropy_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws, (void)ws_bytes;
  const dlk_cross_entropy_bwd_args *a = args;
  const int64_t rows = nrows(&a->logits), cols = ncols(&a->logits);
  DLK_TRY(check_targets(ctx, "cross_entropy_backward", &a->targets, cols, a->ignore_index));
  double count = 0.0;
  for (int64_t i = 0; i < rows; i++)
    count += dlk_load_index(a->targets.data, a->targets.dtype, at1(&a->targets, i)) != a->ignore_index;
  /* dx_ij = scale_i (softmax(x_i)_j - [j == t_i]); scale_i = dloss_i (NONE), dloss (SUM),
     dloss / count (MEAN). Ignored rows get zero. */
  for (int64_t i = 0; i < rows; i++) {
    int64_t t = dlk_load_index(a->targets.data, a->targets.dtype, at1(&a->targets, i));
    double scale = a->reduction == DLK_REDUCE_NONE ? ld(&a->dloss, at1(&a->dloss, i))
                   : a->reduction == DLK_REDUCE_SUM ? ld(&a->dloss, 0)
                                                    : ld(&a->dloss, 0) / count;
    double lse = row_lse(&a->logits, i);
    for (int64_t j = 0; j < cols; j++) {
      double g = 0.0;
      if (t != a->ignore_index) g = scale * (exp(ld(&a->logits, at2(&a->logits, i, j)) - lse) - (j == t));
      st(&a->dlogits, at2(&a->dlogits, i, j), g);
    }
  }
  return DLK_OK;
}

/* ---- embedding ---- */

static dlk_status check_ids(dlk_context *ctx, const char *op, const dlk_tensor *ids, int64_t vocab) {
  for (int64_t n = 0; n < dlk_tensor_numel(ids); n++) {
    int64_t v = dlk_load_index(ids->data, ids->dtype, at1(ids, n));
    if (v < 0 || v >= vocab)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: ids[%lld] = %lld is outside [0, %lld)", op,
                      (long long)n, (long long)v, (long long)vocab);
  }
  return DLK_OK;
}

dlk_status dlk_embedding_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws, (void)ws_bytes;
  const dlk_embedding_fwd_args *a = args;
  DLK_TRY(check_ids(ctx, "embedding_forward", &a->ids, a->table.shape[0]));
  /* out[n, :] = table[ids[n], :] (padding_idx only matters for the gradient). */
  for (int64_t n = 0; n < dlk_tensor_numel(&a->ids); n++) {
    int64_t v = dlk_load_index(a->ids.data, a->ids.dtype, at1(&a->ids, n));
    for (int64_t d = 0; d < a->table.shape[1]; d++)
      st(&a->out, at2(&a->out, n, d), ld(&a->table, at2(&a->table, v, d)));
  }
  return DLK_OK;
}

/* Workspace: a counting sort of the ids, (V + 1) row starts and N row numbers (int64). */
size_t dlk_embedding_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  (void)ctx;
  const dlk_embedding_bwd_args *a = args;
  /* Checked: V comes from dtable alone (which the dispatcher never runs when it is empty),
     so a count that does not fit asks for SIZE_MAX, which no arena grants. */
  int64_t n;
  if (__builtin_add_overflow(a->dtable.shape[0], 1, &n) ||
      __builtin_add_overflow(n, dlk_tensor_numel(&a->ids), &n) ||
      dlk_mul_overflows(n, (int64_t)sizeof(int64_t), &n) || (uint64_t)n > SIZE_MAX)
    return SIZE_MAX;
  return (size_t)n;
}

dlk_status dlk_embedding_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ws_bytes;
  const dlk_embedding_bwd_args *a = args;
  const int64_t vocab = a->dtable.shape[0], dim = a->dtable.shape[1], n_ids = dlk_tensor_numel(&a->ids);
  DLK_TRY(check_ids(ctx, "embedding_backward", &a->ids, vocab));
  /* Group the rows of dout by id (counting sort, stable: ascending n within an id), so
     dtable[v, :] = sum over n with ids[n] == v of dout[n, :] is summed in a fixed order,
     in double, and rounded once. Rows with id padding_idx contribute nothing. */
  int64_t *start = ws, *order = start + vocab + 1;
  memset(start, 0, (size_t)(vocab + 1) * sizeof *start);
  for (int64_t n = 0; n < n_ids; n++) start[dlk_load_index(a->ids.data, a->ids.dtype, at1(&a->ids, n)) + 1]++;
  for (int64_t v = 0; v < vocab; v++) start[v + 1] += start[v];
  for (int64_t n = 0; n < n_ids; n++) {
    int64_t v = dlk_load_index(a->ids.data, a->ids.dtype, at1(&a->ids, n));
    order[start[v]++] = n;
  }
  /* start[v] now holds the end of id v's run; its beginning is the end of v - 1's. */
  for (int64_t v = 0; v < vocab; v++) {
    int64_t lo = v ? start[v - 1] : 0, hi = start[v];
    for (int64_t d = 0; d < dim; d++) {
      double acc = 0.0;
      if (v != a->padding_idx)
        for (int64_t r = lo; r < hi; r++) acc += ld(&a->dout, at2(&a->dout, order[r], d));
      st(&a->dtable, at2(&a->dtable, v, d), acc);
    }
  }
  return DLK_OK;
}

/* ---- layer norm over the last dim ---- */

dlk_status dlk_layernorm_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_layernorm_fwd_args *a = args;
  const int64_t dim = ncols(&a->x);
  for (int64_t i = 0; i < nrows(&a->x); i++) {
    /* mean = sum x / D; var = sum (x - mean)^2 / D (biased); rstd = 1 / sqrt(var + eps);
       y = (x - mean) rstd gamma + beta. */
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < dim; j++) mean += ld(&a->x, at2(&a->x, i, j));
    mean /= (double)dim;
    for (int64_t j = 0; j < dim; j++) {
      double d = ld(&a->x, at2(&a->x, i, j)) - mean;
      var += d * d;
    }
    var /= (double)dim;
    double rstd = 1.0 / sqrt(var + a->eps);
    for (int64_t j = 0; j < dim; j++) {
      double y = (ld(&a->x, at2(&a->x, i, j)) - mean) * rstd;
      if (a->has_gamma) y *= ld(&a->gamma, j * a->gamma.strides[0]);
      if (a->has_beta) y += ld(&a->beta, j * a->beta.strides[0]);
      st(&a->y, at2(&a->y, i, j), y);
    }
    if (a->has_mean) st(&a->mean, at1(&a->mean, i), mean);
    if (a->has_rstd) st(&a->rstd, at1(&a->rstd, i), rstd);
  }
  return DLK_OK;
}

dlk_status dlk_layernorm_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_layernorm_bwd_args *a = args;
  const int64_t rows = nrows(&a->x), dim = ncols(&a->x);
  /* With xhat = (x - mean) rstd and g = dy gamma:
       dx = rstd (g - mean_j(g) - xhat mean_j(g xhat)),
       dgamma = sum_rows dy xhat, dbeta = sum_rows dy. */
  if (a->has_dx) {
    for (int64_t i = 0; i < rows; i++) {
      double mean = ld(&a->mean, at1(&a->mean, i)), rstd = ld(&a->rstd, at1(&a->rstd, i));
      double mg = 0.0, mgx = 0.0;
      for (int64_t j = 0; j < dim; j++) {
        double xhat = (ld(&a->x, at2(&a->x, i, j)) - mean) * rstd;
        double g = ld(&a->dy, at2(&a->dy, i, j)) * (a->has_gamma ? ld(&a->gamma, j * a->gamma.strides[0]) : 1.0);
        mg += g;
        mgx += g * xhat;
      }
      mg /= (double)dim;
      mgx /= (double)dim;
      for (int64_t j = 0; j < dim; j++) {
        double xhat = (ld(&a->x, at2(&a->x, i, j)) - mean) * rstd;
        double g = ld(&a->dy, at2(&a->dy, i, j)) * (a->has_gamma ? ld(&a->gamma, j * a->gamma.strides[0]) : 1.0);
        st(&a->dx, at2(&a->dx, i, j), rstd * (g - mg - xhat * mgx));
      }
    }
  }
  if (a->has_dgamma || a->has_dbeta) {
    for (int64_t j = 0; j < dim; j++) {
      double dgamma = 0.0, dbeta = 0.0;
      for (int64_t i = 0; i < rows; i++) {
        double mean = ld(&a->mean, at1(&a->mean, i)), rstd = ld(&a->rstd, at1(&a->rstd, i));
        double dy = ld(&a->dy, at2(&a->dy, i, j));
        dgamma += dy * (ld(&a->x, at2(&a->x, i, j)) - mean) * rstd;
        dbeta += dy;
      }
      if (a->has_dgamma) st(&a->dgamma, j * a->dgamma.strides[0], dgamma);
      if (a->has_dbeta) st(&a->dbeta, j * a->dbeta.strides[0], dbeta);
    }
  }
  return DLK_OK;
}

/* The public mask function (include/dlk.h), defined here with the reference that is its
   spec: u(seed, counter) = top 53 bits of dlk_mix64(seed, counter) / 2^53, in [0, 1). */
double dlk_dropout_uniform(uint64_t seed, uint64_t counter) {
  return (double)(dlk_mix64(seed, counter) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- dropout: y_i = x_i / (1 - p) when u(seed, offset + i) >= p, else 0 ---- */

dlk_status dlk_dropout_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_dropout_args *a = args;
  const double scale = 1.0 / (1.0 - a->prob);
  const int64_t n = dlk_tensor_numel(&a->x);
  for (int64_t i = 0; i < n; i++) {
    /* i is the row-major index, so the mask does not depend on strides or variant. */
    bool keep = dlk_dropout_uniform(a->seed, a->offset + (uint64_t)i) >= a->prob;
    st(&a->y, dlk_offset_of(&a->y, i), keep ? ld(&a->x, dlk_offset_of(&a->x, i)) * scale : 0.0);
  }
  return DLK_OK;
}

/* ---- optimizers, as torch.optim (single-tensor, non-fused) ---- */

dlk_status dlk_sgd_step_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_sgd_step_args *a = args;
  const dlk_sgd_params *p = &a->p;
  const int64_t n = dlk_tensor_numel(&a->param);
  for (int64_t i = 0; i < n; i++) {
    double w = ld(&a->param, at1(&a->param, i)), d = ld(&a->grad, at1(&a->grad, i));
    d += p->weight_decay * w; /* d = g + wd w */
    if (a->has_buf) {
      /* buf = d on the first step, else momentum buf + (1 - dampening) d */
      double buf = a->first_step ? d : p->momentum * ld(&a->buf, at1(&a->buf, i)) + (1.0 - p->dampening) * d;
      st(&a->buf, at1(&a->buf, i), buf);
      d = p->nesterov ? d + p->momentum * buf : buf;
    }
    st(&a->param, at1(&a->param, i), w - p->lr * d);
  }
  return DLK_OK;
}

dlk_status dlk_adam_step_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_adam_step_args *a = args;
  const dlk_adam_params *p = &a->p;
  const int64_t n = dlk_tensor_numel(&a->param);
  /* bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t */
  const double t = (double)p->step;
  const double bc1 = 1.0 - pow(p->beta1, t), bc2 = 1.0 - pow(p->beta2, t);
  for (int64_t i = 0; i < n; i++) {
    double w = ld(&a->param, at1(&a->param, i)), g = ld(&a->grad, at1(&a->grad, i));
    if (p->adamw)
      w *= 1.0 - p->lr * p->weight_decay; /* decoupled: w <- w (1 - lr wd) */
    else
      g += p->weight_decay * w; /* L2: g <- g + wd w */
    double m = ld(&a->m, at1(&a->m, i)), v = ld(&a->v, at1(&a->v, i));
    m += (1.0 - p->beta1) * (g - m); /* m <- lerp(m, g, 1 - beta1) */
    v = p->beta2 * v + (1.0 - p->beta2) * g * g;
    /* w <- w - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps) */
    w -= p->lr / bc1 * m / (sqrt(v) / sqrt(bc2) + p->eps);
    st(&a->m, at1(&a->m, i), m);
    st(&a->v, at1(&a->v, i), v);
    st(&a->param, at1(&a->param, i), w);
  }
  return DLK_OK;
}

dlk_status dlk_adagrad_step_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  (void)ctx, (void)ws, (void)ws_bytes;
  const dlk_adagrad_step_args *a = args;
  const dlk_adagrad_params *p = &a->p;
  const int64_t n = dlk_tensor_numel(&a->param);
  /* clr = lr / (1 + (t - 1) lr_decay); sum += g^2; w -= clr g / (sqrt(sum) + eps) */
  const double clr = p->lr / (1.0 + (double)(p->step - 1) * p->lr_decay);
  for (int64_t i = 0; i < n; i++) {
    double w = ld(&a->param, at1(&a->param, i)), g = ld(&a->grad, at1(&a->grad, i));
    g += p->weight_decay * w;
    double s = ld(&a->sum, at1(&a->sum, i)) + g * g;
    st(&a->sum, at1(&a->sum, i), s);
    st(&a->param, at1(&a->param, i), w - clr * g / (sqrt(s) + p->eps));
  }
  return DLK_OK;
}
