/* test_curl.c - cm/curl.h: libcurl's multi interface on a cm_loop, against a small HTTP/1.1
 * server on loopback written here (a uv TCP listener: "/ok/<text>" answers 200 with <text> as
 * the body, "/hold" reads the request and never answers). Several transfers at once, each
 * with its own callback; a cancelled transfer never calls back; a refused connection; curl's
 * timeout through the timer; a stop with transfers in flight (ASan: nothing left); a callback
 * that adds again and one that frees; a socket that cannot be watched. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "cm/curl.h"
#include "cm/list.h"
#include "cm/loop.h"
#include "tests/support/alloc.h"

/* --- the server ------------------------------------------------------------------------------ */

struct srv_conn {
	uv_tcp_t tcp; /* first: freed through it */
	struct cm_list link;
	struct server *s;
	char buf[2048];
	size_t len;
	bool answered;
};

struct server {
	uv_tcp_t tcp;
	int port;
	int requests; /* complete requests read */
	int held;     /* of them, "/hold" */
	struct cm_list conns;
};

static void conn_closed(uv_handle_t *h)
{
	free(h);
}

static void conn_close(struct srv_conn *c)
{
	cm_list_remove(&c->link);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct srv_conn *c = (struct srv_conn *)h;

	(void)hint;
	b->base = c->buf + c->len;
	b->len = sizeof(c->buf) - 1 - c->len;
}

/* Answer "/ok/<text>" with <text>; "/hold" is counted and left waiting. */
static void answer(struct srv_conn *c)
{
	char path[256], resp[512];
	uv_buf_t b;
	int n;

	c->s->requests++;
	c->answered = true;
	assert_int_equal(sscanf(c->buf, "GET %255s HTTP/1.1", path), 1);
	if (!strcmp(path, "/hold")) {
		c->s->held++;
		return;
	}
	assert_memory_equal(path, "/ok/", 4);
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	             strlen(path + 4), path + 4);
	b = uv_buf_init(resp, (unsigned)n);
	/* a few bytes into an empty socket buffer: written at once */
	assert_int_equal(uv_try_write((uv_stream_t *)&c->tcp, &b, 1), n);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct srv_conn *c = (struct srv_conn *)st;

	(void)b;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (!c->answered && strstr(c->buf, "\r\n\r\n"))
		answer(c);
}

static void on_conn(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	struct srv_conn *c = calloc(1, sizeof(*c));

	assert_int_equal(status, 0);
	assert_non_null(c);
	c->s = s;
	assert_int_equal(uv_tcp_init(l->loop, &c->tcp), 0);
	cm_list_insert_tail(&s->conns, &c->link);
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read), 0);
}

static int bound_port(uv_tcp_t *t)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void server_open(struct server *s, uv_loop_t *uv)
{
	struct sockaddr_in a;

	memset(s, 0, sizeof(*s));
	cm_list_init(&s->conns);
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
	assert_int_equal(uv_tcp_init(uv, &s->tcp), 0);
	s->tcp.data = s;
	assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 64, on_conn), 0);
	s->port = bound_port(&s->tcp);
}

static void server_close(struct server *s)
{
	struct cm_list *n;

	while ((n = cm_list_first(&s->conns)) != NULL)
		conn_close(cm_list_entry(n, struct srv_conn, link));
	uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* --- the fixture ----------------------------------------------------------------------------- */

struct fx {
	uv_loop_t uv;
	struct cm_loop l;
	struct server srv;
	struct cm_curl *c;
	uv_timer_t guard; /* wakes run_until() up */
	int done;         /* callbacks run */
};

struct xf {
	CURL *e;
	char body[64];
	size_t len;
	int calls;
	CURLcode cc;
	long status;
	struct fx *f;
	void (*then)(struct xf *x); /* what the callback does next, if anything */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xf *x = arg;
	size_t len = size * n;

	if (x->len + len < sizeof(x->body)) {
		memcpy(x->body + x->len, p, len);
		x->len += len;
		x->body[x->len] = '\0';
	}
	return len;
}

static void on_done(CURL *e, CURLcode cc, void *arg)
{
	struct xf *x = arg;

	assert_ptr_equal(e, x->e);
	x->calls++;
	x->f->done++;
	x->cc = cc;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->then)
		x->then(x);
}

