/*
 * glove family: op tables and the public entry points for the model, the records, the
 * training epochs and evaluation, with the helpers the family shares (glibc rand(), host
 * staging buffers, record checks). The tokenizer and vocabulary live in vocab.c,
 * co-occurrence and shuffle in cooccur.c, file formats in io.c, the CPU variants in
 * glove_cpu.c, the CUDA rows in glove_cuda.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/check.h"
#include "glove.h"
#include "vocab.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* ---- op tables ---------------------------------------------------------------------- */

static void epoch_key(const void *args, char *buf, size_t n) {
  const dlk_glove_epoch_args *a = args;
  /* Speed depends on d, the table size (cache behaviour), dtype and thread count; the
     record count only matters in coarse classes (a short chunk vs a long epoch). */
  int64_t c = a->count, cls = 0;
  while (c >= 16 && cls < 40) c >>= 4, cls++;
  snprintf(buf, n, "d=%d,V=%" PRId64 ",%s,n16^%" PRId64 ",t=%d,keras=%d", a->dim, a->vocab_size,
           dlk_dtype_name(a->dtype), cls, a->threads, a->keras ? 1 : 0);
}

static void chunk_key(const void *args, char *buf, size_t n) {
  const dlk_glove_cooccur_chunk_args *a = args;
  int64_t c = a->n, cls = 0;
  while (c >= 16 && cls < 40) c >>= 4, cls++;
  snprintf(buf, n, "V=%" PRId64 ",win=%d,sym=%d,n16^%" PRId64, a->vocab_size, a->window,
           a->symmetric ? 1 : 0, cls);
}

static void topk_key(const void *args, char *buf, size_t n) {
  const dlk_glove_topk_args *a = args;
  snprintf(buf, n, "%" PRId64 "x%" PRId64 ",%s,k=%d,ex=%d", a->scores.shape[0], a->scores.shape[1],
           dlk_dtype_name(a->scores.dtype), a->k, a->n_exclude);
}

/* The outputs each call writes (dlk_op.outputs), as stand-in descriptors of what the
   records hold as pointers: an epoch writes the model and two host figures, a chunk its
   records and a host count (so neither is ever skipped), a top-k its [cols, k] ids and
   scores (nothing to do when there are no queries or k is 0). */
static int epoch_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_glove_epoch_args *a = args;
  dlk_tensor p = dlk_output_desc(a->params, a->dtype, DLK_DEVICE_DEFAULT, 2, 2 * a->vocab_size,
                                 (int64_t)a->dim + 1);
  dlk_tensor g = p;
  g.data = a->gradsq;
  dlk_tensor cost = dlk_output_desc(a->cost_sum, DLK_F64, DLK_CPU, 0, 0, 0);
  dlk_tensor skipped = dlk_output_desc(a->skipped, DLK_I64, DLK_CPU, 0, 0, 0);
  int n = dlk_list_output(out, max, 0, &p);
  n = dlk_list_output(out, max, n, &g);
  n = dlk_list_output(out, max, n, &cost);
  return dlk_list_output(out, max, n, &skipped);
}

static int chunk_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_glove_cooccur_chunk_args *a = args;
  dlk_tensor recs = dlk_output_desc(a->out, DLK_U8, DLK_CPU, 2, a->out_cap,
                                    (int64_t)sizeof(dlk_glove_record));
  dlk_tensor count = dlk_output_desc(a->out_count, DLK_I64, DLK_CPU, 0, 0, 0);
  int n = dlk_list_output(out, max, 0, &recs);
  return dlk_list_output(out, max, n, &count);
}

static int topk_outputs(const void *args, dlk_tensor *out, int max) {
  const dlk_glove_topk_args *a = args;
  dlk_tensor idx = dlk_output_desc(a->idx, DLK_I32, DLK_CPU, 2, a->scores.shape[1], a->k);
  dlk_tensor val = dlk_output_desc(a->val, DLK_F64, DLK_CPU, 2, a->scores.shape[1], a->k);
  int n = dlk_list_output(out, max, 0, &idx);
  return dlk_list_output(out, max, n, &val);
}

/* Variant tables, one row per variant: {id, name, device, impl, description, supports,
   workspace, run}. CPU rows in glove_cpu.c, CUDA rows in glove_cuda.c over the kernels
   of kernels/glove/. */
static const dlk_variant epoch_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "single thread, f64, records in order: the tool with -threads 1",
     dlk_glove_epoch_cpu_supports, dlk_glove_epoch_cpu_workspace, dlk_glove_epoch_cpu_run},
    {20, "cpu_hogwild", DLK_CPU, 0, "pthreads, lock-free Hogwild updates like the tool's threads",
     dlk_glove_epoch_hogwild_supports, dlk_glove_epoch_hogwild_workspace,
     dlk_glove_epoch_hogwild_run},
#if DLK_HAVE_CUDA
    {1, "warp", DLK_CUDA, 1,
     "lock-free Hogwild: a group of 8/16/32 lanes per record, rows in registers (16-byte "
     "loads when rows are aligned), steps added atomically, records in flight capped by the "
     "chunk's hottest row; F32 and F64",
     dlk_glove_epoch_cuda_supports, dlk_glove_epoch_cuda_workspace, dlk_glove_epoch_cuda_run},
    {2, "det", DLK_CUDA, 2,
     "deterministic: each record waits for the previous record of its word and context rows "
     "(schedule from two radix sorts per chunk), so rows see record order; fixed-order cost sum",
     dlk_glove_epoch_cuda_supports, dlk_glove_epoch_cuda_workspace, dlk_glove_epoch_cuda_run},
#endif
};

static const dlk_variant chunk_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "pairs in the tool's order, stable radix sort, sums in order", NULL,
     dlk_glove_cooccur_chunk_cpu_workspace, dlk_glove_cooccur_chunk_cpu_run},
#if DLK_HAVE_CUDA
    {1, "sort_rbk", DLK_CUDA, 1,
     "window pairs generated on the GPU, cub radix sort by (w1, w2) over 2 x bitlen(V) bits, "
     "cub ReduceByKey (f64 sums, order not fixed)",
     dlk_glove_cooccur_chunk_cuda_supports, dlk_glove_cooccur_chunk_cuda_workspace,
     dlk_glove_cooccur_chunk_cuda_run},
    {2, "sort_ordered", DLK_CUDA, 2,
     "window pairs generated on the GPU in the reference's order, stable cub radix sort, each "
     "pair summed in that order by one thread: deterministic, the CPU reference's bits",
     dlk_glove_cooccur_chunk_cuda_supports, dlk_glove_cooccur_chunk_cuda_workspace,
     dlk_glove_cooccur_chunk_cuda_run},
#endif
};

static const dlk_variant topk_variants[] = {
    {0, "cpu_ref", DLK_CPU, 0, "row-major scan, best k per column", dlk_glove_topk_cpu_supports,
     NULL, dlk_glove_topk_cpu_run},
#if DLK_HAVE_CUDA
    {1, "lanes", DLK_CUDA, 1,
     "k <= 32: a lane per column (coalesced rows), warps over row slices keep sorted lists in "
     "registers, then one thread per column merges the slices",
     dlk_glove_topk_cuda_supports, dlk_glove_topk_cuda_workspace, dlk_glove_topk_cuda_run},
    {2, "sort", DLK_CUDA, 2,
     "any k: order-preserving u64 keys (NaN and excluded rows last), stable radix sort per "
     "column, the first k",
     dlk_glove_topk_cuda_supports, dlk_glove_topk_cuda_workspace, dlk_glove_topk_cuda_run},
#endif
};

/* On the CPU the Hogwild trainer is the default whenever more than one thread is asked
   for; one thread runs the reference (the same work, and bit-exact with the tool), and so
   does deterministic mode (Hogwild threads race). On a GPU: the Hogwild kernel (1) unless
   the context asks for determinism (then the deterministic variant, the only one that
   supports it). An epoch changes the model, so it is never autotuned. */
