/* test_store.c - the store on SQLite: accounts, rosters with versions, offline messages with
 * their cap, block lists, a batch where one request is refused and the others stand, data that
 * survives a reopen, a schema from the future refused, results delivered on the submitting
 * loop, and writes nobody waits for: counted (failures too) on the store's thread, and not held
 * back past a request that is waited for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "cm/err.h"
#include "cm/metrics.h"
#include "tests/support/store_fix.h"
#include "xmpp-core/src/store.h"

struct fix {
	struct store_fix s; /* the database and the loop of its answers */
	int done;
	uv_thread_t loop_thread;
};

static struct xc_store_req *last[16];
static int nlast;

static void on_done(struct xc_store_req *r)
{
	struct fix *f = r->arg;

	/* results come back on the loop that submitted */
	assert_ptr_equal(cm_loop_of(r->loop->uv), &f->s.l);
	last[nlast++ % 16] = r;
	f->done++;
}

static void fix_open(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	store_fix_open(&f->s, "test_store");
}

static void reopen(struct fix *f)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite, .where = f->s.path};
	char err[CM_ERR_MAX];

	xc_store_close(f->s.st);
	if (xc_store_open(&f->s.st, &c, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
}

static void fix_close(struct fix *f)
{
	store_fix_close(&f->s);
}

static struct xc_store_req *req(struct fix *f, enum xc_store_op op, const char *user)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->s.l, on_done, f);

	assert_non_null(r);
	if (user)
		assert_int_equal(xc_store_req_set(&r->user, user), 0);
	return r;
}

/* Submit r and wait for it; returns it (free it with xc_store_req_free). */
static struct xc_store_req *run(struct fix *f, struct xc_store_req *r)
{
	int want = f->done + 1;

	assert_int_equal(xc_store_submit(f->s.st, r), 0);
	while (f->done < want)
		uv_run(&f->s.uv, UV_RUN_ONCE);
	return last[(nlast - 1) % 16];
}

static int run_err(struct fix *f, struct xc_store_req *r)
{
	int e;

	r = run(f, r);
	e = r->err;
	xc_store_req_free(r);
	return e;
}

static void test_accounts(void **state)
{
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	fix_open(&f);
	r = req(&f, XC_STORE_ACCOUNT_CREATE, "juliet@example.com");
	assert_int_equal(xc_scram_creds_make(XC_SCRAM_SHA1, "pw", 2, 5, NULL, 0, &r->creds[0]), 0);
	assert_int_equal(xc_scram_creds_make(XC_SCRAM_SHA256, "pw", 2, 5, NULL, 0, &r->creds[1]),
	                 0);
	struct xc_scram_creds keep = r->creds[1];
	assert_int_equal(run_err(&f, r), 0);
	/* taken */
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "juliet@example.com")),
	                 -EEXIST);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "romeo@example.com")), 0);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "nurse@other.org")), 0);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "juliet@example.com"));
	assert_true(r->found);
	assert_memory_equal(&r->creds[1], &keep, sizeof(keep));
	assert_int_equal(xc_scram_creds_check(XC_SCRAM_SHA256, &r->creds[1], "pw", 2), 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_ACCOUNT_GET, "nobody@example.com"));
	assert_false(r->found);
	assert_int_equal(r->err, 0);
	xc_store_req_free(r);
	/* the users of one host, sorted */
	r = req(&f, XC_STORE_ACCOUNT_LIST, NULL);
	assert_int_equal(xc_store_req_set(&r->key, "example.com"), 0);
	r = run(&f, r);
	assert_int_equal(r->njids, 2);
	assert_string_equal(r->jids[0], "juliet@example.com");
	assert_string_equal(r->jids[1], "romeo@example.com");
	xc_store_req_free(r);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_SET_CREDS, "ghost@example.com")),
	                 -ENOENT);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_GET, "not-a-bare-jid")), -EINVAL);
	fix_close(&f);
}

