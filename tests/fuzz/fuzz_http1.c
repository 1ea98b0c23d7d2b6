/* fuzz_http1.c - libFuzzer target: an HTTP/1 connection of the HTTP server (cm/http.h), parser,
 * request queue and response writer, through an in-memory connection.
 *
 * The input is what a client sends on one connection. It is fed twice, once in a single piece
 * and once in pseudo-random pieces (as reads would split it). Some routes answer at once, some
 * hold the request and answer it after the next piece, in an order taken from the input. Both
 * runs must give the same answers (interim 100 Continue aside, which depends on the pieces), and
 * the output must be a well-formed sequence of responses: a status line, a Content-Length that
 * matches the body (none for HEAD, 204, 1xx), the head ended by an empty line. (This target
 * replaces fuzz_admin_http, whose corpus it inherits.) */
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
/* relative to this file, so that both the replay build (-I.) and the fuzz build find it */
#include "common/src/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ANSWERS 64
#define MAX_HELD    32

struct outcome {
	int n;
	int status[MAX_ANSWERS];
	int closed;
};

/* Per run: which handled requests were HEAD (in handling order), and the held ones. */
struct run_state {
	unsigned char *head; /* grows with the requests handled */
	size_t cap;
	int nhandled, nchecked;
	struct cm_http_req *held[MAX_HELD];
	int nheld;
};

static struct cm_http_server *server;
static struct run_state *rs;

static void log_handled(struct cm_http_req *req)
{
	if ((size_t)rs->nhandled == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		unsigned char *h = realloc(rs->head, cap);

		if (!h)
			abort();
		rs->head = h;
		rs->cap = cap;
	}
	rs->head[rs->nhandled++] = strcmp(cm_http_req_method(req), "HEAD") == 0;
}

static int h_echo(void *arg, struct cm_http_req *req)
{
	struct cm_buf b;
	size_t len;
	const char *body = cm_http_req_body(req, &len);
	const char *x = cm_http_req_header(req, "x-status");
	int r, status = x && strcmp(x, "204") == 0 ? 204 : 200;

	(void)arg;
	log_handled(req);
	cm_buf_init(&b, 0);
	r = cm_buf_printf(&b, "%s %s ?%s ", cm_http_req_method(req), cm_http_req_path(req),
	                  cm_http_req_query(req));
	r = r ? r : cm_buf_append(&b, body, len);
	cm_http_respond(req, status, NULL, b.data, b.len);
	cm_buf_free(&b);
	return 0;
}

static int h_hold(void *arg, struct cm_http_req *req)
{
	(void)arg;
	log_handled(req);
	if (rs->nheld == MAX_HELD)
		return cm_http_respond(req, 201, NULL, "full", 4), 0;
	rs->held[rs->nheld++] = req;
	return 0;
}

static int h_fail(void *arg, struct cm_http_req *req)
{
	(void)arg;
	log_handled(req);
	return -5;
}

static struct cm_http_server *get_server(void)
{
	static uv_loop_t loop;
	static struct cm_loop cl; /* the server's connections would be cm_streams */
	static struct cm_metrics *metrics;
	static const struct cm_http_header extra[] = {{"Cache-Control", "no-store"}};
	struct cm_http_config cfg = {.metrics_prefix = "fuzz",
	                             .limits = {.max_in_flight = 4},
	                             .extra_headers = extra,
	                             .nextra_headers = 1};

	if (server)
		return server;
	/* failing handlers are expected here; their warnings would only slow the run down */
	cm_log_set_level(CM_LOG_ERROR);
	if (uv_loop_init(&loop) != 0 || cm_loop_init(&cl, &loop, 0) != 0 ||
	    cm_metrics_alloc(&metrics) != 0)
		abort();
	if (cm_http_server_alloc(&server, &loop, metrics, &cfg) != 0)
		abort();
	/* a catch-all: every well-formed request reaches a handler, except 405s */
	if (cm_http_route(server, "/", CM_HTTP_PREFIX, NULL, h_echo, NULL) != 0 ||
	    cm_http_route(server, "/hold", CM_HTTP_PREFIX, NULL, h_hold, NULL) != 0 ||
	    cm_http_route(server, "/fail", 0, NULL, h_fail, NULL) != 0 ||
	    cm_http_route(server, "/get", 0, "GET, HEAD", h_echo, NULL) != 0)
		abort();
	return server;
}

