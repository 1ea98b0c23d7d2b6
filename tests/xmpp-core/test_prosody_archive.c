/* test_prosody_archive.c - Prosody's mod_mam archive cut into requests of the archive route
 * (prosody.h): rows as a real Prosody 0.12 keeps them, the limits of a request, the messages
 * the route would refuse (counted and noted), the callback's refusal, memory failures, and the
 * database side on a file laid out as Prosody's SQL store. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "cm/err.h"
#include "cm/xml.h"
#include "tests/support/alloc.h"
#include "xmpp-core/src/archive_import.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/server.h"
#include "xmpp-core/src/xc.h"

#define ALICE "alice@example.org"

/* alice's archive as Prosody 0.12's mod_mam kept it (store "archive", "when" in seconds, the
 * stanza as routed: from set by Prosody, no 'to' on a message to her own bare JID) */
static const struct xc_prosody_item alice[] = {
    {"archive", "b52afd9d-273e-4a22-9cc1-82c54bcb5d1d", 1796553672, "xml",
     "<message xml:lang='en' to='bob@example.org' from='alice@example.org/Aeb3lL15tIAo' "
     "type='chat' id='59c03545c20047e29b28f25557a20a2c'><body>hi bob &lt;&amp;&gt;</body>"
     "</message>"},
    {"archive", "67c8da00-1ecd-479d-b84d-1a36dc3f492d", 1796553673, "xml",
     "<message xml:lang='en' to='dave@localhost' from='alice@example.org/Aeb3lL15tIAo' "
     "type='chat' id='6ce03ab0f20d46cea2ff2a8077d4918e'><body>offline dave</body></message>"},
    {"archive", "d81b6722-9fb8-4152-96fa-1bfcfbb730a8", 1796553673, "xml",
     "<message xml:lang='en' to='bob@example.org' from='alice@example.org/Aeb3lL15tIAo' "
     "id='87a47ff5ac514f49b904c7213a7810aa'><body>normal</body></message>"},
    {"archive", "ac397987-c125-4e7c-87a5-7cfff57af5cb", 1796553673, "xml",
     "<message xml:lang='en' type='chat' from='alice@example.org/Aeb3lL15tIAo' "
     "id='4ea18c3e6bfa4de5aec0d4579acfbef4'><body>to self</body></message>"},
    {"archive", "123637b5-5722-4295-bcfb-5a4eed139cbf", 1796553673, "xml",
     "<message xml:lang='en' to='alice@example.org/x' from='bob@example.org/vwIfjwWCBO5n' "
     "type='chat' id='50c98ff341724285a817a2eb9da71c6f'><body>hi alice</body></message>"},
};
#define NALICE (sizeof(alice) / sizeof(*alice))

/* What the callback was given. */
struct got {
	json_t *bodies;   /* the requests, parsed */
	size_t refuse_at; /* refuse the request with this number (1: the first; 0: none) */
	size_t max_len;   /* of the longest body */
};

static int take(void *arg, const char *body, size_t len, size_t n)
{
	struct got *g = arg;
	json_error_t e;
	json_t *d;

	assert_int_equal(strlen(body), len);
	if (g->refuse_at && json_array_size(g->bodies) + 1 == g->refuse_at)
		return -ECANCELED;
	d = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!d)
		fail_msg("not JSON (%s): %.200s", e.text, body);
	assert_int_equal(json_object_size(d), 2);
	assert_int_equal(json_array_size(json_object_get(d, "messages")), n);
	assert_int_equal(json_array_append_new(g->bodies, d), 0);
	if (len > g->max_len)
		g->max_len = len;
	return 0;
}

/* The i-th message over every request the callback took. */
static json_t *message(const struct got *g, size_t i)
{
	for (size_t b = 0; b < json_array_size(g->bodies); b++) {
		json_t *list = json_object_get(json_array_get(g->bodies, b), "messages");

		if (i < json_array_size(list))
			return json_array_get(list, i);
		i -= json_array_size(list);
	}
	return NULL;
}

