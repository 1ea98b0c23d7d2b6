/* iq.c - IQs the server answers (iq.h): service discovery (XEP-0030) with entity capabilities
 * (XEP-0115) of the server, ping (XEP-0199), software version (XEP-0092), the roster and the
 * legacy session for the account; PEP (pep.c), vCards (vcard.c), private XML (private.c), last
 * activity (last.c) and external services (extdisco.c) are handed on. */
#include "iq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c2s.h"
#include "caps.h"
#include "carbons.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "avatar.h"
#include "blocking.h"
#include "cm/log.h"
#include "extdisco.h"
#include "last.h"
#include "mam.h"
#include "pep.h"
#include "private.h"
#include "push.h"
#include "register.h"
#include "roster.h"
#include "router.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "user.h"
#include "vcard.h"
#include "upload.h"

#define NS_DISCO_INFO  XC_NS_DISCO_INFO
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING        "urn:xmpp:ping"
#define NS_VERSION     "jabber:iq:version"
#define NS_ROSTER      "jabber:iq:roster"
#define NS_SESSION     "urn:ietf:params:xml:ns:xmpp-session"

#define NS_TIME "urn:xmpp:time"
#define NS_LAST "jabber:iq:last"

/* What the server itself supports (disco#info of the domain). */
static const char *const server_features[] = {
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    "jabber:iq:roster",
    "jabber:iq:version",
    NS_LAST,
    "urn:ietf:params:xml:ns:xmpp-session",
    NS_PING,
    NS_TIME,
    XC_NS_BLOCKING,
    XC_NS_REGISTER,
    XC_NS_CARBONS,
};

/* What the server does for an account (disco#info of a bare JID); the archive's features
 * follow when it is on. */
static const char *const account_features[] = {
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    XC_NS_LAST,
    XC_NS_VCARD,
};

#define PEP_FEATURES_MAX 16

static const char *const archive_features[] = {
    XC_NS_MAM,
    XC_NS_MAM_EXTENDED,
    XC_NS_SID,
};

/* The local session that sent iq (its 'from' is stamped), or NULL. */
static struct xc_c2s *sender_session(struct xc_shard *sh, const struct cm_xml_node *iq)
{
	struct xc_jid from = {0};
	struct xc_c2s *own = NULL;

	if (xc_stanza_jid(iq, "from", &from) == 0 && !xc_jid_empty(&from))
		own = xc_session_find(sh, &from);
	xc_jid_free(&from);
	return own;
}

static void refuse(struct xc_shard *sh, struct cm_xml_node *iq, const char *etype, const char *cond)
{
	xc_bounce(sh, iq, etype, cond);
}

/* <query xmlns=disco#info> with one identity and the features. */
static struct cm_xml_node *disco_info(const char *category, const char *type, const char *name,
                                      const char *const *features, size_t n, const char *node)
{
	struct cm_xml_node *q = NULL, *id, *f;
	int r = cm_xml_node_new(&q, "query", NS_DISCO_INFO);

	r = r ? r : (node ? cm_xml_node_set_attr(q, "node", node) : 0);
	r = r ? r : cm_xml_node_new_child(&id, q, "identity", NULL);
	r = r ? r : cm_xml_node_set_attr(id, "category", category);
	r = r ? r : cm_xml_node_set_attr(id, "type", type);
	r = r ? r : (name ? cm_xml_node_set_attr(id, "name", name) : 0);
	for (size_t i = 0; i < n && !r; i++) {
		r = cm_xml_node_new_child(&f, q, "feature", NULL);
		r = r ? r : cm_xml_node_set_attr(f, "var", features[i]);
	}
	if (r) {
		cm_xml_node_free(q);
		return NULL;
	}
	return q;
}

#define SERVER_FEATURES_MAX (sizeof(server_features) / sizeof(server_features[0]) + 1)

/* The server's features into out (SERVER_FEATURES_MAX); how many. */
static size_t server_feature_list(const char **out, bool extdisco)
{
	size_t n = sizeof(server_features) / sizeof(server_features[0]);

	memcpy(out, server_features, sizeof(server_features));
	if (extdisco)
		out[n++] = XC_NS_EXTDISCO;
	return n;
}

#define NS_SERVERINFO "http://jabber.org/network/serverinfo"

