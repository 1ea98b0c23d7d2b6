/* csi.c - client state indication (csi.h): what matters to an inactive client, the queue of
 * what waits, and a connection's <active/> and <inactive/>. */
#include "csi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "server.h"
#include "sm.h"
#include "stanza.h"

#define NS_CARBONS    "urn:xmpp:carbons:2"
#define NS_FORWARD    "urn:xmpp:forward:0"
#define NS_MAM        "urn:xmpp:mam:2"
#define NS_OMEMO      "eu.siacs.conversations.axolotl"
#define NS_OX         "urn:xmpp:openpgp:0" /* XEP-0373 */
#define NS_PGP_LEGACY "jabber:x:encrypted" /* XEP-0027 */
#define NS_EME        "urn:xmpp:eme:0"
#define NS_JMI0       "urn:xmpp:jingle-message:0"
#define NS_JMI1       "urn:xmpp:jingle-message:1"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_MUC_USER   "http://jabber.org/protocol/muc#user"

struct xc_csi {
	struct xc_csi_queue q;
};

/* --- what matters ----------------------------------------------------------------------------- */

/* A message's own content, carbons aside: does it need the user's attention (or the client's
 * at once: a call being set up, an answer it waits for)? */
static bool message_matters(const struct cm_xml_node *m)
{
	const struct cm_xml_node *x;

	if (cm_xml_child(m, "body", CM_XML_NS_CLIENT) ||
	    cm_xml_child(m, "subject", CM_XML_NS_CLIENT))
		return true;
	/* the server cannot see what is encrypted, so it assumes it matters */
	if (cm_xml_child(m, "encrypted", NS_OMEMO) || cm_xml_child(m, "openpgp", NS_OX) ||
	    cm_xml_child(m, "x", NS_PGP_LEGACY) || cm_xml_child(m, "encryption", NS_EME))
		return true;
	/* a call rings now or never */
	if (cm_xml_child(m, NULL, NS_JMI0) || cm_xml_child(m, NULL, NS_JMI1))
		return true;
	if (cm_xml_child(m, "x", NS_CONFERENCE))
		return true;
	x = cm_xml_child(m, "x", NS_MUC_USER);
	if (x && cm_xml_child(x, "invite", NULL))
		return true;
	/* a page of an archive query the client is waiting for */
	if (cm_xml_child(m, "result", NS_MAM))
		return true;
	return false;
}

static enum xc_csi_class classify_message(const struct cm_xml_node *m)
{
	const char *type = cm_xml_attr(m, "type");
	const struct cm_xml_node *dir, *inner;

	/* a carbon copy matters as much as the message it carries */
	dir = cm_xml_child(m, "received", NS_CARBONS);
	if (!dir)
		dir = cm_xml_child(m, "sent", NS_CARBONS);
	if (dir) {
		inner = cm_xml_child(cm_xml_child(dir, "forwarded", NS_FORWARD), "message",
		                     CM_XML_NS_CLIENT);
		return inner && message_matters(inner) ? XC_CSI_URGENT : XC_CSI_HOLD;
	}
	if (type && strcmp(type, "error") == 0)
		return XC_CSI_URGENT; /* something the client sent did not arrive */
	if (type && strcmp(type, "headline") == 0)
		return XC_CSI_HOLD; /* news, PEP notifications: nothing waits for them */
	return message_matters(m) ? XC_CSI_URGENT : XC_CSI_HOLD;
}

enum xc_csi_class xc_csi_classify(const struct cm_xml_node *st)
{
	const char *type;

	switch (xc_stanza_kind(st)) {
	case XC_MESSAGE:
		return classify_message(st);
	case XC_PRESENCE:
		type = cm_xml_attr(st, "type");
		if (!type || strcmp(type, "unavailable") == 0)
			return XC_CSI_PRESENCE;
		if (strcmp(type, "error") == 0)
			return XC_CSI_HOLD;
		/* subscription requests and answers: a person asked something */
		return XC_CSI_URGENT;
	default: /* IQs: someone waits for the answer, or the client for its own */
		return XC_CSI_URGENT;
	}
}

/* --- the queue -------------------------------------------------------------------------------- */

void xc_csi_queue_init(struct xc_csi_queue *q, size_t max)
{
	cm_list_init(&q->items);
	q->n = 0;
	q->max = max ? max : 1;
	q->superseded = 0;
}

static void item_drop(struct xc_csi_queue *q, struct xc_csi_item *it)
{
	cm_list_remove(&it->link);
	cm_xml_node_free(it->st);
	free(it);
	q->n--;
}

void xc_csi_queue_close(struct xc_csi_queue *q)
{
	struct cm_list *p, *next;

	cm_list_foreach_safe(p, next, &q->items)
	{
		item_drop(q, cm_list_entry(p, struct xc_csi_item, link));
	}
}

