/* test_xml.c - cm_xml: a recorded XMPP exchange fed whole and split at every byte, namespaces,
 * serialisation round trips and escaping, builders and queries, every restricted construct and
 * limit refused with its RFC 6120 condition, stream restarts, and allocation failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/xml.h"
#include "tests/support/alloc.h"

/* --- recorded traffic --------------------------------------------------------------------- */

#define HDR "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

/* A client's side of a session after SASL (RFC 6120 examples, RFC 6121, XEP-0198, XEP-0357). */
static const char client_stream[] =
    "<?xml version='1.0'?>"
    "<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' "
    "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\n"
    "<iq id='yhc13a95' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>balcony</resource></bind></iq>\n"
    "<message from='juliet@im.example.com/balcony' id='ktx72v49' to='romeo@example.net' "
    "type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague? \xc3\xa9\xe2\x98\x83"
    "\xf0\x9d\x84\x9e &amp; &lt;3</body></message>\n"
    "<presence><show>away</show><status xml:lang='fr'>parti</status></presence>"
    " \n "
    "<iq type='set' to='push-5.client.example' id='n12'>"
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
    "<publish node='yxs32uqsflafdk3iuqo'><item><notification xmlns='urn:xmpp:push:0'>"
    "<x xmlns='jabber:x:data' type='submit'>"
    "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>"
    "<field var='message-count'><value>1</value></field>"
    "<field var='last-message-sender'><value>juliet@capulet.example/balcony</value></field>"
    "<field var='last-message-body'><value>Wherefore art thou, Romeo?</value></field>"
    "</x></notification></item></publish>"
    "<publish-options><x xmlns='jabber:x:data' type='submit'>"
    "<field var='FORM_TYPE' type='hidden'>"
    "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
    "<field var='secret'><value>eruio234vzxc2kla-91</value></field>"
    "<field var='silent'><value/></field>"
    "</x></publish-options></pubsub></iq>"
    "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
    "<r xmlns='urn:xmpp:sm:3'/>"
    "<message to='romeo@example.net'><body><![CDATA[<b>bold</b>]]></body></message>"
    "</stream:stream>";

/* The server's side: header and features, as a client would parse them. */
static const char server_stream[] =
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<stream:stream from='im.example.com' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' "
    "to='juliet@im.example.com' version='1.0' xml:lang='en' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
    "</starttls></stream:features>"
    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Replaced</text>"
    "</stream:error></stream:stream>";

/* XEP-0114 component handshake, as the server sees it. */
static const char component_stream[] =
    "<stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='plays.shakespeare.lit'>"
    "<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>"
    "<iq type='result' id='n12' from='push-5.client.example' to='im.example.com'/>";

/* --- a recorder --------------------------------------------------------------------------- */

struct rec {
	struct cm_xml_parser *p;
	struct cm_buf log; /* one line per event */
	struct cm_xml_node *header;
	struct cm_xml_node *stanzas[32];
	int nstanzas;
	int opens, closes, errors;
	const char *cond;
	/* behaviour */
	const char *reset_after; /* reset the parser after a stanza with this name */
	int stop_rc;             /* returned by the stanza callback when nonzero */
	int feed_inside;         /* try to feed from the callback */
	int feed_rc;
	int feeding; /* what cm_xml_parser_feeding() said in the last stanza callback */
};

static int on_open(void *arg, const struct cm_xml_node *h)
{
	struct rec *r = arg;
	int err;

	r->opens++;
	cm_xml_node_free(r->header);
	r->header = NULL;
	err = cm_xml_node_copy(&r->header, h);
	if (!err)
		err = cm_buf_puts(&r->log, "open ");
	if (!err)
		err = cm_xml_write_open(&r->log, h, NULL);
	if (!err)
		err = cm_buf_puts(&r->log, "\n");
	return err;
}

static int on_stanza(void *arg, struct cm_xml_node *s)
{
	struct rec *r = arg;
	int err;

	err = cm_buf_puts(&r->log, "stanza ");
	if (!err)
		err = cm_xml_write(&r->log, s, r->header);
	if (!err)
		err = cm_buf_puts(&r->log, "\n");
	r->feeding = cm_xml_parser_feeding(r->p);
	if (r->feed_inside)
		r->feed_rc = cm_xml_parser_feed(r->p, "x", 1);
	if (r->reset_after && !strcmp(s->name, r->reset_after))
		err = err ? err : cm_xml_parser_reset(r->p);
	if (r->nstanzas < 32)
		r->stanzas[r->nstanzas++] = s;
	else
		cm_xml_node_free(s);
	return err ? err : r->stop_rc;
}

static int on_close(void *arg)
{
	struct rec *r = arg;

	r->closes++;
	return cm_buf_puts(&r->log, "close\n");
}

static void on_error(void *arg, const char *cond, const char *detail)
{
	struct rec *r = arg;

	assert_non_null(detail);
	r->errors++;
	r->cond = cond;
}

static const struct cm_xml_parser_cfg base_cfg = {
    .open_cb = on_open,
    .stanza_cb = on_stanza,
    .close_cb = on_close,
    .error_cb = on_error,
};

static int rec_init(struct rec *r, const struct cm_xml_parser_cfg *cfg)
{
	struct cm_xml_parser_cfg c = cfg ? *cfg : base_cfg;

	memset(r, 0, sizeof(*r));
	cm_buf_init(&r->log, 0);
	c.arg = r;
	return cm_xml_parser_alloc(&r->p, &c);
}

static void rec_clear(struct rec *r)
{
	for (int i = 0; i < r->nstanzas; i++)
		cm_xml_node_free(r->stanzas[i]);
	r->nstanzas = 0;
	cm_xml_node_free(r->header);
	r->header = NULL;
	cm_buf_free(&r->log);
}

static void rec_free(struct rec *r)
{
	rec_clear(r);
	cm_xml_parser_free(r->p);
	r->p = NULL;
}

static int feed_str(struct rec *r, const char *s)
{
	return cm_xml_parser_feed(r->p, s, strlen(s));
}

/* Parse s whole with a default parser; the caller frees r. */
static void parse(struct rec *r, const char *s, int expect)
{
	assert_int_equal(rec_init(r, NULL), 0);
	assert_int_equal(feed_str(r, s), expect);
}

/* Expect s to fail with cond (and -EBADMSG), reported once through error_cb. */
static void expect_error(const char *s, const char *cond)
{
	struct rec r;
	const char *detail = NULL;

	assert_int_equal(rec_init(&r, NULL), 0);
	if (feed_str(&r, s) != -EBADMSG)
		fail_msg("%s: accepted", s);
	if (cm_xml_parser_error(r.p, &detail) != cond)
		fail_msg("%s: got %s (%s), want %s", s, cm_xml_parser_error(r.p, NULL),
		         detail ? detail : "", cond);
	assert_ptr_equal(r.cond, cond);
	assert_int_equal(r.errors, 1);
	assert_non_null(strstr(detail, "line "));
	/* the error sticks */
	assert_int_equal(feed_str(&r, "<a/>"), -EBADMSG);
	assert_int_equal(r.errors, 1);
	rec_free(&r);
}

