/* daemon.c - the life of a daemon: start, serve, reload on SIGHUP, drain on SIGTERM, stop. */
#include "cm/daemon.h"
#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/sd.h"
#include "daemon_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define CLOSE_GUARD_MS 10000 /* how long the daemon's close() may take */

static const enum cm_log_level level_of[] = {CM_LOG_ERROR, CM_LOG_WARN, CM_LOG_INFO, CM_LOG_DEBUG};

static const struct cm_daemon_log_config *log_cfg(const struct cm_daemon *d, const void *cfg)
{
	return (const struct cm_daemon_log_config *)((const char *)cfg + d->spec->log_offset);
}

static const struct cm_daemon_admin_config *admin_cfg(const struct cm_daemon *d)
{
	return (const struct cm_daemon_admin_config *)((const char *)d->cfg +
	                                               d->spec->admin_offset);
}

static uint64_t drain_ms(const struct cm_daemon *d)
{
	return *(const uint64_t *)((const char *)d->cfg + d->spec->drain_offset);
}

static void apply_log(const struct cm_daemon *d, const void *cfg)
{
	const struct cm_daemon_log_config *l = log_cfg(d, cfg);

	cm_log_setup(d->spec->name, level_of[l->level], l->format ? CM_LOG_JSON : CM_LOG_TEXT, 2);
}

uv_loop_t *cm_daemon_loop(struct cm_daemon *d)
{
	return &d->loop;
}

struct cm_loop *cm_daemon_main_loop(struct cm_daemon *d)
{
	return &d->cl;
}

int cm_daemon_workers(struct cm_daemon *d, unsigned n, const struct cm_worker_ops *ops,
                      struct cm_workers **out)
{
	int r;

	*out = NULL;
	if (d->workers)
		return -EALREADY;
	r = cm_workers_start(&d->workers, n, ops);
	if (r == 0)
		*out = d->workers;
	return r;
}

struct cm_metrics *cm_daemon_metrics(struct cm_daemon *d)
{
	return d->metrics;
}

struct cm_admin *cm_daemon_admin(struct cm_daemon *d)
{
	return d->admin;
}

static int health(void *arg, struct cm_buf *details)
{
	struct cm_daemon *d = arg;
	int sick = 0;

	if (d->phase == PHASE_DRAINING || d->phase == PHASE_CLOSING) {
		/* Tell load balancers to look elsewhere while in-flight work finishes. */
		cm_buf_puts(details, "\"phase\":\"draining\"");
		return 1;
	}
	cm_buf_puts(details, "\"phase\":\"running\"");
	if (d->spec->health && d->state) {
		size_t mark = details->len;

		cm_buf_puts(details, ",");
		sick = d->spec->health(d->state, details);
		if (details->len == mark + 1) {
			/* the daemon added nothing: drop the comma */
			details->len = mark;
			details->data[mark] = '\0';
		}
	}
	return sick;
}

/* --- stopping -------------------------------------------------------------------------------- */

static void on_admin_closed(void *arg)
{
	struct cm_daemon *d = arg;

	d->admin = NULL;
	uv_stop(&d->loop);
}

/* Everything the daemon had in flight is done (or the drain timed out): close our handles. */
static void finish(struct cm_daemon *d)
{
	if (d->phase == PHASE_CLOSING)
		return;
	d->phase = PHASE_CLOSING;
	uv_timer_stop(&d->drain);
	uv_timer_stop(&d->watchdog);
	if (d->admin)
		cm_admin_close(d->admin, on_admin_closed, d);
	else
		uv_stop(&d->loop);
}

void cm_daemon_stopped(struct cm_daemon *d)
{
	if (d->phase == PHASE_DRAINING)
		CM_LOGI("daemon", "drained; exiting");
	finish(d);
}

static void on_drain_timeout(uv_timer_t *t)
{
	struct cm_daemon *d = t->data;

	CM_LOGW("daemon", "drain did not finish within %llu ms; exiting with work in flight",
	        (unsigned long long)drain_ms(d));
	finish(d);
}

static void begin_stop(struct cm_daemon *d, const char *why)
{
	if (d->phase == PHASE_DRAINING || d->phase == PHASE_CLOSING) {
		CM_LOGW("daemon", "%s again: exiting without waiting for the drain", why);
		finish(d);
		return;
	}
	d->phase = PHASE_DRAINING;
	CM_LOGI("daemon", "%s: stopping intake, draining (at most %llu ms)", why,
	        (unsigned long long)drain_ms(d));
	cm_sd_stopping("draining");
	uv_timer_start(&d->drain, on_drain_timeout, drain_ms(d), 0);
	if (d->spec->stop && d->state)
		d->spec->stop(d, d->state);
	else
		cm_daemon_stopped(d);
}

