/* providers.c - the apps of the configuration turned into providers: APNs provider tokens
 * (one per team and key, shared by the apps that use it), TLS client contexts, APNs pools, FCM
 * service accounts and clients, development log providers (devlog.h); their registration with
 * the dispatcher, reload and close. */
#include "platypus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apns.h"
#include "devlog.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/tls.h"
#include "dispatch.h"
#include "fcm.h"

struct token_slot {
	char team[11], kid[11];
	struct pp_apns_token token; /* shared by the pools of that team and key */
};

struct apns_app {
	struct pp_providers *owner;
	bool closing;
	const struct platypus_apns_config *cfg; /* borrowed from the framework's config */
	struct token_slot *slot;                /* borrowed from the providers, NULL: cert auth */
	struct cm_tls *tls;                     /* owned */
	struct pp_apns_pool *pool;              /* owned until closed */
};

struct fcm_app {
	struct pp_providers *owner;
	bool closing;
	const struct platypus_fcm_config *cfg;
	unsigned char sa_sha[CM_SHA256_LEN]; /* of the JSON in use */
	struct pp_fcm_account account;       /* owned */
	struct pp_fcm *client;               /* owned until closed */
};

struct log_app {
	struct pp_providers *owner;
	bool closing;
	const struct platypus_log_app_config *cfg;
	struct pp_devlog *devlog; /* owned */
	bool open;                /* not yet closed */
};

struct pp_providers {
	struct log_app *logs;
	size_t nlogs;
	struct token_slot *slots;
	size_t nslots;
	struct apns_app *apns;
	size_t napns;
	struct fcm_app *fcm;
	size_t nfcm;
	unsigned open; /* pools and clients not yet closed */
	void (*done)(void *arg);
	void *done_arg;
};

static const char *tags_of(const struct cm_cfg_strlist *l, size_t i)
{
	return i < l->n ? l->v[i] : NULL;
}

static struct token_slot *token_for(struct pp_providers *p, const struct platypus_apns_config *a)
{
	char err[CM_ERR_MAX];

	for (size_t i = 0; i < p->nslots; i++)
		if (!strcmp(p->slots[i].team, a->team_id) && !strcmp(p->slots[i].kid, a->key_id))
			return &p->slots[i];
	/* slots was sized for every app: no reallocation, pointers stay valid. */
	struct token_slot *s = &p->slots[p->nslots];

	if (pp_apns_token_init(&s->token, (const char *)a->key.data, a->key.len, a->key_id,
	                       a->team_id, (unsigned)(a->token_refresh / 1000), err, sizeof(err))) {
		CM_LOGE("apns", "%s: %s: %s", a->name, a->key.path, err);
		return NULL;
	}
	snprintf(s->team, sizeof(s->team), "%s", a->team_id);
	snprintf(s->kid, sizeof(s->kid), "%s", a->key_id);
	p->nslots++;
	return s;
}

static int open_apns(struct pp_providers *p, struct cm_daemon *d, struct apns_app *app,
                     const struct platypus_apns_config *a, struct pp_dispatch *disp)
{
	struct cm_tls_config tc = {
	    .ca_file = a->ca_file,
	    .alpn = "h2",
	    .cert_file = a->certificate,
	    .key_file = a->certificate_key,
	};
	struct pp_apns_pool_config pc = {0};
	const char *tags[17] = {0};
	struct pp_app_desc desc = {0};
	char err[CM_ERR_MAX];
	int r;

	app->owner = p;
	app->cfg = a;
	if (a->key.path) {
		app->slot = token_for(p, a);
		if (!app->slot)
			return -EINVAL;
	}
	r = cm_tls_client_alloc(&app->tls, &tc, err, sizeof(err));
	if (r) {
		CM_LOGE("apns", "%s: TLS: %s", a->name, err);
		return r;
	}
	pc.name = a->name;
	pc.default_topic = a->topic;
	pc.token = app->slot ? &app->slot->token : NULL;
	pc.tls = app->tls;
	pc.host = a->host                  ? a->host
	          : a->mode == PP_MODE_DEV ? "api.sandbox.push.apple.com"
	                                   : "api.push.apple.com";
	pc.port = (uint16_t)a->port;
	pc.max_connections = (unsigned)a->connections;
	pc.max_streams = (unsigned)a->max_streams;
	pc.connect_timeout_ms = a->connect_timeout;
	pc.request_timeout_ms = a->request_timeout;
	pc.ping_interval_ms = a->ping_interval;
	pc.metrics = cm_daemon_metrics(d);
	r = pp_apns_pool_alloc(&app->pool, cm_daemon_main_loop(d), &pc);
	if (r)
		return r;
	p->open++;
	for (size_t i = 0; i < 16 && tags_of(&a->tags, i); i++)
		tags[i] = tags_of(&a->tags, i);
	desc.name = a->name;
	desc.service = PP_SVC_APNS;
	desc.mode = (enum pp_mode)a->mode;
	desc.topic = a->topic;
	desc.tags = tags;
	desc.send = pp_apns_send;
	desc.provider = app->pool;
	r = pp_dispatch_add_app(disp, &desc);
	if (!r)
		CM_LOGI("apns", "%s: %s auth, %s:%u, topic %s", a->name,
		        app->slot ? "token" : "certificate", pc.host, pc.port,
		        a->topic ? a->topic : "(from the certificate)");
	return r;
}

