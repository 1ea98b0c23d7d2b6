/* router.c - routing stanzas between sessions, shards, components and the server (router.h). */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blocking.h"
#include "c2s.h"
#include "carbons.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "component.h"
#include "iq.h"
#include "mam.h"
#include "offline.h"
#include "presence.h"
#include "push.h"
#include "rules.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "ticket.h"
#include "user.h"
#include "upload.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void xc_reply(struct xc_shard *sh, const struct cm_xml_node *iq, struct cm_xml_node *child)
{
	struct cm_xml_node *res = xc_iq_result(iq, child);

	if (res)
		xc_route(sh, res);
}

void xc_bounce(struct xc_shard *sh, const struct cm_xml_node *st, const char *etype,
               const char *condition)
{
	struct cm_xml_node *e;
	const char *to = cm_xml_attr(st, "to");
	const char *fallback = sh->srv->cfg->hosts.v[0];
	struct xc_jid j;

	/* an error from the domain part when the stanza's 'to' cannot be used */
	if (to && xc_jid_parse(&j, to, strlen(to), NULL, 0) != 0) {
		e = xc_stanza_error(st, etype, condition, NULL, fallback);
		if (e)
			cm_xml_node_set_attr(e, "from", fallback);
	} else {
		if (to)
			xc_jid_free(&j);
		e = xc_stanza_error(st, etype, condition, NULL, fallback);
	}
	if (e)
		xc_route(sh, e);
}

/* --- delivery on the home shard ------------------------------------------------------------------
 */

static void send_to(struct xc_shard *sh, struct xc_c2s *c, const struct cm_xml_node *st)
{
	enum xc_kind kind = xc_stanza_kind(st);

	xc_c2s_send(c, st);
	cm_metrics_inc(kind == XC_MESSAGE    ? sh->srv->m.out_message
	               : kind == XC_PRESENCE ? sh->srv->m.out_presence
	                                     : sh->srv->m.out_iq);
}

#define SESSIONS_MAX 64 /* sessions of one user the rules look at (more are very rare) */

static void deliver_message_bare(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st)
{
	struct xc_rule_session rs[SESSIONS_MAX];
	struct xc_c2s *cs[SESSIONS_MAX], *c;
	bool chosen[SESSIONS_MAX];
	size_t n = 0;

	xc_user_foreach_session(u, c) if (n < SESSIONS_MAX)
	{
		rs[n] =
		    (struct xc_rule_session){.available = c->available, .priority = c->priority};
		cs[n++] = c;
	}
	switch (xc_rule_message_bare(xc_stanza_type(st), rs, n, chosen)) {
	case XC_RULE_DELIVER: {
		struct xc_c2s *got[SESSIONS_MAX];
		size_t ngot = 0;

		for (size_t i = 0; i < n; i++)
			if (chosen[i]) {
				send_to(sh, cs[i], st);
				got[ngot++] = cs[i];
			}
		xc_carbons_received(u, st, got, ngot);
		break;
	}
	case XC_RULE_OFFLINE:
		xc_offline_store(sh, st); /* takes st */
		return;
	case XC_RULE_BOUNCE:
		xc_bounce(sh, st, "cancel", "service-unavailable");
		break;
	default:
		break;
	}
	cm_xml_node_free(st);
}

