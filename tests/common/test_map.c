/* test_map.c - cm/map.h: SipHash-2-4 against the reference vectors, lookups with collisions,
 * growth and shrinking, removal during a walk, allocation failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cm/list.h"
#include "cm/map.h"
#include "tests/support/alloc.h"

/* The SipHash paper's appendix A: key 00..0f, messages 00, 00 01, ... of length 0..63; the
 * outputs for a few lengths, as 64-bit little-endian numbers. */
static void test_siphash_vectors(void **state)
{
	static const struct {
		size_t len;
		uint64_t out;
	} v[] = {
	    {0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull},  {7, 0xab0200f58b01d137ull},
	    {8, 0x93f5f5799a932462ull}, {15, 0xa129ca6149be45e5ull}, {63, 0x958a324ceb064572ull},
	};
	uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
	unsigned char msg[64];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_true(cm_hash(key, msg, v[i].len) == v[i].out);
}

struct ent {
	char key[16];
	struct cm_map_node node;
};

static struct ent *find(struct cm_map *m, const char *key)
{
	uint64_t h = cm_map_hash(m, key, strlen(key));

	for (struct cm_map_node *n = cm_map_first(m, h); n; n = cm_map_next(n)) {
		struct ent *e = cm_list_entry(n, struct ent, node);

		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static void test_insert_find_remove(void **state)
{
	enum { N = 5000 };
	struct cm_map m;
	struct ent *e = calloc(N, sizeof(*e));
	size_t before;

	(void)state;
	assert_non_null(e);
	assert_int_equal(cm_map_init(&m, 0), 0);
	before = m.mask;
	for (int i = 0; i < N; i++) {
		snprintf(e[i].key, sizeof(e[i].key), "k%d", i);
		cm_map_insert(&m, &e[i].node, cm_map_hash(&m, e[i].key, strlen(e[i].key)));
	}
	assert_int_equal(cm_map_count(&m), N);
	assert_true(m.mask + 1 >= N); /* it grew: load at most one */
	for (int i = 0; i < N; i++)
		assert_ptr_equal(find(&m, e[i].key), &e[i]);
	assert_null(find(&m, "absent"));
	for (int i = 0; i < N; i += 2)
		cm_map_remove(&m, &e[i].node);
	for (int i = 0; i < N; i++)
		assert_true((find(&m, e[i].key) != NULL) == (i % 2 == 1));
	for (int i = 1; i < N; i += 2)
		cm_map_remove(&m, &e[i].node);
	assert_int_equal(cm_map_count(&m), 0);
	/* memory comes back on the next insertions */
	for (int i = 0; i < 40; i++)
		cm_map_insert(&m, &e[i].node, cm_map_hash(&m, e[i].key, strlen(e[i].key)));
	assert_true(m.mask < 1024);
	assert_true(m.mask >= before);
	for (int i = 0; i < 40; i++)
		assert_ptr_equal(find(&m, e[i].key), &e[i]);
	cm_map_close(&m);
	free(e);
}

/* Equal hashes (a forced collision) are told apart by the caller's key comparison. */
static void test_same_hash(void **state)
{
	struct cm_map m;
	struct ent a = {.key = "a"}, b = {.key = "b"}, c = {.key = "c"};
	int seen = 0;

	(void)state;
	assert_int_equal(cm_map_init(&m, 4), 0);
	cm_map_insert(&m, &a.node, 42);
	cm_map_insert(&m, &b.node, 42);
	cm_map_insert(&m, &c.node, 42 + 16); /* same bucket, another hash */
	for (struct cm_map_node *n = cm_map_first(&m, 42); n; n = cm_map_next(n))
		seen |= n == &a.node ? 1 : n == &b.node ? 2 : 4;
	assert_int_equal(seen, 3);
	cm_map_remove(&m, &a.node);
	assert_ptr_equal(cm_map_first(&m, 42), &b.node);
	assert_null(cm_map_next(&b.node));
	cm_map_close(&m);
}

static void test_walk_and_remove(void **state)
{
	enum { N = 300 };
	struct cm_map m;
	struct ent e[N];
	struct cm_map_iter it;
	struct cm_map_node *n;
	int visited = 0;

	(void)state;
	assert_int_equal(cm_map_init(&m, 0), 0);
	for (int i = 0; i < N; i++) {
		snprintf(e[i].key, sizeof(e[i].key), "w%d", i);
		cm_map_insert(&m, &e[i].node, cm_map_hash(&m, e[i].key, strlen(e[i].key)));
	}
	cm_map_iter_init(&it, &m);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		cm_map_remove(&m, n);
		visited++;
	}
	assert_int_equal(visited, N);
	assert_int_equal(cm_map_count(&m), 0);
	cm_map_close(&m);
	/* an empty table walks to nothing */
	assert_int_equal(cm_map_init(&m, 0), 0);
	cm_map_iter_init(&it, &m);
	assert_null(cm_map_iter_next(&it));
	cm_map_close(&m);
}

/* Each table has its own key: the same key hashes differently in two tables. */
static void test_keys_differ(void **state)
{
	struct cm_map a, b;

	(void)state;
	assert_int_equal(cm_map_init(&a, 0), 0);
	assert_int_equal(cm_map_init(&b, 0), 0);
	assert_true(cm_map_hash(&a, "x", 1) != cm_map_hash(&b, "x", 1));
	cm_map_close(&a);
	cm_map_close(&b);
}

/* Growth that cannot allocate keeps the table working with longer chains. */
static void test_grow_without_memory(void **state)
{
	enum { N = 100 };
	struct cm_map m;
	struct ent e[N];

	(void)state;
	test_alloc_fail_nth(1);
	assert_int_equal(cm_map_init(&m, 0), -ENOMEM);
	test_alloc_reset();
	assert_int_equal(cm_map_init(&m, 0), 0);
	test_alloc_fail_nth(1);
	for (int i = 0; i < N; i++) {
		snprintf(e[i].key, sizeof(e[i].key), "g%d", i);
		cm_map_insert(&m, &e[i].node, cm_map_hash(&m, e[i].key, strlen(e[i].key)));
	}
	assert_true(test_alloc_failed());
	test_alloc_reset();
	for (int i = 0; i < N; i++)
		assert_ptr_equal(find(&m, e[i].key), &e[i]);
	cm_map_close(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_siphash_vectors), cmocka_unit_test(test_insert_find_remove),
	    cmocka_unit_test(test_same_hash),       cmocka_unit_test(test_walk_and_remove),
	    cmocka_unit_test(test_keys_differ),     cmocka_unit_test(test_grow_without_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
