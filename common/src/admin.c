/* admin.c - the admin HTTP server (cm/admin.h): a cm_http server with management-port limits
 * and the built-in routes. */
#include "admin_int.h"

#include <errno.h>
#include <stdlib.h>

#define ALLOW_GET "GET, HEAD"

static const struct cm_http_header admin_headers[] = {{"Cache-Control", "no-store"}};

/* The HTTP server is gone: the admin server follows. */
static void on_http_closed(void *arg)
{
	struct cm_admin *a = arg;
	void (*done)(void *arg) = a->done;
	void *done_arg = a->done_arg;

	free(a);
	if (done)
		done(done_arg);
}

int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
                   const struct cm_admin_config *cfg)
{
	struct cm_http_config hc = {
	    .metrics_prefix = "admin",
	    .log_module = "admin",
	    .extra_headers = admin_headers,
	    .nextra_headers = 1,
	};
	struct cm_admin *a;
	int r;

	*out = NULL;
	if (!loop || !cfg)
		return -EINVAL;
	hc.limits = cfg->limits;
	if (!hc.limits.max_header_bytes)
		hc.limits.max_header_bytes = CM_ADMIN_HEAD_MAX;
	if (!hc.limits.max_body_bytes)
		hc.limits.max_body_bytes = CM_ADMIN_BODY_MAX;
	if (!hc.limits.max_connections)
		hc.limits.max_connections = CM_ADMIN_DEFAULT_MAX_CONNECTIONS;
	if (!hc.limits.idle_timeout_ms)
		hc.limits.idle_timeout_ms = CM_ADMIN_DEFAULT_IDLE_MS;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->metrics = metrics;
	a->daemon = cfg->daemon ? cfg->daemon : "";
	a->version = cfg->version ? cfg->version : "";
	a->started_ns = uv_hrtime();
	r = cm_http_server_alloc(&a->http, loop, metrics, &hc);
	if (r) {
		free(a);
		return r;
	}
	r = cm_http_route(a->http, "/health", 0, ALLOW_GET, cm_admin__health, a);
	if (!r && metrics)
		r = cm_http_route(a->http, "/metrics", 0, ALLOW_GET, cm_admin__metrics, a);
	if (r) {
		/* the HTTP server owns handles now: it is released from the loop */
		cm_admin_close(a, NULL, NULL);
		return r;
	}
	*out = a;
	return 0;
}

struct cm_http_server *cm_admin_http(struct cm_admin *a)
{
	return a->http;
}

void cm_admin_set_health(struct cm_admin *a, cm_admin_health_fn fn, void *arg)
{
	a->health = fn;
	a->health_arg = arg;
}

int cm_admin_listen(struct cm_admin *a, const struct sockaddr *addr)
{
	if (a->closing)
		return -EINVAL;
	return cm_http_server_listen(a->http, addr);
}

int cm_admin_port(const struct cm_admin *a)
{
	return cm_http_server_port(a->http);
}

void cm_admin_close(struct cm_admin *a, void (*done)(void *arg), void *arg)
{
	if (!a) {
		if (done)
			done(arg);
		return;
	}
	if (a->closing)
		return;
	a->closing = 1;
	a->done = done;
	a->done_arg = arg;
	cm_http_server_close(a->http, on_http_closed, a);
}
