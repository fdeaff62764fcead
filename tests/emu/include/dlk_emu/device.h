// dlk's emulated CUDA device, the device side (C++17): what a kernel in kernels/ sees when
// it is compiled by the host C++ compiler with DLK_CUDA_EMU defined. Each CUDA thread is a
// fiber; a block's fibers run on one OS thread, one block at a time (tests/emu/runtime.cpp).
//   - __global__/__device__/__host__ are plain C++; __shared__ is thread_local (a block
//     never leaves its OS thread, so a thread_local of the OS thread is the block's);
//     dynamic shared memory comes through DLK_DYNAMIC_SHARED (emu_launch.h).
//   - threadIdx, blockIdx, blockDim, gridDim are the running fiber's.
//   - barriers, warp collectives and __nanosleep switch fibers; they also carry the bug
//     finders (divergent barriers, warp masks naming exited or absent lanes).
//   - atomics are real atomics across OS threads (GCC __atomic builtins).
// Inline PTX cannot be emulated: kernels guard it with #ifndef DLK_CUDA_EMU.
#ifndef DLK_EMU_DEVICE_H
#define DLK_EMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#ifndef DLK_CUDA_EMU
#define DLK_CUDA_EMU 1
#endif

// ---- keywords ------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
#define __managed__
// thread_local at block scope implies static: one instance per OS thread, which is the
// block running on it. Contents are unspecified at block start, as on a GPU.
#define __shared__ thread_local

// Functions the racecheck instrumentation must not see as plain accesses (atomics).
#if defined(DLK_EMU_RACECHECK_BUILD)
#define DLK_EMU_ATOMIC_FN inline __attribute__((no_sanitize("kernel-address")))
#else
#define DLK_EMU_ATOMIC_FN inline __attribute__((always_inline))
#endif

// ---- vector types ----------------------------------------------------------------------
#define DLK_EMU_VEC2(T, N, A)                                   \
  struct __attribute__((aligned(A))) N##2 { T x, y; };          \
  inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }
#define DLK_EMU_VEC3(T, N)                                      \
  struct N##3 { T x, y, z; };                                   \
  inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }
#define DLK_EMU_VEC4(T, N, A)                                   \
  struct __attribute__((aligned(A))) N##4 { T x, y, z, w; };    \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
DLK_EMU_VEC2(char, char, 2)
DLK_EMU_VEC4(char, char, 4)
DLK_EMU_VEC2(unsigned char, uchar, 2)
DLK_EMU_VEC4(unsigned char, uchar, 4)
DLK_EMU_VEC2(short, short, 4)
DLK_EMU_VEC4(short, short, 8)
DLK_EMU_VEC2(unsigned short, ushort, 4)
DLK_EMU_VEC4(unsigned short, ushort, 8)
DLK_EMU_VEC2(int, int, 8)
DLK_EMU_VEC3(int, int)
DLK_EMU_VEC4(int, int, 16)
DLK_EMU_VEC2(unsigned, uint, 8)
DLK_EMU_VEC3(unsigned, uint)
DLK_EMU_VEC4(unsigned, uint, 16)
DLK_EMU_VEC2(long long, longlong, 16)
DLK_EMU_VEC2(unsigned long long, ulonglong, 16)
DLK_EMU_VEC2(float, float, 8)
DLK_EMU_VEC3(float, float)
DLK_EMU_VEC4(float, float, 16)
DLK_EMU_VEC2(double, double, 16)
#undef DLK_EMU_VEC2
#undef DLK_EMU_VEC3
#undef DLK_EMU_VEC4

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// ---- the running CUDA thread -------------------------------------------------------------
namespace dlk_emu {
// The kernel-visible part of a fiber (first member of the runtime's Fiber).
struct Thread {
  uint3 tid;
  uint3 bid;
  dim3 bdim;
  dim3 gdim;
};
}  // namespace dlk_emu
extern __thread dlk_emu::Thread *dlk_emu_thread __attribute__((tls_model("initial-exec")));

#define threadIdx (dlk_emu_thread->tid)
#define blockIdx (dlk_emu_thread->bid)
#define blockDim (dlk_emu_thread->bdim)
#define gridDim (dlk_emu_thread->gdim)
constexpr int warpSize = 32;

