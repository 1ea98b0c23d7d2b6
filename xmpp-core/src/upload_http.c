/* upload_http.c - the files' side of HTTP File Upload (upload.h): an HTTPS listener on the main
 * loop that takes one PUT per slot (checked from its head, before its body is read) and serves
 * GET and HEAD, the jobs that write, read and sweep the files on libuv's thread pool (the files
 * themselves: upload_files.c), their expiry, and the service's metrics. */
#include "upload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/cfg.h"
#include "cm/crypto.h"
#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/http.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/tls.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "upload_int.h"
#include "xc.h"

#define SWEEP_MS    3600000  /* how often expired files are looked for */
#define SWEEP_BATCH 1000     /* slot rows one purge request removes at most */
#define DAY_MS      86400000 /* slot rows are kept this long at least: the quota counts them */
#define PART_MS     3600000  /* a file still being written is older than this only after a crash */
#define IDLE_MS     300000   /* a phone on a slow link may take this long to send a file */
#define OCTETS      "application/octet-stream"

struct xc_upload {
	struct xc_server *srv; /* borrowed */
	struct cm_daemon *d;   /* borrowed */
	struct cm_loop *loop;  /* borrowed: the main loop */
	const struct xc_upload_config *cfg;
	struct cm_tls *tls;           /* owned */
	struct cm_http_server **http; /* owned: one per listen address */
	size_t nhttp, open_http;
	char *dir; /* owned */
	struct upload_metrics m;
	uv_timer_t sweep;
	bool timer_open;
	unsigned pending; /* file jobs and store requests on their way */
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
};

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_ok, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_too_large, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "too_large"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_quota, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "quota"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_bad, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "bad_request"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_refused, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "refused"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, slot_disk_full, "xmpp_upload_slots_total",
                          "Upload slots asked for (XEP-0363), by result.", "result", "disk_full"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_ok, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_bad_sig, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "bad_signature"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_expired, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "expired"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_mismatch, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "bad_url"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_exists, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "exists"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, put_failed, "xmpp_upload_puts_total",
                          "Files put to upload slots, by result.", "result", "failed"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, get_ok, "xmpp_upload_gets_total",
                          "Uploaded files fetched (GET and HEAD), by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, get_missing, "xmpp_upload_gets_total",
                          "Uploaded files fetched (GET and HEAD), by result.", "result",
                          "not_found"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, bytes_in, "xmpp_upload_bytes_total",
                          "Bytes of uploaded files, by direction.", "direction", "in"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, bytes_out, "xmpp_upload_bytes_total",
                          "Bytes of uploaded files, by direction.", "direction", "out"),
    CM_METRIC_COUNTER_DEF(struct upload_metrics, expired, "xmpp_upload_expired_total",
                          "Uploaded files removed upload.expire_after after they were written.",
                          NULL),
};

struct upload_metrics *xc_upload__metrics(const struct xc_server *srv)
{
	return srv->upload ? &srv->upload->m : NULL;
}

const char *xc_upload__dir(const struct xc_server *srv)
{
	return srv->upload ? srv->upload->dir : NULL;
}

/* Every answer says: no sniffing, nothing active, fetchable from web clients' pages. */
static const struct cm_http_header common_headers[] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Content-Security-Policy", "default-src 'none'; sandbox"},
    {"Access-Control-Allow-Origin", "*"},
    {"Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS"},
    {"Access-Control-Allow-Headers", "Content-Type"},
};
#define NCOMMON (sizeof(common_headers) / sizeof(common_headers[0]))

static void respond(struct cm_http_req *req, int status, const char *text)
{
	(void)cm_http_respond_headers(req, status, NULL, common_headers, NCOMMON, text,
	                              text ? strlen(text) : 0);
}

/* --- jobs on the thread pool -------------------------------------------------------------------
 */

enum job_kind { JOB_PUT, JOB_GET, JOB_SCAN, JOB_REMOVE };