static int epoch_heuristic(const dlk_context *ctx, const void *args) {
  const dlk_glove_epoch_args *a = args;
  if (ctx->device.type == DLK_CPU) return a->threads > 1 && !ctx->opts.deterministic ? 20 : 0;
  return ctx->opts.deterministic ? -1 : 1;
}

/* An epoch changes the model: never time it more than once per call. */
const dlk_op dlk_glove_epoch_op = {"glove_epoch", epoch_variants, DLK_COUNT_OF(epoch_variants),
                                   epoch_key, epoch_heuristic, false, epoch_outputs};
const dlk_op dlk_glove_cooccur_chunk_op = {"glove_cooccur_chunk", chunk_variants,
                                           DLK_COUNT_OF(chunk_variants), chunk_key, NULL, true,
                                           chunk_outputs};
const dlk_op dlk_glove_topk_op = {"glove_topk", topk_variants, DLK_COUNT_OF(topk_variants), topk_key,
                                  NULL, true, topk_outputs};

const dlk_op *const dlk_glove_ops[] = {&dlk_glove_epoch_op, &dlk_glove_cooccur_chunk_op,
                                       &dlk_glove_topk_op, NULL};

int dlk_glove_cpu_threads(const dlk_context *ctx, int requested) {
  if (requested > 0) return requested;
  if (ctx && ctx->opts.cpu_threads > 0) return ctx->opts.cpu_threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* ---- helpers ---------------------------------------------------------------------------- */

void *dlk_glove_host_alloc(const dlk_context *ctx, size_t bytes, bool *pinned) {
  *pinned = false;
  if (bytes == 0) bytes = 1;
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    void *p = NULL;
    if (dlk_cuda_enter((dlk_context *)ctx) == DLK_OK && cudaMallocHost(&p, bytes) == cudaSuccess) {
      *pinned = true;
      return p;
    }
    cudaGetLastError(); /* a refused pin is not an error: fall back to pageable memory */
  }
#else
  (void)ctx;
#endif
  return malloc(bytes);
}

void dlk_glove_host_free(void *p, bool pinned) {
  if (!p) return;
#if DLK_HAVE_CUDA
  if (pinned) {
    if (cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
    return;
  }
#else
  (void)pinned;
#endif
  free(p);
}

dlk_status dlk_glove_device_free_bytes(dlk_context *ctx, size_t *bytes) {
  *bytes = 0;
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    size_t fr = 0, tot = 0;
    DLK_TRY(dlk_cuda_enter(ctx));
    DLK_CUDA_TRY(ctx, cudaMemGetInfo(&fr, &tot));
    *bytes = fr + ctx->ws_size;
  }
#else
  (void)ctx;
#endif
  return DLK_OK;
}

static dlk_status need_ctx(dlk_context *ctx) { return ctx ? DLK_OK : DLK_ERR_NULL_POINTER; }

static bool finite_pos(double v) { return isfinite(v) && v > 0; }

/* ---- glibc rand() ---------------------------------------------------------------------- */

void dlk_glibc_srand(dlk_glibc_rand *g, uint32_t seed) {
  if (seed == 0) seed = 1; /* glibc: "the seed must not be 0" */
  int32_t word = (int32_t)seed;
  g->state[0] = word;
  for (int i = 1; i < 31; i++) {
    /* state[i] = 16807 * state[i-1] mod (2^31 - 1), by Schrage's method without overflow. */
    long hi = word / 127773, lo = word % 127773;
    word = (int32_t)(16807 * lo - 2836 * hi);
    if (word < 0) word += 2147483647;
    g->state[i] = word;
  }
  g->f = 3;
  g->r = 0;
  for (int i = 0; i < 310; i++) dlk_glibc_rand_next(g);
}

int32_t dlk_glibc_rand_next(dlk_glibc_rand *g) {
  uint32_t v = (uint32_t)g->state[g->f] + (uint32_t)g->state[g->r];
  g->state[g->f] = (int32_t)v;
  g->f = g->f == 30 ? 0 : g->f + 1;
  g->r = g->r == 30 ? 0 : g->r + 1;
  return (int32_t)(v >> 1);
}

/* Every record valid? One branch-free pass (vectorisable): an id is in [1, V] when
   id - 1, as unsigned, is below V; a count is finite and > 0 when 0 < x <= DBL_MAX (NaN
   fails both comparisons). The slow pass below runs only to name the first bad record. */
static bool records_all_valid(const dlk_glove_record *r, int64_t n, int64_t V) {
  if (V < 1 || V > INT32_MAX) return false;
  const uint32_t v = (uint32_t)V;
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t a = (uint32_t)r[i].w1 - 1u, b = (uint32_t)r[i].w2 - 1u;
    double x = r[i].x;
    bad |= (a >= v) | (b >= v) | !((x > 0.0) & (x <= DBL_MAX));
  }
  return bad == 0;
}

dlk_status dlk_glove_check_records_msg(const char *what, const dlk_glove_record *r, int64_t n,
                                       int64_t V, int64_t base, char *msg, size_t len) {
  if (records_all_valid(r, n, V)) return DLK_OK;
  for (int64_t i = 0; i < n; i++) {
    if (r[i].w1 < 1 || r[i].w1 > V || r[i].w2 < 1 || r[i].w2 > V) {
      snprintf(msg, len, "%s: record %lld has ids (%d, %d) outside [1, %lld] (the vocabulary size)",
               what, (long long)(base + i), r[i].w1, r[i].w2, (long long)V);
      return DLK_ERR_OUT_OF_RANGE;
    }
    if (!isfinite(r[i].x)) {
      snprintf(msg, len, "%s: record %lld (%d, %d) has a count of %g", what, (long long)(base + i),
               r[i].w1, r[i].w2, r[i].x);
      return DLK_ERR_NOT_FINITE;
    }
    if (!(r[i].x > 0)) {
      snprintf(msg, len, "%s: record %lld (%d, %d) has a count of %g; counts must be > 0", what,
               (long long)(base + i), r[i].w1, r[i].w2, r[i].x);
      return DLK_ERR_OUT_OF_RANGE;
    }
  }
  return DLK_OK; /* only V outside [1, 2^31) failed the fast pass, and nothing was out of it */
}

dlk_status dlk_glove_check_records(dlk_context *ctx, const char *what, const dlk_glove_record *r,
                                   int64_t n, int64_t V, int64_t base) {
  char msg[DLK_ERRMSG_LEN];
  dlk_status s = dlk_glove_check_records_msg(what, r, n, V, base, msg, sizeof msg);
  return s == DLK_OK ? DLK_OK : dlk_fail(ctx, s, "%s", msg);
}

/* ---- model -------------------------------------------------------------------------------- */

/* Ask for transparent huge pages on a large host table before it is first touched: the
   trainer reads rows at random, and with 4 KiB pages nearly every row costs a TLB miss.
   Advice only: failure (or a kernel without THP) changes nothing. */
void dlk_glove_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
  if (bytes >= 8 * huge && e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
  (void)p, (void)bytes;
#endif
}

