/* test_pep.c - personal eventing: publish-options read from hostile forms, the access models'
 * decisions, +notify read from a contact's disco#info and its XEP-0115 hash checked, and the
 * nodes on SQLite: preconditions, max_items trimming ("max" and persist_items false included),
 * the node cap, items by id, retract, delete, each node's last item with whether a contact sees
 * the owner, and vCards. */
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
#include <uv.h>

#include "cm/err.h"
#include "tests/support/alloc.h"
#include "xmpp-core/src/caps.h"
#include "xmpp-core/src/pep.h"
#include "xmpp-core/src/pep_int.h"
#include "xmpp-core/src/stanza.h"
#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

static struct cm_xml_node *parse(const char *xml)
{
	struct cm_xml_node *n = NULL;

	assert_int_equal(xc_stanza_parse(xml, strlen(xml), &n), 0);
	return n;
}

/* --- publish-options ------------------------------------------------------------------------- */

#define FORM_HEAD                                                                                  \
	"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"             \
	"<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"

static int options(const char *fields, struct xc_pep_cfg *cfg, const char **why)
{
	char xml[4096];
	struct cm_xml_node *x;
	int r;

	snprintf(xml, sizeof(xml), FORM_HEAD "%s</x>", fields);
	x = parse(xml);
	memset(cfg, 0, sizeof(*cfg));
	*why = NULL;
	r = xc_pep__options(x, XC_PEP_FORM_PUBLISH, cfg, why);
	cm_xml_node_free(x);
	return r;
}

