// glove family kernels: the AdaGrad epoch (Hogwild `warp` and deterministic `det`), the
// co-occurrence chunk count (window generation, cub radix sort by pair key, reduce by
// key), and the per-column top-k of a score matrix. Launchers in kernels/glove_kernels.h;
// variant rows in host/glove_cuda.c; the CPU reference rows (the spec) in
// host/cpu/glove_cpu.c.
//
// Numerics: the per-record scalars (log X, the weight (X/x_max)^alpha, diff, fdiff, the
// cost) are f64 for both model dtypes; the per-component AdaGrad arithmetic runs in the
// model's dtype (f32 for F32 models, f64 for F64 ones); dot products accumulate in the
// model's dtype. Cost sums are f64 and reduced in a fixed order (per-block partials, then
// one block), never with float atomics.
#include <cuda_runtime.h>
#include <stdint.h>

#include <cuda/atomic>
#include <cuda/std/functional>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include "dlk.h"
#include "glove_kernels.h"

// Bounds checks for a debugging build (-DDLK_DEBUG_KERNELS): a violated index invariant
// traps, so compute-sanitizer or the next CUDA call names the kernel at fault.
#ifdef DLK_DEBUG_KERNELS
#define GK_CHECK(cond) \
  do {                 \
    if (!(cond)) __trap(); \
  } while (0)
#else
#define GK_CHECK(cond) \
  do {                 \
  } while (0)
#endif

#define GK_TRY(...)                   \
  do {                                \
    cudaError_t gk_e_ = (__VA_ARGS__); \
    if (gk_e_ != cudaSuccess) return (int)gk_e_; \
  } while (0)

