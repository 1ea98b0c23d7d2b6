/* upload_slot.c - HTTP File Upload's names, URLs and signatures (upload.h): what a slot request
 * may ask for, the URLs a slot is answered with, and how the HTTP side reads them back.
 *
 * Every input here is hostile: a client's request element, or a path and query from whoever
 * reaches the HTTP port. Each parser accepts one exact shape, bounded before anything is
 * allocated, and leaves its outputs alone when it refuses. */
#include "upload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/http.h"
#include "cm/utf8.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A character of base64url (RFC 4648 5), the alphabet of slot ids and signatures. */
static bool is_b64url(char c)
{
	return is_alnum(c) || c == '-' || c == '_';
}

/* Whether the first n bytes of s are all base64url characters. */
static bool all_b64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_b64url(s[i]))
			return false;
	return true;
}

/* The n bytes at s as an unsigned decimal (digits only: no sign, space or empty string) no
 * larger than lim, into *v. false when they are not one or it is larger. */
static bool parse_decimal(const char *s, size_t n, uint64_t lim, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (!is_digit(s[i]))
			return false;
		d = (unsigned)(s[i] - '0');
		if (x > (lim - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

/* Whether the n bytes of UTF-8 at s hold a character that can make a name look like another
 * where it is shown: a C1 control (U+0080..U+009F) or a bidirectional formatting character
 * (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), with which "gnp.exe" can be made
 * to read as an image's name. s is valid UTF-8. */
static bool disguising(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
			return true;
		if (p[i] == 0xd8 && p[i + 1] == 0x9c)
			return true;
		if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0x8e || p[i + 2] == 0x8f ||
		     (p[i + 2] >= 0xaa && p[i + 2] <= 0xae)))
			return true;
		if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa6 &&
		    p[i + 2] <= 0xa9)
			return true;
	}
	return false;
}

const char *xc_upload_name_problem(const char *name)
{
	size_t n;

	if (!name)
		return "the file name is missing";
	/* bounded: a hostile name is never walked past what could be accepted */
	n = strnlen(name, XC_UPLOAD_NAME_MAX + 1);
	if (n == 0)
		return "the file name is empty";
	if (n > XC_UPLOAD_NAME_MAX)
		return "the file name is too long";
	if (!cm_utf8_valid(name, n))
		return "the file name is not UTF-8";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return "the file name has a control character";
		if (c == '/' || c == '\\')
			return "the file name has a slash or a backslash";
	}
	if (disguising(name, n))
		return "the file name has a C1 control or a bidirectional formatting character";
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "the file name is a dot or two";
	return NULL;
}

/* A character of RFC 6838 4.2's restricted-name after its first. */
static bool is_restricted_char(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$&-^_.+", c));
}

/* The restricted-name (RFC 6838 4.2) s starts with: its length (1 to 63), or 0 when s does not
 * start with one or it runs longer. It ends at the first character that cannot be part of it. */
static size_t restricted_name(const char *s)
{
	size_t n = 0;

	if (!is_alnum(s[0]))
		return 0;
	while (is_restricted_char(s[++n]))
		if (n == 63)
			return 0; /* a 64th character */
	return n;
}

bool xc_upload_type_ok(const char *type)
{
	size_t n, t, s;

	if (!type)
		return false;
	n = strnlen(type, XC_UPLOAD_TYPE_MAX + 1);
	if (n > XC_UPLOAD_TYPE_MAX)
		return false;
	t = restricted_name(type);
	if (t == 0 || type[t] != '/')
		return false;
	s = restricted_name(type + t + 1);
	/* the subtype must end the string: no parameters, spaces or a second '/' */
	return s > 0 && t + 1 + s == n;
}

