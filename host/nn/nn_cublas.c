/*
 * nn family: the vendor gemm rows of host/nn/nn.c's gemm table. 10 "cublas":
 * cublasGemmStridedBatchedEx; 11 "cublaslt":
 * cublasLtMatmul with the fused BIAS epilogue. Its RELU / RELU_BIAS epilogues are not used:
 * cuBLASLt documents them as max(x, 0), which need not keep NaN, and dlk's relu keeps NaN
 * like torch.relu on every variant, so relu runs in dlk's epilogue kernel instead.
 *
 * Row-major to column-major: cuBLAS computes a column-major D = op(P) op(Q). When c has a
 * unit column stride (row-major C) we compute C^T = B^T A^T: D = C^T (N x M, ld = c's row
 * stride), P = B^T, Q = A^T; when c has a unit row stride, C = A B directly. Each operand
 * then needs a unit stride in one of its two dims (op N or T) and a leading stride >= its
 * rows; batches need uniform strides (0 for a shared operand).
 *
 * Numerics: f16/bf16 use CUBLAS_COMPUTE_32F (f32 accumulation); f32 uses
 * CUBLAS_COMPUTE_32F_FAST_TF32 only when ctx->opts.allow_tf32, else CUBLAS_COMPUTE_32F with
 * the handle's math mode set to CUBLAS_DEFAULT_MATH for the call (restored after), so no
 * TF32 sneaks in; f64 uses CUBLAS_COMPUTE_64F. Whatever the library does not fuse (bias,
 * z, activations other than relu) runs in one elementwise kernel (dlk_k_gemm_epilogue)
 * that reads back c: c is then rounded to its dtype before bias and activation (a second
 * rounding for f16/bf16, within their tolerance). Both libraries are deterministic on one
 * stream with a fixed workspace.
 */
#include "nn.h"

/* Every host .c file is compiled in every build: a build without CUDA gets an empty file. */
#if DLK_HAVE_CUDA
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "../../kernels/nn/nn.h"
#include "../cublas/handle.h"

/* ---- the column-major plan shared by both rows ---- */

typedef struct cm_operand {
  cublasOperation_t op;
  int64_t ld;   /* leading dimension of the stored (column-major) matrix */
  int64_t rows; /* rows of the stored matrix (before op) */
  int64_t cols;
  int64_t bstride;
  const void *data;
} cm_operand;

typedef struct cm_plan {
  int64_t m, n, k, batch; /* D is m x n, column-major */
  cm_operand p, q;        /* D = op(p) op(q) */
  int64_t ldd, dstride;
  bool row_major_c; /* D = C^T: bias runs along D's rows */
} cm_plan;

/* Describe the logical r x c matrix X (strides sr, sc) as op(S) for a column-major S.
   false when X has no unit stride in either dim (or a leading stride too small). */
static bool as_colmajor(int64_t r, int64_t c, int64_t sr, int64_t sc, cm_operand *o) {
  if (sr == 1 || r <= 1) {
    int64_t ld = c <= 1 ? (r > 1 ? r : 1) : sc;
    if (ld >= (r > 1 ? r : 1)) {
      o->op = CUBLAS_OP_N;
      o->ld = ld;
      o->rows = r;
      o->cols = c;
      return true;
    }
  }
  if (sc == 1 || c <= 1) {
    int64_t ld = r <= 1 ? (c > 1 ? c : 1) : sr;
    if (ld >= (c > 1 ? c : 1)) {
      o->op = CUBLAS_OP_T;
      o->ld = ld;
      o->rows = c;
      o->cols = r;
      return true;
    }
  }
  return false;
}

static bool fits_int(int64_t v) {
  return v >= 0 && v <= INT32_MAX;
}

