/* import.c - the import document checked and turned into a store request (import.h). */
#include "import.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/xml.h"
#include "jid.h"
#include "roster.h"
#include "scram.h"
#include "stanza.h"
#include "store.h"
#include "private.h"
#include "vcard.h"

#define PASSWORD_MAX 1023 /* bytes, as the admin API's accounts route */

/* o must be an object whose members are among names (a NULL-terminated list): a member this
 * version does not know is refused, not dropped. */
static int object_of(const json_t *o, const char *const *names, const char *where, char *err,
                     size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return cm_errf(err, errlen, -EINVAL, "%s: must be an object", where);
	json_object_foreach((json_t *)o, k, v)
	{
		size_t i = 0;

		while (names[i] && strcmp(names[i], k) != 0)
			i++;
		if (!names[i])
			return cm_errf(err, errlen, -EINVAL, "%s: unknown member \"%s\"", where, k);
	}
	return 0;
}

/* x as our writer writes it (scope: where it will stand, NULL for a root), at most max bytes,
 * into *out (owned). 0, -EMSGSIZE (longer), -EINVAL (a tree the writer refuses), -ENOMEM. */
static int written_again(const struct cm_xml_node *x, const struct cm_xml_node *scope, size_t max,
                         char **out)
{
	struct cm_buf b;
	int rc;

	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, x, scope);
	if (!rc && b.len > max)
		rc = -EMSGSIZE;
	if (!rc && !(*out = cm_buf_steal(&b)))
		rc = -ENOMEM;
	cm_buf_free(&b);
	return rc;
}

/* A bare JID (with or without a local part) from s, normalised, into *out. */
static int bare_jid(const char *s, bool need_local, char **out, const char *where, char *err,
                    size_t errlen)
{
	char why[CM_ERR_MAX];
	struct xc_jid j;
	int rc = xc_jid_parse(&j, s, strlen(s), why, sizeof(why));

	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return cm_errf(err, errlen, -EINVAL, "%s: \"%s\" is not a JID: %s", where, s, why);
	if (j.rlen || (need_local && !j.llen)) {
		xc_jid_free(&j);
		return cm_errf(err, errlen, -EINVAL, "%s: \"%s\" must be a bare JID%s", where, s,
		               need_local ? " (user@host)" : "");
	}
	*out = j.s; /* takes the string */
	return 0;
}

/* Base64 member key of o, exactly want bytes (or 1 to max when want is 0), into out. */
static int b64_member(const json_t *o, const char *key, size_t want, size_t max, unsigned char *out,
                      size_t *outlen, const char *where, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(o, key));
	struct cm_buf b;
	int rc;

	if (!s)
		return cm_errf(err, errlen, -EINVAL, "%s: \"%s\" (base64) is required", where, key);
	cm_buf_init(&b, 256);
	rc = cm_crypto_b64_decode(&b, s, strlen(s), CM_B64_STD);
	if (rc == -ENOMEM) {
		cm_buf_free(&b);
		return rc;
	}
	if (rc || (want && b.len != want) || (!want && (b.len == 0 || b.len > max))) {
		cm_buf_free(&b);
		if (want)
			return cm_errf(err, errlen, -EINVAL,
			               "%s: \"%s\" must be %zu bytes in base64", where, key, want);
		return cm_errf(err, errlen, -EINVAL, "%s: \"%s\" must be 1 to %zu bytes in base64",
		               where, key, max);
	}
	memcpy(out, b.data, b.len);
	if (outlen)
		*outlen = b.len;
	cm_buf_free(&b);
	return 0;
}

/* "scram": {"SCRAM-SHA-1": {...}, "SCRAM-SHA-256": {...}} into r->creds. */
static int parse_scram(const json_t *scram, struct xc_store_req *r, unsigned *hashes, char *err,
                       size_t errlen)
{
	static const char *const fields[] = {"iterations", "salt", "stored_key", "server_key",
	                                     NULL};
	const char *k;
	json_t *v;
	int rc;

	if (!json_is_object(scram) || json_object_size(scram) == 0)
		return cm_errf(err, errlen, -EINVAL,
		               "scram: an object with SCRAM-SHA-1 and/or SCRAM-SHA-256 keys");
	json_object_foreach((json_t *)scram, k, v)
	{
		enum xc_scram_hash h;
		struct xc_scram_creds *c;
		json_int_t it;
		size_t kl, salt_len = 0;
		char where[48];

		if (strcmp(k, "SCRAM-SHA-1") == 0)
			h = XC_SCRAM_SHA1;
		else if (strcmp(k, "SCRAM-SHA-256") == 0)
			h = XC_SCRAM_SHA256;
		else
			return cm_errf(err, errlen, -EINVAL,
			               "scram: \"%s\" is not SCRAM-SHA-1 or SCRAM-SHA-256", k);
		snprintf(where, sizeof(where), "scram.%s", k);
		if ((rc = object_of(v, fields, where, err, errlen)) != 0)
			return rc;
		c = &r->creds[h];
		kl = xc_scram_key_len(h);
		it = json_integer_value(json_object_get(v, "iterations"));
		if (!json_is_integer(json_object_get(v, "iterations")) || it < 1 ||
		    it > XC_IMPORT_MAX_ITERATIONS)
			return cm_errf(err, errlen, -EINVAL,
			               "%s: \"iterations\" must be an integer from 1 to %d", where,
			               XC_IMPORT_MAX_ITERATIONS);
		if ((rc = b64_member(v, "salt", 0, XC_SCRAM_SALT_MAX, c->salt, &salt_len, where,
		                     err, errlen)) != 0 ||
		    (rc = b64_member(v, "stored_key", kl, kl, c->stored_key, NULL, where, err,
		                     errlen)) != 0 ||
		    (rc = b64_member(v, "server_key", kl, kl, c->server_key, NULL, where, err,
		                     errlen)) != 0)
			return rc;
		c->iter = (uint32_t)it;
		c->salt_len = (uint8_t)salt_len;
		*hashes |= 1u << h;
	}
	return 0;
}

