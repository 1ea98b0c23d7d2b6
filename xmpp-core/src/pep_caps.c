/* pep_caps.c - which contacts want which PEP notifications: their entity capabilities (XEP-0115)
 * learnt from the presence they send, asked once per unknown hash, cached on the shard.
 *
 * Per shard: the contacts' resources whose available presence reached each local account, and
 * the account's own resources that announced capabilities (who may be notified, and whose last
 * items were sent already), a cache from capabilities hash to
 * the nodes it asks notifications for, and the disco#info questions on their way. All three are
 * bounded (a contact cannot make the server hold without end); what does not fit is not learnt,
 * and the contact only misses notifications. A hash whose answer matches it (SHA-1, its extended
 * forms counted: caps.c) is shared by every contact announcing it; an answer that does not verify
 * counts for the resource that gave it only, so one contact cannot poison what others are sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "pep.h"
#include "pep_int.h"
#include "router.h"
#include "server.h"
#include "stanza.h"

#define NS_DISCO_INFO XC_NS_DISCO_INFO

#define CAPS_MAX        1024   /* hashes cached per shard */
#define PENDING_MAX     256    /* disco#info questions on their way per shard */
#define PEERS_MAX       100000 /* contact resources remembered per shard */
#define PEERS_PER_OWNER 2000   /* ... per account */
#define NOTIFY_MAX      256    /* +notify nodes kept per hash */
#define VER_MAX         128    /* bytes in a hash (a SHA-512 in base64 is 88) */
#define ID_PREFIX       "pepcaps-"

struct caps {
	struct cm_map_node node; /* in ps->caps, by key */
	struct cm_list link;     /* in ps->caps_age, oldest first */
	char *key;               /* owned: the hash, or "hash full-JID" when not verified */
	char **nodes;            /* owned: nodes the resource wants notifications of */
	size_t n;
};

struct pending {
	struct cm_list link; /* in ps->pending, oldest first */
	char id[32];         /* "" while it waits for another question about the same hash */
	char *ver, *hash;    /* owned */
	char *owner, *full;  /* owned: who asked (a bare JID), whom (a full JID) */
};

struct peer {
	struct cm_list link; /* in its owner's peers */
	char *full;          /* owned */
	char *ver;           /* owned: the hash it announced */
	bool own;            /* one of the owner's own resources */
};

struct owner {
	struct cm_map_node node; /* in ps->owners, by bare JID */
	char *bare;              /* owned */
	struct cm_list peers;    /* of struct peer */
	size_t n;
};

struct xc_pep_shard {
	struct cm_map caps; /* of struct caps */
	struct cm_list caps_age;
	size_t ncaps;
	struct cm_list pending; /* of struct pending */
	size_t npending;
	uint64_t next_id;
	struct cm_map owners; /* of struct owner */
	size_t npeers;
};

/* --- the shard's state ----------------------------------------------------------------------- */

static struct xc_pep_shard *shard_state(struct xc_shard *sh)
{
	struct xc_pep_shard *ps = sh->pep;

	if (ps)
		return ps;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	if (cm_map_init(&ps->caps, 64) != 0) {
		free(ps);
		return NULL;
	}
	if (cm_map_init(&ps->owners, 64) != 0) {
		cm_map_close(&ps->caps);
		free(ps);
		return NULL;
	}
	cm_list_init(&ps->caps_age);
	cm_list_init(&ps->pending);
	sh->pep = ps;
	return ps;
}

static void caps_free(struct caps *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->nodes[i]);
	free(c->nodes);
	free(c->key);
	free(c);
}

static void pending_free(struct pending *p)
{
	free(p->ver);
	free(p->hash);
	free(p->owner);
	free(p->full);
	free(p);
}

static void peer_free(struct peer *p)
{
	free(p->full);
	free(p->ver);
	free(p);
}

