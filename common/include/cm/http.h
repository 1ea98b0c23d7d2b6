/* cm/http.h - the suite's HTTP server: HTTP/1.1 and HTTP/2, cleartext and TLS, on libuv.
 *
 * One listener speaks:
 *   - cleartext: HTTP/1.1, and HTTP/2 with prior knowledge (h2c: the client opens with the
 *     HTTP/2 connection preface; "Upgrade: h2c" is not supported);
 *   - TLS (when a struct cm_tls is given): ALPN picks "h2" or "http/1.1"; without ALPN the first
 *     bytes decide, as in cleartext.
 *
 * A handler gets a struct cm_http_req and answers it now or later with cm_http_respond(). The
 * handler owns the request from the moment it returns 0 until it responds: exactly one
 * cm_http_respond*() per request, which always releases it. When the client goes away first
 * (connection closed, HTTP/2 stream reset, server closed), the request is detached: the cancel
 * callback set with cm_http_req_set_cancel() runs once, cm_http_req_alive() turns 0, and the
 * later cm_http_respond() is a harmless no-op that frees the request (-ECONNRESET). So a push
 * notification that completes 20 ms after its client vanished finds a request it may still
 * answer, and nothing leaks. An HTTP/1.1 client that shuts its sending side down while a
 * request is in a handler's hands counts as gone (as nginx does); one with nothing in flight is
 * answered what it asked, then the connection closes.
 *
 * HTTP/1.1: keep-alive, pipelining (responses go out in request order even when handlers finish
 * out of order), "Connection: close", HTTP/1.0 keep-alive, HEAD (Content-Length kept, body
 * dropped), "Expect: 100-continue" (100 Continue once the request is next in line), chunked
 * request bodies. Malformed requests get 400, oversize heads 431, oversize bodies 413 (refused
 * before reading when the length is declared), other versions 505; the connection then closes.
 * The bodies of the answers the server gives itself (those, and 404, 405, 500) are short text
 * unless the server's user formats them (cm_http_server_set_error_body()).
 *
 * HTTP/2 (nghttp2): SETTINGS_MAX_CONCURRENT_STREAMS from the limits, flow control, request bodies
 * up to the limit (413 beyond: the stream is answered, then reset with NO_ERROR), responses with
 * content-length, PING, GOAWAY on cm_http_server_stop_accepting(). A connection's memory is
 * bounded whatever the client does: closed streams are not kept, and what its unfinished
 * requests hold is capped by max_receiving_bytes. Once a burst of connections has closed, the
 * memory they used is given back to the system (malloc_trim).
 *
 * Connections: at most max_connections open, and at most max_connections_per_source from one
 * source address (cm/srclimit.h: an IPv6 /64 is one source); one more is accepted and closed at
 * once (per source: with a reset, so that a flood leaves no TIME_WAIT here), counted, and logged
 * at most once per 10 s. A connection must send a complete request within idle_timeout_ms of
 * going idle (of its accept, for the first, TLS handshake included): dribbled bytes do not
 * extend it.
 *
 * Metrics (when a registry is given), PREFIX being cfg.metrics_prefix:
 *   PREFIX_requests_total{path,code}  path = the route's path (a prefix route's prefix) or "other"
 *   PREFIX_connections                open connections (gauge)
 *   PREFIX_connections_rejected_total{limit}  closed at once: limit = "max_connections" or
 *                                     "connections_per_source"
 *   PREFIX_streams_refused_total      HTTP/2 streams refused: max_receiving_bytes reached
 *
 * Single-threaded: every call from the loop's thread. The process must ignore SIGPIPE.
 */
#ifndef CM_HTTP_H
#define CM_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct cm_buf;
struct cm_http_server;
struct cm_http_req;
struct cm_metrics;
struct cm_tls;

struct cm_http_header {
	const char *name;
	const char *value;
};

/* Zero means "the default" for every field. */
struct cm_http_limits {
	size_t max_header_bytes;  /* request line + headers (HTTP/2: HPACK-decoded size); 8 KiB */
	size_t max_body_bytes;    /* request body; 64 KiB */
	unsigned max_connections; /* beyond: accepted and closed at once; 64 */
	/* the same for one source address; a quarter of max_connections (at least 1) */
	unsigned max_connections_per_source;
	uint64_t idle_timeout_ms; /* a connection with nothing in flight is closed after; 10000 */
	unsigned max_streams;     /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; 100 */
	/* HTTP/2: heads and bodies of the requests one connection is still sending, all streams
	 * together; a stream that would hold more is refused (RST_STREAM REFUSED_STREAM, safe to
	 * retry). 1 MiB, and never less than max_header_bytes + max_body_bytes. */
	size_t max_receiving_bytes;
	unsigned max_in_flight; /* HTTP/1.1 pipelined requests held per connection; 16 */
};

