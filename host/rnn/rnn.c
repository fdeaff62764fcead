/*
 * rnn family: the public functions. Each one checks every argument (NULL pointers,
 * parameter values, dtypes, devices, every shape relation, output layouts and overlaps)
 * before anything is written, normalises the tensors into the op's record of
 * host/rnn/rnn.h (sequence tensors as time-major views), and hands the record to
 * dlk_dispatch. A bad call leaves every output, state and gradient untouched.
 *
 * Ops: rnn_cell_fwd, rnn_cell_bwd, rnn_fwd, rnn_bwd. The backwards accumulate weight
 * gradients, so they are never timed by the autotuner (their ops are not tunable).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/check.h"
#include "rnn.h"

#define N_OF(t) DLK_COUNT_OF(t)

/* ------------------------------------------------------------------------------------ */
/* Variant tables                                                                       */
/* ------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------ */
/* Shape keys                                                                           */
/* ------------------------------------------------------------------------------------ */

static const char *dt(const dlk_tensor *t) { return dlk_dtype_name(t->dtype); }
/* 1 when the last dim has unit stride and the rows are packed (row-major 2-D or 3-D). */
static int dense(const dlk_tensor *t) { return dlk_tensor_is_contiguous(t); }

static void cell_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_rnn_cell_fwd_args *a = args;
  snprintf(buf, n, "m%d_rb%d_b%lld_i%lld_h%lld_p%lld_%s_h%d_c%d_s%d_dense%d", (int)a->mode, a->reset_before,
           (long long)a->batch, (long long)a->input, (long long)a->hidden, (long long)a->state, dt(&a->x),
           a->has_h, a->has_c, a->has_saved, dense(&a->x) && dense(&a->h_out));
}

static void cell_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_rnn_cell_bwd_args *a = args;
  snprintf(buf, n, "m%d_rb%d_b%lld_i%lld_h%lld_p%lld_%s_dx%d_dh%d_dc%d_g%d%d%d%d%d", (int)a->mode,
           a->reset_before, (long long)a->batch, (long long)a->input, (long long)a->hidden,
           (long long)a->state, dt(&a->x), a->has_dx, a->has_dh, a->has_dc, a->g.has_w_ih, a->g.has_w_hh,
           a->g.has_b_ih, a->g.has_b_hh, a->g.has_w_hr);
}

static void fwd_key_into(const dlk_rnn_fwd_args *a, char *buf, size_t n) {
  snprintf(buf, n, "m%d_rb%d_t%lld_b%lld_i%lld_h%lld_p%lld_l%lld_d%lld_%s_len%d_tr%d_dr%d_x%d", (int)a->mode,
           a->reset_before, (long long)a->T, (long long)a->B, (long long)a->I, (long long)a->H,
           (long long)a->P, (long long)a->L, (long long)a->D, dt(&a->x), a->has_lengths, a->training,
           a->has_dropout, dense(&a->x) && dense(&a->y));
}
static void fwd_key(const void *args, char *buf, size_t n) { fwd_key_into(args, buf, n); }
static void bwd_key(const void *args, char *buf, size_t n) {
  const dlk_rnn_bwd_args *a = args;
  char k[DLK_KEY_LEN];
  fwd_key_into(&a->f, k, sizeof k);
  snprintf(buf, n, "%s_f%d_dx%d_w%d", k, a->format, a->has_dx, a->dweights != NULL);
}

/* ------------------------------------------------------------------------------------ */
/* The ops                                                                              */
/* ------------------------------------------------------------------------------------ */

/* The backward of cuDNN's forward needs cuDNN's reserve, the others read the dlk layout
   (the header says which wrote it); the backwards accumulate, so they are not tunable. */
static const dlk_variant cell_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: one row at a time in double", NULL, dlk_rnn_cell_fwd_cpu_workspace,
     dlk_rnn_cell_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "fused", DLK_CUDA, 1, "one launch: warp-per-unit gate GEMVs over 8 batch rows and the pointwise",
     dlk_rnn_cell_fwd_cuda_supports, dlk_rnn_cell_fwd_cuda_workspace, dlk_rnn_cell_fwd_cuda_run},
#endif
};
static const dlk_variant cell_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: one row at a time in double", NULL, dlk_rnn_cell_bwd_cpu_workspace,
     dlk_rnn_cell_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gemm", DLK_CUDA, 1, "pointwise backward kernel, GEMMs through the gemm dispatch",
     dlk_rnn_cell_bwd_cuda_supports, NULL, dlk_rnn_cell_bwd_cuda_run},
#endif
};
static const dlk_variant fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: cell by cell, layer by layer, in double", NULL,
     dlk_rnn_fwd_cpu_workspace, dlk_rnn_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gemm", DLK_CUDA, 1, "input projection as one GEMM, per step a recurrent GEMM and one fused gate kernel",
     dlk_rnn_fwd_cuda_supports, NULL, dlk_rnn_fwd_cuda_run},
    {2, "persistent", DLK_CUDA, 2,
     "input GEMM, then one persistent launch per layer: W_hh in shared memory, a grid barrier per step",
     dlk_rnn_fwd_cuda_supports, NULL, dlk_rnn_fwd_cuda_run},
    {3, "fused_b1", DLK_CUDA, 3, "batch-1 inference: one persistent launch per layer, input projection inside",
     dlk_rnn_fwd_cuda_supports, NULL, dlk_rnn_fwd_cuda_run},
#if DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN's RNN API (cudnnRNNForward), standard algorithm", dlk_rnn_fwd_cudnn_supports,
     dlk_rnn_fwd_cudnn_workspace, dlk_rnn_fwd_cudnn_run},
    {11, "cudnn_persist", DLK_CUDA, 1, "cudnnRNNForward with CUDNN_RNN_ALGO_PERSIST_STATIC where cuDNN takes the case",
     dlk_rnn_fwd_cudnn_supports, dlk_rnn_fwd_cudnn_workspace, dlk_rnn_fwd_cudnn_run},
#endif
#endif
};
static const dlk_variant bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: backward through time in double", dlk_rnn_bwd_cpu_supports,
     dlk_rnn_bwd_cpu_workspace, dlk_rnn_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "gemm", DLK_CUDA, 1, "per step the pointwise backward and the recurrent GEMM, per layer one GEMM each for dx, dW",
     dlk_rnn_bwd_cuda_supports, NULL, dlk_rnn_bwd_cuda_run},
#if DLK_HAVE_CUDNN
    {10, "cudnn", DLK_CUDA, 0, "cuDNN's RNN API (cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8)",
     dlk_rnn_bwd_cudnn_supports, dlk_rnn_bwd_cudnn_workspace, dlk_rnn_bwd_cudnn_run},
#endif
#endif
};

/* ---- outputs: every tensor a call writes (the dispatcher returns at once when all are
   empty) ---- */

/* The weight gradients asked for (accumulated, so listed: a present one is written,
   adding zero for an empty batch). They are never empty (H, I, P >= 1). */
static int list_grads(const dlk_rnn_gw *g, dlk_tensor *out, int max, int n) {
  if (g->has_w_ih) n = dlk_list_output(out, max, n, &g->w_ih);
  if (g->has_w_hh) n = dlk_list_output(out, max, n, &g->w_hh);
  if (g->has_b_ih) n = dlk_list_output(out, max, n, &g->b_ih);
  if (g->has_b_hh) n = dlk_list_output(out, max, n, &g->b_hh);
  if (g->has_w_hr) n = dlk_list_output(out, max, n, &g->w_hr);
  return n;
}

