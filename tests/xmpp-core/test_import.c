/* test_import.c - the import document checked (import.h) and Prosody's rows turned into one
 * (prosody.h), with the database side on a file made here as Prosody's SQL store lays it out. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "cm/err.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/prosody_int.h"
#include "xmpp-core/src/store.h"

/* --- the document ------------------------------------------------------------------------ */

/* SCRAM-SHA-1 keys of 20 bytes: 0x01... and 0x02..., salt "salt" */
#define KEYS                                                                                       \
	"\"scram\":{\"SCRAM-SHA-1\":{\"iterations\":4096,\"salt\":\"c2FsdA==\","                   \
	"\"stored_key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQE=\","                                         \
	"\"server_key\":\"AgICAgICAgICAgICAgICAgICAgI=\"}}"

static const struct xc_import_limits limits = {.iter = 4096,
                                               .max_offline = 2,
                                               .max_stanza = 200,
                                               .max_nodes = 2,
                                               .max_items = 3,
                                               .max_payload = 100,
                                               .max_private = 2,
                                               .max_private_bytes = 100};

static int parse(const char *doc, struct xc_store_req **out, struct xc_import_summary *sum,
                 char *err)
{
	struct xc_store_req *r = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL);
	int rc;

	assert_non_null(r);
	rc = xc_import_parse(doc, strlen(doc), &limits, r, sum, err, CM_ERR_MAX);
	if (out)
		*out = r;
	else
		xc_store_req_free(r);
	return rc;
}

static void refused(const char *doc, const char *why)
{
	char err[CM_ERR_MAX] = "";
	struct xc_import_summary sum;

	assert_int_equal(parse(doc, NULL, &sum, err), -EINVAL);
	if (!strstr(err, why))
		fail_msg("%s: said \"%s\", not \"%s\"", doc, err, why);
}

static void test_document(void **state)
{
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX];

	(void)state;
	assert_int_equal(
	    parse("{\"jid\":\"Alice@Example.ORG\"," KEYS
	          ",\"roster\":[{\"jid\":\"Bob@example.org\",\"name\":\"Bobby\",\"groups\":[\"A\","
	          "\"B\"],\"subscription\":\"both\"},{\"jid\":\"carol@example.org\",\"ask\":true,"
	          "\"pending_in\":true}],\"requests\":[\"dave@example.org\"],"
	          "\"blocklist\":[\"evil.example\",\"Spam@Evil.Example\",\"spam@evil.example\"]}",
	          &r, &sum, err),
	    0);
	assert_string_equal(r->user, "alice@example.org");
	assert_int_equal(r->creds[XC_SCRAM_SHA1].iter, 4096);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].salt_len, 4);
	assert_memory_equal(r->creds[XC_SCRAM_SHA1].salt, "salt", 4);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].stored_key[19], 1);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].server_key[0], 2);
	assert_int_equal(r->creds[XC_SCRAM_SHA256].iter, 0);
	assert_int_equal(sum.hashes, 1u << XC_SCRAM_SHA1);
	assert_int_equal(r->nitems, 3);
	assert_string_equal(r->items[0].contact, "bob@example.org");
	assert_string_equal(r->items[0].name, "Bobby");
	assert_int_equal(r->items[0].ngroups, 2);
	assert_int_equal(r->items[0].st.sub, XC_SUB_BOTH);
	assert_true(r->items[0].st.listed);
	assert_true(r->items[1].st.out && r->items[1].st.in && r->items[1].st.listed);
	assert_true(r->items[2].st.in);
	assert_false(r->items[2].st.listed);
	assert_int_equal(sum.roster, 2);
	assert_int_equal(sum.requests, 1);
	/* the same JID written two ways is one entry */
	assert_int_equal(r->njids, 2);
	assert_int_equal(sum.blocked, 2);
	xc_store_req_free(r);

	/* offline messages: parsed, checked, written again by our writer as the server keeps
	 * them (the client stream's namespace not declared again) */
	assert_int_equal(
	    parse("{\"jid\":\"a@b.example\",\"password\":\"p\",\"offline\":[{\"stamp_ms\":1000,"
	          "\"stanza\":\"<message xmlns=\\\"jabber:client\\\" to=\\\"A@b.example/x\\\" "
	          "type=\\\"chat\\\"><body>hi &amp; bye</body></message>\"}]}",
	          &r, &sum, err),
	    0);
	assert_int_equal(sum.offline, 1);
	assert_int_equal(r->nmsgs, 1);
	assert_int_equal(r->msgs[0].stamp_ms, 1000);
	assert_string_equal(
	    r->msgs[0].stanza,
	    "<message to='A@b.example/x' type='chat'><body>hi &amp; bye</body></message>");
	xc_store_req_free(r);

	/* a vCard, written again */
	assert_int_equal(parse("{\"jid\":\"a@b.example\",\"password\":\"p\",\"vcard\":\"<vCard "
	                       "xmlns=\\\"vcard-temp\\\"><FN>A</FN></vCard>\"}",
	                       &r, &sum, err),
	                 0);
	assert_true(sum.vcard);
	assert_string_equal(r->stanza, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>");
	xc_store_req_free(r);

	/* a password gives keys for every hash */
	assert_int_equal(parse("{\"jid\":\"a@b.example\",\"password\":\"pencil\"}", &r, &sum, err),
	                 0);
	assert_int_equal(sum.hashes, 3);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &r->creds[1], "pencil", 6), 0);
	xc_store_req_free(r);
}

