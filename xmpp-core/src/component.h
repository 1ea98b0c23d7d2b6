/* component.h - external components (XEP-0114): their listener on shard 0, the handshake with the
 * configured secret, and stanzas to and from their domains. */
#ifndef XC_COMPONENT_H
#define XC_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"
#include "jid.h"

struct xc_server;
struct xc_shard;

/* Open the component listeners (shard 0, before the workers start). 0 or a negative errno. */
int xc_component_listen(struct xc_shard *sh);

/* Close the component connections (shard 0). */
void xc_component_close_all(struct xc_shard *sh, bool now);

/* Whether domain (len bytes) is a configured component's. */
bool xc_component_known(const struct xc_server *srv, const char *domain, size_t len);

/* On shard 0: deliver st (owned) to the component serving to's domain, or bounce it. */
void xc_component_deliver(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to);

#endif
