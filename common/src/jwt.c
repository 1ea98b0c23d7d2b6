/* jwt.c - JSON Web Tokens (RFC 7519) signed with ES256 or RS256 on OpenSSL EVP; jansson checks
 * the JSON. */
#include "cm/jwt.h"
#include "ossl_int.h"
#include "cm/buf.h"
#include "cm/crypto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* ES256 signatures are r||s, each left-padded to the 32-byte order of P-256 (RFC 7518 3.4). */
#define ES256_HALF    32
#define ES256_SIG_LEN (2 * ES256_HALF)
/* Upper bound on a signature from the keys we accept: RSA up to 8192 bits (1024 bytes); a DER
 * ECDSA P-256 signature is at most 72. Fixed so signing needs no allocation. */
#define SIG_MAX      1024
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS (SIG_MAX * 8)

struct cm_jwt_key {
	EVP_PKEY *pkey; /* owned */
	enum cm_jwt_alg alg;
	int priv; /* loaded from a private key: can sign */
};

static const char *alg_name(enum cm_jwt_alg alg)
{
	return alg == CM_JWT_ES256 ? "ES256" : "RS256";
}

static int is_p256(const EVP_PKEY *pkey)
{
	char group[64];
	size_t glen = 0;
	int nid;

	if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen))
		return 0;
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	return nid == NID_X9_62_prime256v1;
}

/* The key must be one the algorithm is defined for: accepting, say, a P-384 key for ES256 would
 * produce tokens that every verifier rejects, and we would only learn it from Apple's errors. */
static int check_key_type(EVP_PKEY *pkey, enum cm_jwt_alg alg, char *err, size_t errlen)
{
	if (alg == CM_JWT_ES256) {
		char group[64] = "";

		if (!EVP_PKEY_is_a(pkey, "EC")) {
			cm_ossl__errf(err, errlen, "ES256 needs an EC P-256 key, not %s",
			              EVP_PKEY_get0_type_name(pkey));
			return -EINVAL;
		}
		if (!is_p256(pkey)) {
			EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL);
			cm_ossl__errf(err, errlen, "ES256 needs an EC P-256 key, not curve %s",
			              group[0] ? group : "(explicit parameters)");
			return -EINVAL;
		}
		return 0;
	}
	if (alg == CM_JWT_RS256) {
		int bits;

		if (!EVP_PKEY_is_a(pkey, "RSA")) {
			cm_ossl__errf(err, errlen, "RS256 needs an RSA key, not %s",
			              EVP_PKEY_get0_type_name(pkey));
			return -EINVAL;
		}
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			cm_ossl__errf(err, errlen,
			              "RS256 needs an RSA key of %d to %d bits, not %d",
			              RSA_MIN_BITS, RSA_MAX_BITS, bits);
			return -EINVAL;
		}
		return 0;
	}
	cm_ossl__errf(err, errlen, "unknown JWT algorithm %d", (int)alg);
	return -EINVAL;
}

/* Wrap a checked pkey (taken over in every case) into a key object. */
static int key_wrap(struct cm_jwt_key **out, EVP_PKEY *pkey, enum cm_jwt_alg alg, int priv,
                    char *err, size_t errlen)
{
	struct cm_jwt_key *k;
	int rc = check_key_type(pkey, alg, err, errlen);

	if (rc) {
		EVP_PKEY_free(pkey);
		return rc;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	k->pkey = pkey;
	k->alg = alg;
	k->priv = priv;
	*out = k;
	return 0;
}

enum pem_kind { PEM_PRIVATE_KEY, PEM_PUBLIC_KEY, PEM_CERTIFICATE };

/* The key of the first PEM block of that kind in pem (len bytes), a certificate's public key
 * for PEM_CERTIFICATE, into *pkey (owned by the caller); NULL when there is none, with OpenSSL's
 * queue saying why. 0, or -ENOMEM when not even the reader could be made. */
static int pem_read(EVP_PKEY **pkey, const char *pem, size_t len, enum pem_kind kind, char *err,
                    size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *cert;

	*pkey = NULL;
	if (!bio) {
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	switch (kind) {
	case PEM_PRIVATE_KEY:
		*pkey = PEM_read_bio_PrivateKey(bio, NULL, cm_ossl__no_passphrase, NULL);
		break;
	case PEM_PUBLIC_KEY:
		*pkey = PEM_read_bio_PUBKEY(bio, NULL, cm_ossl__no_passphrase, NULL);
		break;
	case PEM_CERTIFICATE:
		cert = PEM_read_bio_X509(bio, NULL, cm_ossl__no_passphrase, NULL);
		if (cert) {
			*pkey = X509_get_pubkey(cert);
			X509_free(cert);
		}
		break;
	}
	BIO_free(bio);
	return 0;
}

/* Both loaders: a private key (priv) or a public one, which may also come from a certificate. */
static int key_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
                    int priv, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out || !pem || len > INT_MAX) {
		cm_ossl__errf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	*out = NULL;
	rc = pem_read(&pkey, pem, len, priv ? PEM_PRIVATE_KEY : PEM_PUBLIC_KEY, err, errlen);
	if (rc == 0 && !pkey && !priv) {
		/* Not a SubjectPublicKeyInfo: try a certificate. The first attempt's errors are
		 * dropped so that the reason reported belongs to the last one. */
		ERR_clear_error();
		rc = pem_read(&pkey, pem, len, PEM_CERTIFICATE, err, errlen);
	}
	if (rc)
		return rc;
	if (!pkey) {
		cm_ossl__errf(err, errlen, "%s",
		              priv ? "no usable PEM private key"
		                   : "no usable PEM public key or certificate");
		return -EINVAL;
	}
	ERR_clear_error();
	return key_wrap(out, pkey, alg, priv, err, errlen);
}

int cm_jwt_key_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
                    char *err, size_t errlen)
{
	return key_load(out, alg, pem, len, 1, err, errlen);
}

