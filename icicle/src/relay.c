/* relay.c - the relay fast path (see relay.h). */
#include "relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "attrs.h"
#include "cm/crypto.h"
#include "cm/metrics.h"
#include "icicle.h"

void icicle_relay_init(struct icicle_relay *r, struct icicle_batch *b,
                       struct icicle_alloc_table *allocs, const struct icicle_filter *filter,
                       const struct icicle_metrics *mt)
{
	r->batch = b;
	r->allocs = allocs;
	r->filter = filter;
	r->mt = mt;
	if (cm_crypto_random(&r->rng, sizeof(r->rng)) != 0 || r->rng == 0)
		r->rng = 0x9e3779b9u;
}

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Queue payload to peer from the allocation's relay socket of peer's family. */
static void to_peer(struct icicle_relay *r, struct icicle_alloc *a, const struct sockaddr *peer,
                    const uint8_t *payload, size_t plen, uint64_t now)
{
	int idx = peer->sa_family == AF_INET ? 0 : 1, rc;
	struct icicle_tx *t;

	if (a->relay[idx].fd < 0) {
		icicle_batch_dropped(r->batch, ICICLE_DROP);
		return;
	}
	rc = icicle_alloc_bw_take(a, ICICLE_UP, plen, now);
	if (rc != 0) {
		icicle_batch_dropped(r->batch,
		                     rc == -EDQUOT ? ICICLE_DROP_BW_ALLOC : ICICLE_DROP_BW_USER);
		return;
	}
	t = icicle_batch_tx(r->batch);
	t->fd = a->relay[idx].fd;
	memcpy(&t->dst, peer, sa_len(peer));
	t->dstlen = sa_len(peer);
	t->payload = payload;
	t->plen = plen;
	icicle_batch_relayed(r->batch, ICICLE_UP, plen);
}

void icicle_relay_chdata(struct icicle_relay *r, struct icicle_alloc *a, const uint8_t *p,
                         size_t len)
{
	uint64_t now = uv_now(a->t->loop->uv);
	struct icicle_chan *ch;
	uint16_t num;
	size_t dlen;
	uint8_t ip[16];

	if (!icicle_chdata_parse(p, len, &num, &dlen))
		return;
	ch = icicle_chan_by_num(a, num, now);
	if (!ch) {
		icicle_batch_dropped(r->batch, ICICLE_DROP);
		return;
	}
	icicle_ip16((const struct sockaddr *)&ch->peer, ip);
	if (!icicle_perm_find(a, ip, now)) {
		icicle_batch_dropped(r->batch, ICICLE_DROP);
		return;
	}
	to_peer(r, a, (const struct sockaddr *)&ch->peer, p + ICICLE_CHDATA_HDR, dlen, now);
}

void icicle_relay_send_ind(struct icicle_relay *r, const struct icicle_client *c,
                           const uint8_t *msg, size_t len)
{
	struct icicle_alloc *a = icicle_alloc_find(r->allocs, c);
	struct icicle_attr_iter it;
	struct icicle_attr at;
	struct sockaddr_storage peer;
	const uint8_t *data = NULL;
	size_t dlen = 0;
	bool have_peer = false;
	uint8_t ip[16];
	uint64_t now;

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
	if (!icicle_filter_allowed(r->filter, (const struct sockaddr *)&peer)) {
		cm_metrics_inc(r->mt->denied_peers);
		return;
	}
	now = uv_now(a->t->loop->uv);
	icicle_ip16((const struct sockaddr *)&peer, ip);
	if (!icicle_perm_find(a, ip, now)) {
		icicle_batch_dropped(r->batch, ICICLE_DROP);
		return;
	}
	to_peer(r, a, (const struct sockaddr *)&peer, data, dlen, now);
}

static void wr16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* One datagram from peer to the allocation's client: a ChannelData header when a channel is
 * bound to the peer, else a Data indication's header, before the payload. */
static void to_client(struct icicle_relay *r, struct icicle_alloc *a, const struct sockaddr *peer,
                      const uint8_t *payload, size_t plen, uint64_t now)
{
	struct icicle_chan *ch = a->nchans ? icicle_chan_by_peer(a, peer, now) : NULL;
	bool udp = a->client.tp == ICICLE_UDP;
	uint8_t h[20 + 24 + 4];
	size_t hlen, pad, xl;

	if (ch) {
		wr16(h, ch->num);
		wr16(h + 2, plen);
		hlen = 4;
		/* over streams ChannelData is padded to 4 bytes (RFC 8656 12.5) */
		pad = udp ? 0 : (4 - (plen & 3)) & 3;
	} else {
		uint32_t r1 = r->rng * 2654435761u, r2 = r1 ^ (uint32_t)now, r3 = r2 * 40503u;

		if (plen > 65535 - 48) {
			icicle_batch_dropped(r->batch, ICICLE_DROP);
			return;
		}
		/* Data indication: header, XOR-PEER-ADDRESS, DATA (padded) */
		wr16(h, icicle_stun_type(ICICLE_M_DATA, ICICLE_C_INDICATION));
		h[4] = 0x21;
		h[5] = 0x12;
		h[6] = 0xa4;
		h[7] = 0x42;
		r->rng = r3 ? r3 : 1;
		memcpy(h + 8, &r1, 4);
		memcpy(h + 12, &r2, 4);
		memcpy(h + 16, &r3, 4);
		xl = icicle_xaddr_encode(h + 20, 24, ICICLE_A_XOR_PEER, peer, h);
		if (xl == 0) {
			icicle_batch_dropped(r->batch, ICICLE_DROP);
			return;
		}
		pad = (4 - (plen & 3)) & 3;
		wr16(h + 20 + xl, ICICLE_A_DATA);
		wr16(h + 22 + xl, plen);
		hlen = 20 + xl + 4;
		wr16(h + 2, hlen - 20 + plen + pad);
	}
	icicle_batch_relayed(r->batch, ICICLE_DOWN, plen);
	icicle_client_frame(r->batch, &a->client, h, hlen, payload, plen, pad);
}

void icicle_relay_readable(struct icicle_alloc *a, int idx, void *arg)
{
	struct icicle_relay *r = arg;
	struct icicle_relay_sock *rs = &a->relay[idx];
	struct icicle_rx *rx = r->batch->rx;
	uint64_t now = uv_now(a->t->loop->uv);
	bool more = true;
	int round, rc;

	/* What is queued leaves at the end of the loop pass (batch.c), together with the
	 * datagrams of the other relay sockets read in the same pass. */
	for (round = 0; round < ICICLE_RX_ROUNDS && more && !a->dead; round++) {
		size_t first, i, end;
		int n = icicle_batch_read(r->batch, rs->fd, false, &first, &more);

		for (i = first, end = first + (size_t)n; i < end && !a->dead; i++) {
			const struct sockaddr *peer = (const struct sockaddr *)&rx->addr[i];
			size_t len = rx->msg[i].msg_len;
			uint8_t ip[16];

			if (rx->msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				icicle_batch_dropped(r->batch, ICICLE_DROP);
				continue;
			}
			icicle_ip16(peer, ip);
			if (!icicle_perm_find(a, ip, now)) {
				icicle_batch_dropped(r->batch, ICICLE_DROP);
				continue;
			}
			rc = icicle_alloc_bw_take(a, ICICLE_DOWN, len, now);
			if (rc != 0) {
				icicle_batch_dropped(r->batch, rc == -EDQUOT ? ICICLE_DROP_BW_ALLOC
				                                             : ICICLE_DROP_BW_USER);
				continue;
			}
			to_client(r, a, peer, rx->buf[i], len, now);
		}
	}
}
