/* cm/wheel.h - a hashed timer wheel: many timers, cheap to arm, move and cancel.
 *
 * Arming, re-arming and cancelling are O(1); expiry visits one slot per tick of resolution.
 * Use it where thousands of deadlines move all the time (idle timeouts that restart on every
 * read, allocation lifetimes, retries); a single libuv timer drives it. A timer due further
 * than one turn of the wheel waits in its slot for later turns.
 *
 * Times are milliseconds on the caller's clock (uv_now() of the loop). A due time is rounded up
 * to the wheel's resolution, so a timer never fires early; one in the past fires at the wheel's
 * next tick. A timer armed from an expiry callback never fires in that same call, so a
 * callback that re-arms itself for "now" cannot make expiry spin.
 *
 * The wheel allocates only at init; timers are embedded in the caller's structs and must be
 * cancelled (or have fired) before their memory goes. Single-threaded.
 */
#ifndef CM_WHEEL_H
#define CM_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#include "cm/list.h"

struct cm_wheel;

struct cm_wheel_timer {
	struct cm_list link; /* in its slot; self-linked when idle */
	uint64_t tick;       /* the tick it is due at */
};

struct cm_wheel {
	struct cm_list *slots; /* owned: nslots heads */
	size_t mask;           /* nslots - 1 (a power of two) */
	uint64_t res_ms;
	uint64_t next_tick; /* the first tick not expired yet */
	uint64_t floor;     /* during expiry: timers armed now are due no earlier than this */
	size_t count;       /* timers armed */
};

/* A wheel of nslots slots (rounded up to a power of two) of res_ms each, starting at now_ms.
 * 0, -EINVAL (zero slots or resolution), -ENOMEM. */
int cm_wheel_init(struct cm_wheel *w, size_t nslots, uint64_t res_ms, uint64_t now_ms);

/* Release the slots. Armed timers are simply forgotten (their nodes are left self-linked). */
void cm_wheel_close(struct cm_wheel *w);

static inline void cm_wheel_timer_init(struct cm_wheel_timer *t)
{
	cm_list_init(&t->link);
	t->tick = 0;
}

static inline int cm_wheel_armed(const struct cm_wheel_timer *t)
{
	return cm_list_linked(&t->link);
}

/* Arm t (or move it, when armed) to fire at due_ms. */
void cm_wheel_add(struct cm_wheel *w, struct cm_wheel_timer *t, uint64_t due_ms);

/* Disarm t; a no-op when it is not armed. */
void cm_wheel_del(struct cm_wheel *w, struct cm_wheel_timer *t);

/* Fire the timers due at or before now_ms, each once, through cb (called with the timer
 * disarmed; cb may re-arm or cancel any timer and free the struct holding it). At most budget
 * timers fire; returns how many did. When the budget runs out, the rest fire on the next call. */
size_t cm_wheel_expire(struct cm_wheel *w, uint64_t now_ms,
                       void (*cb)(struct cm_wheel_timer *t, void *arg), void *arg, size_t budget);

/* Milliseconds from now_ms until the first slot holding a timer comes due (0 when overdue), for
 * the libuv timer that drives the wheel; UINT64_MAX when nothing is armed. Looks at up to one
 * turn of slots: call it after expiry, not on every arming. */
uint64_t cm_wheel_timeout(const struct cm_wheel *w, uint64_t now_ms);

#endif
