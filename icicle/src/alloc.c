/* alloc.c - the allocations of one worker: the 5-tuple table, relay sockets, permissions,
 * channels and lifetimes on a timer wheel (one wheel entry per allocation, not one timer per
 * object). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/metrics.h"

void icicle_ip16(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

bool icicle_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

static size_t client_hash(const struct icicle_client *c, size_t mask)
{
	uint8_t ip[16];
	uint64_t h = (uint64_t)(uintptr_t)c->udp * 0x9e3779b97f4a7c15ull;
	uint16_t port = c->addr.ss_family == AF_INET
	                    ? ((const struct sockaddr_in *)&c->addr)->sin_port
	                    : ((const struct sockaddr_in6 *)&c->addr)->sin6_port;
	size_t i;

	icicle_ip16((const struct sockaddr *)&c->addr, ip);
	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 0x100000001b3ull;
	h = (h ^ port) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 29)) & mask;
}

int icicle_table_init(struct icicle_worker *w)
{
	w->tsize = 1024;
	w->table = calloc(w->tsize, sizeof(*w->table));
	return w->table ? 0 : -ENOMEM;
}

void icicle_table_close(struct icicle_worker *w)
{
	free(w->table);
	w->table = NULL;
	w->tsize = 0;
}

static void table_grow(struct icicle_worker *w)
{
	size_t nsize = w->tsize * 2, i;
	struct icicle_alloc **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* keep the longer chains */
	for (i = 0; i < w->tsize; i++) {
		struct icicle_alloc *a = w->table[i], *next;

		for (; a; a = next) {
			size_t h = client_hash(&a->client, nsize - 1);

			next = a->hnext;
			a->hnext = nt[h];
			nt[h] = a;
		}
	}
	free(w->table);
	w->table = nt;
	w->tsize = nsize;
}

struct icicle_alloc *icicle_alloc_find(struct icicle_worker *w, const struct icicle_client *c)
{
	struct icicle_alloc *a;

	if (c->tp != ICICLE_UDP)
		return c->conn ? icicle_conn_alloc(c->conn) : NULL;
	for (a = w->table[client_hash(c, w->tsize - 1)]; a; a = a->hnext)
		if (a->client.udp == c->udp &&
		    icicle_addr_equal((const struct sockaddr *)&a->client.addr,
		                      (const struct sockaddr *)&c->addr))
			return a;
	return NULL;
}

static void table_remove(struct icicle_alloc *a)
{
	struct icicle_worker *w = a->w;
	struct icicle_alloc **p = &w->table[client_hash(&a->client, w->tsize - 1)];

	for (; *p; p = &(*p)->hnext)
		if (*p == a) {
			*p = a->hnext;
			w->tcount--;
			break;
		}
	a->in_table = false;
}

static void wheel_unlink(struct icicle_alloc *a)
{
	if (!a->in_wheel)
		return;
	if (a->wprev)
		a->wprev->wnext = a->wnext;
	else
		a->w->wheel[a->wslot] = a->wnext;
	if (a->wnext)
		a->wnext->wprev = a->wprev;
	a->wnext = a->wprev = NULL;
	a->in_wheel = false;
}

/* Put a in the slot of loop time ms (rounded up to the next second). */
static void wheel_link(struct icicle_alloc *a, uint64_t ms)
{
	struct icicle_worker *w = a->w;
	uint64_t sec = (ms + 999) / 1000;

	wheel_unlink(a);
	if (sec < w->wheel_sec)
		sec = w->wheel_sec;
	if (sec - w->wheel_sec >= ICICLE_WHEEL_SLOTS)
		sec = w->wheel_sec + ICICLE_WHEEL_SLOTS - 1;
	a->wslot = (uint32_t)(sec % ICICLE_WHEEL_SLOTS);
	a->wnext = w->wheel[a->wslot];
	a->wprev = NULL;
	if (a->wnext)
		a->wnext->wprev = a;
	w->wheel[a->wslot] = a;
	a->in_wheel = true;
}

void icicle_alloc_reschedule(struct icicle_alloc *a)
{
	uint64_t due = a->expires;
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (a->perms[i].expires < due)
			due = a->perms[i].expires;
	for (i = 0; i < a->nchans; i++) {
		uint64_t e =
		    a->chans[i].live ? a->chans[i].expires : a->chans[i].expires + ICICLE_PERM_MS;
		if (e < due)
			due = e;
	}
	wheel_link(a, due);
}

