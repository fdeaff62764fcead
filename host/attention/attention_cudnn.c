/*
 * attention family: the cuDNN rows (id 10) of sdpa_fwd and sdpa_bwd, through the backend
 * graph API (host/cudnn/graph.h). Two ways to ask cuDNN, tried in this order:
 *
 * 1. The single SDPA_FWD / SDPA_BWD operation node (forward from cuDNN 9.13, its sequence
 *    lengths from 9.15, backward from 9.17; graph.c checks the built and the loaded
 *    version). Up to cuDNN 9.20 the node has no causal mask, bias or dropout (those are
 *    the score-modifier subgraph attributes of 9.21), so it takes plain attention and
 *    attention with lengths.
 * 2. The composed graph, cudnn-frontend's lowering for cuDNN < 9.21, which cuDNN's fused
 *    attention engines match as a pattern (the node's cases too, when the node refuses;
 *    written for cuDNN >= 9.6):
 *      forward   S = Q K^T (matmul, K viewed [B, Hk, D, Tk]) * scale (by-value scalar)
 *                  [+ bias] [padding mask] [causal mask]
 *                stats = max + log(sum exp(S - max))  (reduction MAX, SUB, EXP, reduction ADD,
 *                                                     LOG, ADD: the stats-producing softmax)
 *                P = exp(S - max) / sum  (f16/bf16, the aType of the second matmul)
 *                O = P V  (matmul)
 *      backward  delta = rowsum(dO * O)  (MUL, reduction ADD, MUL 1: f32 [B, Hq, Tq, 1] in the
 *                  workspace, as the engine wants it non-virtual)
 *                P = exp(S - stats) with S recomputed and masked as in the forward
 *                dV = P^T dO    (P^T by a RESHAPE to the transposed view)
 *                dP = dO V^T;  dS = P * (dP - delta);  [dbias = sum of dS over its 1-dims]
 *                dK = (dS scale)^T Q;  dQ = (dS scale) K  (K back from K^T by a RESHAPE; through
 *                  an f32 accumulator in the workspace and IDENTITY, except in deterministic
 *                  mode or with dbias, where the engine writes dQ itself)
 *                GQA: dK and dV of all Hq heads (virtual), then a grouped reduction to Hk.
 *    Masks, each a BINARY_SELECT of the scores with a -inf constant:
 *      padding (lengths): GEN_INDEX rows/cols < the I32 [B, 1, 1, 1] lengths (CMP_LT,
 *        LOGICAL_AND); with lengths the matmuls also get the lengths as M/N/K overrides, so
 *        the engine never reads the padded rows;
 *      causal: row >= col (CMP_GE), the bottom-right form row + kl - ql >= col (ADD, SUB in
 *        INT32; kl, ql the lengths or constants) when Tq != Tk or with lengths.
 *
 * Which limit refuses a case (supports() says, and explain shows, e.g.
 * "cuDNN 9.19 SDPA node: no causal mask (needs 9.21); composed graph: <why>"):
 *   - an empty problem; dtype (cuDNN's fused attention is f16/bf16); dropout (cuDNN draws
 *     its own Philox mask, not dlk_dropout's counter mask); head dims D, Dv not multiples
 *     of 8 or above 256, or a head-dim stride other than 1 (cudnn-frontend's support
 *     surface); in the backward dq, dk and dv not all asked, or dbias with lengths;
 *   - the node: its version, causal or bias (absent before 9.21), or cuDNN's refusal;
 *   - the composed graph: the bottom-right causal mask with a bias (cudnn-frontend's support
 *     surface has the engine take that form without bias only), or cuDNN's refusal (no
 *     engine; the graph helper caches the refusal per shape key, so it is asked once).
 *
 * dlk's semantics on top of cuDNN's results, by the kernels of kernels/attention/sdpa_fwd.cu:
 *   - cuDNN's stats go to a packed F32 [B, Hq, Tq] buffer in the workspace (the backward
 *     takes only packed stats before cuDNN 9.26) and from there to lse; rows past q_len
 *     and rows with no visible key get out 0 and lse -inf (dlk_k_sdpa_vendor_fwd_finish);
 *   - the backward reads a copy of lse with +inf on those rows
 *     (dlk_k_sdpa_vendor_bwd_stats), so their weights exp(s - stats) are 0, never NaN;
 *     rows of dq, dk, dv past the lengths are zeroed afterwards (dlk_k_sdpa_clear_padding).
 *
 * Workspace, in this order, each part 256-byte aligned: the stats [B, Hq, Tq] F32; with
 * lengths (or padding) the two I32 length vectors; the backward graph's delta [B, Hq, Tq]
 * F32 and dQ accumulator [B, Hq, Tq, D] F32; then the plan's own workspace.
 *
 * Plan lifetime (graph.h): a plan is found and executed before the next find; supports()
 * and workspace() find plans through dlk_cg_memo_context.
 */