/* --- reloading ------------------------------------------------------------------------------- */

static void reload(struct cm_daemon *d)
{
	void *newcfg = NULL;
	int r;

	if (d->phase != PHASE_RUNNING)
		return;
	cm_sd_reloading();
	CM_LOGI("daemon", "SIGHUP: reloading %s", d->config_path ? d->config_path : "defaults");
	r = cm_daemon__load(d->spec, d->config_path, &newcfg);
	if (r) {
		CM_LOGE("daemon", "reload: the configuration has errors (listed above); "
		                  "keeping the one in force");
	} else {
		apply_log(d, newcfg);
		if (d->spec->reload)
			r = d->spec->reload(d, d->state, newcfg);
		cm_cfg_free(d->spec->schema, newcfg);
		free(newcfg);
	}
	cm_metrics_inc(r ? d->reload_failed : d->reload_ok);
	CM_LOGI("daemon", "reload %s",
	        r ? "failed (see above); the old material stays in use" : "done");
	cm_sd_ready(r ? "running (last reload failed)" : "running");
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct cm_daemon *d = s->data;

	if (signum == SIGHUP)
		reload(d);
	else
		begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* --- watchdog -------------------------------------------------------------------------------- */

/* Pinging from the loop means a stuck loop stops the pings and systemd restarts the daemon. */
static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	cm_sd_watchdog_ping();
}

/* --- running --------------------------------------------------------------------------------- */

static int open_admin(struct cm_daemon *d)
{
	const struct cm_daemon_admin_config *ac = admin_cfg(d);
	struct cm_admin_config c = {
	    .daemon = d->spec->name,
	    .version = SUITE_VERSION,
	    .limits = {.max_connections_per_source = (unsigned)ac->connections_per_source},
	};
	int r;

	if (!ac->enabled)
		return 0;
	r = cm_admin_alloc(&d->admin, &d->loop, d->metrics, &c);
	if (r) {
		CM_LOGE("admin", "cannot create the admin server: %s", strerror(-r));
		return r;
	}
	cm_admin_set_health(d->admin, health, d);
	r = cm_admin_listen(d->admin, (const struct sockaddr *)&ac->listen.sa);
	if (r) {
		CM_LOGE("admin", "admin.listen %s: %s", ac->listen.text, uv_strerror(r));
		return r;
	}
	CM_LOGI("admin", "serving /health and /metrics on http://%s", ac->listen.text);
	return 0;
}

static int init_handles(struct cm_daemon *d)
{
	int r = uv_loop_init(&d->loop);

	if (r)
		return r;
	r = cm_loop_init(&d->cl, &d->loop, 0);
	if (r)
		return r;
	d->cl_ready = true;
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	uv_timer_init(&d->loop, &d->watchdog);
	uv_timer_init(&d->loop, &d->drain);
	uv_timer_init(&d->loop, &d->close_guard);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	d->watchdog.data = d->drain.data = d->close_guard.data = d;
	r = uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	r = r ? r : uv_signal_start(&d->sig_int, on_signal, SIGINT);
	r = r ? r : uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
	/* The suite writes to sockets; a peer that goes away must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return r;
}

static int init_metrics(struct cm_daemon *d)
{
	struct cm_gauge *info;
	int r = cm_metrics_alloc(&d->metrics);

	r = r ? r : cm_metrics_add_process(d->metrics);
	r = r ? r
	      : cm_metrics_gauge(d->metrics, &info, "suite_build_info",
	                         "Version of the running daemon (always 1)", "daemon",
	                         d->spec->name, "version", SUITE_VERSION, NULL);
	if (r == 0)
		cm_metrics_set(info, 1);
	r = r ? r
	      : cm_metrics_counter(d->metrics, &d->reload_ok, "daemon_reloads_total",
	                           "SIGHUP reloads by result", "result", "ok", NULL);
	r = r ? r
	      : cm_metrics_counter(d->metrics, &d->reload_failed, "daemon_reloads_total",
	                           "SIGHUP reloads by result", "result", "failed", NULL);
	return r;
}

static void start_watchdog(struct cm_daemon *d)
{
	uint64_t usec = 0;

	if (cm_sd_watchdog_usec(&usec) != 0 || usec == 0)
		return;
	/* Ping at a third of the interval: a busy loop gets two more chances before systemd acts.
	 */
	uv_timer_start(&d->watchdog, on_watchdog, usec / 3000 ? usec / 3000 : 1,
	               usec / 3000 ? usec / 3000 : 1);
	CM_LOGD("daemon", "systemd watchdog every %llu ms", (unsigned long long)(usec / 3000));
}

