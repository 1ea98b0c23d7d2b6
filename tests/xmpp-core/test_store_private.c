/* test_store_private.c - private XML storage in the store (XC_STORE_PRIVATE_*): elements kept per
 * (account, namespace), replaced and removed, the namespace limit (all or nothing, and not in
 * the way of replacing or removing), accounts kept apart, import and export, the account's
 * deletion, and durability across a reopen. */
#include <errno.h>

#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

struct fix {
	struct store_fix s;
};

static struct xc_store_req *req(struct fix *f, enum xc_store_op op, const char *user)
{
	return store_fix_req(&f->s, op, user);
}

static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	return store_fix_run(&f->s, r);
}

/* A set of n (namespace, xml) pairs (xml NULL: removed), limit namespaces at most. r->err. */
static int set(struct fix *f, const char *user, unsigned limit, size_t n, const char *const *kv)
{
	struct xc_store_req *r = req(f, XC_STORE_PRIVATE_SET, user);
	int e;

	r->limit = limit;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(xc_store_req_add_private(r, kv[2 * i], kv[2 * i + 1]), 0);
	r = run(f, r);
	e = r->err;
	xc_store_req_free(r);
	return e;
}

/* What user keeps for ns ("" for nothing; a static copy). */
static const char *get(struct fix *f, const char *user, const char *ns)
{
	static char out[256];
	struct xc_store_req *r = req(f, XC_STORE_PRIVATE_GET, user);

	assert_int_equal(xc_store_req_add_private(r, ns, NULL), 0);
	r = run(f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->npriv, 1);
	assert_string_equal(r->priv[0].ns, ns);
	snprintf(out, sizeof(out), "%s", r->priv[0].xml ? r->priv[0].xml : "");
	xc_store_req_free(r);
	return out;
}

static void test_keep_replace_remove_limit(void **state)
{
	static const char *const ab[] = {"a", "<a xmlns='a'>1</a>", "b", "<b xmlns='b'>2</b>"};
	static const char *const c[] = {"c", "<c xmlns='c'>3</c>"};
	static const char *const a2_d[] = {"a", "<a xmlns='a'>11</a>", "d", "<d xmlns='d'/>"};
	static const char *const a2_b0[] = {"a", "<a xmlns='a'>111</a>", "b", NULL};
	struct fix f = {0};
	struct xc_store_req *r;

	(void)state;
	store_fix_open(&f.s, "test_store_private");
	assert_string_equal(get(&f, "alice@example.com", "a"), "");
	assert_int_equal(set(&f, "alice@example.com", 3, 2, ab), 0);
	assert_int_equal(set(&f, "alice@example.com", 3, 1, c), 0);
	assert_string_equal(get(&f, "alice@example.com", "a"), "<a xmlns='a'>1</a>");
	/* a fourth namespace is past the limit: the whole set is undone */
	assert_int_equal(set(&f, "alice@example.com", 3, 2, a2_d), -EDQUOT);
	assert_string_equal(get(&f, "alice@example.com", "a"), "<a xmlns='a'>1</a>");
	assert_string_equal(get(&f, "alice@example.com", "d"), "");
	/* replacing and removing at the limit are fine, even under a lowered one */
	assert_int_equal(set(&f, "alice@example.com", 1, 2, a2_b0), 0);
	assert_string_equal(get(&f, "alice@example.com", "a"), "<a xmlns='a'>111</a>");
	assert_string_equal(get(&f, "alice@example.com", "b"), "");
	/* a place freed is a place to take */
	assert_int_equal(set(&f, "alice@example.com", 3, 2, a2_d), 0);
	assert_string_equal(get(&f, "alice@example.com", "d"), "<d xmlns='d'/>");
	/* another account's are its own, with its own count */
	assert_string_equal(get(&f, "bob@example.com", "a"), "");
	assert_int_equal(set(&f, "bob@example.com", 3, 2, ab), 0);
	assert_string_equal(get(&f, "bob@example.com", "b"), "<b xmlns='b'>2</b>");
	assert_string_equal(get(&f, "alice@example.com", "b"), "");
	/* several namespaces in one get, answered in the order asked */
	r = req(&f, XC_STORE_PRIVATE_GET, "alice@example.com");
	assert_int_equal(xc_store_req_add_private(r, "d", NULL), 0);
	assert_int_equal(xc_store_req_add_private(r, "none", NULL), 0);
	assert_int_equal(xc_store_req_add_private(r, "a", NULL), 0);
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_string_equal(r->priv[0].xml, "<d xmlns='d'/>");
	assert_null(r->priv[1].xml);
	assert_string_equal(r->priv[2].xml, "<a xmlns='a'>11</a>");
	xc_store_req_free(r);
	/* kept across a reopen */
	xc_store_close(f.s.st);
	{
		struct xc_store_config cfg = {.backend = &xc_store_sqlite, .where = f.s.path};
		char err[CM_ERR_MAX];

		assert_int_equal(xc_store_open(&f.s.st, &cfg, err, sizeof(err)), 0);
	}
	assert_string_equal(get(&f, "alice@example.com", "a"), "<a xmlns='a'>11</a>");
	store_fix_close(&f.s);
}

static void test_import_export_delete(void **state)
{
	struct fix f = {0};
	struct xc_store_req *r;

	(void)state;
	store_fix_open(&f.s, "test_store_private");
	r = req(&f, XC_STORE_ACCOUNT_IMPORT, "carol@example.com");
	r->creds[XC_SCRAM_SHA1].iter = 0; /* keys are not the point here */
	assert_int_equal(xc_store_req_add_private(r, "z", "<z xmlns='z'>last</z>"), 0);
	assert_int_equal(xc_store_req_add_private(r, "m", "<m xmlns='m'>mid</m>"), 0);
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	assert_string_equal(get(&f, "carol@example.com", "m"), "<m xmlns='m'>mid</m>");
	/* a second import of the account is refused and writes nothing */
	r = req(&f, XC_STORE_ACCOUNT_IMPORT, "carol@example.com");
	assert_int_equal(xc_store_req_add_private(r, "q", "<q xmlns='q'/>"), 0);
	r = run(&f, r);
	assert_int_equal(r->err, -EEXIST);
	xc_store_req_free(r);
	assert_string_equal(get(&f, "carol@example.com", "q"), "");
	/* the export has them by namespace */
	r = run(&f, req(&f, XC_STORE_ACCOUNT_EXPORT, "carol@example.com"));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->npriv, 2);
	assert_string_equal(r->priv[0].ns, "m");
	assert_string_equal(r->priv[1].xml, "<z xmlns='z'>last</z>");
	xc_store_req_free(r);
	/* they go with the account */
	r = run(&f, req(&f, XC_STORE_ACCOUNT_DELETE, "carol@example.com"));
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	assert_string_equal(get(&f, "carol@example.com", "z"), "");
	store_fix_close(&f.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keep_replace_remove_limit),
	    cmocka_unit_test(test_import_export_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
