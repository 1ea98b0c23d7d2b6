/* stream.c - cm_stream (cm/stream.h): reading, TLS, output gathered per loop turn, water marks,
 * deadlines and the one way a stream ends. Connecting is in stream_connect.c. */
#include "stream_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/tls.h"

#define DEF_HANDSHAKE_MS 10000
#define DEF_LINGER_MS    2000
#define DEF_HIGH_WATER   (256 * 1024)

struct wreq {
	uv_write_t req;
	struct cm_stream *s;
	char *base; /* owned */
	size_t len; /* bytes in flight */
};

static void flush(struct cm_stream *s);
static void pump(struct cm_stream *s);
static void finish(struct cm_stream *s);

static const char *mod(const struct cm_stream *s)
{
	return s->o.log_mod ? s->o.log_mod : "stream";
}

/* --- the loop's end-of-turn queue ------------------------------------------------------------ */

static void on_prepare(uv_prepare_t *p)
{
	cm_stream__run_queue(p->data);
}

static void on_check(uv_check_t *c)
{
	cm_stream__run_queue(c->data);
}

static void enqueue(struct cm_stream *s)
{
	struct cm_loop *l = s->l;

	if (cm_list_linked(&s->flush_link) || s->st == STREAM_CLOSING)
		return;
	cm_list_insert_tail(&l->flushq, &s->flush_link);
	if (!uv_is_active((uv_handle_t *)&l->flush_check) && !l->stopping) {
		uv_prepare_start(&l->flush_prepare, on_prepare);
		uv_check_start(&l->flush_check, on_check);
	}
}

void cm_stream__run_queue(struct cm_loop *l)
{
	struct cm_list work, *n;

	if (l->flushing)
		return;
	l->flushing = true;
	/* Streams queued while these run (a read event writing elsewhere) wait for the next
	 * handle: the prepare or check that comes next in this same turn or the next. */
	cm_list_init(&work);
	cm_list_move(&work, &l->flushq);
	while ((n = cm_list_pop(&work)) != NULL) {
		struct cm_stream *s = cm_list_entry(n, struct cm_stream, flush_link);

		if (s->want_pump) {
			s->want_pump = false;
			pump(s);
		}
		if (s->st == STREAM_OPEN || s->st == STREAM_LINGER)
			flush(s);
	}
	l->flushing = false;
	if (cm_list_empty(&l->flushq)) {
		uv_prepare_stop(&l->flush_prepare);
		uv_check_stop(&l->flush_check);
	}
}

void cm_stream__loop_closing(struct cm_loop *l)
{
	uv_prepare_stop(&l->flush_prepare);
	uv_check_stop(&l->flush_check);
}

/* --- life and death -------------------------------------------------------------------------- */

static void on_timer(struct cm_loop_timer *t)
{
	struct cm_stream *s = cm_list_entry(t, struct cm_stream, t_proto);

	if (s->st == STREAM_CLOSING)
		return;
	if (s->ev && s->ev->timeout)
		s->ev->timeout(s);
	else
		cm_stream__fail(s, -ETIMEDOUT);
}

static void on_sys_timer(struct cm_loop_timer *t)
{
	struct cm_stream *s = cm_list_entry(t, struct cm_stream, t_sys);

	switch (s->st) {
	case STREAM_RESOLVING:
	case STREAM_CONNECTING:
		cm_stream__connect_timeout(s);
		break;
	case STREAM_OPEN:
		if (s->handshaking) {
			CM_LOGD(mod(s), "%s: TLS handshake not done in time", s->peer_name);
			cm_stream__fail(s, -ETIMEDOUT);
		}
		break;
	case STREAM_LINGER:
		finish(s); /* the peer never closed its side: enough */
		break;
	case STREAM_CLOSING:
		break;
	}
}

void cm_stream__sys_timer(struct cm_stream *s, uint64_t ms)
{
	if (ms)
		cm_loop_timer_start(s->l, &s->t_sys, ms);
	else
		cm_loop_timer_stop(s->l, &s->t_sys);
}

struct cm_stream *cm_stream__new(struct cm_loop *l, const struct cm_stream_opts *opts)
{
	struct cm_stream *s = calloc(1, sizeof(*s));
	static const struct cm_stream_opts none;

