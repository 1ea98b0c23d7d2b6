/* test_batch.c - the worker's receive arena and transmit queue (icicle/src/batch.c): a datagram's
 * slot is not reused while something queued may point into it, a full arena sends the queue
 * before reading on, the queue leaves by itself at the end of a loop pass, and the relay's counts
 * are published once per flush. Real UDP sockets on loopback, a real libuv loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/metrics.h"
#include "icicle/src/batch.h"
#include "icicle/src/icicle.h"

struct fixture {
	uv_loop_t uv;
	struct cm_metrics *m;
	struct icicle_metrics mt;
	struct icicle_batch b;
	int srv;  /* read through the arena; also sends the queue */
	int cli;  /* sends to srv */
	int sink; /* receives what the queue sends */
	struct sockaddr_in srv_addr, sink_addr;
};

static int udp_socket(struct sockaddr_in *addr)
{
	struct timeval tv = {.tv_sec = 1};
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in unused;

	assert_non_null(f);
	assert_int_equal(cm_metrics_alloc(&f->m), 0);
	assert_int_equal(icicle_metrics_init(&f->mt, f->m, NULL, 0), 0);
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(icicle_batch_init(&f->b, &f->uv, &f->mt), 0);
	f->srv = udp_socket(&f->srv_addr);
	f->cli = udp_socket(&unused);
	f->sink = udp_socket(&f->sink_addr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	icicle_batch_close(&f->b);
	uv_run(&f->uv, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	icicle_batch_free(&f->b);
	close(f->srv);
	close(f->cli);
	close(f->sink);
	cm_metrics_free(f->m);
	free(f);
	return 0;
}

/* Datagram "<tag><n>" from cli to srv. */
static void send_to_srv(struct fixture *f, char tag, unsigned n)
{
	char b[16];
	int len = snprintf(b, sizeof(b), "%c%u", tag, n);

	assert_int_equal(
	    sendto(f->cli, b, (size_t)len, 0, (struct sockaddr *)&f->srv_addr, sizeof(f->srv_addr)),
	    len);
}

/* Queue slot's datagram (by reference) from srv to sink, behind an optional header. */
static void queue_slot(struct fixture *f, size_t slot, const char *hdr, size_t pad)
{
	struct icicle_tx *t = icicle_batch_tx(&f->b);

	t->fd = f->srv;
	memcpy(&t->dst, &f->sink_addr, sizeof(f->sink_addr));
	t->dstlen = sizeof(f->sink_addr);
	t->hlen = strlen(hdr);
	memcpy(t->hdr, hdr, t->hlen);
	t->payload = f->b.rx->buf[slot];
	t->plen = f->b.rx->msg[slot].msg_len;
	t->pad = pad;
}

static void expect_at_sink(struct fixture *f, const void *want, size_t len)
{
	char got[64];

	assert_int_equal(recv(f->sink, got, sizeof(got), 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
}

static void expect_sink_empty(struct fixture *f)
{
	char got[64];

	assert_int_equal(recv(f->sink, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_slots_kept_while_queued(void **state)
{
	struct fixture *f = *state;
	size_t first;
	bool more;

	send_to_srv(f, 'a', 1);
	send_to_srv(f, 'a', 2);
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 2);
	assert_int_equal(first, 0);
	assert_false(more);
	assert_memory_equal(f->b.rx->buf[first + 1], "a2", 2);
	queue_slot(f, first, "", 0);
	/* a2 is still referenced: the next datagrams go after it */
	send_to_srv(f, 'b', 1);
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 1);
	assert_int_equal(first, 2);
	expect_sink_empty(f);
	icicle_batch_flush(&f->b);
	expect_at_sink(f, "a1", 2);
	/* nothing queued: the arena starts over */
	send_to_srv(f, 'c', 1);
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 1);
	assert_int_equal(first, 0);
	assert_memory_equal(f->b.rx->buf[first], "c1", 2);
	/* nothing to read is not an error */
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 0);
	assert_false(more);
}

static void test_full_arena_sends_queue_first(void **state)
{
	struct fixture *f = *state;
	unsigned n = ICICLE_RX_SLOTS, i, got = 0;
	size_t first;
	bool more = true;
	char want[16];

	for (i = 0; i < n + 1; i++)
		send_to_srv(f, 'd', i);
	/* every datagram queued by reference, as the relay does */
	while (got < n) {
		int k = icicle_batch_read(&f->b, f->srv, false, &first, &more);

		assert_true(k > 0);
		assert_int_equal(first, got);
		for (i = 0; i < (unsigned)k; i++)
			queue_slot(f, first + i, "", 0);
		got += (unsigned)k;
	}
	assert_true(more);
	expect_sink_empty(f);
	/* the arena is full: the queue leaves before the last datagram overwrites a slot */
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 1);
	assert_int_equal(first, 0);
	for (i = 0; i < n; i++) {
		int len = snprintf(want, sizeof(want), "d%u", i);

		expect_at_sink(f, want, (size_t)len);
	}
	expect_sink_empty(f);
}

static void test_queue_leaves_after_loop_pass(void **state)
{
	struct fixture *f = *state;
	size_t first;
	bool more;

	send_to_srv(f, 'e', 7);
	assert_int_equal(icicle_batch_read(&f->b, f->srv, false, &first, &more), 1);
	/* header, the payload by reference and two bytes of padding */
	queue_slot(f, first, "HDR:", 2);
	queue_slot(f, first, "", 0);
	expect_sink_empty(f);
	uv_run(&f->uv, UV_RUN_NOWAIT);
	assert_int_equal(f->b.ntx, 0);
	expect_at_sink(f, "HDR:e7\0\0", 8);
	expect_at_sink(f, "e7", 2);
}

/* The relay's counts are kept in the batch and published once per flush. */
static void test_counters_published_at_flush(void **state)
{
	struct fixture *f = *state;

	icicle_batch_relayed(&f->b, ICICLE_UP, 100);
	icicle_batch_relayed(&f->b, ICICLE_UP, 60);
	icicle_batch_relayed(&f->b, ICICLE_DOWN, 10);
	icicle_batch_dropped(&f->b, ICICLE_DROP);
	icicle_batch_dropped(&f->b, ICICLE_DROP_BW_ALLOC);
	icicle_batch_dropped(&f->b, ICICLE_DROP_BW_USER);
	assert_int_equal(cm_metrics_counter_value(f->mt.pkts_c2p), 0);
	icicle_batch_flush(&f->b);
	assert_int_equal(cm_metrics_counter_value(f->mt.pkts_c2p), 2);
	assert_int_equal(cm_metrics_counter_value(f->mt.bytes_c2p), 160);
	assert_int_equal(cm_metrics_counter_value(f->mt.pkts_p2c), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.bytes_p2c), 10);
	assert_int_equal(cm_metrics_counter_value(f->mt.dropped), 3);
	assert_int_equal(cm_metrics_counter_value(f->mt.quota_bandwidth), 1);
	assert_int_equal(cm_metrics_counter_value(f->mt.quota_user_bandwidth), 1);
	/* counted once */
	icicle_batch_flush(&f->b);
	assert_int_equal(cm_metrics_counter_value(f->mt.pkts_c2p), 2);
	assert_int_equal(cm_metrics_counter_value(f->mt.dropped), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slots_kept_while_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_arena_sends_queue_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_leaves_after_loop_pass, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counters_published_at_flush, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