static bool has_note(const struct xc_import_notes *n, const char *text)
{
	for (size_t i = 0; i < n->n; i++)
		if (strstr(n->v[i], text))
			return true;
	return false;
}

/* items through a cutter with lim, into g; the sent and left counts. */
static int cut(const struct xc_prosody_item *items, size_t n,
               const struct xc_prosody_mam_limits *lim, struct got *g,
               struct xc_import_notes *notes, size_t *sent, size_t *left)
{
	struct xc_prosody_mam *m;
	int rc = xc_prosody_mam_alloc(&m, ALICE, lim, take, g);

	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = xc_prosody_mam_add(m, &items[i]);
	rc = rc ? rc : xc_prosody_mam_end(m);
	xc_prosody_mam_counts(m, sent, left);
	if (notes && xc_prosody_mam_notes(m, notes) != 0)
		rc = rc ? rc : -ENOMEM;
	xc_prosody_mam_free(m);
	return rc;
}

static void test_real_rows(void **state)
{
	struct xc_prosody_mam_limits lim = {262144, 2, XC_PROSODY_MAM_MAX_BODY};
	struct got g = {.bodies = json_array()};
	struct xc_import_notes notes = {0};
	size_t sent, left;

	(void)state;
	assert_int_equal(cut(alice, NALICE, &lim, &g, &notes, &sent, &left), 0);
	assert_int_equal(sent, NALICE);
	assert_int_equal(left, 0);
	assert_int_equal(notes.n, 0);
	/* two per request: 2, 2, 1, in order */
	assert_int_equal(json_array_size(g.bodies), 3);
	for (size_t b = 0; b < 3; b++) {
		json_t *d = json_array_get(g.bodies, b);

		assert_string_equal(json_string_value(json_object_get(d, "jid")), ALICE);
		assert_int_equal(json_array_size(json_object_get(d, "messages")), b < 2 ? 2 : 1);
	}
	for (size_t i = 0; i < NALICE; i++) {
		json_t *m = message(&g, i);
		const char *st = json_string_value(json_object_get(m, "stanza"));

		assert_int_equal(json_object_size(m), 2);
		assert_int_equal(json_integer_value(json_object_get(m, "stamp_ms")),
		                 alice[i].when * 1000);
		if (i == 3) /* 'to' put back, as Prosody read it: to her own bare JID */
			assert_string_equal(
			    st, "<message xml:lang='en' type='chat' "
			        "from='alice@example.org/Aeb3lL15tIAo' "
			        "id='4ea18c3e6bfa4de5aec0d4579acfbef4' "
			        "to='alice@example.org'><body>to self</body></message>");
		else /* sent as Prosody kept it */
			assert_string_equal(st, alice[i].value);
	}
	json_decref(g.bodies);
}

/* A stanza of Prosody's shape with a body of n bytes of c. */
static char *sized(size_t n, char c)
{
	static const char head[] = "<message to='bob@example.org' from='alice@example.org/a' "
	                           "type='chat'><body>";
	char *s = malloc(sizeof(head) + n + 32);

	assert_non_null(s);
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, c, n);
	strcpy(s + sizeof(head) - 1 + n, "</body></message>");
	return s;
}

