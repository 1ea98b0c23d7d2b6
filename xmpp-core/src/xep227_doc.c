/* xep227_doc.c - one XEP-0227 <user/> turned into an import document (xep227.h). The roster,
 * requests, PEP nodes and private XML go through the pieces prosody.c uses (prosody_int.h), so
 * that both importers carry and note alike. */
#include "xep227.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/xml.h"
#include "mam_int.h"
#include "prosody.h"
#include "prosody_int.h"
#include "scram.h"

#define NS_ROSTER       "jabber:iq:roster"
#define NS_PRIVACY      "jabber:iq:privacy"
#define NS_PRIVATE      "jabber:iq:private"
#define NS_VCARD        "vcard-temp"
#define NS_DELAY        "urn:xmpp:delay"
#define NS_PUBSUB       "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER NS_PUBSUB "#owner"
#define NS_MAM          XC_XEP227_NS "#mam"
#define BLOCKED_LIST    "Blocked contacts" /* the privacy list ejabberd keeps XEP-0191's in */

struct conv {
	const char *jid;           /* user@host */
	struct cm_xml_node *scope; /* <stream:stream xmlns='jabber:client'>: offline messages' */
	const char *host;
	json_t *doc;
	json_t *roster, *requests, *pend, *blocked, *offline, *pep;
	struct xc_prosody__private priv; /* private XML (XEP-0049) */
	struct xc_import_notes *notes;
};

/* Element children of n, counted. */
static size_t count_children(const struct cm_xml_node *n)
{
	size_t k = 0;

	for (const struct cm_xml_node *c = cm_xml_child(n, NULL, NULL); c;
	     c = cm_xml_child_next(c, NULL, NULL))
		k++;
	return k;
}

/* The text of n with ASCII whitespace taken out (base64 may be wrapped), decoded into out. */
static int unb64(const char *s, struct cm_buf *out)
{
	struct cm_buf t;
	int rc;

	cm_buf_init(&t, 0);
	for (rc = 0; s && *s && !rc; s++)
		if (!strchr(" \t\r\n", *s))
			rc = cm_buf_append(&t, s, 1);
	out->len = 0;
	rc = rc ? rc : t.len ? cm_crypto_b64_decode(out, t.data, t.len, CM_B64_STD) : -EINVAL;
	cm_buf_free(&t);
	return rc;
}

/* A base64 value of want bytes (or, want 0, 1 to max bytes). ejabberd writes its values as the
 * base64 of their base64: *twice starts at -1, and the first value with a length to check
 * decides whether each is decoded once (0) or twice (1). */
static int value(const struct cm_xml_node *sc, const char *name, size_t want, size_t max,
                 int *twice, struct cm_buf *out)
{
	const struct cm_xml_node *e = cm_xml_child(sc, name, XC_XEP227_NS_SCRAM);
	struct cm_buf once;
	int rc;

	if (!e || !cm_xml_text(e))
		return -EINVAL;
	cm_buf_init(&once, 0);
	rc = unb64(cm_xml_text(e), &once);
	if (!rc && *twice == -1 && want)
		*twice = once.len != want;
	if (!rc && *twice == 1)
		rc = unb64(once.data, out);
	else if (!rc)
		rc = cm_buf_append(out, once.data, once.len);
	if (once.data)
		cm_crypto_wipe(once.data, once.cap);
	cm_buf_free(&once);
	if (!rc && (want ? out->len != want : out->len == 0 || out->len > max))
		rc = -EINVAL;
	return rc;
}