/* Structural equality: names, namespaces, prefixes, attributes, text. Declarations may differ. */
static int tree_equal(const struct cm_xml_node *a, const struct cm_xml_node *b)
{
	const struct cm_xml_attr *x, *y;

	if (a->kind != b->kind)
		return 0;
	if (a->kind == CM_XML_TEXT)
		return a->text_len == b->text_len && !memcmp(a->text, b->text, a->text_len);
	if (strcmp(a->name, b->name) || strcmp(a->ns, b->ns) ||
	    (a->prefix ? !b->prefix || strcmp(a->prefix, b->prefix) : !!b->prefix))
		return 0;
	for (x = a->attrs, y = b->attrs; x && y; x = x->next, y = y->next)
		if (strcmp(x->name, y->name) || strcmp(x->value, y->value) ||
		    (x->ns ? !y->ns || strcmp(x->ns, y->ns) : !!y->ns))
			return 0;
	if (x || y)
		return 0;
	for (a = a->children, b = b->children; a && b; a = a->next, b = b->next)
		if (!tree_equal(a, b))
			return 0;
	return !a && !b;
}

/* --- the exchange --------------------------------------------------------------------------- */

static void test_exchange(void **state)
{
	struct rec r;
	const struct cm_xml_node *h, *s, *c, *form;
	struct cm_buf b;

	(void)state;
	parse(&r, client_stream, 0);
	assert_int_equal(r.opens, 1);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.nstanzas, 7);
	assert_int_equal(r.errors, 0);
	assert_null(cm_xml_parser_error(r.p, NULL));

	h = r.header;
	assert_string_equal(h->name, "stream");
	assert_string_equal(h->ns, CM_XML_NS_STREAM);
	assert_string_equal(h->prefix, "stream");
	assert_string_equal(cm_xml_attr(h, "to"), "im.example.com");
	assert_string_equal(cm_xml_attr(h, "version"), "1.0");
	assert_string_equal(cm_xml_attr(h, "xml:lang"), "en");
	assert_string_equal(cm_xml_lang(h), "en");
	assert_null(cm_xml_attr(h, "lang"));
	assert_string_equal(cm_xml_ns_lookup(h, NULL), CM_XML_NS_CLIENT);
	assert_string_equal(cm_xml_ns_lookup(h, "stream"), CM_XML_NS_STREAM);
	assert_string_equal(cm_xml_ns_lookup(h, "xml"), CM_XML_NS_XML);
	assert_null(cm_xml_ns_lookup(h, "foo"));

	/* bind */
	s = r.stanzas[0];
	assert_null(s->parent);
	assert_string_equal(s->name, "iq");
	assert_string_equal(s->ns, CM_XML_NS_CLIENT);
	assert_null(s->prefix);
	assert_string_equal(cm_xml_attr(s, "id"), "yhc13a95");
	c = cm_xml_child(s, "bind", "urn:ietf:params:xml:ns:xmpp-bind");
	assert_non_null(c);
	assert_null(cm_xml_child(s, "bind", CM_XML_NS_CLIENT));
	assert_string_equal(cm_xml_text(cm_xml_child(c, "resource", NULL)), "balcony");

	/* message with UTF-8 and predefined entities */
	s = r.stanzas[1];
	assert_string_equal(cm_xml_text(cm_xml_child(s, "body", CM_XML_NS_CLIENT)),
	                    "Art thou not Romeo, and a Montague? \xc3\xa9\xe2\x98\x83"
	                    "\xf0\x9d\x84\x9e & <3");
	assert_string_equal(cm_xml_lang(cm_xml_child(s, "body", NULL)), "en");

	/* presence: xml:lang on a child */
	s = r.stanzas[2];
	assert_string_equal(cm_xml_lang(cm_xml_child(s, "status", NULL)), "fr");
	assert_null(cm_xml_lang(s));
	assert_null(cm_xml_text(s));
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_text_buf(s, &b), 0);
	assert_string_equal(b.data, "awayparti");
	cm_buf_free(&b);

	/* XEP-0357 publish with two forms */
	s = r.stanzas[3];
	c = cm_xml_child(s, "pubsub", "http://jabber.org/protocol/pubsub");
	assert_non_null(c);
	assert_string_equal(cm_xml_attr(cm_xml_child(c, "publish", NULL), "node"),
	                    "yxs32uqsflafdk3iuqo");
	form = cm_xml_child(cm_xml_child(c, "publish-options", NULL), "x", CM_XML_NS_DATA);
	assert_non_null(form);
	assert_string_equal(cm_xml_form_field(form, "FORM_TYPE"),
	                    "http://jabber.org/protocol/pubsub#publish-options");
	assert_string_equal(cm_xml_form_field(form, "secret"), "eruio234vzxc2kla-91");
	assert_string_equal(cm_xml_form_field(form, "silent"), "");
	assert_null(cm_xml_form_field(form, "missing"));
	form = cm_xml_child(c, "publish", NULL);
	form = cm_xml_child(
	    cm_xml_child(cm_xml_child(form, "item", NULL), "notification", "urn:xmpp:push:0"), "x",
	    CM_XML_NS_DATA);
	assert_string_equal(cm_xml_form_field(form, "FORM_TYPE"), "urn:xmpp:push:summary");
	assert_string_equal(cm_xml_form_field(form, "message-count"), "1");
	assert_string_equal(cm_xml_form_field(form, "last-message-body"),
	                    "Wherefore art thou, Romeo?");

	/* XEP-0198 */
	s = r.stanzas[4];
	assert_string_equal(s->ns, "urn:xmpp:sm:3");
	assert_string_equal(cm_xml_attr(s, "resume"), "true");
	/* CDATA is character data */
	assert_string_equal(cm_xml_text(cm_xml_child(r.stanzas[6], "body", NULL)), "<b>bold</b>");
	assert_string_equal(r.log.data + r.log.len - 6, "close\n");
	rec_free(&r);
}

static void test_server_side(void **state)
{
	struct rec r;
	const struct cm_xml_node *s, *c;
	struct cm_buf b;

	(void)state;
	parse(&r, server_stream, 0);
	assert_int_equal(r.nstanzas, 2);
	s = r.stanzas[0];
	assert_string_equal(s->name, "features");
	assert_string_equal(s->ns, CM_XML_NS_STREAM);
	assert_string_equal(s->prefix, "stream");
	c = cm_xml_child(s, "starttls", "urn:ietf:params:xml:ns:xmpp-tls");
	assert_non_null(cm_xml_child(c, "required", "urn:ietf:params:xml:ns:xmpp-tls"));
	/* in the stream's scope: no declarations repeated */
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_write(&b, s, r.header), 0);
	assert_string_equal(b.data, "<stream:features><starttls "
	                            "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
	                            "</stream:features>");
	cm_buf_reset(&b);
	/* alone: self-contained */
	assert_int_equal(cm_xml_write(&b, s, NULL), 0);
	assert_string_equal(b.data, "<stream:features xmlns:stream='http://etherx.jabber.org/"
	                            "streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	                            "<required/></starttls></stream:features>");
	cm_buf_reset(&b);
	s = r.stanzas[1];
	assert_string_equal(s->name, "error");
	c = cm_xml_child(s, "text", "urn:ietf:params:xml:ns:xmpp-streams");
	assert_string_equal(cm_xml_lang(c), "en");
	assert_int_equal(cm_xml_write(&b, s, r.header), 0);
	assert_string_equal(b.data,
	                    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
	                    "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>"
	                    "Replaced</text></stream:error>");
	cm_buf_free(&b);
	rec_free(&r);
}

/* Every split of the exchange into two chunks, and byte by byte, gives the same events. */
static void check_splits(const char *doc)
{
	struct rec whole, r;
	size_t len = strlen(doc);

	parse(&whole, doc, 0);
	for (size_t i = 0; i <= len; i++) {
		assert_int_equal(rec_init(&r, NULL), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, doc, i), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, doc + i, len - i), 0);
		if (strcmp(r.log.data, whole.log.data))
			fail_msg("split at %zu:\n%s\nvs\n%s", i, r.log.data, whole.log.data);
		rec_free(&r);
	}
	assert_int_equal(rec_init(&r, NULL), 0);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(cm_xml_parser_feed(r.p, doc + i, 1), 0);
	assert_string_equal(r.log.data, whole.log.data);
	rec_free(&r);
	rec_free(&whole);
}

