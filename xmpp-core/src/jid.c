/* jid.c - JID parsing and normalisation (jid.h); the only file that includes libidn. */
#include "jid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#include "cm/err.h"
#include "cm/utf8.h"

/* Input longer than this cannot prepare to XC_JID_PART_MAX bytes in any realistic case (only
 * characters that map to nothing shrink it); refusing it early bounds the work. */
#define PART_INPUT_MAX (4 * XC_JID_PART_MAX)
/* Room for NFKC to expand what it is given. */
#define PREP_BUF (PART_INPUT_MAX + 4 * XC_JID_PART_MAX + 1)

enum profile {
	NODE,
	DOMAIN,
	RESOURCE,
};

static const char *const part_name[] = {"local part", "domain", "resource"};

static bool is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* The result of Nodeprep, Nameprep or Resourceprep on ASCII input, without libidn: case folding
 * (not for resources) and the prohibited characters (controls; for local parts also the space
 * and "&'/:<>@). 0 or -EINVAL. */
static int prep_ascii(enum profile p, char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		if (p == RESOURCE)
			continue;
		if (c >= 'A' && c <= 'Z')
			s[i] = (char)(c - 'A' + 'a');
		else if (p == NODE && strchr(" \"&'/:<>@", c))
			return -EINVAL;
	}
	return 0;
}

static const char *rc_text(int rc)
{
	switch (rc) {
	case STRINGPREP_CONTAINS_PROHIBITED:
		return "a character it may not contain";
	case STRINGPREP_BIDI_BOTH_L_AND_RAL:
	case STRINGPREP_BIDI_LEADTRAIL_NOT_RAL:
	case STRINGPREP_BIDI_CONTAINS_PROHIBITED:
		return "a mix of right-to-left and left-to-right text that is not allowed";
	case STRINGPREP_TOO_SMALL_BUFFER:
		return "more than 1023 bytes once normalised";
	default:
		return "text that cannot be normalised";
	}
}

/* The domain once prepared: letters, digits, '-', '_' and dots between non-empty labels, or
 * anything beyond ASCII (an internationalised name). */
static int domain_check(const char *s, size_t len)
{
	size_t label = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
			continue;
		}
		label++;
		if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_')
			continue;
		return -EINVAL;
	}
	return label == 0 ? -EINVAL : 0;
}

/* "[v6]" as the compressed, lower-case form. */
static int ip6_literal(const char *in, size_t len, char **out)
{
	char buf[64], txt[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (len < 3 || len - 2 >= sizeof(buf) || in[len - 1] != ']')
		return -EINVAL;
	memcpy(buf, in + 1, len - 2);
	buf[len - 2] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1 || !inet_ntop(AF_INET6, &a, txt, sizeof(txt)))
		return -EINVAL;
	*out = malloc(strlen(txt) + 3);
	if (!*out)
		return -ENOMEM;
	(*out)[0] = '[';
	memcpy(*out + 1, txt, strlen(txt));
	memcpy(*out + 1 + strlen(txt), "]", 2);
	return 0;
}

