/*
 * attention family: the public functions. Each one checks its arguments (NULL pointers,
 * dtypes, devices, dims, every shape relation, output layouts and overlaps, parameter
 * values), normalises the tensors into the op's record of host/attention/attention.h and
 * hands the record to dlk_dispatch, which runs one row of the op's variant table.
 *
 * Rules common to every op (as the nn family):
 *   - every check runs before anything is written: a bad call leaves the outputs and the
 *     caller's data untouched (values that live in device memory, such as lengths, are
 *     checked by the variant before it writes);
 *   - an output must not have overlapping elements (DLK_ERR_LAYOUT) and must not overlap
 *     an input or another output (DLK_ERR_INVALID_ARGUMENT).
 *
 * Sections, in this order: scaled-dot-product attention (sdpa_fwd, sdpa_bwd); additive
 * (Bahdanau) and Luong attention (additive_attn_fwd/bwd, luong_attn_fwd/bwd) in the
 * section marked for them; the ops registry at the end lists every op of the family.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/check.h"
#include "attention.h"

/* ------------------------------------------------------------------------------------ */
/* Checks the family's ops share                                                        */
/* ------------------------------------------------------------------------------------ */

static const char *dt(const dlk_tensor *t) {
  return dlk_dtype_name(t->dtype);
}

/* Outputs outs[0..no) (NULL entries skipped) each well laid out and overlapping no input
   and no other output. */
static dlk_status check_outputs(dlk_context *ctx, const char *op, int no, dlk_tensor *const *outs,
                                const char *const *out_names, int ni, const dlk_tensor *const *ins,
                                const char *const *in_names) {
  for (int i = 0; i < no; i++) {
    if (!outs[i]) continue;
    DLK_TRY(dlk_check_output(ctx, op, out_names[i], outs[i]));
    for (int j = 0; j < ni; j++)
      DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], in_names[j], ins[j]));
    for (int j = 0; j < i; j++)
      DLK_TRY(dlk_check_disjoint(ctx, op, out_names[i], outs[i], out_names[j], outs[j]));
  }
  return DLK_OK;
}

/* t has exactly the dims want[0..n) ("q has 3 in dim 1 (Hq), k has 4"). `names` names
   each dim for the message; `what` says where the wanted value comes from. */
static dlk_status check_dims(dlk_context *ctx, const char *op, const char *name,
                             const dlk_tensor *t, int n, const int64_t *want,
                             const char *const *names, const char *what) {
  if (t->ndim != n)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d (%s)", op, name,
                    t->ndim, n, what);
  for (int k = 0; k < n; k++)
    if (t->shape[k] != want[k])
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: %s has %lld in dim %d (%s), expected %lld (%s)", op, name,
                      (long long)t->shape[k], k, names[k], (long long)want[k], what);
  return DLK_OK;
}

static char unit_class(const dlk_tensor *t) {
  return t->strides[t->ndim - 1] == 1 || t->shape[t->ndim - 1] <= 1 ? 'u' : 's';
}

/* 1 when the data is 16-byte aligned and every stride but the unit one keeps it so. */
static int aligned16(const dlk_tensor *t) {
  size_t es = dlk_dtype_size(t->dtype);
  if ((uintptr_t)t->data % 16) return 0;
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] > 1 && t->strides[k] != 1 && ((size_t)t->strides[k] * es) % 16) return 0;
  return 1;
}

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

/* ---- variant tables: the CPU reference, then the CUDA rows, then the vendor rows ---- */

static const dlk_variant sdpa_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: scores row by row, softmax and weighted sum in f64",
     NULL, dlk_sdpa_fwd_cpu_workspace, dlk_sdpa_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "naive", DLK_CUDA, 1,
     "materialises the scores: thread per score, warp per row softmax, thread per output "
     "(the oracle)",
     dlk_sdpa_fwd_cuda_supports, dlk_sdpa_fwd_cuda_workspace, dlk_sdpa_fwd_cuda_run},
    {2, "flash_mma", DLK_CUDA, 2,
     "FlashAttention-2: 64-row blocks stream K/V, online softmax, mma.sync f16/bf16",
     dlk_sdpa_fwd_cuda_supports, dlk_sdpa_fwd_cuda_workspace, dlk_sdpa_fwd_cuda_run},
    {3, "flash_wgmma", DLK_CUDA, 3,
     "FlashAttention-3 forward: sm_90a wgmma + TMA, producer/consumer warpgroups",
     dlk_sdpa_fwd_cuda_supports, dlk_sdpa_fwd_cuda_workspace, dlk_sdpa_fwd_cuda_run},
    {4, "flash_simt", DLK_CUDA, 4,
     "FlashAttention order on CUDA cores, warp per query row: f32/f16/bf16, any strides",
     dlk_sdpa_fwd_cuda_supports, dlk_sdpa_fwd_cuda_workspace, dlk_sdpa_fwd_cuda_run},
#endif
#if DLK_SDPA_CUDNN
    {10, "cudnn", DLK_CUDA, 0,
     "cuDNN fused attention (backend graph API, f16/bf16): the SDPA_FWD node (9.13+), else "
     "the composed matmul/softmax/matmul graph (causal, bias); no dropout",
     dlk_sdpa_fwd_cudnn_supports, dlk_sdpa_fwd_cudnn_workspace, dlk_sdpa_fwd_cudnn_run},
#endif
};

static const dlk_variant sdpa_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0,
     "CPU reference: from the saved lse, f64 accumulators, each gradient rounded once", NULL,
     dlk_sdpa_bwd_cpu_workspace, dlk_sdpa_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "naive", DLK_CUDA, 1,
     "materialises P and dS; thread per gradient element, fixed-order sums (the oracle)",
     dlk_sdpa_bwd_cuda_supports, dlk_sdpa_bwd_cuda_workspace, dlk_sdpa_bwd_cuda_run},
    {2, "flash_mma", DLK_CUDA, 2,
     "FlashAttention-2 backward without atomics: dK/dV per key block, dQ per query "
     "block, mma.sync",
     dlk_sdpa_bwd_cuda_supports, dlk_sdpa_bwd_cuda_workspace, dlk_sdpa_bwd_cuda_run},
    {4, "flash_simt", DLK_CUDA, 4,
     "the same passes on CUDA cores, warp per query / key row: f32/f16/bf16, any "
     "strides",
     dlk_sdpa_bwd_cuda_supports, dlk_sdpa_bwd_cuda_workspace, dlk_sdpa_bwd_cuda_run},
#endif
#if DLK_SDPA_CUDNN
    {10, "cudnn", DLK_CUDA, 0,
     "cuDNN fused attention backward (backend graph API, f16/bf16): the SDPA_BWD node "
     "(9.17+), else the composed graph (causal, bias, dbias); no dropout",
     dlk_sdpa_bwd_cudnn_supports, dlk_sdpa_bwd_cudnn_workspace, dlk_sdpa_bwd_cudnn_run},
