/* ossl.c - OpenSSL error text and the passphrase refusal shared by tls_*.c and jwt.c. */
#include "ossl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

void cm_ossl__errf(char *err, size_t errlen, const char *fmt, ...)
{
	unsigned long e = ERR_peek_error(); /* the oldest: usually the root cause */
	va_list ap;
	size_t n;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		n = strlen(err);
		if (e && n + 1 < errlen) {
			char reason[256];

			ERR_error_string_n(e, reason, sizeof(reason));
			snprintf(err + n, errlen - n, " (%s)", reason);
		}
	}
	ERR_clear_error();
}

int cm_ossl__no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}
