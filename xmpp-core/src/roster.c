/* roster.c - roster get and set (RFC 6121 2), versions (XEP-0237), pushes (roster.h). */
#include "roster.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/log.h"
#include "cm/utf8.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "user.h"

#define NS_ROSTER      "jabber:iq:roster"
#define MAX_ITEMS      XC_ROSTER_MAX_ITEMS
#define MAX_GROUPS     XC_ROSTER_MAX_GROUPS
#define MAX_NAME_BYTES XC_ROSTER_MAX_NAME

/* <item jid name subscription [ask] [approved]><group/>...</item> under parent. */
static int item_xml(struct cm_xml_node *parent, const struct xc_roster_item *it, bool removed)
{
	struct cm_xml_node *n, *g;
	int r = cm_xml_node_new_child(&n, parent, "item", NULL);

	r = r ? r : cm_xml_node_set_attr(n, "jid", it->contact);
	if (removed)
		return r ? r : cm_xml_node_set_attr(n, "subscription", "remove");
	r = r ? r : (it->name ? cm_xml_node_set_attr(n, "name", it->name) : 0);
	r = r ? r : cm_xml_node_set_attr(n, "subscription", xc_sub_name(it->st.sub));
	r = r ? r : (it->st.out ? cm_xml_node_set_attr(n, "ask", "subscribe") : 0);
	r = r ? r : (it->st.approved ? cm_xml_node_set_attr(n, "approved", "true") : 0);
	for (size_t i = 0; i < it->ngroups && !r; i++) {
		r = cm_xml_node_new_child(&g, n, "group", NULL);
		r = r ? r : cm_xml_node_add_text(g, it->groups[i], strlen(it->groups[i]));
	}
	return r;
}

static bool wants_roster(const struct xc_c2s *c)
{
	return c->interested;
}

void xc_roster_push(struct xc_shard *sh, struct xc_user *u, const struct xc_contact *ct,
                    const char *contact)
{
	struct xc_roster_item gone = {.contact = (char *)contact};
	struct cm_xml_node *iq = NULL, *q;
	char ver[24];
	int r;

	(void)sh;
	snprintf(ver, sizeof(ver), "%llu", (unsigned long long)u->roster_version);
	r = cm_xml_node_new(&iq, "iq", CM_XML_NS_CLIENT);
	r = r ? r : cm_xml_node_set_attr(iq, "type", "set");
	r = r ? r : cm_xml_node_new_child(&q, iq, "query", NS_ROSTER);
	r = r ? r : cm_xml_node_set_attr(q, "ver", ver);
	r = r ? r : item_xml(q, ct ? &ct->item : &gone, !ct);
	if (r) {
		cm_xml_node_free(iq);
		return;
	}
	/* RFC 6121 2.1.6: to every interested session, each with its own id */
	xc_session_push(u, iq, wants_roster);
	cm_xml_node_free(iq);
}

/* --- get ---------------------------------------------------------------------------------------
 */

static void answer_error(struct xc_shard *sh, struct cm_xml_node *iq, const char *etype,
                         const char *cond)
{
	xc_bounce(sh, iq, etype, cond);
	cm_xml_node_free(iq);
}

static void do_get(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *iq, const char *full)
{
	const struct cm_xml_node *q = cm_xml_child(iq, "query", NS_ROSTER);
	const char *asked = cm_xml_attr(q, "ver");
	struct cm_xml_node *res, *rq = NULL;
	struct cm_map_iter it;
	struct cm_map_node *n;
	char ver[24];
	struct xc_jid j;
	struct xc_c2s *c = NULL;
	int r;

	if (u->rstate != XC_ROSTER_READY) {
		answer_error(sh, iq, "wait", "internal-server-error");
		return;
	}
	if (xc_jid_parse(&j, full, strlen(full), NULL, 0) == 0)
		c = xc_session_find(sh, &j);
	xc_jid_free(&j);
	if (c)
		c->interested = true;
	snprintf(ver, sizeof(ver), "%llu", (unsigned long long)u->roster_version);
	/* XEP-0237: the client's version is the current one: an empty result, pushes follow */
	if (asked && strcmp(asked, ver) == 0) {
		res = xc_iq_result(iq, NULL);
	} else {
		r = cm_xml_node_new(&rq, "query", NS_ROSTER);
		r = r ? r : cm_xml_node_set_attr(rq, "ver", ver);
		cm_map_iter_init(&it, &u->roster);
		while (!r && (n = cm_map_iter_next(&it)) != NULL) {
			struct xc_contact *ct = cm_list_entry(n, struct xc_contact, node);

			if (ct->item.st.listed)
				r = item_xml(rq, &ct->item, false);
		}
		if (r) {
			cm_xml_node_free(rq);
			answer_error(sh, iq, "wait", "resource-constraint");
			return;
		}
		res = xc_iq_result(iq, rq);
	}
	if (res)
		xc_route(sh, res);
	cm_xml_node_free(iq);
}

/* --- set ---------------------------------------------------------------------------------------
 */

struct set_ctx {
	struct cm_xml_node *iq; /* owned: answered once the change is stored */
};

static void on_set_stored(struct xc_shard *sh, struct xc_user *u, int err, uint64_t version,
                          void *arg)
{
	struct set_ctx *sc = arg;
	struct cm_xml_node *res;

	(void)u;
	(void)version;
	if (err) {
		xc_bounce(sh, sc->iq, "wait", "internal-server-error");
	} else if ((res = xc_iq_result(sc->iq, NULL)) != NULL) {
		xc_route(sh, res);
	}
	cm_xml_node_free(sc->iq);
	free(sc);
}

