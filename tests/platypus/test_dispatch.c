/* test_dispatch.c - the dispatcher (platypus/src/dispatch.c) and the retry policy (retry.c):
 * app selection, back-pressure, exactly one outcome, retries within the TTL, drain; with an
 * in-process fake provider, then end to end with the real APNs pool against the mock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/tls.h"
#include "platypus/src/apns.h"
#include "platypus/src/dispatch.h"
#include "platypus/src/retry.h"
#include "tests/platypus/mock_helper.h"

#define KEYS  "tests/mock/keys/"
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* --- retry policy ------------------------------------------------------------------------- */

static struct pp_result res(enum pp_outcome o, enum pp_cause c, const char *reason)
{
	struct pp_result r;

	memset(&r, 0, sizeof(r));
	pp_result_set(&r, o, c, 0, reason);
	return r;
}

static void test_retry_policy(void **state)
{
	struct pp_retry_policy p = {.max_attempts = 4, .base_ms = 100, .max_ms = 1000};
	struct pp_result r = res(PP_OUT_FAILED, PP_CAUSE_PROVIDER, "ServiceUnavailable");

	(void)state;
	/* Exponential with jitter in [d/2, d]. */
	assert_int_equal(pp_retry_delay(&p, &r, 1, -1, 0, 100000, 0), 50);
	assert_int_equal(pp_retry_delay(&p, &r, 1, -1, 0, 100000, 50), 100);
	assert_int_equal(pp_retry_delay(&p, &r, 2, -1, 0, 100000, 0), 100);
	assert_int_equal(pp_retry_delay(&p, &r, 3, -1, 0, 100000, 0), 200);
	/* Attempts used up. */
	assert_int_equal(pp_retry_delay(&p, &r, 4, -1, 0, 100000, 0), -1);
	/* Retry-After wins when longer; never past the deadline. */
	assert_int_equal(pp_retry_delay(&p, &r, 1, 3, 0, 100000, 0), 3000);
	assert_int_equal(pp_retry_delay(&p, &r, 1, 3, 0, 3000, 0), -1);
	assert_int_equal(pp_retry_delay(&p, &r, 1, -1, 1000, 1040, 0), -1);
	/* The cap. */
	p.max_attempts = 50;
	assert_int_equal(pp_retry_delay(&p, &r, 30, -1, 0, 100000, 500), 1000);
	/* What is retried and what is not. */
	r = res(PP_OUT_FAILED, PP_CAUSE_THROTTLED, "TooManyRequests");
	assert_true(pp_retry_retryable(&r));
	r = res(PP_OUT_FAILED, PP_CAUSE_THROTTLED, "TooManyProviderTokenUpdates");
	assert_false(pp_retry_retryable(&r));
	r = res(PP_OUT_FAILED, PP_CAUSE_CONN_LOST, "");
	assert_true(pp_retry_retryable(&r));
	r = res(PP_OUT_DEAD, PP_CAUSE_UNREGISTERED, "Unregistered");
	assert_false(pp_retry_retryable(&r));
	r = res(PP_OUT_REJECTED, PP_CAUSE_BAD_NOTIFICATION, "BadTopic");
	assert_false(pp_retry_retryable(&r));
	r = res(PP_OUT_REJECTED, PP_CAUSE_PAYLOAD_TOO_LARGE, "PayloadTooLarge");
	assert_false(pp_retry_retryable(&r));
	r = res(PP_OUT_REJECTED, PP_CAUSE_AUTH, "InvalidProviderToken");
	assert_false(pp_retry_retryable(&r));
	/* A refused token: the provider remade it and resent once itself; final here. */
	r = res(PP_OUT_REJECTED, PP_CAUSE_AUTH, "ExpiredProviderToken");
	assert_false(pp_retry_retryable(&r));
	r = res(PP_OUT_REJECTED, PP_CAUSE_AUTH, "UNAUTHENTICATED");
	assert_false(pp_retry_retryable(&r));
	assert_int_equal(pp_retry_delay(&p, &r, 1, -1, 0, 1000, 7), -1);
	r = res(PP_OUT_DELIVERED, PP_CAUSE_NONE, "");
	assert_false(pp_retry_retryable(&r));
}

