/* test_alloc.c - the allocations of one worker (icicle/src/alloc.c): the 5-tuple table, relay
 * sockets in the configured range, permissions and channels with their lifetimes and caps, and
 * expiry on the loop's timer wheel. Only what a table is given is built: a loop, the shared
 * quota and reservation tables, and a metrics registry for its gauges. */
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
#include <unistd.h>
#include <cmocka.h>

#include "cm/loop.h"
#include "cm/metrics.h"
#include "icicle/src/alloc.h"
#include "icicle/src/icicle.h"
#include "icicle/src/rsv.h"

struct fixture {
	uv_loop_t uv;
	struct cm_loop l;
	struct cm_metrics *m;
	struct icicle_metrics mt;
	struct icicle_quota quota;
	struct icicle_rsv rsv;
	struct icicle_alloc_table t;
	struct icicle_client c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct icicle_alloc_table_config cfg = {
	    .lim = {.perms = 2, .chans = 2, .min_port = 41000, .max_port = 41999},
	};
	struct sockaddr_in *in;

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 1), 0);
	assert_int_equal(cm_metrics_alloc(&f->m), 0);
	assert_int_equal(icicle_metrics_init(&f->mt, f->m, NULL, 0), 0);
	assert_int_equal(icicle_quota_init(&f->quota, 1, 0, 0), 0);
	assert_int_equal(icicle_rsv_init(&f->rsv, 2, 0), 0);
	in = (struct sockaddr_in *)&cfg.lim.bind[0];
	in->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &in->sin_addr);
	cfg.quota = &f->quota;
	cfg.rsv = &f->rsv;
	cfg.mt = &f->mt;
	assert_int_equal(icicle_alloc_table_init(&f->t, &f->l, &cfg), 0);
	f->c.tp = ICICLE_UDP;
	f->c.udp = (struct icicle_udp *)(uintptr_t)0x1000; /* only compared, never used */
	in = (struct sockaddr_in *)&f->c.addr;
	in->sin_family = AF_INET;
	in->sin_port = htons(5000);
	inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
	f->c.addrlen = sizeof(*in);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* after a failed assertion allocations may be left: the close ends them */
	icicle_alloc_table_close(&f->t);
	cm_loop_close(&f->l, NULL);
	uv_run(&f->uv, UV_RUN_DEFAULT); /* close callbacks free the allocations */
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	assert_int_equal(f->quota.total, 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.allocations), 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.permissions), 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.channels), 0);
	icicle_quota_close(&f->quota);
	icicle_rsv_close(&f->rsv);
	cm_metrics_free(f->m);
	free(f);
	return 0;
}

/* An allocation request for family IPv4 living lifetime seconds. */
static struct icicle_alloc_req req4(uint32_t lifetime)
{
	return (struct icicle_alloc_req){.fam4 = true, .lifetime = lifetime};
}

/* Run the loop until a's client has no allocation any more, for at most 2 s. */
static void run_until_gone(struct fixture *f)
{
	int i;

	for (i = 0; i < 200 && icicle_alloc_find(&f->t, &f->c); i++) {
		uv_run(&f->uv, UV_RUN_NOWAIT);
		usleep(10 * 1000);
	}
}

static void peer(struct sockaddr_in *in, const char *ip, uint16_t port)
{
	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	inet_pton(AF_INET, ip, &in->sin_addr);
}