// ---- runtime entry points (tests/emu/runtime.cpp) ---------------------------------------
namespace dlk_emu {
enum Coll { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR, BALLOT, ANY, ALL, SYNCWARP, MATCH_ANY };
enum BarOp { BAR_PLAIN, BAR_COUNT, BAR_AND, BAR_OR };
int barrier(int op, int pred, const char *file, int line);
uint64_t warp_coll(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file,
                   int line);
unsigned activemask();
void yield();
[[noreturn]] void trap(const char *what, const char *file, int line);
void *dynamic_smem();
uint64_t globaltimer_ns();

struct LaunchConfig {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  const char *name;
  const void *fn;
};
cudaError_t launch(const LaunchConfig &c, void (*thunk)(void *), void *pack);

// DLK_LAUNCH(kernel, grid, block, smem, stream)(args...): runs the whole grid before it
// returns; the launch's error is what cudaGetLastError() then returns.
template <class... P>
struct Launcher {
  void (*kernel)(P...);
  LaunchConfig cfg;
  template <class... A>
  void operator()(A &&...a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong argument count");
    struct Pack {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
    };
    Pack pack{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
    launch(cfg,
           [](void *p) {
             Pack *pk = static_cast<Pack *>(p);
             std::apply(pk->kernel, pk->args);  // each thread gets its own copy of the params
           },
           &pack);
  }
};
// text: the macro's argument text ("k<T, 4>, grid, block, 0, st"); stream: a
// cudaStream_t, the launchers' void * or nullptr.
template <class... P, class S>
Launcher<P...> make_launcher(const char *text, void (*kernel)(P...), dim3 grid, dim3 block,
                             size_t smem, S stream) {
  return Launcher<P...>{kernel, LaunchConfig{grid, block, smem, (cudaStream_t)stream, text,
                                             reinterpret_cast<const void *>(kernel)}};
}
}  // namespace dlk_emu

// DLK_LAUNCH and DLK_DYNAMIC_SHARED: tests/emu/include/emu_launch.h.

// ---- barriers, warp collectives, sleep ---------------------------------------------------
inline void __syncthreads(const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  dlk_emu::barrier(dlk_emu::BAR_PLAIN, 0, f, l);
}
inline int __syncthreads_count(int p, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::barrier(dlk_emu::BAR_COUNT, p != 0, f, l);
}
inline int __syncthreads_and(int p, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::barrier(dlk_emu::BAR_AND, p != 0, f, l);
}
inline int __syncthreads_or(int p, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::barrier(dlk_emu::BAR_OR, p != 0, f, l);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char *f = __builtin_FILE(),
                       int l = __builtin_LINE()) {
  dlk_emu::warp_coll(dlk_emu::SYNCWARP, mask, 0, 0, 32, f, l);
}
inline unsigned __ballot_sync(unsigned mask, int p, const char *f = __builtin_FILE(),
                              int l = __builtin_LINE()) {
  return (unsigned)dlk_emu::warp_coll(dlk_emu::BALLOT, mask, p != 0, 0, 32, f, l);
}
inline int __any_sync(unsigned mask, int p, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)dlk_emu::warp_coll(dlk_emu::ANY, mask, p != 0, 0, 32, f, l);
}
inline int __all_sync(unsigned mask, int p, const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)dlk_emu::warp_coll(dlk_emu::ALL, mask, p != 0, 0, 32, f, l);
}
inline unsigned __activemask() { return dlk_emu::activemask(); }

