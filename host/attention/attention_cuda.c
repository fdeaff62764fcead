/*
 * attention family: the hand-written CUDA variant rows (ids 1..9). Each row's supports()
 * says exactly why it cannot run a case (dtype, head dims, strides, alignment, the GPU's
 * architecture, the naive variants' workspace limit); run() turns the checked record
 * (host/attention/attention.h) into the launcher's plain descriptor
 * (kernels/attention/attention.h) and launches on the context's stream.
 *
 * Lengths live on the device: before anything is written, run() launches the one-block
 * lengths check, which writes the first bad entry into ctx->host_scratch (pinned), waits
 * for it and fails with DLK_ERR_OUT_OF_RANGE, as the CPU reference does. With
 * unchecked_ids the check (and its synchronisation) is skipped; the kernels clamp lengths
 * into [0, T], so a bad length never causes an out-of-bounds access.
 *
 * Sections: scaled-dot-product attention; additive and Luong attention below it (whose
 * rows also run nn's gemm kernels, kernels/nn/nn.h).
 */
#include "attention.h"

/* Every host .c file is compiled in every build: a CPU-only build gets an empty file. */
#if DLK_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../../kernels/attention/attention.h"
#include "../../kernels/nn/nn.h"

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

static dlk_k_t4 t4(const dlk_tensor *t) {
  dlk_k_t4 r = {t->data, t->strides[0], t->strides[1], t->strides[2], t->strides[3]};
  return r;
}

static dlk_k_t4 t4_opt(bool has, const dlk_tensor *t) {
  dlk_k_t4 r = {NULL, 0, 0, 0, 0};
  return has ? t4(t) : r;
}

/* The descriptor both directions share. */
static void sdpa_desc(const dlk_context *ctx, const dlk_sdpa_problem *p, dlk_k_sdpa_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)p->dtype;
  d->B = p->B, d->Hq = p->Hq, d->Hk = p->Hk, d->Tq = p->Tq, d->Tk = p->Tk, d->D = p->D,
  d->Dv = p->Dv;
  d->scale = p->scale;
  d->causal = p->causal;
  d->seed = p->seed;
  d->offset = p->offset;
  /* keep iff dlk_dropout_uniform >= p  <=>  (mix >> 11) 2^-53 >= p  <=>  (mix >> 11) >= ceil(p
   * 2^53) */
  d->drop_threshold = p->dropout > 0.0 ? (uint64_t)ceil(p->dropout * 9007199254740992.0) : 0;
  d->drop_scale = p->dropout > 0.0 ? 1.0 / (1.0 - p->dropout) : 1.0;
  d->q = t4(&p->q);
  d->k = t4(&p->k);
  d->v = t4(&p->v);
  d->bias = t4_opt(p->has_bias, &p->bias);
  if (p->has_q_lengths) {
    d->q_len = p->q_lengths.data;
    d->q_len_dtype = (int)p->q_lengths.dtype;
    d->q_len_s = p->q_lengths.strides[0];
  }
  if (p->has_k_lengths) {
    d->k_len = p->k_lengths.data;
    d->k_len_dtype = (int)p->k_lengths.dtype;
    d->k_len_s = p->k_lengths.strides[0];
  }
  d->deterministic = ctx->opts.deterministic != 0;
}

void dlk_sdpa_fwd_desc(const dlk_context *ctx, const dlk_sdpa_fwd_args *a, dlk_k_sdpa_desc *d) {
  sdpa_desc(ctx, &a->p, d);
  d->out = t4(&a->out);
  if (a->has_lse) {
    d->lse = a->lse.data;
    d->lse_s0 = a->lse.strides[0], d->lse_s1 = a->lse.strides[1], d->lse_s2 = a->lse.strides[2];
  }
}

void dlk_sdpa_bwd_desc(const dlk_context *ctx, const dlk_sdpa_bwd_args *a, dlk_k_sdpa_desc *d) {
  sdpa_desc(ctx, &a->p, d);
  d->out = t4(&a->out);
  d->dout = t4(&a->dout);
  d->lse = a->lse.data;
  d->lse_s0 = a->lse.strides[0], d->lse_s1 = a->lse.strides[1], d->lse_s2 = a->lse.strides[2];
  d->dq = t4_opt(a->has_dq, &a->dq);
  d->dk = t4_opt(a->has_dk, &a->dk);
  d->dv = t4_opt(a->has_dv, &a->dv);
  d->dbias = t4_opt(a->has_dbias, &a->dbias);
  for (int k = 0; k < 4; k++) d->dbias_n[k] = a->has_dbias ? a->dbias.shape[k] : 0;
}