/* Retry-After: delta-seconds and the three HTTP-date forms (RFC 9110 5.6.7, 10.2.3). */
static long long ra(const char *v, time_t now)
{
	return pp_retry_after_parse(v, strlen(v), now);
}

static void test_retry_after_parse(void **state)
{
	const time_t t = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

	(void)state;
	/* delta-seconds, blanks around it allowed */
	assert_int_equal(ra("0", t), 0);
	assert_int_equal(ra("120", t), 120);
	assert_int_equal(ra(" \t7 ", t), 7);
	assert_int_equal(ra("0000000000000000000000000005", t), 5);
	/* huge values are clamped, never overflow */
	assert_int_equal(ra("99999999999999999999999999999", t), PP_RETRY_AFTER_MAX);
	assert_int_equal(ra("2592001", t), PP_RETRY_AFTER_MAX);
	/* the same instant in all three forms, and 90 s later */
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", t), 0);
	assert_int_equal(ra("Sun, 06 Nov 1994 08:51:07 GMT", t), 90);
	assert_int_equal(ra("Sunday, 06-Nov-94 08:51:07 GMT", t), 90);
	assert_int_equal(ra("Sun Nov  6 08:51:07 1994", t), 90);
	assert_int_equal(ra("Sun Nov 16 08:49:37 1994", t), 10 * 86400);
	/* past dates: now */
	assert_int_equal(ra("Sat, 05 Nov 1994 08:49:37 GMT", t), 0);
	assert_int_equal(ra("Thu, 01 Jan 1970 00:00:00 GMT", t), 0);
	/* far future: clamped */
	assert_int_equal(ra("Fri, 31 Dec 9999 23:59:59 GMT", t), PP_RETRY_AFTER_MAX);
	/* across a year end, a leap day, and a leap second */
	assert_int_equal(ra("Thu, 01 Jan 2026 00:00:00 GMT", 1767225599), 1);
	assert_int_equal(ra("Thu, 29 Feb 2024 00:00:00 GMT", 1709078400), 86400);
	assert_int_equal(ra("Sat, 31 Dec 2016 23:59:60 GMT", 1483228799), 1);
	/* RFC 850 two-digit years: at most 50 years ahead, else the century before */
	assert_int_equal(ra("Thursday, 01-Jan-26 00:00:00 GMT", 1767225599), 1);
	assert_int_equal(ra("Monday, 01-Jan-90 00:00:00 GMT", 1767225599), 0);
	/* names are matched without regard to case, as most clients do */
	assert_int_equal(ra("sun, 06 nov 1994 08:51:07 GMT", t), 90);
	/* garbage */
	assert_int_equal(ra("", t), -1);
	assert_int_equal(ra("   ", t), -1);
	assert_int_equal(ra("-5", t), -1);
	assert_int_equal(ra("1.5", t), -1);
	assert_int_equal(ra("12abc", t), -1);
	assert_int_equal(ra("soon", t), -1);
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37", t), -1);      /* no GMT */
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 UTC", t), -1);  /* not GMT */
	assert_int_equal(ra("Sun, 6 Nov 1994 08:49:37 GMT", t), -1);   /* one-digit day */
	assert_int_equal(ra("Sun, 31 Nov 1994 08:49:37 GMT", t), -1);  /* no such day */
	assert_int_equal(ra("Mon, 29 Feb 2100 00:00:00 GMT", t), -1);  /* 2100 is no leap year */
	assert_int_equal(ra("Sun, 06 Nov 1994 24:00:00 GMT", t), -1);  /* hour */
	assert_int_equal(ra("Sun, 06 Nov 1994 08:60:00 GMT", t), -1);  /* minute */
	assert_int_equal(ra("Sun, 06 Foo 1994 08:49:37 GMT", t), -1);  /* month */
	assert_int_equal(ra("Sonday, 06-Nov-94 08:49:37 GMT", t), -1); /* weekday */
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT x", t), -1);
	assert_int_equal(ra("Sun Nov 6 08:49:37 1994", t), -1); /* asctime pads with a blank */
	/* not NUL-terminated: only len bytes count */
	assert_int_equal(pp_retry_after_parse("42junk", 2, t), 42);
	assert_int_equal(pp_retry_after_parse(NULL, 0, t), -1);
}

