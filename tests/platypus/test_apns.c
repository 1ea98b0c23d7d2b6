/* test_apns.c - the HTTP/2 client (platypus/src/h2.c) and the APNs pool (apns_pool.c) against
 * the strict APNs mock (tests/mock/apns_mock.py, run as a subprocess): headers, provider token,
 * stream limits, dead tokens, GOAWAY, dropped connections, timeouts, backoff, certificate auth,
 * PING. */
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
#include "platypus/src/h2.h"
#include "platypus/src/notif.h"
#include "tests/platypus/fake_resolver.h"
#include "tests/platypus/mock_helper.h"
#include "tests/support/alloc.h"
#include "tests/support/metrics.h"

#define KEYS  "tests/mock/keys/"
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fx {
	struct mock mock;
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: streams and the timer wheel */
	struct cm_tls *tls;
	struct pp_apns_token token;
	struct cm_metrics *metrics;
	struct pp_apns_pool *pool;
	bool pool_closed;
};

struct outcome {
	bool done;
	struct pp_result r;
	long long retry_after;
	int *count; /* incremented when done, may be NULL */
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);

	assert_non_null(f);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void fx_tls(struct fx *f, bool client_cert)
{
	struct cm_tls_config tc = {.ca_file = KEYS "ca.pem", .alpn = "h2"};
	char err[256];

	if (client_cert) {
		tc.cert_file = KEYS "client.pem";
		tc.key_file = KEYS "client.key";
	}
	assert_int_equal(cm_tls_client_alloc(&f->tls, &tc, err, sizeof(err)), 0);
}

static void fx_pool(struct fx *f, struct pp_apns_pool_config *pc)
{
	pc->name = "test";
	pc->default_topic = pc->default_topic ? pc->default_topic : "com.example.app";
	pc->tls = f->tls;
	pc->host = pc->host ? pc->host : "127.0.0.1";
	pc->port = pc->port ? pc->port : (uint16_t)f->mock.port;
	pc->metrics = f->metrics;
	if (!pc->tick_ms)
		pc->tick_ms = 20;
	assert_int_equal(pp_apns_pool_alloc(&f->pool, &f->cl, pc), 0);
}

static struct fx *fx_open(const char *const *mock_args, bool token_auth)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256], *pem;
	size_t len;

	assert_int_equal(mock_start(&f->mock, "apns_mock.py", mock_args), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(cm_loop_init(&f->cl, &f->loop, 0), 0);
	assert_int_equal(cm_metrics_alloc(&f->metrics), 0);
	fx_tls(f, !token_auth);
	if (token_auth) {
		pem = slurp(KEYS "AuthKey_ABC123DEFG.p8", &len);
		assert_int_equal(pp_apns_token_init(&f->token, pem, len, "ABC123DEFG", "DEF123GHIJ",
		                                    3000, err, sizeof(err)),
		                 0);
		free(pem);
	}
	return f;
}

static void pool_closed(void *arg)
{
	((struct fx *)arg)->pool_closed = true;
}

static void run_until(struct fx *f, bool *flag, uint64_t ms)
{
	uint64_t end = uv_now(&f->loop) + ms;

	while (!*flag && uv_now(&f->loop) < end)
		uv_run(&f->loop, UV_RUN_ONCE);
}

static void run_for(struct fx *f, uint64_t ms)
{
	bool never = false;

	run_until(f, &never, ms);
}

static void fx_close(struct fx *f)
{
	if (f->pool) {
		pp_apns_pool_close(f->pool, false, pool_closed, f);
		run_until(f, &f->pool_closed, 5000);
		assert_true(f->pool_closed);
	}
	/* Nothing of the pool's is left open: one pass closes the loop's own handles. */
	cm_loop_close(&f->cl, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&f->cl);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(mock_stop(&f->mock), 0);
	pp_apns_token_close(&f->token);
	cm_tls_free(f->tls);
	cm_metrics_free(f->metrics);
	free(f);
}

