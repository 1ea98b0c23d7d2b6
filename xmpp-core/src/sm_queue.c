/* sm_queue.c - XEP-0198's counters and the queue of unacknowledged stanzas (sm.h). */
#include "sm.h"

#include <errno.h>
#include <stdlib.h>

void xc_sm_queue_init(struct xc_sm_queue *q)
{
	q->handled = q->sent = q->acked = 0;
	q->n = 0;
	cm_list_init(&q->items);
}

static struct cm_xml_node *take_first(struct xc_sm_queue *q)
{
	struct cm_list *l = cm_list_pop(&q->items);
	struct xc_sm_item *it;
	struct cm_xml_node *st;

	if (!l)
		return NULL;
	it = cm_list_entry(l, struct xc_sm_item, link);
	st = it->st;
	free(it);
	q->n--;
	return st;
}

void xc_sm_queue_close(struct xc_sm_queue *q)
{
	struct cm_xml_node *st;

	while ((st = take_first(q)) != NULL)
		cm_xml_node_free(st);
}

int xc_sm_queue_push(struct xc_sm_queue *q, struct cm_xml_node *st)
{
	struct xc_sm_item *it = malloc(sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->st = st;
	cm_list_insert_tail(&q->items, &it->link);
	q->n++;
	q->sent++;
	return 0;
}

int xc_sm_queue_ack(struct xc_sm_queue *q, uint32_t h)
{
	/* both differences are taken mod 2^32: an h behind the last one looks like a huge step
	 * forward, and is refused with those beyond what was sent */
	uint32_t step = h - q->acked;

	if (step > xc_sm_queue_unacked(q))
		return -ERANGE;
	for (uint32_t i = 0; i < step; i++)
		cm_xml_node_free(take_first(q));
	q->acked = h;
	return 0;
}

struct cm_xml_node *xc_sm_queue_pop(struct xc_sm_queue *q)
{
	struct cm_xml_node *st = take_first(q);

	if (st)
		q->acked++;
	return st;
}

int xc_sm_parse_h(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}
