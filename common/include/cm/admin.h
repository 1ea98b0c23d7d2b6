/* cm/admin.h - the small admin HTTP/1.1 server every daemon runs (libuv + http-parser).
 *
 * Serves GET /health and GET /metrics out of the box, plus routes a daemon adds. It is meant for
 * loopback or a management network: requests are small (headers up to 8 KiB, no bodies beyond
 * 64 KiB), connections are capped and idle ones closed, and every response carries
 * Content-Length and closes nothing the client kept alive unless asked. Anything it cannot parse
 * gets 400; unknown paths 404; other methods than GET/HEAD on the built-in routes 405.
 *
 * Single-threaded: all calls from the loop's thread.
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

/* A route handler fills resp. Returns 0, or a negative errno which becomes a 500. */
typedef int (*cm_admin_handler)(void *arg, const struct cm_admin_request *req,
				struct cm_admin_response *resp);

/* Health callback: append a JSON object's members (no braces), e.g. "\"pools\":{...}", to
 * details; return 0 when healthy (200) or nonzero when not (503). */
typedef int (*cm_admin_health_fn)(void *arg, struct cm_buf *details);

struct cm_admin_config {
	const char *daemon;  /* name shown in /health, borrowed */
	const char *version; /* borrowed */
	unsigned max_connections; /* 0 = default 64 */
	uint64_t idle_timeout_ms; /* 0 = default 10000 */
};

/* Create a server on loop. metrics is borrowed (may be NULL: then /metrics is 404) and must
 * outlive the server; the server registers its own admin_* metrics in it. */
int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
		   const struct cm_admin_config *cfg);

/* Add a route for an exact path (copied). Later routes for the same path replace earlier ones. */
int cm_admin_route(struct cm_admin *a, const char *path, cm_admin_handler h, void *arg);

/* Set the health callback (NULL: always healthy). */
void cm_admin_set_health(struct cm_admin *a, cm_admin_health_fn fn, void *arg);

/* Bind and listen. 0 or a negative errno (-EADDRINUSE, -EACCES, ...). */
int cm_admin_listen(struct cm_admin *a, const struct sockaddr *addr);

/* The bound port (useful with port 0 in tests), 0 if not listening. */
int cm_admin_port(const struct cm_admin *a);

/* Stop listening, close every connection, and free the server once libuv has released all
 * handles; done(arg) is called then (may be NULL). The pointer is invalid after this call. */
void cm_admin_close(struct cm_admin *a, void (*done)(void *arg), void *arg);

#endif