static void test_create_find_destroy(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL, *b = NULL;
	struct icicle_client other = f->c;
	const struct sockaddr_in *adv;

	assert_null(icicle_alloc_find(&f->t, &f->c));
	assert_int_equal(
	    icicle_alloc_create(
	        &f->t, &f->c, "alice",
	        &(struct icicle_alloc_req){.fam4 = true, .even = true, .lifetime = 600}, &a),
	    0);
	assert_ptr_equal(icicle_alloc_find(&f->t, &f->c), a);
	assert_int_equal(a->lifetime, 600);
	assert_int_equal(cm_metrics_gauge_value(f->mt.allocations), 1);
	assert_true(a->relay[0].fd >= 0);
	assert_int_equal(a->relay[1].fd, -1);
	adv = (const struct sockaddr_in *)&a->relay[0].adv;
	assert_int_equal(adv->sin_family, AF_INET);
	assert_true(ntohs(adv->sin_port) >= 41000 && ntohs(adv->sin_port) <= 41999);
	assert_int_equal(ntohs(adv->sin_port) % 2, 0); /* EVEN-PORT */
	/* the per-user cap (1) */
	((struct sockaddr_in *)&other.addr)->sin_port = htons(5001);
	assert_int_equal(icicle_alloc_create(&f->t, &other, "alice",
	                                     &(struct icicle_alloc_req){.fam4 = true}, &b),
	                 -EDQUOT);
	assert_null(icicle_alloc_find(&f->t, &other));
	/* no IPv6 relays configured */
	assert_int_equal(
	    icicle_alloc_create(&f->t, &other, "bob", &(struct icicle_alloc_req){.fam6 = true}, &b),
	    -EAFNOSUPPORT);
	assert_int_equal(icicle_quota_user_count(&f->quota, "bob"), 0);
	icicle_alloc_destroy(a);
	icicle_alloc_destroy(a); /* a no-op on an allocation already dead */
	assert_null(icicle_alloc_find(&f->t, &f->c));
	assert_int_equal(f->t.count, 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.allocations), 0);
}

static void test_permissions(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct icicle_alloc_req rq = req4(600);
	struct sockaddr_in p1, p2, p3;
	uint8_t ip1[16], ip2[16], ip3[16];
	uint64_t now = uv_now(&f->uv);

	peer(&p1, "198.51.99.1", 1);
	peer(&p2, "198.51.99.2", 1);
	peer(&p3, "198.51.99.3", 1);
	icicle_ip16((struct sockaddr *)&p1, ip1);
	icicle_ip16((struct sockaddr *)&p2, ip2);
	icicle_ip16((struct sockaddr *)&p3, ip3);
	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	assert_null(icicle_perm_find(a, ip1, now));
	assert_int_equal(icicle_perm_add(a, ip1, now), 0);
	assert_int_equal(icicle_perm_add(a, ip2, now + 1000), 0);
	assert_int_equal(icicle_perm_add(a, ip1, now + 1000), 0); /* a refresh takes no room */
	assert_int_equal(icicle_perm_add(a, ip3, now + 1000), -EDQUOT);
	assert_int_equal(cm_metrics_gauge_value(f->mt.permissions), 2);
	assert_non_null(icicle_perm_find(a, ip1, now + ICICLE_PERM_MS));
	/* 300 s after its last refresh a permission is gone, and its room is free again */
	assert_null(icicle_perm_find(a, ip1, now + 1000 + ICICLE_PERM_MS));
	assert_int_equal(icicle_perm_add(a, ip3, now + 1001 + ICICLE_PERM_MS), 0);
	assert_non_null(icicle_perm_find(a, ip3, now + 1001 + ICICLE_PERM_MS));
	assert_int_equal(cm_metrics_gauge_value(f->mt.permissions), 1);
	icicle_alloc_destroy(a);
}

static void test_channels(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct icicle_alloc_req rq = req4(600);
	struct sockaddr_in p1, p2, p3;
	uint64_t now = uv_now(&f->uv);

	peer(&p1, "198.51.99.1", 1000);
	peer(&p2, "198.51.99.1", 1001); /* same address, other port: another peer */
	peer(&p3, "198.51.99.3", 1000);
	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p1, now), 0);
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p1, now + 10), 0);
	/* a number is bound to one peer and a peer to one number */
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p2, now), -EINVAL);
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p1, now), -EINVAL);
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p2, now), 0);
	assert_int_equal(icicle_chan_bind(a, 0x4002, (struct sockaddr *)&p3, now), -EDQUOT);
	assert_int_equal(cm_metrics_gauge_value(f->mt.channels), 2);
	assert_ptr_equal(icicle_chan_by_num(a, 0x4000, now)->num, 0x4000);
	assert_int_equal(icicle_chan_by_peer(a, (struct sockaddr *)&p2, now)->num, 0x4001);
	assert_null(icicle_chan_by_peer(a, (struct sockaddr *)&p3, now));
	/* expired after 600 s: unusable, and still reserved for 5 more minutes */
	assert_null(icicle_chan_by_num(a, 0x4001, now + ICICLE_CHAN_MS));
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p3, now + ICICLE_CHAN_MS),
	                 -EINVAL);
	icicle_alloc_destroy(a);
}

