/*
 * rnn family: the vendor rows, cuDNN's RNN API (v8 entry points of cuDNN 9).
 *
 *   rnn_fwd 10 "cudnn"          cudnnRNNForward, CUDNN_RNN_ALGO_STANDARD
 *           11 "cudnn_persist"  the same with CUDNN_RNN_ALGO_PERSIST_STATIC (cuDNN's persistent
 *                               kernel) where cuDNN takes the case; when cuDNN refuses it at
 *                               run time the call runs the standard algorithm instead
 *   rnn_bwd 10 "cudnn"          cudnnRNNBackwardData_v8 + cudnnRNNBackwardWeights_v8, with the
 *                               algorithm the forward used (the reserve's header says which)
 *
 * What cuDNN cannot do, supports() says: gru_reset_before (cuDNN's GRU is PyTorch's
 * reset-after form), dropout between layers while training (cuDNN draws its own mask, not
 * dlk's counter RNG, so the backward of another variant could not replay it), a bias on one
 * side only, BF16, non-dense sequence or state tensors, deterministic mode.
 *
 * Weights. cuDNN wants every matrix and bias in one packed "weight space". The plan (per
 * configuration, in the context's plan cache) holds the descriptors, the weight space and
 * the gradient space, and the offset of every matrix and bias in them, queried once with
 * cudnnGetRNNWeightParams: PyTorch's gate blocks go to cuDNN's linear layers 0..G-1
 * (input) and G..2G-1 (recurrent) in the same gate order (LSTM i, f, g, o; GRU r, z, n),
 * the projection W_hr to layer 8. The copy of the weights into the weight space is made on
 * every call, not once per weight set: weights change in place between training steps (an
 * optimizer step) without dlk seeing it, and a stale packed copy would be silently wrong;
 * the copy is one pass over the weights, small next to the sequence. Gradients come back
 * from the gradient space added into the caller's (+=).
 *
 * The reserve: dlk's 256-byte header (format 10 or 11: which algorithm ran), then cuDNN's
 * reserve space; dlk_rnn_reserve_size on a cuDNN-capable context asks for the larger of
 * that and the dlk layout.
 */
#include "rnn.h"

#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "../../kernels/rnn/rnn.h"
#include "../cudnn/handle.h"

#define MAX_LD (2 * DLK_RNN_MAX_LAYERS)

typedef struct rnn_plan {
  cudnnRNNDescriptor_t rnn;
  cudnnDropoutDescriptor_t drop;
  cudnnRNNDataDescriptor_t xd, yd;
  cudnnTensorDescriptor_t hd, cd, md, bd;
  void *drop_states, *w, *dw;
  size_t wsize;
  int ok;                       /* the layout matched dlk's expectations */
  char why[160];                /* else the reason */
  size_t moff[MAX_LD][9], boff[MAX_LD][8];
  int *lens;                    /* host seqLengthArray */
  int64_t lens_cap;
} rnn_plan;

static void plan_free(void *p) {
  rnn_plan *q = (rnn_plan *)p;
  if (!q) return;
  if (q->rnn) cudnnDestroyRNNDescriptor(q->rnn);
  if (q->drop) cudnnDestroyDropoutDescriptor(q->drop);
  if (q->xd) cudnnDestroyRNNDataDescriptor(q->xd);
  if (q->yd) cudnnDestroyRNNDataDescriptor(q->yd);
  cudnnTensorDescriptor_t t[4] = {q->hd, q->cd, q->md, q->bd};
  for (int i = 0; i < 4; i++)
    if (t[i]) cudnnDestroyTensorDescriptor(t[i]);
  if (q->drop_states) cudaFree(q->drop_states);
  if (q->w) cudaFree(q->w);
  if (q->dw) cudaFree(q->dw);
  free(q->lens);
  free(q);
}

