// The gate pointwise of one step, forward and backward, for one (batch row, hidden unit):
// shared by the step kernels (rnn_step.cu) and the fused cell (rnn_cell.cu). Formulas as
// host/rnn/rnn_cpu.c, in f32.
#ifndef DLK_RNN_POINTWISE_CUH
#define DLK_RNN_POINTWISE_CUH

#include "rnn_common.cuh"

namespace dlk_rnn {

// Where a forward step's results go (see dlk_k_rnn_step_fwd_desc).
struct FwdOut {
  int dtype, c_dtype, c_out2_dtype;
  int64_t H;
  dlk_k_rnn_mat h, c, h_out, hp_out, c_out, c_out2, y, saved, rh, rz;
};

inline __device__ FwdOut fwd_out_of(const dlk_k_rnn_step_fwd_desc &a) {
  FwdOut o;
  o.dtype = a.dtype, o.c_dtype = a.c_dtype, o.c_out2_dtype = a.c_out2_dtype, o.H = a.H;
  o.h = a.h, o.c = a.c, o.h_out = a.h_out, o.hp_out = a.hp_out, o.c_out = a.c_out, o.c_out2 = a.c_out2;
  o.y = a.y, o.saved = a.saved, o.rh = a.rh, o.rz = a.rz;
  return o;
}

__device__ __forceinline__ int saved_blocks(int mode) { return mode == DLK_RNN_LSTM ? 5 : mode == DLK_RNN_GRU ? 4 : 1; }

// A row past its sequence's end: its state stays, y and what the store keeps are 0.
__device__ __forceinline__ void pw_fwd_inactive(const FwdOut &o, int mode, int phase, int64_t b, int64_t j) {
  stm(o.y, o.dtype, b, j, 0.0f);
  if (phase == 2) return;
  for (int k = 0; k < saved_blocks(mode); k++) stm(o.saved, o.dtype, b, k * o.H + j, 0.0f);
  stm(o.c_out2, o.c_out2_dtype, b, j, 0.0f);
}

// gi[g]: the x-part of gate g with b_ih; gh[g]: the recurrent part with b_hh (GRU phase 2:
// gh[2] = W_hn (r h) + b_hn, gi[2] the x-part of n).
__device__ __forceinline__ void pw_fwd(const FwdOut &o, int mode, int phase, int64_t b, int64_t j, const float *gi,
                                       const float *gh) {
  const int64_t H = o.H;
  const int dt = o.dtype;
  switch (mode) {
    case DLK_RNN_TANH:
    case DLK_RNN_RELU: {
      const float a = gi[0] + gh[0];
      const float v = mode == DLK_RNN_TANH ? tanhf(a) : (a <= 0.0f ? 0.0f : a); // relu keeps NaN
      stm(o.h_out, dt, b, j, v);
      stm(o.y, dt, b, j, v);
      stm(o.saved, dt, b, j, v);
      break;
    }
    case DLK_RNN_LSTM: {
      const float i = sigm(gi[0] + gh[0]), f = sigm(gi[1] + gh[1]), g = tanhf(gi[2] + gh[2]), og = sigm(gi[3] + gh[3]);
      const float cc = f * ldm(o.c, o.c_dtype, b, j) + i * g, tc = tanhf(cc), hp = og * tc;
      stm(o.saved, dt, b, j, i);
      stm(o.saved, dt, b, H + j, f);
      stm(o.saved, dt, b, 2 * H + j, g);
      stm(o.saved, dt, b, 3 * H + j, og);
      stm(o.saved, dt, b, 4 * H + j, tc);
      stm(o.c_out, o.c_dtype, b, j, cc);
      stm(o.c_out2, o.c_out2_dtype, b, j, cc);
      if (o.hp_out.data) {
        stm(o.hp_out, dt, b, j, hp);
      } else {
        stm(o.h_out, dt, b, j, hp);
        stm(o.y, dt, b, j, hp);
      }
      break;
    }
    case DLK_RNN_GRU: {
      const float hv = ldm(o.h, dt, b, j);
      if (phase == 1) { // reset_before, first half: r, z and r h
        const float r = sigm(gi[0] + gh[0]), z = sigm(gi[1] + gh[1]);
        stm(o.saved, dt, b, j, r);
        stm(o.saved, dt, b, H + j, z);
        stm(o.rz, DLK_F32, b, j, r);
        stm(o.rz, DLK_F32, b, H + j, z);
        stm(o.rh, dt, b, j, r * hv);
        break;
      }
      float r, z;
      if (phase == 2) {
        r = ldm(o.rz, DLK_F32, b, j), z = ldm(o.rz, DLK_F32, b, H + j);
      } else {
        r = sigm(gi[0] + gh[0]), z = sigm(gi[1] + gh[1]);
      }
      const float hn = gh[2], n = tanhf(gi[2] + (phase == 2 ? hn : r * hn));
      const float v = (1.0f - z) * n + z * hv;
      if (phase != 2) {
        stm(o.saved, dt, b, j, r);
        stm(o.saved, dt, b, H + j, z);
      }
      stm(o.saved, dt, b, 2 * H + j, n);
      stm(o.saved, dt, b, 3 * H + j, hn);
      stm(o.h_out, dt, b, j, v);
      stm(o.y, dt, b, j, v);
      break;
    }
  }
}

// Backward of one (b, j); see dlk_k_rnn_step_bwd_desc.
__device__ __forceinline__ void pw_bwd(const dlk_k_rnn_step_bwd_desc &a, int64_t b, int64_t j) {
  const int dt = a.dtype, hdt = a.dh_dtype;
  const int64_t H = a.H;
  const bool act = active(a.lens, a.t, b);
  // the running gradient of h: dh + dh2 (+ dy for rows inside their sequence)
  const auto dh_in = [&](int64_t k) { return ldm(a.dh, hdt, b, k) + ldm(a.dh2, dt, b, k); };
  if (a.phase == 3) {
    stm(a.dht_out, dt, b, j, dh_in(j) + (act ? ldm(a.dy, dt, b, j) : 0.0f));
    return;
  }
  const int G = a.mode == DLK_RNN_LSTM ? 4 : a.mode == DLK_RNN_GRU ? 3 : 1;
  if (!act) {
    if (a.phase == 2) {
      stm(a.dgi, dt, b, j, 0.0f);
      stm(a.dgh, dt, b, j, 0.0f);
      stm(a.rh_out, dt, b, j, 0.0f);
      return;
    }
    for (int g = 0; g < G; g++) {
      stm(a.dgi, dt, b, g * H + j, 0.0f);
      stm(a.dgh, dt, b, g * H + j, 0.0f);
    }
    if (a.mode == DLK_RNN_LSTM) stm(a.dc_out, a.dc_dtype, b, j, ldm(a.dc, a.dc_dtype, b, j));
    if (j < a.P) stm(a.dh_direct, hdt, b, j, dh_in(j));
    stm(a.hp_out, dt, b, j, 0.0f);
    return;
  }
  switch (a.mode) {
    case DLK_RNN_TANH:
    case DLK_RNN_RELU: {
      const float hv = ldm(a.saved, dt, b, j), g = dh_in(j) + ldm(a.dy, dt, b, j);
      const float da = g * (a.mode == DLK_RNN_TANH ? 1.0f - hv * hv : (hv > 0.0f ? 1.0f : 0.0f));
      stm(a.dgi, dt, b, j, da);
      stm(a.dgh, dt, b, j, da);
      stm(a.dh_direct, hdt, b, j, 0.0f);
      break;
    }
    case DLK_RNN_LSTM: {
      const float i = ldm(a.saved, dt, b, j), f = ldm(a.saved, dt, b, H + j), g = ldm(a.saved, dt, b, 2 * H + j);
      const float o = ldm(a.saved, dt, b, 3 * H + j), tc = ldm(a.saved, dt, b, 4 * H + j);
      const float dhp = a.dhp.data ? ldm(a.dhp, dt, b, j) : dh_in(j) + ldm(a.dy, dt, b, j);
      const float dct = ldm(a.dc, a.dc_dtype, b, j) + dhp * o * (1.0f - tc * tc);
      const float d_o = dhp * tc, di = dct * g, df = dct * ldm(a.c, a.c_dtype, b, j), dg = dct * i;
      const float v[4] = {di * i * (1.0f - i), df * f * (1.0f - f), dg * (1.0f - g * g), d_o * o * (1.0f - o)};
      for (int k = 0; k < 4; k++) {
        stm(a.dgi, dt, b, k * H + j, v[k]);
        stm(a.dgh, dt, b, k * H + j, v[k]);
      }
      stm(a.dc_out, a.dc_dtype, b, j, dct * f);
      if (j < a.P) stm(a.dh_direct, hdt, b, j, 0.0f);
      stm(a.hp_out, dt, b, j, o * tc);
      break;
    }
    case DLK_RNN_GRU: {
      const float r = ldm(a.saved, dt, b, j), hv = ldm(a.h, dt, b, j);
      if (a.phase == 2) { // reset_before, second half: the r gate from d(rh) = W_hn^T da_n
        const float drh = ldm(a.drh, dt, b, j), dar = drh * hv * r * (1.0f - r);
        stm(a.dgi, dt, b, j, dar);
        stm(a.dgh, dt, b, j, dar);
        stm(a.dh_direct, hdt, b, j, ldm(a.dh_direct, hdt, b, j) + drh * r);
        stm(a.rh_out, dt, b, j, r * hv);
        break;
      }
      const float z = ldm(a.saved, dt, b, H + j), n = ldm(a.saved, dt, b, 2 * H + j);
      const float hn = ldm(a.saved, dt, b, 3 * H + j), g = dh_in(j) + ldm(a.dy, dt, b, j);
      const float dan = g * (1.0f - z) * (1.0f - n * n), daz = g * (hv - n) * z * (1.0f - z);
      stm(a.dgi, dt, b, H + j, daz);
      stm(a.dgh, dt, b, H + j, daz);
      stm(a.dgi, dt, b, 2 * H + j, dan);
      if (a.phase == 1) {
        stm(a.dgh, dt, b, 2 * H + j, dan);
      } else {
        const float dar = dan * hn * r * (1.0f - r);
        stm(a.dgi, dt, b, j, dar);
        stm(a.dgh, dt, b, j, dar);
        stm(a.dgh, dt, b, 2 * H + j, dan * r);
      }
      stm(a.dh_direct, hdt, b, j, g * z);
      break;
    }
  }
}

}  // namespace dlk_rnn

#endif  // DLK_RNN_POINTWISE_CUH
