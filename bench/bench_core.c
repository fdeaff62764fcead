/*
 * Core cases of dlk-bench:
 *   copy        device-to-device copy bandwidth (bytes read + written per second), the
 *               yardstick of the memory-bound targets ("% of measured copy bandwidth");
 *               variants: dlk's strided copy (a padded-row view, through dlk_tensor_copy)
 *               and the vendor copy (cudaMemcpyAsync on the GPU, memcpy on the CPU).
 *   dispatch    host time of dlk_dispatch for a no-op op with a realistic shape key:
 *               on a GPU context the call hits the autotune cache (two candidates, so
 *               the first call tunes and caches); CPU contexts never autotune, so there
 *               it is the heuristic path, which does strictly more work.
 *   public_call host time of a whole public call of a tiny op (softmax of 1x16 f32):
 *               argument checks, key, cache, and the launch (GPU) or the tiny CPU loop.
 * Targets (issue 3): dispatch < 2 us per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/internal.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* ---- copy ---------------------------------------------------------------------------------- */

enum { COPY_STRIDED = 1, COPY_VENDOR = 10 };

static const bench_variant copy_variants[] = {
    {COPY_STRIDED, "strided_copy", "dlk_tensor_copy of a padded-row view (dlk's copy kernel)"},
#if DLK_HAVE_CUDA
    {COPY_VENDOR, "cudaMemcpyAsync", "cudaMemcpyAsync device to device on the context's stream"},
#endif
};
static const bench_variant copy_variants_cpu[] = {
    {COPY_STRIDED, "strided_copy", "dlk_tensor_copy of a padded-row view (element loop)"},
    {COPY_VENDOR, "memcpy", "libc memcpy"},
};

/* The copy moves rows x cols f32 elements; src and dst rows are `pitch` apart so that
   the strided variant reads a non-contiguous view, the vendor copy the dense prefix of
   the same size. */
typedef struct copy_state {
  dlk_tensor src_buf, dst_buf;     /* [rows, pitch] */
  dlk_tensor src, dst;             /* [rows, cols] views with row stride pitch */
  dlk_tensor src_dense, dst_dense; /* the first rows*cols elements, contiguous */
} copy_state;

static void copy_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  copy_state *s = state;
  if (!s) return;
  bench_free(env, &s->src_buf);
  bench_free(env, &s->dst_buf);
  free(s);
}

static dlk_status copy_setup(const bench_env *env, const bench_case *c, void **state) {
  copy_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t rows = c->dims[0], cols = c->dims[1], pitch = c->dims[2];
  int64_t shape[2] = {rows, pitch};
  BENCH_TRY(bench_alloc(env, &s->src_buf, DLK_F32, 2, shape));
  BENCH_TRY(bench_alloc(env, &s->dst_buf, DLK_F32, 2, shape));
  BENCH_TRY(bench_fill(env, &s->src_buf, -1, 1, 1));
  BENCH_TRY(dlk_tensor_slice(env->ctx, &s->src, &s->src_buf, 1, 0, cols));
  BENCH_TRY(dlk_tensor_slice(env->ctx, &s->dst, &s->dst_buf, 1, 0, cols));
  int64_t dense[2] = {rows, cols};
  BENCH_TRY(dlk_tensor_init(env->ctx, &s->src_dense, s->src_buf.data, DLK_F32, s->src_buf.device, 2,
                            dense));
  BENCH_TRY(dlk_tensor_init(env->ctx, &s->dst_dense, s->dst_buf.data, DLK_F32, s->dst_buf.device, 2,
                            dense));
  return DLK_OK;
}

static dlk_status copy_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)c;
  copy_state *s = state;
  if (variant == COPY_STRIDED) return dlk_tensor_copy(env->ctx, &s->dst, &s->src);
  size_t bytes = (size_t)dlk_tensor_numel(&s->src_dense) * sizeof(float);
  if (!env->gpu) {
    memcpy(s->dst_dense.data, s->src_dense.data, bytes);
    return DLK_OK;
  }
#if DLK_HAVE_CUDA
  void *stream = NULL;
  dlk_context_get_stream(env->ctx, &stream);
  cudaError_t e = cudaMemcpyAsync(s->dst_dense.data, s->src_dense.data, bytes,
                                  cudaMemcpyDeviceToDevice, (cudaStream_t)stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return DLK_ERR_CUDA;
  }
  return DLK_OK;
