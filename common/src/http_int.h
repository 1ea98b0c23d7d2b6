/* http_int.h - the HTTP server's internals (cm/http.h), shared by the http*.c files, the tests
 * and the fuzz targets. Neither <http_parser.h> nor <nghttp2/nghttp2.h> is included here: http1.c
 * and http2.c are their only users.
 *
 * Layers: http_server.c (listener, routes, metrics, the answers the server gives itself) ->
 * http_conn.c (a connection: protocol detection, request queue, TLS and libuv I/O, limits) ->
 * http1.c / http2.c (bytes <-> requests and responses) ; http_req.c (the request object). */
#ifndef CM_HTTP_INT_H
#define CM_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/http.h"
#include "cm/list.h"
#include "cm/log.h"

#define CM_HTTP_TEXT              "text/plain; charset=utf-8"
#define CM_HTTP_DEF_HEADER_BYTES  (8 * 1024)
#define CM_HTTP_DEF_BODY_BYTES    (64 * 1024)
#define CM_HTTP_DEF_MAX_CONNS     64
#define CM_HTTP_DEF_IDLE_MS       10000
#define CM_HTTP_DEF_MAX_STREAMS   100
#define CM_HTTP_DEF_MAX_IN_FLIGHT 16
#define CM_HTTP_DEF_RECEIVING     (1024 * 1024)
#define CM_HTTP_WRITE_HIGH        (256 * 1024) /* unsent bytes before a connection stops reading */
#define CM_HTTP_FLUSH_BATCH       32   /* late answers gathered before they are sent anyway */
#define CM_HTTP_H2_SLICE          2048 /* HTTP/2 input handed to the session at a time */
#define CM_HTTP_MAX_REQS_PER_WAKE                                                                  \
	32 /* requests (HTTP/2: streams opened, even if reset at once)                             \
	    * parsed before yielding to other sockets */
#define CM_HTTP_METHOD_MAX 32
/* Memory given back to the system after bursts: once this many connections have closed, the
 * heap is trimmed CM_HTTP_TRIM_DELAY_MS later (at most that often). glibc keeps what a burst of
 * connections freed: 40 MB after a churn of HTTP/2 connections that nothing else would reuse. */
#define CM_HTTP_TRIM_AFTER     64
#define CM_HTTP_TRIM_DELAY_MS  1000
#define CM_HTTP_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CM_HTTP_H2_PREFACE_LEN 24

struct cm_http_conn;
struct cm_http_h1;
struct cm_http_h2;
struct cm_srclimit;
struct cm_counter;
struct cm_gauge;
struct cm_tls_conn;

/* --- requests (http_req.c) ------------------------------------------------------------------- */

enum cm_http_req_state {
	CM_HTTP_REQ_RECEIVING, /* owned by the connection, head or body still arriving */
	CM_HTTP_REQ_READY,     /* complete, waiting to be dispatched (HTTP/2) */
	CM_HTTP_REQ_HANDLER,   /* owned by the handler; the connection keeps it listed */
	CM_HTTP_REQ_RESPONDED, /* answered; owned by the connection until sent */
	CM_HTTP_REQ_DETACHED,  /* owned by the handler; the connection is gone */
};

struct http_route;

