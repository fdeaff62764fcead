// Device helpers shared by every family's kernels: the launch macro, dtype conversions
// and the accumulation type (AccT), activations and their derivatives, packed 16-byte
// row loads and stores, warp and block reductions, the online (max, sum-exp) update of
// softmax, row-group and grid geometry, and the two-pass column sums. A family's own
// helpers live in its folder (kernels/nn/gemm.cuh, kernels/glove/glove.cuh).
#ifndef DLK_COMMON_CUH
#define DLK_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <utility>

#include "dlk.h"
#include "common.h"

// Bounds checks for a debugging build (-DDLK_DEBUG_KERNELS): a violated index invariant
// traps, so compute-sanitizer or the next CUDA call reports the kernel at fault.
#ifdef DLK_DEBUG_KERNELS
#define DLK_KCHECK(cond)   \
  do {                     \
    if (!(cond)) __trap(); \
  } while (0)
#else
#define DLK_KCHECK(cond) \
  do {                   \
  } while (0)
#endif

// ---- launching, dynamic shared memory ----
// Every launch is written DLK_LAUNCH(kernel, grid, block, smem, stream)(args...). On a
// GPU that is kernel<<<grid, block, smem, (cudaStream_t)stream>>>(args...); it is written
// as a call on a small object so that the kernel may be a template whose arguments hold
// commas (DLK_LAUNCH(softmax_fwd_kernel<T, 2, true>, ...)), and so that the emulated
// device (DLK_CUDA_EMU, tests/emu/) can put its own launch behind the same spelling.
// Dynamic shared memory is declared only as DLK_DYNAMIC_SHARED(T, name); (16-byte aligned)
// or DLK_DYNAMIC_SHARED(T, name, align);: on a GPU `extern __shared__ __align__(a) T
// name[]`, on the emulated device a pointer to the launch's buffer (a raw `extern
// __shared__` does not compile there). Inline PTX sits inside `#if !defined(DLK_CUDA_EMU)`
// (README: "The emulated device").
#ifdef DLK_CUDA_EMU
#include "emu_launch.h"
#else
#define DLK_DYNAMIC_SHARED_2(T, name) extern __shared__ __align__(16) T name[]
#define DLK_DYNAMIC_SHARED_3(T, name, align) extern __shared__ __align__(align) T name[]
#define DLK_DYNAMIC_SHARED_PICK(a, b, c, which, ...) which
#define DLK_DYNAMIC_SHARED(...) \
  DLK_DYNAMIC_SHARED_PICK(__VA_ARGS__, DLK_DYNAMIC_SHARED_3, DLK_DYNAMIC_SHARED_2, _)(__VA_ARGS__)
namespace dlk {
template <typename... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  template <typename... A>
  void operator()(A &&...args) const {
    void (*k)(P...) = kernel;
    k<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
  }
};
// stream: a cudaStream_t or the launchers' void *.
template <typename... P, typename S>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, S stream) {
  return Launch<P...>{kernel, grid, block, smem, (cudaStream_t)stream};
}
}  // namespace dlk
#define DLK_LAUNCH(...) ::dlk::launch(__VA_ARGS__)
#endif