static void test_split_every_byte(void **state)
{
	(void)state;
	check_splits(client_stream);
	check_splits(server_stream);
	check_splits(component_stream);
}

/* Parking between stanzas changes nothing a caller sees: doc fed a byte at a time, with a park
 * tried after every byte, gives the same events as doc fed whole; parks succeed only at rest. */
static void check_parked(const char *doc, int want_parks)
{
	struct rec whole, r;
	size_t len = strlen(doc);
	int parks = 0;

	parse(&whole, doc, 0);
	assert_int_equal(rec_init(&r, NULL), 0);
	assert_int_equal(cm_xml_parser_park(r.p), -EBUSY); /* no header yet */
	for (size_t i = 0; i < len; i++) {
		int rc;

		assert_int_equal(cm_xml_parser_feed(r.p, doc + i, 1), 0);
		rc = cm_xml_parser_park(r.p);
		assert_true(rc == 0 || rc == -EBUSY);
		assert_int_equal(cm_xml_parser_parked(r.p), rc == 0);
		if (rc == 0) {
			parks++;
			/* nothing is held back at rest: the byte just fed closed a tag or was space
			 */
			assert_true(doc[i] == '>' || doc[i] == ' ' || doc[i] == '\n');
			assert_int_equal(cm_xml_parser_park(r.p), 0); /* again: harmless */
		}
	}
	if (strcmp(r.log.data, whole.log.data))
		fail_msg("parked:\n%s\nvs\n%s", r.log.data, whole.log.data);
	assert_true(parks >= want_parks);
	rec_free(&r);
	rec_free(&whole);
}

static void test_park(void **state)
{
	struct rec r;
	const char *detail = NULL;

	(void)state;
	check_parked(client_stream, 6);
	check_parked(server_stream, 2); /* stanzas with the stream: prefix after a park */
	/* mid-stanza, or with a partial token in expat: not at rest */
	assert_int_equal(rec_init(&r, NULL), 0);
	assert_int_equal(feed_str(&r, HDR "<message><body>hi"), 0);
	assert_int_equal(cm_xml_parser_park(r.p), -EBUSY);
	assert_int_equal(feed_str(&r, "</body></message><pres"), 0);
	assert_int_equal(cm_xml_parser_park(r.p), -EBUSY);
	assert_int_equal(feed_str(&r, "ence/>"), 0);
	assert_int_equal(cm_xml_parser_park(r.p), 0);
	/* limits and errors still hold after a park */
	assert_int_equal(feed_str(&r, "<message><!-- no --></message>"), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, &detail), cm_xml_err_restricted_xml);
	assert_int_equal(r.nstanzas, 2);
	assert_int_equal(cm_xml_parser_park(r.p), -EBUSY); /* failed */
	/* a reset while parked starts a new stream */
	assert_int_equal(cm_xml_parser_reset(r.p), 0);
	assert_int_equal(feed_str(&r, HDR "<iq type='get' id='1'/>"), 0);
	assert_int_equal(cm_xml_parser_park(r.p), 0);
	assert_int_equal(cm_xml_parser_reset(r.p), 0);
	assert_int_equal(cm_xml_parser_parked(r.p), 0);
	assert_int_equal(feed_str(&r, HDR "<iq type='get' id='2'/></stream:stream>"), 0);
	assert_int_equal(r.opens, 3);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.nstanzas, 4);
	rec_free(&r);
}

static void test_component(void **state)
{
	struct cm_xml_parser_cfg cfg = base_cfg;
	struct rec r;

	(void)state;
	cfg.content_ns = CM_XML_NS_COMPONENT;
	assert_int_equal(rec_init(&r, &cfg), 0);
	assert_int_equal(feed_str(&r, component_stream), 0);
	assert_int_equal(r.nstanzas, 2);
	assert_string_equal(r.stanzas[0]->name, "handshake");
	assert_string_equal(r.stanzas[0]->ns, CM_XML_NS_COMPONENT);
	assert_string_equal(cm_xml_text(r.stanzas[0]), "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e");
	assert_string_equal(cm_xml_attr(r.header, "to"), "plays.shakespeare.lit");
	assert_int_equal(r.closes, 0);
	rec_free(&r);

	/* a client stream on the component port */
	assert_int_equal(rec_init(&r, &cfg), 0);
	assert_int_equal(feed_str(&r, client_stream), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_invalid_namespace);
	assert_int_equal(r.opens, 0);
	rec_free(&r);
}

/* --- serialisation -------------------------------------------------------------------------- */

/* Serialise every stanza of doc (in the header's scope and alone), parse it again inside the
 * same header, and compare the trees. */
static void check_roundtrip(const char *doc)
{
	struct rec a, b;
	struct cm_buf out;

	parse(&a, doc, 0);
	cm_buf_init(&out, 0);
	for (int alone = 0; alone < 2; alone++) {
		cm_buf_reset(&out);
		assert_int_equal(cm_xml_write_open(&out, a.header, NULL), 0);
		for (int i = 0; i < a.nstanzas; i++)
			assert_int_equal(cm_xml_write(&out, a.stanzas[i], alone ? NULL : a.header),
			                 0);
		assert_int_equal(cm_xml_write_close(&out, a.header), 0);
		parse(&b, out.data, 0);
		assert_int_equal(b.nstanzas, a.nstanzas);
		assert_int_equal(b.closes, 1);
		assert_true(tree_equal(a.header, b.header));
		for (int i = 0; i < a.nstanzas; i++)
			if (!tree_equal(a.stanzas[i], b.stanzas[i]))
				fail_msg("stanza %d differs after\n%s", i, out.data);
		rec_free(&b);
	}
	cm_buf_free(&out);
	rec_free(&a);
}

static void test_roundtrip(void **state)
{
	(void)state;
	check_roundtrip(client_stream);
	check_roundtrip(server_stream);
	check_roundtrip(
	    "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' "
	    "xmlns:db='jabber:server:dialback'>"
	    "<db:result from='a.example' to='b.example'>k3y</db:result>"
	    "<x:y xmlns:x='urn:x' x:a='1' b='2' xmlns:z='urn:z' z:c='3'><x:w/><v "
	    "xmlns=''>\r\n&#13;\t</v><u xmlns='urn:u' a='&#9;&#10;&#13;&apos;&quot;'/>"
	    "</x:y></s:stream>");
}

/* cm_xml_pack(): every stanza of doc packed into a block of exactly the size asked for, equal
 * to the original and written the same; a copy out of the pack outlives the original; a block
 * one byte short or misaligned is refused. */
