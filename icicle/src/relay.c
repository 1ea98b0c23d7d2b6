/* relay.c - the relay fast path: ChannelData and Send indications from clients to peers, peer
 * datagrams to clients as ChannelData or Data indications, and the batched transmit queue
 * (sendmmsg). Nothing here allocates memory per packet: datagrams are read into the worker's
 * receive buffers with recvmmsg and sent from there by reference. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "cm/metrics.h"

static const uint8_t zeros[4];

struct icicle_tx *icicle_tx_get(struct icicle_worker *w)
{
	struct icicle_tx *t;

	if (w->ntx == ICICLE_BATCH)
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

void icicle_tx_flush(struct icicle_worker *w)
{
	struct mmsghdr mm[ICICLE_BATCH];
	struct iovec iov[ICICLE_BATCH][3];
	uint8_t cbuf[ICICLE_BATCH][64] __attribute__((aligned(8)));
	struct icicle_metrics *mt = &w->ic->metrics;
	size_t i = 0, j, start, run;

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
		run = i - start;
		while (run > 0) {
			int n = sendmmsg(w->tx[start].fd, &mm[start], (unsigned)run, MSG_DONTWAIT);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				/* EAGAIN (socket buffer full) or a per-destination error such as
				 * ECONNREFUSED: drop this datagram and go on with the rest. */
				w->st_dropped++;
				start++;
				run--;
				continue;
			}
			start += (size_t)n;
			run -= (size_t)n;
		}
	}
	w->ntx = 0;
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

void icicle_client_send(struct icicle_worker *w, const struct icicle_client *c, const uint8_t *buf,
                        size_t len)
{
	struct icicle_tx *t;

	if (c->tp != ICICLE_UDP) {
		icicle_conn_send(c->conn, buf, len);
		return;
	}
	if (len > ICICLE_TX_INLINE)
		return;
	t = icicle_tx_get(w);
	t->fd = icicle_udp_fd(c->udp);
	t->dst = c->addr;
	t->dstlen = c->addrlen;
	if (c->has_local) {
		t->src = c->local;
		t->has_src = true;
	}
	memcpy(t->hdr, buf, len);
	t->hlen = len;
}

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Queue payload to peer from the allocation's relay socket of peer's family. */
static void to_peer(struct icicle_worker *w, struct icicle_alloc *a, const struct sockaddr *peer,
                    const uint8_t *payload, size_t plen)
{
	int idx = peer->sa_family == AF_INET ? 0 : 1;
	struct icicle_tx *t;

	if (a->relay[idx].fd < 0) {
		w->st_dropped++;
		return;
	}
	if (!icicle_bucket_take(&a->bw_up, w->ic->cfg->quotas.bandwidth_per_allocation,
	                        w->ic->cfg->quotas.bandwidth_per_allocation, plen,
	                        uv_now(&w->loop))) {
		w->st_dropped++;
		w->st_bw_dropped++;
		return;
	}
	if (!icicle_quota_user_bw_take(&w->ic->quota, a->quser, ICICLE_UP, plen,
	                               uv_now(&w->loop))) {
		w->st_dropped++;
		w->st_user_bw_dropped++;
		return;
	}
	t = icicle_tx_get(w);
	t->fd = a->relay[idx].fd;
	memcpy(&t->dst, peer, sa_len(peer));
	t->dstlen = sa_len(peer);
	t->payload = payload;
	t->plen = plen;
	w->st_pkts_up++;
	w->st_bytes_up += plen;
}

void icicle_relay_from_client_chdata(struct icicle_worker *w, const struct icicle_client *c,
                                     struct icicle_alloc *a, const uint8_t *p, size_t len)
{
	uint64_t now = uv_now(&w->loop);
	struct icicle_chan *ch;
	uint16_t num;
	size_t dlen;
	uint8_t ip[16];

	(void)c;
	if (!a || !icicle_chdata_parse(p, len, &num, &dlen))
		return;
	ch = icicle_chan_by_num(a, num, now);
	if (!ch) {
		w->st_dropped++;
		return;
	}
	icicle_ip16((const struct sockaddr *)&ch->peer, ip);
	if (!icicle_perm_find(a, ip, now)) {
		w->st_dropped++;
		return;
	}
	to_peer(w, a, (const struct sockaddr *)&ch->peer, p + ICICLE_CHDATA_HDR, dlen);
}

void icicle_relay_send_ind(struct icicle_worker *w, const struct icicle_client *c,
                           const uint8_t *msg, size_t len)
{
	struct icicle_alloc *a = icicle_alloc_find(w, c);
	struct icicle_attr_iter it;
	struct icicle_attr at;
	struct sockaddr_storage peer;
	const uint8_t *data = NULL;
	size_t dlen = 0;
	bool have_peer = false;
	uint8_t ip[16];

	if (!a)
		return;
	icicle_attr_iter_init(&it, msg, len);
	while (icicle_attr_next(&it, &at)) {
		if (at.type == ICICLE_A_XOR_PEER && !have_peer) {
			if (icicle_xaddr_decode(at.val, at.len, msg, &peer) != 0)
				return;
			have_peer = true;
		} else if (at.type == ICICLE_A_DATA && !data) {
			data = at.val;
			dlen = at.len;
		}
	}
	if (!have_peer || !data)
		return;
	if (!icicle_filter_allowed(&w->ic->filter, (const struct sockaddr *)&peer)) {
		cm_metrics_inc(w->ic->metrics.denied_peers);
		return;
	}
	icicle_ip16((const struct sockaddr *)&peer, ip);
	if (!icicle_perm_find(a, ip, uv_now(&w->loop))) {
		w->st_dropped++;
		return;
	}
	to_peer(w, a, (const struct sockaddr *)&peer, data, dlen);
}

