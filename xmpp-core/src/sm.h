/* sm.h - XEP-0198 stream management: acknowledgements both ways, the queue of stanzas the client
 * has not acknowledged, hibernated sessions and their resumption on a new connection.
 *
 * Counting and the queue (struct xc_sm_queue, sm_queue.c) are plain data, tested on their own:
 * counters run modulo 2^32 as the XEP has them, and the queue holds one tree per stanza sent
 * since the client's last <a/>. The rest (sm.c) drives them for a session: <enable/>, <r/>,
 * <a/>, the server's own <r/>, hibernation when the connection drops, <resume/>, and the end of
 * a session that is not resumed, whose unacknowledged stanzas are routed again (other
 * resources, offline storage, an error to the sender) rather than lost.
 *
 * A session's stream management state lives on its home shard, like the session. A resumable
 * session is found by its id in the shard's table (sh->sm_ids); the client reaches that shard
 * because its connection moves home after SASL, before <resume/>. */
#ifndef XC_SM_H
#define XC_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/xml.h"

#define XC_NS_SM "urn:xmpp:sm:3"

struct xc_c2s;
struct xc_shard;
struct xc_ticket;
struct xc_ticket_scope;

/* --- counters and the queue (sm_queue.c) -------------------------------------------------- */

struct xc_sm_queue {
	uint32_t handled;     /* stanzas handled from the client since <enable/>, mod 2^32 */
	uint32_t sent;        /* stanzas sent (or queued) to the client, mod 2^32 */
	uint32_t acked;       /* the client's last h: sent - acked stanzas are in items */
	struct cm_list items; /* of struct xc_sm_item, oldest first */
	size_t n;             /* items (always sent - acked) */
};

struct xc_sm_item {
	struct cm_list link;
	struct cm_xml_node *st; /* owned */
};

/* An empty queue with every counter at 0. */
void xc_sm_queue_init(struct xc_sm_queue *q);

/* Free what is still queued. */
void xc_sm_queue_close(struct xc_sm_queue *q);

/* One more stanza handled from the client (wraps at 2^32). */
static inline void xc_sm_queue_handled(struct xc_sm_queue *q)
{
	q->handled++;
}

/* Append st (handed over on success) as the next stanza sent. 0 or -ENOMEM (st stays the
 * caller's). */
int xc_sm_queue_push(struct xc_sm_queue *q, struct cm_xml_node *st);

/* The client says it has handled h stanzas: the ones up to h leave the queue. 0, or -ERANGE
 * when h counts more than were sent (or goes back before the last h); nothing changes then. */
int xc_sm_queue_ack(struct xc_sm_queue *q, uint32_t h);

/* Take the oldest unacknowledged stanza out (handed over; NULL when empty), as if it had been
 * acknowledged: for a session that ends. */
struct cm_xml_node *xc_sm_queue_pop(struct xc_sm_queue *q);

/* Stanzas sent and not acknowledged. */
static inline uint32_t xc_sm_queue_unacked(const struct xc_sm_queue *q)
{
	return q->sent - q->acked;
}

/* Parse an h attribute: decimal, 0 to 2^32 - 1, nothing else. 0 or -EINVAL. */
int xc_sm_parse_h(const char *s, uint32_t *out);

/* --- sessions (sm.c) ------------------------------------------------------------------------ */

struct xc_sm;

/* An element in XC_NS_SM from the client (authenticated, before or after binding). Answers it.
 * 0 to go on reading, or a negative errno when the stream ended. */
int xc_sm_element(struct xc_c2s *c, const struct cm_xml_node *el);

/* Inline in a SASL2 <authenticate/> (sasl2.c; XEP-0388, XEP-0386), on the home shard: the
 * answers go into out instead of onto the stream. <resume/> (c authenticated, not bound): 1
 * when the session moved to c - then, once the answer is written, xc_sm_resumed() sends the
 * unacknowledged stanzas again - or 0 (out holds <failed/>). <enable/> (c bound): out gets
 * <enabled/> or <failed/>. */
struct cm_buf;
int xc_sm_resume_inline(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out);
void xc_sm_resumed(struct xc_c2s *c);
void xc_sm_enable_inline(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out);

/* A stanza from the client was handled: counted when stream management is on. */
void xc_sm_handled(struct xc_c2s *c);

/* Enter the ticket scope (ticket.h) of the message c just counted as handled: what the
 * message causes is safe before an <a/> counts it. Leave it with xc_ticket_leave(). Without
 * stream management the scope carries no ticket. */
void xc_sm_scope(struct xc_c2s *c, struct xc_ticket_scope *sc);

/* For tickets (ticket.c): t (borrowed) is on its way for session s; and one came home. */
void xc_sm_ticket_add(struct xc_sm *s, struct xc_ticket *t);
void xc_sm_ticket_done(struct xc_sm *s);

/* Send stanza (not consumed) on a session with stream management: a copy is queued until the
 * client acknowledges it, then it is written, unless the session is hibernated. Returns what
 * writing returned (0 when only queued). A full queue ends the stream (policy-violation). */
int xc_sm_send(struct xc_c2s *c, const struct cm_xml_node *stanza);

/* Queue st (handed over) as sent without writing it: a stanza that was held back (csi.c) for
 * a connection that is now gone. It is sent on resumption, or routed again when the session
 * ends. Without memory the sender is answered resource-constraint. */
void xc_sm_keep(struct xc_c2s *c, struct cm_xml_node *st);

/* Ask the client for an acknowledgement now (the keepalive of a session with stream
 * management). 0, or -ENOENT when stream management is off. */
int xc_sm_request(struct xc_c2s *c);

/* The stream ends for good (the client closed it, or a stream error other than a timeout): the
 * session will not hibernate. */
void xc_sm_ended(struct xc_c2s *c);

/* The connection is gone: true when the session hibernates (the caller keeps c, without a
 * transport, out of the shard's connections), false when it ends now. */
bool xc_sm_hibernate(struct xc_c2s *c);

/* The session ends (after it was unbound; its JID is still set): the stanzas it did not
 * acknowledge are routed again, and its state is freed. Accepts c without stream management. */
void xc_sm_free(struct xc_c2s *c);

/* End every hibernated session of the shard (the server stops); their stanzas are routed
 * again. */
void xc_sm_close_all(struct xc_shard *sh);

/* Stanza st (borrowed) was queued for hibernated session c: push (XEP-0357, push.h) hears of
 * it. */
void xc_sm_queued_while_hibernated(struct xc_c2s *c, const struct cm_xml_node *st);

/* For the push module: how long hibernated session c waits for its client, in ms, from now on
 * (push.c extends it while the account has a push registration). -ENOENT without resumption. */
int xc_sm_set_resume_timeout(struct xc_c2s *c, uint64_t ms);

#endif
