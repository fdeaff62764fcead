// rnn: the fused cell forward (rnn_cell_fwd variant 1, "fused"): both gate GEMVs and the
// step pointwise in one launch, the call a decoder loop makes every step.
#include <string.h>

#include "rnn_common.cuh"

#include "rnn_pointwise.cuh"

using namespace dlk_rnn;

namespace {

constexpr int kWarps = 4;  // warps per block: hidden units per block
constexpr int kRows = 8;   // batch rows per warp (grid y covers the rest)

// Partial dot products of one lane: acc[g][q] += W[g*H + j, k] v[b0 + q, k] over the lane's
// k (k = lane, lane + 32, ...). Rows of W are read coalesced across the warp; the same W
// element serves all kRows batch rows.
template <typename T>
__device__ __forceinline__ void gate_dots(const T *w, int64_t wrs, int64_t wcs, int64_t H, int64_t j, int G,
                                          const T *v, int64_t vrs, int64_t vcs, int64_t K, int64_t b0, int nb,
                                          float acc[4][kRows]) {
  for (int64_t k = threadIdx.x % 32; k < K; k += 32) {
    float vk[kRows];
#pragma unroll
    for (int q = 0; q < kRows; q++) vk[q] = q < nb ? to_f(v[(b0 + q) * vrs + k * vcs]) : 0.0f;
#pragma unroll
    for (int g = 0; g < 4; g++) { // constant indices keep acc in registers
      if (g >= G) break;
      const float wv = to_f(w[(g * H + j) * wrs + k * wcs]);
#pragma unroll
      for (int q = 0; q < kRows; q++) acc[g][q] += wv * vk[q];
    }
  }
}

__device__ __forceinline__ float bias_at(const void *b, int dtype, int64_t s, int64_t i) {
  return b ? ld_as(b, dtype, i * s) : 0.0f;
}

// Fused cell forward. Thread mapping: block (bx, by) of kWarps warps; warp w owns hidden
// unit j = bx * kWarps + w for batch rows b0 = by * kRows .. b0 + kRows - 1. Each lane
// accumulates G x kRows partial sums of W_ih x and of W_hh h (gate_dots), a butterfly warp
// sum gives every lane the totals, and lane q < kRows runs the pointwise for row b0 + q.
// No shared memory. GRU reset_before (phase 1 here) leaves the n gate to the second
// kernel and keeps the x-part of n in gin; the LSTM projection leaves hp in o.hp_out.
template <typename T>
__global__ void rnn_cell_fwd_kernel(dlk_k_rnn_cell_fwd_desc a, FwdOut o, float *gin) {
  const int64_t j = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32, b0 = (int64_t)blockIdx.y * kRows;
  if (j >= a.H) return;  // whole warps leave together
  const int nb = (int)(a.B - b0 < kRows ? a.B - b0 : kRows);
  const int G = a.mode == DLK_RNN_LSTM ? 4 : a.mode == DLK_RNN_GRU ? 3 : 1;
  const int phase = a.reset_before ? 1 : 0;
  float ai[4][kRows], ah[4][kRows];
#pragma unroll
  for (int g = 0; g < 4; g++)
#pragma unroll
    for (int q = 0; q < kRows; q++) ai[g][q] = ah[g][q] = 0.0f;
  gate_dots<T>((const T *)a.w_ih.data, a.w_ih.rs, a.w_ih.cs, a.H, j, G, (const T *)a.x.data, a.x.rs, a.x.cs, a.I, b0,
               nb, ai);
  // reset_before: the n rows of W_hh multiply r h, which needs every unit's r: phase 2.
  if (a.h.data)
    gate_dots<T>((const T *)a.w_hh.data, a.w_hh.rs, a.w_hh.cs, a.H, j, phase == 1 ? 2 : G, (const T *)a.h.data,
                 a.h.rs, a.h.cs, a.P, b0, nb, ah);
#pragma unroll
  for (int g = 0; g < 4; g++) {
    if (g >= G) break;
#pragma unroll
    for (int q = 0; q < kRows; q++) {
      ai[g][q] = warp_sum(ai[g][q]);
      ah[g][q] = warp_sum(ah[g][q]);
    }
  }
  const int lane = threadIdx.x % 32;
  // Lane q picks row q's sums out of the (fully unrolled) register arrays.
#pragma unroll
  for (int q = 0; q < kRows; q++) {
    if (q != lane || q >= nb) continue;
    const int64_t b = b0 + q;
    float gi[4], gh[4];
#pragma unroll
    for (int g = 0; g < 4; g++) {
      gi[g] = g < G ? ai[g][q] + bias_at(a.b_ih, a.dtype, a.b_ih_s, g * a.H + j) : 0.0f;
      gh[g] = g < G ? ah[g][q] + bias_at(a.b_hh, a.dtype, a.b_hh_s, g * a.H + j) : 0.0f;
    }
    if (phase == 1) gin[b * a.H + j] = gi[2];
    pw_fwd(o, a.mode, phase, b, j, gi, gh);
  }
}

// Second phase. Thread mapping as the first kernel: warp per output unit u (GRU: hidden
// unit j of the n gate; projection: output p) and kRows batch rows; the lanes stride over
// the H entries of v (rh or hp, [B, H] contiguous of T in the workspace).
//   reset_before: hn = W_hn (r h) + b_hn, then n and h' (pointwise phase 2)
//   projection:   h_out[b, p] = W_hr[p, :] hp[b, :]
template <typename T>
__global__ void rnn_cell_fwd2_kernel(dlk_k_rnn_cell_fwd_desc a, FwdOut o, const float *gin, const T *v) {
  const bool proj = a.mode == DLK_RNN_LSTM;
  const int64_t outs = proj ? a.P : a.H;
  const int64_t u = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32, b0 = (int64_t)blockIdx.y * kRows;
  if (u >= outs) return;
  const int nb = (int)(a.B - b0 < kRows ? a.B - b0 : kRows);
  float acc[4][kRows];
#pragma unroll
  for (int g = 0; g < 4; g++)
#pragma unroll
    for (int q = 0; q < kRows; q++) acc[g][q] = 0.0f;
  if (proj)
    gate_dots<T>((const T *)a.w_hr.data, a.w_hr.rs, a.w_hr.cs, 0, u, 1, v, a.H, 1, a.H, b0, nb, acc);
  else // rows 2H + u of W_hh: the n gate
    gate_dots<T>((const T *)a.w_hh.data + 2 * a.H * a.w_hh.rs, a.w_hh.rs, a.w_hh.cs, 0, u, 1, v, a.H, 1, a.H, b0, nb,
                 acc);
#pragma unroll
  for (int q = 0; q < kRows; q++) acc[0][q] = warp_sum(acc[0][q]);
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int q = 0; q < kRows; q++) {
    if (q != lane || q >= nb) continue;
    const int64_t b = b0 + q;
    if (proj) {
      stm(a.h_out, a.dtype, b, u, acc[0][q]);
    } else {
      float gi[4] = {0, 0, gin[b * a.H + u], 0};
      float gh[4] = {0, 0, acc[0][q] + bias_at(a.b_hh, a.dtype, a.b_hh_s, 2 * a.H + u), 0};
      pw_fwd(o, a.mode, 2, b, u, gi, gh);
    }
  }
}

