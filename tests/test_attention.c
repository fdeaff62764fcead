/*
 * attention family tests.
 *
 * Scaled-dot-product attention (SDPA), CPU run (default):
 *   1. golden fixtures made by PyTorch (tests/golden/attention/sdpa.txt, see
 *      make_attention_golden.py) against the CPU reference, contiguous and strided;
 *   2. finite-difference checks in f64 of the CPU backward (dq, dk, dv, dbias) over causal,
 *      GQA, broadcast bias, lengths and dropout;
 *   3. the sweep (tests/sweep.h): rows sdpa_fwd and sdpa_bwd over the case table below,
 *      every variant x dtype against the naive f64 computation written here, with the
 *      harness's deterministic reruns, AUTO, explain and autotune checks;
 *   4. properties: fully masked rows give out 0, lse -inf and zero gradients, never NaN,
 *      and rows beyond the lengths are never read (they hold NaN here), per variant;
 *   5. bad input: exact status, a message naming the op and the tensor, every output byte
 *      unchanged; lengths out of range;
 *   6. explain mode;
 *   7. with cuDNN built: the cuDNN rows' graphs (the SDPA node and the composed fused-attention
 *      graph of both directions), every node accepted by cuDNN without a GPU, and the reason
 *      of each limit of the rows.
 * GPU run (--gpu; exit 77 when no GPU): the sweep over a CUDA context against the CPU
 *   reference (unsupported cases are reported as skipped with the variant's reason), the
 *   properties of 4 for the native variants, lengths out of range checked on the device,
 *   explain. DLK_TEST_QUICK=1 runs the sweep's quick subset (for compute-sanitizer).
 *
 * Additive (Bahdanau) and Luong attention: the section before main() (test_attn_cpu,
 * test_attn_gpu) says what it checks.
 */
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>

#include "golden.h"
#include "sweep.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char t_case_buf[512];
static int quick_mode = 0;

/* ====================================================================================== */
/* Host values, layouts                                                                   */
/* ====================================================================================== */

static double round_to(dlk_dtype dt, double v) {
  return sweep_round(dt, v);
}

static dlk_dtype stat_dt(dlk_dtype dt) {
  return dt == DLK_F64 ? DLK_F64 : DLK_F32;
}

static int64_t prod(int n, const int64_t *s) {
  int64_t p = 1;
  for (int k = 0; k < n; k++) p *= s[k];
  return p;
}

static void dense_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    strides[k] = s;
    s *= shape[k] > 0 ? shape[k] : 1;
  }
}

/* Element offset of row-major index i. */
static int64_t t_offset(const dlk_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int k = t->ndim - 1; k >= 0; k--) {
    off += (i % t->shape[k]) * t->strides[k];
    i /= t->shape[k];
  }
  return off;
}

/* Layouts of the 4-D tensors of a case (q, k, v, out, dout and their gradients): the
   sweep's three, and [B, T, H, D] storage viewed as [B, H, T, D] (what a fused QKV
   projection gives: strided but 16-byte aligned rows, so the tensor-core variants take
   it). lse, lengths and bias stay contiguous. */
enum { L_CONTIG = SW_CONTIG, L_TRANSPOSED = SW_TRANSPOSED, L_PADDED = SW_PADDED, L_BTHD = 16 };

/* [B, H, T, D] row-major values <-> [B, T, H, D] row-major. */
static void to_bthd(const double *src, double *dst, const int64_t *s) {
  for (int64_t b = 0; b < s[0]; b++)
    for (int64_t h = 0; h < s[1]; h++)
      for (int64_t t = 0; t < s[2]; t++)
        for (int64_t d = 0; d < s[3]; d++)
          dst[((b * s[2] + t) * s[1] + h) * s[3] + d] = src[((b * s[1] + h) * s[2] + t) * s[3] + d];
}
static void from_bthd(const double *src, double *dst, const int64_t *s) {
  for (int64_t b = 0; b < s[0]; b++)
    for (int64_t h = 0; h < s[1]; h++)
      for (int64_t t = 0; t < s[2]; t++)
        for (int64_t d = 0; d < s[3]; d++)
          dst[((b * s[1] + h) * s[2] + t) * s[3] + d] = src[((b * s[2] + t) * s[1] + h) * s[3] + d];
}

/* Buffers that must outlive a rig (its inputs' values are checked at sweep_end). */
typedef struct keep_list {
  double *p[8];
  int n;
} keep_list;
static void keep_free(keep_list *k) {
  for (int i = 0; i < k->n; i++) free(k->p[i]);
  k->n = 0;
}

/* A 4-D tensor s = [B, H, T, D] of the call in layout lay; for L_BTHD the rig holds
   [B, T, H, D] and *view is its transpose. vals NULL: an output. */
static sweep_tensor *rig4(sweep_rig *r, dlk_dtype dt, const int64_t *s, int lay, const double *vals,
                          keep_list *keep, dlk_tensor *view) {
  sweep_tensor *t;
  if (lay == L_BTHD) {
    const int64_t st[4] = {s[0], s[2], s[1], s[3]};
    const double *v = NULL;
    if (vals) {
      double *p = calloc((size_t)(prod(4, s) > 0 ? prod(4, s) : 1), sizeof(double));
      to_bthd(vals, p, s);
      keep->p[keep->n++] = p;
      v = p;
    }
    t = vals ? sweep_in(r, dt, 4, st, SW_CONTIG, v) : sweep_out(r, dt, 4, st, SW_CONTIG);
    *view = t->v;
    view->shape[1] = s[1], view->shape[2] = s[2];
    view->strides[1] = t->v.strides[2], view->strides[2] = t->v.strides[1];
  } else {
    t = vals ? sweep_in(r, dt, 4, s, (sweep_layout)lay, vals)
             : sweep_out(r, dt, 4, s, (sweep_layout)lay);
    *view = t->v;
  }
  return t;
}

/* Output i of a set read back from a [B, T, H, D] rig tensor: back to [B, H, T, D]. */
static void unpermute(sweep_set *out, int i, const int64_t *s) {
  if (i >= out->n) return;
  double *tmp = calloc((size_t)(out->a[i].n > 0 ? out->a[i].n : 1), sizeof(double));
  from_bthd(out->a[i].v, tmp, s);
  memcpy(out->a[i].v, tmp, (size_t)out->a[i].n * sizeof(double));
  free(tmp);
}

/* A CPU tensor over caller memory, contiguous. */
static dlk_tensor host_tensor(void *data, dlk_dtype dt, int ndim, const int64_t *shape) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.device = (dlk_device){DLK_CPU, 0};
  t.ndim = ndim;
  for (int k = 0; k < ndim; k++) t.shape[k] = shape[k];
  dense_strides(ndim, shape, t.strides);
  return t;
}

/* Compare with a tolerance whose absolute part grows with the largest reference value
   (gradients sum many rounded products: their error scales with the tensor, not with each
   element, as in FlashAttention's own tests). */
static int close_scaled(const char *what, const double *got, const double *ref, int64_t n,
                        double atol, double rtol, int scaled) {
  double big = 1.0;
  if (scaled)
    for (int64_t i = 0; i < n; i++)
      if (isfinite(ref[i]) && fabs(ref[i]) > big) big = fabs(ref[i]);
  return t_close(what, got, ref, n, atol * big, rtol);
}

/* ====================================================================================== */
/* Scaled-dot-product attention: one problem, its inputs and a runner                     */
/* ====================================================================================== */

/* Bias kinds: the caller's shape of the bias. */
enum {
  BIAS_NONE = 0,
  BIAS_FULL,   /* [B, Hq, Tq, Tk] */
  BIAS_B1,     /* [1, Hq, Tq, Tk] */
  BIAS_H1,     /* [B, 1, Tq, Tk] */
  BIAS_2D,     /* [Tq, Tk] */
  BIAS_KEYPAD, /* [B, 1, 1, Tk] of 0 / -inf: a boolean key-padding mask */
};
/* Length kinds: none; q and k lengths (even batches full, odd ones short: half the
   queries, a single key); k lengths only. */
enum { LEN_NONE = 0, LEN_QK, LEN_K };

typedef struct sdpa_case {
  sweep_tags tags; /* .big: only in the run against a reference context (the GPU run) */
  const char *name;
  int64_t B, Hq, Hk, Tq, Tk, D, Dv;
  int causal, bias, lengths;
  int masked_row; /* bias row (0, h, masked_row - 1, :) all -inf */
  double dropout, scale;
  int layout; /* L_* */
} sdpa_case;

static void bias_shape(const sdpa_case *c, int *nd, int64_t *s) {
  switch (c->bias) {
    case BIAS_FULL: *nd = 4, s[0] = c->B, s[1] = c->Hq, s[2] = c->Tq, s[3] = c->Tk; break;
    case BIAS_B1: *nd = 4, s[0] = 1, s[1] = c->Hq, s[2] = c->Tq, s[3] = c->Tk; break;
    case BIAS_H1: *nd = 4, s[0] = c->B, s[1] = 1, s[2] = c->Tq, s[3] = c->Tk; break;
    case BIAS_2D: *nd = 2, s[0] = c->Tq, s[1] = c->Tk; break;
    case BIAS_KEYPAD: *nd = 4, s[0] = c->B, s[1] = 1, s[2] = 1, s[3] = c->Tk; break;
    default: *nd = 0;
  }
}

static int64_t case_qlen(const sdpa_case *c, int64_t b) {
  if (c->lengths != LEN_QK || b % 2 == 0) return c->Tq;
  return c->Tq / 2 + 1 < c->Tq ? c->Tq / 2 + 1 : c->Tq;
}
static int64_t case_klen(const sdpa_case *c, int64_t b) {
  if (c->lengths == LEN_NONE) return c->Tk;
  if (b % 2 == 1) return 1; /* lengths that hide all but one key */
  return c->Tk > 3 ? c->Tk - 3 : c->Tk;
}

/* Host values of one problem, row-major in each tensor's logical shape. The arrays are
   owned by whoever made the io (sdpa_gen: free with sdpa_io_free; io_of: a sweep_set). */
typedef struct sdpa_io {
  dlk_dtype dt;
  double *q, *k, *v, *bias, *dout;
  int bias_nd;
  int64_t bias_shape[4];
  double *qlen, *klen; /* NULL when absent */
  double *out, *lse;   /* the backward's inputs (the sweep's sdpa_bwd row), else NULL */
} sdpa_io;

/* Results, row-major: out [B, Hq, Tq, Dv], lse [B, Hq, Tq], dq, dk, dv, dbias. */
typedef struct sdpa_res {
  double *out, *lse, *dq, *dk, *dv, *dbias;
} sdpa_res;

static int64_t n_q(const sdpa_case *c) {
  return c->B * c->Hq * c->Tq * c->D;
}
static int64_t n_k(const sdpa_case *c) {
  return c->B * c->Hk * c->Tk * c->D;
}
static int64_t n_v(const sdpa_case *c) {
  return c->B * c->Hk * c->Tk * c->Dv;
}
static int64_t n_o(const sdpa_case *c) {
  return c->B * c->Hq * c->Tq * c->Dv;
}
static int64_t n_l(const sdpa_case *c) {
  return c->B * c->Hq * c->Tq;
}
static int64_t n_bias(const sdpa_io *io) {
  return prod(io->bias_nd, io->bias_shape);
}

static double *alloc_d(int64_t n) {
  return calloc((size_t)(n > 0 ? n : 1), sizeof(double));
}

/* Draw the inputs of case c in dtype dt: uniform values rounded to dt; a bias in
   [-0.5, 0.5) (0 / -inf for the key-padding mask, one row -inf for masked_row);
   `pad_nan`: rows beyond the lengths get NaN, which no variant may read. */
static void sdpa_gen(const sdpa_case *c, dlk_dtype dt, int pad_nan, sdpa_io *io) {
  memset(io, 0, sizeof *io);
  io->dt = dt;
  io->q = alloc_d(n_q(c));
  io->k = alloc_d(n_k(c));
  io->v = alloc_d(n_v(c));
  io->dout = alloc_d(n_o(c));
  for (int64_t i = 0; i < n_q(c); i++) io->q[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < n_k(c); i++) io->k[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < n_v(c); i++) io->v[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < n_o(c); i++) io->dout[i] = round_to(dt, t_uniform(-1, 1));
  bias_shape(c, &io->bias_nd, io->bias_shape);
  if (c->bias) {
    io->bias = alloc_d(n_bias(io));
    for (int64_t i = 0; i < n_bias(io); i++) io->bias[i] = round_to(dt, t_uniform(-0.5, 0.5));
    if (c->bias == BIAS_KEYPAD)
      for (int64_t b = 0; b < c->B; b++)
        for (int64_t j = 0; j < c->Tk; j++)
          io->bias[b * c->Tk + j] = j >= c->Tk - 1 - b && j > 0 ? -INFINITY : 0.0;
    if (c->masked_row && c->bias != BIAS_KEYPAD) {
      /* row i of the first bias matrix: [.., i, :] */
      const int64_t i = c->masked_row - 1;
      for (int64_t j = 0; j < c->Tk; j++) io->bias[i * c->Tk + j] = -INFINITY;
    }
  }
  if (c->lengths) {
    io->klen = alloc_d(c->B);
    for (int64_t b = 0; b < c->B; b++) io->klen[b] = (double)case_klen(c, b);
    if (c->lengths == LEN_QK) {
      io->qlen = alloc_d(c->B);
      for (int64_t b = 0; b < c->B; b++) io->qlen[b] = (double)case_qlen(c, b);
    }
  }
  if (pad_nan) {
    for (int64_t b = 0; b < c->B; b++) {
      const int64_t ql = io->qlen ? (int64_t)io->qlen[b] : c->Tq,
                    kl = io->klen ? (int64_t)io->klen[b] : c->Tk;
      for (int64_t h = 0; h < c->Hq; h++)
        for (int64_t i = ql; i < c->Tq; i++) {
          for (int64_t d = 0; d < c->D; d++) io->q[((b * c->Hq + h) * c->Tq + i) * c->D + d] = NAN;
          for (int64_t d = 0; d < c->Dv; d++)
            io->dout[((b * c->Hq + h) * c->Tq + i) * c->Dv + d] = NAN;
        }
      for (int64_t h = 0; h < c->Hk; h++)
        for (int64_t j = kl; j < c->Tk; j++) {
          for (int64_t d = 0; d < c->D; d++) io->k[((b * c->Hk + h) * c->Tk + j) * c->D + d] = NAN;
          for (int64_t d = 0; d < c->Dv; d++)
            io->v[((b * c->Hk + h) * c->Tk + j) * c->Dv + d] = NAN;
        }
    }
  }
}

static void sdpa_io_free(sdpa_io *io) {
  free(io->q), free(io->k), free(io->v), free(io->bias), free(io->dout), free(io->qlen),
      free(io->klen), free(io->out), free(io->lse);
  memset(io, 0, sizeof *io);
}

static void sdpa_res_free(sdpa_res *r) {
  free(r->out), free(r->lse), free(r->dq), free(r->dk), free(r->dv), free(r->dbias);
  memset(r, 0, sizeof *r);
}

static void case_params(const sdpa_case *c, uint64_t seed, dlk_sdpa_params *p) {
  memset(p, 0, sizeof *p);
  p->scale = c->scale;
  p->causal = c->causal;
  p->dropout = c->dropout;
  p->seed = seed;
  p->offset = 1000 + seed % 7;
}

/* The forward of case c on ctx through a sweep rig (layout c->layout): out [B, Hq, Tq, Dv]
   and lse appended to *out in that order. */
static dlk_status run_forward(dlk_context *ctx, const sdpa_case *c, const sdpa_io *io,
                              sweep_set *out) {
  const dlk_dtype dt = io->dt;
  const int64_t sq[4] = {c->B, c->Hq, c->Tq, c->D}, sk[4] = {c->B, c->Hk, c->Tk, c->D},
                sv[4] = {c->B, c->Hk, c->Tk, c->Dv}, so[4] = {c->B, c->Hq, c->Tq, c->Dv},
                sl[3] = {c->B, c->Hq, c->Tq}, sb[1] = {c->B};
  sweep_rig r = {.ctx = ctx};
  keep_list keep = {.n = 0};
  dlk_tensor q, k, v, o;
  rig4(&r, dt, sq, c->layout, io->q, &keep, &q);
  rig4(&r, dt, sk, c->layout, io->k, &keep, &k);
  rig4(&r, dt, sv, c->layout, io->v, &keep, &v);
  sweep_tensor *bias =
      c->bias ? sweep_in(&r, dt, io->bias_nd, io->bias_shape, SW_CONTIG, io->bias) : NULL;
  sweep_tensor *ql = io->qlen ? sweep_in(&r, DLK_I32, 1, sb, SW_CONTIG, io->qlen) : NULL;
  sweep_tensor *kl = io->klen ? sweep_in(&r, DLK_I64, 1, sb, SW_CONTIG, io->klen) : NULL;
  rig4(&r, dt, so, c->layout, NULL, &keep, &o);
  sweep_tensor *lse = sweep_out(&r, stat_dt(dt), 3, sl, SW_CONTIG);
  dlk_status s = DLK_OK;
  if (!r.failed) {
    dlk_sdpa_params p;
    case_params(c, 42, &p);
    s = dlk_sdpa_forward(ctx, &p, &q, &k, &v, bias ? &bias->v : NULL, ql ? &ql->v : NULL,
                         kl ? &kl->v : NULL, &o, &lse->v);
  }
  const int first = out->n;
  s = sweep_end(&r, s, out);
  if (s == DLK_OK && c->layout == L_BTHD) unpermute(out, first, so);
  keep_free(&keep);
  return s;
}

/* The backward of case c from io's out and lse (and dout): dq, dk, dv and, with a bias,
   dbias appended to *out in that order. */
static dlk_status run_backward(dlk_context *ctx, const sdpa_case *c, const sdpa_io *io,
                               sweep_set *out) {
  const dlk_dtype dt = io->dt;
  const int64_t sq[4] = {c->B, c->Hq, c->Tq, c->D}, sk[4] = {c->B, c->Hk, c->Tk, c->D},
                sv[4] = {c->B, c->Hk, c->Tk, c->Dv}, so[4] = {c->B, c->Hq, c->Tq, c->Dv},
                sl[3] = {c->B, c->Hq, c->Tq}, sb[1] = {c->B};
  /* thirteen tensors: the lengths in a rig of their own (a rig holds twelve) */
  sweep_rig r = {.ctx = ctx}, rl = {.ctx = ctx};
  keep_list keep = {.n = 0};
  dlk_tensor q, k, v, o, dout, dq, dk, dv;
  rig4(&r, dt, sq, c->layout, io->q, &keep, &q);
  rig4(&r, dt, sk, c->layout, io->k, &keep, &k);
  rig4(&r, dt, sv, c->layout, io->v, &keep, &v);
  sweep_tensor *bias =
      c->bias ? sweep_in(&r, dt, io->bias_nd, io->bias_shape, SW_CONTIG, io->bias) : NULL;
  sweep_tensor *ql = io->qlen ? sweep_in(&rl, DLK_I32, 1, sb, SW_CONTIG, io->qlen) : NULL;
  sweep_tensor *kl = io->klen ? sweep_in(&rl, DLK_I64, 1, sb, SW_CONTIG, io->klen) : NULL;
  rig4(&r, dt, so, c->layout, io->out, &keep, &o);
  sweep_tensor *lse = sweep_in(&r, stat_dt(dt), 3, sl, SW_CONTIG, io->lse);
  rig4(&r, dt, so, c->layout, io->dout, &keep, &dout);
  rig4(&r, dt, sq, c->layout, NULL, &keep, &dq);
  rig4(&r, dt, sk, c->layout, NULL, &keep, &dk);
  rig4(&r, dt, sv, c->layout, NULL, &keep, &dv);
  sweep_tensor *dbias = c->bias ? sweep_out(&r, dt, io->bias_nd, io->bias_shape, SW_CONTIG) : NULL;
  dlk_status s = DLK_OK;
  if (!r.failed && !rl.failed) {
    dlk_sdpa_params p;
    case_params(c, 42, &p);
    s = dlk_sdpa_backward(ctx, &p, &q, &k, &v, bias ? &bias->v : NULL, ql ? &ql->v : NULL,
                          kl ? &kl->v : NULL, &o, &lse->v, &dout, &dq, &dk, &dv,
                          dbias ? &dbias->v : NULL);
  }
  const int first = out->n;
  sweep_end(&rl, s, NULL);
  s = sweep_end(&r, s, out);
  if (s == DLK_OK && c->layout == L_BTHD) {
    unpermute(out, first, sq);
    unpermute(out, first + 1, sk);
    unpermute(out, first + 2, sv);
  }
  keep_free(&keep);
  return s;
}

