/* test_alloc.c - allocations of one worker (icicle/src/alloc.c): the 5-tuple table, relay
 * sockets in the configured range, permissions and channels with their lifetimes and caps, and
 * expiry through the timer wheel. */
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

#include "icicle/src/server.h"

struct fixture {
	struct icicle ic;
	struct icicle_config cfg;
	struct icicle_worker *w;
	struct icicle_client c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg.relay.ipv4 = "127.0.0.1";
	f->cfg.relay.ipv6 = "";
	f->cfg.relay.external_ipv4 = "";
	f->cfg.relay.external_ipv6 = "";
	f->cfg.relay.min_port = 41000;
	f->cfg.relay.max_port = 41999;
	f->cfg.quotas.permissions_per_allocation = 2;
	f->cfg.quotas.channels_per_allocation = 2;
	f->ic.cfg = &f->cfg;
	assert_int_equal(icicle_quota_init(&f->ic.quota, 1, 0, 0), 0);
	assert_int_equal(icicle_rsv_init(&f->ic.rsv, 2, 0), 0);
	f->w = calloc(1, sizeof(*f->w));
	assert_non_null(f->w);
	f->w->ic = &f->ic;
	f->w->rng = 12345;
	assert_int_equal(uv_loop_init(&f->w->loop), 0);
	f->w->wheel_sec = uv_now(&f->w->loop) / 1000;
	assert_int_equal(icicle_table_init(f->w), 0);
	f->c.tp = ICICLE_UDP;
	f->c.udp = (struct icicle_udp *)(uintptr_t)0x1000; /* only compared, never used */
	{
		struct sockaddr_in *in = (struct sockaddr_in *)&f->c.addr;

		in->sin_family = AF_INET;
		in->sin_port = htons(5000);
		inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
		f->c.addrlen = sizeof(*in);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	/* after a failed assertion allocations may be left: end them so the loop can finish */
	for (i = 0; i < ICICLE_WHEEL_SLOTS; i++)
		while (f->w->wheel[i])
			icicle_alloc_destroy(f->w->wheel[i]);
	uv_run(&f->w->loop, UV_RUN_DEFAULT); /* close callbacks free the allocations */
	assert_int_equal(uv_loop_close(&f->w->loop), 0);
	icicle_table_close(f->w);
	assert_int_equal(f->ic.quota.total, 0);
	icicle_quota_close(&f->ic.quota);
	icicle_rsv_close(&f->ic.rsv);
	free(f->w);
	free(f);
	return 0;
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

	assert_null(icicle_alloc_find(f->w, &f->c));
	assert_int_equal(icicle_alloc_create(f->w, &f->c, "alice",
	                                     &(struct icicle_alloc_req){.fam4 = true, .even = true},
	                                     &a),
	                 0);
	icicle_alloc_set_expiry(a, 600);
	assert_ptr_equal(icicle_alloc_find(f->w, &f->c), a);
	assert_true(a->relay[0].fd >= 0);
	assert_int_equal(a->relay[1].fd, -1);
	adv = (const struct sockaddr_in *)&a->relay[0].adv;
	assert_int_equal(adv->sin_family, AF_INET);
	assert_true(ntohs(adv->sin_port) >= 41000 && ntohs(adv->sin_port) <= 41999);
	assert_int_equal(ntohs(adv->sin_port) % 2, 0); /* EVEN-PORT */
	/* the per-user cap (1) */
	((struct sockaddr_in *)&other.addr)->sin_port = htons(5001);
	assert_int_equal(icicle_alloc_create(f->w, &other, "alice",
	                                     &(struct icicle_alloc_req){.fam4 = true}, &b),
	                 -EDQUOT);
	assert_null(icicle_alloc_find(f->w, &other));
	/* no IPv6 relays configured */
	assert_int_equal(
	    icicle_alloc_create(f->w, &other, "bob", &(struct icicle_alloc_req){.fam6 = true}, &b),
	    -EAFNOSUPPORT);
	icicle_alloc_destroy(a);
	assert_null(icicle_alloc_find(f->w, &f->c));
	assert_int_equal(f->w->nallocs, 0);
}

static void test_permissions(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct sockaddr_in p1, p2, p3;
	uint8_t ip1[16], ip2[16], ip3[16];
	uint64_t now = uv_now(&f->w->loop);

	peer(&p1, "198.51.99.1", 1);
	peer(&p2, "198.51.99.2", 1);
	peer(&p3, "198.51.99.3", 1);
	icicle_ip16((struct sockaddr *)&p1, ip1);
	icicle_ip16((struct sockaddr *)&p2, ip2);
	icicle_ip16((struct sockaddr *)&p3, ip3);
	assert_int_equal(
	    icicle_alloc_create(f->w, &f->c, "alice", &(struct icicle_alloc_req){.fam4 = true}, &a),
	    0);
	icicle_alloc_set_expiry(a, 600);
	assert_null(icicle_perm_find(a, ip1, now));
	assert_int_equal(icicle_perm_add(a, ip1, now), 0);
	assert_int_equal(icicle_perm_add(a, ip2, now + 1000), 0);
	assert_int_equal(icicle_perm_add(a, ip1, now + 1000), 0); /* a refresh takes no room */
	assert_int_equal(icicle_perm_add(a, ip3, now + 1000), -EDQUOT);
	assert_non_null(icicle_perm_find(a, ip1, now + ICICLE_PERM_MS));
	/* 300 s after its last refresh a permission is gone, and its room is free again */
	assert_null(icicle_perm_find(a, ip1, now + 1000 + ICICLE_PERM_MS));
	assert_int_equal(icicle_perm_add(a, ip3, now + 1001 + ICICLE_PERM_MS), 0);
	assert_non_null(icicle_perm_find(a, ip3, now + 1001 + ICICLE_PERM_MS));
	icicle_alloc_destroy(a);
}

static void test_channels(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;
	struct sockaddr_in p1, p2, p3;
	uint64_t now = uv_now(&f->w->loop);

	peer(&p1, "198.51.99.1", 1000);
	peer(&p2, "198.51.99.1", 1001); /* same address, other port: another peer */
	peer(&p3, "198.51.99.3", 1000);
	assert_int_equal(
	    icicle_alloc_create(f->w, &f->c, "alice", &(struct icicle_alloc_req){.fam4 = true}, &a),
	    0);
	icicle_alloc_set_expiry(a, 600);
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p1, now), 0);
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p1, now + 10), 0);
	/* a number is bound to one peer and a peer to one number */
	assert_int_equal(icicle_chan_bind(a, 0x4000, (struct sockaddr *)&p2, now), -EINVAL);
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p1, now), -EINVAL);
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p2, now), 0);
	assert_int_equal(icicle_chan_bind(a, 0x4002, (struct sockaddr *)&p3, now), -EDQUOT);
	assert_ptr_equal(icicle_chan_by_num(a, 0x4000, now)->num, 0x4000);
	assert_int_equal(icicle_chan_by_peer(a, (struct sockaddr *)&p2, now)->num, 0x4001);
	assert_null(icicle_chan_by_peer(a, (struct sockaddr *)&p3, now));
	/* expired after 600 s: unusable, and still reserved for 5 more minutes */
	assert_null(icicle_chan_by_num(a, 0x4001, now + ICICLE_CHAN_MS));
	assert_int_equal(icicle_chan_bind(a, 0x4001, (struct sockaddr *)&p3, now + ICICLE_CHAN_MS),
	                 -EINVAL);
	icicle_alloc_destroy(a);
}

