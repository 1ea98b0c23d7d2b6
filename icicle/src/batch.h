/* batch.h - a worker's receive arena and transmit queue (private to icicle).
 *
 * Datagrams are read with recvmmsg into the arena's slots; what they cause to be sent is queued
 * (payloads by reference into the slots, or into a stream's frame buffer) and leaves once per
 * loop pass, from a check handle that runs after the pass's I/O callbacks, in one sendmmsg per
 * run of datagrams for the same socket. A slot stays taken until the queue is flushed; the queue
 * is flushed early when the arena or the queue is full.
 *
 * The batch also owns the relay's counters (datagrams and bytes each way, drops by reason): they
 * are counted here per datagram and folded into the shared metrics once per flush, so that the
 * fast path touches no atomic per packet. Single-threaded: one batch per worker loop. */
#ifndef ICICLE_BATCH_H
#define ICICLE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include "quota.h"

#define ICICLE_BATCH     32   /* datagrams per recvmmsg at most */
#define ICICLE_RX_SLOTS  64   /* receive arena */
#define ICICLE_TX_MAX    64   /* queued datagrams; at least one per arena slot */
#define ICICLE_RX_ROUNDS 4    /* recvmmsg calls per wakeup of one socket (bounded work) */
#define ICICLE_DGRAM_MAX 4096 /* largest datagram handled; larger ones are dropped */
#define ICICLE_TX_INLINE 1024 /* header or whole control response of a queued datagram */

struct icicle_metrics;

/* One queued outgoing datagram: hdr (inline) followed by an optional borrowed payload that
 * must stay valid until the next flush (the arena's slots do: a slot is reused only once the
 * queue is empty; stream readers flush before their frame buffer can change). */
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

/* The receive arena: datagrams go to the slots in order, and a slot is taken until the transmit
 * queue has been flushed. Outside batch.c, read-only: after icicle_batch_read() returned n from
 * slot first, slots [first, first + n) hold the datagrams (buf, msg[i].msg_len, addr and the
 * control messages of msg[i].msg_hdr) until the next read. */
struct icicle_rx {
	uint8_t buf[ICICLE_RX_SLOTS][ICICLE_DGRAM_MAX];
	struct sockaddr_storage addr[ICICLE_RX_SLOTS];
	struct iovec iov[ICICLE_RX_SLOTS];
	struct mmsghdr msg[ICICLE_RX_SLOTS];
	uint8_t cmsg[ICICLE_RX_SLOTS][64];
	size_t used; /* slots taken: [0, used) */
};

/* Why a relayed datagram was dropped (all of them count in icicle_dropped_total). */
enum icicle_drop {
	ICICLE_DROP = 0,      /* no permission or channel, full buffers, no relay socket */
	ICICLE_DROP_BW_ALLOC, /* over bandwidth_per_allocation */
	ICICLE_DROP_BW_USER,  /* over bandwidth_per_user */
};

struct icicle_batch {
	struct icicle_rx *rx; /* owned */
	struct icicle_tx tx[ICICLE_TX_MAX];
	size_t ntx;
	uv_check_t flush;                /* sends the queue after each loop pass's I/O */
	bool open;                       /* flush is initialised: close it */
	const struct icicle_metrics *mt; /* borrowed */
	/* counted since the last flush */
	uint64_t pkts[2], bytes[2]; /* enum icicle_dir */
	uint64_t dropped, bw_dropped, user_bw_dropped;
};

/* Allocate the arena and start the end-of-pass flush on uv. 0, -ENOMEM or a libuv error; on
 * failure too, icicle_batch_close() and icicle_batch_free() release what was made. */
int icicle_batch_init(struct icicle_batch *b, uv_loop_t *uv, const struct icicle_metrics *mt);

/* Send what is queued and close the flush handle (the loop runs its close callback). */
void icicle_batch_close(struct icicle_batch *b);

/* Free the arena, once the loop has run the close callback. Accepts a zeroed batch. */
void icicle_batch_free(struct icicle_batch *b);

/* recvmmsg from fd into free arena slots (with IP_PKTINFO space when pktinfo): the number read
 * (0 when nothing or on error), the first slot in *first, and *more when the call was filled and
 * the socket may hold more. */
int icicle_batch_read(struct icicle_batch *b, int fd, bool pktinfo, size_t *first, bool *more);

/* A cleared queue entry for the caller to fill (the queue is flushed first when full). */
struct icicle_tx *icicle_batch_tx(struct icicle_batch *b);

/* Send everything queued and publish the counters. */
void icicle_batch_flush(struct icicle_batch *b);

/* A datagram relayed in direction dir with bytes of payload. */
static inline void icicle_batch_relayed(struct icicle_batch *b, enum icicle_dir dir, size_t bytes)
{
	b->pkts[dir]++;
	b->bytes[dir] += bytes;
}

static inline void icicle_batch_dropped(struct icicle_batch *b, enum icicle_drop why)
{
	b->dropped++;
	if (why == ICICLE_DROP_BW_ALLOC)
		b->bw_dropped++;
	else if (why == ICICLE_DROP_BW_USER)
		b->user_bw_dropped++;
}

#endif
