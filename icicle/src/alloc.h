/* alloc.h - the allocations of one worker (RFC 8656; private to icicle): the table that finds a
 * client's allocation, its relay sockets, its permissions and channels, and their lifetimes.
 *
 * A table is given at start what it needs: its limits and relay settings (copied from the
 * configuration), the quota and reservation tables the workers share, and a callback for relay
 * sockets with datagrams waiting (the relay's fast path). UDP clients' allocations are found by
 * their 5-tuple in a cm_map; a TCP/TLS client's through its connection. Lifetimes run on the
 * worker loop's timer wheel: one timer per allocation, due at the earliest end of the
 * allocation, of one of its permissions or of a channel binding, so that thousands of them cost
 * no timer each. Single-threaded: a table belongs to its worker's loop. */
#ifndef ICICLE_ALLOC_H
#define ICICLE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "auth.h"
#include "cm/list.h"
#include "cm/loop.h"
#include "cm/map.h"
#include "listen.h"
#include "quota.h"

#define ICICLE_PERM_MS 300000 /* a permission lives 5 min after its last refresh */
#define ICICLE_CHAN_MS 600000 /* a channel binding 10 min */

struct icicle_alloc;
struct icicle_metrics;
struct icicle_rsv;

/* Limits and relay settings of a table (copied at init). */
struct icicle_alloc_limits {
	size_t perms;       /* permissions per allocation */
	size_t chans;       /* channel bindings per allocation */
	uint64_t bandwidth; /* bytes/s each way per allocation; 0: no limit */
	/* [0] IPv4, [1] IPv6: where relay sockets are bound (family 0: that family is off), and
	 * what is advertised instead behind a 1:1 NAT (family 0: the bound or local address) */
	struct sockaddr_storage bind[2];
	struct sockaddr_storage external[2];
	uint16_t min_port, max_port;
};

struct icicle_alloc_table_config {
	struct icicle_alloc_limits lim;
	struct icicle_quota *quota;      /* shared by the workers; borrowed */
	struct icicle_rsv *rsv;          /* shared by the workers; borrowed */
	const struct icicle_metrics *mt; /* borrowed (its gauges) */
	/* Relay socket idx (0 IPv4, 1 IPv6) of a has datagrams to read. */
	void (*readable)(struct icicle_alloc *a, int idx, void *arg);
	void *arg;
};

struct icicle_alloc_table {
	struct icicle_alloc_table_config cfg;
	struct cm_loop *loop; /* borrowed: the clock, timers, relay sockets */
	struct cm_map udp;    /* UDP clients' allocations by 5-tuple */
	struct cm_list all;   /* every allocation alive */
	size_t count;
	uint32_t rng; /* relay port choice */
	bool ready;
};

struct icicle_relay_sock {
	int fd; /* owned, -1 when unused; closed in the poll handle's close callback */
	uv_poll_t poll;
	bool polling;
	struct sockaddr_storage adv; /* XOR-RELAYED-ADDRESS */
	struct icicle_alloc *a;      /* back pointer */
};

struct icicle_perm {
	uint8_t ip[16];   /* IPv6 form, IPv4 as ::ffff:a.b.c.d */
	uint64_t expires; /* loop ms */
};

struct icicle_chan {
	uint16_t num;
	bool live; /* counted in the channels gauge; false once expired (still reserved) */
	struct sockaddr_storage peer;
	uint64_t expires; /* loop ms; the binding may not be reused for 5 min after */
};

/* Outside alloc.c, read-only. */
struct icicle_alloc {
	struct icicle_alloc_table *t; /* borrowed */
	struct icicle_client client;
	struct cm_map_node node; /* in t->udp (UDP clients) */
	struct cm_list link;     /* in t->all */
	struct cm_loop_timer
	    timer; /* the earliest end of the allocation, a permission, a channel */
	bool dead;
	int closing;                       /* relay handles still to close */
	struct icicle_relay_sock relay[2]; /* [0] IPv4, [1] IPv6 */
	char *username;                    /* owned */
	char *quota_key;                   /* owned: what the per-user quotas count it under */
	struct icicle_key keys;            /* the credential it was made with, both algorithms */
	uint64_t rest_expiry;              /* 0: static user */
	uint8_t tid[12];                   /* of the Allocate, to answer its retransmissions */
	uint32_t lifetime;                 /* seconds granted last */
	uint64_t expires;                  /* loop ms */
	struct icicle_perm *perms;         /* owned, lim.perms entries */
	size_t nperms;
	struct icicle_chan *chans; /* owned, lim.chans entries */
	size_t nchans;
	struct icicle_bucket bw[2];      /* enum icicle_dir */
	struct icicle_user_count *quser; /* borrowed: the user's count and shared buckets */
	bool has_rsv_token; /* EVEN-PORT R=1: the neighbour port is reserved under rsv_token */
	uint64_t rsv_token;
};

