/* http2.c - HTTP/2 server sessions (the adapter to nghttp2: the only file of common/ that
 * includes it). Bytes in, requests out as READY entries of the connection's list; responses in,
 * frames out. nghttp2 handles the preface, SETTINGS, flow control, PING and HPACK. */
#include "http_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

struct cm_http_h2 {
	nghttp2_session *s;     /* owned */
	struct cm_http_conn *c; /* borrowed: owns this session */
	size_t head_max;
	unsigned opened; /* streams opened by the input being processed */
	/* resets of streams still open (CVE-2023-44487): a token bucket */
	double reset_tokens;
	uint64_t reset_at_ms; /* when the bucket was last filled */
};

/* Resets a client may send for streams the server has not finished: RESET_BURST at once, then
 * RESET_RATE a second (nghttp2's own defaults, which it applies to every RST_STREAM: also to
 * those of streams answered already, which libcurl sends after each answer and which cost
 * nothing here, so nghttp2's limiter is lifted and this one counts only the others). */
#define RESET_BURST 1000.0
#define RESET_RATE  33.0

/* nghttp2's codes become errnos here, where they enter. */
static int h2_errno(ssize_t rv)
{
	return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
}

static struct cm_http_req *stream_req(nghttp2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	struct cm_http_h2 *h = ud;
	struct cm_http_req *req;

	if (h->c->state == CM_HTTP_CONN_CLOSING)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	h->opened++;
	if (cm_http__req_alloc(&req, h->c, 20) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	req->stream_id = frame->hd.stream_id;
	if (nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, req) != 0) {
		cm_http__req_free(req);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	cm_http__conn_link(h->c, req);
	return 0;
}

/* The connection's unfinished requests hold too much: refuse req's stream (the client may retry
 * it: nothing was done with it), and ignore what still comes for it. */
static void refuse(struct cm_http_h2 *h, struct cm_http_req *req)
{
	if (req->refused)
		return;
	req->refused = 1;
	cm_http__conn_stream_refused(h->c);
	if (nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, req->stream_id,
	                              NGHTTP2_REFUSED_STREAM) != 0)
		h->c->h2_failed = 1; /* out of memory: the connection goes */
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct cm_http_h2 *h = ud;
	struct cm_http_req *req = stream_req(s, frame->hd.stream_id);
	const char *n = (const char *)name, *v = (const char *)value;
	int err = 0;

	(void)flags;
	/* the connection closed from a callback into user code: stop, the session is dropped */
	if (h->c->state == CM_HTTP_CONN_CLOSING)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (!req || frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST || req->err_status || req->refused)
		return 0; /* trailers, or a request already refused: ignored */
	/* RFC 7541's entry size: what an HPACK table would charge */
	req->head_bytes += namelen + valuelen + 32;
	if (req->head_bytes > h->head_max) {
		req->err_status = 431;
		return 0;
	}
	if (cm_http__conn_hold(h->c, req, namelen + valuelen + 32) != 0) {
		refuse(h, req);
		return 0;
	}
	if (namelen == 7 && memcmp(n, ":method", 7) == 0) {
		if (valuelen == 0 || valuelen > CM_HTTP_METHOD_MAX || memchr(v, '\0', valuelen)) {
			req->err_status = 400;
			return 0;
		}
		memcpy(req->method, v, valuelen);
		req->method[valuelen] = '\0';
		req->head = valuelen == 4 && memcmp(v, "HEAD", 4) == 0;
	} else if (namelen == 5 && memcmp(n, ":path", 5) == 0) {
		const char *q = memchr(v, '?', valuelen);
		size_t plen = q ? (size_t)(q - v) : valuelen;
		const char *hash;

		/* a fragment has no business in a request; drop it as HTTP/1 parsing does */
		hash = memchr(v, '#', valuelen);
		if (hash && (!q || hash < q))
			plen = (size_t)(hash - v);
		if (plen == 0 || v[0] != '/') {
			req->err_status = 400;
			return 0;
		}
		if (q && (!hash || hash > q)) {
			size_t qlen = (size_t)((hash ? hash : v + valuelen) - q - 1);

			err = cm_http__req_set_target(req, v, plen, q + 1, qlen);
		} else {
			err = cm_http__req_set_target(req, v, plen, "", 0);
		}
	} else if (namelen == 10 && memcmp(n, ":authority", 10) == 0) {
		err = cm_http__req_add_header(req, "host", 4, v, valuelen);
	} else if (namelen > 0 && n[0] == ':') {
		return 0; /* :scheme; nghttp2 rejects unknown pseudo-headers itself */
	} else {
		err = cm_http__req_add_header(req, n, namelen, v, valuelen);
	}
	if (err == -EBADMSG) {
		req->err_status = 400;
		return 0;
	}
	return err ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
	struct cm_http_h2 *h = ud;
	struct cm_http_req *req = stream_req(s, id);

	(void)flags;
	if (h->c->state == CM_HTTP_CONN_CLOSING)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (!req || req->state != CM_HTTP_REQ_RECEIVING || req->err_status || req->refused)
		return 0; /* answered early or refused: the rest of the body is dropped */
	if (req->body.len + len > req->body_max) {
		/* answer now; the stream is reset (NO_ERROR) once the answer is out */
		req->err_status = 413;
		req->state = CM_HTTP_REQ_READY;
		return 0;
	}
	if (cm_http__conn_hold(h->c, req, len) != 0) {
		refuse(h, req);
		return 0;
	}
	if (cm_buf_append(&req->body, data, len) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One more reset of an open stream: whether the bucket had a token for it. */
static bool reset_allowed(struct cm_http_h2 *h)
{
	uint64_t now = mono_ms();

	h->reset_tokens += (double)(now - h->reset_at_ms) / 1000.0 * RESET_RATE;
	if (h->reset_tokens > RESET_BURST)
		h->reset_tokens = RESET_BURST;
	h->reset_at_ms = now;
	if (h->reset_tokens < 1.0)
		return false;
	h->reset_tokens -= 1.0;
	return true;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	struct cm_http_h2 *h = ud;
	struct cm_http_req *req;
	int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	const char *cl;

	if (h->c->state == CM_HTTP_CONN_CLOSING)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type == NGHTTP2_RST_STREAM) {
		/* a stream closed here already costs nothing: only the others count */
		if (stream_req(s, frame->hd.stream_id) && !reset_allowed(h))
			nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	req = stream_req(s, frame->hd.stream_id);
	if (req && end)
		req->body_done = 1; /* also for a request answered early */
	if (!req || req->state != CM_HTTP_REQ_RECEIVING || req->refused)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (cm_http__req_finish(req) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (!req->err_status && (!req->method[0] || !req->path))
			req->err_status = 400;
		req->body_max = cm_http__body_max(h->c->srv, req->path);
		cl = cm_http_req_header(req, "content-length");
		if (!req->err_status && cl && strtoull(cl, NULL, 10) > req->body_max)
			req->err_status = 413; /* refused before the body is sent */
		if (!req->err_status)
			req->err_status = cm_http__head_check(h->c->srv, req);
		if (req->err_status) {
			req->body_done = end ? 1u : 0u;
			req->state = CM_HTTP_REQ_READY;
			return 0;
		}
	}
	if (end) {
		req->body_done = 1;
		req->state = CM_HTTP_REQ_READY;
	}
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	struct cm_http_req *req;

	(void)ud;
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	req = stream_req(s, frame->hd.stream_id);
	/* answered before the request ended (413, 431): ask the client to stop sending */
	if (req && !req->body_done)
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
		                          NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct cm_http_h2 *h = ud;
	struct cm_http_req *req = stream_req(s, id);

	(void)code;
	if (h->c->state == CM_HTTP_CONN_CLOSING)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (!req)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	cm_http__conn_stream_closed(h->c, req);
	return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
	struct cm_http_req *req = src->ptr;
	size_t left = req->rbody.len - req->roff, n = left < len ? left : len;

	(void)s;
	(void)id;
	(void)ud;
	if (n)
		memcpy(buf, req->rbody.data + req->roff, n);
	req->roff += n;
	if (req->roff == req->rbody.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

int cm_http__h2_alloc(struct cm_http_h2 **out, struct cm_http_conn *c,
                      const struct cm_http_limits *lim)
{
	struct cm_http_h2 *h = calloc(1, sizeof(*h));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[3];
	int r = -ENOMEM;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->c = c;
	h->head_max = lim->max_header_bytes;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	if (nghttp2_option_new(&opt) != 0)
		goto out;
	/* Closed streams are kept only for RFC 7540's priority tree, which we do not use: kept,
	 * each stream a client opens and resets would cost memory until the connection ends
	 * (a few hundred bytes each, up to max_streams of them: 290 KB per connection after 900
	 * rapid resets). */
	nghttp2_option_set_no_closed_streams(opt, 1);
	/* resets are counted in on_frame_recv(), where it is known whether the stream was open */
	nghttp2_option_set_stream_reset_rate_limit(opt, 1ull << 30, 1ull << 30);
	h->reset_tokens = RESET_BURST;
	h->reset_at_ms = mono_ms();
	if (nghttp2_session_server_new2(&h->s, cb, h, opt) != 0)
		goto out;
	iv[0] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams};
	/* advisory: the limit is enforced as headers arrive */
	iv[1] = (nghttp2_settings_entry){
	    NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
	    (uint32_t)(lim->max_header_bytes > UINT32_MAX ? UINT32_MAX : lim->max_header_bytes)};
	/* RFC 9218: no RFC 7540 priorities here, so no idle streams made by PRIORITY frames */
	iv[2] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 3) != 0)
		goto out;
	*out = h;
	h = NULL;
	r = 0;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	cm_http__h2_free(h);
	return r;
}

void cm_http__h2_free(struct cm_http_h2 *h)
{
	if (!h)
		return;
	nghttp2_session_del(h->s);
	free(h);
}

int cm_http__h2_input(struct cm_http_h2 *h, const char *data, size_t len, unsigned *opened)
{
	ssize_t rv;

	h->opened = 0;
	rv = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, len);
	if (opened)
		*opened = h->opened;
	return rv < 0 ? h2_errno(rv) : 0;
}

