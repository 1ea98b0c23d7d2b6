/* apns_pool.c - persistent HTTP/2 connections to APNs for one app: queueing, stream limits,
 * provider-token headers, one new token and one resend after a refused token, fail-fast while
 * the token is refused (creds.c), moving unanswered requests, reconnect with backoff. */
#include "apns.h"
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/crypto.h"
#include "cm/log.h"
#include "pp_uv.h"
#include "cm/metrics.h"
#include "h2.h"

#define EXPIRE_SCAN_MAX 256 /* queued attempts looked at per tick */

struct job {
	struct job *prev, *next; /* in the queue */
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
	struct pconn *next;
	struct pp_apns_pool *p;
	struct pp_h2_conn *h2; /* owned until its closed event */
	bool ready;            /* the server's SETTINGS came */
	bool authenticated;    /* a request succeeded: the server's stream limit applies */
	bool goaway;
};

struct pp_apns_pool {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct pp_apns_pool_config cfg;
	struct pp_h2_events ev;
	struct job *qhead, *qtail; /* owned: waiting for a connection */
	unsigned nqueued, ninflight;
	struct pconn *conns; /* owned */
	unsigned nconns;
	unsigned failures;     /* consecutive connections that never became ready */
	uint64_t next_connect; /* backoff: no new connection before (uv_now time) */
	bool dispatching;
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
	struct pp_creds creds; /* a refused provider token: fail fast, check with backoff */
	struct cm_gauge *m_conns;
	struct cm_counter *m_connect_fail, *m_token_refresh, *m_moved;
	struct pp_apns_idgen ids;
};

static void dispatch(struct pp_apns_pool *p);

/* --- queue -------------------------------------------------------------------------------- */

static void q_push_tail(struct pp_apns_pool *p, struct job *j)
{
	j->next = NULL;
	j->prev = p->qtail;
	if (p->qtail)
		p->qtail->next = j;
	else
		p->qhead = j;
	p->qtail = j;
	p->nqueued++;
}

static void q_push_head(struct pp_apns_pool *p, struct job *j)
{
	j->prev = NULL;
	j->next = p->qhead;
	if (p->qhead)
		p->qhead->prev = j;
	else
		p->qtail = j;
	p->qhead = j;
	p->nqueued++;
}

static void q_remove(struct pp_apns_pool *p, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		p->qhead = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		p->qtail = j->prev;
	j->prev = j->next = NULL;
	p->nqueued--;
}

