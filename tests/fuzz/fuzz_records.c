/* Fuzz the co-occurrence record readers: dlk_glove_records_open (resident and streamed,
   with the whole-file checks), dlk_glove_records_read, and one training epoch over what
   they accept. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dlk_context *ctx = fz_ctx();
  const char *path = fz_file(data, size, ".bin");
  int64_t V = 1 + (size ? data[0] % 16 : 0);
  for (int streamed = 0; streamed < 2; streamed++) {
    dlk_glove_records_params p = {V, streamed ? 1 : 0, streamed ? 3 : 0};
    dlk_glove_records *r = NULL;
    dlk_status s = dlk_glove_records_open(ctx, &p, path, &r);
    fz_check_status(s);
    if (s != DLK_OK) {
      if (r) abort(); /* no handle on error */
      continue;
    }
    dlk_glove_model m;
    if (dlk_glove_model_create(ctx, V, 3, DLK_F64, 1, &m) != DLK_OK) abort();
    dlk_glove_train_params tp;
    if (dlk_glove_train_defaults(ctx, &tp) != DLK_OK) abort();
    tp.threads = 1;
    dlk_glove_epoch_result res;
    fz_check_status(dlk_glove_train_epoch(ctx, &tp, &m, r, &res));
    dlk_glove_model_free(ctx, &m);
    if (dlk_glove_records_free(ctx, r) != DLK_OK) abort();
  }
  dlk_glove_record *recs = NULL;
  int64_t n = 0;
  dlk_status s = dlk_glove_records_read(ctx, path, &recs, &n);
  fz_check_status(s);
  if (s == DLK_OK && (int64_t)size != n * 16) abort();
  free(recs);
  unlink(path);
  return 0;
}
