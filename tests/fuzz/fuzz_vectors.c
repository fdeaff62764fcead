/* Fuzz the vectors text reader against a fixed small vocabulary, and the analogy search
   over what it accepts. */
#include "fuzz_common.h"

static dlk_glove_vocab *fz_vocab(void) {
  static dlk_glove_vocab *v = NULL;
  if (!v) {
    const char text[] = "the 9\nof 8\nand 7\nking 6\nqueen 5\n";
    const char *path = fz_file((const uint8_t *)text, sizeof text - 1, ".vocab");
    if (dlk_glove_vocab_load(fz_ctx(), path, &v) != DLK_OK) abort();
    unlink(path);
  }
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dlk_context *ctx = fz_ctx();
  dlk_glove_vocab *v = fz_vocab();
  const char *path = fz_file(data, size, ".txt");
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  dlk_status s = dlk_glove_vectors_load_text(ctx, path, v, &t);
  fz_check_status(s);
  if (s == DLK_OK) {
    if (t.ndim != 2 || t.shape[0] != 5 || t.shape[1] < 1) abort();
    int32_t a = 0, b = 1, c = 2, pred = -1;
    fz_check_status(dlk_glove_analogy_predict(ctx, NULL, &t, &a, &b, &c, 1, &pred));
    dlk_tensor_free(ctx, &t);
  } else if (t.data) {
    abort(); /* output untouched on error */
  }
  unlink(path);
  return 0;
}
