/* test_store_import.c - the store's side of an import: an account with its roster and block list
 * written all or nothing, keys added for the hashes an account lacks, and the count of such
 * accounts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "tests/support/store_fix.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/scram.h"
#include "xmpp-core/src/store.h"

static struct xc_store_req *answer;

static void on_done(struct xc_store_req *r)
{
	answer = r;
}

/* Submit r and wait for its answer (free it with xc_store_req_free). */
static struct xc_store_req *run(struct store_fix *f, struct xc_store_req *r)
{
	answer = NULL;
	assert_int_equal(xc_store_submit(f->st, r), 0);
	while (!answer)
		uv_run(&f->uv, UV_RUN_ONCE);
	return answer;
}

static struct xc_store_req *req(struct store_fix *f, enum xc_store_op op, const char *user)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->l, on_done, NULL);

	assert_non_null(r);
	if (user)
		assert_int_equal(xc_store_req_set(&r->user, user), 0);
	return r;
}

/* An import of user with SCRAM-SHA-1 keys only, a roster of contacts, one request, and
 * blocked JIDs. */
static struct xc_store_req *import_req(struct store_fix *f, const char *user, const char *dup)
{
	struct xc_store_req *r = req(f, XC_STORE_ACCOUNT_IMPORT, user);
	const char *contacts[] = {"bob@example.org", "carol@example.org", dup};
	size_t n = dup ? 3 : 2;

	assert_int_equal(xc_scram_creds_make(XC_SCRAM_SHA1, "secret", 6, 4096,
	                                     (const unsigned char *)"salt", 4,
	                                     &r->creds[XC_SCRAM_SHA1]),
	                 0);
	r->items = calloc(n, sizeof(*r->items));
	assert_non_null(r->items);
	for (size_t i = 0; i < n; i++) {
		r->items[i].contact = strdup(contacts[i]);
		r->items[i].st = (struct xc_sub_state){.sub = XC_SUB_BOTH, .listed = true};
	}
	r->items[1].st = (struct xc_sub_state){.sub = XC_SUB_NONE, .in = true};
	r->nitems = n;
	r->jids = calloc(1, sizeof(*r->jids));
	r->jids[0] = strdup("spam@evil.example");
	r->njids = 1;
	r->msgs = calloc(2, sizeof(*r->msgs));
	for (int i = 0; i < 2; i++) {
		r->msgs[i].stamp_ms = 1000 * (i + 1);
		r->msgs[i].stanza =
		    strdup(i ? "<message to='alice@example.org'><body>2</body></message>"
		             : "<message to='alice@example.org'><body>1</body></message>");
	}
	r->nmsgs = 2;
	r->pep = calloc(1, sizeof(*r->pep));
	r->pep->items = calloc(2, sizeof(*r->pep->items));
	for (int i = 0; i < 2; i++) {
		struct xc_pep_item *it = &r->pep->items[i];

		it->node = strdup("urn:xmpp:bookmarks:1");
		it->id = strdup(i ? "room2" : "room1");
		it->payload =
		    strdup(i ? "<conference xmlns='urn:xmpp:bookmarks:1'/>"
		             : "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>");
		it->access = XC_PEP_WHITELIST;
		it->persist = true;
		it->max_items = XC_PEP_MAX_ITEMS;
	}
	r->pep->nitems = 2;
	r->stanza = strdup("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
	return r;
}

static void test_import_all_or_nothing(void **state)
{
	struct store_fix f;
	struct xc_store_req *r;

	(void)state;
	store_fix_open(&f, "test_store_import");
	r = run(&f, import_req(&f, "alice@example.org", NULL));
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "alice@example.org"));
	assert_true(r->found);
	assert_int_equal(r->nitems, 2);
	for (size_t i = 0; i < r->nitems; i++) {
		if (strcmp(r->items[i].contact, "carol@example.org") == 0) {
			assert_true(r->items[i].st.in);
			assert_false(r->items[i].st.listed);
		} else {
			assert_int_equal(r->items[i].st.sub, XC_SUB_BOTH);
			assert_true(r->items[i].st.listed);
		}
	}
	assert_int_equal(r->njids, 1);
	assert_string_equal(r->jids[0], "spam@evil.example");
	xc_store_req_free(r);
	/* the offline messages, oldest first, with their stamps */
	r = run(&f, req(&f, XC_STORE_OFFLINE_TAKE, "alice@example.org"));
	assert_int_equal(r->nmsgs, 2);
	assert_int_equal(r->msgs[0].stamp_ms, 1000);
	assert_string_equal(r->msgs[1].stanza,
	                    "<message to='alice@example.org'><body>2</body></message>");
	xc_store_req_free(r);
	/* the PEP node, as configured, with both items (newest first) */
	r = req(&f, XC_STORE_PEP_ITEMS, "alice@example.org");
	assert_int_equal(xc_store_req_set(&r->key, "urn:xmpp:bookmarks:1"), 0);
	r->pep = calloc(1, sizeof(*r->pep));
	r->pep->max = 10;
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->pep->cfg.access, XC_PEP_WHITELIST);
	assert_int_equal(r->pep->nitems, 2);
	assert_string_equal(r->pep->items[0].id, "room2");
	assert_string_equal(r->pep->items[1].payload,
	                    "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>");
	xc_store_req_free(r);
	/* the vCard */
	r = run(&f, req(&f, XC_STORE_VCARD_GET, "alice@example.org"));
	assert_true(r->found);
	assert_string_equal(r->stanza, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
	xc_store_req_free(r);
	/* the account exists: nothing of the second import is written */
	r = run(&f, import_req(&f, "alice@example.org", "dave@example.org"));
	assert_int_equal(r->err, -EEXIST);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "alice@example.org"));
	assert_int_equal(r->nitems, 2);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_OFFLINE_COUNT, "alice@example.org"));
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	/* SHA-1 keys only: SHA-256 has none */
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "alice@example.org"));
	assert_true(r->found);
	assert_int_equal(r->creds[XC_SCRAM_SHA256].iter, 0);
	assert_int_equal(r->creds[XC_SCRAM_SHA1].salt_len, 4);
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA1, &r->creds[XC_SCRAM_SHA1], "secret", 6),
	                 0);
	xc_store_req_free(r);
	store_fix_close(&f);
}

