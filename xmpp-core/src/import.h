/* import.h - an account brought over from another server, as the admin API's import route
 * takes it: one JSON document per account, checked here and turned into a store request
 * (XC_STORE_ACCOUNT_IMPORT). xmppctl import-prosody writes these documents from a Prosody
 * database; docs/xmpp-core-api.json describes them.
 *
 *   {"jid": "alice@example.org",
 *    "scram": {"SCRAM-SHA-1": {"iterations": 10000, "salt": B64, "stored_key": B64,
 *                              "server_key": B64}},          (or "password": "...")
 *    "roster": [{"jid": "bob@example.org", "name": "Bob", "groups": ["Friends"],
 *                "subscription": "both", "ask": false, "approved": false,
 *                "pending_in": false}],
 *    "requests": ["carol@example.org"],   subscription requests from contacts not listed
 *    "blocklist": ["spam@example.net"],
 *    "offline": [{"stamp_ms": 1796533960000, "stanza": "<message to='alice@example.org' ...>"}],
 *                                         messages kept for the user while away, oldest first
 *    "pep": [{"node": "urn:xmpp:avatar:metadata", "access": "presence", "persist": true,
 *             "max_items": 1, "items": [{"id": "5f2a", "payload": "<metadata ...>"}]}],
 *                                         personal eventing nodes, items oldest first
 *    "vcard": "<vCard xmlns='vcard-temp'>...</vCard>",      the vcard-temp vCard (XEP-0054)
 *    "private": ["<storage xmlns='storage:bookmarks'>...</storage>"]}
 *                                         private XML (XEP-0049), one element per namespace
 *                                         (one with nothing in it is nothing to keep)
 *
 * The document is untrusted input: every member is checked (types, JIDs normalised, the
 * subscription states RFC 6121 allows, the roster's limits, text XML can carry, offline messages
 * that parse as messages to the account within the stanza size, PEP payloads and the vCard that
 * parse as one element within pep.max_payload, private XML elements each in a namespace of its
 * own within private_storage.max_bytes, all written again by our own writer), and a
 * member
 * this version does not know is refused rather than dropped, so that nothing handed over is
 * lost without a word.
 */
#ifndef XC_IMPORT_H
#define XC_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct xc_store_req;

#define XC_IMPORT_MAX_BLOCKED    10000 /* JIDs of one block list */
#define XC_IMPORT_MAX_ITERATIONS 10000000
#define XC_IMPORT_MAX_STAMP_MS   253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* The server's limits a document must keep to. */
struct xc_import_limits {
	uint32_t iter;      /* PBKDF2 iterations for keys made from a password */
	size_t max_offline; /* offline messages of one user (offline.max_per_user) */
	size_t max_stanza;  /* bytes of one of them (c2s.max_stanza) */
	size_t max_nodes;   /* PEP nodes of one account (pep.max_nodes) */
	size_t max_items;   /* items one node keeps at most (pep.max_items) */
	size_t max_payload; /* bytes of one item's payload (pep.max_payload) */
	/* private XML elements of one account (private_storage.max_namespaces), and bytes of one
	 * of them (private_storage.max_bytes) */
	size_t max_private, max_private_bytes;
};

/* What an import holds, for the answer and the log. */
struct xc_import_summary {
	size_t roster;   /* contacts listed */
	size_t requests; /* pending requests of contacts not listed */
	size_t blocked;
	size_t offline;
	size_t pep_nodes, pep_items;
	bool vcard;
	size_t private_ns; /* private XML elements (one per namespace) */
	unsigned hashes;   /* bit 1 << enum xc_scram_hash for each hash with keys */
};

/* The document of an account read by XC_STORE_ACCOUNT_EXPORT (r): what xc_import_parse() takes,
 * so that an account can leave and come back as it was. *out: JSON text (owned; it holds the
 * SCRAM keys: wipe it). What the document has no place for (a contact's pre-approval without a
 * roster item) is counted in *dropped. 0 or -ENOMEM. */
int xc_import_doc(const struct xc_store_req *r, char **out, size_t *dropped);

/* base64 of n bytes as a new JSON string, as documents carry keys and salts (NULL on allocation
 * failure). */
json_t *xc_import_b64(const void *data, size_t n);

/* What a converter of another server's data (prosody.c, xep227.c) left behind or changed, one
 * line each, for the operator. */
struct xc_import_notes {
	char **v; /* owned, each owned */
	size_t n;
};

/* Add a line. 0 or -ENOMEM. */
int xc_import_note(struct xc_import_notes *notes, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void xc_import_notes_free(struct xc_import_notes *notes);

/* Check the len bytes of text (a JSON object) against lim and fill r, a fresh
 * XC_STORE_ACCOUNT_IMPORT request: its user (the account's bare JID, normalised: the caller
 * checks that its host is served), creds, items, jids and msgs. 0; -EINVAL with err saying
 * which member is wrong and why; -ENOMEM. */
int xc_import_parse(const char *text, size_t len, const struct xc_import_limits *lim,
                    struct xc_store_req *r, struct xc_import_summary *sum, char *err,
                    size_t errlen);

#endif
