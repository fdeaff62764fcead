// attention family: additive (Bahdanau) and Luong attention, backward. From the forward's
// weights alpha and the upstream gradients dcontext and dweights (either may be absent):
//   g_ij = dweights_ij + dcontext_i . enc_j,   dE_ij = alpha_ij (g_ij - sum_j' alpha_ij' g_ij')
//   additive: dZ_ij = dE_ij v (1 - tanh(P_j + Q_i)^2); dP_j = sum_i dZ_ij, dQ_i = sum_j dZ_ij,
//             dv = sum_ij dE_ij tanh(P_j + Q_i)
//   dot:      ddec_i = sum_j dE_ij enc_j, denc_j += sum_i dE_ij dec_i
//   general:  dQ_i = sum_j dE_ij enc_j, denc_j += sum_i dE_ij Q_i
//   denc_j += sum_i alpha_ij dcontext_i;  the rest (denc += dP wp^T, ddec = dQ wq^T, the weight
//   gradients) are nn's gemm, run by the host row (host/attention/attention_cuda.c).
// Variants (the rows' impl):
//   1 composed  the eager order: the host row's GEMMs plus the row and pointwise kernels here
//               (masked softmax backward, dZ in place over the materialised tanh)
//   2 fused     one kernel per decoder row (g, dE, dQ) and one per encoder row (dP, dv
//               partials, denc), tanh recomputed in registers; nothing of size
//               [B, Td, Te, A]; dv summed in a fixed order
// Steps past the lengths are never read (their denc and dP are exact zeros). No atomics:
// bit-identical run to run.
#include "additive.cuh"

using namespace dlk;
using namespace dlk::attn;

namespace {

// ======================================================================================
// Pieces of the composed variant (impl 1)
// ======================================================================================

// Masked softmax backward. Thread mapping: one warp per row (b, i), rows grid-stride over
// warps; lanes stride the row: g = dweights + gc, dot = sum_j alpha_j g_j (warp sum), then
// de = alpha (g - dot) for j < len, 0 past it. No shared memory.
template <typename T>
__global__ void softmax_bwd_rows_kernel(dlk_k_attn_desc a, const T *gc, T *de) {
  typedef typename AccT<T>::type Acc;
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.B * a.Td;
  for (int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows;
       r += (int64_t)gridDim.x * (blockDim.x >> 5)) {
    const int64_t b = r / a.Td, i = r % a.Td, len = seq_len(a, b);
    Acc dot = 0;
    for (int64_t j = lane; j < len; j += 32) {
      Acc g = gc ? to_acc(gc[r * a.Te + j]) : (Acc)0;
      if (a.dweights.data) g += to_acc(*at3<const T>(a.dweights, b, i, j));
      dot += to_acc(*at3<const T>(a.alpha, b, i, j)) * g;
    }
    dot = warp_sum(dot);
    for (int64_t j = lane; j < a.Te; j += 32) {
      Acc e = 0;
      if (j < len) {
        Acc g = gc ? to_acc(gc[r * a.Te + j]) : (Acc)0;
        if (a.dweights.data) g += to_acc(*at3<const T>(a.dweights, b, i, j));
        e = to_acc(*at3<const T>(a.alpha, b, i, j)) * (g - dot);
      }
      de[r * a.Te + j] = from_acc<T>(e);
    }
  }
}

// dZ in place. Thread mapping: grid-stride over the row-major index of H [B, Td, Te, A]
// (x fastest): H = de[b, i, j] v_x (1 - H^2). No shared memory.
template <typename T>
__global__ void dz_kernel(dlk_k_attn_desc a, const T *de, T *H) {
  typedef typename AccT<T>::type Acc;
  const int64_t A = a.A, total = a.B * a.Td * a.Te * A;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t x = idx % A, bij = idx / A;
    const Acc h = to_acc(H[idx]), v = to_acc(((const T *)a.v.data)[x * a.v.s]);
    H[idx] = from_acc<T>(to_acc(de[bij]) * v * ((Acc)1 - h * h));
  }
}

// ======================================================================================
// 2 fused
// ======================================================================================

constexpr int FB_THREADS = 256, FB_WARPS = FB_THREADS / 32;

