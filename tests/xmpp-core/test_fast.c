/* test_fast.c - FAST tokens and the HT-SHA-256 mechanisms (fast.h), and the resource Bind 2
 * derives from a tag and a user-agent id (bind2.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "xmpp-core/src/bind2.h"
#include "xmpp-core/src/fast.h"

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static void test_mechanisms(void **state)
{
	enum xc_fast_cb cb = XC_FAST_CB_ENDP;

	(void)state;
	assert_int_equal(xc_fast_mech("HT-SHA-256-NONE", &cb), 0);
	assert_int_equal(cb, XC_FAST_CB_NONE);
	assert_int_equal(xc_fast_mech("HT-SHA-256-ENDP", &cb), 0);
	assert_int_equal(cb, XC_FAST_CB_ENDP);
	/* tls-exporter and tls-unique are not offered; names are exact */
	assert_int_equal(xc_fast_mech("HT-SHA-256-EXPR", &cb), -ENOENT);
	assert_int_equal(xc_fast_mech("HT-SHA-256-UNIQ", &cb), -ENOENT);
	assert_int_equal(xc_fast_mech("ht-sha-256-none", &cb), -ENOENT);
	assert_int_equal(xc_fast_mech(NULL, &cb), -ENOENT);
}

/* Expected values from Python's hmac module: HMAC-SHA-256(token, label || cb). */
static void test_macs_match_an_independent_implementation(void **state)
{
	unsigned char mac[XC_FAST_MAC_LEN], cb[32];
	char h[2 * XC_FAST_MAC_LEN + 1];

	(void)state;
	assert_int_equal(xc_fast_mac("token-A", true, NULL, 0, mac), 0);
	hex(mac, sizeof(mac), h);
	assert_string_equal(h, "8b66e5895275b34660a0ea370bf7ac29f598fe116994c58d658ca5a8d4585ac8");
	for (int i = 0; i < 32; i++)
		cb[i] = (unsigned char)(i + 1);
	assert_int_equal(xc_fast_mac("token-A", false, cb, sizeof(cb), mac), 0);
	hex(mac, sizeof(mac), h);
	assert_string_equal(h, "ddaeed7046ac080140b6514ded8dbbef65e74c1cdae42aeb74d412706c650837");
	/* more binding data than any certificate hash */
	assert_int_equal(xc_fast_mac("t", true, cb, XC_FAST_CB_MAX + 1, mac), -EINVAL);
}

static void test_parse_initial_response(void **state)
{
	char msg[64 + XC_FAST_MAC_LEN];
	const unsigned char *mac;
	const char *user;
	size_t ul;

	(void)state;
	memcpy(msg, "alice", 5);
	msg[5] = '\0';
	memset(msg + 6, 0xAB, XC_FAST_MAC_LEN);
	assert_int_equal(xc_fast_parse(msg, 6 + XC_FAST_MAC_LEN, &user, &ul, &mac), 0);
	assert_int_equal(ul, 5);
	assert_memory_equal(user, "alice", 5);
	assert_ptr_equal(mac, (const unsigned char *)msg + 6);
	/* a mac one byte short or long, no authcid, no separator, nothing */
	assert_int_equal(xc_fast_parse(msg, 5 + XC_FAST_MAC_LEN, &user, &ul, &mac), -EINVAL);
	assert_int_equal(xc_fast_parse(msg, 7 + XC_FAST_MAC_LEN, &user, &ul, &mac), -EINVAL);
	assert_int_equal(xc_fast_parse(msg + 5, 1 + XC_FAST_MAC_LEN, &user, &ul, &mac), -EINVAL);
	assert_int_equal(xc_fast_parse(msg, 5, &user, &ul, &mac), -EINVAL);
	assert_int_equal(xc_fast_parse(msg, 0, &user, &ul, &mac), -EINVAL);
}

static void slot(struct xc_fast_token *t, const char *token, const char *mech, int64_t expiry,
                 uint32_t count)
{
	memset(t, 0, sizeof(*t));
	t->set = true;
	snprintf(t->token, sizeof(t->token), "%s", token);
	snprintf(t->mech, sizeof(t->mech), "%s", mech);
	t->expiry = expiry;
	t->count = count;
}

