/* push.c - push notifications (push.h): <enable/> and <disable/>, the registrations of the
 * shard's users in memory, pushes sent and their answers.
 *
 * A user's registrations are read from the store the first time an event (or a hibernating
 * session) needs them and kept on the home shard in struct push_user; what arrives meanwhile is
 * counted and applied once they are there. Every answer of the store about a user's
 * registrations (enable, disable, list) carries the whole list, which replaces the one in
 * memory; a registration that stays keeps its burst. Users whose entry has had nothing to do
 * for IDLE_MS are forgotten (a sweep every SWEEP_MS). */
#include "push.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "c2s.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/map.h"
#include "cm/metrics.h"
#include "mam.h"
#include "pep.h"
#include "router.h"
#include "server.h"
#include "sm.h"
#include "stanza.h"
#include "store.h"
#include "user.h"

#define NS_SID        "urn:xmpp:sid:0"
#define NS_PUBSUB_OPT "http://jabber.org/protocol/pubsub#publish-options"
#define ID_PREFIX     "push-"
#define SEEN_MAX      16     /* message keys remembered per user, to count each message once */
#define NODE_MAX      1024   /* bytes of a node name */
#define FORM_MAX      8192   /* bytes of a publish-options form as XML */
#define IDLE_MS       600000 /* a user entry with nothing to do is kept this long */
#define SWEEP_MS      60000
#define SENDER_MAX    3072 /* a bare JID */

struct push_metrics {
	struct cm_counter *sent, *ok;
	struct cm_counter *failed_wait, *failed_timeout, *failed_unroutable, *failed_rejected;
	struct cm_counter *disabled_rejected, *disabled_failures, *replaced;
	struct cm_counter *coalesced;
	struct cm_gauge *registrations;
};

struct xc_push {
	struct xc_server *srv;            /* borrowed */
	const struct xc_push_config *cfg; /* borrowed */
	struct push_metrics m;
};

struct push_user;

struct flight;

/* One registration in memory. */
struct reg {
	struct cm_list link; /* in push_user.regs */
	struct push_user *u; /* borrowed */
	char *jid;           /* owned: the app server */
	char *node;          /* owned */
	char *form;          /* owned: the publish-options form (XML text), or NULL */
	struct xc_push_burst b;
	unsigned failures;           /* transient failures in a row */
	struct cm_loop_timer rewake; /* push.rewake after a push */
	struct flight *fl;           /* borrowed: the push waiting for its answer */
};

/* A push waiting for its answer. */
struct flight {
	struct cm_list link; /* in push_shard.flights */
	struct xc_push_shard *ps;
	char id[32];
	bool again;      /* the REST hand-off's transfer failed once and was sent again */
	struct reg *reg; /* borrowed; NULL once the registration is gone */
	char *jid;       /* owned: whom it went to (an answer must come from there) */
	struct cm_loop_timer timeout;
	struct xc_push_post *post; /* the REST hand-off's transfer, until it is done */
};

enum load_state { LOAD_NONE, LOAD_RUNNING, LOAD_DONE };

struct push_user {
	struct cm_map_node node; /* in push_shard.users */
	struct xc_push_shard *ps;
	char *bare; /* owned */
	enum load_state st;
	struct cm_list regs; /* of struct reg, oldest first */
	/* what arrived while the registrations were being read */
	unsigned pending;
	bool pending_urgent;
	bool extend; /* a session hibernated meanwhile */
	/* the last message's, for the summary */
	char *sender;            /* owned, or NULL */
	char *body;              /* owned, or NULL */
	uint64_t seen[SEEN_MAX]; /* hashes of the messages counted lately */
	unsigned nseen;
	uint64_t used_ms; /* loop ms of the last event */
	unsigned busy;    /* store requests on their way that hold this entry */
};

struct xc_push_shard {
	struct xc_shard *sh; /* borrowed */
	struct cm_map users;
	struct cm_list flights;
	uint64_t next_id;
	struct cm_loop_timer sweep;
	uint64_t hash_key[2];
	struct xc_push_http *http; /* owned: the REST hand-off's client, once needed */
	bool stopping;
};

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct push_metrics, sent, "xmpp_push_sent_total",
                          "Push notifications sent to app servers (XEP-0357).", NULL),
    CM_METRIC_COUNTER_DEF(struct push_metrics, ok, "xmpp_push_results_total",
                          "Answers to push notifications, by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, failed_wait, "xmpp_push_results_total",
                          "Answers to push notifications, by result.", "result", "wait"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, failed_timeout, "xmpp_push_results_total",
                          "Answers to push notifications, by result.", "result", "timeout"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, failed_unroutable, "xmpp_push_results_total",
                          "Answers to push notifications, by result.", "result", "unroutable"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, failed_rejected, "xmpp_push_results_total",
                          "Answers to push notifications, by result.", "result", "rejected"),
    CM_METRIC_COUNTER_DEF(
        struct push_metrics, disabled_rejected, "xmpp_push_registrations_removed_total",
        "Push registrations the server removed, by reason.", "reason", "rejected"),
    CM_METRIC_COUNTER_DEF(
        struct push_metrics, disabled_failures, "xmpp_push_registrations_removed_total",
        "Push registrations the server removed, by reason.", "reason", "failures"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, replaced, "xmpp_push_registrations_removed_total",
                          "Push registrations the server removed, by reason.", "reason",
                          "replaced"),
    CM_METRIC_COUNTER_DEF(struct push_metrics, coalesced, "xmpp_push_coalesced_total",
                          "Messages counted into a later push instead of making their own.", NULL),
    CM_METRIC_GAUGE_DEF(struct push_metrics, registrations, "xmpp_push_registrations",
                        "Push registrations (XEP-0357) in the store.", NULL),
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const struct xc_push_config *cfg_of(const struct xc_shard *sh)
{
	return &sh->srv->cfg->push;
}

