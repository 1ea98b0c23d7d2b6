/* apns_pool.c - persistent HTTP/2 connections to APNs for one app: queueing, stream limits,
 * provider-token headers, one new token and one resend after a refused token, fail-fast while
 * the token is refused (creds.c), moving unanswered requests, reconnect with backoff. */
#include "apns_int.h"
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "h2.h"

#define EXPIRE_SCAN_MAX 256 /* queued attempts looked at per tick */

struct job {
	struct cm_list link; /* in the queue, while queued */
	struct pp_apns_pool *p;
	struct pconn *conn;     /* while in flight */
	struct pp_apns_msg msg; /* owned */
	uint64_t deadline;
	pp_apns_done_cb cb;
	void *arg;
	uint64_t token_gen; /* the provider token it went with (token->generated) */
	bool auth_retried;  /* sent again after a refused token already: never twice */
	bool check;         /* the notification that checks a refused token */
	unsigned sent;      /* requests made for it */
};

struct pconn {
	struct cm_list link; /* in the pool's connections */
	struct pp_apns_pool *p;
	struct pp_h2_conn *h2; /* owned until its closed event */
	bool ready;            /* the server's SETTINGS came */
	bool authenticated;    /* a request succeeded: the server's stream limit applies */
	bool goaway;
};

struct pool_metrics {
	struct cm_gauge *conns;
	struct cm_counter *connect_fail, *token_refresh, *moved;
};

struct pp_apns_pool {
	struct cm_loop *loop;      /* borrowed */
	struct cm_loop_timer tick; /* queue expiry, reconnect after the backoff */
	struct pp_apns_pool_config cfg;
	struct pp_h2_events ev;
	struct cm_list queue; /* owned jobs waiting for a connection, oldest first */
	unsigned ninflight;   /* jobs submitted to a connection */
	struct cm_list conns; /* owned pconn */
	unsigned nconns;
	unsigned failures;     /* consecutive connections that never became ready */
	uint64_t next_connect; /* backoff: no new connection before (uv_now time) */
	bool dispatching;
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
	struct pp_creds creds; /* a refused provider token: fail fast, check with backoff */
	struct pool_metrics m;
	struct pp_apns_idgen ids;
};

static void dispatch(struct pp_apns_pool *p);

static uint64_t now_ms(const struct pp_apns_pool *p)
{
	return uv_now(p->loop->uv);
}

/* --- queue -------------------------------------------------------------------------------- */

static struct job *q_first(const struct pp_apns_pool *p)
{
	struct cm_list *n = cm_list_first(&p->queue);

	return n ? cm_list_entry(n, struct job, link) : NULL;
}

/* End an attempt: the callback may send again or close the pool. */
static void job_finish(struct job *j, const struct pp_result *r, long long retry_after)
{
	struct pp_result out = *r;

	if (j->check)
		pp_creds_check_ended(&j->p->creds); /* unless its answer said something */
	out.attempts = j->sent;
	pp_apns__msg_free(&j->msg);
	j->cb(j->arg, &out, retry_after);
	free(j);
}

static void job_fail(struct job *j, enum pp_outcome o, enum pp_cause c, const char *why)
{
	struct pp_result r;

	memset(&r, 0, sizeof(r));
	pp_result_set(&r, o, c, 0, why);
	snprintf(r.id, sizeof(r.id), "%s", j->msg.apns_id);
	job_finish(j, &r, -1);
}

/* --- connections -------------------------------------------------------------------------- */

static void update_gauge(struct pp_apns_pool *p)
{
	cm_metrics_set(p->m.conns, (double)p->nconns);
}

static uint64_t backoff_ms(const struct pp_apns_pool *p)
{
	uint64_t d = p->cfg.backoff_min_ms;
	unsigned char rnd[2] = {0, 0};

	for (unsigned i = 1; i < p->failures && d < p->cfg.backoff_max_ms; i++)
		d *= 2;
	if (d > p->cfg.backoff_max_ms)
		d = p->cfg.backoff_max_ms;
	/* Jitter: 50% to 100% of the delay, so that many instances do not reconnect together. */
	cm_crypto_random(rnd, sizeof(rnd));
	return d / 2 + (d / 2) * (uint64_t)(rnd[0] | (rnd[1] << 8)) / 65535;
}

