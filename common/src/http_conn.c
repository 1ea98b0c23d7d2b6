/* http_conn.c - one HTTP connection on a cm_stream: protocol detection, the HTTP/1 request
 * queue (answered in order), HTTP/2 dispatch, back-pressure and the idle timer. The stream does
 * the I/O, TLS, lingering on close and the deadlines of the handshake. */
#include "http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/listener.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/stream.h"

#define LINGER_MAX_MS 2000  /* how long a closing connection may keep sending to us */
#define LOG_EVERY_MS  10000 /* one line about refused connections per interval */

static void conn_flush(struct cm_http_conn *c);
static void engine(struct cm_http_conn *c, const char *data, size_t len);
static void feed(struct cm_http_conn *c, const char *data, size_t len);
static void resume(struct cm_http_conn *c);
static void flush_queue(struct cm_http_conn *c);

static size_t unsent(const struct cm_http_conn *c)
{
	return c->out.len + (c->s ? cm_stream_unsent(c->s) : 0);
}

static struct cm_http_req *req_first(const struct cm_http_conn *c)
{
	struct cm_list *n = cm_list_first(&c->reqs);

	return n ? cm_list_entry(n, struct cm_http_req, link) : NULL;
}

static struct cm_http_req *req_next(const struct cm_http_conn *c, const struct cm_http_req *r)
{
	struct cm_list *n = cm_list_next(&c->reqs, &r->link);

	return n ? cm_list_entry(n, struct cm_http_req, link) : NULL;
}

/* --- the request list ------------------------------------------------------------------------ */

void cm_http__conn_link(struct cm_http_conn *c, struct cm_http_req *req)
{
	req->c = c;
	cm_list_insert_tail(&c->reqs, &req->link);
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
	cm_list_remove(&req->link);
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
	struct cm_http_req *r;

	while ((r = req_first(c)) != NULL)
		release_req(c, r);
}

/* --- teardown -------------------------------------------------------------------------------- */

static void conn_free(struct cm_http_conn *c)
{
	cm_http__h1_free(c->h1);
	cm_http__h2_free(c->h2);
	cm_buf_free(&c->pending);
	cm_buf_free(&c->out);
	free(c);
}

/* The stream is gone (after cm_http__conn_close() or a failure of its own). */
static void on_stream_closed(struct cm_stream *s, int err)
{
	struct cm_http_conn *c = cm_stream_data(s);
	struct cm_http_server *srv = c->srv;

	if (err && err != -ECONNRESET && err != -ETIMEDOUT)
		CM_LOGD(srv->mod, "%s: connection failed: %s", cm_stream_peer_name(s),
		        strerror(-err));
	c->s = NULL;
	cm_http__conn_close(c); /* when the stream failed by itself */
	conn_free(c);
	cm_http__server_conn_freed(srv);
	cm_http__server_handle_closed(srv);
}

/* Take c off the server's flush queue (or the next turn's). */
static void flush_unqueue(struct cm_http_conn *c)
{
	c->nqueued = 0;
	cm_list_remove(&c->flush_link);
}

void cm_http__conn_close(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;

	if (c->state == CM_HTTP_CONN_CLOSING)
		return;
	c->state = CM_HTTP_CONN_CLOSING;
	flush_unqueue(c);
	cm_list_remove(&c->link);
	srv->nconns--;
	cm_metrics_gauge_add(srv->m_conns, -1);
	if (c->s)
		cm_stream_abort(c->s, 0, false); /* its closed event frees c */
	/* last: the cancel callbacks may close more, the server included */
	release_all(c);
}

/* --- transport ------------------------------------------------------------------------------- */

static void on_timeout(struct cm_stream *s)
{
	struct cm_http_conn *c = cm_stream_data(s);

	CM_LOGD(c->srv->mod, "%s: closing an idle connection", cm_stream_peer_name(s));
	cm_http__conn_close(c);
}

static void read_start(struct cm_http_conn *c)
{
	if (c->s && !c->eof)
		cm_stream_resume(c->s);
}