static void put_item(struct fix *f, const char *owner, const char *contact, const char *name,
                     enum xc_sub sub, uint64_t want_version)
{
	struct xc_store_req *r = req(f, XC_STORE_ROSTER_PUT, owner);

	assert_int_equal(xc_store_req_set(&r->item.contact, contact), 0);
	assert_int_equal(xc_store_req_set(&r->item.name, name), 0);
	r->item.groups = calloc(2, sizeof(char *));
	r->item.groups[0] = strdup("Friends");
	r->item.groups[1] = strdup("Verona");
	r->item.ngroups = 2;
	r->item.st = (struct xc_sub_state){sub, false, false, false, true};
	r = run(f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->version, want_version);
	xc_store_req_free(r);
}

static void test_roster_and_delete_cascade(void **state)
{
	struct fix f;
	struct xc_store_req *r;

	(void)state;
	fix_open(&f);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "juliet@example.com")), 0);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "nobody@example.com"));
	assert_false(r->found);
	xc_store_req_free(r);
	put_item(&f, "juliet@example.com", "romeo@example.net", "Romeo", XC_SUB_BOTH, 1);
	put_item(&f, "juliet@example.com", "nurse@example.com", NULL, XC_SUB_FROM, 2);
	put_item(&f, "juliet@example.com", "romeo@example.net", "R.", XC_SUB_TO, 3); /* replaced */
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "juliet@example.com"));
	assert_true(r->found);
	assert_int_equal(r->version, 3);
	assert_int_equal(r->nitems, 2);
	assert_string_equal(r->items[0].contact, "nurse@example.com");
	assert_null(r->items[0].name);
	assert_string_equal(r->items[1].name, "R.");
	assert_int_equal(r->items[1].st.sub, XC_SUB_TO);
	assert_true(r->items[1].st.listed);
	assert_int_equal(r->items[1].ngroups, 2);
	assert_string_equal(r->items[1].groups[1], "Verona");
	xc_store_req_free(r);
	r = req(&f, XC_STORE_ROSTER_DELETE, "juliet@example.com");
	assert_int_equal(xc_store_req_set(&r->key, "nurse@example.com"), 0);
	r = run(&f, r);
	assert_int_equal(r->err, 0);
	assert_int_equal(r->version, 4);
	xc_store_req_free(r);
	r = req(&f, XC_STORE_ROSTER_DELETE, "juliet@example.com");
	assert_int_equal(xc_store_req_set(&r->key, "nurse@example.com"), 0);
	assert_int_equal(run_err(&f, r), -ENOENT);
	/* deleting the account takes its roster, offline messages and block list with it */
	r = req(&f, XC_STORE_OFFLINE_PUT, "juliet@example.com");
	assert_int_equal(xc_store_req_set(&r->stanza, "<message/>"), 0);
	assert_int_equal(run_err(&f, r), 0);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_DELETE, "juliet@example.com")), 0);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_DELETE, "juliet@example.com")),
	                 -ENOENT);
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "juliet@example.com"));
	assert_int_equal(r->nitems, 0);
	assert_int_equal(r->version, 0);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_OFFLINE_COUNT, "juliet@example.com"));
	assert_int_equal(r->count, 0);
	xc_store_req_free(r);
	fix_close(&f);
}

