/* alloc.c - the allocations of one worker (see alloc.h): the 5-tuple table, relay sockets,
 * permissions, channels, and lifetimes on the loop's timer wheel. */
#include "alloc_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "icicle.h"
#include "rsv.h"

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

static uint64_t now_ms(const struct icicle_alloc_table *t)
{
	return uv_now(t->loop->uv);
}

/* --- the table of UDP clients -----------------------------------------------------------------
 * The key is the client's address and port, as short as the family allows (the hash is paid per
 * relayed datagram); the listener socket is compared, not hashed: a client talking to two of a
 * worker's addresses is rare, and its two entries then share a chain.
 */

static uint64_t client_hash(const struct icicle_alloc_table *t, const struct icicle_client *c)
{
	uint8_t key[18];
	size_t len;

	if (c->addr.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&c->addr;

		memcpy(key, &in->sin_addr, 4);
		memcpy(key + 4, &in->sin_port, 2);
		len = 6;
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->addr;

		memcpy(key, &in6->sin6_addr, 16);
		memcpy(key + 16, &in6->sin6_port, 2);
		len = 18;
	}
	return cm_map_hash(&t->udp, key, len);
}

int icicle_alloc_table_init(struct icicle_alloc_table *t, struct cm_loop *l,
                            const struct icicle_alloc_table_config *cfg)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	t->loop = l;
	cm_list_init(&t->all);
	if (cm_crypto_random(&t->rng, sizeof(t->rng)) != 0 || t->rng == 0)
		t->rng = 0x6d2b79f5u;
	rc = cm_map_init(&t->udp, 1024);
	if (rc != 0)
		return rc;
	t->ready = true;
	return 0;
}

void icicle_alloc_table_close(struct icicle_alloc_table *t)
{
	struct cm_list *n;

	if (!t->ready)
		return;
	while ((n = cm_list_first(&t->all)) != NULL)
		icicle_alloc_destroy(cm_list_entry(n, struct icicle_alloc, link));
	cm_map_close(&t->udp);
	t->ready = false;
}

struct icicle_alloc *icicle_alloc_find(struct icicle_alloc_table *t, const struct icicle_client *c)
{
	struct cm_map_node *n;

	if (c->tp != ICICLE_UDP)
		return c->conn ? icicle_conn_alloc(c->conn) : NULL;
	for (n = cm_map_first(&t->udp, client_hash(t, c)); n; n = cm_map_next(n)) {
		struct icicle_alloc *a = cm_list_entry(n, struct icicle_alloc, node);

		if (a->client.udp == c->udp &&
		    icicle_addr_equal((const struct sockaddr *)&a->client.addr,
		                      (const struct sockaddr *)&c->addr))
			return a;
	}
	return NULL;
}

/* --- lifetimes --------------------------------------------------------------------------------
 */