/* Deliver st to u (its roster and block list in memory, or their load failed). */
static void deliver_loaded(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                           const struct xc_jid *to)
{
	enum xc_kind kind = xc_stanza_kind(st);
	const char *type = xc_stanza_type(st);
	struct xc_c2s *c = NULL;
	struct xc_jid from;

	if (u->rstate == XC_ROSTER_READY) {
		if (!u->exists) {
			/* no such account (RFC 6121 8.5.1) */
			if (kind == XC_MESSAGE ||
			    (kind == XC_IQ && type && strcmp(type, "get") == 0) ||
			    (kind == XC_IQ && type && strcmp(type, "set") == 0))
				xc_bounce(sh, st, "cancel", "service-unavailable");
			cm_xml_node_free(st);
			return;
		}
		if (u->nblocked && xc_stanza_jid(st, "from", &from) == 0) {
			bool blocked = xc_blocking_blocks(u, &from);

			xc_jid_free(&from);
			if (blocked) {
				xc_blocking_refuse_inbound(sh, st);
				return;
			}
		}
	}
	/* archived (and given its stanza-id) once it is known to be the user's */
	if (kind == XC_MESSAGE && u->rstate == XC_ROSTER_READY) {
		xc_mam_inbound(sh, u, st);
		xc_push_inbound(sh, u->bare.s, st); /* a call wakes the phone whatever follows */
	}
	if (!xc_jid_is_bare(to)) {
		c = xc_session_find(sh, to);
		switch (xc_rule_full(kind, type, c != NULL)) {
		case XC_RULE_DELIVER:
			send_to(sh, c, st);
			if (kind == XC_MESSAGE)
				xc_carbons_received(u, st, &c, 1);
			break;
		case XC_RULE_AS_BARE:
			deliver_message_bare(sh, u, st); /* takes st */
			return;
		case XC_RULE_BOUNCE:
			xc_bounce(sh, st, "cancel", "service-unavailable");
			break;
		default:
			break;
		}
		cm_xml_node_free(st);
		return;
	}
	switch (kind) {
	case XC_MESSAGE:
		deliver_message_bare(sh, u, st);
		break;
	case XC_IQ:
		xc_iq_account(sh, to, st); /* the server answers for the account */
		break;
	default:
		cm_xml_node_free(st);
	}
}

/* After the load: the recipient's JID comes back as text. */
static void deliver_later(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                          const char *to)
{
	struct xc_jid j;

	if (xc_jid_parse(&j, to, strlen(to), NULL, 0) != 0) {
		cm_xml_node_free(st);
		return;
	}
	deliver_loaded(sh, u, st, &j);
	xc_jid_free(&j);
}

void xc_deliver(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to)
{
	struct xc_user *u;

	if (xc_stanza_kind(st) == XC_PRESENCE) {
		xc_presence_inbound(sh, to, st); /* bare or full: the presence module's rules */
		return;
	}
	/* who the user is and whom it blocks must be known first: at once for users with
	 * sessions, after a store read for the others */
	u = xc_user_get(sh, to);
	if (!u) {
		xc_bounce(sh, st, "wait", "resource-constraint");
		cm_xml_node_free(st);
		return;
	}
	if (u->rstate == XC_ROSTER_READY && cm_list_empty(&u->waiting))
		deliver_loaded(sh, u, st, to);
	else
		xc_user_with_roster(sh, u, st, deliver_later, to->s);
	xc_user_release(sh, u);
}

/* --- between shards ----------------------------------------------------------------------------
 */

static void on_route_msg(struct cm_loop *l, struct cm_msg *m)
{
	struct xc_route_msg *rm = cm_list_entry(m, struct xc_route_msg, m);
	struct xc_shard *sh = l->data;
	struct cm_xml_node *st = NULL;
	struct xc_ticket_scope sc;
	struct xc_jid to = {0};

	if (sh)
		cm_metrics_observe(sh->srv->m.route_latency,
		                   (double)(mono_ns() - rm->read_ns) / 1e9);
	xc_ticket_enter(sh, &sc, rm->ticket);
	if (cm_loop_stopping(l)) {
		/* dropped with the loop */
	} else if (cm_xml_node_copy(&st, rm->stanza) != 0 ||
	           xc_jid_copy(&to, &rm->to, false) != 0) {
		/* (the copies are this shard's own: the block is the one thing freed here that
		 * another shard allocated) */
		CM_LOGW("router", "out of memory copying a stanza from another shard: bounced");
		xc_bounce(sh, rm->stanza, "wait", "resource-constraint");
		cm_xml_node_free(st);
	} else if (!xc_jid_empty(&to) && xc_local_host(sh->srv, xc_jid_domain(&to), to.dlen)) {
		xc_deliver(sh, st, &to);
	} else {
		xc_component_deliver(sh, st, &to);
	}
	free(rm);
	xc_jid_free(&to);
	xc_ticket_leave(sh, &sc);
}

/* Hand st, addressed to *to (parsed from its 'to' already), to shard target, packed with the
 * JID into one allocation (struct xc_route_msg). Takes st; *to stays the caller's. */
