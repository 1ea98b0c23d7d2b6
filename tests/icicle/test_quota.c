/* test_quota.c - token buckets, allocation caps and the unauthenticated rate limit
 * (icicle/src/quota.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "icicle/src/quota.h"

static void test_bucket_maths(void **state)
{
	struct icicle_bucket b;
	int i;

	(void)state;
	icicle_bucket_init(&b, 10, 1000);
	/* a full bucket gives its burst at once, then nothing */
	for (i = 0; i < 10; i++)
		assert_true(icicle_bucket_take(&b, 5, 10, 1, 1000));
	assert_false(icicle_bucket_take(&b, 5, 10, 1, 1000));
	/* 5 tokens/s: one token per 200 ms */
	assert_false(icicle_bucket_take(&b, 5, 10, 1, 1199));
	assert_true(icicle_bucket_take(&b, 5, 10, 1, 1200));
	assert_false(icicle_bucket_take(&b, 5, 10, 1, 1200));
	/* a long idle time fills it to the burst, not beyond */
	assert_true(icicle_bucket_take(&b, 5, 10, 10, 100000));
	assert_false(icicle_bucket_take(&b, 5, 10, 1, 100000));
	/* costs larger than one (bytes) */
	icicle_bucket_init(&b, 1000, 0);
	assert_true(icicle_bucket_take(&b, 1000, 1000, 600, 0));
	assert_false(icicle_bucket_take(&b, 1000, 1000, 600, 0));
	assert_true(icicle_bucket_take(&b, 1000, 1000, 600, 200));
	/* rate 0 is unlimited */
	assert_true(icicle_bucket_take(&b, 0, 0, 1u << 30, 0));
	/* time going backwards takes nothing away */
	icicle_bucket_init(&b, 2, 5000);
	assert_true(icicle_bucket_take(&b, 1, 2, 2, 4000));
	assert_false(icicle_bucket_take(&b, 1, 2, 1, 4500));
	/* huge values do not overflow */
	icicle_bucket_init(&b, 1ull << 40, 0);
	assert_true(icicle_bucket_take(&b, 1ull << 40, 1ull << 40, 1ull << 40, UINT64_MAX / 2));
}