/* Drop expired permissions and channels, keeping counts and gauges right. */
static void sweep(struct icicle_alloc *a, uint64_t now)
{
	const struct icicle_metrics *mt = a->t->cfg.mt;
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

static void on_timer(struct cm_loop_timer *lt)
{
	struct icicle_alloc *a = cm_list_entry(lt, struct icicle_alloc, timer);
	uint64_t now = now_ms(a->t);

	if (a->expires <= now) {
		CM_LOGD("alloc", "allocation of %s expired", a->username);
		icicle_alloc_destroy(a);
		return;
	}
	sweep(a, now);
	icicle_alloc_reschedule(a);
}

void icicle_alloc_reschedule(struct icicle_alloc *a)
{
	uint64_t due = a->expires, now = now_ms(a->t);
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
	cm_loop_timer_start(a->t->loop, &a->timer, due > now ? due - now : 0);
}

void icicle_alloc_set_expiry(struct icicle_alloc *a, uint32_t seconds)
{
	a->lifetime = seconds;
	a->expires = now_ms(a->t) + (uint64_t)seconds * 1000;
	icicle_alloc_reschedule(a);
}

/* --- relay sockets ----------------------------------------------------------------------------
 */

static void relay_poll_cb(uv_poll_t *h, int status, int events)
{
	struct icicle_relay_sock *r = h->data;
	struct icicle_alloc *a = r->a;

	(void)events;
	if (status < 0 || a->dead || !a->t->cfg.readable)
		return;
	a->t->cfg.readable(a, r == &a->relay[0] ? 0 : 1, a->t->cfg.arg);
}

/* Give dst the IP address of src (same family), keeping its port. */
static void set_ip(struct sockaddr_storage *dst, const struct sockaddr_storage *src)
{
	if (src->ss_family == AF_INET)
		((struct sockaddr_in *)dst)->sin_addr = ((const struct sockaddr_in *)src)->sin_addr;
	else
		((struct sockaddr_in6 *)dst)->sin6_addr =
		    ((const struct sockaddr_in6 *)src)->sin6_addr;
}

/* Put the bound socket fd (ownership handed over, closed on failure) into relay slot idx of a:
 * its advertised address, and polling in the worker's loop. */
static int relay_open(struct icicle_alloc_table *t, struct icicle_alloc *a, int idx, int fd)
{
	const struct sockaddr_storage *ext = &t->cfg.lim.external[idx];
	struct icicle_relay_sock *r = &a->relay[idx];
	int af = idx == 0 ? AF_INET : AF_INET6;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint8_t any[16] = {0}, ip[16];
	int rc;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != af) {
		rc = ss.ss_family != af ? -EAFNOSUPPORT : -errno;
		close(fd);
		return rc;
	}
	/* Advertised: the external address, else the bound one, else where the client came in. */
	r->adv = ss;
	icicle_ip16((struct sockaddr *)&ss, ip);
	if (ext->ss_family == af)
		set_ip(&r->adv, ext);
	else if ((af == AF_INET && memcmp(ip + 12, any, 4) == 0) ||
	         (af == AF_INET6 && memcmp(ip, any, 16) == 0))
		if (a->client.has_local && a->client.local.ss_family == af)
			set_ip(&r->adv, &a->client.local);
	r->fd = fd;
	r->a = a;
	rc = uv_poll_init(t->loop->uv, &r->poll, fd);
	if (rc != 0) {
		close(fd);
		r->fd = -1;
		return rc;
	}
	r->poll.data = r;
	r->polling = true;
	return uv_poll_start(&r->poll, UV_READABLE, relay_poll_cb);
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

	close(r->fd);
	r->fd = -1;
	if (--a->closing == 0)
		alloc_free(a);
}

/* Close what relay sockets a holds; its memory goes once the last close callback has run. */
static void relays_close(struct icicle_alloc *a)
{
	int i;

	for (i = 0; i < 2; i++)
		if (a->relay[i].polling) {
			a->closing++;
			uv_close((uv_handle_t *)&a->relay[i].poll, relay_closed);
		} else if (a->relay[i].fd >= 0) {
			close(a->relay[i].fd);
			a->relay[i].fd = -1;
		}
	if (a->closing == 0)
		alloc_free(a);
}

