/* test_wheel.c - cm/wheel.h: due times rounded up, never early; moving and cancelling; timers
 * beyond one turn; re-arming from a callback; the budget; a long pause; the timeout hint. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm/wheel.h"

struct tm_ {
	struct cm_wheel_timer t;
	int fired;
	uint64_t at; /* when it fired */
	int rearm;   /* re-arm for "now" this many times */
	struct cm_wheel *w;
	struct tm_ *cancel; /* cancel this one when firing */
};

static uint64_t now_ms;

static void cb(struct cm_wheel_timer *t, void *arg)
{
	struct tm_ *x = cm_list_entry(t, struct tm_, t);

	(void)arg;
	x->fired++;
	x->at = now_ms;
	if (x->cancel)
		cm_wheel_del(x->w, &x->cancel->t);
	if (x->rearm-- > 0)
		cm_wheel_add(x->w, t, now_ms);
}

static void run_to(struct cm_wheel *w, uint64_t to)
{
	for (; now_ms <= to; now_ms++)
		cm_wheel_expire(w, now_ms, cb, NULL, SIZE_MAX);
	now_ms = to;
}

static void test_never_early(void **state)
{
	struct cm_wheel w;
	struct tm_ a = {0}, b = {0}, c = {0};

	(void)state;
	now_ms = 1000;
	assert_int_equal(cm_wheel_init(&w, 64, 10, now_ms), 0);
	cm_wheel_timer_init(&a.t);
	cm_wheel_timer_init(&b.t);
	cm_wheel_timer_init(&c.t);
	cm_wheel_add(&w, &a.t, 1005); /* rounds up to 1010 */
	cm_wheel_add(&w, &b.t, 1100);
	cm_wheel_add(&w, &c.t, 500); /* in the past: next tick */
	assert_int_equal(w.count, 3);
	run_to(&w, 1009);
	assert_int_equal(a.fired, 0);
	assert_int_equal(c.fired, 1);
	run_to(&w, 1010);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.at, 1010);
	run_to(&w, 1099);
	assert_int_equal(b.fired, 0);
	run_to(&w, 1100);
	assert_int_equal(b.fired, 1);
	assert_int_equal(w.count, 0);
	assert_false(cm_wheel_armed(&a.t));
	cm_wheel_close(&w);
}

static void test_move_cancel_and_rounds(void **state)
{
	struct cm_wheel w;
	struct tm_ a = {0}, b = {0}, far = {0};

	(void)state;
	now_ms = 0;
	assert_int_equal(cm_wheel_init(&w, 8, 10, now_ms), 0); /* one turn = 80 ms */
	cm_wheel_timer_init(&a.t);
	cm_wheel_timer_init(&b.t);
	cm_wheel_timer_init(&far.t);
	cm_wheel_add(&w, &a.t, 30);
	cm_wheel_add(&w, &a.t, 60); /* moved */
	cm_wheel_add(&w, &b.t, 40);
	cm_wheel_del(&w, &b.t);
	cm_wheel_del(&w, &b.t);         /* twice is harmless */
	cm_wheel_add(&w, &far.t, 1000); /* twelve turns later */
	assert_int_equal(w.count, 2);
	run_to(&w, 59);
	assert_int_equal(a.fired, 0);
	run_to(&w, 999);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(far.fired, 0);
	run_to(&w, 1000);
	assert_int_equal(far.fired, 1);
	cm_wheel_close(&w);
}

/* A callback that re-arms its timer for "now" fires once per expiry call, not in a loop; one
 * that cancels another timer due in the same slot stops it from firing. */
static void test_callbacks(void **state)
{
	struct cm_wheel w;
	struct tm_ a = {0}, b = {0}, c = {0};

	(void)state;
	now_ms = 0;
	assert_int_equal(cm_wheel_init(&w, 16, 10, now_ms), 0);
	a.w = b.w = c.w = &w;
	cm_wheel_timer_init(&a.t);
	cm_wheel_timer_init(&b.t);
	cm_wheel_timer_init(&c.t);
	a.rearm = 100;
	cm_wheel_add(&w, &a.t, 10);
	b.cancel = &c;
	cm_wheel_add(&w, &b.t, 20);
	cm_wheel_add(&w, &c.t, 20);
	assert_int_equal(cm_wheel_expire(&w, 10, cb, NULL, SIZE_MAX), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(cm_wheel_expire(&w, 10, cb, NULL, SIZE_MAX), 0);
	assert_int_equal(cm_wheel_expire(&w, 20, cb, NULL, SIZE_MAX), 2); /* a again, and b */
	assert_int_equal(b.fired, 1);
	assert_int_equal(c.fired, 0);
	assert_false(cm_wheel_armed(&c.t));
	a.rearm = 0;
	cm_wheel_del(&w, &a.t);
	assert_int_equal(w.count, 0);
	cm_wheel_close(&w);
}

static void test_budget_and_pause(void **state)
{
	enum { N = 50 };
	struct cm_wheel w;
	struct tm_ t[N];
	size_t fired = 0;

	(void)state;
	now_ms = 0;
	assert_int_equal(cm_wheel_init(&w, 32, 10, now_ms), 0);
	for (int i = 0; i < N; i++) {
		t[i] = (struct tm_){0};
		cm_wheel_timer_init(&t[i].t);
		cm_wheel_add(&w, &t[i].t, 10 + (uint64_t)i * 100); /* spread over many turns */
	}
	/* a long pause: everything due fires, ten at a time */
	now_ms = 100000;
	while (w.count > 0) {
		size_t n = cm_wheel_expire(&w, now_ms, cb, NULL, 10);

		assert_true(n <= 10);
		assert_true(n > 0);
		fired += n;
	}
	assert_int_equal(fired, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(t[i].fired, 1);
	cm_wheel_close(&w);
}

static void test_timeout_hint(void **state)
{
	struct cm_wheel w;
	struct tm_ a = {0};

	(void)state;
	assert_int_equal(cm_wheel_init(&w, 0, 10, 0), -EINVAL);
	assert_int_equal(cm_wheel_init(&w, 64, 10, 1000), 0);
	assert_true(cm_wheel_timeout(&w, 1000) == UINT64_MAX);
	cm_wheel_timer_init(&a.t);
	cm_wheel_add(&w, &a.t, 1300);
	assert_int_equal(cm_wheel_timeout(&w, 1000), 300);
	assert_int_equal(cm_wheel_timeout(&w, 1400), 0);
	cm_wheel_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_never_early),  cmocka_unit_test(test_move_cancel_and_rounds),
	    cmocka_unit_test(test_callbacks),    cmocka_unit_test(test_budget_and_pause),
	    cmocka_unit_test(test_timeout_hint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