static struct push_metrics *metrics_of(const struct xc_shard *sh)
{
	return &sh->srv->push->m;
}

/* --- the module ------------------------------------------------------------------------------ */

static void on_archived(void *arg, struct xc_shard *sh, const char *user, const char *id,
                        const char *stanza);

int xc_push_alloc(struct xc_push **out, struct xc_server *srv, struct cm_metrics *metrics)
{
	struct xc_push *p = calloc(1, sizeof(*p));
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->srv = srv;
	p->cfg = &srv->cfg->push;
	r = cm_metrics_register(metrics, &p->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("push", "%s", err);
		free(p);
		return r;
	}
	if (p->cfg->rest.n && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		CM_LOGE("push", "cannot initialise libcurl for push.rest");
		free(p);
		return -ENOMEM;
	}
	if (p->cfg->enabled && srv->mam) {
		struct xc_mam_events ev = {.archived_unattended = on_archived, .arg = p};

		xc_mam_set_events(srv->mam, &ev);
	}
	*out = p;
	return 0;
}

void xc_push_free(struct xc_push *p)
{
	if (p && p->cfg->rest.n)
		curl_global_cleanup();
	free(p);
}

bool xc_push_enabled(const struct xc_push *p)
{
	return p && p->cfg->enabled;
}

static void on_count(struct xc_store_req *r)
{
	struct xc_shard *sh = r->arg;

	if (r->err)
		CM_LOGW("push", "cannot count the push registrations: %s", strerror(-r->err));
	else
		cm_metrics_gauge_add(metrics_of(sh)->registrations, (double)r->count);
	xc_store_req_free(r);
}

void xc_push_start(struct xc_push *p, struct xc_shard *sh)
{
	struct xc_store_req *r;

	if (!xc_push_enabled(p))
		return;
	r = xc_store_req_new(XC_STORE_PUSH_COUNT, sh->loop, on_count, sh);
	if (!r || xc_store_submit(sh->srv->store, r) != 0) {
		CM_LOGW("push", "cannot count the push registrations: no memory or store");
		xc_store_req_free(r);
	}
}

/* --- the shard's users ----------------------------------------------------------------------- */

static void reg_free(struct reg *g)
{
	struct xc_shard *sh = g->u->ps->sh;

	cm_loop_timer_stop(sh->loop, &g->rewake);
	if (g->fl)
		g->fl->reg = NULL;
	free(g->jid);
	free(g->node);
	free(g->form);
	free(g);
}

static void user_free(struct push_user *u)
{
	struct cm_list *p;

	while ((p = cm_list_pop(&u->regs)) != NULL)
		reg_free(cm_list_entry(p, struct reg, link));
	free(u->bare);
	free(u->sender);
	free(u->body);
	free(u);
}

static void flight_free(struct flight *fl)
{
	if (fl->post)
		xc_push_post_cancel(fl->ps->http, fl->post);
	cm_loop_timer_stop(fl->ps->sh->loop, &fl->timeout);
	cm_list_remove(&fl->link);
	if (fl->reg)
		fl->reg->fl = NULL;
	free(fl->jid);
	free(fl);
}

static void on_sweep(struct cm_loop_timer *t)
{
	struct xc_push_shard *ps = cm_list_entry(t, struct xc_push_shard, sweep);
	uint64_t now = mono_ms();
	struct cm_map_iter it;
	struct cm_map_node *n;

	cm_map_iter_init(&it, &ps->users);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		struct push_user *u = cm_list_entry(n, struct push_user, node);
		bool active = u->busy || u->st == LOAD_RUNNING || now - u->used_ms < IDLE_MS;
		struct cm_list *p;

		cm_list_foreach(p, &u->regs)
		{
			struct reg *g = cm_list_entry(p, struct reg, link);

			active = active || g->fl || cm_loop_timer_active(&g->rewake);
		}
		if (!active) {
			cm_map_remove(&ps->users, &u->node);
			user_free(u);
		}
	}
	if (cm_map_count(&ps->users))
		cm_loop_timer_start(ps->sh->loop, &ps->sweep, SWEEP_MS);
}

static struct xc_push_shard *shard_state(struct xc_shard *sh)
{
	struct xc_push_shard *ps = sh->push;

	if (ps)
		return ps;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	if (cm_map_init(&ps->users, 64) != 0) {
		free(ps);
		return NULL;
	}
	ps->sh = sh;
	cm_list_init(&ps->flights);
	cm_loop_timer_init(&ps->sweep, on_sweep);
	ps->hash_key[0] = 0x70757368u ^ (uint64_t)(uintptr_t)ps;
	ps->hash_key[1] = 0x9e3779b97f4a7c15u;
	sh->push = ps;
	return ps;
}

void xc_push_shard_close(struct xc_shard *sh)
{
	struct xc_push_shard *ps = sh->push;
	struct cm_map_iter it;
	struct cm_map_node *n;
	struct cm_list *p;

	if (!ps)
		return;
	while ((p = cm_list_first(&ps->flights)) != NULL)
		flight_free(cm_list_entry(p, struct flight, link));
	cm_map_iter_init(&it, &ps->users);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		cm_map_remove(&ps->users, n);
		user_free(cm_list_entry(n, struct push_user, node));
	}
	cm_map_close(&ps->users);
	cm_loop_timer_stop(sh->loop, &ps->sweep);
	xc_push_http_free(ps->http);
	free(ps);
	sh->push = NULL;
}

void xc_push_shard_stop(struct xc_shard *sh)
{
	struct xc_push_shard *ps = sh->push;
	struct cm_list *p;

	if (!ps)
		return;
	ps->stopping = true;
	cm_list_foreach(p, &ps->flights)
	{
		struct flight *fl = cm_list_entry(p, struct flight, link);

		if (fl->post) {
			xc_push_post_cancel(ps->http, fl->post);
			fl->post = NULL;
		}
	}
	xc_push_http_stop(ps->http);
}

