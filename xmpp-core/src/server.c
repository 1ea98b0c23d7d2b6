/* server.c - the server and its shards: start, the workers' share of listeners, stop (server.h). */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_api.h"
#include "c2s.h"
#include "cm/admin.h"
#include "cm/err.h"
#include "cm/crypto.h"
#include "cm/daemon.h"
#include "cm/listener.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "component.h"
#include "extdisco.h"
#include "iq.h"
#include "mam.h"
#include "avatar.h"
#include "pep.h"
#include "push.h"
#include "sasl.h"
#include "store.h"
#include "throttle.h"
#include "user.h"
#include "upload.h"

unsigned xc_home(const struct xc_server *srv, const char *bare, size_t len)
{
	return (unsigned)(cm_hash(srv->home_key, bare, len) % srv->nshards);
}

const char *xc_local_host(const struct xc_server *srv, const char *domain, size_t len)
{
	const struct cm_cfg_strlist *h = &srv->cfg->hosts;

	for (size_t i = 0; i < h->n; i++)
		if (strlen(h->v[i]) == len && memcmp(h->v[i], domain, len) == 0)
			return h->v[i];
	return NULL;
}

void xc_new_id(struct xc_server *srv, char out[17])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuv";
	uint64_t v = atomic_fetch_add(&srv->next_id, 1);

	/* a random start makes ids unguessable across restarts; the counter keeps them unique */
	for (int i = 15; i >= 0; i--) {
		out[i] = digits[v & 31];
		v >>= 5;
	}
	out[16] = '\0';
}

/* --- metrics ------------------------------------------------------------------------------------
 */

#define PLAIN_CACHE_MAX 100000 /* verified PLAIN logins remembered per shard (~100 bytes each) */

static const double queue_buckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

static const double route_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   1};

