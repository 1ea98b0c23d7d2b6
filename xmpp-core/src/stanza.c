/* stanza.c - stanza kinds, addresses, error replies and IQ results (stanza.h). */
#include "stanza.h"

#include <errno.h>
#include <string.h>
#include <time.h>

enum xc_kind xc_stanza_kind(const struct cm_xml_node *n)
{
	if (n->kind != CM_XML_ELEMENT ||
	    (strcmp(n->ns, CM_XML_NS_CLIENT) != 0 && strcmp(n->ns, CM_XML_NS_COMPONENT) != 0 &&
	     strcmp(n->ns, CM_XML_NS_SERVER) != 0))
		return XC_OTHER;
	if (strcmp(n->name, "message") == 0)
		return XC_MESSAGE;
	if (strcmp(n->name, "presence") == 0)
		return XC_PRESENCE;
	if (strcmp(n->name, "iq") == 0)
		return XC_IQ;
	return XC_OTHER;
}

const char *xc_stanza_type(const struct cm_xml_node *n)
{
	const char *t = cm_xml_attr(n, "type");

	if (t)
		return t;
	switch (xc_stanza_kind(n)) {
	case XC_MESSAGE:
		return "normal";
	case XC_PRESENCE:
		return "available";
	default:
		return NULL;
	}
}

int xc_stanza_jid(const struct cm_xml_node *n, const char *attr, struct xc_jid *j)
{
	const char *v = cm_xml_attr(n, attr);

	memset(j, 0, sizeof(*j));
	if (!v)
		return 0;
	return xc_jid_parse(j, v, strlen(v), NULL, 0);
}

int xc_stanza_set_addrs(struct cm_xml_node *n, const char *to, const char *from)
{
	int r = 0;

	if (to)
		r = cm_xml_node_set_attr(n, "to", to);
	else
		cm_xml_node_remove_attr(n, "to");
	if (!r && from)
		r = cm_xml_node_set_attr(n, "from", from);
	else if (!r)
		cm_xml_node_remove_attr(n, "from");
	return r;
}

struct cm_xml_node *xc_stanza_error(const struct cm_xml_node *st, const char *etype,
                                    const char *condition, const char *text,
                                    const char *fallback_from)
{
	const char *t = cm_xml_attr(st, "type"), *to = cm_xml_attr(st, "to");
	struct cm_xml_node *e = NULL, *err, *cond;
	int r;

	if (t && strcmp(t, "error") == 0)
		return NULL;
	if (xc_stanza_kind(st) == XC_IQ) {
		r = cm_xml_node_new(&e, st->name, st->ns);
		r = r ? r
		      : (cm_xml_attr(st, "id")
		             ? cm_xml_node_set_attr(e, "id", cm_xml_attr(st, "id"))
		             : 0);
	} else {
		r = cm_xml_node_copy(&e, st);
	}
	if (r)
		goto fail;
	r = xc_stanza_set_addrs(e, cm_xml_attr(st, "from"), to ? to : fallback_from);
	r = r ? r : cm_xml_node_set_attr(e, "type", "error");
	r = r ? r : cm_xml_node_new_child(&err, e, "error", NULL);
	r = r ? r : cm_xml_node_set_attr(err, "type", etype);
	r = r ? r : cm_xml_node_new_child(&cond, err, condition, XC_NS_STANZAS);
	if (!r && text) {
		struct cm_xml_node *tx;

		r = cm_xml_node_new_child(&tx, err, "text", XC_NS_STANZAS);
		r = r ? r : cm_xml_node_add_text(tx, text, strlen(text));
	}
	if (r)
		goto fail;
	return e;
fail:
	cm_xml_node_free(e);
	return NULL;
}

struct cm_xml_node *xc_iq_result(const struct cm_xml_node *iq, struct cm_xml_node *child)
{
	struct cm_xml_node *e = NULL;
	const char *id = cm_xml_attr(iq, "id");
	int r = cm_xml_node_new(&e, "iq", iq->ns);

	r = r ? r : cm_xml_node_set_attr(e, "type", "result");
	r = r ? r : (id ? cm_xml_node_set_attr(e, "id", id) : 0);
	r = r ? r : xc_stanza_set_addrs(e, cm_xml_attr(iq, "from"), cm_xml_attr(iq, "to"));
	if (!r && child) {
		r = cm_xml_node_add_child(e, child);
		if (!r)
			child = NULL;
	}
	cm_xml_node_free(child);
	if (r) {
		cm_xml_node_free(e);
		return NULL;
	}
	return e;
}

static int parse_open(void *arg, const struct cm_xml_node *header)
{
	(void)arg;
	(void)header;
	return 0;
}

static int parse_stanza(void *arg, struct cm_xml_node *st)
{
	struct cm_xml_node **out = arg;

	if (*out) {
		cm_xml_node_free(st);
		return -EBADMSG; /* one stanza only */
	}
	*out = st;
	return 0;
}

static int parse_close(void *arg)
{
	(void)arg;
	return 0;
}

int xc_stanza_parse(const char *xml, size_t len, struct cm_xml_node **out)
{
	static const char head[] = "<stream:stream xmlns='jabber:client' "
	                           "xmlns:stream='http://etherx.jabber.org/streams'>";
	struct cm_xml_parser_cfg pc = {
	    .max_stanza = len + sizeof(head) + 64,
	    .open_cb = parse_open,
	    .stanza_cb = parse_stanza,
	    .close_cb = parse_close,
	};
	struct cm_xml_parser *p;
	int r;

	*out = NULL;
	pc.arg = out;
	r = cm_xml_parser_alloc(&p, &pc);
	if (r)
		return r;
	r = cm_xml_parser_feed(p, head, sizeof(head) - 1);
	r = r ? r : cm_xml_parser_feed(p, xml, len);
	cm_xml_parser_free(p);
	if (r || !*out) {
		cm_xml_node_free(*out);
		*out = NULL;
		return r == -ENOMEM ? -ENOMEM : -EBADMSG;
	}
	return 0;
}

int64_t xc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int xc_message_parse(const char *xml, size_t len, struct cm_xml_node **out)
{
	int rc = xc_stanza_parse(xml, len, out);

	if (!rc && (strcmp((*out)->name, "message") != 0 || strcmp((*out)->ns, CM_XML_NS_CLIENT))) {
		cm_xml_node_free(*out);
		*out = NULL;
		rc = -EBADMSG;
	}
	return rc;
}