static void test_document_refused(void **state)
{
	(void)state;
	refused("[]", "the body must be a JSON object");
	refused("{\"jid\":\"a@b.example\"", "the body must be a JSON object");
	refused("{\"jid\":\"a@b.example\",\"password\":\"x\",\"extra\":1}",
	        "unknown member \"extra\"");
	refused("{\"password\":\"x\"}", "\"jid\" (a string) is required");
	refused("{\"jid\":\"b.example\",\"password\":\"x\"}", "must be a bare JID (user@host)");
	refused("{\"jid\":\"a@b.example\"}", "one of \"password\" and \"scram\"");
	refused("{\"jid\":\"a@b.example\",\"password\":\"\"}", "1 to 1023 bytes");
	refused("{\"jid\":\"a@b.example\",\"password\":\"\\u0007\"}", "SASLprep prohibits");
	refused("{\"jid\":\"a@b.example\",\"scram\":{}}", "SCRAM-SHA-1 and/or SCRAM-SHA-256");
	refused("{\"jid\":\"a@b.example\",\"scram\":{\"SCRAM-SHA-1\":{\"iterations\":1}}}",
	        "\"salt\" (base64) is required");
	refused("{\"jid\":\"a@b.example\",\"scram\":{\"SCRAM-SHA-256\":{\"iterations\":1,"
	        "\"salt\":\"c2FsdA==\",\"stored_key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
	        "\"server_key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQE=\"}}}",
	        "\"stored_key\" must be 32 bytes");
	refused("{\"jid\":\"a@b.example\",\"scram\":{\"SCRAM-SHA-1\":{\"iterations\":1,"
	        "\"salt\":\"!!\",\"stored_key\":\"\",\"server_key\":\"\"}}}",
	        "\"salt\" must be 1 to 64 bytes");
	refused("{\"jid\":\"a@b.example\",\"scram\":{\"SCRAM-SHA-1\":{\"iterations\":1.5}}}",
	        "\"iterations\" must be an integer");
	refused("{\"jid\":\"a@b.example\",\"scram\":{\"SCRAM-SHA-1\":{\"rounds\":1}}}",
	        "unknown member \"rounds\"");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"roster\":{}}", "must be arrays");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"roster\":[1]}",
	        "roster[0]: must be an object");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"roster\":[{\"jid\":\"c@d/e\"}]}",
	        "roster[0]: \"c@d/e\" must be a bare JID");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"roster\":[{\"jid\":\"c@d\",\"ask\":1}]}",
	        "\"ask\" must be true or false");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"roster\":[{\"jid\":\"c@d\",\"subscription\":\"to\",\"ask\":true}]}",
	        "\"ask\" with subscription to");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"roster\":[{\"jid\":\"c@d\",\"subscription\":\"both\",\"approved\":true}]}",
	        "\"approved\" with subscription both");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"roster\":[{\"jid\":\"c@d\",\"name\":5}]}",
	        "\"name\" must be a string");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"roster\":[{\"jid\":\"c@d\",\"groups\":[\"\"]}]}",
	        "each group must be 1 to 1024 bytes");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"roster\":[{\"jid\":\"c@d\"},{\"jid\":\"C@D\"}]}",
	        "roster[1]: c@d is named twice");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"requests\":[\"c@d\",\"c@d\"]}",
	        "requests[1]: c@d is named twice");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"requests\":[7]}",
	        "requests[0]: must be a string");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"blocklist\":\"x\"}", "\"blocklist\" must be");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"blocklist\":[\"a@@b\"]}", "blocklist[0]:");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"offline\":{}}",
	        "\"offline\" must be an array");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"offline\":[1,2,3]}",
	        "3 offline messages: offline.max_per_user keeps 2");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"offline\":[{\"stanza\":\"<message/>\"}]}",
	        "\"stamp_ms\" (when it arrived, Unix ms, before the year 10000) is");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<iq/>\"}]}",
	        "is not one <message/>");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<message to='a@b.example'>\"}]}",
	        "is not one <message/>");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<message/><message/>\"}]}",
	        "is not one <message/>");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<message to='c@b.example'/>\"}]}",
	        "offline[0]: the message must be addressed to a@b.example");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<message to='a@b.example' "
	        "type='error'/>\"}]}",
	        "and not be an error");
	refused("{\"jid\":\"a@b.example\"," KEYS
	        ",\"offline\":[{\"stamp_ms\":1,\"stanza\":\"<message to='a@b.example'><body>"
	        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
	        "234567890123456789012345678901234567890123456789012345678901234567890123456789"
	        "</body></message>\"}]}",
	        "\"stanza\" must be 1 to 200 bytes");
	/* PEP */
