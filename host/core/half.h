/* IEEE half and bfloat16 <-> float conversions for the CPU side (round to nearest even),
   and typed element loads/stores so CPU code can treat every float dtype as double. */
#ifndef DLK_HALF_H
#define DLK_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dlk.h"

static inline float dlk_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
  } else if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      int e = -1;
      do {
        man <<= 1;
        e++;
      } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline uint16_t dlk_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
  if (e <= 0) {                                     /* subnormal or zero */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000;
    int shift = 14 - e;
    uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: fine */
  return (uint16_t)half;
}

static inline float dlk_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline uint16_t dlk_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* Element i (an offset in elements) of a float tensor's data as double. */
static inline double dlk_load(const void *p, dlk_dtype t, int64_t i) {
  switch (t) {
    case DLK_F32: return ((const float *)p)[i];
    case DLK_F64: return ((const double *)p)[i];
    case DLK_F16: return dlk_f16_to_f32(((const uint16_t *)p)[i]);
    case DLK_BF16: return dlk_bf16_to_f32(((const uint16_t *)p)[i]);
    case DLK_I32: return ((const int32_t *)p)[i];
    case DLK_I64: return (double)((const int64_t *)p)[i];
    case DLK_U8: return ((const uint8_t *)p)[i];
    default: return NAN;
  }
}

/* Store v (rounded to the dtype) at element offset i. */
static inline void dlk_store(void *p, dlk_dtype t, int64_t i, double v) {
  switch (t) {
    case DLK_F32: ((float *)p)[i] = (float)v; break;
    case DLK_F64: ((double *)p)[i] = v; break;
    case DLK_F16: ((uint16_t *)p)[i] = dlk_f32_to_f16((float)v); break;
    case DLK_BF16: ((uint16_t *)p)[i] = dlk_f32_to_bf16((float)v); break;
    case DLK_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case DLK_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case DLK_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    default: break;
  }
}

/* Integer element (ids, targets) at offset i. */
static inline int64_t dlk_load_index(const void *p, dlk_dtype t, int64_t i) {
  return t == DLK_I64 ? ((const int64_t *)p)[i] : (int64_t)((const int32_t *)p)[i];
}

#endif /* DLK_HALF_H */
