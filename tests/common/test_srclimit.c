/* test_srclimit.c - cm_srclimit: connections counted per source address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cm/srclimit.h"
#include "tests/support/alloc.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin6_family = AF_INET6;
	in->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &in->sin6_addr), 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_cap_per_source(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.1", 1000), a2 = v4("192.0.2.1", 2000);
	struct sockaddr_storage b = v4("192.0.2.2", 1000);
	struct cm_srclimit *t;

	(void)state;
	assert_int_equal(cm_srclimit_alloc(&t, 2), 0);
	assert_int_equal(cm_srclimit_take(t, SA(a)), 0);
	/* the port does not matter: the address is the source */
	assert_int_equal(cm_srclimit_take(t, SA(a2)), 0);
	assert_int_equal(cm_srclimit_take(t, SA(a)), -EDQUOT);
	assert_int_equal(cm_srclimit_count(t, SA(a)), 2);
	/* another source is not affected */
	assert_int_equal(cm_srclimit_take(t, SA(b)), 0);
	assert_int_equal(cm_srclimit_sources(t), 2);
	/* a closed connection makes room */
	cm_srclimit_release(t, SA(a2));
	assert_int_equal(cm_srclimit_take(t, SA(a)), 0);
	cm_srclimit_release(t, SA(a));
	cm_srclimit_release(t, SA(a));
	cm_srclimit_release(t, SA(b));
	/* entries go with their last connection */
	assert_int_equal(cm_srclimit_sources(t), 0);
	assert_int_equal(cm_srclimit_count(t, SA(a)), 0);
	cm_srclimit_release(t, SA(a)); /* harmless */
	assert_int_equal(cm_srclimit_sources(t), 0);
	cm_srclimit_free(t);
}

