/* test_xep227.c - XEP-0227 files read into import documents (xep227.h): what ejabberd's
 * export_piefxis and Prosody's xep0227 store write, checked against what the import route
 * takes; the scan's refusals; files, includes and directories. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/store.h"
#include "xmpp-core/src/xep227.h"

#define HEAD "<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0'>"
#define TAIL "</server-data>"

/* SCRAM-SHA-1 of "pencil" (RFC 5802's example): salt QSXCR+Q6sek8bf92, 4096 iterations */
#define SALT_B64   "QSXCR+Q6sek8bf92"
#define STORED_B64 "6dlGYMOdZcOPutkcNY8U2g7vK9Y="
#define SERVER_B64 "D+CSWLOshSulAsxiupA+qs2/fTE="
/* the same as ejabberd writes them: base64 of the base64 */
#define SALT_B64B64   "UVNYQ1IrUTZzZWs4YmY5Mg=="
#define STORED_B64B64 "NmRsR1lNT2RaY09QdXRrY05ZOFUyZzd2SzlZPQ=="
#define SERVER_B64B64 "RCtDU1dMT3NoU3VsQXN4aXVwQStxczIvZlRFPQ=="

#define SCRAM1(salt, stored, server)                                                               \
	"<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"                 \
	"<iter-count>4096</iter-count><salt>" salt "</salt><server-key>" server                    \
	"</server-key><stored-key>" stored "</stored-key></scram-credentials>"

/* What the reader handed on. */
struct got {
	size_t n;
	char *jid[8];
	json_t *doc[8];
	char *err[8];
	char *notes[8]; /* joined, "|" between */
};

static int collect(void *arg, const struct xc_xep227_account *a)
{
	struct got *g = arg;
	size_t i = g->n++;
	size_t len = 1;

	assert_true(i < 8);
	g->jid[i] = strdup(a->jid);
	g->doc[i] = a->doc ? json_loads(a->doc, 0, NULL) : NULL;
	if (a->doc)
		assert_non_null(g->doc[i]);
	g->err[i] = a->doc ? NULL : strdup(a->err);
	for (size_t k = 0; k < a->notes->n; k++)
		len += strlen(a->notes->v[k]) + 1;
	g->notes[i] = calloc(1, len);
	for (size_t k = 0; k < a->notes->n; k++) {
		strcat(g->notes[i], a->notes->v[k]);
		strcat(g->notes[i], "|");
	}
	return 0;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->jid[i]);
		json_decref(g->doc[i]);
		free(g->err[i]);
		free(g->notes[i]);
	}
	memset(g, 0, sizeof(*g));
}

static int read_text(const char *text, const char *host, struct got *g, char *err)
{
	memset(g, 0, sizeof(*g));
	return xc_xep227_read_buf(text, strlen(text), "test.xml", host, collect, g, err,
	                          CM_ERR_MAX);
}

/* The document as the import route checks it, with room for what these tests hold. */
static void route_takes(json_t *doc)
{
	static const struct xc_import_limits lim = {.iter = 4096,
	                                            .max_offline = 10,
	                                            .max_stanza = 4096,
	                                            .max_nodes = 10,
	                                            .max_items = 10,
	                                            .max_payload = 4096,
	                                            .max_private = 10,
	                                            .max_private_bytes = 4096};
	struct xc_store_req *r = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL);
	struct xc_import_summary sum;
	char err[CM_ERR_MAX] = "", *text = json_dumps(doc, 0);

	assert_non_null(r);
	assert_non_null(text);
	if (xc_import_parse(text, strlen(text), &lim, r, &sum, err, sizeof(err)) != 0)
		fail_msg("the route refuses %s: %s", text, err);
	free(text);
	xc_store_req_free(r);
}

static const char *str(json_t *doc, const char *path)
{
	return json_string_value(json_object_get(doc, path));
}

/* ejabberd's export: keys twice in base64, the server's delay on the offline message, private
 * XML carried. */