static void wr16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* One datagram from peer to the allocation's client. */
static void to_client(struct icicle_worker *w, struct icicle_alloc *a, const struct sockaddr *peer,
                      const uint8_t *payload, size_t plen)
{
	uint64_t now = uv_now(&w->loop);
	struct icicle_chan *ch = a->nchans ? icicle_chan_by_peer(a, peer, now) : NULL;
	uint8_t hdr[20 + 24 + 4], *h;
	size_t hlen, pad;
	struct icicle_tx *t = NULL;

	if (a->client.tp == ICICLE_UDP) {
		t = icicle_tx_get(w);
		h = t->hdr;
	} else {
		h = hdr;
	}
	if (ch) {
		wr16(h, ch->num);
		wr16(h + 2, plen);
		hlen = 4;
		/* over streams ChannelData is padded to 4 bytes (RFC 8656 12.5) */
		pad = a->client.tp == ICICLE_UDP ? 0 : (4 - (plen & 3)) & 3;
	} else {
		size_t xl;

		if (plen > 65535 - 48)
			goto drop;
		/* Data indication: header, XOR-PEER-ADDRESS, DATA (padded) */
		wr16(h, icicle_stun_type(ICICLE_M_DATA, ICICLE_C_INDICATION));
		h[4] = 0x21;
		h[5] = 0x12;
		h[6] = 0xa4;
		h[7] = 0x42;
		{
			uint32_t r1 = w->rng * 2654435761u, r2 = r1 ^ (uint32_t)now,
			         r3 = r2 * 40503u;

			w->rng = r3 ? r3 : 1;
			memcpy(h + 8, &r1, 4);
			memcpy(h + 12, &r2, 4);
			memcpy(h + 16, &r3, 4);
		}
		xl = icicle_xaddr_encode(h + 20, 24, ICICLE_A_XOR_PEER, peer, h);
		if (xl == 0)
			goto drop;
		pad = (4 - (plen & 3)) & 3;
		wr16(h + 20 + xl, ICICLE_A_DATA);
		wr16(h + 22 + xl, plen);
		hlen = 20 + xl + 4;
		wr16(h + 2, hlen - 20 + plen + pad);
	}
	w->st_pkts_down++;
	w->st_bytes_down += plen;
	if (t) {
		t->fd = icicle_udp_fd(a->client.udp);
		t->dst = a->client.addr;
		t->dstlen = a->client.addrlen;
		if (a->client.has_local) {
			t->src = a->client.local;
			t->has_src = true;
		}
		t->hlen = hlen;
		t->payload = payload;
		t->plen = plen;
		t->pad = pad;
	} else {
		icicle_conn_send3(a->client.conn, h, hlen, payload, plen, pad);
	}
	return;
drop:
	if (t)
		w->ntx--;
	w->st_dropped++;
}

void icicle_relay_poll_cb(uv_poll_t *hd, int status, int events)
{
	struct icicle_relay_sock *r = hd->data;
	struct icicle_alloc *a = r->a;
	struct icicle_worker *w = a->w;
	struct icicle_rx *rx = w->rx;
	uint64_t now = uv_now(&w->loop);
	uint64_t rate = w->ic->cfg->quotas.bandwidth_per_allocation;
	int round, n, i;

	(void)events;
	if (status < 0 || a->dead)
		return;
	for (round = 0; round < ICICLE_RX_ROUNDS && !a->dead; round++) {
		for (i = 0; i < ICICLE_BATCH; i++) {
			rx->iov[i].iov_base = rx->buf[i];
			rx->iov[i].iov_len = sizeof(rx->buf[i]);
			memset(&rx->msg[i].msg_hdr, 0, sizeof(rx->msg[i].msg_hdr));
			rx->msg[i].msg_hdr.msg_name = &rx->addr[i];
			rx->msg[i].msg_hdr.msg_namelen = sizeof(rx->addr[i]);
			rx->msg[i].msg_hdr.msg_iov = &rx->iov[i];
			rx->msg[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(r->fd, rx->msg, ICICLE_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		for (i = 0; i < n && !a->dead; i++) {
			const struct sockaddr *peer = (const struct sockaddr *)&rx->addr[i];
			size_t len = rx->msg[i].msg_len;
			uint8_t ip[16];

			if (rx->msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				w->st_dropped++;
				continue;
			}
			icicle_ip16(peer, ip);
			if (!icicle_perm_find(a, ip, now)) {
				w->st_dropped++;
				continue;
			}
			if (!icicle_bucket_take(&a->bw_down, rate, rate, len, now)) {
				w->st_dropped++;
				w->st_bw_dropped++;
				continue;
			}
			if (!icicle_quota_user_bw_take(&w->ic->quota, a->quser, ICICLE_DOWN, len,
			                               now)) {
				w->st_dropped++;
				w->st_user_bw_dropped++;
				continue;
			}
			to_client(w, a, peer, rx->buf[i], len);
		}
		icicle_tx_flush(w);
		if (n < ICICLE_BATCH)
			break;
	}
}
