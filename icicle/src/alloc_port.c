/* alloc_port.c - relay sockets bound to a port of the configured range: any port, an even one
 * (EVEN-PORT), or an even one with the next one held too (EVEN-PORT with the R bit). */
#include "alloc_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define BIND_TRIES 64

static uint32_t rnd(struct icicle_alloc_table *t)
{
	/* xorshift: port choice needs spread, not secrecy (the kernel checks the bind) */
	uint32_t x = t->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	t->rng = x ? x : 0x6d2b79f5u;
	return t->rng;
}

/* A socket of family af bound to ss with port; the fd, or a negative errno. */
static int bind_one(int af, struct sockaddr_storage *ss, socklen_t sl, uint32_t port, bool df)
{
	int fd, one = 1, rc;

	fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (af == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	icicle_alloc__set_df(fd, af, df);
	if (af == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)ss, sl) == 0)
		return fd;
	rc = -errno;
	close(fd);
	return rc;
}

void icicle_alloc__set_df(int fd, int af, bool df)
{
	if (df && af == AF_INET) {
		int v = IP_PMTUDISC_DO;

		(void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
	}
}

int icicle_alloc__bind(struct icicle_alloc_table *t, int idx, bool even, bool pair, bool df,
                       int *fd, int *fd_next)
{
	const struct icicle_alloc_limits *lim = &t->cfg.lim;
	int af = idx == 0 ? AF_INET : AF_INET6;
	uint32_t lo = lim->min_port, hi = lim->max_port;
	uint32_t span = hi - lo + 1, tries, port;
	struct sockaddr_storage ss = lim->bind[idx];
	socklen_t sl = af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int a, b;

	*fd = -1;
	if (fd_next)
		*fd_next = -1;
	if (ss.ss_family != af)
		return -EAFNOSUPPORT;
	even = even || pair;
	for (tries = 0; tries < BIND_TRIES; tries++) {
		port = lo + rnd(t) % span;
		if (even) {
			port &= ~1u;
			if (port < lo)
				port += 2;
			if (port > hi || (pair && port + 1 > hi))
				continue;
		}
		a = bind_one(af, &ss, sl, port, df);
		if (a == -EADDRINUSE || a == -EACCES)
			continue;
		if (a < 0)
			return a;
		if (!pair) {
			*fd = a;
			return 0;
		}
		/* The reserved neighbour is a plain socket: DONT-FRAGMENT is set when it is used.
		 */
		b = bind_one(af, &ss, sl, port + 1, false);
		if (b >= 0) {
			*fd = a;
			*fd_next = b;
			return 0;
		}
		close(a);
		if (b != -EADDRINUSE && b != -EACCES)
			return b;
	}
	return -EADDRINUSE;
}
