/* prosody.c - Prosody's SQL store read into import documents (prosody.h). */
#include "prosody.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/utf8.h"
#include "cm/xml.h"
#include "import.h"
#include "jid.h"
#include "private.h"
#include "prosody_int.h"
#include "scram.h"
#include "stanza.h"

#define SHA1_LEN 20

/* --- one account's rows ------------------------------------------------------------------- */

/* A time Prosody wrote, in seconds, within what the import takes (years 1970 to 9999). */
static long long stamp_s(long long when)
{
	return when < 0                               ? 0
	       : when > XC_IMPORT_MAX_STAMP_MS / 1000 ? XC_IMPORT_MAX_STAMP_MS / 1000
	                                              : when;
}

/* Text that can go into the document (JSON strings are UTF-8). */
static bool utf8(const char *s)
{
	return cm_utf8_valid(s, strlen(s));
}

/* Lowercase or uppercase hex, exactly want bytes, into out. */
static bool unhex(const char *s, unsigned char *out, size_t want)
{
	if (strlen(s) != 2 * want)
		return false;
	for (size_t i = 0; i < want; i++) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + (size_t)k];
			int d = c >= '0' && c <= '9'   ? c - '0'
			        : c >= 'a' && c <= 'f' ? c - 'a' + 10
			        : c >= 'A' && c <= 'F' ? c - 'A' + 10
			                               : -1;

			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return true;
}

struct account_rows {
	const char *password, *salt, *iter, *stored, *server;
};

/* The credentials into doc: the password when Prosody kept it, else the SCRAM-SHA-1 keys. */
static int credentials(json_t *doc, const struct account_rows *a, char *err, size_t errlen)
{
	unsigned char stored[SHA1_LEN], server[SHA1_LEN];
	json_t *keys;
	char *end = NULL;
	long long iter;
	size_t salt_len;

	if (a->password)
		return json_object_set_new(doc, "password", json_string(a->password)) ? -ENOMEM : 0;
	if (!a->salt || !a->iter || !a->stored || !a->server)
		return cm_errf(err, errlen, -EINVAL,
		               "neither a password nor the four SCRAM-SHA-1 values (salt, "
		               "iteration_count, stored_key, server_key) are stored");
	iter = strtoll(a->iter, &end, 10);
	salt_len = strlen(a->salt);
	if (end == a->iter || *end || iter < 1 || iter > 10000000)
		return cm_errf(err, errlen, -EINVAL, "iteration_count \"%.40s\" is not a count",
		               a->iter);
	if (salt_len == 0 || salt_len > XC_SCRAM_SALT_MAX)
		return cm_errf(err, errlen, -EINVAL, "the salt is %zu bytes (1 to %d are taken)",
		               salt_len, XC_SCRAM_SALT_MAX);
	if (!unhex(a->stored, stored, SHA1_LEN) || !unhex(a->server, server, SHA1_LEN))
		return cm_errf(err, errlen, -EINVAL,
		               "stored_key and server_key must be 40 hex digits (SHA-1)");
	keys = json_pack("{s{sI so so so}}", "SCRAM-SHA-1", "iterations", (json_int_t)iter, "salt",
	                 xc_import_b64(a->salt, salt_len), "stored_key",
	                 xc_import_b64(stored, SHA1_LEN), "server_key",
	                 xc_import_b64(server, SHA1_LEN));
	cm_crypto_wipe(stored, sizeof(stored));
	cm_crypto_wipe(server, sizeof(server));
	return !keys || json_object_set_new(doc, "scram", keys) ? -ENOMEM : 0;
}

/* Prosody's JSON for a table whose keys are not all strings: {"__hash": [k1, v1, k2, v2...]}.
 * The value of the key false (the roster's and the block list's own data), or NULL. */
static json_t *false_key(json_t *v)
{
	json_t *h = json_object_get(v, "__hash");

	for (size_t i = 0; i + 1 < json_array_size(h); i += 2)
		if (json_is_false(json_array_get(h, i)))
			return json_array_get(h, i + 1);
	return NULL;
}

static const char *const sub_names[] = {"none", "to", "from", "both"};

/* One roster row (contact key, Prosody's item) as an item of the document's roster. */
int xc_prosody__roster_item(json_t *roster, const char *contact, json_t *v, const char *jid,
                            struct xc_import_notes *notes)
{
	const char *sub = json_string_value(json_object_get(v, "subscription"));
	const char *ask = json_string_value(json_object_get(v, "ask"));
	const char *name = json_string_value(json_object_get(v, "name"));
	json_t *groups = json_object_get(v, "groups"), *g, *item, *list = json_array();
	const char *k;
	bool seen, known = false;

