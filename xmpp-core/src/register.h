/* register.h - in-band registration (XEP-0077): a new account before authentication (when
 * registration.enabled, over TLS, at most registration.per_ip_per_hour per address), and for an
 * authenticated session, a new password or the removal of its account.
 *
 * Passwords become SCRAM keys at once (auth.scram_iterations), like the admin API's; the account
 * exists once the store has committed it, and the client hears so only then.
 */
#ifndef XC_REGISTER_H
#define XC_REGISTER_H

#include <stdbool.h>

#include "cm/xml.h"

struct xc_c2s;
struct xc_shard;
struct xc_register;

#define XC_NS_REGISTER      "jabber:iq:register"
#define XC_NS_REGISTER_FEAT "http://jabber.org/features/iq-register"

/* Whether the stream feature is offered to c now (before authentication). */
bool xc_register_offered(const struct xc_c2s *c);

/* A jabber:iq:register IQ on a stream that is not authenticated. Takes iq. */
void xc_register_preauth(struct xc_c2s *c, struct cm_xml_node *iq);

/* A jabber:iq:register IQ from the bound session c about its own account. Takes iq. */
void xc_register_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq);

/* The connection goes away: a registration on its way answers nobody. */
void xc_register_detach(struct xc_c2s *c);

#endif
