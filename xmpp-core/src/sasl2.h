/* sasl2.h - XEP-0388 Extensible SASL Profile (urn:xmpp:sasl:2) on a client stream: the same
 * mechanisms as RFC 6120 SASL (sasl.c runs their exchanges), FAST's HT-SHA-256 ones (fast.h),
 * and what may be done inside <authenticate/> so that a client is ready in one round trip after
 * TLS: Bind 2 (bind2.h), stream resumption (XEP-0198), a FAST token asked for or used.
 *
 * The exchange: <authenticate mechanism=...> with <initial-response/> and <user-agent id=.../>
 * (the client instance's stable identity: Bind 2's resource and FAST's tokens hang on it),
 * <challenge/> and <response/>, then <failure/> (an RFC 6120 condition, and <text/>) or
 * <success/> with <additional-data/> (SCRAM's server-final message, HT's Responder mac) and
 * <authorization-identifier/> (the full JID once bound, else the bare one), and what was done
 * inline (<resumed/> or <failed/>, <bound/>, FAST's <token/>). No stream restart: <success/> is
 * followed by the stream's features. The login throttle and the limit of failed attempts per
 * stream are SASL's (sasl.h).
 *
 * Once the mechanism succeeded the connection moves to its user's home shard (as after SASL)
 * before anything is bound or resumed, and <success/> is sent from there. Until then the client
 * may send nothing: anything it sends ends the stream (the XEP's "during authentication").
 */
#ifndef XC_SASL2_H
#define XC_SASL2_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"

#define XC_NS_SASL2 "urn:xmpp:sasl:2"

struct xc_c2s;
struct xc_sasl2;

/* Add <authentication/> (mechanisms, and <inline/>: Bind 2, stream management, FAST) to the
 * features of c, an unauthenticated stream. 0, -ENOMEM. */
int xc_sasl2_features(struct xc_c2s *c, struct cm_xml_node *features);

/* An element in XC_NS_SASL2 from the client before authentication: <authenticate/>,
 * <response/>, <abort/>. 0, or a negative errno when the stream ended. */
int xc_sasl2_element(struct xc_c2s *c, const struct cm_xml_node *el);

/* Whether a SASL2 login is under way on c and between its mechanism's success and <success/>:
 * the client must be silent. */
bool xc_sasl2_finishing(const struct xc_c2s *c);

/* What sasl.c tells the client, framed for SASL2 (c2s.c routes them here while c->sasl2 is
 * set). success takes user (the local part). */
void xc_sasl2_challenge(struct xc_c2s *c, const void *data, size_t len);
void xc_sasl2_failure(struct xc_c2s *c, const char *condition, const char *text);
void xc_sasl2_success(struct xc_c2s *c, char *user, const void *data, size_t len);

/* c2s.c: the authenticated connection is on its user's home shard: resume or bind as asked,
 * send <success/> and the features. */
void xc_sasl2_arrived(struct xc_c2s *c);

/* The connection goes away. Accepts NULL. */
void xc_sasl2_free(struct xc_sasl2 *s);

#endif