void xc_pep_shard_close(struct xc_shard *sh)
{
	struct xc_pep_shard *ps = sh->pep;
	struct cm_map_iter it;
	struct cm_map_node *n;

	if (!ps)
		return;
	while (!cm_list_empty(&ps->caps_age)) {
		struct caps *c = cm_list_entry(cm_list_first(&ps->caps_age), struct caps, link);

		cm_list_remove(&c->link);
		caps_free(c);
	}
	while (!cm_list_empty(&ps->pending)) {
		struct pending *p =
		    cm_list_entry(cm_list_first(&ps->pending), struct pending, link);

		cm_list_remove(&p->link);
		pending_free(p);
	}
	cm_map_iter_init(&it, &ps->owners);
	while ((n = cm_map_iter_next(&it)) != NULL) {
		struct owner *o = cm_list_entry(n, struct owner, node);

		while (!cm_list_empty(&o->peers)) {
			struct peer *p = cm_list_entry(cm_list_first(&o->peers), struct peer, link);

			cm_list_remove(&p->link);
			peer_free(p);
		}
		free(o->bare);
		free(o);
	}
	cm_map_close(&ps->owners);
	cm_map_close(&ps->caps);
	free(ps);
	sh->pep = NULL;
}

/* --- the capabilities cache ------------------------------------------------------------------ */

static struct caps *caps_find(struct xc_pep_shard *ps, const char *key)
{
	uint64_t h = cm_map_hash(&ps->caps, key, strlen(key));

	for (struct cm_map_node *n = cm_map_first(&ps->caps, h); n; n = cm_map_next(n)) {
		struct caps *c = cm_list_entry(n, struct caps, node);

		if (strcmp(c->key, key) == 0)
			return c;
	}
	return NULL;
}

/* The key of a hash that did not verify: it counts for that resource only. NULL without
 * memory; the caller frees it. */
static char *private_key(const char *ver, const char *full)
{
	size_t l = strlen(ver) + strlen(full) + 2;
	char *k = malloc(l);

	if (k)
		snprintf(k, l, "%s %s", ver, full);
	return k;
}

/* What the peer's capabilities are, if known. */
static struct caps *peer_caps(struct xc_pep_shard *ps, const struct peer *p)
{
	struct caps *c = caps_find(ps, p->ver);
	char *k;

	if (c)
		return c;
	k = private_key(p->ver, p->full);
	if (!k)
		return NULL;
	c = caps_find(ps, k);
	free(k);
	return c;
}

/* Cache nodes under key (both handed over, freed on failure). The oldest entry makes room. */
static void caps_put(struct xc_pep_shard *ps, char *key, char **nodes, size_t n)
{
	struct caps *c = caps_find(ps, key);

	if (c) {
		/* answered twice: the newer answer stands */
		cm_map_remove(&ps->caps, &c->node);
		cm_list_remove(&c->link);
		caps_free(c);
		ps->ncaps--;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		for (size_t i = 0; i < n; i++)
			free(nodes[i]);
		free(nodes);
		free(key);
		return;
	}
	if (ps->ncaps >= CAPS_MAX) {
		struct caps *old = cm_list_entry(cm_list_first(&ps->caps_age), struct caps, link);

		cm_map_remove(&ps->caps, &old->node);
		cm_list_remove(&old->link);
		caps_free(old);
		ps->ncaps--;
	}
	c->key = key;
	c->nodes = nodes;
	c->n = n;
	cm_map_insert(&ps->caps, &c->node, cm_map_hash(&ps->caps, key, strlen(key)));
	cm_list_insert_tail(&ps->caps_age, &c->link);
	ps->ncaps++;
}

static bool caps_wants(const struct caps *c, const char *node)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (strcmp(c->nodes[i], node) == 0)
			return true;
	return false;
}

int xc_pep__notify_nodes(const struct cm_xml_node *query, size_t max, char ***nodes, size_t *n)
{
	const size_t sl = strlen(XC_PEP_NOTIFY);
	char **v = NULL;
	size_t k = 0;

	*nodes = NULL;
	*n = 0;
	for (const struct cm_xml_node *f = cm_xml_child(query, "feature", NS_DISCO_INFO);
	     f && k < max; f = cm_xml_child_next(f, "feature", NS_DISCO_INFO)) {
		const char *var = cm_xml_attr(f, "var");
		size_t l = var ? strlen(var) : 0;
		char **nv;

		if (l <= sl || l - sl > XC_PEP_NODE_MAX || strcmp(var + l - sl, XC_PEP_NOTIFY) != 0)
			continue;
		nv = realloc(v, (k + 1) * sizeof(*v));
		if (!nv)
			goto fail;
		v = nv;
		v[k] = strndup(var, l - sl);
		if (!v[k])
			goto fail;
		k++;
	}
	*nodes = v;
	*n = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(v);
	return -ENOMEM;
}

