/* admin_routes.c - the admin server's routing: built-in /health and /metrics, added routes, the
 * error answers, and the admin_* request metrics. */
#include "admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"

#define JSON_TYPE    "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define ALLOW_GET    "GET, HEAD"

int cm_admin__metrics_init(struct cm_admin *a)
{
	int r;

	if (!a->metrics)
		return 0;
	r = cm_metrics_gauge(a->metrics, &a->m_connections, "admin_connections",
	                     "Open connections to the admin HTTP server.", NULL);
	r = r ? r
	      : cm_metrics_counter(a->metrics, &a->m_rejected, "admin_connections_rejected_total",
	                           "Admin connections closed at once: max_connections reached.",
	                           NULL);
	return r;
}

/* Count one answered request. The path label only ever takes a known route's path or "other",
 * so a scanner walking random URLs cannot grow the registry; codes are three digits. */
static void count_request(struct cm_admin *a, const char *label, int status)
{
	struct cm_counter *c;
	char code[8];

	if (!a->metrics)
		return;
	snprintf(code, sizeof(code), "%d", status);
	if (cm_metrics_counter(a->metrics, &c, "admin_requests_total",
	                       "Requests answered by the admin HTTP server, by path and status.",
	                       "path", label, "code", code, NULL) == 0)
		cm_metrics_inc(c);
}

static const struct cm_admin_route *find_route(const struct cm_admin *a, const char *path)
{
	for (size_t i = 0; i < a->nroutes; i++)
		if (strcmp(a->routes[i].path, path) == 0)
			return &a->routes[i];
	return NULL;
}

/* The label a path is counted under: a route's own path or one of the built-ins, else "other". */
static const char *path_label(const struct cm_admin *a, const char *path)
{
	const struct cm_admin_route *r;

	if (!path)
		return "other";
	r = find_route(a, path);
	if (r)
		return r->path;
	if (strcmp(path, "/health") == 0)
		return "/health";
	if (a->metrics && strcmp(path, "/metrics") == 0)
		return "/metrics";
	return "other";
}

static int health(struct cm_admin *a, struct cm_admin_response *resp)
{
	struct cm_buf details;
	uint64_t up = (uv_hrtime() - a->started_ns) / 1000000000u;
	int sick = 0, err;

	cm_buf_init(&details, CM_ADMIN_RESP_MAX);
	if (a->health)
		sick = a->health(a->health_arg, &details);
	resp->status = sick ? 503 : 200;
	resp->content_type = JSON_TYPE;
	err = cm_buf_printf(&resp->body, "{\"status\":\"%s\",\"daemon\":\"",
	                    sick ? "unavailable" : "ok");
	err = err ? err : cm_buf_json_escape(&resp->body, a->daemon, strlen(a->daemon));
	err = err ? err : cm_buf_puts(&resp->body, "\",\"version\":\"");
	err = err ? err : cm_buf_json_escape(&resp->body, a->version, strlen(a->version));
	err =
	    err ? err
	        : cm_buf_printf(&resp->body, "\",\"uptime_seconds\":%llu", (unsigned long long)up);
	if (!err && details.len) {
		err = cm_buf_append(&resp->body, ",", 1);
		err = err ? err : cm_buf_append(&resp->body, details.data, details.len);
	}
	err = err ? err : cm_buf_puts(&resp->body, "}\n");
	cm_buf_free(&details);
	return err;
}

static int metrics(struct cm_admin *a, struct cm_admin_response *resp)
{
	resp->content_type = METRICS_TYPE;
	return cm_metrics_render(a->metrics, &resp->body);
}

/* Replace whatever a failed handler left with a plain error. */
static int set_error(struct cm_admin_response *resp, int status, const char *text)
{
	resp->status = status;
	resp->content_type = CM_ADMIN_TEXT;
	cm_buf_reset(&resp->body);
	return cm_buf_puts(&resp->body, text);
}

/* Route the request and fill resp; *allow is set for a 405. Returns the path label. */
static const char *dispatch(struct cm_admin *a, const struct cm_admin_request *req,
                            struct cm_admin_response *resp, const char **allow)
{
	const struct cm_admin_route *route = find_route(a, req->path);
	int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	const char *label = path_label(a, req->path);
	int r;

	if (route) {
		/* Copy what we need: the handler may add routes, which moves the array. */
		cm_admin_handler h = route->handler;
		void *arg = route->arg;

		r = h(arg, req, resp);
		if (r < 0) {
			CM_LOGW("admin", "%s %s: handler failed: %d", req->method, label, r);
			r = set_error(resp, 500, "internal error\n");
		} else if (resp->status < 200 || resp->status > 599) {
			/* 1xx would not end the exchange; anything else is not HTTP */
			CM_LOGW("admin", "%s %s: handler set status %d", req->method, label,
			        resp->status);
			r = set_error(resp, 500, "internal error\n");
		}
	} else if (strcmp(label, "other") == 0) {
		r = set_error(resp, 404, "not found\n");
	} else if (!get) {
		*allow = ALLOW_GET;
		r = set_error(resp, 405, "method not allowed\n");
	} else if (strcmp(label, "/health") == 0) {
		r = health(a, resp);
	} else {
		r = metrics(a, resp);
	}
	if (r < 0 && set_error(resp, 500, "internal error\n") < 0)
		cm_buf_free(&resp->body); /* out of memory: an empty 500 still tells the truth */
	if (!resp->content_type)
		resp->content_type = CM_ADMIN_TEXT;
	return label;
}

int cm_admin__respond(struct cm_admin *a, const struct cm_admin_http *p, struct cm_buf *out,
                      int *close)
{
	const struct cm_admin_request *req = cm_admin__http_request(p);
	struct cm_admin_response resp = {.status = 200, .content_type = CM_ADMIN_TEXT};
	struct cm_admin_reply reply = {0};
	const char *label;
	int err;

	cm_buf_init(&resp.body, CM_ADMIN_RESP_MAX);
	label = dispatch(a, req, &resp, &reply.allow);
	reply.status = resp.status;
	reply.content_type = resp.content_type;
	reply.head = strcmp(req->method, "HEAD") == 0;
	reply.close = !cm_admin__http_keep_alive(p) || a->closing;
	reply.keep_alive_10 = !reply.close && cm_admin__http_is_10(p);
	err = cm_admin__http_format(out, &reply, resp.body.data, resp.body.len);
	cm_buf_free(&resp.body);
	if (err == 0)
		count_request(a, label, reply.status);
	*close = reply.close;
	return err;
}

int cm_admin__respond_error(struct cm_admin *a, const struct cm_admin_http *p, int err,
                            struct cm_buf *out)
{
	struct cm_admin_reply reply = {.content_type = CM_ADMIN_TEXT, .close = 1};
	const char *text;
	int r;

	reply.status = cm_admin__http_error_status(err);
	switch (reply.status) {
	case 413:
		text = "request body too large\n";
		break;
	case 431:
		text = "request header fields too large\n";
		break;
	case 505:
		text = "HTTP version not supported\n";
		break;
	case 500:
		text = "internal error\n";
		break;
	default:
		text = "bad request\n";
	}
	r = cm_admin__http_format(out, &reply, text, strlen(text));
	if (r == 0)
		count_request(a, path_label(a, cm_admin__http_path(p)), reply.status);
	return r;
}
