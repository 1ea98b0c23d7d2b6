/* test_jid.c - JIDs (RFC 7622 with RFC 6122's stringprep profiles): the RFC's examples, limits,
 * IP literals, comparisons, and the ASCII short path against libidn on many strings.
 * Includes jid.c to reach its static functions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xmpp-core/src/jid.c"

static void ok(const char *in, const char *want)
{
	struct xc_jid j;
	char err[CM_ERR_MAX] = "";
	int rc = xc_jid_parse(&j, in, strlen(in), err, sizeof(err));

	if (rc)
		fail_msg("\"%s\": %d %s", in, rc, err);
	assert_string_equal(j.s, want);
	assert_int_equal(xc_jid_len(&j), strlen(want));
	xc_jid_free(&j);
}

static void bad(const char *in, const char *why)
{
	struct xc_jid j;
	char err[CM_ERR_MAX] = "";

	assert_int_equal(xc_jid_parse(&j, in, strlen(in), err, sizeof(err)), -EINVAL);
	assert_null(j.s);
	if (why && !strstr(err, why))
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", in, err, why);
}

static void test_rfc_examples(void **state)
{
	(void)state;
	/* RFC 7622 3.5 (the ones stringprep and PRECIS agree on) */
	ok("juliet@example.com", "juliet@example.com");
	ok("juliet@example.com/foo", "juliet@example.com/foo");
	ok("juliet@example.com/foo bar", "juliet@example.com/foo bar");
	ok("juliet@example.com/foo@bar", "juliet@example.com/foo@bar");
	ok("foo\\20bar@example.com", "foo\\20bar@example.com");
	ok("fussball@example.com", "fussball@example.com");
	ok("π@example.com", "π@example.com");
	ok("Σ@example.com/foo", "σ@example.com/foo");
	ok("king@example.com/♚", "king@example.com/♚");
	ok("example.com", "example.com");
	ok("example.com/foobar", "example.com/foobar");
	ok("a.example.com/b@example.net", "a.example.com/b@example.net");
	/* normalisation: case of local part and domain, not of the resource */
	ok("Juliet@Example.COM/Balcony", "juliet@example.com/Balcony");
	ok("fußball@example.com", "fussball@example.com");
	ok("juliet@EXAMPLE.com.", "juliet@example.com");
	ok("juliet@ÉXAMPLE.com", "juliet@éxample.com");
	ok("u@192.0.2.1/r", "u@192.0.2.1/r");
	ok("u@[2001:DB8:0:0::0001]/r", "u@[2001:db8::1]/r");
	ok("u@example.com/a/b", "u@example.com/a/b");
	/* RFC 7622 3.5: invalid ones */
	bad("\"juliet\"@example.com", "local part");
	bad("foo bar@example.com", "local part");
	bad("@example.com/", "local part is empty");
	bad("juliet@", "domain is empty");
	bad("juliet@example.com/", "resource is empty");
	bad("", "domain is empty");
	bad("a@b@c", "domain is not a host name");
	bad("a@exa mple.com", "domain");
	bad("a@example..com", "domain");
	bad("a@[::1", "IPv6");
	bad("a@[not:an:address]", "IPv6");
	bad("a@example.com/x\x01y", "resource");
	bad("a\x7f@example.com", "local part");
	bad("a@exa\xff"
	    ".com",
	    "not valid UTF-8");
	bad("a@ex\xc0\xaf"
	    "ample.com",
	    "not valid UTF-8"); /* overlong "/" */
}

static void test_lengths(void **state)
{
	char big[3000];
	struct xc_jid j;

	(void)state;
	memset(big, 'a', 1023);
	strcpy(big + 1023, "@example.com");
	assert_int_equal(xc_jid_parse(&j, big, strlen(big), NULL, 0), 0);
	assert_int_equal(j.llen, 1023);
	xc_jid_free(&j);
	memset(big, 'a', 1024);
	strcpy(big + 1024, "@example.com");
	bad(big, "longer than 1023");
	/* a resource of 1023 bytes of multi-byte characters is fine, 1024 bytes is not */
	strcpy(big, "a@b/");
	for (int i = 0; i < 341; i++)
		strcat(big, "é"); /* 682 bytes */
	memset(big + strlen(big), 'x', 341);
	big[4 + 682 + 341] = '\0';
	ok(big, big);
	strcat(big, "x");
	bad(big, "longer than 1023");
}

