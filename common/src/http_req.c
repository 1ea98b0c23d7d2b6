/* http_req.c - the HTTP request object: what arrived, what the handler answers, and the
 * accessors and respond functions of cm/http.h. */
#include "http_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cm_http__req_alloc(struct cm_http_req **out, struct cm_http_conn *c, int version)
{
	struct cm_http_req *req = calloc(1, sizeof(*req));

	*out = NULL;
	if (!req)
		return -ENOMEM;
	req->c = c;
	req->version = version;
	req->state = CM_HTTP_REQ_RECEIVING;
	req->query = req->rest = "";
	cm_buf_init(&req->target, 0);
	cm_buf_init(&req->hbuf, 0);
	cm_buf_init(&req->body, 0);
	cm_buf_init(&req->rhdrs, 0);
	cm_buf_init(&req->rbody, 0);
	*out = req;
	return 0;
}

void cm_http__req_free(struct cm_http_req *req)
{
	if (!req)
		return;
	cm_buf_free(&req->target);
	cm_buf_free(&req->hbuf);
	cm_buf_free(&req->body);
	cm_buf_free(&req->rhdrs);
	cm_buf_free(&req->rbody);
	free(req->hdrs);
	free(req);
}

int cm_http__req_add_header(struct cm_http_req *req, const char *name, size_t nlen,
                            const char *value, size_t vlen)
{
	size_t start = req->hbuf.len;
	int err;

	if (memchr(name, '\0', nlen) || memchr(value, '\0', vlen))
		return -EBADMSG;
	err = cm_buf_reserve(&req->hbuf, nlen + vlen + 2);
	if (err)
		return err;
	for (size_t i = 0; i < nlen; i++)
		req->hbuf.data[start + i] = (char)tolower((unsigned char)name[i]);
	req->hbuf.data[start + nlen] = '\0';
	memcpy(req->hbuf.data + start + nlen + 1, value, vlen);
	req->hbuf.data[start + nlen + 1 + vlen] = '\0';
	req->hbuf.len = start + nlen + vlen + 2;
	req->hbuf.data[req->hbuf.len] = '\0';
	req->nhdrs++;
	return 0;
}

int cm_http__req_set_target(struct cm_http_req *req, const char *path, size_t plen,
                            const char *query, size_t qlen)
{
	int err;

	/* NULs would make the C strings lie about the target */
	if (plen == 0 || memchr(path, '\0', plen) || memchr(query, '\0', qlen))
		return -EBADMSG;
	cm_buf_reset(&req->target);
	err = cm_buf_append(&req->target, path, plen);
	err = err ? err : cm_buf_append(&req->target, "", 1);
	err = err ? err : cm_buf_append(&req->target, query, qlen);
	if (err)
		return err;
	req->path = req->target.data;
	req->query = req->target.data + plen + 1;
	return 0;
}

int cm_http__req_finish(struct cm_http_req *req)
{
	const char *p = req->hbuf.data;

	free(req->hdrs);
	req->hdrs = NULL;
	if (req->nhdrs == 0)
		return 0;
	req->hdrs = calloc(req->nhdrs, sizeof(*req->hdrs));
	if (!req->hdrs)
		return -ENOMEM;
	for (size_t i = 0; i < req->nhdrs; i++) {
		req->hdrs[i].name = p;
		p += strlen(p) + 1;
		req->hdrs[i].value = p;
		p += strlen(p) + 1;
	}
	return 0;
}

/* Append a response header pair; h2 wants lower-case names, and HTTP/1 does not mind. */
static int add_rhdr(struct cm_http_req *req, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value), start = req->rhdrs.len;
	int err;

	/* CR or LF would let a handler split the response */
	if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n") || nlen == 0)
		return -EINVAL;
	err = cm_buf_reserve(&req->rhdrs, nlen + vlen + 2);
	if (err)
		return err;
	for (size_t i = 0; i < nlen; i++)
		req->rhdrs.data[start + i] = (char)tolower((unsigned char)name[i]);
	req->rhdrs.data[start + nlen] = '\0';
	memcpy(req->rhdrs.data + start + nlen + 1, value, vlen + 1);
	req->rhdrs.len = start + nlen + vlen + 2;
	req->rhdrs.data[req->rhdrs.len] = '\0';
	req->nrhdrs++;
	return 0;
}

