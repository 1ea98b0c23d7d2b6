/* relay.c - the relay fast path: ChannelData and Send indications from clients to peers, peer
 * datagrams to clients as ChannelData or Data indications. Nothing here allocates memory per
 * packet: datagrams are read into the worker's receive arena with recvmmsg and queued for sending
 * from there by reference (batch.c). */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "cm/metrics.h"

/* Address a queued datagram to a UDP client. The source address is given (IP_PKTINFO) only when
 * the listener is bound to a wildcard: otherwise the kernel uses the bound one anyway, and a
 * given source costs a control message and a local-address lookup per datagram. */
static void set_dst(struct icicle_tx *t, const struct icicle_client *c)
{
	memcpy(&t->dst, &c->addr, c->addrlen);
	t->dstlen = c->addrlen;
	if (c->has_local && icicle_udp_wildcard(c->udp)) {
		t->src = c->local;
		t->has_src = true;
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
	set_dst(t, c);
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
		set_dst(t, &a->client);
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
	bool more = true;
	int round;

	(void)events;
	if (status < 0 || a->dead)
		return;
	/* What is queued leaves at the end of the loop pass (batch.c), together with the
	 * datagrams of the other relay sockets read in the same pass. */
	for (round = 0; round < ICICLE_RX_ROUNDS && more && !a->dead; round++) {
		size_t first, i, end;
		int n = icicle_rx_read(w, r->fd, false, &first, &more);

		for (i = first, end = first + (size_t)n; i < end && !a->dead; i++) {
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
	}
}
