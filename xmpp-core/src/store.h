/* store.h - xmpp-core's storage: accounts, rosters, offline messages and block lists, behind
 * one interface so that the protocol modules never see the database.
 *
 * Storage never blocks an event loop. A module fills a request (struct xc_store_req), submits
 * it, and gets it back on its own loop, in its done callback, with the result. The requests run
 * on the store's thread in the order submitted; those that arrive together run in one
 * transaction (a group commit: one fsync for many writes), so durability does not cost a disk
 * flush per stanza. A request is acknowledged (done runs) only after its transaction has
 * committed: a message stored offline is on disk before the sender hears it was accepted.
 *
 * A write nobody waits for (an archived copy of a delivered message) is submitted without a
 * done callback: it goes into the same group commits, but nothing comes back to a loop. The
 * store's thread frees it once its transaction has ended, counts it in one of the request's
 * counters and logs a failure itself. A transaction of such writes only may be committed
 * without its flush to disk (safe from a crash of the server, not yet from one of the machine):
 * the next commit that is waited for flushes it, or one at most a second later.
 *
 * The embedded backend is SQLite (store_sqlite.c and its blocks store_sqlite_*.c, the store's
 * only files that include sqlite3.h), in WAL mode; a backend is a table of functions (struct
 * xc_store_backend), which is where PostgreSQL will plug in.
 *
 * Users are bare JIDs ("user@host"), normalised by the caller. Strings in requests are owned by
 * the request (xc_store_req_free() releases them, and the results).
 */
#ifndef XC_STORE_H
#define XC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/loop.h"
#include "scram.h"
#include "subscription.h"

struct cm_counter;
struct xc_store;
struct xc_store_req;
struct xc_pep_req;
struct xc_ticket;
struct xc_fast_req;

