/* cm/err.h - how the suite says that something failed, and why.
 *
 * A function that can fail returns an int: 0, or a negative errno (-EINVAL, -ENOMEM, ...). The
 * codes of libraries (libuv's are negative errnos already; nghttp2, CURLcode, expat, libre) are
 * converted where they enter. "Would block" and "need more bytes" are not failures.
 *
 * A function that can also say why takes two last parameters, `char *err, size_t errlen`. On
 * failure it writes one line there: what failed and where (a file, a key, a peer), without a
 * trailing period or newline, cut to errlen - 1 bytes at most. err may be NULL (the caller does
 * not want the text). On success err is left as it was. cm_errf() writes such a line and returns
 * the code, so that a failure is one statement:
 *
 *     if (!key)
 *             return cm_errf(err, errlen, -EINVAL, "%s: not a PEM private key", path);
 *
 * Callers size the buffer for whole lines: CM_ERR_MAX is enough for every message the suite
 * writes. An object whose failure is only known later (a TLS session, a stream) keeps the text of
 * its first failure and gives it through an accessor (cm_tls_conn_error()); that is state, not
 * a second way of returning errors.
 */
#ifndef CM_ERR_H
#define CM_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define CM_ERR_MAX 512

/* Write a one-line reason into err (errlen bytes; err may be NULL) and return code. */
int cm_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cm_verrf(char *err, size_t errlen, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
