/*
 * glove family: from tokens to records. Co-occurrence counting (the tool's dense table +
 * spilled sorted runs + merge, or token chunks counted by the glove_cooccur_chunk op on a
 * GPU) and the tool's shuffle of a records file.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "glove.h"
#include "io.h"
#include "vocab.h"

/* ---- co-occurrence ------------------------------------------------------------------- */

static dlk_glove_cooccur_params cooccur_defaults(void) {
  dlk_glove_cooccur_params p;
  memset(&p, 0, sizeof p);
  p.window = 15;
  p.symmetric = 1;
  p.distance_weighting = 1;
  p.memory_gb = 3.0; /* the tool's code default (its help text says 4.0) */
  p.max_temp_files = 64;
  return p;
}

dlk_status dlk_glove_cooccur_defaults(dlk_context *ctx, dlk_glove_cooccur_params *out) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_defaults: out is NULL");
  *out = cooccur_defaults();
  return DLK_OK;
}

/* One sorted run: a temporary file of records, or records in memory. */
typedef struct run {
  char path[4200];
  bool in_file;
} run;

struct dlk_glove_cooccur {
  const dlk_glove_vocab *vocab;
  int64_t V;
  dlk_glove_cooccur_params p;
  char prefix[4096];
  int method; /* 1: the tool's dense table + overflow runs; 2: chunks through the op */
  dlk_glove_tokenizer tok;
  dlk_status bad;
  bool finished;
  dlk_glove_cooccur_stats st;
  /* table method */
  int64_t *lookup; /* [V+1] */
  double *table;
  int32_t *history; /* ring of the last `window` ids of the line */
  int64_t j;        /* position of the next in-vocabulary token in its line */
  dlk_glove_record *ovf;
  int64_t ovf_n, ovf_cap;
  /* chunk method: the ids of the chunk and its counted records; on a CUDA context both
     pinned (the row copies ids up and records back with one cudaMemcpyAsync each) */
  int32_t *ids;
  int64_t ids_n, ids_cap, n_prefix;
  dlk_glove_record *out;
  int64_t out_n, out_cap;
  bool ids_pinned, out_pinned;
  /* spilled runs (files) */
  run *runs;
  int n_runs, runs_cap, file_no;
  void *sort_tmp;
  size_t sort_tmp_bytes;
};

/* The tool's sizing from -memory: rlimit records of 16 bytes in 85% of the memory;
   max_product n solves n (log n + 0.1544313298) = rlimit (fixed-point iteration from
   1e5), the overflow buffer holds rlimit / 6 records. */
static void size_from_memory(double gb, int64_t *max_product, int64_t *overflow_length) {
  double rlimit = 0.85 * gb * 1073741824.0 / 16.0, n = 1e5;
  for (int it = 0; it < 1000 && fabs(rlimit - n * (log(n) + 0.1544313298)) > 1e-3; it++)
    n = rlimit / (log(n) + 0.1544313298);
  *max_product = (int64_t)n;
  *overflow_length = (int64_t)(rlimit / 6);
}

static bool has_gpu_chunk_row(const dlk_context *ctx) {
  return ctx->device.type == DLK_CUDA && dlk_glove_cooccur_chunk_op.count > 1;
}

static void cooccur_release(dlk_glove_cooccur *c) {
  if (!c) return;
  for (int i = 0; i < c->n_runs; i++)
    if (c->runs[i].in_file) remove(c->runs[i].path);
  free(c->runs);
  free(c->lookup);
  free(c->table);
  free(c->history);
  free(c->ovf);
  dlk_glove_host_free(c->ids, c->ids_pinned);
  dlk_glove_host_free(c->out, c->out_pinned);
  free(c->sort_tmp);
  free(c);
}

dlk_status dlk_glove_cooccur_free(dlk_context *ctx, dlk_glove_cooccur *c) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  cooccur_release(c);
  return DLK_OK;
}

/* Ids per chunk for the chunk method, from the host memory budget: per token its id (4
   bytes) and the records its window generates (window, twice if symmetric, 16 bytes
   each), held once in `out` and, on the CPU, once more in the reference's sort buffer (on
   a GPU that buffer is device workspace: see fit_gpu_chunk). */
#define MIN_CHUNK_IDS 4096
static int64_t chunk_ids_for(const dlk_glove_cooccur_params *p, bool gpu) {
  double per = 4.0 + (gpu ? 1.0 : 2.0) * 16.0 * p->window * (p->symmetric ? 2 : 1);
  double n = p->memory_gb * 1073741824.0 * 0.8 / per;
  if (n < MIN_CHUNK_IDS) n = MIN_CHUNK_IDS;
  if (n > 64.0 * 1024 * 1024) n = 64.0 * 1024 * 1024;
  return (int64_t)n;
}

/* The largest workspace any GPU row of glove_cooccur_chunk that would take the call asks
   for (each row's own workspace() figure: about 20 n + 32 P + cub temp bytes for n ids
   and P = targets * window * (symmetric ? 2 : 1) weights); 0 when no GPU row takes it. */