namespace {

constexpr unsigned FULL = 0xffffffffu;

// ======================================================================================
// shared helpers
// ======================================================================================

// A co-occurrence record exactly as dlk_glove_record (16 bytes).
struct alignas(16) GRec {
  int w1, w2;
  double x;
};
static_assert(sizeof(GRec) == 16, "record layout");

struct Rec {
  int w1, w2;
  double x;
};

// One 16-byte read-only load of a record (records are 16-byte aligned: the rows check).
__device__ __forceinline__ Rec load_rec(const GRec *p) {
  int4 v = __ldg(reinterpret_cast<const int4 *>(p));
  Rec r;
  r.w1 = v.x;
  r.w2 = v.y;
  r.x = __hiloint2double(v.w, v.z);  // little-endian: bytes 8..11 are the low word
  return r;
}

// Workspace carving: 256-byte aligned pieces; base == nullptr only sizes.
struct Carve {
  char *base;
  size_t off;
  template <typename T> T *take(size_t count) {
    off = (off + 255) & ~(size_t)255;
    T *p = base ? reinterpret_cast<T *>(base + off) : nullptr;
    off += count * sizeof(T);
    return p;
  }
};

int sm_count() {
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 1;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 1;
  return n > 0 ? n : 1;
}

unsigned grid_for(int64_t n, int threads, int64_t cap = 1 << 20) {
  int64_t b = (n + threads - 1) / threads;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

// Bit length of v >= 0 (0 for 0).
int bit_length(uint64_t v) {
  int b = 0;
  while (v) b++, v >>= 1;
  return b;
}

// Sum over a group of G lanes (G a power of two <= 32) with a butterfly: every lane of
// the group ends with the same value (a + b == b + a exactly, so the pairs agree).
template <int G, typename T> __device__ __forceinline__ T gsum(T v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o, G);
  return v;
}

__device__ __forceinline__ float m_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double m_sqrt(double v) { return sqrt(v); }
// The CPU reference's clip: fmin(fmax(v, -c), c), NaN -> -c (fmax drops the NaN).
__device__ __forceinline__ float m_clip(float v, float c) { return fminf(fmaxf(v, -c), c); }
__device__ __forceinline__ double m_clip(double v, double c) { return fmin(fmax(v, -c), c); }
__device__ __forceinline__ bool m_finite(float v) { return isfinite(v); }
__device__ __forceinline__ bool m_finite(double v) { return isfinite(v); }

// ======================================================================================
// glove_epoch
// ======================================================================================

template <typename T> struct EpochArgs {
  T *W, *G;      // params, gradsq [2V, d+1]
  int64_t V;
  int d;
  const GRec *rec;
  int64_t n;
  double eta, alpha, x_max, clip, log_xmax;
  int keras;
};

// Outcome of one record, for the counts.
enum { REC_NONE = 0, REC_DONE = 1, REC_SKIPPED = 2, REC_BAD = 3 };

// Per-record cost codes of the det variant's cost array (costs are >= 0).
constexpr double COST_SKIPPED = -1.0, COST_BAD = -2.0;

// Row writes are atomic adds of the change to the value in memory (red.global.add, no
// return): records in flight that share a row then never lose each other's steps, they
// only read rows a few steps old (Hogwild as the tool's threads do it: their `W -= u` is
// a read-modify-write of the current value too). x + (-u) == x - u exactly, so with no
// concurrency (det) this is the sequential rule bit for bit.
__device__ __forceinline__ void add_to(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void add_to(double *p, double v) { atomicAdd(p, v); }

// L2-coherent row reads (ld.global.cg): rows are changed by other SMs all the time, and
// L1 is not coherent; in `det` a stale L1 line would break the order.
template <typename T, int VW> struct VecIO;
template <> struct VecIO<float, 1> {
  __device__ __forceinline__ static void ld(const float *p, float *o) { o[0] = __ldcg(p); }
};
template <> struct VecIO<float, 4> {
  __device__ __forceinline__ static void ld(const float *p, float *o) {
    float4 t = __ldcg(reinterpret_cast<const float4 *>(p));
    o[0] = t.x, o[1] = t.y, o[2] = t.z, o[3] = t.w;
  }
};
template <> struct VecIO<double, 1> {
  __device__ __forceinline__ static void ld(const double *p, double *o) { o[0] = __ldcg(p); }
};
template <> struct VecIO<double, 2> {
  __device__ __forceinline__ static void ld(const double *p, double *o) {
    double2 t = __ldcg(reinterpret_cast<const double2 *>(p));
    o[0] = t.x, o[1] = t.y;
  }
};

// The per-record scalars, in f64 for both dtypes (include/dlk.h):
//   target = keras ? log(1 + X) : log X
//   weight = (X > x_max && !keras) ? 1 : (X / x_max)^alpha
//   (X / x_max)^alpha is computed as exp(alpha (log X - log x_max)), reusing log X (the
//   CPU Hogwild row does the same; it differs from pow by an ulp or so).
template <typename T>
__device__ __forceinline__ void record_scalars(const EpochArgs<T> &a, double x, double *lx,
                                               double *wt) {
  const double l = log(x);
  *lx = a.keras ? log1p(x) : l;
  *wt = (x > a.x_max && !a.keras) ? 1.0 : exp(a.alpha * (l - a.log_xmax));
}

template <typename T>
__device__ __forceinline__ bool ids_in_range(const EpochArgs<T> &a, const Rec &r) {
  return r.w1 >= 1 && r.w1 <= a.V && r.w2 >= 1 && r.w2 <= a.V;
}

// One record by a group of G lanes with the rows in registers.
// Thread mapping: lane l of the group holds elements c = ((e * G + l) * VW + v) of each of
// the four rows (word w_i, context w_j, their accumulators) for e < E, v < VW: VW
// consecutive elements per 16-byte vector when VW > 1. Element d is the bias. The caller
// guarantees (d + 1) <= E * G * VW and, for VW > 1, (d + 1) % VW == 0 and 16-byte
// aligned rows. Every lane of the warp must call this together (the shuffles span the
// warp); `has` false makes the group a bystander.
//   diff  = sum_k w_i[k] w_j[k] + b_i + b_j - target      (butterfly sum over the group)
//   fdiff = weight * diff; skipped unless both are finite
//   t1 = clip(fdiff w_j[k]) eta, t2 = clip(fdiff w_i[k]) eta
//   u1 = t1 / sqrt(G_i[k]), u2 = t2 / sqrt(G_j[k]); G += t^2; w -= u if sum(u1), sum(u2)
//   are finite; b -= fdiff / sqrt(G_b) (when finite); G_b += fdiff^2.
// No shared memory. Returns the outcome; the cost goes to *cost on lane 0 of the group.
template <typename T, int G, int E, int VW>
__device__ __forceinline__ int update_regs(const EpochArgs<T> &a, const Rec &r, bool has,
                                           double *cost) {
  const int lane = threadIdx.x & (G - 1);
  const int d = a.d, rl = d + 1;
  const bool ids_ok = has && ids_in_range(a, r);
  T *w1 = a.W, *w2 = a.W, *g1 = a.G, *g2 = a.G;
  if (ids_ok) {
    const int64_t o1 = (int64_t)(r.w1 - 1) * rl, o2 = (a.V + r.w2 - 1) * rl;
    w1 += o1, g1 += o1, w2 += o2, g2 += o2;
  }
  T x1[E][VW], x2[E][VW], h1[E][VW], h2[E][VW];
#pragma unroll
  for (int e = 0; e < E; e++) {
    const int c0 = (e * G + lane) * VW;
    if (ids_ok && c0 < rl) {
      GK_CHECK(c0 + VW <= rl);
      VecIO<T, VW>::ld(w1 + c0, x1[e]);
      VecIO<T, VW>::ld(w2 + c0, x2[e]);
      VecIO<T, VW>::ld(g1 + c0, h1[e]);
      VecIO<T, VW>::ld(g2 + c0, h2[e]);
    } else {
#pragma unroll
      for (int v = 0; v < VW; v++) x1[e][v] = x2[e][v] = (T)0, h1[e][v] = h2[e][v] = (T)1;
    }
  }
  T dot = 0, b1 = 0, b2 = 0;
#pragma unroll
  for (int e = 0; e < E; e++)
#pragma unroll
    for (int v = 0; v < VW; v++) {
      const int c = (e * G + lane) * VW + v;
      if (c < d) dot += x1[e][v] * x2[e][v];
      if (c == d) b1 = x1[e][v], b2 = x2[e][v];
    }
  dot = gsum<G>(dot);
  const int owner = (d / VW) % G;  // the lane holding element d
  b1 = __shfl_sync(FULL, b1, owner, G);
  b2 = __shfl_sync(FULL, b2, owner, G);
  double lx = 0, wt = 0;
  if (ids_ok) record_scalars(a, r.x, &lx, &wt);
  // The reference's order: diff = dot + ((b_i + b_j) - target).
  const double diff = (double)dot + (((double)b1 + (double)b2) - lx);
  const double fdiff = wt * diff;
  const bool ok = ids_ok && isfinite(diff) && isfinite(fdiff);
  if (ok && lane == 0) *cost += 0.5 * fdiff * diff;
  const T fd = (T)fdiff, clip = (T)a.clip, eta = (T)a.eta, fd2 = (T)(fdiff * fdiff);
  T s1 = 0, s2 = 0;
#pragma unroll
  for (int e = 0; e < E; e++)
#pragma unroll
    for (int v = 0; v < VW; v++) {
      const int c = (e * G + lane) * VW + v;
      // From here on the arrays hold the changes: x = -step, h = the square added.
      if (ok && c < d) {
        const T t1 = m_clip(fd * x2[e][v], clip) * eta;
        const T t2 = m_clip(fd * x1[e][v], clip) * eta;
        const T u1 = t1 / m_sqrt(h1[e][v]), u2 = t2 / m_sqrt(h2[e][v]);
        h1[e][v] = t1 * t1;
        h2[e][v] = t2 * t2;
        x1[e][v] = -u1;  // applied only when both sums are finite
        x2[e][v] = -u2;
        s1 += u1;
        s2 += u2;
      } else if (ok && c == d) {
        const T ub1 = fd / m_sqrt(h1[e][v]), ub2 = fd / m_sqrt(h2[e][v]);
        x1[e][v] = m_finite(ub1) ? -ub1 : -(T)0;  // b + (-0) == b for every b
        x2[e][v] = m_finite(ub2) ? -ub2 : -(T)0;
        h1[e][v] = fd2;
        h2[e][v] = fd2;
      }
    }
  s1 = gsum<G>(s1);
  s2 = gsum<G>(s2);
  const bool apply = m_finite(s1) && m_finite(s2);
  if (ok) {
#pragma unroll
    for (int e = 0; e < E; e++)
#pragma unroll
      for (int v = 0; v < VW; v++) {
        const int c = (e * G + lane) * VW + v;
        if (c >= rl) continue;
        add_to(g1 + c, h1[e][v]);
        add_to(g2 + c, h2[e][v]);
        // The vector step is dropped unless both sums are finite; the biases always
        // move (by 0 when their own step was not finite).
        if (apply || c == d) {
          add_to(w1 + c, x1[e][v]);
          add_to(w2 + c, x2[e][v]);
        }
      }
  }
  return !has ? REC_NONE : !ids_ok ? REC_BAD : ok ? REC_DONE : REC_SKIPPED;
}

// One record by a whole warp for any d (rows too long for registers): three passes over
// the rows (dot; the sums of the steps; the writes, recomputing each step from the same
// values), lanes over the components with stride 32. Lane 0 updates the biases.
template <typename T>
__device__ __forceinline__ int update_loop(const EpochArgs<T> &a, const Rec &r, bool has,
                                           double *cost) {
  const int lane = threadIdx.x & 31;
  const int d = a.d;
  const int64_t rl = (int64_t)d + 1;
  const bool ids_ok = has && ids_in_range(a, r);
  T *w1 = a.W, *w2 = a.W, *g1 = a.G, *g2 = a.G;
  if (ids_ok) {
    const int64_t o1 = (int64_t)(r.w1 - 1) * rl, o2 = (a.V + r.w2 - 1) * rl;
    w1 += o1, g1 += o1, w2 += o2, g2 += o2;
  }
  T dot = 0;
  if (ids_ok)
    for (int c = lane; c < d; c += 32) dot += __ldcg(w1 + c) * __ldcg(w2 + c);
  dot = gsum<32>(dot);
  const T b1 = ids_ok ? __ldcg(w1 + d) : (T)0, b2 = ids_ok ? __ldcg(w2 + d) : (T)0;
  double lx = 0, wt = 0;
  if (ids_ok) record_scalars(a, r.x, &lx, &wt);
  const double diff = (double)dot + (((double)b1 + (double)b2) - lx);
  const double fdiff = wt * diff;
  const bool ok = ids_ok && isfinite(diff) && isfinite(fdiff);
  if (ok && lane == 0) *cost += 0.5 * fdiff * diff;
  const T fd = (T)fdiff, clip = (T)a.clip, eta = (T)a.eta;
  T s1 = 0, s2 = 0;
  if (ok)
    for (int c = lane; c < d; c += 32) {
      const T t1 = m_clip(fd * __ldcg(w2 + c), clip) * eta;
      const T t2 = m_clip(fd * __ldcg(w1 + c), clip) * eta;
      s1 += t1 / m_sqrt(__ldcg(g1 + c));
      s2 += t2 / m_sqrt(__ldcg(g2 + c));
    }
  s1 = gsum<32>(s1);
  s2 = gsum<32>(s2);
  const bool apply = m_finite(s1) && m_finite(s2);
  if (ok) {
    for (int c = lane; c < d; c += 32) {
      const T x1 = __ldcg(w1 + c), x2 = __ldcg(w2 + c), h1 = __ldcg(g1 + c), h2 = __ldcg(g2 + c);
      const T t1 = m_clip(fd * x2, clip) * eta, t2 = m_clip(fd * x1, clip) * eta;
      if (apply) {
        add_to(w1 + c, -(t1 / m_sqrt(h1)));
        add_to(w2 + c, -(t2 / m_sqrt(h2)));
      }
      add_to(g1 + c, t1 * t1);
      add_to(g2 + c, t2 * t2);
    }
    if (lane == 0) {
      const T hb1 = __ldcg(g1 + d), hb2 = __ldcg(g2 + d);
      const T ub1 = fd / m_sqrt(hb1), ub2 = fd / m_sqrt(hb2);
      if (m_finite(ub1)) add_to(w1 + d, -ub1);
      if (m_finite(ub2)) add_to(w2 + d, -ub2);
      const T fd2 = (T)(fdiff * fdiff);
      add_to(g1 + d, fd2);
      add_to(g2 + d, fd2);
    }
  }
  return !has ? REC_NONE : !ids_ok ? REC_BAD : ok ? REC_DONE : REC_SKIPPED;
}

template <typename T, int G, int E, int VW>
__device__ __forceinline__ int update_record(const EpochArgs<T> &a, const Rec &r, bool has,
                                             double *cost) {
  if constexpr (E == 0)
    return update_loop<T>(a, r, has, cost);
  else
    return update_regs<T, G, E, VW>(a, r, has, cost);
}

// prefetch.global.L2 of the four rows (word, context, their accumulators) of a record:
// lane l of the group takes the 128-byte lines l, l + G, ... of the four rows laid end to
// end (each row spans at most (d + 1) size / 128 + 2 lines). Ids outside [1, V]: nothing.
template <typename T, int G>
__device__ __forceinline__ void prefetch_rows(const EpochArgs<T> &a, const Rec &r) {
  if (!ids_in_range(a, r)) return;
  const int64_t rl = (int64_t)a.d + 1;
  const int per = (int)((rl * (int64_t)sizeof(T)) / 128 + 2);
  const int64_t o1 = (int64_t)(r.w1 - 1) * rl, o2 = (a.V + r.w2 - 1) * rl;
  for (int j = threadIdx.x & (G - 1); j < 4 * per; j += G) {
    const int k = j / per, line = j - k * per;  // row k: 0 w_i, 1 w_j, 2 G_i, 3 G_j
    const T *row = ((k & 2) ? a.G : a.W) + ((k & 1) ? o2 : o1);
    const uintptr_t start = (uintptr_t)row & ~(uintptr_t)127;
    const uintptr_t at = start + (uintptr_t)line * 128;
    if (at < (uintptr_t)(row + rl)) asm volatile("prefetch.global.L2 [%0];" ::"l"(at));
  }
}

// Block partials of (cost, skipped, bad) in a fixed order: butterfly within each warp,
// then thread 0 adds the warps' sums in warp order. blockDim.x <= 1024.
__device__ void block_partials(double cost, long long skip, long long bad, double *psum,
                               long long *pskip, long long *pbad) {
  __shared__ double sc[32];
  __shared__ long long ss[32], sb[32];
  cost = gsum<32>(cost);
  skip = gsum<32>(skip);
  bad = gsum<32>(bad);
  const int w = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) sc[w] = cost, ss[w] = skip, sb[w] = bad;
  __syncthreads();
  if (threadIdx.x == 0) {
    double c = 0;
    long long s = 0, b = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) c += sc[i], s += ss[i], b += sb[i];
    psum[blockIdx.x] = c, pskip[blockIdx.x] = s, pbad[blockIdx.x] = b;
  }
}

// Variant 1 `warp` (Hogwild).
// Thread mapping: blocks of 256 (or 64) threads; each warp holds 32/G groups of G lanes, a group
// takes one record at a time, grid-stride over the records (record i by group i mod the
// number of groups), so the loop trip count is uniform per warp and the group shuffles
// always see the full warp. No locks: a group reads its rows as they are and adds its
// changes atomically (add_to), so groups on records sharing a row read slightly stale
// values but never lose a step. Shared memory: 3 x 32 words for the block partials.
// Grid: at most EPOCH_MAX_BLOCKS blocks (one partial each), and at most as many groups as
// the in-flight cap (hog_groups) allows.
// Blocks per SM the register budget of `det` aims at: 4 (64 registers) for small per-lane
// rows, fewer as the row slices in registers grow (E * VW values of T, four rows); f64 math
// (the accurate log/exp paths) needs about 20 more registers than f32. The Hogwild kernel
// asks for 2 (128 registers, no spills): its records in flight are capped well below what
// the device holds anyway (hog_groups).
template <typename T, int E, int VW> constexpr int warp_min_blocks() {
  return sizeof(T) == 8 ? (E * VW * 8 <= 16 ? 3 : 2)
                        : (E == 0 || E * VW * 4 <= 16 ? 4 : E * VW * 4 <= 32 ? 3 : 2);
}

