/* pep.h - personal eventing (XEP-0163): a publish-subscribe service on every account's bare JID.
 *
 * Nodes and items live in the store (store.h's PEP ops), created by the first publish to a node
 * (with the configuration its publish-options ask for, XEP-0060 7.1.5, or the defaults:
 * presence access, persistent items, one item kept). Who hears of a publication, a retraction
 * or a node's deletion: the owner's available sessions whose entity capabilities (XEP-0115)
 * include NODE+notify (or that announced none), and the contacts the node's access model admits
 * whose capabilities include it. Capabilities are learnt from the presence a contact sends the
 * owner, or one of the owner's sessions broadcasts (pep_caps.c: disco#info asked once per
 * unknown hash and cached on the shard); a resource that comes online is sent each node's last
 * item it would have been notified of.
 *
 * Everything runs on the owner's home shard. Ownership: every function that takes an IQ takes it
 * (frees it or hands it on). */
#ifndef XC_PEP_H
#define XC_PEP_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_PUBSUB        "http://jabber.org/protocol/pubsub"
#define XC_NS_PUBSUB_OWNER  "http://jabber.org/protocol/pubsub#owner"
#define XC_NS_PUBSUB_EVENT  "http://jabber.org/protocol/pubsub#event"
#define XC_NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define XC_NS_CAPS          "http://jabber.org/protocol/caps"

struct cm_metrics;
struct xc_c2s;
struct xc_pep;
struct xc_server;
struct xc_shard;
struct xc_user;

/* The PEP service of srv (its configuration's pep section), its metrics registered in metrics
 * (borrowed). *out is owned by the caller (xc_pep_free). 0, -ENOMEM, or the registration's
 * error. */
int xc_pep_alloc(struct xc_pep **out, struct xc_server *srv, struct cm_metrics *metrics);
void xc_pep_free(struct xc_pep *p); /* accepts NULL */

/* Whether PEP is on (pep.enabled). */
bool xc_pep_enabled(const struct xc_pep *p);

/* The features the account's disco#info adds for PEP: up to max of them into out (borrowed
 * constant strings); their number. */
size_t xc_pep_features(const char **out, size_t max);

/* A pubsub IQ (get or set, pubsub or pubsub#owner namespace) to the account owner (a bare JID):
 * own is the owner's session that sent it, or NULL for anyone else; u (borrowed) is the owner,
 * its roster in memory when it could be loaded. Takes iq. */
void xc_pep_iq(struct xc_shard *sh, struct xc_user *u, struct xc_c2s *own, struct cm_xml_node *iq);

/* disco#items of the account: its nodes the requester may see. Takes iq. */
void xc_pep_disco_items(struct xc_shard *sh, struct xc_user *u, struct xc_c2s *own,
                        struct cm_xml_node *iq);

/* An IQ result or error addressed to an account's bare JID: true when it answers a question
 * PEP asked (it is taken), false otherwise (iq stays the caller's). */
bool xc_pep_answer(struct xc_shard *sh, struct cm_xml_node *iq);

/* An available or unavailable presence (st, borrowed) from a contact reaches the account to
 * (its home is this shard): its capabilities are learnt and the last items sent. */
void xc_pep_presence(struct xc_shard *sh, const struct xc_jid *to, const struct cm_xml_node *st);

/* The account's own session full (its home is this shard) sent an available or unavailable
 * presence (st, borrowed) to its contacts: its capabilities are learnt, so that it is sent the
 * notifications it asks for (XEP-0163 4.3), and the last items when it comes online. */
void xc_pep_own_presence(struct xc_shard *sh, const struct xc_jid *full,
                         const struct cm_xml_node *st);

/* The server's own requests (avatar.c), without an IQ. done and got run on this shard with the
 * store's result (0 or a negative errno). */
typedef void (*xc_pep_done_fn)(struct xc_shard *sh, int err, void *arg);
typedef void (*xc_pep_item_fn)(struct xc_shard *sh, int err, int access, const char *payload,
                               void *arg);

/* Publish payload (taken) as item id of owner's (a bare JID) node, on the owner's behalf: a node
 * made for it gets access model access (enum xc_pep_access) and the defaults; the owner's
 * sessions and the contacts hear of it as of a client's publish. done may be NULL. */
void xc_pep_publish_for(struct xc_shard *sh, const char *owner, const char *node, const char *id,
                        struct cm_xml_node *payload, int access, xc_pep_done_fn done, void *arg);

/* Read item id of owner's node, whoever may read it: got runs with its payload (XML text,
 * borrowed for the call) and the node's access model; -ENOENT without such a node or item. */
void xc_pep_read_item(struct xc_shard *sh, const char *owner, const char *node, const char *id,
                      xc_pep_item_fn got, void *arg);

/* Release the shard's PEP state (capabilities cache, contacts heard from). On the shard's thread,
 * when it stops. */
void xc_pep_shard_close(struct xc_shard *sh);

#endif