#include "attention.h"

#if DLK_SDPA_CUDNN
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/attention/attention.h"
#include "../cudnn/graph.h"

/* Tensor uids of the graphs. */
enum {
  U_Q = 1,
  U_K,
  U_V,
  U_O,
  U_STATS,
  U_SCALE,
  U_SEQ_Q,
  U_SEQ_KV,
  U_BIAS,
  U_DO,
  U_DQ,
  U_DK,
  U_DV,
  U_DBIAS,
  U_DELTA,
  U_DQ_ACC
};

/* cuDNN versions (cudnnGetVersion's encoding). */
#define SDPA_SUBGRAPH_VERSION 92100 /* the node's causal/bias/dropout subgraph attributes */
/* The composed graph as written here: cuDNN zeroes the dQ accumulator itself from 9.6, and
   takes the bottom-right causal mask at lengths not multiples of 64 from 9.6
   (cudnn-frontend's support surface). */
#define COMPOSED_VERSION 90600

/* What the build functions see: the problem, the tensors and the choices made. */
typedef struct sdpa_cg {
  const dlk_sdpa_problem *p;
  const dlk_tensor *out, *dout, *dq, *dk, *dv, *dbias; /* dout and after: backward only */
  dlk_tensor bias;                                     /* the bias in its own shape */
  bool bwd;
  bool node;      /* the single node; else the composed graph */
  bool seq;       /* the I32 length vectors are bound (lengths; the graph's padding mask) */
  bool causal_br; /* the causal mask in its bottom-right form */
  bool dq_accum;  /* backward graph: dQ through the f32 accumulator */
} sdpa_cg;

/* ---- small helpers ---------------------------------------------------------------- */

static void version_text(size_t v, char *buf, size_t n) {
  snprintf(buf, n, "%d.%d", (int)(v / 10000), (int)(v / 100 % 100));
}

static size_t round256(size_t x) {
  return (x + 255) & ~(size_t)255;
}

static bool has_lengths(const dlk_sdpa_problem *p) {
  return p->has_q_lengths || p->has_k_lengths;
}

static int64_t rows_of(const dlk_sdpa_problem *p) {
  return p->B * p->Hq * p->Tq;
}

/* The workspace parts (see the top of the file): byte offsets. */
typedef struct ws_layout {
  size_t stats, seq, delta, dq_acc, plan;
} ws_layout;

static ws_layout layout_of(const sdpa_cg *c) {
  const dlk_sdpa_problem *p = c->p;
  ws_layout w;
  size_t off = 0;
  w.stats = off;
  off += round256((size_t)rows_of(p) * sizeof(float));
  w.seq = off;
  if (c->seq) off += round256((size_t)(2 * p->B) * sizeof(int32_t));
  w.delta = off;
  if (c->bwd && !c->node) off += round256((size_t)rows_of(p) * sizeof(float));
  w.dq_acc = off;
  if (c->dq_accum) off += round256((size_t)(rows_of(p) * p->D) * sizeof(float));
  w.plan = off;
  return w;
}

/* ---- tensors of the graphs ---------------------------------------------------------- */

/* t with dims 2 and 3 swapped (K^T, V^T as views of the caller's memory). */
static dlk_cg_tensor *transposed(dlk_cg *g, int64_t uid, const dlk_tensor *t) {
  dlk_tensor x = *t;
  x.shape[2] = t->shape[3], x.shape[3] = t->shape[2];
  x.strides[2] = t->strides[3], x.strides[3] = t->strides[2];
  return dlk_cg_tensor_of(g, uid, &x);
}

/* A packed F32 [B, Hq, Tq, 1] row statistic in the workspace (stats, delta). */
static dlk_cg_tensor *row_stat(dlk_cg *g, int64_t uid, const dlk_sdpa_problem *p) {
  const int64_t d[4] = {p->B, p->Hq, p->Tq, 1}, s[4] = {p->Hq * p->Tq, p->Tq, 1, 1};
  return dlk_cg_tensor_new(g, uid, DLK_F32, 4, d, s, 16);
}

/* The I32 [B, 1, 1, 1] length vector of a side (the workspace). */
static dlk_cg_tensor *seq_tensor(dlk_cg *g, int64_t uid, int64_t B) {
  const int64_t d[4] = {B, 1, 1, 1}, s[4] = {1, 1, 1, 1};
  return dlk_cg_tensor_new(g, uid, DLK_I32, 4, d, s, 16);
}

/* The io dtype (cuDNN's) of the problem. */
static cudnnDataType_t io_type(const dlk_sdpa_problem *p) {
  cudnnDataType_t t = CUDNN_DATA_HALF;
  dlk_cg_dtype(p->dtype, &t);
  return t;
}

/* ---- the single nodes ---------------------------------------------------------------- */

