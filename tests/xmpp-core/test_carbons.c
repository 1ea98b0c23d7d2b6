/* test_carbons.c - which messages message carbons copy (XEP-0280's eligibility rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "xmpp-core/src/carbons.h"
#include "xmpp-core/src/stanza.h"

static bool eligible(const char *xml)
{
	struct cm_xml_node *st;
	bool r;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	r = xc_carbons_eligible(st);
	cm_xml_node_free(st);
	return r;
}

static void test_types(void **state)
{
	(void)state;
	/* chat: always, body or not */
	assert_true(eligible("<message type='chat'><body>hi</body></message>"));
	assert_true(eligible("<message type='chat'><x xmlns='urn:example'/></message>"));
	/* normal: with a body */
	assert_true(eligible("<message><body>hi</body></message>"));
	assert_true(eligible("<message type='normal'><body>hi</body></message>"));
	assert_false(eligible("<message type='normal'><x xmlns='urn:example'/></message>"));
	/* never groupchat, headline, error */
	assert_false(eligible("<message type='groupchat'><body>hi</body></message>"));
	assert_false(eligible("<message type='headline'><body>hi</body></message>"));
	assert_false(eligible("<message type='error'><body>hi</body></message>"));
	/* a body of another namespace is not one */
	assert_false(eligible("<message><body xmlns='urn:example'>hi</body></message>"));
}

static void test_im_payloads(void **state)
{
	static const char *const ns[] = {
	    "urn:xmpp:receipts",
	    "http://jabber.org/protocol/chatstates",
	    "urn:xmpp:chat-markers:0",
	    "urn:xmpp:jingle-message:0",
	    "eu.siacs.conversations.axolotl",
	    "urn:xmpp:omemo:2",
	};
	char buf[200];

	(void)state;
	/* a normal message without a body, carrying what IM clients sync */
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		snprintf(buf, sizeof(buf), "<message><x xmlns='%s'/></message>", ns[i]);
		assert_true(eligible(buf));
	}
}

static void test_opting_out(void **state)
{
	(void)state;
	assert_false(eligible("<message type='chat'><body>x</body>"
	                      "<private xmlns='urn:xmpp:carbons:2'/></message>"));
	assert_false(eligible("<message type='chat'><body>x</body>"
	                      "<no-copy xmlns='urn:xmpp:hints'/></message>"));
	/* other hints do not matter */
	assert_true(eligible("<message type='chat'><body>x</body>"
	                     "<no-store xmlns='urn:xmpp:hints'/></message>"));
	/* a copy is not copied again (nor is a forged one) */
	assert_false(eligible("<message type='chat'><received xmlns='urn:xmpp:carbons:2'>"
	                      "<forwarded xmlns='urn:xmpp:forward:0'/></received></message>"));
	assert_false(eligible("<message type='chat'><sent xmlns='urn:xmpp:carbons:2'/>"
	                      "</message>"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_im_payloads),
	    cmocka_unit_test(test_opting_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