/* --- closing --------------------------------------------------------------------------------- */

static void on_close_done(struct cm_daemon *d)
{
	d->close_done = true;
	uv_timer_stop(&d->close_guard);
	/* only a running loop is stopped: a stop asked of an idle loop would cut the next run
	 * short (the one that runs the last close callbacks) */
	if (d->close_running)
		uv_stop(&d->loop);
}

static void on_close_guard(uv_timer_t *t)
{
	struct cm_daemon *d = t->data;

	CM_LOGE("daemon", "the daemon's close did not finish within %llu ms",
	        (unsigned long long)CLOSE_GUARD_MS);
	uv_stop(&d->loop);
}

/* The daemon closes its handles while the loop still runs their callbacks. */
static void close_daemon(struct cm_daemon *d)
{
	if (!d->state || !d->spec->close)
		return;
	d->close_done = false;
	uv_timer_start(&d->close_guard, on_close_guard, CLOSE_GUARD_MS, 0);
	d->spec->close(d, d->state, on_close_done);
	if (!d->close_done) {
		d->close_running = true;
		uv_run(&d->loop, UV_RUN_DEFAULT);
		d->close_running = false;
	}
	uv_timer_stop(&d->close_guard);
}

static void close_if_open(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

/* The framework's own handles; the loop then holds only what someone forgot. */
static void close_own(struct cm_daemon *d)
{
	close_if_open((uv_handle_t *)&d->sig_term);
	close_if_open((uv_handle_t *)&d->sig_int);
	close_if_open((uv_handle_t *)&d->sig_hup);
	close_if_open((uv_handle_t *)&d->watchdog);
	close_if_open((uv_handle_t *)&d->drain);
	close_if_open((uv_handle_t *)&d->close_guard);
	if (d->cl_ready)
		cm_loop_close(&d->cl, NULL);
}

int cm_daemon__run(struct cm_daemon *d)
{
	int r;

	apply_log(d, d->cfg);
	r = init_handles(d);
	if (r) {
		CM_LOGE("daemon", "cannot set up the event loop: %s", uv_strerror(r));
		return 1;
	}
	r = init_metrics(d);
	if (r)
		CM_LOGE("daemon", "cannot set up metrics: %s", strerror(-r));
	r = r ? r : open_admin(d);
	if (r == 0) {
		r = d->spec->start(d, d->cfg, &d->state);
		if (r)
			CM_LOGE("daemon", "start-up failed: %s", strerror(-r));
	}
	if (r == 0) {
		d->phase = PHASE_RUNNING;
		start_watchdog(d);
		CM_LOGI("daemon", "%s %s ready (%s)", d->spec->name, SUITE_VERSION,
		        d->config_path ? d->config_path : "embedded default configuration");
		cm_sd_ready("running");
		uv_run(&d->loop, UV_RUN_DEFAULT);
		d->exit_status = 0;
	} else {
		d->exit_status = 1;
		if (d->admin) {
			cm_admin_close(d->admin, on_admin_closed, d);
			uv_run(&d->loop, UV_RUN_DEFAULT); /* until on_admin_closed */
		}
	}

	d->phase = PHASE_CLOSING;
	close_daemon(d);
	/* The workers stop first (a handle one left open is named in the log by the workers
	 * themselves): from then on a post to one of their loops fails cleanly. Their memory goes
	 * after free(), because a thread the daemon's state owns (a store, say) may still post to
	 * them until free() stops it. */
	if (d->workers)
		(void)cm_workers_stop(d->workers);
	if (d->spec->free)
		d->spec->free(d->state);
	d->state = NULL;
	cm_workers_free(d->workers);
	d->workers = NULL;
	close_own(d);
	(void)cm_loop_report_leaks(&d->loop, d->spec->name);
	r = uv_loop_close(&d->loop);
	if (r)
		CM_LOGW("daemon", "event loop closed with handles still open: %s", uv_strerror(r));
	if (d->cl_ready)
		cm_loop_free(&d->cl);
	cm_metrics_free(d->metrics);
	if (d->exit_status == 0)
		CM_LOGI("daemon", "stopped");
	return d->exit_status;
}
