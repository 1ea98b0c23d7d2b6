/* http_conn.c - one HTTP connection: TLS and libuv I/O, protocol detection, the HTTP/1 request
 * queue (answered in order), HTTP/2 dispatch, back-pressure, idle and linger timers. */
#include "http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/tls.h"

#define LINGER_MAX_MS   2000 /* how long a closing connection may keep sending to us */
#define ACCEPT_RETRY_MS 100
#define LOG_EVERY_MS    10000 /* one line about refused connections per interval */

struct http_write {
	uv_write_t req;
	struct cm_http_conn *c;
	char *data; /* owned */
	size_t len;
};

/* A connection over max_connections: accepted only to be closed. */
struct http_reject {
	uv_tcp_t tcp;
	struct cm_http_server *srv;
};

static void conn_flush(struct cm_http_conn *c);
static void engine(struct cm_http_conn *c, const char *data, size_t len);
static void feed(struct cm_http_conn *c, const char *data, size_t len);
static void resume(struct cm_http_conn *c);

static size_t unsent(const struct cm_http_conn *c)
{
	return c->write_bytes + c->out.len;
}

/* --- the request list ------------------------------------------------------------------------ */

void cm_http__conn_link(struct cm_http_conn *c, struct cm_http_req *req)
{
	req->c = c;
	req->next = NULL;
	req->prev = c->reqs_tail;
	if (c->reqs_tail)
		c->reqs_tail->next = req;
	else
		c->reqs = req;
	c->reqs_tail = req;
	c->nreqs++;
}

int cm_http__conn_hold(struct cm_http_conn *c, struct cm_http_req *req, size_t n)
{
	if (n > c->srv->lim.max_receiving_bytes - c->receiving)
		return -ENOBUFS;
	c->receiving += n;
	req->held += n;
	return 0;
}

void cm_http__conn_unhold(struct cm_http_conn *c, struct cm_http_req *req)
{
	c->receiving -= req->held;
	req->held = 0;
}

void cm_http__conn_stream_refused(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;
	uint64_t held;

	cm_metrics_inc(srv->m_streams_refused);
	if (c->mem || !cm_log_limit_pass(&srv->log_streams, uv_now(srv->loop), LOG_EVERY_MS, &held))
		return;
	CM_LOGW(srv->mod,
	        "HTTP/2 stream refused: its connection holds %zu bytes of unfinished requests "
	        "(%llu other refusal(s) since the last line)",
	        c->receiving, (unsigned long long)held);
}

void cm_http__conn_unlink(struct cm_http_conn *c, struct cm_http_req *req)
{
	cm_http__conn_unhold(c, req);
	if (req->prev)
		req->prev->next = req->next;
	else
		c->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		c->reqs_tail = req->prev;
	req->prev = req->next = NULL;
	c->nreqs--;
	c->unlinks++;
}

/* The client is gone: a request in a handler's hands is detached and its handler told; the
 * others are ours to free. The cancel callback may answer (which frees), or close anything. */
static void release_req(struct cm_http_conn *c, struct cm_http_req *req)
{
	cm_http__conn_unlink(c, req);
	if (req->state != CM_HTTP_REQ_HANDLER) {
		cm_http__req_free(req);
		return;
	}
	req->c = NULL;
	req->state = CM_HTTP_REQ_DETACHED;
	if (req->cancel)
		req->cancel(req->cancel_arg, req);
}

static void release_all(struct cm_http_conn *c)
{
	while (c->reqs)
		release_req(c, c->reqs);
}

/* --- teardown -------------------------------------------------------------------------------- */

static void conn_free(struct cm_http_conn *c)
{
	cm_http__h1_free(c->h1);
	cm_http__h2_free(c->h2);
	cm_tls_conn_free(c->tls);
	cm_buf_free(&c->pending);
	cm_buf_free(&c->out);
	free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct cm_http_conn *c = h->data;
	struct cm_http_server *srv = c->srv;

	if (--c->handles == 0) {
		conn_free(c);
		cm_http__server_conn_freed(srv);
	}
	cm_http__server_handle_closed(srv);
}

