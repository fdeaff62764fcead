/* The context: device, stream, workspace arena, options, forced variants, autotune cache,
   the plan cache (where vendor handles and plans live) and the last error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "../../kernels/core/core.h"
#endif

#ifndef DLK_CUDA_ARCHS_STR
#define DLK_CUDA_ARCHS_STR ""
#endif

int dlk_env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

#if DLK_HAVE_CUDA
dlk_status dlk_check_cuda(dlk_context *ctx, int code, const char *file, int line, const char *expr) {
  if (code == 0) return DLK_OK;
  cudaGetLastError(); /* clear a sticky-free error so the context stays usable */
  const char *base = strrchr(file, '/');
  return dlk_fail(ctx, code == cudaErrorMemoryAllocation ? DLK_ERR_OUT_OF_MEMORY : DLK_ERR_CUDA,
                  "%s:%d: %s: %s (%s)", base ? base + 1 : file, line, expr,
                  cudaGetErrorString((cudaError_t)code), cudaGetErrorName((cudaError_t)code));
}

dlk_status dlk_cuda_enter(dlk_context *ctx) {
  int cur = -1;
  if (cudaGetDevice(&cur) == cudaSuccess && cur == ctx->device.id) return DLK_OK;
  DLK_CUDA_TRY(ctx, cudaSetDevice(ctx->device.id));
  return DLK_OK;
}

static int cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}
#else
static int cuda_device_count(void) { return 0; }
#endif

/* ---- the plan cache ---- */

typedef struct dlk_plan_entry {
  uint64_t hash;
  uint64_t used; /* ctx->plan_clock at the last get or put: dlk_plan_cache_trim's recency */
  char *key;
  void *ptr;
  void (*destroy)(void *ptr);
} dlk_plan_entry;

static uint64_t key_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static dlk_plan_entry *plan_find(const dlk_context *ctx, const char *key, uint64_t h) {
  for (size_t i = ctx->n_plans; i-- > 0;)
    if (ctx->plans[i].hash == h && strcmp(ctx->plans[i].key, key) == 0) return &ctx->plans[i];
  return NULL;
}

dlk_status dlk_plan_cache_get(dlk_context *ctx, const char *key, void **out) {
  if (!ctx || !key || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_plan_cache_get: NULL argument");
  dlk_plan_entry *e = plan_find(ctx, key, key_hash(key));
  if (e) e->used = ++ctx->plan_clock;
  *out = e ? e->ptr : NULL;
  return DLK_OK;
}

dlk_status dlk_plan_cache_put(dlk_context *ctx, const char *key, void *ptr, void (*destroy)(void *ptr)) {
  dlk_status s = DLK_OK;
  if (!ctx || !key) {
    s = dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_plan_cache_put: NULL context or key");
    goto fail;
  }
  const uint64_t h = key_hash(key);
  dlk_plan_entry *e = plan_find(ctx, key, h);
  if (e) {
    if (e->destroy && e->ptr != ptr) e->destroy(e->ptr);
    e->ptr = ptr;
    e->destroy = destroy;
    e->used = ++ctx->plan_clock;
    return DLK_OK;
  }
  if (ctx->n_plans == ctx->cap_plans) {
    size_t cap = ctx->cap_plans ? 2 * ctx->cap_plans : 16;
    dlk_plan_entry *grown = realloc(ctx->plans, cap * sizeof *grown);
    if (!grown) {
      s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "plan cache: out of memory for \"%s\"", key);
      goto fail;
    }
    ctx->plans = grown;
    ctx->cap_plans = cap;
  }
  char *copy = strdup(key);
  if (!copy) {
    s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "plan cache: out of memory for \"%s\"", key);
    goto fail;
  }
  ctx->plans[ctx->n_plans++] = (dlk_plan_entry){h, ++ctx->plan_clock, copy, ptr, destroy};
  return DLK_OK;
fail:
  if (destroy && ptr) destroy(ptr);
  return s;
}

static bool has_prefix(const char *key, const char *prefix) {
  return strncmp(key, prefix, strlen(prefix)) == 0;
}

size_t dlk_plan_cache_count(const dlk_context *ctx, const char *prefix) {
  size_t n = 0;
  for (size_t i = 0; ctx && prefix && i < ctx->n_plans; i++)
    n += has_prefix(ctx->plans[i].key, prefix);
  return n;
}

