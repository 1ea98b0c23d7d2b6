/* store_sqlite_private.c - private XML storage (XEP-0049) in the SQLite backend
 * (store_sqlite_int.h): one row per (owner, namespace), the element as XML text. The table is
 * created on open whatever the database's age (IF NOT EXISTS), so it needs no schema version of
 * its own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "store.h"
#include "store_sqlite_int.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS private_xml ("
    "  owner TEXT NOT NULL, ns TEXT NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (owner, ns));";

enum {
	Q_GET,
	Q_PUT,
	Q_DEL,
	Q_HAS,
	Q_COUNT,
	Q_ALL,
	Q_DEL_ALL,
	Q_N,
};

static const char *const sql[Q_N] = {
    [Q_GET] = "SELECT xml FROM private_xml WHERE owner = ?1 AND ns = ?2",
    [Q_PUT] = "INSERT OR REPLACE INTO private_xml (owner, ns, xml) VALUES (?1, ?2, ?3)",
    [Q_DEL] = "DELETE FROM private_xml WHERE owner = ?1 AND ns = ?2",
    [Q_HAS] = "SELECT 1 FROM private_xml WHERE owner = ?1 AND ns = ?2",
    [Q_COUNT] = "SELECT count(*) FROM private_xml WHERE owner = ?1",
    [Q_ALL] = "SELECT ns, xml FROM private_xml WHERE owner = ?1 ORDER BY ns",
    [Q_DEL_ALL] = "DELETE FROM private_xml WHERE owner = ?1",
};

struct xc_sq_private {
	sqlite3 *db; /* borrowed */
	sqlite3_stmt *st[Q_N];
};

/* A statement bound to (owner, ns); ns may be NULL. */
static sqlite3_stmt *prep(struct xc_sq_private *p, int s, const char *owner, const char *ns)
{
	sqlite3_stmt *st = p->st[s];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	if (ns)
		sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
	return st;
}

static int exec1(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int get(struct xc_sq_private *p, struct xc_store_req *r)
{
	for (size_t i = 0; i < r->npriv; i++) {
		sqlite3_stmt *st = prep(p, Q_GET, r->user, r->priv[i].ns);
		int rc = sqlite3_step(st);

		free(r->priv[i].xml);
		r->priv[i].xml = NULL;
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			return xc_sq_fail(rc);
		r->priv[i].xml = strdup((const char *)sqlite3_column_text(st, 0));
		if (!r->priv[i].xml)
			return -ENOMEM;
	}
	return 0;
}

/* Whether owner keeps an element of ns. */
static int has(struct xc_sq_private *p, const char *owner, const char *ns, bool *found)
{
	int rc = sqlite3_step(prep(p, Q_HAS, owner, ns));

	*found = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

static int count(struct xc_sq_private *p, const char *owner, uint64_t *n)
{
	sqlite3_stmt *st = prep(p, Q_COUNT, owner, NULL);
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW)
		return xc_sq_fail(rc);
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

/* Each element written (or removed); then the count checked against r->limit: past it, r->err
 * says so and the request's savepoint undoes the writes. New namespaces are only counted when
 * the request adds one, so an account over a lowered limit may still replace and remove. */
static int set(struct xc_sq_private *p, struct xc_store_req *r)
{
	bool adds = false;
	uint64_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < r->npriv && !rc; i++) {
		const struct xc_private_item *it = &r->priv[i];
		bool found = true;

		if (it->xml && (rc = has(p, r->user, it->ns, &found)) != 0)
			break;
		adds = adds || !found;
		if (it->xml) {
			sqlite3_stmt *st = prep(p, Q_PUT, r->user, it->ns);

			sqlite3_bind_text(st, 3, it->xml, -1, SQLITE_STATIC);
			rc = exec1(st);
		} else {
			rc = exec1(prep(p, Q_DEL, r->user, it->ns));
		}
	}
	if (rc || !adds || r->limit == 0)
		return rc;
	if ((rc = count(p, r->user, &n)) == 0 && n > r->limit)
		r->err = -EDQUOT;
	return rc;
}

int xc_sq_private_open(struct xc_sq_private **out, sqlite3 *db)
{
	struct xc_sq_private *p = calloc(1, sizeof(*p));
	int rc = 0;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->db = db;
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	for (int i = 0; i < Q_N && !rc; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &p->st[i],
		                       NULL) != SQLITE_OK)
			rc = -EIO;
	if (rc) {
		xc_sq_private_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

void xc_sq_private_close(struct xc_sq_private *p)
{
	if (!p)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(p->st[i]);
	free(p);
}

int xc_sq_private_run(struct xc_sq_private *p, struct xc_store_req *r)
{
	switch (r->op) {
	case XC_STORE_PRIVATE_GET:
		return get(p, r);
	case XC_STORE_PRIVATE_SET:
		return set(p, r);
	default:
		r->err = -EINVAL;
		return 0;
	}
}

int xc_sq_private_import(struct xc_sq_private *p, const struct xc_store_req *r)
{
	int rc = 0;

	for (size_t i = 0; i < r->npriv && !rc; i++) {
		sqlite3_stmt *st;

		if (!r->priv[i].xml)
			continue;
		st = prep(p, Q_PUT, r->user, r->priv[i].ns);
		sqlite3_bind_text(st, 3, r->priv[i].xml, -1, SQLITE_STATIC);
		rc = exec1(st);
	}
	return rc;
}

int xc_sq_private_export(struct xc_sq_private *p, struct xc_store_req *r)
{
	sqlite3_stmt *st = prep(p, Q_ALL, r->user, NULL);
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int e = xc_store_req_add_private(r, (const char *)sqlite3_column_text(st, 0),
		                                 (const char *)sqlite3_column_text(st, 1));

		if (e)
			return e;
	}
	return rc == SQLITE_DONE ? 0 : xc_sq_fail(rc);
}

int xc_sq_private_delete_owned(struct xc_sq_private *p, const char *owner)
{
	return exec1(prep(p, Q_DEL_ALL, owner, NULL));
}
