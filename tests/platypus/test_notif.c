/* test_notif.c - the notification model (platypus/src/notif.c), its outcome mapping
 * (outcome.c), the APNs request builder (apns_payload.c) and provider token (apns_token.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/jwt.h"
#include "platypus/src/apns_int.h"
#include "platypus/src/notif.h"
#include "tests/support/alloc.h"

#define KEYS   "tests/mock/keys/"
#define TOKEN  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FCMTOK "dGVzdC10b2tlbi0xMjM0NTY3ODkw:APA91bH-abc_def"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	*len = n;
	return buf;
}

static void apns_alert(struct pp_notif *n)
{
	pp_notif_init(n);
	n->service = PP_SVC_APNS;
	n->token = strdup(TOKEN);
	n->has_alert = true;
	n->alert.title = strdup("Alice");
	n->alert.body = strdup("Hello \xc3\xa9");
}

static int validate(struct pp_notif *n, char *err)
{
	return pp_notif_validate(n, err, 256);
}

static void test_validate_tokens(void **state)
{
	struct pp_notif n;
	char err[256];

	(void)state;
	apns_alert(&n);
	assert_int_equal(validate(&n, err), 0);

	free(n.token);
	n.token = strdup("0123");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "token: 4 hex digits, APNs needs an even number from 64 to 200");
	free(n.token);
	n.token = strdup(TOKEN "zz");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "token: APNs device tokens are hex digits, found 'z' at 64");
	free(n.token);
	n.token = NULL;
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "token: missing device token");

	n.service = PP_SVC_FCM;
	n.token = strdup(FCMTOK);
	assert_int_equal(validate(&n, err), 0);
	free(n.token);
	n.token = strdup("abc def");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err,
	                    "token: FCM registration tokens use [A-Za-z0-9_:-], found ' ' at 3");
	pp_notif_free(&n);
}

static void test_validate_fields(void **state)
{
	struct pp_notif n;
	char err[256];

	(void)state;
	apns_alert(&n);
	n.ttl = PP_TTL_MAX + 1;
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "time_to_live: 2419201, must be 0 to 2419200 seconds");
	n.ttl = 0;
	n.collapse_id = strdup("0123456789012345678901234567890123456789012345678901234567890123x");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "collapse_id: must be 1 to 64 bytes");
	free(n.collapse_id);
	n.collapse_id = NULL;
	n.topic = strdup("com.example/app");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "topic: a bundle id has only [A-Za-z0-9._-], found '/'");
	free(n.topic);
	n.topic = NULL;
	free(n.alert.body);
	n.alert.body = strdup("bad \xc3\x28 utf8");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "alert.body: not valid UTF-8 (at byte 4)");
	free(n.alert.body);
	n.alert.body = strdup("overlong \xc0\xaf");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "alert.body: not valid UTF-8 (at byte 9)");
	free(n.alert.body);
	/* Valid UTF-8 with a control character: say so, and where. */
	n.alert.body = strdup("line\x01two");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "alert.body: control character U+0001 at byte 4 (of the control "
	                         "characters only tab, line feed and carriage return are allowed)");
	free(n.alert.body);
	n.alert.body = strdup("tab\tline\nreturn\r\xc3\xa9");
	assert_int_equal(validate(&n, err), 0);
	free(n.alert.body);
	n.alert.body = NULL;
	free(n.alert.title);
	n.alert.title = strdup("\x1b[31m");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_memory_equal(err, "alert.title: control character U+001B at byte 0 ", 47);
	free(n.alert.title);
	n.alert.title = NULL;
	n.data = json_pack("{s:s}", "a\x02", "x");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "data: a key has control character U+0002 at byte 1");
	json_decref(n.data);
	n.data = json_pack("{s:s}", "", "x");
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "data: a key is empty");
	json_decref(n.data);
	n.data = NULL;
	n.alert.body = NULL;
	n.data = json_pack("{s:i}", "aps", 1);
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "data.aps: reserved by APNs");
	json_decref(n.data);
	n.data = json_pack("{s:s}", "google.x", "1");
	n.service = PP_SVC_FCM;
	free(n.token);
	n.token = strdup(FCMTOK);
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "data.google.x: reserved by FCM");
	json_decref(n.data);
	n.data = json_array();
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "data: must be a JSON object");
	json_decref(n.data);
	n.data = NULL;
	n.has_alert = false;
	n.mutable_content = true;
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "mutable_content: needs an alert");
	n.mutable_content = false;
	n.priority = 7;
	assert_int_equal(validate(&n, err), -EINVAL);
	assert_string_equal(err, "priority: must be normal or high");
	pp_notif_free(&n);
}