int cm_http__h2_output(struct cm_http_h2 *h, struct cm_buf *out, size_t high)
{
	while (out->len < high) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(h->s, &d);
		int err;

		if (n < 0)
			return h2_errno(n);
		if (n == 0)
			break;
		err = cm_buf_append(out, d, (size_t)n);
		if (err)
			return err;
	}
	return 0;
}

static nghttp2_nv make_nv(const char *name, const char *value)
{
	return (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
	                    strlen(value), NGHTTP2_NV_FLAG_NONE};
}

int cm_http__h2_submit(struct cm_http_h2 *h, struct cm_http_req *req)
{
	const struct cm_http_server *srv = h->c->srv;
	size_t n = 0, max = req->nrhdrs + srv->nextra + 2;
	int bodiless = req->status == 204 || req->status == 304;
	nghttp2_data_provider dp = {.source.ptr = req, .read_callback = read_body};
	char status[8], length[24];
	const char *p = req->rhdrs.data;
	nghttp2_nv *nv = calloc(max, sizeof(*nv));
	int rv;

	if (!nv)
		return -ENOMEM;
	snprintf(status, sizeof(status), "%d", req->status);
	snprintf(length, sizeof(length), "%zu", req->rlen);
	nv[n++] = make_nv(":status", status);
	if (!bodiless)
		nv[n++] = make_nv("content-length", length);
	for (size_t i = 0; i < req->nrhdrs; i++) {
		const char *v = p + strlen(p) + 1;

		nv[n++] = make_nv(p, v);
		p = v + strlen(v) + 1;
	}
	for (size_t i = 0; i < srv->nextra; i++)
		nv[n++] = make_nv(srv->extra[i].name, srv->extra[i].value);
	/* nghttp2 copies the header block */
	rv = nghttp2_submit_response(h->s, req->stream_id, nv, n,
	                             req->head || bodiless || req->rbody.len == 0 ? NULL : &dp);
	free(nv);
	return rv ? h2_errno(rv) : 0;
}

void cm_http__h2_goaway(struct cm_http_h2 *h)
{
	nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(h->s), NGHTTP2_NO_ERROR, NULL,
	                      0);
}

int cm_http__h2_finished(const struct cm_http_h2 *h)
{
	return !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s);
}