#define NODE(x) "{\"jid\":\"a@b.example\"," KEYS ",\"pep\":[" x "]}"
#define ITEM    "{\"id\":\"1\",\"payload\":\"<x xmlns='y'/>\"}"
	refused(NODE("{\"node\":\"n\",\"items\":[" ITEM "]},{\"node\":\"n\",\"items\":[" ITEM "]}"),
	        "pep[1]: node n is named twice");
	refused(NODE("{},{},{}"), "\"pep\" must be an array of 2 nodes at most");
	refused(NODE("{\"node\":\"n\",\"access\":\"authorize\",\"items\":[" ITEM "]}"),
	        "\"access\" must be presence, open, whitelist or roster");
	refused(NODE("{\"node\":\"n\",\"groups\":[\"g\"],\"items\":[" ITEM "]}"),
	        "\"groups\" go with access \"roster\" only");
	refused(NODE("{\"node\":\"n\",\"access\":\"roster\",\"items\":[" ITEM "]}"),
	        "access \"roster\" takes \"groups\"");
	refused(NODE("{\"node\":\"n\",\"items\":[]}"), "\"items\" must be an array of 1 to 1");
	refused(NODE("{\"node\":\"n\",\"max_items\":\"max\",\"items\":[" ITEM "," ITEM "]}"),
	        "pep[0].items[1]: item 1 is named twice");
	refused(NODE("{\"node\":\"n\",\"max_items\":4,\"items\":[" ITEM "]}"),
	        "\"max_items\" must be \"max\" or 1 to 3 (pep.max_items)");
	refused(NODE("{\"node\":\"n\",\"items\":[{\"id\":\"1\",\"payload\":\"<a><b></a>\"}]}"),
	        "\"payload\" is not one XML element");
	refused(NODE("{\"node\":\"n\",\"items\":[{\"id\":\"1\",\"payload\":\"<a>"
	             "0123456789012345678901234567890123456789012345678901234567890123456789"
	             "0123456789012345678901234567890123456789</a>\"}]}"),
	        "the payload is over 100 bytes (pep.max_payload)");
	refused(NODE("{\"node\":\"\",\"items\":[" ITEM "]}"),
	        "\"node\" must be 1 to 1023 bytes of text");
#undef ITEM
#undef NODE
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"vcard\":7}",
	        "\"vcard\" must be a vCard in XML");
	refused("{\"jid\":\"a@b.example\"," KEYS ",\"vcard\":\"<vCard xmlns='vcard-temp'><DESC>"
	        "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	        "01234567890123456789</DESC></vCard>\"}",
	        "\"vcard\" is over 100 bytes (pep.max_payload) as written");
}

/* --- Prosody's rows ---------------------------------------------------------------------- */

static const struct xc_prosody_row alice[] = {
    {"accounts", "iteration_count", "number", "10000"},
    {"accounts", "salt", "string", "030ff17f-6310-41f3-a658-c1cd310ff57a"},
    {"accounts", "server_key", "string", "a9f819e3ac31dc7bdd2a60bb011f175288125f84"},
    {"accounts", "stored_key", "string", "17cced3855de35912cfbd3292c2c4c77d4ad9d14"},
    {"blocklist", "", "json", "{\"__hash\":[false,{\"created\":1}]}"},
    {"blocklist", "spam@evil.example", "number", "1796534207"},
    {"pep", "urn:xmpp:avatar:data", "json", "{}"},
    {"pep", "urn:xmpp:bookmarks:1", "json",
     "{\"config\":{\"access_model\":\"whitelist\",\"max_items\":\"max\"}}"},
    {"pep", "urn:xmpp:vcard4", "json", "{\"config\":{\"_defaults_only\":true}}"},
    {"pep", "x-secret", "json", "{\"config\":{\"access_model\":\"authorize\"}}"},
    {"roster", "", "json",
     "{\"__hash\":[false,{\"version\":6,\"pending\":{\"carol@example.org\":{},"
     "\"dave@example.org\":true,\"erin@example.org\":{}}}]}"},
    {"roster", "bob@example.org", "json",
     "{\"name\":\"Bobby\",\"subscription\":\"both\",\"groups\":{\"Work\":true}}"},
    {"roster", "carol@example.org", "json",
     "{\"subscription\":\"none\",\"ask\":\"subscribe\",\"groups\":{}}"},
    {"roster", "erin@example.org", "json", "{\"subscription\":\"from\",\"groups\":{}}"},
    {"roster", "frank@example.org", "json", "{\"subscription\":\"sideways\"}"},
    {"roster", "gina@example.org", "json", "not json"},
    {"roster", "hal@example.org", "json", "{\"subscription\":\"to\",\"ask\":\"subscribe\"}"},
};

