/* h2.c - HTTP/2 client connection over TLS (cm_tls_conn) on a libuv TCP handle: connecting,
 * I/O, streams and the API of h2.h. The nghttp2 session's callbacks are in h2_session.c; only
 * these two files include nghttp2. */
#include "h2.h"
#include "h2_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "pp_uv.h"
#include "cm/tls.h"

#define WRITE_HIGH   (1u << 20) /* stop producing frames while this much waits in the socket */
#define RECORD_MAX   16000      /* frames gathered per TLS record (the TLS maximum is 16384) */
#define PLAIN_BUF    16384
#define MAX_REQ_HDRS 16
#define FLUSH_BATCH  32 /* requests submitted in one turn that go out without waiting for more */

static void flush(struct pp_h2_conn *c);
static void fail(struct pp_h2_conn *c, int err);

static int map_uv(int e)
{
	return e; /* libuv codes are negative errno on Unix */
}

/* --- streams ------------------------------------------------------------------------------ */

static void stream_unlink(struct pp_h2_conn *c, struct h2_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		c->streams_tail = s->prev;
	s->prev = s->next = NULL;
	c->nstreams--;
}

void pp_h2__stream_finish(struct pp_h2_conn *c, struct h2_stream *s, int err)
{
	struct pp_h2_resp r = {0};

	stream_unlink(c, s);
	if (!c->dead && c->sess && s->id > 0)
		nghttp2_session_set_stream_user_data(c->sess, s->id, NULL);
	if (!err) {
		r.status = s->status;
		r.body = s->resp.data ? s->resp.data : "";
		r.body_len = s->resp.len;
		r.apns_id = s->apns_id;
		r.retry_after_s = s->retry_after;
	}
	s->cb(s->arg, err, err ? NULL : &r);
	cm_buf_free(&s->resp);
	free(s->body);
	free(s);
}

int pp_h2__lost_error(const struct pp_h2_conn *c, const struct h2_stream *s, int err)
{
	if (!s->sent || s->id <= 0 || (c->goaway && s->id > c->goaway_last_id))
		return -EAGAIN;
	return err;
}

/* --- closing ------------------------------------------------------------------------------ */

/* Drop one of the references held by handles and requests; the last one, once the handles are
 * closing, ends the connection. */
