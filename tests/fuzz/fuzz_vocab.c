/* Fuzz the vocab.txt reader; what it accepts must write back and read again to the same
   words. Also feeds the bytes to the corpus tokenizer as text. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dlk_context *ctx = fz_ctx();
  const char *path = fz_file(data, size, ".txt");
  dlk_glove_vocab *v = NULL;
  dlk_status s = dlk_glove_vocab_load(ctx, path, &v);
  fz_check_status(s);
  if (s == DLK_OK) {
    int64_t n = 0, n2 = 0;
    dlk_glove_vocab_size(ctx, v, &n);
    char out[600];
    snprintf(out, sizeof out, "%s.out", path);
    if (dlk_glove_vocab_save(ctx, v, out) != DLK_OK) abort();
    dlk_glove_vocab *w = NULL;
    if (dlk_glove_vocab_load(ctx, out, &w) != DLK_OK) abort();
    dlk_glove_vocab_size(ctx, w, &n2);
    if (n != n2) abort();
    for (int64_t i = 1; i <= n; i++) {
      const char *a, *b;
      int64_t ca, cb;
      dlk_glove_vocab_word(ctx, v, i, &a, &ca);
      dlk_glove_vocab_word(ctx, w, i, &b, &cb);
      if (strcmp(a, b) != 0 || ca != cb) abort();
    }
    dlk_glove_vocab_free(ctx, w);
    unlink(out);
    dlk_glove_vocab_free(ctx, v);
  }
  /* The same bytes as a corpus. */
  dlk_glove_vocab *c = NULL;
  if (dlk_glove_vocab_create(ctx, &c) != DLK_OK) abort();
  s = dlk_glove_vocab_add_text(ctx, c, (const char *)data, size);
  fz_check_status(s);
  if (s == DLK_OK) fz_check_status(dlk_glove_vocab_finish(ctx, c, NULL));
  dlk_glove_vocab_free(ctx, c);
  unlink(path);
  return 0;
}
