/* archive_import.c - an account's archived messages from another server, checked (see
 * archive_import.h). */
#include "archive_import.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/xml.h"
#include "import.h"
#include "jid.h"
#include "mam.h"
#include "server.h"
#include "stanza.h"

void xc_archive_batch_clear(struct xc_archive_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->rows[i].with);
		free(b->rows[i].stanza);
	}
	free(b->rows);
	free(b->user);
	memset(b, 0, sizeof(*b));
}

/* "jid": an account of a host srv serves, as a bare JID. */
static int account(const json_t *v, const struct xc_server *srv, struct xc_jid *j, char *err,
                   size_t errlen)
{
	const char *s = json_string_value(v);
	char why[CM_ERR_MAX];
	int rc;

	if (!s)
		return cm_errf(err, errlen, -EINVAL, "\"jid\" (a string) is required");
	rc = xc_jid_parse(j, s, strlen(s), why, sizeof(why));
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return cm_errf(err, errlen, -EINVAL, "\"jid\": \"%s\" is not a JID: %s", s, why);
	if (!j->llen || j->rlen || !xc_local_host(srv, xc_jid_domain(j), j->dlen)) {
		xc_jid_free(j);
		return cm_errf(err, errlen, -EINVAL,
		               "\"jid\": \"%s\" is not an account (user@host) of a host served", s);
	}
	return 0;
}

/* The peer of message st in user's archive: the side of from and to that is not the account's
 * (to, for a message to the account itself). -EINVAL when neither is the account's. */
static int peer(const struct cm_xml_node *st, const struct xc_jid *user, char **with)
{
	struct xc_jid from = {0}, to = {0};
	const struct xc_jid *other = NULL;
	int rc = xc_stanza_jid(st, "from", &from);

	rc = rc ? rc : xc_stanza_jid(st, "to", &to);
	if (!rc) {
		if (!xc_jid_empty(&from) && xc_jid_bare_equal(&from, user))
			other = &to;
		else if (!xc_jid_empty(&to) && xc_jid_bare_equal(&to, user))
			other = &from;
		rc = other && !xc_jid_empty(other) ? 0 : -EINVAL;
	}
	if (!rc && !(*with = strdup(other->s)))
		rc = -ENOMEM;
	xc_jid_free(&from);
	xc_jid_free(&to);
	return rc == -ENOMEM ? rc : rc ? -EINVAL : 0;
}

/* messages[i] into row. */
static int message(const json_t *m, size_t i, const struct xc_server *srv, size_t max_stanza,
                   const struct xc_jid *user, struct xc_archive_row *row, char *err, size_t errlen)
{
	static const char *const keys[] = {"stamp_ms", "stanza", NULL};
	const json_t *stamp = json_object_get(m, "stamp_ms");
	const char *text = json_string_value(json_object_get(m, "stanza")), *k;
	struct cm_xml_node *st = NULL;
	struct cm_buf b;
	json_t *v;
	int rc;

	if (!json_is_object(m))
		return cm_errf(err, errlen, -EINVAL, "messages[%zu] must be an object", i);
	json_object_foreach((json_t *)m, k, v)
	{
		bool known = false;

		for (size_t j = 0; keys[j]; j++)
			known = known || strcmp(k, keys[j]) == 0;
		if (!known)
			return cm_errf(err, errlen, -EINVAL,
			               "messages[%zu]: unknown member \"%s\" (stamp_ms, stanza)", i,
			               k);
	}
	if (!json_is_integer(stamp) || json_integer_value(stamp) < 0 ||
	    json_integer_value(stamp) > XC_IMPORT_MAX_STAMP_MS)
		return cm_errf(err, errlen, -EINVAL,
		               "messages[%zu]: \"stamp_ms\" must be Unix milliseconds from 0 to "
		               "year 9999",
		               i);
	if (!text || json_string_length(json_object_get(m, "stanza")) > max_stanza)
		return cm_errf(err, errlen, -EINVAL,
		               "messages[%zu]: \"stanza\" must be a message in XML of %zu bytes at "
		               "most (c2s.max_stanza)",
		               i, max_stanza);
	rc = xc_message_parse(text, strlen(text), &st);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		return cm_errf(err, errlen, -EINVAL,
		               "messages[%zu]: \"stanza\" is not one <message/> of jabber:client",
		               i);
	}
	rc = peer(st, user, &row->with);
	if (rc) {
		cm_xml_node_free(st);
		return rc == -ENOMEM
		           ? rc
		           : cm_errf(err, errlen, -EINVAL,
		                     "messages[%zu]: neither its 'from' nor its 'to' is %s "
		                     "(and the other a JID)",
		                     i, user->s);
	}
	xc_mam_strip_ids(srv, st); /* the server gives its own */
	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, st, srv->scope);
	cm_xml_node_free(st);
	if (!rc && b.len > max_stanza)
		rc = cm_errf(err, errlen, -EINVAL,
		             "messages[%zu] is over %zu bytes (c2s.max_stanza) as written", i,
		             max_stanza);
	else if (rc == -EINVAL)
		rc = cm_errf(err, errlen, rc, "messages[%zu] cannot be written", i);
	row->len = b.len;
	if (!rc && !(row->stanza = cm_buf_steal(&b)))
		rc = -ENOMEM;
	cm_buf_free(&b);
	row->stamp_ms = (int64_t)json_integer_value(stamp);
	return rc;
}

static int parse(const json_t *doc, const struct xc_server *srv, size_t max_stanza,
                 struct xc_archive_batch *b, char *err, size_t errlen)
{
	const json_t *list = json_object_get(doc, "messages");
	struct xc_jid user = {0};
	const char *k;
	json_t *v;
	int rc;

	json_object_foreach((json_t *)doc, k, v)
	{
		if (strcmp(k, "jid") != 0 && strcmp(k, "messages") != 0)
			return cm_errf(err, errlen, -EINVAL,
			               "unknown member \"%s\" (jid, messages)", k);
	}
	if ((rc = account(json_object_get(doc, "jid"), srv, &user, err, errlen)) != 0)
		return rc;
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > XC_ARCHIVE_IMPORT_MAX) {
		xc_jid_free(&user);
		return cm_errf(err, errlen, -EINVAL,
		               "\"messages\" must be an array of 1 to %d messages, oldest first",
		               XC_ARCHIVE_IMPORT_MAX);
	}
	b->user = strdup(user.s);
	b->rows = calloc(json_array_size(list), sizeof(*b->rows));
	rc = b->user && b->rows ? 0 : -ENOMEM;
	for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
		rc = message(json_array_get(list, i), i, srv, max_stanza, &user, &b->rows[i], err,
		             errlen);
		b->n = i + 1; /* (what it holds is released on failure too) */
	}
	xc_jid_free(&user);
	return rc;
}

int xc_archive_import_parse(const char *text, size_t len, const struct xc_server *srv,
                            size_t max_stanza, struct xc_archive_batch *b, char *err, size_t errlen)
{
	json_error_t e;
	json_t *doc;
	int rc;

	memset(b, 0, sizeof(*b));
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!doc || !json_is_object(doc)) {
		json_decref(doc);
		return cm_errf(err, errlen, -EINVAL, "the body must be a JSON object%s%s",
		               doc ? "" : ": ", doc ? "" : e.text);
	}
	rc = parse(doc, srv, max_stanza, b, err, errlen);
	json_decref(doc);
	if (rc)
		xc_archive_batch_clear(b);
	return rc;
}
