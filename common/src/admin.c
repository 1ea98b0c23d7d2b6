/* admin.c - the admin HTTP server (cm/admin.h) on the suite's HTTP server (cm/http.h). */
#include "admin_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"

#define ALLOW_GET "GET, HEAD"

static const struct cm_http_header admin_headers[] = {{"Cache-Control", "no-store"}};

static void admin_free(struct cm_admin *a)
{
	struct cm_admin_route *r;

	while ((r = a->routes) != NULL) {
		a->routes = r->next;
		free(r->path);
		free(r);
	}
	free(a);
}

/* The HTTP server is gone: the admin server follows. */
static void on_http_closed(void *arg)
{
	struct cm_admin *a = arg;
	void (*done)(void *arg) = a->done;
	void *done_arg = a->done_arg;

	admin_free(a);
	if (done)
		done(done_arg);
}

static int on_request(void *arg, struct cm_http_req *req)
{
	return cm_admin__run(arg, req);
}

/* Add or replace a route; methods as cm_http_route(). */
static int add_route(struct cm_admin *a, const char *path, const char *methods, cm_admin_handler h,
                     void *arg)
{
	struct cm_admin_route *r;
	int err;

	for (r = a->routes; r; r = r->next)
		if (strcmp(r->path, path) == 0)
			break;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->path = strdup(path))) {
			free(r);
			return -ENOMEM;
		}
		r->a = a;
		r->handler = h;
		r->arg = arg;
		err = cm_http_route(a->http, path, 0, methods, on_request, r);
		if (err) {
			free(r->path);
			free(r);
			return err;
		}
		r->next = a->routes;
		a->routes = r;
		return 0;
	}
	/* methods first: on failure the old route stays as it was */
	err = cm_http_route(a->http, path, 0, methods, on_request, r);
	if (err)
		return err;
	r->handler = h;
	r->arg = arg;
	return 0;
}

int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
                   const struct cm_admin_config *cfg)
{
	struct cm_http_config hc = {
	    .limits = {.max_header_bytes = CM_ADMIN_HEAD_MAX, .max_body_bytes = CM_ADMIN_BODY_MAX},
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
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->metrics = metrics;
	a->daemon = cfg->daemon ? cfg->daemon : "";
	a->version = cfg->version ? cfg->version : "";
	a->started_ns = uv_hrtime();
	hc.limits.max_connections =
	    cfg->max_connections ? cfg->max_connections : CM_ADMIN_DEFAULT_MAX_CONNECTIONS;
	hc.limits.max_connections_per_source = cfg->max_connections_per_source;
	hc.limits.idle_timeout_ms =
	    cfg->idle_timeout_ms ? cfg->idle_timeout_ms : CM_ADMIN_DEFAULT_IDLE_MS;
	r = cm_http_server_alloc(&a->http, loop, metrics, &hc);
	if (r) {
		free(a);
		return r;
	}
	r = add_route(a, "/health", ALLOW_GET, cm_admin__health, a);
	if (!r && metrics)
		r = add_route(a, "/metrics", ALLOW_GET, cm_admin__metrics, a);
	if (r) {
		/* the HTTP server owns handles now: it is released from the loop */
		cm_admin_close(a, NULL, NULL);
		return r;
	}
	*out = a;
	return 0;
}

int cm_admin_route(struct cm_admin *a, const char *path, cm_admin_handler h, void *arg)
{
	if (!path || path[0] != '/' || !h)
		return -EINVAL;
	return add_route(a, path, NULL, h, arg);
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
