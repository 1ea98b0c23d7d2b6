/* test_avatar.c - what vCards, avatar metadata and presence say of an avatar (avatar.h): the
 * PHOTO read (line-wrapped base64, EXTVAL, broken BINVAL), the info a metadata points at, the
 * PHOTO replaced and removed with the rest of the vCard kept, the payloads published, the hash
 * put into presence by XEP-0398 4's rules, and clean failures without memory. */
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
#include "cm/crypto.h"
#include "tests/support/alloc.h"
#include "xmpp-core/src/avatar.h"
#include "xmpp-core/src/stanza.h"

#define SHA1_ABC "a9993e364706816aba3e25717850c26c9cd0d89d" /* FIPS 180's "abc" */
#define VC       "<vCard xmlns='vcard-temp'>"
#define META     "<metadata xmlns='urn:xmpp:avatar:metadata'>"
#define UPD      "<x xmlns='vcard-temp:x:update'>"
#define P        "<presence xmlns='jabber:client'>"

static struct cm_xml_node *parse(const char *xml)
{
	struct cm_xml_node *n = NULL;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &n), 0);
	return n;
}

/* n as XML text (static buffer: one at a time) */
static const char *text_of(const struct cm_xml_node *n)
{
	static char out[4096];
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_xml_write(&b, n, NULL), 0);
	assert_true(b.len < sizeof(out));
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	cm_buf_free(&b);
	return out;
}

static int from_vcard(const char *xml, struct xc_avatar *a)
{
	struct cm_xml_node *v = parse(xml);
	int rc = xc_avatar_from_vcard(v, a);

	cm_xml_node_free(v);
	return rc;
}

static void test_from_vcard(void **state)
{
	struct xc_avatar a;
	unsigned char raw[768];
	struct cm_buf b;

	(void)state;
	assert_int_equal(from_vcard(VC "<FN>A</FN><PHOTO><TYPE>image/png</TYPE>"
	                               "<BINVAL>YW\n  Jj\r\n</BINVAL></PHOTO></vCard>",
	                            &a),
	                 0);
	assert_string_equal(a.hash, SHA1_ABC);
	assert_string_equal(a.type, "image/png");
	assert_string_equal(a.b64, "YWJj");
	assert_int_equal(a.bytes, 3);
	xc_avatar_clear(&a);
	assert_string_equal(a.hash, "");
	/* none: no PHOTO, an EXTVAL, an empty BINVAL; the first PHOTO with a BINVAL counts */
	assert_int_equal(from_vcard(VC "<FN>A</FN></vCard>", &a), 0);
	assert_string_equal(a.hash, "");
	assert_null(a.b64);
	assert_int_equal(
	    from_vcard(VC "<PHOTO><EXTVAL>https://x/y.png</EXTVAL></PHOTO></vCard>", &a), 0);
	assert_null(a.b64);
	assert_int_equal(from_vcard(VC "<PHOTO><BINVAL/></PHOTO></vCard>", &a), 0);
	assert_null(a.b64);
	assert_int_equal(from_vcard(VC "<PHOTO><EXTVAL>u</EXTVAL></PHOTO>"
	                               "<PHOTO><BINVAL>YWJj</BINVAL></PHOTO></vCard>",
	                            &a),
	                 0);
	assert_string_equal(a.hash, SHA1_ABC);
	assert_null(a.type);
	xc_avatar_clear(&a);
	/* not base64, or only whitespace */
	assert_int_equal(from_vcard(VC "<PHOTO><BINVAL>YW!j</BINVAL></PHOTO></vCard>", &a),
	                 -EINVAL);
	assert_null(a.b64);
	assert_int_equal(from_vcard(VC "<PHOTO><BINVAL>YWJ</BINVAL></PHOTO></vCard>", &a), -EINVAL);
	assert_int_equal(from_vcard(VC "<PHOTO><BINVAL> \n </BINVAL></PHOTO></vCard>", &a),
	                 -EINVAL);
	/* a larger image, its hash by Python's hashlib */
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	cm_buf_init(&b, 0);
	assert_int_equal(cm_crypto_b64_encode(&b, raw, sizeof(raw), CM_B64_STD), 0);
	assert_int_equal(b.len, 1024);
	assert_int_equal(xc_avatar_from_b64(b.data, b.len, "image/jpeg", &a), 0);
	assert_string_equal(a.hash, "ac2a264c8ec1f4232a40854e8239bc3a697ab1d2");
	assert_int_equal(a.bytes, sizeof(raw));
	assert_string_equal(a.type, "image/jpeg");
	xc_avatar_clear(&a);
	cm_buf_free(&b);
	assert_int_equal(xc_avatar_from_b64("YWJj", 0, NULL, &a), -EINVAL);
}

