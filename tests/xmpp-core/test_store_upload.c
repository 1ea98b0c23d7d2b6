/* test_store_upload.c - HTTP File Upload slots in the store (XC_STORE_UPLOAD_*): a slot kept
 * while the user's slots of the last 24 hours stay within its quota (up to it exactly), refused
 * past it with nothing kept and the bytes used and the time to try again told, the window's
 * edge, users' quotas apart, a taken slot id, invalid requests, the purge (only older slots,
 * the oldest first, bounded, their ids told), and the slots kept across a reopen. */
#include <errno.h>
#include <stdint.h>

#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

#define ALICE "alice@example.com"
#define BOB   "bob@example.com"
#define DAY   INT64_C(86400000)
#define T0    INT64_C(1700000000000)

/* What a RESERVE answered. */
struct ans {
	int err;
	uint64_t count;
	int64_t stamp;
};

/* A RESERVE of slot (NULL: none) of bytes for user at stamp under quota. */
static struct ans reserve(struct store_fix *f, const char *user, const char *slot, uint64_t bytes,
                          int64_t stamp, uint64_t quota)
{
	struct xc_store_req *r = store_fix_req(f, XC_STORE_UPLOAD_RESERVE, user);
	struct ans a;

	if (slot)
		assert_int_equal(xc_store_req_set(&r->key, slot), 0);
	r->count = bytes;
	r->stamp_ms = stamp;
	r->quota = quota;
	r = store_fix_run(f, r);
	a = (struct ans){r->err, r->count, r->stamp_ms};
	xc_store_req_free(r);
	return a;
}

/* A RESERVE that must be kept, the user's bytes of the last 24 hours after it returned. */
static uint64_t kept(struct store_fix *f, const char *user, const char *slot, uint64_t bytes,
                     int64_t stamp, uint64_t quota)
{
	struct ans a = reserve(f, user, slot, bytes, stamp, quota);

	assert_int_equal(a.err, 0);
	assert_int_equal(a.stamp, stamp); /* untouched when kept */
	return a.count;
}

/* A PURGE before stamp of at most limit slots (answered without error; the caller frees it). */
static struct xc_store_req *purge(struct store_fix *f, int64_t stamp, unsigned limit)
{
	struct xc_store_req *r = store_fix_req(f, XC_STORE_UPLOAD_PURGE, NULL);

	r->stamp_ms = stamp;
	r->limit = limit;
	r = store_fix_run(f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->count, r->njids);
	return r;
}

static void reopen(struct store_fix *f)
{
	struct xc_store_config cfg = {.backend = &xc_store_sqlite, .where = f->path};
	char err[CM_ERR_MAX];

	xc_store_close(f->st);
	assert_int_equal(xc_store_open(&f->st, &cfg, err, sizeof(err)), 0);
}

