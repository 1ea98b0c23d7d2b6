/* dispatch.c - from a submitted notification to its one outcome: validation, app selection,
 * attempts, retries within the TTL, back-pressure, metrics. */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/crypto.h"
#include "cm/log.h"
#include "pp_uv.h"
#include "cm/metrics.h"

#define RETRY_BATCH 256 /* retries started per timer run */

struct app {
	struct app *next;
	char *name;
	enum pp_service service;
	enum pp_mode mode;
	char *topic;
	char **tags;
	size_t ntags;
	pp_send_fn send;
	void *provider;
	struct cm_counter *m_out[PP_OUT_COUNT];
	struct cm_counter *m_retries;
};

struct item {
	struct item *next; /* in the retry list */
	struct pp_dispatch *d;
	struct app *app;
	struct pp_notif n; /* owned */
	pp_submit_cb cb;
	void *arg;
	uint64_t accepted;
	uint64_t deadline; /* no attempt starts after it */
	bool ttl_bound;    /* the deadline is the notification's TTL */
	unsigned attempts;
	unsigned resent;   /* requests a provider repeated within an attempt (a refused token) */
	uint64_t retry_at; /* while in the retry list */
	struct pp_result last;
};

struct pp_dispatch {
	uv_loop_t *loop;
	uv_timer_t timer; /* the earliest retry */
	struct pp_dispatch_config cfg;
	struct app *apps;     /* owned */
	struct item *retries; /* owned: waiting for their next attempt */
	unsigned depth;
	bool stopping;
	void (*drained)(void *arg);
	void *drained_arg;
	struct cm_histogram *m_latency[2];
	struct cm_counter *m_refused_busy, *m_refused_invalid, *m_refused_nopool,
	    *m_refused_shutdown;
	struct cm_gauge *m_depth;
};

static void attempt(struct item *it);
static void retry_timer_cb(uv_timer_t *t);

static void depth_add(struct pp_dispatch *d, int delta)
{
	d->depth = (unsigned)((int)d->depth + delta);
	cm_metrics_set(d->m_depth, (double)d->depth);
}

static void app_free(struct app *a)
{
	free(a->name);
	free(a->topic);
	for (size_t i = 0; i < a->ntags; i++)
		free(a->tags[i]);
	free(a->tags);
	free(a);
}

int pp_dispatch_alloc(struct pp_dispatch **out, uv_loop_t *loop,
                      const struct pp_dispatch_config *cfg)
{
	struct pp_dispatch *d = calloc(1, sizeof(*d));
	struct cm_metrics *m = cfg->metrics;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->cfg = *cfg;
	if (!d->cfg.queue_max)
		d->cfg.queue_max = 10000;
	if (!d->cfg.retry_window_ms)
		d->cfg.retry_window_ms = 60000;
	if (m) {
		cm_metrics_histogram(m, &d->m_latency[PP_SVC_APNS],
		                     "platypus_notification_duration_seconds",
		                     "from acceptance to outcome", cm_metrics_latency_buckets,
		                     cm_metrics_latency_nbuckets, "service", "apns", NULL);
		cm_metrics_histogram(m, &d->m_latency[PP_SVC_FCM],
		                     "platypus_notification_duration_seconds",
		                     "from acceptance to outcome", cm_metrics_latency_buckets,
		                     cm_metrics_latency_nbuckets, "service", "fcm", NULL);
#define REFUSED(var, r)                                                                            \
	cm_metrics_counter(m, &d->var, "platypus_submissions_refused_total",                       \
	                   "notifications not accepted", "reason", r, NULL)
		REFUSED(m_refused_busy, "busy");
		REFUSED(m_refused_invalid, "invalid");
		REFUSED(m_refused_nopool, "no_matching_pool");
		REFUSED(m_refused_shutdown, "shutdown");
#undef REFUSED
		cm_metrics_gauge(m, &d->m_depth, "platypus_queue_depth",
		                 "notifications accepted and not finished", NULL);
	}
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
	*out = d;
	return 0;
}

int pp_dispatch_add_app(struct pp_dispatch *d, const struct pp_app_desc *desc)
{
	struct app *a;
	size_t n = 0;

	if (!desc->name || !desc->send)
		return -EINVAL;
	for (a = d->apps; a; a = a->next)
		if (!strcmp(a->name, desc->name))
			return -EEXIST;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->name = strdup(desc->name);
	a->topic = desc->topic ? strdup(desc->topic) : NULL;
	while (desc->tags && desc->tags[n])
		n++;
	a->tags = n ? calloc(n, sizeof(char *)) : NULL;
	if (!a->name || (desc->topic && !a->topic) || (n && !a->tags))
		goto nomem;
	for (a->ntags = 0; a->ntags < n; a->ntags++)
		if (!(a->tags[a->ntags] = strdup(desc->tags[a->ntags])))
			goto nomem;
	a->service = desc->service;
	a->mode = desc->mode;
	a->send = desc->send;
	a->provider = desc->provider;
	if (d->cfg.metrics) {
		for (int o = 0; o < PP_OUT_COUNT; o++)
			if (o != PP_OUT_BUSY)
				cm_metrics_counter(
				    d->cfg.metrics, &a->m_out[o], "platypus_notifications_total",
				    "notifications by final outcome", "service",
				    pp_service_name(a->service), "app", a->name, "outcome",
				    pp_outcome_name((enum pp_outcome)o), NULL);
		cm_metrics_counter(d->cfg.metrics, &a->m_retries, "platypus_retries_total",
		                   "attempts repeated after a transient failure", "service",
		                   pp_service_name(a->service), "app", a->name, NULL);
	}
	/* Keep the order of registration: the first match wins. */
	{
		struct app **pp = &d->apps;

		while (*pp)
			pp = &(*pp)->next;
		*pp = a;
	}
	return 0;
nomem:
	app_free(a);
	return -ENOMEM;
}

