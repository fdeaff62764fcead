/*
 * fuzz_api: every public call of the library, as a hostile caller makes it, with real memory.
 *
 * One input = one call (sometimes a short sequence, as GloVe needs) of one entry of the
 * table at the end of this file: the op functions of include/dlk.h (each dispatched op that
 * dlk_op_count lists is covered by some entry: LLVMFuzzerInitialize checks it, so a new
 * op without an entry fails the replay test and every fuzz run) and the tensor helpers.
 * The input is decoded into
 *   - parameters: NaN, +-inf, huge, negative and out-of-range enums, NULL params structs;
 *   - tensor descriptors: arbitrary dtype, ndim, shape, strides (contiguous, transposed,
 *     padded, broadcast, arbitrary, huge, negative), device, data (aligned, misaligned,
 *     NULL, aliasing another argument exactly or in part), or a NULL descriptor pointer;
 * and every descriptor gets a real buffer covering exactly the bytes it addresses, with
 * guard bytes before and after. A non-empty tensor has at most FZ_MAX_ELEMS elements (a
 * larger one has its biggest dim set to 0), so the work of a call is bounded and the time
 * limit is about the library; an empty tensor's other dims may be huge (2^40, INT64_MAX).
 *
 * Properties, each an abort() (so libFuzzer reports it with the input):
 *   - no sanitizer report (the fuzz build is ASan + UBSan; libFuzzer's malloc limit turns
 *     a workspace sized from a huge empty dim into a report too);
 *   - no call takes longer than 2 s;
 *   - a status inside the table; a refused call leaves a non-empty message and every byte
 *     of every buffer (guards, inputs, outputs, the gaps between strided elements) and
 *     every out-struct (views, DLPack handles) untouched;
 *   - an OK call writes nothing but its outputs' elements: guard bytes, inputs and the
 *     gaps between strided output elements unchanged; in explain mode an op call writes
 *     nothing at all;
 *   - views (slice, transpose, reshape, DLPack import) address only bytes of elements of
 *     what they view; dlk_tensor_validate accepts only what the harness, computing on its
 *     own, finds well formed and backed.
 *
 * Adding an entry for a new op (see also the note in the repository's robustness docs):
 * write `static void e_myop(void)` that decodes the params with in_*(), the tensors with
 * fz_tensor(&spec) (spec = the shape a valid call has; the decoder departs from it when
 * the input says so), then `FZ_OP(st, dlk_myop(S.ctx, ...), out1, out2)` listing the outputs,
 * and append `{"dlk_myop", "myop_fwd", e_myop}` to the entries table (at the end: the first
 * input byte picks the entry, so the seeds tests/fuzz/corpus/api/<call>-* keep naming
 * their call).
 *
 * Built two ways (tests/CMakeLists.txt): with libFuzzer (-DDLK_FUZZ=ON, clang, ASan +
 * UBSan) and with replay.c under the normal compiler, replaying tests/fuzz/corpus/api in
 * every ctest run. FZ_VERBOSE=1 prints each call and its status (for making seeds).
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <time.h>

#include "core/half.h"
#include "fuzz_common.h"

#define FZ_GUARD 64
#define FZ_MAX_ELEMS 4096
#define FZ_MAX_BYTES (1 << 20)
#define FZ_MAX_BUFS 64
#define FZ_MAX_TENSORS 64
#define FZ_TIME_LIMIT_S 2.0

/* ---------------------------------------------------------------------------------------- */
/* State of one input                                                                        */
/* ---------------------------------------------------------------------------------------- */

typedef struct fz_buf {
  unsigned char *mem, *snap, *mark;
  size_t size;
} fz_buf;

/* A decoded tensor: its descriptor (first member: a dlk_tensor * is a fz_arg *) and the
   buffer that backs it (-1: none). */
typedef struct fz_arg {
  dlk_tensor t;
  int buf;
} fz_arg;

typedef struct fz_state {
  const uint8_t *in;
  size_t n, pos;
  dlk_context *ctx;
  uint64_t rng;
  dlk_dtype fdt; /* the entry's float dtype */
  int explain;
  const char *entry;
  fz_buf bufs[FZ_MAX_BUFS];
  int nbufs;
  fz_arg tens[FZ_MAX_TENSORS];
  int ntens;
  int verbose;
} fz_state;
static fz_state S;

static void fz_die(const char *what, const char *call) {
  fprintf(stderr, "fuzz_api: %s: %s (last error: \"%s\")\n", call, what,
          S.ctx ? dlk_context_last_error(S.ctx) : "");
  abort();
}