static void test_quota(void **state)
{
	struct store_fix f;
	struct ans a;

	(void)state;
	store_fix_open(&f, "test_store_upload");
	assert_int_equal(kept(&f, ALICE, "s1", 300, T0, 1000), 300);
	assert_int_equal(kept(&f, ALICE, "s2", 200, T0 + 1000, 1000), 500);
	/* the quota reached exactly is still within it */
	assert_int_equal(kept(&f, ALICE, "s3", 500, T0 + 2000, 1000), 1000);
	/* one byte more is not: told the bytes used and when the oldest (s1) leaves the window */
	a = reserve(&f, ALICE, "s4", 1, T0 + 3000, 1000);
	assert_int_equal(a.err, -EDQUOT);
	assert_int_equal(a.count, 1000);
	assert_int_equal(a.stamp, T0 + DAY);
	/* under a larger quota the same slot fits: s4 was not kept (no -EEXIST, 1001 not 1002) */
	assert_int_equal(kept(&f, ALICE, "s4", 1, T0 + 3000, 1001), 1001);
	/* a slot larger than the whole quota, with nothing in the window: waiting does not help */
	a = reserve(&f, BOB, "b0", 5000, T0, 1000);
	assert_int_equal(a.err, -EDQUOT);
	assert_int_equal(a.count, 0);
	assert_int_equal(a.stamp, 0);
	/* bob's quota is his own: alice's 1001 bytes are not his */
	assert_int_equal(kept(&f, BOB, "b1", 1000, T0 + 3000, 1000), 1000);
	a = reserve(&f, ALICE, "s5", 600, T0 + 3000, 1000);
	assert_int_equal(a.err, -EDQUOT);
	assert_int_equal(a.count, 1001);
	assert_int_equal(a.stamp, T0 + DAY);
	/* 24 hours after s1 it is out of the window (the edge: older than stamp - 24 hours only
	 * when not after it) */
	assert_int_equal(kept(&f, ALICE, "s5", 299, T0 + DAY, 1000), 200 + 500 + 1 + 299);
	/* after s2's 24 hours: s3 (T0 + 2000) is the oldest one left */
	a = reserve(&f, ALICE, "s6", 201, T0 + DAY + 1000, 1000);
	assert_int_equal(a.err, -EDQUOT);
	assert_int_equal(a.count, 500 + 1 + 299);
	assert_int_equal(a.stamp, T0 + 2000 + DAY);
	assert_int_equal(kept(&f, ALICE, "s6", 200, T0 + DAY + 1000, 1000), 1000);
	/* long after, nothing counts any more */
	assert_int_equal(kept(&f, ALICE, "s7", 1000, T0 + 3 * DAY, 1000), 1000);
	store_fix_close(&f);
}

static void test_taken_and_invalid(void **state)
{
	struct store_fix f;
	struct xc_store_req *r;
	struct ans a;

	(void)state;
	store_fix_open(&f, "test_store_upload");
	assert_int_equal(kept(&f, ALICE, "same", 100, T0, 1000), 100);
	assert_int_equal(kept(&f, BOB, "b1", 50, T0, 1000), 50);
	/* a slot id is taken whoever holds it; the count is the user's bytes without it */
	a = reserve(&f, BOB, "same", 10, T0 + 1, 1000);
	assert_int_equal(a.err, -EEXIST);
	assert_int_equal(a.count, 50);
	a = reserve(&f, ALICE, "same", 10, T0 + 1, 1000);
	assert_int_equal(a.err, -EEXIST);
	assert_int_equal(a.count, 100);
	/* and neither refusal counted */
	assert_int_equal(kept(&f, BOB, "b2", 1, T0 + 2, 1000), 51);
	assert_int_equal(kept(&f, ALICE, "a2", 1, T0 + 2, 1000), 101);
	/* no slot id, no bytes, more bytes than SQLite holds, no user */
	assert_int_equal(reserve(&f, ALICE, NULL, 10, T0 + 3, 1000).err, -EINVAL);
	assert_int_equal(reserve(&f, ALICE, "z1", 0, T0 + 3, 1000).err, -EINVAL);
	assert_int_equal(reserve(&f, ALICE, "z2", UINT64_MAX, T0 + 3, UINT64_MAX).err, -EINVAL);
	assert_int_equal(reserve(&f, NULL, "z3", 10, T0 + 3, 1000).err, -EINVAL);
	/* a purge of at most no slots */
	r = store_fix_req(&f, XC_STORE_UPLOAD_PURGE, NULL);
	r->stamp_ms = T0 + DAY;
	assert_int_equal(store_fix_err(&f, r), -EINVAL);
	/* none of them kept: z1, z2, z3 are free, alice still at 101 bytes */
	assert_int_equal(kept(&f, ALICE, "z1", 1, T0 + 4, 1000), 102);
	assert_int_equal(kept(&f, ALICE, "z2", 1, T0 + 4, 1000), 103);
	assert_int_equal(kept(&f, BOB, "z3", 1, T0 + 4, 1000), 52);
	store_fix_close(&f);
}