/* Take name and groups of a client's <item/> into it. 0, -EINVAL (bad request), -ENOMEM. */
static int take_item(const struct cm_xml_node *item, struct xc_roster_item *it)
{
	const char *name = cm_xml_attr(item, "name");
	const struct cm_xml_node *g;
	size_t n = 0;

	for (g = cm_xml_child(item, "group", NULL); g; g = cm_xml_child_next(g, "group", NULL))
		n++;
	if (n > MAX_GROUPS || (name && strlen(name) > MAX_NAME_BYTES))
		return -EINVAL;
	free(it->name);
	it->name = NULL;
	if (name && *name && !(it->name = strdup(name)))
		return -ENOMEM;
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	it->groups = NULL;
	it->ngroups = 0;
	if (!n)
		return 0;
	it->groups = calloc(n, sizeof(*it->groups));
	if (!it->groups)
		return -ENOMEM;
	for (g = cm_xml_child(item, "group", NULL); g; g = cm_xml_child_next(g, "group", NULL)) {
		const char *t = cm_xml_text(g);

		/* RFC 6121 2.1.2.2: a group is not empty; the same group twice is an error */
		if (!t || !*t || strlen(t) > MAX_NAME_BYTES || strchr(t, '\n'))
			return -EINVAL;
		for (size_t i = 0; i < it->ngroups; i++)
			if (strcmp(it->groups[i], t) == 0)
				return -EINVAL;
		it->groups[it->ngroups] = strdup(t);
		if (!it->groups[it->ngroups])
			return -ENOMEM;
		it->ngroups++;
	}
	return 0;
}

static void do_set(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *iq, const char *full)
{
	const struct cm_xml_node *q = cm_xml_child(iq, "query", NS_ROSTER), *item;
	const char *jid, *sub;
	struct xc_jid cj;
	struct xc_contact *ct;
	struct set_ctx *sc;
	int r;

	(void)full;
	if (u->rstate != XC_ROSTER_READY) {
		answer_error(sh, iq, "wait", "internal-server-error");
		return;
	}
	/* RFC 6121 2.3.3: exactly one item, with a jid that is not the user's own */
	item = cm_xml_child(q, "item", NULL);
	if (!item || cm_xml_child_next(item, "item", NULL) || !(jid = cm_xml_attr(item, "jid"))) {
		answer_error(sh, iq, "modify", "bad-request");
		return;
	}
	if (xc_jid_parse(&cj, jid, strlen(jid), NULL, 0) != 0 || !xc_jid_is_bare(&cj)) {
		xc_jid_free(&cj);
		answer_error(sh, iq, "modify", "jid-malformed");
		return;
	}
	sub = cm_xml_attr(item, "subscription");
	ct = xc_roster_find(u, cj.s);
	if (sub && strcmp(sub, "remove") == 0) {
		if (!ct || !ct->item.st.listed) {
			xc_jid_free(&cj);
			answer_error(sh, iq, "cancel", "item-not-found");
			return;
		}
		/* RFC 6121 2.5.2: cancel both directions before the item goes */
		{
			struct xc_sub_state s = ct->item.st;
			struct cm_xml_node *p;
			const char *types[2] = {NULL, NULL};

			if (s.sub == XC_SUB_TO || s.sub == XC_SUB_BOTH || s.out)
				types[0] = "unsubscribe";
			if (s.sub == XC_SUB_FROM || s.sub == XC_SUB_BOTH || s.in)
				types[1] = "unsubscribed";
			for (int i = 0; i < 2; i++) {
				if (!types[i] ||
				    cm_xml_node_new(&p, "presence", CM_XML_NS_CLIENT) != 0)
					continue;
				if (cm_xml_node_set_attr(p, "type", types[i]) != 0 ||
				    xc_stanza_set_addrs(p, cj.s, u->bare.s) != 0) {
					cm_xml_node_free(p);
					continue;
				}
				xc_route(sh, p);
			}
		}
		xc_roster_remove(u, ct);
		sc = calloc(1, sizeof(*sc));
		if (!sc) {
			xc_jid_free(&cj);
			answer_error(sh, iq, "wait", "resource-constraint");
			return;
		}
		sc->iq = iq;
		xc_roster_store(sh, u, NULL, cj.s, on_set_stored, sc);
		xc_roster_push(sh, u, NULL, cj.s);
		xc_jid_free(&cj);
		return;
	}
	if (!ct && cm_map_count(&u->roster) >= MAX_ITEMS) {
		xc_jid_free(&cj);
		answer_error(sh, iq, "cancel", "not-allowed");
		return;
	}
	if (!ct && !(ct = xc_roster_add(u, cj.s))) {
		xc_jid_free(&cj);
		answer_error(sh, iq, "wait", "resource-constraint");
		return;
	}
	xc_jid_free(&cj);
	r = take_item(item, &ct->item);
	if (r) {
		answer_error(sh, iq, r == -EINVAL ? "modify" : "wait",
		             r == -EINVAL ? "bad-request" : "resource-constraint");
		return;
	}
	/* the subscription is the server's to set: a client's attribute is ignored (2.1.2.5) */
	ct->item.st.listed = true;
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		answer_error(sh, iq, "wait", "resource-constraint");
		return;
	}
	sc->iq = iq;
	xc_roster_store(sh, u, ct, NULL, on_set_stored, sc);
	xc_roster_push(sh, u, ct, NULL);
}

void xc_roster_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq)
{
	const char *type = cm_xml_attr(iq, "type");

	if (strcmp(type, "get") == 0)
		xc_user_with_roster(sh, c->u, iq, do_get, c->jid.s);
	else if (strcmp(type, "set") == 0)
		xc_user_with_roster(sh, c->u, iq, do_set, c->jid.s);
	else
		cm_xml_node_free(iq);
}