struct cm_http_config {
	struct cm_http_limits limits;
	/* Borrowed, may be NULL (cleartext). Must outlive the server; its ALPN list should be
	 * "h2,http/1.1". Reloading it affects new connections only. */
	struct cm_tls *tls;
	/* Metric name prefix ("admin", "rest"); borrowed, copied at alloc; NULL: "http". */
	const char *metrics_prefix;
	/* Log module name; borrowed, must outlive the server; NULL: "http". */
	const char *log_module;
	/* Headers added to every response (e.g. {"Cache-Control", "no-store"}); borrowed, must
	 * outlive the server. */
	const struct cm_http_header *extra_headers;
	size_t nextra_headers;
};

/* A handler owns req once it returns 0 and must call cm_http_respond*() exactly once, now or
 * later. A negative errno means it did not take the request and did not respond: the server
 * answers 500. */
typedef int (*cm_http_handler)(void *arg, struct cm_http_req *req);

/* Called once when the client of an unanswered request goes away. req stays valid (it is the
 * handler's) and must still be answered with cm_http_respond*(), which then only frees it; that
 * call may be made from inside this callback. */
typedef void (*cm_http_cancel_fn)(void *arg, struct cm_http_req *req);

/* Create a server. metrics is borrowed (may be NULL) and must outlive the server. cfg is read
 * during the call (see the fields for what must outlive it). 0, -EINVAL, -ENOMEM. */
int cm_http_server_alloc(struct cm_http_server **out, uv_loop_t *loop, struct cm_metrics *metrics,
                         const struct cm_http_config *cfg);

enum {
	CM_HTTP_PREFIX = 1, /* the route matches every path that starts with it */
};

/* Add a route. path (copied) must start with '/'. An exact route matches that path only; a
 * CM_HTTP_PREFIX route matches paths starting with it, and cm_http_req_rest() gives what follows
 * (the longest matching prefix wins; exact routes win over prefixes). methods: NULL for any, or
 * an Allow-style list "GET, HEAD" (copied); other methods get 405 with that Allow header. Adding
 * a route for the same path and flags again replaces handler, methods and arg. arg is borrowed.
 * 0, -EINVAL, -ENOMEM. */
int cm_http_route(struct cm_http_server *srv, const char *path, unsigned flags, const char *methods,
                  cm_http_handler h, void *arg);

/* Let requests for exactly path (copied; the path without its query) carry bodies of up to
 * bytes, where limits.max_body_bytes holds for every other path: a route that takes large
 * documents leaves the others as small as they were, for whoever reaches the port. A larger
 * body is refused with 413 as soon as its length is known (before any of it is read when the
 * head declares it). Setting a path again replaces its limit.
 * 0, -EINVAL, -ENOMEM. */
int cm_http_body_limit(struct cm_http_server *srv, const char *path, size_t bytes);

/* Formats the body of an answer the server gives itself, without a handler: 400 (malformed
 * request), 404 (no route), 405 (a method the route does not take; the Allow header is the
 * server's), 413 (body over the limit), 431 (head over the limit), 500 (a handler failed, or an
 * invalid status), 505 (HTTP version). Append the body to out and return its content type (a
 * string that outlives the server), or NULL to keep the server's text (out is then ignored: do
 * so when an append failed). req is what arrived of the request (cm_http_req_path() and
 * cm_http_req_method() may say little of a malformed one); borrowed for the call, never to be
 * answered here. */
typedef const char *(*cm_http_error_fn)(void *arg, const struct cm_http_req *req, int status,
                                        struct cm_buf *out);

/* Set (fn NULL: clear) the formatter of the server's own answers; arg is borrowed. An API that
 * answers errors in its own format (platypus's {"reason": ...}) answers these in it too. */
void cm_http_server_set_error_body(struct cm_http_server *srv, cm_http_error_fn fn, void *arg);

