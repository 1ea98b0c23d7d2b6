/* pep.c - personal eventing (XEP-0163) on each account's bare JID: publish, items, retract,
 * delete, publish-options, notifications and the last items for contacts coming online
 * (pep.h). */
#include "pep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "blocking.h"
#include "c2s.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "pep_int.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "user.h"
#include "xc.h"

#define NS_DATA          "jabber:x:data"
#define NS_DISCO_ITEMS   "http://jabber.org/protocol/disco#items"
#define NS_RSM           "http://jabber.org/protocol/rsm"
#define MAX_IDS          64 /* item ids one items request may name */
#define MAX_GROUPS       64 /* names in one roster_groups_allowed */
#define DEFAULT_MAX_KEPT 1  /* items a node keeps when its creator did not say */

struct pep_metrics {
	struct cm_counter *published, *refused;
	struct cm_counter *notifications;
};

struct xc_pep {
	struct xc_server *srv;           /* borrowed */
	const struct xc_pep_config *cfg; /* borrowed: the server's configuration */
	struct pep_metrics m;
};

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct pep_metrics, published, "xmpp_pep_publishes_total",
                          "Items published to PEP nodes (XEP-0163), by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct pep_metrics, refused, "xmpp_pep_publishes_total",
                          "Items published to PEP nodes (XEP-0163), by result.", "result",
                          "refused"),
    CM_METRIC_COUNTER_DEF(struct pep_metrics, notifications, "xmpp_pep_notifications_total",
                          "PEP event notifications sent (publications, retractions, node "
                          "deletions and last items for resources coming online).",
                          NULL),
};

/* What the account's disco#info says of PEP (XEP-0163 and the XEP-0060 features it uses). */
static const char *const features[] = {
    XC_NS_PUBSUB "#access-open",    XC_NS_PUBSUB "#access-presence",
    XC_NS_PUBSUB "#access-roster",  XC_NS_PUBSUB "#access-whitelist",
    XC_NS_PUBSUB "#auto-create",    XC_NS_PUBSUB "#config-node",
    XC_NS_PUBSUB "#delete-items",   XC_NS_PUBSUB "#delete-nodes",
    XC_NS_PUBSUB "#last-published", XC_NS_PUBSUB "#persistent-items",
    XC_NS_PUBSUB "#publish",        XC_NS_PUBSUB "#publish-options",
    XC_NS_PUBSUB "#retract-items",  XC_NS_PUBSUB "#retrieve-items",
};

int xc_pep_alloc(struct xc_pep **out, struct xc_server *srv, struct cm_metrics *metrics)
{
	struct xc_pep *p = calloc(1, sizeof(*p));
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->srv = srv;
	p->cfg = &srv->cfg->pep;
	r = cm_metrics_register(metrics, &p->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("pep", "metrics: %s", err);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void xc_pep_free(struct xc_pep *p)
{
	free(p);
}

bool xc_pep_enabled(const struct xc_pep *p)
{
	return p && p->cfg->enabled;
}

size_t xc_pep_features(const char **out, size_t max)
{
	size_t n = sizeof(features) / sizeof(features[0]);

	if (n > max)
		n = max;
	memcpy(out, features, n * sizeof(*out));
	return n;
}

/* --- decisions (pep_int.h) ------------------------------------------------------------------- */

/* enum xc_pep_access's names, in its order */
static const char *const access_names[] = {"presence", "open", "whitelist", "roster"};
#define NACCESS (sizeof(access_names) / sizeof(access_names[0]))

bool xc_pep__may_read(int access, bool owner, bool sees, bool member)
{
	if (owner)
		return true;
	switch (access) {
	case XC_PEP_OPEN:
		return true;
	case XC_PEP_PRESENCE:
		return sees;
	case XC_PEP_ROSTER:
		return member;
	default:
		return false; /* a whitelist kept empty: the owner only */
	}
}

/* Whether the name s (l bytes) is one of set's (names each followed by '\n'; NULL: none). */
static bool has_name(const char *set, const char *s, size_t l)
{
	for (const char *p = set; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == l && memcmp(p, s, l) == 0)
			return true;
		p += e ? n + 1 : n;
	}
	return false;
}

bool xc_pep__member(const char *allowed, const char *groups)
{
	for (const char *p = groups; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n && has_name(allowed, p, n))
			return true;
		p += e ? n + 1 : n;
	}
	return false;
}

/* Whether the roster item it is in one of allowed's groups. */
static bool item_member(const struct xc_roster_item *it, const char *allowed)
{
	for (size_t i = 0; i < it->ngroups; i++)
		if (has_name(allowed, it->groups[i], strlen(it->groups[i])))
			return true;
	return false;
}

/* The roster item's groups as the store keeps them (each followed by '\n'); NULL without
 * memory. */
static char *groups_joined(const struct xc_roster_item *it)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	for (size_t i = 0; i < it->ngroups; i++)
		if (cm_buf_printf(&b, "%s\n", it->groups[i]) != 0) {
			cm_buf_free(&b);
			return NULL;
		}
	if (!b.data)
		return strdup("");
	return b.data; /* NUL-terminated */
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pubsub#roster_groups_allowed (a list-multi field) into cfg->groups: the names sorted, without
 * repeats, each followed by '\n'. */