#define M(member) offsetof(struct xc_metrics, member)
static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_GAUGE_DEF(struct xc_metrics, sessions, "xmpp_sessions", "Bound client sessions.",
                        "listener", "c2s"),
    CM_METRIC_GAUGE_DEF(struct xc_metrics, connections, "xmpp_connections",
                        "Client connections, bound or not.", "listener", "c2s"),
    CM_METRIC_GAUGE_DEF(struct xc_metrics, ws_connections, "xmpp_connections",
                        "Client connections, bound or not.", "listener", "websocket"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_ok[XC_SASL_PLAIN], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "PLAIN", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_ok[XC_SASL_SCRAM_SHA1], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "SCRAM-SHA-1", "result",
                          "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_ok[XC_SASL_SCRAM_SHA256], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "SCRAM-SHA-256", "result",
                          "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_fail[XC_SASL_PLAIN], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "PLAIN", "result",
                          "failed"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_fail[XC_SASL_SCRAM_SHA1], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "SCRAM-SHA-1", "result",
                          "failed"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_fail[XC_SASL_SCRAM_SHA256], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "SCRAM-SHA-256", "result",
                          "failed"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_ok[XC_SASL_HT], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "HT-SHA-256", "result",
                          "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, logins_fail[XC_SASL_HT], "xmpp_logins_total",
                          "Logins by mechanism and result.", "mechanism", "HT-SHA-256", "result",
                          "failed"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, sasl2_logins, "xmpp_sasl2_logins_total",
                          "Successful logins over SASL2 (XEP-0388), whatever the mechanism.", NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, bind2_bound, "xmpp_bind2_total",
                          "Resources bound inline in a SASL2 login (XEP-0386).", NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, fast_issued, "xmpp_fast_tokens_total",
                          "FAST tokens (XEP-0484) by event.", "event", "issued"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, fast_revoked, "xmpp_fast_tokens_total",
                          "FAST tokens (XEP-0484) by event.", "event", "revoked"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, auth_throttled, "xmpp_logins_throttled_total",
                          "Logins refused at once: too many failures from the address or for "
                          "the account.",
                          NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, in_message, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "in", "kind", "message"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, in_presence, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "in", "kind", "presence"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, in_iq, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "in", "kind", "iq"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, out_message, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "out", "kind", "message"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, out_presence, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "out", "kind", "presence"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, out_iq, "xmpp_stanzas_total",
                          "Stanzas by direction and kind.", "direction", "out", "kind", "iq"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, stream_errors, "xmpp_stream_errors_total",
                          "Client streams ended with a stream error.", NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, offline_stored, "xmpp_offline_messages_total",
                          "Offline messages by what happened to them.", "result", "stored"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, offline_refused, "xmpp_offline_messages_total",
                          "Offline messages by what happened to them.", "result", "refused"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, offline_delivered, "xmpp_offline_messages_total",
                          "Offline messages by what happened to them.", "result", "delivered"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, slow_readers_cut, "xmpp_slow_readers_cut_total",
                          "Client streams closed because the client did not read what it was "
                          "sent.",
                          NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, trims, "xmpp_c2s_trims_total",
                          "Quiet client streams that gave back their parser and buffers "
                          "(c2s.trim_after).",
                          NULL),
    CM_METRIC_GAUGE_DEF(struct xc_metrics, sm_hibernated, "xmpp_sm_hibernated_sessions",
                        "Sessions whose connection is gone, waiting to be resumed (XEP-0198).",
                        NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, sm_resumed_ok, "xmpp_sm_resumptions_total",
                          "Stream resumptions (XEP-0198) by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, sm_resumed_failed, "xmpp_sm_resumptions_total",
                          "Stream resumptions (XEP-0198) by result.", "result", "failed"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, sm_rerouted, "xmpp_sm_rerouted_total",
                          "Stanzas a client never acknowledged, sent elsewhere when its session "
                          "ended (other sessions, offline storage, an error to the sender).",
                          NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, sm_acks_held, "xmpp_sm_acks_held_total",
                          "Acknowledgements (XEP-0198 <a/>) that waited until the messages they "
                          "count were stored or delivered.",
                          NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, csi_flushed, "xmpp_csi_flushed_total",
                          "Stanzas held back while their client was inactive (XEP-0352), then "
                          "sent.",
                          NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, csi_superseded, "xmpp_csi_superseded_total",
                          "Presence updates held for an inactive client and dropped because a "
                          "later one from the same sender replaced them.",
                          NULL),
    CM_METRIC_HISTOGRAM_DEF(struct xc_metrics, route_latency, "xmpp_route_latency_seconds",
                            "From a stanza read to its delivery on another shard.", route_buckets,
                            sizeof(route_buckets) / sizeof(route_buckets[0]), NULL),
    CM_METRIC_HISTOGRAM_DEF(struct xc_metrics, store_latency, "xmpp_store_latency_seconds",
                            "A store request, from submission to its answer (queue included).",
                            route_buckets, sizeof(route_buckets) / sizeof(route_buckets[0]), NULL),
    CM_METRIC_HISTOGRAM_DEF(struct xc_metrics, offline_queue, "xmpp_offline_queue_messages",
                            "Offline messages handed over at once to a user coming back.",
                            queue_buckets, sizeof(queue_buckets) / sizeof(queue_buckets[0]), NULL),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, backups_ok, "xmpp_backups_total",
                          "Backups of the database (POST /api/v1/backup) by result.", "result",
                          "ok"),
    CM_METRIC_COUNTER_DEF(struct xc_metrics, backups_failed, "xmpp_backups_total",
                          "Backups of the database (POST /api/v1/backup) by result.", "result",
                          "failed"),
    CM_METRIC_GAUGE_DEF(struct xc_metrics, backup_last,
                        "xmpp_backup_last_success_timestamp_seconds",
                        "When the last backup of the database was written (Unix time; 0: none "
                        "since the start).",
                        NULL),
};
#undef M

/* --- shards on the worker loops ------------------------------------------------------------------
 */

static void on_c2s_accept(struct cm_listener *ln, struct cm_stream *s)
{
	struct xc_listener_ctx *lx = cm_listener_data(ln);

	if (lx->websocket)
		xc_c2s_accept_ws(lx->sh, s);
	else
		xc_c2s_accept(lx->sh, s, lx->direct_tls);
}

static void on_c2s_refused(struct cm_listener *ln, enum cm_listener_refusal why,
                           const struct sockaddr *peer)
{
	struct xc_listener_ctx *lx = cm_listener_data(ln);
	char src[48];
	uint64_t held;

	if (!cm_log_limit_pass(&lx->sh->log_refused, uv_now(lx->sh->loop->uv), 10000, &held))
		return;
	cm_srclimit_format(peer, src, sizeof(src));
	CM_LOGW("c2s", "connection from %s refused: %s (%" PRIu64 " more since the last line)", src,
	        why == CM_LISTENER_REFUSED_CAP ? "c2s.max_connections reached"
	                                       : "c2s.connections_per_source reached",
	        held);
}

static const struct cm_listener_events c2s_events = {
    .accept = on_c2s_accept,
    .refused = on_c2s_refused,
};

