/*
 * Variant registry, selection and the autotune cache.
 *
 * Selection for one call of an op:
 *   1. forced (context option, DLK_FORCE_VARIANT, dlk_force_variant): that variant or an
 *      error saying why it cannot run this call;
 *   2. the autotune cache hit for (op, shape key, options);
 *   3. autotune (CUDA contexts, tunable ops, autotune enabled, more than one candidate):
 *      time each supported variant on the real tensors and cache the winner;
 *   4. the op's heuristic, else the highest-ranked supported variant.
 * A variant whose workspace exceeds the cap is skipped with the reason recorded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static int total_ops(void) {
  int n = 0;
  for (const dlk_op *const *const *f = dlk_families; *f; f++)
    for (const dlk_op *const *o = *f; *o; o++) n++;
  return n;
}

static const dlk_op *op_at(int index) {
  for (const dlk_op *const *const *f = dlk_families; *f; f++)
    for (const dlk_op *const *o = *f; *o; o++)
      if (index-- == 0) return *o;
  return NULL;
}

const dlk_op *dlk_find_op(const char *name) {
  for (const dlk_op *const *const *f = dlk_families; *f; f++)
    for (const dlk_op *const *o = *f; *o; o++)
      if (strcmp((*o)->name, name) == 0) return *o;
  return NULL;
}

static const dlk_variant *find_variant(const dlk_op *op, int id) {
  for (int i = 0; i < op->count; i++)
    if (op->variants[i].id == id) return &op->variants[i];
  return NULL;
}

dlk_status dlk_op_count(dlk_context *ctx, int *count) {
  if (!count) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_op_count: count is NULL");
  *count = total_ops();
  return DLK_OK;
}

dlk_status dlk_op_name(dlk_context *ctx, int index, const char **name) {
  if (!name) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_op_name: name is NULL");
  const dlk_op *op = index >= 0 ? op_at(index) : NULL;
  if (!op)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "dlk_op_name: index %d not in [0, %d)", index,
                    total_ops());
  *name = op->name;
  return DLK_OK;
}

static dlk_status lookup_op(dlk_context *ctx, const char *fn, const char *name,
                            const dlk_op **out) {
  if (!name) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "%s: op name is NULL", fn);
  *out = dlk_find_op(name);
  if (!*out) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: no op named \"%s\"", fn, name);
  return DLK_OK;
}

dlk_status dlk_op_variants(dlk_context *ctx, const char *name, dlk_variant_info *out, int cap,
                           int *count) {
  const dlk_op *op;
  DLK_TRY(lookup_op(ctx, "dlk_op_variants", name, &op));
  if (!count) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_op_variants: count is NULL");
  if (cap > 0 && !out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_op_variants: out is NULL");
  for (int i = 0; i < op->count && i < cap; i++) {
    const dlk_variant *v = &op->variants[i];
    out[i] = (dlk_variant_info){v->id, v->name, v->device, v->description};
  }
  *count = op->count;
  return DLK_OK;
}

/* ---- forcing ---- */

static int forced_id(const dlk_context *ctx, const char *op) {
  for (int i = 0; i < ctx->n_forced; i++)
    if (strcmp(ctx->forced[i].op, op) == 0) return ctx->forced[i].id;
  return -1;
}

dlk_status dlk_force_variant(dlk_context *ctx, const char *name, int id) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  const dlk_op *op;
  DLK_TRY(lookup_op(ctx, "dlk_force_variant", name, &op));
  if (id >= 0 && !find_variant(op, id))
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "dlk_force_variant: %s has no variant %d",
                    name, id);
  for (int i = 0; i < ctx->n_forced; i++) {
    if (strcmp(ctx->forced[i].op, name) != 0) continue;
    if (id >= 0) {
      ctx->forced[i].id = id;
    } else {
      ctx->forced[i] = ctx->forced[--ctx->n_forced];
    }
    return DLK_OK;
  }
  if (id < 0) return DLK_OK;
  if (ctx->n_forced == DLK_MAX_FORCED)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "dlk_force_variant: more than %d forced ops",
                    DLK_MAX_FORCED);
  snprintf(ctx->forced[ctx->n_forced].op, sizeof ctx->forced[0].op, "%s", name);
  ctx->forced[ctx->n_forced++].id = id;
  return DLK_OK;
}