/* --- a fake provider ---------------------------------------------------------------------- */

struct script {
	struct pp_result r;
	long long retry_after;
};

struct fake {
	uv_timer_t timer;
	struct script script[16];    /* answers in order; past the end: delivered */
	const struct script *always; /* when set: the answer to every attempt */
	unsigned nscript, next;
	unsigned sends;
	bool hold; /* keep attempts in flight until released */
	struct pending {
		pp_attempt_cb cb;
		void *arg;
	} pend[64];
	unsigned npend;
	char last_token[256];
};

static void fake_fire(uv_timer_t *t)
{
	struct fake *f = t->data;

	while (f->npend && !f->hold) {
		struct pending p = f->pend[0];
		struct script s;

		memmove(f->pend, f->pend + 1, --f->npend * sizeof(f->pend[0]));
		if (f->always)
			s = *f->always;
		else if (f->next < f->nscript)
			s = f->script[f->next++];
		else {
			memset(&s, 0, sizeof(s));
			s.r.outcome = PP_OUT_DELIVERED;
			s.r.status = 200;
			s.retry_after = -1;
		}
		p.cb(p.arg, &s.r, s.retry_after);
	}
}

static int fake_send(void *prov, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                     void *arg, struct pp_result *now)
{
	struct fake *f = prov;

	(void)deadline_ms;
	(void)now;
	assert_true(f->npend < 64);
	snprintf(f->last_token, sizeof(f->last_token), "%s", n->token);
	f->sends++;
	f->pend[f->npend++] = (struct pending){cb, arg};
	uv_timer_start(&f->timer, fake_fire, 1, 0);
	return 0;
}

static void fake_script(struct fake *f, enum pp_outcome o, enum pp_cause c, int status,
                        const char *reason, long long retry_after)
{
	struct script *s = &f->script[f->nscript++];

	memset(s, 0, sizeof(*s));
	pp_result_set(&s->r, o, c, status, reason);
	s->retry_after = retry_after;
}

struct dfx {
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: the dispatcher's retries wait on its wheel */
	struct cm_metrics *metrics;
	struct pp_dispatch *d;
	struct fake apns, apns_dev, fcm;
	bool drained;
};

struct got {
	int n;
	struct pp_result r;
};

static void got_cb(void *arg, const struct pp_result *r)
{
	struct got *g = arg;

	g->n++;
	g->r = *r;
}

static struct dfx *dfx_open(unsigned queue_max, uint64_t window_ms)
{
	struct dfx *x = calloc(1, sizeof(*x));
	struct pp_dispatch_config c = {
	    .queue_max = queue_max,
	    .retry_window_ms = window_ms,
	    .retry = {.max_attempts = 3, .base_ms = 20, .max_ms = 100},
	};
	static const char *const tags[] = {"beta", NULL};
	struct pp_app_desc a1 = {.name = "ios",
	                         .service = PP_SVC_APNS,
	                         .mode = PP_MODE_PROD,
	                         .topic = "com.example.app",
	                         .send = fake_send};
	struct pp_app_desc a2 = {.name = "ios-dev",
	                         .service = PP_SVC_APNS,
	                         .mode = PP_MODE_DEV,
	                         .topic = "com.example.app",
	                         .tags = tags,
	                         .send = fake_send};
	struct pp_app_desc a3 = {.name = "android", .service = PP_SVC_FCM, .send = fake_send};

	assert_int_equal(uv_loop_init(&x->loop), 0);
	assert_int_equal(cm_loop_init(&x->cl, &x->loop, 0), 0);
	assert_int_equal(cm_metrics_alloc(&x->metrics), 0);
	c.metrics = x->metrics;
	assert_int_equal(pp_dispatch_alloc(&x->d, &x->cl, &c), 0);
	uv_timer_init(&x->loop, &x->apns.timer);
	uv_timer_init(&x->loop, &x->apns_dev.timer);
	uv_timer_init(&x->loop, &x->fcm.timer);
	x->apns.timer.data = &x->apns;
	x->apns_dev.timer.data = &x->apns_dev;
	x->fcm.timer.data = &x->fcm;
	a1.provider = &x->apns;
	a2.provider = &x->apns_dev;
	a3.provider = &x->fcm;
	assert_int_equal(pp_dispatch_add_app(x->d, &a1), 0);
	assert_int_equal(pp_dispatch_add_app(x->d, &a2), 0);
	assert_int_equal(pp_dispatch_add_app(x->d, &a3), 0);
	assert_int_equal(pp_dispatch_add_app(x->d, &a3), -EEXIST);
	return x;
}

