/* test_sd.c - cm_sd: the datagrams systemd receives, and silence without a socket. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/sd.h"

struct fixture {
	int fd;
	char path[108];
};

static int setup(void **state)
{
	static struct fixture f;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};

	snprintf(f.path, sizeof(f.path), "/tmp/test-sd-%d.sock", (int)getpid());
	unlink(f.path);
	f.fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(f.fd >= 0);
	strcpy(sa.sun_path, f.path);
	assert_int_equal(bind(f.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(f.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", f.path, 1);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	unlink(f->path);
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

static void expect_msg(struct fixture *f, const char *want)
{
	char buf[512];
	ssize_t n = recv(f->fd, buf, sizeof(buf) - 1, 0);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_messages(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cm_sd_ready("serving"), 0);
	expect_msg(f, "STATUS=serving");
	expect_msg(f, "READY=1");
	assert_int_equal(cm_sd_ready(NULL), 0);
	expect_msg(f, "READY=1");
	assert_int_equal(cm_sd_reloading(), 0);
	expect_msg(f, "RELOADING=1");
	assert_int_equal(cm_sd_status("%d allocations", 7), 0);
	expect_msg(f, "STATUS=7 allocations");
	assert_int_equal(cm_sd_watchdog_ping(), 0);
	expect_msg(f, "WATCHDOG=1");
	assert_int_equal(cm_sd_stopping("draining"), 0);
	expect_msg(f, "STOPPING=1");
	expect_msg(f, "STATUS=draining");
}

static void test_watchdog_interval(void **state)
{
	uint64_t usec = 1;

	(void)state;
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(cm_sd_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 0);
	setenv("WATCHDOG_USEC", "3000000", 1);
	assert_int_equal(cm_sd_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 3000000);
	/* a watchdog meant for another process is not ours */
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(cm_sd_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 0);
	setenv("WATCHDOG_USEC", "garbage", 1);
	unsetenv("WATCHDOG_PID");
	assert_true(cm_sd_watchdog_usec(&usec) < 0);
	assert_int_equal(usec, 0);
	unsetenv("WATCHDOG_USEC");
}

static void test_no_socket_is_silent(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(cm_sd_ready("x"), 0);
	assert_int_equal(cm_sd_watchdog_ping(), 0);
	/* a socket path that does not exist is an error worth returning */
	setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock", 1);
	assert_true(cm_sd_ready(NULL) < 0);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
	    cmocka_unit_test(test_watchdog_interval),
	    cmocka_unit_test(test_no_socket_is_silent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
