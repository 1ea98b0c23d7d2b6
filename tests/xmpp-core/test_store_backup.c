/* test_store_backup.c - the SQLite backend's backup (store.h): a copy as of one moment while
 * another connection holds a write under way, never over a file that exists, and precise
 * failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "cm/err.h"
#include "xmpp-core/src/store.h"

static int count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *p;
	int n = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &p, NULL), SQLITE_OK);
	if (sqlite3_step(p) == SQLITE_ROW)
		n = sqlite3_column_int(p, 0);
	sqlite3_finalize(p);
	sqlite3_close(db);
	return n;
}

static void test_backup(void **state)
{
	char dir[] = "/tmp/test_store_backup.XXXXXX", src[128], dest[128], bad[160];
	char err[CM_ERR_MAX] = "";
	uint64_t bytes = 0;
	sqlite3 *w;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/db", dir);
	snprintf(dest, sizeof(dest), "%s/copy.db", dir);
	assert_int_equal(sqlite3_open(src, &w), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(w,
	                 "PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);"
	                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM "
	                 "n WHERE i < 5000) INSERT INTO t SELECT i FROM n;"
	                 "BEGIN IMMEDIATE; INSERT INTO t VALUES (-1);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	/* the writer's transaction is open: the copy has what was committed, and does not wait */
	assert_int_equal(xc_store_sqlite.backup(src, dest, &bytes, err, sizeof(err)), 0);
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal((uint64_t)st.st_size, bytes);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(count(dest, "SELECT count(*) FROM t"), 5000);
	assert_int_equal(count(dest, "SELECT count(*) FROM t WHERE x < 0"), 0);
	assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	/* never over what exists, and nothing left behind by a refusal */
	assert_int_equal(xc_store_sqlite.backup(src, dest, &bytes, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "exists already"));
	assert_int_equal(count(dest, "SELECT count(*) FROM t"), 5000);
	/* a directory that is not there */
	snprintf(bad, sizeof(bad), "%s/none/copy.db", dir);
	assert_int_equal(xc_store_sqlite.backup(src, bad, &bytes, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "none/copy.db.part"));
	/* a source that is not a database: the part file goes */
	assert_int_equal(sqlite3_close(w), SQLITE_OK); /* its log folded into the file */
	{
		FILE *f = fopen(src, "r+");

		assert_non_null(f);
		fputs("not a database at all, not a database at all, not a database", f);
		fclose(f);
	}
	snprintf(bad, sizeof(bad), "%s/other.db", dir);
	assert_int_not_equal(xc_store_sqlite.backup(src, bad, &bytes, err, sizeof(err)), 0);
	assert_int_not_equal(access(bad, F_OK), 0);
	snprintf(bad, sizeof(bad), "%s/other.db.part", dir);
	assert_int_not_equal(access(bad, F_OK), 0);
	snprintf(bad, sizeof(bad), "rm -rf %s", dir);
	assert_int_equal(system(bad), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