static void check_pack(const char *doc)
{
	struct rec a;
	struct cm_buf want, got;

	parse(&a, doc, 0);
	cm_buf_init(&want, 0);
	cm_buf_init(&got, 0);
	for (int i = 0; i < a.nstanzas; i++) {
		struct cm_xml_node *st = a.stanzas[i], *copy = NULL;
		const struct cm_xml_node *packed, *inner = st->children ? st->children : st;
		size_t size = cm_xml_pack_size(st);
		char *mem = malloc(size + 16), *inner_mem;

		assert_non_null(mem);
		assert_null(cm_xml_pack(st, mem, size - 1));
		assert_null(cm_xml_pack(st, mem + 1, size));
		packed = cm_xml_pack(st, mem, size);
		assert_non_null(packed);
		assert_ptr_equal(packed, mem);
		assert_null(packed->parent);
		assert_true(tree_equal(packed, st));
		cm_buf_reset(&want);
		cm_buf_reset(&got);
		assert_int_equal(cm_xml_write(&want, st, a.header), 0);
		assert_int_equal(cm_xml_write(&got, packed, a.header), 0);
		assert_string_equal(got.data, want.data);
		/* a subtree packs alone, as a root */
		inner_mem = malloc(cm_xml_pack_size(inner));
		assert_non_null(inner_mem);
		assert_true(
		    tree_equal(cm_xml_pack(inner, inner_mem, cm_xml_pack_size(inner)), inner));
		free(inner_mem);
		/* the copy out of the pack is the receiver's own */
		assert_int_equal(cm_xml_node_copy(&copy, packed), 0);
		free(mem);
		cm_buf_reset(&got);
		assert_int_equal(cm_xml_write(&got, copy, a.header), 0);
		assert_string_equal(got.data, want.data);
		assert_int_equal(cm_xml_node_set_attr(copy, "from", "a@b.example/c"), 0);
		cm_xml_node_free(copy);
	}
	cm_buf_free(&want);
	cm_buf_free(&got);
	rec_free(&a);
}

static void test_pack(void **state)
{
	(void)state;
	check_pack(client_stream);
	check_pack(server_stream);
	check_pack("<stream:stream xmlns='jabber:client' "
	           "xmlns:stream='http://etherx.jabber.org/streams'>"
	           "<message to='juliet@capulet.lit' type='chat' id='m1' xml:lang='en'>"
	           "<body>t=1 &amp; &lt;w&gt; \xc3\xa9</body><x:y xmlns:x='urn:x' x:a='1' b='2' "
	           "xmlns:z='urn:z' z:c='3'><x:w/><v xmlns=''>\r\n&#13;\t</v>"
	           "<u xmlns='urn:u' a='&#9;&apos;&quot;'/></x:y>"
	           "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
	           "<presence/>"
	           "</stream:stream>");
}

static void test_escaping(void **state)
{
	struct cm_buf b;
	struct cm_xml_node *n = NULL;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_escape_text(&b, "a&b<c>d'e\"f\r\n\t", 15), 0);
	assert_string_equal(b.data, "a&amp;b&lt;c&gt;d'e\"f&#13;\n\t");
	cm_buf_reset(&b);
	assert_int_equal(cm_xml_escape_attr(&b, "a&b<c>d'e\"f\r\n\t", 15), 0);
	assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&apos;e&quot;f&#13;&#10;&#9;");
	cm_buf_reset(&b);

	assert_int_equal(cm_xml_node_new(&n, "message", CM_XML_NS_CLIENT), 0);
	assert_int_equal(cm_xml_node_set_attr(n, "to", "o'brien@example.com/\"x\" & <y>"), 0);
	assert_int_equal(cm_xml_node_add_text(n, "1 < 2 && 3 > 2", 14), 0);
	assert_int_equal(cm_xml_write(&b, n, NULL), 0);
	assert_string_equal(b.data, "<message xmlns='jabber:client' "
	                            "to='o&apos;brien@example.com/&quot;x&quot; &amp; &lt;y&gt;'>"
	                            "1 &lt; 2 &amp;&amp; 3 &gt; 2</message>");
	cm_xml_node_free(n);

	/* all or nothing under a cap */
	cm_buf_free(&b);
	cm_buf_init(&b, 10);
	assert_int_equal(cm_buf_puts(&b, "ab"), 0);
	assert_int_equal(cm_xml_escape_text(&b, "&&&", 3), -ENOBUFS);
	assert_string_equal(b.data, "ab");
	assert_int_equal(cm_xml_node_new(&n, "presence", NULL), 0);
	assert_int_equal(cm_xml_write(&b, n, NULL), -ENOBUFS);
	assert_string_equal(b.data, "ab");
	cm_xml_node_free(n);
	cm_buf_free(&b);
}

/* The escaping of one byte, as a reference written out separately from the writer's scan. */
static const char *ref_escape(char c, bool attr)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '\r':
		return "&#13;";
	case '\'':
		return attr ? "&apos;" : NULL;
	case '"':
		return attr ? "&quot;" : NULL;
	case '\t':
		return attr ? "&#9;" : NULL;
	case '\n':
		return attr ? "&#10;" : NULL;
	default:
		return NULL;
	}
}

/* Long strings are scanned sixteen bytes at a time: every byte that needs escaping, at every
 * offset of a block and in the tail after the last whole block, and runs of them across block
 * boundaries, come out as the byte-by-byte reference says. */
static void test_escaping_long(void **state)
{
	static const char special[] = "&<>\r'\"\t\n";
	char in[80], want[80 * 6 + 1];
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	for (size_t len = 1; len < sizeof(in); len += 7) {
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof(special) - 1; k++) {
				for (int attr = 0; attr < 2; attr++) {
					size_t w = 0;

					memset(in, 'a', len);
					in[pos] = special[k];
					if (pos + 17 < len)
						in[pos + 17] =
						    special[(k + 1) % (sizeof(special) - 1)];
					for (size_t i = 0; i < len; i++) {
						const char *r = ref_escape(in[i], attr);

						if (r) {
							memcpy(want + w, r, strlen(r));
							w += strlen(r);
						} else {
							want[w++] = in[i];
						}
					}
					want[w] = '\0';
					cm_buf_reset(&b);
					assert_int_equal(attr ? cm_xml_escape_attr(&b, in, len)
					                      : cm_xml_escape_text(&b, in, len),
					                 0);
					assert_int_equal(b.len, w);
					assert_memory_equal(b.data, want, w);
				}
			}
		}
	}
	/* nothing to escape in a long string: one copy */
	memset(in, 'z', sizeof(in));
	cm_buf_reset(&b);
	assert_int_equal(cm_xml_escape_attr(&b, in, sizeof(in)), 0);
	assert_int_equal(b.len, sizeof(in));
	assert_memory_equal(b.data, in, sizeof(in));
	cm_buf_free(&b);
}

/* --- builders ------------------------------------------------------------------------------- */

static void test_build_stream(void **state)
{
	struct cm_xml_node *h = NULL, *f = NULL, *c = NULL, *m = NULL;
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_node_new(&h, "stream:stream", CM_XML_NS_STREAM), 0);
	assert_int_equal(cm_xml_node_declare_ns(h, NULL, CM_XML_NS_CLIENT), 0);
	assert_int_equal(cm_xml_node_set_attr(h, "from", "im.example.com"), 0);
	assert_int_equal(cm_xml_node_set_attr(h, "id", "t7AMCin9zjMNwQKDnplntZPIDEI="), 0);
	assert_int_equal(cm_xml_node_set_attr(h, "version", "1.0"), 0);
	assert_int_equal(cm_xml_node_set_attr(h, "xml:lang", "en"), 0);
	assert_int_equal(cm_xml_write_open(&b, h, NULL), 0);
	assert_string_equal(b.data, "<stream:stream xmlns='jabber:client' "
	                            "xmlns:stream='http://etherx.jabber.org/streams' "
	                            "from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI=' "
	                            "version='1.0' xml:lang='en'>");
	cm_buf_reset(&b);

	assert_int_equal(cm_xml_node_new(&f, "stream:features", CM_XML_NS_STREAM), 0);
	assert_int_equal(
	    cm_xml_node_new_child(&c, f, "mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"), 0);
	assert_int_equal(cm_xml_node_new_child(&m, c, "mechanism", NULL), 0);
	assert_int_equal(cm_xml_node_add_text(m, "SCRAM-", 6), 0);
	assert_int_equal(cm_xml_node_add_text(m, "SHA-256", 7), 0);
	assert_ptr_equal(m->children, m->last); /* merged */
	assert_int_equal(cm_xml_node_new_child(NULL, f, "bind", "urn:ietf:params:xml:ns:xmpp-bind"),
	                 0);
	assert_int_equal(cm_xml_write(&b, f, h), 0);
	assert_string_equal(b.data, "<stream:features><mechanisms "
	                            "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-"
	                            "SHA-256</mechanism></mechanisms><bind "
	                            "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
	cm_buf_reset(&b);
	/* a prefixed child inherits the prefix */
	assert_int_equal(cm_xml_node_new_child(&c, f, "error", NULL), 0);
	assert_string_equal(c->prefix, "stream");
	cm_xml_node_free(c);

	assert_int_equal(cm_xml_write_close(&b, h), 0);
	assert_string_equal(b.data, "</stream:stream>");
	cm_xml_node_free(f);
	cm_xml_node_free(h);
	cm_buf_free(&b);
}