void dlk_plan_cache_trim(dlk_context *ctx, const char *prefix, size_t keep) {
  if (!ctx || !prefix) return;
  size_t n = dlk_plan_cache_count(ctx, prefix);
  if (n <= keep) return;
#if DLK_HAVE_CUDA
  /* A plan may still be in use by work queued on the stream (a runtime-compiled engine's
     module, say): let that finish before destroying one. Rare: only past the bound. */
  if (ctx->device.type == DLK_CUDA) { /* an error here is the stream's, seen by its next check */
    cudaStreamSynchronize((cudaStream_t)ctx->stream);
  }
#endif
  for (; n > keep; n--) {
    size_t lru = ctx->n_plans; /* the least recently used entry under prefix */
    for (size_t i = 0; i < ctx->n_plans; i++) {
      if (!has_prefix(ctx->plans[i].key, prefix)) continue;
      if (lru == ctx->n_plans || ctx->plans[i].used < ctx->plans[lru].used) lru = i;
    }
    dlk_plan_entry *e = &ctx->plans[lru];
    if (e->destroy) e->destroy(e->ptr);
    free(e->key);
    /* Close the gap without reordering: the others keep their insertion order. */
    memmove(e, e + 1, (ctx->n_plans - lru - 1) * sizeof *e);
    ctx->n_plans--;
  }
}

/* Destroy every entry, newest first. */
static void plan_cache_free(dlk_context *ctx) {
  for (size_t i = ctx->n_plans; i-- > 0;) {
    if (ctx->plans[i].destroy) ctx->plans[i].destroy(ctx->plans[i].ptr);
    free(ctx->plans[i].key);
  }
  free(ctx->plans);
  ctx->plans = NULL;
  ctx->n_plans = ctx->cap_plans = 0;
}

static dlk_status create_fail(dlk_context *ctx, dlk_status s) {
  dlk_set_create_error(ctx->err);
  dlk_context_destroy(ctx);
  return s;
}

#if DLK_HAVE_CUDA
static dlk_status open_cuda(dlk_context *ctx) {
  int n = cuda_device_count();
  if (n == 0)
    return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "dlk_context_create: no CUDA device (or no driver) present");
  if (ctx->device.id >= n)
    return dlk_fail(ctx, DLK_ERR_NO_DEVICE, "dlk_context_create: cuda:%d asked, %d device(s) present",
                    ctx->device.id, n);
  DLK_CUDA_TRY(ctx, cudaSetDevice(ctx->device.id));
  struct cudaDeviceProp prop;
  DLK_CUDA_TRY(ctx, cudaGetDeviceProperties(&prop, ctx->device.id));
  snprintf(ctx->device_name, sizeof ctx->device_name, "%s", prop.name);
  ctx->cc_major = prop.major;
  ctx->cc_minor = prop.minor;
  int probe = dlk_k_probe();
  if (probe == cudaErrorNoKernelImageForDevice || probe == cudaErrorUnsupportedPtxVersion) {
    cudaGetLastError();
    return dlk_fail(ctx, DLK_ERR_ARCH_UNSUPPORTED,
                    "dlk_context_create: %s has compute capability %d.%d; this build of dlk holds "
                    "kernels for %s only (rebuild with -DDLK_CUDA_ARCHS=%d%d)",
                    prop.name, prop.major, prop.minor, DLK_CUDA_ARCHS_STR, prop.major, prop.minor);
  }
  DLK_CUDA_TRY(ctx, probe);
  DLK_CUDA_TRY(ctx, cudaMallocHost(&ctx->host_scratch, 256));
  return DLK_OK;
}
#endif

dlk_status dlk_context_create(dlk_context **out, const dlk_context_options *opts) {
  if (!out) {
    dlk_set_create_error("dlk_context_create: out is NULL");
    return DLK_ERR_NULL_POINTER;
  }
  *out = NULL;
  dlk_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    dlk_set_create_error("dlk_context_create: out of memory");
    return DLK_ERR_OUT_OF_MEMORY;
  }
  if (opts) ctx->opts = *opts;
  ctx->opts.force_variant = NULL;
  ctx->device = ctx->opts.device;
  if (ctx->device.type == DLK_DEVICE_DEFAULT)
    ctx->device = cuda_device_count() > 0 ? (dlk_device){DLK_CUDA, 0} : (dlk_device){DLK_CPU, 0};
  if (ctx->device.type == DLK_CPU) {
    if (ctx->device.id != 0)
      return create_fail(ctx, dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                                       "dlk_context_create: the CPU device has id 0, not %d",
                                       ctx->device.id));
    snprintf(ctx->device_name, sizeof ctx->device_name, "cpu");
  } else if (ctx->device.type == DLK_CUDA) {
    if (ctx->device.id < 0)
      return create_fail(ctx, dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                                       "dlk_context_create: negative CUDA device id %d", ctx->device.id));
