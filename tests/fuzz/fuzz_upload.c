/* fuzz_upload.c - libFuzzer target: HTTP File Upload's names, URLs and signatures
 * (xmpp-core/src/upload_slot.c), read from what a client sends (a slot request) and what
 * anyone sends the HTTP side (a path and a query).
 *
 * Whatever the input: a path read gives a base64url slot and a name the name check accepts,
 * and the URL made of them reads back as the same; a query read gives an expiry and a
 * signature that read back the same once written again; a name the check accepts survives a
 * URL and back; a media type accepted has the shape upload.h says; a slot request is accepted
 * only with a name, size and type each accepted on its own terms, refused with a reason, and
 * too large only for a limit below its size. Any breach abort()s. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE "https://upload.example.org/"
#define SLOT "0123456789abcdefABCDEF-_"
#define HEX  "0123456789ABCDEF"
/* RFC 3986's unreserved characters */
#define UNRESERVED "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

static const unsigned char key[XC_UPLOAD_KEY_LEN] = {1, 2, 3};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool b64url(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

/* The URL of slot and name (with a PUT query when sig is not NULL) read back by the HTTP side:
 * the same slot, name, expiry and signature. Skipped without memory. */
static void url_round_trip(const char *slot, const char *name, int64_t expiry, const char *sig)
{
	const size_t pre = strlen(BASE "upload/");
	char slot2[XC_UPLOAD_SLOT_LEN + 1], sig2[XC_UPLOAD_SIG_LEN + 1];
	struct cm_buf b;
	char *name2 = NULL, *q;
	int64_t e2;
	int rc;

	cm_buf_init(&b, 0);
	rc = xc_upload_url(&b, BASE, slot, name, expiry, sig);
	check(rc == 0 || rc == -ENOMEM);
	if (rc)
		return;
	check(strncmp(b.data, BASE "upload/", pre) == 0);
	/* nothing but unreserved characters and upper-case escapes, up to the query */
	q = strchr(b.data + pre, '?');
	check(!q == !sig);
	if (q)
		*q++ = '\0';
	for (const char *p = b.data + pre; *p; p++)
		check(strchr(UNRESERVED "%/", *p) != NULL &&
		      (*p != '%' || (p[1] && strchr(HEX, p[1]) && p[2] && strchr(HEX, p[2]))));
	rc = xc_upload_path(b.data + pre, slot2, &name2);
	check(rc == 0 || rc == -ENOMEM);
	if (rc == 0) {
		check(strcmp(slot2, slot) == 0 && strcmp(name2, name) == 0);
		free(name2);
	}
	if (q) {
		check(xc_upload_query(q, &e2, sig2) == 0);
		check(e2 == expiry && strcmp(sig2, sig) == 0);
	}
	cm_buf_free(&b);
}

static void path(const char *s)
{
	char slot[XC_UPLOAD_SLOT_LEN + 1];
	char *name = (char *)"sentinel";
	int rc = xc_upload_path(s, slot, &name);

	check(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		check(name == NULL);
		return;
	}
	check(b64url(slot, XC_UPLOAD_SLOT_LEN) && strncmp(s, slot, XC_UPLOAD_SLOT_LEN) == 0);
	check(xc_upload_name_problem(name) == NULL);
	url_round_trip(slot, name, 0, NULL);
	free(name);
}

/* A Range header against files of a few sizes: a range is inside the file, first to last. */
static void range(const char *s)
{
	static const size_t lens[] = {0, 1, 100, (size_t)1 << 40};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t first = 0, last = 0;
		int r = xc_upload_range(s, lens[i], &first, &last);

		check(r >= -1 && r <= 1);
		check(r != 1 || (first <= last && last < lens[i]));
		check(r != -1 || lens[i] > 0);
	}
}

