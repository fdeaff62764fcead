/*
 * attention family, variant 0 of every op: the CPU reference. This is the spec the GPU
 * variants are tested against, so it is written for clarity, not speed: loops over element
 * offsets (any strides), every float dtype read as double through dlk_load, all math in
 * double, each result rounded once to the output dtype by dlk_store.
 *
 * host/attention/attention.c has already checked every argument (devices, dtypes, shapes,
 * overlaps) and normalised the tensors (host/attention/attention.h). What is left here is
 * the check that needs the data: the lengths' range, done before anything is written.
 *
 * Sections: scaled-dot-product attention first; additive and Luong attention below it.
 */
#include <math.h>
#include <string.h>

#include "../core/half.h"
#include "attention.h"

static inline double ld(const dlk_tensor *t, int64_t off) {
  return dlk_load(t->data, t->dtype, off);
}
static inline void st(const dlk_tensor *t, int64_t off, double v) {
  dlk_store(t->data, t->dtype, off, v);
}
/* Offset of [a, b, c, d] of a 4-D view and of [a, b, c] of a 3-D one. */
static inline int64_t at4(const dlk_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
  return a * t->strides[0] + b * t->strides[1] + c * t->strides[2] + d * t->strides[3];
}
static inline int64_t at3(const dlk_tensor *t, int64_t a, int64_t b, int64_t c) {
  return a * t->strides[0] + b * t->strides[1] + c * t->strides[2];
}

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

/* Every length in [1, T]; checked before anything is written. */
static dlk_status sdpa_check_lengths(dlk_context *ctx, const char *op, const dlk_sdpa_problem *p) {
  for (int side = 0; side < 2; side++) {
    const bool has = side ? p->has_k_lengths : p->has_q_lengths;
    const dlk_tensor *t = side ? &p->k_lengths : &p->q_lengths;
    const int64_t full = side ? p->Tk : p->Tq;
    if (!has) continue;
    for (int64_t b = 0; b < p->B; b++) {
      int64_t len = dlk_sdpa_len(true, t, b, full);
      if (len < 1 || len > full)
        return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: %s[%lld] = %lld is outside [1, %lld] (%s)",
                        op, side ? "k_lengths" : "q_lengths", (long long)b, (long long)len,
                        (long long)full, side ? "Tk" : "Tq");
    }
  }
  return DLK_OK;
}

/* z_ij of the dropout: 1 / (1 - dropout) when the weight (b, h, i, j) is kept, else 0.
   The counter is the row-major index into the [B, Hq, Tq, Tk] weights. */
static double sdpa_keep(const dlk_sdpa_problem *p, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (p->dropout == 0.0) return 1.0;
  uint64_t idx = (((uint64_t)b * (uint64_t)p->Hq + (uint64_t)h) * (uint64_t)p->Tq + (uint64_t)i) *
                     (uint64_t)p->Tk +
                 (uint64_t)j;
  return dlk_dropout_uniform(p->seed, p->offset + idx) >= p->dropout ? 1.0 / (1.0 - p->dropout)
                                                                     : 0.0;
}

/* The scores of row (b, h, i) into s[0, Tk): s_j = scale q_i . k_j + bias_ij where key j
   is visible (j < kl, and j <= i + kl - ql when causal), -inf elsewhere. The caller has
   checked i < ql. Returns max_j s_j (-inf when nothing is visible). */
static double sdpa_row_scores(const dlk_sdpa_problem *p, int64_t b, int64_t h, int64_t i,
                              int64_t ql, int64_t kl, double *s) {
  const int64_t hk = h / (p->Hq / p->Hk);
  double m = -INFINITY;
  for (int64_t j = 0; j < p->Tk; j++) {
    s[j] = -INFINITY;
    if (j >= kl || (p->causal && j > i + kl - ql)) continue;
    double dot = 0.0;
    for (int64_t d = 0; d < p->D; d++)
      dot += ld(&p->q, at4(&p->q, b, h, i, d)) * ld(&p->k, at4(&p->k, b, hk, j, d));
    s[j] = p->scale * dot;
    if (p->has_bias) s[j] += ld(&p->bias, at4(&p->bias, b, h, i, j));
    m = fmax(m, s[j]);
  }
  return m;
}