/* One <scram-credentials/> into creds, an object of the document's "scram". */
static int scram_creds(struct conv *cv, const struct cm_xml_node *sc, json_t *creds, char *err,
                       size_t errlen)
{
	const char *mech = cm_xml_attr(sc, "mechanism");
	const struct cm_xml_node *it = cm_xml_child(sc, "iter-count", XC_XEP227_NS_SCRAM);
	struct cm_buf stored, server, salt;
	size_t hlen;
	long long iter;
	char *end = NULL;
	int twice = -1, rc;
	json_t *o;

	if (!mech || (strcmp(mech, "SCRAM-SHA-1") && strcmp(mech, "SCRAM-SHA-256")))
		return xc_import_note(cv->notes, "%s: credentials of mechanism %s left behind",
		                      cv->jid, mech ? mech : "(none)");
	hlen = strcmp(mech, "SCRAM-SHA-1") ? 32 : 20;
	iter = it && cm_xml_text(it) ? strtoll(cm_xml_text(it), &end, 10) : 0;
	if (!end || end == cm_xml_text(it) || *end || iter < 1 || iter > XC_IMPORT_MAX_ITERATIONS)
		return cm_errf(err, errlen, -EINVAL, "%s: <iter-count/> must be 1 to %d", mech,
		               XC_IMPORT_MAX_ITERATIONS);
	cm_buf_init(&stored, 0);
	cm_buf_init(&server, 0);
	cm_buf_init(&salt, 0);
	rc = value(sc, "stored-key", hlen, 0, &twice, &stored);
	if (rc == -EINVAL)
		rc = cm_errf(err, errlen, -EINVAL, "%s: <stored-key/> must be %zu bytes in base64",
		             mech, hlen);
	if (!rc && (rc = value(sc, "server-key", hlen, 0, &twice, &server)) == -EINVAL)
		rc = cm_errf(err, errlen, -EINVAL, "%s: <server-key/> must be %zu bytes in base64",
		             mech, hlen);
	if (!rc && (rc = value(sc, "salt", 0, XC_SCRAM_SALT_MAX, &twice, &salt)) == -EINVAL)
		rc = cm_errf(err, errlen, -EINVAL, "%s: <salt/> must be 1 to %d bytes in base64",
		             mech, XC_SCRAM_SALT_MAX);
	if (!rc) {
		o = json_pack("{sI so so so}", "iterations", (json_int_t)iter, "salt",
		              xc_import_b64(salt.data, salt.len), "stored_key",
		              xc_import_b64(stored.data, stored.len), "server_key",
		              xc_import_b64(server.data, server.len));
		rc = !o || json_object_set_new(creds, mech, o) ? -ENOMEM : 0;
	}
	if (stored.data)
		cm_crypto_wipe(stored.data, stored.cap);
	if (server.data)
		cm_crypto_wipe(server.data, server.cap);
	cm_buf_free(&stored);
	cm_buf_free(&server);
	cm_buf_free(&salt);
	return rc;
}

/* The password attribute, else the SCRAM keys. */
static int credentials(struct conv *cv, const struct cm_xml_node *user, char *err, size_t errlen)
{
	const char *pw = cm_xml_attr(user, "password");
	json_t *creds;
	int rc = 0;

	if (pw && *pw)
		return json_object_set_new(cv->doc, "password", json_string(pw)) ? -ENOMEM : 0;
	if (!(creds = json_object()))
		return -ENOMEM;
	for (const struct cm_xml_node *sc =
	         cm_xml_child(user, "scram-credentials", XC_XEP227_NS_SCRAM);
	     sc && !rc; sc = cm_xml_child_next(sc, "scram-credentials", XC_XEP227_NS_SCRAM))
		rc = scram_creds(cv, sc, creds, err, errlen);
	if (!rc && json_object_size(creds) == 0)
		rc =
		    cm_errf(err, errlen, -EINVAL,
		            "neither a password nor SCRAM-SHA-1 or SCRAM-SHA-256 keys are written");
	if (!rc && json_object_set(cv->doc, "scram", creds))
		rc = -ENOMEM;
	json_decref(creds);
	return rc;
}

