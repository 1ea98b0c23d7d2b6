/* test_http.c - unit tests for the HTTP server (cm/http.h): HTTP/1.1 and HTTP/2 (nghttp2's
 * client session in the test), cleartext and TLS, synchronous and asynchronous answers, and the
 * in-memory connection under allocation failures. The loop runs in the test's own thread; the
 * clients are non-blocking sockets pumped together with it, so a test decides exactly when a
 * held request is answered. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>

#include "cm/buf.h"
#include "cm/http.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/tls.h"
#include "common/src/http_int.h"
#include "tests/support/alloc.h"

#define TLSDIR   "tests/common/tls/"
#define MAX_HELD 64

/* === the HTTP/1 parser, without sockets (from the admin server's tests)
 * ============================================================= */

struct parsed {
	int status; /* 0: a request; else the error's HTTP status */
	char line[256];
};

/* Feed text in steps of `step` bytes and describe each outcome, one entry per request. */
static const struct cm_http_limits admin_lim = {.max_header_bytes = CM_HTTP_DEF_HEADER_BYTES,
                                                .max_body_bytes = CM_HTTP_DEF_BODY_BYTES};

static int parse_all(const char *text, size_t len, size_t step, struct parsed *out, int max)
{
	struct cm_http_h1 *p;
	size_t off = 0;
	int n = 0;

	assert_int_equal(cm_http__h1_alloc(&p, NULL, &admin_lim), 0);
	while (off < len && n < max) {
		size_t k = len - off < step ? len - off : step, used;
		int r = cm_http__h1_feed(p, text + off, k, &used);

		if (r < 0) {
			out[n].status = cm_http__h1_error_status(r);
			snprintf(out[n].line, sizeof(out[n].line), "error %d", r);
			n++;
			break;
		}
		off += used;
		if (r == CM_HTTP1_DONE) {
			struct cm_http_req *q = cm_http__h1_take(p);
			size_t blen;
			const char *body = cm_http_req_body(q, &blen);

			out[n].status = 0;
			snprintf(out[n].line, sizeof(out[n].line), "%s %s ?%s [%.*s] ka=%d 10=%d",
			         cm_http_req_method(q), cm_http_req_path(q), cm_http_req_query(q),
			         (int)blen, body, q->keep_alive, q->version == 10);
			n++;
			cm_http__req_free(q);
		}
	}
	cm_http__h1_free(p);
	return n;
}

/* Every chunking of the input must give the same requests. */
static int parse_check(const char *text, size_t len, struct parsed *out, int max)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 1000000};
	struct parsed other[8];
	int n = parse_all(text, len, steps[0], out, max);

	for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int m = parse_all(text, len, steps[i], other, 8);

		assert_int_equal(m, n);
		for (int j = 0; j < n; j++) {
			assert_int_equal(other[j].status, out[j].status);
			assert_string_equal(other[j].line, out[j].line);
		}
	}
	return n;
}

#define PARSE(text, out) parse_check((text), sizeof(text) - 1, (out), 8)