static void done_cb(void *arg, const struct pp_result *r, long long retry_after)
{
	struct outcome *o = arg;

	assert_false(o->done); /* exactly once */
	o->done = true;
	o->r = *r;
	o->retry_after = retry_after;
	if (o->count)
		(*o->count)++;
}

static void notif_alert(struct pp_notif *n, const char *token)
{
	pp_notif_init(n);
	n->service = PP_SVC_APNS;
	n->token = strdup(token);
	n->has_alert = true;
	n->alert.title = strdup("Alice");
	n->alert.body = strdup("Hi");
}

static void send_one(struct fx *f, const struct pp_notif *n, struct outcome *o, uint64_t wait_ms)
{
	struct pp_result now;

	memset(o, 0, sizeof(*o));
	assert_int_equal(
	    pp_apns_pool_send(f->pool, n, uv_now(&f->loop) + wait_ms, done_cb, o, &now), 0);
	run_until(f, &o->done, wait_ms + 2000);
	assert_true(o->done);
}

/* A counter's value from the registry's exposition, -1 when absent. */
static long metric(struct fx *f, const char *series)
{
	struct cm_buf b;
	const char *p;
	long v = -1;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_metrics_render(f->metrics, &b), 0);
	/* At the start of a line: HELP and TYPE lines name the family too. */
	for (p = strstr(b.data, series); p; p = strstr(p + 1, series))
		if ((p == b.data || p[-1] == '\n') && p[strlen(series)] == ' ') {
			v = strtol(p + strlen(series) + 1, NULL, 10);
			break;
		}
	cm_buf_free(&b);
	return v;
}

static void test_delivered_with_all_headers(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token};
	struct pp_notif n;
	struct outcome o;
	json_t *rec, *e;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	n.ttl = 60;
	n.collapse_id = strdup("c1");
	n.data = json_pack("{s:s}", "k", "v");
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(o.r.status, 200);
	assert_int_equal(strlen(o.r.id), 36);

	rec = mock_requests(&f->mock, 1);
	e = json_array_get(json_object_get(rec, "requests"), 0);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "path")), "/3/device/" TOKEN);
	assert_true(json_is_true(json_object_get(e, "provider_token_valid")));
	assert_string_equal(rec_header(e, "apns-topic"), "com.example.app");
	assert_string_equal(rec_header(e, "apns-push-type"), "alert");
	assert_string_equal(rec_header(e, "apns-priority"), "10");
	assert_string_equal(rec_header(e, "apns-collapse-id"), "c1");
	assert_non_null(rec_header(e, "apns-expiration"));
	assert_string_equal(rec_header(e, "apns-id"), o.r.id);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(json_object_get(e, "json"), "aps"), "alert"),
	        "body")),
	    "Hi");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "json"), "k")),
	                    "v");
	json_decref(rec);
	pp_notif_free(&n);
	fx_close(f);
}

/* 300 at once on one connection: one stream until the first success, then the server's limit
 * (the mock advertises 1000); one token for all; nothing refused. */
static void test_many_share_one_connection_and_token(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token, .max_connections = 4};
	enum { N = 300 };
	struct outcome *o = calloc(N, sizeof(*o));
	struct pp_notif n;
	struct pp_result now;
	int count = 0;
	json_t *conns, *open;
	bool all = false;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	for (int i = 0; i < N; i++) {
		o[i].count = &count;
		assert_int_equal(
		    pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 10000, done_cb, &o[i], &now),
		    0);
	}
	for (uint64_t end = uv_now(&f->loop) + 15000; count < N && uv_now(&f->loop) < end;)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(count, N);
	all = true;
	for (int i = 0; i < N; i++)
		all = all && o[i].r.outcome == PP_OUT_DELIVERED;
	assert_true(all);
	assert_int_equal(f->token.generated, 1);
	conns = mock_ctl(&f->mock, "GET", "/connections", NULL);
	open = json_object_get(conns, "open");
	assert_int_equal(json_array_size(open), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(open, 0), "refused_streams")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(open, 0), "requests")),
	                 N);
	json_decref(conns);
	free(o);
	pp_notif_free(&n);
	fx_close(f);
}

