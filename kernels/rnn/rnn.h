/*
 * rnn family kernels: C-callable launchers (no CUDA header needed). Each returns the
 * cudaError_t of its launch as int (0 = success); a zero-sized problem is a no-op.
 *
 * Descriptors are plain C: device pointers, strides in elements, dtypes as dlk_dtype ints.
 * A matrix operand is {data, row stride, column stride}; its shape comes from the
 * descriptor's sizes ([B, H], [B, P], [B, G*H], [B, S]); data NULL means absent (an input
 * of zeros, or an output not wanted).
 *
 *   rnn_step.cu        pointwise gate kernels of one step, forward and backward (variant 1
 *                      of rnn_fwd / rnn_bwd, and the cell backward), plus the small
 *                      helpers of a sequence: state copies, dropout between layers,
 *                      gathers of the previous states, column sums
 *   rnn_cell.cu        the fused cell forward: gate GEMVs and pointwise in one launch
 *   rnn_persistent.cu  the persistent small-batch sequence kernel (variant 2) and the fused
 *                      batch-1 inference kernel (variant 3)
 */
#ifndef DLK_KERNELS_RNN_H
#define DLK_KERNELS_RNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dlk_k_rnn_mat {
  void *data;
  int64_t rs, cs; /* row and column strides in elements */
} dlk_k_rnn_mat;

/* Modes as dlk_rnn_mode: 0 tanh, 1 relu, 2 LSTM, 3 GRU. */

/* ---- one step, forward: the gate pointwise after the GEMMs ----
   gi = W_ih x + b_ih (x-part, bias included), gh = W_hh h (no bias: b_hh is added here).
   Row b is active when lens is NULL or t < lens[b]; an inactive row keeps its state
   (h_out, c_out untouched) and gets zeros in y, saved and c_out2.
   phase 0: the whole step (RNN, LSTM, PyTorch GRU)
   GRU reset_before: phase 1 computes r, z into saved (cols 0..2H) and rh = r h;
   phase 2 takes gh = W_hn (r h) [B, H] and finishes n and h'.
   LSTM with a projection: hp_out gets o tanh(c') and h_out/y are not written (a GEMM by
   W_hr and dlk_k_rnn_commit follow). h_out may alias h, c_out may alias c (in place). */
typedef struct dlk_k_rnn_step_fwd_desc {
  int dtype, c_dtype, mode, phase;
  int64_t B, H, P, t;
  const int32_t *lens;
  dlk_k_rnn_mat gi, gh, h, c;
  const void *b_hh;
  int64_t b_hh_s;
  dlk_k_rnn_mat h_out, hp_out, c_out, c_out2, y, saved, rh;
  dlk_k_rnn_mat rz; /* f32 [B, 2H]: r and z from phase 1 to phase 2 (unrounded) */
  int c_out2_dtype;
} dlk_k_rnn_step_fwd_desc;
int dlk_k_rnn_step_fwd(const dlk_k_rnn_step_fwd_desc *a, int impl, void *ws, void *stream);

/* ---- one step, backward pointwise ----
   dh_tot = dh + dh2 + dy (dy only for active rows; any of them absent = 0). dh and
   dh_direct have dtype dh_dtype (a sequence keeps its running gradient in f32 and lets the
   recurrent GEMM write its product, in the data dtype, to dh2: one rounding per step,
   not one of the running sum); the others have dtype (c, dc: their own dtypes).
   phase 0: the whole step's pointwise (RNN, LSTM, PyTorch GRU), from saved, h and c (the
            step's inputs), dh_tot and dc: dgi, dgh (GRU: the recurrent gradient, else NULL
            = same as dgi), dc_out (c's gradient), dh_direct (h's gradient through the
            pointwise alone: GRU z dh', 0 otherwise), hp_out (LSTM: o tanh(c'), for dW_hr).
            With a projection, dhp [B, H] = W_hr^T dh_tot replaces dh_tot in the cell.
   phase 3: dht_out = dh_tot only (the projection's input gradient, before its GEMM).
   GRU reset_before: phase 1 does everything but the r gate (needs d(rh) = W_hn^T da_n);
   phase 2 takes drh and finishes da_r, dh_direct += d(rh) r, rh_out = r h.
   Inactive rows: dgi = dgh = 0, dc_out = dc, dh_direct = dh + dh2 (pass-through). dc_out
   may alias dc, dh_direct may alias dh. */