static int copy_scenario(void *arg)
{
	const struct pp_notif *src = arg;
	struct pp_notif d;
	int r = pp_notif_copy(&d, src);

	if (r)
		return r;
	assert_string_equal(d.token, src->token);
	assert_string_equal(d.tags[1], "b");
	assert_true(json_equal(d.data, src->data));
	pp_notif_free(&d);
	return 0;
}

static void test_copy_and_alloc_failures(void **state)
{
	struct pp_notif n;

	(void)state;
	apns_alert(&n);
	n.tags = calloc(2, sizeof(char *));
	n.tags[0] = strdup("a");
	n.tags[1] = strdup("b");
	n.ntags = 2;
	n.topic = strdup("com.example.app");
	n.data = json_pack("{s:s,s:i}", "k", "v", "n", 3);
	assert_true(test_alloc_sweep(copy_scenario, &n, 100) > 1);
	pp_notif_free(&n);
	pp_notif_free(NULL);
}

static void test_priority_defaults(void **state)
{
	struct pp_notif n;

	(void)state;
	apns_alert(&n);
	assert_int_equal(pp_notif_priority(&n), PP_PRIO_HIGH);
	n.has_alert = false;
	assert_true(pp_notif_silent(&n));
	assert_int_equal(pp_notif_priority(&n), PP_PRIO_NORMAL);
	n.voip = true;
	assert_false(pp_notif_silent(&n));
	assert_int_equal(pp_notif_priority(&n), PP_PRIO_HIGH);
	pp_notif_free(&n);
}