static void read_stop(struct cm_http_conn *c)
{
	if (c->s)
		cm_stream_pause(c->s);
}

/* Hand c->out to the stream, which sends it at the end of the loop's turn. 0, or nonzero when
 * the connection was closed. */
static int transport_send(struct cm_http_conn *c)
{
	int r;

	if (c->mem || !c->s || c->state == CM_HTTP_CONN_CLOSING || c->out.len == 0)
		return 0;
	r = cm_stream_write(c->s, c->out.data, c->out.len);
	cm_buf_reset(&c->out);
	if (r) {
		cm_http__conn_close(c);
		return r;
	}
	return 0;
}

/* Close gracefully after the responses already queued: the stream sends them, shuts our side
 * down and reads (discarding) until the peer closes too. Closing at once could make the kernel
 * answer unread input with a reset, and the client would lose the response it is owed (a 413
 * sent while it is still uploading, say). Requests still in a handler's hands are detached. */
static void linger(struct cm_http_conn *c)
{
	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	c->state = CM_HTTP_CONN_LINGER;
	c->paused = 0;
	cm_buf_free(&c->pending);
	release_all(c);
	if (c->state == CM_HTTP_CONN_CLOSING || c->mem)
		return;
	if (transport_send(c) == 0 && c->s)
		cm_stream_close(c->s, 0);
}

/* The idle timer runs only while nothing is in flight: a slow handler is not an idle client,
 * and a client that dribbles a request in is timed from the moment the connection went idle. */
static void update_timer(struct cm_http_conn *c)
{
	int busy = 0;

	if (c->mem || !c->s || c->state != CM_HTTP_CONN_OPEN)
		return;
	for (struct cm_http_req *r = req_first(c); r && !busy; r = req_next(c, r))
		busy = r->state == CM_HTTP_REQ_HANDLER || r->state == CM_HTTP_REQ_RESPONDED;
	if (busy && !c->busy)
		cm_stream_timer(c->s, 0);
	else if (!busy && c->busy)
		cm_stream_timer(c->s, c->srv->lim.idle_timeout_ms);
	c->busy = busy ? 1u : 0u;
}

/* --- output ---------------------------------------------------------------------------------- */

