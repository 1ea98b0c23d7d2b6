/* store_sqlite_push.c - push registrations (XEP-0357) in the SQLite backend
 * (store_sqlite_int.h): one row per (owner, app server JID, node), the publish-options form
 * kept as the client gave it. The table is created on open whatever the database's age (IF NOT
 * EXISTS), so it needs no schema version of its own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "store.h"
#include "store_sqlite_int.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS push_regs ("
    "  owner TEXT NOT NULL, jid TEXT NOT NULL, node TEXT NOT NULL, form TEXT,"
    "  created INTEGER NOT NULL, PRIMARY KEY (owner, jid, node));";

enum {
	Q_PUT,
	Q_ALL,
	Q_OLDEST,
	Q_DEL_ONE,
	Q_DEL_JID,
	Q_DEL_ALL,
	Q_COUNT_ALL,
	Q_N,
};

/* rowid orders registrations made in the same millisecond; a replaced one is a new row */
static const char *const sql[Q_N] = {
    [Q_PUT] = "INSERT OR REPLACE INTO push_regs (owner, jid, node, form, created) "
              "VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_ALL] = "SELECT jid, node, form, created FROM push_regs WHERE owner = ?1 "
              "ORDER BY created, rowid",
    [Q_OLDEST] = "DELETE FROM push_regs WHERE rowid IN (SELECT rowid FROM push_regs "
                 "WHERE owner = ?1 ORDER BY created, rowid LIMIT ?2)",
    [Q_DEL_ONE] = "DELETE FROM push_regs WHERE owner = ?1 AND jid = ?2 AND node = ?3",
    [Q_DEL_JID] = "DELETE FROM push_regs WHERE owner = ?1 AND jid = ?2",
    [Q_DEL_ALL] = "DELETE FROM push_regs WHERE owner = ?1",
    [Q_COUNT_ALL] = "SELECT count(*) FROM push_regs",
};

struct xc_sq_push {
	sqlite3 *db; /* borrowed */
	sqlite3_stmt *st[Q_N];
};

static sqlite3_stmt *prep(struct xc_sq_push *p, int s, const char *owner)
{
	sqlite3_stmt *st = p->st[s];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (owner)
		sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	return st;
}

static int exec1(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

/* The owner's registrations into r->push, oldest first. */
static int list(struct xc_sq_push *p, struct xc_store_req *r)
{
	sqlite3_stmt *st = prep(p, Q_ALL, r->user);
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct xc_push_reg *g;

		if (r->npush == cap) {
			size_t ncap = cap ? 2 * cap : 4;
			struct xc_push_reg *v = realloc(r->push, ncap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			r->push = v;
			cap = ncap;
		}
		g = &r->push[r->npush++];
		*g = (struct xc_push_reg){.created_ms = sqlite3_column_int64(st, 3)};
		g->jid = col_dup(st, 0);
		g->node = col_dup(st, 1);
		g->form = col_dup(st, 2);
		if (!g->jid || !g->node || (!g->form && sqlite3_column_type(st, 2) != SQLITE_NULL))
			return -ENOMEM;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int count_owner(struct xc_sq_push *p, const char *owner, uint64_t *n)
{
	sqlite3_stmt *st = prep(p, Q_ALL, owner);
	int rc;

	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		(*n)++;
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int enable(struct xc_sq_push *p, struct xc_store_req *r)
{
	sqlite3_stmt *st;
	uint64_t before, n;
	int rc;

	if (!r->key || !r->with || !r->limit) {
		r->err = -EINVAL;
		return 0;
	}
	if ((rc = count_owner(p, r->user, &before)) != 0)
		return rc;
	st = prep(p, Q_PUT, r->user);
	sqlite3_bind_text(st, 2, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->with, -1, SQLITE_STATIC);
	if (r->stanza)
		sqlite3_bind_text(st, 4, r->stanza, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->stamp_ms);
	if ((rc = exec1(st)) != 0 || (rc = count_owner(p, r->user, &n)) != 0)
		return rc;
	r->found = n == before; /* the same app server and node, replaced */
	r->count = 0;
	if (n > r->limit) {
		/* the newest device is the one being set up now: the oldest make room */
		st = prep(p, Q_OLDEST, r->user);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(n - r->limit));
		if ((rc = exec1(st)) != 0)
			return rc;
		r->count = (uint64_t)sqlite3_changes(p->db);
	}
	return list(p, r);
}

static int disable(struct xc_sq_push *p, struct xc_store_req *r)
{
	sqlite3_stmt *st;
	int rc;

	if (!r->key) {
		r->err = -EINVAL;
		return 0;
	}
	st = prep(p, r->with ? Q_DEL_ONE : Q_DEL_JID, r->user);
	sqlite3_bind_text(st, 2, r->key, -1, SQLITE_STATIC);
	if (r->with)
		sqlite3_bind_text(st, 3, r->with, -1, SQLITE_STATIC);
	if ((rc = exec1(st)) != 0)
		return rc;
	r->count = (uint64_t)sqlite3_changes(p->db);
	return list(p, r);
}

int xc_sq_push_run(struct xc_sq_push *p, struct xc_store_req *r)
{
	sqlite3_stmt *st;
	int rc;

	switch (r->op) {
	case XC_STORE_PUSH_ENABLE:
		return enable(p, r);
	case XC_STORE_PUSH_DISABLE:
		return disable(p, r);
	case XC_STORE_PUSH_LIST:
		return list(p, r);
	case XC_STORE_PUSH_COUNT:
		st = prep(p, Q_COUNT_ALL, NULL);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			return xc_sq_fail(rc);
		r->count = (uint64_t)sqlite3_column_int64(st, 0);
		return 0;
	default:
		r->err = -EINVAL;
		return 0;
	}
}

int xc_sq_push_delete_owned(struct xc_sq_push *p, const char *owner)
{
	return exec1(prep(p, Q_DEL_ALL, owner));
}

void xc_sq_push_close(struct xc_sq_push *p)
{
	if (!p)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(p->st[i]);
	free(p);
}

int xc_sq_push_open(struct xc_sq_push **out, struct sqlite3 *db)
{
	struct xc_sq_push *p = calloc(1, sizeof(*p));
	int rc;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->db = db;
	rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		free(p);
		return xc_sq_fail(rc);
	}
	for (int i = 0; i < Q_N; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &p->st[i],
		                       NULL) != SQLITE_OK) {
			xc_sq_push_close(p);
			return -EIO;
		}
	*out = p;
	return 0;
}
