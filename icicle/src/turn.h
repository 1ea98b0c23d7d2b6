/* turn.h - the STUN/TURN control path of one worker (private to icicle): Binding, Allocate,
 * Refresh, CreatePermission and ChannelBind requests, long-term authentication, and the rate
 * limit of unauthenticated answers per source. Requests are decoded by libre (stun_codec.h).
 * Single-threaded: one per worker loop; what it shares with the other workers (credentials,
 * quotas, the filter) is safe to share. */
#ifndef ICICLE_TURN_H
#define ICICLE_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quota.h"

struct cm_loop;
struct icicle_alloc_table;
struct icicle_auth;
struct icicle_batch;
struct icicle_client;
struct icicle_filter;
struct icicle_metrics;

/* What the control path is given at start (copied; pointers borrowed for its life). */
struct icicle_turn_config {
	const char *realm;                       /* REALM of every credential */
	const char *software;                    /* SOFTWARE in answers; NULL or "": none */
	uint32_t lifetime_default, lifetime_max; /* seconds */
	bool relay4, relay6;                     /* relay families configured */
	uint64_t unauth_rate, unauth_burst; /* answers/s to one unauthenticated source; 0: any */
	struct icicle_alloc_table *allocs;
	struct icicle_batch *batch;         /* answers to UDP clients */
	struct icicle_auth *auth;           /* shared */
	const struct icicle_filter *filter; /* shared */
	const struct icicle_metrics *mt;
};

struct icicle_turn {
	struct icicle_turn_config cfg;
	struct cm_loop *loop;              /* borrowed: the clock */
	struct icicle_ratelimit rl;        /* unauthenticated answers to UDP sources */
	struct icicle_ratelimit rl_stream; /* the same to TCP/TLS sources */
};

/* 0, -ENOMEM, -EIO (no randomness for the rate limit's hash). On failure too,
 * icicle_turn_close() releases what was made. */
int icicle_turn_init(struct icicle_turn *t, struct cm_loop *l,
                     const struct icicle_turn_config *cfg);
void icicle_turn_close(struct icicle_turn *t);

/* Handle one STUN message from client c (its header already checked). msg is writable:
 * integrity checks rewrite the length in place. */
void icicle_turn_handle(struct icicle_turn *t, const struct icicle_client *c, uint8_t *msg,
                        size_t len);

#endif
