/* test_push.c - push notifications (XEP-0357): which messages are worth a push, how a burst
 * makes one push (and the second wake), what the summary says under each privacy policy, and
 * the registrations in the store (the cap, replacing, disabling, the count, an account that
 * goes). */
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
#include "tests/support/store_fix.h"
#include "xmpp-core/src/push.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/store.h"
#include "xmpp-core/src/xc.h"

/* --- what is worth a push --------------------------------------------------------------------- */

static enum xc_push_want want(const char *xml)
{
	struct cm_xml_node *st;
	enum xc_push_want w;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	w = xc_push_classify(st);
	cm_xml_node_free(st);
	return w;
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(want("<message type='chat'><body>hi</body></message>"), XC_PUSH_YES);
	assert_int_equal(want("<message><body>hi</body></message>"), XC_PUSH_YES);
	/* encrypted payloads have no body of their own */
	assert_int_equal(want("<message type='chat'><encrypted "
	                      "xmlns='eu.siacs.conversations.axolotl'/></message>"),
	                 XC_PUSH_YES);
	assert_int_equal(want("<message type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp>"
	                      "</message>"),
	                 XC_PUSH_YES);
	/* a call is urgent, body or not */
	assert_int_equal(want("<message type='chat'><propose xmlns='urn:xmpp:jingle-message:0' "
	                      "id='c'/></message>"),
	                 XC_PUSH_URGENT);
	assert_int_equal(want("<message type='chat'><body>call</body><propose "
	                      "xmlns='urn:xmpp:jingle-message:0' id='c'/></message>"),
	                 XC_PUSH_URGENT);
	/* never */
	assert_int_equal(want("<presence/>"), XC_PUSH_NO);
	assert_int_equal(want("<iq type='set' id='1'><body>x</body></iq>"), XC_PUSH_NO);
	assert_int_equal(want("<message type='headline'><body>news</body></message>"), XC_PUSH_NO);
	assert_int_equal(want("<message type='error'><body>x</body></message>"), XC_PUSH_NO);
	assert_int_equal(want("<message type='groupchat'><body>x</body></message>"), XC_PUSH_NO);
	assert_int_equal(want("<message type='chat'><composing "
	                      "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 XC_PUSH_NO);
	assert_int_equal(want("<message type='chat'><received xmlns='urn:xmpp:receipts' "
	                      "id='x'/></message>"),
	                 XC_PUSH_NO);
	assert_int_equal(want("<message><body xmlns='urn:example'>x</body></message>"), XC_PUSH_NO);
	/* carbons: a sent one never; a received one as the message it carries */
	assert_int_equal(want("<message><sent xmlns='urn:xmpp:carbons:2'><forwarded "
	                      "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
	                      "type='chat'><body>mine</body>"
	                      "</message></forwarded></sent></message>"),
	                 XC_PUSH_NO);
	assert_int_equal(want("<message><received xmlns='urn:xmpp:carbons:2'><forwarded "
	                      "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
	                      "type='chat'><body>theirs</body>"
	                      "</message></forwarded></received></message>"),
	                 XC_PUSH_YES);
	assert_int_equal(
	    want("<message><received xmlns='urn:xmpp:carbons:2'><forwarded "
	         "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><active "
	         "xmlns='http://jabber.org/protocol/chatstates'/></message>"
	         "</forwarded></received></message>"),
	    XC_PUSH_NO);
	/* an archive result is an answer to the user's own query */
	assert_int_equal(want("<message><result xmlns='urn:xmpp:mam:2' id='1'><forwarded "
	                      "xmlns='urn:xmpp:forward:0'><message><body>old</body></message>"
	                      "</forwarded></result></message>"),
	                 XC_PUSH_NO);
}

static void test_body(void **state)
{
	const char *xml = "<message><received xmlns='urn:xmpp:carbons:2'><forwarded "
	                  "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
	                  "type='chat'><body>theirs</body>"
	                  "</message></forwarded></received></message>";
	struct cm_xml_node *st;

	(void)state;
	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	assert_string_equal(xc_push_body(st), "theirs");
	cm_xml_node_free(st);
	xml = "<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>";
	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	assert_null(xc_push_body(st));
	cm_xml_node_free(st);
}

/* --- bursts ----------------------------------------------------------------------------------- */

static void test_burst(void **state)
{
	struct xc_push_burst b = {0};
	const uint64_t w = 2000;

	(void)state;
	/* the first message goes at once */
	assert_int_equal(xc_push_burst_event(&b, 10000, w, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.unsent, 0);
	/* what follows while it is in flight, or within the window, waits */
	assert_int_equal(xc_push_burst_event(&b, 10100, w, 1, false), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_answered(&b, true), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_event(&b, 11500, w, 1, false), XC_PUSH_HOLD);
	/* a trickle extends the burst: 11500 + 2000 is not reached */
	assert_int_equal(xc_push_burst_event(&b, 13000, w, 1, false), XC_PUSH_HOLD);
	assert_int_equal(b.count, 4);
	assert_int_equal(b.unsent, 3);
	/* quiet long enough: a new burst, which tells the whole count */
	assert_int_equal(xc_push_burst_event(&b, 15001, w, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(b.count, 5);
	/* a call does not wait for the window, only for the answer in flight */
	assert_int_equal(xc_push_burst_event(&b, 15100, w, 1, true), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_answered(&b, true), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_false(b.urgent);
	assert_int_equal(xc_push_burst_answered(&b, true), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_event(&b, 15200, w, 1, true), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(xc_push_burst_answered(&b, true), XC_PUSH_HOLD);
	/* the second wake: once per absence, never while a push is in flight */
	b.in_flight = true;
	assert_int_equal(xc_push_burst_rewake(&b), XC_PUSH_HOLD);
	b.in_flight = false;
	assert_int_equal(xc_push_burst_rewake(&b), XC_PUSH_SEND);
	assert_int_equal(xc_push_burst_rewake(&b), XC_PUSH_HOLD);
	/* back: everything starts again, the next message goes at once */
	xc_push_burst_back(&b);
	assert_int_equal(b.count, 0);
	assert_int_equal(xc_push_burst_rewake(&b), XC_PUSH_HOLD); /* nothing to tell */
	assert_int_equal(xc_push_burst_event(&b, 15300, w, 3, false), XC_PUSH_SEND);
	assert_int_equal(b.count, 3);
	assert_int_equal(xc_push_burst_event(&b, 15300, w, 0, true), XC_PUSH_HOLD);
	/* no window at all: every message is its own push once the last is answered */
	xc_push_burst_back(&b);
	assert_int_equal(xc_push_burst_event(&b, 1, 0, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	xc_push_burst_answered(&b, true);
	assert_int_equal(xc_push_burst_event(&b, 1, 0, 1, false), XC_PUSH_SEND);
}

/* A push the app server did not take woke nobody: the next message does not wait for the
 * failed push's window, but what came while it was in flight waits for that next push. */
static void test_burst_after_a_failed_push(void **state)
{
	struct xc_push_burst b = {0};
	const uint64_t w = 2000;

	(void)state;
	assert_int_equal(xc_push_burst_event(&b, 10000, w, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(xc_push_burst_event(&b, 10100, w, 1, false), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_answered(&b, false), XC_PUSH_HOLD);
	assert_int_equal(b.unsent, 1);
	assert_int_equal(xc_push_burst_event(&b, 10200, w, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(b.count, 3);
	assert_int_equal(b.unsent, 0);
	/* taken: the window holds again */
	assert_int_equal(xc_push_burst_answered(&b, true), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_event(&b, 10300, w, 1, false), XC_PUSH_HOLD);
	/* a call that came during a failed push still goes once it is answered */
	b = (struct xc_push_burst){0};
	assert_int_equal(xc_push_burst_event(&b, 20000, w, 1, false), XC_PUSH_SEND);
	xc_push_burst_sent(&b);
	assert_int_equal(xc_push_burst_event(&b, 20100, w, 1, true), XC_PUSH_HOLD);
	assert_int_equal(xc_push_burst_answered(&b, false), XC_PUSH_SEND);
}

/* --- the summary ------------------------------------------------------------------------------ */

static char *summary(int privacy, unsigned n, const char *sender, const char *body, bool urgent)
{
	struct xc_push_config cfg = {.privacy = privacy, .placeholder = (char *)"New message"};
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(xc_push_summary_write(&b, &cfg, n, sender, body, urgent), 0);
	return cm_buf_steal(&b);
}

#define HEAD                                                                                       \
	"<x xmlns='jabber:x:data' type='submit'><field "                                           \
	"var='FORM_TYPE'><value>urn:xmpp:push:summary"                                             \
	"</value></field>"

static void test_summary(void **state)
{
	char *s, longbody[400];

	(void)state;
	s = summary(XC_PUSH_PRIVACY_NONE, 3, "romeo@example.com", "hi", false);
	assert_string_equal(s, HEAD "<field var='message-count'><value>3</value></field></x>");
	free(s);
	s = summary(XC_PUSH_PRIVACY_SENDER, 1, "romeo@example.com", "hi", false);
	assert_string_equal(s, HEAD "<field var='message-count'><value>1</value></field>"
	                            "<field var='last-message-sender'><value>romeo@example.com"
	                            "</value></field></x>");
	free(s);
	s = summary(XC_PUSH_PRIVACY_PLACEHOLDER, 1, "romeo@example.com", "hi", false);
	assert_string_equal(s, HEAD "<field var='message-count'><value>1</value></field>"
	                            "<field var='last-message-body'><value>New message</value>"
	                            "</field></x>");
	free(s);
	/* full: escaped; a call says so */
	s = summary(XC_PUSH_PRIVACY_FULL, 2, "romeo@example.com", "a<b & c", true);
	assert_string_equal(s, HEAD "<field var='message-count'><value>2</value></field>"
	                            "<field var='last-message-sender'><value>romeo@example.com"
	                            "</value></field><field var='last-message-body'><value>a&lt;b "
	                            "&amp; c</value></field><field var='jingle-message'><value>"
	                            "propose</value></field></x>");
	free(s);
	/* no sender or body known: the fields are left out */
	s = summary(XC_PUSH_PRIVACY_FULL, 1, NULL, NULL, false);
	assert_string_equal(s, HEAD "<field var='message-count'><value>1</value></field></x>");
	free(s);
	/* a long body is cut on a character boundary (é is two bytes) */
	memset(longbody, 'a', sizeof(longbody));
	memcpy(longbody + XC_PUSH_BODY_MAX - 1, "\xc3\xa9", 2);
	longbody[sizeof(longbody) - 1] = '\0';
	s = summary(XC_PUSH_PRIVACY_FULL, 1, NULL, longbody, false);
	assert_non_null(strstr(s, "<value>aaa"));
	assert_null(strstr(s, "\xc3"));
	assert_non_null(strstr(s, "a</value>"));
	assert_int_equal(strstr(s, "</value></field></x>") - strstr(s, "body'><value>") -
	                     (long)strlen("body'><value>"),
	                 XC_PUSH_BODY_MAX - 1);
	free(s);
}

static void test_summary_cap(void **state)
{
	struct xc_push_config cfg = {.privacy = XC_PUSH_PRIVACY_FULL};
	struct cm_buf b;

	(void)state;
	/* all or nothing: a buffer too small keeps what it had */
	cm_buf_init(&b, 40);
	assert_int_equal(cm_buf_puts(&b, "before"), 0);
	assert_int_equal(xc_push_summary_write(&b, &cfg, 1, "romeo@example.com", "hi", false),
	                 -ENOBUFS);
	assert_string_equal(b.data, "before");
	cm_buf_free(&b);
}

/* --- the REST hand-off's body --------------------------------------------------------------- */

#define OPTS(extra)                                                                                \
	"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"                    \
	"http://jabber.org/protocol/pubsub#publish-options</value></field>" extra "</x>"

static char *rest(const char *form, int privacy, const char *body, bool urgent, int want,
                  const char *want_device)
{
	struct xc_push_config cfg = {.privacy = privacy, .placeholder = (char *)"New message"};
	char *device = NULL, *json = NULL;
	const char *why = NULL;

	assert_int_equal(xc_push_rest_body(form, &cfg, 2, "romeo@example.com", body, urgent,
	                                   &device, &json, &why),
	                 want);
	if (want) {
		assert_null(device);
		assert_null(json);
		assert_non_null(why);
		return NULL;
	}
	assert_string_equal(device, want_device);
	free(device);
	return json;
}

static void test_rest_body(void **state)
{
	char *j;

	(void)state;
	j = rest(OPTS("<field var='device_id'><value>abc</value></field><field var='service'>"
	              "<value>fcm</value></field><field var='mode'><value>dev</value></field>"),
	         XC_PUSH_PRIVACY_FULL, "hi", false, 0, "abc");
	assert_string_equal(j, "{\"service\":\"fcm\",\"mode\":\"dev\",\"alert\":{\"title\":"
	                       "\"romeo@example.com\",\"body\":\"hi\"},\"data\":{\"message-count\":"
	                       "\"2\",\"last-message-sender\":\"romeo@example.com\",\"last-message-"
	                       "body\":\"hi\"}}");
	free(j);
	/* the default policy: a neutral alert, the count only; apns when no service is named */
	j = rest(OPTS("<field var='device_id'><value>abc</value></field>"), XC_PUSH_PRIVACY_NONE,
	         "secret", false, 0, "abc");
	assert_string_equal(j, "{\"service\":\"apns\",\"alert\":{\"title\":\"New message\"},"
	                       "\"data\":{\"message-count\":\"2\"}}");
	free(j);
	/* a call: high priority, the VoIP topic, jingle-message; silent: no alert */
	j = rest(OPTS("<field var='device_id'><value>abc</value></field><field var='topic'><value>"
	              "com.example.app</value></field><field var='silent'><value>true</value>"
	              "</field>"),
	         XC_PUSH_PRIVACY_PLACEHOLDER, "x", true, 0, "abc");
	assert_string_equal(j, "{\"service\":\"apns\",\"priority\":\"high\",\"topic\":"
	                       "\"com.example.app.voip\",\"data\":{\"message-count\":\"2\","
	                       "\"last-message-body\":\"New message\",\"jingle-message\":"
	                       "\"propose\"}}");
	free(j);
	/* a topic that is the VoIP one already stays */
	j = rest(OPTS("<field var='device_id'><value>abc</value></field><field var='topic'><value>"
	              "com.example.app.voip</value></field>"),
	         XC_PUSH_PRIVACY_NONE, NULL, true, 0, "abc");
	assert_non_null(strstr(j, "\"topic\":\"com.example.app.voip\""));
	free(j);
	/* unusable registrations */
	rest(NULL, XC_PUSH_PRIVACY_NONE, NULL, false, -EINVAL, NULL);
	rest(OPTS(""), XC_PUSH_PRIVACY_NONE, NULL, false, -EINVAL, NULL);
	rest(OPTS("<field var='device_id'><value></value></field>"), XC_PUSH_PRIVACY_NONE, NULL,
	     false, -EINVAL, NULL);
	rest("<not a form", XC_PUSH_PRIVACY_NONE, NULL, false, -EINVAL, NULL);
}

/* --- registrations in the store ------------------------------------------------------------- */

struct fix {
	struct store_fix s;
};

static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	return store_fix_run(&f->s, r);
}

static struct xc_store_req *push_req(struct fix *f, enum xc_store_op op, const char *user,
                                     const char *jid, const char *node, const char *form,
                                     int64_t stamp)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->s.l, store_fix_on_done, &f->s);

	assert_non_null(r);
	if (user)
		assert_int_equal(xc_store_req_set(&r->user, user), 0);
	if (jid)
		assert_int_equal(xc_store_req_set(&r->key, jid), 0);
	if (node)
		assert_int_equal(xc_store_req_set(&r->with, node), 0);
	if (form)
		assert_int_equal(xc_store_req_set(&r->stanza, form), 0);
	r->stamp_ms = stamp;
	r->limit = 2;
	return run(f, r);
}

static void test_store(void **state)
{
	const char *form = "<x xmlns='jabber:x:data' type='submit'/>";
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	memset(&f, 0, sizeof(f));
	store_fix_open(&f.s, "test_push");
	r = push_req(&f, XC_STORE_ACCOUNT_CREATE, "juliet@example.com", NULL, NULL, NULL, 0);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	/* the first: kept with its form */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "a", form,
	             100);
	assert_int_equal(r->err, 0);
	assert_false(r->found);
	assert_int_equal(r->count, 0);
	assert_int_equal(r->npush, 1);
	assert_string_equal(r->push[0].jid, "push.example.com");
	assert_string_equal(r->push[0].node, "a");
	assert_string_equal(r->push[0].form, form);
	assert_int_equal(r->push[0].created_ms, 100);
	xc_store_req_free(r);
	/* the second, without a form */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "b", NULL,
	             200);
	assert_int_equal(r->npush, 2);
	assert_null(r->push[1].form);
	xc_store_req_free(r);
	/* a third with a cap of two: the oldest (a) goes */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "c", NULL,
	             300);
	assert_false(r->found);
	assert_int_equal(r->count, 1);
	assert_int_equal(r->npush, 2);
	assert_string_equal(r->push[0].node, "b");
	assert_string_equal(r->push[1].node, "c");
	xc_store_req_free(r);
	/* b again: replaced (now the newest), nothing goes */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "b", form,
	             400);
	assert_true(r->found);
	assert_int_equal(r->count, 0);
	assert_int_equal(r->npush, 2);
	assert_string_equal(r->push[0].node, "c");
	assert_string_equal(r->push[1].node, "b");
	assert_string_equal(r->push[1].form, form);
	xc_store_req_free(r);
	/* another user's, and the count of all */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "romeo@example.com", "push.example.net", "r", NULL,
	             500);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_COUNT, NULL, NULL, NULL, NULL, 0);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 3);
	xc_store_req_free(r);
	/* disable one node; a node that is not there removes nothing */
	r = push_req(&f, XC_STORE_PUSH_DISABLE, "juliet@example.com", "push.example.com", "c", NULL,
	             0);
	assert_int_equal(r->count, 1);
	assert_int_equal(r->npush, 1);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_DISABLE, "juliet@example.com", "push.example.com", "zz",
	             NULL, 0);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	/* without a jid: refused */
	r = push_req(&f, XC_STORE_PUSH_DISABLE, "juliet@example.com", NULL, NULL, NULL, 0);
	assert_int_equal(r->err, -EINVAL);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", NULL, NULL,
	             0);
	assert_int_equal(r->err, -EINVAL);
	xc_store_req_free(r);
	/* every node of the app server */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "d", NULL,
	             600);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_DISABLE, "juliet@example.com", "push.example.com", NULL,
	             NULL, 0);
	assert_int_equal(r->count, 2);
	assert_int_equal(r->npush, 0);
	xc_store_req_free(r);
	/* the account goes, and its registrations with it */
	r = push_req(&f, XC_STORE_PUSH_ENABLE, "juliet@example.com", "push.example.com", "e", NULL,
	             700);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_ACCOUNT_DELETE, "juliet@example.com", NULL, NULL, NULL, 0);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_LIST, "juliet@example.com", NULL, NULL, NULL, 0);
	assert_int_equal(r->npush, 0);
	xc_store_req_free(r);
	r = push_req(&f, XC_STORE_PUSH_LIST, "romeo@example.com", NULL, NULL, NULL, 0);
	assert_int_equal(r->npush, 1);
	xc_store_req_free(r);
	store_fix_close(&f.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classify),  cmocka_unit_test(test_body),
	    cmocka_unit_test(test_burst),     cmocka_unit_test(test_burst_after_a_failed_push),
	    cmocka_unit_test(test_summary),   cmocka_unit_test(test_summary_cap),
	    cmocka_unit_test(test_rest_body), cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