static void test_build_edit(void **state)
{
	struct cm_xml_node *iq = NULL, *q = NULL, *copy = NULL, *x = NULL, *other = NULL;
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_node_new(&iq, "iq", CM_XML_NS_CLIENT), 0);
	assert_int_equal(cm_xml_node_set_attr(iq, "type", "get"), 0);
	assert_int_equal(cm_xml_node_set_attr(iq, "id", "1"), 0);
	assert_int_equal(cm_xml_node_set_attr(iq, "type", "result"), 0); /* replaces */
	assert_string_equal(cm_xml_attr(iq, "type"), "result");
	assert_int_equal(cm_xml_node_remove_attr(iq, "id"), 0);
	assert_int_equal(cm_xml_node_remove_attr(iq, "id"), -ENOENT);
	assert_int_equal(cm_xml_node_set_attr_ns(iq, "urn:ext", "e:flag", "1"), 0);
	assert_string_equal(cm_xml_attr_ns(iq, "urn:ext", "flag"), "1");
	assert_null(cm_xml_attr(iq, "flag"));
	assert_int_equal(cm_xml_node_new_child(&q, iq, "query", "jabber:iq:roster"), 0);
	assert_int_equal(cm_xml_node_new_child(&x, q, "x", CM_XML_NS_DATA), 0);
	assert_int_equal(cm_xml_form_add_field(x, "FORM_TYPE", "hidden", "urn:xmpp:push:summary"),
	                 0);
	assert_int_equal(cm_xml_form_add_field(x, "message-count", NULL, "3"), 0);
	assert_string_equal(cm_xml_form_field(x, "message-count"), "3");
	assert_string_equal(cm_xml_form_field(x, "FORM_TYPE"), "urn:xmpp:push:summary");
	assert_int_equal(cm_xml_write(&b, iq, NULL), 0);
	assert_string_equal(b.data,
	                    "<iq xmlns='jabber:client' xmlns:e='urn:ext' type='result' e:flag='1'>"
	                    "<query xmlns='jabber:iq:roster'><x xmlns='jabber:x:data'>"
	                    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary"
	                    "</value></field><field var='message-count'><value>3</value></field>"
	                    "</x></query></iq>");

	/* copy is equal and independent */
	assert_int_equal(cm_xml_node_copy(&copy, iq), 0);
	assert_true(tree_equal(copy, iq));
	assert_null(copy->parent);
	cm_xml_node_free(cm_xml_child(copy, "query", NULL));
	assert_false(tree_equal(copy, iq));
	assert_non_null(cm_xml_child(iq, "query", NULL));
	cm_xml_node_free(copy);

	/* move a subtree */
	cm_xml_node_remove(q);
	assert_null(q->parent);
	assert_null(iq->children);
	assert_int_equal(cm_xml_node_new(&other, "message", CM_XML_NS_CLIENT), 0);
	assert_int_equal(cm_xml_node_add_child(other, q), 0);
	assert_int_equal(cm_xml_node_add_child(iq, q), -EINVAL);    /* not a root */
	assert_int_equal(cm_xml_node_add_child(x, other), -EINVAL); /* a cycle */
	cm_xml_node_free(x);                                        /* detaches from q */
	assert_null(q->children);

	/* invalid input */
	assert_int_equal(cm_xml_node_new(&x, "a b", NULL), -EINVAL);
	assert_int_equal(cm_xml_node_new(&x, "", NULL), -EINVAL);
	assert_int_equal(cm_xml_node_new(&x, "1a", NULL), -EINVAL);
	assert_int_equal(cm_xml_node_new(&x, "p:a", NULL), -EINVAL); /* prefix without ns */
	assert_int_equal(cm_xml_node_new(&x, "xmlns:a", "urn:x"), -EINVAL);
	assert_int_equal(cm_xml_node_new(&x, "a:b:c", "urn:x"), -EINVAL);
	assert_int_equal(cm_xml_node_new(&x, "a", "bad\x01ns"), -EINVAL);
	assert_int_equal(cm_xml_node_set_attr(iq, "to", "a\x01"), -EINVAL);
	assert_int_equal(cm_xml_node_set_attr(iq, "to", "\xc3"), -EINVAL);         /* truncated */
	assert_int_equal(cm_xml_node_set_attr(iq, "to", "\xc0\xaf"), -EINVAL);     /* overlong */
	assert_int_equal(cm_xml_node_set_attr(iq, "to", "\xed\xa0\x80"), -EINVAL); /* surrogate */
	assert_int_equal(cm_xml_node_set_attr(iq, "to", "\xef\xbf\xbe"), -EINVAL); /* U+FFFE */
	assert_int_equal(cm_xml_node_set_attr(iq, "xmlns", "urn:x"), -EINVAL);
	assert_int_equal(cm_xml_node_set_attr(iq, "p:x", "1"), -EINVAL);
	assert_int_equal(cm_xml_node_set_attr_ns(iq, CM_XML_NS_XML, "foo:lang", "1"), -EINVAL);
	assert_int_equal(cm_xml_node_set_attr(iq, "to", NULL), -EINVAL);
	assert_int_equal(cm_xml_node_add_text(iq, "\0", 1), -EINVAL);
	assert_int_equal(cm_xml_node_add_text(iq, "ok\xf4\x90\x80\x80", 6), -EINVAL); /* >10FFFF */
	assert_int_equal(cm_xml_node_declare_ns(iq, "xml", "urn:x"), -EINVAL);
	assert_int_equal(cm_xml_node_declare_ns(iq, "p", ""), -EINVAL);
	assert_int_equal(cm_xml_node_add_text(iq, "\t\r\n\xf0\x9f\x98\x80", 7), 0);
	assert_null(iq->attrs->next->next); /* nothing was added by the failures */

	/* conflicting declarations cannot be written */
	assert_int_equal(cm_xml_node_declare_ns(other, NULL, "urn:other"), 0);
	cm_buf_reset(&b);
	assert_int_equal(cm_xml_write(&b, other, NULL), -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(cm_xml_node_declare_ns(other, NULL, CM_XML_NS_CLIENT), 0); /* replaces */
	assert_int_equal(cm_xml_write(&b, other, NULL), 0);
	assert_string_equal(b.data, "<message xmlns='jabber:client'><query "
	                            "xmlns='jabber:iq:roster'/></message>");
	/* undeclared: written in a client stream's scope without it; alone, it is declared */
	{
		struct cm_xml_node *scope = NULL;

		assert_int_equal(cm_xml_node_new(&scope, "stream:stream", CM_XML_NS_STREAM), 0);
		assert_int_equal(cm_xml_node_declare_ns(scope, NULL, CM_XML_NS_CLIENT), 0);
		cm_buf_reset(&b);
		assert_int_equal(cm_xml_write(&b, other, scope), 0);
		assert_non_null(strstr(b.data, "<message xmlns='jabber:client'>"));
		cm_xml_node_undeclare_ns(other, NULL);
		cm_xml_node_undeclare_ns(other, "absent"); /* nothing to do */
		cm_buf_reset(&b);
		assert_int_equal(cm_xml_write(&b, other, scope), 0);
		assert_string_equal(b.data, "<message><query xmlns='jabber:iq:roster'/></message>");
		cm_buf_reset(&b);
		assert_int_equal(cm_xml_write(&b, other, NULL), 0);
		assert_non_null(strstr(b.data, "<message xmlns='jabber:client'>"));
		cm_xml_node_free(scope);
	}

	cm_xml_node_free(other);
	cm_xml_node_free(iq);
	cm_xml_node_free(NULL);
	cm_buf_free(&b);
}