	if (!s)
		return NULL;
	s->l = l;
	s->o = opts ? *opts : none;
	if (!s->o.handshake_ms)
		s->o.handshake_ms = DEF_HANDSHAKE_MS;
	if (!s->o.linger_ms)
		s->o.linger_ms = DEF_LINGER_MS;
	if (!s->o.high_water)
		s->o.high_water = DEF_HIGH_WATER;
	if (!s->o.low_water || s->o.low_water > s->o.high_water)
		s->o.low_water = s->o.high_water / 4;
	if (!s->o.max_unsent || s->o.max_unsent < s->o.high_water)
		s->o.max_unsent = 4 * s->o.high_water;
	if (s->o.server_name) {
		s->server_name = strdup(s->o.server_name);
		if (!s->server_name) {
			free(s);
			return NULL;
		}
	}
	s->o.server_name = s->server_name;
	cm_buf_init(&s->out, 0);
	cm_list_init(&s->flush_link);
	cm_loop_timer_init(&s->t_proto, on_timer);
	cm_loop_timer_init(&s->t_sys, on_sys_timer);
	s->tcp.data = s;
	s->shut.data = s;
	snprintf(s->peer_name, sizeof(s->peer_name), "?");
	return s;
}

void cm_stream__unref(struct cm_stream *s)
{
	if (--s->refs > 0)
		return;
	cm_stream__connect_free(s);
	if (s->release)
		s->release(s, s->release_arg);
	if (s->src_release)
		s->src_release(s->src_arg, (const struct sockaddr *)&s->peer);
	if (s->ev)
		s->ev->closed(s, s->err);
	cm_tls_conn_free(s->tls);
	cm_buf_free(&s->out);
	free(s->server_name);
	free(s);
}

static void on_closed(uv_handle_t *h)
{
	cm_stream__unref(h->data);
}