static bool make_plan(const dlk_gemm_args *g, cm_plan *pl, char *why, size_t n) {
  const dlk_tensor *a = &g->a, *b = &g->bmat, *c = &g->c;
  const int64_t B = c->shape[0], M = c->shape[1], N = c->shape[2], K = a->shape[2];
  memset(pl, 0, sizeof *pl);
  pl->batch = B;
  pl->k = K;
  bool ok_p, ok_q;
  /* D's leading dimension: the stride between D's columns (free when there is one). */
  const int64_t ld_row = M <= 1 ? (N > 1 ? N : 1) : c->strides[1];
  const int64_t ld_col = N <= 1 ? (M > 1 ? M : 1) : c->strides[2];
  if ((c->strides[2] == 1 || N <= 1) && ld_row >= (N > 1 ? N : 1)) {
    /* C^T (N x M) = B^T (N x K) A^T (K x M) */
    pl->row_major_c = true;
    pl->m = N;
    pl->n = M;
    pl->ldd = ld_row;
    ok_p = as_colmajor(N, K, b->strides[2], b->strides[1], &pl->p);
    ok_q = as_colmajor(K, M, a->strides[2], a->strides[1], &pl->q);
    pl->p.bstride = b->strides[0];
    pl->p.data = b->data;
    pl->q.bstride = a->strides[0];
    pl->q.data = a->data;
  } else if ((c->strides[1] == 1 || M <= 1) && ld_col >= (M > 1 ? M : 1)) {
    /* C (M x N) = A (M x K) B (K x N) */
    pl->m = M;
    pl->n = N;
    pl->ldd = ld_col;
    ok_p = as_colmajor(M, K, a->strides[1], a->strides[2], &pl->p);
    ok_q = as_colmajor(K, N, b->strides[1], b->strides[2], &pl->q);
    pl->p.bstride = a->strides[0];
    pl->p.data = a->data;
    pl->q.bstride = b->strides[0];
    pl->q.data = b->data;
  } else {
    snprintf(why, n,
             "c has no unit stride, or a leading stride below its rows (strides %lld, %lld)",
             (long long)c->strides[1], (long long)c->strides[2]);
    return false;
  }
  pl->dstride = c->strides[0];
  if (!ok_p || !ok_q) {
    bool a_bad = pl->row_major_c ? !ok_q : !ok_p;
    const dlk_tensor *t = a_bad ? a : b;
    snprintf(why, n,
             "%s has no unit stride or a leading stride below its rows (strides %lld, %lld)",
             a_bad ? "a" : "b", (long long)t->strides[1], (long long)t->strides[2]);
    return false;
  }
  if (B > 1 && (pl->p.bstride < 0 || pl->q.bstride < 0 || pl->dstride <= 0)) {
    snprintf(why, n, "batch strides a %lld, b %lld, c %lld: negative, or c not advancing",
             (long long)a->strides[0], (long long)b->strides[0], (long long)c->strides[0]);
    return false;
  }
  if (!fits_int(pl->m) || !fits_int(pl->n) || !fits_int(pl->k) || !fits_int(B) ||
      !fits_int(pl->p.ld) || !fits_int(pl->q.ld) || !fits_int(pl->ldd)) {
    snprintf(why, n, "a size or leading dimension exceeds 2^31 - 1 (32-bit cuBLAS API)");
    return false;
  }
  return true;
}

static cudaDataType_t cuda_type(dlk_dtype t) {
  switch (t) {
    case DLK_F16: return CUDA_R_16F;
    case DLK_BF16: return CUDA_R_16BF;
    case DLK_F64: return CUDA_R_64F;
    default: return CUDA_R_32F;
  }
}

static cublasComputeType_t compute_type(const dlk_context *ctx, dlk_dtype t) {
  if (t == DLK_F64) return CUBLAS_COMPUTE_64F;
  if (t == DLK_F32 && ctx->opts.allow_tf32) return CUBLAS_COMPUTE_32F_FAST_TF32;
  return CUBLAS_COMPUTE_32F;
}

