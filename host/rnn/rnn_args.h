/*
 * rnn family, internal: the argument record of every op (what host/rnn/rnn.c builds after
 * checking the public call) and the layout of the training reserve. A header of its own
 * (no .c) so that the row files and host/rnn/rnn_layout.c share the records without a
 * circle through host/rnn/rnn.c; host/rnn/rnn.h adds the variant rows.
 *
 * Files of the family:
 *   host/rnn/rnn.c        public functions: checks, records, shape keys, variant tables
 *   host/rnn/rnn_cpu.c    variant 0 of every op: the CPU reference (the spec)
 *   host/rnn/rnn_cuda.c   CUDA rows (1..9): the straightforward GEMM + gate-kernel
 *                         sequence, the persistent small-batch kernel, the fused batch-1
 *                         inference kernel, the fused cell
 *   host/rnn/rnn_cudnn.c  vendor row (10): cuDNN's RNN API
 *   kernels/rnn/          the kernels (launcher prototypes in kernels/rnn/rnn.h)
 *   tests/test_rnn.c      goldens, finite differences, bad input, every variant
 *
 * Conventions of the records: every tensor is checked (device, dtype, shapes) and
 * normalised: sequence tensors x, y, dy, dx are time-major [T, B, .] views (a batch_first
 * tensor is the same memory with its first two strides swapped); optional tensors have a
 * has_<name> flag. Weights of a sequence stay in the caller's array (checked, L*D entries).
 */
#ifndef DLK_RNN_ARGS_H
#define DLK_RNN_ARGS_H

#include "../core/internal.h"

#define DLK_RNN_MAX_LAYERS 64
/* Bytes at the start of a training reserve: dlk_rnn_reserve_header, then the store. */
#define DLK_RNN_RESERVE_HEADER 256
/* Reserve formats: who wrote it, so the backward runs a variant that reads it. */
#define DLK_RNN_FORMAT_DLK 0    /* the layout below: CPU reference and CUDA variants 1..9 */
#define DLK_RNN_FORMAT_CUDNN 10 /* cuDNN's own reserve space after the header (standard algo) */
#define DLK_RNN_FORMAT_CUDNN_PERSIST 11 /* the same, written by CUDNN_RNN_ALGO_PERSIST_STATIC */

/* Gates per mode: RNN 1, LSTM 4 (i, f, g, o), GRU 3 (r, z, n). */
static inline int64_t dlk_rnn_gates(dlk_rnn_mode m) {
  return m == DLK_RNN_LSTM ? 4 : m == DLK_RNN_GRU ? 3 : 1;
}

/* One layer and direction's weights (copies of checked descriptors). */
typedef struct dlk_rnn_w {
  dlk_tensor w_ih, w_hh, b_ih, b_hh, w_hr;
  bool has_b_ih, has_b_hh, has_w_hr;
} dlk_rnn_w;
/* Its gradients (accumulated); has_* false: not wanted. */
typedef struct dlk_rnn_gw {
  dlk_tensor w_ih, w_hh, b_ih, b_hh, w_hr;
  bool has_w_ih, has_w_hh, has_b_ih, has_b_hh, has_w_hr;
} dlk_rnn_gw;

/* rnn_cell_fwd: x [B, I], h [B, P], c [B, H], h_out [B, P], c_out [B, H], saved [B, S];
   P = state width (proj_size when w_hr is present, else H). */
typedef struct dlk_rnn_cell_fwd_args {
  dlk_rnn_mode mode;
  bool reset_before;
  int64_t batch, input, hidden, state, saved_cols;
  dlk_rnn_w w;
  dlk_tensor x, h, c, h_out, c_out, saved;
  bool has_h, has_c, has_c_out, has_saved;
} dlk_rnn_cell_fwd_args;

/* rnn_cell_bwd: the forward's inputs and saved, the output gradients (absent = 0), the
   input gradients (written) and the weight gradients (accumulated). */