dlk_status dlk_glove_check_model(dlk_context *ctx, const char *op, const dlk_glove_model *m) {
  if (!m) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: model is NULL", op);
  if (!m->params.data || !m->gradsq.data)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: the model is not created", op);
  if (m->vocab_size < 1 || m->vocab_size > INT32_MAX)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: the model's vocab_size %lld is not in [1, 2^31)", op,
                    (long long)m->vocab_size);
  if (m->dim < 1 || m->dim > (1 << 20))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: the model's dim %d is not in [1, 2^20]", op, m->dim);
  DLK_TRY(dlk_check_tensor(ctx, op, "params", &m->params));
  DLK_TRY(dlk_check_tensor(ctx, op, "gradsq", &m->gradsq));
  if (m->params.dtype != m->gradsq.dtype || (m->params.dtype != DLK_F64 && m->params.dtype != DLK_F32))
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: params are %s, gradsq %s (one of F64, F32)", op,
                    dlk_dtype_name(m->params.dtype), dlk_dtype_name(m->gradsq.dtype));
  const int64_t rows = 2 * m->vocab_size, cols = (int64_t)m->dim + 1;
  if (m->params.ndim != 2 || m->params.shape[0] != rows || m->params.shape[1] != cols ||
      !dlk_tensor_is_contiguous(&m->params) || m->gradsq.ndim != 2 || m->gradsq.shape[0] != rows ||
      m->gradsq.shape[1] != cols || !dlk_tensor_is_contiguous(&m->gradsq))
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: params and gradsq must be contiguous [2V, d+1] = [%lld, %lld]", op,
                    (long long)rows, (long long)cols);
  return dlk_check_disjoint(ctx, op, "params", &m->params, "gradsq", &m->gradsq);
}

dlk_status dlk_glove_model_create(dlk_context *ctx, int64_t V, int dim, dlk_dtype dtype,
                                  uint32_t seed, dlk_glove_model *m) {
  static const char op[] = "glove_model_create";
  DLK_TRY(need_ctx(ctx));
  if (!m) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: model is NULL", op);
  if (V < 1 || V > INT32_MAX)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: vocab_size %lld not in [1, 2^31)", op, (long long)V);
  if (dim < 1 || dim > (1 << 20))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: vector size %d not in [1, 2^20]", op, dim);
  if (dtype != DLK_F64 && dtype != DLK_F32)
    return dlk_fail(ctx, DLK_ERR_DTYPE_MISMATCH, "%s: dtype %s; F64 or F32", op, dlk_dtype_name(dtype));
  int64_t n;
  if (dlk_mul_overflows(2 * V, dim + 1, &n) || n > ((int64_t)1 << 40))
    return dlk_fail(ctx, DLK_ERR_OVERFLOW, "%s: 2V(d+1) overflows", op);
  double *h = malloc((size_t)n * sizeof *h);
  if (!h) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld doubles)", op, (long long)n);
  dlk_glove_model nm;
  memset(&nm, 0, sizeof nm);
  int64_t shape[2] = {2 * V, dim + 1};
  dlk_status st = dlk_tensor_alloc(ctx, &nm.params, dtype, 2, shape);
  if (st == DLK_OK && (st = dlk_tensor_alloc(ctx, &nm.gradsq, dtype, 2, shape)) != DLK_OK)
    dlk_tensor_free(ctx, &nm.params);
  if (st != DLK_OK) {
    free(h);
    return st;
  }
  if (ctx->device.type == DLK_CPU) {
    dlk_glove_huge_pages(nm.params.data, (size_t)n * dlk_dtype_size(dtype));
    dlk_glove_huge_pages(nm.gradsq.data, (size_t)n * dlk_dtype_size(dtype));
  }
  /* The tool: srand(seed); W[a] = (rand() / (real)RAND_MAX - 0.5) / vector_size for every
     value in memory order, biases included. */
  dlk_glibc_rand g;
  dlk_glibc_srand(&g, seed);
  for (int64_t a = 0; a < n; a++)
    h[a] = ((double)dlk_glibc_rand_next(&g) / (double)DLK_GLIBC_RAND_MAX - 0.5) / dim;
  nm.vocab_size = V;
  nm.dim = dim;
  /* Write (narrowing for F32 in place), then G = 1. */
  if (dtype == DLK_F64) {
    st = dlk_tensor_write(ctx, &nm.params, h, (size_t)n * sizeof *h);
    for (int64_t a = 0; a < n; a++) h[a] = 1.0;
    if (st == DLK_OK) st = dlk_tensor_write(ctx, &nm.gradsq, h, (size_t)n * sizeof *h);
  } else {
    float *f = (float *)h;
    for (int64_t a = 0; a < n; a++) f[a] = (float)h[a];
    st = dlk_tensor_write(ctx, &nm.params, f, (size_t)n * sizeof *f);
    for (int64_t a = 0; a < n; a++) f[a] = 1.0f;
    if (st == DLK_OK) st = dlk_tensor_write(ctx, &nm.gradsq, f, (size_t)n * sizeof *f);
  }
  free(h);
  if (st != DLK_OK) {
    dlk_tensor_free(ctx, &nm.params);
    dlk_tensor_free(ctx, &nm.gradsq);
    return st;
  }
  *m = nm;
  return DLK_OK;
}

dlk_status dlk_glove_model_free(dlk_context *ctx, dlk_glove_model *m) {
  DLK_TRY(need_ctx(ctx));
  if (!m) return DLK_OK;
  dlk_status a = dlk_tensor_free(ctx, &m->params), b = dlk_tensor_free(ctx, &m->gradsq);
  memset(m, 0, sizeof *m);
  return a != DLK_OK ? a : b;
}

/* ---- records ------------------------------------------------------------------------------ */

/* Streamed records (too large to stay on the device) are read from the file chunk by
   chunk every epoch. The host keeps two chunk buffers (pinned with cudaMallocHost on a
   CUDA context: uploads then run at full PCIe speed and asynchronously; malloc on a CPU
   one) and, on a GPU, a device buffer for each: while chunk k trains out of buffer k % 2,
   the reader thread of the other buffer fills it (read, check, upload on its own stream).
   All of it is allocated once, when the records are opened. */
struct dlk_glove_records {
  int64_t count, V, chunk;
  bool resident;
  dlk_tensor data;        /* resident: U8 [count * 16] on the context's device */
  char path[4096];        /* streamed: the file */
  int64_t bufn;           /* streamed: records per chunk buffer (min(chunk, count)) */
  dlk_glove_record *host[2]; /* streamed: the host chunk buffers */
  bool pinned;            /* host[] from cudaMallocHost */
  dlk_tensor dev[2];      /* streamed on a GPU: the device chunk buffers */
  void *copy_stream[2];   /* streamed on a GPU: each buffer's reader's cudaStream_t (non-blocking) */
};

#define DEFAULT_CHUNK ((int64_t)4 << 20)

static size_t auto_resident(dlk_context *ctx) {
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    size_t fr = 0, tot = 0;
    if (dlk_cuda_enter(ctx) == DLK_OK && cudaMemGetInfo(&fr, &tot) == cudaSuccess) return fr / 2;
    cudaGetLastError();
    return 0;
  }
#else
  (void)ctx;
#endif
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psz <= 0) return (size_t)1 << 30;
  return (size_t)pages * (size_t)psz / 4;
}

/* Free everything r holds; the first failure's status (the rest is freed anyway). */
static dlk_status records_release(dlk_context *ctx, dlk_glove_records *r) {
  if (!r) return DLK_OK;
  dlk_status st = dlk_tensor_free(ctx, &r->data);
  for (int b = 0; b < 2; b++) {
    dlk_status s = dlk_tensor_free(ctx, &r->dev[b]);
    if (st == DLK_OK) st = s;
    dlk_glove_host_free(r->host[b], r->pinned);
  }
#if DLK_HAVE_CUDA
  for (int b = 0; b < 2; b++)
    if (r->copy_stream[b] && cudaStreamDestroy((cudaStream_t)r->copy_stream[b]) != cudaSuccess && st == DLK_OK)
      st = dlk_fail(ctx, DLK_ERR_CUDA, "glove_records_free: cudaStreamDestroy failed");
#endif
  free(r);
  return st;
}

dlk_status dlk_glove_records_free(dlk_context *ctx, dlk_glove_records *r) {
  DLK_TRY(need_ctx(ctx));
  return records_release(ctx, r);
}