static bool same_from(const struct cm_xml_node *a, const struct cm_xml_node *b)
{
	const char *fa = cm_xml_attr(a, "from"), *fb = cm_xml_attr(b, "from");

	if (!fa || !fb)
		return fa == fb;
	return strcmp(fa, fb) == 0;
}

int xc_csi_queue_push(struct xc_csi_queue *q, struct cm_xml_node *st, enum xc_csi_class cls)
{
	struct xc_csi_item *it = malloc(sizeof(*it));
	struct cm_list *p;

	if (!it)
		return -ENOMEM;
	it->st = st;
	it->presence = cls == XC_CSI_PRESENCE;
	if (it->presence) {
		/* a walk of at most csi.max_held items: small enough that no index is needed */
		cm_list_foreach(p, &q->items)
		{
			struct xc_csi_item *old = cm_list_entry(p, struct xc_csi_item, link);

			if (old->presence && same_from(old->st, st)) {
				item_drop(q,
				          old); /* at most one: each push removes its predecessor */
				q->superseded++;
				break;
			}
		}
	}
	/* the update takes its own place in time, after what was held before it */
	cm_list_insert_tail(&q->items, &it->link);
	q->n++;
	return q->n >= q->max ? 1 : 0;
}

struct cm_xml_node *xc_csi_queue_pop(struct xc_csi_queue *q)
{
	struct cm_list *l = cm_list_pop(&q->items);
	struct xc_csi_item *it;
	struct cm_xml_node *st;

	if (!l)
		return NULL;
	it = cm_list_entry(l, struct xc_csi_item, link);
	st = it->st;
	free(it);
	q->n--;
	return st;
}

/* --- a connection ----------------------------------------------------------------------------- */

void xc_csi_flush(struct xc_c2s *c)
{
	struct xc_csi *k = c->csi;
	struct cm_xml_node *st;
	uint64_t n = 0;

	if (!k)
		return;
	/* each one is taken out before it is sent: whatever sending sets off finds the queue
	 * consistent */
	while ((st = xc_csi_queue_pop(&k->q)) != NULL) {
		xc_c2s__deliver(c, st);
		cm_xml_node_free(st);
		n++;
	}
	cm_metrics_add(c->sh->srv->m.csi_flushed, n);
}

static void count_superseded(struct xc_c2s *c)
{
	struct xc_csi_queue *q = &c->csi->q;

	if (q->superseded) {
		cm_metrics_add(c->sh->srv->m.csi_superseded, q->superseded);
		q->superseded = 0;
	}
}

int xc_csi_send(struct xc_c2s *c, const struct cm_xml_node *stanza)
{
	enum xc_csi_class cls = xc_csi_classify(stanza);
	struct cm_xml_node *copy = NULL;
	int r;

	if (cls != XC_CSI_URGENT) {
		r = cm_xml_node_copy(&copy, stanza);
		if (!r && (r = xc_csi_queue_push(&c->csi->q, copy, cls)) < 0)
			cm_xml_node_free(copy);
		if (r >= 0) {
			count_superseded(c);
			if (r > 0) /* the bound: all of it goes */
				xc_csi_flush(c);
			return 0;
		}
		/* no memory to hold it: sending it now loses nothing */
	}
	xc_csi_flush(c);
	return xc_c2s__deliver(c, stanza);
}

void xc_csi_drain(struct xc_c2s *c)
{
	struct xc_csi *k = c->csi;
	struct cm_xml_node *st;

	if (!k)
		return;
	c->csi = NULL;
	if (k->q.n)
		CM_LOGD("csi", "%s: %zu held stanzas %s", c->jid.s ? c->jid.s : xc_c2s_peer(c),
		        k->q.n, c->sm ? "go to the stream management queue" : "are dropped");
	while ((st = xc_csi_queue_pop(&k->q)) != NULL) {
		if (c->sm)
			xc_sm_keep(c, st); /* takes st */
		else
			cm_xml_node_free(st);
	}
	free(k);
}

int xc_csi_element(struct xc_c2s *c, const struct cm_xml_node *el)
{
	struct xc_csi *k;

	if (strcmp(el->name, "inactive") == 0) {
		if (c->csi)
			return 0;
		k = malloc(sizeof(*k));
		if (!k) {
			/* the client is told nothing either way: it stays active, which costs only
			 * battery */
			CM_LOGW("csi", "%s: stays active (no memory)", xc_c2s_peer(c));
			return 0;
		}
		xc_csi_queue_init(&k->q, (size_t)c->sh->srv->cfg->csi.max_held);
		c->csi = k;
		return 0;
	}
	if (strcmp(el->name, "active") == 0) {
		k = c->csi;
		if (!k)
			return 0;
		xc_csi_flush(c);
		/* flushing may have drained it (the connection went), never replaced it */
		if (c->csi == k) {
			c->csi = NULL;
			xc_csi_queue_close(&k->q);
			free(k);
		}
		return 0;
	}
	xc_c2s_stream_error(c, "unsupported-stanza-type", el->name);
	return -EPROTO;
}