template <typename T, int G, int E, int VW>
__global__ void __launch_bounds__(256, 2)
    epoch_warp_kernel(EpochArgs<T> a, double *psum, long long *pskip, long long *pbad) {
  constexpr int GPW = 32 / G;
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  const int gw = (threadIdx.x & 31) / G;
  const int64_t stride = nwarps * GPW;
  double cost = 0;
  long long skip = 0, bad = 0;
  Rec r = {0, 0, 1.0};
  if (warp * GPW + gw < a.n) r = load_rec(a.rec + warp * GPW + gw);
  for (int64_t base = warp * GPW; base < a.n; base += stride) {
    const int64_t i = base + gw;
    const bool has = i < a.n;
    // Software pipeline: the next record now, and its rows towards L2, so that their
    // latency overlaps this record's work.
    Rec next = {0, 0, 1.0};
    if (i + stride < a.n) {
      next = load_rec(a.rec + i + stride);
      prefetch_rows<T, G>(a, next);
    }
    const int st = update_record<T, G, E, VW>(a, r, has, &cost);
    if ((threadIdx.x & (G - 1)) == 0) skip += st == REC_SKIPPED, bad += st == REC_BAD;
    r = next;
  }
  block_partials(cost, skip, bad, psum, pskip, pbad);
}

// ---- det: each record waits for its predecessors on both rows ------------------------
//
// Schedule: before the kernel, seq1[t] = how many records before t in this chunk have
// the same word row, seq2[t] the same for the context row (a stable radix sort of (row,
// t) per side, then rank = position - first position of the row). done1[row] / done2[row]
// count the records already applied to each row. Record t may start when done1[w_i] ==
// seq1[t] and done2[w_j] == seq2[t]; when it ends it sets both to seq+1. So every row sees
// its updates in record order: the chunk's result is that of the sequential pass in
// record order (the greedy conflict-free batching in record order, run as a dataflow
// instead of one launch per batch), independent of timing, hence the same bits each run.
// Records with ids outside [1, V] wait on and release the extra row V, updating nothing.
//
// Progress: warps take records in increasing order through a ticket counter (DET_BATCH
// records per ticket, processed in order); a record waits only for earlier records,
// which were taken by warps already running, so the earliest unfinished record can
// always proceed. A 10 s watchdog (the %globaltimer clock) turns a wait that never ends
// (a bug) into a counted stall instead of a hung GPU.

constexpr int DET_BATCH = 4;
constexpr unsigned long long DET_WATCHDOG_NS = 10000000000ull;

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spin until *flag == want (acquire). Returns false on the watchdog.
__device__ bool wait_for(int *flag, int want) {
  cuda::atomic_ref<int, cuda::thread_scope_device> f(*flag);
  if (f.load(cuda::memory_order_acquire) == want) return true;
  const unsigned long long t0 = global_ns();
  unsigned ns = 32;
  for (;;) {
    __nanosleep(ns);
    if (f.load(cuda::memory_order_acquire) == want) return true;
    if (ns < 512) ns *= 2;
    if (global_ns() - t0 > DET_WATCHDOG_NS) return false;
  }
}

// Variant 2 `det`.
// Thread mapping: one warp (G = 32) per record; a warp takes DET_BATCH consecutive
// records per ticket and runs them in order; lane 0 waits, the whole warp updates, then
// every lane fences its stores and lane 0 releases the two row counters. Blocks of 256
// threads, as many as fit on the device (more would only wait for tickets). Shared
// memory: none. The per-record cost (or a code) goes to cost_out[t] for the fixed-order
// reduction that follows.
template <typename T, int E>
__global__ void __launch_bounds__(256, (warp_min_blocks<T, E, 1>())) epoch_det_kernel(EpochArgs<T> a, const int *seq1,
                                                        const int *seq2, int *done1, int *done2,
                                                        unsigned long long *ticket,
                                                        double *cost_out,
                                                        unsigned long long *stalls) {
  const int lane = threadIdx.x & 31;
  for (;;) {
    unsigned long long tk = 0;
    if (lane == 0) tk = atomicAdd(ticket, 1ull);
    tk = __shfl_sync(FULL, tk, 0);
    const int64_t first = (int64_t)tk * DET_BATCH;
    if (first >= a.n) break;
    for (int64_t t = first; t < first + DET_BATCH && t < a.n; t++) {
      const Rec r = load_rec(a.rec + t);
      const bool ids_ok = ids_in_range(a, r);
      const int row1 = ids_ok ? r.w1 - 1 : (int)a.V, row2 = ids_ok ? r.w2 - 1 : (int)a.V;
      const int want1 = seq1[t], want2 = seq2[t];
      prefetch_rows<T, 32>(a, r);  // towards L2 while we wait (L2 is coherent)
      int waited = 1;
      if (lane == 0) waited = wait_for(done1 + row1, want1) && wait_for(done2 + row2, want2);
      waited = __shfl_sync(FULL, waited, 0);
      // A shuffle carries no memory ordering; __syncwarp does: lane 0's acquire of the row
      // counters then orders the other lanes' reads of the rows too.
      __syncwarp();
      __threadfence();
      double cost = 0;
      const int st = update_record<T, 32, E, 1>(a, r, waited != 0, &cost);
      __threadfence();
      __syncwarp();
      if (lane == 0) {
        cuda::atomic_ref<int, cuda::thread_scope_device> f1(done1[row1]), f2(done2[row2]);
        f1.store(want1 + 1, cuda::memory_order_release);
        f2.store(want2 + 1, cuda::memory_order_release);
        if (!waited) atomicAdd(stalls, 1ull);
        cost_out[t] = !waited ? COST_SKIPPED
                      : st == REC_DONE ? cost
                      : st == REC_BAD  ? COST_BAD
                                       : COST_SKIPPED;
      }
    }
  }
}

// Keys of one side for the schedule: the row (0..V-1, V for bad ids) and the index.
// Thread mapping: one thread per record (grid-stride). Shared memory: none.
__global__ void det_keys_kernel(const GRec *rec, int64_t n, int64_t V, int side, unsigned *keys,
                                unsigned *vals) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const Rec r = load_rec(rec + i);
    const bool ok = r.w1 >= 1 && r.w1 <= V && r.w2 >= 1 && r.w2 <= V;
    keys[i] = ok ? (unsigned)((side == 0 ? r.w1 : r.w2) - 1) : (unsigned)V;
    vals[i] = (unsigned)i;
  }
}

// first[row] = the first sorted position of each row present. One thread per sorted
// position (grid-stride); only the first position of a row writes. Shared memory: none.
__global__ void det_first_kernel(const unsigned *skeys, int64_t n, int *first) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < n;
       p += (int64_t)gridDim.x * blockDim.x)
    if (p == 0 || skeys[p] != skeys[p - 1]) first[skeys[p]] = (int)p;
}

// seq[t] = rank of record t among the records of its row (stable sort: record order).
// One thread per sorted position (grid-stride). Shared memory: none.
__global__ void det_seq_kernel(const unsigned *skeys, const unsigned *svals, int64_t n,
                               const int *first, int *seq) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < n;
       p += (int64_t)gridDim.x * blockDim.x) {
    GK_CHECK((int64_t)svals[p] < n);
    seq[svals[p]] = (int)(p - first[skeys[p]]);
  }
}

// Fixed-order partials of the det cost array: block b sums the contiguous slice
// [b * slice, (b + 1) * slice) with a strided loop per thread and block_partials.
__global__ void __launch_bounds__(256) det_cost_kernel(const double *c, int64_t n, int64_t slice,
                                                       double *psum, long long *pskip,
                                                       long long *pbad) {
  const int64_t lo = blockIdx.x * slice, hi = lo + slice < n ? lo + slice : n;
  double s = 0;
  long long sk = 0, bd = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const double v = c[i];
    if (v >= 0)
      s += v;
    else if (v == COST_BAD)
      bd++;
    else
      sk++;
  }
  block_partials(s, sk, bd, psum, pskip, pbad);
}

// The final sum of nb partials by one block of 256 threads in a fixed order (thread t
// takes t, t + 256, ..., then a shared-memory tree). Writes out[0] = cost (as double),
// out[1..2] = skipped, bad.
struct EpochResult {
  double cost;
  long long skipped, bad, stalled;
};