static const struct xc_prosody_item alice_items[] = {
    {"offline", "1", 1796533960, "xml",
     "<message xmlns='jabber:client' to='alice@example.org' from='bob@example.org/x' "
     "type='chat'><body>are you there?</body></message>"},
    {"offline", "2", 1796533961, "json", "{}"},
    {"pep_urn:xmpp:bookmarks:1", "room1@muc.example", 5, "xml",
     "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>"},
    {"pep_urn:xmpp:bookmarks:1", "room2@muc.example", 6, "xml",
     "<conference xmlns='urn:xmpp:bookmarks:1'/>"},
    {"pep_urn:xmpp:vcard4", "old", 7, "xml", "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>"},
    {"pep_urn:xmpp:vcard4", "current", 8, "xml",
     "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice</text></fn></vcard>"},
    {"pep_x-secret", "1", 9, "xml", "<secret xmlns='x'/>"},
};

static bool has_note(const struct xc_import_notes *n, const char *text)
{
	for (size_t i = 0; i < n->n; i++)
		if (strstr(n->v[i], text))
			return true;
	return false;
}

static json_t *find(json_t *roster, const char *jid)
{
	for (size_t i = 0; i < json_array_size(roster); i++)
		if (!strcmp(json_string_value(json_object_get(json_array_get(roster, i), "jid")),
		            jid))
			return json_array_get(roster, i);
	return NULL;
}

/* "private": each element written again by our writer, one per namespace, within the limits. */
static void test_document_private(void **state)
{
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX];

	(void)state;
	assert_int_equal(
	    parse("{\"jid\":\"alice@example.org\"," KEYS
	          ",\"private\":[\"<p:prefs xmlns:p='urn:x:prefs' p:mode=\\\"dark\\\"/>\","
	          "\"<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>\"]}",
	          &r, &sum, err),
	    0);
	assert_int_equal(sum.private_ns, 2);
	assert_int_equal(r->npriv, 2);
	assert_string_equal(r->priv[0].ns, "urn:x:prefs");
	assert_string_equal(r->priv[0].xml, "<p:prefs xmlns:p='urn:x:prefs' p:mode='dark'/>");
	assert_string_equal(r->priv[1].ns, "storage:bookmarks");
	assert_string_equal(r->priv[1].xml,
	                    "<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>");
	xc_store_req_free(r);
	/* an element with nothing in it is nothing to keep (as a client's set of it removes) */
	assert_int_equal(parse("{\"jid\":\"alice@example.org\"," KEYS
	                       ",\"private\":[\"<storage xmlns='storage:bookmarks'/>\","
	                       "\"<p xmlns='u' a='1'/>\"]}",
	                       &r, &sum, err),
	                 0);
	assert_int_equal(sum.private_ns, 1);
	assert_string_equal(r->priv[0].ns, "u");
	xc_store_req_free(r);
	refused("{\"jid\":\"a@example.org\"," KEYS ",\"private\":{}}",
	        "\"private\" must be an array");
	refused("{\"jid\":\"a@example.org\"," KEYS ",\"private\":[1]}",
	        "private[0] must be an element");
	refused("{\"jid\":\"a@example.org\"," KEYS ",\"private\":[\"<x/>\"]}",
	        "private[0] is not one element in a namespace of its own");
	refused("{\"jid\":\"a@example.org\"," KEYS
	        ",\"private\":[\"<x xmlns='jabber:iq:private'/>\"]}",
	        "namespace of its own");
	refused("{\"jid\":\"a@example.org\"," KEYS
	        ",\"private\":[\"<x xmlns='u'/><y xmlns='v'/>\"]}",
	        "private[0] is not one element");
	refused("{\"jid\":\"a@example.org\"," KEYS
	        ",\"private\":[\"<x xmlns='u'>1</x>\",\"<y xmlns='u'>2</y>\"]}",
	        "private[1]: a second element in the namespace u");
	refused("{\"jid\":\"a@example.org\"," KEYS
	        ",\"private\":[\"<x xmlns='u'/>\",\"<y xmlns='v'/>\",\"<z xmlns='w'/>\"]}",
	        "has 3 elements; an account keeps 2 at most (private_storage.max_namespaces)");
	refused("{\"jid\":\"a@example.org\"," KEYS ",\"private\":[\"<x "
	        "xmlns='u'>"
	        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
	        "234567890123456789</x>\"]}",
	        "private[0] is over 100 bytes (private_storage.max_bytes) as written");
}