#endif
};

/* ---- shape keys ---- */

static void sdpa_problem_key(const dlk_sdpa_problem *p, char *buf, size_t n) {
  snprintf(buf, n,
           "b%lld_hq%lld_hk%lld_tq%lld_tk%lld_d%lld_dv%lld_%s_c%d_bias%d%d%d%d_ql%d_kl%d_drop%d_%c%"
           "c%c_al%d",
           (long long)p->B, (long long)p->Hq, (long long)p->Hk, (long long)p->Tq, (long long)p->Tk,
           (long long)p->D, (long long)p->Dv, dlk_dtype_name(p->dtype), p->causal, p->has_bias,
           p->has_bias && p->bias.strides[0] != 0, p->has_bias && p->bias.strides[1] != 0,
           p->has_bias && p->bias.strides[2] != 0, p->has_q_lengths, p->has_k_lengths,
           p->dropout > 0.0, unit_class(&p->q), unit_class(&p->k), unit_class(&p->v),
           aligned16(&p->q) && aligned16(&p->k) && aligned16(&p->v));
}

static void sdpa_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_sdpa_fwd_args *a = args;
  char pk[DLK_KEY_LEN];
  sdpa_problem_key(&a->p, pk, sizeof pk);
  snprintf(buf, n, "%s_lse%d_o%c", pk, a->has_lse, unit_class(&a->out));
}

static void sdpa_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_sdpa_bwd_args *a = args;
  char pk[DLK_KEY_LEN];
  sdpa_problem_key(&a->p, pk, sizeof pk);
  snprintf(buf, n, "%s_g%d%d%d%d", pk, a->has_dq, a->has_dk, a->has_dv, a->has_dbias);
}

/* ---- heuristics: the variant AUTO runs when it does not time them ---- */

/* The first id of `order` whose row is in the table, runs on the context's device and
   supports the call; -1 when none does (the dispatcher then ranks). */
static int first_supported(const dlk_context *ctx, const dlk_variant *v, int n, const int *order,
                           int no, const void *args) {
  char why[256];
  for (int k = 0; k < no; k++)
    for (int i = 0; i < n; i++)
      if (v[i].id == order[k] && v[i].device == ctx->device.type &&
          (!v[i].supports || v[i].supports(ctx, args, v[i].impl, why, sizeof why)))
        return v[i].id;
  return -1;
}

/* cuDNN's fused SDPA, then the tensor-core kernels (wgmma before mma.sync), then the
   streaming CUDA-core kernel, the naive oracle last; the CPU reference on a CPU context. */
static const int SDPA_ORDER[] = {10, 3, 2, 4, 1, 0};

static int sdpa_fwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, sdpa_fwd_variants, DLK_COUNT_OF(sdpa_fwd_variants), SDPA_ORDER,
                         DLK_COUNT_OF(SDPA_ORDER), args);
}

static int sdpa_bwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, sdpa_bwd_variants, DLK_COUNT_OF(sdpa_bwd_variants), SDPA_ORDER,
                         DLK_COUNT_OF(SDPA_ORDER), args);
}

/* ---- outputs: what each call writes (the dispatcher returns at once when all are
   empty) ---- */

/* out, and lse when asked: lse [B, Hq, Tq] is written also when out is empty (Dv = 0). */
static int sdpa_fwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_sdpa_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->out);
  if (a->has_lse) n = dlk_list_output(out, max, n, &a->lse);
  return n;
}

/* The gradients asked for; dbias in its own (un-broadcast) shape, which is what is
   written. */
static int sdpa_bwd_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_sdpa_bwd_args *a = args;
  int n = 0;
  if (a->has_dq) n = dlk_list_output(out, max, n, &a->dq);
  if (a->has_dk) n = dlk_list_output(out, max, n, &a->dk);
  if (a->has_dv) n = dlk_list_output(out, max, n, &a->dv);
  if (a->has_dbias) n = dlk_list_output(out, max, n, &a->dbias);
  return n;
}

static const dlk_op sdpa_fwd_op = {
    "sdpa_fwd",   sdpa_fwd_variants,  DLK_COUNT_OF(sdpa_fwd_variants),
    sdpa_fwd_key, sdpa_fwd_heuristic, true, sdpa_fwd_outputs};
static const dlk_op sdpa_bwd_op = {
    "sdpa_bwd",   sdpa_bwd_variants,  DLK_COUNT_OF(sdpa_bwd_variants),
    sdpa_bwd_key, sdpa_bwd_heuristic, true, sdpa_bwd_outputs};

/* ---- checks ---- */

static const char *const QDIMS[4] = {"B", "Hq", "Tq", "D"};
static const char *const KDIMS[4] = {"B", "Hk", "Tk", "D"};
static const char *const VDIMS[4] = {"B", "Hk", "Tk", "Dv"};
static const char *const ODIMS[4] = {"B", "Hq", "Tq", "Dv"};
static const char *const BDIMS[4] = {"B", "Hq", "Tq", "Tk"};

/* Lengths: I32/I64 [B] on the context's device (their values are checked by the variant
   that runs, before it writes). */
static dlk_status check_lengths(dlk_context *ctx, const char *op, const char *name,
                                const dlk_tensor *t, int64_t B) {
  DLK_TRY(dlk_check_tensor(ctx, op, name, t));
  if (t->dtype != DLK_I32 && t->dtype != DLK_I64)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: %s is %s, expected i32 or i64", op, name,
                    dt(t));
  if (t->ndim != 1 || t->shape[0] != B)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: %s has %d dims (first %lld), expected [%lld] (B of q)", op, name, t->ndim,
                    t->ndim ? (long long)t->shape[0] : -1LL, (long long)B);
  return DLK_OK;
}

/* The bias (or dbias): q's dtype, 2 to 4 dims right-aligned against [B, Hq, Tq, Tk], each
   1 (broadcast) or the full size. *full gets the 4-D view [B, Hq, Tq, Tk] with stride 0 on
   every broadcast dim; *own the 4-D view of its own shape (leading 1s added). */
static dlk_status check_bias(dlk_context *ctx, const char *op, const char *name,
                             const dlk_tensor *t, const dlk_tensor *q, const int64_t *full_shape,
                             dlk_tensor *full, dlk_tensor *own) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "q", q, name, t));
  if (t->ndim < 2 || t->ndim > 4)
    return dlk_fail(
        ctx, DLK_ERR_SHAPE_MISMATCH,
        "%s: %s has %d dims, expected 4 ([B or 1, Hq or 1, Tq, Tk]), or 2 or 3 (leading dims 1)",
        op, name, t->ndim);
  const int lead = 4 - t->ndim;
  *own = *t;
  own->ndim = 4;
  for (int k = 0; k < 4; k++) {
    own->shape[k] = k < lead ? 1 : t->shape[k - lead];
    own->strides[k] = k < lead ? 0 : t->strides[k - lead];
  }
  *full = *own;
  for (int k = 0; k < 4; k++) {
    if (own->shape[k] != 1 && own->shape[k] != full_shape[k])
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: %s has %lld in dim %d (%s), expected %lld or 1 (broadcast)", op, name,
                      (long long)own->shape[k], k - lead, BDIMS[k], (long long)full_shape[k]);
    full->shape[k] = full_shape[k];
    if (own->shape[k] == 1) full->strides[k] = 0;
  }
  return DLK_OK;
}

