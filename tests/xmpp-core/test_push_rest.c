/* test_push_rest.c - the REST hand-off's HTTP client (push_rest.c) against a small HTTP/1.1
 * server on a thread: POSTs arrive at /v3/notification/<escaped token> with their JSON body,
 * their statuses come back, a refused connection is an error without a status, and a push
 * does not wait for the loop's timer wheel: curl starts each transfer from a 0 ms timeout, and
 * when that timeout went on the wheel (50 ms ticks) every push waited for the next tick, which
 * made the REST path's latency (bench/push) 30-50 ms at the median. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/loop.h"
#include "xmpp-core/src/push.h"
#include "xmpp-core/src/xc.h"

#define POSTS 20

/* --- the server: one connection at a time, keep-alive, answers each request `status` -------- */

struct server {
	int fd;
	int port;
	int status;
	pthread_t th;
	int requests;
	char last_target[256];
	char last_body[256];
};

/* Read one request on c into buf; its length, or 0 when the peer closed. */
static size_t read_request(int c, char *buf, size_t cap)
{
	size_t len = 0, want = 0;

	for (;;) {
		char *end = len ? strstr(buf, "\r\n\r\n") : NULL;

		if (end && !want) {
			const char *cl = strstr(buf, "Content-Length:");

			want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (want && len >= want)
			return len;
		ssize_t n = read(c, buf + len, cap - 1 - len);
		if (n <= 0)
			return 0;
		len += (size_t)n;
		buf[len] = '\0';
	}
}

static void *serve(void *arg)
{
	struct server *s = arg;
	char buf[4096], answer[128];
	int c;

	while ((c = accept(s->fd, NULL, NULL)) >= 0) {
		while (read_request(c, buf, sizeof(buf)) > 0) {
			char *sp = strchr(buf, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
			char *body = strstr(buf, "\r\n\r\n");

			if (sp && sp2)
				snprintf(s->last_target, sizeof(s->last_target), "%.*s",
				         (int)(sp2 - sp - 1), sp + 1);
			snprintf(s->last_body, sizeof(s->last_body), "%s", body ? body + 4 : "");
			s->requests++;
			int n = snprintf(answer, sizeof(answer),
			                 "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\n{}", s->status);
			if (write(c, answer, (size_t)n) != n)
				break;
		}
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, int status)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->status = status;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR); /* accept() returns */
	pthread_join(s->th, NULL);
	close(s->fd);
}

/* --- the client on a loop ------------------------------------------------------------------- */

struct run {
	uv_loop_t uv;
	struct cm_loop l;
	struct xc_push_http *h;
	struct xc_push_rest_config rc;
	char url[64];
	int left; /* posts still to make, one after the other */
	int done;
	long last_status;
	bool had_error;
	uint64_t started, finished; /* uv_hrtime */
};

static void post_next(struct run *r);

static void on_done(void *arg, long status, const char *err)
{
	struct run *r = arg;

	r->done++;
	r->last_status = status;
	r->had_error = err != NULL;
	if (r->left > 0)
		post_next(r);
	else {
		r->finished = uv_hrtime();
		xc_push_http_stop(r->h);
		cm_loop_close(&r->l, NULL);
	}
}

static void post_next(struct run *r)
{
	struct xc_push_post *p;

	r->left--;
	assert_int_equal(xc_push_http_post(r->h, &r->rc, "ab/cd", "{\"service\":\"apns\"}", 10000,
	                                   on_done, r, &p),
	                 0);
}

/* Make `posts` POSTs one after the other to 127.0.0.1:port; the loop runs until the last. */
static void run_posts(struct run *r, int port, int posts)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(uv_loop_init(&r->uv), 0);
	assert_int_equal(cm_loop_init(&r->l, &r->uv, 0), 0);
	assert_int_equal(xc_push_http_open(&r->h, &r->l), 0);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d/", port);
	r->rc.url = r->url;
	r->rc.verify = true;
	r->left = posts;
	r->started = uv_hrtime();
	post_next(r);
	uv_run(&r->uv, UV_RUN_DEFAULT);
	xc_push_http_free(r->h);
	cm_loop_free(&r->l);
	assert_int_equal(uv_loop_close(&r->uv), 0);
}

static void test_posts(void **state)
{
	struct server s;
	struct run r;

	(void)state;
	server_start(&s, 200);
	run_posts(&r, s.port, 1);
	server_stop(&s);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.last_status, 200);
	assert_false(r.had_error);
	assert_int_equal(s.requests, 1);
	assert_string_equal(s.last_target, "/v3/notification/ab%2Fcd");
	assert_string_equal(s.last_body, "{\"service\":\"apns\"}");

	server_start(&s, 410);
	run_posts(&r, s.port, 1);
	server_stop(&s);
	assert_int_equal(r.last_status, 410);
	assert_false(r.had_error);
}

static void test_refused(void **state)
{
	struct server s;
	struct run r;
	int port;

	(void)state;
	server_start(&s, 200);
	port = s.port;
	server_stop(&s); /* nothing listens there now */
	run_posts(&r, port, 1);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.last_status, 0);
	assert_true(r.had_error);
}

/* POSTS pushes one after the other, each made when the one before is answered. On the wheel
 * each waited for a tick: about POSTS x 50 ms in all. The bound is half of that, which leaves
 * a slow, shared machine (and the sanitizers) about 12 ms a push. */
static void test_no_tick_wait(void **state)
{
	struct server s;
	struct run r;
	double ms;

	(void)state;
	server_start(&s, 200);
	run_posts(&r, s.port, POSTS);
	server_stop(&s);
	assert_int_equal(r.done, POSTS);
	assert_int_equal(s.requests, POSTS);
	ms = (double)(r.finished - r.started) / 1e6;
	if (ms >= POSTS * CM_LOOP_TICK_MS / 2.0)
		fail_msg("%d posts took %.0f ms: they waited for the timer wheel's ticks", POSTS,
		         ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_posts),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_no_tick_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
