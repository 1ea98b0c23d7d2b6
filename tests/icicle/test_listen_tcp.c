/* test_listen_tcp.c - TCP and TLS client connections of one worker (icicle/src/listen_tcp.c): the
 * caps on connections per worker and per source, the message, idle and TLS handshake deadlines,
 * one TLS record per frame, and the unauthenticated rate limit that ends a stream client's
 * connection once its source has spent its budget. A real loop, real listeners on loopback, the
 * real control path (icicle/src/turn.c) behind them for Binding requests. */
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "icicle/src/alloc.h"
#include "icicle/src/attrs.h"
#include "icicle/src/batch.h"
#include "icicle/src/filter.h"
#include "icicle/src/icicle.h"
#include "icicle/src/listen.h"
#include "icicle/src/turn.h"

#define TLS_DIR "tests/common/tls/"

/* Binding request, no attributes */
static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3};
#define BINDING_ANSWER (20 + 12) /* header and XOR-MAPPED-ADDRESS */

struct fixture {
	uv_loop_t uv;
	struct cm_loop l;
	struct cm_metrics *m;
	struct icicle_metrics mt;
	struct icicle_batch batch;
	struct icicle_alloc_table allocs;
	struct icicle_auth auth;
	struct icicle_filter filter;
	struct icicle_turn turn;
	struct icicle_streams st;
	struct cm_srclimit *per_source;
	struct cm_log_limit log_refused, log_timeouts;
	struct cm_tls *srv_tls, *cli_tls;
	struct sockaddr_in addr, tls_addr;
};

/* What a worker does with a message, reduced to what these tests send: STUN to the control
 * path. */
static int on_message(void *arg, const struct icicle_client *c, uint8_t *p, size_t len)
{
	struct fixture *f = arg;

	if (icicle_stun_check_header(p, len) != 0) {
		cm_metrics_inc(f->mt.malformed);
		return -EBADMSG;
	}
	icicle_turn_handle(&f->turn, c, p, len);
	return 0;
}

static void free_port(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int probe = socket(AF_INET, SOCK_STREAM, 0);

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(probe, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(getsockname(probe, (struct sockaddr *)addr, &len), 0);
	close(probe);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct icicle_alloc_table_config ac = {.lim = {.perms = 1, .chans = 1}};
	struct cm_tls_config sc = {.cert_file = TLS_DIR "server.pem",
	                           .key_file = TLS_DIR "server.key"};
	struct cm_tls_config cc = {.ca_file = TLS_DIR "ca.pem"};
	struct icicle_turn_config tc = {
	    .realm = "icicle.test",
	    .lifetime_default = 600,
	    .lifetime_max = 3600,
	    .relay4 = true,
	    /* two unauthenticated answers per source, and a slow refill */
	    .unauth_rate = 1,
	    .unauth_burst = 2,
	};

	assert_non_null(f);
	cm_log_setup("test", CM_LOG_ERROR, CM_LOG_TEXT, 2);
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 1), 0);
	assert_int_equal(cm_metrics_alloc(&f->m), 0);
	assert_int_equal(icicle_metrics_init(&f->mt, f->m, NULL, 0), 0);
	assert_int_equal(icicle_batch_init(&f->batch, &f->uv, &f->mt), 0);
	ac.mt = &f->mt;
	assert_int_equal(icicle_alloc_table_init(&f->allocs, &f->l, &ac), 0);
	assert_int_equal(icicle_auth_init(&f->auth, "icicle.test", 600, NULL), 0);
	assert_int_equal(icicle_filter_init(&f->filter, true, NULL, 0, NULL, 0, NULL, 0), 0);
	tc.allocs = &f->allocs;
	tc.batch = &f->batch;
	tc.auth = &f->auth;
	tc.filter = &f->filter;
	tc.mt = &f->mt;
	assert_int_equal(icicle_turn_init(&f->turn, &f->l, &tc), 0);
	assert_int_equal(cm_tls_server_alloc(&f->srv_tls, &sc, NULL, 0), 0);
	assert_int_equal(cm_tls_client_alloc(&f->cli_tls, &cc, NULL, 0), 0);
	*state = f;
	return 0;
}