static void unref(struct pp_h2_conn *c)
{
	if (--c->handles_open > 0 || c->st != ST_CLOSING)
		return;
	nghttp2_session_del(c->sess);
	uv_freeaddrinfo(c->addrs);
	cm_tls_conn_free(c->tls);
	cm_buf_free(&c->out);
	if (!c->quiet)
		c->ev->closed(c, c->err, c->ever_ready, c->arg);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void close_handles(struct pp_h2_conn *c)
{
	if (c->st == ST_CLOSING)
		return;
	c->st = ST_CLOSING;
	/* Held until the close callbacks (and a pending resolution) have run. */
	c->handles_open += 3;
	pp_uv_close((uv_handle_t *)&c->flusher, handle_closed);
	pp_uv_close((uv_handle_t *)&c->timer, handle_closed);
	pp_uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

/* End the connection: every open stream completes (with -EAGAIN where the server cannot have
 * processed it), then the handles close. Safe to call from any callback. */
static void fail(struct pp_h2_conn *c, int err)
{
	if (c->dead)
		return;
	c->dead = true;
	if (!c->err)
		c->err = err;
	while (c->streams)
		pp_h2__stream_finish(c, c->streams,
		                     pp_h2__lost_error(c, c->streams, err ? err : -ECONNRESET));
	if (c->st == ST_RESOLVING) {
		/* The resolution's callback runs (cancelled) and closes the handles. */
		uv_cancel((uv_req_t *)&c->gai);
		return;
	}
	close_handles(c);
}

/* --- I/O ---------------------------------------------------------------------------------- */

struct wreq {
	uv_write_t req;
	struct pp_h2_conn *c;
	char data[];
};

static void write_done(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct pp_h2_conn *c = w->c;

	free(w);
	if (status == UV_ECANCELED)
		return;
	if (status < 0) {
		fail(c, map_uv(status));
		return;
	}
	if (!c->dead)
		flush(c);
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
	struct pp_h2_conn *c = req->data;

	(void)status;
	if (c->st != ST_CLOSING)
		fail(c, 0);
	unref(c);
}

/* Move TLS output to the socket. */
static int push_tls(struct pp_h2_conn *c)
{
	size_t n;
	struct wreq *w;
	uv_buf_t b;
	int r;

	while ((n = cm_tls_conn_pending(c->tls)) > 0) {
		w = malloc(sizeof(*w) + n);
		if (!w)
			return -ENOMEM;
		w->c = c;
		n = cm_tls_conn_take(c->tls, w->data, n);
		b = uv_buf_init(w->data, (unsigned)n);
		r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
		if (r) {
			free(w);
			return map_uv(r);
		}
	}
	return 0;
}

/* Encrypt the frames gathered in c->out as one record. false when the connection failed. */
static bool seal_out(struct pp_h2_conn *c)
{
	int r = c->out.len ? cm_tls_conn_write(c->tls, c->out.data, c->out.len) : 0;

	cm_buf_reset(&c->out);
	if (r) {
		fail(c, -EPROTO);
		return false;
	}
	return !c->dead;
}

/* Take one chunk of frames from nghttp2 into c->out, sealing records as they fill up.
 * 1: took some, 0: nothing to send, -1: the connection failed. */
static int gather(struct pp_h2_conn *c)
{
	const uint8_t *data;
	ssize_t n = nghttp2_session_mem_send(c->sess, &data);

	if (n == 0)
		return 0;
	if (n < 0) {
		fail(c, -EPROTO);
		return -1;
	}
	if (c->out.len && c->out.len + (size_t)n > RECORD_MAX && !seal_out(c))
		return -1;
	if (cm_buf_append(&c->out, data, (size_t)n)) {
		fail(c, -ENOMEM);
		return -1;
	}
	return 1;
}

/* Produce HTTP/2 frames and send them, unless the socket is backed up (write_done resumes).
 * Frames are gathered into records of up to RECORD_MAX bytes: a TLS record and a socket write
 * per frame cost both ends far more than the frames themselves. */
static void flush(struct pp_h2_conn *c)
{
	const uint8_t *data;
	ssize_t n;
	int r;

	uv_prepare_stop(&c->flusher);
	c->unflushed = 0;
	/* Inside nghttp2_session_mem_recv: read_cb flushes when it is over. */
	if (c->dead || c->st < ST_HANDSHAKE || c->in_recv)
		return;
	while (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WRITE_HIGH) {
		r = gather(c);
		if (r < 0)
			return;
		if (r == 0)
			break;
	}
	if (!seal_out(c))
		return;
	r = push_tls(c);
	if (r) {
		fail(c, r);
		return;
	}
	/* A graceful close ends once nothing is in flight and everything went out. */
	if (c->draining && !c->nstreams && !c->shutting && !nghttp2_session_want_write(c->sess)) {
		c->shutting = true;
		nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
		while ((n = nghttp2_session_mem_send(c->sess, &data)) > 0)
			cm_tls_conn_write(c->tls, data, (size_t)n);
		cm_tls_conn_shutdown(c->tls);
		push_tls(c);
		c->shut.data = c;
		if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shutdown_done) == 0)
			c->handles_open++;
		else
			fail(c, 0);
	}
}

static void on_flusher(uv_prepare_t *p)
{
	flush(p->data);
}

/* Send what was submitted before the loop waits again: requests submitted together (a batch of
 * notifications read from one socket) share TLS records and socket writes. A large batch goes
 * out in parts of FLUSH_BATCH, so that the server works on the first while we make the rest. */
static void flush_soon(struct pp_h2_conn *c)
{
	if (c->dead)
		return;
	if (++c->unflushed >= FLUSH_BATCH) {
		flush(c);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&c->flusher))
		uv_prepare_start(&c->flusher, on_flusher);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct pp_h2_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct pp_h2_conn *c = st->data;
	unsigned char plain[PLAIN_BUF];
	ssize_t n;

	if (c->dead || nread == 0)
		return;
	if (nread < 0) {
		fail(c, nread == UV_EOF ? -ECONNRESET : map_uv((int)nread));
		return;
	}
	c->last_rx = uv_now(c->loop);
	if (cm_tls_conn_feed(c->tls, buf->base, (size_t)nread)) {
		fail(c, -ENOMEM);
		return;
	}
	/* Bounded by what arrived: at most one read buffer of TLS records per wakeup. */
	for (;;) {
		n = cm_tls_conn_read(c->tls, plain, sizeof(plain));
		if (n < 0) {
			push_tls(c); /* the alert, if any */
			if (n == -EPROTO)
				CM_LOGW("h2", "%s: TLS: %s", c->authority,
				        cm_tls_conn_error(c->tls));
			fail(c, n == -ECONNRESET ? -ECONNRESET : -EPROTO);
			return;
		}
		if (!c->alpn_checked && cm_tls_conn_established(c->tls)) {
			c->alpn_checked = true;
			if (strcmp(cm_tls_conn_alpn(c->tls), "h2")) {
				CM_LOGW("h2", "%s: the server did not select ALPN h2",
				        c->authority);
				fail(c, -EPROTO);
				return;
			}
		}
		if (n == 0)
			break;
		c->in_recv = true;
		ssize_t rv = nghttp2_session_mem_recv(c->sess, plain, (size_t)n);
		c->in_recv = false;
		if (c->dead)
			return;
		if (rv < 0) {
			CM_LOGW("h2", "%s: HTTP/2: %s", c->authority, nghttp2_strerror((int)rv));
			fail(c, -EPROTO);
			return;
		}
	}
	flush(c);
	if (!c->dead && !nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
		fail(c, c->goaway ? 0 : -ECONNRESET);
}