static int cell_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_rnn_cell_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->h_out);
  if (a->has_c_out) n = dlk_list_output(out, max, n, &a->c_out);
  if (a->has_saved) n = dlk_list_output(out, max, n, &a->saved);
  return n;
}

static int cell_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_rnn_cell_bwd_args *a = args;
  int n = 0;
  if (a->has_dx) n = dlk_list_output(out, max, n, &a->dx);
  if (a->has_dh) n = dlk_list_output(out, max, n, &a->dh);
  if (a->has_dc) n = dlk_list_output(out, max, n, &a->dc);
  return list_grads(&a->g, out, max, n);
}

/* y, the final states (written also when T = 0: h0 or zeros) and, training, the reserve
   (its header is written whatever T is). A batch of no sequence (B = 0) writes nothing:
   y and the states are empty, and its reserve is not listed (the backward of such a call
   reads none), so the dispatcher returns at once however long T is. */
static int fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_rnn_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->y);
  if (a->has_hn) n = dlk_list_output(out, max, n, &a->hn);
  if (a->has_cn) n = dlk_list_output(out, max, n, &a->cn);
  if (a->training && a->B > 0) n = dlk_list_output(out, max, n, &a->reserve);
  return n;
}

/* dx, dh0, dc0 and every weight gradient asked for (L*D sets: more than DLK_MAX_OUTPUTS
   for deep stacks, which the dispatcher reads as "not empty", as they are). With B = 0
   the gradients gain nothing (no sequence): not listed, so the call writes nothing. */
static int bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_rnn_bwd_args *b = args;
  int n = 0;
  if (b->has_dx) n = dlk_list_output(out, max, n, &b->dx);
  if (b->has_dh0) n = dlk_list_output(out, max, n, &b->dh0);
  if (b->has_dc0) n = dlk_list_output(out, max, n, &b->dc0);
  if (b->dweights && b->f.B > 0)
    for (int64_t k = 0; k < b->f.L * b->f.D; k++) {
      dlk_rnn_gw g;
      dlk_rnn_gw_from(&b->dweights[k], &g);
      n = list_grads(&g, out, max, n);
    }
  return n;
}

static const dlk_op cell_fwd_op = {"rnn_cell_fwd", cell_fwd_variants, DLK_COUNT_OF(cell_fwd_variants), cell_fwd_key,
                                   NULL, true, cell_fwd_outputs};
static const dlk_op cell_bwd_op = {"rnn_cell_bwd", cell_bwd_variants, DLK_COUNT_OF(cell_bwd_variants), cell_bwd_key,
                                   NULL, false, cell_bwd_outputs};
static const dlk_op fwd_op = {"rnn_fwd", fwd_variants, DLK_COUNT_OF(fwd_variants), fwd_key, NULL, true, fwd_outputs};
static const dlk_op bwd_op = {"rnn_bwd", bwd_variants, DLK_COUNT_OF(bwd_variants), bwd_key, NULL, false, bwd_outputs};

const dlk_op *const dlk_rnn_ops[] = {&cell_fwd_op, &cell_bwd_op, &fwd_op, &bwd_op, NULL};

int64_t dlk_rnn_cell_saved_cols(dlk_rnn_mode mode, int64_t hidden_size) {
  return dlk_rnn_saved_cols_of(mode, hidden_size);
}

/* ------------------------------------------------------------------------------------ */
/* Checks                                                                               */
/* ------------------------------------------------------------------------------------ */

static const char *mode_name(dlk_rnn_mode m) {
  switch (m) {
    case DLK_RNN_TANH: return "RNN_TANH";
    case DLK_RNN_RELU: return "RNN_RELU";
    case DLK_RNN_LSTM: return "LSTM";
    case DLK_RNN_GRU: return "GRU";
  }
  return "?";
}

static dlk_status check_mode(dlk_context *ctx, const char *op, dlk_rnn_mode mode, int reset_before) {
  if ((unsigned)mode > DLK_RNN_GRU)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: mode %d is not one of RNN_TANH, RNN_RELU, LSTM, GRU", op,
                    (int)mode);
  if (reset_before != 0 && reset_before != 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: gru_reset_before is %d, expected 0 or 1", op, reset_before);
  if (reset_before && mode != DLK_RNN_GRU)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: gru_reset_before is set but mode is %s (GRU only)", op,
                    mode_name(mode));
  return DLK_OK;
}

/* A well-formed tensor of dtype `want` (x's) on the context's device with `nd` dims. */
static dlk_status check_like(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                             dlk_dtype want, int nd) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  if (t->dtype != want)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s but x is %s", op, name, dt(t), dlk_dtype_name(want));
  if (t->ndim != nd)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d", op, name, t->ndim, nd);
  return DLK_OK;
}

/* Dim k of t equals want; `what` says where want comes from. */
static dlk_status check_dim(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t, int k,
                            int64_t want, const char *what) {
  if (t->shape[k] == want) return DLK_OK;
  return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %lld in dim %d, expected %lld (%s)", op, name,
                  (long long)t->shape[k], k, (long long)want, what);
}

/* A 2-D [r, c] tensor like x. */
static dlk_status check_mat(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t, dlk_dtype want,
                            int64_t r, const char *rwhat, int64_t c, const char *cwhat) {
  DLK_TRY(check_like(ctx, op, name, t, want, 2));
  DLK_TRY(check_dim(ctx, op, name, t, 0, r, rwhat));
  return check_dim(ctx, op, name, t, 1, c, cwhat);
}

static dlk_status check_3d(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t, dlk_dtype want,
                           int64_t d0, const char *w0, int64_t d1, const char *w1, int64_t d2, const char *w2) {
  DLK_TRY(check_like(ctx, op, name, t, want, 3));
  DLK_TRY(check_dim(ctx, op, name, t, 0, d0, w0));
  DLK_TRY(check_dim(ctx, op, name, t, 1, d1, w1));
  return check_dim(ctx, op, name, t, 2, d2, w2);
}

/* Named tensors for the overlap checks: every output against every input and every
   earlier output. The caller provides the storage (on the stack for cells, malloc'd for
   sequences, whose weight arrays may be long). */
