/* test_extdisco.c - XEP-0215 answers and their TURN REST credentials. */
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

#include "cm/crypto.h"
#include "xmpp-core/src/extdisco.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/xc.h"

#define USER "alice@localhost"
#define NOW  1700000000

static char *udp_tcp[] = {"udp", "tcp"};

/* One icicle: STUN, TURN over UDP and TCP on 3478, TURNS on 5349; lifetime one day; the secret
 * file's first line after a comment and a blank line is "s3cret". */
static struct xc_turn_server_config servers[] = {
    {.host = "turn.example.com",
     .port = 3478,
     .transports = {.v = udp_tcp, .n = 2},
     .stun = true,
     .turns_port = 5349},
};

static unsigned char secret_text[] = "# rotated 2026-01\n\n  s3cret \r\nolder\n";

static struct xc_extdisco_config cfg = {
    .secret_file = {.path = "turn-secret", .data = secret_text, .len = sizeof(secret_text) - 1},
    .lifetime = 86400000,
    .servers = {.items = servers, .n = 1},
};

/* The answer to the IQ child written as XML; *cond on refusal. */
static struct cm_xml_node *ask(const struct xc_extdisco *x, const char *child, const char **cond)
{
	char xml[512];
	struct cm_xml_node *iq, *res = NULL;
	const struct cm_xml_node *q = NULL;

	snprintf(xml, sizeof(xml), "<iq type='get' id='1'>%s</iq>", child);
	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &iq), 0);
	for (const struct cm_xml_node *n = iq->children; n; n = n->next)
		if (n->kind == CM_XML_ELEMENT)
			q = n;
	assert_non_null(q);
	assert_int_equal(xc_extdisco_answer(x, q, USER, strlen(USER), NOW, &res, cond), 0);
	cm_xml_node_free(iq);
	return res;
}

static size_t count(const struct cm_xml_node *res, const char *type)
{
	size_t n = 0;

	for (const struct cm_xml_node *s = cm_xml_child(res, "service", XC_NS_EXTDISCO); s;
	     s = cm_xml_child_next(s, "service", XC_NS_EXTDISCO))
		if (!type || strcmp(cm_xml_attr(s, "type"), type) == 0)
			n++;
	return n;
}

static void test_credentials_vector(void **state)
{
	struct cm_buf name, pw;

	(void)state;
	cm_buf_init(&name, 0);
	cm_buf_init(&pw, 0);
	/* base64(HMAC-SHA1("s3cret", "1700000000:alice@localhost")), computed with Python's hmac */
	assert_int_equal(xc_extdisco_credentials("s3cret", 6, USER, strlen(USER), NOW, &name, &pw),
	                 0);
	assert_string_equal(name.data, "1700000000:" USER);
	assert_string_equal(pw.data, "JmOvEuFTDA6w6K9QXNFPR8Za6bU=");
	cm_buf_free(&name);
	cm_buf_free(&pw);
}

static void test_services(void **state)
{
	struct xc_extdisco *x;
	struct cm_xml_node *res;
	const struct cm_xml_node *s;
	const char *cond;
	char err[256];

	(void)state;
	assert_int_equal(xc_extdisco_alloc(&x, &cfg, NULL, err, sizeof(err)), 0);
	assert_true(xc_extdisco_enabled(x));
	res = ask(x, "<services xmlns='urn:xmpp:extdisco:2'/>", &cond);
	assert_non_null(res);
	assert_string_equal(res->name, "services");
	assert_int_equal(count(res, NULL), 4);
	assert_int_equal(count(res, "stun"), 1);
	assert_int_equal(count(res, "turn"), 2);
	assert_int_equal(count(res, "turns"), 1);
	for (s = cm_xml_child(res, "service", XC_NS_EXTDISCO); s;
	     s = cm_xml_child_next(s, "service", XC_NS_EXTDISCO)) {
		const char *type = cm_xml_attr(s, "type");

		assert_string_equal(cm_xml_attr(s, "host"), "turn.example.com");
		if (strcmp(type, "stun") == 0) {
			/* STUN needs no credentials */
			assert_string_equal(cm_xml_attr(s, "port"), "3478");
			assert_null(cm_xml_attr(s, "username"));
			assert_null(cm_xml_attr(s, "password"));
			continue;
		}
		assert_string_equal(cm_xml_attr(s, "port"),
		                    strcmp(type, "turns") ? "3478" : "5349");
		/* the secret is the file's first real line, trimmed: "s3cret"; one day on */
		assert_string_equal(cm_xml_attr(s, "username"), "1700086400:" USER);
		assert_string_equal(cm_xml_attr(s, "expires"), "2023-11-15T22:13:20Z");
		assert_string_equal(cm_xml_attr(s, "restricted"), "1");
		assert_non_null(cm_xml_attr(s, "transport"));
	}
	s = cm_xml_child(res, "service", XC_NS_EXTDISCO);
	s = cm_xml_child_next(s, "service", XC_NS_EXTDISCO);
	assert_string_equal(cm_xml_attr(s, "transport"), "udp");
	{
		struct cm_buf name, pw;

		cm_buf_init(&name, 0);
		cm_buf_init(&pw, 0);
		assert_int_equal(xc_extdisco_credentials("s3cret", 6, USER, strlen(USER),
		                                         NOW + 86400, &name, &pw),
		                 0);
		assert_string_equal(cm_xml_attr(s, "password"), pw.data);
		cm_buf_free(&name);
		cm_buf_free(&pw);
	}
	cm_xml_node_free(res);

	/* a type narrows; an unknown type matches nothing */
	res = ask(x, "<services xmlns='urn:xmpp:extdisco:2' type='turn'/>", &cond);
	assert_int_equal(count(res, NULL), 2);
	assert_int_equal(count(res, "turn"), 2);
	cm_xml_node_free(res);
	res = ask(x, "<services xmlns='urn:xmpp:extdisco:2' type='turns'/>", &cond);
	assert_int_equal(count(res, NULL), 1);
	cm_xml_node_free(res);
	res = ask(x, "<services xmlns='urn:xmpp:extdisco:2' type='ftp'/>", &cond);
	assert_non_null(res);
	assert_int_equal(count(res, NULL), 0);
	cm_xml_node_free(res);
	xc_extdisco_free(x);
}

