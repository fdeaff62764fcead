/*
 * rnn family, internal: helpers every variant file shares (records to per-layer weights,
 * the dlk reserve layout), in a module of their own so the row files never call back
 * into host/rnn/rnn.c (tests/layering.sh: no call circles between objects).
 */
#ifndef DLK_RNN_LAYOUT_H
#define DLK_RNN_LAYOUT_H

#include "rnn_args.h"

/* Saved columns of a cell: RNN H, LSTM 5H, GRU 4H (0 for a bad mode or size). */
int64_t dlk_rnn_saved_cols_of(dlk_rnn_mode mode, int64_t hidden);
void dlk_rnn_w_from(const dlk_rnn_weights *in, dlk_rnn_w *out);
void dlk_rnn_gw_from(const dlk_rnn_grads *in, dlk_rnn_gw *out); /* NULL: none wanted */
/* The layer-direction's weights of a sequence record. */
void dlk_rnn_layer_w(const dlk_rnn_fwd_args *a, int64_t ld, dlk_rnn_w *out);
void dlk_rnn_layout_of(const dlk_rnn_fwd_args *a, dlk_rnn_layout *out);
/* Bytes of a dlk-format training reserve. */
size_t dlk_rnn_dlk_reserve_bytes(const dlk_rnn_fwd_args *a);

#endif /* DLK_RNN_LAYOUT_H */
