/* cm/jwt.h - JSON Web Tokens signed with ES256 (APNs provider tokens) or RS256 (Google OAuth2
 * service-account assertions), on OpenSSL EVP. Verification is provided for the tests' mock
 * servers and for checking keys at start-up. */
#ifndef CM_JWT_H
#define CM_JWT_H

#include <stddef.h>

struct cm_buf;
struct cm_jwt_key;

enum cm_jwt_alg {
	CM_JWT_ES256, /* ECDSA P-256 + SHA-256; signature is the 64-byte r||s (RFC 7518 3.4) */
	CM_JWT_RS256, /* RSASSA-PKCS1-v1_5 + SHA-256, RSA >= 2048 bits */
};

/* Load a private key (PEM: PKCS#8 as in Apple's .p8 and Google's service-account JSON, or
 * traditional EC/RSA PEM). The key type must fit alg (P-256 for ES256, RSA >= 2048 for RS256):
 * otherwise -EINVAL. err receives a one-line reason. */
int cm_jwt_key_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
		    char *err, size_t errlen);

/* Load a public key (PEM SubjectPublicKeyInfo) or certificate for verification. */
int cm_jwt_pubkey_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
		       char *err, size_t errlen);

void cm_jwt_key_free(struct cm_jwt_key *k); /* accepts NULL */

/* Append "header.claims.signature" to out. The header is {"alg":..,"typ":"JWT"} plus "kid" when
 * kid is not NULL. claims_json must be a JSON object (it is checked, not rewritten). */
int cm_jwt_sign(struct cm_buf *out, const struct cm_jwt_key *k, const char *kid,
		const char *claims_json);

/* Verify token with a public (or private) key: the header's alg must match the key's, the
 * signature must be valid. On success the decoded claims JSON is appended to claims (may be
 * NULL) and, when header is not NULL, the decoded header JSON to header. -EINVAL malformed,
 * -EBADMSG bad signature or alg mismatch. Time claims are not checked here. */
int cm_jwt_verify(const struct cm_jwt_key *k, const char *token, size_t len, struct cm_buf *header,
		  struct cm_buf *claims);

#endif
