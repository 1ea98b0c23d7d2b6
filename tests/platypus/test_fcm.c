/* test_fcm.c - FCM HTTP v1: the service account and access-token cache (fcm_auth.c), the
 * message and answer mapping (fcm_msg.c), and the libcurl-on-libuv client (fcm.c) against the
 * strict FCM mock (tests/mock/fcm_mock.py, run as a subprocess). */
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
#include "cm/jwt.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "platypus/src/dispatch.h"
#include "platypus/src/fcm_int.h"
#include "tests/platypus/fake_resolver.h"
#include "tests/platypus/mock_helper.h"
#include "tests/support/alloc.h"
#include "tests/support/metrics.h"

#define KEYS "tests/mock/keys/"
#define FTOK "fcm_token_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:abc-def_ghi"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);

	assert_non_null(f);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void test_account_load(void **state)
{
	struct pp_fcm_account a;
	char err[256], *json;
	size_t len;

	(void)state;
	json = slurp(KEYS "service-account.json", &len);
	assert_int_equal(pp_fcm_account_load(&a, json, len, err, sizeof(err)), 0);
	assert_string_equal(a.project_id, "platypus-test");
	assert_string_equal(a.client_email, "platypus-test@platypus-test.iam.gserviceaccount.com");
	assert_string_equal(a.token_uri, "https://127.0.0.1:8444/token");
	pp_fcm_account_close(&a);
	free(json);

	assert_int_equal(pp_fcm_account_load(&a, "[1]", 3, err, sizeof(err)), -EINVAL);
	assert_int_equal(pp_fcm_account_load(&a, "{\"type\":\"user\"}", 15, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "type: must be \"service_account\"");
	{
		const char *j = "{\"type\":\"service_account\",\"project_id\":\"p\","
		                "\"client_email\":\"e@x\",\"token_uri\":\"https://t/token\"}";

		assert_int_equal(pp_fcm_account_load(&a, j, strlen(j), err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "private_key: missing or not a non-empty string");
	}
	{
		const char *j = "{\"type\":\"service_account\",\"project_id\":\"p\","
		                "\"client_email\":\"e@x\",\"token_uri\":\"http://t/token\","
		                "\"private_key\":\"x\"}";

		assert_int_equal(pp_fcm_account_load(&a, j, strlen(j), err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "token_uri: must be an https:// URL");
	}
	{
		const char *j = "{\"type\":\"service_account\",\"project_id\":\"p\","
		                "\"client_email\":\"e@x\",\"token_uri\":\"https://t/token\","
		                "\"private_key\":\"not a key\"}";

		assert_int_equal(pp_fcm_account_load(&a, j, strlen(j), err, sizeof(err)), -EINVAL);
		assert_memory_equal(err, "private_key: ", 13);
	}
}

#define STR(s)          s, strlen(s)
#define GRANT(tok, exp) STR("{\"access_token\":\"" tok "\",\"expires_in\":" #exp "}")

static void test_assertion_and_grant(void **state)
{
	struct pp_fcm_account a;
	struct cm_jwt_key *pub = NULL;
	struct cm_buf form, claims;
	char err[256], *json, *pem;
	const char *jwt;
	size_t len, plen;

	(void)state;
	json = slurp(KEYS "service-account.json", &len);
	assert_int_equal(pp_fcm_account_load(&a, json, len, err, sizeof(err)), 0);
	cm_buf_init(&form, 0);
	assert_int_equal(pp_fcm__assertion_form(&a, 1700000000, &form), 0);
	assert_memory_equal(form.data,
	                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
	                    "&assertion=",
	                    75);
	jwt = form.data + 75;
	pem = slurp(KEYS "service-account.pub.pem", &plen);
	assert_int_equal(cm_jwt_pubkey_load(&pub, CM_JWT_RS256, pem, plen, NULL, 0), 0);
	cm_buf_init(&claims, 0);
	assert_int_equal(cm_jwt_verify(pub, jwt, strlen(jwt), NULL, &claims), 0);
	assert_string_equal(claims.data,
	                    "{\"iss\":\"platypus-test@platypus-test.iam.gserviceaccount.com\","
	                    "\"scope\":\"https://www.googleapis.com/auth/firebase.messaging\","
	                    "\"aud\":\"https://127.0.0.1:8444/token\",\"iat\":1700000000,"
	                    "\"exp\":1700003600}");

	/* The cache: until expires_in minus the margin. */
	assert_null(pp_fcm__access_token(&a, 1000));
	assert_int_equal(
	    pp_fcm__account_grant(&a, 200, GRANT("ya29.x", 3599), 1000, err, sizeof(err)), 0);
	assert_string_equal(pp_fcm__access_token(&a, 1000 + 3299 - 1), "ya29.x");
	assert_null(pp_fcm__access_token(&a, 1000 + 3299));
	/* A short life (600 s or less): half of it, at least a second. */
	assert_int_equal(
	    pp_fcm__account_grant(&a, 200, GRANT("ya29.y", 60), 1000, err, sizeof(err)), 0);
	assert_non_null(pp_fcm__access_token(&a, 1029));
	assert_null(pp_fcm__access_token(&a, 1030));
	assert_int_equal(
	    pp_fcm__account_grant(&a, 200, GRANT("ya29.y", 600), 1000, err, sizeof(err)), 0);
	assert_non_null(pp_fcm__access_token(&a, 1299));
	assert_null(pp_fcm__access_token(&a, 1300));
	assert_int_equal(
	    pp_fcm__account_grant(&a, 200, GRANT("ya29.y", 601), 1000, err, sizeof(err)), 0);
	assert_null(pp_fcm__access_token(&a, 1301)); /* 601 - 300 */
	assert_int_equal(pp_fcm__account_grant(&a, 200, GRANT("ya29.y", 1), 1000, err, sizeof(err)),
	                 0);
	assert_non_null(pp_fcm__access_token(&a, 1000));
	assert_null(pp_fcm__access_token(&a, 1001));
	pp_fcm__account_forget(&a);
	assert_null(pp_fcm__access_token(&a, 1000));
	/* Refusals. */
	assert_int_equal(pp_fcm__account_grant(
	                     &a, 400,
	                     STR("{\"error\":\"invalid_grant\",\"error_description\":\"Bad\"}"),
	                     1000, err, sizeof(err)),
	                 -EACCES);
	assert_string_equal(err, "token endpoint 400: invalid_grant: Bad");
	assert_int_equal(pp_fcm__account_grant(&a, 503, "", 0, 1000, err, sizeof(err)), -EAGAIN);
	assert_int_equal(
	    pp_fcm__account_grant(&a, 200, STR("{\"access_token\":\"\"}"), 1000, err, sizeof(err)),
	    -EBADMSG);
	assert_int_equal(a.grants, 5);
	cm_buf_free(&form);
	cm_buf_free(&claims);
	cm_jwt_key_free(pub);
	free(pem);
	free(json);
	pp_fcm_account_close(&a);
}

static void test_message_shape(void **state)
{
	struct pp_notif n;
	struct cm_buf b;

	(void)state;
	pp_notif_init(&n);
	n.service = PP_SVC_FCM;
	n.token = strdup(FTOK);
	n.has_alert = true;
	n.alert.title = strdup("T");
	n.alert.body = strdup("B");
	n.alert.tag = strdup("g");
	n.alert.badge = 2;
	n.ttl = 3600;
	n.collapse_id = strdup("c");
	n.data = json_pack("{s:s,s:i,s:b,s:{s:i}}", "s", "v", "i", 7, "b", 1, "o", "x", 1);
	cm_buf_init(&b, 0);
	/* Title and body in message.notification, data in message.data (for the tokens of iOS
	 * and web apps too), Android's display options in android.notification, the badge and
	 * thread for iOS apps in apns. */
	assert_int_equal(pp_fcm__message(&n, &b), 0);
	assert_string_equal(
	    b.data, "{\"message\":{\"token\":\"" FTOK "\",\"notification\":{\"title\":\"T\","
	            "\"body\":\"B\"},\"data\":{\"s\":\"v\",\"i\":\"7\",\"b\":\"true\","
	            "\"o\":\"{\\\"x\\\":1}\"},\"android\":{\"notification\":{\"tag\":\"g\","
	            "\"notification_count\":2},\"priority\":\"HIGH\",\"ttl\":\"3600s\","
	            "\"collapse_key\":\"c\"},\"apns\":{\"payload\":{\"aps\":{\"badge\":2,"
	            "\"thread-id\":\"g\"}}}}}");
	cm_buf_reset(&b);
	/* An alert with nothing for Android to display differently: no empty objects. */
	free(n.alert.tag);
	n.alert.tag = NULL;
	n.alert.badge = -1;
	json_decref(n.data);
	n.data = NULL;
	assert_int_equal(pp_fcm__message(&n, &b), 0);
	assert_string_equal(b.data, "{\"message\":{\"token\":\"" FTOK "\",\"notification\":{"
	                            "\"title\":\"T\",\"body\":\"B\"},\"android\":{\"priority\":"
	                            "\"HIGH\",\"ttl\":\"3600s\",\"collapse_key\":\"c\"}}}");
	cm_buf_reset(&b);
	n.mutable_content = true;
	assert_int_equal(pp_fcm__message(&n, &b), 0);
	assert_non_null(
	    strstr(b.data, ",\"apns\":{\"payload\":{\"aps\":{\"mutable-content\":1}}}"));
	cm_buf_reset(&b);
	/* Silent: NORMAL, no notification; iOS apps get it as a background push. */
	n.mutable_content = false;
	n.has_alert = false;
	n.ttl = -1;
	n.data = json_pack("{s:s}", "k", "v");
	assert_int_equal(pp_fcm__message(&n, &b), 0);
	assert_null(strstr(b.data, "notification"));
	assert_non_null(strstr(b.data, "\"data\":{\"k\":\"v\"}"));
	assert_non_null(strstr(b.data, "\"priority\":\"NORMAL\""));
	assert_null(strstr(b.data, "ttl"));
	assert_non_null(strstr(b.data, "\"apns\":{\"payload\":{\"aps\":{\"content-available\":1}},"
	                               "\"headers\":{\"apns-push-type\":\"background\","
	                               "\"apns-priority\":\"5\"}}"));
	cm_buf_reset(&b);
	/* A call: HIGH, data only, nothing for APNs (FCM cannot make a VoIP push). */
	n.has_alert = true;
	n.voip = true;
	assert_int_equal(pp_fcm__message(&n, &b), 0);
	assert_null(strstr(b.data, "notification"));
	assert_null(strstr(b.data, "apns"));
	assert_non_null(strstr(b.data, "\"priority\":\"HIGH\""));
	cm_buf_free(&b);
	pp_notif_free(&n);
}

static void check_result(int status, const char *body, enum pp_outcome o, enum pp_cause c,
                         const char *reason)
{
	struct pp_result r;

	memset(&r, 0, sizeof(r));
	pp_fcm__result(&r, status, body, body ? strlen(body) : 0);
	assert_int_equal(r.outcome, o);
	assert_int_equal(r.cause, c);
	assert_string_equal(r.reason, reason);
}

#define FCMERR(st, code)                                                                           \
	"{\"error\":{\"code\":" #st ",\"status\":\"X\",\"details\":[{\"@type\":"                   \
	"\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"" code "\"}]}}"

static void test_result_mapping(void **state)
{
	struct pp_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	pp_fcm__result(&r, 200, "{\"name\":\"projects/p/messages/0:1\"}", 34);
	assert_int_equal(r.outcome, PP_OUT_DELIVERED);
	assert_string_equal(r.id, "projects/p/messages/0:1");
	check_result(404, FCMERR(404, "UNREGISTERED"), PP_OUT_DEAD, PP_CAUSE_UNREGISTERED,
	             "UNREGISTERED");
	check_result(400, FCMERR(400, "INVALID_ARGUMENT"), PP_OUT_REJECTED,
	             PP_CAUSE_BAD_NOTIFICATION, "INVALID_ARGUMENT");
	check_result(403, FCMERR(403, "SENDER_ID_MISMATCH"), PP_OUT_REJECTED, PP_CAUSE_AUTH,
	             "SENDER_ID_MISMATCH");
	check_result(429, FCMERR(429, "QUOTA_EXCEEDED"), PP_OUT_FAILED, PP_CAUSE_THROTTLED,
	             "QUOTA_EXCEEDED");
	check_result(503, FCMERR(503, "UNAVAILABLE"), PP_OUT_FAILED, PP_CAUSE_PROVIDER,
	             "UNAVAILABLE");
	check_result(500, FCMERR(500, "INTERNAL"), PP_OUT_FAILED, PP_CAUSE_PROVIDER, "INTERNAL");
	check_result(401, FCMERR(401, "THIRD_PARTY_AUTH_ERROR"), PP_OUT_REJECTED, PP_CAUSE_AUTH,
	             "THIRD_PARTY_AUTH_ERROR");
	check_result(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}",
	             PP_OUT_REJECTED, PP_CAUSE_AUTH, "UNAUTHENTICATED");
	check_result(400, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\"}}",
	             PP_OUT_REJECTED, PP_CAUSE_BAD_NOTIFICATION, "INVALID_ARGUMENT");
	check_result(502, "<html>", PP_OUT_FAILED, PP_CAUSE_PROVIDER, "");
	check_result(413, NULL, PP_OUT_REJECTED, PP_CAUSE_PAYLOAD_TOO_LARGE, "");
}

/* --- against the mock --------------------------------------------------------------------- */

struct ffx {
	struct mock mock;
	char sa_path[64];
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: the client's tick and the dispatcher's retries */
	struct cm_metrics *metrics;
	struct pp_fcm_account account;
	struct pp_fcm *fcm;
	struct pp_dispatch *d;
	bool closed, drained;
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

/* The host of the send URL (the token endpoint stays the mock's 127.0.0.1), and the mock's
 * certificate, which must name it. */
static const char *ffx_host = "127.0.0.1";
static const char *ffx_cert = KEYS "server.pem";

static struct ffx *ffx_open(const char *key_override)
{
	struct ffx *x = calloc(1, sizeof(*x));
	const char *args[] = {"--write-service-account", x->sa_path, "--cert", ffx_cert, NULL};
	struct pp_fcm_config fc = {.name = "android", .ca_file = KEYS "ca.pem"};
	struct pp_dispatch_config dc = {.retry = {.base_ms = 50, .max_ms = 200}};
	struct pp_app_desc a = {.name = "android", .service = PP_SVC_FCM, .send = pp_fcm_send};
	char err[256], *json, base[64];
	size_t len;
	int fd;

	snprintf(x->sa_path, sizeof(x->sa_path), "/tmp/pp-sa-XXXXXX");
	fd = mkstemp(x->sa_path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mock_start(&x->mock, "fcm_mock.py", args), 0);
	json = slurp(x->sa_path, &len);
	if (key_override) {
		/* The same account with a key Google does not know. */
		json_t *j = json_loadb(json, len, 0, NULL);
		size_t kl;
		char *k = slurp(key_override, &kl);

		json_object_set_new(j, "private_key", json_string(k));
		free(k);
		free(json);
		json = json_dumps(j, 0);
		len = strlen(json);
		json_decref(j);
	}
	assert_int_equal(pp_fcm_account_load(&x->account, json, len, err, sizeof(err)), 0);
	free(json);
	assert_int_equal(uv_loop_init(&x->loop), 0);
	assert_int_equal(cm_loop_init(&x->cl, &x->loop, 0), 0);
	assert_int_equal(cm_metrics_alloc(&x->metrics), 0);
	snprintf(base, sizeof(base), "https://%s:%d", ffx_host, x->mock.port);
	fc.base_url = base;
	fc.account = &x->account;
	fc.metrics = x->metrics;
	assert_int_equal(pp_fcm_alloc(&x->fcm, &x->cl, &fc), 0);
	dc.metrics = x->metrics;
	assert_int_equal(pp_dispatch_alloc(&x->d, &x->cl, &dc), 0);
	a.provider = x->fcm;
	assert_int_equal(pp_dispatch_add_app(x->d, &a), 0);
	return x;
}

static void ffx_closed(void *arg)
{
	((struct ffx *)arg)->closed = true;
}

static void ffx_drained(void *arg)
{
	((struct ffx *)arg)->drained = true;
}

static void ffx_close(struct ffx *x)
{
	pp_dispatch_stop(x->d, ffx_drained, x);
	assert_true(x->drained);
	pp_dispatch_free(x->d);
	pp_fcm_close(x->fcm, true, ffx_closed, x);
	while (!x->closed)
		uv_run(&x->loop, UV_RUN_ONCE);
	/* Closed: the client's handles are gone; one pass closes the loop's own. */
	cm_loop_close(&x->cl, NULL);
	assert_int_equal(uv_run(&x->loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&x->cl);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	assert_int_equal(mock_stop(&x->mock), 0);
	pp_fcm_account_close(&x->account);
	cm_metrics_free(x->metrics);
	unlink(x->sa_path);
	free(x);
}

static void fcm_notif(struct pp_notif *n, const char *token)
{
	pp_notif_init(n);
	n->service = PP_SVC_FCM;
	n->token = strdup(token);
	n->has_alert = true;
	n->alert.title = strdup("Alice");
	n->alert.body = strdup("Hi");
	n->data = json_pack("{s:s,s:i}", "from", "alice@example.com", "n", 3);
	json_object_del(n->data, "from"); /* reserved by FCM */
	json_object_set_new(n->data, "sender", json_string("alice@example.com"));
}

static void submit_wait(struct ffx *x, struct pp_notif *n, struct got *g)
{
	struct pp_result r;
	uint64_t end;

	memset(g, 0, sizeof(*g));
	assert_int_equal(pp_dispatch_submit(x->d, n, got_cb, g, &r), 0);
	uv_update_time(&x->loop);
	end = uv_now(&x->loop) + 10000;
	while (!g->n && uv_now(&x->loop) < end)
		uv_run(&x->loop, UV_RUN_ONCE);
	assert_int_equal(g->n, 1);
}

static void test_send_through_mock(void **state)
{
	struct ffx *x = ffx_open(NULL);
	struct pp_notif n;
	struct got g;
	json_t *rec, *e, *grants;

	(void)state;
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_memory_equal(g.r.id, "projects/platypus-test/messages/", 32);
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	/* One grant for both sends. */
	grants = mock_ctl(&x->mock, "GET", "/grants", NULL);
	assert_int_equal(json_array_size(json_object_get(grants, "grants")), 1);
	json_decref(grants);
	assert_int_equal(x->account.grants, 1);

	rec = mock_ctl(&x->mock, "GET", "/requests?wait=3&answered=1&timeout=5", NULL);
	e = json_array_get(json_object_get(rec, "requests"), 2);
	assert_string_equal(json_string_value(json_object_get(e, "path")),
	                    "/v1/projects/platypus-test/messages:send");
	assert_string_equal(json_string_value(json_object_get(e, "proto")), "h2");
	assert_true(json_is_true(json_object_get(e, "access_token_valid")));
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(json_object_get(e, "json"), "message"), "data"),
	        "n")),
	    "3");
	json_decref(rec);

	/* Dead token. */
	assert_int_equal(mock_post(&x->mock, "/dead", "{\"token\":\"" FTOK "\"}"), 0);
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DEAD);
	assert_string_equal(g.r.reason, "UNREGISTERED");
	assert_int_equal(g.r.status, 404);
	assert_int_equal(mock_post(&x->mock, "/alive", "{\"token\":\"" FTOK "\"}"), 0);

	/* QUOTA_EXCEEDED with Retry-After 1: retried after a second, then delivered. */
	assert_int_equal(
	    mock_post(&x->mock, "/fail", "{\"code\":\"QUOTA_EXCEEDED\",\"retry_after\":1}"), 0);
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 2);

	/* The same with Retry-After as an HTTP-date 2 s ahead (rounded up by the mock): the retry
	 * waits until then. */
	assert_int_equal(
	    mock_post(&x->mock, "/fail", "{\"code\":\"QUOTA_EXCEEDED\",\"retry_after_date\":2}"),
	    0);
	fcm_notif(&n, FTOK);
	{
		uint64_t t0 = uv_hrtime();

		submit_wait(x, &n, &g);
		assert_true(uv_hrtime() - t0 >= 1900 * 1000000ull);
	}
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 2);

	/* The access token expires early: 401, a new grant, delivered. */
	assert_int_equal(mock_post(&x->mock, "/expire", "{}"), 0);
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 2);
	assert_int_equal(x->account.grants, 2);

	/* INVALID_ARGUMENT from FCM: final, not retried. */
	fcm_notif(&n, "short");
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_REJECTED);
	assert_int_equal(g.r.attempts, 1);
	ffx_close(x);
}

