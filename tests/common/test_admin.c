/* test_admin.c - unit tests for the admin HTTP server (cm/admin.h): the request parser on its
 * own, then a real server on a libuv loop thread spoken to by a blocking TCP client. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/metrics.h"
#include "common/src/admin_int.h"
#include "tests/support/alloc.h"

/* === the parser, without sockets ============================================================= */

struct parsed {
	int status; /* 0: a request; else the error's HTTP status */
	char line[256];
};

/* Feed text in steps of `step` bytes and describe each outcome, one entry per request. */
static int parse_all(const char *text, size_t len, size_t step, struct parsed *out, int max)
{
	struct cm_admin_http *p;
	size_t off = 0;
	int n = 0;

	assert_int_equal(cm_admin__http_alloc(&p), 0);
	while (off < len && n < max) {
		size_t k = len - off < step ? len - off : step, used;
		int r = cm_admin__http_feed(p, text + off, k, &used);

		if (r < 0) {
			out[n].status = cm_admin__http_error_status(r);
			snprintf(out[n].line, sizeof(out[n].line), "error %d", r);
			n++;
			break;
		}
		off += used;
		if (r == CM_ADMIN_HTTP_DONE) {
			const struct cm_admin_request *q = cm_admin__http_request(p);

			out[n].status = 0;
			snprintf(out[n].line, sizeof(out[n].line), "%s %s ?%s [%.*s] ka=%d 10=%d",
			         q->method, q->path, q->query, (int)q->body_len, q->body,
			         cm_admin__http_keep_alive(p), cm_admin__http_is_10(p));
			n++;
			cm_admin__http_next(p);
		}
	}
	cm_admin__http_free(p);
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
	s = head_of(CM_ADMIN_HEAD_MAX, &len);
	assert_int_equal(parse_check(s, len, r, 8), 1);
	assert_int_equal(r[0].status, 0);
	free(s);
	s = head_of(CM_ADMIN_HEAD_MAX + 1, &len);
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
	assert_int_equal(
	    cm_buf_printf(&b, "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n", CM_ADMIN_BODY_MAX),
	    0);
	for (int i = 0; i < CM_ADMIN_BODY_MAX; i++)
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
	struct cm_admin_http *p;
	const char *req = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	size_t used;

	(void)state;
	assert_int_equal(cm_admin__http_alloc(&p), 0);
	assert_null(cm_admin__http_path(p));
	assert_int_equal(cm_admin__http_feed(p, req, 0, &used), CM_ADMIN_HTTP_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(cm_admin__http_feed(p, req, strlen(req), &used), CM_ADMIN_HTTP_DONE);
	assert_int_equal(used, 19);
	assert_string_equal(cm_admin__http_path(p), "/a");
	/* the caller must answer first */
	assert_int_equal(cm_admin__http_feed(p, req + used, strlen(req) - used, &used), -EINVAL);
	cm_admin__http_next(p);
	assert_null(cm_admin__http_request(p));
	assert_int_equal(cm_admin__http_feed(p, req + 19, strlen(req) - 19, &used),
	                 CM_ADMIN_HTTP_DONE);
	assert_string_equal(cm_admin__http_request(p)->path, "/b");
	cm_admin__http_next(p);
	/* errors are final */
	assert_int_equal(cm_admin__http_feed(p, "BAD\r\n", 5, &used), -EBADMSG);
	assert_int_equal(cm_admin__http_feed(p, req, strlen(req), &used), -EBADMSG);
	cm_admin__http_free(p);
	cm_admin__http_free(NULL);

	assert_int_equal(cm_admin__http_error_status(-EBADMSG), 400);
	assert_int_equal(cm_admin__http_error_status(-EMSGSIZE), 431);
	assert_int_equal(cm_admin__http_error_status(-EFBIG), 413);
	assert_int_equal(cm_admin__http_error_status(-EPROTONOSUPPORT), 505);
}

static void test_format(void **state)
{
	struct cm_buf b;
	struct cm_admin_reply r = {
	    .status = 405, .content_type = "text/plain", .allow = "GET, HEAD", .close = 1};
	struct cm_admin_reply h = {
	    .status = 200, .content_type = "a/b", .keep_alive_10 = 1, .head = 1};
	struct cm_admin_reply nc = {.status = 204, .content_type = "a/b"};

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_admin__http_format(&b, &r, "no\n", 3), 0);
	assert_string_equal(b.data, "HTTP/1.1 405 Method Not Allowed\r\n"
	                            "Content-Type: text/plain\r\n"
	                            "Content-Length: 3\r\n"
	                            "Allow: GET, HEAD\r\n"
	                            "Connection: close\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n"
	                            "no\n");
	cm_buf_reset(&b);
	assert_int_equal(cm_admin__http_format(&b, &h, "body", 4), 0);
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\n"
	                            "Content-Type: a/b\r\n"
	                            "Content-Length: 4\r\n"
	                            "Connection: keep-alive\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n");
	cm_buf_reset(&b);
	assert_int_equal(cm_admin__http_format(&b, &nc, "dropped", 7), 0);
	assert_string_equal(b.data, "HTTP/1.1 204 No Content\r\n"
	                            "Content-Type: a/b\r\n"
	                            "Cache-Control: no-store\r\n"
	                            "\r\n");
	cm_buf_free(&b);
}

