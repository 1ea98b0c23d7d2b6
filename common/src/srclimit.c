/* srclimit.c - connections counted per source address (cm/srclimit.h). */
#include "cm/srclimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/crypto.h"

#define FIRST_BUCKETS 64

/* A source in IPv6 form: IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 with the rest zero. The two
 * never meet: a /64 key has zeros where the IPv4 form has 0xffff. */
struct src_key {
	uint8_t b[16];
};

struct src_entry {
	struct src_entry *next;
	struct src_key key;
	unsigned n;
};

struct cm_srclimit {
	pthread_mutex_t lock;
	unsigned max;              /* per source; 0: nothing is counted */
	struct src_entry **bucket; /* owned, nbuckets chains of owned entries */
	size_t nbuckets;           /* a power of two */
	size_t nsources;
	uint64_t seed;
};

/* false for families that are not counted */
static bool make_key(const struct sockaddr *sa, struct src_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->b[10] = k->b[11] = 0xff;
		memcpy(k->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			memcpy(k->b, a->s6_addr, 16);
		else
			memcpy(k->b, a->s6_addr, 8);
		return true;
	}
	return false;
}

static size_t key_hash(const struct cm_srclimit *t, const struct src_key *k)
{
	uint64_t h = t->seed ^ 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(k->b); i++)
		h = (h ^ k->b[i]) * 1099511628211ull;
	/* spread the high bits down: the bucket index takes the low ones */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h & (t->nbuckets - 1);
}

static struct src_entry **find(struct cm_srclimit *t, const struct src_key *k)
{
	struct src_entry **p = &t->bucket[key_hash(t, k)];

	while (*p && memcmp((*p)->key.b, k->b, sizeof(k->b)) != 0)
		p = &(*p)->next;
	return p;
}

/* Double the buckets when the chains grow long; a failure only leaves them long. */
static void grow(struct cm_srclimit *t)
{
	size_t n = t->nbuckets * 2, old = t->nbuckets;
	struct src_entry **b = calloc(n, sizeof(*b)), **ob = t->bucket;

	if (!b)
		return;
	t->bucket = b;
	t->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		struct src_entry *e = ob[i], *next;

		for (; e; e = next) {
			size_t h = key_hash(t, &e->key);

			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(ob);
}

int cm_srclimit_alloc(struct cm_srclimit **out, unsigned max_per_source)
{
	struct cm_srclimit *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->max = max_per_source;
	t->nbuckets = FIRST_BUCKETS;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	if (!t->bucket) {
		free(t);
		return -ENOMEM;
	}
	/* without randomness the table still works; only its chains become predictable */
	if (cm_crypto_random(&t->seed, sizeof(t->seed)) != 0)
		t->seed = (uint64_t)(uintptr_t)t;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void cm_srclimit_free(struct cm_srclimit *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct src_entry *e = t->bucket[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->bucket);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int cm_srclimit_take(struct cm_srclimit *t, const struct sockaddr *sa)
{
	struct src_entry **p, *e;
	struct src_key k;
	int r = 0;

	if (t->max == 0 || !make_key(sa, &k))
		return 0;
	pthread_mutex_lock(&t->lock);
	p = find(t, &k);
	e = *p;
	if (e && e->n >= t->max) {
		r = -EDQUOT;
		goto out;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		e->key = k;
		*p = e;
		if (++t->nsources > t->nbuckets)
			grow(t);
	}
	e->n++;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

void cm_srclimit_release(struct cm_srclimit *t, const struct sockaddr *sa)
{
	struct src_entry **p, *e;
	struct src_key k;

	if (t->max == 0 || !make_key(sa, &k))
		return;
	pthread_mutex_lock(&t->lock);
	p = find(t, &k);
	e = *p;
	if (e && --e->n == 0) {
		*p = e->next;
		free(e);
		t->nsources--;
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned cm_srclimit_count(struct cm_srclimit *t, const struct sockaddr *sa)
{
	struct src_entry *e;
	struct src_key k;
	unsigned n;

	if (t->max == 0 || !make_key(sa, &k))
		return 0;
	pthread_mutex_lock(&t->lock);
	e = *find(t, &k);
	n = e ? e->n : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t cm_srclimit_sources(struct cm_srclimit *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->nsources;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void cm_srclimit_format(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	struct src_key k;

	if (len == 0)
		return;
	if (!make_key(sa, &k)) {
		snprintf(out, len, "?");
		return;
	}
	if (k.b[10] == 0xff && k.b[11] == 0xff) {
		inet_ntop(AF_INET, k.b + 12, ip, sizeof(ip));
		snprintf(out, len, "%s", ip);
	} else {
		inet_ntop(AF_INET6, k.b, ip, sizeof(ip));
		snprintf(out, len, "%s/64", ip);
	}
}
