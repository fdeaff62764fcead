/* Small host utilities shared across families. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

dlk_status dlk_read_file(dlk_context *ctx, const char *op, const char *path, size_t max_bytes,
                         char **out, size_t *len) {
  bool std = strcmp(path, "-") == 0;
  FILE *f = std ? stdin : fopen(path, "rb");
  if (!f) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  bool too_big = false;
  char *buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    if (max_bytes && cap >= max_bytes) {
      too_big = true;
      break;
    }
    char *nb = realloc(buf, cap * 2 + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  bool err = ferror(f) != 0;
  if (!std) fclose(f);
  if (!buf) return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory reading %s", op, path);
  if (err || too_big) {
    free(buf);
    if (too_big)
      return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s is larger than %zu bytes", op, path, max_bytes);
    return dlk_fail(ctx, DLK_ERR_IO, "%s: read error on %s", op, path);
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return DLK_OK;
}
