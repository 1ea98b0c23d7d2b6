/* mam_query.c - archive queries and preferences read from client XML, forms and times written
 * (mam_int.h). A query is hostile input: every value is bounded and checked, and a refusal says
 * which field was wrong. */
#include "mam_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/err.h"
#include "jid.h"
#include "mam.h"

/* --- times (XEP-0082) ----------------------------------------------------------------------- */

/* n decimal digits at s into *v. */
static bool digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's method). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t yy = y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

int xc_mam__parse_time(const char *s, int64_t *ms)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
	const char *p;

	if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		/* milliseconds count; further digits (up to nanoseconds) are read and dropped */
		for (p++; *p >= '0' && *p <= '9'; p++, n++) {
			if (n >= 9)
				return -EINVAL;
			if (n < 3)
				frac = frac * 10 + (*p - '0');
		}
		if (n == 0)
			return -EINVAL;
		for (; n < 3; n++)
			frac *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*ms = (((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec) * 1000 + frac -
	      (int64_t)sign * (oh * 60 + om) * 60000;
	return 0;
}

void xc_mam__format_time(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* --- queries ------------------------------------------------------------------------------- */

enum field {
	F_FORM_TYPE,
	F_WITH,
	F_START,
	F_END,
	F_AFTER_ID,
	F_BEFORE_ID,
	F_IDS,
	F_N,
};

static const char *const field_names[F_N] = {
    [F_FORM_TYPE] = "FORM_TYPE", [F_WITH] = "with",           [F_START] = "start", [F_END] = "end",
    [F_AFTER_ID] = "after-id",   [F_BEFORE_ID] = "before-id", [F_IDS] = "ids",
};

/* The text of element n, which must hold text only: NULL (with err) otherwise. */
static const char *text_of(const struct cm_xml_node *n, const char *what, char *err, size_t errlen)
{
	const char *t = cm_xml_text(n);

	if (!t)
		cm_errf(err, errlen, -EINVAL, "%s: text expected, not elements", what);
	return t;
}

/* An archive id a client names: 1 to XC_MAM_ID_MAX bytes. A copy in *out. */
static int take_id(const char *t, const char *what, char **out, char *err, size_t errlen)
{
	size_t n = strlen(t);

	if (n == 0 || n > XC_MAM_ID_MAX)
		return cm_errf(err, errlen, -EINVAL, "%s: an id of 1 to %d bytes expected", what,
		               XC_MAM_ID_MAX);
	*out = strdup(t);
	return *out ? 0 : -ENOMEM;
}

static int field_value(struct xc_mam__query *out, enum field f, const char *v, char *err,
                       size_t errlen)
{
	struct xc_archive_query *aq = &out->aq;
	struct xc_jid j;
	int r;

	switch (f) {
	case F_FORM_TYPE:
		if (strcmp(v, XC_NS_MAM) != 0)
			return cm_errf(err, errlen, -EINVAL, "FORM_TYPE must be %s", XC_NS_MAM);
		return 0;
	case F_WITH:
		r = xc_jid_parse(&j, v, strlen(v), NULL, 0);
		if (r == -ENOMEM)
			return r;
		if (r)
			return cm_errf(err, errlen, -EINVAL, "with: not a JID");
		aq->with = j.s; /* handed over: the normalised string */
		return 0;
	case F_START:
	case F_END:
		if (xc_mam__parse_time(v, f == F_START ? &aq->start_ms : &aq->end_ms) != 0)
			return cm_errf(err, errlen, -EINVAL,
			               "%s: not a date and time (XEP-0082, e.g. "
			               "2024-05-01T12:00:00Z)",
			               field_names[f]);
		return 0;
	case F_AFTER_ID:
		return take_id(v, "after-id", &aq->after_id, err, errlen);
	case F_BEFORE_ID:
		return take_id(v, "before-id", &aq->before_id, err, errlen);
	default:
		return -EINVAL;
	}
}

static int parse_ids(struct xc_mam__query *out, const struct cm_xml_node *field, unsigned max_page,
                     char *err, size_t errlen)
{
	struct xc_archive_query *aq = &out->aq;
	size_t n = 0;

	for (const struct cm_xml_node *v = cm_xml_child(field, "value", CM_XML_NS_DATA); v;
	     v = cm_xml_child_next(v, "value", CM_XML_NS_DATA))
		n++;
	if (n > max_page)
		return cm_errf(err, errlen, -EINVAL, "ids: at most %u ids in one query", max_page);
	if (n == 0)
		return 0;
	aq->ids = calloc(n, sizeof(*aq->ids));
	if (!aq->ids)
		return -ENOMEM;
	for (const struct cm_xml_node *v = cm_xml_child(field, "value", CM_XML_NS_DATA); v;
	     v = cm_xml_child_next(v, "value", CM_XML_NS_DATA)) {
		const char *t = text_of(v, "ids", err, errlen);
		int r;

		if (!t)
			return -EINVAL;
		r = take_id(t, "ids", &aq->ids[aq->nids], err, errlen);
		if (r)
			return r;
		aq->nids++;
	}
	return 0;
}

static int parse_form(struct xc_mam__query *out, const struct cm_xml_node *x, unsigned max_page,
                      char *err, size_t errlen)
{
	const char *type = cm_xml_attr(x, "type");
	bool seen[F_N] = {false};

	if (!type || strcmp(type, "submit") != 0)
		return cm_errf(err, errlen, -EINVAL, "the form's type must be submit");
	for (const struct cm_xml_node *fl = cm_xml_child(x, "field", CM_XML_NS_DATA); fl;
	     fl = cm_xml_child_next(fl, "field", CM_XML_NS_DATA)) {
		const char *var = cm_xml_attr(fl, "var");
		const struct cm_xml_node *v;
		enum field f;
		int r;

		if (!var)
			return cm_errf(err, errlen, -EINVAL, "a field without var");
		for (f = 0; f < F_N && strcmp(var, field_names[f]) != 0; f++)
			;
		if (f == F_N)
			return cm_errf(err, errlen, -EINVAL, "unknown field '%.64s'%s", var,
			               strlen(var) > 64 ? "..." : "");
		if (seen[f])
			return cm_errf(err, errlen, -EINVAL, "field '%s' given twice",
			               field_names[f]);
		seen[f] = true;
		if (f == F_IDS) {
			r = parse_ids(out, fl, max_page, err, errlen);
			if (r)
				return r;
			continue;
		}
		v = cm_xml_child(fl, "value", CM_XML_NS_DATA);
		if (!v)
			continue; /* no value: as if the field were absent */
		if (cm_xml_child_next(v, "value", CM_XML_NS_DATA))
			return cm_errf(err, errlen, -EINVAL, "field '%s' takes one value",
			               field_names[f]);
		if (!text_of(v, field_names[f], err, errlen))
			return -EINVAL;
		r = field_value(out, f, cm_xml_text(v), err, errlen);
		if (r)
			return r;
	}
	return 0;
}

static int parse_rsm(struct xc_mam__query *out, const struct cm_xml_node *set, unsigned max_page,
                     char *err, size_t errlen)
{
	struct xc_archive_query *aq = &out->aq;
	bool seen_max = false;

	for (const struct cm_xml_node *c = set->children; c; c = c->next) {
		const char *t;

		if (c->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(c->ns, XC_NS_RSM) != 0)
			return cm_errf(err, errlen, -EINVAL,
			               "RSM: an element of another namespace");
		t = text_of(c, "RSM", err, errlen);
		if (!t)
			return -EINVAL;
		if (strcmp(c->name, "max") == 0) {
			unsigned long v = 0;
			size_t n = strlen(t);

			if (seen_max || n == 0 || n > 9 || strspn(t, "0123456789") != n)
				return cm_errf(err, errlen, -EINVAL,
				               "RSM max: one number from 0 to 999999999");
			seen_max = true;
			v = strtoul(t, NULL, 10);
			aq->max = v > max_page ? max_page : (unsigned)v;
		} else if (strcmp(c->name, "after") == 0) {
			if (aq->rsm_after)
				return cm_errf(err, errlen, -EINVAL, "RSM after given twice");
			int r = take_id(t, "RSM after", &aq->rsm_after, err, errlen);

			if (r)
				return r;
		} else if (strcmp(c->name, "before") == 0) {
			if (aq->backward)
				return cm_errf(err, errlen, -EINVAL, "RSM before given twice");
			aq->backward = true; /* empty: the last page */
			if (*t) {
				int r = take_id(t, "RSM before", &aq->rsm_before, err, errlen);

				if (r)
					return r;
			}
		} else if (strcmp(c->name, "index") == 0) {
			return cm_errf(err, errlen, -ENOTSUP,
			               "RSM index is not supported: page "
			               "with after and before");
		} else {
			return cm_errf(err, errlen, -EINVAL, "RSM: unknown element <%.32s/>",
			               c->name);
		}
	}
	return 0;
}

void xc_mam__query_clear(struct xc_mam__query *q)
{
	free(q->queryid);
	xc_archive_query_clear(&q->aq);
	q->queryid = NULL;
}

int xc_mam__query_parse(const struct cm_xml_node *q, unsigned max_page, struct xc_mam__query *out,
                        char *err, size_t errlen)
{
	const char *qid = cm_xml_attr(q, "queryid");
	bool form = false, rsm = false;
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->aq.start_ms = INT64_MIN;
	out->aq.end_ms = INT64_MAX;
	out->aq.max = max_page;
	if (cm_xml_attr(q, "node"))
		return cm_errf(err, errlen, -ENOTSUP, "archives of pubsub nodes are not served");
	if (qid) {
		if (strlen(qid) > XC_MAM_QUERYID_MAX)
			return cm_errf(err, errlen, -EINVAL, "queryid: at most %d bytes",
			               XC_MAM_QUERYID_MAX);
		out->queryid = strdup(qid);
		if (!out->queryid)
			return -ENOMEM;
	}
	for (const struct cm_xml_node *c = q->children; c && !r; c = c->next) {
		if (c->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(c->name, "x") == 0 && strcmp(c->ns, CM_XML_NS_DATA) == 0) {
			r = form ? cm_errf(err, errlen, -EINVAL, "two forms in one query")
			         : parse_form(out, c, max_page, err, errlen);
			form = true;
		} else if (strcmp(c->name, "set") == 0 && strcmp(c->ns, XC_NS_RSM) == 0) {
			r = rsm ? cm_errf(err, errlen, -EINVAL, "two RSM sets in one query")
			        : parse_rsm(out, c, max_page, err, errlen);
			rsm = true;
		} else if (strcmp(c->name, "flip-page") == 0 && strcmp(c->ns, XC_NS_MAM) == 0) {
			r = cm_errf(err, errlen, -ENOTSUP, "flip-page is not supported");
		} else if (strcmp(c->ns, XC_NS_MAM) == 0) {
			r = cm_errf(err, errlen, -EINVAL, "unknown element <%.32s/> in the query",
			            c->name);
		}
		/* elements of other namespaces are extensions this server ignores */
	}
	if (r)
		xc_mam__query_clear(out);
	return r;
}

/* --- forms and preferences ------------------------------------------------------------------ */

static int add_field(struct cm_xml_node *x, const char *var, const char *type, const char *value)
{
	struct cm_xml_node *f, *v;
	int r = cm_xml_node_new_child(&f, x, "field", NULL);

	r = r ? r : cm_xml_node_set_attr(f, "var", var);
	r = r ? r : cm_xml_node_set_attr(f, "type", type);
	if (!r && value) {
		r = cm_xml_node_new_child(&v, f, "value", NULL);
		r = r ? r : cm_xml_node_add_text(v, value, strlen(value));
	}
	return r;
}

struct cm_xml_node *xc_mam__form(void)
{
	struct cm_xml_node *q = NULL, *x;
	int r = cm_xml_node_new(&q, "query", XC_NS_MAM);

	r = r ? r : cm_xml_node_new_child(&x, q, "x", CM_XML_NS_DATA);
	r = r ? r : cm_xml_node_set_attr(x, "type", "form");
	r = r ? r : add_field(x, "FORM_TYPE", "hidden", XC_NS_MAM);
	r = r ? r : add_field(x, "with", "jid-single", NULL);
	r = r ? r : add_field(x, "start", "text-single", NULL);
	r = r ? r : add_field(x, "end", "text-single", NULL);
	r = r ? r : add_field(x, "after-id", "text-single", NULL);
	r = r ? r : add_field(x, "before-id", "text-single", NULL);
	r = r ? r : add_field(x, "ids", "text-multi", NULL);
	if (r) {
		cm_xml_node_free(q);
		return NULL;
	}
	return q;
}

static const char *const defaults[] = {"always", "roster", "never"};

/* The <jid/>s of an <always/> or <never/> list, as bare JIDs, appended to *v. */
static int parse_list(const struct cm_xml_node *list, char ***v, size_t *n, size_t *total,
                      char *err, size_t errlen)
{
	for (const struct cm_xml_node *j = cm_xml_child(list, "jid", XC_NS_MAM); j;
	     j = cm_xml_child_next(j, "jid", XC_NS_MAM)) {
		const char *t = text_of(j, "prefs", err, errlen);
		struct xc_jid jid;
		char **nv;
		int r;

		if (!t)
			return -EINVAL;
		if (++*total > XC_MAM_PREFS_MAX)
			return cm_errf(err, errlen, -EINVAL, "prefs: at most %d JIDs",
			               XC_MAM_PREFS_MAX);
		r = xc_jid_parse(&jid, t, strlen(t), NULL, 0);
		if (r == -ENOMEM)
			return r;
		if (r)
			return cm_errf(err, errlen, -EINVAL, "prefs: not a JID");
		nv = realloc(*v, (*n + 1) * sizeof(*nv));
		if (!nv) {
			xc_jid_free(&jid);
			return -ENOMEM;
		}
		*v = nv;
		nv[*n] = strndup(jid.s, xc_jid_bare_len(&jid)); /* a contact is a bare JID */
		xc_jid_free(&jid);
		if (!nv[*n])
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

int xc_mam__prefs_parse(const struct cm_xml_node *prefs, struct xc_archive_prefs *out, char *err,
                        size_t errlen)
{
	const char *def = cm_xml_attr(prefs, "default");
	const struct cm_xml_node *always = cm_xml_child(prefs, "always", XC_NS_MAM);
	const struct cm_xml_node *never = cm_xml_child(prefs, "never", XC_NS_MAM);
	size_t total = 0;
	int r;

	memset(out, 0, sizeof(*out));
	for (out->def = 0; def && out->def < 3 && strcmp(def, defaults[out->def]) != 0; out->def++)
		;
	if (!def || out->def == 3)
		return cm_errf(err, errlen, -EINVAL,
		               "prefs: default must be always, roster or never");
	if ((always && cm_xml_child_next(always, "always", XC_NS_MAM)) ||
	    (never && cm_xml_child_next(never, "never", XC_NS_MAM)))
		return cm_errf(err, errlen, -EINVAL,
		               "prefs: one always and one never list at most");
	r = always ? parse_list(always, &out->always, &out->nalways, &total, err, errlen) : 0;
	r = r ? r : never ? parse_list(never, &out->never, &out->nnever, &total, err, errlen) : 0;
	if (r)
		xc_archive_prefs_clear(out);
	return r;
}

static int add_list(struct cm_xml_node *prefs, const char *name, char *const *v, size_t n)
{
	struct cm_xml_node *l, *j;
	int r = cm_xml_node_new_child(&l, prefs, name, NULL);

	for (size_t i = 0; i < n && !r; i++) {
		r = cm_xml_node_new_child(&j, l, "jid", NULL);
		r = r ? r : cm_xml_node_add_text(j, v[i], strlen(v[i]));
	}
	return r;
}

struct cm_xml_node *xc_mam__prefs_build(const struct xc_archive_prefs *p, int def)
{
	struct cm_xml_node *n = NULL;
	int d = p ? p->def : def;
	int r = cm_xml_node_new(&n, "prefs", XC_NS_MAM);

	r = r ? r : cm_xml_node_set_attr(n, "default", defaults[d >= 0 && d < 3 ? d : 0]);
	r = r ? r : add_list(n, "always", p ? p->always : NULL, p ? p->nalways : 0);
	r = r ? r : add_list(n, "never", p ? p->never : NULL, p ? p->nnever : 0);
	if (r) {
		cm_xml_node_free(n);
		return NULL;
	}
	return n;
}

static bool listed(char *const *v, size_t n, const char *peer)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], peer) == 0)
			return true;
	return false;
}

bool xc_mam__wanted(const struct xc_archive_prefs *p, int def, const char *peer, bool in_roster)
{
	if (p) {
		if (listed(p->never, p->nnever, peer))
			return false;
		if (listed(p->always, p->nalways, peer))
			return true;
		def = p->def;
	}
	switch (def) {
	case XC_ARCHIVE_ALWAYS:
		return true;
	case XC_ARCHIVE_ROSTER:
		return in_roster;
	default:
		return false;
	}
}