static void drained(void *arg)
{
	((struct dfx *)arg)->drained = true;
}

static void loop_until(uv_loop_t *l, const int *n, int want, uint64_t ms)
{
	uint64_t end;

	uv_update_time(l);
	end = uv_now(l) + ms;
	while (*n < want && uv_now(l) < end)
		uv_run(l, UV_RUN_ONCE);
}

static void dfx_close(struct dfx *x)
{
	pp_dispatch_stop(x->d, drained, x);
	assert_true(x->drained);
	pp_dispatch_free(x->d);
	uv_close((uv_handle_t *)&x->apns.timer, NULL);
	uv_close((uv_handle_t *)&x->apns_dev.timer, NULL);
	uv_close((uv_handle_t *)&x->fcm.timer, NULL);
	cm_loop_close(&x->cl, NULL);
	assert_int_equal(uv_run(&x->loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&x->cl);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	cm_metrics_free(x->metrics);
	free(x);
}

static long metric(struct cm_metrics *m, const char *series)
{
	struct cm_buf b;
	const char *p;
	long v = -1;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_metrics_render(m, &b), 0);
	/* At the start of a line: HELP and TYPE lines name the family too. */
	for (p = strstr(b.data, series); p; p = strstr(p + 1, series))
		if ((p == b.data || p[-1] == '\n') && p[strlen(series)] == ' ') {
			v = strtol(p + strlen(series) + 1, NULL, 10);
			break;
		}
	cm_buf_free(&b);
	return v;
}

static void apns_notif(struct pp_notif *n)
{
	pp_notif_init(n);
	n->service = PP_SVC_APNS;
	n->token = strdup(TOKEN);
	n->has_alert = true;
	n->alert.body = strdup("hi");
}

static void test_select_and_refuse(void **state)
{
	struct dfx *x = dfx_open(2, 0);
	struct pp_notif n;
	struct pp_result r;
	struct got g = {0};

	(void)state;
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	assert_null(n.token);     /* taken */
	assert_int_equal(g.n, 0); /* never from within */
	loop_until(&x->loop, &g.n, 1, 1000);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(x->apns.sends, 1);

	/* dev + tags -> the dev app; a tag no app has -> no pool. */
	apns_notif(&n);
	n.mode = PP_MODE_DEV;
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 2, 1000);
	assert_int_equal(x->apns_dev.sends, 1);
	apns_notif(&n);
	n.tags = calloc(1, sizeof(char *));
	n.tags[0] = strdup("gamma");
	n.ntags = 1;
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -ENOENT);
	assert_int_equal(r.cause, PP_CAUSE_NO_POOL);
	assert_non_null(n.token); /* untouched */
	pp_notif_free(&n);

	/* By app name: the dev app, even without its tag. */
	apns_notif(&n);
	n.mode = PP_MODE_DEV;
	n.app = strdup("ios-dev");
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 3, 1000);
	assert_int_equal(x->apns_dev.sends, 2);
	apns_notif(&n);
	n.app = strdup("nope");
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -ENOENT);
	pp_notif_free(&n);

	/* Invalid: the precise reason comes back. */
	apns_notif(&n);
	free(n.token);
	n.token = strdup("xyz");
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -EINVAL);
	assert_int_equal(r.outcome, PP_OUT_REJECTED);
	assert_string_equal(r.reason, "token: APNs device tokens are hex digits, found 'x' at 0");
	pp_notif_free(&n);

	/* FCM by service. */
	pp_notif_init(&n);
	n.service = PP_SVC_FCM;
	n.token = strdup("fcm-token-1234567890abcdefghijklmnop");
	n.data = json_pack("{s:s}", "k", "v");
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 4, 1000);
	assert_int_equal(x->fcm.sends, 1);

	/* Back-pressure: queue_max 2, the third is busy at once. */
	x->apns.hold = true;
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -EBUSY);
	assert_int_equal(r.outcome, PP_OUT_BUSY);
	assert_int_equal(pp_dispatch_depth(x->d), 2);
	assert_int_equal(metric(x->metrics, "platypus_queue_depth"), 2);
	pp_notif_free(&n);
	x->apns.hold = false;
	uv_timer_start(&x->apns.timer, fake_fire, 1, 0);
	loop_until(&x->loop, &g.n, 6, 1000);
	assert_int_equal(g.n, 6);
	assert_int_equal(pp_dispatch_depth(x->d), 0);
	assert_int_equal(metric(x->metrics,
	                        "platypus_notifications_total{service=\"apns\",app=\"ios\","
	                        "outcome=\"delivered\"}"),
	                 3);
	assert_int_equal(metric(x->metrics, "platypus_submissions_refused_total{reason=\"busy\"}"),
	                 1);
	dfx_close(x);
}