/* The GPU generation each impl needs: mma.sync with bf16 is sm_80+; wgmma/TMA is sm_90a
   (built for 90a and running on a 9.0 device). */
static bool sdpa_arch_ok(const dlk_context *ctx, int impl, char *why, size_t n) {
  if (impl == 2 && ctx->cc_major < 8) {
    snprintf(why, n,
             "mma.sync bf16/f16 tensor cores need compute capability 8.0+ (this GPU is %d.%d)",
             ctx->cc_major, ctx->cc_minor);
    return false;
  }
  if (impl == 4 && ctx->cc_major < 8) {
    snprintf(why, n,
             "up to 82 KiB of shared memory per block: compute capability 8.0+ (this GPU is %d.%d)",
             ctx->cc_major, ctx->cc_minor);
    return false;
  }
  if (impl == 3) {
#if defined(DLK_CUDA_EMU)
    snprintf(why, n, "needs a real GPU (inline PTX: wgmma, TMA, mbarrier)");
    return false;
#endif
    if (!DLK_HAVE_SM90A) {
      snprintf(why, n, "built without sm_90a (add 90a to DLK_CUDA_ARCHS)");
      return false;
    }
    if (ctx->cc_major != 9 || ctx->cc_minor != 0) {
      snprintf(why, n, "wgmma/TMA kernel is sm_90a only (this GPU is %d.%d)", ctx->cc_major,
               ctx->cc_minor);
      return false;
    }
  }
  return true;
}

/* The lengths check before anything is written (see the top of this file). */
dlk_status dlk_sdpa_check_lengths_cuda(dlk_context *ctx, const char *op, const dlk_k_sdpa_desc *d) {
  if ((!d->q_len && !d->k_len) || ctx->opts.unchecked_ids || d->B <= 0) return DLK_OK;
  int64_t *flag = (int64_t *)ctx->host_scratch;
  if (!flag) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", op);
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_check_lengths(d, flag, ctx->stream));
  DLK_CUDA_TRY(ctx, cudaStreamSynchronize((cudaStream_t)ctx->stream));
  volatile int64_t *vf = flag; /* written by the kernel behind the compiler's back */
  if (vf[0] >= 0)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: %s[%lld] = %lld is outside [1, %lld] (%s)", op,
                    vf[0] ? "k_lengths" : "q_lengths", (long long)vf[1], (long long)vf[2],
                    (long long)(vf[0] ? d->Tk : d->Tq), vf[0] ? "Tk" : "Tq");
  return DLK_OK;
}

bool dlk_sdpa_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                size_t n) {
  if (!sdpa_arch_ok(ctx, impl, why, n)) return false;
  dlk_k_sdpa_desc d;
  dlk_sdpa_fwd_desc(ctx, args, &d);
  return dlk_k_sdpa_fwd_supports(&d, impl, why, n) != 0;
}

size_t dlk_sdpa_fwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  dlk_k_sdpa_desc d;
  dlk_sdpa_fwd_desc(ctx, args, &d);
  return dlk_k_sdpa_fwd_ws(&d, impl);
}

dlk_status dlk_sdpa_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_sdpa_desc d;
  dlk_sdpa_fwd_desc(ctx, args, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_forward", &d));
  if (impl == 3) { /* the wgmma kernel reports a refused TMA map with its detail */
    char err[512];
    int rc = dlk_k_sdpa_fwd_wgmma(&d, err, sizeof err, ctx->stream);
    if (rc != 0 && err[0]) return dlk_fail(ctx, DLK_ERR_CUDA, "sdpa_forward/flash_wgmma: %s", err);
    DLK_CUDA_TRY(ctx, rc);
    return DLK_OK;
  }
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_fwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

bool dlk_sdpa_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                size_t n) {
  if (!sdpa_arch_ok(ctx, impl, why, n)) return false;
  dlk_k_sdpa_desc d;
  dlk_sdpa_bwd_desc(ctx, args, &d);
  return dlk_k_sdpa_bwd_supports(&d, impl, why, n) != 0;
}

size_t dlk_sdpa_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  dlk_k_sdpa_desc d;
  dlk_sdpa_bwd_desc(ctx, args, &d);
  return dlk_k_sdpa_bwd_ws(&d, impl);
}

