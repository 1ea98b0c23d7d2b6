/* h2_int.h - what h2.c (connection, I/O, API) and h2_session.c (the nghttp2 session and its
 * callbacks) share. Private to those two files. */
#ifndef PP_H2_INT_H
#define PP_H2_INT_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "cm/buf.h"
#include "h2.h"

#define RESP_BODY_MAX 65536
#define READ_BUF      65536

enum state {
	ST_RESOLVING,
	ST_CONNECTING,
	ST_HANDSHAKE, /* TCP up: TLS, then the server's SETTINGS */
	ST_READY,
	ST_CLOSING, /* handles are being closed */
};

struct h2_stream {
	struct h2_stream *prev, *next;
	int32_t id;
	bool sent; /* HEADERS went out */
	uint64_t deadline;
	pp_h2_done_cb cb;
	void *arg;
	char *body; /* owned request body */
	size_t body_len, body_off;
	int status;
	long long retry_after;
	bool oom; /* the answer could not be kept: the stream ends with -ENOMEM */
	char apns_id[64];
	struct cm_buf resp; /* owned */
};

struct pp_h2_conn {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_prepare_t flusher; /* sends what callers submitted, once per loop turn */
	uv_getaddrinfo_t gai;
	uv_shutdown_t shut;
	int handles_open; /* close callbacks still to come (+ a pending getaddrinfo) */
	enum state st;
	bool ever_ready;
	bool goaway;   /* received: no new streams */
	bool draining; /* graceful close asked */
	bool dead;     /* failed/closed: no more calls into nghttp2 */
	bool alpn_checked;
	bool shutting; /* uv_shutdown in progress */
	bool quiet;    /* alloc failed: no closed event */
	int err;       /* first error */
	int32_t goaway_last_id;
	nghttp2_session *sess;   /* owned */
	struct cm_tls_conn *tls; /* owned */
	struct cm_buf out;       /* frames gathered for the next TLS record; owned */
	const struct pp_h2_events *ev;
	void *arg;
	struct pp_h2_config cfg; /* host/tls_name point into the strings below */
	char host[256];
	char tls_name[256];
	char authority[300];
	struct h2_stream *streams;      /* owned list of open streams, oldest first */
	struct h2_stream *streams_tail; /* the newest: appending must not walk the list */
	unsigned nstreams;
	unsigned unflushed; /* requests submitted since the last flush */
	uint64_t connect_deadline;
	struct addrinfo *addrs; /* owned: what the name resolved to, until connected */
	struct addrinfo *addr;  /* the address being tried, in addrs */
	uint64_t addr_deadline; /* when to give up on it for the next one */
	char addr_name[64];     /* of addr, for logs: "192.0.2.1:443", "[2001:db8::1]:443" */
	uint64_t last_rx;
	uint64_t ping_sent; /* 0: none outstanding */
	bool in_recv;       /* inside nghttp2_session_mem_recv */
	char rbuf[READ_BUF];
};

/* Complete a stream: unlink, call back, free. The callback may do anything to c. */
void pp_h2__stream_finish(struct pp_h2_conn *c, struct h2_stream *s, int err);
/* What a request that will not be answered on this connection becomes. */
int pp_h2__lost_error(const struct pp_h2_conn *c, const struct h2_stream *s, int err);
/* Create c's nghttp2 client session and queue our SETTINGS. 0, -ENOMEM. */
int pp_h2__session_open(struct pp_h2_conn *c);

#endif
