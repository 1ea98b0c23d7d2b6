/* rest.c - the MongoosePush v3 compatible REST API on the suite's HTTP server: each POST becomes
 * a notification for the dispatcher and is answered when its outcome is known. */
#include "rest.h"
#include "dispatch.h"
#include "notif.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/buf.h"
#include "cm/http.h"
#include "cm/log.h"

#define JSON_TYPE "application/json"
#define PREFIX    "/v3/notification/"

struct pp_rest {
	struct cm_http_server *srv; /* borrowed */
	struct pp_dispatch *d;      /* borrowed */
	pp_rest_health_fn health;
	void *health_arg;
};

/* {"reason": reason[, "detail": detail]}: the API's error body; detail is ours, for developers.
 * 0, or nonzero when out of memory. */
static int reason_json(struct cm_buf *b, const char *reason, const char *detail)
{
	cm_buf_puts(b, "{\"reason\":\"");
	cm_buf_json_escape(b, reason, strlen(reason));
	if (detail && *detail) {
		cm_buf_puts(b, "\",\"detail\":\"");
		cm_buf_json_escape(b, detail, strlen(detail));
	}
	return cm_buf_puts(b, "\"}\n");
}

static void respond_reason(struct cm_http_req *req, int status, const char *reason,
                           const char *detail)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (reason_json(&b, reason, detail) != 0)
		cm_http_respond(req, 500, NULL, NULL, 0);
	else
		cm_http_respond(req, status, JSON_TYPE, b.data, b.len);
	cm_buf_free(&b);
}

static void respond_result(struct cm_http_req *req, const struct pp_result *r)
{
	const char *reason;
	int status = pp_result_http(r, &reason);

	if (!reason)
		cm_http_respond(req, status, NULL, NULL, 0);
	else
		respond_reason(req, status, reason, r->reason);
}

/* The outcome of one notification; arg is the request (answering a request whose client has
 * gone only frees it). */
static void on_outcome(void *arg, const struct pp_result *r)
{
	respond_result(arg, r);
}

/* The HTTP server's own answers in the API's error format, with reasons from MongoosePush's
 * list (clients know no others; docs/platypus.md has the table) and the detail saying which. */
static const char *http_error(void *arg, const struct cm_http_req *req, int status,
                              struct cm_buf *out)
{
	const char *reason = "invalid_request", *detail;

	(void)arg;
	(void)req;
	switch (status) {
	case 400:
		detail = "malformed HTTP request";
		break;
	case 404:
		detail = "no such path: the API is POST /v3/notification/{device_id}";
		break;
	case 405:
		detail = "method not allowed here (the Allow header lists those that are)";
		break;
	case 413:
		reason = "payload_too_large";
		detail = "request body larger than rest.max_body";
		break;
	case 431:
		detail = "request header fields larger than 8 KiB";
		break;
	case 505:
		detail = "HTTP version not supported";
		break;
	default:
		reason = "unspecified";
		detail = "internal error";
		break;
	}
	return reason_json(out, reason, detail) == 0 ? JSON_TYPE : NULL;
}

static int valid_device_id(const char *id)
{
	return *id && strchr(id, '/') == NULL;
}

/* The device id of the path percent-decoded into out (at least strlen(raw) + 1 bytes), as
 * MongoosePush does: FCM tokens hold ':', which clients encode as %3A. 0, or -EINVAL with err
 * naming the escape that is not one (or that would put a NUL in the token). */
static int decode_device_id(const char *raw, char *out, char *err, size_t errlen)
{
	size_t bad = 0;

	if (cm_http_unescape(raw, out, &bad) < 0)
		return cm_errf(err, errlen, -EINVAL,
		               "device_id: \"%.3s\" at %zu is not a percent-encoded character",
		               raw + bad, bad);
	return 0;
}

static int on_notification(void *arg, struct cm_http_req *req)
{
	struct pp_rest *rest = arg;
	const char *raw = cm_http_req_rest(req);
	struct pp_result res;
	struct pp_notif n;
	const char *body;
	char err[256], *id;
	size_t len;
	int r;

	if (!valid_device_id(raw)) {
		respond_reason(req, 404, "invalid_request", "POST /v3/notification/{device_id}");
		return 0;
	}
	id = malloc(strlen(raw) + 1);
	if (!id) {
		respond_reason(req, 503, "service_internal", "out of memory");
		return 0;
	}
	if (decode_device_id(raw, id, err, sizeof(err))) {
		respond_reason(req, 400, "invalid_request", err);
		free(id);
		return 0;
	}
	body = cm_http_req_body(req, &len);
	pp_notif_init(&n);
	r = pp_notif_from_mongoosepush(&n, id, body, len, err, sizeof(err));
	if (r == -ENOMEM) {
		respond_reason(req, 503, "service_internal", "out of memory");
	} else if (r) {
		CM_LOGD("rest", "notification for %.16s... refused: %s", id, err);
		respond_reason(req, 400, "invalid_request", err);
	} else if (pp_dispatch_submit(rest->d, &n, on_outcome, req, &res) != 0) {
		respond_result(req, &res);
	}
	pp_notif_free(&n);
	free(id);
	return 0;
}

static int on_healthcheck(void *arg, struct cm_http_req *req)
{
	struct pp_rest *rest = arg;
	struct cm_buf b;
	int sick = 0;

	cm_buf_init(&b, 0);
	cm_buf_puts(&b, "{");
	if (rest->health)
		sick = rest->health(rest->health_arg, &b);
	if (b.len > 1)
		cm_buf_puts(&b, ",");
	cm_buf_printf(&b, "\"status\":\"%s\"}\n", sick ? "unavailable" : "ok");
	cm_http_respond(req, sick ? 503 : 200, JSON_TYPE, b.data, b.len);
	cm_buf_free(&b);
	return 0;
}

static int on_openapi(void *arg, struct cm_http_req *req)
{
	(void)arg;
	cm_http_respond(req, 200, JSON_TYPE, pp_rest_openapi, strlen(pp_rest_openapi));
	return 0;
}

int pp_rest_alloc(struct pp_rest **out, struct cm_http_server *srv, struct pp_dispatch *d,
                  pp_rest_health_fn health, void *health_arg)
{
	struct pp_rest *rest = calloc(1, sizeof(*rest));
	int r;

	if (!rest)
		return -ENOMEM;
	rest->srv = srv;
	rest->d = d;
	rest->health = health;
	rest->health_arg = health_arg;
	r = cm_http_route(srv, PREFIX, CM_HTTP_PREFIX, "POST", on_notification, rest);
	r = r ? r : cm_http_route(srv, "/healthcheck", 0, "GET, HEAD", on_healthcheck, rest);
	r = r ? r : cm_http_route(srv, "/openapi.json", 0, "GET, HEAD", on_openapi, rest);
	if (r) {
		free(rest);
		return r;
	}
	cm_http_server_set_error_body(srv, http_error, NULL);
	*out = rest;
	return 0;
}

void pp_rest_free(struct pp_rest *rest)
{
	free(rest);
}
