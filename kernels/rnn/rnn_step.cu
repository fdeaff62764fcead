// rnn: the pointwise kernels of one step (forward and backward) and the small helpers a
// sequence needs around its GEMMs. All are memory-bound and take dtypes at run time (the
// switch is uniform across the grid). The formulas are the CPU reference's
// (host/rnn/rnn_cpu.c), in f32 for every data dtype.
#include "rnn_common.cuh"

#include "rnn_pointwise.cuh"

using namespace dlk_rnn;

// ==== forward pointwise =================================================================

namespace {
// Step forward. Thread mapping: one thread per (batch row b, hidden unit j), grid-stride
// over B*H, j fastest (coalesced along each row of gi, gh, saved). No shared memory.
__global__ void rnn_step_fwd_kernel(dlk_k_rnn_step_fwd_desc a) {
  const int64_t n = a.B * a.H, G = a.mode == DLK_RNN_LSTM ? 4 : a.mode == DLK_RNN_GRU ? 3 : 1;
  const FwdOut o = fwd_out_of(a);
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = idx / a.H, j = idx % a.H;
    DLK_RNN_KCHECK(b < a.B);
    if (!active(a.lens, a.t, b)) {
      pw_fwd_inactive(o, a.mode, a.phase, b, j);
      continue;
    }
    float gi[4] = {0, 0, 0, 0}, gh[4] = {0, 0, 0, 0};
    if (a.phase == 2) { // GRU reset_before: gh is W_hn (r h) [B, H]
      gi[2] = ldm(a.gi, a.dtype, b, 2 * a.H + j);
      gh[2] = ldm(a.gh, a.dtype, b, j) + (a.b_hh ? ld_as(a.b_hh, a.dtype, (2 * a.H + j) * a.b_hh_s) : 0.0f);
    } else {
      for (int64_t g = 0; g < G; g++) {
        gi[g] = ldm(a.gi, a.dtype, b, g * a.H + j);
        if (a.phase == 1 && g == 2) continue; // reset_before: the n rows come in phase 2
        gh[g] = ldm(a.gh, a.dtype, b, g * a.H + j) + (a.b_hh ? ld_as(a.b_hh, a.dtype, (g * a.H + j) * a.b_hh_s) : 0.0f);
      }
    }
    pw_fwd(o, a.mode, a.phase, b, j, gi, gh);
  }
}

}  // namespace