/* A descriptor on stderr, for the report of a failed property. */
static void fz_describe(const char *label, const dlk_tensor *t) {
  fprintf(stderr, "fuzz_api:   %s: ", label);
  if (!t) {
    fprintf(stderr, "NULL\n");
    return;
  }
  fprintf(stderr, "dtype %d ndim %d device %d:%d data %p shape [", (int)t->dtype, t->ndim, (int)t->device.type,
          t->device.id, t->data);
  for (int k = 0; k < t->ndim && k < DLK_MAX_DIMS; k++) fprintf(stderr, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
  fprintf(stderr, "] strides [");
  for (int k = 0; k < t->ndim && k < DLK_MAX_DIMS; k++) fprintf(stderr, "%s%lld", k ? ", " : "", (long long)t->strides[k]);
  fprintf(stderr, "]\n");
}

/* ---------------------------------------------------------------------------------------- */
/* Input decoding: a zero byte is always the plain, valid choice, so a short input of zeros */
/* is a valid call, and the fuzzer departs from it byte by byte.                            */
/* ---------------------------------------------------------------------------------------- */

static uint8_t in_u8(void) { return S.pos < S.n ? S.in[S.pos++] : 0; }

static uint64_t rng_next(void) {
  S.rng ^= S.rng >> 12;
  S.rng ^= S.rng << 25;
  S.rng ^= S.rng >> 27;
  return S.rng * 2685821657736338717ULL;
}
static double rng_uniform(double lo, double hi) {
  return lo + (hi - lo) * (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* A dimension: small (2 for a zero byte, 0..8), or one of the sizes that break things. */
static int64_t in_dim(void) {
  static const int64_t special[16] = {0, 1, 9, 17, 64, 4096, 4097, INT64_C(1) << 20,
                                      INT64_C(1) << 31, (INT64_C(1) << 32) + 1, INT64_C(1) << 40,
                                      INT64_C(1) << 61, INT64_C(1) << 62, INT64_MAX, -1, INT64_MIN};
  uint8_t b = in_u8();
  return b < 0xF0 ? (b + 2) % 9 : special[b - 0xF0];
}

/* An integer parameter: def for a zero byte, else small values around 0 or extremes. */
static int64_t in_i64(int64_t def) {
  static const int64_t special[16] = {INT64_MIN, INT64_MAX, INT32_MIN, INT32_MAX, -100,
                                      INT64_C(1) << 31, INT64_C(1) << 40, -(INT64_C(1) << 40),
                                      4096, 100000, 100001, INT64_C(1) << 53, -1, 0, 1, 2};
  uint8_t b = in_u8();
  if (b == 0) return def;
  return b < 0xF0 ? (int64_t)b - 9 : special[b - 0xF0];
}
static int in_int(int def) {
  int64_t v = in_i64(def);
  return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}
static uint64_t in_u64(uint64_t def) {
  static const uint64_t special[8] = {UINT64_MAX, UINT64_MAX - 1, UINT64_C(1) << 63, UINT64_C(1) << 32,
                                      UINT64_MAX / 3, 1, 2, 4};
  uint8_t b = in_u8();
  if (b == 0) return def;
  return b < 0xF8 ? (uint64_t)b * 0x9E3779B97F4A7C15ULL : special[b - 0xF8];
}

/* A floating-point parameter: def for a zero byte, else small positives, negatives, and
   the values that break arithmetic. */
static double in_dbl(double def) {
  uint8_t b = in_u8();
  if (b == 0) return def;
  if (b < 0x80) return (double)(b - 1) / 16.0;
  if (b < 0xC0) return -(double)(b - 0x80) / 16.0;
  switch (b & 15) {
    case 0: return NAN;
    case 1: return -NAN;
    case 2: return INFINITY;
    case 3: return -INFINITY;
    case 4: return 1e300;
    case 5: return -1e300;
    case 6: return DBL_MIN;
    case 7: return 5e-324;
    case 8: return DBL_MAX;
    case 9: return 0.9999999999999999;
    case 10: return 1.0;
    case 11: return 1e-12;
    case 12: return 1e30;
    case 13: return -0.0;
    case 14: return 1.0 - 1e-3;
    default: {
      uint64_t bits = rng_next();
      double d;
      memcpy(&d, &bits, sizeof d);
      return d;
    }
  }
}

/* An enum: def for a zero byte, else any int near the valid range, or an extreme. */
static int in_enum(int def) {
  uint8_t b = in_u8();
  if (b == 0) return def;
  if (b == 0xFF) return INT_MIN;
  if (b == 0xFE) return INT_MAX;
  return (int)b - 2;
}

/* A params struct or NULL (a byte of 0xFF). */
static const void *in_params(const void *p) { return in_u8() == 0xFF ? NULL : p; }

/* ---------------------------------------------------------------------------------------- */
/* Buffers, element walks                                                                    */
/* ---------------------------------------------------------------------------------------- */

static int buf_new(size_t bytes) {
  if (S.nbufs == FZ_MAX_BUFS) return -1;
  fz_buf *b = &S.bufs[S.nbufs];
  b->size = bytes + 2 * FZ_GUARD;
  b->mem = malloc(b->size);
  b->snap = malloc(b->size);
  b->mark = malloc(b->size);
  if (!b->mem || !b->snap || !b->mark) abort();
  for (size_t i = 0; i < b->size; i++) b->mem[i] = (unsigned char)rng_next();
  return S.nbufs++;
}

static void bufs_free(void) {
  for (int i = 0; i < S.nbufs; i++) {
    free(S.bufs[i].mem);
    free(S.bufs[i].snap);
    free(S.bufs[i].mark);
  }
  S.nbufs = 0;
  S.ntens = 0;
}

static size_t es_of(dlk_dtype dt) {
  size_t es = dlk_dtype_size(dt);
  return es ? es : 1;
}

/* Calls f(offset in elements) for each element of t (ndim 0..8, at most FZ_MAX_BYTES
   elements, shapes >= 0; anything else: no calls). Decoded tensors have at most
   FZ_MAX_ELEMS elements; only byte buffers (an RNN's training reserve) have more. */
typedef void (*elem_fn)(const dlk_tensor *t, int64_t off, void *user);
static void for_each_elem(const dlk_tensor *t, elem_fn f, void *user) {
  if (t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return;
  int64_t n = 1;
  for (int k = 0; k < t->ndim; k++) {
    if (t->shape[k] < 0) return;
    if (__builtin_mul_overflow(n, t->shape[k], &n)) return;
  }
  if (n == 0 || n > FZ_MAX_BYTES) return;
  int64_t idx[DLK_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    uint64_t off = 0; /* wrapping: a bad descriptor from the library must not trip UBSan here */
    for (int k = 0; k < t->ndim; k++) off += (uint64_t)idx[k] * (uint64_t)t->strides[k];
    f(t, (int64_t)off, user);
    for (int k = t->ndim - 1; k >= 0; k--) {
      if (++idx[k] < t->shape[k]) break;
      idx[k] = 0;
    }
  }
}

/* The buffer holding byte address a, or -1. */
static int buf_at(uintptr_t a) {
  for (int i = 0; i < S.nbufs; i++)
    if (a >= (uintptr_t)S.bufs[i].mem && a < (uintptr_t)S.bufs[i].mem + S.bufs[i].size) return i;
  return -1;
}

static uintptr_t elem_addr(const dlk_tensor *t, int64_t off) {
  return (uintptr_t)t->data + (uintptr_t)off * (uintptr_t)es_of(t->dtype);
}

static void mark_elem(const dlk_tensor *t, int64_t off, void *user) {
  (void)user;
  uintptr_t a = elem_addr(t, off);
  int b = buf_at(a);
  if (b < 0) return;
  size_t at = a - (uintptr_t)S.bufs[b].mem, es = es_of(t->dtype);
  for (size_t i = 0; i < es && at + i < S.bufs[b].size; i++) S.bufs[b].mark[at + i] = 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Tensor decoding                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* What a valid argument looks like: the decoder starts from it. vmax: index values are
   drawn from [0, vmax). */
typedef struct fz_spec {
  dlk_dtype dt;
  int ndim;
  int64_t shape[DLK_MAX_DIMS];
  int64_t vmax;
} fz_spec;

static fz_spec spec1(dlk_dtype dt, int64_t d0) { return (fz_spec){dt, 1, {d0}, 0}; }
static fz_spec spec2(dlk_dtype dt, int64_t d0, int64_t d1) { return (fz_spec){dt, 2, {d0, d1}, 0}; }
static fz_spec spec3(dlk_dtype dt, int64_t d0, int64_t d1, int64_t d2) {
  return (fz_spec){dt, 3, {d0, d1, d2}, 0};
}

static int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? (((a < 0) != (b < 0)) ? INT64_MIN : INT64_MAX) : r;
}
static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? (a < 0 ? INT64_MIN : INT64_MAX) : r;
}

/* Row-major strides of shape in the dim order perm (perm[nd-1] innermost), saturating;
   pad added to every stride but the innermost. */
static void strides_for(int nd, const int64_t *shape, const int *perm, int64_t pad, int64_t *st) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    int k = perm[i];
    st[k] = s;
    s = sat_add(sat_mul(s, shape[k] > 0 ? shape[k] : 1), pad);
  }
}

static int64_t in_stride(void) {
  static const int64_t special[8] = {-1, -8, INT64_C(1) << 31, INT64_C(1) << 40, INT64_MAX,
                                     INT64_MIN, 4096, 65};
  uint8_t b = in_u8();
  return b < 0xF8 ? b % 8 : special[b - 0xF8];
}

/* Byte range [lo, hi) relative to data that t's elements cover; false when t has no
   elements (any dim 0, or an invalid ndim or negative size) or the range does not fit. */
static bool addressed(const dlk_tensor *t, int64_t *lo, int64_t *hi, int64_t *numel) {
  *lo = *hi = 0;
  *numel = 0;
  if (t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return false;
  int64_t n = 1, l = 0, h = 0;
  for (int k = 0; k < t->ndim; k++) {
    if (t->shape[k] <= 0) return false;
    if (__builtin_mul_overflow(n, t->shape[k], &n)) n = INT64_MAX;
  }
  for (int k = 0; k < t->ndim; k++) {
    int64_t step;
    if (__builtin_mul_overflow(t->shape[k] - 1, t->strides[k], &step)) return *numel = n, false;
    if (step < 0 ? __builtin_add_overflow(l, step, &l) : __builtin_add_overflow(h, step, &h))
      return *numel = n, false;
  }
  int64_t es = (int64_t)es_of(t->dtype);
  *numel = n;
  int64_t span;
  if (__builtin_add_overflow(h, 1, &h) || __builtin_mul_overflow(l, es, lo) ||
      __builtin_mul_overflow(h, es, hi) || __builtin_sub_overflow(*hi, *lo, &span)) {
    *lo = *hi = 0;
    return false;
  }
  return true;
}

/* Element off of t gets a value (through memcpy: t's data may be misaligned on purpose):
   uniform in [-2, 2) or a special value (p[0] in 256 of them) for floats, [0, vmax) or an
   out-of-range id for integers, random bytes otherwise. */
static void fill_values(const dlk_tensor *t, int64_t off, void *user) {
  const int64_t *p = user; /* {specials per 256, vmax} */
  bool special = (int64_t)(rng_next() & 255) < p[0];
  unsigned char v[8];
  size_t es = es_of(t->dtype);
  switch (t->dtype) {
    case DLK_F32:
    case DLK_F16:
    case DLK_BF16:
    case DLK_F64: {
      static const double sp[8] = {NAN, INFINITY, -INFINITY, 1e30, -1e30, 0.0, 1e-30, 65504.0};
      double x = special ? sp[rng_next() & 7] : rng_uniform(-2, 2);
      float f = (float)x;
      uint16_t h = t->dtype == DLK_F16 ? dlk_f32_to_f16(f) : dlk_f32_to_bf16(f);
      if (t->dtype == DLK_F64) memcpy(v, &x, 8);
      else if (t->dtype == DLK_F32) memcpy(v, &f, 4);
      else memcpy(v, &h, 2);
      break;
    }
    case DLK_I32:
    case DLK_I64: {
      static const int64_t sp[8] = {-1, -100, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX, 0, 1};
      int64_t x = special ? sp[rng_next() & 7] : p[1] > 0 ? (int64_t)(rng_next() % (uint64_t)p[1]) : 0;
      int32_t x32 = (int32_t)x;
      if (t->dtype == DLK_I32) memcpy(v, &x32, 4);
      else memcpy(v, &x, 8);
      break;
    }
    default: v[0] = (unsigned char)rng_next(); break;
  }
  memcpy((unsigned char *)t->data + off * (int64_t)es, v, es);
}

/* Decode one tensor argument from the spec. Returns a pointer to its descriptor, or NULL
   (a NULL argument). */
static dlk_tensor *fz_tensor_decode(const fz_spec *sp) {
  if (S.ntens == FZ_MAX_TENSORS) return NULL;
  fz_arg *ft = &S.tens[S.ntens];
  memset(ft, 0, sizeof *ft);
  ft->buf = -1;
  dlk_tensor *t = &ft->t;
  t->device = (dlk_device){DLK_CPU, 0};
  /* shape */
  uint8_t b = in_u8();
  t->ndim = sp->ndim;
  memcpy(t->shape, sp->shape, sizeof t->shape);
  if (b >= 0xE0 && b < 0xF0 && sp->ndim > 0) {
    t->shape[b % sp->ndim] = in_dim();
  } else if (b >= 0xF0) {
    static const int nds[16] = {0, 1, 2, 3, 4, 5, 8, 9, -1, 100, INT_MIN, 1, 2, 2, 3, 7};
    t->ndim = nds[b - 0xF0];
    for (int k = 0; k < DLK_MAX_DIMS; k++) t->shape[k] = in_dim();
  }
  const int nd = t->ndim >= 0 && t->ndim <= DLK_MAX_DIMS ? t->ndim : 0;
  /* dtype */
  b = in_u8();
  t->dtype = sp->dt;
  if (b >= 0xF8) {
    static const dlk_dtype dts[7] = {DLK_F32, DLK_F16, DLK_BF16, DLK_F64, DLK_I32, DLK_I64, DLK_U8};
    t->dtype = b == 0xFF ? (dlk_dtype)((int)in_u8() - 100) : dts[b - 0xF8];
  }
  /* strides */
  int perm[DLK_MAX_DIMS];
  for (int k = 0; k < DLK_MAX_DIMS; k++) perm[k] = k;
  b = in_u8();
  int mode = b < 0x80 ? 0 : 1 + (b - 0x80) % 7;
  int64_t pad = 0;
  if (mode == 1 && nd >= 2) perm[nd - 1] = nd - 2, perm[nd - 2] = nd - 1; /* transposed */
  if (mode == 2) pad = 1 + in_u8() % 5;                                    /* padded */
  if (mode == 3)
    for (int k = 0; k < nd; k++) perm[k] = nd - 1 - k; /* all dims reversed */
  strides_for(nd, t->shape, perm, pad, t->strides);
  if (mode == 4 && nd > 0) t->strides[in_u8() % nd] = 0; /* broadcast */
  if (mode == 5)
    for (int k = 0; k < nd; k++) t->strides[k] = in_stride();
  if (mode == 6 && nd > 0) t->strides[in_u8() % nd] = in_stride();
  if (mode == 7 && nd > 0) t->strides[in_u8() % nd] = INT64_C(1) << 40;
  /* data and device */
  b = in_u8();
  int dmode = b < 0xC0 ? 0 : (b - 0xC0) % 8;
  int64_t lo, hi, numel;
  bool has = addressed(t, &lo, &hi, &numel);
  if (!has && numel > 0) {
    /* Elements whose span does not fit: the biggest dim becomes 0 (an empty tensor whose
       other dims may be huge). */
    int big = 0;
    for (int k = 1; k < nd; k++)
      if (t->shape[k] > t->shape[big]) big = k;
    if (nd > 0) t->shape[big] = 0;
  }
  if (has && (numel > FZ_MAX_ELEMS || hi - lo > FZ_MAX_BYTES)) {
    int big = 0;
    for (int k = 1; k < nd; k++)
      if (t->shape[k] > t->shape[big]) big = k;
    if (nd > 0) t->shape[big] = 0;
    has = false;
    lo = hi = 0;
  }
  if (!has) lo = hi = 0; /* nothing addressed */
  if (dmode == 3 || dmode == 4) {
    /* alias an earlier argument: exactly (3) or with this descriptor over its data (4), if
       what this one addresses lies inside that one's data region */
    int j = S.ntens ? in_u8() % S.ntens : -1;
    if (j >= 0 && S.tens[j].buf >= 0) {
      if (dmode == 3) {
        *t = S.tens[j].t;
        ft->buf = S.tens[j].buf;
        S.ntens++;
        return t;
      }
      const fz_buf *jb = &S.bufs[S.tens[j].buf];
      uintptr_t d = (uintptr_t)S.tens[j].t.data + (uintptr_t)((in_u8() % 8) * (int64_t)es_of(t->dtype));
      uintptr_t rlo = (uintptr_t)jb->mem + FZ_GUARD, rhi = (uintptr_t)jb->mem + jb->size - FZ_GUARD;
      if (has && (intptr_t)d + (intptr_t)lo >= (intptr_t)rlo && (intptr_t)d + (intptr_t)hi <= (intptr_t)rhi) {
        t->data = (void *)d;
        ft->buf = S.tens[j].buf;
        S.ntens++;
        return t;
      }
    }
    dmode = 0;
  }
  size_t mis = dmode == 2 ? 1 + in_u8() % 7 : 0;
  if (dmode != 1) {
    int bi = buf_new((size_t)(hi - lo) + mis);
    if (bi < 0) return NULL;
    ft->buf = bi;
    t->data = S.bufs[bi].mem + FZ_GUARD - lo + mis;
    int64_t fill[2] = {in_u8(), sp->vmax};
    if (has) for_each_elem(t, fill_values, fill);
  }
  if (dmode == 5) t->device = (dlk_device){DLK_CUDA, 0};
  if (dmode == 6) {
    t->device.type = (dlk_device_type)(in_u8() % 5);
    t->device.id = in_int(0);
  }
  S.ntens++;
  return dmode == 7 ? NULL : t;
}

/* fz_tensor_decode, and with FZ_VERBOSE the descriptor it made (argument k of the input). */
static dlk_tensor *fz_tensor(const fz_spec *sp) {
  dlk_tensor *t = fz_tensor_decode(sp);
  if (S.verbose) {
    char label[32];
    snprintf(label, sizeof label, "arg %d", S.ntens - 1);
    fz_describe(label, t);
  }
  return t;
}

/* An index dtype: I64 for a zero byte, I32, or anything. */
static dlk_dtype in_index_dtype(void) {
  uint8_t b = in_u8();
  return b == 0 ? DLK_I64 : b == 1 ? DLK_I32 : (dlk_dtype)((int)b % 10 - 1);
}

/* A host array of n elements of `es` bytes as a 1-D tensor (n <= FZ_MAX_ELEMS), or NULL
   when n is out of that range. */
static dlk_tensor *fz_array(dlk_dtype dt, int64_t n, int64_t vmax) {
  if (n < 0 || n > FZ_MAX_ELEMS || S.ntens == FZ_MAX_TENSORS) return NULL;
  fz_arg *ft = &S.tens[S.ntens];
  memset(ft, 0, sizeof *ft);
  ft->t.dtype = dt;
  ft->t.device = (dlk_device){DLK_CPU, 0};
  ft->t.ndim = 1;
  ft->t.shape[0] = n;
  ft->t.strides[0] = 1;
  ft->buf = buf_new((size_t)n * es_of(dt));
  if (ft->buf < 0) return NULL;
  ft->t.data = S.bufs[ft->buf].mem + FZ_GUARD;
  int64_t fill[2] = {in_u8(), vmax};
  for_each_elem(&ft->t, fill_values, fill);
  S.ntens++;
  return &ft->t;
}

/* ---------------------------------------------------------------------------------------- */
/* The properties                                                                            */
/* ---------------------------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double fz_before(void) {
  for (int i = 0; i < S.nbufs; i++) memcpy(S.bufs[i].snap, S.bufs[i].mem, S.bufs[i].size);
  dlk_context_clear_error(S.ctx);
  return now_s();
}

/* After a call: status in the table, time, message, and what it wrote. `op` says the call
   is an op (explain mode: writes nothing). outs: the call's outputs, NULL-terminated. */
static void fz_after(const char *call, double t0, dlk_status s, int op, dlk_tensor *const *outs) {
  double took = now_s() - t0;
  if (S.verbose) fprintf(stderr, "  %s -> %s %s\n", call, dlk_status_string(s), dlk_context_last_error(S.ctx));
  if (took > FZ_TIME_LIMIT_S) {
    fprintf(stderr, "fuzz_api: %s took %.2f s\n", call, took);
    abort();
  }
  if ((int)s < 0 || s >= DLK_STATUS_COUNT) fz_die("status outside the table", call);
  for (int i = 0; i < S.nbufs; i++) memset(S.bufs[i].mark, 0, S.bufs[i].size);
  if (s != DLK_OK) {
    if (dlk_context_last_error(S.ctx)[0] == '\0') fz_die("refused without a message", call);
  } else if (!(op && S.explain)) {
    for (int i = 0; outs[i] != (dlk_tensor *)-1; i++)
      if (outs[i]) for_each_elem(outs[i], mark_elem, NULL);
  }
  for (int i = 0; i < S.nbufs; i++) {
    const fz_buf *b = &S.bufs[i];
    for (size_t k = 0; k < b->size; k++) {
      if (b->mem[k] == b->snap[k] || b->mark[k]) continue;
      fprintf(stderr, "fuzz_api: %s -> %s wrote byte %zu of buffer %d (%zu bytes, guard %d) %s\n", call,
              dlk_status_string(s), k, i, b->size, FZ_GUARD,
              s != DLK_OK ? "although it refused" : S.explain && op ? "in explain mode" : "outside its outputs");
      fz_die("wrote where it must not", call);
    }
  }
}

#define FZ_OUTS(...) ((dlk_tensor *const[]){__VA_ARGS__, (dlk_tensor *)-1})
/* Run `call` into status_var and check it; the outputs (writable elements) follow. An op
   call (FZ_OP) writes nothing in explain mode; a helper call (FZ_HELPER) is not an op.
   Every argument must be decoded before: the call reads no input. */
#define FZ_CALL(is_op, status_var, call, ...)                         \
  do {                                                                \
    double t0_ = fz_before();                                         \
    status_var = (call);                                              \
    fz_after(#call, t0_, status_var, is_op, FZ_OUTS(__VA_ARGS__));    \
  } while (0)
#define FZ_OP(status_var, call, ...) FZ_CALL(1, status_var, call, __VA_ARGS__)
#define FZ_HELPER(status_var, call, ...) FZ_CALL(0, status_var, call, __VA_ARGS__)

/* A struct the call may fill only on success: compare with its sentinel after a refusal. */
static void fz_untouched(const void *p, const void *sentinel, size_t n, dlk_status s, const char *call) {
  if (s != DLK_OK && memcmp(p, sentinel, n) != 0) fz_die("refused but changed its out-struct", call);
}

/* Every element of view addresses the bytes of an element of `of`. */
typedef struct addr_set {
  uintptr_t a[FZ_MAX_ELEMS];
  int n;
} addr_set;
static void collect(const dlk_tensor *t, int64_t off, void *user) {
  addr_set *s = user;
  if (s->n < FZ_MAX_ELEMS) s->a[s->n++] = elem_addr(t, off);
}
static int cmp_addr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}
static addr_set view_of_set, view_set;
static void check_view(const dlk_tensor *view, const dlk_tensor *of, const char *call) {
  view_of_set.n = view_set.n = 0;
  for_each_elem(of, collect, &view_of_set);
  for_each_elem(view, collect, &view_set);
  qsort(view_of_set.a, (size_t)view_of_set.n, sizeof(uintptr_t), cmp_addr);
  for (int i = 0; i < view_set.n; i++)
    if (!bsearch(&view_set.a[i], view_of_set.a, (size_t)view_of_set.n, sizeof(uintptr_t), cmp_addr))
      fz_die("a view addresses memory outside the elements it views", call);
  if (view->dtype != of->dtype) fz_die("a view changed the dtype", call);
}

/* The harness's own idea of a well-formed, backed descriptor (what validate accepts). */
static bool fz_well_formed(const dlk_tensor *t, bool backed) {
  if ((unsigned)t->dtype >= DLK_DTYPE_COUNT || t->ndim < 0 || t->ndim > DLK_MAX_DIMS) return false;
  if (!(t->device.type == DLK_CPU && t->device.id == 0) && !(t->device.type == DLK_CUDA && t->device.id >= 0))
    return false;
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] < 0 || t->strides[k] < 0) return false;
  if (t->data && (uintptr_t)t->data % dlk_dtype_size(t->dtype)) return false;
  int64_t lo, hi, numel;
  if (!addressed(t, &lo, &hi, &numel)) return numel == 0;
  if (!backed) return t->data != NULL;
  /* non-empty: every byte of it inside one of the harness's buffers */
  return buf_at((uintptr_t)t->data + (uintptr_t)lo) >= 0 &&
         buf_at((uintptr_t)t->data + (uintptr_t)lo) == buf_at((uintptr_t)t->data + (uintptr_t)(hi - 1));
}

