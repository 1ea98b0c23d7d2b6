/* blocking.h - blocking (XEP-0191): a user's block list, the IQs that read and change it, and the
 * rule that keeps a blocked entity out in both directions.
 *
 * The list is loaded with the roster (user.h) and changed in memory at once, then in the store;
 * the IQ is answered once the change is committed. Every session that asked for the list gets
 * the changes pushed. Blocking a contact sends it unavailable presence from the user's available
 * sessions; unblocking sends their presence again (when the contact is subscribed).
 *
 * Matching follows XEP-0016's order: an item user@domain/resource matches that JID only,
 * user@domain any of its resources, domain/resource that resource at the domain, domain
 * everything from the domain.
 */
#ifndef XC_BLOCKING_H
#define XC_BLOCKING_H

#include <stdbool.h>

#include "cm/xml.h"
#include "jid.h"

struct xc_c2s;
struct xc_shard;
struct xc_user;

#define XC_NS_BLOCKING "urn:xmpp:blocking"

/* Whether u (roster loaded) blocks who. */
bool xc_blocking_blocks(const struct xc_user *u, const struct xc_jid *who);

/* A blocking IQ (blocklist get, block or unblock set) from session c of its own account. Takes
 * iq; answers it. */
void xc_blocking_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq);

/* A stanza the bound session c sends to a JID its user blocks: refused (XEP-0191 3.5: message and
 * IQ answered not-acceptable with <blocked/>, presence dropped). Takes st. */
void xc_blocking_refuse_outbound(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *st);

/* A stanza for user u from an entity u blocks: dropped, or for a message or an IQ request
 * answered service-unavailable (XEP-0191 3.6). Takes st. */
void xc_blocking_refuse_inbound(struct xc_shard *sh, struct cm_xml_node *st);

#endif