static void conn_writable(struct pp_h2_conn *h2, void *arg)
{
	struct pconn *pc = arg;

	(void)h2;
	if (!pc->ready) {
		pc->ready = true;
		pc->p->failures = 0;
	}
	dispatch(pc->p);
}

static void conn_goaway(struct pp_h2_conn *h2, uint32_t code, const char *debug, void *arg)
{
	struct pconn *pc = arg;

	(void)h2;
	pc->goaway = true;
	CM_LOGI("apns", "%s: server going away (code %u %s): moving to a new connection",
	        pc->p->cfg.name, code, debug);
	/* Let what is in flight finish; new work goes to another connection. */
	pp_h2_conn_close(pc->h2, true);
	dispatch(pc->p);
}

/* The pool is closed: its last connection is gone. p is freed here. */
static void pool_final(struct pp_apns_pool *p)
{
	void (*done)(void *arg) = p->done;
	void *arg = p->done_arg;

	cm_loop_timer_stop(p->loop, &p->tick);
	free(p);
	if (done)
		done(arg);
}

static void conn_closed(struct pp_h2_conn *h2, int err, bool ever_ready, void *arg)
{
	struct pconn *pc = arg;
	struct pp_apns_pool *p = pc->p;

	(void)h2;
	cm_list_remove(&pc->link);
	p->nconns--;
	update_gauge(p);
	free(pc);
	if (!ever_ready && !p->closing) {
		p->failures++;
		p->next_connect = now_ms(p) + backoff_ms(p);
		cm_metrics_inc(p->m.connect_fail);
		CM_LOGW("apns", "%s: connection to %s:%u failed (%s); next try in %llu ms",
		        p->cfg.name, p->cfg.host, p->cfg.port, strerror(-err),
		        (unsigned long long)(p->next_connect - now_ms(p)));
	} else if (err && err != -ECANCELED && !p->closing) {
		CM_LOGI("apns", "%s: connection closed: %s", p->cfg.name, strerror(-err));
	}
	if (p->closing) {
		if (!p->nconns)
			pool_final(p);
		return;
	}
	dispatch(p);
}

static void connect_one(struct pp_apns_pool *p)
{
	struct pp_h2_config hc = {
	    .host = p->cfg.host,
	    .port = p->cfg.port,
	    .tls = p->cfg.tls,
	    .max_streams = p->cfg.max_streams,
	    .connect_timeout_ms = p->cfg.connect_timeout_ms,
	    .request_timeout_ms = p->cfg.request_timeout_ms,
	    .ping_interval_ms = p->cfg.ping_interval_ms,
	    .ping_timeout_ms = p->cfg.ping_timeout_ms,
	    .tick_ms = p->cfg.tick_ms,
	};
	struct pconn *pc = calloc(1, sizeof(*pc));
	int r = pc ? 0 : -ENOMEM;

	if (pc) {
		pc->p = p;
		r = pp_h2_conn_alloc(&pc->h2, p->loop, &hc, &p->ev, pc);
	}
	if (r) {
		/* A connection that failed to start: back off as from one that failed later. */
		free(pc);
		p->failures++;
		p->next_connect = now_ms(p) + backoff_ms(p);
		cm_metrics_inc(p->m.connect_fail);
		CM_LOGW("apns", "%s: cannot start a connection: %s", p->cfg.name, strerror(-r));
		return;
	}
	cm_list_insert_head(&p->conns, &pc->link);
	p->nconns++;
	update_gauge(p);
}

/* Room for new requests on pc: one until a request succeeded there. */
static unsigned room(const struct pconn *pc)
{
	unsigned cap;

	if (!pc->h2 || pc->goaway || !pp_h2_usable(pc->h2))
		return 0;
	cap = pp_h2_capacity(pc->h2);
	if (!pc->authenticated)
		return pp_h2_inflight(pc->h2) == 0 && cap ? 1 : 0;
	return cap;
}

static struct pconn *pick(struct pp_apns_pool *p)
{
	struct cm_list *n;

