/* http1.c - HTTP/1.x: the request parser and the response writer (the adapter to http-parser:
 * the only file that includes it). */
#include "http_int.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cm_http_h1 {
	http_parser hp;
	struct cm_http_conn *c; /* borrowed: given to the requests made */
	size_t head_max, body_max;
	struct cm_http_req *req; /* owned: the request being received */
	struct cm_buf url;       /* the request target as sent */
	struct cm_buf field;     /* the header name being received */
	struct cm_buf value;     /* its value */
	int in_value;            /* the last header callback was for a value */
	size_t head_len;         /* head bytes consumed so far */
	int in_body;             /* the head is complete (as counted by feed) */
	int head_done;           /* on_headers_complete ran: later header fields are trailers */
	int body_started;        /* some of the body arrived */
	int complete;            /* a whole request is waiting for cm_http__h1_take() */
	int err;                 /* what a callback failed with */
};

static int fail(struct cm_http_h1 *p, int err)
{
	p->err = err;
	return -1; /* any nonzero return makes http-parser stop with HPE_CB_* */
}

static int on_message_begin(http_parser *hp)
{
	struct cm_http_h1 *p = hp->data;
	int err;

	if (p->req)
		return 0;
	err = cm_http__req_alloc(&p->req, p->c, 11);
	if (err)
		return fail(p, err);
	p->req->body.limit = p->body_max; /* a chunked body is cut off at the limit */
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct cm_http_h1 *p = hp->data;
	int err = cm_buf_append(&p->url, at, len);

	/* the head limit is enforced by the caller; the buffer's cap only backs it up */
	return err ? fail(p, err == -ENOBUFS ? -EMSGSIZE : err) : 0;
}

/* A header is complete once the next name (or the end of the head) starts. */
static int flush_header(struct cm_http_h1 *p)
{
	int err;

	if (!p->in_value)
		return 0;
	err = cm_http__req_add_header(p->req, p->field.data ? p->field.data : "", p->field.len,
	                              p->value.data ? p->value.data : "", p->value.len);
	cm_buf_reset(&p->field);
	cm_buf_reset(&p->value);
	p->in_value = 0;
	return err;
}

static int split_target(struct cm_http_h1 *p);

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct cm_http_h1 *p = hp->data;
	int err;

	if (p->head_done)
		return 0; /* a chunked body's trailer: dropped (the head's array points into hbuf)
		           */
	/* the target is complete: knowing the path early labels a 431 with its route */
	err = p->req->path ? 0 : split_target(p);
	if (err == -EBADMSG)
		err = 0; /* a bad target fails in on_headers_complete */
	err = err ? err : flush_header(p);

	err = err ? err : cm_buf_append(&p->field, at, len);
	return err ? fail(p, err == -ENOBUFS ? -EMSGSIZE : err) : 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct cm_http_h1 *p = hp->data;
	int err;

	if (p->head_done)
		return 0;
	err = cm_buf_append(&p->value, at, len);
	p->in_value = 1;
	return err ? fail(p, err == -ENOBUFS ? -EMSGSIZE : err) : 0;
}

/* Split the target into path and query. The origin form ("/x?y") is what clients send; the
 * absolute form ("http://h/x?y") is accepted as RFC 9112 asks of servers. */
static int split_target(struct cm_http_h1 *p)
{
	struct http_parser_url u;
	const char *path = "/", *query = "";
	size_t plen = 1, qlen = 0;

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
	return cm_http__req_set_target(p->req, path, plen, query, qlen);
}

static int on_headers_complete(http_parser *hp)
{
	struct cm_http_h1 *p = hp->data;
	struct cm_http_req *req = p->req;
	const char *expect;
	int err;

	if (hp->http_major != 1)
		return fail(p, -EPROTONOSUPPORT); /* HTTP/0.9 lines, or a 2.0 preface */
	err = p->req->path ? 0 : split_target(p);
	err = err ? err : flush_header(p);
	err = err ? err : cm_http__req_finish(req);
	if (err)
		return fail(p, err);
	p->head_done = 1;
	req->version = hp->http_minor == 0 ? 10 : 11;
	snprintf(req->method, sizeof(req->method), "%s",
	         http_method_str((enum http_method)hp->method));
	req->head = hp->method == HTTP_HEAD;
	expect = cm_http_req_header(req, "expect");
	req->expect_continue =
	    expect && strcasecmp(expect, "100-continue") == 0 && req->version == 11;
	/* The path's limit; a declared oversize body is refused before any of it is read. */
	req->body_max = p->c ? cm_http__body_max(p->c->srv, req->path) : p->body_max;
	req->body.limit = req->body_max; /* a chunked body is cut off at the limit */
	if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > req->body_max)
		return fail(p, -EFBIG);
	/* the server's own verdict on the head, before the body is read (then the connection
	 * closes: the body stays unread) */
	if (p->c && (req->err_status = cm_http__head_check(p->c->srv, req)) != 0)
		return fail(p, -EACCES);
	/* Stop here so the caller can measure the head exactly. */
	http_parser_pause(hp, 1);
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct cm_http_h1 *p = hp->data;
	int err = cm_buf_append(&p->req->body, at, len);

	p->body_started = 1;
	return err ? fail(p, err == -ENOBUFS ? -EFBIG : err) : 0;
}

