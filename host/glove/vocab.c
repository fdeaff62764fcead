/*
 * glove family: from text to a vocabulary. The tool's tokenizer as a resumable state
 * machine and the vocabulary (the tool's hash table order, so -max-vocab ties fall the
 * same way), with the public dlk_glove_vocab_* functions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"

/* ---- tokenizer ----------------------------------------------------------------------- */

/* End the current token: the tool's cut of a 999-byte word so that no UTF-8 sequence is
   split, then the word as a C string (a NUL byte ends it, as in the tool's strcmp/hash;
   a token that is empty then is dropped). */
static dlk_status emit_token(dlk_glove_tokenizer *t, dlk_glove_token_fn on_token, void *user) {
  int i = t->len;
  unsigned char *w = (unsigned char *)t->word;
  w[i] = 0;
  if (i == DLK_GLOVE_MAX_WORD - 1 && (w[i - 1] & 0x80) == 0x80) {
    if ((w[i - 1] & 0xC0) == 0xC0)
      w[i - 1] = 0;
    else if (i > 2 && (w[i - 2] & 0xE0) == 0xE0)
      w[i - 2] = 0;
    else if (i > 3 && (w[i - 3] & 0xF8) == 0xF0)
      w[i - 3] = 0;
  }
  t->len = 0;
  int len = (int)strlen(t->word);
  if (len == 0) return DLK_OK;
  return on_token(user, t->word, len);
}

dlk_status dlk_glove_tokenize(dlk_glove_tokenizer *t, const char *text, size_t n,
                              dlk_glove_token_fn on_token, dlk_glove_newline_fn on_newline,
                              void *user) {
  for (size_t k = 0; k < n; k++) {
    char c = text[k];
    if (c == '\r') continue;
    if (c == ' ' || c == '\t' || c == '\n') {
      if (t->len > 0) DLK_TRY(emit_token(t, on_token, user));
      if (c == '\n' && on_newline) DLK_TRY(on_newline(user));
      continue;
    }
    /* Inside a token: keep at most 999 bytes, drop the rest (the tool does). */
    if (t->len < DLK_GLOVE_MAX_WORD - 1) t->word[t->len++] = c;
  }
  return DLK_OK;
}

dlk_status dlk_glove_tokenizer_end(dlk_glove_tokenizer *t, dlk_glove_token_fn on_token,
                                   void *user) {
  if (t->len > 0) return emit_token(t, on_token, user);
  return DLK_OK;
}

/* ---- vocabulary ------------------------------------------------------------------------ */

/* The tool's bitwisehash over signed chars. */
static uint32_t word_hash(const char *w, int len) {
  uint32_t h = 1159241;
  for (int i = 0; i < len; i++) h ^= (h << 5) + (uint32_t)(int32_t)(signed char)w[i] + (h >> 2);
  return (h & 0x7fffffff) % DLK_GLOVE_TSIZE;
}

/* The tool's scmp: byte compare as signed chars, on C strings. */
static int scmp(const char *a, const char *b) {
  while (*a != '\0' && *a == *b) a++, b++;
  return (int)(signed char)*a - (int)(signed char)*b;
}

static bool word_eq(const dlk_glove_vocab *v, int32_t e, const char *w, int len) {
  return v->w[e].len == len && memcmp(v->pool + v->w[e].off, w, (size_t)len) == 0;
}

dlk_status dlk_glove_vocab_alloc(dlk_context *ctx, dlk_glove_vocab **out) {
  dlk_glove_vocab *v = calloc(1, sizeof *v);
  if (v) v->nb = 1024, v->heads = malloc(sizeof(int32_t) * 1024);
  if (!v || !v->heads) {
    if (v) free(v);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove vocab: out of memory");
  }
  memset(v->heads, 0xff, sizeof(int32_t) * 1024); /* all -1 */
  return *out = v, DLK_OK;
}

/* Append entry e at the tail of chain b (tails: optional array of chain tails). */
static void chain_append(dlk_glove_vocab *v, int64_t b, int32_t e, int32_t *tails) {
  v->w[e].next = -1;
  if (v->heads[b] < 0) {
    v->heads[b] = e;
  } else {
    int32_t p = tails ? tails[b] : v->heads[b];
    while (v->w[p].next >= 0) p = v->w[p].next;
    v->w[p].next = e;
  }
  if (tails) tails[b] = e;
}