/* Parse the responses in out from *off; record final statuses. */
static void check_output(const struct cm_buf *out, size_t *off, struct outcome *o)
{
	while (*off < out->len) {
		const char *r = out->data + *off, *end, *cl;
		size_t hl, avail = out->len - *off;
		int status, head, bodiless;

		if (avail < 9 || strncmp(r, "HTTP/1.1 ", 9) != 0)
			abort();
		end = strstr(r, "\r\n\r\n");
		if (!end)
			abort();
		hl = (size_t)(end - r) + 4;
		status = atoi(r + 9);
		if (status == 100) {
			*off += hl;
			continue;
		}
		if (status < 200 || status > 599)
			abort();
		/* server-made answers never went through a handler; handlers never answer 4xx */
		if ((status >= 400 && status < 500) || status == 505) {
			/* a refused HEAD request gets no body either: nothing (or the next
			 * response) after the head means HEAD */
			head = avail == hl ||
			       (avail - hl >= 9 && strncmp(r + hl, "HTTP/1.1 ", 9) == 0);
		} else {
			if (rs->nchecked >= rs->nhandled)
				abort();
			head = rs->head[rs->nchecked++];
		}
		bodiless = status == 204 || status == 304;
		cl = strstr(r, "\r\nContent-Length: ");
		if (cl && cl > end)
			cl = NULL;
		if (bodiless) {
			if (cl)
				abort();
			*off += hl;
		} else {
			size_t n;

			if (!cl || !strstr(r, "\r\nContent-Type: "))
				abort();
			n = (size_t)strtoull(cl + 18, NULL, 10);
			if (head)
				n = 0;
			if (hl + n > avail)
				abort();
			*off += hl + n;
		}
		if (o->n < MAX_ANSWERS)
			o->status[o->n] = status;
		o->n++;
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

/* Answer the held requests, in an order from the seed. */
static void answer_held(uint32_t *seed)
{
	while (rs->nheld > 0) {
		int i = (int)(next_rand(seed) % (uint32_t)rs->nheld);
		struct cm_http_req *req = rs->held[i];

		rs->held[i] = rs->held[--rs->nheld];
		cm_http_respond(req, 200, "text/x", "held", 4);
	}
}

static void run(const uint8_t *data, size_t size, uint32_t seed, int split, struct outcome *o)
{
	struct run_state st;
	struct cm_http_conn *c;
	size_t off = 0, checked = 0;
	uint32_t order = seed;

	memset(o, 0, sizeof(*o));
	memset(&st, 0, sizeof(st));
	rs = &st;
	if (cm_http__conn_mem_alloc(&c, get_server()) != 0)
		abort();
	while (off < size) {
		size_t k = size - off;
		int r;

		if (split) {
			size_t piece = 1 + next_rand(&seed) % 97;

			k = k < piece ? k : piece;
		}
		r = cm_http__conn_mem_input(c, (const char *)data + off, k);
		off += k;
		if (c->proto == CM_HTTP_PROTO_H2)
			break; /* the HTTP/2 preface: fuzz_http2's business */
		/* answer, let the client read, and go on with what was held back */
		for (;;) {
			size_t before;

			answer_held(&order);
			check_output(&c->out, &checked, o);
			cm_buf_reset(&c->out);
			checked = 0;
			if (!c->paused || r != 0)
				break;
			before = c->pending.len;
			r = cm_http__conn_mem_resume(c);
			if (c->paused && c->pending.len == before && c->out.len == 0 && !rs->nheld)
				abort(); /* held back for good: the connection would hang */
		}
		if (r != 0)
			break;
	}
	answer_held(&order);
	if (c->proto != CM_HTTP_PROTO_H2)
		check_output(&c->out, &checked, o);
	/* an HTTP/2 connection is not compared: fuzz_http2 covers it */
	o->closed = c->proto != CM_HTTP_PROTO_H2 && c->state != CM_HTTP_CONN_OPEN;
	cm_http__conn_mem_free(c);
	/* requests detached by the close are answered by now */
	answer_held(&order);
	free(st.head);
	rs = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, pieces;
	uint32_t seed = 2166136261u;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	seed |= 1;
	run(data, size, seed, 0, &whole);
	run(data, size, seed, 1, &pieces);
	if (whole.n != pieces.n || whole.closed != pieces.closed ||
	    memcmp(whole.status, pieces.status, sizeof(whole.status)) != 0) {
		fprintf(stderr,
		        "fuzz_http1: answers differ with the input in pieces: %d/%d %d/%d %d/%d\n",
		        whole.n, pieces.n, whole.closed, pieces.closed, whole.status[0],
		        pieces.status[0]);
		abort();
	}
	return 0;
}
