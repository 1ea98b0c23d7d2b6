/* listen.c - sending to a client, whatever its transport (see listen.h). */
#include "listen_int.h"

#include <string.h>

#include "batch.h"

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

void icicle_client_frame(struct icicle_batch *b, const struct icicle_client *c, const uint8_t *hdr,
                         size_t hlen, const uint8_t *payload, size_t plen, size_t pad)
{
	struct icicle_tx *t;

	if (c->tp != ICICLE_UDP) {
		icicle_conn__send(c->conn, b, hdr, hlen, payload, plen, pad);
		return;
	}
	if (hlen > ICICLE_TX_INLINE) {
		icicle_batch_dropped(b, ICICLE_DROP);
		return;
	}
	t = icicle_batch_tx(b);
	t->fd = icicle_udp_fd(c->udp);
	set_dst(t, c);
	memcpy(t->hdr, hdr, hlen);
	t->hlen = hlen;
	t->payload = payload;
	t->plen = plen;
	t->pad = pad;
}

void icicle_client_send(struct icicle_batch *b, const struct icicle_client *c, const uint8_t *buf,
                        size_t len)
{
	icicle_client_frame(b, c, buf, len, NULL, 0, 0);
}
