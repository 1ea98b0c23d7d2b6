/* dispatch.c - from a submitted notification to its one outcome: validation, app selection,
 * attempts, retries within the TTL, back-pressure, metrics. */
#include "dispatch.h"

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

struct app {
	struct cm_list link; /* in the dispatcher's apps, in registration order */
	char *name;
	enum pp_service service;
	enum pp_mode mode;
	char *topic;
	char **tags;
	size_t ntags;
	pp_send_fn send;
	void *provider;
	struct cm_counter *m_out[PP_OUT_COUNT]; /* PP_OUT_BUSY stays NULL: never an outcome */
	struct cm_counter *m_retries;
};

struct item {
	struct cm_list link;        /* in the retries, while waiting for the next attempt */
	struct cm_loop_timer retry; /* that attempt, on the loop's timer wheel */
	struct pp_dispatch *d;
	struct app *app;
	struct pp_notif n; /* owned */
	pp_submit_cb cb;
	void *arg;
	uint64_t accepted;
	uint64_t deadline; /* no attempt starts after it */
	bool ttl_bound;    /* the deadline is the notification's TTL */
	unsigned attempts;
	unsigned resent; /* requests a provider repeated within an attempt (a refused token) */
	struct pp_result last;
};

struct dispatch_metrics {
	struct cm_histogram *latency[2]; /* by enum pp_service */
	struct cm_counter *refused_busy, *refused_invalid, *refused_nopool, *refused_shutdown;
	struct cm_gauge *depth;
};

struct pp_dispatch {
	struct cm_loop *loop; /* borrowed */
	struct pp_dispatch_config cfg;
	struct cm_list apps;    /* owned */
	struct cm_list retries; /* owned items waiting for their next attempt */
	unsigned depth;
	bool stopping;
	void (*drained)(void *arg);
	void *drained_arg;
	struct dispatch_metrics m;
};

static void attempt(struct item *it);

static uint64_t now_ms(const struct pp_dispatch *d)
{
	return uv_now(d->loop->uv);
}