dlk_status dlk_sdpa_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)ws_bytes;
  dlk_k_sdpa_desc d;
  dlk_sdpa_bwd_desc(ctx, args, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_backward", &d));
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_bwd(&d, impl, ws, ctx->stream));
  return DLK_OK;
}

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention                                                */
/* ====================================================================================== */
/*
 * Both variants start from the projections, run as nn's gemm kernels (kernels/nn/nn.h:
 * mma.sync tensor cores for f16/bf16 where the operands fit, the tiled kernel otherwise)
 * into the workspace: P = enc wp [B, Te, A] and Q = dec wq [B, Td, A] for the additive
 * score (and Luong concat), Q = dec w [B, Td, He] for general.
 *   impl 1 composed: the eager order, GEMMs plus kernels/attention/additive_{fwd,bwd}.cu's
 *     pointwise and row kernels; materialises tanh(P_j + Q_i) as [B, Td, Te, A] and works
 *     on a masked, contiguous copy of enc (steps past the lengths zeroed: never read).
 *   impl 2 fused: the fused kernels after the projections; the weight gradients and the
 *     projections' backward are GEMMs again.
 * Every intermediate the GEMMs read or write is in the data's dtype (as an eager framework
 * keeps it); the fused kernels keep theirs in f32 (f64 for f64).
 */

static dlk_k_t3 k_t3(const dlk_tensor *t) {
  dlk_k_t3 r = {t->data, t->strides[0], t->strides[1], t->strides[2]};
  return r;
}

static dlk_k_mat kmat(void *data, int64_t batch, int64_t rows, int64_t cols, int64_t bs, int64_t rs,
                      int64_t cs) {
  dlk_k_mat m = {data, batch, rows, cols, bs, rs, cs};
  return m;
}
/* [B, R, C] as a batch of matrices; a contiguous [B, R, C] buffer; a 2-D tensor shared by
   the batch; a transposed view. */
static dlk_k_mat mat_t3(const dlk_tensor *t) {
  return kmat(t->data, t->shape[0], t->shape[1], t->shape[2], t->strides[0], t->strides[1],
              t->strides[2]);
}
static dlk_k_mat mat_c3(void *p, int64_t B, int64_t R, int64_t C) {
  return kmat(p, B, R, C, R * C, C, 1);
}
static dlk_k_mat mat_2d(const dlk_tensor *t) {
  return kmat(t->data, 1, t->shape[0], t->shape[1], 0, t->strides[0], t->strides[1]);
}
static dlk_k_mat mat_tr(dlk_k_mat m) {
  return kmat(m.data, m.batch, m.cols, m.rows, m.bs, m.cs, m.rs);
}
/* [B, R, C] whose batch merges with its rows (bs = R rs) as one [B R, C] matrix. */
static dlk_k_mat mat_flat(dlk_k_mat m) {
  return kmat(m.data, 1, m.batch * m.rows, m.cols, 0, m.rs, m.cs);
}
static bool rows_merge(const dlk_tensor *t) {
  return t->shape[0] <= 1 || t->shape[1] == 0 || t->strides[0] == t->shape[1] * t->strides[1];
}

/* c = a @ b + beta c with nn's gemm kernels: mma.sync for f16/bf16 where the operands fit
   it (compute capability 8.0+), else the tiled kernel (any strides, every dtype). The
   batch is c's; an operand with bs 0 is shared by the batch. */
static dlk_status attn_gemm(dlk_context *ctx, dlk_dtype dt, dlk_k_mat a, dlk_k_mat b, dlk_k_mat c,
                            double beta) {
  dlk_k_gemm_desc g;
  memset(&g, 0, sizeof g);
  g.dtype = (int)dt;
  g.act = DLK_ACT_NONE;
  g.alpha = 1.0;
  g.beta = beta;
  g.a = a, g.b = b, g.c = c;
  int impl = 2;
#if !defined(DLK_CUDA_EMU)
  char why[256];
  if ((dt == DLK_F16 || dt == DLK_BF16) && ctx->cc_major >= 8 &&
      dlk_k_gemm_supports(&g, 3, why, sizeof why))
    impl = 3;
#endif
  DLK_CUDA_TRY(ctx, dlk_k_gemm(&g, impl, NULL, ctx->stream));
  return DLK_OK;
}

/* The descriptor of a problem (outputs filled by the caller). */
static void attn_desc(const dlk_attn_problem *p, dlk_k_attn_desc *d) {
  memset(d, 0, sizeof *d);
  d->dtype = (int)p->dtype;
  d->kind = (int)p->kind;
  d->B = p->B, d->Te = p->Te, d->Td = p->Td, d->He = p->He, d->Hd = p->Hd, d->A = p->A;
  d->enc = k_t3(&p->enc);
  d->dec = k_t3(&p->dec);
  if (p->kind == DLK_ATTN_ADDITIVE) {
    d->v.data = p->v.data;
    d->v.n = p->A;
    d->v.s = p->v.strides[0];
  }
  if (p->has_lengths) {
    d->len = p->lengths.data;
    d->len_dtype = (int)p->lengths.dtype;
    d->len_s = p->lengths.strides[0];
  }
}

