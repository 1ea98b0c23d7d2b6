/* filter.c - peer address policy (see filter.h). */
#include "filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "cm/err.h"

/* PROTOCOLS.md's list (eturnal's recommended set) plus ::/96, the deprecated IPv4-compatible
 * form, which some stacks still route as IPv4. */
const char *const icicle_filter_default_deny[] = {
    "0.0.0.0/8",      "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "172.16.0.0/12",  "192.0.0.0/24",  "192.0.2.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4",    "240.0.0.0/4",   "::/128",
    "::1/128",        "::/96",          "64:ff9b::/96",  "64:ff9b:1::/48",
    "100::/64",       "2001::/23",      "2001:db8::/32", "2002::/16",
    "fc00::/7",       "fe80::/10",      "ff00::/8",      NULL,
};

static void mask(uint8_t a[16], unsigned bits)
{
	unsigned i;

	for (i = 0; i < 16; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (uint8_t)(0xff00u >> bits);
		bits = 0;
	}
}

int icicle_cidr_parse(const char *text, struct icicle_cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long bits;
	struct in_addr v4;
	bool is4;
	char *end;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		is4 = true;
		c->addr[10] = 0xff;
		c->addr[11] = 0xff;
		memcpy(c->addr + 12, &v4, 4);
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		is4 = false;
	} else {
		return -EINVAL;
	}
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > (is4 ? 32u : 128u))
			return -EINVAL;
	} else {
		bits = is4 ? 32 : 128;
	}
	c->bits = (uint8_t)(is4 ? bits + 96 : bits);
	mask(c->addr, c->bits);
	return 0;
}

static int add_list(struct icicle_cidr **v, size_t *n, const char *const *texts, size_t count,
                    char *err, size_t errlen)
{
	struct icicle_cidr *nv;
	size_t i;

	if (count == 0)
		return 0;
	nv = realloc(*v, (*n + count) * sizeof(*nv));
	if (!nv)
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	*v = nv;
	for (i = 0; i < count; i++) {
		if (icicle_cidr_parse(texts[i], &nv[*n]) != 0)
			return cm_errf(err, errlen, -EINVAL,
			               "\"%s\" is not an address or ADDRESS/BITS", texts[i]);
		(*n)++;
	}
	return 0;
}

int icicle_filter_init(struct icicle_filter *f, bool with_defaults, const char *const *deny,
                       size_t ndeny, const char *const *allow, size_t nallow, char *err,
                       size_t errlen)
{
	size_t ndef = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	while (icicle_filter_default_deny[ndef])
		ndef++;
	if (with_defaults && (rc = add_list(&f->deny, &f->ndeny, icicle_filter_default_deny, ndef,
	                                    err, errlen)) != 0)
		goto fail;
	if ((rc = add_list(&f->deny, &f->ndeny, deny, ndeny, err, errlen)) != 0)
		goto fail;
	if ((rc = add_list(&f->allow, &f->nallow, allow, nallow, err, errlen)) != 0)
		goto fail;
	return 0;
fail:
	icicle_filter_close(f);
	return rc;
}

void icicle_filter_close(struct icicle_filter *f)
{
	free(f->deny);
	free(f->allow);
	memset(f, 0, sizeof(*f));
}

static bool match(const struct icicle_cidr *c, const uint8_t a[16])
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return (a[full] & (uint8_t)(0xff00u >> rest)) == c->addr[full];
}

static bool in_list(const struct icicle_cidr *v, size_t n, const uint8_t a[16])
{
	size_t i;

	for (i = 0; i < n; i++)
		if (match(&v[i], a))
			return true;
	return false;
}

static bool allowed(const struct icicle_filter *f, const struct sockaddr *sa, bool port0_ok)
{
	uint8_t a[16] = {0};

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (in->sin_port == 0 && !port0_ok)
			return false;
		a[10] = 0xff;
		a[11] = 0xff;
		memcpy(a + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (in6->sin6_port == 0 && !port0_ok)
			return false;
		memcpy(a, &in6->sin6_addr, 16);
	} else {
		return false;
	}
	if (in_list(f->allow, f->nallow, a))
		return true;
	return !in_list(f->deny, f->ndeny, a);
}

bool icicle_filter_allowed(const struct icicle_filter *f, const struct sockaddr *sa)
{
	return allowed(f, sa, false);
}

bool icicle_filter_allowed_ip(const struct icicle_filter *f, const struct sockaddr *sa)
{
	return allowed(f, sa, true);
}
