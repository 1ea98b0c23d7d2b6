/* cm/list.h - intrusive doubly linked lists (the suite's one list).
 *
 * A list is a head node; elements embed a struct cm_list and are found back with
 * cm_list_entry(). The list is circular: an empty head points to itself, and so does a node that
 * is in no list (after cm_list_init() or cm_list_remove()), so removing twice is harmless and
 * cm_list_linked() tells whether a node is in a list. Nothing here allocates; the list owns
 * nothing: whoever frees an element removes it first.
 *
 * Walking while the callback of an element may remove other elements needs more than
 * cm_list_foreach_safe(), which only tolerates removing the current one: move the list to a
 * local head with cm_list_move() and pop from it until it is empty.
 */
#ifndef CM_LIST_H
#define CM_LIST_H

#include <stddef.h>

struct cm_list {
	struct cm_list *prev, *next;
};

/* The struct that embeds the node ptr as member. */
#define cm_list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define CM_LIST_INIT(name)                                                                         \
	{                                                                                          \
		&(name), &(name)                                                                   \
	}

static inline void cm_list_init(struct cm_list *h)
{
	h->prev = h->next = h;
}

static inline int cm_list_empty(const struct cm_list *h)
{
	return h->next == h;
}

/* Nonzero when n is in a list (a node that was initialised or removed points to itself). */
static inline int cm_list_linked(const struct cm_list *n)
{
	return n->next != n;
}

static inline void cm_list__between(struct cm_list *n, struct cm_list *prev, struct cm_list *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

static inline void cm_list_insert_tail(struct cm_list *h, struct cm_list *n)
{
	cm_list__between(n, h->prev, h);
}

static inline void cm_list_insert_head(struct cm_list *h, struct cm_list *n)
{
	cm_list__between(n, h, h->next);
}

/* Insert n right after pos (pos may be a head or a node). */
static inline void cm_list_insert_after(struct cm_list *pos, struct cm_list *n)
{
	cm_list__between(n, pos, pos->next);
}

/* Take n out of its list; n then points to itself. A no-op on a node in no list. */
static inline void cm_list_remove(struct cm_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* First / last node, or NULL when the list is empty. */
static inline struct cm_list *cm_list_first(const struct cm_list *h)
{
	return h->next == h ? NULL : h->next;
}

static inline struct cm_list *cm_list_last(const struct cm_list *h)
{
	return h->prev == h ? NULL : h->prev;
}

/* The node after n in list h, or NULL at the end. */
static inline struct cm_list *cm_list_next(const struct cm_list *h, const struct cm_list *n)
{
	return n->next == h ? NULL : n->next;
}

/* Remove and return the first node, or NULL. */
static inline struct cm_list *cm_list_pop(struct cm_list *h)
{
	struct cm_list *n = cm_list_first(h);

	if (n)
		cm_list_remove(n);
	return n;
}

/* Move every node of from to the tail of to; from becomes empty. */
static inline void cm_list_move(struct cm_list *to, struct cm_list *from)
{
	if (cm_list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	cm_list_init(from);
}

/* Walk the nodes of h; the body must not remove pos. */
#define cm_list_foreach(pos, h) for ((pos) = (h)->next; (pos) != (h); (pos) = (pos)->next)

/* Walk the nodes of h; the body may remove pos (and only pos). */
#define cm_list_foreach_safe(pos, tmp, h)                                                          \
	for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h);                                 \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