/* The streaming buffers of r (r->bufn records each): pinned host buffers on a CUDA
   context (pageable ones if the driver refuses to pin that much: slower uploads, same
   results), the device buffers and the reader's copy stream. */
static dlk_status stream_buffers(dlk_context *ctx, dlk_glove_records *r) {
  static const char op[] = "glove_records_open";
  size_t bytes = (size_t)r->bufn * sizeof(dlk_glove_record);
  bool pin[2] = {false, false};
  for (int b = 0; b < 2; b++) r->host[b] = dlk_glove_host_alloc(ctx, bytes, &pin[b]);
  if (pin[0] != pin[1]) { /* one flag for both: never mix */
    for (int b = 0; b < 2; b++) dlk_glove_host_free(r->host[b], pin[b]), r->host[b] = NULL;
    for (int b = 0; b < 2; b++) r->host[b] = malloc(bytes);
    pin[0] = false;
  }
  r->pinned = pin[0];
  if (!r->host[0] || !r->host[1])
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory (two chunk buffers of %lld records)",
                    op, (long long)r->bufn);
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA) {
    int64_t shape[1] = {(int64_t)bytes};
    for (int b = 0; b < 2; b++) DLK_TRY(dlk_tensor_alloc(ctx, &r->dev[b], DLK_U8, 1, shape));
    DLK_TRY(dlk_cuda_enter(ctx));
    for (int b = 0; b < 2; b++) {
      cudaStream_t cs;
      DLK_CUDA_TRY(ctx, cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking));
      r->copy_stream[b] = cs;
    }
  }
#endif
  return DLK_OK;
}

static dlk_status records_params(dlk_context *ctx, const char *op, const dlk_glove_records_params *p) {
  if (!p) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: params are NULL (vocab_size is needed)", op);
  if (p->vocab_size < 1 || p->vocab_size > INT32_MAX)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: vocab_size %lld not in [1, 2^31)", op,
                    (long long)p->vocab_size);
  if (p->chunk_records < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: chunk_records < 0", op);
  return DLK_OK;
}

/* Upload host records [0, n) into a fresh resident tensor. */
static dlk_status make_resident(dlk_context *ctx, dlk_glove_records *r, const dlk_glove_record *h,
                                int64_t n) {
  int64_t shape[1] = {n * (int64_t)sizeof *h};
  if (n == 0) return DLK_OK;
  DLK_TRY(dlk_tensor_alloc(ctx, &r->data, DLK_U8, 1, shape));
  return dlk_tensor_write(ctx, &r->data, h, (size_t)shape[0]);
}

dlk_status dlk_glove_records_from_host(dlk_context *ctx, const dlk_glove_records_params *p,
                                       const dlk_glove_record *recs, int64_t count,
                                       dlk_glove_records **out) {
  static const char op[] = "glove_records_from_host";
  DLK_TRY(need_ctx(ctx));
  DLK_TRY(records_params(ctx, op, p));
  if (!out || (!recs && count)) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  if (count < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: count %lld < 0", op, (long long)count);
  DLK_TRY(dlk_glove_check_records(ctx, op, recs, count, p->vocab_size, 0));
  dlk_glove_records *r = calloc(1, sizeof *r);
  if (!r) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  r->count = count;
  r->V = p->vocab_size;
  r->chunk = p->chunk_records ? p->chunk_records : DEFAULT_CHUNK;
  r->resident = true;
  dlk_status st = make_resident(ctx, r, recs, count);
  if (st != DLK_OK) {
    records_release(ctx, r);
    return st;
  }
  *out = r;
  return DLK_OK;
}

/* pread exactly `bytes` at `off` (retrying short reads and EINTR); the bytes read. */
static size_t pread_full(int fd, void *buf, size_t bytes, int64_t off, int *err) {
  size_t got = 0;
  *err = 0;
  while (got < bytes) {
    ssize_t k = pread(fd, (char *)buf + got, bytes - got, (off_t)(off + (int64_t)got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) *err = errno;
    if (k <= 0) break;
    got += (size_t)k;
  }
  return got;
}

dlk_status dlk_glove_records_open(dlk_context *ctx, const dlk_glove_records_params *p,
                                  const char *path, dlk_glove_records **out) {
  static const char op[] = "glove_records_open";
  DLK_TRY(need_ctx(ctx));
  DLK_TRY(records_params(ctx, op, p));
  if (!path || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  if (strlen(path) >= sizeof(((dlk_glove_records *)0)->path))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: path too long", op);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return dlk_fail(ctx, DLK_ERR_IO, "%s: %s is not a regular file", op, path);
  }
  long long size = (long long)sb.st_size;
  if (size % (long long)sizeof(dlk_glove_record)) {
    close(fd);
    return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                    "%s: %s has %lld bytes, not a multiple of 16: truncated or not a records file",
                    op, path, size);
  }
  int64_t count = size / (long long)sizeof(dlk_glove_record);
  size_t limit = p->max_resident_bytes ? p->max_resident_bytes : auto_resident(ctx);
  bool resident = (uint64_t)size <= (uint64_t)limit;
  dlk_glove_records *r = calloc(1, sizeof *r);
  if (!r) {
    close(fd);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  }
  r->count = count;
  r->V = p->vocab_size;
  r->chunk = p->chunk_records ? p->chunk_records : DEFAULT_CHUNK;
  r->resident = resident;
  snprintf(r->path, sizeof r->path, "%s", path);
  /* Read and check everything once: a resident set into one host block (on a CPU
     context that block is the resident copy), a streamed one through chunk buffer 0. */
  dlk_status st = DLK_OK;
  dlk_glove_record *all = NULL;
  int64_t bufn = resident ? count : (r->chunk < count ? r->chunk : count);
  if (resident && count > 0 && !(all = malloc((size_t)count * sizeof *all)))
    st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld records)", op, (long long)count);
  if (!resident && bufn > 0) {
    r->bufn = bufn;
    st = stream_buffers(ctx, r);
  }
  for (int64_t done = 0; st == DLK_OK && done < count;) {
    int64_t n = count - done < bufn ? count - done : bufn;
    dlk_glove_record *dst = resident ? all + done : r->host[0];
    int err;
    size_t want = (size_t)n * sizeof *dst, got = pread_full(fd, dst, want, done * 16, &err);
    if (got != want) {
      st = dlk_fail(ctx, DLK_ERR_IO, "%s: %s: short read at record %lld (%s)", op, path,
                    (long long)(done + (int64_t)(got / 16)), err ? strerror(err) : "the file changed?");
      break;
    }
    st = dlk_glove_check_records(ctx, path, dst, n, p->vocab_size, done);
    done += n;
  }
  close(fd);
  if (st == DLK_OK && resident) {
    if (ctx->device.type == DLK_CPU) {
      /* The host block is the resident copy: describe it as a U8 tensor. */
      int64_t shape[1] = {count * (int64_t)sizeof *all};
      if (count > 0) st = dlk_tensor_init(ctx, &r->data, all, DLK_U8, ctx->device, 1, shape);
      if (st == DLK_OK) all = NULL; /* owned by r->data now */
    } else {
      st = make_resident(ctx, r, all, count);
    }
  }
  free(all);
  if (st != DLK_OK) {
    records_release(ctx, r);
    return st;
  }
  *out = r;
  return DLK_OK;
}

dlk_status dlk_glove_records_info(dlk_context *ctx, const dlk_glove_records *r, int64_t *count,
                                  int *resident) {
  DLK_TRY(need_ctx(ctx));
  if (!r) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_records_info: records are NULL");
  if (count) *count = r->count;
  if (resident) *resident = r->resident;
  return DLK_OK;
}

/* ---- training ------------------------------------------------------------------------------ */

dlk_status dlk_glove_train_defaults(dlk_context *ctx, dlk_glove_train_params *out) {
  DLK_TRY(need_ctx(ctx));
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_train_defaults: out is NULL");
  memset(out, 0, sizeof *out);
  out->eta = 0.05;
  out->alpha = 0.75;
  out->x_max = 100.0;
  out->grad_clip = 100.0;
  return DLK_OK;
}

