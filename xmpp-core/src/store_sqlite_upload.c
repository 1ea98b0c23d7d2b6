/* store_sqlite_upload.c - HTTP File Upload (XEP-0363) slots in the SQLite backend
 * (store_sqlite_int.h): one row per slot handed out, its id, owner, bytes and when. The bytes
 * of an owner's slots of the last 24 hours are its quota's use; the purge takes the slots the
 * quota no longer counts (the files go by their own age, upload_http.c). The rows are not
 * removed when their owner's account is deleted: they count until they are purged. The table is
 * created on open whatever the database's age (IF NOT EXISTS), so it needs no schema version of
 * its own. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "store.h"
#include "store_sqlite_int.h"

#define DAY_MS INT64_C(86400000) /* the quota's window */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS upload_slots ("
    "  slot TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  stamp_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS upload_slots_owner ON upload_slots (owner, stamp_ms);"
    "CREATE INDEX IF NOT EXISTS upload_slots_stamp ON upload_slots (stamp_ms);";

enum {
	Q_USED,
	Q_PUT,
	Q_OLD,
	Q_DEL,
	Q_N,
};

/* Slots of the same millisecond are ordered by id, so that a purge's order is a total one. */
static const char *const sql[Q_N] = {
    [Q_USED] = "SELECT coalesce(sum(bytes), 0), min(stamp_ms) FROM upload_slots "
               "WHERE owner = ?1 AND stamp_ms > ?2",
    [Q_PUT] = "INSERT OR IGNORE INTO upload_slots (slot, owner, bytes, stamp_ms) "
              "VALUES (?1, ?2, ?3, ?4)",
    [Q_OLD] = "SELECT slot FROM upload_slots WHERE stamp_ms < ?1 ORDER BY stamp_ms, slot "
              "LIMIT ?2",
    [Q_DEL] = "DELETE FROM upload_slots WHERE slot = ?1",
};

struct xc_sq_upload {
	sqlite3 *db; /* borrowed */
	sqlite3_stmt *st[Q_N];
};

static sqlite3_stmt *prep(struct xc_sq_upload *u, int s)
{
	sqlite3_stmt *st = u->st[s];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* The bytes of owner's slots handed out after since, and the stamp of the oldest of them
 * (INT64_MIN when there is none). */
static int used(struct xc_sq_upload *u, const char *owner, int64_t since, uint64_t *bytes,
                int64_t *oldest)
{
	sqlite3_stmt *st = prep(u, Q_USED);
	int rc;

	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	*bytes = (uint64_t)sqlite3_column_int64(st, 0);
	*oldest =
	    sqlite3_column_type(st, 1) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(st, 1);
	return 0;
}

/* The slot kept unless the last 24 hours' slots and it would hold more than the quota. A size
 * SQLite cannot hold (past INT64_MAX) is refused as invalid; a quota past it is as good as
 * INT64_MAX, so that the sums of what is kept stay within SQLite's integers. On -EDQUOT
 * without any slot in the window (the slot alone is over the quota), stamp_ms is 0: waiting
 * does not help. */
static int reserve(struct xc_sq_upload *u, struct xc_store_req *r)
{
	uint64_t quota = r->quota > INT64_MAX ? (uint64_t)INT64_MAX : r->quota, sum = 0;
	int64_t oldest = INT64_MIN;
	sqlite3_stmt *st;
	int rc;

	if (!r->key || r->count == 0 || r->count > INT64_MAX) {
		r->err = -EINVAL;
		return 0;
	}
	if ((rc = used(u, r->user, r->stamp_ms - DAY_MS, &sum, &oldest)) != 0)
		return rc;
	/* (sum + count compared without overflowing) */
	if (r->count > quota || sum > quota - r->count) {
		r->err = -EDQUOT;
		r->count = sum;
		r->stamp_ms = oldest == INT64_MIN ? 0 : oldest + DAY_MS;
		return 0;
	}
	st = prep(u, Q_PUT);
	sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->count);
	sqlite3_bind_int64(st, 4, r->stamp_ms);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return xc_sq_fail(rc);
	if (sqlite3_changes(u->db) == 0) {
		r->err = -EEXIST; /* the slot id is taken: the insert was ignored */
		r->count = sum;
		return 0;
	}
	r->count = sum + r->count;
	return 0;
}

/* Append a copy of s (NULL: SQLite ran out of memory) to r->jids. 0 or -ENOMEM. */
static int add_jid(struct xc_store_req *r, const char *s, size_t *cap)
{
	char *c;

	if (!s)
		return -ENOMEM;
	if (r->njids == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		char **nj = realloc(r->jids, ncap * sizeof(*nj));

		if (!nj)
			return -ENOMEM;
		r->jids = nj;
		*cap = ncap;
	}
	if (!(c = strdup(s)))
		return -ENOMEM;
	r->jids[r->njids++] = c;
	return 0;
}

/* The oldest slots before stamp_ms, at most limit of them: their ids read into r->jids first,
 * then their rows deleted one by one (no row is deleted under the running SELECT). */
static int purge(struct xc_sq_upload *u, struct xc_store_req *r)
{
	size_t cap = r->njids, first = r->njids;
	sqlite3_stmt *st;
	int rc;

	if (r->limit == 0) {
		r->err = -EINVAL;
		return 0;
	}
	r->count = 0;
	st = prep(u, Q_OLD);
	sqlite3_bind_int64(st, 1, r->stamp_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int e = add_jid(r, (const char *)sqlite3_column_text(st, 0), &cap);

		if (e)
			return e;
	}
	if (rc != SQLITE_DONE)
		return xc_sq_fail(rc);
	sqlite3_reset(st);
	for (size_t i = first; i < r->njids; i++) {
		st = prep(u, Q_DEL);
		sqlite3_bind_text(st, 1, r->jids[i], -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			return xc_sq_fail(rc);
		r->count += (uint64_t)sqlite3_changes(u->db);
	}
	return 0;
}

int xc_sq_upload_open(struct xc_sq_upload **out, sqlite3 *db)
{
	struct xc_sq_upload *u = calloc(1, sizeof(*u));
	int rc = 0;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->db = db;
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	for (int i = 0; i < Q_N && !rc; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &u->st[i],
		                       NULL) != SQLITE_OK)
			rc = -EIO;
	if (rc) {
		xc_sq_upload_close(u);
		return rc;
	}
	*out = u;
	return 0;
}

void xc_sq_upload_close(struct xc_sq_upload *u)
{
	if (!u)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(u->st[i]);
	free(u);
}

int xc_sq_upload_run(struct xc_sq_upload *u, struct xc_store_req *r)
{
	switch (r->op) {
	case XC_STORE_UPLOAD_RESERVE:
		return reserve(u, r);
	case XC_STORE_UPLOAD_PURGE:
		return purge(u, r);
	default:
		r->err = -EINVAL;
		return 0;
	}
}