static void test_dead_token_and_errors(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token};
	struct pp_notif n;
	struct outcome o;
	struct pp_result now;
	char big[6000];

	(void)state;
	fx_pool(f, &pc);
	assert_int_equal(mock_post(&f->mock, "/dead", "{\"token\":\"" TOKEN "\"}"), 0);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DEAD);
	assert_int_equal(o.r.status, 410);
	assert_string_equal(o.r.reason, "Unregistered");

	/* 503 with Retry-After: a failure the retry layer may repeat, with the delay. */
	assert_int_equal(mock_post(&f->mock, "/alive", "{\"token\":\"" TOKEN "\"}"), 0);
	assert_int_equal(mock_post(&f->mock, "/fail", "{\"status\":503,\"retry_after\":7}"), 0);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.r.cause, PP_CAUSE_PROVIDER);
	assert_string_equal(o.r.reason, "ServiceUnavailable");
	assert_int_equal(o.retry_after, 7);

	/* A topic the team may not use: final. */
	n.topic = strdup("org.other.app");
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_REJECTED);
	assert_int_equal(o.r.cause, PP_CAUSE_BAD_NOTIFICATION);
	assert_string_equal(o.r.reason, "TopicDisallowed");

	/* Too large: refused before sending. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	n.data = json_pack("{s:s}", "k", big);
	assert_int_equal(pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 1000, done_cb, &o, &now),
	                 -EMSGSIZE);
	assert_int_equal(now.outcome, PP_OUT_REJECTED);
	assert_int_equal(now.cause, PP_CAUSE_PAYLOAD_TOO_LARGE);
	pp_notif_free(&n);

	/* Silent and VoIP pushes pass the mock's push-type rules. */
	pp_notif_init(&n);
	n.token = strdup(TOKEN);
	n.data = json_pack("{s:s}", "k", "v");
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	n.voip = true;
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	pp_notif_free(&n);
	fx_close(f);
}

/* Retry-After in each HTTP-date form reaches the caller as seconds from now; the mock sends the
 * time 3 s after its answer (rounded up), so the value is 3 or 4 less the seconds the answer
 * took to arrive and be read. Unreadable values are -1. */
static void test_retry_after_forms(void **state)
{
	static const char *const rules[] = {
	    "{\"status\":503,\"retry_after_date\":3}",
	    "{\"status\":503,\"retry_after_date\":3,\"retry_after_form\":\"rfc850\"}",
	    "{\"status\":429,\"retry_after_date\":3,\"retry_after_form\":\"asctime\"}",
	};
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token};
	struct pp_notif n;
	struct outcome o;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		time_t t0, t1;

		assert_int_equal(mock_post(&f->mock, "/fail", rules[i]), 0);
		t0 = time(NULL);
		send_one(f, &n, &o, 3000);
		t1 = time(NULL);
		assert_int_equal(o.r.outcome, PP_OUT_FAILED);
		assert_true(o.retry_after <= 4);
		assert_true(o.retry_after >= 2 - (long long)(t1 - t0));
		assert_true(o.retry_after >= 0);
	}
	/* a date in the past: retry now */
	assert_int_equal(mock_post(&f->mock, "/fail", "{\"status\":503,\"retry_after_date\":-100}"),
	                 0);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.retry_after, 0);
	/* not a Retry-After value */
	assert_int_equal(mock_post(&f->mock, "/fail", "{\"status\":503,\"retry_after\":\"soon\"}"),
	                 0);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.retry_after, -1);
	pp_notif_free(&n);
	fx_close(f);
}

