/* test_scram.c - SCRAM: the exchanges of RFC 5802 (SHA-1) and RFC 7677 (SHA-256) byte for
 * byte, PLAIN against stored keys, decoys, channel binding (both types, mismatches, the "y"
 * downgrade), malformed messages, and allocation failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "tests/support/alloc.h"
#include "xmpp-core/src/scram.h"

struct vector {
	enum xc_scram_hash h;
	const char *salt_b64, *cfirst, *snonce, *sfirst, *cfinal, *sfinal;
};

static const struct vector rfc5802 = {
    XC_SCRAM_SHA1,
    "QSXCR+Q6sek8bf92",
    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "3rfcNHYJY1ZVvWVs7j",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct vector rfc7677 = {
    XC_SCRAM_SHA256,
    "W22ZaJ0SNY7soEsUEjb6gQ==",
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static void creds_for(const struct vector *v, const char *password, struct xc_scram_creds *c)
{
	struct cm_buf salt;

	cm_buf_init(&salt, 0);
	assert_int_equal(cm_crypto_b64_decode(&salt, v->salt_b64, strlen(v->salt_b64), CM_B64_STD),
	                 0);
	assert_int_equal(xc_scram_creds_make(v->h, password, strlen(password), 4096,
	                                     (unsigned char *)salt.data, salt.len, c),
	                 0);
	cm_buf_free(&salt);
}

static int run_vector(const struct vector *v, const char *password)
{
	struct xc_scram_creds c;
	struct xc_scram s;
	struct cm_buf out;
	char err[CM_ERR_MAX] = "";
	int rc;

	creds_for(v, "pencil", &c);
	if (strcmp(password, "pencil") != 0)
		creds_for(v, password, &c);
	xc_scram_init(&s, v->h, false, false, NULL, 0);
	cm_buf_init(&out, 0);
	assert_int_equal(xc_scram_client_first(&s, v->cfirst, strlen(v->cfirst), err, sizeof(err)),
	                 0);
	assert_string_equal(s.user, "user");
	assert_null(s.authzid);
	assert_int_equal(xc_scram_server_first(&s, &c, v->snonce, &out), 0);
	assert_string_equal(out.data, v->sfirst);
	cm_buf_reset(&out);
	rc = xc_scram_client_final(&s, v->cfinal, strlen(v->cfinal), &out, err, sizeof(err));
	if (rc == 0)
		assert_string_equal(out.data, v->sfinal);
	else
		assert_int_equal(s.st, XC_SCRAM_FAILED);
	cm_buf_free(&out);
	xc_scram_free(&s);
	return rc;
}

static void test_rfc_vectors(void **state)
{
	(void)state;
	assert_int_equal(run_vector(&rfc5802, "pencil"), 0);
	assert_int_equal(run_vector(&rfc7677, "pencil"), 0);
	assert_int_equal(run_vector(&rfc5802, "crayon"), -EACCES);
	assert_int_equal(run_vector(&rfc7677, "crayon"), -EACCES);
}

static void test_plain_and_decoy(void **state)
{
	struct xc_scram_creds c, d1, d2;
	static const unsigned char secret[] = "server secret";

	(void)state;
	creds_for(&rfc7677, "pencil", &c);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &c, "pencil", 6), 0);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &c, "Pencil", 6), -EACCES);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &c, "pen\x01il", 6), -EACCES);
	/* SASLprep: a non-ASCII space is a space, a soft hyphen is nothing */
	assert_int_equal(xc_scram_creds_make(XC_SCRAM_SHA256, "a b", 3, 10, NULL, 0, &c), 0);
	assert_int_equal(c.salt_len, 16);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &c,
	                                      "a\xc2\xa0"
	                                      "b",
	                                      4),
	                 0);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &c,
	                                      "a \xc2\xad"
	                                      "b",
	                                      5),
	                 0);
	assert_int_equal(xc_scram_creds_make(XC_SCRAM_SHA256, "x", 1, 0, NULL, 0, &c), -EINVAL);
	/* decoys: stable per user, different between users, never matching */
	xc_scram_decoy(XC_SCRAM_SHA1, secret, sizeof(secret), "ghost", 4096, &d1);
	xc_scram_decoy(XC_SCRAM_SHA1, secret, sizeof(secret), "ghost", 4096, &d2);
	assert_memory_equal(d1.salt, d2.salt, 16);
	xc_scram_decoy(XC_SCRAM_SHA1, secret, sizeof(secret), "other", 4096, &d2);
	assert_memory_not_equal(d1.salt, d2.salt, 16);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA1, &d1, "", 0), -EACCES);
}

