/* ossl_int.h - what the OpenSSL-facing files of common/ (tls_*.c, jwt.c) share. Not public. */
#ifndef CM_OSSL_INT_H
#define CM_OSSL_INT_H

#include <stddef.h>

/* Write a one-line reason into err (errlen bytes; err may be NULL), followed by OpenSSL's oldest
 * queued error when there is one, and empty the queue so that it cannot be taken later for the
 * error of another operation. */
void cm_ossl__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A pem_password_cb that refuses: an encrypted key would otherwise make OpenSSL prompt on the
 * daemon's terminal. */
int cm_ossl__no_passphrase(char *buf, int size, int rwflag, void *u);

#endif