static void test_wheel_expiry(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *a = NULL;

	assert_int_equal(
	    icicle_alloc_create(f->w, &f->c, "alice", &(struct icicle_alloc_req){.fam4 = true}, &a),
	    0);
	icicle_alloc_set_expiry(a, 600);
	icicle_alloc_tick(f->w);
	assert_ptr_equal(icicle_alloc_find(f->w, &f->c), a); /* not yet */
	/* pretend its lifetime ended a second ago (the wheel's granularity is one second) */
	a->expires = uv_now(&f->w->loop) - 1000;
	icicle_alloc_reschedule(a);
	/* the tick already ran for this second: the allocation goes at the next one */
	usleep(1100 * 1000);
	uv_update_time(&f->w->loop);
	icicle_alloc_tick(f->w);
	assert_null(icicle_alloc_find(f->w, &f->c));
	assert_int_equal(f->w->nallocs, 0);
	assert_int_equal(icicle_quota_user_count(&f->ic.quota, "alice"), 0);
}

static void test_many_allocations_grow_table(void **state)
{
	struct fixture *f = *state;
	struct icicle_alloc *v[300];
	struct icicle_client c = f->c;
	char user[16];
	size_t i;

	for (i = 0; i < 300; i++) {
		((struct sockaddr_in *)&c.addr)->sin_port = htons((uint16_t)(10000 + i));
		snprintf(user, sizeof(user), "u%zu", i);
		assert_int_equal(icicle_alloc_create(f->w, &c, user,
		                                     &(struct icicle_alloc_req){.fam4 = true},
		                                     &v[i]),
		                 0);
		icicle_alloc_set_expiry(v[i], 60 + (uint32_t)i);
	}
	for (i = 0; i < 300; i++) {
		((struct sockaddr_in *)&c.addr)->sin_port = htons((uint16_t)(10000 + i));
		assert_ptr_equal(icicle_alloc_find(f->w, &c), v[i]);
	}
	for (i = 0; i < 300; i++)
		icicle_alloc_destroy(v[i]);
	assert_int_equal(f->w->nallocs, 0);
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
	    icicle_alloc_create(f->w, &f->c, "alice",
	                        &(struct icicle_alloc_req){.fam4 = true, .reserve = true}, &a),
	    0);
	icicle_alloc_set_expiry(a, 600);
	assert_true(a->has_rsv_token);
	assert_int_equal(relay_port(a, 0) % 2, 0);
	assert_int_equal(icicle_rsv_count(&f->ic.rsv), 1);
	token = a->rsv_token;
	/* a token that was never issued */
	assert_int_equal(icicle_alloc_create(
	                     f->w, &other, "bob",
	                     &(struct icicle_alloc_req){.has_token = true, .token = token ^ 1}, &b),
	                 -ENOENT);
	assert_int_equal(icicle_quota_user_count(&f->ic.quota, "bob"), 0);
	/* the right one gives the port above, once */
	assert_int_equal(
	    icicle_alloc_create(f->w, &other, "bob",
	                        &(struct icicle_alloc_req){.has_token = true, .token = token}, &b),
	    0);
	icicle_alloc_set_expiry(b, 600);
	assert_false(b->has_rsv_token);
	assert_int_equal(relay_port(b, 0), relay_port(a, 0) + 1);
	assert_int_equal(icicle_rsv_count(&f->ic.rsv), 0);
	assert_int_equal(
	    icicle_alloc_create(f->w, &third, "carol",
	                        &(struct icicle_alloc_req){.has_token = true, .token = token}, &c),
	    -ENOENT);
	/* one reserved neighbour per allocation: not with both families */
	assert_int_equal(
	    icicle_alloc_create(
	        f->w, &third, "carol",
	        &(struct icicle_alloc_req){.fam4 = true, .fam6 = true, .reserve = true}, &c),
	    -EINVAL);
	icicle_alloc_destroy(a);
	icicle_alloc_destroy(b);
	/* a reservation whose allocation is gone expires on its own after 30 s */
	assert_int_equal(
	    icicle_alloc_create(f->w, &f->c, "alice",
	                        &(struct icicle_alloc_req){.fam4 = true, .reserve = true}, &a),
	    0);
	token = a->rsv_token;
	icicle_alloc_destroy(a);
	assert_int_equal(icicle_rsv_expire(&f->ic.rsv, uv_now(&f->w->loop) + ICICLE_RSV_MS - 1), 0);
	assert_int_equal(icicle_rsv_expire(&f->ic.rsv, uv_now(&f->w->loop) + ICICLE_RSV_MS), 1);
	assert_int_equal(
	    icicle_alloc_create(f->w, &other, "bob",
	                        &(struct icicle_alloc_req){.has_token = true, .token = token}, &b),
	    -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_find_destroy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_channels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wheel_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_allocations_grow_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
