/* last_error.h: per-thread last-error messages, one buffer per module.
 * hs_set_error formats a message into the calling thread's buffer for that module and returns the
 * code, so a fallible function can `return hs_set_error(&err, HS_EINVAL, "...", ...)`. */
#ifndef HS_CORE_LAST_ERROR_H
#define HS_CORE_LAST_ERROR_H

#include <stdarg.h>
#include <stdio.h>

#define HS_ERRMSG_SIZE 512

typedef struct hs_errbuf {
  char msg[HS_ERRMSG_SIZE];
} hs_errbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int hs_set_error(hs_errbuf *buf, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf->msg, sizeof buf->msg, fmt, ap);
  va_end(ap);
  return code;
}

#endif
