/* main.c - icicle, the STUN/TURN server of the suite: process entry point, start, SIGHUP reload
 * (certificates, REST secrets and users swapped without touching allocations) and close. */
#include "icicle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/listener.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/tls.h"
#include "worker.h"

#define RSV_EXPIRE_MS 1000 /* reservations are closed at most this long after their time */

static void rsv_tick(uv_timer_t *t)
{
	struct icicle *ic = t->data;

	(void)icicle_rsv_expire(&ic->rsv, uv_now(t->loop));
}

static int icicle_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct icicle_config *cfg = cfgp;
	struct icicle_creds *creds = NULL;
	struct cm_worker_ops ops = {
	    .init = icicle_worker_init,
	    .stop = icicle_worker_stop,
	};
	char err[CM_ERR_MAX];
	struct icicle *ic = calloc(1, sizeof(*ic));
	int rc;

	*state = ic;
	if (!ic)
		return -ENOMEM;
	ic->daemon = d;
	ic->cfg = cfg;
	cm_list_init(&ic->worker_list);
	rc = cm_daemon_tls_open(d, "turns", &cfg->tls, NULL, &ic->tls);
	if (rc != 0)
		return rc;
	rc = icicle_metrics_init(&ic->metrics, cm_daemon_metrics(d), err, sizeof(err));
	if (rc != 0) {
		CM_LOGE("icicle", "%s", err);
		return rc;
	}
	rc = icicle_filter_init(&ic->filter, cfg->filter.deny_defaults,
	                        (const char *const *)cfg->filter.deny.v, cfg->filter.deny.n,
	                        (const char *const *)cfg->filter.allow.v, cfg->filter.allow.n, err,
	                        sizeof(err));
	if (rc != 0) {
		CM_LOGE("icicle", "filter: %s", err);
		return rc;
	}
	rc = icicle_creds_from_config(cfg, &creds, err, sizeof(err));
	if (rc != 0) {
		CM_LOGE("auth", "%s", err);
		return rc;
	}
	if (icicle_creds_nsecrets(creds) == 0 && icicle_creds_nusers(creds) == 0)
		CM_LOGW("auth",
		        "no auth.secret_file and no auth.users_file: every Allocate will be "
		        "refused (STUN Binding still works)");
	rc = icicle_auth_init(&ic->auth, cfg->realm, (uint32_t)(cfg->auth.nonce_lifetime / 1000),
	                      creds);
	if (rc != 0) {
		icicle_creds_unref(creds);
		return rc;
	}
	ic->auth_ready = true;
	rc = icicle_quota_init(&ic->quota, (uint64_t)cfg->quotas.allocations_per_user,
	                       (uint64_t)cfg->quotas.allocations_total,
	                       cfg->quotas.bandwidth_per_user);
	if (rc != 0)
		return rc;
	/* Reservations hold ports: no more of them than allocations, and as many per user. */
	rc = icicle_rsv_init(
	    &ic->rsv, cfg->quotas.allocations_total ? (size_t)cfg->quotas.allocations_total : 65536,
	    (uint64_t)cfg->quotas.allocations_per_user);
	if (rc != 0)
		return rc;
	rc = cm_srclimit_alloc(&ic->per_source, (unsigned)cfg->quotas.connections_per_source);
	if (rc != 0)
		return rc;
	rc = uv_timer_init(cm_daemon_loop(d), &ic->rsv_timer);
	if (rc != 0)
		return rc;
	ic->rsv_timer.data = ic;
	ic->rsv_timer_open = true;
	rc = uv_timer_start(&ic->rsv_timer, rsv_tick, RSV_EXPIRE_MS, RSV_EXPIRE_MS);
	if (rc != 0)
		return rc;
	if (!ic->tls && cfg->listen.tls.n > 0)
		CM_LOGI("listen", "no tls.certificate: TURN over TLS is off");
	ops.arg = ic;
	rc = cm_daemon_workers(d, (unsigned)cfg->threads, &ops, &ic->workers);
	if (rc != 0)
		return rc; /* what failed was logged by the worker */
	CM_LOGI("icicle", "%u worker thread(s) serving", cm_workers_count(ic->workers));
	(void)cm_listener_warn_caps(
	    "listen", "quotas.connections_per_source", cfg->quotas.connections_per_source,
	    "quotas.connections_per_worker", cfg->quotas.connections_per_worker);
	return 0;
}

static int icicle_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct icicle *ic = state;
	const struct icicle_config *nc = newcfg;
	struct icicle_creds *creds = NULL;
	char err[CM_ERR_MAX];
	int rc, rc2;

	/* Listeners, relay, filter and quotas keep their start-up values; credentials and the
	 * certificate are what may change under a running server. */
	rc = icicle_creds_from_config(nc, &creds, err, sizeof(err));
	if (rc == 0) {
		CM_LOGI("auth", "credentials reloaded: %zu secret(s), %zu user(s)",
		        icicle_creds_nsecrets(creds), icicle_creds_nusers(creds));
		icicle_auth_swap(&ic->auth, creds);
	} else {
		CM_LOGE("auth", "%s", err);
	}
	rc2 = ic->tls ? cm_daemon_tls_reload(d, "turns", ic->tls) : 0;
	return rc != 0 ? rc : rc2;
}

static void rsv_timer_closed(uv_handle_t *h)
{
	struct icicle *ic = h->data;

	ic->close_done(ic->daemon);
}

/* The main loop holds one handle of ours: the reservations' timer. The workers' handles are
 * closed on their own threads (icicle_worker_stop()), after this. Allocations are not handed
 * over anywhere: closing the workers ends them. */
static void icicle_close(struct cm_daemon *d, void *state, void (*done)(struct cm_daemon *d))
{
	struct icicle *ic = state;

	if (!ic || !ic->rsv_timer_open) {
		done(d);
		return;
	}
	ic->close_done = done;
	ic->rsv_timer_open = false;
	uv_close((uv_handle_t *)&ic->rsv_timer, rsv_timer_closed);
}

static void icicle_free(void *state)
{
	struct icicle *ic = state;
	struct cm_list *n;

	if (!ic)
		return;
	/* the framework has joined the worker threads by now */
	while ((n = cm_list_first(&ic->worker_list)) != NULL)
		icicle_worker_free(cm_list_entry(n, struct icicle_worker, link));
	cm_srclimit_free(ic->per_source);
	icicle_rsv_close(&ic->rsv);
	icicle_quota_close(&ic->quota);
	if (ic->auth_ready)
		icicle_auth_close(&ic->auth);
	icicle_filter_close(&ic->filter);
	cm_tls_free(ic->tls);
	free(ic);
}

static int icicle_health(void *state, struct cm_buf *details)
{
	struct icicle *ic = state;

	if (!ic)
		return 0;
	(void)cm_buf_printf(
	    details, "\"workers\":%u,\"allocations\":%.0f",
	    ic->workers ? cm_workers_count(ic->workers) : 0,
	    ic->metrics.allocations ? cm_metrics_gauge_value(ic->metrics.allocations) : 0.0);
	return 0;
}

static const struct cm_daemon_spec icicle_spec = {
    .name = "icicle",
    .summary = "STUN/TURN server that relays call media between phones behind NAT.",
    .schema = &icicle_config_schema,
    .log_offset = offsetof(struct icicle_config, log),
    .admin_offset = offsetof(struct icicle_config, admin),
    .drain_offset = offsetof(struct icicle_config, shutdown_timeout),
    .start = icicle_start,
    .reload = icicle_reload,
    .close = icicle_close,
    .free = icicle_free,
    .health = icicle_health,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&icicle_spec, argc, argv);
}
