/*
 * attention cases of dlk-bench (issue 13), each run through the public call so that every
 * variant the dispatcher lists for the op is timed (the "x vendor" column is the ratio to
 * cuDNN's fused attention, variant 10: its single SDPA node for the plain cases, its
 * composed fused-attention graph for the causal ones, host/attention/attention_cudnn.c;
 * bench/compare_torch.py runs the same cases against PyTorch's
 * scaled_dot_product_attention).
 *
 * Scaled-dot-product attention, the FlashAttention benchmark's grid:
 *   batch x seq = 16k tokens, heads x D = 2048 (D 64: 32 heads, D 128: 16 heads),
 *   seq 512, 1k, 2k, 4k, 8k, 16k (batch 32 ... 1), causal and not, forward and backward,
 *   bf16 and f16. FLOPs counted as FlashAttention counts them:
 *     forward  4 B H Tq Tk D (two matmuls of 2 B H Tq Tk D), halved when causal;
 *     backward 2.5 x forward (five matmuls where the forward has two).
 *   The backward case times dlk_sdpa_backward alone, from a forward run at setup.
 * Without a GPU: B 1, H 2, seq 128, D 64, bf16, causal and not, both directions, so the
 * CPU reference cases take about a second in all.
 *
 * Additive and Luong attention cases go in the section marked below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

typedef struct sdpa_state {
  dlk_tensor q, k, v, out, lse, dout, dq, dk, dv;
  dlk_sdpa_params p;
} sdpa_state;

enum { SDPA_FWD = 0, SDPA_BWD = 1 };

static void sdpa_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  sdpa_state *s = state;
  if (!s) return;
  dlk_tensor *all[] = {&s->q, &s->k, &s->v, &s->out, &s->lse, &s->dout, &s->dq, &s->dk, &s->dv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bench_free(env, all[i]);
  free(s);
}

/* dims: B, H, T, D; arg: direction | causal << 1. */
static dlk_status sdpa_setup(const bench_env *env, const bench_case *c, void **state) {
  sdpa_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  const int64_t B = c->dims[0], H = c->dims[1], T = c->dims[2], D = c->dims[3];
  const int64_t sx[4] = {B, H, T, D}, sl[3] = {B, H, T};
  s->p.causal = (c->arg >> 1) & 1;
  BENCH_TRY(bench_alloc(env, &s->q, c->dt, 4, sx));
  BENCH_TRY(bench_alloc(env, &s->k, c->dt, 4, sx));
  BENCH_TRY(bench_alloc(env, &s->v, c->dt, 4, sx));
  BENCH_TRY(bench_alloc(env, &s->out, c->dt, 4, sx));
  BENCH_TRY(bench_alloc(env, &s->lse, DLK_F32, 3, sl));
  BENCH_TRY(bench_fill(env, &s->q, -1, 1, 41));
  BENCH_TRY(bench_fill(env, &s->k, -1, 1, 42));
  BENCH_TRY(bench_fill(env, &s->v, -1, 1, 43));
  if ((c->arg & 1) == SDPA_BWD) {
    BENCH_TRY(bench_alloc(env, &s->dout, c->dt, 4, sx));
    BENCH_TRY(bench_alloc(env, &s->dq, c->dt, 4, sx));
    BENCH_TRY(bench_alloc(env, &s->dk, c->dt, 4, sx));
    BENCH_TRY(bench_alloc(env, &s->dv, c->dt, 4, sx));
    BENCH_TRY(bench_fill(env, &s->dout, -1, 1, 44));
    /* the forward's out and lse, as a training step has them */
    BENCH_TRY(
        dlk_sdpa_forward(env->ctx, &s->p, &s->q, &s->k, &s->v, NULL, NULL, NULL, &s->out, &s->lse));
    BENCH_TRY(dlk_synchronize(env->ctx));
  }
  return DLK_OK;
}