static size_t gpu_chunk_ws(const dlk_context *ctx, const dlk_glove_cooccur_chunk_args *a) {
  const dlk_op *op = &dlk_glove_cooccur_chunk_op;
  size_t most = 0;
  for (int i = 0; i < op->count; i++) {
    const dlk_variant *v = &op->variants[i];
    char why[256];
    if (v->device != DLK_CUDA || (v->supports && !v->supports(ctx, a, v->impl, why, sizeof why)))
      continue;
    size_t w = v->workspace ? v->workspace(ctx, a, v->impl) : 0;
    if (w > most) most = w;
  }
  return most;
}

/* On a GPU the chunk must also fit the device: halve it while the rows' workspace for a
   full chunk exceeds 90% of what the device can give (free memory plus the arena the
   context holds) or the context's workspace cap, or while no GPU row takes it. */
static dlk_status fit_gpu_chunk(dlk_context *ctx, dlk_glove_cooccur *c) {
  size_t avail;
  DLK_TRY(dlk_glove_device_free_bytes(ctx, &avail));
  avail = avail / 10 * 9;
  if (ctx->opts.workspace_limit && ctx->opts.workspace_limit < avail) avail = ctx->opts.workspace_limit;
  int32_t probe = 1; /* the rows only size the call: any non-NULL ids */
  for (;;) {
    dlk_glove_cooccur_chunk_args a = {&probe, c->ids_cap, 0, c->V, c->p.window, c->p.symmetric != 0,
                                      c->p.distance_weighting != 0, NULL, 0, NULL};
    size_t ws = gpu_chunk_ws(ctx, &a);
    if ((ws > 0 && ws <= avail) || c->ids_cap / 2 < MIN_CHUNK_IDS) break;
    c->ids_cap /= 2;
  }
  return DLK_OK;
}

dlk_status dlk_glove_cooccur_create(dlk_context *ctx, const dlk_glove_cooccur_params *pp,
                                    const dlk_glove_vocab *vocab, dlk_glove_cooccur **out) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!vocab || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_create: NULL argument");
  if (!vocab->finished || vocab->n == 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_create: the vocabulary is empty or not finished");
  dlk_glove_cooccur_params p = pp ? *pp : cooccur_defaults();
  if (p.window < 1 || p.window > 100000)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_create: window %d not in [1, 100000]", p.window);
  if (!(p.memory_gb > 0) || p.memory_gb > 1e6)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_create: memory_gb %g must be > 0", p.memory_gb);
  if (p.max_product < 0 || p.overflow_length < 0 || p.max_temp_files < 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_create: negative limit");
  /* The buffer's record count (+ 1, in bytes) must stay far from int64's end. */
  if (p.overflow_length > ((int64_t)1 << 40))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "glove_cooccur_create: overflow_length %lld above 2^40 records", (long long)p.overflow_length);
  if (p.max_temp_files == 0) p.max_temp_files = 64;
  if (p.max_temp_files < 2) p.max_temp_files = 2;
  dlk_glove_cooccur *c = calloc(1, sizeof *c);
  if (!c) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur_create: out of memory");
  c->vocab = vocab;
  c->V = vocab->n;
  c->p = p;
  snprintf(c->prefix, sizeof c->prefix, "%s", p.temp_prefix ? p.temp_prefix : "overflow");
  int64_t mp, ol;
  size_from_memory(p.memory_gb, &mp, &ol);
  if (p.max_product) mp = p.max_product;
  if (p.overflow_length) ol = p.overflow_length;
  if (ol < 2 * (int64_t)p.window + 2) ol = 2 * (int64_t)p.window + 2; /* room for one token */
  if (mp < 1) mp = 1;
  c->st.max_product = mp;
  c->st.overflow_length = ol;
  c->method = p.method ? p.method : (has_gpu_chunk_row(ctx) ? 2 : 1);
  if (c->method != 1 && c->method != 2) {
    free(c);
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_create: method %d not 0, 1 or 2", p.method);
  }
  c->st.used_gpu = c->method == 2 && ctx->device.type == DLK_CUDA;
  if (c->method == 1) {
    int64_t V = c->V;
    c->lookup = calloc((size_t)V + 1, sizeof *c->lookup);
    c->history = calloc((size_t)p.window, sizeof *c->history);
    if (!c->lookup || !c->history) goto oom;
    /* Row a of the dense table holds w2 = 1..min(max_product / a, V). */
    c->lookup[0] = 1;
    for (int64_t a = 1; a <= V; a++) {
      int64_t w = mp / a;
      c->lookup[a] = c->lookup[a - 1] + (w < V ? w : V);
    }
    c->table = calloc((size_t)(c->lookup[V] - 1) + 1, sizeof *c->table);
    if (c->table) dlk_glove_huge_pages(c->table, (size_t)c->lookup[V] * sizeof *c->table);
    if (!c->table) {
      cooccur_release(c);
      return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY,
                      "glove_cooccur_create: the dense table of %lld counts does not fit; lower -memory",
                      (long long)(c->lookup[V] - 1));
    }
  } else {
    bool gpu = ctx->device.type == DLK_CUDA;
    c->ids_cap = chunk_ids_for(&p, gpu);
    if (gpu) {
      dlk_status s = fit_gpu_chunk(ctx, c);
      if (s != DLK_OK) {
        cooccur_release(c);
        return s;
      }
    }
    c->ids = dlk_glove_host_alloc(ctx, (size_t)c->ids_cap * sizeof *c->ids, &c->ids_pinned);
    if (!c->ids) goto oom;
  }
  c->st.chunk_ids = c->method == 2 ? c->ids_cap : 0;
  *out = c;
  return DLK_OK;