/* The lengths in [1, Te], checked on the device before anything is written (SDPA's check
   kernel with the encoder lengths as its key lengths); skipped with unchecked_ids. */
static dlk_status attn_check_lengths_cuda(dlk_context *ctx, const dlk_attn_problem *p) {
  if (!p->has_lengths || ctx->opts.unchecked_ids || p->B <= 0) return DLK_OK;
  int64_t *flag = (int64_t *)ctx->host_scratch;
  if (!flag) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: context has no host scratch", p->fn);
  dlk_k_sdpa_desc d;
  memset(&d, 0, sizeof d);
  d.B = p->B, d.Tq = 1, d.Tk = p->Te;
  d.k_len = p->lengths.data;
  d.k_len_dtype = (int)p->lengths.dtype;
  d.k_len_s = p->lengths.strides[0];
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_check_lengths(&d, flag, ctx->stream));
  DLK_CUDA_TRY(ctx, cudaStreamSynchronize((cudaStream_t)ctx->stream));
  volatile int64_t *vf = flag; /* written by the kernel behind the compiler's back */
  if (vf[0] >= 0)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE,
                    "%s: enc_lengths[%lld] = %lld is outside [1, %lld] (Te)", p->fn,
                    (long long)vf[1], (long long)vf[2], (long long)p->Te);
  return DLK_OK;
}

/* ---- workspace layouts (byte offsets, each 256-aligned; 0 size: not used) ---- */

typedef struct attn_cuda_ws {
  size_t encm, decc, P, Q, H, e, gc, de, dP, dQ, ones, fused, total;
} attn_cuda_ws;

static size_t ws_take(size_t *n, size_t bytes) {
  const size_t at = *n;
  *n += (bytes + 255) / 256 * 256;
  return at;
}

static size_t qcols(const dlk_attn_problem *p) {
  return (size_t)(p->kind == DLK_ATTN_ADDITIVE ? p->A : p->He);
}

static attn_cuda_ws attn_fwd_ws_layout(const dlk_attn_fwd_args *a, int impl) {
  const dlk_attn_problem *p = &a->p;
  const size_t es = dlk_dtype_size(p->dtype), B = (size_t)p->B, Te = (size_t)p->Te,
               Td = (size_t)p->Td, A = (size_t)p->A;
  attn_cuda_ws L;
  memset(&L, 0, sizeof L);
  size_t n = 0;
  if (impl == 1) L.encm = ws_take(&n, B * Te * (size_t)p->He * es);
  if (p->kind == DLK_ATTN_ADDITIVE) L.P = ws_take(&n, B * Te * A * es);
  if (p->kind != DLK_ATTN_DOT) L.Q = ws_take(&n, B * Td * qcols(p) * es);
  if (impl == 1 && p->kind == DLK_ATTN_ADDITIVE) L.H = ws_take(&n, B * Td * Te * A * es);
  if (impl == 1) L.e = ws_take(&n, B * Td * Te * es);
  if (impl == 2) {
    dlk_k_attn_desc d;
    attn_desc(p, &d);
    L.fused = ws_take(&n, dlk_k_attn_fwd_fused_ws(&d));
  }
  L.total = n;
  return L;
}

/* Which intermediates a backward needs. */
typedef struct attn_bwd_needs {
  bool dP, dQ, encm, decc;
} attn_bwd_needs;

static attn_bwd_needs attn_bwd_need(const dlk_attn_bwd_args *a, int impl) {
  const dlk_attn_problem *p = &a->p;
  attn_bwd_needs n;
  const bool add = p->kind == DLK_ATTN_ADDITIVE, gen = p->kind == DLK_ATTN_GENERAL;
  n.dP = add && (a->has_denc || a->has_dwp);
  n.dQ = (add && (a->has_ddec || a->has_dwq)) || (gen && (a->has_ddec || a->has_dwp));
  n.encm = impl == 1 || (add && a->has_dwp && (p->has_lengths || !rows_merge(&p->enc)));
  n.decc = ((add && a->has_dwq) || (gen && a->has_dwp)) && !rows_merge(&p->dec);
  return n;
}