static void test_outcome_mapping(void **state)
{
	static const struct {
		enum pp_outcome o;
		enum pp_cause c;
		int http;
		const char *reason, *type, *cond;
	} cases[] = {
	    {PP_OUT_DELIVERED, PP_CAUSE_NONE, 200, NULL, NULL, NULL},
	    {PP_OUT_DEAD, PP_CAUSE_UNREGISTERED, 410, "unregistered", "cancel", "item-not-found"},
	    {PP_OUT_REJECTED, PP_CAUSE_INVALID_REQUEST, 400, "invalid_request", "modify",
	     "bad-request"},
	    {PP_OUT_REJECTED, PP_CAUSE_NO_POOL, 400, "no_matching_pool", "cancel",
	     "item-not-found"},
	    {PP_OUT_REJECTED, PP_CAUSE_BAD_NOTIFICATION, 400, "invalid_request", "modify",
	     "bad-request"},
	    {PP_OUT_REJECTED, PP_CAUSE_CONFIG, 503, "internal_config", "wait",
	     "internal-server-error"},
	    {PP_OUT_REJECTED, PP_CAUSE_PAYLOAD_TOO_LARGE, 413, "payload_too_large", "modify",
	     "bad-request"},
	    {PP_OUT_REJECTED, PP_CAUSE_AUTH, 503, "service_internal", "wait",
	     "internal-server-error"},
	    {PP_OUT_FAILED, PP_CAUSE_THROTTLED, 429, "too_many_requests", "wait",
	     "resource-constraint"},
	    {PP_OUT_FAILED, PP_CAUSE_PROVIDER, 503, "service_internal", "wait",
	     "internal-server-error"},
	    {PP_OUT_FAILED, PP_CAUSE_CONNECT, 503, "unable_to_connect", "wait",
	     "remote-server-timeout"},
	    {PP_OUT_FAILED, PP_CAUSE_CONN_LOST, 503, "connection_lost", "wait",
	     "remote-server-timeout"},
	    {PP_OUT_EXPIRED, PP_CAUSE_PROVIDER, 503, "service_internal", "wait",
	     "internal-server-error"},
	    {PP_OUT_BUSY, PP_CAUSE_BUSY, 429, "too_many_requests", "wait", "resource-constraint"},
	    {PP_OUT_BUSY, PP_CAUSE_SHUTDOWN, 503, "service_internal", "wait",
	     "resource-constraint"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_result r;
		const char *reason, *type, *cond;

		memset(&r, 0, sizeof(r));
		pp_result_set(&r, cases[i].o, cases[i].c, 0, NULL);
		assert_int_equal(pp_result_http(&r, &reason), cases[i].http);
		if (cases[i].reason)
			assert_string_equal(reason, cases[i].reason);
		else
			assert_null(reason);
		pp_result_xmpp(&r, &type, &cond);
		if (cases[i].type) {
			assert_string_equal(type, cases[i].type);
			assert_string_equal(cond, cases[i].cond);
		} else
			assert_null(type);
	}
	assert_string_equal(pp_outcome_name(PP_OUT_DEAD), "dead_token");
	assert_string_equal(pp_outcome_name((enum pp_outcome)99), "unknown");
}

static void test_apns_msg_alert(void **state)
{
	struct pp_notif n;
	struct pp_apns_msg m;
	char err[256];
	json_t *j;

	(void)state;
	apns_alert(&n);
	n.alert.badge = 3;
	n.alert.sound = strdup("ping.caf");
	n.alert.click_action = strdup("MSG");
	n.mutable_content = true;
	n.ttl = 3600;
	n.collapse_id = strdup("chat-1");
	n.data = json_pack("{s:s}", "from", "alice@example.com");
	assert_int_equal(pp_notif_validate(&n, err, sizeof(err)), 0);
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1000000, err, sizeof(err)),
	                 0);
	assert_string_equal(m.path, "/3/device/" TOKEN);
	assert_string_equal(m.topic, "com.example.app");
	assert_string_equal(m.push_type, "alert");
	assert_string_equal(m.priority, "10");
	assert_string_equal(m.expiration, "1003600");
	assert_string_equal(m.collapse_id, "chat-1");
	assert_string_equal(m.apns_id, ""); /* the pool numbers the requests */
	j = json_loadb(m.body, m.body_len, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "from")), "alice@example.com");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(j, "aps"), "alert"), "body")),
	                    "Hello \xc3\xa9");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "aps"), "badge")),
	                 3);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "aps"), "mutable-content")), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "aps"), "category")), "MSG");
	json_decref(j);
	pp_apns__msg_free(&m);

	/* Normal priority, a topic of its own, ttl 0 = do not store. */
	n.priority = PP_PRIO_NORMAL;
	n.topic = strdup("org.example.other");
	n.ttl = 0;
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1000000, err, sizeof(err)),
	                 0);
	assert_string_equal(m.priority, "5");
	assert_string_equal(m.topic, "org.example.other");
	assert_string_equal(m.expiration, "0");
	pp_apns__msg_free(&m);
	pp_notif_free(&n);
}