/* Forward, and when bwd the backward from the forward's out and lse; results into *r
   (NULL arrays for what did not run). A non-OK status is returned (the message on ctx). */
static dlk_status sdpa_run(dlk_context *ctx, const sdpa_case *c, const sdpa_io *io, int bwd,
                           sdpa_res *r) {
  memset(r, 0, sizeof *r);
  sweep_set f = {.n = 0}, g = {.n = 0};
  dlk_status s = run_forward(ctx, c, io, &f);
  if (s == DLK_OK && bwd) {
    sdpa_io b = *io;
    b.out = f.a[0].v;
    b.lse = f.a[1].v;
    s = run_backward(ctx, c, &b, &g);
  }
  if (s == DLK_OK) {
    /* take the arrays over from the sets */
    r->out = f.a[0].v, r->lse = f.a[1].v, f.n = 0;
    if (bwd) {
      r->dq = g.a[0].v, r->dk = g.a[1].v, r->dv = g.a[2].v;
      if (c->bias) r->dbias = g.a[3].v;
      g.n = 0;
    }
  }
  sweep_free(&f);
  sweep_free(&g);
  return s;
}

/* ---- the independent naive f64 SDPA of the tests (plain arrays, row-major) ---- */

static int64_t bias_index(const sdpa_io *io, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t c4[4] = {b, h, i, j};
  int64_t idx = 0;
  const int lead = 4 - io->bias_nd;
  for (int k = lead; k < 4; k++) {
    int64_t n = io->bias_shape[k - lead];
    idx = idx * n + (n == 1 ? 0 : c4[k]);
  }
  return idx;
}

static double naive_keep(const sdpa_case *c, const dlk_sdpa_params *p, int64_t b, int64_t h,
                         int64_t i, int64_t j) {
  if (c->dropout == 0) return 1.0;
  uint64_t idx = (uint64_t)(((b * c->Hq + h) * c->Tq + i) * c->Tk + j);
  return dlk_dropout_uniform(p->seed, p->offset + idx) >= c->dropout ? 1.0 / (1.0 - c->dropout)
                                                                     : 0.0;
}

/* The whole attention matrix P (before dropout) of every (b, h) and the lse, then out and
   every gradient by the textbook formulas. */
static void naive_sdpa(const sdpa_case *c, const sdpa_io *io, int bwd, sdpa_res *r) {
  dlk_sdpa_params p;
  case_params(c, 42, &p);
  const double scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->D);
  const int64_t G = c->Hq / c->Hk, Tq = c->Tq, Tk = c->Tk, D = c->D, Dv = c->Dv;
  memset(r, 0, sizeof *r);
  r->out = alloc_d(n_o(c));
  r->lse = alloc_d(n_l(c));
  if (bwd) {
    r->dq = alloc_d(n_q(c));
    r->dk = alloc_d(n_k(c));
    r->dv = alloc_d(n_v(c));
    if (c->bias) r->dbias = alloc_d(n_bias(io));
  }
  double *P = alloc_d(Tq * Tk), *S = alloc_d(Tq * Tk);
  for (int64_t b = 0; b < c->B; b++) {
    const int64_t ql = io->qlen ? (int64_t)io->qlen[b] : Tq,
                  kl = io->klen ? (int64_t)io->klen[b] : Tk;
    for (int64_t h = 0; h < c->Hq; h++) {
      const int64_t hk = h / G;
      const double *q = io->q + (b * c->Hq + h) * Tq * D, *k = io->k + (b * c->Hk + hk) * Tk * D;
      const double *v = io->v + (b * c->Hk + hk) * Tk * Dv,
                   *dout = io->dout + (b * c->Hq + h) * Tq * Dv;
      for (int64_t i = 0; i < Tq; i++) {
        double m = -INFINITY;
        for (int64_t j = 0; j < Tk; j++) {
          double s = -INFINITY;
          if (i < ql && j < kl && (!c->causal || j <= i + kl - ql)) {
            s = 0;
            for (int64_t d = 0; d < D; d++) s += q[i * D + d] * k[j * D + d];
            s *= scale;
            if (c->bias) s += io->bias[bias_index(io, b, h, i, j)];
          }
          S[i * Tk + j] = s;
          if (s > m) m = s;
        }
        double sum = 0;
        for (int64_t j = 0; j < Tk; j++) sum += m == -INFINITY ? 0 : exp(S[i * Tk + j] - m);
        const double lse = m == -INFINITY ? -INFINITY : m + log(sum);
        r->lse[(b * c->Hq + h) * Tq + i] = lse;
        for (int64_t j = 0; j < Tk; j++)
          P[i * Tk + j] = lse == -INFINITY ? 0 : exp(S[i * Tk + j] - lse);
        for (int64_t d = 0; d < Dv; d++) {
          double acc = 0;
          for (int64_t j = 0; j < Tk; j++)
            if (P[i * Tk + j] != 0)
              acc += P[i * Tk + j] * naive_keep(c, &p, b, h, i, j) * v[j * Dv + d];
          r->out[((b * c->Hq + h) * Tq + i) * Dv + d] = acc;
        }
      }
      if (!bwd) continue;
      for (int64_t i = 0; i < Tq; i++) {
        if (i >= ql) continue;
        /* delta from the exact out (= sum_j p_ij dp_ij) */
        double delta = 0;
        for (int64_t d = 0; d < Dv; d++)
          delta += dout[i * Dv + d] * r->out[((b * c->Hq + h) * Tq + i) * Dv + d];
        for (int64_t j = 0; j < Tk; j++) {
          const double pij = P[i * Tk + j];
          if (pij == 0) continue;
          const double z = naive_keep(c, &p, b, h, i, j);
          double dp = 0;
          for (int64_t d = 0; d < Dv; d++) dp += dout[i * Dv + d] * v[j * Dv + d];
          const double ds = pij * (z * dp - delta);
          for (int64_t d = 0; d < D; d++) {
            r->dq[((b * c->Hq + h) * Tq + i) * D + d] += scale * ds * k[j * D + d];
            r->dk[((b * c->Hk + hk) * Tk + j) * D + d] += scale * ds * q[i * D + d];
          }
          for (int64_t d = 0; d < Dv; d++)
            r->dv[((b * c->Hk + hk) * Tk + j) * Dv + d] += pij * z * dout[i * Dv + d];
          if (c->bias) r->dbias[bias_index(io, b, h, i, j)] += ds;
        }
      }
    }
  }
  free(P);
  free(S);
}

/* Compare results (out, lse, gradients) at the tolerances of dtype dt. */
static void sdpa_compare(const char *what, const sdpa_case *c, const sdpa_io *io,
                         const sdpa_res *got, const sdpa_res *ref) {
  double atol, rtol;
  t_tolerance(io->dt, 0, &atol, &rtol);
  char w[640];
  snprintf(w, sizeof w, "%s: out", what);
  close_scaled(w, got->out, ref->out, n_o(c), atol, rtol, 0);
  /* lse: f32 (or f64), summed from scores of D products: 1e-4 for the 16-bit inputs */
  snprintf(w, sizeof w, "%s: lse", what);
  const double la = io->dt == DLK_F64 ? 1e-12 : io->dt == DLK_F32 ? 1e-5 : 1e-4;
  t_close(w, got->lse, ref->lse, n_l(c), la, la);
  if (!ref->dq || !got->dq) return;
  snprintf(w, sizeof w, "%s: dq", what);
  close_scaled(w, got->dq, ref->dq, n_q(c), atol, rtol, 1);
  snprintf(w, sizeof w, "%s: dk", what);
  close_scaled(w, got->dk, ref->dk, n_k(c), atol, rtol, 1);
  snprintf(w, sizeof w, "%s: dv", what);
  close_scaled(w, got->dv, ref->dv, n_v(c), atol, rtol, 1);
  if (c->bias) {
    snprintf(w, sizeof w, "%s: dbias", what);
    close_scaled(w, got->dbias, ref->dbias, n_bias(io), atol, rtol, 1);
  }
}

/* No NaN anywhere in the results (fully masked rows and unread padding must not make one). */
static void sdpa_no_nan(const char *what, const sdpa_case *c, const sdpa_io *io,
                        const sdpa_res *r) {
  const struct {
    const char *name;
    const double *v;
    int64_t n;
  } all[6] = {{"out", r->out, n_o(c)}, {"lse", r->lse, n_l(c)}, {"dq", r->dq, n_q(c)},
              {"dk", r->dk, n_k(c)},   {"dv", r->dv, n_v(c)},   {"dbias", r->dbias, n_bias(io)}};
  for (int a = 0; a < 6; a++) {
    if (!all[a].v) continue;
    int64_t nan = 0;
    for (int64_t i = 0; i < all[a].n; i++) nan += isnan(all[a].v[i]);
    CHECK(nan == 0, "%s: %s has %lld NaN", what, all[a].name, (long long)nan);
  }
}

/* ====================================================================================== */
/* 1. Golden fixtures                                                                     */
/* ====================================================================================== */

/* Host tensors of a golden case: contiguous, or (strided) with the last two dims of every
   4-D input laid out transposed in memory. */
typedef struct {
  dlk_tensor t[16];
  void *mem[16];
  int n;
} ghost;

static dlk_tensor *g_host(ghost *h, const gtensor *g, int strided, int fill_ff) {
  dlk_tensor *t = &h->t[h->n];
  size_t es = dlk_dtype_size(g->dt);
  void *mem = malloc((size_t)(g->n > 0 ? g->n : 1) * es);
  h->mem[h->n++] = mem;
  *t = host_tensor(mem, g->dt, g->ndim, g->shape);
  if (strided && g->ndim == 4) {
    const int64_t st_shape[4] = {g->shape[0], g->shape[1], g->shape[3], g->shape[2]};
    int64_t st[4];
    dense_strides(4, st_shape, st);
    t->strides[2] = st[3], t->strides[3] = st[2];
  }
  if (fill_ff) {
    memset(mem, 0xFF, (size_t)(g->n > 0 ? g->n : 1) * es);
  } else {
    for (int64_t i = 0; i < g->n; i++) dlk_store(mem, g->dt, t_offset(t, i), g->v[i]);
  }
  return t;
}

static void g_host_free(ghost *h) {
  for (int i = 0; i < h->n; i++) free(h->mem[i]);
  h->n = 0;
}

static dlk_tensor *g_in(ghost *h, gcase *c, const char *name, int strided) {
  gtensor *g = g_find(c, name, 0);
  return g ? g_host(h, g, strided, 0) : NULL;
}
static dlk_tensor *g_out(ghost *h, gcase *c, const char *name, int strided) {
  gtensor *g = g_find(c, name, 1);
  return g ? g_host(h, g, strided, 1) : NULL;
}

/* Compare a result with the expected output `name`; gradients with the scaled tolerance. */
static void g_expect(gcase *c, const char *name, const dlk_tensor *got, int scaled) {
  gtensor *g = g_find(c, name, 1);
  CHECK(g != NULL && got != NULL, "golden %s: output %s missing", c->name, name);
  if (!g || !got) return;
  double *v = alloc_d(g->n);
  for (int64_t i = 0; i < g->n; i++) v[i] = dlk_load(got->data, got->dtype, t_offset(got, i));
  double atol, rtol;
  t_tolerance(g->dt, 0, &atol, &rtol);
  char what[160];
  snprintf(what, sizeof what, "golden %s: %s", c->name, name);
  close_scaled(what, v, g->v, g->n, atol, rtol, scaled);
  free(v);
}

static void golden_sdpa(dlk_context *ctx, gcase *c, int strided) {
  ghost h = {.n = 0};
  snprintf(t_case_buf, sizeof t_case_buf, "golden %s%s", c->name, strided ? " (strided)" : "");
  t_case = t_case_buf;
  dlk_sdpa_params p;
  memset(&p, 0, sizeof p);
  p.scale = g_num(c, "scale");
  p.causal = (int)g_num(c, "causal");
  p.dropout = g_num(c, "dropout");
  p.seed = (uint64_t)g_num(c, "seed");
  p.offset = (uint64_t)g_num(c, "offset");
  dlk_tensor *q = g_in(&h, c, "q", strided), *k = g_in(&h, c, "k", strided),
             *v = g_in(&h, c, "v", strided);
  dlk_tensor *bias = g_in(&h, c, "bias", 0), *ql = g_in(&h, c, "q_lengths", 0),
             *kl = g_in(&h, c, "k_lengths", 0);
  dlk_tensor *dout = g_in(&h, c, "dout", strided);
  dlk_tensor *out = g_out(&h, c, "out", strided), *lse = g_out(&h, c, "lse", 0);
  dlk_tensor *dq = g_out(&h, c, "dq", strided), *dk = g_out(&h, c, "dk", strided),
             *dv = g_out(&h, c, "dv", strided);
  dlk_tensor *dbias = g_out(&h, c, "dbias", 0);
  CHECK(q && k && v && dout && out && lse && dq && dk && dv, "golden %s: tensors missing", c->name);
  if (q && k && v && dout && out && lse && dq && dk && dv) {
    CHECK_OK(ctx, dlk_sdpa_forward(ctx, &p, q, k, v, bias, ql, kl, out, lse));
    g_expect(c, "out", out, 0);
    g_expect(c, "lse", lse, 0);
    CHECK_OK(ctx,
             dlk_sdpa_backward(ctx, &p, q, k, v, bias, ql, kl, out, lse, dout, dq, dk, dv, dbias));
    g_expect(c, "dq", dq, 1);
    g_expect(c, "dk", dk, 1);
    g_expect(c, "dv", dv, 1);
    if (bias) g_expect(c, "dbias", dbias, 1);
  }
  g_host_free(&h);
}

static void golden_sdpa_case(dlk_context *ctx, gcase *c, void *unused) {
  (void)unused;
  CHECK(strcmp(c->op, "sdpa") == 0, "golden %s: unknown op %s", c->name, c->op);
  golden_sdpa(ctx, c, 0);
  golden_sdpa(ctx, c, 1);
}

static void test_golden(dlk_context *ctx) {
  const int n = golden_each(ctx, "tests/golden/attention/sdpa.txt", golden_sdpa_case, NULL);
  printf("golden: %d PyTorch SDPA cases checked (contiguous and strided)\n", n);
}

/* ====================================================================================== */
/* 2. Finite differences of the CPU backward in f64                                       */
/* ====================================================================================== */

/* L = sum(dout * out) through the library's forward on host f64 arrays. */
static double fd_loss(dlk_context *ctx, const sdpa_case *c, const sdpa_io *io) {
  sdpa_res r;
  dlk_status s = sdpa_run(ctx, c, io, 0, &r);
  CHECK(s == DLK_OK, "fd forward: %s", dlk_context_last_error(ctx));
  double L = 0;
  for (int64_t i = 0; s == DLK_OK && i < n_o(c); i++) L += io->dout[i] * r.out[i];
  sdpa_res_free(&r);
  return L;
}

/* Central differences of a loss L(x) with respect to every finite element of x (a -inf
   bias entry stays -inf: its slot of the numerical gradient stays 0), against the
   backward's gradient g. One routine for both halves of this file: `loss` closes over the
   case (SDPA's or additive/Luong's) through `arg`. */
static void fd_compare(const char *case_name, const char *name, double *x, int64_t n, const double *g,
                       double (*loss)(void *arg), void *arg) {
  const double eps = 1e-6;
  double *num = alloc_d(n);
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(x[i])) continue;
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double lp = loss(arg);
    x[i] = x0 - eps;
    const double lm = loss(arg);
    x[i] = x0;
    num[i] = (lp - lm) / (2 * eps);
  }
  char what[256];
  snprintf(what, sizeof what, "fd %s: d%s", case_name, name);
  t_close(what, g, num, n, 1e-7, 1e-6);
  free(num);
}

typedef struct {
  dlk_context *ctx;
  const sdpa_case *c;
  sdpa_io *io;
} sdpa_fd_arg;
static double sdpa_fd_loss(void *arg) {
  const sdpa_fd_arg *a = arg;
  return fd_loss(a->ctx, a->c, a->io);
}
static void fd_check(dlk_context *ctx, const sdpa_case *c, sdpa_io *io, const char *name, double *x,
                     int64_t n, const double *g) {
  sdpa_fd_arg a = {ctx, c, io};
  fd_compare(c->name, name, x, n, g, sdpa_fd_loss, &a);
}

static void test_fd(dlk_context *ctx) {
  static const sdpa_case cases[] = {
      /* name, B, Hq, Hk, Tq, Tk, D, Dv, causal, bias, lengths, masked_row, dropout, scale */
      {.name = "plain", .B = 1, .Hq = 2, .Hk = 2, .Tq = 3, .Tk = 4, .D = 3, .Dv = 2},
      {.name = "causal_gqa",
       .B = 1,
       .Hq = 4,
       .Hk = 2,
       .Tq = 4,
       .Tk = 3,
       .D = 3,
       .Dv = 3,
       .causal = 1,
       .scale = 0.7},
      {.name = "bias_full",
       .B = 2,
       .Hq = 2,
       .Hk = 1,
       .Tq = 3,
       .Tk = 4,
       .D = 2,
       .Dv = 3,
       .bias = BIAS_FULL},
      {.name = "bias_b1_masked_row",
       .B = 2,
       .Hq = 2,
       .Hk = 2,
       .Tq = 3,
       .Tk = 4,
       .D = 2,
       .Dv = 2,
       .causal = 1,
       .bias = BIAS_B1,
       .masked_row = 2},
      {.name = "bias_h1",
       .B = 2,
       .Hq = 2,
       .Hk = 2,
       .Tq = 3,
       .Tk = 3,
       .D = 2,
       .Dv = 2,
       .bias = BIAS_H1},
      {.name = "bias_2d_lengths",
       .B = 2,
       .Hq = 2,
       .Hk = 2,
       .Tq = 4,
       .Tk = 5,
       .D = 2,
       .Dv = 2,
       .causal = 1,
       .bias = BIAS_2D,
       .lengths = LEN_QK},
      {.name = "keypad",
       .B = 2,
       .Hq = 2,
       .Hk = 2,
       .Tq = 3,
       .Tk = 4,
       .D = 2,
       .Dv = 2,
       .bias = BIAS_KEYPAD,
       .lengths = LEN_K},
      {.name = "dropout",
       .B = 1,
       .Hq = 2,
       .Hk = 1,
       .Tq = 4,
       .Tk = 5,
       .D = 3,
       .Dv = 2,
       .causal = 1,
       .bias = BIAS_H1,
       .dropout = 0.3},
  };
  int n = 0;
  for (int ci = 0; ci < N_OF(cases); ci++) {
    const sdpa_case *c = &cases[ci];
    snprintf(t_case_buf, sizeof t_case_buf, "fd %s", c->name);
    t_case = t_case_buf;
    sdpa_io io;
    sdpa_gen(c, DLK_F64, 0, &io);
    sdpa_res r;
    dlk_status s = sdpa_run(ctx, c, &io, 1, &r);
    CHECK(s == DLK_OK, "backward: %s", dlk_context_last_error(ctx));
    if (s == DLK_OK) {
      fd_check(ctx, c, &io, "q", io.q, n_q(c), r.dq);
      fd_check(ctx, c, &io, "k", io.k, n_k(c), r.dk);
      fd_check(ctx, c, &io, "v", io.v, n_v(c), r.dv);
      if (c->bias) fd_check(ctx, c, &io, "bias", io.bias, n_bias(&io), r.dbias);
      n++;
    }
    sdpa_res_free(&r);
    sdpa_io_free(&io);
  }
  printf("finite differences: %d SDPA backward cases in f64\n", n);
}

