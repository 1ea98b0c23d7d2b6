/* user.c - users on their home shard and their rosters in memory (user.h). */
#include "user.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "c2s.h"
#include "cm/log.h"
#include "mam.h"
#include "server.h"
#include "ticket.h"

struct xc_wait {
	struct cm_list link;
	struct cm_xml_node *st; /* owned */
	xc_user_fn fn;
	char *arg;                /* owned copy */
	struct xc_ticket *ticket; /* a reference, or NULL (ticket.h) */
};

static uint64_t key_hash(struct xc_shard *sh, const struct xc_jid *jid)
{
	return cm_map_hash(&sh->users, jid->s, xc_jid_bare_len(jid));
}

struct xc_user *xc_user_find(struct xc_shard *sh, const struct xc_jid *jid)
{
	size_t len = xc_jid_bare_len(jid);

	for (struct cm_map_node *n = cm_map_first(&sh->users, key_hash(sh, jid)); n;
	     n = cm_map_next(n)) {
		struct xc_user *u = cm_list_entry(n, struct xc_user, node);

		if (xc_jid_bare_len(&u->bare) == len && memcmp(u->bare.s, jid->s, len) == 0)
			return u;
	}
	return NULL;
}

struct xc_user *xc_user_get(struct xc_shard *sh, const struct xc_jid *jid)
{
	struct xc_user *u = xc_user_find(sh, jid);

	if (u) {
		u->held++;
		return u;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	if (xc_jid_copy(&u->bare, jid, true) != 0 || cm_map_init(&u->roster, 16) != 0) {
		xc_jid_free(&u->bare);
		free(u);
		return NULL;
	}
	cm_list_init(&u->sessions);
	cm_list_init(&u->waiting);
	cm_map_insert(&sh->users, &u->node, key_hash(sh, &u->bare));
	u->held = 1;
	return u;
}

void xc_user_release(struct xc_shard *sh, struct xc_user *u)
{
	if (!u)
		return;
	u->held--;
	xc_user_put(sh, u);
}

int xc_user_set_blocked(struct xc_user *u, char *const *jids, size_t n)
{
	struct xc_jid *v = n ? calloc(n, sizeof(*v)) : NULL;
	size_t k = 0;

	if (n && !v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (xc_jid_parse(&v[k], jids[i], strlen(jids[i]), NULL, 0) == 0)
			k++; /* what the store holds was valid when it was written */
	for (size_t i = 0; i < u->nblocked; i++)
		xc_jid_free(&u->blocked[i]);
	free(u->blocked);
	u->blocked = v;
	u->nblocked = k;
	return 0;
}

static void contact_free(struct xc_contact *ct)
{
	struct xc_roster_item *it = &ct->item;

	free(it->contact);
	free(it->name);
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	free(ct);
}

static void roster_clear(struct xc_user *u)
{
	struct cm_map_iter it;
	struct cm_map_node *n;

	cm_map_iter_init(&it, &u->roster);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		cm_map_remove(&u->roster, n);
		contact_free(cm_list_entry(n, struct xc_contact, node));
	}
	u->rstate = XC_ROSTER_NONE;
}

void xc_user_put(struct xc_shard *sh, struct xc_user *u)
{
	if (!u || u->held || !cm_list_empty(&u->sessions) || !cm_list_empty(&u->waiting) ||
	    u->busy || u->rstate == XC_ROSTER_LOADING)
		return;
	cm_map_remove(&sh->users, &u->node);
	roster_clear(u);
	cm_map_close(&u->roster);
	xc_user_set_blocked(u, NULL, 0);
	xc_mam_prefs_free(u->mam_prefs);
	free(u->avatar);
	xc_jid_free(&u->bare);
	free(u);
}

struct xc_contact *xc_roster_find(struct xc_user *u, const char *contact)
{
	uint64_t h = cm_map_hash(&u->roster, contact, strlen(contact));