/* The checks both directions share: params, q, k, v, bias and lengths, into *pr. */
static dlk_status sdpa_problem(dlk_context *ctx, const char *op, const dlk_sdpa_params *params,
                               const dlk_tensor *q, const dlk_tensor *k, const dlk_tensor *v,
                               const dlk_tensor *bias, const dlk_tensor *q_lengths,
                               const dlk_tensor *k_lengths, dlk_sdpa_problem *pr) {
  static const dlk_sdpa_params defaults = {0.0, 0, 0.0, 0, 0};
  const dlk_sdpa_params *p = params ? params : &defaults;
  memset(pr, 0, sizeof *pr);
  DLK_TRY(dlk_check_finite(ctx, op, "scale", p->scale));
  if (!(p->dropout >= 0.0 && p->dropout < 1.0))
    return dlk_fail(ctx, isnan(p->dropout) ? DLK_ERR_NOT_FINITE : DLK_ERR_INVALID_ARGUMENT,
                    "%s: dropout %g is outside [0, 1)", op, p->dropout);
  DLK_TRY(dlk_check_float(ctx, op, "q", q));
  DLK_TRY(dlk_check_float(ctx, op, "k", k));
  DLK_TRY(dlk_check_float(ctx, op, "v", v));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "q", q, "k", k));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "q", q, "v", v));
  if (q->ndim != 4)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: q has %d dims, expected 4 ([B, Hq, Tq, D])",
                    op, q->ndim);
  if (k->ndim != 4)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: k has %d dims, expected 4 ([B, Hk, Tk, D])",
                    op, k->ndim);
  const int64_t B = q->shape[0], Hq = q->shape[1], Tq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Tk = k->shape[2];
  const int64_t kwant[4] = {B, Hk, Tk, D};
  DLK_TRY(check_dims(ctx, op, "k", k, 4, kwant, KDIMS, "B and D of q"));
  if (Hq > 0 && (Hk == 0 || Hq % Hk != 0))
    return dlk_fail(
        ctx, DLK_ERR_SHAPE_MISMATCH,
        "%s: q has %lld heads (dim 1), not a multiple of k's %lld (GQA needs Hq = G * Hk)", op,
        (long long)Hq, (long long)Hk);
  if (v->ndim != 4)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: v has %d dims, expected 4 ([B, Hk, Tk, Dv])",
                    op, v->ndim);
  const int64_t Dv = v->shape[3];
  const int64_t vwant[4] = {B, Hk, Tk, Dv};
  DLK_TRY(check_dims(ctx, op, "v", v, 4, vwant, VDIMS, "B, Hk, Tk of k"));
  /* Without features k and v hold no element, so nothing bounds Tk, while every variant
     still visits each key of each row (and sizes scores from Tk): refused. */
  if (D == 0 && Dv == 0)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: q and k have no features (D = 0, dim 3) and v none (Dv = 0, dim 3): nothing to "
                    "attend with (%lld keys); D or Dv must be >= 1",
                    op, (long long)Tk);
  const int64_t full[4] = {B, Hq, Tq, Tk};
  if (bias) {
    dlk_tensor own;
    DLK_TRY(check_bias(ctx, op, "bias", bias, q, full, &pr->bias, &own));
    pr->has_bias = true;
  }
  if (q_lengths) {
    DLK_TRY(check_lengths(ctx, op, "q_lengths", q_lengths, B));
    pr->has_q_lengths = true;
    pr->q_lengths = *q_lengths;
  }
  if (k_lengths) {
    DLK_TRY(check_lengths(ctx, op, "k_lengths", k_lengths, B));
    pr->has_k_lengths = true;
    pr->k_lengths = *k_lengths;
  }
  pr->B = B, pr->Hq = Hq, pr->Hk = Hk, pr->Tq = Tq, pr->Tk = Tk, pr->D = D, pr->Dv = Dv;
  pr->scale = p->scale != 0.0 ? p->scale : D > 0 ? 1.0 / sqrt((double)D) : 1.0;
  pr->causal = p->causal != 0;
  pr->dropout = p->dropout;
  pr->seed = p->seed;
  pr->offset = p->offset;
  pr->dtype = q->dtype;
  pr->q = *q;
  pr->k = *k;
  pr->v = *v;
  return DLK_OK;
}

/* lse: F32 (F64 for F64), [B, Hq, Tq]. */
static dlk_status check_lse(dlk_context *ctx, const char *op, const dlk_tensor *lse,
                            const dlk_sdpa_problem *pr) {
  static const char *const LDIMS[3] = {"B", "Hq", "Tq"};
  const int64_t want[3] = {pr->B, pr->Hq, pr->Tq};
  DLK_TRY(dlk_check_tensor(ctx, op, "lse", lse));
  DLK_TRY(dlk_check_dtype(ctx, op, "lse", lse, dlk_stat_dtype(pr->dtype)));
  return check_dims(ctx, op, "lse", lse, 3, want, LDIMS, "B, Hq, Tq of q");
}

/* A tensor shaped like out: [B, Hq, Tq, Dv], q's dtype. */
static dlk_status check_like_out(dlk_context *ctx, const char *op, const char *name,
                                 const dlk_tensor *t, const dlk_sdpa_problem *pr) {
  const int64_t want[4] = {pr->B, pr->Hq, pr->Tq, pr->Dv};
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "q", &pr->q, name, t));
  return check_dims(ctx, op, name, t, 4, want, ODIMS, "B, Hq, Tq of q and Dv of v");
}

/* A gradient shaped like its input (dq like q, ...). */
static dlk_status check_like(dlk_context *ctx, const char *op, const char *name,
                             const dlk_tensor *t, const char *iname, const dlk_tensor *in,
                             const char *const *dims) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, iname, in, name, t));
  return check_dims(ctx, op, name, t, 4, in->shape, dims, iname);
}