/* ====================================================================================== */
/* 3. The sweep (tests/sweep.h) and 4. properties                                        */
/* ====================================================================================== */

/* The issue's shapes: T in {1, 7, 63, 129, 1000}, D in {32, 64, 80, 128, 256}, Dv != D,
   GQA ratios 1, 4, 8, causal with Tq != Tk both ways, lengths that hide all but one key,
   a fully masked row, bias with broadcast dims and its gradient, dropout, strided layouts.
   .tags.big marks the cases too large for the CPU run (the f64 reference loops): they run
   only against a reference context (the GPU run). */
// clang-format off
static const sdpa_case SWEEP[] = {
    /* the first three are the quick subset */
    {.name = "t7", .B = 2, .Hq = 2, .Hk = 2, .Tq = 7, .Tk = 7, .D = 32, .Dv = 32},
    {.name = "lengths_k_small", .B = 2, .Hq = 2, .Hk = 1, .Tq = 7, .Tk = 7, .D = 32, .Dv = 32, .causal = 1, .lengths = LEN_QK},
    {.name = "bias_small_masked_row", .B = 2, .Hq = 2, .Hk = 2, .Tq = 7, .Tk = 7, .D = 32, .Dv = 32, .causal = 1, .bias = BIAS_FULL, .masked_row = 3},
    {.name = "one", .B = 1, .Hq = 1, .Hk = 1, .Tq = 1, .Tk = 1, .D = 32, .Dv = 32},
    {.name = "t7_causal_dv80", .B = 2, .Hq = 2, .Hk = 2, .Tq = 7, .Tk = 7, .D = 32, .Dv = 80, .causal = 1},
    {.name = "q7_k63_causal_gqa4", .B = 1, .Hq = 4, .Hk = 1, .Tq = 7, .Tk = 63, .D = 64, .Dv = 64, .causal = 1},
    {.name = "q63_k7_causal", .B = 1, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 7, .D = 64, .Dv = 32, .causal = 1},
    {.name = "dropout_small_causal", .B = 1, .Hq = 2, .Hk = 1, .Tq = 7, .Tk = 9, .D = 32, .Dv = 32, .causal = 1, .bias = BIAS_H1, .dropout = 0.3},
    {.name = "layout_bthd_small", .B = 1, .Hq = 2, .Hk = 1, .Tq = 7, .Tk = 9, .D = 32, .Dv = 32, .bias = BIAS_FULL, .layout = L_BTHD},
    {.name = "layout_misaligned_small", .B = 1, .Hq = 2, .Hk = 2, .Tq = 5, .Tk = 7, .D = 32, .Dv = 32, .causal = 1, .bias = BIAS_2D, .layout = L_PADDED},
    {.name = "layout_transposed_small", .B = 2, .Hq = 2, .Hk = 1, .Tq = 5, .Tk = 9, .D = 16, .Dv = 8, .causal = 1, .lengths = LEN_K, .layout = L_TRANSPOSED},
    /* .big: only against a reference context (the GPU run) */
    {.tags.big = true, .name = "t63_d80", .B = 1, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 63, .D = 80, .Dv = 80},
    {.tags.big = true, .name = "t63_gqa8_causal", .B = 1, .Hq = 8, .Hk = 1, .Tq = 63, .Tk = 63, .D = 64, .Dv = 64, .causal = 1},
    {.tags.big = true, .name = "t129_d128", .B = 1, .Hq = 2, .Hk = 2, .Tq = 129, .Tk = 129, .D = 128, .Dv = 128},
    {.tags.big = true, .name = "t129_d128_causal", .B = 2, .Hq = 2, .Hk = 1, .Tq = 129, .Tk = 129, .D = 128, .Dv = 128, .causal = 1},
    {.tags.big = true, .name = "q129_k63_d256", .B = 1, .Hq = 2, .Hk = 2, .Tq = 129, .Tk = 63, .D = 256, .Dv = 256},
    {.tags.big = true, .name = "q63_k129_d256_causal", .B = 1, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 129, .D = 256, .Dv = 128, .causal = 1},
    {.tags.big = true, .name = "d64_dv128", .B = 1, .Hq = 4, .Hk = 2, .Tq = 65, .Tk = 127, .D = 64, .Dv = 128},
    {.tags.big = true, .name = "d32_dv80_scale", .B = 1, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 63, .D = 32, .Dv = 80, .scale = 0.3},
    {.tags.big = true, .name = "lengths", .B = 2, .Hq = 4, .Hk = 2, .Tq = 63, .Tk = 129, .D = 64, .Dv = 64, .lengths = LEN_QK},
    {.tags.big = true, .name = "lengths_causal", .B = 2, .Hq = 2, .Hk = 2, .Tq = 129, .Tk = 63, .D = 64, .Dv = 64, .causal = 1, .lengths = LEN_QK},
    {.tags.big = true, .name = "bias_full", .B = 2, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 65, .D = 64, .Dv = 64, .bias = BIAS_FULL},
    {.tags.big = true, .name = "bias_b1_causal", .B = 2, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 65, .D = 64, .Dv = 64, .causal = 1, .bias = BIAS_B1},
    {.tags.big = true, .name = "bias_h1_gqa4", .B = 2, .Hq = 4, .Hk = 1, .Tq = 33, .Tk = 65, .D = 64, .Dv = 64, .bias = BIAS_H1},
    {.tags.big = true, .name = "bias_2d_masked_row", .B = 2, .Hq = 2, .Hk = 2, .Tq = 33, .Tk = 33, .D = 64, .Dv = 64, .bias = BIAS_2D, .masked_row = 5},
    {.tags.big = true, .name = "keypad_lengths", .B = 2, .Hq = 2, .Hk = 2, .Tq = 33, .Tk = 65, .D = 64, .Dv = 64, .bias = BIAS_KEYPAD, .lengths = LEN_K},
    {.tags.big = true, .name = "dropout", .B = 2, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 63, .D = 64, .Dv = 64, .dropout = 0.2},
    {.tags.big = true, .name = "layout_bthd", .B = 2, .Hq = 4, .Hk = 2, .Tq = 63, .Tk = 65, .D = 64, .Dv = 64, .causal = 1, .layout = L_BTHD},
    {.tags.big = true, .name = "layout_bthd_d128", .B = 1, .Hq = 2, .Hk = 2, .Tq = 63, .Tk = 65, .D = 128, .Dv = 128, .causal = 1, .layout = L_BTHD},
    {.tags.big = true, .name = "layout_misaligned", .B = 1, .Hq = 2, .Hk = 2, .Tq = 33, .Tk = 31, .D = 64, .Dv = 64, .layout = L_PADDED},
    {.tags.big = true, .name = "t1000_causal", .B = 1, .Hq = 2, .Hk = 1, .Tq = 1000, .Tk = 1000, .D = 64, .Dv = 64, .causal = 1},
    {.tags.big = true, .name = "q129_k1000_d128", .B = 1, .Hq = 4, .Hk = 4, .Tq = 129, .Tk = 1000, .D = 128, .Dv = 128, .lengths = LEN_QK},
    {.tags.big = true, .name = "q1000_k1_causal", .B = 1, .Hq = 2, .Hk = 2, .Tq = 1000, .Tk = 1, .D = 32, .Dv = 32, .causal = 1},
};
// clang-format on

/* ---- the sweep rows ---- */

/* The arrays of a case in a sweep_set, in this order: q, k, v, dout, [bias], [q_lengths
   (i32)], [k_lengths (i64)], and for the sdpa_bwd row out, lse. io_of points into them. */
static void io_to_set(const sdpa_case *c, const sdpa_io *io, sweep_set *in) {
  memcpy(sweep_add(in, io->dt, n_q(c)), io->q, (size_t)n_q(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, n_k(c)), io->k, (size_t)n_k(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, n_v(c)), io->v, (size_t)n_v(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, n_o(c)), io->dout, (size_t)n_o(c) * sizeof(double));
  if (io->bias)
    memcpy(sweep_add(in, io->dt, n_bias(io)), io->bias, (size_t)n_bias(io) * sizeof(double));
  if (io->qlen) memcpy(sweep_add(in, DLK_I32, c->B), io->qlen, (size_t)c->B * sizeof(double));
  if (io->klen) memcpy(sweep_add(in, DLK_I64, c->B), io->klen, (size_t)c->B * sizeof(double));
}

static sdpa_io io_of(const sdpa_case *c, dlk_dtype dt, const sweep_set *in) {
  sdpa_io io;
  memset(&io, 0, sizeof io);
  io.dt = dt;
  int k = 0;
  io.q = in->a[k++].v, io.k = in->a[k++].v, io.v = in->a[k++].v, io.dout = in->a[k++].v;
  bias_shape(c, &io.bias_nd, io.bias_shape);
  if (c->bias) io.bias = in->a[k++].v;
  if (c->lengths == LEN_QK) io.qlen = in->a[k++].v;
  if (c->lengths) io.klen = in->a[k++].v;
  if (k + 2 <= in->n) io.out = in->a[k++].v, io.lse = in->a[k++].v;
  return io;
}

static void gen_fwd(const void *cv, dlk_dtype dt, sweep_set *in) {
  sdpa_io io;
  sdpa_gen(cv, dt, 0, &io);
  io_to_set(cv, &io, in);
  sdpa_io_free(&io);
}

/* The backward's inputs add the forward's out (rounded to dt) and lse (f32 / f64), from
   the naive computation: every variant gets the same, as a training step would. */
static void gen_bwd(const void *cv, dlk_dtype dt, sweep_set *in) {
  const sdpa_case *c = cv;
  gen_fwd(c, dt, in);
  sdpa_io io = io_of(c, dt, in);
  sdpa_res r;
  naive_sdpa(c, &io, 0, &r);
  double *out = sweep_add(in, dt, n_o(c)), *lse = sweep_add(in, stat_dt(dt), n_l(c));
  for (int64_t i = 0; i < n_o(c); i++) out[i] = round_to(dt, r.out[i]);
  for (int64_t i = 0; i < n_l(c); i++) lse[i] = round_to(stat_dt(dt), r.lse[i]);
  sdpa_res_free(&r);
}

static dlk_status run_fwd_row(dlk_context *ctx, const void *cv, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const sdpa_io io = io_of(cv, dt, in);
  return run_forward(ctx, cv, &io, out);
}

static dlk_status run_bwd_row(dlk_context *ctx, const void *cv, dlk_dtype dt, const sweep_set *in,
                              sweep_set *out) {
  const sdpa_io io = io_of(cv, dt, in);
  return run_backward(ctx, cv, &io, out);
}

static void naive_fwd_row(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const sdpa_case *c = cv;
  const sdpa_io io = io_of(c, dt, in);
  sdpa_res r;
  naive_sdpa(c, &io, 0, &r);
  memcpy(sweep_add(ref, dt, n_o(c)), r.out, (size_t)n_o(c) * sizeof(double));
  memcpy(sweep_add(ref, stat_dt(dt), n_l(c)), r.lse, (size_t)n_l(c) * sizeof(double));
  sdpa_res_free(&r);
}

/* The naive backward recomputes out exactly (its delta is the exact sum, as the CPU
   reference's); the out of the inputs is what the fast variants take delta from. */
static void naive_bwd_row(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const sdpa_case *c = cv;
  const sdpa_io io = io_of(c, dt, in);
  sdpa_res r;
  naive_sdpa(c, &io, 1, &r);
  memcpy(sweep_add(ref, dt, n_q(c)), r.dq, (size_t)n_q(c) * sizeof(double));
  memcpy(sweep_add(ref, dt, n_k(c)), r.dk, (size_t)n_k(c) * sizeof(double));
  memcpy(sweep_add(ref, dt, n_v(c)), r.dv, (size_t)n_v(c) * sizeof(double));
  if (c->bias)
    memcpy(sweep_add(ref, dt, n_bias(&io)), r.dbias, (size_t)n_bias(&io) * sizeof(double));
  sdpa_res_free(&r);
}

/* No NaN in any output (fully masked rows and padding must not make one). */
static int no_nan(const char *what, const sweep_set *got) {
  int ok = 1;
  for (int i = 0; i < got->n; i++) {
    int64_t nan = 0;
    for (int64_t e = 0; e < got->a[i].n; e++) nan += isnan(got->a[i].v[e]);
    CHECK(nan == 0, "%s: output %d has %lld NaN", what, i, (long long)nan);
    ok = ok && nan == 0;
  }
  return ok;
}

/* out at its dtype's tolerance; lse (f32 sums of D products of 16-bit inputs) at 1e-4 for
   f16/bf16 inputs, 1e-5 for f32, 1e-12 for f64. */
static int compare_fwd(const char *what, const void *cv, int variant, const sweep_set *got,
                       const sweep_set *ref, int tf32) {
  (void)cv, (void)variant, (void)tf32;
  CHECK(got->n == 2 && ref->n == 2, "%s: %d outputs, expected out and lse", what, got->n);
  if (got->n != 2 || ref->n != 2) return 0;
  double atol, rtol;
  t_tolerance(ref->a[0].dt, 0, &atol, &rtol);
  char w[640];
  snprintf(w, sizeof w, "%s: out", what);
  int ok = close_scaled(w, got->a[0].v, ref->a[0].v, ref->a[0].n, atol, rtol, 0);
  const dlk_dtype in_dt = ref->a[0].dt;
  const double la = in_dt == DLK_F64 ? 1e-12 : in_dt == DLK_F32 ? 1e-5 : 1e-4;
  snprintf(w, sizeof w, "%s: lse", what);
  ok = t_close(w, got->a[1].v, ref->a[1].v, ref->a[1].n, la, la) && ok;
  return no_nan(what, got) && ok;
}

/* Gradients with the absolute tolerance scaled by the largest reference value. */
static int compare_bwd(const char *what, const void *cv, int variant, const sweep_set *got,
                       const sweep_set *ref, int tf32) {
  (void)cv, (void)variant, (void)tf32;
  static const char *const names[4] = {"dq", "dk", "dv", "dbias"};
  CHECK(got->n == ref->n, "%s: %d outputs, reference has %d", what, got->n, ref->n);
  if (got->n != ref->n) return 0;
  int ok = 1;
  for (int i = 0; i < ref->n && i < 4; i++) {
    double atol, rtol;
    t_tolerance(ref->a[i].dt, 0, &atol, &rtol);
    char w[640];
    snprintf(w, sizeof w, "%s: %s", what, names[i]);
    ok = close_scaled(w, got->a[i].v, ref->a[i].v, ref->a[i].n, atol, rtol, 1) && ok;
  }
  return no_nan(what, got) && ok;
}

static const sweep_op SDPA_ROWS[] = {
    {.label = "sdpa_fwd",
     .op = "sdpa_fwd",
     SWEEP_CASES(SWEEP),
     .gen = gen_fwd,
     .run = run_fwd_row,
     .naive = naive_fwd_row,
     .tunable = 1,
     .compare = compare_fwd},
    {.label = "sdpa_bwd",
     .op = "sdpa_bwd",
     SWEEP_CASES(SWEEP),
     .gen = gen_bwd,
     .run = run_bwd_row,
     .naive = naive_bwd_row,
     .tunable = 1,
     .compare = compare_bwd},
};

/* ---- properties ---- */

/* Fully masked rows (causal Tq > Tk, rows past q_lengths, a bias row of -inf) give out 0
   and lse -inf exactly, zero gradients, no NaN; rows past the lengths may hold NaN: they
   are never read. Each variant of the context's device, forced. */
static void test_masked_rows(dlk_context *ctx) {
  static const sdpa_case c = {.name = "masked",
                              .B = 2,
                              .Hq = 2,
                              .Hk = 1,
                              .Tq = 9,
                              .Tk = 5,
                              .D = 32,
                              .Dv = 16,
                              .causal = 1,
                              .bias = BIAS_FULL,
                              .lengths = LEN_QK,
                              .masked_row = 2};
  sdpa_io io;
  sdpa_gen(&c, DLK_F32, 1, &io);
  sdpa_res ref;
  naive_sdpa(&c, &io, 1, &ref);
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  dlk_variant_info fv[32];
  int nf = 0;
  CHECK_OK(ctx, dlk_op_variants(ctx, "sdpa_fwd", fv, 32, &nf));
  for (int vi = 0; vi < nf && vi < 32; vi++) {
    if (fv[vi].device != dev.type || fv[vi].id >= 10) continue; /* the native variants */
    snprintf(t_case_buf, sizeof t_case_buf, "masked rows, NaN padding: variant %s", fv[vi].name);
    t_case = t_case_buf;
    CHECK_OK(ctx, dlk_force_variant(ctx, "sdpa_fwd", fv[vi].id));
    dlk_status fs = dlk_force_variant(ctx, "sdpa_bwd", fv[vi].id);
    if (fs != DLK_OK) CHECK_OK(ctx, dlk_force_variant(ctx, "sdpa_bwd", -1));
    sdpa_res got;
    dlk_status s = sdpa_run(ctx, &c, &io, 1, &got);
    if (s == DLK_ERR_NOT_SUPPORTED) {
      printf("  skipped: %s: %s\n", t_case_buf, dlk_context_last_error(ctx));
    } else {
      CHECK(s == DLK_OK, "%s", dlk_context_last_error(ctx));
      if (s == DLK_OK) {
        sdpa_no_nan(t_case_buf, &c, &io, &got);
        sdpa_compare(t_case_buf, &c, &io, &got, &ref);
        /* exact zeros and -inf on the masked rows: batch 1 rows >= ql, and with causal and
           Tq > Tk rows i < ql - kl see nothing */
        int64_t wrong = 0;
        for (int64_t b = 0; b < c.B; b++)
          for (int64_t h = 0; h < c.Hq; h++)
            for (int64_t i = 0; i < c.Tq; i++) {
              const int64_t ql = (int64_t)io.qlen[b], kl = (int64_t)io.klen[b];
              const int masked = i >= ql || i + kl - ql < 0;
              if (!masked) continue;
              const int64_t row = (b * c.Hq + h) * c.Tq + i;
              wrong += !(got.lse[row] == -INFINITY);
              for (int64_t d = 0; d < c.Dv; d++) wrong += got.out[row * c.Dv + d] != 0.0;
              for (int64_t d = 0; d < c.D; d++) wrong += got.dq[row * c.D + d] != 0.0;
            }
        CHECK(wrong == 0, "%lld values of fully masked rows are not exactly 0 / -inf",
              (long long)wrong);
      }
    }
    sdpa_res_free(&got);
  }
  CHECK_OK(ctx, dlk_force_variant(ctx, "sdpa_fwd", -1));
  CHECK_OK(ctx, dlk_force_variant(ctx, "sdpa_bwd", -1));
  sdpa_res_free(&ref);
  sdpa_io_free(&io);
}

/* ====================================================================================== */
/* 5. Bad input                                                                           */
/* ====================================================================================== */

/* A valid small problem on the CPU: q [2, 4, 4, 8], k [2, 2, 5, 8], v [2, 2, 5, 6],
   bias [1, 4, 4, 5], lengths [2]; every output pre-filled with 0xFF bytes. */