static void query(const char *s)
{
	char sig[XC_UPLOAD_SIG_LEN + 1], sig2[XC_UPLOAD_SIG_LEN + 1], again[128];
	int64_t e, e2;
	int rc = xc_upload_query(s, &e, sig);

	check(rc == 0 || rc == -EINVAL);
	if (rc)
		return;
	check(e >= 0 && b64url(sig, XC_UPLOAD_SIG_LEN));
	snprintf(again, sizeof(again), "e=%lld&s=%s", (long long)e, sig);
	check(xc_upload_query(again, &e2, sig2) == 0 && e2 == e && strcmp(sig2, sig) == 0);
	snprintf(again, sizeof(again), "s=%s&e=%lld", sig, (long long)e);
	check(xc_upload_query(again, &e2, sig2) == 0 && e2 == e && strcmp(sig2, sig) == 0);
	/* a pair more is refused */
	snprintf(again, sizeof(again), "e=%lld&s=%s&e=%lld", (long long)e, sig, (long long)e);
	check(xc_upload_query(again, &e2, sig2) == -EINVAL);
}

static void name_and_type(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t n = strlen(s);

	if (!xc_upload_name_problem(s)) {
		check(n >= 1 && n <= XC_UPLOAD_NAME_MAX && !slash && !strchr(s, '\\'));
		check(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
		for (const char *p = s; *p; p++)
			check((unsigned char)*p >= 0x20 && *p != 0x7f);
		url_round_trip(SLOT, s, 1700000000, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	}
	if (xc_upload_type_ok(s)) {
		check(n >= 3 && n <= XC_UPLOAD_TYPE_MAX && slash && slash > s && slash[1] &&
		      !strchr(slash + 1, '/') && slash - s <= 63 &&
		      n - (size_t)(slash - s) - 1 <= 63);
		check(!strpbrk(s, " \t;=,\"()<>@:\\[]?{}"));
	}
}

/* A slot request under the limit max: one of the three answers, with what each promises. */
static void request(const struct cm_xml_node *n, uint64_t max)
{
	const char *name = NULL, *type = NULL, *why = NULL;
	const char *name2, *type2, *why2;
	char sig[XC_UPLOAD_SIG_LEN + 1];
	uint64_t size = 0, size2;
	int rc = xc_upload_request(n, max, &name, &size, &type, &why);

	check(rc == 0 || rc == -EINVAL || rc == -EFBIG);
	/* with no limit, nothing is too large; and the rest is as it was */
	why2 = NULL;
	switch (xc_upload_request(n, UINT64_MAX, &name2, &size2, &type2, &why2)) {
	case 0:
		check(rc == 0 || rc == -EFBIG);
		check(rc != 0 || (name2 == name && size2 == size && type2 == type));
		check(rc != -EFBIG || size2 > max);
		break;
	case -EINVAL:
		check(rc == -EINVAL && why2 && why && strcmp(why, why2) == 0);
		break;
	default:
		check(false);
	}
	if (rc) {
		check(why && *why);
		return;
	}
	check(xc_upload_name_problem(name) == NULL);
	check(size >= 1 && size <= max);
	check(!type || xc_upload_type_ok(type));
	check(name == cm_xml_attr(n, "filename") && type == cm_xml_attr(n, "content-type"));
	/* what the service answers with reads back as the same slot */
	check(xc_upload_sign(key, SLOT, name, size, type, 1700000000, sig) == 0);
	check(b64url(sig, XC_UPLOAD_SIG_LEN));
	url_round_trip(SLOT, name, 1700000000, sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_xml_node *n = NULL;
	char *s;

	if (size > 1 << 16)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	path(s);
	query(s);
	range(s);
	name_and_type(s);
	free(s);
	if (xc_stanza_parse((const char *)data, size, &n) != 0)
		return 0;
	request(n, 1 << 20);
	request(n, 0);
	for (const struct cm_xml_node *c = n->children; c; c = c->next)
		if (c->kind == CM_XML_ELEMENT)
			request(c, 1 << 20);
	cm_xml_node_free(n);
	return 0;
}
