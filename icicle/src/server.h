/* server.h - the types of one worker thread: listeners, allocations, the relay fast path and
 * the batched transmit queue (private to icicle). Everything here is touched by its worker's
 * thread only. */
#ifndef ICICLE_SERVER_H
#define ICICLE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include "attrs.h"
#include "icicle.h"

#define ICICLE_BATCH       32   /* datagrams per recvmmsg at most */
#define ICICLE_RX_SLOTS    64   /* receive arena: slot 0 for streams, then datagrams */
#define ICICLE_RX_FIRST    1    /* first datagram slot */
#define ICICLE_TX_MAX      64   /* queued datagrams; at least one per datagram slot */
#define ICICLE_RX_ROUNDS   4    /* recvmmsg calls per wakeup of one socket (bounded work) */
#define ICICLE_DGRAM_MAX   4096 /* largest datagram handled; larger ones are dropped */
#define ICICLE_TX_INLINE   1024 /* header or whole control response of a queued datagram */
#define ICICLE_WHEEL_SLOTS 4096 /* seconds; above the longest lifetime (3600 s) */
#define ICICLE_PERM_MS     300000
#define ICICLE_CHAN_MS     600000

enum icicle_transport {
	ICICLE_UDP = 0,
	ICICLE_TCP = 1,
	ICICLE_TLS = 2,
};

struct icicle_worker;
struct icicle_udp;
struct icicle_conn;