static void test_apns_msg_silent_voip(void **state)
{
	struct pp_notif n;
	struct pp_apns_msg m;
	char err[256];

	(void)state;
	pp_notif_init(&n);
	n.token = strdup(TOKEN);
	n.data = json_pack("{s:s}", "k", "v");
	n.priority = PP_PRIO_HIGH; /* background must still go with 5 */
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)), 0);
	assert_string_equal(m.push_type, "background");
	assert_string_equal(m.priority, "5");
	assert_string_equal(m.expiration, "");
	assert_string_equal(m.body, "{\"k\":\"v\",\"aps\":{\"content-available\":1}}");
	pp_apns__msg_free(&m);

	n.voip = true;
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)), 0);
	assert_string_equal(m.push_type, "voip");
	assert_string_equal(m.topic, "com.example.app.voip");
	assert_string_equal(m.priority, "10");
	assert_string_equal(m.body, "{\"k\":\"v\",\"aps\":{}}");
	pp_apns__msg_free(&m);
	n.topic = strdup("com.example.app.voip");
	assert_int_equal(pp_apns__msg_build(&m, &n, NULL, 1, err, sizeof(err)), 0);
	assert_string_equal(m.topic, "com.example.app.voip");
	pp_apns__msg_free(&m);
	free(n.topic);
	n.topic = NULL;
	assert_int_equal(pp_apns__msg_build(&m, &n, NULL, 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "topic: none given and the app has no default topic");
	pp_notif_free(&n);
}

/* The payload limit is exact: 4096 bytes pass, 4097 do not; VoIP allows 5120. */
static void test_apns_msg_size_limits(void **state)
{
	struct pp_notif n;
	struct pp_apns_msg m;
	char err[256], *big;
	size_t overhead;

	(void)state;
	pp_notif_init(&n);
	n.token = strdup(TOKEN);
	n.data = json_pack("{s:s}", "k", "");
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)), 0);
	overhead = m.body_len;
	pp_apns__msg_free(&m);
	big = malloc(8192);
	memset(big, 'x', 8192);
	big[PP_APNS_PAYLOAD_MAX - overhead] = 0;
	json_object_set_new(n.data, "k", json_string(big));
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)), 0);
	assert_int_equal(m.body_len, PP_APNS_PAYLOAD_MAX);
	pp_apns__msg_free(&m);
	memset(big, 'x', 8192);
	big[PP_APNS_PAYLOAD_MAX - overhead + 1] = 0;
	json_object_set_new(n.data, "k", json_string(big));
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)),
	                 -EMSGSIZE);
	assert_string_equal(err, "payload: 4097 bytes, over the APNs limit of 4096");
	assert_null(m.body);
	n.voip = true; /* 5120, and the body is 23 bytes shorter without content-available */
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)), 0);
	pp_apns__msg_free(&m);
	memset(big, 'x', 8192);
	big[5200] = 0;
	json_object_set_new(n.data, "k", json_string(big));
	assert_int_equal(pp_apns__msg_build(&m, &n, "com.example.app", 1, err, sizeof(err)),
	                 -EMSGSIZE);
	free(big);
	pp_notif_free(&n);
}

static void test_apns_result(void **state)
{
	struct pp_result r;
	static const char b410[] = "{\"reason\":\"Unregistered\",\"timestamp\":1}";
	static const char b400[] = "{\"reason\":\"BadTopic\"}";

	(void)state;
	memset(&r, 0, sizeof(r));
	pp_apns__result(&r, 200, NULL, 0);
	assert_int_equal(r.outcome, PP_OUT_DELIVERED);
	pp_apns__result(&r, 410, b410, strlen(b410));
	assert_int_equal(r.outcome, PP_OUT_DEAD);
	assert_string_equal(r.reason, "Unregistered");
	pp_apns__result(&r, 400, b400, strlen(b400));
	assert_int_equal(r.outcome, PP_OUT_REJECTED);
	assert_int_equal(r.cause, PP_CAUSE_CONFIG); /* our request, not the device */
	assert_string_equal(r.reason, "BadTopic");
	pp_apns__result(&r, 400, "{\"reason\":\"BadDeviceToken\"}", 27);
	assert_int_equal(r.cause, PP_CAUSE_BAD_NOTIFICATION);
	pp_apns__result(&r, 400, "{\"reason\":\"SomethingNew\"}", 25);
	assert_int_equal(r.cause, PP_CAUSE_BAD_NOTIFICATION);
	pp_apns__result(&r, 413, "{", 1);
	assert_int_equal(r.cause, PP_CAUSE_PAYLOAD_TOO_LARGE);
	assert_string_equal(r.reason, "");
	pp_apns__result(&r, 403, "{\"reason\":\"InvalidProviderToken\"}", 33);
	assert_int_equal(r.cause, PP_CAUSE_AUTH);
	pp_apns__result(&r, 429, NULL, 0);
	assert_int_equal(r.outcome, PP_OUT_FAILED);
	assert_int_equal(r.cause, PP_CAUSE_THROTTLED);
	pp_apns__result(&r, 503, "{\"reason\":\"Shutdown\"}", 21);
	assert_int_equal(r.cause, PP_CAUSE_PROVIDER);
	pp_apns__result(&r, 405, NULL, 0);
	assert_int_equal(r.outcome, PP_OUT_REJECTED);
}