/* A client for the tests: the full exchange with a given gs2 header and binding data. */
static int exchange(enum xc_scram_hash h, bool plus, bool offered, const struct xc_scram_cb *cb,
                    const char *gs2, const unsigned char *cbdata, size_t cblen, char *err)
{
	unsigned char salted[32], ckey[32], stored[32], sig[32], proof[32];
	size_t klen = xc_scram_key_len(h);
	struct xc_scram_creds c;
	struct xc_scram s;
	struct cm_buf out, msg, bind, auth;
	char first[256];
	int rc;

	assert_int_equal(xc_scram_creds_make(h, "secret", 6, 50, NULL, 0, &c), 0);
	xc_scram_init(&s, h, plus, offered, cb, 2);
	snprintf(first, sizeof(first), "%sn=Alice,r=abcdef", gs2);
	rc = xc_scram_client_first(&s, first, strlen(first), err, CM_ERR_MAX);
	if (rc) {
		xc_scram_free(&s);
		return rc;
	}
	assert_string_equal(s.user, "alice"); /* Nodeprep'd */
	cm_buf_init(&out, 0);
	cm_buf_init(&msg, 0);
	cm_buf_init(&bind, 0);
	cm_buf_init(&auth, 0);
	assert_int_equal(xc_scram_server_first(&s, &c, NULL, &out), 0);
	/* the client's side, computed here */
	assert_int_equal(
	    h == XC_SCRAM_SHA1
	        ? cm_crypto_pbkdf2_sha1("secret", 6, c.salt, c.salt_len, 50, salted, klen)
	        : cm_crypto_pbkdf2_sha256("secret", 6, c.salt, c.salt_len, 50, salted, klen),
	    0);
	assert_int_equal(cm_buf_puts(&bind, gs2), 0);
	assert_int_equal(cm_buf_append(&bind, cbdata, cblen), 0);
	assert_int_equal(cm_buf_puts(&msg, "c="), 0);
	assert_int_equal(cm_crypto_b64_encode(&msg, bind.data, bind.len, CM_B64_STD), 0);
	assert_int_equal(cm_buf_printf(&msg, ",r=%s", s.nonce), 0);
	assert_int_equal(cm_buf_printf(&auth, "n=Alice,r=abcdef,%s,%s", out.data, msg.data), 0);
	if (h == XC_SCRAM_SHA1) {
		cm_crypto_hmac_sha1(salted, klen, "Client Key", 10, ckey);
		cm_crypto_sha1(ckey, klen, stored);
		cm_crypto_hmac_sha1(stored, klen, auth.data, auth.len, sig);
	} else {
		cm_crypto_hmac_sha256(salted, klen, "Client Key", 10, ckey);
		cm_crypto_sha256(ckey, klen, stored);
		cm_crypto_hmac_sha256(stored, klen, auth.data, auth.len, sig);
	}
	for (size_t i = 0; i < klen; i++)
		proof[i] = ckey[i] ^ sig[i];
	assert_int_equal(cm_buf_puts(&msg, ",p="), 0);
	assert_int_equal(cm_crypto_b64_encode(&msg, proof, klen, CM_B64_STD), 0);
	cm_buf_reset(&out);
	rc = xc_scram_client_final(&s, msg.data, msg.len, &out, err, CM_ERR_MAX);
	if (rc == 0)
		assert_true(strncmp(out.data, "v=", 2) == 0);
	cm_buf_free(&out);
	cm_buf_free(&msg);
	cm_buf_free(&bind);
	cm_buf_free(&auth);
	xc_scram_free(&s);
	return rc;
}

static void test_channel_binding(void **state)
{
	/* the connection offers both types; the client may bind to either */
	struct xc_scram_cb both[2] = {{.type = "tls-exporter", .len = 32},
	                              {.type = "tls-server-end-point", .len = 32}};
	struct xc_scram_cb *exp = &both[0], *tse = &both[1];
	unsigned char other[32];
	char err[CM_ERR_MAX];

	(void)state;
	memset(exp->data, 0xab, 32);
	memset(tse->data, 0xcd, 32);
	memset(other, 0x11, 32);
	/* -PLUS with the right type and data, for both hashes and both types */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA256, true, true, both, "p=tls-exporter,,", exp->data, 32, err), 0);
	assert_int_equal(exchange(XC_SCRAM_SHA1, true, true, both, "p=tls-server-end-point,,",
	                          tse->data, 32, err),
	                 0);
	/* wrong data: a man in the middle */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA256, true, true, both, "p=tls-exporter,,", other, 32, err),
	    -EACCES);
	assert_string_equal(err, "channel bindings do not match");
	/* a type the connection does not offer */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA256, true, true, both, "p=tls-unique,,", exp->data, 32, err),
	    -EOPNOTSUPP);
	assert_string_equal(err, "unsupported channel binding type");
	/* the data of the other type than the one named */
	assert_int_equal(exchange(XC_SCRAM_SHA256, true, true, both, "p=tls-server-end-point,,",
	                          exp->data, 32, err),
	                 -EACCES);
	/* -PLUS chosen, no binding asked for */
	assert_int_equal(exchange(XC_SCRAM_SHA256, true, true, both, "n,,", NULL, 0, err), -EPROTO);
	/* plain mechanism: "n" is fine, "y" is a downgrade when -PLUS was offered, else fine */
	assert_int_equal(exchange(XC_SCRAM_SHA256, false, true, both, "n,,", NULL, 0, err), 0);
	assert_int_equal(exchange(XC_SCRAM_SHA256, false, true, both, "y,,", NULL, 0, err),
	                 -EPROTO);
	assert_string_equal(err, "the client thinks we cannot bind channels: a downgrade");
	assert_int_equal(exchange(XC_SCRAM_SHA256, false, false, NULL, "y,,", NULL, 0, err), 0);
	/* binding asked for on a plain mechanism */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA256, false, true, both, "p=tls-exporter,,", exp->data, 32, err),
	    -EPROTO);
	/* an authzid is taken and decoded */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA1, false, false, NULL, "n,a=alice=40example.com,", NULL, 0, err),
	    -EPROTO); /* "=40" is not a saslname escape */
	assert_int_equal(
	    exchange(XC_SCRAM_SHA1, false, false, NULL, "n,a=al=2Cice=3D,", NULL, 0, err), 0);
}