static void test_parse_requests(void **state)
{
	struct parsed r[8];

	(void)state;
	assert_int_equal(PARSE("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET /health ? [] ka=1 10=0");
	assert_int_equal(PARSE("GET /a?b=c&d#frag HTTP/1.1\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET /a ?b=c&d [] ka=1 10=0");
	/* absolute form */
	assert_int_equal(PARSE("GET http://host:1/p?q HTTP/1.1\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET /p ?q [] ka=1 10=0");
	/* HTTP/1.0: closes unless asked */
	assert_int_equal(PARSE("GET / HTTP/1.0\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET / ? [] ka=0 10=1");
	assert_int_equal(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET / ? [] ka=1 10=1");
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", r), 1);
	assert_string_equal(r[0].line, "GET / ? [] ka=0 10=0");
	/* bodies: by length, chunked */
	assert_int_equal(PARSE("POST /e HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", r), 1);
	assert_string_equal(r[0].line, "POST /e ? [hello] ka=1 10=0");
	assert_int_equal(PARSE("POST /e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                       "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
	                       r),
	                 1);
	assert_string_equal(r[0].line, "POST /e ? [abcde] ka=1 10=0");
	/* bare LF line ends are tolerated */
	assert_int_equal(PARSE("GET /lf HTTP/1.1\nHost: x\n\n", r), 1);
	assert_string_equal(r[0].line, "GET /lf ? [] ka=1 10=0");
	/* pipelined, with a body in the middle */
	assert_int_equal(
	    PARSE("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\n"
	          "hiHEAD /3 HTTP/1.1\r\n\r\n",
	          r),
	    3);
	assert_string_equal(r[0].line, "GET /1 ? [] ka=1 10=0");
	assert_string_equal(r[1].line, "POST /2 ? [hi] ka=1 10=0");
	assert_string_equal(r[2].line, "HEAD /3 ? [] ka=1 10=0");
	/* an upgrade is answered, but nothing after it is parsed as HTTP */
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n", r),
	                 1);
	assert_string_equal(r[0].line, "GET / ? [] ka=0 10=0");
}

static void test_parse_errors(void **state)
{
	struct parsed r[8];

	(void)state;
	assert_int_equal(PARSE("garbage\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 400);
	assert_int_equal(PARSE("FOO / HTTP/1.1\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 400);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nBad Header\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 400);
	assert_int_equal(PARSE("GET /a\0b HTTP/1.1\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 400);
	assert_int_equal(
	    PARSE("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 400);
	assert_int_equal(PARSE("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", r),
	                 1);
	assert_int_equal(r[0].status, 400);
	/* HTTP/0.9 and 2.0 are not spoken here */
	assert_int_equal(PARSE("GET /\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 505);
	assert_int_equal(PARSE("GET / HTTP/2.0\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 505);
	/* a good request, then a bad one: the first is still answered */
	assert_int_equal(PARSE("GET /ok HTTP/1.1\r\n\r\nBAD\r\n\r\n", r), 2);
	assert_int_equal(r[0].status, 0);
	assert_int_equal(r[1].status, 400);
	/* over the declared body limit: refused before reading it */
	assert_int_equal(PARSE("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", r), 1);
	assert_int_equal(r[0].status, 413);
}

/* A request whose head is exactly n bytes. */
static char *head_of(size_t n, size_t *len)
{
	const char *pre = "GET / HTTP/1.1\r\nX-Fill: ";
	char *s = malloc(n + 1);
	size_t pl = strlen(pre);

	assert_non_null(s);
	memcpy(s, pre, pl);
	memset(s + pl, 'a', n - pl - 4);
	memcpy(s + n - 4, "\r\n\r\n", 4);
	s[n] = '\0';
	*len = n;
	return s;
}

static void test_parse_limits(void **state)
{
	struct parsed r[8];
	size_t len;
	char *s;
	struct cm_buf b;

	(void)state;
	s = head_of(CM_HTTP_DEF_HEADER_BYTES, &len);
	assert_int_equal(parse_check(s, len, r, 8), 1);
	assert_int_equal(r[0].status, 0);
	free(s);
	s = head_of(CM_HTTP_DEF_HEADER_BYTES + 1, &len);
	assert_int_equal(parse_check(s, len, r, 8), 1);
	assert_int_equal(r[0].status, 431);
	free(s);
	/* a head that never ends is refused after the limit, not after all of it */
	s = malloc(100000);
	assert_non_null(s);
	memset(s, 'a', 100000);
	memcpy(s, "GET /", 5);
	assert_int_equal(parse_all(s, 100000, 100000, r, 8), 1);
	assert_int_equal(r[0].status, 431);
	free(s);

	/* body: 64 KiB is fine, one byte more is not, by length or chunked */
	cm_buf_init(&b, 0);
	assert_int_equal(cm_buf_printf(&b, "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
	                               CM_HTTP_DEF_BODY_BYTES),
	                 0);
	for (int i = 0; i < CM_HTTP_DEF_BODY_BYTES; i++)
		assert_int_equal(cm_buf_append(&b, "x", 1), 0);
	assert_int_equal(parse_all(b.data, b.len, 4096, r, 8), 1);
	assert_int_equal(r[0].status, 0);
	cm_buf_reset(&b);
	assert_int_equal(cm_buf_puts(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
	                 0);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(cm_buf_puts(&b, "400\r\n"), 0);
		for (int j = 0; j < 1024; j++)
			assert_int_equal(cm_buf_append(&b, "y", 1), 0);
		assert_int_equal(cm_buf_puts(&b, "\r\n"), 0);
	}
	len = b.len;
	assert_int_equal(cm_buf_puts(&b, "0\r\n\r\n"), 0);
	assert_int_equal(parse_all(b.data, b.len, 5000, r, 8), 1);
	assert_int_equal(r[0].status, 0);
	b.len = len;
	assert_int_equal(cm_buf_puts(&b, "1\r\nz\r\n0\r\n\r\n"), 0);
	assert_int_equal(parse_all(b.data, b.len, 5000, r, 8), 1);
	assert_int_equal(r[0].status, 413);
	cm_buf_free(&b);
}

static void test_parse_protocol(void **state)
{
	struct cm_http_h1 *p;
	struct cm_http_req *q;
	const char *req = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	size_t used;

	(void)state;
	assert_int_equal(cm_http__h1_alloc(&p, NULL, &admin_lim), 0);
	assert_null(cm_http__h1_partial(p));
	assert_int_equal(cm_http__h1_feed(p, req, 0, &used), CM_HTTP1_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(cm_http__h1_feed(p, req, strlen(req), &used), CM_HTTP1_DONE);
	assert_int_equal(used, 19);
	assert_string_equal(cm_http__h1_partial(p)->path, "/a");
	/* the caller must take it first */
	assert_int_equal(cm_http__h1_feed(p, req + used, strlen(req) - used, &used), -EINVAL);
	q = cm_http__h1_take(p);
	assert_non_null(q);
	cm_http__req_free(q);
	assert_null(cm_http__h1_take(p));
	assert_int_equal(cm_http__h1_feed(p, req + 19, strlen(req) - 19, &used), CM_HTTP1_DONE);
	q = cm_http__h1_take(p);
	assert_string_equal(cm_http_req_path(q), "/b");
	cm_http__req_free(q);
	/* errors are final */
	assert_int_equal(cm_http__h1_feed(p, "BAD\r\n", 5, &used), -EBADMSG);
	assert_int_equal(cm_http__h1_feed(p, req, strlen(req), &used), -EBADMSG);
	cm_http__h1_free(p);
	cm_http__h1_free(NULL);

	assert_int_equal(cm_http__h1_error_status(-EBADMSG), 400);
	assert_int_equal(cm_http__h1_error_status(-EMSGSIZE), 431);
	assert_int_equal(cm_http__h1_error_status(-EFBIG), 413);
	assert_int_equal(cm_http__h1_error_status(-EPROTONOSUPPORT), 505);
}

/* A request with a stored response, formatted as HTTP/1.1. */
static void format_case(struct cm_buf *b, int status, const char *ctype,
                        const struct cm_http_header *h, size_t nh, const char *body, int version,
                        int head, int close)
{
	struct cm_http_req *req;
	struct cm_http_header cc = {"cache-control", "no-store"};

	assert_int_equal(cm_http__req_alloc(&req, NULL, version), 0);
	req->head = head ? 1u : 0u;
	assert_int_equal(cm_http__req_store(req, status, ctype, h, nh, body, strlen(body)), 0);
	cm_buf_reset(b);
	assert_int_equal(cm_http__h1_format(b, req, close, &cc, 1), 0);
	cm_http__req_free(req);
}

static void test_format(void **state)
{
	struct cm_buf b;
	struct cm_http_header allow = {"Allow", "GET, HEAD"};

	(void)state;
	cm_buf_init(&b, 0);
	format_case(&b, 405, "text/plain", &allow, 1, "no\n", 11, 0, 1);
	assert_string_equal(b.data, "HTTP/1.1 405 Method Not Allowed\r\n"
	                            "Content-Type: text/plain\r\n"
	                            "Content-Length: 3\r\n"
	                            "Allow: GET, HEAD\r\n"
	                            "Connection: close\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n"
	                            "no\n");
	format_case(&b, 200, "a/b", NULL, 0, "body", 10, 1, 0);
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\n"
	                            "Content-Type: a/b\r\n"
	                            "Content-Length: 4\r\n"
	                            "Connection: keep-alive\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n");
	format_case(&b, 204, "a/b", NULL, 0, "dropped", 11, 0, 0);
	assert_string_equal(b.data, "HTTP/1.1 204 No Content\r\n"
	                            "Content-Type: a/b\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n");
	/* a handler's header may not split the response */
	{
		struct cm_http_req *req;
		struct cm_http_header evil = {"X-A", "b\r\nSet-Cookie: x"};

		assert_int_equal(cm_http__req_alloc(&req, NULL, 11), 0);
		assert_int_equal(cm_http__req_store(req, 200, NULL, &evil, 1, "", 0), -EINVAL);
		cm_buf_reset(&b);
		assert_int_equal(cm_http__h1_format(&b, req, 0, NULL, 0), 0);
		assert_null(strstr(b.data, "Set-Cookie"));
		cm_http__req_free(req);
	}
	cm_buf_free(&b);
}

static int scenario_parse(void *arg)
{
	const char *req = "POST /x?y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "5\r\nhello\r\n40\r\n0123456789012345678901234567890123456789012345678901"
	                  "234567890123\r\n0\r\n\r\n";
	struct cm_http_h1 *p;
	size_t off = 0, used;
	int r = 0;

	(void)arg;
	r = cm_http__h1_alloc(&p, NULL, &admin_lim);
	if (r)
		return r;
	/* small steps, so that the buffers grow several times */
	while (off < strlen(req)) {
		r = cm_http__h1_feed(p, req + off, 3, &used);
		off += used;
		if (r != CM_HTTP1_MORE)
			break;
	}
	if (r == CM_HTTP1_DONE) {
		struct cm_http_req *q = cm_http__h1_take(p);

		r = q->body.len == 69 ? 0 : -EIO;
		cm_http__req_free(q);
	} else if (r == CM_HTTP1_MORE)
		r = -EIO;
	cm_http__h1_free(p);
	return r;
}

static void test_alloc_parse(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(scenario_parse, NULL, 200) > 3);
}

/* === fixture ================================================================================= */

struct fx {
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: connections are cm_streams */
	struct cm_metrics *metrics;
	struct cm_tls *tls;
	struct cm_http_server *srv;
	int port;
	struct cm_http_req *held[MAX_HELD]; /* requests a handler kept */
	int nheld;
	int cancels;
	int respond_in_cancel; /* the cancel callback answers (a no-op that frees) */
	int closed;
};

static int h_echo(void *arg, struct cm_http_req *req)
{
	struct cm_buf b;
	size_t len;
	const char *body = cm_http_req_body(req, &len);
	const char *ua = cm_http_req_header(req, "X-Test");
	struct cm_http_header hdr = {"X-Echo", "yes"};
	int r;

	(void)arg;
	cm_buf_init(&b, 0);
	r = cm_buf_printf(&b, "%s %s ?%s rest=%s x=%s v=%d [%.*s]", cm_http_req_method(req),
	                  cm_http_req_path(req), cm_http_req_query(req), cm_http_req_rest(req),
	                  ua ? ua : "-", cm_http_req_version(req), (int)len, body);
	if (r) {
		cm_buf_free(&b);
		return r;
	}
	r = cm_http_respond_headers(req, 200, NULL, &hdr, 1, b.data, b.len);
	cm_buf_free(&b);
	return r == -ENOMEM ? 0 : r;
}

static void on_cancel(void *arg, struct cm_http_req *req)
{
	struct fx *f = arg;

	f->cancels++;
	assert_false(cm_http_req_alive(req));
	if (f->respond_in_cancel) {
		for (int i = 0; i < f->nheld; i++)
			if (f->held[i] == req)
				f->held[i] = NULL;
		assert_int_equal(cm_http_respond(req, 200, NULL, "late", 4), -ECONNRESET);
	}
}

static int h_hold(void *arg, struct cm_http_req *req)
{
	struct fx *f = arg;

	assert_true(f->nheld < MAX_HELD);
	assert_true(cm_http_req_alive(req));
	cm_http_req_set_cancel(req, on_cancel, f);
	f->held[f->nheld++] = req;
	return 0;
}

static int h_fail(void *arg, struct cm_http_req *req)
{
	(void)arg;
	(void)req;
	return -EIO;
}

static int h_big(void *arg, struct cm_http_req *req)
{
	size_t n = 300 * 1024;
	char *p = malloc(n);
	int r;

	(void)arg;
	assert_non_null(p);
	memset(p, 'b', n);
	r = cm_http_respond(req, 200, "application/octet-stream", p, n);
	free(p);
	return r == -ENOMEM ? 0 : r;
}

/* Answer held request i with "held <i>". */
static void answer_held(struct fx *f, int i, int want)
{
	char body[32];

	snprintf(body, sizeof(body), "held %d", i);
	assert_non_null(f->held[i]);
	assert_int_equal(cm_http_respond(f->held[i], 200, "text/x", body, strlen(body)), want);
	f->held[i] = NULL;
}

static void fx_init(struct fx *f, const struct cm_http_limits *lim, int tls)
{
	struct cm_http_config cfg = {.metrics_prefix = "rest"};
	struct sockaddr_in sin;

	memset(f, 0, sizeof(*f));
	if (lim)
		cfg.limits = *lim;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(cm_loop_init(&f->cl, &f->loop, 0), 0);
	assert_int_equal(cm_metrics_alloc(&f->metrics), 0);
	if (tls) {
		struct cm_tls_config tc = {.cert_file = TLSDIR "server.pem",
		                           .key_file = TLSDIR "server.key",
		                           .alpn = "h2,http/1.1"};
		char err[256];

		assert_int_equal(cm_tls_server_alloc(&f->tls, &tc, err, sizeof(err)), 0);
		cfg.tls = f->tls;
	}
	assert_int_equal(cm_http_server_alloc(&f->srv, &f->loop, f->metrics, &cfg), 0);
	assert_int_equal(cm_http_route(f->srv, "/echo", 0, NULL, h_echo, f), 0);
	assert_int_equal(cm_http_route(f->srv, "/get", 0, "GET, HEAD", h_echo, f), 0);
	assert_int_equal(cm_http_route(f->srv, "/hold", 0, NULL, h_hold, f), 0);
	assert_int_equal(
	    cm_http_route(f->srv, "/v3/notification/", CM_HTTP_PREFIX, "POST", h_hold, f), 0);
	assert_int_equal(cm_http_route(f->srv, "/v3/", CM_HTTP_PREFIX, NULL, h_echo, f), 0);
	assert_int_equal(cm_http_route(f->srv, "/fail", 0, NULL, h_fail, f), 0);
	assert_int_equal(cm_http_route(f->srv, "/big", 0, NULL, h_big, f), 0);
	assert_int_equal(cm_http_route(f->srv, "nope", 0, NULL, h_echo, f), -EINVAL);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(cm_http_server_listen(f->srv, (struct sockaddr *)&sin), 0);
	f->port = cm_http_server_port(f->srv);
	assert_true(f->port > 0);
}

static void on_closed(void *arg)
{
	((struct fx *)arg)->closed++;
}

/* Close the server, run the loop dry; *text gets the rendered metrics if asked. */
static void fx_done(struct fx *f, char **text)
{
	for (int i = 0; i < f->nheld; i++)
		if (f->held[i])
			cm_http_respond(f->held[i], 200, NULL, NULL, 0);
	cm_http_server_close(f->srv, on_closed, f);
	cm_loop_close(&f->cl, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(f->closed, 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	cm_loop_free(&f->cl);
	if (text) {
		struct cm_buf b;

		cm_buf_init(&b, 0);
		assert_int_equal(cm_metrics_render(f->metrics, &b), 0);
		*text = cm_buf_steal(&b);
	}
	cm_metrics_free(f->metrics);
	cm_tls_free(f->tls);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/* === a client: a non-blocking socket, optionally TLS, pumped with the loop =================== */

struct client {
	int fd;
	struct cm_tls *ctx;      /* client TLS context, NULL in cleartext */
	struct cm_tls_conn *tls; /* NULL in cleartext */
	struct cm_buf in;        /* plaintext received, not yet consumed */
	int eof;
};

static void client_open(struct client *c, struct fx *f, const char *alpn)
{
	struct sockaddr_in sin;

	memset(c, 0, sizeof(*c));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	cm_buf_init(&c->in, 0);
	if (alpn) {
		struct cm_tls_config tc = {.ca_file = TLSDIR "ca.pem", .alpn = alpn};
		char err[256];

		assert_int_equal(cm_tls_client_alloc(&c->ctx, &tc, err, sizeof(err)), 0);
		assert_int_equal(cm_tls_conn_alloc(&c->tls, c->ctx, "localhost"), 0);
	}
}

static void client_close(struct client *c)
{
	close(c->fd);
	cm_buf_free(&c->in);
	cm_tls_conn_free(c->tls);
	cm_tls_free(c->ctx);
}

static void raw_send(struct client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			usleep(1000);
			continue;
		}
		if (k < 0)
			return; /* the server closed: what it sent is still readable */
		p += k;
		n -= (size_t)k;
	}
}

/* Send what TLS has queued (handshake, records). */
static void client_flush_tls(struct client *c)
{
	char buf[16384];
	size_t n;

	while (c->tls && (n = cm_tls_conn_take(c->tls, buf, sizeof(buf))) > 0)
		raw_send(c, buf, n);
}

static void client_send_n(struct client *c, const char *p, size_t n)
{
	if (c->tls) {
		assert_int_equal(cm_tls_conn_write(c->tls, p, n), 0);
		client_flush_tls(c);
	} else {
		raw_send(c, p, n);
	}
}

static void client_send(struct client *c, const char *s)
{
	client_send_n(c, s, strlen(s));
}

/* One round: run the loop once, read what arrived. */
static void client_pump(struct fx *f, struct client *c)
{
	char buf[65536];
	ssize_t n = -1;

	uv_run(&f->loop, UV_RUN_NOWAIT);
	client_flush_tls(c);
	while (!c->eof && (n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->eof = 1;
			break;
		}
		if (!c->tls) {
			assert_int_equal(cm_buf_append(&c->in, buf, (size_t)n), 0);
			continue;
		}
		assert_int_equal(cm_tls_conn_feed(c->tls, buf, (size_t)n), 0);
	}
	if (n == 0)
		c->eof = 1;
	while (c->tls) {
		ssize_t k = cm_tls_conn_read(c->tls, buf, sizeof(buf));

		if (k <= 0) {
			if (k < 0)
				c->eof = 1;
			break;
		}
		assert_int_equal(cm_buf_append(&c->in, buf, (size_t)k), 0);
	}
	client_flush_tls(c);
}

/* Pump until cond(c, arg) holds; fails after 5 s. */
static void client_wait(struct fx *f, struct client *c, int (*cond)(struct client *, void *),
                        void *arg)
{
	double t0 = now_ms();

	while (!cond(c, arg)) {
		assert_true(now_ms() - t0 < 5000);
		client_pump(f, c);
		if (!cond(c, arg))
			usleep(500);
	}
}

/* Pump for ms milliseconds. */
static void pump_for(struct fx *f, struct client *c, double ms)
{
	double t0 = now_ms();

	while (now_ms() - t0 < ms) {
		client_pump(f, c);
		usleep(500);
	}
}

static int has_eof(struct client *c, void *arg)
{
	(void)arg;
	return c->eof;
}

struct response {
	int status;
	char head[4096];
	char body[512 * 1024];
	size_t body_len;
};

static const char *hval(const struct response *r, const char *name, char *out, size_t n)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strcasestr(r->head, key);
	if (!p)
		return NULL;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(out, n, "%.*s", (int)(e - p), p);
	return out;
}

/* Is a whole response in c->in? (-1 no; else its total length) head_only for HEAD. */
static long complete_response(struct client *c, int head_only)
{
	const char *end, *cl;
	size_t hl;

	if (!c->in.data || !(end = strstr(c->in.data, "\r\n\r\n")))
		return -1;
	hl = (size_t)(end - c->in.data) + 4;
	if (strncmp(c->in.data, "HTTP/1.1 1", 10) == 0 || head_only)
		return (long)hl;
	cl = strcasestr(c->in.data, "\r\nContent-Length: ");
	if (!cl || cl > end)
		return (long)hl;
	hl += (size_t)atol(cl + 18);
	return c->in.len >= hl ? (long)hl : -1;
}

static int has_response(struct client *c, void *arg)
{
	return complete_response(c, arg != NULL) >= 0;
}

static void read_response(struct fx *f, struct client *c, struct response *r, int head_only)
{
	long n;
	const char *end;
	size_t hl;

	client_wait(f, c, has_response, head_only ? (void *)1 : NULL);
	n = complete_response(c, head_only);
	end = strstr(c->in.data, "\r\n\r\n");
	hl = (size_t)(end - c->in.data) + 4;
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, c->in.data, hl);
	r->head[hl] = '\0';
	r->body_len = (size_t)n - hl;
	assert_true(r->body_len < sizeof(r->body));
	memcpy(r->body, c->in.data + hl, r->body_len);
	r->body[r->body_len] = '\0';
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
	memmove(c->in.data, c->in.data + n, c->in.len - (size_t)n);
	c->in.len -= (size_t)n;
	c->in.data[c->in.len] = '\0';
}

static void expect_body(struct fx *f, struct client *c, int status, const char *body)
{
	static struct response r;

	read_response(f, c, &r, 0);
	assert_int_equal(r.status, status);
	assert_string_equal(r.body, body);
}

/* === HTTP/1.1 ================================================================================ */

static void test_h1_sync(void **state)
{
	static struct response r;
	struct fx f;
	struct client c;
	char v[64], *text;

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nX-TEST: hi\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "GET /echo ?a=1 rest= x=hi v=11 []");
	assert_string_equal(hval(&r, "X-Echo", v, sizeof(v)), "yes");
	assert_string_equal(hval(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=utf-8");
	assert_null(hval(&r, "Connection", v, sizeof(v)));
	/* prefix routes: the longest prefix wins and the handler gets the rest */
	client_send(&c, "POST /v3/other/x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
	expect_body(&f, &c, 200, "POST /v3/other/x ? rest=other/x x=- v=11 [hi]");
	/* method filtering */
	client_send(&c, "DELETE /get HTTP/1.1\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 405);
	assert_string_equal(hval(&r, "Allow", v, sizeof(v)), "GET, HEAD");
	client_send(&c, "GET /v3/notification/abc HTTP/1.1\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 405);
	/* HEAD: length kept, body dropped */
	client_send(&c, "HEAD /get HTTP/1.1\r\n\r\nGET /nowhere HTTP/1.1\r\n\r\n");
	read_response(&f, &c, &r, 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(hval(&r, "Content-Length", v, sizeof(v)), "29");
	expect_body(&f, &c, 404, "not found\n");
	client_send(&c, "GET /fail HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 500, "internal error\n");
	/* chunked body */
	client_send(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n");
	expect_body(&f, &c, 200, "PUT /echo ? rest= x=- v=11 [abcdefg]");
	/* trailers are dropped; the head's headers stay intact (found by fuzz_http1) */
	client_send(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Test: head\r\n\r\n"
	                "1\r\nz\r\n0\r\nX-Test: trailer\r\nX-More: 1\r\n\r\n");
	expect_body(&f, &c, 200, "PUT /echo ? rest= x=head v=11 [z]");
	/* HTTP/1.0 */
	client_send(&c, "GET /echo HTTP/1.0\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_string_equal(hval(&r, "Connection", v, sizeof(v)), "close");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	fx_done(&f, &text);
	assert_non_null(strstr(text, "rest_requests_total{path=\"/echo\",code=\"200\"} 4\n"));
	assert_non_null(strstr(text, "rest_requests_total{path=\"/v3/\",code=\"200\"} 1\n"));
	assert_non_null(strstr(text, "rest_requests_total{path=\"other\",code=\"404\"} 1\n"));
	assert_non_null(strstr(text, "rest_requests_total{path=\"/get\",code=\"405\"} 1\n"));
	assert_non_null(
	    strstr(text, "rest_requests_total{path=\"/v3/notification/\",code=\"405\"} 1\n"));
	assert_non_null(strstr(text, "rest_connections 0\n"));
	free(text);
}

/* Pipelined requests whose handlers finish in another order are answered in request order. */
static void test_h1_async_order(void **state)
{
	struct fx f;
	struct client c;

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /hold?0 HTTP/1.1\r\n\r\n"
	                "POST /v3/notification/dev1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n{}\n"
	                "GET /echo HTTP/1.1\r\n\r\n"
	                "GET /hold?3 HTTP/1.1\r\n\r\n");
	while (f.nheld < 3)
		client_pump(&f, &c);
	assert_string_equal(cm_http_req_rest(f.held[1]), "dev1");
	assert_string_equal(cm_http_req_body(f.held[1], NULL), "{}\n");
	assert_string_equal(cm_http_req_query(f.held[2]), "3");
	/* answered last first: nothing may go out before the first is answered */
	answer_held(&f, 2, 0);
	answer_held(&f, 1, 0);
	pump_for(&f, &c, 50);
	assert_int_equal(c.in.len, 0);
	answer_held(&f, 0, 0);
	expect_body(&f, &c, 200, "held 0");
	expect_body(&f, &c, 200, "held 1");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	expect_body(&f, &c, 200, "held 2");
	/* still usable */
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	client_close(&c);
	fx_done(&f, NULL);
	assert_int_equal(f.cancels, 0);
}

/* A client that goes away before its answer: the handler is told, and the late answer is a
 * harmless no-op that frees the request. */
static void test_h1_disconnect(void **state)
{
	struct fx f;
	struct client c;

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\nGET /hold HTTP/1.1\r\n\r\n");
	while (f.nheld < 2)
		client_pump(&f, &c);
	answer_held(&f, 1, 0); /* answered, but queued behind the first */
	client_close(&c);
	for (int i = 0; i < 100 && f.cancels == 0; i++) {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f.cancels, 1);
	assert_false(cm_http_req_alive(f.held[0]));
	answer_held(&f, 0, -ECONNRESET);
	/* the same, answered from inside the cancel callback */
	f.respond_in_cancel = 1;
	client_open(&c, &f, NULL);
	client_send(&c, "POST /v3/notification/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	while (f.nheld < 3)
		client_pump(&f, &c);
	client_close(&c);
	for (int i = 0; i < 100 && f.cancels < 2; i++) {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f.cancels, 2);
	assert_null(f.held[2]);
	fx_done(&f, NULL);
}

static void test_h1_continue(void **state)
{
	static struct response r;
	struct fx f;
	struct client c;

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&c, &f, NULL);
	client_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 100);
	client_send(&c, "hello");
	expect_body(&f, &c, 200, "POST /echo ? rest= x=- v=11 [hello]");
	/* refused before the body is sent: no 100, a 413 and the end */
	client_send(&c,
	            "POST /echo HTTP/1.1\r\nContent-Length: 70000\r\nExpect: 100-continue\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 413);
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	/* behind a held request, 100 waits its turn */
	client_open(&c, &f, NULL);
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\n"
	                "PUT /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
	while (f.nheld < 1)
		client_pump(&f, &c);
	pump_for(&f, &c, 30);
	assert_int_equal(c.in.len, 0);
	answer_held(&f, 0, 0);
	expect_body(&f, &c, 200, "held 0");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 100);
	client_send(&c, "ok");
	expect_body(&f, &c, 200, "PUT /echo ? rest= x=- v=11 [ok]");
	client_close(&c);
	fx_done(&f, NULL);
}

/* The head check of test_head_check: /v3/secret is refused (403) unless the request says
 * "x-ok: yes"; it counts its calls. */
static int head_check(void *arg, const struct cm_http_req *req)
{
	int *calls = arg;
	const char *ok = cm_http_req_header(req, "x-ok");

	(*calls)++;
	if (strcmp(cm_http_req_path(req), "/v3/secret") != 0)
		return 0;
	if (cm_http_req_query(req)[0])
		return 777; /* not a status: answered 500 */
	return ok && strcmp(ok, "yes") == 0 ? 0 : 403;
}

/* A head refused before its body: no 100 Continue, the answer, and the connection's end; taken,
 * the body is read as ever. */
static void test_h1_head_check(void **state)
{
	static struct response r;
	struct fx f;
	struct client c;
	int calls = 0;

	(void)state;
	fx_init(&f, &(struct cm_http_limits){.max_body_bytes = 1 << 20}, 0);
	cm_http_server_set_head_check(f.srv, head_check, &calls);
	client_open(&c, &f, NULL);
	client_send(&c, "PUT /v3/secret HTTP/1.1\r\nContent-Length: 900000\r\n"
	                "Expect: 100-continue\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "forbidden\n");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	/* without Expect, the body on its way: refused all the same, and nothing of it read */
	client_open(&c, &f, NULL);
	client_send(&c, "PUT /v3/secret HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 403);
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	/* a verdict that is not a status is a 500 */
	client_open(&c, &f, NULL);
	client_send(&c, "GET /v3/secret?x HTTP/1.1\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 500);
	client_close(&c);
	/* taken: 100 Continue, the body, the route's answer, and the connection stays */
	client_open(&c, &f, NULL);
	client_send(&c, "PUT /v3/secret HTTP/1.1\r\nContent-Length: 5\r\nx-ok: yes\r\n"
	                "Expect: 100-continue\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 100);
	client_send(&c, "hello");
	expect_body(&f, &c, 200, "PUT /v3/secret ? rest=secret x=- v=11 [hello]");
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	client_close(&c);
	assert_int_equal(calls, 5);
	fx_done(&f, NULL);
}

static void test_h1_limits(void **state)
{
	static struct response r;
	struct cm_http_limits lim = {.max_header_bytes = 1024, .max_body_bytes = 100};
	struct fx f;
	struct client c;
	char big[2048];
	char *text;

	(void)state;
	fx_init(&f, &lim, 0);
	client_open(&c, &f, NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	client_send(&c, "GET /echo HTTP/1.1\r\nX-Big: ");
	client_send(&c, big);
	client_send(&c, "\r\n\r\n");
	expect_body(&f, &c, 431, "request header fields too large\n");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);

	client_open(&c, &f, NULL);
	client_send(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n");
	client_send(&c, big + 1946);
	client_send(&c, "\r\n0\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 413);
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);

	client_open(&c, &f, NULL);
	client_send(&c, "GET / HTTP/2.0\r\n\r\n");
	expect_body(&f, &c, 505, "HTTP version not supported\n");
	client_close(&c);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\nBAD\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	expect_body(&f, &c, 400, "bad request\n");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	fx_done(&f, &text);
	assert_non_null(strstr(text, "rest_requests_total{path=\"/echo\",code=\"431\"} 1\n"));
	assert_non_null(strstr(text, "rest_requests_total{path=\"/echo\",code=\"413\"} 1\n"));
	free(text);
}

/* A path with a body limit of its own takes what every other path refuses, declared or
 * chunked, with or without a query; beyond its own limit it refuses too. */
static void test_h1_path_body_limit(void **state)
{
	static struct response r;
	struct cm_http_limits lim = {.max_body_bytes = 100};
	struct fx f;
	struct client c;
	char body[1600], head[128];
	char *text;

	(void)state;
	fx_init(&f, &lim, 0);
	assert_int_equal(cm_http_body_limit(f.srv, "/v3/large", 1000), 0);
	assert_int_equal(cm_http_body_limit(f.srv, "nope", 1000), -EINVAL);
	assert_int_equal(cm_http_body_limit(f.srv, "/v3/x", 0), -EINVAL);
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (int i = 0; i < 4; i++) {
		static const char *const paths[] = {"/v3/large", "/v3/large?q=1", "/v3/other",
		                                    "/v3/large"};
		static const size_t lens[] = {900, 900, 101, 1001};
		static const int want[] = {200, 200, 413, 413};

		client_open(&c, &f, NULL);
		snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
		         paths[i], lens[i]);
		client_send(&c, head);
		if (want[i] == 200) {
			char *b = strndup(body, lens[i]);

			client_send(&c, b);
			free(b);
		}
		read_response(&f, &c, &r, 0);
		if (r.status != want[i])
			fail_msg("%s with %zu bytes: %d, not %d", paths[i], lens[i], r.status,
			         want[i]);
		if (want[i] == 200)
			assert_non_null(strstr(r.body, " v=11 [bbbb"));
		client_close(&c);
	}
	/* chunked: 900 bytes taken on the path, cut at 100 elsewhere */
	for (int i = 0; i < 2; i++) {
		char *b = strndup(body, 900);

		client_open(&c, &f, NULL);
		client_send(&c,
		            i ? "POST /v3/other HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		              : "POST /v3/large HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		client_send(&c, "384\r\n");
		client_send(&c, b);
		client_send(&c, "\r\n0\r\n\r\n");
		free(b);
		read_response(&f, &c, &r, 0);
		assert_int_equal(r.status, i ? 413 : 200);
		client_close(&c);
	}
	fx_done(&f, &text);
	free(text);
}

/* More pipelined requests than may be in flight, and big answers past the write high-water
 * mark: held back, then answered in order. */
static void test_h1_backpressure(void **state)
{
	static struct response r;
	struct cm_http_limits lim = {.max_in_flight = 4};
	struct fx f;
	struct client c;
	struct cm_buf many;

	(void)state;
	fx_init(&f, &lim, 0);
	client_open(&c, &f, NULL);
	cm_buf_init(&many, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(cm_buf_puts(&many, "GET /hold HTTP/1.1\r\n\r\n"), 0);
	client_send_n(&c, many.data, many.len);
	pump_for(&f, &c, 30);
	assert_int_equal(f.nheld, 4);
	for (int i = 0; i < 10; i++) {
		while (f.nheld <= i)
			client_pump(&f, &c);
		answer_held(&f, i, 0);
		read_response(&f, &c, &r, 0);
	}
	assert_int_equal(f.nheld, 10);
	cm_buf_reset(&many);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cm_buf_puts(&many, "GET /big HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(cm_buf_puts(&many, "GET /echo?last HTTP/1.1\r\n\r\n"), 0);
	client_send_n(&c, many.data, many.len);
	for (int i = 0; i < 4; i++) {
		read_response(&f, &c, &r, 0);
		assert_int_equal(r.body_len, 300 * 1024);
	}
	expect_body(&f, &c, 200, "GET /echo ?last rest= x=- v=11 []");
	cm_buf_free(&many);
	client_close(&c);
	fx_done(&f, NULL);
}

static void test_h1_idle(void **state)
{
	struct cm_http_limits lim = {.idle_timeout_ms = 100};
	struct fx f;
	struct client c;
	double t0;

	(void)state;
	fx_init(&f, &lim, 0);
	client_open(&c, &f, NULL);
	/* a request in a handler's hands is not idleness */
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
	pump_for(&f, &c, 300);
	assert_false(c.eof);
	answer_held(&f, 0, 0);
	expect_body(&f, &c, 200, "held 0");
	t0 = now_ms();
	client_wait(&f, &c, has_eof, NULL);
	assert_true(now_ms() - t0 >= 80);
	client_close(&c);
	fx_done(&f, NULL);
}

/* The server's own answers in its user's format: status, method and path known to the
 * formatter; NULL keeps the server's text. */
static const char *error_json(void *arg, const struct cm_http_req *req, int status,
                              struct cm_buf *out)
{
	int *calls = arg;

	(*calls)++;
	if (status == 505)
		return NULL; /* keep the text */
	if (cm_buf_printf(out, "{\"status\":%d,\"method\":\"%s\"}", status,
	                  cm_http_req_method(req)) != 0)
		return NULL;
	return "application/json";
}

static void test_error_body(void **state)
{
	static struct response r;
	struct cm_http_limits lim = {.max_header_bytes = 1024, .max_body_bytes = 100};
	struct fx f;
	struct client c;
	char v[64];
	int calls = 0;

	(void)state;
	fx_init(&f, &lim, 0);
	cm_http_server_set_error_body(f.srv, error_json, &calls);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /missing HTTP/1.1\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(hval(&r, "Content-Type", v, sizeof(v)), "application/json");
	assert_string_equal(r.body, "{\"status\":404,\"method\":\"GET\"}");
	client_send(&c, "POST /get HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	read_response(&f, &c, &r, 0);
	assert_int_equal(r.status, 405);
	assert_string_equal(hval(&r, "Allow", v, sizeof(v)), "GET, HEAD");
	assert_string_equal(r.body, "{\"status\":405,\"method\":\"POST\"}");
	/* handlers' own answers are theirs */
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	client_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
	expect_body(&f, &c, 413, "{\"status\":413,\"method\":\"POST\"}");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	client_open(&c, &f, NULL);
	client_send(&c, "GET / HTTP/2.0\r\n\r\n");
	expect_body(&f, &c, 505, "HTTP version not supported\n");
	client_close(&c);
	/* cleared: the text again */
	cm_http_server_set_error_body(f.srv, NULL, NULL);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /missing HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 404, "not found\n");
	client_close(&c);
	assert_int_equal(calls, 4);
	fx_done(&f, NULL);
}

/* One source address gets max_connections_per_source of the max_connections; a closed connection
 * gives its place back. */
static void test_source_cap(void **state)
{
	struct cm_http_limits lim = {.max_connections = 10, .max_connections_per_source = 2};
	struct fx f;
	struct client a, b, c;
	char *text;

	(void)state;
	fx_init(&f, &lim, 0);
	client_open(&a, &f, NULL);
	client_open(&b, &f, NULL);
	client_send(&a, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &a, 200, "GET /echo ? rest= x=- v=11 []");
	client_send(&b, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &b, 200, "GET /echo ? rest= x=- v=11 []");
	/* the third from the same address is closed on arrival, with nothing sent */
	client_open(&c, &f, NULL);
	client_wait(&f, &c, has_eof, NULL);
	assert_int_equal(c.in.len, 0);
	client_close(&c);
	/* once one goes, there is room again */
	client_close(&a);
	pump_for(&f, &b, 50);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	client_close(&b);
	client_close(&c);
	fx_done(&f, &text);
	assert_non_null(
	    strstr(text, "rest_connections_rejected_total{limit=\"connections_per_source\"} 1\n"));
	assert_non_null(
	    strstr(text, "rest_connections_rejected_total{limit=\"max_connections\"} 0\n"));
	free(text);
}

/* stop_accepting: the listener goes, keep-alive connections close after the answers in flight */
static void test_h1_graceful(void **state)
{
	static struct response r;
	struct fx f;
	struct client c, idle;
	char v[32];

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&idle, &f, NULL);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
	while (f.nheld < 1)
		client_pump(&f, &c);
	client_pump(&f, &idle);
	cm_http_server_stop_accepting(f.srv);
	assert_true(cm_http_server_stopping(f.srv));
	assert_int_equal(cm_http_server_port(f.srv), 0);
	client_wait(&f, &idle, has_eof, NULL);
	pump_for(&f, &c, 20);
	assert_false(c.eof);
	answer_held(&f, 0, 0);
	read_response(&f, &c, &r, 0);
	assert_string_equal(r.body, "held 0");
	assert_string_equal(hval(&r, "Connection", v, sizeof(v)), "close");
	client_wait(&f, &c, has_eof, NULL);
	client_close(&c);
	client_close(&idle);
	fx_done(&f, NULL);
	assert_int_equal(f.cancels, 0);
}

static void test_h1_close_with_held(void **state)
{
	struct fx f;
	struct client c;

	(void)state;
	fx_init(&f, NULL, 0);
	client_open(&c, &f, NULL);
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
	while (f.nheld < 1)
		client_pump(&f, &c);
	cm_http_server_close(f.srv, on_closed, &f);
	assert_int_equal(f.cancels, 1);
	cm_loop_close(&f.cl, NULL);
	assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(f.closed, 1);
	/* the server is gone; the late answer only frees */
	answer_held(&f, 0, -ECONNRESET);
	assert_int_equal(uv_loop_close(&f.loop), 0);
	cm_loop_free(&f.cl);
	cm_metrics_free(f.metrics);
	client_close(&c);
}

/* === HTTP/2 with nghttp2's client ============================================================ */

struct h2stream {
	int32_t id;
	int status;
	char body[400 * 1024];
	size_t len;
	int closed;
	uint32_t error;
	char clen[24];
	const char *upload; /* request body */
	size_t upload_len, upload_off;
};

struct h2c {
	struct client cl;
	nghttp2_session *s;
	struct h2stream *st; /* MAX_HELD of them */
	int n;
	uint32_t max_streams; /* what the server's SETTINGS said */
	int settings;
	int goaway;
};

static struct h2stream *h2_find(struct h2c *h, int32_t id)
{
	for (int i = 0; i < h->n; i++)
		if (h->st[i].id == id)
			return &h->st[i];
	return NULL;
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct h2stream *st = h2_find(ud, fr->hd.stream_id);

	(void)s;
	(void)flags;
	if (!st)
		return 0;
	if (nl == 7 && memcmp(name, ":status", 7) == 0)
		st->status = atoi((const char *)value);
	if (nl == 14 && memcmp(name, "content-length", 14) == 0)
		snprintf(st->clen, sizeof(st->clen), "%.*s", (int)vl, (const char *)value);
	return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                     void *ud)
{
	struct h2stream *st = h2_find(ud, id);

	(void)s;
	(void)flags;
	if (st && st->len + len < sizeof(st->body)) {
		memcpy(st->body + st->len, data, len);
		st->len += len;
		st->body[st->len] = '\0';
	}
	return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct h2stream *st = h2_find(ud, id);

	(void)s;
	if (st) {
		st->closed = 1;
		st->error = err;
	}
	return 0;
}

static int c_on_frame(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
	struct h2c *h = ud;

	(void)s;
	if (fr->hd.type == NGHTTP2_SETTINGS && !(fr->hd.flags & NGHTTP2_FLAG_ACK)) {
		h->settings = 1;
		for (size_t i = 0; i < fr->settings.niv; i++)
			if (fr->settings.iv[i].settings_id ==
			    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
				h->max_streams = fr->settings.iv[i].value;
	}
	if (fr->hd.type == NGHTTP2_GOAWAY)
		h->goaway = 1;
	return 0;
}

static void h2c_open(struct h2c *h, struct fx *f, const char *alpn)
{
	nghttp2_session_callbacks *cb;

	memset(h, 0, sizeof(*h));
	h->st = calloc(MAX_HELD, sizeof(*h->st));
	assert_non_null(h->st);
	client_open(&h->cl, f, alpn);
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
	assert_int_equal(nghttp2_session_client_new(&h->s, cb, h), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void h2c_close(struct h2c *h)
{
	nghttp2_session_del(h->s);
	client_close(&h->cl);
	free(h->st);
}

static void h2c_pump(struct fx *f, struct h2c *h)
{
	const uint8_t *d;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(h->s, &d)) > 0)
		client_send_n(&h->cl, (const char *)d, (size_t)n);
	assert_true(n == 0);
	client_pump(f, &h->cl);
	if (h->cl.in.len) {
		n = nghttp2_session_mem_recv(h->s, (const uint8_t *)h->cl.in.data, h->cl.in.len);
		assert_true(n == (ssize_t)h->cl.in.len);
		cm_buf_reset(&h->cl.in);
	}
}

static ssize_t c_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2stream *h = src->ptr;
	size_t n = h->upload_len - h->upload_off;

	(void)s;
	(void)id;
	(void)ud;
	n = n < len ? n : len;
	memcpy(buf, h->upload + h->upload_off, n);
	h->upload_off += n;
	if (h->upload_off == h->upload_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Submit a request; returns the stream's index. */
static int h2c_request(struct h2c *h, const char *method, const char *path, const char *body,
                       size_t len)
{
	nghttp2_nv nv[] = {
	    {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
	    {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	    {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
	    {(uint8_t *)"x-test", (uint8_t *)"h2", 6, 2, 0},
	};
	nghttp2_data_provider dp = {.source.ptr = &h->st[h->n], .read_callback = c_read_body};
	int32_t id;

	assert_true(h->n < MAX_HELD);
	h->st[h->n].upload = body;
	h->st[h->n].upload_len = len;
	h->st[h->n].upload_off = 0;
	id = nghttp2_submit_request(h->s, NULL, nv, 5, body ? &dp : NULL, NULL);
	assert_true(id > 0);
	assert_true(h->n < MAX_HELD);
	h->st[h->n].id = id;
	return h->n++;
}

static void h2c_wait_closed(struct fx *f, struct h2c *h, int i)
{
	double t0 = now_ms();

	while (!h->st[i].closed) {
		assert_true(now_ms() - t0 < 5000);
		h2c_pump(f, h);
		usleep(200);
	}
}

static void h2c_pump_for(struct fx *f, struct h2c *h, double ms)
{
	double t0 = now_ms();

	while (now_ms() - t0 < ms) {
		h2c_pump(f, h);
		usleep(500);
	}
}

static void run_h2_basic(const char *alpn)
{
	struct fx f;
	struct h2c h;
	int a, b, c, d, e;
	char *text;

	fx_init(&f, &(struct cm_http_limits){.max_streams = 7}, alpn != NULL);
	h2c_open(&h, &f, alpn);
	a = h2c_request(&h, "GET", "/echo?q=1", NULL, 0);
	b = h2c_request(&h, "POST", "/v3/other", "body!", 5);
	c = h2c_request(&h, "HEAD", "/get", NULL, 0);
	d = h2c_request(&h, "GET", "/missing", NULL, 0);
	e = h2c_request(&h, "GET", "/big", NULL, 0);
	h2c_wait_closed(&f, &h, a);
	h2c_wait_closed(&f, &h, b);
	h2c_wait_closed(&f, &h, c);
	h2c_wait_closed(&f, &h, d);
	h2c_wait_closed(&f, &h, e);
	assert_true(h.settings);
	assert_int_equal(h.max_streams, 7);
	assert_int_equal(h.st[a].status, 200);
	assert_string_equal(h.st[a].body, "GET /echo ?q=1 rest= x=h2 v=20 []");
	assert_string_equal(h.st[b].body, "POST /v3/other ? rest=other x=h2 v=20 [body!]");
	assert_int_equal(h.st[c].status, 200);
	assert_int_equal(h.st[c].len, 0);
	assert_string_equal(h.st[c].clen, "30");
	assert_int_equal(h.st[d].status, 404);
	assert_int_equal(h.st[e].len, 300 * 1024);
	assert_int_equal(h.st[e].error, 0);
	h2c_close(&h);
	fx_done(&f, &text);
	assert_non_null(strstr(text, "rest_requests_total{path=\"/echo\",code=\"200\"} 1\n"));
	assert_non_null(strstr(text, "rest_requests_total{path=\"other\",code=\"404\"} 1\n"));
	free(text);
}

static void test_h2c_basic(void **state)
{
	(void)state;
	run_h2_basic(NULL);
}

static void test_h2_tls_basic(void **state)
{
	(void)state;
	run_h2_basic("h2");
}

/* Many async requests multiplexed, answered in reverse; one reset by the client. */
static void test_h2_async(void **state)
{
	struct fx f;
	struct h2c h;
	int idx[10];

	(void)state;
	fx_init(&f, NULL, 0);
	h2c_open(&h, &f, NULL);
	for (int i = 0; i < 10; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/v3/notification/dev%d", i);
		idx[i] = h2c_request(&h, "POST", path, "{\"x\":1}", 7);
	}
	while (f.nheld < 10)
		h2c_pump(&f, &h);
	assert_string_equal(cm_http_req_rest(f.held[3]), "dev3");
	assert_string_equal(cm_http_req_body(f.held[3], NULL), "{\"x\":1}");
	assert_string_equal(cm_http_req_header(f.held[3], "X-Test"), "h2");
	assert_string_equal(cm_http_req_header(f.held[3], "host"), "localhost");
	/* the client gives up on one */
	assert_int_equal(
	    nghttp2_submit_rst_stream(h.s, NGHTTP2_FLAG_NONE, h.st[idx[5]].id, NGHTTP2_CANCEL), 0);
	while (f.cancels < 1)
		h2c_pump(&f, &h);
	for (int i = 9; i >= 0; i--)
		answer_held(&f, i, i == 5 ? -ECONNRESET : 0);
	for (int i = 0; i < 10; i++) {
		char want[32];

		if (i == 5)
			continue;
		h2c_wait_closed(&f, &h, idx[i]);
		snprintf(want, sizeof(want), "held %d", i);
		assert_string_equal(h.st[idx[i]].body, want);
	}
	h2c_close(&h);
	fx_done(&f, NULL);
	assert_int_equal(f.cancels, 1);
}

/* A burst of requests in one write, more than the server handles before it lets other sockets
 * go first, answered synchronously and late: every one is answered, in full. */
static void test_h2_burst(void **state)
{
	enum { N = 60 };
	struct fx f;
	struct h2c h;
	int idx[N];

	(void)state;
	fx_init(&f, NULL, 0);
	h2c_open(&h, &f, NULL);
	h2c_pump_for(&f, &h, 20); /* SETTINGS exchanged */
	for (int i = 0; i < N; i++) {
		char path[64];

		snprintf(path, sizeof(path), i % 2 ? "/echo" : "/v3/notification/d%d", i);
		idx[i] = h2c_request(&h, "POST", path, "{\"x\":1}", 7);
	}
	while (f.nheld < N / 2)
		h2c_pump(&f, &h);
	for (int i = 0; i < N / 2; i++)
		answer_held(&f, i, 0);
	for (int i = 0; i < N; i++) {
		h2c_wait_closed(&f, &h, idx[i]);
		assert_int_equal(h.st[idx[i]].status, 200);
		if (i % 2) {
			assert_non_null(strstr(h.st[idx[i]].body, "[{\"x\":1}]"));
		} else {
			char want[32];

			snprintf(want, sizeof(want), "held %d", i / 2); /* held in arrival order */
			assert_string_equal(h.st[idx[i]].body, want);
		}
	}
	h2c_close(&h);
	fx_done(&f, NULL);
}

/* Over max_streams: the extra streams are refused by the server. Over the body limit: 413. */
static void test_h2_limits(void **state)
{
	struct fx f;
	struct h2c h;
	static char big[300];
	int a, b, refused = 0;

	(void)state;
	fx_init(&f, &(struct cm_http_limits){.max_streams = 2, .max_body_bytes = 200}, 0);
	h2c_open(&h, &f, NULL);
	h2c_pump_for(&f, &h, 20); /* SETTINGS exchanged */
	assert_int_equal(h.max_streams, 2);
	memset(big, 'z', sizeof(big));
	a = h2c_request(&h, "POST", "/echo", big, sizeof(big));
	h2c_wait_closed(&f, &h, a);
	assert_int_equal(h.st[a].status, 413);
	b = h2c_request(&h, "POST", "/echo", big, 200);
	h2c_wait_closed(&f, &h, b);
	assert_int_equal(h.st[b].status, 200);
	/* nghttp2's client respects the limit itself; a raw third stream would be refused */
	for (int i = 0; i < 3; i++)
		h2c_request(&h, "GET", "/hold", NULL, 0);
	h2c_pump_for(&f, &h, 50);
	assert_int_equal(f.nheld, 2);
	answer_held(&f, 0, 0);
	answer_held(&f, 1, 0);
	while (f.nheld < 3)
		h2c_pump(&f, &h);
	answer_held(&f, 2, 0);
	for (int i = 2; i < 5; i++) {
		h2c_wait_closed(&f, &h, i);
		refused += h.st[i].error != 0;
	}
	assert_int_equal(refused, 0);
	h2c_close(&h);
	fx_done(&f, NULL);
}

/* HTTP/2: the path's own limit, and the server's everywhere else. */
static void test_h2_path_body_limit(void **state)
{
	struct fx f;
	struct h2c h;
	static char big[900];
	int a, b, c;

	(void)state;
	fx_init(&f, &(struct cm_http_limits){.max_body_bytes = 200}, 0);
	assert_int_equal(cm_http_body_limit(f.srv, "/v3/large", 800), 0);
	h2c_open(&h, &f, NULL);
	h2c_pump_for(&f, &h, 20);
	memset(big, 'z', sizeof(big));
	a = h2c_request(&h, "POST", "/v3/large", big, 700);
	h2c_wait_closed(&f, &h, a);
	assert_int_equal(h.st[a].status, 200);
	b = h2c_request(&h, "POST", "/v3/other", big, 700);
	h2c_wait_closed(&f, &h, b);
	assert_int_equal(h.st[b].status, 413);
	c = h2c_request(&h, "POST", "/v3/large", big, sizeof(big));
	h2c_wait_closed(&f, &h, c);
	assert_int_equal(h.st[c].status, 413);
	h2c_close(&h);
	fx_done(&f, NULL);
}

/* HTTP/2: a refused head is answered and its stream ends; the connection goes on. */
static void test_h2_head_check(void **state)
{
	struct fx f;
	struct h2c h;
	static char big[5000];
	int calls = 0, a, b;

	(void)state;
	fx_init(&f, &(struct cm_http_limits){.max_body_bytes = 1 << 20}, 0);
	cm_http_server_set_head_check(f.srv, head_check, &calls);
	h2c_open(&h, &f, NULL);
	h2c_pump_for(&f, &h, 20);
	memset(big, 'q', sizeof(big));
	a = h2c_request(&h, "PUT", "/v3/secret", big, sizeof(big));
	h2c_wait_closed(&f, &h, a);
	assert_int_equal(h.st[a].status, 403);
	b = h2c_request(&h, "POST", "/v3/other", big, 10);
	h2c_wait_closed(&f, &h, b);
	assert_int_equal(h.st[b].status, 200);
	assert_int_equal(calls, 2);
	h2c_close(&h);
	fx_done(&f, NULL);
}

/* Graceful stop on HTTP/2: GOAWAY, the streams in flight complete, then the connection ends. */
static ssize_t c_never(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	(void)s;
	(void)id;
	(void)buf;
	(void)len;
	(void)flags;
	(void)src;
	(void)ud;
	return NGHTTP2_ERR_DEFERRED; /* a body that never comes */
}

/* A POST with a big header whose body never comes: its stream stays open, holding the head. */
static int h2c_unfinished(struct h2c *h, size_t pad)
{
	static char value[4096];
	nghttp2_nv nv[] = {
	    {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
	    {(uint8_t *)":path", (uint8_t *)"/echo", 5, 5, 0},
	    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	    {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
	    {(uint8_t *)"x-pad", (uint8_t *)value, 5, pad, 0},
	};
	nghttp2_data_provider dp = {.read_callback = c_never};
	int32_t id;

	assert_true(pad <= sizeof(value) && h->n < MAX_HELD);
	memset(value, 'p', pad);
	id = nghttp2_submit_request(h->s, NULL, nv, 5, &dp, NULL);
	assert_true(id > 0);
	h->st[h->n].id = id;
	return h->n++;
}

/* What one connection's unfinished requests hold is bounded: beyond max_receiving_bytes, new
 * streams are refused (REFUSED_STREAM: safe to retry), and what reset streams held counts no
 * more. */
static void test_h2_receiving_budget(void **state)
{
	struct cm_http_limits lim = {
	    .max_header_bytes = 2048, .max_body_bytes = 1024, .max_receiving_bytes = 8192};
	struct fx f;
	struct h2c h;
	int s[6], ok;
	char *text;

	(void)state;
	fx_init(&f, &lim, 0);
	h2c_open(&h, &f, NULL);
	h2c_pump_for(&f, &h, 20);
	/* about 1.9 KB counted each: four fit in 8 KB, the fifth does not */
	for (int i = 0; i < 5; i++)
		s[i] = h2c_unfinished(&h, 1800);
	h2c_wait_closed(&f, &h, s[4]);
	assert_int_equal(h.st[s[4]].error, NGHTTP2_REFUSED_STREAM);
	h2c_pump_for(&f, &h, 50);
	for (int i = 0; i < 4; i++)
		assert_false(h.st[s[i]].closed);
	/* the client gives up on them: the room is back */
	for (int i = 0; i < 4; i++)
		assert_int_equal(nghttp2_submit_rst_stream(h.s, NGHTTP2_FLAG_NONE, h.st[s[i]].id,
		                                           NGHTTP2_CANCEL),
		                 0);
	h2c_pump_for(&f, &h, 50);
	s[5] = h2c_unfinished(&h, 1800);
	ok = h2c_request(&h, "POST", "/echo", "fine", 4);
	h2c_wait_closed(&f, &h, ok);
	assert_int_equal(h.st[ok].status, 200);
	assert_false(h.st[s[5]].closed);
	h2c_close(&h);
	fx_done(&f, &text);
	assert_non_null(strstr(text, "rest_streams_refused_total 1\n"));
	free(text);
}

static void test_h2_graceful(void **state)
{
	struct fx f;
	struct h2c h;
	int a;

	(void)state;
	fx_init(&f, NULL, 0);
	h2c_open(&h, &f, NULL);
	a = h2c_request(&h, "GET", "/hold", NULL, 0);
	while (f.nheld < 1)
		h2c_pump(&f, &h);
	cm_http_server_stop_accepting(f.srv);
	while (!h.goaway)
		h2c_pump(&f, &h);
	assert_false(h.st[a].closed);
	answer_held(&f, 0, 0);
	h2c_wait_closed(&f, &h, a);
	assert_string_equal(h.st[a].body, "held 0");
	while (!h.cl.eof)
		h2c_pump(&f, &h);
	h2c_close(&h);
	fx_done(&f, NULL);
	assert_int_equal(f.cancels, 0);
}

/* The client's connection drops with streams in a handler's hands. */
static void test_h2_disconnect(void **state)
{
	struct fx f;
	struct h2c h;

	(void)state;
	fx_init(&f, NULL, 0);
	h2c_open(&h, &f, NULL);
	h2c_request(&h, "GET", "/hold", NULL, 0);
	h2c_request(&h, "GET", "/hold", NULL, 0);
	while (f.nheld < 2)
		h2c_pump(&f, &h);
	h2c_close(&h);
	for (int i = 0; i < 200 && f.cancels < 2; i++) {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f.cancels, 2);
	answer_held(&f, 1, -ECONNRESET);
	answer_held(&f, 0, -ECONNRESET);
	fx_done(&f, NULL);
}

/* === TLS with ALPN http/1.1, and real clients ================================================ */

static void test_tls_h1(void **state)
{
	struct fx f;
	struct client c;

	(void)state;
	fx_init(&f, NULL, 1);
	client_open(&c, &f, "http/1.1");
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	assert_string_equal(cm_tls_conn_alpn(c.tls), "http/1.1");
	client_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
	while (f.nheld < 1)
		client_pump(&f, &c);
	answer_held(&f, 0, 0);
	expect_body(&f, &c, 200, "held 0");
	client_close(&c);
	/* no ALPN at all: the bytes decide */
	client_open(&c, &f, NULL);
	c.ctx = NULL;
	{
		struct cm_tls_config tc = {.ca_file = TLSDIR "ca.pem"};
		char err[256];

		assert_int_equal(cm_tls_client_alloc(&c.ctx, &tc, err, sizeof(err)), 0);
		assert_int_equal(cm_tls_conn_alloc(&c.tls, c.ctx, "localhost"), 0);
	}
	client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
	expect_body(&f, &c, 200, "GET /echo ? rest= x=- v=11 []");
	client_close(&c);
	fx_done(&f, NULL);
}

/* Run a command while pumping the loop; returns its exit status; its stdout goes to out. */
static int run_cmd(struct fx *f, char *const argv[], char *out, size_t n)
{
	int pipefd[2];
	pid_t pid;
	size_t got = 0;
	int status;
	double t0 = now_ms();

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t k = read(pipefd[0], out + got, n - 1 - got);

		if (k > 0)
			got += (size_t)k;
		if (k == 0)
			break;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(500);
		assert_true(now_ms() - t0 < 10000);
	}
	out[got] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, WNOHANG) == 0)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_curl(void **state)
{
	struct fx f;
	char url[128], out[4096];

	(void)state;
	if (system("curl --version >/dev/null 2>&1") != 0)
		skip();
	fx_init(&f, NULL, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v3/x?y=1", f.port);
	{
		char *argv[] = {
		    "curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}", "-d", "abc",
		    url,    NULL};

		assert_int_equal(run_cmd(&f, argv, out, sizeof(out)), 0);
		assert_string_equal(out, "POST /v3/x ?y=1 rest=x x=- v=20 [abc] 2");
	}
	{
		char *argv[] = {"curl", "-s", "-w", " %{http_version}", url, url, NULL};

		assert_int_equal(run_cmd(&f, argv, out, sizeof(out)), 0);
		assert_string_equal(out, "GET /v3/x ?y=1 rest=x x=- v=11 [] 1.1"
		                         "GET /v3/x ?y=1 rest=x x=- v=11 [] 1.1");
	}
	fx_done(&f, NULL);
	fx_init(&f, NULL, 1);
	snprintf(url, sizeof(url), "https://localhost:%d/echo", f.port);
	{
		char *argv[] = {"curl",
		                "-s",
		                "--cacert",
		                TLSDIR "ca.pem",
		                "--http2",
		                "-w",
		                " %{http_version}",
		                "-H",
		                "X-Test: t",
		                url,
		                NULL};

		assert_int_equal(run_cmd(&f, argv, out, sizeof(out)), 0);
		assert_string_equal(out, "GET /echo ? rest= x=t v=20 [] 2");
	}
	{
		char *argv[] = {"curl",
		                "-s",
		                "--cacert",
		                TLSDIR "ca.pem",
		                "--http1.1",
		                "-w",
		                " %{http_version}",
		                "-d",
		                "zz",
		                url,
		                NULL};

		assert_int_equal(run_cmd(&f, argv, out, sizeof(out)), 0);
		assert_string_equal(out, "POST /echo ? rest= x=- v=11 [zz] 1.1");
	}
	fx_done(&f, NULL);
}

/* === in-memory connections under allocation failures ========================================= */

struct mem_case {
	const char *input;
	size_t len;
	const char *want; /* a substring the output must hold */
};

static void noop_closed_cb(void *arg)
{
	(*(int *)arg)++;
}

static int scenario_mem(void *arg)
{
	struct mem_case *mc = arg;
	uv_loop_t loop;
	struct cm_loop cl;
	struct cm_http_server *srv;
	struct cm_http_conn *c = NULL;
	struct cm_http_config cfg = {0};
	struct fx f;
	int r, done = 0;

	memset(&f, 0, sizeof(f));
	if (uv_loop_init(&loop) != 0)
		return -EIO;
	r = cm_loop_init(&cl, &loop, 0);
	if (r) {
		uv_loop_close(&loop);
		return r;
	}
	r = cm_http_server_alloc(&srv, &loop, NULL, &cfg);
	if (r) {
		cm_loop_close(&cl, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		cm_loop_free(&cl);
		uv_loop_close(&loop);
		return r;
	}
	r = cm_http_route(srv, "/echo", 0, NULL, h_echo, &f);
	r = r ? r : cm_http_route(srv, "/hold", 0, NULL, h_hold, &f);
	r = r ? r : cm_http__conn_mem_alloc(&c, srv);
	if (!r) {
		cm_http__conn_mem_input(c, mc->input, mc->len);
		/* answered late; a no-op if the connection failed meanwhile */
		if (f.nheld)
			cm_http_respond(f.held[0], 200, NULL, "held 0", 6);
		cm_http__conn_mem_resume(c);
		if (getenv("HTTP_DEBUG") && c->out.data)
			fwrite(c->out.data, 1, c->out.len, stderr);
		if (!c->out.data || !memmem(c->out.data, c->out.len, mc->want, strlen(mc->want)))
			r = -EIO;
		if (c->out.data && strstr(c->out.data, " 500 "))
			r = -ENOMEM; /* reported, not swallowed */
	}
	cm_http__conn_mem_free(c);
	cm_http_server_close(srv, noop_closed_cb, &done);
	cm_loop_close(&cl, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cm_loop_free(&cl);
	uv_loop_close(&loop);
	return r;
}

static void test_alloc_mem(void **state)
{
	static const char h1[] = "POST /echo?q HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	                         "X-Test: sweep\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	                         "GET /hold HTTP/1.1\r\n\r\n";
	/* preface, empty SETTINGS, HEADERS (stream 1, END_STREAM|END_HEADERS): GET /echo */
	static const char h2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                         "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	                         "\x00\x00\x14\x01\x05\x00\x00\x00\x01"
	                         "\x82\x86\x04\x05/echo\x41\x09localhost";
	struct mem_case c1 = {h1, sizeof(h1) - 1, "held 0"};
	struct mem_case c2 = {h2, sizeof(h2) - 1, "GET /echo ? rest= x=- v=20 []"};

	(void)state;
	assert_int_equal(scenario_mem(&c1), 0);
	assert_true(test_alloc_sweep(scenario_mem, &c1, 300) > 3);
	assert_int_equal(scenario_mem(&c2), 0);
	assert_true(test_alloc_sweep(scenario_mem, &c2, 300) > 3);
}

static void test_unescape(void **state)
{
	(void)state;
	char buf[64];
	size_t bad = 99;

	strcpy(buf, "alice%40example.com%2Fphone");
	assert_int_equal(cm_http_unescape(buf, buf, NULL), 23);
	assert_string_equal(buf, "alice@example.com/phone");
	strcpy(buf, "plain");
	assert_int_equal(cm_http_unescape(buf, buf, &bad), 5);
	assert_int_equal(cm_http_unescape("%e2%82%AC", buf, NULL), 3);
	assert_string_equal(buf, "\xe2\x82\xac");
	/* not escapes, and the NUL that would cut a name short */
	assert_int_equal(cm_http_unescape("ab%4", buf, &bad), -1);
	assert_int_equal(bad, 2);
	assert_int_equal(cm_http_unescape("%zz", buf, &bad), -1);
	assert_int_equal(bad, 0);
	assert_int_equal(cm_http_unescape("x%00y", buf, &bad), -1);
	assert_int_equal(bad, 1);
	assert_int_equal(cm_http_unescape("%", buf, &bad), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unescape),        cmocka_unit_test(test_parse_requests),
	    cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_parse_protocol),  cmocka_unit_test(test_format),
	    cmocka_unit_test(test_alloc_parse),     cmocka_unit_test(test_h1_sync),
	    cmocka_unit_test(test_h1_async_order),  cmocka_unit_test(test_h1_disconnect),
	    cmocka_unit_test(test_h1_continue),     cmocka_unit_test(test_h1_head_check),
	    cmocka_unit_test(test_h1_limits),       cmocka_unit_test(test_h1_path_body_limit),
	    cmocka_unit_test(test_h1_backpressure), cmocka_unit_test(test_h1_idle),
	    cmocka_unit_test(test_source_cap),      cmocka_unit_test(test_error_body),
	    cmocka_unit_test(test_h1_graceful),     cmocka_unit_test(test_h1_close_with_held),
	    cmocka_unit_test(test_h2c_basic),       cmocka_unit_test(test_h2_tls_basic),
	    cmocka_unit_test(test_h2_async),        cmocka_unit_test(test_h2_burst),
	    cmocka_unit_test(test_h2_limits),       cmocka_unit_test(test_h2_path_body_limit),
	    cmocka_unit_test(test_h2_head_check),   cmocka_unit_test(test_h2_receiving_budget),
	    cmocka_unit_test(test_h2_graceful),     cmocka_unit_test(test_h2_disconnect),
	    cmocka_unit_test(test_tls_h1),          cmocka_unit_test(test_curl),
	    cmocka_unit_test(test_alloc_mem),
	};

	/* a client that goes away while we write must give EPIPE, not kill the test */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
