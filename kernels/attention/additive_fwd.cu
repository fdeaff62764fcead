// attention family: additive (Bahdanau) and Luong attention, forward.
//   e_ij = v . tanh(P_j + Q_i) (additive, Luong concat), dec_i . enc_j (dot), Q_i . enc_j
//   (general); alpha_i = softmax over the visible steps j < len_b; context_i = sum_j
//   alpha_ij enc_j. The projections P = enc wp, Q = dec wq (or dec w) are nn's gemm, run by
//   the host row (host/attention/attention_cuda.c) into the workspace before these kernels.
// Variants (the rows' impl):
//   1 composed  the eager order: the host row's GEMMs plus the pointwise and row kernels
//               here (gather, add-tanh materialising [B, Td, Te, A], masked row softmax)
//   2 fused     one kernel per tile of decoder steps and split of the encoder steps: scores
//               in registers and shared memory, softmax and context in the same block,
//               nothing of size [B, Td, Te, A]; a combine kernel when the steps are split
//               (the single-step form of a decoder loop, Td = 1, splits them)
// Steps past the lengths are never read. No atomics: bit-identical run to run.
#include "additive.cuh"

using namespace dlk;
using namespace dlk::attn;

namespace {

// ======================================================================================
// Pieces of the composed variant (impl 1)
// ======================================================================================

// Gather. Thread mapping: a grid-stride loop over the row-major index of dst [B, T, H]
// (h fastest, so a warp reads a row of src when its unit stride is h's). No shared memory.
template <typename T>
__global__ void gather_kernel(dlk_k_attn_desc a, dlk_k_t3 src, int64_t Tn, int64_t H, int mask,
                              T *dst) {
  typedef typename AccT<T>::type Acc;
  const int64_t total = a.B * Tn * H;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t h = idx % H, t = (idx / H) % Tn, b = idx / (H * Tn);
    dst[idx] = mask && t >= seq_len(a, b) ? from_acc<T>((Acc)0) : *at3<const T>(src, b, t, h);
  }
}

// Add-tanh. Thread mapping: a grid-stride loop over the row-major index of H [B, Td, Te, A]
// (x fastest: a warp reads consecutive elements of P_j and Q_i). Precise tanh, as an eager
// framework computes it. No shared memory.
template <typename T>
__global__ void add_tanh_kernel(dlk_k_attn_desc a, T *H) {
  const int64_t A = a.A, total = a.B * a.Td * a.Te * A;
  const T *P = (const T *)a.P, *Q = (const T *)a.Q;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t x = idx % A, r = idx / A, j = r % a.Te, bi = r / a.Te;  // bi = b Td + i
    const int64_t b = bi / a.Td;
    H[idx] = from_acc<T>(m_tanh(to_acc(P[(b * a.Te + j) * A + x]) + to_acc(Q[bi * A + x])));
  }
}

// Masked row softmax. Thread mapping: one warp per row (b, i) of e [B, Td, Te], rows in a
// grid-stride loop over warps; lanes stride the row: m = max over j < len, l = sum
// exp(e - m), then weights = exp(e - m) / l (0 past the length). No shared memory.
template <typename T>
__global__ void softmax_rows_kernel(dlk_k_attn_desc a, const T *e) {
  typedef typename AccT<T>::type Acc;
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.B * a.Td;
  for (int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows;
       r += (int64_t)gridDim.x * (blockDim.x >> 5)) {
    const int64_t b = r / a.Td, i = r % a.Td, len = seq_len(a, b);
    const T *row = e + r * a.Te;
    Acc m = neg_inf<Acc>();
    for (int64_t j = lane; j < len; j += 32) m = m_max(m, to_acc(row[j]));
    m = warp_max(m);
    Acc l = 0;
    for (int64_t j = lane; j < len; j += 32) l += m_exp(to_acc(row[j]) - m);
    l = warp_sum(l);
    const Acc inv = l > (Acc)0 ? (Acc)1 / l : (Acc)0;
    for (int64_t j = lane; j < a.Te; j += 32)
      *at3<T>(a.weights, b, i, j) = from_acc<T>(j < len ? m_exp(to_acc(row[j]) - m) * inv : (Acc)0);
  }
}