static struct push_user *user_find(struct xc_push_shard *ps, const char *bare)
{
	uint64_t h = cm_map_hash(&ps->users, bare, strlen(bare));

	for (struct cm_map_node *n = cm_map_first(&ps->users, h); n; n = cm_map_next(n)) {
		struct push_user *u = cm_list_entry(n, struct push_user, node);

		if (strcmp(u->bare, bare) == 0)
			return u;
	}
	return NULL;
}

static struct push_user *user_get(struct xc_shard *sh, const char *bare)
{
	struct xc_push_shard *ps = shard_state(sh);
	struct push_user *u;

	if (!ps)
		return NULL;
	u = user_find(ps, bare);
	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u || !(u->bare = strdup(bare))) {
		free(u);
		return NULL;
	}
	u->ps = ps;
	cm_list_init(&u->regs);
	u->used_ms = mono_ms();
	cm_map_insert(&ps->users, &u->node, cm_map_hash(&ps->users, bare, strlen(bare)));
	if (!cm_loop_timer_active(&ps->sweep))
		cm_loop_timer_start(sh->loop, &ps->sweep, SWEEP_MS);
	return u;
}

/* --- sending ------------------------------------------------------------------------------- */

static void send_push(struct reg *g);

static void on_rewake(struct cm_loop_timer *t)
{
	struct reg *g = cm_list_entry(t, struct reg, rewake);

	if (xc_push_burst_rewake(&g->b) == XC_PUSH_SEND) {
		CM_LOGI("push",
		        "%s: no client back %" PRIu64 " ms after a push to %s; pushing again",
		        g->u->bare, cfg_of(g->u->ps->sh)->rewake, g->jid);
		send_push(g);
	}
}

static void on_flight_timeout(struct cm_loop_timer *t);

/* The publish IQ for g as XML text. */
static int write_publish(struct cm_buf *b, const struct reg *g, const char *id)
{
	const struct push_user *u = g->u;
	const struct xc_push_config *cfg = cfg_of(u->ps->sh);
	int r;

	r = cm_buf_puts(b, "<iq type='set' from='");
	r = r ? r : cm_xml_escape_attr(b, u->bare, strlen(u->bare));
	r = r ? r : cm_buf_puts(b, "' to='");
	r = r ? r : cm_xml_escape_attr(b, g->jid, strlen(g->jid));
	r = r ? r
	      : cm_buf_printf(b, "' id='%s'><pubsub xmlns='" XC_NS_PUBSUB "'><publish node='", id);
	r = r ? r : cm_xml_escape_attr(b, g->node, strlen(g->node));
	r = r ? r : cm_buf_puts(b, "'><item><notification xmlns='" XC_NS_PUSH "'>");
	r = r ? r : xc_push_summary_write(b, cfg, g->b.count, u->sender, u->body, g->b.urgent);
	r = r ? r : cm_buf_puts(b, "</notification></item></publish>");
	if (!r && g->form) {
		r = cm_buf_puts(b, "<publish-options>");
		r = r ? r : cm_buf_puts(b, g->form);
		r = r ? r : cm_buf_puts(b, "</publish-options>");
	}
	return r ? r : cm_buf_puts(b, "</pubsub></iq>");
}

/* The REST hand-off for user's host, or NULL. */
static const struct xc_push_rest_config *rest_for(const struct xc_shard *sh, const char *user)
{
	const struct cm_cfg_list *l = &cfg_of(sh)->rest;
	const char *at = strchr(user, '@');

	for (size_t i = 0; at && i < l->n; i++) {
		const struct xc_push_rest_config *rc =
		    (const struct xc_push_rest_config *)l->items + i;

		if (strcmp(rc->host, at + 1) == 0)
			return rc;
	}
	return NULL;
}

static void finish(struct flight *fl, int o, const char *condition);
static void remove_reg(struct xc_shard *sh, struct push_user *u, const char *jid, const char *node,
                       struct cm_counter *why);

static void on_posted(void *arg, long status, const char *err);

/* Hand g's push to the REST API of rc: fl's transfer. 0, or a negative errno (logged). */
static int post_push(struct reg *g, struct flight *fl, const struct xc_push_rest_config *rc)
{
	struct xc_push_shard *ps = g->u->ps;
	struct xc_shard *sh = ps->sh;
	char *device = NULL, *json = NULL;
	const char *why = NULL;
	int r;

	r = xc_push_rest_body(g->form, cfg_of(sh), g->b.count, g->u->sender, g->u->body,
	                      g->b.urgent, &device, &json, &why);
	if (r == -EINVAL) {
		/* this registration can never be pushed through the API */
		CM_LOGW("push", "%s: registration %s node %s cannot go to %s: %s; removed",
		        g->u->bare, g->jid, g->node, rc->url, why);
		cm_metrics_inc(metrics_of(sh)->failed_rejected);
		remove_reg(sh, g->u, g->jid, g->node, metrics_of(sh)->disabled_rejected);
		return r;
	}
	if (!r && !ps->http && (r = xc_push_http_open(&ps->http, sh->loop)) != 0)
		CM_LOGW("push", "cannot start the REST client: %s", strerror(-r));
	if (!r)
		r = xc_push_http_post(ps->http, rc, device, json, cfg_of(sh)->timeout, on_posted,
		                      fl, &fl->post);
	if (r && r != -EINVAL)
		CM_LOGW("push", "%s: cannot post a push to %s: %s", g->u->bare, rc->url,
		        strerror(-r));
	free(device);
	free(json);
	return r;
}