/* ---------------------------------------------------------------------------------------- */
/* nn entries                                                                                */
/* ---------------------------------------------------------------------------------------- */

#define F S.fdt
static dlk_dtype stat_dt(void) { return S.fdt == DLK_F64 ? DLK_F64 : DLK_F32; }

/* x [..., C]: 2-D [R, C] or, when the byte says so, 3-D [B, R, C]. */
static fz_spec rows_spec(dlk_dtype dt, int batched, int64_t B, int64_t R, int64_t C) {
  return batched ? spec3(dt, B, R, C) : spec2(dt, R, C);
}
static int64_t sat_mul(int64_t a, int64_t b);
static int64_t rows_of(int batched, int64_t B, int64_t R) { return batched ? sat_mul(B, R) : R; }

static void e_gemm(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1, shared = in_u8() & 1;
  int64_t M = in_dim(), K = in_dim(), N = in_dim(), B = batched ? in_dim() : 1;
  dlk_gemm_params p;
  p.alpha = in_dbl(1.0);
  p.beta = in_dbl(0.0);
  const dlk_gemm_params *pp = in_params(&p);
  fz_spec sa = batched ? spec3(F, B, M, K) : spec2(F, M, K);
  fz_spec sb = batched && !shared ? spec3(F, B, K, N) : spec2(F, K, N);
  fz_spec sc = batched ? spec3(F, B, M, N) : spec2(F, M, N);
  dlk_tensor *a = fz_tensor(&sa), *b = fz_tensor(&sb), *c = fz_tensor(&sc);
  FZ_OP(st, dlk_gemm(S.ctx, pp, a, b, c), c);
}

static void e_linear_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), I = in_dim(), O = in_dim();
  dlk_linear_params p = {(dlk_activation)in_enum(DLK_ACT_RELU)};
  const dlk_linear_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, I), sw = spec2(F, O, I), sb = spec1(F, O), sy = rows_spec(F, batched, B, R, O);
  dlk_tensor *x = fz_tensor(&sx), *w = fz_tensor(&sw);
  dlk_tensor *b = in_u8() & 1 ? NULL : fz_tensor(&sb);
  dlk_tensor *y = fz_tensor(&sy);
  dlk_tensor *z = in_u8() & 1 ? NULL : fz_tensor(&sy);
  FZ_OP(st, dlk_linear_forward(S.ctx, pp, x, w, b, y, z), y, z);
}

static void e_linear_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), I = in_dim(), O = in_dim();
  dlk_linear_params p = {(dlk_activation)in_enum(DLK_ACT_TANH)};
  const dlk_linear_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, I), sw = spec2(F, O, I), sy = rows_spec(F, batched, B, R, O),
          sb = spec1(F, O);
  dlk_tensor *x = fz_tensor(&sx), *w = fz_tensor(&sw);
  dlk_tensor *z = in_u8() & 1 ? NULL : fz_tensor(&sy);
  dlk_tensor *dy = fz_tensor(&sy);
  uint8_t want = in_u8();
  dlk_tensor *dx = want & 1 ? NULL : fz_tensor(&sx);
  dlk_tensor *dw = want & 2 ? NULL : fz_tensor(&sw);
  dlk_tensor *db = want & 4 ? NULL : fz_tensor(&sb);
  FZ_OP(st, dlk_linear_backward(S.ctx, pp, x, w, z, dy, dx, dw, db), dx, dw, db);
}

static void e_bias_act_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), C = in_dim();
  dlk_bias_act_params p;
  p.act = (dlk_activation)in_enum(DLK_ACT_GELU);
  const dlk_bias_act_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, C), sb = spec1(F, C);
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *bias = in_u8() & 1 ? NULL : fz_tensor(&sb);
  dlk_tensor *y = fz_tensor(&sx); /* data mode "alias exactly" gives the in-place call */
  FZ_OP(st, dlk_bias_act_forward(S.ctx, pp, x, bias, y), y);
}

static void e_bias_act_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), C = in_dim();
  dlk_bias_act_params p;
  p.act = (dlk_activation)in_enum(DLK_ACT_SIGMOID);
  const dlk_bias_act_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, C), sb = spec1(F, C);
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *bias = in_u8() & 1 ? NULL : fz_tensor(&sb);
  dlk_tensor *dy = fz_tensor(&sx), *dx = fz_tensor(&sx);
  dlk_tensor *dbias = in_u8() & 1 ? NULL : fz_tensor(&sb);
  FZ_OP(st, dlk_bias_act_backward(S.ctx, pp, x, bias, dy, dx, dbias), dx, dbias);
}

static void e_softmax_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), C = in_dim();
  dlk_softmax_params p = {in_enum(0)};
  const dlk_softmax_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, C);
  dlk_tensor *x = fz_tensor(&sx), *y = fz_tensor(&sx);
  FZ_OP(st, dlk_softmax_forward(S.ctx, pp, x, y), y);
}

static void e_softmax_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), C = in_dim();
  dlk_softmax_params p = {in_enum(1)};
  const dlk_softmax_params *pp = in_params(&p);
  fz_spec sx = rows_spec(F, batched, B, R, C);
  dlk_tensor *y = fz_tensor(&sx), *dy = fz_tensor(&sx), *dx = fz_tensor(&sx);
  FZ_OP(st, dlk_softmax_backward(S.ctx, pp, y, dy, dx), dx);
}

/* loss / dloss: [N] for NONE, [] or [1] otherwise. */
static fz_spec loss_spec(dlk_reduction red, int64_t N) {
  if (red == DLK_REDUCE_NONE) return spec1(stat_dt(), N);
  return in_u8() & 1 ? spec1(stat_dt(), 1) : (fz_spec){stat_dt(), 0, {0}, 0};
}

static void e_cross_entropy_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim();
  dlk_cross_entropy_params p;
  p.reduction = (dlk_reduction)in_enum(DLK_REDUCE_MEAN);
  p.ignore_index = in_i64(-100);
  const dlk_cross_entropy_params *pp = in_params(&p);
  fz_spec sl = spec2(F, N, C), stg = spec1(in_index_dtype(), N), sloss = loss_spec(p.reduction, N),
          slse = spec1(stat_dt(), N);
  stg.vmax = C;
  dlk_tensor *logits = fz_tensor(&sl), *targets = fz_tensor(&stg), *loss = fz_tensor(&sloss);
  dlk_tensor *lse = in_u8() & 1 ? NULL : fz_tensor(&slse);
  FZ_OP(st, dlk_cross_entropy_forward(S.ctx, pp, logits, targets, loss, lse), loss, lse);
}

static void e_cross_entropy_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim();
  dlk_cross_entropy_params p;
  p.reduction = (dlk_reduction)in_enum(DLK_REDUCE_SUM);
  p.ignore_index = in_i64(-100);
  const dlk_cross_entropy_params *pp = in_params(&p);
  fz_spec sl = spec2(F, N, C), stg = spec1(in_index_dtype(), N), sloss = loss_spec(p.reduction, N);
  stg.vmax = C;
  dlk_tensor *logits = fz_tensor(&sl), *targets = fz_tensor(&stg), *dloss = fz_tensor(&sloss),
             *dlogits = fz_tensor(&sl);
  FZ_OP(st, dlk_cross_entropy_backward(S.ctx, pp, logits, targets, dloss, dlogits), dlogits);
}

/* ids [N] or [N0, N1]; rows [ids..., D]. */
static void embedding_specs(int64_t V, int64_t D, fz_spec *ids, fz_spec *rows, fz_spec *table) {
  int two = in_u8() & 1;
  int64_t N0 = in_dim(), N1 = in_dim();
  dlk_dtype idt = in_index_dtype();
  *ids = two ? spec2(idt, N0, N1) : spec1(idt, N0);
  ids->vmax = V;
  *rows = two ? spec3(F, N0, N1, D) : spec2(F, N0, D);
  *table = spec2(F, V, D);
}

static void e_embedding_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t V = in_dim(), D = in_dim();
  dlk_embedding_params p = {in_i64(-1)};
  const dlk_embedding_params *pp = in_params(&p);
  fz_spec si, so, stb;
  embedding_specs(V, D, &si, &so, &stb);
  dlk_tensor *ids = fz_tensor(&si), *table = fz_tensor(&stb), *out = fz_tensor(&so);
  FZ_OP(st, dlk_embedding_forward(S.ctx, pp, ids, table, out), out);
}

static void e_embedding_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t V = in_dim(), D = in_dim();
  dlk_embedding_params p = {in_i64(-1)};
  const dlk_embedding_params *pp = in_params(&p);
  fz_spec si, so, stb;
  embedding_specs(V, D, &si, &so, &stb);
  dlk_tensor *ids = fz_tensor(&si), *dout = fz_tensor(&so), *dtable = fz_tensor(&stb);
  FZ_OP(st, dlk_embedding_backward(S.ctx, pp, ids, dout, dtable), dtable);
}

static void e_layernorm_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), D = in_dim();
  dlk_layernorm_params p = {in_dbl(1e-5)};
  const dlk_layernorm_params *pp = in_params(&p);
  uint8_t opt = in_u8();
  fz_spec sx = rows_spec(F, batched, B, R, D), sg = spec1(F, D), ss = spec1(stat_dt(), rows_of(batched, B, R));
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *gamma = opt & 1 ? NULL : fz_tensor(&sg), *beta = opt & 2 ? NULL : fz_tensor(&sg);
  dlk_tensor *y = fz_tensor(&sx);
  dlk_tensor *mean = opt & 4 ? NULL : fz_tensor(&ss), *rstd = opt & 8 ? NULL : fz_tensor(&ss);
  FZ_OP(st, dlk_layernorm_forward(S.ctx, pp, x, gamma, beta, y, mean, rstd), y, mean, rstd);
}

static void e_layernorm_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int batched = in_u8() & 1;
  int64_t B = in_dim(), R = in_dim(), D = in_dim();
  dlk_layernorm_params p = {in_dbl(1e-5)};
  const dlk_layernorm_params *pp = in_params(&p);
  uint8_t opt = in_u8();
  fz_spec sx = rows_spec(F, batched, B, R, D), sg = spec1(F, D), ss = spec1(stat_dt(), rows_of(batched, B, R));
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *gamma = opt & 1 ? NULL : fz_tensor(&sg);
  dlk_tensor *mean = fz_tensor(&ss), *rstd = fz_tensor(&ss), *dy = fz_tensor(&sx);
  dlk_tensor *dx = opt & 2 ? NULL : fz_tensor(&sx);
  dlk_tensor *dgamma = opt & 4 ? NULL : fz_tensor(&sg), *dbeta = opt & 8 ? NULL : fz_tensor(&sg);
  FZ_OP(st, dlk_layernorm_backward(S.ctx, pp, x, gamma, mean, rstd, dy, dx, dgamma, dbeta), dx, dgamma, dbeta);
}

static void e_dropout(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int backward = in_u8() & 1, nd = 1 + in_u8() % 3;
  int64_t d0 = in_dim(), d1 = in_dim(), d2 = in_dim();
  dlk_dropout_params p;
  p.prob = in_dbl(0.25);
  p.seed = in_u64(7);
  p.offset = in_u64(0);
  const dlk_dropout_params *pp = in_params(&p);
  fz_spec sx = nd == 1 ? spec1(F, d0) : nd == 2 ? spec2(F, d0, d1) : spec3(F, d0, d1, d2);
  dlk_tensor *x = fz_tensor(&sx), *y = fz_tensor(&sx); /* alias exactly: in place */
  if (backward)
    FZ_OP(st, dlk_dropout_backward(S.ctx, pp, x, y), y);
  else
    FZ_OP(st, dlk_dropout_forward(S.ctx, pp, x, y), y);
}

/* Optimizer tensors: param's shape for all, 1-D or 2-D. */
static fz_spec flat_spec(dlk_dtype dt, int two, int64_t a, int64_t b) { return two ? spec2(dt, a, b) : spec1(dt, a); }

static void e_sgd_step(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int two = in_u8() & 1;
  int64_t a = in_dim(), b = in_dim();
  dlk_sgd_params p;
  p.lr = in_dbl(0.1);
  p.momentum = in_dbl(0.9);
  p.dampening = in_dbl(0.0);
  p.weight_decay = in_dbl(0.0);
  p.nesterov = in_enum(0);
  p.step = in_i64(1);
  const dlk_sgd_params *pp = in_params(&p);
  fz_spec sp = flat_spec(F, two, a, b), ss = flat_spec(stat_dt(), two, a, b);
  dlk_tensor *param = fz_tensor(&sp), *grad = fz_tensor(&sp);
  dlk_tensor *buf = in_u8() & 1 ? NULL : fz_tensor(&ss);
  FZ_OP(st, dlk_sgd_step(S.ctx, pp, param, grad, buf), param, buf);
}

static void e_adam_step(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int two = in_u8() & 1;
  int64_t a = in_dim(), b = in_dim();
  dlk_adam_params p;
  p.lr = in_dbl(1e-3);
  p.beta1 = in_dbl(0.9);
  p.beta2 = in_dbl(0.999);
  p.eps = in_dbl(1e-8);
  p.weight_decay = in_dbl(0.0);
  p.adamw = in_enum(0);
  p.step = in_i64(1);
  const dlk_adam_params *pp = in_params(&p);
  fz_spec sp = flat_spec(F, two, a, b), ss = flat_spec(stat_dt(), two, a, b);
  dlk_tensor *param = fz_tensor(&sp), *grad = fz_tensor(&sp), *m = fz_tensor(&ss), *v = fz_tensor(&ss);
  FZ_OP(st, dlk_adam_step(S.ctx, pp, param, grad, m, v), param, m, v);
}

static void e_adagrad_step(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int two = in_u8() & 1;
  int64_t a = in_dim(), b = in_dim();
  dlk_adagrad_params p;
  p.lr = in_dbl(0.01);
  p.lr_decay = in_dbl(0.0);
  p.weight_decay = in_dbl(0.0);
  p.eps = in_dbl(1e-10);
  p.step = in_i64(1);
  const dlk_adagrad_params *pp = in_params(&p);
  fz_spec sp = flat_spec(F, two, a, b), ss = flat_spec(stat_dt(), two, a, b);
  dlk_tensor *param = fz_tensor(&sp), *grad = fz_tensor(&sp), *sum = fz_tensor(&ss);
  FZ_OP(st, dlk_adagrad_step(S.ctx, pp, param, grad, sum), param, sum);
}