#if DLK_HAVE_CUDA
    dlk_status s = open_cuda(ctx);
    if (s != DLK_OK) return create_fail(ctx, s);
#else
    return create_fail(ctx, dlk_fail(ctx, DLK_ERR_NO_DEVICE,
                                     "dlk_context_create: a CUDA device was asked but this dlk was "
                                     "built without CUDA (DLK_CUDA=OFF or no toolkit found)"));
#endif
  } else {
    return create_fail(ctx, dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                                     "dlk_context_create: invalid device type %d", (int)ctx->device.type));
  }

  const char *env = getenv("DLK_FORCE_VARIANT");
  if (env && *env) {
    dlk_status s = dlk_parse_forced(ctx, env, "DLK_FORCE_VARIANT");
    if (s != DLK_OK) return create_fail(ctx, s);
  }
  if (opts && opts->force_variant) {
    dlk_status s = dlk_parse_forced(ctx, opts->force_variant, "options.force_variant");
    if (s != DLK_OK) return create_fail(ctx, s);
  }

  const char *cache = getenv("DLK_AUTOTUNE_CACHE");
  if (cache && *cache) {
    snprintf(ctx->tune_path, sizeof ctx->tune_path, "%s", cache);
    FILE *probe = fopen(cache, "rb");
    if (probe) {
      fclose(probe);
      /* A bad cache is reported in last_error and ignored: the context still works. */
      if (dlk_autotune_load(ctx, cache) != DLK_OK) {
        static const char prefix[] = "DLK_AUTOTUNE_CACHE: ";
        size_t keep = sizeof ctx->err - sizeof prefix;
        memmove(ctx->err + sizeof prefix - 1, ctx->err, keep);
        ctx->err[sizeof ctx->err - 1] = '\0';
        memcpy(ctx->err, prefix, sizeof prefix - 1);
      }
    }
  }
  *out = ctx;
  return DLK_OK;
}

void dlk_context_destroy(dlk_context *ctx) {
  if (!ctx) return;
  if (ctx->tune_path[0] && ctx->tune.count) dlk_autotune_save(ctx, ctx->tune_path);
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    cudaSetDevice(ctx->device.id);
    if (ctx->stream || ctx->ws) cudaStreamSynchronize((cudaStream_t)ctx->stream);
    plan_cache_free(ctx);
    for (int i = 0; i < 2; i++)
      if (ctx->events[i]) cudaEventDestroy((cudaEvent_t)ctx->events[i]);
    if (ctx->ws) cudaFree(ctx->ws);
    if (ctx->scratch) cudaFree(ctx->scratch);
    if (ctx->host_scratch) cudaFreeHost(ctx->host_scratch);
    cudaGetLastError();
  } else
#endif
  {
    free(ctx->ws);
    free(ctx->scratch);
  }
  plan_cache_free(ctx); /* a CPU context's entries (none today) */
  dlk_tune_free(&ctx->tune);
  free(ctx);
}

dlk_status dlk_context_device(dlk_context *ctx, dlk_device *out) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_context_device: out is NULL");
  *out = ctx->device;
  return DLK_OK;
}

dlk_status dlk_context_set_stream(dlk_context *ctx, void *stream) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (ctx->device.type != DLK_CUDA) {
    if (stream) return dlk_fail(ctx, DLK_ERR_DEVICE_MISMATCH, "dlk_context_set_stream: a CPU context has no stream");
    return DLK_OK;
  }
  /* Vendor handles are bound to ctx->stream each time a row fetches them
     (host/cublas/handle.c, host/cudnn/handle.c). */
  ctx->stream = stream;
  return DLK_OK;
}

dlk_status dlk_context_get_stream(dlk_context *ctx, void **stream) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!stream) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_context_get_stream: stream is NULL");
  *stream = ctx->stream;
  return DLK_OK;
}