static int scenario_parse(void *arg)
{
	const char *req = "POST /x?y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "5\r\nhello\r\n40\r\n0123456789012345678901234567890123456789012345678901"
	                  "234567890123\r\n0\r\n\r\n";
	struct cm_admin_http *p;
	size_t off = 0, used;
	int r = 0;

	(void)arg;
	r = cm_admin__http_alloc(&p);
	if (r)
		return r;
	/* small steps, so that the buffers grow several times */
	while (off < strlen(req)) {
		r = cm_admin__http_feed(p, req + off, 3, &used);
		off += used;
		if (r != CM_ADMIN_HTTP_MORE)
			break;
	}
	if (r == CM_ADMIN_HTTP_DONE)
		r = cm_admin__http_request(p)->body_len == 69 ? 0 : -EIO;
	else if (r == CM_ADMIN_HTTP_MORE)
		r = -EIO;
	cm_admin__http_free(p);
	return r;
}

static void test_alloc_parse(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(scenario_parse, NULL, 200) > 3);
}

/* === a real server =========================================================================== */

struct fx {
	uv_loop_t loop;
	uv_async_t wake; /* asks the loop thread to close the server */
	pthread_t thread;
	struct cm_metrics *metrics;
	struct cm_admin *admin; /* NULL once a handler closed it */
	int port;
	atomic_int sick;
	atomic_int done;
};

static void on_closed(void *arg)
{
	struct fx *f = arg;

	atomic_fetch_add(&f->done, 1);
}

static void on_wake(uv_async_t *h)
{
	struct fx *f = h->data;

	if (f->admin)
		cm_admin_close(f->admin, on_closed, f);
	f->admin = NULL;
	uv_close((uv_handle_t *)h, NULL);
}