/* ---------------------------------------------------------------------------------------- */
/* glove entries                                                                             */
/* ---------------------------------------------------------------------------------------- */

static int cancel_flag;
static void on_progress(void *user, int64_t done, int64_t total, double cost) {
  (void)user, (void)done, (void)total, (void)cost;
}

/* One training epoch over records from host memory, the model's W and G as descriptors
   the caller made (any layout the decoder gives). */
static void e_glove_train_epoch(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t V = (in_u8() + 3) % 12, d = (in_u8() + 4) % 20;
  dlk_glove_model m;
  memset(&m, 0, sizeof m);
  m.vocab_size = in_u8() == 0 ? V : in_i64(V);
  m.dim = in_int((int)d);
  m.epoch = in_i64(0);
  fz_spec sw = spec2(in_u8() ? F : DLK_F64, 2 * V, d + 1);
  dlk_tensor *w = fz_tensor(&sw), *g = fz_tensor(&sw);
  if (w) m.params = *w;
  if (g) m.gradsq = *g;
  /* records: ids mostly in [1, V], counts mostly > 0 */
  int64_t n = (in_u8() + 8) % 65;
  dlk_glove_record recs[64];
  uint8_t bad = in_u8();
  for (int64_t i = 0; i < n; i++) {
    recs[i].w1 = (int32_t)(1 + (V > 0 ? rng_next() % (uint64_t)V : 0));
    recs[i].w2 = (int32_t)(1 + (V > 0 ? rng_next() % (uint64_t)V : 0));
    recs[i].x = rng_uniform(0.1, 50);
    if ((rng_next() & 255) < bad) {
      static const double xs[4] = {0.0, -1.0, NAN, INFINITY};
      static const int32_t ids[4] = {0, -1, INT32_MAX, 1000};
      if (rng_next() & 1) recs[i].x = xs[rng_next() & 3];
      else recs[i].w1 = ids[rng_next() & 3];
    }
  }
  dlk_glove_records_params rp;
  rp.vocab_size = in_i64(V);
  rp.max_resident_bytes = (size_t)in_i64(0);
  rp.chunk_records = in_i64(0);
  const dlk_glove_records_params *rpp = in_params(&rp);
  dlk_glove_records *r = NULL;
  dlk_status s;
  FZ_HELPER(s, dlk_glove_records_from_host(S.ctx, rpp, recs, n, &r), NULL);
  if (s != DLK_OK && r) fz_die("refused but returned a handle", "dlk_glove_records_from_host");
  dlk_glove_train_params tp;
  FZ_HELPER(s, dlk_glove_train_defaults(S.ctx, &tp), NULL);
  tp.eta = in_dbl(tp.eta);
  tp.alpha = in_dbl(tp.alpha);
  tp.x_max = in_dbl(tp.x_max);
  tp.grad_clip = in_dbl(tp.grad_clip);
  tp.keras = in_enum(0);
  tp.threads = in_int(1);
  uint8_t cb = in_u8();
  cancel_flag = cb & 2;
  tp.cancel = cb & 1 ? &cancel_flag : NULL;
  tp.progress = cb & 4 ? on_progress : NULL;
  dlk_glove_epoch_result res, res_sentinel;
  memset(&res, 0xA5, sizeof res);
  res_sentinel = res;
  const int64_t epoch = m.epoch;
  /* In explain mode the epoch is explained, not run: nothing may change. */
  FZ_OP(st, dlk_glove_train_epoch(S.ctx, &tp, &m, r, &res), w, g);
  fz_untouched(&res, &res_sentinel, sizeof res, S.explain ? DLK_ERR_INTERNAL : st, "train_epoch's result");
  if (m.epoch != epoch + (st == DLK_OK && !S.explain))
    fz_die("the model's epoch count is wrong after the call", "dlk_glove_train_epoch");
  dlk_glove_records_free(S.ctx, r);
}

static const char *fz_path(const char *name) {
  static char p[512];
  snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
  return p;
}

/* A vocabulary from a few tokens of text, then co-occurrence counting (method 2 by
   default: the glove_cooccur_chunk op) into a file in this process's directory. */
static void e_glove_cooccur(void) {
  dlk_status st = DLK_OK;
  (void)st;
  /* words of a few letters, every separator, NUL, UTF-8 and invalid bytes, "<unk>" */
  static const char alphabet[16] = {'a', 'b', 'c', ' ', '\n', 'd', '\t', '\r',
                                    'a', '\0', '\xc3', '\xa9', '\xff', '<', 'u', '>'};
  char text[96];
  size_t len = (in_u8() + 24) % sizeof text;
  uint8_t mask = in_u8() ? 15 : 7; /* the plain letters and separators unless asked */
  for (size_t i = 0; i < len; i++) text[i] = alphabet[rng_next() & mask];
  dlk_glove_vocab *v = NULL;
  dlk_status s;
  FZ_HELPER(s, dlk_glove_vocab_create(S.ctx, &v), NULL);
  if (s != DLK_OK) return;
  FZ_HELPER(s, dlk_glove_vocab_add_text(S.ctx, v, text, len), NULL);
  dlk_glove_vocab_params vp;
  vp.min_count = in_i64(1);
  vp.max_vocab = in_i64(0);
  FZ_HELPER(s, dlk_glove_vocab_finish(S.ctx, v, &vp), NULL);
  dlk_glove_cooccur_params cp;
  FZ_HELPER(s, dlk_glove_cooccur_defaults(S.ctx, &cp), NULL);
  cp.window = in_int(3);
  cp.symmetric = in_enum(1);
  cp.distance_weighting = in_enum(1);
  cp.memory_gb = in_dbl(0.01);
  cp.max_product = in_i64(0);
  cp.overflow_length = in_i64(0);
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s", fz_path("overflow"));
  cp.temp_prefix = prefix;
  cp.max_temp_files = in_int(0);
  cp.method = in_enum(2);
  cp.no_tool_quirks = in_enum(0);
  dlk_glove_cooccur *c = NULL;
  FZ_HELPER(s, dlk_glove_cooccur_create(S.ctx, &cp, v, &c), NULL);
  if (s == DLK_OK) {
    FZ_OP(st, dlk_glove_cooccur_add_text(S.ctx, c, text, len), NULL);
    char out[512];
    snprintf(out, sizeof out, "%s", fz_path("cooccur.bin"));
    FZ_OP(st, dlk_glove_cooccur_finish(S.ctx, c, out), NULL);
    dlk_glove_cooccur_stats st;
    FZ_HELPER(s, dlk_glove_cooccur_get_stats(S.ctx, c, &st), NULL);
    FZ_HELPER(s, dlk_glove_cooccur_free(S.ctx, c), NULL);
    unlink(out);
  }
  FZ_HELPER(s, dlk_glove_vocab_free(S.ctx, v), NULL);
}

static void e_glove_neighbours(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t V = in_dim(), D = in_dim();
  int64_t row = in_i64(0);
  int k = in_int(2);
  fz_spec sv = spec2(in_u8() ? F : DLK_F64, V, D);
  dlk_tensor *vec = fz_tensor(&sv);
  dlk_tensor *ids = fz_array(DLK_I32, k, 0), *sims = fz_array(DLK_F64, k, 0);
  FZ_OP(st, dlk_glove_neighbours(S.ctx, vec, row, k, ids ? ids->data : NULL, sims ? sims->data : NULL), ids,
        sims);
}

static void e_glove_analogy_predict(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t V = in_dim(), D = in_dim(), n = in_i64(3);
  dlk_glove_analogy_params p;
  p.batch = in_int(0);
  p.max_questions = in_int(0);
  const dlk_glove_analogy_params *pp = in_params(&p);
  fz_spec sv = spec2(in_u8() ? F : DLK_F64, V, D);
  dlk_tensor *vec = fz_tensor(&sv);
  dlk_tensor *a = fz_array(DLK_I32, n, V), *b = fz_array(DLK_I32, n, V), *c = fz_array(DLK_I32, n, V),
             *pred = fz_array(DLK_I32, n, 0);
  FZ_OP(st, dlk_glove_analogy_predict(S.ctx, pp, vec, a ? a->data : NULL, b ? b->data : NULL,
                                  c ? c->data : NULL, n, pred ? pred->data : NULL),
        pred);
}

/* ---------------------------------------------------------------------------------------- */
/* Tensor helper entries                                                                     */
/* ---------------------------------------------------------------------------------------- */

static fz_spec any_spec(void) {
  int nd = in_u8() % 4;
  int64_t d0 = in_dim(), d1 = in_dim(), d2 = in_dim();
  fz_spec s = nd == 0 ? (fz_spec){F, 0, {0}, 0} : nd == 1 ? spec1(F, d0) : nd == 2 ? spec2(F, d0, d1) : spec3(F, d0, d1, d2);
  return s;
}

static void e_copy(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *dst = fz_tensor(&s), *src = fz_tensor(&s);
  FZ_HELPER(st, dlk_tensor_copy(S.ctx, dst, src), dst);
}

static void e_zero(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *t = fz_tensor(&s);
  FZ_HELPER(st, dlk_tensor_zero(S.ctx, t), t);
}

/* The host side of write/read: `bytes` as the caller claims it, backed as claimed. */
static dlk_tensor *host_side(const dlk_tensor *t, size_t *bytes) {
  int64_t n = t ? dlk_tensor_numel(t) : 0;
  int64_t want = n * (int64_t)es_of(t ? t->dtype : DLK_U8);
  uint8_t b = in_u8();
  int64_t claim = b == 0 ? want : b == 1 ? want + 1 : b == 2 ? want - 1 : b == 3 ? 0 : want;
  if (claim < 0) claim = 0;
  *bytes = b == 4 ? SIZE_MAX : (size_t)claim;
  return fz_array(DLK_U8, claim, 0);
}

static void e_write(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *t = fz_tensor(&s);
  size_t bytes;
  dlk_tensor *h = host_side(t, &bytes);
  const void *hp = h ? h->data : NULL;
  FZ_HELPER(st, dlk_tensor_write(S.ctx, t, hp, bytes), t);
}

static void e_read(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *t = fz_tensor(&s);
  size_t bytes;
  dlk_tensor *h = host_side(t, &bytes);
  FZ_HELPER(st, dlk_tensor_read(S.ctx, t, h ? h->data : NULL, bytes), h);
}

static dlk_tensor view_sentinel_init(void) {
  dlk_tensor v;
  memset(&v, 0x5A, sizeof v);
  return v;
}

static void e_views(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *t = fz_tensor(&s);
  int which = in_u8() % 3;
  dlk_tensor view = view_sentinel_init(), sentinel = view;
  const char *call = which == 0 ? "dlk_tensor_slice" : which == 1 ? "dlk_tensor_transpose" : "dlk_tensor_reshape";
  if (which == 0) {
    int dim = in_enum(0);
    int64_t start = in_i64(0), len = in_i64(1);
    dlk_tensor *vp = in_u8() == 0xFF ? NULL : &view;
    FZ_HELPER(st, dlk_tensor_slice(S.ctx, vp, t, dim, start, len), NULL);
  } else if (which == 1) {
    int d0 = in_enum(0), d1 = in_enum(1);
    dlk_tensor *vp = in_u8() == 0xFF ? NULL : &view;
    FZ_HELPER(st, dlk_tensor_transpose(S.ctx, vp, t, d0, d1), NULL);
  } else {
    int nd = in_u8() == 0 ? 1 : in_enum(1);
    int64_t shape[DLK_MAX_DIMS];
    int64_t n = t ? dlk_tensor_numel(t) : 0;
    shape[0] = n;
    for (int k = 1; k < DLK_MAX_DIMS; k++) shape[k] = in_u8() ? in_dim() : 1;
    if (nd > 1 && in_u8() == 0) { /* a valid split of n over two dims when one exists */
      shape[0] = n % 2 == 0 && n ? n / 2 : n;
      shape[1] = n % 2 == 0 && n ? 2 : 1;
    }
    const int64_t *sp = in_u8() == 0xFF ? NULL : shape;
    FZ_HELPER(st, dlk_tensor_reshape(S.ctx, &view, t, nd, sp), NULL);
  }
  fz_untouched(&view, &sentinel, sizeof view, st, call);
  if (st == DLK_OK) {
    if (!t) fz_die("a view of a NULL tensor", call);
    check_view(&view, t, call);
    dlk_status v;
    FZ_HELPER(v, dlk_tensor_validate(S.ctx, &view, "view"), NULL);
    if (v != DLK_OK) fz_die("a view that does not validate", call);
  }
}

static void e_validate(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *t = fz_tensor(&s);
  const char *name = in_u8() == 0xFF ? NULL : "t";
  FZ_HELPER(st, dlk_tensor_validate(S.ctx, t, name), NULL);
  if (st == DLK_OK && (!t || !fz_well_formed(t, true)))
    fz_die("validate accepted a descriptor that is not well formed and backed", "dlk_tensor_validate");
}

static void e_init(void) {
  dlk_status st = DLK_OK;
  (void)st;
  fz_spec s = any_spec();
  dlk_tensor *backing = fz_tensor(&s); /* its data, contiguous if the decoder left it so */
  dlk_dtype dt = backing ? backing->dtype : F;
  dlk_device dev = backing ? backing->device : (dlk_device){DLK_CPU, 0};
  int nd = backing ? backing->ndim : in_enum(2);
  int64_t shape[DLK_MAX_DIMS] = {0};
  if (backing) memcpy(shape, backing->shape, sizeof shape);
  dlk_tensor out, sentinel;
  memset(&out, 0x3C, sizeof out);
  sentinel = out;
  void *data = backing ? backing->data : NULL;
  dlk_tensor *op = in_u8() == 0xFF ? NULL : &out;
  const int64_t *sp = in_u8() == 0xFF ? NULL : shape;
  FZ_HELPER(st, dlk_tensor_init(S.ctx, op, data, dt, dev, nd, sp), NULL);
  fz_untouched(&out, &sentinel, sizeof out, st, "dlk_tensor_init");
  /* init trusts the caller for the extent of the memory; the rest it must check */
  if (st == DLK_OK && (!dlk_tensor_is_contiguous(&out) || !fz_well_formed(&out, false)) &&
      (fz_describe("out", &out), 1))
    fz_die("init made a strided, misaligned or malformed descriptor", "dlk_tensor_init");
}

