/*
 * attention family: C-callable launchers of the CUDA kernels in kernels/attention/.
 * Internal: host/attention/attention_cuda.c calls these; they never call back into host/.
 * Every launcher returns the cudaError_t of its launches as an int (0 = cudaSuccess),
 * takes the stream as a void * (cudaStream_t) and leaves a zero-sized problem as a no-op.
 * Pointers are device pointers, strides are in elements, dtypes are dlk_dtype values.
 *
 * Files: sdpa_fwd.cu (forward ladder + the lengths check), sdpa_bwd.cu (backward ladder),
 * sdpa_sm90.cu (the sm_90a forward); additive_fwd.cu and additive_bwd.cu (additive and
 * Luong attention: the composed variant's own kernels and the fused ones), at the end.
 */
#ifndef DLK_KERNELS_ATTENTION_H
#define DLK_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

/* A 4-D tensor: element (a, b, c, d) at data[a*s0 + b*s1 + c*s2 + d*s3]; broadcast dims
   have stride 0. NULL data: absent. */
typedef struct dlk_k_t4 {
  void *data;
  int64_t s0, s1, s2, s3;
} dlk_k_t4;

/* The problem of both directions (host/attention/attention.h has its meaning in full).
   q [B, Hq, Tq, D], k [B, Hk, Tk, D], v [B, Hk, Tk, Dv], out and dout [B, Hq, Tq, Dv],
   lse [B, Hq, Tq] (F32, F64 for F64), bias [B, Hq, Tq, Tk] (stride 0 on broadcast dims),
   dq/dk/dv like q/k/v, dbias of its own shape dbias_n (each dim 1 = summed over, or full).
   Lengths: I32/I64 vectors [B] with stride len_s, or NULL. dropout: weight (b, h, i, j) is
   kept iff (mix64(seed, offset + ((b Hq + h) Tq + i) Tk + j) >> 11) >= drop_threshold
   (= ceil(p 2^53), the integer form of dlk_dropout_uniform >= p) and scaled by drop_scale
   = 1 / (1 - p); drop_threshold 0: no dropout. */
typedef struct dlk_k_sdpa_desc {
  int dtype;
  int64_t B, Hq, Hk, Tq, Tk, D, Dv;
  double scale;
  int causal;
  uint64_t seed, offset, drop_threshold;
  double drop_scale;
  dlk_k_t4 q, k, v, bias, out, dout, dq, dk, dv, dbias;
  int64_t dbias_n[4];
  void *lse; /* F32 (F64 for F64 inputs) */
  int64_t lse_s0, lse_s1, lse_s2;
  const void *q_len, *k_len;
  int q_len_dtype, k_len_dtype; /* DLK_I32 / DLK_I64 */
  int64_t q_len_s, k_len_s;
  int deterministic; /* 1: no variant may use order-dependent atomics */
} dlk_k_sdpa_desc;
typedef dlk_k_sdpa_desc dlk_k_sdpa_fwd_desc;
typedef dlk_k_sdpa_desc dlk_k_sdpa_bwd_desc;

/* impl: 1 "naive" materialises the scores (workspace B*Hq*Tq*Tk accumulators; the GPU
   oracle, every float dtype, any strides); 2 "flash_mma" FlashAttention-2 tiling with
   online softmax on mma.sync tensor cores (f16/bf16); 3 "flash_wgmma" the sm_90a
   FlashAttention-3 forward (wgmma + TMA, warp-specialised); 4 "flash_simt" the streaming
   order on CUDA cores (f32/f16/bf16, any strides). _supports: 1 when impl can
   run a, else 0 with the reason in why. _ws: workspace bytes. */
int dlk_k_sdpa_fwd_supports(const dlk_k_sdpa_fwd_desc *a, int impl, char *why, size_t n);
size_t dlk_k_sdpa_fwd_ws(const dlk_k_sdpa_fwd_desc *a, int impl);
int dlk_k_sdpa_fwd(const dlk_k_sdpa_fwd_desc *a, int impl, void *ws, void *stream);