	if (!list)
		return -ENOMEM;
	for (int s = 0; s < 4 && sub; s++)
		known = known || strcmp(sub, sub_names[s]) == 0;
	if (!known) {
		json_decref(list);
		return xc_import_note(
		    notes,
		    "%s: contact %s left behind: subscription \"%s\" is not one of none, "
		    "to, from, both",
		    jid, contact, sub ? sub : "(none)");
	}
	/* groups: {"name": true} (0.11, 0.12) or ["name"] */
	if (json_is_object(groups)) {
		json_object_foreach(groups, k, g)
		{
			if (json_array_append_new(list, json_string(k))) {
				json_decref(list);
				return -ENOMEM;
			}
		}
	} else if (json_is_array(groups)) {
		for (size_t i = 0; i < json_array_size(groups); i++)
			if (json_is_string(json_array_get(groups, i)) &&
			    json_array_append(list, json_array_get(groups, i))) {
				json_decref(list);
				return -ENOMEM;
			}
	}
	seen = !strcmp(sub, "to") || !strcmp(sub, "both");
	item = json_pack("{ss ss so sb}", "jid", contact, "subscription", sub, "groups", list,
	                 "ask", ask && !strcmp(ask, "subscribe") && !seen);
	if (item && name && *name && json_object_set_new(item, "name", json_string(name))) {
		json_decref(item);
		return -ENOMEM;
	}
	if (item && json_is_true(json_object_get(v, "approved")) && strcmp(sub, "from") &&
	    strcmp(sub, "both"))
		json_object_set_new(item, "approved", json_true());
	if (!item || json_array_append_new(roster, item))
		return -ENOMEM;
	if (ask && !strcmp(ask, "subscribe") && seen)
		return xc_import_note(
		    notes,
		    "%s: contact %s: the pending subscription request was dropped (the "
		    "subscription is %s already)",
		    jid, contact, sub);
	return 0;
}

/* The pending requests (contacts who asked to see the user's presence): on the roster item
 * when the contact is listed, else in "requests". */
int xc_prosody__pending(json_t *roster, json_t *requests, json_t *pend, const char *jid,
                        struct xc_import_notes *notes)
{
	const char *contact, *sub;
	json_t *v;
	int rc = 0;

	json_object_foreach(pend, contact, v)
	{
		json_t *item = NULL;

		for (size_t i = 0; i < json_array_size(roster) && !item; i++)
			if (!strcmp(json_string_value(
			                json_object_get(json_array_get(roster, i), "jid")),
			            contact))
				item = json_array_get(roster, i);
		if (!item) {
			if (json_array_append_new(requests, json_string(contact)))
				return -ENOMEM;
			continue;
		}
		sub = json_string_value(json_object_get(item, "subscription"));
		if (!strcmp(sub, "from") || !strcmp(sub, "both"))
			rc = xc_import_note(
			    notes,
			    "%s: contact %s: a pending request was dropped (it sees the "
			    "user's presence already)",
			    jid, contact);
		else
			rc = json_object_set_new(item, "pending_in", json_true()) ? -ENOMEM : 0;
		if (rc)
			return rc;
	}
	return 0;
}

/* One PEP node's entry of the document, from its configuration as Prosody keeps it (NULL: the
 * defaults of Prosody's PEP: presence, persistent, one item). NULL when the node cannot be
 * carried (noted). */
json_t *xc_prosody__pep_node(const char *node, json_t *cfg, const char *jid,
                             struct xc_import_notes *notes, int *rc)
{
	static const char *const models[] = {"presence", "open", "whitelist", "roster"};
	const char *access = json_string_value(json_object_get(cfg, "access_model"));
	json_t *persist = json_object_get(cfg, "persist_items");
	json_t *max = json_object_get(cfg, "max_items"), *n;
	json_t *groups = json_object_get(cfg, "roster_groups_allowed");
	bool known = !access;

	for (int m = 0; m < 4 && access; m++)
		known = known || strcmp(access, models[m]) == 0;
	if (known && access && !strcmp(access, "roster") && !json_array_size(groups)) {
		*rc = xc_import_note(
		    notes, "%s: PEP node %s left behind: access model roster without groups", jid,
		    node);
		return NULL;
	}
	if (!known) {
		*rc =
		    xc_import_note(notes,
		                   "%s: PEP node %s left behind: access model \"%s\" is not one of "
		                   "presence, open, whitelist, roster",
		                   jid, node, access);
		return NULL;
	}
	n = json_pack("{ss ss sb s[]}", "node", node, "access", access ? access : "presence",
	              "persist", persist ? json_is_true(persist) : true, "items");
	if (n && json_is_string(max) && !strcmp(json_string_value(max), "max"))
		json_object_set_new(n, "max_items", json_string("max"));
	else if (n && json_is_integer(max) && json_integer_value(max) > 0)
		json_object_set(n, "max_items", max);
	else if (n)
		json_object_set_new(n, "max_items", json_integer(1));
	if (n && access && !strcmp(access, "roster"))
		json_object_set(n, "groups", groups);
	if (!n)
		*rc = -ENOMEM;
	return n;
}

int xc_prosody__pep_trim(json_t *pep, const char *jid, struct xc_import_notes *notes)
{
	int rc = 0;

	for (size_t i = 0; i < json_array_size(pep) && !rc; i++) {
		json_t *nd = json_array_get(pep, i), *its = json_object_get(nd, "items");
		json_int_t keep = json_is_false(json_object_get(nd, "persist"))
		                      ? 1
		                      : json_integer_value(json_object_get(nd, "max_items"));

		if (keep > 0 && (json_int_t)json_array_size(its) > keep) {
			rc = xc_import_note(
			    notes,
			    "%s: PEP node %s: the %zu oldest item(s) left behind (it keeps %lld)",
			    jid, json_string_value(json_object_get(nd, "node")),
			    json_array_size(its) - (size_t)keep, (long long)keep);
			while (!rc && (json_int_t)json_array_size(its) > keep)
				json_array_remove(its, 0);
		}
	}
	return rc;
}

