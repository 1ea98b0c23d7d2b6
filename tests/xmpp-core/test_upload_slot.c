/* test_upload_slot.c - HTTP File Upload's names, URLs and signatures (upload.h, upload_slot.c):
 * the file names and media types a slot may carry, slot requests read strictly (sizes that are
 * numbers and no more, too large only when otherwise right), signatures against a vector
 * computed apart, URLs percent-encoded and read back to the same slot and name, PUT queries in
 * their one shape, and clean failures without memory. */
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
#include "tests/support/alloc.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/upload.h"

#define SLOT "0123456789abcdefABCDEF-_" /* 24 base64url characters */
#define REQ  "<request xmlns='urn:xmpp:http:upload:0' "
#define BASE "https://upload.example.org"

/* The signing vectors below were computed apart from this code, with Python 3:
 *   import hmac, hashlib, base64
 *   key = bytes(range(32))
 *   msg = f"{slot}\n{name}\n{size}\n{type}\n{expiry}".encode()
 *   base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=")
 * with slot SLOT, name "my photo.jpg" and: */
/* size 123456, type "image/jpeg", expiry 1700000000 */
#define SIG_JPEG "2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5-KVbTkogMGk"
/* size 123456, type "" (none), expiry 1700000000 */
#define SIG_NONE "IlCBY6WV_B0qYfTkCfbFk0DgRh7S1ClDxEpcQWPqIsY"
/* size 18446744073709551615, type "image/jpeg", expiry -1 */
#define SIG_EDGE "G0q_Moa4ode6Ly9R6HsAKTGrjcPCRLZs3pREujZFT1s"
/* the same, with name "my photo \u00e4.jpg", size 3, type "" (none), expiry 1700000000 */
#define SIG_UMLAUT "BrIg9tn1OWONHGvXVBhc_rpNEcf9P1PXdpY2uvCRxiE"

static const unsigned char key[XC_UPLOAD_KEY_LEN] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static struct cm_xml_node *parse(const char *xml)
{
	struct cm_xml_node *n = NULL;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &n), 0);
	return n;
}

/* n copies of the string s (static buffer: one at a time) */
static const char *repeat(const char *s, size_t n)
{
	static char out[2048];
	size_t len = strlen(s);

	assert_true(n * len < sizeof(out));
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[n * len] = '\0';
	return out;
}