int dlk_k_sdpa_bwd_supports(const dlk_k_sdpa_bwd_desc *a, int impl, char *why, size_t n);
size_t dlk_k_sdpa_bwd_ws(const dlk_k_sdpa_bwd_desc *a, int impl);
int dlk_k_sdpa_bwd(const dlk_k_sdpa_bwd_desc *a, int impl, void *ws, void *stream);

/* impl 3 (sdpa_sm90.cu) directly, so that a TMA map the driver refuses comes back with its
   detail in err: the _supports of impl 3 is this one (1: can run; else the reason), and
   dlk_k_sdpa_fwd_wgmma runs it (the cudaError_t; err says more when it is not a plain
   CUDA error). The kernel has a body only when DLK_CUDA_ARCHS lists 90a; the caller checks
   that the device is 9.0. */
int dlk_k_sdpa_fwd_wgmma_supports(const dlk_k_sdpa_fwd_desc *a, char *why, size_t n);
int dlk_k_sdpa_fwd_wgmma(const dlk_k_sdpa_fwd_desc *a, char *err, size_t err_len, void *stream);

/* Lengths check (one block): flag[0] = -1 when every q length is in [1, Tq] and every k
   length in [1, Tk]; else flag[0] = 0 (q_lengths) or 1 (k_lengths), flag[1] = the index,
   flag[2] = the value. flag: host-mapped memory the caller reads after synchronising. */
int dlk_k_sdpa_check_lengths(const dlk_k_sdpa_desc *a, int64_t *flag, void *stream);

/* For the vendor row: the lengths as I32 [B] vectors (the full T where a side has none),
   and dlk's values on the rows past the lengths, which a vendor kernel may leave as it
   likes: forward out 0 and lse -inf past q_len; backward (backward = 1) dq 0 past q_len,
   dk and dv 0 past k_len. */
int dlk_k_sdpa_lengths_i32(const dlk_k_sdpa_desc *a, int32_t *q_out, int32_t *k_out, void *stream);
int dlk_k_sdpa_clear_padding(const dlk_k_sdpa_desc *a, int backward, void *stream);

/* The vendor forward's epilogue, from the vendor's packed F32 stats [B, Hq, Tq] (its
   log-sum-exp) to dlk's out and lse: a row past q_len, or a row with no visible key, gets
   out 0 and lse -inf (the vendor leaves NaN or anything there); every other row's stats
   go to lse as they are (when a->lse is not NULL). A row has no visible key when the
   lengths and the causal bound leave it none, or (a bias of -inf) when its stats are -inf,
   or NaN while no key it may see has a bias above -inf; a NaN from a NaN input stays NaN,
   as in the reference. */
int dlk_k_sdpa_vendor_fwd_finish(const dlk_k_sdpa_desc *a, const float *stats, void *stream);
/* The vendor backward's stats, packed F32 [B, Hq, Tq] in `stats`, from a->lse: +inf on rows
   past q_len and where lse is -inf (a row with no visible key), so that the recomputed
   weights exp(s - stats) are 0 there and never exp(-inf - (-inf)) = NaN. */
int dlk_k_sdpa_vendor_bwd_stats(const dlk_k_sdpa_desc *a, float *stats, void *stream);

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention (additive_fwd.cu, additive_bwd.cu)             */
/* ====================================================================================== */

/* A 3-D tensor: element (a, b, c) at data[a*s0 + b*s1 + c*s2]. NULL data: absent. */
typedef struct dlk_k_t3 {
  void *data;
  int64_t s0, s1, s2;
} dlk_k_t3;

/* The problem of additive_attn_* and luong_attn_* (host/attention/attention.h has it in
   full): kind 0 ADDITIVE e_ij = v . tanh(P_j + Q_i) (additive, Luong concat), 1 DOT
   e_ij = dec_i . enc_j, 2 GENERAL e_ij = Q_i . enc_j. enc [B, Te, He], dec [B, Td, Hd],
   v [A]; lengths I32/I64 [B] or NULL (every length Te). The projections are the caller's
   (nn's gemm), contiguous in its workspace: P [B, Te, A] (ADDITIVE), Q [B, Td, A]
   (ADDITIVE) or [B, Td, He] (GENERAL). Steps j >= length are never read.
   "acc" below is f32 for f32/f16/bf16 and f64 for f64. */
