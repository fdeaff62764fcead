// dlk's emulated CUDA device: __half and __half2 with CUDA's conversions, rounding to
// nearest even exactly as the GPU does (float <-> half is exact arithmetic on the bits).
#ifndef DLK_EMU_CUDA_FP16_H
#define DLK_EMU_CUDA_FP16_H
#include "dlk_emu/device.h"

namespace dlk_emu {
inline unsigned short f32_to_f16_rn(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520: inf
  const uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
  if (e < 113) {  // half subnormal (or zero): h = m * 2^(e - 126), rounded to nearest even
    if (e == 0) return (unsigned short)sign;
    const uint32_t s = 126 - e;
    if (s > 24) return (unsigned short)sign;
    uint32_t r = m >> s;
    const uint32_t rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (unsigned short)(sign | r);
  }
  uint32_t h = ((e - 112) << 10) | ((ax >> 13) & 0x3ffu);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (unsigned short)(sign | h);
}
inline float f16_to_f32(unsigned short h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t x;
  if (e == 0x1f) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e != 0) {
    x = sign | ((e + 112) << 23) | (m << 13);
  } else if (m == 0) {
    x = sign;
  } else {  // subnormal: m * 2^-24, exact in float
    float v = (float)m * 5.9604644775390625e-8f;
    memcpy(&x, &v, 4);
    x |= sign;
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}
}  // namespace dlk_emu

struct __half {
  unsigned short __x;
  __half() = default;
  __half(float f) : __x(dlk_emu::f32_to_f16_rn(f)) {}
  __half(double d) : __x(dlk_emu::f32_to_f16_rn((float)d)) {}
  __half(int v) : __x(dlk_emu::f32_to_f16_rn((float)v)) {}
  operator float() const { return dlk_emu::f16_to_f32(__x); }
};
struct __attribute__((aligned(4))) __half2 {
  __half x, y;
};
typedef __half half;
typedef __half2 half2;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return dlk_emu::f16_to_f32(h.__x); }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__half(a), __half(b)}; }
inline __half2 __float22half2_rn(float2 v) { return __half2{__half(v.x), __half(v.y)}; }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
inline __half2 __half2half2(__half h) { return __half2{h, h}; }
inline __half2 __halves2half2(__half a, __half b) { return __half2{a, b}; }
inline __half __low2half(__half2 h) { return h.x; }
inline __half __high2half(__half2 h) { return h.y; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
inline __half __hadd(__half a, __half b) { return __half(__half2float(a) + __half2float(b)); }
inline __half __hsub(__half a, __half b) { return __half(__half2float(a) - __half2float(b)); }
inline __half __hmul(__half a, __half b) { return __half(__half2float(a) * __half2float(b)); }
inline __half __hdiv(__half a, __half b) { return __half(__half2float(a) / __half2float(b)); }
inline __half __hneg(__half a) { __half r; r.__x = (unsigned short)(a.__x ^ 0x8000u); return r; }
inline bool __hisnan(__half a) { return (a.__x & 0x7fffu) > 0x7c00u; }
inline int __hisinf(__half a) { return (a.__x & 0x7fffu) == 0x7c00u ? ((a.__x & 0x8000u) ? -1 : 1) : 0; }
inline __half operator+(__half a, __half b) { return __hadd(a, b); }
inline __half operator-(__half a, __half b) { return __hsub(a, b); }
inline __half operator*(__half a, __half b) { return __hmul(a, b); }
inline __half operator/(__half a, __half b) { return __hdiv(a, b); }
inline __half operator-(__half a) { return __hneg(a); }
inline __half &operator+=(__half &a, __half b) { return a = a + b; }
inline __half &operator-=(__half &a, __half b) { return a = a - b; }
inline __half &operator*=(__half &a, __half b) { return a = a * b; }
inline __half &operator/=(__half &a, __half b) { return a = a / b; }
inline bool operator==(__half a, __half b) { return __half2float(a) == __half2float(b); }
inline bool operator!=(__half a, __half b) { return __half2float(a) != __half2float(b); }
inline bool operator<(__half a, __half b) { return __half2float(a) < __half2float(b); }
inline bool operator>(__half a, __half b) { return __half2float(a) > __half2float(b); }
inline bool operator<=(__half a, __half b) { return __half2float(a) <= __half2float(b); }
inline bool operator>=(__half a, __half b) { return __half2float(a) >= __half2float(b); }
DLK_EMU_ATOMIC_FN __half atomicAdd(__half *p, __half v) {
  unsigned short *q = &p->__x, old = __atomic_load_n(q, __ATOMIC_RELAXED);
  for (;;) {
    __half o;
    o.__x = old;
    const __half n = o + v;
    if (__atomic_compare_exchange_n(q, &old, n.__x, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o;
  }
}
#endif
