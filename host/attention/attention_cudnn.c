/*
 * attention family: the cuDNN rows (id 10) — cuDNN's fused SDPA through the backend graph
 * API (host/cudnn/graph.h), forward and backward.
 *
 * What cuDNN is asked: the single SDPA_FWD / SDPA_BWD operation nodes (cuDNN >= 9.13
 * forward, >= 9.17 backward, sequence lengths >= 9.15), q/k/v/o with their own strides,
 * the stats (lse) as [B, Hq, Tq, 1] F32, the scale as a by-value F32 scalar, and for
 * lengths the two I32 [B, 1, 1, 1] padding vectors (the full T for a side without one),
 * converted into the workspace by a small kernel.
 *
 * Which limit refuses a case, as explain reports it (each a reason of supports()):
 *   - the build or the loaded cuDNN lacks the node (dlk_cg_sdpa_available says which
 *     version it needs and which it found);
 *   - dtype: the fused SDPA is f16/bf16;
 *   - causal masking, an additive bias (and so dbias): the single node of the cuDNN this
 *     is built against has neither attribute (they need the composed graph of matmul,
 *     pointwise and reduction nodes, which these rows do not build yet);
 *   - dropout: cuDNN draws its own Philox mask, not dlk_dropout's counter mask, so its
 *     result would not be dlk's;
 *   - backward without all of dq, dk, dv: the node writes all three;
 *   - anything else cuDNN itself refuses (head dim, layout, GPU generation, no engine in
 *     deterministic mode ...): finalising the plan fails and its status and detail are the
 *     reason (the graph helper caches the refusal per shape key).
 * Rows past the lengths get dlk's values afterwards (out 0, lse -inf, zero gradients) by
 * a fix-up kernel, whatever cuDNN leaves there.
 */
#include "attention.h"

#if DLK_SDPA_CUDNN
#include <stdio.h>
#include <string.h>

#include "../../kernels/attention/attention.h"
#include "../cudnn/graph.h"

/* Tensor uids of the graphs. */
enum { U_Q = 1, U_K, U_V, U_O, U_STATS, U_SCALE, U_SEQ_Q, U_SEQ_KV, U_DO, U_DQ, U_DK, U_DV };

/* What the build functions need: the record and the derived views. */
typedef struct sdpa_cudnn {
  const dlk_sdpa_problem *p;
  const dlk_tensor *out, *dout, *dq, *dk, *dv;
  dlk_tensor stats;  /* lse as [B, Hq, Tq, 1] */
  bool lengths;      /* bind the padding vectors */
  bool bwd;
} sdpa_cudnn;

static dlk_tensor stats4(const dlk_tensor *lse) {
  dlk_tensor s = *lse;
  s.ndim = 4;
  s.shape[3] = 1;
  s.strides[3] = 1;
  return s;
}

/* The [B, 1, 1, 1] I32 padding vector of a side (device memory in the workspace). */
static dlk_cg_tensor *seq_tensor(dlk_cg *g, int64_t uid, int64_t B) {
  const int64_t dims[4] = {B, 1, 1, 1}, strides[4] = {1, 1, 1, 1};
  return dlk_cg_tensor_new(g, uid, DLK_I32, 4, dims, strides, 16);
}

static void fwd_graph(dlk_cg *g, const void *arg) {
  const sdpa_cudnn *c = arg;
  dlk_cg_sdpa_fwd_io io;
  memset(&io, 0, sizeof io);
  io.q = dlk_cg_tensor_of(g, U_Q, &c->p->q);
  io.k = dlk_cg_tensor_of(g, U_K, &c->p->k);
  io.v = dlk_cg_tensor_of(g, U_V, &c->p->v);
  io.o = dlk_cg_tensor_of(g, U_O, c->out);
  io.stats = dlk_cg_tensor_of(g, U_STATS, &c->stats);
  io.scale = dlk_cg_scalar(g, U_SCALE, DLK_F32, 4);
  if (c->lengths) {
    io.seq_len_q = seq_tensor(g, U_SEQ_Q, c->p->B);
    io.seq_len_kv = seq_tensor(g, U_SEQ_KV, c->p->B);
  }
  dlk_cg_sdpa_fwd(g, &io);
}

static void bwd_graph(dlk_cg *g, const void *arg) {
  const sdpa_cudnn *c = arg;
  dlk_cg_sdpa_bwd_io io;
  memset(&io, 0, sizeof io);
  io.q = dlk_cg_tensor_of(g, U_Q, &c->p->q);
  io.k = dlk_cg_tensor_of(g, U_K, &c->p->k);
  io.v = dlk_cg_tensor_of(g, U_V, &c->p->v);
  io.o = dlk_cg_tensor_of(g, U_O, c->out);
  io.d_o = dlk_cg_tensor_of(g, U_DO, c->dout);
  io.stats = dlk_cg_tensor_of(g, U_STATS, &c->stats);
  io.scale = dlk_cg_scalar(g, U_SCALE, DLK_F32, 4);
  if (c->lengths) {
    io.seq_len_q = seq_tensor(g, U_SEQ_Q, c->p->B);
    io.seq_len_kv = seq_tensor(g, U_SEQ_KV, c->p->B);
  }
  io.dq = dlk_cg_tensor_of(g, U_DQ, c->dq);
  io.dk = dlk_cg_tensor_of(g, U_DK, c->dk);
  io.dv = dlk_cg_tensor_of(g, U_DV, c->dv);
  dlk_cg_sdpa_bwd(g, &io);
}

