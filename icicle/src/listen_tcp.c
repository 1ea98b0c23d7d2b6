/* listen_tcp.c - STUN/TURN over TCP and TLS (RFC 8656 client transports; relays stay UDP).
 * Each worker has its own listening socket per address (SO_REUSEPORT) and owns the connections
 * it accepts, up to quotas.connections_per_worker, and up to quotas.connections_per_source per
 * source address across all workers (one shared cm_srclimit table). The byte stream is cut into
 * STUN messages and ChannelData frames (padded to 4 bytes) by icicle_frame_len(); TLS runs
 * through cm_tls_conn's memory BIOs in between.
 *
 * Deadlines, checked by the worker's sweep once a second, keep slow clients from holding a
 * connection slot for nothing: the TLS handshake must finish within quotas.tls_handshake_timeout
 * of the accept; once input has started a frame (or arrived without completing one), the frame
 * must be complete within quotas.message_timeout; a connection without an allocation is closed
 * CONN_IDLE_MS after its last complete frame. Only complete frames count as progress, so
 * trickling bytes buys nothing. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/tls.h"
#include "frame.h"

#define CONN_WQUEUE_MAX (1u << 20) /* bytes waiting for the socket before we drop */
#define CONN_IDLE_MS    30000      /* a connection without allocation lives this long idle */
#define LOG_EVERY_MS    10000      /* one line per reason and interval, whatever the flood */

struct icicle_tcp {
	struct icicle_worker *w; /* borrowed */
	uv_tcp_t tcp;
	bool tls;
	struct sockaddr_storage bound;
};

struct icicle_conn {
	struct icicle_worker *w; /* borrowed */
	uv_tcp_t tcp;
	struct icicle_conn *next, *prev; /* the worker's list */
	struct icicle_client client;
	struct cm_tls_conn *tls;    /* owned; NULL for plain TCP */
	struct icicle_framer fr;    /* plaintext not yet framed */
	struct icicle_alloc *alloc; /* borrowed: the allocation owns itself */
	size_t queued;              /* bytes handed to uv_write and not yet written */
	uint64_t accepted;          /* loop ms */
	uint64_t last_msg;          /* loop ms of the last complete frame (accepted before one) */
	uint64_t msg_start; /* loop ms since when input waits to complete a frame; 0: none waits */
	uint64_t nframes;   /* complete frames so far */
	bool hs_done;       /* the TLS handshake is over (plain TCP: from the start) */
	bool counted;       /* counted in the per-source table */
	bool closing;
};

struct wreq {
	uv_write_t req;
	struct icicle_conn *c;
	size_t len;
	uint8_t data[];
};

static void conn_closed(uv_handle_t *h)
{
	struct icicle_conn *c = h->data;

	c->w->handles--;
	cm_tls_conn_free(c->tls);
	icicle_framer_close(&c->fr);
	free(c);
}