/* Take c off the server's flush queue (or the next turn's). */
static void flush_unqueue(struct cm_http_conn *c)
{
	struct cm_http_conn **p = &c->srv->flushq;

	c->nqueued = 0;
	if (!c->flush_queued)
		return;
	while (*p && *p != c)
		p = &(*p)->flush_next;
	if (!*p) {
		p = &c->srv->laterq;
		while (*p != c)
			p = &(*p)->flush_next;
	}
	*p = c->flush_next;
	c->flush_next = NULL;
	c->flush_queued = 0;
}

void cm_http__conn_close(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;

	if (c->state == CM_HTTP_CONN_CLOSING)
		return;
	c->state = CM_HTTP_CONN_CLOSING;
	flush_unqueue(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	srv->nconns--;
	cm_metrics_gauge_add(srv->m_conns, -1);
	if (c->counted) {
		cm_srclimit_release(srv->per_source, (const struct sockaddr *)&c->peer);
		c->counted = 0;
	}
	if (!c->mem) {
		/* pending writes and the shutdown get their callbacks with UV_ECANCELED first */
		uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	}
	/* last: the cancel callbacks may close more, the server included */
	release_all(c);
}

/* --- transport ------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct cm_http_conn *c = t->data;

	if (c->state == CM_HTTP_CONN_OPEN)
		CM_LOGD(c->srv->mod, "closing an idle connection");
	cm_http__conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct cm_http_conn *c = h->data;

	(void)suggested;
	/* Each read is handled before the callback returns: the server's buffer (http_int.h). */
	*buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(struct cm_http_conn *c)
{
	if (c->reading || c->mem || c->eof)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		cm_http__conn_close(c);
		return;
	}
	c->reading = 1;
}

static void read_stop(struct cm_http_conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

static void on_write(uv_write_t *req, int status);

/* Queue len bytes of data (taken over). 0, or nonzero when the connection was closed. */
static int write_raw(struct cm_http_conn *c, char *data, size_t len)
{
	struct http_write *w = malloc(sizeof(*w));
	uv_buf_t b;
	int r;

	if (!w) {
		free(data);
		cm_http__conn_close(c);
		return -ENOMEM;
	}
	w->c = c;
	w->len = len;
	w->data = data;
	w->req.data = w;
	b = uv_buf_init(w->data, (unsigned)w->len);
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r) {
		free(w->data);
		free(w);
		cm_http__conn_close(c);
		return r;
	}
	c->writes++;
	c->write_bytes += len;
	return 0;
}

/* Hand c->out to the socket, through TLS when there is one. 0, or nonzero when closed. */
static int transport_send(struct cm_http_conn *c)
{
	size_t n;
	char *data;

	if (c->mem || c->state == CM_HTTP_CONN_CLOSING)
		return 0;
	if (!c->tls) {
		if (c->out.len == 0)
			return 0;
		n = c->out.len;
		return write_raw(c, cm_buf_steal(&c->out), n);
	}
	if (c->out.len) {
		int r = cm_tls_conn_write(c->tls, c->out.data, c->out.len);

		cm_buf_reset(&c->out);
		if (r) {
			cm_http__conn_close(c);
			return r;
		}
	}
	n = cm_tls_conn_pending(c->tls);
	if (n == 0)
		return 0;
	data = malloc(n);
	if (!data) {
		cm_http__conn_close(c);
		return -ENOMEM;
	}
	n = cm_tls_conn_take(c->tls, data, n);
	return write_raw(c, data, n);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct cm_http_conn *c = req->data;

	if (c->state == CM_HTTP_CONN_CLOSING)
		return;
	c->shut_done = 1;
	if (status < 0 || c->eof)
		cm_http__conn_close(c);
}

