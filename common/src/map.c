/* map.c - the intrusive hash table of cm/map.h and SipHash-2-4. */
#include "cm/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/crypto.h"

#define MAP_MIN_BUCKETS 16

/* --- SipHash-2-4 (Aumasson and Bernstein, 2012) ----------------------------------------------- */

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = rotl(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = rotl(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = rotl(v2, 32);                                                                 \
	} while (0)

uint64_t cm_hash(const uint64_t key[2], const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + (len & ~(size_t)7);
	uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
	uint64_t b = (uint64_t)len << 56, m;

	for (; p != end; p += 8) {
		m = load_le64(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	switch (len & 7) {
	case 7:
		b |= (uint64_t)p[6] << 48;
		/* fall through */
	case 6:
		b |= (uint64_t)p[5] << 40;
		/* fall through */
	case 5:
		b |= (uint64_t)p[4] << 32;
		/* fall through */
	case 4:
		b |= (uint64_t)p[3] << 24;
		/* fall through */
	case 3:
		b |= (uint64_t)p[2] << 16;
		/* fall through */
	case 2:
		b |= (uint64_t)p[1] << 8;
		/* fall through */
	case 1:
		b |= (uint64_t)p[0];
		break;
	default:
		break;
	}
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* --- the table -------------------------------------------------------------------------------- */

int cm_map_init(struct cm_map *m, size_t hint)
{
	size_t n = MAP_MIN_BUCKETS;

	memset(m, 0, sizeof(*m));
	while (n < hint && n < ((size_t)1 << 30))
		n <<= 1;
	if (cm_crypto_random(m->key, sizeof(m->key)) != 0)
		return -EIO;
	m->buckets = calloc(n, sizeof(*m->buckets));
	if (!m->buckets)
		return -ENOMEM;
	m->mask = m->min_mask = n - 1;
	return 0;
}

void cm_map_close(struct cm_map *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->mask = m->min_mask = 0;
	m->count = 0;
}

/* Move every node to a table of nbuckets; keep the old one when there is no memory. */
static void resize(struct cm_map *m, size_t nbuckets)
{
	struct cm_map_node **nb = calloc(nbuckets, sizeof(*nb));
	size_t i;

	if (!nb)
		return;
	for (i = 0; i <= m->mask; i++) {
		struct cm_map_node *n = m->buckets[i], *next;

		for (; n; n = next) {
			struct cm_map_node **slot = &nb[n->hash & (nbuckets - 1)];

			next = n->next;
			n->next = *slot;
			*slot = n;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->mask = nbuckets - 1;
}

void cm_map_insert(struct cm_map *m, struct cm_map_node *n, uint64_t hash)
{
	struct cm_map_node **slot;

	if (m->count > m->mask && m->mask < ((size_t)1 << 30))
		resize(m, (m->mask + 1) * 2);
	/* Give memory back after a burst: at an eighth of the buckets, halve them. Done here and
	 * not on removal, so that a walk may remove what it visits. */
	else if (m->mask > m->min_mask && m->count < (m->mask + 1) / 8)
		resize(m, (m->mask + 1) / 2);
	n->hash = hash;
	slot = &m->buckets[hash & m->mask];
	n->next = *slot;
	*slot = n;
	m->count++;
}

void cm_map_remove(struct cm_map *m, struct cm_map_node *n)
{
	struct cm_map_node **p = &m->buckets[n->hash & m->mask];

	for (; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			n->next = NULL;
			m->count--;
			break;
		}
	}
}

struct cm_map_node *cm_map_first(const struct cm_map *m, uint64_t hash)
{
	struct cm_map_node *n = m->buckets[hash & m->mask];

	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct cm_map_node *cm_map_next(const struct cm_map_node *n)
{
	uint64_t hash = n->hash;

	for (n = n->next; n && n->hash != hash; n = n->next)
		;
	return (struct cm_map_node *)n;
}

static struct cm_map_node *iter_advance(struct cm_map_iter *it, struct cm_map_node *from)
{
	const struct cm_map *m = it->m;

	if (from)
		return from;
	while (++it->bucket <= m->mask)
		if (m->buckets[it->bucket])
			return m->buckets[it->bucket];
	return NULL;
}

void cm_map_iter_init(struct cm_map_iter *it, const struct cm_map *m)
{
	it->m = m;
	it->bucket = 0;
	it->next = m->buckets ? m->buckets[0] : NULL;
	if (m->buckets && !it->next)
		it->next = iter_advance(it, NULL);
}

struct cm_map_node *cm_map_iter_next(struct cm_map_iter *it)
{
	struct cm_map_node *n = it->next;

	if (n)
		it->next = iter_advance(it, n->next);
	return n;
}