/* A stanza in no namespace inside a default-namespaced parent needs xmlns=''. */
static void test_namespace_edge(void **state)
{
	struct cm_xml_node *a = NULL, *c = NULL;
	struct cm_buf b;
	struct rec r;

	(void)state;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_node_new(&a, "a", "urn:a"), 0);
	assert_int_equal(cm_xml_node_new_child(&c, a, "b", ""), 0);
	assert_int_equal(cm_xml_node_new_child(&c, c, "p:c", "urn:p"), 0);
	assert_int_equal(cm_xml_node_set_attr_ns(c, "urn:p", "p:x", "1"), 0);
	assert_int_equal(cm_xml_node_set_attr_ns(c, "urn:q", "q:y", "2"), 0);
	assert_int_equal(cm_xml_node_new_child(NULL, c, "d", NULL), 0);
	assert_int_equal(cm_xml_write(&b, a, NULL), 0);
	assert_string_equal(b.data, "<a xmlns='urn:a'><b xmlns=''><p:c xmlns:p='urn:p' "
	                            "xmlns:q='urn:q' p:x='1' q:y='2'><p:d/></p:c></b></a>");
	/* same prefix, two namespaces on one element */
	assert_int_equal(cm_xml_node_set_attr_ns(c, "urn:other", "p:z", "3"), 0);
	assert_int_equal(cm_xml_write(&b, a, NULL), -EINVAL);
	cm_xml_node_free(a);

	/* unbound prefix, duplicate attributes: not well-formed */
	parse(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><x:a/>",
	      -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_not_well_formed);
	rec_free(&r);
	parse(&r,
	      "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"
	      "<a xmlns:p='urn:x' xmlns:q='urn:x' p:b='1' q:b='2'/>",
	      -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_not_well_formed);
	rec_free(&r);
	cm_buf_free(&b);
}

/* --- hostile input -------------------------------------------------------------------------- */

static void test_restricted(void **state)
{
	(void)state;
	expect_error("<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR,
	             cm_xml_err_restricted_xml);
	expect_error("<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]>"
	             "<lolz>&lol2;</lolz>",
	             cm_xml_err_restricted_xml);
	expect_error("<!DOCTYPE x SYSTEM 'file:///etc/passwd'>" HDR, cm_xml_err_restricted_xml);
	expect_error(HDR "<message>&xxe;</message>", cm_xml_err_restricted_xml);
	expect_error(HDR "<message to='&xxe;'/>", cm_xml_err_restricted_xml);
	expect_error("<?xml-stylesheet href='a'?>" HDR, cm_xml_err_restricted_xml);
	expect_error(HDR "<message><?php x?></message>", cm_xml_err_restricted_xml);
	expect_error(HDR "<?php x?>", cm_xml_err_restricted_xml);
	expect_error("<!-- hi -->" HDR, cm_xml_err_restricted_xml);
	expect_error(HDR "<message><!-- hi --></message>", cm_xml_err_restricted_xml);
	expect_error(HDR "<!---->", cm_xml_err_restricted_xml);
	expect_error("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR,
	             cm_xml_err_unsupported_encoding);
	expect_error("<?xml version='1.0' encoding='UTF-16'?>" HDR,
	             cm_xml_err_unsupported_encoding);
	expect_error("\xff\xfe<\x01", cm_xml_err_unsupported_encoding);
	expect_error("\xfe\xff", cm_xml_err_unsupported_encoding);
	expect_error("<\x01", cm_xml_err_not_well_formed);
	{
		struct rec r;

		/* UTF-16 without a BOM: "<" then NUL */
		assert_int_equal(rec_init(&r, NULL), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, "<\0s\0", 4), -EBADMSG);
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_unsupported_encoding);
		rec_free(&r);
		assert_int_equal(rec_init(&r, NULL), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, "\0<\0s", 4), -EBADMSG);
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_unsupported_encoding);
		rec_free(&r);
		/* a NUL later is plain not-well-formed */
		assert_int_equal(rec_init(&r, NULL), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, HDR "<a>\0</a>", sizeof(HDR) + 7),
		                 -EBADMSG);
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_not_well_formed);
		rec_free(&r);
	}
	expect_error(HDR "<message><body>\xc3\x28</body></message>", cm_xml_err_not_well_formed);
	expect_error(HDR "<message><body>\xed\xa0\x80</body></message>",
	             cm_xml_err_not_well_formed);
	expect_error(HDR "<message><body>\xc0\xbc</body></message>", cm_xml_err_not_well_formed);
	expect_error(HDR "<message><body>&#0;</body></message>", cm_xml_err_not_well_formed);
	expect_error(HDR "<message><body>\x01</body></message>", cm_xml_err_not_well_formed);
	expect_error(HDR "<message></presence>", cm_xml_err_not_well_formed);
	expect_error(HDR "<message a='1' a='2'/>", cm_xml_err_not_well_formed);
	expect_error(HDR "text<message/>", cm_xml_err_bad_format);
	expect_error("<stream:stream xmlns:stream='urn:wrong'>", cm_xml_err_invalid_namespace);
	expect_error("<stream xmlns='jabber:client'>", cm_xml_err_invalid_namespace);
	expect_error("<foo xmlns='http://etherx.jabber.org/streams'>", cm_xml_err_bad_format);
	expect_error("junk <", cm_xml_err_not_well_formed);
	expect_error(HDR "</stream:stream><message/>", cm_xml_err_not_well_formed);
}

static void test_restricted_cdata_and_space(void **state)
{
	struct rec r;

	(void)state;
	/* whitespace around the header and keepalives are fine; the XML declaration too */
	parse(&r,
	      "<?xml version='1.0' encoding='utf-8'?>\r\n " HDR " \n\t <a/> </stream:stream> \n",
	      0);
	assert_int_equal(r.nstanzas, 1);
	assert_int_equal(r.closes, 1);
	assert_int_equal(feed_str(&r, "\n\n"), 0);
	assert_int_equal(feed_str(&r, " x"), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_not_well_formed);
	rec_free(&r);

	/* junk after the end, whatever the chunking (expat alone answers differently) */
	const char *doc = HDR "<a/></stream:stream> \n:junk\xe6>";
	for (size_t cut = 0; cut <= strlen(doc); cut++) {
		assert_int_equal(rec_init(&r, NULL), 0);
		int rc = cm_xml_parser_feed(r.p, doc, cut);

		if (!rc)
			rc = cm_xml_parser_feed(r.p, doc + cut, strlen(doc) - cut);
		assert_int_equal(rc, -EBADMSG);
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_not_well_formed);
		assert_int_equal(r.closes, 1);
		rec_free(&r);
	}
}