/* --- connecting --------------------------------------------------------------------------- */

static void next_addr(struct pp_h2_conn *c, int err);

static void connect_cb(uv_connect_t *req, int status)
{
	struct pp_h2_conn *c = req->data;
	int r;

	free(req);
	if (status == UV_ECANCELED || c->dead)
		return;
	if (status < 0) {
		next_addr(c, map_uv(status));
		return;
	}
	/* Connected: the other addresses are not needed any more. */
	uv_freeaddrinfo(c->addrs);
	c->addrs = c->addr = NULL;
	c->st = ST_HANDSHAKE;
	c->last_rx = uv_now(c->loop);
	r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (!r)
		r = pp_h2__session_open(c);
	if (r) {
		fail(c, r);
		return;
	}
	flush(c); /* ClientHello, then the preface queued behind the handshake */
}

static void addr_format(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		uv_ip6_name(a, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		uv_ip4_name(a, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
	} else
		snprintf(out, len, "(family %d)", sa->sa_family);
}

/* Start connecting to c->addr. The time left is shared among the addresses still to try, so
 * that one that never answers (a broken IPv6 route, a dead host) leaves time for the others. */
static void connect_addr(struct pp_h2_conn *c)
{
	uint64_t now = uv_now(c->loop);
	unsigned left = 0;
	uv_connect_t *cr;
	int r;

	for (const struct addrinfo *a = c->addr; a; a = a->ai_next)
		left++;
	addr_format(c->addr->ai_addr, c->addr_name, sizeof(c->addr_name));
	c->addr_deadline =
	    now + (c->connect_deadline > now ? (c->connect_deadline - now) / left : 0);
	cr = malloc(sizeof(*cr));
	if (!cr) {
		fail(c, -ENOMEM);
		return;
	}
	cr->data = c;
	r = uv_tcp_connect(cr, &c->tcp, c->addr->ai_addr, connect_cb);
	if (r) {
		free(cr);
		next_addr(c, map_uv(r));
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
}

/* The socket of the failed address is closed: connect a fresh one to the next address. */
static void addr_closed(uv_handle_t *h)
{
	struct pp_h2_conn *c = h->data;

	if (c->st == ST_CLOSING) { /* failed meanwhile: this was the last reference to the socket */
		unref(c);
		return;
	}
	c->handles_open--;
	uv_tcp_init(c->loop, &c->tcp);
	c->tcp.data = c;
	connect_addr(c);
}

/* Connecting to c->addr failed with err (or took its share of the time): log it and go on with
 * the next address, or fail when none is left. A socket that failed to connect cannot try
 * again (nor change address family): the next address gets a new one once it is closed. */
static void next_addr(struct pp_h2_conn *c, int err)
{
	if (!c->addr->ai_next || uv_is_closing((uv_handle_t *)&c->tcp)) {
		CM_LOGW("h2", "%s: connect to %s: %s", c->authority, c->addr_name, strerror(-err));
		fail(c, err);
		return;
	}
	CM_LOGW("h2", "%s: connect to %s: %s; trying the next address", c->authority, c->addr_name,
	        strerror(-err));
	c->addr = c->addr->ai_next;
	c->handles_open++; /* until addr_closed */
	uv_close((uv_handle_t *)&c->tcp, addr_closed);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pp_h2_conn *c = req->data;

	if (c->dead) {
		uv_freeaddrinfo(res);
		close_handles(c);
		goto out;
	}
	if (status < 0 || !res) {
		CM_LOGW("h2", "%s: cannot resolve: %s", c->authority, uv_strerror(status));
		uv_freeaddrinfo(res);
		c->st = ST_CONNECTING; /* so that fail() closes the handles */
		fail(c, -EHOSTUNREACH);
		goto out;
	}
	c->st = ST_CONNECTING;
	c->addrs = c->addr = res;
	connect_addr(c);
out:
	unref(c); /* the resolution's reference */
}

static void tick(uv_timer_t *t)
{
	struct pp_h2_conn *c = t->data;
	uint64_t now = uv_now(c->loop);
	unsigned budget = 64;

	if (c->dead)
		return;
	if (c->st != ST_READY) {
		if (now >= c->connect_deadline) {
			CM_LOGW("h2", "%s: not ready after %llu ms", c->authority,
			        (unsigned long long)c->cfg.connect_timeout_ms);
			fail(c, -ETIMEDOUT);
		} else if (c->st == ST_CONNECTING && c->addr && c->addr->ai_next &&
		           now >= c->addr_deadline && !uv_is_closing((uv_handle_t *)&c->tcp)) {
			next_addr(c, -ETIMEDOUT);
		}
		return;
	}
	if (c->ping_sent && now - c->ping_sent >= c->cfg.ping_timeout_ms) {
		CM_LOGW("h2", "%s: PING unanswered", c->authority);
		fail(c, -ETIMEDOUT);
		return;
	}
	if (!c->ping_sent && now - c->last_rx >= c->cfg.ping_interval_ms)
		pp_h2_ping(c);
	/* Cancel requests past their deadline. The list is in submission order and every
	 * request has the same timeout, so the expired ones are at the head. Bounded per tick. */
	while (c->streams && c->streams->deadline <= now && budget--) {
		struct h2_stream *s = c->streams;

		if (s->id > 0)
			nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, s->id,
			                          NGHTTP2_CANCEL);
		pp_h2__stream_finish(c, s, -ETIMEDOUT);
		if (c->dead) /* the callback closed c */
			return;
	}
	flush(c);
}

int pp_h2_conn_alloc(struct pp_h2_conn **out, uv_loop_t *loop, const struct pp_h2_config *cfg,
                     const struct pp_h2_events *ev, void *arg)
{
	struct pp_h2_conn *c;
	char port[8];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	int r;

	*out = NULL;
	if (!cfg->host || !*cfg->host || strlen(cfg->host) >= 256 || !cfg->tls || !ev ||
	    !ev->closed || (cfg->tls_name && strlen(cfg->tls_name) >= 256))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ev = ev;
	c->arg = arg;
	c->cfg = *cfg;
	snprintf(c->host, sizeof(c->host), "%s", cfg->host);
	snprintf(c->tls_name, sizeof(c->tls_name), "%s", cfg->tls_name ? cfg->tls_name : cfg->host);
	c->cfg.host = c->host;
	c->cfg.tls_name = c->tls_name;
	if (cfg->port == 443)
		snprintf(c->authority, sizeof(c->authority), "%s", c->host);
	else if (strchr(c->host, ':'))
		snprintf(c->authority, sizeof(c->authority), "[%s]:%u", c->host, cfg->port);
	else
		snprintf(c->authority, sizeof(c->authority), "%s:%u", c->host, cfg->port);
	if (!c->cfg.max_streams)
		c->cfg.max_streams = 1000;
	if (!c->cfg.connect_timeout_ms)
		c->cfg.connect_timeout_ms = 10000;
	if (!c->cfg.request_timeout_ms)
		c->cfg.request_timeout_ms = 30000;
	if (!c->cfg.ping_interval_ms)
		c->cfg.ping_interval_ms = 60000;
	if (!c->cfg.ping_timeout_ms)
		c->cfg.ping_timeout_ms = 10000;
	if (!c->cfg.tick_ms)
		c->cfg.tick_ms = 1000;
	r = cm_tls_conn_alloc(&c->tls, cfg->tls, c->tls_name);
	if (r) {
		free(c);
		return r;
	}
	cm_buf_init(&c->out, 0);
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	uv_prepare_init(loop, &c->flusher);
	c->tcp.data = c->timer.data = c->flusher.data = c->gai.data = c;
	c->connect_deadline = uv_now(loop) + c->cfg.connect_timeout_ms;
	uv_timer_start(&c->timer, tick, c->cfg.tick_ms, c->cfg.tick_ms);
	snprintf(port, sizeof(port), "%u", cfg->port);
	hints.ai_flags = AI_ADDRCONFIG;
	r = uv_getaddrinfo(loop, &c->gai, resolved, c->host, port, &hints);
	if (r) {
		/* Nothing fired yet: close quietly, without the closed event; the memory goes
		 * in the close callbacks. */
		c->quiet = c->dead = true;
		close_handles(c);
		return map_uv(r);
	}
	c->handles_open = 1; /* the resolution */
	*out = c;
	return 0;
}

static ssize_t body_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct h2_stream *s = src->ptr;
	size_t n = s->body_len - s->body_off;

	(void)sess;
	(void)id;
	(void)user;
	if (n > len)
		n = len;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == s->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

int pp_h2_submit(struct pp_h2_conn *c, const char *method, const char *path,
                 const struct pp_h2_header *hdrs, size_t nhdrs, const void *body, size_t len,
                 pp_h2_done_cb cb, void *arg)
{
	nghttp2_nv nv[4 + MAX_REQ_HDRS];
	nghttp2_data_provider dp;
	struct h2_stream *s;
	size_t n = 0;
	int32_t id;

	if (!method || !path || !cb || nhdrs > MAX_REQ_HDRS)
		return -EINVAL;
	if (!pp_h2_capacity(c))
		return -EAGAIN;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (len) {
		s->body = malloc(len);
		if (!s->body) {
			free(s);
			return -ENOMEM;
		}
		memcpy(s->body, body, len);
		s->body_len = len;
	}
	s->cb = cb;
	s->arg = arg;
	s->retry_after = -1;
	cm_buf_init(&s->resp, 0);
	s->deadline = uv_now(c->loop) + c->cfg.request_timeout_ms;
#define NV(n_, v_)                                                                                 \
	(nghttp2_nv){(uint8_t *)(n_), (uint8_t *)(v_), strlen(n_), strlen(v_), NGHTTP2_NV_FLAG_NONE}
	nv[n++] = NV(":method", method);
	nv[n++] = NV(":scheme", "https");
	nv[n++] = NV(":authority", c->authority);
	nv[n++] = NV(":path", path);
	for (size_t i = 0; i < nhdrs; i++)
		nv[n++] = NV(hdrs[i].name, hdrs[i].value);
#undef NV
	dp.source.ptr = s;
	dp.read_callback = body_read;
	id = nghttp2_submit_request(c->sess, NULL, nv, n, len ? &dp : NULL, s);
	if (id < 0) {
		free(s->body);
		free(s);
		return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
	}
	s->id = id;
	/* Append: the list stays in submission order for the timeout scan. */
	s->prev = c->streams_tail;
	if (c->streams_tail)
		c->streams_tail->next = s;
	else
		c->streams = s;
	c->streams_tail = s;
	c->nstreams++;
	flush_soon(c);
	return 0;
}

unsigned pp_h2_capacity(const struct pp_h2_conn *c)
{
	uint32_t peer;
	unsigned lim;

	if (!pp_h2_usable(c))
		return 0;
	peer =
	    nghttp2_session_get_remote_settings(c->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	lim = peer < c->cfg.max_streams ? peer : c->cfg.max_streams;
	return lim > c->nstreams ? lim - c->nstreams : 0;
}

unsigned pp_h2_peer_max_streams(const struct pp_h2_conn *c)
{
	if (!c->sess)
		return 1;
	return nghttp2_session_get_remote_settings(c->sess,
	                                           NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

unsigned pp_h2_inflight(const struct pp_h2_conn *c)
{
	return c->nstreams;
}

bool pp_h2_usable(const struct pp_h2_conn *c)
{
	return c->st == ST_READY && !c->dead && !c->goaway && !c->draining;
}

void pp_h2_conn_close(struct pp_h2_conn *c, bool graceful)
{
	if (c->dead)
		return;
	if (graceful && !c->draining && c->st == ST_READY) {
		c->draining = true;
		flush(c);
		return;
	}
	fail(c, -ECANCELED);
}

void pp_h2_ping(struct pp_h2_conn *c)
{
	if (c->dead || c->st != ST_READY)
		return;
	if (nghttp2_submit_ping(c->sess, NGHTTP2_FLAG_NONE, NULL) == 0) {
		c->ping_sent = uv_now(c->loop);
		if (!c->ping_sent)
			c->ping_sent = 1;
		flush(c);
	}
}