/* End an attempt: the callback may send again or close the pool. */
static void job_finish(struct job *j, const struct pp_result *r, long long retry_after)
{
	struct pp_result out = *r;

	if (j->check)
		pp_creds_check_ended(&j->p->creds); /* unless its answer said something */
	out.attempts = j->sent;
	pp_apns_msg_free(&j->msg);
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
	cm_metrics_set(p->m_conns, (double)p->nconns);
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

static void pool_final(uv_handle_t *h)
{
	struct pp_apns_pool *p = h->data;

	if (p->done)
		p->done(p->done_arg);
	free(p);
}

static void conn_closed(struct pp_h2_conn *h2, int err, bool ever_ready, void *arg)
{
	struct pconn *pc = arg, **pp;
	struct pp_apns_pool *p = pc->p;

	(void)h2;
	for (pp = &p->conns; *pp; pp = &(*pp)->next)
		if (*pp == pc) {
			*pp = pc->next;
			break;
		}
	p->nconns--;
	update_gauge(p);
	free(pc);
	if (!ever_ready && !p->closing) {
		p->failures++;
		p->next_connect = uv_now(p->loop) + backoff_ms(p);
		cm_metrics_inc(p->m_connect_fail);
		CM_LOGW("apns", "%s: connection to %s:%u failed (%s); next try in %llu ms",
		        p->cfg.name, p->cfg.host, p->cfg.port, strerror(-err),
		        (unsigned long long)(p->next_connect - uv_now(p->loop)));
	} else if (err && err != -ECANCELED && !p->closing) {
		CM_LOGI("apns", "%s: connection closed: %s", p->cfg.name, strerror(-err));
	}
	if (p->closing) {
		if (!p->nconns)
			pp_uv_close((uv_handle_t *)&p->timer, pool_final);
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
		p->next_connect = uv_now(p->loop) + backoff_ms(p);
		cm_metrics_inc(p->m_connect_fail);
		CM_LOGW("apns", "%s: cannot start a connection: %s", p->cfg.name, strerror(-r));
		return;
	}
	pc->next = p->conns;
	p->conns = pc;
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
	for (struct pconn *pc = p->conns; pc; pc = pc->next)
		if (room(pc))
			return pc;
	return NULL;
}

/* Open a connection when work waits, none has room, none is being opened, the limit allows and
 * the backoff has passed. One at a time: a failing server sees no storm. */
static void maybe_connect(struct pp_apns_pool *p)
{
	unsigned live = 0;

	if (p->closing || !p->qhead)
		return;
	for (struct pconn *pc = p->conns; pc; pc = pc->next) {
		if (pc->goaway)
			continue;
		if (!pc->ready)
			return; /* one is being opened */
		if (!pc->authenticated)
			return; /* it opens up after its first success */
		if (pc->h2 && pp_h2_peer_max_streams(pc->h2) <= 1)
			return; /* APNs raises the limit right after the first success: wait */
		live++;
	}
	if (live >= p->cfg.max_connections || uv_now(p->loop) < p->next_connect)
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
	q_push_head(p, j);
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
		cm_metrics_inc(p->m_moved);
		q_push_head(p, j);
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
	pp_apns_result(&r, resp->status, resp->body, resp->body_len);
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
			pp_apns_token_accepted(p->cfg.token, j->token_gen);
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
		tok = pp_apns_token_get(p->cfg.token, time(NULL), &refreshed);
		if (!tok || strlen(tok) + 8 > sizeof(auth))
			return -EIO;
		if (refreshed)
			cm_metrics_inc(p->m_token_refresh);
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
	struct job *check = NULL, *j;
	struct pp_result r;

	if (p->qhead && p->qhead->check) {
		check = p->qhead; /* waiting for a connection, or moved back */
		q_remove(p, check);
	} else if (p->qhead && pp_creds_check_due(&p->creds)) {
		check = p->qhead;
		q_remove(p, check);
		check->check = true;
		if (p->cfg.token)
			pp_apns_token_refused(p->cfg.token);
	}
	pp_creds_fail_result(&p->creds, &r);
	while ((j = p->qhead) && !p->closing) {
		q_remove(p, j);
		snprintf(r.id, sizeof(r.id), "%s", j->msg.apns_id);
		job_finish(j, &r, -1);
	}
	if (check && p->closing)
		job_fail(check, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	else if (check)
		q_push_head(p, check);
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
	while (p->qhead && (pc = pick(p))) {
		j = p->qhead;
		q_remove(p, j);
		r = submit(p, pc, j);
		if (r == -EAGAIN) {
			q_push_head(p, j);
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

static void tick(uv_timer_t *t)
{
	struct pp_apns_pool *p = t->data;
	uint64_t now = uv_now(p->loop);
	struct job *j = p->qhead, *next;
	unsigned scanned = 0;

	/* Attempts that waited too long for a connection. */
	while (j && scanned++ < EXPIRE_SCAN_MAX && !p->closing) {
		next = j->next;
		if (j->deadline <= now) {
			q_remove(p, j);
			job_fail(j, PP_OUT_FAILED,
			         p->failures ? PP_CAUSE_CONNECT : PP_CAUSE_TIMEOUT,
			         p->failures ? "unable to connect" : "no connection in time");
			/* the callback may have queued or removed jobs: start over */
			next = p->qhead;
		}
		j = next;
	}
	dispatch(p);
}

int pp_apns_pool_alloc(struct pp_apns_pool **out, uv_loop_t *loop,
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
	p->loop = loop;
	p->cfg = *cfg;
	if (pp_apns_id_seed(&p->ids)) {
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
	if (pp_creds_init(&p->creds, loop, "apns", cfg->name, cfg->metrics)) {
		free(p);
		return -ENOMEM;
	}
	if (cfg->metrics) {
		/* The series stay with the registry whatever happens: nothing to undo. */
		r = cm_metrics_gauge(cfg->metrics, &p->m_conns, "platypus_apns_connections",
		                     "open HTTP/2 connections to APNs", "app", cfg->name, NULL);
		r = r ? r
		      : cm_metrics_counter(cfg->metrics, &p->m_connect_fail,
		                           "platypus_apns_connect_failures_total",
		                           "connections to APNs that failed before becoming ready",
		                           "app", cfg->name, NULL);
		r = r ? r
		      : cm_metrics_counter(cfg->metrics, &p->m_token_refresh,
		                           "platypus_apns_token_refreshes_total",
		                           "provider tokens made (ES256 JWT)", "app", cfg->name,
		                           NULL);
		r = r ? r
		      : cm_metrics_counter(cfg->metrics, &p->m_moved,
		                           "platypus_apns_requests_moved_total",
		                           "requests a connection did not process, sent on another",
		                           "app", cfg->name, NULL);
		if (r) {
			free(p);
			return r;
		}
	}
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, tick, p->cfg.tick_ms, p->cfg.tick_ms);
	*out = p;
	return 0;
}

int pp_apns_pool_send(struct pp_apns_pool *p, const struct pp_notif *n, uint64_t deadline_ms,
                      pp_apns_done_cb cb, void *arg, struct pp_result *now)
{
	struct job *j;
	char err[128] = "";
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
	r = pp_apns_msg_build(&j->msg, n, p->cfg.default_topic, time(NULL), err, sizeof(err));
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
	pp_apns_id_next(&p->ids, j->msg.apns_id);
	j->p = p;
	j->cb = cb;
	j->arg = arg;
	j->deadline = deadline_ms;
	q_push_tail(p, j);
	if (p->creds.refused)
		/* It fails at once, but never from within this call: on the next tick, now. */
		uv_timer_start(&p->timer, tick, 0, p->cfg.tick_ms);
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
	return p->nqueued + p->ninflight;
}

bool pp_apns_pool_credentials_ok(const struct pp_apns_pool *p)
{
	return !p->creds.refused;
}

void pp_apns_pool_credentials_changed(struct pp_apns_pool *p)
{
	pp_creds_reset(&p->creds);
	for (struct job *j = p->qhead; j; j = j->next)
		j->check = false;
	if (!p->closing)
		uv_timer_start(&p->timer, tick, 0, p->cfg.tick_ms);
}

unsigned pp_apns_pool_connections(const struct pp_apns_pool *p, unsigned *usable)
{
	unsigned u = 0;

	for (const struct pconn *pc = p->conns; pc; pc = pc->next)
		if (pc->h2 && !pc->goaway && pp_h2_usable(pc->h2))
			u++;
	if (usable)
		*usable = u;
	return p->nconns;
}

void pp_apns_pool_close(struct pp_apns_pool *p, bool graceful, void (*done)(void *arg), void *arg)
{
	struct job *j;

	if (p->closing) {
		/* Again, not graceful: what is still in flight is cancelled now. */
		if (!graceful)
			for (struct pconn *pc = p->conns, *next; pc; pc = next) {
				next = pc->next;
				pp_h2_conn_close(pc->h2, false);
			}
		return;
	}
	p->closing = true;
	p->done = done;
	p->done_arg = arg;
	while ((j = p->qhead)) {
		q_remove(p, j);
		job_fail(j, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	}
	for (struct pconn *pc = p->conns, *next; pc; pc = next) {
		next = pc->next;
		pp_h2_conn_close(pc->h2, graceful);
	}
	if (!p->nconns)
		pp_uv_close((uv_handle_t *)&p->timer, pool_final);
}
