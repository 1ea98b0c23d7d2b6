/* test_caps.c - XEP-0115 verification strings (caps.h): both of the XEP's examples (5.2, and
 * 5.3 with two languages and a software-information form), in any order, answers that 5.4
 * calls ill-formed, forms that do not count, the server's own hash with and without its
 * contact addresses (XEP-0157), and a clean failure without memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/alloc.h"
#include "xmpp-core/src/caps.h"
#include "xmpp-core/src/iq.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/xc.h"

#define Q      "<query xmlns='http://jabber.org/protocol/disco#info'>"
#define PSI    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
#define PSI_EL "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"
#define FEATS                                                                                      \
	"<feature var='http://jabber.org/protocol/caps'/>"                                         \
	"<feature var='http://jabber.org/protocol/disco#info'/>"                                   \
	"<feature var='http://jabber.org/protocol/disco#items'/>"                                  \
	"<feature var='http://jabber.org/protocol/muc'/>"
#define SOFT_TYPE                                                                                  \
	"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value>"      \
	"</field>"
#define SOFT_FIELDS                                                                                \
	"<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>" \
	"<field var='os'><value>Mac</value></field>"                                               \
	"<field var='software_version'><value>0.11</value></field>"                                \
	"<field var='os_version'><value>10.5.1</value></field>"                                    \
	"<field var='software'><value>Psi</value></field>"
#define SOFT "<x xmlns='jabber:x:data' type='result'>" SOFT_TYPE SOFT_FIELDS "</x>"

/* The verification string of xml, or the error as "E<n>". */
static const char *ver_of(const char *xml)
{
	static char out[64];
	struct cm_xml_node *q = NULL;
	int r;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &q), 0);
	r = xc_caps_ver(q, out, sizeof(out));
	if (r)
		snprintf(out, sizeof(out), "E%d", -r);
	cm_xml_node_free(q);
	return out;
}

static void test_examples(void **state)
{
	char einval[8], e2big[8], once[64];

	(void)state;
	snprintf(einval, sizeof(einval), "E%d", EINVAL);
	snprintf(e2big, sizeof(e2big), "E%d", E2BIG);
	/* 5.2, its features in another order */
	assert_string_equal(ver_of(Q "<feature var='http://jabber.org/protocol/muc'/>"
	                             "<identity category='client' name='Exodus 0.9.1' type='pc'/>"
	                             "<feature var='http://jabber.org/protocol/disco#info'/>"
	                             "<feature var='http://jabber.org/protocol/caps'/>"
	                             "<feature var='http://jabber.org/protocol/disco#items'/>"
	                             "</query>"),
	                    "QgayPKawpkPSDYmwT/WM94uAlu0=");
	/* 5.3: two identities in two languages and a form, its fields and values out of order */
	assert_string_equal(ver_of(Q PSI PSI_EL FEATS SOFT "</query>"),
	                    "q07IKJEyjvHSyhy//CH0CxmKi8w=");
	assert_string_equal(ver_of(Q SOFT FEATS PSI_EL PSI "</query>"),
	                    "q07IKJEyjvHSyhy//CH0CxmKi8w=");
	/* a form without a hidden FORM_TYPE does not count (5.4 3.6) */
	assert_string_equal(
	    ver_of(
	        Q PSI PSI_EL FEATS SOFT
	        "<x xmlns='jabber:x:data' type='result'><field var='a'><value>b</value></field></x>"
	        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>u</value>"
	        "</field></x></query>"),
	    "q07IKJEyjvHSyhy//CH0CxmKi8w=");
	/* ill-formed (5.4 3.3 to 3.5): never shared */
	assert_string_equal(ver_of(Q PSI PSI FEATS "</query>"), einval);
	assert_string_equal(
	    ver_of(Q PSI FEATS "<feature var='http://jabber.org/protocol/muc'/></query>"), einval);
	assert_string_equal(ver_of(Q PSI FEATS SOFT SOFT "</query>"), einval);
	assert_string_equal(ver_of(Q PSI FEATS
	                           "<x xmlns='jabber:x:data' type='result'>"
	                           "<field var='FORM_TYPE' type='hidden'><value>a</value>"
	                           "<value>b</value></field></x></query>"),
	                    einval);
	assert_string_equal(ver_of(Q PSI FEATS "<x xmlns='jabber:x:data' type='result'>" SOFT_TYPE
	                                       "<field var='os'/><field var='os'/></x></query>"),
	                    einval);
	/* a FORM_TYPE field twice is; one value given twice alike is not */
	assert_string_equal(ver_of(Q PSI FEATS
	                           "<x xmlns='jabber:x:data' type='result'>" SOFT_TYPE SOFT_TYPE
	                           "</x></query>"),
	                    einval);
	snprintf(once, sizeof(once), "%s",
	         ver_of(Q PSI FEATS "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' "
	                            "type='hidden'><value>u</value></field></x></query>"));
	assert_string_equal(ver_of(Q PSI FEATS
	                           "<x xmlns='jabber:x:data' type='result'>"
	                           "<field var='FORM_TYPE' type='hidden'><value>u</value>"
	                           "<value>u</value></field></x></query>"),
	                    once);
	assert_string_not_equal(once, einval);
	/* bounded */
	{
		size_t n = 1100, len = strlen(Q) + n * 40 + 16;
		char *big = malloc(len), *p = big;

		assert_non_null(big);
		p += sprintf(p, Q);
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "<feature var='f%zu'/>", i);
		strcpy(p, "</query>");
		assert_string_equal(ver_of(big), e2big);
		free(big);
	}
}

