/* listen_udp.c - one client-facing UDP socket of a worker (SO_REUSEPORT: every worker binds the
 * same address and the kernel spreads clients by their address), polled in the worker's loop,
 * read with recvmmsg into the worker's receive arena (batch.h). Bound to 0.0.0.0 or ::, it
 * learns the local address of each datagram (IP_PKTINFO) so that replies leave from the address
 * the client used. */
#include "listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cm/err.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "icicle.h"

struct icicle_udp {
	struct icicle_udp_config cfg;
	int fd; /* owned; closed in the close callback */
	uv_poll_t poll;
	struct sockaddr_storage bound;
	bool wildcard; /* bound to 0.0.0.0 / :: */
};

int icicle_udp_fd(const struct icicle_udp *u)
{
	return u->fd;
}

bool icicle_udp_wildcard(const struct icicle_udp *u)
{
	return u->wildcard;
}

/* The local address of a datagram received on a wildcard socket (the bound port with the
 * address from IP_PKTINFO); a socket bound to one address always has that one. */
static void local_from_cmsg(struct msghdr *mh, struct icicle_client *c, const struct icicle_udp *u)
{
	struct cmsghdr *cm;

	c->has_local = false;
	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *in = (struct sockaddr_in *)&c->local;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(&c->local, 0, sizeof(c->local));
			in->sin_family = AF_INET;
			in->sin_addr = pi.ipi_addr;
			in->sin_port = ((const struct sockaddr_in *)&u->bound)->sin_port;
			c->has_local = true;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->local;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(&c->local, 0, sizeof(c->local));
			in6->sin6_family = AF_INET6;
			in6->sin6_addr = pi.ipi6_addr;
			in6->sin6_port = ((const struct sockaddr_in6 *)&u->bound)->sin6_port;
			c->has_local = true;
		}
	}
}

static void udp_poll_cb(uv_poll_t *h, int status, int events)
{
	struct icicle_udp *u = h->data;
	struct icicle_rx *rx = u->cfg.batch->rx;
	struct icicle_client c;
	bool more = true;
	int round;

	(void)events;
	if (status < 0)
		return;
	memset(&c, 0, sizeof(c));
	c.tp = ICICLE_UDP;
	c.udp = u;
	if (!u->wildcard) {
		c.local = u->bound;
		c.has_local = true;
	}
	/* Payloads queued by reference stay in their arena slots until the queue leaves at the
	 * end of the loop pass (batch.h). */
	for (round = 0; round < ICICLE_RX_ROUNDS && more; round++) {
		size_t first, i, end;
		int n = icicle_batch_read(u->cfg.batch, u->fd, u->wildcard, &first, &more);

		for (i = first, end = first + (size_t)n; i < end; i++) {
			struct msghdr *mh = &rx->msg[i].msg_hdr;

			if (mh->msg_flags & MSG_TRUNC) {
				cm_metrics_inc(u->cfg.mt->malformed);
				continue;
			}
			c.addrlen = mh->msg_namelen;
			if (c.addrlen > sizeof(c.addr))
				continue;
			memcpy(&c.addr, &rx->addr[i], c.addrlen);
			if (c.addr.ss_family != AF_INET && c.addr.ss_family != AF_INET6)
				continue;
			if (u->wildcard)
				local_from_cmsg(mh, &c, u);
			(void)u->cfg.message(u->cfg.arg, &c, rx->buf[i], rx->msg[i].msg_len);
		}
	}
}

int icicle_udp_open(struct icicle_udp **out, struct cm_loop *l, const struct sockaddr *sa,
                    socklen_t len, const struct icicle_udp_config *cfg, char *err, size_t errlen)
{
	struct icicle_udp *u;
	int one = 1, rc, size = 4 << 20;
	uint8_t any[16] = {0};
	char name[64];

	*out = NULL;
	cm_stream_addr_format(sa, name, sizeof(name));
	u = calloc(1, sizeof(*u));
	if (!u)
		return cm_errf(err, errlen, -ENOMEM, "udp %s: out of memory", name);
	u->cfg = *cfg;
	memcpy(&u->bound, sa, len);
	u->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		rc = -errno;
		free(u);
		return cm_errf(err, errlen, rc, "udp %s: %s", name, uv_strerror(rc));
	}
	(void)setsockopt(u->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	(void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	(void)setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	/* Only a wildcard socket needs to learn each datagram's local address. */
	if (sa->sa_family == AF_INET) {
		u->wildcard = ((const struct sockaddr_in *)sa)->sin_addr.s_addr == 0;
		if (u->wildcard)
			(void)setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else {
		(void)setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		u->wildcard =
		    memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, any, sizeof(any)) == 0;
		if (u->wildcard)
			(void)setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	}
	if (bind(u->fd, sa, len) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = uv_poll_init(l->uv, &u->poll, u->fd);
	if (rc != 0)
		goto fail;
	u->poll.data = u;
	rc = uv_poll_start(&u->poll, UV_READABLE, udp_poll_cb);
	if (rc != 0) {
		icicle_udp_close(u);
		return cm_errf(err, errlen, rc, "udp %s: %s", name, uv_strerror(rc));
	}
	*out = u;
	return 0;
fail:
	close(u->fd);
	free(u);
	return cm_errf(err, errlen, rc, "udp %s: %s", name, uv_strerror(rc));
}

static void udp_closed(uv_handle_t *h)
{
	struct icicle_udp *u = h->data;

	close(u->fd);
	free(u);
}

void icicle_udp_close(struct icicle_udp *u)
{
	if (u)
		uv_close((uv_handle_t *)&u->poll, udp_closed);
}
