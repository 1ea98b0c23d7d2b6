/* private.h - private XML storage (XEP-0049): elements a client keeps on the server for itself
 * (bookmarks in storage:bookmarks, roster notes, settings), one per namespace, read and
 * written by the account's own sessions only. */
#ifndef XC_PRIVATE_H
#define XC_PRIVATE_H

#include <stdbool.h>

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_PRIVATE "jabber:iq:private"

struct xc_c2s;
struct xc_shard;

/* Whether ns is one no private element may be in: jabber:iq:private itself (an element that
 * declares no namespace of its own inherits it), the stream namespaces, or none. */
bool xc_private_ns_reserved(const char *ns);

/* An IQ get or set with <query xmlns='jabber:iq:private'/> to the account to (a bare JID); own
 * is the account's session that sent it, NULL for anyone else, who is refused. A set stores each
 * child element under its namespace (one that is empty, without attributes, removes it), all or
 * none; a get answers each namespace asked with what is kept, or the empty element asked.
 * Takes iq. */
void xc_private_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                   struct cm_xml_node *iq);

#endif