static void conn_close(struct icicle_conn *c)
{
	struct icicle_worker *w = c->w;

	if (c->closing)
		return;
	c->closing = true;
	if (c->alloc)
		icicle_alloc_destroy(c->alloc);
	if (c->counted)
		cm_srclimit_release(w->ic->per_source, (const struct sockaddr *)&c->client.addr);
	w->nconns--;
	cm_metrics_gauge_add(w->ic->metrics.conns, -1);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

void icicle_conn_abort(struct icicle_conn *c)
{
	conn_close(c);
}

void icicle_conn_close_all(struct icicle_worker *w)
{
	while (w->conns)
		conn_close(w->conns);
}

void icicle_conn_sweep(struct icicle_worker *w)
{
	const struct icicle_quota_config *q = &w->ic->cfg->quotas;
	struct icicle_metrics *mt = &w->ic->metrics;
	uint64_t now = uv_now(&w->loop), held;
	struct icicle_conn *c = w->conns, *next;
	unsigned msg = 0, hs = 0;

	for (; c; c = next) {
		next = c->next;
		if (!c->hs_done) {
			if (q->tls_handshake_timeout &&
			    now - c->accepted >= q->tls_handshake_timeout) {
				hs++;
				cm_metrics_inc(mt->conns_timeout_handshake);
				conn_close(c);
			}
		} else if (c->msg_start && q->message_timeout &&
		           now - c->msg_start >= q->message_timeout) {
			msg++;
			cm_metrics_inc(mt->conns_timeout_message);
			conn_close(c);
		} else if (!c->alloc && now - c->last_msg > CONN_IDLE_MS) {
			/* Connections that never allocated (or whose allocation ended) and have
			 * gone quiet hold memory for nothing: an unauthenticated client may not
			 * park sockets here. */
			cm_metrics_inc(mt->conns_timeout_idle);
			conn_close(c);
		}
	}
	if ((msg || hs) && cm_log_limit_pass(&w->ic->log_timeouts, now, LOG_EVERY_MS, &held))
		CM_LOGI(
		    "listen",
		    "closed %u connection(s) that did not complete a message within "
		    "quotas.message_timeout and %u that did not finish the TLS handshake within "
		    "quotas.tls_handshake_timeout (%llu line(s) like this held back)",
		    msg, hs, (unsigned long long)held);
}

void icicle_conn_set_alloc(struct icicle_conn *c, struct icicle_alloc *a)
{
	c->alloc = a;
}

struct icicle_alloc *icicle_conn_alloc(const struct icicle_conn *c)
{
	return c->alloc;
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	struct icicle_conn *c = wr->c;

	c->queued -= wr->len;
	free(wr);
	if (status < 0)
		conn_close(c);
}

/* Write raw bytes (already encrypted for TLS) to the socket: try at once, queue the rest. */
static void raw_write(struct icicle_conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
	size_t total = 0, done, off = 0;
	struct wreq *wr;
	uv_buf_t b;
	unsigned i;
	int n;

	for (i = 0; i < nbufs; i++)
		total += bufs[i].len;
	if (total == 0 || c->closing)
		return;
	if (c->queued == 0) {
		n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
		if (n < 0 && n != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == total)
			return;
	} else {
		done = 0;
	}
	if (c->queued + total - done > CONN_WQUEUE_MAX) {
		c->w->st_dropped++;
		if (done == 0)
			return;
		/* part of a frame is out: the stream cannot be resynchronised */
		conn_close(c);
		return;
	}
	wr = malloc(sizeof(*wr) + total - done);
	if (!wr) {
		conn_close(c);
		return;
	}
	for (i = 0; i < nbufs; i++) {
		size_t skip = done > bufs[i].len ? bufs[i].len : done;

		done -= skip;
		memcpy(wr->data + off, bufs[i].base + skip, bufs[i].len - skip);
		off += bufs[i].len - skip;
	}
	wr->c = c;
	wr->len = off;
	b = uv_buf_init((char *)wr->data, (unsigned)off);
	if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
		free(wr);
		conn_close(c);
		return;
	}
	c->queued += off;
}

static void tls_flush(struct icicle_conn *c)
{
	uint8_t buf[16384];
	size_t n;
	uv_buf_t b;

	while ((n = cm_tls_conn_take(c->tls, buf, sizeof(buf))) > 0) {
		b = uv_buf_init((char *)buf, (unsigned)n);
		raw_write(c, &b, 1);
		if (c->closing)
			return;
	}
}

void icicle_conn_send3(struct icicle_conn *c, const uint8_t *hdr, size_t hlen,
                       const uint8_t *payload, size_t plen, size_t pad)
{
	static const uint8_t zeros[4];
	uv_buf_t b[3];
	unsigned n = 0;

	if (c->closing)
		return;
	if (c->tls) {
		if (c->queued > CONN_WQUEUE_MAX) {
			c->w->st_dropped++;
			return;
		}
		uint8_t frame[ICICLE_TX_INLINE + ICICLE_DGRAM_MAX + 4];

		/* One record per frame: clients (coturn's among them) read a record at a time. */
		if (hlen > ICICLE_TX_INLINE || plen > ICICLE_DGRAM_MAX || pad > 3) {
			c->w->st_dropped++;
			return;
		}
		memcpy(frame, hdr, hlen);
		if (plen)
			memcpy(frame + hlen, payload, plen);
		memset(frame + hlen + plen, 0, pad);
		if (cm_tls_conn_write(c->tls, frame, hlen + plen + pad) != 0) {
			conn_close(c);
			return;
		}
		tls_flush(c);
		return;
	}
	b[n++] = uv_buf_init((char *)(uintptr_t)hdr, (unsigned)hlen);
	if (plen)
		b[n++] = uv_buf_init((char *)(uintptr_t)payload, (unsigned)plen);
	if (pad)
		b[n++] = uv_buf_init((char *)(uintptr_t)zeros, (unsigned)pad);
	raw_write(c, b, n);
}