static void e_alloc(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int nd = in_enum(2);
  int64_t shape[DLK_MAX_DIMS];
  for (int k = 0; k < DLK_MAX_DIMS; k++) shape[k] = in_dim();
  dlk_dtype dt = in_u8() < 0xF0 ? F : (dlk_dtype)in_enum(0);
  /* The caller asks for at most FZ_MAX_BYTES (more is a real request for memory, which the
     malloc limit would report), or for an empty tensor whatever its other dims. */
  int64_t bytes = (int64_t)es_of(dt);
  bool empty = false;
  for (int k = 0; k < nd && k < DLK_MAX_DIMS; k++) {
    if (shape[k] == 0) empty = true;
    if (shape[k] > 0) bytes = sat_mul(bytes, shape[k]);
  }
  if (!empty && bytes > FZ_MAX_BYTES) return;
  dlk_tensor t, sentinel;
  memset(&t, 0x77, sizeof t);
  sentinel = t;
  FZ_HELPER(st, dlk_tensor_alloc(S.ctx, &t, dt, nd, shape), NULL);
  fz_untouched(&t, &sentinel, sizeof t, st, "dlk_tensor_alloc");
  if (st == DLK_OK) {
    dlk_status v;
    FZ_HELPER(v, dlk_tensor_validate(S.ctx, &t, "allocated"), NULL);
    if (v != DLK_OK) fz_die("alloc gave a tensor that does not validate", "dlk_tensor_alloc");
    FZ_HELPER(v, dlk_tensor_free(S.ctx, &t), NULL);
  }
}

static void e_dlpack(void) {
  dlk_status st = DLK_OK;
  (void)st;
  /* Import: a DLTensor the caller describes; the memory it addresses (data + byte_offset
     + its strides) is real, wherever the wrapped pointer arithmetic puts `data`. */
  DLManagedTensorVersioned m;
  memset(&m, 0, sizeof m);
  uint8_t vb = in_u8();
  m.version.major = vb == 0 ? DLPACK_MAJOR_VERSION : (uint32_t)in_i64(2);
  m.version.minor = in_u8();
  m.flags = in_u64(0);
  int writable = in_enum(0);
  DLTensor *d = &m.dl_tensor;
  uint8_t db = in_u8();
  d->device.device_type = db == 0 ? kDLCPU : (DLDeviceType)(db % 20);
  d->device.device_id = in_int(0);
  d->ndim = in_u8() == 0 ? 2 : in_int(2);
  static const DLDataType dls[4] = {{kDLFloat, 32, 1}, {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}, {kDLFloat, 64, 1}};
  d->dtype = dls[S.fdt];
  uint8_t tb = in_u8();
  if (tb) {
    d->dtype.code = (uint8_t)(tb % 20);
    d->dtype.bits = in_u8();
    d->dtype.lanes = (uint16_t)(in_u8() % 3);
  }
  int64_t shape[DLK_MAX_DIMS], strides[DLK_MAX_DIMS];
  for (int k = 0; k < DLK_MAX_DIMS; k++) shape[k] = in_dim();
  int nd = d->ndim >= 0 && d->ndim <= DLK_MAX_DIMS ? d->ndim : 0;
  int64_t s = 1;
  for (int k = nd - 1; k >= 0; k--) strides[k] = s, s = sat_mul(s, shape[k] > 0 ? shape[k] : 1);
  uint8_t sb = in_u8();
  if (sb & 1)
    for (int k = 0; k < nd; k++) strides[k] = in_stride();
  d->shape = in_u8() == 0xFF ? NULL : shape;
  d->strides = sb & 2 ? NULL : strides;
  d->byte_offset = in_u64(0);
  /* back what it addresses */
  fz_arg *ft = &S.tens[S.ntens];
  memset(ft, 0, sizeof *ft);
  ft->t.dtype = d->dtype.bits == 64 ? DLK_F64 : d->dtype.bits == 32 ? DLK_F32 : d->dtype.bits == 16 ? DLK_F16 : DLK_U8;
  ft->t.ndim = nd;
  memcpy(ft->t.shape, shape, sizeof shape);
  int64_t c = 1; /* no strides: compact row-major */
  for (int k = nd - 1; k >= 0; k--) {
    ft->t.strides[k] = d->strides ? strides[k] : c;
    c = sat_mul(c, shape[k] > 0 ? shape[k] : 1);
  }
  int64_t lo, hi, numel;
  bool has = addressed(&ft->t, &lo, &hi, &numel);
  if (has && (numel > FZ_MAX_ELEMS || hi - lo > FZ_MAX_BYTES)) return; /* not memory a caller has */
  if (!has && numel > 0) return;
  size_t mis = in_u8() % 4 == 3 ? 1 + in_u8() % 7 : 0;
  int bi = buf_new((size_t)(hi - lo) + mis);
  if (bi < 0) return;
  ft->buf = bi;
  uintptr_t real = (uintptr_t)S.bufs[bi].mem + FZ_GUARD - (uintptr_t)lo + mis;
  ft->t.data = (void *)real;
  S.ntens++;
  uint8_t nb = in_u8();
  d->data = nb == 0xFF ? NULL : (void *)(real - (uintptr_t)d->byte_offset);
  dlk_tensor out, sentinel;
  memset(&out, 0x6B, sizeof out);
  sentinel = out;
  dlk_tensor *op = in_u8() == 0xFF ? NULL : &out;
  const DLManagedTensorVersioned *mp = in_u8() == 0xFF ? NULL : &m;
  FZ_HELPER(st, dlk_tensor_from_dlpack(S.ctx, op, mp, writable), NULL);
  fz_untouched(&out, &sentinel, sizeof out, st, "dlk_tensor_from_dlpack");
  if (st == DLK_OK) {
    /* the view addresses only elements of what the caller described (same element size) */
    dlk_tensor described = ft->t;
    described.dtype = out.dtype;
    check_view(&out, &described, "dlk_tensor_from_dlpack");
    /* export it again and compare */
    DLManagedTensorVersioned *e = (DLManagedTensorVersioned *)(uintptr_t)0x1234;
    FZ_HELPER(st, dlk_tensor_to_dlpack(S.ctx, &out, &e), NULL);
    if (st != DLK_OK && e != (DLManagedTensorVersioned *)(uintptr_t)0x1234) fz_die("refused but set *out", "to_dlpack");
    if (st == DLK_OK) {
      if (e->dl_tensor.data != out.data || e->dl_tensor.ndim != out.ndim || !e->deleter)
        fz_die("export does not describe the tensor", "dlk_tensor_to_dlpack");
      for (int k = 0; k < out.ndim; k++)
        if (e->dl_tensor.shape[k] != out.shape[k] || e->dl_tensor.strides[k] != out.strides[k])
          fz_die("export has other shape or strides", "dlk_tensor_to_dlpack");
      e->deleter(e);
    }
  }
}

/* ---------------------------------------------------------------------------------------- */
/* conv entries: conv2d, Gram, pooling, adaptive pooling, batch norm, MSE                    */
/* ---------------------------------------------------------------------------------------- */

static fz_spec spec4(dlk_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  return (fz_spec){dt, 4, {d0, d1, d2, d3}, 0};
}

/* The harness's own output size of a convolution or pooling dim (torch's formula, in 128
   bits so that hostile parameters cannot overflow here), or 1 when the parameters are
   not sane (the call is refused anyway; the shape only has to be something). */
static int64_t fz_out_dim(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode) {
  if (in < 0 || k < 1 || s < 1 || p < 0 || d < 1 || in > (INT64_C(1) << 62) || k > (INT64_C(1) << 40) ||
      s > (INT64_C(1) << 40) || p > (INT64_C(1) << 40) || d > (INT64_C(1) << 40))
    return 1;
  __int128 num = (__int128)in + 2 * (__int128)p - (__int128)d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  __int128 q = num >= 0 ? num / s : -((-num + s - 1) / s);
  __int128 out = q + 1;
  if (ceil_mode && out > 0 && (out - 1) * s >= (__int128)in + p) out--;
  return out < 1 ? 1 : out > INT64_MAX ? INT64_MAX : (int64_t)out;
}

/* A normalised size parameter for the harness's shapes: v, or `zero_means` for 0. */
static int64_t fz_norm(int64_t v, int64_t zero_means) { return v == 0 ? zero_means : v; }

typedef struct conv_case {
  dlk_conv2d_params p;
  const dlk_conv2d_params *pp;
  fz_spec sx, sw, sb, sy;
} conv_case;

/* x [N, G*Cg, H, W], w [G*Kg, Cg, R, S], y [N, G*Kg, Ho, Wo] for the decoded params. */
static void conv_decode(conv_case *c) {
  int64_t N = in_dim(), Cg = in_dim(), H = in_dim(), W = in_dim(), Kg = in_dim(), R = in_dim(), Sk = in_dim();
  dlk_conv2d_params *p = &c->p;
  p->stride[0] = in_i64(1);
  p->stride[1] = in_i64(1);
  p->padding[0] = in_i64(0);
  p->padding[1] = in_i64(0);
  p->dilation[0] = in_i64(1);
  p->dilation[1] = in_i64(1);
  p->groups = in_i64(1);
  p->act = (dlk_activation)in_enum(DLK_ACT_NONE);
  c->pp = in_params(p);
  const int64_t G = p->groups >= 1 && p->groups <= 8 ? p->groups : 1;
  const int64_t C = sat_mul(G, Cg), K = sat_mul(G, Kg);
  const int64_t Ho = fz_out_dim(H, R, fz_norm(p->stride[0], 1), p->padding[0], fz_norm(p->dilation[0], 1), 0);
  const int64_t Wo = fz_out_dim(W, Sk, fz_norm(p->stride[1], 1), p->padding[1], fz_norm(p->dilation[1], 1), 0);
  c->sx = spec4(F, N, C, H, W);
  c->sw = spec4(F, K, Cg, R, Sk);
  c->sb = spec1(F, K);
  c->sy = spec4(F, N, K, Ho, Wo);
}

static void e_conv2d_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  conv_case c;
  conv_decode(&c);
  dlk_tensor *x = fz_tensor(&c.sx), *w = fz_tensor(&c.sw);
  dlk_tensor *b = in_u8() & 1 ? NULL : fz_tensor(&c.sb);
  dlk_tensor *y = fz_tensor(&c.sy), *z = in_u8() & 1 ? NULL : fz_tensor(&c.sy);
  FZ_OP(st, dlk_conv2d_forward(S.ctx, c.pp, x, w, b, y, z), y, z);
}

static void e_conv2d_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  conv_case c;
  conv_decode(&c);
  uint8_t want = in_u8();
  dlk_tensor *x = fz_tensor(&c.sx), *w = fz_tensor(&c.sw);
  dlk_tensor *z = want & 8 ? NULL : fz_tensor(&c.sy);
  dlk_tensor *dy = fz_tensor(&c.sy);
  dlk_tensor *dx = want & 1 ? NULL : fz_tensor(&c.sx);
  dlk_tensor *dw = want & 2 ? NULL : fz_tensor(&c.sw);
  dlk_tensor *db = want & 4 ? NULL : fz_tensor(&c.sb);
  FZ_OP(st, dlk_conv2d_backward(S.ctx, c.pp, x, w, z, dy, dx, dw, db), dx, dw, db);
}

/* The pure output-size helper: no undefined behaviour for any argument, and when it says
   >= 1 it is the formula (computed here in 128 bits). */
static void e_conv2d_output_dim(void) {
  int64_t in = in_u8() ? in_dim() : 5, k = in_i64(3), s = in_i64(1), p = in_i64(0), d = in_i64(1);
  int64_t got = dlk_conv2d_output_dim(in, k, s, p, d);
  if (S.verbose) fprintf(stderr, "  dlk_conv2d_output_dim(%lld, %lld, %lld, %lld, %lld) = %lld\n", (long long)in,
                         (long long)k, (long long)s, (long long)p, (long long)d, (long long)got);
  if (got < 1) return;
  const int64_t s1 = fz_norm(s, 1), d1 = fz_norm(d, 1);
  if (in < 0 || k < 1 || s1 < 1 || p < 0 || d1 < 1) fz_die("a size for negative arguments", "dlk_conv2d_output_dim");
  __int128 num = (__int128)in + 2 * (__int128)p - (__int128)d1 * (k - 1) - 1;
  if (num < 0 || (__int128)got != num / s1 + 1) fz_die("a size other than the formula's", "dlk_conv2d_output_dim");
}

static void e_gram_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim();
  dlk_gram_params p;
  p.norm = (dlk_gram_norm)in_enum(DLK_GRAM_NONE);
  const dlk_gram_params *pp = in_params(&p);
  fz_spec sf = spec4(F, N, C, H, W), sg = spec3(F, N, C, C);
  dlk_tensor *f = fz_tensor(&sf), *g = fz_tensor(&sg);
  FZ_OP(st, dlk_gram_forward(S.ctx, pp, f, g), g);
}

static void e_gram_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim();
  dlk_gram_params p;
  p.norm = (dlk_gram_norm)in_enum(DLK_GRAM_HW);
  const dlk_gram_params *pp = in_params(&p);
  fz_spec sf = spec4(F, N, C, H, W), sg = spec3(F, N, C, C);
  dlk_tensor *f = fz_tensor(&sf), *dg = fz_tensor(&sg), *df = fz_tensor(&sf);
  FZ_OP(st, dlk_gram_backward(S.ctx, pp, f, dg, df), df);
}

/* Pooling params and x [N, C, H, W] -> y [N, C, OH, OW] as torch sizes them. */
static void pool_decode(dlk_pool2d_params *p, const dlk_pool2d_params **pp, fz_spec *sx, fz_spec *sy) {
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim();
  p->kind = (dlk_pool_kind)in_enum(DLK_POOL_MAX);
  for (int d = 0; d < 2; d++) {
    p->kernel[d] = in_i64(2);
    p->stride[d] = in_i64(0);
    p->padding[d] = in_i64(0);
    p->dilation[d] = in_i64(0);
  }
  p->ceil_mode = in_enum(0);
  p->count_include_pad = in_enum(0);
  *pp = in_params(p);
  int64_t out[2];
  const int64_t in[2] = {H, W};
  for (int d = 0; d < 2; d++)
    out[d] = fz_out_dim(in[d], p->kernel[d], fz_norm(p->stride[d], p->kernel[d]), p->padding[d],
                        fz_norm(p->dilation[d], 1), p->ceil_mode != 0);
  *sx = spec4(F, N, C, H, W);
  *sy = spec4(F, N, C, out[0], out[1]);
}

static void e_pool2d_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_pool2d_params p;
  const dlk_pool2d_params *pp;
  fz_spec sx, sy;
  pool_decode(&p, &pp, &sx, &sy);
  dlk_tensor *x = fz_tensor(&sx), *y = fz_tensor(&sy);
  FZ_OP(st, dlk_pool2d_forward(S.ctx, pp, x, y), y);
}

