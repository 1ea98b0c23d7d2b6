/* backup.h - a copy of the store's database made while the server runs (POST /api/v1/backup,
 * xmppctl backup): consistent as of one moment, written beside the writes that go on, into a
 * directory of backups (storage.backup_dir, by default "backups" beside the database) under a
 * name of the operator's or one with the time. One backup at a time; none is ever overwritten.
 * Runs on libuv's thread pool; its answer comes back on the main loop. */
#ifndef XC_BACKUP_H
#define XC_BACKUP_H

#include <stddef.h>
#include <stdint.h>

struct xc_server;

/* How a backup went. */
struct xc_backup_result {
	int rc;          /* 0, -EEXIST (the name is taken), or a negative errno */
	const char *err; /* why, when rc is not 0 */
	const char *path;
	uint64_t bytes;
	uint64_t ms; /* how long it took */
};

typedef void (*xc_backup_done)(void *arg, const struct xc_backup_result *res);

/* Whether name can name a backup: 1 to 64 of [A-Za-z0-9._-], not starting with '.'. */
int xc_backup_name_ok(const char *name);

/* Start a backup into name (NULL: "xmpp-core-YYYYMMDDTHHMMSSZ.db"; ".db" is added to a name
 * without it); done(arg, ...) runs on the main loop once it is over. 0; -EBUSY (one is under
 * way), -EINVAL (a name xc_backup_name_ok() refuses), -ENOMEM, or another negative errno (the
 * directory cannot be made: err says why). Main loop only. */
int xc_backup_start(struct xc_server *srv, const char *name, xc_backup_done done, void *arg,
                    char *err, size_t errlen);

#endif
