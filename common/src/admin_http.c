/* admin_http.c - the admin server's HTTP/1.x request parser and response writer (the adapter to
 * http-parser: the only file that includes it). */
#include "admin_int.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

struct cm_admin_http {
	http_parser hp;
	struct cm_buf url;    /* the request target as sent */
	struct cm_buf target; /* "path\0query\0", what req.path and req.query point into */
	struct cm_buf body;
	struct cm_admin_request req;
	size_t head_len; /* head bytes consumed so far */
	int in_body;     /* the head is complete */
	int complete;    /* a whole request is waiting for cm_admin__http_next() */
	int keep_alive;
	int err; /* what a callback failed with */
};

static int fail(struct cm_admin_http *p, int err)
{
	p->err = err;
	return -1; /* any nonzero return makes http-parser stop with HPE_CB_* */
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct cm_admin_http *p = hp->data;
	int err = cm_buf_append(&p->url, at, len);

	/* the head limit is enforced by the caller; the buffer's cap only backs it up */
	return err ? fail(p, err == -ENOBUFS ? -EMSGSIZE : err) : 0;
}

/* Split the target into path and query. The origin form ("/x?y") is what clients send; the
 * absolute form ("http://h/x?y") is accepted as RFC 9112 asks of servers. */
static int split_target(struct cm_admin_http *p)
{
	struct http_parser_url u;
	const char *path = "/", *query = "";
	size_t plen = 1, qlen = 0;
	int err;

	http_parser_url_init(&u);
	if (p->url.len == 0 ||
	    http_parser_parse_url(p->url.data, p->url.len, p->hp.method == HTTP_CONNECT, &u) != 0)
		return -EBADMSG;
	if (u.field_set & (1 << UF_PATH)) {
		path = p->url.data + u.field_data[UF_PATH].off;
		plen = u.field_data[UF_PATH].len;
	}
	if (u.field_set & (1 << UF_QUERY)) {
		query = p->url.data + u.field_data[UF_QUERY].off;
		qlen = u.field_data[UF_QUERY].len;
	}
	/* NULs would make the C strings lie about the target */
	if (memchr(path, '\0', plen) || memchr(query, '\0', qlen))
		return -EBADMSG;
	err = cm_buf_append(&p->target, path, plen);
	err = err ? err : cm_buf_append(&p->target, "", 1);
	err = err ? err : cm_buf_append(&p->target, query, qlen);
	if (err)
		return err;
	p->req.path = p->target.data;
	p->req.query = p->target.data + plen + 1;
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct cm_admin_http *p = hp->data;
	int err;

	if (hp->http_major != 1)
		return fail(p, -EPROTONOSUPPORT); /* HTTP/0.9 lines, or a 2.0 preface */
	err = split_target(p);
	if (err)
		return fail(p, err);
	/* Refuse a declared oversize body before reading any of it. */
	if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > CM_ADMIN_BODY_MAX)
		return fail(p, -EFBIG);
	/* Stop here so the caller can measure the head exactly. */
	http_parser_pause(hp, 1);
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct cm_admin_http *p = hp->data;
	int err = cm_buf_append(&p->body, at, len);

	return err ? fail(p, err == -ENOBUFS ? -EFBIG : err) : 0;
}

static int on_message_complete(http_parser *hp)
{
	struct cm_admin_http *p = hp->data;

	/* After an upgrade or CONNECT the bytes that follow are not HTTP: answer, then close. */
	p->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
	p->req.method = http_method_str((enum http_method)hp->method);
	p->req.body = p->body.data ? p->body.data : "";
	p->req.body_len = p->body.len;
	p->complete = 1;
	/* One request at a time: the rest of the input waits until this one is answered. */
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int cm_admin__http_alloc(struct cm_admin_http **out)
{
	struct cm_admin_http *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	cm_buf_init(&p->url, CM_ADMIN_HEAD_MAX);
	cm_buf_init(&p->target, 0);
	cm_buf_init(&p->body, CM_ADMIN_BODY_MAX);
	*out = p;
	return 0;
}

void cm_admin__http_free(struct cm_admin_http *p)
{
	if (!p)
		return;
	cm_buf_free(&p->url);
	cm_buf_free(&p->target);
	cm_buf_free(&p->body);
	free(p);
}

void cm_admin__http_next(struct cm_admin_http *p)
{
	cm_buf_reset(&p->url);
	cm_buf_reset(&p->target);
	cm_buf_reset(&p->body);
	memset(&p->req, 0, sizeof(p->req));
	p->head_len = 0;
	p->in_body = 0;
	p->complete = 0;
	p->keep_alive = 0;
	if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED)
		http_parser_pause(&p->hp, 0);
}