typedef struct bad_setup {
  float q[256], k[160], v[120], bias[80], out[192], lse[32], dout[192], dq[256], dk[160], dv[120],
      dbias[80];
  int32_t ql[2];
  int64_t kl[2];
  dlk_tensor tq, tk, tv, tbias, tql, tkl, tout, tlse, tdout, tdq, tdk, tdv, tdbias;
  dlk_sdpa_params p;
} bad_setup;

static void bad_init(bad_setup *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < 256; i++) s->q[i] = (float)((i * 37 % 17) - 8) / 8.0f;
  for (int i = 0; i < 160; i++) s->k[i] = (float)((i * 29 % 13) - 6) / 6.0f;
  for (int i = 0; i < 120; i++) s->v[i] = (float)((i * 31 % 11) - 5) / 5.0f;
  for (int i = 0; i < 80; i++) s->bias[i] = (float)(i % 7) / 7.0f;
  for (int i = 0; i < 192; i++) s->dout[i] = (float)((i * 7 % 9) - 4) / 4.0f;
  s->ql[0] = 4, s->ql[1] = 2;
  s->kl[0] = 5, s->kl[1] = 3;
  memset(s->out, 0xFF, sizeof s->out), memset(s->lse, 0xFF, sizeof s->lse);
  memset(s->dq, 0xFF, sizeof s->dq), memset(s->dk, 0xFF, sizeof s->dk),
      memset(s->dv, 0xFF, sizeof s->dv);
  memset(s->dbias, 0xFF, sizeof s->dbias);
  const int64_t sq[4] = {2, 4, 4, 8}, sk[4] = {2, 2, 5, 8}, sv[4] = {2, 2, 5, 6},
                sb[4] = {1, 4, 4, 5}, so[4] = {2, 4, 4, 6}, sl[3] = {2, 4, 4}, sn[1] = {2};
  s->tq = host_tensor(s->q, DLK_F32, 4, sq);
  s->tk = host_tensor(s->k, DLK_F32, 4, sk);
  s->tv = host_tensor(s->v, DLK_F32, 4, sv);
  s->tbias = host_tensor(s->bias, DLK_F32, 4, sb);
  s->tql = host_tensor(s->ql, DLK_I32, 1, sn);
  s->tkl = host_tensor(s->kl, DLK_I64, 1, sn);
  s->tout = host_tensor(s->out, DLK_F32, 4, so);
  s->tlse = host_tensor(s->lse, DLK_F32, 3, sl);
  s->tdout = host_tensor(s->dout, DLK_F32, 4, so);
  s->tdq = host_tensor(s->dq, DLK_F32, 4, sq);
  s->tdk = host_tensor(s->dk, DLK_F32, 4, sk);
  s->tdv = host_tensor(s->dv, DLK_F32, 4, sv);
  s->tdbias = host_tensor(s->dbias, DLK_F32, 4, sb);
  s->p.causal = 1;
}

/* Every output byte still 0xFF. */
static int bad_untouched(const bad_setup *s) {
  const struct {
    const void *p;
    size_t n;
  } o[6] = {{s->out, sizeof s->out}, {s->lse, sizeof s->lse}, {s->dq, sizeof s->dq},
            {s->dk, sizeof s->dk},   {s->dv, sizeof s->dv},   {s->dbias, sizeof s->dbias}};
  for (int i = 0; i < 6; i++)
    for (size_t b = 0; b < o[i].n; b++)
      if (((const unsigned char *)o[i].p)[b] != 0xFF) return 0;
  return 1;
}

/* ---- hostile shapes (fuzz_api): keys with no features ---- */

/* D = Dv = 0: q, k and v hold no element, so nothing bounds Tk, and every variant loops
   over the keys of each row (lse is the one output: log of the count of visible keys).
   Refused before anything is written, also for a few keys, in both directions. */
static void test_hostile(dlk_context *ctx) {
  t_case = "hostile: D = Dv = 0";
  t_watchdog_arm("test_attention: a call on hostile shapes");
  static float buf[16], lse[4], dout[4], dbias[4];
  const int64_t tks[2] = {(int64_t)1 << 40, 3};
  for (int i = 0; i < 2; i++) {
    const int64_t sq[4] = {1, 1, 2, 0}, sk[4] = {1, 1, tks[i], 0}, sl[3] = {1, 1, 2}, sb[4] = {1, 1, 2, 1};
    dlk_tensor q = host_tensor(buf, DLK_F32, 4, sq), k = host_tensor(buf, DLK_F32, 4, sk), v = k, out = q;
    dlk_tensor l = host_tensor(lse, DLK_F32, 3, sl), bias = host_tensor(buf, DLK_F32, 4, sb);
    dlk_tensor db = host_tensor(dbias, DLK_F32, 4, sb), dy = host_tensor(dout, DLK_F32, 4, sq);
    for (int j = 0; j < 4; j++) lse[j] = 7.0f, dbias[j] = 7.0f;
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_sdpa_forward(ctx, NULL, &q, &k, &v, NULL, NULL, NULL, &out, &l));
    CHECK(strstr(dlk_context_last_error(ctx), "D = 0") && strstr(dlk_context_last_error(ctx), "Dv = 0"), "%s",
          dlk_context_last_error(ctx));
    CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH,
                 dlk_sdpa_backward(ctx, NULL, &q, &k, &v, &bias, NULL, NULL, &out, &l, &dy, NULL, NULL, NULL, &db));
    CHECK(lse[0] == 7.0f && lse[1] == 7.0f && dbias[0] == 7.0f, "a refused call wrote");
  }
  t_watchdog_disarm();
}

static void test_bad_input(dlk_context *ctx) {
  enum { NBAD = 30 };
  int n = 0;
  for (int id = 0; id < NBAD; id++) {
    bad_setup *s = malloc(sizeof *s);
    bad_init(s);
    dlk_status want = DLK_ERR_SHAPE_MISMATCH;
    const char *name = "", *msg = "", *fn = "sdpa_forward";
    int bwd = 0, use_bias = 1;
    const dlk_sdpa_params *pp = &s->p;
    const dlk_tensor *lse_in = &s->tlse;
    dlk_tensor *dbias = &s->tdbias;
    float other[256];
    memset(other, 0, sizeof other);
    switch (id) {
      case 0:
        name = "Hq not a multiple of Hk";
        s->tq.shape[1] = 3;
        msg = "heads";
        break;
      case 1:
        name = "D of k differs from q";
        s->tk.shape[3] = 7;
        msg = "k has 7 in dim 3 (D)";
        break;
      case 2:
        name = "v with another Tk";
        s->tv.shape[2] = 4;
        msg = "v has 4 in dim 2 (Tk)";
        break;
      case 3:
        name = "bias of the wrong Tk";
        s->tbias.shape[3] = 6;
        msg = "bias has 6";
        break;
      case 4:
        name = "bias with 2 heads (Hq is 4)";
        s->tbias.shape[1] = 2;
        msg = "bias has 2 in dim 1 (Hq)";
        break;
      case 5:
        name = "bias with 5 dims";
        s->tbias.ndim = 5;
        s->tbias.shape[4] = 1;
        s->tbias.strides[4] = 1;
        msg = "bias has 5 dims";
        break;
      case 6:
        name = "q_lengths 0";
        s->ql[1] = 0;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "q_lengths[1] = 0";
        break;
      case 7:
        name = "k_lengths > Tk";
        s->kl[0] = 6;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "k_lengths[0] = 6";
        break;
      case 8:
        name = "q_lengths > Tq (backward)";
        s->ql[0] = 5;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "q_lengths[0] = 5";
        bwd = 1;
        fn = "sdpa_backward";
        break;
      case 9:
        name = "lengths f32";
        s->tkl.dtype = DLK_F32;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "k_lengths is f32";
        break;
      case 10:
        name = "lengths of 3";
        s->tql.shape[0] = 3;
        s->tql.data = other;
        msg = "q_lengths";
        break;
      case 11:
        name = "NaN scale";
        s->p.scale = NAN;
        want = DLK_ERR_NOT_FINITE;
        msg = "scale";
        break;
      case 12:
        name = "dropout 1";
        s->p.dropout = 1.0;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "dropout";
        break;
      case 13:
        name = "dropout NaN";
        s->p.dropout = NAN;
        want = DLK_ERR_NOT_FINITE;
        msg = "dropout";
        break;
      case 14:
        name = "k on another device";
        s->tk.device = (dlk_device){DLK_CUDA, 0};
        want = DLK_ERR_DEVICE_MISMATCH;
        msg = "k is on cuda";
        break;
      case 15:
        name = "k f16, q f32";
        s->tk.dtype = DLK_F16;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "k is f16";
        break;
      case 16:
        name = "q 3-D";
        s->tq.ndim = 3;
        msg = "q has 3 dims";
        break;
      case 17:
        name = "out of the wrong Dv";
        s->tout.shape[3] = 8;
        msg = "out has 8 in dim 3 (Dv)";
        break;
      case 18:
        name = "lse f16";
        s->tlse.dtype = DLK_F16;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "lse is f16";
        break;
      case 19:
        name = "lse [2, 4]";
        s->tlse.ndim = 2;
        msg = "lse has 2 dims";
        break;
      case 20:
        name = "out overlaps q";
        s->tout.data = s->q;
        s->tout.shape[3] = 6;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "out and q overlap";
        break;
      case 21:
        name = "out with overlapping elements";
        s->tout.strides[2] = 0;
        want = DLK_ERR_LAYOUT;
        msg = "output out has overlapping";
        break;
      case 22:
        name = "NULL out";
        want = DLK_ERR_NULL_POINTER;
        msg = "out is NULL";
        break;
      case 23:
        name = "dbias without bias";
        use_bias = 0;
        bwd = 1;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "dbias is given but bias is NULL";
        fn = "sdpa_backward";
        break;
      case 24:
        name = "dbias of another shape";
        s->tdbias.shape[0] = 2;
        s->tdbias.strides[0] = 0;
        bwd = 1;
        msg = "dbias has 2 in dim 0";
        fn = "sdpa_backward";
        break;
      case 25:
        name = "NULL lse (backward)";
        lse_in = NULL;
        bwd = 1;
        want = DLK_ERR_NULL_POINTER;
        msg = "lse is NULL";
        fn = "sdpa_backward";
        break;
      case 26:
        name = "dq of k's shape";
        s->tdq.shape[1] = 2;
        s->tdq.shape[2] = 5;
        bwd = 1;
        msg = "dq has";
        fn = "sdpa_backward";
        break;
      case 27:
        name = "dv overlaps dk";
        s->tdv.data = s->dk;
        bwd = 1;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "dv and dk overlap";
        fn = "sdpa_backward";
        break;
      case 28:
        name = "dout f64";
        s->tdout.dtype = DLK_F64;
        bwd = 1;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "dout is f64";
        fn = "sdpa_backward";
        break;
      case 29:
        name = "negative Hk via empty k heads";
        s->tk.shape[1] = 0;
        s->tv.shape[1] = 0;
        msg = "not a multiple";
        break;
    }
    snprintf(t_case_buf, sizeof t_case_buf, "bad input: %s", name);
    t_case = t_case_buf;
    dlk_status st;
    if (!bwd) {
      st = dlk_sdpa_forward(ctx, pp, &s->tq, &s->tk, &s->tv, use_bias ? &s->tbias : NULL, &s->tql,
                            &s->tkl, id == 22 ? NULL : &s->tout, &s->tlse);
    } else {
      st =
          dlk_sdpa_backward(ctx, pp, &s->tq, &s->tk, &s->tv, use_bias ? &s->tbias : NULL, &s->tql,
                            &s->tkl, &s->tout, lse_in, &s->tdout, &s->tdq, &s->tdk, &s->tdv, dbias);
    }
    const char *err = dlk_context_last_error(ctx);
    CHECK(st == want, "got %s, expected %s: %s", dlk_status_string(st), dlk_status_string(want),
          err);
    CHECK(strstr(err, fn) != NULL, "message does not name %s: %s", fn, err);
    CHECK(strstr(err, msg) != NULL, "message does not say \"%s\": %s", msg, err);
    CHECK(bad_untouched(s), "an output was written by the refused call");
    n++;
    free(s);
  }
  /* the context still works afterwards */
  t_case = "bad input: afterwards";
  bad_setup *s = malloc(sizeof *s);
  bad_init(s);
  CHECK_OK(ctx, dlk_sdpa_forward(ctx, &s->p, &s->tq, &s->tk, &s->tv, &s->tbias, &s->tql, &s->tkl,
                                 &s->tout, &s->tlse));
  CHECK_OK(ctx,
           dlk_sdpa_backward(ctx, &s->p, &s->tq, &s->tk, &s->tv, &s->tbias, &s->tql, &s->tkl,
                             &s->tout, &s->tlse, &s->tdout, &s->tdq, &s->tdk, &s->tdv, &s->tdbias));
  free(s);
  printf("bad input: %d SDPA cases refused with the right status and message\n", n);
}

/* ====================================================================================== */
/* 6. Explain                                                                             */
/* ====================================================================================== */

/* Explain mode on the context's device: the call checks its arguments and runs nothing;
   the report lists every variant of the op with a verdict (on a CUDA context the CPU
   row refused with its reason) and the AUTO line. */
static void test_explain(dlk_context *ctx) {
  t_case = "explain";
  static const sdpa_case c = {.name = "explain",
                              .B = 2,
                              .Hq = 4,
                              .Hk = 2,
                              .Tq = 33,
                              .Tk = 47,
                              .D = 64,
                              .Dv = 64,
                              .causal = 1,
                              .bias = BIAS_H1,
                              .lengths = LEN_QK};
  sdpa_io io;
  sdpa_gen(&c, DLK_BF16, 0, &io);
  const int64_t sq[4] = {c.B, c.Hq, c.Tq, c.D}, sk[4] = {c.B, c.Hk, c.Tk, c.D},
                so[4] = {c.B, c.Hq, c.Tq, c.Dv}, sl[3] = {c.B, c.Hq, c.Tq},
                sb[4] = {c.B, 1, c.Tq, c.Tk}, sn[1] = {c.B};
  double *lse0 = alloc_d(n_l(&c));
  sweep_rig r = {.ctx = ctx};
  sweep_tensor *q = sweep_in(&r, DLK_BF16, 4, sq, SW_CONTIG, io.q),
               *k = sweep_in(&r, DLK_BF16, 4, sk, SW_CONTIG, io.k);
  sweep_tensor *v = sweep_in(&r, DLK_BF16, 4, sk, SW_CONTIG, io.v),
               *bias = sweep_in(&r, DLK_BF16, 4, sb, SW_CONTIG, io.bias);
  sweep_tensor *ql = sweep_in(&r, DLK_I32, 1, sn, SW_CONTIG, io.qlen),
               *dout = sweep_in(&r, DLK_BF16, 4, so, SW_CONTIG, io.dout);
  sweep_tensor *lse = sweep_in(&r, DLK_F32, 3, sl, SW_CONTIG, lse0);
  sweep_tensor *out = sweep_out(&r, DLK_BF16, 4, so, SW_CONTIG),
               *dq = sweep_out(&r, DLK_BF16, 4, sq, SW_CONTIG);
  sweep_tensor *dk = sweep_out(&r, DLK_BF16, 4, sk, SW_CONTIG),
               *dv = sweep_out(&r, DLK_BF16, 4, sk, SW_CONTIG);
  sweep_tensor *dbias = sweep_out(&r, DLK_BF16, 4, sb, SW_CONTIG);
  dlk_status s = DLK_OK;
  if (!r.failed) {
    dlk_sdpa_params p;
    case_params(&c, 1, &p);
    for (int dir = 0; dir < 2; dir++) {
      CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
      if (dir == 0)
        s = dlk_sdpa_forward(ctx, &p, &q->v, &k->v, &v->v, &bias->v, &ql->v, NULL, &out->v,
                             &lse->v);
      else
        s = dlk_sdpa_backward(ctx, &p, &q->v, &k->v, &v->v, &bias->v, &ql->v, NULL, &out->v,
                              &lse->v, &dout->v, &dq->v, &dk->v, &dv->v, &dbias->v);
      CHECK(s == DLK_OK, "explain call: %s", dlk_context_last_error(ctx));
      const char *report = NULL;
      CHECK_OK(ctx, dlk_explain_report(ctx, &report)); /* valid until explain mode changes */
      const char *op = dir ? "sdpa_bwd" : "sdpa_fwd";
      printf("explain (%s):\n%s", op, report ? report : "(none)\n");
      CHECK(report && strstr(report, op), "report names %s", op);
      dlk_variant_info vs[32];
      int nv = 0;
      CHECK_OK(ctx, dlk_op_variants(ctx, op, vs, 32, &nv));
      for (int i = 0; i < nv && i < 32; i++)
        CHECK(report && strstr(report, vs[i].name), "%s listed", vs[i].name);
      CHECK(report && strstr(report, "AUTO would"), "AUTO line");
      CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
    }
  }
  /* nothing ran: every output still holds the fill (+inf) */
  sweep_set got = {.n = 0};
  sweep_end(&r, s, &got);
  for (int i = 0; i < got.n; i++) {
    int64_t written = 0;
    for (int64_t e = 0; e < got.a[i].n; e++) written += got.a[i].v[e] != INFINITY;
    CHECK(written == 0, "explain mode wrote %lld elements of output %d", (long long)written, i);
  }
  sweep_free(&got);
  free(lse0);
  sdpa_io_free(&io);
}

/* ====================================================================================== */
/* Lengths out of range (on a GPU: checked on the device before anything is written)     */
/* ====================================================================================== */

static void test_gpu_bad_lengths(dlk_context *g) {
  dlk_device dev;
  dlk_context_device(g, &dev);
  static const sdpa_case c = {.name = "badlen",
                              .B = 2,
                              .Hq = 2,
                              .Hk = 2,
                              .Tq = 7,
                              .Tk = 9,
                              .D = 32,
                              .Dv = 32,
                              .lengths = LEN_QK};
  dlk_variant_info fv[32];
  int nf = 0;
  CHECK_OK(g, dlk_op_variants(g, "sdpa_fwd", fv, 32, &nf));
  for (int which = 0; which < 4; which++) {
    for (int vi = -1; vi < nf && vi < 32; vi++) {
      if (vi >= 0 && fv[vi].device != dev.type) continue;
      snprintf(t_case_buf, sizeof t_case_buf, "bad lengths %d: variant %s", which,
               vi >= 0 ? fv[vi].name : "AUTO");
      t_case = t_case_buf;
      sdpa_io io;
      sdpa_gen(&c, DLK_F16, 0, &io);
      if (which == 0) io.qlen[1] = 0;
      if (which == 1) io.qlen[0] = 8;
      if (which == 2) io.klen[1] = 0;
      if (which == 3) io.klen[0] = 10;
      CHECK_OK(g, dlk_force_variant(g, "sdpa_fwd", vi >= 0 ? fv[vi].id : -1));
      CHECK_OK(g, dlk_force_variant(g, "sdpa_bwd", -1));
      sdpa_res r;
      dlk_status s = sdpa_run(g, &c, &io, 0, &r);
      if (!(s == DLK_ERR_NOT_SUPPORTED && vi >= 0)) {
        CHECK(s == DLK_ERR_OUT_OF_RANGE, "got %s: %s", dlk_status_string(s),
              dlk_context_last_error(g));
        CHECK(strstr(dlk_context_last_error(g), "lengths") != NULL, "message: %s",
              dlk_context_last_error(g));
      }
      sdpa_res_free(&r);
      sdpa_io_free(&io);
    }
  }
  CHECK_OK(g, dlk_force_variant(g, "sdpa_fwd", -1));
}

/* ====================================================================================== */
/* The cuDNN rows' graphs, without a GPU                                                   */
/* ====================================================================================== */