static void send_push(struct reg *g)
{
	struct xc_push_shard *ps = g->u->ps;
	struct xc_shard *sh = ps->sh;
	const struct xc_push_config *cfg = cfg_of(sh);
	const struct xc_push_rest_config *rc = rest_for(sh, g->u->bare);
	struct cm_xml_node *iq = NULL;
	struct flight *fl;
	struct cm_buf b;
	bool urgent = g->b.urgent;
	int r;

	if (ps->stopping)
		return;
	cm_buf_init(&b, 0);
	fl = calloc(1, sizeof(*fl));
	r = fl && (fl->jid = strdup(rc ? rc->url : g->jid)) ? 0 : -ENOMEM;
	if (!r) {
		snprintf(fl->id, sizeof(fl->id), ID_PREFIX "%u-%" PRIu64, sh->idx, ++ps->next_id);
		fl->ps = ps;
		if (rc)
			r = post_push(g, fl, rc);
		else
			r = write_publish(&b, g, fl->id);
	}
	if (!r && !rc)
		r = xc_stanza_parse(b.data, b.len, &iq);
	cm_buf_free(&b);
	if (r) {
		if (r != -EINVAL || !rc)
			CM_LOGW("push", "%s: cannot build a push: %s", g->u->bare, strerror(-r));
		if (fl)
			free(fl->jid);
		free(fl);
		return;
	}
	fl->reg = g;
	g->fl = fl;
	cm_list_insert_tail(&ps->flights, &fl->link);
	cm_loop_timer_init(&fl->timeout, on_flight_timeout);
	cm_loop_timer_start(sh->loop, &fl->timeout, cfg->timeout);
	xc_push_burst_sent(&g->b);
	if (cfg->rewake && !g->b.rewoken)
		cm_loop_timer_start(sh->loop, &g->rewake, cfg->rewake);
	cm_metrics_inc(metrics_of(sh)->sent);
	CM_LOGI("push", "%s: push %s to %s node %s%s (%u message%s%s)", g->u->bare, fl->id, g->jid,
	        g->node, rc ? " by REST" : "", g->b.count, g->b.count == 1 ? "" : "s",
	        urgent ? ", a call" : "");
	if (iq)
		xc_route(sh, iq); /* takes iq */
}

/* --- registrations in memory ----------------------------------------------------------------- */

static struct reg *reg_find(struct push_user *u, const char *jid, const char *node)
{
	struct cm_list *p;

	cm_list_foreach(p, &u->regs)
	{
		struct reg *g = cm_list_entry(p, struct reg, link);

		if (strcmp(g->jid, jid) == 0 && strcmp(g->node, node) == 0)
			return g;
	}
	return NULL;
}

/* The registrations the store answered (taken out of v) replace u's: those that stay keep
 * their state. */
static void regs_set(struct push_user *u, struct xc_push_reg *v, size_t n)
{
	struct cm_list keep, *p;

	cm_list_init(&keep);
	for (size_t i = 0; i < n; i++) {
		struct reg *g = reg_find(u, v[i].jid, v[i].node);

		if (g) {
			cm_list_remove(&g->link);
			free(g->form);
		} else {
			g = calloc(1, sizeof(*g));
			if (!g) {
				CM_LOGW("push", "%s: no memory for a registration", u->bare);
				continue;
			}
			g->u = u;
			cm_loop_timer_init(&g->rewake, on_rewake);
			g->jid = v[i].jid;
			g->node = v[i].node;
			v[i].jid = v[i].node = NULL;
		}
		g->form = v[i].form;
		v[i].form = NULL;
		cm_list_insert_tail(&keep, &g->link);
	}
	while ((p = cm_list_pop(&u->regs)) != NULL)
		reg_free(cm_list_entry(p, struct reg, link));
	cm_list_move(&u->regs, &keep);
}

/* n messages (urgent or not) for u's registrations. */
static void apply(struct push_user *u, unsigned n, bool urgent)
{
	const struct xc_push_config *cfg = cfg_of(u->ps->sh);
	uint64_t now = mono_ms();
	struct cm_list *p, *next;

	cm_list_foreach_safe(p, next, &u->regs)
	{
		struct reg *g = cm_list_entry(p, struct reg, link);

		if (xc_push_burst_event(&g->b, now, cfg->coalesce, n, urgent) == XC_PUSH_SEND)
			send_push(g);
		else
			cm_metrics_add(metrics_of(u->ps->sh)->coalesced, n);
	}
}

static void extend(struct xc_c2s *c)
{
	uint64_t ms = cfg_of(c->sh)->resume_timeout;

	if (xc_sm_set_resume_timeout(c, ms) == 0)
		CM_LOGD("push", "%s: hibernated session kept for %" PRIu64 " ms (push enabled)",
		        c->jid.s, ms);
}

/* Every hibernated session of u waits push.resume_timeout. */
static void extend_sessions(struct xc_shard *sh, struct push_user *u)
{
	struct xc_jid j;
	struct xc_user *xu;
	struct xc_c2s *c;

	if (cm_list_empty(&u->regs) || xc_jid_parse(&j, u->bare, strlen(u->bare), NULL, 0) != 0)
		return;
	xu = xc_user_find(sh, &j);
	xc_jid_free(&j);
	if (!xu)
		return;
	xc_user_foreach_session(xu, c) if (c->hibernated) extend(c);
}

static void on_list(struct xc_store_req *r)
{
	struct push_user *u = r->arg;
	struct xc_shard *sh = u->ps->sh;

	u->busy--;
	if (r->err) {
		CM_LOGW("push", "%s: cannot read the push registrations: %s", u->bare,
		        strerror(-r->err));
		u->st = LOAD_NONE; /* the next event tries again */
	} else {
		u->st = LOAD_DONE;
		regs_set(u, r->push, r->npush);
	}
	xc_store_req_free(r);
	if (u->st == LOAD_DONE && u->extend)
		extend_sessions(sh, u);
	u->extend = false;
	if (u->st == LOAD_DONE && u->pending)
		apply(u, u->pending, u->pending_urgent);
	u->pending = 0;
	u->pending_urgent = false;
}