dlk_status dlk_sdpa_forward(dlk_context *ctx, const dlk_sdpa_params *p, const dlk_tensor *q,
                            const dlk_tensor *k, const dlk_tensor *v, const dlk_tensor *bias,
                            const dlk_tensor *q_lengths, const dlk_tensor *k_lengths,
                            dlk_tensor *out, dlk_tensor *lse) {
  static const char op[] = "sdpa_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_sdpa_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(sdpa_problem(ctx, op, p, q, k, v, bias, q_lengths, k_lengths, &a.p));
  DLK_TRY(dlk_check_need(ctx, op, "out", out));
  DLK_TRY(check_like_out(ctx, op, "out", out, &a.p));
  if (lse) DLK_TRY(check_lse(ctx, op, lse, &a.p));
  const dlk_tensor *ins[6] = {q, k, v, bias, q_lengths, k_lengths};
  static const char *const in_names[6] = {"q", "k", "v", "bias", "q_lengths", "k_lengths"};
  dlk_tensor *outs[2] = {out, lse};
  static const char *const out_names[2] = {"out", "lse"};
  DLK_TRY(check_outputs(ctx, op, 2, outs, out_names, 6, ins, in_names));
  a.out = *out;
  a.has_lse = lse != NULL;
  if (lse) a.lse = *lse;
  return dlk_dispatch(ctx, &sdpa_fwd_op, &a);
}

dlk_status dlk_sdpa_backward(dlk_context *ctx, const dlk_sdpa_params *p, const dlk_tensor *q,
                             const dlk_tensor *k, const dlk_tensor *v, const dlk_tensor *bias,
                             const dlk_tensor *q_lengths, const dlk_tensor *k_lengths,
                             const dlk_tensor *out, const dlk_tensor *lse, const dlk_tensor *dout,
                             dlk_tensor *dq, dlk_tensor *dk, dlk_tensor *dv, dlk_tensor *dbias) {
  static const char op[] = "sdpa_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_sdpa_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(sdpa_problem(ctx, op, p, q, k, v, bias, q_lengths, k_lengths, &a.p));
  DLK_TRY(dlk_check_need(ctx, op, "out", out));
  DLK_TRY(check_like_out(ctx, op, "out", out, &a.p));
  DLK_TRY(dlk_check_need(ctx, op, "lse", lse));
  DLK_TRY(check_lse(ctx, op, lse, &a.p));
  DLK_TRY(dlk_check_need(ctx, op, "dout", dout));
  DLK_TRY(check_like_out(ctx, op, "dout", dout, &a.p));
  if (dq) DLK_TRY(check_like(ctx, op, "dq", dq, "q", q, QDIMS));
  if (dk) DLK_TRY(check_like(ctx, op, "dk", dk, "k", k, KDIMS));
  if (dv) DLK_TRY(check_like(ctx, op, "dv", dv, "v", v, VDIMS));
  if (dbias) {
    if (!bias)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                      "%s: dbias is given but bias is NULL (no bias, no gradient)", op);
    if (dbias->ndim != bias->ndim)
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: dbias has %d dims but bias has %d (dbias has bias's shape)", op,
                      dbias->ndim, bias->ndim);
    for (int d = 0; d < bias->ndim; d++)
      if (dbias->shape[d] != bias->shape[d])
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                        "%s: dbias has %lld in dim %d but bias has %lld (dbias has "
                        "bias's shape)",
                        op, (long long)dbias->shape[d], d, (long long)bias->shape[d]);
    const int64_t full[4] = {a.p.B, a.p.Hq, a.p.Tq, a.p.Tk};
    dlk_tensor unused;
    DLK_TRY(check_bias(ctx, op, "dbias", dbias, q, full, &unused, &a.dbias));
  }
  const dlk_tensor *ins[9] = {q, k, v, bias, q_lengths, k_lengths, out, lse, dout};
  static const char *const in_names[9] = {"q",         "k",   "v",   "bias", "q_lengths",
                                          "k_lengths", "out", "lse", "dout"};
  dlk_tensor *outs[4] = {dq, dk, dv, dbias};
  static const char *const out_names[4] = {"dq", "dk", "dv", "dbias"};
  DLK_TRY(check_outputs(ctx, op, 4, outs, out_names, 9, ins, in_names));
  if (!dq && !dk && !dv && !dbias) {
    if (ctx->explain)
      snprintf(ctx->explain_text, sizeof ctx->explain_text,
               "%s: nothing asked (dq, dk, dv, dbias all NULL)\n", op);
    return DLK_OK;
  }
  a.out = *out;
  a.lse = *lse;
  a.dout = *dout;
  a.has_dq = dq != NULL;
  if (dq) a.dq = *dq;
  a.has_dk = dk != NULL;
  if (dk) a.dk = *dk;
  a.has_dv = dv != NULL;
  if (dv) a.dv = *dv;
  a.has_dbias = dbias != NULL;
  return dlk_dispatch(ctx, &sdpa_bwd_op, &a);
}

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention                                                */
/* ====================================================================================== */

/* ---- variant tables (one set of row functions serves both ops) ---- */

static const dlk_variant additive_attn_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0,
     "CPU reference: projections, scores, masked softmax and context row by row in f64", NULL,
     dlk_attn_fwd_cpu_workspace, dlk_attn_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "composed", DLK_CUDA, 1,
     "nn's gemm kernels plus pointwise kernels; materialises tanh(P + Q) [B, Td, Te, A]",
     dlk_attn_fwd_cuda_supports, dlk_attn_fwd_cuda_workspace, dlk_attn_fwd_cuda_run},
    {2, "fused", DLK_CUDA, 2,
     "enc W_a and dec U_a as GEMMs, then one kernel per decoder-step tile: add-tanh-dot, "
     "softmax, context (split over Te for short Td)",
     dlk_attn_fwd_cuda_supports, dlk_attn_fwd_cuda_workspace, dlk_attn_fwd_cuda_run},
#endif
};

static const dlk_variant additive_attn_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0,
     "CPU reference: recomputed projections, f64 accumulators, each gradient rounded once", NULL,
     dlk_attn_bwd_cpu_workspace, dlk_attn_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "composed", DLK_CUDA, 1,
     "nn's gemm and softmax-backward kernels plus pointwise kernels; materialises "
     "[B, Td, Te, A]",
     dlk_attn_bwd_cuda_supports, dlk_attn_bwd_cuda_workspace, dlk_attn_bwd_cuda_run},
    {2, "fused", DLK_CUDA, 2,
     "recomputed projections (GEMMs), then kernels per decoder row and per encoder row "
     "that recompute tanh in registers; fixed-order sums",
     dlk_attn_bwd_cuda_supports, dlk_attn_bwd_cuda_workspace, dlk_attn_bwd_cuda_run},
#endif
};

static const dlk_variant luong_attn_fwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0,
     "CPU reference: scores (dot, general, concat), masked softmax and context in f64", NULL,
     dlk_attn_fwd_cpu_workspace, dlk_attn_fwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "composed", DLK_CUDA, 1,
     "nn's gemm kernels plus pointwise kernels (concat materialises [B, Td, Te, A])",
     dlk_attn_fwd_cuda_supports, dlk_attn_fwd_cuda_workspace, dlk_attn_fwd_cuda_run},
    {2, "fused", DLK_CUDA, 2,
     "the query projection as a GEMM, then one kernel per decoder-step tile: score, "
     "softmax, context",
     dlk_attn_fwd_cuda_supports, dlk_attn_fwd_cuda_workspace, dlk_attn_fwd_cuda_run},
