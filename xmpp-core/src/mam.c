/* mam.c - the message archive: what goes in, stanza ids, queries, preferences, retention
 * (mam.h). */
#include "mam.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c2s.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "mam_int.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "store.h"
#include "ticket.h"
#include "user.h"

#define NS_HINTS "urn:xmpp:hints"
#define NS_JMI   "urn:xmpp:jingle-message:0"

#define PURGE_FIRST_MS (60 * 1000)   /* the first purge, a minute after start */
#define PURGE_EVERY_MS (3600 * 1000) /* then every hour */
#define PURGE_STEP     5000          /* rows one purge request removes at most */
#define DAY_MS         (86400 * 1000LL)
#define BARE_MAX       (2 * 1023 + 2) /* a bare JID and its NUL */
#define PAGE_BYTES_MIN (64 * 1024)    /* see page_budget() */
#define SCRATCH_KEEP   (16 * 1024)    /* the shard's buffer keeps at most this between uses */

struct mam_metrics {
	struct cm_counter *archived, *failed;
	struct cm_counter *queries_ok, *queries_refused;
	struct cm_counter *purged;
	struct cm_histogram *query_latency;
};

struct xc_mam {
	struct xc_server *srv;               /* borrowed */
	const struct xc_archive_config *cfg; /* borrowed: the server's configuration */
	struct xc_mam_events ev;             /* read-only once the workers run */
	struct mam_metrics m;
	/* the purge: touched only on shard 0's thread */
	struct xc_shard *purge_sh; /* borrowed; NULL when stopped */
	struct cm_loop_timer purge;
};

/* In memory, per user (user.h): the store's preferences, held as they are. */
struct xc_mam_prefs {
	struct xc_archive_prefs p;
};

