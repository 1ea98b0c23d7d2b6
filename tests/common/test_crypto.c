/* test_crypto.c - base64, HMAC, digests, randomness, comparison and hex (common/src/crypto_*.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "tests/support/alloc.h"

/* Hex of n bytes, for comparing digests with the RFCs' printed values. */
static void assert_hex(const unsigned char *p, size_t n, const char *want)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_hex(&b, p, n), 0);
	assert_string_equal(b.data, want);
	cm_buf_free(&b);
}

static void encode_is(const char *in, enum cm_b64_variant v, const char *want)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_b64_encode(&b, in, strlen(in), v), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	cm_buf_free(&b);
}

static void decode_is(const char *in, enum cm_b64_variant v, const char *want)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_b64_decode(&b, in, strlen(in), v), 0);
	assert_int_equal(b.len, strlen(want));
	assert_non_null(b.data);
	assert_memory_equal(b.data, want, b.len);
	assert_int_equal(b.data[b.len], '\0');
	cm_buf_free(&b);
}

static void decode_fails(const char *in, size_t n, enum cm_b64_variant v)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (cm_crypto_b64_decode(&b, in, n, v) != -EINVAL)
		fail_msg("decoding \"%.*s\" (%s) was accepted", (int)n, in,
		         v == CM_B64_STD ? "std" : "url");
	assert_int_equal(b.len, 0);
	cm_buf_free(&b);
}

/* RFC 4648 section 10. */
static const struct {
	const char *plain, *std, *url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_b64_rfc4648_std(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		encode_is(rfc4648[i].plain, CM_B64_STD, rfc4648[i].std);
		decode_is(rfc4648[i].std, CM_B64_STD, rfc4648[i].plain);
	}
}

static void test_b64_rfc4648_url(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		encode_is(rfc4648[i].plain, CM_B64_URL, rfc4648[i].url);
		decode_is(rfc4648[i].url, CM_B64_URL, rfc4648[i].plain);
		/* URL accepts the padded spelling too */
		decode_is(rfc4648[i].std, CM_B64_URL, rfc4648[i].plain);
	}
}

/* The two alphabets differ in the last two characters: 0xfb 0xff 0xbf is 62, 63, 62, 63. */
static void test_b64_alphabets(void **state)
{
	static const char bytes[] = "\xfb\xff\xbf\xfb\xef";

	(void)state;
	encode_is(bytes, CM_B64_STD, "+/+/++8=");
	encode_is(bytes, CM_B64_URL, "-_-_--8");
	decode_is("+/+/++8=", CM_B64_STD, bytes);
	decode_is("-_-_--8", CM_B64_URL, bytes);
	decode_fails("-_-_--8=", 8, CM_B64_STD);
	decode_fails("+/+/++8", 7, CM_B64_URL);
	decode_fails("+/+/++8=", 8, CM_B64_URL);
}