static void test_alloc_caps(void **state)
{
	struct icicle_quota q;

	(void)state;
	assert_int_equal(icicle_quota_init(&q, 2, 3, 0), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", NULL), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", NULL), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", NULL), -EDQUOT);
	assert_int_equal(icicle_quota_user_count(&q, "alice"), 2);
	assert_int_equal(icicle_quota_alloc_take(&q, "bob", NULL), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "carol", NULL), -EUSERS);
	icicle_quota_alloc_release(&q, "alice");
	assert_int_equal(icicle_quota_user_count(&q, "alice"), 1);
	assert_int_equal(icicle_quota_alloc_take(&q, "carol", NULL), 0);
	icicle_quota_alloc_release(&q, "alice");
	icicle_quota_alloc_release(&q, "bob");
	icicle_quota_alloc_release(&q, "carol");
	assert_int_equal(q.total, 0);
	assert_int_equal(icicle_quota_user_count(&q, "alice"), 0);
	icicle_quota_alloc_release(&q, "nobody"); /* harmless */
	icicle_quota_close(&q);

	/* 0 = unlimited */
	assert_int_equal(icicle_quota_init(&q, 0, 0, 0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(icicle_quota_alloc_take(&q, "u", NULL), 0);
	icicle_quota_close(&q); /* frees the counts still held */
}

/* A TURN REST user is one user to the quotas whatever the expiry of the credential. */
static void test_quota_key(void **state)
{
	struct icicle_quota q;
	const char *creds[] = {"1700000000:mallory", "1700000001:mallory", "1700003600:mallory"};
	struct icicle_user_count *uc[3] = {NULL};
	int i;

	(void)state;
	assert_string_equal(icicle_quota_key("1700000000:mallory", true), ":mallory");
	/* everything after the first colon is the user */
	assert_string_equal(icicle_quota_key("1700000000:a:b", true), ":a:b");
	/* no user part: one shared anonymous key */
	assert_string_equal(icicle_quota_key("1700000000", true), "");
	/* static users are their own key; a static name never holds a colon */
	assert_string_equal(icicle_quota_key("mallory", false), "mallory");
	assert_string_equal(icicle_quota_key("1700000000:mallory", false), "1700000000:mallory");

	assert_int_equal(icicle_quota_init(&q, 2, 0, 1000), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(
		    icicle_quota_alloc_take(&q, icicle_quota_key(creds[i], true), &uc[i]), 0);
	/* a third credential of the same user is over the cap, however fresh */
	assert_int_equal(icicle_quota_alloc_take(&q, icicle_quota_key(creds[2], true), &uc[2]),
	                 -EDQUOT);
	/* and the bandwidth bucket is the user's, shared by both credentials */
	assert_ptr_equal(uc[0], uc[1]);
	assert_true(icicle_quota_user_bw_take(&q, uc[0], ICICLE_UP, 600, 10));
	assert_false(icicle_quota_user_bw_take(&q, uc[1], ICICLE_UP, 600, 10));
	/* the static user "mallory" is somebody else */
	assert_int_equal(icicle_quota_alloc_take(&q, icicle_quota_key("mallory", false), NULL), 0);
	assert_int_equal(icicle_quota_user_count(&q, ":mallory"), 2);
	assert_int_equal(icicle_quota_user_count(&q, "mallory"), 1);
	icicle_quota_alloc_release(&q, icicle_quota_key(creds[0], true));
	assert_int_equal(icicle_quota_alloc_take(&q, icicle_quota_key(creds[2], true), NULL), 0);
	icicle_quota_close(&q);
}

/* One bucket per direction for all allocations of a user, whichever worker they live on. */
static void test_user_bandwidth(void **state)
{
	struct icicle_quota q;
	struct icicle_user_count *a1 = NULL, *a2 = NULL, *b = NULL;

	(void)state;
	assert_int_equal(icicle_quota_init(&q, 0, 0, 1000), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", &a1), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", &a2), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "bob", &b), 0);
	assert_ptr_equal(a1, a2);
	assert_ptr_not_equal(a1, b);
	/* 1000 bytes/s shared: what one allocation used, the other cannot */
	assert_true(icicle_quota_user_bw_take(&q, a1, ICICLE_UP, 600, 10));
	assert_false(icicle_quota_user_bw_take(&q, a2, ICICLE_UP, 600, 10));
	/* each direction has its own bucket; other users theirs */
	assert_true(icicle_quota_user_bw_take(&q, a2, ICICLE_DOWN, 600, 10));
	assert_true(icicle_quota_user_bw_take(&q, b, ICICLE_UP, 1000, 10));
	/* 500 ms later, 500 more */
	assert_false(icicle_quota_user_bw_take(&q, a2, ICICLE_UP, 600, 209));
	assert_true(icicle_quota_user_bw_take(&q, a2, ICICLE_UP, 600, 510));
	/* the bucket lives as long as the user has an allocation */
	icicle_quota_alloc_release(&q, "alice");
	assert_false(icicle_quota_user_bw_take(&q, a2, ICICLE_UP, 600, 510));
	icicle_quota_alloc_release(&q, "alice");
	icicle_quota_alloc_release(&q, "bob");
	icicle_quota_close(&q);

	/* no limit configured: nothing is counted */
	assert_int_equal(icicle_quota_init(&q, 0, 0, 0), 0);
	assert_int_equal(icicle_quota_alloc_take(&q, "alice", &a1), 0);
	assert_true(icicle_quota_user_bw_take(&q, a1, ICICLE_UP, 1u << 30, 0));
	assert_true(icicle_quota_user_bw_take(&q, NULL, ICICLE_UP, 1u << 30, 0));
	icicle_quota_close(&q);
}

static void test_ratelimit(void **state)
{
	struct icicle_ratelimit r;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_in6 b = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
	int i, ok = 0;

	(void)state;
	inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
	assert_int_equal(icicle_ratelimit_init(&r, 10, 20), 0);
	for (i = 0; i < 100; i++)
		ok += icicle_ratelimit_take(&r, (struct sockaddr *)&a, 1000);
	assert_int_equal(ok, 20);
	/* another port of the same address shares the budget */
	a.sin_port = htons(2);
	assert_false(icicle_ratelimit_take(&r, (struct sockaddr *)&a, 1000));
	/* refills with time */
	assert_true(icicle_ratelimit_take(&r, (struct sockaddr *)&a, 1100));
	/* an IPv6 /64 counts as one source */
	for (i = 0, ok = 0; i < 30; i++) {
		b.sin6_addr.s6_addr[15] = (uint8_t)i;
		ok += icicle_ratelimit_take(&r, (struct sockaddr *)&b, 1000);
	}
	assert_int_equal(ok, 20);
	icicle_ratelimit_close(&r);
	/* disabled */
	assert_int_equal(icicle_ratelimit_init(&r, 0, 1), 0);
	for (i = 0; i < 100; i++)
		assert_true(icicle_ratelimit_take(&r, (struct sockaddr *)&a, 1000));
	icicle_ratelimit_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_maths), cmocka_unit_test(test_alloc_caps),
	    cmocka_unit_test(test_quota_key),    cmocka_unit_test(test_user_bandwidth),
	    cmocka_unit_test(test_ratelimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