__global__ void __launch_bounds__(256) epoch_finish_kernel(const double *psum,
                                                           const long long *pskip,
                                                           const long long *pbad, int nb,
                                                           const unsigned long long *stalls,
                                                           EpochResult *out) {
  __shared__ double sc[256];
  __shared__ long long ss[256], sb[256];
  double c = 0;
  long long s = 0, b = 0;
  for (int i = threadIdx.x; i < nb; i += 256) c += psum[i], s += pskip[i], b += pbad[i];
  sc[threadIdx.x] = c, ss[threadIdx.x] = s, sb[threadIdx.x] = b;
  __syncthreads();
  for (int h = 128; h > 0; h >>= 1) {
    if ((int)threadIdx.x < h) {
      sc[threadIdx.x] += sc[threadIdx.x + h];
      ss[threadIdx.x] += ss[threadIdx.x + h];
      sb[threadIdx.x] += sb[threadIdx.x + h];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out->cost = sc[0];
    out->skipped = ss[0];
    out->bad = sb[0];
    out->stalled = stalls ? (long long)*stalls : 0;
  }
}

constexpr int EPOCH_MAX_BLOCKS = 4096;
constexpr int EPOCH_THREADS = 256;

template <typename T> EpochArgs<T> epoch_args(const dlk_k_glove_epoch *e) {
  EpochArgs<T> a;
  a.W = static_cast<T *>(e->params);
  a.G = static_cast<T *>(e->gradsq);
  a.V = e->vocab_size;
  a.d = e->dim;
  a.rec = static_cast<const GRec *>(e->records);
  a.n = e->count;
  a.eta = e->eta, a.alpha = e->alpha, a.x_max = e->x_max, a.clip = e->grad_clip;
  a.log_xmax = log(e->x_max);
  a.keras = e->keras;
  return a;
}

// Vector width of the row accesses: 16 bytes when every row start is 16-byte aligned.
int epoch_vw(const dlk_k_glove_epoch *e) {
  const int vw = e->dtype == DLK_F64 ? 2 : 4;
  const int64_t rl = (int64_t)e->dim + 1;
  const bool al = ((uintptr_t)e->params % 16 == 0) && ((uintptr_t)e->gradsq % 16 == 0);
  return (al && rl % vw == 0) ? vw : 1;
}

// Common tail: partials -> result -> host.
int epoch_finish(const double *psum, const long long *pskip, const long long *pbad, int nb,
                 const unsigned long long *stalls, EpochResult *res, void *pinned,
                 dlk_k_glove_epoch_out *out, cudaStream_t st) {
  epoch_finish_kernel<<<1, 256, 0, st>>>(psum, pskip, pbad, nb, stalls, res);
  GK_TRY(cudaGetLastError());
  GK_TRY(cudaMemcpyAsync(pinned, res, sizeof(EpochResult), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  const volatile EpochResult *h = static_cast<const volatile EpochResult *>(pinned);
  out->cost_sum = h->cost;
  out->skipped = h->skipped;
  out->bad_ids = h->bad;
  out->stalled = h->stalled;
  return 0;
}

// ---- warp launch: pick (G, E) from the row length in vectors q = (d + 1) / VW ----------

// In-flight cap of the Hogwild kernel. Every record reads its rows while the records in
// flight beside it are about to change them; with B records in flight the chunk's
// hottest row (a share p_max of its records) has about B p_max of them at any time, all
// computed from the same stale row and summed. A sliding-window model of exactly that
// (each record reads its rows at its turn and adds its change B records later; a small f64
// C program run during development), against the sequential cost of the same records:
//   the issue's corpus (V 87,554, 26.7M records, d 50, x_max 10, p_max 0.0031):
//     B = 16384 (B p_max 51, the whole device): epoch 1 cost 1.76 vs 0.115, diverging;
//     B = 4096 (12.8): +1.0% after epoch 1, +0.05% after 2, equal after 3;
//     B = 1024 (3.2): +0.09% after epoch 1, +0.02% after 2;
//   the tool's golden records (V 1194, p_max 0.0116, d 10): B = 37: +0.2% after epoch 1;
//     B = 256: +2.8% after epoch 1, +0.1% after 15; B = 1024: +17%, +0.7%.
// (Plain stores instead of atomic adds lose steps and converge far slower: +26% after 15
// epochs at B = 256 on the golden set.) So B = min(HOG_HOT / p_max, V / HOG_VOCAB_DIV),
// at least one block, at most what the device holds: 2580 records on the issue's corpus,
// 37 on the golden set. p_max is measured per chunk (a histogram of both ids: one read of
// the records and 2 V counters, ~1% of the epoch's traffic, and one synchronisation).
constexpr double HOG_HOT = 8.0;
constexpr int64_t HOG_VOCAB_DIV = 32;

struct WarpLayout {
  double *psum;
  long long *pskip, *pbad;
  EpochResult *res;
  unsigned long long *cnt;  // 2 V row counters
  unsigned long long *cmax;
};

WarpLayout warp_layout(Carve &c, int64_t V) {
  WarpLayout l;
  l.psum = c.take<double>(EPOCH_MAX_BLOCKS);
  l.pskip = c.take<long long>(EPOCH_MAX_BLOCKS);
  l.pbad = c.take<long long>(EPOCH_MAX_BLOCKS);
  l.res = c.take<EpochResult>(1);
  l.cnt = c.take<unsigned long long>(2 * (size_t)V);
  l.cmax = c.take<unsigned long long>(1);
  return l;
}

// Row histogram of the chunk: word rows at [0, V), context rows at [V, 2V). One thread
// per record (grid-stride), integer atomics. Shared memory: none.
__global__ void hog_hist_kernel(const GRec *rec, int64_t n, int64_t V, unsigned long long *cnt) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const Rec r = load_rec(rec + i);
    if (r.w1 < 1 || r.w1 > V || r.w2 < 1 || r.w2 > V) continue;
    atomicAdd(cnt + (r.w1 - 1), 1ull);
    atomicAdd(cnt + (V + r.w2 - 1), 1ull);
  }
}

// The largest counter: one thread per counter (grid-stride), a warp maximum, then one
// atomicMax per warp (blockDim a multiple of 32). Shared memory: none.
__global__ void hog_max_kernel(const unsigned long long *cnt, int64_t m, unsigned long long *mx) {
  unsigned long long best = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m;
       i += (int64_t)gridDim.x * blockDim.x)
    best = cnt[i] > best ? cnt[i] : best;
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned long long other = __shfl_xor_sync(FULL, best, o);
    best = other > best ? other : best;
  }
  if ((threadIdx.x & 31) == 0) atomicMax(mx, best);
}

// Records the chunk's hottest row holds (0 when no record has valid ids).
int hottest_row(int64_t V, int64_t n, const GRec *rec, const WarpLayout &l, void *pinned,
                unsigned long long *out, cudaStream_t st) {
  GK_TRY(cudaMemsetAsync(l.cnt, 0, 2 * (size_t)V * sizeof(unsigned long long), st));
  GK_TRY(cudaMemsetAsync(l.cmax, 0, sizeof(unsigned long long), st));
  hog_hist_kernel<<<grid_for(n, 256, 4096), 256, 0, st>>>(rec, n, V, l.cnt);
  GK_TRY(cudaGetLastError());
  hog_max_kernel<<<grid_for(2 * V, 256, 1024), 256, 0, st>>>(l.cnt, 2 * V, l.cmax);
  GK_TRY(cudaGetLastError());
  GK_TRY(cudaMemcpyAsync(pinned, l.cmax, sizeof(unsigned long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  *out = *static_cast<const volatile unsigned long long *>(pinned);
  return 0;
}

// Groups in flight for a chunk of n records over V words whose hottest row has hot records.
int64_t hog_groups(int64_t n, int64_t V, unsigned long long hot) {
  double b = (double)V / (double)HOG_VOCAB_DIV;
  if (hot > 0) {
    const double by_hot = HOG_HOT * (double)n / (double)hot;
    if (by_hot < b) b = by_hot;
  }
  return b < 1 ? 1 : (int64_t)b;
}

template <typename T, int G, int E, int VW>
int launch_warp(const EpochArgs<T> &a, const WarpLayout &l, int64_t groups, int *nb,
                cudaStream_t st) {
  auto kern = epoch_warp_kernel<T, G, E, VW>;
  const int sms = sm_count();
  // Blocks of 256 threads, or 64 when the cap leaves fewer blocks than SMs (spread the
  // groups over the SMs rather than fill a few).
  const int threads = (groups * G + 255) / 256 < sms ? 64 : EPOCH_THREADS;
  int occ = 0;
  GK_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, threads, 0));
  const int64_t groups_per_block = threads / G;
  int64_t cap = (int64_t)sms * (occ > 0 ? occ : 1);
  const int64_t by_groups = (groups + groups_per_block - 1) / groups_per_block;
  if (cap > by_groups) cap = by_groups;
  if (cap > EPOCH_MAX_BLOCKS) cap = EPOCH_MAX_BLOCKS;
  const unsigned blocks = grid_for(a.n, (int)groups_per_block, cap);
  kern<<<blocks, threads, 0, st>>>(a, l.psum, l.pskip, l.pbad);
  *nb = (int)blocks;
  return (int)cudaGetLastError();
}

// Scalar accesses (VW = 1): q = d + 1 elements per row. Up to 64 KB of rows in registers
// per block: at most 16 f32 / 8 f64 values of each row per lane; longer rows take the
// three-pass loop.
template <typename T>
int warp_dispatch_scalar(const EpochArgs<T> &a, const WarpLayout &l, int64_t gr, int *nb,
                         cudaStream_t st) {
  const int64_t q = (int64_t)a.d + 1;
  if (q <= 8) return launch_warp<T, 8, 1, 1>(a, l, gr, nb, st);
  if (q <= 16) return launch_warp<T, 8, 2, 1>(a, l, gr, nb, st);
  if (q <= 32) return launch_warp<T, 8, 4, 1>(a, l, gr, nb, st);
  if (q <= 64) return launch_warp<T, 16, 4, 1>(a, l, gr, nb, st);
  if (q <= 128) return launch_warp<T, 32, 4, 1>(a, l, gr, nb, st);
  if (q <= 256) return launch_warp<T, 32, 8, 1>(a, l, gr, nb, st);
  if (sizeof(T) == 4 && q <= 512) return launch_warp<T, 32, sizeof(T) == 4 ? 16 : 8, 1>(a, l, gr, nb, st);
  return launch_warp<T, 32, 0, 1>(a, l, gr, nb, st);
}

// 16-byte vectors (VW = 4 f32 / 2 f64): q = (d + 1) / VW vectors per row, at most 4
// vectors per lane; longer rows go the scalar way.
template <typename T, int VW>
int warp_dispatch_vec(const EpochArgs<T> &a, const WarpLayout &l, int64_t gr, int *nb,
                         cudaStream_t st) {
  const int64_t q = ((int64_t)a.d + 1) / VW;
  if (q <= 8) return launch_warp<T, 8, 1, VW>(a, l, gr, nb, st);
  if (q <= 16) return launch_warp<T, 16, 1, VW>(a, l, gr, nb, st);
  if (q <= 32) return launch_warp<T, 32, 1, VW>(a, l, gr, nb, st);
  if (q <= 64) return launch_warp<T, 32, 2, VW>(a, l, gr, nb, st);
  if (q <= 128) return launch_warp<T, 32, 4, VW>(a, l, gr, nb, st);
  return warp_dispatch_scalar<T>(a, l, gr, nb, st);
}

template <typename T>
int epoch_warp_run(const dlk_k_glove_epoch *e, void *ws, void *pinned, dlk_k_glove_epoch_out *out,
                   cudaStream_t st) {
  Carve c = {static_cast<char *>(ws), 0};
  const WarpLayout l = warp_layout(c, e->vocab_size);
  const EpochArgs<T> a = epoch_args<T>(e);
  unsigned long long hot = 0;
  GK_TRY((cudaError_t)hottest_row(a.V, a.n, a.rec, l, pinned, &hot, st));
  const int64_t groups = hog_groups(a.n, a.V, hot);
  int nb = 0;
  const int vw = epoch_vw(e);
  if (vw == 1)
    GK_TRY((cudaError_t)warp_dispatch_scalar<T>(a, l, groups, &nb, st));
  else
    GK_TRY((cudaError_t)warp_dispatch_vec<T, (int)(16 / sizeof(T))>(a, l, groups, &nb, st));
  return epoch_finish(l.psum, l.pskip, l.pbad, nb, nullptr, l.res, pinned, out, st);
}

// ---- det launch ----

struct DetLayout {
  unsigned *kA, *kB, *vA, *vB;
  int *seq1, *seq2, *first, *done1, *done2;
  double *cost;
  double *psum;
  long long *pskip, *pbad;
  EpochResult *res;
  unsigned long long *ticket, *stalls;
  void *temp;
  size_t temp_bytes;
};

size_t det_sort_temp(int64_t n, int bits) {
  size_t t = 0;
  cub::DoubleBuffer<unsigned> k(nullptr, nullptr), v(nullptr, nullptr);
  if (cub::DeviceRadixSort::SortPairs(nullptr, t, k, v, n, 0, bits) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return t;
}

// Sizes with base == nullptr. temp_bytes 0: cub could not size the sort.
DetLayout det_layout(Carve &c, int64_t n, int64_t V) {
  DetLayout l;
  const size_t nn = (size_t)(n > 0 ? n : 1), nv = (size_t)V + 1;
  l.kA = c.take<unsigned>(nn);
  l.kB = c.take<unsigned>(nn);
  l.vA = c.take<unsigned>(nn);
  l.vB = c.take<unsigned>(nn);
  l.seq1 = c.take<int>(nn);
  l.seq2 = c.take<int>(nn);
  l.first = c.take<int>(nv);
  l.done1 = c.take<int>(nv);
  l.done2 = c.take<int>(nv);
  l.cost = c.take<double>(nn);
  l.psum = c.take<double>(EPOCH_MAX_BLOCKS);
  l.pskip = c.take<long long>(EPOCH_MAX_BLOCKS);
  l.pbad = c.take<long long>(EPOCH_MAX_BLOCKS);
  l.res = c.take<EpochResult>(1);
  l.ticket = c.take<unsigned long long>(2);
  l.stalls = l.ticket ? l.ticket + 1 : nullptr;
  l.temp_bytes = det_sort_temp((int64_t)nn, bit_length((uint64_t)V));
  l.temp = c.take<char>(l.temp_bytes);
  return l;
}

template <typename T, int E>
int launch_det(const EpochArgs<T> &a, const DetLayout &l, cudaStream_t st) {
  auto kern = epoch_det_kernel<T, E>;
  int occ = 0;
  GK_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, EPOCH_THREADS, 0));
  const int64_t warps_needed = (a.n + DET_BATCH - 1) / DET_BATCH;
  const int64_t cap = (int64_t)sm_count() * (occ > 0 ? occ : 1);
  const unsigned blocks = grid_for(warps_needed, EPOCH_THREADS / 32, cap);
  kern<<<blocks, EPOCH_THREADS, 0, st>>>(a, l.seq1, l.seq2, l.done1, l.done2, l.ticket, l.cost,
                                         l.stalls);
  return (int)cudaGetLastError();
}