static int admit(void *arg, const struct sockaddr *peer)
{
	return cm_srclimit_take(arg, peer);
}

static void release(void *arg, const struct sockaddr *peer)
{
	cm_srclimit_release(arg, peer);
}

/* The listeners of one list: cleartext (tls NULL) or TLS from the first byte, XMPP streams or
 * WebSocket (websocket). */
static int listen_list(struct xc_shard *sh, const struct cm_cfg_strlist *l, struct cm_tls *tls,
                       bool websocket)
{
	const struct xc_config *cfg = sh->srv->cfg;

	for (size_t i = 0; i < l->n; i++) {
		struct cm_cfg_addr a = {0};
		struct xc_listener_ctx *lx = &sh->lctx[sh->nlisteners];
		struct cm_listener_config lc = {
		    .reuseport = true,
		    .max_conns = (unsigned)cfg->c2s.max_connections,
		    .stream = {.tls = tls,
		               .handshake_ms = cfg->c2s.login_timeout,
		               .high_water = 64 * 1024,
		               /* cm_ws queues above the stream's high-water mark itself */
		               .max_unsent = websocket ? 128 * 1024 : cfg->c2s.max_queued,
		               .nodelay = true,
		               .log_mod = "c2s"},
		    .source_admit = admit,
		    .source_release = release,
		    .source_arg = sh->srv->per_source,
		};
		int r;

		if (cm_cfg_parse_addr(l->v[i], &a, NULL, 0) != 0)
			return -EINVAL;
		lc.addr = (struct sockaddr *)&a.sa;
		lc.addrlen = a.salen;
		lx->sh = sh;
		lx->direct_tls = tls != NULL;
		lx->websocket = websocket;
		r = cm_listener_open(&sh->listeners[sh->nlisteners], sh->loop, &lc, &c2s_events,
		                     lx);
		if (r) {
			CM_LOGE("c2s", "listen %s: %s", l->v[i], uv_strerror(r));
			return r;
		}
		sh->nlisteners++;
	}
	return 0;
}

/* WebSocket listeners: configured, and with their certificate unless a proxy does TLS. */
static bool ws_enabled(const struct xc_server *srv)
{
	const struct xc_websocket_config *w = &srv->cfg->websocket;

	return w->listen.n > 0 && (!w->tls || srv->ws_tls);
}

static int worker_init(struct cm_loop *l, void *arg)
{
	struct xc_server *srv = arg;
	const struct xc_config *cfg = srv->cfg;
	struct xc_shard *sh = srv->shards[l->index - 1];
	size_t n = cfg->c2s.listen.n + (srv->tls ? cfg->c2s.tls_listen.n : 0) +
	           (ws_enabled(srv) ? cfg->websocket.listen.n : 0);
	int r;

	xc_shard_attach(sh, l);
	sh->listeners = calloc(n + 1, sizeof(*sh->listeners));
	sh->lctx = calloc(n + 1, sizeof(*sh->lctx));
	if (!sh->listeners || !sh->lctx)
		return -ENOMEM;
	r = listen_list(sh, &cfg->c2s.listen, NULL, false);
	if (!r && srv->tls)
		r = listen_list(sh, &cfg->c2s.tls_listen, srv->tls, false);
	if (!r && ws_enabled(srv))
		r = listen_list(sh, &cfg->websocket.listen, srv->ws_tls, true);
	if (!r && sh->idx == 0)
		r = xc_component_listen(sh);
	if (!r && sh->idx == 0)
		xc_mam_purge_start(srv->mam, sh);
	if (!r && sh->idx == 0)
		xc_push_start(srv->push, sh);
	return r;
}

/* On the main loop: the drain is over. The call holds the daemon, not the server: it may run
 * after the server is freed (cm_daemon_stopped() is then a no-op). */
/* On the main loop, once every shard is drained: the store may still owe answers to writes the
 * sessions made before they went (a roster change, a PEP publish), and to what those answers
 * start; they run on the shards' loops, which are still up. The daemon stops when none is owed
 * (within its drain timeout), so that no answer finds its loop gone. */
static void store_settled(struct cm_loop_timer *t)
{
	struct xc_server *srv = cm_list_entry(t, struct xc_server, settle);

	if (xc_store_owed(srv->store) == 0) {
		cm_daemon_stopped(srv->daemon);
		return;
	}
	cm_loop_timer_start(cm_daemon_main_loop(srv->daemon), &srv->settle, 5);
}