int xc_upload_request(const struct cm_xml_node *req, uint64_t max, const char **name,
                      uint64_t *size, const char **type, const char **why)
{
	const char *fname, *fsize, *ftype, *problem;
	uint64_t sz;

	if (!req || req->kind != CM_XML_ELEMENT || strcmp(req->name, "request") != 0 ||
	    strcmp(req->ns, XC_NS_UPLOAD) != 0) {
		*why = "the element is not a slot request";
		return -EINVAL;
	}
	fname = cm_xml_attr(req, "filename");
	if ((problem = xc_upload_name_problem(fname))) {
		*why = problem;
		return -EINVAL;
	}
	fsize = cm_xml_attr(req, "size");
	if (!fsize) {
		*why = "the size is missing";
		return -EINVAL;
	}
	if (!parse_decimal(fsize, strlen(fsize), UINT64_MAX, &sz)) {
		*why = "the size is not a number of bytes";
		return -EINVAL;
	}
	if (sz == 0) {
		*why = "the file is empty";
		return -EINVAL;
	}
	ftype = cm_xml_attr(req, "content-type");
	if (ftype && !xc_upload_type_ok(ftype)) {
		*why = "the content type is not a media type";
		return -EINVAL;
	}
	/* Only a request that is right in every other way is too large (file-too-large names the
	 * limit; a malformed one is a bad request whatever its size). */
	if (sz > max) {
		*why = "the file is too large";
		return -EFBIG;
	}
	*name = fname;
	*size = sz;
	*type = ftype;
	return 0;
}

int xc_upload_sign(const unsigned char key[XC_UPLOAD_KEY_LEN], const char *slot, const char *name,
                   uint64_t size, const char *type, int64_t expiry, char out[XC_UPLOAD_SIG_LEN + 1])
{
	unsigned char mac[CM_SHA256_LEN];
	struct cm_buf msg, sig;
	int rc;

	/* Separated by "\n", which none of the fields can hold (slot ids are base64url, names and
	 * types are checked), so that no two slots sign the same text. */
	cm_buf_init(&msg, 0);
	cm_buf_init(&sig, 0);
	rc = cm_buf_printf(&msg, "%s\n%s\n%" PRIu64 "\n%s\n%" PRId64, slot, name, size,
	                   type ? type : "", expiry);
	rc = rc ? rc : cm_crypto_hmac_sha256(key, XC_UPLOAD_KEY_LEN, msg.data, msg.len, mac);
	rc = rc ? rc : cm_crypto_b64_encode(&sig, mac, sizeof(mac), CM_B64_URL);
	if (!rc && sig.len != XC_UPLOAD_SIG_LEN)
		rc = -EIO;
	if (!rc)
		memcpy(out, sig.data, XC_UPLOAD_SIG_LEN + 1);
	cm_buf_free(&msg);
	cm_buf_free(&sig);
	/* upload.h promises 0 or -EIO: whatever failed (memory included), there is no signature */
	return rc ? -EIO : 0;
}

/* Append s percent-encoded (RFC 3986 2.1, upper-case hex): every byte but the unreserved
 * ALPHA, DIGIT, "-", ".", "_", "~". */
static int append_encoded(struct cm_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~')
			rc = cm_buf_append(b, s, 1);
		else
			rc = cm_buf_append(b, esc, sizeof(esc));
	}
	return rc;
}

int xc_upload_url(struct cm_buf *out, const char *base, const char *slot, const char *name,
                  int64_t expiry, const char *sig)
{
	size_t blen = strlen(base);
	struct cm_buf u;
	int rc;

	if (blen > 0 && base[blen - 1] == '/')
		blen--; /* XC_UPLOAD_PREFIX brings its own */
	/* Made apart and appended whole, so that out is as it was on failure. The slot is encoded
	 * as well: a base64url id comes out as it is, anything else cannot break the URL. */
	cm_buf_init(&u, 0);
	rc = cm_buf_append(&u, base, blen);
	rc = rc ? rc : cm_buf_puts(&u, XC_UPLOAD_PREFIX);
	rc = rc ? rc : append_encoded(&u, slot);
	rc = rc ? rc : cm_buf_puts(&u, "/");
	rc = rc ? rc : append_encoded(&u, name);
	if (!rc && sig) {
		rc = cm_buf_printf(&u, "?e=%" PRId64 "&s=", expiry);
		rc = rc ? rc : append_encoded(&u, sig);
	}
	rc = rc ? rc : cm_buf_append(out, u.data, u.len);
	cm_buf_free(&u);
	return rc;
}

bool xc_upload_slot_ok(const char *slot)
{
	return slot && strnlen(slot, XC_UPLOAD_SLOT_LEN + 1) == XC_UPLOAD_SLOT_LEN &&
	       all_b64url(slot, XC_UPLOAD_SLOT_LEN);
}