struct cm_http_req {
	struct cm_http_conn *c; /* borrowed; NULL once detached */
	struct cm_list link;    /* in c->reqs, in arrival order */
	enum cm_http_req_state state;
	int32_t stream_id; /* HTTP/2 stream; 0 for HTTP/1 */
	int version;       /* 10, 11, 20 */
	char method[CM_HTTP_METHOD_MAX + 1];
	struct cm_buf target;            /* "path\0query\0"; owned */
	const char *path, *query, *rest; /* into target (rest: into path) */
	struct cm_buf hbuf;              /* header "name\0value\0" pairs, names lower-case; owned */
	size_t nhdrs;
	struct cm_http_header *hdrs;  /* built by cm_http__req_finish(); owned array into hbuf */
	size_t head_bytes;            /* HTTP/2: decoded header bytes counted against the limit */
	struct cm_buf body;           /* owned; NUL-terminated */
	size_t body_max;              /* its path's limit, known once the head is complete */
	struct http_route *route;     /* borrowed from the server; NULL: none matched */
	int err_status;               /* nonzero: the server answers this error itself */
	unsigned head : 1;            /* a HEAD request */
	unsigned keep_alive : 1;      /* HTTP/1: the connection may stay open after it */
	unsigned expect_continue : 1; /* HTTP/1: "Expect: 100-continue" */
	unsigned body_done : 1;       /* the whole request arrived */
	unsigned close_after : 1;     /* HTTP/1: close the connection after this response */
	unsigned counted : 1;         /* counted in PREFIX_requests_total */
	unsigned refused : 1;         /* HTTP/2: refused for the connection's memory budget */
	size_t held;                  /* bytes counted in c->receiving while it arrives */
	cm_http_cancel_fn cancel;
	void *cancel_arg; /* borrowed */
	/* the response */
	int status;
	struct cm_buf rhdrs; /* "name\0value\0" pairs, content-type first; owned */
	size_t nrhdrs;
	struct cm_buf rbody; /* owned; empty for HEAD, which sends no body */
	size_t rlen;         /* the body's length: rbody's, or what a GET would have sent */
	size_t roff;         /* HTTP/2: bytes of rbody handed to nghttp2 */
};

/* A new request for connection c (listed by the caller). 0, -ENOMEM. */
int cm_http__req_alloc(struct cm_http_req **out, struct cm_http_conn *c, int version);
void cm_http__req_free(struct cm_http_req *req); /* accepts NULL; must be unlisted */
/* Append a header (name lower-cased). 0, -ENOMEM, -EBADMSG (NUL inside). */
int cm_http__req_add_header(struct cm_http_req *req, const char *name, size_t nlen,
                            const char *value, size_t vlen);
/* Set path and query (copied). 0, -ENOMEM, -EBADMSG (NUL inside, empty path). */
int cm_http__req_set_target(struct cm_http_req *req, const char *path, size_t plen,
                            const char *query, size_t qlen);
/* Build the header array once the head is complete. 0, -ENOMEM. */
int cm_http__req_finish(struct cm_http_req *req);
/* Store a response in req (state RESPONDED), without sending it. Copies everything. 0,
 * -ENOMEM (then a bare response with that status is stored). */
int cm_http__req_store(struct cm_http_req *req, int status, const char *content_type,
                       const struct cm_http_header *headers, size_t nheaders, const void *body,
                       size_t len);

/* --- HTTP/1 (http1.c) ------------------------------------------------------------------------ */

enum {
	CM_HTTP1_MORE = 0, /* everything consumed, no complete request yet */
	CM_HTTP1_DONE = 1, /* a request is complete (cm_http__h1_take()); *used bytes consumed */
};

int cm_http__h1_alloc(struct cm_http_h1 **out, struct cm_http_conn *c,
                      const struct cm_http_limits *lim);
void cm_http__h1_free(struct cm_http_h1 *p); /* accepts NULL */

/* Feed len bytes. CM_HTTP1_MORE (*used = len), CM_HTTP1_DONE (*used <= len), or a negative
 * errno: -EBADMSG (malformed), -EMSGSIZE (head over the limit), -EFBIG (body over the limit),
 * -EPROTONOSUPPORT (not HTTP/1.x), -ENOMEM, or -EINVAL when called after DONE without
 * cm_http__h1_take(). Errors are final. */
int cm_http__h1_feed(struct cm_http_h1 *p, const char *data, size_t len, size_t *used);

/* After DONE: the complete request, handed over to the caller; the parser is ready for the
 * next one. */
struct cm_http_req *cm_http__h1_take(struct cm_http_h1 *p);

/* The request being received (head complete or not), or NULL; borrowed. */
struct cm_http_req *cm_http__h1_partial(const struct cm_http_h1 *p);

/* After an error: the request being received (or NULL), handed over to the caller. */
struct cm_http_req *cm_http__h1_steal(struct cm_http_h1 *p);

