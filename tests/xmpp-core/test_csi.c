/* test_csi.c - client state indication (csi.h): what an inactive client gets at once, the queue
 * of what waits (order, presence replaced by the latest per sender, the bound). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/alloc.h"
#include "xmpp-core/src/csi.h"
#include "xmpp-core/src/stanza.h"

static struct cm_xml_node *parse(const char *xml)
{
	struct cm_xml_node *st;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	return st;
}

static enum xc_csi_class cls(const char *xml)
{
	struct cm_xml_node *st = parse(xml);
	enum xc_csi_class r = xc_csi_classify(st);

	cm_xml_node_free(st);
	return r;
}

/* Every IQ goes at once: requests and answers alike. */
static void test_iq(void **state)
{
	(void)state;
	assert_int_equal(cls("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<iq type='result' id='1'/>"), XC_CSI_URGENT);
	assert_int_equal(cls("<iq type='error' id='1'/>"), XC_CSI_URGENT);
	assert_int_equal(cls("<iq type='set' id='2'><query xmlns='jabber:iq:roster'/></iq>"),
	                 XC_CSI_URGENT);
}

/* Messages a person reads, encrypted ones, calls and invitations go at once. */
static void test_messages_that_matter(void **state)
{
	(void)state;
	assert_int_equal(cls("<message type='chat'><body>hi</body></message>"), XC_CSI_URGENT);
	assert_int_equal(cls("<message><body/></message>"), XC_CSI_URGENT);
	assert_int_equal(cls("<message type='groupchat'><subject>x</subject></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message type='chat'><encrypted "
	                     "xmlns='eu.siacs.conversations.axolotl'/></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>x"
	                     "</openpgp></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message><propose xmlns='urn:xmpp:jingle-message:0' id='c'/>"
	                     "</message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message><retract xmlns='urn:xmpp:jingle-message:0' id='c'/>"
	                     "</message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message><x xmlns='jabber:x:conference' jid='r@m'/></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message><x xmlns='http://jabber.org/protocol/muc#user'>"
	                     "<invite from='a@b'/></x></message>"),
	                 XC_CSI_URGENT);
	/* something the client sent did not arrive */
	assert_int_equal(cls("<message type='error'><error type='cancel'/></message>"),
	                 XC_CSI_URGENT);
	/* a page of the archive the client asked for */
	assert_int_equal(cls("<message><result xmlns='urn:xmpp:mam:2' id='x'/></message>"),
	                 XC_CSI_URGENT);
}