static dlk_status sdpa_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  sdpa_state *s = state;
  if ((c->arg & 1) == SDPA_FWD)
    return dlk_sdpa_forward(env->ctx, &s->p, &s->q, &s->k, &s->v, NULL, NULL, NULL, &s->out,
                            &s->lse);
  return dlk_sdpa_backward(env->ctx, &s->p, &s->q, &s->k, &s->v, NULL, NULL, NULL, &s->out, &s->lse,
                           &s->dout, &s->dq, &s->dk, &s->dv, NULL);
}

static const dlk_tensor *sdpa_out(void *state) {
  return &((sdpa_state *)state)->out;
}
static const dlk_tensor *sdpa_dq(void *state) {
  return &((sdpa_state *)state)->dq;
}

static void add_sdpa(bench_registry *r, int64_t B, int64_t H, int64_t T, int64_t D, int causal,
                     int dir, dlk_dtype dt) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "attention";
  c.op = dir == SDPA_FWD ? "sdpa_fwd" : "sdpa_bwd";
  snprintf(c.name, sizeof c.name, "sdpa_%s%s", dir == SDPA_FWD ? "fwd" : "bwd",
           causal ? "_causal" : "");
  snprintf(c.shape, sizeof c.shape, "b%lld h%lld t%lld d%lld", (long long)B, (long long)H,
           (long long)T, (long long)D);
  snprintf(c.dtype, sizeof c.dtype, "%s", dt == DLK_F16 ? "f16" : "bf16");
  c.bound = BENCH_COMPUTE;
  /* FlashAttention's count: 4 B H T^2 D forward, / 2 causal, x 2.5 backward. */
  double fwd = 4.0 * (double)B * (double)H * (double)T * (double)T * (double)D;
  if (causal) fwd /= 2;
  c.flops = dir == SDPA_FWD ? fwd : 2.5 * fwd;
  const double es = (double)dlk_dtype_size(dt), n = (double)B * H * T * D;
  c.bytes =
      dir == SDPA_FWD ? 4 * n * es + (double)B * H * T * 4 : 10 * n * es + (double)B * H * T * 4;
  c.dims[0] = B, c.dims[1] = H, c.dims[2] = T, c.dims[3] = D;
  c.dt = dt;
  c.arg = dir | causal << 1;
  c.setup = sdpa_setup;
  c.run = sdpa_run;
  c.output = dir == SDPA_FWD ? sdpa_out : sdpa_dq;
  c.teardown = sdpa_teardown;
  c.note = dir == SDPA_FWD ? "SDPA forward [B, H, T, D] q/k/v, lse f32; flops 4 B H T^2 D (/2 "
                             "causal), as FlashAttention"
                           : "SDPA backward (dq, dk, dv from out, lse, dout); flops 2.5 x forward, "
                             "as FlashAttention";
  bench_add(r, &c);
}

static void add_sdpa_cases(bench_registry *r, const bench_env *env) {
  if (!env->gpu) {
    for (int causal = 0; causal < 2; causal++)
      for (int dir = 0; dir < 2; dir++)
        add_sdpa(r, 1, 2, env->quick ? 64 : 128, 64, causal, dir, DLK_BF16);
    return;
  }
  static const int64_t seqs[] = {512, 1024, 2048, 4096, 8192, 16384};
  static const int64_t heads_dims[][2] = {{32, 64}, {16, 128}};
  static const dlk_dtype dts[] = {DLK_BF16, DLK_F16};
  for (int dir = 0; dir < 2; dir++)
    for (int t = 0; t < 2; t++)
      for (int hd = 0; hd < 2; hd++)
        for (int causal = 0; causal < 2; causal++)
          for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) {
            if (env->quick && seqs[s] != 2048 && seqs[s] != 8192) continue;
            add_sdpa(r, 16384 / seqs[s], heads_dims[hd][0], seqs[s], heads_dims[hd][1], causal, dir,
                     dts[t]);
          }
}

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention: their cases go here.                          */
/* ====================================================================================== */

/* ====================================================================================== */

void bench_family_attention(bench_registry *r, const bench_env *env) {
  add_sdpa_cases(r, env);
}