/* Close gracefully after the responses already queued: shut our side down once they are sent,
 * and read (discarding) until the peer closes too. Closing at once could make the kernel answer
 * unread input with a reset, and the client would lose the response it is owed (a 413 sent
 * while it is still uploading, say). The linger timer bounds the wait. Requests still in a
 * handler's hands are detached. */
static void linger(struct cm_http_conn *c)
{
	uint64_t idle = c->srv->lim.idle_timeout_ms;
	uint64_t ms = idle < LINGER_MAX_MS ? idle : LINGER_MAX_MS;

	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	c->state = CM_HTTP_CONN_LINGER;
	c->paused = 0;
	cm_buf_free(&c->pending);
	release_all(c);
	if (c->state == CM_HTTP_CONN_CLOSING || c->mem)
		return;
	if (c->tls) {
		cm_tls_conn_shutdown(c->tls);
		if (transport_send(c) != 0)
			return;
	}
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
		cm_http__conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timer, ms, 0);
	if (!c->eof)
		read_start(c);
}

/* The idle timer runs only while nothing is in flight: a slow handler is not an idle client,
 * and a client that dribbles a request in is timed from the moment the connection went idle. */
static void update_timer(struct cm_http_conn *c)
{
	int busy = c->writes > 0;

	if (c->mem || c->state != CM_HTTP_CONN_OPEN)
		return;
	for (struct cm_http_req *r = c->reqs; r && !busy; r = r->next)
		busy = r->state == CM_HTTP_REQ_HANDLER || r->state == CM_HTTP_REQ_RESPONDED;
	if (busy && !c->busy)
		uv_timer_stop(&c->timer);
	else if (!busy && c->busy)
		uv_timer_start(&c->timer, on_timer, c->srv->lim.idle_timeout_ms, 0);
	c->busy = busy ? 1u : 0u;
}

/* --- output ---------------------------------------------------------------------------------- */

static int any_in_handler(const struct cm_http_conn *c)
{
	for (const struct cm_http_req *r = c->reqs; r; r = r->next)
		if (r->state == CM_HTTP_REQ_HANDLER)
			return 1;
	return 0;
}

/* HTTP/1: send the answered requests at the head of the queue, in order. 1 when the connection
 * must close once they are out. */
static int flush_h1(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;
	struct cm_http_req *partial;

	while (c->reqs && c->reqs->state == CM_HTTP_REQ_RESPONDED) {
		struct cm_http_req *req = c->reqs;
		int close = req->close_after || !req->keep_alive || srv->closing ||
		            (c->draining && !req->next);

		if (cm_http__h1_format(&c->out, req, close, srv->extra, srv->nextra) != 0) {
			cm_http__conn_close(c);
			return 0;
		}
		cm_http__conn_unlink(c, req);
		cm_http__req_free(req);
		if (close)
			return 1;
	}
	/* Expect: 100-continue is answered once the request is next in line */
	partial = c->h1 ? cm_http__h1_partial(c->h1) : NULL;
	if (!c->reqs && c->h1 && cm_http__h1_wants_continue(c->h1)) {
		if (cm_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0) {
			cm_http__conn_close(c);
			return 0;
		}
		partial->expect_continue = 0;
	}
	/* a client that half-closed is answered, then the connection closes */
	return !c->reqs && (c->eof || c->draining);
}

/* Produce what the protocol has to send and hand it to the transport; close when done. Never
 * calls into user code. */
static void conn_flush(struct cm_http_conn *c)
{
	int close = 0;

	if (c->state != CM_HTTP_CONN_OPEN || c->in_flush)
		return;
	c->in_flush = 1;
	if (c->proto == CM_HTTP_PROTO_H1) {
		close = flush_h1(c);
	} else if (c->proto == CM_HTTP_PROTO_H2) {
		int r = cm_http__h2_output(c->h2, &c->out, CM_HTTP_WRITE_HIGH);

		close = r != 0 || cm_http__h2_finished(c->h2);
	} else {
		close = c->eof || c->draining;
	}
	c->in_flush = 0;
	if (c->state == CM_HTTP_CONN_CLOSING || transport_send(c) != 0)
		return;
	if (close)
		linger(c);
	else
		update_timer(c);
}

