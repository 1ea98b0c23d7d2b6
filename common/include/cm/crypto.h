/* cm/crypto.h - small cryptographic helpers on OpenSSL: base64, HMAC, hashes, randomness,
 * constant-time comparison. All return 0 or a negative errno. */
#ifndef CM_CRYPTO_H
#define CM_CRYPTO_H

#include <stddef.h>

struct cm_buf;

enum cm_b64_variant {
	CM_B64_STD, /* RFC 4648 section 4, with '=' padding */
	CM_B64_URL, /* RFC 4648 section 5, no padding (JWT) */
};

/* Append the encoding of in to out. 0, -EINVAL (unknown variant), -ENOMEM, -ENOBUFS (out's
 * limit); on failure out is unchanged. */
int cm_crypto_b64_encode(struct cm_buf *out, const void *in, size_t n, enum cm_b64_variant v);

/* Append the decoded bytes to out. Strict: characters outside the alphabet, wrong padding,
 * or non-zero trailing bits give -EINVAL and append nothing. STD requires padding; URL accepts
 * input with or without it. */
int cm_crypto_b64_decode(struct cm_buf *out, const char *in, size_t n, enum cm_b64_variant v);

#define CM_SHA1_LEN   20
#define CM_SHA256_LEN 32

/* HMAC (RFC 2104) and digests into out. An empty key or message may be NULL. 0, -EINVAL (NULL
 * with a non-zero length, key over INT_MAX bytes), -EIO (OpenSSL failed). */
int cm_crypto_hmac_sha1(const void *key, size_t keylen, const void *msg, size_t len,
                        unsigned char out[CM_SHA1_LEN]);
int cm_crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                          unsigned char out[CM_SHA256_LEN]);
int cm_crypto_sha1(const void *msg, size_t len, unsigned char out[CM_SHA1_LEN]);
int cm_crypto_sha256(const void *msg, size_t len, unsigned char out[CM_SHA256_LEN]);

/* PBKDF2 (RFC 8018) with HMAC-SHA-1 or HMAC-SHA-256: outlen bytes of key from a password and a
 * salt after iter iterations. 0, -EINVAL (iter 0, NULL with a length, over INT_MAX), -EIO. */
int cm_crypto_pbkdf2_sha1(const void *pass, size_t plen, const void *salt, size_t slen,
                          unsigned iter, unsigned char *out, size_t outlen);
int cm_crypto_pbkdf2_sha256(const void *pass, size_t plen, const void *salt, size_t slen,
                            unsigned iter, unsigned char *out, size_t outlen);

/* Fill buf with cryptographically secure random bytes (OpenSSL's DRBG). 0 or -EIO. */
int cm_crypto_random(void *buf, size_t n);

/* Compare in time independent of the content: 1 when equal, 0 otherwise. n == 0 is equal. */
int cm_crypto_equal(const void *a, const void *b, size_t n);

/* Overwrite n bytes of secret (a password, a key) with zeros in a way the compiler keeps. */
void cm_crypto_wipe(void *p, size_t n);

/* Lowercase hex of n bytes appended to out. 0, -ENOMEM, -ENOBUFS; out unchanged on failure. */
int cm_crypto_hex(struct cm_buf *out, const void *in, size_t n);

#endif