static void test_ipv6_prefix_and_mapped(void **state)
{
	struct sockaddr_storage a = v6("2001:db8:1:2::1", 1), b = v6("2001:db8:1:2:ffff::9", 2);
	struct sockaddr_storage other = v6("2001:db8:1:3::1", 1);
	struct sockaddr_storage mapped = v6("::ffff:192.0.2.7", 1), plain = v4("192.0.2.7", 1);
	struct sockaddr_storage zero64 = v6("::1", 1), un = {.ss_family = AF_UNIX};
	struct cm_srclimit *t;
	char text[64];

	(void)state;
	assert_int_equal(cm_srclimit_alloc(&t, 1), 0);
	/* one /64 is one source */
	assert_int_equal(cm_srclimit_take(t, SA(a)), 0);
	assert_int_equal(cm_srclimit_take(t, SA(b)), -EDQUOT);
	assert_int_equal(cm_srclimit_take(t, SA(other)), 0);
	/* an IPv4-mapped address is its IPv4 address */
	assert_int_equal(cm_srclimit_take(t, SA(mapped)), 0);
	assert_int_equal(cm_srclimit_take(t, SA(plain)), -EDQUOT);
	/* ::/64 is not ::ffff:0:0/96 */
	assert_int_equal(cm_srclimit_take(t, SA(zero64)), 0);
	/* other families are not counted */
	assert_int_equal(cm_srclimit_take(t, SA(un)), 0);
	assert_int_equal(cm_srclimit_take(t, SA(un)), 0);
	assert_int_equal(cm_srclimit_sources(t), 4);
	cm_srclimit_format(SA(b), text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2::/64");
	cm_srclimit_format(SA(mapped), text, sizeof(text));
	assert_string_equal(text, "192.0.2.7");
	cm_srclimit_format(SA(un), text, sizeof(text));
	assert_string_equal(text, "?");
	cm_srclimit_format(SA(plain), text, 4);
	assert_string_equal(text, "192");
	cm_srclimit_release(t, SA(a));
	cm_srclimit_release(t, SA(other));
	cm_srclimit_release(t, SA(plain));
	cm_srclimit_release(t, SA(zero64));
	assert_int_equal(cm_srclimit_sources(t), 0);
	cm_srclimit_free(t);
}

/* Many sources: the table grows, and every one is still found. */
static void test_many_sources(void **state)
{
	struct cm_srclimit *t;
	char ip[32];
	int i;

	(void)state;
	assert_int_equal(cm_srclimit_alloc(&t, 3), 0);
	for (i = 0; i < 5000; i++) {
		struct sockaddr_storage s;

		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		s = v4(ip, 1);
		assert_int_equal(cm_srclimit_take(t, SA(s)), 0);
		assert_int_equal(cm_srclimit_take(t, SA(s)), 0);
	}
	assert_int_equal(cm_srclimit_sources(t), 5000);
	for (i = 0; i < 5000; i++) {
		struct sockaddr_storage s;

		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		s = v4(ip, 1);
		assert_int_equal(cm_srclimit_count(t, SA(s)), 2);
		assert_int_equal(cm_srclimit_take(t, SA(s)), 0);
		assert_int_equal(cm_srclimit_take(t, SA(s)), -EDQUOT);
		if (i % 2)
			for (int k = 0; k < 3; k++)
				cm_srclimit_release(t, SA(s));
	}
	assert_int_equal(cm_srclimit_sources(t), 2500);
	cm_srclimit_free(t); /* frees the entries still counted */
}

static void test_no_cap(void **state)
{
	struct sockaddr_storage a = v4("192.0.2.1", 1);
	struct cm_srclimit *t;

	(void)state;
	assert_int_equal(cm_srclimit_alloc(&t, 0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(cm_srclimit_take(t, SA(a)), 0);
	assert_int_equal(cm_srclimit_sources(t), 0);
	cm_srclimit_release(t, SA(a));
	cm_srclimit_free(t);
	cm_srclimit_free(NULL);
}

static int alloc_scenario(void *arg)
{
	struct sockaddr_storage a = v4("192.0.2.1", 1), b = v6("2001:db8::1", 1);
	struct cm_srclimit *t;
	int r;

	(void)arg;
	r = cm_srclimit_alloc(&t, 2);
	if (r)
		return r;
	r = cm_srclimit_take(t, SA(a));
	if (!r) {
		r = cm_srclimit_take(t, SA(b));
		if (!r) {
			assert_int_equal(cm_srclimit_sources(t), 2);
			cm_srclimit_release(t, SA(b));
		}
		cm_srclimit_release(t, SA(a));
	}
	assert_int_equal(cm_srclimit_sources(t), 0);
	cm_srclimit_free(t);
	return r;
}

static void test_allocation_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(alloc_scenario, NULL, 20) > 0);
}

struct churn_arg {
	struct cm_srclimit *t;
	int id;
};

static void *churn(void *p)
{
	struct churn_arg *c = p;
	char ip[32];

	for (int i = 0; i < 2000; i++) {
		struct sockaddr_storage s;

		snprintf(ip, sizeof(ip), "10.0.%d.%d", c->id, i % 50);
		s = v4(ip, 1);
		if (cm_srclimit_take(c->t, SA(s)) == 0)
			cm_srclimit_release(c->t, SA(s));
	}
	return NULL;
}

/* icicle's worker threads share one table. */
static void test_threads(void **state)
{
	struct churn_arg args[4];
	pthread_t th[4];
	struct cm_srclimit *t;

	(void)state;
	assert_int_equal(cm_srclimit_alloc(&t, 1), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct churn_arg){t, i % 2}; /* two threads per address set */
		assert_int_equal(pthread_create(&th[i], NULL, churn, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cm_srclimit_sources(t), 0);
	cm_srclimit_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cap_per_source),
	    cmocka_unit_test(test_ipv6_prefix_and_mapped),
	    cmocka_unit_test(test_many_sources),
	    cmocka_unit_test(test_no_cap),
	    cmocka_unit_test(test_allocation_failures),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
