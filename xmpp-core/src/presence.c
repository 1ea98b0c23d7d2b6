/* presence.c - presence broadcast, probes and subscriptions (presence.h). */
#include "presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "blocking.h"
#include "c2s.h"
#include "cm/log.h"
#include "last.h"
#include "offline.h"
#include "pep.h"
#include "roster.h"
#include "router.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "subscription.h"
#include "user.h"

#define MAX_DIRECTED 1000 /* JIDs a session may have sent directed presence to */

static bool sees_user(const struct xc_contact *ct)
{
	return ct->item.st.sub == XC_SUB_FROM || ct->item.st.sub == XC_SUB_BOTH;
}

static bool user_sees(const struct xc_contact *ct)
{
	return ct->item.st.sub == XC_SUB_TO || ct->item.st.sub == XC_SUB_BOTH;
}

/* Route a copy of st with to and from set (from NULL: keep st's). */
static void route_copy(struct xc_shard *sh, const struct cm_xml_node *st, const char *to,
                       const char *from)
{
	struct cm_xml_node *n;

	if (cm_xml_node_copy(&n, st) != 0)
		return;
	if (cm_xml_node_set_attr(n, "to", to) != 0 ||
	    (from && cm_xml_node_set_attr(n, "from", from) != 0)) {
		cm_xml_node_free(n);
		return;
	}
	xc_route(sh, n);
}

/* A bare presence of type (NULL: available) from -> to. */
static void route_bare(struct xc_shard *sh, const char *type, const char *from, const char *to)
{
	struct cm_xml_node *n;

	if (cm_xml_node_new(&n, "presence", CM_XML_NS_CLIENT) != 0)
		return;
	if ((type && cm_xml_node_set_attr(n, "type", type) != 0) ||
	    xc_stanza_set_addrs(n, to, from) != 0) {
		cm_xml_node_free(n);
		return;
	}
	xc_route(sh, n);
}

/* Each available session of u sends its presence to 'to'; none: one unavailable. */
static void send_current(struct xc_shard *sh, struct xc_user *u, const char *to)
{
	struct xc_c2s *c;
	int sent = 0;

	xc_user_foreach_session(u, c)
	{
		if (c->available && c->presence) {
			route_copy(sh, c->presence, to, c->jid.s);
			sent++;
		}
	}
	if (!sent)
		route_bare(sh, "unavailable", u->bare.s, to);
}

/* --- broadcast -----------------------------------------------------------------------------------
 */

/* The session's presence to its contacts and its own sessions, once the roster is there. */
/* Whether u blocks the entity at jid (a string; XEP-0191). */
static bool blocks(const struct xc_user *u, const char *jid)
{
	struct xc_jid j;
	bool b;

	if (!u->nblocked || !jid || xc_jid_parse(&j, jid, strlen(jid), NULL, 0) != 0)
		return false;
	b = xc_blocking_blocks(u, &j);
	xc_jid_free(&j);
	return b;
}