static void test_ejabberd_user(void **state)
{
	const char *text = HEAD "<host jid='example.test'><user name='alice'>" SCRAM1(
	    SALT_B64B64, STORED_B64B64,
	    SERVER_B64B64) "<offline-messages><message to='alice@example.test' "
	                   "from='bob@example.test' type='chat' id='1' "
	                   "xmlns='jabber:client'><delay from='example.test' "
	                   "stamp='2026-12-06T08:06:05.101884Z' xmlns='urn:xmpp:delay'>Offline "
	                   "storage</delay><body>kept &amp; away</body></message>"
	                   "</offline-messages><vCard xmlns='vcard-temp'><FN>Alice "
	                   "L</FN></vCard><query xmlns='jabber:iq:roster'><item "
	                   "subscription='both' name='Bobby' "
	                   "jid='bob@example.test'><group>Friends</group><group>Work</group>"
	                   "</item><item subscription='none' ask='subscribe' "
	                   "jid='carol@example.test'/></query><query "
	                   "xmlns='jabber:iq:private'><storage "
	                   "xmlns='storage:bookmarks'/></query></user></host>" TAIL;
	char err[CM_ERR_MAX] = "";
	struct got g;
	json_t *d, *k, *it, *off;

	(void)state;
	assert_int_equal(read_text(text, NULL, &g, err), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.jid[0], "alice@example.test");
	d = g.doc[0];
	assert_non_null(d);
	assert_string_equal(str(d, "jid"), "alice@example.test");
	k = json_object_get(json_object_get(d, "scram"), "SCRAM-SHA-1");
	assert_int_equal(json_integer_value(json_object_get(k, "iterations")), 4096);
	assert_string_equal(str(k, "salt"), SALT_B64);
	assert_string_equal(str(k, "stored_key"), STORED_B64);
	assert_string_equal(str(k, "server_key"), SERVER_B64);
	it = json_array_get(json_object_get(d, "roster"), 0);
	assert_string_equal(str(it, "jid"), "bob@example.test");
	assert_string_equal(str(it, "name"), "Bobby");
	assert_string_equal(str(it, "subscription"), "both");
	assert_int_equal(json_array_size(json_object_get(it, "groups")), 2);
	it = json_array_get(json_object_get(d, "roster"), 1);
	assert_true(json_is_true(json_object_get(it, "ask")));
	off = json_array_get(json_object_get(d, "offline"), 0);
	/* 2026-12-06T08:06:05.101Z */
	assert_int_equal(json_integer_value(json_object_get(off, "stamp_ms")), 1796544365101LL);
	assert_null(strstr(str(off, "stanza"), "delay"));
	assert_non_null(strstr(str(off, "stanza"), "<body>kept &amp; away</body>"));
	assert_null(strstr(str(off, "stanza"), "xmlns")); /* kept as a client stream holds it */
	assert_string_equal(str(d, "vcard"), "<vCard xmlns='vcard-temp'><FN>Alice L</FN></vCard>");
	it = json_object_get(d, "private");
	assert_int_equal(json_array_size(it), 1);
	assert_string_equal(json_string_value(json_array_get(it, 0)),
	                    "<storage xmlns='storage:bookmarks'/>");
	assert_null(strstr(g.notes[0], "private"));
	route_takes(d);
	got_free(&g);
}