/* jabber:iq:roster's items, in Prosody's shape, through the roster piece prosody.c uses. */
static int roster(struct conv *cv, const struct cm_xml_node *q)
{
	int rc = 0;

	for (const struct cm_xml_node *it = cm_xml_child(q, "item", NS_ROSTER); it && !rc;
	     it = cm_xml_child_next(it, "item", NS_ROSTER)) {
		const char *jid = cm_xml_attr(it, "jid"), *sub = cm_xml_attr(it, "subscription");
		const char *ask = cm_xml_attr(it, "ask"), *name = cm_xml_attr(it, "name");
		const char *appr = cm_xml_attr(it, "approved");
		json_t *v, *groups = json_array();

		if (!jid || !*jid) {
			json_decref(groups);
			rc = xc_import_note(cv->notes,
			                    "%s: a roster item without a jid left behind", cv->jid);
			continue;
		}
		for (const struct cm_xml_node *g = cm_xml_child(it, "group", NS_ROSTER);
		     g && groups; g = cm_xml_child_next(g, "group", NS_ROSTER))
			if (cm_xml_text(g) && *cm_xml_text(g) &&
			    json_array_append_new(groups, json_string(cm_xml_text(g))))
				rc = -ENOMEM;
		v = json_pack("{ss so sb}", "subscription", sub ? sub : "none", "groups", groups,
		              "approved", appr && (!strcmp(appr, "true") || !strcmp(appr, "1")));
		if (v && ask && json_object_set_new(v, "ask", json_string(ask)))
			rc = -ENOMEM;
		if (v && name && json_object_set_new(v, "name", json_string(name)))
			rc = -ENOMEM;
		rc = rc   ? rc
		     : !v ? -ENOMEM
		          : xc_prosody__roster_item(cv->roster, jid, v, cv->jid, cv->notes);
		json_decref(v);
	}
	return rc;
}

/* A privacy list's items that block a JID outright (all stanzas: no child) are the block list
 * when the list is ejabberd's for XEP-0191 or the default one; every other rule is noted. */
static int privacy(struct conv *cv, const struct cm_xml_node *q)
{
	const struct cm_xml_node *def = cm_xml_child(q, "default", NS_PRIVACY);
	const char *defname = def ? cm_xml_attr(def, "name") : NULL;
	size_t left = 0, lists = 0;
	int rc = 0;

	for (const struct cm_xml_node *l = cm_xml_child(q, "list", NS_PRIVACY); l && !rc;
	     l = cm_xml_child_next(l, "list", NS_PRIVACY)) {
		const char *name = cm_xml_attr(l, "name");
		bool blocking =
		    name && (!strcmp(name, BLOCKED_LIST) || (defname && !strcmp(name, defname)));
		size_t before = left;

		for (const struct cm_xml_node *it = cm_xml_child(l, "item", NS_PRIVACY); it && !rc;
		     it = cm_xml_child_next(it, "item", NS_PRIVACY)) {
			const char *type = cm_xml_attr(it, "type"), *val = cm_xml_attr(it, "value");
			const char *action = cm_xml_attr(it, "action");

			if (blocking && type && !strcmp(type, "jid") && val && *val && action &&
			    !strcmp(action, "deny") && !cm_xml_child(it, NULL, NULL))
				rc = json_array_append_new(cv->blocked, json_string(val)) ? -ENOMEM
				                                                          : 0;
			else
				left++;
		}
		lists += left > before;
	}
	if (!rc && left)
		rc = xc_import_note(cv->notes,
		                    "%s: %zu privacy rule(s) of %zu list(s) left behind (xmpp-core "
		                    "keeps block lists, XEP-0191: only rules that block a JID "
		                    "outright come over)",
		                    cv->jid, left, lists);
	return rc;
}

/* <presence type='subscribe'/>: a request the user has not answered. */
static int request(struct conv *cv, const struct cm_xml_node *p)
{
	const char *type = cm_xml_attr(p, "type"), *from = cm_xml_attr(p, "from");

	if (!type || strcmp(type, "subscribe") || !from || !*from)
		return xc_import_note(
		    cv->notes, "%s: a <presence/> that is not a request left behind", cv->jid);
	return json_object_set_new(cv->pend, from, json_true()) ? -ENOMEM : 0;
}

/* The stamp of an offline message, Unix ms within what the import takes: the first the server
 * itself wrote (a <delay/> from its host, or from no one), else the first from elsewhere, else
 * now. The server's own go (delivery adds ours); those from elsewhere stay. */
