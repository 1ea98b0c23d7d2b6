/* test_buf.c - cm_buf: growth, caps, formatting, JSON escaping, all-or-nothing appends. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "tests/support/alloc.h"

static void test_append_and_grow(void **state)
{
	struct cm_buf b;
	char big[1000];

	(void)state;
	cm_buf_init(&b, 0);
	assert_null(b.data);
	assert_int_equal(cm_buf_puts(&b, "abc"), 0);
	assert_string_equal(b.data, "abc");
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 100; i++)
		assert_int_equal(cm_buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 3 + 100 * sizeof(big));
	assert_int_equal(b.data[b.len], '\0');
	cm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	cm_buf_free(&b);
	cm_buf_free(&b); /* twice is harmless */
	cm_buf_free(NULL);
}

static void test_limit(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 8);
	assert_int_equal(cm_buf_puts(&b, "12345678"), 0);
	assert_int_equal(cm_buf_puts(&b, "9"), -ENOBUFS);
	assert_string_equal(b.data, "12345678");
	cm_buf_reset(&b);
	assert_int_equal(cm_buf_printf(&b, "%d-%s", 42, "too long"), -ENOBUFS);
	assert_int_equal(b.len, 0);
	cm_buf_free(&b);
}

static void test_printf(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_buf_printf(&b, "%s=%d", "a", 1), 0);
	assert_int_equal(cm_buf_printf(&b, ",%05.1f", 2.25), 0);
	assert_string_equal(b.data, "a=1,002.2");
	cm_buf_free(&b);
}

static void test_json_escape(void **state)
{
	struct cm_buf b;
	const char in[] = "q\"b\\n\nt\tc\x01\x7f\xc3\xa9";

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_buf_json_escape(&b, in, sizeof(in) - 1), 0);
	assert_string_equal(b.data, "q\\\"b\\\\n\\nt\\tc\\u0001\\u007f\xc3\xa9");
	cm_buf_free(&b);

	/* all or nothing under a cap */
	cm_buf_init(&b, 6);
	assert_int_equal(cm_buf_puts(&b, "ab"), 0);
	assert_int_equal(cm_buf_json_escape(&b, "\"\"\"", 3), -ENOBUFS);
	assert_string_equal(b.data, "ab");
	cm_buf_free(&b);
}

static void test_steal(void **state)
{
	struct cm_buf b;
	char *p;

	(void)state;
	cm_buf_init(&b, 0);
	assert_null(cm_buf_steal(&b));
	cm_buf_puts(&b, "mine");
	p = cm_buf_steal(&b);
	assert_string_equal(p, "mine");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
}

static int grow_scenario(void *arg)
{
	struct cm_buf b;
	int err = 0;

	(void)arg;
	cm_buf_init(&b, 0);
	for (int i = 0; i < 50 && !err; i++)
		err = cm_buf_printf(&b, "line %d of some length\n", i);
	if (!err && b.len == 0)
		err = -EINVAL;
	cm_buf_free(&b);
	return err;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(grow_scenario, NULL, 100) > 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_grow), cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_printf),          cmocka_unit_test(test_json_escape),
	    cmocka_unit_test(test_steal),           cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