enum xc_store_op {
	XC_STORE_ACCOUNT_GET,       /* user -> found, creds */
	XC_STORE_ACCOUNT_CREATE,    /* user, creds -> -EEXIST when taken */
	XC_STORE_ACCOUNT_SET_CREDS, /* user, creds -> -ENOENT */
	XC_STORE_ACCOUNT_DELETE,    /* user -> -ENOENT; the user's roster, offline messages and
	                             * block list go with the account */
	XC_STORE_ACCOUNT_LIST,      /* key: a host -> jids (bare JIDs of its users), sorted;
	                             * count: those without keys for every hash (imported) */
	XC_STORE_ACCOUNT_IMPORT,    /* user, creds (a hash whose iter is 0 is left without keys),
	                             * items (the roster, pending requests included), jids (the
	                             * block list), msgs (offline messages, oldest first), pep
	                             * (NULL, or its items: PEP nodes made with the first item of
	                             * each, items oldest first), stanza (NULL, or the vcard-temp
	                             * vCard), priv (private XML): all or nothing -> -EEXIST when
	                             * taken */
	XC_STORE_ACCOUNT_ADD_CREDS, /* user, creds: the hashes the account has no keys for get
	                             * those of creds whose iter is not 0; the others stay (no
	                             * FAST token is revoked) -> count (hashes added); -ENOENT */
	XC_STORE_ACCOUNT_EXPORT,    /* user -> what ACCOUNT_IMPORT takes, read in one
	                             * transaction: creds, items, jids, msgs (not taken), pep (its
	                             * nodes' items, oldest first, NULL without any), stanza (the
	                             * vCard, or NULL), priv (by namespace); -ENOENT */
	XC_STORE_ROSTER_GET,        /* user -> found (the account exists), version, items,
	                             * jids: the block list, and avatar: the hash of the vCard's
	                             * PHOTO ("" for none, NULL when a vCard is kept but its hash
	                             * is not: xc_avatar_learn()) */
	XC_STORE_ROSTER_PUT,        /* user, item -> version (the roster's new version) */
	XC_STORE_ROSTER_DELETE,     /* user, key (contact) -> version; -ENOENT */
	XC_STORE_OFFLINE_PUT,       /* user, stanza, stamp, limit -> -EDQUOT when full, -ENOENT
	                             * when there is no such account */
	XC_STORE_OFFLINE_TAKE,      /* user -> msgs (oldest first), which are deleted */
	XC_STORE_OFFLINE_COUNT,     /* user -> count */
	XC_STORE_BLOCK_GET,         /* user -> jids */
	XC_STORE_BLOCK_ADD,         /* user, jids */
	XC_STORE_BLOCK_REMOVE,      /* user, jids (none: all) */
	/* the message archive (XEP-0313); ROSTER_GET also brings the archiving preferences */
	XC_STORE_ARCHIVE_PUT,       /* user (the archive's owner), key (the message's archive id,
	                             * from xc_store_archive_id()), stanza, stamp_ms, with (the
	                             * peer, full or bare JID); -EEXIST when the id is taken */
	XC_STORE_ARCHIVE_QUERY,     /* user, query -> arch (one page, oldest first), complete,
	                             * count and found (the count is exact: 10000 at most are
	                             * counted); -ENOENT when an id the query names is not there */
	XC_STORE_ARCHIVE_PREFS_PUT, /* user, prefs (replacing the user's) */
	XC_STORE_ARCHIVE_PURGE,     /* stamp_ms, limit: the oldest rows before stamp_ms go, at most
	                             * limit of them -> count (rows removed) */
	/* personal eventing (XEP-0163) and vcard-temp (XEP-0054): r->pep carries the rest */
	XC_STORE_PEP_PUBLISH, /* user, key (node), pep (item, cfg, limits) -> pep->cfg (the node's),
	                       * pep->created; -ECANCELED when the options given do not match the
	                       * node's, -EDQUOT when the user has max_nodes nodes already */
	XC_STORE_PEP_ITEMS,   /* user, key (node), pep (ids, or max and the page's after) ->
	                       * pep->items (newest first), pep->cfg, pep->count and pep->index
	                       * (with rsm); -ENOENT without such a node, -ESRCH without the
	                       * after item */
	XC_STORE_PEP_RETRACT, /* user, key (node), pep->item_id -> pep->cfg; -ENOENT */
	XC_STORE_PEP_DELETE,  /* user, key (node) -> pep->cfg (the node's, as it was); -ENOENT;
	                       * its items go with it */
	XC_STORE_PEP_NODES,   /* user -> pep->items (node, access model, groups, no payload) */
	XC_STORE_PEP_LAST,    /* user (owner), key (a contact's bare JID) -> pep->items: each
	                       * node's newest item, pep->sees (the contact has a subscription to
	                       * the owner's presence and is not blocked by its bare JID),
	                       * pep->contact_groups (its roster groups, when not blocked) */
	XC_STORE_PEP_CONFIGURE, /* user, key (node), pep->cfg: the fields in cfg.set are changed
	                         * (the items trimmed to what it keeps, within max_items_cap),
	                         * none: read -> pep->cfg (the node's); -ENOENT */
	XC_STORE_VCARD_GET,     /* user -> found, stanza (the vCard as XML text) */
	XC_STORE_VCARD_SET,     /* user, stanza, avatar (the hash of its PHOTO, "" for none) */
	XC_STORE_VCARD_HASH,    /* user, avatar: the hash of the vCard's PHOTO, kept unless one
	                         * is kept already (a VCARD_SET came first) */
	/* private XML storage (XEP-0049): one element per (user, namespace) */
	XC_STORE_PRIVATE_GET, /* user, priv (the namespaces asked, xml NULL) -> each priv's xml,
	                       * NULL where none is kept */
	XC_STORE_PRIVATE_SET, /* user, priv (each namespace's element, xml NULL: removed), limit
	                       * (namespaces one user keeps at most): all or nothing -> -EDQUOT
	                       * when the new namespaces would go past limit */
	/* last activity (XEP-0012): when the account's last available session went */
	XC_STORE_LAST_SET, /* user, stamp_ms, stanza (the status it left with, or NULL) */
	XC_STORE_LAST_GET, /* user, key (who asks: a bare JID; NULL: the account itself) ->
	                    * found (key may know: it is sent the account's presence, not blocked,
	                    * or it is the account), stamp_ms (0: none known), stanza (the status,
	                    * or NULL) */
	/* push registrations (XEP-0357), keyed by (user, app server JID, node) */
	XC_STORE_PUSH_ENABLE,  /* user, key (the app server's JID), with (node), stanza (the
	                        * publish-options form as XML text, or NULL), stamp_ms, limit (per
	                        * user): the same key and node are replaced; beyond limit the
	                        * oldest go -> push (the user's registrations now), count (how many
	                        * went to make room), found (it replaced one of the same key and
	                        * node) */
	XC_STORE_PUSH_DISABLE, /* user, key, with (NULL: every node of key) -> push (what is left),
	                        * count (removed) */
	XC_STORE_PUSH_LIST,    /* user -> push, oldest first */
	XC_STORE_PUSH_COUNT,   /* no user -> count: the registrations of every user */
	/* FAST tokens (XEP-0484): r->fast carries the rest; key is the client's user-agent id */
	XC_STORE_FAST_GET,    /* user, key -> fast->slot (both slots; unset ones have no token) */
	XC_STORE_FAST_UPDATE, /* user, key, fast: the token used (fast->used, fast->count) is
	                       * checked again and becomes the current one, and/or fast->fresh goes
	                       * into the new slot -> -ESTALE when the token used is gone or its
	                       * count was seen already (a replay) */
	XC_STORE_FAST_REVOKE, /* user, key (NULL: every client of the user) -> count (removed);
	                       * ACCOUNT_SET_CREDS and ACCOUNT_DELETE revoke the user's tokens too
	                       */
	/* HTTP File Upload (XEP-0363): one row per slot handed out */
	XC_STORE_UPLOAD_RESERVE, /* user, key (the slot id), count (its bytes), stamp_ms (now),
	                          * quota (bytes the user may be handed in 24 hours): the slot is
	                          * kept unless the user's slots of the last 24 hours and this one
	                          * would hold more than quota -> -EDQUOT (nothing kept), -EEXIST
	                          * (the slot id is taken); count (either way: the bytes of the
	                          * user's slots of the last 24 hours, this one included when kept),
	                          * stamp_ms (-EDQUOT: when the oldest of them turns 24 hours old,
	                          * for the client to try again then) */
	XC_STORE_UPLOAD_PURGE,   /* stamp_ms, limit: the slots handed out before stamp_ms go, the
	                          * oldest first, at most limit of them -> jids (their slot ids),
	                          * count (how many); their files go by their own age */
	XC_STORE_NOPS,
};