/* The server's flusher, once per loop turn: send the answers of the queued connections, and go
 * on with the input of those that yielded. Resuming may queue a connection again (it yields
 * again): that one waits for the next turn. */
static void on_flusher(uv_idle_t *p)
{
	struct cm_http_server *srv = p->data;
	struct cm_http_conn *c;

	uv_idle_stop(&srv->flusher);
	srv->in_flusher = 1;
	/* closing a connection takes it off the queue; one queued meanwhile goes on laterq */
	while ((c = srv->flushq) != NULL) {
		srv->flushq = c->flush_next;
		c->flush_next = NULL;
		c->flush_queued = 0;
		c->nqueued = 0;
		if (c->yielded)
			resume(c); /* may have resumed already (a write completed) */
		if (c->state == CM_HTTP_CONN_OPEN)
			conn_flush(c);
	}
	srv->in_flusher = 0;
	srv->flushq = srv->laterq;
	srv->laterq = NULL;
	if (srv->flushq)
		uv_idle_start(&srv->flusher, on_flusher);
}

/* Put c on the flush queue for the loop's next turn. */
static void flush_queue(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;
	struct cm_http_conn **q = srv->in_flusher ? &srv->laterq : &srv->flushq;

	if (c->flush_queued)
		return;
	c->flush_queued = 1;
	c->flush_next = *q;
	*q = c;
	if (!srv->in_flusher && !uv_is_active((uv_handle_t *)&srv->flusher))
		uv_idle_start(&srv->flusher, on_flusher);
}

void cm_http__conn_responded(struct cm_http_conn *c, struct cm_http_req *req)
{
	if (c->state == CM_HTTP_CONN_CLOSING) {
		cm_http__conn_unlink(c, req);
		cm_http__req_free(req);
		return;
	}
	if (c->proto == CM_HTTP_PROTO_H2 && cm_http__h2_submit(c->h2, req) != 0) {
		/* the stream cannot carry it: forget the request; the client sees the stream end */
		CM_LOGD(c->srv->mod, "cannot submit a response on stream %d", (int)req->stream_id);
		cm_http__conn_unlink(c, req);
		cm_http__req_free(req);
		cm_http__conn_close(c);
		return;
	}
	if (c->in_io)
		return; /* after_input() sends it */
	if (c->mem) {
		conn_flush(c);
		return;
	}
	/* a large batch of answers goes out in parts: the first need not wait for the last */
	if (++c->nqueued >= CM_HTTP_FLUSH_BATCH) {
		c->nqueued = 0;
		conn_flush(c); /* c stays queued if it is (it may have yielded input) */
		return;
	}
	flush_queue(c);
}

void cm_http__conn_stream_closed(struct cm_http_conn *c, struct cm_http_req *req)
{
	if (req->state == CM_HTTP_REQ_HANDLER && c->srv->mod)
		CM_LOGD(c->srv->mod, "stream %d reset by the client", (int)req->stream_id);
	release_req(c, req);
}

/* --- input ----------------------------------------------------------------------------------- */

/* Keep input for later and stop reading. */
static void hold(struct cm_http_conn *c, const char *data, size_t len)
{
	if (cm_buf_append(&c->pending, data, len) != 0) {
		cm_http__conn_close(c);
		return;
	}
	c->paused = 1;
	read_stop(c);
}

/* A request the parser refused: answered in turn with the matching error, then the end. */
static void h1_failed(struct cm_http_conn *c, int err)
{
	/* the partial request from the parser: its path gives the metric's label */
	struct cm_http_req *req = cm_http__h1_steal(c->h1);
	int status = cm_http__h1_error_status(err);

	CM_LOGD(c->srv->mod, "bad request: %s", strerror(-err));
	if (!req) {
		if (cm_http__req_alloc(&req, c, 11) != 0) {
			cm_http__conn_close(c);
			return;
		}
	}
	req->err_status = status;
	req->close_after = 1;
	cm_http__conn_link(c, req);
	c->h1_stop = 1;
	cm_http__dispatch(c, req);
}