/* Workspace: one row of scores. */
size_t dlk_sdpa_fwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_sdpa_fwd_args *a = args;
  return (size_t)(a->p.Tk > 0 ? a->p.Tk : 1) * sizeof(double);
}

dlk_status dlk_sdpa_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                size_t ws_bytes) {
  (void)impl, (void)ws_bytes;
  const dlk_sdpa_fwd_args *a = args;
  const dlk_sdpa_problem *p = &a->p;
  DLK_TRY(sdpa_check_lengths(ctx, "sdpa_forward", p));
  double *s = ws;
  for (int64_t b = 0; b < p->B; b++) {
    const int64_t ql = dlk_sdpa_len(p->has_q_lengths, &p->q_lengths, b, p->Tq);
    const int64_t kl = dlk_sdpa_len(p->has_k_lengths, &p->k_lengths, b, p->Tk);
    for (int64_t h = 0; h < p->Hq; h++) {
      const int64_t hk = h / (p->Hq / p->Hk);
      for (int64_t i = 0; i < p->Tq; i++) {
        /* lse = m + log sum_j exp(s_j - m); p_j = exp(s_j - lse); out = sum_j p_j z_j v_j.
           A row with no visible key (i >= ql, or every score -inf) gets out 0, lse -inf. */
        const double m = i < ql ? sdpa_row_scores(p, b, h, i, ql, kl, s) : -INFINITY;
        double lse = -INFINITY;
        if (m != -INFINITY) {
          double sum = 0.0;
          for (int64_t j = 0; j < p->Tk; j++) sum += exp(s[j] - m); /* exp(-inf) = 0 */
          lse = m + log(sum);
          for (int64_t j = 0; j < p->Tk; j++) s[j] = exp(s[j] - lse) * sdpa_keep(p, b, h, i, j);
        }
        for (int64_t d = 0; d < p->Dv; d++) {
          double acc = 0.0;
          if (m != -INFINITY)
            for (int64_t j = 0; j < p->Tk; j++)
              if (s[j] != 0.0) acc += s[j] * ld(&p->v, at4(&p->v, b, hk, j, d));
          st(&a->out, at4(&a->out, b, h, i, d), acc);
        }
        if (a->has_lse) st(&a->lse, at3(&a->lse, b, h, i), lse);
      }
    }
  }
  return DLK_OK;
}

/* The dense f64 accumulators of the backward, in the workspace: dk [B, Hk, Tk, D] and
   dv [B, Hk, Tk, Dv] (each only when asked), dbias in dbias's own shape, then one row of
   scores [Tk], one row of dp [Tk] and one dq row [D]. */
typedef struct sdpa_bwd_ws_layout {
  size_t dk, dv, dbias, s, dp, dq, total; /* offsets in doubles */
} sdpa_bwd_ws_layout;

static sdpa_bwd_ws_layout sdpa_bwd_layout(const dlk_sdpa_bwd_args *a) {
  const dlk_sdpa_problem *p = &a->p;
  sdpa_bwd_ws_layout L;
  size_t n = 0;
  L.dk = n;
  if (a->has_dk) n += (size_t)(p->B * p->Hk * p->Tk * p->D);
  L.dv = n;
  if (a->has_dv) n += (size_t)(p->B * p->Hk * p->Tk * p->Dv);
  L.dbias = n;
  if (a->has_dbias) n += (size_t)dlk_tensor_numel(&a->dbias);
  L.s = n;
  n += (size_t)p->Tk;
  L.dp = n;
  n += (size_t)p->Tk;
  L.dq = n;
  n += (size_t)p->D;
  L.total = n + 1;
  return L;
}

size_t dlk_sdpa_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  return sdpa_bwd_layout(args).total * sizeof(double);
}

