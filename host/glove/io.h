/*
 * glove family, internal: the atomic writer every file format goes through and the
 * savers with an injectable writer (tests simulate a full disk with it), defined in
 * host/glove/io.c with the readers and writers of every format. Used by cooccur.c (its
 * record files) and the tests.
 */
#ifndef DLK_GLOVE_IO_H
#define DLK_GLOVE_IO_H

#include <stdio.h>

#include "../core/internal.h"

/* A write target with an injectable fwrite, so tests can simulate a full disk without
   global state. write_fn NULL means fwrite. */
typedef size_t (*dlk_glove_fwrite_fn)(const void *p, size_t size, size_t n, FILE *f, void *user);
typedef struct dlk_glove_writer {
  dlk_glove_fwrite_fn write_fn;
  void *user;
} dlk_glove_writer;

/* Open path for atomic writing: PATH.tmp (or stdout for "-"). commit flushes, fsyncs and
   renames; abort closes and removes the temporary file. */
typedef struct dlk_glove_out {
  FILE *f;
  bool is_stdout;
  bool failed;
  const dlk_glove_writer *w;
  char path[4096], tmp[4200];
} dlk_glove_out;
dlk_status dlk_glove_out_open(dlk_context *ctx, const char *op, const char *path,
                              const dlk_glove_writer *w, dlk_glove_out *o);
dlk_status dlk_glove_out_write(dlk_context *ctx, const char *op, dlk_glove_out *o,
                               const void *data, size_t bytes);
dlk_status dlk_glove_out_commit(dlk_context *ctx, const char *op, dlk_glove_out *o);
void dlk_glove_out_abort(dlk_glove_out *o);

/* Checkpoint with an injectable writer (tests); the public one passes NULL. */
dlk_status dlk_glove_checkpoint_save_with(dlk_context *ctx, const dlk_glove_model *m,
                                          const dlk_glove_checkpoint_info *info,
                                          const char *path, const dlk_glove_writer *w);
dlk_status dlk_glove_model_save_with(dlk_context *ctx, const dlk_glove_model *m, bool gradsq,
                                     const char *path, const dlk_glove_writer *w);

#endif /* DLK_GLOVE_IO_H */