dlk_status dlk_synchronize(dlk_context *ctx) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    DLK_TRY(dlk_cuda_enter(ctx));
    DLK_CUDA_TRY(ctx, cudaStreamSynchronize((cudaStream_t)ctx->stream));
  }
#endif
  return DLK_OK;
}

dlk_status dlk_context_set_deterministic(dlk_context *ctx, int on) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  ctx->opts.deterministic = on != 0;
  return DLK_OK;
}

dlk_status dlk_context_set_allow_tf32(dlk_context *ctx, int on) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  ctx->opts.allow_tf32 = on != 0;
  return DLK_OK;
}

dlk_status dlk_context_set_workspace_limit(dlk_context *ctx, size_t bytes) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  ctx->opts.workspace_limit = bytes;
  return DLK_OK;
}

dlk_status dlk_context_workspace_size(dlk_context *ctx, size_t *bytes) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!bytes) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_context_workspace_size: bytes is NULL");
  *bytes = ctx->ws_size + ctx->scratch_size;
  return DLK_OK;
}

/* Grow one arena block (ws or scratch) to at least `bytes`: geometrically (at least
   1 MiB) so a run of growing shapes reallocates rarely, never past the cap. */
static dlk_status arena_reserve(dlk_context *ctx, void **block, size_t *size, size_t bytes,
                                void **ptr, const char *what) {
  if (bytes <= *size) {
    *ptr = *block;
    return DLK_OK;
  }
  size_t cap = ctx->opts.workspace_limit;
  if (cap && bytes > cap)
    return dlk_fail(ctx, DLK_ERR_WORKSPACE_LIMIT, "%s: %zu bytes needed, the cap is %zu", what, bytes, cap);
  size_t want = bytes < (1u << 20) ? (1u << 20) : bytes;
  if (want < *size + *size / 2) want = *size + *size / 2;
  if (cap && want > cap) want = cap;
  if (want < bytes) want = bytes;
  void *p = NULL;
  if (ctx->device.type == DLK_CPU) {
    p = malloc(want);
    if (!p) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: malloc of %zu bytes failed", what, want);
    free(*block);
  } else {
#if DLK_HAVE_CUDA
    DLK_TRY(dlk_cuda_enter(ctx));
    /* cudaFree waits for the work that may still use the old block. */
    if (*block) DLK_CUDA_TRY(ctx, cudaFree(*block));
    *block = NULL;
    *size = 0;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: cudaMalloc of %zu bytes: %s", what, want,
                      cudaGetErrorString(e));
    }
#endif
  }
  *block = p;
  *size = want;
  *ptr = p;
  return DLK_OK;
}

dlk_status dlk_workspace_reserve(dlk_context *ctx, size_t bytes, void **ptr) {
  return arena_reserve(ctx, &ctx->ws, &ctx->ws_size, bytes, ptr, "workspace");
}

dlk_status dlk_scratch_reserve(dlk_context *ctx, size_t bytes, void **ptr) {
  return arena_reserve(ctx, &ctx->scratch, &ctx->scratch_size, bytes, ptr, "scratch");
}

dlk_status dlk_device_count(dlk_context *ctx, int *count) {
  if (!count) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_device_count: count is NULL");
  *count = cuda_device_count();
  return DLK_OK;
}

dlk_status dlk_device_properties(dlk_context *ctx, int id, dlk_device_props *out) {
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_device_properties: out is NULL");
  int n = cuda_device_count();
  if (id < 0 || id >= n)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "dlk_device_properties: device %d of %d", id, n);
#if DLK_HAVE_CUDA
  struct cudaDeviceProp p;
  DLK_CUDA_TRY(ctx, cudaGetDeviceProperties(&p, id));
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", p.name);
  out->compute_major = p.major;
  out->compute_minor = p.minor;
  out->sm_count = p.multiProcessorCount;
  out->total_memory = p.totalGlobalMem;
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, id) == cudaSuccess) out->clock_khz = v;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, id) == cudaSuccess) out->memory_clock_khz = v;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrGlobalMemoryBusWidth, id) == cudaSuccess) out->memory_bus_bits = v;
  cudaGetLastError();
  int cur = 0;
  cudaGetDevice(&cur);
  cudaSetDevice(id);
  out->supported = dlk_k_probe() == 0;
  cudaGetLastError();
  cudaSetDevice(cur);
  return DLK_OK;
#else
  return DLK_ERR_INTERNAL;
#endif
}