/* The contact addresses (XEP-0157) as a form added to info; none configured: no form. */
static int contact_form(struct cm_xml_node *info, const struct xc_contact_config *c)
{
	struct cm_xml_node *x = NULL, *f, *v;
	bool any = false;
	int r = 0;

	for (int k = 0; k < XC_CONTACT_NKINDS; k++)
		any = any || c->addrs[k].n;
	if (!any)
		return 0;
	r = cm_xml_node_new_child(&x, info, "x", XC_NS_DATA);
	r = r ? r : cm_xml_node_set_attr(x, "type", "result");
	r = r ? r : cm_xml_form_add_field(x, "FORM_TYPE", "hidden", NS_SERVERINFO);
	for (int k = 0; k < XC_CONTACT_NKINDS && !r; k++) {
		char var[32];

		if (!c->addrs[k].n)
			continue;
		snprintf(var, sizeof(var), "%s-addresses", xc_contact_kinds[k]);
		r = cm_xml_node_new_child(&f, x, "field", NULL);
		r = r ? r : cm_xml_node_set_attr(f, "var", var);
		r = r ? r : cm_xml_node_set_attr(f, "type", "list-multi");
		for (size_t i = 0; i < c->addrs[k].n && !r; i++) {
			r = cm_xml_node_new_child(&v, f, "value", NULL);
			r = r ? r
			      : cm_xml_node_add_text(v, c->addrs[k].v[i], strlen(c->addrs[k].v[i]));
		}
	}
	return r;
}

/* The server's disco#info: its identity, features and contact addresses. NULL on failure. */
static struct cm_xml_node *server_info(const struct xc_config *cfg, bool extdisco, const char *node)
{
	const char *features[SERVER_FEATURES_MAX];
	size_t n = server_feature_list(features, extdisco);
	struct cm_xml_node *q = disco_info("server", "im", "xmpp-core", features, n, node);

	if (q && contact_form(q, &cfg->contact) != 0) {
		cm_xml_node_free(q);
		q = NULL;
	}
	return q;
}

int xc_iq_caps_ver(char *out, size_t len, const struct xc_config *cfg, bool extdisco)
{
	struct cm_xml_node *q = server_info(cfg, extdisco, NULL);
	int r = q ? xc_caps_ver(q, out, len) : -ENOMEM;

	cm_xml_node_free(q);
	return r;
}

/* <time xmlns='urn:xmpp:time'/> (XEP-0202): now in UTC, and the offset of the server's zone.
 * NULL on failure. */
static struct cm_xml_node *entity_time(void)
{
	struct cm_xml_node *t = NULL, *n;
	struct timespec ts;
	struct tm local;
	char utc[40], tzo[24];
	long off;
	int r;

	/* whole seconds, as XEP-0202's examples have it: some clients read no fraction */
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!gmtime_r(&ts.tv_sec, &local) ||
	    strftime(utc, sizeof(utc), "%Y-%m-%dT%H:%M:%SZ", &local) == 0)
		return NULL;
	off = localtime_r(&ts.tv_sec, &local) ? local.tm_gmtoff / 60 : 0; /* minutes */
	snprintf(tzo, sizeof(tzo), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 60,
	         labs(off) % 60);
	r = cm_xml_node_new(&t, "time", NS_TIME);
	r = r ? r : cm_xml_node_new_child(&n, t, "tzo", NULL);
	r = r ? r : cm_xml_node_add_text(n, tzo, strlen(tzo));
	r = r ? r : cm_xml_node_new_child(&n, t, "utc", NULL);
	r = r ? r : cm_xml_node_add_text(n, utc, strlen(utc));
	if (r) {
		cm_xml_node_free(t);
		return NULL;
	}
	return t;
}

/* <query xmlns='jabber:iq:last' seconds/> to the server (XEP-0012 4): its uptime. NULL on
 * failure. */
static struct cm_xml_node *uptime(const struct xc_server *srv)
{
	struct cm_xml_node *q = NULL;
	char secs[24];
	int r;

	snprintf(secs, sizeof(secs), "%llu",
	         (unsigned long long)((uv_hrtime() - srv->started_ns) / 1000000000u));
	r = cm_xml_node_new(&q, "query", NS_LAST);
	r = r ? r : cm_xml_node_set_attr(q, "seconds", secs);
	if (r) {
		cm_xml_node_free(q);
		return NULL;
	}
	return q;
}

static const struct cm_xml_node *only_child(const struct cm_xml_node *iq)
{
	const struct cm_xml_node *c = NULL;

	for (const struct cm_xml_node *n = iq->children; n; n = n->next) {
		if (n->kind != CM_XML_ELEMENT)
			continue;
		if (c)
			return NULL; /* RFC 6120 8.2.3: exactly one */
		c = n;
	}
	return c;
}