#endif
};

static const dlk_variant luong_attn_bwd_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "CPU reference: f64 accumulators, each gradient rounded once", NULL,
     dlk_attn_bwd_cpu_workspace, dlk_attn_bwd_cpu_run},
#if DLK_HAVE_CUDA
    {1, "composed", DLK_CUDA, 1, "nn's gemm and softmax-backward kernels plus pointwise kernels",
     dlk_attn_bwd_cuda_supports, dlk_attn_bwd_cuda_workspace, dlk_attn_bwd_cuda_run},
    {2, "fused", DLK_CUDA, 2,
     "the score's gradient per decoder and per encoder row (tanh recomputed), GEMMs for "
     "the rest; fixed-order sums",
     dlk_attn_bwd_cuda_supports, dlk_attn_bwd_cuda_workspace, dlk_attn_bwd_cuda_run},
#endif
};

/* ---- shape keys ---- */

static void attn_problem_key(const dlk_attn_problem *p, char *buf, size_t n) {
  static const char *const kinds[3] = {"add", "dot", "gen"};
  snprintf(buf, n, "%s_b%lld_te%lld_td%lld_he%lld_hd%lld_a%lld_%s_len%d_%c%c%c%c_al%d",
           kinds[p->kind], (long long)p->B, (long long)p->Te, (long long)p->Td, (long long)p->He,
           (long long)p->Hd, (long long)p->A, dlk_dtype_name(p->dtype), p->has_lengths,
           unit_class(&p->enc), unit_class(&p->dec), p->wp.data ? unit_class(&p->wp) : '-',
           p->wq.data ? unit_class(&p->wq) : '-', aligned16(&p->enc) && aligned16(&p->dec));
}

static void attn_fwd_key(const void *args, char *buf, size_t n) {
  const dlk_attn_fwd_args *a = args;
  char pk[DLK_KEY_LEN];
  attn_problem_key(&a->p, pk, sizeof pk);
  snprintf(buf, n, "%s_c%c_w%c", pk, unit_class(&a->context), unit_class(&a->weights));
}

static void attn_bwd_key(const void *args, char *buf, size_t n) {
  const dlk_attn_bwd_args *a = args;
  char pk[DLK_KEY_LEN];
  attn_problem_key(&a->p, pk, sizeof pk);
  snprintf(buf, n, "%s_in%d%d_g%d%d%d%d%d", pk, a->has_dcontext, a->has_dweights, a->has_denc,
           a->has_ddec, a->has_dwp, a->has_dwq, a->has_dv);
}

/* ---- heuristics: the fused kernels, then the composed ones; the CPU reference on a CPU
   context ---- */

static const int ATTN_ORDER[] = {2, 1, 0};

static int additive_attn_fwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, additive_attn_fwd_variants, DLK_COUNT_OF(additive_attn_fwd_variants),
                         ATTN_ORDER, DLK_COUNT_OF(ATTN_ORDER), args);
}
static int additive_attn_bwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, additive_attn_bwd_variants, DLK_COUNT_OF(additive_attn_bwd_variants),
                         ATTN_ORDER, DLK_COUNT_OF(ATTN_ORDER), args);
}
static int luong_attn_fwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, luong_attn_fwd_variants, DLK_COUNT_OF(luong_attn_fwd_variants),
                         ATTN_ORDER, DLK_COUNT_OF(ATTN_ORDER), args);
}
static int luong_attn_bwd_heuristic(const dlk_context *ctx, const void *args) {
  return first_supported(ctx, luong_attn_bwd_variants, DLK_COUNT_OF(luong_attn_bwd_variants),
                         ATTN_ORDER, DLK_COUNT_OF(ATTN_ORDER), args);
}

/* context and weights (both required). */
static int attn_fwd_list_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_attn_fwd_args *a = args;
  int n = dlk_list_output(out, max, 0, &a->context);
  return dlk_list_output(out, max, n, &a->weights);
}

/* The gradients asked for; Luong concat's dw as its two halves (dwp, dwq: the views the
   rows write through). */
static int attn_bwd_list_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_attn_bwd_args *a = args;
  int n = 0;
  if (a->has_denc) n = dlk_list_output(out, max, n, &a->denc);
  if (a->has_ddec) n = dlk_list_output(out, max, n, &a->ddec);
  if (a->has_dwp) n = dlk_list_output(out, max, n, &a->dwp);
  if (a->has_dwq) n = dlk_list_output(out, max, n, &a->dwq);
  if (a->has_dv) n = dlk_list_output(out, max, n, &a->dv);
  return n;
}

static const dlk_op additive_attn_fwd_op = {
    "additive_attn_fwd", additive_attn_fwd_variants,  DLK_COUNT_OF(additive_attn_fwd_variants),
    attn_fwd_key,        additive_attn_fwd_heuristic, true, attn_fwd_list_outputs};
static const dlk_op additive_attn_bwd_op = {
    "additive_attn_bwd", additive_attn_bwd_variants,  DLK_COUNT_OF(additive_attn_bwd_variants),
    attn_bwd_key,        additive_attn_bwd_heuristic, true, attn_bwd_list_outputs};
static const dlk_op luong_attn_fwd_op = {
    "luong_attn_fwd", luong_attn_fwd_variants,  DLK_COUNT_OF(luong_attn_fwd_variants),
    attn_fwd_key,     luong_attn_fwd_heuristic, true, attn_fwd_list_outputs};
static const dlk_op luong_attn_bwd_op = {
    "luong_attn_bwd", luong_attn_bwd_variants,  DLK_COUNT_OF(luong_attn_bwd_variants),
    attn_bwd_key,     luong_attn_bwd_heuristic, true, attn_bwd_list_outputs};

/* ---- checks ---- */

static const char *const CTX_DIMS[3] = {"B", "Td", "He"};
static const char *const WTS_DIMS[3] = {"B", "Td", "Te"};

/* A float tensor of enc's dtype with exactly the dims want. */
static dlk_status attn_check_like(dlk_context *ctx, const char *op, const char *name,
                                  const dlk_tensor *t, const dlk_tensor *enc, int nd,
                                  const int64_t *want, const char *const *dims, const char *what) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "enc", enc, name, t));
  return check_dims(ctx, op, name, t, nd, want, dims, what);
}

/* A 1-D float vector of enc's dtype with n elements. */
static dlk_status attn_check_vec(dlk_context *ctx, const char *op, const char *name,
                                 const dlk_tensor *t, const dlk_tensor *enc, int64_t n,
                                 const char *what) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "enc", enc, name, t));
  return dlk_check_vector(ctx, op, name, t, n, what);
}

