/*
 * glove family, internal: the tokenizer and the vocabulary (host/glove/vocab.c), used by
 * the file formats (io.c), co-occurrence counting (cooccur.c) and evaluation (glove.c).
 * Needs nothing of the rest of the family.
 */
#ifndef DLK_GLOVE_VOCAB_H
#define DLK_GLOVE_VOCAB_H

#include "../core/internal.h"

/* The tool's token reader as a resumable state machine over byte pieces. */
#define DLK_GLOVE_MAX_WORD 1000 /* the tool's MAX_STRING_LENGTH: words keep <= 999 bytes */
typedef struct dlk_glove_tokenizer {
  char word[DLK_GLOVE_MAX_WORD + 1];
  int len;      /* bytes in word so far (<= 999) */
  bool in_word; /* inside a token */
} dlk_glove_tokenizer;
/* Feed bytes; on_token(user, word, len) for each complete token, on_newline(user) for
   each '\n' (after the token it ends). A callback returning non-OK stops the feed.
   dlk_glove_tokenizer_end flushes a final token without newline. */
typedef dlk_status (*dlk_glove_token_fn)(void *user, const char *word, int len);
typedef dlk_status (*dlk_glove_newline_fn)(void *user);
dlk_status dlk_glove_tokenize(dlk_glove_tokenizer *t, const char *text, size_t n,
                              dlk_glove_token_fn on_token, dlk_glove_newline_fn on_newline,
                              void *user);
dlk_status dlk_glove_tokenizer_end(dlk_glove_tokenizer *t, dlk_glove_token_fn on_token, void *user);

/* The vocabulary: a chained hash table with move-to-front on access, keyed by the tool's
   hash (bitwisehash, seed 1159241, modulo its 2^20 buckets), so that the tool's order of
   iteration (bucket by bucket, each chain front to back: it decides ties under
   -max-vocab) can be rebuilt. The table itself has fewer buckets (a power of two dividing
   2^20, grown with the words): words of one tool bucket always share a chain here and
   keep the same relative order as in the tool's chain (new words at the tail, found
   words to the front). Words live in one byte pool. While counting, entries are in
   insertion order; after finish/load, entry i is id i+1. */
#define DLK_GLOVE_TSIZE (1 << 20)
typedef struct dlk_glove_word {
  int64_t count;
  int64_t off;   /* into pool */
  int32_t len;
  int32_t next;  /* chain, -1 = end */
  uint32_t tool_bucket; /* the tool's bucket: hash % 2^20 */
} dlk_glove_word;
struct dlk_glove_vocab {
  int32_t *heads; /* nb chain heads, -1 = empty */
  int64_t nb;     /* buckets: a power of two <= DLK_GLOVE_TSIZE */
  dlk_glove_word *w;
  int64_t n, cap;
  char *pool;
  int64_t pool_len, pool_cap;
  bool finished;
  int64_t tokens;
  dlk_glove_tokenizer tok;
  dlk_status bad;  /* sticky error of the feed (e.g. "<unk>") */
};
/* Id 1..V (finished) or entry index + 1 (counting) of a word, 0 when absent. Moves the
   entry to the front of its chain (the table is logically const: ids never change). */
int64_t dlk_glove_vocab_lookup(const dlk_glove_vocab *v, const char *word, int len);
/* Internal constructors used by the loader of vocab.txt (io.c). */
dlk_status dlk_glove_vocab_alloc(dlk_context *ctx, dlk_glove_vocab **out);
/* Free without a context (internal error paths; the public free wraps it). */
void dlk_glove_vocab_release(dlk_glove_vocab *v);
/* Append a new word (no duplicate check); false on out of memory. */
bool dlk_glove_vocab_append(dlk_glove_vocab *v, const char *word, int len, int64_t count);
static inline const char *dlk_glove_word_str(const dlk_glove_vocab *v, int64_t i) {
  return v->pool + v->w[i].off;
}

#endif /* DLK_GLOVE_VOCAB_H */