struct job {
	uv_work_t work;
	struct xc_upload *u;
	enum job_kind kind;
	struct cm_http_req *req; /* owned until answered (PUT, GET) */
	char slot[XC_UPLOAD_SLOT_LEN + 1];
	char *name;             /* owned: the name in the URL */
	const char *type;       /* PUT: the type served (borrowed from req, or a constant) */
	const char *body;       /* PUT: borrowed from req */
	size_t len;             /* PUT: of body; GET: of the file's bytes */
	int64_t cutoff_ms;      /* SCAN: files last written before this go */
	int64_t part_cutoff_ms; /* SCAN: and unfinished ones (".SLOT.part") before this */
	size_t removed;         /* SCAN: how many went */
	int err;                /* the work's result: 0 or a negative errno */
	char *data;             /* GET: owned: the whole file (HEAD: its two lines) */
	size_t off;             /* GET: where the bytes start in data */
	char file_type[XC_UPLOAD_TYPE_MAX + 1];
	bool head;
	void (*done)(void *arg, int err); /* REMOVE: the operator's callback */
	void *done_arg;
};

static void job_free(struct job *j)
{
	free(j->name);
	free(j->data);
	free(j);
}

/* The work of a job, on the thread pool: plain calls of upload_files.c. */
static void do_work(struct job *j)
{
	size_t cap = j->u->cfg->max_file_size + XC_UPLOAD_TYPE_MAX + XC_UPLOAD_NAME_MAX + 2;

	switch (j->kind) {
	case JOB_PUT:
		j->err = xc_upload__file_put(j->u->dir, j->slot, j->type, j->name, j->body, j->len);
		break;
	case JOB_GET:
		j->err = xc_upload__file_get(j->u->dir, j->slot, j->name, cap, j->head, &j->data,
		                             &j->off, &j->len, j->file_type);
		break;
	case JOB_SCAN:
		j->err =
		    xc_upload__file_sweep(j->u->dir, j->cutoff_ms, j->part_cutoff_ms, &j->removed);
		break;
	case JOB_REMOVE:
		j->err = xc_upload__file_remove(j->u->dir, j->slot);
		break;
	}
}

static void work_cb(uv_work_t *w)
{
	do_work(w->data);
}

static void maybe_done(struct xc_upload *u);

/* Whether a file's type may be served as it is to a browser: images, audio and video are shown
 * inline, everything else is offered as a download. */
static bool inline_type(const char *t)
{
	return strncmp(t, "image/", 6) == 0 || strncmp(t, "audio/", 6) == 0 ||
	       strncmp(t, "video/", 6) == 0;
}

/* Answer a GET or HEAD with the file j read: whole, or the one range it asks for (206, 416). */
static void serve(struct job *j)
{
	const char *range = cm_http_req_header(j->req, "range");
	struct cm_http_header h[NCOMMON + 4];
	size_t n = NCOMMON, first = 0, last = j->len ? j->len - 1 : 0;
	char cr[64];
	int part = xc_upload_range(range, j->len, &first, &last), status = 200;

	memcpy(h, common_headers, sizeof(common_headers));
	h[n++] = (struct cm_http_header){"Accept-Ranges", "bytes"};
	h[n++] = (struct cm_http_header){"Content-Disposition",
	                                 inline_type(j->file_type) ? "inline" : "attachment"};
	h[n++] = (struct cm_http_header){"Cache-Control", "public, max-age=86400, immutable"};
	if (part < 0) {
		snprintf(cr, sizeof(cr), "bytes */%zu", j->len);
		h[n++] = (struct cm_http_header){"Content-Range", cr};
		(void)cm_http_respond_headers(j->req, 416, NULL, h, n, NULL, 0);
		return;
	}
	if (part > 0) {
		status = 206;
		snprintf(cr, sizeof(cr), "bytes %zu-%zu/%zu", first, last, j->len);
		h[n++] = (struct cm_http_header){"Content-Range", cr};
	}
	cm_metrics_inc(j->u->m.get_ok);
	if (!j->head && j->len)
		cm_metrics_add(j->u->m.bytes_out, last - first + 1);
	/* (a HEAD has no bytes read: cm_http sends the length only) */
	(void)cm_http_respond_headers(j->req, status, j->file_type, h, n,
	                              j->head ? NULL : j->data + j->off + first,
	                              j->len ? last - first + 1 : 0);
}