/* An empty table on l's loop. cfg is copied. 0, -ENOMEM, -EIO (no randomness). */
int icicle_alloc_table_init(struct icicle_alloc_table *t, struct cm_loop *l,
                            const struct icicle_alloc_table_config *cfg);

/* End every allocation (relay sockets close; their memory goes in the close callbacks) and free
 * the table. Idempotent. */
void icicle_alloc_table_close(struct icicle_alloc_table *t);

/* The allocation of client c, or NULL. */
struct icicle_alloc *icicle_alloc_find(struct icicle_alloc_table *t, const struct icicle_client *c);

/* What an Allocate asks for, and what the allocation keeps of its request. */
struct icicle_alloc_req {
	bool fam4, fam6;    /* relay families */
	bool even;          /* EVEN-PORT: an even relay port */
	bool reserve;       /* EVEN-PORT with R: also reserve the port above (one family only) */
	bool dont_fragment; /* DONT-FRAGMENT */
	bool has_token;     /* RESERVATION-TOKEN: take the reserved socket instead (fam* ignored) */
	uint64_t token;
	const char *quota_key;         /* borrowed: the user the quotas count (icicle_quota_key());
	                                * NULL: the username itself */
	const struct icicle_key *keys; /* borrowed (copied): the credential; NULL: none */
	const uint8_t *tid;            /* borrowed (copied): the Allocate's; NULL: zeros */
	uint64_t rest_expiry;          /* the REST username's expiry; 0: a static user */
	uint32_t lifetime;             /* seconds */
};

/* Make an allocation for client c and username user with the relay sockets rq asks for, living
 * rq->lifetime seconds; the allocation count of rq->quota_key is taken (quota.h); a
 * reservation's token lands in a->rsv_token. A stream client's connection is told
 * (icicle_conn_set_alloc()). 0, -EDQUOT (486), -EUSERS (508), -EADDRINUSE (no port left: 508),
 * -ENOENT (unknown or expired token: 508), -EAFNOSUPPORT (family not configured: 440), -EINVAL,
 * -ENOMEM. */
int icicle_alloc_create(struct icicle_alloc_table *t, const struct icicle_client *c,
                        const char *user, const struct icicle_alloc_req *rq,
                        struct icicle_alloc **out);

/* Grant seconds more from now. */
void icicle_alloc_set_expiry(struct icicle_alloc *a, uint32_t seconds);

/* Re-arm the timer for the earliest of the allocation's, its permissions' and channels' ends
 * (after the caller added or refreshed one). */
void icicle_alloc_reschedule(struct icicle_alloc *a);

/* Tear down now (quota released, sockets closed, memory freed after the close callbacks; a
 * stream client's connection is told). A no-op on an allocation already dead. */
void icicle_alloc_destroy(struct icicle_alloc *a);

/* Take bytes from the allocation's bandwidth budget for direction dir, then from its user's
 * (quota.h). 0 when the datagram may pass, -EDQUOT over the allocation's limit, -EUSERS over the
 * user's. */
int icicle_alloc_bw_take(struct icicle_alloc *a, enum icicle_dir dir, uint64_t bytes,
                         uint64_t now_ms);

/* Permissions and channels: lookups give NULL for expired entries. */
struct icicle_perm *icicle_perm_find(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now);
/* Install or refresh. 0 or -EDQUOT (table full). */
int icicle_perm_add(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now);
struct icicle_chan *icicle_chan_by_num(struct icicle_alloc *a, uint16_t num, uint64_t now);
struct icicle_chan *icicle_chan_by_peer(struct icicle_alloc *a, const struct sockaddr *peer,
                                        uint64_t now);
/* Bind or refresh. 0, -EINVAL (number or peer bound otherwise: 400), -EDQUOT. */
int icicle_chan_bind(struct icicle_alloc *a, uint16_t num, const struct sockaddr *peer,
                     uint64_t now);

/* sa's address in IPv6 form (IPv4 as ::ffff:a.b.c.d), as permissions hold it. */
void icicle_ip16(const struct sockaddr *sa, uint8_t out[16]);
/* Same family, address and port. */
bool icicle_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
