/* rsv.c - relay port reservations under random tokens (see rsv.h). */
#include "rsv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/crypto.h"

struct entry {
	struct cm_map_node by_token; /* in r->tokens */
	struct cm_map_node by_user;  /* in r->users */
	struct cm_list link;         /* in r->entries */
	uint64_t token;
	uint64_t expires; /* monotonic ms */
	int fd;           /* owned: the socket bound to the reserved port */
	int af;
	char user[]; /* NUL-terminated */
};

int icicle_rsv_init(struct icicle_rsv *r, size_t cap, uint64_t max_user)
{
	int rc;

	memset(r, 0, sizeof(*r));
	rc = cm_map_init(&r->tokens, 16);
	if (rc != 0)
		return rc;
	rc = cm_map_init(&r->users, 16);
	if (rc != 0) {
		cm_map_close(&r->tokens);
		return rc;
	}
	cm_list_init(&r->entries);
	r->cap = cap;
	r->max_user = max_user;
	pthread_mutex_init(&r->lock, NULL);
	r->ready = true;
	return 0;
}

/* Forget e, closing its socket when close_fd. */
static void drop(struct icicle_rsv *r, struct entry *e, bool close_fd)
{
	cm_map_remove(&r->tokens, &e->by_token);
	cm_map_remove(&r->users, &e->by_user);
	cm_list_remove(&e->link);
	if (close_fd)
		close(e->fd);
	free(e);
}

void icicle_rsv_close(struct icicle_rsv *r)
{
	struct cm_list *n;

	if (!r->ready)
		return;
	while ((n = cm_list_first(&r->entries)) != NULL)
		drop(r, cm_list_entry(n, struct entry, link), true);
	cm_map_close(&r->tokens);
	cm_map_close(&r->users);
	pthread_mutex_destroy(&r->lock);
	r->ready = false;
}

static size_t expire_locked(struct icicle_rsv *r, uint64_t now_ms)
{
	struct cm_list *n;
	size_t count = 0;

	/* Oldest first, and every reservation lives as long: stop at the first one still due.
	 * (The workers' clocks may disagree by a few ms, so a later entry can be due a little
	 * earlier; it goes on the next pass, and take() checks the time itself.) */
	while ((n = cm_list_first(&r->entries)) != NULL) {
		struct entry *e = cm_list_entry(n, struct entry, link);

		if (e->expires > now_ms)
			break;
		drop(r, e, true);
		count++;
	}
	return count;
}

static struct entry *by_token(struct icicle_rsv *r, uint64_t token)
{
	struct cm_map_node *n;

	for (n = cm_map_first(&r->tokens, cm_map_hash(&r->tokens, &token, sizeof(token))); n;
	     n = cm_map_next(n)) {
		struct entry *e = cm_list_entry(n, struct entry, by_token);

		if (e->token == token)
			return e;
	}
	return NULL;
}

int icicle_rsv_add(struct icicle_rsv *r, const char *user, int fd, int af, uint64_t now_ms,
                   uint64_t *token)
{
	size_t len = strlen(user);
	uint64_t uh, t = 0, mine = 0;
	struct cm_map_node *n;
	struct entry *e;
	int rc = 0, tries;

	pthread_mutex_lock(&r->lock);
	expire_locked(r, now_ms);
	if (cm_map_count(&r->tokens) >= r->cap) {
		rc = -EUSERS;
		goto out;
	}
	uh = cm_map_hash(&r->users, user, len);
	for (n = cm_map_first(&r->users, uh); n; n = cm_map_next(n))
		mine += strcmp(cm_list_entry(n, struct entry, by_user)->user, user) == 0;
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
		if (!by_token(r, t))
			break;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		rc = -ENOMEM;
		goto out;
	}
	e->token = t;
	e->expires = now_ms + ICICLE_RSV_MS;
	e->fd = fd;
	e->af = af;
	memcpy(e->user, user, len + 1);
	cm_map_insert(&r->tokens, &e->by_token, cm_map_hash(&r->tokens, &t, sizeof(t)));
	cm_map_insert(&r->users, &e->by_user, uh);
	cm_list_insert_tail(&r->entries, &e->link);
	*token = t;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int icicle_rsv_take(struct icicle_rsv *r, uint64_t token, uint64_t now_ms, int *fd, int *af)
{
	struct entry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	expire_locked(r, now_ms);
	e = by_token(r, token);
	if (e && e->expires <= now_ms) {
		drop(r, e, true);
		e = NULL;
	}
	if (e) {
		*fd = e->fd;
		*af = e->af;
		drop(r, e, false);
		rc = 0;
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

size_t icicle_rsv_count(struct icicle_rsv *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = cm_map_count(&r->tokens);
	pthread_mutex_unlock(&r->lock);
	return n;
}
