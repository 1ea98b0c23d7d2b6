/* tests/support/alloc.h - allocation fault injection for unit tests.
 *
 * Unit-test binaries are linked with -Wl,--wrap for malloc, calloc, realloc, strdup and strndup,
 * so every allocation made by the suite's own code (not by libc or third-party libraries) goes
 * through here. Leaks are caught by LeakSanitizer (tests run under ASan); this file adds the
 * other half of the discipline: rerun a scenario failing the Nth allocation and accept only a
 * clean error.
 */
#ifndef TEST_ALLOC_H
#define TEST_ALLOC_H

#include <stddef.h>

/* Fail the nth allocation from now on (1 = the next one); 0 disables injection. */
void test_alloc_fail_nth(unsigned long nth);

/* Number of allocations made since the last test_alloc_fail_nth()/test_alloc_reset(). */
unsigned long test_alloc_count(void);

/* Nonzero once the armed failure has fired. */
int test_alloc_failed(void);

void test_alloc_reset(void);

/* Run scenario(arg) with n = 1, 2, ... failing the nth allocation, until a run completes without
 * hitting the failure (then returns the number of runs), or max runs are made (returns -1).
 * The scenario returns 0 on success or a negative errno; a run in which the injected failure
 * fired must return nonzero (a success there means the failure was swallowed) and the function
 * asserts it. It must clean up after itself either way. */
long test_alloc_sweep(int (*scenario)(void *arg), void *arg, unsigned long max);

#endif
