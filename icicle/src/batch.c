/* batch.c - the worker's receive arena and transmit queue. Datagrams are read with recvmmsg into
 * the arena's slots; what they cause to be sent is queued (payloads by reference into the slots)
 * and leaves once per loop pass, from a check handle that runs after the pass's I/O callbacks, in
 * one sendmmsg per run of datagrams for the same socket. So the peer datagrams of many relay
 * sockets read in one pass go to the client socket in one system call instead of one each.
 * A slot stays taken until the queue is flushed; the queue is flushed early when the arena or the
 * queue is full. Relay sockets are closed in close callbacks, which libuv runs after the check
 * handles of the same pass: nothing queued can outlive the socket it is queued on. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cm/metrics.h"

static const uint8_t zeros[4];

static void flush_cb(uv_check_t *h)
{
	icicle_tx_flush(h->data);
}

int icicle_batch_init(struct icicle_worker *w)
{
	struct icicle_rx *rx = malloc(sizeof(*rx));
	size_t i;
	int rc;

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
	rx->used = ICICLE_RX_FIRST;
	w->rx = rx;
	rc = uv_check_init(&w->loop, &w->flush);
	if (rc != 0)
		return rc;
	w->flush.data = w;
	w->handles++;
	return uv_check_start(&w->flush, flush_cb);
}

static void flush_closed(uv_handle_t *h)
{
	struct icicle_worker *w = h->data;

	w->handles--;
}

void icicle_batch_close(struct icicle_worker *w)
{
	if (w->flush.data && !uv_is_closing((uv_handle_t *)&w->flush)) {
		icicle_tx_flush(w);
		uv_close((uv_handle_t *)&w->flush, flush_closed);
	}
}

void icicle_batch_free(struct icicle_worker *w)
{
	free(w->rx);
	w->rx = NULL;
}

int icicle_rx_read(struct icicle_worker *w, int fd, bool pktinfo, size_t *first, bool *more)
{
	struct icicle_rx *rx = w->rx;
	size_t i, room;
	int n;

	*more = false;
	if (w->ntx == 0)
		rx->used = ICICLE_RX_FIRST; /* nothing queued refers to a slot */
	if (rx->used == ICICLE_RX_SLOTS) {
		icicle_tx_flush(w);
		rx->used = ICICLE_RX_FIRST;
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

struct icicle_tx *icicle_tx_get(struct icicle_worker *w)
{
	struct icicle_tx *t;

	if (w->ntx == ICICLE_TX_MAX)
		icicle_tx_flush(w);
	t = &w->tx[w->ntx++];
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

/* Fold the worker's relay counters into the shared metrics. */
static void publish(struct icicle_worker *w)
{
	struct icicle_metrics *mt = &w->ic->metrics;

	if (w->st_pkts_up) {
		cm_metrics_add(mt->pkts_c2p, w->st_pkts_up);
		cm_metrics_add(mt->bytes_c2p, w->st_bytes_up);
		w->st_pkts_up = w->st_bytes_up = 0;
	}
	if (w->st_pkts_down) {
		cm_metrics_add(mt->pkts_p2c, w->st_pkts_down);
		cm_metrics_add(mt->bytes_p2c, w->st_bytes_down);
		w->st_pkts_down = w->st_bytes_down = 0;
	}
	if (w->st_dropped) {
		cm_metrics_add(mt->dropped, w->st_dropped);
		w->st_dropped = 0;
	}
	if (w->st_bw_dropped) {
		cm_metrics_add(mt->quota_bandwidth, w->st_bw_dropped);
		w->st_bw_dropped = 0;
	}
	if (w->st_user_bw_dropped) {
		cm_metrics_add(mt->quota_user_bandwidth, w->st_user_bw_dropped);
		w->st_user_bw_dropped = 0;
	}
}

/* Send mm[start, start + run) on fd: what the socket refuses is dropped and counted. */
static void send_run(struct icicle_worker *w, int fd, struct mmsghdr *mm, size_t run)
{
	while (run > 0) {
		int n = sendmmsg(fd, mm, (unsigned)run, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN (socket buffer full) or a per-destination error such as
			 * ECONNREFUSED: drop this datagram and go on with the rest. */
			w->st_dropped++;
			mm++;
			run--;
			continue;
		}
		mm += n;
		run -= (size_t)n;
	}
}

void icicle_tx_flush(struct icicle_worker *w)
{
	struct mmsghdr mm[ICICLE_TX_MAX];
	struct iovec iov[ICICLE_TX_MAX][3];
	uint8_t cbuf[ICICLE_TX_MAX][64] __attribute__((aligned(8)));
	size_t i = 0, j, start;

	if (w->ntx == 0) {
		publish(w);
		return;
	}
	memset(mm, 0, sizeof(mm[0]) * w->ntx);
	for (j = 0; j < w->ntx; j++) {
		struct icicle_tx *t = &w->tx[j];
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
	while (i < w->ntx) {
		start = i;
		while (i < w->ntx && w->tx[i].fd == w->tx[start].fd)
			i++;
		send_run(w, w->tx[start].fd, &mm[start], i - start);
	}
	w->ntx = 0;
	publish(w);
}