static void test_offline_and_blocks(void **state)
{
	struct fix f;
	struct xc_store_req *r;
	char body[64];

	(void)state;
	fix_open(&f);
	/* no account, no offline messages */
	r = req(&f, XC_STORE_OFFLINE_PUT, "romeo@example.net");
	assert_int_equal(xc_store_req_set(&r->stanza, "<message/>"), 0);
	assert_int_equal(run_err(&f, r), -ENOENT);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_ACCOUNT_CREATE, "romeo@example.net")), 0);
	for (int i = 0; i < 4; i++) {
		r = req(&f, XC_STORE_OFFLINE_PUT, "romeo@example.net");
		snprintf(body, sizeof(body), "<message id='%d'/>", i);
		assert_int_equal(xc_store_req_set(&r->stanza, body), 0);
		r->stamp_ms = 1000 + i;
		r->limit = 3;
		assert_int_equal(run_err(&f, r), i < 3 ? 0 : -EDQUOT);
	}
	r = run(&f, req(&f, XC_STORE_OFFLINE_TAKE, "romeo@example.net"));
	assert_int_equal(r->nmsgs, 3);
	assert_string_equal(r->msgs[0].stanza, "<message id='0'/>");
	assert_string_equal(r->msgs[2].stanza, "<message id='2'/>");
	assert_int_equal(r->msgs[2].stamp_ms, 1002);
	xc_store_req_free(r);
	r = run(&f, req(&f, XC_STORE_OFFLINE_TAKE, "romeo@example.net"));
	assert_int_equal(r->nmsgs, 0);
	xc_store_req_free(r);
	/* block lists */
	r = req(&f, XC_STORE_BLOCK_ADD, "romeo@example.net");
	r->jids = calloc(3, sizeof(char *));
	r->jids[0] = strdup("tybalt@example.com");
	r->jids[1] = strdup("example.org");
	r->jids[2] = strdup("tybalt@example.com"); /* twice is once */
	r->njids = 3;
	assert_int_equal(run_err(&f, r), 0);
	r = run(&f, req(&f, XC_STORE_BLOCK_GET, "romeo@example.net"));
	assert_int_equal(r->njids, 2);
	assert_string_equal(r->jids[0], "example.org");
	xc_store_req_free(r);
	r = req(&f, XC_STORE_BLOCK_REMOVE, "romeo@example.net");
	r->jids = calloc(1, sizeof(char *));
	r->jids[0] = strdup("example.org");
	r->njids = 1;
	assert_int_equal(run_err(&f, r), 0);
	r = run(&f, req(&f, XC_STORE_BLOCK_GET, "romeo@example.net"));
	assert_int_equal(r->njids, 1);
	xc_store_req_free(r);
	/* the roster read brings the block list along */
	r = run(&f, req(&f, XC_STORE_ROSTER_GET, "romeo@example.net"));
	assert_int_equal(r->njids, 1);
	assert_string_equal(r->jids[0], "tybalt@example.com");
	xc_store_req_free(r);
	assert_int_equal(run_err(&f, req(&f, XC_STORE_BLOCK_REMOVE, "romeo@example.net")), 0);
	r = run(&f, req(&f, XC_STORE_BLOCK_GET, "romeo@example.net"));
	assert_int_equal(r->njids, 0);
	xc_store_req_free(r);
	fix_close(&f);
}

/* Requests submitted together share a transaction; the refused one leaves the rest; what was
 * acknowledged is there after a reopen. */
static void test_batch_and_durability(void **state)
{
	struct fix f;
	struct xc_store_req *r[5];
	const char *users[5] = {"a@h", "b@h", "a@h", "c@h", "d@h"};

	(void)state;
	fix_open(&f);
	for (int i = 0; i < 5; i++) {
		r[i] = req(&f, XC_STORE_ACCOUNT_CREATE, users[i]);
		assert_int_equal(xc_store_submit(f.s.st, r[i]), 0);
	}
	while (f.done < 5)
		uv_run(&f.s.uv, UV_RUN_ONCE);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i]->err, i == 2 ? -EEXIST : 0);
		xc_store_req_free(r[i]);
	}
	reopen(&f);
	r[0] = req(&f, XC_STORE_ACCOUNT_LIST, NULL);
	assert_int_equal(xc_store_req_set(&r[0]->key, "h"), 0);
	r[0] = run(&f, r[0]);
	assert_int_equal(r[0]->njids, 4);
	xc_store_req_free(r[0]);
	assert_int_equal(xc_store_depth(f.s.st), 0);
	fix_close(&f);
}

struct put_counts {
	struct cm_counter *ok, *failed;
};

