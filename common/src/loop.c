/* loop.c - a loop's context (cm/loop.h): the mailbox, the timer wheel and its driving timer,
 * and the handles cm_stream runs its end-of-turn work from. */
#include "cm/loop.h"
#include "stream_int.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cm/log.h"

#define WHEEL_SLOTS    2048 /* about 100 s per turn at CM_LOOP_TICK_MS */
#define WHEEL_BUDGET   4096 /* timers fired per wake-up; the rest on the next one */
#define MAILBOX_BUDGET 1024 /* messages run per wake-up; then other work goes first */

/* --- the mailbox: an intrusive multi-producer, single-consumer queue ---------------------------
 * Producers swap their node into tail, then link the previous tail to it. Between those two steps
 * the consumer sees a tail that cannot be reached yet; it stops there, and the producer's wake-up,
 * sent after linking, brings it back.
 *
 * The wake-up: a producer that finds wake_pending clear sets it and writes the eventfd; the
 * consumer reads the eventfd, clears the flag, and only then empties the queue. A message
 * linked before the clear is found by that pass; one linked after it finds the flag clear and
 * wakes the loop again (at worst a wake-up with nothing left to run). */

static void mq_push(struct cm_loop *l, struct cm_msg *m)
{
	struct cm_msg *prev;

	atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
	prev = atomic_exchange_explicit(&l->tail, m, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, m, memory_order_release);
}

static struct cm_msg *mq_pop(struct cm_loop *l)
{
	struct cm_msg *head = l->head;
	struct cm_msg *next = atomic_load_explicit(&head->next, memory_order_acquire);

	if (head == &l->stub) {
		if (!next)
			return NULL;
		l->head = head = next;
		next = atomic_load_explicit(&head->next, memory_order_acquire);
	}
	if (next) {
		l->head = next;
		return head;
	}
	if (head != atomic_load_explicit(&l->tail, memory_order_acquire))
		return NULL; /* a producer is between its two steps */
	mq_push(l, &l->stub);
	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (next) {
		l->head = next;
		return head;
	}
	return NULL;
}

/* Wake the loop unless a wake-up is pending already. Any thread. */
static void wake(struct cm_loop *l)
{
	static const uint64_t one = 1;

	/* (the eventfd's counter cannot overflow: the loop reads it to 0 each wake-up) */
	if (!atomic_exchange(&l->wake_pending, true) && write(l->wake_fd, &one, sizeof(one)) < 0)
		atomic_store(&l->wake_pending, false);
}

static void run_mail(struct cm_loop *l, unsigned budget)
{
	struct cm_msg *m;
	unsigned n = 0;

	while (n < budget && (m = mq_pop(l)) != NULL) {
		m->fn(l, m);
		n++;
	}
	/* Bounded work per wake-up: what is left waits for the next turn. */
	if (n == budget && !l->stopping)
		wake(l);
}