/* Open the relay sockets rq asks for into a (not yet visible). */
static int relays_open(struct icicle_alloc_table *t, struct icicle_alloc *a,
                       const struct icicle_alloc_req *rq)
{
	uint64_t now = now_ms(t);
	int i, rc, fd, next, af;

	if (rq->has_token) {
		rc = icicle_rsv_take(t->cfg.rsv, rq->token, now, &fd, &af);
		if (rc != 0)
			return rc;
		icicle_alloc__set_df(fd, af, rq->dont_fragment);
		return relay_open(t, a, af == AF_INET ? 0 : 1, fd);
	}
	if (rq->reserve && rq->fam4 && rq->fam6)
		return -EINVAL; /* one reserved neighbour per allocation */
	for (i = 0; i < 2; i++) {
		if (!(i == 0 ? rq->fam4 : rq->fam6))
			continue;
		rc = icicle_alloc__bind(t, i, rq->even, rq->reserve, rq->dont_fragment, &fd,
		                        rq->reserve ? &next : NULL);
		if (rc != 0)
			return rc;
		rc = relay_open(t, a, i, fd);
		if (rc == 0 && rq->reserve) {
			rc = icicle_rsv_add(t->cfg.rsv, a->quota_key, next,
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

/* --- life and death ---------------------------------------------------------------------------
 */

int icicle_alloc_create(struct icicle_alloc_table *t, const struct icicle_client *c,
                        const char *user, const struct icicle_alloc_req *rq,
                        struct icicle_alloc **out)
{
	const struct icicle_alloc_limits *lim = &t->cfg.lim;
	const char *qkey = rq->quota_key ? rq->quota_key : user;
	struct icicle_user_count *uc = NULL;
	struct icicle_alloc *a;
	uint64_t now = now_ms(t);
	int rc;

	*out = NULL;
	rc = icicle_quota_alloc_take(t->cfg.quota, qkey, &uc);
	if (rc != 0)
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a) {
		icicle_quota_alloc_release(t->cfg.quota, qkey);
		return -ENOMEM;
	}
	a->t = t;
	a->quser = uc;
	a->client = *c;
	a->relay[0].fd = a->relay[1].fd = -1;
	cm_list_init(&a->link);
	cm_loop_timer_init(&a->timer, on_timer);
	a->username = strdup(user);
	a->quota_key = strdup(qkey);
	a->perms = calloc(lim->perms, sizeof(*a->perms));
	a->chans = calloc(lim->chans, sizeof(*a->chans));
	if (!a->username || !a->quota_key || !a->perms || !a->chans) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = relays_open(t, a, rq);
	if (rc != 0)
		goto fail;
	if (rq->keys)
		a->keys = *rq->keys;
	if (rq->tid)
		memcpy(a->tid, rq->tid, sizeof(a->tid));
	a->rest_expiry = rq->rest_expiry;
	icicle_bucket_init(&a->bw[ICICLE_UP], lim->bandwidth, now);
	icicle_bucket_init(&a->bw[ICICLE_DOWN], lim->bandwidth, now);
	if (c->tp == ICICLE_UDP)
		cm_map_insert(&t->udp, &a->node, client_hash(t, c));
	else if (c->conn)
		icicle_conn_set_alloc(c->conn, a);
	cm_list_insert_tail(&t->all, &a->link);
	t->count++;
	cm_metrics_gauge_add(t->cfg.mt->allocations, 1);
	icicle_alloc_set_expiry(a, rq->lifetime);
	*out = a;
	return 0;
fail:
	/* Nothing is visible yet: undo by hand. Relay sockets already polling need closing. */
	icicle_quota_alloc_release(t->cfg.quota, qkey);
	a->dead = true;
	relays_close(a);
	return rc;
}

void icicle_alloc_destroy(struct icicle_alloc *a)
{
	struct icicle_alloc_table *t = a->t;
	const struct icicle_metrics *mt = t->cfg.mt;
	size_t i;

	if (a->dead)
		return;
	a->dead = true;
	cm_loop_timer_stop(t->loop, &a->timer);
	cm_list_remove(&a->link);
	if (a->client.tp == ICICLE_UDP)
		cm_map_remove(&t->udp, &a->node);
	else if (a->client.conn && icicle_conn_alloc(a->client.conn) == a)
		icicle_conn_set_alloc(a->client.conn, NULL);
	icicle_quota_alloc_release(t->cfg.quota, a->quota_key);
	t->count--;
	cm_metrics_gauge_add(mt->allocations, -1);
	cm_metrics_gauge_add(mt->permissions, -(double)a->nperms);
	for (i = 0; i < a->nchans; i++)
		if (a->chans[i].live)
			cm_metrics_gauge_add(mt->channels, -1);
	relays_close(a);
}

int icicle_alloc_bw_take(struct icicle_alloc *a, enum icicle_dir dir, uint64_t bytes,
                         uint64_t now_ms)
{
	uint64_t rate = a->t->cfg.lim.bandwidth;

	if (rate == 0 && a->t->cfg.quota->user_bw == 0)
		return 0; /* no limit configured: the usual case, once per relayed datagram */
	if (!icicle_bucket_take(&a->bw[dir], rate, rate, bytes, now_ms))
		return -EDQUOT;
	if (!icicle_quota_user_bw_take(a->t->cfg.quota, a->quser, dir, bytes, now_ms))
		return -EUSERS;
	return 0;
}

/* --- permissions and channels -----------------------------------------------------------------
 */

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
	size_t i, cap = a->t->cfg.lim.perms;

	for (i = 0; i < a->nperms; i++)
		if (memcmp(a->perms[i].ip, ip, 16) == 0) {
			a->perms[i].expires = now + ICICLE_PERM_MS;
			return 0;
		}
	if (a->nperms >= cap) {
		sweep(a, now);
		if (a->nperms >= cap)
			return -EDQUOT;
	}
	memcpy(a->perms[a->nperms].ip, ip, 16);
	a->perms[a->nperms].expires = now + ICICLE_PERM_MS;
	a->nperms++;
	cm_metrics_gauge_add(a->t->cfg.mt->permissions, 1);
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
	size_t i, cap = a->t->cfg.lim.chans;

	for (i = 0; i < a->nchans; i++) {
		struct icicle_chan *ch = &a->chans[i];
		bool same_num = ch->num == num;
		bool same_peer = icicle_addr_equal((const struct sockaddr *)&ch->peer, peer);

		if (same_num && same_peer) {
			if (!ch->live) {
				ch->live = true;
				cm_metrics_gauge_add(a->t->cfg.mt->channels, 1);
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
	cm_metrics_gauge_add(a->t->cfg.mt->channels, 1);
	return 0;
}