static void test_options(void **state)
{
	struct xc_pep_cfg cfg;
	const char *why;
	struct cm_xml_node *x;

	(void)state;
	assert_int_equal(options("", &cfg, &why), 0);
	assert_int_equal(cfg.set, 0);
	assert_int_equal(options("<field var='pubsub#access_model'><value>open</value></field>"
	                         "<field var='pubsub#persist_items'><value>false</value></field>"
	                         "<field var='pubsub#max_items'><value>max</value></field>"
	                         "<field var='pubsub#notify_retract'><value>1</value></field>",
	                         &cfg, &why),
	                 0);
	assert_int_equal(cfg.set, XC_PEP_SET_ACCESS | XC_PEP_SET_PERSIST | XC_PEP_SET_MAX);
	assert_int_equal(cfg.access, XC_PEP_OPEN);
	assert_false(cfg.persist);
	assert_int_equal(cfg.max_items, XC_PEP_MAX_ITEMS);
	assert_int_equal(options("<field var='pubsub#access_model'><value>presence</value></field>"
	                         "<field var='pubsub#persist_items'><value>1</value></field>"
	                         "<field var='pubsub#max_items'><value>32</value></field>",
	                         &cfg, &why),
	                 0);
	assert_int_equal(cfg.access, XC_PEP_PRESENCE);
	assert_true(cfg.persist);
	assert_int_equal(cfg.max_items, 32);
	assert_int_equal(
	    options("<field var='pubsub#access_model'><value>whitelist</value></field>", &cfg,
	            &why),
	    0);
	assert_int_equal(cfg.access, XC_PEP_WHITELIST);
	/* roster, with its groups: sorted, each once, each followed by a line break */
	assert_int_equal(
	    options("<field var='pubsub#access_model'><value>roster</value></field>"
	            "<field var='pubsub#roster_groups_allowed' type='list-multi'>"
	            "<value>Friends</value><value>Family</value><value>Friends</value></field>",
	            &cfg, &why),
	    0);
	assert_int_equal(cfg.access, XC_PEP_ROSTER);
	assert_int_equal(cfg.set, XC_PEP_SET_ACCESS | XC_PEP_SET_GROUPS);
	assert_string_equal(cfg.groups, "Family\nFriends\n");
	free(cfg.groups);
	/* an empty list: no group (the owner only) */
	assert_int_equal(
	    options("<field var='pubsub#roster_groups_allowed' type='list-multi'/>", &cfg, &why),
	    0);
	assert_int_equal(cfg.set, XC_PEP_SET_GROUPS);
	assert_string_equal(cfg.groups, "");
	free(cfg.groups);
	static const char *const bad_groups[] = {
	    "<value/>", "<value>a\nb</value>",
	    "<value>x</value></field><field var='pubsub#roster_groups_allowed'><value>y</value>"};
	for (size_t i = 0; i < sizeof(bad_groups) / sizeof(bad_groups[0]); i++) {
		char f[256];

		snprintf(f, sizeof(f), "<field var='pubsub#roster_groups_allowed'>%s</field>",
		         bad_groups[i]);
		assert_int_equal(options(f, &cfg, &why), -EINVAL);
		assert_non_null(why);
		free(cfg.groups);
	}
	{
		char many[2048] = "<field var='pubsub#roster_groups_allowed'>";

		for (int i = 0; i < 65; i++)
			snprintf(many + strlen(many), sizeof(many) - strlen(many),
			         "<value>g%d</value>", i);
		strcat(many, "</field>");
		assert_int_equal(options(many, &cfg, &why), -EINVAL);
		assert_string_equal(why, "too many groups in pubsub#roster_groups_allowed");
	}
	/* what this server has not, and what is no access model at all */
	assert_int_equal(
	    options("<field var='pubsub#access_model'><value>authorize</value></field>", &cfg,
	            &why),
	    -ENOTSUP);
	assert_string_equal(why, "the authorize access model is not supported");
	assert_int_equal(
	    options("<field var='pubsub#access_model'><value>public</value></field>", &cfg, &why),
	    -EINVAL);
	assert_string_equal(why, "unknown pubsub#access_model");
	/* numbers: positive, bounded, digits only */
	static const char *const bad_max[] = {"0", "-1", "1234567890", "12a", "", " 5", "MAX"};
	for (size_t i = 0; i < sizeof(bad_max) / sizeof(bad_max[0]); i++) {
		char f[128];

		snprintf(f, sizeof(f), "<field var='pubsub#max_items'><value>%s</value></field>",
		         bad_max[i]);
		assert_int_equal(options(f, &cfg, &why), -EINVAL);
		assert_string_equal(why, "pubsub#max_items is a positive number or max");
	}
	assert_int_equal(
	    options("<field var='pubsub#max_items'><value>999999999</value></field>", &cfg, &why),
	    0);
	assert_int_equal(cfg.max_items, 999999999);
	assert_int_equal(
	    options("<field var='pubsub#persist_items'><value>yes</value></field>", &cfg, &why),
	    -EINVAL);
	assert_string_equal(why, "pubsub#persist_items is a boolean");
	/* not the right form */
	x = parse("<x xmlns='jabber:x:data' type='submit'/>");
	assert_int_equal(xc_pep__options(x, XC_PEP_FORM_PUBLISH, &cfg, &why), -EINVAL);
	assert_string_equal(why, "the form's FORM_TYPE is not pubsub#publish-options");
	cm_xml_node_free(x);
	/* a node configuration form is no publish-options, and the reverse */
	x = parse("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
	          "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
	          "<field var='pubsub#access_model'><value>open</value></field></x>");
	assert_int_equal(xc_pep__options(x, XC_PEP_FORM_PUBLISH, &cfg, &why), -EINVAL);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(xc_pep__options(x, XC_PEP_FORM_CONFIG, &cfg, &why), 0);
	assert_int_equal(cfg.set, XC_PEP_SET_ACCESS);
	assert_int_equal(cfg.access, XC_PEP_OPEN);
	cm_xml_node_free(x);
	x = parse("<y xmlns='jabber:x:data'/>");
	assert_int_equal(xc_pep__options(x, XC_PEP_FORM_PUBLISH, &cfg, &why), -EINVAL);
	assert_string_equal(why, "the options are a jabber:x:data form");
	cm_xml_node_free(x);
}

/* --- access ---------------------------------------------------------------------------------- */

