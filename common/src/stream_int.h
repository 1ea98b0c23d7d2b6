/* stream_int.h - what stream.c, stream_connect.c, listener.c and loop.c share about streams.
 * Private to common/. */
#ifndef CM_STREAM_INT_H
#define CM_STREAM_INT_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/list.h"
#include "cm/loop.h"
#include "cm/stream.h"

enum stream_state {
	STREAM_RESOLVING,  /* outgoing: waiting for the resolver */
	STREAM_CONNECTING, /* outgoing: TCP connect under way */
	STREAM_OPEN,       /* reading and writing (TLS may still be in its handshake) */
	STREAM_LINGER,     /* closing gracefully: sending what is left, then reading to the end */
	STREAM_CLOSING,    /* the TCP handle is closing; freed in its close callback */
};

/* Outgoing streams only, while connecting. */
struct stream_connect {
	uv_getaddrinfo_t gai;
	uv_connect_t req;
	struct addrinfo *addrs; /* owned (uv_freeaddrinfo), from the resolver */
	struct addrinfo *addr;  /* the one being tried */
	struct addrinfo literal;
	struct sockaddr_storage literal_sa;
	uint64_t deadline;      /* loop ms: the whole connect */
	uint64_t addr_deadline; /* loop ms: this address's share */
	char host[256];
	bool switching; /* the handle of a failed address is closing; the next one follows */
};

struct cm_stream {
	struct cm_loop *l; /* borrowed */
	uv_tcp_t tcp;
	uv_shutdown_t shut;
	const struct cm_stream_events *ev; /* borrowed; NULL until started */
	void *data;                        /* the protocol's; borrowed */
	struct cm_stream_opts o;           /* server_name points to our own copy */
	struct cm_tls_conn *tls;           /* owned */
	struct stream_connect *conn;       /* owned while connecting */
	struct cm_buf out;                 /* plaintext queued for the end of the turn; owned */
	size_t inflight;                   /* bytes in write requests not completed */
	struct cm_list flush_link;         /* in l->flushq */
	struct cm_loop_timer t_proto;      /* the protocol's timer */
	struct cm_loop_timer t_sys;        /* connect, handshake or linger deadline */
	enum stream_state st;
	int err;  /* the first failure, or what close was given */
	int refs; /* the handle's close callback, a pending resolution */
	bool client, reading, paused, eof, full, secured, shut_sent, shut_done;
	bool tls_shut;  /* our close_notify is queued (after the last plaintext) */
	bool want_pump; /* TLS plaintext may be waiting for a resumed reader */
	bool in_pump;   /* handing plaintext over now */
	bool handshaking;
	bool started;
	bool rst;
	char *server_name; /* owned */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_name[64];
	/* the listener that accepted it: told when the stream is gone */
	void (*release)(struct cm_stream *s, void *arg);
	void *release_arg;
};

/* The loop's end-of-turn work for streams (the prepare and check handles of cm_loop). */
void cm_stream__run_queue(struct cm_loop *l);
/* The loop is closing: stop the end-of-turn handles. */
void cm_stream__loop_closing(struct cm_loop *l);

/* stream.c for stream_connect.c */
struct cm_stream *cm_stream__new(struct cm_loop *l, const struct cm_stream_opts *opts);
void cm_stream__fail(struct cm_stream *s, int err);
void cm_stream__read_start(struct cm_stream *s);
void cm_stream__connected(struct cm_stream *s);
void cm_stream__unref(struct cm_stream *s);
void cm_stream__sys_timer(struct cm_stream *s, uint64_t ms);
/* stream_connect.c for stream.c */
void cm_stream__connect_timeout(struct cm_stream *s);
void cm_stream__connect_free(struct cm_stream *s);

#endif
