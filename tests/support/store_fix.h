/* store_fix.h - the fixture of the xmpp-core tests that talk to the store: a SQLite database in
 * a fresh temporary directory, and a loop for the store's answers. Header-only (static inline):
 * each test that includes it gets its own copy. */
#ifndef TEST_SUPPORT_STORE_FIX_H
#define TEST_SUPPORT_STORE_FIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/err.h"
#include "cm/loop.h"
#include "xmpp-core/src/store.h"

struct store_fix {
	uv_loop_t uv;
	struct cm_loop l; /* answers come back here: run uv until they have */
	struct xc_store *st;
	char dir[64], path[128];
	int done;                  /* answers come back (store_fix_run()) */
	struct xc_store_req *last; /* the last answer */
};

/* A new directory /tmp/NAME.XXXXXX with the database xmpp.db in it, opened. */
static inline void store_fix_open(struct store_fix *f, const char *name)
{
	struct xc_store_config c = {.backend = &xc_store_sqlite};
	char err[CM_ERR_MAX];

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", name);
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/xmpp.db", f->dir);
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 0), 0);
	cm_loop_keep_alive(&f->l, true); /* the loop waits for the store's answers */
	c.where = f->path;
	if (xc_store_open(&f->st, &c, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
}

static inline void store_fix_on_done(struct xc_store_req *r)
{
	struct store_fix *f = r->arg;

	f->last = r;
	f->done++;
}

/* A request for op about user (may be NULL), answered to the fixture. */
static inline struct xc_store_req *store_fix_req(struct store_fix *f, enum xc_store_op op,
                                                 const char *user)
{
	struct xc_store_req *r = xc_store_req_new(op, &f->l, store_fix_on_done, f);

	assert_non_null(r);
	if (user)
		assert_int_equal(xc_store_req_set(&r->user, user), 0);
	return r;
}

/* Submit r (made by store_fix_req()), wait for its answer and return it (the caller frees it). */
static inline struct xc_store_req *store_fix_run(struct store_fix *f, struct xc_store_req *r)
{
	int want = f->done + 1;

	assert_int_equal(xc_store_submit(f->st, r), 0);
	while (f->done < want)
		uv_run(&f->uv, UV_RUN_ONCE);
	return f->last;
}

/* The same, for r->err only (r is freed). */
static inline int store_fix_err(struct store_fix *f, struct xc_store_req *r)
{
	int e;

	r = store_fix_run(f, r);
	e = r->err;
	xc_store_req_free(r);
	return e;
}

/* Close the store and the loop, and remove the directory. */
static inline void store_fix_close(struct store_fix *f)
{
	char cmd[160];

	xc_store_close(f->st);
	cm_loop_close(&f->l, NULL);
	assert_int_equal(uv_run(&f->uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

#endif
