// glove family, glove_epoch: one chunk of AdaGrad updates. impl 1 `warp` (lock-free
// Hogwild), impl 2 `det` (each row sees its updates in record order). Launcher in
// kernels/glove/glove.h, right under the kernels; rows in host/glove/glove_cuda.c, the
// CPU reference (the spec) in host/glove/glove_cpu.c.
#include <cuda/atomic>
#include <cuda/std/functional>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include "glove.cuh"

using namespace dlk_glove;

namespace {


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
#if !defined(DLK_CUDA_EMU)  // a hint only; the emulated device has no L2 to warm
    if (at < (uintptr_t)(row + rl)) asm volatile("prefetch.global.L2 [%0];" ::"l"(at));
#else
    (void)at;
#endif
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
// Grid: at most EPOCH_MAX_BLOCKS blocks (one partial each). In flight: at most `cap`
// groups (hog_groups), also when that is fewer than one block holds: groups past the cap
// are bystanders in their warp's shuffles and whole warps past it skip the loop, so the
// active groups take records i = g, g + active, ... (active = min(cap, groups launched)).
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
    epoch_warp_kernel(EpochArgs<T> a, int64_t cap, double *psum, long long *pskip, long long *pbad) {
  constexpr int GPW = 32 / G;
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  const int gw = (threadIdx.x & 31) / G;
  const int64_t launched = nwarps * GPW, stride = cap < launched ? cap : launched;
  const bool active = warp * GPW + gw < stride;
  double cost = 0;
  long long skip = 0, bad = 0;
  Rec r = {0, 0, 1.0};
  if (active && warp * GPW + gw < a.n) r = load_rec(a.rec + warp * GPW + gw);
  for (int64_t base = warp * GPW; base < a.n && warp * GPW < stride; base += stride) {
    const int64_t i = base + gw;
    const bool has = active && i < a.n;
    // Software pipeline: the next record now, and its rows towards L2, so that their
    // latency overlaps this record's work.
    Rec next = {0, 0, 1.0};
    if (active && i + stride < a.n) {
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
#if !defined(DLK_CUDA_EMU)
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#else
  return dlk_emu::globaltimer_ns();  // the emulated device's clock (CLOCK_MONOTONIC)
#endif
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

template <typename T> EpochArgs<T> epoch_args(const dlk_k_glove_epoch_desc *e) {
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
int epoch_vw(const dlk_k_glove_epoch_desc *e) {
  const int vw = e->dtype == DLK_F64 ? 2 : 4;
  const int64_t rl = (int64_t)e->dim + 1;
  const bool al = ((uintptr_t)e->params % 16 == 0) && ((uintptr_t)e->gradsq % 16 == 0);
  return (al && rl % vw == 0) ? vw : 1;
}

// Common tail: partials -> result -> host.
int epoch_finish(const double *psum, const long long *pskip, const long long *pbad, int nb,
                 const unsigned long long *stalls, EpochResult *res, void *pinned,
                 dlk_k_glove_epoch_out *out, cudaStream_t st) {
  DLK_LAUNCH(epoch_finish_kernel, 1, 256, 0, st)(psum, pskip, pbad, nb, stalls, res);
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
  DLK_LAUNCH(hog_hist_kernel, grid_for(n, 256, 4096), 256, 0, st)(rec, n, V, l.cnt);
  GK_TRY(cudaGetLastError());
  DLK_LAUNCH(hog_max_kernel, grid_for(2 * V, 256, 1024), 256, 0, st)(l.cnt, 2 * V, l.cmax);
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
  DLK_LAUNCH(epoch_warp_kernel<T, G, E, VW>, blocks, threads, 0, st)(a, groups, l.psum, l.pskip, l.pbad);
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
int epoch_warp_run(const dlk_k_glove_epoch_desc *e, void *ws, void *pinned, dlk_k_glove_epoch_out *out,
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
  DLK_LAUNCH(epoch_det_kernel<T, E>, blocks, EPOCH_THREADS, 0, st)(a, l.seq1, l.seq2, l.done1, l.done2,
                                                                   l.ticket, l.cost, l.stalls);
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
int epoch_det_run(const dlk_k_glove_epoch_desc *e, void *ws, size_t ws_bytes, void *pinned,
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
    DLK_LAUNCH(det_keys_kernel, g, 256, 0, st)(a.rec, n, V, side, l.kA, l.vA);
    GK_TRY(cudaGetLastError());
    cub::DoubleBuffer<unsigned> k(l.kA, l.kB), v(l.vA, l.vB);
    size_t tb = l.temp_bytes;
    GK_TRY(cub::DeviceRadixSort::SortPairs(l.temp, tb, k, v, n, 0, bits, st));
    DLK_LAUNCH(det_first_kernel, g, 256, 0, st)(k.Current(), n, l.first);
    GK_TRY(cudaGetLastError());
    DLK_LAUNCH(det_seq_kernel, g, 256, 0, st)(k.Current(), v.Current(), n, l.first,
                                      side == 0 ? l.seq1 : l.seq2);
    GK_TRY(cudaGetLastError());
  }
  GK_TRY((cudaError_t)det_dispatch<T>(a, l, st));
  int64_t nb = (n + 2047) / 2048;
  if (nb > EPOCH_MAX_BLOCKS) nb = EPOCH_MAX_BLOCKS;
  if (nb < 1) nb = 1;
  const int64_t slice = (n + nb - 1) / nb;
  DLK_LAUNCH(det_cost_kernel, (unsigned)nb, 256, 0, st)(l.cost, n, slice, l.psum, l.pskip, l.pbad);
  GK_TRY(cudaGetLastError());
  return epoch_finish(l.psum, l.pskip, l.pbad, (int)nb, l.stalls, l.res, pinned, out, st);
}

}  // namespace

extern "C" size_t dlk_k_glove_epoch_ws(const dlk_k_glove_epoch_desc *e, int impl) {
  Carve c = {nullptr, 0};
  if (impl == 1) {
    warp_layout(c, e->vocab_size);
    return c.off + 256;
  }
  if (impl == 2) {
    const DetLayout l = det_layout(c, e->count, e->vocab_size);
    return l.temp_bytes == 0 ? 0 : c.off + 256;
  }
  return 0;
}

extern "C" int dlk_k_glove_epoch(const dlk_k_glove_epoch_desc *e, int impl, void *ws, void *stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (impl == 1) {
    if (e->dtype == DLK_F64) return epoch_warp_run<double>(e, ws, e->pinned, e->out, st);
    if (e->dtype == DLK_F32) return epoch_warp_run<float>(e, ws, e->pinned, e->out, st);
    return (int)cudaErrorInvalidValue;
  }
  if (impl != 2 || e->count <= 0 || e->count >= INT32_MAX || e->vocab_size >= INT32_MAX)
    return (int)cudaErrorInvalidValue;
  const size_t ws_bytes = dlk_k_glove_epoch_ws(e, 2);
  if (e->dtype == DLK_F64) return epoch_det_run<double>(e, ws, ws_bytes, e->pinned, e->out, st);
  if (e->dtype == DLK_F32) return epoch_det_run<float>(e, ws, ws_bytes, e->pinned, e->out, st);
  return (int)cudaErrorInvalidValue;
}