typedef struct named {
  const char *name;
  const dlk_tensor *t;
} named;
typedef char tname[64];
typedef struct tlist {
  named *v;
  int n, cap;
  tname *names;
  int nn, ncap;
} tlist;
static void tl_add(tlist *l, const char *name, const dlk_tensor *t) {
  if (!t || l->n >= l->cap) return;
  l->v[l->n].name = name;
  l->v[l->n++].t = t;
}
/* "base[k].member", kept in the list's own storage. */
static const char *tl_name(tlist *l, const char *base, int64_t k, const char *member) {
  if (l->nn >= l->ncap) return base;
  char *s = l->names[l->nn++];
  snprintf(s, sizeof(tname), "%s[%lld].%s", base, (long long)k, member);
  return s;
}
/* A list for n weight sets plus `extra` single tensors, malloc'd; false when out of memory. */
static bool tl_alloc(tlist *l, int64_t n, int extra) {
  memset(l, 0, sizeof *l);
  l->cap = (int)(5 * n) + extra;
  l->ncap = (int)(5 * n);
  l->v = calloc((size_t)l->cap, sizeof *l->v);
  l->names = calloc((size_t)(l->ncap > 0 ? l->ncap : 1), sizeof *l->names);
  return l->v && l->names;
}
static void tl_free(tlist *l) {
  free(l->v);
  free(l->names);
  memset(l, 0, sizeof *l);
}
#define TL_STACK(var, n)                   \
  named var##_v[n];                        \
  tlist var = {var##_v, 0, n, NULL, 0, 0}

/* Each output: distinct elements, and no overlap with any input or earlier output. */
static dlk_status check_outputs(dlk_context *ctx, const char *op, const tlist *in, const tlist *out) {
  for (int i = 0; i < out->n; i++) {
    DLK_TRY(dlk_check_output(ctx, op, out->v[i].name, out->v[i].t));
    for (int j = 0; j < in->n; j++)
      if (dlk_tensors_overlap(out->v[i].t, in->v[j].t))
        return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s and %s overlap in memory", op, out->v[i].name,
                        in->v[j].name);
    for (int j = 0; j < i; j++)
      if (dlk_tensors_overlap(out->v[i].t, out->v[j].t))
        return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s and %s overlap in memory", op, out->v[i].name,
                        out->v[j].name);
  }
  return DLK_OK;
}

/* One layer and direction's weights: w_ih [G*H, I], w_hh [G*H, P], b_* [G*H], w_hr [P, H]
   (LSTM with a projection only). `pre` prefixes the names ("" or "weights[3]."). */
static dlk_status check_weights(dlk_context *ctx, const char *op, const char *pre, dlk_rnn_mode mode,
                                const dlk_rnn_weights *w, dlk_dtype dtype, int64_t I, const char *iwhat,
                                int64_t H, int64_t P, bool proj) {
  char n[64], what[96];
  const int64_t G = dlk_rnn_gates(mode), GH = G * H;
  snprintf(what, sizeof what, "%lld gates x hidden %lld", (long long)G, (long long)H);
  snprintf(n, sizeof n, "%sw_ih", pre);
  DLK_TRY(dlk_check_need(ctx, op, n, w->w_ih));
  DLK_TRY(check_mat(ctx, op, n, w->w_ih, dtype, GH, what, I, iwhat));
  snprintf(n, sizeof n, "%sw_hh", pre);
  DLK_TRY(dlk_check_need(ctx, op, n, w->w_hh));
  DLK_TRY(check_mat(ctx, op, n, w->w_hh, dtype, GH, what, P, proj ? "proj_size" : "hidden size"));
  const dlk_tensor *bs[2] = {w->b_ih, w->b_hh};
  static const char *const bn[2] = {"b_ih", "b_hh"};
  for (int i = 0; i < 2; i++) {
    if (!bs[i]) continue;
    snprintf(n, sizeof n, "%s%s", pre, bn[i]);
    DLK_TRY(check_like(ctx, op, n, bs[i], dtype, 1));
    DLK_TRY(check_dim(ctx, op, n, bs[i], 0, GH, what));
  }
  snprintf(n, sizeof n, "%sw_hr", pre);
  if (proj) {
    DLK_TRY(dlk_check_need(ctx, op, n, w->w_hr));
    DLK_TRY(check_mat(ctx, op, n, w->w_hr, dtype, P, "proj_size", H, "hidden size"));
  } else if (w->w_hr) {
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s is given but %s", op, n,
                    mode == DLK_RNN_LSTM ? "proj_size is 0" : "only an LSTM has a projection");
  }
  return DLK_OK;
}

/* Gradients of one layer and direction: each member NULL or the weight's shape; none for
   an absent weight. */
