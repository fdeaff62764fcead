// attention family: the SDPA forward ladder.
//   out_i = sum_j softmax_j(scale q_i . k_j + bias_ij, masked) z_ij v_j,  lse_i = log sum_j
//   exp(...)
// Variants (host/attention/attention_cuda.c rows):
//   1 naive      materialises the scores in the workspace: one thread per score, one warp
//                per row for the softmax, one thread per output; every float dtype, any
//                strides (the GPU oracle; shapes up to 2^30 bytes of scores)
//   2 flash_mma  FlashAttention-2: one block per 64 query rows streams K/V blocks through
//                shared memory (cp.async, double-buffered), S = Q K^T and O += P V on
//                mma.sync m16n8k16 tensor cores, online softmax in registers; f16/bf16
//   3 flash_wgmma  sm_90a (kernels/attention/sdpa_sm90.cu)
//   4 flash_simt the same streaming order on CUDA cores, one warp per query row: f32, f16,
//                bf16 (f32 math), any strides; the scalable path for f32 and for the
//                layouts and head dims the tensor-core variants decline
// plus the lengths check every row runs before it writes.
// No variant uses atomics: every result is bit-identical run to run.
#include "sdpa_common.cuh"

using namespace dlk;

namespace {

// ======================================================================================
// The lengths check: one thread walks both vectors (B is small) so the first bad entry
// is the one reported, as the CPU reference reports it.
// ======================================================================================
__global__ void check_lengths_kernel(dlk_k_sdpa_desc a, int64_t *flag) {
  flag[0] = -1;
  for (int side = 0; side < 2; side++) {
    const void *p = side ? a.k_len : a.q_len;
    if (!p) continue;
    const int dt = side ? a.k_len_dtype : a.q_len_dtype;
    const int64_t s = side ? a.k_len_s : a.q_len_s, full = side ? a.Tk : a.Tq;
    for (int64_t b = 0; b < a.B; b++) {
      int64_t v =
          dt == DLK_I64 ? ((const int64_t *)p)[b * s] : (int64_t)((const int32_t *)p)[b * s];
      if (v < 1 || v > full) {
        flag[0] = side, flag[1] = b, flag[2] = v;
        return;
      }
    }
  }
}

// ======================================================================================
// 1 naive
// ======================================================================================

// Row softmax. Thread mapping: one warp per row (b, h, i) of the scores, rows in a
// grid-stride loop over warps; lanes stride the row. m = max_j S_j, l = sum_j exp(S_j - m),
// lse = m + log l (-inf when m is -inf); then S_j <- exp(S_j - lse) z_ij in place (0 where
// S_j is -inf). lse written when the tensor is given. No shared memory.
template <typename T>
__global__ void naive_softmax_kernel(dlk_k_sdpa_desc a, typename AccT<T>::type *S) {
  typedef typename AccT<T>::type A;
  const int64_t rows = a.B * a.Hq * a.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); row < rows;
       row += warps) {
    A *s = S + row * a.Tk;
    A m = -INFINITY;
    for (int64_t j = lane; j < a.Tk; j += 32) m = m_max(m, s[j]);
    m = warp_max(m);
    A l = 0;
    if (m != (A)-INFINITY)
      for (int64_t j = lane; j < a.Tk; j += 32) l += m_exp(s[j] - m);
    l = warp_sum(l);
    const A lse = m == (A)-INFINITY ? (A)-INFINITY : m + m_log(l);
    const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
    for (int64_t j = lane; j < a.Tk; j += 32)
      s[j] = lse == (A)-INFINITY || s[j] == (A)-INFINITY
                 ? (A)0
                 : m_exp(s[j] - lse) * (keep(a, b, h, i, j) ? (A)a.drop_scale : (A)0);
    if (lane == 0 && a.lse) ((A *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] = lse;
  }
}