static void test_access(void **state)
{
	(void)state;
	/* the owner reads everything */
	assert_true(xc_pep__may_read(XC_PEP_PRESENCE, true, false, false));
	assert_true(xc_pep__may_read(XC_PEP_WHITELIST, true, false, false));
	/* open: anyone */
	assert_true(xc_pep__may_read(XC_PEP_OPEN, false, false, false));
	/* presence: those who see the owner's presence */
	assert_true(xc_pep__may_read(XC_PEP_PRESENCE, false, true, false));
	assert_false(xc_pep__may_read(XC_PEP_PRESENCE, false, false, false));
	/* whitelist: nobody else, contact or not */
	assert_false(xc_pep__may_read(XC_PEP_WHITELIST, false, true, false));
	/* roster: the contacts in the node's groups, whatever their subscription */
	assert_true(xc_pep__may_read(XC_PEP_ROSTER, false, false, true));
	assert_false(xc_pep__may_read(XC_PEP_ROSTER, false, true, false));
	assert_true(xc_pep__may_read(XC_PEP_ROSTER, true, false, false));
	/* an access model this build does not know (a newer database): closed */
	assert_false(xc_pep__may_read(17, false, true, true));
	/* membership: one shared name is enough; names are whole lines */
	assert_true(xc_pep__member("Family\nFriends\n", "Work\nFriends\n"));
	assert_false(xc_pep__member("Family\nFriends\n", "Work\nFriend\n"));
	assert_false(xc_pep__member("Family\n", "Fam\n"));
	assert_false(xc_pep__member("Family\n", "Family and more\n"));
	assert_false(xc_pep__member(NULL, "Family\n"));
	assert_false(xc_pep__member("Family\n", NULL));
	assert_false(xc_pep__member("", ""));
	assert_false(xc_pep__member("\n", "\n")); /* no empty name */
}

/* --- capabilities ---------------------------------------------------------------------------- */

