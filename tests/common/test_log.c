/* test_log.c - cm_log: levels, text and JSON lines, journald prefixes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/log.h"

/* Log into a pipe at level info and return what was written (a static buffer). */
static char *capture(void (*emit)(void))
{
	int fds[2];
	static char out[8192];
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	cm_log_setup("testd", CM_LOG_INFO, CM_LOG_TEXT, fds[1]);
	emit();
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void emit_levels(void)
{
	CM_LOGE("mod", "error %d", 1);
	CM_LOGW("mod", "warn %s", "two");
	CM_LOGI("mod", "info");
	CM_LOGD("mod", "debug hidden");
}

static void test_levels_text(void **state)
{
	char *out;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	out = capture(emit_levels);
	assert_non_null(strstr(out, "error testd/mod: error 1\n"));
	assert_non_null(strstr(out, "warn  testd/mod: warn two\n"));
	assert_non_null(strstr(out, "info  testd/mod: info\n"));
	assert_null(strstr(out, "debug hidden"));
	/* ISO 8601 UTC timestamp first */
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
}

static int pipe_fd;

static void emit_json(void)
{
	cm_log_setup("testd", CM_LOG_DEBUG, CM_LOG_JSON, pipe_fd);
	CM_LOGD("m\"x", "quote \" backslash \\ newline \n done");
}

static void test_json(void **state)
{
	int fds[2];
	char out[4096];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pipe_fd = fds[1];
	emit_json();
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(
	    strstr(out, "\"level\":\"debug\",\"daemon\":\"testd\",\"module\":\"m\\\"x\""));
	assert_non_null(strstr(out, "\"msg\":\"quote \\\" backslash \\\\ newline \\n done\"}\n"));
	assert_memory_equal(out, "{\"ts\":\"", 7);
}

static void emit_journal(void)
{
	setenv("JOURNAL_STREAM", "8:1234", 1);
	cm_log_setup("testd", CM_LOG_INFO, CM_LOG_TEXT, pipe_fd);
	CM_LOGW("net", "careful");
	CM_LOGI("net", "fine");
	unsetenv("JOURNAL_STREAM");
}

static void test_journal_prefix(void **state)
{
	int fds[2];
	char out[4096];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pipe_fd = fds[1];
	emit_journal();
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "<4>net: careful\n<6>net: fine\n");
}

static void test_level_names(void **state)
{
	enum cm_log_level l;

	(void)state;
	assert_int_equal(cm_log_level_parse("debug", &l), 0);
	assert_int_equal(l, CM_LOG_DEBUG);
	assert_int_equal(cm_log_level_parse("warn", &l), 0);
	assert_int_equal(l, CM_LOG_WARN);
	assert_int_equal(cm_log_level_parse("loud", &l), -EINVAL);
	assert_string_equal(cm_log_level_name(CM_LOG_ERROR), "error");
	cm_log_set_level(CM_LOG_ERROR);
	assert_false(cm_log_enabled(CM_LOG_WARN));
	assert_true(cm_log_enabled(CM_LOG_ERROR));
	cm_log_set_level(CM_LOG_DEBUG);
	assert_true(cm_log_enabled(CM_LOG_DEBUG));
}

/* At most one line per interval; the next one says how many were held back. */
static void test_limit(void **state)
{
	struct cm_log_limit l = {0};
	uint64_t held = 99;

	(void)state;
	assert_true(cm_log_limit_pass(&l, 1000, 10000, &held));
	assert_int_equal(held, 0);
	for (int i = 0; i < 500; i++)
		assert_false(cm_log_limit_pass(&l, 1000 + (uint64_t)i * 10, 10000, &held));
	assert_false(cm_log_limit_pass(&l, 10999, 10000, NULL));
	assert_true(cm_log_limit_pass(&l, 11000, 10000, &held));
	assert_int_equal(held, 501);
	assert_false(cm_log_limit_pass(&l, 11001, 10000, &held));
	/* a long quiet time: the next line passes at once and held nothing back but the one */
	assert_true(cm_log_limit_pass(&l, 100000, 10000, &held));
	assert_int_equal(held, 1);
	assert_true(cm_log_limit_pass(&l, 200000, 10000, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_text),    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_journal_prefix), cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