static void test_prosody_rows(void **state)
{
	struct xc_import_notes notes = {0};
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX], *doc;
	json_t *d, *roster, *it;

	(void)state;
	assert_int_equal(xc_prosody_doc("alice@example.org", alice, sizeof(alice) / sizeof(*alice),
	                                alice_items, sizeof(alice_items) / sizeof(*alice_items),
	                                &doc, &notes, err, sizeof(err)),
	                 0);
	d = json_loads(doc, 0, NULL);
	assert_non_null(d);
	roster = json_object_get(d, "roster");
	assert_int_equal(json_array_size(roster), 4); /* bob, carol, erin, hal */
	it = find(roster, "bob@example.org");
	assert_string_equal(json_string_value(json_object_get(it, "name")), "Bobby");
	assert_string_equal(json_string_value(json_array_get(json_object_get(it, "groups"), 0)),
	                    "Work");
	it = find(roster, "carol@example.org");
	assert_true(json_is_true(json_object_get(it, "ask")));
	assert_true(json_is_true(json_object_get(it, "pending_in")));
	/* erin sees alice already: her request is dropped, with a note */
	assert_null(json_object_get(find(roster, "erin@example.org"), "pending_in"));
	assert_true(has_note(&notes, "contact erin@example.org: a pending request was dropped"));
	/* hal is seen already: the ask goes */
	assert_true(json_is_false(json_object_get(find(roster, "hal@example.org"), "ask")));
	assert_true(has_note(&notes, "contact hal@example.org: the pending subscription request"));
	assert_true(has_note(&notes, "contact frank@example.org left behind: subscription"));
	assert_true(has_note(&notes, "roster entry \"gina@example.org\" left behind"));
	assert_true(has_note(&notes, "PEP node urn:xmpp:avatar:data has no items: not carried"));
	assert_true(has_note(&notes, "PEP node x-secret left behind: access model \"authorize\""));
	/* PEP: bookmarks as configured, both items; vCard4 with Prosody's defaults keeps one, the
	 * newest */
	it = json_object_get(d, "pep");
	assert_int_equal(json_array_size(it), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(it, 0), "access")),
	                    "whitelist");
	assert_string_equal(json_string_value(json_object_get(json_array_get(it, 0), "max_items")),
	                    "max");
	assert_int_equal(json_array_size(json_object_get(json_array_get(it, 0), "items")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(it, 1), "access")),
	                    "presence");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(it, 1), "max_items")),
	                 1);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(json_array_get(it, 1), "items"), 0), "id")),
	    "current");
	assert_true(has_note(&notes, "PEP node urn:xmpp:vcard4: the 1 oldest item(s) left behind"));
	/* dave only asked (0.11's pending: true) */
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "requests"), 0)),
	                    "dave@example.org");
	assert_int_equal(json_array_size(json_object_get(d, "blocklist")), 1);
	/* the offline message, its stamp in ms; the other noted */
	it = json_array_get(json_object_get(d, "offline"), 0);
	assert_int_equal(json_integer_value(json_object_get(it, "stamp_ms")), 1796533960000);
	assert_int_equal(json_array_size(json_object_get(d, "offline")), 1);
	assert_true(has_note(&notes, "an item of \"offline\" (type json) left behind"));
	/* and the server takes the document: keys as Prosody had them */
	assert_int_equal(parse(doc, &r, &sum, err), 0);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].iter, 10000);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].salt_len, 36);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].stored_key[0], 0x17);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].server_key[19], 0x84);
	assert_int_equal(sum.roster, 4);
	assert_int_equal(sum.requests, 1);
	assert_int_equal(sum.offline, 1);
	assert_int_equal(sum.pep_nodes, 2);
	assert_int_equal(sum.pep_items, 3);
	assert_int_equal(r->pep->nitems, 3);
	assert_string_equal(r->pep->items[0].node, "urn:xmpp:bookmarks:1");
	assert_int_equal(r->pep->items[0].access, XC_PEP_WHITELIST);
	assert_int_equal(r->pep->items[0].max_items, XC_PEP_MAX_ITEMS);
	assert_string_equal(r->pep->items[2].payload,
	                    "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice</text>"
	                    "</fn></vcard>");
	xc_store_req_free(r);
	json_decref(d);
	free(doc);
	xc_import_notes_free(&notes);
}

