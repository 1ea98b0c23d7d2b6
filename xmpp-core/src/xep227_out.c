/* xep227_out.c - an account's import document (import.h) written as an XEP-0227 file, for
 * xmppctl export-xep227 (xep227.h): the shapes xep227.c reads, which are those ejabberd and
 * Prosody write, so that the file can go to either as well as come back here. */
#include "xep227.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/xml.h"
#include "mam_int.h"
#include "stanza.h"

#define NS_ROSTER       "jabber:iq:roster"
#define NS_PRIVACY      "jabber:iq:privacy"
#define NS_PRIVATE      "jabber:iq:private"
#define NS_VCARD        "vcard-temp"
#define NS_DELAY        "urn:xmpp:delay"
#define NS_PUBSUB       "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER NS_PUBSUB "#owner"
#define BLOCKED_LIST    "Blocked contacts"

/* A child element with text. */
static int text_child(struct cm_xml_node *parent, const char *name, const char *ns,
                      const char *text)
{
	struct cm_xml_node *c;
	int rc = cm_xml_node_new_child(&c, parent, name, ns);

	return rc ? rc : cm_xml_node_add_text(c, text, strlen(text));
}

/* An element written as text in the document (a stanza, a payload) parsed and put under
 * parent. -EINVAL when it does not parse. */
static int xml_child(struct cm_xml_node *parent, const char *text, struct cm_xml_node **out)
{
	struct cm_xml_node *x = NULL;
	int rc = text ? xc_stanza_parse(text, strlen(text), &x) : -EINVAL;

	if (rc)
		return rc == -ENOMEM ? rc : -EINVAL;
	if ((rc = cm_xml_node_add_child(parent, x)) != 0) {
		cm_xml_node_free(x);
		return rc;
	}
	if (out)
		*out = x;
	return 0;
}

/* A SCRAM value's text: its base64, or (ejabberd) the base64 of that. */
static int scram_text(struct cm_xml_node *sc, const char *name, const char *b64, bool twice)
{
	struct cm_buf b;
	int rc;

	if (!twice)
		return text_child(sc, name, NULL, b64 ? b64 : "");
	cm_buf_init(&b, 0);
	rc = b64 ? cm_crypto_b64_encode(&b, b64, strlen(b64), CM_B64_STD) : 0;
	rc = rc ? rc : text_child(sc, name, NULL, b.data ? b.data : "");
	cm_buf_free(&b);
	return rc;
}

static int credentials(struct cm_xml_node *user, const json_t *scram, bool twice)
{
	const char *mech;
	json_t *k;
	int rc = 0;

	json_object_foreach((json_t *)scram, mech, k)
	{
		struct cm_xml_node *sc;
		char iter[24];

		snprintf(iter, sizeof(iter), "%lld",
		         (long long)json_integer_value(json_object_get(k, "iterations")));
		rc = cm_xml_node_new_child(&sc, user, "scram-credentials", XC_XEP227_NS_SCRAM);
		rc = rc ? rc : cm_xml_node_set_attr(sc, "mechanism", mech);
		rc = rc ? rc : text_child(sc, "iter-count", NULL, iter);
		rc = rc ? rc
		        : scram_text(sc, "salt", json_string_value(json_object_get(k, "salt")),
		                     twice);
		rc = rc ? rc
		        : scram_text(sc, "server-key",
		                     json_string_value(json_object_get(k, "server_key")), twice);
		rc = rc ? rc
		        : scram_text(sc, "stored-key",
		                     json_string_value(json_object_get(k, "stored_key")), twice);
		if (rc)
			break;
	}
	return rc;
}

/* A request not answered, as <presence type='subscribe'/>. */
static int request(struct cm_xml_node *user, const char *from, const char *to)
{
	struct cm_xml_node *p;
	int rc = cm_xml_node_new_child(&p, user, "presence", CM_XML_NS_CLIENT);

	rc = rc ? rc : cm_xml_node_set_attr(p, "type", "subscribe");
	rc = rc ? rc : cm_xml_node_set_attr(p, "from", from);
	return rc ? rc : cm_xml_node_set_attr(p, "to", to);
}