// Output. Thread mapping: a grid-stride loop over the row-major index of [B, Hq, Tq, Dv]
// (d fastest); each thread sums P_ij z_ij v_jd over the keys with a nonzero weight (so a
// masked or dropped key's v is never read). No shared memory.
template <typename T>
__global__ void naive_out_kernel(dlk_k_sdpa_desc a, const typename AccT<T>::type *P) {
  typedef typename AccT<T>::type A;
  const int64_t total = a.B * a.Hq * a.Tq * a.Dv, G = a.Hq / a.Hk;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t d = idx % a.Dv, row = idx / a.Dv;
    const int64_t i = row % a.Tq, h = (row / a.Tq) % a.Hq, b = row / (a.Tq * a.Hq);
    const A *p = P + row * a.Tk;
    const T *v = at4<const T>(a.v, b, h / G, 0, d);
    A acc = 0;
    for (int64_t j = 0; j < a.Tk; j++)
      if (p[j] != (A)0) acc += p[j] * to_acc(v[j * a.v.s2]);
    *at4<T>(a.out, b, h, i, d) = from_acc<T>(acc);
  }
}

template <typename T>
int naive_fwd(const dlk_k_sdpa_desc *a, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  A *S = (A *)ws;
  const int64_t scores = a->B * a->Hq * a->Tq * a->Tk, rows = a->B * a->Hq * a->Tq;
  if (scores > 0) DLK_LAUNCH(naive_scores_kernel<T>, grid_for(scores, 256), 256, 0, st)(*a, S);
  if (rows > 0) DLK_LAUNCH(naive_softmax_kernel<T>, grid_for(rows * 32, 256), 256, 0, st)(*a, S);
  const int64_t outs = rows * a->Dv;
  if (outs > 0) DLK_LAUNCH(naive_out_kernel<T>, grid_for(outs, 256), 256, 0, st)(*a, S);
  return (int)cudaGetLastError();
}

// ======================================================================================
// 2 flash_mma (FlashAttention-2 forward)
// ======================================================================================
// Block: 128 threads = 4 warps, 64 query rows (warp w owns rows 16w..16w+15 of the block);
// grid (ceil(Tq / 64), Hq, B). Head dims padded to HD in {32, 64, 128, 256} (zero-filled
// columns add nothing to q.k and give output columns that are not stored).
// Key blocks of BC keys (64; 32 for HD 256) stream through shared memory:
//   sQ [64][HD + 8]        the block's queries (rows past Tq or q_len zero-filled)
//   sK [2][BC][HD + 8]     keys, double-buffered (rows past k_len zero-filled)
//   sV [2][BC][HD + 8]     values, likewise
// (+8 elements = 16 bytes of padding per row: the 8 row addresses of each ldmatrix phase
// fall in distinct banks). Per key block, each warp:
//   S (16 x BC, f32 registers) = Q_w K^T     mma.sync m16n8k16, A from sQ (ldmatrix; kept in
//                                            registers for HD <= 128), B from sK (ldmatrix)
//   masks and bias: s = scale q.k + bias, -inf where not visible (only in blocks that touch
//   a boundary, or always with a bias); the softmax runs in the log2 domain (exp2f)
//   online softmax per row: m_new = max(m, rowmax S), alpha = 2^(m - m_new), O *= alpha,
//   P = 2^(S - m_new), l = l alpha + rowsum P (each thread holds 2 rows x BC/4 columns; row
//   max and the final row sum reduce over the 4 lanes of a quad)
//   dropout: P z for the PV product (l keeps the undropped P)
//   O (16 x HD, f32 registers) += P V        A = P rounded to T straight from the S
//                                            accumulators, B from sV (ldmatrix.trans)
// The last key block is the causal/length limit of the block's last visible row, so fully
// masked key blocks are never loaded. Epilogue: O / l (0 where l is 0: no visible key),
// lse = (m + log2 l) ln 2 (-inf where l is 0), stored by the quad's lane 0.
constexpr int FM_BR = 64, FM_THREADS = 128;

template <int HD>
struct FmCfg {
  static constexpr int BC = HD >= 256 ? 32 : 64;
  static constexpr int P = HD + 8;                   // smem row pitch, elements
  static constexpr int NT = BC / 8;                  // S n-tiles per warp
  static constexpr int DT = HD / 8;                  // O n-tiles per warp
  static constexpr bool QREG = HD <= 128;            // Q fragments kept in registers
  static constexpr int SMEM = (FM_BR + 4 * BC) * P;  // elements
};