static attn_cuda_ws attn_bwd_ws_layout(const dlk_attn_bwd_args *a, int impl) {
  const dlk_attn_problem *p = &a->p;
  const attn_bwd_needs need = attn_bwd_need(a, impl);
  const size_t es = dlk_dtype_size(p->dtype), B = (size_t)p->B, Te = (size_t)p->Te,
               Td = (size_t)p->Td, A = (size_t)p->A;
  const bool add = p->kind == DLK_ATTN_ADDITIVE;
  attn_cuda_ws L;
  memset(&L, 0, sizeof L);
  size_t n = 0;
  if (need.encm) L.encm = ws_take(&n, B * Te * (size_t)p->He * es);
  if (need.decc) L.decc = ws_take(&n, B * Td * (size_t)p->Hd * es);
  if (add) L.P = ws_take(&n, B * Te * A * es);
  if (p->kind != DLK_ATTN_DOT) L.Q = ws_take(&n, B * Td * qcols(p) * es);
  if (need.dP) L.dP = ws_take(&n, B * Te * A * es);
  if (need.dQ) L.dQ = ws_take(&n, B * Td * qcols(p) * es);
  if (impl == 1) {
    if (a->has_dcontext) L.gc = ws_take(&n, B * Td * Te * es);
    L.de = ws_take(&n, B * Td * Te * es);
    if (add) L.H = ws_take(&n, B * Td * Te * A * es);
    L.ones = ws_take(&n, (Td > Te ? Td : Te) * es);
  } else {
    dlk_k_attn_desc d;
    attn_desc(p, &d);
    if (add && a->has_dv) d.dv.data = a->dv.data; /* sizes the dv partials */
    L.fused = ws_take(&n, dlk_k_attn_bwd_fused_ws(&d));
  }
  L.total = n;
  return L;
}

/* ---- forward ---- */

/* The projections into the workspace: P = enc wp (additive), Q = dec wq (additive) or
   dec w (general); `enc` is the caller's or the masked copy. */
static dlk_status attn_project_cuda(dlk_context *ctx, const dlk_attn_problem *p, dlk_k_mat enc,
                                    char *w, const attn_cuda_ws *L, dlk_k_attn_desc *d) {
  const dlk_dtype dt = p->dtype;
  if (p->kind == DLK_ATTN_ADDITIVE) {
    DLK_TRY(attn_gemm(ctx, dt, enc, mat_2d(&p->wp), mat_c3(w + L->P, p->B, p->Te, p->A), 0.0));
    DLK_TRY(attn_gemm(ctx, dt, mat_t3(&p->dec), mat_2d(&p->wq), mat_c3(w + L->Q, p->B, p->Td, p->A),
                      0.0));
    d->P = w + L->P;
    d->Q = w + L->Q;
  } else if (p->kind == DLK_ATTN_GENERAL) {
    DLK_TRY(attn_gemm(ctx, dt, mat_t3(&p->dec), mat_2d(&p->wp),
                      mat_c3(w + L->Q, p->B, p->Td, p->He), 0.0));
    d->Q = w + L->Q;
  }
  return DLK_OK;
}

/* impl 1: gather, projections, add-tanh, e = H v (or the dot products), masked row softmax,
   context = weights @ enc. */
static dlk_status attn_fwd_composed(dlk_context *ctx, const dlk_attn_fwd_args *a, char *w,
                                    const attn_cuda_ws *L, dlk_k_attn_desc *d) {
  const dlk_attn_problem *p = &a->p;
  const dlk_dtype dt = p->dtype;
  const int64_t B = p->B, Te = p->Te, Td = p->Td, He = p->He, A = p->A;
  void *encm = w + L->encm, *e = w + L->e;
  DLK_CUDA_TRY(ctx, dlk_k_attn_gather(d, d->enc, Te, He, p->has_lengths, encm, ctx->stream));
  const dlk_k_mat enc3 = mat_c3(encm, B, Te, He), e3 = mat_c3(e, B, Td, Te);
  DLK_TRY(attn_project_cuda(ctx, p, enc3, w, L, d));
  switch (p->kind) {
    case DLK_ATTN_ADDITIVE:
      DLK_CUDA_TRY(ctx, dlk_k_attn_add_tanh(d, w + L->H, ctx->stream));
      DLK_TRY(attn_gemm(ctx, dt, kmat(w + L->H, 1, B * Td * Te, A, 0, A, 1),
                        kmat(p->v.data, 1, A, 1, 0, p->v.strides[0], 1),
                        kmat(e, 1, B * Td * Te, 1, 0, 1, 1), 0.0));
      break;
    case DLK_ATTN_DOT: DLK_TRY(attn_gemm(ctx, dt, mat_t3(&p->dec), mat_tr(enc3), e3, 0.0)); break;
    case DLK_ATTN_GENERAL:
      DLK_TRY(attn_gemm(ctx, dt, mat_c3(w + L->Q, B, Td, He), mat_tr(enc3), e3, 0.0));
      break;
  }
  DLK_CUDA_TRY(ctx, dlk_k_attn_softmax_rows(d, e, ctx->stream));
  return attn_gemm(ctx, dt, mat_t3(&a->weights), enc3, mat_t3(&a->context), 0.0);
}