static int meta_info(const char *xml, const char **id)
{
	struct cm_xml_node *m = parse(xml);
	const char *type = NULL;
	static char got[64];
	int rc = xc_avatar_meta_info(m, id, &type);

	if (!rc) {
		snprintf(got, sizeof(got), "%s", *id);
		*id = got;
	}
	cm_xml_node_free(m);
	return rc;
}

static void test_meta_info(void **state)
{
	const char *id = NULL;

	(void)state;
	assert_int_equal(meta_info(META "</metadata>", &id), -ENOENT);
	assert_int_equal(meta_info(META "<info id='" SHA1_ABC "' url='https://x/a.png' bytes='3' "
	                                "type='image/png'/></metadata>",
	                           &id),
	                 -EINVAL);
	assert_int_equal(
	    meta_info(META "<info id='abc' bytes='3' type='image/png'/></metadata>", &id), -EINVAL);
	assert_int_equal(meta_info(META "<info bytes='3' type='image/png'/></metadata>", &id),
	                 -EINVAL);
	/* the one kept here is picked, wherever it is */
	assert_int_equal(meta_info(META "<info id='1111111111111111111111111111111111111111' "
	                                "url='https://x/a.png' bytes='9' type='image/gif'/>"
	                                "<info id='" SHA1_ABC "' bytes='3' type='image/png'/>"
	                                "</metadata>",
	                           &id),
	                 0);
	assert_string_equal(id, SHA1_ABC);
}

static void test_set_photo(void **state)
{
	struct cm_xml_node *v = parse(VC "<FN>Juliet</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>"
	                                 "YWJk</BINVAL></PHOTO><NICKNAME>J</NICKNAME></vCard>");
	struct xc_avatar a = {0}, none = {0};
	bool changed = true;

	(void)state;
	assert_int_equal(xc_avatar_from_b64("YWJj", 4, "image/png", &a), 0);
	assert_int_equal(xc_avatar_set_photo(v, &a, &changed), 0);
	assert_true(changed);
	assert_string_equal(text_of(v), VC "<FN>Juliet</FN><NICKNAME>J</NICKNAME><PHOTO>"
	                                   "<TYPE>image/png</TYPE><BINVAL>YWJj</BINVAL></PHOTO>"
	                                   "</vCard>");
	assert_int_equal(xc_avatar_set_photo(v, &a, &changed), 0);
	assert_false(changed); /* the same image */
	assert_int_equal(xc_avatar_set_photo(v, &none, &changed), 0);
	assert_true(changed);
	assert_string_equal(text_of(v), VC "<FN>Juliet</FN><NICKNAME>J</NICKNAME></vCard>");
	assert_int_equal(xc_avatar_set_photo(v, &none, &changed), 0);
	assert_false(changed);
	cm_xml_node_free(v);
	/* an EXTVAL PHOTO goes when a real image comes */
	v = parse(VC "<PHOTO><EXTVAL>https://x</EXTVAL></PHOTO></vCard>");
	assert_int_equal(xc_avatar_set_photo(v, &a, &changed), 0);
	assert_true(changed);
	assert_string_equal(text_of(v), VC "<PHOTO><TYPE>image/png</TYPE><BINVAL>YWJj</BINVAL>"
	                                   "</PHOTO></vCard>");
	cm_xml_node_free(v);
	xc_avatar_clear(&a);
}

