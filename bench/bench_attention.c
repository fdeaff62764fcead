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
 * Additive (Bahdanau) attention: the section below says which cases and how they count.
 */
#include <math.h>
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
/* Additive (Bahdanau) attention                                                          */
/* ====================================================================================== */
/*
 * The grid: B = 64, Te = Td = T in {50, 200}, He = Hd = A = H in {256, 1024},
 * forward and backward (from the forward's weights, dcontext given, dweights absent, every
 * gradient asked), bf16 and f32. Every variant of additive_attn_fwd / _bwd is timed: the
 * composed one (variant 1, the eager baseline the fused kernel is measured against; the
 * issue's target is fused >= 5x composed at T 200, H 1024) and the fused one (2);
 * bench/compare_torch.py runs the same cases as PyTorch eager.
 * FLOPs (a convention, stated so the rates compare): forward 2 B (Te He + Td Hd) A for the
 * projections, 5 B Td Te A for add, tanh, multiply, sum (tanh counted as 2), 2 B Td Te He
 * for the context; backward 2.5 x forward. The work is CUDA-core (tanh), not tensor-core,
 * so %peak against the dense tensor-core peak stays small by nature.
 * Peak memory: the note of each case gives the inputs' and outputs' bytes and each
 * variant's workspace (from explain, at setup): the composed variant holds
 * tanh(P_j + Q_i) [B, Td, Te, A]; the fused one O(B (Te + Td) A + B Td Te).
 * Without a GPU: B 2, T 16, H 32, f32, both directions (~0.1 s).
 */

typedef struct add_state {
  dlk_tensor enc, dec, wa, ua, va, ctx, wts, dctx, denc, ddec, dwa, dua, dva;
} add_state;

enum { ADD_MAX_CASES = 32 };
static char add_notes[ADD_MAX_CASES][400];
static int add_n_notes;

static void add_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  add_state *s = state;
  if (!s) return;
  dlk_tensor *all[] = {&s->enc,  &s->dec,  &s->wa,   &s->ua,  &s->va,  &s->ctx, &s->wts,
                       &s->dctx, &s->denc, &s->ddec, &s->dwa, &s->dua, &s->dva};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bench_free(env, all[i]);
  free(s);
}

static dlk_status add_call(const bench_env *env, const bench_case *c, add_state *s) {
  if ((c->arg & 1) == 0)
    return dlk_additive_attention_forward(env->ctx, &s->enc, &s->dec, &s->wa, &s->ua, &s->va, NULL,
                                          &s->ctx, &s->wts);
  return dlk_additive_attention_backward(env->ctx, &s->enc, &s->dec, &s->wa, &s->ua, &s->va, NULL,
                                         &s->wts, &s->dctx, NULL, &s->denc, &s->ddec, &s->dwa,
                                         &s->dua, &s->dva);
}

static int add_bytes(char *buf, size_t n, double bytes) {
  return bytes >= 1048576.0 ? snprintf(buf, n, "%.1f MiB", bytes / 1048576.0)
                            : snprintf(buf, n, "%.1f KiB", bytes / 1024.0);
}

/* The note of the case: its peak memory, the bytes of the inputs and outputs plus each
   variant's workspace (read from explain mode). */
static void add_memory_note(const bench_env *env, const bench_case *c, add_state *s,
                            double io_bytes) {
  char *note = (char *)c->note, io[32];
  const char *report = NULL;
  add_bytes(io, sizeof io, io_bytes);
  if (dlk_explain_mode(env->ctx, 1) != DLK_OK) return;
  if (add_call(env, c, s) == DLK_OK && dlk_explain_report(env->ctx, &report) == DLK_OK && report) {
    int len =
        snprintf(note, sizeof add_notes[0],
                 "%s %s: peak memory = inputs + outputs (%s) + workspace:", c->shape, c->dtype, io);
    for (const char *line = report; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
      int id = -1;
      char name[32], ws[32];
      if (sscanf(line, " %d %31s supported", &id, name) != 2 || !strstr(line, " supported") ||
          strstr(line, "not supported"))
        continue;
      const char *w = strstr(line, "(workspace ");
      add_bytes(ws, sizeof ws, w ? strtod(w + 11, NULL) : 0.0);
      if (len > 0 && len < (int)sizeof add_notes[0])
        len += snprintf(note + len, sizeof add_notes[0] - (size_t)len, " %s %s,", name, ws);
    }
    if (len > 0 && len < (int)sizeof add_notes[0]) note[len - 1] = '\0';
  }
  dlk_explain_mode(env->ctx, 0);
}