static cudnnDataType_t cudnn_dt(dlk_dtype t) { return t == DLK_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

static bool dense3(const dlk_tensor *t) {
  return t->strides[2] == 1 && t->strides[1] == t->shape[2] && t->strides[0] == t->shape[1] * t->shape[2];
}

/* Sequence layout of a time-major view: 1 seq-major, 2 batch-major (the memory is
   [B, T, n]), 0 neither (not dense). */
static int seq_layout(const dlk_tensor *t) {
  const int64_t T = t->shape[0], B = t->shape[1], n = t->shape[2];
  if (t->strides[2] != 1 && n > 1) return 0;
  if ((B <= 1 || t->strides[1] == n) && (T <= 1 || t->strides[0] == B * n)) return 1;
  if ((T <= 1 || t->strides[0] == n) && (B <= 1 || t->strides[1] == T * n)) return 2;
  return 0;
}

/* The checks that need no cuDNN call. sizing: dlk_rnn_reserve_size asks, and knows only
   the parameters and x (no weights, y or states yet). */
static bool static_ok(const dlk_context *ctx, const dlk_rnn_fwd_args *a, bool sizing, char *why, size_t n) {
  if (a->x.dtype != DLK_F32 && a->x.dtype != DLK_F16) {
    snprintf(why, n, "%s: cuDNN's RNN variant here takes f32 and f16", dlk_dtype_name(a->x.dtype));
    return false;
  }
  if (a->reset_before) {
    snprintf(why, n, "cuDNN has no gru_reset_before (its GRU is PyTorch's reset-after form)");
    return false;
  }
  if (a->has_dropout) {
    snprintf(why, n, "dropout between layers: cuDNN draws its own mask, not dlk's counter RNG");
    return false;
  }
  if (ctx->opts.deterministic) {
    snprintf(why, n, "deterministic mode: cuDNN's RNN does not promise bit-identical runs");
    return false;
  }
  if (a->T > INT_MAX / 2 || a->B > INT_MAX / 2 || a->I > INT_MAX / 2 || a->H > INT_MAX / 2) {
    snprintf(why, n, "sizes over cuDNN's int range");
    return false;
  }
  if (sizing) return true;
  bool any_b = false, all_b = true;
  for (int64_t k = 0; k < a->L * a->D; k++) {
    const dlk_rnn_weights *w = &a->weights[k];
    const bool both = w->b_ih && w->b_hh, none = !w->b_ih && !w->b_hh;
    if (!both && !none) {
      snprintf(why, n, "weights[%lld] has one bias of two: cuDNN takes both or neither", (long long)k);
      return false;
    }
    any_b |= both;
    all_b &= both;
  }
  if (any_b && !all_b) {
    snprintf(why, n, "biases on some layers only: cuDNN takes one bias mode for all");
    return false;
  }
  const int lx = seq_layout(&a->x), ly = seq_layout(&a->y);
  if (!lx || lx != ly) {
    snprintf(why, n, "x and y must be dense and both time-major or both batch-major for cuDNN");
    return false;
  }
  const dlk_tensor *st[4] = {&a->h0, &a->c0, &a->hn, &a->cn};
  const bool has[4] = {a->has_h0, a->has_c0, a->has_hn, a->has_cn};
  static const char *const nm[4] = {"h0", "c0", "hn", "cn"};
  for (int i = 0; i < 4; i++)
    if (has[i] && !dense3(st[i])) {
      snprintf(why, n, "%s is not dense: cuDNN takes packed states", nm[i]);
      return false;
    }
  return true;
}

static cudnnMathType_t math_of(const dlk_context *ctx, dlk_dtype t) {
  if (t == DLK_F16) return CUDNN_TENSOR_OP_MATH;
  return ctx->opts.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

/* The plan of this configuration (built on first use). The plan cache is a cache: filling
   it from supports() (a const context) changes nothing a call computes. */
/* bias: 1 both biases, 0 none, -1 as the record's weights say. */
static dlk_status get_plan_b(dlk_context *ctx, const dlk_rnn_fwd_args *a, int algo, int bias_mode, void **handle,
                             rnn_plan **out) {
  DLK_TRY(dlk_cudnn_handle(ctx, handle));
  cudnnHandle_t h = (cudnnHandle_t)*handle;
  const bool bias = bias_mode < 0 ? a->weights[0].b_ih != NULL : bias_mode != 0;
  char key[200];
  snprintf(key, sizeof key, "cudnn/rnn/m%d_i%lld_h%lld_p%lld_l%lld_d%lld_%s_b%d_a%d_math%d", (int)a->mode,
           (long long)a->I, (long long)a->H, (long long)a->P, (long long)a->L, (long long)a->D,
           dlk_dtype_name(a->x.dtype), bias, algo, (int)math_of(ctx, a->x.dtype));
  void *cached = NULL;
  DLK_TRY(dlk_plan_cache_get(ctx, key, &cached));
  if (cached) {
    *out = (rnn_plan *)cached;
    return DLK_OK;
  }
  rnn_plan *q = (rnn_plan *)calloc(1, sizeof *q);
  if (!q) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "rnn/cudnn: out of memory");
  dlk_status s = DLK_OK;
#define TRYC(call)                                                   \
  do {                                                               \
    s = dlk_check_cudnn(ctx, (int)(call), __FILE__, __LINE__, #call); \
    if (s != DLK_OK) goto fail;                                      \
  } while (0)
#define TRYCU(call)                                                 \
  do {                                                              \
    s = dlk_check_cuda(ctx, (int)(call), __FILE__, __LINE__, #call); \
    if (s != DLK_OK) goto fail;                                     \
  } while (0)
  {
    static const cudnnRNNMode_t cell[4] = {CUDNN_RNN_TANH, CUDNN_RNN_RELU, CUDNN_LSTM, CUDNN_GRU};
    const cudnnDataType_t dt = cudnn_dt(a->x.dtype);
    size_t states = 0;
    TRYC(cudnnCreateRNNDescriptor(&q->rnn));
    TRYC(cudnnCreateDropoutDescriptor(&q->drop));
    TRYC(cudnnDropoutGetStatesSize(h, &states));
    TRYCU(cudaMalloc(&q->drop_states, states ? states : 1));
    TRYC(cudnnSetDropoutDescriptor(q->drop, h, 0.0f, q->drop_states, states, 0));
    TRYC(cudnnSetRNNDescriptor_v8(q->rnn, (cudnnRNNAlgo_t)algo, cell[a->mode], bias ? CUDNN_RNN_DOUBLE_BIAS : CUDNN_RNN_NO_BIAS,
                                  a->D == 2 ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, dt,
                                  CUDNN_DATA_FLOAT, math_of(ctx, a->x.dtype), (int32_t)a->I, (int32_t)a->H,
                                  (int32_t)a->P, (int32_t)a->L, q->drop, CUDNN_RNN_PADDED_IO_ENABLED));
    TRYC(cudnnCreateRNNDataDescriptor(&q->xd));
    TRYC(cudnnCreateRNNDataDescriptor(&q->yd));
    TRYC(cudnnCreateTensorDescriptor(&q->hd));
    TRYC(cudnnCreateTensorDescriptor(&q->cd));
    TRYC(cudnnCreateTensorDescriptor(&q->md));
    TRYC(cudnnCreateTensorDescriptor(&q->bd));
    TRYC(cudnnGetRNNWeightSpaceSize(h, q->rnn, &q->wsize));
    TRYCU(cudaMalloc(&q->w, q->wsize));
    TRYCU(cudaMalloc(&q->dw, q->wsize));
    /* Where cuDNN keeps each matrix and bias, checked against the sizes dlk copies. */
    const int64_t G = dlk_rnn_gates(a->mode);
    q->ok = 1;
    for (int64_t ld = 0; ld < a->L * a->D && q->ok; ld++) {
      const int64_t I = ld < a->D ? a->I : a->D * a->P;
      for (int lin = 0; lin < 2 * G + (a->P != a->H ? 1 : 0) && q->ok; lin++) {
        const int cid = lin == 2 * G ? 8 : lin; /* cuDNN's id of the LSTM projection */
        void *m = NULL, *b = NULL;
        TRYC(cudnnGetRNNWeightParams(h, q->rnn, (int32_t)ld, q->wsize, q->w, cid, q->md, &m, q->bd, &b));
        int nd = 0, dims[8], strides[8];
        cudnnDataType_t mdt;
        TRYC(cudnnGetTensorNdDescriptor(q->md, 8, &mdt, &nd, dims, strides));
        int64_t numel = 1;
        for (int k = 0; k < nd; k++) numel *= dims[k];
        const int64_t want = lin == 2 * G ? a->P * a->H : lin < G ? a->H * I : a->H * a->P;
        if (!m || numel != want) {
          q->ok = 0;
          snprintf(q->why, sizeof q->why, "cuDNN's matrix %d of pseudo-layer %lld has %lld elements, dlk expects %lld", cid,
                   (long long)ld, (long long)numel, (long long)want);
          break;
        }
        q->moff[ld][cid == 8 ? 8 : lin] = (size_t)((char *)m - (char *)q->w);
        if (lin < 2 * G && bias) {
          if (!b) {
            q->ok = 0;
            snprintf(q->why, sizeof q->why, "cuDNN gave no bias for linear layer %d", cid);
            break;
          }
          q->boff[ld][lin] = (size_t)((char *)b - (char *)q->w);
        }
      }
    }
  }
#undef TRYC
#undef TRYCU
  DLK_TRY(dlk_plan_cache_put(ctx, key, q, plan_free));
  *out = q;
  return DLK_OK;
fail:
  plan_free(q);
  return s;
}
static dlk_status get_plan(dlk_context *ctx, const dlk_rnn_fwd_args *a, int algo, void **handle, rnn_plan **out) {
  return get_plan_b(ctx, a, algo, -1, handle, out);
}

/* The data descriptors of this call: x and y with the sequence lengths, h and c. */
static dlk_status set_descs(dlk_context *ctx, rnn_plan *q, const dlk_rnn_fwd_args *a) {
  if (q->lens_cap < a->B) {
    int *p = (int *)realloc(q->lens, (size_t)(a->B > 0 ? a->B : 1) * sizeof(int));
    if (!p) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "rnn/cudnn: out of memory");
    q->lens = p, q->lens_cap = a->B;
  }
  for (int64_t b = 0; b < a->B; b++) q->lens[b] = a->has_lengths ? a->lens[b] : (int)a->T;
  static const double zero = 0.0; /* the padding: 0 in any dtype */
  const cudnnDataType_t dt = cudnn_dt(a->x.dtype);
  const cudnnRNNDataLayout_t lay =
      seq_layout(&a->x) == 2 ? CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED : CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  DLK_CUDNN_TRY(ctx, cudnnSetRNNDataDescriptor(q->xd, dt, lay, (int)a->T, (int)a->B, (int)a->I, q->lens, (void *)&zero));
  DLK_CUDNN_TRY(ctx, cudnnSetRNNDataDescriptor(q->yd, dt, lay, (int)a->T, (int)a->B, (int)(a->D * a->P), q->lens,
                                               (void *)&zero));
  int hdim[3] = {(int)(a->L * a->D), (int)a->B, (int)a->P}, hst[3] = {(int)(a->B * a->P), (int)a->P, 1};
  int cdim[3] = {(int)(a->L * a->D), (int)a->B, (int)a->H}, cst[3] = {(int)(a->B * a->H), (int)a->H, 1};
  DLK_CUDNN_TRY(ctx, cudnnSetTensorNdDescriptor(q->hd, dt, 3, hdim, hst));
  DLK_CUDNN_TRY(ctx, cudnnSetTensorNdDescriptor(q->cd, dt, 3, cdim, cst));
  return DLK_OK;
}

static size_t al(size_t v) { return (v + 255) & ~(size_t)255; }

/* cuDNN's workspace and reserve sizes of this call; false with the reason when cuDNN
   refuses the case. */
static bool sizes_b(const dlk_context *cctx, const dlk_rnn_fwd_args *a, int algo, int bias_mode, bool training,
                    size_t *ws, size_t *rs, char *why, size_t n) {
  dlk_context *ctx = (dlk_context *)cctx; /* see get_plan */
  void *h = NULL;
  rnn_plan *q = NULL;
  char saved[DLK_ERRMSG_LEN];
  snprintf(saved, sizeof saved, "%s", ctx->err);
  /* the plan's buffers go to the context's device */
  bool ok = dlk_cuda_enter(ctx) == DLK_OK && get_plan_b(ctx, a, algo, bias_mode, &h, &q) == DLK_OK;
  if (ok && !q->ok) {
    snprintf(ctx->err, sizeof ctx->err, "%s", q->why);
    ok = false;
  }
  ok = ok && set_descs(ctx, q, a) == DLK_OK;
  if (ok) {
    const cudnnForwardMode_t mode = training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE;
    ok = dlk_check_cudnn(ctx, (int)cudnnGetRNNTempSpaceSizes((cudnnHandle_t)h, q->rnn, mode, q->xd, ws, rs), __FILE__,
                         __LINE__, "cudnnGetRNNTempSpaceSizes") == DLK_OK;
  }
  if (!ok) snprintf(why, n, "cuDNN refuses: %.200s", ctx->err);
  snprintf(ctx->err, sizeof ctx->err, "%s", saved); /* a refusal is an answer, not an error */
  return ok;
}
static bool sizes(const dlk_context *ctx, const dlk_rnn_fwd_args *a, int algo, bool training, size_t *ws, size_t *rs,
                  char *why, size_t n) {
  return sizes_b(ctx, a, algo, -1, training, ws, rs, why, n);
}

/* The weights are not known yet: the largest over both bias modes and both algorithms. */
size_t dlk_rnn_cudnn_reserve_bytes(dlk_context *ctx, const dlk_rnn_fwd_args *a) {
  char why[256];
  size_t ws = 0, rs = 0;
  if (!static_ok(ctx, a, true, why, sizeof why)) return 0;
  size_t best = 0;
  for (int algo = CUDNN_RNN_ALGO_STANDARD; algo <= CUDNN_RNN_ALGO_PERSIST_STATIC; algo++)
    for (int bias = 0; bias <= 1; bias++)
      if (sizes_b(ctx, a, algo, bias, true, &ws, &rs, why, sizeof why) && DLK_RNN_RESERVE_HEADER + rs > best)
        best = DLK_RNN_RESERVE_HEADER + rs;
  return best;
}

static int algo_of_impl(int impl) { return impl == 1 ? CUDNN_RNN_ALGO_PERSIST_STATIC : CUDNN_RNN_ALGO_STANDARD; }

bool dlk_rnn_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  const dlk_rnn_fwd_args *a = args;
  if (!static_ok(ctx, a, false, why, n)) return false;
  size_t ws = 0, rs = 0;
  /* the persistent row also needs the standard plan (its fallback) */
  if (!sizes(ctx, a, CUDNN_RNN_ALGO_STANDARD, a->training, &ws, &rs, why, n)) return false;
  if (impl == 1 && !sizes(ctx, a, CUDNN_RNN_ALGO_PERSIST_STATIC, a->training, &ws, &rs, why, n)) return false;
  if (a->training && (size_t)a->reserve.shape[0] < DLK_RNN_RESERVE_HEADER + rs) {
    snprintf(why, n, "reserve has %lld bytes, cuDNN needs %zu (take dlk_rnn_reserve_size on this context)",
             (long long)a->reserve.shape[0], DLK_RNN_RESERVE_HEADER + rs);
    return false;
  }
  return true;
}

size_t dlk_rnn_fwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  const dlk_rnn_fwd_args *a = args;
  char why[256];
  size_t ws = 0, rs = 0, ws2 = 0;
  sizes(ctx, a, CUDNN_RNN_ALGO_STANDARD, a->training, &ws, &rs, why, sizeof why);
  if (impl == 1) sizes(ctx, a, algo_of_impl(impl), a->training, &ws2, &rs, why, sizeof why);
  return al(ws > ws2 ? ws : ws2) + al((size_t)a->B * 4);
}

