/* vcard.c - vcard-temp (XEP-0054) storage (vcard.h). */
#include "vcard.h"

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

static void reply(struct xc_shard *sh, const struct cm_xml_node *iq, struct cm_xml_node *child)
{
	struct cm_xml_node *res = xc_iq_result(iq, child);

	if (res)
		xc_route(sh, res);
}

static void on_got(struct xc_store_req *r)
{
	struct cm_xml_node *iq = r->arg, *v = NULL;
	struct xc_shard *sh = r->loop->data;
	int rc = r->err;

	if (!rc && r->found && r->stanza)
		rc = xc_stanza_parse(r->stanza, strlen(r->stanza), &v);
	else if (!rc)
		rc = cm_xml_node_new(&v, "vCard", XC_NS_VCARD); /* none set: an empty one */
	if (rc)
		refuse(sh, iq, "wait", "internal-server-error", NULL);
	else
		reply(sh, iq, v);
	cm_xml_node_free(iq);
	xc_store_req_free(r);
}

static void on_set(struct xc_store_req *r)
{
	struct cm_xml_node *iq = r->arg;
	struct xc_shard *sh = r->loop->data;

	if (r->err)
		refuse(sh, iq, "wait", "internal-server-error", NULL);
	else
		reply(sh, iq, NULL);
	cm_xml_node_free(iq);
	xc_store_req_free(r);
}

void xc_vcard_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                 struct cm_xml_node *iq)
{
	const struct cm_xml_node *v = cm_xml_child(iq, "vCard", XC_NS_VCARD);
	bool set = strcmp(xc_stanza_type(iq), "set") == 0;
	struct xc_store_req *r = NULL;
	struct cm_buf b;
	int rc;

	cm_buf_init(&b, 0);
	if (!v) {
		refuse(sh, iq, "modify", "bad-request", "the vCard element is <vCard/>");
		goto out;
	}
	if (set && !own) {
		refuse(sh, iq, "auth", "forbidden", "a vCard is set by its owner only");
		goto out;
	}
	if (set) {
		rc = cm_xml_write(&b, v, NULL);
		if (!rc && !b.data)
			rc = -ENOMEM;
		if (rc) {
			refuse(sh, iq, "wait", "resource-constraint", NULL);
			goto out;
		}
		if (b.len > sh->srv->cfg->pep.max_payload) {
			refuse(sh, iq, "modify", "not-acceptable",
			       "the vCard is larger than this server keeps (pep.max_payload)");
			goto out;
		}
	}
	r = xc_store_req_new(set ? XC_STORE_VCARD_SET : XC_STORE_VCARD_GET, sh->loop,
	                     set ? on_set : on_got, iq);
	rc = r ? xc_store_req_set(&r->user, to->s) : -ENOMEM;
	if (!rc && set) {
		r->stanza = b.data; /* handed over */
		cm_buf_init(&b, 0);
	}
	rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	if (rc) {
		xc_store_req_free(r);
		refuse(sh, iq, "wait", "resource-constraint", NULL);
		goto out;
	}
	cm_buf_free(&b);
	return; /* iq is the request's */
out:
	cm_buf_free(&b);
	cm_xml_node_free(iq);
}
