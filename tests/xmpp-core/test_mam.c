/* test_mam.c - the message archive: XEP-0082 times, queries read from hostile XML (each field,
 * RSM, every refusal and its text), preferences and what they archive, what a message must be
 * to be archived, and the archive on SQLite: paging both ways, each filter, counts, unknown ids,
 * preferences with the roster, retention, an account's archive going with it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "cm/err.h"
#include "tests/support/alloc.h"
#include "xmpp-core/src/archive_id.h"
#include "xmpp-core/src/mam.h"
#include "xmpp-core/src/mam_int.h"
#include "xmpp-core/src/stanza.h"
#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

/* --- times ------------------------------------------------------------------------------------ */

static void test_times(void **state)
{
	int64_t ms;
	char out[40];

	(void)state;
	assert_int_equal(xc_mam__parse_time("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(xc_mam__parse_time("2024-02-29T12:34:56.789Z", &ms), 0);
	assert_int_equal(ms, 1709210096789LL);
	xc_mam__format_time(ms, out, sizeof(out));
	assert_string_equal(out, "2024-02-29T12:34:56.789Z");
	/* offsets: the same instant */
	assert_int_equal(xc_mam__parse_time("2024-02-29T14:34:56.789+02:00", &ms), 0);
	assert_int_equal(ms, 1709210096789LL);
	assert_int_equal(xc_mam__parse_time("2024-02-29T10:04:56.789-02:30", &ms), 0);
	assert_int_equal(ms, 1709210096789LL);
	/* fractions: one digit is tenths, nine are read, the rest dropped */
	assert_int_equal(xc_mam__parse_time("2024-02-29T12:34:56.7Z", &ms), 0);
	assert_int_equal(ms % 1000, 700);
	assert_int_equal(xc_mam__parse_time("2024-02-29T12:34:56.123456789Z", &ms), 0);
	assert_int_equal(ms % 1000, 123);
	static const char *const bad[] = {
	    "",
	    "yesterday",
	    "2023-02-29T00:00:00Z",  /* not a leap year */
	    "2024-04-31T00:00:00Z",  /* April has 30 */
	    "2024-13-01T00:00:00Z",  /* month */
	    "2024-00-01T00:00:00Z",  /* month */
	    "2024-01-01T24:00:00Z",  /* hour */
	    "2024-01-01T00:60:00Z",  /* minute */
	    "2024-01-01T00:00:00",   /* no zone */
	    "2024-01-01T00:00:00Zx", /* junk after */
	    "2024-01-01T00:00:00.Z", /* empty fraction */
	    "2024-01-01T00:00:00.1234567890Z",
	    "2024-01-01T00:00:00+2:00",
	    "2024-01-01T00:00:00+24:00",
	    "2024-01-01 00:00:00Z",
	    "+024-01-01T00:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xc_mam__parse_time(bad[i], &ms) != -EINVAL)
			fail_msg("taken: \"%s\"", bad[i]);
}

/* --- queries ---------------------------------------------------------------------------------- */

static struct cm_xml_node *parse_iq(const char *inner, struct cm_xml_node **iq)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "<iq type='set' id='1'>%s</iq>", inner);
	assert_int_equal(xc_stanza_parse(buf, strlen(buf), iq), 0);
	return cm_xml_child(*iq, NULL, NULL);
}

/* Parse a query with the given form fields and RSM set; returns the code and err. */
static int parse_query(const char *fields, const char *set, struct xc_mam__query *q, char *err)
{
	char inner[6000];
	struct cm_xml_node *iq;
	int r;

	snprintf(inner, sizeof(inner),
	         "<query xmlns='urn:xmpp:mam:2' queryid='f27'>%s%s%s%s</query>",
	         fields ? "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
	                  "type='hidden'><value>urn:xmpp:mam:2</value></field>"
	                : "",
	         fields ? fields : "", fields ? "</x>" : "", set ? set : "");
	err[0] = '\0';
	r = xc_mam__query_parse(parse_iq(inner, &iq), 50, q, err, CM_ERR_MAX);
	cm_xml_node_free(iq);
	return r;
}

static void test_query_fields(void **state)
{
	struct xc_mam__query q;
	char err[CM_ERR_MAX];

	(void)state;
	/* nothing: everything, a page of the cap */
	assert_int_equal(parse_query(NULL, NULL, &q, err), 0);
	assert_string_equal(q.queryid, "f27");
	assert_null(q.aq.with);
	assert_true(q.aq.start_ms == INT64_MIN && q.aq.end_ms == INT64_MAX);
	assert_int_equal(q.aq.max, 50);
	assert_false(q.aq.backward);
	xc_mam__query_clear(&q);
	/* every field */
	assert_int_equal(
	    parse_query("<field var='with'><value>Juliet@Capulet.lit/Balcony</value></field>"
	                "<field var='start'><value>2010-06-07T00:00:00Z</value></field>"
	                "<field var='end'><value>2010-07-07T13:23:54Z</value></field>"
	                "<field var='after-id'><value>a1</value></field>"
	                "<field var='before-id'><value>b9</value></field>"
	                "<field var='ids' type='text-multi'><value>x</value><value>y</value>"
	                "</field>",
	                "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
	                "<after>r5</after></set>",
	                &q, err),
	    0);
	assert_string_equal(q.aq.with, "juliet@capulet.lit/Balcony"); /* normalised */
	assert_int_equal(q.aq.start_ms, 1275868800000LL);
	assert_int_equal(q.aq.end_ms, 1278509034000LL);
	assert_string_equal(q.aq.after_id, "a1");
	assert_string_equal(q.aq.before_id, "b9");
	assert_int_equal(q.aq.nids, 2);
	assert_string_equal(q.aq.ids[1], "y");
	assert_int_equal(q.aq.max, 10);
	assert_string_equal(q.aq.rsm_after, "r5");
	xc_mam__query_clear(&q);
	/* an empty <before/>: the last page; a max above the cap is the cap */
	assert_int_equal(parse_query(NULL,
	                             "<set xmlns='http://jabber.org/protocol/rsm'><max>5000</max>"
	                             "<before/></set>",
	                             &q, err),
	                 0);
	assert_true(q.aq.backward);
	assert_null(q.aq.rsm_before);
	assert_int_equal(q.aq.max, 50);
	xc_mam__query_clear(&q);
	assert_int_equal(parse_query(NULL,
	                             "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max>"
	                             "<before>z</before></set>",
	                             &q, err),
	                 0);
	assert_true(q.aq.backward);
	assert_string_equal(q.aq.rsm_before, "z");
	assert_int_equal(q.aq.max, 0);
	xc_mam__query_clear(&q);
	/* a field without a value is as if absent; foreign elements are ignored */
	assert_int_equal(parse_query("<field var='with'/>", "<x xmlns='urn:example'/>", &q, err),
	                 0);
	assert_null(q.aq.with);
	xc_mam__query_clear(&q);
}

static void test_query_refusals(void **state)
{
	static const struct {
		const char *fields, *set;
		int code;
		const char *text;
	} cases[] = {
	    {"<field var='colour'><value>blue</value></field>", NULL, -EINVAL,
	     "unknown field 'colour'"},
	    {"<field><value>x</value></field>", NULL, -EINVAL, "without var"},
	    {"<field var='start'><value>2010-06-07</value></field>", NULL, -EINVAL, "start"},
	    {"<field var='end'><value>x</value><value>y</value></field>", NULL, -EINVAL,
	     "one value"},
	    {"<field var='with'><value>@example.com</value></field>", NULL, -EINVAL,
	     "with: not a JID"},
	    {"<field var='with'><value>a@b</value></field><field var='with'><value>c@d</value>"
	     "</field>",
	     NULL, -EINVAL, "twice"},
	    {"<field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field>", NULL, -EINVAL,
	     "FORM_TYPE"},
	    {"<field var='after-id'><value></value></field>", NULL, -EINVAL, "after-id"},
	    {"<field var='start'><value><b/></value></field>", NULL, -EINVAL, "text expected"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>", -EINVAL,
	     "max"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><max>1234567890</max></set>",
	     -EINVAL, "max"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><max>2</max></set>",
	     -EINVAL, "max"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><after/></set>", -EINVAL, "after"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set>", -ENOTSUP,
	     "index"},
	    {NULL, "<set xmlns='http://jabber.org/protocol/rsm'><page/></set>", -EINVAL,
	     "unknown element"},
	    {NULL,
	     "<set xmlns='http://jabber.org/protocol/rsm'/><set "
	     "xmlns='http://jabber.org/protocol/rsm'/>",
	     -EINVAL, "two RSM"},
	    {NULL, "<flip-page xmlns='urn:xmpp:mam:2'/>", -ENOTSUP, "flip-page"},
	    {NULL, "<x xmlns='jabber:x:data' type='form'/>", -EINVAL, "submit"},
	};
	struct xc_mam__query q;
	char err[CM_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse_query(cases[i].fields, cases[i].set, &q, err);

		if (r != cases[i].code || !strstr(err, cases[i].text))
			fail_msg("case %zu: %d \"%s\"", i, r, err);
		/* nothing is left behind on failure */
		assert_null(q.queryid);
		assert_null(q.aq.with);
	}
}

static void test_query_bounds(void **state)
{
	char fields[5000], *p = fields, inner[8000];
	struct xc_mam__query q;
	struct cm_xml_node *iq;
	char err[CM_ERR_MAX], id[200];

	(void)state;
	/* more ids than a page holds */
	p += sprintf(p, "<field var='ids'>");
	for (int i = 0; i < 51; i++)
		p += sprintf(p, "<value>i%d</value>", i);
	sprintf(p, "</field>");
	assert_int_equal(parse_query(fields, NULL, &q, err), -EINVAL);
	assert_non_null(strstr(err, "at most 50"));
	/* an id longer than any the archive gives */
	memset(id, 'x', 129);
	id[129] = '\0';
	snprintf(fields, sizeof(fields), "<field var='before-id'><value>%s</value></field>", id);
	assert_int_equal(parse_query(fields, NULL, &q, err), -EINVAL);
	id[128] = '\0';
	snprintf(fields, sizeof(fields), "<field var='before-id'><value>%s</value></field>", id);
	assert_int_equal(parse_query(fields, NULL, &q, err), 0);
	xc_mam__query_clear(&q);
	/* a queryid is echoed in every result: bounded */
	memset(id, 'q', 199);
	id[199] = '\0';
	snprintf(inner, sizeof(inner), "<query xmlns='urn:xmpp:mam:2' queryid='%s'/>", id);
	assert_int_equal(xc_mam__query_parse(parse_iq(inner, &iq), 50, &q, err, sizeof(err)), 0);
	xc_mam__query_clear(&q);
	cm_xml_node_free(iq);
	snprintf(inner, sizeof(inner), "<query xmlns='urn:xmpp:mam:2' queryid='%s%s'/>", id, id);
	assert_int_equal(xc_mam__query_parse(parse_iq(inner, &iq), 50, &q, err, sizeof(err)),
	                 -EINVAL);
	cm_xml_node_free(iq);
	/* pubsub node archives are not served */
	assert_int_equal(
	    xc_mam__query_parse(parse_iq("<query xmlns='urn:xmpp:mam:2' node='n'/>", &iq), 50, &q,
	                        err, sizeof(err)),
	    -ENOTSUP);
	cm_xml_node_free(iq);
}

static int parse_scenario(void *arg)
{
	struct xc_mam__query q;
	struct cm_xml_node *iq = arg;
	char err[CM_ERR_MAX];
	int r = xc_mam__query_parse(cm_xml_child(iq, NULL, NULL), 50, &q, err, sizeof(err));

	if (!r)
		xc_mam__query_clear(&q);
	return r;
}

static void test_query_alloc_failures(void **state)
{
	struct cm_xml_node *iq;

	(void)state;
	parse_iq("<query xmlns='urn:xmpp:mam:2' queryid='x'><x xmlns='jabber:x:data' "
	         "type='submit'><field var='with'><value>a@b/c</value></field>"
	         "<field var='ids'><value>1</value><value>2</value></field>"
	         "<field var='after-id'><value>3</value></field></x>"
	         "<set xmlns='http://jabber.org/protocol/rsm'><after>4</after><before>5</before>"
	         "</set></query>",
	         &iq);
	assert_true(test_alloc_sweep(parse_scenario, iq, 100) > 1);
	cm_xml_node_free(iq);
}

static void test_form(void **state)
{
	struct cm_xml_node *q = xc_mam__form(), *x;
	size_t n = 0;

	(void)state;
	assert_non_null(q);
	x = cm_xml_child(q, "x", CM_XML_NS_DATA);
	assert_string_equal(cm_xml_attr(x, "type"), "form");
	assert_string_equal(cm_xml_form_field(x, "FORM_TYPE"), XC_NS_MAM);
	for (struct cm_xml_node *f = cm_xml_child(x, "field", NULL); f;
	     f = cm_xml_child_next(f, "field", NULL))
		n++;
	assert_int_equal(n, 7);
	cm_xml_node_free(q);
}

/* --- preferences ------------------------------------------------------------------------------ */

static void test_prefs(void **state)
{
	struct xc_archive_prefs p;
	struct cm_xml_node *iq, *out;
	char err[CM_ERR_MAX];

	(void)state;
	assert_int_equal(xc_mam__prefs_parse(parse_iq("<prefs xmlns='urn:xmpp:mam:2' "
	                                              "default='roster'><always><jid>Romeo@"
	                                              "Montague.lit/x</jid></always><never><jid>"
	                                              "tybalt@capulet.lit</jid></never></prefs>",
	                                              &iq),
	                                     &p, err, sizeof(err)),
	                 0);
	cm_xml_node_free(iq);
	assert_int_equal(p.def, XC_ARCHIVE_ROSTER);
	assert_int_equal(p.nalways, 1);
	assert_string_equal(p.always[0], "romeo@montague.lit"); /* bare, normalised */
	assert_string_equal(p.never[0], "tybalt@capulet.lit");
	/* never wins, then always, then the default (roster: in the roster or not) */
	assert_true(xc_mam__wanted(&p, 0, "romeo@montague.lit", false));
	assert_false(xc_mam__wanted(&p, 0, "tybalt@capulet.lit", true));
	assert_true(xc_mam__wanted(&p, 0, "nurse@capulet.lit", true));
	assert_false(xc_mam__wanted(&p, 0, "nurse@capulet.lit", false));
	/* without preferences the server's default */
	assert_true(xc_mam__wanted(NULL, XC_ARCHIVE_ALWAYS, "x@y", false));
	assert_false(xc_mam__wanted(NULL, XC_ARCHIVE_NEVER, "x@y", true));
	out = xc_mam__prefs_build(&p, 0);
	assert_string_equal(cm_xml_attr(out, "default"), "roster");
	assert_string_equal(
	    cm_xml_text(cm_xml_child(cm_xml_child(out, "never", NULL), "jid", NULL)),
	    "tybalt@capulet.lit");
	cm_xml_node_free(out);
	xc_archive_prefs_clear(&p);
	out = xc_mam__prefs_build(NULL, XC_ARCHIVE_NEVER);
	assert_string_equal(cm_xml_attr(out, "default"), "never");
	cm_xml_node_free(out);
	/* refusals */
	static const char *const bad[] = {
	    "<prefs xmlns='urn:xmpp:mam:2'/>",
	    "<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>",
	    "<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@x</jid></always></prefs>",
	    "<prefs xmlns='urn:xmpp:mam:2' default='always'><never/><never/></prefs>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(xc_mam__prefs_parse(parse_iq(bad[i], &iq), &p, err, sizeof(err)),
		                 -EINVAL);
		cm_xml_node_free(iq);
		assert_null(p.always);
	}
}

