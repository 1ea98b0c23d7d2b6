/* session.c - binding, the sessions of a user, what a session sends (session.h). */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blocking.h"
#include "c2s.h"
#include "carbons.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "iq.h"
#include "mam.h"
#include "presence.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "user.h"

#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

struct xc_c2s *xc_session_find(struct xc_shard *sh, const struct xc_jid *jid)
{
	struct xc_user *u = xc_user_find(sh, jid);
	struct xc_c2s *c;

	if (!u || xc_jid_is_bare(jid))
		return NULL;
	xc_user_foreach_session(u, c) if (xc_jid_equal(&c->jid, jid)) return c;
	return NULL;
}

void xc_session_push(struct xc_user *u, struct cm_xml_node *iq,
                     bool (*want)(const struct xc_c2s *c))
{
	struct xc_c2s *c;
	char id[17];

	xc_user_foreach_session(u, c)
	{
		if (!want(c))
			continue;
		xc_new_id(c->sh->srv, id);
		if (cm_xml_node_set_attr(iq, "id", id) == 0 &&
		    cm_xml_node_set_attr(iq, "to", c->jid.s) == 0)
			xc_c2s_send(c, iq);
	}
}

unsigned xc_session_kick(struct xc_shard *sh, const struct xc_jid *jid, const char *condition,
                         const char *text)
{
	struct xc_user *u = xc_user_find(sh, jid);
	unsigned n = 0;
	struct cm_list *p, *next;

	if (!u)
		return 0;
	/* ending a stream unbinds it, which may free u: walk with care and stop when it is gone */
	cm_list_foreach_safe(p, next, &u->sessions)
	{
		struct xc_c2s *c = cm_list_entry(p, struct xc_c2s, user_link);
		bool last = next == &u->sessions;

		if (!xc_jid_is_bare(jid) && !xc_jid_equal(&c->jid, jid))
			continue;
		xc_c2s_stream_error(c, condition, text);
		xc_session_unbind(c);
		n++;
		if (last)
			break;
	}
	return n;
}

static struct xc_c2s *by_resource(struct xc_user *u, const char *res)
{
	struct xc_c2s *c;

	xc_user_foreach_session(u, c)
	{
		const char *r = xc_jid_resource(&c->jid);

		if (r && strcmp(r, res) == 0)
			return c;
	}
	return NULL;
}

static void bind_error(struct xc_c2s *c, const struct cm_xml_node *iq, const char *etype,
                       const char *cond)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, NULL, c->host);

	if (e) {
		cm_xml_node_remove_attr(e, "from");
		xc_c2s_send(c, e);
		cm_xml_node_free(e);
	}
}

static void roster_ready(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                         const char *arg)
{
	(void)sh;
	(void)u;
	(void)arg;
	cm_xml_node_free(st);
}

/* Bind c to resource res (Resourceprep'd, owned; NULL: a generated one). A session holding it
 * already is settled by c2s.resource_conflict, or replaced when kick is true. 0, or a negative
 * errno with *etype and *cond the error to answer (-EEXIST: refused as a conflict). */
static int bind_resource(struct xc_c2s *c, char *res, bool kick, const char **etype,
                         const char **cond)
{
	struct xc_shard *sh = c->sh;
	struct xc_c2s *old;
	struct xc_user *u;
	char gen[17];
	int r;

	*etype = "modify";
	*cond = "bad-request";
	if (xc_jid_make(&c->jid, c->user, c->host, res ? res : "x", NULL, 0) != 0) {
		free(res);
		return -EINVAL;
	}
	u = xc_user_get(sh, &c->jid);
	if (!u) {
		free(res);
		xc_jid_free(&c->jid);
		*etype = "wait";
		*cond = "resource-constraint";
		return -ENOMEM;
	}
	/* RFC 6120 7.7.2.2: a resource in use */
	old = res ? by_resource(u, res) : NULL;
	if (old) {
		switch (kick ? XC_CONFLICT_KICK_OLD : sh->srv->cfg->c2s.resource_conflict) {
		case XC_CONFLICT_REFUSE:
			free(res);
			xc_jid_free(&c->jid);
			xc_user_release(sh, u);
			*etype = "cancel";
			*cond = "conflict";
			return -EEXIST;
		case XC_CONFLICT_KICK_OLD:
			/* the old session may be the user's last: keep u while it goes */
			u->busy++;
			xc_c2s_stream_error(old, "conflict", "replaced by a new session");
			xc_session_unbind(old);
			u->busy--;
			break;
		default: /* rename */
			free(res);
			res = NULL;
			break;
		}
	}
	if (!res) {
		xc_new_id(sh->srv, gen);
		xc_jid_free(&c->jid);
		if (xc_jid_make(&c->jid, c->user, c->host, gen, NULL, 0) != 0) {
			xc_user_release(sh, u);
			*etype = "wait";
			*cond = "resource-constraint";
			return -ENOMEM;
		}
	} else if (strcmp(xc_jid_resource(&c->jid), res) != 0) {
		xc_jid_free(&c->jid);
		r = xc_jid_make(&c->jid, c->user, c->host, res, NULL, 0);
		if (r) {
			free(res);
			xc_user_release(sh, u);
			return r;
		}
	}
	free(res);
	c->u = u;
	c->st = XC_C2S_BOUND;
	c->since = (int64_t)time(NULL);
	cm_list_insert_tail(&u->sessions, &c->user_link);
	xc_user_release(sh, u); /* the session holds it now */
	cm_metrics_gauge_add(sh->srv->m.sessions, 1);
	xc_c2s_idle_timer(c);
	/* the roster and block list are needed for anything delivered to the session: read now */
	xc_user_with_roster(sh, u, NULL, roster_ready, NULL);
	CM_LOGD("c2s", "%s: session of %s", xc_c2s_peer(c), c->jid.s);
	return 0;
}