oom:
  cooccur_release(c);
  return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur_create: out of memory");
}

/* Write n sorted records to a new run file PREFIX_NNNN.bin. */
static dlk_status write_run(dlk_context *ctx, dlk_glove_cooccur *c, const dlk_glove_record *r,
                            int64_t n) {
  if (c->n_runs == c->runs_cap) {
    int nc = c->runs_cap ? c->runs_cap * 2 : 16;
    run *nr = realloc(c->runs, (size_t)nc * sizeof *nr);
    if (!nr) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory");
    c->runs = nr;
    c->runs_cap = nc;
  }
  run *rn = &c->runs[c->n_runs];
  snprintf(rn->path, sizeof rn->path, "%s_%04d.bin", c->prefix, ++c->file_no);
  FILE *f = fopen(rn->path, "wb");
  if (!f)
    return dlk_fail(ctx, DLK_ERR_IO, "glove_cooccur: cannot create temporary file %s: %s", rn->path,
                    strerror(errno));
  rn->in_file = true;
  c->n_runs++;
  c->st.temp_files++;
  bool ok = fwrite(r, sizeof *r, (size_t)n, f) == (size_t)n;
  int err = errno;
  ok = (fclose(f) == 0) && ok;
  if (!ok)
    return dlk_fail(ctx, DLK_ERR_IO, "glove_cooccur: writing temporary file %s failed: %s", rn->path,
                    strerror(err ? err : errno));
  return DLK_OK;
}

static dlk_status ensure_sort_tmp(dlk_context *ctx, dlk_glove_cooccur *c, int64_t n) {
  size_t need = (size_t)n * sizeof(dlk_glove_record) + DLK_GLOVE_SORT_EXTRA;
  if (need <= c->sort_tmp_bytes) return DLK_OK;
  free(c->sort_tmp);
  c->sort_tmp = malloc(need);
  c->sort_tmp_bytes = c->sort_tmp ? need : 0;
  if (!c->sort_tmp) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory sorting %lld records", (long long)n);
  return DLK_OK;
}

/* Sort the overflow buffer (stable: equal pairs keep the order they were counted in,
   as glibc's qsort does in the tool), sum duplicates, spill it as a run. */
static dlk_status spill_overflow(dlk_context *ctx, dlk_glove_cooccur *c) {
  if (c->ovf_n == 0) return DLK_OK;
  DLK_TRY(ensure_sort_tmp(ctx, c, c->ovf_n));
  dlk_glove_sort_records(c->ovf, c->sort_tmp, c->ovf_n, c->V);
  int64_t n = dlk_glove_reduce_sorted(c->ovf, c->ovf_n);
  c->ovf_n = 0;
  return write_run(ctx, c, c->ovf, n);
}

typedef struct cooc_feed {
  dlk_context *ctx;
  dlk_glove_cooccur *c;
} cooc_feed;

static dlk_status grow_ovf(dlk_context *ctx, dlk_glove_cooccur *c, int64_t need) {
  if (need <= c->ovf_cap) return DLK_OK;
  int64_t nc = c->ovf_cap ? c->ovf_cap * 2 : 65536;
  while (nc < need) nc *= 2;
  if (nc > c->st.overflow_length + 1) nc = c->st.overflow_length + 1;
  if (nc < need) nc = need;
  dlk_glove_record *n = realloc(c->ovf, (size_t)nc * sizeof *n);
  if (!n) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory (overflow buffer of %lld records)", (long long)nc);
  c->ovf = n;
  c->ovf_cap = nc;
  return DLK_OK;
}

/* The tool's inner loop for one in-vocabulary target w2 at line position j. */
static dlk_status table_token(dlk_context *ctx, dlk_glove_cooccur *c, int64_t w2) {
  const int W = c->p.window;
  const bool sym = c->p.symmetric != 0, dist = c->p.distance_weighting != 0;
  const int64_t mp = c->st.max_product;
  /* The tool spills when the buffer is (almost) full before reading a token. */
  if (c->ovf_n >= c->st.overflow_length - W) DLK_TRY(spill_overflow(ctx, c));
  DLK_TRY(grow_ovf(ctx, c, c->ovf_n + 2 * (int64_t)W));
  int64_t j = c->j, lo = j > W ? j - W : 0;
  for (int64_t k = j - 1; k >= lo; k--) {
    int64_t w1 = c->history[k % W];
    double wt = dist ? 1.0 / (double)(j - k) : 1.0;
    if (w1 < mp / w2) {
      c->table[c->lookup[w1 - 1] + w2 - 2] += wt;
      if (sym) c->table[c->lookup[w2 - 1] + w1 - 2] += wt;
    } else {
      c->ovf[c->ovf_n++] = (dlk_glove_record){(int32_t)w1, (int32_t)w2, wt};
      if (sym) c->ovf[c->ovf_n++] = (dlk_glove_record){(int32_t)w2, (int32_t)w1, wt};
    }
  }
  c->history[j % W] = (int32_t)w2;
  c->j = j + 1;
  return DLK_OK;
}