static void test_notify_nodes(void **state)
{
	struct cm_xml_node *q;
	char **nodes, xml[4096], longname[1100];
	size_t n;

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(xml, sizeof(xml),
	         "<query xmlns='http://jabber.org/protocol/disco#info'>"
	         "<identity category='client' type='phone'/>"
	         "<feature var='urn:xmpp:avatar:metadata+notify'/>"
	         "<feature var='eu.siacs.conversations.axolotl.devicelist+notify'/>"
	         "<feature var='urn:xmpp:avatar:metadata'/>"
	         "<feature var='+notify'/>"
	         "<feature/>"
	         "<feature var='%s+notify'/>"
	         "<other xmlns='x' var='urn:xmpp:mood+notify'/>"
	         "<feature var='http://jabber.org/protocol/tune+notify'/>"
	         "</query>",
	         longname);
	q = parse(xml);
	assert_int_equal(xc_pep__notify_nodes(q, 16, &nodes, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(nodes[0], "urn:xmpp:avatar:metadata");
	assert_string_equal(nodes[1], "eu.siacs.conversations.axolotl.devicelist");
	assert_string_equal(nodes[2], "http://jabber.org/protocol/tune");
	for (size_t i = 0; i < n; i++)
		free(nodes[i]);
	free(nodes);
	/* bounded */
	assert_int_equal(xc_pep__notify_nodes(q, 2, &nodes, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		free(nodes[i]);
	free(nodes);
	cm_xml_node_free(q);
	q = parse("<query xmlns='http://jabber.org/protocol/disco#info'/>");
	assert_int_equal(xc_pep__notify_nodes(q, 16, &nodes, &n), 0);
	assert_int_equal(n, 0);
	assert_null(nodes);
	cm_xml_node_free(q);
}

/* Without memory: a clean error, nothing leaked. */
static int caps_scenario(void *arg)
{
	const struct cm_xml_node *q = arg;
	char **nodes, ver[64];
	size_t n;
	int r = xc_pep__notify_nodes(q, 16, &nodes, &n);

	if (r)
		return r;
	for (size_t i = 0; i < n; i++)
		free(nodes[i]);
	free(nodes);
	return xc_caps_ver(q, ver, sizeof(ver));
}

static void test_caps_without_memory(void **state)
{
	struct cm_xml_node *q;

	(void)state;
	q = parse("<query xmlns='http://jabber.org/protocol/disco#info'>"
	          "<identity category='client' type='phone' name='p'/>"
	          "<feature var='a+notify'/><feature var='b+notify'/><feature var='c'/></query>");
	assert_true(test_alloc_sweep(caps_scenario, q, 100) > 1);
	cm_xml_node_free(q);
}

static int groups_scenario(void *arg)
{
	struct xc_pep_cfg cfg = {0};
	const char *why = NULL;
	int r = xc_pep__options(arg, XC_PEP_FORM_PUBLISH, &cfg, &why);

	free(cfg.groups);
	return r;
}

/* roster_groups_allowed read without memory: refused, nothing leaked */
static void test_groups_without_memory(void **state)
{
	struct cm_xml_node *x = parse(FORM_HEAD "<field var='pubsub#access_model'><value>roster"
	                                        "</value></field><field var='pubsub#roster_groups_"
	                                        "allowed'><value>b</value><value>a</value></field>"
	                                        "</x>");

	(void)state;
	assert_true(test_alloc_sweep(groups_scenario, x, 100) >= 1);
	cm_xml_node_free(x);
}

/* --- the nodes on SQLite --------------------------------------------------------------------- */

struct fix {
	struct store_fix s; /* the database and the loop of its answers */
};

static void fix_open(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	store_fix_open(&f->s, "test_pep");
}

static void fix_close(struct fix *f)
{
	store_fix_close(&f->s);
}

static struct xc_store_req *req(struct fix *f, enum xc_store_op op, const char *user,
                                const char *node)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->s.l, store_fix_on_done, &f->s);

	assert_non_null(r);
	assert_int_equal(xc_store_req_set(&r->user, user), 0);
	if (node)
		assert_int_equal(xc_store_req_set(&r->key, node), 0);
	r->pep = calloc(1, sizeof(*r->pep));
	assert_non_null(r->pep);
	return r;
}

static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	return store_fix_run(&f->s, r);
}

#define OWNER "juliet@example.com"

/* Publish id to node with options (set: which of them were given); the store's answer. */
static int publish(struct fix *f, const char *node, const char *id, int access, bool persist,
                   unsigned max_items, unsigned set, unsigned cap, unsigned max_nodes)
{
	struct xc_store_req *r = req(f, XC_STORE_PEP_PUBLISH, OWNER, node);
	char payload[128];
	int e;

	snprintf(payload, sizeof(payload), "<x xmlns='urn:test'>%s</x>", id);
	r->pep->cfg = (struct xc_pep_cfg){access, persist, max_items, set, NULL};
	r->pep->item_id = strdup(id);
	r->pep->payload = strdup(payload);
	r->pep->max_items_cap = cap;
	r->pep->max_nodes = max_nodes;
	r = run(f, r);
	e = r->err;
	xc_store_req_free(r);
	return e;
}

/* The ids of node's items, newest first, joined by ','. */
static void ids_of(struct fix *f, const char *node, unsigned max, char *out, size_t len)
{
	struct xc_store_req *r = req(f, XC_STORE_PEP_ITEMS, OWNER, node);

	r->pep->max = max;
	r = run(f, r);
	assert_int_equal(r->err, 0);
	out[0] = '\0';
	for (size_t i = 0; i < r->pep->nitems; i++) {
		if (i)
			strncat(out, ",", len - strlen(out) - 1);
		strncat(out, r->pep->items[i].id, len - strlen(out) - 1);
	}
	xc_store_req_free(r);
}

static void test_store_publish_and_trim(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	char ids[256];

	(void)state;
	fix_open(&f);
	/* max_items 2: the oldest go */
	for (int i = 1; i <= 4; i++) {
		char id[16];

		snprintf(id, sizeof(id), "i%d", i);
		assert_int_equal(
		    publish(&f, "n", id, XC_PEP_PRESENCE, true, 2, XC_PEP_SET_MAX, 256, 10), 0);
	}
	ids_of(&f, "n", 0, ids, sizeof(ids));
	assert_string_equal(ids, "i4,i3");
	/* a republished id is the newest, not a second item */
	assert_int_equal(publish(&f, "n", "i3", 0, true, 2, 0, 256, 10), 0);
	ids_of(&f, "n", 0, ids, sizeof(ids));
	assert_string_equal(ids, "i3,i4");
	ids_of(&f, "n", 1, ids, sizeof(ids));
	assert_string_equal(ids, "i3");
	/* preconditions: each option given must be the node's */
	assert_int_equal(publish(&f, "n", "i5", XC_PEP_OPEN, true, 2, XC_PEP_SET_ACCESS, 256, 10),
	                 -ECANCELED);
	assert_int_equal(publish(&f, "n", "i5", 0, true, 3, XC_PEP_SET_MAX, 256, 10), -ECANCELED);
	assert_int_equal(publish(&f, "n", "i5", 0, false, 2, XC_PEP_SET_PERSIST, 256, 10),
	                 -ECANCELED);
	assert_int_equal(publish(&f, "n", "i5", XC_PEP_PRESENCE, true, 2,
	                         XC_PEP_SET_ACCESS | XC_PEP_SET_MAX | XC_PEP_SET_PERSIST, 256, 10),
	                 0);
	ids_of(&f, "n", 0, ids, sizeof(ids));
	assert_string_equal(ids, "i5,i3"); /* a refused publish left nothing behind */
	/* "max": the server's cap */
	for (int i = 0; i < 6; i++) {
		char id[16];

		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(publish(&f, "big", id, XC_PEP_OPEN, true, XC_PEP_MAX_ITEMS,
		                         XC_PEP_SET_MAX, 4, 10),
		                 0);
	}
	ids_of(&f, "big", 0, ids, sizeof(ids));
	assert_string_equal(ids, "m5,m4,m3,m2");
	/* a node asking more than the cap keeps the cap */
	for (int i = 0; i < 3; i++) {
		char id[16];

		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(publish(&f, "capped", id, 0, true, 1000, XC_PEP_SET_MAX, 2, 10),
		                 0);
	}
	ids_of(&f, "capped", 0, ids, sizeof(ids));
	assert_string_equal(ids, "c2,c1");
	/* persist_items false: the last item only */
	assert_int_equal(publish(&f, "flash", "f1", 0, false, 10, XC_PEP_SET_PERSIST, 256, 10), 0);
	assert_int_equal(publish(&f, "flash", "f2", 0, false, 10, 0, 256, 10), 0);
	ids_of(&f, "flash", 0, ids, sizeof(ids));
	assert_string_equal(ids, "f2");
	/* nodes per user */
	assert_int_equal(publish(&f, "fifth", "x", 0, true, 1, 0, 256, 4), -EDQUOT);
	assert_int_equal(publish(&f, "n", "i6", 0, true, 1, 0, 256, 4), 0); /* not a new node */
	/* reconfigured: fewer items kept trims at once; what is not given stays */
	r = req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "big");
	r->pep->cfg = (struct xc_pep_cfg){XC_PEP_PRESENCE, true, 2, XC_PEP_SET_MAX, NULL};
	r->pep->max_items_cap = 4;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->cfg.access, XC_PEP_OPEN);
	assert_int_equal(r->pep->cfg.max_items, 2);
	xc_store_req_free(r);
	ids_of(&f, "big", 0, ids, sizeof(ids));
	assert_string_equal(ids, "m5,m4");
	r = run(&f, req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "big")); /* nothing set: read */
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->cfg.max_items, 2);
	assert_true(r->pep->cfg.persist);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "none"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	/* by id, the missing left out */
	r = req(&f, XC_STORE_PEP_ITEMS, OWNER, "n");
	r->pep->ids = calloc(2, sizeof(char *));
	r->pep->ids[0] = strdup("nope");
	r->pep->ids[1] = strdup("i5");
	r->pep->nids = 2;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->nitems, 1);
	assert_string_equal(r->pep->items[0].payload, "<x xmlns='urn:test'>i5</x>");
	assert_int_equal(r->pep->cfg.max_items, 2);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_ITEMS, OWNER, "none"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	/* the owner's nodes */
	r = run(&f, req(&f, XC_STORE_PEP_NODES, OWNER, NULL));
	assert_int_equal(r->pep->nitems, 4);
	assert_string_equal(r->pep->items[0].node, "big");
	assert_int_equal(r->pep->items[0].access, XC_PEP_OPEN);
	xc_store_req_free(r);
	/* retract, delete */
	r = req(&f, XC_STORE_PEP_RETRACT, OWNER, "n");
	r->pep->item_id = strdup("i5");
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_PEP_RETRACT, OWNER, "n");
	r->pep->item_id = strdup("i5");
	r = run(&f, r);
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_DELETE, OWNER, "n"));
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_DELETE, OWNER, "n"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_ITEMS, OWNER, "n"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	fix_close(&f);
}