/* Both rows (impl unused): cuBLAS and cuBLASLt take the same operands. */
bool dlk_gemm_cublas_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                              size_t n) {
  (void)ctx, (void)impl;
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
  dlk_dtype t = g->c.dtype;
  if (t != DLK_F32 && t != DLK_F16 && t != DLK_BF16 && t != DLK_F64) {
    snprintf(why, n, "c dtype %s is not a float dtype", dlk_dtype_name(t));
    return false;
  }
  const dlk_tensor *ts[4] = {&g->a, &g->bmat, g->has_bias ? &g->bias : NULL,
                             g->has_z ? &g->z : NULL};
  const char *names[4] = {"a", "b", "bias", "z"};
  for (int i = 0; i < 4; i++) {
    if (ts[i] && ts[i]->dtype != t) {
      snprintf(why, n, "%s is %s, c is %s", names[i], dlk_dtype_name(ts[i]->dtype),
               dlk_dtype_name(t));
      return false;
    }
  }
  if (g->a.shape[2] == 0) {
    /* cuBLAS scales C by beta for k = 0, cuBLASLt may refuse it: leave it to naive/tiled */
    snprintf(why, n, "k = 0: nothing to multiply (naive and tiled handle it)");
    return false;
  }
  cm_plan pl;
  return make_plan(g, &pl, why, n);
}

/* The elementwise epilogue over c after the library's gemm. */
static dlk_status run_epilogue(dlk_context *ctx, const dlk_gemm_args *g, int add_bias) {
  dlk_k_gemm_desc d;
  memset(&d, 0, sizeof d);
  d.dtype = (int)g->c.dtype;
  d.act = (int)g->act;
  d.c = (dlk_k_mat){g->c.data,       g->c.shape[0],   g->c.shape[1],  g->c.shape[2],
                    g->c.strides[0], g->c.strides[1], g->c.strides[2]};
  if (g->has_z)
    d.z = (dlk_k_mat){g->z.data,       g->z.shape[0],   g->z.shape[1],  g->z.shape[2],
                      g->z.strides[0], g->z.strides[1], g->z.strides[2]};
  if (g->has_bias) d.bias = (dlk_k_vec){g->bias.data, g->bias.shape[0], g->bias.strides[0]};
  d.add_bias = add_bias;
  DLK_CUDA_TRY(ctx, dlk_k_gemm_epilogue(&d, ctx->stream));
  return DLK_OK;
}

static bool needs_epilogue(const dlk_gemm_args *g) {
  return g->has_bias || g->has_z || g->act != DLK_ACT_NONE;
}

/* ======================================================================================
   10 cublas
   ====================================================================================== */