void icicle_alloc_set_expiry(struct icicle_alloc *a, uint32_t seconds)
{
	a->lifetime = seconds;
	a->expires = uv_now(&a->w->loop) + (uint64_t)seconds * 1000;
	icicle_alloc_reschedule(a);
}

/* Drop expired permissions and channels, keeping counts and gauges right. */
static void sweep(struct icicle_alloc *a, uint64_t now)
{
	struct icicle_metrics *mt = &a->w->ic->metrics;
	size_t i = 0;

	while (i < a->nperms) {
		if (a->perms[i].expires <= now) {
			a->perms[i] = a->perms[--a->nperms];
			cm_metrics_gauge_add(mt->permissions, -1);
		} else {
			i++;
		}
	}
	i = 0;
	while (i < a->nchans) {
		struct icicle_chan *ch = &a->chans[i];

		if (ch->live && ch->expires <= now) {
			ch->live = false;
			cm_metrics_gauge_add(mt->channels, -1);
		}
		/* RFC 8656 12: neither number nor peer may be rebound for 5 minutes */
		if (!ch->live && ch->expires + ICICLE_PERM_MS <= now)
			a->chans[i] = a->chans[--a->nchans];
		else
			i++;
	}
}

void icicle_alloc_tick(struct icicle_worker *w)
{
	uint64_t now = uv_now(&w->loop), nowsec = now / 1000;
	unsigned budget = ICICLE_WHEEL_SLOTS;

	while (w->wheel_sec <= nowsec && budget-- > 0) {
		uint32_t slot = (uint32_t)(w->wheel_sec % ICICLE_WHEEL_SLOTS);
		struct icicle_alloc *a = w->wheel[slot], *next;

		/* Entries re-linked during the pass go to later slots, never this one. */
		w->wheel[slot] = NULL;
		for (; a; a = next) {
			next = a->wnext;
			a->wnext = a->wprev = NULL;
			a->in_wheel = false;
			if (a->expires <= now) {
				CM_LOGD("alloc", "allocation of %s expired", a->username);
				icicle_alloc_destroy(a);
				continue;
			}
			sweep(a, now);
			w->wheel_sec++;
			icicle_alloc_reschedule(a);
			w->wheel_sec--;
		}
		w->wheel_sec++;
	}
}

/* Put the bound socket fd (ownership handed over, closed on failure) into relay slot idx of a:
 * its advertised address, and polling in the worker's loop. */
static int relay_open(struct icicle_worker *w, struct icicle_alloc *a, int idx, int fd)
{
	const struct icicle_config *cfg = w->ic->cfg;
	struct icicle_relay_sock *r = &a->relay[idx];
	int af = idx == 0 ? AF_INET : AF_INET6;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != af) {
		rc = ss.ss_family != af ? -EAFNOSUPPORT : -errno;
		close(fd);
		return rc;
	}
	/* Advertised: the external address, else the bound one, else where the client came in. */
	r->adv = ss;
	{
		const char *ext = idx == 0 ? cfg->relay.external_ipv4 : cfg->relay.external_ipv6;
		uint8_t any[16] = {0}, ip[16];

		icicle_ip16((struct sockaddr *)&ss, ip);
		if (ext && *ext) {
			if (af == AF_INET)
				(void)inet_pton(AF_INET, ext,
				                &((struct sockaddr_in *)&r->adv)->sin_addr);
			else
				(void)inet_pton(AF_INET6, ext,
				                &((struct sockaddr_in6 *)&r->adv)->sin6_addr);
		} else if ((af == AF_INET && memcmp(ip + 12, any, 4) == 0) ||
		           (af == AF_INET6 && memcmp(ip, any, 16) == 0)) {
			const struct sockaddr_storage *l = &a->client.local;

			if (a->client.has_local && l->ss_family == af) {
				if (af == AF_INET)
					((struct sockaddr_in *)&r->adv)->sin_addr =
					    ((const struct sockaddr_in *)l)->sin_addr;
				else
					((struct sockaddr_in6 *)&r->adv)->sin6_addr =
					    ((const struct sockaddr_in6 *)l)->sin6_addr;
			}
		}
	}
	r->fd = fd;
	r->a = a;
	rc = uv_poll_init(&w->loop, &r->poll, fd);
	if (rc != 0) {
		close(fd);
		r->fd = -1;
		return rc;
	}
	r->poll.data = r;
	r->polling = true;
	w->handles++;
	return uv_poll_start(&r->poll, UV_READABLE, icicle_relay_poll_cb);
}

