/* test_loop.c - cm/loop.h: the mailbox under several producer threads (nothing lost, order kept
 * per producer; bursts, and posts that leave the loop idle between them), posts refused after
 * close, the loop's timers, worker threads (start, messages both ways, stop, leak reports, an init
 * that fails). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/loop.h"

/* --- the mailbox -------------------------------------------------------------------------------
 */

#define PRODUCERS 4
#define PER       20000

struct tmsg {
	struct cm_msg m;
	int producer, seq;
};

struct mbox_fix {
	uv_loop_t uv;
	struct cm_loop l;
	struct tmsg *msgs; /* PRODUCERS * PER */
	int next[PRODUCERS];
	int got, out_of_order;
	int sparse; /* producers yield after each post, so the loop often waits with none left */
	uv_thread_t th[PRODUCERS];
};

static struct mbox_fix *mbox;

static void on_msg(struct cm_loop *l, struct cm_msg *m)
{
	struct tmsg *t = cm_list_entry(m, struct tmsg, m);

	if (t->seq != mbox->next[t->producer])
		mbox->out_of_order++;
	mbox->next[t->producer] = t->seq + 1;
	if (++mbox->got == PRODUCERS * PER)
		cm_loop_close(l, NULL);
}

static void producer(void *arg)
{
	int p = (int)(intptr_t)arg;

	for (int i = 0; i < PER; i++) {
		struct tmsg *t = &mbox->msgs[p * PER + i];

		t->producer = p;
		t->seq = i;
		t->m.fn = on_msg;
		assert_int_equal(cm_loop_post(&mbox->l, &t->m), 0);
		if (mbox->sparse && i % mbox->sparse == 0)
			uv_sleep(0);
	}
}

/* A lost wake-up would leave the loop waiting for ever: the test fails instead. */
static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	fail_msg("the loop got %d of %d messages in 30 s: a wake-up was lost", mbox->got,
	         PRODUCERS * PER);
}

static void test_mailbox_threads(void **state)
{
	struct mbox_fix f;
	struct tmsg late = {.m.fn = on_msg};
	uv_timer_t watchdog;

	memset(&f, 0, sizeof(f));
	f.sparse = state && *state ? *(const int *)*state : 0;
	mbox = &f;
	f.msgs = calloc(PRODUCERS * PER, sizeof(*f.msgs));
	assert_non_null(f.msgs);
	assert_int_equal(uv_loop_init(&f.uv), 0);
	assert_int_equal(cm_loop_init(&f.l, &f.uv, 0), 0);
	assert_ptr_equal(cm_loop_of(&f.uv), &f.l);
	cm_loop_keep_alive(&f.l, true); /* the loop waits for the producers */
	assert_int_equal(uv_timer_init(&f.uv, &watchdog), 0);
	assert_int_equal(uv_timer_start(&watchdog, on_watchdog, 30000, 0), 0);
	uv_unref((uv_handle_t *)&watchdog);
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(uv_thread_create(&f.th[i], producer, (void *)(intptr_t)i), 0);
	/* the loop runs until the last message closes the context */
	assert_int_equal(uv_run(&f.uv, UV_RUN_DEFAULT), 0);
	uv_close((uv_handle_t *)&watchdog, NULL);
	assert_int_equal(uv_run(&f.uv, UV_RUN_DEFAULT), 0);
	for (int i = 0; i < PRODUCERS; i++)
		uv_thread_join(&f.th[i]);
	assert_int_equal(f.got, PRODUCERS * PER);
	assert_int_equal(f.out_of_order, 0);
	assert_int_equal(cm_loop_post(&f.l, &late.m), -ESHUTDOWN);
	cm_loop_free(&f.l);
	assert_int_equal(uv_loop_close(&f.uv), 0);
	free(f.msgs);
}

/* Messages still waiting when the loop closes are run, not lost. */
static int ran_at_close;

static void count_msg(struct cm_loop *l, struct cm_msg *m)
{
	(void)m;
	if (cm_loop_stopping(l))
		ran_at_close++;
}

static void test_close_runs_waiting(void **state)
{
	uv_loop_t uv;
	struct cm_loop l;
	struct cm_msg m[3];

	(void)state;
	ran_at_close = 0;
	assert_int_equal(uv_loop_init(&uv), 0);
	assert_int_equal(cm_loop_init(&l, &uv, 0), 0);
	for (int i = 0; i < 3; i++) {
		m[i].fn = count_msg;
		assert_int_equal(cm_loop_post(&l, &m[i]), 0);
	}
	cm_loop_close(&l, NULL);
	assert_int_equal(ran_at_close, 3);
	assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&l);
	assert_int_equal(uv_loop_close(&uv), 0);
}