static void after_work(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct xc_upload *u = j->u;

	if (status == UV_ECANCELED && !j->err)
		j->err = -ECANCELED;
	switch (j->kind) {
	case JOB_PUT:
		if (!j->err) {
			cm_metrics_inc(u->m.put_ok);
			cm_metrics_add(u->m.bytes_in, j->len);
			CM_LOGD("upload", "slot %s: %zu bytes kept", j->slot, j->len);
			respond(j->req, 201, "created\n");
		} else if (j->err == -EEXIST) {
			cm_metrics_inc(u->m.put_exists);
			respond(j->req, 409, "this slot has its file already\n");
		} else {
			cm_metrics_inc(u->m.put_failed);
			CM_LOGE("upload", "slot %s: cannot write its file in %s: %s", j->slot,
			        u->dir, strerror(-j->err));
			respond(j->req, 500, "the file could not be kept\n");
		}
		break;
	case JOB_GET:
		if (j->err) {
			if (j->err != -ENOENT)
				CM_LOGW("upload", "slot %s: cannot read its file: %s", j->slot,
				        strerror(-j->err));
			cm_metrics_inc(u->m.get_missing);
			respond(j->req, 404, "no such file\n");
		} else {
			serve(j);
		}
		break;
	case JOB_SCAN:
		if (j->err)
			CM_LOGW("upload", "cannot remove every expired file in %s: %s", u->dir,
			        strerror(-j->err));
		if (j->removed)
			CM_LOGI("upload", "%zu expired file(s) removed", j->removed);
		cm_metrics_add(u->m.expired, j->removed);
		break;
	case JOB_REMOVE:
		if (!j->err)
			CM_LOGI("upload", "slot %s: its file removed by the operator", j->slot);
		j->done(j->done_arg, j->err);
		break;
	}
	job_free(j);
	u->pending--;
	maybe_done(u);
}

static int queue(struct job *j)
{
	int rc;

	j->work.data = j;
	rc = uv_queue_work(j->u->loop->uv, &j->work, work_cb, after_work);
	if (rc == 0)
		j->u->pending++;
	return rc;
}

/* --- requests ----------------------------------------------------------------------------------
 */

/* What a PUT may be: whether its URL is a slot's for a file of len bytes and the type ctype
 * (may be NULL). 0 with *type (what the file is served as: ctype, or bytes when the slot named
 * no type), or the status to answer (403, 404) with *why and the counter to count it in. Each
 * check is the server's own: the head check asks with the declared Content-Length, before the
 * body is read, and the handler again with the body itself. */
static int put_verdict(struct xc_upload *u, const char *slot, const char *name, const char *query,
                       uint64_t len, const char *ctype, const char **type, const char **why,
                       struct cm_counter **ctr)
{
	char sig[XC_UPLOAD_SIG_LEN + 1], want[XC_UPLOAD_SIG_LEN + 1];
	const unsigned char *key = u->srv->upload_key;
	int64_t expiry;

	if (xc_upload_query(query, &expiry, sig) != 0) {
		*why = "this URL is not an upload slot's\n";
		*ctr = u->m.put_mismatch;
		return 403;
	}
	if (expiry < xc_wall_ms() / 1000) {
		*why = "this upload slot has expired: ask for another\n";
		*ctr = u->m.put_expired;
		return 403;
	}
	/* the slot named a type, which the PUT must carry; or it named none, and any is taken and
	 * served as bytes */
	if (len > 0 && ctype && xc_upload_type_ok(ctype) &&
	    xc_upload_sign(key, slot, name, len, ctype, expiry, want) == 0 &&
	    cm_crypto_equal(sig, want, XC_UPLOAD_SIG_LEN)) {
		*type = ctype;
		return 0;
	}
	if (len > 0 && xc_upload_sign(key, slot, name, len, NULL, expiry, want) == 0 &&
	    cm_crypto_equal(sig, want, XC_UPLOAD_SIG_LEN)) {
		*type = OCTETS;
		return 0;
	}
	*why = "the slot is for another file: its name, size (Content-Length) and type "
	       "(Content-Type) must be those asked for\n";
	*ctr = u->m.put_bad_sig;
	return 403;
}