/* Parse "op:id,op:id" (from the options or DLK_FORCE_VARIANT) into ctx->forced. */
dlk_status dlk_parse_forced(dlk_context *ctx, const char *spec, const char *origin) {
  const char *p = spec;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[96];
    if (len == 0 || len >= sizeof item)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "%s: bad item in \"%s\" (want op:id,op:id)",
                      origin, spec);
    memcpy(item, p, len);
    item[len] = '\0';
    char *colon = strchr(item, ':');
    char *num_end = NULL;
    long id = colon ? strtol(colon + 1, &num_end, 10) : -1;
    if (!colon || num_end == colon + 1 || *num_end != '\0' || id < 0 || id > 99)
      return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                      "%s: \"%s\" is not op:id with id in 0..99", origin, item);
    *colon = '\0';
    dlk_status s = dlk_force_variant(ctx, item, (int)id);
    if (s != DLK_OK) {
      char detail[DLK_ERRMSG_LEN];
      snprintf(detail, sizeof detail, "%s", ctx->err);
      return dlk_fail(ctx, s, "%s: %s", origin, detail);
    }
    p += len;
    if (*p == ',') p++;
  }
  return DLK_OK;
}

dlk_status dlk_last_variant(dlk_context *ctx, const char **op, int *id) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!op || !id) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_last_variant: NULL output");
  if (!ctx->last_op) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "dlk_last_variant: no op ran yet");
  *op = ctx->last_op;
  *id = ctx->last_variant;
  return DLK_OK;
}

/* ---- the autotune cache: open addressing keyed by the full key string ---- */

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h ? h : 1;
}

static int tune_get(const dlk_tune_cache *c, const char *key, uint64_t h) {
  if (!c->cap) return -1;
  for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
    const dlk_tune_entry *e = &c->slots[i];
    if (!e->hash) return -1;
    if (e->hash == h && strcmp(e->key, key) == 0) return e->variant;
  }
}

static bool tune_put(dlk_tune_cache *c, const char *key, int variant) {
  if (strlen(key) >= DLK_KEY_LEN) return false;
  if ((c->count + 1) * 2 > c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 64;
    dlk_tune_entry *ns = calloc(ncap, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < c->cap; i++) {
      if (!c->slots[i].hash) continue;
      size_t j = c->slots[i].hash & (ncap - 1);
      while (ns[j].hash) j = (j + 1) & (ncap - 1);
      ns[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = ns;
    c->cap = ncap;
  }
  uint64_t h = fnv1a(key, strlen(key));
  size_t i = h & (c->cap - 1);
  while (c->slots[i].hash && !(c->slots[i].hash == h && strcmp(c->slots[i].key, key) == 0))
    i = (i + 1) & (c->cap - 1);
  if (!c->slots[i].hash) c->count++;
  c->slots[i].hash = h;
  c->slots[i].variant = variant;
  snprintf(c->slots[i].key, DLK_KEY_LEN, "%s", key);
  return true;
}

void dlk_tune_free(dlk_tune_cache *c) {
  free(c->slots);
  memset(c, 0, sizeof *c);
}

dlk_status dlk_autotune_clear(dlk_context *ctx) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_tune_free(&ctx->tune);
  return DLK_OK;
}

dlk_status dlk_autotune_entries(dlk_context *ctx, int *count) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!count) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_autotune_entries: count is NULL");
  *count = (int)ctx->tune.count;
  return DLK_OK;
}