static void add_one(void *arg)
{
	(*(int *)arg)++;
}

/* cm_loop_call: a pointer's worth of work, run on the loop (and at its close, when it is
 * still waiting); refused once the loop is closed. */
static void test_call(void **state)
{
	uv_loop_t uv;
	struct cm_loop l;
	int n = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&uv), 0);
	assert_int_equal(cm_loop_init(&l, &uv, 0), 0);
	cm_loop_keep_alive(&l, true);
	assert_int_equal(cm_loop_call(&l, add_one, &n), 0);
	assert_int_equal(cm_loop_call(&l, add_one, &n), 0);
	assert_int_equal(n, 0);
	uv_run(&uv, UV_RUN_ONCE);
	assert_int_equal(n, 2);
	assert_int_equal(cm_loop_call(&l, add_one, &n), 0);
	cm_loop_close(&l, NULL);
	assert_int_equal(n, 3);
	assert_int_equal(cm_loop_call(&l, add_one, &n), -ESHUTDOWN);
	assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&l);
	assert_int_equal(uv_loop_close(&uv), 0);
}

/* --- timers on the loop's wheel -------------------------------------------------------------- */

struct ttimer {
	struct cm_loop_timer t;
	struct cm_loop *l;
	uint64_t started, fired_at;
	int fired;
};

static int timers_left;

static void on_ttimer(struct cm_loop_timer *lt)
{
	struct ttimer *t = cm_list_entry(lt, struct ttimer, t);

	t->fired++;
	t->fired_at = uv_now(t->l->uv);
	if (--timers_left == 0)
		cm_loop_close(t->l, NULL);
}

/* Freed memory is reported; past a megabyte, one trim a second later, for the lot. */
static void test_freed(void **state)
{
	uv_loop_t uv;
	struct cm_loop l;
	uint64_t t0;

	(void)state;
	assert_int_equal(uv_loop_init(&uv), 0);
	assert_int_equal(cm_loop_init(&l, &uv, 0), 0);
	cm_loop_freed(&l, 100 * 1024);
	assert_false(cm_loop_timer_active(&l.trim)); /* not worth it yet */
	for (int i = 0; i < 10; i++)
		cm_loop_freed(&l, 100 * 1024);
	assert_true(cm_loop_timer_active(&l.trim));
	t0 = uv_now(&uv);
	while (cm_loop_timer_active(&l.trim))
		assert_int_equal(uv_run(&uv, UV_RUN_ONCE) >= 0, 1);
	assert_true(uv_now(&uv) - t0 >= 1000);
	assert_int_equal(l.freed, 0);
	cm_loop_close(&l, NULL);
	assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&l);
	assert_int_equal(uv_loop_close(&uv), 0);
}

static void test_loop_timers(void **state)
{
	uv_loop_t uv;
	struct cm_loop l;
	struct ttimer a = {0}, b = {0}, c = {0};

	(void)state;
	assert_int_equal(uv_loop_init(&uv), 0);
	assert_int_equal(cm_loop_init(&l, &uv, 0), 0);
	a.l = b.l = c.l = &l;
	cm_loop_timer_init(&a.t, on_ttimer);
	cm_loop_timer_init(&b.t, on_ttimer);
	cm_loop_timer_init(&c.t, on_ttimer);
	a.started = b.started = uv_now(&uv);
	cm_loop_timer_start(&l, &b.t, 300);
	cm_loop_timer_start(&l, &a.t, 100); /* earlier than the driving timer: it moves */
	cm_loop_timer_start(&l, &c.t, 50);
	cm_loop_timer_stop(&l, &c.t); /* cancelled: never fires */
	assert_true(cm_loop_timer_active(&a.t));
	timers_left = 2;
	assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(c.fired, 0);
	assert_true(a.fired_at - a.started >= 100);
	assert_true(a.fired_at - a.started < 100 + 3 * CM_LOOP_TICK_MS);
	assert_true(b.fired_at - b.started >= 300);
	cm_loop_free(&l);
	assert_int_equal(uv_loop_close(&uv), 0);
}

/* --- workers -----------------------------------------------------------------------------------
 */