/* Everything a plan assumes: every tensor's dtype, dims, strides and alignment, and the
   padding vectors. */
static void sdpa_key(const sdpa_cudnn *c, dlk_cg_key *k) {
  dlk_cg_key_init(k);
  dlk_cg_key_tensor(k, "q", &c->p->q);
  dlk_cg_key_tensor(k, "k", &c->p->k);
  dlk_cg_key_tensor(k, "v", &c->p->v);
  dlk_cg_key_tensor(k, "o", c->out);
  dlk_cg_key_tensor(k, "s", &c->stats);
  if (c->bwd) {
    dlk_cg_key_tensor(k, "do", c->dout);
    dlk_cg_key_tensor(k, "dq", c->dq);
    dlk_cg_key_tensor(k, "dk", c->dk);
    dlk_cg_key_tensor(k, "dv", c->dv);
  }
  dlk_cg_key_add(k, "len%d", c->lengths);
}

/* The limits of these rows that come before asking cuDNN (see the top of the file). */
static bool sdpa_cudnn_limits(const dlk_sdpa_problem *p, bool bwd, char *why, size_t n) {
  if (!dlk_cg_sdpa_available(bwd, why, n)) return false;
  if (p->dtype != DLK_F16 && p->dtype != DLK_BF16) {
    snprintf(why, n, "cuDNN's fused SDPA takes f16/bf16 (this is %s)", dlk_dtype_name(p->dtype));
    return false;
  }
  if (p->causal) {
    snprintf(why, n, "causal: the single SDPA_%s node of cuDNN %d has no causal mask (needs the composed graph)",
             bwd ? "BWD" : "FWD", (int)CUDNN_VERSION);
    return false;
  }
  if (p->has_bias) {
    snprintf(why, n, "bias: the single SDPA_%s node of cuDNN %d takes no additive bias (needs the composed graph)",
             bwd ? "BWD" : "FWD", (int)CUDNN_VERSION);
    return false;
  }
  if (p->dropout > 0.0) {
    snprintf(why, n, "dropout: cuDNN draws its own Philox mask, not dlk_dropout's counter mask");
    return false;
  }
  return true;
}

/* The workspace: cuDNN's, then (with lengths) the two I32 vectors at a 256-byte boundary. */
static size_t lengths_offset(size_t plan_ws) { return (plan_ws + 255) / 256 * 256; }
static size_t lengths_bytes(const dlk_sdpa_problem *p) { return (size_t)(2 * (p->B > 0 ? p->B : 1)) * 4 + 16; }

/* The build argument and the key of a forward record. */
static void fwd_setup(const dlk_sdpa_fwd_args *a, sdpa_cudnn *c, dlk_cg_key *k) {
  memset(c, 0, sizeof *c);
  c->p = &a->p;
  c->out = &a->out;
  c->stats = stats4(&a->lse);
  c->lengths = a->p.has_q_lengths || a->p.has_k_lengths;
  sdpa_key(c, k);
}

bool dlk_sdpa_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_sdpa_fwd_args *a = args;
  if (!sdpa_cudnn_limits(&a->p, false, why, n)) return false;
  if (!a->has_lse) {
    snprintf(why, n, "without lse: these rows always ask cuDNN for its stats (pass an lse tensor)");
    return false;
  }
  sdpa_cudnn c;
  dlk_cg_key k;
  fwd_setup(a, &c, &k);
  /* supports() builds (and caches) the plan: graph.h's memo context */
  return dlk_cg_supports(dlk_cg_memo_context(ctx), "sdpa_fwd", &k, fwd_graph, &c, why, n);
}

size_t dlk_sdpa_fwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_sdpa_fwd_args *a = args;
  sdpa_cudnn c;
  dlk_cg_key k;
  fwd_setup(a, &c, &k);
  const dlk_cg_plan *plan = NULL;
  char why[DLK_CG_WHY_LEN];
  if (dlk_cg_plan_find(dlk_cg_memo_context(ctx), "sdpa_fwd", &k, fwd_graph, &c, &plan, why, sizeof why) != DLK_OK) return 0;
  const size_t ws = dlk_cg_plan_workspace(plan);
  return c.lengths ? lengths_offset(ws) + lengths_bytes(&a->p) : ws;
}

