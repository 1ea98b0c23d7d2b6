/* csi.h - client state indication (XEP-0352, urn:xmpp:csi:0): a client that says it is
 * <inactive/> (a phone whose screen is off) is sent only what matters now; the rest waits.
 *
 * What matters (xc_csi_classify()) follows what mobile servers do (Prosody's mod_csi_simple,
 * ejabberd's mod_client_state): every IQ; messages with a body or a subject, encrypted payloads
 * (OMEMO, OpenPGP, XEP-0380), Jingle Message Initiation, invitations, errors, archive results
 * the client asked for; a carbon copy when the message it wraps matters; subscription requests
 * and answers. What does not: chat states, receipts and markers alone, headlines, and presence
 * updates (available, unavailable, errors).
 *
 * While the client is inactive, what does not matter is held, in order, in a queue of its
 * connection. A presence update replaces the one held from the same full JID (only the latest
 * counts). The queue is flushed, oldest first, before anything that matters goes out (so the
 * client sees everything in the order it came), when it holds csi.max_held stanzas, and when
 * the client says <active/>.
 *
 * Held stanzas are not yet sent: stream management (sm.c) counts and keeps a stanza only when
 * it leaves the queue. When the connection goes, the held stanzas are handed to stream
 * management's queue as if sent (xc_csi_drain()): a hibernated session keeps them for its
 * resumption, a session that ends routes them again with its other unacknowledged stanzas.
 * Without stream management they go with the connection, as anything in flight would. A stream
 * starts active, a resumed one too.
 */
#ifndef XC_CSI_H
#define XC_CSI_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/list.h"
#include "cm/xml.h"

#define XC_NS_CSI "urn:xmpp:csi:0"

struct xc_c2s;

/* --- what matters, and the queue (plain data, tested on their own) ------------------------- */

enum xc_csi_class {
	XC_CSI_URGENT,   /* goes out at once, after whatever is held */
	XC_CSI_HOLD,     /* waits for the next flush */
	XC_CSI_PRESENCE, /* waits, and a later update from the same full JID replaces it */
};

/* What stanza st (a message, presence or IQ) is to an inactive client. */
enum xc_csi_class xc_csi_classify(const struct cm_xml_node *st);

struct xc_csi_queue {
	struct cm_list items; /* of struct xc_csi_item, oldest first */
	size_t n;
	size_t max;        /* the bound: a queue holding this many is to be flushed */
	size_t superseded; /* presence updates dropped since the last look (the caller resets) */
};

struct xc_csi_item {
	struct cm_list link;
	struct cm_xml_node *st; /* owned */
	bool presence;          /* XC_CSI_PRESENCE: replaced by a later one from the same 'from' */
};

/* An empty queue flushed at max stanzas (at least 1). */
void xc_csi_queue_init(struct xc_csi_queue *q, size_t max);

/* Free what is still held. */
void xc_csi_queue_close(struct xc_csi_queue *q);

/* Hold st (handed over on success) at the end of the queue, as class cls (XC_CSI_HOLD or
 * XC_CSI_PRESENCE). A presence update first removes the one held from the same 'from', if any
 * (counted in q->superseded). 0; 1 when the queue now holds its bound, so that what it holds
 * is to be sent; or -ENOMEM (st stays the caller's, the queue unchanged). */
int xc_csi_queue_push(struct xc_csi_queue *q, struct cm_xml_node *st, enum xc_csi_class cls);

/* Take the oldest held stanza out (handed over), NULL when none is held. */
struct cm_xml_node *xc_csi_queue_pop(struct xc_csi_queue *q);

/* --- a connection's state (csi.c) ----------------------------------------------------------- */

struct xc_csi;

/* An element in XC_NS_CSI from an authenticated client: <active/> or <inactive/>, never
 * answered. 0 to go on reading, or a negative errno when the stream ended (an unknown element
 * is unsupported-stanza-type). */
int xc_csi_element(struct xc_c2s *c, const struct cm_xml_node *el);

/* A connection's client is inactive while c->csi is set (c2s.h): what is sent to it goes
 * through here. Send stanza (not consumed) to inactive client c: held (a copy), or sent at once
 * after what is held. Returns what sending returned, 0 when held; a stanza that cannot be held for
 * want of memory is sent. */
int xc_csi_send(struct xc_c2s *c, const struct cm_xml_node *stanza);

/* Send what is held now, oldest first (the client stays inactive): before the stream ends. */
void xc_csi_flush(struct xc_c2s *c);

/* The connection is going (closed, or its session resumed elsewhere): what is held goes to
 * stream management's queue unsent, or is dropped without it, and the client counts as active
 * again. Accepts an active c. */
void xc_csi_drain(struct xc_c2s *c);

#endif