/* File format (text, one entry per line, keys have no spaces):
     dlk-autotune 1
     device <device name>
     <key> <variant id>
     ...
     checksum <16 hex digits: FNV-1a of every byte before this line>           */
#define TUNE_MAGIC "dlk-autotune 1\n"

dlk_status dlk_autotune_save(dlk_context *ctx, const char *path) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_autotune_save: path is NULL");
  size_t cap = 64 + strlen(ctx->device_name) + ctx->tune.count * (DLK_KEY_LEN + 16);
  char *body = malloc(cap);
  if (!body) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "dlk_autotune_save: out of memory");
  size_t n = (size_t)snprintf(body, cap, TUNE_MAGIC "device %s\n", ctx->device_name);
  for (size_t i = 0; i < ctx->tune.cap; i++) {
    const dlk_tune_entry *e = &ctx->tune.slots[i];
    if (e->hash) n += (size_t)snprintf(body + n, cap - n, "%s %d\n", e->key, e->variant);
  }
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(body);
    return dlk_fail(ctx, DLK_ERR_IO, "dlk_autotune_save: cannot write %s: %s", tmp, strerror(errno));
  }
  bool ok = fwrite(body, 1, n, f) == n;
  ok = fprintf(f, "checksum %016" PRIx64 "\n", fnv1a(body, n)) > 0 && ok;
  ok = fclose(f) == 0 && ok;
  free(body);
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return dlk_fail(ctx, DLK_ERR_IO, "dlk_autotune_save: writing %s failed", path);
  }
  return DLK_OK;
}

/* 1-based number of the line holding byte pos of buf. */
static int line_at(const char *buf, size_t pos) {
  int line = 1;
  for (size_t i = 0; i < pos; i++) line += buf[i] == '\n';
  return line;
}

static dlk_status corrupt(dlk_context *ctx, const char *path, int line, const char *what) {
  return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "autotune cache %s: line %d: %s; file ignored", path,
                  line, what);
}

