/* fuzz_xep227.c - libFuzzer target: XEP-0227 text read into import documents
 * (xc_xep227_read_buf()), each document then checked by the import route as xmppctl would send
 * it. The reader must answer 0 or -EINVAL (with a message naming the file) or -ENOMEM; an
 * account handed on has a JID and either a JSON object naming it or a reason; its document,
 * written as export-xep227 writes it (xc_xep227_file()) and read again, is the same document
 * (private XML included); an account's archive goes through the archive route's cutter, each of
 * its results sent, left behind or counted as skipped;
 * the route may refuse a document, but only with -EINVAL or -ENOMEM. Anything else abort()s. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/xml.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/store.h"
#include "xmpp-core/src/xep227.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A document's roster items without the flags that are false (absent means false). */
static void drop_false(json_t *doc)
{
	static const char *const flags[] = {"ask", "approved", "pending_in"};
	json_t *roster = json_object_get(doc, "roster");

	for (size_t i = 0; i < json_array_size(roster); i++)
		for (int f = 0; f < 3; f++)
			if (json_is_false(json_object_get(json_array_get(roster, i), flags[f])))
				json_object_del(json_array_get(roster, i), flags[f]);
}

/* The second reading of a written document. */
static int again(void *arg, const struct xc_xep227_account *a)
{
	json_t **out = arg;

	if (*out || !a->doc)
		abort(); /* one account, which came through once already */
	*out = json_loads(a->doc, 0, NULL);
	return 0;
}

/* What export-xep227 would write of the document (flags: for ejabberd or not) reads back as the
 * same document. */
static void round_trip(const char *text, unsigned flags)
{
	struct cm_buf xml;
	char err[CM_ERR_MAX];
	json_t *first = json_loads(text, 0, NULL), *second = NULL;
	int rc;

	cm_buf_init(&xml, 0);
	rc = xc_xep227_file(text, flags, &xml, err, sizeof(err));
	if (rc == -ENOMEM || !first) {
		json_decref(first);
		cm_buf_free(&xml);
		return;
	}
	if (rc != 0)
		abort();
	rc = xc_xep227_read_buf(xml.data, xml.len, "again.xml", NULL, again, &second, err,
	                        sizeof(err));
	if (rc == -ENOMEM || (rc == 0 && !second)) {
		json_decref(first);
		json_decref(second);
		cm_buf_free(&xml);
		return;
	}
	if (rc != 0)
		abort();
	drop_false(first);
	drop_false(second);
	if (!json_equal(first, second)) {
		char *a = json_dumps(first, JSON_SORT_KEYS),
		     *b = json_dumps(second, JSON_SORT_KEYS);

		fprintf(stderr, "read:  %s\nfile:  %s\nagain: %s\n", a ? a : "?", xml.data,
		        b ? b : "?");
		abort();
	}
	json_decref(first);
	json_decref(second);
	cm_buf_free(&xml);
}

/* An archive request the cutter made of an account's <archive/>: JSON of n messages. */
static int archive_request(void *arg, const char *body, size_t len, size_t n)
{
	json_t *d = json_loadb(body, len, 0, NULL), *list = json_object_get(d, "messages");

	(void)arg;
	if (!json_is_object(d) || json_array_size(list) != n || n == 0 || n > 4)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *st =
		    json_string_value(json_object_get(json_array_get(list, i), "stanza"));

		if (!st || strncmp(st, "<message", 8) != 0 || strlen(st) > 4096 ||
		    !json_is_integer(json_object_get(json_array_get(list, i), "stamp_ms")))
			abort();
	}
	json_decref(d);
	return 0;
}

/* The account's archive through the cutter: every result sent, left behind or skipped. */
static void check_archive(const struct xc_xep227_account *a)
{
	static const struct xc_prosody_mam_limits lim = {4096, 4, 64 * 1024};
	struct xc_prosody_mam *m = NULL;
	size_t skipped = 0, sent, left, results = 0;
	int rc;

	for (const struct cm_xml_node *r = cm_xml_child(a->archive, "result", "urn:xmpp:mam:2"); r;
	     r = cm_xml_child_next(r, "result", "urn:xmpp:mam:2"))
		results++;
	if (xc_prosody_mam_alloc(&m, a->jid, &lim, archive_request, NULL) != 0)
		return; /* (a name the cutter takes for no account's) */
	rc = xc_xep227_archive(a->archive, m, &skipped);
	xc_prosody_mam_counts(m, &sent, &left);
	if ((rc && rc != -ENOMEM) || (!rc && sent + left + skipped != results))
		abort();
	xc_prosody_mam_free(m);
}

static int check(void *arg, const struct xc_xep227_account *a)
{
	/* one iteration: a password in a document costs no real PBKDF2 here */
	static const struct xc_import_limits lim = {.iter = 1,
	                                            .max_offline = 8,
	                                            .max_stanza = 4096,
	                                            .max_nodes = 8,
	                                            .max_items = 4,
	                                            .max_payload = 4096,
	                                            .max_private = 4,
	                                            .max_private_bytes = 4096};
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX];
	json_t *doc;
	int rc;

	(void)arg;
	if (!a->jid || !a->file || !a->notes)
		abort();
	if (a->archive)
		check_archive(a);
	if (!a->doc) {
		if (!a->err || !*a->err)
			abort();
		return 0;
	}
	doc = json_loads(a->doc, 0, NULL);
	if (!doc || !json_is_string(json_object_get(doc, "jid")) ||
	    strcmp(json_string_value(json_object_get(doc, "jid")), a->jid) != 0)
		abort();
	json_decref(doc);
	round_trip(a->doc, 0);
	round_trip(a->doc, XC_XEP227_EJABBERD);
	if (!(r = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL)))
		return 0;
	rc = xc_import_parse(a->doc, strlen(a->doc), &lim, r, &sum, err, sizeof(err));
	if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
		abort();
	xc_store_req_free(r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CM_ERR_MAX] = "";
	int rc = xc_xep227_read_buf((const char *)data, size, "fuzz.xml", NULL, check, NULL, err,
	                            sizeof(err));

	if (rc != 0 && rc != -EINVAL && rc != -ENOMEM && rc != -E2BIG)
		abort();
	if (rc == -EINVAL && !strstr(err, "fuzz.xml"))
		abort();
	return 0;
}
