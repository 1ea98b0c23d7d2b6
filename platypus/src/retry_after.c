/* retry_after.c - the Retry-After header (RFC 9110 section 10.2.3): delta-seconds or an
 * HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms), as seconds from now. */
#include "retry.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *const wkday[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct cur {
	const char *p, *end;
};

static bool lit(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n))
		return false;
	c->p += n;
	return true;
}

/* Exactly n digits. */
static bool num(struct cur *c, unsigned n, int *out)
{
	int v = 0;

	if ((size_t)(c->end - c->p) < n)
		return false;
	for (unsigned i = 0; i < n; i++) {
		if (c->p[i] < '0' || c->p[i] > '9')
			return false;
		v = v * 10 + (c->p[i] - '0');
	}
	c->p += n;
	*out = v;
	return true;
}

/* One of names (compared without regard to case, as most clients do); its index or -1. */
static int name(struct cur *c, const char *const *names, int count)
{
	const char *w = c->p;
	size_t n = 0;

	while (w + n < c->end && ((w[n] | 0x20) >= 'a' && (w[n] | 0x20) <= 'z'))
		n++;
	for (int i = 0; i < count; i++)
		if (strlen(names[i]) == n && !strncasecmp(w, names[i], n)) {
			c->p += n;
			return i;
		}
	return -1;
}

/* "HH:MM:SS" */
static bool time_of_day(struct cur *c, int *h, int *m, int *s)
{
	return num(c, 2, h) && lit(c, ":") && num(c, 2, m) && lit(c, ":") && num(c, 2, s) &&
	       *h <= 23 && *m <= 59 && *s <= 60; /* 60: a leap second */
}

static bool leap(long long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (m 1..12). */
static long long days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The year of the wall time now (UTC). */
static long long year_of(time_t now)
{
	struct tm tm;

	if (!gmtime_r(&now, &tm))
		return 1970;
	return (long long)tm.tm_year + 1900;
}

/* An HTTP-date in any of its three forms as seconds since the epoch; false if it is not one. */
static bool http_date(struct cur *c, time_t now, long long *out)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int d = 0, mon = -1, y = 0, h = 0, mi = 0, s = 0;
	long long year;

	if (name(c, wkday, 7) >= 0) {
		if (lit(c, ", ")) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!num(c, 2, &d) || !lit(c, " ") || (mon = name(c, months, 12)) < 0 ||
			    !lit(c, " ") || !num(c, 4, &y) || !lit(c, " ") ||
			    !time_of_day(c, &h, &mi, &s) || !lit(c, " GMT"))
				return false;
		} else {
			/* asctime: Sun Nov  6 08:49:37 1994 */
			if (!lit(c, " ") || (mon = name(c, months, 12)) < 0 || !lit(c, " ") ||
			    !(lit(c, " ") ? num(c, 1, &d) : num(c, 2, &d)) || !lit(c, " ") ||
			    !time_of_day(c, &h, &mi, &s) || !lit(c, " ") || !num(c, 4, &y))
				return false;
		}
		year = y;
	} else if (name(c, weekday, 7) >= 0) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT. A two-digit year more than 50 years
		 * ahead is the latest past year ending in those digits (RFC 9110 5.6.7). */
		long long cur = year_of(now);

		if (!lit(c, ", ") || !num(c, 2, &d) || !lit(c, "-") ||
		    (mon = name(c, months, 12)) < 0 || !lit(c, "-") || !num(c, 2, &y) ||
		    !lit(c, " ") || !time_of_day(c, &h, &mi, &s) || !lit(c, " GMT"))
			return false;
		year = cur - cur % 100 + y;
		if (year > cur + 50)
			year -= 100;
	} else
		return false;
	if (d < 1 || d > mdays[mon] + (mon == 1 && leap(year)))
		return false;
	*out = days_from_civil(year, mon + 1, d) * 86400 + h * 3600 + mi * 60 + s;
	return true;
}

long long pp_retry_after_parse(const char *v, size_t len, time_t now)
{
	struct cur c = {v, v + len};
	long long t, secs = 0;

	if (!v)
		return -1;
	while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
		c.p++;
	while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
		c.end--;
	if (c.p == c.end)
		return -1;
	if (*c.p >= '0' && *c.p <= '9') {
		/* delta-seconds: saturate rather than overflow, then clamp */
		for (; c.p < c.end; c.p++) {
			if (*c.p < '0' || *c.p > '9')
				return -1;
			if (secs <= PP_RETRY_AFTER_MAX)
				secs = secs * 10 + (*c.p - '0');
		}
		return secs > PP_RETRY_AFTER_MAX ? PP_RETRY_AFTER_MAX : secs;
	}
	if (!http_date(&c, now, &t) || c.p != c.end)
		return -1;
	if (t <= (long long)now)
		return 0;
	t -= (long long)now;
	return t > PP_RETRY_AFTER_MAX ? PP_RETRY_AFTER_MAX : t;
}
