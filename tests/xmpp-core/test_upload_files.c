/* test_upload_files.c - the files of HTTP File Upload on disk (upload_files.c), in a temporary
 * directory: a file written and read back with its type and bytes, a second write refused, the
 * name checked, files that are not ours refused (a link, a directory, one cut short, one too
 * large), and the sweep by age, unfinished files included, links and directories left alone. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "xmpp-core/src/upload_int.h"

#define SLOT  "AAAAAAAAAAAAAAAAAAAAAAAA"
#define SLOT2 "BBBBBBBBBBBBBBBBBBBBBBBB"
#define SLOT3 "HHHHHHHHHHHHHHHHHHHHHHHH"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_upload_files.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* Make name in the directory with content, last written age_s seconds ago. */
static void make(const char *name, const char *content, long age_s)
{
	char p[128];
	struct timespec t[2];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= age_s;
	t[1] = t[0];
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

static bool exists(const char *name)
{
	char p[128];
	struct stat st;

	path_of(p, sizeof(p), name);
	return lstat(p, &st) == 0;
}

static void test_put_and_get(void **state)
{
	char type[XC_UPLOAD_TYPE_MAX + 1], *data = NULL;
	size_t off = 0, len = 0;
	const char bytes[] = "\x89PNG\r\n\0binary\n";

	(void)state;
	assert_int_equal(
	    xc_upload__file_put(dir, SLOT, "image/png", "a photo.png", bytes, sizeof(bytes)), 0);
	assert_int_equal(
	    xc_upload__file_get(dir, SLOT, "a photo.png", 1000, false, &data, &off, &len, type), 0);
	assert_string_equal(type, "image/png");
	assert_int_equal(len, sizeof(bytes));
	assert_memory_equal(data + off, bytes, sizeof(bytes));
	free(data);
	/* a HEAD: the same type and length from the two lines alone, of a file larger than them */
	{
		char big[4096];
		size_t hoff = 0, hlen = 0;

		memset(big, 'x', sizeof(big));
		assert_int_equal(
		    xc_upload__file_put(dir, SLOT3, "video/mp4", "clip.mp4", big, sizeof(big)), 0);
		assert_int_equal(xc_upload__file_get(dir, SLOT3, "clip.mp4", 1 << 20, true, &data,
		                                     &hoff, &hlen, type),
		                 0);
		assert_string_equal(type, "video/mp4");
		assert_int_equal(hlen, sizeof(big));
		assert_int_equal(hoff, strlen("video/mp4\nclip.mp4\n"));
		assert_true(strlen(data) < sizeof(big)); /* the bytes were not read */
		free(data);
		assert_int_equal(xc_upload__file_get(dir, SLOT3, "other.mp4", 1 << 20, true, &data,
		                                     &hoff, &hlen, type),
		                 -ENOENT);
	}
	/* once: a second file for the slot is refused, and the first stays */
	assert_int_equal(xc_upload__file_put(dir, SLOT, "text/plain", "x", "other", 5), -EEXIST);
	assert_int_equal(
	    xc_upload__file_get(dir, SLOT, "a photo.png", 1000, false, &data, &off, &len, type), 0);
	assert_int_equal(len, sizeof(bytes));
	free(data);
	assert_false(exists("." SLOT ".part"));
	/* while another write of the slot is on its way */
	make("." SLOT2 ".part", "half", 0);
	assert_int_equal(xc_upload__file_put(dir, SLOT2, "text/plain", "y", "abc", 3), -EEXIST);
	/* another name is another URL; no file; too large to read */
	assert_int_equal(
	    xc_upload__file_get(dir, SLOT, "a photo.jpg", 1000, false, &data, &off, &len, type),
	    -ENOENT);
	assert_null(data);
	assert_int_equal(xc_upload__file_get(dir, SLOT2, "y", 1000, false, &data, &off, &len, type),
	                 -ENOENT);
	assert_int_equal(
	    xc_upload__file_get(dir, SLOT, "a photo.png", 10, false, &data, &off, &len, type),
	    -EIO);
	/* an empty file is one */
	assert_int_equal(
	    xc_upload__file_put(dir, "CCCCCCCCCCCCCCCCCCCCCCCC", "text/plain", "e", "", 0), 0);
	assert_int_equal(xc_upload__file_get(dir, "CCCCCCCCCCCCCCCCCCCCCCCC", "e", 100, false,
	                                     &data, &off, &len, type),
	                 0);
	assert_int_equal(len, 0);
	free(data);
	/* taken down: the file and an unfinished one of the slot go; then there is none */
	make("." SLOT ".part", "half", 0);
	assert_int_equal(xc_upload__file_remove(dir, SLOT), 0);
	assert_false(exists(SLOT));
	assert_false(exists("." SLOT ".part"));
	assert_int_equal(xc_upload__file_remove(dir, SLOT), -ENOENT);
	assert_int_equal(xc_upload__file_put(dir, SLOT, "image/png", "again.png", "x", 1), 0);
	/* no such directory */
	assert_int_equal(xc_upload__file_put("/nonexistent/dir", SLOT, "a/b", "n", "x", 1),
	                 -ENOENT);
}

static void test_not_ours(void **state)
{
	char type[XC_UPLOAD_TYPE_MAX + 1], *data = NULL, p[128];
	size_t off, len;

	(void)state;
	/* a link is not followed, a directory is not a file, lines missing */
	path_of(p, sizeof(p), "DDDDDDDDDDDDDDDDDDDDDDDD");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(xc_upload__file_get(dir, "DDDDDDDDDDDDDDDDDDDDDDDD", "passwd", 1 << 20,
	                                     false, &data, &off, &len, type),
	                 -EIO);
	path_of(p, sizeof(p), "EEEEEEEEEEEEEEEEEEEEEEEE");
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(xc_upload__file_get(dir, "EEEEEEEEEEEEEEEEEEEEEEEE", "x", 1 << 20, false,
	                                     &data, &off, &len, type),
	                 -EIO);
	make("FFFFFFFFFFFFFFFFFFFFFFFF", "text/plain no newline", 0);
	assert_int_equal(xc_upload__file_get(dir, "FFFFFFFFFFFFFFFFFFFFFFFF", "x", 1 << 20, false,
	                                     &data, &off, &len, type),
	                 -EIO);
	make("GGGGGGGGGGGGGGGGGGGGGGGG", "text/plain\nonly one line", 0);
	assert_int_equal(xc_upload__file_get(dir, "GGGGGGGGGGGGGGGGGGGGGGGG", "only one line",
	                                     1 << 20, false, &data, &off, &len, type),
	                 -EIO);
	assert_null(data);
}

static void test_sweep(void **state)
{
	char p[128];
	size_t removed = 99;
	int64_t now = (int64_t)time(NULL) * 1000;

	(void)state;
	/* beside what the tests before left (all written just now): an old file and a new one */
	make("HHHHHHHHHHHHHHHHHHHHHHHH", "t\nn\nold", 3600);
	make("IIIIIIIIIIIIIIIIIIIIIIII", "t\nn\nnew", 0);
	make(".old.part", "half", 7200);
	make(".new.part", "half", 60);
	path_of(p, sizeof(p), "link-to-old");
	assert_int_equal(symlink("HHHHHHHHHHHHHHHHHHHHHHHH", p), 0);
	/* files older than 10 minutes go, unfinished ones older than an hour */
	assert_int_equal(xc_upload__file_sweep(dir, now - 600000, now - 3600000, &removed), 0);
	assert_false(exists("HHHHHHHHHHHHHHHHHHHHHHHH"));
	assert_true(exists("IIIIIIIIIIIIIIIIIIIIIIII"));
	assert_false(exists(".old.part"));
	assert_true(exists(".new.part"));
	assert_true(exists("link-to-old"));              /* a link is left alone */
	assert_true(exists("EEEEEEEEEEEEEEEEEEEEEEEE")); /* and so is a directory */
	assert_int_equal(removed, 1);                    /* H: unfinished files are not counted */
	assert_true(exists(SLOT));                       /* written by test_put_and_get just now */
	assert_int_equal(xc_upload__file_sweep("/nonexistent/dir", now, now, &removed), -ENOENT);
	assert_int_equal(removed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_and_get),
	    cmocka_unit_test(test_not_ours),
	    cmocka_unit_test(test_sweep),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
