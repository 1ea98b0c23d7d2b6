/* push_policy.c - what is worth a push, how a burst makes one push, and what a push says
 * (push.h). Plain data and trees: nothing here touches a loop or the store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cm/utf8.h"
#include "push.h"
#include "stanza.h"
#include "xc.h"

#define NS_CARBONS   "urn:xmpp:carbons:2"
#define NS_FORWARD   "urn:xmpp:forward:0"
#define NS_MAM       "urn:xmpp:mam:2"
#define NS_JMI       "urn:xmpp:jingle-message:0"
#define NS_DATA      "jabber:x:data"
#define DEPTH_CARBON 1 /* a received carbon is opened once, never a carbon inside a carbon */

/* Payloads that are a message although they have no body: end-to-end encryption. */
static const char *const encrypted[] = {
    "eu.siacs.conversations.axolotl", /* OMEMO (legacy) */
    "urn:xmpp:omemo:2",               /* OMEMO */
    "urn:xmpp:openpgp:0",             /* OpenPGP for XMPP */
    "jabber:x:encrypted",             /* legacy OpenPGP */
};

static bool is_encrypted(const char *ns)
{
	for (size_t i = 0; i < sizeof(encrypted) / sizeof(encrypted[0]); i++)
		if (strcmp(ns, encrypted[i]) == 0)
			return true;
	return false;
}

/* The message a <received/> carbon carries, or NULL. */
static const struct cm_xml_node *carried(const struct cm_xml_node *received)
{
	const struct cm_xml_node *fwd = cm_xml_child(received, "forwarded", NS_FORWARD);

	return fwd ? cm_xml_child(fwd, "message", CM_XML_NS_CLIENT) : NULL;
}

static enum xc_push_want classify(const struct cm_xml_node *st, int depth)
{
	const char *type;
	enum xc_push_want want = XC_PUSH_NO;

	if (!st || xc_stanza_kind(st) != XC_MESSAGE)
		return XC_PUSH_NO;
	type = xc_stanza_type(st);
	if (strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
		return XC_PUSH_NO; /* error, headline, groupchat */
	for (const struct cm_xml_node *n = st->children; n; n = n->next) {
		if (n->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(n->ns, NS_CARBONS) == 0) {
			/* a copy of what the user sent is no news to the user */
			if (strcmp(n->name, "received") != 0 || depth >= DEPTH_CARBON)
				return XC_PUSH_NO;
			return classify(carried(n), depth + 1);
		}
		if (strcmp(n->ns, NS_MAM) == 0 && strcmp(n->name, "result") == 0)
			return XC_PUSH_NO; /* an archive query's answer */
		if (strcmp(n->ns, NS_JMI) == 0 && strcmp(n->name, "propose") == 0)
			want = XC_PUSH_URGENT;
		else if (want == XC_PUSH_NO &&
		         ((strcmp(n->name, "body") == 0 && strcmp(n->ns, CM_XML_NS_CLIENT) == 0) ||
		          is_encrypted(n->ns)))
			want = XC_PUSH_YES;
	}
	return want;
}

enum xc_push_want xc_push_classify(const struct cm_xml_node *st)
{
	return classify(st, 0);
}

const char *xc_push_body(const struct cm_xml_node *st)
{
	const struct cm_xml_node *b, *rc = cm_xml_child(st, "received", NS_CARBONS);

	if (rc && (st = carried(rc)) == NULL)
		return NULL;
	b = cm_xml_child(st, "body", CM_XML_NS_CLIENT);
	return b ? cm_xml_text(b) : NULL;
}

/* --- bursts ---------------------------------------------------------------------------------- */

enum xc_push_step xc_push_burst_event(struct xc_push_burst *b, uint64_t now, uint64_t window,
                                      unsigned n, bool urgent)
{
	bool quiet = now >= b->quiet_until;

	if (!n)
		return XC_PUSH_HOLD;
	b->count += n;
	b->unsent += n;
	b->urgent = b->urgent || urgent;
	/* every message extends the burst: a steady trickle is one burst */
	b->quiet_until = now + window;
	if (b->in_flight)
		return XC_PUSH_HOLD; /* its answer decides (xc_push_burst_answered) */
	return quiet || b->urgent ? XC_PUSH_SEND : XC_PUSH_HOLD;
}

void xc_push_burst_sent(struct xc_push_burst *b)
{
	b->unsent = 0;
	b->urgent = false;
	b->in_flight = true;
}

enum xc_push_step xc_push_burst_answered(struct xc_push_burst *b, bool woken)
{
	b->in_flight = false;
	if (!woken)
		b->quiet_until = 0;
	return b->urgent && b->unsent ? XC_PUSH_SEND : XC_PUSH_HOLD;
}

enum xc_push_step xc_push_burst_rewake(struct xc_push_burst *b)
{
	if (b->rewoken || b->in_flight || !b->count)
		return XC_PUSH_HOLD;
	b->rewoken = true;
	return XC_PUSH_SEND;
}

void xc_push_burst_back(struct xc_push_burst *b)
{
	bool in_flight = b->in_flight;

	*b = (struct xc_push_burst){.in_flight = in_flight};
}

/* --- the summary ------------------------------------------------------------------------------ */

static int field(struct cm_buf *out, const char *var, const char *value, size_t len)
{
	int r = cm_buf_printf(out, "<field var='%s'><value>", var);

	r = r ? r : cm_xml_escape_text(out, value, len);
	return r ? r : cm_buf_puts(out, "</value></field>");
}

size_t xc_push_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t at = 0;

	while (at < len) {
		uint32_t cp;
		size_t n = cm_utf8_decode((const unsigned char *)s + at, len - at, &cp);

		if (!n || at + n > max)
			break;
		at += n;
	}
	return at;
}

int xc_push_summary_write(struct cm_buf *out, const struct xc_push_config *cfg, unsigned count,
                          const char *sender, const char *body, bool urgent)
{
	size_t start = out->len;
	bool with_sender =
	    cfg->privacy == XC_PUSH_PRIVACY_SENDER || cfg->privacy == XC_PUSH_PRIVACY_FULL;
	char num[16];
	int r;

	snprintf(num, sizeof(num), "%u", count);
	r = cm_buf_puts(out, "<x xmlns='" NS_DATA "' type='submit'>");
	r = r ? r : field(out, "FORM_TYPE", XC_NS_PUSH_SUMMARY, strlen(XC_NS_PUSH_SUMMARY));
	r = r ? r : field(out, "message-count", num, strlen(num));
	if (!r && with_sender && sender && *sender)
		r = field(out, "last-message-sender", sender, strlen(sender));
	if (!r && cfg->privacy == XC_PUSH_PRIVACY_PLACEHOLDER && cfg->placeholder &&
	    *cfg->placeholder)
		r = field(out, "last-message-body", cfg->placeholder, strlen(cfg->placeholder));
	if (!r && cfg->privacy == XC_PUSH_PRIVACY_FULL && body && *body)
		r = field(out, "last-message-body", body,
		          xc_push_utf8_prefix(body, strlen(body), XC_PUSH_BODY_MAX));
	if (!r && urgent)
		r = field(out, "jingle-message", "propose", strlen("propose"));
	r = r ? r : cm_buf_puts(out, "</x>");
	if (r && out->len > start) {
		/* all or nothing, as cm_buf's own appends */
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}