static void node_fwd(dlk_cg *g, const void *arg) {
  const sdpa_cg *c = arg;
  const dlk_sdpa_problem *p = c->p;
  dlk_cg_sdpa_fwd_io io;
  memset(&io, 0, sizeof io);
  io.q = dlk_cg_tensor_of(g, U_Q, &p->q);
  io.k = dlk_cg_tensor_of(g, U_K, &p->k);
  io.v = dlk_cg_tensor_of(g, U_V, &p->v);
  io.o = dlk_cg_tensor_of(g, U_O, c->out);
  io.stats = row_stat(g, U_STATS, p);
  io.scale = dlk_cg_scalar(g, U_SCALE, DLK_F32, 4);
  if (c->seq) { /* both sides, or neither (the node's padding mask) */
    io.seq_len_q = seq_tensor(g, U_SEQ_Q, p->B);
    io.seq_len_kv = seq_tensor(g, U_SEQ_KV, p->B);
  }
  dlk_cg_sdpa_fwd(g, &io);
}

static void node_bwd(dlk_cg *g, const void *arg) {
  const sdpa_cg *c = arg;
  const dlk_sdpa_problem *p = c->p;
  dlk_cg_sdpa_bwd_io io;
  memset(&io, 0, sizeof io);
  io.q = dlk_cg_tensor_of(g, U_Q, &p->q);
  io.k = dlk_cg_tensor_of(g, U_K, &p->k);
  io.v = dlk_cg_tensor_of(g, U_V, &p->v);
  io.o = dlk_cg_tensor_of(g, U_O, c->out);
  io.d_o = dlk_cg_tensor_of(g, U_DO, c->dout);
  io.stats = row_stat(g, U_STATS, p);
  io.scale = dlk_cg_scalar(g, U_SCALE, DLK_F32, 4);
  if (c->seq) {
    io.seq_len_q = seq_tensor(g, U_SEQ_Q, p->B);
    io.seq_len_kv = seq_tensor(g, U_SEQ_KV, p->B);
  }
  io.dq = dlk_cg_tensor_of(g, U_DQ, c->dq);
  io.dk = dlk_cg_tensor_of(g, U_DK, c->dk);
  io.dv = dlk_cg_tensor_of(g, U_DV, c->dv);
  dlk_cg_sdpa_bwd(g, &io);
}

/* ---- the composed graphs ------------------------------------------------------------- */

/* The lengths (or NULL without them) and the scores' dims. */
typedef struct graph_io {
  dlk_cg_tensor *sq, *skv, *scale;
  int64_t sd[4], rd[4]; /* [B, Hq, Tq, Tk], [B, Hq, Tq, 1] */
} graph_io;

static graph_io graph_io_of(dlk_cg *g, const sdpa_cg *c) {
  const dlk_sdpa_problem *p = c->p;
  graph_io x;
  memset(&x, 0, sizeof x);
  if (c->seq) {
    x.sq = seq_tensor(g, U_SEQ_Q, p->B);
    x.skv = seq_tensor(g, U_SEQ_KV, p->B);
  }
  x.scale = dlk_cg_scalar(g, U_SCALE, DLK_F32, 4);
  const int64_t sd[4] = {p->B, p->Hq, p->Tq, p->Tk}, rd[4] = {p->B, p->Hq, p->Tq, 1};
  memcpy(x.sd, sd, sizeof sd);
  memcpy(x.rd, rd, sizeof rd);
  return x;
}

/* y = s masked by sel (kept where sel is true, -inf elsewhere). */
static dlk_cg_tensor *select_or_minus_inf(dlk_cg *g, const graph_io *x, dlk_cg_tensor *s,
                                          dlk_cg_tensor *sel) {
  dlk_cg_set_compute(g, CUDNN_DATA_FLOAT);
  dlk_cg_tensor *y = dlk_cg_virtual(g, 4, x->sd);
  dlk_cg_select(g, s, dlk_cg_constant(g, DLK_F32, 4, -INFINITY), sel, y);
  return y;
}