// Fill. Thread mapping: grid-stride over the n elements.
template <typename T>
__global__ void fill_kernel(T *p, int64_t n, double value) {
  typedef typename AccT<T>::type Acc;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    p[i] = from_acc<T>((Acc)value);
}

// ======================================================================================
// 2 fused
// ======================================================================================

// Fused forward. Block (b, split s) x tile y: decoder steps i0 = y TI .. i0 + TI - 1 and
// the encoder steps [j0, j1) of split s of sequence b's visible ones (ceil(len / nsplit)
// each); 256 threads = 8 warps.
// Shared memory (dynamic, accumulators; fused_geom sizes it): q[TI][QD] the query vectors
// (additive: Q_i; dot: dec_i; general: Q_i = dec_i w), vv[A] (additive: v), sc[TI][ch] the
// scores, then their exponentials, ml[TI][2] (max, sum).
// Phase 1: warp w takes steps j0 + w, j0 + w + 8, ...; lane l walks d = l, l + 32, ... of the
//   step's row (P_j for additive, enc_j otherwise), loading each element once for the TI
//   queries: additive e += v_d tanh(P_jd + Q_id), dot/general e += enc_jd q_id; the warp
//   sums each e and lane 0 stores it.
// Phase 2: warp t < TI owns row t: m = max, sc = exp(sc - m), l = sum (raw scores to the
//   workspace first when split).
// Phase 3: thread h (stride 256 over He) sums c_t = sum_j sc[t][j] enc_jh, reading each
//   enc element once for the TI rows (a warp reads consecutive h).
// One split: context = c / l and weights = sc / l (0 past the length) written here. Several:
//   c, (m, l) and the raw scores go to the workspace and combine_kernel finishes.
template <typename T, int KIND, int TI>
__global__ __launch_bounds__(FZ_THREADS) void fused_fwd_kernel(dlk_k_attn_desc a, int64_t nsplit,
                                                               int64_t ch,
                                                               typename AccT<T>::type *ws_s,
                                                               typename AccT<T>::type *ws_ml,
                                                               typename AccT<T>::type *ws_c) {
  typedef typename AccT<T>::type Acc;
  DLK_DYNAMIC_SHARED(unsigned char, fz_smem);
  const int64_t QD = KIND == ADDITIVE ? a.A : a.He;
  Acc *q = reinterpret_cast<Acc *>(fz_smem);
  Acc *vv = q + TI * QD;
  Acc *sc = vv + (KIND == ADDITIVE ? a.A : 0);
  Acc *ml = sc + TI * ch;
  const int64_t b = blockIdx.x / nsplit, s = blockIdx.x % nsplit, i0 = (int64_t)blockIdx.y * TI;
  const int64_t len = seq_len(a, b), per = (len + nsplit - 1) / nsplit;
  const int64_t j0 = s * per < len ? s * per : len, j1 = j0 + per < len ? j0 + per : len;
  const int64_t n = j1 - j0;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  DLK_KCHECK(n <= ch);

  for (int64_t e = tid; e < TI * QD; e += FZ_THREADS) {
    const int64_t t = e / QD, d = e % QD, i = i0 + t;
    Acc val = 0;
    if (i < a.Td)
      val = KIND == DOT ? to_acc(*at3<const T>(a.dec, b, i, d))
                        : to_acc(((const T *)a.Q)[(b * a.Td + i) * QD + d]);
    q[e] = val;
  }
  if (KIND == ADDITIVE)
    for (int64_t d = tid; d < a.A; d += FZ_THREADS)
      vv[d] = to_acc(((const T *)a.v.data)[d * a.v.s]);
  __syncthreads();

  // phase 1: scores
  for (int64_t jj = warp; jj < n; jj += FZ_WARPS) {
    const int64_t j = j0 + jj;
    Acc acc[TI];
#pragma unroll
    for (int t = 0; t < TI; t++) acc[t] = 0;
    if (KIND == ADDITIVE) {
      const T *prow = (const T *)a.P + (b * a.Te + j) * QD;
      for (int64_t d = lane; d < QD; d += 32) {
        const Acc x = to_acc(prow[d]), vd = vv[d];
#pragma unroll
        for (int t = 0; t < TI; t++) acc[t] += vd * tanh_fast(x + q[t * QD + d]);
      }
    } else {
      for (int64_t d = lane; d < QD; d += 32) {
        const Acc x = to_acc(*at3<const T>(a.enc, b, j, d));
#pragma unroll
        for (int t = 0; t < TI; t++) acc[t] += x * q[t * QD + d];
      }
    }
#pragma unroll
    for (int t = 0; t < TI; t++) {
      const Acc r = warp_sum(acc[t]);
      if (lane == 0) sc[t * ch + jj] = r;
    }
  }
  __syncthreads();

  // phase 2: max and sum of each row
  if (warp < TI) {
    const int t = warp;
    const int64_t i = i0 + t;
    Acc m = neg_inf<Acc>();
    for (int64_t jj = lane; jj < n; jj += 32) m = m_max(m, sc[t * ch + jj]);
    m = warp_max(m);
    Acc l = 0;
    for (int64_t jj = lane; jj < n; jj += 32) {
      const Acc e = sc[t * ch + jj];
      if (nsplit > 1 && i < a.Td) ws_s[(b * a.Td + i) * a.Te + j0 + jj] = e;
      const Acc p = m_exp(e - m);
      sc[t * ch + jj] = p;
      l += p;
    }
    l = warp_sum(l);
    if (lane == 0) ml[2 * t] = m, ml[2 * t + 1] = l;
  }
  __syncthreads();

  // phase 3: context (unnormalised), then the outputs or the split's partial results
  for (int64_t h = tid; h < a.He; h += FZ_THREADS) {
    Acc acc[TI];
#pragma unroll
    for (int t = 0; t < TI; t++) acc[t] = 0;
    for (int64_t jj = 0; jj < n; jj++) {
      const Acc x = to_acc(*at3<const T>(a.enc, b, j0 + jj, h));
#pragma unroll
      for (int t = 0; t < TI; t++) acc[t] += sc[t * ch + jj] * x;
    }
#pragma unroll
    for (int t = 0; t < TI; t++) {
      const int64_t i = i0 + t;
      if (i >= a.Td) continue;
      if (nsplit == 1) {
        const Acc l = ml[2 * t + 1];
        *at3<T>(a.context, b, i, h) = from_acc<T>(l > (Acc)0 ? acc[t] / l : (Acc)0);
      } else {
        ws_c[((b * a.Td + i) * nsplit + s) * a.He + h] = acc[t];
      }
    }
  }
  if (nsplit == 1) {
    for (int64_t e = tid; e < TI * a.Te; e += FZ_THREADS) {
      const int64_t t = e / a.Te, j = e % a.Te, i = i0 + t;
      if (i >= a.Td) continue;
      const Acc l = ml[2 * t + 1];
      *at3<T>(a.weights, b, i, j) =
          from_acc<T>(j < len && l > (Acc)0 ? sc[t * ch + j] / l : (Acc)0);
    }
  } else if (tid < TI && i0 + tid < a.Td) {
    const int64_t i = i0 + tid;
    ws_ml[((b * a.Td + i) * nsplit + s) * 2] = ml[2 * tid];
    ws_ml[((b * a.Td + i) * nsplit + s) * 2 + 1] = ml[2 * tid + 1];
  }
}