static void alloc_free(struct icicle_alloc *a)
{
	free(a->username);
	free(a->quota_key);
	free(a->perms);
	free(a->chans);
	memset(&a->keys, 0, sizeof(a->keys));
	free(a);
}

static void relay_closed(uv_handle_t *h)
{
	struct icicle_relay_sock *r = h->data;
	struct icicle_alloc *a = r->a;

	a->w->handles--;
	close(r->fd);
	r->fd = -1;
	if (--a->closing == 0)
		alloc_free(a);
}

/* Open the relay sockets rq asks for into a (not yet visible). */
static int relays_open(struct icicle_worker *w, struct icicle_alloc *a,
                       const struct icicle_alloc_req *rq)
{
	uint64_t now = uv_now(&w->loop);
	int i, rc, fd, next, af;

	if (rq->has_token) {
		rc = icicle_rsv_take(&w->ic->rsv, rq->token, now, &fd, &af);
		if (rc != 0)
			return rc;
		icicle_relay_set_df(fd, af, rq->dont_fragment);
		return relay_open(w, a, af == AF_INET ? 0 : 1, fd);
	}
	if (rq->reserve && rq->fam4 && rq->fam6)
		return -EINVAL; /* one reserved neighbour per allocation */
	for (i = 0; i < 2; i++) {
		if (!(i == 0 ? rq->fam4 : rq->fam6))
			continue;
		rc = icicle_relay_bind(w, i, rq->even, rq->reserve, rq->dont_fragment, &fd,
		                       rq->reserve ? &next : NULL);
		if (rc != 0)
			return rc;
		rc = relay_open(w, a, i, fd);
		if (rc == 0 && rq->reserve) {
			rc = icicle_rsv_add(&w->ic->rsv, a->quota_key, next,
			                    i == 0 ? AF_INET : AF_INET6, now, &a->rsv_token);
			a->has_rsv_token = rc == 0;
		}
		if (rc != 0) {
			if (rq->reserve && !a->has_rsv_token)
				close(next);
			return rc;
		}
	}
	return 0;
}

int icicle_alloc_create(struct icicle_worker *w, const struct icicle_client *c, const char *user,
                        const struct icicle_alloc_req *rq, struct icicle_alloc **out)
{
	const struct icicle_config *cfg = w->ic->cfg;
	const char *qkey = rq->quota_key ? rq->quota_key : user;
	struct icicle_user_count *uc = NULL;
	struct icicle_alloc *a;
	int rc, i;

	*out = NULL;
	rc = icicle_quota_alloc_take(&w->ic->quota, qkey, &uc);
	if (rc != 0)
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a) {
		icicle_quota_alloc_release(&w->ic->quota, qkey);
		return -ENOMEM;
	}
	a->w = w;
	a->quser = uc;
	a->client = *c;
	a->relay[0].fd = a->relay[1].fd = -1;
	a->username = strdup(user);
	a->quota_key = strdup(qkey);
	a->perms = calloc((size_t)cfg->quotas.permissions_per_allocation, sizeof(*a->perms));
	a->chans = calloc((size_t)cfg->quotas.channels_per_allocation, sizeof(*a->chans));
	if (!a->username || !a->quota_key || !a->perms || !a->chans) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = relays_open(w, a, rq);
	if (rc != 0)
		goto fail;
	icicle_bucket_init(&a->bw_up, cfg->quotas.bandwidth_per_allocation, uv_now(&w->loop));
	icicle_bucket_init(&a->bw_down, cfg->quotas.bandwidth_per_allocation, uv_now(&w->loop));
	if (c->tp == ICICLE_UDP) {
		size_t h;

		if (w->tcount >= w->tsize)
			table_grow(w);
		h = client_hash(c, w->tsize - 1);
		a->hnext = w->table[h];
		w->table[h] = a;
		w->tcount++;
		a->in_table = true;
	} else {
		icicle_conn_set_alloc(c->conn, a);
	}
	w->nallocs++;
	cm_metrics_gauge_add(w->ic->metrics.allocations, 1);
	*out = a;
	return 0;
fail:
	/* Nothing is visible yet: undo by hand. Relay sockets already polling need closing. */
	icicle_quota_alloc_release(&w->ic->quota, qkey);
	a->dead = true;
	for (i = 0; i < 2; i++)
		if (a->relay[i].polling) {
			a->closing++;
			uv_close((uv_handle_t *)&a->relay[i].poll, relay_closed);
		} else if (a->relay[i].fd >= 0) {
			close(a->relay[i].fd);
		}
	if (a->closing == 0)
		alloc_free(a);
	return rc;
}

