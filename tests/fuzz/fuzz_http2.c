/* fuzz_http2.c - libFuzzer target: an HTTP/2 connection of the HTTP server (cm/http.h): the
 * nghttp2 session adapter, stream requests, early answers (413, 431), resets (rapid resets
 * among them), streams refused for the connection's memory budget, and dispatch, through an
 * in-memory connection.
 *
 * The input is what a client sends after the connection preface (which the target adds). It is
 * fed in pseudo-random pieces; some routes answer at once, some hold the request and answer it
 * after the next piece, in an order taken from the input, and some are answered only after the
 * connection is gone. The output must be a sequence of whole HTTP/2 frames. ASan and UBSan do
 * the rest: no leak, no use after free whatever the client resets or closes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cm/buf.h"
#include "cm/http.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "common/src/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD 64

static struct cm_http_server *server;
static struct cm_http_req *held[MAX_HELD];
static int nheld;
static int cancels;

static void on_cancel(void *arg, struct cm_http_req *req)
{
	(void)arg;
	(void)req;
	cancels++;
}

static int h_echo(void *arg, struct cm_http_req *req)
{
	size_t len;
	const char *body = cm_http_req_body(req, &len);
	struct cm_http_header h = {"x-path", cm_http_req_path(req)};

	(void)arg;
	/* a header value from the client, echoed: it must not break the response */
	cm_http_respond_headers(req, 200, NULL, &h, 1, body, len);
	return 0;
}

static int h_hold(void *arg, struct cm_http_req *req)
{
	(void)arg;
	if (nheld == MAX_HELD)
		return -5;
	cm_http_req_set_cancel(req, on_cancel, NULL);
	held[nheld++] = req;
	return 0;
}

static int h_big(void *arg, struct cm_http_req *req)
{
	static char big[100000];

	(void)arg;
	/* more than the client's initial window: flow control decides */
	cm_http_respond(req, 200, "application/octet-stream", big, sizeof(big));
	return 0;
}

static int h_fail(void *arg, struct cm_http_req *req)
{
	(void)arg;
	(void)req;
	return -5;
}

static struct cm_http_server *get_server(void)
{
	static uv_loop_t loop;
	static struct cm_loop cl; /* the server's connections would be cm_streams */
	static struct cm_metrics *metrics;
	struct cm_http_config cfg = {.metrics_prefix = "fuzz2",
	                             .limits = {.max_streams = 8,
	                                        .max_body_bytes = 1000,
	                                        .max_header_bytes = 2000,
	                                        .max_receiving_bytes = 6000}};

	if (server)
		return server;
	cm_log_set_level(CM_LOG_ERROR);
	if (uv_loop_init(&loop) != 0 || cm_loop_init(&cl, &loop, 0) != 0 ||
	    cm_metrics_alloc(&metrics) != 0)
		abort();
	if (cm_http_server_alloc(&server, &loop, metrics, &cfg) != 0)
		abort();
	if (cm_http_route(server, "/", CM_HTTP_PREFIX, NULL, h_echo, NULL) != 0 ||
	    cm_http_route(server, "/h", CM_HTTP_PREFIX, NULL, h_hold, NULL) != 0 ||
	    cm_http_route(server, "/big", 0, "GET", h_big, NULL) != 0 ||
	    cm_http_route(server, "/fail", 0, NULL, h_fail, NULL) != 0)
		abort();
	return server;
}

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Answer some of the held requests (all when all is set), in an order from the seed. */
static void answer_held(uint32_t *seed, int all)
{
	int n = all ? nheld : (int)(next_rand(seed) % (uint32_t)(nheld + 1));

	while (n-- > 0 && nheld > 0) {
		int i = (int)(next_rand(seed) % (uint32_t)nheld);
		struct cm_http_req *req = held[i];

		held[i] = held[--nheld];
		cm_http_respond(req, 200, "text/x", "held", 4);
	}
}

/* The output must be whole frames. */
static void check_frames(const struct cm_buf *out)
{
	size_t off = 0;

	while (off < out->len) {
		const unsigned char *p = (const unsigned char *)out->data + off;
		size_t len;

		if (out->len - off < 9)
			abort();
		len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
		if (out->len - off - 9 < len)
			abort();
		off += 9 + len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_http_conn *c;
	uint32_t seed = 2166136261u;
	size_t off = 0;
	int r = 0;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	seed |= 1;
	nheld = 0;
	cancels = 0;
	if (cm_http__conn_mem_alloc(&c, get_server()) != 0)
		abort();
	if (cm_http__conn_mem_input(c, CM_HTTP_H2_PREFACE, CM_HTTP_H2_PREFACE_LEN) != 0)
		abort();
	while (off < size && r == 0) {
		size_t k = size - off, piece = 1 + next_rand(&seed) % 300;

		k = k < piece ? k : piece;
		r = cm_http__conn_mem_input(c, (const char *)data + off, k);
		off += k;
		answer_held(&seed, 0);
		if (r == 0)
			r = cm_http__conn_mem_resume(c);
		check_frames(&c->out);
		cm_buf_reset(&c->out); /* the client read it */
	}
	/* half of the time, the rest is answered while the connection lives */
	if (seed & 1)
		answer_held(&seed, 1);
	cm_http__conn_mem_free(c);
	/* the rest after it is gone: a no-op that frees */
	answer_held(&seed, 1);
	return 0;
}