// Combine the splits. Block (i, b) (b grid-stride), 256 threads. Thread 0 takes M = max of
// the splits' maxima (splits with no step left out), L = sum_s l_s exp(m_s - M), and turns
// each split's max slot of the workspace into its factor exp(m_s - M) / L (fixed order);
// then thread h (stride 256) writes context_h = sum_s factor_s c_sh and thread j the
// weights exp(e_j - M) / L (0 past the length). Shared memory: M and 1/L.
template <typename T>
__global__ void combine_kernel(dlk_k_attn_desc a, int64_t nsplit, typename AccT<T>::type *ws_s,
                               typename AccT<T>::type *ws_ml, const typename AccT<T>::type *ws_c) {
  typedef typename AccT<T>::type Acc;
  __shared__ Acc ML[2];
  const int64_t i = blockIdx.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t len = seq_len(a, b);
    Acc *ml = ws_ml + (b * a.Td + i) * nsplit * 2;
    __syncthreads();  // the previous sequence's reads of ML are done
    if (threadIdx.x == 0) {
      Acc M = neg_inf<Acc>(), L = 0;
      for (int64_t s = 0; s < nsplit; s++)
        if (ml[2 * s + 1] > (Acc)0) M = m_max(M, ml[2 * s]);
      for (int64_t s = 0; s < nsplit; s++)
        if (ml[2 * s + 1] > (Acc)0) L += ml[2 * s + 1] * m_exp(ml[2 * s] - M);
      const Acc inv = L > (Acc)0 ? (Acc)1 / L : (Acc)0;
      for (int64_t s = 0; s < nsplit; s++)
        ml[2 * s] = ml[2 * s + 1] > (Acc)0 ? m_exp(ml[2 * s] - M) * inv : (Acc)0;
      ML[0] = M, ML[1] = inv;
    }
    __syncthreads();
    const Acc M = ML[0], inv = ML[1];
    for (int64_t h = threadIdx.x; h < a.He; h += blockDim.x) {
      Acc c = 0;
      for (int64_t s = 0; s < nsplit; s++)
        c += ml[2 * s] * ws_c[((b * a.Td + i) * nsplit + s) * a.He + h];
      *at3<T>(a.context, b, i, h) = from_acc<T>(c);
    }
    const Acc *e = ws_s + (b * a.Td + i) * a.Te;
    for (int64_t j = threadIdx.x; j < a.Te; j += blockDim.x)
      *at3<T>(a.weights, b, i, j) = from_acc<T>(j < len ? m_exp(e[j] - M) * inv : (Acc)0);
  }
}