/* --- what is archived ------------------------------------------------------------------------- */

static bool archivable(const char *xml)
{
	struct cm_xml_node *st;
	bool r;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &st), 0);
	r = xc_mam_archivable(st);
	cm_xml_node_free(st);
	return r;
}

static void test_archivable(void **state)
{
	(void)state;
	assert_true(archivable("<message type='chat'><body>hi</body></message>"));
	assert_true(archivable("<message><body>normal by default</body></message>"));
	assert_false(archivable("<message type='headline'><body>news</body></message>"));
	assert_false(archivable("<message type='groupchat'><body>room</body></message>"));
	assert_false(archivable("<message type='error'><body>x</body></message>"));
	assert_false(archivable("<message type='chat'><active "
	                        "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
	assert_true(archivable("<message type='chat'><store xmlns='urn:xmpp:hints'/>"
	                       "<encrypted xmlns='urn:example'/></message>"));
	assert_false(archivable("<message type='chat'><body>x</body>"
	                        "<no-store xmlns='urn:xmpp:hints'/></message>"));
	assert_false(archivable("<message type='chat'><no-permanent-store xmlns='urn:xmpp:hints'/>"
	                        "<body>x</body><store xmlns='urn:xmpp:hints'/></message>"));
	static const char *const jmi[] = {"propose", "accept", "reject", "retract", "proceed"};
	char buf[200];
	for (size_t i = 0; i < 5; i++) {
		snprintf(buf, sizeof(buf),
		         "<message type='chat'><%s xmlns='urn:xmpp:jingle-message:0' id='c'/>"
		         "</message>",
		         jmi[i]);
		assert_true(archivable(buf));
	}
	assert_false(archivable("<message type='chat'><ringing xmlns='urn:xmpp:jingle-message:0' "
	                        "id='c'/></message>"));
	/* a body in another namespace is not a body */
	assert_false(archivable("<message type='chat'><body xmlns='urn:example'>x</body>"
	                        "</message>"));
}

/* --- the archive on SQLite -------------------------------------------------------------------- */

struct fix {
	struct store_fix s; /* the database and the loop of its answers */
	int done;
	struct xc_store_req *last;
	char ids[40][17];
	bool numbered; /* ids handed out by the store (archive_id.h), or older ones ("id05") */
};

/* A test's prestate, bits of: */
enum {
	NUMBERED = 1, /* the fixture's ids are the store's */
	FOLDED = 2,   /* its rows are folded into the archive's indexes (the store reopened) */
	HALF = 4,     /* only its first half is (the rest written after the reopening) */
};

static void on_done(struct xc_store_req *r)
{
	struct fix *f = r->arg;

	f->last = r;
	f->done++;
}

static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	int want = f->done + 1;

	assert_int_equal(xc_store_submit(f->s.st, r), 0);
	while (f->done < want)
		uv_run(&f->s.uv, UV_RUN_ONCE);
	return f->last;
}

static struct xc_store_req *req(struct fix *f, enum xc_store_op op, const char *user)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->s.l, on_done, f);

	assert_non_null(r);
	if (user)
		assert_int_equal(xc_store_req_set(&r->user, user), 0);
	return r;
}