#if DLK_HAVE_CUDNN
#include "attention/attention.h"

/* cuDNN finalizes tensors and operation nodes without a device, so the rows' supports()
   on a CPU context builds each graph and stops at "needs a CUDA context" exactly when every
   node of it was accepted; a node cuDNN refuses (an attribute of ours it does not take)
   would show its own message instead. The reasons of the static limits are checked too. */
typedef struct cg_case {
  const char *name;
  int bwd;
  dlk_dtype dt;
  int64_t B, Hq, Hk, Tq, Tk, D, Dv;
  int causal, bias, lengths, dbias, det;
  double dropout;
  const char *want[2]; /* parts of the reason */
} cg_case;

static dlk_tensor cg_t(dlk_dtype dt, int n, const int64_t *shape) {
  static _Alignas(256) unsigned char arena[256]; /* only the pointers' alignment matters */
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = arena;
  t.dtype = dt;
  t.device.type = DLK_CUDA;
  t.ndim = n;
  for (int k = 0; k < n; k++) t.shape[k] = shape[k];
  dense_strides(n, shape, t.strides);
  return t;
}

static void test_cudnn_graphs(dlk_context *ctx) {
  static const char node_ok[] = "sdpa_fwd/node: needs a CUDA context";
  static const char graph_ok[] = "composed graph: cudnn: sdpa_fwd/graph: needs a CUDA context";
  static const char bgraph_ok[] = "composed graph: cudnn: sdpa_bwd/graph: needs a CUDA context";
  /* clang-format off */
  const cg_case cases[] = {
      {"plain: the node", 0, DLK_BF16, 2, 4, 4, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, {node_ok, ""}},
      {"causal: graph", 0, DLK_BF16, 2, 4, 4, 64, 64, 64, 64, 1, 0, 0, 0, 0, 0,
       {"SDPA node: no causal mask (needs 9.21)", graph_ok}},
      {"causal Tq < Tk, GQA: bottom-right by constants", 0, DLK_F16, 1, 8, 2, 32, 80, 128, 64, 1,
       0, 0, 0, 0, 0, {"no causal mask", graph_ok}},
      {"causal Tq > Tk: padding form", 0, DLK_BF16, 1, 2, 1, 80, 32, 64, 64, 1, 0, 0, 0, 0, 0,
       {"no causal mask", graph_ok}},
      {"causal + lengths", 0, DLK_BF16, 3, 2, 2, 40, 56, 32, 32, 1, 0, 1, 0, 0, 0,
       {"no causal mask", graph_ok}},
      {"bias + lengths", 0, DLK_F16, 2, 4, 2, 33, 47, 64, 128, 0, 1, 1, 0, 0, 0,
       {"SDPA node: no bias (needs 9.21)", graph_ok}},
      {"bias + causal square", 0, DLK_BF16, 2, 2, 2, 64, 64, 64, 64, 1, 2, 0, 0, 0, 0,
       {"no causal mask", graph_ok}},
      {"bias + causal Tq != Tk", 0, DLK_BF16, 2, 2, 2, 32, 64, 64, 64, 1, 1, 0, 0, 0, 0,
       {"no causal mask", "bottom-right causal mask (Tq != Tk or lengths) only without bias"}},
      {"f32", 0, DLK_F32, 1, 2, 2, 16, 16, 64, 64, 0, 0, 0, 0, 0, 0, {"f16/bf16 (this is f32)", ""}},
      {"dropout", 0, DLK_BF16, 1, 2, 2, 16, 16, 64, 64, 0, 0, 0, 0, 0, 0.1, {"Philox", ""}},
      {"D 36", 0, DLK_BF16, 1, 2, 2, 16, 16, 36, 64, 0, 0, 0, 0, 0, 0, {"multiples of 8", ""}},
      {"bwd causal GQA dq accumulator", 1, DLK_BF16, 2, 8, 2, 64, 64, 64, 64, 1, 0, 0, 0, 0, 0,
       {"no causal mask", bgraph_ok}},
      {"bwd causal GQA deterministic", 1, DLK_BF16, 2, 8, 2, 64, 96, 64, 64, 1, 0, 0, 0, 1, 0,
       {"no causal mask", bgraph_ok}},
      {"bwd bias + dbias, causal square", 1, DLK_F16, 2, 4, 4, 64, 64, 128, 128, 1, 2, 0, 1, 0, 0,
       {"no causal mask", bgraph_ok}},
      {"bwd bias + lengths", 1, DLK_BF16, 2, 2, 1, 48, 40, 64, 64, 0, 1, 1, 0, 0, 0,
       {"no bias", bgraph_ok}},
      {"bwd dbias + lengths", 1, DLK_BF16, 2, 2, 2, 48, 40, 64, 64, 0, 1, 1, 1, 0, 0,
       {"dbias with lengths", ""}},
  };
  /* clang-format on */
  char why[1024];
  for (int i = 0; i < N_OF(cases); i++) {
    const cg_case *c = &cases[i];
    snprintf(t_case_buf, sizeof t_case_buf, "cudnn graphs: %s", c->name);
    t_case = t_case_buf;
    CHECK_OK(ctx, dlk_context_set_deterministic(ctx, c->det));
    dlk_sdpa_problem p;
    memset(&p, 0, sizeof p);
    p.B = c->B, p.Hq = c->Hq, p.Hk = c->Hk, p.Tq = c->Tq, p.Tk = c->Tk, p.D = c->D, p.Dv = c->Dv;
    p.scale = 0.125, p.causal = c->causal != 0, p.dropout = c->dropout, p.dtype = c->dt;
    const int64_t qs[4] = {c->B, c->Hq, c->Tq, c->D}, ks[4] = {c->B, c->Hk, c->Tk, c->D};
    const int64_t vs[4] = {c->B, c->Hk, c->Tk, c->Dv}, os[4] = {c->B, c->Hq, c->Tq, c->Dv};
    const int64_t bs[4] = {c->B, c->Hq, c->Tq, c->Tk}, ls[3] = {c->B, c->Hq, c->Tq};
    p.q = cg_t(c->dt, 4, qs), p.k = cg_t(c->dt, 4, ks), p.v = cg_t(c->dt, 4, vs);
    dlk_tensor own; /* bias 1: full; 2: [1, Hq, Tq, Tk] (broadcast over B) */
    if (c->bias) {
      p.has_bias = true;
      p.bias = cg_t(c->dt, 4, bs);
      own = p.bias;
      if (c->bias == 2) p.bias.strides[0] = 0, own.shape[0] = 1, own.strides[0] = 0;
    }
    if (c->lengths) {
      const int64_t b1[1] = {c->B};
      p.has_q_lengths = p.has_k_lengths = true;
      p.q_lengths = cg_t(DLK_I32, 1, b1), p.k_lengths = cg_t(DLK_I64, 1, b1);
    }
    why[0] = '\0';
    if (!c->bwd) {
      dlk_sdpa_fwd_args a;
      memset(&a, 0, sizeof a);
      a.p = p, a.out = cg_t(c->dt, 4, os), a.has_lse = true, a.lse = cg_t(DLK_F32, 3, ls);
      CHECK(!dlk_sdpa_fwd_cudnn_supports(ctx, &a, 0, why, sizeof why),
            "supported on a CPU context");
      CHECK(dlk_sdpa_fwd_cudnn_workspace(ctx, &a, 0) == 0, "a workspace without a plan");
    } else {
      dlk_sdpa_bwd_args a;
      memset(&a, 0, sizeof a);
      a.p = p, a.out = cg_t(c->dt, 4, os), a.lse = cg_t(DLK_F32, 3, ls), a.dout = a.out;
      a.has_dq = a.has_dk = a.has_dv = true;
      a.dq = p.q, a.dk = p.k, a.dv = p.v;
      if (c->dbias) a.has_dbias = true, a.dbias = own;
      CHECK(!dlk_sdpa_bwd_cudnn_supports(ctx, &a, 0, why, sizeof why),
            "supported on a CPU context");
    }
    for (int w = 0; w < 2; w++)
      CHECK(strstr(why, c->want[w]) != NULL, "reason \"%s\" lacks \"%s\"", why, c->want[w]);
    printf("cuDNN rows, %s: %s\n", c->name, why);
  }
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
}
#endif

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention                                                */
/* ====================================================================================== */
/*
 * CPU run: goldens (additive.txt, luong.txt: the formulas in float64 torch, cross-checked
 * there against attention_keras's equations and independent torch routes), contiguous and
 * with time-major enc/dec and transposed weights; f64 finite differences of both CPU
 * backwards for every score, with lengths and each upstream gradient alone; the sweep rows
 * additive_attn_fwd/bwd and luong_attn_fwd/bwd against the naive f64 computation below;
 * properties (steps past the lengths hold NaN and are never read: weights and denc exactly
 * 0 there; every gradient asked alone equals the full call's); bad input.
 * GPU run: the same sweep against the CPU reference and the properties per variant.
 */

/* Test kinds: the additive op, Luong's three scores. */
enum { AK_ADD = 0, AK_DOT, AK_GEN, AK_CAT };
/* Lengths: none; varied (b % 3: Te, about half, 1); odd sequences down to one step. */
enum { AL_NONE = 0, AL_SOME, AL_ONE };
/* Upstream gradients of the backward: both, dcontext only, dweights only. */
enum { AG_BOTH = 0, AG_CTX, AG_WTS };

typedef struct attn_case {
  sweep_tags tags; /* .big: only in the run against a reference context (the GPU run) */
  const char *name;
  int kind;
  int64_t B, Te, Td, He, Hd, A;
  int lengths, grads;
  int layout; /* sweep_layout of enc, dec, the weights matrices and every output */
} attn_case;

static int64_t attn_case_len(const attn_case *c, int64_t b) {
  if (c->lengths == AL_SOME) return b % 3 == 0 ? c->Te : b % 3 == 1 ? c->Te / 2 + 1 : 1;
  if (c->lengths == AL_ONE) return b % 2 ? 1 : (c->Te > 1 ? c->Te - 1 : 1);
  return c->Te;
}

/* Shapes of the weights tensors: w1 (w_a, or Luong's w), w2 (u_a), v. 0 dims: absent. */
static int attn_w1_shape(const attn_case *c, int64_t *s) {
  switch (c->kind) {
    case AK_ADD: s[0] = c->He, s[1] = c->A; return 2;
    case AK_GEN: s[0] = c->Hd, s[1] = c->He; return 2;
    case AK_CAT: s[0] = c->A, s[1] = c->Hd + c->He; return 2;
    default: return 0;
  }
}
static int attn_w2_shape(const attn_case *c, int64_t *s) {
  if (c->kind != AK_ADD) return 0;
  s[0] = c->Hd, s[1] = c->A;
  return 2;
}
static int attn_has_v(const attn_case *c) {
  return c->kind == AK_ADD || c->kind == AK_CAT;
}

/* Host values of one problem, row-major in each tensor's shape. `weights` is the forward's
   output the backward reads (NULL in a forward's io). */
typedef struct attn_io {
  dlk_dtype dt;
  double *enc, *dec, *dctx, *dwts, *w1, *w2, *v, *len, *weights;
} attn_io;

typedef struct attn_res {
  double *ctx, *wts, *denc, *ddec, *dw1, *dw2, *dv;
} attn_res;

static int64_t an_enc(const attn_case *c) {
  return c->B * c->Te * c->He;
}
static int64_t an_dec(const attn_case *c) {
  return c->B * c->Td * c->Hd;
}
static int64_t an_ctx(const attn_case *c) {
  return c->B * c->Td * c->He;
}
static int64_t an_wts(const attn_case *c) {
  return c->B * c->Td * c->Te;
}
static int64_t an_w1(const attn_case *c) {
  int64_t s[2];
  return attn_w1_shape(c, s) ? s[0] * s[1] : 0;
}
static int64_t an_w2(const attn_case *c) {
  int64_t s[2];
  return attn_w2_shape(c, s) ? s[0] * s[1] : 0;
}

/* Draw the inputs of case c in dtype dt: enc and dec uniform in [-1, 1), the weights
   scaled by 1/sqrt(fan-in) (tame scores); `pad`: the encoder steps past the lengths get
   NaN (never read), else ordinary values. */
static void attn_gen(const attn_case *c, dlk_dtype dt, int pad, attn_io *io) {
  memset(io, 0, sizeof *io);
  io->dt = dt;
  io->enc = alloc_d(an_enc(c)), io->dec = alloc_d(an_dec(c));
  io->dctx = alloc_d(an_ctx(c)), io->dwts = alloc_d(an_wts(c));
  for (int64_t i = 0; i < an_enc(c); i++) io->enc[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < an_dec(c); i++) io->dec[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < an_ctx(c); i++) io->dctx[i] = round_to(dt, t_uniform(-1, 1));
  for (int64_t i = 0; i < an_wts(c); i++) io->dwts[i] = round_to(dt, t_uniform(-1, 1));
  int64_t s[2];
  if (attn_w1_shape(c, s)) {
    const double sc = 1.0 / sqrt((double)(c->kind == AK_CAT ? s[1] : s[0]));
    io->w1 = alloc_d(an_w1(c));
    for (int64_t i = 0; i < an_w1(c); i++) io->w1[i] = round_to(dt, sc * t_uniform(-1.7, 1.7));
  }
  if (attn_w2_shape(c, s)) {
    io->w2 = alloc_d(an_w2(c));
    for (int64_t i = 0; i < an_w2(c); i++)
      io->w2[i] = round_to(dt, t_uniform(-1.7, 1.7) / sqrt((double)s[0]));
  }
  if (attn_has_v(c)) {
    io->v = alloc_d(c->A);
    for (int64_t i = 0; i < c->A; i++)
      io->v[i] = round_to(dt, t_uniform(-1.7, 1.7) / sqrt((double)c->A));
  }
  if (c->lengths) {
    io->len = alloc_d(c->B);
    for (int64_t b = 0; b < c->B; b++) io->len[b] = (double)attn_case_len(c, b);
  }
  if (pad)
    for (int64_t b = 0; b < c->B; b++)
      for (int64_t j = attn_case_len(c, b); j < c->Te; j++)
        for (int64_t h = 0; h < c->He; h++) io->enc[(b * c->Te + j) * c->He + h] = NAN;
}

static void attn_io_free(attn_io *io) {
  free(io->enc), free(io->dec), free(io->dctx), free(io->dwts), free(io->w1), free(io->w2),
      free(io->v), free(io->len), free(io->weights);
  memset(io, 0, sizeof *io);
}

static void attn_res_free(attn_res *r) {
  free(r->ctx), free(r->wts), free(r->denc), free(r->ddec), free(r->dw1), free(r->dw2), free(r->dv);
  memset(r, 0, sizeof *r);
}

/* ---- the independent naive f64 computation (plain arrays, row-major) ---- */

/* The projections: P [B, Te, A] and Q [B, Td, A] for ADD and CAT (CAT's w [A, Hd + He]:
   Q from its first Hd columns, P from the rest), Q [B, Td, He] = dec w for GEN. Steps past
   the lengths are left 0 (their enc may be NaN). */
static void attn_naive_proj(const attn_case *c, const attn_io *io, double *P, double *Q) {
  const int64_t B = c->B, Te = c->Te, Td = c->Td, He = c->He, Hd = c->Hd, A = c->A;
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = attn_case_len(c, b);
    for (int64_t a = 0; a < A && c->kind != AK_GEN; a++) {
      for (int64_t j = 0; j < len; j++) {
        double s = 0;
        for (int64_t k = 0; k < He; k++)
          s += io->enc[(b * Te + j) * He + k] *
               (c->kind == AK_ADD ? io->w1[k * A + a] : io->w1[a * (Hd + He) + Hd + k]);
        P[(b * Te + j) * A + a] = s;
      }
      for (int64_t i = 0; i < Td; i++) {
        double s = 0;
        for (int64_t h = 0; h < Hd; h++)
          s += io->dec[(b * Td + i) * Hd + h] *
               (c->kind == AK_ADD ? io->w2[h * A + a] : io->w1[a * (Hd + He) + h]);
        Q[(b * Td + i) * A + a] = s;
      }
    }
    if (c->kind == AK_GEN)
      for (int64_t i = 0; i < Td; i++)
        for (int64_t k = 0; k < He; k++) {
          double s = 0;
          for (int64_t h = 0; h < Hd; h++) s += io->dec[(b * Td + i) * Hd + h] * io->w1[h * He + k];
          Q[(b * Td + i) * He + k] = s;
        }
  }
}

static double attn_naive_score(const attn_case *c, const attn_io *io, const double *P,
                               const double *Q, int64_t b, int64_t i, int64_t j) {
  const int64_t Te = c->Te, Td = c->Td, He = c->He, A = c->A;
  double e = 0;
  if (c->kind == AK_ADD || c->kind == AK_CAT) {
    for (int64_t a = 0; a < A; a++)
      e += io->v[a] * tanh(P[(b * Te + j) * A + a] + Q[(b * Td + i) * A + a]);
  } else {
    const double *q = c->kind == AK_DOT ? io->dec + (b * Td + i) * c->Hd : Q + (b * Td + i) * He;
    for (int64_t k = 0; k < He; k++) e += q[k] * io->enc[(b * Te + j) * He + k];
  }
  return e;
}

/* Forward (context, weights) and, with bwd, every gradient from io->weights (the forward's
   output as the backward is given it) and the upstream gradients the case names. */