static void test_b64_rejects(void **state)
{
	static const char *const std_bad[] = {
	    "Zg",       /* STD requires padding */
	    "Zg=",      /* short padding */
	    "Zm8",      /* missing padding */
	    "Z===",     /* one character carries no whole byte */
	    "Z",        /* same, unpadded */
	    "Zh==",     /* non-zero trailing bits (4 bits) */
	    "Zm9=",     /* non-zero trailing bits (2 bits) */
	    "Zg===",    /* three padding characters */
	    "Zm9v=",    /* padding where none belongs */
	    "Zm9v====", /* a whole quantum of padding */
	    "Zg==Zg==", /* data after padding */
	    "Zg==x",    /* garbage after padding */
	    "Zm=v",     /* padding inside a quantum */
	    "=Zm9",     /* padding first */
	    "====",     /* padding only */
	    "Zm9v\n",   /* whitespace */
	    " Zm9v",    /* whitespace */
	    "Zm 9v",    /* whitespace */
	    "Zm9v\r\nZm9v",
	    "Zm9v!",       /* outside the alphabet */
	    "Zm9*",        /* outside the alphabet */
	    "Zm9vYg=\xc3", /* 8-bit */
	};
	static const char *const url_bad[] = {
	    "Z",     "Zh",    "Zm9",   "Zg=",   "Zg===", "Zm9v=", "Zg==Zg", "Zg==Zg==",
	    "Zm9v ", "Zm.9v", "Zm9v+", "Zm9v/", "====",  "Zm=v",  "Zg=x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(std_bad) / sizeof(std_bad[0]); i++)
		decode_fails(std_bad[i], strlen(std_bad[i]), CM_B64_STD);
	for (size_t i = 0; i < sizeof(url_bad) / sizeof(url_bad[0]); i++)
		decode_fails(url_bad[i], strlen(url_bad[i]), CM_B64_URL);
	/* An embedded NUL is just another character outside the alphabet. */
	decode_fails("Zm9v\0Zm9", 8, CM_B64_STD);
	decode_fails("Zm9v\0Zm9", 8, CM_B64_URL);
	/* An unknown variant is refused rather than guessed. */
	{
		struct cm_buf b;

		cm_buf_init(&b, 0);
		assert_int_equal(cm_crypto_b64_decode(&b, "Zm9v", 4, (enum cm_b64_variant)7),
		                 -EINVAL);
		assert_int_equal(cm_crypto_b64_encode(&b, "foo", 3, (enum cm_b64_variant)7),
		                 -EINVAL);
		cm_buf_free(&b);
	}
}

/* Failure leaves the buffer as it was, content and terminator; success appends. */
static void test_b64_all_or_nothing(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_buf_puts(&b, "prefix:"), 0);
	/* the bad character is in the last quantum, after output has been produced */
	assert_int_equal(cm_crypto_b64_decode(&b, "Zm9vYmFyZm9vYh==", 16, CM_B64_STD), -EINVAL);
	assert_int_equal(b.len, 7);
	assert_string_equal(b.data, "prefix:");
	assert_int_equal(cm_crypto_b64_decode(&b, "Zm9vYmFy", 8, CM_B64_STD), 0);
	assert_string_equal(b.data, "prefix:foobar");
	assert_int_equal(cm_crypto_b64_encode(&b, "f", 1, CM_B64_STD), 0);
	assert_string_equal(b.data, "prefix:foobarZg==");
	cm_buf_free(&b);

	/* a capped buffer refuses the whole output, not part of it */
	cm_buf_init(&b, 10);
	assert_int_equal(cm_buf_puts(&b, "1234567"), 0);
	assert_int_equal(cm_crypto_b64_encode(&b, "foo", 3, CM_B64_STD), -ENOBUFS);
	assert_string_equal(b.data, "1234567");
	assert_int_equal(cm_crypto_b64_decode(&b, "Zm9vYg==", 8, CM_B64_STD), -ENOBUFS);
	assert_string_equal(b.data, "1234567");
	assert_int_equal(cm_crypto_b64_decode(&b, "Zm9v", 4, CM_B64_STD), 0);
	assert_string_equal(b.data, "1234567foo");
	cm_buf_free(&b);
}

/* Every length 0..66 with every byte value, through both variants. */
static void test_b64_round_trip(void **state)
{
	unsigned char in[66];
	struct cm_buf enc, dec;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 250);
	for (int v = CM_B64_STD; v <= CM_B64_URL; v++) {
		for (size_t n = 0; n <= sizeof(in); n++) {
			cm_buf_init(&enc, 0);
			cm_buf_init(&dec, 0);
			assert_int_equal(cm_crypto_b64_encode(&enc, in, n, (enum cm_b64_variant)v),
			                 0);
			assert_int_equal(
			    cm_crypto_b64_decode(&dec, enc.data, enc.len, (enum cm_b64_variant)v),
			    0);
			assert_int_equal(dec.len, n);
			if (n)
				assert_memory_equal(dec.data, in, n);
			cm_buf_free(&enc);
			cm_buf_free(&dec);
		}
	}
}

static int b64_scenario(void *arg)
{
	struct cm_buf b;
	int rc;

	(void)arg;
	cm_buf_init(&b, 0);
	rc = cm_crypto_b64_encode(&b, "foobar", 6, CM_B64_STD);
	if (!rc)
		rc = cm_crypto_b64_decode(&b, "Zm9vYmFy", 8, CM_B64_URL);
	if (!rc)
		rc = cm_crypto_hex(&b, "\x01\xff", 2);
	if (!rc && strcmp(b.data, "Zm9vYmFy"
	                          "foobar"
	                          "01ff") != 0)
		rc = -EIO;
	cm_buf_free(&b);
	return rc;
}

static void test_b64_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(b64_scenario, NULL, 10) > 1);
}