/* enc, dec and the lengths into *pr (B, Te, Td, He, Hd, dtype); Te >= 1. */
static dlk_status attn_inputs(dlk_context *ctx, const char *op, const dlk_tensor *enc,
                              const dlk_tensor *dec, const dlk_tensor *enc_lengths,
                              dlk_attn_problem *pr) {
  DLK_TRY(dlk_check_need(ctx, op, "enc", enc));
  DLK_TRY(dlk_check_need(ctx, op, "dec", dec));
  DLK_TRY(dlk_check_float(ctx, op, "enc", enc));
  DLK_TRY(dlk_check_float(ctx, op, "dec", dec));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "enc", enc, "dec", dec));
  if (enc->ndim != 3)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: enc has %d dims, expected 3 ([B, Te, He])",
                    op, enc->ndim);
  if (dec->ndim != 3)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: dec has %d dims, expected 3 ([B, Td, Hd])",
                    op, dec->ndim);
  if (dec->shape[0] != enc->shape[0])
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: dec has %lld in dim 0 (B), expected %lld (B of enc)", op,
                    (long long)dec->shape[0], (long long)enc->shape[0]);
  if (enc->shape[1] < 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: enc has %lld in dim 1 (Te): the softmax needs at least one encoder "
                    "step",
                    op, (long long)enc->shape[1]);
  pr->B = enc->shape[0], pr->Te = enc->shape[1], pr->He = enc->shape[2];
  pr->Td = dec->shape[1], pr->Hd = dec->shape[2];
  pr->dtype = enc->dtype;
  pr->enc = *enc;
  pr->dec = *dec;
  if (enc_lengths) {
    DLK_TRY(check_lengths(ctx, op, "enc_lengths", enc_lengths, pr->B));
    pr->has_lengths = true;
    pr->lengths = *enc_lengths;
  }
  return DLK_OK;
}

/* The additive problem: w_a [He, A], u_a [Hd, A], v_a [A]. */
static dlk_status additive_problem(dlk_context *ctx, const char *op, const dlk_tensor *enc,
                                   const dlk_tensor *dec, const dlk_tensor *w_a,
                                   const dlk_tensor *u_a, const dlk_tensor *v_a,
                                   const dlk_tensor *enc_lengths, dlk_attn_problem *pr) {
  memset(pr, 0, sizeof *pr);
  pr->fn = op;
  pr->kind = DLK_ATTN_ADDITIVE;
  DLK_TRY(attn_inputs(ctx, op, enc, dec, enc_lengths, pr));
  DLK_TRY(dlk_check_need(ctx, op, "w_a", w_a));
  DLK_TRY(dlk_check_need(ctx, op, "u_a", u_a));
  DLK_TRY(dlk_check_need(ctx, op, "v_a", v_a));
  DLK_TRY(dlk_check_float(ctx, op, "w_a", w_a));
  DLK_TRY(dlk_check_same_dtype(ctx, op, "enc", enc, "w_a", w_a));
  if (w_a->ndim != 2)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w_a has %d dims, expected 2 ([He, A])", op,
                    w_a->ndim);
  static const char *const WA_DIMS[2] = {"He", "A"}, *const UA_DIMS[2] = {"Hd", "A"};
  const int64_t A = w_a->shape[1];
  const int64_t wwant[2] = {pr->He, A}, uwant[2] = {pr->Hd, A};
  DLK_TRY(check_dims(ctx, op, "w_a", w_a, 2, wwant, WA_DIMS, "He of enc"));
  DLK_TRY(attn_check_like(ctx, op, "u_a", u_a, enc, 2, uwant, UA_DIMS, "Hd of dec, A of w_a"));
  DLK_TRY(attn_check_vec(ctx, op, "v_a", v_a, enc, A, "A of w_a"));
  pr->A = A;
  pr->wp = *w_a;
  pr->wq = *u_a;
  pr->v = *v_a;
  return DLK_OK;
}

/* [r, c] -> its transposed view [c, r]. */
static dlk_tensor transposed2(const dlk_tensor *t) {
  dlk_tensor r = *t;
  r.shape[0] = t->shape[1], r.shape[1] = t->shape[0];
  r.strides[0] = t->strides[1], r.strides[1] = t->strides[0];
  return r;
}

/* Columns [c0, c0 + n) of a 2-D view. */
static dlk_tensor columns2(const dlk_tensor *t, int64_t c0, int64_t n) {
  dlk_tensor r = *t;
  r.data = (char *)t->data + (size_t)(c0 * t->strides[1]) * dlk_dtype_size(t->dtype);
  r.shape[1] = n;
  return r;
}

/* Concat's w [A, Hd + He] as the two projections wq = w[:, :Hd]^T [Hd, A] and
   wp = w[:, Hd:]^T [He, A]. */
static void concat_split(const dlk_tensor *w, int64_t Hd, int64_t He, dlk_tensor *wp,
                         dlk_tensor *wq) {
  const dlk_tensor d = columns2(w, 0, Hd), e = columns2(w, Hd, He);
  *wq = transposed2(&d);
  *wp = transposed2(&e);
}

static const dlk_luong_attention_params luong_defaults = {DLK_LUONG_DOT};

/* The Luong problem: DOT (Hd = He, w and v NULL), GENERAL (w [Hd, He], v NULL), CONCAT
   (w [A, Hd + He], v [A]). */