/* Looks at a request's head (method, path, query, headers) once it is complete and before any
 * of its body is read: 0 reads the body and hands the request to its route; a status (400..599;
 * anything else counts as 500) is answered at once with the server's own answer (its body from
 * cm_http_server_set_error_body()), and the body is never read: HTTP/1.1 closes the connection
 * after the answer, HTTP/2 resets the stream. So a route taking large bodies can refuse the
 * requests it would refuse anyway before they cost their body's memory. req is borrowed for the
 * call and not to be answered here; cm_http_req_rest() says nothing yet (routes are matched
 * later). */
typedef int (*cm_http_head_fn)(void *arg, const struct cm_http_req *req);
/* Set (fn NULL: clear) the server's head check; arg is borrowed. */
void cm_http_server_set_head_check(struct cm_http_server *srv, cm_http_head_fn fn, void *arg);
/* Bind and listen. 0, -EALREADY, -EINVAL (closing) or a libuv error (-EADDRINUSE, ...). */
int cm_http_server_listen(struct cm_http_server *srv, const struct sockaddr *addr);

/* The bound port, 0 when not listening. */
int cm_http_server_port(const struct cm_http_server *srv);

/* Graceful stop: close the listener; HTTP/2 connections get GOAWAY and close once their streams
 * are answered; HTTP/1.1 connections close after the responses to the requests already read
 * (the last says "Connection: close"). Requests in flight complete normally. */
void cm_http_server_stop_accepting(struct cm_http_server *srv);

/* Close everything now: unanswered requests are detached (cancel callbacks run), and the server
 * is freed once libuv has released every handle; done(arg) is called then (may be NULL; with
 * srv == NULL at once). srv is invalid after this call, which may be made from a handler or a
 * cancel callback. */
void cm_http_server_close(struct cm_http_server *srv, void (*done)(void *arg), void *arg);

/* Nonzero once cm_http_server_stop_accepting() or cm_http_server_close() was called. */
int cm_http_server_stopping(const struct cm_http_server *srv);

/* --- requests: every pointer returned is borrowed from req and valid until it is answered --- */

const char *cm_http_req_method(const struct cm_http_req *req); /* "GET", "POST", ... */
const char *cm_http_req_path(const struct cm_http_req *req);   /* without query, not decoded */
const char *cm_http_req_query(const struct cm_http_req *req);  /* after '?', "" when none */
/* The part of the path after a prefix route's prefix ("" for exact routes). */
const char *cm_http_req_rest(const struct cm_http_req *req);
/* First header with that name (case-insensitive), or NULL. */
const char *cm_http_req_header(const struct cm_http_req *req, const char *name);
/* Headers in arrival order; names are lower-case. NULL past the end. */
const struct cm_http_header *cm_http_req_header_at(const struct cm_http_req *req, size_t i);
/* The body, NUL-terminated ("" when none); *len gets its length (may be NULL). */
const char *cm_http_req_body(const struct cm_http_req *req, size_t *len);
/* Percent-decode (RFC 3986 2.1) the NUL-terminated in into out, which has room for strlen(in) + 1
 * bytes and may be in itself. A '%' not followed by two hex digits, and "%00" (no NUL may hide
 * in a decoded name), are refused. The decoded length, or -1 with *bad (may be NULL) set to the
 * offset of the faulty escape. */
long cm_http_unescape(const char *in, char *out, size_t *bad);

/* 10, 11 or 20 for HTTP/1.0, 1.1, 2. */
int cm_http_req_version(const struct cm_http_req *req);
/* Nonzero while the client can still receive the response. */
int cm_http_req_alive(const struct cm_http_req *req);
/* Set (or clear, with fn NULL) the cancel callback; arg is borrowed. */
void cm_http_req_set_cancel(struct cm_http_req *req, cm_http_cancel_fn fn, void *arg);

/* Answer req and release it. status 200..599 (anything else answers 500 and returns -EINVAL);
 * content_type NULL gives "text/plain; charset=utf-8"; body (len bytes, may be NULL when 0) and
 * headers are copied. HEAD requests get the headers only, with the body's Content-Length (len:
 * for HEAD, body may be NULL and is not read, so a handler need not produce it); 204 and 304
 * carry no body. 0, -ECONNRESET (the client had gone: nothing sent), -EINVAL, -ENOMEM
 * (a bare 500 was sent instead, if possible). req is invalid after the call, whatever it
 * returns. */
int cm_http_respond(struct cm_http_req *req, int status, const char *content_type, const void *body,
                    size_t len);
int cm_http_respond_headers(struct cm_http_req *req, int status, const char *content_type,
                            const struct cm_http_header *headers, size_t nheaders, const void *body,
                            size_t len);

#endif