/* Lifetimes run on the loop's timer wheel: the allocation goes when its time is up, and a
 * permission whose time is up is swept while the allocation lives on. */
static void test_expiry(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct icicle_alloc_req rq = req4(600);
	struct sockaddr_in p1;
	uint8_t ip1[16];
	int i;

	peer(&p1, "198.51.99.1", 1);
	icicle_ip16((struct sockaddr *)&p1, ip1);
	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	assert_true(cm_loop_timer_active(&a->timer));
	assert_int_equal(icicle_perm_add(a, ip1, uv_now(&f->uv)), 0);
	/* pretend the permission was installed 300 s ago: the timer sweeps it */
	a->perms[0].expires = uv_now(&f->uv);
	icicle_alloc_reschedule(a);
	for (i = 0; i < 100 && a->nperms > 0; i++) {
		uv_run(&f->uv, UV_RUN_NOWAIT);
		usleep(10 * 1000);
	}
	assert_int_equal(a->nperms, 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.permissions), 0);
	assert_ptr_equal(icicle_alloc_find(&f->t, &f->c), a); /* the allocation lives on */
	assert_true(cm_loop_timer_active(&a->timer));         /* armed for its own end now */
	/* pretend its lifetime ended a second ago */
	a->expires = uv_now(&f->uv) - 1000;
	icicle_alloc_reschedule(a);
	run_until_gone(f);
	assert_null(icicle_alloc_find(&f->t, &f->c));
	assert_int_equal(f->t.count, 0);
	assert_int_equal(icicle_quota_user_count(&f->quota, "alice"), 0);
	assert_int_equal(cm_metrics_gauge_value(f->mt.allocations), 0);
}

static void test_many_allocations_grow_table(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *v[300];
	struct icicle_alloc_req rq = req4(60);
	struct icicle_client c = f->c;
	char user[16];
	size_t i;

	for (i = 0; i < 300; i++) {
		((struct sockaddr_in *)&c.addr)->sin_port = htons((uint16_t)(10000 + i));
		snprintf(user, sizeof(user), "u%zu", i);
		rq.lifetime = 60 + (uint32_t)i;
		assert_int_equal(icicle_alloc_create(&f->t, &c, user, &rq, &v[i]), 0);
	}
	assert_int_equal(f->t.count, 300);
	for (i = 0; i < 300; i++) {
		((struct sockaddr_in *)&c.addr)->sin_port = htons((uint16_t)(10000 + i));
		assert_ptr_equal(icicle_alloc_find(&f->t, &c), v[i]);
	}
	/* the same address and port through another socket is another client */
	c.udp = (struct icicle_udp *)(uintptr_t)0x2000;
	assert_null(icicle_alloc_find(&f->t, &c));
	for (i = 0; i < 300; i++)
		icicle_alloc_destroy(v[i]);
	assert_int_equal(f->t.count, 0);
}

static uint16_t relay_port(const struct icicle_alloc *a, int idx)
{
	return ntohs(((const struct sockaddr_in *)&a->relay[idx].adv)->sin_port);
}