static void hmac1_is(const void *key, size_t klen, const char *msg, const char *want)
{
	unsigned char mac[CM_SHA1_LEN];

	assert_int_equal(cm_crypto_hmac_sha1(key, klen, msg, strlen(msg), mac), 0);
	assert_hex(mac, sizeof(mac), want);
}

static void hmac256_is(const void *key, size_t klen, const char *msg, const char *want)
{
	unsigned char mac[CM_SHA256_LEN];

	assert_int_equal(cm_crypto_hmac_sha256(key, klen, msg, strlen(msg), mac), 0);
	assert_hex(mac, sizeof(mac), want);
}

/* RFC 2202 section 3, cases 1, 2, 3, 6, 7. */
static void test_hmac_sha1_rfc2202(void **state)
{
	unsigned char k0b[20], kaa[80];
	char ddd[51];

	(void)state;
	memset(k0b, 0x0b, sizeof(k0b));
	memset(kaa, 0xaa, sizeof(kaa));
	memset(ddd, 0xdd, 50);
	ddd[50] = '\0';
	hmac1_is(k0b, 20, "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00");
	hmac1_is("Jefe", 4, "what do ya want for nothing?",
	         "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
	hmac1_is(kaa, 20, ddd, "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
	hmac1_is(kaa, 80, "Test Using Larger Than Block-Size Key - Hash Key First",
	         "aa4ae5e15272d00e95705637ce8a3b55ed402112");
	hmac1_is(kaa, 80,
	         "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
	         "e8e99d0f45237d786d6bbaa7965c7808bbff1a91");
}

/* RFC 4231 section 4, cases 1, 2, 3, 6, 7. */
static void test_hmac_sha256_rfc4231(void **state)
{
	unsigned char k0b[20], kaa[131];
	char ddd[51];

	(void)state;
	memset(k0b, 0x0b, sizeof(k0b));
	memset(kaa, 0xaa, sizeof(kaa));
	memset(ddd, 0xdd, 50);
	ddd[50] = '\0';
	hmac256_is(k0b, 20, "Hi There",
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac256_is("Jefe", 4, "what do ya want for nothing?",
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	hmac256_is(kaa, 20, ddd,
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	hmac256_is(kaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	hmac256_is(kaa, 131,
	           "This is a test using a larger than block-size key and a larger than "
	           "block-size data. The key needs to be hashed before being used by the HMAC "
	           "algorithm.",
	           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* The TURN REST API credential (draft-uberti-behave-turn-rest-00, as coturn's
 * use-auth-secret): password = base64(HMAC-SHA1(secret, "EXPIRY:USER")). The expected value
 * was computed once with the openssl CLI:
 *   printf '%s' '1735689600:alice' | openssl dgst -sha1 -hmac 'turn-shared-secret' -binary \
 *     | base64 */
static void test_turn_rest_credential(void **state)
{
	static const char secret[] = "turn-shared-secret";
	static const char user[] = "1735689600:alice";
	unsigned char mac[CM_SHA1_LEN];
	struct cm_buf b;

	(void)state;
	assert_int_equal(cm_crypto_hmac_sha1(secret, strlen(secret), user, strlen(user), mac), 0);
	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_b64_encode(&b, mac, sizeof(mac), CM_B64_STD), 0);
	assert_string_equal(b.data, "yCRVKNR6l+IrzKB3iX1ROcxQ1ao=");
	cm_buf_free(&b);
}

/* Empty keys and messages are valid HMAC input, also as NULL pointers. */
static void test_hmac_empty(void **state)
{
	unsigned char a[CM_SHA256_LEN], b[CM_SHA256_LEN];

	(void)state;
	assert_int_equal(cm_crypto_hmac_sha256(NULL, 0, NULL, 0, a), 0);
	assert_int_equal(cm_crypto_hmac_sha256("", 0, "", 0, b), 0);
	assert_memory_equal(a, b, sizeof(a));
	/* printf '' | openssl dgst -sha256 -hmac '' */
	assert_hex(a, sizeof(a),
	           "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	assert_int_equal(cm_crypto_hmac_sha1(NULL, 1, "x", 1, a), -EINVAL);
}

static void test_sha(void **state)
{
	unsigned char d1[CM_SHA1_LEN], d256[CM_SHA256_LEN];

	(void)state;
	/* FIPS 180-2 appendix A / B, one-block message "abc" */
	assert_int_equal(cm_crypto_sha1("abc", 3, d1), 0);
	assert_hex(d1, sizeof(d1), "a9993e364706816aba3e25717850c26c9cd0d89d");
	assert_int_equal(cm_crypto_sha256("abc", 3, d256), 0);
	assert_hex(d256, sizeof(d256),
	           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(cm_crypto_sha256(NULL, 0, d256), 0);
	assert_hex(d256, sizeof(d256),
	           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(cm_crypto_sha1("", 0, d1), 0);
	assert_hex(d1, sizeof(d1), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void test_equal(void **state)
{
	(void)state;
	assert_int_equal(cm_crypto_equal("abcdef", "abcdef", 6), 1);
	assert_int_equal(cm_crypto_equal("abcdef", "abcdeg", 6), 0);
	assert_int_equal(cm_crypto_equal("xbcdef", "abcdef", 6), 0);
	assert_int_equal(cm_crypto_equal("a", "b", 0), 1);
	assert_int_equal(cm_crypto_equal(NULL, NULL, 0), 1);
	/* a difference in the high bit only */
	assert_int_equal(cm_crypto_equal("\x80", "\x00", 1), 0);
}

static void test_hex(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_hex(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(cm_crypto_hex(&b, "\x00\x01\x7f\x80\xab\xff", 6), 0);
	assert_string_equal(b.data, "00017f80abff");
	cm_buf_free(&b);
	cm_buf_init(&b, 5);
	assert_int_equal(cm_crypto_hex(&b, "\x01\x02\x03", 3), -ENOBUFS);
	assert_int_equal(b.len, 0);
	cm_buf_free(&b);
}

static void test_random(void **state)
{
	unsigned char a[32], b[32], zero[32] = {0};

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(cm_crypto_random(a, sizeof(a)), 0);
	assert_int_equal(cm_crypto_random(b, sizeof(b)), 0);
	/* 2^-256 chances of a false failure each */
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(cm_crypto_random(a, 0), 0);
}

/* RFC 6070 (PBKDF2-HMAC-SHA1) and the RFC 7914 section 11 vector (PBKDF2-HMAC-SHA256). */
static void test_pbkdf2(void **state)
{
	static const unsigned char sha1_4096[20] = {0x4b, 0x00, 0x79, 0x01, 0xb7, 0x65, 0x48,
	                                            0x9a, 0xbe, 0xad, 0x49, 0xd9, 0x26, 0xf7,
	                                            0x21, 0xd0, 0x65, 0xa4, 0x29, 0xc1};
	static const unsigned char sha256_1[32] = {0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f,
	                                           0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05,
	                                           0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65,
	                                           0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc};
	unsigned char out[32];

	(void)state;
	assert_int_equal(cm_crypto_pbkdf2_sha1("password", 8, "salt", 4, 4096, out, 20), 0);
	assert_memory_equal(out, sha1_4096, 20);
	assert_int_equal(cm_crypto_pbkdf2_sha256("passwd", 6, "salt", 4, 1, out, 32), 0);
	assert_memory_equal(out, sha256_1, 32);
	assert_int_equal(cm_crypto_pbkdf2_sha256("x", 1, "s", 1, 0, out, 32), -EINVAL);
	assert_int_equal(cm_crypto_pbkdf2_sha256(NULL, 1, "s", 1, 1, out, 32), -EINVAL);
	assert_int_equal(cm_crypto_pbkdf2_sha1(NULL, 0, NULL, 0, 1, out, 20), 0);
}

static void test_wipe(void **state)
{
	(void)state;
	char secret[] = "hunter2";

	cm_crypto_wipe(secret, sizeof(secret));
	for (size_t i = 0; i < sizeof(secret); i++)
		assert_int_equal(secret[i], 0);
	cm_crypto_wipe(NULL, 5); /* harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_rfc4648_std),
	    cmocka_unit_test(test_b64_rfc4648_url),
	    cmocka_unit_test(test_b64_alphabets),
	    cmocka_unit_test(test_b64_rejects),
	    cmocka_unit_test(test_b64_all_or_nothing),
	    cmocka_unit_test(test_b64_round_trip),
	    cmocka_unit_test(test_b64_alloc_failures),
	    cmocka_unit_test(test_hmac_sha1_rfc2202),
	    cmocka_unit_test(test_hmac_sha256_rfc4231),
	    cmocka_unit_test(test_turn_rest_credential),
	    cmocka_unit_test(test_hmac_empty),
	    cmocka_unit_test(test_sha),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_pbkdf2),
	    cmocka_unit_test(test_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
