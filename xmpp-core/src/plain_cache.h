/* plain_cache.h - PLAIN logins without PBKDF2 after the first.
 *
 * A PLAIN login must turn the password into SCRAM keys to compare them with the stored ones:
 * 4096 or more iterations of HMAC, the dearest step of a login. Once a password was found
 * right, a keyed MAC of (account, its stored salt and key, password) is kept here; the next
 * PLAIN login with the same password for the same credentials is checked by computing that MAC
 * again (one HMAC) and finding it. A password change changes the stored salt and key, so an old
 * entry never matches again. Entries are MACs under a key drawn at start: they are worth nothing
 * outside the process. At most a fixed number are kept; the oldest go first.
 *
 * One per shard, used on its thread only.
 */
#ifndef XC_PLAIN_CACHE_H
#define XC_PLAIN_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/list.h"
#include "cm/map.h"
#include "scram.h"

#define XC_PLAIN_MAC 32

struct xc_plain_cache {
	struct cm_map map;   /* of struct entry, by MAC */
	struct cm_list fifo; /* oldest first */
	size_t cap;
	unsigned char key[32];
};

/* 0, -ENOMEM, -EIO (no randomness). */
int xc_plain_cache_init(struct xc_plain_cache *c, size_t cap);
void xc_plain_cache_close(struct xc_plain_cache *c);

/* The MAC of a login: account (bare JID), its stored credentials, the password given. 0 or
 * -EIO. */
int xc_plain_cache_mac(const struct xc_plain_cache *c, const char *account,
                       const struct xc_scram_creds *creds, const char *password, size_t len,
                       unsigned char mac[XC_PLAIN_MAC]);

/* Whether this MAC was added (a password already found right for these credentials). */
bool xc_plain_cache_has(const struct xc_plain_cache *c, const unsigned char mac[XC_PLAIN_MAC]);

/* Remember a MAC whose password was checked the slow way. Without memory it is not kept. */
void xc_plain_cache_add(struct xc_plain_cache *c, const unsigned char mac[XC_PLAIN_MAC]);

#endif