dlk_status dlk_autotune_load(dlk_context *ctx, const char *path) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!path) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_autotune_load: path is NULL");
  /* Caches are small: refuse anything over 16 MiB. */
  char *buf;
  size_t n;
  DLK_TRY(dlk_read_file(ctx, "dlk_autotune_load", path, 16u << 20, &buf, &n));
  dlk_status s = DLK_OK;
  const char *nul = memchr(buf, '\0', n);
  if (nul) {
    s = corrupt(ctx, path, line_at(buf, (size_t)(nul - buf)), "contains NUL bytes");
    goto done;
  }
  /* Checksum line: the last line. */
  if (n < 2 || buf[n - 1] != '\n') {
    s = corrupt(ctx, path, line_at(buf, n), "truncated (no final newline)");
    goto done;
  }
  buf[n - 1] = '\0';
  char *last = strrchr(buf, '\n');
  size_t body_len = last ? (size_t)(last - buf + 1) : 0;
  const int last_line = line_at(buf, body_len); /* the checksum's line */
  uint64_t want = 0;
  char extra;
  if (!last || sscanf(last + 1, "checksum %" SCNx64 "%c", &want, &extra) != 1) {
    s = corrupt(ctx, path, last_line, "no checksum line at the end");
    goto done;
  }
  if (fnv1a(buf, body_len) != want) {
    s = corrupt(ctx, path, last_line, "checksum does not match the contents");
    goto done;
  }
  buf[body_len] = '\0'; /* the body: every line ends with '\n' */
  if (strncmp(buf, TUNE_MAGIC, strlen(TUNE_MAGIC)) != 0) {
    s = corrupt(ctx, path, 1, "not a dlk autotune cache (bad magic)");
    goto done;
  }
  char *line = buf + strlen(TUNE_MAGIC);
  char *nl = strchr(line, '\n');
  if (!nl || strncmp(line, "device ", 7) != 0) {
    s = corrupt(ctx, path, 2, "missing device line");
    goto done;
  }
  *nl = '\0';
  if (strcmp(line + 7, ctx->device_name) != 0) {
    s = dlk_fail(ctx, DLK_ERR_CORRUPT_FILE,
                 "autotune cache %s was made on \"%s\", this context is on \"%s\"; file ignored",
                 path, line + 7, ctx->device_name);
    goto done;
  }
  /* Parse every entry into a fresh cache, then swap: a bad line leaves ctx untouched. */
  dlk_tune_cache fresh = {0};
  int lineno = 2;
  for (line = nl + 1; *line; line = nl + 1) {
    lineno++;
    nl = strchr(line, '\n');
    *nl = '\0';
    char key[DLK_KEY_LEN];
    int id, used = 0;
    if (strlen(line) >= DLK_KEY_LEN + 16 ||
        sscanf(line, "%255s %d%n", key, &id, &used) != 2 || line[used] != '\0' || id < 0 || id > 99) {
      dlk_tune_free(&fresh);
      s = corrupt(ctx, path, lineno, "expected \"<key> <variant id 0..99>\"");
      goto done;
    }
    const char *bar = strchr(key, '|');
    char opname[64];
    size_t oplen = bar ? (size_t)(bar - key) : 0;
    const dlk_op *op = NULL;
    if (oplen > 0 && oplen < sizeof opname) {
      memcpy(opname, key, oplen);
      opname[oplen] = '\0';
      op = dlk_find_op(opname);
    }
    if (!op || !find_variant(op, id)) {
      dlk_tune_free(&fresh);
      s = corrupt(ctx, path, lineno, "unknown op or variant");
      goto done;
    }
    if (!tune_put(&fresh, key, id)) {
      dlk_tune_free(&fresh);
      s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "dlk_autotune_load: out of memory");
      goto done;
    }
  }
  dlk_tune_free(&ctx->tune);
  ctx->tune = fresh;
done:
  free(buf);
  return s;
}

/* ---- selection ---- */

static const char *device_reason(const dlk_context *ctx, const dlk_variant *v) {
  if (v->device == ctx->device.type) return NULL;
  return v->device == DLK_CPU ? "runs on the CPU; this context is on a CUDA device"
                              : "runs on a CUDA device; this context is on the CPU";
}

/* Whether v can run args here; reason in why otherwise. */
static bool can_run(dlk_context *ctx, const dlk_variant *v, const void *args, size_t *ws,
                    char *why, size_t why_len) {
  why[0] = '\0';
  *ws = 0;
  const char *dev = device_reason(ctx, v);
  if (dev) {
    snprintf(why, why_len, "%s", dev);
    return false;
  }
  if (v->supports && !v->supports(ctx, args, v->impl, why, why_len)) {
    if (!why[0]) snprintf(why, why_len, "does not support this case");
    return false;
  }
  *ws = v->workspace ? v->workspace(ctx, args, v->impl) : 0;
  if (ctx->opts.workspace_limit && *ws > ctx->opts.workspace_limit) {
    snprintf(why, why_len, "needs %zu bytes of workspace, the cap is %zu", *ws,
             ctx->opts.workspace_limit);
    return false;
  }
  return true;
}

/* Rank for the default choice: vendor > higher CUDA id > optimised CPU > CPU ref. */
static int rank_of(int id) {
  if (id >= DLK_VARIANT_VENDOR_FIRST && id <= DLK_VARIANT_VENDOR_LAST) return 1000 + id;
  if (id >= DLK_VARIANT_CUDA_FIRST && id <= DLK_VARIANT_CUDA_LAST) return 500 + id;
  if (id >= DLK_VARIANT_CPU_OPT_FIRST) return 100 + id;
  return 0;
}