/* Read u's registrations (once). */
static void load(struct xc_shard *sh, struct push_user *u)
{
	struct xc_store_req *r;

	if (u->st != LOAD_NONE)
		return;
	r = xc_store_req_new(XC_STORE_PUSH_LIST, sh->loop, on_list, u);
	if (!r || xc_store_req_set(&r->user, u->bare) != 0 ||
	    xc_store_submit(sh->srv->store, r) != 0) {
		CM_LOGW("push", "%s: cannot read the push registrations: no memory or store",
		        u->bare);
		xc_store_req_free(r);
		return;
	}
	u->st = LOAD_RUNNING;
	u->busy++;
}

/* --- events -------------------------------------------------------------------------------- */

/* Whether the message of key (hashed) was counted lately; remembers it. */
static bool seen(struct push_user *u, const char *key)
{
	uint64_t h = cm_hash(u->ps->hash_key, key, strlen(key));

	for (unsigned i = 0; i < SEEN_MAX && i < u->nseen; i++)
		if (u->seen[i] == h)
			return true;
	u->seen[u->nseen++ % SEEN_MAX] = h;
	if (u->nseen >= 2 * SEEN_MAX)
		u->nseen -= SEEN_MAX; /* stays above SEEN_MAX: every slot is used */
	return false;
}

/* The key of message st for user: its archive id there, else its sender and id. NULL when it
 * has neither (then it is counted whatever else saw it). */
static const char *message_key(const struct cm_xml_node *st, const char *user, char *buf,
                               size_t len)
{
	const char *from = cm_xml_attr(st, "from"), *id = cm_xml_attr(st, "id");

	for (const struct cm_xml_node *s = cm_xml_child(st, "stanza-id", NS_SID); s;
	     s = cm_xml_child_next(s, "stanza-id", NS_SID)) {
		const char *by = cm_xml_attr(s, "by"), *sid = cm_xml_attr(s, "id");

		if (by && sid && strcmp(by, user) == 0) {
			snprintf(buf, len, "a:%s", sid);
			return buf;
		}
	}
	if (!from || !id)
		return NULL;
	if ((size_t)snprintf(buf, len, "m:%s\n%s", from, id) >= len)
		return NULL;
	return buf;
}

static void set_text(char **field, const char *s)
{
	free(*field);
	*field = s ? strdup(s) : NULL; /* (without memory the summary goes without it) */
}

/* What the summary says of the last message. */
static void remember(struct push_user *u, const struct cm_xml_node *st)
{
	const char *from = cm_xml_attr(st, "from");
	struct xc_jid j;

	free(u->sender);
	u->sender = NULL;
	if (from && xc_jid_parse(&j, from, strlen(from), NULL, 0) == 0) {
		u->sender = strndup(j.s, xc_jid_bare_len(&j));
		xc_jid_free(&j);
	}
	set_text(&u->body, xc_push_body(st));
}

/* Message st (key: its key for user, or NULL) for user, seen by one of the events. */
static void event(struct xc_shard *sh, const char *user, const struct cm_xml_node *st,
                  const char *key)
{
	enum xc_push_want want;
	struct push_user *u;
	char buf[SENDER_MAX + 256];

	if (!xc_push_enabled(sh->srv->push))
		return;
	want = xc_push_classify(st);
	if (want == XC_PUSH_NO)
		return;
	u = user_get(sh, user);
	if (!u) {
		CM_LOGW("push", "%s: no memory to push for", user);
		return;
	}
	if (!key)
		key = message_key(st, user, buf, sizeof(buf));
	if (key && seen(u, key))
		return;
	u->used_ms = mono_ms();
	remember(u, st);
	if (u->st == LOAD_DONE) {
		apply(u, 1, want == XC_PUSH_URGENT);
		return;
	}
	u->pending++;
	u->pending_urgent = u->pending_urgent || want == XC_PUSH_URGENT;
	load(sh, u);
}

void xc_push_offline_stored(struct xc_shard *sh, const char *user, const struct cm_xml_node *st)
{
	event(sh, user, st, NULL);
}

void xc_push_queued_hibernated(struct xc_c2s *c, const struct cm_xml_node *st)
{
	char bare[SENDER_MAX + 1];
	size_t bl = xc_jid_bare_len(&c->jid);

	if (!c->jid.s || bl >= sizeof(bare))
		return;
	memcpy(bare, c->jid.s, bl);
	bare[bl] = '\0';
	event(c->sh, bare, st, NULL);
}

void xc_push_inbound(struct xc_shard *sh, const char *user, const struct cm_xml_node *st)
{
	/* only calls here: the other messages wait for what happens to them */
	if (cm_xml_child(st, "propose", "urn:xmpp:jingle-message:0"))
		event(sh, user, st, NULL);
}

static void on_archived(void *arg, struct xc_shard *sh, const char *user, const char *id,
                        const char *stanza)
{
	struct cm_xml_node *st;
	char key[256];

	(void)arg;
	if (xc_stanza_parse(stanza, strlen(stanza), &st) != 0)
		return;
	if ((size_t)snprintf(key, sizeof(key), "a:%s", id) < sizeof(key))
		event(sh, user, st, key);
	else
		event(sh, user, st, NULL);
	cm_xml_node_free(st);
}