/* Run the epoch op over one chunk already on the device. */
static dlk_status run_chunk(dlk_context *ctx, dlk_glove_epoch_args *a, const dlk_glove_record *recs,
                            int64_t n, double *cost, int64_t *skipped) {
  double c = 0;
  int64_t s = 0;
  a->records = recs;
  a->count = n;
  a->cost_sum = &c;
  a->skipped = &s;
  DLK_TRY(dlk_dispatch(ctx, &dlk_glove_epoch_op, a));
  if (ctx->explain) return DLK_OK; /* nothing ran: the report is written */
  *cost += c;
  *skipped += s;
  return DLK_OK;
}

static dlk_status cancelled(dlk_context *ctx, int64_t done, int64_t total) {
  return dlk_fail(ctx, DLK_ERR_INTERRUPTED, "glove_train_epoch: cancelled after %lld of %lld records",
                  (long long)done, (long long)total);
}

/* Resident records run in about 64 pieces (at least 64k records, at most the chunk size),
   so that progress and cancel come often. */
static dlk_status train_resident(dlk_context *ctx, const dlk_glove_train_params *p,
                                 const dlk_glove_records *r, dlk_glove_epoch_args *a, double *cost,
                                 int64_t *skipped) {
  int64_t step = r->count / 64;
  if (step < 65536) step = 65536;
  if (step > r->chunk) step = r->chunk;
  for (int64_t done = 0; done < r->count;) {
    if (p->cancel && *p->cancel) return cancelled(ctx, done, r->count);
    int64_t n = r->count - done < step ? r->count - done : step;
    DLK_TRY(run_chunk(ctx, a, (const dlk_glove_record *)r->data.data + done, n, cost, skipped));
    if (ctx->explain) return DLK_OK;
    done += n;
    if (p->progress) p->progress(p->progress_user, done, r->count, *cost);
  }
  return DLK_OK;
}

/* ---- streamed training: a reader thread per chunk slot ----
   Chunk k lives in slot k % 2, and slot b has its own reader thread for chunks b, b+2,
   b+4... It fills the slot when it is EMPTY (pread of the chunk in 1 MiB pieces, each
   checked while it is still in cache and, on a GPU, copied to the slot's device buffer
   with cudaMemcpyAsync from pinned memory on the reader's own stream, synchronised at the
   end of the chunk) and marks it FULL with a status: DLK_OK or the reason the chunk cannot
   be used (short read, bad record, CUDA error), after which that reader stops. The trainer
   takes the slots in chunk order when FULL, trains them, and marks them EMPTY again: the
   read, check and upload of chunk k+1 overlap the kernel of chunk k, and when reading is
   the slower part the two readers read chunks k+1 and k+2 at once (a copy from the page
   cache is bound by one core). Readers never touch the context (it is not thread-safe):
   a failure carries its own message, which the trainer records when it reaches that
   chunk. Cancel, an error or the end of the epoch set `stop`, wake the readers and join
   them before the epoch returns. */

#define STREAM_PIECE ((int64_t)65536) /* records per pread (1 MiB) */

typedef struct stream_slot {
  bool full;
  dlk_status st; /* the chunk's status once full */
  char msg[DLK_ERRMSG_LEN];
} stream_slot;

typedef struct streamer streamer;
typedef struct stream_reader_arg {
  streamer *s;
  int b; /* the slot this reader fills */
} stream_reader_arg;

struct streamer {
  const dlk_glove_records *r;
  int fd;
  bool gpu;
  int device_id;
  int64_t nchunks;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  stream_slot slot[2];
  stream_reader_arg arg[2];
  atomic_int stop;
};

#if DLK_HAVE_CUDA
#define STREAM_CUDA(call, what)                                                                    \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      snprintf(sl->msg, sizeof sl->msg, "glove_train_epoch: %s of the chunk at record %lld: %s (%s:%d)", \
               what, (long long)first, cudaGetErrorString(e_), __FILE__, __LINE__);                \
      return DLK_ERR_CUDA;                                                                         \
    }                                                                                              \
  } while (0)
#endif

/* Read, check and (GPU) upload chunk k into its slot's buffers; DLK_OK or the failure with
   its message in sl->msg. Runs on the reader thread (or inline when no thread could be
   started). */
static dlk_status stream_fill(streamer *s, int64_t k, stream_slot *sl) {
  const dlk_glove_records *r = s->r;
  int b = (int)(k & 1);
  int64_t first = k * r->bufn, n = r->count - first < r->bufn ? r->count - first : r->bufn;
  dlk_glove_record *h = r->host[b];
  for (int64_t off = 0; off < n; off += STREAM_PIECE) {
    if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
      snprintf(sl->msg, sizeof sl->msg, "glove_train_epoch: reading stopped");
      return DLK_ERR_INTERRUPTED;
    }
    int64_t m = n - off < STREAM_PIECE ? n - off : STREAM_PIECE;
    int err;
    size_t want = (size_t)m * sizeof *h, got = pread_full(s->fd, h + off, want, (first + off) * 16, &err);
    if (got != want) {
      snprintf(sl->msg, sizeof sl->msg, "glove_train_epoch: %.600s: short read at record %lld (%s)", r->path,
               (long long)(first + off + (int64_t)(got / 16)), err ? strerror(err) : "the file changed?");
      return DLK_ERR_IO;
    }
    /* Checked again: the file may have changed since it was opened. */
    dlk_status st = dlk_glove_check_records_msg(r->path, h + off, m, r->V, first + off, sl->msg, sizeof sl->msg);
    if (st != DLK_OK) return st;
#if DLK_HAVE_CUDA
    if (s->gpu)
      STREAM_CUDA(cudaMemcpyAsync((char *)r->dev[b].data + off * 16, h + off, want, cudaMemcpyHostToDevice,
                                  (cudaStream_t)r->copy_stream[b]),
                  "upload");
#endif
  }
#if DLK_HAVE_CUDA
  if (s->gpu) STREAM_CUDA(cudaStreamSynchronize((cudaStream_t)r->copy_stream[b]), "upload");
#endif
  return DLK_OK;
}

static void *stream_reader(void *varg) {
  const stream_reader_arg *arg = varg;
  streamer *s = arg->s;
  dlk_status dev_st = DLK_OK;
  char dev_msg[256] = "";
#if DLK_HAVE_CUDA
  /* A new thread starts on device 0: use the context's. */
  if (s->gpu) {
    cudaError_t e = cudaSetDevice(s->device_id);
    if (e != cudaSuccess) {
      dev_st = DLK_ERR_CUDA;
      snprintf(dev_msg, sizeof dev_msg, "glove_train_epoch: the reader thread cannot use device %d: %s",
               s->device_id, cudaGetErrorString(e));
    }
  }
#endif
  for (int64_t k = arg->b; k < s->nchunks; k += 2) {
    stream_slot *sl = &s->slot[arg->b];
    pthread_mutex_lock(&s->mu);
    while (sl->full && !atomic_load(&s->stop)) pthread_cond_wait(&s->cv, &s->mu);
    bool stop = atomic_load(&s->stop);
    pthread_mutex_unlock(&s->mu);
    if (stop) break;
    dlk_status st = dev_st;
    if (st != DLK_OK) snprintf(sl->msg, sizeof sl->msg, "%s", dev_msg);
    else st = stream_fill(s, k, sl);
    pthread_mutex_lock(&s->mu);
    sl->st = st;
    sl->full = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (st != DLK_OK) break; /* the trainer stops at this chunk */
  }
  return NULL;
}