static int on_message_complete(http_parser *hp)
{
	struct cm_http_h1 *p = hp->data;

	/* After an upgrade or CONNECT the bytes that follow are not HTTP: answer, then close. */
	p->req->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
	p->req->body_done = 1;
	p->complete = 1;
	/* One request at a time: the rest of the input waits until this one is taken. */
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int cm_http__h1_alloc(struct cm_http_h1 **out, struct cm_http_conn *c,
                      const struct cm_http_limits *lim)
{
	struct cm_http_h1 *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	p->c = c;
	p->head_max = lim->max_header_bytes;
	p->body_max = lim->max_body_bytes;
	cm_buf_init(&p->url, p->head_max);
	cm_buf_init(&p->field, p->head_max);
	cm_buf_init(&p->value, p->head_max);
	*out = p;
	return 0;
}

void cm_http__h1_free(struct cm_http_h1 *p)
{
	if (!p)
		return;
	cm_http__req_free(p->req);
	cm_buf_free(&p->url);
	cm_buf_free(&p->field);
	cm_buf_free(&p->value);
	free(p);
}

struct cm_http_req *cm_http__h1_take(struct cm_http_h1 *p)
{
	struct cm_http_req *req;

	if (!p->complete)
		return NULL;
	req = p->req;
	p->req = NULL;
	cm_buf_reset(&p->url);
	cm_buf_reset(&p->field);
	cm_buf_reset(&p->value);
	p->in_value = 0;
	p->head_len = 0;
	p->in_body = 0;
	p->head_done = 0;
	p->body_started = 0;
	p->complete = 0;
	if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED)
		http_parser_pause(&p->hp, 0);
	return req;
}

struct cm_http_req *cm_http__h1_partial(const struct cm_http_h1 *p)
{
	return p->req;
}

struct cm_http_req *cm_http__h1_steal(struct cm_http_h1 *p)
{
	struct cm_http_req *req = p->req;

	p->req = NULL;
	return req;
}

int cm_http__h1_wants_continue(const struct cm_http_h1 *p)
{
	return p->req && p->in_body && !p->complete && !p->body_started && p->req->expect_continue;
}

static int parse_error(struct cm_http_h1 *p)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);

	if (p->err)
		return p->err;
	if (e == HPE_HEADER_OVERFLOW)
		return -EMSGSIZE;
	return -EBADMSG;
}

int cm_http__h1_feed(struct cm_http_h1 *p, const char *data, size_t len, size_t *used)
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
		 * endless header line is refused at the limit, not after a whole read. */
		if (!p->in_body && chunk > p->head_max + 1 - p->head_len)
			chunk = p->head_max + 1 - p->head_len;
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
			if (p->head_len > p->head_max)
				return -EMSGSIZE;
		}
		off += n;
		if (p->complete) {
			*used = off;
			return CM_HTTP1_DONE;
		}
		if (e == HPE_PAUSED)
			http_parser_pause(&p->hp, 0);
		else if (n == 0)
			return -EBADMSG; /* no progress and no reason: never spin */
	}
	*used = off;
	return CM_HTTP1_MORE;
}

int cm_http__h1_error_status(int err)
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

/* "content-type" -> "Content-Type": HTTP/1 clients do not care, but people reading do. */
static int put_name(struct cm_buf *out, const char *name)
{
	size_t start = out->len, n = strlen(name);
	int up = 1, err = cm_buf_append(out, name, n);

	if (err)
		return err;
	for (size_t i = start; i < start + n; i++) {
		char ch = out->data[i];

		if (up && ch >= 'a' && ch <= 'z')
			out->data[i] = (char)(ch - 'a' + 'A');
		up = ch == '-';
	}
	return 0;
}

int cm_http__h1_format(struct cm_buf *out, const struct cm_http_req *req, int close,
                       const struct cm_http_header *extra, size_t nextra)
{
	size_t start = out->len;
	/* 204 and 304 have no body and must not announce one */
	int bodiless = req->status == 204 || req->status == 304;
	const char *p = req->rhdrs.data;
	int err;

	err = cm_buf_printf(out, "HTTP/1.1 %d %s\r\n", req->status, reason(req->status));
	for (size_t i = 0; !err && i < req->nrhdrs; i++) {
		const char *v = p + strlen(p) + 1;

		err = put_name(out, p);
		err = err ? err : cm_buf_printf(out, ": %s\r\n", v);
		if (i == 0 && !err && !bodiless) /* after Content-Type, as the admin server did */
			err = cm_buf_printf(out, "Content-Length: %zu\r\n", req->rlen);
		p = v + strlen(v) + 1;
	}
	if (!err && req->nrhdrs == 0 && !bodiless)
		err = cm_buf_printf(out, "Content-Length: %zu\r\n", req->rlen);
	if (!err && (close || req->version == 10))
		err = cm_buf_printf(out, "Connection: %s\r\n", close ? "close" : "keep-alive");
	for (size_t i = 0; !err && i < nextra; i++) {
		err = put_name(out, extra[i].name);
		err = err ? err : cm_buf_printf(out, ": %s\r\n", extra[i].value);
	}
	err = err ? err : cm_buf_puts(out, "\r\n");
	if (!err && !req->head && !bodiless && req->rbody.len)
		err = cm_buf_append(out, req->rbody.data, req->rbody.len);
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}