static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1,    2.5};

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct mam_metrics, archived, "xmpp_archive_messages_total",
                          "Messages written to users' archives (XEP-0313), by result.", "result",
                          "stored"),
    CM_METRIC_COUNTER_DEF(struct mam_metrics, failed, "xmpp_archive_messages_total",
                          "Messages written to users' archives (XEP-0313), by result.", "result",
                          "failed"),
    CM_METRIC_COUNTER_DEF(struct mam_metrics, queries_ok, "xmpp_archive_queries_total",
                          "Archive queries, by result.", "result", "ok"),
    CM_METRIC_COUNTER_DEF(struct mam_metrics, queries_refused, "xmpp_archive_queries_total",
                          "Archive queries, by result.", "result", "error"),
    CM_METRIC_COUNTER_DEF(struct mam_metrics, purged, "xmpp_archive_purged_total",
                          "Archived messages removed for their age (archive.retention_days).",
                          NULL),
    CM_METRIC_HISTOGRAM_DEF(struct mam_metrics, query_latency, "xmpp_archive_query_seconds",
                            "An archive query, from its IQ to its last answer.", latency_buckets,
                            sizeof(latency_buckets) / sizeof(latency_buckets[0]), NULL),
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int xc_mam_alloc(struct xc_mam **out, struct xc_server *srv, struct cm_metrics *metrics)
{
	struct xc_mam *m = calloc(1, sizeof(*m));
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->srv = srv;
	m->cfg = &srv->cfg->archive;
	r = cm_metrics_register(metrics, &m->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("archive", "%s", err);
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

void xc_mam_free(struct xc_mam *m)
{
	free(m);
}

void xc_mam_set_events(struct xc_mam *m, const struct xc_mam_events *ev)
{
	m->ev = *ev;
}

bool xc_mam_enabled(const struct xc_mam *m)
{
	return m && m->cfg->enabled;
}

struct xc_mam_prefs *xc_mam_prefs_take(struct xc_archive_prefs *p, bool found)
{
	struct xc_mam_prefs *mp;

	if (!found)
		return NULL;
	mp = calloc(1, sizeof(*mp));
	if (!mp)
		return NULL;
	mp->p = *p;
	memset(p, 0, sizeof(*p));
	return mp;
}

void xc_mam_prefs_free(struct xc_mam_prefs *p)
{
	if (!p)
		return;
	xc_archive_prefs_clear(&p->p);
	free(p);
}

/* --- what is archived ------------------------------------------------------------------------ */

bool xc_mam_archivable(const struct cm_xml_node *st)
{
	const char *type = xc_stanza_type(st);
	bool keep = false;

	if (strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
		return false;
	for (const struct cm_xml_node *n = st->children; n; n = n->next) {
		if (n->kind != CM_XML_ELEMENT)
			continue;
		if (strcmp(n->ns, NS_HINTS) == 0) {
			if (strcmp(n->name, "no-store") == 0 ||
			    strcmp(n->name, "no-permanent-store") == 0)
				return false; /* whatever else it holds */
			if (strcmp(n->name, "store") == 0)
				keep = true;
		} else if (strcmp(n->name, "body") == 0 && strcmp(n->ns, CM_XML_NS_CLIENT) == 0) {
			keep = true;
		} else if (strcmp(n->ns, NS_JMI) == 0 &&
		           (strcmp(n->name, "propose") == 0 || strcmp(n->name, "accept") == 0 ||
		            strcmp(n->name, "reject") == 0 || strcmp(n->name, "retract") == 0 ||
		            strcmp(n->name, "proceed") == 0 || strcmp(n->name, "finish") == 0)) {
			keep = true;
		}
	}
	return keep;
}

void xc_mam_strip_ids(const struct xc_server *srv, struct cm_xml_node *st)
{
	struct cm_xml_node *n = st->children, *next;

	for (; n; n = next) {
		const char *by;
		struct xc_jid j;
		bool ours;

		next = n->next;
		if (n->kind != CM_XML_ELEMENT || strcmp(n->name, "stanza-id") != 0 ||
		    strcmp(n->ns, XC_NS_SID) != 0)
			continue;
		by = cm_xml_attr(n, "by");
		/* an id without a 'by' or with one that is no JID is nobody's: it goes too */
		ours = !by || xc_jid_parse(&j, by, strlen(by), NULL, 0) != 0;
		if (!ours) {
			ours = xc_local_host(srv, xc_jid_domain(&j), j.dlen) != NULL;
			xc_jid_free(&j);
		}
		if (ours)
			cm_xml_node_free(n);
	}
}

/* Whether u's preferences archive a message with peer. */
static bool wanted(const struct xc_mam *m, struct xc_user *u, const struct xc_jid *peer)
{
	const struct xc_archive_prefs *p;
	char bare[BARE_MAX];
	size_t len = xc_jid_bare_len(peer);
	bool in_roster;

	if (len >= sizeof(bare))
		return false;
	memcpy(bare, peer->s, len);
	bare[len] = '\0';
	p = u->mam_prefs ? &u->mam_prefs->p : NULL;
	/* the roster is looked up only when the policy that applies asks it */
	in_roster = (p ? p->def : m->cfg->default_policy) == XC_ARCHIVE_ROSTER &&
	            xc_roster_find(u, bare) != NULL;
	return xc_mam__wanted(p, m->cfg->default_policy, bare, in_roster);
}

/* Whether u has a session that would have been handed a message now. */
static bool user_attended(struct xc_user *u)
{
	struct xc_c2s *c;

	xc_user_foreach_session(u, c) if (c->available) return true;
	return false;
}

/* The same for the user of that bare JID, if loaded. */
static bool attended(struct xc_shard *sh, const char *user)
{
	struct xc_jid j;
	struct xc_user *u = NULL;

	if (xc_jid_parse(&j, user, strlen(user), NULL, 0) == 0)
		u = xc_user_find(sh, &j);
	xc_jid_free(&j);
	return u && user_attended(u);
}

/* An archive write that was to be answered (archive()). */
static void on_put_in(struct xc_store_req *r)
{
	struct xc_shard *sh = r->loop->data;
	struct xc_mam *m = sh->srv->mam;

	if (r->err) {
		cm_metrics_inc(m->m.failed);
		CM_LOGW("archive", "a message for the archive of %s was not kept: %s", r->user,
		        strerror(-r->err));
	} else {
		cm_metrics_inc(m->m.archived);
		if (m->ev.archived_unattended && !attended(sh, r->user))
			m->ev.archived_unattended(m->ev.arg, sh, r->user, r->key, r->stanza);
	}
	xc_store_req_free(r);
}

/* Submit st for owner's archive under id, its peer with. 0 or a negative errno.
 *
 * Nothing waits for an archive write, so most go without an answer: the store counts them and
 * logs a failure on its thread, and no worker is woken for them. Only a message for a user
 * without an available session comes back (answer, decided by the caller as the message is
 * delivered), for the archived_unattended event. */
static int archive(struct xc_shard *sh, const char *owner, const char *id, const char *with,
                   const struct cm_xml_node *st, bool answer)
{
	struct xc_mam *m = sh->srv->mam;
	struct cm_buf *b = &sh->scratch;
	struct xc_store_req *r = NULL;
	int rc;

	/* serialised into the shard's buffer, then copied into the request's one allocation */
	cm_buf_reset(b);
	rc = cm_xml_write(b, st, sh->srv->scope);
	if (!rc) {
		r = xc_store_req_archive(sh->loop, answer ? on_put_in : NULL, owner, id, with,
		                         b->data, b->len);
		rc = r ? 0 : -ENOMEM;
	}
	/* a large message's room is not kept for the shard's life */
	if (b->cap > SCRATCH_KEEP) {
		cm_buf_free(b);
		cm_buf_init(b, 0);
	}
	if (!rc) {
		if (!answer) {
			r->ok_total = m->m.archived;
			r->failed_total = m->m.failed;
		}
		r->stamp_ms = xc_wall_ms();
		r->ticket = xc_ticket_hold(sh);
		rc = xc_store_submit(sh->srv->store, r);
	}
	if (rc) {
		xc_store_req_free(r);
		cm_metrics_inc(m->m.failed);
	}
	return rc;
}

void xc_mam_inbound(struct xc_shard *sh, struct xc_user *u, struct cm_xml_node *st)
{
	struct xc_mam *m = sh->srv->mam;
	struct cm_xml_node *sid;
	struct xc_jid from;
	char id[17];

	xc_mam_strip_ids(sh->srv, st);
	if (!xc_mam_enabled(m) || !xc_mam_archivable(st))
		return;
	if (xc_stanza_jid(st, "from", &from) != 0 || xc_jid_empty(&from)) {
		xc_jid_free(&from);
		return;
	}
	if (wanted(m, u, &from)) {
		xc_store_archive_id(sh->srv->store, id);
		/* archived as received; the id goes on what is delivered */
		if (archive(sh, u->bare.s, id, from.s, st,
		            m->ev.archived_unattended && !user_attended(u)) == 0 &&
		    (cm_xml_node_new_child(&sid, st, "stanza-id", XC_NS_SID) != 0 ||
		     cm_xml_node_set_attr(sid, "by", u->bare.s) != 0 ||
		     cm_xml_node_set_attr(sid, "id", id) != 0))
			CM_LOGW("archive",
			        "a message for %s goes without its stanza-id (no memory)",
			        u->bare.s);
	}
	xc_jid_free(&from);
}

void xc_mam_outbound(struct xc_c2s *c, struct cm_xml_node *st)
{
	struct xc_shard *sh = c->sh;
	struct xc_mam *m = sh->srv->mam;
	struct xc_jid to;
	char id[17];

	xc_mam_strip_ids(sh->srv, st);
	if (!xc_mam_enabled(m) || !c->u || !xc_mam_archivable(st))
		return;
	if (xc_stanza_jid(st, "to", &to) != 0 || xc_jid_empty(&to)) {
		xc_jid_free(&to);
		return;
	}
	/* to another account of this server (what goes elsewhere is refused for now, and a
	 * message to the user's own account is archived once, as received) */
	if (to.llen && xc_local_host(sh->srv, xc_jid_domain(&to), to.dlen) &&
	    !xc_jid_bare_equal(&to, &c->u->bare) && wanted(m, c->u, &to)) {
		xc_store_archive_id(sh->srv->store, id);
		(void)archive(sh, c->u->bare.s, id, to.s, st, false); /* counted when it fails */
	}
	xc_jid_free(&to);
}

/* --- answers --------------------------------------------------------------------------------- */

/* Send the error reply to iq to session c, with a text. */
static void refuse(struct xc_c2s *c, const struct cm_xml_node *iq, const char *etype,
                   const char *cond, const char *text)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text && *text ? text : NULL,
	                                        c->u ? c->u->bare.s : c->host);

	if (e) {
		xc_c2s_send(c, e);
		cm_xml_node_free(e);
	}
}

static void answer(struct xc_c2s *c, const struct cm_xml_node *iq, struct cm_xml_node *child)
{
	struct cm_xml_node *res = xc_iq_result(iq, child);

	if (res) {
		xc_c2s_send(c, res);
		cm_xml_node_free(res);
	}
}

/* --- queries --------------------------------------------------------------------------------- */

struct query_ctx {
	struct xc_jid who;      /* owned: the session that asked */
	struct cm_xml_node *iq; /* owned: its IQ, for the answer */
	char *queryid;          /* owned, may be NULL */
	bool backward;
	uint64_t t0; /* when it was asked (monotonic ns) */
};

static void query_ctx_free(struct query_ctx *q)
{
	xc_jid_free(&q->who);
	cm_xml_node_free(q->iq);
	free(q->queryid);
	free(q);
}

/* One result: <message><result queryid id><forwarded><delay/>(the message)</forwarded>
 * </result></message>. NULL when the stored text does not parse or without memory. */
static struct cm_xml_node *result_msg(struct xc_c2s *c, const struct query_ctx *q,
                                      const struct xc_archive_item *it)
{
	struct cm_xml_node *msg = NULL, *inner = NULL, *res, *fwd, *d;
	char stamp[40];
	int r;

	if (xc_stanza_parse(it->stanza, strlen(it->stanza), &inner) != 0)
		return NULL;
	xc_mam__format_time(it->stamp_ms, stamp, sizeof(stamp));
	r = cm_xml_node_new(&msg, "message", CM_XML_NS_CLIENT);
	r = r ? r : xc_stanza_set_addrs(msg, c->jid.s, c->u->bare.s);
	r = r ? r : cm_xml_node_new_child(&res, msg, "result", XC_NS_MAM);
	r = r ? r : (q->queryid ? cm_xml_node_set_attr(res, "queryid", q->queryid) : 0);
	r = r ? r : cm_xml_node_set_attr(res, "id", it->id);
	r = r ? r : cm_xml_node_new_child(&fwd, res, "forwarded", XC_NS_FORWARD);
	r = r ? r : cm_xml_node_new_child(&d, fwd, "delay", XC_NS_DELAY);
	r = r ? r : cm_xml_node_set_attr(d, "stamp", stamp);
	r = r ? r : cm_xml_node_add_child(fwd, inner);
	if (r) {
		cm_xml_node_free(inner);
		cm_xml_node_free(msg);
		return NULL;
	}
	return msg;
}

/* <fin complete><set><first/><last/><count/></set></fin> for the items [lo, hi). */
static struct cm_xml_node *fin(const struct xc_store_req *r, size_t lo, size_t hi, bool complete)
{
	struct cm_xml_node *f = NULL, *set, *n;
	char count[24];
	int rc = cm_xml_node_new(&f, "fin", XC_NS_MAM);

	snprintf(count, sizeof(count), "%llu", (unsigned long long)r->count);
	rc = rc ? rc : (complete ? cm_xml_node_set_attr(f, "complete", "true") : 0);
	rc = rc ? rc : cm_xml_node_new_child(&set, f, "set", XC_NS_RSM);
	if (!rc && hi > lo) {
		rc = cm_xml_node_new_child(&n, set, "first", NULL);
		rc = rc ? rc : cm_xml_node_add_text(n, r->arch[lo].id, strlen(r->arch[lo].id));
		rc = rc ? rc : cm_xml_node_new_child(&n, set, "last", NULL);
		rc = rc ? rc
		        : cm_xml_node_add_text(n, r->arch[hi - 1].id, strlen(r->arch[hi - 1].id));
	}
	if (r->found) { /* a count too large to be worth the work is left out */
		rc = rc ? rc : cm_xml_node_new_child(&n, set, "count", NULL);
		rc = rc ? rc : cm_xml_node_add_text(n, count, strlen(count));
	}
	if (rc) {
		cm_xml_node_free(f);
		return NULL;
	}
	return f;
}

/* Bytes of results one answer may queue for its session: half of what a slow reader may be
 * owed (c2s.max_queued), so that a page of large messages does not get the client cut. A page
 * cut short is not complete, and the client pages on from its first or last id as usual. */
static size_t page_budget(const struct xc_server *srv)
{
	size_t b = (size_t)(srv->cfg->c2s.max_queued / 2);

	return b < PAGE_BYTES_MIN ? PAGE_BYTES_MIN : b;
}

static void on_query(struct xc_store_req *r)
{
	struct query_ctx *q = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct xc_mam *m = sh->srv->mam;
	struct xc_c2s *c = xc_session_find(sh, &q->who);
	size_t lo = 0, hi = r->narch, used = 0, budget = page_budget(sh->srv);
	bool complete = r->complete;

	if (!c || !c->u)
		goto out; /* the session has gone */
	if (r->err) {
		cm_metrics_inc(m->m.queries_refused);
		if (r->err == -ENOENT)
			refuse(c, q->iq, "cancel", "item-not-found",
			       "no message with that id in the archive");
		else
			refuse(c, q->iq, "wait", "internal-server-error", "the archive failed");
		goto out;
	}
	/* trim to the budget, keeping the end the client pages from */
	for (size_t i = 0; i < r->narch; i++) {
		size_t k = q->backward ? r->narch - 1 - i : i;

		used += strlen(r->arch[k].stanza) + 512;
		if (used > budget && i > 0) {
			if (q->backward)
				lo = k + 1;
			else
				hi = k;
			complete = false;
			break;
		}
	}
	for (size_t i = lo; i < hi; i++) {
		struct cm_xml_node *msg = result_msg(c, q, &r->arch[i]);

		if (!msg) {
			CM_LOGW("archive", "%s: message %s of the archive cannot be sent", r->user,
			        r->arch[i].id);
			continue;
		}
		xc_c2s_send(c, msg);
		cm_xml_node_free(msg);
	}
	answer(c, q->iq, fin(r, lo, hi, complete));
	cm_metrics_inc(m->m.queries_ok);
	cm_metrics_observe(m->m.query_latency, (double)(mono_ns() - q->t0) / 1e9);
out:
	query_ctx_free(q);
	xc_store_req_free(r);
}

static void query(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq,
                  const struct cm_xml_node *qn)
{
	struct xc_mam *m = sh->srv->mam;
	struct query_ctx *q = NULL;
	struct xc_store_req *r = NULL;
	struct xc_mam__query mq;
	char err[CM_ERR_MAX] = "";
	int rc;

	rc = xc_mam__query_parse(qn, (unsigned)m->cfg->max_page, &mq, err, sizeof(err));
	if (rc) {
		cm_metrics_inc(m->m.queries_refused);
		if (rc == -ENOTSUP)
			refuse(own, iq, "cancel", "feature-not-implemented", err);
		else if (rc == -EINVAL)
			refuse(own, iq, "modify", "bad-request", err);
		else
			refuse(own, iq, "wait", "resource-constraint", NULL);
		cm_xml_node_free(iq);
		return;
	}
	q = calloc(1, sizeof(*q));
	r = q ? xc_store_req_new(XC_STORE_ARCHIVE_QUERY, sh->loop, on_query, q) : NULL;
	rc = r ? 0 : -ENOMEM;
	if (!rc) {
		q->t0 = mono_ns();
		q->iq = iq;
		iq = NULL;
		q->queryid = mq.queryid;
		mq.queryid = NULL;
		q->backward = mq.aq.backward;
		r->query = malloc(sizeof(*r->query));
		rc = r->query ? 0 : -ENOMEM;
	}
	if (!rc) {
		*r->query = mq.aq; /* handed over */
		memset(&mq.aq, 0, sizeof(mq.aq));
		rc = xc_jid_copy(&q->who, &own->jid, false);
		rc = rc ? rc : xc_store_req_set(&r->user, own->u->bare.s);
		rc = rc ? rc : xc_store_submit(sh->srv->store, r);
	}
	xc_mam__query_clear(&mq);
	if (rc) {
		refuse(own, q && q->iq ? q->iq : iq, "wait", "resource-constraint", NULL);
		cm_xml_node_free(iq);
		if (q)
			query_ctx_free(q);
		xc_store_req_free(r);
	}
}

/* --- preferences -------------------------------------------------------------------------------
 */

struct prefs_ctx {
	struct xc_jid who;      /* owned */
	struct cm_xml_node *iq; /* owned */
};

static void on_prefs(struct xc_store_req *r)
{
	struct prefs_ctx *p = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct xc_c2s *c = xc_session_find(sh, &p->who);

	if (c && c->u) {
		if (r->err)
			refuse(c, p->iq, "wait", "internal-server-error",
			       "the preferences could not be saved");
		else
			answer(c, p->iq, xc_mam__prefs_build(&r->prefs, 0));
	}
	xc_jid_free(&p->who);
	cm_xml_node_free(p->iq);
	free(p);
	xc_store_req_free(r);
}

static int prefs_copy(struct xc_archive_prefs *to, const struct xc_archive_prefs *from)
{
	memset(to, 0, sizeof(*to));
	to->def = from->def;
	to->always = calloc(from->nalways + 1, sizeof(char *));
	to->never = calloc(from->nnever + 1, sizeof(char *));
	if (!to->always || !to->never)
		return -ENOMEM;
	for (; to->nalways < from->nalways; to->nalways++)
		if (!(to->always[to->nalways] = strdup(from->always[to->nalways])))
			return -ENOMEM;
	for (; to->nnever < from->nnever; to->nnever++)
		if (!(to->never[to->nnever] = strdup(from->never[to->nnever])))
			return -ENOMEM;
	return 0;
}

static void prefs_set(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq,
                      const struct cm_xml_node *pn)
{
	struct xc_archive_prefs np;
	struct xc_mam_prefs *mp = NULL;
	struct prefs_ctx *p = NULL;
	struct xc_store_req *r = NULL;
	char err[CM_ERR_MAX] = "";
	int rc = xc_mam__prefs_parse(pn, &np, err, sizeof(err));

	if (rc) {
		refuse(own, iq, rc == -EINVAL ? "modify" : "wait",
		       rc == -EINVAL ? "bad-request" : "resource-constraint", err);
		cm_xml_node_free(iq);
		return;
	}
	p = calloc(1, sizeof(*p));
	r = p ? xc_store_req_new(XC_STORE_ARCHIVE_PREFS_PUT, sh->loop, on_prefs, p) : NULL;
	rc = r ? 0 : -ENOMEM;
	rc = rc ? rc : xc_jid_copy(&p->who, &own->jid, false);
	rc = rc ? rc : xc_store_req_set(&r->user, own->u->bare.s);
	rc = rc ? rc : prefs_copy(&r->prefs, &np);
	if (!rc) {
		mp = xc_mam_prefs_take(&np, true);
		rc = mp ? 0 : -ENOMEM;
	}
	if (!rc) {
		p->iq = iq;
		rc = xc_store_submit(sh->srv->store, r);
		if (rc)
			p->iq = NULL;
	}
	if (rc) {
		refuse(own, iq, "wait", "resource-constraint", NULL);
		cm_xml_node_free(iq);
		xc_mam_prefs_free(mp);
		xc_archive_prefs_clear(&np);
		if (p)
			xc_jid_free(&p->who);
		free(p);
		xc_store_req_free(r);
		return;
	}
	/* in force at once; the answer waits for the commit */
	xc_mam_prefs_free(own->u->mam_prefs);
	own->u->mam_prefs = mp;
}

void xc_mam_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq)
{
	struct xc_mam *m = sh->srv->mam;
	const char *type = cm_xml_attr(iq, "type");
	const struct cm_xml_node *q = cm_xml_child(iq, NULL, XC_NS_MAM);
	bool get = type && strcmp(type, "get") == 0;

	if (!xc_mam_enabled(m) || !own->u) {
		refuse(own, iq, "cancel", "service-unavailable", NULL);
	} else if (q && strcmp(q->name, "query") == 0) {
		if (!get) {
			query(sh, own, iq, q); /* takes iq */
			return;
		}
		answer(own, iq, xc_mam__form());
	} else if (q && strcmp(q->name, "prefs") == 0) {
		if (!get) {
			prefs_set(sh, own, iq, q); /* takes iq */
			return;
		}
		answer(own, iq,
		       xc_mam__prefs_build(own->u->mam_prefs ? &own->u->mam_prefs->p : NULL,
		                           m->cfg->default_policy));
	} else {
		refuse(own, iq, "cancel", "feature-not-implemented", NULL);
	}
	cm_xml_node_free(iq);
}