static void attn_naive(const attn_case *c, const attn_io *io, int bwd, attn_res *r) {
  const int64_t B = c->B, Te = c->Te, Td = c->Td, He = c->He, Hd = c->Hd, A = c->A;
  const int64_t qc = c->kind == AK_GEN ? He : A;
  memset(r, 0, sizeof *r);
  double *P = alloc_d(B * Te * A), *Q = alloc_d(B * Td * qc), *e = alloc_d(Te);
  attn_naive_proj(c, io, P, Q);
  if (!bwd) {
    r->ctx = alloc_d(an_ctx(c)), r->wts = alloc_d(an_wts(c));
    for (int64_t b = 0; b < B; b++) {
      const int64_t len = attn_case_len(c, b);
      for (int64_t i = 0; i < Td; i++) {
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < len; j++) {
          e[j] = attn_naive_score(c, io, P, Q, b, i, j);
          if (e[j] > m) m = e[j];
        }
        for (int64_t j = 0; j < len; j++) sum += exp(e[j] - m);
        for (int64_t j = 0; j < len; j++) {
          const double alpha = exp(e[j] - m) / sum;
          r->wts[(b * Td + i) * Te + j] = alpha;
          for (int64_t k = 0; k < He; k++)
            r->ctx[(b * Td + i) * He + k] += alpha * io->enc[(b * Te + j) * He + k];
        }
      }
    }
    free(P), free(Q), free(e);
    return;
  }
  const int use_ctx = c->grads != AG_WTS, use_wts = c->grads != AG_CTX;
  double *dE = alloc_d(B * Td * Te), *dP = alloc_d(B * Te * A), *dQ = alloc_d(B * Td * qc);
  r->denc = alloc_d(an_enc(c)), r->ddec = alloc_d(an_dec(c));
  if (an_w1(c)) r->dw1 = alloc_d(an_w1(c));
  if (an_w2(c)) r->dw2 = alloc_d(an_w2(c));
  if (attn_has_v(c)) r->dv = alloc_d(A);
  /* dE = alpha (dalpha - sum alpha dalpha), dalpha = dweights + dcontext . enc_j */
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = attn_case_len(c, b);
    for (int64_t i = 0; i < Td; i++) {
      const double *alpha = io->weights + (b * Td + i) * Te;
      double dot = 0;
      for (int64_t j = 0; j < len; j++) {
        double g = use_wts ? io->dwts[(b * Td + i) * Te + j] : 0;
        for (int64_t k = 0; k < He && use_ctx; k++)
          g += io->dctx[(b * Td + i) * He + k] * io->enc[(b * Te + j) * He + k];
        e[j] = g;
        dot += alpha[j] * g;
      }
      for (int64_t j = 0; j < len; j++) {
        dE[(b * Td + i) * Te + j] = alpha[j] * (e[j] - dot);
        for (int64_t k = 0; k < He && use_ctx; k++)
          r->denc[(b * Te + j) * He + k] += alpha[j] * io->dctx[(b * Td + i) * He + k];
      }
    }
  }
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = attn_case_len(c, b);
    for (int64_t i = 0; i < Td; i++)
      for (int64_t j = 0; j < len; j++) {
        const double de = dE[(b * Td + i) * Te + j];
        if (c->kind == AK_ADD || c->kind == AK_CAT) {
          for (int64_t a = 0; a < A; a++) {
            const double H = tanh(P[(b * Te + j) * A + a] + Q[(b * Td + i) * A + a]);
            const double dz = de * io->v[a] * (1 - H * H);
            dP[(b * Te + j) * A + a] += dz;
            dQ[(b * Td + i) * A + a] += dz;
            r->dv[a] += de * H;
          }
        } else if (c->kind == AK_DOT) {
          for (int64_t k = 0; k < He; k++) {
            r->denc[(b * Te + j) * He + k] += de * io->dec[(b * Td + i) * Hd + k];
            r->ddec[(b * Td + i) * Hd + k] += de * io->enc[(b * Te + j) * He + k];
          }
        } else {
          for (int64_t k = 0; k < He; k++) {
            r->denc[(b * Te + j) * He + k] += de * Q[(b * Td + i) * He + k];
            dQ[(b * Td + i) * He + k] += de * io->enc[(b * Te + j) * He + k];
          }
        }
      }
  }
  /* through the projections */
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = attn_case_len(c, b);
    for (int64_t j = 0; j < len; j++)
      for (int64_t k = 0; k < He && c->kind != AK_DOT && c->kind != AK_GEN; k++)
        for (int64_t a = 0; a < A; a++) {
          const double wv = c->kind == AK_ADD ? io->w1[k * A + a] : io->w1[a * (Hd + He) + Hd + k];
          r->denc[(b * Te + j) * He + k] += dP[(b * Te + j) * A + a] * wv;
          if (c->kind == AK_ADD)
            r->dw1[k * A + a] += io->enc[(b * Te + j) * He + k] * dP[(b * Te + j) * A + a];
          else
            r->dw1[a * (Hd + He) + Hd + k] +=
                io->enc[(b * Te + j) * He + k] * dP[(b * Te + j) * A + a];
        }
    for (int64_t i = 0; i < Td && c->kind != AK_DOT; i++)
      for (int64_t h = 0; h < Hd; h++)
        for (int64_t a = 0; a < qc; a++) {
          const double wv = c->kind == AK_ADD   ? io->w2[h * A + a]
                            : c->kind == AK_CAT ? io->w1[a * (Hd + He) + h]
                                                : io->w1[h * He + a];
          const double g = dQ[(b * Td + i) * qc + a], x = io->dec[(b * Td + i) * Hd + h];
          r->ddec[(b * Td + i) * Hd + h] += g * wv;
          if (c->kind == AK_ADD) r->dw2[h * A + a] += x * g;
          if (c->kind == AK_CAT) r->dw1[a * (Hd + He) + h] += x * g;
          if (c->kind == AK_GEN) r->dw1[h * He + a] += x * g;
        }
  }
  free(P), free(Q), free(e), free(dE), free(dP), free(dQ);
}

/* ---- running the library through sweep rigs ---- */

/* Bits of the gradients a backward call asks for. */
enum { AW_DENC = 1, AW_DDEC = 2, AW_DW1 = 4, AW_DW2 = 8, AW_DV = 16, AW_ALL = 31 };

static int attn_is_luong(const attn_case *c) {
  return c->kind != AK_ADD;
}
static dlk_luong_attention_params attn_luong_params(const attn_case *c) {
  dlk_luong_attention_params p;
  p.score = c->kind == AK_DOT   ? DLK_LUONG_DOT
            : c->kind == AK_GEN ? DLK_LUONG_GENERAL
                                : DLK_LUONG_CONCAT;
  return p;
}

/* The inputs every call has, added to rig r: enc, dec, w1, w2, v, lengths (NULL pointers
   for the absent ones in *t). */
typedef struct attn_tensors {
  sweep_tensor *enc, *dec, *w1, *w2, *v, *len;
} attn_tensors;

static void attn_rig_inputs(sweep_rig *r, const attn_case *c, const attn_io *io, attn_tensors *t) {
  const dlk_dtype dt = io->dt;
  const sweep_layout lay = (sweep_layout)c->layout;
  const int64_t se[3] = {c->B, c->Te, c->He}, sd[3] = {c->B, c->Td, c->Hd}, sv[1] = {c->A},
                sb[1] = {c->B};
  int64_t s1[2], s2[2];
  memset(t, 0, sizeof *t);
  t->enc = sweep_in(r, dt, 3, se, lay, io->enc);
  t->dec = sweep_in(r, dt, 3, sd, lay, io->dec);
  if (attn_w1_shape(c, s1)) t->w1 = sweep_in(r, dt, 2, s1, lay, io->w1);
  if (attn_w2_shape(c, s2)) t->w2 = sweep_in(r, dt, 2, s2, lay, io->w2);
  if (attn_has_v(c)) t->v = sweep_in(r, dt, 1, sv, lay == SW_PADDED ? SW_PADDED : SW_CONTIG, io->v);
  if (io->len) t->len = sweep_in(r, c->B % 2 ? DLK_I32 : DLK_I64, 1, sb, SW_CONTIG, io->len);
}

#define ATT_V(x) ((x) ? &(x)->v : NULL)

/* The forward of case c: context and weights appended to *out. */
static dlk_status attn_run_fwd(dlk_context *ctx, const attn_case *c, const attn_io *io,
                               sweep_set *out) {
  const sweep_layout lay = (sweep_layout)c->layout;
  const int64_t sc[3] = {c->B, c->Td, c->He}, sw[3] = {c->B, c->Td, c->Te};
  sweep_rig r = {.ctx = ctx};
  attn_tensors t;
  attn_rig_inputs(&r, c, io, &t);
  sweep_tensor *context = sweep_out(&r, io->dt, 3, sc, lay),
               *weights = sweep_out(&r, io->dt, 3, sw, lay);
  dlk_status s = DLK_OK;
  if (!r.failed) {
    if (attn_is_luong(c)) {
      const dlk_luong_attention_params p = attn_luong_params(c);
      s = dlk_luong_attention_forward(ctx, &p, &t.enc->v, &t.dec->v, ATT_V(t.w1), ATT_V(t.v),
                                      ATT_V(t.len), &context->v, &weights->v);
    } else {
      s = dlk_additive_attention_forward(ctx, &t.enc->v, &t.dec->v, &t.w1->v, &t.w2->v, &t.v->v,
                                         ATT_V(t.len), &context->v, &weights->v);
    }
  }
  return sweep_end(&r, s, out);
}

/* The backward of case c from io->weights, asking for the gradients in `want` (those the
   case has): appended to *out in the order denc, ddec, dw1, dw2, dv. */
static dlk_status attn_run_bwd(dlk_context *ctx, const attn_case *c, const attn_io *io, int want,
                               sweep_set *out) {
  const dlk_dtype dt = io->dt;
  const sweep_layout lay = (sweep_layout)c->layout;
  const int64_t se[3] = {c->B, c->Te, c->He}, sd[3] = {c->B, c->Td, c->Hd},
                sc[3] = {c->B, c->Td, c->He}, sw[3] = {c->B, c->Td, c->Te}, sv[1] = {c->A};
  int64_t s1[2], s2[2];
  sweep_rig r = {.ctx = ctx}, g = {.ctx = ctx}; /* inputs; gradients */
  attn_tensors t;
  attn_rig_inputs(&r, c, io, &t);
  sweep_tensor *weights = sweep_in(&r, dt, 3, sw, lay, io->weights);
  sweep_tensor *dctx = c->grads != AG_WTS ? sweep_in(&r, dt, 3, sc, lay, io->dctx) : NULL;
  sweep_tensor *dwts = c->grads != AG_CTX ? sweep_in(&r, dt, 3, sw, lay, io->dwts) : NULL;
  sweep_tensor *denc = want & AW_DENC ? sweep_out(&g, dt, 3, se, lay) : NULL;
  sweep_tensor *ddec = want & AW_DDEC ? sweep_out(&g, dt, 3, sd, lay) : NULL;
  sweep_tensor *dw1 = want & AW_DW1 && attn_w1_shape(c, s1) ? sweep_out(&g, dt, 2, s1, lay) : NULL;
  sweep_tensor *dw2 = want & AW_DW2 && attn_w2_shape(c, s2) ? sweep_out(&g, dt, 2, s2, lay) : NULL;
  sweep_tensor *dv = want & AW_DV && attn_has_v(c)
                         ? sweep_out(&g, dt, 1, sv, lay == SW_PADDED ? SW_PADDED : SW_CONTIG)
                         : NULL;
  dlk_status s = DLK_OK;
  if (!r.failed && !g.failed) {
    if (attn_is_luong(c)) {
      const dlk_luong_attention_params p = attn_luong_params(c);
      s = dlk_luong_attention_backward(ctx, &p, &t.enc->v, &t.dec->v, ATT_V(t.w1), ATT_V(t.v),
                                       ATT_V(t.len), &weights->v, ATT_V(dctx), ATT_V(dwts),
                                       ATT_V(denc), ATT_V(ddec), ATT_V(dw1), ATT_V(dv));
    } else {
      s = dlk_additive_attention_backward(
          ctx, &t.enc->v, &t.dec->v, &t.w1->v, &t.w2->v, &t.v->v, ATT_V(t.len), &weights->v,
          ATT_V(dctx), ATT_V(dwts), ATT_V(denc), ATT_V(ddec), ATT_V(dw1), ATT_V(dw2), ATT_V(dv));
    }
  }
  sweep_end(&r, s, NULL);
  return sweep_end(&g, s, out);
}

/* Forward, then (bwd) the backward from the forward's weights: results into *res. */
static dlk_status attn_run(dlk_context *ctx, const attn_case *c, attn_io *io, int bwd,
                           attn_res *res) {
  memset(res, 0, sizeof *res);
  sweep_set f = {.n = 0}, g = {.n = 0};
  dlk_status s = attn_run_fwd(ctx, c, io, &f);
  if (s == DLK_OK && bwd) {
    double *keep = io->weights;
    io->weights = f.a[1].v;
    s = attn_run_bwd(ctx, c, io, AW_ALL, &g);
    io->weights = keep;
  }
  if (s == DLK_OK) {
    res->ctx = f.a[0].v, res->wts = f.a[1].v, f.n = 0;
    if (bwd) {
      int k = 0;
      res->denc = g.a[k++].v, res->ddec = g.a[k++].v;
      if (an_w1(c)) res->dw1 = g.a[k++].v;
      if (an_w2(c)) res->dw2 = g.a[k++].v;
      if (attn_has_v(c)) res->dv = g.a[k++].v;
      g.n = 0;
    }
  }
  sweep_free(&f);
  sweep_free(&g);
  return s;
}

/* ---- 1. goldens ---- */

/* Host tensors of a golden case; `strided`: 3-D tensors time-major in memory ([B, T, H]
   stored as [T, B, H], as a recurrent layer's output is), matrices transposed. */
static dlk_tensor *ag_host(ghost *h, const gtensor *g, int strided, int fill_ff) {
  dlk_tensor *t = &h->t[h->n];
  size_t es = dlk_dtype_size(g->dt);
  void *mem = malloc((size_t)(g->n > 0 ? g->n : 1) * es);
  h->mem[h->n++] = mem;
  *t = host_tensor(mem, g->dt, g->ndim, g->shape);
  if (strided && g->ndim == 3)
    t->strides[0] = g->shape[2], t->strides[1] = g->shape[0] * g->shape[2], t->strides[2] = 1;
  if (strided && g->ndim == 2) t->strides[0] = 1, t->strides[1] = g->shape[0];
  if (fill_ff) {
    memset(mem, 0xFF, (size_t)(g->n > 0 ? g->n : 1) * es);
  } else {
    for (int64_t i = 0; i < g->n; i++) dlk_store(mem, g->dt, t_offset(t, i), g->v[i]);
  }
  return t;
}

static dlk_tensor *ag_in(ghost *h, gcase *c, const char *name, int strided) {
  gtensor *g = g_find(c, name, 0);
  return g ? ag_host(h, g, strided && strcmp(name, "enc_lengths") != 0, 0) : NULL;
}
static dlk_tensor *ag_out(ghost *h, gcase *c, const char *name, int strided) {
  gtensor *g = g_find(c, name, 1);
  return g ? ag_host(h, g, strided, 1) : NULL;
}

static void golden_attn(dlk_context *ctx, gcase *c, int strided) {
  ghost h = {.n = 0};
  snprintf(t_case_buf, sizeof t_case_buf, "golden %s%s", c->name, strided ? " (strided)" : "");
  t_case = t_case_buf;
  const int luong = strcmp(c->op, "luong") == 0;
  dlk_luong_attention_params p = {DLK_LUONG_DOT};
  if (luong) p.score = (dlk_luong_score)(int)g_num(c, "score");
  dlk_tensor *enc = ag_in(&h, c, "enc", strided), *dec = ag_in(&h, c, "dec", strided);
  dlk_tensor *w1 = ag_in(&h, c, luong ? "w" : "w_a", strided), *w2 = ag_in(&h, c, "u_a", strided);
  dlk_tensor *v = ag_in(&h, c, luong ? "v" : "v_a", strided), *len = ag_in(&h, c, "enc_lengths", 0);
  dlk_tensor *wts_in = ag_in(&h, c, "weights", strided), *dctx = ag_in(&h, c, "dcontext", strided),
             *dwts = ag_in(&h, c, "dweights", strided);
  dlk_tensor *context = ag_out(&h, c, "context", strided),
             *weights = ag_out(&h, c, "weights", strided);
  dlk_tensor *denc = ag_out(&h, c, "denc", strided), *ddec = ag_out(&h, c, "ddec", strided);
  dlk_tensor *dw1 = ag_out(&h, c, luong ? "dw" : "dw_a", strided),
             *dw2 = ag_out(&h, c, "du_a", strided);
  dlk_tensor *dv = ag_out(&h, c, luong ? "dv" : "dv_a", strided);
  CHECK(enc && dec && wts_in && context && weights && denc && ddec, "golden %s: tensors missing",
        c->name);
  if (enc && dec && wts_in && context && weights && denc && ddec) {
    if (luong) {
      CHECK_OK(ctx, dlk_luong_attention_forward(ctx, &p, enc, dec, w1, v, len, context, weights));
      CHECK_OK(ctx, dlk_luong_attention_backward(ctx, &p, enc, dec, w1, v, len, wts_in, dctx, dwts,
                                                 denc, ddec, dw1, dv));
    } else {
      CHECK_OK(ctx,
               dlk_additive_attention_forward(ctx, enc, dec, w1, w2, v, len, context, weights));
      CHECK_OK(ctx, dlk_additive_attention_backward(ctx, enc, dec, w1, w2, v, len, wts_in, dctx,
                                                    dwts, denc, ddec, dw1, dw2, dv));
    }
    g_expect(c, "context", context, 0);
    g_expect(c, "weights", weights, 0);
    g_expect(c, "denc", denc, 1);
    g_expect(c, "ddec", ddec, 1);
    if (dw1) g_expect(c, luong ? "dw" : "dw_a", dw1, 1);
    if (dw2) g_expect(c, "du_a", dw2, 1);
    if (dv) g_expect(c, luong ? "dv" : "dv_a", dv, 1);
  }
  g_host_free(&h);
}

/* arg: the op every case of the file names ("additive" or "luong"). */
static void golden_attn_case(dlk_context *ctx, gcase *c, void *op) {
  CHECK(strcmp(c->op, (const char *)op) == 0, "golden %s: unknown op %s", c->name, c->op);
  golden_attn(ctx, c, 0);
  golden_attn(ctx, c, 1);
}

static void test_attn_golden(dlk_context *ctx) {
  static const char *const files[2] = {"tests/golden/attention/additive.txt",
                                       "tests/golden/attention/luong.txt"};
  static const char *const ops[2] = {"additive", "luong"};
  for (int f = 0; f < 2; f++) {
    const int n = golden_each(ctx, files[f], golden_attn_case, (void *)ops[f]);
    printf("golden: %d %s attention cases checked (contiguous and strided)\n", n, ops[f]);
  }
}

/* ---- 2. finite differences of the CPU backwards in f64 ---- */

/* L = sum(dcontext * context) + sum(dweights * weights), the terms the case uses. */
static double attn_fd_loss(dlk_context *ctx, const attn_case *c, attn_io *io) {
  attn_res r;
  dlk_status s = attn_run(ctx, c, io, 0, &r);
  CHECK(s == DLK_OK, "fd forward: %s", dlk_context_last_error(ctx));
  double L = 0;
  for (int64_t i = 0; s == DLK_OK && c->grads != AG_WTS && i < an_ctx(c); i++)
    L += io->dctx[i] * r.ctx[i];
  for (int64_t i = 0; s == DLK_OK && c->grads != AG_CTX && i < an_wts(c); i++)
    L += io->dwts[i] * r.wts[i];
  attn_res_free(&r);
  return L;
}

typedef struct {
  dlk_context *ctx;
  const attn_case *c;
  attn_io *io;
} attn_fd_arg;
static double attn_fd_loss_of(void *arg) {
  const attn_fd_arg *a = arg;
  return attn_fd_loss(a->ctx, a->c, a->io);
}
static void attn_fd_check(dlk_context *ctx, const attn_case *c, attn_io *io, const char *name,
                          double *x, int64_t n, const double *g) {
  attn_fd_arg a = {ctx, c, io};
  fd_compare(c->name, name, x, n, g, attn_fd_loss_of, &a);
}

static void test_attn_fd(dlk_context *ctx) {
  // clang-format off
  static const attn_case cases[] = {
      {.name = "add", .kind = AK_ADD, .B = 2, .Te = 4, .Td = 3, .He = 3, .Hd = 2, .A = 3},
      {.name = "add_lengths", .kind = AK_ADD, .B = 3, .Te = 4, .Td = 2, .He = 2, .Hd = 3, .A = 4, .lengths = AL_SOME},
      {.name = "add_single_step_ctx", .kind = AK_ADD, .B = 2, .Te = 5, .Td = 1, .He = 3, .Hd = 3, .A = 2, .lengths = AL_ONE, .grads = AG_CTX},
      {.name = "add_wts", .kind = AK_ADD, .B = 1, .Te = 3, .Td = 3, .He = 2, .Hd = 2, .A = 3, .grads = AG_WTS},
      {.name = "dot", .kind = AK_DOT, .B = 2, .Te = 4, .Td = 3, .He = 3, .Hd = 3, .lengths = AL_SOME},
      {.name = "dot_wts", .kind = AK_DOT, .B = 1, .Te = 3, .Td = 2, .He = 2, .Hd = 2, .grads = AG_WTS},
      {.name = "general", .kind = AK_GEN, .B = 2, .Te = 4, .Td = 3, .He = 3, .Hd = 2, .lengths = AL_ONE},
      {.name = "general_ctx", .kind = AK_GEN, .B = 1, .Te = 3, .Td = 2, .He = 2, .Hd = 3, .grads = AG_CTX},
      {.name = "concat", .kind = AK_CAT, .B = 2, .Te = 4, .Td = 3, .He = 2, .Hd = 3, .A = 3, .lengths = AL_SOME},
      {.name = "concat_wts", .kind = AK_CAT, .B = 1, .Te = 3, .Td = 1, .He = 2, .Hd = 2, .A = 2, .grads = AG_WTS},
  };
  // clang-format on
  int n = 0;
  for (int ci = 0; ci < N_OF(cases); ci++) {
    const attn_case *c = &cases[ci];
    snprintf(t_case_buf, sizeof t_case_buf, "fd %s", c->name);
    t_case = t_case_buf;
    attn_io io;
    attn_gen(c, DLK_F64, 0, &io);
    attn_res r;
    dlk_status s = attn_run(ctx, c, &io, 1, &r);
    CHECK(s == DLK_OK, "backward: %s", dlk_context_last_error(ctx));
    if (s == DLK_OK) {
      attn_fd_check(ctx, c, &io, "enc", io.enc, an_enc(c), r.denc);
      attn_fd_check(ctx, c, &io, "dec", io.dec, an_dec(c), r.ddec);
      if (io.w1)
        attn_fd_check(ctx, c, &io, c->kind == AK_ADD ? "w_a" : "w", io.w1, an_w1(c), r.dw1);
      if (io.w2) attn_fd_check(ctx, c, &io, "u_a", io.w2, an_w2(c), r.dw2);
      if (io.v) attn_fd_check(ctx, c, &io, "v", io.v, c->A, r.dv);
      n++;
    }
    attn_res_free(&r);
    attn_io_free(&io);
  }
  printf("finite differences: %d additive/Luong backward cases in f64\n", n);
}

