/* blocking.c - XEP-0191 block lists (blocking.h). */
#include "blocking.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/log.h"
#include "router.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "store.h"
#include "user.h"

#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define MAX_ITEMS          1000 /* JIDs one block or unblock may name */

/* --- matching -----------------------------------------------------------------------------------
 */

static bool item_matches(const struct xc_jid *item, const struct xc_jid *who)
{
	if (item->dlen != who->dlen ||
	    memcmp(xc_jid_domain(item), xc_jid_domain(who), item->dlen) != 0)
		return false;
	if (item->llen && (item->llen != who->llen || memcmp(item->s, who->s, item->llen) != 0))
		return false;
	if (item->rlen && (item->rlen != who->rlen ||
	                   memcmp(xc_jid_resource(item), xc_jid_resource(who), item->rlen) != 0))
		return false;
	return true;
}

bool xc_blocking_blocks(const struct xc_user *u, const struct xc_jid *who)
{
	if (xc_jid_empty(who))
		return false;
	for (size_t i = 0; i < u->nblocked; i++)
		if (item_matches(&u->blocked[i], who))
			return true;
	return false;
}

/* --- refusals -----------------------------------------------------------------------------------
 */

void xc_blocking_refuse_outbound(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *st)
{
	enum xc_kind kind = xc_stanza_kind(st);
	struct cm_xml_node *e, *err, *b;

	if (kind != XC_PRESENCE) {
		e = xc_stanza_error(st, "cancel", "not-acceptable", NULL, c->host);
		err = e ? cm_xml_child(e, "error", NULL) : NULL;
		if (err && cm_xml_node_new_child(&b, err, "blocked", NS_BLOCKING_ERRORS) == 0) {
			/* the error comes from the blocked JID's side, to the sender */
			cm_xml_node_set_attr(e, "to", c->jid.s);
			xc_c2s_send(c, e);
		}
		cm_xml_node_free(e);
	}
	(void)sh;
	cm_xml_node_free(st);
}

void xc_blocking_refuse_inbound(struct xc_shard *sh, struct cm_xml_node *st)
{
	enum xc_kind kind = xc_stanza_kind(st);
	const char *type = xc_stanza_type(st);

	if (kind == XC_MESSAGE ||
	    (kind == XC_IQ && type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)))
		xc_bounce(sh, st, "cancel", "service-unavailable");
	cm_xml_node_free(st);
}

/* --- presence around a change -------------------------------------------------------------------
 */

/* Whether the contact at who sees u's presence (a subscription from it). */
static bool subscribed(struct xc_user *u, const struct xc_jid *who)
{
	char bare[XC_JID_PART_MAX * 2 + 2];
	struct xc_contact *ct;
	size_t n = xc_jid_bare_len(who);

	if (n >= sizeof(bare))
		return false;
	memcpy(bare, who->s, n);
	bare[n] = '\0';
	ct = xc_roster_find(u, bare);
	return ct && (ct->item.st.sub == XC_SUB_FROM || ct->item.st.sub == XC_SUB_BOTH);
}

/* Blocked: the contact gets unavailable presence from each available session. Unblocked: it
 * gets their presence again. Only contacts (full or bare items; not domains) with a
 * subscription, who saw the presence in the first place. */
static void presence_to(struct xc_shard *sh, struct xc_user *u, const struct xc_jid *who,
                        bool blocked)
{
	struct xc_c2s *c;

	if (!who->llen || !subscribed(u, who))
		return;
	xc_user_foreach_session(u, c)
	{
		struct cm_xml_node *p = NULL;
		int r;

		if (!c->available)
			continue;
		if (blocked) {
			r = cm_xml_node_new(&p, "presence", CM_XML_NS_CLIENT);
			r = r ? r : cm_xml_node_set_attr(p, "type", "unavailable");
		} else {
			r = c->presence ? cm_xml_node_copy(&p, c->presence) : -ENOENT;
		}
		r = r ? r : xc_stanza_set_addrs(p, who->s, c->jid.s);
		if (r) {
			cm_xml_node_free(p);
			continue;
		}
		xc_route(sh, p);
	}
}

/* --- the IQs ------------------------------------------------------------------------------------
 */

struct change {
	struct xc_shard *sh;
	struct cm_xml_node *iq; /* owned: answered once the change is committed */
	char *user;             /* owned: the bare JID, to find the user again */
};