static void test_request_limits(void **state)
{
	enum { N = 40 };
	struct xc_prosody_item items[N];
	char *texts[N];
	struct xc_prosody_mam_limits lim = {4096, 1000, 3000};
	struct got g = {.bodies = json_array()};
	struct xc_import_notes notes = {0};
	size_t sent, left, total = 0;

	(void)state;
	/* bodies of 300 bytes, with quotes that JSON escapes: about ten to a request */
	for (size_t i = 0; i < N; i++) {
		texts[i] = sized(300, i % 2 ? '"' : 'x');
		items[i] = (struct xc_prosody_item){"archive", "k", (long long)i, "xml", texts[i]};
	}
	assert_int_equal(cut(items, N, &lim, &g, &notes, &sent, &left), 0);
	assert_int_equal(sent, N);
	assert_int_equal(left, 0);
	assert_true(g.max_len <= lim.max_body);
	assert_true(json_array_size(g.bodies) > 4);
	for (size_t b = 0; b < json_array_size(g.bodies); b++)
		total += json_array_size(json_object_get(json_array_get(g.bodies, b), "messages"));
	assert_int_equal(total, N);
	/* the order kept across requests */
	for (size_t i = 0; i < N; i++) {
		json_t *m = message(&g, i);

		assert_int_equal(json_integer_value(json_object_get(m, "stamp_ms")), i * 1000);
		assert_string_equal(json_string_value(json_object_get(m, "stanza")), texts[i]);
	}
	json_decref(g.bodies);

	/* a message alone larger than a request: left behind, named */
	g = (struct got){.bodies = json_array()};
	free(texts[5]);
	texts[5] = sized(3000, 'y');
	items[5].value = texts[5];
	assert_int_equal(cut(items, 10, &lim, &g, &notes, &sent, &left), 0);
	assert_int_equal(sent, 9);
	assert_int_equal(left, 1);
	assert_true(has_note(&notes, ALICE ": message archive (mod_mam): 1 message(s) left behind: "
	                                   "alone over the 3000 bytes of a request"));
	json_decref(g.bodies);
	xc_import_notes_free(&notes);

	/* the route's count: at most max_messages to a request */
	g = (struct got){.bodies = json_array()};
	lim = (struct xc_prosody_mam_limits){4096, 7, XC_PROSODY_MAM_MAX_BODY};
	assert_int_equal(cut(items, N, &lim, &g, NULL, &sent, &left), 0);
	assert_int_equal(json_array_size(g.bodies), 6); /* 7 * 5 + 5 */
	assert_int_equal(json_array_size(json_object_get(json_array_get(g.bodies, 5), "messages")),
	                 5);
	json_decref(g.bodies);
	for (size_t i = 0; i < N; i++)
		free(texts[i]);
}