static dlk_status luong_problem(dlk_context *ctx, const char *op,
                                const dlk_luong_attention_params *p, const dlk_tensor *enc,
                                const dlk_tensor *dec, const dlk_tensor *w, const dlk_tensor *v,
                                const dlk_tensor *enc_lengths, dlk_attn_problem *pr) {
  memset(pr, 0, sizeof *pr);
  pr->fn = op;
  if (p->score != DLK_LUONG_DOT && p->score != DLK_LUONG_GENERAL && p->score != DLK_LUONG_CONCAT)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: score %d is not DLK_LUONG_DOT, _GENERAL or _CONCAT", op, (int)p->score);
  static const char *const names[3] = {"dot", "general", "concat"};
  const char *sname = names[p->score];
  DLK_TRY(attn_inputs(ctx, op, enc, dec, enc_lengths, pr));
  if (p->score != DLK_LUONG_CONCAT && v)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: v is given but the %s score has no v (pass NULL)", op, sname);
  switch (p->score) {
    case DLK_LUONG_DOT:
      pr->kind = DLK_ATTN_DOT;
      if (w)
        return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                        "%s: w is given but the dot score has no w (pass NULL)", op);
      if (pr->Hd != pr->He)
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                        "%s: dec has %lld in dim 2 (Hd) but enc has %lld (He): the dot score "
                        "needs Hd = He",
                        op, (long long)pr->Hd, (long long)pr->He);
      break;
    case DLK_LUONG_GENERAL: {
      pr->kind = DLK_ATTN_GENERAL;
      static const char *const W_DIMS[2] = {"Hd", "He"};
      const int64_t want[2] = {pr->Hd, pr->He};
      DLK_TRY(dlk_check_need(ctx, op, "w", w));
      DLK_TRY(attn_check_like(ctx, op, "w", w, enc, 2, want, W_DIMS, "Hd of dec, He of enc"));
      pr->wp = *w;
      break;
    }
    case DLK_LUONG_CONCAT: {
      pr->kind = DLK_ATTN_ADDITIVE;
      DLK_TRY(dlk_check_need(ctx, op, "w", w));
      DLK_TRY(dlk_check_need(ctx, op, "v", v));
      DLK_TRY(dlk_check_float(ctx, op, "w", w));
      DLK_TRY(dlk_check_same_dtype(ctx, op, "enc", enc, "w", w));
      if (w->ndim != 2)
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: w has %d dims, expected 2 ([A, Hd + He])",
                        op, w->ndim);
      if (w->shape[1] != pr->Hd + pr->He)
        return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                        "%s: w has %lld in dim 1 (Hd + He), expected %lld (Hd of dec + He of "
                        "enc)",
                        op, (long long)w->shape[1], (long long)(pr->Hd + pr->He));
      pr->A = w->shape[0];
      DLK_TRY(attn_check_vec(ctx, op, "v", v, enc, pr->A, "A, w's dim 0"));
      concat_split(w, pr->Hd, pr->He, &pr->wp, &pr->wq);
      pr->v = *v;
      break;
    }
  }
  return DLK_OK;
}

/* The forward's outputs: context [B, Td, He], weights [B, Td, Te], enc's dtype, neither
   overlapping an input or the other. */
static dlk_status attn_fwd_outputs(dlk_context *ctx, const char *op, const dlk_tensor *enc,
                                   const dlk_tensor *dec, const dlk_tensor *w1, const char *w1_name,
                                   const dlk_tensor *w2, const char *w2_name, const dlk_tensor *v,
                                   const char *v_name, const dlk_tensor *lengths,
                                   dlk_tensor *context, dlk_tensor *weights, dlk_attn_fwd_args *a) {
  DLK_TRY(dlk_check_need(ctx, op, "context", context));
  DLK_TRY(dlk_check_need(ctx, op, "weights", weights));
  const dlk_attn_problem *p = &a->p;
  const int64_t cw[3] = {p->B, p->Td, p->He}, ww[3] = {p->B, p->Td, p->Te};
  DLK_TRY(attn_check_like(ctx, op, "context", context, enc, 3, cw, CTX_DIMS,
                          "B, Td of dec and He of enc"));
  DLK_TRY(attn_check_like(ctx, op, "weights", weights, enc, 3, ww, WTS_DIMS,
                          "B, Td of dec and Te of enc"));
  const dlk_tensor *ins[6] = {enc, dec, w1, w2, v, lengths};
  const char *const in_names[6] = {"enc", "dec", w1_name, w2_name, v_name, "enc_lengths"};
  dlk_tensor *outs[2] = {context, weights};
  static const char *const out_names[2] = {"context", "weights"};
  DLK_TRY(check_outputs(ctx, op, 2, outs, out_names, 6, ins, in_names));
  a->context = *context;
  a->weights = *weights;
  return DLK_OK;
}

/* The backward's inputs after the problem: weights (required), dcontext and dweights (at
   least one), in *a. */
static dlk_status attn_bwd_inputs(dlk_context *ctx, const char *op, const dlk_tensor *weights,
                                  const dlk_tensor *dcontext, const dlk_tensor *dweights,
                                  dlk_attn_bwd_args *a) {
  const dlk_attn_problem *p = &a->p;
  const int64_t cw[3] = {p->B, p->Td, p->He}, ww[3] = {p->B, p->Td, p->Te};
  DLK_TRY(dlk_check_need(ctx, op, "weights", weights));
  DLK_TRY(attn_check_like(ctx, op, "weights", weights, &p->enc, 3, ww, WTS_DIMS,
                          "B, Td of dec and Te of enc"));
  if (!dcontext && !dweights)
    return dlk_fail(ctx, DLK_ERR_NULL_POINTER,
                    "%s: dcontext and dweights are both NULL (at least one is needed)", op);
  if (dcontext)
    DLK_TRY(attn_check_like(ctx, op, "dcontext", dcontext, &p->enc, 3, cw, CTX_DIMS,
                            "B, Td of dec and He of enc"));
  if (dweights)
    DLK_TRY(attn_check_like(ctx, op, "dweights", dweights, &p->enc, 3, ww, WTS_DIMS,
                            "B, Td of dec and Te of enc"));
  a->weights = *weights;
  a->has_dcontext = dcontext != NULL;
  if (dcontext) a->dcontext = *dcontext;
  a->has_dweights = dweights != NULL;
  if (dweights) a->dweights = *dweights;
  return DLK_OK;
}

/* A gradient shaped like its input (2-D or 3-D, or 1-D for a vector). */
static dlk_status attn_check_grad(dlk_context *ctx, const char *op, const char *name,
                                  const dlk_tensor *t, const char *iname, const dlk_tensor *in) {
  DLK_TRY(dlk_check_float(ctx, op, name, t));
  DLK_TRY(dlk_check_same_dtype(ctx, op, iname, in, name, t));
  if (t->ndim != in->ndim)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: %s has %d dims, expected %d (%s's shape)", op,
                    name, t->ndim, in->ndim, iname);
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] != in->shape[k])
      return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                      "%s: %s has %lld in dim %d, expected %lld (%s's shape)", op, name,
                      (long long)t->shape[k], k, (long long)in->shape[k], iname);
  return DLK_OK;
}

/* The gradients: each like its input, none overlapping an input or another gradient. */
static dlk_status attn_bwd_outputs(dlk_context *ctx, const char *op, int n,
                                   dlk_tensor *const *grads, const char *const *grad_names,
                                   const dlk_tensor *const *ins, const char *const *in_names,
                                   int nall, const dlk_tensor *const *all_ins,
                                   const char *const *all_names) {
  for (int k = 0; k < n; k++) {
    if (!grads[k]) continue;
    if (!ins[k])
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                      "%s: %s is given but %s is NULL (no input, no gradient)", op, grad_names[k],
                      in_names[k]);
    DLK_TRY(attn_check_grad(ctx, op, grad_names[k], grads[k], in_names[k], ins[k]));
  }
  return check_outputs(ctx, op, n, grads, grad_names, nall, all_ins, all_names);
}

/* Nothing asked of a backward: DLK_OK without a dispatch (explain says so). */
static bool attn_nothing_asked(dlk_context *ctx, const char *op, int n, dlk_tensor *const *grads) {
  for (int k = 0; k < n; k++)
    if (grads[k]) return false;
  if (ctx->explain)
    snprintf(ctx->explain_text, sizeof ctx->explain_text,
             "%s: nothing asked (every gradient NULL)\n", op);
  return true;
}

