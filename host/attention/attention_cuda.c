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
 * Sections: scaled-dot-product attention; additive and Luong attention below it.
 */
#include "attention.h"

/* Every host .c file is compiled in every build: a CPU-only build gets an empty file. */
#if DLK_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../../kernels/attention/attention.h"

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
/* Additive (Bahdanau) and Luong attention: their CUDA rows go here.                      */
/* ====================================================================================== */

#endif /* DLK_HAVE_CUDA */
