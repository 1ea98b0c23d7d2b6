/* listen_tcp.c - STUN/TURN over TCP and TLS (RFC 8656 client transports; relays stay UDP) on
 * cm_listener and cm_stream: the stream does the socket, TLS, output queue and error handling;
 * this file cuts its plaintext into STUN messages and ChannelData frames (icicle_framer), keeps
 * the deadlines, and admits connections.
 *
 * Admission: one cap for all the listeners of a worker (TCP and TLS together), and one per source
 * address over all workers (a cm_srclimit table they share). Both are checked in the listeners'
 * admission hook, so that the count of a worker is kept in one place whatever the number of its
 * listeners; a refused connection is reset at once by the listener, counted and logged here (one
 * line per LOG_EVERY_MS).
 *
 * Deadlines, on the stream's timer (the loop's wheel), keep slow clients from holding a slot for
 * nothing: the TLS handshake must finish within its deadline (the stream's own); once input has
 * started a frame, or arrived without completing one, the frame must be complete within
 * message_ms; a connection without an allocation is closed idle_ms after its last complete frame
 * (or its accept). Only complete frames count as progress, so trickling bytes buys nothing. */
#include "listen_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "batch.h"
#include "cm/err.h"
#include "cm/listener.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/stream.h"
#include "frame.h"
#include "icicle.h"

#define CONN_MAX_UNSENT (1u << 20) /* bytes waiting for the socket before we drop */
#define LOG_EVERY_MS    10000      /* one line per reason and interval, whatever the flood */
/* Plaintext handed to the framer at a time: its buffer is sized for a frame, not a 64 KiB read. */
#define FEED_MAX ICICLE_DGRAM_MAX

enum refusal {
	REFUSED_WORKER = 1, /* the worker holds max_conns */
	REFUSED_SOURCE,     /* the source holds its share */
	REFUSED_MEMORY,     /* the source could not be counted: not kept, not counted */
};

struct icicle_conn {
	struct icicle_streams *st; /* borrowed */
	struct cm_stream *s;       /* the stream owns itself; valid until its closed event */
	struct cm_list link;       /* in st->conns */
	struct icicle_client client;
	struct icicle_framer fr;    /* plaintext not yet framed */
	struct icicle_alloc *alloc; /* borrowed: the allocation owns itself */
	uint64_t last_msg;          /* loop ms of the last complete frame (accepted before one) */
	uint64_t msg_start; /* loop ms since when input waits to complete a frame; 0: none waits */
	uint64_t due;       /* loop ms the stream's timer is armed for; UINT64_MAX: not armed */
	uint64_t nframes;   /* complete frames so far */
	bool cut;           /* closed on purpose (deadline, rate limit, stop) */
};

static uint64_t now_ms(const struct icicle_streams *st)
{
	return uv_now(st->loop->uv);
}

/* --- admission --------------------------------------------------------------------------------
 */

static int admit(void *arg, const struct sockaddr *peer)
{
	struct icicle_streams *st = arg;
	int rc;

	if (st->cfg.max_conns && st->nconns >= st->cfg.max_conns) {
		st->refusal = REFUSED_WORKER;
		return -EUSERS;
	}
	if (st->cfg.per_source) {
		rc = cm_srclimit_take(st->cfg.per_source, peer);
		if (rc != 0) {
			st->refusal = rc == -EDQUOT ? REFUSED_SOURCE : REFUSED_MEMORY;
			return rc;
		}
	}
	st->nconns++;
	cm_metrics_gauge_add(st->cfg.mt->conns, 1);
	return 0;
}

static void release(void *arg, const struct sockaddr *peer)
{
	struct icicle_streams *st = arg;

	if (st->cfg.per_source)
		cm_srclimit_release(st->cfg.per_source, peer);
	st->nconns--;
	cm_metrics_gauge_add(st->cfg.mt->conns, -1);
}

/* The listener has reset a connection admit() refused: count it, and say so at most once per
 * LOG_EVERY_MS. */