/* Nonzero when the head of the request being received is complete, it asked for
 * "100-continue", and nothing of its body has arrived yet. */
int cm_http__h1_wants_continue(const struct cm_http_h1 *p);

/* The HTTP status that answers a cm_http__h1_feed() error. */
int cm_http__h1_error_status(int err);

/* The server's head check of req (cm_http_server_set_head_check()): 0, or the status to answer
 * at once (400..599). */
int cm_http__head_check(const struct cm_http_server *srv, const struct cm_http_req *req);

/* Append req's stored response to out: status line, Content-Type, Content-Length (unless 1xx,
 * 204, 304), the handler's headers, extra (nextra), "Connection: close" when close (or
 * "keep-alive" to an HTTP/1.0 client that stays), then the body unless HEAD. 0, -ENOMEM. */
int cm_http__h1_format(struct cm_buf *out, const struct cm_http_req *req, int close,
                       const struct cm_http_header *extra, size_t nextra);

/* --- HTTP/2 (http2.c) ------------------------------------------------------------------------ */

/* A server session for c: SETTINGS (max concurrent streams, max header list size) are queued.
 * 0, -ENOMEM. */
int cm_http__h2_alloc(struct cm_http_h2 **out, struct cm_http_conn *c,
                      const struct cm_http_limits *lim);
void cm_http__h2_free(struct cm_http_h2 *h); /* accepts NULL; requests must be unlisted */

/* Process input (starting with the client preface). Requests that complete become READY in
 * c->reqs; streams closed by the client call cm_http__conn_stream_closed(). *opened (may be
 * NULL) gets how many streams the input opened, those reset at once included. 0, -EPROTO (the
 * session failed: send what is queued, then close), -ENOMEM. */
int cm_http__h2_input(struct cm_http_h2 *h, const char *data, size_t len, unsigned *opened);

/* Append queued frames to out until it holds at least high bytes or nothing is left. 0, -EPROTO,
 * -ENOMEM. */
int cm_http__h2_output(struct cm_http_h2 *h, struct cm_buf *out, size_t high);

/* Submit req's stored response on its stream. 0, -ENOMEM, -EPROTO (stream gone). */
int cm_http__h2_submit(struct cm_http_h2 *h, struct cm_http_req *req);

/* Queue GOAWAY (NO_ERROR, last stream processed): no new streams, old ones finish. */
void cm_http__h2_goaway(struct cm_http_h2 *h);

/* Nonzero when the session has nothing left to read or write (closed by GOAWAY or error). */
int cm_http__h2_finished(const struct cm_http_h2 *h);

/* --- connections (http_conn.c) --------------------------------------------------------------- */

enum cm_http_proto {
	CM_HTTP_PROTO_DETECT, /* waiting for enough bytes to tell HTTP/1 from the HTTP/2 preface */
	CM_HTTP_PROTO_H1,
	CM_HTTP_PROTO_H2,
};

enum cm_http_conn_state {
	CM_HTTP_CONN_OPEN,    /* reading requests */
	CM_HTTP_CONN_LINGER,  /* last response queued; write side shut down once sent */
	CM_HTTP_CONN_CLOSING, /* handles closing; freed by the last close callback */
};

