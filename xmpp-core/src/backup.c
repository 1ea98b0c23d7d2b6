/* backup.c - a copy of the store's database while the server runs (backup.h): the name and the
 * directory checked on the main loop, the copy made by the store's backend on libuv's thread
 * pool, the answer, the log line and the metrics back on the main loop. */
#include "backup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "server.h"
#include "store.h"

#define NAME_MAX_LEN 64

struct job {
	uv_work_t work;
	struct xc_server *srv; /* borrowed: the stop waits for the job */
	char *path;            /* owned */
	xc_backup_done done;
	void *arg;
	int rc;
	uint64_t bytes, t0;
	char err[CM_ERR_MAX];
};

int xc_backup_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* The directory of backups: storage.backup_dir, or "backups" beside the database. Owned. */
static char *backup_dir(const struct xc_config *cfg)
{
	const char *db = cfg->storage.path, *slash;
	char *dir = NULL;

	if (cfg->storage.backup_dir && *cfg->storage.backup_dir)
		return strdup(cfg->storage.backup_dir);
	slash = strrchr(db, '/');
	if (asprintf(&dir, "%.*sbackups", slash ? (int)(slash - db + 1) : 0, db) < 0)
		return NULL;
	return dir;
}

static void work(uv_work_t *w)
{
	struct job *j = w->data;

	j->rc = xc_store_backup(j->srv->store, j->path, &j->bytes, j->err, sizeof(j->err));
}

static void after(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct xc_server *srv = j->srv;
	struct xc_backup_result res = {.rc = status ? status : j->rc, .path = j->path};
	uint64_t now = uv_now(cm_daemon_loop(srv->daemon));

	res.err = j->err;
	res.bytes = j->bytes;
	res.ms = now - j->t0;
	if (status)
		snprintf(j->err, sizeof(j->err), "%s", uv_strerror(status));
	if (res.rc == 0) {
		double t = (double)time(NULL);

		cm_metrics_inc(srv->m.backups_ok);
		cm_metrics_gauge_add(srv->m.backup_last, t - srv->backup_last);
		srv->backup_last = t;
		CM_LOGI("store", "backup written: %s (%llu bytes in %llu ms)", j->path,
		        (unsigned long long)j->bytes, (unsigned long long)res.ms);
	} else {
		cm_metrics_inc(srv->m.backups_failed);
		CM_LOGE("store", "backup %s failed: %s", j->path, j->err);
	}
	srv->backup_running = false;
	j->done(j->arg, &res);
	free(j->path);
	free(j);
}

int xc_backup_start(struct xc_server *srv, const char *name, xc_backup_done done, void *arg,
                    char *err, size_t errlen)
{
	char stamp[48], *dir;
	struct job *j;
	time_t now = time(NULL);
	struct tm tm;
	size_t n;
	int rc;

	if (srv->backup_running)
		return cm_errf(err, errlen, -EBUSY, "a backup is under way");
	if (name && !xc_backup_name_ok(name))
		return cm_errf(
		    err, errlen, -EINVAL,
		    "a backup's name is 1 to %d of A-Z a-z 0-9 . _ -, not starting with '.'",
		    NAME_MAX_LEN);
	if (!name) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "xmpp-core-%Y%m%dT%H%M%SZ", &tm);
		name = stamp;
	}
	if (!(dir = backup_dir(srv->cfg)) || !(j = calloc(1, sizeof(*j)))) {
		free(dir);
		return -ENOMEM;
	}
	n = strlen(name);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = cm_errf(err, errlen, -errno, "cannot make the directory of backups %s: %s",
		             dir, strerror(errno));
		free(dir);
		free(j);
		return rc;
	}
	rc = asprintf(&j->path, "%s/%s%s", dir, name,
	              n > 3 && !strcmp(name + n - 3, ".db") ? "" : ".db") < 0
	         ? -ENOMEM
	         : 0;
	free(dir);
	if (rc) {
		free(j);
		return rc;
	}
	j->srv = srv;
	j->done = done;
	j->arg = arg;
	j->t0 = uv_now(cm_daemon_loop(srv->daemon));
	j->work.data = j;
	rc = uv_queue_work(cm_daemon_loop(srv->daemon), &j->work, work, after);
	if (rc) {
		free(j->path);
		free(j);
		return cm_errf(err, errlen, rc, "%s", uv_strerror(rc));
	}
	srv->backup_running = true;
	return 0;
}