static void do_broadcast(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                         const char *full)
{
	struct xc_jid from = {0};
	struct xc_c2s *c = NULL, *other;
	bool initial, unavailable = strcmp(xc_stanza_type(st), "unavailable") == 0, others = false;
	struct cm_map_iter it;
	struct cm_map_node *n;

	if (xc_jid_parse(&from, full, strlen(full), NULL, 0) == 0)
		c = xc_session_find(sh, &from);
	xc_jid_free(&from);
	if (!c) {
		cm_xml_node_free(st); /* the session left meanwhile */
		return;
	}
	initial = !c->available && !unavailable;
	if (!unavailable)
		c->available = true; /* before probes are answered (they may come back at once) */
	if (!unavailable && xc_avatar_mode(sh) != XC_AVATAR_OFF && u->rstate == XC_ROSTER_READY &&
	    xc_avatar_stamp(st, u->avatar, NULL) != 0) {
		cm_xml_node_free(st);
		return;
	}
	/* to the user's own available sessions, this one included (RFC 6121 4.2.2, 4.4.2) */
	xc_user_foreach_session(u, other)
	{
		if (other->available || other == c)
			xc_c2s_send(other, st);
	}
	xc_pep_own_presence(sh, &c->jid, st); /* what this session wants to hear of */
	if (u->rstate == XC_ROSTER_READY) {
		cm_map_iter_init(&it, &u->roster);
		while ((n = cm_map_iter_next(&it)) != NULL) {
			struct xc_contact *ct = cm_list_entry(n, struct xc_contact, node);

			if (blocks(u, ct->item.contact))
				continue; /* neither told nor asked */
			if (sees_user(ct))
				route_copy(sh, st, ct->item.contact, NULL);
			if (initial && user_sees(ct))
				route_bare(sh, "probe", u->bare.s, ct->item.contact);
		}
	}
	if (unavailable) {
		/* those it told of itself by directed presence hear it go too (RFC 6121 4.6.3) */
		for (size_t i = 0; i < c->ndirected; i++)
			route_copy(sh, st, c->directed[i], NULL);
		xc_presence_forget_directed(c);
		c->available = false;
		cm_xml_node_free(c->presence);
		c->presence = NULL;
		xc_user_foreach_session(u, other)
		{
			others = others || other->available;
		}
		if (!others)
			xc_last_gone(sh, u, st); /* the account's last available session went */
		cm_xml_node_free(st);
		return;
	}
	cm_xml_node_free(c->presence);
	c->presence = st; /* kept for probes */
	if (!initial)
		return;
	/* subscription requests that waited for the user (RFC 6121 3.1.3) */
	if (u->rstate == XC_ROSTER_READY) {
		cm_map_iter_init(&it, &u->roster);
		while ((n = cm_map_iter_next(&it)) != NULL) {
			struct xc_contact *ct = cm_list_entry(n, struct xc_contact, node);
			struct cm_xml_node *req;

			if (!ct->item.st.in ||
			    cm_xml_node_new(&req, "presence", CM_XML_NS_CLIENT) != 0)
				continue;
			if (cm_xml_node_set_attr(req, "type", "subscribe") == 0 &&
			    xc_stanza_set_addrs(req, u->bare.s, ct->item.contact) == 0)
				xc_c2s_send(c, req);
			cm_xml_node_free(req);
		}
	}
	xc_offline_deliver(sh, c);
}

void xc_presence_broadcast(struct xc_shard *sh, const struct xc_jid *from, struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	struct xc_user *u = xc_user_find(sh, from);
	const char *p;

	if (!u || (strcmp(type, "available") != 0 && strcmp(type, "unavailable") != 0)) {
		cm_xml_node_free(st); /* a probe or subscription without 'to' means nothing */
		return;
	}
	/* remember the priority (RFC 6121 4.7.2.3: -128..127, 0 when absent) */
	if (strcmp(type, "available") == 0) {
		struct xc_c2s *c = xc_session_find(sh, from);
		struct cm_xml_node *pr = cm_xml_child(st, "priority", NULL);
		long v = 0;

		if (pr && (p = cm_xml_text(pr)) != NULL) {
			v = strtol(p, NULL, 10);
			if (v < -128)
				v = -128;
			if (v > 127)
				v = 127;
		}
		if (c)
			c->priority = (int)v;
	}
	xc_user_with_roster(sh, u, st, do_broadcast, from->s);
}

void xc_presence_gone(struct xc_shard *sh, struct xc_c2s *c)
{
	struct cm_xml_node *st;

	if (!c->available || !c->u)
		return;
	if (cm_xml_node_new(&st, "presence", CM_XML_NS_CLIENT) != 0 ||
	    cm_xml_node_set_attr(st, "type", "unavailable") != 0 ||
	    cm_xml_node_set_attr(st, "from", c->jid.s) != 0) {
		cm_xml_node_free(st);
		c->available = false;
		return;
	}
	/* the session is leaving: its contacts and the other sessions see it go now */
	do_broadcast(sh, c->u, st, c->jid.s);
}

/* --- subscriptions --------------------------------------------------------------------------- */

static int event_of(const char *type, bool outbound, enum xc_sub_event *e)
{
	static const char *const names[] = {"subscribe", "unsubscribe", "subscribed",
	                                    "unsubscribed"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(type, names[i]) == 0) {
			*e = (enum xc_sub_event)(
			    (outbound ? XC_SUB_OUT_SUBSCRIBE : XC_SUB_IN_SUBSCRIBE) + i);
			return 0;
		}
	}
	return -EINVAL;
}

