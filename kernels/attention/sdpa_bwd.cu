// attention family: the SDPA backward ladder. From the forward's out and lse:
//   p_ij = exp(s_ij - lse_i), dp_ij = z_ij dout_i . v_j, delta_i = dout_i . out_i,
//   ds_ij = p_ij (dp_ij - delta_i),
//   dq_i = scale sum_j ds_ij k_j, dk_j = scale sum_{h in group, i} ds_ij q_i,
//   dv_j = sum_{h in group, i} p_ij z_ij dout_i, dbias = ds summed over its broadcast dims.
// Variants (host/attention/attention_cuda.c rows):
//   1 naive      materialises P and dS in the workspace; one thread per output element,
//                each summing in a fixed order; every float dtype, any strides (the oracle)
//   2 flash_mma  FlashAttention-2's backward without atomics: a row pass for delta, one
//                kernel per key block for dK/dV (looping over the group's heads and the
//                query blocks that see it) and one per query block for dQ (and a full-shape
//                dbias), all on mma.sync m16n8k16; f16/bf16
//   4 flash_simt the same passes on CUDA cores, one warp per query row (dQ) or key row
//                (dK/dV): f32, f16, bf16 (f32 math), any strides
// Nothing uses atomics: every variant is deterministic (deterministic mode needs nothing
// more), at the price of recomputing S and dP in the dQ kernel (7 matmuls instead of 5).
#include "sdpa_common.cuh"

using namespace dlk;

namespace {

// ======================================================================================
// 1 naive
// ======================================================================================

// P from the saved lse and delta. Thread mapping: one warp per row (b, h, i), rows in a
// grid-stride loop over warps, lanes stride the row: P_j = exp(S_j - lse) in place (0 where
// S_j or lse is -inf, and on rows past q_len, whose lse is never read); delta = dout . out
// (0 on rows with no visible key). No shared memory.
template <typename T>
__global__ void naive_bwd_rows_kernel(dlk_k_sdpa_desc a, typename AccT<T>::type *P,
                                      typename AccT<T>::type *delta) {
  typedef typename AccT<T>::type A;
  const int64_t rows = a.B * a.Hq * a.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); row < rows;
       row += warps) {
    const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
    const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    const A lse =
        i < ql ? ((const A *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] : (A)-INFINITY;
    A *p = P + row * a.Tk;
    for (int64_t j = lane; j < a.Tk; j += 32)
      p[j] = lse == (A)-INFINITY || p[j] == (A)-INFINITY ? (A)0 : m_exp(p[j] - lse);
    A dl = 0;
    if (lse != (A)-INFINITY) {
      const T *dout = at4<const T>(a.dout, b, h, i, 0), *out = at4<const T>(a.out, b, h, i, 0);
      for (int64_t d = lane; d < a.Dv; d += 32)
        dl += to_acc(dout[d * a.dout.s3]) * to_acc(out[d * a.out.s3]);
    }
    dl = warp_sum(dl);
    if (lane == 0) delta[row] = dl;
  }
}

// dS. Thread mapping: grid-stride over [B, Hq, Tq, Tk], j fastest; dS = P (z dout_i . v_j -
// delta_i), 0 where P is 0 (v_j of a masked key is never read). No shared memory.
template <typename T>
__global__ void naive_bwd_ds_kernel(dlk_k_sdpa_desc a, const typename AccT<T>::type *P,
                                    const typename AccT<T>::type *delta,
                                    typename AccT<T>::type *dS) {
  typedef typename AccT<T>::type A;
  const int64_t total = a.B * a.Hq * a.Tq * a.Tk, G = a.Hq / a.Hk;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const A p = P[idx];
    A ds = 0;
    if (p != (A)0) {
      const int64_t j = idx % a.Tk, row = idx / a.Tk;
      const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
      A dp = 0;
      if (keep(a, b, h, i, j)) {
        const T *dout = at4<const T>(a.dout, b, h, i, 0), *v = at4<const T>(a.v, b, h / G, j, 0);
        for (int64_t d = 0; d < a.Dv; d++)
          dp += to_acc(dout[d * a.dout.s3]) * to_acc(v[d * a.v.s3]);
        dp *= (A)a.drop_scale;
      }
      ds = p * (dp - delta[row]);
    }
    dS[idx] = ds;
  }
}

// dq. Thread mapping: grid-stride over [B, Hq, Tq, D], d fastest; dq = scale sum_j dS_ij k_jd
// over the keys with P != 0, in key order. No shared memory.
template <typename T>
__global__ void naive_bwd_dq_kernel(dlk_k_sdpa_desc a, const typename AccT<T>::type *P,
                                    const typename AccT<T>::type *dS) {
  typedef typename AccT<T>::type A;
  const int64_t total = a.B * a.Hq * a.Tq * a.D, G = a.Hq / a.Hk;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t d = idx % a.D, row = idx / a.D;
    const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
    const T *k = at4<const T>(a.k, b, h / G, 0, d);
    const A *p = P + row * a.Tk, *ds = dS + row * a.Tk;
    A acc = 0;
    for (int64_t j = 0; j < a.Tk; j++)
      if (p[j] != (A)0) acc += ds[j] * to_acc(k[j * a.k.s2]);
    *at4<T>(a.dq, b, h, i, d) = from_acc<T>((A)a.scale * acc);
  }
}

// dk and dv. Thread mapping: grid-stride over [B, Hk, Tk, max(D, Dv)], column fastest;
// the thread sums over the group's heads h and every query i in that order:
//   dk_jd = scale sum dS_ij q_id,   dv_jd = sum P_ij z_ij dout_id   (skipping P = 0).
// No shared memory.
template <typename T>
__global__ void naive_bwd_dkdv_kernel(dlk_k_sdpa_desc a, const typename AccT<T>::type *P,
                                      const typename AccT<T>::type *dS) {
  typedef typename AccT<T>::type A;
  const int64_t W = a.D > a.Dv ? a.D : a.Dv, G = a.Hq / a.Hk;
  const int64_t total = a.B * a.Hk * a.Tk * W;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t d = idx % W, r = idx / W;
    const int64_t j = r % a.Tk, hk = (r / a.Tk) % a.Hk, b = r / (a.Tk * a.Hk);
    A dk = 0, dv = 0;
    for (int64_t h = hk * G; h < (hk + 1) * G; h++)
      for (int64_t i = 0; i < a.Tq; i++) {
        const int64_t e = ((b * a.Hq + h) * a.Tq + i) * a.Tk + j;
        const A p = P[e];
        if (p == (A)0) continue;
        if (d < a.D) dk += dS[e] * to_acc(*at4<const T>(a.q, b, h, i, d));
        if (d < a.Dv && keep(a, b, h, i, j))
          dv += p * (A)a.drop_scale * to_acc(*at4<const T>(a.dout, b, h, i, d));
      }
    if (a.dk.data && d < a.D) *at4<T>(a.dk, b, hk, j, d) = from_acc<T>((A)a.scale * dk);
    if (a.dv.data && d < a.Dv) *at4<T>(a.dv, b, hk, j, d) = from_acc<T>(dv);
  }
}