struct xc_roster_item {
	char *contact; /* bare JID */
	char *name;    /* may be NULL */
	char **groups; /* ngroups strings */
	size_t ngroups;
	struct xc_sub_state st;
};

/* One element of private XML storage (XEP-0049). */
struct xc_private_item {
	char *ns;  /* owned: its namespace */
	char *xml; /* owned: the element as XML text, or NULL (none kept; to be removed) */
};

/* One push registration (XEP-0357). */
struct xc_push_reg {
	char *jid;          /* owned: the app server */
	char *node;         /* owned */
	char *form;         /* owned: the publish-options form as given (XML text), or NULL */
	int64_t created_ms; /* when it was enabled (Unix ms) */
};

struct xc_offline_msg {
	int64_t stamp_ms; /* when it was stored (Unix ms), for the delay (XEP-0203) */
	char *stanza;     /* the stanza as XML text */
};

/* Archiving preferences (XEP-0313 6): the default for a peer, and the bare JIDs always or never
 * archived whatever the default says. */
enum xc_archive_default {
	XC_ARCHIVE_ALWAYS,
	XC_ARCHIVE_ROSTER, /* peers in the roster (with a subscription either way) */
	XC_ARCHIVE_NEVER,
};

struct xc_archive_prefs {
	int def;       /* enum xc_archive_default */
	char **always; /* owned: bare JIDs */
	size_t nalways;
	char **never; /* owned: bare JIDs */
	size_t nnever;
};

/* One archive query, its filters resolved to what the store compares. Ids are the archive ids
 * (XEP-0359 stanza-ids) of the owner's archive. */
struct xc_archive_query {
	char *with;       /* owned; NULL: any peer. A bare JID matches each of its resources */
	int64_t start_ms; /* stamps from (inclusive); INT64_MIN: no bound */
	int64_t end_ms;   /* stamps up to (inclusive); INT64_MAX: no bound */
	char *after_id;   /* owned, NULL: only messages after it (a filter: counts) */
	char *before_id;  /* owned, NULL: only messages before it (a filter: counts) */
	char *rsm_after;  /* owned, NULL: the page starts after it (XEP-0059) */
	char *rsm_before; /* owned, NULL: the page ends before it */
	bool backward;    /* the page is the last max results (RSM <before/>, empty or not) */
	char **ids;       /* owned: only these ids (none: no such filter) */
	size_t nids;
	unsigned max; /* results in the page; 0: only the count */
};