static void test_name_problem(void **state)
{
	char name[300];

	(void)state;
	assert_null(xc_upload_name_problem("a"));
	assert_null(xc_upload_name_problem("my photo (1).jpg"));
	assert_null(xc_upload_name_problem("\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe.jpg")); /* фото.jpg */
	assert_null(xc_upload_name_problem("\xf0\x9f\x98\x80")); /* U+1F600, 4 bytes */
	assert_null(xc_upload_name_problem("..."));              /* neither "." nor ".." */
	assert_null(xc_upload_name_problem(".profile"));
	assert_null(xc_upload_name_problem("a..b"));
	assert_null(xc_upload_name_problem("100%.txt"));
	assert_null(xc_upload_name_problem("\xc2\xa0x"));    /* U+00A0, past the C1 controls */
	assert_null(xc_upload_name_problem("\xe2\x80\xa9")); /* U+2029 is not a bidi control */
	assert_null(xc_upload_name_problem("\xd8\x9d"));     /* U+061D, beside the Arabic mark */
	assert_null(xc_upload_name_problem(repeat("a", 255)));
	assert_null(xc_upload_name_problem(repeat("\xe2\x82\xac", 85))); /* 85 euro signs: 255 */

	assert_string_equal(xc_upload_name_problem(NULL), "the file name is missing");
	/* characters that make a name read as another: C1 controls and bidi formatting */
	{
		static const char *const disguised[] = {
		    "\xc2\x80",                 /* U+0080 */
		    "a\xc2\x9f.png",            /* U+009F */
		    "photo\xe2\x80\xaegnp.exe", /* U+202E RIGHT-TO-LEFT OVERRIDE */
		    "\xe2\x80\xaa",
		    "\xe2\x80\x8e",
		    "\xe2\x80\x8f", /* U+202A, U+200E, U+200F */
		    "x\xe2\x81\xa6",
		    "x\xe2\x81\xa9", /* U+2066, U+2069 */
		    "\xd8\x9c.txt",  /* U+061C ARABIC LETTER MARK */
		};

		for (size_t i = 0; i < sizeof(disguised) / sizeof(disguised[0]); i++)
			assert_string_equal(xc_upload_name_problem(disguised[i]),
			                    "the file name has a C1 control or a bidirectional "
			                    "formatting character");
	}
	assert_string_equal(xc_upload_name_problem(""), "the file name is empty");
	assert_string_equal(xc_upload_name_problem(repeat("a", 256)), "the file name is too long");
	assert_string_equal(xc_upload_name_problem(repeat("a", 1000)), "the file name is too long");
	/* 254 bytes and a 2-byte character: too long, though 255 of its bytes would be a name */
	snprintf(name, sizeof(name), "%s\xc3\xa4", repeat("a", 254));
	assert_string_equal(xc_upload_name_problem(name), "the file name is too long");
	/* 254 bytes and the first byte of a 2-byte character */
	snprintf(name, sizeof(name), "%s\xc3", repeat("a", 254));
	assert_string_equal(xc_upload_name_problem(name), "the file name is not UTF-8");
	assert_string_equal(xc_upload_name_problem("a\xff"), "the file name is not UTF-8");
	assert_string_equal(xc_upload_name_problem("\xc0\xaf"), "the file name is not UTF-8");
	assert_string_equal(xc_upload_name_problem("\xed\xa0\x80"), "the file name is not UTF-8");
	assert_string_equal(xc_upload_name_problem("\xe2\x82"), "the file name is not UTF-8");
	assert_string_equal(xc_upload_name_problem("a\x01"),
	                    "the file name has a control character");
	assert_string_equal(xc_upload_name_problem("a\tb"),
	                    "the file name has a control character");
	assert_string_equal(xc_upload_name_problem("a\nb"),
	                    "the file name has a control character");
	assert_string_equal(xc_upload_name_problem("\x1f"),
	                    "the file name has a control character");
	assert_string_equal(xc_upload_name_problem("a\x7f"),
	                    "the file name has a control character");
	assert_string_equal(xc_upload_name_problem("a/b"),
	                    "the file name has a slash or a backslash");
	assert_string_equal(xc_upload_name_problem("/"),
	                    "the file name has a slash or a backslash");
	assert_string_equal(xc_upload_name_problem("..\\a"),
	                    "the file name has a slash or a backslash");
	assert_string_equal(xc_upload_name_problem("."), "the file name is a dot or two");
	assert_string_equal(xc_upload_name_problem(".."), "the file name is a dot or two");
}