int cm_jwt_pubkey_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
                       char *err, size_t errlen)
{
	return key_load(out, alg, pem, len, 0, err, errlen);
}

void cm_jwt_key_free(struct cm_jwt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* Parse text as JSON and return the object, or NULL when it is not one. Duplicate names are
 * refused: {"alg":"RS256","alg":"none"} must not mean different things to different readers. */
static json_t *json_object_load(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int is_json_object(const char *text, size_t len)
{
	json_t *j = json_object_load(text, len);

	json_decref(j);
	return j != NULL;
}

/* Sign in[0..n) with SHA-256 and write the JWS signature (r||s for ES256) into sig. */
static int sign_raw(const struct cm_jwt_key *k, const char *in, size_t n,
                    unsigned char sig[SIG_MAX], size_t *siglen)
{
	unsigned char der[SIG_MAX];
	size_t derlen = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	ECDSA_SIG *es = NULL;
	int rc = -EIO;

	if (!md)
		goto out;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k->pkey) != 1)
		goto out;
	if (k->alg == CM_JWT_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	/* The size query guards the fixed buffer; the key check bounds it anyway. */
	if (EVP_DigestSign(md, NULL, &derlen, (const unsigned char *)in, n) != 1 ||
	    derlen > sizeof(der))
		goto out;
	if (EVP_DigestSign(md, der, &derlen, (const unsigned char *)in, n) != 1)
		goto out;
	if (k->alg == CM_JWT_ES256) {
		/* OpenSSL produces the DER SEQUENCE { r, s }; JWS wants fixed-width r||s. */
		const unsigned char *p = der;
		const BIGNUM *r, *s;

		es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
		if (!es)
			goto out;
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, sig, ES256_HALF) != ES256_HALF ||
		    BN_bn2binpad(s, sig + ES256_HALF, ES256_HALF) != ES256_HALF)
			goto out;
		*siglen = ES256_SIG_LEN;
	} else {
		memcpy(sig, der, derlen);
		*siglen = derlen;
	}
	rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