/* --- retention ------------------------------------------------------------------------------- */

static void purge_submit(struct xc_mam *m);

static void on_purged(struct xc_store_req *r)
{
	struct xc_shard *sh = r->loop->data;
	struct xc_mam *m = sh->srv->mam;
	bool more = r->err == 0 && r->count >= PURGE_STEP;

	if (r->err)
		CM_LOGW("archive", "the purge of old messages failed: %s", strerror(-r->err));
	cm_metrics_add(m->m.purged, r->count);
	xc_store_req_free(r);
	if (!m->purge_sh)
		return; /* stopped meanwhile */
	/* the next step at the wheel's next tick: other requests get the store in between */
	cm_loop_timer_start(m->purge_sh->loop, &m->purge, more ? 0 : PURGE_EVERY_MS);
}

static void purge_submit(struct xc_mam *m)
{
	struct xc_shard *sh = m->purge_sh;
	struct xc_store_req *r =
	    xc_store_req_new(XC_STORE_ARCHIVE_PURGE, sh->loop, on_purged, NULL);

	if (r) {
		r->stamp_ms = xc_wall_ms() - m->cfg->retention_days * DAY_MS;
		r->limit = PURGE_STEP;
		if (xc_store_submit(sh->srv->store, r) == 0)
			return;
		xc_store_req_free(r);
	}
	cm_loop_timer_start(sh->loop, &m->purge, PURGE_EVERY_MS); /* try again later */
}

static void on_purge_timer(struct cm_loop_timer *t)
{
	struct xc_mam *m = cm_list_entry(t, struct xc_mam, purge);

	if (m->purge_sh)
		purge_submit(m);
}

void xc_mam_purge_start(struct xc_mam *m, struct xc_shard *sh)
{
	if (!xc_mam_enabled(m) || m->cfg->retention_days == 0)
		return;
	m->purge_sh = sh;
	cm_loop_timer_init(&m->purge, on_purge_timer);
	cm_loop_timer_start(sh->loop, &m->purge, PURGE_FIRST_MS);
}

void xc_mam_purge_stop(struct xc_mam *m, struct xc_shard *sh)
{
	if (!m || m->purge_sh != sh)
		return;
	cm_loop_timer_stop(sh->loop, &m->purge);
	m->purge_sh = NULL;
}