/* Reasons come back whole (they were once cut at 63 bytes, losing the position of a bad
 * character); a client's long name is quoted to PP_QUOTE_MAX bytes, cut before a character
 * rather than in it. */
static void test_reasons_are_whole(void **state)
{
	struct dfx *x = dfx_open(4, 0);
	struct pp_notif n;
	struct pp_result r;
	struct got g = {0};
	char key[128];

	(void)state;
	pp_notif_init(&n);
	n.service = PP_SVC_FCM;
	n.token = strdup("cZ1xY2z3%3AAPA91bH-abc_def0123456789");
	n.data = json_pack("{s:s}", "k", "v");
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -EINVAL);
	assert_string_equal(r.reason,
	                    "token: FCM registration tokens use [A-Za-z0-9_:-], found '%' at 8");

	/* "google." and 56 'a' make 63 bytes; then a 2-byte character across the 64th */
	snprintf(key, sizeof(key), "google.%056d\xc3\xa9%s", 0, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	memset(key + 7, 'a', 56);
	free(n.token);
	n.token = strdup("cZ1xY2z3:APA91bH-abc_def0123456789");
	json_object_set_new(n.data, key, json_string("v"));
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -EINVAL);
	assert_string_equal(r.reason,
	                    "data.google.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                    "aaaaaaa...: reserved by FCM");

	/* a provider's reason longer than the room: cut on a character boundary too */
	{
		char longer[PP_REASON_MAX + 8];

		memset(longer, 'r', sizeof(longer));
		memcpy(longer + PP_REASON_MAX - 2, "\xe2\x82\xac", 3); /* bytes 254..256 */
		longer[sizeof(longer) - 1] = '\0';
		pp_result_set(&r, PP_OUT_REJECTED, PP_CAUSE_BAD_NOTIFICATION, 400, longer);
		assert_int_equal(strlen(r.reason), PP_REASON_MAX - 2);
	}
	pp_notif_free(&n);
	assert_int_equal(g.n, 0);
	dfx_close(x);
}