/* As the workers write them: one allocation (xc_store_req_archive()), the stanza by length
 * (what follows it in the caller's buffer is not stored). */
static void put(struct fix *f, const char *owner, const char *id, const char *with, int64_t stamp,
                const char *body)
{
	struct xc_store_req *r;
	char xml[200];
	int n = snprintf(xml, sizeof(xml), "<message type='chat'><body>%s</body></message>GARBAGE",
	                 body);

	assert_true(n > 7 && n < (int)sizeof(xml));
	r = xc_store_req_archive(&f->s.l, on_done, owner, id, with, xml, (size_t)n - 7);
	assert_non_null(r);
	assert_true(r->packed);
	assert_int_equal(r->op, XC_STORE_ARCHIVE_PUT);
	assert_string_equal(r->user, owner);
	assert_int_equal(r->stanza_len, (size_t)n - 7);
	assert_null(strstr(r->stanza, "GARBAGE"));
	r->arg = f;
	r->stamp_ms = stamp;
	r = run(f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
}

/* Close the store and open it again on the same file: the rows written are folded into the
 * archive's indexes (at the close, and at the opening any a crash left). */
static void reopen(struct fix *f)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite, .where = f->s.path};
	char err[CM_ERR_MAX];

	xc_store_close(f->s.st);
	if (xc_store_open(&f->s.st, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
}

/* The integer sql selects, on db. */
static int db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *p;
	int n;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &p, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(p), SQLITE_ROW);
	n = sqlite3_column_int(p, 0);
	sqlite3_finalize(p);
	return n;
}