static int read_groups(const struct cm_xml_node *field, struct xc_pep_cfg *cfg, const char **why)
{
	const char *v[MAX_GROUPS];
	size_t n = 0, len = 1, off = 0;
	char *out;

	for (const struct cm_xml_node *k = cm_xml_child(field, "value", NULL); k;
	     k = cm_xml_child_next(k, "value", NULL)) {
		const char *g = cm_xml_text(k);

		if (!g || !*g || strlen(g) > XC_PEP_NODE_MAX || strchr(g, '\n')) {
			*why =
			    "a roster group in pubsub#roster_groups_allowed is empty, too long or "
			    "has a line break";
			return -EINVAL;
		}
		if (n == MAX_GROUPS) {
			*why = "too many groups in pubsub#roster_groups_allowed";
			return -EINVAL;
		}
		v[n++] = g;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	if (!(out = malloc(len)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);

		if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
			continue;
		memcpy(out + off, v[i], l);
		out[off + l] = '\n';
		off += l + 1;
	}
	out[off] = '\0';
	free(cfg->groups);
	cfg->groups = out;
	cfg->set |= XC_PEP_SET_GROUPS;
	return 0;
}

static bool parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* "max" (XC_PEP_MAX_ITEMS) or 1..999999999. */
static bool parse_max(const char *v, unsigned *out)
{
	unsigned long n = 0;

	if (strcmp(v, "max") == 0) {
		*out = XC_PEP_MAX_ITEMS;
		return true;
	}
	if (!*v || strlen(v) > 9)
		return false;
	for (const char *c = v; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		n = n * 10 + (unsigned long)(*c - '0');
	}
	if (n == 0)
		return false;
	*out = (unsigned)n;
	return true;
}

int xc_pep__options(const struct cm_xml_node *form, const char *form_type, struct xc_pep_cfg *cfg,
                    const char **why)
{
	const char *ft = cm_xml_form_field(form, "FORM_TYPE");
	const char *v;

	if (strcmp(form->name, "x") != 0 || strcmp(form->ns, NS_DATA) != 0) {
		*why = "the options are a jabber:x:data form";
		return -EINVAL;
	}
	if (!ft || strcmp(ft, form_type) != 0) {
		*why = strcmp(form_type, XC_PEP_FORM_PUBLISH) == 0
		           ? "the form's FORM_TYPE is not pubsub#publish-options"
		           : "the form's FORM_TYPE is not pubsub#node_config";
		return -EINVAL;
	}
	if ((v = cm_xml_form_field(form, "pubsub#access_model")) != NULL) {
		size_t i;

		for (i = 0; i < NACCESS; i++)
			if (strcmp(v, access_names[i]) == 0)
				break;
		if (i == NACCESS) {
			/* authorize needs subscription requests the owner approves: not kept here
			 */
			*why = strcmp(v, "authorize") == 0
			           ? "the authorize access model is not supported"
			           : "unknown pubsub#access_model";
			return strcmp(v, "authorize") == 0 ? -ENOTSUP : -EINVAL;
		}
		cfg->access = (int)i;
		cfg->set |= XC_PEP_SET_ACCESS;
	}
	for (const struct cm_xml_node *f = cm_xml_child(form, "field", NS_DATA); f;
	     f = cm_xml_child_next(f, "field", NS_DATA)) {
		const char *var = cm_xml_attr(f, "var");
		int rc;

		if (!var || strcmp(var, "pubsub#roster_groups_allowed") != 0)
			continue;
		if (cfg->set & XC_PEP_SET_GROUPS) {
			*why = "pubsub#roster_groups_allowed is given twice";
			return -EINVAL;
		}
		if ((rc = read_groups(f, cfg, why)) != 0)
			return rc;
	}
	if ((v = cm_xml_form_field(form, "pubsub#persist_items")) != NULL) {
		if (!parse_bool(v, &cfg->persist)) {
			*why = "pubsub#persist_items is a boolean";
			return -EINVAL;
		}
		cfg->set |= XC_PEP_SET_PERSIST;
	}
	if ((v = cm_xml_form_field(form, "pubsub#max_items")) != NULL) {
		if (!parse_max(v, &cfg->max_items)) {
			*why = "pubsub#max_items is a positive number or max";
			return -EINVAL;
		}
		cfg->set |= XC_PEP_SET_MAX;
	}
	return 0;
}

/* --- answers --------------------------------------------------------------------------------- */

/* An error to iq: condition, an application condition of pubsub#errors (may be NULL) and a text
 * (may be NULL). */
static void refuse(struct xc_shard *sh, const struct cm_xml_node *iq, const char *etype,
                   const char *cond, const char *app, const char *text)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text, NULL);
	struct cm_xml_node *err = e ? cm_xml_child(e, "error", NULL) : NULL, *a;

	if (!e)
		return;
	if (app && err && cm_xml_node_new_child(&a, err, app, XC_NS_PUBSUB_ERRORS) != 0) {
		cm_xml_node_free(e);
		return;
	}
	xc_route(sh, e);
}

/* A node name or item id: not empty, bounded. */
static bool name_ok(const char *s)
{
	return s && *s && strlen(s) <= XC_PEP_NODE_MAX;
}

/* The only element child of n, or NULL (none, or more than one: *many says so). */
static const struct cm_xml_node *only_element(const struct cm_xml_node *n, bool *many)
{
	const struct cm_xml_node *c = NULL;

	*many = false;
	for (const struct cm_xml_node *k = n->children; k; k = k->next) {
		if (k->kind != CM_XML_ELEMENT)
			continue;
		if (c) {
			*many = true;
			return NULL;
		}
		c = k;
	}
	return c;
}

/* <message type='headline' from=owner><event><items node=node>...</items></event></message>:
 * *items is where the caller adds what happened. NULL without memory. */
static struct cm_xml_node *event_new(const char *owner, const char *node,
                                     struct cm_xml_node **items)
{
	struct cm_xml_node *m = NULL, *ev;
	int r = cm_xml_node_new(&m, "message", CM_XML_NS_CLIENT);

	r = r ? r : cm_xml_node_set_attr(m, "type", "headline");
	r = r ? r : cm_xml_node_set_attr(m, "from", owner);
	r = r ? r : cm_xml_node_new_child(&ev, m, "event", XC_NS_PUBSUB_EVENT);
	r = r ? r : cm_xml_node_new_child(items, ev, "items", NULL);
	r = r ? r : cm_xml_node_set_attr(*items, "node", node);
	if (r) {
		cm_xml_node_free(m);
		return NULL;
	}
	return m;
}

/* <item id=id>payload</item> under parent; payload (XML text) parsed. 0, -EBADMSG, -ENOMEM. */
static int add_item(struct cm_xml_node *parent, const char *id, const char *payload)
{
	struct cm_xml_node *it, *pl;
	int r = cm_xml_node_new_child(&it, parent, "item", NULL);

	r = r ? r : cm_xml_node_set_attr(it, "id", id);
	if (r || !payload)
		return r;
	r = xc_stanza_parse(payload, strlen(payload), &pl);
	if (r)
		return r;
	r = cm_xml_node_add_child(it, pl);
	if (r)
		cm_xml_node_free(pl);
	return r;
}

struct notify_ctx {
	const struct cm_xml_node *msg; /* borrowed: the notification, 'to' set per recipient */
	struct xc_user *u;             /* borrowed, may be NULL: the owner */
	int access;                    /* the node's: which contacts may hear of it */
	const char *groups;            /* borrowed: the node's roster_groups_allowed */
	unsigned sent;
};

/* The owner u's roster entry for the bare JID of the resource full, if u's roster is loaded
 * and has one. */
static const struct xc_contact *contact_of(struct xc_user *u, const char *full)
{
	struct xc_jid j, bare;
	const struct xc_contact *ct = NULL;

	if (!u || u->rstate != XC_ROSTER_READY ||
	    xc_jid_parse(&j, full, strlen(full), NULL, 0) != 0)
		return NULL;
	if (xc_jid_copy(&bare, &j, true) == 0) {
		ct = xc_roster_find(u, bare.s);
		xc_jid_free(&bare);
	}
	xc_jid_free(&j);
	return ct;
}

