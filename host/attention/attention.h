/*
 * attention family, internal: the argument record of every op (what host/attention/
 * attention.c builds after checking the public call) and the row declarations of the
 * backend files.
 *
 * Files of the family:
 *   host/attention/attention.c       public functions: checks, records, keys, variant tables
 *   host/attention/attention_cpu.c   variant 0 of every op: the CPU reference (the spec)
 *   host/attention/attention_cuda.c  rows 1..9 over kernels/attention/ (sdpa_fwd.cu, ...)
 *   host/attention/attention_cudnn.c row 10: cuDNN's fused SDPA (backend graph API)
 *   tests/test_attention.c           goldens, finite differences, bad input, the sweep
 *
 * Records hold checked, normalised tensors: every tensor has its documented rank (4-D
 * q/k/v/out, 3-D lse, 1-D lengths) with any strides. Optional tensors have a has_<name>
 * flag; when it is false the tensor is zeroed.
 *
 * Sections: scaled-dot-product attention (sdpa_*) first; additive (Bahdanau) and Luong
 * attention records go in the section marked below.
 */
#ifndef DLK_ATTENTION_H
#define DLK_ATTENTION_H

#include "../core/internal.h"

/* ====================================================================================== */
/* Scaled-dot-product attention                                                           */
/* ====================================================================================== */

/* The problem both directions share. Sizes: q [B, Hq, Tq, D], k [B, Hk, Tk, D],
   v [B, Hk, Tk, Dv]; query head h reads key/value head h / (Hq / Hk).
   bias: a 4-D view [B, Hq, Tq, Tk] of the caller's bias, stride 0 on every broadcast dim
   (the caller's size-1 dims and any missing leading dims), so bias[b, h, i, j] is always
   at b*s0 + h*s1 + i*s2 + j*s3. lengths: 1-D [B], I32 or I64; their values are checked
   by the variant that runs (they live on the context's device). */
typedef struct dlk_sdpa_problem {
  int64_t B, Hq, Hk, Tq, Tk, D, Dv;
  double scale; /* resolved: the params' value, or 1/sqrt(D) for 0 */
  bool causal;
  double dropout; /* [0, 1) */
  uint64_t seed, offset;
  dlk_dtype dtype; /* q's, shared by every float tensor but lse */
  dlk_tensor q, k, v;
  bool has_bias;
  dlk_tensor bias;
  bool has_q_lengths, has_k_lengths;
  dlk_tensor q_lengths, k_lengths;
} dlk_sdpa_problem;

/* sdpa_fwd: out [B, Hq, Tq, Dv]; lse [B, Hq, Tq] F32 (F64 for F64), optional. */
typedef struct dlk_sdpa_fwd_args {
  dlk_sdpa_problem p;
  dlk_tensor out;
  bool has_lse;
  dlk_tensor lse;
} dlk_sdpa_fwd_args;

/* sdpa_bwd: out, lse and dout as the forward left them; dq/dk/dv like q/k/v, each
   optional. dbias: a 4-D view of the caller's dbias with its own shape (each dim 1 or
   the full size: dims of size 1 where the full size is larger are summed over), optional.
   At least one gradient is present. */
typedef struct dlk_sdpa_bwd_args {
  dlk_sdpa_problem p;
  dlk_tensor out, lse, dout;
  bool has_dq, has_dk, has_dv, has_dbias;
  dlk_tensor dq, dk, dv, dbias;
} dlk_sdpa_bwd_args;

/* Lengths of sequence b (Tq / Tk without a lengths tensor). */
static inline int64_t dlk_sdpa_len(bool has, const dlk_tensor *t, int64_t b, int64_t full) {
  if (!has) return full;
  const char *p = (const char *)t->data;
  int64_t off = b * t->strides[0];
  return t->dtype == DLK_I64 ? ((const int64_t *)(const void *)p)[off]
                             : (int64_t)((const int32_t *)(const void *)p)[off];
}

/* The row functions (the tables are in attention.c). CPU reference (attention_cpu.c): */
DLK_WORKSPACE_FN(dlk_sdpa_fwd_cpu_workspace);
DLK_RUN_FN(dlk_sdpa_fwd_cpu_run);
DLK_WORKSPACE_FN(dlk_sdpa_bwd_cpu_workspace);
DLK_RUN_FN(dlk_sdpa_bwd_cpu_run);
#if DLK_HAVE_CUDA
/* CUDA rows (attention_cuda.c); impl 1 naive, 2 flash_mma, 3 flash_wgmma, 4 flash_simt. */
DLK_SUPPORTS_FN(dlk_sdpa_fwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_sdpa_fwd_cuda_workspace);
DLK_RUN_FN(dlk_sdpa_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_sdpa_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_sdpa_bwd_cuda_workspace);
DLK_RUN_FN(dlk_sdpa_bwd_cuda_run);
/* Shared with the cuDNN row: the kernels' descriptor of a record, and the lengths check
   (on the device, before anything is written; skipped with unchecked_ids). The
   descriptor type is kernels/attention/attention.h's dlk_k_sdpa_desc. */
struct dlk_k_sdpa_desc;
void dlk_sdpa_fwd_desc(const dlk_context *ctx, const dlk_sdpa_fwd_args *a,
                       struct dlk_k_sdpa_desc *d);