/* Text that XML can carry, 1 to XC_ROSTER_MAX_NAME bytes (what a client could have set). */
static int name_ok(const char *s, const char *what, const char *where, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n == 0 || n > XC_ROSTER_MAX_NAME || !cm_xml_text_valid(s, n))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: %s must be 1 to %d bytes of text XML can carry", where, what,
		               XC_ROSTER_MAX_NAME);
	return 0;
}

static int parse_sub(const char *s, enum xc_sub *out)
{
	static const char *const names[] = {"none", "to", "from", "both"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum xc_sub)i;
			return 0;
		}
	return -EINVAL;
}

/* A member that, when present, must be a boolean. */
static int flag(const json_t *o, const char *key, bool *out, const char *where, char *err,
                size_t errlen)
{
	const json_t *v = json_object_get(o, key);

	*out = false;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return cm_errf(err, errlen, -EINVAL, "%s: \"%s\" must be true or false", where,
		               key);
	*out = json_is_true(v);
	return 0;
}

/* One roster entry into it. */
static int parse_item(const json_t *o, struct xc_roster_item *it, const char *where, char *err,
                      size_t errlen)
{
	static const char *const fields[] = {"jid", "name",     "groups",     "subscription",
	                                     "ask", "approved", "pending_in", NULL};
	const json_t *groups = json_object_get(o, "groups"), *name = json_object_get(o, "name");
	const json_t *sub = json_object_get(o, "subscription");
	const char *jid = json_string_value(json_object_get(o, "jid"));
	struct xc_sub_state *st = &it->st;
	int rc;

	if ((rc = object_of(o, fields, where, err, errlen)) != 0)
		return rc;
	if (!jid)
		return cm_errf(err, errlen, -EINVAL, "%s: \"jid\" (a string) is required", where);
	if ((rc = bare_jid(jid, false, &it->contact, where, err, errlen)) != 0)
		return rc;
	if (name && !json_is_null(name)) {
		if (!json_is_string(name))
			return cm_errf(err, errlen, -EINVAL, "%s: \"name\" must be a string",
			               where);
		if (json_string_length(name) > 0) {
			if ((rc = name_ok(json_string_value(name), "\"name\"", where, err, errlen)))
				return rc;
			if (!(it->name = strdup(json_string_value(name))))
				return -ENOMEM;
		}
	}
	if (groups && (!json_is_array(groups) || json_array_size(groups) > XC_ROSTER_MAX_GROUPS))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"groups\" must be an array of %d at most", where,
		               XC_ROSTER_MAX_GROUPS);
	if (groups && json_array_size(groups) &&
	    !(it->groups = calloc(json_array_size(groups), sizeof(*it->groups))))
		return -ENOMEM;
	for (size_t i = 0; groups && i < json_array_size(groups); i++) {
		const char *g = json_string_value(json_array_get(groups, i));

		if (!g)
			return cm_errf(err, errlen, -EINVAL, "%s: each group must be a string",
			               where);
		if ((rc = name_ok(g, "each group", where, err, errlen)) != 0)
			return rc;
		for (size_t k = 0; k < it->ngroups; k++)
			if (strcmp(it->groups[k], g) == 0)
				return cm_errf(err, errlen, -EINVAL, "%s: group \"%s\" twice",
				               where, g);
		if (!(it->groups[it->ngroups] = strdup(g)))
			return -ENOMEM;
		it->ngroups++;
	}
	st->sub = XC_SUB_NONE;
	if (sub && (!json_is_string(sub) || parse_sub(json_string_value(sub), &st->sub) != 0))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"subscription\" must be none, to, from or both", where);
	if ((rc = flag(o, "ask", &st->out, where, err, errlen)) != 0 ||
	    (rc = flag(o, "approved", &st->approved, where, err, errlen)) != 0 ||
	    (rc = flag(o, "pending_in", &st->in, where, err, errlen)) != 0)
		return rc;
	/* the states RFC 6121 Appendix A can reach (subscription.h) */
	if (st->out && (st->sub == XC_SUB_TO || st->sub == XC_SUB_BOTH))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"ask\" with subscription %s: the contact's presence is seen "
		               "already",
		               where, xc_sub_name(st->sub));
	if ((st->in || st->approved) && (st->sub == XC_SUB_FROM || st->sub == XC_SUB_BOTH))
		return cm_errf(
		    err, errlen, -EINVAL,
		    "%s: \"%s\" with subscription %s: the contact sees the user's presence "
		    "already",
		    where, st->in ? "pending_in" : "approved", xc_sub_name(st->sub));
	st->listed = true;
	return 0;
}