namespace dlk_emu {
template <class T>
inline T shfl(int kind, unsigned mask, T v, int arg, int width, const char *f, int l) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                "warp shuffles move at most 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  bits = warp_coll(kind, mask, bits, arg, width, f, l);
  T r;
  memcpy(&r, &bits, sizeof(T));
  return r;
}
}  // namespace dlk_emu
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, const char *f = __builtin_FILE(),
                     int l = __builtin_LINE()) {
  return dlk_emu::shfl(dlk_emu::SHFL_IDX, mask, v, src, width, f, l);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32,
                        const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::shfl(dlk_emu::SHFL_UP, mask, v, (int)d, width, f, l);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32,
                          const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::shfl(dlk_emu::SHFL_DOWN, mask, v, (int)d, width, f, l);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                         const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  return dlk_emu::shfl(dlk_emu::SHFL_XOR, mask, v, lane_mask, width, f, l);
}
template <class T>
inline unsigned __match_any_sync(unsigned mask, T v, const char *f = __builtin_FILE(),
                                 int l = __builtin_LINE()) {
  static_assert(sizeof(T) <= 8, "match on at most 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  return (unsigned)dlk_emu::warp_coll(dlk_emu::MATCH_ANY, mask, bits, 0, 32, f, l);
}

inline void __nanosleep(unsigned) { dlk_emu::yield(); }
[[noreturn]] inline void __trap(const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
  dlk_emu::trap("__trap()", f, l);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline long long clock64() { return (long long)dlk_emu::globaltimer_ns(); }


// ---- loads and stores with cache hints: plain ----------------------------------------------
template <class T> inline T __ldg(const T *p) { return *p; }
template <class T> inline T __ldcg(const T *p) { return *p; }
template <class T> inline T __ldca(const T *p) { return *p; }
template <class T> inline T __ldcs(const T *p) { return *p; }
template <class T> inline T __ldlu(const T *p) { return *p; }
template <class T> inline T __ldcv(const T *p) { return *p; }
template <class T> inline void __stcg(T *p, T v) { *p = v; }
template <class T> inline void __stcs(T *p, T v) { *p = v; }
template <class T> inline void __stwb(T *p, T v) { *p = v; }
template <class T> inline void __stwt(T *p, T v) { *p = v; }

// ---- atomics: really atomic across OS threads (blocks run on several) --------------------
namespace dlk_emu {
template <class T>
DLK_EMU_ATOMIC_FN T atomic_float_op(T *p, T v, int op) {
  typedef typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type U;
  U *q = reinterpret_cast<U *>(p);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED);
  for (;;) {
    T o, n;
    memcpy(&o, &old, sizeof(T));
    n = op == 0 ? o + v : (op == 1 ? (o < v ? v : o) : (v < o ? v : o));
    U nb;
    memcpy(&nb, &n, sizeof(T));
    if (__atomic_compare_exchange_n(q, &old, nb, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o;
  }
}
}  // namespace dlk_emu

#define DLK_EMU_INT_ATOMICS(T)                                                               \
  DLK_EMU_ATOMIC_FN T atomicAdd(T *p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicSub(T *p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicAnd(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicXor(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); } \
  DLK_EMU_ATOMIC_FN T atomicCAS(T *p, T cmp, T v) {                                          \
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);      \
    return cmp;                                                                              \
  }                                                                                          \
  DLK_EMU_ATOMIC_FN T atomicMax(T *p, T v) {                                                 \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                            \
    while (old < v &&                                                                        \
           !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) \
      ;                                                                                      \
    return old;                                                                              \
  }                                                                                          \
  DLK_EMU_ATOMIC_FN T atomicMin(T *p, T v) {                                                 \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                            \
    while (v < old &&                                                                        \
           !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) \
      ;                                                                                      \
    return old;                                                                              \
  }
DLK_EMU_INT_ATOMICS(int)
DLK_EMU_INT_ATOMICS(unsigned)
DLK_EMU_INT_ATOMICS(long long)
DLK_EMU_INT_ATOMICS(unsigned long long)
#undef DLK_EMU_INT_ATOMICS
DLK_EMU_ATOMIC_FN unsigned short atomicCAS(unsigned short *p, unsigned short cmp, unsigned short v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
DLK_EMU_ATOMIC_FN unsigned atomicInc(unsigned *p, unsigned lim) {
  unsigned old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, old >= lim ? 0u : old + 1, true, __ATOMIC_SEQ_CST,
                                      __ATOMIC_RELAXED))
    ;
  return old;
}
DLK_EMU_ATOMIC_FN unsigned atomicDec(unsigned *p, unsigned lim) {
  unsigned old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, (old == 0 || old > lim) ? lim : old - 1, true,
                                      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
    ;
  return old;
}
DLK_EMU_ATOMIC_FN float atomicAdd(float *p, float v) { return dlk_emu::atomic_float_op(p, v, 0); }
DLK_EMU_ATOMIC_FN double atomicAdd(double *p, double v) { return dlk_emu::atomic_float_op(p, v, 0); }
DLK_EMU_ATOMIC_FN float atomicMax(float *p, float v) { return dlk_emu::atomic_float_op(p, v, 1); }
DLK_EMU_ATOMIC_FN float atomicMin(float *p, float v) { return dlk_emu::atomic_float_op(p, v, 2); }
DLK_EMU_ATOMIC_FN float atomicExch(float *p, float v) {
  uint32_t nb, ob;
  memcpy(&nb, &v, 4);
  ob = __atomic_exchange_n(reinterpret_cast<uint32_t *>(p), nb, __ATOMIC_SEQ_CST);
  float o;
  memcpy(&o, &ob, 4);
  return o;
}

// ---- integer and float intrinsics ----------------------------------------------------------
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __clz(int v) { return v ? __builtin_clz((unsigned)v) : 32; }
inline int __clzll(long long v) { return v ? __builtin_clzll((unsigned long long)v) : 64; }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
inline unsigned __brev(unsigned v) {
  v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
  v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
  v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4);
  v = ((v >> 8) & 0x00ff00ffu) | ((v & 0x00ff00ffu) << 8);
  return (v >> 16) | (v << 16);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline double __longlong_as_double(long long v) {
  double d;
  memcpy(&d, &v, 8);
  return d;
}
inline long long __double_as_longlong(double v) {
  long long r;
  memcpy(&r, &v, 8);
  return r;
}
inline float __int_as_float(int v) {
  float f;
  memcpy(&f, &v, 4);
  return f;
}
inline int __float_as_int(float v) {
  int r;
  memcpy(&r, &v, 4);
  return r;
}
inline float __uint_as_float(unsigned v) {
  float f;
  memcpy(&f, &v, 4);
  return f;
}
inline unsigned __float_as_uint(float v) {
  unsigned r;
  memcpy(&r, &v, 4);
  return r;
}
inline double __hiloint2double(int hi, int lo) {
  uint64_t b = ((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo;
  double d;
  memcpy(&d, &b, 8);
  return d;
}
inline int __double2hiint(double d) { return (int)(__double_as_longlong(d) >> 32); }
inline int __double2loint(double d) { return (int)(uint32_t)__double_as_longlong(d); }
// Fast-math intrinsics: the precise functions (the emulation proves indexing and
// synchronisation, not last-bit agreement with the GPU's approximations).
inline float __expf(float v) { return expf(v); }
inline float __logf(float v) { return logf(v); }
inline float __log2f(float v) { return log2f(v); }
inline float __sinf(float v) { return sinf(v); }
inline float __cosf(float v) { return cosf(v); }
inline float __tanhf(float v) { return tanhf(v); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float v) { return 1.0f / v; }
inline float __fsqrt_rn(float v) { return sqrtf(v); }
inline float __saturatef(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : (v == v ? v : 0.f)); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
inline double rsqrt(double v) { return 1.0 / sqrt(v); }
inline float exp10f(float v) { return powf(10.f, v); }
inline float __exp10f(float v) { return powf(10.f, v); }
inline int __float2int_rn(float v) { return (int)nearbyintf(v); }
inline int __float2int_rz(float v) { return (int)v; }
inline int __float2int_rd(float v) { return (int)floorf(v); }
inline int __float2int_ru(float v) { return (int)ceilf(v); }
inline float __int2float_rn(int v) { return (float)v; }

// min/max over any arithmetic types, as CUDA's overloads in device code.
template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
inline typename std::common_type<A, B>::type min(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)b < (C)a ? (C)b : (C)a;
}
template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
inline typename std::common_type<A, B>::type max(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)a < (C)b ? (C)b : (C)a;
}

// ---- function attributes, occupancy ----------------------------------------------------------
template <class F>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F *fn) {
  return dlk_emu_func_get_attributes(a, reinterpret_cast<const void *>(fn));
}
template <class F>
inline cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute attr, int v) {
  return dlk_emu_func_set_attribute(reinterpret_cast<const void *>(fn), attr, v);
}
template <class F>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F *fn, int threads,
                                                                 size_t smem) {
  return dlk_emu_occupancy(n, reinterpret_cast<const void *>(fn), threads, smem);
}

#endif  // DLK_EMU_DEVICE_H