static int roster(struct cm_xml_node *user, const json_t *doc, const char *jid)
{
	const json_t *items = json_object_get(doc, "roster");
	const json_t *reqs = json_object_get(doc, "requests");
	struct cm_xml_node *q;
	int rc = 0;

	if (json_array_size(items) && (rc = cm_xml_node_new_child(&q, user, "query", NS_ROSTER)))
		return rc;
	for (size_t i = 0; i < json_array_size(items) && !rc; i++) {
		const json_t *it = json_array_get(items, i),
		             *groups = json_object_get(it, "groups");
		const char *name = json_string_value(json_object_get(it, "name"));
		struct cm_xml_node *x;

		rc = cm_xml_node_new_child(&x, q, "item", NULL);
		rc = rc ? rc
		        : cm_xml_node_set_attr(x, "jid",
		                               json_string_value(json_object_get(it, "jid")));
		rc = rc ? rc
		        : cm_xml_node_set_attr(
		              x, "subscription",
		              json_string_value(json_object_get(it, "subscription")));
		if (!rc && name)
			rc = cm_xml_node_set_attr(x, "name", name);
		if (!rc && json_is_true(json_object_get(it, "ask")))
			rc = cm_xml_node_set_attr(x, "ask", "subscribe");
		if (!rc && json_is_true(json_object_get(it, "approved")))
			rc = cm_xml_node_set_attr(x, "approved", "true");
		for (size_t g = 0; g < json_array_size(groups) && !rc; g++)
			rc = text_child(x, "group", NULL,
			                json_string_value(json_array_get(groups, g)));
	}
	for (size_t i = 0; i < json_array_size(items) && !rc; i++)
		if (json_is_true(json_object_get(json_array_get(items, i), "pending_in")))
			rc = request(
			    user,
			    json_string_value(json_object_get(json_array_get(items, i), "jid")),
			    jid);
	for (size_t i = 0; i < json_array_size(reqs) && !rc; i++)
		rc = request(user, json_string_value(json_array_get(reqs, i)), jid);
	return rc;
}

/* The block list as ejabberd keeps it: a privacy list of its own, the default one. */
static int blocklist(struct cm_xml_node *user, const json_t *list)
{
	struct cm_xml_node *q, *d, *l;
	int rc;

	if (!json_array_size(list))
		return 0;
	rc = cm_xml_node_new_child(&q, user, "query", NS_PRIVACY);
	rc = rc ? rc : cm_xml_node_new_child(&d, q, "default", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(d, "name", BLOCKED_LIST);
	rc = rc ? rc : cm_xml_node_new_child(&l, q, "list", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(l, "name", BLOCKED_LIST);
	for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
		struct cm_xml_node *it;
		char order[24];

		snprintf(order, sizeof(order), "%zu", i + 1);
		rc = cm_xml_node_new_child(&it, l, "item", NULL);
		rc = rc ? rc : cm_xml_node_set_attr(it, "type", "jid");
		rc = rc ? rc
		        : cm_xml_node_set_attr(it, "value",
		                               json_string_value(json_array_get(list, i)));
		rc = rc ? rc : cm_xml_node_set_attr(it, "action", "deny");
		rc = rc ? rc : cm_xml_node_set_attr(it, "order", order);
	}
	return rc;
}

/* Offline messages, each with the <delay/> of when it was kept (as ejabberd writes them). */
static int offline(struct cm_xml_node *user, const json_t *list, const char *host)
{
	struct cm_xml_node *om;
	int rc;

	if (!json_array_size(list))
		return 0;
	if ((rc = cm_xml_node_new_child(&om, user, "offline-messages", NULL)) != 0)
		return rc;
	for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
		const json_t *m = json_array_get(list, i);
		struct cm_xml_node *x, *d;
		char stamp[40];

		rc = xml_child(om, json_string_value(json_object_get(m, "stanza")), &x);
		if (rc)
			break;
		xc_mam__format_time((int64_t)json_integer_value(json_object_get(m, "stamp_ms")),
		                    stamp, sizeof(stamp));
		rc = cm_xml_node_new_child(&d, x, "delay", NS_DELAY);
		rc = rc ? rc : cm_xml_node_set_attr(d, "from", host);
		rc = rc ? rc : cm_xml_node_set_attr(d, "stamp", stamp);
		rc = rc ? rc : cm_xml_node_add_text(d, "Offline storage", 15);
	}
	return rc;
}