/* Four times the buckets: chains are walked in order and appended at the new tails, so
   words of one tool bucket keep their relative order. */
static bool grow_table(dlk_glove_vocab *v) {
  int64_t nb = v->nb * 4;
  if (nb > DLK_GLOVE_TSIZE) return true;
  int32_t *heads = malloc(sizeof(int32_t) * (size_t)nb), *tails = malloc(sizeof(int32_t) * (size_t)nb);
  if (!heads || !tails) {
    free(heads), free(tails);
    return false;
  }
  memset(heads, 0xff, sizeof(int32_t) * (size_t)nb);
  int32_t *old = v->heads;
  int64_t onb = v->nb;
  v->heads = heads;
  v->nb = nb;
  for (int64_t b = 0; b < onb; b++) {
    for (int32_t e = old[b]; e >= 0;) {
      int32_t nx = v->w[e].next;
      chain_append(v, v->w[e].tool_bucket & (nb - 1), e, tails);
      e = nx;
    }
  }
  free(old);
  free(tails);
  return true;
}

bool dlk_glove_vocab_append(dlk_glove_vocab *v, const char *word, int len, int64_t count) {
  if (v->n >= INT32_MAX - 1) return false;
  if (v->n == v->cap) {
    int64_t nc = v->cap ? v->cap * 2 : 4096;
    dlk_glove_word *nw = realloc(v->w, (size_t)nc * sizeof *nw);
    if (!nw) return false;
    v->w = nw;
    v->cap = nc;
  }
  if (v->pool_len + len + 1 > v->pool_cap) {
    int64_t nc = v->pool_cap ? v->pool_cap * 2 : 65536;
    while (nc < v->pool_len + len + 1) nc *= 2;
    char *np = realloc(v->pool, (size_t)nc);
    if (!np) return false;
    v->pool = np;
    v->pool_cap = nc;
  }
  memcpy(v->pool + v->pool_len, word, (size_t)len);
  v->pool[v->pool_len + len] = '\0';
  if (v->n >= v->nb * 2 && !grow_table(v)) return false;
  int32_t e = (int32_t)v->n++;
  uint32_t h = word_hash(word, len);
  v->w[e] = (dlk_glove_word){count, v->pool_len, len, -1, h};
  v->pool_len += len + 1;
  /* New words go to the END of their chain (the tool moves only found words to front). */
  chain_append(v, h & (v->nb - 1), e, NULL);
  return true;
}

/* Find a word, moving it to the front of its chain; -1 when absent. */
static int32_t find_mtf(dlk_glove_vocab *v, const char *w, int len) {
  uint32_t h = word_hash(w, len) & (uint32_t)(v->nb - 1);
  int32_t prev = -1, e = v->heads[h];
  while (e >= 0 && !word_eq(v, e, w, len)) prev = e, e = v->w[e].next;
  if (e >= 0 && prev >= 0) {
    v->w[prev].next = v->w[e].next;
    v->w[e].next = v->heads[h];
    v->heads[h] = e;
  }
  return e;
}

int64_t dlk_glove_vocab_lookup(const dlk_glove_vocab *v, const char *word, int len) {
  /* Move-to-front changes only chain order, never ids: logically const. */
  int32_t e = find_mtf((dlk_glove_vocab *)v, word, len);
  return e < 0 ? 0 : (int64_t)e + 1;
}

dlk_status dlk_glove_vocab_create(dlk_context *ctx, dlk_glove_vocab **out) {
  if (!out) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_create: out is NULL");
  return dlk_glove_vocab_alloc(ctx, out);
}

void dlk_glove_vocab_release(dlk_glove_vocab *v) {
  if (!v) return;
  free(v->heads);
  free(v->w);
  free(v->pool);
  free(v);
}

dlk_status dlk_glove_vocab_free(dlk_context *ctx, dlk_glove_vocab *v) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  dlk_glove_vocab_release(v);
  return DLK_OK;
}

typedef struct vocab_feed {
  dlk_context *ctx;
  dlk_glove_vocab *v;
} vocab_feed;