int xc_prosody__private_add(struct xc_prosody__private *p, const struct cm_xml_node *el)
{
	struct cm_xml_node *back = NULL;
	struct cm_buf b;
	int rc;

	if (xc_private_ns_reserved(el->ns)) {
		p->reserved++;
		return 0;
	}
	if (p->byns && json_object_get(p->byns, el->ns)) {
		p->twice++;
		return 0;
	}
	if (!p->byns && !(p->byns = json_object()))
		return -ENOMEM;
	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, el, NULL);
	/* the import parses it as a stanza: what it would refuse stays here, noted */
	rc = rc ? rc : xc_stanza_parse(b.data, b.len, &back);
	cm_xml_node_free(back);
	if (!rc && json_object_set_new(p->byns, el->ns, json_string(b.data)))
		rc = -ENOMEM;
	cm_buf_free(&b);
	if (rc && rc != -ENOMEM) {
		p->unfit++;
		rc = 0;
	}
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The elements of p into a new array, by namespace (NULL without memory). */
static json_t *private_sorted(const struct xc_prosody__private *p)
{
	size_t n = json_object_size(p->byns), k = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));
	json_t *list = json_array(), *v;
	const char *ns;

	if (!names || !list) {
		free(names);
		json_decref(list);
		return NULL;
	}
	json_object_foreach(p->byns, ns, v)
	{
		names[k++] = ns;
	}
	qsort(names, n, sizeof(*names), by_name);
	for (k = 0; k < n && list; k++)
		if (json_array_append(list, json_object_get(p->byns, names[k]))) {
			json_decref(list);
			list = NULL;
		}
	free(names);
	return list;
}

/* One note for the n elements left behind for why (none: no note). */
static int private_note(struct xc_import_notes *notes, const char *jid, size_t n, const char *why)
{
	return n ? xc_import_note(notes,
	                          "%s: private XML storage (XEP-0049): %zu element(s) left "
	                          "behind: %s",
	                          jid, n, why)
	         : 0;
}

int xc_prosody__private_put(const struct xc_prosody__private *p, json_t *doc, const char *jid,
                            struct xc_import_notes *notes)
{
	json_t *list;
	int rc;

	if (json_object_size(p->byns) &&
	    (!(list = private_sorted(p)) || json_object_set_new(doc, "private", list)))
		return -ENOMEM;
	rc = private_note(notes, jid, p->reserved,
	                  "in no namespace, in jabber:iq:private or in a stream's "
	                  "(jabber:client, jabber:server...)");
	rc = rc ? rc
	        : private_note(notes, jid, p->twice,
	                       "in a namespace an element before it has (one element per "
	                       "namespace: the first is kept)");
	return rc ? rc
	          : private_note(notes, jid, p->unfit,
	                         "not one element our writer and the stream parser take (a "
	                         "stored value that is no element, or past the parser's limits)");
}

void xc_prosody__private_close(struct xc_prosody__private *p)
{
	json_decref(p->byns);
	p->byns = NULL;
}

/* The archive items: offline messages into "offline", PEP items into their nodes of "pep"
 * (configured as the "pep" store's rows say, in cfgs). */
static int archive_items(json_t *doc, json_t *cfgs, const struct xc_prosody_item *items, size_t n,
                         const char *jid, struct xc_import_notes *notes)
{
	json_t *offline = json_array(), *pep = json_array(), *node = NULL;
	const char *name = NULL;
	int rc = offline && pep ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !rc; i++) {
		const struct xc_prosody_item *it = &items[i];
		bool is_pep = !strncmp(it->store, "pep_", 4) && it->store[4];

		if (!utf8(it->store) || !utf8(it->key) || !utf8(it->value)) {
			rc = xc_import_note(
			    notes, "%s: an archived item that is not UTF-8 left behind", jid);
			continue;
		}
		if ((strcmp(it->store, "offline") && !is_pep) || strcmp(it->type, "xml")) {
			rc = xc_import_note(notes, "%s: an item of \"%s\" (type %s) left behind",
			                    jid, it->store, it->type);
			continue;
		}
		if (!is_pep) {
			if (json_array_append_new(offline,
			                          json_pack("{sI ss}", "stamp_ms",
			                                    (json_int_t)stamp_s(it->when) * 1000,
			                                    "stanza", it->value)))
				rc = -ENOMEM;
			continue;
		}
		if (!name || strcmp(name, it->store + 4) != 0) {
			name = it->store + 4;
			node = xc_prosody__pep_node(name, json_object_get(cfgs, name), jid, notes,
			                            &rc);
			if (node && json_array_append_new(pep, node))
				rc = -ENOMEM;
		}
		if (node && json_array_append_new(
		                json_object_get(node, "items"),
		                json_pack("{ss ss}", "id", it->key, "payload", it->value)))
			rc = -ENOMEM;
	}
	/* a node keeps max_items: the newest of what Prosody holds */
	if (!rc)
		rc = xc_prosody__pep_trim(pep, jid, notes);
	/* nodes Prosody knows without items: nothing to carry, but say so */
	{
		const char *k;
		json_t *v;

		json_object_foreach(cfgs, k, v)
		{
			bool found = false;

			for (size_t i = 0; i < n && !found; i++)
				found = !strncmp(items[i].store, "pep_", 4) &&
				        !strcmp(items[i].store + 4, k);
			if (!found && !rc)
				rc = xc_import_note(
				    notes, "%s: PEP node %s has no items: not carried", jid, k);
		}
	}
	if (!rc && json_array_size(offline) && json_object_set(doc, "offline", offline))
		rc = -ENOMEM;
	if (!rc && json_array_size(pep) && json_object_set(doc, "pep", pep))
		rc = -ENOMEM;
	json_decref(offline);
	json_decref(pep);
	return rc;
}