static int open_fcm(struct pp_providers *p, struct cm_daemon *d, struct fcm_app *app,
                    const struct platypus_fcm_config *f, struct pp_dispatch *disp)
{
	struct pp_fcm_config fc = {0};
	const char *tags[17] = {0};
	struct pp_app_desc desc = {0};
	char err[CM_ERR_MAX];
	int r;

	app->owner = p;
	app->cfg = f;
	r = pp_fcm_account_load(&app->account, (const char *)f->service_account.data,
	                        f->service_account.len, err, sizeof(err));
	if (r) {
		CM_LOGE("fcm", "%s: %s: %s", f->name, f->service_account.path, err);
		return r;
	}
	cm_crypto_sha256(f->service_account.data, f->service_account.len, app->sa_sha);
	fc.name = f->name;
	fc.account = &app->account;
	fc.base_url = f->base_url;
	fc.ca_file = f->ca_file;
	fc.request_timeout_ms = f->request_timeout;
	fc.max_in_flight = (unsigned)f->max_in_flight;
	fc.metrics = cm_daemon_metrics(d);
	r = pp_fcm_alloc(&app->client, cm_daemon_main_loop(d), &fc);
	if (r)
		return r;
	p->open++;
	for (size_t i = 0; i < 16 && tags_of(&f->tags, i); i++)
		tags[i] = tags_of(&f->tags, i);
	desc.name = f->name;
	desc.service = PP_SVC_FCM;
	desc.mode = (enum pp_mode)f->mode;
	desc.tags = tags;
	desc.send = pp_fcm_send;
	desc.provider = app->client;
	r = pp_dispatch_add_app(disp, &desc);
	if (!r)
		CM_LOGI("fcm", "%s: project %s, %s", f->name, app->account.project_id, f->base_url);
	return r;
}

static int open_log(struct pp_providers *p, struct cm_daemon *d, struct log_app *app,
                    const struct platypus_log_app_config *l, struct pp_dispatch *disp)
{
	struct pp_devlog_config dc = {
	    .name = l->name,
	    .service = (enum pp_service)l->service,
	    .file = l->file,
	};
	const char *tags[17] = {0};
	struct pp_app_desc desc = {0};
	char err[CM_ERR_MAX];
	int r;

	app->owner = p;
	app->cfg = l;
	r = pp_devlog_alloc(&app->devlog, cm_daemon_main_loop(d), &dc, err, sizeof(err));
	if (r) {
		CM_LOGE("devlog", "%s: %s", l->name, err);
		return r;
	}
	app->open = true;
	p->open++;
	for (size_t i = 0; i < 16 && tags_of(&l->tags, i); i++)
		tags[i] = tags_of(&l->tags, i);
	desc.name = l->name;
	desc.service = dc.service;
	desc.mode = (enum pp_mode)l->mode;
	desc.tags = tags;
	desc.send = pp_devlog_send;
	desc.provider = app->devlog;
	r = pp_dispatch_add_app(disp, &desc);
	if (!r)
		CM_LOGW("devlog",
		        "%s: DEVELOPMENT log provider for %s (%s mode): notifications are written "
		        "to %s, never sent",
		        l->name, pp_service_name(dc.service), pp_mode_name(desc.mode),
		        l->file ? l->file : "the log");
	return r;
}