static int64_t offline_stamp(struct conv *cv, struct cm_xml_node *m)
{
	struct cm_xml_node *d = cm_xml_child(m, "delay", NS_DELAY), *next;
	int64_t ms, ours = -1, other = -1;

	for (; d; d = next) {
		const char *from = cm_xml_attr(d, "from");
		bool server = !from || !strcmp(from, cv->host);

		next = cm_xml_child_next(d, "delay", NS_DELAY);
		if (xc_mam__parse_time(cm_xml_attr(d, "stamp"), &ms) == 0) {
			ms = ms < 0 ? 0 : ms > XC_IMPORT_MAX_STAMP_MS ? XC_IMPORT_MAX_STAMP_MS : ms;
			if (server && ours < 0)
				ours = ms;
			else if (!server && other < 0)
				other = ms;
		}
		if (server)
			cm_xml_node_free(d);
	}
	return ours >= 0 ? ours : other >= 0 ? other : (int64_t)time(NULL) * 1000;
}

/* <offline-messages/>: each <message/> (in jabber:client; one written in the format's namespace
 * is moved there) to the account, with when it came. */
static int offline(struct conv *cv, const struct cm_xml_node *om)
{
	int rc = 0;

	for (const struct cm_xml_node *m = cm_xml_child(om, NULL, NULL); m && !rc;
	     m = cm_xml_child_next(m, NULL, NULL)) {
		struct cm_xml_node *c = NULL;
		struct cm_buf b;
		int64_t ms;

		if (strcmp(m->name, "message") ||
		    (strcmp(m->ns, CM_XML_NS_CLIENT) && strcmp(m->ns, XC_XEP227_NS))) {
			rc = xc_import_note(cv->notes, "%s: an offline <%s/> (%s) left behind",
			                    cv->jid, m->name, m->ns);
			continue;
		}
		if ((rc = cm_xml_node_copy(&c, m)) != 0)
			break;
		if (!strcmp(c->ns, XC_XEP227_NS))
			cm_xml_node_rename_ns(c, XC_XEP227_NS, CM_XML_NS_CLIENT);
		cm_xml_node_undeclare_ns(c, NULL);
		ms = offline_stamp(cv, c);
		if (!cm_xml_attr(c, "to"))
			rc = cm_xml_node_set_attr(c, "to", cv->jid);
		cm_buf_init(&b, 0);
		/* as a client stream holds it: what has no namespace says so (xmlns='') */
		rc = rc ? rc : cm_xml_write(&b, c, cv->scope);
		if (!rc &&
		    json_array_append_new(cv->offline, json_pack("{sI ss}", "stamp_ms",
		                                                 (json_int_t)ms, "stanza", b.data)))
			rc = -ENOMEM;
		if (rc == -EINVAL || rc == -ENOBUFS)
			rc = xc_import_note(
			    cv->notes, "%s: an offline message our writer cannot write left behind",
			    cv->jid);
		cm_buf_free(&b);
		cm_xml_node_free(c);
	}
	return rc;
}

/* n written as a root into a new JSON string, or NULL (*rc: -ENOMEM, or 0 and noted). */
static json_t *written(struct conv *cv, const struct cm_xml_node *n, const char *what, int *rc)
{
	struct cm_buf b;
	json_t *s = NULL;
	int r;

	cm_buf_init(&b, 0);
	r = cm_xml_write(&b, n, NULL);
	if (!r && !(s = json_string(b.data)))
		r = -ENOMEM;
	cm_buf_free(&b);
	*rc = r == -ENOMEM ? r
	      : r ? xc_import_note(cv->notes, "%s: %s our writer cannot write left behind", cv->jid,
	                           what)
	          : 0;
	return s;
}

