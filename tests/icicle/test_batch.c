/* test_batch.c - the worker's receive arena and transmit queue (icicle/src/batch.c): a datagram's
 * slot is not reused while something queued may point into it, a full arena sends the queue
 * before reading on, and the queue leaves by itself at the end of a loop pass. Real UDP sockets
 * on loopback, a real libuv loop. */
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
#include "icicle/src/server.h"

struct fixture {
	struct icicle ic;
	struct icicle_config cfg;
	struct cm_metrics *m;
	struct icicle_worker *w;
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
	f->ic.cfg = &f->cfg;
	assert_int_equal(cm_metrics_alloc(&f->m), 0);
	assert_int_equal(icicle_metrics_init(&f->ic.metrics, f->m, NULL, 0), 0);
	f->w = calloc(1, sizeof(*f->w));
	assert_non_null(f->w);
	f->w->ic = &f->ic;
	assert_int_equal(uv_loop_init(&f->w->loop), 0);
	assert_int_equal(icicle_batch_init(f->w), 0);
	f->srv = udp_socket(&f->srv_addr);
	f->cli = udp_socket(&unused);
	f->sink = udp_socket(&f->sink_addr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	icicle_batch_close(f->w);
	uv_run(&f->w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->w->loop), 0);
	assert_int_equal(f->w->handles, 0);
	icicle_batch_free(f->w);
	close(f->srv);
	close(f->cli);
	close(f->sink);
	free(f->w);
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
	struct icicle_tx *t = icicle_tx_get(f->w);

	t->fd = f->srv;
	memcpy(&t->dst, &f->sink_addr, sizeof(f->sink_addr));
	t->dstlen = sizeof(f->sink_addr);
	t->hlen = strlen(hdr);
	memcpy(t->hdr, hdr, t->hlen);
	t->payload = f->w->rx->buf[slot];
	t->plen = f->w->rx->msg[slot].msg_len;
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
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 2);
	assert_int_equal(first, ICICLE_RX_FIRST);
	assert_false(more);
	assert_memory_equal(f->w->rx->buf[first + 1], "a2", 2);
	queue_slot(f, first, "", 0);
	/* a2 is still referenced: the next datagrams go after it */
	send_to_srv(f, 'b', 1);
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 1);
	assert_int_equal(first, ICICLE_RX_FIRST + 2);
	expect_sink_empty(f);
	icicle_tx_flush(f->w);
	expect_at_sink(f, "a1", 2);
	/* nothing queued: the arena starts over */
	send_to_srv(f, 'c', 1);
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 1);
	assert_int_equal(first, ICICLE_RX_FIRST);
	assert_memory_equal(f->w->rx->buf[first], "c1", 2);
	/* nothing to read is not an error */
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 0);
	assert_false(more);
}

static void test_full_arena_sends_queue_first(void **state)
{
	struct fixture *f = *state;
	unsigned n = ICICLE_RX_SLOTS - ICICLE_RX_FIRST, i, got = 0;
	size_t first;
	bool more = true;
	char want[16];

	for (i = 0; i < n + 1; i++)
		send_to_srv(f, 'd', i);
	/* every datagram queued by reference, as the relay does */
	while (got < n) {
		int k = icicle_rx_read(f->w, f->srv, false, &first, &more);

		assert_true(k > 0);
		assert_int_equal(first, ICICLE_RX_FIRST + got);
		for (i = 0; i < (unsigned)k; i++)
			queue_slot(f, first + i, "", 0);
		got += (unsigned)k;
	}
	assert_true(more);
	expect_sink_empty(f);
	/* the arena is full: the queue leaves before the last datagram overwrites a slot */
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 1);
	assert_int_equal(first, ICICLE_RX_FIRST);
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
	assert_int_equal(icicle_rx_read(f->w, f->srv, false, &first, &more), 1);
	/* header, the payload by reference and two bytes of padding */
	queue_slot(f, first, "HDR:", 2);
	queue_slot(f, first, "", 0);
	expect_sink_empty(f);
	uv_run(&f->w->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->w->ntx, 0);
	expect_at_sink(f, "HDR:e7\0\0", 8);
	expect_at_sink(f, "e7", 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slots_kept_while_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_arena_sends_queue_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_leaves_after_loop_pass, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