/* The contact (normalised) is named once only across the roster and the requests. */
static int unique_contact(const struct xc_store_req *r, size_t upto, const char *where, char *err,
                          size_t errlen)
{
	const char *c = r->items[upto].contact;

	for (size_t i = 0; i < upto; i++)
		if (strcmp(r->items[i].contact, c) == 0)
			return cm_errf(
			    err, errlen, -EINVAL,
			    "%s: %s is named twice (a pending request of a listed contact "
			    "is its \"pending_in\")",
			    where, c);
	return 0;
}

static int parse_roster(const json_t *roster, const json_t *requests, struct xc_store_req *r,
                        struct xc_import_summary *sum, char *err, size_t errlen)
{
	size_t nr = roster ? json_array_size(roster) : 0;
	size_t nq = requests ? json_array_size(requests) : 0;
	char where[64];
	int rc;

	if ((roster && !json_is_array(roster)) || (requests && !json_is_array(requests)))
		return cm_errf(err, errlen, -EINVAL, "\"roster\" and \"requests\" must be arrays");
	if (nr + nq > XC_ROSTER_MAX_ITEMS)
		return cm_errf(err, errlen, -EINVAL,
		               "%zu contacts and requests: a roster holds %d at most", nr + nq,
		               XC_ROSTER_MAX_ITEMS);
	if (nr + nq && !(r->items = calloc(nr + nq, sizeof(*r->items))))
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		snprintf(where, sizeof(where), "roster[%zu]", i);
		rc = parse_item(json_array_get(roster, i), &r->items[i], where, err, errlen);
		r->nitems = i + 1; /* what was filled is freed with r */
		if (rc || (rc = unique_contact(r, i, where, err, errlen)) != 0)
			return rc;
	}
	for (size_t i = 0; i < nq; i++) {
		struct xc_roster_item *it = &r->items[nr + i];
		const char *s = json_string_value(json_array_get(requests, i));

		snprintf(where, sizeof(where), "requests[%zu]", i);
		if (!s)
			return cm_errf(err, errlen, -EINVAL, "%s: must be a string (a JID)", where);
		if ((rc = bare_jid(s, false, &it->contact, where, err, errlen)) != 0)
			return rc;
		r->nitems = nr + i + 1;
		it->st = (struct xc_sub_state){.sub = XC_SUB_NONE, .in = true};
		if ((rc = unique_contact(r, nr + i, where, err, errlen)) != 0)
			return rc;
	}
	sum->roster = nr;
	sum->requests = nq;
	return 0;
}

/* qsort's order of strings */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int parse_blocklist(const json_t *list, struct xc_store_req *r,
                           struct xc_import_summary *sum, char *err, size_t errlen)
{
	size_t n = json_array_size(list), kept = 0;

	if (!json_is_array(list) || n > XC_IMPORT_MAX_BLOCKED)
		return cm_errf(err, errlen, -EINVAL,
		               "\"blocklist\" must be an array of %d JIDs at most",
		               XC_IMPORT_MAX_BLOCKED);
	if (n && !(r->jids = calloc(n, sizeof(*r->jids))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(list, i));
		char why[CM_ERR_MAX];
		struct xc_jid j;
		int rc;

		if (!s)
			return cm_errf(err, errlen, -EINVAL,
			               "blocklist[%zu]: must be a string (a JID)", i);
		rc = xc_jid_parse(&j, s, strlen(s), why, sizeof(why));
		if (rc == -ENOMEM)
			return rc;
		if (rc)
			return cm_errf(err, errlen, -EINVAL,
			               "blocklist[%zu]: \"%s\" is not a JID: %s", i, s, why);
		r->jids[r->njids++] = j.s; /* takes the string */
	}
	/* the same JID written twice (after normalisation) is one entry: sorted, neighbours */
	if (n)
		qsort(r->jids, n, sizeof(*r->jids), cmp_str);
	for (size_t i = 0; i < r->njids; i++) {
		if (kept && strcmp(r->jids[kept - 1], r->jids[i]) == 0) {
			free(r->jids[i]);
			continue;
		}
		r->jids[kept++] = r->jids[i];
	}
	r->njids = kept;
	sum->blocked = kept;
	return 0;
}

/* One offline message: it parses as a message to the account, and is kept as our writer
 * writes it. */
static int parse_offline_one(const json_t *o, const struct xc_import_limits *lim,
                             const struct cm_xml_node *scope, struct xc_store_req *r,
                             struct xc_offline_msg *m, const char *where, char *err, size_t errlen)
{
	static const char *const fields[] = {"stamp_ms", "stanza", NULL};
	const json_t *stamp = json_object_get(o, "stamp_ms");
	const char *text = json_string_value(json_object_get(o, "stanza"));
	struct cm_xml_node *st = NULL;
	struct xc_jid to = {0};
	const char *t;
	int rc;

