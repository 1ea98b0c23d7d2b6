/* admin_int.h - the admin server's internals, shared by the admin*.c files and the tests. The
 * admin server is a thin layer on the suite's HTTP server (cm/http.h): it adds the built-in
 * /health and /metrics routes and turns cm_http requests into the synchronous
 * cm_admin_handler calls its API promises. */
#ifndef CM_ADMIN_INT_H
#define CM_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/http.h"

/* Request line + headers (final CRLF included), request body, and a handler's response body
 * (more becomes a 500). */
#define CM_ADMIN_HEAD_MAX                (8 * 1024)
#define CM_ADMIN_BODY_MAX                (64 * 1024)
#define CM_ADMIN_RESP_MAX                (16u << 20)
#define CM_ADMIN_DEFAULT_MAX_CONNECTIONS 64
#define CM_ADMIN_DEFAULT_IDLE_MS         10000
#define CM_ADMIN_TEXT                    "text/plain; charset=utf-8"

struct cm_admin;

/* One route: the cm_http route's argument, so its address must not change. */
struct cm_admin_route {
	struct cm_admin_route *next;
	struct cm_admin *a; /* borrowed: the server that owns this route */
	char *path;         /* owned */
	cm_admin_handler handler;
	void *arg; /* borrowed */
};

struct cm_admin {
	uv_loop_t *loop;             /* borrowed */
	struct cm_metrics *metrics;  /* borrowed; may be NULL */
	struct cm_http_server *http; /* owned; freed through cm_http_server_close() */
	const char *daemon;          /* borrowed */
	const char *version;         /* borrowed */
	uint64_t started_ns;         /* uv_hrtime() at creation, for uptime_seconds */

	struct cm_admin_route *routes; /* owned list */
	cm_admin_health_fn health;
	void *health_arg;

	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

/* --- built-in routes (admin_routes.c) -------------------------------------------------------- */

/* The /health and /metrics handlers; arg is the struct cm_admin. */
int cm_admin__health(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp);
int cm_admin__metrics(void *arg, const struct cm_admin_request *req,
                      struct cm_admin_response *resp);

/* Run an admin handler for a cm_http request and answer it (always; 500 when the handler
 * fails or sets a status outside 200..599). Returns 0. */
int cm_admin__run(const struct cm_admin_route *route, struct cm_http_req *req);

#endif
