/* fuzz_admin_http.c - libFuzzer target: the admin server's request parser and responder.
 *
 * The input is what a client sends on one connection. It is parsed and answered twice, once in
 * a single piece and once in pseudo-random pieces (as reads would split it), the way a connection
 * does: answer each complete request, stop at an error or at a response that closes. Both runs
 * must give the same answers, and every response must be well formed: a status line, a
 * Content-Length that matches the body (none for HEAD), the head ended by an empty line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
/* relative to this file, so that both the replay build (-I.) and the fuzz build find it */
#include "common/src/admin_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ANSWERS 64

struct outcome {
	int n;
	int status[MAX_ANSWERS];
	int closed;
};

/* The server is built once and kept: it is never listened on, only asked to respond. */
static struct cm_admin *server;
static unsigned health_calls; /* reset per run, so both runs see the same health answers */

static int health(void *arg, struct cm_buf *details)
{
	(void)arg;
	if (cm_buf_puts(details, "\"pools\":{\"a\":1}") != 0)
		return 1;
	return (int)(health_calls++ & 1);
}

static int h_echo(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	int r;

	(void)arg;
	r = cm_buf_printf(&resp->body, "%s %s ?%s ", req->method, req->path, req->query);
	return r ? r : cm_buf_append(&resp->body, req->body, req->body_len);
}

static int h_fail(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	(void)arg;
	(void)resp;
	/* the status a handler picks, taken from the body: anything must come out well formed */
	if (req->body_len)
		resp->status = atoi(req->body);
	return req->query[0] ? -5 : 0;
}

static struct cm_admin *get_server(void)
{
	static uv_loop_t loop;
	static struct cm_metrics *metrics;
	struct cm_admin_config cfg = {.daemon = "fuzz\"d", .version = "1.0\n"};

	if (server)
		return server;
	/* failing handlers are expected here; their warnings would only slow the run down */
	cm_log_set_level(CM_LOG_ERROR);
	if (uv_loop_init(&loop) != 0 || cm_metrics_alloc(&metrics) != 0)
		abort();
	if (cm_admin_alloc(&server, &loop, metrics, &cfg) != 0)
		abort();
	cm_admin_set_health(server, health, NULL);
	if (cm_admin_route(server, "/echo", h_echo, NULL) != 0 ||
	    cm_admin_route(server, "/status", h_fail, NULL) != 0)
		abort();
	return server;
}

/* A response must be complete and consistent on its own. */
static void check_response(const struct cm_buf *out, size_t start, int head, int *status)
{
	const char *r = out->data + start, *end, *cl;
	size_t hl;

	if (out->len <= start || strncmp(r, "HTTP/1.1 ", 9) != 0)
		abort();
	*status = atoi(r + 9);
	if (*status < 200 || *status > 599)
		abort();
	end = strstr(r, "\r\n\r\n");
	if (!end)
		abort();
	hl = (size_t)(end - r) + 4;
	cl = strstr(r, "\r\nContent-Length: ");
	if (*status == 204 || *status == 304) {
		if ((cl && cl < end) || out->len - start != hl)
			abort();
		return;
	}
	if (!cl || cl > end || !strstr(r, "\r\nContent-Type: "))
		abort();
	if (head) {
		if (out->len - start != hl)
			abort();
	} else if ((size_t)strtoull(cl + 18, NULL, 10) != out->len - start - hl) {
		abort();
	}
}

/* xorshift: piece sizes that depend on the input but not on libFuzzer's state */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void run(const uint8_t *data, size_t size, uint32_t seed, struct outcome *o)
{
	struct cm_admin *a = get_server();
	struct cm_admin_http *p;
	struct cm_buf out;
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	health_calls = 0;
	if (cm_admin__http_alloc(&p) != 0)
		abort();
	cm_buf_init(&out, 0);
	while (off < size && o->n < MAX_ANSWERS) {
		size_t k = size - off, used, start = out.len;
		int r, close = 0, head = 0;

		if (seed) {
			size_t piece = 1 + next_rand(&seed) % 97;

			k = k < piece ? k : piece;
		}
		r = cm_admin__http_feed(p, (const char *)data + off, k, &used);
		if (r == CM_ADMIN_HTTP_MORE) {
			off += used;
			continue;
		}
		if (r < 0) {
			if (cm_admin__respond_error(a, p, r, &out) != 0)
				abort();
			close = 1;
		} else {
			off += used;
			head = strcmp(cm_admin__http_request(p)->method, "HEAD") == 0;
			if (cm_admin__respond(a, p, &out, &close) != 0)
				abort();
			cm_admin__http_next(p);
		}
		check_response(&out, start, head, &o->status[o->n]);
		o->n++;
		if (close) {
			o->closed = 1;
			break;
		}
		cm_buf_reset(&out);
	}
	cm_buf_free(&out);
	cm_admin__http_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, pieces;
	uint32_t seed = 2166136261u;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	run(data, size, 0, &whole);
	run(data, size, seed | 1, &pieces);
	if (whole.n != pieces.n || whole.closed != pieces.closed ||
	    memcmp(whole.status, pieces.status, sizeof(whole.status)) != 0) {
		fprintf(stderr, "fuzz_admin_http: answers differ with the input in pieces\n");
		abort();
	}
	return 0;
}