static void test_malformed(void **state)
{
	static const char *firsts[] = {
	    "",
	    "x,,n=user,r=abc",
	    "n,n=user,r=abc",
	    "n,,r=abc",
	    "n,,n=,r=abc",
	    "n,,n=user",
	    "n,,n=user,r=",
	    "n,,n=us=er,r=abc",
	    "n,,n=a@b,r=abc",
	    "n,,m=ext,n=user,r=abc",
	    "n,,n=user,r=a,bc",
	    "n,,n=user,r=a\x01"
	    "b",
	};
	struct xc_scram s;
	struct xc_scram_creds c;
	struct cm_buf out;
	char err[CM_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		xc_scram_init(&s, XC_SCRAM_SHA256, false, false, NULL, 0);
		err[0] = '\0';
		if (xc_scram_client_first(&s, firsts[i], strlen(firsts[i]), err, sizeof(err)) ==
		    0) {
			/* ",bc" after the nonce is an extension: allowed */
			assert_string_equal(firsts[i], "n,,n=user,r=a,bc");
		} else {
			assert_int_equal(s.st, XC_SCRAM_FAILED);
			assert_true(err[0] != '\0');
		}
		xc_scram_free(&s);
	}
	/* an authorisation identity, decoded */
	xc_scram_init(&s, XC_SCRAM_SHA256, false, false, NULL, 0);
	assert_int_equal(xc_scram_client_first(&s, "n,a=al=2Cice=3D,n=u,r=x", 23, err, sizeof(err)),
	                 0);
	assert_string_equal(s.authzid, "al,ice=");
	xc_scram_free(&s);
	/* final messages that do not fit the exchange */
	creds_for(&rfc5802, "pencil", &c);
	cm_buf_init(&out, 0);
	static const char *finals[] = {
	    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawLXXXX,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=notbase64!",
	    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA",
	    "c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	};
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		xc_scram_init(&s, XC_SCRAM_SHA1, false, false, NULL, 0);
		assert_int_equal(xc_scram_client_first(&s, rfc5802.cfirst, strlen(rfc5802.cfirst),
		                                       err, sizeof(err)),
		                 0);
		assert_int_equal(xc_scram_server_first(&s, &c, rfc5802.snonce, &out), 0);
		/* (the last binds to a gs2 header that is not the one sent: a failed login) */
		assert_int_equal(
		    xc_scram_client_final(&s, finals[i], strlen(finals[i]), &out, err, sizeof(err)),
		    i == sizeof(finals) / sizeof(finals[0]) - 1 ? -EACCES : -EPROTO);
		/* and nothing more is taken */
		assert_int_equal(xc_scram_client_final(&s, rfc5802.cfinal, strlen(rfc5802.cfinal),
		                                       &out, err, sizeof(err)),
		                 -EPROTO);
		xc_scram_free(&s);
	}
	cm_buf_free(&out);
}

static int sweep_exchange(void *arg)
{
	char err[CM_ERR_MAX];
	struct xc_scram_creds c;
	struct xc_scram s;
	struct cm_buf out;
	int rc;

	(void)arg;
	rc = xc_scram_creds_make(XC_SCRAM_SHA256, "pencil", 6, 10, NULL, 0, &c);
	if (rc)
		return rc;
	xc_scram_init(&s, XC_SCRAM_SHA256, false, false, NULL, 0);
	cm_buf_init(&out, 0);
	rc = xc_scram_client_first(&s, rfc7677.cfirst, strlen(rfc7677.cfirst), err, sizeof(err));
	rc = rc ? rc : xc_scram_server_first(&s, &c, NULL, &out);
	cm_buf_free(&out);
	xc_scram_free(&s);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(sweep_exchange, NULL, 200) > 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_vectors),     cmocka_unit_test(test_plain_and_decoy),
	    cmocka_unit_test(test_channel_binding), cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