static void test_limits(void **state)
{
	struct cm_xml_parser_cfg cfg = base_cfg;
	struct rec r;
	struct cm_buf b;
	const char *cond;

	(void)state;
	cm_buf_init(&b, 0);
	cfg.max_stanza = 200;
	cfg.max_depth = 3;
	cfg.max_attrs = 4;
	cfg.max_nodes = 6;

	/* at each limit: fine */
	assert_int_equal(rec_init(&r, &cfg), 0);
	assert_int_equal(feed_str(&r, HDR "<a><b><c>t</c></b></a>"
	                                  "<a w='1' x='2' y='3' z='4'/>"
	                                  "<a><b/><b/><b/>t<b/></a>"),
	                 0);
	/* many keepalives are not one big stanza */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(feed_str(&r, " "), 0);
	assert_int_equal(r.nstanzas, 3);
	rec_free(&r);

	const char *const over[] = {
	    HDR "<a><b><c><d/></c></b></a>",          /* depth */
	    HDR "<a v='1' w='1' x='2' y='3' z='4'/>", /* attributes */
	    HDR "<a xmlns:p='urn:1' xmlns:q='urn:2' xmlns:r='urn:3' v='1' w='2'/>",
	    HDR "<a><b/><b/><b/><b/><b/><b/></a>", /* nodes */
	    HDR "<a><b/>t<b/>t<b/>t</a>",          /* nodes, text included */
	};
	for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		assert_int_equal(rec_init(&r, &cfg), 0);
		assert_int_equal(feed_str(&r, over[i]), -EBADMSG);
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_policy_violation);
		rec_free(&r);
	}

	/* size: a stanza in one piece, a stanza in small pieces, a token that never ends, a huge
	 * header */
	cm_buf_reset(&b);
	cm_buf_puts(&b, HDR "<message><body>");
	for (int i = 0; i < 300; i++)
		cm_buf_puts(&b, "x");
	cm_buf_puts(&b, "</body></message>");
	for (int mode = 0; mode < 2; mode++) {
		assert_int_equal(rec_init(&r, &cfg), 0);
		if (mode == 0) {
			assert_int_equal(cm_xml_parser_feed(r.p, b.data, b.len), -EBADMSG);
		} else {
			int rc = 0;

			for (size_t i = 0; i < b.len && !rc; i++)
				rc = cm_xml_parser_feed(r.p, b.data + i, 1);
			assert_int_equal(rc, -EBADMSG);
		}
		assert_ptr_equal(cm_xml_parser_error(r.p, &cond), cm_xml_err_policy_violation);
		rec_free(&r);
	}
	assert_int_equal(rec_init(&r, &cfg), 0);
	assert_int_equal(feed_str(&r, HDR "<message to='"), 0);
	for (int i = 0; i < 18; i++)
		assert_int_equal(feed_str(&r, "xxxxxxxxxx"), 0);
	assert_int_equal(feed_str(&r, "xxxxxxxxxx"), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, &cond), cm_xml_err_policy_violation);
	assert_non_null(strstr(cond, "200 bytes"));
	rec_free(&r);
	cm_buf_reset(&b);
	cm_buf_puts(&b, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='");
	for (int i = 0; i < 200; i++)
		cm_buf_puts(&b, "x");
	cm_buf_puts(&b, "'>");
	assert_int_equal(rec_init(&r, &cfg), 0);
	assert_int_equal(cm_xml_parser_feed(r.p, b.data, b.len), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_policy_violation);
	assert_int_equal(r.opens, 0);
	rec_free(&r);

	/* defaults: a 300 KiB body is refused, even handed over in one buffer */
	cm_buf_reset(&b);
	cm_buf_puts(&b, HDR "<message><body>");
	for (int i = 0; i < 300 * 1024 / 16; i++)
		cm_buf_puts(&b, "0123456789abcdef");
	cm_buf_puts(&b, "</body></message>");
	assert_int_equal(rec_init(&r, NULL), 0);
	assert_int_equal(cm_xml_parser_feed(r.p, b.data, b.len), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_policy_violation);
	rec_free(&r);
	/* and 33 levels of nesting */
	cm_buf_reset(&b);
	cm_buf_puts(&b, HDR);
	for (int i = 0; i < 33; i++)
		cm_buf_puts(&b, "<a>");
	assert_int_equal(rec_init(&r, NULL), 0);
	assert_int_equal(cm_xml_parser_feed(r.p, b.data, b.len), -EBADMSG);
	assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_policy_violation);
	rec_free(&r);
	cm_buf_free(&b);
}

/* --- restarts and control flow -------------------------------------------------------------- */

static void test_reset(void **state)
{
	struct rec r;
	const char *second = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	                     "xmlns:stream='http://etherx.jabber.org/streams' to='b.example'>"
	                     "<iq type='set' id='2'/>";

	(void)state;
	/* SASL success: the client's new header follows in the same chunk */
	assert_int_equal(rec_init(&r, NULL), 0);
	r.reset_after = "success";
	assert_int_equal(
	    feed_str(&r,
	             "<?xml version='1.0'?>" HDR
	             "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><?xml version='1.0'?>"
	             "<stream:stream xmlns='jabber:client' "
	             "xmlns:stream='http://etherx.jabber.org/streams' to='b.example'><iq id='2'/>"),
	    0);
	assert_int_equal(r.opens, 2);
	assert_int_equal(r.nstanzas, 2);
	assert_string_equal(cm_xml_attr(cm_xml_parser_header(r.p), "to"), "b.example");
	assert_string_equal(r.stanzas[1]->name, "iq");
	rec_free(&r);

	/* the same, split at every byte */
	for (size_t cut = 0; cut < strlen(HDR) + 60; cut++) {
		char buf[1024];
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s<success/>%s", HDR, second);

		assert_int_equal(rec_init(&r, NULL), 0);
		r.reset_after = "success";
		assert_int_equal(cm_xml_parser_feed(r.p, buf, cut), 0);
		assert_int_equal(cm_xml_parser_feed(r.p, buf + cut, n - cut), 0);
		assert_int_equal(r.opens, 2);
		assert_int_equal(r.nstanzas, 2);
		rec_free(&r);
	}

	/* reset from outside, after an error: the error is forgotten, memory kept */
	assert_int_equal(rec_init(&r, NULL), 0);
	assert_int_equal(feed_str(&r, HDR "<!-- x -->"), -EBADMSG);
	assert_int_equal(cm_xml_parser_reset(r.p), 0);
	assert_null(cm_xml_parser_error(r.p, NULL));
	assert_null(cm_xml_parser_header(r.p));
	assert_int_equal(feed_str(&r, second), 0);
	assert_int_equal(r.opens, 2);
	/* in the middle of a stanza */
	assert_int_equal(feed_str(&r, "<message><body>hal"), 0);
	assert_int_equal(cm_xml_parser_reset(r.p), 0);
	assert_int_equal(feed_str(&r, second), 0);
	assert_int_equal(r.opens, 3);
	assert_int_equal(r.nstanzas, 2);
	rec_free(&r);
}

