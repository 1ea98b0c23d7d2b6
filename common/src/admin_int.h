/* admin_int.h - what admin.c and admin_routes.c share. Not public. */
#ifndef CM_ADMIN_INT_H
#define CM_ADMIN_INT_H

#include <stdint.h>
#include <uv.h>

#include "cm/admin.h"
#include "cm/http.h"

#define CM_ADMIN_HEAD_MAX                (8 * 1024)
#define CM_ADMIN_BODY_MAX                (64 * 1024)
#define CM_ADMIN_DEFAULT_MAX_CONNECTIONS 64
#define CM_ADMIN_DEFAULT_IDLE_MS         10000

struct cm_admin {
	struct cm_metrics *metrics;  /* borrowed; may be NULL */
	struct cm_http_server *http; /* owned; freed through cm_http_server_close() */
	const char *daemon;          /* borrowed */
	const char *version;         /* borrowed */
	uint64_t started_ns;         /* uv_hrtime() at creation, for uptime_seconds */
	cm_admin_health_fn health;
	void *health_arg;
	int closing;
	void (*done)(void *arg);
	void *done_arg;
};

/* The built-in routes, as cm_http handlers; arg is the struct cm_admin. */
int cm_admin__health(void *arg, struct cm_http_req *req);
int cm_admin__metrics(void *arg, struct cm_http_req *req);

#endif
