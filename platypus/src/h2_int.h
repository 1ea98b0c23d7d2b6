/* h2_int.h - what h2.c (connection, output, API) and h2_session.c (the nghttp2 session and its
 * callbacks) share. Private to those two files. */
#ifndef PP_H2_INT_H
#define PP_H2_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "cm/buf.h"
#include "cm/list.h"
#include "h2.h"

#define RESP_BODY_MAX 65536

enum state {
	ST_CONNECTING, /* the stream resolves, connects and runs TLS */
	ST_HANDSHAKE,  /* TLS up: our preface went out, waiting for the server's SETTINGS */
	ST_READY,
};

struct h2_stream {
	struct cm_list link; /* in the connection's streams, oldest first */
	int32_t id;
	bool sent; /* HEADERS went to the transport */
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
	struct cm_loop *loop; /* borrowed */
	struct cm_stream *s;  /* the transport; freed by itself after its closed event */
	enum state st;
	bool ever_ready;
	bool goaway;   /* received: no new streams */
	bool draining; /* graceful close asked */
	bool dead;     /* failed or closing: no more calls into nghttp2 */
	bool in_recv;  /* inside nghttp2_session_mem_recv: output waits until it returns */
	bool in_pump;  /* inside nghttp2_session_mem_send: the running pump takes new frames too */
	int err;       /* first error */
	int32_t goaway_last_id;
	nghttp2_session *sess; /* owned */
	const struct pp_h2_events *ev;
	void *arg;
	struct pp_h2_config cfg; /* host/tls_name point into the strings below */
	char host[256];
	char tls_name[256];
	char authority[300];
	struct cm_list streams; /* owned h2_stream, in submission order */
	unsigned nstreams;
	unsigned unflushed; /* requests submitted since the output last went out */
	size_t queued;      /* bytes of frames given to the stream since then */
	uint64_t connect_deadline;
	uint64_t last_rx;
	uint64_t ping_sent; /* 0: none outstanding */
};

/* Complete a stream: unlink, call back, free. The callback may do anything to c. */
void pp_h2__stream_finish(struct pp_h2_conn *c, struct h2_stream *s, int err);
/* What a request that will not be answered on this connection becomes. */
int pp_h2__lost_error(const struct pp_h2_conn *c, const struct h2_stream *s, int err);
/* Create c's nghttp2 client session and queue our SETTINGS. 0, -ENOMEM. */
int pp_h2__session_open(struct pp_h2_conn *c);

#endif