/* GOAWAY after 3 requests: the rest move to a new connection; nothing is lost. */
static void test_goaway_moves_streams(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token, .max_connections = 2};
	enum { N = 20 };
	struct outcome o[N];
	struct pp_notif n;
	struct pp_result now;
	int count = 0;
	json_t *conns;

	(void)state;
	memset(o, 0, sizeof(o));
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	/* Warm up: the connection is authenticated and allows many streams. */
	send_one(f, &n, &o[0], 3000);
	memset(&o[0], 0, sizeof(o[0]));
	assert_int_equal(mock_post(&f->mock, "/goaway", "{\"after\":3,\"reason\":\"Shutdown\"}"),
	                 0);
	for (int i = 0; i < N; i++) {
		o[i].count = &count;
		assert_int_equal(
		    pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 10000, done_cb, &o[i], &now),
		    0);
	}
	for (uint64_t end = uv_now(&f->loop) + 10000; count < N && uv_now(&f->loop) < end;)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(o[i].r.outcome, PP_OUT_DELIVERED);
	conns = mock_ctl(&f->mock, "GET", "/connections", NULL);
	assert_true(json_array_size(json_object_get(conns, "open")) +
	                json_array_size(json_object_get(conns, "closed")) >=
	            2);
	json_decref(conns);
	/* Those above the GOAWAY's last stream were moved, not failed. */
	assert_true(metric(f, "platypus_apns_requests_moved_total{app=\"test\"}") > 0);
	pp_notif_free(&n);
	fx_close(f);
}

/* An abrupt reset with requests in flight: they end as connection lost (the retry layer sends
 * them again), the pool reconnects for the next ones. */
static void test_dropped_connection(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token};
	enum { N = 10 };
	struct outcome o[N];
	struct pp_notif n;
	struct pp_result now;
	int count = 0, lost = 0, ok = 0;

	(void)state;
	memset(o, 0, sizeof(o));
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o[0], 3000);
	memset(&o[0], 0, sizeof(o[0]));
	assert_int_equal(mock_post(&f->mock, "/stall", "{\"ms\":null,\"count\":null}"), 0);
	for (int i = 0; i < N; i++) {
		o[i].count = &count;
		assert_int_equal(
		    pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 10000, done_cb, &o[i], &now),
		    0);
	}
	run_for(f, 300);
	assert_int_equal(count, 0);
	assert_int_equal(mock_post(&f->mock, "/drop", "{\"now\":true}"), 0);
	for (uint64_t end = uv_now(&f->loop) + 5000; count < N && uv_now(&f->loop) < end;)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++) {
		lost += o[i].r.outcome == PP_OUT_FAILED && o[i].r.cause == PP_CAUSE_CONN_LOST;
		ok += o[i].r.outcome == PP_OUT_DELIVERED;
	}
	assert_int_equal(lost + ok, N);
	assert_true(lost > 0);
	/* The pool comes back. */
	assert_int_equal(mock_post(&f->mock, "/reset", "{}"), 0);
	memset(&o[0], 0, sizeof(o[0]));
	send_one(f, &n, &o[0], 5000);
	assert_int_equal(o[0].r.outcome, PP_OUT_DELIVERED);
	pp_notif_free(&n);
	fx_close(f);
}

static void test_request_timeout(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token, .request_timeout_ms = 300};
	struct pp_notif n;
	struct outcome o;

	(void)state;
	fx_pool(f, &pc);
	assert_int_equal(mock_post(&f->mock, "/stall", "{\"ms\":null}"), 0);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.r.cause, PP_CAUSE_TIMEOUT);
	assert_int_equal(mock_post(&f->mock, "/release", "{}"), 0);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	pp_notif_free(&n);
	fx_close(f);
}

/* A graceful close waits for a stalled request; a second, forced close cancels it. */
static void test_close_graceful_then_forced(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token};
	struct pp_notif n;
	struct outcome o, q;
	struct pp_result now;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 3000);
	assert_int_equal(mock_post(&f->mock, "/stall", "{\"ms\":null}"), 0);
	memset(&o, 0, sizeof(o));
	memset(&q, 0, sizeof(q));
	assert_int_equal(pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 5000, done_cb, &o, &now),
	                 0);
	run_for(f, 200);
	pp_apns_pool_close(f->pool, true, pool_closed, f);
	/* Closing: new sends are refused at once. */
	assert_int_equal(pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 5000, done_cb, &q, &now),
	                 -ESHUTDOWN);
	run_for(f, 300);
	assert_false(o.done);
	assert_false(f->pool_closed);
	pp_apns_pool_close(f->pool, false, NULL, NULL);
	run_until(f, &f->pool_closed, 3000);
	assert_true(o.done);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.r.cause, PP_CAUSE_SHUTDOWN);
	assert_true(f->pool_closed);
	f->pool = NULL;
	assert_int_equal(mock_post(&f->mock, "/release", "{}"), 0);
	pp_notif_free(&n);
	fx_close(f);
}

