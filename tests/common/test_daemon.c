/* test_daemon.c - cm_daemon: the life of a daemon driven through a fake spec: start, SIGHUP,
 * SIGTERM with a drain, drain timeout, start failure, configuration errors, command line. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/daemon.h"

struct fake_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout;
	long long answer;
};

CM_DAEMON_ADMIN_SCHEMA(fake_admin_schema, "127.0.0.1:0");

static const struct cm_cfg_field fake_fields[] = {
    CM_DAEMON_BASE_FIELDS(struct fake_config, fake_admin_schema),
    {.key = "answer",
     .type = CM_CFG_INT,
     .offset = offsetof(struct fake_config, answer),
     .def = "42",
     .min = 0,
     .max = 100,
     .doc = "a test value"},
};

static const struct cm_cfg_schema fake_schema = {
    .name = "fake",
    .size = sizeof(struct fake_config),
    .fields = fake_fields,
    .nfields = sizeof(fake_fields) / sizeof(fake_fields[0]),
};

/* What the fake daemon saw; reset by each test. */
static struct {
	int started, reloads, stops, frees, closes;
	long long answer_at_start, answer_at_reload;
	int fail_start;      /* start() returns -EADDRINUSE */
	int never_drain;     /* stop() never calls cm_daemon_stopped() */
	int signals[4];      /* raised one per timer tick, 0 ends the list */
	const char *rewrite; /* written over the config file before a SIGHUP is raised */
	int next;
	uv_timer_t tick, drain;
	struct cm_daemon *d;
} fake;

static void on_drained(uv_timer_t *t)
{
	(void)t;
	uv_close((uv_handle_t *)&fake.drain, NULL);
	cm_daemon_stopped(fake.d);
}

static void write_config(const char *text);

static void on_tick(uv_timer_t *t)
{
	if (fake.signals[fake.next] == SIGHUP && fake.rewrite)
		write_config(fake.rewrite);
	if (fake.signals[fake.next]) {
		raise(fake.signals[fake.next++]);
		return;
	}
	uv_timer_stop(t);
}

static int fake_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct fake_config *cfg = cfgp;

	fake.started++;
	fake.d = d;
	fake.answer_at_start = cfg->answer;
	*state = &fake;
	assert_non_null(cm_daemon_loop(d));
	assert_non_null(cm_daemon_metrics(d));
	if (fake.fail_start)
		return -EADDRINUSE;
	uv_timer_init(cm_daemon_loop(d), &fake.tick);
	uv_timer_start(&fake.tick, on_tick, 20, 20);
	return 0;
}

static int fake_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	(void)d;
	assert_ptr_equal(state, &fake);
	fake.reloads++;
	fake.answer_at_reload = ((const struct fake_config *)newcfg)->answer;
	return 0;
}

static void fake_stop(struct cm_daemon *d, void *state)
{
	assert_ptr_equal(state, &fake);
	fake.stops++;
	if (fake.never_drain)
		return; /* keep ticking: a test may raise a second signal */
	uv_close((uv_handle_t *)&fake.tick, NULL);
	/* Pretend some work takes a moment to finish. */
	uv_timer_init(cm_daemon_loop(d), &fake.drain);
	uv_timer_start(&fake.drain, on_drained, 30, 0);
}

static void fake_free(void *state)
{
	assert_ptr_equal(state, &fake);
	fake.frees++;
}

/* Close what start() opened and say so at once: the handle's close callback is still to come,
 * and the framework must run the loop for it (LeakSanitizer reports the loop's memory if it
 * does not). */
static void fake_close_at_once(struct cm_daemon *d, void *state, void (*done)(struct cm_daemon *d))
{
	assert_ptr_equal(state, &fake);
	fake.closes++;
	if (!uv_is_closing((uv_handle_t *)&fake.tick))
		uv_close((uv_handle_t *)&fake.tick, NULL);
	done(d);
}

static const struct cm_daemon_spec fake_spec = {
    .name = "faked",
    .summary = "a daemon that exists only in this test",
    .schema = &fake_schema,
    .log_offset = offsetof(struct fake_config, log),
    .admin_offset = offsetof(struct fake_config, admin),
    .drain_offset = offsetof(struct fake_config, shutdown_timeout),
    .start = fake_start,
    .reload = fake_reload,
    .stop = fake_stop,
    .free = fake_free,
};

static char config_path[64];