int xc_upload_path(const char *rest, char slot[XC_UPLOAD_SLOT_LEN + 1], char **name)
{
	const char *enc;
	size_t n;
	char *dec;

	*name = NULL;
	if (strnlen(rest, XC_UPLOAD_SLOT_LEN + 1) <= XC_UPLOAD_SLOT_LEN ||
	    !all_b64url(rest, XC_UPLOAD_SLOT_LEN) || rest[XC_UPLOAD_SLOT_LEN] != '/')
		return -EINVAL;
	enc = rest + XC_UPLOAD_SLOT_LEN + 1;
	/* An escape is 3 bytes for 1: an encoded name longer than 3 * XC_UPLOAD_NAME_MAX cannot
	 * decode short enough, and is refused before anything is allocated for it. */
	n = strnlen(enc, 3 * XC_UPLOAD_NAME_MAX + 1);
	if (n == 0 || n > 3 * XC_UPLOAD_NAME_MAX || memchr(enc, '/', n))
		return -EINVAL;
	dec = malloc(n + 1);
	if (!dec)
		return -ENOMEM;
	/* a decoded "%2F" or "%5C" is refused here with the rest of what a name cannot be */
	if (cm_http_unescape(enc, dec, NULL) < 0 || xc_upload_name_problem(dec)) {
		free(dec);
		return -EINVAL;
	}
	memcpy(slot, rest, XC_UPLOAD_SLOT_LEN);
	slot[XC_UPLOAD_SLOT_LEN] = '\0';
	*name = dec;
	return 0;
}

int xc_upload_range(const char *range, size_t len, size_t *first, size_t *last)
{
	const char *p, *dash;
	uint64_t a = 0, b = 0;
	bool have_a, have_b;

	if (!range || len == 0 || strncmp(range, "bytes=", 6) != 0)
		return 0; /* (an empty file has no range to ask for: it is sent whole) */
	p = range + 6;
	dash = strchr(p, '-');
	if (!dash || strchr(p, ','))
		return 0; /* not one range: the whole file */
	have_a = dash > p;
	have_b = dash[1] != '\0';
	if ((have_a && !parse_decimal(p, (size_t)(dash - p), UINT64_MAX, &a)) ||
	    (have_b && !parse_decimal(dash + 1, strlen(dash + 1), UINT64_MAX, &b)) ||
	    (!have_a && !have_b) || (have_a && have_b && b < a))
		return 0;
	if (!have_a) { /* the last b bytes */
		if (b == 0)
			return -1;
		*first = b >= len ? 0 : len - (size_t)b;
		*last = len - 1;
		return 1;
	}
	if (a >= len)
		return -1;
	*first = (size_t)a;
	*last = have_b && b < len ? (size_t)b : len - 1;
	return 1;
}

int xc_upload_query(const char *query, int64_t *expiry, char sig[XC_UPLOAD_SIG_LEN + 1])
{
	const char *p = query, *s = NULL;
	uint64_t e = 0;
	bool have_e = false;

	/* two pairs, KEY "=" VALUE, joined by the one '&' */
	for (int pair = 0; pair < 2; pair++) {
		const char *end = strchr(p, '&');
		size_t vlen;

		if (!end)
			end = p + strlen(p);
		if ((pair == 0) != (*end == '&') || end - p < 2 || p[1] != '=')
			return -EINVAL;
		vlen = (size_t)(end - p - 2);
		if (p[0] == 'e' && !have_e) {
			if (!parse_decimal(p + 2, vlen, INT64_MAX, &e))
				return -EINVAL;
			have_e = true;
		} else if (p[0] == 's' && !s) {
			if (vlen != XC_UPLOAD_SIG_LEN || !all_b64url(p + 2, vlen))
				return -EINVAL;
			s = p + 2;
		} else {
			return -EINVAL; /* another key, or one given twice */
		}
		p = end + 1;
	}
	*expiry = (int64_t)e;
	memcpy(sig, s, XC_UPLOAD_SIG_LEN);
	sig[XC_UPLOAD_SIG_LEN] = '\0';
	return 0;
}
