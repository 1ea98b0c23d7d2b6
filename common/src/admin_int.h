/* admin_int.h - the admin server's internals, shared by the admin*.c files, the tests and the
 * fuzz target. Nothing here includes <http_parser.h>: admin_http.c is its only user. */
#ifndef CM_ADMIN_INT_H
#define CM_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cm/admin.h"
#include "cm/buf.h"

/* Request line + headers (final CRLF included), request body, and a handler's response body
 * (more becomes a 500). */
#define CM_ADMIN_HEAD_MAX                (8 * 1024)
#define CM_ADMIN_BODY_MAX                (64 * 1024)
#define CM_ADMIN_RESP_MAX                (16u << 20)
#define CM_ADMIN_DEFAULT_MAX_CONNECTIONS 64
#define CM_ADMIN_DEFAULT_IDLE_MS         10000
#define CM_ADMIN_TEXT                    "text/plain; charset=utf-8"

/* --- request parser (admin_http.c) -----------------------------------------------------------
 *
 * Bytes in, one complete request out; no sockets, so the unit tests and the fuzz target drive it
 * directly. Requests are answered one at a time: after CM_ADMIN_HTTP_DONE the caller reads the
 * request, answers it, calls cm_admin__http_next() and feeds the bytes it has not used yet (the
 * next pipelined request). Errors are final: the caller answers with
 * cm_admin__http_error_status() and closes the connection. */

struct cm_admin_http;

enum {
	CM_ADMIN_HTTP_MORE = 0, /* everything consumed, the request is not complete yet */
	CM_ADMIN_HTTP_DONE = 1, /* a request is complete; *used bytes were consumed */
};

int cm_admin__http_alloc(struct cm_admin_http **out);
void cm_admin__http_free(struct cm_admin_http *p); /* accepts NULL */

/* Feed len bytes. Returns CM_ADMIN_HTTP_MORE (*used = len), CM_ADMIN_HTTP_DONE (*used <= len),
 * or a negative errno: -EBADMSG (malformed), -EMSGSIZE (head over CM_ADMIN_HEAD_MAX), -EFBIG
 * (body over CM_ADMIN_BODY_MAX), -EPROTONOSUPPORT (not HTTP/1.x), -ENOMEM, or -EINVAL when
 * called again after DONE without cm_admin__http_next(). */
int cm_admin__http_feed(struct cm_admin_http *p, const char *data, size_t len, size_t *used);

/* The complete request (valid after DONE until cm_admin__http_next()); borrowed. */
const struct cm_admin_request *cm_admin__http_request(const struct cm_admin_http *p);

/* After DONE: nonzero when the connection may stay open (HTTP/1.1 without "Connection: close",
 * HTTP/1.0 with "Connection: keep-alive"; never after an Upgrade or CONNECT). */
int cm_admin__http_keep_alive(const struct cm_admin_http *p);

/* After DONE: nonzero for an HTTP/1.0 request, which must be told "Connection: keep-alive". */
int cm_admin__http_is_10(const struct cm_admin_http *p);

/* The request path once the head has been parsed, even if the body then failed; else NULL. */
const char *cm_admin__http_path(const struct cm_admin_http *p);

/* Forget the request and get ready for the next one on the same connection. */
void cm_admin__http_next(struct cm_admin_http *p);

/* The HTTP status that answers a cm_admin__http_feed() error. */
int cm_admin__http_error_status(int err);

/* What goes in a response head besides the body. */
struct cm_admin_reply {
	int status;
	const char *content_type; /* borrowed */
	const char *allow;        /* borrowed; an Allow header value, or NULL */
	int close;                /* say "Connection: close" */
	int keep_alive_10;        /* say "Connection: keep-alive" (to an HTTP/1.0 client) */
	int head;                 /* HEAD: send the head only, Content-Length of the body */
};

/* Append a whole response (status line, headers, body unless HEAD) to out. 0, -ENOMEM. */
int cm_admin__http_format(struct cm_buf *out, const struct cm_admin_reply *r, const char *body,
                          size_t body_len);

/* --- server state (admin.c) ------------------------------------------------------------------ */

struct cm_admin_route {
	char *path; /* owned */
	cm_admin_handler handler;
	void *arg; /* borrowed */
};

struct cm_admin_conn;

struct cm_admin {
	uv_loop_t *loop;            /* borrowed */
	struct cm_metrics *metrics; /* borrowed; may be NULL */
	const char *daemon;         /* borrowed */
	const char *version;        /* borrowed */
	unsigned max_connections;
	uint64_t idle_timeout_ms;
	uint64_t started_ns; /* uv_hrtime() at creation, for uptime_seconds */

	struct cm_admin_route *routes; /* owned array */
	size_t nroutes;
	cm_admin_health_fn health;
	void *health_arg;

	struct cm_gauge *m_connections; /* admin_connections; NULL without metrics */
	struct cm_counter *m_rejected;  /* admin_connections_rejected_total */

	uv_tcp_t listener;
	uv_timer_t accept_retry; /* retries an accept that failed for want of memory */
	int listening;
	struct cm_admin_conn *conns; /* open connections, a doubly linked list */
	unsigned nconns;
	unsigned handles; /* handles whose close callback is still to come */
	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

/* --- routing (admin_routes.c) ---------------------------------------------------------------- */

/* Answer the complete request held by p: route it, run the handler, count it in
 * admin_requests_total, and append the whole response to out. *close is set when the connection
 * must be closed after this response. 0 or -ENOMEM (nothing sensible can be sent). */
int cm_admin__respond(struct cm_admin *a, const struct cm_admin_http *p, struct cm_buf *out,
                      int *close);

/* Answer a request that cm_admin__http_feed() rejected with err; the connection closes after. */
int cm_admin__respond_error(struct cm_admin *a, const struct cm_admin_http *p, int err,
                            struct cm_buf *out);

/* Register the server's own metrics (admin_connections, admin_connections_rejected_total). */
int cm_admin__metrics_init(struct cm_admin *a);

#endif
