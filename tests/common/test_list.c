/* test_list.c - cm/list.h: insertion, removal (twice), moving, walking while removing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm/list.h"

struct item {
	int v;
	struct cm_list link;
};

static int values(struct cm_list *h, int *out, int max)
{
	struct cm_list *p;
	int n = 0;

	cm_list_foreach(p, h)
	{
		if (n < max)
			out[n] = cm_list_entry(p, struct item, link)->v;
		n++;
	}
	return n;
}

static void test_insert_remove(void **state)
{
	struct cm_list h = CM_LIST_INIT(h);
	struct item it[4];
	int v[8];

	(void)state;
	assert_true(cm_list_empty(&h));
	assert_null(cm_list_first(&h));
	assert_null(cm_list_pop(&h));
	for (int i = 0; i < 4; i++) {
		it[i].v = i;
		cm_list_init(&it[i].link);
		assert_false(cm_list_linked(&it[i].link));
	}
	cm_list_insert_tail(&h, &it[1].link);
	cm_list_insert_tail(&h, &it[2].link);
	cm_list_insert_head(&h, &it[0].link);
	cm_list_insert_after(&it[2].link, &it[3].link);
	assert_int_equal(values(&h, v, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(v[i], i);
	assert_ptr_equal(cm_list_last(&h), &it[3].link);
	assert_ptr_equal(cm_list_next(&h, &it[1].link), &it[2].link);
	assert_null(cm_list_next(&h, &it[3].link));
	cm_list_remove(&it[2].link);
	cm_list_remove(&it[2].link); /* twice is harmless */
	assert_false(cm_list_linked(&it[2].link));
	assert_int_equal(values(&h, v, 8), 3);
	assert_int_equal(v[2], 3);
	assert_ptr_equal(cm_list_pop(&h), &it[0].link);
	assert_int_equal(values(&h, v, 8), 2);
}

static void test_move_and_safe_walk(void **state)
{
	struct cm_list a, b, *p, *tmp;
	struct item it[6];
	int v[8], n;

	(void)state;
	cm_list_init(&a);
	cm_list_init(&b);
	cm_list_move(&a, &b); /* empty into empty */
	assert_true(cm_list_empty(&a));
	for (int i = 0; i < 6; i++) {
		it[i].v = i;
		cm_list_insert_tail(i < 3 ? &a : &b, &it[i].link);
	}
	cm_list_move(&a, &b);
	assert_true(cm_list_empty(&b));
	n = values(&a, v, 8);
	assert_int_equal(n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(v[i], i);
	/* remove the odd ones while walking */
	cm_list_foreach_safe(p, tmp, &a)
	{
		if (cm_list_entry(p, struct item, link)->v % 2)
			cm_list_remove(p);
	}
	n = values(&a, v, 8);
	assert_int_equal(n, 3);
	assert_int_equal(v[0], 0);
	assert_int_equal(v[1], 2);
	assert_int_equal(v[2], 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_insert_remove),
	    cmocka_unit_test(test_move_and_safe_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