static dlk_status vocab_on_token(void *user, const char *w, int len) {
  vocab_feed *f = user;
  dlk_glove_vocab *v = f->v;
  if (len == 5 && memcmp(w, "<unk>", 5) == 0)
    return dlk_fail(f->ctx, DLK_ERR_INVALID_ARGUMENT,
                    "glove_vocab: the corpus contains \"<unk>\" (token %lld), which names the "
                    "unknown-word row of vectors.txt; replace it (e.g. sed -e "
                    "'s/<unk>/<raw_unk>/g')",
                    (long long)v->tokens + 1);
  v->tokens++;
  int32_t e = find_mtf(v, w, len);
  if (e >= 0) {
    v->w[e].count++;
    return DLK_OK;
  }
  if (!dlk_glove_vocab_append(v, w, len, 1))
    return dlk_fail(f->ctx, DLK_ERR_OUT_OF_MEMORY, "glove_vocab: out of memory at %lld words",
                    (long long)v->n);
  return DLK_OK;
}

dlk_status dlk_glove_vocab_add_text(dlk_context *ctx, dlk_glove_vocab *v, const char *text,
                                    size_t bytes) {
  if (!v) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_add_text: vocab is NULL");
  if (!text && bytes) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_add_text: text is NULL");
  if (v->finished)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_vocab_add_text: the vocabulary is finished");
  if (v->bad != DLK_OK)
    return dlk_fail(ctx, v->bad, "glove_vocab_add_text: an earlier piece failed; start again");
  vocab_feed f = {ctx, v};
  dlk_status s = dlk_glove_tokenize(&v->tok, text, bytes, vocab_on_token, NULL, &f);
  if (s != DLK_OK) v->bad = s;
  return s;
}

/* Stable merge sort of entry indices (glibc's qsort is a stable merge sort whenever it
   can allocate its buffer, which decides the order of equal counts under -max-vocab). */
typedef int (*idx_cmp)(const dlk_glove_vocab *v, int32_t a, int32_t b);
static void merge_sort(const dlk_glove_vocab *v, int32_t *a, int32_t *tmp, int64_t n, idx_cmp cmp) {
  if (n < 2) return;
  int64_t n1 = n / 2, n2 = n - n1;
  merge_sort(v, a, tmp, n1, cmp);
  merge_sort(v, a + n1, tmp, n2, cmp);
  int64_t i = 0, j = n1, o = 0;
  while (i < n1 && j < n) tmp[o++] = cmp(v, a[i], a[j]) <= 0 ? a[i++] : a[j++];
  while (i < n1) tmp[o++] = a[i++];
  memcpy(a, tmp, (size_t)o * sizeof *a);
}
static int by_tool_bucket(const dlk_glove_vocab *v, int32_t a, int32_t b) {
  uint32_t x = v->w[a].tool_bucket, y = v->w[b].tool_bucket;
  return x == y ? 0 : x < y ? -1 : 1;
}
static int by_count(const dlk_glove_vocab *v, int32_t a, int32_t b) {
  int64_t ca = v->w[a].count, cb = v->w[b].count;
  return ca == cb ? 0 : ca > cb ? -1 : 1;
}
static int by_count_word(const dlk_glove_vocab *v, int32_t a, int32_t b) {
  int c = by_count(v, a, b);
  return c ? c : scmp(v->pool + v->w[a].off, v->pool + v->w[b].off);
}