/* Close the handle now; the closed event comes from its close callback. */
static void finish(struct cm_stream *s)
{
	if (s->st == STREAM_CLOSING)
		return;
	s->st = STREAM_CLOSING;
	cm_loop_timer_stop(s->l, &s->t_proto);
	cm_loop_timer_stop(s->l, &s->t_sys);
	cm_list_remove(&s->flush_link);
	if (s->conn && s->conn->switching)
		return; /* the handle is closing already; its callback ends the stream */
	if (s->rst) {
		uv_os_fd_t fd;
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	/* write requests still pending get their callbacks (UV_ECANCELED) before ours */
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}

void cm_stream__fail(struct cm_stream *s, int err)
{
	if (s->st == STREAM_CLOSING)
		return;
	if (err && !s->err)
		s->err = err;
	if (s->st == STREAM_RESOLVING && s->conn) {
		/* the resolver's callback still comes and drops its reference */
		uv_cancel((uv_req_t *)&s->conn->gai);
	}
	finish(s);
}

void cm_stream_abort(struct cm_stream *s, int err, bool rst)
{
	if (s->st == STREAM_CLOSING)
		return;
	s->rst = rst;
	if (!s->err)
		s->err = err;
	cm_stream__fail(s, err);
}

/* --- output ---------------------------------------------------------------------------------- */

size_t cm_stream_unsent(const struct cm_stream *s)
{
	size_t n = s->out.len + s->inflight;

	if (s->tls)
		n += cm_tls_conn_pending(s->tls);
	return n;
}

bool cm_stream_full(const struct cm_stream *s)
{
	return s->full;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct cm_stream *s = req->data;

	if (s->st == STREAM_CLOSING)
		return;
	s->shut_done = true;
	if (status < 0 || s->eof)
		finish(s);
}

/* In LINGER, once everything is out: shut our side down and wait for the peer's end. */
static void linger_step(struct cm_stream *s)
{
	if (s->st != STREAM_LINGER || s->shut_sent || cm_stream_unsent(s) > 0)
		return;
	s->shut_sent = true;
	if (uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
		finish(s);
}

static void check_writable(struct cm_stream *s)
{
	if (!s->full || cm_stream_unsent(s) > s->o.low_water)
		return;
	s->full = false;
	if (s->st == STREAM_OPEN && s->ev && s->ev->writable)
		s->ev->writable(s);
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = req->data;
	struct cm_stream *s = w->s;

	s->inflight -= w->len;
	free(w->base);
	free(w);
	if (s->st == STREAM_CLOSING)
		return;
	if (status < 0) {
		CM_LOGD(mod(s), "%s: write failed: %s", s->peer_name, uv_strerror(status));
		cm_stream__fail(s, status);
		return;
	}
	if (s->inflight == 0) {
		linger_step(s);
		check_writable(s);
	}
}

/* Send len bytes of base (owned, freed here) to the socket: what the kernel takes at once, and
 * the rest in a write request. 0 or a negative errno (the stream then fails). */
static int send_raw(struct cm_stream *s, char *base, size_t len)
{
	struct wreq *w;
	size_t off = 0;
	uv_buf_t b;
	int r;

	if (s->inflight == 0) {
		b = uv_buf_init(base, (unsigned)len);
		r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
		if (r < 0 && r != UV_EAGAIN) {
			free(base);
			return r;
		}
		off = r > 0 ? (size_t)r : 0;
		if (off == len) {
			free(base);
			return 0;
		}
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(base);
		return -ENOMEM;
	}
	w->s = s;
	w->base = base;
	w->len = len - off;
	w->req.data = w;
	b = uv_buf_init(base + off, (unsigned)(len - off));
	r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
	if (r) {
		free(base);
		free(w);
		return r;
	}
	s->inflight += w->len;
	return 0;
}

/* Hand the queue to the socket, through TLS when there is one. */
static void flush(struct cm_stream *s)
{
	size_t n;
	char *data;
	int r;

	cm_list_remove(&s->flush_link);
	if (s->st != STREAM_OPEN && s->st != STREAM_LINGER)
		return; /* still connecting: sent once connected */
	if (!s->tls) {
		if (s->out.len) {
			n = s->out.len;
			r = send_raw(s, cm_buf_steal(&s->out), n);
			if (r) {
				cm_stream__fail(s, r);
				return;
			}
		}
	} else {
		if (s->out.len) {
			r = cm_tls_conn_write(s->tls, s->out.data, s->out.len);
			cm_buf_reset(&s->out);
			if (r) {
				cm_stream__fail(s, r == -ENOMEM ? -ENOMEM : -EPROTO);
				return;
			}
		}
		/* closing: the close_notify goes after the last plaintext, never before it */
		if (s->st == STREAM_LINGER && s->secured && !s->tls_shut) {
			s->tls_shut = true;
			cm_tls_conn_shutdown(s->tls);
		}
		data = cm_tls_conn_take_all(s->tls, &n);
		if (data) {
			r = send_raw(s, data, n);
			if (r) {
				cm_stream__fail(s, r);
				return;
			}
		}
	}
	if (s->inflight == 0) {
		linger_step(s);
		check_writable(s);
	}
}

int cm_stream_write(struct cm_stream *s, const void *data, size_t len)
{
	size_t unsent;

	if (s->st == STREAM_LINGER || s->st == STREAM_CLOSING)
		return -ESHUTDOWN;
	if (len == 0)
		return 0;
	unsent = cm_stream_unsent(s);
	if (unsent + len > s->o.max_unsent && s->st == STREAM_OPEN && s->out.len) {
		/* what this turn queued may simply not have been offered to the kernel yet: only
		 * what it will not take counts against the limit */
		flush(s);
		if (s->st != STREAM_OPEN)
			return -ESHUTDOWN;
		unsent = cm_stream_unsent(s);
	}
	if (unsent + len > s->o.max_unsent)
		return -ENOBUFS;
	if (cm_buf_append(&s->out, data, len) != 0) {
		cm_stream__fail(s, -ENOMEM);
		return -ENOMEM;
	}
	if (unsent + len >= s->o.high_water)
		s->full = true;
	enqueue(s);
	return 0;
}

void cm_stream_flush(struct cm_stream *s)
{
	if (s->st == STREAM_OPEN || s->st == STREAM_LINGER)
		flush(s);
}

/* --- input ----------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct cm_stream *s = h->data;

	(void)hint;
	/* The loop's buffer: every read is handled before the callback returns. */
	*buf = uv_buf_init(s->l->rbuf, CM_LOOP_READ_BUF);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

void cm_stream__read_start(struct cm_stream *s)
{
	if (s->reading || s->paused || s->eof || s->st == STREAM_CLOSING)
		return;
	if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) != 0) {
		cm_stream__fail(s, -EIO);
		return;
	}
	s->reading = true;
}

static void read_stop(struct cm_stream *s)
{
	if (!s->reading)
		return;
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->reading = false;
}

static void peer_done(struct cm_stream *s)
{
	s->eof = true;
	read_stop(s);
	if (s->st == STREAM_LINGER) {
		/* A half-close: the peer may still read what we have queued. Done once our own
		 * shutdown went out (linger_step, on_shutdown), or at the linger deadline. */
		if (s->shut_done)
			finish(s);
		return;
	}
	if (s->st != STREAM_OPEN)
		return;
	if (s->ev && s->ev->eof)
		s->ev->eof(s);
	else
		cm_stream_close(s, -ECONNRESET);
}