static void on_drained(void *arg)
{
	struct xc_server *srv = arg;

	cm_loop_timer_init(&srv->settle, store_settled);
	store_settled(&srv->settle);
}

void xc_server_close(struct xc_server *srv)
{
	if (srv && cm_loop_timer_active(&srv->settle))
		cm_loop_timer_stop(cm_daemon_main_loop(srv->daemon), &srv->settle);
}

/* On the worker's thread: the drain has reached this shard, or the shard had nothing left. */
static void shard_drained(struct xc_shard *sh)
{
	struct xc_server *srv = sh->srv;

	if (sh->drained)
		return;
	sh->drained = true;
	if (atomic_fetch_sub(&srv->draining, 1) == 1)
		(void)cm_loop_call(cm_daemon_main_loop(srv->daemon), on_drained, srv);
	/* (without memory, the drain timeout ends the wait) */
}

void xc_shard_conn_gone(struct xc_shard *sh)
{
	if (sh->stopping && cm_list_empty(&sh->conns) && cm_list_empty(&sh->comps) && !sh->storing)
		shard_drained(sh);
}

/* On the worker's thread: stop listening and tell every connection to go (gracefully). */
static void shard_drain(struct xc_shard *sh)
{
	if (sh->stopping)
		return;
	sh->stopping = true;
	for (size_t i = 0; i < sh->nlisteners; i++)
		cm_listener_close(sh->listeners[i], NULL, NULL);
	sh->nlisteners = 0;
	xc_c2s_close_all(sh, false);
	if (sh->idx == 0)
		xc_component_close_all(sh, false);
	xc_shard_conn_gone(sh);
}

/* The worker stops: whatever is still open goes at once. */
static void worker_stop(struct cm_loop *l, void *arg)
{
	struct xc_shard *sh = l->data;

	(void)arg;
	if (!sh)
		return;
	sh->drained = true; /* past the drain: nobody waits for it any more */
	xc_mam_purge_stop(sh->srv->mam, sh);
	xc_push_shard_stop(sh);
	shard_drain(sh);
	xc_c2s_close_all(sh, true);
	if (sh->idx == 0)
		xc_component_close_all(sh, true);
}

/* --- start and stop ----------------------------------------------------------------------------
 */

static int make_scope(struct xc_server *srv)
{
	int r = cm_xml_node_new(&srv->scope, "stream:stream", CM_XML_NS_STREAM);

	return r ? r : cm_xml_node_declare_ns(srv->scope, NULL, CM_XML_NS_CLIENT);
}

/* The account API on the admin port, when there is one. */
static int start_api(struct xc_server *srv)
{
	struct cm_admin *adm = cm_daemon_admin(srv->daemon);
	const struct cm_secret *t = &srv->cfg->api_token;

	if (!adm) {
		CM_LOGI("api", "admin.enabled is false: no account API (xmppctl cannot be used)");
		return 0;
	}
	if (!t->data)
		CM_LOGW("api",
		        "api_token is not set: the account API is off (xmppctl cannot be used)");
	return xc_admin_api_alloc(&srv->api, cm_admin_http(adm), srv, t->data, t->len);
}

/* The base URL of upload slots: upload.url without its trailing '/', or https://HOST:PORT with
 * the first host and the first listener's port. */
static int upload_base(struct xc_server *srv)
{
	const struct xc_upload_config *u = &srv->cfg->upload;
	const char *l, *port;
	size_t n;

	if (!u->enabled)
		return 0;
	if (u->url && *u->url) {
		n = strlen(u->url);
		while (n > 0 && u->url[n - 1] == '/')
			n--;
		srv->upload_base = strndup(u->url, n);
		return srv->upload_base ? 0 : -ENOMEM;
	}
	l = u->listen.n ? u->listen.v[0] : "";
	port = strrchr(l, ':');
	if (asprintf(&srv->upload_base, "https://%s:%s", srv->cfg->hosts.v[0],
	             port ? port + 1 : "443") < 0) {
		srv->upload_base = NULL;
		return -ENOMEM;
	}
	return 0;
}

static const char *const ws_protocols[] = {"xmpp", NULL};