static dlk_status run_variant(dlk_context *ctx, const dlk_op *op, const dlk_variant *v,
                              const void *args, size_t ws_bytes) {
  void *ws = NULL;
  if (ws_bytes) DLK_TRY(dlk_workspace_reserve(ctx, ws_bytes, &ws));
  ctx->last_op = op->name;
  ctx->last_variant = v->id;
  return v->run(ctx, args, v->impl, ws, ws_bytes);
}

static void build_key(const dlk_context *ctx, const dlk_op *op, const void *args, char *key,
                      size_t n) {
  char shape[DLK_KEY_LEN];
  shape[0] = '\0';
  if (op->key) op->key(args, shape, sizeof shape);
  snprintf(key, n, "%s|%s|tf32=%d|det=%d|ws=%zu", op->name, shape, ctx->opts.allow_tf32 != 0,
           ctx->opts.deterministic != 0, ctx->opts.workspace_limit);
  for (char *c = key; *c; c++)
    if (*c == ' ' || *c == '\n') *c = '_';
}

#if DLK_HAVE_CUDA
/* Time one run of v in milliseconds with CUDA events on the context's stream. */
static dlk_status time_variant(dlk_context *ctx, const dlk_op *op, const dlk_variant *v,
                               const void *args, size_t ws, float *ms) {
  cudaStream_t st = (cudaStream_t)ctx->stream;
  if (!ctx->events[0]) {
    DLK_CUDA_TRY(ctx, cudaEventCreate((cudaEvent_t *)&ctx->events[0]));
    DLK_CUDA_TRY(ctx, cudaEventCreate((cudaEvent_t *)&ctx->events[1]));
  }
#if defined(DLK_CUDA_EMU)
  /* The emulated device (tests/emu): its times mean nothing, so one timed run and no
     warm-up; the path (events, the cache entry, the winner run last) is the same. */
  const int reps = 1;
#else
  const int reps = 3;
  DLK_TRY(run_variant(ctx, op, v, args, ws)); /* warm-up: also grows the arena */
#endif
  float best = 1e30f;
  for (int rep = 0; rep < reps; rep++) {
    DLK_CUDA_TRY(ctx, cudaEventRecord((cudaEvent_t)ctx->events[0], st));
    DLK_TRY(run_variant(ctx, op, v, args, ws));
    DLK_CUDA_TRY(ctx, cudaEventRecord((cudaEvent_t)ctx->events[1], st));
    DLK_CUDA_TRY(ctx, cudaEventSynchronize((cudaEvent_t)ctx->events[1]));
    float t;
    DLK_CUDA_TRY(ctx, cudaEventElapsedTime(&t, (cudaEvent_t)ctx->events[0],
                                           (cudaEvent_t)ctx->events[1]));
    if (t < best) best = t;
  }
  *ms = best;
  return DLK_OK;
}
#endif

/* ---- calls with nothing to write ---- */

dlk_tensor dlk_output_desc(void *data, dlk_dtype dtype, dlk_device_type device, int ndim,
                           int64_t d0, int64_t d1) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.device = (dlk_device){device, 0};
  t.ndim = ndim < 0 ? 0 : ndim > 2 ? 2 : ndim;
  t.shape[0] = d0;
  t.shape[1] = d1;
  dlk_contiguous_strides(t.ndim, t.shape, t.strides);
  return t;
}

bool dlk_outputs_empty(const dlk_op *op, const void *args) {
  if (!op->outputs) return false;
  dlk_tensor outs[DLK_MAX_OUTPUTS];
  int n = op->outputs(args, outs, DLK_MAX_OUTPUTS);
  if (n < 1 || n > DLK_MAX_OUTPUTS) return false;
  for (int i = 0; i < n; i++)
    if (dlk_tensor_numel(&outs[i]) > 0) return false;
  return true;
}

