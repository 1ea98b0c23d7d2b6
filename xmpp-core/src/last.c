/* last.c - last activity (XEP-0012 3) of the server's accounts (last.h). */
#include "last.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "user.h"

#define STATUS_MAX 1024 /* bytes of the status kept */

/* The first n bytes of s or fewer, cut before a character that would not fit. */
static size_t utf8_cut(const char *s, size_t len, size_t n)
{
	if (len <= n)
		return len;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--; /* s[n] continues a character: cut before the character */
	return n;
}

void xc_last_gone(struct xc_shard *sh, const struct xc_user *u, const struct cm_xml_node *st)
{
	const struct cm_xml_node *status = cm_xml_child(st, "status", NULL);
	const char *text = status ? cm_xml_text(status) : NULL;
	struct xc_store_req *r = xc_store_req_new(XC_STORE_LAST_SET, NULL, NULL, NULL);

	if (!r || xc_store_req_set(&r->user, u->bare.s) != 0)
		goto fail;
	r->stamp_ms = xc_wall_ms();
	if (text && *text) {
		size_t n = utf8_cut(text, strlen(text), STATUS_MAX);

		if (!(r->stanza = strndup(text, n)))
			goto fail;
	}
	if (xc_store_submit(sh->srv->store, r) == 0)
		return;
fail:
	xc_store_req_free(r); /* (the store is closing, or memory is short: not worth more) */
}

static void on_got(struct xc_store_req *r)
{
	struct cm_xml_node *iq = r->arg, *q = NULL, *e, *res;
	struct xc_shard *sh = r->loop->data;
	struct xc_jid to = {0};
	const struct xc_user *u;
	bool online = false;
	int64_t ago_ms;
	char secs[24];
	int rc = 0;

	if (r->err) {
		e = xc_stanza_error(iq, "wait", "internal-server-error", NULL, NULL);
		goto answer;
	}
	if (!r->found) {
		e = xc_stanza_error(
		    iq, "auth", "forbidden",
		    "only those the account's presence reaches see its last activity", NULL);
		goto answer;
	}
	/* online now: 0 seconds (XEP-0012 3) */
	if (xc_jid_parse(&to, r->user, strlen(r->user), NULL, 0) == 0 &&
	    (u = xc_user_find(sh, &to)) != NULL) {
		const struct xc_c2s *c;

		xc_user_foreach_session(u, c)
		{
			online = online || c->available;
		}
	}
	xc_jid_free(&to);
	if (!online && r->stamp_ms == 0) {
		e = xc_stanza_error(iq, "cancel", "item-not-found",
		                    "no logout of this account is known", NULL);
		goto answer;
	}
	ago_ms = online ? 0 : xc_wall_ms() - r->stamp_ms;
	snprintf(secs, sizeof(secs), "%lld", (long long)(ago_ms > 0 ? ago_ms / 1000 : 0));
	rc = cm_xml_node_new(&q, "query", XC_NS_LAST);
	rc = rc ? rc : cm_xml_node_set_attr(q, "seconds", secs);
	if (!rc && !online && r->stanza)
		rc = cm_xml_node_add_text(q, r->stanza, strlen(r->stanza));
	if (rc) {
		cm_xml_node_free(q);
		e = xc_stanza_error(iq, "wait", "resource-constraint", NULL, NULL);
		goto answer;
	}
	res = xc_iq_result(iq, q);
	if (res)
		xc_route(sh, res);
	cm_xml_node_free(iq);
	xc_store_req_free(r);
	return;
answer:
	if (e)
		xc_route(sh, e);
	cm_xml_node_free(iq);
	xc_store_req_free(r);
}

void xc_last_iq(struct xc_shard *sh, const struct xc_jid *to, struct xc_c2s *own,
                struct cm_xml_node *iq)
{
	struct xc_store_req *r = NULL;
	struct xc_jid from = {0};
	struct cm_xml_node *e = NULL;
	int rc;

	if (strcmp(xc_stanza_type(iq), "get") != 0 || !cm_xml_child(iq, "query", XC_NS_LAST)) {
		e = xc_stanza_error(iq, "modify", "bad-request",
		                    "last activity is asked with an IQ get of <query/>", NULL);
		goto out;
	}
	r = xc_store_req_new(XC_STORE_LAST_GET, sh->loop, on_got, iq);
	rc = r ? xc_store_req_set(&r->user, to->s) : -ENOMEM;
	if (!rc && !own) {
		/* who asks: the bare JID the router stamped */
		rc = xc_stanza_jid(iq, "from", &from);
		if (!rc && !xc_jid_empty(&from)) {
			struct xc_jid bare;

			rc = xc_jid_copy(&bare, &from, true);
			rc = rc ? rc : xc_store_req_set(&r->key, bare.s);
			if (!rc)
				xc_jid_free(&bare);
		} else if (!rc) {
			rc = -EINVAL;
		}
	}
	rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	if (rc) {
		e = xc_stanza_error(iq, "wait", "resource-constraint", NULL, NULL);
		goto out;
	}
	xc_jid_free(&from);
	return; /* iq is the request's */
out:
	xc_jid_free(&from);
	xc_store_req_free(r);
	if (e)
		xc_route(sh, e);
	cm_xml_node_free(iq);
}