static void test_make_copy_compare(void **state)
{
	struct xc_jid a, b, c, bare;
	char err[CM_ERR_MAX];

	(void)state;
	assert_int_equal(xc_jid_make(&a, "Romeo", "Example.NET", "Orchard", err, sizeof(err)), 0);
	assert_string_equal(a.s, "romeo@example.net/Orchard");
	assert_string_equal(xc_jid_domain(&a), "example.net/Orchard");
	assert_int_equal(a.dlen, 11);
	assert_string_equal(xc_jid_resource(&a), "Orchard");
	assert_int_equal(xc_jid_parse(&b, "romeo@EXAMPLE.net/Orchard", 25, err, sizeof(err)), 0);
	assert_true(xc_jid_equal(&a, &b));
	assert_int_equal(xc_jid_parse(&c, "romeo@example.net/orchard", 25, err, sizeof(err)), 0);
	assert_false(xc_jid_equal(&a, &c));
	assert_true(xc_jid_bare_equal(&a, &c));
	assert_int_equal(xc_jid_copy(&bare, &a, true), 0);
	assert_string_equal(bare.s, "romeo@example.net");
	assert_true(xc_jid_is_bare(&bare));
	assert_null(xc_jid_resource(&bare));
	assert_true(xc_jid_bare_equal(&bare, &c));
	xc_jid_free(&c);
	assert_int_equal(xc_jid_make(&c, NULL, NULL, NULL, err, sizeof(err)), -EINVAL);
	xc_jid_free(&a);
	xc_jid_free(&b);
	xc_jid_free(&c);
	xc_jid_free(&bare);
}

/* The short path for ASCII gives libidn's answer: same acceptance, same result (for domains,
 * what survives the host-name check). */
static void test_ascii_matches_libidn(void **state)
{
	static const Stringprep_profile *profiles[] = {
	    stringprep_xmpp_nodeprep, stringprep_nameprep, stringprep_xmpp_resourceprep};
	uint32_t seed = 12345;
	char in[32], fast[32], slow[256];

	(void)state;
	for (int n = 0; n < 200000; n++) {
		enum profile p = (enum profile)(n % 3);
		size_t len = 1 + (size_t)(n / 3 % 12);
		int a, b;

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly printable, sometimes any byte below 0x80 */
			in[i] =
			    (char)((seed >> 16) % 8 ? 0x20 + (seed >> 8) % 95 : (seed >> 8) % 128);
			if (in[i] == 0)
				in[i] = 'x';
		}
		in[len] = '\0';
		memcpy(fast, in, len + 1);
		memcpy(slow, in, len + 1);
		a = prep_ascii(p, fast, len);
		b = stringprep(slow, sizeof(slow), 0, profiles[p]);
		if (p == DOMAIN) {
			/* both then face the host-name check */
			if (a == 0)
				a = domain_check(fast, len);
			if (b == 0)
				b = domain_check(slow, strlen(slow));
		}
		if ((a == 0) != (b == STRINGPREP_OK))
			fail_msg("profile %d, \"%s\": short path %d, libidn %d", p, in, a, b);
		if (a == 0)
			assert_string_equal(fast, slow);
	}
}

/* The one-allocation way for ASCII JIDs gives what preparing part by part and joining gives,
 * success or failure, on random JIDs with and without each part. */
static void test_ascii_jid_matches_parts(void **state)
{
	uint32_t seed = 777;

	(void)state;
	for (int n = 0; n < 100000; n++) {
		char part[3][16], in[64];
		size_t len[3];
		struct xc_jid fast, slow;
		char *pp[3] = {NULL, NULL, NULL};
		int a, b = 0;
		bool has_l = n % 4 != 0, has_r = n % 3 != 0;

		for (int k = 0; k < 3; k++) {
			len[k] = (size_t)(n / 7 % 5) + (size_t)k % 2;
			for (size_t i = 0; i < len[k]; i++) {
				seed = seed * 1103515245u + 12345u;
				/* letters and digits mostly; sometimes '.', or any printable byte
				 */
				if ((seed >> 16) % 6)
					part[k][i] = "abcXYZ019-_"[(seed >> 8) % 11];
				else if ((seed >> 16) % 5)
					part[k][i] = '.';
				else
					part[k][i] = (char)(0x20 + (seed >> 8) % 95);
				if (part[k][i] == '@' || part[k][i] == '/')
					part[k][i] = 'q';
			}
			part[k][len[k]] = '\0';
		}
		snprintf(in, sizeof(in), "%s%s%s%s%s", has_l ? part[0] : "", has_l ? "@" : "",
		         part[1], has_r ? "/" : "", has_r ? part[2] : "");
		a = xc_jid_parse(&fast, in, strlen(in), NULL, 0);
		if (has_l)
			b = prep(NODE, part[0], len[0], &pp[0], NULL, 0);
		if (!b)
			b = prep(DOMAIN, part[1], len[1], &pp[1], NULL, 0);
		if (!b && has_r)
			b = prep(RESOURCE, part[2], len[2], &pp[2], NULL, 0);
		memset(&slow, 0, sizeof(slow));
		if (!b)
			b = join(&slow, pp[0], pp[1], pp[2]);
		if ((a == 0) != (b == 0))
			fail_msg("%s: one allocation %d, part by part %d", in, a, b);
		if (a == 0) {
			assert_string_equal(fast.s, slow.s);
			assert_int_equal(fast.llen, slow.llen);
			assert_int_equal(fast.dlen, slow.dlen);
			assert_int_equal(fast.rlen, slow.rlen);
		}
		xc_jid_free(&fast);
		xc_jid_free(&slow);
		for (int k = 0; k < 3; k++)
			free(pp[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_examples),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_make_copy_compare),
	    cmocka_unit_test(test_ascii_matches_libidn),
	    cmocka_unit_test(test_ascii_jid_matches_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