/* The newest item of PEP node node among the archive items (each store's oldest first), or
 * NULL. */
static const struct xc_prosody_item *newest(const struct xc_prosody_item *items, size_t n,
                                            const char *node)
{
	const struct xc_prosody_item *last = NULL;

	for (size_t i = 0; i < n; i++)
		if (!strncmp(items[i].store, "pep_", 4) && !strcmp(items[i].store + 4, node) &&
		    !strcmp(items[i].type, "xml"))
			last = &items[i];
	return last;
}

/* The document's "vcard": mod_vcard's stored stanza (table: the "" row of its store), else one
 * made from the vCard4 and avatar mod_vcard_legacy keeps in PEP. */
static int vcard(json_t *doc, const json_t *table, const struct xc_prosody_item *items, size_t n,
                 const char *jid, struct xc_import_notes *notes)
{
	const struct xc_prosody_item *v4 = newest(items, n, "urn:xmpp:vcard4");
	const struct xc_prosody_item *d = newest(items, n, "urn:xmpp:avatar:data");
	const struct xc_prosody_item *m = newest(items, n, "urn:xmpp:avatar:metadata");
	char *xml = NULL;
	int rc;

	if (table)
		rc = xc_prosody__vcard_from_table(table, &xml);
	else
		rc = xc_prosody__vcard_from_pep(v4 ? v4->value : NULL, d ? d->value : NULL,
		                                m ? m->value : NULL, &xml);
	if (rc == -EINVAL)
		return xc_import_note(
		    notes, "%s: the vCard left behind: it is not one this reader can take", jid);
	if (!rc && xml && json_object_set_new(doc, "vcard", json_string(xml)))
		rc = -ENOMEM;
	free(xml);
	return rc;
}

/* One row of mod_private's store (its key "name:namespace"): the element, as Prosody's JSON of
 * a preserialized stanza (or as XML), into p. 0 or -ENOMEM. */
static int private_row(struct xc_prosody__private *p, const struct xc_prosody_row *r)
{
	struct cm_xml_node *el = NULL;
	json_t *v;
	int rc;

	if (!strcmp(r->type, "json")) {
		v = json_loads(r->value, 0, NULL);
		rc = v ? xc_prosody__element_from_table(v, &el) : -EINVAL;
		json_decref(v);
	} else if (!strcmp(r->type, "xml"))
		rc = xc_stanza_parse(r->value, strlen(r->value), &el);
	else
		rc = -EINVAL;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		p->unfit++;
		return 0;
	}
	rc = xc_prosody__private_add(p, el);
	cm_xml_node_free(el);
	return rc;
}

int xc_prosody_doc(const char *jid, const struct xc_prosody_row *rows, size_t n,
                   const struct xc_prosody_item *items, size_t nitems, char **doc,
                   struct xc_import_notes *notes, char *err, size_t errlen)
{
	json_t *cfgs = json_object(); /* PEP nodes' configurations */
	json_t *vtable = NULL;        /* mod_vcard's stored stanza */
	struct xc_prosody__private priv = {0};
	struct account_rows a = {0};
	json_t *d = json_pack("{ss s[] s[] s[]}", "jid", jid, "roster", "requests", "blocklist");
	json_t *roster = json_object_get(d, "roster"), *requests = json_object_get(d, "requests");
	json_t *blocked = json_object_get(d, "blocklist"), *pend = NULL;
	const char *other = NULL;
	size_t nother = 0;
	int rc = 0;

	*doc = NULL;
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct xc_prosody_row *r = &rows[i];

