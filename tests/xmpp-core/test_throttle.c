/* test_throttle.c - counting events per key in fixed windows (throttle.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "xmpp-core/src/throttle.h"

static void test_window(void **state)
{
	struct xc_throttle *t;

	(void)state;
	assert_int_equal(xc_throttle_alloc(&t, 60000), 0);
	assert_false(xc_throttle_blocked(t, "192.0.2.1", 2, 1000));
	xc_throttle_fail(t, "192.0.2.1", 1000);
	assert_false(xc_throttle_blocked(t, "192.0.2.1", 2, 1000));
	xc_throttle_fail(t, "192.0.2.1", 2000);
	assert_true(xc_throttle_blocked(t, "192.0.2.1", 2, 3000));
	/* other keys are not concerned */
	assert_false(xc_throttle_blocked(t, "192.0.2.2", 2, 3000));
	/* the next window starts afresh */
	assert_false(xc_throttle_blocked(t, "192.0.2.1", 2, 60000));
	xc_throttle_fail(t, "192.0.2.1", 61000);
	assert_false(xc_throttle_blocked(t, "192.0.2.1", 2, 61000));
	xc_throttle_free(t);
}

static void test_hour_window(void **state)
{
	struct xc_throttle *t;

	(void)state;
	assert_int_equal(xc_throttle_alloc(&t, 3600000), 0);
	for (int i = 0; i < 5; i++)
		xc_throttle_fail(t, "2001:db8::/64", 10000 + (uint64_t)i * 600000);
	/* five events spread over 50 minutes are in one window */
	assert_true(xc_throttle_blocked(t, "2001:db8::/64", 5, 3000000));
	assert_false(xc_throttle_blocked(t, "2001:db8::/64", 5, 3600000));
	xc_throttle_free(t);
	xc_throttle_free(NULL);
}

static void test_many_keys_are_forgotten(void **state)
{
	struct xc_throttle *t;
	char key[32];

	(void)state;
	assert_int_equal(xc_throttle_alloc(&t, 1000), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		xc_throttle_fail(t, key, (uint64_t)i); /* five windows */
	}
	/* keys of past windows count for nothing */
	assert_false(xc_throttle_blocked(t, "k10", 1, 4999));
	assert_true(xc_throttle_blocked(t, "k4999", 1, 4999));
	xc_throttle_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_hour_window),
	    cmocka_unit_test(test_many_keys_are_forgotten),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