static dlk_status explain(dlk_context *ctx, const dlk_op *op, const void *args) {
  char *out = ctx->explain_text;
  size_t n = sizeof ctx->explain_text;
  char key[DLK_KEY_LEN + 64], why[256];
  out[0] = '\0';
  if (dlk_outputs_empty(op, args)) {
    dlk_appendf(out, n, "%s on %s: every output is empty: the call returns DLK_OK at once and "
                "runs no variant\n", op->name, ctx->device_name);
    return DLK_OK;
  }
  build_key(ctx, op, args, key, sizeof key);
  dlk_appendf(out, n, "%s on %s (key %s)\n", op->name, ctx->device_name, key);
  int forced = forced_id(ctx, op->name);
  int best = -1, best_rank = -1, supported = 0;
  int heur = op->heuristic ? op->heuristic(ctx, args) : -1;
  bool heur_ok = false, forced_ok = false;
  for (int i = 0; i < op->count; i++) {
    const dlk_variant *v = &op->variants[i];
    size_t ws;
    bool ok = can_run(ctx, v, args, &ws, why, sizeof why);
    if (ok) {
      dlk_appendf(out, n, "  %2d %-14s supported", v->id, v->name);
      if (ws) dlk_appendf(out, n, " (workspace %zu bytes)", ws);
      dlk_appendf(out, n, "\n");
      supported++;
      if (rank_of(v->id) > best_rank) best_rank = rank_of(v->id), best = v->id;
      if (v->id == heur) heur_ok = true;
      if (v->id == forced) forced_ok = true;
    } else {
      dlk_appendf(out, n, "  %2d %-14s not supported: %s\n", v->id, v->name, why);
    }
  }
  int cached = tune_get(&ctx->tune, key, fnv1a(key, strlen(key)));
  bool tunes = ctx->device.type == DLK_CUDA && op->tunable && !ctx->opts.disable_autotune;
  if (forced >= 0)
    dlk_appendf(out, n, forced_ok ? "forced: variant %d runs\n"
                                  : "forced: variant %d cannot run this call: the call fails "
                                    "with DLK_ERR_NOT_SUPPORTED\n",
                forced);
  else if (cached >= 0)
    dlk_appendf(out, n, "AUTO would run: %d (autotune cache)\n", cached);
  else if (best < 0)
    dlk_appendf(out, n, "AUTO would fail: no variant supports this case\n");
  else if (tunes && supported > 1)
    dlk_appendf(out, n, "AUTO would time the %d supported variants on the first call and cache the "
                        "fastest\n", supported);
  else if (heur_ok)
    dlk_appendf(out, n, "AUTO would run: %d (heuristic)\n", heur);
  else
    dlk_appendf(out, n, "AUTO would run: %d (highest-ranked supported variant)\n", best);
  return DLK_OK;
}

/* The forced variant of this op on ctx: *out NULL when none is forced; an error with the
   reason when the forced one cannot run this call (never a fallback). */
static dlk_status forced_variant(dlk_context *ctx, const dlk_op *op, const void *args,
                                 const dlk_variant **out, size_t *ws) {
  char why[256];
  *out = NULL;
  int forced = forced_id(ctx, op->name);
  if (forced < 0) return DLK_OK;
  const dlk_variant *v = find_variant(op, forced);
  if (!v) return dlk_fail(ctx, DLK_ERR_INTERNAL, "%s: forced variant %d vanished", op->name, forced);
  if (!can_run(ctx, v, args, ws, why, sizeof why))
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s/%s (forced): %s", op->name, v->name, why);
  *out = v;
  return DLK_OK;
}

/* Every variant that can run this call, with its workspace; when there is none, an error
   listing each variant of this device with its reason. */
typedef struct candidates {
  const dlk_variant *v[32];
  size_t ws[32];
  int n;
} candidates;