/* Prepare one part: *out is a new string. */
static int prep(enum profile p, const char *in, size_t len, char **out, char *err, size_t errlen)
{
	const char *what = part_name[p];
	char *buf;
	size_t n;
	int rc;

	*out = NULL;
	if (p == DOMAIN && len > 0 && in[len - 1] == '.')
		len--; /* "example.com." is example.com */
	if (len == 0)
		return cm_errf(err, errlen, -EINVAL, "the %s is empty", what);
	if (len > PART_INPUT_MAX)
		return cm_errf(err, errlen, -EINVAL, "the %s is longer than 1023 bytes", what);
	if (memchr(in, '\0', len) || !cm_utf8_valid(in, len))
		return cm_errf(err, errlen, -EINVAL, "the %s is not valid UTF-8", what);
	if (p == DOMAIN && in[0] == '[') {
		rc = ip6_literal(in, len, out);
		return rc == -EINVAL ? cm_errf(err, errlen, rc,
		                               "the domain is not a valid IPv6 "
		                               "address in brackets")
		                     : rc;
	}
	if (is_ascii(in, len)) {
		buf = malloc(len + 1);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, in, len);
		buf[len] = '\0';
		if (prep_ascii(p, buf, len) != 0) {
			free(buf);
			return cm_errf(err, errlen, -EINVAL, "the %s contains %s", what,
			               rc_text(STRINGPREP_CONTAINS_PROHIBITED));
		}
	} else {
		buf = malloc(PREP_BUF);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, in, len);
		buf[len] = '\0';
		rc = stringprep(buf, PREP_BUF, 0,
		                p == NODE     ? stringprep_xmpp_nodeprep
		                : p == DOMAIN ? stringprep_nameprep
		                              : stringprep_xmpp_resourceprep);
		if (rc == STRINGPREP_MALLOC_ERROR) {
			free(buf);
			return -ENOMEM;
		}
		if (rc != STRINGPREP_OK) {
			free(buf);
			return cm_errf(err, errlen, -EINVAL, "the %s contains %s", what,
			               rc_text(rc));
		}
	}
	n = strlen(buf);
	if (n == 0 || n > XC_JID_PART_MAX) {
		free(buf);
		return cm_errf(err, errlen, -EINVAL, "the %s is %s", what,
		               n ? "longer than 1023 bytes once normalised"
		                 : "empty once normalised");
	}
	if (p == DOMAIN && domain_check(buf, n) != 0) {
		free(buf);
		return cm_errf(err, errlen, -EINVAL,
		               "the domain is not a host name (letters, digits, '-' and dots)");
	}
	*out = buf;
	return 0;
}

int xc_jid_nodeprep(const char *in, size_t len, char **out, char *err, size_t errlen)
{
	return prep(NODE, in, len, out, err, errlen);
}

int xc_jid_resourceprep(const char *in, size_t len, char **out, char *err, size_t errlen)
{
	return prep(RESOURCE, in, len, out, err, errlen);
}

int xc_jid_saslprep(const char *in, size_t len, char **out)
{
	char *buf;
	int rc;

	*out = NULL;
	if (len > PART_INPUT_MAX || memchr(in, '\0', len) || !cm_utf8_valid(in, len))
		return -EINVAL;
	buf = malloc(PREP_BUF);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, in, len);
	buf[len] = '\0';
	rc = stringprep(buf, PREP_BUF, 0, stringprep_saslprep);
	if (rc != STRINGPREP_OK || buf[0] == '\0') {
		free(buf);
		return rc == STRINGPREP_MALLOC_ERROR ? -ENOMEM : -EINVAL;
	}
	*out = buf;
	return 0;
}

void xc_jid_free(struct xc_jid *j)
{
	free(j->s);
	memset(j, 0, sizeof(*j));
}

/* Join prepared parts (local and resource may be NULL) into j. */
static int join(struct xc_jid *j, const char *l, const char *d, const char *r)
{
	size_t ll = l ? strlen(l) : 0, dl = strlen(d), rl = r ? strlen(r) : 0;
	char *p;

	j->s = p = malloc(ll + dl + rl + 3);
	if (!p)
		return -ENOMEM;
	if (ll) {
		memcpy(p, l, ll);
		p[ll] = '@';
		p += ll + 1;
	}
	memcpy(p, d, dl);
	p += dl;
	if (rl) {
		*p++ = '/';
		memcpy(p, r, rl);
		p += rl;
	}
	*p = '\0';
	j->llen = (uint16_t)ll;
	j->dlen = (uint16_t)dl;
	j->rlen = (uint16_t)rl;
	return 0;
}

/* The common case at once: every part ASCII and valid as it is but for case, prepared in place
 * in the one string the JID keeps (one allocation, where part by part takes four). 0, or
 * -EAGAIN when the parts need the long way (non-ASCII, an IPv6 literal, or anything wrong: the
 * long way says what). */