static int parse_error(struct cm_admin_http *p)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);

	if (p->err)
		return p->err;
	if (e == HPE_HEADER_OVERFLOW)
		return -EMSGSIZE;
	return -EBADMSG;
}

int cm_admin__http_feed(struct cm_admin_http *p, const char *data, size_t len, size_t *used)
{
	size_t off = 0;

	*used = 0;
	if (p->complete)
		return -EINVAL;
	if (p->err ||
	    (HTTP_PARSER_ERRNO(&p->hp) != HPE_OK && HTTP_PARSER_ERRNO(&p->hp) != HPE_PAUSED))
		return parse_error(p); /* errors are final */
	while (off < len) {
		size_t chunk = len - off, n;
		enum http_errno e;

		/* While in the head, never hand the parser more than one byte past the limit, so an
		 * endless header line is refused after 8 KiB, not after a whole read. */
		if (!p->in_body && chunk > CM_ADMIN_HEAD_MAX + 1 - p->head_len)
			chunk = CM_ADMIN_HEAD_MAX + 1 - p->head_len;
		n = http_parser_execute(&p->hp, &settings, data + off, chunk);
		e = HTTP_PARSER_ERRNO(&p->hp);
		if (e != HPE_OK && e != HPE_PAUSED)
			return parse_error(p);
		if (!p->in_body) {
			if (e == HPE_PAUSED && !p->complete) {
				/* Paused in on_headers_complete on the final LF, which http-parser
				 * consumes only when resumed: count it now. */
				p->head_len += n + 1;
				p->in_body = 1;
			} else {
				p->head_len += n;
			}
			if (p->head_len > CM_ADMIN_HEAD_MAX)
				return -EMSGSIZE;
		}
		off += n;
		if (p->complete) {
			*used = off;
			return CM_ADMIN_HTTP_DONE;
		}
		if (e == HPE_PAUSED)
			http_parser_pause(&p->hp, 0);
		else if (n == 0)
			return -EBADMSG; /* no progress and no reason: never spin */
	}
	*used = off;
	return CM_ADMIN_HTTP_MORE;
}

const struct cm_admin_request *cm_admin__http_request(const struct cm_admin_http *p)
{
	return p->complete ? &p->req : NULL;
}

int cm_admin__http_keep_alive(const struct cm_admin_http *p)
{
	return p->keep_alive;
}

int cm_admin__http_is_10(const struct cm_admin_http *p)
{
	return p->hp.http_major == 1 && p->hp.http_minor == 0;
}

const char *cm_admin__http_path(const struct cm_admin_http *p)
{
	return p->req.path;
}

int cm_admin__http_error_status(int err)
{
	switch (err) {
	case -EMSGSIZE:
		return 431;
	case -EFBIG:
		return 413;
	case -EPROTONOSUPPORT:
		return 505;
	case -ENOMEM:
		return 500;
	default:
		return 400;
	}
}

static const char *reason(int status)
{
	const char *s;

	switch (status) {
	case 413:
		return "Content Too Large"; /* RFC 9110's name; http-parser has the older one */
	case 431:
		return "Request Header Fields Too Large";
	default:
		s = http_status_str((enum http_status)status);
		return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
	}
}

int cm_admin__http_format(struct cm_buf *out, const struct cm_admin_reply *r, const char *body,
                          size_t body_len)
{
	size_t start = out->len;
	/* 204 and 304 have no body and must not announce one */
	int bodiless = r->status == 204 || r->status == 304;
	int err;

	err = cm_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", r->status,
	                    reason(r->status), r->content_type);
	if (!err && !bodiless)
		err = cm_buf_printf(out, "Content-Length: %zu\r\n", body_len);
	if (!err && r->allow)
		err = cm_buf_printf(out, "Allow: %s\r\n", r->allow);
	if (!err && (r->close || r->keep_alive_10))
		err = cm_buf_printf(out, "Connection: %s\r\n", r->close ? "close" : "keep-alive");
	err = err ? err : cm_buf_puts(out, "Cache-Control: no-store\r\n\r\n");
	if (!err && !r->head && !bodiless && body_len)
		err = cm_buf_append(out, body, body_len);
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}
