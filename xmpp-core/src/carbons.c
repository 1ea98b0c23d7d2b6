/* carbons.c - message carbons (carbons.h). */
#include "carbons.h"

#include <string.h>

#include "c2s.h"
#include "cm/log.h"
#include "stanza.h"
#include "user.h"

#define NS_HINTS   "urn:xmpp:hints"
#define NS_FORWARD "urn:xmpp:forward:0"

/* Payloads of one-to-one instant messaging that every device of a user wants to see even
 * without a body (XEP-0280 6: receipts, chat states, markers, and their kin). */
static const char *const im_payloads[] = {
    "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:jingle-message:0",
    "eu.siacs.conversations.axolotl", /* OMEMO as deployed */
    "urn:xmpp:omemo:2",
    "urn:xmpp:openpgp:0",
    "jabber:x:encrypted",
    "urn:xmpp:reactions:0",
    "urn:xmpp:message-retract:1",
    "urn:xmpp:message-correct:0",
};

static bool im_payload(const char *ns)
{
	for (size_t i = 0; i < sizeof(im_payloads) / sizeof(im_payloads[0]); i++)
		if (strcmp(ns, im_payloads[i]) == 0)
			return true;
	return false;
}

bool xc_carbons_eligible(const struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	bool chat = strcmp(type, "chat") == 0, body = false, payload = false;

	if (!chat && strcmp(type, "normal") != 0)
		return false; /* groupchat, headline; errors too (which message they answer is
		               * not known here) */
	for (const struct cm_xml_node *n = st->children; n; n = n->next) {
		if (n->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(n->ns, XC_NS_CARBONS) == 0)
			return false; /* <private/>, or a copy already (<sent/>, <received/>) */
		if (strcmp(n->ns, NS_HINTS) == 0 && strcmp(n->name, "no-copy") == 0)
			return false;
		if (strcmp(n->name, "body") == 0 && strcmp(n->ns, CM_XML_NS_CLIENT) == 0)
			body = true;
		else if (im_payload(n->ns))
			payload = true;
	}
	return chat || body || payload;
}

void xc_carbons_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq)
{
	const char *type = cm_xml_attr(iq, "type");
	const struct cm_xml_node *q = cm_xml_child(iq, NULL, XC_NS_CARBONS);
	struct cm_xml_node *res;

	(void)sh;
	if (!type || strcmp(type, "set") != 0 || !q ||
	    (strcmp(q->name, "enable") != 0 && strcmp(q->name, "disable") != 0)) {
		res = xc_stanza_error(iq, "modify", "bad-request", NULL, own->host);
	} else {
		own->carbons = strcmp(q->name, "enable") == 0;
		res = xc_iq_result(iq, NULL);
	}
	if (res) {
		xc_c2s_send(own, res);
		cm_xml_node_free(res);
	}
	cm_xml_node_free(iq);
}

/* <message from=bare type=...><dir xmlns=carbons><forwarded><message/>(st)</forwarded></dir>
 * </message>, its 'to' set per recipient. NULL without memory. */
static struct cm_xml_node *wrap(const char *bare, const char *dir, const struct cm_xml_node *st)
{
	struct cm_xml_node *m = NULL, *d, *f, *copy = NULL;
	const char *type = cm_xml_attr(st, "type");
	int r = cm_xml_node_new(&m, "message", CM_XML_NS_CLIENT);

	r = r ? r : cm_xml_node_set_attr(m, "from", bare);
	r = r ? r : (type ? cm_xml_node_set_attr(m, "type", type) : 0);
	r = r ? r : cm_xml_node_new_child(&d, m, dir, XC_NS_CARBONS);
	r = r ? r : cm_xml_node_new_child(&f, d, "forwarded", NS_FORWARD);
	r = r ? r : cm_xml_node_copy(&copy, st);
	r = r ? r : cm_xml_node_add_child(f, copy);
	if (r) {
		cm_xml_node_free(copy);
		cm_xml_node_free(m);
		CM_LOGW("carbons", "a carbon copy for %s was not made (no memory)", bare);
		return NULL;
	}
	return m;
}

static bool got_it(const struct xc_c2s *c, struct xc_c2s *const *got, size_t ngot)
{
	for (size_t i = 0; i < ngot; i++)
		if (got[i] == c)
			return true;
	return false;
}

/* Does session c take a carbon copy: carbons on, and not one of those in skip? */
static bool takes(const struct xc_c2s *c, struct xc_c2s *const *skip, size_t nskip)
{
	return c->carbons && !got_it(c, skip, nskip);
}

/* Copy st, wrapped in dir, to every session of u with carbons on but those in skip. */
static void fan_out(struct xc_user *u, const char *dir, const struct cm_xml_node *st,
                    struct xc_c2s *const *skip, size_t nskip)
{
	struct cm_xml_node *w = NULL;
	struct xc_c2s *c;

	xc_user_foreach_session(u, c)
	{
		if (!takes(c, skip, nskip))
			continue;
		/* built for the first taker only: most messages have none */
		if (!w && (!xc_carbons_eligible(st) || !(w = wrap(u->bare.s, dir, st))))
			return;
		if (cm_xml_node_set_attr(w, "to", c->jid.s) == 0)
			xc_c2s_send(c, w);
	}
	cm_xml_node_free(w);
}

/* Has u a session with carbons on, other than those in skip? */
static bool any_taker(struct xc_user *u, struct xc_c2s *const *skip, size_t nskip)
{
	struct xc_c2s *c;

	xc_user_foreach_session(u, c)
	{
		if (takes(c, skip, nskip))
			return true;
	}
	return false;
}

void xc_carbons_sent(struct xc_c2s *c, const struct cm_xml_node *st)
{
	struct xc_jid to;
	bool own;

	/* the usual case, nobody to copy to, is settled before 'to' is parsed */
	if (!c->u || !any_taker(c->u, &c, 1))
		return;
	/* to the user's own account: its sessions get the message itself */
	if (xc_stanza_jid(st, "to", &to) != 0)
		return;
	own = !xc_jid_empty(&to) && xc_jid_bare_equal(&to, &c->u->bare);
	xc_jid_free(&to);
	if (!own)
		fan_out(c->u, "sent", st, &c, 1);
}

void xc_carbons_received(struct xc_user *u, const struct cm_xml_node *st, struct xc_c2s *const *got,
                         size_t ngot)
{
	fan_out(u, "received", st, got, ngot);
}
