/* crypto_hash.c - HMAC, SHA digests, randomness, constant-time comparison and hex on OpenSSL. */
#include "cm/crypto.h"
#include "cm/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* HMAC() is the one-shot form that OpenSSL 3.0 keeps undeprecated (only HMAC_CTX is); it fetches
 * the MAC per call, which costs a few microseconds and is not worth a cached context here. */
static int hmac(const EVP_MD *md, const void *key, size_t keylen, const void *msg, size_t len,
                unsigned char *out, unsigned int outlen)
{
	/* OpenSSL rejects a NULL key even when empty; an empty key is valid HMAC (RFC 2104). */
	static const unsigned char empty;
	unsigned int got = 0;

	if (keylen > INT_MAX || (!key && keylen) || (!msg && len))
		return -EINVAL;
	if (!HMAC(md, key ? key : &empty, (int)keylen, msg ? msg : &empty, len, out, &got) ||
	    got != outlen) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int cm_crypto_hmac_sha1(const void *key, size_t keylen, const void *msg, size_t len,
                        unsigned char out[CM_SHA1_LEN])
{
	return hmac(EVP_sha1(), key, keylen, msg, len, out, CM_SHA1_LEN);
}

int cm_crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                          unsigned char out[CM_SHA256_LEN])
{
	return hmac(EVP_sha256(), key, keylen, msg, len, out, CM_SHA256_LEN);
}

static int digest(const EVP_MD *md, const void *msg, size_t len, unsigned char *out,
                  unsigned int outlen)
{
	static const unsigned char empty;
	unsigned int got = 0;

	if (!msg && len)
		return -EINVAL;
	if (!EVP_Digest(msg ? msg : &empty, len, out, &got, md, NULL) || got != outlen) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int cm_crypto_sha1(const void *msg, size_t len, unsigned char out[CM_SHA1_LEN])
{
	return digest(EVP_sha1(), msg, len, out, CM_SHA1_LEN);
}

int cm_crypto_sha256(const void *msg, size_t len, unsigned char out[CM_SHA256_LEN])
{
	return digest(EVP_sha256(), msg, len, out, CM_SHA256_LEN);
}

static int pbkdf2(const EVP_MD *md, const void *pass, size_t plen, const void *salt, size_t slen,
                  unsigned iter, unsigned char *out, size_t outlen)
{
	static const unsigned char empty;

	if (plen > INT_MAX || slen > INT_MAX || outlen > INT_MAX || iter == 0 || iter > INT_MAX ||
	    (!pass && plen) || (!salt && slen))
		return -EINVAL;
	if (PKCS5_PBKDF2_HMAC(pass ? pass : (const void *)&empty, (int)plen, salt ? salt : &empty,
	                      (int)slen, (int)iter, md, (int)outlen, out) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int cm_crypto_pbkdf2_sha1(const void *pass, size_t plen, const void *salt, size_t slen,
                          unsigned iter, unsigned char *out, size_t outlen)
{
	return pbkdf2(EVP_sha1(), pass, plen, salt, slen, iter, out, outlen);
}

int cm_crypto_pbkdf2_sha256(const void *pass, size_t plen, const void *salt, size_t slen,
                            unsigned iter, unsigned char *out, size_t outlen)
{
	return pbkdf2(EVP_sha256(), pass, plen, salt, slen, iter, out, outlen);
}

int cm_crypto_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	/* RAND_bytes takes an int; larger requests are served in pieces. */
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

int cm_crypto_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}

void cm_crypto_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int cm_crypto_hex(struct cm_buf *out, const void *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;
	char *o;
	int err;

	if (n > (SIZE_MAX - 1) / 2)
		return -ENOMEM;
	err = cm_buf_reserve(out, 2 * n);
	if (err)
		return err;
	o = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		*o++ = digits[p[i] >> 4];
		*o++ = digits[p[i] & 15];
	}
	out->len += 2 * n;
	out->data[out->len] = '\0';
	return 0;
}