static void test_match(void **state)
{
	struct xc_fast_req f;
	unsigned char mac[XC_FAST_MAC_LEN], cb[32];
	int s = -1;

	(void)state;
	memset(&f, 0, sizeof(f));
	memset(cb, 7, sizeof(cb));
	assert_int_equal(xc_fast_mac("old", true, NULL, 0, mac), 0);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 0, &s),
	                 XC_FAST_NO_TOKEN);
	slot(&f.slot[XC_FAST_CURRENT], "old", "HT-SHA-256-NONE", 1000, 3);
	slot(&f.slot[XC_FAST_NEW], "new", "HT-SHA-256-NONE", 2000, 0);
	/* either slot logs in: the old token until the new one is used */
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 0, &s),
	                 XC_FAST_OK);
	assert_int_equal(s, XC_FAST_CURRENT);
	assert_int_equal(xc_fast_mac("new", true, NULL, 0, mac), 0);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 0, &s),
	                 XC_FAST_OK);
	assert_int_equal(s, XC_FAST_NEW);
	/* over other channel binding data, or another token: no match */
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, cb, sizeof(cb), 100, 0, &s),
	                 XC_FAST_MISMATCH);
	assert_int_equal(xc_fast_mac("nex", true, NULL, 0, mac), 0);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 0, &s),
	                 XC_FAST_MISMATCH);
	/* the old token: counts above its last are taken, not the same or below */
	assert_int_equal(xc_fast_mac("old", true, NULL, 0, mac), 0);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 4, &s),
	                 XC_FAST_OK);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 3, &s),
	                 XC_FAST_REPLAY);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 100, 1, &s),
	                 XC_FAST_REPLAY);
	/* expired (at its expiry second already), and bound to its mechanism */
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-NONE", mac, NULL, 0, 1000, 0, &s),
	                 XC_FAST_EXPIRED);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-ENDP", mac, NULL, 0, 100, 0, &s),
	                 XC_FAST_WRONG_MECH);
	/* an ENDP token with its binding data */
	slot(&f.slot[XC_FAST_NEW], "bound", "HT-SHA-256-ENDP", 2000, 0);
	assert_int_equal(xc_fast_mac("bound", true, cb, sizeof(cb), mac), 0);
	assert_int_equal(xc_fast_match(&f, "HT-SHA-256-ENDP", mac, cb, sizeof(cb), 100, 0, &s),
	                 XC_FAST_OK);
	assert_int_equal(s, XC_FAST_NEW);
	assert_string_not_equal(xc_fast_refusal_text(XC_FAST_REPLAY), "?");
}

static void test_tokens(void **state)
{
	struct xc_fast_token a, b;

	(void)state;
	assert_int_equal(xc_fast_token_new(&a, "HT-SHA-256-NONE", 12345), 0);
	assert_int_equal(xc_fast_token_new(&b, "HT-SHA-256-NONE", 12345), 0);
	assert_true(a.set);
	assert_int_equal(strlen(a.token), 44); /* 32 random bytes in base64 */
	assert_string_not_equal(a.token, b.token);
	assert_string_equal(a.mech, "HT-SHA-256-NONE");
	assert_int_equal(a.expiry, 12345);
	assert_int_equal(a.count, 0);
	assert_false(xc_fast_rotate_due(&a, 1000, 100));
	assert_true(xc_fast_rotate_due(&a, 12300, 100));
	assert_false(xc_fast_rotate_due(&a, 12300, 0));
}

static void test_count_and_time(void **state)
{
	char t[40];
	uint32_t n = 9;

	(void)state;
	assert_int_equal(xc_fast_parse_count(NULL, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(xc_fast_parse_count("1", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(xc_fast_parse_count("4294967295", &n), 0);
	assert_int_equal(n, 4294967295u);
	assert_int_equal(xc_fast_parse_count("4294967296", &n), -EINVAL);
	assert_int_equal(xc_fast_parse_count("0", &n), -EINVAL);
	assert_int_equal(xc_fast_parse_count("-1", &n), -EINVAL);
	assert_int_equal(xc_fast_parse_count("", &n), -EINVAL);
	assert_int_equal(xc_fast_parse_count("12a", &n), -EINVAL);
	assert_int_equal(xc_fast_parse_count("99999999999", &n), -EINVAL);
	xc_fast_format_time(0, t, sizeof(t));
	assert_string_equal(t, "1970-01-01T00:00:00Z");
	xc_fast_format_time(1796472000, t, sizeof(t));
	assert_string_equal(t, "2026-12-05T12:00:00Z");
}

static void test_bind2_resource(void **state)
{
	char r[XC_BIND2_RES_MAX];
	char long_tag[XC_BIND2_TAG_MAX + 2];

	(void)state;
	/* the first 8 hex digits of SHA-256("agent-1"), as Python's hashlib gives them */
	assert_int_equal(xc_bind2_resource("Phone", "agent-1", "GEN", r, sizeof(r)), 0);
	assert_string_equal(r, "Phone.6ff3b3bd");
	assert_int_equal(xc_bind2_resource(NULL, "agent-1", "GEN", r, sizeof(r)), 0);
	assert_string_equal(r, "6ff3b3bd");
	assert_int_equal(xc_bind2_resource("Phone", NULL, "0123456789abcdef", r, sizeof(r)), 0);
	assert_string_equal(r, "Phone.0123456789abcdef");
	memset(long_tag, 'x', sizeof(long_tag) - 1);
	long_tag[sizeof(long_tag) - 1] = '\0';
	assert_int_equal(xc_bind2_resource(long_tag, "a", "g", r, sizeof(r)), -EINVAL);
	long_tag[XC_BIND2_TAG_MAX] = '\0';
	assert_int_equal(xc_bind2_resource(long_tag, "a", "g", r, sizeof(r)), 0);
	/* characters, not bytes: 32 two-byte letters fit */
	char wide[2 * XC_BIND2_TAG_MAX + 1] = "";
	for (int i = 0; i < XC_BIND2_TAG_MAX; i++)
		strcat(wide, "\xc3\xa9");
	assert_int_equal(xc_bind2_resource(wide, "a", "g", r, sizeof(r)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mechanisms),
	    cmocka_unit_test(test_macs_match_an_independent_implementation),
	    cmocka_unit_test(test_parse_initial_response),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_count_and_time),
	    cmocka_unit_test(test_bind2_resource),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
