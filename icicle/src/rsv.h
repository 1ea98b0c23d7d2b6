/* rsv.h - relay port reservations (RFC 8656 7.2: EVEN-PORT with the R bit, RESERVATION-TOKEN).
 *
 * An Allocate with EVEN-PORT(R=1) gets an even relay port N; the socket bound to N+1 is kept here,
 * unpolled, for ICICLE_RSV_MS under a random 8-byte token. A later Allocate that carries the token
 * takes that socket over. The table is shared by all workers behind one mutex, because the second
 * Allocate usually comes from another source port and so lands on another worker; it changes only
 * on such Allocates and on expiry, never per packet.
 *
 * Reservations are found by token and by user in two cm_maps (keyed SipHash: tokens and user
 * names come from clients), and kept oldest first in a cm_list: they all live ICICLE_RSV_MS, so
 * expiry takes from the front. */
#ifndef ICICLE_RSV_H
#define ICICLE_RSV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/map.h"

#define ICICLE_RSV_MS 30000 /* how long a reserved port is held (RFC 8656 suggests 30 s) */

struct icicle_rsv {
	pthread_mutex_t lock;
	struct cm_map tokens;   /* reservations by token (owned entries) */
	struct cm_map users;    /* the same by user, to count a user's reservations */
	struct cm_list entries; /* the same, oldest first */
	size_t cap;
	uint64_t max_user; /* reservations one user may hold; 0 = no limit */
	bool ready;
};

/* cap: the most reservations held at once; max_user: per user (0 = no limit). 0, -ENOMEM, -EIO
 * (no randomness for the tables' keys). */
int icicle_rsv_init(struct icicle_rsv *r, size_t cap, uint64_t max_user);
/* Close every socket still held and free the table. Idempotent. */
void icicle_rsv_close(struct icicle_rsv *r);

/* Hold fd (ownership handed over on success) for user (the quota key of the allocation's
 * credential: icicle_quota_key()) until now_ms + ICICLE_RSV_MS under a fresh random token written
 * to *token. 0, -EUSERS (table full), -EDQUOT (the user's limit), -ENOMEM, -EIO (no randomness). On
 * failure fd stays the caller's. */
int icicle_rsv_add(struct icicle_rsv *r, const char *user, int fd, int af, uint64_t now_ms,
                   uint64_t *token);

/* Take the socket reserved under token: 0 with *fd (now the caller's) and *af set, or -ENOENT
 * (never issued, already taken or expired). */
int icicle_rsv_take(struct icicle_rsv *r, uint64_t token, uint64_t now_ms, int *fd, int *af);

/* Close reservations whose time is up; returns how many. */
size_t icicle_rsv_expire(struct icicle_rsv *r, uint64_t now_ms);

/* Reservations held now. */
size_t icicle_rsv_count(struct icicle_rsv *r);

#endif