/* The first data form field var's values: one string, or (list) an array of all. */
static json_t *form_value(const struct cm_xml_node *form, const char *var, bool list)
{
	for (const struct cm_xml_node *f = cm_xml_child(form, "field", CM_XML_NS_DATA); f;
	     f = cm_xml_child_next(f, "field", CM_XML_NS_DATA)) {
		json_t *a;

		if (!cm_xml_attr(f, "var") || strcmp(cm_xml_attr(f, "var"), var))
			continue;
		if (!list) {
			const struct cm_xml_node *v = cm_xml_child(f, "value", CM_XML_NS_DATA);

			return v && cm_xml_text(v) ? json_string(cm_xml_text(v)) : NULL;
		}
		a = json_array();
		for (const struct cm_xml_node *v = cm_xml_child(f, "value", CM_XML_NS_DATA); v && a;
		     v = cm_xml_child_next(v, "value", CM_XML_NS_DATA))
			if (cm_xml_text(v) &&
			    json_array_append_new(a, json_string(cm_xml_text(v)))) {
				json_decref(a);
				a = NULL;
			}
		return a;
	}
	return NULL;
}

/* A node's configuration form in Prosody's names (what xc_prosody__pep_node() reads). */
static json_t *node_config(const struct cm_xml_node *user, const char *node)
{
	const struct cm_xml_node *form = NULL;
	json_t *cfg, *v;

	for (const struct cm_xml_node *o = cm_xml_child(user, "pubsub", NS_PUBSUB_OWNER);
	     o && !form; o = cm_xml_child_next(o, "pubsub", NS_PUBSUB_OWNER))
		for (const struct cm_xml_node *c = cm_xml_child(o, "configure", NS_PUBSUB_OWNER);
		     c && !form; c = cm_xml_child_next(c, "configure", NS_PUBSUB_OWNER))
			if (cm_xml_attr(c, "node") && !strcmp(cm_xml_attr(c, "node"), node))
				form = cm_xml_child(c, "x", CM_XML_NS_DATA);
	if (!form || !(cfg = json_object()))
		return NULL;
	if ((v = form_value(form, "pubsub#access_model", false)) != NULL)
		json_object_set_new(cfg, "access_model", v);
	if ((v = form_value(form, "pubsub#persist_items", false)) != NULL) {
		const char *s = json_string_value(v);

		json_object_set_new(cfg, "persist_items",
		                    json_boolean(!strcmp(s, "1") || !strcmp(s, "true")));
		json_decref(v);
	}
	if ((v = form_value(form, "pubsub#max_items", false)) != NULL) {
		const char *s = json_string_value(v);
		char *end = NULL;
		long long n = strtoll(s, &end, 10);

		if (!strcmp(s, "max"))
			json_object_set(cfg, "max_items", v);
		else if (end != s && !*end && n > 0)
			json_object_set_new(cfg, "max_items", json_integer(n));
		json_decref(v);
	}
	if ((v = form_value(form, "pubsub#roster_groups_allowed", true)) != NULL)
		json_object_set_new(cfg, "roster_groups_allowed", v);
	return cfg;
}

/* One <items node=''/>: the node, configured as the user's <pubsub#owner/> says, with its items
 * (oldest first). */
static int pep_items(struct conv *cv, const struct cm_xml_node *user, const struct cm_xml_node *its)
{
	const char *name = cm_xml_attr(its, "node");
	json_t *cfg, *node;
	int rc = 0;

	if (!name || !*name)
		return xc_import_note(cv->notes, "%s: PEP items without a node left behind",
		                      cv->jid);
	cfg = node_config(user, name);
	node = xc_prosody__pep_node(name, cfg, cv->jid, cv->notes, &rc);
	json_decref(cfg);
	if (!node)
		return rc;
	for (const struct cm_xml_node *it = cm_xml_child(its, "item", NS_PUBSUB); it && !rc;
	     it = cm_xml_child_next(it, "item", NS_PUBSUB)) {
		const struct cm_xml_node *payload = cm_xml_child(it, NULL, NULL);
		const char *id = cm_xml_attr(it, "id");
		json_t *p;

		if (!id || !payload || count_children(it) != 1) {
			rc = xc_import_note(
			    cv->notes,
			    "%s: PEP node %s: an item without an id or one payload left "
			    "behind",
			    cv->jid, name);
			continue;
		}
		if ((p = written(cv, payload, "a PEP payload", &rc)) != NULL &&
		    json_array_append_new(json_object_get(node, "items"),
		                          json_pack("{ss so}", "id", id, "payload", p)))
			rc = -ENOMEM;
	}
	if (rc) {
		json_decref(node);
		return rc;
	}
	return json_array_append_new(cv->pep, node) ? -ENOMEM : 0;
}