// Per decoder row. Block (i, b) (b grid-stride), 256 threads; shared memory: 32
// accumulators for the block sum.
// Phase 1: warp w takes the visible steps j = w, w + 8, ...: g = dweights_ij + dcontext_i .
//   enc_j (lanes over He, warp sum); lane 0 stores g in dE and adds alpha_ij g to its
//   partial; the block sums the partials in a fixed order: dot.
// Phase 2: thread j (stride 256) turns dE_ij into alpha_ij (g - dot), 0 past the length.
// Phase 3: thread x (stride 256) over the query side: additive dQ_ix = v_x sum_j dE_ij
//   (1 - tanh(P_jx + Q_ix)^2) (a warp reads consecutive x of P_j); general dQ_ik = sum_j
//   dE_ij enc_jk; dot ddec_ih = sum_j dE_ij enc_jh.
template <typename T, int KIND>
__global__ __launch_bounds__(FB_THREADS) void fused_bwd_rows_kernel(dlk_k_attn_desc a,
                                                                    typename AccT<T>::type *dE,
                                                                    T *dQ) {
  typedef typename AccT<T>::type Acc;
  __shared__ Acc red[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t i = blockIdx.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t len = seq_len(a, b);
    Acc *de = dE + (b * a.Td + i) * a.Te;
    Acc part = 0;
    for (int64_t j = warp; j < len; j += FB_WARPS) {
      Acc g = 0;
      if (a.dcontext.data) {
        for (int64_t h = lane; h < a.He; h += 32)
          g += to_acc(*at3<const T>(a.dcontext, b, i, h)) * to_acc(*at3<const T>(a.enc, b, j, h));
        g = warp_sum(g);
      }
      if (a.dweights.data) g += to_acc(*at3<const T>(a.dweights, b, i, j));
      if (lane == 0) {
        de[j] = g;
        part += to_acc(*at3<const T>(a.alpha, b, i, j)) * g;
      }
    }
    const Acc dot = block_sum(part, red);  // its barriers also publish de[] to the block
    for (int64_t j = tid; j < a.Te; j += FB_THREADS)
      de[j] = j < len ? to_acc(*at3<const T>(a.alpha, b, i, j)) * (de[j] - dot) : (Acc)0;
    __syncthreads();
    if (KIND == ADDITIVE && dQ) {
      const T *P = (const T *)a.P, *Q = (const T *)a.Q;
      for (int64_t x = tid; x < a.A; x += FB_THREADS) {
        const Acc q = to_acc(Q[(b * a.Td + i) * a.A + x]);
        Acc acc = 0;
        for (int64_t j = 0; j < len; j++) {
          const Acc h = tanh_fast(to_acc(P[(b * a.Te + j) * a.A + x]) + q);
          acc += de[j] * ((Acc)1 - h * h);
        }
        dQ[(b * a.Td + i) * a.A + x] = from_acc<T>(to_acc(((const T *)a.v.data)[x * a.v.s]) * acc);
      }
    }
    if ((KIND == GENERAL && dQ) || (KIND == DOT && a.ddec.data)) {
      for (int64_t k = tid; k < a.He; k += FB_THREADS) {
        Acc acc = 0;
        for (int64_t j = 0; j < len; j++) acc += de[j] * to_acc(*at3<const T>(a.enc, b, j, k));
        if (KIND == GENERAL)
          dQ[(b * a.Td + i) * a.He + k] = from_acc<T>(acc);
        else
          *at3<T>(a.ddec, b, i, k) = from_acc<T>(acc);
      }
    }
    __syncthreads();  // de[] of this row is read before the next sequence's phase 1
  }
}

