/* test_store_fast.c - FAST tokens in the store (XC_STORE_FAST_*): the two slots of a client,
 * the new token promoted when used, counts that only go up, revocation (by client, by account,
 * by a new password, with the account), and durability across a reopen. */
#include <errno.h>

#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

struct fix {
	struct store_fix s;
};

static struct xc_store_req *req(struct fix *f, enum xc_store_op op, const char *agent)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->s.l, store_fix_on_done, &f->s);

	assert_non_null(r);
	assert_int_equal(xc_store_req_set(&r->user, "alice@example.com"), 0);
	if (agent)
		assert_int_equal(xc_store_req_set(&r->key, agent), 0);
	r->fast = calloc(1, sizeof(*r->fast));
	assert_non_null(r->fast);
	r->fast->used = -1;
	return r;
}

/* Submit r, wait, return it (the caller frees it). */
static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	return store_fix_run(&f->s, r);
}

static int run_err(struct fix *f, struct xc_store_req *r)
{
	int e;

	r = run(f, r);
	e = r->err;
	xc_store_req_free(r);
	return e;
}

/* Put a fresh token in agent's new slot. */
static void issue(struct fix *f, const char *agent, const char *token, int64_t expiry)
{
	struct xc_store_req *r = req(f, XC_STORE_FAST_UPDATE, agent);

	r->fast->fresh.set = true;
	snprintf(r->fast->fresh.token, sizeof(r->fast->fresh.token), "%s", token);
	snprintf(r->fast->fresh.mech, sizeof(r->fast->fresh.mech), "HT-SHA-256-NONE");
	r->fast->fresh.expiry = expiry;
	assert_int_equal(run_err(f, r), 0);
}

/* A login with the token in slot, count. Returns the store's answer. */
static int use(struct fix *f, const char *agent, int slot, const char *token, uint32_t count)
{
	struct xc_store_req *r = req(f, XC_STORE_FAST_UPDATE, agent);

	r->fast->used = slot;
	snprintf(r->fast->used_token, sizeof(r->fast->used_token), "%s", token);
	r->fast->count = count;
	return run_err(f, r);
}

/* The slots of agent: "CURRENT/NEW" tokens ("-" for an empty slot) into out. */
static void slots(struct fix *f, const char *agent, char *out, size_t len, uint32_t *count)
{
	struct xc_store_req *r = run(f, req(f, XC_STORE_FAST_GET, agent));
	const struct xc_fast_token *c = &r->fast->slot[XC_FAST_CURRENT];
	const struct xc_fast_token *n = &r->fast->slot[XC_FAST_NEW];

	assert_int_equal(r->err, 0);
	snprintf(out, len, "%s/%s", c->set ? c->token : "-", n->set ? n->token : "-");
	if (count)
		*count = c->count;
	xc_store_req_free(r);
}

static void test_slots_rotation_and_counts(void **state)
{
	struct fix f;
	char s[200];
	uint32_t count;

	(void)state;
	memset(&f, 0, sizeof(f));
	store_fix_open(&f.s, "test_store_fast");
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "-/-");
	issue(&f, "phone", "t1", 5000);
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "-/t1");
	/* used once: current */
	assert_int_equal(use(&f, "phone", XC_FAST_NEW, "t1", 0), 0);
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "t1/-");
	/* rotation: t2 waits in the new slot, t1 still there; a later t3 replaces t2 */
	issue(&f, "phone", "t2", 6000);
	issue(&f, "phone", "t3", 7000);
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "t1/t3");
	assert_int_equal(use(&f, "phone", XC_FAST_CURRENT, "t1", 4), 0);
	/* a count at or below the last is a replay; a token not in that slot is gone */
	assert_int_equal(use(&f, "phone", XC_FAST_CURRENT, "t1", 4), -ESTALE);
	assert_int_equal(use(&f, "phone", XC_FAST_CURRENT, "t1", 2), -ESTALE);
	assert_int_equal(use(&f, "phone", XC_FAST_CURRENT, "t2", 0), -ESTALE);
	assert_int_equal(use(&f, "phone", XC_FAST_CURRENT, "t1", 5), 0);
	slots(&f, "phone", s, sizeof(s), &count);
	assert_int_equal(count, 5);
	/* t3 used: it is current, t1 is no more, the count starts over */
	assert_int_equal(use(&f, "phone", XC_FAST_NEW, "t3", 1), 0);
	slots(&f, "phone", s, sizeof(s), &count);
	assert_string_equal(s, "t3/-");
	assert_int_equal(count, 1);
	/* another client of the account is apart */
	issue(&f, "desk", "d1", 5000);
	slots(&f, "desk", s, sizeof(s), NULL);
	assert_string_equal(s, "-/d1");
	/* on disk */
	struct xc_store_config c = {.backend = &xc_store_sqlite, .where = f.s.path};
	char err[CM_ERR_MAX];
	xc_store_close(f.s.st);
	if (xc_store_open(&f.s.st, &c, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "t3/-");
	store_fix_close(&f.s);
}

static void test_revocation(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	char s[200];

	(void)state;
	memset(&f, 0, sizeof(f));
	store_fix_open(&f.s, "test_store_fast");
	r = req(&f, XC_STORE_ACCOUNT_CREATE, NULL);
	assert_int_equal(run_err(&f, r), 0);
	issue(&f, "phone", "p1", 5000);
	issue(&f, "desk", "d1", 5000);
	assert_int_equal(use(&f, "desk", XC_FAST_NEW, "d1", 0), 0);
	issue(&f, "desk", "d2", 5000);
	/* one client */
	r = run(&f, req(&f, XC_STORE_FAST_REVOKE, "phone"));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 1);
	xc_store_req_free(r);
	slots(&f, "phone", s, sizeof(s), NULL);
	assert_string_equal(s, "-/-");
	slots(&f, "desk", s, sizeof(s), NULL);
	assert_string_equal(s, "d1/d2");
	/* a new password: every client of the account */
	r = run(&f, req(&f, XC_STORE_ACCOUNT_SET_CREDS, NULL));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 2);
	xc_store_req_free(r);
	slots(&f, "desk", s, sizeof(s), NULL);
	assert_string_equal(s, "-/-");
	/* the account goes: its tokens with it */
	issue(&f, "desk", "d3", 5000);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_DELETE, NULL)), 0);
	slots(&f, "desk", s, sizeof(s), NULL);
	assert_string_equal(s, "-/-");
	/* revoking what is not there is no error */
	r = run(&f, req(&f, XC_STORE_FAST_REVOKE, NULL));
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	/* a GET without a client is refused */
	assert_int_equal(run_err(&f, req(&f, XC_STORE_FAST_GET, NULL)), -EINVAL);
	store_fix_close(&f.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slots_rotation_and_counts),
	    cmocka_unit_test(test_revocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
