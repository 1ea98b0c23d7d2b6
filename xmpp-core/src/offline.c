/* offline.c - offline messages (offline.h). */
#include "offline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c2s.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "push.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "ticket.h"
#include "user.h"

#define NS_DELAY "urn:xmpp:delay"

/* Worth keeping: a body, or anything but chat states and receipts alone (XEP-0160 2). A message
 * of type error or headline never is. */
static bool worth_storing(const struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);

	if (strcmp(type, "normal") != 0 && strcmp(type, "chat") != 0)
		return false;
	for (const struct cm_xml_node *n = st->children; n; n = n->next) {
		if (n->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(n->ns, "http://jabber.org/protocol/chatstates") == 0)
			continue;
		if (strcmp(n->name, "no-store") == 0 || strcmp(n->name, "no-permanent-store") == 0)
			return false;
		return true;
	}
	return false;
}

struct put_ctx {
	struct xc_shard *sh;
	struct cm_xml_node *st; /* owned: bounced when it cannot be stored */
};

static void on_put(struct xc_store_req *r)
{
	struct put_ctx *pc = r->arg;
	struct xc_shard *sh = pc->sh;

	if (r->err == 0) {
		cm_metrics_inc(sh->srv->m.offline_stored);
		xc_push_offline_stored(sh, r->user, pc->st);
	} else {
		cm_metrics_inc(sh->srv->m.offline_refused);
		if (r->err == -EDQUOT)
			xc_bounce(sh, pc->st, "wait", "resource-constraint");
		else if (r->err == -ENOENT)
			xc_bounce(sh, pc->st, "cancel", "service-unavailable");
		else {
			CM_LOGW("offline", "cannot store a message for %s: %s", r->user,
			        strerror(-r->err));
			xc_bounce(sh, pc->st, "wait", "internal-server-error");
		}
	}
	cm_xml_node_free(pc->st);
	free(pc);
	xc_store_req_free(r);
	sh->storing--;
	xc_shard_conn_gone(sh);
}

void xc_offline_store(struct xc_shard *sh, struct cm_xml_node *st)
{
	struct xc_store_req *r;
	struct put_ctx *pc;
	struct xc_jid to;
	struct cm_buf b;
	int rc;

	if (!worth_storing(st)) {
		/* RFC 6121 8.5.2.1.1: service-unavailable, or silence; XEP-0160 silence for these
		 */
		if (strcmp(xc_stanza_type(st), "normal") == 0 ||
		    strcmp(xc_stanza_type(st), "chat") == 0)
			xc_bounce(sh, st, "cancel", "service-unavailable");
		cm_xml_node_free(st);
		return;
	}
	if (xc_stanza_jid(st, "to", &to) != 0 || xc_jid_empty(&to)) {
		xc_jid_free(&to);
		cm_xml_node_free(st);
		return;
	}
	cm_buf_init(&b, 0);
	pc = calloc(1, sizeof(*pc));
	r = pc ? xc_store_req_new(XC_STORE_OFFLINE_PUT, sh->loop, on_put, pc) : NULL;
	rc = r ? 0 : -ENOMEM;
	if (!rc) {
		pc->sh = sh;
		pc->st = st;
		r->user = malloc(xc_jid_bare_len(&to) + 1);
		rc = r->user ? 0 : -ENOMEM;
	}
	if (!rc) {
		memcpy(r->user, to.s, xc_jid_bare_len(&to));
		r->user[xc_jid_bare_len(&to)] = '\0';
		rc = cm_xml_write(&b, st, sh->srv->scope);
	}
	if (!rc) {
		r->stanza = cm_buf_steal(&b);
		r->stamp_ms = xc_wall_ms();
		r->limit = (unsigned)sh->srv->cfg->offline.max_per_user;
		r->ticket = xc_ticket_hold(sh);
		rc = xc_store_submit(sh->srv->store, r);
	}
	if (!rc)
		sh->storing++;
	xc_jid_free(&to);
	cm_buf_free(&b);
	if (rc) {
		xc_store_req_free(r);
		free(pc);
		xc_bounce(sh, st, "wait", "internal-server-error");
		cm_xml_node_free(st);
	}
}

