/* offline.h - messages for users who are away (XEP-0160): stored, then handed over with their
 * time of arrival (XEP-0203) at the user's next available presence. A full store answers the
 * sender resource-constraint; an account that does not exist, service-unavailable. */
#ifndef XC_OFFLINE_H
#define XC_OFFLINE_H

#include "cm/xml.h"

struct xc_shard;
struct xc_c2s;

/* Store message st (owned) for its 'to' (a local user). */
void xc_offline_store(struct xc_shard *sh, struct cm_xml_node *st);

/* Session c just became available: send it what was stored for its user. */
void xc_offline_deliver(struct xc_shard *sh, struct xc_c2s *c);

#endif