/* dims: B, T, H; arg: direction. */
static dlk_status add_setup(const bench_env *env, const bench_case *c, void **state) {
  add_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  const int64_t B = c->dims[0], T = c->dims[1], H = c->dims[2];
  const int64_t sx[3] = {B, T, H}, sw[2] = {H, H}, sv[1] = {H}, sa[3] = {B, T, T};
  BENCH_TRY(bench_alloc(env, &s->enc, c->dt, 3, sx));
  BENCH_TRY(bench_alloc(env, &s->dec, c->dt, 3, sx));
  BENCH_TRY(bench_alloc(env, &s->wa, c->dt, 2, sw));
  BENCH_TRY(bench_alloc(env, &s->ua, c->dt, 2, sw));
  BENCH_TRY(bench_alloc(env, &s->va, c->dt, 1, sv));
  BENCH_TRY(bench_alloc(env, &s->ctx, c->dt, 3, sx));
  BENCH_TRY(bench_alloc(env, &s->wts, c->dt, 3, sa));
  BENCH_TRY(bench_fill(env, &s->enc, -1, 1, 51));
  BENCH_TRY(bench_fill(env, &s->dec, -1, 1, 52));
  const double k = 1.0 / sqrt((double)H);
  BENCH_TRY(bench_fill(env, &s->wa, -k, k, 53));
  BENCH_TRY(bench_fill(env, &s->ua, -k, k, 54));
  BENCH_TRY(bench_fill(env, &s->va, -k, k, 55));
  const double es = (double)dlk_dtype_size(c->dt);
  double io = (double)(5 * B * T * H + 2 * H * H + H + B * T * T) * es;
  if (c->arg & 1) {
    BENCH_TRY(bench_alloc(env, &s->dctx, c->dt, 3, sx));
    BENCH_TRY(bench_alloc(env, &s->denc, c->dt, 3, sx));
    BENCH_TRY(bench_alloc(env, &s->ddec, c->dt, 3, sx));
    BENCH_TRY(bench_alloc(env, &s->dwa, c->dt, 2, sw));
    BENCH_TRY(bench_alloc(env, &s->dua, c->dt, 2, sw));
    BENCH_TRY(bench_alloc(env, &s->dva, c->dt, 1, sv));
    BENCH_TRY(bench_fill(env, &s->dctx, -1, 1, 56));
    /* the forward's weights, as a training step has them */
    BENCH_TRY(dlk_additive_attention_forward(env->ctx, &s->enc, &s->dec, &s->wa, &s->ua, &s->va,
                                             NULL, &s->ctx, &s->wts));
    BENCH_TRY(dlk_synchronize(env->ctx));
    io += (double)(3 * B * T * H + 2 * H * H + H) * es;
  } else {
    io -= (double)(B * T * H) * es; /* the forward has no dcontext */
  }
  add_memory_note(env, c, s, io);
  return DLK_OK;
}

static dlk_status add_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  return add_call(env, c, state);
}

static const dlk_tensor *add_out(void *state) {
  return &((add_state *)state)->ctx;
}
static const dlk_tensor *add_denc(void *state) {
  return &((add_state *)state)->denc;
}

static void add_additive(bench_registry *r, int64_t B, int64_t T, int64_t H, int dir,
                         dlk_dtype dt) {
  if (add_n_notes == ADD_MAX_CASES) return;
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "attention";
  c.op = dir == 0 ? "additive_attn_fwd" : "additive_attn_bwd";
  snprintf(c.name, sizeof c.name, "additive_%s", dir == 0 ? "fwd" : "bwd");
  snprintf(c.shape, sizeof c.shape, "b%lld t%lld h%lld", (long long)B, (long long)T, (long long)H);
  snprintf(c.dtype, sizeof c.dtype, "%s", dlk_dtype_name(dt));
  c.bound = BENCH_COMPUTE;
  const double b = (double)B, t = (double)T, h = (double)H;
  const double fwd = 4.0 * b * t * h * h + 5.0 * b * t * t * h + 2.0 * b * t * t * h;
  c.flops = dir == 0 ? fwd : 2.5 * fwd;
  const double es = (double)dlk_dtype_size(dt);
  c.bytes = (dir == 0 ? 3 * b * t * h + b * t * t : 7 * b * t * h + b * t * t) * es;
  c.dims[0] = B, c.dims[1] = T, c.dims[2] = H;
  c.dt = dt;
  c.arg = dir;
  c.setup = add_setup;
  c.run = add_run;
  c.output = dir == 0 ? add_out : add_denc;
  c.teardown = add_teardown;
  snprintf(add_notes[add_n_notes], sizeof add_notes[0], "%s %s", c.shape, c.dtype);
  c.note = add_notes[add_n_notes++];
  bench_add(r, &c);
}

static void add_additive_cases(bench_registry *r, const bench_env *env) {
  add_n_notes = 0;
  if (!env->gpu) {
    for (int dir = 0; dir < 2; dir++) add_additive(r, 2, env->quick ? 8 : 16, 32, dir, DLK_F32);
    return;
  }
  static const int64_t Ts[] = {50, 200}, Hs[] = {256, 1024};
  static const dlk_dtype dts[] = {DLK_BF16, DLK_F32};
  for (int dir = 0; dir < 2; dir++)
    for (int d = 0; d < 2; d++)
      for (int hi = 0; hi < 2; hi++)
        for (int ti = 0; ti < 2; ti++) {
          if (env->quick && !(Ts[ti] == 200 && Hs[hi] == 1024)) continue;
          add_additive(r, 64, Ts[ti], Hs[hi], dir, dts[d]);
        }
}

/* ====================================================================================== */

void bench_family_attention(bench_registry *r, const bench_env *env) {
  add_sdpa_cases(r, env);
  add_additive_cases(r, env);
}