// The split workspace: raw scores [B, Td, Te], (m, l) [B, Td, nsplit, 2], partial contexts
// [B, Td, nsplit, He], in accumulators.
struct FusedWs {
  size_t s, ml, c, total; /* offsets in accumulators */
};
FusedWs fused_ws(const dlk_k_attn_desc *a, const FusedGeom &g) {
  FusedWs w;
  const size_t rows = (size_t)(a->B * a->Td);
  w.s = 0;
  w.ml = w.s + rows * (size_t)a->Te;
  w.c = w.ml + rows * (size_t)g.nsplit * 2;
  w.total = g.nsplit > 1 ? w.c + rows * (size_t)g.nsplit * (size_t)a->He : 0;
  return w;
}

template <typename T, int KIND, int TI>
int launch_fused_kind(const dlk_k_attn_desc *a, const FusedGeom &g, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type Acc;
  const FusedWs w = fused_ws(a, g);
  Acc *base = (Acc *)ws;
  Acc *ws_s = g.nsplit > 1 ? base + w.s : nullptr, *ws_ml = g.nsplit > 1 ? base + w.ml : nullptr,
      *ws_c = g.nsplit > 1 ? base + w.c : nullptr;
  dim3 grid((unsigned)(a->B * g.nsplit), (unsigned)g.tiles);
  DLK_LAUNCH((fused_fwd_kernel<T, KIND, TI>), grid, FZ_THREADS, g.smem, st)
  (*a, g.nsplit, g.ch, ws_s, ws_ml, ws_c);
  if (g.nsplit > 1) {
    int rc = (int)cudaGetLastError();
    if (rc) return rc;
    dim3 cgrid((unsigned)a->Td, (unsigned)(a->B < 65535 ? a->B : 65535));
    DLK_LAUNCH(combine_kernel<T>, cgrid, 256, 0, st)(*a, g.nsplit, ws_s, ws_ml, ws_c);
  }
  return (int)cudaGetLastError();
}

