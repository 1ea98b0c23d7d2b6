/* store_sqlite_int.h - what the SQLite backend (store_sqlite.c) shares with its block of push
 * registrations (store_sqlite_push.c). Runs on the store's thread only. */
#ifndef XC_STORE_SQLITE_INT_H
#define XC_STORE_SQLITE_INT_H

struct sqlite3;
struct xc_store_req;
struct xc_sq_push;

/* A result code of SQLite as a negative errno: the database failed (store_sqlite.c). */
int xc_sq_fail(int rc);

/* Create the table on db (borrowed; kept until xc_sq_push_close) and prepare the statements.
 * 0 or a negative errno (sqlite3_errmsg(db) says why). */
int xc_sq_push_open(struct xc_sq_push **out, struct sqlite3 *db);
void xc_sq_push_close(struct xc_sq_push *p); /* accepts NULL */

/* Run a XC_STORE_PUSH_* request: r->err and its results are set; the return is nonzero only
 * when the database itself failed. */
int xc_sq_push_run(struct xc_sq_push *p, struct xc_store_req *r);

/* Remove every registration of owner (its account is deleted). 0 or the database failure. */
int xc_sq_push_delete_owned(struct xc_sq_push *p, const char *owner);

#endif
