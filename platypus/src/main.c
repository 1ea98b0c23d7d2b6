/* main.c - platypus, the push daemon of the suite: process entry point. */
#include "platypus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/http.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/tls.h"
#include "component.h"
#include "dispatch.h"
#include "rest.h"

static int rest_health(void *arg, struct cm_buf *out)
{
	struct platypus *s = arg;

	return s->prov ? pp_providers_health(s->prov, out) : 0;
}

/* The REST API on the suite's HTTP server (TLS with ALPN h2/http1.1 unless rest.tls is false). */
static int open_rest(struct platypus *s, const struct platypus_config *cfg)
{
	struct cm_http_config hc = {
	    .limits = {.max_connections = (unsigned)cfg->rest.max_connections,
	               .max_connections_per_source = (unsigned)cfg->rest.connections_per_source,
	               .max_body_bytes = cfg->rest.max_body,
	               .max_receiving_bytes = cfg->rest.max_unfinished,
	               .max_streams = 1000},
	    .tls = cfg->rest.tls ? s->tls : NULL,
	    .metrics_prefix = "platypus_rest",
	    .log_module = "rest",
	};
	int r;

	if (!cfg->rest.enabled)
		return 0;
	r = cm_http_server_alloc(&s->http, cm_daemon_loop(s->daemon), cm_daemon_metrics(s->daemon),
	                         &hc);
	r = r ? r : pp_rest_alloc(&s->rest, s->http, s->dispatch, rest_health, s);
	r = r ? r : cm_http_server_listen(s->http, (const struct sockaddr *)&cfg->rest.listen.sa);
	if (r) {
		CM_LOGE("rest", "rest.listen %s: %s", cfg->rest.listen.text, strerror(-r));
		return r;
	}
	CM_LOGI("rest", "MongoosePush v3 API on %s://%s", cfg->rest.tls ? "https" : "http",
	        cfg->rest.listen.text);
	return 0;
}

static int open_component(struct platypus *s, const struct platypus_config *cfg)
{
	const struct platypus_component_config *c = &cfg->component;
	struct pp_component_config cc = {
	    .server = (const struct sockaddr *)&c->server.sa,
	    .domain = c->domain,
	    .secret = c->secret.data,
	    .secret_len = c->secret.len,
	    .publish_secret = c->publish_secret.data,
	    .publish_secret_len = c->publish_secret.len,
	    .xmpp_domains = (const char *const *)c->xmpp_domains.v,
	    .nxmpp_domains = c->xmpp_domains.n,
	    .reconnect_min_ms = c->reconnect_min,
	    .reconnect_max_ms = c->reconnect_max,
	    .metrics = cm_daemon_metrics(s->daemon),
	};
	int r;

	if (!c->enabled)
		return 0;
	r = pp_component_alloc(&s->component, cm_daemon_main_loop(s->daemon), s->dispatch, &cc);
	if (r)
		CM_LOGE("component", "cannot start the component: %s", strerror(-r));
	else
		CM_LOGI("component", "XEP-0357 app server %s via %s, publishes from %s%s",
		        c->domain, c->server.text,
		        c->xmpp_domains.n ? c->xmpp_domains.v[0] : strchr(c->domain, '.') + 1,
		        c->xmpp_domains.n > 1 ? " and the other xmpp_domains" : "");
	return r;
}

static void force_close(struct cm_loop_timer *t);

static int platypus_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct platypus_config *cfg = cfgp;
	struct platypus *s = calloc(1, sizeof(*s));
	struct pp_dispatch_config dc = {0};
	int r;

	*state = s;
	if (!s)
		return -ENOMEM;
	s->daemon = d;
	s->cfg = cfg;
	cm_loop_timer_init(&s->force, force_close);
	r = cm_daemon_tls_open(d, "rest", &cfg->tls, "h2,http/1.1", &s->tls);
	if (r)
		return r;
	dc.queue_max = (unsigned)cfg->dispatch.queue_max;
	dc.retry_window_ms = cfg->dispatch.retry_window;
	dc.retry.max_attempts = (unsigned)cfg->dispatch.max_attempts;
	dc.retry.base_ms = cfg->dispatch.backoff_min;
	dc.retry.max_ms = cfg->dispatch.backoff_max;
	dc.metrics = cm_daemon_metrics(d);
	r = pp_dispatch_alloc(&s->dispatch, cm_daemon_main_loop(d), &dc);
	if (r)
		return r;
	r = pp_providers_open(&s->prov, d, cfg, s->dispatch);
	/* The front ends submit to s->dispatch. On failure close() closes what was opened. */
	r = r ? r : open_rest(s, cfg);
	return r ? r : open_component(s, cfg);
}

static int platypus_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct platypus *s = state;
	int r, r2;

	/* The certificate paths are those given at start; keys and accounts come from newcfg. */
	r = cm_daemon_tls_reload(d, "rest", s->tls);
	r2 = s->prov ? pp_providers_reload(s->prov, newcfg) : 0;
	if (s->component) {
		const struct platypus_component_config *c =
		    &((const struct platypus_config *)newcfg)->component;

		/* the secrets come from the files named at start, read again */
		if (c->enabled &&
		    pp_component_set_secrets(s->component, c->secret.data, c->secret.len,
		                             c->publish_secret.data, c->publish_secret.len) != 0)
			r2 = r2 ? r2 : -ENOMEM;
	}
	return r ? r : r2;
}

