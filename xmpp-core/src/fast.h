/* fast.h - XEP-0484 FAST: tokens a client gets after a login with its password and logs in with
 * afterwards, in one round trip, with an HT-SHA-256 mechanism (draft-schmaus-kitten-sasl-ht).
 *
 * The mechanisms: HT-SHA-256-NONE (no channel binding) and HT-SHA-256-ENDP (bound to the TLS
 * server certificate: tls-server-end-point, RFC 5929). The client's one message is its authcid,
 * a NUL, and HMAC-SHA-256(key: the token, "Initiator" || channel binding data); the server's
 * additional data in <success/> is HMAC-SHA-256(the token, "Responder" || the same data), which
 * proves that the server knew the token too.
 *
 * A token belongs to one account and one client instance (SASL2's <user-agent id=.../>) and to
 * the mechanism it was issued for; it expires (fast.token_lifetime). A client has two slots
 * (struct xc_fast_req, store.h): the token in use and the one issued last, which becomes the one
 * in use when the client first logs in with it; until then the older one still works (a client
 * that lost the <success/> carrying its new token can still come back). A login may carry a
 * count (<fast count=N/>, for TLS 0-RTT replays): it must be higher than any count that token
 * was used with.
 *
 * The pure parts (the HMACs, the initial response, which slot a login matches and why not) are
 * here and tested on their own; sasl2.c drives them with the store.
 */
#ifndef XC_FAST_H
#define XC_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/crypto.h"
#include "store.h"

#define XC_NS_FAST      "urn:xmpp:fast:0"
#define XC_FAST_MAC_LEN CM_SHA256_LEN
#define XC_FAST_CB_MAX  64 /* bytes of channel binding data (a certificate's hash) */
#define XC_FAST_RAW     32 /* random bytes in a token */

enum xc_fast_cb {
	XC_FAST_CB_NONE, /* HT-SHA-256-NONE */
	XC_FAST_CB_ENDP, /* HT-SHA-256-ENDP: tls-server-end-point */
};

/* The mechanism named name: 0 with *cb set, or -ENOENT when it is not one of ours. */
int xc_fast_mech(const char *name, enum xc_fast_cb *cb);

/* The HMAC of either side: key token, message "Initiator" (initiator true) or "Responder",
 * followed by cb (cblen bytes, may be 0). 0 or -EIO. */
int xc_fast_mac(const char *token, bool initiator, const void *cb, size_t cblen,
                unsigned char out[XC_FAST_MAC_LEN]);

/* Split the client's message (data, len bytes): authcid NUL mac. *user points into data (user_len
 * bytes, not terminated). 0, or -EINVAL when it is not that shape (no NUL, an empty authcid, a
 * mac of another length). */
int xc_fast_parse(const char *data, size_t len, const char **user, size_t *user_len,
                  const unsigned char **mac);

/* Why a login with a token is refused (xc_fast_match()). */
enum xc_fast_refusal {
	XC_FAST_OK,
	XC_FAST_NO_TOKEN,   /* the client has no token (never had, revoked, replaced) */
	XC_FAST_MISMATCH,   /* no token of the client gives that mac */
	XC_FAST_EXPIRED,    /* the token matches but has expired */
	XC_FAST_WRONG_MECH, /* the token matches but was issued for another mechanism */
	XC_FAST_REPLAY,     /* the token matches but the count is not above the last one */
};

/* A short reason for logs. */
const char *xc_fast_refusal_text(enum xc_fast_refusal why);

/* Which of the client's tokens (f->slot, from the store) the login matches: mech its mechanism,
 * mac the client's, cb the channel binding data it was computed over, now (Unix seconds), count
 * the <fast/> element's (0: none given). The new slot is tried first. XC_FAST_OK with *slot
 * set, or the reason it fails (for the token that matched, when one did). Comparisons take the
 * same time whatever the content. */
enum xc_fast_refusal xc_fast_match(const struct xc_fast_req *f, const char *mech,
                                   const unsigned char mac[XC_FAST_MAC_LEN], const void *cb,
                                   size_t cblen, int64_t now, uint32_t count, int *slot);

/* A new token for mech expiring at expiry into t (XC_FAST_RAW random bytes, base64). 0 or
 * -EIO. */
int xc_fast_token_new(struct xc_fast_token *t, const char *mech, int64_t expiry);

/* Whether the token used (t) is due for a successor: less than rotate_before seconds left. */
bool xc_fast_rotate_due(const struct xc_fast_token *t, int64_t now, int64_t rotate_before);

/* Parse a count attribute (NULL: 0, none): a decimal from 1 to 2^32 - 1. 0 or -EINVAL. */
int xc_fast_parse_count(const char *s, uint32_t *out);

/* XEP-0082 DateTime of Unix seconds t ("2026-12-05T10:00:00Z") into out. */
void xc_fast_format_time(int64_t t, char *out, size_t len);

#endif