/* Index of (b, h, i, j) in the dense dbias accumulator: each dim of size 1 in dbias is
   summed over (coordinate 0). */
static int64_t sdpa_dbias_index(const dlk_tensor *db, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t c[4] = {b, h, i, j};
  int64_t idx = 0;
  for (int k = 0; k < 4; k++) idx = idx * db->shape[k] + (db->shape[k] == 1 ? 0 : c[k]);
  return idx;
}

dlk_status dlk_sdpa_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                size_t ws_bytes) {
  (void)impl, (void)ws_bytes;
  const dlk_sdpa_bwd_args *a = args;
  const dlk_sdpa_problem *p = &a->p;
  DLK_TRY(sdpa_check_lengths(ctx, "sdpa_backward", p));
  const sdpa_bwd_ws_layout L = sdpa_bwd_layout(a);
  double *w = ws;
  memset(w, 0, L.total * sizeof(double));
  double *dk = w + L.dk, *dv = w + L.dv, *dbias = w + L.dbias, *s = w + L.s, *dp = w + L.dp,
         *dq = w + L.dq;
  const int64_t D = p->D, Dv = p->Dv, Tk = p->Tk;
  for (int64_t b = 0; b < p->B; b++) {
    const int64_t ql = dlk_sdpa_len(p->has_q_lengths, &p->q_lengths, b, p->Tq);
    const int64_t kl = dlk_sdpa_len(p->has_k_lengths, &p->k_lengths, b, Tk);
    for (int64_t h = 0; h < p->Hq; h++) {
      const int64_t hk = h / (p->Hq / p->Hk);
      for (int64_t i = 0; i < p->Tq; i++) {
        for (int64_t d = 0; d < D; d++) dq[d] = 0.0;
        const double lse = i < ql ? ld(&a->lse, at3(&a->lse, b, h, i)) : -INFINITY;
        if (lse != -INFINITY) {
          sdpa_row_scores(p, b, h, i, ql, kl, s);
          /* p_j = exp(s_j - lse) (0 where s_j is -inf: no contribution anywhere);
             dp_j = z_j dout_i . v_j; delta = sum_j p_j dp_j, the exact value of
             dout_i . out_i (the fast variants use the out they are given) */
          double delta = 0.0;
          for (int64_t j = 0; j < Tk; j++) {
            dp[j] = 0.0;
            if (s[j] == -INFINITY) continue;
            s[j] = exp(s[j] - lse);
            const double z = sdpa_keep(p, b, h, i, j);
            if (z == 0.0) continue;
            double dov = 0.0;
            for (int64_t d = 0; d < Dv; d++)
              dov += ld(&a->dout, at4(&a->dout, b, h, i, d)) * ld(&p->v, at4(&p->v, b, hk, j, d));
            dp[j] = z * dov;
            delta += s[j] * dp[j];
          }
          for (int64_t j = 0; j < Tk; j++) {
            if (s[j] == -INFINITY) continue;
            /* ds = p (dp - delta); dq += scale ds k_j; dk_j += scale ds q_i;
               dv_j += p z dout_i; dbias_ij += ds */
            const double pij = s[j], ds = pij * (dp[j] - delta);
            for (int64_t d = 0; d < D; d++)
              dq[d] += p->scale * ds * ld(&p->k, at4(&p->k, b, hk, j, d));
            if (a->has_dk)
              for (int64_t d = 0; d < D; d++)
                dk[((b * p->Hk + hk) * Tk + j) * D + d] +=
                    p->scale * ds * ld(&p->q, at4(&p->q, b, h, i, d));
            const double z = sdpa_keep(p, b, h, i, j);
            if (a->has_dv && z != 0.0)
              for (int64_t d = 0; d < Dv; d++)
                dv[((b * p->Hk + hk) * Tk + j) * Dv + d] +=
                    pij * z * ld(&a->dout, at4(&a->dout, b, h, i, d));
            if (a->has_dbias) dbias[sdpa_dbias_index(&a->dbias, b, h, i, j)] += ds;
          }
        }
        if (a->has_dq)
          for (int64_t d = 0; d < D; d++) st(&a->dq, at4(&a->dq, b, h, i, d), dq[d]);
      }
    }
  }
  for (int64_t b = 0; b < p->B; b++)
    for (int64_t hk = 0; hk < p->Hk; hk++)
      for (int64_t j = 0; j < Tk; j++) {
        if (a->has_dk)
          for (int64_t d = 0; d < D; d++)
            st(&a->dk, at4(&a->dk, b, hk, j, d), dk[((b * p->Hk + hk) * Tk + j) * D + d]);
        if (a->has_dv)
          for (int64_t d = 0; d < Dv; d++)
            st(&a->dv, at4(&a->dv, b, hk, j, d), dv[((b * p->Hk + hk) * Tk + j) * Dv + d]);
      }
  if (a->has_dbias) {
    const dlk_tensor *db = &a->dbias;
    int64_t idx = 0;
    for (int64_t b = 0; b < db->shape[0]; b++)
      for (int64_t h = 0; h < db->shape[1]; h++)
        for (int64_t i = 0; i < db->shape[2]; i++)
          for (int64_t j = 0; j < db->shape[3]; j++) st(db, at4(db, b, h, i, j), dbias[idx++]);
  }
  return DLK_OK;
}

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention                                                */
/* ====================================================================================== */

