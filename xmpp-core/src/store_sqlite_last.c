/* store_sqlite_last.c - last activity (XEP-0012) in the SQLite backend (store_sqlite_int.h):
 * one row per account, when its last available session went and the status it left with. The
 * table is created on open whatever the database's age (IF NOT EXISTS), so it needs no schema
 * version of its own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "store.h"
#include "store_sqlite_int.h"
#include "subscription.h"

static const char schema[] = "CREATE TABLE IF NOT EXISTS last_activity ("
                             "  owner TEXT PRIMARY KEY, stamp INTEGER NOT NULL, status TEXT);";

enum {
	Q_PUT,
	Q_GET,
	Q_SEES,
	Q_DEL,
	Q_N,
};

static const char *const sql[Q_N] = {
    [Q_PUT] = "INSERT OR REPLACE INTO last_activity (owner, stamp, status) VALUES (?1, ?2, ?3)",
    [Q_GET] = "SELECT stamp, status FROM last_activity WHERE owner = ?1",
    [Q_SEES] = XC_SQ_SEES_SQL,
    [Q_DEL] = "DELETE FROM last_activity WHERE owner = ?1",
};

struct xc_sq_last {
	sqlite3_stmt *st[Q_N];
};

static sqlite3_stmt *prep(struct xc_sq_last *l, int s, const char *owner)
{
	sqlite3_stmt *st = l->st[s];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	return st;
}

/* Whether who is sent owner's presence (and not blocked). */
static int sees(struct xc_sq_last *l, const char *owner, const char *who, bool *yes)
{
	sqlite3_stmt *st = prep(l, Q_SEES, owner);
	int rc;

	sqlite3_bind_text(st, 2, who, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*yes = rc == SQLITE_ROW && (sqlite3_column_int(st, 0) == XC_SUB_FROM ||
	                            sqlite3_column_int(st, 0) == XC_SUB_BOTH);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int get(struct xc_sq_last *l, struct xc_store_req *r)
{
	sqlite3_stmt *st;
	int rc = 0;

	r->found = true;
	r->stamp_ms = 0;
	if (r->key && (rc = sees(l, r->user, r->key, &r->found)) != 0)
		return rc;
	if (!r->found)
		return 0; /* nothing said to whom may not know */
	st = prep(l, Q_GET, r->user);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	r->stamp_ms = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    xc_store_req_set(&r->stanza, (const char *)sqlite3_column_text(st, 1)) != 0)
		return -ENOMEM;
	return 0;
}

static int set(struct xc_sq_last *l, const struct xc_store_req *r)
{
	sqlite3_stmt *st = prep(l, Q_PUT, r->user);
	int rc;

	sqlite3_bind_int64(st, 2, r->stamp_ms);
	if (r->stanza)
		sqlite3_bind_text(st, 3, r->stanza, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

int xc_sq_last_open(struct xc_sq_last **out, sqlite3 *db)
{
	struct xc_sq_last *l = calloc(1, sizeof(*l));
	int rc = 0;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	for (int i = 0; i < Q_N && !rc; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i],
		                       NULL) != SQLITE_OK)
			rc = -EIO;
	if (rc) {
		xc_sq_last_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

void xc_sq_last_close(struct xc_sq_last *l)
{
	if (!l)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(l->st[i]);
	free(l);
}

int xc_sq_last_run(struct xc_sq_last *l, struct xc_store_req *r)
{
	switch (r->op) {
	case XC_STORE_LAST_SET:
		return set(l, r);
	case XC_STORE_LAST_GET:
		return get(l, r);
	default:
		r->err = -EINVAL;
		return 0;
	}
}

int xc_sq_last_delete_owned(struct xc_sq_last *l, const char *owner)
{
	int rc = sqlite3_step(prep(l, Q_DEL, owner));

	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}