/* Private XML (XEP-0049): the elements (each in its own namespace, by namespace) in one
 * <query xmlns='jabber:iq:private'/>, where XEP-0227 puts them and ejabberd's import_piefxis
 * and Prosody's xep0227 store read them. */
static int private_xml(struct cm_xml_node *user, const json_t *list)
{
	struct cm_xml_node *q;
	int rc;

	if (!json_array_size(list))
		return 0;
	rc = cm_xml_node_new_child(&q, user, "query", NS_PRIVATE);
	for (size_t i = 0; i < json_array_size(list) && !rc; i++)
		rc = xml_child(q, json_string_value(json_array_get(list, i)), NULL);
	return rc;
}

/* The message archive (not in an import document: xmppctl export-xep227 adds it, as
 * "archive": [{"id", "stamp_ms", "stanza"}], from the archive route) as Prosody's xep0227 store
 * writes it: <archive xmlns='urn:xmpp:pie:0#mam'/> with a <result/> per message, oldest first,
 * each with its time in a <delay/>. */
static int archive(struct cm_xml_node *user, const json_t *list)
{
	struct cm_xml_node *a;
	int rc;

	if (!json_array_size(list))
		return 0;
	rc = cm_xml_node_new_child(&a, user, "archive", XC_XEP227_NS "#mam");
	for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
		const json_t *m = json_array_get(list, i);
		struct cm_xml_node *res, *fwd, *d;
		const char *id = json_string_value(json_object_get(m, "id"));
		char stamp[40];

		xc_mam__format_time((int64_t)json_integer_value(json_object_get(m, "stamp_ms")),
		                    stamp, sizeof(stamp));
		rc = cm_xml_node_new_child(&res, a, "result", "urn:xmpp:mam:2");
		rc = rc ? rc : (id ? cm_xml_node_set_attr(res, "id", id) : 0);
		rc = rc ? rc : cm_xml_node_new_child(&fwd, res, "forwarded", "urn:xmpp:forward:0");
		rc = rc ? rc : cm_xml_node_new_child(&d, fwd, "delay", NS_DELAY);
		rc = rc ? rc : cm_xml_node_set_attr(d, "stamp", stamp);
		rc =
		    rc ? rc : xml_child(fwd, json_string_value(json_object_get(m, "stanza")), NULL);
	}
	return rc;
}

/* A form field with its values. */
static int field(struct cm_xml_node *form, const char *var, const char *const *values, size_t n)
{
	struct cm_xml_node *f;
	int rc = cm_xml_node_new_child(&f, form, "field", NULL);

	rc = rc ? rc : cm_xml_node_set_attr(f, "var", var);
	for (size_t i = 0; i < n && !rc; i++)
		rc = text_child(f, "value", NULL, values[i]);
	return rc;
}

/* One node's configuration as Prosody writes it: <configure node=''><x type='submit'/>. */
static int configure(struct cm_xml_node *owner, const json_t *node)
{
	const json_t *max = json_object_get(node, "max_items");
	const json_t *groups = json_object_get(node, "groups");
	struct cm_xml_node *c, *x;
	const char *v[1];
	char n[24];
	int rc;

	rc = cm_xml_node_new_child(&c, owner, "configure", NULL);
	rc = rc ? rc
	        : cm_xml_node_set_attr(c, "node", json_string_value(json_object_get(node, "node")));
	rc = rc ? rc : cm_xml_node_new_child(&x, c, "x", CM_XML_NS_DATA);
	rc = rc ? rc : cm_xml_node_set_attr(x, "type", "submit");
	v[0] = NS_PUBSUB "#node_config";
	rc = rc ? rc : field(x, "FORM_TYPE", v, 1);
	v[0] = json_string_value(json_object_get(node, "access"));
	rc = rc ? rc : field(x, "pubsub#access_model", v, 1);
	v[0] = json_is_false(json_object_get(node, "persist")) ? "0" : "1";
	rc = rc ? rc : field(x, "pubsub#persist_items", v, 1);
	snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(max));
	v[0] = json_is_string(max) ? json_string_value(max) : n;
	rc = rc ? rc : field(x, "pubsub#max_items", v, 1);
	if (!rc && groups) {
		const char *g[64];
		size_t k = 0;

		for (; k < json_array_size(groups) && k < 64; k++)
			g[k] = json_string_value(json_array_get(groups, k));
		rc = field(x, "pubsub#roster_groups_allowed", g, k);
	}
	return rc;
}