template <typename T> int det_dispatch(const EpochArgs<T> &a, const DetLayout &l, cudaStream_t st) {
  const int64_t q = (int64_t)a.d + 1;
  if (q <= 32) return launch_det<T, 1>(a, l, st);
  if (q <= 64) return launch_det<T, 2>(a, l, st);
  if (q <= 128) return launch_det<T, 4>(a, l, st);
  if (q <= 256) return launch_det<T, 8>(a, l, st);
  if (sizeof(T) == 4 && q <= 512) return launch_det<T, sizeof(T) == 4 ? 16 : 8>(a, l, st);
  return launch_det<T, 0>(a, l, st);
}

template <typename T>
int epoch_det_run(const dlk_k_glove_epoch *e, void *ws, size_t ws_bytes, void *pinned,
                  dlk_k_glove_epoch_out *out, cudaStream_t st) {
  Carve c = {static_cast<char *>(ws), 0};
  const DetLayout l = det_layout(c, e->count, e->vocab_size);
  if (l.temp_bytes == 0 || c.off > ws_bytes) return (int)cudaErrorInvalidValue;
  const EpochArgs<T> a = epoch_args<T>(e);
  const int64_t n = e->count, V = e->vocab_size;
  const int bits = bit_length((uint64_t)V);
  GK_TRY(cudaMemsetAsync(l.done1, 0, ((size_t)V + 1) * sizeof(int), st));
  GK_TRY(cudaMemsetAsync(l.done2, 0, ((size_t)V + 1) * sizeof(int), st));
  GK_TRY(cudaMemsetAsync(l.ticket, 0, 2 * sizeof(unsigned long long), st));
  const unsigned g = grid_for(n, 256, 8192);
  for (int side = 0; side < 2; side++) {
    det_keys_kernel<<<g, 256, 0, st>>>(a.rec, n, V, side, l.kA, l.vA);
    GK_TRY(cudaGetLastError());
    cub::DoubleBuffer<unsigned> k(l.kA, l.kB), v(l.vA, l.vB);
    size_t tb = l.temp_bytes;
    GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, k, v, n, 0, bits, st));
    det_first_kernel<<<g, 256, 0, st>>>(k.Current(), n, l.first);
    GK_TRY(cudaGetLastError());
    det_seq_kernel<<<g, 256, 0, st>>>(k.Current(), v.Current(), n, l.first,
                                      side == 0 ? l.seq1 : l.seq2);
    GK_TRY(cudaGetLastError());
  }
  GK_TRY((cudaError_t)det_dispatch<T>(a, l, st));
  int64_t nb = (n + 2047) / 2048;
  if (nb > EPOCH_MAX_BLOCKS) nb = EPOCH_MAX_BLOCKS;
  if (nb < 1) nb = 1;
  const int64_t slice = (n + nb - 1) / nb;
  det_cost_kernel<<<(unsigned)nb, 256, 0, st>>>(l.cost, n, slice, l.psum, l.pskip, l.pbad);
  GK_TRY(cudaGetLastError());
  return epoch_finish(l.psum, l.pskip, l.pbad, (int)nb, l.stalls, l.res, pinned, out, st);
}

// ======================================================================================
// glove_cooccur_chunk
// ======================================================================================

// Pair key: w1 in the high bits, w2 in the low `bits` bits (bits = bit length of V), so
// the ascending key order is the (w1, w2) order and the sort needs only 2 * bits bits.

// Thread mapping: one thread per position t (grid-stride). Counts the weights target t
// generates (the CPU reference's loop: k = 1..window while t-k >= 0 and ids[t-k] > 0,
// twice when symmetric) and flags ids outside [0, V] (those also end the window, so the
// kernels never form a key from them). Shared memory: none.
__global__ void cooc_count_kernel(const int *ids, int64_t n, int64_t n_prefix, int64_t V, int W,
                                  int sym, long long *counts, unsigned long long *bad) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int id = ids[t];
    if (id < 0 || id > V) atomicAdd(bad, 1ull);
    if (t < n_prefix) continue;
    long long c = 0;
    if (id >= 1 && id <= V)
      for (int k = 1; k <= W && t - k >= 0; k++) {
        const int p = ids[t - k];
        if (p < 1 || p > V) break;
        c++;
      }
    counts[t - n_prefix] = sym ? 2 * c : c;
  }
}

// misc[0] = total weights generated (offsets are exclusive sums of counts). One thread.
__global__ void cooc_total_kernel(const long long *counts, const long long *offsets, int64_t m,
                                  long long *total) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *total = m > 0 ? offsets[m - 1] + counts[m - 1] : 0;
}

// Thread mapping: one thread per target t (grid-stride); it writes its weights at
// offsets[t - n_prefix] in the CPU reference's generation order (k ascending, the
// left-context record (ids[t-k], ids[t]) before its symmetric twin), so a stable sort
// keeps each pair's weights in the reference's summation order.
__global__ void cooc_gen_kernel(const int *ids, int64_t n, int64_t n_prefix, int sym, int dw,
                                int bits, const long long *counts, const long long *offsets,
                                unsigned long long *keys, double *vals, int64_t P) {
  for (int64_t t = n_prefix + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = t - n_prefix;
    const long long c = sym ? counts[j] / 2 : counts[j];
    long long o = offsets[j];
    const unsigned long long w2 = (unsigned)ids[t];
    for (int k = 1; k <= c; k++) {
      const unsigned long long w1 = (unsigned)ids[t - k];
      const double wt = dw ? 1.0 / (double)k : 1.0;
      GK_CHECK(o + (sym ? 2 : 1) <= P);
      keys[o] = (w1 << bits) | w2;
      vals[o++] = wt;
      if (sym) {
        keys[o] = (w2 << bits) | w1;
        vals[o++] = wt;
      }
    }
  }
}