struct cm_http_conn {
	struct cm_http_server *srv; /* borrowed: the server lives until its last connection */
	struct cm_list link;        /* in srv->conns */
	enum cm_http_conn_state state;
	enum cm_http_proto proto;
	int mem; /* an in-memory connection (tests, fuzzing): no stream, output stays in out */
	struct cm_stream *s; /* the transport; NULL for in-memory connections and once it closed */
	unsigned paused : 1; /* input is held in pending; resumes when the cause clears */
	unsigned eof : 1;    /* the peer closed its side */
	unsigned draining : 1; /* graceful stop: finish what was read, then close */
	unsigned busy : 1;     /* requests in flight: the idle timer is off */
	unsigned in_io : 1;    /* inside input processing: responses are flushed at its end */
	unsigned in_flush : 1;
	unsigned h1_stop : 1;      /* HTTP/1: no more requests after the last one read */
	unsigned h2_failed : 1;    /* HTTP/2: the session failed; send its GOAWAY, then close */
	unsigned yielded : 1;      /* input held to let other sockets go first; resumes there */
	unsigned nqueued;          /* answers waiting on srv->flushq */
	struct cm_list flush_link; /* on srv->flushq: answers wait for the loop's next turn */
	/* engine */
	struct cm_buf pending; /* plaintext input read but not processed yet; owned */
	struct cm_buf out;     /* plaintext output not yet handed to the transport; owned */
	struct cm_http_h1 *h1; /* owned, HTTP/1 */
	struct cm_http_h2 *h2; /* owned, HTTP/2 */
	struct cm_list reqs;   /* owned requests (but see their states), in arrival order */
	unsigned nreqs;
	size_t receiving; /* HTTP/2: bytes held by requests still arriving (max_receiving_bytes) */
	unsigned unlinks; /* requests taken off the list so far: tells a walk to start over */
};

/* An in-memory connection on srv (not listening needed): feed it with
 * cm_http__conn_mem_input(); what it sends accumulates in c->out (the caller may consume it).
 * 0, -ENOMEM. */
int cm_http__conn_mem_alloc(struct cm_http_conn **out, struct cm_http_server *srv);
/* Feed input. 0 while the connection is open, -ECONNRESET once it closed or lingers. */
int cm_http__conn_mem_input(struct cm_http_conn *c, const char *data, size_t len);
/* Process input held back (after the caller consumed c->out). Same returns. */
int cm_http__conn_mem_resume(struct cm_http_conn *c);
/* Close (requests in flight are detached) and free. Accepts NULL. */
void cm_http__conn_mem_free(struct cm_http_conn *c);

struct cm_stream;

/* A connection the listener accepted (http_server.c calls it): it becomes c's. */
void cm_http__conn_accept(struct cm_http_server *srv, struct cm_stream *s);
/* The listener refused a connection (per source or over max_connections): count and log it. */
void cm_http__conn_refused(struct cm_http_server *srv, int per_source, const struct sockaddr *peer);
/* Close now: requests in flight are detached and their cancel callbacks run. */
void cm_http__conn_close(struct cm_http_conn *c);
/* Graceful stop (see cm_http_server_stop_accepting()). */
void cm_http__conn_drain(struct cm_http_conn *c);
/* A handler answered req (state RESPONDED): send what can be sent. */
void cm_http__conn_responded(struct cm_http_conn *c, struct cm_http_req *req);
/* HTTP/2: the stream of req closed (client reset, or done). */
void cm_http__conn_stream_closed(struct cm_http_conn *c, struct cm_http_req *req);
/* Link / unlink a request in c->reqs. */
void cm_http__conn_link(struct cm_http_conn *c, struct cm_http_req *req);
void cm_http__conn_unlink(struct cm_http_conn *c, struct cm_http_req *req);
/* Count n more bytes held by req (linked to c) while it arrives: 0, or -ENOBUFS when that would
 * take the connection over lim.max_receiving_bytes (nothing counted; the caller refuses the
 * stream). */
int cm_http__conn_hold(struct cm_http_conn *c, struct cm_http_req *req, size_t n);
/* req no longer arrives (dispatched, or leaving): what it held stops counting. */
void cm_http__conn_unhold(struct cm_http_conn *c, struct cm_http_req *req);
/* An HTTP/2 stream was refused for the memory budget: count it, say so now and then. */
void cm_http__conn_stream_refused(struct cm_http_conn *c);

/* --- the server (http_server.c) -------------------------------------------------------------- */

/* Counters of PREFIX_requests_total already looked up, by status: answering must not format
 * labels and search the registry for every request. */
#define HTTP_COUNT_CACHE 6
struct http_count_cache {
	int status[HTTP_COUNT_CACHE];
	struct cm_counter *c[HTTP_COUNT_CACHE]; /* borrowed from the registry */
};