/* The verdict on a PUT's head: its path and declared length as well. 0 or a status, *why. */
static int head_verdict(struct xc_upload *u, const struct cm_http_req *req, const char **why,
                        struct cm_counter **ctr)
{
	const char *path = cm_http_req_path(req), *clen = cm_http_req_header(req, "content-length");
	char slot[XC_UPLOAD_SLOT_LEN + 1], *name = NULL, *end;
	const char *type;
	unsigned long long len;
	int status;

	if (strncmp(path, XC_UPLOAD_PREFIX, strlen(XC_UPLOAD_PREFIX)) != 0)
		return 0; /* not a file's: the router answers */
	if (xc_upload_path(path + strlen(XC_UPLOAD_PREFIX), slot, &name) != 0) {
		*why = "no such file\n";
		*ctr = u->m.put_mismatch;
		return 404;
	}
	errno = 0;
	len = clen && *clen >= '0' && *clen <= '9' ? strtoull(clen, &end, 10) : 0;
	if (!clen || *clen < '0' || *clen > '9' || *end || errno) {
		free(name);
		*why = "a PUT says its Content-Length\n";
		*ctr = u->m.put_mismatch;
		return 411;
	}
	status = put_verdict(u, slot, name, cm_http_req_query(req), len,
	                     cm_http_req_header(req, "content-type"), &type, why, ctr);
	free(name);
	return status;
}

/* cm_http's head check: a PUT that would be refused is refused before its body arrives, so that
 * whoever has no slot cannot make the listener hold a file's worth of memory. */
static int on_head(void *arg, const struct cm_http_req *req)
{
	struct xc_upload *u = arg;
	struct cm_counter *ctr = NULL;
	const char *why = NULL;
	int status;

	if (strcmp(cm_http_req_method(req), "PUT") != 0)
		return 0;
	status = head_verdict(u, req, &why, &ctr);
	if (status && ctr)
		cm_metrics_inc(ctr);
	return status;
}

/* The server's own answers say why, for the PUTs the head check refused. */
static const char *error_text(void *arg, const struct cm_http_req *req, int status,
                              struct cm_buf *out)
{
	struct xc_upload *u = arg;
	struct cm_counter *ctr;
	const char *why = NULL;

	if (strcmp(cm_http_req_method(req), "PUT") != 0 || !cm_http_req_path(req) ||
	    head_verdict(u, req, &why, &ctr) != status || !why || cm_buf_puts(out, why) != 0)
		return NULL;
	return "text/plain; charset=utf-8";
}

static void put(struct xc_upload *u, struct cm_http_req *req, struct job *j)
{
	struct cm_counter *ctr = NULL;
	const char *why = NULL;
	int status;

	j->body = cm_http_req_body(req, &j->len);
	status = put_verdict(u, j->slot, j->name, cm_http_req_query(req), j->len,
	                     cm_http_req_header(req, "content-type"), &j->type, &why, &ctr);
	if (status) {
		cm_metrics_inc(ctr);
		respond(req, status, why);
		job_free(j);
		return;
	}
	j->kind = JOB_PUT;
	j->req = req;
	if (queue(j) != 0) {
		cm_metrics_inc(u->m.put_failed);
		respond(req, 503, "try again\n");
		job_free(j);
	}
}