void xc_push_hibernating(struct xc_c2s *c)
{
	struct xc_shard *sh = c->sh;
	struct push_user *u;
	char bare[SENDER_MAX + 1];
	size_t bl = xc_jid_bare_len(&c->jid);

	if (!xc_push_enabled(sh->srv->push) || !c->jid.s || bl >= sizeof(bare))
		return;
	memcpy(bare, c->jid.s, bl);
	bare[bl] = '\0';
	u = user_get(sh, bare);
	if (!u)
		return;
	u->used_ms = mono_ms();
	if (u->st == LOAD_DONE) {
		/* (c is not marked hibernated yet: its caller does that next) */
		if (!cm_list_empty(&u->regs))
			extend(c);
		return;
	}
	u->extend = true;
	load(sh, u);
}

void xc_push_back(struct xc_shard *sh, const char *user)
{
	struct xc_push_shard *ps = sh->push;
	struct push_user *u = ps ? user_find(ps, user) : NULL;
	struct cm_list *p;

	if (!u)
		return;
	cm_list_foreach(p, &u->regs)
	{
		struct reg *g = cm_list_entry(p, struct reg, link);

		if (g->b.count)
			CM_LOGD("push", "%s: a client is back; %u message%s counted for %s", user,
			        g->b.count, g->b.count == 1 ? "" : "s", g->jid);
		xc_push_burst_back(&g->b);
		cm_loop_timer_stop(sh->loop, &g->rewake);
	}
	u->pending = 0;
	u->pending_urgent = false;
}

/* --- answers --------------------------------------------------------------------------------- */

static void remove_reg(struct xc_shard *sh, struct push_user *u, const char *jid, const char *node,
                       struct cm_counter *why);

enum outcome { OUT_OK, OUT_WAIT, OUT_TIMEOUT, OUT_UNROUTABLE, OUT_REJECTED };

static void finish(struct flight *fl, int o, const char *condition)
{
	struct xc_shard *sh = fl->ps->sh;
	const struct xc_push_config *cfg = cfg_of(sh);
	struct push_metrics *m = metrics_of(sh);
	struct reg *g = fl->reg;
	static const char *const names[] = {"ok", "wait", "timeout", "unroutable", "rejected"};
	struct cm_counter *const counters[] = {m->ok, m->failed_wait, m->failed_timeout,
	                                       m->failed_unroutable, m->failed_rejected};

	cm_metrics_inc(counters[o]);
	if (!g) {
		CM_LOGD("push", "push %s: %s, its registration is gone", fl->id, names[o]);
		flight_free(fl);
		return;
	}
	flight_free(fl); /* g->fl is NULL from here */
	if (o == OUT_OK) {
		g->failures = 0;
		CM_LOGD("push", "%s: %s took the push", g->u->bare, g->jid);
	} else if (o == OUT_REJECTED) {
		CM_LOGI("push", "%s: %s refused a push (%s); registration node %s removed",
		        g->u->bare, g->jid, condition ? condition : "error", g->node);
		remove_reg(sh, g->u, g->jid, g->node, m->disabled_rejected);
		return;
	} else if (++g->failures >= (unsigned)cfg->max_failures) {
		CM_LOGW("push",
		        "%s: %u pushes in a row to %s failed (last: %s); registration node "
		        "%s removed",
		        g->u->bare, g->failures, g->jid, names[o], g->node);
		remove_reg(sh, g->u, g->jid, g->node, m->disabled_failures);
		return;
	} else {
		CM_LOGW("push", "%s: push to %s failed (%s%s%s), %u in a row; registration kept",
		        g->u->bare, g->jid, names[o], condition ? ": " : "",
		        condition ? condition : "", g->failures);
	}
	if (xc_push_burst_answered(&g->b, o == OUT_OK) == XC_PUSH_SEND)
		send_push(g);
}

static void on_flight_timeout(struct cm_loop_timer *t)
{
	finish(cm_list_entry(t, struct flight, timeout), OUT_TIMEOUT, NULL);
}

/* The REST API answered (or did not). 410: the token is gone; 429 and 5xx: try later; any
 * other refusal says the registration cannot be pushed. */
static void on_posted(void *arg, long status, const char *err)
{
	struct flight *fl = arg;
	char cond[64];
	int o;

	fl->post = NULL; /* done with it */
	if (status == 0 && !fl->again && fl->reg && !fl->ps->stopping) {
		/* no answer at all: the connection was lost under it (an HTTP/2 GOAWAY, a reset),
		 * most likely before the app server saw it; once more at once, on a new connection,
		 * within the same timeout, rather than leave the phone asleep */
		const struct xc_push_rest_config *rc = rest_for(fl->ps->sh, fl->reg->u->bare);

		fl->again = true;
		CM_LOGI("push", "%s: push %s to %s got no answer (%s); sending it again",
		        fl->reg->u->bare, fl->id, fl->jid, err ? err : "no answer");
		if (rc && post_push(fl->reg, fl, rc) == 0)
			return;
	}
	if (status >= 200 && status < 300)
		o = OUT_OK;
	else if (status == 0)
		o = OUT_UNROUTABLE;
	else if (status == 429 || status >= 500)
		o = OUT_WAIT;
	else
		o = OUT_REJECTED;
	if (status)
		snprintf(cond, sizeof(cond), "HTTP %ld", status);
	else
		snprintf(cond, sizeof(cond), "%.60s", err ? err : "no answer");
	finish(fl, o, o == OUT_OK ? NULL : cond);
}

/* The condition of an error stanza, or NULL. */
static const char *error_condition(const struct cm_xml_node *iq, const char **etype)
{
	const struct cm_xml_node *e = cm_xml_child(iq, "error", CM_XML_NS_CLIENT);

	*etype = e ? cm_xml_attr(e, "type") : NULL;
	for (const struct cm_xml_node *n = e ? e->children : NULL; n; n = n->next)
		if (n->kind == CM_XML_ELEMENT && strcmp(n->ns, XC_NS_STANZAS) == 0 &&
		    strcmp(n->name, "text") != 0)
			return n->name;
	return NULL;
}

