/* test_listen_tcp.c - TCP client connections of one worker (icicle/src/listen_tcp.c): the caps on
 * connections per worker and per source, the message deadline, and the unauthenticated rate
 * limit that ends a stream client's connection once its source has spent its budget. A real
 * loop, a real listener on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "icicle/src/server.h"

struct fixture {
	struct icicle ic;
	struct icicle_config cfg;
	struct cm_metrics *m;
	struct icicle_worker *w;
	struct icicle_tcp *t;
	struct sockaddr_in addr;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	socklen_t len = sizeof(f->addr);
	int probe;

	assert_non_null(f);
	f->cfg.quotas.connections_per_worker = 2;
	f->cfg.quotas.permissions_per_allocation = 1;
	f->cfg.quotas.channels_per_allocation = 1;
	f->ic.cfg = &f->cfg;
	assert_int_equal(cm_metrics_alloc(&f->m), 0);
	assert_int_equal(icicle_metrics_init(&f->ic.metrics, f->m, NULL, 0), 0);
	f->w = calloc(1, sizeof(*f->w));
	assert_non_null(f->w);
	f->w->ic = &f->ic;
	f->w->rx = malloc(sizeof(*f->w->rx));
	assert_non_null(f->w->rx);
	assert_int_equal(uv_loop_init(&f->w->loop), 0);
	assert_int_equal(icicle_table_init(f->w), 0);
	/* two unauthenticated answers per source, and a slow refill */
	assert_int_equal(icicle_ratelimit_init(&f->w->rl, 1, 2), 0);
	assert_int_equal(icicle_ratelimit_init(&f->w->rl_stream, 1, 2), 0);
	/* a free port for the listener */
	probe = socket(AF_INET, SOCK_STREAM, 0);
	f->addr.sin_family = AF_INET;
	f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(probe, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	assert_int_equal(getsockname(probe, (struct sockaddr *)&f->addr, &len), 0);
	close(probe);
	assert_int_equal(
	    icicle_tcp_open(f->w, (struct sockaddr *)&f->addr, sizeof(f->addr), false, &f->t), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	icicle_conn_close_all(f->w);
	icicle_tcp_close(f->t);
	uv_run(&f->w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->w->loop), 0);
	assert_int_equal(f->w->nconns, 0);
	icicle_ratelimit_close(&f->w->rl);
	icicle_ratelimit_close(&f->w->rl_stream);
	icicle_table_close(f->w);
	free(f->w->rx);
	free(f->w);
	cm_srclimit_free(f->ic.per_source);
	cm_metrics_free(f->m);
	free(f);
	return 0;
}

static int connect_to(const struct fixture *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	return fd;
}

/* Let the worker's loop run a while. */
static void spin(struct fixture *f)
{
	int i;

	for (i = 0; i < 20; i++) {
		uv_run(&f->w->loop, UV_RUN_NOWAIT);
		usleep(5000);
	}
}

/* Bytes the server sent on fd before closing it: how many, and whether it closed. */
static size_t drain(int fd, int *closed)
{
	uint8_t buf[4096];
	size_t total = 0;
	ssize_t n;

	*closed = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 200) <= 0)
			return total;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			*closed = 1;
			return total;
		}
		total += (size_t)n;
	}
}

static void test_connection_cap(void **state)
{
	struct fixture *f = *state;
	int a = connect_to(f), b = connect_to(f), c, closed;

	spin(f);
	assert_int_equal(f->w->nconns, 2);
	/* the third is accepted and closed at once, and counted */
	c = connect_to(f);
	spin(f);
	assert_int_equal(f->w->nconns, 2);
	assert_int_equal(drain(c, &closed), 0);
	assert_true(closed);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_refused), 1);
	/* room again once one goes */
	close(a);
	spin(f);
	assert_int_equal(f->w->nconns, 1);
	close(c);
	c = connect_to(f);
	spin(f);
	assert_int_equal(f->w->nconns, 2);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_refused), 1);
	close(b);
	close(c);
}