int xc_session_bind_resource(struct xc_c2s *c, const char *res)
{
	const char *etype, *cond;
	char *own = res ? strdup(res) : NULL;

	if (res && !own)
		return -ENOMEM;
	return bind_resource(c, own, true, &etype, &cond);
}

void xc_session_bind(struct xc_c2s *c, const struct cm_xml_node *iq)
{
	const struct cm_xml_node *b = cm_xml_child(iq, "bind", NS_BIND);
	const struct cm_xml_node *rn = cm_xml_child(b, "resource", NULL);
	const char *asked = rn ? cm_xml_text(rn) : NULL;
	const char *etype, *cond;
	struct cm_xml_node *result = NULL, *bn, *jn;
	char *res = NULL;
	int r;

	if (!cm_xml_attr(iq, "id")) {
		bind_error(c, iq, "modify", "bad-request");
		return;
	}
	if (asked && *asked) {
		if (xc_jid_resourceprep(asked, strlen(asked), &res, NULL, 0) != 0) {
			bind_error(c, iq, "modify", "bad-request");
			return;
		}
	}
	r = cm_xml_node_new(&result, "iq", CM_XML_NS_CLIENT);
	r = r ? r : cm_xml_node_set_attr(result, "type", "result");
	r = r ? r : cm_xml_node_set_attr(result, "id", cm_xml_attr(iq, "id"));
	r = r ? r : cm_xml_node_new_child(&bn, result, "bind", NS_BIND);
	r = r ? r : cm_xml_node_new_child(&jn, bn, "jid", NULL);
	if (r) {
		free(res);
		cm_xml_node_free(result);
		bind_error(c, iq, "wait", "resource-constraint");
		return;
	}
	if (bind_resource(c, res, false, &etype, &cond) != 0) {
		cm_xml_node_free(result);
		bind_error(c, iq, etype, cond);
		return;
	}
	if (cm_xml_node_add_text(jn, c->jid.s, strlen(c->jid.s)) == 0)
		xc_c2s_send(c, result);
	else
		xc_c2s_stream_error(c, "internal-server-error", NULL);
	cm_xml_node_free(result);
}

void xc_session_unbind(struct xc_c2s *c)
{
	struct xc_shard *sh = c->sh;
	struct xc_user *u = c->u;

	if (!u)
		return;
	xc_presence_gone(sh, c);
	cm_list_remove(&c->user_link);
	c->u = NULL;
	cm_metrics_gauge_add(sh->srv->m.sessions, -1);
	xc_user_put(sh, u);
}

void xc_session_move(struct xc_c2s *dst, struct xc_c2s *src)
{
	dst->jid = src->jid;
	src->jid = (struct xc_jid){0};
	dst->u = src->u;
	src->u = NULL;
	cm_list_insert_after(&src->user_link, &dst->user_link);
	cm_list_remove(&src->user_link);
	cm_list_init(&src->user_link);
	dst->since = src->since;
	dst->priority = src->priority;
	dst->available = src->available;
	dst->interested = src->interested;
	dst->blocklist_interested = src->blocklist_interested;
	dst->carbons = src->carbons;
	dst->presence = src->presence;
	src->presence = NULL;
	dst->directed = src->directed;
	dst->ndirected = src->ndirected;
	src->directed = NULL;
	src->ndirected = 0;
	dst->st = XC_C2S_BOUND;
}

static bool outbound_blocked(struct xc_c2s *c, const struct cm_xml_node *st)
{
	struct xc_jid to;
	bool blocked;

	if (xc_stanza_jid(st, "to", &to) != 0)
		return false; /* the router answers a bad 'to' */
	blocked = xc_blocking_blocks(c->u, &to);
	xc_jid_free(&to);
	return blocked;
}

void xc_session_from_client(struct xc_c2s *c, struct cm_xml_node *st)
{
	struct xc_shard *sh = c->sh;
	enum xc_kind kind = xc_stanza_kind(st);
	const char *type = cm_xml_attr(st, "type");

	if (kind == XC_IQ) {
		/* RFC 6120 8.2.3: an id; get and set carry exactly one child */
		if (!cm_xml_attr(st, "id") || !type ||
		    (strcmp(type, "get") && strcmp(type, "set") && strcmp(type, "result") &&
		     strcmp(type, "error"))) {
			xc_bounce(sh, st, "modify", "bad-request");
			cm_xml_node_free(st);
			return;
		}
		/* the legacy session, for clients that still ask */
		if (!cm_xml_attr(st, "to") && strcmp(type, "set") == 0 &&
		    cm_xml_child(st, "session", NS_SESSION)) {
			struct cm_xml_node *res = xc_iq_result(st, NULL);

			if (res) {
				xc_c2s_send(c, res);
				cm_xml_node_free(res);
			}
			cm_xml_node_free(st);
			return;
		}
	}
	/* XEP-0191: nothing goes to an entity the user blocks */
	if (cm_xml_attr(st, "to") && c->u && c->u->nblocked && outbound_blocked(c, st)) {
		xc_blocking_refuse_outbound(sh, c, st);
		return;
	}
	if (kind == XC_PRESENCE && cm_xml_attr(st, "to")) {
		xc_presence_outbound(sh, c, st);
		return;
	}
	if (kind == XC_MESSAGE && c->u) {
		xc_mam_outbound(c, st); /* the sender's archive */
		xc_carbons_sent(c, st);
	}
	xc_route(sh, st);
}