	cm_list_foreach(n, &p->conns)
	{
		struct pconn *pc = cm_list_entry(n, struct pconn, link);

		if (room(pc))
			return pc;
	}
	return NULL;
}

/* Open a connection when work waits, none has room, none is being opened, the limit allows and
 * the backoff has passed. One at a time: a failing server sees no storm. */
static void maybe_connect(struct pp_apns_pool *p)
{
	unsigned live = 0;
	struct cm_list *n;

	if (p->closing || cm_list_empty(&p->queue))
		return;
	cm_list_foreach(n, &p->conns)
	{
		struct pconn *pc = cm_list_entry(n, struct pconn, link);

		if (pc->goaway)
			continue;
		if (!pc->ready)
			return; /* one is being opened */
		if (!pc->authenticated)
			return; /* it opens up after its first success */
		if (pp_h2_peer_max_streams(pc->h2) <= 1)
			return; /* APNs raises the limit right after the first success: wait */
		live++;
	}
	if (live >= p->cfg.max_connections || now_ms(p) < p->next_connect)
		return;
	connect_one(p);
}

/* --- requests ----------------------------------------------------------------------------- */

/* APNs refused the provider token j went with (ExpiredProviderToken, InvalidProviderToken). The
 * first refusal of the current token has a new one made (one for the team, whoever waits) and
 * j goes once more with it; a refusal of a token made right after such a refusal (or of the
 * check) means the key itself is refused. true: j is queued again. */
static bool token_refused(struct pp_apns_pool *p, struct job *j, const char *reason)
{
	struct pp_apns_token *t = p->cfg.token;
	bool current = j->token_gen == t->generated;
	char why[PP_REASON_MAX + 40];

	if (j->check || (current && t->remade)) {
		snprintf(why, sizeof(why), "%s, for a new provider token too", reason);
		pp_creds_refused(&p->creds, why, j->check);
		return false;
	}
	if (j->auth_retried || p->creds.refused)
		return false;
	if (current && t->jwt)
		pp_apns_token_refused(t);
	j->auth_retried = true;
	cm_list_insert_head(&p->queue, &j->link);
	return true;
}

static void job_done(void *arg, int err, const struct pp_h2_resp *resp)
{
	struct job *j = arg;
	struct pp_apns_pool *p = j->p;
	struct pconn *pc = j->conn;
	struct pp_result r;

	p->ninflight--;
	j->conn = NULL;
	memset(&r, 0, sizeof(r));
	if (err == -EAGAIN && !p->closing) {
		/* Not processed by the server: another connection takes it, first in line. */
		cm_metrics_inc(p->m.moved);
		cm_list_insert_head(&p->queue, &j->link);
		dispatch(p);
		return;
	}
	if (err) {
		job_fail(j, PP_OUT_FAILED,
		         err == -ETIMEDOUT   ? PP_CAUSE_TIMEOUT
		         : err == -ECANCELED ? PP_CAUSE_SHUTDOWN
		         : err == -EAGAIN    ? PP_CAUSE_SHUTDOWN
		         : err == -ENOMEM    ? PP_CAUSE_INTERNAL
		                             : PP_CAUSE_CONN_LOST,
		         err == -ETIMEDOUT ? "timeout"
		         : err == -ENOMEM  ? "out of memory"
		                           : "connection lost");
		if (!p->closing)
			dispatch(p);
		return;
	}
	pp_apns__result(&r, resp->status, resp->body, resp->body_len);
	snprintf(r.id, sizeof(r.id), "%s", *resp->apns_id ? resp->apns_id : j->msg.apns_id);
	/* Any answer but an authentication refusal means the provider token was accepted: the
	 * server's stream limit applies from now on. */
	if (pc && resp->status != 403 && strcmp(r.reason, "TooManyProviderTokenUpdates"))
		pc->authenticated = true;
	if (resp->status == 403 && p->cfg.token &&
	    (!strcmp(r.reason, "ExpiredProviderToken") ||
	     !strcmp(r.reason, "InvalidProviderToken"))) {
		if (token_refused(p, j, r.reason)) {
			dispatch(p);
			return;
		}
	} else if (resp->status != 403 && resp->status < 500 &&
	           strcmp(r.reason, "TooManyProviderTokenUpdates") &&
	           (!p->cfg.token || j->token_gen == p->cfg.token->generated)) {
		/* APNs took the current token (or certificate), whatever it thought of the rest. */
		if (p->cfg.token)
			pp_apns__token_accepted(p->cfg.token, j->token_gen);
		pp_creds_accepted(&p->creds);
	}
	job_finish(j, &r, resp->retry_after_s);
	if (!p->closing)
		dispatch(p);
}