typedef struct dlk_k_attn_desc {
  int dtype, kind;
  int64_t B, Te, Td, He, Hd, A;
  dlk_k_t3 enc, dec;
  dlk_k_vec v;
  const void *len;
  int len_dtype;
  int64_t len_s;
  const void *P, *Q;
  /* forward outputs */
  dlk_k_t3 context, weights;
  /* backward: alpha = the forward's weights; dcontext, dweights (NULL: absent);
     denc, ddec (NULL: not wanted); dv (NULL: not wanted) */
  dlk_k_t3 alpha, dcontext, dweights, denc, ddec;
  dlk_k_vec dv;
} dlk_k_attn_desc;

/* ---- the composed variant's own kernels (impl 1; nn's gemm does the rest) ---- */

/* dst [B, T, H] contiguous = src (T rows of H per sequence); with mask, rows t >= length
   of sequence b are 0 (src there is never read). */
int dlk_k_attn_gather(const dlk_k_attn_desc *a, dlk_k_t3 src, int64_t T, int64_t H, int mask,
                      void *dst, void *stream);
/* H [B, Td, Te, A] contiguous = tanh(P[b, j] + Q[b, i]) (ADDITIVE). */
int dlk_k_attn_add_tanh(const dlk_k_attn_desc *a, void *H, void *stream);
/* weights[b, i, :] = softmax over the visible steps of e[b, i, :] (e [B, Td, Te]
   contiguous), 0 past the length. */
int dlk_k_attn_softmax_rows(const dlk_k_attn_desc *a, const void *e, void *stream);
/* de [B, Td, Te] contiguous = alpha (g - sum_j alpha g) with g = dweights + gc (gc
   [B, Td, Te] contiguous: dcontext . enc_j; NULL or dweights NULL: that term is absent),
   0 past the length. */
int dlk_k_attn_softmax_bwd_rows(const dlk_k_attn_desc *a, const void *gc, void *de, void *stream);
/* In place over H [B, Td, Te, A] (tanh values): H = de[b, i, j] v (1 - H^2). */
int dlk_k_attn_dz(const dlk_k_attn_desc *a, const void *de, void *H, void *stream);
/* n elements of a dtype set to value (contiguous). */
int dlk_k_attn_fill(void *p, int dtype, int64_t n, double value, void *stream);

/* ---- the fused variant (impl 2) ----
   Forward: after the projections, one kernel per tile of decoder steps (four, or one when
   Td < 4) and split of the visible encoder steps computes the scores in registers and
   shared memory (tanh(P_j + Q_i) is never stored), the softmax and the context; when the
   (B, tile) blocks alone cannot fill a GPU the encoder steps are split and a second kernel
   combines the splits (the single-step form, Td = 1, of a decoder loop). _supports: the
   query vectors of a tile must fit shared memory. _ws: the splits' partial results. */
int dlk_k_attn_fwd_fused_supports(const dlk_k_attn_desc *a, char *why, size_t n);
size_t dlk_k_attn_fwd_fused_ws(const dlk_k_attn_desc *a);
int dlk_k_attn_fwd_fused(const dlk_k_attn_desc *a, void *ws, void *stream);

/* Backward of the score, fused: from alpha, dcontext and dweights, per decoder row
   dE = alpha (g - sum alpha g) (acc [B, Td, Te] in ws) and the query side's gradient dQ
   (ADDITIVE: sum_j dE v (1 - tanh^2) [B, Td, A]; GENERAL: sum_j dE enc_j [B, Td, He]; DOT:
   ddec directly), then per encoder row the encoder side's: dP = sum_i dE v (1 - tanh^2)
   [B, Te, A] (ADDITIVE), dv partials, and denc = sum_i alpha dcontext_i (+ sum_i dE dec_i
   for DOT, dE Q_i for GENERAL), 0 past the length; tanh recomputed, never stored. The
   caller adds denc += dP wp^T and the weight gradients with nn's gemm. dP, dQ: T,
   contiguous, NULL when not needed. Fixed-order sums only. _ws: dE, the dv partials. */
size_t dlk_k_attn_bwd_fused_ws(const dlk_k_attn_desc *a);
int dlk_k_attn_bwd_fused(const dlk_k_attn_desc *a, void *dP, void *dQ, void *ws, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_ATTENTION_H */