// Records from ReduceByKey's unique keys and sums: one thread per record (grid-stride),
// the count read from device memory. Shared memory: none.
__global__ void cooc_pack_kernel(const unsigned long long *ukeys, const double *sums,
                                 const long long *nruns, int bits, GRec *out) {
  const int64_t R = *nruns;
  const unsigned long long mask = (1ull << bits) - 1;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R;
       i += (int64_t)gridDim.x * blockDim.x) {
    GRec r;
    r.w1 = (int)(ukeys[i] >> bits);
    r.w2 = (int)(ukeys[i] & mask);
    r.x = sums[i];
    out[i] = r;
  }
}

// Ordered sums. Thread mapping: one thread per sorted position p (grid-stride); the
// thread at the first position of a key sums that key's weights one by one in sorted
// order (= generation order: the sort is stable), which is exactly the CPU reference's
// order and bits, and writes the record at slot p; other slots get w1 = 0 and are
// dropped by the compaction that follows. Long runs (frequent pairs) are summed by one
// thread: fine, they are few.
__global__ void cooc_segsum_kernel(const unsigned long long *keys, const double *vals, int64_t P,
                                   int bits, GRec *out) {
  const unsigned long long mask = (1ull << bits) - 1;
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < P;
       p += (int64_t)gridDim.x * blockDim.x) {
    const unsigned long long k = keys[p];
    if (p > 0 && keys[p - 1] == k) {
      out[p].w1 = 0;
      continue;
    }
    double s = vals[p];
    for (int64_t j = p + 1; j < P && keys[j] == k; j++) s += vals[j];
    GRec r;
    r.w1 = (int)(k >> bits);
    r.w2 = (int)(k & mask);
    r.x = s;
    out[p] = r;
  }
}

struct ValidRec {
  __host__ __device__ bool operator()(const GRec &r) const { return r.w1 > 0; }
};

struct CoocLayout {
  int *ids;
  long long *counts, *offsets;
  unsigned long long *kA, *kB;
  double *xA, *xB;
  long long *misc; // [0] total, [1] runs / selected
  unsigned long long *bad;
  void *temp;
  size_t temp_bytes;
  bool ok;
};

int64_t cooc_pair_bound(const dlk_k_glove_cooc_desc *c) {
  const int64_t m = c->n - c->n_prefix;
  return m > 0 ? m * (int64_t)c->window * (c->symmetric ? 2 : 1) : 0;
}

// cub temp bytes for the three passes over P pairs and m counts (max of them).
size_t cooc_temp(int64_t m, int64_t P, int bits, int ordered, bool *ok) {
  size_t t1 = 0, t2 = 0, t3 = 0;
  *ok = true;
  const int64_t mm = m > 0 ? m : 1, pp = P > 0 ? P : 1;
  if (cub::DeviceScan::ExclusiveSum(nullptr, t1, (const long long *)nullptr, (long long *)nullptr,
                                    mm) != cudaSuccess)
    *ok = false;
  cub::DoubleBuffer<unsigned long long> k(nullptr, nullptr);
  cub::DoubleBuffer<double> v(nullptr, nullptr);
  if (cub::DeviceRadixSort::SortPairs(nullptr, t2, k, v, pp, 0, 2 * bits) != cudaSuccess)
    *ok = false;
  if (ordered) {
    if (cub::DeviceSelect::If(nullptr, t3, (const GRec *)nullptr, (GRec *)nullptr,
                              (long long *)nullptr, pp, ValidRec()) != cudaSuccess)
      *ok = false;
  } else {
    if (cub::DeviceReduce::ReduceByKey(nullptr, t3, (const unsigned long long *)nullptr,
                                       (unsigned long long *)nullptr, (const double *)nullptr,
                                       (double *)nullptr, (long long *)nullptr,
                                       cuda::std::plus<double>(), pp) != cudaSuccess)
      *ok = false;
  }
  if (!*ok) cudaGetLastError();
  size_t t = t1 > t2 ? t1 : t2;
  return t > t3 ? t : t3;
}

// Region A = [kA | xA] and region B = [kB | xB] are each 16 P contiguous bytes, so the
// region the sort left free holds P records for the output.
CoocLayout cooc_layout(Carve &c, const dlk_k_glove_cooc_desc *d) {
  CoocLayout l;
  const int64_t m = d->n - d->n_prefix > 0 ? d->n - d->n_prefix : 0;
  const int64_t P = cooc_pair_bound(d);
  const size_t pp = (size_t)(P > 0 ? P : 1);
  const int bits = bit_length((uint64_t)d->vocab_size);
  l.ids = c.take<int>((size_t)(d->n > 0 ? d->n : 1));
  l.counts = c.take<long long>((size_t)(m > 0 ? m : 1));
  l.offsets = c.take<long long>((size_t)(m > 0 ? m : 1));
  l.kA = c.take<unsigned long long>(pp);
  l.xA = l.kA ? reinterpret_cast<double *>(l.kA + pp) : nullptr;
  c.off += pp * sizeof(double);
  l.kB = c.take<unsigned long long>(pp);
  l.xB = l.kB ? reinterpret_cast<double *>(l.kB + pp) : nullptr;
  c.off += pp * sizeof(double);
  l.misc = c.take<long long>(2);
  l.bad = c.take<unsigned long long>(1);
  l.temp_bytes = cooc_temp(m, P, bits, d->ordered, &l.ok);
  l.temp = c.take<char>(l.temp_bytes);
  return l;
}