/* Checks common to every IQ the server answers; false when it was answered already. */
static bool valid_request(struct xc_shard *sh, struct cm_xml_node *iq, const char **type,
                          const struct cm_xml_node **q)
{
	*type = cm_xml_attr(iq, "type");
	if (!*type || !cm_xml_attr(iq, "id")) {
		refuse(sh, iq, "modify", "bad-request");
		return false;
	}
	if (strcmp(*type, "result") == 0 || strcmp(*type, "error") == 0)
		return false; /* answers to the server's own pings and pushes */
	if (strcmp(*type, "get") != 0 && strcmp(*type, "set") != 0) {
		refuse(sh, iq, "modify", "bad-request");
		return false;
	}
	*q = only_child(iq);
	if (!*q) {
		refuse(sh, iq, "modify", "bad-request");
		return false;
	}
	return true;
}

void xc_iq_server(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *iq)
{
	const struct xc_config *cfg = sh->srv->cfg;
	const struct cm_xml_node *q;
	const char *type;

	(void)to;
	if (!valid_request(sh, iq, &type, &q))
		goto out;
	if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_INFO) == 0) {
		xc_reply(sh, iq,
		         server_info(cfg, xc_extdisco_enabled(sh->srv->extdisco),
		                     cm_xml_attr(q, "node")));
	} else if (strcmp(q->ns, XC_NS_EXTDISCO) == 0) {
		xc_extdisco_iq(sh, sender_session(sh, iq), iq); /* takes iq */
		return;
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_ITEMS) == 0) {
		struct cm_xml_node *items = NULL, *it;
		int r = cm_xml_node_new(&items, "query", NS_DISCO_ITEMS);
		char up[XC_JID_PART_MAX + 16];

		/* the components are items of the server */
		for (size_t i = 0; !r && i < cfg->components.list.n; i++) {
			const struct xc_component_config *cc =
			    (const struct xc_component_config *)cfg->components.list.items + i;

			r = cm_xml_node_new_child(&it, items, "item", NULL);
			r = r ? r : cm_xml_node_set_attr(it, "jid", cc->domain);
		}
		/* and the upload service of this host (XEP-0363) */
		if (!r && xc_upload_service(sh->srv, to->s, up, sizeof(up))) {
			r = cm_xml_node_new_child(&it, items, "item", NULL);
			r = r ? r : cm_xml_node_set_attr(it, "jid", up);
			r = r ? r : cm_xml_node_set_attr(it, "name", "HTTP File Upload");
		}
		if (r)
			cm_xml_node_free(items);
		else
			xc_reply(sh, iq, items);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_PING) == 0 &&
	           strcmp(q->name, "ping") == 0) {
		xc_reply(sh, iq, NULL);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_TIME) == 0 &&
	           strcmp(q->name, "time") == 0) {
		xc_reply(sh, iq, entity_time());
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_LAST) == 0 &&
	           strcmp(q->name, "query") == 0) {
		xc_reply(sh, iq, uptime(sh->srv));
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_VERSION) == 0) {
		struct cm_xml_node *v = NULL, *n;
		int r = cm_xml_node_new(&v, "query", NS_VERSION);

		r = r ? r : cm_xml_node_new_child(&n, v, "name", NULL);
		r = r ? r : cm_xml_node_add_text(n, "xmpp-core", 9);
		if (!r && !cfg->hide_version) {
			r = cm_xml_node_new_child(&n, v, "version", NULL);
			r = r ? r : cm_xml_node_add_text(n, SUITE_VERSION, strlen(SUITE_VERSION));
		}
		if (r)
			cm_xml_node_free(v);
		else
			xc_reply(sh, iq, v);
	} else if (strcmp(type, "set") == 0 && strcmp(q->ns, NS_SESSION) == 0) {
		xc_reply(sh, iq, NULL); /* RFC 3921's session: nothing left to do */
	} else if (strcmp(q->ns, XC_NS_CARBONS) == 0 || strcmp(q->ns, XC_NS_REGISTER) == 0) {
		/* carbons are enabled, and an account is asked about, with the server's address
		 * by some clients: what the sender's own session may do */
		struct xc_c2s *own = sender_session(sh, iq);

		if (!own) {
			refuse(sh, iq, "auth", "forbidden");
		} else if (strcmp(q->ns, XC_NS_CARBONS) == 0) {
			xc_carbons_iq(sh, own, iq); /* takes iq */
			return;
		} else {
			xc_register_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else {
		refuse(sh, iq, "cancel", "service-unavailable");
	}
out:
	cm_xml_node_free(iq);
}

void xc_iq_account(struct xc_shard *sh, const struct xc_jid *to, struct cm_xml_node *iq)
{
	const struct cm_xml_node *q;
	const char *type;
	struct xc_jid from = {0};
	struct xc_c2s *own = NULL;

	type = cm_xml_attr(iq, "type");
	if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) &&
	    xc_push_answer(sh, iq))
		return; /* an app server answered a push */
	if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) &&
	    xc_pep_answer(sh, iq))
		return; /* a contact told PEP its capabilities */
	if (!valid_request(sh, iq, &type, &q)) {
		cm_xml_node_free(iq);
		return;
	}
	/* from one of the account's own sessions? */
	if (xc_stanza_jid(iq, "from", &from) == 0 && xc_jid_bare_equal(&from, to))
		own = xc_session_find(sh, &from);
	xc_jid_free(&from);
	if (strcmp(q->ns, NS_ROSTER) == 0 && strcmp(q->name, "query") == 0) {
		if (!own)
			refuse(sh, iq, "auth", "forbidden"); /* nobody else's business */
		else {
			xc_roster_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else if (strcmp(q->ns, XC_NS_REGISTER) == 0) {
		if (!own)
			refuse(sh, iq, "auth", "forbidden");
		else {
			xc_register_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else if (strcmp(q->ns, XC_NS_BLOCKING) == 0) {
		if (!own)
			refuse(sh, iq, "auth", "forbidden");
		else {
			xc_blocking_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else if (strcmp(q->ns, XC_NS_MAM) == 0) {
		if (!own)
			refuse(sh, iq, "auth", "forbidden");
		else {
			xc_mam_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else if (strcmp(q->ns, XC_NS_CARBONS) == 0) {
		if (!own)
			refuse(sh, iq, "auth", "forbidden");
		else {
			xc_carbons_iq(sh, own, iq); /* takes iq */
			return;
		}
	} else if (strcmp(q->ns, XC_NS_PUSH) == 0) {
		xc_push_iq(sh, own, iq); /* takes iq */
		return;
	} else if (strcmp(q->ns, XC_NS_PUBSUB) == 0 || strcmp(q->ns, XC_NS_PUBSUB_OWNER) == 0) {
		xc_pep_iq(sh, xc_user_find(sh, to), own, iq); /* takes iq */
		return;
	} else if (strcmp(q->ns, XC_NS_VCARD) == 0) {
		xc_vcard_iq(sh, to, own, iq); /* takes iq */
		return;
	} else if (strcmp(q->ns, XC_NS_LAST) == 0) {
		xc_last_iq(sh, to, own, iq); /* takes iq */
		return;
	} else if (strcmp(q->ns, XC_NS_PRIVATE) == 0 && sh->srv->cfg->private_xml.enabled) {
		xc_private_iq(sh, to, own, iq); /* takes iq */
		return;
	} else if (strcmp(type, "set") == 0 && strcmp(q->ns, NS_SESSION) == 0 && own) {
		xc_reply(sh, iq, NULL);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_INFO) == 0) {
		const size_t na = sizeof(account_features) / sizeof(account_features[0]);
		const size_t nm = sizeof(archive_features) / sizeof(archive_features[0]);
		const char *features[sizeof(account_features) / sizeof(account_features[0]) +
		                     sizeof(archive_features) / sizeof(archive_features[0]) +
		                     PEP_FEATURES_MAX + 2];
		struct cm_xml_node *info, *id;
		size_t n = na;

		memcpy(features, account_features, sizeof(account_features));
		if (xc_mam_enabled(sh->srv->mam)) {
			memcpy(features + na, archive_features, sizeof(archive_features));
			n += nm;
		}
		if (xc_pep_enabled(sh->srv->pep))
			n += xc_pep_features(features + n, PEP_FEATURES_MAX);
		if (xc_push_enabled(sh->srv->push))
			features[n++] = XC_NS_PUSH;
		/* the avatar is copied to the vCard, which anyone may read (XEP-0398 2) */
		if (xc_pep_enabled(sh->srv->pep) && xc_avatar_mode(sh) != XC_AVATAR_OFF)
			features[n++] = XC_NS_AVATAR_CONV;
		info =
		    disco_info("account", "registered", NULL, features, n, cm_xml_attr(q, "node"));
		/* the account is a PEP service too (XEP-0163 4) */
		if (info && xc_pep_enabled(sh->srv->pep) &&
		    (cm_xml_node_new_child(&id, info, "identity", NULL) != 0 ||
		     cm_xml_node_set_attr(id, "category", "pubsub") != 0 ||
		     cm_xml_node_set_attr(id, "type", "pep") != 0)) {
			cm_xml_node_free(info);
			info = NULL;
		}
		xc_reply(sh, iq, info);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_ITEMS) == 0) {
		xc_pep_disco_items(sh, xc_user_find(sh, to), own, iq); /* takes iq */
		return;
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_PING) == 0) {
		xc_reply(sh, iq, NULL);
	} else {
		refuse(sh, iq, "cancel", "service-unavailable");
	}
	cm_xml_node_free(iq);
}