static const struct cm_metric_def put_defs[] = {
    CM_METRIC_COUNTER_DEF(struct put_counts, ok, "t_puts_total", "Puts.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct put_counts, failed, "t_puts_total", "Puts.", "result", "failed"),
};

/* An archive write without a done callback, counted in c. */
static void put_unanswered(struct fix *f, struct put_counts *c, const char *sid, bool stanza)
{
	struct xc_store_req *r = xc_store_req_new(XC_STORE_ARCHIVE_PUT, NULL, NULL, NULL);

	assert_non_null(r);
	r->ok_total = c->ok;
	r->failed_total = c->failed;
	assert_int_equal(xc_store_req_set(&r->user, "juliet@h"), 0);
	assert_int_equal(xc_store_req_set(&r->key, sid), 0);
	assert_int_equal(xc_store_req_set(&r->with, "romeo@h/a"), 0);
	if (stanza)
		assert_int_equal(xc_store_req_set(&r->stanza, "<message/>"), 0);
	r->stamp_ms = 1000;
	assert_int_equal(xc_store_submit(f->s.st, r), 0);
}

/* Writes without a done: nothing comes back to the loop, a refused one (an id taken, no
 * stanza) is counted as failed and the others stand; a long linger does not hold them, or the
 * answered request after them, once that one is queued. */
static void test_unanswered_writes(void **state)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite, .linger_ms = 1000};
	struct fix f;
	struct cm_metrics *m;
	struct put_counts pc;
	struct xc_store_req *r;
	struct xc_archive_query *q;
	char err[CM_ERR_MAX];
	uint64_t t0;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_register(m, &pc, put_defs, 2, err, sizeof(err)), 0);
	fix_open(&f);
	c.where = f.s.path;
	xc_store_close(f.s.st);
	if (xc_store_open(&f.s.st, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
	put_unanswered(&f, &pc, "s1", true);
	put_unanswered(&f, &pc, "s2", true);
	put_unanswered(&f, &pc, "s1", true);  /* taken */
	put_unanswered(&f, &pc, "s3", false); /* no stanza */
	t0 = uv_hrtime();
	r = req(&f, XC_STORE_ARCHIVE_QUERY, "juliet@h");
	q = calloc(1, sizeof(*q));
	assert_non_null(q);
	q->start_ms = INT64_MIN;
	q->end_ms = INT64_MAX;
	q->max = 10;
	r->query = q;
	r = run(&f, r);
	assert_true(uv_hrtime() - t0 < 500000000u); /* not the linger's second */
	assert_int_equal(r->err, 0);
	assert_int_equal(r->narch, 2);
	assert_string_equal(r->arch[0].id, "s1");
	assert_string_equal(r->arch[1].id, "s2");
	xc_store_req_free(r);
	/* counted before the answer after them was sent */
	assert_int_equal(f.done, 1);
	assert_int_equal(cm_metrics_counter_value(pc.ok), 2);
	assert_int_equal(cm_metrics_counter_value(pc.failed), 2);
	fix_close(&f);
	cm_metrics_free(m);
}

static void test_open_errors(void **state)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite, .where = "/nonexistent/dir/x.db"};
	struct xc_store *st;
	char err[CM_ERR_MAX] = "";
	sqlite3 *db;
	char path[] = "/tmp/test_store_schema.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_int_equal(xc_store_open(&st, &c, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "/nonexistent/dir/x.db"));
	/* a database made by a later version is not touched */
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TABLE meta (key TEXT PRIMARY KEY, value "
	                              "INTEGER); INSERT INTO meta VALUES ('schema', 9)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	c.where = path;
	assert_int_equal(xc_store_open(&st, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "schema version 9"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accounts),
	    cmocka_unit_test(test_roster_and_delete_cascade),
	    cmocka_unit_test(test_offline_and_blocks),
	    cmocka_unit_test(test_batch_and_durability),
	    cmocka_unit_test(test_unanswered_writes),
	    cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
