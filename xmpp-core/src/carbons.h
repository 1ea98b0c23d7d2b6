/* carbons.h - message carbons (XEP-0280, urn:xmpp:carbons:2): every session of a user that
 * enabled carbons sees the one-to-one chats its other sessions send and receive.
 *
 * A session enables or disables carbons with an IQ set (<enable/>, <disable/>); the state lives
 * and dies with the session. When a message a user's session sends is eligible, each other
 * session of the user with carbons enabled gets a copy wrapped in <sent/>; when a message for
 * the user is delivered, each session with carbons enabled that was not handed the message
 * itself gets a copy wrapped in <received/>. Copies come from the user's bare JID.
 *
 * Which messages (XEP-0280's eligibility rules, xc_carbons_eligible()): type chat; type normal
 * with a body; any message carrying what instant messaging clients sync (receipts, chat states,
 * markers, Jingle Message Initiation, encrypted payloads, reactions, retractions). Never
 * groupchat, headline or error messages, never one with <private/> (carbons namespace) or a
 * <no-copy/> hint, never one that is itself a carbon copy.
 */
#ifndef XC_CARBONS_H
#define XC_CARBONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"

#define XC_NS_CARBONS "urn:xmpp:carbons:2"

struct xc_c2s;
struct xc_shard;
struct xc_user;

/* Whether message st may be copied to the user's other sessions. */
bool xc_carbons_eligible(const struct cm_xml_node *st);

/* An IQ in urn:xmpp:carbons:2 from own (bound): enable or disable. Takes iq. */
void xc_carbons_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq);

/* Message st (not consumed, 'from' stamped) leaves from session c: <sent/> copies to c's
 * user's other sessions with carbons enabled. */
void xc_carbons_sent(struct xc_c2s *c, const struct cm_xml_node *st);

/* Message st (not consumed) was delivered to u's sessions got[0..ngot): <received/> copies to
 * u's other sessions with carbons enabled. On u's home shard. */
void xc_carbons_received(struct xc_user *u, const struct cm_xml_node *st, struct xc_c2s *const *got,
                         size_t ngot);

#endif