/* A send host whose first addresses refuse (an IPv6 one, where the mock does not listen, and a
 * closed port): libcurl goes on to the next one by itself. ("localhost" would not do: libcurl
 * resolves it without asking the resolver, IPv4 first.) */
static void test_next_address_after_refusal(void **state)
{
	static const char *const addrs[] = {"::1",       "MOCK", "127.0.0.1", "1",
	                                    "127.0.0.1", "MOCK", NULL};
	struct ffx *x;
	struct pp_notif n;
	struct got g;

	(void)state;
	ffx_host = fake_name = "mock.platypus.test";
	ffx_cert = KEYS "server-alt.pem";
	fake_addrs = addrs;
	fake_calls = 0;
	x = ffx_open(NULL);
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_DELIVERED);
	assert_int_equal(g.r.attempts, 1);
	assert_int_equal(fake_calls, 1);
	ffx_close(x);
	fake_addrs = NULL;
	fake_name = "localhost";
	ffx_host = "127.0.0.1";
	ffx_cert = KEYS "server.pem";
}

/* A key Google does not know: the grant is refused, the send rejected as our configuration. */
static void test_refused_grant(void **state)
{
	struct ffx *x = ffx_open(KEYS "service-account-wrong.key");
	struct pp_notif n;
	struct got g;
	const char *reason;

	(void)state;
	fcm_notif(&n, FTOK);
	submit_wait(x, &n, &g);
	assert_int_equal(g.r.outcome, PP_OUT_REJECTED);
	assert_int_equal(g.r.cause, PP_CAUSE_AUTH);
	assert_int_equal(pp_result_http(&g.r, &reason), 503);
	assert_string_equal(reason, "service_internal");
	ffx_close(x);
}

