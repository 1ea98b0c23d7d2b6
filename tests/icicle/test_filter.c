/* test_filter.c - the peer address policy (icicle/src/filter.c): every default range, IPv4-mapped
 * IPv6 addresses checked as IPv4, allow overriding deny, port 0. */
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

#include "cm/err.h"
#include "icicle/src/filter.h"

static bool allowed(const struct icicle_filter *f, const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(3478);
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(3478);
		assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	}
	return icicle_filter_allowed(f, (struct sockaddr *)&ss);
}

static const char *const denied[] = {
    /* every default IPv4 range, first and last address */
    "0.0.0.0", "0.255.255.255", "10.0.0.1", "10.255.255.255", "100.64.0.0", "100.127.255.255",
    "127.0.0.1", "127.255.255.254", "169.254.0.1", "169.254.169.254", "172.16.0.1",
    "172.31.255.255", "192.0.0.1", "192.0.2.1", "192.88.99.1", "192.168.0.1", "192.168.255.255",
    "198.18.0.1", "198.19.255.255", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    /* IPv6 */
    "::", "::1", "64:ff9b::1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "100::1", "2001::1",
    "2001:1ff:ffff::1", "2001:db8::1", "2002::1", "2002:7f00:1::1", "fc00::1", "fd12:3456::1",
    "fe80::1", "febf::1", "ff02::1", "ff0e::1",
    /* IPv4-mapped and IPv4-compatible forms of denied IPv4 addresses */
    "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::ffff:192.168.1.1", "::ffff:224.0.0.1", "::127.0.0.1", "::10.0.0.1", NULL};

static const char *const allowed_public[] = {"1.1.1.1",
                                             "8.8.8.8",
                                             "100.63.255.255",
                                             "100.128.0.0",
                                             "172.15.255.255",
                                             "172.32.0.0",
                                             "192.0.1.255",
                                             "192.169.0.0",
                                             "198.17.255.255",
                                             "198.20.0.0",
                                             "223.255.255.255",
                                             "11.0.0.0",
                                             "126.255.255.255",
                                             "128.0.0.0",
                                             "169.253.255.255",
                                             "169.255.0.0",
                                             "2001:4860:4860::8888",
                                             "2606:4700::1111",
                                             "2001:200::1",
                                             "64:ff9b:2::1",
                                             "::ffff:8.8.8.8",
                                             NULL};

static void test_defaults(void **state)
{
	struct icicle_filter f;
	size_t i;

	(void)state;
	assert_int_equal(icicle_filter_init(&f, true, NULL, 0, NULL, 0, NULL, 0), 0);
	for (i = 0; denied[i]; i++)
		if (allowed(&f, denied[i]))
			fail_msg("%s should be denied", denied[i]);
	for (i = 0; allowed_public[i]; i++)
		if (!allowed(&f, allowed_public[i]))
			fail_msg("%s should be allowed", allowed_public[i]);
	icicle_filter_close(&f);
}

static void test_every_default_entry_parses(void **state)
{
	struct icicle_cidr c;
	size_t i;

	(void)state;
	for (i = 0; icicle_filter_default_deny[i]; i++)
		assert_int_equal(icicle_cidr_parse(icicle_filter_default_deny[i], &c), 0);
	assert_true(i >= 26);
}

static void test_allow_overrides(void **state)
{
	static const char *const allow[] = {"127.0.0.1/32", "10.1.0.0/16", "fd00::/8"};
	static const char *const deny[] = {"8.8.8.0/24", "2606:4700::/32"};
	struct icicle_filter f;

	(void)state;
	assert_int_equal(icicle_filter_init(&f, true, deny, 2, allow, 3, NULL, 0), 0);
	assert_true(allowed(&f, "127.0.0.1"));
	assert_true(allowed(&f, "::ffff:127.0.0.1")); /* the mapped form of an allowed address */
	assert_false(allowed(&f, "127.0.0.2"));
	assert_true(allowed(&f, "10.1.2.3"));
	assert_false(allowed(&f, "10.2.0.1"));
	assert_true(allowed(&f, "fd12::1"));
	assert_false(allowed(&f, "fc00::1"));
	assert_false(allowed(&f, "8.8.8.8"));
	assert_false(allowed(&f, "::ffff:8.8.8.8"));
	assert_true(allowed(&f, "8.8.4.4"));
	assert_false(allowed(&f, "2606:4700::1111"));
	icicle_filter_close(&f);
}

static void test_without_defaults(void **state)
{
	struct icicle_filter f;

	(void)state;
	assert_int_equal(icicle_filter_init(&f, false, NULL, 0, NULL, 0, NULL, 0), 0);
	assert_true(allowed(&f, "127.0.0.1"));
	assert_true(allowed(&f, "::1"));
	icicle_filter_close(&f);
}

static void test_port_zero_and_family(void **state)
{
	struct icicle_filter f;
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr un = {.sa_family = AF_UNIX};

	(void)state;
	assert_int_equal(icicle_filter_init(&f, false, NULL, 0, NULL, 0, NULL, 0), 0);
	inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
	assert_false(icicle_filter_allowed(&f, (struct sockaddr *)&in));
	/* CreatePermission ignores the port */
	assert_true(icicle_filter_allowed_ip(&f, (struct sockaddr *)&in));
	in.sin_port = htons(1);
	assert_true(icicle_filter_allowed(&f, (struct sockaddr *)&in));
	assert_false(icicle_filter_allowed(&f, &un));
	assert_false(icicle_filter_allowed_ip(&f, &un));
	icicle_filter_close(&f);
	/* ... but not the address: a denied one stays denied on port 0 */
	assert_int_equal(icicle_filter_init(&f, true, NULL, 0, NULL, 0, NULL, 0), 0);
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	in.sin_port = 0;
	assert_false(icicle_filter_allowed_ip(&f, (struct sockaddr *)&in));
	icicle_filter_close(&f);
}

static void test_cidr_parse(void **state)
{
	static const char *const bad_lists[] = {"10.0.0.0/33"};
	struct icicle_filter f;
	struct icicle_cidr c;
	char err[CM_ERR_MAX] = "";

	(void)state;
	assert_int_equal(icicle_cidr_parse("10.0.0.0/8", &c), 0);
	assert_int_equal(c.bits, 104);
	assert_int_equal(icicle_cidr_parse("10.1.2.3/8", &c), 0); /* host bits cleared */
	assert_int_equal(c.addr[13], 0);
	assert_int_equal(icicle_cidr_parse("::1", &c), 0);
	assert_int_equal(c.bits, 128);
	assert_int_equal(icicle_cidr_parse("10.0.0.0/33", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("::/129", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("10.0.0.0/", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("10.0.0.0/8x", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("/8", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("example.com", &c), -EINVAL);
	assert_int_equal(icicle_cidr_parse("10.0.0.0/-1", &c), -EINVAL);
	assert_int_equal(icicle_filter_init(&f, true, bad_lists, 1, NULL, 0, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "\"10.0.0.0/33\" is not an address or ADDRESS/BITS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_default_entry_parses),
	    cmocka_unit_test(test_allow_overrides),
	    cmocka_unit_test(test_without_defaults),
	    cmocka_unit_test(test_port_zero_and_family),
	    cmocka_unit_test(test_cidr_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