static void test_prosody_credentials(void **state)
{
	struct xc_import_notes notes = {0};
	char err[CM_ERR_MAX], *doc;
	struct xc_prosody_row rows[4] = {
	    {"accounts", "password", "string", "plain-kept"},
	};
	json_t *d;

	(void)state;
	/* plaintext storage: the password itself */
	assert_int_equal(xc_prosody_doc("a@b", rows, 1, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 0);
	d = json_loads(doc, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(d, "password")), "plain-kept");
	assert_null(json_object_get(d, "scram"));
	json_decref(d);
	free(doc);
	/* incomplete or damaged keys */
	rows[0] = (struct xc_prosody_row){"accounts", "salt", "string", "s"};
	assert_int_equal(xc_prosody_doc("a@b", rows, 1, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "neither a password nor the four SCRAM-SHA-1 values"));
	assert_null(doc);
	rows[1] = (struct xc_prosody_row){"accounts", "iteration_count", "number", "many"};
	rows[2] = (struct xc_prosody_row){"accounts", "stored_key", "string", "00"};
	rows[3] = (struct xc_prosody_row){"accounts", "server_key", "string", "00"};
	assert_int_equal(xc_prosody_doc("a@b", rows, 4, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "iteration_count \"many\" is not a count"));
	rows[1].value = "4096";
	assert_int_equal(xc_prosody_doc("a@b", rows, 4, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "40 hex digits"));
	rows[2].value = "17cced3855de35912cfbd3292c2c4c77d4ad9d1g";
	rows[3].value = "17cced3855de35912cfbd3292c2c4c77d4ad9d14";
	assert_int_equal(xc_prosody_doc("a@b", rows, 4, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 -EINVAL);
	rows[2].value = rows[3].value;
	assert_int_equal(xc_prosody_doc("a@b", rows, 4, NULL, 0, &doc, &notes, err, sizeof(err)),
	                 0);
	free(doc);
	assert_int_equal(notes.n, 0);
	xc_import_notes_free(&notes);
}

/* --- vcard-temp from what Prosody keeps ---------------------------------------------------- */

static void test_prosody_vcards(void **state)
{
	char *xml = NULL;
	json_t *t;

	(void)state;
	/* mod_vcard's stored stanza, attributes and nesting kept */
	t = json_loads("[{\"name\":\"FN\",\"attr\":{\"xmlns\":\"vcard-temp\"},\"__array\":[\"Bob "
	               "&amp; co\"]},{\"name\":\"PHOTO\",\"attr\":{\"xmlns\":\"vcard-temp\"},"
	               "\"__array\":[{\"name\":\"TYPE\",\"attr\":{},\"__array\":[\"image/png\"]},"
	               "{\"name\":\"BINVAL\",\"attr\":{\"xmlns\":\"vcard-temp\"},\"__array\":"
	               "[\"iVBO\"]}]},{\"name\":\"X-X\",\"attr\":{\"xmlns\":\"x\",\"k\":\"v\"}}]",
	               0, NULL);
	assert_int_equal(xc_prosody__vcard_from_table(t, &xml), 0);
	assert_string_equal(xml, "<vCard xmlns='vcard-temp'><FN>Bob &amp;amp; co</FN><PHOTO><TYPE>"
	                         "image/png</TYPE><BINVAL>iVBO</BINVAL></PHOTO><X-X xmlns='x' "
	                         "k='v'/></vCard>");
	free(xml);
	json_decref(t);
	/* what is not a stanza: a name XML cannot take, a number, too deep */
	t = json_loads("[{\"name\":\"a b\",\"attr\":{}}]", 0, NULL);
	assert_int_equal(xc_prosody__vcard_from_table(t, &xml), -EINVAL);
	json_decref(t);
	t = json_loads("[7]", 0, NULL);
	assert_int_equal(xc_prosody__vcard_from_table(t, &xml), -EINVAL);
	json_decref(t);
	{
		char deep[2048] = "[";

		for (int i = 0; i < 20; i++)
			strcat(deep, "{\"name\":\"a\",\"__array\":[");
		strcat(deep, "\"x\"");
		for (int i = 0; i < 20; i++)
			strcat(deep, "]}");
		strcat(deep, "]");
		t = json_loads(deep, 0, NULL);
		assert_non_null(t);
		assert_int_equal(xc_prosody__vcard_from_table(t, &xml), -EINVAL);
		json_decref(t);
	}
	assert_null(xml);

	/* mod_vcard_legacy's vCard4, and the avatar as PHOTO */
	assert_int_equal(
	    xc_prosody__vcard_from_vcard4(
	        "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice</text></fn><n>"
	        "<surname>Liddell</surname><given>Alice</given><additional/></n><nickname><text>al"
	        "</text></nickname><email><text>a@example.org</text></email><tel><uri>tel:+1-555"
	        "</uri></tel><impp><uri>xmpp:alice@example.org</uri></impp><adr><locality>Oxford"
	        "</locality><country>UK</country></adr><org><text>Wonderland</text></org><gender>"
	        "<sex>F</sex></gender></vcard>",
	        "iVBO", "image/png", &xml),
	    0);
	assert_string_equal(xml,
	                    "<vCard xmlns='vcard-temp'><FN>Alice</FN><N><FAMILY>Liddell</FAMILY>"
	                    "<GIVEN>Alice</GIVEN></N><NICKNAME>al</NICKNAME><EMAIL><INTERNET/>"
	                    "<USERID>a@example.org</USERID></EMAIL><TEL><NUMBER>+1-555</NUMBER>"
	                    "</TEL><JABBERID>alice@example.org</JABBERID><ADR><LOCALITY>Oxford"
	                    "</LOCALITY><CTRY>UK</CTRY></ADR><ORG><ORGNAME>Wonderland</ORGNAME>"
	                    "</ORG><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBO</BINVAL></PHOTO>"
	                    "</vCard>");
	free(xml);
	/* an avatar alone; a payload that is not vCard4 */
	assert_int_equal(xc_prosody__vcard_from_vcard4(NULL, "iVBO", NULL, &xml), 0);
	assert_string_equal(xml, "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"
	                         "iVBO</BINVAL></PHOTO></vCard>");
	free(xml);
	assert_int_equal(
	    xc_prosody__vcard_from_vcard4("<vCard xmlns='vcard-temp'/>", NULL, NULL, &xml),
	    -EINVAL);
	assert_int_equal(xc_prosody__vcard_from_vcard4("<vcard", NULL, NULL, &xml), -EINVAL);
	assert_null(xml);
}

/* --- Prosody's private XML (mod_private) -------------------------------------------------- */

/* Rows as Prosody 0.12's mod_private and prosody-migrator write them (the first two taken from
 * a real one), in the order the database gives them (by key), and what no server wrote. */
static const struct xc_prosody_row private_rows[] = {
    {"accounts", "password", "string", "pw"},
    {"private", "attr:urn:attr", "json",
     "{\"name\":\"attr\",\"attr\":{\"xmlns\":\"urn:attr\",\"urn:ns\\u0001x\":\"1\"}}"},
    {"private", "bad:urn:bad", "json", "[1,2]"},
    {"private", "notes:storage:rosternotes", "json",
     "{\"name\":\"notes\",\"attr\":{\"xmlns\":\"storage:rosternotes\"},\"__array\":[{\"name\":"
     "\"note\",\"attr\":{\"xmlns\":\"storage:rosternotes\",\"cdate\":\"2024\",\"jid\":"
     "\"bob@example.org\"},\"__array\":[\"met at work & <x>\"]}]}"},
    {"private", "prefs:urn:xml", "xml", "<prefs xmlns='urn:xml'><a/></prefs>"},
    {"private", "query:jabber:iq:private", "json",
     "{\"name\":\"query\",\"attr\":{\"xmlns\":\"jabber:iq:private\"},\"__array\":[\"x\"]}"},
    {"private", "storage:storage:bookmarks", "json",
     "{\"name\":\"storage\",\"attr\":{\"xmlns\":\"storage:bookmarks\"},\"__array\":[{\"name\":"
     "\"conference\",\"attr\":{\"name\":\"R\",\"xmlns\":\"storage:bookmarks\",\"autojoin\":"
     "\"true\",\"jid\":\"r@muc\"},\"__array\":[{\"name\":\"nick\",\"attr\":{\"xmlns\":"
     "\"storage:bookmarks\"},\"__array\":[\"al\"]}]},{\"name\":\"y\",\"attr\":{\"a\":\"1\","
     "\"xmlns\":\"urn:other\"},\"__array\":[\"t\",{\"name\":\"z\",\"attr\":{\"xmlns\":"
     "\"storage:bookmarks\"}},\"u\"]}]}"},
    {"private", "text:urn:text", "string", "hello"},
    {"private", "x:storage:bookmarks", "json",
     "{\"name\":\"x\",\"attr\":{\"xmlns\":\"storage:bookmarks\"},\"__array\":[\"y\"]}"},
};

/* Each element of mod_private's store into "private", by namespace; a note, with a count, for
 * each reason some could not come; and the server takes what came. */
static void test_prosody_private(void **state)
{
	static const struct xc_import_limits lim = {
	    .iter = 4096, .max_private = 8, .max_private_bytes = 1024};
	struct xc_import_notes notes = {0};
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX], *doc;
	json_t *d, *priv;

	(void)state;
	assert_int_equal(xc_prosody_doc("amy@a.example", private_rows,
	                                sizeof(private_rows) / sizeof(*private_rows), NULL, 0, &doc,
	                                &notes, err, sizeof(err)),
	                 0);
	d = json_loads(doc, 0, NULL);
	assert_non_null(d);
	priv = json_object_get(d, "private");
	assert_int_equal(json_array_size(priv), 3);
	assert_string_equal(json_string_value(json_array_get(priv, 0)),
	                    "<storage xmlns='storage:bookmarks'><conference name='R' "
	                    "autojoin='true' jid='r@muc'><nick>al</nick></conference><y "
	                    "xmlns='urn:other' a='1'>t<z xmlns='storage:bookmarks'/>u</y>"
	                    "</storage>");
	assert_string_equal(json_string_value(json_array_get(priv, 1)),
	                    "<notes xmlns='storage:rosternotes'><note cdate='2024' "
	                    "jid='bob@example.org'>met at work &amp; &lt;x&gt;</note></notes>");
	assert_string_equal(json_string_value(json_array_get(priv, 2)),
	                    "<prefs xmlns='urn:xml'><a/></prefs>");
	assert_true(has_note(&notes, "amy@a.example: private XML storage (XEP-0049): 1 element(s) "
	                             "left behind: in no namespace, in jabber:iq:private"));
	assert_true(has_note(&notes, "1 element(s) left behind: in a namespace an element before"));
	/* a JSON that is no element, a string, a namespaced attribute */
	assert_true(has_note(&notes, "3 element(s) left behind: not one element our writer"));
	assert_false(has_note(&notes, "store \"private\""));
	assert_int_equal(notes.n, 3);
	r = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL);
	assert_non_null(r);
	if (xc_import_parse(doc, strlen(doc), &lim, r, &sum, err, sizeof(err)) != 0)
		fail_msg("the route refuses %s: %s", doc, err);
	assert_int_equal(sum.private_ns, 3);
	xc_store_req_free(r);
	json_decref(d);
	free(doc);
	xc_import_notes_free(&notes);
}