static void engine_h1(struct cm_http_conn *c, const char *data, size_t len)
{
	unsigned nreq = 0;

	while (len > 0 && c->state == CM_HTTP_CONN_OPEN) {
		struct cm_http_req *req;
		size_t used;
		int r;

		if (c->h1_stop || c->draining)
			return; /* closing after what was read: the rest is dropped */
		if (c->nreqs >= c->srv->lim.max_in_flight || unsent(c) > CM_HTTP_WRITE_HIGH ||
		    nreq >= CM_HTTP_MAX_REQS_PER_WAKE) {
			hold(c, data, len);
			return;
		}
		r = cm_http__h1_feed(c->h1, data, len, &used);
		if (r == CM_HTTP1_MORE)
			return;
		if (r < 0) {
			h1_failed(c, r);
			return;
		}
		data += used;
		len -= used;
		req = cm_http__h1_take(c->h1);
		cm_http__conn_link(c, req);
		nreq++;
		if (!req->keep_alive)
			c->h1_stop = 1;
		cm_http__dispatch(c, req); /* may close the connection: the loop re-checks */
	}
}

/* Dispatch every complete request, oldest first. A handler may answer or drop other requests;
 * the walk goes on after the dispatched one unless a request left the list meanwhile, in
 * which case it starts over (requests already dispatched are no longer READY). */
static unsigned dispatch_ready(struct cm_http_conn *c)
{
	struct cm_http_req *req = c->reqs, *next;
	unsigned unlinks, n = 0;

	while (req && c->state == CM_HTTP_CONN_OPEN) {
		if (req->state != CM_HTTP_REQ_READY) {
			req = req->next;
			continue;
		}
		next = req->next;
		unlinks = c->unlinks;
		cm_http__dispatch(c, req);
		n++;
		req = c->unlinks == unlinks ? next : c->reqs;
	}
	return n;
}

/* HTTP/2 input goes to the session in slices; once the slices have made CM_HTTP_MAX_REQS_PER_WAKE
 * requests, the rest waits for the loop's next turn, so that one client's burst does not hold
 * up the answers other sockets have for the requests already dispatched. Streams opened count
 * as requests even when reset before they become one: a rapid-reset flood costs work too, and
 * must not keep /health waiting behind it. */
static void engine_h2(struct cm_http_conn *c, const char *data, size_t len)
{
	unsigned n = 0, opened, ready;

	while (len > 0 && c->state == CM_HTTP_CONN_OPEN && !c->h2_failed) {
		size_t slice = len < CM_HTTP_H2_SLICE ? len : CM_HTTP_H2_SLICE;

		if (unsent(c) > CM_HTTP_WRITE_HIGH) {
			hold(c, data, len);
			return;
		}
		if (n >= CM_HTTP_MAX_REQS_PER_WAKE && !c->mem) {
			hold(c, data, len);
			if (c->paused) {
				c->yielded = 1;
				flush_queue(c);
			}
			return;
		}
		if (cm_http__h2_input(c->h2, data, slice, &opened) != 0) {
			if (c->state == CM_HTTP_CONN_OPEN) {
				CM_LOGD(c->srv->mod, "HTTP/2 session failed");
				c->h2_failed = 1;
			}
			return;
		}
		data += slice;
		len -= slice;
		ready = dispatch_ready(c);
		n += ready > opened ? ready : opened;
	}
}

static void engine(struct cm_http_conn *c, const char *data, size_t len)
{
	if (c->proto == CM_HTTP_PROTO_H1)
		engine_h1(c, data, len);
	else
		engine_h2(c, data, len);
}