/* The caller's weights into the plan's weight space (see the file comment). */
static dlk_status pack(dlk_context *ctx, rnn_plan *q, const dlk_rnn_fwd_args *a) {
  const int64_t G = dlk_rnn_gates(a->mode), H = a->H, P = a->P;
  const dlk_dtype dt = a->x.dtype;
  const size_t es = dlk_dtype_size(dt);
  for (int64_t ld = 0; ld < a->L * a->D; ld++) {
    dlk_rnn_w w;
    dlk_rnn_layer_w(a, ld, &w);
    for (int64_t g = 0; g < G; g++) {
      const dlk_tensor *m[2] = {&w.w_ih, &w.w_hh};
      for (int r = 0; r < 2; r++) {
        const int64_t cols = m[r]->shape[1];
        dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, H, cols, (char *)m[r]->data + (size_t)(g * H * m[r]->strides[0]) * es,
                                  0, m[r]->strides[0], m[r]->strides[1], (char *)q->w + q->moff[ld][r * G + g], 0, cols, 1,
                                  NULL, 0, 0};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
      }
      const dlk_tensor *b[2] = {&w.b_ih, &w.b_hh};
      for (int r = 0; r < 2 && w.has_b_ih; r++) {
        dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, 1, H, (char *)b[r]->data + (size_t)(g * H * b[r]->strides[0]) * es,
                                  0, 0, b[r]->strides[0], (char *)q->w + q->boff[ld][r * G + g], 0, 0, 1, NULL, 0, 0};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
      }
    }
    if (w.has_w_hr) {
      dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, P, H, w.w_hr.data, 0, w.w_hr.strides[0], w.w_hr.strides[1],
                                (char *)q->w + q->moff[ld][8], 0, H, 1, NULL, 0, 0};
      DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
    }
  }
  return DLK_OK;
}