void icicle_alloc_destroy(struct icicle_alloc *a)
{
	struct icicle_worker *w = a->w;
	struct icicle_metrics *mt = &w->ic->metrics;
	size_t i;
	int r;

	if (a->dead)
		return;
	a->dead = true;
	wheel_unlink(a);
	if (a->in_table)
		table_remove(a);
	else if (a->client.conn)
		icicle_conn_set_alloc(a->client.conn, NULL);
	icicle_quota_alloc_release(&w->ic->quota, a->quota_key);
	w->nallocs--;
	cm_metrics_gauge_add(mt->allocations, -1);
	cm_metrics_gauge_add(mt->permissions, -(double)a->nperms);
	for (i = 0; i < a->nchans; i++)
		if (a->chans[i].live)
			cm_metrics_gauge_add(mt->channels, -1);
	for (r = 0; r < 2; r++)
		if (a->relay[r].polling) {
			a->closing++;
			uv_close((uv_handle_t *)&a->relay[r].poll, relay_closed);
		}
	if (a->closing == 0)
		alloc_free(a);
}

void icicle_alloc_client_gone(struct icicle_worker *w, struct icicle_conn *conn)
{
	struct icicle_alloc *a = icicle_conn_alloc(conn);

	(void)w;
	if (a)
		icicle_alloc_destroy(a);
}

struct icicle_perm *icicle_perm_find(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (memcmp(a->perms[i].ip, ip, 16) == 0)
			return a->perms[i].expires > now ? &a->perms[i] : NULL;
	return NULL;
}

int icicle_perm_add(struct icicle_alloc *a, const uint8_t ip[16], uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (memcmp(a->perms[i].ip, ip, 16) == 0) {
			a->perms[i].expires = now + ICICLE_PERM_MS;
			return 0;
		}
	if (a->nperms >= (size_t)a->w->ic->cfg->quotas.permissions_per_allocation) {
		sweep(a, now);
		if (a->nperms >= (size_t)a->w->ic->cfg->quotas.permissions_per_allocation)
			return -EDQUOT;
	}
	memcpy(a->perms[a->nperms].ip, ip, 16);
	a->perms[a->nperms].expires = now + ICICLE_PERM_MS;
	a->nperms++;
	cm_metrics_gauge_add(a->w->ic->metrics.permissions, 1);
	return 0;
}

struct icicle_chan *icicle_chan_by_num(struct icicle_alloc *a, uint16_t num, uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		if (a->chans[i].num == num)
			return a->chans[i].live && a->chans[i].expires > now ? &a->chans[i] : NULL;
	return NULL;
}

struct icicle_chan *icicle_chan_by_peer(struct icicle_alloc *a, const struct sockaddr *peer,
                                        uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		if (icicle_addr_equal((const struct sockaddr *)&a->chans[i].peer, peer))
			return a->chans[i].live && a->chans[i].expires > now ? &a->chans[i] : NULL;
	return NULL;
}

int icicle_chan_bind(struct icicle_alloc *a, uint16_t num, const struct sockaddr *peer,
                     uint64_t now)
{
	size_t i, cap = (size_t)a->w->ic->cfg->quotas.channels_per_allocation;

	for (i = 0; i < a->nchans; i++) {
		struct icicle_chan *ch = &a->chans[i];
		bool same_num = ch->num == num;
		bool same_peer = icicle_addr_equal((const struct sockaddr *)&ch->peer, peer);

		if (same_num && same_peer) {
			if (!ch->live) {
				ch->live = true;
				cm_metrics_gauge_add(a->w->ic->metrics.channels, 1);
			}
			ch->expires = now + ICICLE_CHAN_MS;
			return 0;
		}
		if (same_num || same_peer)
			return -EINVAL;
	}
	if (a->nchans >= cap) {
		sweep(a, now);
		if (a->nchans >= cap)
			return -EDQUOT;
	}
	a->chans[a->nchans].num = num;
	a->chans[a->nchans].live = true;
	memset(&a->chans[a->nchans].peer, 0, sizeof(a->chans[a->nchans].peer));
	memcpy(&a->chans[a->nchans].peer, peer,
	       peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                  : sizeof(struct sockaddr_in6));
	a->chans[a->nchans].expires = now + ICICLE_CHAN_MS;
	a->nchans++;
	cm_metrics_gauge_add(a->w->ic->metrics.channels, 1);
	return 0;
}