struct wstate {
	uv_timer_t tick[8];
	int inits, stops;
	int forget;  /* leave worker 1's timer open */
	int fail_at; /* init of this worker fails */
	struct cm_loop *main;
	atomic_int pongs;
};

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static int w_init(struct cm_loop *l, void *arg)
{
	struct wstate *ws = arg;

	ws->inits++;
	if ((int)l->index == ws->fail_at)
		return -EADDRINUSE;
	uv_timer_init(l->uv, &ws->tick[l->index]);
	uv_timer_start(&ws->tick[l->index], on_tick, 10, 10);
	l->data = ws;
	return 0;
}

static void w_stop(struct cm_loop *l, void *arg)
{
	struct wstate *ws = arg;

	__atomic_add_fetch(&ws->stops, 1, __ATOMIC_SEQ_CST);
	if ((int)l->index == ws->fail_at)
		return;
	if (ws->forget && l->index == 1)
		return;
	uv_close((uv_handle_t *)&ws->tick[l->index], NULL);
}

/* A ping goes to a worker, which answers on the main loop. */
struct ping {
	struct cm_msg m;
	struct wstate *ws;
	unsigned from;
};

static void on_pong(struct cm_loop *l, struct cm_msg *m)
{
	struct ping *p = cm_list_entry(m, struct ping, m);

	(void)l;
	atomic_fetch_add(&p->ws->pongs, 1);
	free(p);
}

static void on_ping(struct cm_loop *l, struct cm_msg *m)
{
	struct ping *p = cm_list_entry(m, struct ping, m);

	p->from = l->index;
	p->m.fn = on_pong;
	assert_int_equal(cm_loop_post(p->ws->main, &p->m), 0);
}

static void test_workers(void **state)
{
	struct cm_worker_ops ops = {.init = w_init, .stop = w_stop};
	struct cm_workers *ws;
	struct wstate st;
	uv_loop_t uv;
	struct cm_loop main;

	(void)state;
	memset(&st, 0, sizeof(st));
	atomic_init(&st.pongs, 0);
	st.fail_at = -1;
	ops.arg = &st;
	assert_int_equal(uv_loop_init(&uv), 0);
	assert_int_equal(cm_loop_init(&main, &uv, 0), 0);
	cm_loop_keep_alive(&main, true); /* waits for the pongs */
	st.main = &main;
	assert_int_equal(cm_workers_start(&ws, 3, &ops), 0);
	assert_int_equal(cm_workers_count(ws), 3);
	assert_int_equal(st.inits, 3);
	for (unsigned i = 0; i < 3; i++) {
		for (int k = 0; k < 100; k++) {
			struct ping *p = calloc(1, sizeof(*p));

			assert_non_null(p);
			p->ws = &st;
			p->m.fn = on_ping;
			assert_int_equal(cm_loop_post(cm_workers_loop(ws, i), &p->m), 0);
		}
	}
	while (atomic_load(&st.pongs) < 300)
		uv_run(&uv, UV_RUN_ONCE);
	assert_int_equal(cm_workers_stop(ws), 0);
	assert_int_equal(st.stops, 3);
	cm_workers_free(ws);
	cm_loop_close(&main, NULL);
	assert_int_equal(uv_run(&uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&main);
	assert_int_equal(uv_loop_close(&uv), 0);
}

static void test_workers_leak_and_failure(void **state)
{
	struct cm_worker_ops ops = {.init = w_init, .stop = w_stop};
	struct cm_workers *ws = NULL;
	struct wstate st;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.fail_at = -1;
	st.forget = 1;
	ops.arg = &st;
	assert_int_equal(cm_workers_start(&ws, 2, &ops), 0);
	assert_int_equal(cm_workers_stop(ws), 1); /* worker 1's timer, named in the log */
	assert_int_equal(cm_workers_stop(ws), 0); /* idempotent */
	cm_workers_free(ws);

	memset(&st, 0, sizeof(st));
	st.fail_at = 2;
	ops.arg = &st;
	assert_int_equal(cm_workers_start(&ws, 3, &ops), -EADDRINUSE);
	assert_null(ws);
	assert_int_equal(st.inits, 2); /* the third never started */
	assert_int_equal(st.stops, 2); /* stop for each worker whose init ran */
}

static const int every_post = 1, every_64th = 64;

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mailbox_threads),
	    cmocka_unit_test_prestate(test_mailbox_threads, (void *)&every_post),
	    cmocka_unit_test_prestate(test_mailbox_threads, (void *)&every_64th),
	    cmocka_unit_test(test_close_runs_waiting),
	    cmocka_unit_test(test_call),
	    cmocka_unit_test(test_loop_timers),
	    cmocka_unit_test(test_freed),
	    cmocka_unit_test(test_workers),
	    cmocka_unit_test(test_workers_leak_and_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