/* The server's own: the contact addresses change its hash, as an extended form. */
static void test_server(void **state)
{
	struct xc_config cfg;
	char a[64], b[64], c[64];
	char *abuse[] = {"mailto:abuse@example.org", "xmpp:abuse@example.org"};
	char *support[] = {"https://example.org/help"};

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(xc_iq_caps_ver(a, sizeof(a), &cfg, false), 0);
	assert_int_equal(xc_iq_caps_ver(b, sizeof(b), &cfg, true), 0);
	assert_string_not_equal(a, b);
	cfg.contact.addrs[XC_CONTACT_ABUSE] = (struct cm_cfg_strlist){abuse, 2};
	cfg.contact.addrs[XC_CONTACT_SUPPORT] = (struct cm_cfg_strlist){support, 1};
	assert_int_equal(xc_iq_caps_ver(c, sizeof(c), &cfg, false), 0);
	assert_string_not_equal(a, c);
	/* the SHA-1 of the verification strings written by hand (Python's hashlib):
	 * "server/im//xmpp-core<" and the sorted features, each with its '<', then
	 * "http://jabber.org/network/serverinfo<abuse-addresses<mailto:abuse@example.org<
	 * xmpp:abuse@example.org<support-addresses<https://example.org/help<" */
	assert_string_equal(a, "8bMWP5C/f4yVBJ9k/5IaqM0wt5Y=");
	assert_string_equal(c, "v4+HA1XLidyg875q3uXJ//sSilw=");
	assert_int_equal(xc_iq_caps_ver(c, 8, &cfg, false), -ENOBUFS);
}

static int scenario(void *arg)
{
	char ver[64];
	struct cm_xml_node *q = arg;

	return xc_caps_ver(q, ver, sizeof(ver));
}

static void test_without_memory(void **state)
{
	struct cm_xml_node *q = NULL;
	const char *xml = Q PSI PSI_EL FEATS SOFT "</query>";

	(void)state;
	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &q), 0);
	assert_true(test_alloc_sweep(scenario, q, 200) > 1);
	cm_xml_node_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples),
	    cmocka_unit_test(test_server),
	    cmocka_unit_test(test_without_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