/* Offset of [a, b, c] of a 3-D view, [a, b] of a 2-D one. */
static inline int64_t at2(const dlk_tensor *t, int64_t a, int64_t b) {
  return a * t->strides[0] + b * t->strides[1];
}

/* Every length in [1, Te]; checked before anything is written. */
static dlk_status attn_check_lengths(dlk_context *ctx, const char *op, const dlk_attn_problem *p) {
  if (!p->has_lengths) return DLK_OK;
  for (int64_t b = 0; b < p->B; b++) {
    const int64_t len = dlk_attn_len(p, b);
    if (len < 1 || len > p->Te)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                      "%s: enc_lengths[%lld] = %lld is outside [1, %lld] (Te)", op, (long long)b,
                      (long long)len, (long long)p->Te);
  }
  return DLK_OK;
}

/* The projections in f64 (doubles in the workspace), on visible encoder steps only:
     ADDITIVE  P[b,j,a] = sum_h enc[b,j,h] wp[h,a]  (j < len)   Q[b,i,a] = sum_h dec[b,i,h] wq[h,a]
     GENERAL   Q[b,i,k] = sum_h dec[b,i,h] wp[h,k]              (the query side: dec w)
   P is [B, Te, A] and Q [B, Td, Q cols] row-major; DOT has neither. */
static int64_t attn_q_cols(const dlk_attn_problem *p) {
  return p->kind == DLK_ATTN_ADDITIVE ? p->A : p->kind == DLK_ATTN_GENERAL ? p->He : 0;
}
static size_t attn_p_count(const dlk_attn_problem *p) {
  return p->kind == DLK_ATTN_ADDITIVE ? (size_t)(p->B * p->Te * p->A) : 0;
}
static size_t attn_q_count(const dlk_attn_problem *p) {
  return (size_t)(p->B * p->Td * attn_q_cols(p));
}

static void attn_project(const dlk_attn_problem *p, double *P, double *Q) {
  const int64_t qc = attn_q_cols(p);
  for (int64_t b = 0; b < p->B; b++) {
    if (p->kind == DLK_ATTN_ADDITIVE) {
      const int64_t len = dlk_attn_len(p, b);
      for (int64_t j = 0; j < len; j++)
        for (int64_t a = 0; a < p->A; a++) {
          double s = 0.0;
          for (int64_t h = 0; h < p->He; h++)
            s += ld(&p->enc, at3(&p->enc, b, j, h)) * ld(&p->wp, at2(&p->wp, h, a));
          P[(b * p->Te + j) * p->A + a] = s;
        }
    }
    const dlk_tensor *wq = p->kind == DLK_ATTN_ADDITIVE ? &p->wq : &p->wp;
    for (int64_t i = 0; i < p->Td; i++)
      for (int64_t a = 0; a < qc; a++) {
        double s = 0.0;
        for (int64_t h = 0; h < p->Hd; h++)
          s += ld(&p->dec, at3(&p->dec, b, i, h)) * ld(wq, at2(wq, h, a));
        Q[(b * p->Td + i) * qc + a] = s;
      }
  }
}