/* The masks of both directions on the scores s: padding (from the lengths), then causal. */
static dlk_cg_tensor *masks(dlk_cg *g, const sdpa_cg *c, const graph_io *x, dlk_cg_tensor *s) {
  const dlk_sdpa_problem *p = c->p;
  if (c->seq) { /* row < q_len and col < k_len */
    dlk_cg_set_compute(g, CUDNN_DATA_INT32);
    dlk_cg_tensor *row = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
    dlk_cg_tensor *col = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
    dlk_cg_gen_index(g, s, 2, row);
    dlk_cg_gen_index(g, s, 3, col);
    dlk_cg_set_compute(g, CUDNN_DATA_BOOLEAN);
    dlk_cg_tensor *rm = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, x->sd);
    dlk_cg_tensor *cm = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, x->sd);
    dlk_cg_tensor *m = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, x->sd);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_CMP_LT, row, x->sq, rm);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_CMP_LT, col, x->skv, cm);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_LOGICAL_AND, rm, cm, m);
    s = select_or_minus_inf(g, x, s, m);
  }
  if (p->causal) { /* row (+ kl - ql) >= col */
    dlk_cg_set_compute(g, CUDNN_DATA_FLOAT);
    dlk_cg_tensor *row = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
    dlk_cg_tensor *col = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
    dlk_cg_gen_index(g, s, 2, row);
    dlk_cg_gen_index(g, s, 3, col);
    if (c->causal_br) {
      dlk_cg_set_compute(g, CUDNN_DATA_INT32);
      dlk_cg_tensor *r1 = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
      dlk_cg_tensor *r2 = dlk_cg_virtual_as(g, CUDNN_DATA_INT32, 4, x->sd);
      dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, row,
                       x->skv ? x->skv : dlk_cg_constant(g, DLK_I32, 4, (double)p->Tk), r1);
      dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, r1,
                       x->sq ? x->sq : dlk_cg_constant(g, DLK_I32, 4, (double)p->Tq), r2);
      row = r2;
    }
    dlk_cg_set_compute(g, CUDNN_DATA_BOOLEAN);
    dlk_cg_tensor *keep = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, x->sd);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_CMP_GE, row, col, keep);
    s = select_or_minus_inf(g, x, s, keep);
  }
  dlk_cg_set_compute(g, CUDNN_DATA_FLOAT);
  return s;
}

/* S = Q K^T * scale (+ bias), as both directions start. */
static dlk_cg_tensor *scores(dlk_cg *g, const sdpa_cg *c, const graph_io *x, dlk_cg_tensor *q,
                             dlk_cg_tensor *kt) {
  dlk_cg_tensor *s = dlk_cg_virtual(g, 4, x->sd), *t = dlk_cg_virtual(g, 4, x->sd);
  dlk_cg_matmul_ex(g, q, kt, s, x->sq, x->skv, NULL);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, s, x->scale, t);
  if (!c->p->has_bias) return t;
  dlk_cg_tensor *u = dlk_cg_virtual(g, 4, x->sd);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, t, dlk_cg_tensor_of(g, U_BIAS, &c->bias), u);
  return u;
}

static void graph_fwd(dlk_cg *g, const void *arg) {
  const sdpa_cg *c = arg;
  const dlk_sdpa_problem *p = c->p;
  const graph_io x = graph_io_of(g, c);
  dlk_cg_tensor *s = scores(g, c, &x, dlk_cg_tensor_of(g, U_Q, &p->q), transposed(g, U_K, &p->k));
  s = masks(g, c, &x, s);
  /* the softmax with its stats: max, exp(s - max), sum, stats = max + log sum, P = e / sum */
  dlk_cg_tensor *m = dlk_cg_virtual(g, 4, x.rd), *sum = dlk_cg_virtual(g, 4, x.rd);
  dlk_cg_tensor *d = dlk_cg_virtual(g, 4, x.sd), *e = dlk_cg_virtual(g, 4, x.sd);
  dlk_cg_tensor *lg = dlk_cg_virtual(g, 4, x.rd);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_MAX, s, m);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, s, m, d);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, d, NULL, e);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_LOG, sum, NULL, lg);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, m, lg, row_stat(g, U_STATS, p));
  dlk_cg_tensor *pr = dlk_cg_virtual_as(g, io_type(p), 4, x.sd); /* the P V matmul's aType */
  dlk_cg_pointwise(g, CUDNN_POINTWISE_DIV, e, sum, pr);
  dlk_cg_matmul_ex(g, pr, dlk_cg_tensor_of(g, U_V, &p->v), dlk_cg_tensor_of(g, U_O, c->out), x.sq,
                   NULL, x.skv);
}

/* The [B, Hq, Tk, Tq] transposed view of a scores-shaped f32 intermediate, io dtype. */
static dlk_cg_tensor *transpose_scores(dlk_cg *g, const dlk_sdpa_problem *p, dlk_cg_tensor *s) {
  const int64_t d[4] = {p->B, p->Hq, p->Tk, p->Tq};
  const int64_t st[4] = {p->Hq * p->Tq * p->Tk, p->Tq * p->Tk, 1, p->Tk};
  dlk_cg_tensor *t = dlk_cg_virtual_strided(g, io_type(p), 4, d, st);
  dlk_cg_reshape(g, s, t);
  return t;
}

/* grad = a b (M/K overrides: the lengths), summed onto the kv heads for GQA. */
static void kv_grad(dlk_cg *g, const sdpa_cg *c, const graph_io *x, dlk_cg_tensor *a,
                    dlk_cg_tensor *b, int64_t width, dlk_cg_tensor *grad) {
  const dlk_sdpa_problem *p = c->p;
  if (p->Hq == p->Hk) {
    dlk_cg_matmul_ex(g, a, b, grad, x->skv, NULL, x->sq);
    return;
  }
  const int64_t d[4] = {p->B, p->Hq, p->Tk, width};
  dlk_cg_tensor *full = dlk_cg_virtual_as(g, io_type(p), 4, d);
  dlk_cg_matmul_ex(g, a, b, full, x->skv, NULL, x->sq);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, full, grad);
}