/* Count the chunk in c->ids through the dispatched op; keep its records in c->out (the
   last chunk) or spill them as a run (more to come). */
static dlk_status count_chunk(dlk_context *ctx, dlk_glove_cooccur *c, bool last) {
  int64_t targets = c->ids_n - c->n_prefix;
  if (targets <= 0 && !last) return DLK_OK;
  int64_t bound = (targets > 0 ? targets : 0) * c->p.window * (c->p.symmetric ? 2 : 1);
  if (bound > c->out_cap) {
    /* Once in practice: every chunk but the last is full, and the first sets the size. */
    dlk_glove_host_free(c->out, c->out_pinned);
    c->out = dlk_glove_host_alloc(ctx, (size_t)(bound > 0 ? bound : 1) * sizeof *c->out, &c->out_pinned);
    c->out_cap = c->out ? bound : 0;
    if (!c->out) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory (%lld records)", (long long)bound);
  }
  int64_t m = 0;
  if (targets > 0) {
    dlk_glove_cooccur_chunk_args a = {c->ids, c->ids_n, c->n_prefix, c->V, c->p.window,
                                      c->p.symmetric != 0, c->p.distance_weighting != 0,
                                      c->out, c->out_cap, &m};
    DLK_TRY(dlk_dispatch(ctx, &dlk_glove_cooccur_chunk_op, &a));
  }
  c->out_n = m;
  if (!last || c->n_runs > 0) {
    if (m) DLK_TRY(write_run(ctx, c, c->out, m));
    c->out_n = 0;
  }
  if (last) return DLK_OK;
  /* The tail of the current line (after the last break, at most `window` ids) becomes the
     context-only prefix of the next chunk. */
  int64_t keep = 0;
  while (keep < c->p.window && keep < c->ids_n && c->ids[c->ids_n - 1 - keep] > 0) keep++;
  memmove(c->ids, c->ids + c->ids_n - keep, (size_t)keep * sizeof *c->ids);
  c->ids_n = keep;
  c->n_prefix = keep;
  return DLK_OK;
}

static dlk_status chunk_push(dlk_context *ctx, dlk_glove_cooccur *c, int32_t id) {
  if (c->ids_n == c->ids_cap) DLK_TRY(count_chunk(ctx, c, false));
  if (c->ids_n == c->ids_cap) /* a prefix never fills a chunk: window << chunk */
    return dlk_fail(ctx, DLK_ERR_INTERNAL, "glove_cooccur: chunk of %lld ids too small", (long long)c->ids_cap);
  c->ids[c->ids_n++] = id;
  return DLK_OK;
}

static dlk_status cooc_on_token(void *user, const char *w, int len) {
  cooc_feed *f = user;
  dlk_glove_cooccur *c = f->c;
  c->st.tokens++;
  int64_t id = dlk_glove_vocab_lookup(c->vocab, w, len);
  if (id == 0) return DLK_OK; /* out of vocabulary: dropped before windowing */
  c->st.in_vocab++;
  if (c->method == 1) return table_token(f->ctx, c, id);
  return chunk_push(f->ctx, c, (int32_t)id);
}

static dlk_status cooc_on_newline(void *user) {
  cooc_feed *f = user;
  dlk_glove_cooccur *c = f->c;
  c->st.lines++;
  if (c->method == 1) {
    c->j = 0;
    return DLK_OK;
  }
  if (c->ids_n > 0 && c->ids[c->ids_n - 1] != 0) return chunk_push(f->ctx, c, 0);
  return DLK_OK;
}

dlk_status dlk_glove_cooccur_add_text(dlk_context *ctx, dlk_glove_cooccur *c, const char *text,
                                      size_t bytes) {
  if (!c) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_add_text: NULL handle");
  if (!text && bytes) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_add_text: text is NULL");
  if (c->finished) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_add_text: already finished");
  if (c->bad != DLK_OK) return dlk_fail(ctx, c->bad, "glove_cooccur_add_text: an earlier piece failed");
  cooc_feed f = {ctx, c};
  dlk_status s = dlk_glove_tokenize(&c->tok, text, bytes, cooc_on_token, cooc_on_newline, &f);
  if (s != DLK_OK) c->bad = s;
  return s;
}

/* ---- k-way merge of sorted sources, summing equal pairs in source order ---- */

typedef struct src {
  /* kind 0: dense table; 1: file; 2: memory array */
  int kind;
  FILE *f;
  const char *path;
  dlk_glove_record *buf;
  int64_t pos, n;
  const dlk_glove_record *mem;
  int64_t x, y; /* table cursor */
  dlk_glove_record cur;
  bool done;
} src;