	if ((rc = object_of(o, fields, where, err, errlen)) != 0)
		return rc;
	if (!json_is_integer(stamp) || json_integer_value(stamp) < 0 ||
	    json_integer_value(stamp) > XC_IMPORT_MAX_STAMP_MS)
		return cm_errf(
		    err, errlen, -EINVAL,
		    "%s: \"stamp_ms\" (when it arrived, Unix ms, before the year 10000) is "
		    "required",
		    where);
	if (!text || strlen(text) == 0 || strlen(text) > lim->max_stanza)
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"stanza\" must be 1 to %zu bytes (c2s.max_stanza)", where,
		               lim->max_stanza);
	rc = xc_message_parse(text, strlen(text), &st);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"stanza\" is not one <message/> in XML (jabber:client)",
		               where);
	}
	t = cm_xml_attr(st, "type");
	if ((t && strcmp(t, "error") == 0) || !cm_xml_attr(st, "to") ||
	    xc_jid_parse(&to, cm_xml_attr(st, "to"), strlen(cm_xml_attr(st, "to")), NULL, 0) ||
	    xc_jid_bare_len(&to) != strlen(r->user) ||
	    memcmp(to.s, r->user, xc_jid_bare_len(&to)) != 0) {
		xc_jid_free(&to);
		cm_xml_node_free(st);
		return cm_errf(err, errlen, -EINVAL,
		               "%s: the message must be addressed to %s, and not be an error",
		               where, r->user);
	}
	xc_jid_free(&to);
	cm_xml_node_undeclare_ns(st, NULL); /* the client stream's: kept as delivered, without it */
	rc = written_again(st, scope, SIZE_MAX, &m->stanza);
	cm_xml_node_free(st);
	if (rc)
		return rc == -ENOMEM
		           ? rc
		           : cm_errf(err, errlen, -EINVAL, "%s: cannot be written", where);
	m->stamp_ms = (int64_t)json_integer_value(stamp);
	return 0;
}

static int parse_offline(const json_t *list, const struct xc_import_limits *lim,
                         struct xc_store_req *r, struct xc_import_summary *sum, char *err,
                         size_t errlen)
{
	size_t n = json_array_size(list);
	struct cm_xml_node *scope = NULL;
	char where[48];
	int rc = 0;

	if (!json_is_array(list))
		return cm_errf(err, errlen, -EINVAL, "\"offline\" must be an array");
	if (n > lim->max_offline)
		return cm_errf(err, errlen, -EINVAL,
		               "%zu offline messages: offline.max_per_user keeps %zu", n,
		               lim->max_offline);
	if (n == 0)
		return 0;
	if (!(r->msgs = calloc(n, sizeof(*r->msgs))))
		return -ENOMEM;
	rc = cm_xml_node_new(&scope, "stream:stream", CM_XML_NS_STREAM);
	rc = rc ? rc : cm_xml_node_declare_ns(scope, NULL, CM_XML_NS_CLIENT);
	for (size_t i = 0; i < n && !rc; i++) {
		snprintf(where, sizeof(where), "offline[%zu]", i);
		rc = parse_offline_one(json_array_get(list, i), lim, scope, r, &r->msgs[i], where,
		                       err, errlen);
		r->nmsgs = i + 1;
	}
	cm_xml_node_free(scope);
	sum->offline = rc ? 0 : n;
	return rc;
}