/* --- contacts heard from --------------------------------------------------------------------- */

static struct owner *owner_find(struct xc_pep_shard *ps, const char *bare)
{
	uint64_t h = cm_map_hash(&ps->owners, bare, strlen(bare));

	for (struct cm_map_node *n = cm_map_first(&ps->owners, h); n; n = cm_map_next(n)) {
		struct owner *o = cm_list_entry(n, struct owner, node);

		if (strcmp(o->bare, bare) == 0)
			return o;
	}
	return NULL;
}

static struct peer *peer_find(struct owner *o, const char *full)
{
	for (struct cm_list *l = o->peers.next; l != &o->peers; l = l->next) {
		struct peer *p = cm_list_entry(l, struct peer, link);

		if (strcmp(p->full, full) == 0)
			return p;
	}
	return NULL;
}

static void peer_drop(struct xc_pep_shard *ps, struct owner *o, struct peer *p)
{
	cm_list_remove(&p->link);
	peer_free(p);
	o->n--;
	ps->npeers--;
	if (o->n == 0) {
		cm_map_remove(&ps->owners, &o->node);
		free(o->bare);
		free(o);
	}
}

void xc_pep__foreach_peer(struct xc_shard *sh, const char *owner, const char *node,
                          xc_pep__peer_fn fn, void *arg)
{
	struct xc_pep_shard *ps = sh->pep;
	struct owner *o = ps ? owner_find(ps, owner) : NULL;

	if (!o)
		return;
	/* fn only routes stanzas: the list does not change under it */
	for (struct cm_list *l = o->peers.next; l != &o->peers; l = l->next) {
		struct peer *p = cm_list_entry(l, struct peer, link);

		if (!p->own && caps_wants(peer_caps(ps, p), node))
			fn(sh, p->full, arg);
	}
}

bool xc_pep__wants(struct xc_shard *sh, const char *owner, const char *full, const char *node)
{
	struct xc_pep_shard *ps = sh->pep;
	struct owner *o = ps ? owner_find(ps, owner) : NULL;
	struct peer *p = o ? peer_find(o, full) : NULL;

	return p && caps_wants(peer_caps(ps, p), node);
}

bool xc_pep__own_wants(struct xc_shard *sh, const char *owner, const char *full, const char *node)
{
	struct xc_pep_shard *ps = sh->pep;
	struct owner *o = ps ? owner_find(ps, owner) : NULL;
	struct peer *p = o ? peer_find(o, full) : NULL;
	struct caps *c = p ? peer_caps(ps, p) : NULL;

	return !c || caps_wants(c, node);
}

/* Ask full what its capabilities are, from owner (the PEP service asks, XEP-0115 6.3). */
static int ask(struct xc_shard *sh, struct pending *pd, const char *capsnode)
{
	struct cm_xml_node *iq = NULL, *q;
	char node[1300];
	int r;

	snprintf(pd->id, sizeof(pd->id), ID_PREFIX "%llu", (unsigned long long)++sh->pep->next_id);
	r = cm_xml_node_new(&iq, "iq", CM_XML_NS_CLIENT);
	r = r ? r : cm_xml_node_set_attr(iq, "type", "get");
	r = r ? r : cm_xml_node_set_attr(iq, "id", pd->id);
	r = r ? r : xc_stanza_set_addrs(iq, pd->full, pd->owner);
	r = r ? r : cm_xml_node_new_child(&q, iq, "query", NS_DISCO_INFO);
	if (!r && capsnode) {
		int n = snprintf(node, sizeof(node), "%s#%s", capsnode, pd->ver);

		/* a node that does not fit is not asked for by name: the plain question is valid */
		if (n > 0 && (size_t)n < sizeof(node))
			r = cm_xml_node_set_attr(q, "node", node);
	}
	if (r) {
		cm_xml_node_free(iq);
		return r;
	}
	xc_route(sh, iq);
	return 0;
}

/* Remember that full (announcing ver) asked owner's shard; ask it or wait for an answer about
 * the same hash. */
