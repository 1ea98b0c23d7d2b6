/* session.h - sessions: binding a resource (RFC 6120 7), the user's sessions on its home shard,
 * and the stanzas a session sends.
 *
 * A bound connection is a session of its user (struct xc_user, on the home shard). Binding picks
 * the resource (the client's, Resourceprep'd, or a generated one) and settles a conflict with a
 * session already holding it as configured (c2s.resource_conflict). What the client sends then
 * goes to the router, except what concerns the session itself (the legacy session IQ). */
#ifndef XC_SESSION_H
#define XC_SESSION_H

#include <stdbool.h>

#include "cm/xml.h"

struct xc_c2s;
struct xc_jid;
struct xc_shard;
struct xc_user;

/* The client's bind IQ (state AUTHED, on the user's home shard). Answers it. */
void xc_session_bind(struct xc_c2s *c, const struct cm_xml_node *iq);

/* Bind c (authenticated, on the user's home shard) to resource res (Resourceprep'd already;
 * NULL: a generated one), without an IQ: Bind2 (XEP-0386, bind2.c). A session holding that
 * resource is replaced: the resource is the same client instance's. 0 or a negative errno. */
int xc_session_bind_resource(struct xc_c2s *c, const char *res);

/* The connection is going away: leave the user's sessions (unavailable presence goes out if
 * the session was available). */
void xc_session_unbind(struct xc_c2s *c);

/* Stream resumption (XEP-0198): the session of connection src becomes connection dst's (its
 * JID, its place among its user's sessions, presence, interests), as if dst had bound it; src
 * keeps nothing of it. Both on the user's home shard. */
void xc_session_move(struct xc_c2s *dst, struct xc_c2s *src);

/* A stanza from bound client c, 'from' stamped. Takes st. */
void xc_session_from_client(struct xc_c2s *c, struct cm_xml_node *st);

/* End the sessions of jid (bare: all of the account's) on its home shard with a stream error
 * (condition and text, constants). Returns how many were ended. */
unsigned xc_session_kick(struct xc_shard *sh, const struct xc_jid *jid, const char *condition,
                         const char *text);

/* Send the IQ set iq (not consumed) to every session of u that want() accepts, each with its own
 * id and its full JID as 'to': a push (RFC 6121 2.1.6, XEP-0191 3.3). */
void xc_session_push(struct xc_user *u, struct cm_xml_node *iq,
                     bool (*want)(const struct xc_c2s *c));

/* The session of full JID jid on this shard (its home), or NULL. */
struct xc_c2s *xc_session_find(struct xc_shard *sh, const struct xc_jid *jid);

#endif