static void depth_add(struct pp_dispatch *d, int delta)
{
	d->depth = (unsigned)((int)d->depth + delta);
	cm_metrics_set(d->m.depth, (double)d->depth);
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

int pp_dispatch_alloc(struct pp_dispatch **out, struct cm_loop *l,
                      const struct pp_dispatch_config *cfg)
{
#define REFUSED_DEF(member, why)                                                                   \
	CM_METRIC_COUNTER_DEF(struct dispatch_metrics, member,                                     \
	                      "platypus_submissions_refused_total", "notifications not accepted",  \
	                      "reason", why)
#define LATENCY_DEF(svc, name)                                                                     \
	CM_METRIC_HISTOGRAM_DEF(struct dispatch_metrics, latency[svc],                             \
	                        "platypus_notification_duration_seconds",                          \
	                        "from acceptance to outcome", cm_metrics_latency_buckets,          \
	                        cm_metrics_latency_nbuckets, "service", name)
	const struct cm_metric_def defs[] = {
	    LATENCY_DEF(PP_SVC_APNS, "apns"),
	    LATENCY_DEF(PP_SVC_FCM, "fcm"),
	    REFUSED_DEF(refused_busy, "busy"),
	    REFUSED_DEF(refused_invalid, "invalid"),
	    REFUSED_DEF(refused_nopool, "no_matching_pool"),
	    REFUSED_DEF(refused_shutdown, "shutdown"),
	    CM_METRIC_GAUGE_DEF(struct dispatch_metrics, depth, "platypus_queue_depth",
	                        "notifications accepted and not finished"),
	};
#undef REFUSED_DEF
#undef LATENCY_DEF
	struct pp_dispatch *d = calloc(1, sizeof(*d));
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->loop = l;
	d->cfg = *cfg;
	cm_list_init(&d->apps);
	cm_list_init(&d->retries);
	if (!d->cfg.queue_max)
		d->cfg.queue_max = 10000;
	if (!d->cfg.retry_window_ms)
		d->cfg.retry_window_ms = 60000;
	if (cfg->metrics) {
		r = cm_metrics_register(cfg->metrics, &d->m, defs, sizeof(defs) / sizeof(defs[0]),
		                        err, sizeof(err));
		if (r) {
			CM_LOGE("dispatch", "%s", err);
			free(d);
			return r;
		}
	}
	*out = d;
	return 0;
}

/* platypus_notifications_total{service,app,outcome} and platypus_retries_total{service,app}
 * for a. 0 or the registry's error (logged). */
static int app_metrics(struct pp_dispatch *d, struct app *a)
{
	const char *svc = pp_service_name(a->service);
	char err[CM_ERR_MAX];
	int r;

#define OUTCOME_DEF(o)                                                                             \
	CM_METRIC_COUNTER_DEF(struct app, m_out[o], "platypus_notifications_total",                \
	                      "notifications by final outcome", "service", svc, "app", a->name,    \
	                      "outcome", pp_outcome_name(o))
	const struct cm_metric_def defs[] = {
	    OUTCOME_DEF(PP_OUT_DELIVERED),
	    OUTCOME_DEF(PP_OUT_DEAD),
	    OUTCOME_DEF(PP_OUT_REJECTED),
	    OUTCOME_DEF(PP_OUT_EXPIRED),
	    OUTCOME_DEF(PP_OUT_FAILED),
	    CM_METRIC_COUNTER_DEF(struct app, m_retries, "platypus_retries_total",
	                          "attempts repeated after a transient failure", "service", svc,
	                          "app", a->name),
	};
#undef OUTCOME_DEF

	if (!d->cfg.metrics)
		return 0;
	r = cm_metrics_register(d->cfg.metrics, a, defs, sizeof(defs) / sizeof(defs[0]), err,
	                        sizeof(err));
	if (r)
		CM_LOGE("dispatch", "app %s: %s", a->name, err);
	return r;
}

static struct app *app_named(struct pp_dispatch *d, const char *name)
{
	struct cm_list *n;

	cm_list_foreach(n, &d->apps)
	{
		struct app *a = cm_list_entry(n, struct app, link);

		if (!strcmp(a->name, name))
			return a;
	}
	return NULL;
}

int pp_dispatch_add_app(struct pp_dispatch *d, const struct pp_app_desc *desc)
{
	struct app *a;
	size_t n = 0;
	int r = -ENOMEM;

	if (!desc->name || !desc->send)
		return -EINVAL;
	if (app_named(d, desc->name))
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
		goto fail;
	for (a->ntags = 0; a->ntags < n; a->ntags++)
		if (!(a->tags[a->ntags] = strdup(desc->tags[a->ntags])))
			goto fail;
	a->service = desc->service;
	a->mode = desc->mode;
	a->send = desc->send;
	a->provider = desc->provider;
	r = app_metrics(d, a);
	if (r)
		goto fail;
	/* Keep the order of registration: the first match wins. */
	cm_list_insert_tail(&d->apps, &a->link);
	return 0;
fail:
	app_free(a);
	return r;
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
	struct cm_list *l;

	cm_list_foreach(l, &d->apps)
	{
		struct app *a = cm_list_entry(l, struct app, link);

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
	uint64_t now = now_ms(d);
	double secs = (double)(now - it->accepted) / 1000.0;

	fin.attempts = it->attempts + it->resent;
	/* A transient failure that ran into the notification's TTL is an expiry. */
	if (fin.outcome == PP_OUT_FAILED && it->ttl_bound && now >= it->deadline)
		fin.outcome = PP_OUT_EXPIRED;
	cm_metrics_inc(it->app->m_out[fin.outcome]);
	cm_metrics_observe(d->m.latency[it->app->service], secs);
	CM_LOGD("dispatch", "%s %s: %s (%s, %d %s) after %u attempts",
	        pp_service_name(it->app->service), it->app->name, pp_outcome_name(fin.outcome),
	        fin.id, fin.status, fin.reason, fin.attempts);
	depth_add(d, -1);
	it->cb(it->arg, &fin);
	pp_notif_free(&it->n);
	free(it);
	maybe_drained(d);
}

/* A retry is due: out of the retries, into its next attempt. */
static void on_retry(struct cm_loop_timer *t)
{
	struct item *it = cm_list_entry(t, struct item, retry);

	cm_list_remove(&it->link);
	attempt(it);
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
	                                     now_ms(d), it->deadline, rnd);
	if (delay < 0) {
		finish(it, r);
		return;
	}
	cm_metrics_inc(it->app->m_retries);
	CM_LOGD("dispatch", "%s: %s %d %s: retry in %lld ms", it->app->name,
	        pp_outcome_name(r->outcome), r->status, r->reason, delay);
	/* Each waits on the loop's timer wheel: arming is O(1), whatever else is waiting. */
	cm_list_insert_tail(&d->retries, &it->link);
	cm_loop_timer_start(d->loop, &it->retry, (uint64_t)delay);
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
	uint64_t now = now_ms(d), window;

	if (d->stopping)
		return refuse(r, d->m.refused_shutdown, PP_OUT_BUSY, PP_CAUSE_SHUTDOWN,
		              "shutting down", -ESHUTDOWN);
	if (d->depth >= d->cfg.queue_max)
		return refuse(r, d->m.refused_busy, PP_OUT_BUSY, PP_CAUSE_BUSY, "queue full",
		              -EBUSY);
	if (pp_notif_validate(n, err, sizeof(err)))
		return refuse(r, d->m.refused_invalid, PP_OUT_REJECTED, PP_CAUSE_INVALID_REQUEST,
		              err, -EINVAL);
	a = select_app(d, n);
	if (!a)
		return refuse(r, d->m.refused_nopool, PP_OUT_REJECTED, PP_CAUSE_NO_POOL,
		              "no matching pool", -ENOENT);
	it = calloc(1, sizeof(*it));
	if (!it)
		return refuse(r, NULL, PP_OUT_FAILED, PP_CAUSE_INTERNAL, "out of memory", -ENOMEM);
	it->d = d;
	cm_list_init(&it->link);
	cm_loop_timer_init(&it->retry, on_retry);
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
				cm_metrics_inc(d->m.refused_invalid);
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
	struct cm_list *n;

	d->stopping = true;
	d->drained = drained;
	d->drained_arg = arg;
	while ((n = cm_list_pop(&d->retries)) != NULL) {
		struct item *it = cm_list_entry(n, struct item, link);

		cm_loop_timer_stop(d->loop, &it->retry);
		finish(it, &it->last);
	}
	maybe_drained(d);
}

void pp_dispatch_free(struct pp_dispatch *d)
{
	struct cm_list *n;

	if (!d)
		return;
	while ((n = cm_list_pop(&d->apps)) != NULL)
		app_free(cm_list_entry(n, struct app, link));
	free(d);
}