/* Apply a subscription event for contact on u's roster; store and push what changed. Returns
 * the actions. */
static unsigned apply(struct xc_shard *sh, struct xc_user *u, const char *contact,
                      enum xc_sub_event e)
{
	struct xc_contact *ct = xc_roster_find(u, contact);
	struct xc_sub_state st = ct ? ct->item.st : (struct xc_sub_state){0};
	unsigned act = xc_sub_step(&st, e, true);

	if (!(act & XC_SUB_CHANGED))
		return act;
	if (!ct && !(ct = xc_roster_add(u, contact)))
		return act & ~(unsigned)XC_SUB_CHANGED;
	ct->item.st = st;
	xc_roster_store(sh, u, ct, NULL, NULL, NULL);
	if (act & XC_SUB_PUSH)
		xc_roster_push(sh, u, ct, NULL);
	/* nothing left to remember about a contact the user never listed */
	if (!st.listed && st.sub == XC_SUB_NONE && !st.in && !st.out && !st.approved) {
		xc_roster_store(sh, u, NULL, contact, NULL, NULL);
		xc_roster_remove(u, ct);
	}
	return act;
}

static void do_outbound(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                        const char *contact)
{
	enum xc_sub_event e;
	unsigned act;
	struct xc_c2s *c;

	if (u->rstate != XC_ROSTER_READY || event_of(xc_stanza_type(st), true, &e) != 0) {
		xc_bounce(sh, st, "wait", "internal-server-error");
		cm_xml_node_free(st);
		return;
	}
	act = apply(sh, u, contact, e);
	if (act & XC_SUB_SEND_PRESENCE)
		send_current(sh, u, contact);
	if (act & XC_SUB_SEND_UNAVAILABLE)
		xc_user_foreach_session(u, c) if (c->available)
		    route_bare(sh, "unavailable", c->jid.s, contact);
	if (!(act & XC_SUB_FORWARD)) {
		cm_xml_node_free(st);
		return;
	}
	/* subscription stanzas leave from the bare JID, to the contact's bare JID (RFC 6121 3) */
	if (xc_stanza_set_addrs(st, contact, u->bare.s) != 0) {
		cm_xml_node_free(st);
		return;
	}
	xc_route(sh, st);
}

void xc_presence_forget_directed(struct xc_c2s *c)
{
	for (size_t i = 0; i < c->ndirected; i++)
		free(c->directed[i]);
	free(c->directed);
	c->directed = NULL;
	c->ndirected = 0;
}

/* Remember (available) or forget (unavailable) that c sent its presence to to. At most
 * MAX_DIRECTED are remembered: a client cannot make the server hold without end. */
static void track_directed(struct xc_c2s *c, const char *to, bool available, bool unavailable)
{
	struct xc_jid j;
	size_t i;

	if (!to || (!available && !unavailable) || xc_jid_parse(&j, to, strlen(to), NULL, 0) != 0)
		return;
	for (i = 0; i < c->ndirected && strcmp(c->directed[i], j.s) != 0; i++)
		;
	if (unavailable && i < c->ndirected) {
		free(c->directed[i]);
		c->directed[i] = c->directed[--c->ndirected];
	} else if (available && i == c->ndirected && c->ndirected < MAX_DIRECTED) {
		char **nd = realloc(c->directed, (c->ndirected + 1) * sizeof(*nd));

		if (nd) {
			c->directed = nd;
			if ((nd[c->ndirected] = strdup(j.s)) != NULL)
				c->ndirected++;
		}
	}
	xc_jid_free(&j);
}