static int any_in_handler(const struct cm_http_conn *c)
{
	for (const struct cm_http_req *r = req_first(c); r; r = req_next(c, r))
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

	struct cm_http_req *req;

	while ((req = req_first(c)) != NULL && req->state == CM_HTTP_REQ_RESPONDED) {
		int close = req->close_after || !req->keep_alive || srv->closing ||
		            (c->draining && !req_next(c, req));

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
	if (!req_first(c) && c->h1 && cm_http__h1_wants_continue(c->h1)) {
		if (cm_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0) {
			cm_http__conn_close(c);
			return 0;
		}
		partial->expect_continue = 0;
	}
	/* a client that half-closed is answered, then the connection closes */
	return !req_first(c) && (c->eof || c->draining);
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

/* The server's flusher, once per loop turn: produce the answers of the queued connections (the
 * streams send them at the end of the turn), and go on with the input of those that yielded.
 * Resuming may queue a connection again (it yields again): that one waits for the next turn. */
static void on_flusher(uv_idle_t *p)
{
	struct cm_http_server *srv = p->data;
	struct cm_list work, *n;

	uv_idle_stop(&srv->flusher);
	cm_list_init(&work);
	cm_list_move(&work, &srv->flushq);
	/* closing a connection takes it off the list it is on */
	while ((n = cm_list_pop(&work)) != NULL) {
		struct cm_http_conn *c = cm_list_entry(n, struct cm_http_conn, flush_link);

		c->nqueued = 0;
		if (c->yielded)
			resume(c); /* may have resumed already (output drained) */
		if (c->state == CM_HTTP_CONN_OPEN)
			conn_flush(c);
		/* answers sent free slots of max_in_flight: held input may go on */
		if (c->state == CM_HTTP_CONN_OPEN)
			resume(c);
	}
	if (!cm_list_empty(&srv->flushq))
		uv_idle_start(&srv->flusher, on_flusher);
}

/* Put c on the flush queue for the loop's next turn. */
static void flush_queue(struct cm_http_conn *c)
{
	struct cm_http_server *srv = c->srv;

	if (cm_list_linked(&c->flush_link))
		return;
	cm_list_insert_tail(&srv->flushq, &c->flush_link);
	if (!uv_is_active((uv_handle_t *)&srv->flusher))
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
	if (!req->err_status)
		req->err_status = status; /* (a head check gave its own) */
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
	struct cm_http_req *req = req_first(c), *next;
	unsigned unlinks, n = 0;

	while (req && c->state == CM_HTTP_CONN_OPEN) {
		if (req->state != CM_HTTP_REQ_READY) {
			req = req_next(c, req);
			continue;
		}
		next = req_next(c, req);
		unlinks = c->unlinks;
		cm_http__dispatch(c, req);
		n++;
		req = c->unlinks == unlinks ? next : req_first(c);
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
	const char *alpn = c->s ? cm_stream_alpn(c->s) : "";
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
	/* Input held back goes on at the next turn if its cause is gone by then (answers sent,
	 * other sockets served); otherwise the answer or the drained output that clears it does. */
	if (c->paused && !c->mem) {
		c->yielded = 1;
		flush_queue(c);
	}
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
	after_input(c); /* reading resumes: what TLS holds comes next, at the turn's end */
}

/* Output the socket had not taken has gone down: go on with HTTP/2 frames held back, then with
 * held input. Progress with a slow reader counts as activity. */
static void on_writable(struct cm_stream *s)
{
	struct cm_http_conn *c = cm_stream_data(s);

	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	if (!c->busy)
		cm_stream_timer(s, c->srv->lim.idle_timeout_ms);
	conn_flush(c);
	resume(c);
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct cm_http_conn *c = cm_stream_data(s);

	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	c->in_io = 1;
	feed(c, data, len);
	after_input(c);
}

/* The client sends no more (FIN or close_notify). */
static void on_eof(struct cm_stream *s)
{
	struct cm_http_conn *c = cm_stream_data(s);

	c->eof = 1;
	if (c->state != CM_HTTP_CONN_OPEN)
		return;
	c->in_io = 1;
	after_input(c);
}

static const struct cm_stream_events stream_events = {
    .read = on_read,
    .eof = on_eof,
    .writable = on_writable,
    .timeout = on_timeout,
    .closed = on_stream_closed,
};

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

/* Allocate a connection and link it into the server. */
static int conn_new(struct cm_http_conn **out, struct cm_http_server *srv, int mem)
{
	struct cm_http_conn *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->srv = srv;
	c->mem = mem;
	cm_buf_init(&c->pending, 0);
	cm_buf_init(&c->out, 0);
	cm_list_init(&c->reqs);
	cm_list_init(&c->flush_link);
	/* linked first, so that cm_http__conn_close() has a consistent list to unlink from */
	cm_list_insert_head(&srv->conns, &c->link);
	srv->nconns++;
	cm_metrics_gauge_add(srv->m_conns, 1);
	*out = c;
	return 0;
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

void cm_http__conn_refused(struct cm_http_server *srv, int per_source, const struct sockaddr *peer)
{
	if (per_source) {
		cm_metrics_inc(srv->m_rejected_source);
		log_refused(srv, peer, "connections_per_source",
		            srv->lim.max_connections_per_source);
	} else {
		cm_metrics_inc(srv->m_rejected);
		log_refused(srv, peer, "max_connections", srv->lim.max_connections);
	}
}

void cm_http__conn_accept(struct cm_http_server *srv, struct cm_stream *s)
{
	struct cm_http_conn *c;

	if (srv->stopping || conn_new(&c, srv, 0) != 0) {
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	c->s = s;
	srv->handles++; /* until the stream's closed event */
	cm_stream_start(s, &stream_events, c);
	/* the first request, TLS handshake included, must come within the idle timeout */
	cm_stream_timer(s, srv->lim.idle_timeout_ms);
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
