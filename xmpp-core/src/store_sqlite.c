/* store_sqlite.c - the SQLite backend of the store (store.h); the only file that includes
 * sqlite3.h. Runs on the store's thread only.
 *
 * Push registrations (XEP-0357) are a block of their own, store_sqlite_push.c, which is the
 * other file that includes sqlite3.h.
 *
 * WAL journal. A transaction somebody waits for commits with synchronous=FULL (the WAL flushed
 * before the commit returns; a transaction covers a whole batch, so the group commit pays the
 * fsync once). One nobody waits for (archived copies of delivered messages, written by no
 * session with stream management) commits with NORMAL: on the disk's way, safe from a crash of
 * the server, flushed by the next FULL commit (the fsync covers the whole WAL); once
 * SYNC_LATE_MS passed since the last flush, the next commit is FULL whatever it holds, and an
 * idle store flushes with a checkpoint (sq_maintain()). Each request
 * runs inside a savepoint, so that one refused request (a name taken, a full offline queue)
 * leaves the rest of the batch alone.
 *
 * The message archive (XEP-0313) is a block of its own too, store_sqlite_archive.c, with its
 * tables of keys written in batches (the fold) and its queries. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <uv.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "store_sqlite_int.h"

#define SCHEMA_VERSION 1

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS accounts ("
    "  host TEXT NOT NULL, user TEXT NOT NULL, creds BLOB NOT NULL, created INTEGER NOT NULL,"
    "  PRIMARY KEY (host, user));"
    "CREATE TABLE IF NOT EXISTS roster ("
    "  owner TEXT NOT NULL, contact TEXT NOT NULL, name TEXT, groups TEXT NOT NULL,"
    "  sub INTEGER NOT NULL, ask INTEGER NOT NULL, pending_in INTEGER NOT NULL,"
    "  approved INTEGER NOT NULL, listed INTEGER NOT NULL, PRIMARY KEY (owner, contact));"
    "CREATE TABLE IF NOT EXISTS roster_version ("
    "  owner TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS offline ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, stamp INTEGER NOT NULL,"
    "  stanza TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS offline_owner ON offline (owner, id);"
    "CREATE TABLE IF NOT EXISTS blocklist ("
    "  owner TEXT NOT NULL, jid TEXT NOT NULL, PRIMARY KEY (owner, jid));"
    "CREATE TABLE IF NOT EXISTS archive_prefs (owner TEXT PRIMARY KEY, def INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS archive_prefs_jid ("
    "  owner TEXT NOT NULL, jid TEXT NOT NULL, always INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, jid));";

/* Pages in the WAL before a commit copies them into the database (SQLite's default: 1,000).
 * Each page is copied once however often it changed since the last checkpoint: the tail pages
 * of the users' ranges in the archive's keys change all the time (measured at 4,000 archived
 * messages a second, 240,000 rows: the store's thread used a third less with 10,000, and half
 * with the larger page cache too). The WAL grows to about 40 MB between checkpoints. */
#define CHECKPOINT_PAGES 10000

/* A commit nobody waits for is flushed to disk at the latest this long after the last flush. */
#define SYNC_LATE_MS 1000

enum stmt {
	S_ACC_GET,
	S_ACC_INSERT,
	S_ACC_UPDATE,
	S_ACC_DELETE,
	S_ACC_LIST,
	S_ACC_CREDS_ALL,
	S_ROSTER_ALL,
	S_ROSTER_PUT,
	S_ROSTER_DEL,
	S_ROSTER_DEL_ALL,
	S_VER_GET,
	S_VER_BUMP,
	S_VER_DEL,
	S_OFF_COUNT,
	S_OFF_PUT,
	S_OFF_ALL,
	S_OFF_DEL_ALL,
	S_BLOCK_ALL,
	S_BLOCK_ADD,
	S_BLOCK_DEL,
	S_BLOCK_DEL_ALL,
	S_PREFS_GET,
	S_PREFS_JIDS,
	S_PREFS_PUT,
	S_PREFS_JID_PUT,
	S_PREFS_DEL,
	S_PREFS_JID_DEL,
	S_BEGIN,
	S_COMMIT,
	S_SAVE,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_NSTMT,
};

static const char *const sql[S_NSTMT] = {
    [S_ACC_GET] = "SELECT creds FROM accounts WHERE host = ?1 AND user = ?2",
    [S_ACC_INSERT] = "INSERT OR IGNORE INTO accounts (host, user, creds, created) "
                     "VALUES (?1, ?2, ?3, strftime('%s','now'))",
    [S_ACC_UPDATE] = "UPDATE accounts SET creds = ?3 WHERE host = ?1 AND user = ?2",
    [S_ACC_DELETE] = "DELETE FROM accounts WHERE host = ?1 AND user = ?2",
    [S_ACC_LIST] = "SELECT user || '@' || host FROM accounts WHERE host = ?1 ORDER BY user",
    [S_ACC_CREDS_ALL] = "SELECT creds FROM accounts WHERE host = ?1",
    [S_ROSTER_ALL] = "SELECT contact, name, groups, sub, ask, pending_in, approved, listed "
                     "FROM roster WHERE owner = ?1 ORDER BY contact",
    [S_ROSTER_PUT] = "INSERT OR REPLACE INTO roster (owner, contact, name, groups, sub, ask, "
                     "pending_in, approved, listed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_ROSTER_DEL] = "DELETE FROM roster WHERE owner = ?1 AND contact = ?2",
    [S_ROSTER_DEL_ALL] = "DELETE FROM roster WHERE owner = ?1",
    [S_VER_GET] = "SELECT version FROM roster_version WHERE owner = ?1",
    [S_VER_BUMP] = "INSERT INTO roster_version (owner, version) VALUES (?1, 1) "
                   "ON CONFLICT (owner) DO UPDATE SET version = version + 1",
    [S_VER_DEL] = "DELETE FROM roster_version WHERE owner = ?1",
    [S_OFF_COUNT] = "SELECT count(*) FROM offline WHERE owner = ?1",
    [S_OFF_PUT] = "INSERT INTO offline (owner, stamp, stanza) VALUES (?1, ?2, ?3)",
    [S_OFF_ALL] = "SELECT stamp, stanza FROM offline WHERE owner = ?1 ORDER BY id",
    [S_OFF_DEL_ALL] = "DELETE FROM offline WHERE owner = ?1",
    [S_BLOCK_ALL] = "SELECT jid FROM blocklist WHERE owner = ?1 ORDER BY jid",
    [S_BLOCK_ADD] = "INSERT OR IGNORE INTO blocklist (owner, jid) VALUES (?1, ?2)",
    [S_BLOCK_DEL] = "DELETE FROM blocklist WHERE owner = ?1 AND jid = ?2",
    [S_BLOCK_DEL_ALL] = "DELETE FROM blocklist WHERE owner = ?1",
    [S_PREFS_GET] = "SELECT def FROM archive_prefs WHERE owner = ?1",
    [S_PREFS_JIDS] = "SELECT jid, always FROM archive_prefs_jid WHERE owner = ?1 ORDER BY jid",
    [S_PREFS_PUT] = "INSERT OR REPLACE INTO archive_prefs (owner, def) VALUES (?1, ?2)",
    [S_PREFS_JID_PUT] = "INSERT OR REPLACE INTO archive_prefs_jid (owner, jid, always) "
                        "VALUES (?1, ?2, ?3)",
    [S_PREFS_DEL] = "DELETE FROM archive_prefs WHERE owner = ?1",
    [S_PREFS_JID_DEL] = "DELETE FROM archive_prefs_jid WHERE owner = ?1",
    [S_SAVE] = "SAVEPOINT req",
    [S_RELEASE] = "RELEASE req",
    [S_ROLLBACK_TO] = "ROLLBACK TO req",
    /* every batch's: parsed once */
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
};

#define P_NSTMT 32 /* statements of the PEP and vCard block (its enum pstmt) */

struct sq {
	sqlite3 *db;
	sqlite3_stmt *st[S_NSTMT];
	sqlite3_stmt *pst[P_NSTMT]; /* the PEP and vCard block's, at the end of the file */
	bool sync_full;             /* synchronous=FULL now, else NORMAL (sq_begin()) */
	bool unsynced;              /* a NORMAL commit since the last flush */
	uint64_t synced_ms;         /* the last flush: a FULL commit or a checkpoint */
	struct xc_sq_push *push;    /* push registrations (store_sqlite_push.c) */
	struct xc_sq_private *priv; /* private XML (store_sqlite_private.c) */
	struct xc_sq_last *last;    /* last activity (store_sqlite_last.c) */
	struct xc_sq_upload *up;    /* HTTP File Upload slots (store_sqlite_upload.c) */
	struct xc_sq_arch *arch;    /* the message archive (store_sqlite_archive.c) */
};

static int sq_exec(struct sq *q, const char *s);
static int pep_open(struct sq *q);
static int pep_import(struct sq *q, const char *owner, const struct xc_pep_req *pr);
static int pep_export(struct sq *q, struct xc_store_req *r);
static int vcard_import(struct sq *q, const char *owner, const char *vcard);
static void pep_close(struct sq *q);
static int pep_delete_owned(struct sq *q, const char *owner);
static int pep_dispatch(struct sq *q, struct xc_store_req *r);
static int fast_open(struct sq *q);
static int fast_revoke(struct sq *q, const char *owner, const char *agent, uint64_t *n);
static int fast_dispatch(struct sq *q, struct xc_store_req *r);