/* Nothing listens: the attempt fails as "unable to connect" at its deadline, and the pool
 * backs off instead of hammering (at most a handful of attempts in a second). */
static void test_connect_backoff(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {
	    .token = &f->token, .port = 1, .backoff_min_ms = 100, .backoff_max_ms = 400};
	struct pp_notif n;
	struct outcome o;
	struct pp_result now;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	memset(&o, 0, sizeof(o));
	assert_int_equal(pp_apns_pool_send(f->pool, &n, uv_now(&f->loop) + 1500, done_cb, &o, &now),
	                 0);
	run_until(f, &o.done, 4000);
	assert_true(o.done);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.r.cause, PP_CAUSE_CONNECT);
	{
		long v = metric(f, "platypus_apns_connect_failures_total{app=\"test\"}");

		assert_true(v >= 2 && v <= 8);
	}
	pp_notif_free(&n);
	fx_close(f);
}

/* The first addresses refuse (an IPv6 one, where the mock does not listen, and a closed IPv4
 * port): the connection goes on to the next address and the notification is delivered, without
 * a failed connection counted. */
static void test_next_address_after_refusal(void **state)
{
	static const char *const addrs[] = {"::1",       "MOCK", "127.0.0.1", "1",
	                                    "127.0.0.1", "MOCK", NULL};
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {.token = &f->token, .host = "localhost"};
	struct pp_notif n;
	struct outcome o;

	(void)state;
	fake_addrs = addrs;
	fake_calls = 0;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 5000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(fake_calls, 1);
	assert_int_equal(metric(f, "platypus_apns_connect_failures_total{app=\"test\"}"), 0);
	fake_addrs = NULL;
	pp_notif_free(&n);
	fx_close(f);
}

/* Every address refuses: one failed connection, the attempt ends as unable to connect. */
static void test_all_addresses_refuse(void **state)
{
	static const char *const addrs[] = {"::1", "1", "127.0.0.1", "1", NULL};
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {
	    .token = &f->token, .host = "localhost", .backoff_min_ms = 5000};
	struct pp_notif n;
	struct outcome o;

	(void)state;
	fake_addrs = addrs;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 1000);
	assert_int_equal(o.r.outcome, PP_OUT_FAILED);
	assert_int_equal(o.r.cause, PP_CAUSE_CONNECT);
	assert_int_equal(metric(f, "platypus_apns_connect_failures_total{app=\"test\"}"), 1);
	fake_addrs = NULL;
	pp_notif_free(&n);
	fx_close(f);
}

/* The first address never answers (a listener whose backlog is full drops the SYN): it gets
 * half the connect timeout, the second the rest, and the notification is delivered. Without
 * the sharing the whole timeout would go to the first, and the reconnect backoff (5 s) outlast
 * the attempt's deadline. */
static void test_silent_address_leaves_time_for_the_next(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0);
	char port[8];
	const char *addrs[] = {"127.0.0.1", port, "127.0.0.1", "MOCK", NULL};
	struct fx *f;
	struct pp_apns_pool_config pc = {
	    .host = "localhost", .connect_timeout_ms = 6000, .backoff_min_ms = 5000};
	struct pp_notif n;
	struct outcome o;

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	/* fills the accept queue: the next SYNs are dropped */
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
	f = fx_open(NULL, true);
	pc.token = &f->token;
	fake_addrs = addrs;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 8000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(metric(f, "platypus_apns_connect_failures_total{app=\"test\"}"), 0);
	fake_addrs = NULL;
	pp_notif_free(&n);
	fx_close(f);
	close(cfd);
	close(lfd);
}

