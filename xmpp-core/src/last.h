/* last.h - last activity (XEP-0012) of an account: when its last available session went (and
 * the status it left with), kept in the store and told to those the account's presence reaches
 * (its subscribers, not blocked) and to the account itself; 0 seconds while it is online. The
 * server's own uptime is iq.c's. */
#ifndef XC_LAST_H
#define XC_LAST_H

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_LAST "jabber:iq:last"

struct xc_c2s;
struct xc_shard;
struct xc_user;

/* u's last available session went now, with its unavailable presence st (borrowed; its
 * <status/> is kept, at most 1024 bytes of it). A write nobody waits for. */
void xc_last_gone(struct xc_shard *sh, const struct xc_user *u, const struct cm_xml_node *st);

/* An IQ with <query xmlns='jabber:iq:last'/> to the account to (a bare JID, on its home shard);
 * own is the account's session that sent it, or NULL. Takes iq. */
void xc_last_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                struct cm_xml_node *iq);

#endif