/* Prosody's: keys once in base64 for two hashes, a request not answered, PEP with its form. */
static void test_prosody_user(void **state)
{
	const char *text = HEAD "<host jid='example.org'><user name='bob'>" SCRAM1(
	    SALT_B64, STORED_B64,
	    SERVER_B64) "<scram-credentials xmlns='urn:xmpp:pie:0#scram' "
	                "mechanism='SCRAM-SHA-256'><iter-count>4096</iter-count>"
	                "<salt>W22ZaJ0SNY7soEsUEjb6gQ==</salt>"
	                "<server-key>wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=</server-key>"
	                "<stored-key>WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=</stored-key>"
	                "</scram-credentials><query xmlns='jabber:iq:roster' version='3'>"
	                "<item jid='alice@example.org' subscription='to'/></query>"
	                "<presence xmlns='jabber:client' type='subscribe' "
	                "from='alice@example.org'/><presence xmlns='jabber:client' "
	                "type='subscribe' from='carol@example.org'/>"
	                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>"
	                "<configure node='urn:xmpp:avatar:metadata'><x xmlns='jabber:x:data' "
	                "type='submit'><field var='pubsub#access_model'><value>whitelist"
	                "</value></field><field var='pubsub#max_items'><value>2</value>"
	                "</field></x></configure><configure node='empty'/></pubsub>"
	                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items "
	                "node='urn:xmpp:avatar:metadata'><item id='a'><metadata "
	                "xmlns='urn:xmpp:avatar:metadata'/></item><item id='b'><metadata "
	                "xmlns='urn:xmpp:avatar:metadata'><info id='b' "
	                "bytes='1'/></metadata></item><item id='c'><metadata "
	                "xmlns='urn:xmpp:avatar:metadata'/></item></items></pubsub>"
	                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items "
	                "node='urn:xmpp:vcard4'><item id='current'><vcard "
	                "xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Bob "
	                "B</text></fn></vcard></item></items></pubsub>"
	                "<archive xmlns='urn:xmpp:pie:0#mam'><result/><result/></archive>"
	                "<unknown xmlns='urn:example'/></user></host>" TAIL;
	char err[CM_ERR_MAX] = "";
	struct got g;
	json_t *d, *node, *items;

	(void)state;
	assert_int_equal(read_text(text, NULL, &g, err), 0);
	assert_int_equal(g.n, 1);
	d = g.doc[0];
	assert_non_null(d);
	assert_string_equal(
	    str(json_object_get(json_object_get(d, "scram"), "SCRAM-SHA-256"), "salt"),
	    "W22ZaJ0SNY7soEsUEjb6gQ==");
	assert_string_equal(
	    str(json_object_get(json_object_get(d, "scram"), "SCRAM-SHA-1"), "salt"), SALT_B64);
	/* alice is listed: her request is on her item; carol is not: a request */
	assert_true(json_is_true(
	    json_object_get(json_array_get(json_object_get(d, "roster"), 0), "pending_in")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "requests"), 0)),
	                    "carol@example.org");
	node = json_array_get(json_object_get(d, "pep"), 0);
	assert_string_equal(str(node, "node"), "urn:xmpp:avatar:metadata");
	assert_string_equal(str(node, "access"), "whitelist");
	assert_int_equal(json_integer_value(json_object_get(node, "max_items")), 2);
	items = json_object_get(node, "items");
	assert_int_equal(json_array_size(items), 2); /* the newest two */
	assert_string_equal(str(json_array_get(items, 0), "id"), "b");
	assert_non_null(strstr(str(json_array_get(items, 0), "payload"), "<info id='b'"));
	assert_non_null(strstr(g.notes[0], "the 1 oldest item(s) left behind (it keeps 2)"));
	/* no vcard-temp in the file: one made from the vCard4, as mod_vcard_legacy shows it */
	assert_non_null(strstr(str(d, "vcard"), "<FN>Bob B</FN>"));
	assert_non_null(strstr(g.notes[0], "PEP node empty has no items"));
	/* the archive comes after the account (test_archive), not in its document or notes */
	assert_null(strstr(g.notes[0], "archive"));
	assert_null(json_object_get(d, "archive"));
	assert_non_null(strstr(g.notes[0], "<unknown xmlns='urn:example'/> left behind"));
	route_takes(d);
	got_free(&g);
}

/* A password kept in the clear; ejabberd's block list in a privacy list; other rules noted;
 * a message written in the format's namespace, without a stamp or a to. */
static void test_password_privacy_offline(void **state)
{
	const char *text =
	    HEAD "<host jid='example.org'><user name='carol' password='pencil'>"
	         "<query xmlns='jabber:iq:privacy'><list name='Blocked contacts'>"
	         "<item type='jid' value='spam@evil.example' action='deny' order='1'/>"
	         "<item type='jid' value='evil.example' action='deny' order='2'/>"
	         "<item type='jid' value='half@evil.example' action='deny' order='3'><message/>"
	         "</item></list><list name='work'><item action='allow' order='1'/></list>"
	         "</query><offline-messages><message from='x@example.org'><body>hi</body>"
	         "</message><presence from='x@example.org'/></offline-messages></user></host>" TAIL;
	char err[CM_ERR_MAX] = "";
	struct got g;
	json_t *d, *b, *off;

	(void)state;
	assert_int_equal(read_text(text, NULL, &g, err), 0);
	d = g.doc[0];
	assert_string_equal(str(d, "password"), "pencil");
	assert_null(json_object_get(d, "scram"));
	b = json_object_get(d, "blocklist");
	assert_int_equal(json_array_size(b), 2);
	assert_string_equal(json_string_value(json_array_get(b, 1)), "evil.example");
	assert_non_null(strstr(g.notes[0], "2 privacy rule(s) of 2 list(s) left behind"));
	off = json_array_get(json_object_get(d, "offline"), 0);
	assert_non_null(strstr(str(off, "stanza"), "to='carol@example.org'"));
	assert_null(strstr(str(off, "stanza"), "xmlns")); /* kept as a client stream holds it */
	assert_true(json_integer_value(json_object_get(off, "stamp_ms")) > 1700000000000LL);
	assert_non_null(strstr(g.notes[0], "an offline <presence/>"));
	route_takes(d);
	got_free(&g);
}

