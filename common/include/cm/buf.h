/* cm/buf.h - growable byte buffer with an optional hard cap.
 *
 * Used wherever text is assembled (metrics exposition, log lines, HTTP responses). The buffer
 * owns its memory; cm_buf_free() releases it. Appends never truncate silently: when the cap
 * (or memory) would be exceeded they fail with -ENOBUFS / -ENOMEM and leave the content as it
 * was before the call.
 */
#ifndef CM_BUF_H
#define CM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cm_buf {
	char *data;   /* owned; always NUL-terminated when non-NULL */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t limit; /* maximum len; 0 = unlimited */
};

/* Initialise an empty buffer. limit 0 means no cap. Never fails (allocation is lazy). */
void cm_buf_init(struct cm_buf *b, size_t limit);

/* Release the memory; the buffer is left empty and may be reused. Accepts NULL. */
void cm_buf_free(struct cm_buf *b);

/* Forget the content but keep the allocation. */
void cm_buf_reset(struct cm_buf *b);

/* Make room for at least extra more bytes. 0, -ENOMEM or -ENOBUFS (over the limit). */
int cm_buf_reserve(struct cm_buf *b, size_t extra);

/* Append raw bytes. 0, -ENOMEM or -ENOBUFS; on failure nothing is appended. */
int cm_buf_append(struct cm_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. */
int cm_buf_puts(struct cm_buf *b, const char *s);

/* Append printf-formatted text. 0, -ENOMEM, -ENOBUFS or -EINVAL (bad format). */
int cm_buf_printf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cm_buf_vprintf(struct cm_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Append s as the inside of a JSON string (quotes not included): escapes ", \ and control
 * characters; bytes >= 0x80 are copied as they are (the caller passes UTF-8). */
int cm_buf_json_escape(struct cm_buf *b, const char *s, size_t n);

/* Hand the content over to the caller (who frees it with free()); the buffer becomes empty.
 * Returns NULL for an empty buffer that never allocated. */
char *cm_buf_steal(struct cm_buf *b);

#endif