	for (struct cm_map_node *n = cm_map_first(&u->roster, h); n; n = cm_map_next(n)) {
		struct xc_contact *ct = cm_list_entry(n, struct xc_contact, node);

		if (strcmp(ct->item.contact, contact) == 0)
			return ct;
	}
	return NULL;
}

struct xc_contact *xc_roster_add(struct xc_user *u, const char *contact)
{
	struct xc_contact *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return NULL;
	ct->item.contact = strdup(contact);
	if (!ct->item.contact) {
		free(ct);
		return NULL;
	}
	cm_map_insert(&u->roster, &ct->node, cm_map_hash(&u->roster, contact, strlen(contact)));
	return ct;
}

void xc_roster_remove(struct xc_user *u, struct xc_contact *ct)
{
	cm_map_remove(&u->roster, &ct->node);
	contact_free(ct);
}

/* --- loading ---------------------------------------------------------------------------------- */

/* Run the waiting work, in order. A function may queue more (it then runs in this pass too). */
static void run_waiting(struct xc_shard *sh, struct xc_user *u)
{
	struct cm_list *n;

	while ((n = cm_list_pop(&u->waiting)) != NULL) {
		struct xc_wait *w = cm_list_entry(n, struct xc_wait, link);
		struct xc_ticket_scope sc;

		xc_ticket_enter(sh, &sc, w->ticket);
		w->fn(sh, u, w->st, w->arg);
		xc_ticket_leave(sh, &sc);
		free(w->arg);
		free(w);
	}
}

void xc_user_drop_waiting(struct xc_user *u)
{
	struct cm_list *n;

	while ((n = cm_list_pop(&u->waiting)) != NULL) {
		struct xc_wait *w = cm_list_entry(n, struct xc_wait, link);

		cm_xml_node_free(w->st);
		xc_ticket_put(NULL, w->ticket);
		free(w->arg);
		free(w);
	}
}

static void on_loaded(struct xc_store_req *r)
{
	struct xc_shard *sh = r->arg;
	struct xc_jid j = {0};
	struct xc_user *u;

	/* the user is found again by name: it cannot have gone while loading */
	if (xc_jid_parse(&j, r->user, strlen(r->user), NULL, 0) != 0 ||
	    !(u = xc_user_find(sh, &j))) {
		xc_jid_free(&j);
		xc_store_req_free(r);
		return;
	}
	xc_jid_free(&j);
	if (r->err) {
		CM_LOGW("roster", "cannot read the roster of %s: %s", r->user, strerror(-r->err));
		u->rstate = XC_ROSTER_NONE;
	} else {
		u->exists = r->found;
		u->roster_version = r->version;
		xc_user_set_blocked(u, r->jids, r->njids);
		xc_mam_prefs_free(u->mam_prefs);
		u->mam_prefs = xc_mam_prefs_take(&r->prefs, r->prefs_found);
		free(u->avatar);
		u->avatar = r->avatar; /* handed over */
		r->avatar = NULL;
		for (size_t i = 0; i < r->nitems; i++) {
			struct xc_contact *ct = calloc(1, sizeof(*ct));

			if (!ct)
				continue;       /* the entry is missing until the next load */
			ct->item = r->items[i]; /* handed over */
			memset(&r->items[i], 0, sizeof(r->items[i]));
			cm_map_insert(
			    &u->roster, &ct->node,
			    cm_map_hash(&u->roster, ct->item.contact, strlen(ct->item.contact)));
		}
		u->rstate = XC_ROSTER_READY;
		if (!u->avatar)
			xc_avatar_learn(sh, u); /* a vCard from before the hashes were kept */
	}
	xc_store_req_free(r);
	/* the waiting work may get and release u itself: the load holds it until the end */
	run_waiting(sh, u);
	u->busy--;
	xc_user_put(sh, u);
}

void xc_user_with_roster(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st,
                         xc_user_fn fn, const char *arg)
{
	struct xc_store_req *r;
	struct xc_wait *w;

	if (u->rstate == XC_ROSTER_READY && cm_list_empty(&u->waiting)) {
		fn(sh, u, st, arg);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w || (arg && !(w->arg = strdup(arg)))) {
		free(w);
		fn(sh, u, st, arg); /* without memory: as if the roster could not be read */
		return;
	}
	w->st = st;
	w->fn = fn;
	w->ticket = xc_ticket_hold(sh);
	cm_list_insert_tail(&u->waiting, &w->link);
	if (u->rstate != XC_ROSTER_NONE)
		return;
	/* the first to need it reads it */
	r = xc_store_req_new(XC_STORE_ROSTER_GET, sh->loop, on_loaded, sh);
	if (!r || xc_store_req_set(&r->user, u->bare.s) != 0 ||
	    xc_store_submit(sh->srv->store, r) != 0) {
		xc_store_req_free(r);
		run_waiting(sh, u); /* with rstate NONE: each answers an error */
		return;
	}
	u->rstate = XC_ROSTER_LOADING;
	u->busy++;
}

/* --- writing ---------------------------------------------------------------------------------- */

struct stored {
	struct xc_shard *sh;
	xc_user_stored_fn done;
	void *arg;
};

static void on_stored(struct xc_store_req *r)
{
	struct stored *s = r->arg;
	struct xc_jid j = {0};
	struct xc_user *u = NULL;

	if (xc_jid_parse(&j, r->user, strlen(r->user), NULL, 0) == 0)
		u = xc_user_find(s->sh, &j);
	xc_jid_free(&j);
	if (u) {
		if (r->err)
			CM_LOGW("roster", "cannot write the roster of %s: %s", r->user,
			        strerror(-r->err));
		/* done may get and release u: the write holds it until the end */
		if (s->done)
			s->done(s->sh, u, r->err, r->version, s->arg);
		u->busy--;
		xc_user_put(s->sh, u);
	}
	xc_store_req_free(r);
	free(s);
}

static int copy_item(struct xc_roster_item *to, const struct xc_roster_item *from)
{
	memset(to, 0, sizeof(*to));
	to->st = from->st;
	to->contact = strdup(from->contact);
	if (!to->contact || (from->name && !(to->name = strdup(from->name))))
		return -ENOMEM;
	if (from->ngroups) {
		to->groups = calloc(from->ngroups, sizeof(*to->groups));
		if (!to->groups)
			return -ENOMEM;
		for (size_t i = 0; i < from->ngroups; i++) {
			to->groups[i] = strdup(from->groups[i]);
			if (!to->groups[i])
				return -ENOMEM;
			to->ngroups++;
		}
	}
	return 0;
}

void xc_roster_store(struct xc_shard *sh, struct xc_user *u, const struct xc_contact *ct,
                     const char *contact, xc_user_stored_fn done, void *arg)
{
	struct xc_store_req *r;
	struct stored *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	r = s ? xc_store_req_new(ct ? XC_STORE_ROSTER_PUT : XC_STORE_ROSTER_DELETE, sh->loop,
	                         on_stored, s)
	      : NULL;
	if (r) {
		s->sh = sh;
		s->done = done;
		s->arg = arg;
		rc = xc_store_req_set(&r->user, u->bare.s);
		if (!rc)
			rc = ct ? copy_item(&r->item, &ct->item)
			        : xc_store_req_set(&r->key, contact);
		rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	}
	if (rc) {
		CM_LOGW("roster", "cannot write the roster of %s: %s", u->bare.s, strerror(-rc));
		xc_store_req_free(r);
		free(s);
		if (done)
			done(sh, u, rc, u->roster_version, arg);
		return;
	}
	u->busy++;
	u->roster_version++; /* the store moves its version on by one for each change too */
}