static void on_refused(struct cm_listener *ln, enum cm_listener_refusal why,
                       const struct sockaddr *peer)
{
	struct icicle_streams *st = cm_listener_data(ln);
	const char *limit = "quotas.connections_per_worker";
	struct cm_counter *counter = st->cfg.mt->conns_refused;
	unsigned value = st->cfg.max_conns;
	uint64_t held;
	char src[64];

	(void)why; /* always the admission hook: the listeners have no cap of their own */
	if (st->refusal == REFUSED_MEMORY)
		return;
	if (st->refusal == REFUSED_SOURCE) {
		limit = "quotas.connections_per_source";
		counter = st->cfg.mt->conns_refused_source;
		value = st->cfg.max_per_source;
	}
	cm_metrics_inc(counter);
	if (cm_log_limit_pass(st->cfg.log_refused, now_ms(st), LOG_EVERY_MS, &held)) {
		cm_srclimit_format(peer, src, sizeof(src));
		CM_LOGW("listen",
		        "connection from %s refused: %s (%u) reached (%llu other refusal(s) since "
		        "the last line)",
		        src, limit, value, (unsigned long long)held);
	}
}

/* --- deadlines --------------------------------------------------------------------------------
 */

/* Arm the stream's timer for the first deadline that applies now. */
static void arm(struct icicle_conn *c)
{
	const struct icicle_streams_config *cfg = &c->st->cfg;
	uint64_t due = UINT64_MAX, now;

	if (cm_stream_is_tls(c->s) && !cm_stream_secured(c->s))
		return; /* the handshake deadline applies until it is over; it is the stream's */
	if (c->msg_start && cfg->message_ms)
		due = c->msg_start + cfg->message_ms;
	if (!c->alloc && cfg->idle_ms && c->last_msg + cfg->idle_ms < due)
		due = c->last_msg + cfg->idle_ms;
	if (due == c->due)
		return;
	c->due = due;
	now = now_ms(c->st);
	cm_stream_timer(c->s, due == UINT64_MAX ? 0 : due > now ? due - now : 1);
}

/* The connection's allocation ends with it. */
static void conn_end(struct icicle_conn *c)
{
	struct icicle_alloc *a = c->alloc;

	c->alloc = NULL;
	if (a)
		icicle_alloc_destroy(a);
}

/* Close a connection that missed a deadline, counted under counter; why (NULL: no line) is said
 * in one line per LOG_EVERY_MS. */
static void cut(struct icicle_conn *c, struct cm_counter *counter, const char *why)
{
	uint64_t held;

	c->cut = true;
	cm_metrics_inc(counter);
	if (why && cm_log_limit_pass(c->st->cfg.log_timeouts, now_ms(c->st), LOG_EVERY_MS, &held))
		CM_LOGI("listen",
		        "closed the connection of %s: it did not %s (%llu line(s) like this held "
		        "back)",
		        cm_stream_peer_name(c->s), why, (unsigned long long)held);
	conn_end(c);
	cm_stream_abort(c->s, -ETIMEDOUT, false);
}

static void on_timeout(struct cm_stream *s)
{
	struct icicle_conn *c = cm_stream_data(s);
	const struct icicle_streams_config *cfg = &c->st->cfg;
	uint64_t now = now_ms(c->st);

	c->due = UINT64_MAX;
	if (c->msg_start && cfg->message_ms && now >= c->msg_start + cfg->message_ms)
		cut(c, cfg->mt->conns_timeout_message,
		    "complete a message within quotas.message_timeout");
	else if (!c->alloc && cfg->idle_ms && now >= c->last_msg + cfg->idle_ms)
		/* Connections that never allocated (or whose allocation ended) and have gone
		 * quiet hold memory for nothing: an unauthenticated client may not park sockets
		 * here. */
		cut(c, cfg->mt->conns_timeout_idle, NULL);
	else
		arm(c);
}

static void on_secured(struct cm_stream *s)
{
	arm(cm_stream_data(s));
}

/* --- input ------------------------------------------------------------------------------------
 */

/* Hand every complete frame buffered to the message handler; then send what the relay queued by
 * reference into the framer's buffer before it can move. */
static void frames(struct icicle_conn *c)
{
	const struct icicle_streams_config *cfg = &c->st->cfg;
	uint8_t *p;
	size_t len;
	int rc;

	while (!cm_stream_closing(c->s) && (rc = icicle_framer_next(&c->fr, &p, &len)) != 0) {
		if (rc < 0) {
			cm_metrics_inc(cfg->mt->malformed);
			conn_end(c);
			cm_stream_abort(c->s, -EPROTO, false);
			break;
		}
		c->nframes++;
		if (cfg->message(cfg->arg, &c->client, p, len) != 0) {
			conn_end(c);
			cm_stream_abort(c->s, -EPROTO, false);
			break;
		}
	}
	icicle_batch_flush(cfg->batch);
}

