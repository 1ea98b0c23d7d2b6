/* store_sqlite_archive.c - the message archive (XEP-0313) in the SQLite backend
 * (store_sqlite_int.h). Runs on the store's thread only.
 *
 * Rows. One table, archive, one row per archived copy: its integer key id is handed out by
 * the store before the row is written (xc_sq_arch_ids(): above every id used before, kept in
 * meta as a high-water mark that runs ahead of the ids, so that a purged or crashed id is
 * never handed out again), and the archive id clients see is that number under the database's
 * permutation (archive_id.h): no index is kept up for it. Rows of archives made before carry
 * their random id in sid, found through a partial index that new rows (sid '') stay out of.
 * The table is only ever appended to: a row, stanza included, is written once.
 *
 * Order. A user's archive is ordered by (stamp, id), and each query walks one range of one of
 * two tables of keys beside the rows: archive_ix_time (owner, stamp, id) and, with a peer,
 * archive_ix_with (owner, peer, stamp, id). Both are WITHOUT ROWID tables of integers: owner
 * and peer are numbers given to bare JIDs by archive_jid, so that a key is about 15 bytes, not
 * twice the JIDs, and its compares are integer compares.
 *
 * The fold. The keys are written in batches, not with their row: a row above the fold
 * (id > meta's archive_folded) has no key yet, and a fold (fold()) reads all such rows, numbers
 * their JIDs (through a cache of archive_jid: no index descent per row), sorts their keys and
 * writes them in key order, in one transaction, once FOLD_ROWS rows wait, the oldest has waited
 * FOLD_MS or FOLD_QUERIES queries read them, when the store closes and when it opens (rows a crash
 * left). Written one by one, each row's keys would dirty a leaf page in each table (the users'
 * ranges are all over them) and every commit would write those pages again; folded by
 * thousands and in key order, the keys of one user share their leaves. Until the fold, a query
 * reads the waiting rows too (the second half of a UNION ALL: a range of the table's own key).
 * A row that arrives below the fold (workers hand out ids in one order and their requests may
 * reach the store in another) has its keys written with it. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <uv.h>

#include "archive_id.h"
#include "cm/crypto.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/map.h"
#include "store.h"
#include "store_sqlite_int.h"

/* The meta table is the backend's (store_sqlite.c creates it before this block opens). */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS archive ("
    "  id INTEGER PRIMARY KEY, owner TEXT NOT NULL, sid TEXT NOT NULL DEFAULT '',"
    "  stamp INTEGER NOT NULL, with_bare TEXT NOT NULL, with_res TEXT NOT NULL,"
    "  stanza TEXT NOT NULL);"
    /* ids are row numbers now (archive_id.h): only the older rows' random ids are indexed
     * (databases made before rebuild theirs once) */
    "DROP INDEX IF EXISTS archive_sid;"
    "CREATE UNIQUE INDEX IF NOT EXISTS archive_sid_old ON archive (owner, sid) WHERE sid <> '';"
    /* the purge walks the rows by id (archived in time order): no index on stamp alone */
    "DROP INDEX IF EXISTS archive_age;"
    "CREATE TABLE IF NOT EXISTS archive_jid (id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS archive_ix_time ("
    "  owner INTEGER NOT NULL, stamp INTEGER NOT NULL, id INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, stamp, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS archive_ix_with ("
    "  owner INTEGER NOT NULL, peer INTEGER NOT NULL, stamp INTEGER NOT NULL,"
    "  id INTEGER NOT NULL, PRIMARY KEY (owner, peer, stamp, id)) WITHOUT ROWID;";

/* The indexes of the layouts before (on the rows themselves, text keys; the last one kept
 * them up in batches through a column indexed, which stays, unused): dropped once their rows
 * have their keys (migrate()). */
static const char old_indexes[] = "DROP INDEX IF EXISTS archive_time;"
                                  "DROP INDEX IF EXISTS archive_with;"
                                  "DROP INDEX IF EXISTS archive_by_time;"
                                  "DROP INDEX IF EXISTS archive_by_with;"
                                  "DROP INDEX IF EXISTS archive_unfolded;";

/* A fold waits for this many rows at most, or for the oldest of them to be FOLD_MS old. The
 * fewer folds, the more keys share each leaf page they dirty; the more rows wait, the longer a
 * fold holds the store's thread and the more a query reads beside the keys. */
#define FOLD_ROWS 8192
#define FOLD_MS   5000
/* Queries that read the rows waiting, after which they are folded sooner: each such query
 * reads all of them (about 2 ms for 8,192 rows), so that a storm of queries does not pay it
 * again and again. */
#define FOLD_QUERIES 64

/* Row numbers the high-water mark runs ahead of the ids handed out; it moves again when they
 * come within half of it, in the transaction of the row that comes that close. */
#define ARCH_HW_STEP 65536

/* Rows a fold reads and sorts at once (a fold of more, after a crash or when a database of a
 * layout before gets its keys, takes them in steps of this many). */
#define FOLD_CHUNK 65536

/* JIDs whose numbers the store remembers; beyond, it forgets them all and starts again. */
#define JNO_CACHE_MAX 100000

#define WITH_MAX (3 * 1024 + 3) /* a JID: three parts of at most 1023 bytes and @ and / */

/* A bare JID's number in archive_jid, remembered (committed ones only). */
struct jno {
	struct cm_map_node node;
	int64_t no;
	size_t len;
	char jid[];
};

/* One row's keys, as a fold sorts them. */
struct fkey {
	int64_t owner, peer, stamp, id;
};

enum {
	A_PUT,
	A_POS,
	A_POS_ID,
	A_META_SET,
	A_META_GET,
	A_MAX,
	A_JID_ADD,
	A_JID_GET,
	A_KEY_TIME,
	A_KEY_WITH,
	A_FOLD_ROWS,
	A_DEL_ROWS,
	A_DEL_TIME,
	A_DEL_WITH,
	A_DEL_UNFOLDED,
	A_PURGE_TIME,
	A_PURGE_WITH,
	A_PURGE,
	A_N,
};

/* The rows a purge takes (?1 the cutoff, ?2 how many at most): the same in its three
 * statements, the rows going last. */
#define PURGED                                                                                     \
	"(SELECT id, owner, with_bare, stamp FROM archive WHERE stamp < ?1 ORDER BY id LIMIT ?2)"
/* A user's number (?1 the bare JID). */
#define OWNER_NO "(SELECT id FROM archive_jid WHERE jid = ?1)"

static const char *const sql[A_N] = {
    [A_PUT] = "INSERT OR IGNORE INTO archive (id, owner, sid, stamp, with_bare, with_res, stanza) "
              "VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6)",
    [A_POS] = "SELECT stamp, id FROM archive WHERE owner = ?1 AND sid = ?2 AND sid <> ''",
    [A_POS_ID] = "SELECT stamp FROM archive WHERE id = ?1 AND owner = ?2 AND sid = ''",
    [A_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
    [A_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [A_MAX] = "SELECT max(id) FROM archive",
    [A_JID_ADD] = "INSERT OR IGNORE INTO archive_jid (jid) VALUES (?1)",
    [A_JID_GET] = "SELECT id FROM archive_jid WHERE jid = ?1",
    [A_KEY_TIME] = "INSERT OR IGNORE INTO archive_ix_time VALUES (?1, ?3, ?4)",
    [A_KEY_WITH] = "INSERT OR IGNORE INTO archive_ix_with VALUES (?1, ?2, ?3, ?4)",
    /* the next rows above ?1, up to ?2, FOLD_CHUNK at most */
    [A_FOLD_ROWS] = "SELECT id, owner, with_bare, stamp FROM archive WHERE id > ?1 AND id <= ?2 "
                    "ORDER BY id LIMIT ?3",
    /* a user's whole archive: the rows through their keys, the keys, the rows waiting (?2
     * the fold) */
    [A_DEL_ROWS] = "DELETE FROM archive WHERE id IN "
                   "(SELECT id FROM archive_ix_time WHERE owner = " OWNER_NO ")",
    [A_DEL_TIME] = "DELETE FROM archive_ix_time WHERE owner = " OWNER_NO,
    [A_DEL_WITH] = "DELETE FROM archive_ix_with WHERE owner = " OWNER_NO,
    [A_DEL_UNFOLDED] = "DELETE FROM archive WHERE id > ?2 AND owner = ?1",
    [A_PURGE_TIME] = "DELETE FROM archive_ix_time WHERE (owner, stamp, id) IN "
                     "(SELECT j.id, a.stamp, a.id FROM " PURGED " a "
                     "CROSS JOIN archive_jid j ON j.jid = a.owner)",
    [A_PURGE_WITH] = "DELETE FROM archive_ix_with WHERE (owner, peer, stamp, id) IN "
                     "(SELECT j.id, k.id, a.stamp, a.id FROM " PURGED " a "
                     "CROSS JOIN archive_jid j ON j.jid = a.owner "
                     "CROSS JOIN archive_jid k ON k.jid = a.with_bare)",
    [A_PURGE] = "DELETE FROM archive WHERE id IN (SELECT id FROM " PURGED ")",
};

struct xc_sq_arch {
	sqlite3 *db; /* borrowed */
	sqlite3_stmt *st[A_N];
	uint64_t key[2]; /* the archive ids' (archive_id.h) */
	int64_t hw;      /* the high-water mark of row numbers, as kept in meta */
	int64_t folded;  /* rows up to this id have their keys (meta's archive_folded) */
	/* rows written above the fold since the last one (an upper bound: some may have been
	 * rolled back), and when the first of them was */
	unsigned unfolded;
	uint64_t unfolded_since_ms;
	unsigned unfolded_reads; /* queries that read them */
	uint64_t fold_retry_ms;  /* after a failed fold, no other before then */
	struct cm_map jids;      /* of struct jno */
	struct fkey *keys;       /* a fold's (FOLD_CHUNK), kept between folds */
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static sqlite3_stmt *prep(struct xc_sq_arch *a, int s)
{
	sqlite3_stmt *p = a->st[s];

	sqlite3_reset(p);
	sqlite3_clear_bindings(p);
	return p;
}

static void bind_text(sqlite3_stmt *p, int i, const char *s)
{
	sqlite3_bind_text(p, i, s, -1, SQLITE_STATIC);
}

/* Step a statement that returns no rows. 0 or the database failure. */
static int exec1(sqlite3_stmt *p)
{
	int rc = sqlite3_step(p);

	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

/* Step a statement that returns one integer or none: 0 and *found. */
static int get_int(sqlite3_stmt *p, int64_t *value, bool *found)
{
	int rc = sqlite3_step(p);

	*found = rc == SQLITE_ROW && sqlite3_column_type(p, 0) != SQLITE_NULL;
	if (*found)
		*value = sqlite3_column_int64(p, 0);
	sqlite3_reset(p);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int run_sql(struct xc_sq_arch *a, const char *s)
{
	int rc = sqlite3_exec(a->db, s, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : xc_sq_fail(rc);
}

static int meta_set(struct xc_sq_arch *a, const char *key, int64_t value)
{
	sqlite3_stmt *p = prep(a, A_META_SET);

	bind_text(p, 1, key);
	sqlite3_bind_int64(p, 2, value);
	return exec1(p);
}

static int meta_get(struct xc_sq_arch *a, const char *key, int64_t *value, bool *found)
{
	sqlite3_stmt *p = prep(a, A_META_GET);

	bind_text(p, 1, key);
	return get_int(p, value, found);
}

/* Forget every number remembered. */
static void jids_forget(struct xc_sq_arch *a)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	cm_map_iter_init(&it, &a->jids);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		cm_map_remove(&a->jids, n);
		free(cm_list_entry(n, struct jno, node));
	}
}

/* Remember jid's number (a failure to is no error: the table has it). */
static void jids_remember(struct xc_sq_arch *a, const char *jid, size_t len, uint64_t h, int64_t no)
{
	struct jno *j;

	if (cm_map_count(&a->jids) >= JNO_CACHE_MAX)
		jids_forget(a);
	j = malloc(sizeof(*j) + len + 1);
	if (!j)
		return;
	j->no = no;
	j->len = len;
	memcpy(j->jid, jid, len + 1);
	cm_map_insert(&a->jids, &j->node, h);
}

/* The number of a bare JID: 0 and *no (0 when it has none yet and add is false). What the
 * table says is remembered only when remember: inside the fold's transaction, which forgets
 * them all when it fails (a batch that rolls back would leave a number remembered that the
 * table no longer has, and that the next JID would get). */
static int jid_no(struct xc_sq_arch *a, const char *jid, bool add, bool remember, int64_t *no)
{
	size_t len = strlen(jid);
	uint64_t h = cm_map_hash(&a->jids, jid, len);
	sqlite3_stmt *p;
	bool found;
	int rc;

	for (struct cm_map_node *n = cm_map_first(&a->jids, h); n; n = cm_map_next(n)) {
		struct jno *j = cm_list_entry(n, struct jno, node);

		if (j->len == len && memcmp(j->jid, jid, len) == 0) {
			*no = j->no;
			return 0;
		}
	}
	if (add) {
		p = prep(a, A_JID_ADD);
		bind_text(p, 1, jid);
		if ((rc = exec1(p)) != 0)
			return rc;
	}
	p = prep(a, A_JID_GET);
	bind_text(p, 1, jid);
	rc = get_int(p, no, &found);
	if (!rc && !found)
		*no = 0;
	else if (!rc && remember)
		jids_remember(a, jid, len, h, *no);
	return rc;
}

/* A JID's bare part and resource ("" when none), in buf. */
static int split_with(const char *jid, char *buf, size_t len, const char **bare, const char **res)
{
	char *slash;

	if (!jid || strlen(jid) >= len)
		return -EINVAL;
	strcpy(buf, jid);
	slash = strchr(buf, '/'); /* a bare JID holds no '/': the first one starts the resource */
	*bare = buf;
	*res = "";
	if (slash) {
		*slash = '\0';
		*res = slash + 1;
	}
	return 0;
}

/* --- writing ---------------------------------------------------------------------------------- */

/* The keys of row id (owner's, with peer, at stamp), written at once: it arrived below the
 * fold. */
static int keys_now(struct xc_sq_arch *a, const char *owner, const char *peer, int64_t stamp,
                    int64_t id)
{
	int64_t o, w;
	/* (inside a batch, which may roll back: a new number is not remembered) */
	int rc = jid_no(a, owner, true, false, &o);

	rc = rc ? rc : jid_no(a, peer, true, false, &w);
	for (int s = A_KEY_TIME; s <= A_KEY_WITH && !rc; s++) {
		sqlite3_stmt *p = prep(a, s);

		sqlite3_bind_int64(p, 1, o);
		sqlite3_bind_int64(p, 2, w);
		sqlite3_bind_int64(p, 3, stamp);
		sqlite3_bind_int64(p, 4, id);
		rc = exec1(p);
	}
	return rc;
}

static int archive_put(struct xc_sq_arch *a, struct xc_store_req *r)
{
	char buf[WITH_MAX + 1];
	const char *bare, *res;
	sqlite3_stmt *p;
	uint64_t num;
	int64_t id;
	bool numbered;
	int rc;

	if (!r->key || !r->stanza || split_with(r->with, buf, sizeof(buf), &bare, &res)) {
		r->err = -EINVAL;
		return 0;
	}
	/* an id of ours names its row; any other is kept as it is (what older archives hold) */
	numbered = xc_archive_id_decode(a->key, r->key, &num) == 0 && num > 0 &&
	           num <= (uint64_t)INT64_MAX - ARCH_HW_STEP;
	if (numbered && (int64_t)num > a->hw - ARCH_HW_STEP / 2) {
		if ((rc = meta_set(a, "archive_hw", (int64_t)num + ARCH_HW_STEP)) != 0)
			return rc;
		a->hw = (int64_t)num + ARCH_HW_STEP;
	}
	p = prep(a, A_PUT);
	bind_text(p, 1, r->user);
	bind_text(p, 2, numbered ? "" : r->key);
	if (numbered)
		sqlite3_bind_int64(p, 7, (int64_t)num);
	sqlite3_bind_int64(p, 3, r->stamp_ms);
	bind_text(p, 4, bare);
	bind_text(p, 5, res);
	/* its length when the request knows it: a message need not be read twice */
	sqlite3_bind_text(p, 6, r->stanza,
	                  r->stanza_len && r->stanza_len <= INT_MAX ? (int)r->stanza_len : -1,
	                  SQLITE_STATIC);
	if ((rc = exec1(p)) != 0)
		return rc;
	if (sqlite3_changes(a->db) == 0) {
		r->err = -EEXIST;
		return 0;
	}
	id = sqlite3_last_insert_rowid(a->db);
	if (id <= a->folded)
		return keys_now(a, r->user, bare, r->stamp_ms, id);
	if (a->unfolded++ == 0)
		a->unfolded_since_ms = now_ms();
	return 0;
}

/* The order of the keys of archive_ix_time (peer false) or of archive_ix_with. */
static int key_cmp(const struct fkey *k, const struct fkey *l, bool peer)
{
	if (k->owner != l->owner)
		return k->owner < l->owner ? -1 : 1;
	if (peer && k->peer != l->peer)
		return k->peer < l->peer ? -1 : 1;
	if (k->stamp != l->stamp)
		return k->stamp < l->stamp ? -1 : 1;
	return k->id < l->id ? -1 : k->id > l->id;
}

static int cmp_time(const void *x, const void *y)
{
	return key_cmp(x, y, false);
}

static int cmp_with(const void *x, const void *y)
{
	return key_cmp(x, y, true);
}

/* Write n keys, sorted by cmp, through statement s (A_KEY_TIME or A_KEY_WITH). */
static int keys_write(struct xc_sq_arch *a, size_t n, int s, int (*cmp)(const void *, const void *))
{
	int rc = 0;

	qsort(a->keys, n, sizeof(*a->keys), cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_stmt *p = prep(a, s);

		sqlite3_bind_int64(p, 1, a->keys[i].owner);
		sqlite3_bind_int64(p, 2, a->keys[i].peer);
		sqlite3_bind_int64(p, 3, a->keys[i].stamp);
		sqlite3_bind_int64(p, 4, a->keys[i].id);
		rc = exec1(p);
	}
	return rc;
}

/* The keys of the next rows above *from, up to top, FOLD_CHUNK at most: read, numbered and
 * written. *from moves to the last row read; *n counts them. */
static int fold_chunk(struct xc_sq_arch *a, int64_t *from, int64_t top, size_t *n)
{
	sqlite3_stmt *p = prep(a, A_FOLD_ROWS);
	size_t k = 0;
	int rc = 0, step;

	sqlite3_bind_int64(p, 1, *from);
	sqlite3_bind_int64(p, 2, top);
	sqlite3_bind_int(p, 3, FOLD_CHUNK);
	while (!rc && (step = sqlite3_step(p)) == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(p, 1);
		const char *peer = (const char *)sqlite3_column_text(p, 2);
		struct fkey *f = &a->keys[k];

		if (!owner || !peer) {
			rc = -ENOMEM;
			break;
		}
		f->id = sqlite3_column_int64(p, 0);
		f->stamp = sqlite3_column_int64(p, 3);
		rc = jid_no(a, owner, true, true, &f->owner);
		rc = rc ? rc : jid_no(a, peer, true, true, &f->peer);
		*from = f->id;
		k++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = xc_sq_fail(step);
	sqlite3_reset(p);
	*n = k;
	if (rc || k == 0)
		return rc;
	rc = keys_write(a, k, A_KEY_TIME, cmp_time);
	return rc ? rc : keys_write(a, k, A_KEY_WITH, cmp_with);
}

/* Write the keys of every row above the fold, in a transaction of their own (outside any
 * batch). On failure the rows stay where queries find them, and the next fold takes them. */
static int fold(struct xc_sq_arch *a)
{
	uint64_t t0 = uv_hrtime();
	int64_t top = 0, from = a->folded;
	size_t n = 0, total = 0;
	bool found;
	int rc;

	if (!a->keys && !(a->keys = malloc(FOLD_CHUNK * sizeof(*a->keys))))
		return -ENOMEM;
	rc = run_sql(a, "BEGIN IMMEDIATE");
	rc = rc ? rc : get_int(prep(a, A_MAX), &top, &found);
	if (!rc && found && top > a->folded) {
		do {
			rc = fold_chunk(a, &from, top, &n);
			total += n;
		} while (!rc && n == FOLD_CHUNK);
		rc = rc ? rc : meta_set(a, "archive_folded", top);
	}
	rc = rc ? rc : run_sql(a, "COMMIT");
	if (rc) {
		CM_LOGE(
		    "store",
		    "writing the keys of %u archived messages: %s (they stay where queries find "
		    "them; next try in %d s)",
		    a->unfolded, sqlite3_errmsg(a->db), FOLD_MS / 1000);
		if (!sqlite3_get_autocommit(a->db))
			(void)run_sql(a, "ROLLBACK");
		jids_forget(a); /* numbers given in the transaction are gone with it */
		return rc;
	}
	if (total > 0)
		CM_LOGD("store", "wrote the keys of %zu archived messages in %.1f ms", total,
		        (double)(uv_hrtime() - t0) / 1e6);
	if (found && top > a->folded)
		a->folded = top;
	a->unfolded = 0;
	a->unfolded_reads = 0;
	return 0;
}

static int archive_purge(struct xc_sq_arch *a, struct xc_store_req *r)
{
	int rc = 0;

	for (int s = A_PURGE_TIME; s <= A_PURGE && !rc; s++) {
		sqlite3_stmt *p = prep(a, s);

		sqlite3_bind_int64(p, 1, r->stamp_ms);
		sqlite3_bind_int64(p, 2, r->limit ? r->limit : 1000);
		rc = exec1(p);
	}
	if (!rc)
		r->count = (uint64_t)sqlite3_changes(a->db);
	return rc;
}

int xc_sq_arch_delete_owned(struct xc_sq_arch *a, const char *owner)
{
	int rc = 0;

	for (int s = A_DEL_ROWS; s <= A_DEL_UNFOLDED && !rc; s++) {
		sqlite3_stmt *p = prep(a, s);

		bind_text(p, 1, owner);
		sqlite3_bind_int64(p, 2, a->folded);
		rc = exec1(p);
	}
	return rc;
}

/* --- queries ---------------------------------------------------------------------------------- */

/* Where a message sits in the archive's order. */
struct apos {
	int64_t stamp, id;
};

static int apos_cmp(const struct apos *x, const struct apos *y)
{
	if (x->stamp != y->stamp)
		return x->stamp < y->stamp ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The position of archive id sid of owner: 0 and *found. */
static int archive_pos(struct xc_sq_arch *a, const char *owner, const char *sid, struct apos *at,
                       bool *found)
{
	sqlite3_stmt *p;
	uint64_t num;
	int rc;

	if (xc_archive_id_decode(a->key, sid, &num) == 0 && num <= INT64_MAX) {
		p = prep(a, A_POS_ID);
		sqlite3_bind_int64(p, 1, (int64_t)num);
		bind_text(p, 2, owner);
		rc = get_int(p, &at->stamp, found);
		if (rc || *found) {
			at->id = (int64_t)num;
			return rc;
		}
	}
	/* an id of an older archive */
	p = prep(a, A_POS);
	bind_text(p, 1, owner);
	bind_text(p, 2, sid);
	rc = sqlite3_step(p);
	*found = rc == SQLITE_ROW;
	if (*found) {
		at->stamp = sqlite3_column_int64(p, 0);
		at->id = sqlite3_column_int64(p, 1);
	}
	sqlite3_reset(p);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

/* Narrow the exclusive bound *b (set: *has) by the message sid: above it (lower bound, the
 * greater wins) or below it (upper bound, the smaller wins). -ENOENT in r->err when sid is not
 * in the archive. */
static int narrow(struct xc_sq_arch *a, struct xc_store_req *r, const char *sid, bool lower,
                  struct apos *b, bool *has)
{
	struct apos at;
	bool found;
	int rc;

	if (!sid)
		return 0;
	rc = archive_pos(a, r->user, sid, &at, &found);
	if (rc)
		return rc;
	if (!found) {
		r->err = -ENOENT;
		return 0;
	}
	if (!*has || (lower ? apos_cmp(&at, b) > 0 : apos_cmp(&at, b) < 0))
		*b = at;
	*has = true;
	return 0;
}

/* Parameters of the archive's queries, by number. */
enum {
	QP_OWNER = 1,
	QP_WITH_BARE,
	QP_WITH_RES,
	QP_OWNER_NO,
	QP_PEER_NO,
	QP_FOLDED,
	QP_START,
	QP_END,
	QP_LO_STAMP,
	QP_LO_ID,
	QP_HI_STAMP,
	QP_HI_ID,
	QP_LIMIT,
	QP_IDS, /* and on */
};

#define IDS_MAX 1000 /* ids one query may name (the module caps them at its page size) */
/* Rows a query counts at most: counting is linear in the rows, and the store's thread is every
 * shard's. Beyond, the count is left out (XEP-0059 makes it optional). */
#define COUNT_MAX 10000
/* The longest WHERE clause: the filters and every id twice. */
#define CLAUSE_MAX (640 + 32 * IDS_MAX)

/* One query's shape. */
struct qshape {
	const struct xc_archive_query *aq;
	const char *bare, *res;     /* the peer's parts (res "" for a bare JID); borrowed */
	int64_t owner_no, peer_no;  /* their numbers in archive_jid (0: none yet) */
	const struct apos *lo, *hi; /* exclusive bounds; NULL: none */
	bool keyed; /* the rows with keys (x, joined to their rows a), else those waiting */
};

static int put_text(char *buf, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int put_text(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= len - *n)
		return -ENOBUFS;
	*n += (size_t)k;
	return 0;
}

/* The WHERE clause of one half of a query into buf. The lower and upper bounds are exclusive
 * positions: their stamps are folded into the one range on stamp (bind_query()), so that the
 * key range starts and ends there, and their ids settle the ties. With keys, stamp and id are
 * the keys' (x), everything else the row's (a). */
static int where(char *buf, size_t len, const struct qshape *s)
{
	const struct xc_archive_query *aq = s->aq;
	const char *t = s->keyed ? "x." : "a.";
	size_t n = 0;
	int rc;

	if (s->keyed && aq->with)
		rc = put_text(buf, len, &n, "x.owner = ?%d AND x.peer = ?%d", QP_OWNER_NO,
		              QP_PEER_NO);
	else if (s->keyed)
		rc = put_text(buf, len, &n, "x.owner = ?%d", QP_OWNER_NO);
	else
		rc = put_text(buf, len, &n, "a.id > ?%d AND a.owner = ?%d%s", QP_FOLDED, QP_OWNER,
		              aq->with ? " AND a.with_bare = ?2" : "");
	rc = rc ? rc
	        : put_text(buf, len, &n, "%s AND %sstamp >= ?%d AND %sstamp <= ?%d",
	                   *s->res ? " AND a.with_res = ?3" : "", t, QP_START, t, QP_END);
	if (!rc && s->lo)
		rc = put_text(buf, len, &n, " AND (%sstamp > ?%d OR %sid > ?%d)", t, QP_LO_STAMP, t,
		              QP_LO_ID);
	if (!rc && s->hi)
		rc = put_text(buf, len, &n, " AND (%sstamp < ?%d OR %sid < ?%d)", t, QP_HI_STAMP, t,
		              QP_HI_ID);
	/* each id twice: as a row number (NULL when it is not one of ours), and as an older id */
	for (int older = 0; older < 2 && aq->nids && !rc; older++)
		for (size_t i = 0; i < aq->nids && !rc; i++)
			rc = put_text(buf, len, &n, "%s%s?%zu",
			              i       ? ", "
			              : older ? ")) OR (a.sid <> '' AND a.sid IN ("
			                      : " AND ((a.sid = '' AND ",
			              i || older ? ""
			              : s->keyed ? "x.id IN ("
			                         : "a.id IN (",
			              (size_t)QP_IDS + 2 * i + (size_t)older);
	if (!rc && aq->nids)
		rc = put_text(buf, len, &n, ")))");
	return rc;
}

/* The FROM of a half: the keys, joined to their rows when join, or the rows waiting. */
static const char *from(const struct qshape *s, bool join)
{
	if (!s->keyed)
		return "archive a";
	if (s->aq->with)
		return join ? "archive_ix_with x CROSS JOIN archive a ON a.id = x.id"
		            : "archive_ix_with x";
	return join ? "archive_ix_time x CROSS JOIN archive a ON a.id = x.id" : "archive_ix_time x";
}

static void bind_query(const struct xc_sq_arch *a, sqlite3_stmt *p, const struct xc_store_req *r,
                       const struct qshape *s)
{
	const struct xc_archive_query *aq = r->query;
	const struct apos *lo = s->lo, *hi = s->hi;

	bind_text(p, QP_OWNER, r->user);
	sqlite3_bind_int64(p, QP_OWNER_NO, s->owner_no);
	sqlite3_bind_int64(p, QP_FOLDED, a->folded);
	if (aq->with) {
		bind_text(p, QP_WITH_BARE, s->bare);
		sqlite3_bind_int64(p, QP_PEER_NO, s->peer_no);
		if (*s->res)
			bind_text(p, QP_WITH_RES, s->res);
	}
	sqlite3_bind_int64(p, QP_START, lo && lo->stamp > aq->start_ms ? lo->stamp : aq->start_ms);
	sqlite3_bind_int64(p, QP_END, hi && hi->stamp < aq->end_ms ? hi->stamp : aq->end_ms);
	if (lo) {
		sqlite3_bind_int64(p, QP_LO_STAMP, lo->stamp);
		sqlite3_bind_int64(p, QP_LO_ID, lo->id);
	}
	if (hi) {
		sqlite3_bind_int64(p, QP_HI_STAMP, hi->stamp);
		sqlite3_bind_int64(p, QP_HI_ID, hi->id);
	}
	for (size_t i = 0; i < aq->nids; i++) {
		uint64_t num;

		if (xc_archive_id_decode(a->key, aq->ids[i], &num) == 0 && num <= INT64_MAX)
			sqlite3_bind_int64(p, QP_IDS + 2 * (int)i, (int64_t)num);
		else
			sqlite3_bind_null(p, QP_IDS + 2 * (int)i);
		bind_text(p, QP_IDS + 2 * (int)i + 1, aq->ids[i]);
	}
}

/* The text of a count (page false) or of a page into buf: the rows with keys, and when some
 * wait for the fold, theirs beside. */
static int query_text(struct xc_sq_arch *a, char *buf, size_t len, struct qshape *s, bool page)
{
	const char *dir = s->aq->backward ? "DESC" : "ASC";
	char keyed[CLAUSE_MAX], waiting[CLAUSE_MAX];
	/* a count reads the rows only when a filter needs them */
	bool join = page || *s->res || s->aq->nids;
	bool both = a->unfolded != 0;
	size_t n = 0;
	int rc;

	s->keyed = true;
	rc = where(keyed, sizeof(keyed), s);
	s->keyed = false;
	rc = rc || !both ? rc : where(waiting, sizeof(waiting), s);
	s->keyed = true;
	if (rc)
		return rc;
	if (!page) {
		rc = put_text(buf, len, &n, "SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s",
		              from(s, join), keyed);
		if (!rc && both)
			rc = put_text(buf, len, &n, " UNION ALL SELECT 1 FROM archive a WHERE %s",
			              waiting);
		return rc ? rc : put_text(buf, len, &n, " LIMIT %d)", COUNT_MAX + 1);
	}
	rc = put_text(buf, len, &n,
	              "SELECT a.sid AS sid, x.id AS id, x.stamp AS stamp, a.stanza AS stanza "
	              "FROM %s WHERE %s",
	              from(s, true), keyed);
	if (!rc && both)
		rc = put_text(buf, len, &n,
		              " UNION ALL SELECT a.sid, a.id, a.stamp, a.stanza FROM archive a "
		              "WHERE %s",
		              waiting);
	return rc ? rc
	          : put_text(buf, len, &n, " ORDER BY stamp %s, id %s LIMIT ?%d", dir, dir,
	                     QP_LIMIT);
}

/* Prepare sql (not kept: a query's shape varies with its filters). */
static int prepare_once(struct xc_sq_arch *a, const char *text, sqlite3_stmt **p)
{
	int rc = sqlite3_prepare_v2(a->db, text, -1, p, NULL);

	return rc == SQLITE_OK ? 0 : xc_sq_fail(rc);
}

/* A count (page false) or a page of the query r asks, in the shape s, prepared and bound. */
static int query_prepare(struct xc_sq_arch *a, const struct xc_store_req *r, struct qshape *s,
                         bool page, sqlite3_stmt **p)
{
	char text[2 * CLAUSE_MAX + 512];
	int rc = query_text(a, text, sizeof(text), s, page);

	rc = rc ? rc : prepare_once(a, text, p);
	if (!rc)
		bind_query(a, *p, r, s);
	return rc;
}

/* Reverse the page (a backward page is read newest first). */
static void arch_reverse(struct xc_store_req *r)
{
	for (size_t i = 0; i < r->narch / 2; i++) {
		struct xc_archive_item t = r->arch[i];

		r->arch[i] = r->arch[r->narch - 1 - i];
		r->arch[r->narch - 1 - i] = t;
	}
}

/* Read the page p selects into r->arch (aq->max at most; one more says it is not the last). */
static int read_page(struct xc_sq_arch *a, sqlite3_stmt *p, struct xc_store_req *r)
{
	const struct xc_archive_query *aq = r->query;
	int rc;

	r->arch = calloc(aq->max, sizeof(*r->arch));
	if (!r->arch)
		return -ENOMEM;
	r->complete = true;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		struct xc_archive_item *it;
		const unsigned char *t;

		if (r->narch == aq->max) {
			r->complete = false;
			continue;
		}
		it = &r->arch[r->narch++];
		if (sqlite3_column_bytes(p, 0) > 0) {
			t = sqlite3_column_text(p, 0); /* an older archive's id */
			it->id = t ? strdup((const char *)t) : NULL;
		} else if ((it->id = malloc(XC_ARCHIVE_ID_LEN + 1)) != NULL) {
			xc_archive_id_encode(a->key, (uint64_t)sqlite3_column_int64(p, 1), it->id);
		}
		it->stamp_ms = sqlite3_column_int64(p, 2);
		t = sqlite3_column_text(p, 3);
		it->stanza = t ? strdup((const char *)t) : NULL;
		if (!it->id || !it->stanza)
			return -ENOMEM;
	}
	if (rc != SQLITE_DONE)
		return xc_sq_fail(rc);
	if (aq->backward)
		arch_reverse(r);
	return 0;
}

static int archive_query(struct xc_sq_arch *a, struct xc_store_req *r)
{
	const struct xc_archive_query *aq = r->query;
	char withbuf[WITH_MAX + 1];
	struct apos lo = {0, 0}, hi = {0, 0}, plo, phi;
	bool has_lo = false, has_hi = false, has_plo, has_phi;
	struct qshape s = {.aq = aq, .bare = "", .res = ""};
	sqlite3_stmt *p = NULL;
	int rc;

	if (!aq || aq->nids > IDS_MAX ||
	    (aq->with && split_with(aq->with, withbuf, sizeof(withbuf), &s.bare, &s.res))) {
		r->err = -EINVAL;
		return 0;
	}
	rc = jid_no(a, r->user, false, false, &s.owner_no);
	rc = rc || !aq->with ? rc : jid_no(a, s.bare, false, false, &s.peer_no);
	/* the filters' bounds (they count), then the page's (RSM: they do not) */
	rc = rc ? rc : narrow(a, r, aq->after_id, true, &lo, &has_lo);
	rc = rc ? rc : narrow(a, r, aq->before_id, false, &hi, &has_hi);
	plo = lo;
	phi = hi;
	has_plo = has_lo;
	has_phi = has_hi;
	rc = rc ? rc : narrow(a, r, aq->rsm_after, true, &plo, &has_plo);
	rc = rc ? rc : narrow(a, r, aq->rsm_before, false, &phi, &has_phi);
	if (rc || r->err)
		return rc;
	if (a->unfolded)
		a->unfolded_reads++;
	/* the count of the whole result set */
	s.lo = has_lo ? &lo : NULL;
	s.hi = has_hi ? &hi : NULL;
	if ((rc = query_prepare(a, r, &s, false, &p)) != 0)
		return rc;
	rc = sqlite3_step(p);
	if (rc == SQLITE_ROW) {
		r->count = (uint64_t)sqlite3_column_int64(p, 0);
		r->found = r->count <= COUNT_MAX;
	}
	sqlite3_finalize(p);
	p = NULL;
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	if (aq->max == 0) {
		r->complete = r->count == 0;
		return 0;
	}
	/* the page, and one more to know whether it is the last */
	s.lo = has_plo ? &plo : NULL;
	s.hi = has_phi ? &phi : NULL;
	if ((rc = query_prepare(a, r, &s, true, &p)) != 0)
		return rc;
	sqlite3_bind_int64(p, QP_LIMIT, (int64_t)aq->max + 1);
	rc = read_page(a, p, r);
	sqlite3_finalize(p);
	return rc;
}

/* --- the block -------------------------------------------------------------------------------- */

int xc_sq_arch_run(struct xc_sq_arch *a, struct xc_store_req *r)
{
	switch (r->op) {
	case XC_STORE_ARCHIVE_PUT:
		return archive_put(a, r);
	case XC_STORE_ARCHIVE_QUERY:
		return archive_query(a, r);
	case XC_STORE_ARCHIVE_PURGE:
		return archive_purge(a, r);
	default:
		r->err = -EINVAL;
		return 0;
	}
}

unsigned xc_sq_arch_maintain(struct xc_sq_arch *a, bool *committed)
{
	uint64_t now = now_ms(), at;

	*committed = false;
	/* (after a failed fold, none before fold_retry_ms: a broken disk gets one line per try) */
	if (a->unfolded && now >= a->fold_retry_ms &&
	    (a->unfolded >= FOLD_ROWS || now - a->unfolded_since_ms >= FOLD_MS ||
	     a->unfolded_reads >= FOLD_QUERIES)) {
		if (fold(a) != 0)
			a->fold_retry_ms = now + FOLD_MS;
		else
			*committed = true;
	}
	if (!a->unfolded)
		return 0;
	now = now_ms();
	at = a->unfolded_since_ms + FOLD_MS;
	at = at > a->fold_retry_ms ? at : a->fold_retry_ms;
	return at > now ? (unsigned)(at - now) : 1;
}

/* Databases of the layouts before: their rows get their keys (the fold from nothing), their
 * indexes go. */
static int migrate(struct xc_sq_arch *a)
{
	uint64_t t0 = uv_hrtime();
	int64_t rows = 0;
	bool found;
	int rc;

	rc = get_int(prep(a, A_MAX), &rows, &found);
	rc = rc ? rc : run_sql(a, "BEGIN IMMEDIATE");
	rc = rc ? rc : run_sql(a, old_indexes);
	rc = rc ? rc : meta_set(a, "archive_folded", 0);
	rc = rc ? rc : run_sql(a, "COMMIT");
	if (rc)
		return rc;
	a->folded = 0;
	if (!found)
		return 0;
	CM_LOGI("store", "the archive moves to its new keys (rows up to %lld): once",
	        (long long)rows);
	rc = fold(a);
	if (!rc)
		CM_LOGI("store", "the archive has its new keys (%.1f s)",
		        (double)(uv_hrtime() - t0) / 1e9);
	return rc;
}

int xc_sq_arch_open(struct xc_sq_arch **out, sqlite3 *db)
{
	struct xc_sq_arch *a = calloc(1, sizeof(*a));
	bool found;
	int rc;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->db = db;
	if (cm_map_init(&a->jids, 1024) != 0) {
		free(a);
		return -ENOMEM;
	}
	rc = run_sql(a, schema);
	for (int i = 0; i < A_N && !rc; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &a->st[i],
		                       NULL) != SQLITE_OK)
			rc = -EIO;
	rc = rc ? rc : meta_get(a, "archive_folded", &a->folded, &found);
	if (!rc && !found)
		rc = migrate(a);
	else if (!rc)
		rc = fold(a); /* the rows a crash left above the fold */
	if (rc) {
		xc_sq_arch_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

void xc_sq_arch_close(struct xc_sq_arch *a)
{
	if (!a)
		return;
	if (a->unfolded)
		(void)fold(a);
	for (int i = 0; i < A_N; i++)
		sqlite3_finalize(a->st[i]);
	jids_forget(a);
	cm_map_close(&a->jids);
	free(a->keys);
	free(a);
}

/* The archive's numbering: the key of its ids, drawn once per database, and the next row
 * number, above every row and above the high-water mark, which moves on at once. */
int xc_sq_arch_ids(struct xc_sq_arch *a, uint64_t *next, uint64_t key[2])
{
	int64_t v[2], hw = 0, max = 0;
	bool found[2], hw_found, max_found;
	int rc;

	rc = meta_get(a, "archive_key0", &v[0], &found[0]);
	rc = rc ? rc : meta_get(a, "archive_key1", &v[1], &found[1]);
	if (rc)
		return rc;
	if (!found[0] || !found[1]) {
		if (cm_crypto_random(v, sizeof(v)) != 0)
			return -EIO;
		rc = meta_set(a, "archive_key0", v[0]);
		rc = rc ? rc : meta_set(a, "archive_key1", v[1]);
		if (rc)
			return rc;
	}
	a->key[0] = key[0] = (uint64_t)v[0];
	a->key[1] = key[1] = (uint64_t)v[1];
	rc = meta_get(a, "archive_hw", &hw, &hw_found);
	rc = rc ? rc : get_int(prep(a, A_MAX), &max, &max_found);
	if (rc)
		return rc;
	*next = (uint64_t)(max > hw ? max : hw) + 1;
	a->hw = (int64_t)*next + ARCH_HW_STEP;
	return meta_set(a, "archive_hw", a->hw);
}
