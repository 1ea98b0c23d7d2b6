/* cm/admin.h - the admin HTTP server every daemon runs: a cm_http server (cm/http.h) with the
 * limits of a management port and two routes of its own, GET /health and GET /metrics.
 *
 * It is meant for loopback or a management network: requests are small (headers up to 8 KiB,
 * bodies up to 64 KiB), connections are capped (in all and per source address) and idle ones
 * closed, and every response says "Cache-Control: no-store". A daemon adds its own routes to
 * the same server with cm_http_route() on cm_admin_http(): they are ordinary cm_http handlers,
 * which may answer at once or later.
 *
 * /health answers a JSON object {"status","daemon","version","uptime_seconds", ...} with 200,
 * or 503 when the daemon's health callback says it is unwell; /metrics the registry in
 * Prometheus text format. Every request is counted in admin_requests_total{path,code}; see
 * cm/http.h for admin_connections and the rest.
 *
 * Single-threaded: all calls from the loop's thread. The process must ignore SIGPIPE.
 */
#ifndef CM_ADMIN_H
#define CM_ADMIN_H

#include <sys/socket.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/http.h"

struct cm_admin;
struct cm_metrics;

/* Health callback: append a JSON object's members (no braces), e.g. "\"pools\":{...}", to
 * details; return 0 when healthy (200) or nonzero when not (503). */
typedef int (*cm_admin_health_fn)(void *arg, struct cm_buf *details);

struct cm_admin_config {
	const char *daemon;  /* name shown in /health, borrowed */
	const char *version; /* borrowed */
	/* Zero fields take the admin defaults: 8 KiB heads, 64 KiB bodies, 64 connections, a
	 * quarter of them per source, 10 s idle. */
	struct cm_http_limits limits;
};

/* Create a server on loop (which must have its cm_loop context). metrics is borrowed (may be
 * NULL: then /metrics is 404) and must outlive the server; the server registers its own
 * admin_* metrics in it. 0, -EINVAL, -ENOMEM. */
int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
                   const struct cm_admin_config *cfg);

/* The HTTP server behind it (borrowed), to add routes with cm_http_route(). A route added for
 * "/health" or "/metrics" replaces the built-in one. */
struct cm_http_server *cm_admin_http(struct cm_admin *a);

/* Set the health callback (NULL: always healthy). */
void cm_admin_set_health(struct cm_admin *a, cm_admin_health_fn fn, void *arg);

/* Bind and listen. 0 or a negative errno (-EADDRINUSE, -EACCES, -EALREADY when listening
 * already, ...). After a failure the server can only be closed. */
int cm_admin_listen(struct cm_admin *a, const struct sockaddr *addr);

/* The bound port (useful with port 0 in tests), 0 if not listening. */
int cm_admin_port(const struct cm_admin *a);

/* Stop listening, close every connection (requests in progress are detached), and free the
 * server once libuv has released all handles; done(arg) is called then, from the loop (done may
 * be NULL; with a == NULL it is called at once). The pointer is invalid after this call; it may
 * be made from inside a route handler. */
void cm_admin_close(struct cm_admin *a, void (*done)(void *arg), void *arg);

#endif