int cooc_run(const dlk_k_glove_cooc_desc *d, void *ws, size_t ws_bytes, void *pinned, void *out_host,
             int64_t out_cap, int64_t *out_count, int64_t *bad_ids, cudaStream_t st) {
  Carve c = {static_cast<char *>(ws), 0};
  const CoocLayout l = cooc_layout(c, d);
  if (!l.ok || c.off > ws_bytes) return (int)cudaErrorInvalidValue;
  const int64_t n = d->n, m = n - d->n_prefix, V = d->vocab_size;
  const int bits = bit_length((uint64_t)V);
  const int sym = d->symmetric != 0;
  *out_count = 0;
  *bad_ids = 0;
  if (m <= 0) return 0;
  volatile long long *h = static_cast<volatile long long *>(pinned);
  // 1. ids up, count the weights per target, offsets, the total and the bad ids back.
  GK_TRY(cudaMemcpyAsync(l.ids, d->ids, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, st));
  GK_TRY(cudaMemsetAsync(l.bad, 0, sizeof(unsigned long long), st));
  cooc_count_kernel<<<grid_for(n, 256), 256, 0, st>>>(l.ids, n, d->n_prefix, V, d->window, sym,
                                                      l.counts, l.bad);
  GK_TRY(cudaGetLastError());
  size_t tb = l.temp_bytes;
  GK_TRY(cub::DeviceScan::ExclusiveSum(l.temp, tb, l.counts, l.offsets, m, st));
  cooc_total_kernel<<<1, 32, 0, st>>>(l.counts, l.offsets, m, l.misc);
  GK_TRY(cudaGetLastError());
  GK_TRY(cudaMemcpyAsync((void *)h, l.misc, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaMemcpyAsync((void *)(h + 1), l.bad, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  const int64_t P = h[0];
  if (h[1] != 0) {
    *bad_ids = h[1];
    return 0;
  }
  if (P < 0 || P > cooc_pair_bound(d)) return (int)cudaErrorInvalidValue;
  if (P == 0) return 0;
  // 2. generate, 3. stable sort by key over 2 * bits bits.
  cooc_gen_kernel<<<grid_for(m, 256), 256, 0, st>>>(l.ids, n, d->n_prefix, sym,
                                                    d->distance_weighting, bits, l.counts,
                                                    l.offsets, l.kA, l.xA, P);
  GK_TRY(cudaGetLastError());
  cub::DoubleBuffer<unsigned long long> keys(l.kA, l.kB);
  cub::DoubleBuffer<double> vals(l.xA, l.xB);
  tb = l.temp_bytes;
  GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, keys, vals, P, 0, 2 * bits, st));
  // Keys and values flip together (same passes); the record views below rely on it.
  if (keys.selector != vals.selector) return (int)cudaErrorInvalidValue;
  const unsigned long long *ks = keys.Current();
  const double *xs = vals.Current();
  unsigned long long *ko = keys.Alternate();
  double *xo = vals.Alternate();
  GRec *recS = reinterpret_cast<GRec *>(keys.Current());  // region of the sorted data
  GRec *recO = reinterpret_cast<GRec *>(ko);              // the other region
  // 4. sums per key, as records in region S.
  tb = l.temp_bytes;
  if (d->ordered) {
    cooc_segsum_kernel<<<grid_for(P, 256), 256, 0, st>>>(ks, xs, P, bits, recO);
    GK_TRY(cudaGetLastError());
    GK_TRY(cub::DeviceSelect::If(l.temp, tb, recO, recS, l.misc + 1, P, ValidRec(), st));
  } else {
    GK_TRY(cub::DeviceReduce::ReduceByKey(l.temp, tb, ks, ko, xs, xo, l.misc + 1,
                                          cuda::std::plus<double>(), P, st));
    cooc_pack_kernel<<<grid_for(P, 256), 256, 0, st>>>(ko, xo, l.misc + 1, bits, recS);
    GK_TRY(cudaGetLastError());
  }
  GK_TRY(cudaMemcpyAsync((void *)h, l.misc + 1, sizeof(long long), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  const int64_t R = h[0];
  *out_count = R;
  if (R < 0 || R > out_cap) return 0;  // the caller sees out_count > out_cap
  GK_TRY(cudaMemcpyAsync(out_host, recS, (size_t)R * sizeof(GRec), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaStreamSynchronize(st));
  return 0;
}

// ======================================================================================
// glove_topk
// ======================================================================================

// The order of the CPU reference: higher score first, the lower row on a tie; an empty
// slot (row -1) is worse than any candidate (a -inf score included). NaN never enters.
__device__ __forceinline__ bool better(double v, int r, double bv, int br) {
  return br < 0 || v > bv || (v == bv && r < br);
}

__device__ __forceinline__ bool excluded(const int *ex, int nex, int64_t q, int r) {
  for (int e = 0; e < nex; e++)
    if (ex[q * nex + e] == r) return true;
  return false;
}

// Insert (v, r) into the sorted list (best first) of K entries, if it beats the last.
template <int K> __device__ __forceinline__ void list_insert(double *val, int *idx, double v, int r) {
  val[K - 1] = v;
  idx[K - 1] = r;
#pragma unroll
  for (int i = K - 1; i > 0; i--) {
    if (better(val[i], idx[i], val[i - 1], idx[i - 1])) {
      const double tv = val[i];
      const int ti = idx[i];
      val[i] = val[i - 1], idx[i] = idx[i - 1];
      val[i - 1] = tv, idx[i - 1] = ti;
    }
  }
}

template <typename S> __device__ __forceinline__ double load_score(const S *p) {
  return (double)__ldg(p);
}

// Variant 1 `lanes`, pass 1.
// Thread mapping: block (x, y) of 128 threads = 4 warps; lane l of every warp owns column
// q = 32 x + l (coalesced row reads); warp w of block row y walks the rows
// r = 4 y + w, + 4 gridDim.y, ... keeping a sorted list of the K best (K = k rounded up to
// a power of two) in registers; at the end it writes its list as partial (4 y + w) of
// column q. Shared memory: none. The exclusion list is consulted only for a candidate
// that would enter the list.
template <typename S, int K>
__global__ void __launch_bounds__(128) topk_lanes_kernel(const S *scores, int64_t rows,
                                                         int64_t cols, const int *ex, int nex,
                                                         double *pval, int *pidx) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t q = (int64_t)blockIdx.x * 32 + lane;
  const int64_t walker = (int64_t)blockIdx.y * 4 + w, nwalk = (int64_t)gridDim.y * 4;
  if (q >= cols) return;
  double val[K];
  int idx[K];
#pragma unroll
  for (int i = 0; i < K; i++) val[i] = -INFINITY, idx[i] = -1;
  for (int64_t r = walker; r < rows; r += nwalk) {
    const double v = load_score(scores + r * cols + q);
    if (v != v) continue;
    if (!better(v, (int)r, val[K - 1], idx[K - 1])) continue;
    if (excluded(ex, nex, q, (int)r)) continue;
    list_insert<K>(val, idx, v, (int)r);
  }
  const int64_t base = (walker * cols + q) * K;
#pragma unroll
  for (int i = 0; i < K; i++) pval[base + i] = val[i], pidx[base + i] = idx[i];
}

// Pass 2: one thread per column merges the nparts sorted partial lists (each list is
// sorted, so a list is left at its first entry that cannot enter) and writes the first
// k entries.
template <int K>
__global__ void topk_merge_kernel(const double *pval, const int *pidx, int64_t nparts,
                                  int64_t cols, int k, double *oval, int *oidx) {
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < cols;
       q += (int64_t)gridDim.x * blockDim.x) {
    double val[K];
    int idx[K];
#pragma unroll
    for (int i = 0; i < K; i++) val[i] = -INFINITY, idx[i] = -1;
    for (int64_t p = 0; p < nparts; p++) {
      const int64_t base = (p * cols + q) * K;
      for (int i = 0; i < K; i++) {
        const int r = pidx[base + i];
        const double v = pval[base + i];
        if (r < 0 || !better(v, r, val[K - 1], idx[K - 1])) break;
        list_insert<K>(val, idx, v, r);
      }
    }
#pragma unroll
    for (int i = 0; i < K; i++)
      if (i < k) oval[q * k + i] = val[i], oidx[q * k + i] = idx[i];
  }
}

struct TopkLanesLayout {
  int *ex;
  double *pval, *oval;
  int *pidx, *oidx;
};

int topk_K(int k) {
  int K = 1;
  while (K < k) K <<= 1;
  return K;
}

// Row slices: enough blocks to fill the device, at most 2048 / K slices of 4 walkers
// (bounds the merge), at least 256 rows per walker where possible.
int64_t topk_slices(int64_t rows, int K) {
  int64_t s = rows / 1024;
  const int64_t cap = 2048 / K;
  if (s > cap) s = cap;
  return s < 1 ? 1 : s;
}

TopkLanesLayout topk_lanes_layout(Carve &c, const dlk_k_glove_topk *t) {
  TopkLanesLayout l;
  const int K = topk_K(t->k);
  const int64_t parts = topk_slices(t->rows, K) * 4;
  const size_t cols = (size_t)(t->cols > 0 ? t->cols : 1);
  l.ex = c.take<int>(cols * (size_t)(t->n_exclude > 0 ? t->n_exclude : 1));
  l.pval = c.take<double>((size_t)parts * cols * K);
  l.pidx = c.take<int>((size_t)parts * cols * K);
  l.oval = c.take<double>(cols * (size_t)t->k);
  l.oidx = c.take<int>(cols * (size_t)t->k);
  return l;
}

template <typename S, int K>
int topk_lanes_launch(const dlk_k_glove_topk *t, const TopkLanesLayout &l, cudaStream_t st) {
  const int64_t slices = topk_slices(t->rows, K);
  dim3 grid((unsigned)((t->cols + 31) / 32), (unsigned)slices);
  topk_lanes_kernel<S, K><<<grid, 128, 0, st>>>(static_cast<const S *>(t->scores), t->rows,
                                                t->cols, l.ex, t->n_exclude, l.pval, l.pidx);
  GK_TRY(cudaGetLastError());
  topk_merge_kernel<K><<<grid_for(t->cols, 128), 128, 0, st>>>(l.pval, l.pidx, slices * 4,
                                                               t->cols, t->k, l.oval, l.oidx);
  return (int)cudaGetLastError();
}

template <typename S>
int topk_lanes_dispatch(const dlk_k_glove_topk *t, const TopkLanesLayout &l, cudaStream_t st) {
  switch (topk_K(t->k)) {
    case 1: return topk_lanes_launch<S, 1>(t, l, st);
    case 2: return topk_lanes_launch<S, 2>(t, l, st);
    case 4: return topk_lanes_launch<S, 4>(t, l, st);
    case 8: return topk_lanes_launch<S, 8>(t, l, st);
    case 16: return topk_lanes_launch<S, 16>(t, l, st);
    case 32: return topk_lanes_launch<S, 32>(t, l, st);
    default: return (int)cudaErrorInvalidValue;
  }
}

// Results back: (cols * k) ids and values.
int topk_copy_out(const dlk_k_glove_topk *t, const int *oidx, const double *oval,
                  int32_t *idx_host, double *val_host, cudaStream_t st) {
  const size_t n = (size_t)t->cols * (size_t)t->k;
  GK_TRY(cudaMemcpyAsync(idx_host, oidx, n * sizeof(int), cudaMemcpyDeviceToHost, st));
  GK_TRY(cudaMemcpyAsync(val_host, oval, n * sizeof(double), cudaMemcpyDeviceToHost, st));
  return (int)cudaStreamSynchronize(st);
}

int topk_upload_exclude(const dlk_k_glove_topk *t, int *ex, cudaStream_t st) {
  if (t->n_exclude <= 0) return 0;
  const size_t n = (size_t)t->cols * (size_t)t->n_exclude;
  return (int)cudaMemcpyAsync(ex, t->exclude, n * sizeof(int), cudaMemcpyHostToDevice, st);
}

// ---- variant 2 `sort` ----
// Keys: an order-preserving map of the f64 score to u64 (sign bit flipped for
// positives, every bit for negatives; -0 counts as +0 like the reference's compare),
// NaN and excluded rows 0 (below every score, -inf included). Values: the index
// i = q * rows + r of the transposed matrix. A stable descending sort orders each score
// class by i, i.e. lower row first on ties; a second stable sort by column then groups
// the columns without changing that order.

__device__ __forceinline__ unsigned long long score_key(double v) {
  if (v != v) return 0ull;
  if (v == 0.0) v = 0.0;  // -0 == +0
  const unsigned long long b = (unsigned long long)__double_as_longlong(v);
  return (b >> 63) ? ~b : (b | (1ull << 63));
}

__device__ __forceinline__ double key_score(unsigned long long k) {
  const unsigned long long b = (k >> 63) ? (k & ~(1ull << 63)) : ~k;
  return __longlong_as_double((long long)b);
}

// Thread mapping: one thread per score in row-major order (coalesced reads), written
// to its transposed position q * rows + r.
template <typename S>
__global__ void topk_keys_kernel(const S *scores, int64_t rows, int64_t cols,
                                 unsigned long long *keys, int *vals) {
  const int64_t N = rows * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, q = i - r * cols;
    const int64_t pos = q * rows + r;
    keys[pos] = score_key(load_score(scores + i));
    vals[pos] = (int)pos;
  }
}

// Excluded rows get key 0: one thread per (column, exclusion) entry (grid-stride); -1
// and ids outside [0, rows) change nothing. Shared memory: none.
__global__ void topk_exclude_kernel(const int *ex, int nex, int64_t rows, int64_t cols,
                                    unsigned long long *keys) {
  const int64_t N = cols * nex;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = i / nex;
    const int r = ex[i];
    if (r >= 0 && r < rows) keys[q * rows + r] = 0ull;
  }
}

// Second-sort keys: the column of each first-sorted entry and its position. One thread
// per entry (grid-stride). Shared memory: none.
__global__ void topk_segkeys_kernel(const int *svals, int64_t N, int64_t rows, unsigned *seg,
                                    int *pos) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < N;
       p += (int64_t)gridDim.x * blockDim.x) {
    seg[p] = (unsigned)(svals[p] / rows);
    pos[p] = (int)p;
  }
}

