/* test_plain_cache.c - verified PLAIN logins remembered as keyed MACs (plain_cache.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "xmpp-core/src/plain_cache.h"

static void creds(struct xc_scram_creds *c, unsigned char salt)
{
	memset(c, 0, sizeof(*c));
	c->iter = 4096;
	c->salt_len = 16;
	memset(c->salt, salt, 16);
	memset(c->stored_key, salt ^ 0x5a, sizeof(c->stored_key));
}

static void test_mac_binds_everything(void **state)
{
	struct xc_plain_cache c;
	struct xc_scram_creds a, b;
	unsigned char m1[XC_PLAIN_MAC], m2[XC_PLAIN_MAC];

	(void)state;
	assert_int_equal(xc_plain_cache_init(&c, 10), 0);
	creds(&a, 1);
	creds(&b, 2);
	assert_int_equal(xc_plain_cache_mac(&c, "alice@x", &a, "pw", 2, m1), 0);
	assert_int_equal(xc_plain_cache_mac(&c, "alice@x", &a, "pw", 2, m2), 0);
	assert_memory_equal(m1, m2, XC_PLAIN_MAC);
	/* another password, account, or credentials (a password change): another MAC */
	assert_int_equal(xc_plain_cache_mac(&c, "alice@x", &a, "pX", 2, m2), 0);
	assert_memory_not_equal(m1, m2, XC_PLAIN_MAC);
	assert_int_equal(xc_plain_cache_mac(&c, "alicf@x", &a, "pw", 2, m2), 0);
	assert_memory_not_equal(m1, m2, XC_PLAIN_MAC);
	assert_int_equal(xc_plain_cache_mac(&c, "alice@x", &b, "pw", 2, m2), 0);
	assert_memory_not_equal(m1, m2, XC_PLAIN_MAC);
	/* lengths are part of the input: "a" + "b:c" is not "a:b" + "c" */
	assert_int_equal(xc_plain_cache_mac(&c, "a", &a, "b:c", 3, m1), 0);
	assert_int_equal(xc_plain_cache_mac(&c, "a:b", &a, "c", 1, m2), 0);
	assert_memory_not_equal(m1, m2, XC_PLAIN_MAC);
	xc_plain_cache_close(&c);
}

static void test_has_add_and_eviction(void **state)
{
	struct xc_plain_cache c, other;
	struct xc_scram_creds a;
	unsigned char m[5][XC_PLAIN_MAC];
	char pw[16];

	(void)state;
	assert_int_equal(xc_plain_cache_init(&c, 3), 0);
	creds(&a, 7);
	for (int i = 0; i < 5; i++) {
		snprintf(pw, sizeof(pw), "pw%d", i);
		assert_int_equal(xc_plain_cache_mac(&c, "bob@x", &a, pw, strlen(pw), m[i]), 0);
	}
	assert_false(xc_plain_cache_has(&c, m[0]));
	for (int i = 0; i < 5; i++)
		xc_plain_cache_add(&c, m[i]);
	xc_plain_cache_add(&c, m[4]); /* twice is once */
	/* three kept: the two oldest went */
	assert_false(xc_plain_cache_has(&c, m[0]));
	assert_false(xc_plain_cache_has(&c, m[1]));
	for (int i = 2; i < 5; i++)
		assert_true(xc_plain_cache_has(&c, m[i]));
	/* another cache has another key: its MACs of the same login differ */
	assert_int_equal(xc_plain_cache_init(&other, 3), 0);
	assert_int_equal(xc_plain_cache_mac(&other, "bob@x", &a, "pw4", 3, m[0]), 0);
	assert_memory_not_equal(m[0], m[4], XC_PLAIN_MAC);
	xc_plain_cache_close(&other);
	xc_plain_cache_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_binds_everything),
	    cmocka_unit_test(test_has_add_and_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