static void test_credentials_request(void **state)
{
	struct xc_extdisco *x;
	struct cm_xml_node *res;
	const char *cond;
	char err[256];

	(void)state;
	assert_int_equal(xc_extdisco_alloc(&x, &cfg, NULL, err, sizeof(err)), 0);
	res = ask(x,
	          "<credentials xmlns='urn:xmpp:extdisco:2'>"
	          "<service host='turn.example.com' type='turn' port='3478' transport='tcp'/>"
	          "</credentials>",
	          &cond);
	assert_non_null(res);
	assert_string_equal(res->name, "credentials");
	assert_int_equal(count(res, NULL), 1);
	assert_string_equal(cm_xml_attr(cm_xml_child(res, "service", XC_NS_EXTDISCO), "transport"),
	                    "tcp");
	cm_xml_node_free(res);
	/* host and type only: both TURN transports */
	res = ask(x,
	          "<credentials xmlns='urn:xmpp:extdisco:2'>"
	          "<service host='turn.example.com' type='turn'/></credentials>",
	          &cond);
	assert_int_equal(count(res, "turn"), 2);
	cm_xml_node_free(res);
	/* nothing of the kind */
	res = ask(x,
	          "<credentials xmlns='urn:xmpp:extdisco:2'>"
	          "<service host='other.example.com' type='turn'/></credentials>",
	          &cond);
	assert_null(res);
	assert_string_equal(cond, "item-not-found");
	res = ask(x,
	          "<credentials xmlns='urn:xmpp:extdisco:2'>"
	          "<service host='turn.example.com' type='turn' port='9'/></credentials>",
	          &cond);
	assert_null(res);
	assert_string_equal(cond, "item-not-found");
	/* a request without host or type, or no service at all */
	res =
	    ask(x, "<credentials xmlns='urn:xmpp:extdisco:2'><service type='turn'/></credentials>",
	        &cond);
	assert_null(res);
	assert_string_equal(cond, "bad-request");
	res = ask(x, "<credentials xmlns='urn:xmpp:extdisco:2'/>", &cond);
	assert_null(res);
	assert_string_equal(cond, "bad-request");
	res = ask(x, "<other xmlns='urn:xmpp:extdisco:2'/>", &cond);
	assert_null(res);
	assert_string_equal(cond, "bad-request");
	xc_extdisco_free(x);
}

static void test_bad_secret(void **state)
{
	static unsigned char blank[] = "# nothing here\n\n   \n";
	struct xc_extdisco_config c = cfg;
	struct xc_extdisco *x;
	char err[256];

	(void)state;
	c.secret_file.data = blank;
	c.secret_file.len = sizeof(blank) - 1;
	assert_int_equal(xc_extdisco_alloc(&x, &c, NULL, err, sizeof(err)), -ENODATA);
	assert_null(x);
	assert_non_null(strstr(err, "turn-secret"));
	/* no servers: off, and no secret needed */
	c.servers.n = 0;
	assert_int_equal(xc_extdisco_alloc(&x, &c, NULL, err, sizeof(err)), 0);
	assert_false(xc_extdisco_enabled(x));
	xc_extdisco_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_credentials_vector),
	    cmocka_unit_test(test_services),
	    cmocka_unit_test(test_credentials_request),
	    cmocka_unit_test(test_bad_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
