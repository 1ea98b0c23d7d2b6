/* quota.c - token buckets, allocation caps, unauthenticated rate limit (see quota.h). */
#include "quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "cm/crypto.h"
#include "cm/list.h"

void icicle_bucket_init(struct icicle_bucket *b, uint64_t burst, uint64_t now_ms)
{
	b->milli = burst * 1000;
	b->last_ms = now_ms;
}

bool icicle_bucket_take(struct icicle_bucket *b, uint64_t rate, uint64_t burst, uint64_t cost,
                        uint64_t now_ms)
{
	uint64_t cap = burst * 1000, elapsed;

	if (rate == 0)
		return true;
	if (now_ms > b->last_ms) {
		elapsed = now_ms - b->last_ms;
		/* rate tokens/s = rate milli-tokens/ms; a long idle time just fills the bucket */
		if (elapsed >= cap / rate + 1)
			b->milli = cap;
		else
			b->milli =
			    b->milli + elapsed * rate > cap ? cap : b->milli + elapsed * rate;
		b->last_ms = now_ms;
	}
	if (b->milli < cost * 1000)
		return false;
	b->milli -= cost * 1000;
	return true;
}

const char *icicle_quota_key(const char *username, bool rest)
{
	/* the expiry is digits up to the first colon (icicle_auth_rest_expiry() checked that) */
	return rest ? username + strcspn(username, ":") : username;
}

struct icicle_user_count {
	struct cm_map_node node; /* in q->users */
	uint64_t n;
	pthread_mutex_t bw_lock;    /* the buckets are used by every worker */
	struct icicle_bucket bw[2]; /* enum icicle_dir */
	char name[];                /* NUL-terminated */
};

static void user_free(struct icicle_user_count *u)
{
	pthread_mutex_destroy(&u->bw_lock);
	free(u);
}

int icicle_quota_init(struct icicle_quota *q, uint64_t max_user, uint64_t max_total,
                      uint64_t user_bw)
{
	int rc;

	memset(q, 0, sizeof(*q));
	rc = cm_map_init(&q->users, 64);
	if (rc != 0)
		return rc;
	q->max_user = max_user;
	q->max_total = max_total;
	q->user_bw = user_bw;
	pthread_mutex_init(&q->lock, NULL);
	q->ready = true;
	return 0;
}

void icicle_quota_close(struct icicle_quota *q)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	if (!q->ready)
		return;
	cm_map_iter_init(&it, &q->users);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		cm_map_remove(&q->users, n);
		user_free(cm_list_entry(n, struct icicle_user_count, node));
	}
	cm_map_close(&q->users);
	pthread_mutex_destroy(&q->lock);
	q->ready = false;
}

/* The entry of user, or NULL; *hash gets the user's hash either way. Under q->lock. */
static struct icicle_user_count *find(struct icicle_quota *q, const char *user, uint64_t *hash)
{
	struct cm_map_node *n;

	*hash = cm_map_hash(&q->users, user, strlen(user));
	for (n = cm_map_first(&q->users, *hash); n; n = cm_map_next(n)) {
		struct icicle_user_count *u = cm_list_entry(n, struct icicle_user_count, node);

		if (strcmp(u->name, user) == 0)
			return u;
	}
	return NULL;
}

int icicle_quota_alloc_take(struct icicle_quota *q, const char *user, struct icicle_user_count **uc)
{
	struct icicle_user_count *u;
	uint64_t h;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->max_total && q->total >= q->max_total) {
		rc = -EUSERS;
		goto out;
	}
	u = find(q, user, &h);
	if (u && q->max_user && u->n >= q->max_user) {
		rc = -EDQUOT;
		goto out;
	}
	if (!u) {
		size_t len = strlen(user);

		u = malloc(sizeof(*u) + len + 1);
		if (!u) {
			rc = -ENOMEM;
			goto out;
		}
		u->n = 0;
		pthread_mutex_init(&u->bw_lock, NULL);
		/* full: the first datagram finds a long idle time behind it */
		icicle_bucket_init(&u->bw[ICICLE_UP], q->user_bw, 0);
		icicle_bucket_init(&u->bw[ICICLE_DOWN], q->user_bw, 0);
		memcpy(u->name, user, len + 1);
		cm_map_insert(&q->users, &u->node, h);
	}
	u->n++;
	q->total++;
	if (uc)
		*uc = u;
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void icicle_quota_alloc_release(struct icicle_quota *q, const char *user)
{
	struct icicle_user_count *u;
	uint64_t h;

	pthread_mutex_lock(&q->lock);
	u = find(q, user, &h);
	if (u) {
		if (q->total > 0)
			q->total--;
		if (--u->n == 0) {
			cm_map_remove(&q->users, &u->node);
			user_free(u);
		}
	}
	pthread_mutex_unlock(&q->lock);
}

bool icicle_quota_user_bw_take(struct icicle_quota *q, struct icicle_user_count *uc,
                               enum icicle_dir dir, uint64_t bytes, uint64_t now_ms)
{
	bool ok;

	if (q->user_bw == 0 || !uc)
		return true;
	pthread_mutex_lock(&uc->bw_lock);
	ok = icicle_bucket_take(&uc->bw[dir], q->user_bw, q->user_bw, bytes, now_ms);
	pthread_mutex_unlock(&uc->bw_lock);
	return ok;
}

uint64_t icicle_quota_user_count(struct icicle_quota *q, const char *user)
{
	struct icicle_user_count *u;
	uint64_t n, h;

	pthread_mutex_lock(&q->lock);
	u = find(q, user, &h);
	n = u ? u->n : 0;
	pthread_mutex_unlock(&q->lock);
	return n;
}

int icicle_ratelimit_init(struct icicle_ratelimit *r, uint64_t rate, uint64_t burst)
{
	memset(r, 0, sizeof(*r));
	r->rate = rate;
	r->burst = burst;
	if (rate == 0)
		return 0;
	r->slots = calloc(ICICLE_RATE_SLOTS, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	/* A random key per table, so that nobody can aim many sources at one slot on purpose. */
	if (cm_crypto_random(r->key, sizeof(r->key)) != 0) {
		icicle_ratelimit_close(r);
		return -EIO;
	}
	return 0;
}

void icicle_ratelimit_close(struct icicle_ratelimit *r)
{
	free(r->slots);
	r->slots = NULL;
}

bool icicle_ratelimit_take(struct icicle_ratelimit *r, const struct sockaddr *src, uint64_t now_ms)
{
	struct icicle_rate_slot *s;
	uint8_t a[16] = {0};

	if (r->rate == 0 || !r->slots)
		return true;
	if (src->sa_family == AF_INET) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)src)->sin_addr, 4);
	} else if (src->sa_family == AF_INET6) {
		/* One IPv6 customer usually has a /64: count it as one source. */
		memcpy(a, &((const struct sockaddr_in6 *)src)->sin6_addr, 8);
	}
	s = &r->slots[cm_hash(r->key, a, sizeof(a)) % ICICLE_RATE_SLOTS];
	/* Sources that share a slot share its budget: letting one evict the other would let an
	 * attacker reset a victim's bucket by alternating with a colliding address. */
	if (s->b.last_ms == 0)
		icicle_bucket_init(&s->b, r->burst, now_ms ? now_ms : 1);
	return icicle_bucket_take(&s->b, r->rate, r->burst, 1, now_ms);
}
