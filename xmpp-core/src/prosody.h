/* prosody.h - a Prosody server's data read into import documents (import.h), for xmppctl
 * import-prosody.
 *
 * The source is Prosody's SQL store in an SQLite file (Prosody 0.11 to 0.12: the "prosody" and
 * "prosodyarchive" tables), opened read-only; a server on the internal file store is first copied
 * into one with prosody-migrator (docs/xmpp-core.md says how). Per account, these stores carry
 * over:
 *   accounts   the SCRAM-SHA-1 keys Prosody keeps (salt, iteration count, StoredKey, ServerKey
 *              in hex) or, with plaintext storage, the password
 *   roster     contacts (subscription, ask, name, groups) and the pending requests
 *   blocklist  blocked JIDs (XEP-0191)
 *   offline    the messages kept for the user while away (XEP-0160), with when they came
 *   pep        personal eventing nodes (vCard4, avatar, nickname, bookmarks, OMEMO keys...) with
 *              their access model, how many items they keep and those items
 *   vcard      mod_vcard's vcard-temp, or one made from mod_vcard_legacy's vCard4 and avatar
 *              (prosody_vcard.c)
 *   private    mod_private's private XML (XEP-0049): one row per element (key "name:namespace",
 *              the element as Prosody's JSON of a preserialized stanza), each written again as
 *              XML by our writer, one element per namespace
 * Its message archive (mod_mam) comes after it, through the archive route (see "mod_mam's
 * archive" below). Everything else the account has (MUC logs...) is named in the notes as
 * left behind, with a count, and so is any state of these that could not be carried as it was
 * (a request from a contact who already has a subscription; a private element in no namespace
 * of its own, in a namespace another has, or past the stream parser's limits; an archived
 * message the archive route would refuse): nothing is dropped without a word.
 *
 * The conversion of an account's rows (xc_prosody_doc()) and of its archived messages
 * (xc_prosody_mam_add()) is apart from the database, so that it can be tested and fuzzed on
 * rows made up.
 */
#ifndef XC_PROSODY_H
#define XC_PROSODY_H

#include <stddef.h>

#include "import.h"

/* One row of Prosody's key-value table for the account: its store, key, type ("string",
 * "number", "boolean", "json", "xml") and value, as text. */
struct xc_prosody_row {
	const char *store, *key, *type, *value;
};

/* One item of Prosody's archive table for the account: its store ("offline", "pep_" and the
 * node's name, XC_PROSODY_MAM_STORE), key (the item's id), when it was stored (Unix seconds),
 * type ("xml") and value (the stanza, or the item's payload). */
struct xc_prosody_item {
	const char *store, *key;
	long long when;
	const char *type, *value;
};

/* The import document of jid (user@host) from its n rows, those of a store together (a store's
 * rows apart are noted apart), and its nitems archive items, those of a store together, oldest
 * first. *doc gets the JSON text
 * (owned; it may hold a password or keys: wipe it). Rows of stores other than those above are
 * noted, not read. 0; -EINVAL when the account cannot be carried over (no password and no
 * complete SCRAM-SHA-1 keys: err says what is missing); -ENOMEM. */
int xc_prosody_doc(const char *jid, const struct xc_prosody_row *rows, size_t n,
                   const struct xc_prosody_item *items, size_t nitems, char **doc,
                   struct xc_import_notes *notes, char *err, size_t errlen);

struct xc_prosody;

/* Open Prosody's SQLite database at path, read-only. 0, or a negative errno with err saying
 * why (not there, not Prosody's tables). */
int xc_prosody_open(struct xc_prosody **out, const char *path, char *err, size_t errlen);
void xc_prosody_close(struct xc_prosody *p);

/* The hosts with accounts in the database, sorted: *hosts owned (each string too). 0 or a
 * negative errno. */
int xc_prosody_hosts(struct xc_prosody *p, char ***hosts, size_t *n, char *err, size_t errlen);

/* The user names (local parts) of host's accounts, sorted. Same returns. */
int xc_prosody_users(struct xc_prosody *p, const char *host, char ***users, size_t *n, char *err,
                     size_t errlen);

/* The import document of user@host (as xc_prosody_doc()), with notes for the archives left
 * behind (MUC logs...: all but offline messages, PEP items and mod_mam's archive, which
 * xc_prosody_mam_read() reads). */