dlk_status dlk_gemm_cublas_run(dlk_context *ctx, const void *args, int impl, void *ws,
                               size_t ws_bytes) {
  (void)impl, (void)ws, (void)ws_bytes;
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
  char why[256];
  cm_plan pl;
  if (!make_plan(g, &pl, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "gemm/cublas: %s", why);
  if (pl.m == 0 || pl.n == 0 || pl.batch == 0) return DLK_OK;
  void *hv;
  DLK_TRY(dlk_cublas_handle(ctx, &hv));
  cublasHandle_t h = (cublasHandle_t)hv; /* bound to ctx->stream by dlk_cublas_handle */
  const dlk_dtype t = g->c.dtype;
  const cudaDataType_t ct = cuda_type(t);
  const double alpha_d = g->alpha, beta_d = g->beta;
  const float alpha_f = (float)g->alpha, beta_f = (float)g->beta;
  const void *alpha = t == DLK_F64 ? (const void *)&alpha_d : (const void *)&alpha_f;
  const void *beta = t == DLK_F64 ? (const void *)&beta_d : (const void *)&beta_f;

  cublasMath_t old_mode;
  DLK_CUBLAS_TRY(ctx, cublasGetMathMode(h, &old_mode));
  DLK_CUBLAS_TRY(ctx, cublasSetMathMode(h, ctx->opts.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                : CUBLAS_DEFAULT_MATH));
  cublasStatus_t st = cublasGemmStridedBatchedEx(
      h, pl.p.op, pl.q.op, (int)pl.m, (int)pl.n, (int)pl.k, alpha, pl.p.data, ct, (int)pl.p.ld,
      (long long)pl.p.bstride, pl.q.data, ct, (int)pl.q.ld, (long long)pl.q.bstride, beta,
      g->c.data, ct, (int)pl.ldd, (long long)pl.dstride, (int)pl.batch, compute_type(ctx, t),
      CUBLAS_GEMM_DEFAULT);
  cublasStatus_t restore = cublasSetMathMode(h, old_mode);
  DLK_CUBLAS_TRY(ctx, st);
  DLK_CUBLAS_TRY(ctx, restore);
  if (needs_epilogue(g)) DLK_TRY(run_epilogue(ctx, g, 1));
  return DLK_OK;
}

/* ======================================================================================
   11 cublaslt, with a small per-context set of plans (one entry of the plan cache)
   ====================================================================================== */

/* Everything that changes the descriptors or the heuristic's answer. Pointer alignments
   are part of it because the heuristic picks kernels by them. */
typedef struct lt_key {
  int dtype, compute, opp, opq, epilogue;
  int64_t m, n, k, batch, ldp, ldq, ldd, sp, sq, sd;
  int align_p, align_q, align_d, align_bias;
  size_t ws;
} lt_key;

typedef struct lt_plan {
  bool used;
  lt_key key;
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t lp, lq, ld;
  cublasLtMatmulAlgo_t algo;
} lt_plan;

#define LT_PLANS 16
typedef struct lt_cache {
  lt_plan plans[LT_PLANS];
  int next; /* round-robin victim */
} lt_cache;

/* Destroy calls on a cleanup path: their status cannot change what the caller sees. */
static void plan_destroy(lt_plan *p) {
  if (!p->used) return;
  if (p->op) cublasLtMatmulDescDestroy(p->op);
  if (p->lp) cublasLtMatrixLayoutDestroy(p->lp);
  if (p->lq) cublasLtMatrixLayoutDestroy(p->lq);
  if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
  memset(p, 0, sizeof *p);
}

/* The plan cache's destroy function for the whole set. */
static void lt_cache_free(void *p) {
  lt_cache *c = (lt_cache *)p;
  for (int i = 0; i < LT_PLANS; i++) plan_destroy(&c->plans[i]);
  free(c);
}

static int alignment(const void *p) {
  uintptr_t v = (uintptr_t)p;
  if (v % 16 == 0) return 16;
  if (v % 8 == 0) return 8;
  if (v % 4 == 0) return 4;
  return v % 2 == 0 ? 2 : 1;
}

static dlk_status make_layout(dlk_context *ctx, cublasLtMatrixLayout_t *l, cudaDataType_t t,
                              int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                              int64_t stride) {
  DLK_CUBLAS_TRY(ctx, cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, ld));
  if (batch > 1) {
    int32_t bc = (int32_t)batch;
    DLK_CUBLAS_TRY(ctx, cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                         &bc, sizeof bc));
    DLK_CUBLAS_TRY(ctx,
                   cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                    &stride, sizeof stride));
  }
  return DLK_OK;
}

/* Build descriptors and ask the heuristic for one algorithm. DLK_ERR_NOT_SUPPORTED (no
   message) when the heuristic has none for this epilogue. On any failure the plan is
   left destroyed. */