/* grad += the plan's gradient space, for every wanted member. */
static dlk_status unpack_grads(dlk_context *ctx, rnn_plan *q, const dlk_rnn_fwd_args *a, const dlk_rnn_grads *gs) {
  const int64_t G = dlk_rnn_gates(a->mode), H = a->H, P = a->P;
  const dlk_dtype dt = a->x.dtype;
  const size_t es = dlk_dtype_size(dt);
  for (int64_t ld = 0; ld < a->L * a->D; ld++) {
    dlk_rnn_gw g;
    dlk_rnn_gw_from(&gs[ld], &g);
    const dlk_tensor *m[2] = {&g.w_ih, &g.w_hh};
    const bool hm[2] = {g.has_w_ih, g.has_w_hh};
    const dlk_tensor *b[2] = {&g.b_ih, &g.b_hh};
    const bool hb[2] = {g.has_b_ih, g.has_b_hh};
    for (int64_t k = 0; k < G; k++) {
      for (int r = 0; r < 2; r++) {
        if (!hm[r]) continue;
        const int64_t cols = m[r]->shape[1];
        dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, H, cols, (char *)q->dw + q->moff[ld][r * G + k], 0, cols, 1,
                                  (char *)m[r]->data + (size_t)(k * H * m[r]->strides[0]) * es, 0, m[r]->strides[0],
                                  m[r]->strides[1], NULL, 0, 1};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
      }
      for (int r = 0; r < 2; r++) {
        if (!hb[r]) continue;
        dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, 1, H, (char *)q->dw + q->boff[ld][r * G + k], 0, 0, 1,
                                  (char *)b[r]->data + (size_t)(k * H * b[r]->strides[0]) * es, 0, 0, b[r]->strides[0],
                                  NULL, 0, 1};
        DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
      }
    }
    if (g.has_w_hr) {
      dlk_k_rnn_copy3_desc c = {(int)dt, (int)dt, 1, P, H, (char *)q->dw + q->moff[ld][8], 0, H, 1, g.w_hr.data, 0,
                                g.w_hr.strides[0], g.w_hr.strides[1], NULL, 0, 1};
      DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
    }
  }
  return DLK_OK;
}

