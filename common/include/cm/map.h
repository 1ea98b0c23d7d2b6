/* cm/map.h - the suite's one hash table and its one hash function.
 *
 * The table is intrusive and chained: elements embed a struct cm_map_node and stay where the
 * caller put them; the table only links them. Keys are the caller's business: a lookup walks
 * the nodes of one hash value and the caller compares keys itself, so one table serves strings,
 * addresses and 5-tuples alike without callbacks or copies.
 *
 *     uint64_t h = cm_map_hash(&m, name, len);
 *     for (struct cm_map_node *n = cm_map_first(&m, h); n; n = cm_map_next(n)) {
 *             struct user *u = cm_list_entry(n, struct user, node);
 *             if (strcmp(u->name, name) == 0)
 *                     return u;
 *     }
 *
 * The hash is SipHash-2-4 under a random key drawn per table: keys chosen by a remote peer
 * (addresses, user names, JIDs) cannot be made to collide on purpose to turn lookups into list
 * walks. On insertion the table doubles when it holds more elements than buckets, and halves
 * when it has fallen below an eighth (removal never moves nodes); when memory for growing is
 * short it keeps the longer chains, so insertion never fails. Single-threaded: the caller
 * serialises access.
 */
#ifndef CM_MAP_H
#define CM_MAP_H

#include <stddef.h>
#include <stdint.h>

struct cm_map_node {
	struct cm_map_node *next; /* in its bucket */
	uint64_t hash;
};

struct cm_map {
	struct cm_map_node **buckets; /* owned array; the nodes are the caller's */
	size_t mask;                  /* buckets - 1 (a power of two) */
	size_t min_mask;              /* never shrink below the initial size */
	size_t count;
	uint64_t key[2];
};

/* SipHash-2-4 of data under a 128-bit key. */
uint64_t cm_hash(const uint64_t key[2], const void *data, size_t len);

/* An empty table sized for about hint elements, with a fresh random key. 0, -ENOMEM, -EIO (no
 * randomness). */
int cm_map_init(struct cm_map *m, size_t hint);

/* Release the bucket array; the elements are untouched (the caller frees them, before or
 * after). The table may be initialised again. */
void cm_map_close(struct cm_map *m);

/* The hash of a key for this table. */
static inline uint64_t cm_map_hash(const struct cm_map *m, const void *data, size_t len)
{
	return cm_hash(m->key, data, len);
}

/* Link n under hash (a value from cm_map_hash()). n must not be in a table. */
void cm_map_insert(struct cm_map *m, struct cm_map_node *n, uint64_t hash);

/* Unlink n, which must be in m. */
void cm_map_remove(struct cm_map *m, struct cm_map_node *n);

/* The first node with this hash, then the next ones; NULL at the end. */
struct cm_map_node *cm_map_first(const struct cm_map *m, uint64_t hash);
struct cm_map_node *cm_map_next(const struct cm_map_node *n);

static inline size_t cm_map_count(const struct cm_map *m)
{
	return m->count;
}

/* Visit every node. The node returned last may be removed (and freed) before the next call;
 * inserting during a walk, or removing other nodes, makes the walk miss or repeat nodes. */
struct cm_map_iter {
	const struct cm_map *m;
	size_t bucket;
	struct cm_map_node *next;
};

void cm_map_iter_init(struct cm_map_iter *it, const struct cm_map *m);
struct cm_map_node *cm_map_iter_next(struct cm_map_iter *it);

#endif