static dlk_status train_streamed(dlk_context *ctx, const dlk_glove_train_params *p,
                                 const dlk_glove_records *r, dlk_glove_epoch_args *a, double *cost,
                                 int64_t *skipped) {
  static const char op[] = "glove_train_epoch";
  if (r->count == 0) return DLK_OK;
  if (p->cancel && *p->cancel) return cancelled(ctx, 0, r->count);
  streamer s;
  memset(&s, 0, sizeof s);
  s.r = r;
  s.gpu = ctx->device.type == DLK_CUDA;
  s.device_id = ctx->device.id;
  s.nchunks = (r->count + r->bufn - 1) / r->bufn;
  atomic_init(&s.stop, 0);
  s.fd = open(r->path, O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot reopen %s: %s", op, r->path, strerror(errno));
#ifdef POSIX_FADV_SEQUENTIAL
  (void)posix_fadvise(s.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  if (pthread_mutex_init(&s.mu, NULL) != 0) {
    close(s.fd);
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: pthread_mutex_init failed", op);
  }
  if (pthread_cond_init(&s.cv, NULL) != 0) {
    pthread_mutex_destroy(&s.mu);
    close(s.fd);
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: pthread_cond_init failed", op);
  }
  pthread_t th[2];
  bool threaded[2];
  /* A slot whose thread the system refuses is filled by the trainer itself: the same
     results, less overlap. One chunk needs one slot. */
  for (int b = 0; b < 2; b++) {
    s.arg[b] = (stream_reader_arg){&s, b};
    threaded[b] = b < s.nchunks && pthread_create(&th[b], NULL, stream_reader, &s.arg[b]) == 0;
  }
  dlk_status st = DLK_OK;
  int64_t done = 0;
  for (int64_t k = 0; k < s.nchunks; k++) {
    if (p->cancel && *p->cancel) {
      st = cancelled(ctx, done, r->count);
      break;
    }
    int b = (int)(k & 1);
    stream_slot *sl = &s.slot[b];
    if (threaded[b]) {
      pthread_mutex_lock(&s.mu);
      while (!sl->full) pthread_cond_wait(&s.cv, &s.mu);
      pthread_mutex_unlock(&s.mu);
    } else {
      sl->st = stream_fill(&s, k, sl);
      sl->full = true;
    }
    if (sl->st != DLK_OK) {
      st = dlk_fail(ctx, sl->st, "%s", sl->msg);
      break;
    }
    int64_t n = r->count - done < r->bufn ? r->count - done : r->bufn;
    const dlk_glove_record *recs = s.gpu ? (const dlk_glove_record *)r->dev[b].data : r->host[b];
    st = run_chunk(ctx, a, recs, n, cost, skipped);
    /* The kernel has finished with the slot (the epoch rows synchronise): refill it. */
    pthread_mutex_lock(&s.mu);
    sl->full = false;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    if (st != DLK_OK || ctx->explain) break;
    done += n;
    if (p->progress) p->progress(p->progress_user, done, r->count, *cost);
  }
  pthread_mutex_lock(&s.mu);
  atomic_store(&s.stop, 1);
  pthread_cond_broadcast(&s.cv);
  pthread_mutex_unlock(&s.mu);
  for (int b = 0; b < 2; b++)
    if (threaded[b]) pthread_join(th[b], NULL);
  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
  close(s.fd);
  return st;
}

dlk_status dlk_glove_train_epoch(dlk_context *ctx, const dlk_glove_train_params *p,
                                 dlk_glove_model *m, const dlk_glove_records *r,
                                 dlk_glove_epoch_result *out) {
  static const char op[] = "glove_train_epoch";
  DLK_TRY(need_ctx(ctx));
  if (!p || !m || !r) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  DLK_TRY(dlk_glove_check_model(ctx, op, m));
  if (m->epoch < 0 || m->epoch == INT64_MAX) /* the count this epoch increments */
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: the model's epoch count %lld is not in [0, 2^63 - 1)",
                    op, (long long)m->epoch);
  if (r->V != m->vocab_size)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH,
                    "%s: the records were checked against V = %lld, the model has V = %lld", op,
                    (long long)r->V, (long long)m->vocab_size);
  if (!finite_pos(p->eta) || !finite_pos(p->x_max) || !isfinite(p->alpha) || p->alpha < 0 ||
      !finite_pos(p->grad_clip))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: eta %g, x_max %g, grad_clip %g must be finite and > 0, alpha %g >= 0", op,
                    p->eta, p->x_max, p->grad_clip, p->alpha);
  if (p->threads < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: threads %d < 0", op, p->threads);
  dlk_glove_epoch_args a;
  memset(&a, 0, sizeof a);
  a.dtype = m->params.dtype;
  a.params = m->params.data;
  a.gradsq = m->gradsq.data;
  a.vocab_size = m->vocab_size;
  a.dim = m->dim;
  a.eta = p->eta, a.alpha = p->alpha, a.x_max = p->x_max, a.grad_clip = p->grad_clip;
  a.keras = p->keras != 0;
  a.threads = ctx->device.type == DLK_CPU ? dlk_glove_cpu_threads(ctx, p->threads) : 1;
  a.cancel = p->cancel;
  double cost = 0;
  int64_t skipped = 0;
  dlk_status st = r->resident ? train_resident(ctx, p, r, &a, &cost, &skipped)
                              : train_streamed(ctx, p, r, &a, &cost, &skipped);
  if (st != DLK_OK || ctx->explain) return st;
  m->epoch++;
  if (out) {
    out->cost_sum = cost;
    out->records = r->count;
    out->cost = r->count ? cost / (double)r->count : 0.0;
    out->skipped = skipped;
    out->variant = ctx->last_op == dlk_glove_epoch_op.name ? ctx->last_variant : -1;
  }
  return DLK_OK;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

dlk_status dlk_glove_embeddings(dlk_context *ctx, const dlk_glove_model *m, int which,
                                dlk_tensor *out) {
  static const char op[] = "glove_embeddings";
  DLK_TRY(need_ctx(ctx));
  if (!m || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  if (which < 0 || which > 2)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: which %d not 0 ([W|C]), 1 (W) or 2 (W+C)", op, which);
  DLK_TRY(dlk_glove_check_model(ctx, op, m));
  int64_t V = m->vocab_size, row = m->dim + 1, n = 2 * V * row;
  double *W = malloc((size_t)n * sizeof *W);
  if (!W) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  dlk_status st;
  if (m->params.dtype == DLK_F64) {
    st = dlk_tensor_read(ctx, &m->params, W, (size_t)n * sizeof *W);
  } else {
    float *f = malloc((size_t)n * sizeof *f);
    st = f ? dlk_tensor_read(ctx, &m->params, f, (size_t)n * sizeof *f)
           : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    for (int64_t i = 0; st == DLK_OK && i < n; i++) W[i] = f[i];
    free(f);
  }
  if (st != DLK_OK) {
    free(W);
    return st;
  }
  int64_t D = which == 0 ? 2 * row : m->dim;
  double *E = malloc((size_t)V * (size_t)D * sizeof *E);
  if (!E) {
    free(W);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  }
  for (int64_t a = 0; a < V; a++) {
    const double *w = W + a * row, *c = W + (V + a) * row;
    double *e = E + a * D;
    if (which == 0) {
      memcpy(e, w, (size_t)row * sizeof *e);
      memcpy(e + row, c, (size_t)row * sizeof *e);
    } else {
      for (int64_t b = 0; b < m->dim; b++) e[b] = which == 1 ? w[b] : w[b] + c[b];
    }
  }
  free(W);
  int64_t shape[2] = {V, D};
  st = dlk_tensor_init(ctx, out, E, DLK_F64, (dlk_device){DLK_CPU, 0}, 2, shape);
  if (st != DLK_OK) free(E);
  return st;
}

/* The evaluation matrix: rows L2-normalised (evaluate.py: W / sqrt(sum W^2)), as a host
   f64 copy and on the context's device (F64 on the CPU, F32 on a GPU). */
typedef struct eval_mat {
  int64_t V, D;
  double *host; /* [V, D] normalised */
  dlk_tensor dev;
} eval_mat;

static void eval_mat_free(dlk_context *ctx, eval_mat *e) {
  free(e->host);
  dlk_tensor_free(ctx, &e->dev);
  memset(e, 0, sizeof *e);
}

static dlk_status check_vectors(dlk_context *ctx, const char *op, const dlk_tensor *v) {
  if (!v) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: vectors are NULL", op);
  DLK_TRY(dlk_tensor_validate(ctx, v, "vectors"));
  if (v->device.type != DLK_CPU || v->dtype != DLK_F64 || v->ndim != 2 || !dlk_tensor_is_contiguous(v))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "%s: vectors must be a contiguous F64 host tensor [V, D] (from dlk_glove_embeddings "
                    "or dlk_glove_vectors_load_text)", op);
  if (v->shape[0] < 1 || v->shape[1] < 1)
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: vectors are empty", op);
  return DLK_OK;
}

static dlk_status eval_mat_make(dlk_context *ctx, const char *op, const dlk_tensor *v, eval_mat *e) {
  memset(e, 0, sizeof *e);
  DLK_TRY(check_vectors(ctx, op, v));
  e->V = v->shape[0];
  e->D = v->shape[1];
  size_t n = (size_t)e->V * (size_t)e->D;
  e->host = malloc(n * sizeof *e->host);
  if (!e->host) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  const double *src = v->data;
  for (int64_t r = 0; r < e->V; r++) {
    double ss = 0;
    for (int64_t k = 0; k < e->D; k++) ss += src[r * e->D + k] * src[r * e->D + k];
    double norm = sqrt(ss);
    for (int64_t k = 0; k < e->D; k++) e->host[r * e->D + k] = src[r * e->D + k] / norm;
  }
  int64_t shape[2] = {e->V, e->D};
  bool gpu = ctx->device.type == DLK_CUDA;
  dlk_status st = dlk_tensor_alloc(ctx, &e->dev, gpu ? DLK_F32 : DLK_F64, 2, shape);
  if (st == DLK_OK && !gpu) {
    memcpy(e->dev.data, e->host, n * sizeof *e->host);
  } else if (st == DLK_OK) {
    float *f = malloc(n * sizeof *f);
    if (!f) st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    for (size_t i = 0; f && i < n; i++) f[i] = (float)e->host[i];
    if (f) st = dlk_tensor_write(ctx, &e->dev, f, n * sizeof *f);
    free(f);
  }
  if (st != DLK_OK) eval_mat_free(ctx, e);
  return st;
}

/* The search buffers, allocated once per evaluation and reused batch after batch: the
   query batch q [batch, D] and the scores [V, batch] on the device, the host staging. */
typedef struct searcher {
  int64_t batch;
  dlk_tensor q, scores;
  float *stage; /* F32 staging for a GPU */
} searcher;

static void searcher_free(dlk_context *ctx, searcher *s) {
  dlk_tensor_free(ctx, &s->q);
  dlk_tensor_free(ctx, &s->scores);
  free(s->stage);
  memset(s, 0, sizeof *s);
}

static dlk_status searcher_make(dlk_context *ctx, const eval_mat *e, int64_t batch, searcher *s) {
  memset(s, 0, sizeof *s);
  bool gpu = ctx->device.type == DLK_CUDA;
  dlk_dtype dt = gpu ? DLK_F32 : DLK_F64;
  int64_t qshape[2] = {batch, e->D}, sshape[2] = {e->V, batch};
  s->batch = batch;
  dlk_status st = dlk_tensor_alloc(ctx, &s->q, dt, 2, qshape);
  if (st == DLK_OK) st = dlk_tensor_alloc(ctx, &s->scores, dt, 2, sshape);
  if (st == DLK_OK && gpu && !(s->stage = malloc((size_t)(batch * e->D) * sizeof *s->stage)))
    st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove search: out of memory");
  if (st != DLK_OK) searcher_free(ctx, s);
  return st;
}

/* Best rows for a full batch of query vectors q [batch, D] (host f64; unused rows zero,
   their exclusions -1): scores = M @ q^T as one GEMM [V, D] x [D, batch] on the device,
   then the top-k op. */
static dlk_status search(dlk_context *ctx, const eval_mat *e, searcher *s, const double *q,
                         const int32_t *exclude, int n_exclude, int k, int32_t *idx, double *val) {
  size_t n = (size_t)(s->batch * e->D);
  dlk_status st;
  if (s->stage) {
    for (size_t i = 0; i < n; i++) s->stage[i] = (float)q[i];
    st = dlk_tensor_write(ctx, &s->q, s->stage, n * sizeof *s->stage);
  } else {
    st = dlk_tensor_write(ctx, &s->q, q, n * sizeof *q);
  }
  dlk_tensor qT;
  if (st == DLK_OK) st = dlk_tensor_transpose(ctx, &qT, &s->q, 0, 1);
  dlk_gemm_params gp = {1.0, 0.0};
  if (st == DLK_OK) st = dlk_gemm(ctx, &gp, &e->dev, &qT, &s->scores);
  if (st == DLK_OK) {
    dlk_glove_topk_args a = {s->scores, exclude, n_exclude, k, idx, val};
    st = dlk_dispatch(ctx, &dlk_glove_topk_op, &a);
  }
  return st;
}

static dlk_status predict(dlk_context *ctx, const eval_mat *e, int batch, const int32_t *a,
                          const int32_t *b, const int32_t *c, int64_t n, int32_t *pred) {
  if (batch < 1) batch = 100;
  if (batch > n) batch = (int)n;
  double *q = calloc((size_t)batch * (size_t)e->D, sizeof *q);
  int32_t *ex = malloc((size_t)batch * 3 * sizeof *ex), *best = malloc((size_t)batch * sizeof *best);
  double *val = malloc((size_t)batch * sizeof *val);
  searcher sr;
  memset(&sr, 0, sizeof sr);
  dlk_status st = q && ex && val && best ? searcher_make(ctx, e, batch, &sr)
                                         : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove analogy: out of memory");
  for (int64_t s = 0; st == DLK_OK && s < n; s += batch) {
    int64_t nb = n - s < batch ? n - s : batch;
    for (int64_t i = 0; i < batch; i++) {
      if (i >= nb) { /* the last, partial batch: zero queries, answers dropped */
        memset(q + i * e->D, 0, (size_t)e->D * sizeof *q);
        ex[i * 3] = ex[i * 3 + 1] = ex[i * 3 + 2] = -1;
        continue;
      }
      const double *wa = e->host + (int64_t)a[s + i] * e->D, *wb = e->host + (int64_t)b[s + i] * e->D,
                   *wc = e->host + (int64_t)c[s + i] * e->D;
      /* evaluate.py: pred_vec = W[b] - W[a] + W[c] (not normalised: argmax is the same). */
      for (int64_t k = 0; k < e->D; k++) q[i * e->D + k] = wb[k] - wa[k] + wc[k];
      ex[i * 3] = a[s + i], ex[i * 3 + 1] = b[s + i], ex[i * 3 + 2] = c[s + i];
    }
    st = search(ctx, e, &sr, q, ex, 3, 1, best, val);
    /* Explain mode ran nothing: one batch explained, no answer written. */
    if (st != DLK_OK || ctx->explain) break;
    memcpy(pred + s, best, (size_t)nb * sizeof *pred);
  }
  searcher_free(ctx, &sr);
  free(q), free(ex), free(val), free(best);
  return st;
}

dlk_status dlk_glove_analogy_predict(dlk_context *ctx, const dlk_glove_analogy_params *p,
                                     const dlk_tensor *vectors, const int32_t *a, const int32_t *b,
                                     const int32_t *c, int64_t n, int32_t *pred) {
  static const char op[] = "glove_analogy_predict";
  DLK_TRY(need_ctx(ctx));
  if ((!a || !b || !c || !pred) && n > 0) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL array", op);
  if (n < 0) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: n < 0", op);
  DLK_TRY(check_vectors(ctx, op, vectors));
  int64_t V = vectors->shape[0];
  for (int64_t i = 0; i < n; i++)
    if (a[i] < 0 || a[i] >= V || b[i] < 0 || b[i] >= V || c[i] < 0 || c[i] >= V)
      return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: question %lld has a row outside [0, %lld)", op,
                      (long long)i, (long long)V);
  if (n == 0) return DLK_OK;
  eval_mat e;
  DLK_TRY(eval_mat_make(ctx, op, vectors, &e));
  dlk_status st = predict(ctx, &e, p ? p->batch : 0, a, b, c, n, pred);
  eval_mat_free(ctx, &e);
  return st;
}

