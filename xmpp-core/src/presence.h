/* presence.h - presence (RFC 6121 4) and subscriptions (RFC 6121 3) on the user's home shard.
 *
 * A session's available and unavailable presence without 'to' is broadcast to the contacts
 * allowed to see it and to the user's own available sessions; the first one also probes the
 * contacts the user may see, hands over subscription requests still waiting and the messages
 * stored offline. Subscription stanzas run the state machine of subscription.h on the roster of
 * the user they concern: outbound on the sender's shard before they leave, inbound on the
 * contact's. Probes are answered with the presence of each available session. */
#ifndef XC_PRESENCE_H
#define XC_PRESENCE_H

#include "cm/xml.h"
#include "jid.h"

struct xc_shard;
struct xc_c2s;

/* A presence without 'to' from session from (a full JID on this shard). Takes st. */
void xc_presence_broadcast(struct xc_shard *sh, const struct xc_jid *from, struct cm_xml_node *st);

/* A presence with 'to' from session c: subscriptions run the outbound side here, then go on;
 * directed presence goes on as it is. Takes st. */
void xc_presence_outbound(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *st);

/* A presence for local user to (bare or full), on to's home shard. Takes st. */
void xc_presence_inbound(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *st);

/* Session c goes away: if it was available, its contacts see it leave. */
void xc_presence_gone(struct xc_shard *sh, struct xc_c2s *c);

/* Forget where session c sent directed presence (it is going). */
void xc_presence_forget_directed(struct xc_c2s *c);

#endif