static void graph_bwd(dlk_cg *g, const void *arg) {
  const sdpa_cg *c = arg;
  const dlk_sdpa_problem *p = c->p;
  const graph_io x = graph_io_of(g, c);
  dlk_cg_tensor *q = dlk_cg_tensor_of(g, U_Q, &p->q), *kt = transposed(g, U_K, &p->k);
  dlk_cg_tensor *dout = dlk_cg_tensor_of(g, U_DO, c->dout);
  /* delta = rowsum(dO * O), f32 in the workspace */
  const int64_t od[4] = {p->B, p->Hq, p->Tq, p->Dv};
  dlk_cg_tensor *dot = dlk_cg_virtual(g, 4, od), *rs = dlk_cg_virtual(g, 4, x.rd);
  dlk_cg_tensor *delta = row_stat(g, U_DELTA, p);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, dout, dlk_cg_tensor_of(g, U_O, c->out), dot);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, dot, rs);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, rs, dlk_cg_constant(g, DLK_F32, 4, 1.0), delta);
  /* P = exp(S - stats), masked */
  dlk_cg_tensor *s = scores(g, c, &x, q, kt), *t = dlk_cg_virtual(g, 4, x.sd);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, s, row_stat(g, U_STATS, p), t);
  s = masks(g, c, &x, t);
  dlk_cg_tensor *pr = dlk_cg_virtual(g, 4, x.sd);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, s, NULL, pr);
  /* dV = P^T dO */
  kv_grad(g, c, &x, transpose_scores(g, p, pr), dout, p->Dv, dlk_cg_tensor_of(g, U_DV, c->dv));
  /* dS = P * (dO V^T - delta) */
  dlk_cg_tensor *dp = dlk_cg_virtual(g, 4, x.sd), *u = dlk_cg_virtual(g, 4, x.sd);
  dlk_cg_tensor *ds = dlk_cg_virtual(g, 4, x.sd), *dss = dlk_cg_virtual(g, 4, x.sd);
  dlk_cg_matmul_ex(g, dout, transposed(g, U_V, &p->v), dp, x.sq, x.skv, NULL);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_SUB, dp, delta, u);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, u, pr, ds);
  if (c->dbias)
    dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, ds, dlk_cg_tensor_of(g, U_DBIAS, c->dbias));
  dlk_cg_pointwise(g, CUDNN_POINTWISE_MUL, ds, x.scale, dss);
  /* dK = dS^T Q */
  kv_grad(g, c, &x, transpose_scores(g, p, dss), q, p->D, dlk_cg_tensor_of(g, U_DK, c->dk));
  /* dQ = dS K, K back from K^T by a reshape to K's own layout */
  const int64_t kd[4] = {p->B, p->Hk, p->Tk, p->D};
  int64_t ks[4];
  for (int i = 3; i >= 0; i--) { /* dlk_cg_tensor_of's strides: a stride-0 dim of 1 spans */
    ks[i] = p->k.strides[i];
    if (p->k.shape[i] == 1 && ks[i] == 0) ks[i] = i == 3 ? 1 : ks[i + 1] * kd[i + 1];
  }
  dlk_cg_tensor *kr = dlk_cg_virtual_strided(g, io_type(p), 4, kd, ks);
  dlk_cg_reshape(g, kt, kr);
  dlk_cg_tensor *dq = dlk_cg_tensor_of(g, U_DQ, c->dq);
  if (!c->dq_accum) {
    dlk_cg_matmul_ex(g, dss, kr, dq, x.sq, NULL, x.skv);
    return;
  }
  const int64_t ad[4] = {p->B, p->Hq, p->Tq, p->D};
  const int64_t as[4] = {p->Hq * p->Tq * p->D, p->Tq * p->D, p->D, 1};
  dlk_cg_tensor *acc = dlk_cg_tensor_new(g, U_DQ_ACC, DLK_F32, 4, ad, as, 16);
  dlk_cg_matmul_ex(g, dss, kr, acc, x.sq, NULL, x.skv);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_IDENTITY, acc, NULL, dq);
}

/* ---- keys, limits and the choice of the way ------------------------------------------ */

/* Everything a plan assumes: the way, every tensor's dtype, dims, strides and alignment,
   the masks and the dQ form (the workspace tensors follow from q's dims). The scale is
   bound by value per call and is not in the key. */