#else
  return DLK_ERR_NO_DEVICE;
#endif
}

/* No output check: the two variants write different elements of dst by design. */

/* ---- dispatch overhead --------------------------------------------------------------------- */

/* A record like the nn ops': two matrices and a flag. */
typedef struct noop_args {
  dlk_tensor x, y;
  int flag;
} noop_args;

/* A shape key as a real op builds it: dtypes, dims, the unit-stride class of each operand,
   the flags. */
static void noop_key(const void *args, char *buf, size_t n) {
  const noop_args *a = args;
  snprintf(buf, n, "%s>%s|%lldx%lld|x%c%lld|y%c%lld|f%d", dlk_dtype_name(a->x.dtype),
           dlk_dtype_name(a->y.dtype), (long long)a->x.shape[0], (long long)a->x.shape[1],
           a->x.strides[1] == 1 ? 'c' : 's', (long long)a->x.strides[0],
           a->y.strides[1] == 1 ? 'c' : 's', (long long)a->y.strides[0], a->flag);
}

static bool noop_supports(const dlk_context *ctx, const void *args, int impl, char *why,
                          size_t why_len) {
  (void)ctx, (void)impl;
  const noop_args *a = args;
  if (a->x.ndim != 2) {
    snprintf(why, why_len, "x is not 2-D");
    return false;
  }
  return true;
}

static dlk_status noop_run(dlk_context *ctx, const void *args, int impl, void *ws,
                           size_t ws_bytes) {
  (void)ctx, (void)args, (void)impl, (void)ws, (void)ws_bytes;
  return DLK_OK;
}

/* Two candidates per device, so that a CUDA context autotunes and caches. */
static const dlk_variant noop_rows[] = {
    {0, "noop_ref", DLK_CPU, 0, "does nothing", noop_supports, NULL, noop_run},
    {20, "noop_fast", DLK_CPU, 0, "does nothing", noop_supports, NULL, noop_run},
    {1, "noop_simple", DLK_CUDA, 1, "does nothing", noop_supports, NULL, noop_run},
    {10, "noop_vendor", DLK_CUDA, 0, "does nothing", noop_supports, NULL, noop_run},
};
/* Its output: x's shape (what a real op's outputs() costs the dispatcher: one descriptor). */
static int noop_outputs(const void *args, dlk_tensor *out, int max) {
  const noop_args *a = args;
  return dlk_list_output(out, max, 0, &a->x);
}
static const dlk_op noop_op = {"bench_noop", noop_rows, 4, noop_key, NULL, true, noop_outputs};

typedef struct dispatch_state {
  noop_args args;
  dlk_tensor x, y; /* tiny real tensors for the public call */
} dispatch_state;

static const bench_variant dispatch_variants[] = {
    {0, "dlk_dispatch", "dlk_dispatch of a no-op op: key, hash, cache lookup, supports()"}};
static const bench_variant public_variants[] = {
    {0, "softmax_1x16", "dlk_softmax_forward on 1x16 f32: checks, dispatch, launch"}};

static void dispatch_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  dispatch_state *s = state;
  if (!s) return;
  bench_free(env, &s->x);
  bench_free(env, &s->y);
  free(s);
}

static dlk_status dispatch_setup(const bench_env *env, const bench_case *c, void **state) {
  dispatch_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  int64_t shape[2] = {c->dims[0], c->dims[1]};
  BENCH_TRY(bench_alloc(env, &s->x, DLK_F32, 2, shape));
  BENCH_TRY(bench_alloc(env, &s->y, DLK_F32, 2, shape));
  BENCH_TRY(bench_fill(env, &s->x, -1, 1, 2));
  s->args.x = s->x;
  s->args.y = s->y;
  if (c->arg == 0 && env->gpu) {
    /* The first call tunes the two candidates and caches the winner; make sure it did,
       so the timed calls measure the cache-hit path and nothing else. */
    int before = 0, after = 0;
    BENCH_TRY(dlk_autotune_entries(env->ctx, &before));
    BENCH_TRY(dlk_dispatch(env->ctx, &noop_op, &s->args));
    BENCH_TRY(dlk_autotune_entries(env->ctx, &after));
    if (after <= before)
      return dlk_fail(env->ctx, DLK_ERR_INTERNAL,
                      "dispatch: the first call did not add an autotune cache entry (%d -> %d), "
                      "so the timed calls would not be cache hits",
                      before, after);
  }
  return DLK_OK;
}

