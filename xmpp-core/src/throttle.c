/* throttle.c - failed logins per key and minute (throttle.h). */
#include "throttle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cm/list.h"
#include "cm/map.h"

struct entry {
	struct cm_map_node node;
	uint64_t window; /* now_ms / t->window_ms when counted */
	unsigned n;
	char key[];
};

struct xc_throttle {
	uv_mutex_t lock;
	struct cm_map keys;
	uint64_t swept; /* the window last swept */
	uint64_t window_ms;
};

int xc_throttle_alloc(struct xc_throttle **out, uint64_t window_ms)
{
	struct xc_throttle *t = calloc(1, sizeof(*t));
	int r;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->window_ms = window_ms ? window_ms : 1;
	r = cm_map_init(&t->keys, 64);
	if (r) {
		free(t);
		return r;
	}
	if (uv_mutex_init(&t->lock) != 0) {
		cm_map_close(&t->keys);
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

static void drop_all(struct xc_throttle *t, uint64_t keep_window)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	cm_map_iter_init(&it, &t->keys);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		struct entry *e = cm_list_entry(n, struct entry, node);

		if (e->window != keep_window) {
			cm_map_remove(&t->keys, n);
			free(e);
		}
	}
}

void xc_throttle_free(struct xc_throttle *t)
{
	if (!t)
		return;
	drop_all(t, UINT64_MAX);
	cm_map_close(&t->keys);
	uv_mutex_destroy(&t->lock);
	free(t);
}

static struct entry *find(struct xc_throttle *t, const char *key, uint64_t h)
{
	for (struct cm_map_node *n = cm_map_first(&t->keys, h); n; n = cm_map_next(n)) {
		struct entry *e = cm_list_entry(n, struct entry, node);

		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

bool xc_throttle_blocked(struct xc_throttle *t, const char *key, unsigned limit, uint64_t now_ms)
{
	uint64_t h = cm_map_hash(&t->keys, key, strlen(key)), w = now_ms / t->window_ms;
	struct entry *e;
	bool blocked;

	uv_mutex_lock(&t->lock);
	e = find(t, key, h);
	blocked = e && e->window == w && e->n >= limit;
	uv_mutex_unlock(&t->lock);
	return blocked;
}

void xc_throttle_fail(struct xc_throttle *t, const char *key, uint64_t now_ms)
{
	uint64_t h = cm_map_hash(&t->keys, key, strlen(key)), w = now_ms / t->window_ms;
	size_t len = strlen(key);
	struct entry *e;

	uv_mutex_lock(&t->lock);
	/* once per window, what the last one counted goes */
	if (t->swept != w) {
		drop_all(t, w);
		t->swept = w;
	}
	e = find(t, key, h);
	if (!e) {
		e = malloc(sizeof(*e) + len + 1);
		if (e) {
			memcpy(e->key, key, len + 1);
			e->window = w;
			e->n = 0;
			cm_map_insert(&t->keys, &e->node, h);
		}
	}
	if (e) {
		if (e->window != w) {
			e->window = w;
			e->n = 0;
		}
		e->n++;
	}
	uv_mutex_unlock(&t->lock);
}