/* Whether some <items/> of the user's <pubsub/> elements is node's. */
static bool has_items(const struct cm_xml_node *user, const char *node)
{
	for (const struct cm_xml_node *ps = cm_xml_child(user, "pubsub", NS_PUBSUB); ps;
	     ps = cm_xml_child_next(ps, "pubsub", NS_PUBSUB))
		for (const struct cm_xml_node *its = cm_xml_child(ps, "items", NS_PUBSUB); its;
		     its = cm_xml_child_next(its, "items", NS_PUBSUB))
			if (cm_xml_attr(its, "node") && !strcmp(cm_xml_attr(its, "node"), node))
				return true;
	return false;
}

/* PEP: each <items node=''/> of the <pubsub/> elements, configured by <pubsub#owner/>'s
 * <configure/>; a node configured without items is noted (nothing to carry). */
static int pep(struct conv *cv, const struct cm_xml_node *user)
{
	int rc = 0;

	for (const struct cm_xml_node *ps = cm_xml_child(user, "pubsub", NS_PUBSUB); ps && !rc;
	     ps = cm_xml_child_next(ps, "pubsub", NS_PUBSUB))
		for (const struct cm_xml_node *its = cm_xml_child(ps, "items", NS_PUBSUB);
		     its && !rc; its = cm_xml_child_next(its, "items", NS_PUBSUB))
			rc = pep_items(cv, user, its);
	for (const struct cm_xml_node *o = cm_xml_child(user, "pubsub", NS_PUBSUB_OWNER); o && !rc;
	     o = cm_xml_child_next(o, "pubsub", NS_PUBSUB_OWNER))
		for (const struct cm_xml_node *c = cm_xml_child(o, "configure", NS_PUBSUB_OWNER);
		     c && !rc; c = cm_xml_child_next(c, "configure", NS_PUBSUB_OWNER)) {
			const char *name = cm_xml_attr(c, "node");

			if (!name || !has_items(user, name))
				rc = xc_import_note(cv->notes,
				                    "%s: PEP node %s has no items: not carried",
				                    cv->jid, name ? name : "(no name)");
		}
	return rc ? rc : xc_prosody__pep_trim(cv->pep, cv->jid, cv->notes);
}

/* <query xmlns='jabber:iq:private'/>: each element kept in private XML storage (XEP-0049),
 * through the piece prosody.c takes mod_private's rows with. Text between them is layout. */
static int private_xml(struct conv *cv, const struct cm_xml_node *q)
{
	int rc = 0;

	for (const struct cm_xml_node *el = cm_xml_child(q, NULL, NULL); el && !rc;
	     el = cm_xml_child_next(el, NULL, NULL))
		rc = xc_prosody__private_add(&cv->priv, el);
	return rc;
}

