/*
 * glove family: op tables and the public training entry points (records, epochs).
 * Vocabulary, co-occurrence and shuffle live in glove_corpus.c, file formats in
 * glove_io.c, evaluation in glove_eval.c, the CPU variants in cpu/glove_cpu.c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "glove.h"

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

static const dlk_variant *const epoch_variants[] = {&dlk_glove_epoch_cpu, &dlk_glove_epoch_hogwild,
                                                    DLK_GLOVE_EPOCH_GPU_VARIANTS};
static const dlk_variant *const chunk_variants[] = {&dlk_glove_cooccur_chunk_cpu,
                                                    DLK_GLOVE_COOCCUR_CHUNK_GPU_VARIANTS};
static const dlk_variant *const topk_variants[] = {&dlk_glove_topk_cpu,
                                                   DLK_GLOVE_TOPK_GPU_VARIANTS};
#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* On the CPU the Hogwild trainer is the default whenever more than one thread is asked
   for; one thread runs the reference (the same work, and bit-exact with the tool). On
   a GPU the highest-ranked variant (or the autotuner) decides. */
static int epoch_heuristic(const dlk_context *ctx, const void *args) {
  const dlk_glove_epoch_args *a = args;
  if (ctx->device.type == DLK_CPU) return a->threads > 1 ? 20 : 0;
  return -1;
}

/* An epoch changes the model: never time it more than once per call. */
const dlk_op dlk_glove_epoch_op = {"glove_epoch", epoch_variants, COUNT_OF(epoch_variants),
                                   epoch_key, epoch_heuristic, false};
const dlk_op dlk_glove_cooccur_chunk_op = {"glove_cooccur_chunk", chunk_variants,
                                           COUNT_OF(chunk_variants), chunk_key, NULL, true};
const dlk_op dlk_glove_topk_op = {"glove_topk", topk_variants, COUNT_OF(topk_variants), topk_key,
                                  NULL, true};

const dlk_op *const dlk_glove_ops[] = {&dlk_glove_epoch_op, &dlk_glove_cooccur_chunk_op,
                                       &dlk_glove_topk_op, NULL};

int dlk_glove_cpu_threads(const dlk_context *ctx, int requested) {
  if (requested > 0) return requested;
  if (ctx && ctx->opts.cpu_threads > 0) return ctx->opts.cpu_threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
