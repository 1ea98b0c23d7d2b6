/* admin_routes.c - the admin server's built-in routes, /health and /metrics. */
#include "admin_int.h"

#include <errno.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/metrics.h"

#define JSON_TYPE    "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define RESP_MAX     (16u << 20) /* a larger answer becomes a 500 */

static const char fail[] = "internal error\n";

int cm_admin__health(void *arg, struct cm_http_req *req)
{
	struct cm_admin *a = arg;
	struct cm_buf details, body;
	uint64_t up = (uv_hrtime() - a->started_ns) / 1000000000u;
	int sick = 0, err;

	cm_buf_init(&details, RESP_MAX);
	cm_buf_init(&body, RESP_MAX);
	if (a->health)
		sick = a->health(a->health_arg, &details);
	err = cm_buf_printf(&body, "{\"status\":\"%s\",\"daemon\":\"", sick ? "unavailable" : "ok");
	err = err ? err : cm_buf_json_escape(&body, a->daemon, strlen(a->daemon));
	err = err ? err : cm_buf_puts(&body, "\",\"version\":\"");
	err = err ? err : cm_buf_json_escape(&body, a->version, strlen(a->version));
	err =
	    err ? err : cm_buf_printf(&body, "\",\"uptime_seconds\":%llu", (unsigned long long)up);
	if (!err && details.len) {
		err = cm_buf_append(&body, ",", 1);
		err = err ? err : cm_buf_append(&body, details.data, details.len);
	}
	err = err ? err : cm_buf_puts(&body, "}\n");
	if (err)
		cm_http_respond(req, 500, NULL, fail, sizeof(fail) - 1);
	else
		cm_http_respond(req, sick ? 503 : 200, JSON_TYPE, body.data, body.len);
	cm_buf_free(&details);
	cm_buf_free(&body);
	return 0;
}

int cm_admin__metrics(void *arg, struct cm_http_req *req)
{
	struct cm_admin *a = arg;
	struct cm_buf body;

	cm_buf_init(&body, RESP_MAX);
	if (cm_metrics_render(a->metrics, &body) != 0)
		cm_http_respond(req, 500, NULL, fail, sizeof(fail) - 1);
	else
		cm_http_respond(req, 200, METRICS_TYPE, body.data, body.len);
	cm_buf_free(&body);
	return 0;
}