int pp_providers_open(struct pp_providers **out, struct cm_daemon *d,
                      const struct platypus_config *cfg, struct pp_dispatch *disp)
{
	struct pp_providers *p = calloc(1, sizeof(*p));
	const struct platypus_apns_config *a = cfg->apns.items;
	const struct platypus_fcm_config *f = cfg->fcm.items;
	int r = 0;

	*out = p;
	if (!p)
		return -ENOMEM;
	p->slots = calloc(cfg->apns.n + 1, sizeof(*p->slots));
	p->apns = calloc(cfg->apns.n + 1, sizeof(*p->apns));
	p->fcm = calloc(cfg->fcm.n + 1, sizeof(*p->fcm));
	p->logs = calloc(cfg->log_apps.n + 1, sizeof(*p->logs));
	if (!p->slots || !p->apns || !p->fcm || !p->logs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->apns.n && !r; i++, p->napns++)
		r = open_apns(p, d, &p->apns[i], &a[i], disp);
	for (size_t i = 0; i < cfg->fcm.n && !r; i++, p->nfcm++)
		r = open_fcm(p, d, &p->fcm[i], &f[i], disp);
	for (size_t i = 0; i < cfg->log_apps.n && !r; i++, p->nlogs++)
		r = open_log(p, d, &p->logs[i],
		             (const struct platypus_log_app_config *)cfg->log_apps.items + i, disp);
	if (!r && !cfg->apns.n && !cfg->fcm.n && !cfg->log_apps.n)
		CM_LOGW("platypus", "no apps configured (apns:, fcm:): every notification will be "
		                    "refused with no_matching_pool");
	return r;
}

int pp_providers_reload(struct pp_providers *p, const struct platypus_config *newcfg)
{
	const struct platypus_apns_config *na = newcfg->apns.items;
	const struct platypus_fcm_config *nf = newcfg->fcm.items;
	char err[CM_ERR_MAX];
	int rc = 0, r;

	for (size_t i = 0; i < p->napns; i++) {
		struct apns_app *app = &p->apns[i];

		for (size_t k = 0; k < newcfg->apns.n; k++) {
			if (strcmp(na[k].name, app->cfg->name))
				continue;
			if (app->slot && na[k].key.data) {
				struct pp_apns_token *t = &app->slot->token;
				unsigned char before[sizeof(t->pem_sha256)];

				memcpy(before, t->pem_sha256, sizeof(before));
				r = pp_apns_token_rekey(t, (const char *)na[k].key.data,
				                        na[k].key.len, err, sizeof(err));
				if (r) {
					CM_LOGE("apns", "%s: reload: %s (the old key stays)",
					        app->cfg->name, err);
					rc = r;
				} else if (memcmp(before, t->pem_sha256, sizeof(before)) &&
				           app->pool) {
					/* A token APNs refuses is worth nothing: the new key signs
					 * the next one at once. */
					if (!pp_apns_pool_credentials_ok(app->pool))
						pp_apns_token_refused(t);
					pp_apns_pool_credentials_changed(app->pool);
				}
			}
			/* Certificate, key and CA files are re-read from the paths given at start.
			 */
			r = cm_tls_reload(app->tls, err, sizeof(err));
			if (r) {
				CM_LOGE("apns", "%s: reload TLS: %s", app->cfg->name, err);
				rc = r;
			}
		}
	}
	for (size_t i = 0; i < p->nfcm; i++) {
		struct fcm_app *app = &p->fcm[i];

		for (size_t k = 0; k < newcfg->fcm.n; k++) {
			struct pp_fcm_account acc;
			unsigned char sha[CM_SHA256_LEN];

			if (strcmp(nf[k].name, app->cfg->name) || !nf[k].service_account.data)
				continue;
			cm_crypto_sha256(nf[k].service_account.data, nf[k].service_account.len,
			                 sha);
			if (!memcmp(sha, app->sa_sha, sizeof(sha)))
				continue;
			r = pp_fcm_account_load(&acc, (const char *)nf[k].service_account.data,
			                        nf[k].service_account.len, err, sizeof(err));
			if (r) {
				CM_LOGE("fcm", "%s: reload: %s (the old account stays)",
				        app->cfg->name, err);
				rc = r;
				continue;
			}
			if (strcmp(acc.project_id, app->account.project_id)) {
				CM_LOGE(
				    "fcm",
				    "%s: reload: the project changed (%s); restart to change it",
				    app->cfg->name, acc.project_id);
				pp_fcm_account_close(&acc);
				rc = -EINVAL;
				continue;
			}
			/* Swap in place: the client holds a pointer to the account. The access
			 * token of the old key is dropped; the next send asks for a new one. The
			 * count of grants goes on: it numbers the access tokens. */
			acc.grants = app->account.grants;
			pp_fcm_account_close(&app->account);
			app->account = acc;
			memcpy(app->sa_sha, sha, sizeof(sha));
			if (app->client)
				pp_fcm_credentials_changed(app->client);
			CM_LOGI("fcm", "%s: service account reloaded", app->cfg->name);
		}
	}
	return rc;
}

static void one_closed(struct pp_providers *p)
{
	if (--p->open == 0 && p->done) {
		void (*done)(void *) = p->done;

		p->done = NULL;
		done(p->done_arg);
	}
}

static void apns_closed(void *arg)
{
	struct apns_app *app = arg;

	app->pool = NULL;
	one_closed(app->owner);
}

static void log_closed(void *arg)
{
	struct log_app *app = arg;

	app->open = false;
	one_closed(app->owner);
}

