/* jid.h - XMPP addresses (RFC 7622): parsing, normalisation, comparison.
 *
 * A JID is held normalised, as one string "local@domain/resource" with the lengths of its parts,
 * so that comparing two JIDs, or their bare forms, is a memcmp and a JID can be used as a map
 * key as it is. Normalisation uses libidn's stringprep profiles (RFC 6122: Nodeprep for the
 * local part, Nameprep for the domain, Resourceprep for the resource; SASLprep for passwords);
 * jid.c is libidn's only user. Plain ASCII takes a short path whose result is the same (the tests
 * compare both on every ASCII string they try, and the fuzz target on whatever it finds).
 *
 * Limits: each part 1 to 1023 bytes after preparation; the domain may be an IPv4 address or an
 * IPv6 address in brackets; a final dot of the domain is dropped.
 */
#ifndef XC_JID_H
#define XC_JID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XC_JID_PART_MAX 1023

struct xc_jid {
	char *s;       /* owned: "local@domain/resource", NUL-terminated; NULL for the empty JID */
	uint16_t llen; /* local part (0: none) */
	uint16_t dlen; /* domain */
	uint16_t rlen; /* resource (0: none) */
};

/* Parse and normalise len bytes of s (UTF-8). 0, -EINVAL (not a valid JID: err says which part
 * and why), -ENOMEM. On failure j is left empty. err may be NULL (cm/err.h). */
int xc_jid_parse(struct xc_jid *j, const char *s, size_t len, char *err, size_t errlen);

/* Build from parts (each may be NULL but the domain), normalising each. Same returns. */
int xc_jid_make(struct xc_jid *j, const char *local, const char *domain, const char *resource,
                char *err, size_t errlen);

/* Copy src (normalised already) into dst; with bare, without the resource. 0 or -ENOMEM. */
int xc_jid_copy(struct xc_jid *dst, const struct xc_jid *src, bool bare);

void xc_jid_free(struct xc_jid *j); /* j becomes empty; accepts an empty JID */

/* Prepare one part on its own (for user names at registration, resources asked at bind).
 * *out is a new string (caller frees). Same returns as xc_jid_parse(). */
int xc_jid_nodeprep(const char *in, size_t len, char **out, char *err, size_t errlen);
int xc_jid_resourceprep(const char *in, size_t len, char **out, char *err, size_t errlen);

/* SASLprep (RFC 4013) of a password, for SCRAM and PLAIN. *out is a new string. 0, -EINVAL
 * (not valid UTF-8, a prohibited character, empty once prepared), -ENOMEM. */
int xc_jid_saslprep(const char *in, size_t len, char **out);

static inline bool xc_jid_empty(const struct xc_jid *j)
{
	return j->s == NULL;
}

/* Bytes of the bare form ("local@domain" or "domain") at the start of j->s. */
static inline size_t xc_jid_bare_len(const struct xc_jid *j)
{
	return j->llen ? (size_t)j->llen + 1 + j->dlen : j->dlen;
}

static inline size_t xc_jid_len(const struct xc_jid *j)
{
	return xc_jid_bare_len(j) + (j->rlen ? 1u + j->rlen : 0u);
}

static inline const char *xc_jid_domain(const struct xc_jid *j)
{
	return j->s + (j->llen ? j->llen + 1 : 0);
}

static inline const char *xc_jid_resource(const struct xc_jid *j)
{
	return j->rlen ? j->s + xc_jid_bare_len(j) + 1 : NULL;
}

static inline bool xc_jid_is_bare(const struct xc_jid *j)
{
	return j->rlen == 0;
}

static inline bool xc_jid_equal(const struct xc_jid *a, const struct xc_jid *b)
{
	return a->llen == b->llen && a->dlen == b->dlen && a->rlen == b->rlen &&
	       (a->s == b->s || (a->s && b->s && memcmp(a->s, b->s, xc_jid_len(a)) == 0));
}

static inline bool xc_jid_bare_equal(const struct xc_jid *a, const struct xc_jid *b)
{
	return a->llen == b->llen && a->dlen == b->dlen && a->s && b->s &&
	       memcmp(a->s, b->s, xc_jid_bare_len(a)) == 0;
}

#endif