/* The standard question files in evaluate.py's order; the first 5 are semantic. */
static const char *const analogy_files[DLK_GLOVE_ANALOGY_FILES] = {
    "capital-common-countries.txt", "capital-world.txt", "currency.txt", "city-in-state.txt",
    "family.txt", "gram1-adjective-to-adverb.txt", "gram2-opposite.txt", "gram3-comparative.txt",
    "gram4-superlative.txt", "gram5-present-participle.txt", "gram6-nationality-adjective.txt",
    "gram7-past-tense.txt", "gram8-plural.txt", "gram9-plural-verbs.txt"};

/* Read one question file: questions whose 4 words are all in the vocabulary go to
   q[4 * i] as 0-based rows; *total counts every line. */
static dlk_status read_questions(dlk_context *ctx, const char *path, const dlk_glove_vocab *vocab,
                                 int max_q, int32_t **q, int64_t *nq, int64_t *total) {
  FILE *f = fopen(path, "rb");
  if (!f) return dlk_fail(ctx, DLK_ERR_IO, "glove_analogy_eval: cannot open %s: %s", path, strerror(errno));
  int64_t cap = 1024, n = 0, tot = 0;
  int32_t *out = malloc((size_t)cap * 4 * sizeof *out);
  char line[4096];
  dlk_status st = out ? DLK_OK : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_analogy_eval: out of memory");
  while (st == DLK_OK && fgets(line, sizeof line, f)) {
    if (max_q > 0 && tot >= max_q) break;
    /* evaluate.py: line.rstrip().split(' ') */
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                   line[len - 1] == '\t'))
      line[--len] = '\0';
    tot++;
    int32_t ids[4];
    int nw = 0;
    bool all = true;
    char *s = line;
    for (;;) {
      char *sp = strchr(s, ' ');
      size_t wl = sp ? (size_t)(sp - s) : strlen(s);
      if (nw < 4) {
        int64_t id = wl < DLK_GLOVE_MAX_WORD ? dlk_glove_vocab_lookup(vocab, s, (int)wl) : 0;
        if (id == 0) all = false;
        ids[nw] = (int32_t)(id - 1);
      }
      nw++;
      if (!sp) break;
      s = sp + 1;
    }
    if (nw != 4) {
      st = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "glove_analogy_eval: %s line %lld has %d words, expected 4",
                    path, (long long)tot, nw);
      break;
    }
    if (!all) continue;
    if (n == cap) {
      int32_t *no = realloc(out, (size_t)cap * 8 * sizeof *out);
      if (!no) {
        st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_analogy_eval: out of memory");
        break;
      }
      out = no;
      cap *= 2;
    }
    memcpy(out + 4 * n, ids, sizeof ids);
    n++;
  }
  if (st == DLK_OK && ferror(f)) st = dlk_fail(ctx, DLK_ERR_IO, "glove_analogy_eval: read error on %s", path);
  fclose(f);
  if (st != DLK_OK) {
    free(out);
    return st;
  }
  *q = out;
  *nq = n;
  *total = tot;
  return DLK_OK;
}