/* Open the worker's listeners (TCP, and TLS) with these limits. */
static void listen_with(struct fixture *f, unsigned max_conns, unsigned per_source,
                        uint64_t message_ms, uint64_t idle_ms, uint64_t handshake_ms)
{
	struct icicle_streams_config c = {
	    .max_conns = max_conns,
	    .max_per_source = per_source,
	    .message_ms = message_ms,
	    .handshake_ms = handshake_ms,
	    .idle_ms = idle_ms,
	    .tls = f->srv_tls,
	    .log_refused = &f->log_refused,
	    .log_timeouts = &f->log_timeouts,
	    .batch = &f->batch,
	    .mt = &f->mt,
	    .message = on_message,
	    .arg = f,
	};

	if (per_source) {
		assert_int_equal(cm_srclimit_alloc(&f->per_source, per_source), 0);
		c.per_source = f->per_source;
	}
	icicle_streams_init(&f->st, &f->l, &c);
	free_port(&f->addr);
	free_port(&f->tls_addr);
	assert_int_equal(icicle_streams_listen(&f->st, (struct sockaddr *)&f->addr, sizeof(f->addr),
	                                       false, NULL, 0),
	                 0);
	assert_int_equal(icicle_streams_listen(&f->st, (struct sockaddr *)&f->tls_addr,
	                                       sizeof(f->tls_addr), true, NULL, 0),
	                 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	icicle_streams_close(&f->st);
	icicle_batch_close(&f->batch);
	icicle_alloc_table_close(&f->allocs);
	cm_loop_close(&f->l, NULL);
	uv_run(&f->uv, UV_RUN_DEFAULT);
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	assert_int_equal(icicle_streams_count(&f->st), 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.conns), 0);
	icicle_streams_free(&f->st);
	icicle_batch_free(&f->batch);
	icicle_turn_close(&f->turn);
	icicle_auth_close(&f->auth);
	icicle_filter_close(&f->filter);
	cm_srclimit_free(f->per_source);
	cm_tls_free(f->srv_tls);
	cm_tls_free(f->cli_tls);
	cm_metrics_free(f->m);
	free(f);
	return 0;
}

static int connect_to(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof(*addr)), 0);
	return fd;
}

/* Let the worker's loop run for about ms milliseconds. */
static void spin_ms(struct fixture *f, unsigned ms)
{
	unsigned i;

	for (i = 0; i < ms / 5; i++) {
		uv_run(&f->uv, UV_RUN_NOWAIT);
		usleep(5000);
	}
}

static void spin(struct fixture *f)
{
	spin_ms(f, 100);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until the server closes fd (what it sent is read and dropped), for at most
 * max_ms; the milliseconds it took, or UINT64_MAX when it did not close. On a loaded machine
 * deadlines fire late, never early: tests bound them from below only. */
static uint64_t wait_closed(struct fixture *f, int fd, uint64_t max_ms)
{
	uint64_t t0 = mono_ms();
	uint8_t buf[4096];

	while (mono_ms() - t0 < max_ms) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		uv_run(&f->uv, UV_RUN_NOWAIT);
		if (poll(&p, 1, 5) > 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
			return mono_ms() - t0;
	}
	return UINT64_MAX;
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
	int a, b, c, closed;

	listen_with(f, 2, 0, 10000, 10000, 10000);
	a = connect_to(&f->addr);
	b = connect_to(&f->tls_addr); /* one cap for the worker, over its TCP and TLS listeners */
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	assert_int_equal(cm_metrics_gauge_value(f->mt.conns), 2);
	/* the third is accepted and closed at once, and counted */
	c = connect_to(&f->addr);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	assert_int_equal(drain(c, &closed), 0);
	assert_true(closed);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused), 1);
	/* room again once one goes */
	close(a);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 1);
	close(c);
	c = connect_to(&f->addr);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused_source), 0);
	close(b);
	close(c);
}

static void test_stream_rate_limit(void **state)
{
	struct fixture *f = *state;
	int fd, closed, i;
	size_t got;

	listen_with(f, 10, 0, 10000, 10000, 10000);
	fd = connect_to(&f->addr);
	for (i = 0; i < 3; i++)
		assert_int_equal(send(fd, binding, sizeof(binding), 0), (ssize_t)sizeof(binding));
	spin(f);
	/* two answers (the burst), then the connection is closed and the drop counted */
	got = drain(fd, &closed);
	assert_true(closed);
	assert_int_equal(got, 2 * BINDING_ANSWER);
	assert_int_equal(cm_metrics_counter_value(f->mt.rate_limited), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.requests_binding), 3);
	close(fd);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 0);
	/* UDP's budget is another one: the same source still has it all */
	assert_true(icicle_ratelimit_take(&f->turn.rl, (struct sockaddr *)&f->addr, 0));
}

