/* err.c - cm_errf(): the one way error text is written (cm/err.h). */
#include "cm/err.h"

#include <stdio.h>

int cm_verrf(char *err, size_t errlen, int code, const char *fmt, va_list ap)
{
	if (err && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	return code;
}

int cm_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = cm_verrf(err, errlen, code, fmt, ap);
	va_end(ap);
	return code;
}
