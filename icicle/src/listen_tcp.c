/* listen_tcp.c - STUN/TURN over TCP and TLS (RFC 8656 client transports; relays stay UDP).
 * Each worker has its own listening socket per address (SO_REUSEPORT) and owns the connections
 * it accepts, up to quotas.connections_per_worker. The byte stream is cut into STUN messages and
 * ChannelData frames (padded to 4 bytes) by icicle_frame_len(); TLS runs through cm_tls_conn's
 * memory BIOs in between. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/tls.h"
#include "frame.h"

#define CONN_WQUEUE_MAX (1u << 20) /* bytes waiting for the socket before we drop */
#define CONN_IDLE_MS    30000      /* a connection without allocation lives this long idle */

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
	uint64_t last_read;         /* loop ms */
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
	w->nconns--;
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
	uint64_t now = uv_now(&w->loop);
	struct icicle_conn *c = w->conns, *next;

	/* Connections that never allocated (or whose allocation ended) and have gone quiet hold
	 * memory for nothing: an unauthenticated client may not park sockets here. */
	for (; c; c = next) {
		next = c->next;
		if (!c->alloc && now - c->last_read > CONN_IDLE_MS)
			conn_close(c);
	}
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

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct icicle_conn *c = s->data;
	uint8_t plain[ICICLE_DGRAM_MAX];

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	c->last_read = uv_now(&c->w->loop);
	if (!c->tls) {
		(void)feed(c, buf->base, (size_t)nread);
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
}

static void accept_cb(uv_stream_t *server, int status)
{
	struct icicle_tcp *t = server->data;
	struct icicle_worker *w = t->w;
	size_t cap = (size_t)w->ic->cfg->quotas.connections_per_worker;
	struct icicle_conn *c;
	int len;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->w = w;
	c->last_read = uv_now(&w->loop);
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
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	if (cap && w->nconns > cap) {
		/* Over the cap: accepted only to be closed at once, with a reset (SO_LINGER 0) so
		 * that the socket leaves no TIME_WAIT behind on this side. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		uv_os_fd_t fd;

		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		cm_metrics_inc(w->ic->metrics.conns_refused);
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