/* --- the database ------------------------------------------------------------------------ */

static void sql(sqlite3 *db, const char *s)
{
	char *e = NULL;

	if (sqlite3_exec(db, s, NULL, NULL, &e) != SQLITE_OK)
		fail_msg("%s: %s", s, e);
}

static void test_prosody_database(void **state)
{
	char dir[] = "/tmp/test_import.XXXXXX", path[64], err[CM_ERR_MAX], cmd[96], *doc;
	struct xc_import_notes notes = {0};
	struct xc_prosody *p;
	char **list;
	size_t n;
	sqlite3 *db;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/prosody.sqlite", dir);
	assert_int_equal(xc_prosody_open(&p, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql(db, "CREATE TABLE other (x)");
	assert_int_equal(xc_prosody_open(&p, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not Prosody's SQL store"));
	sql(db,
	    "CREATE TABLE prosody (host TEXT, user TEXT, store TEXT, key TEXT, type TEXT, "
	    "value TEXT);"
	    "CREATE TABLE prosodyarchive (sort_id INTEGER PRIMARY KEY, host TEXT, user TEXT, "
	    "store TEXT, key TEXT, \"when\" INTEGER, \"with\" TEXT, type TEXT, value TEXT);"
	    "INSERT INTO prosody VALUES ('b.example','zed','accounts','password','string','z'),"
	    " ('a.example','amy','accounts','password','string','a'),"
	    " ('a.example','amy','roster','bo@a.example','json','{\"subscription\":\"to\"}'),"
	    " ('a.example','amy','vcard','','json','{}'),"
	    " ('a.example','','accounts','x','string','host data'),"
	    " ('a.example','ann','accounts','password','string','n');"
	    "INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value)"
	    " VALUES ('a.example','amy','archive','1',1,'bo@a.example','xml','<message/>'),"
	    " ('a.example','amy','archive','2',2,'bo@a.example','xml','<message/>'),"
	    " ('a.example','amy','offline','3',7,'','xml','<message to=\"amy@a.example\"/>');");
	sqlite3_close(db);
	assert_int_equal(xc_prosody_open(&p, path, err, sizeof(err)), 0);
	assert_int_equal(xc_prosody_hosts(p, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "a.example");
	assert_string_equal(list[1], "b.example");
	xc_prosody_list_free(list, n);
	assert_int_equal(xc_prosody_users(p, "a.example", &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "amy");
	assert_string_equal(list[1], "ann");
	xc_prosody_list_free(list, n);
	assert_int_equal(xc_prosody_account(p, "a.example", "amy", &doc, &notes, err, sizeof(err)),
	                 0);
	assert_non_null(strstr(doc, "\"jid\":\"amy@a.example\""));
	assert_non_null(strstr(doc, "bo@a.example"));
	assert_true(has_note(&notes, "amy@a.example: the vCard left behind"));
	/* mod_mam's archive goes by the archive route (test_prosody_archive.c), not noted here */
	assert_false(has_note(&notes, "archive \"archive\""));
	assert_false(has_note(&notes, "\"offline\" left behind"));
	assert_non_null(strstr(doc, "\"offline\":[{\"stamp_ms\":7000,"));
	free(doc);
	xc_import_notes_free(&notes);
	xc_prosody_close(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_document),
	    cmocka_unit_test(test_document_refused),
	    cmocka_unit_test(test_document_private),
	    cmocka_unit_test(test_prosody_rows),
	    cmocka_unit_test(test_prosody_credentials),
	    cmocka_unit_test(test_prosody_database),
	    cmocka_unit_test(test_prosody_vcards),
	    cmocka_unit_test(test_prosody_private),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
