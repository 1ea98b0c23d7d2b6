/* quota.h - token buckets, allocation caps and the per-source rate limit of unauthenticated
 * requests.
 *
 * Token buckets are plain structs updated by one thread. The allocation counters (per user and
 * in total) are shared by all workers behind one mutex: they change only when an allocation is
 * made or dies, never per packet; users are found in a cm_map (keyed SipHash, so that user names
 * cannot be chosen to collide). The per-user bandwidth buckets are shared too, each behind its
 * user's own lock, and only consulted when a per-user limit is configured. The rate limiter is a
 * fixed table per worker, so a flood of spoofed sources costs no memory: sources hashing (keyed,
 * cm_hash) to the same slot share its budget. */
#ifndef ICICLE_QUOTA_H
#define ICICLE_QUOTA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cm/map.h"

struct icicle_bucket {
	uint64_t milli; /* tokens x 1000 */
	uint64_t last_ms;
};

/* Start full at now_ms. */
void icicle_bucket_init(struct icicle_bucket *b, uint64_t burst, uint64_t now_ms);

/* Refill at rate tokens per second up to burst, then take cost tokens if there are enough.
 * rate 0 means unlimited (always true). */
bool icicle_bucket_take(struct icicle_bucket *b, uint64_t rate, uint64_t burst, uint64_t cost,
                        uint64_t now_ms);

/* The name a credential is counted under by the per-user quotas (allocations_per_user,
 * bandwidth_per_user, port reservations). rest: username is a TURN REST username "EXPIRY:USER"
 * (checked against the REST secrets). Such a username counts as its user: the key is ":USER", so
 * credentials minted at different times for one user share that user's quotas, and the colon
 * keeps it apart from every static user (their names cannot contain one). A REST username
 * without a user part ("EXPIRY") gives "": all of those share one quota. Any other username is
 * its own key. Returns a pointer into username. */
const char *icicle_quota_key(const char *username, bool rest);

/* One user with allocations: their count and the bandwidth buckets all of them share. */
struct icicle_user_count;

struct icicle_quota {
	pthread_mutex_t lock;
	struct cm_map users; /* struct icicle_user_count by name, owned */
	bool ready;
	uint64_t total;    /* allocations alive */
	uint64_t max_user; /* 0 = unlimited */
	uint64_t max_total;
	uint64_t user_bw; /* bytes/s relayed per user, each direction; 0 = unlimited */
};

/* user_bw: see struct icicle_quota. 0, -ENOMEM or -EIO (no randomness for the table's key). */
int icicle_quota_init(struct icicle_quota *q, uint64_t max_user, uint64_t max_total,
                      uint64_t user_bw);
void icicle_quota_close(struct icicle_quota *q); /* frees the counts still held; idempotent */

/* Count an allocation for user. 0, -EDQUOT (the user's cap: 486), -EUSERS (the total cap: 508),
 * -ENOMEM. On success *uc (when not NULL) is the user's entry, valid until the matching
 * icicle_quota_alloc_release(). */
int icicle_quota_alloc_take(struct icicle_quota *q, const char *user,
                            struct icicle_user_count **uc);

enum icicle_dir {
	ICICLE_UP = 0,   /* client to peer */
	ICICLE_DOWN = 1, /* peer to client */
};

/* Take bytes from the bandwidth bucket of direction dir that all allocations of uc's user share
 * (any worker thread: the bucket has its own lock, touched only when a limit is set). true when
 * the datagram may pass. */
bool icicle_quota_user_bw_take(struct icicle_quota *q, struct icicle_user_count *uc,
                               enum icicle_dir dir, uint64_t bytes, uint64_t now_ms);
/* Undo one icicle_quota_alloc_take() that succeeded. */
void icicle_quota_alloc_release(struct icicle_quota *q, const char *user);
uint64_t icicle_quota_user_count(struct icicle_quota *q, const char *user);

#define ICICLE_RATE_SLOTS 4096

struct icicle_rate_slot {
	struct icicle_bucket b;
};

struct icicle_ratelimit {
	struct icicle_rate_slot *slots; /* owned: ICICLE_RATE_SLOTS */
	uint64_t rate, burst;           /* per second; rate 0 disables */
	uint64_t key[2];                /* of the slot hash, random per table */
};

/* 0, -ENOMEM, -EIO (no randomness). */
int icicle_ratelimit_init(struct icicle_ratelimit *r, uint64_t rate, uint64_t burst);
void icicle_ratelimit_close(struct icicle_ratelimit *r);
/* May one more unauthenticated request from src's IP address be answered at now_ms? */
bool icicle_ratelimit_take(struct icicle_ratelimit *r, const struct sockaddr *src, uint64_t now_ms);

#endif