/* One archived message. */
struct xc_archive_item {
	char *id;         /* owned: its archive id */
	int64_t stamp_ms; /* when it was archived (Unix ms) */
	char *stanza;     /* owned: the message as XML text */
};

struct xc_store_req {
	/* set by the submitter */
	enum xc_store_op op;
	struct cm_loop *loop;                 /* borrowed: where done runs (NULL without done) */
	void (*done)(struct xc_store_req *r); /* owns r from then on; NULL: no answer (above) */
	void *arg;                            /* borrowed */
	/* borrowed, may be NULL: a request without done is counted in one of them on the store's
	 * thread, once its transaction has ended */
	struct cm_counter *ok_total, *failed_total;
	char *user; /* owned */
	char *key;  /* owned */
	struct xc_scram_creds creds[XC_SCRAM_NHASH];
	struct xc_roster_item item; /* owned strings */
	char *stanza;               /* owned */
	size_t stanza_len;          /* of stanza when known (0: up to its NUL) */
	/* user, key, with and stanza live in r's own block (xc_store_req_archive()): not freed
	 * apart, and not to be replaced with xc_store_req_set() */
	bool packed;
	int64_t stamp_ms;
	unsigned limit;
	char **jids; /* owned: input (block add/remove) or output (block get, account list) */
	size_t njids;
	/* results */
	int err; /* 0 or a negative errno */
	bool found;
	uint64_t version;
	struct xc_roster_item *items; /* owned array */
	size_t nitems;
	struct xc_offline_msg *msgs; /* owned array */
	size_t nmsgs;
	uint64_t count;
	/* the archive's (XEP-0313) */
	char *with;                     /* owned: ARCHIVE_PUT's peer */
	struct xc_archive_query *query; /* owned: ARCHIVE_QUERY's */
	struct xc_archive_prefs prefs;  /* owned strings: input (PREFS_PUT), output (ROSTER_GET) */
	bool prefs_found;               /* ROSTER_GET: the user has preferences of its own */
	struct xc_archive_item *arch;   /* owned array: ARCHIVE_QUERY's page */
	size_t narch;
	bool complete;      /* ARCHIVE_QUERY: the page reaches the end of the results its way */
	uint64_t queued_ns; /* for the latency metric */
	struct cm_histogram *latency; /* borrowed: the store's histogram */
	/* personal eventing (XEP-0163) and vcard-temp (XEP-0054) */
	struct xc_pep_req *pep; /* owned: the PEP ops' input and results */
	char *avatar;           /* owned: VCARD_SET's and VCARD_HASH's input, ROSTER_GET's output */
	struct xc_push_reg *push; /* owned array: the PUSH ops' results */
	size_t npush;
	struct xc_private_item *priv; /* owned array: the PRIVATE ops', ACCOUNT_IMPORT/EXPORT's */
	size_t npriv;
	/* a reference (ticket.h) released once the request's transaction has ended: a client's
	 * acknowledgement waits for it. NULL: none */
	struct xc_ticket *ticket;
	struct xc_fast_req *fast; /* owned: the FAST ops' (wiped when freed) */
	uint64_t quota;           /* UPLOAD_RESERVE's: bytes a user may be handed in 24 hours */
	/* the store's */
	struct cm_list link;
	struct cm_msg msg;
	struct xc_store *store; /* borrowed: the store answering it (with a done) */
};

/* A new request for op, whose done runs on loop (done NULL: nothing comes back, loop may be
 * NULL). NULL on allocation failure. */
struct xc_store_req *xc_store_req_new(enum xc_store_op op, struct cm_loop *loop,
                                      void (*done)(struct xc_store_req *r), void *arg);
/* An archive write (XC_STORE_ARCHIVE_PUT) in one allocation: owner (user), id (key), the peer
 * (with) and the stanza's len bytes are copied behind the request itself, so that a message's
 * copy costs one allocation on the worker and one free on the store's thread. NULL on
 * allocation failure. */
struct xc_store_req *xc_store_req_archive(struct cm_loop *loop,
                                          void (*done)(struct xc_store_req *r), const char *owner,
                                          const char *id, const char *with, const char *stanza,
                                          size_t len);
/* Release a request and everything it owns. Accepts NULL. */
void xc_store_req_free(struct xc_store_req *r);
/* Copy s into *field (freeing what was there). 0 or -ENOMEM. */
int xc_store_req_set(char **field, const char *s);
/* Append a private XML element to r->priv (xml may be NULL), ns and xml copied. 0 or -ENOMEM. */
int xc_store_req_add_private(struct xc_store_req *r, const char *ns, const char *xml);
/* Release what a query or preferences own (the structs themselves are the caller's). Accept
 * NULL. */