template <typename T>
int launch_fused(const dlk_k_attn_desc *a, const FusedGeom &g, void *ws, cudaStream_t st) {
  switch (a->kind * 2 + (g.ti == 4)) {
    case ADDITIVE * 2: return launch_fused_kind<T, ADDITIVE, 1>(a, g, ws, st);
    case ADDITIVE * 2 + 1: return launch_fused_kind<T, ADDITIVE, 4>(a, g, ws, st);
    case DOT * 2: return launch_fused_kind<T, DOT, 1>(a, g, ws, st);
    case DOT * 2 + 1: return launch_fused_kind<T, DOT, 4>(a, g, ws, st);
    case GENERAL * 2: return launch_fused_kind<T, GENERAL, 1>(a, g, ws, st);
    case GENERAL * 2 + 1: return launch_fused_kind<T, GENERAL, 4>(a, g, ws, st);
    default: return (int)cudaErrorInvalidValue;
  }
}

}  // namespace

// ======================================================================================
// Launchers
// ======================================================================================

extern "C" int dlk_k_attn_gather(const dlk_k_attn_desc *a, dlk_k_t3 src, int64_t T, int64_t H,
                                 int mask, void *dst, void *stream) {
  const int64_t total = a->B * T * H;
  if (total <= 0) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, E,
                     DLK_LAUNCH(gather_kernel<E>, grid_for(total, 256), 256, 0, stream)(
                         *a, src, T, H, mask, (E *)dst));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_attn_add_tanh(const dlk_k_attn_desc *a, void *H, void *stream) {
  const int64_t total = a->B * a->Td * a->Te * a->A;
  if (total <= 0) return 0;
  DLK_DISPATCH_FLOAT(
      a->dtype, E,
      DLK_LAUNCH(add_tanh_kernel<E>, grid_for(total, 256), 256, 0, stream)(*a, (E *)H));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_attn_softmax_rows(const dlk_k_attn_desc *a, const void *e, void *stream) {
  const int64_t rows = a->B * a->Td;
  if (rows <= 0) return 0;
  DLK_DISPATCH_FLOAT(
      a->dtype, E,
      DLK_LAUNCH(softmax_rows_kernel<E>, grid_for(rows, 8), 256, 0, stream)(*a, (const E *)e));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_attn_fill(void *p, int dtype, int64_t n, double value, void *stream) {
  if (n <= 0) return 0;
  DLK_DISPATCH_FLOAT(
      dtype, E, DLK_LAUNCH(fill_kernel<E>, grid_for(n, 256), 256, 0, stream)((E *)p, n, value));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_attn_fwd_fused_supports(const dlk_k_attn_desc *a, char *why, size_t n) {
  FusedGeom g;
  return fused_geom(a, &g, why, n) ? 1 : 0;
}

extern "C" size_t dlk_k_attn_fwd_fused_ws(const dlk_k_attn_desc *a) {
  FusedGeom g;
  if (!fused_geom(a, &g, nullptr, 0)) return 0;
  return fused_ws(a, g).total * acc_bytes(a->dtype);
}

extern "C" int dlk_k_attn_fwd_fused(const dlk_k_attn_desc *a, void *ws, void *stream) {
  if (a->B <= 0 || a->Td <= 0) return 0;
  FusedGeom g;
  if (!fused_geom(a, &g, nullptr, 0)) return (int)cudaErrorInvalidValue;
  DLK_DISPATCH_FLOAT(a->dtype, E, return launch_fused<E>(a, g, ws, (cudaStream_t)stream));
  return 0;
}