static void attn_fwd_kdesc(const dlk_attn_fwd_args *a, dlk_k_attn_desc *d) {
  attn_desc(&a->p, d);
  d->context = k_t3(&a->context);
  d->weights = k_t3(&a->weights);
}

bool dlk_attn_fwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                size_t n) {
  (void)ctx;
  if (impl != 2) return true;
  dlk_k_attn_desc d;
  attn_fwd_kdesc(args, &d);
  return dlk_k_attn_fwd_fused_supports(&d, why, n) != 0;
}

size_t dlk_attn_fwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  return attn_fwd_ws_layout(args, impl).total;
}

dlk_status dlk_attn_fwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_attn_fwd_args *a = args;
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(attn_check_lengths_cuda(ctx, &a->p));
  dlk_k_attn_desc d;
  attn_fwd_kdesc(a, &d);
  const attn_cuda_ws L = attn_fwd_ws_layout(a, impl);
  char *w = ws;
  if (impl == 1) return attn_fwd_composed(ctx, a, w, &L, &d);
  DLK_TRY(attn_project_cuda(ctx, &a->p, mat_t3(&a->p.enc), w, &L, &d));
  DLK_CUDA_TRY(ctx, dlk_k_attn_fwd_fused(&d, w + L.fused, ctx->stream));
  return DLK_OK;
}

/* ---- backward ---- */

static void attn_bwd_kdesc(const dlk_attn_bwd_args *a, dlk_k_attn_desc *d) {
  attn_desc(&a->p, d);
  d->alpha = k_t3(&a->weights);
  if (a->has_dcontext) d->dcontext = k_t3(&a->dcontext);
  if (a->has_dweights) d->dweights = k_t3(&a->dweights);
}

/* dec as a [B Td, Hd] matrix: the caller's when its rows merge, else the copy. */
static dlk_status attn_dec_rows(dlk_context *ctx, const dlk_attn_problem *p, char *w,
                                const attn_cuda_ws *L, const attn_bwd_needs *need,
                                const dlk_k_attn_desc *d, dlk_k_mat *out) {
  if (!need->decc) {
    *out = mat_flat(mat_t3(&p->dec));
    return DLK_OK;
  }
  DLK_CUDA_TRY(ctx, dlk_k_attn_gather(d, d->dec, p->Td, p->Hd, 0, w + L->decc, ctx->stream));
  *out = mat_flat(mat_c3(w + L->decc, p->B, p->Td, p->Hd));
  return DLK_OK;
}

/* impl 1: gather, gc = dcontext @ enc^T, masked softmax backward, denc = alpha^T dcontext,
   then per score: additive H = tanh(P + Q), dv = H^T de, dZ in place, dP and dQ as GEMMs
   with a ones vector (the sums over i and j), the projections' backward; dot and general
   their GEMMs. */