static int build_ascii(struct xc_jid *j, const char *l, size_t ll, const char *d, size_t dl,
                       const char *r, size_t rl)
{
	char *p;

	if (dl > 0 && d[dl - 1] == '.')
		dl--; /* "example.com." is example.com */
	if ((l && (ll == 0 || ll > XC_JID_PART_MAX || !is_ascii(l, ll))) || dl == 0 ||
	    dl > XC_JID_PART_MAX || d[0] == '[' || !is_ascii(d, dl) ||
	    (r && (rl == 0 || rl > XC_JID_PART_MAX || !is_ascii(r, rl))))
		return -EAGAIN;
	if (!l)
		ll = 0;
	if (!r)
		rl = 0;
	p = malloc(ll + dl + rl + 3);
	if (!p)
		return -ENOMEM;
	j->s = p;
	if (ll) {
		memcpy(p, l, ll);
		p[ll] = '@';
		p += ll + 1;
	}
	memcpy(p, d, dl);
	if (rl) {
		p[dl] = '/';
		memcpy(p + dl + 1, r, rl);
	}
	p[dl + (rl ? rl + 1 : 0)] = '\0';
	if ((ll && prep_ascii(NODE, j->s, ll) != 0) || prep_ascii(DOMAIN, p, dl) != 0 ||
	    domain_check(p, dl) != 0 || (rl && prep_ascii(RESOURCE, p + dl + 1, rl) != 0)) {
		free(j->s);
		j->s = NULL;
		return -EAGAIN;
	}
	j->llen = (uint16_t)ll;
	j->dlen = (uint16_t)dl;
	j->rlen = (uint16_t)rl;
	return 0;
}

static int build(struct xc_jid *j, const char *l, size_t ll, const char *d, size_t dl,
                 const char *r, size_t rl, char *err, size_t errlen)
{
	char *pl = NULL, *pd = NULL, *pr = NULL;
	int rc = 0;

	memset(j, 0, sizeof(*j));
	if ((rc = build_ascii(j, l, ll, d, dl, r, rl)) != -EAGAIN)
		return rc;
	rc = 0;
	if (l)
		rc = prep(NODE, l, ll, &pl, err, errlen);
	if (!rc)
		rc = prep(DOMAIN, d, dl, &pd, err, errlen);
	if (!rc && r)
		rc = prep(RESOURCE, r, rl, &pr, err, errlen);
	if (!rc)
		rc = join(j, pl, pd, pr);
	free(pl);
	free(pd);
	free(pr);
	return rc;
}

int xc_jid_parse(struct xc_jid *j, const char *s, size_t len, char *err, size_t errlen)
{
	const char *slash = memchr(s, '/', len);
	size_t blen = slash ? (size_t)(slash - s) : len;
	const char *at = memchr(s, '@', blen);
	const char *d = at ? at + 1 : s;
	size_t dl = (size_t)(s + blen - d);

	/* RFC 7622 3.1: the resource is everything after the first '/', the local part what
	 * comes before the first '@' of the rest. Empty parts are errors, not absent ones. */
	return build(j, at ? s : NULL, at ? (size_t)(at - s) : 0, d, dl, slash ? slash + 1 : NULL,
	             slash ? len - blen - 1 : 0, err, errlen);
}

int xc_jid_make(struct xc_jid *j, const char *local, const char *domain, const char *resource,
                char *err, size_t errlen)
{
	if (!domain) {
		memset(j, 0, sizeof(*j));
		return cm_errf(err, errlen, -EINVAL, "the domain is empty");
	}
	return build(j, local, local ? strlen(local) : 0, domain, strlen(domain), resource,
	             resource ? strlen(resource) : 0, err, errlen);
}

int xc_jid_copy(struct xc_jid *dst, const struct xc_jid *src, bool bare)
{
	size_t n = bare ? xc_jid_bare_len(src) : xc_jid_len(src);

	memset(dst, 0, sizeof(*dst));
	if (!src->s)
		return 0;
	dst->s = malloc(n + 1);
	if (!dst->s)
		return -ENOMEM;
	memcpy(dst->s, src->s, n);
	dst->s[n] = '\0';
	dst->llen = src->llen;
	dst->dlen = src->dlen;
	dst->rlen = bare ? 0 : src->rlen;
	return 0;
}