static void e_pool2d_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_pool2d_params p;
  const dlk_pool2d_params *pp;
  fz_spec sx, sy;
  pool_decode(&p, &pp, &sx, &sy);
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *y = in_u8() & 1 ? NULL : fz_tensor(&sy);
  dlk_tensor *dy = fz_tensor(&sy), *dx = fz_tensor(&sx);
  FZ_OP(st, dlk_pool2d_backward(S.ctx, pp, x, y, dy, dx), dx);
}

static void e_adaptive_avg_pool2d_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim(), OH = in_dim(), OW = in_dim();
  fz_spec sx = spec4(F, N, C, H, W), sy = spec4(F, N, C, OH, OW);
  dlk_tensor *x = fz_tensor(&sx), *y = fz_tensor(&sy);
  FZ_OP(st, dlk_adaptive_avg_pool2d_forward(S.ctx, x, y), y);
}

static void e_adaptive_avg_pool2d_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim(), OH = in_dim(), OW = in_dim();
  fz_spec sx = spec4(F, N, C, H, W), sy = spec4(F, N, C, OH, OW);
  dlk_tensor *dy = fz_tensor(&sy), *dx = fz_tensor(&sx);
  FZ_OP(st, dlk_adaptive_avg_pool2d_backward(S.ctx, dy, dx), dx);
}

/* x [N, C], [N, C, L] or [N, C, H, W]; per-channel vectors [C] in the statistics dtype. */
static void bn_decode(dlk_batchnorm_params *p, const dlk_batchnorm_params **pp, int training_def, fz_spec *sx,
                      fz_spec *sc) {
  int nd = 2 + (in_u8() + 2) % 3;
  int64_t N = in_dim(), C = in_dim(), H = in_dim(), W = in_dim();
  p->eps = in_dbl(1e-5);
  p->momentum = in_dbl(0.1);
  p->training = in_enum(training_def);
  *pp = in_params(p);
  *sx = nd == 2 ? spec2(F, N, C) : nd == 3 ? spec3(F, N, C, H) : spec4(F, N, C, H, W);
  *sc = spec1(stat_dt(), C);
}

static void e_batchnorm_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_batchnorm_params p;
  const dlk_batchnorm_params *pp;
  fz_spec sx, sc;
  bn_decode(&p, &pp, 1, &sx, &sc);
  uint8_t opt = in_u8();
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *gamma = opt & 1 ? NULL : fz_tensor(&sc), *beta = opt & 2 ? NULL : fz_tensor(&sc);
  dlk_tensor *rm = opt & 4 ? NULL : fz_tensor(&sc), *rv = opt & 8 ? NULL : fz_tensor(&sc);
  dlk_tensor *y = fz_tensor(&sx);
  dlk_tensor *sm = opt & 16 ? NULL : fz_tensor(&sc), *sr = opt & 32 ? NULL : fz_tensor(&sc);
  /* training writes the running statistics in place; inference only reads them */
  const bool training = !pp || pp->training != 0;
  FZ_OP(st, dlk_batchnorm_forward(S.ctx, pp, x, gamma, beta, rm, rv, y, sm, sr), y, sm, sr, training ? rm : NULL,
        training ? rv : NULL);
}

static void e_batchnorm_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_batchnorm_params p;
  const dlk_batchnorm_params *pp;
  fz_spec sx, sc;
  bn_decode(&p, &pp, 1, &sx, &sc);
  uint8_t opt = in_u8();
  dlk_tensor *x = fz_tensor(&sx);
  dlk_tensor *gamma = opt & 1 ? NULL : fz_tensor(&sc);
  dlk_tensor *sm = fz_tensor(&sc), *sr = fz_tensor(&sc), *dy = fz_tensor(&sx);
  dlk_tensor *dx = opt & 2 ? NULL : fz_tensor(&sx);
  dlk_tensor *dgamma = opt & 4 ? NULL : fz_tensor(&sc), *dbeta = opt & 8 ? NULL : fz_tensor(&sc);
  FZ_OP(st, dlk_batchnorm_backward(S.ctx, pp, x, gamma, sm, sr, dy, dx, dgamma, dbeta), dx, dgamma, dbeta);
}

/* x any shape (0 to 3 dims); loss as the reduction wants it. */
static void mse_decode(dlk_mse_params *p, const dlk_mse_params **pp, fz_spec *sx, fz_spec *sl) {
  *sx = any_spec();
  p->reduction = (dlk_reduction)in_enum(DLK_REDUCE_MEAN);
  *pp = in_params(p);
  const dlk_reduction red = *pp ? p->reduction : DLK_REDUCE_MEAN;
  if (red == DLK_REDUCE_NONE) {
    *sl = *sx;
    sl->dt = stat_dt();
  } else {
    *sl = loss_spec(red, 1);
  }
}

static void e_mse_loss_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_mse_params p;
  const dlk_mse_params *pp;
  fz_spec sx, sl;
  mse_decode(&p, &pp, &sx, &sl);
  dlk_tensor *x = fz_tensor(&sx), *target = fz_tensor(&sx), *loss = fz_tensor(&sl);
  FZ_OP(st, dlk_mse_loss_forward(S.ctx, pp, x, target, loss), loss);
}

static void e_mse_loss_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  dlk_mse_params p;
  const dlk_mse_params *pp;
  fz_spec sx, sl;
  mse_decode(&p, &pp, &sx, &sl);
  dlk_tensor *x = fz_tensor(&sx), *target = fz_tensor(&sx), *dloss = fz_tensor(&sl), *dx = fz_tensor(&sx);
  FZ_OP(st, dlk_mse_loss_backward(S.ctx, pp, x, target, dloss, dx), dx);
}

/* ---------------------------------------------------------------------------------------- */
/* attention entries: scaled-dot-product attention                                          */
/* ---------------------------------------------------------------------------------------- */

/* Lengths values decoded in [0, T) become [1, T] (the valid range), leaving the
   out-of-range specials the decoder mixes in out of range. */
static void length_in_range(const dlk_tensor *t, int64_t off, void *user) {
  (void)user;
  unsigned char *at = (unsigned char *)t->data + off * (int64_t)es_of(t->dtype);
  if (t->dtype == DLK_I32) {
    int32_t v;
    memcpy(&v, at, 4);
    if (v >= 0 && v < INT32_MAX) v++;
    memcpy(at, &v, 4);
  } else {
    int64_t v;
    memcpy(&v, at, 8);
    if (v >= 0 && v < INT64_MAX) v++;
    memcpy(at, &v, 8);
  }
}

/* Lengths [B] with values mostly in [1, T] (I64 for a zero byte, I32, or any dtype). */
static dlk_tensor *fz_lengths(int64_t B, int64_t T) {
  fz_spec s = spec1(in_index_dtype(), B);
  s.vmax = T > 0 ? T : 1;
  dlk_tensor *t = fz_tensor(&s);
  if (t && ((fz_arg *)t)->buf >= 0 && t->data && (t->dtype == DLK_I32 || t->dtype == DLK_I64))
    for_each_elem(t, length_in_range, NULL);
  return t;
}

typedef struct sdpa_fz {
  dlk_sdpa_params p;
  const dlk_sdpa_params *pp;
  fz_spec sq, sk, sv, so, sl, sb;
  int has_bias, has_ql, has_kl;
  int64_t B, Tq, Tk;
} sdpa_fz;

static void sdpa_decode(sdpa_fz *c) {
  int64_t B = in_dim(), Hk = in_dim(), Tq = in_dim(), Tk = in_dim(), D = in_dim(), Dv = in_dim();
  int64_t Hq = sat_mul(Hk, 1 + in_u8() % 4); /* GQA groups */
  c->p.scale = in_dbl(0.0);
  c->p.causal = in_enum(0);
  c->p.dropout = in_dbl(0.0);
  c->p.seed = in_u64(0);
  c->p.offset = in_u64(0);
  c->pp = in_params(&c->p);
  c->sq = spec4(F, B, Hq, Tq, D);
  c->sk = spec4(F, B, Hk, Tk, D);
  c->sv = spec4(F, B, Hk, Tk, Dv);
  c->so = spec4(F, B, Hq, Tq, Dv);
  c->sl = spec3(stat_dt(), B, Hq, Tq);
  /* bias: 2 to 4 dims right-aligned against [B, Hq, Tq, Tk], broadcast dims of size 1 */
  uint8_t bb = in_u8();
  c->has_bias = bb & 1;
  const int nd = 4 - (bb >> 1) % 3;
  const int64_t full[4] = {B, Hq, Tq, Tk};
  c->sb = (fz_spec){F, nd, {0}, 0};
  for (int k = 0; k < nd; k++) c->sb.shape[k] = (bb >> (3 + k)) & 1 ? 1 : full[4 - nd + k];
  uint8_t lb = in_u8();
  c->has_ql = lb & 1;
  c->has_kl = lb & 2;
  c->B = B, c->Tq = Tq, c->Tk = Tk;
}

static void e_sdpa_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  sdpa_fz c;
  sdpa_decode(&c);
  dlk_tensor *q = fz_tensor(&c.sq), *k = fz_tensor(&c.sk), *v = fz_tensor(&c.sv);
  dlk_tensor *bias = c.has_bias ? fz_tensor(&c.sb) : NULL;
  dlk_tensor *ql = c.has_ql ? fz_lengths(c.B, c.Tq) : NULL, *kl = c.has_kl ? fz_lengths(c.B, c.Tk) : NULL;
  dlk_tensor *out = fz_tensor(&c.so), *lse = in_u8() & 1 ? NULL : fz_tensor(&c.sl);
  FZ_OP(st, dlk_sdpa_forward(S.ctx, c.pp, q, k, v, bias, ql, kl, out, lse), out, lse);
}

/* The backward, after (by default) the forward that makes its out and lse. */
static void e_sdpa_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  sdpa_fz c;
  sdpa_decode(&c);
  uint8_t want = in_u8();
  dlk_tensor *q = fz_tensor(&c.sq), *k = fz_tensor(&c.sk), *v = fz_tensor(&c.sv);
  dlk_tensor *bias = c.has_bias ? fz_tensor(&c.sb) : NULL;
  dlk_tensor *ql = c.has_ql ? fz_lengths(c.B, c.Tq) : NULL, *kl = c.has_kl ? fz_lengths(c.B, c.Tk) : NULL;
  dlk_tensor *out = fz_tensor(&c.so), *lse = fz_tensor(&c.sl);
  if (!(want & 16)) FZ_OP(st, dlk_sdpa_forward(S.ctx, c.pp, q, k, v, bias, ql, kl, out, lse), out, lse);
  dlk_tensor *dout = fz_tensor(&c.so);
  dlk_tensor *dq = want & 1 ? NULL : fz_tensor(&c.sq), *dk = want & 2 ? NULL : fz_tensor(&c.sk);
  dlk_tensor *dv = want & 4 ? NULL : fz_tensor(&c.sv);
  dlk_tensor *dbias = want & 8 || (!bias && !(want & 32)) ? NULL : fz_tensor(&c.sb); /* 32: one without a bias */
  FZ_OP(st, dlk_sdpa_backward(S.ctx, c.pp, q, k, v, bias, ql, kl, out, lse, dout, dq, dk, dv, dbias), dq, dk, dv,
        dbias);
}

/* ---------------------------------------------------------------------------------------- */
/* attention entries: additive (Bahdanau) and Luong attention                                */
/* ---------------------------------------------------------------------------------------- */

/* enc [B, Te, He], dec [B, Td, Hd], the score's weights (additive: w_a [He, A], u_a [Hd, A],
   v_a [A]; Luong general w [Hd, He]; concat w [A, Hd + He], v [A]), lengths [B] in [1, Te]
   mostly. `luong` < 0: additive. A decoder byte may give Luong dot Hd != He (refused). */
typedef struct attn_fz {
  dlk_luong_attention_params p;
  const dlk_luong_attention_params *pp;
  int score; /* the score the call uses: -1 additive, else dlk_luong_score */
  fz_spec se, sd, sw, su, sv, sc, sa;
  int has_w, has_u, has_v, has_len;
  int64_t B, Te;
} attn_fz;

static void attn_decode(attn_fz *c, int luong) {
  int64_t B = in_dim(), Te = in_dim(), Td = in_dim(), He = in_dim(), A = in_dim();
  int64_t Hd = in_u8() & 1 ? in_dim() : He;
  c->score = -1;
  c->pp = NULL;
  if (luong) {
    c->p.score = (dlk_luong_score)in_enum(DLK_LUONG_DOT);
    c->pp = in_params(&c->p);
    c->score = c->pp ? (int)c->p.score : DLK_LUONG_DOT;
  }
  c->se = spec3(F, B, Te, He);
  c->sd = spec3(F, B, Td, Hd);
  c->sc = spec3(F, B, Td, He);
  c->sa = spec3(F, B, Td, Te);
  uint8_t ob = in_u8(); /* bit 0: a weight the score has no use for is given (refused) */
  c->has_u = 0;
  if (c->score < 0) {
    c->sw = spec2(F, He, A);
    c->su = spec2(F, Hd, A);
    c->sv = spec1(F, A);
    c->has_w = c->has_u = c->has_v = 1;
  } else if (c->score == DLK_LUONG_GENERAL) {
    c->sw = spec2(F, Hd, He);
    c->sv = spec1(F, A);
    c->has_w = 1;
    c->has_v = ob & 1;
  } else if (c->score == DLK_LUONG_CONCAT) {
    c->sw = spec2(F, A, sat_add(Hd, He));
    c->sv = spec1(F, A);
    c->has_w = c->has_v = 1;
  } else { /* DOT, or an out-of-range score (refused) */
    c->sw = spec2(F, Hd, He);
    c->sv = spec1(F, A);
    c->has_w = c->has_v = ob & 1;
  }
  c->has_len = (ob & 2) != 0;
  c->B = B, c->Te = Te;
}

static void attn_inputs(attn_fz *c, dlk_tensor **enc, dlk_tensor **dec, dlk_tensor **w, dlk_tensor **u,
                        dlk_tensor **v, dlk_tensor **len) {
  *enc = fz_tensor(&c->se);
  *dec = fz_tensor(&c->sd);
  *w = c->has_w ? fz_tensor(&c->sw) : NULL;
  *u = c->has_u ? fz_tensor(&c->su) : NULL;
  *v = c->has_v ? fz_tensor(&c->sv) : NULL;
  *len = c->has_len ? fz_lengths(c->B, c->Te) : NULL;
}

static void e_additive_attention_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  attn_fz c;
  attn_decode(&c, 0);
  dlk_tensor *enc, *dec, *w, *u, *v, *len;
  attn_inputs(&c, &enc, &dec, &w, &u, &v, &len);
  dlk_tensor *ctxo = fz_tensor(&c.sc), *wts = fz_tensor(&c.sa);
  FZ_OP(st, dlk_additive_attention_forward(S.ctx, enc, dec, w, u, v, len, ctxo, wts), ctxo, wts);
}