/* The handshake just completed. */
static void secured(struct cm_stream *s)
{
	s->secured = true;
	s->handshaking = false;
	cm_stream__sys_timer(s, 0);
	if (s->client && !s->started) {
		cm_stream__connected(s);
		return;
	}
	if (s->ev && s->ev->secured)
		s->ev->secured(s);
}

/* Pull plaintext out of TLS until it needs more input, the reader pauses, or the stream ends. */
static void pump(struct cm_stream *s)
{
	if (s->in_pump)
		return; /* a resume from inside the read event: the loop below goes on */
	s->in_pump = true;
	while (s->st == STREAM_OPEN && !s->paused) {
		ssize_t n = cm_tls_conn_read(s->tls, s->l->plainbuf, CM_LOOP_PLAIN_BUF);

		if (!s->secured && cm_tls_conn_established(s->tls)) {
			secured(s);
			if (s->st != STREAM_OPEN || s->paused)
				break;
		}
		if (n > 0) {
			s->ev->read(s, s->l->plainbuf, (size_t)n);
			continue;
		}
		if (n == -ECONNRESET) {
			s->in_pump = false;
			peer_done(s);
			return;
		}
		if (n < 0) {
			CM_LOGD(mod(s), "%s: TLS: %s", s->peer_name, cm_tls_conn_error(s->tls));
			/* the alert goes out on a best-effort basis before the handle closes */
			flush(s);
			cm_stream__fail(s, -EPROTO);
		}
		break;
	}
	s->in_pump = false;
	/* handshake messages and alerts go out at the end of the turn */
	if (s->st == STREAM_OPEN && cm_tls_conn_pending(s->tls))
		enqueue(s);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct cm_stream *s = st->data;

	if (nread == 0 || s->st == STREAM_CLOSING)
		return;
	if (nread == UV_EOF) {
		peer_done(s);
		return;
	}
	if (nread < 0) {
		CM_LOGD(mod(s), "%s: read failed: %s", s->peer_name, uv_strerror((int)nread));
		cm_stream__fail(s, (int)nread);
		return;
	}
	if (s->st == STREAM_LINGER)
		return; /* the peer is still sending; we no longer listen */
	if (!s->tls) {
		s->ev->read(s, buf->base, (size_t)nread);
		return;
	}
	if (cm_tls_conn_feed(s->tls, buf->base, (size_t)nread) != 0) {
		cm_stream__fail(s, -ENOMEM);
		return;
	}
	pump(s);
}

void cm_stream_pause(struct cm_stream *s)
{
	s->paused = true;
	read_stop(s);
}

void cm_stream__pump_soon(struct cm_stream *s)
{
	s->want_pump = true;
	enqueue(s);
}

void cm_stream_resume(struct cm_stream *s)
{
	if (!s->paused || s->st != STREAM_OPEN)
		return;
	s->paused = false;
	if (s->tls && !s->in_pump) {
		s->want_pump = true; /* what TLS decrypted already comes first, at the turn's end */
		enqueue(s);
	}
	cm_stream__read_start(s);
}

/* --- TLS ------------------------------------------------------------------------------------- */

static int tls_begin(struct cm_stream *s, struct cm_tls *tls, const char *name)
{
	int r = cm_tls_conn_alloc(&s->tls, tls, name);

	if (r)
		return r;
	s->handshaking = true;
	cm_stream__sys_timer(s, s->o.handshake_ms);
	if (cm_tls_conn_pending(s->tls)) /* a client's ClientHello */
		enqueue(s);
	return 0;
}

int cm_stream_starttls(struct cm_stream *s, struct cm_tls *tls, const char *server_name)
{
	int r;

	if (s->st != STREAM_OPEN)
		return -ESHUTDOWN;
	if (s->tls)
		return -EALREADY;
	if (!tls)
		return -EINVAL;
	/* What was queued before (the <proceed/>) goes out in the clear, now. */
	flush(s);
	if (s->st != STREAM_OPEN)
		return -ESHUTDOWN;
	if (server_name && !s->server_name) {
		s->server_name = strdup(server_name);
		if (!s->server_name)
			return -ENOMEM;
	}
	r = tls_begin(s, tls, s->server_name);
	return r;
}

/* --- accepted streams ------------------------------------------------------------------------ */

void cm_stream_addr_format(const struct sockaddr *sa, char *out, size_t len)
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
	} else {
		snprintf(out, len, "(family %d)", sa->sa_family);
	}
}