static dlk_status attn_bwd_composed(dlk_context *ctx, const dlk_attn_bwd_args *a, char *w,
                                    const attn_cuda_ws *L, dlk_k_attn_desc *d) {
  const dlk_attn_problem *p = &a->p;
  const attn_bwd_needs need = attn_bwd_need(a, 1);
  const dlk_dtype dt = p->dtype;
  const int64_t B = p->B, Te = p->Te, Td = p->Td, He = p->He, A = p->A;
  void *encm = w + L->encm, *de = w + L->de, *gc = a->has_dcontext ? w + L->gc : NULL;
  DLK_CUDA_TRY(ctx, dlk_k_attn_gather(d, d->enc, Te, He, p->has_lengths, encm, ctx->stream));
  const dlk_k_mat enc3 = mat_c3(encm, B, Te, He), de3 = mat_c3(de, B, Td, Te);
  if (gc)
    DLK_TRY(attn_gemm(ctx, dt, mat_t3(&a->dcontext), mat_tr(enc3), mat_c3(gc, B, Td, Te), 0.0));
  DLK_CUDA_TRY(ctx, dlk_k_attn_softmax_bwd_rows(d, gc, de, ctx->stream));
  double denc_beta = 0.0; /* 1 once a term of denc is written */
  if (a->has_denc && a->has_dcontext) {
    DLK_TRY(attn_gemm(ctx, dt, mat_tr(mat_t3(&a->weights)), mat_t3(&a->dcontext), mat_t3(&a->denc),
                      0.0));
    denc_beta = 1.0;
  }
  dlk_k_mat dec_rows;
  switch (p->kind) {
    case DLK_ATTN_ADDITIVE: {
      DLK_TRY(attn_project_cuda(ctx, p, enc3, w, L, d));
      void *H = w + L->H, *ones = w + L->ones;
      DLK_CUDA_TRY(ctx, dlk_k_attn_add_tanh(d, H, ctx->stream));
      const int64_t N = B * Td * Te;
      if (a->has_dv)
        DLK_TRY(attn_gemm(ctx, dt, kmat(H, 1, A, N, 0, 1, A), kmat(de, 1, N, 1, 0, 1, 1),
                          kmat(a->dv.data, 1, A, 1, 0, a->dv.strides[0], 1), 0.0));
      if (!need.dP && !need.dQ) break;
      DLK_CUDA_TRY(ctx, dlk_k_attn_dz(d, de, H, ctx->stream));
      DLK_CUDA_TRY(ctx, dlk_k_attn_fill(ones, (int)dt, Td > Te ? Td : Te, 1.0, ctx->stream));
      void *dP = w + L->dP, *dQ = w + L->dQ;
      if (need.dP) /* dP_b = ones[1, Td] @ dZ_b [Td, Te A] */
        DLK_TRY(attn_gemm(ctx, dt, kmat(ones, B, 1, Td, 0, Td, 1),
                          kmat(H, B, Td, Te * A, Td * Te * A, Te * A, 1),
                          kmat(dP, B, 1, Te * A, Te * A, Te * A, 1), 0.0));
      if (need.dQ) /* dQ_bi = ones[1, Te] @ dZ_bi [Te, A] */
        DLK_TRY(attn_gemm(ctx, dt, kmat(ones, B * Td, 1, Te, 0, Te, 1),
                          kmat(H, B * Td, Te, A, Te * A, A, 1), kmat(dQ, B * Td, 1, A, A, A, 1),
                          0.0));
      const dlk_k_mat dP3 = mat_c3(dP, B, Te, A), dQ3 = mat_c3(dQ, B, Td, A);
      if (a->has_denc)
        DLK_TRY(attn_gemm(ctx, dt, dP3, mat_tr(mat_2d(&p->wp)), mat_t3(&a->denc), denc_beta));
      if (a->has_dwp)
        DLK_TRY(attn_gemm(ctx, dt, mat_tr(mat_flat(enc3)), mat_flat(dP3), mat_2d(&a->dwp), 0.0));
      if (a->has_ddec)
        DLK_TRY(attn_gemm(ctx, dt, dQ3, mat_tr(mat_2d(&p->wq)), mat_t3(&a->ddec), 0.0));
      if (a->has_dwq) {
        DLK_TRY(attn_dec_rows(ctx, p, w, L, &need, d, &dec_rows));
        DLK_TRY(attn_gemm(ctx, dt, mat_tr(dec_rows), mat_flat(dQ3), mat_2d(&a->dwq), 0.0));
      }
      break;
    }
    case DLK_ATTN_DOT:
      if (a->has_denc)
        DLK_TRY(attn_gemm(ctx, dt, mat_tr(de3), mat_t3(&p->dec), mat_t3(&a->denc), denc_beta));
      if (a->has_ddec) DLK_TRY(attn_gemm(ctx, dt, de3, enc3, mat_t3(&a->ddec), 0.0));
      break;
    case DLK_ATTN_GENERAL: {
      DLK_TRY(attn_project_cuda(ctx, p, enc3, w, L, d));
      const dlk_k_mat Q3 = mat_c3(w + L->Q, B, Td, He);
      if (a->has_denc) DLK_TRY(attn_gemm(ctx, dt, mat_tr(de3), Q3, mat_t3(&a->denc), denc_beta));
      if (!need.dQ) break;
      const dlk_k_mat dQ3 = mat_c3(w + L->dQ, B, Td, He);
      DLK_TRY(attn_gemm(ctx, dt, de3, enc3, dQ3, 0.0));
      if (a->has_ddec)
        DLK_TRY(attn_gemm(ctx, dt, dQ3, mat_tr(mat_2d(&p->wp)), mat_t3(&a->ddec), 0.0));
      if (a->has_dwp) {
        DLK_TRY(attn_dec_rows(ctx, p, w, L, &need, d, &dec_rows));
        DLK_TRY(attn_gemm(ctx, dt, mat_tr(dec_rows), mat_flat(dQ3), mat_2d(&a->dwp), 0.0));
      }
      break;
    }
  }
  return DLK_OK;
}

