/* ticket.c - acknowledgements that wait for the work a stanza caused (ticket.h). */
#include "ticket.h"

#include <stdlib.h>

#include "server.h"
#include "sm.h"

/* Home, on the home shard: the session hears of it, then the ticket is freed. */
static void arrive(struct xc_ticket *t)
{
	struct xc_sm *sm = t->sm;

	if (sm) {
		cm_list_remove(&t->link);
		t->sm = NULL;
		xc_sm_ticket_done(sm);
	}
	free(t);
}

static void on_home(struct cm_loop *l, struct cm_msg *m)
{
	(void)l;
	arrive(cm_list_entry(m, struct xc_ticket, msg));
}

void xc_ticket_put(struct xc_shard *sh, struct xc_ticket *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	if (sh == t->home) {
		arrive(t);
		return;
	}
	t->msg.fn = on_home;
	/* a closed loop has freed its sessions, which forgot their tickets first */
	if (cm_loop_post(t->home->loop, &t->msg) != 0)
		free(t);
}

struct xc_ticket *xc_ticket_new(struct xc_shard *sh, struct xc_sm *sm, uint32_t seq)
{
	struct xc_ticket *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->home = sh;
	t->sm = sm;
	t->seq = seq;
	xc_sm_ticket_add(sm, t);
	return t;
}

void xc_ticket_enter(struct xc_shard *sh, struct xc_ticket_scope *sc, struct xc_ticket *t)
{
	sc->t = t;
	sc->outer = sh->tk;
	sh->tk = sc;
}

void xc_ticket_leave(struct xc_shard *sh, struct xc_ticket_scope *sc)
{
	sh->tk = sc->outer;
	xc_ticket_put(sh, sc->t);
}

struct xc_ticket *xc_ticket_hold(struct xc_shard *sh)
{
	struct xc_ticket_scope *sc = sh->tk;

	if (!sc || !sc->t)
		return NULL;
	atomic_fetch_add(&sc->t->refs, 1);
	return sc->t;
}

void xc_ticket_forget(struct xc_ticket *t)
{
	cm_list_remove(&t->link);
	cm_list_init(&t->link);
	t->sm = NULL;
}
