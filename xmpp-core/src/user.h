/* user.h - a user at home on its shard: its sessions, and its roster held in memory while it is
 * needed.
 *
 * The roster is read from the store the first time something needs it (a session asks for it,
 * a presence is broadcast, a subscription request arrives) and kept while the user has
 * sessions; work that needs it meanwhile waits in order (xc_user_with_roster()). Changes are
 * applied in memory at once and written through the store in the order they happen. A user
 * without sessions, waiting work or store requests on their way is dropped from memory. */
#ifndef XC_USER_H
#define XC_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/map.h"
#include "cm/xml.h"
#include "jid.h"
#include "store.h"

struct xc_shard;
struct xc_c2s;
struct xc_mam_prefs;

enum xc_roster_state {
	XC_ROSTER_NONE,
	XC_ROSTER_LOADING,
	XC_ROSTER_READY,
};

struct xc_contact {
	struct cm_map_node node; /* in u->roster, by contact */
	struct xc_roster_item item;
};

struct xc_user {
	struct cm_map_node node; /* in shard->users, by bare JID */
	struct xc_jid bare;      /* owned */
	struct cm_list sessions; /* of struct xc_c2s (user_link), bound */
	enum xc_roster_state rstate;
	bool exists;          /* the account exists (known once the roster is loaded) */
	struct cm_map roster; /* of struct xc_contact, once loaded */
	uint64_t roster_version;
	struct xc_jid *blocked; /* owned array: the block list (XEP-0191), with the roster */
	size_t nblocked;
	struct xc_mam_prefs *mam_prefs; /* owned: archiving preferences (mam.c), with the roster;
	                                 * NULL: the server's default */
	char *avatar; /* owned: the hash of the vCard's PHOTO (avatar.h), "" for none; with the
	               * roster; NULL: not known */
	struct cm_list waiting; /* of struct xc_wait: work for when the roster is loaded */
	unsigned busy;          /* store requests on their way that come back to this user */
	unsigned held;          /* xc_user_get()s not yet released */
};

/* The user on this shard, or NULL (find). */
struct xc_user *xc_user_find(struct xc_shard *sh, const struct xc_jid *jid);

/* The user, created when it is not in memory, and held until xc_user_release() (gets nest:
 * delivering a stanza may get the same user again). NULL without memory. */
struct xc_user *xc_user_get(struct xc_shard *sh, const struct xc_jid *jid);
void xc_user_release(struct xc_shard *sh, struct xc_user *u);

/* Drop u from memory if nothing needs it any more: not held, no session, no waiting work, no
 * store request on its way. */
void xc_user_put(struct xc_shard *sh, struct xc_user *u);

/* Run fn(sh, u, st, arg) once u's roster is in memory: now, or after the load (in the order
 * asked). st (may be NULL) is handed over to fn, which frees it. When the load fails, fn runs
 * with u->rstate still not READY: it must cope (answer an error). */
typedef void (*xc_user_fn)(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                           const char *arg);
void xc_user_with_roster(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                         xc_user_fn fn, const char *arg);

/* Free the work waiting for u's roster without running it: for a shard that stops before the
 * store answers (the answer will never come). */
void xc_user_drop_waiting(struct xc_user *u);

/* Replace the block list with n JIDs (strings, not consumed; those that do not parse are left
 * out). 0 or -ENOMEM (the old list stays). */
int xc_user_set_blocked(struct xc_user *u, char *const *jids, size_t n);

/* The roster entry for contact (a bare JID), or NULL. */
struct xc_contact *xc_roster_find(struct xc_user *u, const char *contact);

/* Create an empty entry for contact; NULL without memory. */
struct xc_contact *xc_roster_add(struct xc_user *u, const char *contact);

/* Remove and free an entry. */
void xc_roster_remove(struct xc_user *u, struct xc_contact *ct);

/* Write the entry (or its removal, when ct is NULL and contact names it) to the store; the
 * roster's version moves on. done (may be NULL) runs on this shard once it is committed, with
 * the store's result (0 or a negative errno) and the new version. */
typedef void (*xc_user_stored_fn)(struct xc_shard *sh, struct xc_user *u, int err, uint64_t version,
                                  void *arg);
void xc_roster_store(struct xc_shard *sh, struct xc_user *u, const struct xc_contact *ct,
                     const char *contact, xc_user_stored_fn done, void *arg);

/* Available sessions of u, for presence and message delivery: calls fn for each. */
#define xc_user_foreach_session(u, pos)                                                            \
	for (struct cm_list *pos##_n = (u)->sessions.next;                                         \
	     pos##_n != &(u)->sessions &&                                                          \
	     ((pos) = cm_list_entry(pos##_n, struct xc_c2s, user_link), 1);                        \
	     pos##_n = pos##_n->next)

#endif