static void test_payloads(void **state)
{
	struct cm_xml_node *data, *meta;
	struct xc_avatar a = {0};

	(void)state;
	assert_int_equal(xc_avatar_from_b64("YWJj", 4, NULL, &a), 0);
	assert_int_equal(xc_avatar_payloads(&a, &data, &meta), 0);
	assert_string_equal(text_of(data), "<data xmlns='urn:xmpp:avatar:data'>YWJj</data>");
	assert_string_equal(text_of(meta),
	                    META "<info bytes='3' id='" SHA1_ABC "' type='image/png'/></metadata>");
	cm_xml_node_free(data);
	cm_xml_node_free(meta);
	xc_avatar_clear(&a);
}

static const char *stamped(const char *xml, const char *hash, const char *old)
{
	struct cm_xml_node *p = parse(xml);
	const char *out;

	assert_int_equal(xc_avatar_stamp(p, hash, old), 0);
	out = text_of(p);
	cm_xml_node_free(p);
	return out;
}

static void test_stamp(void **state)
{
	const char *h = SHA1_ABC, *o = "1111111111111111111111111111111111111111";

	(void)state;
	assert_string_equal(stamped(P "<show>away</show></presence>", h, NULL),
	                    P "<show>away</show>" UPD "<photo>" SHA1_ABC "</photo></x></presence>");
	/* "not ready yet": filled */
	assert_string_equal(stamped(P "" UPD "</x></presence>", h, NULL),
	                    P "" UPD "<photo>" SHA1_ABC "</photo></x></presence>");
	/* "no avatar to show": the client's say */
	assert_string_equal(stamped(P "" UPD "<photo/></x></presence>", h, NULL),
	                    P "" UPD "<photo/></x></presence>");
	/* another hash: the server's wins */
	assert_string_equal(stamped(P "" UPD "<photo>abc</photo></x></presence>", h, NULL),
	                    P "" UPD "<photo>" SHA1_ABC "</photo></x></presence>");
	/* nothing known or none: left as sent */
	assert_string_equal(stamped("<presence xmlns='jabber:client'/>", NULL, NULL),
	                    "<presence xmlns='jabber:client'/>");
	assert_string_equal(stamped("<presence xmlns='jabber:client'/>", "", NULL),
	                    "<presence xmlns='jabber:client'/>");
	assert_string_equal(stamped(P "" UPD "<photo>abc</photo></x></presence>", "", o),
	                    P "" UPD "<photo>abc</photo></x></presence>");
	/* the avatar went: the hash the server put there goes too */
	assert_string_equal(stamped(P "" UPD "<photo>1111111111111111111111111111111111111111"
	                              "</photo></x></presence>",
	                            "", o),
	                    P "" UPD "<photo/></x></presence>");
	/* a new one replaces the old */
	assert_string_equal(stamped(P "" UPD "<photo>1111111111111111111111111111111111111111"
	                              "</photo></x></presence>",
	                            h, o),
	                    P "" UPD "<photo>" SHA1_ABC "</photo></x></presence>");
}

static int scenario(void *arg)
{
	const char *vcard = arg;
	struct cm_xml_node *v = NULL, *p = NULL, *data = NULL, *meta = NULL;
	struct xc_avatar a = {0};
	bool changed;
	int rc = xc_stanza_parse(vcard, strlen(vcard), &v);

	rc = rc ? rc : xc_avatar_from_vcard(v, &a);
	rc = rc ? rc : xc_avatar_payloads(&a, &data, &meta);
	rc = rc ? rc : xc_avatar_set_photo(v, &(struct xc_avatar){0}, &changed);
	rc = rc ? rc : xc_avatar_set_photo(v, &a, &changed);
	rc = rc ? rc : xc_stanza_parse("<presence/>", 11, &p);
	rc = rc ? rc : xc_avatar_stamp(p, a.hash, NULL);
	cm_xml_node_free(v);
	cm_xml_node_free(p);
	cm_xml_node_free(data);
	cm_xml_node_free(meta);
	xc_avatar_clear(&a);
	return rc;
}

static void test_without_memory(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(scenario,
	                             VC "<FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>YWJj"
	                                "</BINVAL></PHOTO></vCard>",
	                             500) > 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_vcard), cmocka_unit_test(test_meta_info),
	    cmocka_unit_test(test_set_photo),  cmocka_unit_test(test_payloads),
	    cmocka_unit_test(test_stamp),      cmocka_unit_test(test_without_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