/* A code of SQLite as a negative errno: the database failed. */
int xc_sq_fail(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

static sqlite3_stmt *prep(struct sq *q, enum stmt s)
{
	sqlite3_stmt *p = q->st[s];

	sqlite3_reset(p);
	sqlite3_clear_bindings(p);
	return p;
}

static int bind_text(sqlite3_stmt *p, int i, const char *s)
{
	return sqlite3_bind_text(p, i, s, -1, SQLITE_STATIC);
}

/* Step a statement that returns no rows. 0 or the database failure. */
static int exec1(sqlite3_stmt *p)
{
	int rc = sqlite3_step(p);

	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

/* exec1(), the statement reset after it: nothing of it stays active (a COMMIT that failed must
 * not stand in the way of the ROLLBACK after it). */
static int exec_once(sqlite3_stmt *p)
{
	int rc = exec1(p);

	sqlite3_reset(p);
	return rc;
}

static char *col_dup(sqlite3_stmt *p, int i)
{
	const unsigned char *t = sqlite3_column_text(p, i);

	return t ? strdup((const char *)t) : NULL;
}

/* --- credentials are stored as one blob per account: for each hash, iter (4 bytes, big
 * endian), salt length, salt, StoredKey, ServerKey ----------------------------------------------
 */

static size_t creds_pack(const struct xc_scram_creds c[XC_SCRAM_NHASH], unsigned char *out)
{
	size_t n = 0;

	for (int h = 0; h < XC_SCRAM_NHASH; h++) {
		size_t kl = xc_scram_key_len((enum xc_scram_hash)h);

		out[n++] = (unsigned char)(c[h].iter >> 24);
		out[n++] = (unsigned char)(c[h].iter >> 16);
		out[n++] = (unsigned char)(c[h].iter >> 8);
		out[n++] = (unsigned char)c[h].iter;
		out[n++] = c[h].salt_len;
		memcpy(out + n, c[h].salt, c[h].salt_len);
		n += c[h].salt_len;
		memcpy(out + n, c[h].stored_key, kl);
		n += kl;
		memcpy(out + n, c[h].server_key, kl);
		n += kl;
	}
	return n;
}

static int creds_unpack(const unsigned char *in, size_t len, struct xc_scram_creds *c)
{
	size_t n = 0;

	for (int h = 0; h < XC_SCRAM_NHASH; h++) {
		size_t kl = xc_scram_key_len((enum xc_scram_hash)h);

		if (len - n < 5)
			return -EIO;
		c[h].iter = (uint32_t)in[n] << 24 | (uint32_t)in[n + 1] << 16 |
		            (uint32_t)in[n + 2] << 8 | in[n + 3];
		c[h].salt_len = in[n + 4];
		n += 5;
		if (c[h].salt_len > XC_SCRAM_SALT_MAX || len - n < c[h].salt_len + 2 * kl)
			return -EIO;
		memcpy(c[h].salt, in + n, c[h].salt_len);
		n += c[h].salt_len;
		memcpy(c[h].stored_key, in + n, kl);
		n += kl;
		memcpy(c[h].server_key, in + n, kl);
		n += kl;
	}
	return n == len ? 0 : -EIO;
}

/* "user@host" into its parts, in buf. */
static int split_user(const char *jid, char *buf, size_t len, const char **user, const char **host)
{
	char *at;

	if (!jid || strlen(jid) >= len)
		return -EINVAL;
	strcpy(buf, jid);
	at = strchr(buf, '@');
	if (!at)
		return -EINVAL;
	*at = '\0';
	*user = buf;
	*host = at + 1;
	return 0;
}

/* --- the operations --------------------------------------------------------------------------
 * Each returns 0 (r->err says how the request went) or a database failure. */

static int account_get(struct sq *q, struct xc_store_req *r)
{
	char buf[2100];
	const char *u, *h;
	sqlite3_stmt *p;
	int rc;

	if (split_user(r->user, buf, sizeof(buf), &u, &h)) {
		r->err = -EINVAL;
		return 0;
	}
	p = prep(q, S_ACC_GET);
	bind_text(p, 1, h);
	bind_text(p, 2, u);
	rc = sqlite3_step(p);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	r->found = true;
	if (creds_unpack(sqlite3_column_blob(p, 0), (size_t)sqlite3_column_bytes(p, 0), r->creds))
		return -EIO; /* a damaged row */
	return 0;
}

static int account_write(struct sq *q, struct xc_store_req *r, enum stmt s)
{
	unsigned char blob[2 * (5 + XC_SCRAM_SALT_MAX + 2 * XC_SCRAM_KEY_MAX)];
	char buf[2100];
	const char *u, *h;
	size_t n = creds_pack(r->creds, blob);
	sqlite3_stmt *p;
	int rc;

	if (split_user(r->user, buf, sizeof(buf), &u, &h)) {
		r->err = -EINVAL;
		return 0;
	}
	p = prep(q, s);
	bind_text(p, 1, h);
	bind_text(p, 2, u);
	sqlite3_bind_blob(p, 3, blob, (int)n, SQLITE_STATIC);
	rc = exec1(p);
	if (!rc && sqlite3_changes(q->db) == 0)
		r->err = s == S_ACC_INSERT ? -EEXIST : -ENOENT;
	return rc;
}

static int delete_owned(struct sq *q, const char *owner)
{
	static const enum stmt all[] = {S_ROSTER_DEL_ALL, S_VER_DEL,   S_OFF_DEL_ALL,
	                                S_BLOCK_DEL_ALL,  S_PREFS_DEL, S_PREFS_JID_DEL};
	int rc = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && !rc; i++) {
		sqlite3_stmt *p = prep(q, all[i]);

		bind_text(p, 1, owner);
		rc = exec1(p);
	}
	rc = rc ? rc : xc_sq_arch_delete_owned(q->arch, owner);
	rc = rc ? rc : pep_delete_owned(q, owner);
	rc = rc ? rc : xc_sq_push_delete_owned(q->push, owner);
	rc = rc ? rc : xc_sq_private_delete_owned(q->priv, owner);
	rc = rc ? rc : xc_sq_last_delete_owned(q->last, owner);
	return rc ? rc : fast_revoke(q, owner, NULL, NULL);
}

static int account_delete(struct sq *q, struct xc_store_req *r)
{
	char buf[2100];
	const char *u, *h;
	sqlite3_stmt *p;
	int rc;

	if (split_user(r->user, buf, sizeof(buf), &u, &h)) {
		r->err = -EINVAL;
		return 0;
	}
	p = prep(q, S_ACC_DELETE);
	bind_text(p, 1, h);
	bind_text(p, 2, u);
	rc = exec1(p);
	if (rc)
		return rc;
	if (sqlite3_changes(q->db) == 0) {
		r->err = -ENOENT;
		return 0;
	}
	return delete_owned(q, r->user);
}

/* Rows of one text column into r->jids. */
static int collect_jids(struct sq *q, sqlite3_stmt *p, struct xc_store_req *r)
{
	size_t cap = 0;
	int rc;

	(void)q;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		char *s;

		if (r->njids == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nj = realloc(r->jids, ncap * sizeof(*nj));

			if (!nj)
				return -ENOMEM;
			r->jids = nj;
			cap = ncap;
		}
		s = col_dup(p, 0);
		if (!s)
			return -ENOMEM;
		r->jids[r->njids++] = s;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int account_list(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = prep(q, S_ACC_LIST);

	int rc;

	bind_text(p, 1, r->key);
	rc = collect_jids(q, p, r);
	if (rc)
		return rc;
	/* and how many lack the keys of a hash (brought over with SCRAM-SHA-1 keys only) */
	r->count = 0;
	p = prep(q, S_ACC_CREDS_ALL);
	bind_text(p, 1, r->key);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		struct xc_scram_creds c[XC_SCRAM_NHASH];

		if (creds_unpack(sqlite3_column_blob(p, 0), (size_t)sqlite3_column_bytes(p, 0), c))
			continue; /* a damaged row: its owner's logins say so */
		for (int h = 0; h < XC_SCRAM_NHASH; h++)
			if (c[h].iter == 0) {
				r->count++;
				break;
			}
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int version_get(struct sq *q, const char *owner, uint64_t *v)
{
	sqlite3_stmt *p = prep(q, S_VER_GET);
	int rc;

	bind_text(p, 1, owner);
	rc = sqlite3_step(p);
	*v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(p, 0) : 0;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int version_bump(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = prep(q, S_VER_BUMP);
	int rc;

	bind_text(p, 1, r->user);
	rc = exec1(p);
	return rc ? rc : version_get(q, r->user, &r->version);
}

/* Groups are kept as one text, each name followed by a newline (a name cannot hold one: it comes
 * from XML character data, which the roster module checks). */
static int groups_split(const char *s, struct xc_roster_item *it)
{
	size_t n = 0;

	for (const char *p = s; *p; p++)
		n += *p == '\n';
	if (!n)
		return 0;
	it->groups = calloc(n, sizeof(*it->groups));
	if (!it->groups)
		return -ENOMEM;
	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		char *g = malloc((size_t)(nl - p) + 1);

		if (!g)
			return -ENOMEM;
		memcpy(g, p, (size_t)(nl - p));
		g[nl - p] = '\0';
		it->groups[it->ngroups++] = g;
		p = nl + 1;
	}
	return 0;
}

/* Whether the account of a bare JID exists. 0 (*yes set) or a database failure. */
static int account_exists(struct sq *q, const char *jid, bool *yes)
{
	char buf[2100];
	const char *u, *h;
	sqlite3_stmt *p;
	int rc;

	*yes = false;
	if (split_user(jid, buf, sizeof(buf), &u, &h))
		return 0;
	p = prep(q, S_ACC_GET);
	bind_text(p, 1, h);
	bind_text(p, 2, u);
	rc = sqlite3_step(p);
	*yes = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int prefs_get(struct sq *q, struct xc_store_req *r);
static int photo_get(struct sq *q, struct xc_store_req *r);

static int roster_get(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p;
	size_t cap = 0;
	int rc = account_exists(q, r->user, &r->found);

	rc = rc ? rc : version_get(q, r->user, &r->version);
	if (rc)
		return rc;
	p = prep(q, S_ROSTER_ALL);
	bind_text(p, 1, r->user);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		struct xc_roster_item *it;

		if (r->nitems == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct xc_roster_item *ni = realloc(r->items, ncap * sizeof(*ni));

			if (!ni)
				return -ENOMEM;
			r->items = ni;
			cap = ncap;
		}
		it = &r->items[r->nitems++];
		memset(it, 0, sizeof(*it));
		it->contact = col_dup(p, 0);
		it->name = col_dup(p, 1);
		if (!it->contact || (sqlite3_column_type(p, 1) != SQLITE_NULL && !it->name))
			return -ENOMEM;
		if (groups_split((const char *)sqlite3_column_text(p, 2), it))
			return -ENOMEM;
		it->st.sub = (enum xc_sub)(sqlite3_column_int(p, 3) & 3);
		it->st.out = sqlite3_column_int(p, 4) != 0;
		it->st.in = sqlite3_column_int(p, 5) != 0;
		it->st.approved = sqlite3_column_int(p, 6) != 0;
		it->st.listed = sqlite3_column_int(p, 7) != 0;
	}
	if (rc != SQLITE_DONE)
		return xc_sq_fail(rc);
	/* the block list comes with the roster: both are needed before anything is delivered */
	p = prep(q, S_BLOCK_ALL);
	bind_text(p, 1, r->user);
	rc = collect_jids(q, p, r);
	/* and so are the archiving preferences: delivery decides what to archive */
	rc = rc ? rc : prefs_get(q, r);
	/* and the avatar's hash, for the presence the user sends */
	return rc ? rc : photo_get(q, r);
}

/* One roster item of r->user: it is r->item, or one of an import's items. */
static int roster_put_item(struct sq *q, struct xc_store_req *r, const struct xc_roster_item *it)
{
	size_t glen = 0, off = 0;
	sqlite3_stmt *p;
	char *groups;
	int rc;

	if (!it->contact) {
		r->err = -EINVAL;
		return 0;
	}
	for (size_t i = 0; i < it->ngroups; i++)
		glen += strlen(it->groups[i]) + 1;
	groups = malloc(glen + 1);
	if (!groups)
		return -ENOMEM;
	for (size_t i = 0; i < it->ngroups; i++) {
		size_t l = strlen(it->groups[i]);

		memcpy(groups + off, it->groups[i], l);
		groups[off + l] = '\n';
		off += l + 1;
	}
	groups[off] = '\0';
	p = prep(q, S_ROSTER_PUT);
	bind_text(p, 1, r->user);
	bind_text(p, 2, it->contact);
	if (it->name)
		bind_text(p, 3, it->name);
	bind_text(p, 4, groups);
	sqlite3_bind_int(p, 5, (int)it->st.sub);
	sqlite3_bind_int(p, 6, it->st.out);
	sqlite3_bind_int(p, 7, it->st.in);
	sqlite3_bind_int(p, 8, it->st.approved);
	sqlite3_bind_int(p, 9, it->st.listed);
	rc = exec1(p);
	free(groups);
	return rc ? rc : version_bump(q, r);
}

static int roster_put(struct sq *q, struct xc_store_req *r)
{
	return roster_put_item(q, r, &r->item);
}

/* An account brought over from another server, with its roster and block list, in the
 * request's savepoint: a refusal (r->err) undoes what was written. */
static int account_import(struct sq *q, struct xc_store_req *r)
{
	int rc = account_write(q, r, S_ACC_INSERT);

	for (size_t i = 0; i < r->nitems && !rc && !r->err; i++)
		rc = roster_put_item(q, r, &r->items[i]);
	for (size_t i = 0; i < r->njids && !rc && !r->err; i++) {
		sqlite3_stmt *p = prep(q, S_BLOCK_ADD);

		bind_text(p, 1, r->user);
		bind_text(p, 2, r->jids[i]);
		rc = exec1(p);
	}
	if (!rc && !r->err && r->pep)
		rc = pep_import(q, r->user, r->pep);
	if (!rc && !r->err && r->stanza)
		rc = vcard_import(q, r->user, r->stanza);
	if (!rc && !r->err)
		rc = xc_sq_private_import(q->priv, r);
	for (size_t i = 0; i < r->nmsgs && !rc && !r->err; i++) {
		sqlite3_stmt *p = prep(q, S_OFF_PUT);

		bind_text(p, 1, r->user);
		sqlite3_bind_int64(p, 2, r->msgs[i].stamp_ms);
		bind_text(p, 3, r->msgs[i].stanza);
		rc = exec1(p);
	}
	return rc;
}

/* Keys for the hashes the account lacks, from r->creds; those it has stay as they are. */
static int account_add_creds(struct sq *q, struct xc_store_req *r)
{
	struct xc_scram_creds given[XC_SCRAM_NHASH];
	int rc;

	memcpy(given, r->creds, sizeof(given));
	rc = account_get(q, r);
	if (rc || r->err)
		return rc;
	if (!r->found) {
		r->err = -ENOENT;
		return 0;
	}
	r->count = 0;
	for (int h = 0; h < XC_SCRAM_NHASH; h++)
		if (r->creds[h].iter == 0 && given[h].iter != 0) {
			r->creds[h] = given[h];
			r->count++;
		}
	cm_crypto_wipe(given, sizeof(given));
	return r->count ? account_write(q, r, S_ACC_UPDATE) : 0;
}

static int offline_read(struct sq *q, struct xc_store_req *r);

/* What an import would write, read back in the batch's transaction: one moment's account. */
static int account_export(struct sq *q, struct xc_store_req *r)
{
	int rc = account_get(q, r);

	if (rc || r->err)
		return rc;
	if (!r->found) {
		r->err = -ENOENT;
		return 0;
	}
	rc = roster_get(q, r); /* the block list comes with it */
	rc = rc ? rc : offline_read(q, r);
	rc = rc ? rc : xc_sq_private_export(q->priv, r);
	return rc ? rc : pep_export(q, r);
}

static int roster_delete(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = prep(q, S_ROSTER_DEL);
	int rc;

	bind_text(p, 1, r->user);
	bind_text(p, 2, r->key);
	rc = exec1(p);
	if (rc)
		return rc;
	if (sqlite3_changes(q->db) == 0) {
		r->err = -ENOENT;
		return 0;
	}
	return version_bump(q, r);
}

static int offline_count(struct sq *q, const char *owner, uint64_t *n)
{
	sqlite3_stmt *p = prep(q, S_OFF_COUNT);
	int rc;

	bind_text(p, 1, owner);
	rc = sqlite3_step(p);
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	*n = (uint64_t)sqlite3_column_int64(p, 0);
	return 0;
}

static int offline_put(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p;
	bool exists;
	int rc = account_exists(q, r->user, &exists);

	if (rc)
		return rc;
	if (!exists) {
		r->err = -ENOENT;
		return 0;
	}
	rc = offline_count(q, r->user, &r->count);
	if (rc)
		return rc;
	if (r->limit && r->count >= r->limit) {
		r->err = -EDQUOT;
		return 0;
	}
	p = prep(q, S_OFF_PUT);
	bind_text(p, 1, r->user);
	sqlite3_bind_int64(p, 2, r->stamp_ms);
	bind_text(p, 3, r->stanza ? r->stanza : "");
	rc = exec1(p);
	if (!rc)
		r->count++;
	return rc;
}

/* The user's offline messages into r->msgs, oldest first. */
static int offline_read(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = prep(q, S_OFF_ALL);
	size_t cap = 0;
	int rc;

	bind_text(p, 1, r->user);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		if (r->nmsgs == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct xc_offline_msg *nm = realloc(r->msgs, ncap * sizeof(*nm));

			if (!nm)
				return -ENOMEM;
			r->msgs = nm;
			cap = ncap;
		}
		r->msgs[r->nmsgs].stamp_ms = sqlite3_column_int64(p, 0);
		r->msgs[r->nmsgs].stanza = col_dup(p, 1);
		if (!r->msgs[r->nmsgs].stanza)
			return -ENOMEM;
		r->nmsgs++;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int offline_take(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p;
	int rc = offline_read(q, r);

	if (rc)
		return rc;
	p = prep(q, S_OFF_DEL_ALL);
	bind_text(p, 1, r->user);
	return exec1(p);
}

static int block_change(struct sq *q, struct xc_store_req *r, enum stmt one, bool all_if_none)
{
	int rc = 0;

	if (all_if_none && r->njids == 0) {
		sqlite3_stmt *p = prep(q, S_BLOCK_DEL_ALL);

		bind_text(p, 1, r->user);
		return exec1(p);
	}
	for (size_t i = 0; i < r->njids && !rc; i++) {
		sqlite3_stmt *p = prep(q, one);

		bind_text(p, 1, r->user);
		bind_text(p, 2, r->jids[i]);
		rc = exec1(p);
	}
	return rc;
}

/* --- the archiving preferences (XEP-0313); the archive is store_sqlite_archive.c's ----------- */

/* Append a copy of s to *v (n entries). 0 or -ENOMEM. */
static int strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int prefs_get(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = prep(q, S_PREFS_GET);
	int rc;

	bind_text(p, 1, r->user);
	rc = sqlite3_step(p);
	if (rc == SQLITE_ROW) {
		r->prefs_found = true;
		r->prefs.def = sqlite3_column_int(p, 0);
	} else if (rc != SQLITE_DONE) {
		return xc_sq_fail(rc);
	}
	p = prep(q, S_PREFS_JIDS);
	bind_text(p, 1, r->user);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		const char *jid = (const char *)sqlite3_column_text(p, 0);
		int e;

		if (!jid)
			return -ENOMEM;
		if (sqlite3_column_int(p, 1))
			e = strv_push(&r->prefs.always, &r->prefs.nalways, jid);
		else
			e = strv_push(&r->prefs.never, &r->prefs.nnever, jid);
		if (e)
			return e;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int prefs_put(struct sq *q, struct xc_store_req *r)
{
	static const enum stmt clear[] = {S_PREFS_DEL, S_PREFS_JID_DEL};
	sqlite3_stmt *p;
	int rc = 0;

	for (size_t i = 0; i < 2 && !rc; i++) {
		p = prep(q, clear[i]);
		bind_text(p, 1, r->user);
		rc = exec1(p);
	}
	if (rc)
		return rc;
	p = prep(q, S_PREFS_PUT);
	bind_text(p, 1, r->user);
	sqlite3_bind_int(p, 2, r->prefs.def);
	rc = exec1(p);
	/* a JID in both lists ends up "never": the safer reading */
	for (size_t i = 0; i < r->prefs.nalways + r->prefs.nnever && !rc; i++) {
		bool always = i < r->prefs.nalways;

		p = prep(q, S_PREFS_JID_PUT);
		bind_text(p, 1, r->user);
		bind_text(p, 2, always ? r->prefs.always[i] : r->prefs.never[i - r->prefs.nalways]);
		sqlite3_bind_int(p, 3, always);
		rc = exec1(p);
	}
	return rc;
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* Flush what commits nobody waited for left unflushed: a checkpoint flushes the WAL first. */
static void flush_late(struct sq *q)
{
	int rc = sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	if (rc != SQLITE_OK) {
		CM_LOGE("store", "flushing the database to disk: %s (next try in %d s)",
		        sqlite3_errmsg(q->db), SYNC_LATE_MS / 1000);
		q->synced_ms = now_ms(); /* not again at once */
		return;
	}
	q->unsynced = false;
	q->synced_ms = now_ms();
}

/* ms until t0 + span from now (at least 1). */
static unsigned until(uint64_t now, uint64_t t0, uint64_t span)
{
	return now - t0 >= span ? 1 : (unsigned)(t0 + span - now);
}

/* After each batch, and when idle at the time asked: the archive's fold when it is due; flush
 * late commits when the last flush is old enough. */
static unsigned sq_maintain(void *db)
{
	struct sq *q = db;
	uint64_t now;
	unsigned next, t;
	bool folded;

	next = xc_sq_arch_maintain(q->arch, &folded);
	if (folded && !q->sync_full)
		q->unsynced = true; /* committed as the last batch was: flushed as it will be */
	now = now_ms();
	if (q->unsynced && now - q->synced_ms >= SYNC_LATE_MS) {
		flush_late(q);
		now = now_ms();
	}
	if (q->unsynced && (t = until(now, q->synced_ms, SYNC_LATE_MS)) < (next ? next : UINT_MAX))
		next = t;
	return next;
}

static int dispatch(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p;

	switch (r->op) {
	case XC_STORE_ACCOUNT_GET:
		return account_get(q, r);
	case XC_STORE_ACCOUNT_CREATE:
		return account_write(q, r, S_ACC_INSERT);
	case XC_STORE_ACCOUNT_SET_CREDS: {
		/* a new password ends every FAST token of the account */
		int rc = account_write(q, r, S_ACC_UPDATE);

		return rc || r->err ? rc : fast_revoke(q, r->user, NULL, &r->count);
	}
	case XC_STORE_ACCOUNT_DELETE:
		return account_delete(q, r);
	case XC_STORE_ACCOUNT_LIST:
		return account_list(q, r);
	case XC_STORE_ACCOUNT_IMPORT:
		return account_import(q, r);
	case XC_STORE_ACCOUNT_EXPORT:
		return account_export(q, r);
	case XC_STORE_ACCOUNT_ADD_CREDS:
		return account_add_creds(q, r);
	case XC_STORE_ROSTER_GET:
		return roster_get(q, r);
	case XC_STORE_ROSTER_PUT:
		return roster_put(q, r);
	case XC_STORE_ROSTER_DELETE:
		return roster_delete(q, r);
	case XC_STORE_OFFLINE_PUT:
		return offline_put(q, r);
	case XC_STORE_OFFLINE_TAKE:
		return offline_take(q, r);
	case XC_STORE_OFFLINE_COUNT:
		return offline_count(q, r->user, &r->count);
	case XC_STORE_BLOCK_GET:
		p = prep(q, S_BLOCK_ALL);
		bind_text(p, 1, r->user);
		return collect_jids(q, p, r);
	case XC_STORE_BLOCK_ADD:
		return block_change(q, r, S_BLOCK_ADD, false);
	case XC_STORE_BLOCK_REMOVE:
		return block_change(q, r, S_BLOCK_DEL, true);
	case XC_STORE_ARCHIVE_PUT:
	case XC_STORE_ARCHIVE_QUERY:
	case XC_STORE_ARCHIVE_PURGE:
		return xc_sq_arch_run(q->arch, r);
	case XC_STORE_ARCHIVE_PREFS_PUT:
		return prefs_put(q, r);
	case XC_STORE_PEP_PUBLISH:
	case XC_STORE_PEP_ITEMS:
	case XC_STORE_PEP_RETRACT:
	case XC_STORE_PEP_DELETE:
	case XC_STORE_PEP_NODES:
	case XC_STORE_PEP_LAST:
	case XC_STORE_PEP_CONFIGURE:
	case XC_STORE_VCARD_GET:
	case XC_STORE_VCARD_SET:
	case XC_STORE_VCARD_HASH:
		return pep_dispatch(q, r);
	case XC_STORE_PUSH_ENABLE:
	case XC_STORE_PUSH_DISABLE:
	case XC_STORE_PUSH_LIST:
	case XC_STORE_PUSH_COUNT:
		return xc_sq_push_run(q->push, r);
	case XC_STORE_PRIVATE_GET:
	case XC_STORE_PRIVATE_SET:
		return xc_sq_private_run(q->priv, r);
	case XC_STORE_LAST_SET:
	case XC_STORE_LAST_GET:
		return xc_sq_last_run(q->last, r);
	case XC_STORE_UPLOAD_RESERVE:
	case XC_STORE_UPLOAD_PURGE:
		return xc_sq_upload_run(q->up, r);
	case XC_STORE_FAST_GET:
	case XC_STORE_FAST_UPDATE:
	case XC_STORE_FAST_REVOKE:
		return fast_dispatch(q, r);
	case XC_STORE_NOPS:
		break;
	}
	r->err = -EINVAL;
	return 0;
}

/* --- the backend ------------------------------------------------------------------------------ */

/* Whether op refuses only before it writes or with its one insert changing nothing: it needs no
 * savepoint of its own (a statement that fails is undone by SQLite itself, and what an archive
 * write does after its insert, a late row's keys, fails only when the database does, which
 * rolls the whole batch back). */
static bool one_statement(enum xc_store_op op)
{
	return op == XC_STORE_ARCHIVE_PUT;
}

static int sq_run(void *db, struct xc_store_req *r)
{
	struct sq *q = db;
	bool save = !one_statement(r->op);
	int rc = save ? exec1(prep(q, S_SAVE)) : 0;

	if (rc)
		return rc;
	if (!r->user && r->op != XC_STORE_ACCOUNT_LIST && r->op != XC_STORE_ARCHIVE_PURGE &&
	    r->op != XC_STORE_PUSH_COUNT && r->op != XC_STORE_UPLOAD_PURGE) {
		r->err = -EINVAL;
	} else {
		rc = dispatch(q, r);
		/* results built halfway are freed with the request; a refusal undoes its writes */
		if (rc == -ENOMEM) {
			r->err = -ENOMEM;
			rc = 0;
		}
	}
	if (rc || !save)
		return rc;
	if (r->err && (rc = exec1(prep(q, S_ROLLBACK_TO))) != 0)
		return rc;
	return exec1(prep(q, S_RELEASE));
}

static int sq_exec(struct sq *q, const char *s)
{
	int rc = sqlite3_exec(q->db, s, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : xc_sq_fail(rc);
}

static int sq_begin(void *db, bool waited)
{
	struct sq *q = db;
	bool full = waited || now_ms() - q->synced_ms >= SYNC_LATE_MS;
	int rc;

	/* (the connection's setting, which SQLite lets change outside transactions only) */
	if (full != q->sync_full) {
		rc = sq_exec(q, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
		if (rc)
			return rc;
		q->sync_full = full;
	}
	return exec_once(prep(q, S_BEGIN));
}

static int sq_commit(void *db)
{
	struct sq *q = db;
	int rc = exec_once(prep(q, S_COMMIT));

	if (!rc && q->sync_full) {
		q->synced_ms = now_ms();
		q->unsynced = false;
	} else if (!rc) {
		q->unsynced = true;
	}
	return rc;
}

static void sq_rollback(void *db)
{
	struct sq *q = db;

	if (!sqlite3_get_autocommit(q->db))
		(void)sq_exec(q, "ROLLBACK");
}

static void sq_close(void *db)
{
	struct sq *q = db;

	if (!q)
		return;
	xc_sq_arch_close(q->arch); /* (first: it folds what waits) */
	for (int i = 0; i < S_NSTMT; i++)
		sqlite3_finalize(q->st[i]);
	pep_close(q);
	xc_sq_push_close(q->push);
	xc_sq_private_close(q->priv);
	xc_sq_last_close(q->last);
	xc_sq_upload_close(q->up);
	sqlite3_close(q->db);
	free(q);
}

static int sq_open(void **out, const char *where, unsigned cache_mb, char *err, size_t errlen)
{
	char pragmas[160];
	struct sq *q;
	int rc, version = 0;
	sqlite3_stmt *p;

	*out = NULL;
	if (!where || !*where)
		return cm_errf(err, errlen, -EINVAL, "no database file");
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	/* one connection, used by one thread: no mutexes inside SQLite */
	rc = sqlite3_open_v2(
	    where, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = cm_errf(err, errlen, -EIO, "%s: %s", where,
		             q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		sq_close(q);
		return rc;
	}
	sqlite3_busy_timeout(q->db, 5000);
	q->sync_full = true;
	snprintf(pragmas, sizeof(pragmas),
	         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
	         "PRAGMA cache_size=-%u; PRAGMA wal_autocheckpoint=%d;",
	         cache_mb * 1024u, CHECKPOINT_PAGES);
	rc = sq_exec(q, pragmas);
	rc = rc ? rc : sq_exec(q, schema);
	if (rc)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &p,
	                              NULL) == SQLITE_OK) {
		if (sqlite3_step(p) == SQLITE_ROW)
			version = sqlite3_column_int(p, 0);
		sqlite3_finalize(p);
	}
	if (!rc && version == 0) {
		/* a new database */
		rc = sq_exec(q, "INSERT INTO meta (key, value) VALUES ('schema', 1)");
		if (rc)
			rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	} else if (!rc && version != SCHEMA_VERSION) {
		rc = cm_errf(err, errlen, -EINVAL, "%s: schema version %d, this build knows %d",
		             where, version, SCHEMA_VERSION);
	}
	for (int i = 0; i < S_NSTMT && !rc; i++)
		if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
		                       NULL) != SQLITE_OK)
			rc = cm_errf(err, errlen, -EIO, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && ((rc = pep_open(q)) != 0 || (rc = fast_open(q)) != 0))
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && (rc = xc_sq_push_open(&q->push, q->db)) != 0)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && (rc = xc_sq_private_open(&q->priv, q->db)) != 0)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && (rc = xc_sq_last_open(&q->last, q->db)) != 0)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && (rc = xc_sq_upload_open(&q->up, q->db)) != 0)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (!rc && (rc = xc_sq_arch_open(&q->arch, q->db)) != 0)
		rc = cm_errf(err, errlen, rc, "%s: %s", where, sqlite3_errmsg(q->db));
	if (rc) {
		sq_close(q);
		return rc;
	}
	*out = q;
	return 0;
}

static int sq_archive_ids(void *db, uint64_t *next, uint64_t key[2])
{
	struct sq *q = db;

	return xc_sq_arch_ids(q->arch, next, key);
}

/* The backup: SQLite's online backup from a read-only connection of its own, all pages in one
 * step (one read transaction: in WAL mode a snapshot, which the store's writer does not wait
 * for), into dest's ".part" file made here (mode 0600, never one that exists), synced, then
 * renamed to dest and the directory synced. */
static int sq_backup(const char *where, const char *dest, uint64_t *bytes, char *err, size_t errlen)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	struct stat st;
	char *part = NULL, *dir = NULL, *slash;
	int fd, rc = 0, step;

	*bytes = 0;
	if (access(dest, F_OK) == 0)
		return cm_errf(err, errlen, -EEXIST, "%s exists already", dest);
	if (asprintf(&part, "%s.part", dest) < 0)
		return -ENOMEM;
	fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = cm_errf(err, errlen, -errno, "%s: %s", part, strerror(errno));
		free(part);
		return rc;
	}
	close(fd);
	if (sqlite3_open_v2(where, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(part, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		rc = cm_errf(err, errlen, -EIO, "%s", sqlite3_errmsg(dst ? dst : src));
		goto out;
	}
	sqlite3_busy_timeout(src, 5000);
	if (!(b = sqlite3_backup_init(dst, "main", src, "main"))) {
		rc = cm_errf(err, errlen, -EIO, "%s", sqlite3_errmsg(dst));
		goto out;
	}
	step = sqlite3_backup_step(b, -1);
	if (sqlite3_backup_finish(b) != SQLITE_OK || step != SQLITE_DONE) {
		rc = cm_errf(err, errlen, step == SQLITE_NOMEM ? -ENOMEM : -EIO, "%s",
		             step != SQLITE_DONE ? sqlite3_errstr(step) : sqlite3_errmsg(dst));
		goto out;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		rc = cm_errf(err, errlen, -EIO, "%s: closing the copy failed", part);
		dst = NULL;
		goto out;
	}
	dst = NULL;
	/* on disk before it takes its name, and the name on disk before the answer */
	fd = open(part, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0 || fstat(fd, &st) != 0)
		rc = cm_errf(err, errlen, -errno, "%s: %s", part, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (!rc && rename(part, dest) != 0)
		rc = cm_errf(err, errlen, -errno, "%s: %s", dest, strerror(errno));
	if (!rc && (dir = strdup(dest)) != NULL) {
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	if (!rc)
		*bytes = (uint64_t)st.st_size;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	if (rc)
		unlink(part);
	free(part);
	free(dir);
	return rc;
}

const struct xc_store_backend xc_store_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .maintain = sq_maintain,
    .rollback = sq_rollback,
    .run = sq_run,
    .archive_ids = sq_archive_ids,
    .backup = sq_backup,
};

/* --- personal eventing (XEP-0163) and vcard-temp (XEP-0054) ----------------------------------
 *
 * Nodes are rows of pep_nodes, keyed by (owner, node); their items are rows of pep_items in
 * publication order (seq), so the newest item of a node is its highest seq. A republished id
 * moves to the front. A node's roster_groups_allowed is a row of pep_node_groups (the names, each
 * followed by '\n', as the roster's groups column has them). vCards are one row per owner. The
 * tables are created on open whatever the database's age (IF NOT EXISTS), so they need no schema
 * version of their own. */

static const char pep_schema[] =
    "CREATE TABLE IF NOT EXISTS pep_nodes ("
    "  owner TEXT NOT NULL, node TEXT NOT NULL, access INTEGER NOT NULL,"
    "  persist INTEGER NOT NULL, max_items INTEGER NOT NULL, PRIMARY KEY (owner, node));"
    "CREATE TABLE IF NOT EXISTS pep_items ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, node TEXT NOT NULL,"
    "  item TEXT NOT NULL, payload TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS pep_items_id ON pep_items (owner, node, item);"
    "CREATE INDEX IF NOT EXISTS pep_items_node ON pep_items (owner, node, seq);"
    "CREATE TABLE IF NOT EXISTS pep_node_groups ("
    "  owner TEXT NOT NULL, node TEXT NOT NULL, groups TEXT NOT NULL, PRIMARY KEY (owner, node));"
    "CREATE TABLE IF NOT EXISTS vcards (owner TEXT PRIMARY KEY, vcard TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vcard_photos (owner TEXT PRIMARY KEY, hash TEXT NOT NULL);";

enum pstmt {
	P_NODE_GET,
	P_NODE_PUT,
	P_NODE_COUNT,
	P_NODE_DEL,
	P_NODE_ALL,
	P_NODE_DEL_ALL,
	P_ITEM_DEL,
	P_ITEM_PUT,
	P_ITEM_TRIM,
	P_ITEM_NEWEST,
	P_ITEM_ONE,
	P_ITEM_DEL_NODE,
	P_ITEM_DEL_ALL,
	P_LAST,
	P_SEES,
	P_VCARD_GET,
	P_VCARD_PUT,
	P_VCARD_DEL,
	P_PHOTO_GET,
	P_PHOTO_PUT,
	P_PHOTO_ADD,
	P_PHOTO_DEL,
	P_NODE_SET,
	P_GROUPS_PUT,
	P_GROUPS_DEL,
	P_GROUPS_DEL_ALL,
	P_ITEM_SEQ,
	P_ITEM_BEFORE,
	P_ITEM_COUNT,
	P_END,
};
_Static_assert(P_END <= P_NSTMT, "struct sq has room for every PEP statement");

static const char *const pep_sql[P_END] = {
    [P_NODE_GET] = "SELECT n.access, n.persist, n.max_items, g.groups FROM pep_nodes n "
                   "LEFT JOIN pep_node_groups g ON g.owner = n.owner AND g.node = n.node "
                   "WHERE n.owner = ?1 AND n.node = ?2",
    [P_NODE_PUT] = "INSERT INTO pep_nodes (owner, node, access, persist, max_items) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [P_NODE_COUNT] = "SELECT count(*) FROM pep_nodes WHERE owner = ?1",
    [P_NODE_DEL] = "DELETE FROM pep_nodes WHERE owner = ?1 AND node = ?2",
    [P_NODE_ALL] = "SELECT n.node, n.access, g.groups FROM pep_nodes n LEFT JOIN "
                   "pep_node_groups g ON g.owner = n.owner AND g.node = n.node "
                   "WHERE n.owner = ?1 ORDER BY n.node",
    [P_NODE_DEL_ALL] = "DELETE FROM pep_nodes WHERE owner = ?1",
    [P_ITEM_DEL] = "DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND item = ?3",
    [P_ITEM_PUT] = "INSERT INTO pep_items (owner, node, item, payload) VALUES (?1, ?2, ?3, ?4)",
    [P_ITEM_TRIM] = "DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND seq NOT IN "
                    "(SELECT seq FROM pep_items WHERE owner = ?1 AND node = ?2 "
                    "ORDER BY seq DESC LIMIT ?3)",
    [P_ITEM_NEWEST] = "SELECT item, payload FROM pep_items WHERE owner = ?1 AND node = ?2 "
                      "ORDER BY seq DESC LIMIT ?3",
    [P_ITEM_ONE] = "SELECT item, payload FROM pep_items WHERE owner = ?1 AND node = ?2 AND "
                   "item = ?3",
    [P_ITEM_DEL_NODE] = "DELETE FROM pep_items WHERE owner = ?1 AND node = ?2",
    [P_ITEM_DEL_ALL] = "DELETE FROM pep_items WHERE owner = ?1",
    [P_LAST] = "SELECT n.node, n.access, i.item, i.payload, g.groups FROM pep_nodes n "
               "JOIN pep_items i ON i.seq = (SELECT max(seq) FROM pep_items WHERE "
               "owner = n.owner AND node = n.node) LEFT JOIN pep_node_groups g ON "
               "g.owner = n.owner AND g.node = n.node WHERE n.owner = ?1 ORDER BY n.node",
    [P_SEES] = XC_SQ_SEES_SQL,
    [P_VCARD_GET] = "SELECT vcard FROM vcards WHERE owner = ?1",
    [P_VCARD_PUT] = "INSERT OR REPLACE INTO vcards (owner, vcard) VALUES (?1, ?2)",
    [P_VCARD_DEL] = "DELETE FROM vcards WHERE owner = ?1",
    [P_PHOTO_GET] = "SELECT p.hash FROM vcards v LEFT JOIN vcard_photos p ON p.owner = v.owner "
                    "WHERE v.owner = ?1",
    [P_PHOTO_PUT] = "INSERT OR REPLACE INTO vcard_photos (owner, hash) VALUES (?1, ?2)",
    [P_PHOTO_ADD] = "INSERT OR IGNORE INTO vcard_photos (owner, hash) VALUES (?1, ?2)",
    [P_PHOTO_DEL] = "DELETE FROM vcard_photos WHERE owner = ?1",
    [P_NODE_SET] = "UPDATE pep_nodes SET access = ?3, persist = ?4, max_items = ?5 WHERE "
                   "owner = ?1 AND node = ?2",
    [P_GROUPS_PUT] = "INSERT OR REPLACE INTO pep_node_groups (owner, node, groups) "
                     "VALUES (?1, ?2, ?3)",
    [P_GROUPS_DEL] = "DELETE FROM pep_node_groups WHERE owner = ?1 AND node = ?2",
    [P_GROUPS_DEL_ALL] = "DELETE FROM pep_node_groups WHERE owner = ?1",
    [P_ITEM_SEQ] = "SELECT seq FROM pep_items WHERE owner = ?1 AND node = ?2 AND item = ?3",
    [P_ITEM_BEFORE] = "SELECT item, payload FROM pep_items WHERE owner = ?1 AND node = ?2 AND "
                      "seq < ?3 ORDER BY seq DESC LIMIT ?4",
    [P_ITEM_COUNT] = "SELECT count(*) FROM pep_items WHERE owner = ?1 AND node = ?2 AND "
                     "seq >= ?3",
};

static int pep_open(struct sq *q)
{
	int rc = sq_exec(q, pep_schema);

	for (int i = 0; i < P_END && !rc; i++)
		if (sqlite3_prepare_v3(q->db, pep_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->pst[i],
		                       NULL) != SQLITE_OK)
			rc = -EIO;
	return rc;
}

static void pep_close(struct sq *q)
{
	for (int i = 0; i < P_END; i++)
		sqlite3_finalize(q->pst[i]);
}

static sqlite3_stmt *pprep(struct sq *q, enum pstmt s)
{
	sqlite3_stmt *p = q->pst[s];

	sqlite3_reset(p);
	sqlite3_clear_bindings(p);
	return p;
}

/* A statement bound to (owner, node). */
static sqlite3_stmt *pprep2(struct sq *q, enum pstmt s, const char *owner, const char *node)
{
	sqlite3_stmt *p = pprep(q, s);

	bind_text(p, 1, owner);
	if (node)
		bind_text(p, 2, node);
	return p;
}

/* ROSTER_GET's avatar: the hash kept with the vCard; "" without a vCard, NULL when there is a
 * vCard but no hash. */
static int photo_get(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p = pprep2(q, P_PHOTO_GET, r->user, NULL);
	int rc = sqlite3_step(p);

	if (rc == SQLITE_ROW && sqlite3_column_type(p, 0) == SQLITE_NULL)
		return 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return xc_sq_fail(rc);
	r->avatar = rc == SQLITE_ROW ? col_dup(p, 0) : strdup("");
	return r->avatar ? 0 : -ENOMEM;
}

static int pep_delete_owned(struct sq *q, const char *owner)
{
	static const enum pstmt all[] = {P_NODE_DEL_ALL, P_ITEM_DEL_ALL, P_GROUPS_DEL_ALL,
	                                 P_VCARD_DEL, P_PHOTO_DEL};
	int rc = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && !rc; i++)
		rc = exec1(pprep2(q, all[i], owner, NULL));
	return rc;
}

/* Append an item to p->items (strings copied; payload may be NULL). 0 or -ENOMEM. */
static int pep_push(struct xc_pep_req *p, const char *node, const char *id, const char *payload,
                    int access, const char *groups)
{
	struct xc_pep_item *v = realloc(p->items, (p->nitems + 1) * sizeof(*v));
	struct xc_pep_item *it;

	if (!v)
		return -ENOMEM;
	p->items = v;
	it = &v[p->nitems];
	memset(it, 0, sizeof(*it));
	it->access = access;
	it->node = strdup(node ? node : "");
	it->id = strdup(id ? id : "");
	it->payload = payload ? strdup(payload) : NULL;
	it->groups = groups ? strdup(groups) : NULL;
	p->nitems++;
	if (!it->node || !it->id || (payload && !it->payload) || (groups && !it->groups))
		return -ENOMEM;
	return 0;
}

/* The node's configuration into *cfg (cfg->groups replaced: the caller frees what it held
 * before, if anything); false (and 0) when there is no such node. */
static int node_get(struct sq *q, const char *owner, const char *node, struct xc_pep_cfg *cfg,
                    bool *found)
{
	sqlite3_stmt *p = pprep2(q, P_NODE_GET, owner, node);
	int rc = sqlite3_step(p);

	*found = rc == SQLITE_ROW;
	cfg->groups = NULL;
	if (rc == SQLITE_ROW) {
		cfg->access = sqlite3_column_int(p, 0);
		cfg->persist = sqlite3_column_int(p, 1) != 0;
		cfg->max_items = (unsigned)sqlite3_column_int64(p, 2);
		if (sqlite3_column_type(p, 3) != SQLITE_NULL && !(cfg->groups = col_dup(p, 3)))
			return -ENOMEM;
		return 0;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

/* Items a node keeps: one when it does not persist them (the last published item is still
 * sent to contacts coming online), else its max_items within the cap. */
static unsigned node_keeps(const struct xc_pep_cfg *cfg, unsigned cap)
{
	if (!cfg->persist)
		return 1;
	if (cfg->max_items == XC_PEP_MAX_ITEMS || cfg->max_items > cap)
		return cap;
	return cfg->max_items;
}

/* The node's roster_groups_allowed: groups (none when NULL or empty). */
static int groups_put(struct sq *q, const char *owner, const char *node, const char *groups)
{
	sqlite3_stmt *p;

	if (!groups || !*groups)
		return exec1(pprep2(q, P_GROUPS_DEL, owner, node));
	p = pprep2(q, P_GROUPS_PUT, owner, node);
	bind_text(p, 3, groups);
	return exec1(p);
}

/* An account's PEP nodes brought over (ACCOUNT_IMPORT): each node made as its first item says,
 * then the items in the order given (oldest first). */
static int pep_import(struct sq *q, const char *owner, const struct xc_pep_req *pr)
{
	int rc = 0;

	for (size_t i = 0; i < pr->nitems && !rc; i++) {
		const struct xc_pep_item *it = &pr->items[i];
		sqlite3_stmt *p;

		if (i == 0 || strcmp(it->node, pr->items[i - 1].node) != 0) {
			p = pprep2(q, P_NODE_PUT, owner, it->node);
			sqlite3_bind_int(p, 3, it->access);
			sqlite3_bind_int(p, 4, it->persist);
			sqlite3_bind_int64(p, 5, it->max_items);
			if ((rc = exec1(p)) != 0 ||
			    (rc = groups_put(q, owner, it->node, it->groups)) != 0)
				return rc;
		}
		p = pprep2(q, P_ITEM_PUT, owner, it->node);
		bind_text(p, 3, it->id);
		bind_text(p, 4, it->payload);
		rc = exec1(p);
	}
	return rc;
}

/* An account's vcard-temp brought over (ACCOUNT_IMPORT). */
static int vcard_import(struct sq *q, const char *owner, const char *vcard)
{
	sqlite3_stmt *p = pprep2(q, P_VCARD_PUT, owner, NULL);

	bind_text(p, 2, vcard);
	return exec1(p);
}

/* ACCOUNT_EXPORT's PEP: each node's items with the node's configuration (as pep_import()
 * takes them), and the vCard. */
static int pep_export(struct sq *q, struct xc_store_req *r)
{
	static const char export_sql[] =
	    "SELECT n.node, n.access, n.persist, n.max_items, g.groups, i.item, i.payload "
	    "FROM pep_nodes n JOIN pep_items i ON i.owner = n.owner AND i.node = n.node "
	    "LEFT JOIN pep_node_groups g ON g.owner = n.owner AND g.node = n.node "
	    "WHERE n.owner = ?1 ORDER BY n.node, i.seq";
	sqlite3_stmt *p = NULL;
	size_t cap = 0;
	int rc;

	if (sqlite3_prepare_v2(q->db, export_sql, -1, &p, NULL) != SQLITE_OK)
		return xc_sq_fail(sqlite3_errcode(q->db));
	bind_text(p, 1, r->user);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		struct xc_pep_req *pr = r->pep;
		struct xc_pep_item *it;

		if (!pr && !(pr = r->pep = calloc(1, sizeof(*pr)))) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (pr->nitems == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct xc_pep_item *ni = realloc(pr->items, ncap * sizeof(*ni));

			if (!ni) {
				rc = SQLITE_NOMEM;
				break;
			}
			pr->items = ni;
			cap = ncap;
		}
		it = &pr->items[pr->nitems++];
		memset(it, 0, sizeof(*it));
		it->node = col_dup(p, 0);
		it->access = sqlite3_column_int(p, 1);
		it->persist = sqlite3_column_int(p, 2) != 0;
		it->max_items = (unsigned)sqlite3_column_int64(p, 3);
		it->groups = sqlite3_column_type(p, 4) == SQLITE_NULL ? NULL : col_dup(p, 4);
		it->id = col_dup(p, 5);
		it->payload = col_dup(p, 6);
		if (!it->node || !it->id || !it->payload ||
		    (sqlite3_column_type(p, 4) != SQLITE_NULL && !it->groups)) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(p);
	if (rc != SQLITE_DONE)
		return xc_sq_fail(rc);
	p = pprep2(q, P_VCARD_GET, r->user, NULL);
	rc = sqlite3_step(p);
	if (rc == SQLITE_ROW && !(r->stanza = col_dup(p, 0)))
		return -ENOMEM;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static bool same_groups(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static int pep_publish(struct sq *q, struct xc_store_req *r)
{
	struct xc_pep_req *pr = r->pep;
	struct xc_pep_cfg have = {0};
	bool found;
	sqlite3_stmt *p;
	int rc;

	if (!r->key || !pr->item_id || !pr->payload) {
		r->err = -EINVAL;
		return 0;
	}
	if ((rc = node_get(q, r->user, r->key, &have, &found)) != 0)
		return rc;
	if (found) {
		/* publish-options are preconditions on an existing node (XEP-0060 7.1.5) */
		const struct xc_pep_cfg *want = &pr->cfg;

		bool differ =
		    ((want->set & XC_PEP_SET_ACCESS) && want->access != have.access) ||
		    ((want->set & XC_PEP_SET_PERSIST) && want->persist != have.persist) ||
		    ((want->set & XC_PEP_SET_MAX) && want->max_items != have.max_items) ||
		    ((want->set & XC_PEP_SET_GROUPS) && !same_groups(want->groups, have.groups));

		free(pr->cfg.groups);
		pr->cfg = have; /* its groups handed over */
		if (differ) {
			r->err = -ECANCELED;
			return 0;
		}
	} else {
		uint64_t n = 0;

		p = pprep2(q, P_NODE_COUNT, r->user, NULL);
		rc = sqlite3_step(p);
		if (rc != SQLITE_ROW)
			return xc_sq_fail(rc);
		n = (uint64_t)sqlite3_column_int64(p, 0);
		if (pr->max_nodes && n >= pr->max_nodes) {
			r->err = -EDQUOT;
			return 0;
		}
		p = pprep2(q, P_NODE_PUT, r->user, r->key);
		sqlite3_bind_int(p, 3, pr->cfg.access);
		sqlite3_bind_int(p, 4, pr->cfg.persist);
		sqlite3_bind_int64(p, 5, pr->cfg.max_items);
		if ((rc = exec1(p)) != 0 ||
		    (rc = groups_put(q, r->user, r->key, pr->cfg.groups)) != 0)
			return rc;
		pr->created = true;
	}
	p = pprep2(q, P_ITEM_DEL, r->user, r->key);
	bind_text(p, 3, pr->item_id);
	if ((rc = exec1(p)) != 0)
		return rc;
	p = pprep2(q, P_ITEM_PUT, r->user, r->key);
	bind_text(p, 3, pr->item_id);
	bind_text(p, 4, pr->payload);
	if ((rc = exec1(p)) != 0)
		return rc;
	p = pprep2(q, P_ITEM_TRIM, r->user, r->key);
	sqlite3_bind_int64(p, 3, node_keeps(&pr->cfg, pr->max_items_cap ? pr->max_items_cap : 1));
	return exec1(p);
}

/* Rows of (item, payload) into pr->items. */
static int collect_items(sqlite3_stmt *p, struct xc_pep_req *pr, const char *node, int access)
{
	int rc;

	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		int e = pep_push(pr, node, (const char *)sqlite3_column_text(p, 0),
		                 (const char *)sqlite3_column_text(p, 1), access, NULL);

		if (e)
			return e;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

/* The number of the node's items from seq on into *n. */
static int count_from(struct sq *q, const char *owner, const char *node, sqlite3_int64 seq,
                      uint64_t *n)
{
	sqlite3_stmt *p = pprep2(q, P_ITEM_COUNT, owner, node);
	int rc;

	sqlite3_bind_int64(p, 3, seq);
	rc = sqlite3_step(p);
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	*n = (uint64_t)sqlite3_column_int64(p, 0);
	return 0;
}

/* A page of items (XEP-0059), newest first: pr->max of them after pr->after (or from the
 * newest), the node's count and the page's first item's index. */
static int items_page(struct sq *q, struct xc_store_req *r)
{
	struct xc_pep_req *pr = r->pep;
	sqlite3_int64 below = INT64_MAX;
	sqlite3_stmt *p;
	int rc;

	if ((rc = count_from(q, r->user, r->key, 0, &pr->count)) != 0)
		return rc;
	pr->index = 0;
	if (pr->after) {
		p = pprep2(q, P_ITEM_SEQ, r->user, r->key);
		bind_text(p, 3, pr->after);
		rc = sqlite3_step(p);
		if (rc == SQLITE_DONE) {
			r->err = -ESRCH;
			pr->count = 0;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return xc_sq_fail(rc);
		below = sqlite3_column_int64(p, 0);
		if ((rc = count_from(q, r->user, r->key, below, &pr->index)) != 0)
			return rc;
	}
	p = pprep2(q, P_ITEM_BEFORE, r->user, r->key);
	sqlite3_bind_int64(p, 3, below);
	sqlite3_bind_int64(p, 4, (sqlite3_int64)pr->max);
	return collect_items(p, pr, r->key, pr->cfg.access);
}

static int pep_items(struct sq *q, struct xc_store_req *r)
{
	struct xc_pep_req *pr = r->pep;
	bool found;
	sqlite3_stmt *p;
	int rc;

	if (!r->key) {
		r->err = -EINVAL;
		return 0;
	}
	if ((rc = node_get(q, r->user, r->key, &pr->cfg, &found)) != 0)
		return rc;
	if (!found) {
		r->err = -ENOENT;
		return 0;
	}
	if (pr->nids) {
		for (size_t i = 0; i < pr->nids && !rc; i++) {
			p = pprep2(q, P_ITEM_ONE, r->user, r->key);
			bind_text(p, 3, pr->ids[i]);
			rc = collect_items(p, pr, r->key, pr->cfg.access);
		}
		return rc;
	}
	if (!pr->rsm) {
		p = pprep2(q, P_ITEM_NEWEST, r->user, r->key);
		sqlite3_bind_int64(p, 3, pr->max ? (sqlite3_int64)pr->max : -1);
		return collect_items(p, pr, r->key, pr->cfg.access);
	}
	return items_page(q, r);
}

static int pep_last(struct sq *q, struct xc_store_req *r)
{
	struct xc_pep_req *pr = r->pep;
	sqlite3_stmt *p;
	int rc;

	if (r->key) {
		p = pprep2(q, P_SEES, r->user, r->key);
		rc = sqlite3_step(p);
		if (rc == SQLITE_ROW) {
			int sub = sqlite3_column_int(p, 0);

			pr->sees = sub == XC_SUB_FROM || sub == XC_SUB_BOTH;
			if (!(pr->contact_groups = col_dup(p, 1)))
				return -ENOMEM;
		} else if (rc != SQLITE_DONE) {
			return xc_sq_fail(rc);
		}
	}
	p = pprep2(q, P_LAST, r->user, NULL);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		int e = pep_push(pr, (const char *)sqlite3_column_text(p, 0),
		                 (const char *)sqlite3_column_text(p, 2),
		                 (const char *)sqlite3_column_text(p, 3), sqlite3_column_int(p, 1),
		                 (const char *)sqlite3_column_text(p, 4));

		if (e)
			return e;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int pep_configure(struct sq *q, struct xc_store_req *r)
{
	struct xc_pep_req *pr = r->pep;
	struct xc_pep_cfg want = pr->cfg;
	sqlite3_stmt *p;
	bool found;
	int rc;

	pr->cfg.groups = NULL; /* want's now */
	if (!r->key) {
		r->err = -EINVAL;
		free(want.groups);
		return 0;
	}
	rc = node_get(q, r->user, r->key, &pr->cfg, &found);
	if (!rc && !found)
		r->err = -ENOENT;
	if (rc || !found || !want.set) {
		free(want.groups);
		return rc;
	}
	if (want.set & XC_PEP_SET_GROUPS) {
		free(pr->cfg.groups);
		pr->cfg.groups = want.groups;
		want.groups = NULL;
		if ((rc = groups_put(q, r->user, r->key, pr->cfg.groups)) != 0)
			return rc;
	}
	free(want.groups);
	if (want.set & XC_PEP_SET_ACCESS)
		pr->cfg.access = want.access;
	if (want.set & XC_PEP_SET_PERSIST)
		pr->cfg.persist = want.persist;
	if (want.set & XC_PEP_SET_MAX)
		pr->cfg.max_items = want.max_items;
	p = pprep2(q, P_NODE_SET, r->user, r->key);
	sqlite3_bind_int(p, 3, pr->cfg.access);
	sqlite3_bind_int(p, 4, pr->cfg.persist);
	sqlite3_bind_int64(p, 5, pr->cfg.max_items);
	if ((rc = exec1(p)) != 0)
		return rc;
	p = pprep2(q, P_ITEM_TRIM, r->user, r->key);
	sqlite3_bind_int64(p, 3, node_keeps(&pr->cfg, pr->max_items_cap ? pr->max_items_cap : 1));
	return exec1(p);
}

static int pep_dispatch(struct sq *q, struct xc_store_req *r)
{
	sqlite3_stmt *p;
	bool found;
	int rc;

	if (!r->pep && r->op != XC_STORE_VCARD_GET && r->op != XC_STORE_VCARD_SET &&
	    r->op != XC_STORE_VCARD_HASH) {
		r->err = -EINVAL;
		return 0;
	}
	switch (r->op) {
	case XC_STORE_PEP_PUBLISH:
		return pep_publish(q, r);
	case XC_STORE_PEP_ITEMS:
		return pep_items(q, r);
	case XC_STORE_PEP_RETRACT:
		if (!r->key || !r->pep->item_id) {
			r->err = -EINVAL;
			return 0;
		}
		if ((rc = node_get(q, r->user, r->key, &r->pep->cfg, &found)) != 0)
			return rc;
		p = pprep2(q, P_ITEM_DEL, r->user, r->key);
		bind_text(p, 3, r->pep->item_id);
		rc = exec1(p);
		if (!rc && (!found || sqlite3_changes(q->db) == 0))
			r->err = -ENOENT;
		return rc;
	case XC_STORE_PEP_DELETE:
		if (!r->key) {
			r->err = -EINVAL;
			return 0;
		}
		if ((rc = node_get(q, r->user, r->key, &r->pep->cfg, &found)) != 0)
			return rc;
		if (!found) {
			r->err = -ENOENT;
			return 0;
		}
		rc = exec1(pprep2(q, P_NODE_DEL, r->user, r->key));
		rc = rc ? rc : exec1(pprep2(q, P_GROUPS_DEL, r->user, r->key));
		return rc ? rc : exec1(pprep2(q, P_ITEM_DEL_NODE, r->user, r->key));
	case XC_STORE_PEP_NODES:
		p = pprep2(q, P_NODE_ALL, r->user, NULL);
		while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
			int e = pep_push(r->pep, (const char *)sqlite3_column_text(p, 0), NULL,
			                 NULL, sqlite3_column_int(p, 1),
			                 (const char *)sqlite3_column_text(p, 2));

			if (e)
				return e;
		}
		return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
	case XC_STORE_PEP_LAST:
		return pep_last(q, r);
	case XC_STORE_PEP_CONFIGURE:
		return pep_configure(q, r);
	case XC_STORE_VCARD_GET:
		p = pprep2(q, P_VCARD_GET, r->user, NULL);
		rc = sqlite3_step(p);
		if (rc == SQLITE_ROW) {
			r->found = true;
			r->stanza = col_dup(p, 0);
			return r->stanza ? 0 : -ENOMEM;
		}
		return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
	case XC_STORE_VCARD_SET:
		if (!r->stanza || !r->avatar) {
			r->err = -EINVAL;
			return 0;
		}
		p = pprep2(q, P_VCARD_PUT, r->user, NULL);
		bind_text(p, 2, r->stanza);
		rc = exec1(p);
		if (rc)
			return rc;
		p = pprep2(q, P_PHOTO_PUT, r->user, NULL);
		bind_text(p, 2, r->avatar);
		return exec1(p);
	case XC_STORE_VCARD_HASH:
		if (!r->avatar) {
			r->err = -EINVAL;
			return 0;
		}
		p = pprep2(q, P_PHOTO_ADD, r->user, NULL);
		bind_text(p, 2, r->avatar);
		return exec1(p);
	default:
		break;
	}
	r->err = -EINVAL;
	return 0;
}

/* --- FAST tokens (XEP-0484) ---------------------------------------------------------------------
 *
 * One row per (owner, agent, slot): slot 0 holds the token in use, slot 1 the one issued last and
 * not used yet. The secret is stored as it is: the HT mechanisms key an HMAC with it, so a hash
 * of it would not do; the file's permissions are its protection, as for the rest of the store.
 * Logins are rare next to stanzas: the statements are prepared when used. */

static const char fast_schema[] =
    "CREATE TABLE IF NOT EXISTS fast_tokens ("
    "  owner TEXT NOT NULL, agent TEXT NOT NULL, slot INTEGER NOT NULL, token TEXT NOT NULL,"
    "  mech TEXT NOT NULL, expiry INTEGER NOT NULL, count INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, agent, slot));";

static int fast_open(struct sq *q)
{
	return sq_exec(q, fast_schema);
}

/* Prepare sql_text (not kept). */
static int prepare_once(struct sq *q, const char *sql_text, sqlite3_stmt **p)
{
	int rc = sqlite3_prepare_v2(q->db, sql_text, -1, p, NULL);

	return rc == SQLITE_OK ? 0 : xc_sq_fail(rc);
}

/* Run sql bound to owner, agent (NULL: not bound) and up to two integers. */
static int fast_exec(struct sq *q, const char *sql_text, const char *owner, const char *agent,
                     int64_t a, int64_t b)
{
	sqlite3_stmt *p;
	int rc = prepare_once(q, sql_text, &p);

	if (rc)
		return rc;
	bind_text(p, 1, owner);
	if (agent)
		bind_text(p, 2, agent);
	sqlite3_bind_int64(p, 3, a);
	sqlite3_bind_int64(p, 4, b);
	rc = exec1(p);
	sqlite3_finalize(p);
	return rc;
}

static int fast_revoke(struct sq *q, const char *owner, const char *agent, uint64_t *n)
{
	int rc = fast_exec(q,
	                   agent ? "DELETE FROM fast_tokens WHERE owner = ?1 AND agent = ?2"
	                         : "DELETE FROM fast_tokens WHERE owner = ?1",
	                   owner, agent, 0, 0);

	if (!rc && n)
		*n = (uint64_t)sqlite3_changes(q->db);
	return rc;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *p, int i)
{
	const unsigned char *t = sqlite3_column_text(p, i);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int fast_get(struct sq *q, struct xc_store_req *r)
{
	struct xc_fast_req *f = r->fast;
	sqlite3_stmt *p;
	int rc = prepare_once(q,
	                      "SELECT slot, token, mech, expiry, count FROM fast_tokens "
	                      "WHERE owner = ?1 AND agent = ?2",
	                      &p);

	if (rc)
		return rc;
	bind_text(p, 1, r->user);
	bind_text(p, 2, r->key);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		int slot = sqlite3_column_int(p, 0);
		struct xc_fast_token *t;

		if (slot < 0 || slot >= XC_FAST_NSLOT)
			continue;
		t = &f->slot[slot];
		t->set = true;
		copy_col(t->token, sizeof(t->token), p, 1);
		copy_col(t->mech, sizeof(t->mech), p, 2);
		t->expiry = sqlite3_column_int64(p, 3);
		t->count = (uint32_t)sqlite3_column_int64(p, 4);
	}
	sqlite3_finalize(p);
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int fast_update(struct sq *q, struct xc_store_req *r)
{
	struct xc_fast_req *f = r->fast;
	sqlite3_stmt *p;
	int rc;

	if (f->used >= 0) {
		/* the token is still there and this count is new for it (two logins with one
		 * token may race each other through the shards: the store decides) */
		rc = prepare_once(
		    q,
		    "UPDATE fast_tokens SET count = ?5 WHERE owner = ?1 AND agent = ?2 "
		    "AND slot = ?3 AND token = ?4 AND (?5 = 0 OR count < ?5)",
		    &p);
		if (rc)
			return rc;
		bind_text(p, 1, r->user);
		bind_text(p, 2, r->key);
		sqlite3_bind_int(p, 3, f->used);
		bind_text(p, 4, f->used_token);
		sqlite3_bind_int64(p, 5, f->count);
		rc = exec1(p);
		sqlite3_finalize(p);
		if (rc)
			return rc;
		if (sqlite3_changes(q->db) == 0) {
			r->err = -ESTALE;
			return 0;
		}
		if (f->invalidate) /* the client logs out: none of its tokens stays */
			rc = fast_revoke(q, r->user, r->key, NULL);
		else if (f->used == XC_FAST_NEW)
			/* the new token was used: it becomes current, the older one goes */
			rc =
			    fast_exec(q,
			              "DELETE FROM fast_tokens WHERE owner = ?1 AND agent = ?2 AND "
			              "slot = ?3",
			              r->user, r->key, XC_FAST_CURRENT, 0);
		if (!rc && !f->invalidate && f->used == XC_FAST_NEW)
			rc = fast_exec(q,
			               "UPDATE fast_tokens SET slot = ?3 WHERE owner = ?1 AND "
			               "agent = ?2 AND slot = ?4",
			               r->user, r->key, XC_FAST_CURRENT, XC_FAST_NEW);
		if (rc)
			return rc;
	}
	if (!f->fresh.set)
		return 0;
	/* a token issued and never used is replaced by the fresher one (the XEP's SHOULD) */
	rc = prepare_once(q,
	                  "INSERT OR REPLACE INTO fast_tokens (owner, agent, slot, token, mech, "
	                  "expiry, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
	                  &p);
	if (rc)
		return rc;
	bind_text(p, 1, r->user);
	bind_text(p, 2, r->key);
	sqlite3_bind_int(p, 3, XC_FAST_NEW);
	bind_text(p, 4, f->fresh.token);
	bind_text(p, 5, f->fresh.mech);
	sqlite3_bind_int64(p, 6, f->fresh.expiry);
	rc = exec1(p);
	sqlite3_finalize(p);
	return rc;
}

static int fast_dispatch(struct sq *q, struct xc_store_req *r)
{
	if (r->op == XC_STORE_FAST_REVOKE)
		return fast_revoke(q, r->user, r->key, &r->count);
	if (!r->fast || !r->key) {
		r->err = -EINVAL;
		return 0;
	}
	return r->op == XC_STORE_FAST_GET ? fast_get(q, r) : fast_update(q, r);
}