static int on_request(void *arg, struct cm_http_req *req)
{
	struct xc_upload *u = arg;
	const char *method = cm_http_req_method(req);
	struct job *j;

	if (strcmp(method, "OPTIONS") == 0) {
		respond(req, 204, NULL); /* a web client's preflight */
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->u = u;
	if (xc_upload_path(cm_http_req_rest(req), j->slot, &j->name) != 0) {
		job_free(j);
		if (strcmp(method, "PUT") == 0)
			cm_metrics_inc(u->m.put_mismatch);
		respond(req, 404, "no such file\n");
		return 0;
	}
	if (strcmp(method, "PUT") == 0) {
		put(u, req, j);
		return 0;
	}
	j->kind = JOB_GET;
	j->head = strcmp(method, "HEAD") == 0;
	j->req = req;
	if (queue(j) != 0) {
		job_free(j);
		respond(req, 503, "try again\n");
	}
	return 0;
}

int xc_upload_remove(struct xc_upload *u, const char *slot, void (*done)(void *arg, int err),
                     void *arg)
{
	struct job *j;

	if (!xc_upload_slot_ok(slot))
		return -EINVAL;
	if (!(j = calloc(1, sizeof(*j))))
		return -ENOMEM;
	j->u = u;
	j->kind = JOB_REMOVE;
	memcpy(j->slot, slot, XC_UPLOAD_SLOT_LEN + 1);
	j->done = done;
	j->done_arg = arg;
	if (queue(j) != 0) {
		job_free(j);
		return -ENOMEM;
	}
	return 0;
}

/* --- expiry ------------------------------------------------------------------------------------
 */

static void purge(struct xc_upload *u);

static void on_purged(struct xc_store_req *r)
{
	struct xc_upload *u = r->arg;
	bool more = !r->err && r->count >= SWEEP_BATCH;

	u->pending--;
	if (r->err)
		CM_LOGW("upload", "cannot remove old upload slots: %s", strerror(-r->err));
	xc_store_req_free(r);
	if (more)
		purge(u); /* the rest of a large batch */
	maybe_done(u);
}

/* The slot rows the quota no longer counts, and whose files are gone (the files go by their
 * own age: xc_upload__file_sweep). */
static void purge(struct xc_upload *u)
{
	int64_t keep =
	    (int64_t)u->cfg->expire_after > DAY_MS ? (int64_t)u->cfg->expire_after : DAY_MS;
	struct xc_store_req *r;

	if (u->closing)
		return;
	r = xc_store_req_new(XC_STORE_UPLOAD_PURGE, u->loop, on_purged, u);
	if (!r)
		return;
	r->stamp_ms = xc_wall_ms() - keep;
	r->limit = SWEEP_BATCH;
	if (xc_store_submit(u->srv->store, r) != 0) {
		xc_store_req_free(r);
		return;
	}
	u->pending++;
}

static void sweep(struct xc_upload *u)
{
	struct job *j;

	if (u->closing)
		return;
	purge(u);
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->u = u;
	j->kind = JOB_SCAN;
	j->cutoff_ms = xc_wall_ms() - (int64_t)u->cfg->expire_after;
	j->part_cutoff_ms = xc_wall_ms() - PART_MS;
	if (queue(j) != 0)
		job_free(j);
}

static void on_sweep(uv_timer_t *t)
{
	sweep(t->data);
}

/* --- the service ----------------------------------------------------------------------------- */

/* upload.path, or "uploads" beside the store's file. */
static char *files_dir(const struct xc_config *cfg)
{
	const char *slash;
	char *out = NULL;

	if (cfg->upload.path && *cfg->upload.path)
		return strdup(cfg->upload.path);
	slash = strrchr(cfg->storage.path, '/');
	if (!slash)
		return strdup("uploads");
	if (asprintf(&out, "%.*s/uploads", (int)(slash - cfg->storage.path), cfg->storage.path) < 0)
		return NULL;
	return out;
}

int xc_upload_alloc(struct xc_upload **out, struct xc_server *srv, struct cm_daemon *d,
                    struct cm_metrics *metrics)
{
	const struct xc_upload_config *cfg = &srv->cfg->upload;
	struct xc_upload *u;
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!cfg->enabled)
		return 0;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->srv = srv;
	u->d = d;
	u->cfg = cfg;
	u->loop = cm_daemon_main_loop(d);
	u->dir = files_dir(srv->cfg);
	u->http = calloc(cfg->listen.n ? cfg->listen.n : 1, sizeof(*u->http));
	if (!u->dir || !u->http) {
		xc_upload_free(u);
		return -ENOMEM;
	}
	r = cm_metrics_register(metrics, &u->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("upload", "metrics: %s", err);
		xc_upload_free(u);
		return r;
	}
	r = cm_daemon_tls_open(d, "upload", &srv->cfg->tls, "h2,http/1.1", &u->tls);
	if (!r && !u->tls) {
		CM_LOGE("upload", "upload.enabled needs tls.certificate: files go over HTTPS");
		r = -EINVAL;
	}
	if (r) {
		xc_upload_free(u);
		return r;
	}
	*out = u;
	return 0;
}