bool xc_push_answer(struct xc_shard *sh, struct cm_xml_node *iq)
{
	struct xc_push_shard *ps = sh->push;
	const char *id = cm_xml_attr(iq, "id"), *from = cm_xml_attr(iq, "from");
	const char *etype = NULL, *cond;
	struct flight *fl = NULL;
	struct cm_list *p;
	enum outcome o;

	if (!id || strncmp(id, ID_PREFIX, strlen(ID_PREFIX)) != 0 || !ps)
		return false;
	cm_list_foreach(p, &ps->flights)
	{
		struct flight *f = cm_list_entry(p, struct flight, link);

		if (strcmp(f->id, id) == 0) {
			fl = f;
			break;
		}
	}
	/* an answer from anyone but the app server asked is not one */
	if (!fl || !from || strcmp(from, fl->jid) != 0) {
		cm_xml_node_free(iq);
		return true;
	}
	if (strcmp(xc_stanza_type(iq), "result") == 0) {
		o = OUT_OK;
		cond = NULL;
	} else {
		cond = error_condition(iq, &etype);
		if (etype && strcmp(etype, "wait") == 0)
			o = OUT_WAIT;
		else if (cond &&
		         (strcmp(cond, "service-unavailable") == 0 ||
		          strcmp(cond, "remote-server-not-found") == 0 ||
		          strcmp(cond, "remote-server-timeout") == 0) &&
		         !cm_xml_child(iq, "pubsub", XC_NS_PUBSUB))
			/* the way there failed (an app server that is not connected now), not the
			 * app server: as transient as a timeout */
			o = OUT_UNROUTABLE;
		else
			o = OUT_REJECTED;
	}
	finish(fl, o, cond);
	cm_xml_node_free(iq);
	return true;
}

/* --- enable and disable ----------------------------------------------------------------------- */

struct change {
	struct xc_shard *sh;
	struct cm_xml_node *iq; /* owned: answered when the store has answered */
	struct cm_counter *why; /* the server's own removal: counted; NULL: the client's */
};

static void on_change(struct xc_store_req *r)
{
	struct change *ch = r->arg;
	struct xc_shard *sh = ch->sh;
	struct push_metrics *m = metrics_of(sh);
	struct push_user *u = user_get(sh, r->user);
	double delta = 0;

	if (r->err) {
		CM_LOGW("push", "%s: cannot %s a push registration: %s", r->user,
		        r->op == XC_STORE_PUSH_ENABLE ? "store" : "remove", strerror(-r->err));
		if (ch->iq)
			xc_bounce(sh, ch->iq, "wait", "internal-server-error");
	} else {
		if (r->op == XC_STORE_PUSH_ENABLE) {
			delta = (r->found ? 0.0 : 1.0) - (double)r->count;
			if (r->count) {
				cm_metrics_add(m->replaced, r->count);
				CM_LOGI("push",
				        "%s: %" PRIu64 " oldest registration%s replaced (the "
				        "limit is %lld)",
				        r->user, r->count, r->count == 1 ? "" : "s",
				        cfg_of(sh)->max_registrations);
			}
			CM_LOGI("push", "%s: push enabled to %s node %s%s", r->user, r->key,
			        r->with, r->stanza ? " with publish-options" : "");
		} else {
			delta = -(double)r->count;
			if (ch->why && r->count)
				cm_metrics_add(ch->why, r->count);
			if (!ch->why)
				CM_LOGI("push",
				        "%s: push disabled for %s%s%s (%" PRIu64 " removed)",
				        r->user, r->key, r->with ? " node " : "",
				        r->with ? r->with : "", r->count);
		}
		cm_metrics_gauge_add(m->registrations, delta);
		if (u) {
			u->st = LOAD_DONE;
			regs_set(u, r->push, r->npush);
			if (r->op == XC_STORE_PUSH_ENABLE)
				extend_sessions(sh, u);
		}
		if (ch->iq) {
			struct cm_xml_node *res = xc_iq_result(ch->iq, NULL);

			if (res)
				xc_route(sh, res);
		}
	}
	if (u)
		u->busy--;
	cm_xml_node_free(ch->iq);
	free(ch);
	xc_store_req_free(r);
}

/* Submit an enable or disable for user. Takes iq (may be NULL) whatever happens. */
static int submit_change(struct xc_shard *sh, enum xc_store_op op, const char *user,
                         const char *jid, const char *node, char *form, struct cm_xml_node *iq,
                         struct cm_counter *why)
{
	struct change *ch = calloc(1, sizeof(*ch));
	struct xc_store_req *r = ch ? xc_store_req_new(op, sh->loop, on_change, ch) : NULL;
	struct push_user *u;
	int rc = r ? 0 : -ENOMEM;

	if (!rc) {
		ch->sh = sh;
		ch->iq = iq;
		ch->why = why;
		rc = xc_store_req_set(&r->user, user);
	}
	rc = rc ? rc : xc_store_req_set(&r->key, jid);
	rc = rc ? rc : (node ? xc_store_req_set(&r->with, node) : 0);
	if (!rc) {
		r->stanza = form; /* handed over */
		form = NULL;
		r->stamp_ms = xc_wall_ms();
		r->limit = (unsigned)cfg_of(sh)->max_registrations;
		rc = xc_store_submit(sh->srv->store, r);
	}
	if (rc) {
		free(form);
		xc_store_req_free(r);
		free(ch);
		if (iq) {
			xc_bounce(sh, iq, "wait", "resource-constraint");
			cm_xml_node_free(iq);
		}
		return rc;
	}
	u = user_get(sh, user);
	if (u)
		u->busy++;
	return 0;
}