dlk_status dlk_sdpa_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_sdpa_fwd_args *a = args;
  dlk_k_sdpa_desc d;
  dlk_sdpa_fwd_desc(ctx, a, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_forward", &d));
  sdpa_cudnn c;
  dlk_cg_key k;
  fwd_setup(a, &c, &k);
  const dlk_cg_plan *plan = NULL;
  DLK_TRY(dlk_cg_plan_get(ctx, "sdpa_fwd", &k, fwd_graph, &c, &plan));
  const size_t pws = dlk_cg_plan_workspace(plan);
  int32_t *seq = c.lengths ? (int32_t *)((char *)ws + lengths_offset(pws)) : NULL;
  if (seq) DLK_CUDA_TRY(ctx, dlk_k_sdpa_lengths_i32(&d, seq, seq + a->p.B, ctx->stream));
  const float scale = (float)a->p.scale;
  const dlk_cg_bind bind[8] = {{U_Q, a->p.q.data},     {U_K, a->p.k.data},      {U_V, a->p.v.data},
                               {U_O, a->out.data},     {U_STATS, a->lse.data},  {U_SCALE, &scale},
                               {U_SEQ_Q, seq},         {U_SEQ_KV, seq ? seq + a->p.B : NULL}};
  DLK_TRY(dlk_cg_execute(ctx, plan, bind, c.lengths ? 8 : 6, ws, ws_bytes));
  if (c.lengths) DLK_CUDA_TRY(ctx, dlk_k_sdpa_clear_padding(&d, 0, ctx->stream));
  return DLK_OK;
}

/* The same for a backward record. */
static void bwd_setup(const dlk_sdpa_bwd_args *a, sdpa_cudnn *c, dlk_cg_key *k) {
  memset(c, 0, sizeof *c);
  c->p = &a->p;
  c->out = &a->out;
  c->dout = &a->dout;
  c->dq = &a->dq;
  c->dk = &a->dk;
  c->dv = &a->dv;
  c->stats = stats4(&a->lse);
  c->lengths = a->p.has_q_lengths || a->p.has_k_lengths;
  c->bwd = true;
  sdpa_key(c, k);
}

bool dlk_sdpa_bwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_sdpa_bwd_args *a = args;
  if (!sdpa_cudnn_limits(&a->p, true, why, n)) return false;
  if (!a->has_dq || !a->has_dk || !a->has_dv) {
    snprintf(why, n, "the SDPA_BWD node writes dq, dk and dv: all three are needed");
    return false;
  }
  sdpa_cudnn c;
  dlk_cg_key k;
  bwd_setup(a, &c, &k);
  return dlk_cg_supports(dlk_cg_memo_context(ctx), "sdpa_bwd", &k, bwd_graph, &c, why, n);
}

size_t dlk_sdpa_bwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_sdpa_bwd_args *a = args;
  sdpa_cudnn c;
  dlk_cg_key k;
  bwd_setup(a, &c, &k);
  const dlk_cg_plan *plan = NULL;
  char why[DLK_CG_WHY_LEN];
  if (dlk_cg_plan_find(dlk_cg_memo_context(ctx), "sdpa_bwd", &k, bwd_graph, &c, &plan, why, sizeof why) != DLK_OK) return 0;
  const size_t ws = dlk_cg_plan_workspace(plan);
  return c.lengths ? lengths_offset(ws) + lengths_bytes(&a->p) : ws;
}

dlk_status dlk_sdpa_bwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_sdpa_bwd_args *a = args;
  dlk_k_sdpa_desc d;
  dlk_sdpa_bwd_desc(ctx, a, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_backward", &d));
  sdpa_cudnn c;
  dlk_cg_key k;
  bwd_setup(a, &c, &k);
  const dlk_cg_plan *plan = NULL;
  DLK_TRY(dlk_cg_plan_get(ctx, "sdpa_bwd", &k, bwd_graph, &c, &plan));
  const size_t pws = dlk_cg_plan_workspace(plan);
  int32_t *seq = c.lengths ? (int32_t *)((char *)ws + lengths_offset(pws)) : NULL;
  if (seq) DLK_CUDA_TRY(ctx, dlk_k_sdpa_lengths_i32(&d, seq, seq + a->p.B, ctx->stream));
  const float scale = (float)a->p.scale;
  const dlk_cg_bind bind[12] = {{U_Q, a->p.q.data}, {U_K, a->p.k.data},     {U_V, a->p.v.data},
                                {U_O, a->out.data}, {U_DO, a->dout.data},   {U_STATS, a->lse.data},
                                {U_SCALE, &scale},  {U_DQ, a->dq.data},     {U_DK, a->dk.data},
                                {U_DV, a->dv.data}, {U_SEQ_Q, seq},         {U_SEQ_KV, seq ? seq + a->p.B : NULL}};
  DLK_TRY(dlk_cg_execute(ctx, plan, bind, c.lengths ? 12 : 10, ws, ws_bytes));
  if (c.lengths) DLK_CUDA_TRY(ctx, dlk_k_sdpa_clear_padding(&d, 1, ctx->stream));
  return DLK_OK;
}

#else
typedef int dlk_attention_cudnn_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_SDPA_CUDNN */