#define SRC_BUF 8192

static dlk_status src_next(dlk_context *ctx, const dlk_glove_cooccur *c, src *s) {
  if (s->kind == 0) {
    int64_t V = c->V;
    while (s->x <= V) {
      int64_t width = c->lookup[s->x] - c->lookup[s->x - 1];
      while (s->y <= width) {
        double r = c->table[c->lookup[s->x - 1] - 2 + s->y];
        s->y++;
        if (r != 0) {
          s->cur = (dlk_glove_record){(int32_t)s->x, (int32_t)(s->y - 1), r};
          return DLK_OK;
        }
      }
      s->x++;
      s->y = 1;
    }
    s->done = true;
    return DLK_OK;
  }
  if (s->kind == 2) {
    if (s->pos < s->n) s->cur = s->mem[s->pos++];
    else s->done = true;
    return DLK_OK;
  }
  if (s->pos == s->n) {
    size_t got = fread(s->buf, sizeof *s->buf, SRC_BUF, s->f);
    if (got == 0) {
      if (ferror(s->f)) return dlk_fail(ctx, DLK_ERR_IO, "glove_cooccur: read error on %s", s->path);
      s->done = true;
      return DLK_OK;
    }
    s->pos = 0;
    s->n = (int64_t)got;
  }
  s->cur = s->buf[s->pos++];
  return DLK_OK;
}

static bool src_less(const src *a, int ia, const src *b, int ib) {
  if (a->cur.w1 != b->cur.w1) return a->cur.w1 < b->cur.w1;
  if (a->cur.w2 != b->cur.w2) return a->cur.w2 < b->cur.w2;
  return ia < ib; /* equal pairs: earlier source first, so sums go in source order */
}

static void heap_down(src *s, int *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && src_less(&s[h[l]], h[l], &s[h[m]], h[m])) m = l;
    if (r < n && src_less(&s[h[r]], h[r], &s[h[m]], h[m])) m = r;
    if (m == i) return;
    int t = h[i];
    h[i] = h[m], h[m] = t;
    i = m;
  }
}

/* Merge sources into out (an open output); *written counts records. */
static dlk_status merge_sources(dlk_context *ctx, const dlk_glove_cooccur *c, src *s, int ns,
                                dlk_status (*emit)(dlk_context *, void *, const dlk_glove_record *),
                                void *emit_user) {
  int *h = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *h);
  if (!h) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory");
  dlk_status st = DLK_OK;
  int n = 0;
  for (int i = 0; i < ns && st == DLK_OK; i++) {
    st = src_next(ctx, c, &s[i]);
    if (st == DLK_OK && !s[i].done) h[n++] = i;
  }
  for (int i = n / 2 - 1; i >= 0; i--) heap_down(s, h, n, i);
  bool have = false;
  dlk_glove_record acc = {0, 0, 0};
  while (st == DLK_OK && n > 0) {
    src *top = &s[h[0]];
    if (have && top->cur.w1 == acc.w1 && top->cur.w2 == acc.w2) {
      acc.x += top->cur.x;
    } else {
      if (have) st = emit(ctx, emit_user, &acc);
      acc = top->cur;
      have = true;
    }
    if (st != DLK_OK) break;
    st = src_next(ctx, c, top);
    if (top->done) h[0] = h[--n];
    heap_down(s, h, n, 0);
  }
  if (st == DLK_OK && have) st = emit(ctx, emit_user, &acc);
  free(h);
  return st;
}

typedef struct out_emit {
  dlk_glove_out *o;
  dlk_glove_record buf[SRC_BUF];
  int n;
  int64_t total;
} out_emit;

static dlk_status emit_out(dlk_context *ctx, void *user, const dlk_glove_record *r) {
  out_emit *e = user;
  e->buf[e->n++] = *r;
  e->total++;
  if (e->n == SRC_BUF) {
    e->n = 0;
    return dlk_glove_out_write(ctx, "glove_cooccur", e->o, e->buf, sizeof e->buf);
  }
  return DLK_OK;
}

static dlk_status emit_flush(dlk_context *ctx, out_emit *e) {
  int n = e->n;
  e->n = 0;
  return n ? dlk_glove_out_write(ctx, "glove_cooccur", e->o, e->buf, (size_t)n * sizeof *e->buf) : DLK_OK;
}

static dlk_status open_file_srcs(dlk_context *ctx, src *s, const run *runs, int n) {
  for (int i = 0; i < n; i++) {
    memset(&s[i], 0, sizeof s[i]);
    s[i].kind = 1;
    s[i].path = runs[i].path;
    s[i].f = fopen(runs[i].path, "rb");
    s[i].buf = malloc(SRC_BUF * sizeof *s[i].buf);
    if (!s[i].f || !s[i].buf)
      return dlk_fail(ctx, DLK_ERR_IO, "glove_cooccur: cannot read temporary file %s", runs[i].path);
  }
  return DLK_OK;
}