static void test_stop_and_reentry(void **state)
{
	struct rec r;

	(void)state;
	assert_int_equal(rec_init(&r, NULL), 0);
	r.stop_rc = -ECONNRESET;
	assert_int_equal(feed_str(&r, HDR "<a/><b/>"), -ECONNRESET);
	assert_int_equal(r.nstanzas, 1); /* <b/> was dropped */
	assert_int_equal(feed_str(&r, "<c/>"), -EPIPE);
	assert_null(cm_xml_parser_error(r.p, NULL));
	r.stop_rc = 0;
	assert_int_equal(cm_xml_parser_reset(r.p), 0);
	assert_int_equal(feed_str(&r, HDR "<c/>"), 0);
	assert_int_equal(r.nstanzas, 2);

	r.feed_inside = 1;
	assert_int_equal(cm_xml_parser_feeding(r.p), 0);
	assert_int_equal(feed_str(&r, "<d/>"), 0);
	assert_int_equal(r.feed_rc, -EBUSY);
	/* inside the callback the feed was under way (so nobody hands the parser over), after it
	 * not */
	assert_int_equal(r.feeding, 1);
	assert_int_equal(cm_xml_parser_feeding(r.p), 0);
	assert_int_equal(feed_str(&r, ""), 0);
	rec_free(&r);

	/* required callbacks */
	struct cm_xml_parser_cfg cfg = base_cfg;
	struct cm_xml_parser *p = NULL;

	cfg.stanza_cb = NULL;
	assert_int_equal(cm_xml_parser_alloc(&p, &cfg), -EINVAL);
	cm_xml_parser_free(NULL);
}

/* A body larger than the kept text buffer, then small stanzas: content intact. */
static void test_large_text(void **state)
{
	struct cm_buf b;
	struct rec r;

	(void)state;
	cm_buf_init(&b, 0);
	cm_buf_puts(&b, HDR "<message><body>");
	for (int i = 0; i < 1000; i++)
		cm_buf_puts(&b, "0123456789\xc3\xa9");
	cm_buf_puts(&b, "</body></message><message><body>small</body></message>");
	assert_int_equal(rec_init(&r, NULL), 0);
	for (size_t off = 0; off < b.len; off += 1000)
		assert_int_equal(
		    cm_xml_parser_feed(r.p, b.data + off, b.len - off < 1000 ? b.len - off : 1000),
		    0);
	assert_int_equal(r.nstanzas, 2);
	assert_int_equal(strlen(cm_xml_text(cm_xml_child(r.stanzas[0], "body", NULL))), 12000);
	assert_string_equal(cm_xml_text(cm_xml_child(r.stanzas[1], "body", NULL)), "small");
	rec_free(&r);
	cm_buf_free(&b);
}

/* An empty root: open and close are both delivered, in order. */
static void test_empty_stream(void **state)
{
	struct rec r;

	(void)state;
	parse(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", 0);
	assert_int_equal(r.opens, 1);
	assert_int_equal(r.closes, 1);
	assert_null(cm_xml_ns_lookup(r.header, NULL));
	rec_free(&r);
}

/* --- allocation failures -------------------------------------------------------------------- */

static int parse_scenario(void *arg)
{
	const char *doc = arg;
	struct rec r;
	int err, opens, n;

	err = rec_init(&r, NULL);
	if (err)
		return err;
	r.reset_after = "success";
	err = cm_xml_parser_feed(r.p, doc, strlen(doc) / 2);
	/* parked between the halves where it can be: unparking allocates too */
	(void)cm_xml_parser_park(r.p);
	if (!err)
		err = cm_xml_parser_feed(r.p, doc + strlen(doc) / 2, strlen(doc) - strlen(doc) / 2);
	if (err == -EBADMSG) {
		/* only a memory failure may end the stream here */
		assert_ptr_equal(cm_xml_parser_error(r.p, NULL), cm_xml_err_internal_server_error);
		err = -ENOMEM;
	}
	opens = r.opens;
	n = r.nstanzas;
	rec_free(&r);
	if (!err && (opens < 2 || n < 8))
		fail_msg("all allocations succeeded but only %d stanzas", n);
	return err;
}

static int build_scenario(void *arg)
{
	struct cm_xml_node *iq = NULL, *ps = NULL, *x = NULL, *copy = NULL;
	struct cm_buf b;
	int err;

	(void)arg;
	cm_buf_init(&b, 0);
	err = cm_xml_node_new(&iq, "iq", CM_XML_NS_CLIENT);
	if (err)
		goto out;
	err = cm_xml_node_set_attr(iq, "type", "set");
	if (!err)
		err = cm_xml_node_set_attr(iq, "xml:lang", "en");
	if (!err)
		err = cm_xml_node_new_child(&ps, iq, "pubsub", "http://jabber.org/protocol/pubsub");
	if (!err)
		err = cm_xml_node_new_child(&x, ps, "x", CM_XML_NS_DATA);
	if (!err)
		err = cm_xml_form_add_field(x, "FORM_TYPE", "hidden", "urn:xmpp:push:summary");
	if (!err)
		err = cm_xml_node_add_text(ps, "a", 1);
	if (!err)
		err = cm_xml_node_add_text(ps, "b", 1);
	if (!err)
		err = cm_xml_node_declare_ns(iq, "p", "urn:p");
	if (!err)
		err = cm_xml_node_copy(&copy, iq);
	if (!err)
		err = cm_xml_write(&b, copy, NULL);
	if (!err && !strstr(b.data, "<value>urn:xmpp:push:summary</value>"))
		err = -EIO;
out:
	cm_xml_node_free(copy);
	cm_xml_node_free(iq);
	cm_buf_free(&b);
	return err;
}

static void test_alloc_failures(void **state)
{
	char doc[sizeof(client_stream) + 256];

	(void)state;
	snprintf(doc, sizeof(doc), "%s<success/>%s", HDR, client_stream);
	/* expat allocates through the wrapped malloc too, so this covers its failures */
	assert_true(test_alloc_sweep(parse_scenario, doc, 5000) > 50);
	assert_true(test_alloc_sweep(build_scenario, NULL, 1000) > 1);
}

/* A stanza moves from a component's namespace to the client's: its own elements follow, a
 * payload in another namespace stays where it is. */
static void test_rename_ns(void **state)
{
	struct cm_xml_node *msg, *body, *x;
	struct cm_buf b;

	(void)state;
	assert_int_equal(cm_xml_node_new(&msg, "message", CM_XML_NS_COMPONENT), 0);
	assert_int_equal(cm_xml_node_new_child(&body, msg, "body", CM_XML_NS_COMPONENT), 0);
	assert_int_equal(cm_xml_node_new_child(&x, msg, "x", "urn:example:other"), 0);
	cm_xml_node_rename_ns(msg, CM_XML_NS_COMPONENT, CM_XML_NS_CLIENT);
	assert_string_equal(msg->ns, CM_XML_NS_CLIENT);
	assert_string_equal(body->ns, CM_XML_NS_CLIENT);
	assert_string_equal(x->ns, "urn:example:other");
	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_write(&b, msg, NULL), 0);
	assert_non_null(strstr(b.data, "jabber:client"));
	assert_null(strstr(b.data, "jabber:component:accept"));
	cm_buf_free(&b);
	cm_xml_node_rename_ns(NULL, "a", "b"); /* harmless */
	cm_xml_node_free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rename_ns),
	    cmocka_unit_test(test_exchange),
	    cmocka_unit_test(test_server_side),
	    cmocka_unit_test(test_split_every_byte),
	    cmocka_unit_test(test_park),
	    cmocka_unit_test(test_component),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_pack),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_escaping_long),
	    cmocka_unit_test(test_build_stream),
	    cmocka_unit_test(test_build_edit),
	    cmocka_unit_test(test_namespace_edge),
	    cmocka_unit_test(test_restricted),
	    cmocka_unit_test(test_restricted_cdata_and_space),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_stop_and_reentry),
	    cmocka_unit_test(test_empty_stream),
	    cmocka_unit_test(test_large_text),
	    cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