/* An integer sql selects from the fixture's database, through a connection of the test's own. */
static int sql_int(struct fix *f, const char *sql)
{
	sqlite3 *db;
	int n;

	assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
	n = db_int(db, sql);
	sqlite3_close(db);
	return n;
}

#define FOLDED_ID "(SELECT value FROM meta WHERE key = 'archive_folded')"

/* Rows of the archive above the fold (their keys not written yet). Every row below it has its
 * two keys, and no key is left without its row. Read in one transaction: the store's thread
 * may fold between two reads otherwise. */
static int unfolded(struct fix *f)
{
	sqlite3 *db;
	int keyed, n;

	assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	keyed = db_int(db, "SELECT count(*) FROM archive WHERE id <= " FOLDED_ID);
	assert_int_equal(db_int(db, "SELECT count(*) FROM archive_ix_time"), keyed);
	assert_int_equal(db_int(db, "SELECT count(*) FROM archive_ix_with"), keyed);
	assert_int_equal(db_int(db, "SELECT count(*) FROM archive_ix_time x JOIN archive a "
	                            "ON a.id = x.id AND a.stamp = x.stamp"),
	                 keyed);
	assert_int_equal(db_int(db, "SELECT count(*) FROM archive_ix_with x JOIN archive a "
	                            "ON a.id = x.id AND a.stamp = x.stamp "
	                            "JOIN archive_jid j ON j.id = x.owner AND j.jid = a.owner "
	                            "JOIN archive_jid k ON k.id = x.peer AND k.jid = a.with_bare"),
	                 keyed);
	n = db_int(db, "SELECT count(*) FROM archive WHERE id > " FOLDED_ID);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	return n;
}

/* Thirty messages for juliet: i with romeo@montague.lit/phone (even) or /laptop (i % 3 == 1)
 * or nurse@capulet.lit (others), at 1000 + 10 * i ms (two share a stamp: 20 and 21). Their ids
 * are the store's when the test's prestate says NUMBERED, else those of an older archive; with
 * FOLDED, they are folded into the indexes (with HALF, the first fifteen only), else not. */
static void fix_open(struct fix *f, void **state)
{
	int how = state && *state ? *(const int *)*state : 0;
	char body[16];
	char other[17];

	memset(f, 0, sizeof(*f));
	f->numbered = how & NUMBERED;
	store_fix_open(&f->s, "test_mam");
	for (int i = 0; i < 30; i++) {
		if ((how & HALF) && i == 15)
			reopen(f);
		if (f->numbered)
			xc_store_archive_id(f->s.st, f->ids[i]);
		else
			snprintf(f->ids[i], sizeof(f->ids[i]), "id%02d", i);
		snprintf(body, sizeof(body), "m%02d", i);
		put(f, "juliet@capulet.lit", f->ids[i],
		    i % 2 == 0   ? "romeo@montague.lit/phone"
		    : i % 3 == 1 ? "romeo@montague.lit/laptop"
		                 : "nurse@capulet.lit",
		    1000 + 10 * i - (i == 21 ? 10 : 0), body);
	}
	/* someone else's archive, which no query of juliet's sees */
	if (f->numbered)
		xc_store_archive_id(f->s.st, other);
	else
		strcpy(other, "id00");
	put(f, "romeo@montague.lit", other, "juliet@capulet.lit/balcony", 1000, "other");
	if ((how & FOLDED) && !(how & HALF))
		reopen(f);
	assert_int_equal(unfolded(f), (how & FOLDED) ? ((how & HALF) ? 16 : 0) : 31);
}

static void fix_close(struct fix *f)
{
	store_fix_close(&f->s);
}

static struct xc_archive_query *new_query(unsigned max)
{
	struct xc_archive_query *q = calloc(1, sizeof(*q));

	assert_non_null(q);
	q->start_ms = INT64_MIN;
	q->end_ms = INT64_MAX;
	q->max = max;
	return q;
}

/* Run q over juliet's archive; the page's message numbers in out (as "m05,m06"). */
static struct xc_store_req *ask(struct fix *f, struct xc_archive_query *q, char *out)
{
	struct xc_store_req *r = req(f, XC_STORE_ARCHIVE_QUERY, "juliet@capulet.lit");

	r->query = q;
	r = run(f, r);
	out[0] = '\0';
	for (size_t i = 0; i < r->narch; i++) {
		const char *b = strstr(r->arch[i].stanza, "<body>");

		assert_non_null(b);
		assert_null(strstr(b, "GARBAGE")); /* put()'s stanza was kept by its length */
		strncat(out, b + 6, 3);
		if (i + 1 < r->narch)
			strcat(out, ",");
	}
	return r;
}

static void test_archive_paging(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	struct xc_archive_query *q;
	char got[400];

	fix_open(&f, state);
	/* forward: 30 in pages of 12 */
	r = ask(&f, new_query(12), got);
	assert_string_equal(got, "m00,m01,m02,m03,m04,m05,m06,m07,m08,m09,m10,m11");
	assert_false(r->complete);
	assert_int_equal(r->count, 30);
	assert_string_equal(r->arch[0].id, f.ids[0]);
	assert_int_equal(r->arch[3].stamp_ms, 1030);
	xc_store_req_free(r);
	q = new_query(12);
	q->rsm_after = strdup(f.ids[11]);
	r = ask(&f, q, got);
	/* the stamps order the archive: m21 was archived at m20's time, after it */
	assert_string_equal(got, "m12,m13,m14,m15,m16,m17,m18,m19,m20,m21,m22,m23");
	assert_false(r->complete);
	xc_store_req_free(r);
	q = new_query(12);
	q->rsm_after = strdup(f.ids[23]);
	r = ask(&f, q, got);
	assert_string_equal(got, "m24,m25,m26,m27,m28,m29");
	assert_true(r->complete);
	assert_int_equal(r->count, 30);
	xc_store_req_free(r);
	/* backward: the last page, then before its first */
	q = new_query(4);
	q->backward = true;
	r = ask(&f, q, got);
	assert_string_equal(got, "m26,m27,m28,m29");
	assert_false(r->complete);
	xc_store_req_free(r);
	q = new_query(4);
	q->backward = true;
	q->rsm_before = strdup(f.ids[3]);
	r = ask(&f, q, got);
	assert_string_equal(got, "m00,m01,m02");
	assert_true(r->complete);
	xc_store_req_free(r);
	/* after and before together: the range between */
	q = new_query(10);
	q->rsm_after = strdup(f.ids[19]);
	q->rsm_before = strdup(f.ids[22]);
	r = ask(&f, q, got);
	assert_string_equal(got, "m20,m21");
	assert_int_equal(r->count, 30); /* RSM does not change the count */
	xc_store_req_free(r);
	/* max 0: the count only */
	r = ask(&f, new_query(0), got);
	assert_int_equal(r->narch, 0);
	assert_int_equal(r->count, 30);
	xc_store_req_free(r);
	/* ids the archive does not hold (someone else's does) */
	q = new_query(10);
	q->rsm_after = strdup("nope");
	r = ask(&f, q, got);
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	fix_close(&f);
}

