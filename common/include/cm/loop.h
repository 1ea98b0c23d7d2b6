/* cm/loop.h - the context of one libuv loop, and worker threads that each run one.
 *
 * struct cm_loop is what the suite keeps per event loop, beside libuv's own uv_loop_t:
 *   - a mailbox: any thread posts a message (struct cm_msg, embedded in the sender's struct);
 *     the loop's thread runs it. Posting takes no lock (an intrusive multi-producer queue) and
 *     wakes the loop through an eventfd only when no wake-up is pending yet (an atomic flag the
 *     loop clears before it empties the mailbox), so many messages cost one wake-up, and
 *     neither side ever waits for the other (libuv's uv_async_t makes its loop spin while a
 *     sender is inside uv_async_send(), which a preempted sender on a busy machine turns into
 *     milliseconds of spinning and sched_yield());
 *   - a timer wheel (cm/wheel.h) for the many deadlines of connections, driven by one timer;
 *   - what cm_stream shares per loop: the queue of streams with output to send at the end of
 *     the turn and the read buffers (each read is handled before the next one, so one buffer
 *     serves every connection of the loop).
 * The uv_loop_t's data pointer is set to the cm_loop, so code given a uv_loop_t finds it with
 * cm_loop_of(). Everything but cm_loop_post() belongs to the loop's thread. Like an unreferenced
 * handle, the context does not keep uv_run() going by itself (a loop whose work is done runs
 * dry, its context still open), unless cm_loop_keep_alive() says so: a worker's loop waits for
 * its messages that way until it is stopped.
 *
 * struct cm_workers runs N loops on N threads. Each worker's resources are opened by an init
 * callback on the calling thread before the threads start (so that a port in use fails start-up
 * with a clear message), and closed by a stop callback on the worker's thread; a loop that does
 * not run dry after its stop callback has left handles open, and cm_workers_stop() says so.
 */
#ifndef CM_LOOP_H
#define CM_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cm/list.h"
#include "cm/wheel.h"

struct cm_loop;

/* A message for a loop. Embed it in what is sent; ownership of the enclosing struct passes to
 * the receiving loop with cm_loop_post(). */
struct cm_msg {
	struct cm_msg *_Atomic next; /* the mailbox's link */
	/* Runs on the receiving loop's thread. When the loop is closing (cm_loop_stopping() is
	 * true) messages still waiting are run all the same, so that none is lost: the handler
	 * releases what it owns. */
	void (*fn)(struct cm_loop *l, struct cm_msg *m);
};

#define CM_LOOP_READ_BUF  (64 * 1024) /* one socket read */
#define CM_LOOP_PLAIN_BUF (16 * 1024) /* plaintext out of TLS at a time: one record */
#define CM_LOOP_TICK_MS   50          /* resolution of the loop's timer wheel */

/* A timer on the loop's wheel (below). */
struct cm_loop_timer {
	struct cm_wheel_timer wt;
	void (*cb)(struct cm_loop_timer *t);
};

struct cm_loop {
	uv_loop_t *uv;  /* borrowed (cm_loop_init) or owned (workers) */
	unsigned index; /* 0 for the main loop; 1.. for workers */
	void *data;     /* the owner's per-loop context; borrowed */
	/* mailbox */
	uv_poll_t wake;              /* on wake_fd */
	int wake_fd;                 /* an eventfd; -1 before init */
	atomic_bool wake_pending;    /* a wake-up is on its way: posts need not send another */
	struct cm_msg *_Atomic tail; /* producers swap themselves in here */
	struct cm_msg *head;         /* the consumer's end */
	struct cm_msg stub;
	atomic_int posting; /* posts under way: closing waits for them */
	atomic_bool closed; /* no more posts accepted */
	bool stopping;
	/* the timer wheel */
	struct cm_wheel wheel;
	uv_timer_t wheel_timer;
	uint64_t wheel_due; /* when wheel_timer fires next; 0 when stopped */
	/* cm_stream: streams with work at the end of the turn (stream.c) */
	struct cm_list flushq;
	uv_prepare_t flush_prepare; /* after timers and messages, before the loop waits */
	uv_check_t flush_check;     /* right after the turn's I/O */
	bool flushing;
	char *rbuf;       /* owned: CM_LOOP_READ_BUF */
	char *plainbuf;   /* owned: CM_LOOP_PLAIN_BUF */
	unsigned handles; /* of ours whose close callback is still to come */
	void (*closed_cb)(struct cm_loop *l);
	/* memory given back (cm_loop_freed) */
	size_t freed;
	struct cm_loop_timer trim;
};

/* Make uv's context. uv is borrowed and must be initialised; its data pointer is taken. 0,
 * -ENOMEM, or a libuv error. On failure nothing is left to close. */
int cm_loop_init(struct cm_loop *l, uv_loop_t *uv, unsigned index);