		if (!utf8(r->store) || !utf8(r->key) || !utf8(r->value)) {
			rc =
			    xc_import_note(notes, "%s: a value that is not UTF-8 left behind", jid);
			continue;
		}
		if (!strcmp(r->store, "accounts")) {
			const char **slot = !strcmp(r->key, "password")          ? &a.password
			                    : !strcmp(r->key, "salt")            ? &a.salt
			                    : !strcmp(r->key, "iteration_count") ? &a.iter
			                    : !strcmp(r->key, "stored_key")      ? &a.stored
			                    : !strcmp(r->key, "server_key")      ? &a.server
			                                                         : NULL;
			if (slot)
				*slot = r->value;
			else if (strcmp(r->key, "updated") != 0) /* when the keys were last set */
				rc = xc_import_note(notes, "%s: account value \"%s\" left behind",
				                    jid, r->key);
		} else if (!strcmp(r->store, "roster")) {
			json_t *v = strcmp(r->type, "json") ? NULL : json_loads(r->value, 0, NULL);

			if (!json_is_object(v))
				rc = xc_import_note(
				    notes, "%s: roster entry \"%s\" left behind: not a JSON object",
				    jid, r->key);
			else if (!*r->key) {
				json_t *own = false_key(v);

				if (json_is_object(json_object_get(own, "pending"))) {
					json_decref(pend);
					pend = json_incref(json_object_get(own, "pending"));
				}
			} else
				rc = xc_prosody__roster_item(roster, r->key, v, jid, notes);
			json_decref(v);
		} else if (!strcmp(r->store, "vcard")) {
			/* the stanza's children under the key ""; its name and xmlns are vCard's */
			if (!*r->key && !strcmp(r->type, "json")) {
				json_decref(vtable);
				vtable = json_loads(r->value, 0, NULL);
			}
		} else if (!strcmp(r->store, "pep")) {
			json_t *v = strcmp(r->type, "json") ? NULL : json_loads(r->value, 0, NULL);

			json_t *cfg = json_object_get(v, "config");

			/* a node without a configuration has Prosody's defaults */
			if (json_object_set_new(cfgs, r->key,
			                        json_is_object(cfg) ? json_incref(cfg)
			                                            : json_object()))
				rc = -ENOMEM;
			json_decref(v);
		} else if (!strcmp(r->store, "blocklist")) {
			if (*r->key && json_array_append_new(blocked, json_string(r->key)))
				rc = -ENOMEM;
		} else if (!strcmp(r->store, "private")) {
			rc = private_row(&priv, r);
		} else {
			/* another store: counted, and named once per store */
			if (!other || strcmp(other, r->store) != 0) {
				if (other)
					rc = xc_import_note(
					    notes, "%s: store \"%s\" left behind (%zu value(s))",
					    jid, other, nother);
				other = r->store;
				nother = 0;
			}
			nother++;
		}
	}
	if (!rc && other)
		rc = xc_import_note(notes, "%s: store \"%s\" left behind (%zu value(s))", jid,
		                    other, nother);
	if (!rc && pend)
		rc = xc_prosody__pending(roster, requests, pend, jid, notes);
	if (!rc)
		rc = archive_items(d, cfgs, items, nitems, jid, notes);
	if (!rc)
		rc = vcard(d, vtable, items, nitems, jid, notes);
	if (!rc)
		rc = xc_prosody__private_put(&priv, d, jid, notes);
	if (!rc)
		rc = credentials(d, &a, err, errlen);
	if (!rc && !(*doc = json_dumps(d, JSON_COMPACT)))
		rc = -ENOMEM;
	if (rc == -ENOMEM)
		cm_errf(err, errlen, rc, "out of memory");
	xc_prosody__private_close(&priv);
	json_decref(pend);
	json_decref(vtable);
	json_decref(cfgs);
	json_decref(d);
	return rc;
}

/* --- mod_mam's archive, cut into requests of the archive route --------------------------- */

/* Why a message stays behind: one note each. */
enum mam_why {
	MAM_NOT_MESSAGE,
	MAM_NOT_XML,
	MAM_NOT_THEIRS,
	MAM_OVER_STANZA,
	MAM_OVER_BODY,
	MAM_NWHY,
};

struct xc_prosody_mam {
	struct xc_jid user; /* the account, normalised */
	struct xc_prosody_mam_limits lim;
	xc_prosody_mam_cb cb; /* borrowed, with arg */
	void *arg;
	struct cm_xml_node *scope; /* owned: a client stream's header, in which the route writes */
	struct cm_buf body;        /* the request being filled, without its last "]}" */
	size_t head;               /* bytes of {"jid": ..., "messages": [ */
	size_t n;                  /* messages in body */
	size_t sent;               /* taken by the callback */
	size_t left[MAM_NWHY];
	int failed; /* the callback's error: nothing more goes */
};

int xc_prosody_mam_alloc(struct xc_prosody_mam **out, const char *jid,
                         const struct xc_prosody_mam_limits *lim, xc_prosody_mam_cb cb, void *arg)
{
	struct xc_prosody_mam *m;
	int rc;

	*out = NULL;
	if (lim->max_messages == 0 || lim->max_stanza == 0)
		return -EINVAL;
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	m->lim = *lim;
	m->cb = cb;
	m->arg = arg;
	cm_buf_init(&m->body, 0);
	rc = xc_jid_parse(&m->user, jid, strlen(jid), NULL, 0);
	if (!rc && (!m->user.llen || m->user.rlen))
		rc = -EINVAL;
	/* as the server's: <stream:stream xmlns='jabber:client'> */
	rc = rc ? rc : cm_xml_node_new(&m->scope, "stream:stream", CM_XML_NS_STREAM);
	rc = rc ? rc : cm_xml_node_declare_ns(m->scope, NULL, CM_XML_NS_CLIENT);
	rc = rc ? rc : cm_buf_puts(&m->body, "{\"jid\":\"");
	rc = rc ? rc : cm_buf_json_escape(&m->body, m->user.s, strlen(m->user.s));
	rc = rc ? rc : cm_buf_puts(&m->body, "\",\"messages\":[");
	/* a request must hold one message at least */
	if (!rc && m->body.len + 2 >= lim->max_body)
		rc = -EINVAL;
	if (rc) {
		xc_prosody_mam_free(m);
		return rc;
	}
	m->head = m->body.len;
	*out = m;
	return 0;
}

