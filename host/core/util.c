/* Small host utilities shared across families. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int dlk_read_all(FILE *f, size_t max_bytes, char **out, size_t *len) {
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
  if (!buf) return ENOMEM;
  if (too_big || ferror(f)) {
    free(buf);
    return too_big ? EFBIG : EIO;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

dlk_status dlk_read_file(dlk_context *ctx, const char *op, const char *path, size_t max_bytes,
                         char **out, size_t *len) {
  bool std = strcmp(path, "-") == 0;
  FILE *f = std ? stdin : fopen(path, "rb");
  if (!f) return dlk_fail(ctx, DLK_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
  int e = dlk_read_all(f, max_bytes, out, len);
  if (!std) fclose(f);
  switch (e) {
    case 0: return DLK_OK;
    case ENOMEM: return dlk_fail(ctx, DLK_ERR_OUT_OF_MEMORY, "%s: out of memory reading %s", op, path);
    case EFBIG:
      return dlk_fail(ctx, DLK_ERR_CORRUPT_FILE, "%s: %s is larger than %zu bytes", op, path, max_bytes);
    default: return dlk_fail(ctx, DLK_ERR_IO, "%s: read error on %s", op, path);
  }
}