static void sdpa_key(const sdpa_cg *c, dlk_cg_key *k) {
  const dlk_sdpa_problem *p = c->p;
  dlk_cg_key_init(k);
  dlk_cg_key_tensor(k, "q", &p->q);
  dlk_cg_key_tensor(k, "k", &p->k);
  dlk_cg_key_tensor(k, "v", &p->v);
  dlk_cg_key_tensor(k, "o", c->out);
  if (p->has_bias) dlk_cg_key_tensor(k, "b", &c->bias);
  if (c->bwd) {
    dlk_cg_key_tensor(k, "do", c->dout);
    dlk_cg_key_tensor(k, "dq", c->dq);
    dlk_cg_key_tensor(k, "dk", c->dk);
    dlk_cg_key_tensor(k, "dv", c->dv);
    if (c->dbias) dlk_cg_key_tensor(k, "db", c->dbias);
  }
  dlk_cg_key_add(k, "causal%d%s;seq%d;acc%d", p->causal, c->causal_br ? "br" : "", c->seq,
                 c->dq_accum);
}

/* A tensor the fused attention reads or writes: unit stride along the head dim. */
static bool unit_head_dim(const char *name, const dlk_tensor *t, char *why, size_t n) {
  if (t->shape[3] <= 1 || t->strides[3] == 1) return true;
  snprintf(why, n, "%s has stride %lld along the head dim; cuDNN's fused attention needs 1", name,
           (long long)t->strides[3]);
  return false;
}

/* The limits both ways share (the top of the file lists them). */
static bool common_limits(const sdpa_cg *c, char *why, size_t n) {
  const dlk_sdpa_problem *p = c->p;
  if (p->B == 0 || p->Hq == 0 || p->Tq == 0 || p->Tk == 0 || p->D == 0 || p->Dv == 0) {
    snprintf(why, n, "an empty problem (cuDNN tensors have no empty dims)");
    return false;
  }
  if (p->dtype != DLK_F16 && p->dtype != DLK_BF16) {
    snprintf(why, n, "cuDNN's fused attention takes f16/bf16 (this is %s)",
             dlk_dtype_name(p->dtype));
    return false;
  }
  if (p->dropout > 0.0) {
    snprintf(why, n, "dropout: cuDNN draws its own Philox mask, not dlk_dropout's counter mask");
    return false;
  }
  if (p->D % 8 || p->Dv % 8 || p->D > 256 || p->Dv > 256) {
    snprintf(why, n,
             "head dims D %lld, Dv %lld: cuDNN's fused attention takes multiples of 8 up to 256",
             (long long)p->D, (long long)p->Dv);
    return false;
  }
  if (!unit_head_dim("q", &p->q, why, n) || !unit_head_dim("k", &p->k, why, n) ||
      !unit_head_dim("v", &p->v, why, n) || !unit_head_dim("out", c->out, why, n))
    return false;
  if (!c->bwd) return true;
  if (!c->dq || !c->dk || !c->dv) {
    snprintf(why, n, "cuDNN's SDPA backward writes dq, dk and dv: all three are needed");
    return false;
  }
  if (!unit_head_dim("dout", c->dout, why, n) || !unit_head_dim("dq", c->dq, why, n) ||
      !unit_head_dim("dk", c->dk, why, n) || !unit_head_dim("dv", c->dv, why, n))
    return false;
  if (c->dbias && has_lengths(p)) {
    snprintf(why, n, "dbias with lengths: what cuDNN writes at the padded positions is not pinned");
    return false;
  }
  return true;
}

/* Find the plan of the way c says; its status (a refusal: DLK_ERR_NOT_SUPPORTED). */
static dlk_status find(dlk_context *ctx, sdpa_cg *c, const dlk_cg_plan **plan, char *why,
                       size_t n) {
  dlk_cg_key k;
  sdpa_key(c, &k);
  char name[32];
  snprintf(name, sizeof name, "sdpa_%s/%s", c->bwd ? "bwd" : "fwd", c->node ? "node" : "graph");
  dlk_cg_build_fn build =
      c->node ? (c->bwd ? node_bwd : node_fwd) : (c->bwd ? graph_bwd : graph_fwd);
  return dlk_cg_plan_find(ctx, name, &k, build, c, plan, why, n);
}

/* The way of this call and its plan: the node where it applies and cuDNN builds it, else
   the composed graph. DLK_ERR_NOT_SUPPORTED with both reasons in why when neither; another
   status for a hard failure (no handle, out of memory). */
