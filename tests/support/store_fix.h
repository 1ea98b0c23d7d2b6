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