static void write_config(const char *text)
{
	FILE *f;

	snprintf(config_path, sizeof(config_path), "/tmp/test-daemon-%d.yaml", (int)getpid());
	f = fopen(config_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int run(int argc, const char **argv)
{
	optind = 0; /* glibc: rescan from scratch */
	return cm_daemon_main(&fake_spec, argc, (char **)argv);
}

static int run_spec(const struct cm_daemon_spec *spec, int argc, const char **argv)
{
	optind = 0;
	return cm_daemon_main(spec, argc, (char **)argv);
}

static void reset(void)
{
	memset(&fake, 0, sizeof(fake));
}

static void test_start_reload_stop(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};

	(void)state;
	reset();
	write_config("log:\n  level: error\nanswer: 7\n");
	fake.signals[0] = SIGHUP;
	fake.signals[1] = SIGTERM;
	assert_int_equal(run(3, argv), 0);
	assert_int_equal(fake.started, 1);
	assert_int_equal(fake.answer_at_start, 7);
	assert_int_equal(fake.reloads, 1);
	assert_int_equal(fake.answer_at_reload, 7);
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.frees, 1);
	unlink(config_path);
}

static void test_reload_with_errors_keeps_running(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};

	(void)state;
	reset();
	write_config("log:\n  level: error\n");
	/* The file turns bad after start; SIGHUP must not reach reload() and the daemon goes on. */
	fake.rewrite = "answer: [not, a, number]\n";
	fake.signals[0] = SIGHUP;
	fake.signals[1] = SIGTERM;
	assert_int_equal(run(3, argv), 0);
	assert_int_equal(fake.reloads, 0);
	assert_int_equal(fake.stops, 1);
	unlink(config_path);
}

static void test_drain_timeout(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};

	(void)state;
	reset();
	write_config("log:\n  level: error\nshutdown_timeout: 100ms\n");
	fake.never_drain = 1;
	fake.signals[0] = SIGTERM;
	assert_int_equal(run(3, argv), 0);
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.frees, 1);
	unlink(config_path);
}

static void test_second_signal_exits_at_once(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};

	(void)state;
	reset();
	write_config("log:\n  level: error\nshutdown_timeout: 1h\n");
	fake.never_drain = 1;
	fake.signals[0] = SIGTERM;
	fake.signals[1] = SIGINT;
	assert_int_equal(run(3, argv), 0);
	assert_int_equal(fake.stops, 1);
	unlink(config_path);
}

static void test_start_failure(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};

	(void)state;
	reset();
	write_config("log:\n  level: error\n");
	fake.fail_start = 1;
	assert_int_equal(run(3, argv), 1);
	assert_int_equal(fake.started, 1);
	assert_int_equal(fake.stops, 0);
	assert_int_equal(fake.frees, 1);
	unlink(config_path);
}

/* A close() that calls done from within: nothing is left for the loop but close callbacks, and
 * they run before the loop is closed. */
static void test_close_done_at_once(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};
	struct cm_daemon_spec spec = fake_spec;

	(void)state;
	reset();
	spec.close = fake_close_at_once;
	write_config("log:\n  level: error\n");
	fake.signals[0] = SIGTERM;
	assert_int_equal(run_spec(&spec, 3, argv), 0);
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.closes, 1);
	assert_int_equal(fake.frees, 1);
	unlink(config_path);
}

static void test_config_errors(void **state)
{
	const char *argv[] = {"faked", "-c", config_path};
	const char *check[] = {"faked", "-c", config_path, "--check-config"};
	const char *missing[] = {"faked", "-c", "/nonexistent/faked.yaml"};

	(void)state;
	reset();
	write_config("answer: 101\n");
	assert_int_equal(run(3, argv), 2);
	assert_int_equal(fake.started, 0);
	assert_int_equal(run(4, check), 2);
	write_config("answer: 100\n");
	assert_int_equal(run(4, check), 0);
	assert_int_equal(fake.started, 0);
	assert_int_equal(run(3, missing), 2);
	unlink(config_path);
}

static void test_command_line(void **state)
{
	const char *version[] = {"faked", "--version"};
	const char *help[] = {"faked", "-h"};
	const char *bad[] = {"faked", "--bogus"};
	const char *stray[] = {"faked", "extra"};
	const char *defaults[] = {"faked", "--check-config"};

	(void)state;
	reset();
	assert_int_equal(run(2, version), 0);
	assert_int_equal(run(2, help), 0);
	assert_int_equal(run(2, bad), 2);
	assert_int_equal(run(2, stray), 2);
	assert_int_equal(run(2, defaults), 0);
	assert_int_equal(fake.started, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_reload_stop),
	    cmocka_unit_test(test_reload_with_errors_keeps_running),
	    cmocka_unit_test(test_drain_timeout),
	    cmocka_unit_test(test_second_signal_exits_at_once),
	    cmocka_unit_test(test_start_failure),
	    cmocka_unit_test(test_close_done_at_once),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_command_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