/* ---- 3. the sweep rows ---- */

/* The issue's shapes: Te, Td in {1, 7, 63, 129, 1000}, lengths (down to a single step),
   each upstream gradient alone, strided layouts. .big: too large for the CPU run's f64
   loops; they run against the CPU reference in the GPU run. */
// clang-format off
static const attn_case ADD_SWEEP[] = {
    /* the first three are the quick subset */
    {.name = "t7_lengths", .kind = AK_ADD, .B = 3, .Te = 7, .Td = 7, .He = 16, .Hd = 12, .A = 8, .lengths = AL_SOME},
    {.name = "single_step_te63", .kind = AK_ADD, .B = 4, .Te = 63, .Td = 1, .He = 32, .Hd = 24, .A = 32, .lengths = AL_SOME},
    {.name = "te1_td7", .kind = AK_ADD, .B = 2, .Te = 1, .Td = 7, .He = 8, .Hd = 8, .A = 8},
    {.name = "t1", .kind = AK_ADD, .B = 1, .Te = 1, .Td = 1, .He = 4, .Hd = 4, .A = 4},
    {.name = "te129_td7_transposed", .kind = AK_ADD, .B = 2, .Te = 129, .Td = 7, .He = 16, .Hd = 8, .A = 16, .lengths = AL_ONE, .layout = SW_TRANSPOSED},
    {.name = "t63_padded_ctx", .kind = AK_ADD, .B = 1, .Te = 63, .Td = 63, .He = 16, .Hd = 16, .A = 12, .grads = AG_CTX, .layout = SW_PADDED},
    {.name = "te1000_td1_wts", .kind = AK_ADD, .B = 3, .Te = 1000, .Td = 1, .He = 8, .Hd = 8, .A = 8, .lengths = AL_SOME, .grads = AG_WTS},
    {.name = "te7_td129", .kind = AK_ADD, .B = 2, .Te = 7, .Td = 129, .He = 8, .Hd = 16, .A = 8, .lengths = AL_ONE},
    {.name = "a_gt_he", .kind = AK_ADD, .B = 2, .Te = 7, .Td = 7, .He = 5, .Hd = 3, .A = 40, .layout = SW_PADDED},
    {.tags.big = true, .name = "t129", .kind = AK_ADD, .B = 2, .Te = 129, .Td = 129, .He = 64, .Hd = 64, .A = 64, .lengths = AL_SOME},
    {.tags.big = true, .name = "t1000", .kind = AK_ADD, .B = 1, .Te = 1000, .Td = 1000, .He = 32, .Hd = 32, .A = 32},
    {.tags.big = true, .name = "te1000_td1_wide", .kind = AK_ADD, .B = 4, .Te = 1000, .Td = 1, .He = 256, .Hd = 256, .A = 256, .lengths = AL_SOME},
    {.tags.big = true, .name = "t200_h256", .kind = AK_ADD, .B = 2, .Te = 200, .Td = 200, .He = 256, .Hd = 256, .A = 256, .lengths = AL_ONE},
    {.tags.big = true, .name = "t63_transposed", .kind = AK_ADD, .B = 3, .Te = 63, .Td = 63, .He = 128, .Hd = 96, .A = 80, .lengths = AL_SOME, .layout = SW_TRANSPOSED},
};
static const attn_case LUONG_SWEEP[] = {
    {.name = "dot_t7_one", .kind = AK_DOT, .B = 3, .Te = 7, .Td = 5, .He = 16, .Hd = 16, .lengths = AL_ONE},
    {.name = "general_t7", .kind = AK_GEN, .B = 2, .Te = 7, .Td = 7, .He = 8, .Hd = 12, .lengths = AL_SOME},
    {.name = "concat_t1", .kind = AK_CAT, .B = 2, .Te = 1, .Td = 1, .He = 8, .Hd = 8, .A = 4},
    {.name = "dot_te129_td63_ctx", .kind = AK_DOT, .B = 1, .Te = 129, .Td = 63, .He = 16, .Hd = 16, .grads = AG_CTX},
    {.name = "dot_te7_td1000", .kind = AK_DOT, .B = 1, .Te = 7, .Td = 1000, .He = 8, .Hd = 8, .lengths = AL_SOME},
    {.name = "general_te63_td1_transposed", .kind = AK_GEN, .B = 3, .Te = 63, .Td = 1, .He = 16, .Hd = 8, .lengths = AL_SOME, .layout = SW_TRANSPOSED},
    {.name = "general_te1000_td7_wts", .kind = AK_GEN, .B = 2, .Te = 1000, .Td = 7, .He = 8, .Hd = 8, .lengths = AL_ONE, .grads = AG_WTS},
    {.name = "concat_t7_padded", .kind = AK_CAT, .B = 2, .Te = 7, .Td = 7, .He = 8, .Hd = 12, .A = 16, .lengths = AL_SOME, .layout = SW_PADDED},
    {.name = "concat_te63_td7_wts", .kind = AK_CAT, .B = 2, .Te = 63, .Td = 7, .He = 16, .Hd = 8, .A = 16, .grads = AG_WTS},
    {.tags.big = true, .name = "dot_t1000", .kind = AK_DOT, .B = 2, .Te = 1000, .Td = 1000, .He = 64, .Hd = 64, .lengths = AL_SOME},
    {.tags.big = true, .name = "general_t129", .kind = AK_GEN, .B = 2, .Te = 129, .Td = 129, .He = 128, .Hd = 64},
    {.tags.big = true, .name = "concat_t129", .kind = AK_CAT, .B = 2, .Te = 129, .Td = 129, .He = 64, .Hd = 64, .A = 64, .lengths = AL_ONE},
    {.tags.big = true, .name = "concat_te1000_td1", .kind = AK_CAT, .B = 4, .Te = 1000, .Td = 1, .He = 128, .Hd = 128, .A = 128, .layout = SW_TRANSPOSED},
};
// clang-format on

/* The arrays of a case in a sweep_set, in this order: enc, dec, dcontext, dweights, the
   parameters w1, w2, v one after the other in one array (when the score has any), [lengths
   (i32 or i64)], and for the backward rows the forward's weights. */
static void attn_io_to_set(const attn_case *c, const attn_io *io, sweep_set *in) {
  memcpy(sweep_add(in, io->dt, an_enc(c)), io->enc, (size_t)an_enc(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, an_dec(c)), io->dec, (size_t)an_dec(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, an_ctx(c)), io->dctx, (size_t)an_ctx(c) * sizeof(double));
  memcpy(sweep_add(in, io->dt, an_wts(c)), io->dwts, (size_t)an_wts(c) * sizeof(double));
  const int64_t nv = attn_has_v(c) ? c->A : 0, np = an_w1(c) + an_w2(c) + nv;
  if (np) {
    double *p = sweep_add(in, io->dt, np);
    if (io->w1) memcpy(p, io->w1, (size_t)an_w1(c) * sizeof(double));
    if (io->w2) memcpy(p + an_w1(c), io->w2, (size_t)an_w2(c) * sizeof(double));
    if (io->v) memcpy(p + an_w1(c) + an_w2(c), io->v, (size_t)nv * sizeof(double));
  }
  if (io->len)
    memcpy(sweep_add(in, c->B % 2 ? DLK_I32 : DLK_I64, c->B), io->len,
           (size_t)c->B * sizeof(double));
}

static attn_io attn_io_of(const attn_case *c, dlk_dtype dt, const sweep_set *in) {
  attn_io io;
  memset(&io, 0, sizeof io);
  io.dt = dt;
  int k = 0;
  io.enc = in->a[k++].v, io.dec = in->a[k++].v, io.dctx = in->a[k++].v, io.dwts = in->a[k++].v;
  if (an_w1(c) || attn_has_v(c)) {
    double *p = in->a[k++].v;
    if (an_w1(c)) io.w1 = p;
    if (an_w2(c)) io.w2 = p + an_w1(c);
    if (attn_has_v(c)) io.v = p + an_w1(c) + an_w2(c);
  }
  if (c->lengths) io.len = in->a[k++].v;
  if (k < in->n) io.weights = in->a[k++].v;
  return io;
}

static void attn_gen_fwd(const void *cv, dlk_dtype dt, sweep_set *in) {
  attn_io io;
  attn_gen(cv, dt, 0, &io);
  attn_io_to_set(cv, &io, in);
  attn_io_free(&io);
}

/* The backward's inputs add the forward's weights, from the naive computation, rounded to
   the dtype: every variant gets the same, as a training step would. */
static void attn_gen_bwd(const void *cv, dlk_dtype dt, sweep_set *in) {
  const attn_case *c = cv;
  attn_gen_fwd(c, dt, in);
  attn_io io = attn_io_of(c, dt, in);
  attn_res r;
  attn_naive(c, &io, 0, &r);
  double *w = sweep_add(in, dt, an_wts(c));
  for (int64_t i = 0; i < an_wts(c); i++) w[i] = round_to(dt, r.wts[i]);
  attn_res_free(&r);
}

static dlk_status attn_fwd_row(dlk_context *ctx, const void *cv, dlk_dtype dt, const sweep_set *in,
                               sweep_set *out) {
  const attn_io io = attn_io_of(cv, dt, in);
  return attn_run_fwd(ctx, cv, &io, out);
}

static dlk_status attn_bwd_row(dlk_context *ctx, const void *cv, dlk_dtype dt, const sweep_set *in,
                               sweep_set *out) {
  const attn_io io = attn_io_of(cv, dt, in);
  return attn_run_bwd(ctx, cv, &io, AW_ALL, out);
}

static void attn_naive_fwd_row(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const attn_case *c = cv;
  const attn_io io = attn_io_of(c, dt, in);
  attn_res r;
  attn_naive(c, &io, 0, &r);
  memcpy(sweep_add(ref, dt, an_ctx(c)), r.ctx, (size_t)an_ctx(c) * sizeof(double));
  memcpy(sweep_add(ref, dt, an_wts(c)), r.wts, (size_t)an_wts(c) * sizeof(double));
  attn_res_free(&r);
}

static void attn_naive_bwd_row(const void *cv, dlk_dtype dt, const sweep_set *in, sweep_set *ref) {
  const attn_case *c = cv;
  const attn_io io = attn_io_of(c, dt, in);
  attn_res r;
  attn_naive(c, &io, 1, &r);
  memcpy(sweep_add(ref, dt, an_enc(c)), r.denc, (size_t)an_enc(c) * sizeof(double));
  memcpy(sweep_add(ref, dt, an_dec(c)), r.ddec, (size_t)an_dec(c) * sizeof(double));
  if (r.dw1) memcpy(sweep_add(ref, dt, an_w1(c)), r.dw1, (size_t)an_w1(c) * sizeof(double));
  if (r.dw2) memcpy(sweep_add(ref, dt, an_w2(c)), r.dw2, (size_t)an_w2(c) * sizeof(double));
  if (r.dv) memcpy(sweep_add(ref, dt, c->A), r.dv, (size_t)c->A * sizeof(double));
  attn_res_free(&r);
}

/* context and weights at the dtype's tolerance, no NaN. */
static int attn_compare_fwd(const char *what, const void *cv, int variant, const sweep_set *got,
                            const sweep_set *ref, int tf32) {
  (void)cv, (void)variant;
  return sweep_compare(what, got, ref, tf32) && no_nan(what, got);
}

/* Gradients with the absolute tolerance scaled by the largest reference value (sums of
   many rounded products), no NaN. */
static int attn_compare_bwd(const char *what, const void *cv, int variant, const sweep_set *got,
                            const sweep_set *ref, int tf32) {
  (void)cv, (void)variant, (void)tf32;
  CHECK(got->n == ref->n, "%s: %d outputs, reference has %d", what, got->n, ref->n);
  if (got->n != ref->n) return 0;
  int ok = 1;
  for (int i = 0; i < ref->n; i++) {
    double atol, rtol;
    t_tolerance(ref->a[i].dt, 0, &atol, &rtol);
    char w[640];
    snprintf(w, sizeof w, "%s: gradient %d", what, i);
    ok = close_scaled(w, got->a[i].v, ref->a[i].v, ref->a[i].n, atol, rtol, 1) && ok;
  }
  return no_nan(what, got) && ok;
}

static const sweep_op ATTN_ROWS[] = {
    {.label = "additive_attn_fwd",
     .op = "additive_attn_fwd",
     SWEEP_CASES(ADD_SWEEP),
     .gen = attn_gen_fwd,
     .run = attn_fwd_row,
     .naive = attn_naive_fwd_row,
     .tunable = 1,
     .compare = attn_compare_fwd},
    {.label = "additive_attn_bwd",
     .op = "additive_attn_bwd",
     SWEEP_CASES(ADD_SWEEP),
     .gen = attn_gen_bwd,
     .run = attn_bwd_row,
     .naive = attn_naive_bwd_row,
     .tunable = 1,
     .compare = attn_compare_bwd},
    {.label = "luong_attn_fwd",
     .op = "luong_attn_fwd",
     SWEEP_CASES(LUONG_SWEEP),
     .gen = attn_gen_fwd,
     .run = attn_fwd_row,
     .naive = attn_naive_fwd_row,
     .tunable = 1,
     .compare = attn_compare_fwd},
    {.label = "luong_attn_bwd",
     .op = "luong_attn_bwd",
     SWEEP_CASES(LUONG_SWEEP),
     .gen = attn_gen_bwd,
     .run = attn_bwd_row,
     .naive = attn_naive_bwd_row,
     .tunable = 1,
     .compare = attn_compare_bwd},
};

/* ---- 4. properties, per variant of the context's device ---- */

/* Force variant id of both directions of the case's op (-1: back to AUTO); false when the
   backward has no such variant (the backward then runs AUTO). */
static void attn_force(dlk_context *ctx, const attn_case *c, int id) {
  const char *f = attn_is_luong(c) ? "luong_attn_fwd" : "additive_attn_fwd";
  const char *b = attn_is_luong(c) ? "luong_attn_bwd" : "additive_attn_bwd";
  CHECK_OK(ctx, dlk_force_variant(ctx, f, id));
  CHECK_OK(ctx, dlk_force_variant(ctx, b, id));
}

/* Steps past the lengths hold NaN: nothing may read them. Weights there and their denc are
   exactly 0, nothing is NaN, everything matches the naive computation; each gradient asked
   alone is the full call's. */
static void test_attn_properties(dlk_context *ctx) {
  // clang-format off
  static const attn_case cases[] = {
      {.name = "additive", .kind = AK_ADD, .B = 3, .Te = 9, .Td = 5, .He = 16, .Hd = 8, .A = 12, .lengths = AL_SOME},
      {.name = "additive_single_step", .kind = AK_ADD, .B = 4, .Te = 33, .Td = 1, .He = 8, .Hd = 8, .A = 16, .lengths = AL_ONE},
      {.name = "dot", .kind = AK_DOT, .B = 3, .Te = 9, .Td = 4, .He = 8, .Hd = 8, .lengths = AL_SOME},
      {.name = "general", .kind = AK_GEN, .B = 2, .Te = 9, .Td = 3, .He = 8, .Hd = 4, .lengths = AL_ONE, .grads = AG_CTX},
      {.name = "concat", .kind = AK_CAT, .B = 3, .Te = 9, .Td = 4, .He = 8, .Hd = 4, .A = 8, .lengths = AL_SOME, .grads = AG_WTS},
  };
  // clang-format on
  dlk_device dev;
  dlk_context_device(ctx, &dev);
  for (int ci = 0; ci < N_OF(cases); ci++) {
    const attn_case *c = &cases[ci];
    const char *fop = attn_is_luong(c) ? "luong_attn_fwd" : "additive_attn_fwd";
    dlk_variant_info fv[32];
    int nf = 0;
    CHECK_OK(ctx, dlk_op_variants(ctx, fop, fv, 32, &nf));
    attn_io io;
    attn_gen(c, DLK_F32, 1, &io);
    attn_res ref;
    attn_naive(c, &io, 0, &ref);
    io.weights = alloc_d(an_wts(c));
    for (int64_t i = 0; i < an_wts(c); i++) io.weights[i] = round_to(DLK_F32, ref.wts[i]);
    attn_res refb;
    attn_naive(c, &io, 1, &refb);
    for (int vi = 0; vi < nf && vi < 32; vi++) {
      if (fv[vi].device != dev.type) continue;
      snprintf(t_case_buf, sizeof t_case_buf, "properties %s: variant %s", c->name, fv[vi].name);
      t_case = t_case_buf;
      attn_force(ctx, c, fv[vi].id);
      sweep_set f = {.n = 0}, g = {.n = 0};
      dlk_status s = attn_run_fwd(ctx, c, &io, &f);
      if (s == DLK_OK) s = attn_run_bwd(ctx, c, &io, AW_ALL, &g);
      if (s == DLK_ERR_NOT_SUPPORTED) {
        printf("  skipped: %s: %s\n", t_case_buf, dlk_context_last_error(ctx));
      } else {
        CHECK(s == DLK_OK, "%s", dlk_context_last_error(ctx));
      }
      if (s == DLK_OK) {
        no_nan(t_case_buf, &f);
        no_nan(t_case_buf, &g);
        double atol, rtol;
        t_tolerance(DLK_F32, 0, &atol, &rtol);
        t_close("context", f.a[0].v, ref.ctx, an_ctx(c), atol, rtol);
        t_close("weights", f.a[1].v, ref.wts, an_wts(c), atol, rtol);
        close_scaled("denc", g.a[0].v, refb.denc, an_enc(c), atol, rtol, 1);
        close_scaled("ddec", g.a[1].v, refb.ddec, an_dec(c), atol, rtol, 1);
        int64_t wrong = 0;
        for (int64_t b = 0; b < c->B; b++)
          for (int64_t j = attn_case_len(c, b); j < c->Te; j++) {
            for (int64_t i = 0; i < c->Td; i++)
              wrong += f.a[1].v[(b * c->Td + i) * c->Te + j] != 0.0;
            for (int64_t k = 0; k < c->He; k++)
              wrong += g.a[0].v[(b * c->Te + j) * c->He + k] != 0.0;
          }
        CHECK(wrong == 0, "%lld weights or denc values past the lengths are not exactly 0",
              (long long)wrong);
        /* each gradient alone: the same values as in the full call */
        for (int bit = 0; bit < 5; bit++) {
          if ((bit == 2 && !an_w1(c)) || (bit == 3 && !an_w2(c)) || (bit == 4 && !attn_has_v(c)))
            continue;
          sweep_set one = {.n = 0};
          dlk_status s1 = attn_run_bwd(ctx, c, &io, 1 << bit, &one);
          CHECK(s1 == DLK_OK && one.n == 1, "gradient %d alone: %s", bit,
                dlk_context_last_error(ctx));
          int k = 0;
          for (int q = 0; q < bit; q++)
            k += q < 2 || (q == 2 && an_w1(c)) || (q == 3 && an_w2(c)) || (q == 4 && attn_has_v(c));
          if (s1 == DLK_OK && one.n == 1 && k < g.n) {
            char w[64];
            snprintf(w, sizeof w, "gradient %d alone", bit);
            close_scaled(w, one.a[0].v, g.a[k].v, one.a[0].n, 1e-6, 1e-6, 1);
          }
          sweep_free(&one);
        }
      }
      sweep_free(&f);
      sweep_free(&g);
    }
    attn_force(ctx, c, -1);
    attn_res_free(&ref);
    attn_res_free(&refb);
    attn_io_free(&io);
  }
}