void icicle_conn_send(struct icicle_conn *c, const uint8_t *buf, size_t len)
{
	icicle_conn_send3(c, buf, len, NULL, 0, 0);
}

/* Handle every complete frame buffered; then send what the relay queued by reference into the
 * framer's buffer before it can move. */
static void frames(struct icicle_conn *c)
{
	struct icicle_worker *w = c->w;
	uint8_t *p;
	size_t len;
	int rc;

	while (!c->closing && (rc = icicle_framer_next(&c->fr, &p, &len)) != 0) {
		if (rc > 0)
			c->nframes++;
		if (rc < 0 || ((p[0] & 0xc0) == 0 && icicle_stun_check_header(p, len) != 0)) {
			cm_metrics_inc(w->ic->metrics.malformed);
			conn_close(c);
			break;
		}
		if ((p[0] & 0xc0) == 0x40) {
			if (c->alloc)
				icicle_relay_from_client_chdata(w, &c->client, c->alloc, p, len);
		} else if (icicle_stun_type(ICICLE_M_SEND, ICICLE_C_INDICATION) ==
		           ((p[0] << 8) | p[1])) {
			icicle_relay_send_ind(w, &c->client, p, len);
		} else {
			icicle_turn_handle(w, &c->client, p, len);
		}
	}
	icicle_tx_flush(w);
}

static int feed(struct icicle_conn *c, const void *p, size_t n)
{
	int rc = icicle_framer_feed(&c->fr, p, n);

	if (rc != 0) {
		conn_close(c);
		return rc;
	}
	frames(c);
	return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct icicle_conn *c = h->data;

	(void)suggested;
	/* one worker-wide buffer: reads are handled to the end before the next one */
	*buf = uv_buf_init((char *)c->w->rx->buf[0], (unsigned)sizeof(c->w->rx->buf[0]));
}

/* After a read: only complete frames are progress. A read that completed one stops the message
 * clock (or restarts it for the part of the next frame already here); a read that completed
 * none starts it unless it runs already, so that bytes trickled in one by one, or TLS records
 * that never make a frame, run out of time. */
static void note_input(struct icicle_conn *c, uint64_t frames_before)
{
	uint64_t now = uv_now(&c->w->loop);

	if (c->closing)
		return;
	if (c->nframes != frames_before) {
		c->last_msg = now;
		c->msg_start = icicle_framer_pending(&c->fr) > 0 ? now : 0;
	} else if (c->msg_start == 0) {
		c->msg_start = now;
	}
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct icicle_conn *c = s->data;
	uint8_t plain[ICICLE_DGRAM_MAX];
	uint64_t before;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	before = c->nframes;
	if (!c->tls) {
		if (feed(c, buf->base, (size_t)nread) == 0)
			note_input(c, before);
		return;
	}
	if (cm_tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
		conn_close(c);
		return;
	}
	for (;;) {
		ssize_t n = cm_tls_conn_read(c->tls, plain, sizeof(plain));

		if (n < 0) {
			tls_flush(c);
			conn_close(c);
			return;
		}
		if (n == 0)
			break;
		if (feed(c, plain, (size_t)n) != 0 || c->closing)
			return;
	}
	tls_flush(c);
	if (c->closing)
		return;
	if (!c->hs_done) {
		/* the handshake deadline applies until it is over; it is not a message */
		if (!cm_tls_conn_established(c->tls))
			return;
		c->hs_done = true;
		if (c->nframes == before) {
			c->msg_start = icicle_framer_pending(&c->fr) > 0 ? uv_now(&c->w->loop) : 0;
			return;
		}
	}
	note_input(c, before);
}