static void on_stored(struct xc_store_req *r)
{
	struct change *ch = r->arg;
	struct xc_jid j = {0};
	struct xc_user *u = NULL;
	struct cm_xml_node *res;

	if (xc_jid_parse(&j, ch->user, strlen(ch->user), NULL, 0) == 0)
		u = xc_user_find(ch->sh, &j);
	xc_jid_free(&j);
	if (r->err) {
		CM_LOGW("blocking", "cannot write the block list of %s: %s", ch->user,
		        strerror(-r->err));
		xc_bounce(ch->sh, ch->iq, "wait", "internal-server-error");
	} else if ((res = xc_iq_result(ch->iq, NULL)) != NULL) {
		xc_route(ch->sh, res);
	}
	if (u) {
		u->busy--;
		xc_user_put(ch->sh, u);
	}
	cm_xml_node_free(ch->iq);
	free(ch->user);
	free(ch);
	xc_store_req_free(r);
}

/* Push the change (a copy of the <block/> or <unblock/> element) to every session that asked
 * for the list (XEP-0191 3.3, 3.4). */
static bool wants_blocklist(const struct xc_c2s *c)
{
	return c->blocklist_interested;
}

static void push(struct xc_user *u, const struct cm_xml_node *what)
{
	struct cm_xml_node *iq = NULL, *copy = NULL;
	int r = cm_xml_node_new(&iq, "iq", CM_XML_NS_CLIENT);

	r = r ? r : cm_xml_node_set_attr(iq, "type", "set");
	r = r ? r : cm_xml_node_copy(&copy, what);
	r = r ? r : cm_xml_node_add_child(iq, copy);
	if (r) {
		cm_xml_node_free(iq);
		cm_xml_node_free(copy);
		return;
	}
	xc_session_push(u, iq, wants_blocklist);
	cm_xml_node_free(iq);
}

static void do_get(struct xc_shard *sh, struct xc_c2s *c, struct xc_user *u, struct cm_xml_node *iq)
{
	struct cm_xml_node *list = NULL, *item, *res;
	int r = cm_xml_node_new(&list, "blocklist", XC_NS_BLOCKING);

	for (size_t i = 0; i < u->nblocked && !r; i++) {
		r = cm_xml_node_new_child(&item, list, "item", NULL);
		r = r ? r : cm_xml_node_set_attr(item, "jid", u->blocked[i].s);
	}
	if (r) {
		cm_xml_node_free(list);
		xc_bounce(sh, iq, "wait", "resource-constraint");
		return;
	}
	c->blocklist_interested = true;
	res = xc_iq_result(iq, list);
	if (res)
		xc_route(sh, res);
}

/* The items of a <block/> or <unblock/>, parsed into *out (n of them). 0, -EINVAL (a JID that is
 * not one: jid-malformed), -E2BIG, -ENOMEM. */
