/* sm.c - XEP-0198 for client sessions (sm.h): <enable/>, acknowledgements, hibernation when the
 * connection drops, <resume/> on a new connection, and the end of a session that is not
 * resumed, whose unacknowledged stanzas are routed again. */
#include "sm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/map.h"
#include "cm/metrics.h"
#include "csi.h"
#include "offline.h"
#include "push.h"
#include "router.h"
#include "rules.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "ticket.h"
#include "user.h"

#define ID_BYTES     16   /* random bytes in a resumption id (written in hex) */
#define ACK_IDLE_MS  1000 /* stanzas unacknowledged and nothing sent for this long: ask */
#define SESSIONS_MAX 64   /* other sessions a re-routed message may go to */
#define NS_CARBONS   "urn:xmpp:carbons:2"
#define NS_MAM       "urn:xmpp:mam:2"

struct xc_sm {
	struct xc_sm_queue q;
	struct xc_c2s *c;           /* borrowed: the session (a new connection after <resume/>) */
	struct cm_map_node node;    /* in sh->sm_ids while resumable */
	struct cm_list link;        /* in sh->sm_hibernated while hibernated */
	struct cm_loop_timer timer; /* live: an <r/> once quiet; hibernated: the session's end */
	char id[2 * ID_BYTES + 1];  /* the resumption id; "" when not resumable */
	bool resumable;
	bool hibernated;
	bool ended;         /* neither hibernated nor resumed any more */
	uint32_t r_at;      /* q.sent when the last <r/> went out */
	uint64_t resume_ms; /* how long a hibernated session waits for its client */
	/* acknowledgements wait for what the client's messages caused (ticket.h) */
	struct cm_list tickets; /* of struct xc_ticket (link): on their way, oldest first */
	bool ack_owed;          /* an <r/> is answered once the stanzas up to owed_h are safe */
	uint32_t owed_h;
};

/* The client's stanzas the server has handled and whose work is safe: all of them, or those
 * before the oldest ticket still on its way. */
static uint32_t safe_h(const struct xc_sm *s)
{
	if (cm_list_empty(&s->tickets))
		return s->q.handled;
	return cm_list_entry(s->tickets.next, struct xc_ticket, link)->seq - 1;
}

static void send_ack(struct xc_sm *s, uint32_t h)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf), "<a xmlns='" XC_NS_SM "' h='%" PRIu32 "'/>", h);

	xc_c2s_send_raw(s->c, buf, (size_t)n);
}

static const struct xc_sm_config *cfg_of(const struct xc_c2s *c)
{
	return &c->sh->srv->cfg->sm;
}

/* <failed/> with condition (and our h once there is a session) into out. */
static void failed_xml(struct cm_buf *out, const char *condition, const struct xc_sm *s)
{
	if (s)
		cm_buf_printf(out,
		              "<failed xmlns='" XC_NS_SM "' h='%" PRIu32
		              "'><%s xmlns='" XC_NS_STANZAS "'/></failed>",
		              s->q.handled, condition);
	else
		cm_buf_printf(
		    out, "<failed xmlns='" XC_NS_SM "'><%s xmlns='" XC_NS_STANZAS "'/></failed>",
		    condition);
}

/* Send out (what an element is answered with), then empty it. */
static void send_buf(struct xc_c2s *c, struct cm_buf *out)
{
	if (out->len)
		xc_c2s_send_raw(c, out->data, out->len);
	cm_buf_free(out);
}

static void send_failed(struct xc_c2s *c, const char *condition, const struct xc_sm *s)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	failed_xml(&b, condition, s);
	send_buf(c, &b);
}

static void request(struct xc_sm *s)
{
	static const char r[] = "<r xmlns='" XC_NS_SM "'/>";

	s->r_at = s->q.sent;
	xc_c2s_send_raw(s->c, r, sizeof(r) - 1);
}

static struct xc_sm *find(struct xc_shard *sh, const char *id)
{
	size_t len = strlen(id);
	uint64_t h;

