/* cfg_value.c - syntax of scalar values: integers, booleans, durations, sizes, addresses, ${ENV}.
 *
 * The parsers are deliberately strict (no whitespace, no trailing junk, no silent wrap-around)
 * because a value that is read differently from what the operator meant is worse than an error.
 */
#include "cfg_int.h"
#include "cm/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Read a run of decimal digits at *p, advancing it. -EINVAL if there is none, -ERANGE above
 * INT64_MAX: durations and sizes are compared with long long bounds. */
static int parse_digits(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	bool big = false;

	if (!is_digit(*s))
		return -EINVAL;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > ((uint64_t)INT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	*p = s;
	if (big)
		return -ERANGE;
	*out = v;
	return 0;
}

int cm_cfg__parse_int(const char *s, long long *out)
{
	const char *p = s;
	bool neg = false;
	uint64_t v = 0;
	int err;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	/* "0640" would be octal to a reader who knows YAML 1.1; refuse rather than guess. */
	if (p[0] == '0' && is_digit(p[1]))
		return -EINVAL;
	err = parse_digits(&p, &v);
	if (err == -EINVAL || *p != '\0')
		return -EINVAL;
	if (err == -ERANGE) {
		/* LLONG_MIN itself is one more than INT64_MAX in magnitude. */
		if (neg && strcmp(s, "-9223372036854775808") == 0) {
			*out = LLONG_MIN;
			return 0;
		}
		return -ERANGE;
	}
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

int cm_cfg__parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* number * mult, refusing results above INT64_MAX. */
static int scale(uint64_t v, uint64_t mult, uint64_t *out)
{
	if (v > (uint64_t)INT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int cm_cfg__parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
	};
	const char *p = s;
	uint64_t v;
	int err = parse_digits(&p, &v);

	if (err == -EINVAL)
		return err;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) == 0)
			return err ? err : scale(v, units[i].ms, ms);
	}
	return -EINVAL;
}

int cm_cfg__parse_size(const char *s, uint64_t *bytes)
{
	const char *p = s;
	uint64_t v, mult = 1;
	int err = parse_digits(&p, &v);

	if (err == -EINVAL)
		return err;
	if (p[0] != '\0') {
		if (p[1] != '\0')
			return -EINVAL;
		switch (p[0]) {
		case 'k':
		case 'K':
			mult = 1ULL << 10;
			break;
		case 'm':
		case 'M':
			mult = 1ULL << 20;
			break;
		case 'g':
		case 'G':
			mult = 1ULL << 30;
			break;
		default:
			return -EINVAL;
		}
	}
	return err ? err : scale(v, mult, bytes);
}

static bool looks_like_name(const char *host)
{
	for (const char *p = host; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			return true;
	}
	return false;
}

int cm_cfg_parse_addr(const char *s, struct cm_cfg_addr *a, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs;
	size_t hlen;
	uint64_t port;
	const char *p;
	bool v6 = s[0] == '[';

	if (v6) {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			return cm_errf(err, errlen, -EINVAL, "expected [IPv6]:PORT");
		}
		hs = s + 1;
		hlen = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			return cm_errf(err, errlen, -EINVAL, "expected IP:PORT or [IPv6]:PORT");
		}
		hs = s;
		hlen = (size_t)(colon - s);
		if (memchr(hs, ':', hlen)) {
			return cm_errf(
			    err, errlen, -EINVAL,
			    "an IPv6 address must be written in brackets, as [::1]:PORT");
		}
	}
	p = colon + 1;
	if (parse_digits(&p, &port) != 0 || *p != '\0' || port > 65535) {
		return cm_errf(err, errlen, -EINVAL, "the port must be a number from 0 to 65535");
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		return cm_errf(err, errlen, -EINVAL, "expected IP:PORT or [IPv6]:PORT");
	}
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	memset(&a->sa, 0, sizeof(a->sa));
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			return cm_errf(err, errlen, -EINVAL, "not a valid IPv6 address");
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		a->salen = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			/* Resolving at load time would make the file's meaning depend on DNS. */
			return cm_errf(err, errlen, -EINVAL, "%s",
			               looks_like_name(host)
			                   ? "a numeric IP address is required, not a host name"
			                   : "not a valid IPv4 address");
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a->salen = sizeof(*sin);
	}
	a->port = (uint16_t)port;
	return 0;
}

static bool name_ok(const char *n, size_t len)
{
	if (len == 0 || is_digit(n[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!(c == '_' || is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

int cm_cfg__expand(const char *s, size_t len, char **out, char *err, size_t errlen)
{
	struct cm_buf b;
	size_t i = 0;
	int rc;

	cm_buf_init(&b, 0);
	/* Allocate even for "" so that the caller always gets a string. */
	rc = cm_buf_reserve(&b, len);
	if (!rc)
		b.data[0] = '\0';
	while (!rc && i < len) {
		const char *d = memchr(s + i, '$', len - i);
		size_t run = d ? (size_t)(d - (s + i)) : len - i;
		const char *close, *v;
		char name[200];
		size_t nlen;

		rc = cm_buf_append(&b, s + i, run);
		i += run;
		if (rc || !d)
			break;
		if (i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
			/* A lone '$' is just a character: passwords and regexes contain them. */
			rc = cm_buf_append(&b, "$", 1);
			i++;
			continue;
		}
		if (s[i + 1] == '$') {
			rc = cm_buf_append(&b, "$", 1);
			i += 2;
			continue;
		}
		close = memchr(s + i + 2, '}', len - i - 2);
		if (!close) {
			rc = cm_errf(err, errlen, -EINVAL,
			             "unterminated ${ (write $$ for a literal $)");
			break;
		}
		nlen = (size_t)(close - (s + i + 2));
		if (!name_ok(s + i + 2, nlen) || nlen >= sizeof(name)) {
			rc = cm_errf(err, errlen, -EINVAL,
			             "invalid environment variable name \"%.*s\"",
			             (int)(nlen > 64 ? 64 : nlen), s + i + 2);
			break;
		}
		memcpy(name, s + i + 2, nlen);
		name[nlen] = '\0';
		v = getenv(name);
		if (!v) {
			rc = cm_errf(err, errlen, -EINVAL, "environment variable %s is not set",
			             name);
			break;
		}
		rc = cm_buf_puts(&b, v);
		i = (size_t)(close - s) + 1;
	}
	if (rc) {
		cm_buf_free(&b);
		return rc == -EINVAL ? rc : -ENOMEM;
	}
	*out = cm_buf_steal(&b);
	return 0;
}

void cm_cfg__format_duration(uint64_t ms, char buf[32])
{
	static const struct {
		uint64_t ms;
		char unit;
	} units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms && ms % units[i].ms == 0) {
			snprintf(buf, 32, "%llu%c", (unsigned long long)(ms / units[i].ms),
			         units[i].unit);
			return;
		}
	}
	snprintf(buf, 32, ms ? "%llums" : "%llus", (unsigned long long)ms);
}

void cm_cfg__format_size(uint64_t bytes, char buf[32])
{
	static const struct {
		unsigned shift;
		char unit;
	} units[] = {{30, 'G'}, {20, 'M'}, {10, 'k'}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t m = 1ULL << units[i].shift;

		if (bytes && bytes % m == 0) {
			snprintf(buf, 32, "%llu%c", (unsigned long long)(bytes / m), units[i].unit);
			return;
		}
	}
	snprintf(buf, 32, "%llu", (unsigned long long)bytes);
}