/* The backward, after (by default) the forward that makes its weights. */
static void e_additive_attention_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  attn_fz c;
  attn_decode(&c, 0);
  uint8_t want = in_u8();
  dlk_tensor *enc, *dec, *w, *u, *v, *len;
  attn_inputs(&c, &enc, &dec, &w, &u, &v, &len);
  dlk_tensor *ctxo = fz_tensor(&c.sc), *wts = fz_tensor(&c.sa);
  if (!(want & 128)) FZ_OP(st, dlk_additive_attention_forward(S.ctx, enc, dec, w, u, v, len, ctxo, wts), ctxo, wts);
  dlk_tensor *dctx = want & 1 ? NULL : fz_tensor(&c.sc), *dwts = want & 2 ? NULL : fz_tensor(&c.sa);
  dlk_tensor *denc = want & 4 ? NULL : fz_tensor(&c.se), *ddec = want & 8 ? NULL : fz_tensor(&c.sd);
  dlk_tensor *dw = want & 16 ? NULL : fz_tensor(&c.sw), *du = want & 32 ? NULL : fz_tensor(&c.su);
  dlk_tensor *dv = want & 64 ? NULL : fz_tensor(&c.sv);
  FZ_OP(st, dlk_additive_attention_backward(S.ctx, enc, dec, w, u, v, len, wts, dctx, dwts, denc, ddec, dw, du, dv),
        denc, ddec, dw, du, dv);
}

static void e_luong_attention_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  attn_fz c;
  attn_decode(&c, 1);
  dlk_tensor *enc, *dec, *w, *u, *v, *len;
  attn_inputs(&c, &enc, &dec, &w, &u, &v, &len);
  dlk_tensor *ctxo = fz_tensor(&c.sc), *wts = fz_tensor(&c.sa);
  FZ_OP(st, dlk_luong_attention_forward(S.ctx, c.pp, enc, dec, w, v, len, ctxo, wts), ctxo, wts);
}

static void e_luong_attention_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  attn_fz c;
  attn_decode(&c, 1);
  uint8_t want = in_u8();
  dlk_tensor *enc, *dec, *w, *u, *v, *len;
  attn_inputs(&c, &enc, &dec, &w, &u, &v, &len);
  dlk_tensor *ctxo = fz_tensor(&c.sc), *wts = fz_tensor(&c.sa);
  if (!(want & 128)) FZ_OP(st, dlk_luong_attention_forward(S.ctx, c.pp, enc, dec, w, v, len, ctxo, wts), ctxo, wts);
  dlk_tensor *dctx = want & 1 ? NULL : fz_tensor(&c.sc), *dwts = want & 2 ? NULL : fz_tensor(&c.sa);
  dlk_tensor *denc = want & 4 ? NULL : fz_tensor(&c.se), *ddec = want & 8 ? NULL : fz_tensor(&c.sd);
  dlk_tensor *dw = want & 16 || !w ? NULL : fz_tensor(&c.sw), *dv = want & 64 || !v ? NULL : fz_tensor(&c.sv);
  FZ_OP(st, dlk_luong_attention_backward(S.ctx, c.pp, enc, dec, w, v, len, wts, dctx, dwts, denc, ddec, dw, dv),
        denc, ddec, dw, dv);
}

/* ---------------------------------------------------------------------------------------- */
/* recurrent entries: cells, sequences, the reserve, Keras import                           */
/* ---------------------------------------------------------------------------------------- */

/* A mode: LSTM for a zero byte (the richest), else any int near the range. */
static int64_t rnn_gates_of(int mode) { return mode == DLK_RNN_LSTM ? 4 : mode == DLK_RNN_GRU ? 3 : 1; }
static int64_t rnn_saved_of(int mode, int64_t H) {
  return sat_mul(H, mode == DLK_RNN_LSTM ? 5 : mode == DLK_RNN_GRU ? 4 : 1);
}

/* One layer and direction's weights, each member decoded or (by the option bits) NULL:
   w_ih [G*H, I], w_hh [G*H, P], b_ih, b_hh [G*H], w_hr [P, H] (with a projection, or when
   the bits ask for a hostile one). */
static void rnn_weights_decode(dlk_rnn_weights *w, int64_t G, int64_t H, int64_t I, int64_t P, bool proj) {
  const int64_t GH = sat_mul(G, H);
  fz_spec swih = spec2(F, GH, I), swhh = spec2(F, GH, P), sb = spec1(F, GH), swhr = spec2(F, P, H);
  uint8_t opt = in_u8();
  w->w_ih = opt & 16 ? NULL : fz_tensor(&swih);
  w->w_hh = opt & 32 ? NULL : fz_tensor(&swhh);
  w->b_ih = opt & 1 ? NULL : fz_tensor(&sb);
  w->b_hh = opt & 2 ? NULL : fz_tensor(&sb);
  w->w_hr = proj != !!(opt & 4) ? fz_tensor(&swhr) : NULL;
}

/* Gradients for w's present members, each wanted unless the bits say not (or, hostile,
   one for an absent weight). */
static void rnn_grads_decode(dlk_rnn_grads *g, const dlk_rnn_weights *w) {
  uint8_t opt = in_u8();
  const dlk_tensor *ws[5] = {w->w_ih, w->w_hh, w->b_ih, w->b_hh, w->w_hr};
  dlk_tensor **gs[5] = {&g->w_ih, &g->w_hh, &g->b_ih, &g->b_hh, &g->w_hr};
  for (int i = 0; i < 5; i++) {
    *gs[i] = NULL;
    if (ws[i] && !(opt & (1 << i))) {
      fz_spec s = {ws[i]->dtype, ws[i]->ndim, {0}, 0};
      if (s.ndim < 0 || s.ndim > DLK_MAX_DIMS) s.ndim = 0;
      memcpy(s.shape, ws[i]->shape, sizeof s.shape);
      *gs[i] = fz_tensor(&s);
    } else if (!ws[i] && (opt & 0x80)) {
      fz_spec s = spec1(F, 2);
      *gs[i] = fz_tensor(&s);
    }
  }
}

typedef struct cell_fz {
  dlk_rnn_cell_params p;
  const dlk_rnn_cell_params *pp;
  dlk_rnn_weights w;
  const dlk_rnn_weights *wp;
  int64_t B, I, H, P, S;
  int lstm;
  fz_spec sx, sh, sc, ss;
} cell_fz;

static void cell_decode(cell_fz *c) {
  c->p.mode = (dlk_rnn_mode)in_enum(DLK_RNN_LSTM);
  c->p.gru_reset_before = in_enum(0);
  c->pp = in_params(&c->p);
  const int mode = c->pp ? (int)c->p.mode : DLK_RNN_TANH;
  c->lstm = mode == DLK_RNN_LSTM;
  const bool proj = c->lstm && (in_u8() & 1);
  c->B = in_dim(), c->I = in_dim(), c->H = in_dim();
  c->P = proj ? in_dim() : c->H;
  c->S = rnn_saved_of(mode, c->H);
  rnn_weights_decode(&c->w, rnn_gates_of(mode), c->H, c->I, c->P, proj);
  c->wp = in_params(&c->w);
  c->sx = spec2(F, c->B, c->I);
  c->sh = spec2(F, c->B, c->P);
  c->sc = spec2(F, c->B, c->H);
  c->ss = spec2(F, c->B, c->S);
}

static void e_rnn_cell_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  cell_fz c;
  cell_decode(&c);
  uint8_t opt = in_u8();
  dlk_tensor *x = fz_tensor(&c.sx);
  dlk_tensor *h = opt & 1 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *cc = c.lstm != !!(opt & 2) ? fz_tensor(&c.sc) : NULL;
  dlk_tensor *h_out = fz_tensor(&c.sh);
  dlk_tensor *c_out = c.lstm != !!(opt & 4) ? fz_tensor(&c.sc) : NULL;
  dlk_tensor *saved = opt & 8 ? NULL : fz_tensor(&c.ss);
  FZ_OP(st, dlk_rnn_cell_forward(S.ctx, c.pp, c.wp, x, h, cc, h_out, c_out, saved), h_out, c_out, saved);
  /* the pure helper: 0 for a bad mode or size, else H times the mode's saved blocks */
  const int mode = in_enum(DLK_RNN_GRU);
  const int64_t hs = in_i64(c.H);
  const int64_t cols = dlk_rnn_cell_saved_cols((dlk_rnn_mode)mode, hs);
  if (cols < 0 || (cols > 0 && (mode < 0 || mode > DLK_RNN_GRU || hs <= 0 || cols != rnn_saved_of(mode, hs))))
    fz_die("saved columns other than H times the mode's blocks", "dlk_rnn_cell_saved_cols");
}

static void e_rnn_cell_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  cell_fz c;
  cell_decode(&c);
  uint8_t opt = in_u8();
  dlk_tensor *x = fz_tensor(&c.sx);
  dlk_tensor *h = opt & 1 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *cc = c.lstm != !!(opt & 2) ? fz_tensor(&c.sc) : NULL;
  dlk_tensor *saved = fz_tensor(&c.ss);
  dlk_tensor *dh_out = opt & 4 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *dc_out = c.lstm && !(opt & 8) ? fz_tensor(&c.sc) : NULL;
  dlk_tensor *dx = opt & 16 ? NULL : fz_tensor(&c.sx);
  dlk_tensor *dh = opt & 32 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *dc = c.lstm && !(opt & 64) ? fz_tensor(&c.sc) : NULL;
  dlk_rnn_grads g;
  rnn_grads_decode(&g, &c.w);
  const dlk_rnn_grads *gp = opt & 128 ? NULL : &g;
  FZ_OP(st, dlk_rnn_cell_backward(S.ctx, c.pp, c.wp, x, h, cc, saved, dh_out, dc_out, dx, dh, dc, gp), dx, dh, dc,
        gp ? g.w_ih : NULL, gp ? g.w_hh : NULL, gp ? g.b_ih : NULL, gp ? g.b_hh : NULL, gp ? g.w_hr : NULL);
}

/* A contiguous U8 [n] buffer (the training reserve), n up to FZ_MAX_BYTES. */
static dlk_tensor *fz_bytes(int64_t n) {
  if (n < 0 || n > FZ_MAX_BYTES || S.ntens == FZ_MAX_TENSORS) return NULL;
  fz_arg *ft = &S.tens[S.ntens];
  memset(ft, 0, sizeof *ft);
  ft->t.dtype = DLK_U8;
  ft->t.device = (dlk_device){DLK_CPU, 0};
  ft->t.ndim = 1;
  ft->t.shape[0] = n;
  ft->t.strides[0] = 1;
  ft->buf = buf_new((size_t)n);
  if (ft->buf < 0) return NULL;
  ft->t.data = S.bufs[ft->buf].mem + FZ_GUARD;
  S.ntens++;
  return &ft->t;
}

#define FZ_RNN_SETS 4 /* weight sets decoded: layers 0 and 1, both directions; deeper layers reuse layer 1's */

typedef struct seq_fz {
  dlk_rnn_params p;
  const dlk_rnn_params *pp;
  int64_t T, B, I, H, P, L, D, LD;
  int mode, bf;
  dlk_rnn_weights w[2 * 64];
  const dlk_rnn_weights *wp;
  fz_spec sx, sy, sh, sc;
} seq_fz;

/* The params (hidden size, layers, directions, dropout, ...) and x's shape. */
static void seq_params_decode(seq_fz *c) {
  memset(c, 0, sizeof *c);
  dlk_rnn_params *p = &c->p;
  p->mode = (dlk_rnn_mode)in_enum(DLK_RNN_LSTM);
  p->hidden_size = in_u8() ? in_i64(3) : sat_add(in_dim(), 1);
  p->proj_size = in_i64(0);
  uint8_t lb = in_u8();
  static const int layers[8] = {0, -1, 65, 64, INT_MAX, INT_MIN, 2, 3};
  p->num_layers = lb < 0xF8 ? 1 + lb % 2 : layers[lb - 0xF8];
  p->bidirectional = in_enum(0);
  p->batch_first = in_enum(0);
  p->gru_reset_before = in_enum(0);
  p->dropout = in_dbl(0.0);
  p->seed = in_u64(0);
  p->training = in_enum(1);
  c->pp = in_params(p);
  c->mode = (int)p->mode;
  c->T = in_dim(), c->B = in_dim(), c->I = in_dim();
  c->H = p->hidden_size;
  c->P = p->proj_size > 0 ? p->proj_size : c->H;
  c->L = p->num_layers;
  c->D = p->bidirectional == 1 ? 2 : 1;
  c->LD = sat_mul(c->L, c->D);
  c->bf = p->batch_first == 1;
  c->sx = c->bf ? spec3(F, c->B, c->T, c->I) : spec3(F, c->T, c->B, c->I);
  const int64_t W = sat_mul(c->D, c->P);
  c->sy = c->bf ? spec3(F, c->B, c->T, W) : spec3(F, c->T, c->B, W);
  c->sh = spec3(F, c->LD, c->B, c->P);
  c->sc = spec3(F, c->LD, c->B, c->H);
}

/* weights[L*D]: layer 0 and layer 1 decoded (both directions), deeper layers the same
   descriptors as layer 1 (the same shapes), so a 64-layer stack needs 4 sets. */
static void seq_weights_decode(seq_fz *c) {
  const int64_t G = rnn_gates_of(c->mode);
  const bool proj = c->P != c->H;
  const int64_t n = c->LD >= 1 && c->LD <= 2 * 64 ? c->LD : 2;
  for (int64_t k = 0; k < n; k++) {
    const int64_t l = k / c->D;
    if (k < FZ_RNN_SETS)
      rnn_weights_decode(&c->w[k], G, c->H, l == 0 ? c->I : sat_mul(c->D, c->P), c->P, proj);
    else
      c->w[k] = c->w[c->D + k % c->D];
  }
  c->wp = in_params(c->w);
}

/* The reserve as dlk_rnn_reserve_size asks (or, by the byte, a size off by some, a
   hostile descriptor, NULL). */
static dlk_tensor *seq_reserve(const seq_fz *c, const dlk_tensor *x) {
  size_t bytes = 1024, sentinel = 1024;
  dlk_status s;
  FZ_HELPER(s, dlk_rnn_reserve_size(S.ctx, c->pp, x, &bytes), NULL);
  if (s != DLK_OK && bytes != sentinel) fz_die("refused but set *bytes", "dlk_rnn_reserve_size");
  const int64_t n = bytes > FZ_MAX_BYTES ? FZ_MAX_BYTES : (int64_t)bytes;
  uint8_t rb = in_u8();
  switch (rb % 8) {
    case 1: return fz_bytes(n + in_u8());
    case 2: return fz_bytes(n - 1);
    case 3: {
      fz_spec sr = spec1(DLK_U8, n);
      return fz_tensor(&sr);
    }
    case 4: return NULL;
    default: return fz_bytes(n);
  }
}

