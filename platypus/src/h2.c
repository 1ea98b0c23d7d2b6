/* h2.c - HTTP/2 client connection on a cm_stream: the stream's events, frames out, deadlines,
 * streams and the API of h2.h. The nghttp2 session's callbacks are in h2_session.c; only these
 * two files include nghttp2. */
#include "h2.h"
#include "h2_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/stream.h"
#include "cm/tls.h"

#define HIGH_WATER   (1u << 20) /* stop making frames while this much is unsent */
#define MAX_REQ_HDRS 16
#define FLUSH_BATCH  32 /* requests submitted in one turn that go out without waiting for more */
/* Frames queued in the stream that go out without waiting for the end of the turn: the
 * requests submitted while a read is handled (each answer frees a stream, which the pool fills
 * at once) are made in one go when the read is over, and would otherwise wait whole in the
 * stream, then again as TLS records, before the first byte is written. */
#define FLUSH_BYTES (64 * 1024)
#define EXPIRE_MAX  64 /* requests timed out per tick; the rest on the next one */

static void pump(struct pp_h2_conn *c);

static uint64_t now_ms(const struct pp_h2_conn *c)
{
	return uv_now(c->loop->uv);
}

/* --- streams ------------------------------------------------------------------------------ */

void pp_h2__stream_finish(struct pp_h2_conn *c, struct h2_stream *s, int err)
{
	struct pp_h2_resp r = {0};

	cm_list_remove(&s->link);
	c->nstreams--;
	if (!c->dead && s->id > 0)
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

/* --- the end ------------------------------------------------------------------------------ */

/* Stop using the connection: no more calls into nghttp2, the stream closes at once. The open
 * requests complete from the stream's closed event, never from within a call of this API. */
static void fail(struct pp_h2_conn *c, int err)
{
	if (c->dead)
		return;
	c->dead = true;
	if (!c->err)
		c->err = err;
	cm_stream_abort(c->s, c->err, false);
}

/* A graceful close is over: GOAWAY, then the TLS close and the stream's own graceful end. */
static void goodbye(struct pp_h2_conn *c)
{
	const uint8_t *data;
	ssize_t n;

	nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
	while ((n = nghttp2_session_mem_send(c->sess, &data)) > 0)
		if (cm_stream_write(c->s, data, (size_t)n) != 0)
			break;
	c->dead = true;
	cm_stream_close(c->s, 0);
}

static void on_closed(struct cm_stream *s, int err)
{
	struct pp_h2_conn *c = cm_stream_data(s);
	struct cm_list *n;

	if (!c->dead) {
		/* the stream ended by itself: the peer, a failed read or write, TLS, connecting */
		if (err == -EPROTO && cm_stream_tls(s))
			CM_LOGW("h2", "%s: TLS: %s", c->authority,
			        cm_tls_conn_error(cm_stream_tls(s)));
		c->dead = true;
		c->err = err ? err : -ECONNRESET;
	}
	while ((n = cm_list_first(&c->streams)) != NULL) {
		struct h2_stream *st = cm_list_entry(n, struct h2_stream, link);

		pp_h2__stream_finish(c, st,
		                     pp_h2__lost_error(c, st, c->err ? c->err : -ECONNRESET));
	}
	nghttp2_session_del(c->sess);
	c->ev->closed(c, c->err, c->ever_ready, c->arg);
	free(c);
}

/* --- output ------------------------------------------------------------------------------- */

/* Move the frames nghttp2 has ready to the stream, until the stream is full (its writable event
 * resumes). The stream gathers them and writes them as TLS records at the end of the turn: a
 * record and a socket write per frame would cost both ends far more than the frames. */
static void pump(struct pp_h2_conn *c)
{
	const uint8_t *data;
	ssize_t n;
	int r = 0;

	/* Inside nghttp2_session_mem_recv the reader pumps when it is over; inside mem_send the
	 * running loop takes the new frames too. */
	if (c->dead || c->in_recv || c->in_pump || c->st == ST_CONNECTING)
		return;
	c->in_pump = true;
	while (!c->dead && !cm_stream_full(c->s)) {
		n = nghttp2_session_mem_send(c->sess, &data);
		if (n == 0)
			break;
		r = n < 0 ? -EPROTO : cm_stream_write(c->s, data, (size_t)n);
		if (r)
			break;
		c->queued += (size_t)n;
		if (c->queued >= FLUSH_BYTES) {
			c->queued = 0;
			cm_stream_flush(c->s);
		}
	}
	c->in_pump = false;
	if (r) {
		fail(c, r);
		return;
	}
	/* A graceful close ends once nothing is in flight and everything is out. */
	if (!c->dead && c->draining && !c->nstreams && !nghttp2_session_want_write(c->sess))
		goodbye(c);
}

/* --- the stream's events ------------------------------------------------------------------ */

static void on_connected(struct cm_stream *s)
{
	struct pp_h2_conn *c = cm_stream_data(s);

	if (strcmp(cm_stream_alpn(s), "h2") != 0) {
		CM_LOGW("h2", "%s: the server did not select ALPN h2", c->authority);
		fail(c, -EPROTO);
		return;
	}
	c->st = ST_HANDSHAKE;
	c->last_rx = now_ms(c);
	pump(c); /* the preface and our SETTINGS */
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct pp_h2_conn *c = cm_stream_data(s);
	ssize_t rv;

	if (c->dead)
		return;
	c->last_rx = now_ms(c);
	c->in_recv = true;
	rv = nghttp2_session_mem_recv(c->sess, (const uint8_t *)data, len);
	c->in_recv = false;
	if (c->dead)
		return;
	if (rv < 0) {
		CM_LOGW("h2", "%s: HTTP/2: %s", c->authority, nghttp2_strerror((int)rv));
		fail(c, -EPROTO);
		return;
	}
	pump(c);
	if (!c->dead && !nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
		fail(c, c->goaway ? 0 : -ECONNRESET);
}

static void on_eof(struct cm_stream *s)
{
	fail(cm_stream_data(s), -ECONNRESET);
}

static void on_writable(struct cm_stream *s)
{
	pump(cm_stream_data(s));
}

/* The protocol's timer, every tick_ms: the first SETTINGS in time, PING, request deadlines. */
static void on_timeout(struct cm_stream *s)
{
	struct pp_h2_conn *c = cm_stream_data(s);
	uint64_t now = now_ms(c);
	struct cm_list *n;

	if (c->dead)
		return;
	if (c->st != ST_READY) {
		if (now >= c->connect_deadline) {
			CM_LOGW("h2", "%s: not ready after %llu ms", c->authority,
			        (unsigned long long)c->cfg.connect_timeout_ms);
			fail(c, -ETIMEDOUT);
			return;
		}
		cm_stream_timer(s, c->cfg.tick_ms);
		return;
	}
	if (c->ping_sent && now - c->ping_sent >= c->cfg.ping_timeout_ms) {
		CM_LOGW("h2", "%s: PING unanswered", c->authority);
		fail(c, -ETIMEDOUT);
		return;
	}
	if (!c->ping_sent && now - c->last_rx >= c->cfg.ping_interval_ms)
		pp_h2_ping(c);
	/* Cancel requests past their deadline. The list is in submission order and every request
	 * has the same timeout, so the expired ones are at the head. Bounded per tick. */
	for (unsigned i = 0; i < EXPIRE_MAX && (n = cm_list_first(&c->streams)) != NULL; i++) {
		struct h2_stream *st = cm_list_entry(n, struct h2_stream, link);

		if (st->deadline > now || c->dead)
			break;
		if (st->id > 0)
			nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id,
			                          NGHTTP2_CANCEL);
		pp_h2__stream_finish(c, st, -ETIMEDOUT);
	}
	pump(c);
	cm_stream_timer(s, c->cfg.tick_ms); /* a no-op once the stream is closing */
}

/* --- API ---------------------------------------------------------------------------------- */

int pp_h2_conn_alloc(struct pp_h2_conn **out, struct cm_loop *l, const struct pp_h2_config *cfg,
                     const struct pp_h2_events *ev, void *arg)
{
	static const struct cm_stream_events sev = {
	    .read = on_read,
	    .eof = on_eof,
	    .connected = on_connected,
	    .writable = on_writable,
	    .timeout = on_timeout,
	    .closed = on_closed,
	};
	struct cm_stream_opts so = {.nodelay = true, .high_water = HIGH_WATER, .log_mod = "h2"};
	struct pp_h2_conn *c;
	int r;

	*out = NULL;
	if (!cfg->host || !*cfg->host || strlen(cfg->host) >= 256 || !cfg->tls || !ev ||
	    !ev->closed || (cfg->tls_name && strlen(cfg->tls_name) >= 256))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->ev = ev;
	c->arg = arg;
	c->cfg = *cfg;
	cm_list_init(&c->streams);
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
	r = pp_h2__session_open(c);
	if (r) {
		free(c);
		return r;
	}
	so.tls = cfg->tls;
	so.server_name = c->tls_name;
	so.connect_ms = c->cfg.connect_timeout_ms;
	c->connect_deadline = uv_now(l->uv) + c->cfg.connect_timeout_ms;
	r = cm_stream_connect(&c->s, l, c->host, cfg->port, &so, &sev, c);
	if (r) {
		nghttp2_session_del(c->sess);
		free(c);
		return r;
	}
	cm_stream_timer(c->s, c->cfg.tick_ms);
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
	s->deadline = now_ms(c) + c->cfg.request_timeout_ms;
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
	/* Appended: the list stays in submission order for the timeout scan. */
	cm_list_insert_tail(&c->streams, &s->link);
	c->nstreams++;
	/* Frames go to the stream now and out with the rest of the turn's output; a large batch
	 * goes out in parts of FLUSH_BATCH, so that the server works on the first while we make
	 * the rest. Nothing unsent means the last batch went out. */
	if (cm_stream_unsent(c->s) == 0) {
		c->unflushed = 0;
		c->queued = 0;
	}
	pump(c);
	if (!c->dead && ++c->unflushed >= FLUSH_BATCH) {
		c->unflushed = 0;
		c->queued = 0;
		cm_stream_flush(c->s);
	}
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
		pump(c);
		return;
	}
	fail(c, -ECANCELED);
}

void pp_h2_ping(struct pp_h2_conn *c)
{
	if (c->dead || c->st != ST_READY)
		return;
	if (nghttp2_submit_ping(c->sess, NGHTTP2_FLAG_NONE, NULL) == 0) {
		c->ping_sent = now_ms(c);
		if (!c->ping_sent)
			c->ping_sent = 1;
		pump(c);
	}
}