/* The score e[b,i,j] (j visible). */
static double attn_score(const dlk_attn_problem *p, const double *P, const double *Q, int64_t b,
                         int64_t i, int64_t j) {
  double e = 0.0;
  switch (p->kind) {
    case DLK_ATTN_ADDITIVE: /* v . tanh(P_j + Q_i) */
      for (int64_t a = 0; a < p->A; a++)
        e += ld(&p->v, a * p->v.strides[0]) *
             tanh(P[(b * p->Te + j) * p->A + a] + Q[(b * p->Td + i) * p->A + a]);
      break;
    case DLK_ATTN_DOT: /* dec_i . enc_j */
      for (int64_t h = 0; h < p->He; h++)
        e += ld(&p->dec, at3(&p->dec, b, i, h)) * ld(&p->enc, at3(&p->enc, b, j, h));
      break;
    case DLK_ATTN_GENERAL: /* (dec_i w) . enc_j */
      for (int64_t h = 0; h < p->He; h++)
        e += Q[(b * p->Td + i) * p->He + h] * ld(&p->enc, at3(&p->enc, b, j, h));
      break;
  }
  return e;
}

/* Workspace (doubles): P, Q, one row of scores [Te]. */
size_t dlk_attn_fwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  const dlk_attn_problem *p = &((const dlk_attn_fwd_args *)args)->p;
  return (attn_p_count(p) + attn_q_count(p) + (size_t)p->Te + 1) * sizeof(double);
}

dlk_status dlk_attn_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                size_t ws_bytes) {
  (void)impl, (void)ws_bytes;
  const dlk_attn_fwd_args *a = args;
  const dlk_attn_problem *p = &a->p;
  DLK_TRY(attn_check_lengths(ctx, p->fn, p));
  double *P = ws, *Q = P + attn_p_count(p), *e = Q + attn_q_count(p);
  attn_project(p, P, Q);
  for (int64_t b = 0; b < p->B; b++) {
    const int64_t len = dlk_attn_len(p, b);
    for (int64_t i = 0; i < p->Td; i++) {
      /* alpha_j = exp(e_j - m) / sum_{j' < len} exp(e_j' - m), m = max_j e_j */
      double m = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < len; j++) {
        e[j] = attn_score(p, P, Q, b, i, j);
        m = fmax(m, e[j]);
      }
      for (int64_t j = 0; j < len; j++) sum += exp(e[j] - m);
      for (int64_t j = 0; j < p->Te; j++) {
        e[j] = j < len ? exp(e[j] - m) / sum : 0.0;
        st(&a->weights, at3(&a->weights, b, i, j), e[j]);
      }
      /* context_i = sum_{j < len} alpha_j enc_j */
      for (int64_t h = 0; h < p->He; h++) {
        double c = 0.0;
        for (int64_t j = 0; j < len; j++) c += e[j] * ld(&p->enc, at3(&p->enc, b, j, h));
        st(&a->context, at3(&a->context, b, i, h), c);
      }
    }
  }
  return DLK_OK;
}

/* The backward's f64 accumulators in the workspace, each dense row-major: P, Q as the
   forward's; dP [B, Te, A] and dQ [B, Td, Q cols] (DOT: dQ is ddec, [B, Td, Hd]); denc
   [B, Te, He]; dv [A]; one row of dalpha and one of de [Te]. */
typedef struct attn_bwd_ws_layout {
  size_t P, Q, dP, dQ, denc, dv, dalpha, de, total; /* offsets in doubles */
} attn_bwd_ws_layout;