static void test_retries(void **state)
{
	struct dfx *x = dfx_open(10, 5000);
	struct pp_notif n;
	struct pp_result r;
	struct got g = {0};

	(void)state;
	/* 503 then 200: delivered on the second attempt. */
	fake_script(&x->apns, PP_OUT_FAILED, PP_CAUSE_PROVIDER, 503, "ServiceUnavailable", -1);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 1, 2000);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 2);
	assert_int_equal(x->apns.sends, 2);
	assert_int_equal(metric(x->metrics, "platypus_retries_total{service=\"apns\",app=\"ios\"}"),
	                 1);

	/* 410: final, no retry. */
	fake_script(&x->apns, PP_OUT_DEAD, PP_CAUSE_UNREGISTERED, 410, "Unregistered", -1);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 2, 2000);
	assert_int_equal(g.r.outcome, PP_OUT_DEAD);
	assert_int_equal(g.r.attempts, 1);
	assert_int_equal(x->apns.sends, 3);

	/* 500 three times: attempts used up, failed. */
	for (int i = 0; i < 3; i++)
		fake_script(&x->apns, PP_OUT_FAILED, PP_CAUSE_PROVIDER, 500, "InternalServerError",
		            -1);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 3, 3000);
	assert_int_equal(g.r.outcome, PP_OUT_FAILED);
	assert_int_equal(g.r.attempts, 3);
	assert_int_equal(x->apns.sends, 6);

	/* 429 asking for 10 s with a TTL of 2 s: no retry, and the outcome is failed (the TTL
	 * has not passed yet: the provider may take it later from another instance). */
	fake_script(&x->apns, PP_OUT_FAILED, PP_CAUSE_THROTTLED, 429, "TooManyRequests", 10);
	apns_notif(&n);
	n.ttl = 2;
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 4, 3000);
	assert_int_equal(g.r.outcome, PP_OUT_FAILED);
	assert_int_equal(g.r.cause, PP_CAUSE_THROTTLED);
	assert_int_equal(x->apns.sends, 7);

	/* A retry waiting when stop comes: it ends at once with its last result. */
	fake_script(&x->apns, PP_OUT_FAILED, PP_CAUSE_THROTTLED, 429, "TooManyRequests", 2);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	uv_run(&x->loop, UV_RUN_NOWAIT);
	/* Until the fake has answered it (the 429 puts it in the retry list). */
	for (int i = 0; i < 100 && (x->apns.sends < 8 || x->apns.npend); i++)
		uv_run(&x->loop, UV_RUN_ONCE);
	assert_int_equal(x->apns.sends, 8);
	assert_int_equal(x->apns.npend, 0);
	assert_int_equal(pp_dispatch_depth(x->d), 1);
	pp_dispatch_stop(x->d, drained, x);
	assert_int_equal(g.n, 5);
	assert_int_equal(g.r.cause, PP_CAUSE_THROTTLED);
	assert_true(x->drained);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), -ESHUTDOWN);
	assert_int_equal(r.outcome, PP_OUT_BUSY);
	pp_notif_free(&n);
	dfx_close(x);
}

/* The TTL bounds retries: a 503 storm with a TTL of 1 s ends as expired. */
static void test_expired(void **state)
{
	struct dfx *x = dfx_open(10, 60000);
	struct pp_notif n;
	struct pp_result r;
	struct got g = {0};

	(void)state;
	for (int i = 0; i < 16; i++)
		fake_script(&x->apns, PP_OUT_FAILED, PP_CAUSE_PROVIDER, 503, "ServiceUnavailable",
		            0);
	x->apns.nscript = 16;
	apns_notif(&n);
	n.ttl = 1;
	/* Many attempts allowed: the TTL is what stops it. */
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	loop_until(&x->loop, &g.n, 1, 3000);
	assert_int_equal(g.n, 1);
	assert_true(g.r.outcome == PP_OUT_FAILED || g.r.outcome == PP_OUT_EXPIRED);
	assert_true(g.r.attempts <= 3);
	dfx_close(x);
}

/* Submit count notifications whose first attempt fails with 503 and Retry-After 1 s, all
 * answered at once (no retry can be due before every one waits). */
static void submit_failing(struct dfx *x, struct got *g, int count)
{
	struct script s503;
	struct pp_notif n;
	struct pp_result r;

	memset(&s503, 0, sizeof(s503));
	pp_result_set(&s503.r, PP_OUT_FAILED, PP_CAUSE_PROVIDER, 503, "ServiceUnavailable");
	s503.retry_after = 1;
	x->apns.always = &s503;
	x->apns.hold = true;
	for (int i = 0; i < count; i++) {
		apns_notif(&n);
		assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g[i], &r), 0);
	}
	assert_int_equal(x->apns.npend, count);
	x->apns.hold = false;
	fake_fire(&x->apns.timer);
	x->apns.always = NULL; /* from now on: delivered */
	assert_int_equal(pp_dispatch_depth(x->d), count);
}

/* Many notifications waiting for their retry at once, each on its own timer: every one gets
 * its second attempt, none is lost or repeated, and a stop ends those still waiting. */
