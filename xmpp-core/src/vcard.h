/* vcard.h - vcard-temp (XEP-0054): each account's vCard, kept whole in the store, read by
 * anyone, written by the account's own sessions. */
#ifndef XC_VCARD_H
#define XC_VCARD_H

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_VCARD "vcard-temp"

struct xc_c2s;
struct xc_shard;

/* An IQ get or set with <vCard xmlns='vcard-temp'/> to the account to (a bare JID); own is the
 * account's session that sent it, NULL for anyone else (who may only read). A vCard is at most
 * pep.max_payload bytes as XML; an account without one answers an empty vCard. Takes iq. */
void xc_vcard_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                 struct cm_xml_node *iq);

#endif