/* EVEN-PORT with R: an even port, the next one held under a token another client redeems. */
static void test_reservation(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL, *b = NULL, *c = NULL;
	struct icicle_client other = f->c, third = f->c;
	uint64_t token;

	((struct sockaddr_in *)&other.addr)->sin_port = htons(5001);
	((struct sockaddr_in *)&third.addr)->sin_port = htons(5002);
	assert_int_equal(
	    icicle_alloc_create(
	        &f->t, &f->c, "alice",
	        &(struct icicle_alloc_req){.fam4 = true, .reserve = true, .lifetime = 600}, &a),
	    0);
	assert_true(a->has_rsv_token);
	assert_int_equal(relay_port(a, 0) % 2, 0);
	assert_int_equal(icicle_rsv_count(&f->rsv), 1);
	token = a->rsv_token;
	/* a token that was never issued */
	assert_int_equal(icicle_alloc_create(
	                     &f->t, &other, "bob",
	                     &(struct icicle_alloc_req){.has_token = true, .token = token ^ 1}, &b),
	                 -ENOENT);
	assert_int_equal(icicle_quota_user_count(&f->quota, "bob"), 0);
	/* the right one gives the port above, once */
	assert_int_equal(
	    icicle_alloc_create(
	        &f->t, &other, "bob",
	        &(struct icicle_alloc_req){.has_token = true, .token = token, .lifetime = 600}, &b),
	    0);
	assert_false(b->has_rsv_token);
	assert_int_equal(relay_port(b, 0), relay_port(a, 0) + 1);
	assert_int_equal(icicle_rsv_count(&f->rsv), 0);
	assert_int_equal(
	    icicle_alloc_create(&f->t, &third, "carol",
	                        &(struct icicle_alloc_req){.has_token = true, .token = token}, &c),
	    -ENOENT);
	/* one reserved neighbour per allocation: not with both families */
	assert_int_equal(
	    icicle_alloc_create(
	        &f->t, &third, "carol",
	        &(struct icicle_alloc_req){.fam4 = true, .fam6 = true, .reserve = true}, &c),
	    -EINVAL);
	icicle_alloc_destroy(a);
	icicle_alloc_destroy(b);
	/* a reservation whose allocation is gone expires on its own after 30 s */
	assert_int_equal(
	    icicle_alloc_create(
	        &f->t, &f->c, "alice",
	        &(struct icicle_alloc_req){.fam4 = true, .reserve = true, .lifetime = 600}, &a),
	    0);
	token = a->rsv_token;
	icicle_alloc_destroy(a);
	assert_int_equal(icicle_rsv_expire(&f->rsv, uv_now(&f->uv) + ICICLE_RSV_MS - 1), 0);
	assert_int_equal(icicle_rsv_expire(&f->rsv, uv_now(&f->uv) + ICICLE_RSV_MS), 1);
	assert_int_equal(
	    icicle_alloc_create(&f->t, &other, "bob",
	                        &(struct icicle_alloc_req){.has_token = true, .token = token}, &b),
	    -ENOENT);
}

/* The relay address advertised: the bound one, or the external one behind a 1:1 NAT. */
static void test_advertised(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct icicle_alloc_req rq = req4(600);
	struct sockaddr_in *ext = (struct sockaddr_in *)&f->t.cfg.lim.external[0];
	const struct sockaddr_in *adv;
	char ip[INET_ADDRSTRLEN];

	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	adv = (const struct sockaddr_in *)&a->relay[0].adv;
	assert_string_equal(inet_ntop(AF_INET, &adv->sin_addr, ip, sizeof(ip)), "127.0.0.1");
	icicle_alloc_destroy(a);
	ext->sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.10", &ext->sin_addr);
	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	adv = (const struct sockaddr_in *)&a->relay[0].adv;
	assert_string_equal(inet_ntop(AF_INET, &adv->sin_addr, ip, sizeof(ip)), "203.0.113.10");
	assert_true(ntohs(adv->sin_port) >= 41000 && ntohs(adv->sin_port) <= 41999);
	icicle_alloc_destroy(a);
}

/* The allocation's bandwidth budget first, then its user's, each direction apart. */
static void test_bandwidth(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct icicle_alloc_req rq = req4(600);
	uint64_t now = uv_now(&f->uv);

	f->t.cfg.lim.bandwidth = 1000;
	f->quota.user_bw = 800;
	assert_int_equal(icicle_alloc_create(&f->t, &f->c, "alice", &rq, &a), 0);
	assert_int_equal(icicle_alloc_bw_take(a, ICICLE_UP, 600, now), 0);
	/* 400 left for the allocation, 200 for its user */
	assert_int_equal(icicle_alloc_bw_take(a, ICICLE_UP, 500, now), -EDQUOT);
	assert_int_equal(icicle_alloc_bw_take(a, ICICLE_UP, 300, now), -EUSERS);
	assert_int_equal(icicle_alloc_bw_take(a, ICICLE_DOWN, 800, now), 0);
	/* a second later both are full again */
	assert_int_equal(icicle_alloc_bw_take(a, ICICLE_UP, 800, now + 1000), 0);
	icicle_alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_find_destroy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_channels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_allocations_grow_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_advertised, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bandwidth, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