static void verify_token(const char *tok, long long iat)
{
	struct cm_jwt_key *pub = NULL;
	struct cm_buf hdr, claims;
	size_t len;
	char *pem = slurp(KEYS "AuthKey_ABC123DEFG.pub.pem", &len), want[80];

	assert_int_equal(cm_jwt_pubkey_load(&pub, CM_JWT_ES256, pem, len, NULL, 0), 0);
	cm_buf_init(&hdr, 0);
	cm_buf_init(&claims, 0);
	assert_int_equal(cm_jwt_verify(pub, tok, strlen(tok), &hdr, &claims), 0);
	assert_non_null(strstr(hdr.data, "\"kid\":\"ABC123DEFG\""));
	snprintf(want, sizeof(want), "{\"iss\":\"DEF123GHIJ\",\"iat\":%lld}", iat);
	assert_string_equal(claims.data, want);
	cm_buf_free(&hdr);
	cm_buf_free(&claims);
	cm_jwt_key_free(pub);
	free(pem);
}

/* apns-id: UUIDs of version 4 layout, all different within a generator and between two. */
static void test_apns_ids(void **state)
{
	struct pp_apns_idgen g1, g2;
	char prev[37] = "", id[37], other[37];

	(void)state;
	assert_int_equal(pp_apns__id_seed(&g1), 0);
	assert_int_equal(pp_apns__id_seed(&g2), 0);
	/* the counter wraps within its 56 bits, leaving the random top byte alone */
	g1.lo |= 0x00fffffffffffff0u;
	for (int i = 0; i < 64; i++) {
		pp_apns__id_next(&g1, id);
		assert_int_equal(strlen(id), 36);
		assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
		assert_int_equal(id[14], '4');
		assert_non_null(strchr("89ab", id[19]));
		assert_int_equal(strspn(id, "0123456789abcdef-"), 36);
		assert_string_not_equal(id, prev);
		/* only the counter's 14 hex digits change */
		if (*prev)
			assert_memory_equal(id, prev, 21);
		memcpy(prev, id, sizeof(prev));
	}
	pp_apns__id_next(&g2, other);
	assert_memory_not_equal(other, id, 21);
}