static void fcm_closed(void *arg)
{
	struct fcm_app *app = arg;

	app->client = NULL;
	one_closed(app->owner);
}

void pp_providers_close(struct pp_providers *p, bool graceful, void (*done)(void *arg), void *arg)
{
	if (done) {
		p->done = done;
		p->done_arg = arg;
	}
	if (!p->open) {
		void (*d)(void *) = p->done;

		p->done = NULL;
		if (d)
			d(p->done_arg);
		return;
	}
	/* A pool may finish (and its pointer go NULL) during these calls. */
	for (size_t i = 0; i < p->napns; i++) {
		struct apns_app *app = &p->apns[i];

		if (!app->pool || (app->closing && graceful))
			continue;
		app->closing = true;
		pp_apns_pool_close(app->pool, graceful, apns_closed, app);
	}
	for (size_t i = 0; i < p->nfcm; i++) {
		struct fcm_app *app = &p->fcm[i];

		if (!app->client || (app->closing && graceful))
			continue;
		app->closing = true;
		pp_fcm_close(app->client, graceful, fcm_closed, app);
	}
	for (size_t i = 0; i < p->nlogs; i++) {
		struct log_app *app = &p->logs[i];

		/* what it owes is posted already: graceful or not, it ends once that has run */
		if (!app->open || app->closing)
			continue;
		app->closing = true;
		pp_devlog_close(app->devlog, log_closed, app);
	}
}

void pp_providers_free(struct pp_providers *p)
{
	if (!p)
		return;
	/* Whoever opens closes: pp_providers_close() is over by now. A pool or client still open
	 * would call back into this memory. */
	if (p->open) {
		CM_LOGE("platypus", "%u providers still open when freed; keeping their memory",
		        p->open);
		return;
	}
	for (size_t i = 0; i < p->napns; i++)
		cm_tls_free(p->apns[i].tls);
	for (size_t i = 0; i < p->nslots; i++)
		pp_apns_token_close(&p->slots[i].token);
	for (size_t i = 0; i < p->nfcm; i++)
		pp_fcm_account_close(&p->fcm[i].account);
	for (size_t i = 0; i < p->nlogs; i++)
		pp_devlog_free(p->logs[i].devlog);
	free(p->logs);
	free(p->slots);
	free(p->apns);
	free(p->fcm);
	free(p);
}

/* ,"name": with the name escaped. */
static void json_name(struct cm_buf *out, const char *name, bool first)
{
	cm_buf_puts(out, first ? "\"" : ",\"");
	cm_buf_json_escape(out, name, strlen(name));
	cm_buf_puts(out, "\":");
}

int pp_providers_health(struct pp_providers *p, struct cm_buf *out)
{
	bool first = true;
	size_t refused = 0;

	cm_buf_puts(out, "\"apps\":{");
	for (size_t i = 0; i < p->napns; i++) {
		unsigned usable = 0, n = 0, pending = 0;
		bool ok = true;

		if (p->apns[i].pool) {
			n = pp_apns_pool_connections(p->apns[i].pool, &usable);
			pending = pp_apns_pool_pending(p->apns[i].pool);
			ok = pp_apns_pool_credentials_ok(p->apns[i].pool);
		}
		refused += !ok;
		json_name(out, p->apns[i].cfg->name, first);
		cm_buf_printf(out,
		              "{\"service\":\"apns\",\"connections\":%u,\"usable\":%u,"
		              "\"pending\":%u,\"credentials\":\"%s\"}",
		              n, usable, pending, ok ? "ok" : "refused");
		first = false;
	}
	for (size_t i = 0; i < p->nfcm; i++) {
		bool ok = !p->fcm[i].client || pp_fcm_credentials_ok(p->fcm[i].client);

		refused += !ok;
		json_name(out, p->fcm[i].cfg->name, first);
		cm_buf_printf(out, "{\"service\":\"fcm\",\"pending\":%u,\"credentials\":\"%s\"}",
		              p->fcm[i].client ? pp_fcm_pending(p->fcm[i].client) : 0,
		              ok ? "ok" : "refused");
		first = false;
	}
	for (size_t i = 0; i < p->nlogs; i++) {
		json_name(out, p->logs[i].cfg->name, first);
		cm_buf_printf(out, "{\"service\":\"%s\",\"provider\":\"log\"}",
		              pp_service_name((enum pp_service)p->logs[i].cfg->service));
		first = false;
	}
	cm_buf_puts(out, "}");
	/* A pool connects on demand: no connection yet is not a fault. Unhealthy when no app can
	 * deliver because every one has its credentials refused (as MongoosePush answers 503
	 * only when every pool is down). */
	return refused && refused == p->napns + p->nfcm;
}