static void test_certificate_auth(void **state)
{
	struct fx *f = fx_open(NULL, false);
	struct pp_apns_pool_config pc = {0};
	struct pp_notif n;
	struct outcome o;
	json_t *rec, *e;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 3000);
	assert_int_equal(o.r.outcome, PP_OUT_DELIVERED);
	rec = mock_requests(&f->mock, 1);
	e = json_array_get(json_object_get(rec, "requests"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "auth")), "certificate");
	assert_null(rec_header(e, "authorization"));
	json_decref(rec);
	pp_notif_free(&n);
	fx_close(f);
}

/* Idle connections are pinged. */
static void test_ping_keepalive(void **state)
{
	struct fx *f = fx_open(NULL, true);
	struct pp_apns_pool_config pc = {
	    .token = &f->token, .ping_interval_ms = 100, .ping_timeout_ms = 1000};
	struct pp_notif n;
	struct outcome o;
	json_t *conns;

	(void)state;
	fx_pool(f, &pc);
	notif_alert(&n, TOKEN);
	send_one(f, &n, &o, 3000);
	run_for(f, 700);
	conns = mock_ctl(&f->mock, "GET", "/connections", NULL);
	assert_true(json_integer_value(json_object_get(
	                json_array_get(json_object_get(conns, "open"), 0), "pings")) >= 3);
	json_decref(conns);
	pp_notif_free(&n);
	fx_close(f);
}

/* --- allocation failures ------------------------------------------------------------------ */

struct h2_setup {
	bool ready, closed, ever_ready;
	int err;
};

static void setup_writable(struct pp_h2_conn *c, void *arg)
{
	(void)c;
	((struct h2_setup *)arg)->ready = true;
}

static void setup_closed(struct pp_h2_conn *c, int err, bool ever_ready, void *arg)
{
	struct h2_setup *x = arg;

	(void)c;
	x->closed = true;
	x->err = err;
	x->ever_ready = ever_ready;
}

/* Open an HTTP/2 connection to the mock (resolution, TCP, TLS, the SETTINGS exchange) and close
 * it once ready. 0 when it got there and nothing failed on the way, else the error it ended
 * with: a failure must end the connection with an error, never leave it hanging or half-open. */