/* impl 2: projections, the fused kernels (dE, dQ, dP, dv, denc's context and score terms),
   then denc += dP wp^T and the weight gradients as GEMMs. */
static dlk_status attn_bwd_fused(dlk_context *ctx, const dlk_attn_bwd_args *a, char *w,
                                 const attn_cuda_ws *L, dlk_k_attn_desc *d) {
  const dlk_attn_problem *p = &a->p;
  const attn_bwd_needs need = attn_bwd_need(a, 2);
  const dlk_dtype dt = p->dtype;
  const int64_t B = p->B, Te = p->Te, Td = p->Td, He = p->He, A = p->A;
  DLK_TRY(attn_project_cuda(ctx, p, mat_t3(&p->enc), w, L, d));
  if (a->has_denc) d->denc = k_t3(&a->denc);
  if (p->kind == DLK_ATTN_DOT && a->has_ddec) d->ddec = k_t3(&a->ddec);
  if (p->kind == DLK_ATTN_ADDITIVE && a->has_dv) {
    d->dv.data = a->dv.data;
    d->dv.n = A;
    d->dv.s = a->dv.strides[0];
  }
  void *dP = need.dP ? w + L->dP : NULL, *dQ = need.dQ ? w + L->dQ : NULL;
  DLK_CUDA_TRY(ctx, dlk_k_attn_bwd_fused(d, dP, dQ, w + L->fused, ctx->stream));
  const int64_t qc = (int64_t)qcols(p);
  const dlk_k_mat dP3 = mat_c3(dP, B, Te, A), dQ3 = mat_c3(dQ, B, Td, qc);
  dlk_k_mat dec_rows;
  if (p->kind == DLK_ATTN_ADDITIVE) {
    if (a->has_denc)
      DLK_TRY(attn_gemm(ctx, dt, dP3, mat_tr(mat_2d(&p->wp)), mat_t3(&a->denc), 1.0));
    if (a->has_dwp) {
      dlk_k_mat enc_rows = mat_flat(mat_t3(&p->enc));
      if (need.encm) {
        DLK_CUDA_TRY(
            ctx, dlk_k_attn_gather(d, d->enc, Te, He, p->has_lengths, w + L->encm, ctx->stream));
        enc_rows = mat_flat(mat_c3(w + L->encm, B, Te, He));
      }
      DLK_TRY(attn_gemm(ctx, dt, mat_tr(enc_rows), mat_flat(dP3), mat_2d(&a->dwp), 0.0));
    }
    if (a->has_ddec)
      DLK_TRY(attn_gemm(ctx, dt, dQ3, mat_tr(mat_2d(&p->wq)), mat_t3(&a->ddec), 0.0));
    if (a->has_dwq) {
      DLK_TRY(attn_dec_rows(ctx, p, w, L, &need, d, &dec_rows));
      DLK_TRY(attn_gemm(ctx, dt, mat_tr(dec_rows), mat_flat(dQ3), mat_2d(&a->dwq), 0.0));
    }
  } else if (p->kind == DLK_ATTN_GENERAL) {
    if (a->has_ddec)
      DLK_TRY(attn_gemm(ctx, dt, dQ3, mat_tr(mat_2d(&p->wp)), mat_t3(&a->ddec), 0.0));
    if (a->has_dwp) {
      DLK_TRY(attn_dec_rows(ctx, p, w, L, &need, d, &dec_rows));
      DLK_TRY(attn_gemm(ctx, dt, mat_tr(dec_rows), mat_flat(dQ3), mat_2d(&a->dwp), 0.0));
    }
  }
  return DLK_OK;
}

bool dlk_attn_bwd_cuda_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                size_t n) {
  (void)ctx, (void)args, (void)impl, (void)why, (void)n;
  return true;
}

size_t dlk_attn_bwd_cuda_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)ctx;
  return attn_bwd_ws_layout(args, impl).total;
}

dlk_status dlk_attn_bwd_cuda_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)ws_bytes;
  const dlk_attn_bwd_args *a = args;
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(attn_check_lengths_cuda(ctx, &a->p));
  dlk_k_attn_desc d;
  attn_bwd_kdesc(a, &d);
  const attn_cuda_ws L = attn_bwd_ws_layout(a, impl);
  return impl == 1 ? attn_bwd_composed(ctx, a, ws, &L, &d) : attn_bwd_fused(ctx, a, ws, &L, &d);
}

#endif /* DLK_HAVE_CUDA */