static int take_items(const struct cm_xml_node *what, struct xc_jid **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (const struct cm_xml_node *it = what->children; it; it = it->next) {
		const char *jid;
		struct xc_jid *nv;

		if (it->kind != CM_XML_ELEMENT || strcmp(it->name, "item") != 0)
			continue;
		jid = cm_xml_attr(it, "jid");
		if (*n == MAX_ITEMS)
			return -E2BIG;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(*out, cap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			*out = nv;
		}
		if (!jid || xc_jid_parse(&(*out)[*n], jid, strlen(jid), NULL, 0) != 0)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

static void free_items(struct xc_jid *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		xc_jid_free(&v[i]);
	free(v);
}

/* Apply the change to u's list in memory; fill r->jids with what the store is to do. 0 or
 * -ENOMEM (nothing changed). */
static int apply(struct xc_user *u, bool block, struct xc_jid *items, size_t n,
                 struct xc_store_req *r)
{
	size_t total = block ? u->nblocked + n : u->nblocked;
	struct xc_jid *nv = total ? calloc(total, sizeof(*nv)) : NULL;
	size_t k = 0;

	if (total && !nv)
		return -ENOMEM;
	r->jids = n ? calloc(n, sizeof(char *)) : NULL;
	if (n && !r->jids) {
		free(nv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		r->jids[i] = strdup(items[i].s);
		if (!r->jids[i]) {
			free(nv);
			return -ENOMEM; /* r->jids goes with the request */
		}
		r->njids++;
	}
	/* the new list: the old one without what is unblocked, with what is blocked */
	for (size_t i = 0; i < u->nblocked; i++) {
		bool drop = !block && n == 0; /* unblock everything */

		for (size_t j = 0; !block && j < n && !drop; j++)
			drop = xc_jid_equal(&u->blocked[i], &items[j]);
		if (drop)
			xc_jid_free(&u->blocked[i]);
		else
			nv[k++] = u->blocked[i];
	}
	for (size_t j = 0; block && j < n; j++) {
		bool dup = false;

		for (size_t i = 0; i < k && !dup; i++)
			dup = xc_jid_equal(&nv[i], &items[j]);
		if (!dup) {
			nv[k++] = items[j];
			memset(&items[j], 0, sizeof(items[j])); /* handed over */
		}
	}
	free(u->blocked);
	u->blocked = nv;
	u->nblocked = k;
	return 0;
}

static void do_set(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *iq,
                   const struct cm_xml_node *what, bool block)
{
	struct xc_jid *items = NULL, *before = NULL;
	size_t n = 0, nbefore = 0;
	struct xc_store_req *r = NULL;
	struct change *ch = NULL;
	int rc = take_items(what, &items, &n);

	if (rc == -EINVAL || rc == -E2BIG || (block && n == 0)) {
		free_items(items, n);
		xc_bounce(sh, iq, "modify", rc == -EINVAL ? "jid-malformed" : "bad-request");
		cm_xml_node_free(iq);
		return;
	}
	/* who the change concerns (unblock all: everyone listed), for the presence that follows;
	 * copies, since apply() hands the items over to the list */
	if (!rc) {
		nbefore = n || block ? n : u->nblocked;
		before = calloc(nbefore ? nbefore : 1, sizeof(*before));
		for (size_t i = 0; before && i < nbefore && !rc; i++)
			rc = xc_jid_copy(&before[i], n ? &items[i] : &u->blocked[i], false);
		if (!before)
			rc = -ENOMEM;
	}
	ch = rc ? NULL : calloc(1, sizeof(*ch));
	r = ch ? xc_store_req_new(block ? XC_STORE_BLOCK_ADD : XC_STORE_BLOCK_REMOVE, sh->loop,
	                          on_stored, ch)
	       : NULL;
	if (!r || !(ch->user = strdup(u->bare.s)) || xc_store_req_set(&r->user, u->bare.s) != 0 ||
	    apply(u, block, items, n, r) != 0 || xc_store_submit(sh->srv->store, r) != 0) {
		/* (apply() changes nothing when it fails; a failed submit leaves memory ahead of
		 * the store until the next load - said in the log) */
		if (r && r->njids)
			CM_LOGW("blocking", "cannot write the block list of %s", u->bare.s);
		xc_store_req_free(r);
		if (ch)
			free(ch->user);
		free(ch);
		free_items(items, n);
		free_items(before, nbefore);
		xc_bounce(sh, iq, "wait", "resource-constraint");
		cm_xml_node_free(iq);
		return;
	}
	ch->sh = sh;
	ch->iq = iq;
	u->busy++;
	push(u, what);
	for (size_t i = 0; i < nbefore; i++)
		if (block || !xc_blocking_blocks(u, &before[i]))
			presence_to(sh, u, &before[i], block);
	free_items(items, n);
	free_items(before, nbefore);
}

static void with_roster(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *iq,
                        const char *full)
{
	const char *type = cm_xml_attr(iq, "type");
	const struct cm_xml_node *q = iq->children;
	struct xc_jid j;
	struct xc_c2s *c = NULL;

	while (q && q->kind != CM_XML_ELEMENT)
		q = q->next;
	if (u->rstate != XC_ROSTER_READY || !q) {
		xc_bounce(sh, iq, "wait", "internal-server-error");
		cm_xml_node_free(iq);
		return;
	}
	if (xc_jid_parse(&j, full, strlen(full), NULL, 0) == 0)
		c = xc_session_find(sh, &j);
	xc_jid_free(&j);
	if (strcmp(type, "get") == 0 && strcmp(q->name, "blocklist") == 0 && c) {
		do_get(sh, c, u, iq);
		cm_xml_node_free(iq);
	} else if (strcmp(type, "set") == 0 &&
	           (strcmp(q->name, "block") == 0 || strcmp(q->name, "unblock") == 0)) {
		do_set(sh, u, iq, q, strcmp(q->name, "block") == 0); /* takes iq */
	} else {
		xc_bounce(sh, iq, "modify", "bad-request");
		cm_xml_node_free(iq);
	}
}

void xc_blocking_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq)
{
	xc_user_with_roster(sh, c->u, iq, with_roster, c->jid.s);
}