/* Private XML (XEP-0049) from one <query/> or more: each element with its namespace declared,
 * by namespace; what cannot be kept is counted in a note for each reason. */
static void test_private_xml(void **state)
{
	char deep[40 * 12 + 64], *p = deep, err[CM_ERR_MAX] = "", text[2048];
	struct got g;
	json_t *priv;

	(void)state;
	/* 34 levels: past the stream parser's 32, which the import parses each element with */
	p += sprintf(p, "<deep xmlns='urn:deep'>");
	for (int i = 0; i < 33; i++)
		p += sprintf(p, "<d>");
	for (int i = 0; i < 33; i++)
		p += sprintf(p, "</d>");
	sprintf(p, "</deep>");
	snprintf(text, sizeof(text),
	         HEAD "<host jid='example.org'><user name='pat' password='p'>"
	              "<query xmlns='jabber:iq:private'>\n  <storage xmlns='storage:bookmarks'>"
	              "<conference jid='r@muc.example' autojoin='true'><nick>pat</nick>"
	              "</conference></storage><notes xmlns='storage:rosternotes'><note "
	              "jid='bob@example.org'>met &amp; liked</note></notes>"
	              /* no namespace of its own (jabber:iq:private's), a stream's, one taken */
	              "<x/><m xmlns='jabber:client'/><other xmlns='storage:bookmarks'/></query>"
	              "<query xmlns='jabber:iq:private'><p:prefs xmlns:p='urn:example:prefs' "
	              "p:a='1'><p:b/></p:prefs>%s</query></user></host>" TAIL,
	         deep);
	assert_int_equal(read_text(text, NULL, &g, err), 0);
	assert_int_equal(g.n, 1);
	priv = json_object_get(g.doc[0], "private");
	assert_int_equal(json_array_size(priv), 3);
	assert_string_equal(json_string_value(json_array_get(priv, 0)),
	                    "<storage xmlns='storage:bookmarks'><conference jid='r@muc.example' "
	                    "autojoin='true'><nick>pat</nick></conference></storage>");
	assert_string_equal(json_string_value(json_array_get(priv, 1)),
	                    "<notes xmlns='storage:rosternotes'><note jid='bob@example.org'>met "
	                    "&amp; liked</note></notes>");
	assert_string_equal(json_string_value(json_array_get(priv, 2)),
	                    "<p:prefs xmlns:p='urn:example:prefs' p:a='1'><p:b/></p:prefs>");
	assert_non_null(strstr(g.notes[0], "private XML storage (XEP-0049): 2 element(s) left "
	                                   "behind: in no namespace, in jabber:iq:private or in a "
	                                   "stream's"));
	assert_non_null(strstr(g.notes[0], "1 element(s) left behind: in a namespace an element "
	                                   "before it has"));
	assert_non_null(strstr(g.notes[0], "1 element(s) left behind: not one element our writer "
	                                   "and the stream parser take"));
	route_takes(g.doc[0]);
	got_free(&g);
	/* nothing that can be kept: no "private" at all, and the note */
	assert_int_equal(read_text(HEAD "<host jid='example.org'><user name='pat' password='p'>"
	                                "<query xmlns='jabber:iq:private'><x/></query></user>"
	                                "</host>" TAIL,
	                           NULL, &g, err),
	                 0);
	assert_null(json_object_get(g.doc[0], "private"));
	assert_non_null(strstr(g.notes[0], "1 element(s) left behind: in no namespace"));
	got_free(&g);
}

