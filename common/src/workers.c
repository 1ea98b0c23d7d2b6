/* workers.c - worker threads, each running its own libuv loop with a cm_loop context. */
#include "cm/loop.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"

#define DRY_WAIT_MS 2000 /* how long a stopped worker's loop may take to run dry */

struct worker {
	struct cm_workers *ws; /* borrowed */
	uv_loop_t uv;
	struct cm_loop l;
	uv_thread_t thread;
	struct cm_msg stop_msg;
	bool uv_ready, l_ready, inited, running, stopped;
	unsigned leaks;
};

struct cm_workers {
	struct cm_worker_ops ops;
	unsigned n;
	struct worker *w; /* owned array of n */
	bool stopped;
};

/* On the worker's thread: the owner closes its handles, then the context closes its own. */
static void on_stop(struct cm_loop *l, struct cm_msg *m)
{
	struct worker *w = cm_list_entry(m, struct worker, stop_msg);

	if (w->stopped)
		return;
	w->stopped = true;
	if (w->inited && w->ws->ops.stop)
		w->ws->ops.stop(l, w->ws->ops.arg);
	cm_loop_close(l, NULL);
	uv_stop(l->uv);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* After the stop: let close callbacks and cancelled writes finish, then name what is still
 * open (and close it, so that the thread can end). */
static void run_dry(struct worker *w)
{
	unsigned waited = 0;

	while (uv_run(&w->uv, UV_RUN_NOWAIT) != 0 && waited < DRY_WAIT_MS) {
		sleep_ms(1);
		waited++;
	}
	w->leaks = cm_loop_report_leaks(&w->uv, "workers");
}

/* The kernel's struct sched_attr in its first published layout (48 bytes): glibc before 2.41
 * wraps neither call, and <linux/sched/types.h> cannot be included beside <pthread.h>. */
struct slice_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime; /* for a fair policy: the slice, ns (Linux 6.12 and later) */
	uint64_t deadline, period;
};

#define SLICE_RESET_ON_FORK 0x01 /* SCHED_FLAG_RESET_ON_FORK */

static int slice_get(struct slice_attr *a)
{
	memset(a, 0, sizeof(*a));
	return syscall(SYS_sched_getattr, 0, a, (unsigned)sizeof(*a), 0) == 0 ? 0 : -errno;
}

/* On a worker's thread: ask for the configured slice, keeping the thread's policy and nice
 * value as they are (the unit's Nice= or CPUSchedulingPolicy=). The first worker reports. */
static void ask_slice(struct worker *w)
{
	uint64_t want = (uint64_t)w->ws->ops.slice_us * 1000;
	struct slice_attr a;
	int r;

	if (want == 0)
		return;
	r = slice_get(&a);
	if (r == 0 && a.policy != SCHED_OTHER && a.policy != SCHED_BATCH)
		return; /* a real-time or idle policy is the operator's choice */
	if (r == 0) {
		a.size = sizeof(a);
		a.flags &= SLICE_RESET_ON_FORK;
		a.runtime = want;
		a.deadline = a.period = 0;
		r = syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -errno;
	}
	if (r == 0)
		r = slice_get(&a);
	if (w->l.index != 1)
		return;
	if (r)
		CM_LOGW("workers", "cannot ask the scheduler for a %u us time slice: %s",
		        w->ws->ops.slice_us, strerror(-r));
	else if (a.runtime == 0)
		CM_LOGI("workers",
		        "this kernel keeps its own time slices (a %u us slice needs Linux "
		        "6.12 or later)",
		        w->ws->ops.slice_us);
	else
		CM_LOGI("workers", "workers run with a %llu us time slice",
		        (unsigned long long)(a.runtime / 1000));
}

static void thread_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	/* "worker 1", ...: what top -H, ps -L and perf show (the loop's id) */
	snprintf(name, sizeof(name), "worker %u", w->l.index);
	(void)pthread_setname_np(pthread_self(), name);
	ask_slice(w);
	uv_run(&w->uv, UV_RUN_DEFAULT);
	run_dry(w);
}

static void worker_release(struct worker *w)
{
	if (w->l_ready)
		cm_loop_free(&w->l);
	if (w->uv_ready && uv_loop_close(&w->uv) != 0)
		CM_LOGE("workers", "worker %u: its loop did not close", w->l.index);
	w->l_ready = w->uv_ready = false;
}

/* Stop a worker whose thread never ran: its stop runs here, on this thread. */
static void stop_unstarted(struct worker *w)
{
	if (!w->l_ready)
		return;
	on_stop(&w->l, &w->stop_msg);
	run_dry(w);
}

int cm_workers_start(struct cm_workers **out, unsigned n, const struct cm_worker_ops *ops)
{
	struct cm_workers *ws;
	unsigned i;
	int rc = 0;

	*out = NULL;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? (unsigned)cpus : 1;
	}
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->ops = *ops;
	ws->w = calloc(n, sizeof(*ws->w));
	if (!ws->w) {
		free(ws);
		return -ENOMEM;
	}
	ws->n = n;
	for (i = 0; i < n && rc == 0; i++) {
		struct worker *w = &ws->w[i];

		w->ws = ws;
		w->stop_msg.fn = on_stop;
		rc = uv_loop_init(&w->uv);
		if (rc)
			break;
		w->uv_ready = true;
		rc = cm_loop_init(&w->l, &w->uv, i + 1);
		if (rc)
			break;
		w->l_ready = true;
		cm_loop_keep_alive(&w->l, true); /* a worker waits for its messages */
		w->inited = true;
		if (ops->init)
			rc = ops->init(&w->l, ops->arg);
	}
	for (i = 0; i < n && rc == 0; i++) {
		rc = uv_thread_create(&ws->w[i].thread, thread_main, &ws->w[i]);
		if (rc == 0)
			ws->w[i].running = true;
		else
			CM_LOGE("workers", "cannot start worker thread %u: %s", i + 1,
			        uv_strerror(rc));
	}
	if (rc) {
		cm_workers_free(ws);
		return rc;
	}
	*out = ws;
	return 0;
}

unsigned cm_workers_count(const struct cm_workers *ws)
{
	return ws->n;
}

struct cm_loop *cm_workers_loop(struct cm_workers *ws, unsigned i)
{
	return i < ws->n ? &ws->w[i].l : NULL;
}

unsigned cm_workers_stop(struct cm_workers *ws)
{
	unsigned i, leaks = 0;

	if (ws->stopped)
		return 0;
	ws->stopped = true;
	for (i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (w->running && cm_loop_post(&w->l, &w->stop_msg) != 0)
			CM_LOGE("workers", "worker %u: cannot be told to stop", i + 1);
	}
	for (i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (w->running) {
			uv_thread_join(&w->thread);
			w->running = false;
		} else {
			stop_unstarted(w);
		}
		leaks += w->leaks;
	}
	return leaks;
}

void cm_workers_free(struct cm_workers *ws)
{
	unsigned i;

	if (!ws)
		return;
	(void)cm_workers_stop(ws);
	for (i = 0; i < ws->n; i++)
		worker_release(&ws->w[i]);
	free(ws->w);
	free(ws);
}