static void learn(struct xc_shard *sh, struct xc_pep_shard *ps, const char *owner, const char *full,
                  const char *ver, const char *hash, const char *capsnode)
{
	struct pending *pd;
	bool asked = false;

	for (struct cm_list *l = ps->pending.next; l != &ps->pending; l = l->next) {
		struct pending *o = cm_list_entry(l, struct pending, link);

		if (strcmp(o->full, full) == 0 && strcmp(o->owner, owner) == 0 &&
		    strcmp(o->ver, ver) == 0)
			return; /* asked already */
		if (o->id[0] && strcmp(o->ver, ver) == 0)
			asked = true;
	}
	if (ps->npending >= PENDING_MAX) {
		/* the oldest question is given up (its contact never answered, most likely) */
		pd = cm_list_entry(cm_list_first(&ps->pending), struct pending, link);
		cm_list_remove(&pd->link);
		pending_free(pd);
		ps->npending--;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return;
	pd->ver = strdup(ver);
	pd->hash = strdup(hash ? hash : "");
	pd->owner = strdup(owner);
	pd->full = strdup(full);
	if (!pd->ver || !pd->hash || !pd->owner || !pd->full ||
	    (!asked && ask(sh, pd, capsnode) != 0)) {
		pending_free(pd);
		return;
	}
	cm_list_insert_tail(&ps->pending, &pd->link);
	ps->npending++;
}

/* The resource from (a contact's, or own: one of the owner's) sent presence st, of type
 * available or not, that reached owner (a bare JID). */
static void heard(struct xc_shard *sh, const struct xc_jid *owner, const struct xc_jid *from,
                  bool own, bool available, const struct cm_xml_node *st)
{
	struct xc_pep_shard *ps = available ? shard_state(sh) : sh->pep;
	const struct cm_xml_node *c;
	const char *ver = NULL;
	struct caps *known;
	struct owner *o;
	struct peer *p;

	if (!ps)
		return;
	o = owner_find(ps, owner->s);
	p = o ? peer_find(o, from->s) : NULL;
	c = available ? cm_xml_child(st, "c", XC_NS_CAPS) : NULL;
	if (c)
		ver = cm_xml_attr(c, "ver");
	if (!ver || !*ver || strlen(ver) > VER_MAX) {
		/* gone, or without capabilities: nothing to notify it of */
		if (p)
			peer_drop(ps, o, p);
		return;
	}
	if (p && strcmp(p->ver, ver) == 0)
		return; /* a presence update: its last items were sent already */
	if (p) {
		char *nv = strdup(ver);

		if (!nv)
			return;
		free(p->ver);
		p->ver = nv;
	} else {
		if (ps->npeers >= PEERS_MAX || (o && o->n >= PEERS_PER_OWNER))
			return;
		if (!o) {
			o = calloc(1, sizeof(*o));
			if (!o || !(o->bare = strdup(owner->s))) {
				free(o);
				return;
			}
			cm_list_init(&o->peers);
			cm_map_insert(&ps->owners, &o->node,
			              cm_map_hash(&ps->owners, o->bare, strlen(o->bare)));
		}
		p = calloc(1, sizeof(*p));
		if (p) {
			p->full = strdup(from->s);
			p->ver = strdup(ver);
			p->own = own;
		}
		if (!p || !p->full || !p->ver) {
			if (p)
				peer_free(p);
			if (o->n == 0) {
				cm_map_remove(&ps->owners, &o->node);
				free(o->bare);
				free(o);
			}
			return;
		}
		cm_list_insert_tail(&o->peers, &p->link);
		o->n++;
		ps->npeers++;
	}
	known = peer_caps(ps, p);
	if (known && known->n)
		xc_pep__send_last(sh, owner->s,
		                  from->s); /* nothing to read when it wants nothing */
	else if (!known)
		learn(sh, ps, owner->s, from->s, ver, cm_xml_attr(c, "hash"),
		      cm_xml_attr(c, "node"));
}

void xc_pep_presence(struct xc_shard *sh, const struct xc_jid *to, const struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	bool available = strcmp(type, "available") == 0;
	struct xc_jid from = {0}, owner = {0};

	if (!xc_pep_enabled(sh->srv->pep) || (!available && strcmp(type, "unavailable") != 0))
		return;
	if (xc_stanza_jid(st, "from", &from) == 0 && !xc_jid_is_bare(&from) &&
	    !xc_jid_bare_equal(&from, to) && xc_jid_copy(&owner, to, true) == 0)
		heard(sh, &owner, &from, false, available, st);
	xc_jid_free(&from);
	xc_jid_free(&owner);
}

void xc_pep_own_presence(struct xc_shard *sh, const struct xc_jid *full,
                         const struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	bool available = strcmp(type, "available") == 0;
	struct xc_jid owner = {0};

	if (!xc_pep_enabled(sh->srv->pep) || (!available && strcmp(type, "unavailable") != 0) ||
	    xc_jid_is_bare(full))
		return;
	if (xc_jid_copy(&owner, full, true) == 0)
		heard(sh, &owner, full, true, available, st);
	xc_jid_free(&owner);
}

/* The answer about ver does not hold for others: those that waited for it are asked
 * themselves. */
static void ask_waiters(struct xc_shard *sh, struct xc_pep_shard *ps, const char *ver)
{
	for (struct cm_list *l = ps->pending.next, *nx; l != &ps->pending; l = nx) {
		struct pending *w = cm_list_entry(l, struct pending, link);

		nx = l->next;
		if (w->id[0] || strcmp(w->ver, ver) != 0 || ask(sh, w, NULL) == 0)
			continue;
		cm_list_remove(&w->link);
		pending_free(w);
		ps->npending--;
	}
}

/* The answer about pd's hash came (query: its disco#info, or NULL for an error). */
static void answered(struct xc_shard *sh, struct xc_pep_shard *ps, struct pending *pd,
                     const struct cm_xml_node *query)
{
	char mine[64];
	char **nodes;
	size_t n;
	char *key;
	bool shared;

	if (!query || xc_pep__notify_nodes(query, NOTIFY_MAX, &nodes, &n) != 0) {
		ask_waiters(sh, ps, pd->ver);
		return;
	}
	shared = strcmp(pd->hash, "sha-1") == 0 && xc_caps_ver(query, mine, sizeof(mine)) == 0 &&
	         strcmp(mine, pd->ver) == 0;
	key = shared ? strdup(pd->ver) : private_key(pd->ver, pd->full);
	if (!key) {
		for (size_t i = 0; i < n; i++)
			free(nodes[i]);
		free(nodes);
		return;
	}
	caps_put(ps, key, nodes, n);
	if (n)
		xc_pep__send_last(sh, pd->owner, pd->full);
	if (!shared) {
		ask_waiters(sh, ps, pd->ver);
		return;
	}
	/* those that waited for the same hash know it now too */
	for (struct cm_list *l = ps->pending.next, *nx; l != &ps->pending; l = nx) {
		struct pending *w = cm_list_entry(l, struct pending, link);

		nx = l->next;
		if (w->id[0] || strcmp(w->ver, pd->ver) != 0)
			continue;
		if (n)
			xc_pep__send_last(sh, w->owner, w->full);
		cm_list_remove(&w->link);
		pending_free(w);
		ps->npending--;
	}
}

bool xc_pep_answer(struct xc_shard *sh, struct cm_xml_node *iq)
{
	struct xc_pep_shard *ps = sh->pep;
	const char *id = cm_xml_attr(iq, "id"), *from = cm_xml_attr(iq, "from");
	struct pending *pd = NULL;

	if (!id || strncmp(id, ID_PREFIX, strlen(ID_PREFIX)) != 0)
		return false;
	for (struct cm_list *l = ps ? ps->pending.next : NULL; l && l != &ps->pending;
	     l = l->next) {
		struct pending *o = cm_list_entry(l, struct pending, link);

		if (strcmp(o->id, id) == 0) {
			pd = o;
			break;
		}
	}
	/* an answer from anyone but the resource asked is not one */
	if (pd && from && strcmp(from, pd->full) == 0) {
		cm_list_remove(&pd->link);
		ps->npending--;
		answered(sh, ps, pd,
		         strcmp(xc_stanza_type(iq), "result") == 0
		             ? cm_xml_child(iq, "query", NS_DISCO_INFO)
		             : NULL);
		pending_free(pd);
	}
	cm_xml_node_free(iq);
	return true;
}