/* Where a message came from and where its answers go. */
struct icicle_client {
	enum icicle_transport tp;
	struct icicle_udp *udp;   /* UDP: the listener socket (borrowed) */
	struct icicle_conn *conn; /* TCP/TLS: the connection (borrowed) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct sockaddr_storage local; /* the server address the client talks to */
	bool has_local;
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

struct icicle_relay_sock {
	int fd; /* owned, -1 when unused; closed in the poll handle's close callback */
	uv_poll_t poll;
	bool polling;
	struct sockaddr_storage adv; /* XOR-RELAYED-ADDRESS */
	struct icicle_alloc *a;      /* back pointer */
};

struct icicle_alloc {
	struct icicle_worker *w; /* borrowed */
	struct icicle_client client;
	struct icicle_alloc *hnext; /* UDP 5-tuple hash chain */
	struct icicle_alloc *wnext, *wprev;
	uint32_t wslot;
	bool in_wheel, in_table, dead;
	int closing;                       /* relay handles still to close */
	struct icicle_relay_sock relay[2]; /* [0] IPv4, [1] IPv6 */
	char *username;                    /* owned */
	char *quota_key;                   /* owned: what the per-user quotas count it under */
	struct icicle_key keys;            /* the credential it was made with, both algorithms */
	uint64_t rest_expiry;              /* 0: static user */
	uint8_t tid[12];                   /* of the Allocate, to answer its retransmissions */
	uint32_t lifetime;                 /* seconds granted last */
	uint64_t expires;                  /* loop ms */
	struct icicle_perm *perms;         /* owned, quotas.permissions_per_allocation entries */
	size_t nperms;
	struct icicle_chan *chans; /* owned, quotas.channels_per_allocation entries */
	size_t nchans;
	struct icicle_bucket bw_up, bw_down;
	struct icicle_user_count *quser; /* borrowed: the user's count and shared buckets */
	bool has_rsv_token; /* EVEN-PORT R=1: the neighbour port is reserved under rsv_token */
	uint64_t rsv_token;
};

/* One queued outgoing datagram: hdr (inline) followed by an optional borrowed payload that
 * must stay valid until icicle_tx_flush() (the receive arena's slots do: a slot is reused only
 * once the queue is empty; stream readers flush before their buffer can change). */
struct icicle_tx {
	int fd;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct sockaddr_storage src; /* source address to use (IP_PKTINFO) when has_src */
	bool has_src;
	size_t hlen;
	const uint8_t *payload;
	size_t plen;
	size_t pad; /* zero bytes after the payload (DATA attribute padding) */
	uint8_t hdr[ICICLE_TX_INLINE];
};

/* The receive arena (batch.c). buf[0] is the TCP/TLS read buffer (listen_tcp.c: its reads are
 * handled and flushed before the next one); datagrams go to slots ICICLE_RX_FIRST.. in order,
 * and a slot is taken until the transmit queue has been flushed. */
struct icicle_rx {
	uint8_t buf[ICICLE_RX_SLOTS][ICICLE_DGRAM_MAX];
	struct sockaddr_storage addr[ICICLE_RX_SLOTS];
	struct iovec iov[ICICLE_RX_SLOTS];
	struct mmsghdr msg[ICICLE_RX_SLOTS];
	uint8_t cmsg[ICICLE_RX_SLOTS][64];
	size_t used; /* slots taken: [0, used) */
};

struct icicle_worker {
	struct icicle *ic; /* borrowed */
	unsigned idx;
	uv_loop_t loop;
	bool loop_ready;
	uv_thread_t thread;
	uv_async_t stop_async;
	uv_timer_t tick;
	bool stopping;
	struct icicle_udp **udp; /* owned */
	size_t nudp;
	struct icicle_tcp **tcp; /* owned: TCP and TLS listeners */
	size_t ntcp;
	struct icicle_conn *conns; /* owned list of live connections */
	/* allocations of UDP clients by 5-tuple */
	struct icicle_alloc **table; /* owned */
	size_t tsize, tcount;
	size_t nallocs; /* all transports */
	struct icicle_alloc *wheel[ICICLE_WHEEL_SLOTS];
	uint64_t wheel_sec;         /* next second to expire */
	struct icicle_ratelimit rl; /* unauthenticated answers to UDP sources */
	struct icicle_ratelimit
	    rl_stream; /* the same to TCP/TLS sources, apart from spoofable UDP */
	size_t nconns; /* connections in conns */
	uint32_t rng;
	struct icicle_tx tx[ICICLE_TX_MAX];
	size_t ntx;
	struct icicle_rx *rx; /* owned */
	uv_check_t flush;     /* sends the queue after each loop pass's I/O */
	/* relay counters, added to the shared metrics once per batch */
	uint64_t st_pkts_up, st_bytes_up, st_pkts_down, st_bytes_down, st_dropped, st_bw_dropped,
	    st_user_bw_dropped;
	uint64_t handles; /* open handles, for the stop sequence */
};

/* worker.c */
int icicle_workers_start(struct icicle *ic);
void icicle_workers_stop(struct icicle *ic);
void icicle_workers_free(struct icicle *ic);
uint64_t icicle_wall_now(void);

/* alloc.c: the allocation table, lifetimes and the timer wheel. */
int icicle_table_init(struct icicle_worker *w);
void icicle_table_close(struct icicle_worker *w);
struct icicle_alloc *icicle_alloc_find(struct icicle_worker *w, const struct icicle_client *c);
/* What an Allocate asks for. */
struct icicle_alloc_req {
	bool fam4, fam6;    /* relay families */
	bool even;          /* EVEN-PORT: an even relay port */
	bool reserve;       /* EVEN-PORT with R: also reserve the port above (one family only) */
	bool dont_fragment; /* DONT-FRAGMENT */
	bool has_token;     /* RESERVATION-TOKEN: take the reserved socket instead (fam* ignored) */
	uint64_t token;
	const char *quota_key; /* borrowed: the user the quotas count (icicle_quota_key());
	                        * NULL: the username itself */
};
/* Make an allocation for username user with the relay sockets rq asks for; the allocation
 * count of rq->quota_key is taken (quota.h); a reservation's token lands in a->rsv_token. 0,
 * -EDQUOT (486), -EUSERS (508), -EADDRINUSE (no port left: 508), -ENOENT (unknown or expired token:
 * 508), -EAFNOSUPPORT (family not configured: 440), -EINVAL, -ENOMEM. */
int icicle_alloc_create(struct icicle_worker *w, const struct icicle_client *c, const char *user,
                        const struct icicle_alloc_req *rq, struct icicle_alloc **out);
void icicle_alloc_set_expiry(struct icicle_alloc *a, uint32_t seconds);
/* Re-arm the wheel for the earliest of the allocation's, its permissions' and channels' ends. */
void icicle_alloc_reschedule(struct icicle_alloc *a);
/* Tear down now (quota released, sockets closed, memory freed after the close callbacks). */
void icicle_alloc_destroy(struct icicle_alloc *a);
void icicle_alloc_tick(struct icicle_worker *w);
void icicle_ip16(const struct sockaddr *sa, uint8_t out[16]);
struct icicle_perm *icicle_perm_find(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now);
/* Install or refresh. 0 or -EDQUOT (table full). */
int icicle_perm_add(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now);
struct icicle_chan *icicle_chan_by_num(struct icicle_alloc *a, uint16_t num, uint64_t now);
struct icicle_chan *icicle_chan_by_peer(struct icicle_alloc *a, const struct sockaddr *peer,
                                        uint64_t now);
/* Bind or refresh. 0, -EINVAL (number or peer bound otherwise: 400), -EDQUOT. */
int icicle_chan_bind(struct icicle_alloc *a, uint16_t num, const struct sockaddr *peer,
                     uint64_t now);
bool icicle_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
void icicle_alloc_client_gone(struct icicle_worker *w, struct icicle_conn *conn);

/* relay_port.c: relay sockets bound in the configured port range. */
/* A socket of relay family idx (0 IPv4, 1 IPv6) bound to a free port, even when even; with pair
 * an even port N and a second socket on N+1 in *fd_next. Sockets are the caller's. 0,
 * -EADDRINUSE (no free port found), -EAFNOSUPPORT (family not configured), or -errno. */
int icicle_relay_bind(struct icicle_worker *w, int idx, bool even, bool pair, bool df, int *fd,
                      int *fd_next);
/* Set DONT-FRAGMENT behaviour (IPv4 only) on a relay socket when df. */
void icicle_relay_set_df(int fd, int af, bool df);

/* turn.c: the control path. msg is writable (integrity checks rewrite the length in place). */
void icicle_turn_handle(struct icicle_worker *w, const struct icicle_client *c, uint8_t *msg,
                        size_t len);

/* batch.c: the receive arena and the transmit queue. */
/* Allocate the arena and start the end-of-pass flush (a handle: close with icicle_batch_close,
 * then free with icicle_batch_free once the loop has run the close callback). 0 or -errno. */
int icicle_batch_init(struct icicle_worker *w);
void icicle_batch_close(struct icicle_worker *w);
void icicle_batch_free(struct icicle_worker *w);
/* recvmmsg from fd into free arena slots (with IP_PKTINFO space when pktinfo): the number read
 * (0 when nothing or on error), the first slot in *first, and *more when the call was filled and
 * the socket may hold more. */
int icicle_rx_read(struct icicle_worker *w, int fd, bool pktinfo, size_t *first, bool *more);
/* A cleared queue entry (the queue is flushed first when full). */
struct icicle_tx *icicle_tx_get(struct icicle_worker *w);
/* Send everything queued and publish the relay counters. */
void icicle_tx_flush(struct icicle_worker *w);

/* relay.c: the fast path. */
void icicle_relay_from_client_chdata(struct icicle_worker *w, const struct icicle_client *c,
                                     struct icicle_alloc *a, const uint8_t *p, size_t len);
void icicle_relay_send_ind(struct icicle_worker *w, const struct icicle_client *c,
                           const uint8_t *msg, size_t len);
void icicle_relay_poll_cb(uv_poll_t *h, int status, int events);
/* Send a complete message to a client (copied). */
void icicle_client_send(struct icicle_worker *w, const struct icicle_client *c, const uint8_t *buf,
                        size_t len);

/* listen_udp.c */
int icicle_udp_open(struct icicle_worker *w, const struct sockaddr *sa, socklen_t len,
                    struct icicle_udp **out);
void icicle_udp_close(struct icicle_udp *u);
int icicle_udp_fd(const struct icicle_udp *u);
/* Bound to 0.0.0.0 / ::: replies need their source address set (IP_PKTINFO). */
bool icicle_udp_wildcard(const struct icicle_udp *u);

/* listen_tcp.c (TCP and TLS) */
int icicle_tcp_open(struct icicle_worker *w, const struct sockaddr *sa, socklen_t len, bool tls,
                    struct icicle_tcp **out);
void icicle_tcp_close(struct icicle_tcp *t);
void icicle_conn_close_all(struct icicle_worker *w);
/* Close a connection now (its allocation with it); the memory goes in the close callback. */
void icicle_conn_abort(struct icicle_conn *c);
/* Close connections that missed a deadline: TLS handshake, message, or 30 s idle without an
 * allocation (called from the worker's tick, once a second). */
void icicle_conn_sweep(struct icicle_worker *w);
/* Queue bytes (copied) on a connection; drops them when its queue is over the limit. */
void icicle_conn_send(struct icicle_conn *c, const uint8_t *buf, size_t len);
void icicle_conn_send3(struct icicle_conn *c, const uint8_t *hdr, size_t hlen,
                       const uint8_t *payload, size_t plen, size_t pad);
void icicle_conn_set_alloc(struct icicle_conn *c, struct icicle_alloc *a);
struct icicle_alloc *icicle_conn_alloc(const struct icicle_conn *c);

#endif