#if !defined(DLK_CUDA_EMU)
template <typename T, int HD>
__global__ __launch_bounds__(FM_THREADS) void flash_fwd_kernel(dlk_k_sdpa_desc a) {
  typedef FmCfg<HD> C;
  DLK_DYNAMIC_SHARED(unsigned char, fm_smem);
  T *sQ = (T *)fm_smem;
  T *sK = sQ + FM_BR * C::P;
  T *sV = sK + 2 * C::BC * C::P;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;  // mma fragment row group and column pair
  const int64_t i0 = (int64_t)blockIdx.x * FM_BR, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (a.Hq / a.Hk);
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  const T *gq = at4<const T>(a.q, b, h, 0, 0), *gk = at4<const T>(a.k, b, hk, 0, 0);
  const T *gv = at4<const T>(a.v, b, hk, 0, 0);

  // Key blocks to visit: up to the last key visible to the block's last live row.
  const int64_t last_row = (i0 + FM_BR < ql ? i0 + FM_BR : ql) - 1;
  int64_t jmax = last_row < i0 ? -1 : kl - 1;
  if (a.causal && jmax >= 0 && last_row + kl - ql < jmax) jmax = last_row + kl - ql;
  const int nblocks = jmax < 0 ? 0 : (int)(jmax / C::BC) + 1;

  if (nblocks > 0) {
    load_rows<T, FM_BR, HD, FM_THREADS>(sQ, gq, a.q.s2, i0, ql, a.D, tid);
    cp_async_commit();
    load_rows<T, C::BC, HD, FM_THREADS>(sK, gk, a.k.s2, 0, kl, a.D, tid);
    load_rows<T, C::BC, HD, FM_THREADS>(sV, gv, a.v.s2, 0, kl, a.Dv, tid);
    cp_async_commit();
  }

  const float log2e = 1.4426950408889634f;
  const float sc = (float)a.scale * log2e;
  float o[C::DT][4];
#pragma unroll
  for (int n = 0; n < C::DT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  uint32_t qf[C::QREG ? HD / 16 : 1][4];
  // Rows of this thread's accumulators within the sequence.
  const int64_t ri[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};

  for (int blk = 0; blk < nblocks; blk++) {
    const int cur = blk & 1;
    const int64_t j0 = (int64_t)blk * C::BC;
    if (blk + 1 < nblocks) {
      load_rows<T, C::BC, HD, FM_THREADS>(sK + (cur ^ 1) * C::BC * C::P, gk, a.k.s2, j0 + C::BC, kl,
                                          a.D, tid);
      load_rows<T, C::BC, HD, FM_THREADS>(sV + (cur ^ 1) * C::BC * C::P, gv, a.v.s2, j0 + C::BC, kl,
                                          a.Dv, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T *k_s = sK + cur * C::BC * C::P, *v_s = sV + cur * C::BC * C::P;
    if (C::QREG && blk == 0) {
#pragma unroll
      for (int kk = 0; kk < (C::QREG ? HD / 16 : 0); kk++)
        ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
    }

    // ---- S = Q K^T ----
    float s[C::NT][4];
#pragma unroll
    for (int n = 0; n < C::NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      uint32_t af[4];
      if (C::QREG) {
#pragma unroll
        for (int r = 0; r < 4; r++) af[r] = qf[C::QREG ? kk : 0][r];
      } else {
        ldmatrix_x4(af, sQ + (warp * 16 + (lane & 15)) * C::P + kk * 16 + (lane >> 4) * 8);
      }
#pragma unroll
      for (int jj = 0; jj < C::NT / 2; jj++) {
        uint32_t r[4];
        ldmatrix_x4(r, k_s + (jj * 16 + (lane & 7) + ((lane >> 4) << 3)) * C::P + kk * 16 +
                           ((lane >> 3) & 1) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(s[2 * jj], af, b0);
        mma16816<T>(s[2 * jj + 1], af, b1);
      }
    }

    // ---- scale, bias and masks (log2 domain) ----
    const bool interior = !a.bias.data && j0 + C::BC <= kl && i0 + FM_BR <= ql &&
                          (!a.causal || j0 + C::BC - 1 <= i0 + kl - ql);
#pragma unroll
    for (int n = 0; n < C::NT; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float x = s[n][e] * sc;
        if (!interior) {
          const int64_t i = ri[e >> 1], j = j0 + n * 8 + 2 * tq + (e & 1);
          if (!visible(i, j, ql, kl, a.causal)) {
            x = -INFINITY;
          } else if (a.bias.data) {
            x += to_acc(*at4<const T>(a.bias, b, h, i, j)) * log2e;
          }
        }
        s[n][e] = x;
      }

    // ---- online softmax ----
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < C::NT; n++) mx = fmaxf(mx, fmaxf(s[n][2 * r], s[n][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no inf - inf
      alpha[r] = exp2f(m[r] - m_use);
      m[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < C::NT; n++) {
        s[n][2 * r] = exp2f(s[n][2 * r] - m_use);
        s[n][2 * r + 1] = exp2f(s[n][2 * r + 1] - m_use);
        sum += s[n][2 * r] + s[n][2 * r + 1];
      }
      l[r] = l[r] * alpha[r] + sum;
    }
#pragma unroll
    for (int n = 0; n < C::DT; n++) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }
    if (a.drop_threshold) {
      const float zs = (float)a.drop_scale;
#pragma unroll
      for (int n = 0; n < C::NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int64_t i = ri[e >> 1], j = j0 + n * 8 + 2 * tq + (e & 1);
          s[n][e] = keep(a, b, h, i, j) ? s[n][e] * zs : 0.f;
        }
    }

    // ---- O += P V ----
#pragma unroll
    for (int kk = 0; kk < C::BC / 16; kk++) {
      const uint32_t pf[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                              pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int jj = 0; jj < C::DT / 2; jj++) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, v_s + (kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3)) * C::P +
                                 jj * 16 + (lane >> 4) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(o[2 * jj], pf, b0);
        mma16816<T>(o[2 * jj + 1], pf, b1);
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }

  // ---- epilogue ----
  float inv[2], lse[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float lt = l[r];
    lt += __shfl_xor_sync(0xffffffffu, lt, 1);
    lt += __shfl_xor_sync(0xffffffffu, lt, 2);
    inv[r] = lt > 0.f ? 1.f / lt : 0.f;
    lse[r] = lt > 0.f ? (m[r] + log2f(lt)) * 0.6931471805599453f : -INFINITY;
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int64_t i = ri[r];
    if (i >= a.Tq) continue;
    T *out = at4<T>(a.out, b, h, i, 0);
#pragma unroll
    for (int n = 0; n < C::DT; n++) {
      const int64_t d = n * 8 + 2 * tq;
      if (d + 1 < a.Dv) {
        *(uint32_t *)(out + d) = pack2<T>(o[n][2 * r] * inv[r], o[n][2 * r + 1] * inv[r]);
      } else if (d < a.Dv) {
        out[d] = from_acc<T>(o[n][2 * r] * inv[r]);
      }
    }
    if (tq == 0 && a.lse) ((float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] = lse[r];
  }
}

template <typename T, int HD>
int launch_flash_fwd(const dlk_k_sdpa_desc *a, cudaStream_t st) {
  const size_t smem = (size_t)FmCfg<HD>::SMEM * sizeof(T);
  cudaError_t e = cudaFuncSetAttribute(flash_fwd_kernel<T, HD>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)((a->Tq + FM_BR - 1) / FM_BR), (unsigned)a->Hq, (unsigned)a->B);
  DLK_LAUNCH(flash_fwd_kernel<T, HD>, grid, FM_THREADS, smem, st)(*a);
  return (int)cudaGetLastError();
}

template <typename T>
int flash_fwd(const dlk_k_sdpa_desc *a, cudaStream_t st) {
  switch (tc_head_dim(a)) {
    case 32: return launch_flash_fwd<T, 32>(a, st);
    case 64: return launch_flash_fwd<T, 64>(a, st);
    case 128: return launch_flash_fwd<T, 128>(a, st);
    default: return launch_flash_fwd<T, 256>(a, st);
  }
}
#endif  // !DLK_CUDA_EMU

// ======================================================================================
// 4 flash_simt
// ======================================================================================
// Block: 256 threads = 8 warps, one query row per warp (rows i0 + w of one (b, h)); grid
// (ceil(Tq / 8), Hq, B). Key tiles of 32 stream through shared memory (f32):
//   sQ [8][D]        the block's query rows
//   sK [32][D + 1]   keys (+1: lane j reading row j column d hits bank (j + d) % 32)
//   sV [32][Dv]      values (a warp reads one row, consecutive columns)
// Per tile each warp: lane j scores key j0 + j (dot over D, -inf where not visible, plus
// the bias); warp max and sum give the online softmax (natural exp, f32); then for each of
// the 32 keys, broadcast by shuffle, o[c] += p z v[d] with lane + 32 c = d (Dv <= 256: 8
// per lane). Keys past k_len are never loaded; tiles past the block's causal/length limit
// are never visited. Epilogue as variant 2: o / l (0 when l is 0), lse = m + log l.
constexpr int FS_ROWS = 8, FS_KT = 32, FS_THREADS = 256;

template <typename T>
__global__ __launch_bounds__(FS_THREADS) void flash_simt_fwd_kernel(dlk_k_sdpa_desc a) {
  DLK_DYNAMIC_SHARED(float, fs_smem);
  const int64_t D = a.D, Dv = a.Dv;
  float *sQ = fs_smem, *sK = sQ + FS_ROWS * D, *sV = sK + FS_KT * (D + 1);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int64_t i0 = (int64_t)blockIdx.x * FS_ROWS, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (a.Hq / a.Hk), i = i0 + w;
  const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
  const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  const int64_t last_row = (i0 + FS_ROWS < ql ? i0 + FS_ROWS : ql) - 1;
  int64_t jmax = last_row < i0 ? -1 : kl - 1;
  if (a.causal && jmax >= 0 && last_row + kl - ql < jmax) jmax = last_row + kl - ql;
  const int64_t ntiles = jmax < 0 ? 0 : jmax / FS_KT + 1;

  for (int64_t e = tid; e < FS_ROWS * D; e += FS_THREADS) {
    const int64_t r = e / D, d = e % D;
    sQ[e] = i0 + r < ql ? to_acc(*at4<const T>(a.q, b, h, i0 + r, d)) : 0.f;
  }
  float o[8];
#pragma unroll
  for (int c = 0; c < 8; c++) o[c] = 0.f;
  float m = -INFINITY, l = 0.f;
  const float scale = (float)a.scale, zs = (float)a.drop_scale;
  for (int64_t t = 0; t < ntiles; t++) {
    const int64_t j0 = t * FS_KT;
    __syncthreads();  // the previous tile's reads are done (and sQ is written, first time)
    for (int64_t e = tid; e < FS_KT * D; e += FS_THREADS) {
      const int64_t r = e / D, d = e % D;
      sK[r * (D + 1) + d] = j0 + r < kl ? to_acc(*at4<const T>(a.k, b, hk, j0 + r, d)) : 0.f;
    }
    for (int64_t e = tid; e < FS_KT * Dv; e += FS_THREADS) {
      const int64_t r = e / Dv, d = e % Dv;
      sV[e] = j0 + r < kl ? to_acc(*at4<const T>(a.v, b, hk, j0 + r, d)) : 0.f;
    }
    __syncthreads();
    const int64_t j = j0 + lane;
    float x = -INFINITY;
    if (visible(i, j, ql, kl, a.causal)) {
      float dot = 0.f;
      for (int64_t d = 0; d < D; d++) dot += sQ[w * D + d] * sK[lane * (D + 1) + d];
      x = dot * scale;
      if (a.bias.data) x += to_acc(*at4<const T>(a.bias, b, h, i, j));
    }
    const float m_new = fmaxf(m, warp_max(x));
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    const float alpha = expf(m - m_use);
    const float p = expf(x - m_use);
    l = l * alpha + warp_sum(p);
    m = m_new;
    const float pz = p != 0.f && keep(a, b, h, i, j) ? p * zs : 0.f;
#pragma unroll
    for (int c = 0; c < 8; c++) o[c] *= alpha;
    for (int jj = 0; jj < FS_KT; jj++) {
      const float pj = __shfl_sync(0xffffffffu, pz, jj);
      if (pj == 0.f) continue;  // the same for every lane: no divergence
#pragma unroll
      for (int c = 0; c < 8; c++)
        if (lane + 32 * c < Dv) o[c] += pj * sV[jj * Dv + lane + 32 * c];
    }
  }
  if (i >= a.Tq) return;
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int c = 0; c < 8; c++)
    if (lane + 32 * c < Dv) *at4<T>(a.out, b, h, i, lane + 32 * c) = from_acc<T>(o[c] * inv);
  if (lane == 0 && a.lse)
    ((float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] =
        l > 0.f ? m + logf(l) : -INFINITY;
}

template <typename T>
int flash_simt_fwd(const dlk_k_sdpa_desc *a, cudaStream_t st) {
  const size_t smem = (size_t)(FS_ROWS * a->D + FS_KT * (a->D + 1) + FS_KT * a->Dv) * sizeof(float);
  cudaError_t e = cudaFuncSetAttribute(flash_simt_fwd_kernel<T>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return (int)e;
  dim3 grid((unsigned)((a->Tq + FS_ROWS - 1) / FS_ROWS), (unsigned)a->Hq, (unsigned)a->B);
  DLK_LAUNCH(flash_simt_fwd_kernel<T>, grid, FS_THREADS, smem, st)(*a);
  return (int)cudaGetLastError();
}

// ======================================================================================
// Helpers of the vendor row (host/attention/attention_cudnn.c)
// ======================================================================================

// Lengths as cuDNN takes them: I32 [B] (the full T where a side has no lengths). Thread
// mapping: one thread per sequence.
__global__ void lengths_i32_kernel(dlk_k_sdpa_desc a, int32_t *q_out, int32_t *k_out) {
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < a.B;
       b += (int64_t)gridDim.x * blockDim.x) {
    q_out[b] = (int32_t)seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    k_out[b] = (int32_t)seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
  }
}

// dlk's semantics on the rows a vendor kernel may leave as it likes. Forward: out 0 and
// lse -inf on query rows past q_len. Backward: dq 0 on rows past q_len, dk and dv 0 on
// rows past k_len. Thread mapping: grid-stride over the row-major elements of the tensor
// being fixed ([B, H, T, D] or lse [B, Hq, Tq]); only padded rows are written.
template <typename T>
__global__ void clear_rows_kernel(dlk_k_sdpa_desc a, dlk_k_t4 t, int64_t H, int64_t Tn, int64_t W,
                                  int is_k, int lse) {
  typedef typename AccT<T>::type A;
  const int64_t total = a.B * H * Tn * W;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t d = idx % W, r = idx / W, i = r % Tn, h = (r / Tn) % H, b = r / (Tn * H);
    const int64_t len = is_k ? seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk)
                             : seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    if (i < len) continue;
    if (lse)
      ((float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] = -INFINITY;
    else
      *at4<T>(t, b, h, i, d) = from_acc<T>((A)0);
  }
}

template <typename T>
int clear_padding(const dlk_k_sdpa_desc *a, int backward, cudaStream_t st) {
  struct Job {
    dlk_k_t4 t;
    int64_t H, rows, W;
    int is_k, lse;
  } jobs[3];
  int n = 0;
  if (!backward) {
    if (a->q_len) {
      jobs[n++] = Job{a->out, a->Hq, a->Tq, a->Dv, 0, 0};
      if (a->lse) jobs[n++] = Job{a->out, a->Hq, a->Tq, 1, 0, 1};
    }
  } else {
    if (a->q_len && a->dq.data) jobs[n++] = Job{a->dq, a->Hq, a->Tq, a->D, 0, 0};
    if (a->k_len && a->dk.data) jobs[n++] = Job{a->dk, a->Hk, a->Tk, a->D, 1, 0};
    if (a->k_len && a->dv.data) jobs[n++] = Job{a->dv, a->Hk, a->Tk, a->Dv, 1, 0};
  }
  for (int j = 0; j < n; j++) {
    const int64_t total = a->B * jobs[j].H * jobs[j].rows * jobs[j].W;
    if (total > 0)
      DLK_LAUNCH(clear_rows_kernel<T>, grid_for(total, 256), 256, 0, st)
      (*a, jobs[j].t, jobs[j].H, jobs[j].rows, jobs[j].W, jobs[j].is_k, jobs[j].lse);
  }
  return (int)cudaGetLastError();
}

// Does query row (b, h, i) see a key whose bias is above -inf? (Keys past kl, and with
// causal past i + kl - ql, are not seen.) A NaN bias counts as seen: its NaN is the result.
template <typename T>
__device__ bool sees_a_key(const dlk_k_sdpa_desc &a, int64_t b, int64_t h, int64_t i, int64_t ql,
                           int64_t kl) {
  const int64_t n = a.causal ? (i + kl - ql + 1 < kl ? i + kl - ql + 1 : kl) : kl;
  if (n <= 0) return false;
  if (!a.bias.data) return true;
  for (int64_t j = 0; j < n; j++)
    if (!(to_acc(*at4<T>(a.bias, b, h, i, j)) == -INFINITY)) return true;
  return false;
}

// dlk_k_sdpa_vendor_fwd_finish (attention.h says what it writes). Thread mapping: one
// thread per (b, h, i) row, grid-stride; only a masked row's out is written (Dv elements).
template <typename T>
__global__ void vendor_fwd_finish_kernel(dlk_k_sdpa_desc a, const float *stats) {
  const int64_t rows = a.B * a.Hq * a.Tq;
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = r % a.Tq, h = (r / a.Tq) % a.Hq, b = r / (a.Tq * a.Hq);
    const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    const int64_t kl = seq_len(a.k_len, a.k_len_dtype, a.k_len_s, b, a.Tk);
    float st = stats[r];
    // past the lengths, or no key at all under the causal bound: whatever the vendor wrote
    bool masked = i >= ql || (a.causal ? i + kl - ql + 1 : kl) <= 0 || kl <= 0;
    // exp sums are >= 1 once a score is finite, so -inf stats mean every score was -inf
    if (!masked && !(st > -INFINITY))
      masked = st == -INFINITY || !sees_a_key<T>(a, b, h, i, ql, kl);
    if (masked) {
      for (int64_t d = 0; d < a.Dv; d++) *at4<T>(a.out, b, h, i, d) = from_acc<T>(0.0f);
      st = -INFINITY;
    }
    if (a.lse) ((float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2] = st;
  }
}

// dlk_k_sdpa_vendor_bwd_stats. Thread mapping: one thread per (b, h, i) row, grid-stride.
__global__ void vendor_bwd_stats_kernel(dlk_k_sdpa_desc a, float *stats) {
  const int64_t rows = a.B * a.Hq * a.Tq;
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = r % a.Tq, h = (r / a.Tq) % a.Hq, b = r / (a.Tq * a.Hq);
    const int64_t ql = seq_len(a.q_len, a.q_len_dtype, a.q_len_s, b, a.Tq);
    float l = INFINITY;
    if (i < ql) l = ((const float *)a.lse)[b * a.lse_s0 + h * a.lse_s1 + i * a.lse_s2];
    stats[r] = l == -INFINITY ? INFINITY : l;
  }
}

bool empty(const dlk_k_sdpa_desc *a) {
  return a->B <= 0 || a->Hq <= 0 || a->Tq <= 0 || a->Dv <= 0;
}

// Bytes of the naive variant's score matrix.
size_t naive_scores_bytes(const dlk_k_sdpa_desc *a) {
  return (size_t)(a->B * a->Hq * a->Tq * a->Tk) * acc_size(a->dtype);
}

}  // namespace

// The naive variants materialise the scores; beyond this they decline (they are the oracle
// for small shapes, and the autotuner must never try a multi-gigabyte workspace).
#define DLK_SDPA_NAIVE_MAX_WS ((size_t)1 << 30)

extern "C" int dlk_k_sdpa_check_lengths(const dlk_k_sdpa_desc *a, int64_t *flag, void *stream) {
  DLK_LAUNCH(check_lengths_kernel, 1, 1, 0, stream)(*a, flag);
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_sdpa_fwd_supports(const dlk_k_sdpa_fwd_desc *a, int impl, char *why,
                                       size_t n) {
  if (impl == 1) {
    const size_t ws = dlk_k_sdpa_fwd_ws(a, 1);
    if (ws > DLK_SDPA_NAIVE_MAX_WS) {
      snprintf(why, n,
               "materialises %zu bytes of scores (limit %zu: the naive oracle is for small shapes)",
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
        !tc_tensor("v", a->v, a->Dv, why, n))
      return 0;
    if (a->out.s3 != 1 && a->Dv > 1) {
      snprintf(why, n, "out has stride %lld along Dv (needs 1)", (long long)a->out.s3);
      return 0;
    }
    if ((a->out.s0 | a->out.s1 | a->out.s2) % 2 || (uintptr_t)a->out.data % 4) {
      snprintf(why, n, "out rows not 4-byte aligned (paired stores)");
      return 0;
    }
    return 1;
#endif
  }
  if (impl == 3) return dlk_k_sdpa_fwd_wgmma_supports(a, why, n);
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
    return 1;
  }
  snprintf(why, n, "no forward impl %d", impl);
  return 0;
}

extern "C" size_t dlk_k_sdpa_fwd_ws(const dlk_k_sdpa_fwd_desc *a, int impl) {
  return impl == 1 ? naive_scores_bytes(a) : 0;
}

extern "C" int dlk_k_sdpa_fwd(const dlk_k_sdpa_fwd_desc *a, int impl, void *ws, void *stream) {
  if (empty(a)) return 0;
  cudaStream_t st = (cudaStream_t)stream;
  if (impl == 1) {
    DLK_DISPATCH_FLOAT(a->dtype, T, return naive_fwd<T>(a, ws, st));
    return 0;
  }
#if !defined(DLK_CUDA_EMU)
  if (impl == 2) {
    char why[256];
    if (!dlk_k_sdpa_fwd_supports(a, 2, why, sizeof why)) return (int)cudaErrorInvalidValue;
    if (a->dtype == DLK_F16) return flash_fwd<f16>(a, st);
    return flash_fwd<bf16>(a, st);
  }
#endif
  if (impl == 4) {
    char why[256];
    if (!dlk_k_sdpa_fwd_supports(a, 4, why, sizeof why)) return (int)cudaErrorInvalidValue;
    if (a->dtype == DLK_F32) return flash_simt_fwd<float>(a, st);
    if (a->dtype == DLK_F16) return flash_simt_fwd<f16>(a, st);
    return flash_simt_fwd<bf16>(a, st);
  }
  if (impl == 3) {
    char err[256];
    return dlk_k_sdpa_fwd_wgmma(a, err, sizeof err, stream);
  }
  return (int)cudaErrorInvalidValue;
}

extern "C" int dlk_k_sdpa_lengths_i32(const dlk_k_sdpa_desc *a, int32_t *q_out, int32_t *k_out,
                                      void *stream) {
  if (a->B <= 0) return 0;
  DLK_LAUNCH(lengths_i32_kernel, grid_for(a->B, 256), 256, 0, stream)(*a, q_out, k_out);
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_sdpa_vendor_fwd_finish(const dlk_k_sdpa_desc *a, const float *stats,
                                            void *stream) {
  const int64_t rows = a->B * a->Hq * a->Tq;
  if (rows <= 0) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, T,
                     DLK_LAUNCH(vendor_fwd_finish_kernel<T>, grid_for(rows, 256), 256, 0,
                                (cudaStream_t)stream)(*a, stats);
                     return (int)cudaGetLastError());
  return 0;
}

extern "C" int dlk_k_sdpa_vendor_bwd_stats(const dlk_k_sdpa_desc *a, float *stats, void *stream) {
  const int64_t rows = a->B * a->Hq * a->Tq;
  if (rows <= 0) return 0;
  DLK_LAUNCH(vendor_bwd_stats_kernel, grid_for(rows, 256), 256, 0, (cudaStream_t)stream)(*a, stats);
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_sdpa_clear_padding(const dlk_k_sdpa_desc *a, int backward, void *stream) {
  if (a->B <= 0 || (!a->q_len && !a->k_len)) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, T, return clear_padding<T>(a, backward, (cudaStream_t)stream));
  return 0;
}