void dlk_sdpa_bwd_desc(const dlk_context *ctx, const dlk_sdpa_bwd_args *a,
                       struct dlk_k_sdpa_desc *d);
dlk_status dlk_sdpa_check_lengths_cuda(dlk_context *ctx, const char *op,
                                       const struct dlk_k_sdpa_desc *d);
#endif
/* The cuDNN rows (attention_cudnn.c), over the backend-graph helper host/cudnn/graph.h:
   compiled in every build with cuDNN (DLK_HAVE_CUDNN implies DLK_HAVE_CUDA). */
#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
#define DLK_SDPA_CUDNN 1
#else
#define DLK_SDPA_CUDNN 0
#endif
#if DLK_SDPA_CUDNN
/* cuDNN row (attention_cudnn.c): the SDPA_FWD / SDPA_BWD nodes of the backend API, or the
   composed fused-attention graph where the node refuses (causal, bias). */
DLK_SUPPORTS_FN(dlk_sdpa_fwd_cudnn_supports);
DLK_WORKSPACE_FN(dlk_sdpa_fwd_cudnn_workspace);
DLK_RUN_FN(dlk_sdpa_fwd_cudnn_run);
DLK_SUPPORTS_FN(dlk_sdpa_bwd_cudnn_supports);
DLK_WORKSPACE_FN(dlk_sdpa_bwd_cudnn_workspace);
DLK_RUN_FN(dlk_sdpa_bwd_cudnn_run);
#endif

/* ====================================================================================== */
/* Additive (Bahdanau) and Luong attention                                                */
/* ====================================================================================== */

/* One record serves both ops: Luong's concat score is the additive score with the two
   halves of its w as the projections, so every kernel has three scores to know.
     ADDITIVE  e_ij = v . tanh(P_j + Q_i), P = enc wp [B, Te, A], Q = dec wq [B, Td, A]
               (additive: wp = w_a, wq = u_a; Luong concat: wp = w[:, Hd:]^T,
               wq = w[:, :Hd]^T, transposed views of the caller's w [A, Hd + He])
     DOT       e_ij = dec_i . enc_j                       (Hd = He)
     GENERAL   e_ij = Q_i . enc_j, Q = dec wp [B, Td, He] (wp = w [Hd, He]) */
typedef enum dlk_attn_kind { DLK_ATTN_ADDITIVE = 0, DLK_ATTN_DOT, DLK_ATTN_GENERAL } dlk_attn_kind;

/* The problem both directions share: enc [B, Te, He], dec [B, Td, Hd], the weights named
   above (2-D views with any strides; absent ones zeroed), v [A] (ADDITIVE), lengths I32/I64
   [B] or absent (their values are checked by the variant that runs: they live on the
   context's device). A is 0 for DOT and GENERAL. */
typedef struct dlk_attn_problem {
  const char *fn; /* the public function, for messages ("additive_attention_forward") */
  dlk_attn_kind kind;
  int64_t B, Te, Td, He, Hd, A;
  dlk_dtype dtype; /* enc's, shared by every float tensor */
  dlk_tensor enc, dec, wp, wq, v;
  bool has_lengths;
  dlk_tensor lengths;
} dlk_attn_problem;

/* additive_attn_fwd, luong_attn_fwd: context [B, Td, He], weights [B, Td, Te]. */
typedef struct dlk_attn_fwd_args {
  dlk_attn_problem p;
  dlk_tensor context, weights;
} dlk_attn_fwd_args;

/* additive_attn_bwd, luong_attn_bwd: the forward's weights; dcontext [B, Td, He] and
   dweights [B, Td, Te], at least one present; gradients like their inputs (dwp, dwq views
   of the caller's dw for Luong concat, as wp and wq are), each optional, at least one
   present. */
typedef struct dlk_attn_bwd_args {
  dlk_attn_problem p;
  dlk_tensor weights;
  bool has_dcontext, has_dweights;
  dlk_tensor dcontext, dweights;
  bool has_denc, has_ddec, has_dwp, has_dwq, has_dv;
  dlk_tensor denc, ddec, dwp, dwq, dv;
} dlk_attn_bwd_args;

/* Encoder length of sequence b (Te without a lengths tensor); host memory only. */
static inline int64_t dlk_attn_len(const dlk_attn_problem *p, int64_t b) {
  return dlk_sdpa_len(p->has_lengths, &p->lengths, b, p->Te);
}

/* Row functions (one set serves both ops; impl: 1 composed, 2 fused). CPU reference
   (attention_cpu.c): */
DLK_WORKSPACE_FN(dlk_attn_fwd_cpu_workspace);
DLK_RUN_FN(dlk_attn_fwd_cpu_run);
DLK_WORKSPACE_FN(dlk_attn_bwd_cpu_workspace);
DLK_RUN_FN(dlk_attn_bwd_cpu_run);
#if DLK_HAVE_CUDA
/* CUDA rows (attention_cuda.c): impl 1 composed (nn's gemm kernels plus pointwise
   kernels, materialising [B, Td, Te, A]), impl 2 fused. */
DLK_SUPPORTS_FN(dlk_attn_fwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_attn_fwd_cuda_workspace);
DLK_RUN_FN(dlk_attn_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_attn_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_attn_bwd_cuda_workspace);
DLK_RUN_FN(dlk_attn_bwd_cuda_run);
#endif

#endif /* DLK_ATTENTION_H */
