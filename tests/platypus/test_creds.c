/* test_creds.c - an app's refused credentials (platypus/src/creds.c): the backoff between
 * checks, one refusal logged and counted however many requests report it, the check, the
 * recovery, a reload. (The providers' use of it runs against the mocks in
 * tests/integration/test_platypus_credentials.py.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "platypus/src/creds.h"
#include "tests/support/metrics.h"

#define GAUGE "platypus_app_credentials_ok{service=\"fcm\",app=\"android\"} "

static void test_backoff(void **state)
{
	(void)state;
	/* 1 s doubling to 60 s, drawn in [d/2, d] */
	assert_int_equal(pp_creds_backoff_ms(1, 0), 500);
	assert_int_equal(pp_creds_backoff_ms(1, 500), 1000);
	assert_int_equal(pp_creds_backoff_ms(1, 501), 500);
	assert_int_equal(pp_creds_backoff_ms(2, 0), 1000);
	assert_int_equal(pp_creds_backoff_ms(3, 0), 2000);
	assert_int_equal(pp_creds_backoff_ms(7, 30000), 60000);
	assert_int_equal(pp_creds_backoff_ms(8, 0), 30000);
	assert_int_equal(pp_creds_backoff_ms(1000, 30000), 60000);
	for (uint32_t rnd = 0; rnd < 100000; rnd += 997) {
		uint64_t d = pp_creds_backoff_ms(4, rnd);

		assert_true(d >= 4000 && d <= 8000);
	}
}

static void test_refused_check_accepted(void **state)
{
	struct cm_metrics *m;
	struct pp_creds c;
	struct pp_result r;
	uv_loop_t loop;
	uint64_t at;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(pp_creds_init(&c, &loop, "fcm", "android", m), 0);
	assert_int_equal(test_metrics_has(m, GAUGE "1"), 0);
	assert_false(pp_creds_check_due(&c)); /* nothing to check */

	/* The first refusal: refused, counted once, a check after ~1 s. */
	pp_creds_refused(&c, "401 UNAUTHENTICATED", false);
	assert_true(c.refused);
	assert_int_equal(c.failed, 1);
	assert_int_equal(test_metrics_has(m, GAUGE "0"), 0);
	at = c.check_at;
	assert_true(at >= uv_now(&loop) + 500 && at <= uv_now(&loop) + 1000);
	assert_false(pp_creds_check_due(&c));
	/* Refusals of requests made before change nothing. */
	pp_creds_refused(&c, "401 UNAUTHENTICATED", false);
	pp_creds_refused(&c, "401 UNAUTHENTICATED", true); /* no check under way */
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.check_at, at);

	/* What a notification failed at once is told. */
	pp_creds_fail_result(&c, &r);
	assert_int_equal(r.outcome, PP_OUT_REJECTED);
	assert_int_equal(r.cause, PP_CAUSE_AUTH);
	assert_memory_equal(r.reason, "401 UNAUTHENTICATED: FCM refuses our credentials; not sent",
	                    58);

	/* The check: one at a time; refused again, it backs off further. */
	c.check_at = 0;
	assert_true(pp_creds_check_due(&c));
	assert_false(pp_creds_check_due(&c));
	pp_creds_refused(&c, "401 UNAUTHENTICATED", true);
	assert_int_equal(c.failed, 2);
	assert_false(c.checking);
	assert_true(c.check_at >= uv_now(&loop) + 1000);

	/* A check without a verdict (a 5xx, its deadline): the same backoff again. */
	c.check_at = 0;
	assert_true(pp_creds_check_due(&c));
	pp_creds_check_ended(&c);
	assert_int_equal(c.failed, 2);
	assert_false(pp_creds_check_due(&c));

	/* Accepted: back to normal. */
	c.check_at = 0;
	assert_true(pp_creds_check_due(&c));
	pp_creds_accepted(&c);
	assert_false(c.refused);
	assert_false(c.checking);
	assert_int_equal(c.failed, 0);
	assert_int_equal(test_metrics_has(m, GAUGE "1"), 0);

	/* New credentials loaded while refused: tried at once. */
	pp_creds_refused(&c, "token endpoint 400: invalid_grant", false);
	assert_true(c.refused);
	pp_creds_reset(&c);
	assert_false(c.refused);
	assert_int_equal(test_metrics_has(m, GAUGE "1"), 0);

	cm_metrics_free(m);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_refused_check_accepted),
	};

	cm_log_setup("test_creds", CM_LOG_WARN, CM_LOG_TEXT, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