static void test_archive_filters(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	struct xc_archive_query *q;
	char got[400];

	fix_open(&f, state);
	/* with a bare JID: every resource */
	q = new_query(100);
	q->with = strdup("nurse@capulet.lit");
	r = ask(&f, q, got);
	assert_string_equal(got, "m03,m05,m09,m11,m15,m17,m21,m23,m27,m29");
	assert_int_equal(r->count, 10);
	xc_store_req_free(r);
	q = new_query(3);
	q->with = strdup("romeo@montague.lit");
	r = ask(&f, q, got);
	assert_string_equal(got, "m00,m01,m02");
	assert_int_equal(r->count, 20);
	xc_store_req_free(r);
	/* with a full JID: that resource only */
	q = new_query(100);
	q->with = strdup("romeo@montague.lit/laptop");
	r = ask(&f, q, got);
	assert_string_equal(got, "m01,m07,m13,m19,m25");
	xc_store_req_free(r);
	/* time: both ends inclusive */
	q = new_query(100);
	q->start_ms = 1050;
	q->end_ms = 1080;
	r = ask(&f, q, got);
	assert_string_equal(got, "m05,m06,m07,m08");
	assert_int_equal(r->count, 4);
	xc_store_req_free(r);
	q = new_query(100);
	q->start_ms = 1200;
	q->end_ms = 1200;
	r = ask(&f, q, got);
	assert_string_equal(got, "m20,m21"); /* the two of one stamp */
	xc_store_req_free(r);
	/* after-id and before-id are filters: they count */
	q = new_query(100);
	q->after_id = strdup(f.ids[25]);
	r = ask(&f, q, got);
	assert_string_equal(got, "m26,m27,m28,m29");
	assert_int_equal(r->count, 4);
	xc_store_req_free(r);
	q = new_query(2);
	q->after_id = strdup(f.ids[10]);
	q->before_id = strdup(f.ids[15]);
	q->with = strdup("nurse@capulet.lit");
	r = ask(&f, q, got);
	assert_string_equal(got, "m11");
	assert_true(r->complete);
	xc_store_req_free(r);
	/* both an after-id and an RSM after: the later bound wins */
	q = new_query(2);
	q->after_id = strdup(f.ids[20]);
	q->rsm_after = strdup(f.ids[5]);
	r = ask(&f, q, got);
	assert_string_equal(got, "m21,m22");
	xc_store_req_free(r);
	/* ids, in the archive's order; those it does not hold are not an error */
	q = new_query(100);
	q->ids = calloc(3, sizeof(char *));
	q->ids[0] = strdup(f.ids[17]);
	q->ids[1] = strdup(f.ids[2]);
	q->ids[2] = strdup("missing");
	q->nids = 3;
	r = ask(&f, q, got);
	assert_string_equal(got, "m02,m17");
	assert_int_equal(r->count, 2);
	xc_store_req_free(r);
	q = new_query(100);
	q->before_id = strdup("missing");
	r = ask(&f, q, got);
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	/* nothing matches: an empty, complete page */
	q = new_query(100);
	q->with = strdup("paris@verona.lit");
	r = ask(&f, q, got);
	assert_int_equal(r->narch, 0);
	assert_true(r->complete);
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	fix_close(&f);
}

static void test_archive_ids_prefs_purge_delete(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	char got[400];

	fix_open(&f, state);
	/* an id is unique within its archive */
	r = req(&f, XC_STORE_ARCHIVE_PUT, "juliet@capulet.lit");
	xc_store_req_set(&r->key, f.ids[5]);
	xc_store_req_set(&r->with, "a@b");
	xc_store_req_set(&r->stanza, "<message/>");
	r = run(&f, r);
	assert_int_equal(r->err, -EEXIST);
	xc_store_req_free(r);
	/* preferences come with the roster */
	assert_int_equal(run(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "juliet@capulet.lit"))->err, 0);
	xc_store_req_free(f.last);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "juliet@capulet.lit"));
	assert_false(r->prefs_found);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_ARCHIVE_PREFS_PUT, "juliet@capulet.lit");
	r->prefs.def = XC_ARCHIVE_ROSTER;
	r->prefs.always = calloc(1, sizeof(char *));
	r->prefs.always[0] = strdup("romeo@montague.lit");
	r->prefs.nalways = 1;
	r->prefs.never = calloc(2, sizeof(char *));
	r->prefs.never[0] = strdup("tybalt@capulet.lit");
	r->prefs.never[1] = strdup("paris@verona.lit");
	r->prefs.nnever = 2;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "juliet@capulet.lit"));
	assert_true(r->prefs_found);
	assert_int_equal(r->prefs.def, XC_ARCHIVE_ROSTER);
	assert_int_equal(r->prefs.nalways, 1);
	assert_int_equal(r->prefs.nnever, 2);
	assert_string_equal(r->prefs.never[0], "paris@verona.lit");
	xc_store_req_free(r);
	/* retention: the oldest go, in steps of at most limit */
	r = req(&f, XC_STORE_ARCHIVE_PURGE, NULL);
	r->stamp_ms = 1100; /* m00..m09 are older */
	r->limit = 6;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 6);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_ARCHIVE_PURGE, NULL);
	r->stamp_ms = 1100;
	r->limit = 6;
	r = run(&f, r);
	assert_int_equal(r->count, 5); /* m06..m09 and romeo's one */
	xc_store_req_free(r);
	r = ask(&f, new_query(3), got);
	assert_string_equal(got, "m10,m11,m12");
	assert_int_equal(r->count, 20);
	xc_store_req_free(r);
	(void)unfolded(&f); /* the keys of the rows gone went with them */
	/* the account goes: its archive and preferences with it */
	assert_int_equal(run(&f, req(&f, XC_STORE_ACCOUNT_DELETE, "juliet@capulet.lit"))->err, 0);
	xc_store_req_free(f.last);
	r = ask(&f, new_query(3), got);
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	(void)unfolded(&f);
	assert_int_equal(sql_int(&f, "SELECT count(*) FROM archive"), 0);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "juliet@capulet.lit"));
	assert_false(r->prefs_found);
	xc_store_req_free(r);
	fix_close(&f);
}