static dlk_status gather(dlk_context *ctx, const dlk_op *op, const void *args, candidates *c) {
  char why[256], reasons[DLK_ERRMSG_LEN];
  size_t ws;
  reasons[0] = '\0';
  c->n = 0;
  for (int i = 0; i < op->count && c->n < 32; i++) {
    const dlk_variant *v = &op->variants[i];
    if (can_run(ctx, v, args, &ws, why, sizeof why)) {
      c->v[c->n] = v;
      c->ws[c->n++] = ws;
    } else if (v->device == ctx->device.type) {
      dlk_appendf(reasons, sizeof reasons, "%s%s: %s", reasons[0] ? "; " : "", v->name, why);
    }
  }
  if (c->n == 0)
    return dlk_fail(ctx, DLK_ERR_NOT_SUPPORTED, "%s: no variant supports this case (%s)", op->name,
                    reasons[0] ? reasons : "no variant for this device");
  return DLK_OK;
}

dlk_status dlk_dispatch(dlk_context *ctx, const dlk_op *op, const void *args) {
  if (ctx->explain) return explain(ctx, op, args);
  /* Nothing to write: done, whatever the variant (an empty tensor's other dims may be
     huge, and no row should loop over them or size a workspace from them). */
  if (dlk_outputs_empty(op, args)) return DLK_OK;
  const dlk_variant *v;
  size_t ws;
  DLK_TRY(forced_variant(ctx, op, args, &v, &ws));
  if (v) return run_variant(ctx, op, v, args, ws);

  /* Fast path: the cache. Building the key is the whole per-call overhead. */
  char key[DLK_KEY_LEN + 64], why[256];
  build_key(ctx, op, args, key, sizeof key);
  int cached = tune_get(&ctx->tune, key, fnv1a(key, strlen(key)));
  if (cached >= 0) {
    v = find_variant(op, cached);
    if (v && can_run(ctx, v, args, &ws, why, sizeof why)) return run_variant(ctx, op, v, args, ws);
  }

  candidates c;
  DLK_TRY(gather(ctx, op, args, &c));
  int pick = -1;
#if DLK_HAVE_CUDA
  if (ctx->device.type == DLK_CUDA && op->tunable && !ctx->opts.disable_autotune && c.n > 1) {
    float best_ms = 1e30f;
    for (int i = 0; i < c.n; i++) {
      float ms;
      DLK_TRY(time_variant(ctx, op, c.v[i], args, c.ws[i], &ms));
      if (ms < best_ms) best_ms = ms, pick = i;
    }
    tune_put(&ctx->tune, key, c.v[pick]->id);
    /* Run the winner last so the outputs are its outputs. */
    return run_variant(ctx, op, c.v[pick], args, c.ws[pick]);
  }
#endif
  int heur = op->heuristic ? op->heuristic(ctx, args) : -1;
  for (int i = 0; i < c.n; i++)
    if (c.v[i]->id == heur) pick = i;
  if (pick < 0) {
    pick = 0;
    for (int i = 1; i < c.n; i++)
      if (rank_of(c.v[i]->id) > rank_of(c.v[pick]->id)) pick = i;
  }
  return run_variant(ctx, op, c.v[pick], args, c.ws[pick]);
}

int dlk_variant_by_name(const dlk_variant *v, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0) return v[i].id;
  return -1;
}

dlk_status dlk_dispatch_check(dlk_context *ctx, const dlk_op *op, const void *args) {
  const dlk_variant *v;
  size_t ws;
  if (dlk_outputs_empty(op, args)) return DLK_OK;
  DLK_TRY(forced_variant(ctx, op, args, &v, &ws));
  if (v) return DLK_OK;
  candidates c;
  return gather(ctx, op, args, &c);
}

dlk_status dlk_explain_mode(dlk_context *ctx, int on) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  ctx->explain = on != 0;
  ctx->explain_text[0] = '\0';
  return DLK_OK;
}

dlk_status dlk_explain_report(dlk_context *ctx, const char **text) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  if (!text) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "dlk_explain_report: text is NULL");
  *text = ctx->explain_text;
  return DLK_OK;
}
