/* store_sqlite_int.h - what the SQLite backend (store_sqlite.c) shares with its blocks: push
 * registrations (store_sqlite_push.c), private XML (store_sqlite_private.c), last activity
 * (store_sqlite_last.c), HTTP File Upload slots (store_sqlite_upload.c) and the message archive
 * (store_sqlite_archive.c). Runs on the store's thread only. */
#ifndef XC_STORE_SQLITE_INT_H
#define XC_STORE_SQLITE_INT_H

#include <stdbool.h>
#include <stdint.h>

struct sqlite3;
struct xc_store_req;
struct xc_sq_push;
struct xc_sq_arch;
struct xc_sq_private;
struct xc_sq_last;
struct xc_sq_upload;

/* The roster row of contact (?2) in owner's (?1) roster unless owner blocks the contact's bare
 * JID: its subscription (0) and groups (1). Whom the owner's presence reaches. */
#define XC_SQ_SEES_SQL                                                                             \
	"SELECT sub, groups FROM roster WHERE owner = ?1 AND contact = ?2 AND NOT EXISTS "         \
	"(SELECT 1 FROM blocklist WHERE owner = ?1 AND jid = ?2)"

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

/* Create the private XML table on db (borrowed; kept until xc_sq_private_close) and prepare
 * the statements. 0 or a negative errno (sqlite3_errmsg(db) says why). */
int xc_sq_private_open(struct xc_sq_private **out, struct sqlite3 *db);
void xc_sq_private_close(struct xc_sq_private *p); /* accepts NULL */

/* Run a XC_STORE_PRIVATE_GET or _SET request: r->err and its results are set; the return is
 * nonzero only when the database itself failed. */
int xc_sq_private_run(struct xc_sq_private *p, struct xc_store_req *r);

/* ACCOUNT_IMPORT's private XML (r->priv) written for r->user; ACCOUNT_EXPORT's read into
 * r->priv, by namespace. 0 or the database failure (-ENOMEM when reading ran out). */
int xc_sq_private_import(struct xc_sq_private *p, const struct xc_store_req *r);
int xc_sq_private_export(struct xc_sq_private *p, struct xc_store_req *r);

/* Remove every element of owner (its account is deleted). 0 or the database failure. */
int xc_sq_private_delete_owned(struct xc_sq_private *p, const char *owner);

/* Create the last activity table on db (borrowed; kept until xc_sq_last_close) and prepare
 * the statements. 0 or a negative errno (sqlite3_errmsg(db) says why). */
int xc_sq_last_open(struct xc_sq_last **out, struct sqlite3 *db);
void xc_sq_last_close(struct xc_sq_last *l); /* accepts NULL */

/* Run a XC_STORE_LAST_SET or _GET request: r->err and its results are set; the return is
 * nonzero only when the database itself failed. */
int xc_sq_last_run(struct xc_sq_last *l, struct xc_store_req *r);

/* Forget owner's last activity (its account is deleted). 0 or the database failure. */
int xc_sq_last_delete_owned(struct xc_sq_last *l, const char *owner);

/* Create the upload slots' table on db (borrowed; kept until xc_sq_upload_close) and prepare
 * the statements. 0 or a negative errno (sqlite3_errmsg(db) says why). */
int xc_sq_upload_open(struct xc_sq_upload **out, struct sqlite3 *db);
void xc_sq_upload_close(struct xc_sq_upload *u); /* accepts NULL */

/* Run a XC_STORE_UPLOAD_RESERVE or _PURGE request (_PURGE has no user): r->err and its results
 * are set; the return is nonzero only when the database itself failed. A deleted account's
 * slots stay until purged (their files live until they expire): there is no delete_owned. */
int xc_sq_upload_run(struct xc_sq_upload *u, struct xc_store_req *r);

/* The archive's tables on db (borrowed; kept until xc_sq_arch_close; its meta table exists):
 * created, moved from the layouts before, and the keys a crash left unwritten written. 0 or a
 * negative errno (sqlite3_errmsg(db) says why). */
int xc_sq_arch_open(struct xc_sq_arch **out, struct sqlite3 *db);
/* Writes the keys still waiting, then frees a. Accepts NULL. */
void xc_sq_arch_close(struct xc_sq_arch *a);

/* Run a XC_STORE_ARCHIVE_PUT, _QUERY or _PURGE request, inside the batch's transaction: r->err
 * and its results are set; the return is nonzero only when the database itself failed. */
int xc_sq_arch_run(struct xc_sq_arch *a, struct xc_store_req *r);

/* Remove owner's whole archive (its account is deleted). 0 or the database failure. */
int xc_sq_arch_delete_owned(struct xc_sq_arch *a, const char *owner);

/* Outside any transaction: the fold, when it is due (*committed: it committed a transaction).
 * Returns the ms after which it is due again, 0 when nothing waits. */
unsigned xc_sq_arch_maintain(struct xc_sq_arch *a, bool *committed);

/* The next archive row number to hand out and the key of the archive's ids (the backend's
 * archive_ids). */
int xc_sq_arch_ids(struct xc_sq_arch *a, uint64_t *next, uint64_t key[2]);

#endif