static void test_purge(void **state)
{
	struct store_fix f;
	struct xc_store_req *r;

	(void)state;
	store_fix_open(&f, "test_store_upload");
	/* nothing to purge in an empty store */
	r = purge(&f, T0 + DAY, 10);
	assert_int_equal(r->njids, 0);
	assert_null(r->jids);
	xc_store_req_free(r);
	/* out of order, two users, two of the same millisecond (ordered by id) */
	kept(&f, ALICE, "a", 1, T0 + 300, 1000);
	kept(&f, BOB, "d", 1, T0 + 100, 1000);
	kept(&f, ALICE, "c", 1, T0 + 200, 1000);
	kept(&f, ALICE, "b", 1, T0 + 100, 1000);
	kept(&f, BOB, "e", 1, T0 + 500, 1000);
	/* nothing before the oldest */
	r = purge(&f, T0 + 100, 10);
	assert_int_equal(r->njids, 0);
	xc_store_req_free(r);
	/* the oldest three of the four before T0 + 500 */
	r = purge(&f, T0 + 500, 3);
	assert_int_equal(r->count, 3);
	assert_int_equal(r->njids, 3);
	assert_string_equal(r->jids[0], "b");
	assert_string_equal(r->jids[1], "d");
	assert_string_equal(r->jids[2], "c");
	xc_store_req_free(r);
	/* then the last of them; e, of T0 + 500 itself, stays */
	r = purge(&f, T0 + 500, 3);
	assert_int_equal(r->count, 1);
	assert_int_equal(r->njids, 1);
	assert_string_equal(r->jids[0], "a");
	xc_store_req_free(r);
	r = purge(&f, T0 + 500, 3);
	assert_int_equal(r->count, 0);
	assert_int_equal(r->njids, 0);
	xc_store_req_free(r);
	/* the purged ids are free again and no longer count; e is still there */
	assert_int_equal(kept(&f, ALICE, "a", 5, T0 + 600, 1000), 5);
	assert_int_equal(kept(&f, BOB, "d", 5, T0 + 600, 1000), 6);
	assert_int_equal(reserve(&f, ALICE, "e", 5, T0 + 600, 1000).err, -EEXIST);
	/* a purge the limit does not cut: everything before */
	r = purge(&f, T0 + 601, 100);
	assert_int_equal(r->njids, 3);
	assert_string_equal(r->jids[0], "e");
	assert_string_equal(r->jids[1], "a");
	assert_string_equal(r->jids[2], "d");
	xc_store_req_free(r);
	store_fix_close(&f);
}

static void test_account_delete_and_reopen(void **state)
{
	struct store_fix f;
	struct xc_store_req *r;
	struct ans a;

	(void)state;
	store_fix_open(&f, "test_store_upload");
	assert_int_equal(store_fix_err(&f, store_fix_req(&f, XC_STORE_ACCOUNT_CREATE, ALICE)), 0);
	assert_int_equal(kept(&f, ALICE, "s1", 600, T0, 1000), 600);
	assert_int_equal(kept(&f, ALICE, "s2", 400, T0 + 10, 1000), 1000);
	/* the slots outlive the account: their files live until they expire */
	assert_int_equal(store_fix_err(&f, store_fix_req(&f, XC_STORE_ACCOUNT_DELETE, ALICE)), 0);
	reopen(&f);
	a = reserve(&f, ALICE, "s3", 1, T0 + 20, 1000);
	assert_int_equal(a.err, -EDQUOT);
	assert_int_equal(a.count, 1000);
	assert_int_equal(a.stamp, T0 + DAY);
	assert_int_equal(reserve(&f, BOB, "s2", 1, T0 + 20, 1000).err, -EEXIST);
	r = purge(&f, T0 + DAY, 10);
	assert_int_equal(r->njids, 2);
	assert_string_equal(r->jids[0], "s1");
	assert_string_equal(r->jids[1], "s2");
	xc_store_req_free(r);
	/* and the purge is as durable */
	reopen(&f);
	assert_int_equal(kept(&f, ALICE, "s3", 1000, T0 + 20, 1000), 1000);
	store_fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quota),
	    cmocka_unit_test(test_taken_and_invalid),
	    cmocka_unit_test(test_purge),
	    cmocka_unit_test(test_account_delete_and_reopen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
