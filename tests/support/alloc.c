/* tests/support/alloc.c - allocation fault injection (see alloc.h). */
#include "tests/support/alloc.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Test binaries are single-threaded where injection is used; plain statics are enough. */
static unsigned long fail_at;
static unsigned long count;
static int fired;

void test_alloc_fail_nth(unsigned long nth)
{
	fail_at = nth;
	count = 0;
	fired = 0;
}

unsigned long test_alloc_count(void)
{
	return count;
}

int test_alloc_failed(void)
{
	return fired;
}

void test_alloc_reset(void)
{
	test_alloc_fail_nth(0);
}

static int should_fail(void)
{
	count++;
	if (fail_at && count == fail_at) {
		fired = 1;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return should_fail() ? NULL : __real_strndup(s, n);
}

long test_alloc_sweep(int (*scenario)(void *arg), void *arg, unsigned long max)
{
	for (unsigned long n = 1; n <= max; n++) {
		int rc;

		test_alloc_fail_nth(n);
		rc = scenario(arg);
		if (!fired) {
			test_alloc_reset();
			assert_int_equal(rc, 0);
			return (long)n;
		}
		test_alloc_reset();
		if (rc == 0)
			fail_msg("allocation %lu failed but the scenario reported success", n);
	}
	test_alloc_reset();
	return -1;
}