typedef struct dlk_rnn_cell_bwd_args {
  dlk_rnn_mode mode;
  bool reset_before;
  int64_t batch, input, hidden, state, saved_cols;
  dlk_rnn_w w;
  dlk_tensor x, h, c, saved, dh_out, dc_out, dx, dh, dc;
  bool has_h, has_c, has_dh_out, has_dc_out, has_dx, has_dh, has_dc;
  dlk_rnn_gw g;
} dlk_rnn_cell_bwd_args;

/* rnn_fwd. T steps, B batch, I input features, H hidden, P state width (proj or H),
   L layers, D directions. lens: host copy of lengths (NULL: all T); max_len its maximum. */
typedef struct dlk_rnn_fwd_args {
  dlk_rnn_mode mode;
  bool reset_before, training, has_dropout;
  int64_t T, B, I, H, P, L, D;
  double dropout;
  uint64_t seed;
  const dlk_rnn_weights *weights; /* L*D entries, checked */
  dlk_tensor x, y;                /* [T, B, I], [T, B, D*P] */
  bool has_lengths;
  dlk_tensor lengths;             /* as given (host or device) */
  const int32_t *lens;            /* host copy, [B] */
  int64_t max_len;
  dlk_tensor h0, c0, hn, cn;      /* [L*D, B, P], [L*D, B, H] */
  bool has_h0, has_c0, has_hn, has_cn;
  dlk_tensor reserve;             /* 1-D U8, when training */
  uint64_t key_hash;              /* configuration hash written into the reserve header */
} dlk_rnn_fwd_args;

/* rnn_bwd: the forward's record (training) plus the gradients. format: who wrote the
   reserve (read from its header before dispatch). */
typedef struct dlk_rnn_bwd_args {
  dlk_rnn_fwd_args f;
  int format;
  dlk_tensor dy, dhn, dcn, dx, dh0, dc0;
  bool has_dy, has_dhn, has_dcn, has_dx, has_dh0, has_dc0;
  const dlk_rnn_grads *dweights; /* L*D entries or NULL */
} dlk_rnn_bwd_args;

/* The header at the start of a reserve. */
typedef struct dlk_rnn_reserve_header {
  char magic[8]; /* "dlkrnn1" */
  uint32_t format;
  uint32_t reserved;
  uint64_t key_hash;
} dlk_rnn_reserve_header;

/* The dlk reserve layout (DLK_RNN_FORMAT_DLK), byte offsets from the start of the store
   (DLK_RNN_RESERVE_HEADER bytes into the reserve), every block 256-byte aligned:
     ys[l]       [T, B, D*P]  x's dtype  layer l's output (the state after each step; 0 past
                                         a sequence's end); ys[L-1] equals y
     drop[l]     [T, B, D*P]  x's dtype  layer l's input after dropout (l >= 1, dropout on)
     gates[l*D+d][T, B, S]    x's dtype  the cell's saved values of each step (S as the cell)
     cs[l*D+d]   [T, B, H]    F32 (F64)  LSTM cell state after each step
   A forward without training uses the same layout in its workspace. */
typedef struct dlk_rnn_layout {
  dlk_dtype dt, ct; /* data and cell-state dtypes */
  int64_t S;
  size_t ys[DLK_RNN_MAX_LAYERS], drop[DLK_RNN_MAX_LAYERS];
  size_t gates[2 * DLK_RNN_MAX_LAYERS], cs[2 * DLK_RNN_MAX_LAYERS];
  size_t total; /* bytes of the store */
} dlk_rnn_layout;
/* Is step t of batch row b inside its sequence? */
static inline bool dlk_rnn_active(const dlk_rnn_fwd_args *a, int64_t t, int64_t b) {
  return !a->has_lengths || t < a->lens[b];
}
/* The dropout counter of element (t, b, j) of layer l's input (l >= 1). */
static inline uint64_t dlk_rnn_drop_counter(const dlk_rnn_fwd_args *a, int64_t l, int64_t t,
                                            int64_t b, int64_t j) {
  const int64_t w = a->D * a->P;
  return (uint64_t)((((l - 1) * a->T + t) * a->B + b) * w + j);
}

#endif /* DLK_RNN_ARGS_H */
