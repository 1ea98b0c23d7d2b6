/* upload_files.c - the files of HTTP File Upload on disk (upload_int.h): one regular file per
 * slot, named by the slot id, holding a line with the file's media type, a line with its name,
 * then its bytes. Plain blocking calls, made on libuv's thread pool (upload_http.c), never on an
 * event loop. Nothing here follows a symbolic link: a name in the directory is a slot's file, an
 * unfinished one (".SLOT.part"), or left alone. */
#include "upload_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int xc_upload__file_put(const char *dir, const char *slot, const char *type, const char *name,
                        const char *body, size_t len)
{
	char part[PATH_MAX], final[PATH_MAX];
	int fd, rc;

	if ((size_t)snprintf(part, sizeof(part), "%s/.%s.part", dir, slot) >= sizeof(part) ||
	    (size_t)snprintf(final, sizeof(final), "%s/%s", dir, slot) >= sizeof(final))
		return -ENAMETOOLONG;
	if (access(final, F_OK) == 0)
		return -EEXIST;
	fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno; /* EEXIST: the same slot is being put right now */
	rc = write_all(fd, type, strlen(type));
	rc = rc ? rc : write_all(fd, "\n", 1);
	rc = rc ? rc : write_all(fd, name, strlen(name));
	rc = rc ? rc : write_all(fd, "\n", 1);
	rc = rc ? rc : write_all(fd, body, len);
	if (close(fd) != 0 && !rc)
		rc = -errno;
	/* link(), unlike rename(), fails when the name is taken: a file once there stays */
	if (!rc && link(part, final) != 0)
		rc = -errno;
	(void)unlink(part);
	return rc;
}

int xc_upload__file_get(const char *dir, const char *slot, const char *name, size_t cap,
                        bool head_only, char **data, size_t *off, size_t *len,
                        char type[XC_UPLOAD_TYPE_MAX + 1])
{
	char path[PATH_MAX], *d, *nl1, *nl2;
	struct stat st;
	size_t have = 0, want;
	ssize_t got;
	int fd;

	*data = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, slot) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ELOOP ? -EIO : -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > cap) {
		close(fd);
		return -EIO;
	}
	/* a HEAD needs the two lines only, which are at most this long */
	want = (size_t)st.st_size;
	if (head_only && want > XC_UPLOAD_TYPE_MAX + XC_UPLOAD_NAME_MAX + 2)
		want = XC_UPLOAD_TYPE_MAX + XC_UPLOAD_NAME_MAX + 2;
	if (!(d = malloc(want + 1))) {
		close(fd);
		return -EIO;
	}
	while (have < want) {
		got = read(fd, d + have, want - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	close(fd);
	d[have] = '\0';
	nl1 = memchr(d, '\n', have);
	nl2 = nl1 ? memchr(nl1 + 1, '\n', have - (size_t)(nl1 + 1 - d)) : NULL;
	if (have != want || !nl1 || !nl2 || (size_t)(nl1 - d) > XC_UPLOAD_TYPE_MAX) {
		free(d);
		return -EIO; /* not one of ours, or cut short */
	}
	/* the name in the URL is the file's: another name is another URL, not found */
	if ((size_t)(nl2 - nl1 - 1) != strlen(name) ||
	    memcmp(nl1 + 1, name, (size_t)(nl2 - nl1 - 1)) != 0) {
		free(d);
		return -ENOENT;
	}
	memcpy(type, d, (size_t)(nl1 - d));
	type[nl1 - d] = '\0';
	*data = d;
	*off = (size_t)(nl2 + 1 - d);
	*len = (size_t)st.st_size - *off;
	return 0;
}

int xc_upload__file_remove(const char *dir, const char *slot)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/.%s.part", dir, slot) >= sizeof(path))
		return -ENAMETOOLONG;
	(void)unlink(path); /* a PUT of it on its way fails to link: gone as well */
	snprintf(path, sizeof(path), "%s/%s", dir, slot);
	return unlink(path) == 0 ? 0 : -errno;
}

int xc_upload__file_sweep(const char *dir, int64_t cutoff_ms, int64_t part_cutoff_ms,
                          size_t *removed)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	*removed = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		bool part = e->d_name[0] == '.';
		int64_t cut = part ? part_cutoff_ms : cutoff_ms;
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 >= cut)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			if (!part)
				(*removed)++;
		} else if (errno != ENOENT) {
			rc = -errno;
		}
	}
	closedir(d);
	return rc;
}