static int h2_setup_scenario(void *arg)
{
	struct fx *f = arg;
	struct h2_setup x = {0};
	struct pp_h2_events ev = {.writable = setup_writable, .closed = setup_closed};
	struct pp_h2_config hc = {.host = "127.0.0.1",
	                          .port = (uint16_t)f->mock.port,
	                          .tls = f->tls,
	                          .connect_timeout_ms = 5000,
	                          .tick_ms = 20};
	struct pp_h2_conn *c;
	int r = pp_h2_conn_alloc(&c, &f->cl, &hc, &ev, &x);

	if (r)
		return r;
	while (!x.ready && !x.closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	if (!x.closed)
		pp_h2_conn_close(c, false);
	while (!x.closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	/* a clean end: only our own close, after the connection was ready */
	return x.ever_ready && x.err == -ECANCELED ? 0 : x.err ? x.err : -EIO;
}

static void test_alloc_h2_setup(void **state)
{
	struct fx *f = fx_open(NULL, true);

	(void)state;
	assert_int_equal(h2_setup_scenario(f), 0);
	assert_true(test_alloc_sweep(h2_setup_scenario, f, 200) > 3);
	fx_close(f);
}

static void pool_closed_flag(void *arg)
{
	*(bool *)arg = true;
}

/* One notification through a new pool to the mock's answer. 0: the answer's outcome (and
 * reason, from the answer's body) with nothing failing on the way; -EAGAIN: that outcome, but a
 * connection was lost to the failure (one that failed to open, counted and replaced, or the one
 * that carried the answer, closed right after): a failure handled, not swallowed; else the
 * attempt's error outcome. The pool must close, and every handle with it, whatever happened. */
struct pool_case {
	struct fx *f;
	struct pp_notif n; /* made outside the sweep */
	enum pp_outcome want;
	const char *reason; /* the one APNs's answer gives */
};

static int pool_send_scenario(void *arg)
{
	struct pool_case *pcase = arg;
	struct fx *f = pcase->f;
	struct pp_apns_pool_config pc = {.name = "sweep",
	                                 .default_topic = "com.example.app",
	                                 .token = &f->token,
	                                 .tls = f->tls,
	                                 .host = "127.0.0.1",
	                                 .port = (uint16_t)f->mock.port,
	                                 .tick_ms = 20,
	                                 .backoff_min_ms = 20,
	                                 .backoff_max_ms = 40};
	struct cm_metrics *m;
	struct pp_apns_pool *p;
	struct pp_result now;
	struct outcome o = {0};
	bool closed = false;
	int r;

	r = cm_metrics_alloc(&m);
	if (r)
		return r;
	pc.metrics = m;
	r = pp_apns_pool_alloc(&p, &f->cl, &pc);
	if (r)
		goto out_metrics;
	r = pp_apns_pool_send(p, &pcase->n, uv_now(&f->loop) + 5000, done_cb, &o, &now);
	if (r)
		assert_int_not_equal(now.outcome, PP_OUT_DELIVERED);
	while (!r && !o.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	if (!r && o.r.outcome == pcase->want && !strcmp(o.r.reason, pcase->reason)) {
		unsigned usable = 0;

		uv_run(&f->loop, UV_RUN_NOWAIT);
		pp_apns_pool_connections(p, &usable);
		if (!usable)
			r = -EAGAIN;
	}
	pp_apns_pool_close(p, false, pool_closed_flag, &closed);
	while (!closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	if (!r && (o.r.outcome != pcase->want || strcmp(o.r.reason, pcase->reason)))
		r = -EIO;
	if (!r) {
		r = test_metrics_has(m, "platypus_apns_connect_failures_total{app=\"sweep\"} 0");
		if (r == -ENOENT)
			r = -EAGAIN;
	}
out_metrics:
	cm_metrics_free(m);
	return r;
}

static void test_alloc_pool_send(void **state)
{
	struct pool_case pcase = {.f = fx_open(NULL, true)};

	(void)state;
	notif_alert(&pcase.n, TOKEN);
	pcase.want = PP_OUT_DELIVERED;
	pcase.reason = "";
	assert_int_equal(pool_send_scenario(&pcase), 0); /* the provider token is made here */
	assert_true(test_alloc_sweep(pool_send_scenario, &pcase, 300) > 3);
	/* an answer with a body to keep */
	assert_int_equal(mock_post(&pcase.f->mock, "/dead", "{\"token\":\"" TOKEN "\"}"), 0);
	pcase.want = PP_OUT_DEAD;
	pcase.reason = "Unregistered";
	assert_int_equal(pool_send_scenario(&pcase), 0);
	assert_true(test_alloc_sweep(pool_send_scenario, &pcase, 300) > 3);
	pp_notif_free(&pcase.n);
	fx_close(pcase.f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delivered_with_all_headers),
	    cmocka_unit_test(test_many_share_one_connection_and_token),
	    cmocka_unit_test(test_dead_token_and_errors),
	    cmocka_unit_test(test_retry_after_forms),
	    cmocka_unit_test(test_goaway_moves_streams),
	    cmocka_unit_test(test_dropped_connection),
	    cmocka_unit_test(test_request_timeout),
	    cmocka_unit_test(test_connect_backoff),
	    cmocka_unit_test(test_close_graceful_then_forced),
	    cmocka_unit_test(test_next_address_after_refusal),
	    cmocka_unit_test(test_all_addresses_refuse),
	    cmocka_unit_test(test_silent_address_leaves_time_for_the_next),
	    cmocka_unit_test(test_certificate_auth),
	    cmocka_unit_test(test_ping_keepalive),
	    cmocka_unit_test(test_alloc_h2_setup),
	    cmocka_unit_test(test_alloc_pool_send),
	};

	signal(SIGPIPE, SIG_IGN);
	cm_log_setup("test_apns", CM_LOG_WARN, CM_LOG_TEXT, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
