/* cm/admin.h - the small admin HTTP server every daemon runs (a thin layer on cm/http.h).
 *
 * Serves GET /health and GET /metrics out of the box, plus routes a daemon adds. It is meant for
 * loopback or a management network: requests are small (headers up to 8 KiB, no bodies beyond
 * 64 KiB), connections are capped (in all and per source address) and idle ones closed, and
 * every response carries
 * Content-Length and closes nothing the client kept alive unless asked. Anything it cannot parse
 * gets 400; unknown paths 404; other methods than GET/HEAD on the built-in routes 405.
 *
 * Keep-alive and pipelining are supported; a request must arrive in full within the idle timeout
 * of the connection's start or of the previous response, or the connection is closed. Responses
 * that close the connection say "Connection: close"; the server then shuts its side down and
 * closes once the client has (or after a short linger), so the client gets what it was sent.
 *
 * Every request is counted in admin_requests_total{path,code}, where path is "/health",
 * "/metrics", an added route's path, or "other"; admin_connections and
 * admin_connections_rejected_total{limit} follow the connections.
 *
 * It is a cm_http server (cm/http.h) with metrics prefix "admin", so it also speaks HTTP/2 with
 * prior knowledge; handlers here are synchronous and their answer is sent at once.
 *
 * Single-threaded: all calls from the loop's thread. The process must ignore SIGPIPE (the
 * daemons do), or a client that goes away mid-response kills it.
 */
#ifndef CM_ADMIN_H
#define CM_ADMIN_H

#include <sys/socket.h>
#include <uv.h>

#include "cm/buf.h"

struct cm_admin;
struct cm_metrics;

struct cm_admin_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* without the query string, not decoded */
	const char *query;  /* after '?', "" when absent */
	const char *body;   /* NUL-terminated; "" when none */
	size_t body_len;
};

struct cm_admin_response {
	int status;               /* default 200 */
	const char *content_type; /* borrowed static string; default "text/plain; charset=utf-8" */
	struct cm_buf body;       /* filled by the handler; owned by the server */
};

/* A route handler fills resp. Returns 0, or a negative errno which becomes a 500 (as does a
 * status outside 200..599). Added routes receive every method, HEAD included: the server drops
 * the body of a HEAD response and keeps its Content-Length. */
typedef int (*cm_admin_handler)(void *arg, const struct cm_admin_request *req,
                                struct cm_admin_response *resp);

/* Health callback: append a JSON object's members (no braces), e.g. "\"pools\":{...}", to
 * details; return 0 when healthy (200) or nonzero when not (503). */
typedef int (*cm_admin_health_fn)(void *arg, struct cm_buf *details);

struct cm_admin_config {
	const char *daemon;                  /* name shown in /health, borrowed */
	const char *version;                 /* borrowed */
	unsigned max_connections;            /* 0 = default 64 */
	unsigned max_connections_per_source; /* one source address; 0 = a quarter of the above */
	uint64_t idle_timeout_ms;            /* 0 = default 10000 */
};

/* Create a server on loop. metrics is borrowed (may be NULL: then /metrics is 404) and must
 * outlive the server; the server registers its own admin_* metrics in it. */
int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
                   const struct cm_admin_config *cfg);

/* Add a route for an exact path (copied; it must start with '/'). Later routes for the same path
 * replace earlier ones, and an added "/health" or "/metrics" replaces the built-in one. arg is
 * borrowed. 0, -EINVAL or -ENOMEM. */
int cm_admin_route(struct cm_admin *a, const char *path, cm_admin_handler h, void *arg);

/* Set the health callback (NULL: always healthy). */
void cm_admin_set_health(struct cm_admin *a, cm_admin_health_fn fn, void *arg);

/* Bind and listen. 0 or a negative errno (-EADDRINUSE, -EACCES, -EALREADY when listening
 * already, ...). After a failure the server can only be closed. */
int cm_admin_listen(struct cm_admin *a, const struct sockaddr *addr);

/* The bound port (useful with port 0 in tests), 0 if not listening. */
int cm_admin_port(const struct cm_admin *a);

/* Stop listening, close every connection (requests in progress are dropped), and free the server
 * once libuv has released all handles; done(arg) is called then, from the loop (done may be
 * NULL; with a == NULL it is called at once). The pointer is invalid after this call; it may be
 * made from inside a route handler. */
void cm_admin_close(struct cm_admin *a, void (*done)(void *arg), void *arg);

#endif