static dlk_status dispatch_run(const bench_env *env, const bench_case *c, void *state,
                               int variant) {
  (void)variant;
  dispatch_state *s = state;
  int64_t calls = (int64_t)c->calls;
  if (c->arg == 0) {
    for (int64_t i = 0; i < calls; i++) BENCH_TRY(dlk_dispatch(env->ctx, &noop_op, &s->args));
    return DLK_OK;
  }
  dlk_softmax_params p = {0};
  for (int64_t i = 0; i < calls; i++) BENCH_TRY(dlk_softmax_forward(env->ctx, &p, &s->x, &s->y));
  return DLK_OK;
}

/* ---- registration -------------------------------------------------------------------------- */

void bench_family_core(bench_registry *r, const bench_env *env) {
  bench_case c;

  /* copy: 512 MiB on the GPU (10x the H100's L2); on the CPU 16 MiB each way, source and
     destination together as large as the flush buffer (64 MiB with --full, 8 with
     --quick). */
  memset(&c, 0, sizeof c);
  c.family = "core";
  snprintf(c.name, sizeof c.name, "copy");
  snprintf(c.dtype, sizeof c.dtype, "f32");
  c.bound = BENCH_MEMORY;
  int64_t rows = env->gpu ? 32768 : bench_cpu_size(env, 512, 1024, 4096), cols = 4096;
  c.dims[0] = rows;
  c.dims[1] = cols;
  c.dims[2] = cols + 32; /* row pitch of the strided view: 128 bytes of padding */
  snprintf(c.shape, sizeof c.shape, "%lldx%lld", (long long)rows, (long long)cols);
  c.bytes = 2.0 * (double)(rows * cols) * sizeof(float);
  c.variants = env->gpu ? copy_variants : copy_variants_cpu;
  c.n_variants = env->gpu ? (int)(sizeof copy_variants / sizeof copy_variants[0]) : 2;
  c.setup = copy_setup;
  c.run = copy_run;
  c.teardown = copy_teardown;
  c.note =
      "bytes = read + written; the best variant's GB/s is the copy bandwidth that "
      "memory-bound cases are rated against (%copy)";
  bench_add(r, &c);

  /* dispatch: 50,000 calls per run, 20 runs: the 1e6 calls of the brief (CPU: 10,000 per
     run, 50,000 with --full). */
  memset(&c, 0, sizeof c);
  c.family = "core";
  snprintf(c.name, sizeof c.name, "dispatch");
  snprintf(c.shape, sizeof c.shape, "%s", env->gpu ? "noop,cache-hit" : "noop,heuristic");
  snprintf(c.dtype, sizeof c.dtype, "f32");
  c.bound = BENCH_HOST;
  c.calls = env->gpu ? 50000 : bench_cpu_size(env, 10000, 10000, 50000);
  c.target_us = 2.0;
  c.dims[0] = 64;
  c.dims[1] = 1024;
  c.arg = 0;
  c.variants = dispatch_variants;
  c.n_variants = 1;
  c.setup = dispatch_setup;
  c.run = dispatch_run;
  c.teardown = dispatch_teardown;
  c.note = env->gpu ? "host time of dlk_dispatch per call after the first call tuned and cached "
                      "the op (no kernel runs)"
                    : "host time of dlk_dispatch per call; CPU contexts do not autotune, so this "
                      "is the heuristic path (key, cache miss, candidate scan), a superset of "
                      "the cache-hit path a GPU call takes";
  bench_add(r, &c);

  /* public_call: on the GPU each call enqueues a kernel; 200 calls per run stay well
     inside the launch queue, so the host never waits on the GPU while timed. */
  snprintf(c.name, sizeof c.name, "public_call");
  snprintf(c.shape, sizeof c.shape, "softmax,1x16");
  c.calls = env->gpu ? 200 : bench_cpu_size(env, 10000, 10000, 50000);
  c.target_us = 0;
  c.dims[0] = 1;
  c.dims[1] = 16;
  c.arg = 1;
  c.variants = public_variants;
  c.note = env->gpu ? "host time per dlk_softmax_forward call (1x16): checks, key, cache hit, "
                      "kernel launch; the kernel's own time is not counted"
                    : "host time per dlk_softmax_forward call (1x16), including the 16-element "
                      "CPU reference loop";
  bench_add(r, &c);
}