/* ---- 5. bad input ---- */

/* A valid small problem on the CPU: additive enc [2, 3, 4], dec [2, 2, 3], w_a [4, 5],
   u_a [3, 5], v_a [5]; Luong general w [3, 4], concat w [5, 7] and v [5], dot dec
   [2, 2, 4]; lengths [2]. Every output pre-filled with 0xFF bytes. */
typedef struct attn_bad {
  float enc[24], dec[12], wa[20], ua[15], va[5], wg[12], wc[35], decd[16];
  float ctx[16], wts[12], dctx[16], wts_in[12];
  _Alignas(8) float dwts[12]; /* case 23 views it as f64: aligned, so the dtype is what is refused */
  float denc[24], ddec[16], dwa[20], dua[15], dva[5], dwg[12], dwc[35];
  int32_t len[2];
  dlk_tensor tenc, tdec, twa, tua, tva, twg, twc, tdecd, tlen;
  dlk_tensor tctx, twts, tdctx, tdwts, twts_in, tdenc, tddec, tdwa, tdua, tdva, tdwg, tdwc, tddecd;
} attn_bad;

static void attn_bad_init(attn_bad *s) {
  memset(s, 0, sizeof *s);
  float *ins[] = {s->enc, s->dec, s->wa, s->ua, s->va, s->wg, s->wc, s->decd, s->dctx, s->dwts};
  const size_t nins[] = {24, 12, 20, 15, 5, 12, 35, 16, 16, 12};
  for (int a = 0; a < N_OF(ins); a++)
    for (size_t i = 0; i < nins[a]; i++)
      ins[a][i] = (float)((int)((i * 37 + 11 * a) % 17) - 8) / 16.0f;
  for (int i = 0; i < 12; i++) s->wts_in[i] = 1.0f / 3.0f;
  s->len[0] = 3, s->len[1] = 2;
  float *outs[] = {s->ctx, s->wts, s->denc, s->ddec, s->dwa, s->dua, s->dva, s->dwg, s->dwc};
  const size_t nouts[] = {16, 12, 24, 16, 20, 15, 5, 12, 35};
  for (int a = 0; a < N_OF(outs); a++) memset(outs[a], 0xFF, nouts[a] * sizeof(float));
  const int64_t se[3] = {2, 3, 4}, sd[3] = {2, 2, 3}, swa[2] = {4, 5}, sua[2] = {3, 5}, sv[1] = {5},
                swg[2] = {3, 4}, swc[2] = {5, 7}, sdd[3] = {2, 2, 4}, sl[1] = {2},
                sc[3] = {2, 2, 4}, sw[3] = {2, 2, 3};
  s->tenc = host_tensor(s->enc, DLK_F32, 3, se);
  s->tdec = host_tensor(s->dec, DLK_F32, 3, sd);
  s->twa = host_tensor(s->wa, DLK_F32, 2, swa);
  s->tua = host_tensor(s->ua, DLK_F32, 2, sua);
  s->tva = host_tensor(s->va, DLK_F32, 1, sv);
  s->twg = host_tensor(s->wg, DLK_F32, 2, swg);
  s->twc = host_tensor(s->wc, DLK_F32, 2, swc);
  s->tdecd = host_tensor(s->decd, DLK_F32, 3, sdd);
  s->tlen = host_tensor(s->len, DLK_I32, 1, sl);
  s->tctx = host_tensor(s->ctx, DLK_F32, 3, sc);
  s->twts = host_tensor(s->wts, DLK_F32, 3, sw);
  s->tdctx = host_tensor(s->dctx, DLK_F32, 3, sc);
  s->tdwts = host_tensor(s->dwts, DLK_F32, 3, sw);
  s->twts_in = host_tensor(s->wts_in, DLK_F32, 3, sw);
  s->tdenc = host_tensor(s->denc, DLK_F32, 3, se);
  s->tddec = host_tensor(s->ddec, DLK_F32, 3, sd);
  s->tddecd = host_tensor(s->ddec, DLK_F32, 3, sdd);
  s->tdwa = host_tensor(s->dwa, DLK_F32, 2, swa);
  s->tdua = host_tensor(s->dua, DLK_F32, 2, sua);
  s->tdva = host_tensor(s->dva, DLK_F32, 1, sv);
  s->tdwg = host_tensor(s->dwg, DLK_F32, 2, swg);
  s->tdwc = host_tensor(s->dwc, DLK_F32, 2, swc);
}

static int attn_bad_untouched(const attn_bad *s) {
  const struct {
    const float *p;
    size_t n;
  } o[9] = {{s->ctx, 16}, {s->wts, 12}, {s->denc, 24}, {s->ddec, 16}, {s->dwa, 20},
            {s->dua, 15}, {s->dva, 5},  {s->dwg, 12},  {s->dwc, 35}};
  for (int i = 0; i < 9; i++)
    for (size_t b = 0; b < o[i].n * sizeof(float); b++)
      if (((const unsigned char *)o[i].p)[b] != 0xFF) return 0;
  return 1;
}

/* Which call a bad-input case makes. */
enum { BC_ADD_FWD = 0, BC_ADD_BWD, BC_LUONG_FWD, BC_LUONG_BWD };

static void test_attn_bad_input(dlk_context *ctx) {
  enum { NBAD = 34 };
  int n = 0;
  for (int id = 0; id < NBAD; id++) {
    attn_bad *s = malloc(sizeof *s);
    attn_bad_init(s);
    dlk_status want = DLK_ERR_SHAPE_MISMATCH;
    const char *name = "", *msg = "";
    int call = BC_ADD_FWD;
    dlk_luong_attention_params lp = {DLK_LUONG_GENERAL};
    const dlk_luong_attention_params *lpp = &lp;
    /* the arguments, valid by default (Luong: general) */
    dlk_tensor *enc = &s->tenc, *dec = &s->tdec, *w_a = &s->twa, *u_a = &s->tua, *v_a = &s->tva;
    dlk_tensor *lw = &s->twg, *lv = NULL, *len = &s->tlen, *context = &s->tctx, *weights = &s->twts;
    dlk_tensor *wts_in = &s->twts_in, *dctx = &s->tdctx, *dwts = &s->tdwts;
    dlk_tensor *denc = &s->tdenc, *ddec = &s->tddec, *dwa = &s->tdwa, *dua = &s->tdua,
               *dva = &s->tdva;
    dlk_tensor *dlw = &s->tdwg, *dlv = NULL;
    float other[8] = {0};
    switch (id) {
      case 0:
        name = "enc 2-D";
        s->tenc.ndim = 2;
        msg = "enc has 2 dims";
        break;
      case 1:
        name = "dec of another B";
        s->tdec.shape[0] = 1;
        msg = "dec has 1 in dim 0 (B)";
        break;
      case 2:
        name = "w_a of another He";
        s->twa.shape[0] = 3;
        s->twa.shape[1] = 5;
        msg = "w_a has 3 in dim 0 (He)";
        break;
      case 3:
        name = "u_a of another A";
        s->tua.shape[1] = 4;
        msg = "u_a has 4 in dim 1 (A)";
        break;
      case 4:
        name = "v_a of 4";
        s->tva.shape[0] = 4;
        msg = "v_a has 4 elements";
        break;
      case 5:
        name = "enc_lengths 0";
        s->len[1] = 0;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "enc_lengths[1] = 0";
        break;
      case 6:
        name = "enc_lengths > Te";
        s->len[0] = 4;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "enc_lengths[0] = 4";
        break;
      case 7:
        name = "enc_lengths f32";
        s->tlen.dtype = DLK_F32;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "enc_lengths is f32";
        break;
      case 8:
        name = "enc_lengths of 3";
        s->tlen.shape[0] = 3;
        s->tlen.data = other;
        msg = "enc_lengths";
        break;
      case 9:
        name = "dec f16";
        s->tdec.dtype = DLK_F16;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "dec is f16";
        break;
      case 10:
        name = "w_a on another device";
        s->twa.device = (dlk_device){DLK_CUDA, 0};
        want = DLK_ERR_DEVICE_MISMATCH;
        msg = "w_a is on cuda";
        break;
      case 11:
        name = "context of another He";
        s->tctx.shape[2] = 3;
        msg = "context has 3 in dim 2 (He)";
        break;
      case 12:
        name = "weights of another Te";
        s->twts.shape[2] = 2;
        msg = "weights has 2 in dim 2 (Te)";
        break;
      case 13:
        name = "context overlaps enc";
        s->tctx.data = s->enc;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "context and enc overlap";
        break;
      case 14:
        name = "weights with overlapping elements";
        s->twts.strides[1] = 0;
        want = DLK_ERR_LAYOUT;
        msg = "output weights has overlapping";
        break;
      case 15:
        name = "NULL context";
        context = NULL;
        want = DLK_ERR_NULL_POINTER;
        msg = "context is NULL";
        break;
      case 16:
        name = "Te 0";
        s->tenc.shape[1] = 0;
        msg = "(Te)";
        break;
      case 17:
        name = "no upstream gradient";
        call = BC_ADD_BWD;
        dctx = dwts = NULL;
        want = DLK_ERR_NULL_POINTER;
        msg = "dcontext and dweights are both NULL";
        break;
      case 18:
        name = "NULL weights";
        call = BC_ADD_BWD;
        wts_in = NULL;
        want = DLK_ERR_NULL_POINTER;
        msg = "weights is NULL";
        break;
      case 19:
        name = "dcontext of another Td";
        call = BC_ADD_BWD;
        s->tdctx.shape[1] = 1;
        msg = "dcontext has 1 in dim 1 (Td)";
        break;
      case 20:
        name = "du_a of w_a's shape";
        call = BC_ADD_BWD;
        s->tdua.shape[0] = 4;
        msg = "du_a has 4 in dim 0";
        break;
      case 21:
        name = "ddec overlaps denc";
        call = BC_ADD_BWD;
        s->tddec.data = s->denc;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "ddec and denc overlap";
        break;
      case 22:
        name = "enc_lengths 0 (backward)";
        call = BC_ADD_BWD;
        s->len[0] = 0;
        want = DLK_ERR_OUT_OF_RANGE;
        msg = "enc_lengths[0] = 0";
        break;
      case 23:
        name = "dweights f64";
        call = BC_ADD_BWD;
        s->tdwts.dtype = DLK_F64;
        want = DLK_ERR_DTYPE_MISMATCH;
        msg = "dweights is f64";
        break;
      case 24:
        name = "Luong score 7";
        call = BC_LUONG_FWD;
        lp.score = (dlk_luong_score)7;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "score 7";
        break;
      case 25:
        name = "dot with a w";
        call = BC_LUONG_FWD;
        lp.score = DLK_LUONG_DOT;
        dec = &s->tdecd;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "w is given but the dot score has no w";
        break;
      case 26:
        name = "dot with Hd != He";
        call = BC_LUONG_FWD;
        lpp = NULL;
        lw = NULL;
        msg = "needs Hd = He";
        break;
      case 27:
        name = "general without w";
        call = BC_LUONG_FWD;
        lw = NULL;
        want = DLK_ERR_NULL_POINTER;
        msg = "w is NULL";
        break;
      case 28:
        name = "general w transposed";
        call = BC_LUONG_FWD;
        s->twg.shape[0] = 4, s->twg.shape[1] = 3;
        msg = "w has 4 in dim 0 (Hd)";
        break;
      case 29:
        name = "general with a v";
        call = BC_LUONG_FWD;
        lv = &s->tva;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "v is given but the general score has no v";
        break;
      case 30:
        name = "concat w of 6 columns";
        call = BC_LUONG_FWD;
        lp.score = DLK_LUONG_CONCAT;
        lw = &s->twc;
        lv = &s->tva;
        s->twc.shape[1] = 6;
        msg = "w has 6 in dim 1 (Hd + He)";
        break;
      case 31:
        name = "concat without v";
        call = BC_LUONG_FWD;
        lp.score = DLK_LUONG_CONCAT;
        lw = &s->twc;
        want = DLK_ERR_NULL_POINTER;
        msg = "v is NULL";
        break;
      case 32:
        name = "dv of a general score";
        call = BC_LUONG_BWD;
        dlv = &s->tdva;
        want = DLK_ERR_INVALID_ARGUMENT;
        msg = "dv is given but v is NULL";
        break;
      case 33:
        name = "concat dw of w_g's shape";
        call = BC_LUONG_BWD;
        lp.score = DLK_LUONG_CONCAT;
        lw = &s->twc;
        lv = &s->tva;
        dlv = &s->tdva;
        msg = "dw has 3 in dim 0";
        break;
    }
    snprintf(t_case_buf, sizeof t_case_buf, "bad input: %s", name);
    t_case = t_case_buf;
    dlk_status st = DLK_OK;
    const char *fn = "";
    switch (call) {
      case BC_ADD_FWD:
        fn = "additive_attention_forward";
        st = dlk_additive_attention_forward(ctx, enc, dec, w_a, u_a, v_a, len, context, weights);
        break;
      case BC_ADD_BWD:
        fn = "additive_attention_backward";
        st = dlk_additive_attention_backward(ctx, enc, dec, w_a, u_a, v_a, len, wts_in, dctx, dwts,
                                             denc, ddec, dwa, dua, dva);
        break;
      case BC_LUONG_FWD:
        fn = "luong_attention_forward";
        st = dlk_luong_attention_forward(ctx, lpp, enc, dec, lw, lv, len, context, weights);
        break;
      case BC_LUONG_BWD:
        fn = "luong_attention_backward";
        st = dlk_luong_attention_backward(ctx, lpp, enc, dec, lw, lv, len, wts_in, dctx, dwts, denc,
                                          ddec, dlw, dlv);
        break;
    }
    const char *err = dlk_context_last_error(ctx);
    CHECK(st == want, "got %s, expected %s: %s", dlk_status_string(st), dlk_status_string(want),
          err);
    CHECK(strstr(err, fn) != NULL, "message does not name %s: %s", fn, err);
    CHECK(strstr(err, msg) != NULL, "message does not say \"%s\": %s", msg, err);
    CHECK(attn_bad_untouched(s), "an output was written by the refused call");
    n++;
    free(s);
  }
  /* the context still works afterwards, and the valid calls of the table succeed */
  t_case = "bad input: afterwards";
  attn_bad *s = malloc(sizeof *s);
  attn_bad_init(s);
  const dlk_luong_attention_params gp = {DLK_LUONG_GENERAL}, cp = {DLK_LUONG_CONCAT};
  CHECK_OK(ctx, dlk_additive_attention_forward(ctx, &s->tenc, &s->tdec, &s->twa, &s->tua, &s->tva,
                                               &s->tlen, &s->tctx, &s->twts));
  CHECK_OK(ctx, dlk_additive_attention_backward(ctx, &s->tenc, &s->tdec, &s->twa, &s->tua, &s->tva,
                                                &s->tlen, &s->twts_in, &s->tdctx, NULL, &s->tdenc,
                                                &s->tddec, &s->tdwa, &s->tdua, &s->tdva));
  CHECK_OK(ctx, dlk_luong_attention_forward(ctx, &gp, &s->tenc, &s->tdec, &s->twg, NULL, &s->tlen,
                                            &s->tctx, &s->twts));
  CHECK_OK(ctx, dlk_luong_attention_backward(ctx, &cp, &s->tenc, &s->tdec, &s->twc, &s->tva, NULL,
                                             &s->twts_in, NULL, &s->tdwts, &s->tdenc, &s->tddec,
                                             &s->tdwc, &s->tdva));
  CHECK_OK(ctx, dlk_luong_attention_forward(ctx, NULL, &s->tenc, &s->tdecd, NULL, NULL, &s->tlen,
                                            &s->tctx, &s->twts));
  /* nothing asked: DLK_OK, nothing written */
  memset(s->denc, 0xFF, sizeof s->denc);
  CHECK_OK(ctx, dlk_additive_attention_backward(ctx, &s->tenc, &s->tdec, &s->twa, &s->tua, &s->tva,
                                                NULL, &s->twts_in, &s->tdctx, NULL, NULL, NULL,
                                                NULL, NULL, NULL));
  free(s);
  printf("bad input: %d additive/Luong cases refused with the right status and message\n", n);
}

/* The CPU run and the GPU run of this section. */
static void test_attn_cpu(dlk_context *ctx) {
  test_attn_golden(ctx);
  test_attn_fd(ctx);
  sweep_run(ctx, NULL, ATTN_ROWS, N_OF(ATTN_ROWS), 0);
  dlk_context *ref = t_cpu_context();
  sweep_run(ctx, ref, ATTN_ROWS, N_OF(ATTN_ROWS), 1);
  dlk_context_destroy(ref);
  test_attn_properties(ctx);
  test_attn_bad_input(ctx);
}

static void test_attn_gpu(dlk_context *g, dlk_context *cpu) {
  sweep_run(g, cpu, ATTN_ROWS, N_OF(ATTN_ROWS), quick_mode);
  test_attn_properties(g);
}

/* ====================================================================================== */

int main(int argc, char **argv) {
  if (sweep_list_ops(argc, argv, SDPA_ROWS, N_OF(SDPA_ROWS)) |
      sweep_list_ops(argc, argv, ATTN_ROWS, N_OF(ATTN_ROWS)))
    return 0;
  quick_mode = t_quick_mode();
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_attention");
    dlk_context *cpu = t_cpu_context();
    /* ---- scaled-dot-product attention ---- */
    sweep_run(g, cpu, SDPA_ROWS, N_OF(SDPA_ROWS), quick_mode);
    test_masked_rows(g);
    test_gpu_bad_lengths(g);
    test_explain(g);
    /* ---- additive (Bahdanau) and Luong attention ---- */
    test_attn_gpu(g, cpu);
    dlk_context_destroy(cpu);
    dlk_context_destroy(g);
    return t_summary("test_attention --gpu");
  }
  dlk_context *ctx = t_cpu_context();
  /* ---- scaled-dot-product attention ---- */
  test_golden(ctx);
  test_fd(ctx);
  sweep_run(ctx, NULL, SDPA_ROWS, N_OF(SDPA_ROWS), 0);
  /* the GPU run's path (reference through a second context) on the quick subset */
  dlk_context *ref = t_cpu_context();
  sweep_run(ctx, ref, SDPA_ROWS, N_OF(SDPA_ROWS), 1);
  dlk_context_destroy(ref);
  test_masked_rows(ctx);
  test_gpu_bad_lengths(ctx);
  test_bad_input(ctx);
  test_hostile(ctx);
  test_explain(ctx);
#if DLK_HAVE_CUDNN
  test_cudnn_graphs(ctx);
#endif
  /* ---- additive (Bahdanau) and Luong attention ---- */
  test_attn_cpu(ctx);
  dlk_context_destroy(ctx);
  return t_summary("test_attention");
}