dlk_status dlk_glove_vocab_finish(dlk_context *ctx, dlk_glove_vocab *v,
                                  const dlk_glove_vocab_params *p) {
  if (!v) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_finish: vocab is NULL");
  if (v->finished) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_vocab_finish: already finished");
  if (v->bad != DLK_OK) return dlk_fail(ctx, v->bad, "glove_vocab_finish: the text was refused earlier");
  int64_t min_count = p ? p->min_count : 1, max_vocab = p ? p->max_vocab : 0;
  if (min_count < 0 || max_vocab < 0)
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "glove_vocab_finish: min_count %lld and max_vocab %lld must be >= 0",
                    (long long)min_count, (long long)max_vocab);
  vocab_feed f = {ctx, v};
  dlk_glove_tokenizer saved = v->tok;
  dlk_status s = dlk_glove_tokenizer_end(&v->tok, vocab_on_token, &f);
  if (s != DLK_OK) return v->bad = s;
  if (v->n == 0) {
    v->tok = saved;
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_vocab_finish: the corpus has no tokens");
  }
  int64_t n = v->n;
  int32_t *order = malloc((size_t)n * sizeof *order), *tmp = malloc((size_t)n * sizeof *tmp);
  if (!order || !tmp) {
    free(order), free(tmp);
    return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_vocab_finish: out of memory");
  }
  /* The tool's array: its buckets in order, each chain front to back. Our chains hold
     each tool bucket's words in the tool's relative order, so walking them and then
     sorting stably by tool bucket gives exactly that array. */
  int64_t k = 0;
  for (int64_t b = 0; b < v->nb; b++)
    for (int32_t e = v->heads[b]; e >= 0; e = v->w[e].next) order[k++] = e;
  merge_sort(v, order, tmp, n, by_tool_bucket);
  if (max_vocab > 0 && max_vocab < n)
    merge_sort(v, order, tmp, n, by_count); /* truncate among pseudo-random ties */
  else
    max_vocab = n;
  merge_sort(v, order, tmp, max_vocab, by_count_word);
  int64_t keep = 0;
  while (keep < max_vocab && v->w[order[keep]].count >= min_count) keep++;
  if (keep == 0) {
    int64_t top = v->w[order[0]].count;
    free(order), free(tmp);
    v->tok = saved;
    return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT,
                    "glove_vocab_finish: no word occurs at least min_count = %lld times "
                    "(%lld distinct words, the most frequent %lld times)",
                    (long long)min_count, (long long)n, (long long)top);
  }
  dlk_glove_vocab *nv = NULL;
  s = dlk_glove_vocab_alloc(ctx, &nv);
  for (int64_t i = 0; s == DLK_OK && i < keep; i++) {
    const dlk_glove_word *e = &v->w[order[i]];
    if (!dlk_glove_vocab_append(nv, v->pool + e->off, e->len, e->count)) {
      dlk_glove_vocab_release(nv);
      nv = NULL;
      s = dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "glove_vocab_finish: out of memory");
    }
  }
  free(order), free(tmp);
  if (s != DLK_OK) return s;
  nv->tokens = v->tokens;
  nv->finished = true;
  /* Swap the contents: the caller's handle now holds the finished vocabulary. */
  dlk_glove_vocab old = *v;
  *v = *nv;
  *nv = old;
  v->tokens = old.tokens;
  dlk_glove_vocab_release(nv);
  return DLK_OK;
}

dlk_status dlk_glove_vocab_size(dlk_context *ctx, const dlk_glove_vocab *v, int64_t *size) {
  if (!v || !size) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_size: NULL argument");
  *size = v->finished ? v->n : 0;
  return DLK_OK;
}

dlk_status dlk_glove_vocab_tokens(dlk_context *ctx, const dlk_glove_vocab *v, int64_t *tokens,
                                  int64_t *distinct) {
  if (!v) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_tokens: vocab is NULL");
  if (tokens) *tokens = v->tokens;
  if (distinct) *distinct = v->n;
  return DLK_OK;
}

dlk_status dlk_glove_vocab_word(dlk_context *ctx, const dlk_glove_vocab *v, int64_t id,
                                const char **word, int64_t *count) {
  if (!v) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_word: vocab is NULL");
  if (!v->finished) return dlk_fail(ctx, DLK_ERR_INVALID_ARGUMENT, "glove_vocab_word: vocabulary not finished");
  if (id < 1 || id > v->n)
    return dlk_fail(ctx, DLK_ERR_OUT_OF_RANGE, "glove_vocab_word: id %lld not in [1, %lld]",
                    (long long)id, (long long)v->n);
  if (word) *word = dlk_glove_word_str(v, id - 1);
  if (count) *count = v->w[id - 1].count;
  return DLK_OK;
}

dlk_status dlk_glove_vocab_find(dlk_context *ctx, const dlk_glove_vocab *v, const char *word,
                                int64_t *id) {
  if (!v || !word || !id) return dlk_fail(ctx, DLK_ERR_NULL_POINTER, "glove_vocab_find: NULL argument");
  size_t len = strlen(word);
  *id = len > INT32_MAX ? 0 : dlk_glove_vocab_lookup(v, word, (int)len);
  if (!v->finished) *id = 0;
  return DLK_OK;
}

