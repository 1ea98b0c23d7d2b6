/* bind2.h - XEP-0386 Bind 2: a resource bound inside the SASL2 <authenticate/> (sasl2.c), with
 * what a client does right after binding done in the same round trip.
 *
 * The resource is the server's choice: the client's <tag/> (its software's name, Resourceprep'd,
 * at most XC_BIND2_TAG_MAX characters) and a dot, then 8 hexadecimal digits of SHA-256 of the
 * client's user-agent id (XEP-0388), so that an instance that reconnects gets the same resource
 * again - and takes it over from its own earlier session - while the id itself is not shown to
 * contacts. A client without a user-agent id gets a generated resource after its tag.
 *
 * Inline, in <bind/>: <enable xmlns='urn:xmpp:sm:3'/> (answered with <enabled/> inside
 * <bound/>), <enable xmlns='urn:xmpp:carbons:2'/> and <inactive xmlns='urn:xmpp:csi:0'/> (their
 * effect only). */
#ifndef XC_BIND2_H
#define XC_BIND2_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/buf.h"
#include "cm/xml.h"

#define XC_NS_BIND2      "urn:xmpp:bind:0"
#define XC_BIND2_TAG_MAX 32
#define XC_BIND2_RES_MAX (XC_BIND2_TAG_MAX * 4 + 1 + 16 + 1) /* bytes, with the NUL */

struct xc_c2s;

/* The resource for tag (may be NULL or empty) and agent (the user-agent id; NULL: none, gen is
 * used, a fresh id) into out, not yet Resourceprep'd. 0, or -EINVAL when the tag is longer
 * than XC_BIND2_TAG_MAX characters. */
int xc_bind2_resource(const char *tag, const char *agent, const char *gen, char *out, size_t len);

/* The features a client may ask for inside <bind/>, for the SASL2 <inline/> list. 0, -ENOMEM. */
int xc_bind2_features(const struct xc_c2s *c, struct cm_xml_node *inline_el);

/* Bind c (authenticated, on its home shard) as bind (the <bind/> element) and agent ask, and
 * do what it asks inline; <bound/> with the answers goes into out. 0, or a negative errno with
 * nothing bound (-EINVAL: a tag too long or that Resourceprep refuses). The CSI state is set
 * with xc_bind2_after() once <success/> went out. */
int xc_bind2_bind(struct xc_c2s *c, const struct cm_xml_node *bind, const char *agent,
                  struct cm_buf *out);
void xc_bind2_after(struct xc_c2s *c, const struct cm_xml_node *bind);

#endif