int xc_prosody_account(struct xc_prosody *p, const char *host, const char *user, char **doc,
                       struct xc_import_notes *notes, char *err, size_t errlen);

/* Free a list from xc_prosody_hosts() or xc_prosody_users(). */
void xc_prosody_list_free(char **v, size_t n);

/* --- mod_mam's archive ---------------------------------------------------------------------
 *
 * Prosody's mod_mam (as Debian's 0.12.3 does it) keeps an account's messages as items of the
 * archive table in the store "archive" (its option archive_store), one per message, in order:
 * "when" (Unix seconds, whole), "with" (the peer's bare JID), type "xml" and the stanza as
 * Prosody routed it, in no namespace of its own (jabber:client):
 *
 *   <message xml:lang='en' to='bob@example.org' from='alice@example.org/phone' type='chat'
 *            id='59c0'><body>hi</body></message>
 *
 * 'from' is the sender's full JID (Prosody sets it on what its clients send), 'to' as the
 * sender wrote it, and none on a message to the account's own bare JID (Prosody's router takes
 * it off: the message is to the account); no stanza-id (Prosody adds its own to what it
 * delivers, not to what it keeps). Each message goes to the admin API's archive route
 * (archive_import.h) as {"stamp_ms": when * 1000, "stanza": the stanza}, with 'to' put back as
 * the account's bare JID where it was taken off, oldest first, in requests cut here; the route
 * appends, so they are sent once, right after the route that made the account. */

#define XC_PROSODY_MAM_STORE        "archive"
#define XC_PROSODY_MAM_MAX_MESSAGES 1000      /* of one request (the route takes 5000) */
#define XC_PROSODY_MAM_MAX_BODY     (4 << 20) /* bytes of one request (the route reads 8 MiB) */

/* What one request, and each message in it, may be. */
struct xc_prosody_mam_limits {
	size_t max_stanza;   /* bytes of one message as read and as written (c2s.max_stanza) */
	size_t max_messages; /* messages of one request (1 or more) */
	size_t max_body;     /* bytes of one request's body */
};

/* Called with each request: body (JSON text of len bytes, borrowed for the call) holding n
 * messages (1 or more). 0 when the messages were taken; a negative errno stops the archive
 * there: it is what xc_prosody_mam_add() and xc_prosody_mam_end() return, then and after. */
typedef int (*xc_prosody_mam_cb)(void *arg, const char *body, size_t len, size_t n);

struct xc_prosody_mam;

/* A new cutter of jid's (user@host) archive into requests of at most lim, each handed to cb
 * with arg (both borrowed: they outlive it). 0; -EINVAL (jid is not an account's JID, or lim
 * allows no request); -ENOMEM. */
int xc_prosody_mam_alloc(struct xc_prosody_mam **out, const char *jid,
                         const struct xc_prosody_mam_limits *lim, xc_prosody_mam_cb cb, void *arg);

/* Add one item of the store "archive" (borrowed for the call; items oldest first): into the
 * request being filled, which goes to the callback first when it is full; or counted as left
 * behind when the route would refuse it (not a <message/> of jabber:client, not XML the
 * stream parser takes, neither 'from' nor 'to' the account's with the other side a JID, over
 * max_stanza bytes, alone too large for a request). 0, -ENOMEM or the callback's error. */
int xc_prosody_mam_add(struct xc_prosody_mam *m, const struct xc_prosody_item *it);

/* Hand the last request (if it holds any message) to the callback. Same returns. */
int xc_prosody_mam_end(struct xc_prosody_mam *m);

/* Messages the callback has taken (*sent), and those left behind (*left); none for m NULL. */
void xc_prosody_mam_counts(const struct xc_prosody_mam *m, size_t *sent, size_t *left);

/* A note for each reason messages were left behind, with their count. 0 or -ENOMEM. */
int xc_prosody_mam_notes(const struct xc_prosody_mam *m, struct xc_import_notes *notes);

void xc_prosody_mam_free(struct xc_prosody_mam *m); /* accepts NULL */

/* Every message of user@host's archive (Prosody's store "archive"), oldest first ("when", then
 * the order Prosody kept them in), through m, the last request included (xc_prosody_mam_end()).
 * A database without the archive table has none. 0; -EIO (err says why); -ENOMEM; the
 * callback's error. */
int xc_prosody_mam_read(struct xc_prosody *p, const char *host, const char *user,
                        struct xc_prosody_mam *m, char *err, size_t errlen);

#endif
