/* Fuzz the checkpoint reader: whatever it accepts saves and reloads to the same bytes. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dlk_context *ctx = fz_ctx();
  const char *path = fz_file(data, size, ".dlk");
  dlk_glove_model m;
  memset(&m, 0, sizeof m);
  dlk_glove_checkpoint_info info;
  dlk_status s = dlk_glove_checkpoint_load(ctx, path, &m, &info);
  fz_check_status(s);
  if (s == DLK_OK) {
    char out[600];
    snprintf(out, sizeof out, "%s.out", path);
    if (dlk_glove_checkpoint_save(ctx, &m, &info, out) != DLK_OK) abort();
    FILE *f = fopen(out, "rb");
    if (!f) abort();
    uint8_t *back = malloc(size + 1);
    size_t n = fread(back, 1, size + 1, f);
    fclose(f);
    if (n != size || memcmp(back, data, size) != 0) abort();
    free(back);
    unlink(out);
    dlk_glove_model_free(ctx, &m);
  } else if (m.params.data) {
    abort();
  }
  /* The same bytes as a raw params file for a small model. */
  dlk_glove_model p;
  if (dlk_glove_model_create(ctx, 2, 3, DLK_F64, 1, &p) != DLK_OK) abort();
  fz_check_status(dlk_glove_model_load_params(ctx, &p, path));
  fz_check_status(dlk_glove_model_load_gradsq(ctx, &p, path));
  dlk_glove_model_free(ctx, &p);
  unlink(path);
  return 0;
}
