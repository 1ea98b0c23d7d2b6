/* batch.c - the worker's receive arena and transmit queue (see batch.h). Relay sockets are
 * closed in close callbacks, which libuv runs after the check handles of the same pass: nothing
 * queued can outlive the socket it is queued on. */
#include "batch.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cm/metrics.h"
#include "icicle.h"

static const uint8_t zeros[4];

static void flush_cb(uv_check_t *h)
{
	icicle_batch_flush(h->data);
}

int icicle_batch_init(struct icicle_batch *b, uv_loop_t *uv, const struct icicle_metrics *mt)
{
	struct icicle_rx *rx;
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	b->mt = mt;
	rx = malloc(sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	memset(rx->msg, 0, sizeof(rx->msg));
	for (i = 0; i < ICICLE_RX_SLOTS; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = sizeof(rx->buf[i]);
		rx->msg[i].msg_hdr.msg_name = &rx->addr[i];
		rx->msg[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msg[i].msg_hdr.msg_iovlen = 1;
	}
	rx->used = 0;
	b->rx = rx;
	rc = uv_check_init(uv, &b->flush);
	if (rc != 0)
		return rc;
	b->flush.data = b;
	b->open = true;
	return uv_check_start(&b->flush, flush_cb);
}

void icicle_batch_close(struct icicle_batch *b)
{
	if (!b->open)
		return;
	b->open = false;
	icicle_batch_flush(b);
	uv_close((uv_handle_t *)&b->flush, NULL);
}

void icicle_batch_free(struct icicle_batch *b)
{
	free(b->rx);
	b->rx = NULL;
}

int icicle_batch_read(struct icicle_batch *b, int fd, bool pktinfo, size_t *first, bool *more)
{
	struct icicle_rx *rx = b->rx;
	size_t i, room;
	int n;

	*more = false;
	if (b->ntx == 0)
		rx->used = 0; /* nothing queued refers to a slot */
	if (rx->used == ICICLE_RX_SLOTS) {
		icicle_batch_flush(b);
		rx->used = 0;
	}
	room = ICICLE_RX_SLOTS - rx->used;
	if (room > ICICLE_BATCH)
		room = ICICLE_BATCH;
	for (i = rx->used; i < rx->used + room; i++) {
		struct msghdr *mh = &rx->msg[i].msg_hdr;

		mh->msg_namelen = sizeof(rx->addr[i]);
		mh->msg_control = pktinfo ? rx->cmsg[i] : NULL;
		mh->msg_controllen = pktinfo ? sizeof(rx->cmsg[i]) : 0;
		mh->msg_flags = 0;
	}
	n = recvmmsg(fd, &rx->msg[rx->used], (unsigned)room, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	*first = rx->used;
	rx->used += (size_t)n;
	*more = (size_t)n == room;
	return n;
}

struct icicle_tx *icicle_batch_tx(struct icicle_batch *b)
{
	struct icicle_tx *t;

	if (b->ntx == ICICLE_TX_MAX)
		icicle_batch_flush(b);
	t = &b->tx[b->ntx++];
	t->has_src = false;
	t->hlen = 0;
	t->payload = NULL;
	t->plen = 0;
	t->pad = 0;
	return t;
}

static void set_src(struct msghdr *mh, uint8_t *cbuf, size_t cap, const struct icicle_tx *t)
{
	struct cmsghdr *cm;

	mh->msg_control = cbuf;
	mh->msg_controllen = cap;
	cm = CMSG_FIRSTHDR(mh);
	if (t->src.ss_family == AF_INET) {
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi_spec_dst = ((const struct sockaddr_in *)&t->src)->sin_addr;
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		mh->msg_controllen = CMSG_SPACE(sizeof(pi));
	} else {
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi6_addr = ((const struct sockaddr_in6 *)&t->src)->sin6_addr;
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		mh->msg_controllen = CMSG_SPACE(sizeof(pi));
	}
}

/* Fold the counters into the shared metrics. */
static void publish(struct icicle_batch *b)
{
	const struct icicle_metrics *mt = b->mt;

	if (b->pkts[ICICLE_UP]) {
		cm_metrics_add(mt->pkts_c2p, b->pkts[ICICLE_UP]);
		cm_metrics_add(mt->bytes_c2p, b->bytes[ICICLE_UP]);
		b->pkts[ICICLE_UP] = b->bytes[ICICLE_UP] = 0;
	}
	if (b->pkts[ICICLE_DOWN]) {
		cm_metrics_add(mt->pkts_p2c, b->pkts[ICICLE_DOWN]);
		cm_metrics_add(mt->bytes_p2c, b->bytes[ICICLE_DOWN]);
		b->pkts[ICICLE_DOWN] = b->bytes[ICICLE_DOWN] = 0;
	}
	if (b->dropped) {
		cm_metrics_add(mt->dropped, b->dropped);
		b->dropped = 0;
	}
	if (b->bw_dropped) {
		cm_metrics_add(mt->quota_bandwidth, b->bw_dropped);
		b->bw_dropped = 0;
	}
	if (b->user_bw_dropped) {
		cm_metrics_add(mt->quota_user_bandwidth, b->user_bw_dropped);
		b->user_bw_dropped = 0;
	}
}

/* Send mm[0, run) on fd: what the socket refuses is dropped and counted. */
static void send_run(struct icicle_batch *b, int fd, struct mmsghdr *mm, size_t run)
{
	while (run > 0) {
		int n = sendmmsg(fd, mm, (unsigned)run, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN (socket buffer full) or a per-destination error such as
			 * ECONNREFUSED: drop this datagram and go on with the rest. */
			icicle_batch_dropped(b, ICICLE_DROP);
			mm++;
			run--;
			continue;
		}
		mm += n;
		run -= (size_t)n;
	}
}

void icicle_batch_flush(struct icicle_batch *b)
{
	struct mmsghdr mm[ICICLE_TX_MAX];
	struct iovec iov[ICICLE_TX_MAX][3];
	uint8_t cbuf[ICICLE_TX_MAX][64] __attribute__((aligned(8)));
	size_t i = 0, j, start;

	if (b->ntx == 0) {
		publish(b);
		return;
	}
	memset(mm, 0, sizeof(mm[0]) * b->ntx);
	for (j = 0; j < b->ntx; j++) {
		struct icicle_tx *t = &b->tx[j];
		struct msghdr *mh = &mm[j].msg_hdr;
		size_t k = 0;

		if (t->hlen) {
			iov[j][k].iov_base = t->hdr;
			iov[j][k++].iov_len = t->hlen;
		}
		if (t->plen) {
			iov[j][k].iov_base = (void *)(uintptr_t)t->payload;
			iov[j][k++].iov_len = t->plen;
		}
		if (t->pad) {
			iov[j][k].iov_base = (void *)(uintptr_t)zeros;
			iov[j][k++].iov_len = t->pad;
		}
		mh->msg_name = &t->dst;
		mh->msg_namelen = t->dstlen;
		mh->msg_iov = iov[j];
		mh->msg_iovlen = k;
		if (t->has_src && (t->src.ss_family == t->dst.ss_family))
			set_src(mh, cbuf[j], sizeof(cbuf[j]), t);
	}
	/* Runs of datagrams for the same socket go out in one sendmmsg. */
	while (i < b->ntx) {
		start = i;
		while (i < b->ntx && b->tx[i].fd == b->tx[start].fd)
			i++;
		send_run(b, b->tx[start].fd, &mm[start], i - start);
	}
	b->ntx = 0;
	publish(b);
}