static dlk_status choose(const dlk_context *cctx, sdpa_cg *c, const dlk_cg_plan **plan, char *why,
                         size_t n) {
  dlk_context *ctx = dlk_cg_memo_context(cctx);
  const dlk_sdpa_problem *p = c->p;
  const bool lengths = has_lengths(p);
  char have[16], node_why[DLK_CG_WHY_LEN] = "", graph_why[DLK_CG_WHY_LEN] = "";
  version_text(cudnnGetVersion(), have, sizeof have);
  *plan = NULL;
  if (!common_limits(c, why, n)) return DLK_ERR_NOT_SUPPORTED;

  /* 1. the node: no causal mask or bias before 9.21 (and these rows build no subgraph) */
  c->node = true;
  c->seq = lengths;
  c->causal_br = false;
  c->dq_accum = false;
  if (p->causal || p->has_bias) {
    snprintf(node_why, sizeof node_why, "cuDNN %s SDPA node: no %s (needs %d.%d)", have,
             p->causal ? "causal mask" : "bias", SDPA_SUBGRAPH_VERSION / 10000,
             SDPA_SUBGRAPH_VERSION / 100 % 100);
  } else if (!dlk_cg_sdpa_available(c->bwd, node_why, sizeof node_why)) {
    /* node_why: the version it needs, built and loaded */
  } else {
    const dlk_status s = find(ctx, c, plan, node_why, sizeof node_why);
    if (s == DLK_OK) return DLK_OK;
    if (s != DLK_ERR_NOT_SUPPORTED) {
      snprintf(why, n, "%s", node_why);
      return s;
    }
  }

  /* 2. the composed graph */
  c->node = false;
  c->causal_br = p->causal && (p->Tq != p->Tk || lengths);
  c->seq = lengths || (p->causal && p->Tq > p->Tk); /* rows with no key: the padding form */
  c->dq_accum = c->bwd && !ctx->opts.deterministic && !c->dbias;
  dlk_status s = DLK_ERR_NOT_SUPPORTED;
  if (cudnnGetVersion() < COMPOSED_VERSION) {
    snprintf(graph_why, sizeof graph_why, "written for cuDNN >= %d.%d (this process loaded %s)",
             COMPOSED_VERSION / 10000, COMPOSED_VERSION / 100 % 100, have);
  } else if (c->causal_br && p->has_bias) {
    snprintf(graph_why, sizeof graph_why,
             "the fused engine takes the bottom-right causal mask (Tq != Tk or lengths) only "
             "without bias");
  } else {
    s = find(ctx, c, plan, graph_why, sizeof graph_why);
    if (s == DLK_OK) return DLK_OK;
  }
  snprintf(why, n, "%s; composed graph: %s", node_why, graph_why);
  return s;
}

/* ---- the rows ------------------------------------------------------------------------ */

static void fwd_setup(const dlk_sdpa_fwd_args *a, sdpa_cg *c) {
  memset(c, 0, sizeof *c);
  c->p = &a->p;
  c->out = &a->out;
  c->bias = a->p.bias;
  for (int k = 0; k < 4; k++) /* the bias in its own shape: 1 on the broadcast dims */
    if (c->bias.strides[k] == 0) c->bias.shape[k] = 1;
}

static void bwd_setup(const dlk_sdpa_bwd_args *a, sdpa_cg *c) {
  memset(c, 0, sizeof *c);
  c->p = &a->p;
  c->out = &a->out;
  c->bias = a->p.bias;
  for (int k = 0; k < 4; k++)
    if (c->bias.strides[k] == 0) c->bias.shape[k] = 1;
  c->bwd = true;
  c->dout = &a->dout;
  c->dq = a->has_dq ? &a->dq : NULL;
  c->dk = a->has_dk ? &a->dk : NULL;
  c->dv = a->has_dv ? &a->dv : NULL;
  c->dbias = a->has_dbias ? &a->dbias : NULL;
}

/* workspace(): the parts before the plan's, then the plan's. */
static size_t workspace_of(const dlk_context *ctx, sdpa_cg *c) {
  const dlk_cg_plan *plan;
  char why[DLK_CG_WHY_LEN];
  if (choose(ctx, c, &plan, why, sizeof why) != DLK_OK) return 0; /* supports() said no */
  return layout_of(c).plan + dlk_cg_plan_workspace(plan);
}

/* Execute the plan with every tensor of the call bound (each graph takes its own). */
static dlk_status execute(dlk_context *ctx, const sdpa_cg *c, const dlk_cg_plan *plan, void *ws,
                          size_t ws_bytes, const ws_layout *w) {
  const dlk_sdpa_problem *p = c->p;
  char *base = ws;
  const float scale = (float)p->scale;
  dlk_cg_bind b[16];
  int nb = 0;
  b[nb++] = (dlk_cg_bind){U_Q, p->q.data};
  b[nb++] = (dlk_cg_bind){U_K, p->k.data};
  b[nb++] = (dlk_cg_bind){U_V, p->v.data};
  b[nb++] = (dlk_cg_bind){U_O, c->out->data};
  b[nb++] = (dlk_cg_bind){U_STATS, base + w->stats};
  b[nb++] = (dlk_cg_bind){U_SCALE, &scale};
  if (c->seq) {
    b[nb++] = (dlk_cg_bind){U_SEQ_Q, base + w->seq};
    b[nb++] = (dlk_cg_bind){U_SEQ_KV, base + w->seq + (size_t)p->B * sizeof(int32_t)};
  }
  if (p->has_bias) b[nb++] = (dlk_cg_bind){U_BIAS, p->bias.data};
  if (c->bwd) {
    b[nb++] = (dlk_cg_bind){U_DO, c->dout->data};
    b[nb++] = (dlk_cg_bind){U_DQ, c->dq->data};
    b[nb++] = (dlk_cg_bind){U_DK, c->dk->data};
    b[nb++] = (dlk_cg_bind){U_DV, c->dv->data};
    if (c->dbias) b[nb++] = (dlk_cg_bind){U_DBIAS, c->dbias->data};
    if (!c->node) b[nb++] = (dlk_cg_bind){U_DELTA, base + w->delta};
    if (c->dq_accum) b[nb++] = (dlk_cg_bind){U_DQ_ACC, base + w->dq_acc};
  }
  return dlk_cg_execute(ctx, plan, b, nb, base + w->plan, ws_bytes - w->plan);
}

