/* router.h - where a stanza goes (RFC 6120 10, RFC 6121 8).
 *
 * xc_route() takes a stanza from a local session, a component or the server itself, on any
 * shard, and sends it on: to the server (IQs it answers), to a local user's home shard (posted
 * there when it is another shard), to a component (shard 0), or back to its sender as an error
 * (a remote domain: this server has no server-to-server links yet). On the home shard,
 * xc_deliver() applies the rules for bare and full JIDs: messages to the available resources of
 * highest non-negative priority or to offline storage, presence to all available resources, IQs
 * to a full JID or to the server acting for the account. xc_route() is the one place that
 * picks a destination and nothing past it assumes that the recipient's sessions live in this
 * process: a remote node is one more destination there when xmpp-core runs in a cluster.
 */
#ifndef XC_ROUTER_H
#define XC_ROUTER_H

#include "cm/xml.h"
#include "jid.h"

struct xc_shard;

/* Send st (owned) on. Its 'from' is set and trusted; its 'to' may be absent (the sender's own
 * account) or malformed (answered with jid-malformed). */
void xc_route(struct xc_shard *sh, struct cm_xml_node *st);

/* On to's home shard: deliver st (owned) to the local user to (bare or full). */
void xc_deliver(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to);

/* Send an error reply to st (not consumed) back to its sender; nothing for errors. */
void xc_bounce(struct xc_shard *sh, const struct cm_xml_node *st, const char *etype,
               const char *condition);

/* Send the result of iq (not consumed) back to its sender, child (may be NULL) under it, taken;
 * nothing without memory. */
void xc_reply(struct xc_shard *sh, const struct cm_xml_node *iq, struct cm_xml_node *child);

#endif