int cm_stream_accept(struct cm_stream **out, struct cm_loop *l, uv_stream_t *server,
                     const struct cm_stream_opts *opts)
{
	struct cm_stream *s;
	int r, len;

	*out = NULL;
	s = cm_stream__new(l, opts);
	if (!s)
		return -ENOMEM;
	r = uv_tcp_init(l->uv, &s->tcp);
	if (r) {
		cm_stream__unref(s); /* refs 0: frees, no events */
		return r;
	}
	s->refs = 1;
	s->st = STREAM_OPEN;
	r = uv_accept(server, (uv_stream_t *)&s->tcp);
	if (r == 0) {
		len = sizeof(s->peer);
		if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->peer, &len) == 0) {
			s->peerlen = (socklen_t)len;
			cm_stream_addr_format((struct sockaddr *)&s->peer, s->peer_name,
			                      sizeof(s->peer_name));
		}
		if (s->o.nodelay)
			(void)uv_tcp_nodelay(&s->tcp, 1);
		if (s->o.tls)
			r = tls_begin(s, s->o.tls, NULL);
	}
	if (r) {
		finish(s); /* no events set: freed quietly in the close callback */
		return r;
	}
	*out = s;
	return 0;
}

void cm_stream_start(struct cm_stream *s, const struct cm_stream_events *ev, void *data)
{
	s->ev = ev;
	s->data = data;
	s->started = true;
	if (s->st == STREAM_OPEN)
		cm_stream__read_start(s);
}

/* --- closing --------------------------------------------------------------------------------- */

void cm_stream_close(struct cm_stream *s, int err)
{
	if (s->st == STREAM_LINGER || s->st == STREAM_CLOSING)
		return;
	if (s->st != STREAM_OPEN) {
		cm_stream__fail(s, err ? err : -ECANCELED);
		return;
	}
	if (!s->err)
		s->err = err;
	s->st = STREAM_LINGER;
	s->paused = false;
	cm_loop_timer_stop(s->l, &s->t_proto);
	cm_stream__sys_timer(s, s->o.linger_ms);
	/* keep reading, to discard what the peer still sends until it closes */
	if (!s->eof)
		cm_stream__read_start(s);
	flush(s);
}

/* --- accessors ------------------------------------------------------------------------------- */

void cm_stream_trim(struct cm_stream *s)
{
	if (s->out.len == 0)
		cm_buf_free(&s->out);
	if (s->tls && s->secured && s->st == STREAM_OPEN)
		(void)cm_tls_conn_trim(s->tls); /* -EBUSY: in use, kept */
}

void cm_stream_timer(struct cm_stream *s, uint64_t ms)
{
	if (s->st == STREAM_CLOSING || s->st == STREAM_LINGER)
		return;
	if (ms)
		cm_loop_timer_start(s->l, &s->t_proto, ms);
	else
		cm_loop_timer_stop(s->l, &s->t_proto);
}

void *cm_stream_data(const struct cm_stream *s)
{
	return s->data;
}

void cm_stream_set_data(struct cm_stream *s, void *data)
{
	s->data = data;
}

struct cm_loop *cm_stream_loop(const struct cm_stream *s)
{
	return s->l;
}

bool cm_stream_secured(const struct cm_stream *s)
{
	return s->secured;
}

bool cm_stream_is_tls(const struct cm_stream *s)
{
	return s->tls != NULL;
}

bool cm_stream_closing(const struct cm_stream *s)
{
	return s->st == STREAM_LINGER || s->st == STREAM_CLOSING;
}

const char *cm_stream_alpn(const struct cm_stream *s)
{
	return s->tls ? cm_tls_conn_alpn(s->tls) : "";
}

struct cm_tls_conn *cm_stream_tls(const struct cm_stream *s)
{
	return s->tls;
}

int cm_stream_peer(const struct cm_stream *s, struct sockaddr_storage *ss, socklen_t *len)
{
	if (!s->peerlen)
		return -ENOTCONN;
	memcpy(ss, &s->peer, s->peerlen);
	*len = s->peerlen;
	return 0;
}

int cm_stream_local(const struct cm_stream *s, struct sockaddr_storage *ss, socklen_t *len)
{
	int n = sizeof(*ss), r;

	r = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)ss, &n);
	if (r == 0)
		*len = (socklen_t)n;
	return r;
}

const char *cm_stream_peer_name(const struct cm_stream *s)
{
	return s->peer_name;
}
