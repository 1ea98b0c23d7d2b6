/* private.c - private XML storage (XEP-0049) (private.h). */
#include "private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "xc.h"

static void refuse(struct xc_shard *sh, const struct cm_xml_node *iq, const char *etype,
                   const char *cond, const char *text)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text, NULL);

	if (e)
		xc_route(sh, e);
}

bool xc_private_ns_reserved(const char *ns)
{
	static const char *const reserved[] = {XC_NS_PRIVATE, "jabber:client", "jabber:server",
	                                       "jabber:component:accept"};

	if (!ns || !*ns)
		return true;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(ns, reserved[i]) == 0)
			return true;
	return false;
}

/* An element that says nothing: no attribute, no child, no text. Storing it removes the
 * namespace's element (a get answers the same empty element either way). */
static bool empty(const struct cm_xml_node *e)
{
	return !e->attrs && !e->children;
}

/* Why a query is refused: the error's type, condition and text (NULL: none). */
struct refusal {
	const char *etype, *cond, *text;
};

static const struct refusal out_of_memory = {"wait", "resource-constraint", NULL};

/* The element children of the query into r->priv (written as XML for a set), checked. NULL, or
 * why the query is refused. */
static const struct refusal *collect(struct xc_shard *sh, const struct cm_xml_node *q, bool set,
                                     struct xc_store_req *r)
{
	static const struct refusal reserved = {
	    "modify", "not-acceptable",
	    "a private element needs a namespace of its own (not jabber:iq:private, jabber:client "
	    "or jabber:server)"};
	static const struct refusal twice = {"modify", "bad-request", "one element per namespace"};
	static const struct refusal too_many = {"modify", "not-acceptable",
	                                        "more namespaces than this server keeps for an "
	                                        "account (private_storage.max_namespaces)"};
	static const struct refusal too_big = {
	    "modify", "not-acceptable",
	    "the element is larger than this server keeps (private_storage.max_bytes)"};
	static const struct refusal none = {"modify", "not-acceptable",
	                                    "the query holds no element to keep or read"};
	const struct xc_private_config *cfg = &sh->srv->cfg->private_xml;
	struct cm_buf b;

	/* (each namespace compared with those before it: max_namespaces, at most 1000, bounds
	 * the work) */
	for (const struct cm_xml_node *c = q->children; c; c = c->next) {
		if (c->kind != CM_XML_ELEMENT)
			continue;
		if (xc_private_ns_reserved(c->ns))
			return &reserved;
		for (size_t i = 0; i < r->npriv; i++)
			if (strcmp(r->priv[i].ns, c->ns) == 0)
				return &twice;
		if (r->npriv >= (size_t)cfg->max_namespaces)
			return &too_many;
		cm_buf_init(&b, 0);
		if (set && !empty(c)) {
			int rc = cm_xml_write(&b, c, NULL);

			if (rc || !b.data) {
				cm_buf_free(&b);
				return &out_of_memory;
			}
			if (b.len > cfg->max_bytes) {
				cm_buf_free(&b);
				return &too_big;
			}
		}
		if (xc_store_req_add_private(r, c->ns, b.data) != 0) {
			cm_buf_free(&b);
			return &out_of_memory;
		}
		cm_buf_free(&b);
	}
	return r->npriv ? NULL : &none;
}

/* The answer to a get: each namespace asked, as kept or as asked. NULL on failure. */
static struct cm_xml_node *answer(const struct cm_xml_node *iq, const struct xc_store_req *r)
{
	const struct cm_xml_node *q = cm_xml_child(iq, "query", XC_NS_PRIVATE);
	struct cm_xml_node *out = NULL, *e;
	size_t i = 0;
	int rc = cm_xml_node_new(&out, "query", XC_NS_PRIVATE);

	for (const struct cm_xml_node *c = q->children; c && !rc; c = c->next) {
		if (c->kind != CM_XML_ELEMENT)
			continue;
		e = NULL;
		if (i < r->npriv && r->priv[i].xml)
			rc = xc_stanza_parse(r->priv[i].xml, strlen(r->priv[i].xml), &e);
		else
			rc = cm_xml_node_copy(&e, c);
		rc = rc ? rc : cm_xml_node_add_child(out, e);
		if (rc)
			cm_xml_node_free(e);
		i++;
	}
	if (rc) {
		cm_xml_node_free(out);
		return NULL;
	}
	return out;
}

static void on_done(struct xc_store_req *r)
{
	struct cm_xml_node *iq = r->arg, *res = NULL, *child = NULL;
	struct xc_shard *sh = r->loop->data;

	if (r->err == -EDQUOT) {
		refuse(sh, iq, "modify", "not-acceptable",
		       "this account keeps as many private namespaces as it may "
		       "(private_storage.max_namespaces)");
	} else if (r->err || (r->op == XC_STORE_PRIVATE_GET && !(child = answer(iq, r)))) {
		refuse(sh, iq, "wait", "internal-server-error", NULL);
	} else if ((res = xc_iq_result(iq, child)) != NULL) {
		xc_route(sh, res);
	}
	cm_xml_node_free(iq);
	xc_store_req_free(r);
}

void xc_private_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                   struct cm_xml_node *iq)
{
	const struct cm_xml_node *q = cm_xml_child(iq, "query", XC_NS_PRIVATE);
	bool set = strcmp(xc_stanza_type(iq), "set") == 0;
	struct xc_store_req *r = NULL;
	const struct refusal *no;
	int rc;

	if (!own) {
		refuse(sh, iq, "auth", "forbidden", "private XML is its owner's only");
		goto out;
	}
	if (!q) {
		refuse(sh, iq, "modify", "bad-request", "private XML is asked for with <query/>");
		goto out;
	}
	r = xc_store_req_new(set ? XC_STORE_PRIVATE_SET : XC_STORE_PRIVATE_GET, sh->loop, on_done,
	                     iq);
	if (!r) {
		refuse(sh, iq, "wait", "resource-constraint", NULL);
		goto out;
	}
	if ((no = collect(sh, q, set, r)) != NULL) {
		refuse(sh, iq, no->etype, no->cond, no->text);
		goto out;
	}
	r->limit = (unsigned)sh->srv->cfg->private_xml.max_namespaces;
	rc = xc_store_req_set(&r->user, to->s);
	rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	if (rc) {
		refuse(sh, iq, "wait", "resource-constraint", NULL);
		goto out;
	}
	return; /* iq is the request's */
out:
	xc_store_req_free(r);
	cm_xml_node_free(iq);
}
