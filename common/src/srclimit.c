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

#include "cm/list.h"
#include "cm/map.h"

/* A source in IPv6 form: IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 with the rest zero. The two
 * never meet: a /64 key has zeros where the IPv4 form has 0xffff. */
struct src_key {
	uint8_t b[16];
};

struct src_entry {
	struct cm_map_node node;
	struct src_key key;
	unsigned n;
};

struct cm_srclimit {
	pthread_mutex_t lock;
	unsigned max;          /* per source; 0: nothing is counted */
	struct cm_map sources; /* of owned struct src_entry */
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

static struct src_entry *find(struct cm_srclimit *t, const struct src_key *k, uint64_t h)
{
	for (struct cm_map_node *n = cm_map_first(&t->sources, h); n; n = cm_map_next(n)) {
		struct src_entry *e = cm_list_entry(n, struct src_entry, node);

		if (memcmp(e->key.b, k->b, sizeof(k->b)) == 0)
			return e;
	}
	return NULL;
}

int cm_srclimit_alloc(struct cm_srclimit **out, unsigned max_per_source)
{
	struct cm_srclimit *t = calloc(1, sizeof(*t));
	int r;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->max = max_per_source;
	r = cm_map_init(&t->sources, 64);
	if (r) {
		free(t);
		return r == -EIO ? -ENOMEM : r;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void cm_srclimit_free(struct cm_srclimit *t)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	if (!t)
		return;
	cm_map_iter_init(&it, &t->sources);
	while ((n = cm_map_iter_next(&it)) != NULL)
		free(cm_list_entry(n, struct src_entry, node));
	cm_map_close(&t->sources);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int cm_srclimit_take(struct cm_srclimit *t, const struct sockaddr *sa)
{
	struct src_entry *e;
	struct src_key k;
	uint64_t h;
	int r = 0;

	if (t->max == 0 || !make_key(sa, &k))
		return 0;
	h = cm_map_hash(&t->sources, k.b, sizeof(k.b));
	pthread_mutex_lock(&t->lock);
	e = find(t, &k, h);
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
		cm_map_insert(&t->sources, &e->node, h);
	}
	e->n++;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

void cm_srclimit_release(struct cm_srclimit *t, const struct sockaddr *sa)
{
	struct src_entry *e;
	struct src_key k;
	uint64_t h;

	if (t->max == 0 || !make_key(sa, &k))
		return;
	h = cm_map_hash(&t->sources, k.b, sizeof(k.b));
	pthread_mutex_lock(&t->lock);
	e = find(t, &k, h);
	if (e && --e->n == 0) {
		cm_map_remove(&t->sources, &e->node);
		free(e);
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
	e = find(t, &k, cm_map_hash(&t->sources, k.b, sizeof(k.b)));
	n = e ? e->n : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t cm_srclimit_sources(struct cm_srclimit *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = cm_map_count(&t->sources);
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