/* One source address holds at most connections_per_source, whatever the worker's room. */
static void test_source_cap(void **state)
{
	struct fixture *f = *state;
	int a, b, c, closed;

	listen_with(f, 10, 2, 10000, 10000, 10000);
	a = connect_to(&f->addr);
	b = connect_to(&f->addr);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	c = connect_to(&f->tls_addr);
	spin(f);
	assert_int_equal(drain(c, &closed), 0);
	assert_true(closed);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused_source), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused), 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.conns), 2);
	/* a closed connection gives its place back */
	close(a);
	spin(f);
	assert_int_equal(cm_srclimit_count(f->per_source, (struct sockaddr *)&f->addr), 1);
	close(c);
	c = connect_to(&f->addr);
	spin(f);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_refused_source), 1);
	close(b);
	close(c);
}

/* Only complete frames are progress: bytes trickled in never reset the message deadline. */
static void test_message_deadline(void **state)
{
	struct fixture *f = *state;
	int slow, fast, i, closed;

	listen_with(f, 10, 0, 300, 10000, 10000);
	slow = connect_to(&f->addr);
	fast = connect_to(&f->addr);
	/* a connection that has sent nothing has no message to finish */
	spin_ms(f, 400);
	assert_int_equal(icicle_streams_count(&f->st), 2);
	for (i = 0; i < 5; i++) {
		(void)send(slow, binding + i, 1, MSG_NOSIGNAL); /* fails once the server is gone */
		spin_ms(f, 100);
	}
	/* half a second of one byte now and then: over the 300 ms deadline, cut */
	assert_int_equal(drain(slow, &closed), 0);
	assert_true(closed);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_message), 1);
	/* a complete message in two parts within the deadline is fine, and then the clock stops */
	assert_int_equal(send(fast, binding, 10, 0), 10);
	spin_ms(f, 100);
	assert_int_equal(send(fast, binding + 10, 10, 0), 10);
	spin_ms(f, 500);
	assert_int_equal(icicle_streams_count(&f->st), 1);
	assert_int_equal(drain(fast, &closed), BINDING_ANSWER);
	assert_false(closed);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_message), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_idle), 0);
	close(slow);
	close(fast);
}

/* Without an allocation a connection lives idle_ms after its last complete message. */
static void test_idle_deadline(void **state)
{
	struct fixture *f = *state;
	int quiet, busy, closed = 0, sent = 0;
	uint8_t buf[4096];
	uint64_t t0, took, last = 0;

	listen_with(f, 10, 0, 10000, 600, 10000);
	quiet = connect_to(&f->addr);
	busy = connect_to(&f->addr);
	/* busy speaks at 0 and 400 ms (two messages: the unauthenticated burst) while quiet says
	 * nothing: quiet goes, not before 600 ms, and busy stays */
	t0 = mono_ms();
	while (!closed && mono_ms() - t0 < 5000) {
		struct pollfd p = {.fd = quiet, .events = POLLIN};

		if (sent < 2 && mono_ms() - t0 >= (uint64_t)sent * 400) {
			assert_int_equal(send(busy, binding, sizeof(binding), 0),
			                 (ssize_t)sizeof(binding));
			last = mono_ms();
			sent++;
		}
		uv_run(&f->uv, UV_RUN_NOWAIT);
		if (poll(&p, 1, 5) > 0 && recv(quiet, buf, sizeof(buf), MSG_DONTWAIT) == 0)
			closed = 1;
	}
	assert_true(closed);
	assert_true(mono_ms() - t0 >= 550);
	if (mono_ms() - last < 550) {
		/* (on a machine so loaded that quiet's end came late, busy's may have come too) */
		assert_int_equal(icicle_streams_count(&f->st), 1);
		assert_int_equal(drain(busy, &closed), 2 * BINDING_ANSWER);
		assert_false(closed);
	}
	/* busy falls silent: it goes too, idle_ms after its last message */
	took = wait_closed(f, busy, 5000);
	assert_true(took != UINT64_MAX);
	assert_true(mono_ms() - last >= 550);
	assert_int_equal(icicle_streams_count(&f->st), 0);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_idle), 2);
	close(quiet);
	close(busy);
}