/* Whether the owner u lets the resource full see its presence. */
static bool contact_sees(struct xc_user *u, const char *full)
{
	const struct xc_contact *ct = contact_of(u, full);

	return ct && (ct->item.st.sub == XC_SUB_FROM || ct->item.st.sub == XC_SUB_BOTH);
}

/* Whether the resource full's bare JID is in the owner u's roster, in one of allowed's
 * groups. */
static bool contact_member(struct xc_user *u, const char *full, const char *allowed)
{
	const struct xc_contact *ct = contact_of(u, full);

	return ct && item_member(&ct->item, allowed);
}

static bool blocked(struct xc_user *u, const char *full)
{
	struct xc_jid j;
	bool b;

	if (!u || !u->nblocked || xc_jid_parse(&j, full, strlen(full), NULL, 0) != 0)
		return false;
	b = xc_blocking_blocks(u, &j);
	xc_jid_free(&j);
	return b;
}

/* A copy of the notification to to. */
static void deliver(struct xc_shard *sh, const char *to, struct notify_ctx *n)
{
	struct cm_xml_node *m;

	if (cm_xml_node_copy(&m, n->msg) != 0)
		return;
	if (cm_xml_node_set_attr(m, "to", to) != 0) {
		cm_xml_node_free(m);
		return;
	}
	xc_route(sh, m);
	n->sent++;
}

/* A contact's resource (foreach_peer: its capabilities ask for the node): told when the node's
 * access model lets it read the node and the owner does not block it. */
static void send_copy(struct xc_shard *sh, const char *to, void *arg)
{
	struct notify_ctx *n = arg;

	if (blocked(n->u, to))
		return;
	if ((n->access == XC_PEP_PRESENCE && !contact_sees(n->u, to)) ||
	    (n->access == XC_PEP_ROSTER && !contact_member(n->u, to, n->groups)))
		return;
	deliver(sh, to, n);
}

/* Tell the owner's available sessions that want the node's notifications (pep_caps.c: those
 * whose capabilities ask for it, or that announced none), and the contacts that may read the
 * node (cfg: its configuration) and want its notifications. msg is borrowed. */
static void notify(struct xc_shard *sh, const struct xc_jid *owner, const char *node,
                   const struct xc_pep_cfg *cfg, const struct cm_xml_node *msg)
{
	struct notify_ctx n = {
	    .msg = msg, .u = xc_user_find(sh, owner), .access = cfg->access, .groups = cfg->groups};
	struct xc_c2s *c;

	if (n.u) {
		xc_user_foreach_session(n.u, c)
		{
			if (c->available && xc_pep__own_wants(sh, owner->s, c->jid.s, node))
				deliver(sh, c->jid.s, &n);
		}
	}
	if (cfg->access != XC_PEP_WHITELIST)
		xc_pep__foreach_peer(sh, owner->s, node, send_copy, &n);
	cm_metrics_add(sh->srv->pep->m.notifications, n.sent);
}

/* --- requests -------------------------------------------------------------------------------- */

/* One request on its way through the store. */
struct op_ctx {
	struct cm_xml_node *iq;   /* owned */
	struct xc_jid owner;      /* owned: the account's bare JID */
	bool is_owner, sees;      /* who asks */
	char *groups;             /* owned, may be NULL: the asker's roster groups ('\n' after each)
	                           * when the owner has it in the roster and does not block it */
	bool rsm;                 /* ITEMS: answered with a result set (XEP-0059) */
	bool notify;              /* RETRACT: tell the subscribers */
	struct cm_xml_node *item; /* owned: PUBLISH's payload, for the notification */
	/* the server's own requests (iq NULL): what runs at the end */
	xc_pep_done_fn done;
	xc_pep_item_fn got;
	void *done_arg;
};

static void op_free(struct op_ctx *o)
{
	if (!o)
		return;
	cm_xml_node_free(o->iq);
	cm_xml_node_free(o->item);
	xc_jid_free(&o->owner);
	free(o->groups);
	free(o);
}

/* A request for op about owner's node (may be NULL), its done fn, ctx o handed over to it; the
 * request is submitted. 0, or a negative errno (o is then the caller's again). */
static int submit(struct xc_shard *sh, enum xc_store_op op, const char *owner, const char *node,
                  struct xc_pep_req *pr, void (*done)(struct xc_store_req *r), void *o)
{
	struct xc_store_req *r = xc_store_req_new(op, sh->loop, done, o);
	int rc = r ? 0 : -ENOMEM;

	rc = rc ? rc : xc_store_req_set(&r->user, owner);
	rc = rc ? rc : (node ? xc_store_req_set(&r->key, node) : 0);
	if (!rc) {
		r->pep = pr; /* handed over */
		pr = NULL;
		rc = xc_store_submit(sh->srv->store, r);
	}
	if (rc) {
		xc_pep_req_free(pr);
		if (r)
			r->arg = NULL;
		xc_store_req_free(r);
	}
	return rc;
}