int xc_server_init(struct xc_server **out, const struct xc_config *cfg, struct cm_metrics *metrics,
                   unsigned nshards)
{
	struct xc_store_config sc = {.backend = &xc_store_sqlite, .where = cfg->storage.path};
	struct xc_server *srv = calloc(1, sizeof(*srv));
	char err[CM_ERR_MAX];
	uint64_t seed = 0;
	int r;

	*out = srv;
	if (!srv)
		return -ENOMEM;
	srv->cfg = cfg;
	srv->started_ns = uv_hrtime();
	srv->ws_cfg = (struct cm_ws_config){
	    .path = cfg->websocket.path,
	    .protocols = ws_protocols,
	    .handshake_ms = cfg->c2s.login_timeout,
	    .max_message = cfg->websocket.max_message,
	    .max_queued = cfg->c2s.max_queued,
	    .log_mod = "websocket",
	};
	r = cm_crypto_random(srv->home_key, sizeof(srv->home_key));
	r = r ? r : cm_crypto_random(srv->decoy_secret, sizeof(srv->decoy_secret));
	r = r ? r : cm_crypto_random(srv->upload_key, sizeof(srv->upload_key));
	r = r ? r : upload_base(srv);
	r = r ? r : cm_crypto_random(&seed, sizeof(seed));
	if (r)
		return r;
	atomic_init(&srv->next_id, seed >> 1);
	r = cm_metrics_register(metrics, &srv->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("xmpp", "%s", err);
		return r;
	}
	r = cm_srclimit_alloc(&srv->per_source, (unsigned)cfg->c2s.connections_per_source);
	r = r ? r : xc_throttle_alloc(&srv->throttle, 60000);
	r = r ? r : xc_throttle_alloc(&srv->reg_throttle, 3600000);
	r = r ? r : make_scope(srv);
	if (r)
		return r;
	r = xc_extdisco_alloc(&srv->extdisco, &cfg->extdisco, metrics, err, sizeof(err));
	if (r) {
		CM_LOGE("extdisco", "%s", err);
		return r;
	}
	r = xc_iq_caps_ver(srv->caps_ver, sizeof(srv->caps_ver), cfg,
	                   xc_extdisco_enabled(srv->extdisco));
	if (r)
		return r;
	sc.latency = srv->m.store_latency;
	sc.linger_ms = (unsigned)cfg->storage.linger_ms;
	sc.cache_mb = (unsigned)cfg->storage.cache_mb;
	r = xc_store_open(&srv->store, &sc, err, sizeof(err));
	if (r) {
		CM_LOGE("store", "cannot open the store: %s", err);
		return r;
	}
	CM_LOGI("store", "accounts and messages in %s", cfg->storage.path);
	r = xc_mam_alloc(&srv->mam, srv, metrics);
	r = r ? r : xc_pep_alloc(&srv->pep, srv, metrics);
	r = r ? r : xc_avatars_alloc(&srv->avatars, metrics);
	r = r ? r : xc_push_alloc(&srv->push, srv, metrics);
	if (r)
		return r;
	srv->nshards = nshards ? nshards : 1;
	srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
	if (!srv->shards)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->nshards; i++) {
		struct xc_shard *sh = calloc(1, sizeof(*sh));

		if (!sh)
			return -ENOMEM;
		sh->srv = srv;
		sh->idx = i;
		cm_list_init(&sh->conns);
		cm_list_init(&sh->comps);
		cm_list_init(&sh->sm_hibernated);
		cm_buf_init(&sh->scratch, 0);
		srv->shards[i] = sh;
		r = cm_map_init(&sh->users, 1024);
		r = r ? r : cm_map_init(&sh->sm_ids, 64);
		r = r ? r : xc_plain_cache_init(&sh->plain, PLAIN_CACHE_MAX);
		if (r)
			return r;
	}
	return 0;
}

void xc_shard_attach(struct xc_shard *sh, struct cm_loop *l)
{
	sh->loop = l;
	l->data = sh;
}