/* Roster groups for a node of the roster access model: sorted, each followed by '\n'. */
static int node_groups(const json_t *groups, char **out, const char *where, char *err,
                       size_t errlen)
{
	size_t n = json_array_size(groups), len = 0;
	const char **v;
	char *s;
	int rc = 0;

	if (!json_is_array(groups) || n == 0 || n > XC_ROSTER_MAX_GROUPS)
		return cm_errf(err, errlen, -EINVAL,
		               "%s: access \"roster\" takes \"groups\", 1 to %d roster groups",
		               where, XC_ROSTER_MAX_GROUPS);
	if (!(v = calloc(n, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		v[i] = json_string_value(json_array_get(groups, i));
		if (!v[i])
			rc =
			    cm_errf(err, errlen, -EINVAL, "%s: each group must be a string", where);
		else if ((rc = name_ok(v[i], "each group", where, err, errlen)) == 0)
			len += strlen(v[i]) + 1;
	}
	if (!rc) {
		qsort(v, n, sizeof(*v), cmp_str);
		s = *out = malloc(len + 1);
		for (size_t i = 0; s && i < n; i++)
			s += sprintf(s, "%s\n", v[i]);
		rc = *out ? 0 : -ENOMEM;
	}
	free(v);
	return rc;
}

/* One item of a PEP node, appended to pr->items (made like proto); the node's items start at
 * first. */
static int pep_item(const json_t *it, const struct xc_import_limits *lim, const char *node,
                    const struct xc_pep_item *proto, struct xc_pep_req *pr, size_t first,
                    const char *w, char *err, size_t errlen)
{
	static const char *const fields[] = {"id", "payload", NULL};
	const char *id = json_string_value(json_object_get(it, "id"));
	const char *pl = json_string_value(json_object_get(it, "payload"));
	struct xc_pep_item *dst = &pr->items[pr->nitems];
	struct cm_xml_node *x = NULL;
	int rc;

	*dst = *proto;
	dst->groups = NULL;
	dst->node = strdup(node);
	pr->nitems++; /* freed with the request from here on */
	if (!dst->node || (proto->groups && !(dst->groups = strdup(proto->groups))))
		return -ENOMEM;
	if ((rc = object_of(it, fields, w, err, errlen)) != 0)
		return rc;
	if (!id || !*id || strlen(id) > 1023 || !cm_xml_text_valid(id, strlen(id)))
		return cm_errf(err, errlen, -EINVAL, "%s: \"id\" must be 1 to 1023 bytes of text",
		               w);
	for (size_t k = first; k + 1 < pr->nitems; k++)
		if (strcmp(pr->items[k].id, id) == 0)
			return cm_errf(err, errlen, -EINVAL, "%s: item %s is named twice", w, id);
	if (!(dst->id = strdup(id)))
		return -ENOMEM;
	if (!pl)
		return cm_errf(err, errlen, -EINVAL, "%s: \"payload\" (XML text) is required", w);
	if (strlen(pl) > 2 * lim->max_payload) /* far too long to fit once written again */
		return cm_errf(err, errlen, -EINVAL,
		               "%s: the payload is over %zu bytes (pep.max_payload)", w,
		               lim->max_payload);
	if ((rc = xc_stanza_parse(pl, strlen(pl), &x)) != 0)
		return rc == -ENOMEM ? rc
		                     : cm_errf(err, errlen, -EINVAL,
		                               "%s: \"payload\" is not one XML element", w);
	rc = written_again(x, NULL, lim->max_payload, &dst->payload);
	cm_xml_node_free(x);
	if (rc == -EMSGSIZE)
		return cm_errf(err, errlen, -EINVAL,
		               "%s: the payload is over %zu bytes (pep.max_payload)", w,
		               lim->max_payload);
	return rc == -EINVAL ? cm_errf(err, errlen, rc, "%s: the payload cannot be written", w)
	                     : rc;
}

/* One PEP node with its items, appended to r->pep->items. */
static int parse_node(const json_t *o, const struct xc_import_limits *lim, struct xc_store_req *r,
                      struct xc_import_summary *sum, const char *where, char *err, size_t errlen)
{
	static const char *const fields[] = {"node",      "access", "groups", "persist",
	                                     "max_items", "items",  NULL};
	static const char *const models[] = {"presence", "open", "whitelist", "roster"};
	const char *node = json_string_value(json_object_get(o, "node"));
	const char *access = json_string_value(json_object_get(o, "access"));
	const json_t *items = json_object_get(o, "items"), *max = json_object_get(o, "max_items");
	struct xc_pep_req *pr = r->pep;
	struct xc_pep_item proto = {.access = XC_PEP_PRESENCE, .persist = true, .max_items = 1};
	size_t n = json_array_size(items), keeps, first = pr->nitems;
	struct xc_pep_item *nv;
	int rc;

	if ((rc = object_of(o, fields, where, err, errlen)) != 0)
		return rc;
	if (!node || !*node || strlen(node) > 1023 || !cm_xml_text_valid(node, strlen(node)))
		return cm_errf(err, errlen, -EINVAL, "%s: \"node\" must be 1 to 1023 bytes of text",
		               where);
	for (size_t i = 0; i < first; i++)
		if (strcmp(pr->items[i].node, node) == 0)
			return cm_errf(err, errlen, -EINVAL, "%s: node %s is named twice", where,
			               node);
	if (access) {
		int m = 0;

		while (m < 4 && strcmp(access, models[m]) != 0)
			m++;
		if (m == 4)
			return cm_errf(err, errlen, -EINVAL,
			               "%s: \"access\" must be presence, open, whitelist or roster",
			               where);
		proto.access = m; /* the order of enum xc_pep_access */
	}
	if ((rc = flag(o, "persist", &proto.persist, where, err, errlen)) != 0)
		return rc;
	if (!json_object_get(o, "persist"))
		proto.persist = true;
	if (max && json_is_string(max) && strcmp(json_string_value(max), "max") == 0)
		proto.max_items = XC_PEP_MAX_ITEMS;
	else if (max && (!json_is_integer(max) || json_integer_value(max) < 1 ||
	                 json_integer_value(max) > (json_int_t)lim->max_items))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"max_items\" must be \"max\" or 1 to %zu (pep.max_items)",
		               where, lim->max_items);
	else if (max)
		proto.max_items = (unsigned)json_integer_value(max);
	keeps = !proto.persist                        ? 1
	        : proto.max_items == XC_PEP_MAX_ITEMS ? lim->max_items
	                                              : proto.max_items;
	if (!json_is_array(items) || n == 0 || n > keeps)
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"items\" must be an array of 1 to %zu (what the node keeps)",
		               where, keeps);
	if (proto.access != XC_PEP_ROSTER && json_object_get(o, "groups"))
		return cm_errf(err, errlen, -EINVAL,
		               "%s: \"groups\" go with access \"roster\" only", where);
	if (proto.access == XC_PEP_ROSTER &&
	    (rc = node_groups(json_object_get(o, "groups"), &proto.groups, where, err, errlen)))
		return rc;
	if (!(nv = realloc(pr->items, (first + n) * sizeof(*nv)))) {
		free(proto.groups);
		return -ENOMEM;
	}
	pr->items = nv;
	for (size_t i = 0; i < n && !rc; i++) {
		char w[96];

		snprintf(w, sizeof(w), "%s.items[%zu]", where, i);
		rc = pep_item(json_array_get(items, i), lim, node, &proto, pr, first, w, err,
		              errlen);
	}
	free(proto.groups);
	if (!rc) {
		sum->pep_nodes++;
		sum->pep_items += n;
	}
	return rc;
}