static void close_srcs(src *s, int n) {
  for (int i = 0; i < n; i++) {
    if (s[i].f) fclose(s[i].f);
    free(s[i].buf);
    s[i].f = NULL;
    s[i].buf = NULL;
  }
}

/* Merge groups of runs into single runs until few enough remain for the final merge. */
static dlk_status reduce_runs(dlk_context *ctx, dlk_glove_cooccur *c, int max_final) {
  int fan = c->p.max_temp_files;
  while (c->n_runs > max_final) {
    int g = c->n_runs < fan ? c->n_runs : fan;
    src *s = calloc((size_t)g, sizeof *s);
    out_emit *e = calloc(1, sizeof *e);
    dlk_glove_out o;
    dlk_status st = s && e ? DLK_OK : dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur: out of memory");
    char path[4200];
    snprintf(path, sizeof path, "%s_%04d.bin", c->prefix, ++c->file_no);
    if (st == DLK_OK) st = open_file_srcs(ctx, s, c->runs, g);
    bool opened = false;
    if (st == DLK_OK) st = dlk_glove_out_open(ctx, "glove_cooccur", path, NULL, &o), opened = st == DLK_OK;
    if (st == DLK_OK) {
      e->o = &o;
      st = merge_sources(ctx, c, s, g, emit_out, e);
      if (st == DLK_OK) st = emit_flush(ctx, e);
      if (st == DLK_OK) st = dlk_glove_out_commit(ctx, "glove_cooccur", &o);
      else dlk_glove_out_abort(&o);
    } else if (opened) {
      dlk_glove_out_abort(&o);
    }
    if (s) close_srcs(s, g);
    free(s);
    free(e);
    if (st != DLK_OK) return st;
    c->st.temp_files++;
    for (int i = 0; i < g; i++) remove(c->runs[i].path);
    /* The merged run takes the place of the group, at its position (the earliest). */
    memmove(c->runs + 1, c->runs + g, (size_t)(c->n_runs - g) * sizeof *c->runs);
    c->n_runs -= g - 1;
    snprintf(c->runs[0].path, sizeof c->runs[0].path, "%s", path);
    c->runs[0].in_file = true;
  }
  return DLK_OK;
}