/* Close a connection just accepted, with a reset (SO_LINGER 0) so that the socket leaves no
 * TIME_WAIT behind on this side; count it, and say so at most once per LOG_EVERY_MS. */
static void refuse(struct icicle_conn *c, struct cm_counter *counter, const char *why,
                   long long limit)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct icicle *ic = c->w->ic;
	uv_os_fd_t fd;
	uint64_t held;
	char src[64];

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	cm_metrics_inc(counter);
	if (cm_log_limit_pass(&ic->log_refused, uv_now(&c->w->loop), LOG_EVERY_MS, &held)) {
		cm_srclimit_format((const struct sockaddr *)&c->client.addr, src, sizeof(src));
		CM_LOGW(
		    "listen",
		    "connection from %s refused: %s (%lld) reached (%llu other refusal(s) since "
		    "the last line)",
		    src, why, limit, (unsigned long long)held);
	}
	conn_close(c);
}

static void accept_cb(uv_stream_t *server, int status)
{
	struct icicle_tcp *t = server->data;
	struct icicle_worker *w = t->w;
	const struct icicle_quota_config *q = &w->ic->cfg->quotas;
	size_t cap = (size_t)q->connections_per_worker;
	struct icicle_conn *c;
	int len, rc;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->w = w;
	c->accepted = c->last_msg = uv_now(&w->loop);
	c->hs_done = !t->tls;
	icicle_framer_init(&c->fr);
	if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	w->handles++;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	cm_metrics_gauge_add(w->ic->metrics.conns, 1);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	c->client.tp = t->tls ? ICICLE_TLS : ICICLE_TCP;
	c->client.conn = c;
	len = sizeof(c->client.addr);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->client.addr, &len) != 0) {
		conn_close(c);
		return;
	}
	c->client.addrlen = (socklen_t)len;
	/* Over a cap: accepted only to be closed at once. */
	if (cap && w->nconns > cap) {
		refuse(c, w->ic->metrics.conns_refused, "quotas.connections_per_worker",
		       q->connections_per_worker);
		return;
	}
	if (w->ic->per_source) {
		rc = cm_srclimit_take(w->ic->per_source, (const struct sockaddr *)&c->client.addr);
		if (rc == -EDQUOT) {
			refuse(c, w->ic->metrics.conns_refused_source,
			       "quotas.connections_per_source", q->connections_per_source);
			return;
		}
		if (rc != 0) {
			conn_close(c); /* out of memory: it cannot be counted, so it is not kept */
			return;
		}
		c->counted = true;
	}
	len = sizeof(c->client.local);
	if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->client.local, &len) == 0)
		c->client.has_local = true;
	(void)uv_tcp_nodelay(&c->tcp, 1);
	if (t->tls && cm_tls_conn_alloc(&c->tls, w->ic->tls, NULL) != 0) {
		conn_close(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
		conn_close(c);
}

static void tcp_closed(uv_handle_t *h)
{
	struct icicle_tcp *t = h->data;

	t->w->handles--;
	free(t);
}

void icicle_tcp_close(struct icicle_tcp *t)
{
	if (t)
		uv_close((uv_handle_t *)&t->tcp, tcp_closed);
}

int icicle_tcp_open(struct icicle_worker *w, const struct sockaddr *sa, socklen_t len, bool tls,
                    struct icicle_tcp **out)
{
	struct icicle_tcp *t;
	int fd, one = 1, rc;

	*out = NULL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	t->w = w;
	t->tls = tls;
	memcpy(&t->bound, sa, len);
	rc = uv_tcp_init(&w->loop, &t->tcp);
	if (rc != 0) {
		close(fd);
		free(t);
		return rc;
	}
	t->tcp.data = t;
	w->handles++;
	*out = t; /* from here on, icicle_tcp_close() releases it */
	rc = uv_tcp_open(&t->tcp, fd);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return uv_listen((uv_stream_t *)&t->tcp, 511, accept_cb);
}