dlk_status dlk_glove_analogy_eval(dlk_context *ctx, const dlk_glove_analogy_params *p,
                                  const dlk_tensor *vectors, const dlk_glove_vocab *vocab,
                                  const char *dir, dlk_glove_analogy_result *out) {
  static const char op[] = "glove_analogy_eval";
  DLK_TRY(need_ctx(ctx));
  if (!vocab || !dir || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL argument", op);
  DLK_TRY(check_vectors(ctx, op, vectors));
  if (!vocab->finished || vocab->n != vectors->shape[0])
    return dlk_fail(ctx, DLK_ERR_SHAPE_MISMATCH, "%s: the vocabulary has %lld words, the vectors %lld rows",
                    op, (long long)(vocab->finished ? vocab->n : 0), (long long)vectors->shape[0]);
  dlk_glove_analogy_result r;
  memset(&r, 0, sizeof r);
  eval_mat e;
  DLK_TRY(eval_mat_make(ctx, op, vectors, &e));
  dlk_status st = DLK_OK;
  for (int fi = 0; fi < DLK_GLOVE_ANALOGY_FILES && st == DLK_OK; fi++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, analogy_files[fi]);
    r.file[fi] = analogy_files[fi];
    int32_t *q = NULL;
    int64_t nq = 0, tot = 0;
    st = read_questions(ctx, path, vocab, p ? p->max_questions : 0, &q, &nq, &tot);
    if (st != DLK_OK) break;
    int32_t *abc = malloc((size_t)(nq > 0 ? nq : 1) * 3 * sizeof *abc);
    int32_t *pred = calloc((size_t)(nq > 0 ? nq : 1), sizeof *pred);
    if (!abc || !pred) st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    for (int64_t i = 0; st == DLK_OK && i < nq; i++) {
      abc[i] = q[4 * i];
      abc[nq + i] = q[4 * i + 1];
      abc[2 * nq + i] = q[4 * i + 2];
    }
    if (st == DLK_OK && nq > 0) st = predict(ctx, &e, p ? p->batch : 0, abc, abc + nq, abc + 2 * nq, nq, pred);
    int64_t correct = 0;
    for (int64_t i = 0; st == DLK_OK && i < nq; i++) correct += pred[i] == q[4 * i + 3];
    r.correct[fi] = correct;
    r.seen[fi] = nq;
    r.total[fi] = tot;
    if (fi < 5) r.sem_correct += correct, r.sem_seen += nq;
    else r.syn_correct += correct, r.syn_seen += nq;
    r.all_correct += correct;
    r.all_seen += nq;
    r.all_total += tot;
    free(q), free(abc), free(pred);
  }
  eval_mat_free(ctx, &e);
  if (st == DLK_OK && !ctx->explain) *out = r; /* explain mode: nothing ran, nothing to report */
  return st;
}

dlk_status dlk_glove_neighbours(dlk_context *ctx, const dlk_tensor *vectors, int64_t row, int k,
                                int32_t *ids, double *sims) {
  static const char op[] = "glove_neighbours";
  DLK_TRY(need_ctx(ctx));
  if (!ids || !sims) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: NULL output", op);
  DLK_TRY(check_vectors(ctx, op, vectors));
  if (row < 0 || row >= vectors->shape[0])
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "%s: row %lld not in [0, %lld)", op, (long long)row,
                    (long long)vectors->shape[0]);
  if (k < 1 || k > 100000) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: k %d not in [1, 100000]", op, k);
  eval_mat e;
  DLK_TRY(eval_mat_make(ctx, op, vectors, &e));
  int32_t ex = (int32_t)row;
  searcher sr;
  dlk_status st = searcher_make(ctx, &e, 1, &sr);
  if (st == DLK_OK) st = search(ctx, &e, &sr, e.host + row * e.D, &ex, 1, k, ids, sims);
  searcher_free(ctx, &sr);
  eval_mat_free(ctx, &e);
  return st;
}