static void test_stream_rate_limit(void **state)
{
	/* Binding request, no attributes */
	static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12,
	                                    0xa4, 0x42, 1,    2,    3};
	struct fixture *f = *state;
	int fd = connect_to(f), closed, i;
	size_t got;

	for (i = 0; i < 3; i++)
		assert_int_equal(send(fd, binding, sizeof(binding), 0), (ssize_t)sizeof(binding));
	spin(f);
	/* two answers (the burst), then the connection is closed and the drop counted */
	got = drain(fd, &closed);
	assert_true(closed);
	assert_int_equal(got, 2 * (20 + 12)); /* header and XOR-MAPPED-ADDRESS, twice */
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.rate_limited), 1);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.requests_binding), 3);
	assert_int_equal(f->w->nconns, 0);
	close(fd);
	/* UDP's budget is another one: the same source still has it all */
	assert_true(icicle_ratelimit_take(&f->w->rl, (struct sockaddr *)&f->addr, 0));
}

/* One source address holds at most connections_per_source, whatever the worker's room. */
static void test_source_cap(void **state)
{
	struct fixture *f = *state;
	int a, b, c, closed;

	f->cfg.quotas.connections_per_worker = 10;
	f->cfg.quotas.connections_per_source = 2;
	assert_int_equal(cm_srclimit_alloc(&f->ic.per_source, 2), 0);
	a = connect_to(f);
	b = connect_to(f);
	spin(f);
	assert_int_equal(f->w->nconns, 2);
	c = connect_to(f);
	spin(f);
	assert_int_equal(drain(c, &closed), 0);
	assert_true(closed);
	assert_int_equal(f->w->nconns, 2);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_refused_source), 1);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_refused), 0);
	assert_int_equal(cm_metrics_gauge_value(f->ic.metrics.conns), 2);
	/* a closed connection gives its place back */
	close(a);
	spin(f);
	assert_int_equal(cm_srclimit_count(f->ic.per_source, (struct sockaddr *)&f->addr), 1);
	close(c);
	c = connect_to(f);
	spin(f);
	assert_int_equal(f->w->nconns, 2);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_refused_source), 1);
	close(b);
	close(c);
}

/* Let the sweep see a later time. */
static void sweep_after(struct fixture *f, unsigned ms)
{
	usleep(ms * 1000);
	uv_update_time(&f->w->loop);
	icicle_conn_sweep(f->w);
	spin(f);
}

/* Only complete frames are progress: bytes trickled in never reset the message deadline. */
static void test_message_deadline(void **state)
{
	static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12,
	                                    0xa4, 0x42, 1,    2,    3};
	struct fixture *f = *state;
	int slow, fast, i, closed;

	f->cfg.quotas.message_timeout = 300;
	slow = connect_to(f);
	fast = connect_to(f);
	spin(f);
	/* a connection that has sent nothing has no message to finish */
	sweep_after(f, 350);
	assert_int_equal(f->w->nconns, 2);
	for (i = 0; i < 5; i++) {
		(void)send(slow, binding + i, 1, MSG_NOSIGNAL); /* fails once the server is gone */
		spin(f);
		sweep_after(f, 100);
	}
	/* a second and more of one byte now and then: over the 300 ms deadline, cut */
	assert_int_equal(drain(slow, &closed), 0);
	assert_true(closed);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_timeout_message), 1);
	/* a complete message in two parts within the deadline is fine, and then the clock stops */
	assert_int_equal(send(fast, binding, 10, 0), 10);
	spin(f);
	sweep_after(f, 100);
	assert_int_equal(send(fast, binding + 10, 10, 0), 10);
	spin(f);
	sweep_after(f, 400);
	assert_int_equal(f->w->nconns, 1);
	assert_int_equal(drain(fast, &closed), 20 + 12);
	assert_false(closed);
	assert_int_equal(cm_metrics_counter_value(f->ic.metrics.conns_timeout_message), 1);
	close(slow);
	close(fast);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_message_deadline, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
