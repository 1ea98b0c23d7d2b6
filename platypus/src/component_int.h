/* component_int.h - what component.c and component_push.c share: the XEP-0357 mapping, apart so
 * that it can be tested (and fuzzed) alone. Private to the component and its tests. */
#ifndef PP_COMPONENT_INT_H
#define PP_COMPONENT_INT_H

#include <stddef.h>

#include "component.h"

struct cm_xml_node;
struct pp_notif;

/* Read a pubsub publish IQ carrying a urn:xmpp:push:0 notification into n (initialised by the
 * caller). *secret receives the publish-options "secret" value (borrowed from iq) or NULL.
 * 0, or -EINVAL with a precise reason in err ("publish-options: service must be apns or fcm"),
 * or -ENOENT when iq is not a push publish at all. */
int pp_component__push_parse(const struct cm_xml_node *iq, struct pp_notif *n, const char **secret,
                             char *err, size_t errlen);

#endif