static void *loop_main(void *arg)
{
	struct fx *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int health(void *arg, struct cm_buf *details)
{
	struct fx *f = arg;

	/* a detail that cannot be written makes the answer unhealthy rather than silently short */
	if (cm_buf_puts(details, "\"checks\":{\"db\":\"ok\"}") != 0)
		return 1;
	return atomic_load(&f->sick);
}

static int h_echo(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	(void)arg;
	return cm_buf_printf(&resp->body, "%s %s ?%s [%.*s]", req->method, req->path, req->query,
	                     (int)req->body_len, req->body);
}

static int h_fail(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	(void)arg;
	(void)req;
	cm_buf_puts(&resp->body, "half-written");
	return -EIO;
}

static int h_created(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	(void)arg;
	(void)req;
	resp->status = 201;
	resp->content_type = "application/json";
	return cm_buf_puts(&resp->body, "{}");
}

static int h_weird(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	(void)arg;
	(void)req;
	resp->status = 99;
	return 0;
}

static int h_big(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	int r = 0;

	(void)arg;
	(void)req;
	/* 300 KiB: over the write high-water mark in one response */
	for (int i = 0; i < 300 && !r; i++)
		r = cm_buf_printf(&resp->body, "%01023d\n", i);
	return r;
}

static int h_quit(void *arg, const struct cm_admin_request *req, struct cm_admin_response *resp)
{
	struct fx *f = arg;

	(void)req;
	(void)resp;
	cm_admin_close(f->admin, on_closed, f);
	f->admin = NULL;
	return 0;
}

static struct fx *fx_start_cfg(unsigned max_conns, uint64_t idle_ms, int with_metrics)
{
	struct cm_admin_config cfg = {.daemon = "testd",
	                              .version = "1.2.3",
	                              .max_connections = max_conns,
	                              .idle_timeout_ms = idle_ms};
	struct sockaddr_in sin;
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	if (with_metrics)
		assert_int_equal(cm_metrics_alloc(&f->metrics), 0);
	assert_int_equal(cm_admin_alloc(&f->admin, &f->loop, f->metrics, &cfg), 0);
	assert_int_equal(cm_admin_port(f->admin), 0);
	cm_admin_set_health(f->admin, health, f);
	assert_int_equal(cm_admin_route(f->admin, "/echo", h_fail, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "/echo", h_echo, f), 0); /* replaces */
	assert_int_equal(cm_admin_route(f->admin, "/fail", h_fail, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "/created", h_created, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "/big", h_big, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "/weird", h_weird, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "/quit", h_quit, f), 0);
	assert_int_equal(cm_admin_route(f->admin, "relative", h_echo, f), -EINVAL);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(cm_admin_listen(f->admin, (struct sockaddr *)&sin), 0);
	assert_int_equal(cm_admin_listen(f->admin, (struct sockaddr *)&sin), -EALREADY);
	f->port = cm_admin_port(f->admin);
	assert_true(f->port > 0);
	assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
	f->wake.data = f;
	assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
	return f;
}

static struct fx *fx_start(void)
{
	return fx_start_cfg(0, 0, 1);
}

/* Close the server from its loop, wait for the loop to run dry, and check nothing is left. The
 * registry is rendered into *metrics_text if asked (caller frees). */
static void fx_stop(struct fx *f, char **metrics_text)
{
	uv_async_send(&f->wake);
	pthread_join(f->thread, NULL);
	assert_int_equal(atomic_load(&f->done), 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	if (metrics_text) {
		struct cm_buf b;

		cm_buf_init(&b, 0);
		assert_int_equal(cm_metrics_render(f->metrics, &b), 0);
		*metrics_text = cm_buf_steal(&b);
	}
	cm_metrics_free(f->metrics);
	free(f);
}

/* --- a blocking client ----------------------------------------------------------------------- */

struct client {
	int fd;
	struct cm_buf in; /* received, not yet consumed */
};

struct response {
	int status;
	char head[16384];
	long content_length; /* -1 when absent */
	char *body;          /* NUL-terminated, owned */
	size_t body_len;
};

static void client_open_port(struct client *c, int port)
{
	struct sockaddr_in sin;
	struct timeval tv = {.tv_sec = 5};

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cm_buf_init(&c->in, 0);
}

static void client_open(struct client *c, struct fx *f)
{
	client_open_port(c, f->port);
}

static void client_close(struct client *c)
{
	close(c->fd);
	cm_buf_free(&c->in);
}

static void client_send_n(struct client *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		s += k;
		n -= (size_t)k;
	}
}

static void client_send(struct client *c, const char *s)
{
	client_send_n(c, s, strlen(s));
}

/* Receive more: bytes read, 0 at EOF, -1 on error (a reset counts as the end too). */
static ssize_t client_fill(struct client *c)
{
	char tmp[65536];
	ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);

	if (n > 0)
		assert_int_equal(cm_buf_append(&c->in, tmp, (size_t)n), 0);
	return n;
}

static void client_consume(struct client *c, size_t n)
{
	memmove(c->in.data, c->in.data + n, c->in.len - n);
	c->in.len -= n;
	c->in.data[c->in.len] = '\0';
}

/* The value of a header in r->head, or NULL. */
static const char *header(const struct response *r, const char *name, char *out, size_t n)
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

/* Read one response; head_only for the answer to HEAD. */
static void read_response(struct client *c, struct response *r, int head_only)
{
	char *end, v[64];
	size_t hl;

	memset(r, 0, sizeof(*r));
	while (!c->in.data || !(end = strstr(c->in.data, "\r\n\r\n")))
		assert_true(client_fill(c) > 0);
	hl = (size_t)(end - c->in.data) + 4;
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, c->in.data, hl);
	r->head[hl] = '\0';
	client_consume(c, hl);
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	r->content_length = header(r, "Content-Length", v, sizeof(v)) ? atol(v) : -1;
	if (head_only || r->content_length <= 0) {
		r->body = calloc(1, 1);
		return;
	}
	while (c->in.len < (size_t)r->content_length)
		assert_true(client_fill(c) > 0);
	r->body_len = (size_t)r->content_length;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, c->in.data, r->body_len);
	r->body[r->body_len] = '\0';
	client_consume(c, r->body_len);
}

static void response_free(struct response *r)
{
	free(r->body);
	r->body = NULL;
}