static int parse_pep(const json_t *list, const struct xc_import_limits *lim, struct xc_store_req *r,
                     struct xc_import_summary *sum, char *err, size_t errlen)
{
	char where[48];
	int rc = 0;

	if (!json_is_array(list) || json_array_size(list) > lim->max_nodes)
		return cm_errf(err, errlen, -EINVAL,
		               "\"pep\" must be an array of %zu nodes at most (pep.max_nodes)",
		               lim->max_nodes);
	if (json_array_size(list) == 0)
		return 0;
	if (!(r->pep = calloc(1, sizeof(*r->pep))))
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
		snprintf(where, sizeof(where), "pep[%zu]", i);
		rc = parse_node(json_array_get(list, i), lim, r, sum, where, err, errlen);
	}
	return rc;
}

/* "vcard": one <vCard xmlns='vcard-temp'/>, kept as our writer writes it, as vcard.c keeps what
 * a client sets. */
static int parse_vcard(const json_t *v, const struct xc_import_limits *lim, struct xc_store_req *r,
                       struct xc_import_summary *sum, char *err, size_t errlen)
{
	const char *text = json_string_value(v);
	struct cm_xml_node *x = NULL;
	int rc;

	if (!text || strlen(text) > 2 * lim->max_payload)
		return cm_errf(
		    err, errlen, -EINVAL,
		    "\"vcard\" must be a vCard in XML of %zu bytes at most (pep.max_payload)",
		    lim->max_payload);
	if ((rc = xc_stanza_parse(text, strlen(text), &x)) == -ENOMEM)
		return rc;
	if (rc || strcmp(x->name, "vCard") != 0 || strcmp(x->ns, XC_NS_VCARD) != 0) {
		cm_xml_node_free(x);
		return cm_errf(err, errlen, -EINVAL, "\"vcard\" is not one <vCard xmlns='%s'/>",
		               XC_NS_VCARD);
	}
	rc = written_again(x, NULL, lim->max_payload, &r->stanza);
	cm_xml_node_free(x);
	if (rc == -EMSGSIZE)
		return cm_errf(err, errlen, -EINVAL,
		               "\"vcard\" is over %zu bytes (pep.max_payload) as written",
		               lim->max_payload);
	if (rc == -EINVAL)
		return cm_errf(err, errlen, rc, "\"vcard\" cannot be written");
	sum->vcard = rc == 0;
	return rc;
}

/* "private": private XML (XEP-0049), one element per namespace, each kept as our writer writes
 * it, as private.c keeps what a client sets. */
static int parse_private(const json_t *list, const struct xc_import_limits *lim,
                         struct xc_store_req *r, struct xc_import_summary *sum, char *err,
                         size_t errlen)
{
	if (!json_is_array(list))
		return cm_errf(err, errlen, -EINVAL,
		               "\"private\" must be an array of XML elements");
	if (json_array_size(list) > lim->max_private)
		return cm_errf(err, errlen, -EINVAL,
		               "\"private\" has %zu elements; an account keeps %zu at most "
		               "(private_storage.max_namespaces)",
		               json_array_size(list), lim->max_private);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *text = json_string_value(json_array_get(list, i));
		struct cm_xml_node *x = NULL;
		char *xml = NULL;
		int rc;

		if (!text || strlen(text) > 2 * lim->max_private_bytes)
			return cm_errf(
			    err, errlen, -EINVAL,
			    "private[%zu] must be an element in XML of %zu bytes at most "
			    "(private_storage.max_bytes)",
			    i, lim->max_private_bytes);
		if ((rc = xc_stanza_parse(text, strlen(text), &x)) == -ENOMEM)
			return rc;
		if (rc || xc_private_ns_reserved(x->ns)) {
			cm_xml_node_free(x);
			return cm_errf(err, errlen, -EINVAL,
			               "private[%zu] is not one element in a namespace of its own",
			               i);
		}
		for (size_t j = 0; j < r->npriv; j++)
			if (strcmp(r->priv[j].ns, x->ns) == 0) {
				rc = cm_errf(err, errlen, -EINVAL,
				             "private[%zu]: a second element in the namespace %s",
				             i, x->ns);
				cm_xml_node_free(x);
				return rc;
			}
		/* an element with nothing in it is what a client reading the namespace gets when
		 * nothing is kept (a set of it removes what is): nothing to keep */
		rc = written_again(x, NULL, lim->max_private_bytes, &xml);
		if (!rc && (x->attrs || x->children))
			rc = xc_store_req_add_private(r, x->ns, xml);
		cm_xml_node_free(x);
		free(xml);
		if (rc == -EMSGSIZE)
			return cm_errf(
			    err, errlen, -EINVAL,
			    "private[%zu] is over %zu bytes (private_storage.max_bytes) as "
			    "written",
			    i, lim->max_private_bytes);
		if (rc == -EINVAL)
			return cm_errf(err, errlen, rc, "private[%zu] cannot be written", i);
		if (rc)
			return rc;
	}
	sum->private_ns = r->npriv;
	return 0;
}