int xc_upload_start(struct xc_upload *u)
{
	const struct xc_upload_config *cfg;
	struct cm_http_config hc = {.metrics_prefix = "upload_http", .log_module = "upload"};
	int r;

	if (!u)
		return 0;
	cfg = u->cfg;
	hc.tls = u->tls;
	hc.limits.max_body_bytes = cfg->max_file_size;
	hc.limits.max_connections = (unsigned)cfg->max_connections;
	hc.limits.idle_timeout_ms = IDLE_MS;
	hc.limits.max_streams = 4;
	hc.limits.max_receiving_bytes = cfg->max_file_size + 65536;
	if (mkdir(u->dir, 0700) != 0 && errno != EEXIST) {
		r = -errno;
		CM_LOGE("upload", "cannot make %s: %s", u->dir, strerror(-r));
		return r;
	}
	if (access(u->dir, W_OK | X_OK) != 0) {
		r = -errno;
		CM_LOGE("upload", "cannot write into %s: %s", u->dir, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct cm_cfg_addr a = {0};
		char e[CM_ERR_MAX];

		r = cm_cfg_parse_addr(cfg->listen.v[i], &a, e, sizeof(e));
		r = r ? r
		      : cm_http_server_alloc(&u->http[i], u->loop->uv,
		                             i == 0 ? cm_daemon_metrics(u->d) : NULL, &hc);
		if (!r)
			u->nhttp = u->open_http = i + 1;
		if (!r) {
			cm_http_server_set_head_check(u->http[i], on_head, u);
			cm_http_server_set_error_body(u->http[i], error_text, u);
		}
		r = r ? r
		      : cm_http_route(u->http[i], XC_UPLOAD_PREFIX, CM_HTTP_PREFIX,
		                      "GET, HEAD, PUT, OPTIONS", on_request, u);
		r = r ? r : cm_http_server_listen(u->http[i], (const struct sockaddr *)&a.sa);
		if (r) {
			CM_LOGE("upload", "cannot listen on %s: %s", cfg->listen.v[i],
			        strerror(-r));
			return r;
		}
		CM_LOGI("upload", "files on https://%s%s (slots at upload.HOST, URLs under %s)",
		        cfg->listen.v[i], XC_UPLOAD_PREFIX, u->srv->upload_base);
	}
	r = uv_timer_init(u->loop->uv, &u->sweep);
	if (r)
		return r;
	u->timer_open = true;
	u->sweep.data = u;
	uv_unref((uv_handle_t *)&u->sweep);
	sweep(u); /* what expired while the server was down */
	return uv_timer_start(&u->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

int xc_upload_reload(struct xc_upload *u)
{
	return u && u->tls ? cm_daemon_tls_reload(u->d, "upload", u->tls) : 0;
}

static void maybe_done(struct xc_upload *u)
{
	void (*done)(void *arg) = u->done;

	if (!u->closing || u->pending || u->open_http || u->timer_open || !done)
		return;
	u->done = NULL;
	done(u->done_arg);
}

static void on_http_closed(void *arg)
{
	struct xc_upload *u = arg;

	u->open_http--;
	maybe_done(u);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct xc_upload *u = h->data;

	u->timer_open = false;
	maybe_done(u);
}

void xc_upload_close(struct xc_upload *u, void (*done)(void *arg), void *arg)
{
	if (!u) {
		done(arg);
		return;
	}
	u->closing = true;
	u->done = done;
	u->done_arg = arg;
	for (size_t i = 0; i < u->nhttp; i++) {
		struct cm_http_server *h = u->http[i];

		u->http[i] = NULL;
		if (h)
			cm_http_server_close(h, on_http_closed, u);
	}
	u->nhttp = 0;
	if (u->timer_open)
		uv_close((uv_handle_t *)&u->sweep, on_timer_closed);
	maybe_done(u);
}

void xc_upload_free(struct xc_upload *u)
{
	if (!u)
		return;
	cm_tls_free(u->tls);
	free(u->http);
	free(u->dir);
	free(u);
}