// The first k entries of each column: one thread per output slot (q, j < k), grid-stride;
// key 0 (NaN, excluded) and j >= rows give the empty slot (-1, -inf). Shared memory: none.
__global__ void topk_sort_out_kernel(const unsigned long long *skeys, const int *svals,
                                     const int *spos, int64_t rows, int64_t cols, int k,
                                     double *oval, int *oidx) {
  const int64_t N = cols * k;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t q = i / k, j = i - q * k;
    double v = -INFINITY;
    int r = -1;
    if (j < rows) {
      const int64_t p = spos ? spos[q * rows + j] : j;
      const unsigned long long key = skeys[p];
      if (key != 0ull) {
        v = key_score(key);
        r = (int)(svals[p] - (svals[p] / rows) * rows);
      }
    }
    oval[i] = v;
    oidx[i] = r;
  }
}

struct TopkSortLayout {
  unsigned long long *kA, *kB;
  int *vA, *vB;
  unsigned *sA, *sB;
  int *pA, *pB;
  int *ex;
  double *oval;
  int *oidx;
  void *temp;
  size_t temp_bytes;
  bool ok;
};

TopkSortLayout topk_sort_layout(Carve &c, const dlk_k_glove_topk *t) {
  TopkSortLayout l;
  const int64_t N = t->rows * t->cols;
  const size_t nn = (size_t)(N > 0 ? N : 1), cols = (size_t)(t->cols > 0 ? t->cols : 1);
  const bool two = t->cols > 1;
  l.kA = c.take<unsigned long long>(nn);
  l.kB = c.take<unsigned long long>(nn);
  l.vA = c.take<int>(nn);
  l.vB = c.take<int>(nn);
  l.sA = c.take<unsigned>(two ? nn : 1);
  l.sB = c.take<unsigned>(two ? nn : 1);
  l.pA = c.take<int>(two ? nn : 1);
  l.pB = c.take<int>(two ? nn : 1);
  l.ex = c.take<int>(cols * (size_t)(t->n_exclude > 0 ? t->n_exclude : 1));
  l.oval = c.take<double>(cols * (size_t)t->k);
  l.oidx = c.take<int>(cols * (size_t)t->k);
  size_t t1 = 0, t2 = 0;
  l.ok = true;
  {
    cub::DoubleBuffer<unsigned long long> k(nullptr, nullptr);
    cub::DoubleBuffer<int> v(nullptr, nullptr);
    if (cub::DeviceRadixSort::SortPairsDescending(nullptr, t1, k, v, (int64_t)nn) != cudaSuccess)
      l.ok = false;
  }
  if (two) {
    cub::DoubleBuffer<unsigned> k(nullptr, nullptr);
    cub::DoubleBuffer<int> v(nullptr, nullptr);
    if (cub::DeviceRadixSort::SortPairs(nullptr, t2, k, v, (int64_t)nn, 0,
                                        bit_length((uint64_t)t->cols)) != cudaSuccess)
      l.ok = false;
  }
  if (!l.ok) cudaGetLastError();
  l.temp_bytes = t1 > t2 ? t1 : t2;
  l.temp = c.take<char>(l.temp_bytes);
  return l;
}

template <typename S>
int topk_sort_run(const dlk_k_glove_topk *t, const TopkSortLayout &l, cudaStream_t st) {
  const int64_t rows = t->rows, cols = t->cols, N = rows * cols;
  topk_keys_kernel<S><<<grid_for(N, 256), 256, 0, st>>>(static_cast<const S *>(t->scores), rows,
                                                        cols, l.kA, l.vA);
  GK_TRY(cudaGetLastError());
  if (t->n_exclude > 0) {
    topk_exclude_kernel<<<grid_for(cols * t->n_exclude, 256), 256, 0, st>>>(
        l.ex, t->n_exclude, rows, cols, l.kA);
    GK_TRY(cudaGetLastError());
  }
  cub::DoubleBuffer<unsigned long long> keys(l.kA, l.kB);
  cub::DoubleBuffer<int> vals(l.vA, l.vB);
  size_t tb = l.temp_bytes;
  GK_TRY(cub::DeviceRadixSort::SortPairsDescending(l.temp, tb, keys, vals, N, 0, 64, st));
  const int *spos = nullptr;
  if (cols > 1) {
    topk_segkeys_kernel<<<grid_for(N, 256), 256, 0, st>>>(vals.Current(), N, rows, l.sA, l.pA);
    GK_TRY(cudaGetLastError());
    cub::DoubleBuffer<unsigned> sk(l.sA, l.sB);
    cub::DoubleBuffer<int> sp(l.pA, l.pB);
    tb = l.temp_bytes;
    GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, sk, sp, N, 0,
                                           bit_length((uint64_t)cols), st));
    spos = sp.Current();
  }
  topk_sort_out_kernel<<<grid_for(cols * t->k, 256), 256, 0, st>>>(
      keys.Current(), vals.Current(), spos, rows, cols, t->k, l.oval, l.oidx);
  return (int)cudaGetLastError();
}

}  // namespace

// ======================================================================================
// launchers
// ======================================================================================

extern "C" size_t dlk_k_glove_epoch_warp_ws(const dlk_k_glove_epoch *e) {
  Carve c = {nullptr, 0};
  warp_layout(c, e->vocab_size);
  return c.off + 256;
}

extern "C" int dlk_k_glove_epoch_warp(const dlk_k_glove_epoch *e, void *ws, size_t ws_bytes,
                                      void *pinned, dlk_k_glove_epoch_out *out, void *stream) {
  if (ws_bytes < dlk_k_glove_epoch_warp_ws(e)) return (int)cudaErrorInvalidValue;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (e->dtype == DLK_F64) return epoch_warp_run<double>(e, ws, pinned, out, st);
  if (e->dtype == DLK_F32) return epoch_warp_run<float>(e, ws, pinned, out, st);
  return (int)cudaErrorInvalidValue;
}

extern "C" size_t dlk_k_glove_epoch_det_ws(const dlk_k_glove_epoch *e) {
  Carve c = {nullptr, 0};
  const DetLayout l = det_layout(c, e->count, e->vocab_size);
  return l.temp_bytes == 0 ? 0 : c.off + 256;
}

extern "C" int dlk_k_glove_epoch_det(const dlk_k_glove_epoch *e, void *ws, size_t ws_bytes,
                                     void *pinned, dlk_k_glove_epoch_out *out, void *stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (e->count <= 0 || e->count >= INT32_MAX || e->vocab_size >= INT32_MAX)
    return (int)cudaErrorInvalidValue;
  if (e->dtype == DLK_F64) return epoch_det_run<double>(e, ws, ws_bytes, pinned, out, st);
  if (e->dtype == DLK_F32) return epoch_det_run<float>(e, ws, ws_bytes, pinned, out, st);
  return (int)cudaErrorInvalidValue;
}

extern "C" size_t dlk_k_glove_cooc_ws(const dlk_k_glove_cooc_desc *c) {
  Carve cv = {nullptr, 0};
  const CoocLayout l = cooc_layout(cv, c);
  return l.ok ? cv.off + 256 : 0;
}

extern "C" int dlk_k_glove_cooc_count(const dlk_k_glove_cooc_desc *c, void *ws, size_t ws_bytes,
                                void *pinned, void *out_host, int64_t out_cap, int64_t *out_count,
                                int64_t *bad_ids, void *stream) {
  return cooc_run(c, ws, ws_bytes, pinned, out_host, out_cap, out_count, bad_ids,
                  static_cast<cudaStream_t>(stream));
}

extern "C" size_t dlk_k_glove_topk_lanes_ws(const dlk_k_glove_topk *t) {
  Carve c = {nullptr, 0};
  topk_lanes_layout(c, t);
  return c.off + 256;
}

extern "C" int dlk_k_glove_topk_lanes(const dlk_k_glove_topk *t, void *ws, size_t ws_bytes,
                                      int32_t *idx_host, double *val_host, void *stream) {
  if (t->k < 1 || t->k > DLK_K_GLOVE_TOPK_LANES_MAX_K || t->rows < 1 || t->cols < 1 ||
      ws_bytes < dlk_k_glove_topk_lanes_ws(t))
    return (int)cudaErrorInvalidValue;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  Carve c = {static_cast<char *>(ws), 0};
  const TopkLanesLayout l = topk_lanes_layout(c, t);
  GK_TRY((cudaError_t)topk_upload_exclude(t, l.ex, st));
  if (t->dtype == DLK_F64)
    GK_TRY((cudaError_t)topk_lanes_dispatch<double>(t, l, st));
  else if (t->dtype == DLK_F32)
    GK_TRY((cudaError_t)topk_lanes_dispatch<float>(t, l, st));
  else
    return (int)cudaErrorInvalidValue;
  return topk_copy_out(t, l.oidx, l.oval, idx_host, val_host, st);
}

extern "C" size_t dlk_k_glove_topk_sort_ws(const dlk_k_glove_topk *t) {
  Carve c = {nullptr, 0};
  const TopkSortLayout l = topk_sort_layout(c, t);
  return l.ok ? c.off + 256 : 0;
}

extern "C" int dlk_k_glove_topk_sort(const dlk_k_glove_topk *t, void *ws, size_t ws_bytes,
                                     int32_t *idx_host, double *val_host, void *stream) {
  if (t->k < 1 || t->rows < 1 || t->cols < 1 || t->rows * t->cols >= INT32_MAX)
    return (int)cudaErrorInvalidValue;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  Carve c = {static_cast<char *>(ws), 0};
  const TopkSortLayout l = topk_sort_layout(c, t);
  if (!l.ok || c.off > ws_bytes) return (int)cudaErrorInvalidValue;
  GK_TRY((cudaError_t)topk_upload_exclude(t, l.ex, st));
  if (t->dtype == DLK_F64)
    GK_TRY((cudaError_t)topk_sort_run<double>(t, l, st));
  else if (t->dtype == DLK_F32)
    GK_TRY((cudaError_t)topk_sort_run<float>(t, l, st));
  else
    return (int)cudaErrorInvalidValue;
  return topk_copy_out(t, l.oidx, l.oval, idx_host, val_host, st);
}