/* Pick the protocol: ALPN when TLS negotiated one, else whether the input starts with the
 * HTTP/2 preface. 1 when decided, 0 when more bytes are needed. */
static int detect(struct cm_http_conn *c)
{
	const char *alpn = c->tls ? cm_tls_conn_alpn(c->tls) : "";
	size_t n =
	    c->pending.len < CM_HTTP_H2_PREFACE_LEN ? c->pending.len : CM_HTTP_H2_PREFACE_LEN;
	int h2;

	if (strcmp(alpn, "h2") == 0)
		h2 = 1;
	else if (strcmp(alpn, "http/1.1") == 0)
		h2 = 0;
	else if (memcmp(c->pending.data, CM_HTTP_H2_PREFACE, n) != 0)
		h2 = 0;
	else if (n < CM_HTTP_H2_PREFACE_LEN)
		return 0;
	else
		h2 = 1;
	if (h2 ? cm_http__h2_alloc(&c->h2, c, &c->srv->lim)
	       : cm_http__h1_alloc(&c->h1, c, &c->srv->lim)) {
		cm_http__conn_close(c);
		return 0;
	}
	c->proto = h2 ? CM_HTTP_PROTO_H2 : CM_HTTP_PROTO_H1;
	return 1;
}

/* Plaintext in. */
static void feed(struct cm_http_conn *c, const char *data, size_t len)
{
	struct cm_buf in;

	if (c->paused) {
		hold(c, data, len); /* behind what is held already */
		return;
	}
	if (c->proto != CM_HTTP_PROTO_DETECT) {
		engine(c, data, len);
		return;
	}
	if (cm_buf_append(&c->pending, data, len) != 0) {
		cm_http__conn_close(c);
		return;
	}
	if (!detect(c))
		return;
	in = c->pending;
	cm_buf_init(&c->pending, 0);
	engine(c, in.data, in.len);
	cm_buf_free(&in);
}

/* Pull plaintext out of the TLS engine until it needs more input or the connection pauses. */
static void tls_pump(struct cm_http_conn *c)
{
	while (c->state == CM_HTTP_CONN_OPEN && !c->paused && !c->h2_failed) {
		ssize_t n = cm_tls_conn_read(c->tls, c->srv->rbuf, sizeof(c->srv->rbuf));

		if (n > 0) {
			feed(c, c->srv->rbuf, (size_t)n);
			continue;
		}
		if (n == -ECONNRESET) {
			c->eof = 1; /* close_notify: the client sends no more */
		} else if (n < 0) {
			CM_LOGD(c->srv->mod, "TLS: %s", cm_tls_conn_error(c->tls));
			/* send the alert, then close */
			if (transport_send(c) == 0)
				linger(c);
		}
		break;
	}
}

/* After input was processed: send, and decide whether to read on. */
static void after_input(struct cm_http_conn *c)
{
	c->in_io = 0;
	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	if (c->eof && c->proto != CM_HTTP_PROTO_H1) {
		cm_http__conn_close(c); /* an HTTP/2 client that closed is gone */
		return;
	}
	if (c->eof && any_in_handler(c)) {
		/* the client closed while we were working for it: as good as gone */
		cm_http__conn_close(c);
		return;
	}
	if (c->h2_failed) {
		conn_flush(c); /* GOAWAY */
		linger(c);
		return;
	}
	conn_flush(c);
	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	if (c->h1_stop || c->draining || c->paused)
		read_stop(c);
	else
		read_start(c);
}