static int parse_doc(const json_t *doc, const struct xc_import_limits *lim, struct xc_store_req *r,
                     struct xc_import_summary *sum, char *err, size_t errlen)
{
	static const char *const fields[] = {"jid",      "password",  "scram",   "roster",
	                                     "requests", "blocklist", "offline", "pep",
	                                     "vcard",    "private",   NULL};
	const char *jid = json_string_value(json_object_get(doc, "jid"));
	const json_t *pw = json_object_get(doc, "password"), *scram = json_object_get(doc, "scram");
	const json_t *list;
	int rc;

	if ((rc = object_of(doc, fields, "the document", err, errlen)) != 0)
		return rc;
	if (!jid)
		return cm_errf(err, errlen, -EINVAL, "\"jid\" (a string) is required");
	if ((rc = bare_jid(jid, true, &r->user, "jid", err, errlen)) != 0)
		return rc;
	if (!pw == !scram)
		return cm_errf(err, errlen, -EINVAL,
		               "one of \"password\" and \"scram\" is required, not both");
	if (pw) {
		const char *p = json_string_value(pw);

		if (!p || json_string_length(pw) == 0 || json_string_length(pw) > PASSWORD_MAX ||
		    strlen(p) != json_string_length(pw))
			return cm_errf(err, errlen, -EINVAL,
			               "\"password\" must be a string of 1 to %d bytes",
			               PASSWORD_MAX);
		rc = xc_scram_creds_make_all(p, strlen(p), lim->iter, r->creds);
		if (rc == -EINVAL)
			return cm_errf(err, errlen, rc,
			               "the password has characters SASLprep prohibits");
		if (rc)
			return rc;
		sum->hashes = (1u << XC_SCRAM_NHASH) - 1;
	} else if ((rc = parse_scram(scram, r, &sum->hashes, err, errlen)) != 0)
		return rc;
	if ((rc = parse_roster(json_object_get(doc, "roster"), json_object_get(doc, "requests"), r,
	                       sum, err, errlen)) != 0)
		return rc;
	if ((list = json_object_get(doc, "blocklist")) != NULL &&
	    (rc = parse_blocklist(list, r, sum, err, errlen)) != 0)
		return rc;
	if ((list = json_object_get(doc, "offline")) != NULL &&
	    (rc = parse_offline(list, lim, r, sum, err, errlen)) != 0)
		return rc;
	if ((list = json_object_get(doc, "pep")) != NULL &&
	    (rc = parse_pep(list, lim, r, sum, err, errlen)) != 0)
		return rc;
	if ((list = json_object_get(doc, "vcard")) != NULL &&
	    (rc = parse_vcard(list, lim, r, sum, err, errlen)) != 0)
		return rc;
	if ((list = json_object_get(doc, "private")) != NULL &&
	    (rc = parse_private(list, lim, r, sum, err, errlen)) != 0)
		return rc;
	return 0;
}

int xc_import_parse(const char *text, size_t len, const struct xc_import_limits *lim,
                    struct xc_store_req *r, struct xc_import_summary *sum, char *err, size_t errlen)
{
	json_error_t e;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	int rc;

	memset(sum, 0, sizeof(*sum));
	if (!doc || !json_is_object(doc)) {
		json_decref(doc);
		return cm_errf(err, errlen, -EINVAL, "the body must be a JSON object%s%s",
		               doc ? "" : ": ", doc ? "" : e.text);
	}
	rc = parse_doc(doc, lim, r, sum, err, errlen);
	json_decref(doc);
	return rc;
}

/* --- the document of an account (XC_STORE_ACCOUNT_EXPORT) --------------------------------- */

json_t *xc_import_b64(const void *data, size_t n)
{
	struct cm_buf b;
	json_t *j = NULL;

	cm_buf_init(&b, 0);
	if (cm_crypto_b64_encode(&b, data, n, CM_B64_STD) == 0)
		j = json_stringn(b.data, b.len);
	cm_buf_free(&b);
	return j;
}

/* "a\nb\n" (groups as the store keeps a node's) as an array. */
static json_t *split_lines(const char *s)
{
	json_t *a = json_array();

	while (a && s && *s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);

		if (n && json_array_append_new(a, json_stringn(s, n))) {
			json_decref(a);
			return NULL;
		}
		s += n + (nl != NULL);
	}
	return a;
}