/* The way, the workspace check and the length vectors, for run(). */
static dlk_status prepare(dlk_context *ctx, const char *op, sdpa_cg *c, const dlk_k_sdpa_desc *d,
                          void *ws, size_t ws_bytes, const dlk_cg_plan **plan, ws_layout *w) {
  char why[DLK_CG_WHY_LEN];
  const dlk_status s = choose(ctx, c, plan, why, sizeof why);
  if (s != DLK_OK) return dlk_fail(ctx, s, "%s/cudnn: %s", op, why);
  *w = layout_of(c);
  const size_t need = w->plan + dlk_cg_plan_workspace(*plan);
  if (!ws || ws_bytes < need)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s/cudnn: workspace of %zu bytes, need %zu", op,
                    ws ? ws_bytes : 0, need);
  if (c->seq) {
    int32_t *seq = (int32_t *)(void *)((char *)ws + w->seq);
    DLK_CUDA_TRY(ctx, dlk_k_sdpa_lengths_i32(d, seq, seq + c->p->B, ctx->stream));
  }
  return DLK_OK;
}

bool dlk_sdpa_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                 size_t n) {
  (void)impl;
  sdpa_cg c;
  fwd_setup(args, &c);
  const dlk_cg_plan *plan;
  return choose(ctx, &c, &plan, why, n) == DLK_OK;
}

size_t dlk_sdpa_fwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  sdpa_cg c;
  fwd_setup(args, &c);
  return workspace_of(ctx, &c);
}

dlk_status dlk_sdpa_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                  size_t ws_bytes) {
  (void)impl;
  const dlk_sdpa_fwd_args *a = args;
  dlk_k_sdpa_desc d;
  dlk_sdpa_fwd_desc(ctx, a, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_forward", &d));
  sdpa_cg c;
  fwd_setup(a, &c);
  const dlk_cg_plan *plan; /* found, then executed before any other find (graph.h) */
  ws_layout w;
  DLK_TRY(prepare(ctx, "sdpa_forward", &c, &d, ws, ws_bytes, &plan, &w));
  DLK_TRY(execute(ctx, &c, plan, ws, ws_bytes, &w));
  const float *stats = (const float *)(const void *)((const char *)ws + w.stats);
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_vendor_fwd_finish(&d, stats, ctx->stream));
  return DLK_OK;
}

bool dlk_sdpa_bwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                                 size_t n) {
  (void)impl;
  sdpa_cg c;
  bwd_setup(args, &c);
  const dlk_cg_plan *plan;
  return choose(ctx, &c, &plan, why, n) == DLK_OK;
}

size_t dlk_sdpa_bwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  sdpa_cg c;
  bwd_setup(args, &c);
  return workspace_of(ctx, &c);
}

dlk_status dlk_sdpa_bwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                  size_t ws_bytes) {
  (void)impl;
  const dlk_sdpa_bwd_args *a = args;
  dlk_k_sdpa_desc d;
  dlk_sdpa_bwd_desc(ctx, a, &d);
  DLK_TRY(dlk_cuda_enter(ctx));
  DLK_TRY(dlk_sdpa_check_lengths_cuda(ctx, "sdpa_backward", &d));
  sdpa_cg c;
  bwd_setup(a, &c);
  const dlk_cg_plan *plan;
  ws_layout w;
  DLK_TRY(prepare(ctx, "sdpa_backward", &c, &d, ws, ws_bytes, &plan, &w));
  float *stats = (float *)(void *)((char *)ws + w.stats);
  DLK_CUDA_TRY(ctx, dlk_k_sdpa_vendor_bwd_stats(&d, stats, ctx->stream));
  DLK_TRY(execute(ctx, &c, plan, ws, ws_bytes, &w));
  if (has_lengths(&a->p)) DLK_CUDA_TRY(ctx, dlk_k_sdpa_clear_padding(&d, 1, ctx->stream));
  return DLK_OK;
}

#else
typedef int dlk_attention_cudnn_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_SDPA_CUDNN */