/* --- archive ids ------------------------------------------------------------------------------ */

static const int numbered = NUMBERED;
static const int folded = FOLDED, numbered_folded = NUMBERED | FOLDED,
                 numbered_half = NUMBERED | FOLDED | HALF;

static void test_archive_id_codec(void **state)
{
	uint64_t k1[2] = {1, 2}, k2[2] = {1, 3}, n;
	char a[17], b[17], prev[17] = "";
	int sorted = 0;

	(void)state;
	for (uint64_t i = 0; i < 1000; i++) {
		uint64_t v = i * 0x9e3779b97f4a7c15ull;

		xc_archive_id_encode(k1, v, a);
		assert_int_equal(strlen(a), 16);
		assert_int_equal(xc_archive_id_decode(k1, a, &n), 0);
		assert_true(n == v);
		/* another database's key: another id, which does not decode to the row */
		xc_archive_id_encode(k2, v, b);
		assert_string_not_equal(a, b);
		assert_int_equal(xc_archive_id_decode(k2, a, &n), 0);
		assert_false(n == v);
	}
	/* consecutive rows do not show as consecutive ids */
	for (uint64_t i = 1; i <= 100; i++) {
		xc_archive_id_encode(k1, i, a);
		sorted += strcmp(prev, a) < 0;
		strcpy(prev, a);
	}
	assert_true(sorted < 100);
	assert_int_equal(xc_archive_id_decode(k1, "0123456789ABCDEF", &n), -EINVAL);
	assert_int_equal(xc_archive_id_decode(k1, "0123456789abcde", &n), -EINVAL);
	assert_int_equal(xc_archive_id_decode(k1, "0123456789abcdef0", &n), -EINVAL);
	assert_int_equal(xc_archive_id_decode(k1, "0123456789abcdeg", &n), -EINVAL);
	assert_int_equal(xc_archive_id_decode(k1, "", &n), -EINVAL);
}

/* The store's ids go on from where the last run stopped, even for ids handed out and never
 * written; a reopened database decodes the ids of its rows with its own key. */