/* An account that cannot come says why, and the others still come. */
static void test_accounts_refused(void **state)
{
	static const struct {
		const char *user, *why;
	} cases[] = {
	    {"<user name='a'/>", "neither a password nor SCRAM-SHA-1 or SCRAM-SHA-256 keys"},
	    {"<user name='a'>" SCRAM1(SALT_B64, "AAAA", SERVER_B64) "</user>",
	     "<stored-key/> must be 20 bytes in base64"},
	    {"<user name='a'>" SCRAM1(SALT_B64, STORED_B64, "not base64!") "</user>",
	     "<server-key/> must be 20 bytes"},
	    {"<user name='a'>" SCRAM1("", STORED_B64, SERVER_B64) "</user>",
	     "<salt/> must be 1 to 64 bytes"},
	    {"<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' "
	     "mechanism='SCRAM-SHA-1'><iter-count>0</iter-count></scram-credentials></user>",
	     "<iter-count/> must be 1 to"},
	    {"<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' "
	     "mechanism='SCRAM-SHA-1'><iter-count>12x</iter-count></scram-credentials></user>",
	     "<iter-count/> must be 1 to"},
	    {"<user password='x'/>", "a <user/> without a name"},
	    {"<user name='a@b' password='x'/>", "a JID's local part has no '@' or '/'"},
	    {"<user name='a' password='x'><!-- a comment --></user>", "its XML is refused"},
	};
	char text[2048], err[CM_ERR_MAX];
	struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
		         HEAD "<host jid='h.example'>%s<user name='ok' password='p'/></host>" TAIL,
		         cases[i].user);
		assert_int_equal(read_text(text, NULL, &g, err), 0);
		assert_int_equal(g.n, 2);
		assert_null(g.doc[0]);
		if (!strstr(g.err[0], cases[i].why))
			fail_msg("case %zu: said \"%s\", not \"%s\"", i, g.err[0], cases[i].why);
		assert_non_null(g.doc[1]);
		assert_string_equal(g.jid[1], "ok@h.example");
		got_free(&g);
	}
	/* a mechanism this server does not know is noted, not fatal when another is there */
	assert_int_equal(read_text(HEAD "<host jid='h.example'><user name='a' password='p'>"
	                                "<scram-credentials xmlns='urn:xmpp:pie:0#scram' "
	                                "mechanism='SCRAM-SHA-512'/></user></host>" TAIL,
	                           NULL, &g, err),
	                 0);
	assert_non_null(g.doc[0]);
	got_free(&g);
}

/* Files that are not XEP-0227, or not well-formed, are refused whole, with the line. */
static void test_files_refused(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"<rss/>", "not XEP-0227: the root must be"},
	    {"<server-data xmlns='urn:other'/>",
	     "<server-data/> must be in the namespace urn:xmpp:pie:0, not in 'urn:other'"},
	    {"<host jid='x'/>", "<host/> must be in the namespace urn:xmpp:pie:0, not in ''"},
	    {"", "empty"},
	    {HEAD "<host jid='h'><user name='a' password='p'>" TAIL, "mismatched tag"},
	    {"<!DOCTYPE x [<!ENTITY a 'b'>]>" HEAD TAIL, "document type declaration"},
	    {HEAD "<host><user name='a' password='p'/></host>" TAIL, "a <host/> without a jid"},
	    {HEAD "<user name='a' password='p'/>" TAIL, "XEP-0227 has no place for here: user"},
	    {HEAD "<host jid='h'><roster/></host>" TAIL, "has no place for here: roster"},
	    {HEAD "<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='h.xml'/>" TAIL,
	     "<xi:include href='h.xml'/>: not here"},
	    {HEAD "<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='../h.xml'/>" TAIL,
	     "must name a file beside this one"},
	};
	char err[CM_ERR_MAX];
	struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(read_text(cases[i].text, NULL, &g, err), -EINVAL);
		assert_int_equal(g.n, 0); /* nothing handed on */
		if (!strstr(err, cases[i].why) || !strstr(err, "test.xml"))
			fail_msg("case %zu: said \"%s\", not \"%s\"", i, err, cases[i].why);
	}
}