void xc_prosody_mam_free(struct xc_prosody_mam *m)
{
	if (!m)
		return;
	xc_jid_free(&m->user);
	cm_xml_node_free(m->scope);
	cm_buf_free(&m->body);
	free(m);
}

void xc_prosody_mam_counts(const struct xc_prosody_mam *m, size_t *sent, size_t *left)
{
	*sent = m ? m->sent : 0;
	*left = 0;
	for (int w = 0; m && w < MAM_NWHY; w++)
		*left += m->left[w];
}

/* The request being filled to the callback, and a new one begun. */
static int mam_flush(struct xc_prosody_mam *m)
{
	int rc;

	if (m->failed || m->n == 0)
		return m->failed;
	rc = cm_buf_puts(&m->body, "]}");
	if (rc)
		return rc;
	rc = m->cb(m->arg, m->body.data, m->body.len, m->n);
	if (rc) {
		m->failed = rc;
		return rc;
	}
	m->sent += m->n;
	m->n = 0;
	m->body.len = m->head; /* the head stays */
	m->body.data[m->head] = '\0';
	return 0;
}

int xc_prosody_mam_end(struct xc_prosody_mam *m)
{
	return mam_flush(m);
}

/* The 'to' and 'from' of message st as the route reads them; *why set when it would refuse
 * them, and *add_to when 'to' was taken off a message to the account (Prosody's router does). 0
 * or -ENOMEM. */
static int mam_addrs(const struct xc_prosody_mam *m, const struct cm_xml_node *st, int *why,
                     bool *add_to)
{
	struct xc_jid from = {0}, to = {0};
	bool mine_from, mine_to;
	int rc = xc_stanza_jid(st, "from", &from);

	rc = rc ? rc : xc_stanza_jid(st, "to", &to);
	if (rc == -ENOMEM)
		goto out;
	mine_from = !rc && !xc_jid_empty(&from) && xc_jid_bare_equal(&from, &m->user);
	mine_to = !rc && !xc_jid_empty(&to) && xc_jid_bare_equal(&to, &m->user);
	/* the other side is the archive's peer: it must be there, but for a 'to' taken off */
	*add_to = mine_from && xc_jid_empty(&to);
	if (!(mine_from || mine_to) || (!mine_from && xc_jid_empty(&from)))
		*why = MAM_NOT_THEIRS;
	rc = 0;
out:
	xc_jid_free(&from);
	xc_jid_free(&to);
	return rc;
}

/* Check the stanza of it as the archive route will: *why set when it would refuse it; *fixed
 * (owned) the stanza to send instead of its own when 'to' was put back. 0 or -ENOMEM. */
static int mam_stanza(const struct xc_prosody_mam *m, const struct xc_prosody_item *it,
                      char **fixed, int *why)
{
	size_t len = strlen(it->value);
	struct cm_xml_node *st = NULL;
	bool add_to = false;
	struct cm_buf b;
	int rc;

	*fixed = NULL;
	if (strcmp(it->type, "xml") != 0) {
		*why = MAM_NOT_MESSAGE;
		return 0;
	}
	if (len > m->lim.max_stanza) {
		*why = MAM_OVER_STANZA;
		return 0;
	}
	rc = utf8(it->value) ? xc_stanza_parse(it->value, len, &st) : -EBADMSG;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		*why = MAM_NOT_XML;
		rc = 0;
	} else if (strcmp(st->name, "message") != 0 || strcmp(st->ns, CM_XML_NS_CLIENT) != 0)
		*why = MAM_NOT_MESSAGE;
	else
		rc = mam_addrs(m, st, why, &add_to);
	if (!rc && *why < 0 && add_to)
		rc = cm_xml_node_set_attr(st, "to", m->user.s);
	if (rc || *why >= 0) {
		cm_xml_node_free(st);
		return rc;
	}
	/* the route writes it again with our writer: that, too, must keep to max_stanza */
	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, st, m->scope);
	cm_xml_node_free(st);
	if (rc == -EINVAL)
		*why = MAM_NOT_XML;
	else if (!rc && b.len > m->lim.max_stanza)
		*why = MAM_OVER_STANZA;
	else if (!rc && add_to && !(*fixed = cm_buf_steal(&b)))
		rc = -ENOMEM;
	cm_buf_free(&b);
	return rc == -EINVAL ? 0 : rc;
}

int xc_prosody_mam_add(struct xc_prosody_mam *m, const struct xc_prosody_item *it)
{
	char *fixed = NULL;
	const char *text;
	struct cm_buf item;
	int why = -1, rc;

	if (m->failed)
		return m->failed;
	if ((rc = mam_stanza(m, it, &fixed, &why)) != 0)
		return rc;
	if (why >= 0) {
		m->left[why]++;
		return 0;
	}
	text = fixed ? fixed : it->value;
	cm_buf_init(&item, 0);
	rc = cm_buf_printf(&item, "{\"stamp_ms\":%lld,\"stanza\":\"", stamp_s(it->when) * 1000);
	rc = rc ? rc : cm_buf_json_escape(&item, text, strlen(text));
	rc = rc ? rc : cm_buf_puts(&item, "\"}");
	free(fixed);
	/* with the comma before it and the "]}" after it */
	if (!rc && m->head + item.len + 2 > m->lim.max_body)
		m->left[MAM_OVER_BODY]++;
	else if (!rc) {
		if (m->n == m->lim.max_messages || m->body.len + 1 + item.len + 2 > m->lim.max_body)
			rc = mam_flush(m);
		rc = rc ? rc : cm_buf_append(&m->body, ",", m->n ? 1 : 0);
		rc = rc ? rc : cm_buf_append(&m->body, item.data, item.len);
		m->n += !rc;
	}
	cm_buf_free(&item);
	return rc;
}

