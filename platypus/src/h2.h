/* h2.h - an HTTP/2 client connection over TLS on a cm_stream: the transport of the APNs provider
 * API. The only users of nghttp2 in platypus are h2.c and h2_session.c.
 *
 * A connection is a cm_stream (cm/stream.h) that resolves its host, connects (trying the
 * addresses in turn until one accepts, each with its share of the connect timeout) and runs TLS
 * (ALPN "h2" required, the name verified); it becomes ready when the server's first SETTINGS
 * frame has arrived. Frames go to the stream as they are made; the stream writes them once per
 * loop turn as TLS records, and 32 requests submitted in one turn are written at once. Requests
 * are multiplexed up to the server's SETTINGS_MAX_CONCURRENT_STREAMS (pp_h2_capacity() says how
 * many more fit; submitting beyond it is refused, never queued). Idle connections are kept alive
 * with PING; a PING unanswered in time, a connect or TLS failure, or the peer closing ends the
 * connection. GOAWAY stops new requests; the requests the server will not process (stream id
 * above its last_stream_id, refused streams, requests never sent) complete with -EAGAIN so the
 * caller may send them elsewhere at once.
 *
 * Every submitted request completes exactly once through its callback, never from within the
 * pp_h2_submit() that submitted it. Those still open when the connection ends (a failure,
 * pp_h2_conn_close()) complete from the stream's closed event, never from within a call of this
 * module, right before the connection's own closed event. That fires exactly once, after every
 * request has completed, from a libuv close callback; the connection's memory is freed right
 * after it returns.
 *
 * Single-threaded: every call from the loop's thread. Callbacks may call any function of this
 * module, including pp_h2_conn_close() on the connection that calls them.
 */
#ifndef PP_H2_H
#define PP_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_loop;
struct cm_tls;
struct pp_h2_conn;

struct pp_h2_config {
	const char *host; /* borrowed during alloc: name or address to connect to */
	uint16_t port;
	const char *tls_name;        /* borrowed during alloc: name to verify; NULL: host */
	struct cm_tls *tls;          /* borrowed; must outlive the connection; client context with
	                              * ALPN "h2" */
	unsigned max_streams;        /* our own cap on concurrent streams; 0: 1000 */
	uint64_t connect_timeout_ms; /* TCP + TLS + first SETTINGS; 0: 10 s */
	uint64_t request_timeout_ms; /* a request without an answer is cancelled; 0: 30 s */
	uint64_t ping_interval_ms;   /* PING after this long without traffic; 0: 60 s */
	uint64_t ping_timeout_ms;    /* ...which must be answered within; 0: 10 s */
	uint64_t tick_ms; /* how often deadlines are checked; 0: 1000 ms (tests use less; the loop's
	                   * timer wheel rounds up to CM_LOOP_TICK_MS) */
};

struct pp_h2_header {
	const char *name; /* lower case */
	const char *value;
};

/* An answer: borrowed for the duration of the callback. */
struct pp_h2_resp {
	int status;
	const char *body; /* NUL-terminated, at most 64 KiB kept */
	size_t body_len;
	const char *apns_id;     /* "apns-id" response header, "" when absent */
	long long retry_after_s; /* "retry-after" (seconds or HTTP-date) as seconds from now,
	                          * clamped; -1 when absent or unreadable */
};

/* err 0: answered (resp valid). -EAGAIN: the server did not process it (refused, above GOAWAY's
 * last stream, never sent): send it elsewhere. -ECONNRESET: the connection ended with the
 * request in flight (the server may have processed it). -ETIMEDOUT: no answer within
 * request_timeout_ms (the stream was cancelled). -ECANCELED: closed by pp_h2_conn_close().
 * -ENOMEM: answered, but the answer could not be kept (the server did process it). */
typedef void (*pp_h2_done_cb)(void *arg, int err, const struct pp_h2_resp *resp);

struct pp_h2_events {
	/* The connection can take requests: it became ready, or capacity came back (a stream
	 * finished, the server raised its limit). May be NULL. */
	void (*writable)(struct pp_h2_conn *c, void *arg);
	/* The server sent GOAWAY: no new requests here; open another connection. May be NULL. */
	void (*goaway)(struct pp_h2_conn *c, uint32_t error_code, const char *debug, void *arg);
	/* The connection is over; err is the reason (0 after a graceful close, -ECONNREFUSED,
	 * -ETIMEDOUT, -EPROTO for TLS/HTTP/2 failures, -ECONNRESET, ...); ever_ready says whether
	 * it got as far as the server's SETTINGS. c is freed when this returns. Required. */
	void (*closed)(struct pp_h2_conn *c, int err, bool ever_ready, void *arg);
};

/* Start connecting on loop l. ev and arg are borrowed and must stay valid until the closed
 * event. 0, -EINVAL (bad config), -ENOMEM, or a libuv error from starting the resolution (no
 * event will fire then and nothing is left to free). */
int pp_h2_conn_alloc(struct pp_h2_conn **out, struct cm_loop *l, const struct pp_h2_config *cfg,
                     const struct pp_h2_events *ev, void *arg);

/* Send a request. method/path/headers/body are copied. cb(arg, ...) is called exactly once,
 * never from within this call. 0; -EAGAIN no capacity now (not ready, the limit is reached,
 * GOAWAY received, closing); -EINVAL; -ENOMEM. */
int pp_h2_submit(struct pp_h2_conn *c, const char *method, const char *path,
                 const struct pp_h2_header *hdrs, size_t nhdrs, const void *body, size_t len,
                 pp_h2_done_cb cb, void *arg);

/* How many more requests fit now (0 until ready). */
unsigned pp_h2_capacity(const struct pp_h2_conn *c);

/* The server's SETTINGS_MAX_CONCURRENT_STREAMS as last received (1 before its SETTINGS). */
unsigned pp_h2_peer_max_streams(const struct pp_h2_conn *c);

/* Requests submitted and not yet completed. */
unsigned pp_h2_inflight(const struct pp_h2_conn *c);

/* Ready and not going away. */
bool pp_h2_usable(const struct pp_h2_conn *c);

/* Close. graceful: take no new requests, let those in flight finish (or time out), then send
 * GOAWAY and close; otherwise fail them at once with -ECANCELED. The closed event follows in
 * either case. Calling it again, or while closing, only makes a graceful close immediate. */
void pp_h2_conn_close(struct pp_h2_conn *c, bool graceful);

/* Send a PING now (tests). */
void pp_h2_ping(struct pp_h2_conn *c);

#endif