/* What an import wrote comes back out, in one read, as the document the import route takes:
 * the messages kept offline stay kept. */
static void test_export(void **state)
{
	static const struct xc_import_limits lim = {.iter = 4096,
	                                            .max_offline = 10,
	                                            .max_stanza = 4096,
	                                            .max_nodes = 10,
	                                            .max_items = 10,
	                                            .max_payload = 4096};
	struct xc_import_summary sum;
	struct store_fix f;
	struct xc_store_req *r, *again;
	char *doc = NULL, err[256] = "";
	size_t dropped = 9;

	(void)state;
	store_fix_open(&f, "test_store_export");
	r = run(&f, import_req(&f, "alice@example.org", NULL));
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_EXPORT, "alice@example.org"));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->nitems, 2);
	assert_int_equal(r->njids, 1);
	assert_int_equal(r->nmsgs, 2);
	assert_non_null(r->pep);
	assert_int_equal(r->pep->nitems, 2);
	assert_string_equal(r->pep->items[0].id, "room1"); /* oldest first */
	assert_string_equal(r->stanza, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
	assert_int_equal(xc_import_doc(r, &doc, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_non_null(strstr(doc, "\"requests\":[\"carol@example.org\"]"));
	assert_non_null(strstr(doc, "\"max_items\":\"max\""));
	assert_non_null(strstr(doc, "\"access\":\"whitelist\""));
	assert_null(strstr(doc, "SCRAM-SHA-256")); /* it has no keys for it */
	xc_store_req_free(r);
	/* the document parses as an import of the same account, with what was written */
	again = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL);
	assert_non_null(again);
	if (xc_import_parse(doc, strlen(doc), &lim, again, &sum, err, sizeof(err)) != 0)
		fail_msg("%s: %s", doc, err);
	assert_int_equal(sum.roster, 1);
	assert_int_equal(sum.requests, 1);
	assert_int_equal(sum.blocked, 1);
	assert_int_equal(sum.offline, 2);
	assert_int_equal(sum.pep_items, 2);
	assert_true(sum.vcard);
	assert_int_equal(
	    xc_scram_creds_check(XC_SCRAM_SHA1, &again->creds[XC_SCRAM_SHA1], "secret", 6), 0);
	xc_store_req_free(again);
	free(doc);
	/* still kept offline; and no such account */
	r = run(&f, req(&f, XC_STORE_OFFLINE_COUNT, "alice@example.org"));
	assert_int_equal(r->count, 2);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_EXPORT, "nobody@example.org"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	store_fix_close(&f);
}

static void test_add_creds_and_count(void **state)
{
	struct store_fix f;
	struct xc_store_req *r;
	struct xc_scram_creds sha1;

	(void)state;
	store_fix_open(&f, "test_store_import");
	xc_store_req_free(run(&f, import_req(&f, "alice@example.org", NULL)));
	xc_store_req_free(run(&f, import_req(&f, "bob@example.org", NULL)));
	r = req(&f, XC_STORE_ACCOUNT_LIST, NULL);
	assert_int_equal(xc_store_req_set(&r->key, "example.org"), 0);
	r = run(&f, r);
	assert_int_equal(r->njids, 2);
	assert_int_equal(r->count, 2);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "alice@example.org"));
	sha1 = r->creds[XC_SCRAM_SHA1];
	xc_store_req_free(r);

	/* both hashes offered: only the missing one is taken */
	r = req(&f, XC_STORE_ACCOUNT_ADD_CREDS, "alice@example.org");
	assert_int_equal(xc_scram_creds_make_all("secret", 6, 4096, r->creds), 0);
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 1);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "alice@example.org"));
	assert_memory_equal(&r->creds[XC_SCRAM_SHA1], &sha1, sizeof(sha1));
	assert_int_equal(
	    xc_scram_creds_check(XC_SCRAM_SHA256, &r->creds[XC_SCRAM_SHA256], "secret", 6), 0);
	xc_store_req_free(r);
	/* once more: nothing is missing, nothing changes */
	r = req(&f, XC_STORE_ACCOUNT_ADD_CREDS, "alice@example.org");
	assert_int_equal(xc_scram_creds_make_all("other", 5, 4096, r->creds), 0);
	r = run(&f, r);
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "alice@example.org"));
	assert_int_equal(
	    xc_scram_creds_check(XC_SCRAM_SHA256, &r->creds[XC_SCRAM_SHA256], "secret", 6), 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_ADD_CREDS, "ghost@example.org"));
	assert_int_equal(r->err, -ENOENT);
	xc_store_req_free(r);
	/* one of the two is complete now */
	r = req(&f, XC_STORE_ACCOUNT_LIST, NULL);
	assert_int_equal(xc_store_req_set(&r->key, "example.org"), 0);
	r = run(&f, r);
	assert_int_equal(r->count, 1);
	xc_store_req_free(r);
	store_fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_all_or_nothing),
	    cmocka_unit_test(test_add_creds_and_count),
	    cmocka_unit_test(test_export),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