extern "C" int dlk_k_rnn_step_fwd(const dlk_k_rnn_step_fwd_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  if (a->B * a->H == 0) return 0;
  DLK_LAUNCH(rnn_step_fwd_kernel, grid_1d(a->B * a->H, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}

// ==== backward pointwise ================================================================

namespace {
// Step backward. Thread mapping: one thread per (b, j), j < H (phase 3: j < P), grid-stride.
__global__ void rnn_step_bwd_kernel(dlk_k_rnn_step_bwd_desc a) {
  const int64_t cols = a.phase == 3 ? a.P : a.H, n = a.B * cols;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = idx / cols, j = idx % cols;
    pw_bwd(a, b, j);
  }
}

}  // namespace

extern "C" int dlk_k_rnn_step_bwd(const dlk_k_rnn_step_bwd_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  const int64_t n = a->B * (a->phase == 3 ? a->P : a->H);
  if (n == 0) return 0;
  DLK_LAUNCH(rnn_step_bwd_kernel, grid_1d(n, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}

// ==== projection commit =================================================================

namespace {
// Thread mapping: one thread per (b, p) of [B, P], grid-stride.
__global__ void rnn_commit_kernel(dlk_k_rnn_commit_desc a) {
  const int64_t n = a.B * a.P;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = idx / a.P, p = idx % a.P;
    if (active(a.lens, a.t, b)) {
      const float v = ldm(a.src, a.dtype, b, p);
      stm(a.state, a.dtype, b, p, v);
      stm(a.y, a.dtype, b, p, v);
    } else {
      stm(a.y, a.dtype, b, p, 0.0f);
    }
  }
}

}  // namespace

extern "C" int dlk_k_rnn_commit(const dlk_k_rnn_commit_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  if (a->B * a->P == 0) return 0;
  DLK_LAUNCH(rnn_commit_kernel, grid_1d(a->B * a->P, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}

// ==== strided 3-D copy ==================================================================

namespace {
// Thread mapping: one thread per element of [n0, n1, n2] (row-major index), grid-stride.
__global__ void rnn_copy3_kernel(dlk_k_rnn_copy3_desc a) {
  const int64_t n = a.n0 * a.n1 * a.n2;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = idx % a.n2, j = (idx / a.n2) % a.n1, i = idx / (a.n1 * a.n2);
    float v = a.src ? ld_as(a.src, a.src_dtype, i * a.ss0 + j * a.ss1 + k * a.ss2) : 0.0f;
    if (a.mask_past_end && a.lens && i >= (int64_t)a.lens[j]) v = 0.0f;
    const int64_t d = i * a.ds0 + j * a.ds1 + k * a.ds2;
    if (a.accumulate) v += ld_as(a.dst, a.dst_dtype, d);
    st_as(a.dst, a.dst_dtype, d, v);
  }
}

// Same-dtype copies keep every bit (f64 through f32 would round): a separate kernel.
__global__ void rnn_copy3_f64_kernel(dlk_k_rnn_copy3_desc a) {
  const int64_t n = a.n0 * a.n1 * a.n2;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = idx % a.n2, j = (idx / a.n2) % a.n1, i = idx / (a.n1 * a.n2);
    double v = a.src ? ((const double *)a.src)[i * a.ss0 + j * a.ss1 + k * a.ss2] : 0.0;
    if (a.mask_past_end && a.lens && i >= (int64_t)a.lens[j]) v = 0.0;
    const int64_t d = i * a.ds0 + j * a.ds1 + k * a.ds2;
    ((double *)a.dst)[d] = a.accumulate ? ((double *)a.dst)[d] + v : v;
  }
}

}  // namespace

extern "C" int dlk_k_rnn_copy3(const dlk_k_rnn_copy3_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  const int64_t n = a->n0 * a->n1 * a->n2;
  if (n == 0) return 0;
  if (a->src_dtype == DLK_F64 && a->dst_dtype == DLK_F64)
    DLK_LAUNCH(rnn_copy3_f64_kernel, grid_1d(n, 256), 256, 0, stream)(*a);
  else
    DLK_LAUNCH(rnn_copy3_kernel, grid_1d(n, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}

// ==== dropout between layers ============================================================

namespace {
// The counter RNG of dlk_dropout (host/nn.h dlk_mix64, SplitMix64 finaliser); keep when
// (mix64 >> 11) 2^-53 >= p, i.e. mix64 >> 11 >= ceil(p 2^53) (exact in double).
__device__ __forceinline__ uint64_t rnn_mix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Thread mapping: one thread per element of the contiguous [T, B, W], grid-stride. The
// scaled value is computed in double and rounded once, as the CPU reference does.
__global__ void rnn_dropout_kernel(dlk_k_rnn_dropout_desc a, uint64_t thresh, double scale) {
  const int64_t n = a.T * a.B * a.W;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const bool keep = (rnn_mix64(a.seed, a.counter0 + (uint64_t)idx) >> 11) >= thresh;
    const double v = keep ? (double)ld_as(a.src, a.dtype, idx) * scale : 0.0;
    st_as(a.dst, a.dtype, idx, (float)v);
  }
}

}  // namespace

extern "C" int dlk_k_rnn_dropout(const dlk_k_rnn_dropout_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  const int64_t n = a->T * a->B * a->W;
  if (n == 0) return 0;
  const uint64_t thresh = (uint64_t)ceil(a->prob * 9007199254740992.0);
  DLK_LAUNCH(rnn_dropout_kernel, grid_1d(n, 256), 256, 0, stream)(*a, thresh, 1.0 / (1.0 - a->prob));
  return (int)cudaGetLastError();
}

// ==== previous states ===================================================================

namespace {
// Thread mapping: one thread per element (t, b, k) of the contiguous [T, B, n] output.
__global__ void rnn_prev_kernel(dlk_k_rnn_prev_desc a) {
  const int64_t n = a.T * a.B * a.n;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = idx % a.n, b = (idx / a.n) % a.B, t = idx / (a.n * a.B);
    const int64_t len = a.lens ? (int64_t)a.lens[b] : a.T;
    float v = 0.0f;
    if (t < len) {
      const bool first = a.dir == 0 ? t == 0 : t + 1 >= len;
      const int64_t tp = a.dir == 0 ? t - 1 : t + 1;
      if (first)
        v = a.init ? ld_as(a.init, a.init_dtype, b * a.i0 + k * a.i1) : 0.0f;
      else
        v = ld_as(a.seq, a.dtype, tp * a.s0 + b * a.s1 + k * a.s2);
    }
    st_as(a.out, a.out_dtype, idx, v);
  }
}

}  // namespace

extern "C" int dlk_k_rnn_prev(const dlk_k_rnn_prev_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  const int64_t n = a->T * a->B * a->n;
  if (n == 0) return 0;
  DLK_LAUNCH(rnn_prev_kernel, grid_1d(n, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}

// ==== column sums (bias gradients) ======================================================

namespace {
// Thread mapping: one warp per column j; lanes stride over the rows, the warp sums in f64
// (the reduction order is fixed: deterministic), lane 0 adds the sum to dst[j].
__global__ void rnn_colsum_kernel(dlk_k_rnn_colsum_desc a) {
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
  const int lane = threadIdx.x % 32;
  for (int64_t j = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; j < a.C; j += warps) {
    double s = 0.0;
    for (int64_t r = lane; r < a.R; r += 32) s += (double)ld_as(a.src, a.dtype, r * a.src_rs + j);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) {
      const double old = (double)ld_as(a.dst, a.dtype, j * a.dst_s);
      st_as(a.dst, a.dtype, j * a.dst_s, (float)(old + s));
    }
  }
}

}  // namespace

extern "C" int dlk_k_rnn_colsum(const dlk_k_rnn_colsum_desc *a, int impl, void *ws, void *stream) {
  (void)impl, (void)ws;
  if (a->C == 0) return 0;
  DLK_LAUNCH(rnn_colsum_kernel, grid_1d(a->C * 32, 256), 256, 0, stream)(*a);
  return (int)cudaGetLastError();
}