	if (len != 2 * ID_BYTES)
		return NULL;
	h = cm_map_hash(&sh->sm_ids, id, len);
	for (struct cm_map_node *n = cm_map_first(&sh->sm_ids, h); n; n = cm_map_next(n)) {
		struct xc_sm *s = cm_list_entry(n, struct xc_sm, node);

		if (strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

/* The hibernation is over (or the session was ended meanwhile): end it on a later turn of the
 * loop, never from inside whatever walks the user's sessions now. */
static void end_soon(struct xc_sm *s)
{
	s->ended = true;
	cm_loop_timer_start(s->c->sh->loop, &s->timer, 0);
}

static void on_timer(struct cm_loop_timer *t)
{
	struct xc_sm *s = cm_list_entry(t, struct xc_sm, timer);

	if (!s->hibernated) {
		if (s->q.sent != s->r_at && xc_sm_queue_unacked(&s->q))
			request(s);
		return;
	}
	CM_LOGD("sm", "%s: not resumed in time; the session ends", s->c->jid.s);
	s->ended = true;
	xc_c2s__release(s->c); /* frees s (xc_sm_free) */
}

/* --- the elements --------------------------------------------------------------------------- */

/* <enable/>: its answer (<enabled/> or <failed/>) into out. */
static void enable(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out)
{
	const struct xc_sm_config *sc = cfg_of(c);
	const char *resume = cm_xml_attr(el, "resume");
	uint64_t secs = sc->resume_timeout / 1000;
	unsigned char raw[ID_BYTES];
	struct xc_sm *s;
	uint32_t want;

	if (c->st != XC_C2S_BOUND || c->sm || !sc->enabled) {
		failed_xml(out, "unexpected-request", NULL);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		failed_xml(out, "resource-constraint", NULL);
		return;
	}
	xc_sm_queue_init(&s->q);
	s->c = c;
	cm_list_init(&s->link);
	cm_list_init(&s->tickets);
	cm_loop_timer_init(&s->timer, on_timer);
	/* a client may ask for a shorter wait than ours, not a longer one */
	if (xc_sm_parse_h(cm_xml_attr(el, "max"), &want) == 0 && want > 0 && want < secs)
		secs = want;
	s->resume_ms = secs * 1000;
	if (resume && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0) &&
	    cm_crypto_random(raw, sizeof(raw)) == 0) {
		/* unguessable; the shard is the user's home, which SASL tells before <resume/> */
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
		s->resumable = true;
		cm_map_insert(&c->sh->sm_ids, &s->node,
		              cm_map_hash(&c->sh->sm_ids, s->id, strlen(s->id)));
	}
	c->sm = s;
	if (s->resumable)
		cm_buf_printf(
		    out, "<enabled xmlns='" XC_NS_SM "' id='%s' resume='true' max='%" PRIu64 "'/>",
		    s->id, secs);
	else
		cm_buf_puts(out, "<enabled xmlns='" XC_NS_SM "'/>");
	CM_LOGD("sm", "%s: stream management on%s", c->jid.s, s->resumable ? ", resumable" : "");
}

static int ack(struct xc_c2s *c, const struct cm_xml_node *el)
{
	struct xc_sm *s = c->sm;
	char extra[160];
	uint32_t h;

	if (!s)
		return 0; /* nothing was asked: nothing to check */
	if (xc_sm_parse_h(cm_xml_attr(el, "h"), &h) != 0) {
		xc_c2s_stream_error(c, "bad-format", "<a/> without a count");
		return -EPROTO;
	}
	if (xc_sm_queue_ack(&s->q, h) != 0) {
		snprintf(extra, sizeof(extra),
		         "<handled-count-too-high xmlns='" XC_NS_SM "' h='%" PRIu32
		         "' send-count='%" PRIu32 "'/>",
		         h, s->q.sent);
		xc_c2s__stream_error_extra(c, "undefined-condition",
		                           "more stanzas acknowledged "
		                           "than were sent",
		                           extra);
		return -EPROTO;
	}
	return 0;
}

/* Whether old (a session) belongs to the account c authenticated as. */
static bool same_account(const struct xc_c2s *old, const struct xc_c2s *c)
{
	size_t ul = strlen(c->user), hl = strlen(c->host);

	return old->jid.s && old->jid.llen == ul && old->jid.dlen == hl &&
	       memcmp(old->jid.s, c->user, ul) == 0 && old->jid.s[ul] == '@' &&
	       memcmp(old->jid.s + ul + 1, c->host, hl) == 0;
}

/* <resume/>: the session of previd moves to c, and the answer (<resumed/> or <failed/>) goes
 * into out. 1 when resumed (the queue is then to be sent again: replay()), 0 when not. */
static int resume(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out)
{
	struct xc_server *srv = c->sh->srv;
	const char *previd = cm_xml_attr(el, "previd");
	struct xc_sm *s = NULL;
	struct xc_c2s *old;
	uint32_t h;

	if (c->st != XC_C2S_AUTHED) {
		failed_xml(out, "unexpected-request", NULL);
		return 0;
	}
	if (previd && cfg_of(c)->enabled)
		s = find(c->sh, previd);
	/* another account's session is as unknown as an expired one */
	if (!s || s->ended || !same_account(s->c, c)) {
		cm_metrics_inc(srv->m.sm_resumed_failed);
		failed_xml(out, "item-not-found", NULL);
		return 0;
	}
	if (xc_sm_parse_h(cm_xml_attr(el, "h"), &h) != 0 || xc_sm_queue_ack(&s->q, h) != 0) {
		cm_metrics_inc(srv->m.sm_resumed_failed);
		failed_xml(out, "bad-request", s);
		return 0;
	}
	old = s->c;
	/* a half-open connection may hold stanzas for an inactive client: they go out again with
	 * the unacknowledged ones, on a stream that starts active */
	xc_csi_drain(old);
	xc_session_move(c, old);
	old->sm = NULL;
	c->sm = s;
	s->c = c;
	s->ack_owed = false; /* <resumed/> tells the count */
	cm_loop_timer_stop(c->sh->loop, &s->timer);
	if (s->hibernated) {
		s->hibernated = false;
		cm_list_remove(&s->link);
		cm_list_init(&s->link);
		cm_metrics_gauge_add(srv->m.sm_hibernated, -1);
		xc_c2s__release(old);
	} else {
		/* half-open: the client came back before the old connection was noticed gone */
		xc_c2s_stream_error(old, "conflict",
		                    "the session was resumed on another connection");
	}
	cm_metrics_inc(srv->m.sm_resumed_ok);
	if (c->u)
		xc_push_back(c->sh, c->u->bare.s);
	cm_buf_printf(out, "<resumed xmlns='" XC_NS_SM "' previd='%s' h='%" PRIu32 "'/>", s->id,
	              s->q.handled);
	return 1;
}

/* After <resumed/>: what the client has not acknowledged, again, under the numbers it had. */
static void replay(struct xc_c2s *c)
{
	struct xc_sm *s = c->sm;
	struct cm_list *p;

	cm_list_foreach(p, &s->q.items)
	{
		if (xc_c2s__write(c, cm_list_entry(p, struct xc_sm_item, link)->st) != 0)
			break;
	}
	if (s->q.n)
		request(s);
	xc_c2s_idle_timer(c);
	CM_LOGD("sm", "%s: resumed by %s, %zu stanzas sent again", c->jid.s, xc_c2s_peer(c),
	        s->q.n);
}

int xc_sm_resume_inline(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out)
{
	return resume(c, el, out);
}

void xc_sm_resumed(struct xc_c2s *c)
{
	if (c->sm)
		replay(c);
}

void xc_sm_enable_inline(struct xc_c2s *c, const struct cm_xml_node *el, struct cm_buf *out)
{
	enable(c, el, out);
}

int xc_sm_element(struct xc_c2s *c, const struct cm_xml_node *el)
{
	struct cm_buf out;

	if (strcmp(el->name, "enable") == 0 || strcmp(el->name, "resume") == 0) {
		int resumed = 0;

		cm_buf_init(&out, 0);
		if (strcmp(el->name, "enable") == 0)
			enable(c, el, &out);
		else
			resumed = resume(c, el, &out);
		send_buf(c, &out);
		if (resumed)
			replay(c);
		return 0;
	}
	if (strcmp(el->name, "a") == 0)
		return ack(c, el);
	if (strcmp(el->name, "r") == 0) {
		if (!c->sm) {
			send_failed(c, "unexpected-request", NULL);
			return 0;
		}
		if (safe_h(c->sm) == c->sm->q.handled) {
			send_ack(c->sm, c->sm->q.handled);
		} else {
			/* some of it is on its way to the disk: answered when it is there */
			c->sm->ack_owed = true;
			c->sm->owed_h = c->sm->q.handled;
			cm_metrics_inc(c->sh->srv->m.sm_acks_held);
		}
		return 0;
	}
	xc_c2s_stream_error(c, "unsupported-stanza-type", NULL);
	return -EPROTO;
}

/* --- counting and sending ------------------------------------------------------------------- */

void xc_sm_handled(struct xc_c2s *c)
{
	if (c->sm)
		xc_sm_queue_handled(&c->sm->q);
}

void xc_sm_scope(struct xc_c2s *c, struct xc_ticket_scope *sc)
{
	struct xc_ticket *t = c->sm ? xc_ticket_new(c->sh, c->sm, c->sm->q.handled) : NULL;

	xc_ticket_enter(c->sh, sc, t);
}

void xc_sm_ticket_add(struct xc_sm *s, struct xc_ticket *t)
{
	cm_list_insert_tail(&s->tickets, &t->link);
}

void xc_sm_ticket_done(struct xc_sm *s)
{
	uint32_t h;

	if (!s->ack_owed || s->hibernated)
		return;
	h = safe_h(s);
	if ((int32_t)(h - s->owed_h) < 0)
		return;
	s->ack_owed = false;
	send_ack(s, h);
}

int xc_sm_send(struct xc_c2s *c, const struct cm_xml_node *stanza)
{
	const struct xc_sm_config *sc = cfg_of(c);
	struct xc_sm *s = c->sm;
	struct cm_xml_node *copy = NULL;
	int r;

	r = cm_xml_node_copy(&copy, stanza);
	if (!r && (r = xc_sm_queue_push(&s->q, copy)) != 0)
		cm_xml_node_free(copy);
	if (r) {
		/* a stanza sent without its copy would make the counts disagree */
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		xc_bounce(c->sh, stanza, "wait", "resource-constraint");
		return r;
	}
	if (s->hibernated) {
		xc_sm_queued_while_hibernated(c, stanza);
		if (s->q.n > (uint64_t)sc->max_queue && !s->ended) {
			CM_LOGI("sm", "%s: %zu stanzas wait for a hibernated session; it ends",
			        c->jid.s, s->q.n);
			end_soon(s);
		}
		return 0;
	}
	if (s->q.n > (uint64_t)sc->max_queue) {
		/* what is queued, this one included, is routed again when the connection is gone */
		CM_LOGI("sm", "%s: %zu stanzas not acknowledged; closing", c->jid.s, s->q.n);
		xc_c2s_stream_error(c, "policy-violation", "too many unacknowledged stanzas");
		return -ENOBUFS;
	}
	r = xc_c2s__write(c, stanza);
	if (s->q.sent - s->r_at >= (uint32_t)sc->ack_every)
		request(s);
	else if (!cm_loop_timer_active(&s->timer))
		cm_loop_timer_start(c->sh->loop, &s->timer, ACK_IDLE_MS);
	return r;
}

void xc_sm_keep(struct xc_c2s *c, struct cm_xml_node *st)
{
	int r = xc_sm_queue_push(&c->sm->q, st);

	if (r) {
		xc_bounce(c->sh, st, "wait", "resource-constraint");
		cm_xml_node_free(st);
	}
}

int xc_sm_request(struct xc_c2s *c)
{
	if (!c->sm)
		return -ENOENT;
	request(c->sm);
	return 0;
}

void xc_sm_queued_while_hibernated(struct xc_c2s *c, const struct cm_xml_node *st)
{
	CM_LOGD("sm", "%s: a stanza waits for the client (%zu)", c->jid.s, c->sm->q.n);
	xc_push_queued_hibernated(c, st); /* XEP-0357 wakes the client */
}

int xc_sm_set_resume_timeout(struct xc_c2s *c, uint64_t ms)
{
	struct xc_sm *s = c->sm;

	if (!s || !s->resumable)
		return -ENOENT;
	s->resume_ms = ms;
	if (s->hibernated && !s->ended)
		cm_loop_timer_start(c->sh->loop, &s->timer, ms);
	return 0;
}

/* --- hibernation and the end ---------------------------------------------------------------- */

void xc_sm_ended(struct xc_c2s *c)
{
	struct xc_sm *s = c->sm;

	if (!s || s->ended)
		return;
	if (s->hibernated)
		end_soon(s);
	else
		s->ended = true;
}

bool xc_sm_hibernate(struct xc_c2s *c)
{
	struct xc_sm *s = c->sm;

	if (!s || !s->resumable || s->ended || !c->u || c->sh->stopping)
		return false;
	s->hibernated = true;
	cm_list_insert_tail(&c->sh->sm_hibernated, &s->link);
	cm_loop_timer_start(c->sh->loop, &s->timer, s->resume_ms);
	cm_metrics_gauge_add(c->sh->srv->m.sm_hibernated, 1);
	xc_push_hibernating(c); /* with push enabled it waits longer */
	CM_LOGD("sm", "%s: connection lost; the session waits %" PRIu64 " ms, %zu stanzas queued",
	        c->jid.s, s->resume_ms, s->q.n);
	return true;
}

/* A copy the user gets anyway by other ways: a carbon (the original went to another session or
 * offline) or an archive result (in the archive still). */
static bool own_copy(const struct xc_c2s *c, const struct cm_xml_node *st)
{
	const char *from = cm_xml_attr(st, "from");
	size_t bl = xc_jid_bare_len(&c->jid);

	if (!from || strlen(from) != bl || memcmp(from, c->jid.s, bl) != 0)
		return false;
	return cm_xml_child(st, NULL, NS_CARBONS) || cm_xml_child(st, NULL, NS_MAM);
}

/* A stanza the client never acknowledged, its session gone (unbound already): messages to the
 * user's other sessions as a bare JID's would go (RFC 6121 8.5.2), else offline storage, which
 * answers the sender when it refuses; IQ requests answered with an error; presence and IQ
 * answers dropped, as for any session that is gone. Takes st. */
static void reroute(struct xc_c2s *c, struct cm_xml_node *st)
{
	struct xc_shard *sh = c->sh;
	enum xc_kind kind = xc_stanza_kind(st);
	const char *type = xc_stanza_type(st);
	struct xc_rule_session rs[SESSIONS_MAX];
	struct xc_c2s *cs[SESSIONS_MAX], *o;
	bool chosen[SESSIONS_MAX];
	struct xc_user *u;
	size_t n = 0;

	if (kind == XC_PRESENCE ||
	    (kind == XC_IQ && (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)))) {
		cm_xml_node_free(st);
		return;
	}
	cm_metrics_inc(sh->srv->m.sm_rerouted);
	if (kind == XC_IQ) {
		if (cm_xml_attr(st, "from"))
			xc_bounce(sh, st, "cancel", "service-unavailable");
		cm_xml_node_free(st);
		return;
	}
	if (own_copy(c, st)) {
		cm_xml_node_free(st);
		return;
	}
	u = c->jid.s ? xc_user_find(sh, &c->jid) : NULL;
	if (u)
		xc_user_foreach_session(u, o) if (n < SESSIONS_MAX && o != c)
		{
			rs[n] = (struct xc_rule_session){.available = o->available,
			                                 .priority = o->priority};
			cs[n++] = o;
		}
	switch (xc_rule_message_bare(type, rs, n, chosen)) {
	case XC_RULE_DELIVER:
		for (size_t i = 0; i < n; i++)
			if (chosen[i])
				xc_c2s_send(cs[i], st);
		break;
	case XC_RULE_OFFLINE:
		xc_offline_store(sh, st); /* takes st */
		return;
	case XC_RULE_BOUNCE:
		xc_bounce(sh, st, "cancel", "service-unavailable");
		break;
	default: /* headline and error: nobody is there to show them to */
		break;
	}
	cm_xml_node_free(st);
}

void xc_sm_free(struct xc_c2s *c)
{
	struct xc_sm *s = c->sm;
	struct cm_xml_node *st;

	if (!s)
		return;
	c->sm = NULL;
	cm_loop_timer_stop(c->sh->loop, &s->timer);
	if (s->resumable)
		cm_map_remove(&c->sh->sm_ids, &s->node);
	if (s->hibernated) {
		cm_list_remove(&s->link);
		cm_metrics_gauge_add(c->sh->srv->m.sm_hibernated, -1);
	}
	if (s->q.n)
		CM_LOGD("sm", "%s: %zu stanzas not acknowledged are routed again", c->jid.s,
		        s->q.n);
	while ((st = xc_sm_queue_pop(&s->q)) != NULL)
		reroute(c, st);
	xc_sm_queue_close(&s->q);
	while (!cm_list_empty(&s->tickets))
		xc_ticket_forget(cm_list_entry(s->tickets.next, struct xc_ticket, link));
	free(s);
}

void xc_sm_close_all(struct xc_shard *sh)
{
	struct cm_list *p, *next;

	cm_list_foreach_safe(p, next, &sh->sm_hibernated)
	{
		struct xc_sm *s = cm_list_entry(p, struct xc_sm, link);

		s->ended = true;
		xc_c2s__release(s->c);
	}
}