static dlk_status plan_build(dlk_context *ctx, cublasLtHandle_t h, const lt_key *k,
                             const cm_plan *pl, const void *bias, lt_plan *out) {
  memset(out, 0, sizeof *out);
  out->used = true;
  out->key = *k;
  const cudaDataType_t ct = cuda_type((dlk_dtype)k->dtype);
  const cudaDataType_t scale = k->dtype == DLK_F64 ? CUDA_R_64F : CUDA_R_32F;
  dlk_status s = DLK_OK;
  cublasLtMatmulPreference_t pref = NULL;
#define LT_TRY(call)                                                   \
  do {                                                                 \
    s = dlk_check_cublas(ctx, (int)(call), __FILE__, __LINE__, #call); \
    if (s != DLK_OK) goto fail;                                        \
  } while (0)
  LT_TRY(cublasLtMatmulDescCreate(&out->op, (cublasComputeType_t)k->compute, scale));
  {
    int32_t ta = k->opp, tb = k->opq;
    uint32_t epi = (uint32_t)k->epilogue;
    LT_TRY(cublasLtMatmulDescSetAttribute(out->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_TRY(cublasLtMatmulDescSetAttribute(out->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    LT_TRY(
        cublasLtMatmulDescSetAttribute(out->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (k->epilogue & CUBLASLT_EPILOGUE_BIAS)
      LT_TRY(cublasLtMatmulDescSetAttribute(out->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                            sizeof bias));
  }
  s = make_layout(ctx, &out->lp, ct, pl->p.rows, pl->p.cols, pl->p.ld, pl->batch, pl->p.bstride);
  if (s != DLK_OK) goto fail;
  s = make_layout(ctx, &out->lq, ct, pl->q.rows, pl->q.cols, pl->q.ld, pl->batch, pl->q.bstride);
  if (s != DLK_OK) goto fail;
  s = make_layout(ctx, &out->ld, ct, pl->m, pl->n, pl->ldd, pl->batch, pl->dstride);
  if (s != DLK_OK) goto fail;
  LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
  {
    uint64_t wsb = k->ws;
    uint32_t ap = (uint32_t)k->align_p, aq = (uint32_t)k->align_q, ad = (uint32_t)k->align_d;
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &wsb, sizeof wsb));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                &ap, sizeof ap));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                &aq, sizeof aq));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                &ad, sizeof ad));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                &ad, sizeof ad));
  }
  {
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(h, out->op, out->lp, out->lq, out->ld,
                                                       out->ld, pref, 1, &res, &found);
    if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found == 0)) {
      s = DLK_ERR_NOT_SUPPORTED;
      goto fail;
    }
    LT_TRY(hs);
    out->algo = res.algo;
  }
  cublasLtMatmulPreferenceDestroy(pref);
  return DLK_OK;
fail:
#undef LT_TRY
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  plan_destroy(out);
  return s;
}

/* The cached plan for key k, building it on a miss (one heuristic query per new shape;
   the cache holds LT_PLANS plans, replaced round-robin). */
static dlk_status plan_get(dlk_context *ctx, cublasLtHandle_t h, const lt_key *k, const cm_plan *pl,
                           const void *bias, lt_plan **out) {
  void *cached;
  DLK_TRY(dlk_plan_cache_get(ctx, "cublaslt/plans", &cached));
  lt_cache *c = (lt_cache *)cached;
  if (!c) {
    c = (lt_cache *)calloc(1, sizeof *c);
    if (!c)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY,
                      "gemm/cublaslt: out of memory for the plan cache");
    DLK_TRY(dlk_plan_cache_put(ctx, "cublaslt/plans", c, lt_cache_free));
  }
  for (int i = 0; i < LT_PLANS; i++) {
    if (c->plans[i].used && memcmp(&c->plans[i].key, k, sizeof *k) == 0) {
      *out = &c->plans[i];
      return DLK_OK;
    }
  }
  lt_plan *slot = &c->plans[c->next];
  c->next = (c->next + 1) % LT_PLANS;
  plan_destroy(slot);
  DLK_TRY(plan_build(ctx, h, k, pl, bias, slot));
  *out = slot;
  return DLK_OK;
}

/* Workspace: 32 MiB (cuBLASLt's recommendation for Hopper), or the cap when smaller
   (cuBLASLt then picks algorithms that fit; 0 is allowed). */
#define LT_WORKSPACE ((size_t)32 << 20)
size_t dlk_gemm_cublaslt_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)args, (void)impl;
  size_t cap = ctx->opts.workspace_limit;
  return cap && cap < LT_WORKSPACE ? cap : LT_WORKSPACE;
}