static void test_left_behind(void **state)
{
	char *big = sized(200, 'z'), *grows = sized(120, '>');
	const struct xc_prosody_item items[] = {
	    {"archive", "1", 10, "json", "{\"name\":\"message\"}"},
	    {"archive", "2", 11, "xml", "<presence from='alice@example.org/a'/>"},
	    {"archive", "3", 12, "xml",
	     "<message xmlns='jabber:server' from='alice@example.org/a' "
	     "to='bob@example.org'><body>s2s</body></message>"},
	    {"archive", "4", 13, "xml", "<message from='alice@example.org/a'><body>cut"},
	    {"archive", "5", 14, "xml",
	     "<message from='alice@example.org/a'><body>\xff</body>"
	     "</message>"},
	    {"archive", "6", 15, "xml",
	     "<message from='carol@example.org/a' "
	     "to='bob@example.org'><body>not hers</body></message>"},
	    {"archive", "7", 16, "xml",
	     "<message to='alice@example.org'><body>from nobody</body>"
	     "</message>"},
	    {"archive", "8", 17, "xml",
	     "<message from='alice@example.org/a' to='@@'>"
	     "<body>to no JID</body></message>"},
	    {"archive", "9", 18, "xml", big},
	    /* under the limit as Prosody wrote it, over it as our writer does (&gt;) */
	    {"archive", "10", 19, "xml", grows},
	    /* and what comes */
	    {"archive", "11", 20, "xml",
	     "<message from='ALICE@Example.org/a' to='bob@example.org'>"
	     "<body>hers</body></message>"},
	    {"archive", "12", 21, "xml",
	     "<message xmlns='jabber:client' from='bob@example.org/b' "
	     "to='alice@example.org'><body>in</body></message>"},
	    {"archive", "13", -5, "xml",
	     "<message from='bob@example.org/b' "
	     "to='alice@example.org'><body>before 1970</body></message>"},
	};
	struct xc_prosody_mam_limits lim = {240, 10, 100000};
	struct got g = {.bodies = json_array()};
	struct xc_import_notes notes = {0};
	size_t sent, left;

	(void)state;
	assert_true(strlen(grows) <= lim.max_stanza);
	assert_int_equal(cut(items, sizeof(items) / sizeof(*items), &lim, &g, &notes, &sent, &left),
	                 0);
	assert_int_equal(sent, 3);
	assert_int_equal(left, 10);
	assert_int_equal(notes.n, 4);
	assert_true(has_note(&notes, ALICE ": message archive (mod_mam): 3 message(s) left behind: "
	                                   "not a <message/> of jabber:client"));
	assert_true(has_note(&notes, ALICE ": message archive (mod_mam): 2 message(s) left behind: "
	                                   "not XML the stream parser takes"));
	assert_true(has_note(&notes, ALICE ": message archive (mod_mam): 3 message(s) left behind: "
	                                   "neither its 'from' nor its 'to' is the account's"));
	assert_true(has_note(&notes, ALICE ": message archive (mod_mam): 2 message(s) left behind: "
	                                   "over 240 bytes (c2s.max_stanza)"));
	assert_string_equal(json_string_value(json_object_get(message(&g, 0), "stanza")),
	                    items[10].value);
	assert_string_equal(json_string_value(json_object_get(message(&g, 1), "stanza")),
	                    items[11].value);
	assert_int_equal(json_integer_value(json_object_get(message(&g, 2), "stamp_ms")), 0);
	xc_import_notes_free(&notes);
	json_decref(g.bodies);
	free(big);
	free(grows);
}

static void test_refused(void **state)
{
	struct xc_prosody_mam_limits lim = {262144, 2, XC_PROSODY_MAM_MAX_BODY};
	struct got g = {.bodies = json_array(), .refuse_at = 2};
	struct xc_prosody_mam *m;
	size_t sent, left;

	(void)state;
	assert_int_equal(cut(alice, NALICE, &lim, &g, NULL, &sent, &left), -ECANCELED);
	assert_int_equal(sent, 2); /* the first request only */
	assert_int_equal(json_array_size(g.bodies), 1);
	/* the refusal stays: nothing more goes */
	json_array_clear(g.bodies);
	g.refuse_at = 1;
	assert_int_equal(xc_prosody_mam_alloc(&m, ALICE, &lim, take, &g), 0);
	assert_int_equal(xc_prosody_mam_add(m, &alice[0]), 0);
	assert_int_equal(xc_prosody_mam_end(m), -ECANCELED);
	g.refuse_at = 0;
	assert_int_equal(xc_prosody_mam_add(m, &alice[1]), -ECANCELED);
	assert_int_equal(xc_prosody_mam_end(m), -ECANCELED);
	xc_prosody_mam_counts(m, &sent, &left);
	assert_int_equal(sent, 0);
	xc_prosody_mam_free(m);
	json_decref(g.bodies);
	/* no messages: no request */
	g = (struct got){.bodies = json_array()};
	assert_int_equal(cut(alice, 0, &lim, &g, NULL, &sent, &left), 0);
	assert_int_equal(json_array_size(g.bodies), 0);
	json_decref(g.bodies);
	/* not an account; limits that allow nothing */
	assert_int_equal(xc_prosody_mam_alloc(&m, "example.org", &lim, take, &g), -EINVAL);
	assert_int_equal(xc_prosody_mam_alloc(&m, "a@example.org/r", &lim, take, &g), -EINVAL);
	assert_int_equal(xc_prosody_mam_alloc(&m, "@@", &lim, take, &g), -EINVAL);
	lim.max_messages = 0;
	assert_int_equal(xc_prosody_mam_alloc(&m, ALICE, &lim, take, &g), -EINVAL);
	lim = (struct xc_prosody_mam_limits){262144, 2, 20};
	assert_int_equal(xc_prosody_mam_alloc(&m, ALICE, &lim, take, &g), -EINVAL);
	assert_null(m);
	xc_prosody_mam_free(NULL);
}