static void e_rnn_reserve_size(void) {
  seq_fz c;
  seq_params_decode(&c);
  dlk_tensor *x = fz_tensor(&c.sx);
  size_t bytes = 12345;
  dlk_status st;
  size_t *bp = in_u8() == 0xFF ? NULL : &bytes;
  FZ_HELPER(st, dlk_rnn_reserve_size(S.ctx, c.pp, x, bp), NULL);
  if (st != DLK_OK && bytes != 12345) fz_die("refused but set *bytes", "dlk_rnn_reserve_size");
  if (st == DLK_OK && bytes < 256) fz_die("a reserve without room for its header", "dlk_rnn_reserve_size");
}

/* The forward's tensors (decoded in this order for both entries). */
typedef struct seq_io {
  dlk_tensor *x, *lengths, *h0, *c0, *y, *hn, *cn, *reserve;
} seq_io;

static void seq_io_decode(seq_fz *c, seq_io *io) {
  uint8_t opt = in_u8();
  const bool lstm = c->mode == DLK_RNN_LSTM;
  io->x = fz_tensor(&c->sx);
  io->lengths = opt & 1 ? fz_lengths(c->B, c->T) : NULL;
  io->h0 = opt & 2 ? NULL : fz_tensor(&c->sh);
  io->c0 = lstm != !!(opt & 4) ? fz_tensor(&c->sc) : NULL;
  io->y = fz_tensor(&c->sy);
  io->hn = opt & 8 ? NULL : fz_tensor(&c->sh);
  io->cn = lstm && !(opt & 16) ? fz_tensor(&c->sc) : NULL;
  io->reserve = seq_reserve(c, io->x);
}

static void e_rnn_forward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  seq_fz c;
  seq_params_decode(&c);
  seq_weights_decode(&c);
  seq_io io;
  seq_io_decode(&c, &io);
  FZ_OP(st, dlk_rnn_forward(S.ctx, c.pp, c.wp, io.x, io.lengths, io.h0, io.c0, io.y, io.hn, io.cn, io.reserve), io.y,
        io.hn, io.cn, io.reserve);
}

/* A training forward (by default) that writes the reserve, then the backward through
   time with the gradients the bits ask for. */
static void e_rnn_backward(void) {
  dlk_status st = DLK_OK;
  (void)st;
  seq_fz c;
  seq_params_decode(&c);
  seq_weights_decode(&c);
  seq_io io;
  seq_io_decode(&c, &io);
  uint8_t opt = in_u8();
  if (!(opt & 1))
    FZ_OP(st, dlk_rnn_forward(S.ctx, c.pp, c.wp, io.x, io.lengths, io.h0, io.c0, io.y, io.hn, io.cn, io.reserve),
          io.y, io.hn, io.cn, io.reserve);
  const bool lstm = c.mode == DLK_RNN_LSTM;
  dlk_tensor *dy = opt & 2 ? NULL : fz_tensor(&c.sy);
  dlk_tensor *dhn = opt & 4 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *dcn = lstm && !(opt & 8) ? fz_tensor(&c.sc) : NULL;
  fz_spec sdx = c.sx;
  dlk_tensor *dx = opt & 16 ? NULL : fz_tensor(&sdx);
  dlk_tensor *dh0 = opt & 32 ? NULL : fz_tensor(&c.sh);
  dlk_tensor *dc0 = lstm && !(opt & 64) ? fz_tensor(&c.sc) : NULL;
  /* gradients: layer 0 and 1's sets decoded, deeper layers reuse layer 1's descriptors
     (they would overlap: the call must refuse), or distinct only when L <= 2 */
  static dlk_rnn_grads g[2 * 64];
  memset(g, 0, sizeof g);
  const int64_t n = c.LD >= 1 && c.LD <= 2 * 64 ? c.LD : 2;
  for (int64_t k = 0; k < n && k < FZ_RNN_SETS; k++) rnn_grads_decode(&g[k], &c.w[k]);
  for (int64_t k = FZ_RNN_SETS; k < n; k++) g[k] = g[c.D + k % c.D];
  const dlk_rnn_grads *gp = opt & 128 ? NULL : g;
  dlk_tensor *gl[4 * 5];
  for (int k = 0; k < 4; k++) {
    const bool on = gp && k < n;
    gl[5 * k + 0] = on ? g[k].w_ih : NULL;
    gl[5 * k + 1] = on ? g[k].w_hh : NULL;
    gl[5 * k + 2] = on ? g[k].b_ih : NULL;
    gl[5 * k + 3] = on ? g[k].b_hh : NULL;
    gl[5 * k + 4] = on ? g[k].w_hr : NULL;
  }
  FZ_OP(st,
        dlk_rnn_backward(S.ctx, c.pp, c.wp, io.x, io.lengths, io.h0, io.c0, io.y, io.reserve, dy, dhn, dcn, dx, dh0,
                         dc0, gp),
        dx, dh0, dc0, gl[0], gl[1], gl[2], gl[3], gl[4], gl[5], gl[6], gl[7], gl[8], gl[9], gl[10], gl[11], gl[12],
        gl[13], gl[14], gl[15], gl[16], gl[17], gl[18], gl[19]);
}

static void e_rnn_weights_from_keras(void) {
  dlk_status st = DLK_OK;
  (void)st;
  const int mode = in_enum(DLK_RNN_LSTM);
  const int64_t I = in_dim(), H = in_dim(), GH = sat_mul(rnn_gates_of(mode), H);
  uint8_t opt = in_u8();
  fz_spec sk = spec2(F, I, GH), srk = spec2(F, H, GH), sb1 = spec1(F, GH), sb2 = spec2(F, 2, GH);
  fz_spec swih = spec2(F, GH, I), swhh = spec2(F, GH, H);
  dlk_tensor *kernel = fz_tensor(&sk), *rk = fz_tensor(&srk);
  dlk_tensor *bias = opt & 1 ? NULL : fz_tensor(mode == DLK_RNN_GRU && !(opt & 2) ? &sb2 : &sb1);
  dlk_tensor *w_ih = fz_tensor(&swih), *w_hh = fz_tensor(&swhh);
  dlk_tensor *b_ih = opt & 4 ? NULL : fz_tensor(&sb1), *b_hh = opt & 8 ? NULL : fz_tensor(&sb1);
  FZ_OP(st, dlk_rnn_weights_from_keras(S.ctx, (dlk_rnn_mode)mode, kernel, rk, bias, w_ih, w_hh, b_ih, b_hh), w_ih,
        w_hh, b_ih, b_hh);
}

/* ---------------------------------------------------------------------------------------- */
/* The table                                                                                 */
/* ---------------------------------------------------------------------------------------- */

typedef struct fz_entry {
  const char *name; /* the public call(s) */
  const char *ops;  /* the dispatched ops it reaches, comma-separated ("" for helpers) */
  void (*run)(void);
} fz_entry;

static const fz_entry entries[] = {
    {"dlk_gemm", "gemm", e_gemm},
    {"dlk_linear_forward", "gemm", e_linear_forward},
    {"dlk_linear_backward", "gemm,bias_act_bwd", e_linear_backward},
    {"dlk_bias_act_forward", "bias_act_fwd", e_bias_act_forward},
    {"dlk_bias_act_backward", "bias_act_bwd", e_bias_act_backward},
    {"dlk_softmax_forward", "softmax_fwd", e_softmax_forward},
    {"dlk_softmax_backward", "softmax_bwd", e_softmax_backward},
    {"dlk_cross_entropy_forward", "cross_entropy_fwd", e_cross_entropy_forward},
    {"dlk_cross_entropy_backward", "cross_entropy_bwd", e_cross_entropy_backward},
    {"dlk_embedding_forward", "embedding_fwd", e_embedding_forward},
    {"dlk_embedding_backward", "embedding_bwd", e_embedding_backward},
    {"dlk_layernorm_forward", "layernorm_fwd", e_layernorm_forward},
    {"dlk_layernorm_backward", "layernorm_bwd", e_layernorm_backward},
    {"dlk_dropout_forward/backward", "dropout", e_dropout},
    {"dlk_sgd_step", "sgd_step", e_sgd_step},
    {"dlk_adam_step", "adam_step", e_adam_step},
    {"dlk_adagrad_step", "adagrad_step", e_adagrad_step},
    {"dlk_glove_train_epoch", "glove_epoch", e_glove_train_epoch},
    {"dlk_glove_cooccur_*", "glove_cooccur_chunk", e_glove_cooccur},
    {"dlk_glove_neighbours", "glove_topk,gemm", e_glove_neighbours},
    {"dlk_glove_analogy_predict", "glove_topk,gemm", e_glove_analogy_predict},
    {"dlk_tensor_copy", "", e_copy},
    {"dlk_tensor_zero", "", e_zero},
    {"dlk_tensor_write", "", e_write},
    {"dlk_tensor_read", "", e_read},
    {"dlk_tensor_slice/transpose/reshape", "", e_views},
    {"dlk_tensor_validate", "", e_validate},
    {"dlk_tensor_init", "", e_init},
    {"dlk_tensor_alloc/free", "", e_alloc},
    {"dlk_tensor_from_dlpack/to_dlpack", "", e_dlpack},
    {"dlk_conv2d_forward", "conv2d_fwd", e_conv2d_forward},
    {"dlk_conv2d_backward", "conv2d_bwd_bias,conv2d_bwd_data,conv2d_bwd_filter", e_conv2d_backward},
    {"dlk_conv2d_output_dim", "", e_conv2d_output_dim},
    {"dlk_gram_forward", "gram_fwd", e_gram_forward},
    {"dlk_gram_backward", "gram_bwd", e_gram_backward},
    {"dlk_pool2d_forward", "pool2d_fwd", e_pool2d_forward},
    {"dlk_pool2d_backward", "pool2d_bwd", e_pool2d_backward},
    {"dlk_adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_fwd", e_adaptive_avg_pool2d_forward},
    {"dlk_adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_bwd", e_adaptive_avg_pool2d_backward},
    {"dlk_batchnorm_forward", "batchnorm_fwd", e_batchnorm_forward},
    {"dlk_batchnorm_backward", "batchnorm_bwd", e_batchnorm_backward},
    {"dlk_mse_loss_forward", "mse_loss_fwd", e_mse_loss_forward},
    {"dlk_mse_loss_backward", "mse_loss_bwd", e_mse_loss_backward},
    {"dlk_sdpa_forward", "sdpa_fwd", e_sdpa_forward},
    {"dlk_sdpa_backward", "sdpa_fwd,sdpa_bwd", e_sdpa_backward},
    {"dlk_rnn_cell_forward/saved_cols", "rnn_cell_fwd", e_rnn_cell_forward},
    {"dlk_rnn_cell_backward", "rnn_cell_bwd", e_rnn_cell_backward},
    {"dlk_rnn_reserve_size", "", e_rnn_reserve_size},
    {"dlk_rnn_forward", "rnn_fwd", e_rnn_forward},
    {"dlk_rnn_backward", "rnn_fwd,rnn_bwd", e_rnn_backward},
    {"dlk_rnn_weights_from_keras", "", e_rnn_weights_from_keras},
    /* new entries go last: a corpus file's first byte is its entry's index */
    {"dlk_additive_attention_forward", "additive_attn_fwd", e_additive_attention_forward},
    {"dlk_additive_attention_backward", "additive_attn_fwd,additive_attn_bwd", e_additive_attention_backward},
    {"dlk_luong_attention_forward", "luong_attn_fwd", e_luong_attention_forward},
    {"dlk_luong_attention_backward", "luong_attn_fwd,luong_attn_bwd", e_luong_attention_backward},
};
#define N_ENTRIES ((int)(sizeof entries / sizeof entries[0]))

/* The ops an entry covers include `name` (a whole item of the comma list). */
static bool covers(const char *ops, const char *name) {
  size_t n = strlen(name);
  for (const char *p = ops; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return true;
    p += len + (e ? 1 : 0);
  }
  return false;
}

/* Every op dlk_op_count lists has an entry (libFuzzer calls this once at start; replay.c
   too): a new op without one stops every fuzz run and the replay test. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  dlk_context *ctx = fz_ctx();
  int n = 0, missing = 0;
  if (dlk_op_count(ctx, &n) != DLK_OK) abort();
  for (int i = 0; i < n; i++) {
    const char *name;
    if (dlk_op_name(ctx, i, &name) != DLK_OK) abort();
    bool found = false;
    for (int e = 0; e < N_ENTRIES && !found; e++) found = covers(entries[e].ops, name);
    if (!found) {
      fprintf(stderr, "fuzz_api: op %s has no entry in tests/fuzz/fuzz_api.c's table\n", name);
      missing++;
    }
  }
  if (missing) {
    fprintf(stderr, "fuzz_api: %d ops without an entry: add one per public call that reaches them\n", missing);
    exit(1);
  }
  return 0;
}

/* The ops an entry reaches, to force variants and reset them after. */
static void force_all(const char *ops, int id) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", ops);
  for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) dlk_force_variant(S.ctx, p, id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  memset(&S, 0, sizeof S);
  S.in = data;
  S.n = size;
  S.ctx = fz_ctx();
  S.verbose = getenv("FZ_VERBOSE") != NULL;
  const fz_entry *e = &entries[in_u8() % N_ENTRIES];
  S.entry = e->name;
  uint8_t flags = in_u8();
  static const dlk_dtype fdts[4] = {DLK_F32, DLK_F16, DLK_BF16, DLK_F64};
  S.fdt = fdts[in_u8() % 4];
  uint64_t seed = 0;
  for (int i = 0; i < 4; i++) seed = seed << 8 | in_u8();
  S.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  if (S.verbose) fprintf(stderr, "%s (flags %02x, %s)\n", e->name, flags, dlk_dtype_name(S.fdt));
  /* Context settings the call runs under. */
  S.explain = flags & 1;
  if (flags & 1) dlk_explain_mode(S.ctx, 1);
  if (flags & 2) dlk_context_set_deterministic(S.ctx, 1);
  if (flags & 4) dlk_context_set_workspace_limit(S.ctx, 4096);
  if (flags & 8) {
    static const int ids[4] = {0, 20, 1, 10};
    force_all(e->ops, ids[in_u8() % 4]);
  }
  e->run();
  dlk_explain_mode(S.ctx, 0);
  dlk_context_set_deterministic(S.ctx, 0);
  dlk_context_set_workspace_limit(S.ctx, 0);
  if (flags & 8) force_all(e->ops, -1);
  bufs_free();
  return 0;
}