/* Close the context's handles (messages still queued are run first). done (may be NULL) runs
 * from the last close callback; the loop must run for that to happen. Posts from now on fail
 * with -ESHUTDOWN. */
void cm_loop_close(struct cm_loop *l, void (*done)(struct cm_loop *l));

/* Free what cm_loop_init() allocated, once the close is over (done ran, or the loop ran dry). */
void cm_loop_free(struct cm_loop *l);

/* Whether the mailbox alone keeps uv_run() going (off after init). */
void cm_loop_keep_alive(struct cm_loop *l, bool on);

static inline struct cm_loop *cm_loop_of(uv_loop_t *uv)
{
	return (struct cm_loop *)uv->data;
}

static inline bool cm_loop_stopping(const struct cm_loop *l)
{
	return l->stopping;
}

/* Say that about bytes of memory were just freed on l, memory that a long-lived object kept
 * (an idle connection giving back its buffers). The allocator keeps freed memory for reuse; once
 * a megabyte or more has been freed, the loop asks it, a second later and once for the lot, to
 * give whole free pages back to the system (malloc_trim), so that resident memory shows what
 * is in use. */
void cm_loop_freed(struct cm_loop *l, size_t bytes);

/* Hand m to loop l: m->fn runs on l's thread soon after. Safe from any thread. 0, or
 * -ESHUTDOWN when l is closing (m stays the caller's). */
int cm_loop_post(struct cm_loop *l, struct cm_msg *m);

/* Run fn(arg) on l's thread soon after, through a message allocated here (for the odd call that
 * carries nothing but a pointer; frequent traffic embeds its own struct cm_msg). When l is
 * closing, fn still runs with the rest of its mailbox. 0, -ENOMEM, or -ESHUTDOWN when l is
 * closed already (fn does not run). Safe from any thread. */
int cm_loop_call(struct cm_loop *l, void (*fn)(void *arg), void *arg);

/* The loop's timer wheel: arm and cancel timers (struct cm_loop_timer, above) with
 * cm_loop_timer_start()/cm_loop_timer_stop(), which keep the loop's one driving uv timer in step
 * with l->wheel. A timer's callback is the one given to cm_loop_timer_init(). */

static inline void cm_loop_timer_init(struct cm_loop_timer *t, void (*cb)(struct cm_loop_timer *))
{
	cm_wheel_timer_init(&t->wt);
	t->cb = cb;
}

/* Arm (or move) t to fire after ms milliseconds of loop time. */
void cm_loop_timer_start(struct cm_loop *l, struct cm_loop_timer *t, uint64_t ms);
void cm_loop_timer_stop(struct cm_loop *l, struct cm_loop_timer *t);

static inline bool cm_loop_timer_active(const struct cm_loop_timer *t)
{
	return cm_wheel_armed(&t->wt);
}

/* --- worker threads --------------------------------------------------------------------------- */

struct cm_workers;

struct cm_worker_ops {
	/* Open worker l's resources (sockets, timers) on the calling thread, before any worker
	 * runs; l->uv is ready and l->index is 1..n. 0 or a negative errno (start-up then fails;
	 * stop is still called for every worker whose init was called). */
	int (*init)(struct cm_loop *l, void *arg);
	/* On the worker's thread: close every handle init and the worker's work opened. After it
	 * the loop must run dry. */
	void (*stop)(struct cm_loop *l, void *arg);
	void *arg; /* borrowed */
	/* The time slice, in microseconds, each worker thread asks of the kernel's fair scheduler
	 * (0: the kernel's default; it clamps to 100..100,000). A short slice lets a loop woken by
	 * a socket run before a busy task's longer slice ends, without a larger share of the CPU.
	 * Linux 6.12 and later honour it; earlier kernels keep their own (logged once). */
	unsigned slice_us;
};

/* Start n workers (0: one per online CPU). ops is copied. 0, -ENOMEM, or what init or libuv
 * returned; on failure *out is NULL and everything is released. */
int cm_workers_start(struct cm_workers **out, unsigned n, const struct cm_worker_ops *ops);

unsigned cm_workers_count(const struct cm_workers *ws);

/* Worker i's loop context (0 <= i < count). */
struct cm_loop *cm_workers_loop(struct cm_workers *ws, unsigned i);

/* Ask every worker to stop (its stop callback runs on its thread) and wait for the threads.
 * Returns the number of libuv handles that were left open (each is named in the log) - 0 when
 * every worker cleaned up after itself. Idempotent. */
unsigned cm_workers_stop(struct cm_workers *ws);

/* Stop (if needed) and free. Accepts NULL. */
void cm_workers_free(struct cm_workers *ws);

/* Close every handle still open in uv and run it dry, naming each in the log under module mod.
 * Returns how many there were. For frameworks and tests that must end a loop whose owner
 * forgot something. */
unsigned cm_loop_report_leaks(uv_loop_t *uv, const char *mod);

#endif