static dlk_status upload_lens(dlk_context *ctx, rnn_plan *q, const dlk_rnn_fwd_args *a, void *dev) {
  if (a->B == 0) return DLK_OK;
  DLK_CUDA_TRY(ctx, cudaMemcpyAsync(dev, q->lens, (size_t)a->B * 4, cudaMemcpyHostToDevice, (cudaStream_t)ctx->stream));
  return DLK_OK;
}

/* The data of an optional tensor (outputs too: the record's descriptors are const, the
   memory they describe is the caller's to write). */
static void *state_ptr(bool has, const dlk_tensor *t) { return has ? t->data : NULL; }

dlk_status dlk_rnn_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  const dlk_rnn_fwd_args *a = args;
  DLK_TRY(dlk_cuda_enter(ctx));
  void *h = NULL;
  rnn_plan *q = NULL;
  int algo = algo_of_impl(impl);
  size_t cws = 0, crs = 0;
  char why[256];
  if (algo != CUDNN_RNN_ALGO_STANDARD && !sizes(ctx, a, algo, a->training, &cws, &crs, why, sizeof why))
    algo = CUDNN_RNN_ALGO_STANDARD;
  if (algo == CUDNN_RNN_ALGO_STANDARD && !sizes(ctx, a, algo, a->training, &cws, &crs, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "rnn_fwd/cudnn: %s", why);
  DLK_TRY(get_plan(ctx, a, algo, &h, &q));
  DLK_TRY(set_descs(ctx, q, a));
  void *dev_lens = (char *)ws + al(cws);
  if (al(cws) + al((size_t)a->B * 4) > ws_bytes)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "rnn_fwd/cudnn: workspace of %zu bytes, %zu needed", ws_bytes,
                    al(cws) + al((size_t)a->B * 4));
  DLK_TRY(upload_lens(ctx, q, a, dev_lens));
  DLK_TRY(pack(ctx, q, a));
  void *reserve = a->training ? (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER : NULL;
  cudnnStatus_t st = cudnnRNNForward((cudnnHandle_t)h, q->rnn, a->training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                     (const int32_t *)dev_lens, q->xd, a->x.data, q->yd, a->y.data, q->hd,
                                     state_ptr(a->has_h0, &a->h0), state_ptr(a->has_hn, &a->hn), q->cd,
                                     state_ptr(a->has_c0, &a->c0), state_ptr(a->has_cn, &a->cn), q->wsize, q->w, cws, ws,
                                     a->training ? crs : 0, reserve);
  if (st == CUDNN_STATUS_NOT_SUPPORTED && algo != CUDNN_RNN_ALGO_STANDARD) { /* the persistent kernel said no */
    algo = CUDNN_RNN_ALGO_STANDARD;
    if (!sizes(ctx, a, algo, a->training, &cws, &crs, why, sizeof why) || al(cws) + al((size_t)a->B * 4) > ws_bytes)
      return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "rnn_fwd/cudnn: %s", why);
    DLK_TRY(get_plan(ctx, a, algo, &h, &q));
    DLK_TRY(set_descs(ctx, q, a));
    DLK_TRY(pack(ctx, q, a));
    st = cudnnRNNForward((cudnnHandle_t)h, q->rnn, a->training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                         (const int32_t *)dev_lens, q->xd, a->x.data, q->yd, a->y.data, q->hd, state_ptr(a->has_h0, &a->h0),
                         state_ptr(a->has_hn, &a->hn), q->cd, state_ptr(a->has_c0, &a->c0), state_ptr(a->has_cn, &a->cn),
                         q->wsize, q->w, cws, ws, a->training ? crs : 0, reserve);
  }
  DLK_CUDNN_TRY(ctx, st);
  if (a->training) {
    dlk_rnn_reserve_header hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, "dlkrnn1", 8);
    hd.format = algo == CUDNN_RNN_ALGO_STANDARD ? DLK_RNN_FORMAT_CUDNN : DLK_RNN_FORMAT_CUDNN_PERSIST;
    hd.key_hash = a->key_hash;
    DLK_CUDA_TRY(ctx, cudaMemcpyAsync(a->reserve.data, &hd, sizeof hd, cudaMemcpyHostToDevice, (cudaStream_t)ctx->stream));
  }
  return DLK_OK;
}