int xc_prosody_mam_notes(const struct xc_prosody_mam *m, struct xc_import_notes *notes)
{
	char over_stanza[96], over_body[96];
	const char *why[MAM_NWHY] = {
	    "not a <message/> of jabber:client",
	    "not XML the stream parser takes",
	    "neither its 'from' nor its 'to' is the account's (with the other side a JID)",
	    over_stanza,
	    over_body,
	};
	int rc = 0;

	snprintf(over_stanza, sizeof(over_stanza), "over %zu bytes (c2s.max_stanza)",
	         m->lim.max_stanza);
	snprintf(over_body, sizeof(over_body), "alone over the %zu bytes of a request",
	         m->lim.max_body);
	for (int w = 0; w < MAM_NWHY && !rc; w++)
		if (m->left[w])
			rc = xc_import_note(notes,
			                    "%s: message archive (mod_mam): %zu message(s) left "
			                    "behind: %s",
			                    m->user.s, m->left[w], why[w]);
	return rc;
}

/* --- the database ------------------------------------------------------------------------- */

struct xc_prosody {
	sqlite3 *db;
};

static int db_fail(struct xc_prosody *p, char *err, size_t errlen)
{
	return cm_errf(err, errlen, -EIO, "the Prosody database: %s", sqlite3_errmsg(p->db));
}

int xc_prosody_open(struct xc_prosody **out, const char *path, char *err, size_t errlen)
{
	struct xc_prosody *p = calloc(1, sizeof(*p));
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (!p)
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	rc = sqlite3_open_v2(path, &p->db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		rc = cm_errf(err, errlen, -ENOENT, "cannot open %s: %s", path,
		             p->db ? sqlite3_errmsg(p->db) : "out of memory");
		xc_prosody_close(p);
		return rc;
	}
	sqlite3_busy_timeout(p->db, 5000);
	rc = sqlite3_prepare_v2(p->db,
	                        "SELECT host, user, store, key, type, value FROM prosody LIMIT 1",
	                        -1, &st, NULL);
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		rc = cm_errf(
		    err, errlen, -EINVAL,
		    "%s is not Prosody's SQL store (no table prosody(host, user, store, key, "
		    "type, value)): %s",
		    path, sqlite3_errmsg(p->db));
		xc_prosody_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

void xc_prosody_close(struct xc_prosody *p)
{
	if (!p)
		return;
	sqlite3_close(p->db);
	free(p);
}

void xc_prosody_list_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The first column of each row of sql (one text parameter, or none) into a list. */
static int text_list(struct xc_prosody *p, const char *sql, const char *param, char ***out,
                     size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(p, err, errlen);
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		char **nv = realloc(*out, (*n + 1) * sizeof(*nv));

		if (!nv || !(nv[*n] = strdup(s ? s : ""))) {
			if (nv)
				*out = nv;
			sqlite3_finalize(st);
			return cm_errf(err, errlen, -ENOMEM, "out of memory");
		}
		*out = nv;
		(*n)++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(p, err, errlen);
}

int xc_prosody_hosts(struct xc_prosody *p, char ***hosts, size_t *n, char *err, size_t errlen)
{
	return text_list(
	    p,
	    "SELECT DISTINCT host FROM prosody WHERE store = 'accounts' AND user != '' "
	    "ORDER BY host",
	    NULL, hosts, n, err, errlen);
}

int xc_prosody_users(struct xc_prosody *p, const char *host, char ***users, size_t *n, char *err,
                     size_t errlen)
{
	return text_list(p,
	                 "SELECT DISTINCT user FROM prosody WHERE host = ?1 AND store = 'accounts' "
	                 "AND user != '' ORDER BY user",
	                 host, users, n, err, errlen);
}

/* sql prepared with the account's host and user bound to ?1 and ?2 (both outlive it); NULL
 * when it cannot be (a database without the archive table, for the queries of that table). */
static sqlite3_stmt *account_query(struct xc_prosody *p, const char *sql, const char *host,
                                   const char *user)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	return st;
}

/* Notes for the archives the account has that are not carried over (MUC logs...; mod_mam's
 * comes through xc_prosody_mam_read()). A database without the archive table has none. */
static int archived(struct xc_prosody *p, const char *host, const char *user, const char *jid,
                    struct xc_import_notes *notes)
{
	sqlite3_stmt *st =
	    account_query(p,
	                  "SELECT store, count(*) FROM prosodyarchive WHERE host = ?1 "
	                  "AND user = ?2 AND store NOT IN ('offline', '" XC_PROSODY_MAM_STORE
	                  "') AND store NOT LIKE 'pep\\_%' ESCAPE '\\' GROUP BY store "
	                  "ORDER BY store",
	                  host, user);
	int rc = 0;

	if (!st)
		return 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW)
		rc = xc_import_note(notes, "%s: archive \"%s\" left behind (%lld item(s))", jid,
		                    (const char *)sqlite3_column_text(st, 0),
		                    (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	return rc;
}

static void items_free(struct xc_prosody_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].store);
		free((char *)v[i].key);
		free((char *)v[i].type);
		free((char *)v[i].value);
	}
	free(v);
}