static void put_contact(struct fix *f, const char *contact, int sub)
{
	struct xc_store_req *r =
	    xc_store_req_new(XC_STORE_ROSTER_PUT, &f->s.l, store_fix_on_done, &f->s);

	assert_int_equal(xc_store_req_set(&r->user, OWNER), 0);
	assert_int_equal(xc_store_req_set(&r->item.contact, contact), 0);
	r->item.st.sub = (enum xc_sub)sub;
	r = run(f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
}

#define SHA1_ABC "a9993e364706816aba3e25717850c26c9cd0d89d"

/* ROSTER_GET's avatar for OWNER ("?" for not known; static: one at a time) */
static const char *avatar_of(struct fix *f)
{
	static char out[64];
	struct xc_store_req *r = run(f, req(f, XC_STORE_ROSTER_GET, OWNER, NULL));

	assert_int_equal(r->err, 0);
	snprintf(out, sizeof(out), "%s", r->avatar ? r->avatar : "?");
	xc_store_req_free(r);
	return out;
}

static struct xc_store_req *last_for(struct fix *f, const char *contact)
{
	return run(f, req(f, XC_STORE_PEP_LAST, OWNER, contact));
}

static void test_store_last_and_account(void **state)
{
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	fix_open(&f);
	assert_int_equal(
	    run(&f, xc_store_req_new(XC_STORE_ACCOUNT_CREATE, &f.s.l, store_fix_on_done, &f.s))
	        ->err,
	    -EINVAL); /* no user */
	xc_store_req_free(f.s.last);
	r = req(&f, XC_STORE_ACCOUNT_CREATE, OWNER, NULL);
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(f.s.last);
	assert_int_equal(publish(&f, "a", "a1", XC_PEP_OPEN, true, 5, XC_PEP_SET_ACCESS, 256, 10),
	                 0);
	assert_int_equal(publish(&f, "a", "a2", 0, true, 5, 0, 256, 10), 0);
	assert_int_equal(publish(&f, "b", "b1", XC_PEP_PRESENCE, true, 1, 0, 256, 10), 0);
	put_contact(&f, "romeo@example.net", XC_SUB_BOTH);
	put_contact(&f, "nurse@example.com", XC_SUB_TO);
	r = last_for(&f, "romeo@example.net");
	assert_true(r->pep->sees);
	assert_int_equal(r->pep->nitems, 2);
	assert_string_equal(r->pep->items[0].node, "a");
	assert_string_equal(r->pep->items[0].id, "a2");
	assert_int_equal(r->pep->items[0].access, XC_PEP_OPEN);
	assert_string_equal(r->pep->items[1].node, "b");
	assert_string_equal(r->pep->items[1].payload, "<x xmlns='urn:test'>b1</x>");
	xc_store_req_free(r);
	/* 'to' only: the nurse does not see juliet's presence; strangers neither */
	r = last_for(&f, "nurse@example.com");
	assert_false(r->pep->sees);
	xc_store_req_free(r);
	r = last_for(&f, "tybalt@example.com");
	assert_false(r->pep->sees);
	assert_int_equal(r->pep->nitems, 2);
	xc_store_req_free(r);
	/* blocked: no longer */
	r = xc_store_req_new(XC_STORE_BLOCK_ADD, &f.s.l, store_fix_on_done, &f.s);
	assert_int_equal(xc_store_req_set(&r->user, OWNER), 0);
	r->jids = calloc(1, sizeof(char *));
	r->jids[0] = strdup("romeo@example.net");
	r->njids = 1;
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(f.s.last);
	r = last_for(&f, "romeo@example.net");
	assert_false(r->pep->sees);
	xc_store_req_free(r);
	/* vCards */
	r = run(&f, req(&f, XC_STORE_VCARD_GET, OWNER, NULL));
	assert_false(r->found);
	xc_store_req_free(r);
	assert_string_equal(avatar_of(&f), ""); /* no vCard: no avatar */
	r = req(&f, XC_STORE_VCARD_SET, OWNER, NULL);
	r->stanza = strdup("<vCard xmlns='vcard-temp'><FN>J</FN></vCard>");
	assert_int_equal(run(&f, r)->err, -EINVAL); /* without the PHOTO's hash */
	xc_store_req_free(r);
	r = req(&f, XC_STORE_VCARD_SET, OWNER, NULL);
	r->stanza = strdup("<vCard xmlns='vcard-temp'><FN>J</FN></vCard>");
	assert_int_equal(xc_store_req_set(&r->avatar, SHA1_ABC), 0);
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_VCARD_GET, OWNER, NULL));
	assert_true(r->found);
	assert_string_equal(r->stanza, "<vCard xmlns='vcard-temp'><FN>J</FN></vCard>");
	xc_store_req_free(r);
	/* the hash comes with the roster; a hash learnt later does not replace one set */
	assert_string_equal(avatar_of(&f), SHA1_ABC);
	r = req(&f, XC_STORE_VCARD_HASH, OWNER, NULL);
	assert_int_equal(run(&f, r)->err, -EINVAL);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_VCARD_HASH, OWNER, NULL);
	assert_int_equal(xc_store_req_set(&r->avatar, ""), 0);
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(r);
	assert_string_equal(avatar_of(&f), SHA1_ABC);
	/* the account goes, its nodes, items and vCard with it */
	r = req(&f, XC_STORE_ACCOUNT_DELETE, OWNER, NULL);
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(r);
	r = last_for(&f, "romeo@example.net");
	assert_int_equal(r->pep->nitems, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_NODES, OWNER, NULL));
	assert_int_equal(r->pep->nitems, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_VCARD_GET, OWNER, NULL));
	assert_false(r->found);
	xc_store_req_free(r);
	assert_string_equal(avatar_of(&f), "");
	/* a PEP op without its data is refused, not run */
	r = xc_store_req_new(XC_STORE_PEP_NODES, &f.s.l, store_fix_on_done, &f.s);
	assert_int_equal(xc_store_req_set(&r->user, OWNER), 0);
	assert_int_equal(run(&f, r)->err, -EINVAL);
	xc_store_req_free(r);
	fix_close(&f);
}

