/* buf.c - growable byte buffer (see cm/buf.h). */
#include "cm/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void cm_buf_init(struct cm_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

void cm_buf_free(struct cm_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void cm_buf_reset(struct cm_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int cm_buf_reserve(struct cm_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	if (b->limit && b->len + extra > b->limit)
		return -ENOBUFS;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = realloc(b->data, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int cm_buf_append(struct cm_buf *b, const void *p, size_t n)
{
	int err;

	/* room already (the usual case for the many small pieces of a serialised stanza) */
	if (n < b->cap - b->len && (!b->limit || b->len + n <= b->limit)) {
		if (n)
			memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	err = cm_buf_reserve(b, n);

	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cm_buf_puts(struct cm_buf *b, const char *s)
{
	return cm_buf_append(b, s, strlen(s));
}

int cm_buf_vprintf(struct cm_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, err;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	err = cm_buf_reserve(b, (size_t)n);
	if (err)
		return err;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int cm_buf_printf(struct cm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = cm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return err;
}

int cm_buf_json_escape(struct cm_buf *b, const char *s, size_t n)
{
	size_t start = b->len;
	char esc[8];
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':
			err = cm_buf_append(b, "\\\"", 2);
			break;
		case '\\':
			err = cm_buf_append(b, "\\\\", 2);
			break;
		case '\n':
			err = cm_buf_append(b, "\\n", 2);
			break;
		case '\r':
			err = cm_buf_append(b, "\\r", 2);
			break;
		case '\t':
			err = cm_buf_append(b, "\\t", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				err = cm_buf_append(b, esc, 6);
			} else {
				err = cm_buf_append(b, &s[i], 1);
			}
		}
	}
	if (err) {
		/* all or nothing, as promised in the header */
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
	}
	return err;
}

char *cm_buf_steal(struct cm_buf *b)
{
	char *p = b->data;

	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