typedef struct dlk_k_rnn_step_bwd_desc {
  int dtype, c_dtype, dc_dtype, dh_dtype, mode, phase;
  int64_t B, H, P, t;
  const int32_t *lens;
  dlk_k_rnn_mat saved, h, c, dh, dh2, dy, dhp, dc, drh;
  dlk_k_rnn_mat dgi, dgh, dc_out, dh_direct, hp_out, dht_out, rh_out;
} dlk_k_rnn_step_bwd_desc;
int dlk_k_rnn_step_bwd(const dlk_k_rnn_step_bwd_desc *a, int impl, void *ws, void *stream);

/* ---- projection commit: for active rows state = src and y = src; inactive rows keep
   their state and get y = 0. [B, P], one dtype. y may be absent. */
typedef struct dlk_k_rnn_commit_desc {
  int dtype;
  int64_t B, P, t;
  const int32_t *lens;
  dlk_k_rnn_mat src, state, y;
} dlk_k_rnn_commit_desc;
int dlk_k_rnn_commit(const dlk_k_rnn_commit_desc *a, int impl, void *ws, void *stream);

/* ---- strided 3-D copy with dtype conversion: dst[i, j, k] = src[i, j, k] (src absent:
   zeros); mask_past_end: [T, B, n] rows with t >= lens[b] get 0 (lens NULL: none);
   accumulate: dst += src (gradients). src may be dst (in-place masking). ---- */
typedef struct dlk_k_rnn_copy3_desc {
  int src_dtype, dst_dtype;
  int64_t n0, n1, n2;
  const void *src;
  int64_t ss0, ss1, ss2;
  void *dst;
  int64_t ds0, ds1, ds2;
  const int32_t *lens;
  int mask_past_end;
  int accumulate;
} dlk_k_rnn_copy3_desc;
int dlk_k_rnn_copy3(const dlk_k_rnn_copy3_desc *a, int impl, void *ws, void *stream);

/* ---- dropout between layers: dst[t, b, j] = src[t, b, j] * keep / (1 - p), keep as
   dlk_dropout_uniform(seed, counter0 + (t * B + b) * W + j) >= p. Contiguous [T, B, W]
   of one dtype; src and dst may alias. ---- */
typedef struct dlk_k_rnn_dropout_desc {
  int dtype;
  int64_t T, B, W;
  const void *src;
  void *dst;
  double prob;
  uint64_t seed, counter0;
} dlk_k_rnn_dropout_desc;
int dlk_k_rnn_dropout(const dlk_k_rnn_dropout_desc *a, int impl, void *ws, void *stream);

/* ---- the state each step of a layer and direction started from: out[t, b, :] =
   (first step of row b ? init[b, :] : seq[tp, b, :]) with tp = t - 1 (dir 0) or t + 1
   (dir 1); first: t == 0 (dir 0) or t + 1 >= len_b (dir 1). Rows past a sequence's end
   get 0. init absent: zeros. seq [T, B, n] with strides; out contiguous [T, B, n]. ---- */
typedef struct dlk_k_rnn_prev_desc {
  int dtype, out_dtype, init_dtype, dir;
  int64_t T, B, n;
  const int32_t *lens;
  const void *seq;
  int64_t s0, s1, s2;
  const void *init;
  int64_t i0, i1; /* init [B, n] strides */
  void *out;
} dlk_k_rnn_prev_desc;
int dlk_k_rnn_prev(const dlk_k_rnn_prev_desc *a, int impl, void *ws, void *stream);