/* The server closed the connection: EOF (or a reset) with nothing more to read. */
static void expect_closed(struct client *c)
{
	ssize_t n = client_fill(c);

	assert_int_equal(c->in.len, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* One request on a fresh connection, with Connection: close. */
static void get(struct fx *f, const char *method, const char *path, struct response *r)
{
	struct client c;
	char req[512];

	client_open(&c, f);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
	         path);
	client_send(&c, req);
	read_response(&c, r, strcmp(method, "HEAD") == 0);
	expect_closed(&c);
	client_close(&c);
}

static void assert_header(const struct response *r, const char *name, const char *want)
{
	char v[256];

	assert_non_null(header(r, name, v, sizeof(v)));
	assert_string_equal(v, want);
}

static void assert_no_header(const struct response *r, const char *name)
{
	char v[256];

	assert_null(header(r, name, v, sizeof(v)));
}

/* --- the tests ------------------------------------------------------------------------------- */

static void test_health(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	const char *want = "{\"status\":\"ok\",\"daemon\":\"testd\",\"version\":\"1.2.3\","
	                   "\"uptime_seconds\":";
	char *text;

	(void)state;
	get(f, "GET", "/health", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "application/json");
	assert_header(&r, "Connection", "close");
	assert_int_equal(r.content_length, (long)strlen(r.body));
	assert_memory_equal(r.body, want, strlen(want));
	assert_non_null(strstr(r.body, ",\"checks\":{\"db\":\"ok\"}}\n"));
	response_free(&r);

	atomic_store(&f->sick, 1);
	get(f, "GET", "/health?verbose", &r);
	assert_int_equal(r.status, 503);
	assert_header(&r, "Content-Type", "application/json");
	assert_memory_equal(r.body, "{\"status\":\"unavailable\",", 24);
	response_free(&r);

	fx_stop(f, &text);
	assert_non_null(strstr(text, "admin_requests_total{path=\"/health\",code=\"200\"} 1\n"));
	assert_non_null(strstr(text, "admin_requests_total{path=\"/health\",code=\"503\"} 1\n"));
	free(text);
}

static void test_metrics(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	const char *p;
	int n;

	(void)state;
	get(f, "GET", "/nope", &r);
	response_free(&r);
	get(f, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	/* this connection, and maybe the last one if the server has not yet seen it go */
	p = strstr(r.body, "# TYPE admin_connections gauge\nadmin_connections ");
	assert_non_null(p);
	n = atoi(p + strlen("# TYPE admin_connections gauge\nadmin_connections "));
	assert_true(n == 1 || n == 2);
	assert_non_null(strstr(r.body, "admin_connections_rejected_total 0\n"));
	assert_non_null(strstr(r.body, "admin_requests_total{path=\"other\",code=\"404\"} 1\n"));
	response_free(&r);
	fx_stop(f, NULL);
}

static void test_not_found(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	char *text;
	char path[64];

	(void)state;
	/* a scanner's many paths all count as "other" */
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/scan/%d", i);
		get(f, "GET", path, &r);
		assert_int_equal(r.status, 404);
		assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
		response_free(&r);
	}
	get(f, "GET", "/health/", &r); /* exact paths only */
	assert_int_equal(r.status, 404);
	response_free(&r);
	fx_stop(f, &text);
	assert_non_null(strstr(text, "admin_requests_total{path=\"other\",code=\"404\"} 6\n"));
	assert_null(strstr(text, "/scan"));
	free(text);
}

static void test_method_not_allowed(void **state)
{
	struct fx *f = fx_start();
	struct response r;

	(void)state;
	get(f, "POST", "/health", &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	response_free(&r);
	get(f, "DELETE", "/metrics", &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	response_free(&r);
	/* added routes take every method */
	get(f, "DELETE", "/echo", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "DELETE /echo ? []");
	assert_no_header(&r, "Allow");
	response_free(&r);
	fx_stop(f, NULL);
}

static void test_bad_request(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;
	char *text;

	(void)state;
	client_open(&c, f);
	client_send(&c, "garbage\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 400);
	assert_header(&r, "Connection", "close");
	response_free(&r);
	expect_closed(&c);
	client_close(&c);

	/* after a good request on the same connection */
	client_open(&c, f);
	client_send(&c, "GET /health HTTP/1.1\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_no_header(&r, "Connection");
	response_free(&r);
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 400);
	response_free(&r);
	expect_closed(&c);
	client_close(&c);

	client_open(&c, f);
	client_send(&c, "GET /\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 505);
	response_free(&r);
	expect_closed(&c);
	client_close(&c);
	fx_stop(f, &text);
	assert_non_null(strstr(text, "admin_requests_total{path=\"other\",code=\"400\"} 2\n"));
	free(text);
}

static void test_header_too_large(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;
	char *big = malloc(20000);

	(void)state;
	client_open(&c, f);
	client_send(&c, "GET /health HTTP/1.1\r\nX-Big: ");
	memset(big, 'a', 19999);
	big[19999] = '\0';
	client_send(&c, big);
	client_send(&c, "\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 431);
	assert_header(&r, "Connection", "close");
	response_free(&r);
	expect_closed(&c);
	client_close(&c);
	free(big);
	fx_stop(f, NULL);
}

static void test_body_too_large(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;
	char *chunk = malloc(4096 + 16);
	char *text;

	(void)state;
	/* declared too large: answered before the body is sent */
	client_open(&c, f);
	client_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 70000\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 413);
	assert_header(&r, "Connection", "close");
	response_free(&r);
	expect_closed(&c);
	client_close(&c);

	/* chunked, found out while uploading: the client still gets its 413 */
	client_open(&c, f);
	client_send(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	memcpy(chunk, "1000\r\n", 6);
	memset(chunk + 6, 'z', 4096);
	memcpy(chunk + 6 + 4096, "\r\n", 2);
	for (int i = 0; i < 20; i++)
		client_send_n(&c, chunk, 4096 + 8);
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 413);
	response_free(&r);
	shutdown(c.fd, SHUT_WR);
	expect_closed(&c);
	client_close(&c);
	free(chunk);
	fx_stop(f, &text);
	/* counted under the route's path: the head was read */
	assert_non_null(strstr(text, "admin_requests_total{path=\"/echo\",code=\"413\"} 2\n"));
	free(text);
}

static void test_keep_alive(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;

	(void)state;
	client_open(&c, f);
	client_send(&c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_no_header(&r, "Connection");
	response_free(&r);
	client_send(&c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "admin_requests_total{path=\"/health\",code=\"200\"} 1\n"));
	response_free(&r);
	/* HTTP/1.0 asking to stay */
	client_send(&c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Connection", "keep-alive");
	response_free(&r);
	/* HTTP/1.0 by default closes */
	client_send(&c, "GET /echo HTTP/1.0\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Connection", "close");
	response_free(&r);
	expect_closed(&c);
	client_close(&c);
	fx_stop(f, NULL);
}

static void test_pipelining(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;
	struct cm_buf many;

	(void)state;
	client_open(&c, f);
	client_send(&c, "GET /echo?1 HTTP/1.1\r\n\r\n"
	                "POST /echo?2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
	                "HEAD /health HTTP/1.1\r\n\r\n"
	                "GET /nope HTTP/1.1\r\n\r\n"
	                "GET /echo?5 HTTP/1.1\r\nConnection: close\r\n\r\n"
	                "GET /echo?never HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 0);
	assert_string_equal(r.body, "GET /echo ?1 []");
	response_free(&r);
	read_response(&c, &r, 0);
	assert_string_equal(r.body, "POST /echo ?2 [abc]");
	response_free(&r);
	read_response(&c, &r, 1);
	assert_int_equal(r.status, 200);
	assert_true(r.content_length > 0);
	response_free(&r);
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 404);
	response_free(&r);
	read_response(&c, &r, 0);
	assert_string_equal(r.body, "GET /echo ?5 []");
	assert_header(&r, "Connection", "close");
	response_free(&r);
	expect_closed(&c);
	client_close(&c);

	/* more than one wakeup's worth: held back, then answered in order */
	cm_buf_init(&many, 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(cm_buf_printf(&many, "GET /echo?%d HTTP/1.1\r\n\r\n", i), 0);
	client_open(&c, f);
	client_send_n(&c, many.data, many.len);
	for (int i = 0; i < 200; i++) {
		char want[64];

		snprintf(want, sizeof(want), "GET /echo ?%d []", i);
		read_response(&c, &r, 0);
		assert_string_equal(r.body, want);
		response_free(&r);
	}
	/* and large responses: past the write high-water mark */
	cm_buf_reset(&many);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cm_buf_puts(&many, "GET /big HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(cm_buf_puts(&many, "GET /echo?last HTTP/1.1\r\n\r\n"), 0);
	client_send_n(&c, many.data, many.len);
	for (int i = 0; i < 4; i++) {
		read_response(&c, &r, 0);
		assert_int_equal(r.body_len, 300 * 1024);
		response_free(&r);
	}
	read_response(&c, &r, 0);
	assert_string_equal(r.body, "GET /echo ?last []");
	response_free(&r);
	cm_buf_free(&many);
	client_close(&c);
	fx_stop(f, NULL);
}

static void test_head(void **state)
{
	struct fx *f = fx_start();
	struct response r, g;
	struct client c;

	(void)state;
	client_open(&c, f);
	client_send(&c, "HEAD /metrics HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 1);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	assert_true(r.content_length > 100);
	/* no body came: the next bytes are the next response */
	read_response(&c, &g, 0);
	assert_string_equal(g.body, "GET /echo ? []");
	response_free(&r);
	response_free(&g);
	client_close(&c);
	get(f, "HEAD", "/health", &r);
	assert_int_equal(r.status, 200);
	assert_true(r.content_length > 50);
	response_free(&r);
	fx_stop(f, NULL);
}

static void test_routes(void **state)
{
	struct fx *f = fx_start();
	struct response r;
	struct client c;
	char *text;

	(void)state;
	client_open(&c, f);
	client_send(&c, "POST /echo?a=1 HTTP/1.1\r\nContent-Length: 11\r\n"
	                "Content-Type: text/plain\r\n\r\nhello world");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
	assert_string_equal(r.body, "POST /echo ?a=1 [hello world]");
	response_free(&r);
	client_send(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n");
	read_response(&c, &r, 0);
	assert_string_equal(r.body, "PUT /echo ? [abcdefg]");
	response_free(&r);
	client_send(&c, "GET /fail HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body, "internal error\n");
	response_free(&r);
	client_send(&c, "GET /created HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 201);
	assert_header(&r, "Content-Type", "application/json");
	assert_string_equal(r.body, "{}");
	response_free(&r);
	client_send(&c, "GET /weird HTTP/1.1\r\n\r\n");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 500);
	response_free(&r);
	client_close(&c);
	fx_stop(f, &text);
	assert_non_null(strstr(text, "admin_requests_total{path=\"/echo\",code=\"200\"} 2\n"));
	assert_non_null(strstr(text, "admin_requests_total{path=\"/fail\",code=\"500\"} 1\n"));
	assert_non_null(strstr(text, "admin_requests_total{path=\"/created\",code=\"201\"} 1\n"));
	free(text);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static void test_idle_timeout(void **state)
{
	struct fx *f = fx_start_cfg(0, 200, 1);
	struct response r;
	struct client c;
	double t0;

	(void)state;
	/* silent from the start */
	client_open(&c, f);
	t0 = now_ms();
	expect_closed(&c);
	assert_true(now_ms() - t0 >= 150);
	assert_true(now_ms() - t0 < 3000);
	client_close(&c);
	/* idle after a request; a request dribbled in slowly is cut off too */
	client_open(&c, f);
	client_send(&c, "GET /health HTTP/1.1\r\n\r\nGET /hea");
	read_response(&c, &r, 0);
	assert_int_equal(r.status, 200);
	response_free(&r);
	t0 = now_ms();
	expect_closed(&c);
	assert_true(now_ms() - t0 >= 150);
	client_close(&c);
	fx_stop(f, NULL);
}

static void test_max_connections(void **state)
{
	struct fx *f = fx_start_cfg(2, 0, 1);
	struct response r;
	struct client c1, c2, c3, c4;
	int ok = 0;

	(void)state;
	client_open(&c1, f);
	client_send(&c1, "GET /health HTTP/1.1\r\n\r\n");
	read_response(&c1, &r, 0);
	response_free(&r);
	client_open(&c2, f);
	client_send(&c2, "GET /health HTTP/1.1\r\n\r\n");
	read_response(&c2, &r, 0);
	response_free(&r);
	/* the third is accepted and closed at once */
	client_open(&c3, f);
	expect_closed(&c3);
	client_close(&c3);
	client_send(&c1, "GET /metrics HTTP/1.1\r\n\r\n");
	read_response(&c1, &r, 0);
	assert_non_null(strstr(r.body, "admin_connections 2\n"));
	assert_non_null(strstr(r.body, "admin_connections_rejected_total 1\n"));
	response_free(&r);
	/* a slot frees up once the server has seen a client go */
	client_close(&c2);
	for (int i = 0; i < 100 && !ok; i++) {
		client_open(&c4, f);
		/* may fail if this one is rejected too */
		(void)send(c4.fd, "GET /health HTTP/1.1\r\n\r\n", 24, MSG_NOSIGNAL);
		if (client_fill(&c4) > 0) {
			ok = 1;
			assert_non_null(strstr(c4.in.data, "HTTP/1.1 200 OK\r\n"));
		} else {
			usleep(20000);
		}
		client_close(&c4);
	}
	assert_true(ok);
	client_close(&c1);
	fx_stop(f, NULL);
}

static void test_close_with_clients(void **state)
{
	struct fx *f = fx_start();
	struct client idle, partial, busy, body;

	(void)state;
	client_open(&idle, f);
	client_open(&partial, f);
	client_send(&partial, "GET /hea");
	client_open(&body, f);
	client_send(&body, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part");
	/* a large response the client does not read: the write is still in flight */
	client_open(&busy, f);
	client_send(&busy,
	            "GET /big HTTP/1.1\r\n\r\nGET /big HTTP/1.1\r\n\r\nGET /big HTTP/1.1\r\n\r\n");
	/* once the last connection's first bytes arrive, all four have been accepted */
	assert_true(client_fill(&busy) > 0);
	fx_stop(f, NULL);
	expect_closed(&idle);
	expect_closed(&partial);
	expect_closed(&body);
	client_close(&idle);
	client_close(&partial);
	client_close(&body);
	client_close(&busy);
}

static void test_close_from_handler(void **state)
{
	struct fx *f = fx_start();
	struct client c, other;

	(void)state;
	client_open(&other, f);
	client_open(&c, f);
	client_send(&c, "GET /quit HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n");
	/* the server went away mid-request: no answer, just the end */
	expect_closed(&c);
	expect_closed(&other);
	client_close(&c);
	client_close(&other);
	fx_stop(f, NULL);
}

static void test_without_metrics(void **state)
{
	struct fx *f = fx_start_cfg(0, 0, 0);
	struct response r;

	(void)state;
	get(f, "GET", "/metrics", &r);
	assert_int_equal(r.status, 404);
	response_free(&r);
	get(f, "GET", "/health", &r);
	assert_int_equal(r.status, 200);
	response_free(&r);
	fx_stop(f, NULL);
}

static void noop_done(void *arg)
{
	(*(int *)arg)++;
}

/* Run the loop in this thread until fd has something to read (or EOF); returns what recv gave. */
static ssize_t pump_until_readable(uv_loop_t *loop, int fd, char *buf, size_t n)
{
	for (int i = 0; i < 5000; i++) {
		ssize_t k;

		uv_run(loop, UV_RUN_NOWAIT);
		k = recv(fd, buf, n, MSG_DONTWAIT);
		if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return k;
		usleep(1000);
	}
	fail_msg("nothing arrived");
	return -1;
}

/* An accept that cannot allocate is retried, for a served and for a rejected connection alike:
 * libuv stops watching the listener until the connection is taken. */
static void test_accept_retry(void **state)
{
	uv_loop_t loop;
	struct cm_admin *a;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v", .max_connections = 1};
	struct sockaddr_in sin;
	struct client c1, c2;
	char buf[512];
	ssize_t n;
	int done = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(cm_admin_alloc(&a, &loop, NULL, &cfg), 0);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(cm_admin_listen(a, (struct sockaddr *)&sin), 0);
	client_open_port(&c1, cm_admin_port(a));
	test_alloc_fail_nth(1);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_true(test_alloc_failed());
	test_alloc_reset();
	client_send(&c1, "GET /health HTTP/1.1\r\n\r\n");
	n = pump_until_readable(&loop, c1.fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));

	client_open_port(&c2, cm_admin_port(a));
	test_alloc_fail_nth(1);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_true(test_alloc_failed());
	test_alloc_reset();
	n = pump_until_readable(&loop, c2.fd, buf, sizeof(buf));
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));

	client_close(&c1);
	client_close(&c2);
	cm_admin_close(a, noop_done, &done);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 1);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_listen_errors(void **state)
{
	uv_loop_t loop;
	struct cm_admin *a, *b;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v"};
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int done = 0, r;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(cm_admin_alloc(&a, &loop, NULL, &cfg), 0);
	assert_int_equal(cm_admin_alloc(&b, &loop, NULL, &cfg), 0);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(cm_admin_listen(a, (struct sockaddr *)&sin), 0);
	sin.sin_port = htons((uint16_t)cm_admin_port(a));
	assert_int_equal(cm_admin_listen(b, (struct sockaddr *)&sin), -EADDRINUSE);
	assert_int_equal(cm_admin_port(b), 0);
	cm_admin_close(a, noop_done, &done);
	cm_admin_close(b, noop_done, &done);
	/* never listened */
	assert_int_equal(cm_admin_alloc(&a, &loop, NULL, &cfg), 0);
	cm_admin_close(a, noop_done, &done);
	cm_admin_close(NULL, noop_done, &done); /* done at once */
	assert_int_equal(done, 1);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 4);
	/* IPv6, where the machine has it */
	assert_int_equal(cm_admin_alloc(&a, &loop, NULL, &cfg), 0);
	uv_ip6_addr("::1", 0, &sin6);
	r = cm_admin_listen(a, (struct sockaddr *)&sin6);
	if (r == 0)
		assert_true(cm_admin_port(a) > 0);
	else
		assert_true(r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT);
	cm_admin_close(a, noop_done, &done);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 5);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The whole life of a server that never serves, with every allocation failing in turn. */
static int scenario_lifecycle(void *arg)
{
	uv_loop_t *loop = arg;
	struct cm_metrics *m;
	struct cm_admin *a;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v"};
	int r, done = 0;

	r = cm_metrics_alloc(&m);
	if (r)
		return r;
	r = cm_admin_alloc(&a, loop, m, &cfg);
	if (r == 0) {
		r = cm_admin_route(a, "/a", h_echo, NULL);
		r = r ? r : cm_admin_route(a, "/b", h_echo, NULL);
		r = r ? r : cm_admin_route(a, "/a", h_fail, NULL);
		cm_admin_close(a, noop_done, &done);
		uv_run(loop, UV_RUN_DEFAULT);
		if (done != 1)
			r = -EIO;
	}
	cm_metrics_free(m);
	return r;
}

static void test_alloc_lifecycle(void **state)
{
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_true(test_alloc_sweep(scenario_lifecycle, &loop, 100) > 3);
	assert_int_equal(uv_loop_close(&loop), 0);
}

struct respond_case {
	struct cm_admin *a;
	const char *req;
	int want;
};

/* Parse and answer one request, as a connection would, with every allocation failing in turn. */
static int scenario_respond(void *arg)
{
	struct respond_case *rc = arg;
	struct cm_admin_http *p;
	struct cm_buf out;
	size_t used;
	int r, close = 0, status = 0;

	cm_buf_init(&out, 0);
	r = cm_admin__http_alloc(&p);
	if (r)
		return r;
	r = cm_admin__http_feed(p, rc->req, strlen(rc->req), &used);
	if (r == CM_ADMIN_HTTP_DONE)
		r = cm_admin__respond(rc->a, p, &out, &close);
	else if (r >= 0)
		r = -EIO;
	/* a failure inside may turn into a 500: that is a failure reported, not swallowed */
	if (r == 0 && (sscanf(out.data, "HTTP/1.1 %d", &status) != 1 || status != rc->want))
		r = -EIO;
	cm_buf_free(&out);
	cm_admin__http_free(p);
	return r;
}

static void test_alloc_respond(void **state)
{
	uv_loop_t loop;
	struct cm_metrics *m;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v"};
	struct respond_case rc = {.want = 200};
	int done = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_add_process(m), 0);
	assert_int_equal(cm_admin_alloc(&rc.a, &loop, m, &cfg), 0);
	cm_admin_set_health(rc.a, health, &(struct fx){0});
	assert_int_equal(cm_admin_route(rc.a, "/echo", h_echo, NULL), 0);
	const char *reqs[] = {"GET /health HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1\r\n\r\n",
	                      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"};
	for (size_t i = 0; i < 3; i++) {
		rc.req = reqs[i];
		/* once outside the sweep, so the request counter's series exists already */
		assert_int_equal(scenario_respond(&rc), 0);
		assert_true(test_alloc_sweep(scenario_respond, &rc, 200) > 2);
	}
	cm_admin_close(rc.a, noop_done, &done);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 1);
	assert_int_equal(uv_loop_close(&loop), 0);
	cm_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_requests),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_parse_protocol),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_alloc_parse),
	    cmocka_unit_test(test_health),
	    cmocka_unit_test(test_metrics),
	    cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_method_not_allowed),
	    cmocka_unit_test(test_bad_request),
	    cmocka_unit_test(test_header_too_large),
	    cmocka_unit_test(test_body_too_large),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_pipelining),
	    cmocka_unit_test(test_head),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_max_connections),
	    cmocka_unit_test(test_close_with_clients),
	    cmocka_unit_test(test_close_from_handler),
	    cmocka_unit_test(test_without_metrics),
	    cmocka_unit_test(test_listen_errors),
	    cmocka_unit_test(test_accept_retry),
	    cmocka_unit_test(test_alloc_lifecycle),
	    cmocka_unit_test(test_alloc_respond),
	};

	/* a client that goes away while we write must give EPIPE, not kill the test */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