/* ---- backward ---- */

static int algo_of_format(int format) {
  return format == DLK_RNN_FORMAT_CUDNN_PERSIST ? CUDNN_RNN_ALGO_PERSIST_STATIC : CUDNN_RNN_ALGO_STANDARD;
}

bool dlk_rnn_bwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_rnn_bwd_args *b = args;
  if (b->format != DLK_RNN_FORMAT_CUDNN && b->format != DLK_RNN_FORMAT_CUDNN_PERSIST) {
    snprintf(why, n, "the reserve was written by a dlk forward (format %d): cuDNN reads only its own", b->format);
    return false;
  }
  if (!static_ok(ctx, &b->f, false, why, n)) return false;
  const dlk_tensor *st[4] = {&b->dhn, &b->dcn, &b->dh0, &b->dc0};
  const bool has[4] = {b->has_dhn, b->has_dcn, b->has_dh0, b->has_dc0};
  for (int i = 0; i < 4; i++)
    if (has[i] && !dense3(st[i])) {
      snprintf(why, n, "state gradients must be dense for cuDNN");
      return false;
    }
  const int lx = seq_layout(&b->f.x);
  if ((b->has_dy && seq_layout(&b->dy) != lx) || (b->has_dx && seq_layout(&b->dx) != lx)) {
    snprintf(why, n, "dy and dx must have x's dense layout for cuDNN");
    return false;
  }
  size_t ws = 0, rs = 0;
  return sizes(ctx, &b->f, algo_of_format(b->format), true, &ws, &rs, why, n);
}