static int cut_scenario(void *arg)
{
	struct xc_prosody_mam_limits lim = {262144, 2, XC_PROSODY_MAM_MAX_BODY};
	struct got g = {.bodies = json_array()};
	struct xc_import_notes notes = {0};
	const struct xc_prosody_item more[NALICE + 1] = {
	    alice[0], alice[1],
	    alice[2], alice[3],
	    alice[4], {"archive", "x", 1, "xml", "<message from='carol@example.org/a'/>"}};
	size_t sent, left;
	int rc;

	(void)arg;
	rc = cut(more, NALICE + 1, &lim, &g, &notes, &sent, &left);
	assert_true(rc == 0 || rc == -ENOMEM);
	if (!rc && (sent != NALICE || notes.n != 1))
		fail_msg("without memory: %zu sent, %zu note(s)", sent, notes.n);
	xc_import_notes_free(&notes);
	json_decref(g.bodies);
	return rc;
}

static void test_without_memory(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(cut_scenario, NULL, 400) > 1);
}

/* Each request the route's own parser checks, against a server of example.org with the
 * stanza limit the cutter had. */
struct route {
	struct xc_server srv;
	struct xc_config cfg;
	size_t max_stanza, taken;
};

static int to_route(void *arg, const char *body, size_t len, size_t n)
{
	struct route *r = arg;
	struct xc_archive_batch b;
	char err[CM_ERR_MAX];

	if (xc_archive_import_parse(body, len, &r->srv, r->max_stanza, &b, err, sizeof(err)) != 0)
		fail_msg("the route refuses a request: %s", err);
	assert_int_equal(b.n, n);
	assert_string_equal(b.user, ALICE);
	r->taken += n;
	xc_archive_batch_clear(&b);
	return 0;
}

static void test_route_takes_them(void **state)
{
	char *hosts[] = {"example.org", "localhost"};
	char *edge = sized(240 - 92, 'e'); /* 92: the frame around the body */
	const struct xc_prosody_item more[] = {
	    /* at the limit exactly, as read and as written */
	    {"archive", "e", 1, "xml", edge},
	    /* a stanza-id of ours (the route takes it off), xmlns written */
	    {"archive", "s", 2, "xml",
	     "<message xmlns='jabber:client' to='bob@example.org' "
	     "from='alice@example.org/a'><body>x</body><stanza-id "
	     "xmlns='urn:xmpp:sid:0' by='alice@example.org' id='1'/>"
	     "</message>"},
	};
	static const char *const refused[] = {
	    "<presence from='alice@example.org/a'/>",
	    "<message xmlns='jabber:server' from='alice@example.org/a' to='bob@example.org'/>",
	    "<message from='alice@example.org/a'><body>cut",
	    "<message from='carol@example.org/a' to='bob@example.org'/>",
	    "<message to='alice@example.org'><body>from nobody</body></message>",
	    "<message from='alice@example.org/a' to='@@'/>",
	    NULL, /* grows */
	};
	char *grows = sized(120, '>');
	struct xc_prosody_mam_limits lim = {240, 3, XC_PROSODY_MAM_MAX_BODY};
	struct route r = {.max_stanza = 240};
	struct xc_prosody_mam *m;
	size_t sent, left;

	(void)state;
	assert_int_equal(strlen(edge), 240);
	r.cfg.hosts = (struct cm_cfg_strlist){hosts, 2};
	r.srv.cfg = &r.cfg;
	assert_int_equal(cm_xml_node_new(&r.srv.scope, "stream:stream", CM_XML_NS_STREAM), 0);
	assert_int_equal(cm_xml_node_declare_ns(r.srv.scope, NULL, CM_XML_NS_CLIENT), 0);
	assert_int_equal(xc_prosody_mam_alloc(&m, ALICE, &lim, to_route, &r), 0);
	for (size_t i = 0; i < NALICE; i++)
		assert_int_equal(xc_prosody_mam_add(m, &alice[i]), 0);
	for (size_t i = 0; i < sizeof(more) / sizeof(*more); i++)
		assert_int_equal(xc_prosody_mam_add(m, &more[i]), 0);
	assert_int_equal(xc_prosody_mam_end(m), 0);
	xc_prosody_mam_counts(m, &sent, &left);
	assert_int_equal(left, 0);
	assert_int_equal(sent, NALICE + 2);
	assert_int_equal(r.taken, sent);
	xc_prosody_mam_free(m);
	/* and what the cutter leaves behind, the route refuses */
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		const char *st = refused[i] ? refused[i] : grows;
		json_t *d = json_pack("{ss s[{si ss}]}", "jid", ALICE, "messages", "stamp_ms", 1,
		                      "stanza", st);
		char *body = json_dumps(d, JSON_COMPACT), err[CM_ERR_MAX];
		struct xc_archive_batch b;

		assert_int_equal(xc_archive_import_parse(body, strlen(body), &r.srv, r.max_stanza,
		                                         &b, err, sizeof(err)),
		                 -EINVAL);
		free(body);
		json_decref(d);
	}
	cm_xml_node_free(r.srv.scope);
	free(edge);
	free(grows);
}