void xc_archive_query_clear(struct xc_archive_query *q);
void xc_archive_prefs_clear(struct xc_archive_prefs *p);

/* A backend: a database behind the store's thread. Each function runs on that thread. */
struct xc_store_backend {
	const char *name;
	/* where: the database (SQLite: its file); cache_mb: the memory it may keep pages in */
	int (*open)(void **db, const char *where, unsigned cache_mb, char *err, size_t errlen);
	void (*close)(void *db);
	/* waited: a request of the transaction is waited for (a done, or an acknowledgement's
	 * ticket): its commit must be on disk when commit returns. Otherwise the backend may leave
	 * the flush to a later commit, within a bound it states (SQLite: SYNC_LATE_MS). */
	int (*begin)(void *db, bool waited);
	int (*commit)(void *db);
	void (*rollback)(void *db);
	/* Run r (fills its results and r->err; a failed request does not abort the transaction
	 * unless the return is nonzero: the database itself failed). */
	int (*run)(void *db, struct xc_store_req *r);
	/* After open, before the thread starts: the next archive row number to hand out (above
	 * every one handed out before, even by a run that crashed) and the key of the database's
	 * archive ids (archive_id.h). */
	int (*archive_ids)(void *db, uint64_t *next, uint64_t key[2]);
	/* May be NULL (no backup of its own). Copy the database at where into the new file dest
	 * (refused if it exists), as it was at one moment, while the store's thread goes on
	 * writing: runs on any other thread, with a connection of its own. *bytes: the copy's
	 * size. 0, -EEXIST, or a negative errno with err saying why. */
	int (*backup)(const char *where, const char *dest, uint64_t *bytes, char *err,
	              size_t errlen);
	/* May be NULL: work of the backend's own that nobody waits for (SQLite: the archive's
	 * fold, the flush of commits left unflushed), called after each batch's requests went back
	 * and, when the store is idle, once the time it asked for has passed. Returns the ms after
	 * which it wants to be called again (0: not before the next batch). */
	unsigned (*maintain)(void *db);
};

extern const struct xc_store_backend xc_store_sqlite;

struct cm_histogram;

struct xc_store_config {
	const struct xc_store_backend *backend;
	const char *where;  /* SQLite: the database file */
	unsigned batch_max; /* requests per transaction at most; 0: 256 */
	/* ms a batch of writes nobody waits for may wait for more before its commit (0: none);
	 * a request with a done ends the wait */
	unsigned linger_ms;
	unsigned cache_mb; /* the database's page cache (0: 64 MiB) */
	/* borrowed, may be NULL: observes each request's seconds from submission to its done */
	struct cm_histogram *latency;
};

/* Open the database (creating the schema) and start the store's thread. 0, or a negative
 * errno with err saying why (cm/err.h). */
int xc_store_open(struct xc_store **out, const struct xc_store_config *cfg, char *err,
                  size_t errlen);

/* Queue r. Its done runs on r->loop, once (r->err says how it went); without done, the store
 * frees r after its transaction. 0, or -ESHUTDOWN when the store is closing (r stays the
 * caller's). Any thread. */
int xc_store_submit(struct xc_store *st, struct xc_store_req *r);

/* Run what is queued, stop the thread and close the database. Requests still queued complete
 * first; a request whose loop has closed is freed without its done. Accepts NULL. */
void xc_store_close(struct xc_store *st);

/* Requests queued and not yet run (for metrics). */
size_t xc_store_depth(struct xc_store *st);

/* Requests with a done submitted whose done has not yet returned (any thread). A stop waits for
 * none to be owed before the loops go. */
size_t xc_store_owed(struct xc_store *st);

/* The backend's backup (above) of the store's database into the new file dest, from any
 * thread but the store's. -ENOTSUP when the backend has none. */
int xc_store_backup(struct xc_store *st, const char *dest, uint64_t *bytes, char *err,
                    size_t errlen);

/* A new archive id (archive_id.h) for a message about to be archived: its row's number, never
 * handed out before. Safe from any thread. */
void xc_store_archive_id(struct xc_store *st, char out[17]);

/* --- personal eventing (XEP-0163): the PEP ops' data (r->pep) ------------------------------ */