/* --- delivery ----------------------------------------------------------------------------------
 */

/* Whether st carries a <delay/> this server added. */
static bool our_delay(struct xc_shard *sh, const struct cm_xml_node *st)
{
	const struct xc_config *cfg = sh->srv->cfg;

	for (const struct cm_xml_node *d = cm_xml_child(st, "delay", NS_DELAY); d;
	     d = cm_xml_child_next(d, "delay", NS_DELAY)) {
		const char *from = cm_xml_attr(d, "from");

		if (from && cm_cfg_strlist_has(&cfg->hosts, from))
			return true;
	}
	return false;
}

/* A stored message as it is sent: parsed again, with <delay/> saying when it arrived (unless
 * it has ours already). */
static struct cm_xml_node *revive(struct xc_shard *sh, const struct xc_offline_msg *m)
{
	struct cm_xml_node *st, *d;
	char stamp[40];
	time_t t = (time_t)(m->stamp_ms / 1000);
	struct tm tm;
	size_t n;
	int r;

	r = xc_stanza_parse(m->stanza, strlen(m->stanza), &st);
	if (r)
		return NULL;
	/* stored once before (delivered, not acknowledged, stored again): its first <delay/>
	 * already says when it arrived */
	if (our_delay(sh, st))
		return st;
	gmtime_r(&t, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", (int)(m->stamp_ms % 1000));
	if (cm_xml_node_new_child(&d, st, "delay", NS_DELAY) != 0 ||
	    cm_xml_node_set_attr(d, "stamp", stamp) != 0 ||
	    cm_xml_node_set_attr(d, "from", sh->srv->cfg->hosts.v[0]) != 0 ||
	    cm_xml_node_add_text(d, "Offline Storage", 15) != 0) {
		cm_xml_node_free(st);
		return NULL;
	}
	return st;
}

static void on_take(struct xc_store_req *r)
{
	struct xc_shard *sh = r->arg;
	struct xc_jid j = {0};
	struct xc_user *u = NULL;
	struct xc_c2s *c, *best = NULL;

	if (xc_jid_parse(&j, r->user, strlen(r->user), NULL, 0) == 0)
		u = xc_user_find(sh, &j);
	xc_jid_free(&j);
	if (r->err) {
		CM_LOGW("offline", "cannot read the messages kept for %s: %s", r->user,
		        strerror(-r->err));
		xc_store_req_free(r);
		if (u)
			u->busy--;
		xc_user_put(sh, u);
		return;
	}
	/* the messages were taken out of the store: whoever is there now gets them, and if
	 * nobody is, they go back in */
	if (r->nmsgs)
		cm_metrics_observe(sh->srv->m.offline_queue, (double)r->nmsgs);
	for (size_t i = 0; i < r->nmsgs; i++) {
		struct cm_xml_node *st = revive(sh, &r->msgs[i]);

		if (!st)
			continue;
		best = NULL;
		if (u)
			xc_user_foreach_session(u, c) if (c->available &&
			                                  (!best || c->priority > best->priority))
			    best = c;
		if (best) {
			xc_c2s_send(best, st);
			cm_metrics_inc(sh->srv->m.offline_delivered);
			cm_xml_node_free(st);
		} else {
			xc_offline_store(sh, st);
		}
	}
	xc_store_req_free(r);
	/* (storing again may get and release u: the take held it until here) */
	if (u)
		u->busy--;
	xc_user_put(sh, u);
}

void xc_offline_deliver(struct xc_shard *sh, struct xc_c2s *c)
{
	struct xc_store_req *r = xc_store_req_new(XC_STORE_OFFLINE_TAKE, sh->loop, on_take, sh);

	xc_push_back(sh, c->u->bare.s);
	if (!r || xc_store_req_set(&r->user, c->u->bare.s) != 0 ||
	    xc_store_submit(sh->srv->store, r) != 0) {
		xc_store_req_free(r);
		return;
	}
	c->u->busy++;
}