/* Every child of <user/>, each to its place or into the notes. */
static int children(struct conv *cv, const struct cm_xml_node *user)
{
	int rc = 0;
	bool vcard = false;

	for (const struct cm_xml_node *c = cm_xml_child(user, NULL, NULL); c && !rc;
	     c = cm_xml_child_next(c, NULL, NULL)) {
		const char *ns = c->ns, *name = c->name;

		if (!strcmp(name, "scram-credentials") && !strcmp(ns, XC_XEP227_NS_SCRAM))
			continue; /* read by credentials() */
		if (!strcmp(name, "query") && !strcmp(ns, NS_ROSTER))
			rc = roster(cv, c);
		else if (!strcmp(name, "query") && !strcmp(ns, NS_PRIVACY))
			rc = privacy(cv, c);
		else if (!strcmp(name, "presence") &&
		         (!strcmp(ns, CM_XML_NS_CLIENT) || !strcmp(ns, XC_XEP227_NS)))
			rc = request(cv, c);
		else if (!strcmp(name, "offline-messages") && !strcmp(ns, XC_XEP227_NS))
			rc = offline(cv, c);
		else if (!strcmp(name, "vCard") && !strcmp(ns, NS_VCARD) && !vcard) {
			json_t *v = written(cv, c, "the vCard", &rc);

			vcard = true;
			if (v && json_object_set_new(cv->doc, "vcard", v))
				rc = -ENOMEM;
		} else if (!strcmp(name, "pubsub") &&
		           (!strcmp(ns, NS_PUBSUB) || !strcmp(ns, NS_PUBSUB_OWNER)))
			continue; /* read by pep() */
		else if (!strcmp(name, "query") && !strcmp(ns, NS_PRIVATE))
			rc = private_xml(cv, c);
		else if (!strcmp(name, "archive") && !strcmp(ns, NS_MAM))
			continue; /* the archive route's, after the account (xc_xep227_archive()) */
		else
			rc = xc_import_note(cv->notes, "%s: <%s xmlns='%s'/> left behind", cv->jid,
			                    name, ns);
	}
	return rc;
}

/* The payload of the newest item of PEP node name in the document's "pep", or NULL. */
static const char *newest_payload(const json_t *pep, const char *name)
{
	for (size_t i = 0; i < json_array_size(pep); i++) {
		const json_t *n = json_array_get(pep, i), *its = json_object_get(n, "items");

		if (!strcmp(json_string_value(json_object_get(n, "node")), name) &&
		    json_array_size(its))
			return json_string_value(json_object_get(
			    json_array_get(its, json_array_size(its) - 1), "payload"));
	}
	return NULL;
}

/* Without a vcard-temp vCard, one made from the vCard4 and avatar in PEP, as Prosody's
 * mod_vcard_legacy keeps them (and as import-prosody makes it). */
static int vcard_from_pep(struct conv *cv)
{
	char *xml = NULL;
	int rc;

	if (json_object_get(cv->doc, "vcard"))
		return 0;
	rc = xc_prosody__vcard_from_pep(newest_payload(cv->pep, "urn:xmpp:vcard4"),
	                                newest_payload(cv->pep, "urn:xmpp:avatar:data"),
	                                newest_payload(cv->pep, "urn:xmpp:avatar:metadata"), &xml);
	if (rc == -EINVAL)
		return xc_import_note(
		    cv->notes,
		    "%s: no vcard-temp vCard made from the vCard4: it is not one this "
		    "reader can take",
		    cv->jid);
	if (!rc && xml && json_object_set_new(cv->doc, "vcard", json_string(xml)))
		rc = -ENOMEM;
	free(xml);
	return rc;
}

int xc_xep227_doc(const char *host, const struct cm_xml_node *user, char **doc,
                  struct xc_import_notes *notes, char *err, size_t errlen)
{
	const char *name = cm_xml_attr(user, "name");
	struct conv cv = {.host = host, .notes = notes};
	char *jid = NULL;
	int rc;