static int submit(struct pp_apns_pool *p, struct pconn *pc, struct job *j)
{
	struct pp_h2_header h[8];
	size_t n = 0;
	char auth[1024];
	const char *tok;
	bool refreshed = false;
	int r;

	if (p->cfg.token) {
		tok = pp_apns__token_get(p->cfg.token, time(NULL), &refreshed);
		if (!tok || strlen(tok) + 8 > sizeof(auth))
			return -EIO;
		if (refreshed)
			cm_metrics_inc(p->m.token_refresh);
		snprintf(auth, sizeof(auth), "bearer %s", tok);
		h[n++] = (struct pp_h2_header){"authorization", auth};
		j->token_gen = p->cfg.token->generated;
	}
	h[n++] = (struct pp_h2_header){"apns-topic", j->msg.topic};
	h[n++] = (struct pp_h2_header){"apns-push-type", j->msg.push_type};
	h[n++] = (struct pp_h2_header){"apns-priority", j->msg.priority};
	h[n++] = (struct pp_h2_header){"apns-id", j->msg.apns_id};
	if (*j->msg.expiration)
		h[n++] = (struct pp_h2_header){"apns-expiration", j->msg.expiration};
	if (*j->msg.collapse_id)
		h[n++] = (struct pp_h2_header){"apns-collapse-id", j->msg.collapse_id};
	h[n++] = (struct pp_h2_header){"content-type", "application/json"};
	j->conn = pc;
	p->ninflight++;
	r = pp_h2_submit(pc->h2, "POST", j->msg.path, h, n, j->msg.body, j->msg.body_len, job_done,
	                 j);
	if (r) {
		j->conn = NULL;
		p->ninflight--;
	} else
		j->sent++;
	return r;
}

/* While APNs refuses our provider token: queued notifications fail at once, except one let
 * through after the backoff as the check, with a new token. */
