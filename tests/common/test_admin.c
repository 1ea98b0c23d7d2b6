/* test_admin.c - unit tests for the admin HTTP server (cm/admin.h): a real server on a libuv
 * loop thread spoken to by a blocking TCP client. Its HTTP/1 parser is cm_http's (http1.c),
 * tested in test_http.c. */
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
#include "cm/loop.h"
#include "cm/buf.h"
#include "cm/metrics.h"
#include "common/src/admin_int.h"
#include "common/src/http_int.h"
#include "tests/support/alloc.h"

/* === a real server =========================================================================== */

struct fx {
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: connections are cm_streams */
	uv_async_t wake;   /* asks the loop thread to close the server */
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

	if (f->admin) {
		cm_admin_close(f->admin, on_closed, f);
		cm_loop_close(&f->cl, NULL);
	}
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

static int h_echo(void *arg, struct cm_http_req *req)
{
	struct cm_buf b;
	size_t blen;
	const char *body = cm_http_req_body(req, &blen);
	int r;

	(void)arg;
	cm_buf_init(&b, 0);
	r = cm_buf_printf(&b, "%s %s ?%s [%.*s]", cm_http_req_method(req), cm_http_req_path(req),
	                  cm_http_req_query(req), (int)blen, body);
	if (r) {
		cm_buf_free(&b);
		return r; /* the server answers 500 */
	}
	cm_http_respond(req, 200, NULL, b.data, b.len);
	cm_buf_free(&b);
	return 0;
}

static int h_fail(void *arg, struct cm_http_req *req)
{
	(void)arg;
	(void)req;
	return -EIO;
}

static int h_created(void *arg, struct cm_http_req *req)
{
	(void)arg;
	cm_http_respond(req, 201, "application/json", "{}", 2);
	return 0;
}

static int h_weird(void *arg, struct cm_http_req *req)
{
	(void)arg;
	cm_http_respond(req, 99, NULL, NULL, 0); /* not a status: answered 500 */
	return 0;
}

static int h_big(void *arg, struct cm_http_req *req)
{
	struct cm_buf b;
	int r = 0;

	(void)arg;
	cm_buf_init(&b, 0);
	/* 300 KiB: over the write high-water mark in one response */
	for (int i = 0; i < 300 && !r; i++)
		r = cm_buf_printf(&b, "%01023d\n", i);
	if (!r)
		cm_http_respond(req, 200, NULL, b.data, b.len);
	cm_buf_free(&b);
	return r;
}

static int h_quit(void *arg, struct cm_http_req *req)
{
	struct fx *f = arg;

	cm_admin_close(f->admin, on_closed, f);
	f->admin = NULL;
	cm_loop_close(&f->cl, NULL);
	/* the server is closing: the answer only releases the request */
	cm_http_respond(req, 200, NULL, NULL, 0);
	return 0;
}

static int route(struct cm_admin *a, const char *path, cm_http_handler h, void *arg)
{
	return cm_http_route(cm_admin_http(a), path, 0, NULL, h, arg);
}

static struct fx *fx_start_cfg(unsigned max_conns, uint64_t idle_ms, int with_metrics)
{
	struct cm_admin_config cfg = {.daemon = "testd",
	                              .version = "1.2.3",
	                              .limits = {.max_connections = max_conns,
	                                         .max_connections_per_source = max_conns,
	                                         .idle_timeout_ms = idle_ms}};
	struct sockaddr_in sin;
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(cm_loop_init(&f->cl, &f->loop, 0), 0);
	if (with_metrics)
		assert_int_equal(cm_metrics_alloc(&f->metrics), 0);
	assert_int_equal(cm_admin_alloc(&f->admin, &f->loop, f->metrics, &cfg), 0);
	assert_int_equal(cm_admin_port(f->admin), 0);
	cm_admin_set_health(f->admin, health, f);
	assert_int_equal(route(f->admin, "/echo", h_fail, f), 0);
	assert_int_equal(route(f->admin, "/echo", h_echo, f), 0); /* replaces */
	assert_int_equal(route(f->admin, "/fail", h_fail, f), 0);
	assert_int_equal(route(f->admin, "/created", h_created, f), 0);
	assert_int_equal(route(f->admin, "/big", h_big, f), 0);
	assert_int_equal(route(f->admin, "/weird", h_weird, f), 0);
	assert_int_equal(route(f->admin, "/quit", h_quit, f), 0);
	assert_int_equal(route(f->admin, "relative", h_echo, f), -EINVAL);
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
	cm_loop_free(&f->cl);
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
	assert_non_null(
	    strstr(r.body, "admin_connections_rejected_total{limit=\"max_connections\"} 0\n"));
	assert_non_null(strstr(
	    r.body, "admin_connections_rejected_total{limit=\"connections_per_source\"} 0\n"));
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
	assert_non_null(
	    strstr(r.body, "admin_connections_rejected_total{limit=\"max_connections\"} 1\n"));
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

/* A loop with its cm_loop context for the tests below, and the end of both. */
static void loop_open(uv_loop_t *loop, struct cm_loop *cl)
{
	assert_int_equal(uv_loop_init(loop), 0);
	assert_int_equal(cm_loop_init(cl, loop, 0), 0);
}

static void loop_end(uv_loop_t *loop, struct cm_loop *cl)
{
	cm_loop_close(cl, NULL);
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
	cm_loop_free(cl);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* An accept that cannot allocate is retried, for a served and for a rejected connection alike:
 * libuv stops watching the listener until the connection is taken. */
static void test_accept_retry(void **state)
{
	uv_loop_t loop;
	struct cm_admin *a;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v", .limits.max_connections = 1};
	struct sockaddr_in sin;
	struct client c1, c2;
	char buf[512];
	ssize_t n;
	int done = 0;
	struct cm_loop cl;

	(void)state;
	loop_open(&loop, &cl);
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
	loop_end(&loop, &cl);
	assert_int_equal(done, 1);
}

static void test_listen_errors(void **state)
{
	uv_loop_t loop;
	struct cm_admin *a, *b;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v"};
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int done = 0, r;
	struct cm_loop cl;

	(void)state;
	loop_open(&loop, &cl);
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
	loop_end(&loop, &cl);
	assert_int_equal(done, 5);
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
		r = route(a, "/a", h_echo, NULL);
		r = r ? r : route(a, "/b", h_echo, NULL);
		r = r ? r : route(a, "/a", h_fail, NULL);
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
	struct cm_loop cl;

	(void)state;
	loop_open(&loop, &cl);
	assert_true(test_alloc_sweep(scenario_lifecycle, &loop, 100) > 3);
	loop_end(&loop, &cl);
}

/* Answer one request through an in-memory connection of the admin's HTTP server, as a socket
 * would, with every allocation failing in turn. */
struct respond_case {
	struct cm_admin *a;
	const char *req;
	int want;
};

static int scenario_respond(void *arg)
{
	struct respond_case *rc = arg;
	struct cm_http_conn *c;
	int r, status = 0;

	r = cm_http__conn_mem_alloc(&c, rc->a->http);
	if (r)
		return r;
	cm_http__conn_mem_input(c, rc->req, strlen(rc->req));
	/* a failure inside may turn into a 500: that is a failure reported, not swallowed */
	if (!c->out.data || sscanf(c->out.data, "HTTP/1.1 %d", &status) != 1)
		r = -EIO;
	else if (status != rc->want)
		r = -EIO;
	cm_http__conn_mem_free(c);
	return r;
}

static void test_alloc_respond(void **state)
{
	uv_loop_t loop;
	struct cm_metrics *m;
	struct cm_admin_config cfg = {.daemon = "d", .version = "v"};
	struct respond_case rc = {.want = 200};
	int done = 0;
	struct cm_loop cl;

	(void)state;
	loop_open(&loop, &cl);
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_add_process(m), 0);
	assert_int_equal(cm_admin_alloc(&rc.a, &loop, m, &cfg), 0);
	cm_admin_set_health(rc.a, health, &(struct fx){0});
	assert_int_equal(route(rc.a, "/echo", h_echo, NULL), 0);
	const char *reqs[] = {"GET /health HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1\r\n\r\n",
	                      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"};
	for (size_t i = 0; i < 3; i++) {
		rc.req = reqs[i];
		/* once outside the sweep, so the request counter's series exists already */
		assert_int_equal(scenario_respond(&rc), 0);
		assert_true(test_alloc_sweep(scenario_respond, &rc, 200) > 2);
	}
	cm_admin_close(rc.a, noop_done, &done);
	loop_end(&loop, &cl);
	assert_int_equal(done, 1);
	cm_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
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