/* Chat states, receipts, markers and headlines alone can wait. */
static void test_messages_that_wait(void **state)
{
	(void)state;
	assert_int_equal(cls("<message type='chat'><composing "
	                     "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 XC_CSI_HOLD);
	assert_int_equal(cls("<message type='chat'><active "
	                     "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 XC_CSI_HOLD);
	assert_int_equal(cls("<message><received xmlns='urn:xmpp:receipts' id='m'/></message>"),
	                 XC_CSI_HOLD);
	assert_int_equal(cls("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='m'/>"
	                     "</message>"),
	                 XC_CSI_HOLD);
	/* a PEP notification */
	assert_int_equal(cls("<message type='headline'><event "
	                     "xmlns='http://jabber.org/protocol/pubsub#event'/></message>"),
	                 XC_CSI_HOLD);
	/* a body of another namespace is not one */
	assert_int_equal(cls("<message><body xmlns='urn:example'>x</body></message>"), XC_CSI_HOLD);
	/* a chat state beside a body does not make the body wait */
	assert_int_equal(cls("<message type='chat'><body>x</body><active "
	                     "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 XC_CSI_URGENT);
}

/* A carbon copy is judged by the message it carries, sent or received. */
static void test_carbons(void **state)
{
	(void)state;
	assert_int_equal(cls("<message type='chat'><received xmlns='urn:xmpp:carbons:2'>"
	                     "<forwarded xmlns='urn:xmpp:forward:0'><message type='chat' "
	                     "xmlns='jabber:client'><body>hi</body></message></forwarded>"
	                     "</received></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message type='chat'><sent xmlns='urn:xmpp:carbons:2'>"
	                     "<forwarded xmlns='urn:xmpp:forward:0'><message type='chat' "
	                     "xmlns='jabber:client'><encrypted "
	                     "xmlns='eu.siacs.conversations.axolotl'/></message></forwarded>"
	                     "</sent></message>"),
	                 XC_CSI_URGENT);
	assert_int_equal(cls("<message type='chat'><received xmlns='urn:xmpp:carbons:2'>"
	                     "<forwarded xmlns='urn:xmpp:forward:0'><message type='chat' "
	                     "xmlns='jabber:client'><composing "
	                     "xmlns='http://jabber.org/protocol/chatstates'/></message>"
	                     "</forwarded></received></message>"),
	                 XC_CSI_HOLD);
	/* the wrapper's own children do not count, only the carried message */
	assert_int_equal(cls("<message type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>"),
	                 XC_CSI_HOLD);
}

/* Presence updates wait (and are replaced); subscription traffic goes at once. */
static void test_presence(void **state)
{
	(void)state;
	assert_int_equal(cls("<presence from='a@b/c'/>"), XC_CSI_PRESENCE);
	assert_int_equal(cls("<presence from='a@b/c'><show>away</show></presence>"),
	                 XC_CSI_PRESENCE);
	assert_int_equal(cls("<presence from='a@b/c' type='unavailable'/>"), XC_CSI_PRESENCE);
	assert_int_equal(cls("<presence from='a@b/c' type='error'/>"), XC_CSI_HOLD);
	assert_int_equal(cls("<presence from='a@b' type='subscribe'/>"), XC_CSI_URGENT);
	assert_int_equal(cls("<presence from='a@b' type='subscribed'/>"), XC_CSI_URGENT);
	assert_int_equal(cls("<presence from='a@b' type='unsubscribe'/>"), XC_CSI_URGENT);
	assert_int_equal(cls("<presence from='a@b' type='unsubscribed'/>"), XC_CSI_URGENT);
}

static int push(struct xc_csi_queue *q, const char *xml)
{
	struct cm_xml_node *st = parse(xml);
	int r = xc_csi_queue_push(q, st, xc_csi_classify(st));

	if (r < 0)
		cm_xml_node_free(st);
	return r;
}

/* The ids of what the queue holds, oldest first, separated by spaces, into buf. */
static const char *ids(const struct xc_csi_queue *q, char *buf, size_t len)
{
	const struct cm_list *p;
	size_t at = 0;

	buf[0] = '\0';
	cm_list_foreach(p, &q->items)
	{
		const char *id = cm_xml_attr(cm_list_entry(p, struct xc_csi_item, link)->st, "id");
		int n = snprintf(buf + at, len - at, "%s%s", at ? " " : "", id ? id : "?");

		assert_true(n > 0 && (size_t)n < len - at);
		at += (size_t)n;
	}
	return buf;
}

/* Only the latest presence of each full JID is held, in the place of its arrival; other stanzas
 * are never replaced. */
static void test_supersede(void **state)
{
	struct xc_csi_queue q;
	char buf[128];

	(void)state;
	xc_csi_queue_init(&q, 100);
	assert_int_equal(push(&q, "<presence id='p1' from='a@b/c'/>"), 0);
	assert_int_equal(push(&q, "<message id='m1' type='chat'><composing "
	                          "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 0);
	assert_int_equal(push(&q, "<presence id='p2' from='a@b/d'/>"), 0);
	assert_int_equal(push(&q, "<presence id='p3' from='a@b/c'><show>away</show></presence>"),
	                 0);
	assert_string_equal(ids(&q, buf, sizeof(buf)), "m1 p2 p3");
	assert_int_equal(q.superseded, 1);
	/* unavailable replaces available */
	assert_int_equal(push(&q, "<presence id='p4' from='a@b/c' type='unavailable'/>"), 0);
	assert_string_equal(ids(&q, buf, sizeof(buf)), "m1 p2 p4");
	assert_int_equal(q.superseded, 2);
	/* another sender's, and the bare JID, are others */
	assert_int_equal(push(&q, "<presence id='p5' from='a@b'/>"), 0);
	assert_int_equal(push(&q, "<presence id='p6' from='x@b/c'/>"), 0);
	assert_string_equal(ids(&q, buf, sizeof(buf)), "m1 p2 p4 p5 p6");
	assert_int_equal(q.superseded, 2);
	/* a presence error is held as it is, never replaced nor replacing */
	assert_int_equal(push(&q, "<presence id='e1' from='a@b/d' type='error'/>"), 0);
	assert_int_equal(push(&q, "<presence id='p7' from='a@b/d'/>"), 0);
	assert_string_equal(ids(&q, buf, sizeof(buf)), "m1 p4 p5 p6 e1 p7");
	assert_int_equal(q.superseded, 3);
	assert_int_equal(q.n, 6);
	xc_csi_queue_close(&q);
	assert_int_equal(q.n, 0);
}

/* The queue says when it holds its bound; popping gives everything back in order. */
static void test_bound(void **state)
{
	struct xc_csi_queue q;
	struct cm_xml_node *st;
	char xml[128];
	unsigned i;

	(void)state;
	xc_csi_queue_init(&q, 3);
	assert_int_equal(push(&q, "<message id='m0'><active "
	                          "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
	                 0);
	assert_int_equal(push(&q, "<presence id='p1' from='a@b/c'/>"), 0);
	/* a replaced presence does not bring the bound closer */
	assert_int_equal(push(&q, "<presence id='p2' from='a@b/c'/>"), 0);
	assert_int_equal(q.n, 2);
	assert_int_equal(push(&q, "<presence id='p3' from='x@b/c'/>"), 1);
	for (i = 0; (st = xc_csi_queue_pop(&q)) != NULL; i++) {
		static const char *const want[] = {"m0", "p2", "p3"};

		assert_true(i < 3);
		assert_string_equal(cm_xml_attr(st, "id"), want[i]);
		cm_xml_node_free(st);
	}
	assert_int_equal(i, 3);
	assert_int_equal(q.n, 0);
	assert_null(xc_csi_queue_pop(&q));
	/* empty again, it counts from zero */
	snprintf(xml, sizeof(xml), "<presence id='p4' from='a@b/c'/>");
	assert_int_equal(push(&q, xml), 0);
	xc_csi_queue_close(&q);
}

/* A queue of one is flushed on every push. */
static void test_bound_of_one(void **state)
{
	struct xc_csi_queue q;

	(void)state;
	xc_csi_queue_init(&q, 0); /* taken as 1 */
	assert_int_equal(push(&q, "<presence id='p1' from='a@b/c'/>"), 1);
	xc_csi_queue_close(&q);
}

static int push_scenario(void *arg)
{
	struct xc_csi_queue q;
	struct cm_xml_node *st = NULL;
	int r;

	(void)arg;
	xc_csi_queue_init(&q, 10);
	r = xc_stanza_parse("<presence from='a@b/c'/>", 24, &st);
	if (!r && (r = xc_csi_queue_push(&q, st, XC_CSI_PRESENCE)) < 0)
		cm_xml_node_free(st);
	st = NULL;
	if (r >= 0)
		r = xc_stanza_parse("<presence from='a@b/c' type='unavailable'/>", 43, &st);
	if (r >= 0 && (r = xc_csi_queue_push(&q, st, XC_CSI_PRESENCE)) < 0)
		cm_xml_node_free(st);
	/* whatever failed, the queue is whole: one presence at most */
	assert_true(q.n <= 1);
	xc_csi_queue_close(&q);
	return r < 0 ? r : 0;
}

/* Without memory, a push fails cleanly and leaves the queue as it was. */
static void test_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(push_scenario, NULL, 200) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iq),
	    cmocka_unit_test(test_messages_that_matter),
	    cmocka_unit_test(test_messages_that_wait),
	    cmocka_unit_test(test_carbons),
	    cmocka_unit_test(test_presence),
	    cmocka_unit_test(test_supersede),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_bound_of_one),
	    cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