static void on_wake(uv_poll_t *p, int status, int events)
{
	struct cm_loop *l = p->data;
	uint64_t n;

	(void)events;
	if (status == 0 && read(l->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		CM_LOGE("loop", "reading the wake-up of loop %u: %s", l->index, strerror(errno));
	atomic_exchange(&l->wake_pending, false);
	run_mail(l, MAILBOX_BUDGET);
}

int cm_loop_post(struct cm_loop *l, struct cm_msg *m)
{
	int rc = 0;

	atomic_fetch_add(&l->posting, 1);
	if (atomic_load(&l->closed)) {
		rc = -ESHUTDOWN;
	} else {
		mq_push(l, m);
		wake(l);
	}
	atomic_fetch_sub(&l->posting, 1);
	return rc;
}

struct call {
	struct cm_msg m;
	void (*fn)(void *arg);
	void *arg;
};

static void on_call(struct cm_loop *l, struct cm_msg *m)
{
	struct call *c = cm_list_entry(m, struct call, m);

	(void)l;
	c->fn(c->arg);
	free(c);
}

int cm_loop_call(struct cm_loop *l, void (*fn)(void *arg), void *arg)
{
	struct call *c = malloc(sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->m.fn = on_call;
	c->fn = fn;
	c->arg = arg;
	r = cm_loop_post(l, &c->m);
	if (r)
		free(c);
	return r;
}

/* --- the timer wheel ---------------------------------------------------------------------------
 */

static void fire(struct cm_wheel_timer *wt, void *arg)
{
	struct cm_loop_timer *t = cm_list_entry(wt, struct cm_loop_timer, wt);

	(void)arg;
	t->cb(t);
}

static void on_wheel(uv_timer_t *t);

static void wheel_rearm(struct cm_loop *l)
{
	uint64_t now = uv_now(l->uv), in = cm_wheel_timeout(&l->wheel, now);

	if (in == UINT64_MAX || l->stopping) {
		uv_timer_stop(&l->wheel_timer);
		l->wheel_due = 0;
		return;
	}
	l->wheel_due = now + in;
	uv_timer_start(&l->wheel_timer, on_wheel, in, 0);
}

static void on_wheel(uv_timer_t *t)
{
	struct cm_loop *l = t->data;

	l->wheel_due = 0;
	cm_wheel_expire(&l->wheel, uv_now(l->uv), fire, NULL, WHEEL_BUDGET);
	wheel_rearm(l);
}

void cm_loop_timer_start(struct cm_loop *l, struct cm_loop_timer *t, uint64_t ms)
{
	uint64_t due = uv_now(l->uv) + ms;

	cm_wheel_add(&l->wheel, &t->wt, due);
	if (l->stopping)
		return;
	/* The driving timer only has to move when this timer is due before it fires. */
	due = t->wt.tick * l->wheel.res_ms;
	if (l->wheel_due == 0 || due < l->wheel_due) {
		uint64_t now = uv_now(l->uv);

		l->wheel_due = due;
		uv_timer_start(&l->wheel_timer, on_wheel, due > now ? due - now : 0, 0);
	}
}

void cm_loop_timer_stop(struct cm_loop *l, struct cm_loop_timer *t)
{
	cm_wheel_del(&l->wheel, &t->wt);
	/* The driving timer may fire for nothing once; it then looks again. */
}

/* --- memory given back ------------------------------------------------------------------------ */

#define TRIM_BYTES    (1024 * 1024)
#define TRIM_DELAY_MS 1000

static void on_trim(struct cm_loop_timer *t)
{
	struct cm_loop *l = cm_list_entry(t, struct cm_loop, trim);

	l->freed = 0;
	/* glibc returns whole free pages from anywhere in its heaps, not only from the top */
	(void)malloc_trim(0);
}

void cm_loop_freed(struct cm_loop *l, size_t bytes)
{
	l->freed += bytes;
	if (l->freed >= TRIM_BYTES && !l->stopping && !cm_loop_timer_active(&l->trim))
		cm_loop_timer_start(l, &l->trim, TRIM_DELAY_MS);
}

/* --- life --------------------------------------------------------------------------------------
 */

int cm_loop_init(struct cm_loop *l, uv_loop_t *uv, unsigned index)
{
	int rc;

	memset(l, 0, sizeof(*l));
	l->uv = uv;
	l->index = index;
	l->wake_fd = -1;
	atomic_init(&l->wake_pending, false);
	l->head = &l->stub;
	atomic_init(&l->tail, &l->stub);
	atomic_init(&l->stub.next, NULL);
	atomic_init(&l->posting, 0);
	atomic_init(&l->closed, false);
	cm_list_init(&l->flushq);
	cm_loop_timer_init(&l->trim, on_trim);
	l->rbuf = malloc(CM_LOOP_READ_BUF);
	l->plainbuf = malloc(CM_LOOP_PLAIN_BUF);
	if (!l->rbuf || !l->plainbuf) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = cm_wheel_init(&l->wheel, WHEEL_SLOTS, CM_LOOP_TICK_MS, uv_now(uv));
	if (rc)
		goto fail;
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = uv_poll_init(uv, &l->wake, l->wake_fd);
	if (rc)
		goto fail;
	/* From here on every handle is initialised and must be closed, never failed over
	 * (uv_poll_start() refuses only arguments, and these are fixed). */
	(void)uv_poll_start(&l->wake, UV_READABLE, on_wake);
	uv_timer_init(uv, &l->wheel_timer);
	uv_prepare_init(uv, &l->flush_prepare);
	uv_check_init(uv, &l->flush_check);
	l->wake.data = l->wheel_timer.data = l->flush_prepare.data = l->flush_check.data = l;
	uv_unref((uv_handle_t *)&l->wake);
	uv->data = l;
	return 0;
fail:
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->wake_fd = -1;
	cm_wheel_close(&l->wheel);
	free(l->rbuf);
	free(l->plainbuf);
	l->rbuf = l->plainbuf = NULL;
	return rc;
}

static void on_closed(uv_handle_t *h)
{
	struct cm_loop *l = h->data;

	if (--l->handles == 0 && l->closed_cb)
		l->closed_cb(l);
}

void cm_loop_close(struct cm_loop *l, void (*done)(struct cm_loop *l))
{
	if (l->stopping)
		return;
	l->stopping = true;
	l->closed_cb = done;
	atomic_store(&l->closed, true);
	/* A post that saw the mailbox open finishes before the async handle goes. */
	while (atomic_load(&l->posting) > 0)
		sched_yield();
	run_mail(l, UINT32_MAX);
	cm_stream__loop_closing(l);
	l->handles = 4;
	uv_close((uv_handle_t *)&l->wake, on_closed);
	uv_close((uv_handle_t *)&l->wheel_timer, on_closed);
	uv_close((uv_handle_t *)&l->flush_prepare, on_closed);
	uv_close((uv_handle_t *)&l->flush_check, on_closed);
}

void cm_loop_keep_alive(struct cm_loop *l, bool on)
{
	if (on)
		uv_ref((uv_handle_t *)&l->wake);
	else
		uv_unref((uv_handle_t *)&l->wake);
}

void cm_loop_free(struct cm_loop *l)
{
	if (l->uv && l->uv->data == l)
		l->uv->data = NULL;
	cm_wheel_close(&l->wheel);
	free(l->rbuf);
	free(l->plainbuf);
	l->rbuf = l->plainbuf = NULL;
	/* (its handle is closed: the close is over) */
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->wake_fd = -1;
}

/* --- leaks --------------------------------------------------------------------------------- */

struct leak_walk {
	const char *mod;
	unsigned n;
};

static void leak_cb(uv_handle_t *h, void *arg)
{
	struct leak_walk *lw = arg;

	if (uv_is_closing(h))
		return;
	lw->n++;
	CM_LOGE(lw->mod, "a %s handle was left open at exit (%p)", uv_handle_type_name(h->type),
	        (void *)h);
	uv_close(h, NULL);
}

unsigned cm_loop_report_leaks(uv_loop_t *uv, const char *mod)
{
	struct leak_walk lw = {mod ? mod : "loop", 0};

	uv_walk(uv, leak_cb, &lw);
	uv_run(uv, UV_RUN_DEFAULT);
	return lw.n;
}