static void xf_init(struct xf *x, struct fx *f, int port, const char *path, long timeout_ms)
{
	char url[128];

	memset(x, 0, sizeof(*x));
	x->f = f;
	x->e = curl_easy_init();
	assert_non_null(x->e);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	assert_int_equal(curl_easy_setopt(x->e, CURLOPT_URL, url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
	assert_int_equal(curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x), CURLE_OK);
	assert_int_equal(curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS, timeout_ms), CURLE_OK);
}

static void xf_add(struct fx *f, struct xf *x)
{
	assert_int_equal(cm_curl_add(f->c, x->e, on_done, x), 0);
}

static void fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 0), 0);
	assert_int_equal(uv_timer_init(&f->uv, &f->guard), 0);
	server_open(&f->srv, &f->uv);
	assert_int_equal(cm_curl_alloc(&f->c, &f->l), 0);
	assert_non_null(cm_curl_multi(f->c));
}

/* Close everything (f->c already freed when NULL) and check the loop ran dry. */
static void fx_close(struct fx *f)
{
	cm_curl_free(f->c);
	server_close(&f->srv);
	uv_close((uv_handle_t *)&f->guard, NULL);
	cm_loop_close(&f->l, NULL);
	assert_int_equal(uv_run(&f->uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
}

static void on_guard(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *flag >= want, for at most 20 s (a slow shared machine). */
static void run_until(struct fx *f, const int *flag, int want)
{
	uint64_t end = uv_now(&f->uv) + 20000;

	uv_timer_start(&f->guard, on_guard, 50, 50);
	while (*flag < want && uv_now(&f->uv) < end)
		uv_run(&f->uv, UV_RUN_ONCE);
	uv_timer_stop(&f->guard);
	assert_true(*flag >= want);
}

/* Run the loop for about ms milliseconds. */
static void run_for(struct fx *f, uint64_t ms)
{
	uint64_t end;

	uv_update_time(&f->uv);
	end = uv_now(&f->uv) + ms;
	uv_timer_start(&f->guard, on_guard, 10, 10);
	while (uv_now(&f->uv) < end)
		uv_run(&f->uv, UV_RUN_ONCE);
	uv_timer_stop(&f->guard);
}

/* --- tests ----------------------------------------------------------------------------------- */

#define N 6

static void test_several_at_once(void **state)
{
	struct fx f;
	struct xf x[N];
	char path[32], want[32];

	(void)state;
	fx_open(&f);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/ok/answer-%d", i);
		xf_init(&x[i], &f, f.srv.port, path, 20000);
		xf_add(&f, &x[i]);
	}
	assert_int_equal(cm_curl_count(f.c), N);
	/* an easy handle already in flight is refused, and keeps its transfer */
	assert_int_equal(cm_curl_add(f.c, x[0].e, on_done, &x[0]), -EINVAL);
	/* nothing ends from within cm_curl_add(): every callback comes from the loop */
	for (int i = 0; i < N; i++)
		assert_int_equal(x[i].calls, 0);
	run_until(&f, &f.done, N);
	run_for(&f, 50);
	for (int i = 0; i < N; i++) {
		snprintf(want, sizeof(want), "answer-%d", i);
		assert_int_equal(x[i].calls, 1);
		assert_int_equal(x[i].cc, CURLE_OK);
		assert_int_equal(x[i].status, 200);
		assert_string_equal(x[i].body, want);
	}
	assert_int_equal(f.srv.requests, N);
	assert_int_equal(cm_curl_count(f.c), 0);
	/* ended: a cancel now changes nothing */
	cm_curl_cancel(f.c, x[0].e);
	for (int i = 0; i < N; i++)
		curl_easy_cleanup(x[i].e);
	fx_close(&f);
}

static void test_cancel(void **state)
{
	struct fx f;
	struct xf early, held, ok;

	(void)state;
	fx_open(&f);
	xf_init(&early, &f, f.srv.port, "/ok/early", 20000);
	xf_init(&held, &f, f.srv.port, "/hold", 20000);
	xf_init(&ok, &f, f.srv.port, "/ok/fine", 20000);
	xf_add(&f, &early);
	xf_add(&f, &held);
	/* cancelled before it started */
	cm_curl_cancel(f.c, early.e);
	assert_int_equal(cm_curl_count(f.c), 1);
	/* cancelled while the server holds its request */
	run_until(&f, &f.srv.held, 1);
	cm_curl_cancel(f.c, held.e);
	assert_int_equal(cm_curl_count(f.c), 0);
	/* the client is still usable, and the cancelled ones stay quiet */
	xf_add(&f, &ok);
	run_until(&f, &ok.calls, 1);
	run_for(&f, 200);
	assert_int_equal(ok.cc, CURLE_OK);
	assert_string_equal(ok.body, "fine");
	assert_int_equal(early.calls, 0);
	assert_int_equal(held.calls, 0);
	assert_int_equal(f.srv.requests, 2); /* the early one never went out */
	/* a cancelled handle can go again */
	xf_add(&f, &early);
	run_until(&f, &early.calls, 1);
	assert_string_equal(early.body, "early");
	curl_easy_cleanup(early.e);
	curl_easy_cleanup(held.e);
	curl_easy_cleanup(ok.e);
	fx_close(&f);
}

static void test_refused(void **state)
{
	struct fx f;
	struct xf x;
	uv_tcp_t t;
	struct sockaddr_in a;
	int port;

	(void)state;
	fx_open(&f);
	/* a port that was just free, and is closed again */
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
	assert_int_equal(uv_tcp_init(&f.uv, &t), 0);
	assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
	port = bound_port(&t);
	uv_close((uv_handle_t *)&t, NULL);
	run_for(&f, 10);
	xf_init(&x, &f, port, "/ok/nobody", 20000);
	xf_add(&f, &x);
	run_until(&f, &x.calls, 1);
	run_for(&f, 50);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.cc, CURLE_COULDNT_CONNECT);
	assert_int_equal(x.status, 0);
	curl_easy_cleanup(x.e);
	fx_close(&f);
}

static void test_timeout(void **state)
{
	struct fx f;
	struct xf x;
	uint64_t t0;

	(void)state;
	fx_open(&f);
	xf_init(&x, &f, f.srv.port, "/hold", 300);
	uv_update_time(&f.uv);
	t0 = uv_now(&f.uv);
	xf_add(&f, &x);
	run_until(&f, &x.calls, 1);
	/* no answer and no socket event: only curl's timer could end it, and not before its time */
	assert_int_equal(f.srv.held, 1);
	assert_int_equal(x.cc, CURLE_OPERATION_TIMEDOUT);
	assert_true(uv_now(&f.uv) - t0 >= 250);
	run_for(&f, 50);
	assert_int_equal(x.calls, 1);
	curl_easy_cleanup(x.e);
	fx_close(&f);
}

static void on_drained(void *arg)
{
	(*(int *)arg)++;
}

static void test_stop_in_flight(void **state)
{
	struct fx f;
	struct xf x[3];
	int drained = 0;

	(void)state;
	fx_open(&f);
	for (int i = 0; i < 3; i++) {
		xf_init(&x[i], &f, f.srv.port, "/hold", 20000);
		xf_add(&f, &x[i]);
	}
	run_until(&f, &f.srv.held, 3);
	cm_curl_stop(f.c, on_drained, &drained);
	cm_curl_stop(f.c, on_drained, &drained); /* nothing more */
	assert_null(cm_curl_multi(f.c));
	assert_int_equal(cm_curl_count(f.c), 0);
	assert_int_equal(cm_curl_add(f.c, x[0].e, on_done, &x[0]), -ESHUTDOWN);
	assert_int_equal(drained, 0); /* handles close on the loop */
	run_until(&f, &drained, 1);
	run_for(&f, 50);
	assert_int_equal(drained, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(x[i].calls, 0);
		curl_easy_cleanup(x[i].e);
	}
	cm_curl_free(f.c);
	f.c = NULL;
	fx_close(&f);
}

/* A callback that sends its handle again, then one that frees the client. */
static void again(struct xf *x)
{
	x->then = NULL;
	x->len = 0;
	assert_int_equal(cm_curl_add(x->f->c, x->e, on_done, x), 0);
}

static void free_client(struct xf *x)
{
	cm_curl_free(x->f->c);
	x->f->c = NULL;
}

static void test_from_callbacks(void **state)
{
	struct fx f;
	struct xf x, other;

	(void)state;
	fx_open(&f);
	xf_init(&x, &f, f.srv.port, "/ok/twice", 20000);
	x.then = again;
	xf_add(&f, &x);
	run_until(&f, &x.calls, 2);
	assert_int_equal(x.cc, CURLE_OK);
	assert_string_equal(x.body, "twice");
	assert_int_equal(f.srv.requests, 2);
	/* freed from a callback with another transfer in flight: that one is dropped */
	xf_init(&other, &f, f.srv.port, "/hold", 20000);
	xf_add(&f, &other);
	x.then = free_client;
	x.len = 0;
	xf_add(&f, &x);
	run_until(&f, &x.calls, 3);
	assert_null(f.c);
	run_for(&f, 100);
	assert_int_equal(other.calls, 0);
	curl_easy_cleanup(x.e);
	curl_easy_cleanup(other.e);
	fx_close(&f);
}

/* The poll for the transfer's socket cannot be allocated: the transfer ends with
 * CURLE_OUT_OF_MEMORY, once, and the client goes on. */
static void test_socket_unwatchable(void **state)
{
	struct fx f;
	struct xf x, ok;

	(void)state;
	fx_open(&f);
	xf_init(&x, &f, f.srv.port, "/ok/lost", 20000);
	xf_add(&f, &x);
	test_alloc_fail_nth(1); /* the next allocation of ours: the socket's context */
	run_until(&f, &x.calls, 1);
	assert_true(test_alloc_failed());
	test_alloc_reset();
	run_for(&f, 50);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.cc, CURLE_OUT_OF_MEMORY);
	xf_init(&ok, &f, f.srv.port, "/ok/after", 20000);
	xf_add(&f, &ok);
	run_until(&f, &ok.calls, 1);
	assert_int_equal(ok.cc, CURLE_OK);
	assert_string_equal(ok.body, "after");
	curl_easy_cleanup(x.e);
	curl_easy_cleanup(ok.e);
	fx_close(&f);
}

static void test_alloc_add(void **state)
{
	struct fx f;
	struct xf x;

	(void)state;
	fx_open(&f);
	xf_init(&x, &f, f.srv.port, "/ok/x", 20000);
	test_alloc_fail_nth(1);
	assert_int_equal(cm_curl_add(f.c, x.e, on_done, &x), -ENOMEM);
	test_alloc_reset();
	assert_int_equal(cm_curl_count(f.c), 0);
	run_for(&f, 50);
	assert_int_equal(x.calls, 0);
	curl_easy_cleanup(x.e);
	fx_close(&f);
}

static int setup(void **state)
{
	(void)state;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_several_at_once),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_stop_in_flight),
	    cmocka_unit_test(test_from_callbacks),
	    cmocka_unit_test(test_socket_unwatchable),
	    cmocka_unit_test(test_alloc_add),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