static void test_token_schedule(void **state)
{
	struct pp_apns_token t;
	char err[256], *pem, *tok1;
	size_t len;
	bool refreshed;
	const char *tok;

	(void)state;
	pem = slurp(KEYS "AuthKey_ABC123DEFG.p8", &len);
	assert_int_equal(
	    pp_apns_token_init(&t, pem, len, "ABC123DEFG", "DEF123GHIJ", 10, err, sizeof(err)), 0);
	assert_int_equal(t.refresh_s, PP_APNS_TOKEN_MIN_AGE); /* clamped up */
	tok = pp_apns__token_get(&t, 1000000, &refreshed);
	assert_non_null(tok);
	assert_true(refreshed);
	verify_token(tok, 1000000);
	tok1 = strdup(tok);
	/* Shared and stable under 20 minutes, whatever happens. */
	tok = pp_apns__token_get(&t, 1000000 + 1199, &refreshed);
	assert_false(refreshed);
	assert_string_equal(tok, tok1);
	/* A reload with the same key changes nothing. */
	assert_int_equal(pp_apns_token_rekey(&t, pem, len, err, sizeof(err)), 0);
	assert_false(t.stale);
	tok = pp_apns__token_get(&t, 1000000 + 1200, &refreshed);
	assert_true(refreshed);
	verify_token(tok, 1000000 + 1200);
	assert_int_equal(t.generated, 2);
	/* A refused token (ExpiredProviderToken, InvalidProviderToken): remade at once, marked
	 * remade until a request made with it is accepted. */
	assert_false(t.remade);
	pp_apns_token_refused(&t);
	tok = pp_apns__token_get(&t, 1000000 + 1201, &refreshed);
	assert_true(refreshed);
	assert_true(t.remade);
	assert_int_equal(t.generated, 3);
	pp_apns__token_accepted(&t, 2); /* an answer to a request with the old token */
	assert_true(t.remade);
	pp_apns__token_accepted(&t, 3);
	assert_false(t.remade);
	/* The clock went back: assume the worst and remake. */
	tok = pp_apns__token_get(&t, 1000, &refreshed);
	assert_true(refreshed);
	free(tok1);
	pp_apns_token_close(&t);

	/* Clamped down under the hour. */
	assert_int_equal(
	    pp_apns_token_init(&t, pem, len, "ABC123DEFG", "DEF123GHIJ", 99999, err, sizeof(err)),
	    0);
	assert_int_equal(t.refresh_s, 3540);
	pp_apns__token_get(&t, 5000, NULL);
	assert_false(t.jwt == NULL);
	pp_apns__token_get(&t, 5000 + 3539, &refreshed);
	assert_false(refreshed);
	pp_apns__token_get(&t, 5000 + 3540, &refreshed);
	assert_true(refreshed);
	pp_apns_token_close(&t);
	free(pem);
}