static void remove_reg(struct xc_shard *sh, struct push_user *u, const char *jid, const char *node,
                       struct cm_counter *why)
{
	struct reg *g = reg_find(u, jid, node);
	char *j = strdup(jid), *n = strdup(node);

	/* out of memory at once: no more pushes to it, whatever the store says */
	if (g) {
		cm_list_remove(&g->link);
		reg_free(g);
	}
	if (!j || !n || submit_change(sh, XC_STORE_PUSH_DISABLE, u->bare, j, n, NULL, NULL, why))
		CM_LOGW("push", "%s: cannot remove the registration of %s from the store", u->bare,
		        jid);
	free(j);
	free(n);
}

static void refuse(struct xc_shard *sh, struct cm_xml_node *iq, const char *etype, const char *cond,
                   const char *text)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text, sh->srv->cfg->hosts.v[0]);

	if (e)
		xc_route(sh, e);
	cm_xml_node_free(iq);
}

/* The publish-options form of el as XML text in *out (NULL without one), or a refusal's text. */
static const char *form_of(struct xc_shard *sh, const struct cm_xml_node *el, char **out)
{
	const struct cm_xml_node *x = cm_xml_child(el, "x", "jabber:x:data");
	const char *ft;
	struct cm_buf b;

	(void)sh;
	*out = NULL;
	if (!x)
		return NULL;
	ft = cm_xml_form_field(x, "FORM_TYPE");
	if (!ft || strcmp(ft, NS_PUBSUB_OPT) != 0)
		return "the form must be of FORM_TYPE " NS_PUBSUB_OPT;
	if (cm_xml_attr(x, "type") && strcmp(cm_xml_attr(x, "type"), "submit") != 0)
		return "the publish-options form must be of type submit";
	cm_buf_init(&b, FORM_MAX);
	if (cm_xml_write(&b, x, NULL) != 0) {
		cm_buf_free(&b);
		return "the publish-options form is larger than 8 KiB";
	}
	*out = cm_buf_steal(&b);
	return *out ? NULL : "no memory for the publish-options form";
}

static void enable(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq,
                   const struct cm_xml_node *el)
{
	const char *jid = cm_xml_attr(el, "jid"), *node = cm_xml_attr(el, "node"), *why;
	char bare[SENDER_MAX + 1];
	struct xc_jid j;
	char *form = NULL;
	size_t bl = xc_jid_bare_len(&own->jid);

	if (!jid || !*jid) {
		refuse(sh, iq, "modify", "bad-request", "<enable/> needs the app server's jid");
		return;
	}
	if (!node || !*node) {
		refuse(sh, iq, "modify", "bad-request", "<enable/> needs a node");
		return;
	}
	if (strlen(node) > NODE_MAX) {
		refuse(sh, iq, "modify", "bad-request", "the node is longer than 1024 bytes");
		return;
	}
	if (xc_jid_parse(&j, jid, strlen(jid), NULL, 0) != 0) {
		refuse(sh, iq, "modify", "jid-malformed", "the app server's jid is not a JID");
		return;
	}
	if (xc_jid_bare_len(&j) == bl && memcmp(j.s, own->jid.s, bl) == 0) {
		xc_jid_free(&j);
		refuse(sh, iq, "cancel", "not-acceptable",
		       "the app server cannot be the account itself");
		return;
	}
	if ((why = form_of(sh, el, &form)) != NULL) {
		xc_jid_free(&j);
		refuse(sh, iq, "modify", "bad-request", why);
		return;
	}
	memcpy(bare, own->jid.s, bl);
	bare[bl] = '\0';
	/* the JID as prepared: answers come from it spelt so */
	submit_change(sh, XC_STORE_PUSH_ENABLE, bare, j.s, node, form, iq, NULL);
	xc_jid_free(&j);
}

static void disable(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq,
                    const struct cm_xml_node *el)
{
	const char *jid = cm_xml_attr(el, "jid"), *node = cm_xml_attr(el, "node");
	char bare[SENDER_MAX + 1];
	size_t bl = xc_jid_bare_len(&own->jid);
	struct xc_jid j;

	if (!jid || !*jid) {
		refuse(sh, iq, "modify", "bad-request", "<disable/> needs the app server's jid");
		return;
	}
	if (xc_jid_parse(&j, jid, strlen(jid), NULL, 0) != 0) {
		refuse(sh, iq, "modify", "jid-malformed", "the app server's jid is not a JID");
		return;
	}
	memcpy(bare, own->jid.s, bl);
	bare[bl] = '\0';
	submit_change(sh, XC_STORE_PUSH_DISABLE, bare, j.s, node && *node ? node : NULL, NULL, iq,
	              NULL);
	xc_jid_free(&j);
}

void xc_push_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq)
{
	const struct cm_xml_node *el = NULL;
	const char *type = xc_stanza_type(iq);

	for (const struct cm_xml_node *n = iq->children; n; n = n->next)
		if (n->kind == CM_XML_ELEMENT && strcmp(n->ns, XC_NS_PUSH) == 0)
			el = n;
	if (!xc_push_enabled(sh->srv->push) || !el) {
		refuse(sh, iq, "cancel", "service-unavailable", NULL);
		return;
	}
	if (!own) {
		refuse(sh, iq, "auth", "forbidden", NULL);
		return;
	}
	if (strcmp(type, "set") != 0) {
		refuse(sh, iq, "modify", "bad-request",
		       "push is enabled and disabled with an IQ set");
		return;
	}
	if (xc_jid_bare_len(&own->jid) > SENDER_MAX) {
		refuse(sh, iq, "modify", "bad-request", NULL);
		return;
	}
	if (strcmp(el->name, "enable") == 0)
		enable(sh, own, iq, el);
	else if (strcmp(el->name, "disable") == 0)
		disable(sh, own, iq, el);
	else
		refuse(sh, iq, "cancel", "feature-not-implemented", NULL);
}