int cm_jwt_sign(struct cm_buf *out, const struct cm_jwt_key *k, const char *kid,
                const char *claims_json)
{
	unsigned char sig[SIG_MAX];
	size_t siglen = 0, start;
	struct cm_buf hdr;
	int rc;

	if (!out || !k || !claims_json || !k->priv)
		return -EINVAL;
	if (!is_json_object(claims_json, strlen(claims_json)))
		return -EINVAL;
	start = out->len;
	cm_buf_init(&hdr, 0);
	rc = cm_buf_printf(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"", alg_name(k->alg));
	if (!rc && kid) {
		rc = cm_buf_puts(&hdr, ",\"kid\":\"");
		if (!rc)
			rc = cm_buf_json_escape(&hdr, kid, strlen(kid));
		if (!rc)
			rc = cm_buf_puts(&hdr, "\"");
	}
	if (!rc)
		rc = cm_buf_puts(&hdr, "}");
	if (rc)
		goto out;
	/* A kid that is not UTF-8 would make the header invalid JSON: refuse rather than sign. */
	if (kid && !is_json_object(hdr.data, hdr.len)) {
		rc = -EINVAL;
		goto out;
	}
	rc = cm_crypto_b64_encode(out, hdr.data, hdr.len, CM_B64_URL);
	if (!rc)
		rc = cm_buf_append(out, ".", 1);
	if (!rc)
		rc = cm_crypto_b64_encode(out, claims_json, strlen(claims_json), CM_B64_URL);
	if (!rc)
		rc = sign_raw(k, out->data + start, out->len - start, sig, &siglen);
	if (!rc)
		rc = cm_buf_append(out, ".", 1);
	if (!rc)
		rc = cm_crypto_b64_encode(out, sig, siglen, CM_B64_URL);
out:
	cm_buf_free(&hdr);
	if (rc) {
		/* all or nothing: the caller's buffer reads as before the call */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

/* Decode one base64url segment of a token. JWS omits padding (RFC 7515 section 2), so '=' is
 * refused here although the codec would accept it: one token, one spelling. */
static int decode_segment(struct cm_buf *b, const char *s, size_t n)
{
	if (memchr(s, '=', n))
		return -EINVAL;
	return cm_crypto_b64_decode(b, s, n, CM_B64_URL);
}

static int verify_raw(const struct cm_jwt_key *k, const char *in, size_t n,
                      const unsigned char *sig, size_t siglen)
{
	unsigned char der[SIG_MAX];
	const unsigned char *vsig = sig;
	size_t vlen = siglen;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	ECDSA_SIG *es = NULL;
	int rc = -EBADMSG;

	if (k->alg == CM_JWT_ES256) {
		BIGNUM *r, *s;
		unsigned char *p = der;
		int dlen;

		if (siglen != ES256_SIG_LEN)
			goto out;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(sig, ES256_HALF, NULL);
		s = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
		if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			rc = -ENOMEM;
			goto out;
		}
		dlen = i2d_ECDSA_SIG(es, NULL);
		if (dlen <= 0 || (size_t)dlen > sizeof(der) || i2d_ECDSA_SIG(es, &p) != dlen) {
			rc = -EIO;
			goto out;
		}
		vsig = der;
		vlen = (size_t)dlen;
	}
	md = EVP_MD_CTX_new();
	if (!md) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, k->pkey) != 1 ||
	    (k->alg == CM_JWT_RS256 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)) {
		rc = -EIO;
		goto out;
	}
	/* 0 is a wrong signature, < 0 one that does not even parse: both are a bad token. */
	if (EVP_DigestVerify(md, vsig, vlen, (const unsigned char *)in, n) == 1)
		rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

int cm_jwt_verify(const struct cm_jwt_key *k, const char *token, size_t len, struct cm_buf *header,
                  struct cm_buf *claims)
{
	const char *d1, *d2;
	struct cm_buf h, c, s;
	json_t *hj = NULL, *alg;
	size_t hstart = header ? header->len : 0;
	int rc;

	if (!k || (!token && len))
		return -EINVAL;
	d1 = len ? memchr(token, '.', len) : NULL;
	if (!d1)
		return -EINVAL;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return -EINVAL; /* two parts, or five (JWE): not a JWS compact token */
	cm_buf_init(&h, 0);
	cm_buf_init(&c, 0);
	cm_buf_init(&s, 0);
	rc = decode_segment(&h, token, (size_t)(d1 - token));
	if (!rc)
		rc = decode_segment(&c, d1 + 1, (size_t)(d2 - d1 - 1));
	if (!rc)
		rc = decode_segment(&s, d2 + 1, len - (size_t)(d2 + 1 - token));
	if (rc)
		goto out;
	rc = -EINVAL;
	hj = h.data ? json_object_load(h.data, h.len) : NULL;
	if (!hj || !c.data || !is_json_object(c.data, c.len))
		goto out;
	alg = json_object_get(hj, "alg");
	if (!json_is_string(alg))
		goto out;
	/* The key decides the algorithm, never the token ("alg":"none", RS/HS confusion). */
	rc = -EBADMSG;
	if (strcmp(json_string_value(alg), alg_name(k->alg)) != 0)
		goto out;
	/* RFC 7515 4.1.11: extensions marked critical that we do not understand (we understand
	 * none) make the token invalid. */
	if (json_object_get(hj, "crit"))
		goto out;
	rc = verify_raw(k, token, (size_t)(d2 - token), (const unsigned char *)s.data, s.len);
	if (rc)
		goto out;
	if (header)
		rc = cm_buf_append(header, h.data, h.len);
	if (!rc && claims)
		rc = cm_buf_append(claims, c.data, c.len);
	if (rc && header) {
		header->len = hstart;
		if (header->data)
			header->data[hstart] = '\0';
	}
out:
	json_decref(hj);
	cm_buf_free(&h);
	cm_buf_free(&c);
	cm_buf_free(&s);
	return rc;
}
