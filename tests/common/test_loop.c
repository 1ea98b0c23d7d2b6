/* test_loop.c - cm/loop.h: the mailbox under several producer threads (nothing lost, order kept
 * per producer; bursts, and posts that leave the loop idle between them), posts refused after
 * close, the loop's timers, worker threads (start, messages both ways, stop, leak reports, an init
 * that fails, the time slice they ask for). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
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

/* --- the time slice a worker asks for ---------------------------------------------------------
 * Read back with sched_getattr() on the worker's own thread. The kernel reports a fair thread's
 * slice from Linux 6.12 on; before, it reports 0 and only the nice value is checked. */

struct kernel_sched_attr { /* the kernel's struct sched_attr, first layout */
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

static uint64_t thread_slice_ns(void)
{
	struct kernel_sched_attr a;

	memset(&a, 0, sizeof(a));
	if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof(a), 0) != 0)
		return UINT64_MAX;
	return a.runtime;
}

struct slice_probe {
	struct cm_msg m;
	struct cm_loop *main;
	atomic_int *answered;
	uint64_t slice_ns; /* the worker's, as the kernel reports it */
	int nice;          /* the worker's */
	int post_rc;
};

struct slice_run {
	unsigned slice_us; /* asked for */
	int nice;          /* the starting thread's, inherited by the workers */
	int rc;            /* the first failure of the run, or 0 */
	uint64_t starter_ns;
	struct slice_probe probe[2];
};

static void on_slice_answer(struct cm_loop *l, struct cm_msg *m)
{
	struct slice_probe *p = cm_list_entry(m, struct slice_probe, m);

	(void)l;
	atomic_fetch_add(p->answered, 1);
}

static void on_slice_probe(struct cm_loop *l, struct cm_msg *m)
{
	struct slice_probe *p = cm_list_entry(m, struct slice_probe, m);

	(void)l;
	p->slice_ns = thread_slice_ns();
	errno = 0;
	p->nice = getpriority(PRIO_PROCESS, 0); /* Linux: the calling thread's */
	if (errno)
		p->nice = -100;
	p->m.fn = on_slice_answer;
	p->post_rc = cm_loop_post(p->main, &p->m);
}

/* On a thread of its own (its nice value changes): start two workers, probe each, stop. cmocka
 * asserts only on the test's thread, so failures are recorded in run->rc. */
static void *slice_starter(void *arg)
{
	struct slice_run *run = arg;
	struct cm_worker_ops ops = {.slice_us = run->slice_us};
	struct cm_workers *ws;
	struct cm_loop main;
	atomic_int answered;
	uv_loop_t uv;

	atomic_init(&answered, 0);
	if (setpriority(PRIO_PROCESS, 0, run->nice) != 0) {
		run->rc = -errno;
		return NULL;
	}
	run->starter_ns = thread_slice_ns();
	if ((run->rc = uv_loop_init(&uv)) != 0)
		return NULL;
	if ((run->rc = cm_loop_init(&main, &uv, 0)) != 0)
		goto out_uv;
	cm_loop_keep_alive(&main, true);
	if ((run->rc = cm_workers_start(&ws, 2, &ops)) != 0)
		goto out_main;
	for (unsigned i = 0; i < 2; i++) {
		struct slice_probe *p = &run->probe[i];

		p->main = &main;
		p->answered = &answered;
		p->m.fn = on_slice_probe;
		if (run->rc == 0)
			run->rc = cm_loop_post(cm_workers_loop(ws, i), &p->m);
		else
			atomic_fetch_add(&answered, 1);
	}
	while (atomic_load(&answered) < 2)
		uv_run(&uv, UV_RUN_ONCE);
	for (unsigned i = 0; i < 2 && run->rc == 0; i++)
		run->rc = run->probe[i].post_rc;
	if (cm_workers_stop(ws) != 0 && run->rc == 0)
		run->rc = -EBUSY;
	cm_workers_free(ws);
out_main:
	cm_loop_close(&main, NULL);
	(void)uv_run(&uv, UV_RUN_DEFAULT);
	cm_loop_free(&main);
out_uv:
	if (uv_loop_close(&uv) != 0 && run->rc == 0)
		run->rc = -EBUSY;
	return NULL;
}

static void run_slice(struct slice_run *run)
{
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, slice_starter, run), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(run->rc, 0);
	assert_int_not_equal(run->starter_ns, UINT64_MAX);
}

static void test_workers_slice(void **state)
{
	int base;
	struct slice_run asked, dflt;

	(void)state;
	errno = 0;
	base = getpriority(PRIO_PROCESS, 0);
	assert_int_equal(errno, 0);
	memset(&asked, 0, sizeof(asked));
	asked.slice_us = 300;
	asked.nice = base < 17 ? base + 2 : base; /* raising it needs no privilege */
	run_slice(&asked);
	for (unsigned i = 0; i < 2; i++) {
		/* the nice value the workers inherited is kept */
		assert_int_equal(asked.probe[i].nice, asked.nice);
		if (asked.starter_ns == 0) /* before Linux 6.12: no slice to read back */
			assert_int_equal(asked.probe[i].slice_ns, 0);
		else
			assert_int_equal(asked.probe[i].slice_ns, 300000);
	}
	if (asked.starter_ns == 0)
		printf("[ info ] this kernel reports no fair slice: only the nice value was "
		       "checked\n");
	else
		assert_int_not_equal(asked.starter_ns, 300000); /* only the workers asked */

	memset(&dflt, 0, sizeof(dflt)); /* slice_us 0: the kernel's default, like the starter's */
	dflt.nice = base;
	run_slice(&dflt);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(dflt.probe[i].nice, base);
		assert_true(dflt.probe[i].slice_ns == dflt.starter_ns);
	}
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
	    cmocka_unit_test(test_workers_slice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