static int pep(struct cm_xml_node *user, const json_t *nodes)
{
	struct cm_xml_node *owner, *ps;
	int rc;

	if (!json_array_size(nodes))
		return 0;
	rc = cm_xml_node_new_child(&owner, user, "pubsub", NS_PUBSUB_OWNER);
	rc = rc ? rc : cm_xml_node_new_child(&ps, user, "pubsub", NS_PUBSUB);
	for (size_t i = 0; i < json_array_size(nodes) && !rc; i++) {
		const json_t *node = json_array_get(nodes, i),
		             *items = json_object_get(node, "items");
		struct cm_xml_node *its;

		rc = configure(owner, node);
		rc = rc ? rc : cm_xml_node_new_child(&its, ps, "items", NULL);
		rc = rc ? rc
		        : cm_xml_node_set_attr(its, "node",
		                               json_string_value(json_object_get(node, "node")));
		for (size_t k = 0; k < json_array_size(items) && !rc; k++) {
			const json_t *it = json_array_get(items, k);
			struct cm_xml_node *x;

			rc = cm_xml_node_new_child(&x, its, "item", NULL);
			rc = rc ? rc
			        : cm_xml_node_set_attr(
			              x, "id", json_string_value(json_object_get(it, "id")));
			rc = rc ? rc
			        : xml_child(x, json_string_value(json_object_get(it, "payload")),
			                    NULL);
		}
	}
	return rc;
}

int xc_xep227_file(const char *doc, unsigned flags, struct cm_buf *out, char *err, size_t errlen)
{
	json_t *d = json_loads(doc, 0, NULL);
	const char *jid = json_string_value(json_object_get(d, "jid")), *at;
	struct cm_xml_node *root = NULL, *host = NULL, *user = NULL;
	char *local = NULL;
	int rc;

	if (!d || !jid || !(at = strchr(jid, '@')) || at == jid || !at[1]) {
		json_decref(d);
		return cm_errf(err, errlen, -EINVAL, "not an account's document");
	}
	if (!(local = strndup(jid, (size_t)(at - jid)))) {
		json_decref(d);
		return -ENOMEM;
	}
	rc = cm_xml_node_new(&root, "server-data", XC_XEP227_NS);
	rc = rc ? rc : cm_xml_node_new_child(&host, root, "host", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(host, "jid", at + 1);
	rc = rc ? rc : cm_xml_node_new_child(&user, host, "user", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(user, "name", local);
	if (!rc && json_object_get(d, "password"))
		rc = cm_xml_node_set_attr(user, "password",
		                          json_string_value(json_object_get(d, "password")));
	rc = rc ? rc : credentials(user, json_object_get(d, "scram"), flags & XC_XEP227_EJABBERD);
	rc = rc ? rc : roster(user, d, jid);
	rc = rc ? rc : blocklist(user, json_object_get(d, "blocklist"));
	rc = rc ? rc : offline(user, json_object_get(d, "offline"), at + 1);
	rc = rc ? rc : private_xml(user, json_object_get(d, "private"));
	if (!rc && json_object_get(d, "vcard"))
		rc = xml_child(user, json_string_value(json_object_get(d, "vcard")), NULL);
	rc = rc ? rc : pep(user, json_object_get(d, "pep"));
	rc = rc ? rc : archive(user, json_object_get(d, "archive"));
	rc = rc ? rc : cm_buf_puts(out, "<?xml version='1.0' encoding='UTF-8'?>\n");
	rc = rc ? rc : cm_xml_write(out, root, NULL);
	rc = rc ? rc : cm_buf_puts(out, "\n");
	if (rc == -EINVAL)
		cm_errf(err, errlen, rc, "%s: its document has an element this writer cannot write",
		        jid);
	cm_xml_node_free(root);
	free(local);
	json_decref(d);
	return rc;
}
