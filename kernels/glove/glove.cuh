// Helpers shared by the glove family's kernels (kernels/glove/epoch.cu, cooccur.cu,
// topk.cu): the record layout, workspace carving, grid sizing, group sums and the math
// wrappers.
//
// Numerics: the per-record scalars (log X, the weight (X/x_max)^alpha, diff, fdiff, the
// cost) are f64 for both model dtypes; the per-component AdaGrad arithmetic runs in the
// model's dtype (f32 for F32 models, f64 for F64 ones); dot products accumulate in the
// model's dtype. Cost sums are f64 and reduced in a fixed order (per-block partials, then
// one block), never with float atomics.
#ifndef DLK_GLOVE_CUH
#define DLK_GLOVE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "../common.cuh"
#include "dlk.h"
#include "glove.h"

// Bounds checks for a debugging build (-DDLK_DEBUG_KERNELS): a violated index invariant
// traps, so compute-sanitizer or the next CUDA call names the kernel at fault.
#ifdef DLK_DEBUG_KERNELS
#define GK_CHECK(cond) \
  do {                 \
    if (!(cond)) __trap(); \
  } while (0)
#else
#define GK_CHECK(cond)  \
  do {                  \
    (void)sizeof(cond); \
  } while (0)
#endif

#define GK_TRY(...)                   \
  do {                                \
    cudaError_t gk_e_ = (__VA_ARGS__); \
    if (gk_e_ != cudaSuccess) return (int)gk_e_; \
  } while (0)

namespace dlk_glove {

constexpr unsigned FULL = 0xffffffffu;

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

inline int sm_count() {
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 1;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 1;
  return n > 0 ? n : 1;
}

inline unsigned grid_for(int64_t n, int threads, int64_t cap = 1 << 20) {
  int64_t b = (n + threads - 1) / threads;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

// Bit length of v >= 0 (0 for 0).
inline int bit_length(uint64_t v) {
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

}  // namespace dlk_glove

#endif  // DLK_GLOVE_CUH