// dbias. Thread mapping: grid-stride over dbias's own shape [n0, n1, n2, n3] (each dim 1
// or full), last dim fastest; the thread sums dS over the coordinates of every dim of size
// 1 (b, then h, then i, then j, in that order). No shared memory.
template <typename T>
__global__ void naive_bwd_dbias_kernel(dlk_k_sdpa_desc a, const typename AccT<T>::type *dS) {
  typedef typename AccT<T>::type A;
  const int64_t n0 = a.dbias_n[0], n1 = a.dbias_n[1], n2 = a.dbias_n[2], n3 = a.dbias_n[3];
  const int64_t total = n0 * n1 * n2 * n3;
  const int64_t full[4] = {a.B, a.Hq, a.Tq, a.Tk};
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t c[4], t = idx;
    c[3] = t % n3, t /= n3;
    c[2] = t % n2, t /= n2;
    c[1] = t % n1, c[0] = t / n1;
    int64_t lo[4], hi[4];
    const int64_t n[4] = {n0, n1, n2, n3};
    for (int k = 0; k < 4; k++) {
      const bool sum = n[k] == 1 && full[k] > 1;
      lo[k] = sum ? 0 : c[k];
      hi[k] = sum ? full[k] : c[k] + 1;
    }
    A acc = 0;
    for (int64_t b = lo[0]; b < hi[0]; b++)
      for (int64_t h = lo[1]; h < hi[1]; h++)
        for (int64_t i = lo[2]; i < hi[2]; i++)
          for (int64_t j = lo[3]; j < hi[3]; j++) acc += dS[((b * a.Hq + h) * a.Tq + i) * a.Tk + j];
    *at4<T>(a.dbias, c[0], c[1], c[2], c[3]) = from_acc<T>(acc);
  }
}

template <typename T>
int naive_bwd(const dlk_k_sdpa_desc *a, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  const int64_t scores = a->B * a->Hq * a->Tq * a->Tk, rows = a->B * a->Hq * a->Tq;
  A *P = (A *)ws, *dS = P + scores, *delta = dS + scores;
  if (scores > 0) {
    DLK_LAUNCH(naive_scores_kernel<T>, grid_for(scores, 256), 256, 0, st)(*a, P);
  }
  if (rows > 0)
    DLK_LAUNCH(naive_bwd_rows_kernel<T>, grid_for(rows * 32, 256), 256, 0, st)(*a, P, delta);
  if (scores > 0)
    DLK_LAUNCH(naive_bwd_ds_kernel<T>, grid_for(scores, 256), 256, 0, st)(*a, P, delta, dS);
  const int64_t nq = rows * a->D;
  if (a->dq.data && nq > 0)
    DLK_LAUNCH(naive_bwd_dq_kernel<T>, grid_for(nq, 256), 256, 0, st)(*a, P, dS);
  const int64_t nk = a->B * a->Hk * a->Tk * (a->D > a->Dv ? a->D : a->Dv);
  if ((a->dk.data || a->dv.data) && nk > 0)
    DLK_LAUNCH(naive_bwd_dkdv_kernel<T>, grid_for(nk, 256), 256, 0, st)(*a, P, dS);
  const int64_t nb = a->dbias_n[0] * a->dbias_n[1] * a->dbias_n[2] * a->dbias_n[3];
  if (a->dbias.data && nb > 0)
    DLK_LAUNCH(naive_bwd_dbias_kernel<T>, grid_for(nb, 256), 256, 0, st)(*a, dS);
  return (int)cudaGetLastError();
}

size_t naive_bwd_ws(const dlk_k_sdpa_desc *a) {
  const size_t scores = (size_t)(a->B * a->Hq * a->Tq * a->Tk),
               rows = (size_t)(a->B * a->Hq * a->Tq);
  return (2 * scores + rows) * acc_size(a->dtype);
}

// ======================================================================================
// 2 flash_mma (FlashAttention-2 backward, no atomics)
// ======================================================================================
// Pass 1, delta: one warp per row (b, h, i): delta = dout . out in f32 (0 past q_len),
// into the workspace [B*Hq*Tq] f32. Also a zero-fill of a full-shape dbias (pass 3 writes
// only where some key is visible).
//
// Pass 2, dK/dV (bwd_dkdv_kernel): block (key block of 64, hk, b), 128 threads = 4 warps,
// warp w owns keys 16w..16w+15 of the block and keeps their dK (16 x HD) and dV (16 x HD)
// in f32 registers. Shared memory (pitch HD + 8):
//   sK [64][P], sV [64][P]          the block's keys and values, loaded once
//   sQ [2][32][P], sO [2][32][P]    q and dout of a query block of 32, double-buffered
//   sL [2][32], sD [2][32] f32      lse * log2 e and delta of those queries
// For each query head h of the group and each query block that can see a key of the block
// (causal/lengths bound it on both sides), each warp computes with mma.sync m16n8k16:
//   S^T = K_w Q^T (16 x 32)      P^T = 2^(S^T scale log2 e + bias log2 e - lse log2 e), 0 if masked
//   dV_w += (P^T z) dO            A from the P^T accumulators, B = dO (ldmatrix.trans)
//   dP^T = V_w dO^T               A = V_w (ldmatrix), B = dO (ldmatrix)
//   dS^T = P^T (dP^T z - delta)
//   dK_w += dS^T Q                A from the dS^T accumulators, B = Q (ldmatrix.trans)
// then stores scale dK and dV (keys past Tk skipped; keys no query sees get zeros).
// PART: bit 0 computes dV, bit 1 dK. HD <= 128 runs both in one launch; HD 256 keeps one
// 16 x 256 accumulator per warp, so dV and dK are two launches.
//
// Pass 3, dQ (bwd_dq_kernel): block (query block of 64, h, b), warp w owns rows 16w..; like
// the forward it streams the visible key blocks (BC 64, 32 for HD 256) double-buffered:
//   S = Q_w K^T, P from lse as above, dP = dO_w V^T, dS = P (dP z - delta),
//   dQ_w += dS K (B = K, ldmatrix.trans); a full-shape dbias gets dS rounded to T.
// sQ [64][P], sO [64][P] once; sK [2][BC][P], sV [2][BC][P].
//
// dbias with broadcast dims is declined (the naive variant sums it); so are D, Dv > 256.
constexpr int FB_THREADS = 128, FB_KN = 64, FB_QM = 32, FQ_BR = 64;

