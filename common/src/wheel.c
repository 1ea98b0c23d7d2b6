/* wheel.c - the hashed timer wheel of cm/wheel.h. */
#include "cm/wheel.h"

#include <errno.h>
#include <stdlib.h>

int cm_wheel_init(struct cm_wheel *w, size_t nslots, uint64_t res_ms, uint64_t now_ms)
{
	size_t n = 1, i;

	w->slots = NULL;
	w->count = 0;
	if (nslots == 0 || res_ms == 0 || nslots > ((size_t)1 << 24))
		return -EINVAL;
	while (n < nslots)
		n <<= 1;
	w->slots = malloc(n * sizeof(*w->slots));
	if (!w->slots)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		cm_list_init(&w->slots[i]);
	w->mask = n - 1;
	w->res_ms = res_ms;
	w->next_tick = now_ms / res_ms;
	w->floor = 0;
	return 0;
}

void cm_wheel_close(struct cm_wheel *w)
{
	size_t i;

	if (!w->slots)
		return;
	for (i = 0; i <= w->mask; i++) {
		struct cm_list *n;

		while ((n = cm_list_pop(&w->slots[i])) != NULL)
			;
	}
	free(w->slots);
	w->slots = NULL;
	w->count = 0;
}

void cm_wheel_add(struct cm_wheel *w, struct cm_wheel_timer *t, uint64_t due_ms)
{
	uint64_t tick = due_ms / w->res_ms + (due_ms % w->res_ms != 0);

	if (cm_list_linked(&t->link))
		cm_list_remove(&t->link);
	else
		w->count++;
	if (tick < w->next_tick)
		tick = w->next_tick;
	if (tick < w->floor)
		tick = w->floor;
	t->tick = tick;
	cm_list_insert_tail(&w->slots[tick & w->mask], &t->link);
}

void cm_wheel_del(struct cm_wheel *w, struct cm_wheel_timer *t)
{
	if (!cm_list_linked(&t->link))
		return;
	cm_list_remove(&t->link);
	w->count--;
}

/* Fire what is due in one slot. 1 when the whole slot was handled, 0 when the budget ran out
 * (what is left goes back to the slot's head, in order). */
static int expire_slot(struct cm_wheel *w, struct cm_list *slot, uint64_t now_tick,
                       void (*cb)(struct cm_wheel_timer *t, void *arg), void *arg, size_t *fired,
                       size_t budget)
{
	struct cm_list work, later, *n;

	/* Callbacks may cancel timers of this slot, or arm new ones into it: work on a private
	 * list, and put back what is not due yet. */
	cm_list_init(&work);
	cm_list_init(&later);
	cm_list_move(&work, slot);
	while ((n = cm_list_pop(&work)) != NULL) {
		struct cm_wheel_timer *t = cm_list_entry(n, struct cm_wheel_timer, link);

		if (t->tick > now_tick) {
			cm_list_insert_tail(&later, n); /* a later turn of the wheel */
			continue;
		}
		if (*fired >= budget) {
			cm_list_insert_head(&work, n);
			cm_list_move(&later, &work);
			cm_list_move(&later, slot);
			cm_list_move(slot, &later);
			return 0;
		}
		w->count--;
		(*fired)++;
		cb(t, arg);
	}
	cm_list_move(slot, &later);
	return 1;
}

size_t cm_wheel_expire(struct cm_wheel *w, uint64_t now_ms,
                       void (*cb)(struct cm_wheel_timer *t, void *arg), void *arg, size_t budget)
{
	uint64_t now_tick = now_ms / w->res_ms, k, end;
	size_t fired = 0;

	if (w->count == 0) {
		if (now_tick >= w->next_tick)
			w->next_tick = now_tick + 1;
		return 0;
	}
	if (now_tick < w->next_tick)
		return 0;
	/* After a long pause every slot is visited once, not once per tick missed. */
	end = now_tick - w->next_tick > w->mask ? w->next_tick + w->mask : now_tick;
	w->floor = now_tick + 1;
	for (k = w->next_tick; k <= end; k++) {
		if (!expire_slot(w, &w->slots[k & w->mask], now_tick, cb, arg, &fired, budget)) {
			w->next_tick = k;
			w->floor = 0;
			return fired;
		}
	}
	w->next_tick = now_tick + 1;
	w->floor = 0;
	return fired;
}

uint64_t cm_wheel_timeout(const struct cm_wheel *w, uint64_t now_ms)
{
	uint64_t k, due;

	if (w->count == 0)
		return UINT64_MAX;
	for (k = w->next_tick; k <= w->next_tick + w->mask; k++)
		if (!cm_list_empty(&w->slots[k & w->mask]))
			break;
	due = k * w->res_ms;
	return due > now_ms ? due - now_ms : 0;
}