static void test_many_retries(void **state)
{
	enum { N = 60 };
	struct dfx *x = dfx_open(N, 10000);
	struct got g[N];
	int done = 0;

	(void)state;
	memset(g, 0, sizeof(g));
	submit_failing(x, g, N);
	assert_int_equal(x->apns.sends, N);
	for (uint64_t end = uv_now(&x->loop) + 5000; done < N && uv_now(&x->loop) < end;) {
		uv_run(&x->loop, UV_RUN_ONCE);
		done = 0;
		for (int i = 0; i < N; i++)
			done += g[i].n;
	}
	assert_int_equal(done, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(g[i].n, 1);
		assert_int_equal(g[i].r.outcome, PP_OUT_DELIVERED);
		assert_int_equal(g[i].r.attempts, 2);
	}
	assert_int_equal(x->apns.sends, 2 * N);
	assert_int_equal(metric(x->metrics, "platypus_retries_total{service=\"apns\",app=\"ios\"}"),
	                 N);

	/* Retries still waiting when the stop comes: each ends at once with its last result. */
	memset(g, 0, sizeof(g));
	submit_failing(x, g, 10);
	pp_dispatch_stop(x->d, drained, x);
	assert_true(x->drained);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(g[i].n, 1);
		assert_int_equal(g[i].r.outcome, PP_OUT_FAILED);
		assert_int_equal(g[i].r.status, 503);
	}
	assert_int_equal(x->apns.sends, 2 * N + 10);
	dfx_close(x);
}

/* Drain: stop waits for what is in flight. */
static void test_drain_waits(void **state)
{
	struct dfx *x = dfx_open(10, 0);
	struct pp_notif n;
	struct pp_result r;
	struct got g = {0};

	(void)state;
	x->apns.hold = true;
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(x->d, &n, got_cb, &g, &r), 0);
	pp_dispatch_stop(x->d, drained, x);
	assert_false(x->drained);
	x->apns.hold = false;
	uv_timer_start(&x->apns.timer, fake_fire, 1, 0);
	loop_until(&x->loop, &g.n, 1, 1000);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_true(x->drained);
	dfx_close(x);
}

/* --- end to end with the APNs mock -------------------------------------------------------- */

struct e2e {
	struct mock mock;
	uv_loop_t loop;
	struct cm_loop cl;
	struct cm_tls *tls;
	struct pp_apns_token token;
	struct pp_apns_pool *pool;
	struct pp_dispatch *d;
	bool pool_closed, drained;
};

static void e2e_pool_closed(void *arg)
{
	((struct e2e *)arg)->pool_closed = true;
}

static void e2e_drained(void *arg)
{
	((struct e2e *)arg)->drained = true;
}

static struct e2e *e2e_open(void)
{
	struct e2e *e = calloc(1, sizeof(*e));
	struct cm_tls_config tc = {.ca_file = KEYS "ca.pem", .alpn = "h2"};
	struct pp_dispatch_config dc = {.retry = {.base_ms = 50, .max_ms = 200}};
	struct pp_apns_pool_config pc = {.name = "ios",
	                                 .default_topic = "com.example.app",
	                                 .host = "127.0.0.1",
	                                 .tick_ms = 20,
	                                 .max_connections = 2};
	struct pp_app_desc a = {.name = "ios",
	                        .service = PP_SVC_APNS,
	                        .topic = "com.example.app",
	                        .send = pp_apns_send};
	char err[256], pem[4096];
	FILE *f;
	size_t len;

	assert_int_equal(mock_start(&e->mock, "apns_mock.py", NULL), 0);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	assert_int_equal(cm_loop_init(&e->cl, &e->loop, 0), 0);
	assert_int_equal(cm_tls_client_alloc(&e->tls, &tc, err, sizeof(err)), 0);
	f = fopen(KEYS "AuthKey_ABC123DEFG.p8", "rb");
	len = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	assert_int_equal(pp_apns_token_init(&e->token, pem, len, "ABC123DEFG", "DEF123GHIJ", 3000,
	                                    err, sizeof(err)),
	                 0);
	pc.token = &e->token;
	pc.tls = e->tls;
	pc.port = (uint16_t)e->mock.port;
	assert_int_equal(pp_apns_pool_alloc(&e->pool, &e->cl, &pc), 0);
	assert_int_equal(pp_dispatch_alloc(&e->d, &e->cl, &dc), 0);
	a.provider = e->pool;
	assert_int_equal(pp_dispatch_add_app(e->d, &a), 0);
	return e;
}

