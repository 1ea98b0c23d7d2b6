/* turn_int.h - what turn.c (the methods) and turn_auth.c (authentication and answers) share
 * about the request being handled (private to icicle). */
#ifndef ICICLE_TURN_INT_H
#define ICICLE_TURN_INT_H

#include "alloc.h"
#include "auth.h"
#include "listen.h"
#include "stun_codec.h"
#include "turn.h"

/* One request on the control path; lives on the stack for its handling. */
struct icicle_turn_ctx {
	struct icicle_turn *t;         /* borrowed */
	const struct icicle_client *c; /* borrowed */
	struct icicle_req *req;        /* borrowed */
	uint64_t now_ms;
	uint64_t wall;
	bool v6_refused; /* ADDITIONAL-ADDRESS-FAMILY asked for IPv6 relays that are not offered */
	/* Set by icicle_turn__auth(): the credential's keys, and the key and integrity attribute
	 * signed answers use (those of the request, RFC 8489 9.2.4). Wiped after the request. */
	struct icicle_key keys;
	const uint8_t *key; /* points into keys */
	size_t keylen;
	bool mi_sha256;
};

/* Encode r (method, transaction, SOFTWARE and FINGERPRINT filled in here) and send it; with
 * integrity, signed the way icicle_turn__auth() decided. */
void icicle_turn__send(struct icicle_turn_ctx *x, struct icicle_resp *r, bool integrity);
void icicle_turn__error(struct icicle_turn_ctx *x, uint16_t code, const char *reason,
                        bool integrity);

/* The unauthenticated budget of this source; false, and counted, when it is spent (a TCP/TLS
 * connection is then closed). */
bool icicle_turn__unauth_ok(struct icicle_turn_ctx *x);

/* Long-term authentication (RFC 8489 9.2.4, with PASSWORD-ALGORITHM and
 * MESSAGE-INTEGRITY-SHA256). a: the client's allocation, whose keys are checked instead of the
 * credentials (secrets may have rotated since). True when authenticated (x->keys and the signing
 * fields set); otherwise the answer has been sent or dropped. */
bool icicle_turn__auth(struct icicle_turn_ctx *x, const struct icicle_alloc *a);

#endif
