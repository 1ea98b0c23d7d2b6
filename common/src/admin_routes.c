/* admin_routes.c - the admin server's handlers: built-in /health and /metrics, and the bridge
 * that runs a synchronous cm_admin_handler for a cm_http request. */
#include "admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"

#define JSON_TYPE    "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

int cm_admin__health(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	struct cm_admin *a = arg;
	struct cm_buf details;
	uint64_t up = (uv_hrtime() - a->started_ns) / 1000000000u;
	int sick = 0, err;

	(void)req;
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

int cm_admin__metrics(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	struct cm_admin *a = arg;

	(void)req;
	resp->content_type = METRICS_TYPE;
	return cm_metrics_render(a->metrics, &resp->body);
}

int cm_admin__run(const struct cm_admin_route *route, struct cm_http_req *req)
{
	struct cm_admin_request q;
	struct cm_admin_response resp = {.status = 200, .content_type = CM_ADMIN_TEXT};
	static const char fail[] = "internal error\n";
	int r;

	q.method = cm_http_req_method(req);
	q.path = cm_http_req_path(req);
	q.query = cm_http_req_query(req);
	q.body = cm_http_req_body(req, &q.body_len);
	cm_buf_init(&resp.body, CM_ADMIN_RESP_MAX);
	r = route->handler(route->arg, &q, &resp);
	if (r < 0) {
		CM_LOGW("admin", "%s %s: handler failed: %d", q.method, route->path, r);
	} else if (resp.status < 200 || resp.status > 599) {
		/* 1xx would not end the exchange; anything else is not HTTP */
		CM_LOGW("admin", "%s %s: handler set status %d", q.method, route->path,
		        resp.status);
		r = -EINVAL;
	}
	/* the handler may have closed the server: then this only releases the request */
	if (r < 0)
		cm_http_respond(req, 500, CM_ADMIN_TEXT, fail, sizeof(fail) - 1);
	else
		cm_http_respond(req, resp.status,
		                resp.content_type ? resp.content_type : CM_ADMIN_TEXT,
		                resp.body.data, resp.body.len);
	cm_buf_free(&resp.body);
	return 0;
}
