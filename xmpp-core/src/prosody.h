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
 * Everything else the account has (the message archive, MUC logs...) is named in the notes as
 * left behind, with a count, and so is any state of these that could not be carried as it was
 * (a request from a contact who already has a subscription; a private element in no namespace
 * of its own, in a namespace another has, or past the stream parser's limits): nothing is
 * dropped without a word.
 *
 * The conversion of an account's rows (xc_prosody_doc()) is apart from the database, so that it
 * can be tested and fuzzed on rows made up.
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
 * node's name), key (the item's id), when it was stored (Unix seconds), type ("xml") and value
 * (the stanza, or the item's payload). */
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
 * behind (the message archive, MUC logs...). */
int xc_prosody_account(struct xc_prosody *p, const char *host, const char *user, char **doc,
                       struct xc_import_notes *notes, char *err, size_t errlen);

/* Free a list from xc_prosody_hosts() or xc_prosody_users(). */
void xc_prosody_list_free(char **v, size_t n);

#endif