static void resume(struct cm_http_conn *c)
{
	struct cm_buf in;

	if (!c->paused || c->state != CM_HTTP_CONN_OPEN || c->in_io)
		return;
	if (c->nreqs >= c->srv->lim.max_in_flight && c->proto == CM_HTTP_PROTO_H1)
		return;
	if (unsent(c) > CM_HTTP_WRITE_HIGH)
		return;
	c->paused = 0;
	c->yielded = 0;
	c->in_io = 1;
	in = c->pending;
	cm_buf_init(&c->pending, 0);
	engine(c, in.data, in.len);
	cm_buf_free(&in);
	if (c->tls)
		tls_pump(c);
	after_input(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct http_write *w = req->data;
	struct cm_http_conn *c = w->c;

	c->writes--;
	c->write_bytes -= w->len;
	free(w->data);
	free(w);
	if (c->state == CM_HTTP_CONN_CLOSING)
		return;
	if (status < 0) {
		CM_LOGD(c->srv->mod, "write failed: %s", uv_strerror(status));
		cm_http__conn_close(c);
		return;
	}
	if (c->state != CM_HTTP_CONN_OPEN || c->writes > 0)
		return;
	conn_flush(c); /* HTTP/2 frames held back by the high-water mark */
	resume(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct cm_http_conn *c = s->data;

	if (nread == 0 || c->state == CM_HTTP_CONN_CLOSING)
		return;
	if (nread < 0 && nread != UV_EOF) {
		CM_LOGD(c->srv->mod, "read failed: %s", uv_strerror((int)nread));
		cm_http__conn_close(c);
		return;
	}
	if (nread < 0) {
		c->eof = 1;
		read_stop(c);
		if (c->state == CM_HTTP_CONN_LINGER) {
			if (c->shut_done)
				cm_http__conn_close(c);
			return;
		}
		c->in_io = 1;
		after_input(c);
		return;
	}
	if (c->state == CM_HTTP_CONN_LINGER)
		return; /* the peer is still sending; we no longer care */
	c->in_io = 1;
	if (c->tls) {
		if (cm_tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
			cm_http__conn_close(c);
			return;
		}
		tls_pump(c);
	} else {
		feed(c, buf->base, (size_t)nread);
	}
	after_input(c);
}

/* --- graceful stop --------------------------------------------------------------------------- */

void cm_http__conn_drain(struct cm_http_conn *c)
{
	if (c->state != CM_HTTP_CONN_OPEN || c->draining)
		return;
	c->draining = 1;
	cm_buf_free(&c->pending);
	c->paused = 0;
	if (c->proto == CM_HTTP_PROTO_H2)
		cm_http__h2_goaway(c->h2);
	if (!c->in_io) {
		read_stop(c);
		conn_flush(c);
	}
}

/* --- accepting ------------------------------------------------------------------------------- */

static void on_reject_closed(uv_handle_t *h)
{
	struct http_reject *rj = h->data;
	struct cm_http_server *srv = rj->srv;

	free(rj);
	cm_http__server_handle_closed(srv);
}

static void on_accept_retry(uv_timer_t *t)
{
	cm_http__conn_accept(t->data);
}

/* libuv stops watching the listener until the pending connection is accepted, so an accept that
 * cannot allocate must be retried later or the server would go deaf. */
static void accept_later(struct cm_http_server *srv)
{
	if (uv_is_active((uv_handle_t *)&srv->accept_retry))
		return;
	CM_LOGW(srv->mod, "out of memory accepting a connection; retrying");
	uv_timer_start(&srv->accept_retry, on_accept_retry, ACCEPT_RETRY_MS, 0);
}

/* Say that a connection from peer (NULL: unknown) was refused, at most once per LOG_EVERY_MS. */
static void log_refused(struct cm_http_server *srv, const struct sockaddr *peer, const char *why,
                        unsigned limit)
{
	uint64_t held;
	char src[64] = "?";

	if (!cm_log_limit_pass(&srv->log_refused, uv_now(srv->loop), LOG_EVERY_MS, &held))
		return;
	if (peer)
		cm_srclimit_format(peer, src, sizeof(src));
	CM_LOGW(srv->mod,
	        "connection from %s refused: %s (%u) reached (%llu other refusal(s) since the last "
	        "line)",
	        src, why, limit, (unsigned long long)held);
}

static void reject(struct cm_http_server *srv)
{
	struct http_reject *rj = malloc(sizeof(*rj));
	struct sockaddr_storage peer;
	int len = sizeof(peer);

	if (!rj) {
		accept_later(srv);
		return;
	}
	rj->srv = srv;
	uv_tcp_init(srv->loop, &rj->tcp);
	rj->tcp.data = rj;
	srv->handles++;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&rj->tcp) == 0) {
		cm_metrics_inc(srv->m_rejected);
		log_refused(srv,
		            uv_tcp_getpeername(&rj->tcp, (struct sockaddr *)&peer, &len) == 0
		                ? (const struct sockaddr *)&peer
		                : NULL,
		            "max_connections", srv->lim.max_connections);
	}
	uv_close((uv_handle_t *)&rj->tcp, on_reject_closed);
}

