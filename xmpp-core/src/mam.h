/* mam.h - the message archive (XEP-0313, urn:xmpp:mam:2) with stanza ids (XEP-0359) and paged
 * queries (XEP-0059).
 *
 * What is archived. Every one-to-one message a local user sends or receives goes into that
 * user's archive (so a message between two local users is in both) when it is worth keeping:
 * type chat or normal with a body, a <store/> hint, or a Jingle Message Initiation element;
 * never with a <no-store/> or <no-permanent-store/> hint, never an error, headline or
 * groupchat. The user's preferences (<prefs/>: a default of always, roster or never, and JIDs
 * always or never archived) decide for each peer; they come from the store with the roster, so
 * the decision is made in memory on the user's home shard.
 *
 * Stanza ids. A message archived for its recipient carries <stanza-id by='user@host' id=.../>
 * when it is delivered (or stored offline); that id is the message's id in the archive. A
 * stanza-id a sender put in a message in the name of one of our hosts is removed, archived or
 * not: nobody may forge the server's ids.
 *
 * Durability. An archive write is a store request nobody waits for: it goes into one of the
 * store's group commits (after at most storage.linger_ms, before any later request of that
 * shard that is waited for), and the message is delivered without waiting for it. Nothing
 * comes back to the shard unless the archived_unattended event needs it.
 *
 * Queries (an IQ set to the user's own bare JID) filter by peer (a bare JID matches every
 * resource, a full JID only itself), time (start, end), position (after-id, before-id) and ids,
 * and page with RSM (max, after, before; an empty <before/> is the last page). Each result
 * goes to the asking session as a <message/> with <result/>, then the IQ result carries
 * <fin complete=.../> with the first and last ids and the count. Ids the archive does not hold
 * answer item-not-found; malformed queries bad-request with a text saying what is wrong.
 *
 * Retention (archive.retention_days): shard 0 submits a purge of the oldest rows every hour, in
 * bounded steps, on the store's thread.
 */
#ifndef XC_MAM_H
#define XC_MAM_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/xml.h"

#define XC_NS_MAM          "urn:xmpp:mam:2"
#define XC_NS_MAM_EXTENDED "urn:xmpp:mam:2#extended"
#define XC_NS_SID          "urn:xmpp:sid:0"

struct cm_metrics;
struct xc_c2s;
struct xc_server;
struct xc_shard;
struct xc_user;

struct xc_mam;

/* What another module (XEP-0357 push) may want to hear of. Each callback runs on the user's
 * home shard; its pointers are borrowed for the call. */
struct xc_mam_events {
	/* A message was archived (committed) for user (a bare JID), which had no available
	 * session at that moment: id is its archive id, stanza the message as XML text. */
	void (*archived_unattended)(void *arg, struct xc_shard *sh, const char *user,
	                            const char *id, const char *stanza);
	void *arg; /* borrowed */
};

/* The archive of srv (borrowed; its configuration decides whether it is on), with its metrics
 * registered in metrics (borrowed). *out owned by the caller (xc_mam_free). 0, -ENOMEM, or the
 * registry's error (logged). */
int xc_mam_alloc(struct xc_mam **out, struct xc_server *srv, struct cm_metrics *metrics);
void xc_mam_free(struct xc_mam *m); /* accepts NULL */

/* Set the events (copied); before the workers start, since the shards read them unlocked. */
void xc_mam_set_events(struct xc_mam *m, const struct xc_mam_events *ev);

/* Whether the archive is on (archive.enabled). */
bool xc_mam_enabled(const struct xc_mam *m);

/* Shard 0 starts and stops the retention purge on its loop (nothing when retention is 0). */
void xc_mam_purge_start(struct xc_mam *m, struct xc_shard *sh);
void xc_mam_purge_stop(struct xc_mam *m, struct xc_shard *sh);

/* Whether message st is worth archiving by its content (type, body, hints, JMI), whoever its
 * peers are. */
bool xc_mam_archivable(const struct cm_xml_node *st);

/* Remove from message st every <stanza-id/> whose 'by' is one of the server's hosts or an
 * account under one: those ids are the server's to give. */
void xc_mam_strip_ids(const struct xc_server *srv, struct cm_xml_node *st);

/* On u's home shard, message st (not consumed) is about to be delivered to u (its roster
 * loaded, the account existing): archive it in u's archive when u's preferences say so, and
 * stamp it with its archive id. Stanza-ids in the server's name are removed either way. */
void xc_mam_inbound(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st);

/* On the home shard of bound session c, message st (not consumed, 'from' stamped) leaves for
 * another entity: archive it in c's user's archive when its preferences say so. */
void xc_mam_outbound(struct xc_c2s *c, struct cm_xml_node *st);

/* An IQ in urn:xmpp:mam:2 from own (a session of the account it is addressed to): query, its
 * form, preferences. Takes iq. */
void xc_mam_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq);

/* A user's preferences in memory, from the store's (handed over: *p is left empty). NULL when
 * p holds nothing of the user's own (found false) or without memory: the server's default
 * applies. */
struct xc_mam_prefs;
struct xc_archive_prefs;
struct xc_mam_prefs *xc_mam_prefs_take(struct xc_archive_prefs *p, bool found);
void xc_mam_prefs_free(struct xc_mam_prefs *p); /* accepts NULL */

#endif