dlk_status dlk_additive_attention_forward(dlk_context *ctx, const dlk_tensor *enc,
                                          const dlk_tensor *dec, const dlk_tensor *w_a,
                                          const dlk_tensor *u_a, const dlk_tensor *v_a,
                                          const dlk_tensor *enc_lengths, dlk_tensor *context,
                                          dlk_tensor *weights) {
  static const char op[] = "additive_attention_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_attn_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(additive_problem(ctx, op, enc, dec, w_a, u_a, v_a, enc_lengths, &a.p));
  DLK_TRY(attn_fwd_outputs(ctx, op, enc, dec, w_a, "w_a", u_a, "u_a", v_a, "v_a", enc_lengths,
                           context, weights, &a));
  return dlk_dispatch(ctx, &additive_attn_fwd_op, &a);
}

dlk_status dlk_additive_attention_backward(dlk_context *ctx, const dlk_tensor *enc,
                                           const dlk_tensor *dec, const dlk_tensor *w_a,
                                           const dlk_tensor *u_a, const dlk_tensor *v_a,
                                           const dlk_tensor *enc_lengths, const dlk_tensor *weights,
                                           const dlk_tensor *dcontext, const dlk_tensor *dweights,
                                           dlk_tensor *denc, dlk_tensor *ddec, dlk_tensor *dw_a,
                                           dlk_tensor *du_a, dlk_tensor *dv_a) {
  static const char op[] = "additive_attention_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_attn_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(additive_problem(ctx, op, enc, dec, w_a, u_a, v_a, enc_lengths, &a.p));
  DLK_TRY(attn_bwd_inputs(ctx, op, weights, dcontext, dweights, &a));
  dlk_tensor *grads[5] = {denc, ddec, dw_a, du_a, dv_a};
  static const char *const gnames[5] = {"denc", "ddec", "dw_a", "du_a", "dv_a"};
  const dlk_tensor *ins[5] = {enc, dec, w_a, u_a, v_a};
  static const char *const inames[5] = {"enc", "dec", "w_a", "u_a", "v_a"};
  const dlk_tensor *all[9] = {enc, dec, w_a, u_a, v_a, enc_lengths, weights, dcontext, dweights};
  static const char *const all_names[9] = {"enc",         "dec",     "w_a",      "u_a",     "v_a",
                                           "enc_lengths", "weights", "dcontext", "dweights"};
  DLK_TRY(attn_bwd_outputs(ctx, op, 5, grads, gnames, ins, inames, 9, all, all_names));
  if (attn_nothing_asked(ctx, op, 5, grads)) return DLK_OK;
  a.has_denc = denc != NULL, a.has_ddec = ddec != NULL, a.has_dwp = dw_a != NULL,
  a.has_dwq = du_a != NULL, a.has_dv = dv_a != NULL;
  if (denc) a.denc = *denc;
  if (ddec) a.ddec = *ddec;
  if (dw_a) a.dwp = *dw_a;
  if (du_a) a.dwq = *du_a;
  if (dv_a) a.dv = *dv_a;
  return dlk_dispatch(ctx, &additive_attn_bwd_op, &a);
}

dlk_status dlk_luong_attention_forward(dlk_context *ctx, const dlk_luong_attention_params *p,
                                       const dlk_tensor *enc, const dlk_tensor *dec,
                                       const dlk_tensor *w, const dlk_tensor *v,
                                       const dlk_tensor *enc_lengths, dlk_tensor *context,
                                       dlk_tensor *weights) {
  static const char op[] = "luong_attention_forward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &luong_defaults;
  dlk_attn_fwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(luong_problem(ctx, op, p, enc, dec, w, v, enc_lengths, &a.p));
  DLK_TRY(attn_fwd_outputs(ctx, op, enc, dec, w, "w", NULL, "", v, "v", enc_lengths, context,
                           weights, &a));
  return dlk_dispatch(ctx, &luong_attn_fwd_op, &a);
}

dlk_status dlk_luong_attention_backward(dlk_context *ctx, const dlk_luong_attention_params *p,
                                        const dlk_tensor *enc, const dlk_tensor *dec,
                                        const dlk_tensor *w, const dlk_tensor *v,
                                        const dlk_tensor *enc_lengths, const dlk_tensor *weights,
                                        const dlk_tensor *dcontext, const dlk_tensor *dweights,
                                        dlk_tensor *denc, dlk_tensor *ddec, dlk_tensor *dw,
                                        dlk_tensor *dv) {
  static const char op[] = "luong_attention_backward";
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!p) p = &luong_defaults;
  dlk_attn_bwd_args a;
  memset(&a, 0, sizeof a);
  DLK_TRY(luong_problem(ctx, op, p, enc, dec, w, v, enc_lengths, &a.p));
  DLK_TRY(attn_bwd_inputs(ctx, op, weights, dcontext, dweights, &a));
  dlk_tensor *grads[4] = {denc, ddec, dw, dv};
  static const char *const gnames[4] = {"denc", "ddec", "dw", "dv"};
  const dlk_tensor *ins[4] = {enc, dec, w, v};
  static const char *const inames[4] = {"enc", "dec", "w", "v"};
  const dlk_tensor *all[8] = {enc, dec, w, v, enc_lengths, weights, dcontext, dweights};
  static const char *const all_names[8] = {"enc",         "dec",     "w",        "v",
                                           "enc_lengths", "weights", "dcontext", "dweights"};
  DLK_TRY(attn_bwd_outputs(ctx, op, 4, grads, gnames, ins, inames, 8, all, all_names));
  if (attn_nothing_asked(ctx, op, 4, grads)) return DLK_OK;
  a.has_denc = denc != NULL, a.has_ddec = ddec != NULL, a.has_dv = dv != NULL;
  if (denc) a.denc = *denc;
  if (ddec) a.ddec = *ddec;
  if (dv) a.dv = *dv;
  if (dw && p->score == DLK_LUONG_GENERAL) a.has_dwp = true, a.dwp = *dw;
  if (dw && p->score == DLK_LUONG_CONCAT) {
    a.has_dwp = a.has_dwq = true;
    concat_split(dw, a.p.Hd, a.p.He, &a.dwp, &a.dwq);
  }
  return dlk_dispatch(ctx, &luong_attn_bwd_op, &a);
}

/* ====================================================================================== */
/* The family's ops, for the registry (dlk_op_count, dlk_op_variants, forcing by name)    */
/* ====================================================================================== */

const dlk_op *const dlk_attention_ops[] = {&sdpa_fwd_op,          &sdpa_bwd_op,
                                           &additive_attn_fwd_op, &additive_attn_bwd_op,
                                           &luong_attn_fwd_op,    &luong_attn_bwd_op,
                                           NULL};
