/* test_rsv.c - relay port reservations (icicle/src/rsv.c): random tokens, one use each, expiry
 * after 30 s, the total and per-user caps, and sockets closed whatever happens. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "icicle/src/rsv.h"

static int sock(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	return fd;
}

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void test_add_take(void **state)
{
	struct icicle_rsv r;
	uint64_t t1 = 0, t2 = 0;
	int fd1 = sock(), fd2 = sock(), fd, af;

	(void)state;
	assert_int_equal(icicle_rsv_init(&r, 8, 0), 0);
	assert_int_equal(icicle_rsv_add(&r, "alice", fd1, AF_INET, 1000, &t1), 0);
	assert_int_equal(icicle_rsv_add(&r, "alice", fd2, AF_INET6, 1000, &t2), 0);
	/* random, not a counter */
	assert_true(t1 != t2);
	assert_true(t2 != t1 + 1);
	assert_int_equal(icicle_rsv_take(&r, t1 ^ 0x100, 1000, &fd, &af), -ENOENT);
	assert_int_equal(icicle_rsv_take(&r, t2, 1000, &fd, &af), 0);
	assert_int_equal(fd, fd2);
	assert_int_equal(af, AF_INET6);
	/* once only */
	assert_int_equal(icicle_rsv_take(&r, t2, 1000, &fd, &af), -ENOENT);
	close(fd2);
	assert_int_equal(icicle_rsv_count(&r), 1);
	icicle_rsv_close(&r); /* closes what it still holds */
	assert_false(is_open(fd1));
}

static void test_expiry(void **state)
{
	struct icicle_rsv r;
	uint64_t t = 0;
	int fd1 = sock(), fd2 = sock(), fd, af;

	(void)state;
	assert_int_equal(icicle_rsv_init(&r, 8, 0), 0);
	assert_int_equal(icicle_rsv_add(&r, "u", fd1, AF_INET, 1000, &t), 0);
	assert_int_equal(icicle_rsv_expire(&r, 1000 + ICICLE_RSV_MS - 1), 0);
	assert_true(is_open(fd1));
	assert_int_equal(icicle_rsv_expire(&r, 1000 + ICICLE_RSV_MS), 1);
	assert_false(is_open(fd1));
	/* expired when taken, even if no sweep ran */
	assert_int_equal(icicle_rsv_add(&r, "u", fd2, AF_INET, 5000, &t), 0);
	assert_int_equal(icicle_rsv_take(&r, t, 5000 + ICICLE_RSV_MS, &fd, &af), -ENOENT);
	assert_false(is_open(fd2));
	icicle_rsv_close(&r);
}

static void test_caps(void **state)
{
	struct icicle_rsv r;
	uint64_t t = 0;
	int fds[5], i;

	(void)state;
	for (i = 0; i < 5; i++)
		fds[i] = sock();
	assert_int_equal(icicle_rsv_init(&r, 3, 2), 0);
	assert_int_equal(icicle_rsv_add(&r, "alice", fds[0], AF_INET, 0, &t), 0);
	assert_int_equal(icicle_rsv_add(&r, "alice", fds[1], AF_INET, 0, &t), 0);
	/* the user's limit; the socket stays the caller's */
	assert_int_equal(icicle_rsv_add(&r, "alice", fds[2], AF_INET, 0, &t), -EDQUOT);
	assert_true(is_open(fds[2]));
	assert_int_equal(icicle_rsv_add(&r, "bob", fds[2], AF_INET, 0, &t), 0);
	/* the table's limit */
	assert_int_equal(icicle_rsv_add(&r, "carol", fds[3], AF_INET, 0, &t), -EUSERS);
	assert_true(is_open(fds[3]));
	/* expired entries make room */
	assert_int_equal(icicle_rsv_add(&r, "carol", fds[3], AF_INET, ICICLE_RSV_MS, &t), 0);
	close(fds[4]);
	icicle_rsv_close(&r);
	for (i = 0; i < 4; i++)
		assert_false(is_open(fds[i]));
}

/* Many reservations at once: each found by its token, counted by its user, and expired in the
 * order they were made. */
static void test_many(void **state)
{
	struct icicle_rsv r;
	uint64_t tokens[300];
	int fds[300], fd, af, i;
	char user[16];

	(void)state;
	assert_int_equal(icicle_rsv_init(&r, 300, 2), 0);
	for (i = 0; i < 300; i++) {
		fds[i] = sock();
		snprintf(user, sizeof(user), "u%d", i / 2);
		assert_int_equal(icicle_rsv_add(&r, user, fds[i], AF_INET, (uint64_t)i, &tokens[i]),
		                 0);
	}
	assert_int_equal(icicle_rsv_count(&r), 300);
	/* the table is full */
	fd = sock();
	assert_int_equal(icicle_rsv_add(&r, "u200", fd, AF_INET, 300, &tokens[0]), -EUSERS);
	close(fd);
	for (i = 0; i < 300; i += 3) {
		assert_int_equal(icicle_rsv_take(&r, tokens[i], 300, &fd, &af), 0);
		assert_int_equal(fd, fds[i]);
		close(fd);
	}
	/* room in the table again, but not for u2 (4 and 5 are still held) */
	fd = sock();
	assert_int_equal(icicle_rsv_add(&r, "u2", fd, AF_INET, 300, &tokens[0]), -EDQUOT);
	close(fd);
	/* made at 0..299 ms: at ICICLE_RSV_MS + 149 the first 150 are due (less those taken) */
	assert_int_equal(icicle_rsv_expire(&r, ICICLE_RSV_MS + 149), 100);
	for (i = 0; i < 150; i++)
		if (i % 3 != 0)
			assert_false(is_open(fds[i]));
	assert_true(is_open(fds[151]));
	assert_int_equal(icicle_rsv_count(&r), 100);
	icicle_rsv_close(&r);
	for (i = 150; i < 300; i++)
		if (i % 3 != 0)
			assert_false(is_open(fds[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_take),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