/* --- allocation failures ------------------------------------------------------------------ */

static int message_scenario(void *arg)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = pp_fcm__message(arg, &b);
	if (!r && (!b.data || !strstr(b.data, "\"android\"")))
		r = -EIO;
	cm_buf_free(&b);
	return r;
}

static void test_alloc_message(void **state)
{
	struct pp_notif n;

	(void)state;
	fcm_notif(&n, FTOK);
	n.ttl = 60;
	n.collapse_id = strdup("c");
	n.alert.sound = strdup("ding");
	n.alert.badge = 3;
	assert_int_equal(message_scenario(&n), 0);
	/* jansson's own allocations are not ours to fail: only the output buffer's are */
	assert_true(test_alloc_sweep(message_scenario, &n, 500) > 1);
	pp_notif_free(&n);
}

/* The OAuth2 steps that are ours: the signed assertion, then taking the grant. */
static int oauth_scenario(void *arg)
{
	struct pp_fcm_account *a = arg;
	struct cm_buf form;
	char err[160];
	int r;

	cm_buf_init(&form, 0);
	pp_fcm__account_forget(a);
	r = pp_fcm__assertion_form(a, 1700000000, &form);
	if (!r && (!form.data || !strstr(form.data, "&assertion=")))
		r = -EIO;
	if (!r)
		r = pp_fcm__account_grant(a, 200, GRANT("ya29.sweep", 3599), 1700000000, err,
		                          sizeof(err));
	if (!r && (!pp_fcm__access_token(a, 1700000000) ||
	           strcmp(pp_fcm__access_token(a, 1700000000), "ya29.sweep")))
		r = -EIO;
	/* on failure, no token is left cached */
	if (r && pp_fcm__access_token(a, 1700000000))
		r = 0;
	cm_buf_free(&form);
	return r;
}