static attn_bwd_ws_layout attn_bwd_layout(const dlk_attn_problem *p) {
  attn_bwd_ws_layout L;
  size_t n = 0;
  L.P = n, n += attn_p_count(p);
  L.Q = n, n += attn_q_count(p);
  L.dP = n, n += attn_p_count(p);
  L.dQ = n, n += p->kind == DLK_ATTN_DOT ? (size_t)(p->B * p->Td * p->Hd) : attn_q_count(p);
  L.denc = n, n += (size_t)(p->B * p->Te * p->He);
  L.dv = n, n += (size_t)p->A;
  L.dalpha = n, n += (size_t)p->Te;
  L.de = n, n += (size_t)p->Te;
  L.total = n + 1;
  return L;
}

size_t dlk_attn_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx, (void)impl;
  return attn_bwd_layout(&((const dlk_attn_bwd_args *)args)->p).total * sizeof(double);
}

dlk_status dlk_attn_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                size_t ws_bytes) {
  (void)impl, (void)ws_bytes;
  const dlk_attn_bwd_args *a = args;
  const dlk_attn_problem *p = &a->p;
  DLK_TRY(attn_check_lengths(ctx, p->fn, p));
  const attn_bwd_ws_layout L = attn_bwd_layout(p);
  double *w = ws;
  memset(w, 0, L.total * sizeof(double));
  double *P = w + L.P, *Q = w + L.Q, *dP = w + L.dP, *dQ = w + L.dQ, *denc = w + L.denc,
         *dv = w + L.dv, *dalpha = w + L.dalpha, *de = w + L.de;
  const int64_t B = p->B, Te = p->Te, Td = p->Td, He = p->He, Hd = p->Hd, A = p->A;
  const int64_t qc = p->kind == DLK_ATTN_DOT ? Hd : attn_q_cols(p);
  attn_project(p, P, Q);
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = dlk_attn_len(p, b);
    for (int64_t i = 0; i < Td; i++) {
      /* dalpha_j = dweights_ij + dcontext_i . enc_j; de_j = alpha_j (dalpha_j - sum alpha dalpha)
       */
      double dot = 0.0;
      for (int64_t j = 0; j < len; j++) {
        double g = a->has_dweights ? ld(&a->dweights, at3(&a->dweights, b, i, j)) : 0.0;
        if (a->has_dcontext)
          for (int64_t h = 0; h < He; h++)
            g += ld(&a->dcontext, at3(&a->dcontext, b, i, h)) * ld(&p->enc, at3(&p->enc, b, j, h));
        dalpha[j] = g;
        dot += ld(&a->weights, at3(&a->weights, b, i, j)) * g;
      }
      for (int64_t j = 0; j < len; j++) {
        const double alpha = ld(&a->weights, at3(&a->weights, b, i, j));
        de[j] = alpha * (dalpha[j] - dot);
        /* context's own path: denc_j += alpha_j dcontext_i */
        if (a->has_dcontext)
          for (int64_t h = 0; h < He; h++)
            denc[(b * Te + j) * He + h] += alpha * ld(&a->dcontext, at3(&a->dcontext, b, i, h));
      }
      /* the score's path */
      for (int64_t j = 0; j < len; j++) {
        switch (p->kind) {
          case DLK_ATTN_ADDITIVE: /* dZ = de v (1 - H^2), H = tanh(P_j + Q_i); dv += de H */
            for (int64_t x = 0; x < A; x++) {
              const double H = tanh(P[(b * Te + j) * A + x] + Q[(b * Td + i) * A + x]);
              const double dz = de[j] * ld(&p->v, x * p->v.strides[0]) * (1.0 - H * H);
              dP[(b * Te + j) * A + x] += dz;
              dQ[(b * Td + i) * A + x] += dz;
              dv[x] += de[j] * H;
            }
            break;
          case DLK_ATTN_DOT: /* e = dec_i . enc_j: denc_j += de dec_i; ddec_i += de enc_j */
            for (int64_t h = 0; h < He; h++) {
              denc[(b * Te + j) * He + h] += de[j] * ld(&p->dec, at3(&p->dec, b, i, h));
              dQ[(b * Td + i) * Hd + h] += de[j] * ld(&p->enc, at3(&p->enc, b, j, h));
            }
            break;
          case DLK_ATTN_GENERAL: /* e = Q_i . enc_j: denc_j += de Q_i; dQ_i += de enc_j */
            for (int64_t h = 0; h < He; h++) {
              denc[(b * Te + j) * He + h] += de[j] * Q[(b * Td + i) * He + h];
              dQ[(b * Td + i) * He + h] += de[j] * ld(&p->enc, at3(&p->enc, b, j, h));
            }
            break;
        }
      }
    }
  }
  /* Through the projections. ADDITIVE: denc_j += wp dP_j, ddec_i = wq dQ_i,
     dwp = sum enc_j^T dP_j, dwq = sum dec_i^T dQ_i. GENERAL: ddec_i = wp dQ_i,
     dwp = sum dec_i^T dQ_i. DOT: ddec = dQ. */
  const dlk_tensor *wdec = p->kind == DLK_ATTN_ADDITIVE ? &p->wq : &p->wp;
  if (p->kind == DLK_ATTN_ADDITIVE && a->has_denc)
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < dlk_attn_len(p, b); j++)
        for (int64_t h = 0; h < He; h++) {
          double s = 0.0;
          for (int64_t x = 0; x < A; x++)
            s += ld(&p->wp, at2(&p->wp, h, x)) * dP[(b * Te + j) * A + x];
          denc[(b * Te + j) * He + h] += s;
        }
  if (a->has_denc)
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < Te; j++)
        for (int64_t h = 0; h < He; h++)
          st(&a->denc, at3(&a->denc, b, j, h), denc[(b * Te + j) * He + h]);
  if (a->has_ddec)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < Td; i++)
        for (int64_t h = 0; h < Hd; h++) {
          double s = 0.0;
          if (p->kind == DLK_ATTN_DOT) {
            s = dQ[(b * Td + i) * Hd + h];
          } else {
            for (int64_t x = 0; x < qc; x++)
              s += ld(wdec, at2(wdec, h, x)) * dQ[(b * Td + i) * qc + x];
          }
          st(&a->ddec, at3(&a->ddec, b, i, h), s);
        }
  if (p->kind == DLK_ATTN_ADDITIVE && a->has_dwp)
    for (int64_t h = 0; h < He; h++)
      for (int64_t x = 0; x < A; x++) {
        double s = 0.0;
        for (int64_t b = 0; b < B; b++)
          for (int64_t j = 0; j < dlk_attn_len(p, b); j++)
            s += ld(&p->enc, at3(&p->enc, b, j, h)) * dP[(b * Te + j) * A + x];
        st(&a->dwp, at2(&a->dwp, h, x), s);
      }
  /* the query-side weight: ADDITIVE's dwq [Hd, A], GENERAL's dwp [Hd, He] */
  const dlk_tensor *dwdec = p->kind == DLK_ATTN_ADDITIVE  ? (a->has_dwq ? &a->dwq : NULL)
                            : p->kind == DLK_ATTN_GENERAL ? (a->has_dwp ? &a->dwp : NULL)
                                                          : NULL;
  if (dwdec)
    for (int64_t h = 0; h < Hd; h++)
      for (int64_t x = 0; x < qc; x++) {
        double s = 0.0;
        for (int64_t b = 0; b < B; b++)
          for (int64_t i = 0; i < Td; i++)
            s += ld(&p->dec, at3(&p->dec, b, i, h)) * dQ[(b * Td + i) * qc + x];
        st(dwdec, at2(dwdec, h, x), s);
      }
  if (a->has_dv)
    for (int64_t x = 0; x < A; x++) st(&a->dv, x * a->dv.strides[0], dv[x]);
  return DLK_OK;
}
