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
 * traditional EC/RSA PEM; not encrypted). The key type must fit alg (P-256 for ES256, RSA of
 * 2048 to 8192 bits for RS256): otherwise -EINVAL. err (may be NULL) receives a one-line reason,
 * e.g. "ES256 needs an EC P-256 key, not curve secp384r1". 0, -EINVAL, -ENOMEM. */
int cm_jwt_key_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
                    char *err, size_t errlen);

/* Load a public key (PEM SubjectPublicKeyInfo) or certificate for verification, with the same
 * type checks. Such a key cannot sign. */
int cm_jwt_pubkey_load(struct cm_jwt_key **out, enum cm_jwt_alg alg, const char *pem, size_t len,
                       char *err, size_t errlen);

void cm_jwt_key_free(struct cm_jwt_key *k); /* accepts NULL */

/* Append "header.claims.signature" to out. The header is {"alg":..,"typ":"JWT"} plus "kid" when
 * kid is not NULL. claims_json must be a JSON object (it is checked, not rewritten). 0, -EINVAL
 * (claims not an object, kid not UTF-8, a public key), -ENOMEM, -ENOBUFS, -EIO (OpenSSL failed);
 * out is unchanged on failure. */
int cm_jwt_sign(struct cm_buf *out, const struct cm_jwt_key *k, const char *kid,
                const char *claims_json);

/* Verify token with a public (or private) key: the header's alg must match the key's, the
 * signature must be valid. On success the decoded claims JSON is appended to claims (may be
 * NULL) and, when header is not NULL, the decoded header JSON to header. -EINVAL malformed
 * (not three unpadded base64url parts, header or claims not a JSON object, duplicate names),
 * -EBADMSG bad signature, alg mismatch or a "crit" header. Time claims are not checked here. */
int cm_jwt_verify(const struct cm_jwt_key *k, const char *token, size_t len, struct cm_buf *header,
                  struct cm_buf *claims);

#endif