static void test_alloc_oauth(void **state)
{
	struct pp_fcm_account a;
	char err[256], *json;
	size_t len;

	(void)state;
	json = slurp(KEYS "service-account.json", &len);
	assert_int_equal(pp_fcm_account_load(&a, json, len, err, sizeof(err)), 0);
	assert_int_equal(oauth_scenario(&a), 0);
	assert_true(test_alloc_sweep(oauth_scenario, &a, 200) > 2);
	pp_fcm_account_close(&a);
	free(json);
}

/* The whole flow against the mock, from a client with no access token: client, token request,
 * grant, send, answer, close. 0: delivered with nothing failing; -EAGAIN: delivered after a
 * failed token request was counted and repeated (a failure handled); else the send's error
 * outcome. The client must close, every handle with it, whatever happened. */
struct flow_case {
	struct ffx *x;
	struct pp_notif n; /* made outside the sweep */
};

static void flow_closed(void *arg)
{
	*(bool *)arg = true;
}

static void flow_done(void *arg, const struct pp_result *r, long long retry_after)
{
	(void)retry_after;
	*(struct pp_result *)arg = *r;
}

static int flow_scenario(void *arg)
{
	struct flow_case *fc = arg;
	struct ffx *x = fc->x;
	char base[64];
	struct pp_fcm_config cfg = {
	    .name = "sweep", .account = &x->account, .ca_file = KEYS "ca.pem", .base_url = base};
	struct cm_metrics *m;
	struct pp_fcm *fcm;
	struct pp_result res = {0}, now;
	bool closed = false;
	int r;

	snprintf(base, sizeof(base), "https://127.0.0.1:%d", x->mock.port);
	pp_fcm__account_forget(&x->account);
	r = cm_metrics_alloc(&m);
	if (r)
		return r;
	cfg.metrics = m;
	r = pp_fcm_alloc(&fcm, &x->cl, &cfg);
	if (r)
		goto out;
	res.outcome = PP_OUT_COUNT; /* none yet */
	r = pp_fcm_send(fcm, &fc->n, uv_now(&x->loop) + 5000, flow_done, &res, &now);
	if (r)
		assert_int_not_equal(now.outcome, PP_OUT_DELIVERED);
	while (!r && res.outcome == PP_OUT_COUNT)
		uv_run(&x->loop, UV_RUN_ONCE);
	pp_fcm_close(fcm, false, flow_closed, &closed);
	while (!closed)
		uv_run(&x->loop, UV_RUN_ONCE);
	if (!r && res.outcome != PP_OUT_DELIVERED)
		r = -EIO;
	if (!r) {
		r = test_metrics_has(m, "platypus_fcm_token_failures_total{app=\"sweep\"} 0");
		if (r == -ENOENT)
			r = -EAGAIN;
	}
out:
	cm_metrics_free(m);
	return r;
}

static void test_alloc_send_flow(void **state)
{
	struct flow_case fc = {.x = ffx_open(NULL)};

	(void)state;
	fcm_notif(&fc.n, FTOK);
	assert_int_equal(flow_scenario(&fc), 0);
	assert_true(test_alloc_sweep(flow_scenario, &fc, 500) > 3);
	pp_notif_free(&fc.n);
	ffx_close(fc.x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_account_load),
	    cmocka_unit_test(test_assertion_and_grant),
	    cmocka_unit_test(test_message_shape),
	    cmocka_unit_test(test_result_mapping),
	    cmocka_unit_test(test_send_through_mock),
	    cmocka_unit_test(test_refused_grant),
	    cmocka_unit_test(test_next_address_after_refusal),
	    cmocka_unit_test(test_alloc_message),
	    cmocka_unit_test(test_alloc_oauth),
	    cmocka_unit_test(test_alloc_send_flow),
	};

	signal(SIGPIPE, SIG_IGN);
	cm_log_setup("test_fcm", CM_LOG_WARN, CM_LOG_TEXT, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