static void put_grouped(struct fix *f, const char *contact, const char *group)
{
	struct xc_store_req *r =
	    xc_store_req_new(XC_STORE_ROSTER_PUT, &f->s.l, store_fix_on_done, &f->s);

	assert_int_equal(xc_store_req_set(&r->user, OWNER), 0);
	assert_int_equal(xc_store_req_set(&r->item.contact, contact), 0);
	r->item.groups = calloc(1, sizeof(char *));
	r->item.groups[0] = strdup(group);
	r->item.ngroups = 1;
	r = run(f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
}

/* A roster node's groups kept, checked as a precondition, read back by every op that needs
 * them, and gone with the node (whose configuration its deletion answers). */
static void test_store_roster_groups(void **state)
{
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	fix_open(&f);
	r = req(&f, XC_STORE_PEP_PUBLISH, OWNER, "r");
	r->pep->cfg =
	    (struct xc_pep_cfg){XC_PEP_ROSTER, true, 1, XC_PEP_SET_ACCESS | XC_PEP_SET_GROUPS,
	                        strdup("Family\nFriends\n")};
	r->pep->item_id = strdup("1");
	r->pep->payload = strdup("<x xmlns='urn:test'/>");
	r->pep->max_items_cap = 8;
	assert_int_equal(run(&f, r)->err, 0);
	assert_string_equal(r->pep->cfg.groups, "Family\nFriends\n");
	xc_store_req_free(r);
	/* other groups than the node's: not met */
	r = req(&f, XC_STORE_PEP_PUBLISH, OWNER, "r");
	r->pep->cfg = (struct xc_pep_cfg){0, true, 1, XC_PEP_SET_GROUPS, strdup("Family\n")};
	r->pep->item_id = strdup("2");
	r->pep->payload = strdup("<x xmlns='urn:test'/>");
	assert_int_equal(run(&f, r)->err, -ECANCELED);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_ITEMS, OWNER, "r"));
	assert_int_equal(r->pep->cfg.access, XC_PEP_ROSTER);
	assert_string_equal(r->pep->cfg.groups, "Family\nFriends\n");
	assert_int_equal(r->pep->nitems, 1);
	xc_store_req_free(r);
	put_grouped(&f, "romeo@example.net", "Friends");
	r = last_for(&f, "romeo@example.net");
	assert_int_equal(r->pep->nitems, 1);
	assert_string_equal(r->pep->items[0].groups, "Family\nFriends\n");
	assert_string_equal(r->pep->contact_groups, "Friends\n");
	assert_true(xc_pep__member(r->pep->items[0].groups, r->pep->contact_groups));
	xc_store_req_free(r);
	r = last_for(&f, "tybalt@example.com"); /* not in the roster */
	assert_null(r->pep->contact_groups);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_NODES, OWNER, NULL));
	assert_int_equal(r->pep->nitems, 1);
	assert_string_equal(r->pep->items[0].groups, "Family\nFriends\n");
	xc_store_req_free(r);
	/* reconfigured to one group; then to none */
	r = req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "r");
	r->pep->cfg = (struct xc_pep_cfg){0, true, 1, XC_PEP_SET_GROUPS, strdup("Work\n")};
	assert_int_equal(run(&f, r)->err, 0);
	assert_string_equal(r->pep->cfg.groups, "Work\n");
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "r"));
	assert_string_equal(r->pep->cfg.groups, "Work\n");
	assert_int_equal(r->pep->cfg.access, XC_PEP_ROSTER);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "r");
	r->pep->cfg = (struct xc_pep_cfg){0, true, 1, XC_PEP_SET_GROUPS, strdup("")};
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "r"));
	assert_null(r->pep->cfg.groups);
	xc_store_req_free(r);
	/* deleted: the answer has what the node was; a new node of that name has no groups */
	r = req(&f, XC_STORE_PEP_CONFIGURE, OWNER, "r");
	r->pep->cfg = (struct xc_pep_cfg){0, true, 1, XC_PEP_SET_GROUPS, strdup("Work\n")};
	assert_int_equal(run(&f, r)->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_DELETE, OWNER, "r"));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->cfg.access, XC_PEP_ROSTER);
	assert_string_equal(r->pep->cfg.groups, "Work\n");
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_PEP_DELETE, OWNER, "r"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	assert_int_equal(publish(&f, "r", "1", 0, true, 1, 0, 8, 10), 0);
	r = run(&f, req(&f, XC_STORE_PEP_ITEMS, OWNER, "r"));
	assert_int_equal(r->pep->cfg.access, XC_PEP_PRESENCE);
	assert_null(r->pep->cfg.groups);
	xc_store_req_free(r);
	fix_close(&f);
}