size_t dlk_rnn_bwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_rnn_bwd_args *b = args;
  const dlk_rnn_fwd_args *a = &b->f;
  char why[256];
  size_t ws = 0, rs = 0;
  sizes(ctx, a, algo_of_format(b->format), true, &ws, &rs, why, sizeof why);
  const size_t es = dlk_dtype_size(a->x.dtype);
  return al(ws) + al((size_t)a->B * 4) + (b->has_dy ? 0 : al((size_t)(a->T * a->B * a->D * a->P) * es)) +
         (b->has_dx ? 0 : al((size_t)(a->T * a->B * a->I) * es));
}

dlk_status dlk_rnn_bwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_rnn_bwd_args *b = args;
  const dlk_rnn_fwd_args *a = &b->f;
  DLK_TRY(dlk_cuda_enter(ctx));
  const int algo = algo_of_format(b->format);
  size_t cws = 0, crs = 0;
  char why[256];
  if (!sizes(ctx, a, algo, true, &cws, &crs, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "rnn_bwd/cudnn: %s", why);
  void *h = NULL;
  rnn_plan *q = NULL;
  DLK_TRY(get_plan(ctx, a, algo, &h, &q));
  DLK_TRY(set_descs(ctx, q, a));
  const size_t es = dlk_dtype_size(a->x.dtype);
  char *p = (char *)ws + al(cws);
  void *dev_lens = p;
  p += al((size_t)a->B * 4);
  void *dy = b->has_dy ? b->dy.data : NULL, *dx = b->has_dx ? b->dx.data : NULL;
  const size_t ybytes = (size_t)(a->T * a->B * a->D * a->P) * es;
  if (!dy) {
    dy = p;
    p += al(ybytes);
    DLK_CUDA_TRY(ctx, cudaMemsetAsync(dy, 0, ybytes, (cudaStream_t)ctx->stream));
  }
  if (!dx) dx = p, p += al((size_t)(a->T * a->B * a->I) * es);
  if ((size_t)(p - (char *)ws) > ws_bytes)
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "rnn_bwd/cudnn: workspace of %zu bytes, %zu needed", ws_bytes,
                    (size_t)(p - (char *)ws));
  DLK_TRY(upload_lens(ctx, q, a, dev_lens));
  DLK_TRY(pack(ctx, q, a));
  void *reserve = (char *)a->reserve.data + DLK_RNN_RESERVE_HEADER;
  DLK_CUDNN_TRY(ctx, cudnnRNNBackwardData_v8((cudnnHandle_t)h, q->rnn, (const int32_t *)dev_lens, q->yd, a->y.data, dy,
                                             q->xd, dx, q->hd, state_ptr(a->has_h0, &a->h0),
                                             state_ptr(b->has_dhn, &b->dhn), state_ptr(b->has_dh0, &b->dh0), q->cd,
                                             state_ptr(a->has_c0, &a->c0), state_ptr(b->has_dcn, &b->dcn),
                                             state_ptr(b->has_dc0, &b->dc0), q->wsize, q->w, cws, ws, crs, reserve));
  if (b->has_dx && a->has_lengths) { /* dx past a sequence's end is 0 (dlk's contract) */
    dlk_k_rnn_copy3_desc c = {(int)a->x.dtype, (int)a->x.dtype, a->T, a->B, a->I, b->dx.data, b->dx.strides[0],
                              b->dx.strides[1], b->dx.strides[2], b->dx.data, b->dx.strides[0], b->dx.strides[1],
                              b->dx.strides[2], (const int32_t *)dev_lens, 1, 0};
    DLK_CUDA_TRY(ctx, dlk_k_rnn_copy3(&c, 0, NULL, ctx->stream));
  }
  bool want_w = false;
  for (int64_t k = 0; b->dweights && k < a->L * a->D; k++) {
    const dlk_rnn_grads *g = &b->dweights[k];
    want_w |= g->w_ih || g->w_hh || g->b_ih || g->b_hh || g->w_hr;
  }
  if (want_w) {
    DLK_CUDA_TRY(ctx, cudaMemsetAsync(q->dw, 0, q->wsize, (cudaStream_t)ctx->stream));
    DLK_CUDNN_TRY(ctx, cudnnRNNBackwardWeights_v8((cudnnHandle_t)h, q->rnn, CUDNN_WGRAD_MODE_ADD, (const int32_t *)dev_lens,
                                                  q->xd, a->x.data, q->hd, state_ptr(a->has_h0, &a->h0), q->yd, a->y.data,
                                                  q->wsize, q->dw, cws, ws, crs, reserve));
    DLK_TRY(unpack_grads(ctx, q, a, b->dweights));
  }
  return DLK_OK;
}

#endif /* DLK_HAVE_CUDA && DLK_HAVE_CUDNN */