dlk_status dlk_gemm_cublaslt_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                 size_t ws_bytes) {
  (void)impl;
  const dlk_gemm_args *g = (const dlk_gemm_args *)args;
  char why[256];
  cm_plan pl;
  if (!make_plan(g, &pl, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "gemm/cublaslt: %s", why);
  if (pl.m == 0 || pl.n == 0 || pl.batch == 0) return DLK_OK;
  void *hv;
  DLK_TRY(dlk_cublaslt_handle(ctx, &hv));
  cublasLtHandle_t h = (cublasLtHandle_t)hv;
  const dlk_dtype t = g->c.dtype;

  /* Fused epilogue: bias along D's rows (row-major c), contiguous, not f64. Relu is not
     fused (NaN, see the top of the file). The rest goes to the elementwise kernel. */
  const bool fuse_bias = g->has_bias && pl.row_major_c && t != DLK_F64 && g->bias.strides[0] == 1;
  const int epi = fuse_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  lt_key k;
  memset(&k, 0, sizeof k); /* padding too: keys are compared with memcmp */
  k.dtype = (int)t;
  k.compute = (int)compute_type(ctx, t);
  k.opp = (int)pl.p.op;
  k.opq = (int)pl.q.op;
  k.m = pl.m;
  k.n = pl.n;
  k.k = pl.k;
  k.batch = pl.batch;
  k.ldp = pl.p.ld;
  k.ldq = pl.q.ld;
  k.ldd = pl.ldd;
  k.sp = pl.p.bstride;
  k.sq = pl.q.bstride;
  k.sd = pl.dstride;
  k.align_p = alignment(pl.p.data);
  k.align_q = alignment(pl.q.data);
  k.align_d = alignment(g->c.data);
  k.ws = ws_bytes;

  lt_plan *plan = NULL;
  dlk_status s = DLK_ERR_NOT_SUPPORTED;
  if (epi != CUBLASLT_EPILOGUE_DEFAULT) {
    k.epilogue = epi;
    k.align_bias = fuse_bias ? alignment(g->bias.data) : 0;
    s = plan_get(ctx, h, &k, &pl, fuse_bias ? g->bias.data : NULL, &plan);
    if (s != DLK_OK && s != DLK_ERR_NOT_SUPPORTED) return s;
  }
  const bool fused_bias = s == DLK_OK && fuse_bias;
  if (s != DLK_OK) { /* no fused epilogue asked, or none available: plain matmul */
    k.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    k.align_bias = 0;
    s = plan_get(ctx, h, &k, &pl, NULL, &plan);
    if (s == DLK_ERR_NOT_SUPPORTED)
      return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED,
                      "gemm/cublaslt: the heuristic has no algorithm for %s m=%lld n=%lld k=%lld "
                      "batch=%lld",
                      dlk_dtype_name(t), (long long)pl.m, (long long)pl.n, (long long)pl.k,
                      (long long)pl.batch);
    DLK_TRY(s);
  }
  if (fused_bias) {
    const void *bias = g->bias.data; /* same alignment as the key; the pointer may differ */
    DLK_CUBLAS_TRY(ctx, cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                       &bias, sizeof bias));
  }
  const double alpha_d = g->alpha, beta_d = g->beta;
  const float alpha_f = (float)g->alpha, beta_f = (float)g->beta;
  const void *alpha = t == DLK_F64 ? (const void *)&alpha_d : (const void *)&alpha_f;
  const void *beta = t == DLK_F64 ? (const void *)&beta_d : (const void *)&beta_f;
  DLK_CUBLAS_TRY(ctx, cublasLtMatmul(h, plan->op, alpha, pl.p.data, plan->lp, pl.q.data, plan->lq,
                                     beta, g->c.data, plan->ld, g->c.data, plan->ld, &plan->algo,
                                     ws_bytes ? ws : NULL, ws_bytes, (cudaStream_t)ctx->stream));
  /* What is left: bias when not fused, z, and the activation. */
  if ((g->has_bias && !fused_bias) || g->has_z || g->act != DLK_ACT_NONE)
    DLK_TRY(run_epilogue(ctx, g, g->has_bias && !fused_bias));
  return DLK_OK;
}

#else
typedef int dlk_nn_cublas_unused; /* ISO C wants a non-empty translation unit */
#endif /* DLK_HAVE_CUDA */