// Per encoder row. Block (j, b) (b grid-stride), 256 threads, no shared memory. Past the
// length the block writes zeros. Otherwise thread x (stride 256), additive only: dP_jx =
// v_x sum_i dE_ij (1 - h^2) and the dv partial sum_i dE_ij h, h = tanh(P_jx + Q_ix) (a warp
// reads consecutive x of Q_i); then thread h over He: denc_jh = sum_i alpha_ij
// dcontext_ih (+ dE_ij dec_ih for dot, dE_ij Q_ih for general).
template <typename T, int KIND>
__global__ __launch_bounds__(FB_THREADS) void fused_bwd_cols_kernel(
    dlk_k_attn_desc a, const typename AccT<T>::type *dE, T *dP, typename AccT<T>::type *dvp) {
  typedef typename AccT<T>::type Acc;
  const int tid = threadIdx.x;
  const int64_t j = blockIdx.x, A = a.A, Td = a.Td, Te = a.Te;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const bool vis = j < seq_len(a, b);
    if (KIND == ADDITIVE && (dP || dvp)) {
      const T *P = (const T *)a.P, *Q = (const T *)a.Q;
      for (int64_t x = tid; x < A; x += FB_THREADS) {
        Acc dp = 0, dv = 0;
        if (vis) {
          const Acc p = to_acc(P[(b * Te + j) * A + x]);
          for (int64_t i = 0; i < Td; i++) {
            const Acc de = dE[(b * Td + i) * Te + j];
            const Acc h = tanh_fast(p + to_acc(Q[(b * Td + i) * A + x]));
            dp += de * ((Acc)1 - h * h);
            dv += de * h;
          }
          dp *= to_acc(((const T *)a.v.data)[x * a.v.s]);
        }
        if (dP) dP[(b * Te + j) * A + x] = from_acc<T>(dp);
        if (dvp) dvp[(b * Te + j) * A + x] = dv;
      }
    }
    if (a.denc.data) {
      for (int64_t h = tid; h < a.He; h += FB_THREADS) {
        Acc acc = 0;
        for (int64_t i = 0; vis && i < Td; i++) {
          if (a.dcontext.data)
            acc += to_acc(*at3<const T>(a.alpha, b, i, j)) *
                   to_acc(*at3<const T>(a.dcontext, b, i, h));
          if (KIND == DOT) acc += dE[(b * Td + i) * Te + j] * to_acc(*at3<const T>(a.dec, b, i, h));
          if (KIND == GENERAL)
            acc += dE[(b * Td + i) * Te + j] * to_acc(((const T *)a.Q)[(b * Td + i) * a.He + h]);
        }
        *at3<T>(a.denc, b, j, h) = from_acc<T>(acc);
      }
    }
  }
}

// dv pass 1: column partials of dvp [R, A] over chunks of rows (col_chunks). Block (32, 8)
// owns 32 columns of one chunk; thread (tx, ty) sums rows ty, ty + 8, ... of the chunk for
// column tx; the 8 partials are added in ty order through smem [8][33]. Pass 2 is
// col_final_kernel (kernels/common.cuh).
template <typename T>
__global__ void dv_partial_kernel(const typename AccT<T>::type *dvp, int64_t R, int64_t C,
                                  int64_t chunk_rows, typename AccT<T>::type *partial) {
  typedef typename AccT<T>::type Acc;
  __shared__ Acc sm[CS_TY][CS_TX + 1];
  const int64_t chunk = blockIdx.y,
                r_end = (chunk + 1) * chunk_rows < R ? (chunk + 1) * chunk_rows : R;
  for (int64_t c0 = blockIdx.x * (int64_t)CS_TX; c0 < C; c0 += (int64_t)gridDim.x * CS_TX) {
    const int64_t c = c0 + threadIdx.x;
    Acc s = 0;
    if (c < C)
      for (int64_t r = chunk * chunk_rows + threadIdx.y; r < r_end; r += CS_TY) s += dvp[r * C + c];
    __syncthreads();
    sm[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      Acc t = sm[0][threadIdx.x];
      for (int k = 1; k < CS_TY; k++) t += sm[k][threadIdx.x];
      partial[chunk * C + c] = t;
    }
  }
}

// The fused workspace: dE [B, Td, Te], dvp [B Te, A] (with dv), the dv partials
// [chunks, A], in accumulators.
struct BwdWs {
  size_t dE, dvp, part, total; /* offsets in accumulators */
};
BwdWs bwd_ws(const dlk_k_attn_desc *a) {
  BwdWs w;
  w.dE = 0;
  w.dvp = w.dE + (size_t)(a->B * a->Td * a->Te);
  const bool dv = a->kind == ADDITIVE && a->dv.data;
  w.part = w.dvp + (dv ? (size_t)(a->B * a->Te * a->A) : 0);
  w.total = w.part + (dv ? (size_t)(col_chunks(a->B * a->Te).chunks * a->A) : 0);
  return w;
}