/* Count c under its source address; a source over its limit is refused with a reset (the
 * connection closes at once). 0 when c may stay. */
static int count_source(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int len = sizeof(c->peer), r;
	uv_os_fd_t fd;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0)
		return -ENOTCONN; /* gone already */
	r = cm_srclimit_take(srv->per_source, (const struct sockaddr *)&c->peer);
	if (r == 0) {
		c->counted = 1;
		return 0;
	}
	if (r == -EDQUOT) {
		cm_metrics_inc(srv->m_rejected_source);
		log_refused(srv, (const struct sockaddr *)&c->peer, "connections_per_source",
		            srv->lim.max_connections_per_source);
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	return r;
}

/* Allocate a connection and link it into the server. */
static int conn_new(struct cm_http_conn **out, struct cm_http_server *srv, int mem)
{
	struct cm_http_conn *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (!mem && srv->tls && cm_tls_conn_alloc(&c->tls, srv->tls, NULL) != 0) {
		free(c);
		return -ENOMEM;
	}
	c->srv = srv;
	c->mem = mem;
	cm_buf_init(&c->pending, 0);
	cm_buf_init(&c->out, 0);
	/* linked first, so that cm_http__conn_close() has a consistent list to unlink from */
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	cm_metrics_gauge_add(srv->m_conns, 1);
	*out = c;
	return 0;
}

void cm_http__conn_accept(struct cm_http_server *srv)
{
	struct cm_http_conn *c;

	if (srv->stopping)
		return;
	if (srv->nconns >= srv->lim.max_connections) {
		reject(srv);
		return;
	}
	if (conn_new(&c, srv, 0) != 0) {
		accept_later(srv);
		return;
	}
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	srv->handles += 2;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
		cm_http__conn_close(c); /* a retry with nothing waiting */
		return;
	}
	if (count_source(c) != 0) {
		cm_http__conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, on_timer, srv->lim.idle_timeout_ms, 0);
	read_start(c);
}

/* --- in-memory connections ------------------------------------------------------------------- */

int cm_http__conn_mem_alloc(struct cm_http_conn **out, struct cm_http_server *srv)
{
	if (srv->stopping) {
		*out = NULL;
		return -EINVAL;
	}
	return conn_new(out, srv, 1);
}

int cm_http__conn_mem_input(struct cm_http_conn *c, const char *data, size_t len)
{
	if (c->state != CM_HTTP_CONN_OPEN)
		return -ECONNRESET;
	c->in_io = 1;
	if (c->paused)
		hold(c, data, len);
	else
		feed(c, data, len);
	after_input(c);
	return c->state == CM_HTTP_CONN_OPEN ? 0 : -ECONNRESET;
}

int cm_http__conn_mem_resume(struct cm_http_conn *c)
{
	if (c->state == CM_HTTP_CONN_OPEN) {
		conn_flush(c);
		resume(c);
	}
	return c->state == CM_HTTP_CONN_OPEN ? 0 : -ECONNRESET;
}

void cm_http__conn_mem_free(struct cm_http_conn *c)
{
	if (!c)
		return;
	cm_http__conn_close(c);
	conn_free(c);
}