static void refused_jobs(struct pp_apns_pool *p)
{
	struct job *check = NULL, *j = q_first(p);
	struct pp_result r;

	if (j && j->check) {
		check = j; /* waiting for a connection, or moved back */
		cm_list_remove(&check->link);
	} else if (j && pp_creds_check_due(&p->creds)) {
		check = j;
		cm_list_remove(&check->link);
		check->check = true;
		if (p->cfg.token)
			pp_apns_token_refused(p->cfg.token);
	}
	pp_creds_fail_result(&p->creds, &r);
	while ((j = q_first(p)) && !p->closing) {
		cm_list_remove(&j->link);
		snprintf(r.id, sizeof(r.id), "%s", j->msg.apns_id);
		job_finish(j, &r, -1);
	}
	if (check && p->closing)
		job_fail(check, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	else if (check)
		cm_list_insert_head(&p->queue, &check->link);
}

static void dispatch(struct pp_apns_pool *p)
{
	struct pconn *pc;
	struct job *j;
	int r;

	/* Callbacks from inside the loop below land here: the loop picks their work up. */
	if (p->dispatching || p->closing)
		return;
	p->dispatching = true;
	if (p->creds.refused)
		refused_jobs(p);
	while ((j = q_first(p)) && (pc = pick(p))) {
		cm_list_remove(&j->link);
		r = submit(p, pc, j);
		if (r == -EAGAIN) {
			cm_list_insert_head(&p->queue, &j->link);
			break;
		}
		if (r) {
			CM_LOGE("apns", "%s: cannot send: %s", p->cfg.name, strerror(-r));
			job_fail(j, PP_OUT_FAILED, PP_CAUSE_INTERNAL, "internal error");
			if (p->closing)
				break;
		}
	}
	maybe_connect(p);
	p->dispatching = false;
}

/* Every tick_ms while the pool is open: attempts that waited too long for a connection end,
 * and a connection is opened once the backoff is over. */
static void on_tick(struct cm_loop_timer *t)
{
	struct pp_apns_pool *p = cm_list_entry(t, struct pp_apns_pool, tick);
	uint64_t now = now_ms(p);
	struct cm_list *n = p->queue.next;
	unsigned scanned = 0;

	if (p->closing) {
		pool_final(p); /* closed without a connection: see pp_apns_pool_close() */
		return;
	}
	cm_loop_timer_start(p->loop, &p->tick, p->cfg.tick_ms);
	while (n != &p->queue && scanned++ < EXPIRE_SCAN_MAX && !p->closing) {
		struct job *j = cm_list_entry(n, struct job, link);

		n = n->next;
		if (j->deadline <= now) {
			cm_list_remove(&j->link);
			job_fail(j, PP_OUT_FAILED,
			         p->failures ? PP_CAUSE_CONNECT : PP_CAUSE_TIMEOUT,
			         p->failures ? "unable to connect" : "no connection in time");
			/* the callback may have queued or removed jobs: start over */
			n = p->queue.next;
		}
	}
	dispatch(p);
}

/* The pool's series, labelled with its app. 0 or the registry's error (logged); the series
 * stay with the registry whatever happens: nothing to undo. */
static int pool_metrics(struct pp_apns_pool *p)
{
	const char *app = p->cfg.name;
	const struct cm_metric_def defs[] = {
	    CM_METRIC_GAUGE_DEF(struct pool_metrics, conns, "platypus_apns_connections",
	                        "open HTTP/2 connections to APNs", "app", app),
	    CM_METRIC_COUNTER_DEF(
	        struct pool_metrics, connect_fail, "platypus_apns_connect_failures_total",
	        "connections to APNs that failed before becoming ready", "app", app),
	    CM_METRIC_COUNTER_DEF(struct pool_metrics, token_refresh,
	                          "platypus_apns_token_refreshes_total",
	                          "provider tokens made (ES256 JWT)", "app", app),
	    CM_METRIC_COUNTER_DEF(struct pool_metrics, moved, "platypus_apns_requests_moved_total",
	                          "requests a connection did not process, sent on another", "app",
	                          app),
	};
	char err[CM_ERR_MAX];
	int r;

	if (!p->cfg.metrics)
		return 0;
	r = cm_metrics_register(p->cfg.metrics, &p->m, defs, sizeof(defs) / sizeof(defs[0]), err,
	                        sizeof(err));
	if (r)
		CM_LOGE("apns", "%s: %s", app, err);
	return r;
}

int pp_apns_pool_alloc(struct pp_apns_pool **out, struct cm_loop *l,
                       const struct pp_apns_pool_config *cfg)
{
	struct pp_apns_pool *p;
	int r;

	*out = NULL;
	if (!cfg->name || !cfg->host || !cfg->tls)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = l;
	p->cfg = *cfg;
	cm_list_init(&p->queue);
	cm_list_init(&p->conns);
	cm_loop_timer_init(&p->tick, on_tick);
	if (pp_apns__id_seed(&p->ids)) {
		free(p);
		return -EIO;
	}
	if (!p->cfg.max_connections)
		p->cfg.max_connections = 1;
	if (!p->cfg.tick_ms)
		p->cfg.tick_ms = 1000;
	if (!p->cfg.backoff_min_ms)
		p->cfg.backoff_min_ms = 1000;
	if (!p->cfg.backoff_max_ms)
		p->cfg.backoff_max_ms = 60000;
	if (p->cfg.backoff_max_ms < p->cfg.backoff_min_ms)
		p->cfg.backoff_max_ms = p->cfg.backoff_min_ms;
	p->ev.writable = conn_writable;
	p->ev.goaway = conn_goaway;
	p->ev.closed = conn_closed;
	r = pp_creds_init(&p->creds, l->uv, "apns", cfg->name, cfg->metrics);
	r = r ? r : pool_metrics(p);
	if (r) {
		free(p);
		return r;
	}
	cm_loop_timer_start(l, &p->tick, p->cfg.tick_ms);
	*out = p;
	return 0;
}

int pp_apns_pool_send(struct pp_apns_pool *p, const struct pp_notif *n, uint64_t deadline_ms,
                      pp_apns_done_cb cb, void *arg, struct pp_result *now)
{
	struct job *j;
	char err[PP_REASON_MAX] = "";
	int r;

	memset(now, 0, sizeof(*now));
	if (p->closing) {
		pp_result_set(now, PP_OUT_BUSY, PP_CAUSE_SHUTDOWN, 0, "shutting down");
		return -ESHUTDOWN;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		pp_result_set(now, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0, "out of memory");
		return -ENOMEM;
	}
	r = pp_apns__msg_build(&j->msg, n, p->cfg.default_topic, time(NULL), err, sizeof(err));
	if (r) {
		free(j);
		pp_result_set(now, PP_OUT_REJECTED,
		              r == -EMSGSIZE ? PP_CAUSE_PAYLOAD_TOO_LARGE
		              : r == -EINVAL ? PP_CAUSE_INVALID_REQUEST
		                             : PP_CAUSE_INTERNAL,
		              0, err);
		if (r != -EMSGSIZE && r != -EINVAL)
			now->outcome = PP_OUT_FAILED;
		return r;
	}
	pp_apns__id_next(&p->ids, j->msg.apns_id);
	j->p = p;
	j->cb = cb;
	j->arg = arg;
	j->deadline = deadline_ms;
	cm_list_insert_tail(&p->queue, &j->link);
	if (p->creds.refused)
		/* It fails at once, but never from within this call: on the next tick, now. */
		cm_loop_timer_start(p->loop, &p->tick, 0);
	else
		dispatch(p);
	return 0;
}

int pp_apns_send(void *pool, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                 void *arg, struct pp_result *now)
{
	return pp_apns_pool_send(pool, n, deadline_ms, cb, arg, now);
}

unsigned pp_apns_pool_pending(const struct pp_apns_pool *p)
{
	const struct cm_list *n;
	unsigned queued = 0;

	/* For /health: a walk of at most dispatch.queue_max jobs, no count kept on the way. */
	cm_list_foreach(n, &p->queue)
	{
		queued++;
	}
	return queued + p->ninflight;
}

bool pp_apns_pool_credentials_ok(const struct pp_apns_pool *p)
{
	return !p->creds.refused;
}

void pp_apns_pool_credentials_changed(struct pp_apns_pool *p)
{
	struct cm_list *n;

	pp_creds_reset(&p->creds);
	cm_list_foreach(n, &p->queue)
	{
		cm_list_entry(n, struct job, link)->check = false;
	}
	if (!p->closing)
		cm_loop_timer_start(p->loop, &p->tick, 0);
}

unsigned pp_apns_pool_connections(const struct pp_apns_pool *p, unsigned *usable)
{
	unsigned u = 0;
	struct cm_list *n;

	cm_list_foreach(n, &p->conns)
	{
		const struct pconn *pc = cm_list_entry(n, struct pconn, link);

		if (!pc->goaway && pp_h2_usable(pc->h2))
			u++;
	}
	if (usable)
		*usable = u;
	return p->nconns;
}

/* Close every connection; each may end (and be unlinked) during the call. */
static void close_conns(struct pp_apns_pool *p, bool graceful)
{
	struct cm_list *n, *next;

	cm_list_foreach_safe(n, next, &p->conns)
	{
		pp_h2_conn_close(cm_list_entry(n, struct pconn, link)->h2, graceful);
	}
}

void pp_apns_pool_close(struct pp_apns_pool *p, bool graceful, void (*done)(void *arg), void *arg)
{
	struct job *j;

	if (p->closing) {
		/* Again, not graceful: what is still in flight is cancelled now. */
		if (!graceful)
			close_conns(p, false);
		return;
	}
	p->closing = true;
	p->done = done;
	p->done_arg = arg;
	cm_loop_timer_stop(p->loop, &p->tick);
	while ((j = q_first(p))) {
		cm_list_remove(&j->link);
		job_fail(j, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	}
	close_conns(p, graceful);
	/* The last connection's closed event ends the pool; without one, the next tick does
	 * (never from within this call: the caller may still be using p). */
	if (!p->nconns)
		cm_loop_timer_start(p->loop, &p->tick, 0);
}
