/* stanza.h - what every module needs to read and answer stanzas: kinds, the addresses of a
 * stanza, error replies (RFC 6120 8.3) and IQ results. */
#ifndef XC_STANZA_H
#define XC_STANZA_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define XC_NS_STREAMS "urn:ietf:params:xml:ns:xmpp-streams"

enum xc_kind {
	XC_MESSAGE,
	XC_PRESENCE,
	XC_IQ,
	XC_OTHER, /* not a stanza */
};

/* The kind of a top-level element in jabber:client (or jabber:component:accept). */
enum xc_kind xc_stanza_kind(const struct cm_xml_node *n);

/* The type attribute, with the default of the kind ("normal" for messages, "available" for
 * presence, which has no type attribute then; NULL for IQs without one). */
const char *xc_stanza_type(const struct cm_xml_node *n);

/* Parse the 'to' (or 'from') attribute into j. 0 (j empty when the attribute is absent),
 * -EINVAL (not a JID), -ENOMEM. */
int xc_stanza_jid(const struct cm_xml_node *n, const char *attr, struct xc_jid *j);

/* Build the error reply to st: its 'from' becomes 'to' and the reverse (from: the stanza's own
 * 'to', or fallback when it has none), type='error', and
 * <error type='etype'><condition xmlns='...stanzas'/>[<text/>]</error>. The original's children
 * are kept for messages and presence (RFC 6120 8.3.1), dropped for IQs. NULL without memory, or
 * when st is itself an error (errors are never answered). */
struct cm_xml_node *xc_stanza_error(const struct cm_xml_node *st, const char *etype,
                                    const char *condition, const char *text,
                                    const char *fallback_from);

/* An empty IQ result to iq (to and from swapped, same id); child (may be NULL) is added under it,
 * handed over. NULL without memory. */
struct cm_xml_node *xc_iq_result(const struct cm_xml_node *iq, struct cm_xml_node *child);

/* Parse one stanza written as XML text in the jabber:client namespace (as the offline store
 * keeps them) into *out (owned by the caller). 0, -EBADMSG, -ENOMEM. */
int xc_stanza_parse(const char *xml, size_t len, struct cm_xml_node **out);

/* The same for a stanza that must be one <message/> of jabber:client: -EBADMSG for anything
 * else (nothing kept). */
int xc_message_parse(const char *xml, size_t len, struct cm_xml_node **out);

/* The time of day as Unix ms (CLOCK_REALTIME): what stamps (delays, archive rows, last
 * activity) are made of. */
int64_t xc_wall_ms(void);

/* Set to/from on a stanza (NULL removes). 0 or -ENOMEM. */
int xc_stanza_set_addrs(struct cm_xml_node *n, const char *to, const char *from);

#endif