	*doc = NULL;
	if (!name || !*name)
		return cm_errf(err, errlen, -EINVAL, "a <user/> without a name");
	if (strpbrk(name, "@/"))
		return cm_errf(err, errlen, -EINVAL,
		               "a <user/> named \"%.64s\": a JID's local part has no '@' or '/'",
		               name);
	if (asprintf(&jid, "%s@%s", name, host) < 0)
		return -ENOMEM;
	cv.jid = jid;
	cv.doc = json_pack("{ss}", "jid", jid);
	cv.roster = json_array();
	cv.requests = json_array();
	cv.pend = json_object();
	cv.blocked = json_array();
	cv.offline = json_array();
	cv.pep = json_array();
	if (cm_xml_node_new(&cv.scope, "stream:stream", CM_XML_NS_STREAM) != 0 ||
	    cm_xml_node_declare_ns(cv.scope, NULL, CM_XML_NS_CLIENT) != 0) {
		cm_xml_node_free(cv.scope);
		cv.scope = NULL;
	}
	rc = !cv.scope || !cv.doc || !cv.roster || !cv.requests || !cv.pend || !cv.blocked ||
	             !cv.offline || !cv.pep
	         ? -ENOMEM
	         : credentials(&cv, user, err, errlen);
	rc = rc ? rc : children(&cv, user);
	rc = rc ? rc : pep(&cv, user);
	rc = rc ? rc : vcard_from_pep(&cv);
	rc = rc ? rc : xc_prosody__pending(cv.roster, cv.requests, cv.pend, jid, notes);
	rc = rc ? rc : xc_prosody__private_put(&cv.priv, cv.doc, jid, notes);
	if (!rc &&
	    ((json_array_size(cv.roster) && json_object_set(cv.doc, "roster", cv.roster)) ||
	     (json_array_size(cv.requests) && json_object_set(cv.doc, "requests", cv.requests)) ||
	     (json_array_size(cv.blocked) && json_object_set(cv.doc, "blocklist", cv.blocked)) ||
	     (json_array_size(cv.offline) && json_object_set(cv.doc, "offline", cv.offline)) ||
	     (json_array_size(cv.pep) && json_object_set(cv.doc, "pep", cv.pep))))
		rc = -ENOMEM;
	if (!rc && !(*doc = json_dumps(cv.doc, JSON_COMPACT)))
		rc = -ENOMEM;
	json_decref(cv.roster);
	json_decref(cv.requests);
	json_decref(cv.pend);
	json_decref(cv.blocked);
	json_decref(cv.offline);
	json_decref(cv.pep);
	xc_prosody__private_close(&cv.priv);
	json_decref(cv.doc);
	cm_xml_node_free(cv.scope);
	free(jid);
	return rc;
}

/* --- the message archive (<archive xmlns='urn:xmpp:pie:0#mam'/>) --------------------------- */

#define NS_MAM2    "urn:xmpp:mam:2"
#define NS_FORWARD "urn:xmpp:forward:0"

/* One <result/>: its message written as text, as the cutter reads Prosody's rows, and when it
 * was archived (Unix seconds, the cutter's unit). 0, -EINVAL (no message or time), -ENOMEM. */
static int archive_item(const struct cm_xml_node *result, struct cm_buf *b, long long *when)
{
	const struct cm_xml_node *fwd = cm_xml_child(result, "forwarded", NS_FORWARD);
	const struct cm_xml_node *delay = fwd ? cm_xml_child(fwd, "delay", NS_DELAY) : NULL;
	const struct cm_xml_node *msg = fwd ? cm_xml_child(fwd, "message", CM_XML_NS_CLIENT) : NULL;
	int64_t ms;

	if (!msg || !delay || xc_mam__parse_time(cm_xml_attr(delay, "stamp"), &ms) != 0 || ms < 0)
		return -EINVAL;
	*when = (long long)(ms / 1000);
	cm_buf_reset(b);
	return cm_xml_write(b, msg, NULL) == -ENOMEM ? -ENOMEM : 0;
}

int xc_xep227_archive(const struct cm_xml_node *archive, struct xc_prosody_mam *m, size_t *skipped)
{
	struct cm_buf b;
	int rc = 0;

	*skipped = 0;
	cm_buf_init(&b, 0);
	for (const struct cm_xml_node *r = cm_xml_child(archive, "result", NS_MAM2); r && !rc;
	     r = cm_xml_child_next(r, "result", NS_MAM2)) {
		struct xc_prosody_item it = {XC_PROSODY_MAM_STORE, cm_xml_attr(r, "id"), 0, "xml",
		                             ""};

		rc = archive_item(r, &b, &it.when);
		if (rc == -EINVAL || (!rc && !b.data)) {
			(*skipped)++;
			rc = 0;
			continue;
		}
		it.key = it.key ? it.key : "";
		it.value = b.data;
		rc = rc ? rc : xc_prosody_mam_add(m, &it);
	}
	cm_buf_free(&b);
	return rc ? rc : xc_prosody_mam_end(m);
}