/* A PEP node's access model (XEP-0060 4.5). */
enum xc_pep_access {
	XC_PEP_PRESENCE,  /* contacts subscribed to the owner's presence (the default) */
	XC_PEP_OPEN,      /* anyone */
	XC_PEP_WHITELIST, /* the owner only (no list is kept yet) */
	XC_PEP_ROSTER,    /* contacts in the owner's roster groups of roster_groups_allowed */
};

/* A node's configuration, or publish-options: set says which fields a request gave. */
#define XC_PEP_SET_ACCESS  1u
#define XC_PEP_SET_PERSIST 2u
#define XC_PEP_SET_MAX     4u
#define XC_PEP_SET_GROUPS  8u
#define XC_PEP_MAX_ITEMS   0 /* max_items "max": the server's cap */
struct xc_pep_cfg {
	int access;         /* enum xc_pep_access */
	bool persist;       /* pubsub#persist_items (false: only the newest item is kept) */
	unsigned max_items; /* XC_PEP_MAX_ITEMS: the cap (pep.max_items) */
	unsigned set;       /* XC_PEP_SET_*: for publish-options */
	char *groups;       /* owned, may be NULL (none): pubsub#roster_groups_allowed, sorted,
	                     * each name followed by '\n' (as the roster table keeps groups) */
};

struct xc_pep_item {
	char *node;    /* owned */
	char *id;      /* owned */
	char *payload; /* owned: XML text; NULL in PEP_NODES */
	int access;    /* enum xc_pep_access: the node's */
	char *groups;  /* owned, may be NULL: the node's roster_groups_allowed (LAST, NODES,
	                * ACCOUNT_IMPORT) */
	/* ACCOUNT_IMPORT: the node's pubsub#persist_items and max_items (XC_PEP_MAX_ITEMS: max) */
	bool persist;
	unsigned max_items;
};

struct xc_pep_req {
	struct xc_pep_cfg cfg; /* PUBLISH: the options given, then the node's */
	char *item_id;         /* owned: PUBLISH's, RETRACT's */
	char *payload;         /* owned: PUBLISH's XML text */
	char **ids;            /* owned: ITEMS: only these ids (none: the newest max) */
	size_t nids;
	unsigned max;              /* ITEMS: newest items at most */
	unsigned max_items_cap;    /* PUBLISH: items per node at most */
	unsigned max_nodes;        /* PUBLISH: nodes per user at most */
	bool created;              /* PUBLISH: the node was made */
	bool sees;                 /* LAST */
	char *contact_groups;      /* owned, LAST: the contact's roster groups ('\n' after each) */
	char *after;               /* owned, ITEMS: the page starts after this item (RSM) */
	bool rsm;                  /* ITEMS: count and index wanted (max 0: the count only) */
	uint64_t count, index;     /* ITEMS with rsm: the node's items, the page's first's place */
	struct xc_pep_item *items; /* owned array */
	size_t nitems;
};

/* Release what p owns and p. Accepts NULL. */
void xc_pep_req_free(struct xc_pep_req *p);

/* --- FAST tokens (XEP-0484): the FAST ops' data (r->fast) ------------------------------------
 * A client (an account and a user-agent id) has two slots, as the XEP's implementation notes
 * have them: the token in use (current) and the one issued last and not used yet (new). */

#define XC_FAST_TOKEN_MAX 64 /* characters of a token (base64 of its random bytes) */
#define XC_FAST_MECH_MAX  24

enum xc_fast_slot {
	XC_FAST_CURRENT,
	XC_FAST_NEW,
	XC_FAST_NSLOT,
};

struct xc_fast_token {
	bool set;
	char token[XC_FAST_TOKEN_MAX + 1];
	char mech[XC_FAST_MECH_MAX + 1]; /* the mechanism it was issued for */
	int64_t expiry;                  /* Unix seconds */
	uint32_t count;                  /* the highest count a login with it gave (0: none) */
};

struct xc_fast_req {
	struct xc_fast_token slot[XC_FAST_NSLOT]; /* GET's result */
	int used; /* UPDATE: the slot whose token was used, -1: none */
	char used_token[XC_FAST_TOKEN_MAX + 1];
	uint32_t count;             /* UPDATE: the login's count (0: none given) */
	bool invalidate;            /* UPDATE: the token used goes instead of becoming current */
	struct xc_fast_token fresh; /* UPDATE: a token to put in the new slot (set: there is) */
};

#endif