void xc_presence_outbound(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	enum xc_sub_event e;
	struct xc_jid to;

	if (event_of(type, true, &e) != 0) {
		/* directed presence, probes and errors go on as they are; where available presence
		 * went is remembered, for the unavailable one at the end */
		track_directed(c, cm_xml_attr(st, "to"), strcmp(type, "available") == 0,
		               strcmp(type, "unavailable") == 0);
		/* the avatar's hash goes into directed presence too (XEP-0398 4) */
		if (strcmp(type, "available") == 0 && xc_avatar_mode(sh) != XC_AVATAR_OFF && c->u &&
		    c->u->rstate == XC_ROSTER_READY &&
		    xc_avatar_stamp(st, c->u->avatar, NULL) != 0) {
			cm_xml_node_free(st);
			return;
		}
		xc_route(sh, st);
		return;
	}
	if (xc_stanza_jid(st, "to", &to) != 0 || xc_jid_empty(&to)) {
		xc_jid_free(&to);
		xc_bounce(sh, st, "modify", "jid-malformed");
		cm_xml_node_free(st);
		return;
	}
	{
		struct xc_jid bare;

		if (xc_jid_copy(&bare, &to, true) != 0) {
			xc_jid_free(&to);
			cm_xml_node_free(st);
			return;
		}
		xc_jid_free(&to);
		xc_user_with_roster(sh, c->u, st, do_outbound, bare.s);
		xc_jid_free(&bare);
	}
}

static void do_inbound(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                       const char *contact)
{
	const char *type = xc_stanza_type(st);
	enum xc_sub_event e;
	struct xc_contact *ct;
	struct xc_c2s *c;
	unsigned act;

	if (u->rstate != XC_ROSTER_READY || !u->exists || blocks(u, cm_xml_attr(st, "from"))) {
		/* no such account, unknown now, or blocked: nothing is revealed */
		cm_xml_node_free(st);
		return;
	}
	if (strcmp(type, "probe") == 0) {
		ct = xc_roster_find(u, contact);
		if (ct && sees_user(ct))
			send_current(sh, u, cm_xml_attr(st, "from"));
		cm_xml_node_free(st);
		return;
	}
	if (event_of(type, false, &e) != 0) {
		cm_xml_node_free(st);
		return;
	}
	act = apply(sh, u, contact, e);
	if (act & XC_SUB_REPLY_SUBSCRIBED)
		route_bare(sh, "subscribed", u->bare.s, contact);
	if (act & XC_SUB_SEND_PRESENCE)
		send_current(sh, u, contact);
	if (act & XC_SUB_FORWARD) {
		/* subscription stanzas are for the account: every available session sees them
		 * (a request nobody sees now is kept as pending and shown at the next login) */
		if (cm_xml_node_set_attr(st, "to", u->bare.s) == 0)
			xc_user_foreach_session(u, c) if (c->available) xc_c2s_send(c, st);
	}
	cm_xml_node_free(st);
}

void xc_presence_inbound(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	struct xc_user *u;
	struct xc_jid from, bare;
	struct xc_c2s *c;

	if (strcmp(type, "available") == 0 || strcmp(type, "unavailable") == 0 ||
	    strcmp(type, "error") == 0) {
		/* presence of others, and errors: to the session, or to every available one */
		u = xc_user_find(sh, to);
		if (u && u->rstate == XC_ROSTER_READY && blocks(u, cm_xml_attr(st, "from"))) {
			cm_xml_node_free(st);
			return;
		}
		xc_pep_presence(sh, to, st); /* what the contact wants to hear of */
		if (u && !xc_jid_is_bare(to)) {
			c = xc_session_find(sh, to);
			if (c)
				xc_c2s_send(c, st);
		} else if (u) {
			xc_user_foreach_session(u, c) if (c->available) xc_c2s_send(c, st);
		}
		cm_xml_node_free(st);
		return;
	}
	/* probes and subscriptions are about the account and its roster */
	if (xc_stanza_jid(st, "from", &from) != 0 || xc_jid_empty(&from) ||
	    xc_jid_copy(&bare, &from, true) != 0) {
		xc_jid_free(&from);
		cm_xml_node_free(st);
		return;
	}
	xc_jid_free(&from);
	u = xc_user_get(sh, to);
	if (!u) {
		xc_jid_free(&bare);
		cm_xml_node_free(st);
		return;
	}
	xc_user_with_roster(sh, u, st, do_inbound, bare.s);
	xc_jid_free(&bare);
	xc_user_release(sh, u);
}