static void test_archive_numbering_survives(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	struct xc_store_config c = {.backend = &xc_store_sqlite};
	char err[CM_ERR_MAX], lost[17], again[17], got[400];
	uint64_t key[2] = {0, 0}, n_lost = 0, n_again = 0;
	struct xc_archive_query *q;
	sqlite3 *db;
	sqlite3_stmt *p;

	void *st = (void *)&numbered;

	(void)state;
	fix_open(&f, &st);
	xc_store_archive_id(f.s.st, lost); /* never written: the server died */
	xc_store_close(f.s.st);
	c.where = f.s.path;
	if (xc_store_open(&f.s.st, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
	xc_store_archive_id(f.s.st, again);
	assert_int_equal(sqlite3_open(f.s.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT value FROM meta WHERE key IN "
	                                    "('archive_key0', 'archive_key1') ORDER BY key",
	                                    -1, &p, NULL),
	                 SQLITE_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sqlite3_step(p), SQLITE_ROW);
		key[i] = (uint64_t)sqlite3_column_int64(p, 0);
	}
	sqlite3_finalize(p);
	sqlite3_close(db);
	assert_int_equal(xc_archive_id_decode(key, lost, &n_lost), 0);
	assert_int_equal(xc_archive_id_decode(key, again, &n_again), 0);
	assert_true(n_again > n_lost);
	/* the rows written before are found by their ids after the reopening */
	q = new_query(10);
	q->ids = calloc(2, sizeof(char *));
	q->ids[0] = strdup(f.ids[17]);
	q->ids[1] = strdup(f.ids[2]);
	q->nids = 2;
	r = ask(&f, q, got);
	assert_string_equal(got, "m02,m17");
	xc_store_req_free(r);
	/* and a new one takes its place after them */
	put(&f, "juliet@capulet.lit", again, "nurse@capulet.lit", 5000, "new");
	q = new_query(2);
	q->after_id = strdup(f.ids[29]);
	r = ask(&f, q, got);
	assert_string_equal(got, "new");
	assert_string_equal(r->arch[0].id, again);
	xc_store_req_free(r);
	fix_close(&f);
}

/* Rows a crash left unfolded are folded when the store opens; rows enough are folded on the
 * way, between batches. */
static void test_archive_crash_leftovers(void **state)
{
	void *how = (void *)&numbered_folded;
	struct fix f;
	struct xc_store_req *r;
	char got[400], id[17];
	sqlite3 *db;

	(void)state;
	fix_open(&f, &how);
	xc_store_close(f.s.st);
	/* as a crash leaves it: rows above the fold, written after the last one */
	assert_int_equal(sqlite3_open(f.s.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE meta SET value = (SELECT min(id) + 9 FROM archive) "
	                              "WHERE key = 'archive_folded';"
	                              "DELETE FROM archive_ix_time WHERE id > " FOLDED_ID ";"
	                              "DELETE FROM archive_ix_with WHERE id > " FOLDED_ID ";",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 21);
	sqlite3_close(db);
	assert_int_equal(unfolded(&f), 21);
	f.s.st = NULL;
	reopen(&f);
	assert_int_equal(unfolded(&f), 0);
	r = ask(&f, new_query(0), got);
	assert_int_equal(r->count, 30);
	xc_store_req_free(r);
	/* a fold's worth (FOLD_ROWS) of rows nobody waits for */
	for (int i = 0; i < 8192; i++) {
		static const char xml[] = "<message><body>new</body></message>";

		xc_store_archive_id(f.s.st, id);
		r = xc_store_req_archive(&f.s.l, NULL, "juliet@capulet.lit", id,
		                         "nurse@capulet.lit", xml, sizeof(xml) - 1);
		assert_non_null(r);
		r->stamp_ms = 10000 + i;
		assert_int_equal(xc_store_submit(f.s.st, r), 0);
	}
	r = ask(&f, new_query(0), got);
	assert_int_equal(r->count, 30 + 8192);
	xc_store_req_free(r);
	/* (the fold runs after the batch that answered: one more round trip) */
	xc_store_req_free(ask(&f, new_query(0), got));
	assert_int_equal(unfolded(&f), 0);
	fix_close(&f);
}

/* Queries that read the rows waiting beside the indexes have them folded after FOLD_QUERIES
 * (64) of them. */
static void test_archive_fold_after_queries(void **state)
{
	struct fix f;
	char got[400];

	(void)state;
	fix_open(&f, NULL); /* 31 rows, not folded */
	for (int i = 0; i < 63; i++)
		xc_store_req_free(ask(&f, new_query(1), got));
	assert_int_equal(unfolded(&f), 31);
	xc_store_req_free(ask(&f, new_query(1), got)); /* the 64th: the fold after its batch */
	xc_store_req_free(ask(&f, new_query(1), got));
	assert_int_equal(unfolded(&f), 0);
	fix_close(&f);
}

/* Run sql on the fixture's database through a connection of the test's own. */
static void sql_exec(struct fix *f, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A fold that fails leaves the rows where queries find them, and is not tried again before
 * FOLD_MS (5 s) have passed: a broken database is not hammered after every batch. */
static void test_archive_fold_fails(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	char got[400];
	int left = 31;

	(void)state;
	fix_open(&f, NULL); /* 31 rows, not folded */
	sql_exec(&f, "CREATE TRIGGER refuse BEFORE INSERT ON archive_ix_with "
	             "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
	for (int i = 0; i < 65; i++) /* the 64th asks for a fold, which fails */
		xc_store_req_free(ask(&f, new_query(1), got));
	assert_int_equal(unfolded(&f), 31);
	r = ask(&f, new_query(0), got);
	assert_int_equal(r->count, 30);
	xc_store_req_free(r);
	sql_exec(&f, "DROP TRIGGER refuse");
	xc_store_req_free(ask(&f, new_query(1), got));
	xc_store_req_free(ask(&f, new_query(1), got));
	assert_int_equal(unfolded(&f), 31); /* not at once */
	for (int i = 0; i < 80 && left; i++) {
		uv_sleep(100);
		left = unfolded(&f);
	}
	assert_int_equal(left, 0);
	fix_close(&f);
}

/* An idle store folds what waits once the first row has waited FOLD_MS (5 s). */
static void test_archive_fold_when_idle(void **state)
{
	struct fix f;
	char got[400];
	int left = 31;

	(void)state;
	fix_open(&f, NULL); /* 31 rows, not folded */
	for (int i = 0; i < 80 && left; i++) {
		uv_sleep(100);
		left = unfolded(&f);
	}
	assert_int_equal(left, 0);
	xc_store_req_free(ask(&f, new_query(0), got));
	fix_close(&f);
}

/* Open the store on a database that sql made (an older xmpp-core's), as the fixture f. */
static void open_made(struct fix *f, const char *name, const char *sql)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite};
	char err[CM_ERR_MAX];
	sqlite3 *db;

	memset(f, 0, sizeof(*f));
	store_fix_open(&f->s, name);
	xc_store_close(f->s.st);
	unlink(f->s.path);
	assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	c.where = f->s.path;
	if (xc_store_open(&f->s.st, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
}

/* A database made when archive ids were random strings: its rows keep their ids, new rows get
 * the store's, and queries mix both in time order. */
static void test_archive_older_database(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	struct xc_archive_query *q;
	char got[400], id[17];

	(void)state;
	open_made(&f, "test_mam_old",
	          "PRAGMA journal_mode=WAL;"
	          "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	          "INSERT INTO meta VALUES ('schema', 1);"
	          "CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	          " owner TEXT NOT NULL, sid TEXT NOT NULL, stamp INTEGER NOT NULL,"
	          " with_bare TEXT NOT NULL, with_res TEXT NOT NULL, stanza TEXT NOT NULL);"
	          "CREATE UNIQUE INDEX archive_sid ON archive (owner, sid);"
	          "CREATE INDEX archive_time ON archive (owner, stamp);"
	          "CREATE INDEX archive_with ON archive (owner, with_bare, stamp);"
	          "INSERT INTO archive (owner, sid, stamp, with_bare, with_res, stanza) VALUES"
	          " ('juliet@capulet.lit', 'ghijklmnopqrstuv', 100, 'nurse@capulet.lit', '',"
	          "  '<message><body>o01</body></message>'),"
	          " ('juliet@capulet.lit', '0123456789ghijkl', 300, 'nurse@capulet.lit', '',"
	          "  '<message><body>o03</body></message>');");
	xc_store_archive_id(f.s.st, id);
	put(&f, "juliet@capulet.lit", id, "nurse@capulet.lit", 200, "n02");
	r = ask(&f, new_query(10), got);
	assert_string_equal(got, "o01,n02,o03");
	assert_string_equal(r->arch[0].id, "ghijklmnopqrstuv");
	assert_string_equal(r->arch[1].id, id);
	assert_string_equal(r->arch[2].id, "0123456789ghijkl");
	xc_store_req_free(r);
	/* both kinds as bounds and in an ids filter */
	q = new_query(10);
	q->after_id = strdup("ghijklmnopqrstuv");
	q->before_id = strdup("0123456789ghijkl");
	r = ask(&f, q, got);
	assert_string_equal(got, "n02");
	xc_store_req_free(r);
	q = new_query(10);
	q->rsm_after = strdup(id);
	r = ask(&f, q, got);
	assert_string_equal(got, "o03");
	xc_store_req_free(r);
	q = new_query(10);
	q->ids = calloc(2, sizeof(char *));
	q->ids[0] = strdup("0123456789ghijkl");
	q->ids[1] = strdup(id);
	q->nids = 2;
	r = ask(&f, q, got);
	assert_string_equal(got, "n02,o03");
	xc_store_req_free(r);
	/* an older id is still unique in its archive (older ids were drawn from 0-9a-v: those
	 * with a letter beyond f can never be taken for one of ours) */
	r = req(&f, XC_STORE_ARCHIVE_PUT, "juliet@capulet.lit");
	xc_store_req_set(&r->key, "ghijklmnopqrstuv");
	xc_store_req_set(&r->with, "a@b");
	xc_store_req_set(&r->stanza, "<message/>");
	r = run(&f, r);
	assert_int_equal(r->err, -EEXIST);
	xc_store_req_free(r);
	fix_close(&f);
}

/* A row whose id was handed out before the last row of a fold but that reached the store after
 * it (two workers' queues run in their own order) has its keys written with it. */
static void test_archive_late_row(void **state)
{
	void *how = (void *)&numbered_folded;
	struct xc_archive_query *q;
	struct xc_store_req *r;
	struct fix f;
	char got[400], early[17], later[17];

	(void)state;
	fix_open(&f, &how);
	xc_store_archive_id(f.s.st, early);
	xc_store_archive_id(f.s.st, later);
	put(&f, "juliet@capulet.lit", later, "nurse@capulet.lit", 2000, "lat");
	reopen(&f); /* the fold takes it */
	assert_int_equal(unfolded(&f), 0);
	put(&f, "juliet@capulet.lit", early, "tybalt@capulet.lit/sword", 1990, "ear");
	assert_int_equal(unfolded(&f), 0);
	q = new_query(5);
	q->after_id = strdup(f.ids[29]);
	r = ask(&f, q, got);
	assert_string_equal(got, "ear,lat");
	assert_string_equal(r->arch[0].id, early);
	xc_store_req_free(r);
	q = new_query(5);
	q->with = strdup("tybalt@capulet.lit");
	r = ask(&f, q, got);
	assert_string_equal(got, "ear");
	assert_int_equal(r->count, 1);
	xc_store_req_free(r);
	fix_close(&f);
}

/* A database of the layout before (the keys were partial indexes on the rows, kept up through a
 * column indexed, some rows not in them yet): every row gets its keys when it opens, its
 * indexes go, and queries find the rows in order and by peer. */
static void test_archive_layout_before(void **state)
{
	struct xc_archive_query *q;
	struct xc_store_req *r;
	struct fix f;
	char got[400];

	(void)state;
	open_made(
	    &f, "test_mam_before",
	    "PRAGMA journal_mode=WAL;"
	    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "INSERT INTO meta VALUES ('schema', 1);"
	    "CREATE TABLE archive (id INTEGER PRIMARY KEY, owner TEXT NOT NULL,"
	    " sid TEXT NOT NULL DEFAULT '', stamp INTEGER NOT NULL, with_bare TEXT NOT NULL,"
	    " with_res TEXT NOT NULL, stanza TEXT NOT NULL,"
	    " indexed INTEGER NOT NULL DEFAULT 1);"
	    "CREATE UNIQUE INDEX archive_sid_old ON archive (owner, sid) WHERE sid <> '';"
	    "CREATE INDEX archive_by_time ON archive (owner, stamp) WHERE indexed = 1;"
	    "CREATE INDEX archive_by_with ON archive (owner, with_bare, stamp)"
	    " WHERE indexed = 1;"
	    "CREATE INDEX archive_unfolded ON archive (id) WHERE indexed = 0;"
	    "INSERT INTO archive (id, owner, sid, stamp, with_bare, with_res, stanza, indexed)"
	    " VALUES"
	    " (1, 'juliet@capulet.lit', 'ghijklmnopqrstuv', 100, 'nurse@capulet.lit', '',"
	    "  '<message><body>b01</body></message>', 1),"
	    " (2, 'romeo@montague.lit', 'hijklmnopqrstuvg', 150, 'juliet@capulet.lit', 'x',"
	    "  '<message><body>other</body></message>', 1),"
	    " (3, 'juliet@capulet.lit', 'ijklmnopqrstuvgh', 300, 'romeo@montague.lit', 'a',"
	    "  '<message><body>b03</body></message>', 0),"
	    " (4, 'juliet@capulet.lit', 'jklmnopqrstuvghi', 200, 'nurse@capulet.lit', '',"
	    "  '<message><body>b02</body></message>', 0);"
	    /* more than a fold reads at once (FOLD_CHUNK, 65,536) */
	    "WITH RECURSIVE n(i) AS (SELECT 5 UNION ALL SELECT i + 1 FROM n WHERE i < 70004)"
	    " INSERT INTO archive (id, owner, stamp, with_bare, with_res, stanza, indexed)"
	    " SELECT i, 'benvolio@montague.lit', 1000 + i, 'mercutio' || (i % 7) || "
	    "'@verona.lit',"
	    "  '', '<message/>', i % 2 FROM n;");
	assert_int_equal(unfolded(&f), 0);
	assert_int_equal(sql_int(&f, "SELECT count(*) FROM archive_ix_time"), 70004);
	assert_int_equal(sql_int(&f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
	                             "name IN ('archive_by_time', 'archive_by_with', "
	                             "'archive_unfolded')"),
	                 0);
	r = ask(&f, new_query(10), got);
	assert_string_equal(got, "b01,b02,b03");
	assert_string_equal(r->arch[1].id, "jklmnopqrstuvghi");
	xc_store_req_free(r);
	q = new_query(10);
	q->with = strdup("nurse@capulet.lit");
	r = ask(&f, q, got);
	assert_string_equal(got, "b01,b02");
	xc_store_req_free(r);
	q = new_query(10);
	q->with = strdup("romeo@montague.lit/a");
	r = ask(&f, q, got);
	assert_string_equal(got, "b03");
	xc_store_req_free(r);
	/* and once only: the next opening finds it done */
	reopen(&f);
	assert_int_equal(sql_int(&f, "SELECT value FROM meta WHERE key = 'archive_folded'"), 70004);
	assert_int_equal(sql_int(&f, "SELECT count(*) FROM archive_ix_with"), 70004);
	r = req(&f, XC_STORE_ARCHIVE_QUERY, "benvolio@montague.lit");
	r->query = q = new_query(2);
	q->with = strdup("mercutio3@verona.lit");
	q->backward = true;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 10000); /* one in seven of 70,000 */
	assert_int_equal(r->narch, 2);
	assert_int_equal(r->arch[1].stamp_ms, 1000 + 70003);
	assert_int_equal(r->arch[0].stamp_ms, 1000 + 69996);
	xc_store_req_free(r);
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_query_fields),
	    cmocka_unit_test(test_query_refusals),
	    cmocka_unit_test(test_query_bounds),
	    cmocka_unit_test(test_query_alloc_failures),
	    cmocka_unit_test(test_form),
	    cmocka_unit_test(test_prefs),
	    cmocka_unit_test(test_archivable),
	    cmocka_unit_test(test_archive_paging),
	    cmocka_unit_test(test_archive_filters),
	    cmocka_unit_test(test_archive_ids_prefs_purge_delete),
	    cmocka_unit_test_prestate(test_archive_paging, (void *)&numbered),
	    cmocka_unit_test_prestate(test_archive_filters, (void *)&numbered),
	    cmocka_unit_test_prestate(test_archive_ids_prefs_purge_delete, (void *)&numbered),
	    cmocka_unit_test_prestate(test_archive_paging, (void *)&folded),
	    cmocka_unit_test_prestate(test_archive_filters, (void *)&numbered_folded),
	    cmocka_unit_test_prestate(test_archive_ids_prefs_purge_delete, (void *)&folded),
	    cmocka_unit_test_prestate(test_archive_paging, (void *)&numbered_half),
	    cmocka_unit_test_prestate(test_archive_filters, (void *)&numbered_half),
	    cmocka_unit_test_prestate(test_archive_ids_prefs_purge_delete, (void *)&numbered_half),
	    cmocka_unit_test(test_archive_crash_leftovers),
	    cmocka_unit_test(test_archive_fold_when_idle),
	    cmocka_unit_test(test_archive_fold_after_queries),
	    cmocka_unit_test(test_archive_fold_fails),
	    cmocka_unit_test(test_archive_id_codec),
	    cmocka_unit_test(test_archive_numbering_survives),
	    cmocka_unit_test(test_archive_older_database),
	    cmocka_unit_test(test_archive_late_row),
	    cmocka_unit_test(test_archive_layout_before),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