static void post(struct xc_shard *sh, unsigned target, struct cm_xml_node *st,
                 const struct xc_jid *to)
{
	size_t head = (sizeof(struct xc_route_msg) + _Alignof(max_align_t) - 1) &
	              ~(size_t)(_Alignof(max_align_t) - 1);
	size_t pack = cm_xml_pack_size(st), jlen = to->s ? xc_jid_len(to) + 1 : 0;
	struct xc_route_msg *rm = malloc(head + pack + jlen);

	if (!rm) {
		xc_bounce(sh, st, "wait", "resource-constraint");
		cm_xml_node_free(st);
		return;
	}
	rm->stanza = cm_xml_pack(st, (char *)rm + head, pack);
	if (!rm->stanza) { /* cannot happen: pack is the size cm_xml_pack() takes */
		xc_bounce(sh, st, "cancel", "internal-server-error");
		cm_xml_node_free(st);
		free(rm);
		return;
	}
	rm->to = *to;
	if (jlen) {
		rm->to.s = (char *)rm + head + pack;
		memcpy(rm->to.s, to->s, jlen);
	}
	cm_xml_node_free(st); /* freed here, where it was allocated */
	rm->read_ns = mono_ns();
	rm->ticket = xc_ticket_hold(sh);
	rm->m.fn = on_route_msg;
	if (cm_loop_post(sh->srv->shards[target]->loop, &rm->m) != 0) {
		xc_ticket_put(sh, rm->ticket);
		free(rm); /* the server is stopping */
	}
}

void xc_route(struct xc_shard *sh, struct cm_xml_node *st)
{
	struct xc_server *srv = sh->srv;
	struct xc_jid to, from;
	const char *host;
	unsigned home;

	if (xc_stanza_jid(st, "to", &to) != 0) {
		xc_bounce(sh, st, "modify", "jid-malformed");
		cm_xml_node_free(st);
		return;
	}
	if (xc_jid_empty(&to)) {
		/* RFC 6120 10.3: no 'to' means the sender's own account */
		if (xc_stanza_jid(st, "from", &from) != 0 || xc_jid_empty(&from)) {
			xc_jid_free(&from);
			cm_xml_node_free(st);
			return;
		}
		if (xc_stanza_kind(st) == XC_PRESENCE) {
			xc_presence_broadcast(sh, &from, st); /* takes st */
			xc_jid_free(&from);
			return;
		}
		if (xc_jid_copy(&to, &from, true) != 0) {
			xc_jid_free(&from);
			cm_xml_node_free(st);
			return;
		}
		xc_jid_free(&from);
	}
	host = xc_local_host(srv, xc_jid_domain(&to), to.dlen);
	if (host && !to.llen) {
		/* the server itself */
		if (to.rlen == 0 && xc_stanza_kind(st) == XC_IQ)
			xc_iq_server(sh, &to, st); /* takes st */
		else if (xc_stanza_kind(st) == XC_IQ) {
			xc_bounce(sh, st, "cancel", "service-unavailable");
			cm_xml_node_free(st);
		} else
			cm_xml_node_free(st);
		xc_jid_free(&to);
		return;
	}
	if (host) {
		home = xc_home(srv, to.s, xc_jid_bare_len(&to));
		if (home == sh->idx)
			xc_deliver(sh, st, &to);
		else
			post(sh, home, st, &to);
		xc_jid_free(&to);
		return;
	}
	if (xc_component_known(srv, xc_jid_domain(&to), to.dlen)) {
		if (sh->idx == 0)
			xc_component_deliver(sh, st, &to);
		else
			post(sh, 0, st, &to);
		xc_jid_free(&to);
		return;
	}
	if (xc_upload_domain(srv, xc_jid_domain(&to), to.dlen)) {
		xc_upload_stanza(sh, st, &to); /* takes st; on this shard: nothing to share */
		xc_jid_free(&to);
		return;
	}
	/* no server-to-server links yet */
	xc_bounce(sh, st, "cancel", "remote-server-not-found");
	cm_xml_node_free(st);
	xc_jid_free(&to);
}