template <int HD>
struct FbCfg {
  static constexpr int P = HD + 8;
  static constexpr int QNT = FB_QM / 8;           // S^T n-tiles (queries) per warp in pass 2
  static constexpr int DT = HD / 8;               // accumulator n-tiles along the head dim
  static constexpr int BC = HD >= 256 ? 32 : 64;  // keys per block in pass 3
  static constexpr int KNT = BC / 8;
  static constexpr int SMEM_DKDV = (2 * FB_KN + 4 * FB_QM) * P;  // elements; + f32 rows
  static constexpr int SMEM_DQ = (2 * FQ_BR + 4 * BC) * P;
};

// Pass 1. Thread mapping: one warp per row, grid-stride over rows; lanes stride Dv.
template <typename T>
__global__ void bwd_delta_kernel(dlk_k_sdpa_desc a, float *delta) {
  const int64_t rows = a.B * a.Hq * a.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); row < rows;
       row += warps) {
    const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
    const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    float dl = 0.f;
    if (i < ql) {
      const T *dout = at4<const T>(a.dout, b, h, i, 0), *out = at4<const T>(a.out, b, h, i, 0);
      for (int64_t d = lane; d < a.Dv; d += 32)
        dl += to_acc(dout[d * a.dout.s3]) * to_acc(out[d * a.out.s3]);
    }
    dl = warp_sum(dl);
    if (lane == 0) delta[row] = dl;
  }
}

// Zero-fill of a full-shape dbias. Thread mapping: grid-stride over [B, Hq, Tq, Tk].
template <typename T>
__global__ void zero_dbias_kernel(dlk_k_sdpa_desc a) {
  const int64_t total = a.B * a.Hq * a.Tq * a.Tk;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = idx;
    const int64_t j = t % a.Tk;
    t /= a.Tk;
    const int64_t i = t % a.Tq;
    t /= a.Tq;
    *at4<T>(a.dbias, t / a.Hq, t % a.Hq, i, j) = from_acc<T>(0.f);
  }
}

#if !defined(DLK_CUDA_EMU)

// A rows x cols fp32 accumulator tile -> registers zeroed.
template <int N>
__device__ __forceinline__ void zero(float (&x)[N][4]) {
#pragma unroll
  for (int n = 0; n < N; n++) x[n][0] = x[n][1] = x[n][2] = x[n][3] = 0.f;
}