dlk_status dlk_glove_cooccur_finish(dlk_context *ctx, dlk_glove_cooccur *c, const char *path) {
  if (!c || !path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_finish: NULL argument");
  if (c->finished) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_cooccur_finish: already finished");
  if (c->bad != DLK_OK) return dlk_fail(ctx, c->bad, "glove_cooccur_finish: an earlier piece failed");
  cooc_feed f = {ctx, c};
  dlk_status st = dlk_glove_tokenizer_end(&c->tok, cooc_on_token, &f);
  if (st != DLK_OK) return c->bad = st;
  c->finished = true;
  if (c->st.in_vocab == 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "glove_cooccur_finish: no in-vocabulary token in the corpus (%lld tokens read)",
                    (long long)c->st.tokens);
  /* Sources in order: the dense table, the spilled runs, the final in-memory run, and
     the tool's phantom record (see no_tool_quirks): its merge reads the first record of
     every file without checking for end of file, so an empty last overflow file repeats
     the first record of the file before it. */
  bool phantom = false;
  dlk_glove_record phantom_rec = {0, 0, 0};
  if (c->method == 1) {
    bool last_empty = c->ovf_n == 0;
    if (c->n_runs > 0) st = spill_overflow(ctx, c);
    else if (c->ovf_n > 0) {
      if ((st = ensure_sort_tmp(ctx, c, c->ovf_n)) == DLK_OK) {
        dlk_glove_sort_records(c->ovf, c->sort_tmp, c->ovf_n, c->V);
        c->ovf_n = dlk_glove_reduce_sorted(c->ovf, c->ovf_n);
      }
    }
    if (st == DLK_OK && last_empty && !c->p.no_tool_quirks) {
      if (c->n_runs > 0) {
        FILE *f = fopen(c->runs[c->n_runs - 1].path, "rb");
        phantom = f && fread(&phantom_rec, sizeof phantom_rec, 1, f) == 1;
        if (f) fclose(f);
      } else {
        src t = {.kind = 0, .x = 1, .y = 1};
        st = src_next(ctx, c, &t);
        phantom = st == DLK_OK && !t.done;
        phantom_rec = t.cur;
      }
    }
  } else {
    st = count_chunk(ctx, c, true);
  }
  if (st == DLK_OK) st = reduce_runs(ctx, c, c->p.max_temp_files - 1);
  if (st != DLK_OK) return st;
  int ns = c->n_runs + 3;
  src *s = calloc((size_t)ns, sizeof *s);
  out_emit *e = calloc(1, sizeof *e);
  if (!s || !e) {
    free(s), free(e);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_cooccur_finish: out of memory");
  }
  int k = 0;
  if (c->method == 1) s[k++] = (src){.kind = 0, .x = 1, .y = 1};
  st = open_file_srcs(ctx, s + k, c->runs, c->n_runs);
  k += c->n_runs;
  if (c->method == 1 && c->n_runs == 0 && c->ovf_n > 0) s[k++] = (src){.kind = 2, .mem = c->ovf, .n = c->ovf_n};
  if (c->method == 2 && c->out_n > 0) s[k++] = (src){.kind = 2, .mem = c->out, .n = c->out_n};
  if (phantom) s[k++] = (src){.kind = 2, .mem = &phantom_rec, .n = 1};
  dlk_glove_out o;
  if (st == DLK_OK) st = dlk_glove_out_open(ctx, "glove_cooccur", path, NULL, &o);
  else {
    close_srcs(s, k);
    free(s), free(e);
    return st;
  }
  if (st == DLK_OK) {
    e->o = &o;
    st = merge_sources(ctx, c, s, k, emit_out, e);
    if (st == DLK_OK) st = emit_flush(ctx, e);
    if (st == DLK_OK) st = dlk_glove_out_commit(ctx, "glove_cooccur", &o);
    else dlk_glove_out_abort(&o);
  }
  c->st.records = e->total;
  close_srcs(s, k);
  free(s), free(e);
  for (int i = 0; i < c->n_runs; i++)
    if (c->runs[i].in_file) remove(c->runs[i].path), c->runs[i].in_file = false;
  c->n_runs = 0;
  return st;
}

dlk_status dlk_glove_cooccur_get_stats(dlk_context *ctx, const dlk_glove_cooccur *c,
                                       dlk_glove_cooccur_stats *out) {
  if (!c || !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_cooccur_get_stats: NULL argument");
  *out = c->st;
  return DLK_OK;
}

/* ---- shuffle --------------------------------------------------------------------------- */

static dlk_glove_shuffle_params shuffle_defaults(void) {
  dlk_glove_shuffle_params p;
  memset(&p, 0, sizeof p);
  p.memory_gb = 2.0;
  return p;
}

dlk_status dlk_glove_shuffle_defaults(dlk_context *ctx, dlk_glove_shuffle_params *out) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_shuffle_defaults: out is NULL");
  *out = shuffle_defaults();
  return DLK_OK;
}

/* The tool's rand_long: a uniform integer in [0, n) from two rand() calls, rejecting the
   top partial block: rnd = (RAND_MAX + 1) * first + second. */
static int64_t rand_long(dlk_glibc_rand *g, int64_t n) {
  const int64_t RM = DLK_GLIBC_RAND_MAX;
  const int64_t lrand_max = (RM + 2) * RM;
  int64_t limit = lrand_max - lrand_max % n, rnd;
  do {
    int64_t first = dlk_glibc_rand_next(g);
    int64_t second = dlk_glibc_rand_next(g);
    rnd = (RM + 1) * first + second;
  } while (rnd >= limit);
  return rnd % n;
}

/* The tool's Fisher-Yates over the first n elements (n < 2: nothing): for i = n-1 down
   to 1, swap a[i] with a[rand_long(i + 1)]. */
static void fisher_yates(dlk_glibc_rand *g, dlk_glove_record *a, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = rand_long(g, i + 1);
    dlk_glove_record t = a[j];
    a[j] = a[i];
    a[i] = t;
  }
}

/* Read up to n records; *got the number; a trailing partial record is an error. */
static dlk_status read_recs(dlk_context *ctx, FILE *f, const char *name, dlk_glove_record *a,
                            int64_t n, int64_t *got, int64_t base) {
  size_t bytes = fread(a, 1, (size_t)n * sizeof *a, f);
  if (ferror(f)) return dlk_fail(ctx, DLK_ERR_IO, "glove_shuffle: read error on %s", name);
  if (bytes % sizeof *a)
    return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                    "glove_shuffle: %s ends with a partial record (%zu stray bytes after record %lld): "
                    "not a file of 16-byte records",
                    name, bytes % sizeof *a, (long long)(base + (int64_t)(bytes / sizeof *a)));
  *got = (int64_t)(bytes / sizeof *a);
  return DLK_OK;
}

