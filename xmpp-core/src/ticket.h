/* ticket.h - a stanza's acknowledgement waits until what it caused is safe.
 *
 * A client with stream management (XEP-0198) is told, in <a h=.../>, how many of its stanzas
 * the server has handled; the client then forgets them. A message counted there must survive a
 * crash of the server: it has to be on disk (stored offline, archived) or out on the
 * recipient's connection by then. Routing a message does its writes asynchronously, maybe on
 * another shard, maybe after the recipient's roster was read, and in the store's next group
 * commit; a ticket follows the message through all of that.
 *
 * While a shard handles one stanza from such a client, an xc_ticket_scope on its stack says so
 * (sh->tk), with the stanza's ticket. Whatever hands the stanza's work on -- a post to another
 * shard, a wait for a roster, a store write -- takes a reference with xc_ticket_hold(). The
 * reference is
 * released when that piece of work is done (the store releases its references once the
 * transaction has committed, on its own thread). When the last one goes, the ticket goes home
 * (a message to the client's shard, or at once when released there) and tells the session its
 * stanza is safe (xc_sm_ticket_done()); the session then answers an <r/> it had to hold.
 *
 * A ticket's references are counted atomically; everything else in it belongs to its home
 * shard. A session that goes away forgets its tickets (xc_ticket_forget()) and they are freed
 * when they come home.
 */
#ifndef XC_TICKET_H
#define XC_TICKET_H

#include <stdatomic.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/loop.h"

struct xc_shard;
struct xc_sm;

struct xc_ticket {
	atomic_uint refs;
	struct xc_shard *home; /* borrowed: the client's shard */
	/* the home shard's: */
	struct xc_sm *sm;    /* borrowed; NULL once the session forgot it */
	uint32_t seq;        /* the session's handled count with this stanza */
	struct cm_list link; /* in the session's list of tickets on their way */
	struct cm_msg msg;   /* the way home */
};

/* What a shard is handling now. */
struct xc_ticket_scope {
	struct xc_ticket *t;           /* owned reference; NULL: nothing waits for this work */
	struct xc_ticket_scope *outer; /* the scope this one interrupts (restored at the end) */
};

/* A ticket for the stanza numbered seq of session sm, on sh (its home), with one reference
 * (the caller's), in the session's list (xc_sm_ticket_add()). NULL without memory: the stanza
 * is then acknowledged as it would have been without tickets. */
struct xc_ticket *xc_ticket_new(struct xc_shard *sh, struct xc_sm *sm, uint32_t seq);

/* Enter a scope on sh for work that carries ticket t (a reference the scope takes over; NULL:
 * nothing waits for the work). */
void xc_ticket_enter(struct xc_shard *sh, struct xc_ticket_scope *sc, struct xc_ticket *t);

/* Leave the scope entered last: its reference goes. */
void xc_ticket_leave(struct xc_shard *sh, struct xc_ticket_scope *sc);

/* A new reference to the ticket of what sh is handling now, for work handed on; NULL when
 * nothing waits for it (no scope, or a client without stream management). */
struct xc_ticket *xc_ticket_hold(struct xc_shard *sh);

/* Release a reference, on any thread; sh is the caller's shard (NULL off the shards, on the
 * store's thread). Accepts NULL. */
void xc_ticket_put(struct xc_shard *sh, struct xc_ticket *t);

/* For sessions (sm.c): the ticket's session is gone. On the home shard. */
void xc_ticket_forget(struct xc_ticket *t);

#endif