static bool has_tags(const struct app *a, const struct pp_notif *n)
{
	for (size_t i = 0; i < n->ntags; i++) {
		bool found = false;

		for (size_t k = 0; k < a->ntags && !found; k++)
			found = !strcmp(a->tags[k], n->tags[i]);
		if (!found)
			return false;
	}
	return true;
}

static bool topic_matches(const struct app *a, const char *topic)
{
	size_t la;

	if (!a->topic || !topic)
		return false;
	la = strlen(a->topic);
	return !strcmp(a->topic, topic) ||
	       (!strncmp(a->topic, topic, la) && !strcmp(topic + la, ".voip"));
}

/* The app for n: named, else the first of its service and mode with all its tags, preferring
 * one whose topic is n's. */
static struct app *select_app(struct pp_dispatch *d, const struct pp_notif *n)
{
	struct app *first = NULL;

	for (struct app *a = d->apps; a; a = a->next) {
		if (a->service != n->service || a->mode != n->mode)
			continue;
		if (n->app) {
			if (!strcmp(a->name, n->app))
				return a;
			continue;
		}
		if (!has_tags(a, n))
			continue;
		if (n->service == PP_SVC_APNS && topic_matches(a, n->topic))
			return a;
		if (!first)
			first = a;
	}
	return first;
}

static void maybe_drained(struct pp_dispatch *d)
{
	void (*cb)(void *) = d->drained;

	if (d->stopping && !d->depth && cb) {
		d->drained = NULL;
		cb(d->drained_arg);
	}
}

/* The one outcome. */
static void finish(struct item *it, const struct pp_result *r)
{
	struct pp_dispatch *d = it->d;
	struct pp_result fin = *r;
	double secs = (double)(uv_now(d->loop) - it->accepted) / 1000.0;

	fin.attempts = it->attempts + it->resent;
	/* A transient failure that ran into the notification's TTL is an expiry. */
	if (fin.outcome == PP_OUT_FAILED && it->ttl_bound && uv_now(d->loop) >= it->deadline)
		fin.outcome = PP_OUT_EXPIRED;
	cm_metrics_inc(it->app->m_out[fin.outcome]);
	cm_metrics_observe(d->m_latency[it->app->service], secs);
	CM_LOGD("dispatch", "%s %s: %s (%s, %d %s) after %u attempts",
	        pp_service_name(it->app->service), it->app->name, pp_outcome_name(fin.outcome),
	        fin.id, fin.status, fin.reason, fin.attempts);
	depth_add(d, -1);
	it->cb(it->arg, &fin);
	pp_notif_free(&it->n);
	free(it);
	maybe_drained(d);
}

static void arm_timer(struct pp_dispatch *d)
{
	uint64_t first = UINT64_MAX, now = uv_now(d->loop);

	for (struct item *it = d->retries; it; it = it->next)
		if (it->retry_at < first)
			first = it->retry_at;
	if (first == UINT64_MAX) {
		uv_timer_stop(&d->timer);
		return;
	}
	uv_timer_start(&d->timer, retry_timer_cb, first > now ? first - now : 0, 0);
}

static void retry_timer_cb(uv_timer_t *t)
{
	struct pp_dispatch *d = t->data;
	uint64_t now = uv_now(d->loop);
	struct item *due = NULL, **pp = &d->retries;
	unsigned n = 0;

	/* Take the due ones out first: attempts may add to the list. */
	while (*pp && n < RETRY_BATCH) {
		struct item *it = *pp;

		if (it->retry_at <= now) {
			*pp = it->next;
			it->next = due;
			due = it;
			n++;
		} else
			pp = &it->next;
	}
	while (due) {
		struct item *it = due;

		due = it->next;
		it->next = NULL;
		attempt(it);
	}
	arm_timer(d);
}