/* After a read: only complete frames are progress. A read that completed one stops the message
 * clock (or restarts it for the part of the next frame already here); a read that completed
 * none starts it unless it runs already, so that bytes trickled in one by one run out of time. */
static void note_input(struct icicle_conn *c, uint64_t frames_before)
{
	uint64_t now = now_ms(c->st);

	if (c->nframes != frames_before) {
		c->last_msg = now;
		c->msg_start = icicle_framer_pending(&c->fr) > 0 ? now : 0;
	} else if (c->msg_start == 0) {
		c->msg_start = now;
	}
	arm(c);
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct icicle_conn *c = cm_stream_data(s);
	uint64_t before = c->nframes;

	while (len > 0 && !cm_stream_closing(s)) {
		size_t n = len < FEED_MAX ? len : FEED_MAX;

		if (icicle_framer_feed(&c->fr, data, n) != 0) {
			conn_end(c);
			cm_stream_abort(s, -EPROTO, false);
			return;
		}
		data += n;
		len -= n;
		frames(c);
	}
	if (!cm_stream_closing(s))
		note_input(c, before);
}

static void on_eof(struct cm_stream *s)
{
	struct icicle_conn *c = cm_stream_data(s);

	conn_end(c);
	cm_stream_close(s, -ECONNRESET);
}

static void on_closed(struct cm_stream *s, int err)
{
	struct icicle_conn *c = cm_stream_data(s);
	const struct icicle_streams_config *cfg = &c->st->cfg;
	uint64_t held;

	/* The only deadline of the stream's own a server stream has is the TLS handshake's. */
	if (!c->cut && err == -ETIMEDOUT && cm_stream_is_tls(s) && !cm_stream_secured(s)) {
		cm_metrics_inc(cfg->mt->conns_timeout_handshake);
		if (cm_log_limit_pass(cfg->log_timeouts, now_ms(c->st), LOG_EVERY_MS, &held))
			CM_LOGI("listen",
			        "closed the connection of %s: it did not finish the TLS handshake "
			        "within quotas.tls_handshake_timeout (%llu line(s) like this held "
			        "back)",
			        cm_stream_peer_name(s), (unsigned long long)held);
	}
	conn_end(c);
	cm_list_remove(&c->link);
	icicle_framer_close(&c->fr);
	free(c);
}

static const struct cm_stream_events conn_events = {
    .read = on_read,
    .eof = on_eof,
    .secured = on_secured,
    .timeout = on_timeout,
    .closed = on_closed,
};

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	struct icicle_streams *st = cm_listener_data(ln);
	struct icicle_conn *c = calloc(1, sizeof(*c));
	socklen_t len;

	if (!c) {
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	c->st = st;
	c->s = s;
	cm_list_init(&c->link);
	icicle_framer_init(&c->fr);
	c->client.tp = cm_stream_is_tls(s) ? ICICLE_TLS : ICICLE_TCP;
	c->client.conn = c;
	if (cm_stream_peer(s, &c->client.addr, &len) != 0) {
		free(c);
		cm_stream_abort(s, -ENOTCONN, false); /* the peer is gone already */
		return;
	}
	c->client.addrlen = len;
	if (cm_stream_local(s, &c->client.local, &len) == 0)
		c->client.has_local = true;
	c->last_msg = now_ms(st);
	c->due = UINT64_MAX;
	cm_list_insert_tail(&st->conns, &c->link);
	cm_stream_start(s, &conn_events, c);
	arm(c);
}

static const struct cm_listener_events listener_events = {
    .accept = on_accept,
    .refused = on_refused,
};

/* --- the worker's listeners -------------------------------------------------------------------
 */

void icicle_streams_init(struct icicle_streams *st, struct cm_loop *l,
                         const struct icicle_streams_config *cfg)
{
	memset(st, 0, sizeof(*st));
	st->cfg = *cfg;
	st->loop = l;
	cm_list_init(&st->conns);
}

