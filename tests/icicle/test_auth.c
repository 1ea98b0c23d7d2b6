/* test_auth.c - long-term credentials (icicle/src/auth.c): TURN REST usernames against one or
 * several secrets, static users, stateless nonces bound to the client's address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "icicle/src/auth.h"
#include "icicle/src/stun_codec.h"
#include "tests/support/alloc.h"

#define NOW 1700000000ull

/* The key a REST client derives: MD5(user:realm:base64(HMAC-SHA1(secret, user))). */
static void rest_key(const char *secret, const char *user, const char *realm, uint8_t key[16])
{
	unsigned char mac[CM_SHA1_LEN];
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_hmac_sha1(secret, strlen(secret), user, strlen(user), mac), 0);
	assert_int_equal(cm_crypto_b64_encode(&b, mac, sizeof(mac), CM_B64_STD), 0);
	assert_int_equal(icicle_codec_ltkey(user, realm, b.data, b.len, key), 0);
	cm_buf_free(&b);
}

static struct icicle_creds *creds(const char *secrets, const char *users)
{
	struct icicle_creds *c = NULL;

	assert_int_equal(icicle_creds_alloc(&c, secrets, secrets ? strlen(secrets) : 0, users,
	                                    users ? strlen(users) : 0, NULL, 0),
	                 0);
	return c;
}

static void test_rest_valid_expired_wrong(void **state)
{
	struct icicle_creds *c = creds("# current\ns3cret\n", NULL);
	struct icicle_key keys[ICICLE_MAX_KEYS];
	uint8_t want[16];
	int n;

	(void)state;
	assert_int_equal(icicle_creds_nsecrets(c), 1);
	rest_key("s3cret", "1700000100:alice", "example.org", want);
	n = icicle_auth_keys(c, "1700000100:alice", "example.org", NOW, keys, ICICLE_MAX_KEYS);
	assert_int_equal(n, 1);
	assert_memory_equal(keys[0].md5, want, 16);
	/* the key of another secret differs: MESSAGE-INTEGRITY would not match */
	rest_key("other", "1700000100:alice", "example.org", want);
	assert_memory_not_equal(keys[0].md5, want, 16);
	/* expired */
	assert_int_equal(icicle_auth_keys(c, "1699999999:alice", "example.org", NOW, keys, 8),
	                 -EKEYEXPIRED);
	/* a bare timestamp is a REST username too */
	assert_int_equal(icicle_auth_keys(c, "1700000100", "example.org", NOW, keys, 8), 1);
	/* not a REST username and no static users */
	assert_int_equal(icicle_auth_keys(c, "alice", "example.org", NOW, keys, 8), -ENOENT);
	assert_int_equal(icicle_auth_keys(c, "17x:alice", "example.org", NOW, keys, 8), -ENOENT);
	icicle_creds_unref(c);
}

