/* test_store_last.c - last activity in the store (XC_STORE_LAST_*): kept per account, replaced
 * by the next logout, told to the account itself and to contacts its presence reaches only (a
 * subscription from them, not blocked), gone with the account, kept across a reopen. */
#include <errno.h>

#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

#define BOB "bob@example.com"

static void put_contact(struct store_fix *f, const char *owner, const char *contact,
                        enum xc_sub sub)
{
	struct xc_store_req *r = store_fix_req(f, XC_STORE_ROSTER_PUT, owner);

	assert_int_equal(xc_store_req_set(&r->item.contact, contact), 0);
	r->item.st = (struct xc_sub_state){sub, false, false, false, true};
	assert_int_equal(store_fix_err(f, r), 0);
}

static void gone(struct store_fix *f, int64_t stamp, const char *status)
{
	struct xc_store_req *r = store_fix_req(f, XC_STORE_LAST_SET, BOB);

	r->stamp_ms = stamp;
	if (status)
		assert_int_equal(xc_store_req_set(&r->stanza, status), 0);
	assert_int_equal(store_fix_err(f, r), 0);
}

/* Asked by who (NULL: bob himself): whether told, and then the stamp and status. */
static bool asked(struct store_fix *f, const char *who, int64_t *stamp, char *status, size_t n)
{
	struct xc_store_req *r = store_fix_req(f, XC_STORE_LAST_GET, BOB);
	bool found;

	if (who)
		assert_int_equal(xc_store_req_set(&r->key, who), 0);
	r = store_fix_run(f, r);
	assert_int_equal(r->err, 0);
	found = r->found;
	*stamp = r->stamp_ms;
	snprintf(status, n, "%s", r->stanza ? r->stanza : "");
	if (!found)
		assert_null(r->stanza);
	xc_store_req_free(r);
	return found;
}

static void test_who_is_told(void **state)
{
	struct store_fix f;
	char status[64];
	int64_t stamp;

	(void)state;
	store_fix_open(&f, "test_store_last");
	assert_int_equal(store_fix_err(&f, store_fix_req(&f, XC_STORE_ACCOUNT_CREATE, BOB)), 0);
	/* nothing known yet, but told as such to bob himself */
	assert_true(asked(&f, NULL, &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 0);
	gone(&f, 1000, "gone fishing");
	gone(&f, 5000, "back monday");
	assert_true(asked(&f, NULL, &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 5000);
	assert_string_equal(status, "back monday");
	/* whom bob's presence reaches: from and both; not to, none, strangers, the blocked */
	put_contact(&f, BOB, "from@example.com", XC_SUB_FROM);
	put_contact(&f, BOB, "both@example.com", XC_SUB_BOTH);
	put_contact(&f, BOB, "to@example.com", XC_SUB_TO);
	put_contact(&f, BOB, "none@example.com", XC_SUB_NONE);
	put_contact(&f, BOB, "blocked@example.com", XC_SUB_BOTH);
	{
		struct xc_store_req *r = store_fix_req(&f, XC_STORE_BLOCK_ADD, BOB);

		r->jids = calloc(1, sizeof(char *));
		r->jids[0] = strdup("blocked@example.com");
		r->njids = 1;
		assert_int_equal(store_fix_err(&f, r), 0);
	}
	assert_true(asked(&f, "from@example.com", &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 5000);
	assert_true(asked(&f, "both@example.com", &stamp, status, sizeof(status)));
	assert_string_equal(status, "back monday");
	assert_false(asked(&f, "to@example.com", &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 0);
	assert_false(asked(&f, "none@example.com", &stamp, status, sizeof(status)));
	assert_false(asked(&f, "stranger@example.com", &stamp, status, sizeof(status)));
	assert_false(asked(&f, "blocked@example.com", &stamp, status, sizeof(status)));
	/* no status */
	gone(&f, 9000, NULL);
	assert_true(asked(&f, "from@example.com", &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 9000);
	assert_string_equal(status, "");
	/* across a reopen */
	xc_store_close(f.st);
	{
		struct xc_store_config cfg = {.backend = &xc_store_sqlite, .where = f.path};
		char err[CM_ERR_MAX];

		assert_int_equal(xc_store_open(&f.st, &cfg, err, sizeof(err)), 0);
	}
	assert_true(asked(&f, NULL, &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 9000);
	/* gone with the account */
	assert_int_equal(store_fix_err(&f, store_fix_req(&f, XC_STORE_ACCOUNT_DELETE, BOB)), 0);
	assert_true(asked(&f, NULL, &stamp, status, sizeof(status)));
	assert_int_equal(stamp, 0);
	store_fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_who_is_told),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
