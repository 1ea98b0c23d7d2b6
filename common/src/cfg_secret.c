/* cfg_secret.c - secrets kept in files: read, reread on reload, wiped when dropped. */
#include "cm/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 65536

static void wipe_free(unsigned char *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

/* Read at most SECRET_MAX + 1 bytes of fd into buf; the extra byte tells "too large". */
static int read_all(int fd, unsigned char *buf, size_t *got)
{
	size_t len = 0;

	while (len <= SECRET_MAX) {
		ssize_t n = read(fd, buf + len, SECRET_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*got = len;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*got = len;
	return len > SECRET_MAX ? -EFBIG : 0;
}

int cm_secret_load(struct cm_secret *s)
{
	unsigned char *tmp = NULL, *data;
	size_t got = 0, len;
	struct stat st;
	int fd, err;

	if (!s || !s->path)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO must not hang the loader; it is refused below anyway. */
	fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	tmp = malloc(SECRET_MAX + 1);
	if (!tmp) {
		err = -ENOMEM;
		goto out;
	}
	err = read_all(fd, tmp, &got);
	if (err)
		goto out;
	/* Files written by editors and `echo` end in a newline that is not part of the secret. */
	len = got;
	while (len && (tmp[len - 1] == '\n' || tmp[len - 1] == '\r'))
		len--;
	if (!len) {
		err = -ENODATA;
		goto out;
	}
	data = malloc(len + 1);
	if (!data) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(data, tmp, len);
	data[len] = '\0';
	wipe_free(s->data, s->len);
	s->data = data;
	s->len = len;
out:
	wipe_free(tmp, got);
	close(fd);
	return err;
}

void cm_secret_free(struct cm_secret *s)
{
	if (!s)
		return;
	wipe_free(s->data, s->len);
	free(s->path);
	memset(s, 0, sizeof(*s));
}