/* RFC 8489 B.1's credentials (after OpaqueString): both keys of one credential. */
static void test_ltkey_md5_sha256(void **state)
{
	static const char user[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83"
	                           "\xe3\x82\xaf\xe3\x82\xb9";
	struct icicle_key k;
	unsigned char want[CM_SHA256_LEN];
	char buf[128];
	int n;

	(void)state;
	assert_int_equal(icicle_auth_ltkey(user, "example.org", "TheMatrIX", 9, &k), 0);
	n = snprintf(buf, sizeof(buf), "%s:example.org:TheMatrIX", user);
	assert_int_equal(cm_crypto_sha256(buf, (size_t)n, want), 0);
	assert_memory_equal(k.sha256, want, sizeof(want));
	assert_int_equal(icicle_codec_ltkey(user, "example.org", "TheMatrIX", 9, want), 0);
	assert_memory_equal(k.md5, want, 16);
}

static void test_rest_rotation(void **state)
{
	struct icicle_creds *c = creds("new-secret\r\n\n  old-secret  \n", NULL);
	struct icicle_key keys[ICICLE_MAX_KEYS];
	uint8_t k_new[16], k_old[16];
	int n;

	(void)state;
	assert_int_equal(icicle_creds_nsecrets(c), 2);
	rest_key("new-secret", "1700000100:bob", "r", k_new);
	rest_key("old-secret", "1700000100:bob", "r", k_old);
	n = icicle_auth_keys(c, "1700000100:bob", "r", NOW, keys, ICICLE_MAX_KEYS);
	assert_int_equal(n, 2);
	assert_memory_equal(keys[0].md5, k_new, 16);
	assert_memory_equal(keys[1].md5, k_old, 16);
	icicle_creds_unref(c);
}

static void test_static_users(void **state)
{
	struct icicle_creds *c = creds(NULL, "# users\nzed:z\nalice:wonder:land\n\nbob:builder\n");
	struct icicle_key keys[ICICLE_MAX_KEYS];
	uint8_t want[16];
	struct icicle_creds *bad = NULL;
	char err[CM_ERR_MAX] = "";

	(void)state;
	assert_int_equal(icicle_creds_nusers(c), 3);
	assert_int_equal(icicle_auth_keys(c, "alice", "realm", NOW, keys, 8), 1);
	assert_int_equal(icicle_codec_ltkey("alice", "realm", "wonder:land", 11, want), 0);
	assert_memory_equal(keys[0].md5, want, 16);
	assert_int_equal(icicle_auth_keys(c, "bob", "realm", NOW, keys, 8), 1);
	assert_int_equal(icicle_auth_keys(c, "carol", "realm", NOW, keys, 8), -ENOENT);
	/* no secrets: a REST-looking name is looked up as a static user */
	assert_int_equal(icicle_auth_keys(c, "1700000100:alice", "realm", NOW, keys, 8), -ENOENT);
	icicle_creds_unref(c);

	assert_int_equal(icicle_creds_alloc(&bad, NULL, 0, "ok:1\nnocolon\n", 13, err, sizeof(err)),
	                 -EINVAL);
	assert_null(bad);
	assert_string_equal(err, "line 2: expected \"name:password\"");
}

static void test_nonce(void **state)
{
	struct icicle_auth a;
	struct sockaddr_in c1 = {.sin_family = AF_INET, .sin_port = htons(5000)};
	struct sockaddr_in c2 = c1;
	struct sockaddr_in6 c6 = {.sin6_family = AF_INET6, .sin6_port = htons(5000)};
	char n[ICICLE_NONCE_LEN + 1], n6[ICICLE_NONCE_LEN + 1];

	(void)state;
	inet_pton(AF_INET, "192.0.2.1", &c1.sin_addr);
	inet_pton(AF_INET, "192.0.2.2", &c2.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &c6.sin6_addr);
	assert_int_equal(icicle_auth_init(&a, "realm", 600, NULL), 0);
	icicle_nonce_make(&a, (struct sockaddr *)&c1, NOW, n);
	assert_int_equal(strlen(n), ICICLE_NONCE_LEN);
	/* RFC 8489 9.2: the nonce cookie, security features "password algorithms" (bit 0) */
	assert_memory_equal(n, "obMatJos2AAAB", 13);
	n[12] = 'A';
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW), -EINVAL);
	n[12] = 'B';
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW), 0);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW + 599), 0);
	/* stale after its lifetime */
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW + 600), -ESTALE);
	/* bound to the address it was given to: another IP, another port */
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c2, n, NOW), -EINVAL);
	c2 = c1;
	c2.sin_port = htons(5001);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c2, n, NOW), -EINVAL);
	/* tampering with the time or the MAC */
	n[ICICLE_NONCE_COOKIE_LEN + 7] = n[ICICLE_NONCE_COOKIE_LEN + 7] == '0' ? '1' : '0';
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW), -EINVAL);
	icicle_nonce_make(&a, (struct sockaddr *)&c1, NOW, n);
	n[ICICLE_NONCE_LEN - 1] = n[ICICLE_NONCE_LEN - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW), -EINVAL);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, "short", NOW), -EINVAL);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, NULL, NOW), -EINVAL);
	/* from the future */
	icicle_nonce_make(&a, (struct sockaddr *)&c1, NOW + 100, n);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n, NOW), -ESTALE);
	/* IPv6 */
	icicle_nonce_make(&a, (struct sockaddr *)&c6, NOW, n6);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c6, n6, NOW), 0);
	assert_int_equal(icicle_nonce_check(&a, (struct sockaddr *)&c1, n6, NOW), -EINVAL);
	icicle_auth_close(&a);
}

static void test_swap_keeps_old_snapshot_alive(void **state)
{
	struct icicle_auth a;
	struct icicle_creds *old, *cur;
	struct icicle_key keys[ICICLE_MAX_KEYS];

	(void)state;
	assert_int_equal(icicle_auth_init(&a, "r", 600, creds("one\n", NULL)), 0);
	old = icicle_auth_get(&a);
	icicle_auth_swap(&a, creds("two\n", "u:p\n"));
	/* a worker still holding the old snapshot can finish with it */
	assert_int_equal(icicle_auth_keys(old, "1700000100:x", "r", NOW, keys, 8), 1);
	icicle_creds_unref(old);
	cur = icicle_auth_get(&a);
	assert_int_equal(icicle_creds_nusers(cur), 1);
	icicle_creds_unref(cur);
	icicle_auth_close(&a);
}

static int alloc_scenario(void *arg)
{
	struct icicle_creds *c = NULL;
	int rc;

	(void)arg;
	rc = icicle_creds_alloc(&c, "a\nb\n", 4, "x:1\ny:2\n", 8, NULL, 0);
	icicle_creds_unref(c);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(alloc_scenario, NULL, 100) > 0);
}

static void test_rest_expiry_parse(void **state)
{
	(void)state;
	assert_int_equal(icicle_auth_rest_expiry("1700000000:a"), 1700000000ull);
	assert_int_equal(icicle_auth_rest_expiry("1700000000"), 1700000000ull);
	assert_int_equal(icicle_auth_rest_expiry("alice"), 0);
	assert_int_equal(icicle_auth_rest_expiry(":a"), 0);
	assert_int_equal(icicle_auth_rest_expiry("12a:b"), 0);
	assert_int_equal(icicle_auth_rest_expiry("99999999999999999999:a"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rest_valid_expired_wrong),
	    cmocka_unit_test(test_ltkey_md5_sha256),
	    cmocka_unit_test(test_rest_rotation),
	    cmocka_unit_test(test_static_users),
	    cmocka_unit_test(test_nonce),
	    cmocka_unit_test(test_swap_keeps_old_snapshot_alive),
	    cmocka_unit_test(test_alloc_failures),
	    cmocka_unit_test(test_rest_expiry_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