int cm_http__req_store(struct cm_http_req *req, int status, const char *content_type,
                       const struct cm_http_header *headers, size_t nheaders, const void *body,
                       size_t len)
{
	int err;

	cm_buf_reset(&req->rhdrs);
	cm_buf_reset(&req->rbody);
	req->nrhdrs = 0;
	req->roff = 0;
	req->status = status;
	req->state = CM_HTTP_REQ_RESPONDED;
	err = add_rhdr(req, "content-type", content_type ? content_type : CM_HTTP_TEXT);
	for (size_t i = 0; !err && i < nheaders; i++)
		err = add_rhdr(req, headers[i].name, headers[i].value);
	req->rlen = len;
	/* a HEAD answer says the length and sends nothing: its body is never kept */
	if (!err && len && !req->head)
		err = cm_buf_append(&req->rbody, body, len);
	if (err) {
		/* keep the status; drop what could not be stored, but say what the body is */
		cm_buf_free(&req->rhdrs);
		cm_buf_free(&req->rbody);
		req->rlen = 0;
		req->nrhdrs = 0;
		if (add_rhdr(req, "content-type", CM_HTTP_TEXT) != 0)
			req->nrhdrs = 0;
	}
	return err;
}

/* --- public accessors ------------------------------------------------------------------------ */

const char *cm_http_req_method(const struct cm_http_req *req)
{
	return req->method;
}

const char *cm_http_req_path(const struct cm_http_req *req)
{
	return req->path ? req->path : "/";
}

const char *cm_http_req_query(const struct cm_http_req *req)
{
	return req->query;
}

const char *cm_http_req_rest(const struct cm_http_req *req)
{
	return req->rest;
}

const char *cm_http_req_header(const struct cm_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nhdrs && req->hdrs; i++)
		if (strcasecmp(req->hdrs[i].name, name) == 0)
			return req->hdrs[i].value;
	return NULL;
}

const struct cm_http_header *cm_http_req_header_at(const struct cm_http_req *req, size_t i)
{
	return req->hdrs && i < req->nhdrs ? &req->hdrs[i] : NULL;
}

const char *cm_http_req_body(const struct cm_http_req *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.data ? req->body.data : "";
}

int cm_http_req_version(const struct cm_http_req *req)
{
	return req->version;
}

int cm_http_req_alive(const struct cm_http_req *req)
{
	return req->c != NULL && req->state == CM_HTTP_REQ_HANDLER;
}

void cm_http_req_set_cancel(struct cm_http_req *req, cm_http_cancel_fn fn, void *arg)
{
	req->cancel = fn;
	req->cancel_arg = arg;
}

int cm_http_respond_headers(struct cm_http_req *req, int status, const char *content_type,
                            const struct cm_http_header *headers, size_t nheaders, const void *body,
                            size_t len)
{
	struct cm_http_conn *c = req->c;
	int err = 0;

	if (req->state != CM_HTTP_REQ_HANDLER || !c) {
		/* the client went away (or a second answer): the request is only released */
		if (req->state == CM_HTTP_REQ_DETACHED || !c) {
			cm_http__req_free(req);
			return -ECONNRESET;
		}
		return -EINVAL;
	}
	if (status < 200 || status > 599) {
		err = -EINVAL;
		if (cm_http__answer_error(c->srv, req, 500) != 0)
			err = -ENOMEM;
	} else {
		err = cm_http__req_store(req, status, content_type, headers, nheaders, body, len);
		if (err) {
			/* a bare 500 tells the truth; its text needs no more memory than we have */
			cm_http__req_store(req, 500, NULL, NULL, 0, NULL, 0);
		}
	}
	cm_http__count(c->srv, req->route, req->status);
	req->counted = 1;
	cm_http__conn_responded(c, req);
	return err;
}

int cm_http_respond(struct cm_http_req *req, int status, const char *content_type, const void *body,
                    size_t len)
{
	return cm_http_respond_headers(req, status, content_type, NULL, 0, body, len);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long cm_http_unescape(const char *in, char *out, size_t *bad)
{
	size_t i, o = 0;

	for (i = 0; in[i]; i++) {
		int hi, lo;

		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		hi = hex_digit(in[i + 1]);
		lo = hi >= 0 ? hex_digit(in[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			if (bad)
				*bad = i;
			return -1;
		}
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = '\0';
	return (long)o;
}