namespace dlk {

typedef __half f16;
typedef __nv_bfloat16 bf16;

// Accumulation type: f32 for every 16/32-bit dtype, f64 for f64.
template <typename T>
struct AccT {
  typedef float type;
};
template <>
struct AccT<double> {
  typedef double type;
};

__device__ __forceinline__ float to_acc(float v) {
  return v;
}
__device__ __forceinline__ float to_acc(f16 v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_acc(bf16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ double to_acc(double v) {
  return v;
}

template <typename T>
__device__ __forceinline__ T from_acc(typename AccT<T>::type v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ f16 from_acc<f16>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ bf16 from_acc<bf16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ double from_acc<double>(double v) {
  return v;
}

// Precise (not the fast-intrinsic) math in the accumulation type.
__device__ __forceinline__ float m_exp(float v) {
  return expf(v);
}
__device__ __forceinline__ double m_exp(double v) {
  return exp(v);
}
__device__ __forceinline__ float m_log(float v) {
  return logf(v);
}
__device__ __forceinline__ double m_log(double v) {
  return log(v);
}
__device__ __forceinline__ float m_sqrt(float v) {
  return sqrtf(v);
}
__device__ __forceinline__ double m_sqrt(double v) {
  return sqrt(v);
}
__device__ __forceinline__ float m_tanh(float v) {
  return tanhf(v);
}
__device__ __forceinline__ double m_tanh(double v) {
  return tanh(v);
}
__device__ __forceinline__ float m_erf(float v) {
  return erff(v);
}
__device__ __forceinline__ double m_erf(double v) {
  return erf(v);
}
__device__ __forceinline__ float m_max(float a, float b) {
  return fmaxf(a, b);
}
__device__ __forceinline__ double m_max(double a, double b) {
  return fmax(a, b);
}
template <typename A>
__device__ __forceinline__ A neg_inf() {
  return (A)-INFINITY;
}

// act(v) for a dlk_activation, as the CPU reference: relu v <= 0 ? 0 : v (NaN stays NaN,
// as torch.relu; its derivative passes the gradient at NaN like threshold_backward).
// gelu is exact: 0.5 v (1 + erf(v / sqrt 2)).
template <typename A>
__device__ __forceinline__ A act_fwd(A v, int act) {
  switch (act) {
    case DLK_ACT_RELU: return v <= (A)0 ? (A)0 : v;
    case DLK_ACT_TANH: return m_tanh(v);
    case DLK_ACT_SIGMOID: return (A)1 / ((A)1 + m_exp(-v));
    case DLK_ACT_GELU: return (A)0.5 * v * ((A)1 + m_erf(v * (A)0.70710678118654752440));
    default: return v;
  }
}

// act'(v) at the pre-activation v: relu 1[v > 0]; tanh 1 - tanh^2; sigmoid s (1 - s);
// gelu Phi(v) + v phi(v), phi(v) = exp(-v^2/2) / sqrt(2 pi).
template <typename A>
__device__ __forceinline__ A act_grad(A v, int act) {
  switch (act) {
    case DLK_ACT_RELU: return v <= (A)0 ? (A)0 : (A)1;
    case DLK_ACT_TANH: {
      A t = m_tanh(v);
      return (A)1 - t * t;
    }
    case DLK_ACT_SIGMOID: {
      A s = (A)1 / ((A)1 + m_exp(-v));
      return s * ((A)1 - s);
    }
    case DLK_ACT_GELU: {
      A cdf = (A)0.5 * ((A)1 + m_erf(v * (A)0.70710678118654752440));
      A pdf = m_exp((A)-0.5 * v * v) * (A)0.39894228040143267794;
      return cdf + v * pdf;
    }
    default: return (A)1;
  }
}

// ---- reductions (fixed order: bit-identical run to run) ----

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = m_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Online softmax state: running max m and sum s of exp(x - m). Combining two states:
// m = max(m1, m2), s = s1 exp(m1 - m) + s2 exp(m2 - m). A side whose max equals m adds
// its s unscaled, so equal infinite maxima never form inf - inf; the empty state
// (m = -inf, s = 0) is the identity.
template <typename A>
struct MaxSum {
  A m, s;
};
template <typename A>
__device__ __forceinline__ MaxSum<A> ms_combine(MaxSum<A> a, MaxSum<A> b) {
  A m = m_max(a.m, b.m);
  A sa = a.m == m ? a.s : a.s * m_exp(a.m - m);
  A sb = b.m == m ? b.s : b.s * m_exp(b.m - m);
  return MaxSum<A>{m, sa + sb};
}
template <typename A>
__device__ __forceinline__ MaxSum<A> warp_ms(MaxSum<A> v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> w{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = ms_combine(v, w);
  }
  return v;
}

// Block reductions over all threads of a block (blockDim.x a multiple of 32, <= 1024):
// warps reduce by shuffles, lane 0 of each warp stores into sm[warp], and then every
// thread combines sm[0..nwarps) in order, so all threads get the same total without a
// third barrier. The leading barrier protects sm from a previous use.
template <typename A>
__device__ A block_sum(A v, A *sm) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  A t = sm[0];
  for (int i = 1; i < nw; i++) t += sm[i];
  return t;
}
template <typename A>
__device__ MaxSum<A> block_ms(MaxSum<A> v, MaxSum<A> *sm) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_ms(v);
  __syncthreads();
  if (lane == 0) sm[warp] = v;
  __syncthreads();
  MaxSum<A> t = sm[0];
  for (int i = 1; i < nw; i++) t = ms_combine(t, sm[i]);
  return t;
}

// ---- launch geometry ----

// Blocks for a grid-stride loop over n items with `threads` per block: enough to fill
// the GPU, capped so the grid limit (2^31 - 1) is never reached.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;
  return (unsigned)b;
}

// 2-D grid-stride geometry for elementwise work over [R, C] without per-element
// divisions: block (bx, by) with bx a power of two in [32, 256] that covers short rows,
// by = 256 / bx rows per block; grid capped (x at 2^16, y at 65535), the kernels loop
//   for (r = blockIdx.y * by + ty; r < R; r += gridDim.y * by)
//     for (c = blockIdx.x * bx + tx; c < C; c += gridDim.x * bx)
struct Geom2 {
  dim3 grid, block;
};
inline Geom2 geom2(int64_t R, int64_t C) {
  int bx = 32;
  while (bx < 256 && bx < C) bx <<= 1;
  int by = 256 / bx;
  int64_t gx = (C + bx - 1) / bx, gy = (R + by - 1) / by;
  if (gx < 1) gx = 1;
  if (gy < 1) gy = 1;
  if (gx > (1 << 16)) gx = 1 << 16;
  if (gy > 65535) gy = 65535;
  Geom2 g;
  g.grid = dim3((unsigned)gx, (unsigned)gy);
  g.block = dim3((unsigned)bx, (unsigned)by);
  return g;
}
__device__ __forceinline__ int64_t row0() {
  return blockIdx.y * (int64_t)blockDim.y + threadIdx.y;
}
__device__ __forceinline__ int64_t row_step() {
  return (int64_t)gridDim.y * blockDim.y;
}
__device__ __forceinline__ int64_t col0() {
  return blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t col_step() {
  return (int64_t)gridDim.x * blockDim.x;
}

// Whether pointer p and every multiple of the element strides keep `bytes` alignment.
inline bool aligned_ptr(const void *p, int bytes) {
  return ((uintptr_t)p % bytes) == 0;
}

// Run `body` with T bound to the C++ type of a float dlk_dtype; other dtypes give
// cudaErrorInvalidValue.
#define DLK_DISPATCH_FLOAT(dtype, T, ...)       \
  switch (dtype) {                              \
    case DLK_F32: {                             \
      typedef float T;                          \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_F16: {                             \
      typedef dlk::f16 T;                       \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_BF16: {                            \
      typedef dlk::bf16 T;                      \
      __VA_ARGS__;                              \
    } break;                                    \
    case DLK_F64: {                             \
      typedef double T;                         \
      __VA_ARGS__;                              \
    } break;                                    \
    default: return (int)cudaErrorInvalidValue; \
  }

// ---- rows: packed loads/stores, row groups, the online softmax update ----

// A 16-byte vector of T (4 f32, 8 f16/bf16, 2 f64).
template <typename T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

// Row element access, vectorised (VEC: unit column stride, 16-byte aligned rows, C a
// multiple of V) or through the column stride.
template <typename T, bool VEC>
struct Row {
  typedef typename AccT<T>::type A;
  static constexpr int V = VEC ? Pack<T>::N : 1;
  __device__ __forceinline__ static void load(const T *row, int64_t c, int64_t cs, A *out) {
    if (VEC) {
      DLK_KCHECK(((uintptr_t)(row + c) & 15) == 0);
      Pack<T> p = *reinterpret_cast<const Pack<T> *>(row + c);
#pragma unroll
      for (int k = 0; k < V; k++) out[k] = to_acc(p.v[k]);
    } else {
      out[0] = to_acc(row[c * cs]);
    }
  }
  __device__ __forceinline__ static void store(T *row, int64_t c, int64_t cs, const A *in) {
    if (VEC) {
      DLK_KCHECK(((uintptr_t)(row + c) & 15) == 0);
      Pack<T> p;
#pragma unroll
      for (int k = 0; k < V; k++) p.v[k] = from_acc<T>(in[k]);
      *reinterpret_cast<Pack<T> *>(row + c) = p;
    } else {
      row[c * cs] = from_acc<T>(in[0]);
    }
  }
};

// Whether a [R, C] view can use 16-byte vectors of T along its rows.
template <typename T>
bool vec_ok(const dlk_k_mat &m) {
  const int V = Pack<T>::N;
  return m.cs == 1 && m.cols % V == 0 && (m.rows <= 1 || m.rs % V == 0) && aligned_ptr(m.data, 16);
}
inline bool vec_ok_dtype(int dtype, const dlk_k_mat &m) {
  switch (dtype) {
    case DLK_F32: return vec_ok<float>(m);
    case DLK_F16: return vec_ok<f16>(m);
    case DLK_BF16: return vec_ok<bf16>(m);
    case DLK_F64: return vec_ok<double>(m);
    default: return false;
  }
}
inline int vec_width(int dtype) {
  return dtype == DLK_F64 ? 2 : (dtype == DLK_F32 ? 4 : 8);
}

// Row groups: which rows a thread works on and how a group reduces.
//   MODE 1: one thread per row (block of 128 threads = 128 rows)
//   MODE 2: one warp per row (block of 256 threads = 8 rows)
//   MODE 3: one block per row (blockDim threads)
// Rows are walked grid-stride; the loop bound is uniform within a group, so warp
// shuffles and block barriers always see the whole group.
template <int MODE>
struct Grp {
  __device__ __forceinline__ static int64_t first() {
    return MODE == 1 ? blockIdx.x * (int64_t)blockDim.x + threadIdx.x
                     : (MODE == 2 ? blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5)
                                  : (int64_t)blockIdx.x);
  }
  __device__ __forceinline__ static int64_t step() {
    return MODE == 1 ? (int64_t)gridDim.x * blockDim.x
                     : (MODE == 2 ? (int64_t)gridDim.x * (blockDim.x >> 5) : (int64_t)gridDim.x);
  }
  __device__ __forceinline__ static int lane() {
    return MODE == 1 ? 0 : (MODE == 2 ? (int)(threadIdx.x & 31) : (int)threadIdx.x);
  }
  __device__ __forceinline__ static int size() {
    return MODE == 1 ? 1 : (MODE == 2 ? 32 : (int)blockDim.x);
  }
  // sm: 32 slots of shared memory, used by MODE 3 only.
  template <typename A>
  __device__ __forceinline__ static A sum(A v, A *sm) {
    if constexpr (MODE == 1) {
      return v;
    } else if constexpr (MODE == 2) {
      return warp_sum(v);
    } else {
      return block_sum(v, sm);
    }
  }
  template <typename A>
  __device__ __forceinline__ static MaxSum<A> ms(MaxSum<A> v, MaxSum<A> *sm) {
    if constexpr (MODE == 1) {
      return v;
    } else if constexpr (MODE == 2) {
      return warp_ms(v);
    } else {
      return block_ms(v, sm);
    }
  }
};

// Launch geometry of a row kernel: threads per block and blocks for R rows of C columns.
struct RowLaunch {
  unsigned blocks;
  int threads;
};
inline RowLaunch row_launch(int mode, int64_t R, int64_t C, int V) {
  RowLaunch l;
  if (mode == 1) {
    l.threads = 128;
    l.blocks = grid_for(R, 128);
  } else if (mode == 2) {
    l.threads = 256;
    l.blocks = grid_for(R, 8);
  } else {
    int64_t vecs = (C + V - 1) / V;  // enough threads for ~4 vectors each, 128..1024
    l.threads = vecs >= 4096 ? 1024 : (vecs >= 2048 ? 512 : (vecs >= 1024 ? 256 : 128));
    l.blocks = grid_for(R, 1);
  }
  return l;
}

// Online (max, sum exp) update with one value: one exp per element; the rescale
// exp(m_old - m_new) happens only when the max grows. x equal to the max adds exp(0) = 1
// without forming inf - inf (so a row of -inf gives lse -inf and a +inf entry lse +inf,
// as torch.logsumexp); NaN propagates into s.
template <typename A>
__device__ __forceinline__ void ms_push(MaxSum<A> &st, A x) {
  if (x > st.m) {
    st.s = st.s * m_exp(st.m - x) + (A)1;
    st.m = x;
  } else {
    st.s += x == st.m ? (A)1 : m_exp(x - st.m);
  }
}

// ---- column sums ----

// Column sums in two passes (bias_act backward "tiled", layer norm backward 2).
// Rows are cut into `chunks` chunks of `chunk_rows` (a function of R only, so the order
// of additions never depends on the GPU). Pass 1: block (32, 8) owns 32 columns of one
// chunk; thread (tx, ty) sums rows ty, ty+8, ... of the chunk for column tx; the 8
// partials per column are added in ty order through smem [8][33], and written to
// partial[chunk][col]. Pass 2: one thread per column adds the chunks in order.
constexpr int CS_TX = 32, CS_TY = 8;
struct ColChunks {
  int64_t chunk_rows, chunks;
};
inline ColChunks col_chunks(int64_t R) {
  ColChunks c;
  c.chunk_rows = (R + 511) / 512;
  if (c.chunk_rows < 32) c.chunk_rows = 32;
  c.chunks = (R + c.chunk_rows - 1) / c.chunk_rows;
  if (c.chunks < 1) c.chunks = 1;
  return c;
}

// Pass 2: out[c] = sum over chunks of partial[chunk][c], in chunk order. Thread mapping:
// one thread per column (grid-stride); no shared memory. Static, as every kernel defined in
// a header: each .cu file gets its own, so no two modules register one host stub.
template <typename T>
static __global__ void col_final_kernel(const typename AccT<T>::type *partial, int64_t chunks, int64_t C,
                                 dlk_k_vec out) {
  typedef typename AccT<T>::type A;
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
       c += (int64_t)gridDim.x * blockDim.x) {
    A s = 0;
    for (int64_t k = 0; k < chunks; k++) s += partial[k * C + c];
    ((T *)out.data)[c * out.s] = from_acc<T>(s);
  }
}

}  // namespace dlk

#endif  // DLK_COMMON_CUH