static void test_type_ok(void **state)
{
	char type[200];

	(void)state;
	assert_true(xc_upload_type_ok("image/jpeg"));
	assert_true(xc_upload_type_ok("IMAGE/PNG"));
	assert_true(xc_upload_type_ok("image/svg+xml"));
	assert_true(xc_upload_type_ok("application/octet-stream"));
	assert_true(xc_upload_type_ok(
	    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"));
	assert_true(xc_upload_type_ok("a/b"));
	assert_true(xc_upload_type_ok("1/x!#$&-^_.+")); /* every restricted-name-char */
	/* 63 and 63: the longest, XC_UPLOAD_TYPE_MAX bytes in all */
	snprintf(type, sizeof(type), "%s/", repeat("t", 63));
	strcat(type, repeat("s", 63));
	assert_int_equal(strlen(type), XC_UPLOAD_TYPE_MAX);
	assert_true(xc_upload_type_ok(type));

	assert_false(xc_upload_type_ok(NULL));
	assert_false(xc_upload_type_ok(""));
	assert_false(xc_upload_type_ok("image"));
	assert_false(xc_upload_type_ok("image/"));
	assert_false(xc_upload_type_ok("/jpeg"));
	assert_false(xc_upload_type_ok("/"));
	assert_false(xc_upload_type_ok("image/jpeg/x"));
	assert_false(xc_upload_type_ok("image//jpeg"));
	assert_false(xc_upload_type_ok("text/plain; charset=utf-8"));
	assert_false(xc_upload_type_ok("text/plain;charset=utf-8"));
	assert_false(xc_upload_type_ok(" image/jpeg"));
	assert_false(xc_upload_type_ok("image/jpeg "));
	assert_false(xc_upload_type_ok("image /jpeg"));
	assert_false(xc_upload_type_ok("image/jpeg\n"));
	assert_false(xc_upload_type_ok("image/jp*eg"));
	assert_false(xc_upload_type_ok("image/jp%eg"));
	assert_false(xc_upload_type_ok("image/jp\"eg"));
	assert_false(xc_upload_type_ok("im\xc3\xa4ge/jpeg"));
	/* the first character of each is a letter or digit */
	assert_false(xc_upload_type_ok("-image/jpeg"));
	assert_false(xc_upload_type_ok("image/.jpeg"));
	assert_false(xc_upload_type_ok("image/+xml"));
	/* "x-" is a restricted-name, "_y" is not */
	assert_false(xc_upload_type_ok("x-/_y"));
	assert_true(xc_upload_type_ok("x-/y_"));
	/* 64 characters in either part */
	snprintf(type, sizeof(type), "%s/s", repeat("t", 64));
	assert_false(xc_upload_type_ok(type));
	snprintf(type, sizeof(type), "t/%s", repeat("s", 64));
	assert_false(xc_upload_type_ok(type));
	snprintf(type, sizeof(type), "t/%s", repeat("s", 150));
	assert_false(xc_upload_type_ok(type));
}

/* xc_upload_request on xml with max; the outputs start as sentinels so that a refusal can be
 * seen to leave them alone. */
struct request {
	int rc;
	const char *name, *type, *why;
	uint64_t size;
};

static struct request request(const char *xml, uint64_t max)
{
	static const char sentinel[] = "untouched";
	struct cm_xml_node *n = parse(xml);
	struct request r = {.name = sentinel, .type = sentinel, .why = NULL, .size = 42};

	r.rc = xc_upload_request(n, max, &r.name, &r.size, &r.type, &r.why);
	if (r.rc == 0) {
		/* borrowed from the element */
		assert_ptr_equal(r.name, cm_xml_attr(n, "filename"));
		assert_ptr_equal(r.type, cm_xml_attr(n, "content-type"));
		/* copied: the element goes before the caller looks */
		r.name = strdup(r.name);
		r.type = r.type ? strdup(r.type) : NULL;
	} else {
		assert_ptr_equal(r.name, sentinel);
		assert_ptr_equal(r.type, sentinel);
		assert_int_equal(r.size, 42);
		assert_non_null(r.why);
	}
	cm_xml_node_free(n);
	return r;
}

static void request_ok(const char *xml, uint64_t max, const char *name, uint64_t size,
                       const char *type)
{
	struct request r = request(xml, max);

	assert_int_equal(r.rc, 0);
	assert_string_equal(r.name, name);
	assert_true(r.size == size);
	if (type)
		assert_string_equal(r.type, type);
	else
		assert_null(r.type);
	free((char *)r.name);
	free((char *)r.type);
}

static void request_bad(const char *xml, uint64_t max, int rc, const char *why)
{
	struct request r = request(xml, max);

	assert_int_equal(r.rc, rc);
	assert_string_equal(r.why, why);
}

static void test_request(void **state)
{
	struct cm_xml_node *iq;
	const char *name, *type, *why;
	uint64_t size;

	(void)state;
	request_ok(REQ "filename='my photo.jpg' size='123456' content-type='image/jpeg'/>", 1000000,
	           "my photo.jpg", 123456, "image/jpeg");
	request_ok(REQ "filename='a' size='1'/>", 1, "a", 1, NULL);
	request_ok(REQ "filename='a' size='007'/>", 10, "a", 7, NULL);
	request_ok(REQ "filename='&#x444;.txt' size='5' content-type='text/plain'>"
	               "<extra/></request>",
	           5, "\xd1\x84.txt", 5, "text/plain");
	request_ok(REQ "filename='a' size='18446744073709551615'/>", UINT64_MAX, "a", UINT64_MAX,
	           NULL);
	/* the element as a client sends it, in an IQ */
	iq = parse("<iq type='get' id='1' to='upload.example.org'>" REQ
	           "filename='b.png' size='10' content-type='image/png'/></iq>");
	assert_int_equal(xc_upload_request(cm_xml_child(iq, "request", XC_NS_UPLOAD), 10, &name,
	                                   &size, &type, &why),
	                 0);
	assert_string_equal(name, "b.png");
	assert_true(size == 10);
	assert_string_equal(type, "image/png");
	/* the IQ itself is not a request */
	assert_int_equal(xc_upload_request(iq, 10, &name, &size, &type, &why), -EINVAL);
	assert_string_equal(why, "the element is not a slot request");
	cm_xml_node_free(iq);

	/* not the element */
	request_bad("<request filename='a' size='1'/>", 10, -EINVAL,
	            "the element is not a slot request");
	request_bad("<request xmlns='urn:xmpp:http:upload' filename='a' size='1'/>", 10, -EINVAL,
	            "the element is not a slot request");
	request_bad("<slot xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/>", 10, -EINVAL,
	            "the element is not a slot request");
	/* the name */
	request_bad(REQ "size='1'/>", 10, -EINVAL, "the file name is missing");
	request_bad(REQ "filename='' size='1'/>", 10, -EINVAL, "the file name is empty");
	request_bad(REQ "filename='..' size='1'/>", 10, -EINVAL, "the file name is a dot or two");
	request_bad(REQ "filename='../etc/passwd' size='1'/>", 10, -EINVAL,
	            "the file name has a slash or a backslash");
	request_bad(REQ "filename='a&#9;b' size='1'/>", 10, -EINVAL,
	            "the file name has a control character");
	request_bad(REQ "filename='a&#127;b' size='1'/>", 10, -EINVAL,
	            "the file name has a control character");
	/* the size: digits, nothing else, and not zero */
	request_bad(REQ "filename='a'/>", 10, -EINVAL, "the size is missing");
	request_bad(REQ "filename='a' size=''/>", 10, -EINVAL, "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='-1'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='+1'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size=' 1'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='1 '/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='1.5'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='1e3'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='0x10'/>", 10, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='18446744073709551616'/>", UINT64_MAX, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='99999999999999999999999'/>", UINT64_MAX, -EINVAL,
	            "the size is not a number of bytes");
	request_bad(REQ "filename='a' size='0'/>", 10, -EINVAL, "the file is empty");
	request_bad(REQ "filename='a' size='000'/>", 10, -EINVAL, "the file is empty");
	/* over the limit: one byte is enough */
	request_bad(REQ "filename='a' size='11'/>", 10, -EFBIG, "the file is too large");
	request_bad(REQ "filename='a' size='18446744073709551615'/>", UINT64_MAX - 1, -EFBIG,
	            "the file is too large");
	request_bad(REQ "filename='a' size='1'/>", 0, -EFBIG, "the file is too large");
	/* the type, when given */
	request_bad(REQ "filename='a' size='1' content-type=''/>", 10, -EINVAL,
	            "the content type is not a media type");
	request_bad(REQ "filename='a' size='1' content-type='image'/>", 10, -EINVAL,
	            "the content type is not a media type");
	request_bad(REQ "filename='a' size='1' content-type='text/plain; charset=utf-8'/>", 10,
	            -EINVAL, "the content type is not a media type");
	/* a request wrong in another way is a bad request, whatever its size */
	request_bad(REQ "filename='a' size='11' content-type='bad'/>", 10, -EINVAL,
	            "the content type is not a media type");
	request_bad(REQ "filename='' size='11'/>", 10, -EINVAL, "the file name is empty");
}

static void test_sign(void **state)
{
	char sig[XC_UPLOAD_SIG_LEN + 1], other[XC_UPLOAD_SIG_LEN + 1];
	unsigned char key2[XC_UPLOAD_KEY_LEN];

	(void)state;
	memset(sig, 'x', sizeof(sig));
	assert_int_equal(
	    xc_upload_sign(key, SLOT, "my photo.jpg", 123456, "image/jpeg", 1700000000, sig), 0);
	assert_string_equal(sig, SIG_JPEG);
	assert_int_equal(strlen(sig), XC_UPLOAD_SIG_LEN);
	/* no type: NULL and "" are the same */
	assert_int_equal(xc_upload_sign(key, SLOT, "my photo.jpg", 123456, NULL, 1700000000, sig),
	                 0);
	assert_string_equal(sig, SIG_NONE);
	assert_int_equal(xc_upload_sign(key, SLOT, "my photo.jpg", 123456, "", 1700000000, sig), 0);
	assert_string_equal(sig, SIG_NONE);
	assert_int_equal(
	    xc_upload_sign(key, SLOT, "my photo.jpg", UINT64_MAX, "image/jpeg", -1, sig), 0);
	assert_string_equal(sig, SIG_EDGE);

	/* every field and the key are signed: changing any changes the signature */
#define DIFFERS(...)                                                                               \
	do {                                                                                       \
		assert_int_equal(xc_upload_sign(__VA_ARGS__, other), 0);                           \
		assert_string_not_equal(other, SIG_JPEG);                                          \
	} while (0)
	DIFFERS(key, "0123456789abcdefABCDEF-A", "my photo.jpg", 123456, "image/jpeg", 1700000000);
	DIFFERS(key, SLOT, "my photo.jpeg", 123456, "image/jpeg", 1700000000);
	DIFFERS(key, SLOT, "my photo.jpg", 123457, "image/jpeg", 1700000000);
	DIFFERS(key, SLOT, "my photo.jpg", 123456, "image/png", 1700000000);
	DIFFERS(key, SLOT, "my photo.jpg", 123456, "image/jpeg", 1700000001);
	memcpy(key2, key, sizeof(key2));
	key2[31] ^= 1;
	DIFFERS(key2, SLOT, "my photo.jpg", 123456, "image/jpeg", 1700000000);
#undef DIFFERS
}

static void test_url(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 0);
	/* the GET URL: no query */
	assert_int_equal(xc_upload_url(&b, BASE, SLOT, "my photo.jpg", 1700000000, NULL), 0);
	assert_string_equal(b.data, BASE "/upload/" SLOT "/my%20photo.jpg");
	cm_buf_reset(&b);
	/* a trailing '/' on the base is not doubled */
	assert_int_equal(xc_upload_url(&b, BASE "/", SLOT, "my photo.jpg", 1700000000, NULL), 0);
	assert_string_equal(b.data, BASE "/upload/" SLOT "/my%20photo.jpg");
	cm_buf_reset(&b);
	/* the PUT URL, appended to what out holds */
	assert_int_equal(cm_buf_puts(&b, "<"), 0);
	assert_int_equal(
	    xc_upload_url(&b, "https://h:5443/files/", SLOT, "a.png", 1700000000, SIG_JPEG), 0);
	assert_string_equal(b.data,
	                    "<https://h:5443/files/upload/" SLOT "/a.png?e=1700000000&s=" SIG_JPEG);
	cm_buf_reset(&b);
	/* spaces, UTF-8 and reserved characters are escaped (upper-case hex); unreserved are not
	 * (the expected text is Python's urllib.parse.quote(name, safe="")) */
	assert_int_equal(
	    xc_upload_url(&b, BASE, SLOT, "my photo & \xc3\xa4\xe2\x82\xac #1?.jpg~-_", 0, NULL),
	    0);
	assert_string_equal(b.data, BASE "/upload/" SLOT
	                                 "/my%20photo%20%26%20%C3%A4%E2%82%AC%20%231%3F.jpg~-_");
	cm_buf_reset(&b);
	assert_int_equal(
	    xc_upload_url(&b, BASE, SLOT, "a+b=c;d,e'(f)!*$@:[]\"<>\\^`{|}%/", 0, NULL), 0);
	assert_string_equal(b.data, BASE "/upload/" SLOT "/a%2Bb%3Dc%3Bd%2Ce%27%28f%29%21%2A%24%40"
	                                 "%3A%5B%5D%22%3C%3E%5C%5E%60%7B%7C%7D%25%2F");
	cm_buf_free(&b);
}

/* xc_upload_path on rest, which must be accepted as SLOT and name */
static void path_ok(const char *rest, const char *name)
{
	char slot[XC_UPLOAD_SLOT_LEN + 1];
	char *got = NULL;

	assert_int_equal(xc_upload_path(rest, slot, &got), 0);
	assert_string_equal(slot, SLOT);
	assert_string_equal(got, name);
	free(got);
}

static void path_bad(const char *rest)
{
	char slot[XC_UPLOAD_SLOT_LEN + 1] = "unchanged";
	char *name = (char *)"sentinel";

	assert_int_equal(xc_upload_path(rest, slot, &name), -EINVAL);
	assert_null(name);
	assert_string_equal(slot, "unchanged");
}

static void test_path(void **state)
{
	char rest[1024];

	(void)state;
	path_ok(SLOT "/my%20photo.jpg", "my photo.jpg");
	path_ok(SLOT "/%C3%A4.txt", "\xc3\xa4.txt");
	path_ok(SLOT "/%c3%a4.txt", "\xc3\xa4.txt"); /* lower-case hex decodes too */
	path_ok(SLOT "/plain.txt", "plain.txt");
	path_ok(SLOT "/a+b", "a+b"); /* a path, not a form: '+' is itself */
	path_ok(SLOT "/%2E%2E%2E", "...");
	/* the longest name, plain and every byte escaped */
	snprintf(rest, sizeof(rest), SLOT "/%s", repeat("a", 255));
	path_ok(rest, repeat("a", 255));
	snprintf(rest, sizeof(rest), SLOT "/%s", repeat("%41", 255));
	path_ok(rest, repeat("A", 255));

	/* the slot: 24 base64url characters, then '/' */
	path_bad("");
	path_bad(SLOT);
	path_bad(SLOT "/");
	path_bad("0123456789abcdefABCDEF-/a");   /* 23 */
	path_bad("0123456789abcdefABCDEF-_A/a"); /* 25 */
	path_bad("0123456789abcdefABCDEF+/a/b"); /* '+' is base64, not base64url */
	path_bad("0123456789abcdefABCDEF-=/a");
	path_bad("0123456789abcdefABCDEF-./a");
	path_bad("0123456789abcdefABCDEF%2D/a");
	path_bad("/" SLOT "/a");
	/* one '/', and a name after it */
	path_bad(SLOT "//a");
	path_bad(SLOT "/a/");
	path_bad(SLOT "/a/b");
	/* escapes that do not decode, or decode to what a name cannot be */
	path_bad(SLOT "/a%2Fb");
	path_bad(SLOT "/a%2fb");
	path_bad(SLOT "/a%5Cb");
	path_bad(SLOT "/a%00b");
	path_bad(SLOT "/a%0Ab");
	path_bad(SLOT "/a%7F");
	path_bad(SLOT "/a%ZZ");
	path_bad(SLOT "/a%4");
	path_bad(SLOT "/a%");
	path_bad(SLOT "/%FF");
	path_bad(SLOT "/%C3");
	path_bad(SLOT "/.");
	path_bad(SLOT "/..");
	path_bad(SLOT "/%2E");
	path_bad(SLOT "/%2E%2E");
	path_bad(SLOT "/a\tb");
	/* too long, plain or escaped */
	snprintf(rest, sizeof(rest), SLOT "/%s", repeat("a", 256));
	path_bad(rest);
	snprintf(rest, sizeof(rest), SLOT "/%s", repeat("%41", 256));
	path_bad(rest);
}

static void query_ok(const char *q, int64_t expiry)
{
	char sig[XC_UPLOAD_SIG_LEN + 1];
	int64_t e = -5;

	assert_int_equal(xc_upload_query(q, &e, sig), 0);
	assert_true(e == expiry);
	assert_string_equal(sig, SIG_JPEG);
}

static void query_bad(const char *q)
{
	char sig[XC_UPLOAD_SIG_LEN + 1] = "unchanged";
	int64_t e = -5;

	assert_int_equal(xc_upload_query(q, &e, sig), -EINVAL);
	assert_true(e == -5);
	assert_string_equal(sig, "unchanged");
}

/* xc_upload_range("bytes=...") on a 100-byte file: "first-last", or "whole", or "416". */
static const char *range_of(const char *hdr, size_t len)
{
	static char out[32];
	size_t first = 7, last = 7;
	int r = xc_upload_range(hdr, len, &first, &last);

	if (r < 0)
		return "416";
	if (r == 0)
		return "whole";
	snprintf(out, sizeof(out), "%zu-%zu", first, last);
	return out;
}

static void test_range(void **state)
{
	(void)state;
	/* (slot ids, which the admin API's uploads/SLOT takes) */
	assert_true(xc_upload_slot_ok("AAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(xc_upload_slot_ok("09azAZ-_09azAZ-_09azAZ-_"));
	assert_false(xc_upload_slot_ok("AAAAAAAAAAAAAAAAAAAAAAA"));
	assert_false(xc_upload_slot_ok("AAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_false(xc_upload_slot_ok("AAAAAAAAAAAAAAAAAAAAAAA="));
	assert_false(xc_upload_slot_ok("AAAAAAAAAAAAAAAAAAAAAA/."));
	assert_false(xc_upload_slot_ok(NULL));
	assert_string_equal(range_of("bytes=0-9", 100), "0-9");
	assert_string_equal(range_of("bytes=10-", 100), "10-99");
	assert_string_equal(range_of("bytes=90-500", 100), "90-99"); /* cut at the end */
	assert_string_equal(range_of("bytes=-5", 100), "95-99");
	assert_string_equal(range_of("bytes=-500", 100), "0-99");
	assert_string_equal(range_of("bytes=99-99", 100), "99-99");
	/* past the end, or no bytes at all */
	assert_string_equal(range_of("bytes=100-", 100), "416");
	assert_string_equal(range_of("bytes=100-200", 100), "416");
	assert_string_equal(range_of("bytes=-0", 100), "416");
	/* what a server may ignore: the whole file */
	assert_string_equal(range_of(NULL, 100), "whole");
	assert_string_equal(range_of("", 100), "whole");
	assert_string_equal(range_of("items=0-9", 100), "whole");
	assert_string_equal(range_of("bytes=0-9,20-29", 100), "whole");
	assert_string_equal(range_of("bytes=9-0", 100), "whole");
	assert_string_equal(range_of("bytes=-", 100), "whole");
	assert_string_equal(range_of("bytes=a-b", 100), "whole");
	assert_string_equal(range_of("bytes= 0-9", 100), "whole");
	assert_string_equal(range_of("bytes=0-9x", 100), "whole");
	assert_string_equal(range_of("bytes=99999999999999999999-", 100), "whole");
	assert_string_equal(range_of("bytes=-5", 0), "whole"); /* an empty file is sent whole */
}

static void test_query(void **state)
{
	(void)state;
	query_ok("e=1700000000&s=" SIG_JPEG, 1700000000);
	query_ok("s=" SIG_JPEG "&e=1700000000", 1700000000);
	query_ok("e=0&s=" SIG_JPEG, 0);
	query_ok("e=00012&s=" SIG_JPEG, 12);
	query_ok("e=9223372036854775807&s=" SIG_JPEG, INT64_MAX);

	query_bad("");
	query_bad("e=1");
	query_bad("s=" SIG_JPEG);
	query_bad("e=1&");
	query_bad("e=1&s=" SIG_JPEG "&");
	query_bad("&e=1&s=" SIG_JPEG);
	query_bad("e=1&&s=" SIG_JPEG);
	query_bad("e=1&e=2");
	query_bad("s=" SIG_JPEG "&s=" SIG_JPEG);
	query_bad("e=1&s=" SIG_JPEG "&x=1");
	query_bad("e=1&s=" SIG_JPEG "&e=1");
	query_bad("x=1&s=" SIG_JPEG);
	query_bad("E=1&s=" SIG_JPEG);
	query_bad("ee=1&s=" SIG_JPEG);
	query_bad("e1&s=" SIG_JPEG);
	query_bad("e=1;s=" SIG_JPEG);
	/* the expiry: digits that fit an int64 */
	query_bad("e=&s=" SIG_JPEG);
	query_bad("e=-1&s=" SIG_JPEG);
	query_bad("e=+1&s=" SIG_JPEG);
	query_bad("e= 1&s=" SIG_JPEG);
	query_bad("e=1 &s=" SIG_JPEG);
	query_bad("e=1a&s=" SIG_JPEG);
	query_bad("e=%31&s=" SIG_JPEG);
	query_bad("e=9223372036854775808&s=" SIG_JPEG);
	query_bad("e=99999999999999999999&s=" SIG_JPEG);
	/* the signature: 43 base64url characters */
	query_bad("e=1&s=");
	query_bad("e=1&s=2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5-KVbTkogMG");    /* 42 */
	query_bad("e=1&s=2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5-KVbTkogMGkA");  /* 44 */
	query_bad("e=1&s=2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5-KVbTkogMGk=");  /* padded */
	query_bad("e=1&s=2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5+KVbTkogMGk");   /* '+' */
	query_bad("e=1&s=2eXRxwnJlnDQkupLEEPmzAJ8JIEUzUD5%2DKVbTkogMGk"); /* escaped */
}

/* The URLs a slot is answered with read back by the HTTP side: the path after the prefix gives
 * the slot and name, the query the expiry and signature. */
static void test_round_trip(void **state)
{
	static const char *const names[] = {
	    "my photo.jpg", "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe 100%.jpg",
	    "a?b#c&d=e+f",  "~-_.",
	    "...",          "\xf0\x9f\x98\x80",
	};
	const size_t pre = strlen(BASE XC_UPLOAD_PREFIX);

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char slot[XC_UPLOAD_SLOT_LEN + 1], sig[XC_UPLOAD_SIG_LEN + 1];
		char sig2[XC_UPLOAD_SIG_LEN + 1];
		struct cm_buf b;
		char *name = NULL, *q;
		int64_t e;

		assert_int_equal(
		    xc_upload_sign(key, SLOT, names[i], 99, "image/png", 1700000000, sig), 0);
		cm_buf_init(&b, 0);
		assert_int_equal(xc_upload_url(&b, BASE "/", SLOT, names[i], 1700000000, sig), 0);
		assert_memory_equal(b.data, BASE XC_UPLOAD_PREFIX, pre);
		q = strchr(b.data + pre, '?');
		assert_non_null(q);
		*q++ = '\0';
		assert_int_equal(xc_upload_path(b.data + pre, slot, &name), 0);
		assert_string_equal(slot, SLOT);
		assert_string_equal(name, names[i]);
		assert_int_equal(xc_upload_query(q, &e, sig2), 0);
		assert_true(e == 1700000000);
		assert_string_equal(sig2, sig);
		free(name);
		cm_buf_free(&b);
	}
}

/* What the service and the HTTP side do for one slot: sign, make the PUT URL, read it back. */
static int scenario(void *arg)
{
	const char *name = arg;
	const size_t pre = strlen(BASE "/upload/");
	char slot[XC_UPLOAD_SLOT_LEN + 1], sig[XC_UPLOAD_SIG_LEN + 1];
	struct cm_buf b;
	char *got = NULL, *q;
	int rc;

	cm_buf_init(&b, 0);
	rc = xc_upload_sign(key, SLOT, name, 3, NULL, 1700000000, sig);
	if (rc) {
		assert_int_equal(rc, -EIO); /* its only failure, memory included */
		return rc;
	}
	assert_string_equal(sig, SIG_UMLAUT);
	rc = cm_buf_puts(&b, "x");
	rc = rc ? rc : xc_upload_url(&b, BASE, SLOT, name, 1700000000, sig);
	if (rc) {
		assert_int_equal(rc, -ENOMEM);
		/* out as it was: "x", or nothing when even that failed */
		assert_true(b.len == 0 || strcmp(b.data, "x") == 0);
		cm_buf_free(&b);
		return rc;
	}
	q = strchr(b.data, '?');
	assert_non_null(q);
	*q = '\0';
	rc = xc_upload_path(b.data + 1 + pre, slot, &got);
	if (rc) {
		assert_int_equal(rc, -ENOMEM);
		assert_null(got);
		cm_buf_free(&b);
		return rc;
	}
	assert_string_equal(got, name);
	free(got);
	cm_buf_free(&b);
	return 0;
}

static void test_without_memory(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(scenario, "my photo \xc3\xa4.jpg", 100) > 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_problem), cmocka_unit_test(test_type_ok),
	    cmocka_unit_test(test_request),      cmocka_unit_test(test_sign),
	    cmocka_unit_test(test_url),          cmocka_unit_test(test_path),
	    cmocka_unit_test(test_query),        cmocka_unit_test(test_range),
	    cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_without_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