dlk_status dlk_glove_shuffle_file(dlk_context *ctx, const dlk_glove_shuffle_params *pp,
                                  const char *in_path, const char *out_path, uint32_t *seed_used,
                                  int64_t *records) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!in_path || !out_path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_shuffle: NULL path");
  dlk_glove_shuffle_params p = pp ? *pp : shuffle_defaults();
  int64_t array_size = p.array_size;
  if (array_size == 0) {
    if (!(p.memory_gb > 0) || p.memory_gb > 1e6)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_shuffle: memory_gb %g must be > 0", p.memory_gb);
    array_size = (int64_t)(0.95 * p.memory_gb * 1073741824.0 / 16.0);
  }
  if (array_size < 2)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_shuffle: array_size %lld must be >= 2", (long long)array_size);
  uint32_t seed = p.seed ? p.seed : (uint32_t)time(NULL);
  if (seed_used) *seed_used = seed;
  bool in_std = strcmp(in_path, "-") == 0;
  FILE *in = in_std ? stdin : fopen(in_path, "rb");
  if (!in) return dlk_fail(ctx, DLK_ERR_IO, "glove_shuffle: cannot open %s: %s", in_path, strerror(errno));
  const char *prefix = p.temp_prefix ? p.temp_prefix : "temp_shuffle";
  dlk_glibc_rand g;
  dlk_glibc_srand(&g, seed);
  /* Read the first chunk; if the input ends inside it, everything stays in memory. */
  dlk_glove_record *a = NULL;
  int64_t cap = 0, total = 0, nfiles = 0, got = 0;
  dlk_status st = DLK_OK;
  char name[4200];
  dlk_glove_out o;
  bool o_open = false;
  for (;;) {
    /* Grow toward array_size as data arrives, so a small input needs little memory. */
    int64_t want = cap ? cap : (array_size < 65536 ? array_size : 65536);
    if (want > cap) {
      dlk_glove_record *na = realloc(a, (size_t)want * sizeof *a);
      if (!na) { st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_shuffle: out of memory"); break; }
      a = na, cap = want;
    }
    int64_t i = 0;
    for (;;) {
      st = read_recs(ctx, in, in_std ? "stdin" : in_path, a + i, cap - i, &got, total + i);
      if (st != DLK_OK) break;
      i += got;
      if (got == 0 || i == array_size) break;
      if (i == cap) {
        int64_t nc = cap * 2 < array_size ? cap * 2 : array_size;
        dlk_glove_record *na = realloc(a, (size_t)nc * sizeof *a);
        if (!na) { st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_shuffle: out of memory (%lld records)", (long long)nc); break; }
        a = na, cap = nc;
      }
    }
    if (st != DLK_OK) break;
    total += i;
    /* Each chunk is shuffled whole (the tool at 52f7dbc; older versions left the last
       one or two records of a chunk in place). */
    fisher_yates(&g, a, i);
    bool at_end = i < array_size;
    if (at_end && nfiles == 0) {
      /* One chunk only: the merge pass reads it back whole and shuffles it again; do that
         in memory. */
      fisher_yates(&g, a, i);
      st = dlk_glove_out_open(ctx, "glove_shuffle", out_path, NULL, &o);
      if (st == DLK_OK) {
        o_open = true;
        st = dlk_glove_out_write(ctx, "glove_shuffle", &o, a, (size_t)i * sizeof *a);
      }
      break;
    }
    snprintf(name, sizeof name, "%s_%04lld.bin", prefix, (long long)nfiles);
    FILE *t = fopen(name, "wb");
    if (!t) { st = dlk_fail(ctx, DLK_ERR_IO, "glove_shuffle: cannot create %s: %s", name, strerror(errno)); break; }
    nfiles++;
    bool ok = fwrite(a, sizeof *a, (size_t)i, t) == (size_t)i;
    ok = fclose(t) == 0 && ok;
    if (!ok) { st = dlk_fail(ctx, DLK_ERR_IO, "glove_shuffle: writing %s failed: %s", name, strerror(errno)); break; }
    if (at_end) {
      /* Merge: blocks of about array_size / files records from each file in turn, each
         block shuffled again. */
      FILE **fs = calloc((size_t)nfiles, sizeof *fs);
      bool *eof = calloc((size_t)nfiles, sizeof *eof);
      if (!fs || !eof) st = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_shuffle: out of memory");
      for (int64_t k = 0; st == DLK_OK && k < nfiles; k++) {
        snprintf(name, sizeof name, "%s_%04lld.bin", prefix, (long long)k);
        fs[k] = fopen(name, "rb");
        if (!fs[k]) st = dlk_fail(ctx, DLK_ERR_IO, "glove_shuffle: cannot reopen %s", name);
      }
      if (st == DLK_OK) st = dlk_glove_out_open(ctx, "glove_shuffle", out_path, NULL, &o);
      if (st == DLK_OK) o_open = true;
      int64_t per = array_size / nfiles;
      while (st == DLK_OK) {
        int64_t n = 0;
        for (int64_t k = 0; st == DLK_OK && k < nfiles; k++) {
          if (eof[k]) continue;
          st = read_recs(ctx, fs[k], "a temporary file", a + n, per, &got, 0);
          if (got < per) eof[k] = true;
          n += got;
        }
        if (st != DLK_OK || n == 0) break;
        fisher_yates(&g, a, n);
        st = dlk_glove_out_write(ctx, "glove_shuffle", &o, a, (size_t)n * sizeof *a);
      }
      for (int64_t k = 0; fs && k < nfiles; k++)
        if (fs[k]) fclose(fs[k]);
      free(fs);
      free(eof);
      break;
    }
  }
  if (!in_std) fclose(in);
  for (int64_t k = 0; k < nfiles; k++) {
    snprintf(name, sizeof name, "%s_%04lld.bin", prefix, (long long)k);
    remove(name);
  }
  free(a);
  if (o_open) {
    if (st == DLK_OK) st = dlk_glove_out_commit(ctx, "glove_shuffle", &o);
    else dlk_glove_out_abort(&o);
  }
  if (st == DLK_OK && records) *records = total;
  return st;
}