/* A page of items (XEP-0059): max after an id, newest first, with the count and the index. */
static struct xc_store_req *page(struct fix *f, unsigned max, const char *after)
{
	struct xc_store_req *r = req(f, XC_STORE_PEP_ITEMS, OWNER, "p");

	r->pep->rsm = true;
	r->pep->max = max;
	r->pep->after = after ? strdup(after) : NULL;
	return run(f, r);
}

static void test_store_pages(void **state)
{
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	fix_open(&f);
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "p%d", i);
		assert_int_equal(publish(&f, "p", id, 0, true, 10, XC_PEP_SET_MAX, 10, 10), 0);
	}
	r = page(&f, 2, NULL);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->nitems, 2);
	assert_string_equal(r->pep->items[0].id, "p4");
	assert_string_equal(r->pep->items[1].id, "p3");
	assert_int_equal(r->pep->count, 5);
	assert_int_equal(r->pep->index, 0);
	xc_store_req_free(r);
	r = page(&f, 2, "p3");
	assert_int_equal(r->pep->nitems, 2);
	assert_string_equal(r->pep->items[0].id, "p2");
	assert_string_equal(r->pep->items[1].id, "p1");
	assert_int_equal(r->pep->index, 2);
	xc_store_req_free(r);
	r = page(&f, 2, "p1");
	assert_int_equal(r->pep->nitems, 1);
	assert_string_equal(r->pep->items[0].id, "p0");
	assert_int_equal(r->pep->index, 4);
	xc_store_req_free(r);
	r = page(&f, 2, "p0"); /* past the end: empty */
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->nitems, 0);
	assert_int_equal(r->pep->count, 5);
	xc_store_req_free(r);
	r = page(&f, 0, NULL); /* the count only */
	assert_int_equal(r->pep->nitems, 0);
	assert_int_equal(r->pep->count, 5);
	xc_store_req_free(r);
	r = page(&f, 2, "gone");
	assert_int_equal(r->err, -ESRCH);
	xc_store_req_free(r);
	/* a republished item moves to the front of the pages */
	assert_int_equal(publish(&f, "p", "p1", 0, true, 10, 0, 10, 10), 0);
	r = page(&f, 3, NULL);
	assert_string_equal(r->pep->items[0].id, "p1");
	assert_string_equal(r->pep->items[1].id, "p4");
	assert_string_equal(r->pep->items[2].id, "p3");
	xc_store_req_free(r);
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_access),
	    cmocka_unit_test(test_notify_nodes),
	    cmocka_unit_test(test_caps_without_memory),
	    cmocka_unit_test(test_groups_without_memory),
	    cmocka_unit_test(test_store_publish_and_trim),
	    cmocka_unit_test(test_store_last_and_account),
	    cmocka_unit_test(test_store_roster_groups),
	    cmocka_unit_test(test_store_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