// Pass 2.
template <typename T, int HD, int PART>
__global__ __launch_bounds__(FB_THREADS) void bwd_dkdv_kernel(dlk_k_sdpa_desc a,
                                                              const float *delta) {
  typedef FbCfg<HD> C;
  constexpr bool DO_DV = PART & 1, DO_DK = (PART & 2) != 0;
  DLK_DYNAMIC_SHARED(unsigned char, fb_smem);
  T *sK = (T *)fb_smem;
  T *sV = sK + FB_KN * C::P;
  T *sQ = sV + FB_KN * C::P;                     // [2][FB_QM][P]
  T *sO = sQ + 2 * FB_QM * C::P;                 // [2][FB_QM][P]
  float *sL = (float *)(sO + 2 * FB_QM * C::P);  // [2][FB_QM]
  float *sD = sL + 2 * FB_QM;                    // [2][FB_QM]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int64_t j0 = (int64_t)blockIdx.x * FB_KN, hk = blockIdx.y, b = blockIdx.z;
  const int64_t G = a.Hq / a.Hk;
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  const float log2e = 1.4426950408889634f, sc = (float)a.scale * log2e;
  const T *gk = at4<const T>(a.k, b, hk, 0, 0), *gv = at4<const T>(a.v, b, hk, 0, 0);

  // Query rows that can see a key of [j0, j0 + 64): i < ql, and with causal
  // i >= j0 - (kl - ql).
  int64_t imin = 0;
  if (a.causal && j0 - (kl - ql) > imin) imin = j0 - (kl - ql);
  const int64_t imax = j0 < kl ? ql : 0;  // exclusive
  const int qb0 = (int)(imin / FB_QM), qb1 = imax > imin ? (int)((imax + FB_QM - 1) / FB_QM) : qb0;
  const int nq = qb1 - qb0, niter = nq * (int)G;  // (head, query block) pairs

  float dk[DO_DK ? C::DT : 1][4], dv[DO_DV ? C::DT : 1][4];
  zero(dk);
  zero(dv);

  // Stage (head, query block) it into buffer buf: q, dout rows and their lse / delta.
  auto stage = [&](int it, int buf) {
    const int64_t h = hk * G + it / nq, i0 = (int64_t)(qb0 + it % nq) * FB_QM;
    load_rows<T, FB_QM, HD, FB_THREADS>(sQ + buf * FB_QM * C::P, at4<const T>(a.q, b, h, 0, 0),
                                        a.q.s2, i0, ql, a.D, tid);
    load_rows<T, FB_QM, HD, FB_THREADS>(sO + buf * FB_QM * C::P, at4<const T>(a.dout, b, h, 0, 0),
                                        a.dout.s2, i0, ql, a.Dv, tid);
    if (tid < FB_QM) {
      const int64_t i = i0 + tid;
      float lse = -INFINITY, dl = 0.f;
      if (i < ql) {
        lse = ((const float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2];
        dl = delta[(b * a.Hq + h) * a.Tq + i];
      }
      sL[buf * FB_QM + tid] = lse * log2e;
      sD[buf * FB_QM + tid] = dl;
    }
  };

  if (niter > 0) {
    load_rows<T, FB_KN, HD, FB_THREADS>(sK, gk, a.k.s2, j0, kl, a.D, tid);
    load_rows<T, FB_KN, HD, FB_THREADS>(sV, gv, a.v.s2, j0, kl, a.Dv, tid);
    stage(0, 0);
    cp_async_commit();
  }
  const int64_t rj[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};  // this thread's key rows

  for (int it = 0; it < niter; it++) {
    const int cur = it & 1;
    const int64_t h = hk * G + it / nq, i0 = (int64_t)(qb0 + it % nq) * FB_QM;
    if (it + 1 < niter) {
      stage(it + 1, cur ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T *q_s = sQ + cur * FB_QM * C::P, *o_s = sO + cur * FB_QM * C::P;
    const float *l_s = sL + cur * FB_QM, *d_s = sD + cur * FB_QM;

    // S^T = K_w Q^T
    float st[C::QNT][4];
    zero(st);
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      uint32_t af[4];
      ldmatrix_x4(af, sK + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int jj = 0; jj < C::QNT / 2; jj++) {
        uint32_t r[4];
        ldmatrix_x4(r, q_s + (jj * 16 + (lane & 7) + ((lane >> 4) << 3)) * C::P + kk * 16 +
                           ((lane >> 3) & 1) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(st[2 * jj], af, b0);
        mma16816<T>(st[2 * jj + 1], af, b1);
      }
    }
    // P^T (undropped) in st; the dropped copy for dV in pz
    float pz[C::QNT][4];
#pragma unroll
    for (int n = 0; n < C::QNT; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int64_t j = rj[e >> 1], ic = n * 8 + 2 * tq + (e & 1), i = i0 + ic;
        float p = 0.f;
        if (visible(i, j, ql, kl, a.causal)) {
          float x = st[n][e] * sc;
          if (a.bias.data) x += to_acc(*at4<const T>(a.bias, b, h, i, j)) * log2e;
          const float l2 = l_s[ic];
          p = x == -INFINITY || l2 == -INFINITY ? 0.f : exp2f(x - l2);
        }
        st[n][e] = p;
        pz[n][e] = p != 0.f && keep(a, b, h, i, j) ? p * (float)a.drop_scale : 0.f;
      }
    if (DO_DV) {
      // dV_w += (P^T z) dO
#pragma unroll
      for (int kk = 0; kk < FB_QM / 16; kk++) {
        const uint32_t pf[4] = {pack2<T>(pz[2 * kk][0], pz[2 * kk][1]),
                                pack2<T>(pz[2 * kk][2], pz[2 * kk][3]),
                                pack2<T>(pz[2 * kk + 1][0], pz[2 * kk + 1][1]),
                                pack2<T>(pz[2 * kk + 1][2], pz[2 * kk + 1][3])};
#pragma unroll
        for (int jj = 0; jj < (DO_DV ? C::DT / 2 : 0); jj++) {
          uint32_t r[4];
          ldmatrix_x4_trans(r, o_s + (kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3)) * C::P +
                                   jj * 16 + (lane >> 4) * 8);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma16816<T>(dv[2 * jj], pf, b0);
          mma16816<T>(dv[2 * jj + 1], pf, b1);
        }
      }
    }
    if (DO_DK) {
      // dP^T = V_w dO^T
      float dpt[C::QNT][4];
      zero(dpt);
#pragma unroll
      for (int kk = 0; kk < HD / 16; kk++) {
        uint32_t af[4];
        ldmatrix_x4(af, sV + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int jj = 0; jj < C::QNT / 2; jj++) {
          uint32_t r[4];
          ldmatrix_x4(r, o_s + (jj * 16 + (lane & 7) + ((lane >> 4) << 3)) * C::P + kk * 16 +
                             ((lane >> 3) & 1) * 8);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma16816<T>(dpt[2 * jj], af, b0);
          mma16816<T>(dpt[2 * jj + 1], af, b1);
        }
      }
      // dS^T = P^T (dP^T z - delta)   (z folded in through pz / p: dp z = dp * pz / p)
#pragma unroll
      for (int n = 0; n < C::QNT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int ic = n * 8 + 2 * tq + (e & 1);
          const float p = st[n][e];
          const float zdp =
              p != 0.f ? dpt[n][e] * (pz[n][e] != 0.f ? (float)a.drop_scale : 0.f) : 0.f;
          dpt[n][e] = p * (zdp - d_s[ic]);
        }
        // dK_w += dS^T Q
#pragma unroll
      for (int kk = 0; kk < FB_QM / 16; kk++) {
        const uint32_t sf[4] = {pack2<T>(dpt[2 * kk][0], dpt[2 * kk][1]),
                                pack2<T>(dpt[2 * kk][2], dpt[2 * kk][3]),
                                pack2<T>(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]),
                                pack2<T>(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};
#pragma unroll
        for (int jj = 0; jj < (DO_DK ? C::DT / 2 : 0); jj++) {
          uint32_t r[4];
          ldmatrix_x4_trans(r, q_s + (kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3)) * C::P +
                                   jj * 16 + (lane >> 4) * 8);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma16816<T>(dk[2 * jj], sf, b0);
          mma16816<T>(dk[2 * jj + 1], sf, b1);
        }
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }

  // ---- store (keys past Tk skipped; keys nobody sees store zeros) ----
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int64_t j = rj[r];
    if (j >= a.Tk) continue;
    if (DO_DK && a.dk.data) {
      T *p = at4<T>(a.dk, b, hk, j, 0);
#pragma unroll
      for (int n = 0; n < (DO_DK ? C::DT : 0); n++) {
        const int64_t d = n * 8 + 2 * tq;
        if (d < a.D) p[d * a.dk.s3] = from_acc<T>(dk[n][2 * r] * (float)a.scale);
        if (d + 1 < a.D) p[(d + 1) * a.dk.s3] = from_acc<T>(dk[n][2 * r + 1] * (float)a.scale);
      }
    }
    if (DO_DV && a.dv.data) {
      T *p = at4<T>(a.dv, b, hk, j, 0);
#pragma unroll
      for (int n = 0; n < (DO_DV ? C::DT : 0); n++) {
        const int64_t d = n * 8 + 2 * tq;
        if (d < a.Dv) p[d * a.dv.s3] = from_acc<T>(dv[n][2 * r]);
        if (d + 1 < a.Dv) p[(d + 1) * a.dv.s3] = from_acc<T>(dv[n][2 * r + 1]);
      }
    }
  }
}

// Pass 3.
template <typename T, int HD>
__global__ __launch_bounds__(FB_THREADS) void bwd_dq_kernel(dlk_k_sdpa_desc a, const float *delta) {
  typedef FbCfg<HD> C;
  DLK_DYNAMIC_SHARED(unsigned char, fq_smem);
  T *sQ = (T *)fq_smem;
  T *sO = sQ + FQ_BR * C::P;
  T *sK = sO + FQ_BR * C::P;      // [2][BC][P]
  T *sV = sK + 2 * C::BC * C::P;  // [2][BC][P]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int64_t i0 = (int64_t)blockIdx.x * FQ_BR, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (a.Hq / a.Hk);
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  const float log2e = 1.4426950408889634f, sc = (float)a.scale * log2e;
  const T *gk = at4<const T>(a.k, b, hk, 0, 0), *gv = at4<const T>(a.v, b, hk, 0, 0);
  const bool full_dbias = a.dbias.data != nullptr;

  const int64_t last_row = (i0 + FQ_BR < ql ? i0 + FQ_BR : ql) - 1;
  int64_t jmax = last_row < i0 ? -1 : kl - 1;
  if (a.causal && jmax >= 0 && last_row + kl - ql < jmax) jmax = last_row + kl - ql;
  const int nblocks = jmax < 0 ? 0 : (int)(jmax / C::BC) + 1;

  // This thread's two rows: lse (log2 domain) and delta.
  const int64_t ri[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  float l2[2], dl[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    l2[r] = -INFINITY, dl[r] = 0.f;
    if (ri[r] < ql) {
      l2[r] = ((const float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + ri[r] * a.lse_s2] * log2e;
      dl[r] = delta[(b * a.Hq + h) * a.Tq + ri[r]];
    }
  }

  if (nblocks > 0) {
    load_rows<T, FQ_BR, HD, FB_THREADS>(sQ, at4<const T>(a.q, b, h, 0, 0), a.q.s2, i0, ql, a.D,
                                        tid);
    load_rows<T, FQ_BR, HD, FB_THREADS>(sO, at4<const T>(a.dout, b, h, 0, 0), a.dout.s2, i0, ql,
                                        a.Dv, tid);
    cp_async_commit();
    load_rows<T, C::BC, HD, FB_THREADS>(sK, gk, a.k.s2, 0, kl, a.D, tid);
    load_rows<T, C::BC, HD, FB_THREADS>(sV, gv, a.v.s2, 0, kl, a.Dv, tid);
    cp_async_commit();
  }
  float dq[C::DT][4];
  zero(dq);

  for (int blk = 0; blk < nblocks; blk++) {
    const int cur = blk & 1;
    const int64_t j0 = (int64_t)blk * C::BC;
    if (blk + 1 < nblocks) {
      load_rows<T, C::BC, HD, FB_THREADS>(sK + (cur ^ 1) * C::BC * C::P, gk, a.k.s2, j0 + C::BC, kl,
                                          a.D, tid);
      load_rows<T, C::BC, HD, FB_THREADS>(sV + (cur ^ 1) * C::BC * C::P, gv, a.v.s2, j0 + C::BC, kl,
                                          a.Dv, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T *k_s = sK + cur * C::BC * C::P, *v_s = sV + cur * C::BC * C::P;

    // S = Q_w K^T and dP = dO_w V^T
    float s[C::KNT][4], dp[C::KNT][4];
    zero(s);
    zero(dp);
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      uint32_t qa[4], oa[4];
      ldmatrix_x4(qa, sQ + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
      ldmatrix_x4(oa, sO + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int jj = 0; jj < C::KNT / 2; jj++) {
        const int off =
            (jj * 16 + (lane & 7) + ((lane >> 4) << 3)) * C::P + kk * 16 + ((lane >> 3) & 1) * 8;
        uint32_t r[4];
        ldmatrix_x4(r, k_s + off);
        const uint32_t kb0[2] = {r[0], r[1]}, kb1[2] = {r[2], r[3]};
        mma16816<T>(s[2 * jj], qa, kb0);
        mma16816<T>(s[2 * jj + 1], qa, kb1);
        ldmatrix_x4(r, v_s + off);
        const uint32_t vb0[2] = {r[0], r[1]}, vb1[2] = {r[2], r[3]};
        mma16816<T>(dp[2 * jj], oa, vb0);
        mma16816<T>(dp[2 * jj + 1], oa, vb1);
      }
    }
    // dS = P (dP z - delta)
#pragma unroll
    for (int n = 0; n < C::KNT; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int64_t i = ri[e >> 1], j = j0 + n * 8 + 2 * tq + (e & 1);
        float ds = 0.f;
        if (visible(i, j, ql, kl, a.causal)) {
          float x = s[n][e] * sc;
          if (a.bias.data) x += to_acc(*at4<const T>(a.bias, b, h, i, j)) * log2e;
          const float p = x == -INFINITY || l2[e >> 1] == -INFINITY ? 0.f : exp2f(x - l2[e >> 1]);
          if (p != 0.f) {
            const float zdp = keep(a, b, h, i, j) ? dp[n][e] * (float)a.drop_scale : 0.f;
            ds = p * (zdp - dl[e >> 1]);
          }
        }
        s[n][e] = ds;
        if (full_dbias && i < a.Tq && j < a.Tk) *at4<T>(a.dbias, b, h, i, j) = from_acc<T>(ds);
      }
      // dQ_w += dS K
#pragma unroll
    for (int kk = 0; kk < C::BC / 16; kk++) {
      const uint32_t sf[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                              pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int jj = 0; jj < C::DT / 2; jj++) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, k_s + (kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3)) * C::P +
                                 jj * 16 + (lane >> 4) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(dq[2 * jj], sf, b0);
        mma16816<T>(dq[2 * jj + 1], sf, b1);
      }
    }
    __syncthreads();
  }

  if (!a.dq.data) return;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int64_t i = ri[r];
    if (i >= a.Tq) continue;
    T *p = at4<T>(a.dq, b, h, i, 0);
#pragma unroll
    for (int n = 0; n < C::DT; n++) {
      const int64_t d = n * 8 + 2 * tq;
      if (d < a.D) p[d * a.dq.s3] = from_acc<T>(dq[n][2 * r] * (float)a.scale);
      if (d + 1 < a.D) p[(d + 1) * a.dq.s3] = from_acc<T>(dq[n][2 * r + 1] * (float)a.scale);
    }
  }
}

template <typename T, int HD, int PART>
int launch_dkdv(const dlk_k_sdpa_desc *a, const float *delta, cudaStream_t st) {
  const size_t smem = (size_t)FbCfg<HD>::SMEM_DKDV * sizeof(T) + 4 * FB_QM * sizeof(float);
  cudaError_t e = cudaFuncSetAttribute(bwd_dkdv_kernel<T, HD, PART>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)((a->Tk + FB_KN - 1) / FB_KN), (unsigned)a->Hk, (unsigned)a->B);
  DLK_LAUNCH(bwd_dkdv_kernel<T, HD, PART>, grid, FB_THREADS, smem, st)(*a, delta);
  return (int)cudaGetLastError();
}

template <typename T, int HD>
int launch_dq(const dlk_k_sdpa_desc *a, const float *delta, cudaStream_t st) {
  const size_t smem = (size_t)FbCfg<HD>::SMEM_DQ * sizeof(T);
  cudaError_t e = cudaFuncSetAttribute(bwd_dq_kernel<T, HD>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)((a->Tq + FQ_BR - 1) / FQ_BR), (unsigned)a->Hq, (unsigned)a->B);
  DLK_LAUNCH(bwd_dq_kernel<T, HD>, grid, FB_THREADS, smem, st)(*a, delta);
  return (int)cudaGetLastError();
}

template <typename T, int HD>
int flash_bwd_hd(const dlk_k_sdpa_desc *a, const float *delta, cudaStream_t st) {
  int rc = 0;
  if ((a->dk.data || a->dv.data) && a->Tk > 0) {
    if constexpr (HD <= 128) {
      rc = launch_dkdv<T, HD, 3>(a, delta, st);
    } else {
      if (a->dv.data) rc = launch_dkdv<T, HD, 1>(a, delta, st);
      if (!rc && a->dk.data) rc = launch_dkdv<T, HD, 2>(a, delta, st);
    }
  }
  if (!rc && (a->dq.data || a->dbias.data) && a->Tq > 0) rc = launch_dq<T, HD>(a, delta, st);
  return rc;
}

template <typename T>
int flash_bwd(const dlk_k_sdpa_desc *a, void *ws, cudaStream_t st) {
  float *delta = (float *)ws;
  const int64_t rows = a->B * a->Hq * a->Tq;
  DLK_LAUNCH(bwd_delta_kernel<T>, grid_for(rows * 32, 256), 256, 0, st)(*a, delta);
  if (a->dbias.data && a->Tk > 0)
    DLK_LAUNCH(zero_dbias_kernel<T>, grid_for(rows * a->Tk, 256), 256, 0, st)(*a);
  int rc = (int)cudaGetLastError();
  if (rc) return rc;
  switch (tc_head_dim(a)) {
    case 32: return flash_bwd_hd<T, 32>(a, delta, st);
    case 64: return flash_bwd_hd<T, 64>(a, delta, st);
    case 128: return flash_bwd_hd<T, 128>(a, delta, st);
    default: return flash_bwd_hd<T, 256>(a, delta, st);
  }
}
#endif  // !DLK_CUDA_EMU

// ======================================================================================
// 4 flash_simt (the same passes as variant 2 on CUDA cores)
// ======================================================================================
// Pass 1 is bwd_delta_kernel (and zero_dbias_kernel) above.
// dQ: block 256 threads = 8 warps, warp w owns query row i0 + w of one (b, h); grid
// (ceil(Tq / 8), Hq, B). Shared memory (f32): sQ [8][D], sO [8][Dv] (dout), sK [32][D + 1],
// sV [32][Dv + 1] (+1: lane j reads row j). Per key tile of 32: lane j computes s, p (from
// the saved lse), dp = z dout . v_j and ds = p (dp - delta); a full-shape dbias gets ds;
// then dq[c] += ds_j k_j[d] for each key j by shuffle broadcast, d = lane + 32 c.
// dK/dV: block 8 warps, warp w owns key row j0 + w of one (b, hk); grid (ceil(Tk / 8), Hk, B).
// Shared memory: sK [8][D], sV [8][Dv], sQ [32][D + 1], sO [32][Dv + 1], sL [32], sD [32]
// (lse and delta of the query tile). For each head of the group and each query tile that
// can see a key of the block: lane i computes s, p, dp, ds of query i0 + i, then
// dv[c] += p z dout_i[d] and dk[c] += ds q_i[d] over the 32 queries.
constexpr int FSB_ROWS = 8, FSB_T = 32, FSB_THREADS = 256;

template <typename T>
__global__ __launch_bounds__(FSB_THREADS) void simt_bwd_dq_kernel(dlk_k_sdpa_desc a,
                                                                  const float *delta) {
  DLK_DYNAMIC_SHARED(float, sb_smem);
  const int64_t D = a.D, Dv = a.Dv;
  float *sQ = sb_smem, *sO = sQ + FSB_ROWS * D, *sK = sO + FSB_ROWS * Dv,
        *sV = sK + FSB_T * (D + 1);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int64_t i0 = (int64_t)blockIdx.x * FSB_ROWS, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (a.Hq / a.Hk), i = i0 + w;
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  const int64_t last_row = (i0 + FSB_ROWS < ql ? i0 + FSB_ROWS : ql) - 1;
  int64_t jmax = last_row < i0 ? -1 : kl - 1;
  if (a.causal && jmax >= 0 && last_row + kl - ql < jmax) jmax = last_row + kl - ql;
  const int64_t ntiles = jmax < 0 ? 0 : jmax / FSB_T + 1;
  const float log_lse =
      i < ql ? ((const float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] : -INFINITY;
  const float dl = i < ql ? delta[(b * a.Hq + h) * a.Tq + i] : 0.f;
  for (int64_t e = tid; e < FSB_ROWS * D; e += FSB_THREADS) {
    const int64_t r = e / D, d = e % D;
    sQ[e] = i0 + r < ql ? to_acc(*at4<const T>(a.q, b, h, i0 + r, d)) : 0.f;
  }
  for (int64_t e = tid; e < FSB_ROWS * Dv; e += FSB_THREADS) {
    const int64_t r = e / Dv, d = e % Dv;
    sO[e] = i0 + r < ql ? to_acc(*at4<const T>(a.dout, b, h, i0 + r, d)) : 0.f;
  }
  float dq[8];
#pragma unroll
  for (int c = 0; c < 8; c++) dq[c] = 0.f;
  const float scale = (float)a.scale, zs = (float)a.drop_scale;
  for (int64_t t = 0; t < ntiles; t++) {
    const int64_t j0 = t * FSB_T;
    __syncthreads();
    for (int64_t e = tid; e < FSB_T * D; e += FSB_THREADS) {
      const int64_t r = e / D, d = e % D;
      sK[r * (D + 1) + d] = j0 + r < kl ? to_acc(*at4<const T>(a.k, b, hk, j0 + r, d)) : 0.f;
    }
    for (int64_t e = tid; e < FSB_T * Dv; e += FSB_THREADS) {
      const int64_t r = e / Dv, d = e % Dv;
      sV[r * (Dv + 1) + d] = j0 + r < kl ? to_acc(*at4<const T>(a.v, b, hk, j0 + r, d)) : 0.f;
    }
    __syncthreads();
    const int64_t j = j0 + lane;
    float ds = 0.f;
    if (visible(i, j, ql, kl, a.causal) && log_lse != -INFINITY) {
      float dot = 0.f;
      for (int64_t d = 0; d < D; d++) dot += sQ[w * D + d] * sK[lane * (D + 1) + d];
      float x = dot * scale;
      if (a.bias.data) x += to_acc(*at4<const T>(a.bias, b, h, i, j));
      const float p = x == -INFINITY ? 0.f : expf(x - log_lse);
      if (p != 0.f) {
        float dp = 0.f;
        if (keep(a, b, h, i, j)) {
          for (int64_t d = 0; d < Dv; d++) dp += sO[w * Dv + d] * sV[lane * (Dv + 1) + d];
          dp *= zs;
        }
        ds = p * (dp - dl);
      }
    }
    if (a.dbias.data && i < a.Tq && j < a.Tk) *at4<T>(a.dbias, b, h, i, j) = from_acc<T>(ds);
    for (int jj = 0; jj < FSB_T; jj++) {
      const float dsj = __shfl_sync(0xffffffffu, ds, jj);
      if (dsj == 0.f) continue;
#pragma unroll
      for (int c = 0; c < 8; c++)
        if (lane + 32 * c < D) dq[c] += dsj * sK[jj * (D + 1) + lane + 32 * c];
    }
  }
  if (i >= a.Tq || !a.dq.data) return;
#pragma unroll
  for (int c = 0; c < 8; c++)
    if (lane + 32 * c < D) *at4<T>(a.dq, b, h, i, lane + 32 * c) = from_acc<T>(dq[c] * scale);
}

template <typename T>
__global__ __launch_bounds__(FSB_THREADS) void simt_bwd_dkdv_kernel(dlk_k_sdpa_desc a,
                                                                    const float *delta) {
  DLK_DYNAMIC_SHARED(float, sb_smem);
  const int64_t D = a.D, Dv = a.Dv;
  float *sK = sb_smem, *sV = sK + FSB_ROWS * D, *sQ = sV + FSB_ROWS * Dv,
        *sO = sQ + FSB_T * (D + 1);
  float *sL = sO + FSB_T * (Dv + 1), *sD = sL + FSB_T;
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int64_t j0 = (int64_t)blockIdx.x * FSB_ROWS, hk = blockIdx.y, b = blockIdx.z;
  const int64_t G = a.Hq / a.Hk, j = j0 + w;
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  int64_t imin = 0;
  if (a.causal && j0 - (kl - ql) > imin) imin = j0 - (kl - ql);
  const int64_t imax = j0 < kl ? ql : 0;
  const int64_t t0 = imin / FSB_T, t1 = imax > imin ? (imax + FSB_T - 1) / FSB_T : t0;
  for (int64_t e = tid; e < FSB_ROWS * D; e += FSB_THREADS) {
    const int64_t r = e / D, d = e % D;
    sK[e] = j0 + r < kl ? to_acc(*at4<const T>(a.k, b, hk, j0 + r, d)) : 0.f;
  }
  for (int64_t e = tid; e < FSB_ROWS * Dv; e += FSB_THREADS) {
    const int64_t r = e / Dv, d = e % Dv;
    sV[e] = j0 + r < kl ? to_acc(*at4<const T>(a.v, b, hk, j0 + r, d)) : 0.f;
  }
  float dk[8], dv[8];
#pragma unroll
  for (int c = 0; c < 8; c++) dk[c] = dv[c] = 0.f;
  const float scale = (float)a.scale, zs = (float)a.drop_scale;
  for (int64_t h = hk * G; h < (hk + 1) * G; h++)
    for (int64_t t = t0; t < t1; t++) {
      const int64_t i0 = t * FSB_T;
      __syncthreads();
      for (int64_t e = tid; e < FSB_T * D; e += FSB_THREADS) {
        const int64_t r = e / D, d = e % D;
        sQ[r * (D + 1) + d] = i0 + r < ql ? to_acc(*at4<const T>(a.q, b, h, i0 + r, d)) : 0.f;
      }
      for (int64_t e = tid; e < FSB_T * Dv; e += FSB_THREADS) {
        const int64_t r = e / Dv, d = e % Dv;
        sO[r * (Dv + 1) + d] = i0 + r < ql ? to_acc(*at4<const T>(a.dout, b, h, i0 + r, d)) : 0.f;
      }
      if (tid < FSB_T) {
        const int64_t i = i0 + tid;
        sL[tid] =
            i < ql ? ((const float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] : -INFINITY;
        sD[tid] = i < ql ? delta[(b * a.Hq + h) * a.Tq + i] : 0.f;
      }
      __syncthreads();
      const int64_t i = i0 + lane;
      float pz = 0.f, ds = 0.f;
      if (visible(i, j, ql, kl, a.causal) && sL[lane] != -INFINITY) {
        float dot = 0.f;
        for (int64_t d = 0; d < D; d++) dot += sQ[lane * (D + 1) + d] * sK[w * D + d];
        float x = dot * scale;
        if (a.bias.data) x += to_acc(*at4<const T>(a.bias, b, h, i, j));
        const float p = x == -INFINITY ? 0.f : expf(x - sL[lane]);
        if (p != 0.f) {
          float dp = 0.f;
          if (keep(a, b, h, i, j)) {
            for (int64_t d = 0; d < Dv; d++) dp += sO[lane * (Dv + 1) + d] * sV[w * Dv + d];
            dp *= zs;
            pz = p * zs;
          }
          ds = p * (dp - sD[lane]);
        }
      }
      for (int ii = 0; ii < FSB_T; ii++) {
        const float pi = __shfl_sync(0xffffffffu, pz, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
        if (pi == 0.f && dsi == 0.f) continue;
#pragma unroll
        for (int c = 0; c < 8; c++) {
          if (lane + 32 * c < Dv) dv[c] += pi * sO[ii * (Dv + 1) + lane + 32 * c];
          if (lane + 32 * c < D) dk[c] += dsi * sQ[ii * (D + 1) + lane + 32 * c];
        }
      }
    }
  if (j >= a.Tk) return;
#pragma unroll
  for (int c = 0; c < 8; c++) {
    if (a.dk.data && lane + 32 * c < D)
      *at4<T>(a.dk, b, hk, j, lane + 32 * c) = from_acc<T>(dk[c] * scale);
    if (a.dv.data && lane + 32 * c < Dv)
      *at4<T>(a.dv, b, hk, j, lane + 32 * c) = from_acc<T>(dv[c]);
  }
}

template <typename T>
int simt_bwd(const dlk_k_sdpa_desc *a, void *ws, cudaStream_t st) {
  float *delta = (float *)ws;
  const int64_t rows = a->B * a->Hq * a->Tq;
  DLK_LAUNCH(bwd_delta_kernel<T>, grid_for(rows * 32, 256), 256, 0, st)(*a, delta);
  if (a->dbias.data && a->Tk > 0)
    DLK_LAUNCH(zero_dbias_kernel<T>, grid_for(rows * a->Tk, 256), 256, 0, st)(*a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return (int)e;
  const size_t smem =
      (size_t)(FSB_ROWS * (a->D + a->Dv) + FSB_T * (a->D + 1 + a->Dv + 1) + 2 * FSB_T) *
      sizeof(float);
  if ((a->dk.data || a->dv.data) && a->Tk > 0) {
    e = cudaFuncSetAttribute(simt_bwd_dkdv_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((unsigned)((a->Tk + FSB_ROWS - 1) / FSB_ROWS), (unsigned)a->Hk, (unsigned)a->B);
    DLK_LAUNCH(simt_bwd_dkdv_kernel<T>, grid, FSB_THREADS, smem, st)(*a, delta);
  }
  if ((a->dq.data || a->dbias.data) && a->Tq > 0) {
    e = cudaFuncSetAttribute(simt_bwd_dq_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((unsigned)((a->Tq + FSB_ROWS - 1) / FSB_ROWS), (unsigned)a->Hq, (unsigned)a->B);
    DLK_LAUNCH(simt_bwd_dq_kernel<T>, grid, FSB_THREADS, smem, st)(*a, delta);
  }
  return (int)cudaGetLastError();
}

bool empty(const dlk_k_sdpa_desc *a) {
  return a->B <= 0 || a->Hq <= 0 || (a->Tq <= 0 && a->Tk <= 0);
}

}  // namespace

#define DLK_SDPA_NAIVE_MAX_WS ((size_t)1 << 30)

extern "C" int dlk_k_sdpa_bwd_supports(const dlk_k_sdpa_bwd_desc *a, int impl, char *why,
                                       size_t n) {
  if (impl == 1) {
    const size_t ws = naive_bwd_ws(a);
    if (ws > DLK_SDPA_NAIVE_MAX_WS) {
      snprintf(
          why, n,
          "materialises %zu bytes of P and dS (limit %zu: the naive oracle is for small shapes)",
          ws, DLK_SDPA_NAIVE_MAX_WS);
      return 0;
    }
    return 1;
  }
  if (impl == 2) {
#if defined(DLK_CUDA_EMU)
    snprintf(why, n, "needs a real GPU (inline PTX)");
    return 0;
#else
    if (!tc_problem(a, "mma.sync tensor cores", why, n)) return 0;
    if (!tc_tensor("q", a->q, a->D, why, n) || !tc_tensor("k", a->k, a->D, why, n) ||
        !tc_tensor("v", a->v, a->Dv, why, n) || !tc_tensor("dout", a->dout, a->Dv, why, n))
      return 0;
    if (a->dbias.data) {
      const int64_t full[4] = {a->B, a->Hq, a->Tq, a->Tk};
      for (int k = 0; k < 4; k++)
        if (a->dbias_n[k] != full[k]) {
          snprintf(why, n,
                   "dbias summed over a broadcast dim (dim %d): the naive variant reduces it", k);
          return 0;
        }
    }
    return 1;
#endif
  }
  if (impl == 4) {
    if (a->dtype == DLK_F64) {
      snprintf(why, n, "f64 runs on the CPU reference and the naive variant");
      return 0;
    }
    if (a->D > 256 || a->Dv > 256 || a->B > 65535 || a->Hq > 65535) {
      snprintf(why, n, "D %lld, Dv %lld (at most 256) or B %lld, Hq %lld (at most 65535)",
               (long long)a->D, (long long)a->Dv, (long long)a->B, (long long)a->Hq);
      return 0;
    }
    if (a->dbias.data) {
      const int64_t full[4] = {a->B, a->Hq, a->Tq, a->Tk};
      for (int k = 0; k < 4; k++)
        if (a->dbias_n[k] != full[k]) {
          snprintf(why, n,
                   "dbias summed over a broadcast dim (dim %d): the naive variant reduces it", k);
          return 0;
        }
    }
    return 1;
  }
  snprintf(why, n, "no backward impl %d", impl);
  return 0;
}

extern "C" size_t dlk_k_sdpa_bwd_ws(const dlk_k_sdpa_bwd_desc *a, int impl) {
  if (impl == 1) return naive_bwd_ws(a);
  if (impl == 2 || impl == 4) return (size_t)(a->B * a->Hq * a->Tq) * sizeof(float) + 16;
  return 0;
}

extern "C" int dlk_k_sdpa_bwd(const dlk_k_sdpa_bwd_desc *a, int impl, void *ws, void *stream) {
  if (empty(a)) return 0;
  cudaStream_t st = (cudaStream_t)stream;
  if (impl == 1) {
    DLK_DISPATCH_FLOAT(a->dtype, T, return naive_bwd<T>(a, ws, st));
    return 0;
  }
#if !defined(DLK_CUDA_EMU)
  if (impl == 2) {
    char why[256];
    if (!dlk_k_sdpa_bwd_supports(a, 2, why, sizeof why)) return (int)cudaErrorInvalidValue;
    if (a->dtype == DLK_F16) return flash_bwd<f16>(a, ws, st);
    return flash_bwd<bf16>(a, ws, st);
  }
#endif
  if (impl == 4) {
    char why[256];
    if (!dlk_k_sdpa_bwd_supports(a, 4, why, sizeof why)) return (int)cudaErrorInvalidValue;
    if (a->dtype == DLK_F32) return simt_bwd<float>(a, ws, st);
    if (a->dtype == DLK_F16) return simt_bwd<f16>(a, ws, st);
    return simt_bwd<bf16>(a, ws, st);
  }
  return (int)cudaErrorInvalidValue;
}