static void test_token_rekey_waits_20_minutes(void **state)
{
	struct pp_apns_token t;
	char err[256], *pem, *pem2;
	size_t len, len2;
	bool refreshed;

	(void)state;
	pem = slurp(KEYS "AuthKey_ABC123DEFG.p8", &len);
	pem2 = slurp(KEYS "AuthKey_WRONG.p8", &len2);
	assert_int_equal(
	    pp_apns_token_init(&t, pem, len, "ABC123DEFG", "DEF123GHIJ", 3000, err, sizeof(err)),
	    0);
	pp_apns__token_get(&t, 100, NULL);
	assert_int_equal(pp_apns_token_rekey(&t, pem2, len2, err, sizeof(err)), 0);
	assert_true(t.stale);
	pp_apns__token_get(&t, 100 + 600, &refreshed);
	assert_false(refreshed);
	pp_apns__token_get(&t, 100 + 1200, &refreshed);
	assert_true(refreshed);
	assert_false(t.stale);
	/* A bad key on reload: refused, the current one stays. */
	assert_int_equal(pp_apns_token_rekey(&t, "junk", 4, err, sizeof(err)), -EINVAL);
	assert_non_null(t.key);
	pp_apns_token_close(&t);

	/* Bad ids and keys at init. */
	assert_int_equal(
	    pp_apns_token_init(&t, pem, len, "short", "DEF123GHIJ", 3000, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "key_id and team_id must be Apple's 10-character ids");
	pem2[30] ^= 1;
	assert_int_equal(
	    pp_apns_token_init(&t, "x", 1, "ABC123DEFG", "DEF123GHIJ", 3000, err, sizeof(err)),
	    -EINVAL);
	free(pem);
	free(pem2);
}

static int mp(struct pp_notif *n, const char *json, char *err)
{
	return pp_notif_from_mongoosepush(n, TOKEN, json, strlen(json), err, 256);
}

static void test_from_mongoosepush(void **state)
{
	struct pp_notif n;
	char err[256];

	(void)state;
	assert_int_equal(mp(&n,
	                    "{\"service\":\"apns\",\"mode\":\"dev\",\"priority\":\"normal\","
	                    "\"time_to_live\":30,\"mutable_content\":true,\"topic\":\"com.x\","
	                    "\"tags\":[\"a\",\"b\"],\"data\":{\"k\":1},\"alert\":{\"title\":"
	                    "\"T\",\"body\":\"B\",\"badge\":4,\"sound\":\"s\",\"click_action\":"
	                    "\"c\",\"tag\":\"g\"},\"extra\":1}",
	                    err),
	                 0);
	assert_int_equal(n.service, PP_SVC_APNS);
	assert_int_equal(n.mode, PP_MODE_DEV);
	assert_int_equal(n.priority, PP_PRIO_NORMAL);
	assert_int_equal(n.ttl, 30);
	assert_true(n.mutable_content);
	assert_string_equal(n.topic, "com.x");
	assert_int_equal(n.ntags, 2);
	assert_string_equal(n.tags[1], "b");
	assert_string_equal(n.alert.click_action, "c");
	assert_int_equal(n.alert.badge, 4);
	assert_false(n.voip);
	assert_int_equal(pp_notif_validate(&n, err, sizeof(err)), 0);
	pp_notif_free(&n);

	/* "\u0001" is valid JSON for valid UTF-8: validation says what is wrong with it. */
	assert_int_equal(mp(&n, "{\"service\":\"apns\",\"alert\":{\"body\":\"hi\\u0001\"}}", err),
	                 0);
	assert_int_equal(pp_notif_validate(&n, err, sizeof(err)), -EINVAL);
	assert_memory_equal(err, "alert.body: control character U+0001 at byte 2 ", 47);
	pp_notif_free(&n);

	/* data alone: silent; a .voip topic: a call. */
	assert_int_equal(mp(&n, "{\"service\":\"fcm\",\"data\":{\"a\":\"b\"}}", err), 0);
	assert_true(pp_notif_silent(&n));
	assert_int_equal(n.service, PP_SVC_FCM);
	pp_notif_free(&n);
	assert_int_equal(mp(&n, "{\"service\":\"apns\",\"topic\":\"com.x.voip\",\"data\":{}}", err),
	                 0);
	assert_true(n.voip);
	pp_notif_free(&n);

	/* Precise errors. */
	static const struct {
		const char *json, *err;
	} bad[] = {
	    {"[]", "the body must be a JSON object"},
	    {"{\"alert\":{}}", "service: required (\"apns\" or \"fcm\")"},
	    {"{\"service\":\"gcm\"}", "service: must be \"apns\" or \"fcm\""},
	    {"{\"service\":\"apns\"}", "alert or data: at least one is required"},
	    {"{\"service\":\"apns\",\"mode\":\"x\",\"data\":{}}",
	     "mode: must be \"prod\" or \"dev\""},
	    {"{\"service\":\"apns\",\"alert\":{\"badge\":\"1\"}}",
	     "alert.badge: must be a non-negative integer"},
	    {"{\"service\":\"apns\",\"alert\":{\"title\":3}}", "alert.title: must be a string"},
	    {"{\"service\":\"apns\",\"data\":[]}", "data: must be an object"},
	    {"{\"service\":\"apns\",\"data\":{},\"time_to_live\":-1}",
	     "time_to_live: must be a non-negative integer"},
	    {"{\"service\":\"apns\",\"data\":{},\"tags\":[1]}", "tags[0]: must be a string"},
	    {"{\"service\":\"apns\",\"service\":\"fcm\"}", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mp(&n, bad[i].json, err), -EINVAL);
		if (bad[i].err)
			assert_string_equal(err, bad[i].err);
		assert_null(n.token);
	}
	assert_int_equal(pp_notif_from_mongoosepush(&n, "", "{}", 2, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "device_id: missing in the path");
}

static int parse_scenario(void *arg)
{
	struct pp_notif n;
	char err[256];
	int r = pp_notif_from_mongoosepush(&n, TOKEN, arg, strlen(arg), err, sizeof(err));

	if (r)
		return r;
	assert_int_equal(n.ntags, 2);
	pp_notif_free(&n);
	return 0;
}

/* Every allocation of the parser may fail: a clean -ENOMEM, nothing leaked. */
static void test_from_mongoosepush_alloc_failures(void **state)
{
	static const char body[] =
	    "{\"service\":\"apns\",\"topic\":\"com.x\",\"tags\":[\"a\",\"b\"],\"alert\":"
	    "{\"title\":\"T\",\"body\":\"B\",\"sound\":\"s\",\"click_action\":\"c\","
	    "\"tag\":\"g\"}}";

	(void)state;
	assert_true(test_alloc_sweep(parse_scenario, (void *)body, 100) > 5);
}

static void test_from_push_form(void **state)
{
	static const struct pp_field opts[] = {
	    {"FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"},
	    {"device_id", TOKEN},
	    {"service", "apns"},
	    {"mode", "dev"},
	    {"topic", "com.example.app"},
	    {"secret", "s3cr3t"},
	};
	static const struct pp_field summary[] = {
	    {"FORM_TYPE", "urn:xmpp:push:summary"},
	    {"message-count", "2"},
	    {"last-message-sender", "alice@example.com"},
	    {"last-message-body", "Hi"},
	};
	struct pp_field silent[7], call[5];
	struct pp_notif n;
	char err[256];

	(void)state;
	assert_int_equal(pp_notif_from_push_form(&n, opts, 6, summary, 4, err, sizeof(err)), 0);
	assert_string_equal(n.token, TOKEN);
	assert_int_equal(n.mode, PP_MODE_DEV);
	assert_true(n.has_alert);
	assert_string_equal(n.alert.title, "alice@example.com");
	assert_string_equal(n.alert.body, "Hi");
	assert_string_equal(json_string_value(json_object_get(n.data, "message-count")), "2");
	assert_null(json_object_get(n.data, "FORM_TYPE"));
	assert_int_equal(pp_notif_validate(&n, err, sizeof(err)), 0);
	pp_notif_free(&n);

	memcpy(silent, opts, sizeof(opts));
	silent[6] = (struct pp_field){"silent", "true"};
	assert_int_equal(pp_notif_from_push_form(&n, silent, 7, summary, 4, err, sizeof(err)), 0);
	assert_true(pp_notif_silent(&n));
	pp_notif_free(&n);

	memcpy(call, summary, sizeof(summary));
	call[4] = (struct pp_field){"jingle-message", "propose"};
	assert_int_equal(pp_notif_from_push_form(&n, opts, 6, call, 5, err, sizeof(err)), 0);
	assert_true(n.voip);
	assert_int_equal(n.priority, PP_PRIO_HIGH);
	pp_notif_free(&n);

	assert_int_equal(pp_notif_from_push_form(&n, opts + 2, 4, summary, 4, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "device_id: missing in the publish-options");
	silent[6] = (struct pp_field){"mode", "staging"};
	assert_int_equal(pp_notif_from_push_form(&n, silent + 1, 6, summary, 4, err, sizeof(err)),
	                 0); /* the first "mode" wins */
	pp_notif_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validate_tokens),
	    cmocka_unit_test(test_validate_fields),
	    cmocka_unit_test(test_copy_and_alloc_failures),
	    cmocka_unit_test(test_priority_defaults),
	    cmocka_unit_test(test_outcome_mapping),
	    cmocka_unit_test(test_apns_msg_alert),
	    cmocka_unit_test(test_apns_msg_silent_voip),
	    cmocka_unit_test(test_apns_msg_size_limits),
	    cmocka_unit_test(test_apns_result),
	    cmocka_unit_test(test_apns_ids),
	    cmocka_unit_test(test_token_schedule),
	    cmocka_unit_test(test_token_rekey_waits_20_minutes),
	    cmocka_unit_test(test_from_mongoosepush),
	    cmocka_unit_test(test_from_push_form),
	    cmocka_unit_test(test_from_mongoosepush_alloc_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
