/* rsv.c - relay port reservations under random tokens (see rsv.h). */
#include "rsv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/crypto.h"

int icicle_rsv_init(struct icicle_rsv *r, size_t cap, uint64_t max_user)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->max_user = max_user;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void icicle_rsv_close(struct icicle_rsv *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		close(r->v[i].fd);
	free(r->v);
	r->v = NULL;
	r->n = r->size = 0;
	pthread_mutex_destroy(&r->lock);
}

static uint64_t user_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* Drop entry i (its socket closed when close_fd); the last entry takes its place. */
static void drop(struct icicle_rsv *r, size_t i, int close_fd)
{
	if (close_fd)
		close(r->v[i].fd);
	r->v[i] = r->v[--r->n];
}

static size_t expire_locked(struct icicle_rsv *r, uint64_t now_ms)
{
	size_t i = 0, n = 0;

	while (i < r->n) {
		if (r->v[i].expires <= now_ms) {
			drop(r, i, 1);
			n++;
		} else {
			i++;
		}
	}
	return n;
}

int icicle_rsv_add(struct icicle_rsv *r, const char *user, int fd, int af, uint64_t now_ms,
                   uint64_t *token)
{
	uint64_t uh = user_hash(user), t = 0, mine = 0;
	struct icicle_rsv_entry *e;
	size_t i;
	int rc = 0, tries;

	pthread_mutex_lock(&r->lock);
	expire_locked(r, now_ms);
	if (r->n >= r->cap) {
		rc = -EUSERS;
		goto out;
	}
	for (i = 0; i < r->n; i++)
		mine += r->v[i].user_hash == uh;
	if (r->max_user && mine >= r->max_user) {
		rc = -EDQUOT;
		goto out;
	}
	/* The token is the only proof of the reservation: it must not be guessable, nor equal to
	 * one outstanding. */
	for (tries = 0;; tries++) {
		if (tries == 8 || cm_crypto_random(&t, sizeof(t)) != 0) {
			rc = -EIO;
			goto out;
		}
		for (i = 0; i < r->n && r->v[i].token != t; i++)
			;
		if (i == r->n)
			break;
	}
	if (r->n == r->size) {
		size_t nsize = r->size ? r->size * 2 : 16;

		e = realloc(r->v, nsize * sizeof(*e));
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		r->v = e;
		r->size = nsize;
	}
	e = &r->v[r->n++];
	e->token = t;
	e->user_hash = uh;
	e->expires = now_ms + ICICLE_RSV_MS;
	e->fd = fd;
	e->af = af;
	*token = t;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int icicle_rsv_take(struct icicle_rsv *r, uint64_t token, uint64_t now_ms, int *fd, int *af)
{
	size_t i;
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	expire_locked(r, now_ms);
	for (i = 0; i < r->n; i++)
		if (r->v[i].token == token) {
			*fd = r->v[i].fd;
			*af = r->v[i].af;
			drop(r, i, 0);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

size_t icicle_rsv_expire(struct icicle_rsv *r, uint64_t now_ms)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = expire_locked(r, now_ms);
	pthread_mutex_unlock(&r->lock);
	return n;
}
