/* iq.h - IQs the server answers itself: to the server (disco, ping, version), for a user's own
 * account (roster, disco of the account, blocking, the legacy session), and to other accounts
 * (disco of an account, ping). Unknown ones get service-unavailable (RFC 6120 8.4). */
#ifndef XC_IQ_H
#define XC_IQ_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"
#include "jid.h"

struct xc_shard;
struct xc_c2s;
struct xc_config;

/* An IQ to the server's domain to. Takes iq. */
void xc_iq_server(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *iq);

/* An IQ to the bare JID to of a local user, on its home shard. Takes iq. */
void xc_iq_account(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *iq);

/* The XEP-0115 verification string of the server's disco#info (identity and features, with
 * XEP-0215's when extdisco, and the contact addresses of cfg as an extended form), as
 * advertised in its stream features; out gets at most len bytes. 0, -ENOMEM, -ENOBUFS. */
int xc_iq_caps_ver(char *out, size_t len, const struct xc_config *cfg, bool extdisco);

#define XC_NS_CAPS   "http://jabber.org/protocol/caps"
#define XC_CAPS_NODE "https://xmpp-core.invalid/caps"

#endif