static dlk_status check_grads(dlk_context *ctx, const char *op, const char *pre, const dlk_rnn_weights *w,
                              const dlk_rnn_grads *g) {
  const dlk_tensor *ws[5] = {w->w_ih, w->w_hh, w->b_ih, w->b_hh, w->w_hr};
  const dlk_tensor *gs[5] = {g->w_ih, g->w_hh, g->b_ih, g->b_hh, g->w_hr};
  static const char *const names[5] = {"w_ih", "w_hh", "b_ih", "b_hh", "w_hr"};
  char n[64], wn[96];
  for (int i = 0; i < 5; i++) {
    if (!gs[i]) continue;
    snprintf(n, sizeof n, "%s%s", pre, names[i]);
    if (!ws[i])
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: gradient %s is given but the weight is NULL", op, n);
    snprintf(wn, sizeof wn, "gradient %s", n);
    DLK_TRY(check_like(ctx, op, wn, gs[i], ws[i]->dtype, ws[i]->ndim));
    for (int k = 0; k < ws[i]->ndim; k++) DLK_TRY(check_dim(ctx, op, wn, gs[i], k, ws[i]->shape[k], "the weight's shape"));
  }
  return DLK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Cells                                                                                */
/* ------------------------------------------------------------------------------------ */

/* x [B, I] and the weights: B, I, H, P, and the mode's checks. */
/* NULL cell params: torch.nn.RNNCell's default, a tanh RNN cell (include/dlk.h). */
static const dlk_rnn_cell_params cell_defaults = {DLK_RNN_TANH, 0};

static dlk_status check_cell_common(dlk_context *ctx, const char *op, const dlk_rnn_cell_params *p,
                                    const dlk_rnn_weights *w, const dlk_tensor *x, int64_t *B, int64_t *I,
                                    int64_t *H, int64_t *P) {
  DLK_TRY(check_mode(ctx, op, p->mode, p->gru_reset_before));
  DLK_TRY(dlk_check_need(ctx, op, "w", w));
  DLK_TRY(dlk_check_need(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  if (x->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x has %d dims, expected 2 ([batch, input])", op, x->ndim);
  *B = x->shape[0], *I = x->shape[1];
  if (*I < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x has 0 input features", op);
  DLK_TRY(dlk_check_need(ctx, op, "w_ih", w->w_ih));
  DLK_TRY(dlk_check_need(ctx, op, "w_hh", w->w_hh));
  DLK_TRY(check_like(ctx, op, "w_ih", w->w_ih, x->dtype, 2));
  const int64_t G = dlk_rnn_gates(p->mode), rows = w->w_ih->shape[0];
  if (rows < G || rows % G)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w_ih has %lld rows, expected a positive multiple of %lld (%s gates)",
                    op, (long long)rows, (long long)G, mode_name(p->mode));
  *H = rows / G;
  *P = *H;
  if (w->w_hr) {
    if (p->mode != DLK_RNN_LSTM)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: w_hr is given but mode is %s (only an LSTM has a projection)",
                      op, mode_name(p->mode));
    DLK_TRY(check_like(ctx, op, "w_hr", w->w_hr, x->dtype, 2));
    *P = w->w_hr->shape[0];
    if (*P < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w_hr has 0 rows", op);
  }
  return check_weights(ctx, op, "", p->mode, w, x->dtype, *I, "x's input features", *H, *P, w->w_hr != NULL);
}

/* h [B, P] and c [B, H]: optional; c only for an LSTM. */
static dlk_status check_state_in(dlk_context *ctx, const char *op, dlk_rnn_mode mode, const dlk_tensor *x,
                                 const char *hn, const dlk_tensor *h, const char *cn, const dlk_tensor *c, int64_t B,
                                 int64_t H, int64_t P) {
  if (h) DLK_TRY(check_mat(ctx, op, hn, h, x->dtype, B, "x's batch", P, P == H ? "hidden size" : "proj size"));
  if (c && mode != DLK_RNN_LSTM)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s is given but mode is %s (only an LSTM has a cell state)",
                    op, cn, mode_name(mode));
  if (c) DLK_TRY(check_mat(ctx, op, cn, c, x->dtype, B, "x's batch", H, "hidden size"));
  return DLK_OK;
}

static void add_weights(tlist *l, const dlk_rnn_weights *w) {
  tl_add(l, "w_ih", w->w_ih);
  tl_add(l, "w_hh", w->w_hh);
  tl_add(l, "b_ih", w->b_ih);
  tl_add(l, "b_hh", w->b_hh);
  tl_add(l, "w_hr", w->w_hr);
}

dlk_status dlk_rnn_cell_forward(dlk_context *ctx, const dlk_rnn_cell_params *p, const dlk_rnn_weights *w,
                                const dlk_tensor *x, const dlk_tensor *h, const dlk_tensor *c, dlk_tensor *h_out,
                                dlk_tensor *c_out, dlk_tensor *saved) {
  static const char op[] = "rnn_cell_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &cell_defaults;
  int64_t B, I, H, P;
  DLK_TRY(check_cell_common(ctx, op, p, w, x, &B, &I, &H, &P));
  DLK_TRY(check_state_in(ctx, op, p->mode, x, "h", h, "c", c, B, H, P));
  DLK_TRY(dlk_check_need(ctx, op, "h_out", h_out));
  DLK_TRY(check_mat(ctx, op, "h_out", h_out, x->dtype, B, "x's batch", P, P == H ? "hidden size" : "proj size"));
  if (p->mode == DLK_RNN_LSTM) {
    if (!c_out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: c_out is NULL (an LSTM's new cell state)", op);
    DLK_TRY(check_mat(ctx, op, "c_out", c_out, x->dtype, B, "x's batch", H, "hidden size"));
  } else if (c_out) {
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: c_out is given but mode is %s (only an LSTM has a cell state)",
                    op, mode_name(p->mode));
  }
  const int64_t S = dlk_rnn_saved_cols_of(p->mode, H);
  if (saved) DLK_TRY(check_mat(ctx, op, "saved", saved, x->dtype, B, "x's batch", S, "dlk_rnn_cell_saved_cols"));
  TL_STACK(in, 8);
  TL_STACK(out, 3);
  tl_add(&in, "x", x);
  tl_add(&in, "h", h);
  tl_add(&in, "c", c);
  add_weights(&in, w);
  tl_add(&out, "h_out", h_out);
  tl_add(&out, "c_out", c_out);
  tl_add(&out, "saved", saved);
  DLK_TRY(check_outputs(ctx, op, &in, &out));

  dlk_rnn_cell_fwd_args a;
  memset(&a, 0, sizeof a);
  a.mode = p->mode;
  a.reset_before = p->gru_reset_before != 0;
  a.batch = B, a.input = I, a.hidden = H, a.state = P, a.saved_cols = S;
  dlk_rnn_w_from(w, &a.w);
  a.x = *x;
  if ((a.has_h = h != NULL)) a.h = *h;
  if ((a.has_c = c != NULL)) a.c = *c;
  a.h_out = *h_out;
  if ((a.has_c_out = c_out != NULL)) a.c_out = *c_out;
  if ((a.has_saved = saved != NULL)) a.saved = *saved;
  return dlk_dispatch(ctx, &cell_fwd_op, &a);
}

dlk_status dlk_rnn_cell_backward(dlk_context *ctx, const dlk_rnn_cell_params *p, const dlk_rnn_weights *w,
                                 const dlk_tensor *x, const dlk_tensor *h, const dlk_tensor *c,
                                 const dlk_tensor *saved, const dlk_tensor *dh_out, const dlk_tensor *dc_out,
                                 dlk_tensor *dx, dlk_tensor *dh, dlk_tensor *dc, const dlk_rnn_grads *dw) {
  static const char op[] = "rnn_cell_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &cell_defaults;
  int64_t B, I, H, P;
  DLK_TRY(check_cell_common(ctx, op, p, w, x, &B, &I, &H, &P));
  DLK_TRY(check_state_in(ctx, op, p->mode, x, "h", h, "c", c, B, H, P));
  const int64_t S = dlk_rnn_saved_cols_of(p->mode, H);
  DLK_TRY(dlk_check_need(ctx, op, "saved", saved));
  DLK_TRY(check_mat(ctx, op, "saved", saved, x->dtype, B, "x's batch", S, "dlk_rnn_cell_saved_cols"));
  DLK_TRY(check_state_in(ctx, op, p->mode, x, "dh_out", dh_out, "dc_out", dc_out, B, H, P));
  if (dx) DLK_TRY(check_mat(ctx, op, "dx", dx, x->dtype, B, "x's batch", I, "x's input features"));
  DLK_TRY(check_state_in(ctx, op, p->mode, x, "dh", dh, "dc", dc, B, H, P));
  if (dw) DLK_TRY(check_grads(ctx, op, "", w, dw));
  TL_STACK(in, 11);
  TL_STACK(out, 8);
  tl_add(&in, "x", x);
  tl_add(&in, "h", h);
  tl_add(&in, "c", c);
  tl_add(&in, "saved", saved);
  tl_add(&in, "dh_out", dh_out);
  tl_add(&in, "dc_out", dc_out);
  add_weights(&in, w);
  tl_add(&out, "dx", dx);
  tl_add(&out, "dh", dh);
  tl_add(&out, "dc", dc);
  if (dw) {
    tl_add(&out, "dw->w_ih", dw->w_ih);
    tl_add(&out, "dw->w_hh", dw->w_hh);
    tl_add(&out, "dw->b_ih", dw->b_ih);
    tl_add(&out, "dw->b_hh", dw->b_hh);
    tl_add(&out, "dw->w_hr", dw->w_hr);
  }
  DLK_TRY(check_outputs(ctx, op, &in, &out));

  dlk_rnn_cell_bwd_args a;
  memset(&a, 0, sizeof a);
  a.mode = p->mode;
  a.reset_before = p->gru_reset_before != 0;
  a.batch = B, a.input = I, a.hidden = H, a.state = P, a.saved_cols = S;
  dlk_rnn_w_from(w, &a.w);
  a.x = *x;
  a.saved = *saved;
  if ((a.has_h = h != NULL)) a.h = *h;
  if ((a.has_c = c != NULL)) a.c = *c;
  if ((a.has_dh_out = dh_out != NULL)) a.dh_out = *dh_out;
  if ((a.has_dc_out = dc_out != NULL)) a.dc_out = *dc_out;
  if ((a.has_dx = dx != NULL)) a.dx = *dx;
  if ((a.has_dh = dh != NULL)) a.dh = *dh;
  if ((a.has_dc = dc != NULL)) a.dc = *dc;
  dlk_rnn_gw_from(dw, &a.g);
  return dlk_dispatch(ctx, &cell_bwd_op, &a);
}

/* ------------------------------------------------------------------------------------ */
/* Sequences                                                                            */
/* ------------------------------------------------------------------------------------ */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Host copy of the lengths: a stack buffer for usual batches, else malloc'd. */
typedef struct lens_buf {
  int32_t small[1024];
  int32_t *v;
} lens_buf;
static void lens_free(lens_buf *lb) {
  if (lb->v && lb->v != lb->small) free(lb->v);
  lb->v = NULL;
}

/* params, then x ([T, B, I] time-major view in a->x): fills the shape fields of a. */
static dlk_status check_seq_params(dlk_context *ctx, const char *op, const dlk_rnn_params *p, const dlk_tensor *x,
                                   dlk_rnn_fwd_args *a) {
  if (!p) /* the one params struct without defaults: it carries the sizes */
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: params is NULL (hidden_size and num_layers have no default)", op);
  DLK_TRY(check_mode(ctx, op, p->mode, p->gru_reset_before));
  if (p->hidden_size < 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: hidden_size is %lld, must be >= 1", op, (long long)p->hidden_size);
  if (p->proj_size < 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: proj_size is %lld, must be >= 0", op, (long long)p->proj_size);
  if (p->proj_size > 0 && p->mode != DLK_RNN_LSTM)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: proj_size is %lld but mode is %s (LSTM only)", op,
                    (long long)p->proj_size, mode_name(p->mode));
  if (p->proj_size >= p->hidden_size)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: proj_size %lld must be smaller than hidden_size %lld", op,
                    (long long)p->proj_size, (long long)p->hidden_size);
  if (p->num_layers < 1 || p->num_layers > DLK_RNN_MAX_LAYERS)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: num_layers is %d, must be in [1, %d]", op, p->num_layers,
                    DLK_RNN_MAX_LAYERS);
  if (p->bidirectional != 0 && p->bidirectional != 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: bidirectional is %d, expected 0 or 1", op, p->bidirectional);
  if (p->batch_first != 0 && p->batch_first != 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: batch_first is %d, expected 0 or 1", op, p->batch_first);
  if (p->training != 0 && p->training != 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: training is %d, expected 0 or 1", op, p->training);
  if (!isfinite(p->dropout) || p->dropout < 0 || p->dropout >= 1)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: dropout is %g, must be in [0, 1)", op, p->dropout);
  DLK_TRY(dlk_check_need(ctx, op, "x", x));
  DLK_TRY(dlk_check_float(ctx, op, "x", x));
  if (x->ndim != 3)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x has %d dims, expected 3 (%s)", op, x->ndim,
                    p->batch_first ? "[batch, time, input]" : "[time, batch, input]");
  if (x->shape[2] < 1) return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: x has 0 input features", op);

  memset(a, 0, sizeof *a);
  a->mode = p->mode;
  a->reset_before = p->gru_reset_before != 0;
  a->training = p->training != 0;
  a->has_dropout = p->training && p->dropout > 0 && p->num_layers > 1;
  a->dropout = p->dropout;
  a->seed = p->seed;
  a->x = *x;
  if (p->batch_first) { /* [B, T, I] -> [T, B, I]: swap the first two dims */
    a->x.shape[0] = x->shape[1], a->x.strides[0] = x->strides[1];
    a->x.shape[1] = x->shape[0], a->x.strides[1] = x->strides[0];
  }
  a->T = a->x.shape[0], a->B = a->x.shape[1], a->I = a->x.shape[2];
  a->H = p->hidden_size;
  a->P = p->proj_size > 0 ? p->proj_size : p->hidden_size;
  a->L = p->num_layers;
  a->D = p->bidirectional ? 2 : 1;
  /* Sizes the store multiplies must not overflow: the per-row width 8 H + D P on its own
     (it bounds the weights' G H rows and the saved 5 H columns too, also when T x B is 0),
     then times T x B and the layers. */
  int64_t v, width;
  if (dlk_mul_overflows(8, a->H, &width) || dlk_mul_overflows(a->D, a->P, &v) || width > INT64_MAX - v)
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: hidden_size %lld is too large (8 x hidden_size overflows)", op,
                    (long long)a->H);
  width += v;
  if (dlk_mul_overflows(a->T, a->B, &v) || dlk_mul_overflows(v, width, &v) ||
      dlk_mul_overflows(v, 8 * a->L * a->D, &v))
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: T x B x hidden is too large", op);
  char key[DLK_KEY_LEN];
  fwd_key_into(a, key, sizeof key);
  char full[DLK_KEY_LEN + 64];
  snprintf(full, sizeof full, "%s|%a|%llu", key, a->dropout, (unsigned long long)a->seed);
  a->key_hash = fnv1a(full);
  return DLK_OK;
}

/* A sequence tensor (x, y, dy, dx) given in the caller's layout as the time-major view. */
static dlk_tensor time_major(const dlk_tensor *t, int batch_first) {
  dlk_tensor v = *t;
  if (batch_first && t->ndim == 3) {
    v.shape[0] = t->shape[1], v.strides[0] = t->strides[1];
    v.shape[1] = t->shape[0], v.strides[1] = t->strides[0];
  }
  return v;
}

/* y-like tensor: [T, B, W] (batch_first: [B, T, W]) of x's dtype. */
static dlk_status check_seq_tensor(dlk_context *ctx, const char *op, const char *name, const dlk_tensor *t,
                                   const dlk_rnn_fwd_args *a, int batch_first, int64_t W, const char *wwhat) {
  DLK_TRY(check_like(ctx, op, name, t, a->x.dtype, 3));
  DLK_TRY(check_dim(ctx, op, name, t, batch_first ? 1 : 0, a->T, "x's time steps"));
  DLK_TRY(check_dim(ctx, op, name, t, batch_first ? 0 : 1, a->B, "x's batch"));
  return check_dim(ctx, op, name, t, 2, W, wwhat);
}

/* weights[] and the states h0/c0-like tensors. */
static dlk_status check_seq_weights(dlk_context *ctx, const char *op, const dlk_rnn_weights *weights,
                                    const dlk_rnn_fwd_args *a) {
  DLK_TRY(dlk_check_need(ctx, op, "weights", weights));
  for (int64_t l = 0; l < a->L; l++)
    for (int64_t d = 0; d < a->D; d++) {
      char pre[32], iwhat[64];
      snprintf(pre, sizeof pre, "weights[%lld].", (long long)(l * a->D + d));
      if (l == 0)
        snprintf(iwhat, sizeof iwhat, "x's input features");
      else
        snprintf(iwhat, sizeof iwhat, "layer %lld's output: %lld directions x %lld", (long long)(l - 1),
                 (long long)a->D, (long long)a->P);
      DLK_TRY(check_weights(ctx, op, pre, a->mode, &weights[l * a->D + d], a->x.dtype, l == 0 ? a->I : a->D * a->P,
                            iwhat, a->H, a->P, a->P != a->H));
    }
  return DLK_OK;
}

static dlk_status check_states(dlk_context *ctx, const char *op, const dlk_rnn_fwd_args *a, const char *hn,
                               const dlk_tensor *h, const char *cn, const dlk_tensor *c) {
  if (h)
    DLK_TRY(check_3d(ctx, op, hn, h, a->x.dtype, a->L * a->D, "num_layers x directions", a->B, "x's batch", a->P,
                     a->P != a->H ? "proj_size" : "hidden_size"));
  if (c && a->mode != DLK_RNN_LSTM)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: %s is given but mode is %s (only an LSTM has a cell state)",
                    op, cn, mode_name(a->mode));
  if (c)
    DLK_TRY(check_3d(ctx, op, cn, c, a->x.dtype, a->L * a->D, "num_layers x directions", a->B, "x's batch", a->H,
                     "hidden_size"));
  return DLK_OK;
}

/* lengths: I32/I64 [B] on the host or the context's device, each in [1, T]. Fills
   a->lens (host copy in lb) and a->max_len. */
static dlk_status check_lengths(dlk_context *ctx, const char *op, const dlk_tensor *lengths, dlk_rnn_fwd_args *a,
                                lens_buf *lb) {
  a->max_len = a->T;
  if (!lengths) return DLK_OK;
  DLK_TRY(dlk_tensor_validate(ctx, lengths, "lengths"));
  const bool on_host = lengths->device.type == DLK_CPU;
  if (!on_host && (lengths->device.type != ctx->device.type || lengths->device.id != ctx->device.id))
    return dlk_fail(ctx, DLK_ERR_DEVICE_MISMATCH, "%s: lengths is on %s:%d, expected the host or the context's device",
                    op, dlk_device_type_name(lengths->device.type), lengths->device.id);
  if (lengths->dtype != DLK_I32 && lengths->dtype != DLK_I64)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: lengths is %s, expected i32 or i64", op, dt(lengths));
  if (lengths->ndim != 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: lengths has %d dims, expected 1 ([batch])", op, lengths->ndim);
  DLK_TRY(check_dim(ctx, op, "lengths", lengths, 0, a->B, "x's batch"));
  const int64_t B = a->B;
  const size_t es = dlk_dtype_size(lengths->dtype);
  lb->v = B <= N_OF(lb->small) ? lb->small : malloc((size_t)(B > 0 ? B : 1) * sizeof(int32_t));
  if (!lb->v) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: lengths copy of %lld entries", op, (long long)B);
  /* Read every entry to the host (one copy for device lengths). */
  int64_t *tmp = NULL;
  const void *src = lengths->data;
  if (!on_host && B > 0) {
    tmp = malloc((size_t)B * 8);
    if (!tmp) {
      lens_free(lb);
      return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: lengths copy of %lld entries", op, (long long)B);
    }
    dlk_status s = dlk_tensor_read(ctx, lengths, tmp, (size_t)B * es);
    if (s != DLK_OK) {
      free(tmp);
      lens_free(lb);
      return s;
    }
    src = tmp;
  }
  const int64_t stride = on_host ? lengths->strides[0] : 1;
  int64_t mx = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t v = lengths->dtype == DLK_I64 ? ((const int64_t *)src)[b * stride]
                                                : ((const int32_t *)src)[b * stride];
    if (v < 1 || v > a->T) {
      free(tmp);
      lens_free(lb);
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: lengths[%lld] = %lld is outside [1, %lld] (x's time steps)", op,
                      (long long)b, (long long)v, (long long)a->T);
    }
    lb->v[b] = (int32_t)v;
    if (v > mx) mx = v;
  }
  free(tmp);
  a->has_lengths = true;
  a->lengths = *lengths;
  a->lens = lb->v;
  a->max_len = mx;
  return DLK_OK;
}

static void add_seq_weights(tlist *l, const dlk_rnn_weights *w, int64_t n) {
  for (int64_t k = 0; k < n; k++) {
    tl_add(l, tl_name(l, "weights", k, "w_ih"), w[k].w_ih);
    tl_add(l, tl_name(l, "weights", k, "w_hh"), w[k].w_hh);
    tl_add(l, tl_name(l, "weights", k, "b_ih"), w[k].b_ih);
    tl_add(l, tl_name(l, "weights", k, "b_hh"), w[k].b_hh);
    tl_add(l, tl_name(l, "weights", k, "w_hr"), w[k].w_hr);
  }
}

/* reserve: 1-D U8, contiguous, at least `bytes`, on the context's device. */
static dlk_status check_reserve(dlk_context *ctx, const char *op, const dlk_tensor *r, size_t bytes) {
  DLK_TRY(dlk_check_tensor(ctx, op, "reserve", r));
  if (r->dtype != DLK_U8)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: reserve is %s, expected u8", op, dt(r));
  if (r->ndim != 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: reserve has %d dims, expected 1", op, r->ndim);
  if (r->shape[0] > 1 && r->strides[0] != 1)
    return dlk_fail(ctx, DLK_ERR_LAYOUT, "%s: reserve has stride %lld, expected 1 (contiguous bytes)", op,
                    (long long)r->strides[0]);
  if ((size_t)r->shape[0] < bytes)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: reserve has %lld bytes, dlk_rnn_reserve_size says %zu", op,
                    (long long)r->shape[0], bytes);
  return DLK_OK;
}

/* The reserve size a training forward of this call needs: the dlk layout, or cuDNN's when
   that is larger (a CUDA context may run either). */
static size_t reserve_bytes(dlk_context *ctx, const dlk_rnn_fwd_args *a) {
  size_t n = dlk_rnn_dlk_reserve_bytes(a);
#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
  if (ctx->device.type == DLK_CUDA) {
    size_t c = dlk_rnn_cudnn_reserve_bytes(ctx, a);
    if (c > n) n = c;
  }
#else
  (void)ctx;
#endif
  return n;
}

dlk_status dlk_rnn_reserve_size(dlk_context *ctx, const dlk_rnn_params *p, const dlk_tensor *x, size_t *bytes) {
  static const char op[] = "rnn_reserve_size";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(dlk_check_need(ctx, op, "bytes", bytes));
  dlk_rnn_fwd_args a;
  DLK_TRY(check_seq_params(ctx, op, p, x, &a));
  a.training = true;
  a.has_dropout = p->dropout > 0 && p->num_layers > 1;
  *bytes = reserve_bytes(ctx, &a);
  return DLK_OK;
}

dlk_status dlk_rnn_forward(dlk_context *ctx, const dlk_rnn_params *p, const dlk_rnn_weights *weights,
                           const dlk_tensor *x, const dlk_tensor *lengths, const dlk_tensor *h0, const dlk_tensor *c0,
                           dlk_tensor *y, dlk_tensor *hn, dlk_tensor *cn, dlk_tensor *reserve) {
  static const char op[] = "rnn_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_rnn_fwd_args a;
  DLK_TRY(check_seq_params(ctx, op, p, x, &a));
  DLK_TRY(check_seq_weights(ctx, op, weights, &a));
  DLK_TRY(check_states(ctx, op, &a, "h0", h0, "c0", c0));
  DLK_TRY(dlk_check_need(ctx, op, "y", y));
  DLK_TRY(check_seq_tensor(ctx, op, "y", y, &a, p->batch_first, a.D * a.P, "directions x state width"));
  DLK_TRY(check_states(ctx, op, &a, "hn", hn, "cn", cn));
  if (a.training) {
    if (!reserve)
      return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: reserve is NULL but training is 1 (see dlk_rnn_reserve_size)", op);
    DLK_TRY(check_reserve(ctx, op, reserve, dlk_rnn_dlk_reserve_bytes(&a)));
  }
  tlist in, out;
  dlk_status s = DLK_OK;
  if (!tl_alloc(&in, a.L * a.D, 4) || !tl_alloc(&out, 0, 4))
    s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of host memory", op);
  tl_add(&in, "x", x);
  tl_add(&in, "lengths", lengths && lengths->device.type == ctx->device.type ? lengths : NULL);
  tl_add(&in, "h0", h0);
  tl_add(&in, "c0", c0);
  add_seq_weights(&in, weights, a.L * a.D);
  tl_add(&out, "y", y);
  tl_add(&out, "hn", hn);
  tl_add(&out, "cn", cn);
  if (a.training) tl_add(&out, "reserve", reserve);
  if (s == DLK_OK) s = check_outputs(ctx, op, &in, &out);
  tl_free(&in), tl_free(&out);
  DLK_TRY(s);
  lens_buf lb = {{0}, NULL};
  DLK_TRY(check_lengths(ctx, op, lengths, &a, &lb));

  a.weights = weights;
  a.y = time_major(y, p->batch_first);
  if ((a.has_h0 = h0 != NULL)) a.h0 = *h0;
  if ((a.has_c0 = c0 != NULL)) a.c0 = *c0;
  if ((a.has_hn = hn != NULL)) a.hn = *hn;
  if ((a.has_cn = cn != NULL)) a.cn = *cn;
  if (a.training) a.reserve = *reserve;
  s = dlk_dispatch(ctx, &fwd_op, &a);
  lens_free(&lb);
  return s;
}

/* Read the reserve's header: its format, checked against this call's configuration. */
static dlk_status read_header(dlk_context *ctx, const char *op, const dlk_rnn_fwd_args *a, int *format) {
  dlk_rnn_reserve_header h;
  dlk_tensor v = a->reserve;
  v.shape[0] = (int64_t)sizeof h;
  DLK_TRY(dlk_tensor_read(ctx, &v, &h, sizeof h));
  if (memcmp(h.magic, "dlkrnn1", 8) != 0 ||
      (h.format != DLK_RNN_FORMAT_DLK && h.format != DLK_RNN_FORMAT_CUDNN && h.format != DLK_RNN_FORMAT_CUDNN_PERSIST)) {
    if (ctx->explain) { /* explain runs no forward: assume the dlk layout */
      *format = DLK_RNN_FORMAT_DLK;
      return DLK_OK;
    }
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: reserve holds no forward's record (run dlk_rnn_forward with training = 1 first)", op);
  }
  if (h.key_hash != a->key_hash)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: reserve was written by a forward with other parameters or shapes", op);
  *format = (int)h.format;
  return DLK_OK;
}

dlk_status dlk_rnn_backward(dlk_context *ctx, const dlk_rnn_params *p, const dlk_rnn_weights *weights,
                            const dlk_tensor *x, const dlk_tensor *lengths, const dlk_tensor *h0, const dlk_tensor *c0,
                            const dlk_tensor *y, const dlk_tensor *reserve, const dlk_tensor *dy,
                            const dlk_tensor *dhn, const dlk_tensor *dcn, dlk_tensor *dx, dlk_tensor *dh0,
                            dlk_tensor *dc0, const dlk_rnn_grads *dweights) {
  static const char op[] = "rnn_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_rnn_bwd_args b;
  memset(&b, 0, sizeof b);
  dlk_rnn_fwd_args *a = &b.f;
  DLK_TRY(check_seq_params(ctx, op, p, x, a));
  if (!p->training)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: training is 0; the backward needs the params of a training forward (training = 1)", op);
  DLK_TRY(check_seq_weights(ctx, op, weights, a));
  DLK_TRY(check_states(ctx, op, a, "h0", h0, "c0", c0));
  DLK_TRY(dlk_check_need(ctx, op, "y", y));
  DLK_TRY(check_seq_tensor(ctx, op, "y", y, a, p->batch_first, a->D * a->P, "directions x state width"));
  DLK_TRY(dlk_check_need(ctx, op, "reserve", reserve));
  DLK_TRY(check_reserve(ctx, op, reserve, dlk_rnn_dlk_reserve_bytes(a)));
  if (dy) DLK_TRY(check_seq_tensor(ctx, op, "dy", dy, a, p->batch_first, a->D * a->P, "directions x state width"));
  DLK_TRY(check_states(ctx, op, a, "dhn", dhn, "dcn", dcn));
  if (dx) DLK_TRY(check_seq_tensor(ctx, op, "dx", dx, a, p->batch_first, a->I, "x's input features"));
  DLK_TRY(check_states(ctx, op, a, "dh0", dh0, "dc0", dc0));
  if (dweights)
    for (int64_t k = 0; k < a->L * a->D; k++) {
      char pre[32];
      snprintf(pre, sizeof pre, "dweights[%lld].", (long long)k);
      DLK_TRY(check_grads(ctx, op, pre, &weights[k], &dweights[k]));
    }
  tlist in, out;
  dlk_status s = DLK_OK;
  if (!tl_alloc(&in, a->L * a->D, 9) || !tl_alloc(&out, dweights ? a->L * a->D : 0, 3))
    s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of host memory", op);
  tl_add(&in, "x", x);
  tl_add(&in, "lengths", lengths && lengths->device.type == ctx->device.type ? lengths : NULL);
  tl_add(&in, "h0", h0);
  tl_add(&in, "c0", c0);
  tl_add(&in, "y", y);
  tl_add(&in, "reserve", reserve);
  tl_add(&in, "dy", dy);
  tl_add(&in, "dhn", dhn);
  tl_add(&in, "dcn", dcn);
  add_seq_weights(&in, weights, a->L * a->D);
  tl_add(&out, "dx", dx);
  tl_add(&out, "dh0", dh0);
  tl_add(&out, "dc0", dc0);
  if (dweights)
    for (int64_t k = 0; k < a->L * a->D; k++) {
      tl_add(&out, tl_name(&out, "dweights", k, "w_ih"), dweights[k].w_ih);
      tl_add(&out, tl_name(&out, "dweights", k, "w_hh"), dweights[k].w_hh);
      tl_add(&out, tl_name(&out, "dweights", k, "b_ih"), dweights[k].b_ih);
      tl_add(&out, tl_name(&out, "dweights", k, "b_hh"), dweights[k].b_hh);
      tl_add(&out, tl_name(&out, "dweights", k, "w_hr"), dweights[k].w_hr);
    }
  if (s == DLK_OK) s = check_outputs(ctx, op, &in, &out);
  tl_free(&in), tl_free(&out);
  DLK_TRY(s);
  lens_buf lb = {{0}, NULL};
  DLK_TRY(check_lengths(ctx, op, lengths, a, &lb));
  a->weights = weights;
  a->y = time_major(y, p->batch_first);
  if ((a->has_h0 = h0 != NULL)) a->h0 = *h0;
  if ((a->has_c0 = c0 != NULL)) a->c0 = *c0;
  a->reserve = *reserve;
  if ((b.has_dy = dy != NULL)) b.dy = time_major(dy, p->batch_first);
  if ((b.has_dhn = dhn != NULL)) b.dhn = *dhn;
  if ((b.has_dcn = dcn != NULL)) b.dcn = *dcn;
  if ((b.has_dx = dx != NULL)) b.dx = time_major(dx, p->batch_first);
  if ((b.has_dh0 = dh0 != NULL)) b.dh0 = *dh0;
  if ((b.has_dc0 = dc0 != NULL)) b.dc0 = *dc0;
  b.dweights = dweights;
  /* Nothing to write (B = 0: no sequence, whose forward wrote no reserve; or no output
     asked with elements): the dispatcher returns at once, without reading the reserve. */
  if (dlk_outputs_empty(&bwd_op, &b)) {
    lens_free(&lb);
    return dlk_dispatch(ctx, &bwd_op, &b);
  }
  s = read_header(ctx, op, a, &b.format);
  if (s != DLK_OK) {
    lens_free(&lb);
    return s;
  }
  s = dlk_dispatch(ctx, &bwd_op, &b);
  lens_free(&lb);
  return s;
}

/* ------------------------------------------------------------------------------------ */
/* Keras import                                                                         */
/* ------------------------------------------------------------------------------------ */

/* Keras gate block feeding PyTorch gate g: LSTM i f c o = i f g o; GRU z r h -> r z n. */
static int64_t keras_gate(dlk_rnn_mode mode, int64_t g) {
  static const int64_t gru[3] = {1, 0, 2};
  return mode == DLK_RNN_GRU ? gru[g] : g;
}

dlk_status dlk_rnn_weights_from_keras(dlk_context *ctx, dlk_rnn_mode mode, const dlk_tensor *kernel,
                                      const dlk_tensor *recurrent_kernel, const dlk_tensor *bias, dlk_tensor *w_ih,
                                      dlk_tensor *w_hh, dlk_tensor *b_ih, dlk_tensor *b_hh) {
  static const char op[] = "rnn_weights_from_keras";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  DLK_TRY(check_mode(ctx, op, mode, 0));
  DLK_TRY(dlk_check_need(ctx, op, "kernel", kernel));
  DLK_TRY(dlk_check_need(ctx, op, "recurrent_kernel", recurrent_kernel));
  DLK_TRY(dlk_check_need(ctx, op, "w_ih", w_ih));
  DLK_TRY(dlk_check_need(ctx, op, "w_hh", w_hh));
  DLK_TRY(dlk_check_float(ctx, op, "kernel", kernel));
  const dlk_dtype dtp = kernel->dtype;
  if (kernel->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: kernel has %d dims, expected 2 ([input, gates x hidden])", op,
                    kernel->ndim);
  const int64_t G = dlk_rnn_gates(mode), I = kernel->shape[0], cols = kernel->shape[1];
  if (cols < G || cols % G)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: kernel has %lld columns, expected a positive multiple of %lld (%s gates)",
                    op, (long long)cols, (long long)G, mode_name(mode));
  const int64_t H = cols / G;
  DLK_TRY(check_mat(ctx, op, "recurrent_kernel", recurrent_kernel, dtp, H, "hidden size", cols, "kernel's columns"));
  bool two_rows = false;
  if (bias) {
    DLK_TRY(dlk_check_tensor(ctx, op, "bias", bias));
    if (bias->dtype != dtp)
      return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: bias is %s but kernel is %s", op, dt(bias), dlk_dtype_name(dtp));
    if (mode == DLK_RNN_GRU && bias->ndim == 2) {
      two_rows = true;
      DLK_TRY(check_dim(ctx, op, "bias", bias, 0, 2, "GRU reset_after=True: input and recurrent rows"));
      DLK_TRY(check_dim(ctx, op, "bias", bias, 1, cols, "kernel's columns"));
    } else if (bias->ndim == 1) {
      DLK_TRY(check_dim(ctx, op, "bias", bias, 0, cols, "kernel's columns"));
    } else {
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: bias has %d dims, expected 1%s", op, bias->ndim,
                      mode == DLK_RNN_GRU ? " or 2 ([2, 3H], reset_after=True)" : "");
    }
  }
  DLK_TRY(check_mat(ctx, op, "w_ih", w_ih, dtp, cols, "kernel's columns", I, "kernel's rows"));
  DLK_TRY(check_mat(ctx, op, "w_hh", w_hh, dtp, cols, "kernel's columns", H, "hidden size"));
  if (!b_ih && bias) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: b_ih is NULL but bias is given", op);
  if (!b_hh && two_rows)
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: b_hh is NULL but bias has a recurrent row", op);
  if (b_ih) {
    DLK_TRY(check_like(ctx, op, "b_ih", b_ih, dtp, 1));
    DLK_TRY(check_dim(ctx, op, "b_ih", b_ih, 0, cols, "kernel's columns"));
  }
  if (b_hh) {
    DLK_TRY(check_like(ctx, op, "b_hh", b_hh, dtp, 1));
    DLK_TRY(check_dim(ctx, op, "b_hh", b_hh, 0, cols, "kernel's columns"));
  }
  TL_STACK(in, 3);
  TL_STACK(out, 4);
  tl_add(&in, "kernel", kernel);
  tl_add(&in, "recurrent_kernel", recurrent_kernel);
  tl_add(&in, "bias", bias);
  tl_add(&out, "w_ih", w_ih);
  tl_add(&out, "w_hh", w_hh);
  tl_add(&out, "b_ih", b_ih);
  tl_add(&out, "b_hh", b_hh);
  DLK_TRY(check_outputs(ctx, op, &in, &out));
  if (ctx->explain) {
    snprintf(ctx->explain_text, sizeof ctx->explain_text, "%s: strided copies (dlk_tensor_copy), no variants\n", op);
    return DLK_OK;
  }

  /* PyTorch gate g's H rows <- Keras gate block kg's H columns, transposed. */
  for (int64_t g = 0; g < G; g++) {
    const int64_t kg = keras_gate(mode, g);
    dlk_tensor dst, src, srct;
    DLK_TRY(dlk_tensor_slice(ctx, &dst, w_ih, 0, g * H, H));
    DLK_TRY(dlk_tensor_slice(ctx, &src, kernel, 1, kg * H, H));
    DLK_TRY(dlk_tensor_transpose(ctx, &srct, &src, 0, 1));
    DLK_TRY(dlk_tensor_copy(ctx, &dst, &srct));
    DLK_TRY(dlk_tensor_slice(ctx, &dst, w_hh, 0, g * H, H));
    DLK_TRY(dlk_tensor_slice(ctx, &src, recurrent_kernel, 1, kg * H, H));
    DLK_TRY(dlk_tensor_transpose(ctx, &srct, &src, 0, 1));
    DLK_TRY(dlk_tensor_copy(ctx, &dst, &srct));
  }
  if (b_ih) DLK_TRY(dlk_tensor_zero(ctx, b_ih));
  if (b_hh) DLK_TRY(dlk_tensor_zero(ctx, b_hh));
  if (!bias) return DLK_OK;
  for (int r = 0; r < (two_rows ? 2 : 1); r++) {
    dlk_tensor row = *bias;
    if (two_rows) { /* row r of [2, 3H] as a 1-D view */
      row.data = (char *)bias->data + (size_t)(r * bias->strides[0]) * dlk_dtype_size(dtp);
      row.ndim = 1;
      row.shape[0] = bias->shape[1];
      row.strides[0] = bias->strides[1];
    }
    for (int64_t g = 0; g < G; g++) {
      dlk_tensor dst, src;
      DLK_TRY(dlk_tensor_slice(ctx, &dst, r == 0 ? b_ih : b_hh, 0, g * H, H));
      DLK_TRY(dlk_tensor_slice(ctx, &src, &row, 0, keras_gate(mode, g) * H, H));
      DLK_TRY(dlk_tensor_copy(ctx, &dst, &src));
    }
  }
  return DLK_OK;
}