static void on_published(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct xc_pep *p = sh->srv->pep;
	struct cm_xml_node *res = NULL, *pub, *it, *items, *msg;
	int rc;

	if (r->err && !o->iq) {
		cm_metrics_inc(p->m.refused);
		goto out;
	}
	if (r->err) {
		cm_metrics_inc(p->m.refused);
		if (r->err == -ECANCELED)
			refuse(sh, o->iq, "cancel", "conflict", "precondition-not-met",
			       "the node's configuration is not what publish-options ask");
		else if (r->err == -EDQUOT)
			refuse(sh, o->iq, "cancel", "not-allowed", "max-nodes-exceeded",
			       "this account has as many nodes as it may");
		else
			refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
		goto out;
	}
	cm_metrics_inc(p->m.published);
	rc = cm_xml_node_new(&res, "pubsub", XC_NS_PUBSUB);
	rc = rc ? rc : cm_xml_node_new_child(&pub, res, "publish", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(pub, "node", r->key);
	rc = rc ? rc : cm_xml_node_new_child(&it, pub, "item", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(it, "id", r->pep->item_id);
	if (rc || !o->iq) {
		cm_xml_node_free(res);
		res = NULL;
	}
	if (o->iq) {
		xc_reply(sh, o->iq, res);
		/* a client's new avatar: the vCard follows (XEP-0398) */
		if (strcmp(r->key, XC_NS_AVATAR_META) == 0)
			xc_avatar_pep_published(sh, &o->owner, o->item);
	}
	msg = event_new(o->owner.s, r->key, &items);
	if (msg && cm_xml_node_new_child(&it, items, "item", NULL) == 0 &&
	    cm_xml_node_set_attr(it, "id", r->pep->item_id) == 0 &&
	    cm_xml_node_add_child(it, o->item) == 0) {
		o->item = NULL; /* the message's now */
		notify(sh, &o->owner, r->key, &r->pep->cfg, msg);
	}
	cm_xml_node_free(msg);
out:
	if (o->done)
		o->done(sh, r->err, o->done_arg);
	op_free(o);
	xc_store_req_free(r);
}

/* Bytes of payloads one items answer carries at most: half of what a slow reader may be owed
 * (c2s.max_queued), as the archive does; an answer cut short holds the newest items. */
static size_t answer_budget(const struct xc_server *srv)
{
	size_t b = (size_t)(srv->cfg->c2s.max_queued / 2);

	return b < 64 * 1024 ? 64 * 1024 : b;
}

/* Refuse o's request when the requester may not read a node of that access model; true when
 * it was refused. */
static bool denied(struct xc_shard *sh, const struct op_ctx *o, const struct xc_pep_cfg *cfg)
{
	if (xc_pep__may_read(cfg->access, o->is_owner, o->sees,
	                     xc_pep__member(cfg->groups, o->groups)))
		return false;
	if (cfg->access == XC_PEP_PRESENCE)
		refuse(sh, o->iq, "auth", "not-authorized", "presence-subscription-required", NULL);
	else if (cfg->access == XC_PEP_ROSTER)
		refuse(sh, o->iq, "auth", "not-authorized", "not-in-roster-group", NULL);
	else
		refuse(sh, o->iq, "cancel", "not-allowed", "closed-node", NULL);
	return true;
}

/* XEP-0059's <set/> after items (the page sent, as cut by the answer's budget): first (with
 * its index) and last when the page has items, and the node's count. */
static int add_page(struct cm_xml_node *ps, const struct cm_xml_node *items,
                    const struct xc_pep_req *pr)
{
	const struct cm_xml_node *first = NULL, *last = NULL;
	struct cm_xml_node *set, *e;
	char num[24];
	int rc;

	for (const struct cm_xml_node *k = items->children; k; k = k->next)
		if (k->kind == CM_XML_ELEMENT) {
			first = first ? first : k;
			last = k;
		}
	rc = cm_xml_node_new_child(&set, ps, "set", NS_RSM);
	if (!rc && first) {
		const char *f = cm_xml_attr(first, "id"), *l = cm_xml_attr(last, "id");

		snprintf(num, sizeof(num), "%llu", (unsigned long long)pr->index);
		rc = cm_xml_node_new_child(&e, set, "first", NULL);
		rc = rc ? rc : cm_xml_node_set_attr(e, "index", num);
		rc = rc ? rc : cm_xml_node_add_text(e, f, strlen(f));
		rc = rc ? rc : cm_xml_node_new_child(&e, set, "last", NULL);
		rc = rc ? rc : cm_xml_node_add_text(e, l, strlen(l));
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)pr->count);
	rc = rc ? rc : cm_xml_node_new_child(&e, set, "count", NULL);
	return rc ? rc : cm_xml_node_add_text(e, num, strlen(num));
}

static void on_items(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *res = NULL, *items;
	size_t used = 0, budget = answer_budget(sh->srv);
	int rc;

	if (r->err == -ENOENT) {
		refuse(sh, o->iq, "cancel", "item-not-found", NULL, "no such node");
		goto out;
	}
	if (r->err && r->err != -ESRCH) {
		refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
		goto out;
	}
	if (denied(sh, o, &r->pep->cfg))
		goto out;
	if (r->err == -ESRCH) { /* told only to those who may read the node */
		refuse(sh, o->iq, "cancel", "item-not-found", NULL, "no such item to page after");
		goto out;
	}
	rc = cm_xml_node_new(&res, "pubsub", XC_NS_PUBSUB);
	rc = rc ? rc : cm_xml_node_new_child(&items, res, "items", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(items, "node", r->key);
	for (size_t i = 0; i < r->pep->nitems && !rc; i++) {
		const struct xc_pep_item *it = &r->pep->items[i];
		size_t l = it->payload ? strlen(it->payload) : 0;

		if (used + l > budget && i > 0)
			break;
		used += l;
		rc = add_item(items, it->id, it->payload);
		if (rc == -EBADMSG)
			rc = 0; /* stored by an older build? left out */
	}
	if (!rc && o->rsm)
		rc = add_page(res, items, r->pep);
	if (rc) {
		cm_xml_node_free(res);
		refuse(sh, o->iq, "wait", "resource-constraint", NULL, NULL);
		goto out;
	}
	xc_reply(sh, o->iq, res);
out:
	op_free(o);
	xc_store_req_free(r);
}

static void on_retracted(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *msg, *items, *rt;

	if (r->err == -ENOENT) {
		refuse(sh, o->iq, "cancel", "item-not-found", NULL, NULL);
		goto out;
	}
	if (r->err) {
		refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
		goto out;
	}
	xc_reply(sh, o->iq, NULL);
	if (!o->notify)
		goto out;
	msg = event_new(o->owner.s, r->key, &items);
	if (msg && cm_xml_node_new_child(&rt, items, "retract", NULL) == 0 &&
	    cm_xml_node_set_attr(rt, "id", r->pep->item_id) == 0)
		notify(sh, &o->owner, r->key, &r->pep->cfg, msg);
	cm_xml_node_free(msg);
out:
	op_free(o);
	xc_store_req_free(r);
}

static void on_deleted(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *m = NULL, *ev, *d;
	int rc;

	if (r->err == -ENOENT) {
		refuse(sh, o->iq, "cancel", "item-not-found", NULL, NULL);
		goto out;
	}
	if (r->err) {
		refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
		goto out;
	}
	xc_reply(sh, o->iq, NULL);
	/* those who heard of its items hear that it is gone (XEP-0060 8.4.2): the store answered
	 * with the node's configuration as it was */
	rc = cm_xml_node_new(&m, "message", CM_XML_NS_CLIENT);
	rc = rc ? rc : cm_xml_node_set_attr(m, "type", "headline");
	rc = rc ? rc : cm_xml_node_set_attr(m, "from", o->owner.s);
	rc = rc ? rc : cm_xml_node_new_child(&ev, m, "event", XC_NS_PUBSUB_EVENT);
	rc = rc ? rc : cm_xml_node_new_child(&d, ev, "delete", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(d, "node", r->key);
	if (!rc)
		notify(sh, &o->owner, r->key, &r->pep->cfg, m);
	cm_xml_node_free(m);
out:
	op_free(o);
	xc_store_req_free(r);
}

/* The node's configuration as a form (XEP-0060 8.2.1). */
static struct cm_xml_node *config_form(const char *node, const struct xc_pep_cfg *cfg)
{
	struct cm_xml_node *ps = NULL, *conf, *x, *o, *v, *f;
	char max[16];
	int r = cm_xml_node_new(&ps, "pubsub", XC_NS_PUBSUB_OWNER);

	if (cfg->max_items == XC_PEP_MAX_ITEMS)
		snprintf(max, sizeof(max), "max");
	else
		snprintf(max, sizeof(max), "%u", cfg->max_items);
	r = r ? r : cm_xml_node_new_child(&conf, ps, "configure", NULL);
	r = r ? r : cm_xml_node_set_attr(conf, "node", node);
	r = r ? r : cm_xml_node_new_child(&x, conf, "x", NS_DATA);
	r = r ? r : cm_xml_node_set_attr(x, "type", "form");
	r = r ? r : cm_xml_form_add_field(x, "FORM_TYPE", "hidden", XC_PEP_FORM_CONFIG);
	r = r ? r
	      : cm_xml_form_add_field(
	            x, "pubsub#access_model", "list-single",
	            access_names[cfg->access >= 0 && (size_t)cfg->access < NACCESS ? cfg->access
	                                                                           : 0]);
	for (size_t i = 0; !r && i < NACCESS; i++) {
		r = cm_xml_node_new_child(&o, x->last, "option", NULL);
		r = r ? r : cm_xml_node_new_child(&v, o, "value", NULL);
		r = r ? r : cm_xml_node_add_text(v, access_names[i], strlen(access_names[i]));
	}
	r = r ? r
	      : cm_xml_form_add_field(x, "pubsub#persist_items", "boolean",
	                              cfg->persist ? "true" : "false");
	r = r ? r : cm_xml_form_add_field(x, "pubsub#max_items", "text-single", max);
	r = r ? r : cm_xml_node_new_child(&f, x, "field", NULL);
	r = r ? r : cm_xml_node_set_attr(f, "var", "pubsub#roster_groups_allowed");
	r = r ? r : cm_xml_node_set_attr(f, "type", "list-multi");
	for (const char *g = cfg->groups; !r && g && *g;) {
		const char *e = strchr(g, '\n');
		size_t n = e ? (size_t)(e - g) : strlen(g);

		r = cm_xml_node_new_child(&v, f, "value", NULL);
		r = r ? r : cm_xml_node_add_text(v, g, n);
		g += e ? n + 1 : n;
	}
	if (r) {
		cm_xml_node_free(ps);
		return NULL;
	}
	return ps;
}

static void on_configured(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;

	if (r->err == -ENOENT)
		refuse(sh, o->iq, "cancel", "item-not-found", NULL, "no such node");
	else if (r->err)
		refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
	else if (o->notify) /* a set */
		xc_reply(sh, o->iq, NULL);
	else
		xc_reply(sh, o->iq, config_form(r->key, &r->pep->cfg));
	op_free(o);
	xc_store_req_free(r);
}

/* The parts of a publish request, checked (hostile input: every bound is the server's). */
static int read_publish(struct xc_shard *sh, const struct cm_xml_node *pub,
                        const struct cm_xml_node *opts, struct xc_pep_req *pr, char **payload_xml,
                        const struct cm_xml_node **payload, const char **cond, const char **app,
                        const char **why)
{
	const struct xc_pep_config *cfg = &sh->srv->cfg->pep;
	const struct cm_xml_node *pl, *it;
	const char *id;
	struct cm_buf b;
	bool many;
	int rc;

	*cond = "bad-request";
	it = only_element(pub, &many);
	if (!it || strcmp(it->name, "item") != 0 || strcmp(it->ns, XC_NS_PUBSUB) != 0) {
		*app = many ? "invalid-payload" : "item-required";
		*why = many ? "one item is published at a time" : "publish holds an item";
		return -EINVAL;
	}
	id = cm_xml_attr(it, "id");
	if (id && !name_ok(id)) {
		*app = NULL;
		*why = "the item id is empty or too long";
		return -EINVAL;
	}
	pl = only_element(it, &many);
	if (!pl) {
		*app = many ? "invalid-payload" : "payload-required";
		*why = many ? "an item holds one payload element" : "the item has no payload";
		return -EINVAL;
	}
	pr->cfg.access = XC_PEP_PRESENCE;
	pr->cfg.persist = true;
	pr->cfg.max_items = DEFAULT_MAX_KEPT;
	if (opts) {
		const struct cm_xml_node *form = only_element(opts, &many);

		if (form) {
			rc = xc_pep__options(form, XC_PEP_FORM_PUBLISH, &pr->cfg, why);
			if (rc) {
				*cond = rc == -ENOTSUP ? "not-acceptable" : "bad-request";
				*app =
				    rc == -ENOTSUP ? "unsupported-access-model" : "invalid-options";
				return rc;
			}
		} else if (many) {
			*app = "invalid-options";
			*why = "publish-options holds one form";
			return -EINVAL;
		}
	}
	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, pl, NULL);
	if (!rc && !b.data)
		rc = -ENOMEM;
	if (rc) {
		cm_buf_free(&b);
		*cond = "internal-server-error";
		*app = NULL;
		*why = NULL;
		return rc;
	}
	if (b.len > cfg->max_payload) {
		cm_buf_free(&b);
		*cond = "not-acceptable";
		*app = "payload-too-big";
		*why = "the payload is larger than this server keeps (pep.max_payload)";
		return -EMSGSIZE;
	}
	*payload_xml = b.data; /* handed over: NUL-terminated */
	*payload = pl;
	if (id) {
		pr->item_id = strdup(id);
	} else {
		char gen[17];

		xc_new_id(sh->srv, gen);
		pr->item_id = strdup(gen);
	}
	if (!pr->item_id) {
		*cond = "internal-server-error";
		*app = NULL;
		*why = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A result set request (XEP-0059: max and after; before and index are not) into pr.
 * -EINVAL or -ENOTSUP with *why, -ENOMEM. */
static int read_rsm(const struct xc_pep_config *cfg, const struct cm_xml_node *set,
                    struct xc_pep_req *pr, const char **why)
{
	bool max = false;

	pr->rsm = true;
	pr->max = (unsigned)cfg->max_items;
	for (const struct cm_xml_node *k = set->children; k; k = k->next) {
		const char *t;

		if (k->kind != CM_XML_ELEMENT || strcmp(k->ns, NS_RSM) != 0)
			continue;
		t = cm_xml_text(k);
		if (strcmp(k->name, "max") == 0) {
			unsigned long n = 0;

			if (max || !t || !*t || strlen(t) > 9 ||
			    strspn(t, "0123456789") != strlen(t)) {
				*why = max ? "the result set's max is given twice"
				           : "the result set's max is a number";
				return -EINVAL;
			}
			n = strtoul(t, NULL, 10);
			pr->max = n < (unsigned long)cfg->max_items ? (unsigned)n
			                                            : (unsigned)cfg->max_items;
			max = true;
		} else if (strcmp(k->name, "after") == 0) {
			if (pr->after || !name_ok(t)) {
				*why = pr->after ? "the result set's after is given twice"
				                 : "the result set's after is an item id";
				return -EINVAL;
			}
			if (!(pr->after = strdup(t)))
				return -ENOMEM;
		} else if (strcmp(k->name, "before") == 0 || strcmp(k->name, "index") == 0) {
			*why = "items are paged from the newest on: before and index are not "
			       "supported";
			return -ENOTSUP;
		}
	}
	return 0;
}

/* An items request's ids or max_items, or its result set (set, may be NULL), into pr. */
static int read_items(const struct xc_pep_config *cfg, const struct cm_xml_node *items,
                      const struct cm_xml_node *set, struct xc_pep_req *pr, const char **why)
{
	const char *mx = cm_xml_attr(items, "max_items");

	if (set) {
		if (mx || cm_xml_child(items, "item", XC_NS_PUBSUB)) {
			*why =
			    "a result set pages the node's items: no max_items or item ids with it";
			return -EINVAL;
		}
		return read_rsm(cfg, set, pr, why);
	}

	if (mx) {
		unsigned n;

		if (!parse_max(mx, &n) || n == XC_PEP_MAX_ITEMS) {
			*why = "max_items is a positive number";
			return -EINVAL;
		}
		pr->max = n;
	}
	if (!pr->max || pr->max > (unsigned)cfg->max_items)
		pr->max = (unsigned)cfg->max_items;
	for (const struct cm_xml_node *it = cm_xml_child(items, "item", XC_NS_PUBSUB); it;
	     it = cm_xml_child_next(it, "item", XC_NS_PUBSUB)) {
		const char *id = cm_xml_attr(it, "id");
		char **v;

		if (!name_ok(id)) {
			*why = "an item asked for has no id, or one too long";
			return -EINVAL;
		}
		if (pr->nids == MAX_IDS) {
			*why = "too many item ids in one request";
			return -EINVAL;
		}
		v = realloc(pr->ids, (pr->nids + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pr->ids = v;
		if (!(v[pr->nids] = strdup(id)))
			return -ENOMEM;
		pr->nids++;
	}
	return 0;
}

/* The one action of a pubsub element (and its publish-options, its result set); false when
 * it is not one. */
static bool read_action(const struct cm_xml_node *ps, const struct cm_xml_node **action,
                        const struct cm_xml_node **opts, const struct cm_xml_node **set)
{
	*action = NULL;
	*opts = NULL;
	*set = NULL;
	for (const struct cm_xml_node *k = ps->children; k; k = k->next) {
		if (k->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(k->name, "publish-options") == 0 && strcmp(k->ns, XC_NS_PUBSUB) == 0 &&
		    !*opts) {
			*opts = k;
			continue;
		}
		if (strcmp(k->name, "set") == 0 && strcmp(k->ns, NS_RSM) == 0 && !*set) {
			*set = k;
			continue;
		}
		if (*action)
			return false;
		*action = k;
	}
	return *action != NULL;
}

void xc_pep_iq(struct xc_shard *sh, struct xc_user *u, struct xc_c2s *own, struct cm_xml_node *iq)
{
	const struct xc_pep_config *cfg = &sh->srv->cfg->pep;
	const char *type = xc_stanza_type(iq);
	bool is_set = strcmp(type, "set") == 0, many;
	const struct cm_xml_node *ps = only_element(iq, &many), *act, *opts, *set;
	const char *node, *why = NULL, *cond = "bad-request", *app = NULL;
	struct xc_pep_req *pr = NULL;
	struct op_ctx *o = NULL;
	struct xc_contact *ct;
	enum xc_store_op op;
	void (*done)(struct xc_store_req * r);
	int rc;

	if (!xc_pep_enabled(sh->srv->pep) || !u) {
		refuse(sh, iq, "cancel", "service-unavailable", NULL, NULL);
		goto out;
	}
	if (!ps || !read_action(ps, &act, &opts, &set)) {
		refuse(sh, iq, "modify", "bad-request", NULL, "pubsub holds one action");
		goto out;
	}
	node = cm_xml_attr(act, "node");
	if (!name_ok(node)) {
		refuse(sh, iq, "modify", "bad-request", "nodeid-required",
		       node ? "the node name is empty or too long" : "the node is not named");
		goto out;
	}
	o = calloc(1, sizeof(*o));
	pr = calloc(1, sizeof(*pr));
	if (!o || !pr || xc_jid_copy(&o->owner, &u->bare, true) != 0) {
		refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
		goto out;
	}
	o->is_owner = own != NULL;
	if (!own && u->rstate == XC_ROSTER_READY) {
		struct xc_jid from, bare;

		if (xc_stanza_jid(iq, "from", &from) == 0 && xc_jid_copy(&bare, &from, true) == 0) {
			bool ok = !xc_blocking_blocks(u, &from);

			ct = xc_roster_find(u, bare.s);
			o->sees =
			    ct && ok &&
			    (ct->item.st.sub == XC_SUB_FROM || ct->item.st.sub == XC_SUB_BOTH);
			if (ct && ok && !(o->groups = groups_joined(&ct->item))) {
				xc_jid_free(&bare);
				xc_jid_free(&from);
				refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
				goto out;
			}
			xc_jid_free(&bare);
		}
		xc_jid_free(&from);
	}
	if (set && strcmp(act->name, "items") != 0) {
		refuse(sh, iq, "modify", "bad-request", NULL, "a result set pages items only");
		goto out;
	}
	if (strcmp(ps->ns, XC_NS_PUBSUB) == 0 && is_set && strcmp(act->name, "publish") == 0 &&
	    strcmp(act->ns, XC_NS_PUBSUB) == 0) {
		const struct cm_xml_node *payload;

		if (!own) {
			refuse(sh, iq, "auth", "forbidden", NULL, "only the owner publishes");
			goto out;
		}
		rc = read_publish(sh, act, opts, pr, &pr->payload, &payload, &cond, &app, &why);
		if (rc) {
			refuse(sh, iq, rc == -ENOMEM ? "wait" : "modify", cond, app, why);
			cm_metrics_inc(sh->srv->pep->m.refused);
			goto out;
		}
		pr->max_items_cap = (unsigned)cfg->max_items;
		pr->max_nodes = (unsigned)cfg->max_nodes;
		if (cm_xml_node_copy(&o->item, payload) != 0) {
			refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
			goto out;
		}
		op = XC_STORE_PEP_PUBLISH;
		done = on_published;
	} else if (strcmp(ps->ns, XC_NS_PUBSUB) == 0 && !is_set &&
	           strcmp(act->name, "items") == 0 && strcmp(act->ns, XC_NS_PUBSUB) == 0) {
		if (opts) {
			refuse(sh, iq, "modify", "bad-request", NULL,
			       "publish-options without publish");
			goto out;
		}
		rc = read_items(cfg, act, set, pr, &why);
		if (rc) {
			refuse(sh, iq,
			       rc == -ENOMEM    ? "wait"
			       : rc == -ENOTSUP ? "cancel"
			                        : "modify",
			       rc == -ENOMEM    ? "resource-constraint"
			       : rc == -ENOTSUP ? "feature-not-implemented"
			                        : "bad-request",
			       NULL, why);
			goto out;
		}
		o->rsm = pr->rsm;
		op = XC_STORE_PEP_ITEMS;
		done = on_items;
	} else if (strcmp(ps->ns, XC_NS_PUBSUB) == 0 && is_set &&
	           strcmp(act->name, "retract") == 0 && strcmp(act->ns, XC_NS_PUBSUB) == 0) {
		const struct cm_xml_node *it = only_element(act, &many);
		const char *id = it && strcmp(it->name, "item") == 0 ? cm_xml_attr(it, "id") : NULL;
		const char *nf = cm_xml_attr(act, "notify");

		if (!own) {
			refuse(sh, iq, "auth", "forbidden", NULL, "only the owner retracts");
			goto out;
		}
		if (!name_ok(id)) {
			refuse(sh, iq, "modify", "bad-request", "item-required",
			       "retract names one item by its id");
			goto out;
		}
		if (!(pr->item_id = strdup(id))) {
			refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
			goto out;
		}
		o->notify = nf && (strcmp(nf, "1") == 0 || strcmp(nf, "true") == 0);
		op = XC_STORE_PEP_RETRACT;
		done = on_retracted;
	} else if (strcmp(ps->ns, XC_NS_PUBSUB_OWNER) == 0 && is_set &&
	           strcmp(act->name, "delete") == 0 && strcmp(act->ns, XC_NS_PUBSUB_OWNER) == 0) {
		if (!own) {
			refuse(sh, iq, "auth", "forbidden", NULL, "only the owner deletes a node");
			goto out;
		}
		op = XC_STORE_PEP_DELETE;
		done = on_deleted;
	} else if (strcmp(ps->ns, XC_NS_PUBSUB_OWNER) == 0 && strcmp(act->name, "configure") == 0 &&
	           strcmp(act->ns, XC_NS_PUBSUB_OWNER) == 0) {
		const struct cm_xml_node *form = only_element(act, &many);

		if (!own) {
			refuse(sh, iq, "auth", "forbidden", NULL,
			       "only the owner configures a node");
			goto out;
		}
		if (is_set && (!form || many)) {
			refuse(sh, iq, "modify", "bad-request", NULL, "configure holds one form");
			goto out;
		}
		if (is_set &&
		    (rc = xc_pep__options(form, XC_PEP_FORM_CONFIG, &pr->cfg, &why)) != 0) {
			if (rc == -ENOMEM)
				refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
			else
				refuse(sh, iq, "modify",
				       rc == -ENOTSUP ? "not-acceptable" : "bad-request",
				       rc == -ENOTSUP ? "unsupported-access-model"
				                      : "invalid-options",
				       why);
			goto out;
		}
		o->notify = is_set; /* on_configured: a set is answered empty */
		pr->max_items_cap = (unsigned)cfg->max_items;
		op = XC_STORE_PEP_CONFIGURE;
		done = on_configured;
	} else {
		refuse(sh, iq, "cancel", "feature-not-implemented", NULL, NULL);
		goto out;
	}
	o->iq = iq;
	iq = NULL;
	if (submit(sh, op, o->owner.s, node, pr, done, o) != 0) {
		pr = NULL; /* freed by submit */
		refuse(sh, o->iq, "wait", "resource-constraint", NULL, NULL);
		goto out;
	}
	return;
out:
	xc_pep_req_free(pr);
	op_free(o);
	cm_xml_node_free(iq);
}

/* --- the server's own requests (avatar.c) ---------------------------------------------------- */

void xc_pep_publish_for(struct xc_shard *sh, const char *owner, const char *node, const char *id,
                        struct cm_xml_node *payload, int access, xc_pep_done_fn done, void *arg)
{
	const struct xc_pep_config *cfg = &sh->srv->cfg->pep;
	struct op_ctx *o = calloc(1, sizeof(*o));
	struct xc_pep_req *pr = calloc(1, sizeof(*pr));
	struct cm_buf b;
	int rc = o && pr ? 0 : -ENOMEM;

	cm_buf_init(&b, 0);
	rc = rc ? rc : xc_jid_parse(&o->owner, owner, strlen(owner), NULL, 0);
	rc = rc ? rc : cm_xml_write(&b, payload, NULL);
	if (!rc && (!b.data || !(pr->item_id = strdup(id))))
		rc = -ENOMEM;
	if (!rc) {
		pr->payload = b.data; /* handed over */
		cm_buf_init(&b, 0);
		pr->cfg.access = access; /* for a node made now; an existing one keeps its own */
		pr->cfg.persist = true;
		pr->cfg.max_items = DEFAULT_MAX_KEPT;
		pr->max_items_cap = (unsigned)cfg->max_items;
		pr->max_nodes = (unsigned)cfg->max_nodes;
		o->item = payload;
		payload = NULL;
		o->done = done;
		o->done_arg = arg;
		rc = submit(sh, XC_STORE_PEP_PUBLISH, owner, node, pr, on_published, o);
		pr = NULL; /* submit's either way */
	}
	cm_buf_free(&b);
	cm_xml_node_free(payload);
	xc_pep_req_free(pr);
	if (rc) {
		if (o)
			o->done = NULL;
		op_free(o);
		if (done)
			done(sh, rc, arg);
	}
}

static void on_item_read(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	const struct xc_pep_item *it = r->pep && r->pep->nitems ? &r->pep->items[0] : NULL;
	int err = r->err ? r->err : it && it->payload ? 0 : -ENOENT;

	o->got(sh, err, r->pep ? r->pep->cfg.access : XC_PEP_PRESENCE, err ? NULL : it->payload,
	       o->done_arg);
	op_free(o);
	xc_store_req_free(r);
}

void xc_pep_read_item(struct xc_shard *sh, const char *owner, const char *node, const char *id,
                      xc_pep_item_fn got, void *arg)
{
	struct op_ctx *o = calloc(1, sizeof(*o));
	struct xc_pep_req *pr = calloc(1, sizeof(*pr));
	int rc = o && pr ? 0 : -ENOMEM;

	if (!rc && (!(pr->ids = calloc(1, sizeof(*pr->ids))) || !(pr->ids[0] = strdup(id))))
		rc = -ENOMEM;
	if (!rc) {
		pr->nids = 1;
		o->got = got;
		o->done_arg = arg;
		rc = submit(sh, XC_STORE_PEP_ITEMS, owner, node, pr, on_item_read, o);
		pr = NULL;
	}
	xc_pep_req_free(pr);
	if (rc) {
		op_free(o);
		got(sh, rc, XC_PEP_PRESENCE, NULL, arg);
	}
}

/* --- disco#items of the account -------------------------------------------------------------- */

static void on_nodes(struct xc_store_req *r)
{
	struct op_ctx *o = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *q = NULL, *it;
	int rc = r->err;

	rc = rc ? rc : cm_xml_node_new(&q, "query", NS_DISCO_ITEMS);
	for (size_t i = 0; !rc && i < r->pep->nitems; i++) {
		const struct xc_pep_item *n = &r->pep->items[i];

		if (!xc_pep__may_read(n->access, o->is_owner, o->sees,
		                      xc_pep__member(n->groups, o->groups)))
			continue;
		rc = cm_xml_node_new_child(&it, q, "item", NULL);
		rc = rc ? rc : cm_xml_node_set_attr(it, "jid", o->owner.s);
		rc = rc ? rc : cm_xml_node_set_attr(it, "node", n->node);
	}
	if (rc) {
		cm_xml_node_free(q);
		refuse(sh, o->iq, "wait", "internal-server-error", NULL, NULL);
	} else {
		xc_reply(sh, o->iq, q);
	}
	op_free(o);
	xc_store_req_free(r);
}

void xc_pep_disco_items(struct xc_shard *sh, struct xc_user *u, struct xc_c2s *own,
                        struct cm_xml_node *iq)
{
	struct op_ctx *o = NULL;
	struct xc_pep_req *pr = NULL;
	struct cm_xml_node *q;

	if (!xc_pep_enabled(sh->srv->pep) || !u ||
	    cm_xml_attr(cm_xml_child(iq, "query", NULL), "node")) {
		if (cm_xml_node_new(&q, "query", NS_DISCO_ITEMS) == 0)
			xc_reply(sh, iq, q);
		cm_xml_node_free(iq);
		return;
	}
	o = calloc(1, sizeof(*o));
	pr = calloc(1, sizeof(*pr));
	if (!o || !pr || xc_jid_copy(&o->owner, &u->bare, true) != 0)
		goto fail;
	o->is_owner = own != NULL;
	if (!own && u->rstate == XC_ROSTER_READY) {
		struct xc_jid from = {0};

		if (xc_stanza_jid(iq, "from", &from) == 0 && !xc_jid_empty(&from) &&
		    !xc_blocking_blocks(u, &from)) {
			struct xc_jid bare;
			struct xc_contact *ct = NULL;

			o->sees = contact_sees(u, from.s);
			if (xc_jid_copy(&bare, &from, true) == 0) {
				ct = xc_roster_find(u, bare.s);
				xc_jid_free(&bare);
			}
			if (ct && !(o->groups = groups_joined(&ct->item))) {
				xc_jid_free(&from);
				goto fail;
			}
		}
		xc_jid_free(&from);
	}
	o->iq = iq;
	if (submit(sh, XC_STORE_PEP_NODES, o->owner.s, NULL, pr, on_nodes, o) == 0)
		return;
	pr = NULL;
	iq = o->iq;
	o->iq = NULL;
fail:
	refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
	xc_pep_req_free(pr);
	op_free(o);
	cm_xml_node_free(iq);
}

/* --- the last items, for a resource coming online ------------------------------------------- */

struct last_ctx {
	char *owner; /* owned: bare JID */
	char *full;  /* owned: the contact's resource, or one of the owner's */
};

static void on_last(struct xc_store_req *r)
{
	struct last_ctx *l = r->arg;
	struct xc_shard *sh = r->loop->data;
	size_t ol = strlen(l->owner);
	bool own = strncmp(l->full, l->owner, ol) == 0 && l->full[ol] == '/';
	unsigned sent = 0;

	for (size_t i = 0; !r->err && i < r->pep->nitems; i++) {
		const struct xc_pep_item *it = &r->pep->items[i];
		struct cm_xml_node *msg, *items;

		if (!xc_pep__may_read(it->access, own, r->pep->sees,
		                      xc_pep__member(it->groups, r->pep->contact_groups)) ||
		    !xc_pep__wants(sh, l->owner, l->full, it->node))
			continue;
		msg = event_new(l->owner, it->node, &items);
		if (!msg)
			break;
		if (cm_xml_node_set_attr(msg, "to", l->full) != 0 ||
		    add_item(items, it->id, it->payload) != 0) {
			cm_xml_node_free(msg);
			continue;
		}
		xc_route(sh, msg);
		sent++;
	}
	cm_metrics_add(sh->srv->pep->m.notifications, sent);
	free(l->owner);
	free(l->full);
	free(l);
	xc_store_req_free(r);
}

void xc_pep__send_last(struct xc_shard *sh, const char *owner, const char *full)
{
	struct last_ctx *l;
	struct xc_pep_req *pr;
	struct xc_jid j, bare;
	int rc;

	if (!xc_pep_enabled(sh->srv->pep) || xc_jid_parse(&j, full, strlen(full), NULL, 0) != 0)
		return;
	rc = xc_jid_copy(&bare, &j, true);
	xc_jid_free(&j);
	if (rc)
		return;
	l = calloc(1, sizeof(*l));
	pr = calloc(1, sizeof(*pr));
	if (l) {
		l->owner = strdup(owner);
		l->full = strdup(full);
	}
	rc = l && pr && l->owner && l->full ? 0 : -ENOMEM;
	if (!rc) {
		rc = submit(sh, XC_STORE_PEP_LAST, owner, bare.s, pr, on_last, l);
		pr = NULL; /* the request's, or freed */
	}
	if (rc && l) {
		free(l->owner);
		free(l->full);
		free(l);
	}
	xc_pep_req_free(pr);
	xc_jid_free(&bare);
}