static json_t *doc_scram(const struct xc_store_req *r)
{
	json_t *o = json_object();

	for (int h = 0; o && h < XC_SCRAM_NHASH; h++) {
		const struct xc_scram_creds *c = &r->creds[h];
		size_t kl = xc_scram_key_len((enum xc_scram_hash)h);
		json_t *k;

		if (c->iter == 0)
			continue;
		k = json_pack("{sI so so so}", "iterations", (json_int_t)c->iter, "salt",
		              xc_import_b64(c->salt, c->salt_len), "stored_key",
		              xc_import_b64(c->stored_key, kl), "server_key",
		              xc_import_b64(c->server_key, kl));
		if (!k || json_object_set_new(o, xc_scram_mech_name((enum xc_scram_hash)h), k)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static int doc_roster(const struct xc_store_req *r, json_t *doc, size_t *dropped)
{
	json_t *roster = json_array(), *requests = json_array();
	int rc = !roster || !requests ? -ENOMEM : 0;

	for (size_t i = 0; i < r->nitems && !rc; i++) {
		const struct xc_roster_item *it = &r->items[i];
		json_t *o, *groups;

		if (!it->st.listed) {
			if (it->st.in)
				rc = json_array_append_new(requests, json_string(it->contact))
				         ? -ENOMEM
				         : 0;
			else
				(*dropped)++;
			continue;
		}
		groups = json_array();
		for (size_t g = 0; groups && g < it->ngroups; g++)
			if (json_array_append_new(groups, json_string(it->groups[g]))) {
				json_decref(groups);
				groups = NULL;
			}
		o = json_pack("{ss so ss sb sb sb}", "jid", it->contact, "groups", groups,
		              "subscription", xc_sub_name(it->st.sub), "ask", it->st.out,
		              "approved", it->st.approved, "pending_in", it->st.in);
		if (o && it->name && json_object_set_new(o, "name", json_string(it->name)))
			rc = -ENOMEM;
		if (!o || json_array_append_new(roster, o))
			rc = -ENOMEM;
	}
	if (!rc && ((json_array_size(roster) && json_object_set(doc, "roster", roster)) ||
	            (json_array_size(requests) && json_object_set(doc, "requests", requests))))
		rc = -ENOMEM;
	json_decref(roster);
	json_decref(requests);
	return rc;
}

static json_t *doc_pep(const struct xc_pep_req *pr)
{
	static const char *const models[] = {"presence", "open", "whitelist", "roster"};
	json_t *list = json_array(), *node = NULL;

	for (size_t i = 0; list && i < pr->nitems; i++) {
		const struct xc_pep_item *it = &pr->items[i];
		int m = it->access >= 0 && it->access < 4 ? it->access : XC_PEP_PRESENCE;

		if (i == 0 || strcmp(it->node, pr->items[i - 1].node) != 0) {
			node = json_pack("{ss ss sb s[]}", "node", it->node, "access", models[m],
			                 "persist", it->persist, "items");
			if (node && json_object_set_new(node, "max_items",
			                                it->max_items == XC_PEP_MAX_ITEMS
			                                    ? json_string("max")
			                                    : json_integer(it->max_items)))
				node = (json_decref(node), NULL);
			if (node && m == XC_PEP_ROSTER &&
			    json_object_set_new(node, "groups", split_lines(it->groups)))
				node = (json_decref(node), NULL);
			if (!node || json_array_append_new(list, node)) {
				json_decref(list);
				return NULL;
			}
		}
		if (json_array_append_new(
		        json_object_get(node, "items"),
		        json_pack("{ss ss}", "id", it->id, "payload", it->payload))) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

int xc_import_doc(const struct xc_store_req *r, char **out, size_t *dropped)
{
	json_t *doc = json_pack("{ss}", "jid", r->user), *v;
	int rc = doc ? 0 : -ENOMEM;

	*out = NULL;
	*dropped = 0;
	if (!rc && (!(v = doc_scram(r)) || json_object_set_new(doc, "scram", v)))
		rc = -ENOMEM;
	rc = rc ? rc : doc_roster(r, doc, dropped);
	if (!rc && r->njids) {
		json_t *b = json_array();

		for (size_t i = 0; b && i < r->njids; i++)
			if (json_array_append_new(b, json_string(r->jids[i])))
				b = (json_decref(b), NULL);
		if (!b || json_object_set_new(doc, "blocklist", b))
			rc = -ENOMEM;
	}
	if (!rc && r->nmsgs) {
		json_t *m = json_array();

		for (size_t i = 0; m && i < r->nmsgs; i++)
			if (json_array_append_new(m, json_pack("{sI ss}", "stamp_ms",
			                                       (json_int_t)r->msgs[i].stamp_ms,
			                                       "stanza", r->msgs[i].stanza)))
				m = (json_decref(m), NULL);
		if (!m || json_object_set_new(doc, "offline", m))
			rc = -ENOMEM;
	}
	if (!rc && r->pep && r->pep->nitems &&
	    (!(v = doc_pep(r->pep)) || json_object_set_new(doc, "pep", v)))
		rc = -ENOMEM;
	if (!rc && r->stanza && json_object_set_new(doc, "vcard", json_string(r->stanza)))
		rc = -ENOMEM;
	if (!rc && r->npriv) {
		json_t *a = json_array();

		for (size_t i = 0; a && i < r->npriv; i++)
			if (r->priv[i].xml && json_array_append_new(a, json_string(r->priv[i].xml)))
				a = (json_decref(a), NULL);
		if (!a || json_object_set_new(doc, "private", a))
			rc = -ENOMEM;
	}
	if (!rc && !(*out = json_dumps(doc, JSON_COMPACT)))
		rc = -ENOMEM;
	json_decref(doc);
	return rc;
}
