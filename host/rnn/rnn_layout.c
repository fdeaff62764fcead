/*
 * rnn family: the helpers the public file and every variant file share (declared in
 * host/rnn/rnn_layout.h): a record's weights as per-layer descriptors, and the dlk
 * reserve layout described in host/rnn/rnn_args.h.
 */
#include <string.h>

#include "rnn_layout.h"

void dlk_rnn_w_from(const dlk_rnn_weights *in, dlk_rnn_w *out) {
  memset(out, 0, sizeof *out);
  out->w_ih = *in->w_ih;
  out->w_hh = *in->w_hh;
  if ((out->has_b_ih = in->b_ih != NULL)) out->b_ih = *in->b_ih;
  if ((out->has_b_hh = in->b_hh != NULL)) out->b_hh = *in->b_hh;
  if ((out->has_w_hr = in->w_hr != NULL)) out->w_hr = *in->w_hr;
}

void dlk_rnn_gw_from(const dlk_rnn_grads *in, dlk_rnn_gw *out) {
  memset(out, 0, sizeof *out);
  if (!in) return;
#define GW(f)                      \
  if ((out->has_##f = in->f != NULL)) out->f = *in->f;
  GW(w_ih) GW(w_hh) GW(b_ih) GW(b_hh) GW(w_hr)
#undef GW
}

void dlk_rnn_layer_w(const dlk_rnn_fwd_args *a, int64_t ld, dlk_rnn_w *out) {
  dlk_rnn_w_from(&a->weights[ld], out);
}

static size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }

void dlk_rnn_layout_of(const dlk_rnn_fwd_args *a, dlk_rnn_layout *lo) {
  memset(lo, 0, sizeof *lo);
  lo->dt = a->x.dtype;
  lo->ct = a->x.dtype == DLK_F64 ? DLK_F64 : DLK_F32;
  lo->S = dlk_rnn_saved_cols_of(a->mode, a->H);
  const size_t es = dlk_dtype_size(lo->dt), cs = dlk_dtype_size(lo->ct), tb = (size_t)(a->T * a->B);
  size_t off = 0;
  for (int64_t l = 0; l < a->L; l++) {
    lo->ys[l] = off;
    off += align256(tb * (size_t)(a->D * a->P) * es);
    if (l > 0 && a->has_dropout) {
      lo->drop[l] = off;
      off += align256(tb * (size_t)(a->D * a->P) * es);
    }
    for (int64_t d = 0; d < a->D; d++) {
      lo->gates[l * a->D + d] = off;
      off += align256(tb * (size_t)lo->S * es);
      if (a->mode == DLK_RNN_LSTM) {
        lo->cs[l * a->D + d] = off;
        off += align256(tb * (size_t)a->H * cs);
      }
    }
  }
  lo->total = off;
}

size_t dlk_rnn_dlk_reserve_bytes(const dlk_rnn_fwd_args *a) {
  dlk_rnn_layout lo;
  dlk_rnn_layout_of(a, &lo);
  return DLK_RNN_RESERVE_HEADER + lo.total;
}

int64_t dlk_rnn_saved_cols_of(dlk_rnn_mode mode, int64_t hidden) {
  if ((unsigned)mode > DLK_RNN_GRU || hidden < 0 || hidden > INT64_MAX / 8) return 0;
  return hidden * (mode == DLK_RNN_LSTM ? 5 : mode == DLK_RNN_GRU ? 4 : 1);
}