static void e2e_close(struct e2e *e)
{
	pp_dispatch_stop(e->d, e2e_drained, e);
	assert_true(e->drained);
	pp_apns_pool_close(e->pool, true, e2e_pool_closed, e);
	pp_dispatch_free(e->d);
	while (!e->pool_closed)
		uv_run(&e->loop, UV_RUN_ONCE);
	/* Nothing of the pool's is left open: one pass closes the loop's own handles. */
	cm_loop_close(&e->cl, NULL);
	assert_int_equal(uv_run(&e->loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&e->cl);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	assert_int_equal(mock_stop(&e->mock), 0);
	pp_apns_token_close(&e->token);
	cm_tls_free(e->tls);
	free(e);
}

/* A 503 then success; then a connection reset with 20 in flight: every notification is
 * delivered in the end (retried on a new connection). */
static void test_e2e_killed_connection_loses_nothing(void **state)
{
	struct e2e *e = e2e_open();
	enum { N = 20 };
	struct got g[N];
	struct pp_notif n;
	struct pp_result r;
	int done = 0;

	(void)state;
	memset(g, 0, sizeof(g));
	assert_int_equal(mock_post(&e->mock, "/fail", "{\"status\":503}"), 0);
	apns_notif(&n);
	assert_int_equal(pp_dispatch_submit(e->d, &n, got_cb, &g[0], &r), 0);
	loop_until(&e->loop, &g[0].n, 1, 5000);
	assert_int_equal(g[0].r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g[0].r.attempts, 2);

	assert_int_equal(mock_post(&e->mock, "/stall", "{\"ms\":null,\"count\":null}"), 0);
	memset(g, 0, sizeof(g));
	for (int i = 0; i < N; i++) {
		apns_notif(&n);
		assert_int_equal(pp_dispatch_submit(e->d, &n, got_cb, &g[i], &r), 0);
	}
	for (int i = 0; i < 30; i++)
		uv_run(&e->loop, UV_RUN_NOWAIT);
	{
		json_t *j = mock_ctl(&e->mock, "GET", "/requests?wait=21&timeout=5", NULL);

		json_decref(j);
	}
	assert_int_equal(mock_post(&e->mock, "/drop", "{\"now\":true}"), 0);
	assert_int_equal(mock_post(&e->mock, "/reset", "{}"), 0);
	for (uint64_t end = uv_now(&e->loop) + 8000; uv_now(&e->loop) < end;) {
		done = 0;
		for (int i = 0; i < N; i++)
			done += g[i].n;
		if (done == N)
			break;
		uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_int_equal(done, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(g[i].n, 1);
		assert_int_equal(g[i].r.outcome, PP_OUT_DELIVERED);
		assert_true(g[i].r.attempts >= 2);
	}
	e2e_close(e);
}

/* 429 with Retry-After as an HTTP-date 2 s ahead: the retry waits for that date (the mock
 * rounds it up, so at least 2 s pass), then delivers. Only a lower bound: never fragile. */
static void test_e2e_retry_after_date(void **state)
{
	struct e2e *e = e2e_open();
	struct got g;
	struct pp_notif n;
	struct pp_result r;
	uint64_t t0;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(mock_post(&e->mock, "/fail", "{\"status\":429,\"retry_after_date\":2}"),
	                 0);
	apns_notif(&n);
	t0 = uv_hrtime();
	assert_int_equal(pp_dispatch_submit(e->d, &n, got_cb, &g, &r), 0);
	loop_until(&e->loop, &g.n, 1, 10000);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 2);
	assert_true(uv_hrtime() - t0 >= 1900 * 1000000ull);
	e2e_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_policy),
	    cmocka_unit_test(test_retry_after_parse),
	    cmocka_unit_test(test_select_and_refuse),
	    cmocka_unit_test(test_reasons_are_whole),
	    cmocka_unit_test(test_retries),
	    cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_many_retries),
	    cmocka_unit_test(test_drain_waits),
	    cmocka_unit_test(test_e2e_killed_connection_loses_nothing),
	    cmocka_unit_test(test_e2e_retry_after_date),
	};

	signal(SIGPIPE, SIG_IGN);
	cm_log_setup("test_dispatch", CM_LOG_WARN, CM_LOG_TEXT, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