/* Only the host asked for; a prefixed user; namespaces declared around a user reach it. */
static void test_hosts_and_namespaces(void **state)
{
	const char *text =
	    "<pie:server-data xmlns:pie='urn:xmpp:pie:0' xmlns:r='jabber:iq:roster'>"
	    "<pie:host jid='a.example'><pie:user name='one' password='p'><r:query><r:item "
	    "jid='two@a.example' subscription='both'/></r:query></pie:user></pie:host>"
	    "<pie:host jid='b.example'><pie:user name='three' password='p'/></pie:host>"
	    "</pie:server-data>";
	char err[CM_ERR_MAX];
	struct got g;

	(void)state;
	assert_int_equal(read_text(text, NULL, &g, err), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(json_array_size(json_object_get(g.doc[0], "roster")), 1);
	assert_string_equal(g.jid[1], "three@b.example");
	got_free(&g);
	assert_int_equal(read_text(text, "b.example", &g, err), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.jid[0], "three@b.example");
	got_free(&g);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ejabberd's layout (a main file including a host file) and Prosody's (a file per account) in
 * one directory, and a host file nobody includes: each account once. */
static void test_directory(void **state)
{
	char dir[] = "/tmp/test_xep227.XXXXXX", err[CM_ERR_MAX] = "", path[600];
	struct got g = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "1-main.xml",
	           "<server-data xmlns='urn:xmpp:pie:0' "
	           "xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include "
	           "href='2-host.xml'/></server-data>");
	write_file(dir, "2-host.xml",
	           "<?xml version='1.0'?><host xmlns='urn:xmpp:pie:0' jid='e.example'>"
	           "<user name='ej' password='p'/></host>");
	write_file(dir, "3-alone.xml",
	           "<host xmlns='urn:xmpp:pie:0' jid='f.example'><user name='al' "
	           "password='p'/></host>");
	write_file(dir, "pr@p.example.xml",
	           HEAD "<host jid='p.example'><user name='pr' password='p'/></host>" TAIL);
	write_file(dir, "notes.txt", "not read");
	assert_int_equal(xc_xep227_read(dir, NULL, collect, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.jid[0], "ej@e.example");
	assert_string_equal(g.jid[1], "al@f.example");
	assert_string_equal(g.jid[2], "pr@p.example");
	got_free(&g);
	/* the main file alone pulls its include in */
	snprintf(path, sizeof(path), "%s/1-main.xml", dir);
	assert_int_equal(xc_xep227_read(path, NULL, collect, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 1);
	got_free(&g);
	/* a file in the directory that is not XEP-0227: nothing handed on */
	write_file(dir, "0-bad.xml", "<html/>");
	assert_int_equal(xc_xep227_read(dir, NULL, collect, &g, err, sizeof(err)), -EINVAL);
	assert_int_equal(g.n, 0);
	assert_non_null(strstr(err, "0-bad.xml"));
	snprintf(path, sizeof(path), "%s/0-bad.xml", dir);
	unlink(path);
	/* an include that is not there */
	write_file(dir, "1-main.xml",
	           "<server-data xmlns='urn:xmpp:pie:0' "
	           "xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include "
	           "href='missing.xml'/></server-data>");
	snprintf(path, sizeof(path), "%s/1-main.xml", dir);
	assert_int_equal(xc_xep227_read(path, NULL, collect, &g, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.xml"));
	assert_int_equal(g.n, 0);
	assert_int_equal(xc_xep227_read("/nonexistent/x.xml", NULL, collect, &g, err, sizeof(err)),
	                 -ENOENT);
	for (size_t i = 0; i < 5; i++) {
		static const char *const names[] = {"1-main.xml", "2-host.xml", "3-alone.xml",
		                                    "pr@p.example.xml", "notes.txt"};

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(rmdir(dir), 0);
	got_free(&g);
}

/* A document's roster items without the flags that are false (absent means false). */
static void drop_false(json_t *doc)
{
	json_t *roster = json_object_get(doc, "roster");

	for (size_t i = 0; i < json_array_size(roster); i++) {
		json_t *it = json_array_get(roster, i);
		static const char *const flags[] = {"ask", "approved", "pending_in"};

		for (int f = 0; f < 3; f++)
			if (json_is_false(json_object_get(it, flags[f])))
				json_object_del(it, flags[f]);
	}
}

/* An account's document written as a file (xc_xep227_file()) reads back as the same document:
 * what export-xep227 writes, import-xep227 brings back as it was. */
static void test_round_trip(void **state)
{
	static const char doc[] =
	    "{\"jid\":\"alice@example.org\","
	    "\"scram\":{\"SCRAM-SHA-1\":{\"iterations\":4096,\"salt\":\"" SALT_B64 "\","
	    "\"stored_key\":\"" STORED_B64 "\",\"server_key\":\"" SERVER_B64 "\"},"
	    "\"SCRAM-SHA-256\":{\"iterations\":4096,\"salt\":\"W22ZaJ0SNY7soEsUEjb6gQ==\","
	    "\"stored_key\":\"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=\","
	    "\"server_key\":\"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\"}},"
	    "\"roster\":[{\"jid\":\"bob@example.org\",\"groups\":[\"Friends\",\"Work & Play\"],"
	    "\"subscription\":\"both\",\"ask\":false,\"approved\":false,\"pending_in\":false,"
	    "\"name\":\"Bob <B>\"},{\"jid\":\"carol@example.org\",\"groups\":[],"
	    "\"subscription\":\"none\",\"ask\":true,\"approved\":true,\"pending_in\":true}],"
	    "\"requests\":[\"dave@example.org\"],\"blocklist\":[\"evil.example\","
	    "\"spam@evil.example\"],"
	    "\"offline\":[{\"stamp_ms\":1796544365101,\"stanza\":\"<message "
	    "to='alice@example.org' from='bob@example.org' "
	    "type='chat'><body>hi &amp; bye</body></message>\"}],"
	    "\"pep\":[{\"node\":\"urn:xmpp:avatar:metadata\",\"access\":\"roster\","
	    "\"persist\":true,\"items\":[{\"id\":\"a\",\"payload\":\"<metadata "
	    "xmlns='urn:xmpp:avatar:metadata'/>\"},{\"id\":\"b\",\"payload\":\"<metadata "
	    "xmlns='urn:xmpp:avatar:metadata'><info id='b' bytes='1'/></metadata>\"}],"
	    "\"max_items\":\"max\",\"groups\":[\"Friends\"]},{\"node\":\"urn:xmpp:vcard4\","
	    "\"access\":\"open\",\"persist\":false,\"items\":[{\"id\":\"current\","
	    "\"payload\":\"<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice</text>"
	    "</fn></vcard>\"}],\"max_items\":1}],"
	    "\"vcard\":\"<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>\","
	    "\"private\":[\"<storage xmlns='storage:bookmarks'><conference jid='r@muc.example' "
	    "autojoin='true'><nick>Al &amp; Co</nick></conference></storage>\",\"<notes "
	    "xmlns='storage:rosternotes'><note jid='bob@example.org'>met at work</note></notes>\","
	    "\"<p:prefs xmlns:p='urn:example:prefs' p:a='1'><b xmlns=''/></p:prefs>\"]}";
	struct cm_buf xml;
	char err[CM_ERR_MAX] = "";
	json_t *want = json_loads(doc, 0, NULL), *got;
	const char *key;
	json_t *v;
	struct got g;

	(void)state;
	assert_non_null(want);
	cm_buf_init(&xml, 0);
	assert_int_equal(xc_xep227_file(doc, 0, &xml, err, sizeof(err)), 0);
	assert_int_equal(
	    xc_xep227_read_buf(xml.data, xml.len, "out.xml", NULL, collect, &g, err, sizeof(err)),
	    0);
	assert_int_equal(g.n, 1);
	got = g.doc[0];
	assert_non_null(got);
	assert_string_equal(g.notes[0], "");
	drop_false(want);
	drop_false(got);
	json_object_foreach(want, key, v)
	{
		if (!json_equal(v, json_object_get(got, key))) {
			char *a = json_dumps(v, JSON_SORT_KEYS),
			     *b = json_dumps(json_object_get(got, key), JSON_SORT_KEYS);

			fail_msg("%s: wrote %s, read %s", key, a, b ? b : "(none)");
		}
	}
	assert_int_equal(json_object_size(got), json_object_size(want));
	route_takes(got);
	got_free(&g);
	/* for ejabberd: its doubled base64, which reads back the same */
	xml.len = 0;
	assert_int_equal(xc_xep227_file(doc, XC_XEP227_EJABBERD, &xml, err, sizeof(err)), 0);
	assert_non_null(strstr(xml.data, "<salt>" SALT_B64B64 "</salt>"));
	assert_non_null(strstr(xml.data, "<stored-key>" STORED_B64B64 "</stored-key>"));
	/* private XML as XEP-0227 has it, which ejabberd's import_piefxis sets */
	assert_non_null(strstr(xml.data, "<query xmlns='jabber:iq:private'><storage "
	                                 "xmlns='storage:bookmarks'>"));
	assert_int_equal(
	    xc_xep227_read_buf(xml.data, xml.len, "out.xml", NULL, collect, &g, err, sizeof(err)),
	    0);
	assert_true(json_equal(json_object_get(g.doc[0], "scram"), json_object_get(want, "scram")));
	assert_true(
	    json_equal(json_object_get(g.doc[0], "private"), json_object_get(want, "private")));
	got_free(&g);
	json_decref(want);
	/* what is not an account's document */
	xml.len = 0;
	assert_int_equal(xc_xep227_file("{\"jid\":\"nobody\"}", 0, &xml, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(
	    xc_xep227_file("{\"jid\":\"a@b\",\"vcard\":\"<x\"}", 0, &xml, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "a@b"));
	cm_buf_free(&xml);
}

/* The archive route's requests test_archive's cutter made: their messages, as JSON. */
struct requests {
	json_t *messages;
	size_t n;
};

static int take(void *arg, const char *body, size_t len, size_t n)
{
	struct requests *rq = arg;
	json_t *d = json_loadb(body, len, 0, NULL), *m;
	size_t i;

	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "jid")), "grace@example.org");
	assert_int_equal(json_array_size(json_object_get(d, "messages")), n);
	json_array_foreach(json_object_get(d, "messages"), i, m)
	{
		json_array_append(rq->messages, m);
	}
	rq->n++;
	json_decref(d);
	return 0;
}

/* An account's <archive/> as Prosody's xep0227 store writes it: each message with its time,
 * in requests of the archive route; a result without its message or time counted apart, and
 * one the route would refuse left behind by the cutter. */
static void test_archive(void **state)
{
	const char *text =
	    "<archive xmlns='urn:xmpp:pie:0#mam'>"
	    "<result xmlns='urn:xmpp:mam:2' id='k1'><forwarded xmlns='urn:xmpp:forward:0'>"
	    "<delay xmlns='urn:xmpp:delay' stamp='2024-01-02T03:04:05Z'/>"
	    "<message xmlns='jabber:client' from='heidi@example.org/a' to='grace@example.org' "
	    "type='chat'><body>one</body></message></forwarded></result>"
	    "<result xmlns='urn:xmpp:mam:2' id='k2'><forwarded xmlns='urn:xmpp:forward:0'>"
	    "<delay xmlns='urn:xmpp:delay' stamp='2024-01-02T03:04:06.500+01:00'/>"
	    "<message xmlns='jabber:client' from='grace@example.org/b' to='heidi@example.org' "
	    "type='chat'><body>two &amp; &lt;three&gt;</body></message></forwarded></result>"
	    /* no time; no message; a message neither side of which is grace's */
	    "<result xmlns='urn:xmpp:mam:2' id='k3'><forwarded xmlns='urn:xmpp:forward:0'>"
	    "<message xmlns='jabber:client' to='grace@example.org' from='x@y'/></forwarded>"
	    "</result>"
	    "<result xmlns='urn:xmpp:mam:2' id='k4'><forwarded xmlns='urn:xmpp:forward:0'>"
	    "<delay xmlns='urn:xmpp:delay' stamp='2024-01-02T03:04:07Z'/></forwarded></result>"
	    "<result xmlns='urn:xmpp:mam:2' id='k5'><forwarded xmlns='urn:xmpp:forward:0'>"
	    "<delay xmlns='urn:xmpp:delay' stamp='2024-01-02T03:04:08Z'/>"
	    "<message xmlns='jabber:client' from='x@y' to='z@y'><body>no</body></message>"
	    "</forwarded></result>"
	    "<other xmlns='urn:example'/></archive>";
	const struct xc_prosody_mam_limits lim = {4096, 1, XC_PROSODY_MAM_MAX_BODY};
	struct requests rq = {json_array(), 0};
	struct cm_xml_node *archive = NULL;
	struct xc_prosody_mam *m = NULL;
	size_t skipped = 9, sent, left;
	json_t *first, *second;

	(void)state;
	assert_int_equal(xc_stanza_parse(text, strlen(text), &archive), 0);
	assert_int_equal(xc_prosody_mam_alloc(&m, "grace@example.org", &lim, take, &rq), 0);
	assert_int_equal(xc_xep227_archive(archive, m, &skipped), 0);
	xc_prosody_mam_counts(m, &sent, &left);
	assert_int_equal(sent, 2);
	assert_int_equal(left, 1);
	assert_int_equal(skipped, 2);
	assert_int_equal(rq.n, 2); /* one message a request here */
	first = json_array_get(rq.messages, 0);
	second = json_array_get(rq.messages, 1);
	assert_int_equal(json_integer_value(json_object_get(first, "stamp_ms")), 1704164645000);
	/* (whole seconds, as the cutter keeps Prosody's; 03:04:06.5+01:00 is 02:04:06Z) */
	assert_int_equal(json_integer_value(json_object_get(second, "stamp_ms")), 1704161046000);
	assert_non_null(
	    strstr(json_string_value(json_object_get(first, "stanza")), "<body>one</body>"));
	assert_non_null(strstr(json_string_value(json_object_get(second, "stanza")),
	                       "<body>two &amp; &lt;three&gt;</body>"));
	xc_prosody_mam_free(m);
	cm_xml_node_free(archive);
	json_decref(rq.messages);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ejabberd_user),
	    cmocka_unit_test(test_prosody_user),
	    cmocka_unit_test(test_password_privacy_offline),
	    cmocka_unit_test(test_private_xml),
	    cmocka_unit_test(test_accounts_refused),
	    cmocka_unit_test(test_files_refused),
	    cmocka_unit_test(test_hosts_and_namespaces),
	    cmocka_unit_test(test_directory),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_archive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
