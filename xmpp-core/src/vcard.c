/* vcard.c - vcard-temp (XEP-0054) storage (vcard.h). */
#include "vcard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "cm/buf.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "user.h"
#include "xc.h"

static void refuse(struct xc_shard *sh, const struct cm_xml_node *iq, const char *etype,
                   const char *cond, const char *text)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text, NULL);

	if (e)
		xc_route(sh, e);
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
		xc_reply(sh, iq, v);
	cm_xml_node_free(iq);
	xc_store_req_free(r);
}

/* A set on its way through the store. */
struct set_ctx {
	struct cm_xml_node *iq; /* owned */
	struct xc_avatar photo; /* the vCard's PHOTO */
};

static void on_set(struct xc_store_req *r)
{
	struct set_ctx *x = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct xc_user *u;
	struct xc_jid j;

	if (r->err) {
		refuse(sh, x->iq, "wait", "internal-server-error", NULL);
	} else {
		xc_reply(sh, x->iq, NULL);
		/* the PEP avatar and the presence follow (avatar.h) */
		if (xc_jid_parse(&j, r->user, strlen(r->user), NULL, 0) == 0) {
			if ((u = xc_user_find(sh, &j)) != NULL)
				xc_avatar_vcard_set(sh, u, &x->photo);
			xc_jid_free(&j);
		}
	}
	cm_xml_node_free(x->iq);
	xc_avatar_clear(&x->photo);
	free(x);
	xc_store_req_free(r);
}

void xc_vcard_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                 struct cm_xml_node *iq)
{
	const struct cm_xml_node *v = cm_xml_child(iq, "vCard", XC_NS_VCARD);
	bool set = strcmp(xc_stanza_type(iq), "set") == 0;
	struct xc_store_req *r = NULL;
	struct set_ctx *x = NULL;
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
		if (!(x = calloc(1, sizeof(*x)))) {
			refuse(sh, iq, "wait", "resource-constraint", NULL);
			goto out;
		}
		rc = xc_avatar_from_vcard(v, &x->photo);
		if (rc) {
			refuse(sh, iq, rc == -ENOMEM ? "wait" : "modify",
			       rc == -ENOMEM ? "resource-constraint" : "bad-request",
			       rc == -ENOMEM ? NULL : "the PHOTO's BINVAL is not base64");
			goto out;
		}
	}
	r = xc_store_req_new(set ? XC_STORE_VCARD_SET : XC_STORE_VCARD_GET, sh->loop,
	                     set ? on_set : on_got, set ? (void *)x : (void *)iq);
	rc = r ? xc_store_req_set(&r->user, to->s) : -ENOMEM;
	if (!rc && set) {
		rc = xc_store_req_set(&r->avatar, x->photo.hash);
		r->stanza = b.data; /* handed over */
		cm_buf_init(&b, 0);
		x->iq = iq;
	}
	rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	if (rc) {
		if (x)
			x->iq = NULL;
		xc_store_req_free(r);
		refuse(sh, iq, "wait", "resource-constraint", NULL);
		goto out;
	}
	cm_buf_free(&b);
	return; /* iq is the request's */
out:
	if (x)
		xc_avatar_clear(&x->photo);
	free(x);
	cm_buf_free(&b);
	cm_xml_node_free(iq);
}