/* The account's offline messages and PEP items, each store's oldest first. A database without
 * the archive table (a Prosody that never stored any) has none. 0 or -ENOMEM. */
static int read_items(struct xc_prosody *p, const char *host, const char *user,
                      struct xc_prosody_item **out, size_t *n)
{
	sqlite3_stmt *st = account_query(
	    p,
	    "SELECT store, key, \"when\", type, value FROM prosodyarchive WHERE host = ?1 AND "
	    "user = ?2 AND (store = 'offline' OR store LIKE 'pep\\_%' ESCAPE '\\') ORDER BY "
	    "store, sort_id",
	    host, user);
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!st)
		return 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		struct xc_prosody_item *nv = realloc(*out, (*n + 1) * sizeof(*nv));
		char *f[4];

		if (!nv) {
			rc = -ENOMEM;
			break;
		}
		*out = nv;
		for (int k = 0; k < 4; k++) {
			const unsigned char *t = sqlite3_column_text(st, k < 2 ? k : k + 1);

			f[k] = strdup(t ? (const char *)t : "");
		}
		nv[*n] =
		    (struct xc_prosody_item){f[0], f[1], sqlite3_column_int64(st, 2), f[2], f[3]};
		(*n)++;
		if (!f[0] || !f[1] || !f[2] || !f[3])
			rc = -ENOMEM;
	}
	sqlite3_finalize(st);
	return rc;
}

int xc_prosody_mam_read(struct xc_prosody *p, const char *host, const char *user,
                        struct xc_prosody_mam *m, char *err, size_t errlen)
{
	/* "when" first: Prosody's clock may have gone back between two of them */
	sqlite3_stmt *st =
	    account_query(p,
	                  "SELECT key, \"when\", type, value FROM prosodyarchive "
	                  "WHERE host = ?1 AND user = ?2 AND store = '" XC_PROSODY_MAM_STORE
	                  "' ORDER BY \"when\", sort_id",
	                  host, user);
	int rc = 0, step = SQLITE_DONE;

	if (!st)
		return xc_prosody_mam_end(m);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[3];

		for (int k = 0; k < 3 && !rc; k++) {
			const unsigned char *t = sqlite3_column_text(st, k ? k + 1 : 0);

			/* (no text for a value that is there: sqlite3 ran out of memory) */
			if (!t && sqlite3_column_type(st, k ? k + 1 : 0) != SQLITE_NULL)
				rc = -ENOMEM;
			f[k] = t ? (const char *)t : "";
		}
		if (!rc)
			rc = xc_prosody_mam_add(
			    m, &(struct xc_prosody_item){XC_PROSODY_MAM_STORE, f[0],
			                                 sqlite3_column_int64(st, 1), f[1], f[2]});
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(p, err, errlen);
	sqlite3_finalize(st);
	rc = rc ? rc : xc_prosody_mam_end(m);
	if (rc == -ENOMEM)
		cm_errf(err, errlen, rc, "out of memory");
	return rc;
}

int xc_prosody_account(struct xc_prosody *p, const char *host, const char *user, char **doc,
                       struct xc_import_notes *notes, char *err, size_t errlen)
{
	struct xc_prosody_item *items = NULL;
	size_t nitems = 0;
	struct xc_prosody_row *rows = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	char *jid = NULL;
	int rc, step;

	*doc = NULL;
	if (asprintf(&jid, "%s@%s", user, host) < 0)
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	st = account_query(p,
	                   "SELECT store, key, type, value FROM prosody WHERE host = ?1 AND user = "
	                   "?2 ORDER BY store, key",
	                   host, user);
	if (!st) {
		free(jid);
		return db_fail(p, err, errlen);
	}
	rc = 0;
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct xc_prosody_row *nr = realloc(rows, (n + 1) * sizeof(*nr));
		char *f[4];

		if (!nr) {
			rc = -ENOMEM;
			break;
		}
		rows = nr;
		for (int k = 0; k < 4; k++) {
			const unsigned char *t = sqlite3_column_text(st, k);

			f[k] = strdup(t ? (const char *)t : "");
		}
		rows[n] = (struct xc_prosody_row){f[0], f[1], f[2], f[3]};
		n++;
		if (!f[0] || !f[1] || !f[2] || !f[3])
			rc = -ENOMEM;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(p, err, errlen);
	sqlite3_finalize(st);
	if (rc == -ENOMEM)
		cm_errf(err, errlen, rc, "out of memory");
	if (!rc && (rc = read_items(p, host, user, &items, &nitems)) != 0)
		cm_errf(err, errlen, rc, "out of memory");
	if (!rc)
		rc = xc_prosody_doc(jid, rows, n, items, nitems, doc, notes, err, errlen);
	if (!rc)
		rc = archived(p, host, user, jid, notes);
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].store);
		free((char *)rows[i].key);
		free((char *)rows[i].type);
		if (rows[i].value) {
			cm_crypto_wipe((char *)rows[i].value, strlen(rows[i].value));
			free((char *)rows[i].value);
		}
	}
	free(rows);
	items_free(items, nitems);
	free(jid);
	return rc;
}