struct http_route {
	struct http_route *next;
	struct http_count_cache counts;
	char *path; /* owned */
	size_t len;
	unsigned flags;
	char *methods; /* owned; NULL: any */
	cm_http_handler h;
	void *arg; /* borrowed */
};

/* A path whose requests may carry bodies of their own size (cm_http_body_limit()). */
struct http_body_limit {
	struct http_body_limit *next;
	char *path; /* owned */
	size_t bytes;
};

struct cm_http_server {
	uv_loop_t *loop;              /* borrowed */
	struct cm_metrics *metrics;   /* borrowed; may be NULL */
	struct cm_tls *tls;           /* borrowed; may be NULL */
	struct cm_http_limits lim;    /* defaults filled in */
	char *prefix;                 /* owned: metric name prefix */
	const char *mod;              /* borrowed: log module */
	struct cm_http_header *extra; /* owned copies, names lower-case */
	size_t nextra;
	struct http_route *routes;           /* owned list; nodes live as long as the server */
	struct http_body_limit *body_limits; /* owned list: paths with a limit of their own */
	struct cm_gauge *m_conns;
	struct cm_counter *m_rejected, *m_rejected_source, *m_streams_refused;
	struct cm_srclimit *per_source; /* owned: connections per source address */
	struct cm_log_limit log_refused, log_streams;
	char *m_requests_name;                /* owned: PREFIX_requests_total */
	struct http_count_cache other_counts; /* requests that matched no route */
	cm_http_error_fn error_fn;            /* may be NULL: the server's own text */
	void *error_arg;                      /* borrowed */
	cm_http_head_fn head_fn;              /* may be NULL: every head is taken */
	void *head_arg;                       /* borrowed */

	struct cm_listener *ln; /* owned; NULL until listening; closes asynchronously */
	uv_timer_t trim;        /* malloc_trim() once a burst of connections has gone */
	unsigned closed_recent; /* connections freed since the last trim */
	/* Answers that complete outside input processing (a handler answering later) are produced
	 * together once per loop turn, before the loop waits again; the streams then send them in
	 * one write each. */
	uv_idle_t flusher;
	struct cm_list flushq; /* of struct cm_http_conn (flush_link): answers to produce */
	int stopping;          /* stop_accepting() or close() called */
	int closing;           /* close() called */
	struct cm_list conns;  /* of struct cm_http_conn (link) */
	unsigned nconns;
	/* Things whose end is still to come: the listener, the trim timer, the flusher, and each
	 * connection's stream; the last one frees the server. */
	unsigned handles;
	void (*done)(void *arg);
	void *done_arg;
};

/* Route a complete request (state READY or RECEIVING-complete) and run its handler, or answer
 * it with the server's own response (404, 405, 500, or req->err_status). On return the request
 * is HANDLER (the handler took it), RESPONDED, or freed if the connection went away meanwhile:
 * callers re-check the connection. */
void cm_http__dispatch(struct cm_http_conn *c, struct cm_http_req *req);

/* Find the route for path: exact first, then the longest prefix; *rest gets what follows a
 * prefix. NULL when none. */
struct http_route *cm_http__route_find(struct cm_http_server *srv, const char *path,
                                       const char **rest);
/* The largest body a request for path may carry: its own limit, else the server's. */
size_t cm_http__body_max(const struct cm_http_server *srv, const char *path);

/* Store the server's own answer to req: status with a short body (text, or what the server's
 * error formatter makes of it). 0, -ENOMEM. */
int cm_http__answer_error(struct cm_http_server *srv, struct cm_http_req *req, int status);

/* Count an answered request in PREFIX_requests_total. */
void cm_http__count(struct cm_http_server *srv, struct http_route *route, int status);

/* Every handle the server owns counts until its close callback; the last one frees it. */
void cm_http__server_handle_closed(struct cm_http_server *srv);

/* A connection's memory was freed: after a burst of them, give the heap back (see
 * CM_HTTP_TRIM_AFTER). */
void cm_http__server_conn_freed(struct cm_http_server *srv);

#endif
