/* Shared by the glove file-reader harnesses: the readers take paths, so each input is
   written to a per-process temporary file first. Built two ways: with libFuzzer (clang
   -fsanitize=fuzzer,address, DLK_FUZZ=ON) and with replay.c, a plain main() that feeds
   every file of a corpus directory once (gcc, every ctest run). */
#ifndef DLK_FUZZ_COMMON_H
#define DLK_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlk.h"

static inline dlk_context *fz_ctx(void) {
  static dlk_context *ctx = NULL;
  if (!ctx) {
    dlk_context_options o;
    memset(&o, 0, sizeof o);
    o.device = (dlk_device){DLK_CPU, 0};
    if (dlk_context_create(&ctx, &o) != DLK_OK) abort();
  }
  return ctx;
}

/* This process's own directory (mkdtemp, removed at exit): inputs never share a path
   with another harness or test running beside this one, even if one of them aborts. */
static char fz_dir_path[256];
static inline void fz_dir_remove(void) {
  char cmd[320];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_path);
  if (fz_dir_path[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fz_dir_path);
}
static inline const char *fz_dir(void) {
  if (!fz_dir_path[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(fz_dir_path, sizeof fz_dir_path, "%s/dlk_fuzz_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(fz_dir_path)) abort();
    atexit(fz_dir_remove);
  }
  return fz_dir_path;
}

/* Path of this process's input file, holding data. */
static inline const char *fz_file(const uint8_t *data, size_t size, const char *suffix) {
  static char path[320];
  snprintf(path, sizeof path, "%s/input%s", fz_dir(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  return path;
}

/* A failed read must leave a message; a status outside the table is a bug. */
static inline void fz_check_status(dlk_status s) {
  if (s < 0 || s >= DLK_STATUS_COUNT) abort();
  if (s != DLK_OK && dlk_context_last_error(fz_ctx())[0] == '\0') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