int xc_server_start(struct xc_server **out, struct cm_daemon *d, const struct xc_config *cfg)
{
	struct cm_worker_ops ops = {.init = worker_init, .stop = worker_stop};
	struct xc_server *srv;
	long n = cfg->workers > 0 ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
	int r = xc_server_init(out, cfg, cm_daemon_metrics(d), n > 0 ? (unsigned)n : 1);

	srv = *out;
	if (r)
		return r;
	srv->daemon = d;
	r = cm_daemon_tls_open(d, "c2s", &cfg->tls, "xmpp-client", &srv->tls);
	if (r)
		return r;
	if (!srv->tls)
		CM_LOGW("c2s", "no tls.certificate: clients connect without TLS (tests only)");
	if (cfg->websocket.listen.n && cfg->websocket.tls) {
		r = cm_daemon_tls_open(d, "websocket", &cfg->tls, "http/1.1", &srv->ws_tls);
		if (r)
			return r;
		if (!srv->ws_tls)
			CM_LOGW("websocket",
			        "no tls.certificate: the WebSocket listeners stay closed "
			        "(websocket.tls is true)");
	}
	/* before the workers: their shards count slots in its metrics */
	r = xc_upload_alloc(&srv->upload, srv, d, cm_daemon_metrics(d));
	if (r)
		return r;
	ops.arg = srv;
	ops.slice_us = (unsigned)cfg->worker_slice_us;
	r = cm_daemon_workers(d, srv->nshards, &ops, &srv->workers);
	if (r)
		return r;
	for (size_t i = 0; i < cfg->c2s.listen.n; i++)
		CM_LOGI("c2s", "clients on %s (STARTTLS%s)", cfg->c2s.listen.v[i],
		        cfg->c2s.require_tls ? " required" : "");
	for (size_t i = 0; srv->tls && i < cfg->c2s.tls_listen.n; i++)
		CM_LOGI("c2s", "clients on %s (direct TLS)", cfg->c2s.tls_listen.v[i]);
	for (size_t i = 0; ws_enabled(srv) && i < cfg->websocket.listen.n; i++)
		CM_LOGI("websocket", "browsers on %s://%s%s", srv->ws_tls ? "wss" : "ws",
		        cfg->websocket.listen.v[i], cfg->websocket.path);
	CM_LOGI("xmpp", "serving %zu host(s) on %u worker(s)", cfg->hosts.n, srv->nshards);
	r = xc_upload_start(srv->upload);
	if (r)
		return r;
	(void)cm_listener_warn_caps("c2s", "c2s.connections_per_source",
	                            cfg->c2s.connections_per_source, "c2s.max_connections",
	                            cfg->c2s.max_connections);
	return start_api(srv);
}

/* --- stopping ----------------------------------------------------------------------------------
 */

static void on_drain(void *sh)
{
	shard_drain(sh);
}

void xc_server_stop(struct xc_server *srv)
{
	srv->stopping = true;
	if (!srv->workers) {
		cm_daemon_stopped(srv->daemon);
		return;
	}
	atomic_store(&srv->draining, srv->nshards);
	for (unsigned i = 0; i < srv->nshards; i++)
		(void)cm_loop_call(srv->shards[i]->loop, on_drain, srv->shards[i]);
	/* (a shard that could not be told is closed by its worker's stop; the drain timeout ends
	 * the wait) */
}

static void shard_free(struct xc_shard *sh)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	if (!sh)
		return;
	/* users still held by store answers that will never come */
	cm_map_iter_init(&it, &sh->users);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		struct xc_user *u = cm_list_entry(n, struct xc_user, node);

		u->busy = 0;
		u->held = 0;
		xc_user_drop_waiting(u);
		cm_list_init(&u->sessions);
		u->rstate = XC_ROSTER_NONE;
		xc_user_put(sh, u);
	}
	cm_map_close(&sh->users);
	cm_map_close(&sh->sm_ids); /* empty: the shard's stop ended every session */
	xc_plain_cache_close(&sh->plain);
	cm_buf_free(&sh->scratch);
	xc_pep_shard_close(sh);
	xc_push_shard_close(sh);
	free(sh->listeners);
	free(sh->lctx);
	free(sh->comp_listeners);
	free(sh);
}

void xc_server_free(struct xc_server *srv)
{
	if (!srv)
		return;
	/* the workers are stopped by now (their loops closed, not yet freed): nothing submits to
	 * the store any more, and what it still hands back to a worker is refused and freed */
	xc_store_close(srv->store);
	for (unsigned i = 0; srv->shards && i < srv->nshards; i++)
		shard_free(srv->shards[i]);
	free(srv->shards);
	cm_srclimit_free(srv->per_source);
	xc_throttle_free(srv->throttle);
	xc_throttle_free(srv->reg_throttle);
	cm_xml_node_free(srv->scope);
	cm_tls_free(srv->tls);
	cm_tls_free(srv->ws_tls);
	xc_admin_api_free(srv->api);
	xc_mam_free(srv->mam);
	xc_pep_free(srv->pep);
	xc_avatars_free(srv->avatars);
	free(srv->upload_base);
	xc_upload_free(srv->upload);
	xc_extdisco_free(srv->extdisco);
	xc_push_free(srv->push);
	free(srv);
}
