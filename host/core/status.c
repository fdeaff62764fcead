/* Status codes and messages, generated from DLK_STATUS_TABLE in dlk.h; error recording. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *dlk_status_string(dlk_status s) {
  switch (s) {
#define DLK_X_NAME(name, value, msg) \
  case name:                         \
    return #name;
    DLK_STATUS_TABLE(DLK_X_NAME)
#undef DLK_X_NAME
    default:
      return "DLK_UNKNOWN_STATUS";
  }
}

const char *dlk_status_message(dlk_status s) {
  switch (s) {
#define DLK_X_MSG(name, value, msg) \
  case name:                        \
    return msg;
    DLK_STATUS_TABLE(DLK_X_MSG)
#undef DLK_X_MSG
    default:
      return "unknown status";
  }
}

#define DLK_STR2(x) #x
#define DLK_STR(x) DLK_STR2(x)
const char *dlk_version(void) {
  return DLK_STR(DLK_VERSION_MAJOR) "." DLK_STR(DLK_VERSION_MINOR) "." DLK_STR(DLK_VERSION_PATCH);
}

/* The message of a dlk_context_create that failed on this thread (no context to hold it). */
static _Thread_local char create_error[DLK_ERRMSG_LEN];

void dlk_set_create_error(const char *msg) {
  snprintf(create_error, sizeof create_error, "%s", msg);
}

dlk_status dlk_vfail(dlk_context *ctx, dlk_status s, const char *fmt, va_list ap) {
  char *buf = ctx ? ctx->err : create_error;
  vsnprintf(buf, DLK_ERRMSG_LEN, fmt, ap);
  return s;
}

dlk_status dlk_fail(dlk_context *ctx, dlk_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dlk_vfail(ctx, s, fmt, ap);
  va_end(ap);
  return s;
}

void dlk_appendf(char *buf, size_t n, const char *fmt, ...) {
  size_t len = strlen(buf);
  if (len + 1 >= n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, n - len, fmt, ap);
  va_end(ap);
}

const char *dlk_context_last_error(const dlk_context *ctx) {
  return ctx ? ctx->err : create_error;
}

dlk_status dlk_context_clear_error(dlk_context *ctx) {
  if (!ctx) return DLK_ERR_NULL_POINTER;
  ctx->err[0] = '\0';
  return DLK_OK;
}