/* --- the database ------------------------------------------------------------------------ */

static void sql(sqlite3 *db, const char *s)
{
	char *e = NULL;

	if (sqlite3_exec(db, s, NULL, NULL, &e) != SQLITE_OK)
		fail_msg("%s: %s", s, e);
}

/* amy's archive read from the database at path, into g. */
static int read_amy(const char *path, struct got *g, struct xc_import_notes *notes, size_t *sent)
{
	struct xc_prosody_mam_limits lim = {262144, 1000, XC_PROSODY_MAM_MAX_BODY};
	struct xc_prosody_mam *m;
	struct xc_prosody *p;
	char err[CM_ERR_MAX];
	size_t left;
	int rc;

	assert_int_equal(xc_prosody_open(&p, path, err, sizeof(err)), 0);
	assert_int_equal(xc_prosody_mam_alloc(&m, "amy@a.example", &lim, take, g), 0);
	rc = xc_prosody_mam_read(p, "a.example", "amy", m, err, sizeof(err));
	xc_prosody_mam_counts(m, sent, &left);
	assert_int_equal(xc_prosody_mam_notes(m, notes), 0);
	xc_prosody_mam_free(m);
	xc_prosody_close(p);
	return rc;
}

static void test_database(void **state)
{
	char dir[] = "/tmp/test_prosody_archive.XXXXXX", path[80], err[CM_ERR_MAX], cmd[96], *doc;
	struct xc_import_notes notes = {0};
	struct got g = {.bodies = json_array()};
	struct xc_prosody *p;
	size_t sent;
	sqlite3 *db;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/prosody.sqlite", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* as mod_storage_sql (0.12) makes them */
	sql(db, "CREATE TABLE prosody (host TEXT, user TEXT, store TEXT, key TEXT, type TEXT, "
	        "value TEXT);"
	        "INSERT INTO prosody VALUES ('a.example','amy','accounts','password','string','a'),"
	        " ('a.example','amy','archive_prefs','','json','{}');");
	sqlite3_close(db);
	/* a Prosody that never archived anything has no archive table: nothing to send */
	assert_int_equal(read_amy(path, &g, &notes, &sent), 0);
	assert_int_equal(sent, 0);
	assert_int_equal(json_array_size(g.bodies), 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql(db,
	    "CREATE TABLE prosodyarchive (sort_id INTEGER PRIMARY KEY AUTOINCREMENT, "
	    "host TEXT NOT NULL, user TEXT NOT NULL, store TEXT NOT NULL, key TEXT NOT NULL, "
	    "\"when\" INTEGER NOT NULL, \"with\" TEXT NOT NULL, type TEXT NOT NULL, "
	    "value MEDIUMTEXT NOT NULL);"
	    "INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value)"
	    " VALUES ('a.example','amy','archive','k1',100,'bo@a.example','xml',"
	    "  '<message xml:lang=''en'' to=''bo@a.example'' from=''amy@a.example/p'' "
	    "type=''chat'' id=''1''><body>first</body></message>'),"
	    " ('a.example','amy','offline','k2',101,'','xml','<message to=''amy@a.example''/>'),"
	    " ('a.example','ann','archive','k3',101,'bo@a.example','xml',"
	    "  '<message to=''bo@a.example'' from=''ann@a.example/p''><body>ann''s</body>"
	    "</message>'),"
	    /* Prosody's clock went back: "when" orders, then the order kept */
	    " ('a.example','amy','archive','k4',103,'bo@a.example','xml',"
	    "  '<message to=''amy@a.example/p'' from=''bo@a.example/q'' type=''chat''>"
	    "<body>third</body></message>'),"
	    " ('a.example','amy','archive','k5',102,'bo@a.example','xml',"
	    "  '<message to=''bo@a.example'' from=''amy@a.example/p''><body>second</body>"
	    "</message>'),"
	    " ('a.example','amy','archive','k6',103,'bo@a.example','xml',"
	    "  '<message to=''bo@a.example'' from=''amy@a.example/p''><body>fourth</body>"
	    "</message>'),"
	    " ('a.example','amy','archive','k7',104,'bo@a.example','xml','<not-a-message/>'),"
	    " ('b.example','amy','archive','k8',105,'bo@a.example','xml',"
	    "  '<message to=''bo@a.example'' from=''amy@b.example/p''/>'),"
	    " ('a.example','amy','muc_log','k9',106,'','xml','<message/>');");
	sqlite3_close(db);
	assert_int_equal(read_amy(path, &g, &notes, &sent), 0);
	assert_int_equal(sent, 4);
	assert_int_equal(json_array_size(g.bodies), 1);
	{
		static const char *const bodies[] = {"first", "second", "third", "fourth"};
		static const long long stamps[] = {100000, 102000, 103000, 103000};

		for (size_t i = 0; i < 4; i++) {
			const char *st =
			    json_string_value(json_object_get(message(&g, i), "stanza"));

			assert_non_null(strstr(st, bodies[i]));
			assert_int_equal(
			    json_integer_value(json_object_get(message(&g, i), "stamp_ms")),
			    stamps[i]);
		}
	}
	assert_int_equal(notes.n, 1);
	assert_true(has_note(&notes, "amy@a.example: message archive (mod_mam): 1 message(s) left "
	                             "behind: not a <message/> of jabber:client"));
	xc_import_notes_free(&notes);
	/* the account's other archives are still named as left behind; mod_mam's no more */
	assert_int_equal(xc_prosody_open(&p, path, err, sizeof(err)), 0);
	assert_int_equal(xc_prosody_account(p, "a.example", "amy", &doc, &notes, err, sizeof(err)),
	                 0);
	assert_true(has_note(&notes, "amy@a.example: archive \"muc_log\" left behind (1 item(s))"));
	assert_false(has_note(&notes, "archive \"archive\""));
	free(doc);
	xc_import_notes_free(&notes);
	xc_prosody_close(p);
	json_decref(g.bodies);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_rows),      cmocka_unit_test(test_request_limits),
	    cmocka_unit_test(test_left_behind),    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_without_memory), cmocka_unit_test(test_route_takes_them),
	    cmocka_unit_test(test_database),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