size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }

template <typename T>
int launch(const dlk_k_rnn_cell_fwd_desc *a, void *ws, void *stream) {
  FwdOut o;
  memset(&o, 0, sizeof o);
  o.dtype = a->dtype, o.c_dtype = a->dtype, o.c_out2_dtype = a->dtype, o.H = a->H;
  o.h = a->h, o.c = a->c, o.h_out = a->h_out, o.c_out = a->c_out, o.saved = a->saved;
  const bool rb = a->mode == DLK_RNN_GRU && a->reset_before, proj = a->mode == DLK_RNN_LSTM && a->w_hr.data;
  const size_t bh = (size_t)(a->B * a->H);
  float *rz = (float *)ws, *gin = (float *)((char *)ws + align256(2 * bh * 4));
  T *v = (T *)((char *)ws + align256(2 * bh * 4) + align256(bh * 4));
  if (rb) {
    o.rz = {rz, 2 * a->H, 1};
    o.rh = {v, a->H, 1};
  }
  if (proj) {
    v = (T *)ws;
    o.hp_out = {v, a->H, 1};
  }
  const dim3 block(32 * kWarps), grid((unsigned)((a->H + kWarps - 1) / kWarps), (unsigned)((a->B + kRows - 1) / kRows));
  DLK_LAUNCH(rnn_cell_fwd_kernel<T>, grid, block, 0, stream)(*a, o, gin);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || !(rb || proj)) return (int)e;
  const int64_t outs = proj ? a->P : a->H;
  const dim3 grid2((unsigned)((outs + kWarps - 1) / kWarps), grid.y);
  DLK_LAUNCH(rnn_cell_fwd2_kernel<T>, grid2, block, 0, stream)(*a, o, gin, (const T *)v);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" size_t dlk_k_rnn_cell_fwd_ws(const dlk_k_rnn_cell_fwd_desc *a, int impl) {
  (void)impl;
  const size_t bh = (size_t)(a->B * a->H);
  if (a->mode == DLK_RNN_GRU && a->reset_before) return align256(2 * bh * 4) + align256(bh * 4) + align256(bh * 4);
  if (a->mode == DLK_RNN_LSTM && a->w_hr.data) return align256(bh * 4);
  return 0;
}

extern "C" int dlk_k_rnn_cell_fwd(const dlk_k_rnn_cell_fwd_desc *a, int impl, void *ws, void *stream) {
  (void)impl;
  if (a->B == 0 || a->H == 0) return 0;
  if ((a->B + kRows - 1) / kRows > 65535) return (int)cudaErrorInvalidConfiguration;
  switch (a->dtype) {
    case DLK_F32: return launch<float>(a, ws, stream);
    case DLK_F16: return launch<f16>(a, ws, stream);
    case DLK_BF16: return launch<bf16>(a, ws, stream);
    default: return (int)cudaErrorInvalidValue;
  }
}