int icicle_streams_listen(struct icicle_streams *st, const struct sockaddr *sa, socklen_t len,
                          bool tls, char *err, size_t errlen)
{
	struct cm_listener_config lc = {
	    .addr = sa,
	    .addrlen = len,
	    .reuseport = true,
	    .stream =
	        {
	            .tls = tls ? st->cfg.tls : NULL,
	            .handshake_ms = st->cfg.handshake_ms,
	            .max_unsent = CONN_MAX_UNSENT,
	            .nodelay = true,
	            .log_mod = "listen",
	        },
	    .source_admit = admit,
	    .source_release = release,
	    .source_arg = st,
	};
	const char *kind = tls ? "tls" : "tcp";
	struct cm_listener *ln;
	char name[64];
	int rc;

	cm_stream_addr_format(sa, name, sizeof(name));
	if (tls && !st->cfg.tls)
		return cm_errf(err, errlen, -EINVAL, "tls %s: no certificate", name);
	if (st->nln == st->lncap) {
		size_t ncap = st->lncap ? 2 * st->lncap : 4;
		struct cm_listener **v = realloc(st->ln, ncap * sizeof(*v));

		if (!v)
			return cm_errf(err, errlen, -ENOMEM, "%s %s: out of memory", kind, name);
		st->ln = v;
		st->lncap = ncap;
	}
	rc = cm_listener_open(&ln, st->loop, &lc, &listener_events, st);
	if (rc != 0)
		return cm_errf(err, errlen, rc, "%s %s: %s", kind, name, uv_strerror(rc));
	st->ln[st->nln++] = ln;
	return 0;
}

void icicle_streams_close(struct icicle_streams *st)
{
	struct cm_list *n;
	size_t i;

	if (st->closing)
		return;
	st->closing = true;
	for (i = 0; i < st->nln; i++)
		cm_listener_close(st->ln[i], NULL, NULL);
	st->nln = 0;
	/* each connection leaves the list in its closed event, from a close callback */
	cm_list_foreach(n, &st->conns)
	{
		struct icicle_conn *c = cm_list_entry(n, struct icicle_conn, link);

		c->cut = true;
		conn_end(c);
		cm_stream_abort(c->s, 0, false);
	}
}

void icicle_streams_free(struct icicle_streams *st)
{
	free(st->ln);
	st->ln = NULL;
	st->nln = st->lncap = 0;
}

unsigned icicle_streams_count(const struct icicle_streams *st)
{
	return st->nconns;
}

/* --- a connection -----------------------------------------------------------------------------
 */

void icicle_conn_close(struct icicle_conn *c)
{
	c->cut = true;
	conn_end(c);
	cm_stream_close(c->s, 0);
}

void icicle_conn_set_alloc(struct icicle_conn *c, struct icicle_alloc *a)
{
	c->alloc = a;
	if (!cm_stream_closing(c->s))
		arm(c);
}

struct icicle_alloc *icicle_conn_alloc(const struct icicle_conn *c)
{
	return c->alloc;
}

void icicle_conn__send(struct icicle_conn *c, struct icicle_batch *b, const uint8_t *hdr,
                       size_t hlen, const uint8_t *payload, size_t plen, size_t pad)
{
	uint8_t frame[ICICLE_TX_INLINE + ICICLE_DGRAM_MAX + 4];
	const uint8_t *out = hdr;
	int rc;

	if (hlen > ICICLE_TX_INLINE || plen > ICICLE_DGRAM_MAX || pad > 3) {
		icicle_batch_dropped(b, ICICLE_DROP);
		return;
	}
	/* One write per frame: over the queue limit the whole frame is refused, never a part. */
	if (plen || pad) {
		memcpy(frame, hdr, hlen);
		if (plen)
			memcpy(frame + hlen, payload, plen);
		memset(frame + hlen + plen, 0, pad);
		out = frame;
	}
	rc = cm_stream_write(c->s, out, hlen + plen + pad);
	if (rc == -ENOBUFS) {
		icicle_batch_dropped(b, ICICLE_DROP);
		return;
	}
	/* One TLS record per frame: clients (coturn's among them) read a record at a time and
	 * take it for one message. Plain TCP output is gathered until the end of the loop turn. */
	if (rc == 0 && cm_stream_is_tls(c->s))
		cm_stream_flush(c->s);
}