static void attempt_done(void *arg, const struct pp_result *r, long long retry_after_s)
{
	struct item *it = arg;
	struct pp_dispatch *d = it->d;
	uint32_t rnd = 0;
	long long delay;

	it->last = *r;
	if (r->attempts > 1)
		it->resent += r->attempts - 1;
	if (pp_retry_retryable(r)) /* the jitter; most results are final */
		cm_crypto_random(&rnd, sizeof(rnd));
	delay = d->stopping ? -1
	                    : pp_retry_delay(&d->cfg.retry, r, it->attempts, retry_after_s,
	                                     uv_now(d->loop), it->deadline, rnd);
	if (delay < 0) {
		finish(it, r);
		return;
	}
	cm_metrics_inc(it->app->m_retries);
	CM_LOGD("dispatch", "%s: %s %d %s: retry in %lld ms", it->app->name,
	        pp_outcome_name(r->outcome), r->status, r->reason, delay);
	it->retry_at = uv_now(d->loop) + (uint64_t)delay;
	it->next = d->retries;
	d->retries = it;
	arm_timer(d);
}

static void attempt(struct item *it)
{
	struct pp_result now;
	int r;

	it->attempts++;
	r = it->app->send(it->app->provider, &it->n, it->deadline, attempt_done, it, &now);
	if (r)
		/* Refused at once (shutting down, out of memory): the outcome is that. */
		attempt_done(it, &now, -1);
}

static int refuse(struct pp_result *r, struct cm_counter *c, enum pp_outcome o, enum pp_cause cause,
                  const char *why, int err)
{
	memset(r, 0, sizeof(*r));
	pp_result_set(r, o, cause, 0, why);
	cm_metrics_inc(c);
	return err;
}

int pp_dispatch_submit(struct pp_dispatch *d, struct pp_notif *n, pp_submit_cb cb, void *arg,
                       struct pp_result *r)
{
	struct item *it;
	struct app *a;
	char err[sizeof(r->reason)];
	uint64_t now = uv_now(d->loop), window;

	if (d->stopping)
		return refuse(r, d->m_refused_shutdown, PP_OUT_BUSY, PP_CAUSE_SHUTDOWN,
		              "shutting down", -ESHUTDOWN);
	if (d->depth >= d->cfg.queue_max)
		return refuse(r, d->m_refused_busy, PP_OUT_BUSY, PP_CAUSE_BUSY, "queue full",
		              -EBUSY);
	if (pp_notif_validate(n, err, sizeof(err)))
		return refuse(r, d->m_refused_invalid, PP_OUT_REJECTED, PP_CAUSE_INVALID_REQUEST,
		              err, -EINVAL);
	a = select_app(d, n);
	if (!a)
		return refuse(r, d->m_refused_nopool, PP_OUT_REJECTED, PP_CAUSE_NO_POOL,
		              "no matching pool", -ENOENT);
	it = calloc(1, sizeof(*it));
	if (!it)
		return refuse(r, NULL, PP_OUT_FAILED, PP_CAUSE_INTERNAL, "out of memory", -ENOMEM);
	it->d = d;
	it->app = a;
	it->cb = cb;
	it->arg = arg;
	it->accepted = now;
	window = d->cfg.retry_window_ms;
	if (n->ttl >= 0 && (uint64_t)n->ttl * 1000 < window) {
		/* TTL 0 ("now or never") still gets its first attempt: a small grace. */
		window = n->ttl ? (uint64_t)n->ttl * 1000 : 1000;
		it->ttl_bound = true;
	}
	it->deadline = now + window;
	/* Take the content: the caller's struct is left empty. */
	it->n = *n;
	pp_notif_init(n);
	it->attempts = 1;
	{
		struct pp_result now_r;
		int rc = a->send(a->provider, &it->n, it->deadline, attempt_done, it, &now_r);

		if (rc) {
			/* Refused before any attempt (payload too large, ...): give the
			 * notification back untouched and report at once, no callback. */
			*n = it->n;
			free(it);
			*r = now_r;
			if (now_r.cause == PP_CAUSE_INVALID_REQUEST ||
			    now_r.cause == PP_CAUSE_PAYLOAD_TOO_LARGE)
				cm_metrics_inc(d->m_refused_invalid);
			return rc;
		}
	}
	depth_add(d, 1);
	return 0;
}

unsigned pp_dispatch_depth(const struct pp_dispatch *d)
{
	return d->depth;
}

void pp_dispatch_stop(struct pp_dispatch *d, void (*drained)(void *arg), void *arg)
{
	struct item *it;

	d->stopping = true;
	d->drained = drained;
	d->drained_arg = arg;
	uv_timer_stop(&d->timer);
	while ((it = d->retries)) {
		d->retries = it->next;
		it->next = NULL;
		finish(it, &it->last);
	}
	maybe_drained(d);
}

static void dispatch_closed(uv_handle_t *h)
{
	struct pp_dispatch *d = h->data;
	struct app *a;

	while ((a = d->apps)) {
		d->apps = a->next;
		app_free(a);
	}
	free(d);
}

void pp_dispatch_free(struct pp_dispatch *d)
{
	if (!d)
		return;
	pp_uv_close((uv_handle_t *)&d->timer, dispatch_closed);
}