/* ---- bias gradients: dst[j] += sum over rows r of src[r, j] (f32 accumulation, then one
   rounding), src [R, C] contiguous of dtype, dst [C] with stride. ---- */
typedef struct dlk_k_rnn_colsum_desc {
  int dtype;
  int64_t R, C;
  const void *src;
  int64_t src_rs;
  void *dst;
  int64_t dst_s;
} dlk_k_rnn_colsum_desc;
int dlk_k_rnn_colsum(const dlk_k_rnn_colsum_desc *a, int impl, void *ws, void *stream);

/* ---- the fused cell forward (rnn_cell_fwd variant 1): gi = W_ih x + b_ih and
   gh = W_hh h (+ b_hh) by warp-per-hidden-unit GEMVs over up to 8 batch rows, then the
   step pointwise of dlk_k_rnn_step_fwd, in one launch. GRU reset_before and the LSTM
   projection need a second launch (their second GEMV needs every unit of the first). ---- */
typedef struct dlk_k_rnn_cell_fwd_desc {
  int dtype, mode, reset_before;
  int64_t B, I, H, P;
  dlk_k_rnn_mat x, h, c, w_ih, w_hh, w_hr;
  const void *b_ih, *b_hh;
  int64_t b_ih_s, b_hh_s;
  dlk_k_rnn_mat h_out, c_out, saved;
} dlk_k_rnn_cell_fwd_desc;
size_t dlk_k_rnn_cell_fwd_ws(const dlk_k_rnn_cell_fwd_desc *a, int impl);
int dlk_k_rnn_cell_fwd(const dlk_k_rnn_cell_fwd_desc *a, int impl, void *ws, void *stream);

/* ---- persistent sequence kernel (rnn_fwd variants 2 and 3): one layer and direction,
   all steps in one launch. gi [T, B, G*H] (input projection with b_ih, computed before by
   a GEMM; variant 3 instead computes it in the kernel from x and w_ih). Each block keeps
   its hidden units' rows of W_hh in shared memory; a grid-wide barrier separates steps.
   The state is double-buffered in `hbuf` [2, B, H] (workspace). ---- */
typedef struct dlk_k_rnn_persist_desc {
  int device; /* CUDA ordinal the plan queries */
  int dtype, mode, dir, fuse_input;
  int64_t T, B, I, H;
  const int32_t *lens;
  dlk_k_rnn_mat w_hh, w_ih;          /* w_ih only with fuse_input */
  const void *b_ih, *b_hh;
  int64_t b_ih_s, b_hh_s;
  const void *gi;                    /* [T, B, G*H] contiguous (not fuse_input) */
  const void *x;                     /* fuse_input: [T, B, I] with strides */
  int64_t xs0, xs1, xs2;
  const void *h0, *c0;               /* [B, H] with strides, or NULL (zeros) */
  int64_t h0s0, h0s1, c0s0, c0s1;
  void *ys;                          /* [T, B, ys_w] contiguous, this direction at column ys_off */
  int64_t ys_w, ys_off;
  void *saved;                       /* [T, B, S] or NULL */
  void *cs;                          /* [T, B, H] f32 (LSTM) or NULL */
  void *hn, *cn;                     /* [B, H] with strides, or NULL */
  int64_t hns0, hns1, cns0, cns1;
  int blocks;                        /* grid size, from dlk_k_rnn_persist_plan */
} dlk_k_rnn_persist_desc;
/* Can the grid hold every block at once with this W_hh slice on chip? 1 and the grid size
   (and the workspace bytes) filled in, or 0 with the reason. Needs the current device. */
int dlk_k_rnn_persist_plan(dlk_k_rnn_persist_desc *a, size_t *ws_bytes, char *why, size_t n);
int dlk_k_rnn_persist(const dlk_k_rnn_persist_desc *a, int impl, void *ws, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DLK_KERNELS_RNN_H */