static void maybe_closed(struct platypus *s);

/* The REST listener and its connections are gone: in a stop, the last step. */
static void http_closed(void *arg)
{
	struct platypus *s = arg;

	s->http = NULL;
	if (s->close_done) {
		maybe_closed(s);
		return;
	}
	CM_LOGI("platypus", "every notification has its outcome");
	cm_daemon_stopped(s->daemon);
}

/* Both halves of the stop are over: nothing in care, every provider connection closed. The
 * REST answers were all given with the outcomes; now its connections can go. */
static void maybe_stopped(struct platypus *s)
{
	if (!s->stopping || !s->drained || !s->prov_closed || s->close_done)
		return;
	cm_loop_timer_stop(cm_daemon_main_loop(s->daemon), &s->force);
	if (s->http && !s->http_closing) {
		s->http_closing = true;
		cm_http_server_close(s->http, http_closed, s);
		return;
	}
	if (!s->http)
		http_closed(s);
}

/* The component's stream is over: it answered every publish it had passed on (a stop), or was
 * closed (close). */
static void component_closed(void *arg)
{
	struct platypus *s = arg;

	s->comp_closed = true;
	maybe_closed(s);
}

static void providers_closed(void *arg)
{
	struct platypus *s = arg;

	s->prov_closed = true;
	maybe_stopped(s);
	maybe_closed(s);
}

static void drained(void *arg)
{
	struct platypus *s = arg;

	s->drained = true;
	maybe_stopped(s);
}

static void force_close(struct cm_loop_timer *t)
{
	struct platypus *s = cm_list_entry(t, struct platypus, force);

	CM_LOGW("platypus", "stopping: cancelling the requests still in flight");
	pp_providers_close(s->prov, false, NULL, NULL);
}

/* SIGTERM: intake stops; notifications waiting for a retry or for a connection end now
 * (shutdown); requests on the wire finish or time out; then connections close. */
static void platypus_stop(struct cm_daemon *d, void *state)
{
	struct platypus *s = state;

	(void)d;
	if (s->stopping)
		return;
	s->stopping = true;
	if (!s->dispatch || !s->prov) {
		cm_daemon_stopped(s->daemon);
		return;
	}
	CM_LOGI("platypus", "stopping: %u notifications in flight", pp_dispatch_depth(s->dispatch));
	/* Intake first: no new requests or publishes; those in flight still get their answer. */
	if (s->http)
		cm_http_server_stop_accepting(s->http);
	if (s->component)
		pp_component_stop(s->component, component_closed, s);
	pp_dispatch_stop(s->dispatch, drained, s);
	pp_providers_close(s->prov, true, providers_closed, s);
	/* Requests still on the wire at 80% of shutdown_timeout are cancelled (outcome failed,
	 * shutdown), so that everything is released before the framework gives up. */
	if (!s->prov_closed)
		cm_loop_timer_start(cm_daemon_main_loop(d), &s->force,
		                    s->cfg->shutdown_timeout * 4 / 5);
}

static int platypus_health(void *state, struct cm_buf *details)
{
	struct platypus *s = state;

	return s->prov ? pp_providers_health(s->prov, details) : 0;
}

/* Everything platypus opened is closed: the framework may go on. */
static void maybe_closed(struct platypus *s)
{
	void (*done)(struct cm_daemon * d) = s->close_done;

	if (!done || (s->prov && !s->prov_closed) || (s->component && !s->comp_closed) || s->http)
		return;
	s->close_done = NULL;
	done(s->daemon);
}

/* After a stop (or a failed start): close whatever is still open - provider connections
 * (in-flight requests are cancelled), the component's stream, the REST listener and its
 * connections - while the loop runs their callbacks. done once every one has reported. */
static void platypus_close(struct cm_daemon *d, void *state, void (*done)(struct cm_daemon *d))
{
	struct platypus *s = state;

	s->close_done = done;
	cm_loop_timer_stop(cm_daemon_main_loop(d), &s->force);
	if (s->prov && !s->prov_closed)
		pp_providers_close(s->prov, false, providers_closed, s);
	if (s->dispatch)
		pp_dispatch_stop(s->dispatch, NULL, NULL); /* retries end with their last result */
	if (s->component && !s->comp_closed)
		pp_component_close(s->component, component_closed, s);
	if (s->http && !s->http_closing) {
		s->http_closing = true;
		cm_http_server_close(s->http, http_closed, s);
	}
	maybe_closed(s);
}

/* Memory only: close() has closed every handle. */
static void platypus_free(void *state)
{
	struct platypus *s = state;

	if (!s)
		return;
	pp_component_free(s->component);
	pp_rest_free(s->rest);
	pp_providers_free(s->prov);
	pp_dispatch_free(s->dispatch);
	cm_tls_free(s->tls);
	free(s);
}

static const struct cm_daemon_spec platypus_spec = {
    .name = "platypus",
    .summary =
        "push daemon: XEP-0357 app server and MongoosePush-compatible REST API for APNs and FCM.",
    .schema = &platypus_config_schema,
    .log_offset = offsetof(struct platypus_config, log),
    .admin_offset = offsetof(struct platypus_config, admin),
    .drain_offset = offsetof(struct platypus_config, shutdown_timeout),
    .start = platypus_start,
    .reload = platypus_reload,
    .stop = platypus_stop,
    .close = platypus_close,
    .free = platypus_free,
    .health = platypus_health,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&platypus_spec, argc, argv);
}