template <typename T, int KIND>
int launch_bwd_fused(const dlk_k_attn_desc *a, T *dP, T *dQ, void *ws, cudaStream_t st) {
  typedef typename AccT<T>::type Acc;
  const BwdWs w = bwd_ws(a);
  Acc *base = (Acc *)ws, *dE = base + w.dE;
  Acc *dvp = KIND == ADDITIVE && a->dv.data ? base + w.dvp : nullptr;
  const unsigned gy = (unsigned)(a->B < 1 ? 1 : a->B < 65535 ? a->B : 65535);
  int rc = 0;
  if (a->Td > 0 && a->B > 0) {
    DLK_LAUNCH((fused_bwd_rows_kernel<T, KIND>), dim3((unsigned)a->Td, gy), FB_THREADS, 0, st)
    (*a, dE, dQ);
    rc = (int)cudaGetLastError();
    if (rc) return rc;
  }
  if ((dP || dvp || a->denc.data) && a->B > 0) {
    DLK_LAUNCH((fused_bwd_cols_kernel<T, KIND>), dim3((unsigned)a->Te, gy), FB_THREADS, 0, st)
    (*a, (const Acc *)dE, dP, dvp);
    rc = (int)cudaGetLastError();
    if (rc) return rc;
  }
  if (dvp) {
    const int64_t R = a->B * a->Te, C = a->A;
    const ColChunks cc = col_chunks(R);
    const int64_t col_blocks = (C + CS_TX - 1) / CS_TX;
    dim3 grid((unsigned)(col_blocks < 65535 ? col_blocks : 65535), (unsigned)cc.chunks);
    DLK_LAUNCH(dv_partial_kernel<T>, grid, dim3(CS_TX, CS_TY), 0, st)
    ((const Acc *)dvp, R, C, cc.chunk_rows, base + w.part);
    DLK_LAUNCH(col_final_kernel<T>, grid_for(C, 256), 256, 0, st)
    ((const Acc *)(base + w.part), cc.chunks, C, a->dv);
  }
  return (int)cudaGetLastError();
}

}  // namespace

// ======================================================================================
// Launchers
// ======================================================================================

extern "C" int dlk_k_attn_softmax_bwd_rows(const dlk_k_attn_desc *a, const void *gc, void *de,
                                           void *stream) {
  const int64_t rows = a->B * a->Td;
  if (rows <= 0) return 0;
  DLK_DISPATCH_FLOAT(a->dtype, E,
                     DLK_LAUNCH(softmax_bwd_rows_kernel<E>, grid_for(rows, 8), 256, 0, stream)(
                         *a, (const E *)gc, (E *)de));
  return (int)cudaGetLastError();
}

extern "C" int dlk_k_attn_dz(const dlk_k_attn_desc *a, const void *de, void *H, void *stream) {
  const int64_t total = a->B * a->Td * a->Te * a->A;
  if (total <= 0) return 0;
  DLK_DISPATCH_FLOAT(
      a->dtype, E,
      DLK_LAUNCH(dz_kernel<E>, grid_for(total, 256), 256, 0, stream)(*a, (const E *)de, (E *)H));
  return (int)cudaGetLastError();
}

extern "C" size_t dlk_k_attn_bwd_fused_ws(const dlk_k_attn_desc *a) {
  return bwd_ws(a).total * acc_bytes(a->dtype);
}

extern "C" int dlk_k_attn_bwd_fused(const dlk_k_attn_desc *a, void *dP, void *dQ, void *ws,
                                    void *stream) {
  // B or Td may be 0: the kernels' loops then leave every gradient they own 0 (dv included),
  // as the gradients of an empty problem are.
  cudaStream_t st = (cudaStream_t)stream;
  switch (a->kind) {
    case ADDITIVE:
      DLK_DISPATCH_FLOAT(a->dtype, E,
                         return launch_bwd_fused<E, ADDITIVE>(a, (E *)dP, (E *)dQ, ws, st));
      break;
    case DOT:
      DLK_DISPATCH_FLOAT(a->dtype, E, return launch_bwd_fused<E, DOT>(a, (E *)dP, (E *)dQ, ws, st));
      break;
    case GENERAL:
      DLK_DISPATCH_FLOAT(a->dtype, E,
                         return launch_bwd_fused<E, GENERAL>(a, (E *)dP, (E *)dQ, ws, st));
      break;
  }
  return (int)cudaErrorInvalidValue;
}
