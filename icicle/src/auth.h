/* auth.h - long-term credentials (RFC 8489 section 9.2): TURN REST usernames checked against
 * one or more shared secrets, a static users file, and stateless nonces.
 *
 * Credentials live in an immutable, reference-counted snapshot (struct icicle_creds). A reload
 * builds a new snapshot and swaps the pointer under a mutex; workers take a reference for the
 * duration of one request, so a swap never waits for them and never frees what they use.
 *
 * The nonce costs the server no memory: after the nonce cookie, it is the issue time followed by
 * an HMAC-SHA256 (under a random per-process key) of that time and the client's transport address,
 * so it is valid only for the address it was given to and only for nonce_lifetime seconds. */
#ifndef ICICLE_AUTH_H
#define ICICLE_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 8489 9.2: a nonce that starts with the "nonce cookie" announces security features, here
 * "password algorithms" (bit 0, counted from the right as in the RFC's test vectors: erratum
 * 6290). Clients that know it may choose SHA-256 keys; others go on with MD5. */
#define ICICLE_NONCE_COOKIE     "obMatJos2AAAB"
#define ICICLE_NONCE_COOKIE_LEN 13
#define ICICLE_NONCE_LEN        (ICICLE_NONCE_COOKIE_LEN + 40) /* + 8 hex time + 32 hex MAC */
#define ICICLE_MAX_KEYS         8 /* REST secrets tried for one username */

enum icicle_pwalg {
	ICICLE_PWALG_MD5 = 0x0001, /* RFC 8489 18.5 */
	ICICLE_PWALG_SHA256 = 0x0002,
};

/* The long-term key of one credential under each password algorithm (RFC 8489 9.2.2). */
struct icicle_key {
	uint8_t md5[16];    /* MD5(username ":" realm ":" password) */
	uint8_t sha256[32]; /* SHA-256(username ":" realm ":" password) */
};

/* Both keys of a credential into out. 0, or -EINVAL when the three exceed 2 KiB. */
int icicle_auth_ltkey(const char *user, const char *realm, const char *pass, size_t passlen,
                      struct icicle_key *out);

struct icicle_creds;

/* Build a snapshot. secrets: text with one secret per line ('#' comments and blank lines
 * ignored), may be NULL. users: lines "name:password", may be NULL. The texts are copied.
 * 0, -EINVAL (a malformed users line, named in err: "line 3: ..."), -ENOMEM (cm/err.h). */
int icicle_creds_alloc(struct icicle_creds **out, const char *secrets, size_t secretslen,
                       const char *users, size_t userslen, char *err, size_t errlen);
void icicle_creds_ref(struct icicle_creds *c);
void icicle_creds_unref(struct icicle_creds *c); /* accepts NULL; frees (wiping) at zero */
size_t icicle_creds_nsecrets(const struct icicle_creds *c);
size_t icicle_creds_nusers(const struct icicle_creds *c);

struct icicle_auth {
	pthread_mutex_t lock;
	struct icicle_creds *cur; /* owned reference; swapped under lock */
	uint8_t nonce_key[32];    /* random per process */
	const char *realm;        /* borrowed from the configuration */
	uint32_t nonce_lifetime;  /* seconds */
};

/* Take ownership of creds (may be NULL: nobody can authenticate). 0, -EIO (no randomness). */
int icicle_auth_init(struct icicle_auth *a, const char *realm, uint32_t nonce_lifetime,
                     struct icicle_creds *creds);
void icicle_auth_close(struct icicle_auth *a);

/* Replace the snapshot (ownership of creds is handed over); the old one is released when its
 * last user lets go. */
void icicle_auth_swap(struct icicle_auth *a, struct icicle_creds *creds);

/* The current snapshot with a reference for the caller (icicle_creds_unref() it); NULL if none. */
struct icicle_creds *icicle_auth_get(struct icicle_auth *a);

/* Write a fresh NUL-terminated nonce for client at wall-clock time now into out. */
void icicle_nonce_make(const struct icicle_auth *a, const struct sockaddr *client, uint64_t now,
                       char out[ICICLE_NONCE_LEN + 1]);

/* 0 valid, -ESTALE expired (answer 438 with a fresh one), -EINVAL forged, malformed or issued to
 * another address (also 438, RFC 8489 9.2.4 treats it as stale). */
int icicle_nonce_check(const struct icicle_auth *a, const struct sockaddr *client,
                       const char *nonce, uint64_t now);

/* Candidate keys for username at wall-clock time now: one per REST secret when the username is
 * "EXPIRY[:USER]" (expiry in Unix seconds), or the static user's key. Returns the number of keys
 * (>= 1) written to keys, -ENOENT (unknown user), -EKEYEXPIRED (REST username expired). */
int icicle_auth_keys(const struct icicle_creds *c, const char *username, const char *realm,
                     uint64_t now, struct icicle_key *keys, size_t maxkeys);

/* The expiry of a REST username, or 0 when it is not one. */
uint64_t icicle_auth_rest_expiry(const char *username);

#endif