/* A TLS client: counts what arrives, read by read (one TLS record each at most). */
struct tls_client {
	struct cm_stream *s;
	int reads, connected, closed;
	size_t bytes;
	size_t sizes[8];
};

static void cli_read(struct cm_stream *s, const char *data, size_t len)
{
	struct tls_client *x = cm_stream_data(s);

	(void)data;
	x->sizes[x->reads++ % 8] = len;
	x->bytes += len;
}

static void cli_connected(struct cm_stream *s)
{
	struct tls_client *x = cm_stream_data(s);
	uint8_t two[2 * sizeof(binding)];

	x->connected = 1;
	memcpy(two, binding, sizeof(binding));
	memcpy(two + sizeof(binding), binding, sizeof(binding));
	two[sizeof(binding) + 8] = 9; /* another transaction */
	assert_int_equal(cm_stream_write(s, two, sizeof(two)), 0);
}

static void cli_closed(struct cm_stream *s, int err)
{
	struct tls_client *x = cm_stream_data(s);

	(void)err;
	x->closed = 1;
}

static const struct cm_stream_events cli_events = {
    .read = cli_read,
    .connected = cli_connected,
    .closed = cli_closed,
};

/* Two requests in one TLS record get two answers in two records: clients such as coturn's take
 * a record for a message. */
static void test_tls_record_per_frame(void **state)
{
	struct fixture *f = *state;
	struct cm_stream_opts o = {.tls = f->cli_tls, .server_name = "localhost"};
	struct tls_client x = {0};
	int i;

	listen_with(f, 10, 0, 10000, 10000, 10000);
	assert_int_equal(cm_stream_connect(&x.s, &f->l, "127.0.0.1", ntohs(f->tls_addr.sin_port),
	                                   &o, &cli_events, &x),
	                 0);
	for (i = 0; i < 100 && x.bytes < 2 * BINDING_ANSWER; i++)
		spin_ms(f, 10);
	assert_true(x.connected);
	assert_int_equal(x.reads, 2);
	assert_int_equal(x.sizes[0], BINDING_ANSWER);
	assert_int_equal(x.sizes[1], BINDING_ANSWER);
	assert_int_equal(cm_metrics_counter_value(f->mt.requests_binding), 2);
	cm_stream_abort(x.s, 0, false);
	spin(f);
	assert_true(x.closed);
}

/* A TLS client that does not finish its handshake in time is cut, and counted as such. */
static void test_tls_handshake_deadline(void **state)
{
	struct fixture *f = *state;
	int fd, closed = 0;
	uint64_t took;

	uint64_t t0;

	listen_with(f, 10, 0, 10000, 10000, 300);
	t0 = mono_ms();
	fd = connect_to(&f->tls_addr);
	assert_int_equal(send(fd, "\x16\x03\x01", 3, 0), 3); /* the start of a ClientHello */
	spin_ms(f, 100);
	assert_int_equal(icicle_streams_count(&f->st), 1);
	took = wait_closed(f, fd, 5000);
	assert_true(took != UINT64_MAX);
	/* not before the deadline, counted from the connection (the spin above may have taken
	 * longer than asked on a loaded machine) */
	assert_true(mono_ms() - t0 >= 250);
	(void)closed;
	assert_int_equal(icicle_streams_count(&f->st), 0);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_handshake), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.conns_timeout_message), 0);
	close(fd);
}

/* Bytes that are neither STUN nor ChannelData end the connection, counted as malformed. */
static void test_garbage(void **state)
{
	static const uint8_t junk[20] = {0x80, 1, 2, 3};
	struct fixture *f = *state;
	int fd, closed;

	listen_with(f, 10, 0, 10000, 10000, 10000);
	fd = connect_to(&f->addr);
	assert_int_equal(send(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	spin(f);
	assert_int_equal(drain(fd, &closed), 0);
	assert_true(closed);
	assert_int_equal(cm_metrics_counter_value(f->mt.malformed), 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_message_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_record_per_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_handshake_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
