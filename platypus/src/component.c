/* component.c - the XEP-0114 connection to an XMPP server on a cm_stream: connect, stream
 * header, handshake, IQs in, replies out, reconnection with backoff, drain on stop. */
#include "component_int.h"
#include "dispatch.h"
#include "notif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "cm/xml.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAMS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_DISCO   "http://jabber.org/protocol/disco#info"
#define NS_PING    "urn:xmpp:ping"
#define NS_PUSH    "urn:xmpp:push:0"
/* A server that stops reading our replies gets cut off rather than grow our memory: replies
 * beyond this much unsent are refused by the stream (-ENOBUFS) and the connection closes. */
#define MAX_UNSENT (4u << 20)
/* Publishes in care at once: beyond, the stream is not read (the server's publishes wait in
 * its socket, not in our memory) until half of them have their outcome. Far more than a
 * provider pipeline needs to stay busy (its rate times its round trip). */
#define PENDING_HIGH 1024
/* Refused publishes are logged once per this long at most: any user can send them. */
#define FORBIDDEN_LOG_MS 60000

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_READY, CONN_CLOSING };

struct conn {
	struct cm_list link;       /* in the component's connections, until the stream's end */
	struct pp_component *c;    /* borrowed back-pointer */
	struct cm_stream *s;       /* the transport; frees itself after its closed event */
	struct cm_xml_parser *xp;  /* owned */
	struct cm_xml_node *scope; /* owned: our own stream header, for writing stanzas */
	enum conn_state state;
	unsigned gen;
	bool paused; /* not read while PENDING_HIGH publishes wait */
};

/* An IQ handed to the dispatcher, waiting for its outcome. */
struct pending {
	struct cm_list link; /* in the component's pending */
	struct pp_component *c;
	unsigned gen; /* the connection it arrived on: replies never cross to a new stream */
	char *id, *from, *to;
};

struct component_metrics {
	struct cm_gauge *connected;
	struct cm_counter *connect_ok, *connect_failed, *publish, *disco, *ping, *other;
	struct cm_counter *misaddressed, *dropped;
	struct cm_counter *forbidden_full_jid, *forbidden_domain, *forbidden_secret;
};

struct pp_component {
	struct cm_loop *loop;         /* borrowed */
	struct pp_dispatch *dispatch; /* borrowed */
	char host[64];                /* the XMPP server: an address literal */
	uint16_t port;
	char *domain;
	char **xmpp_domains; /* owned, each owned: who may publish (see component.h) */
	size_t nxmpp_domains;
	struct cm_buf secret, publish_secret;
	uint64_t backoff_min, backoff_max, backoff;
	struct cm_loop_timer retry; /* the next connection attempt */
	struct conn *conn;          /* the current connection or NULL */
	struct cm_list conns;       /* every connection whose stream has not ended yet */
	unsigned gen;
	struct cm_list pending; /* owned */
	unsigned npending;
	bool stopping;
	bool closing;               /* pp_component_close(): owed publishes are not waited for */
	void (*drained)(void *arg); /* pp_component_stop()'s or pp_component_close()'s */
	void *drained_arg;
	uint64_t forbidden_logged_at; /* loop time of the last "publish refused" warning, 0: none */
	unsigned forbidden_quiet;     /* refusals since then, not logged */
	struct component_metrics m;
};

static void conn_close(struct conn *k, const char *why);
static void schedule_reconnect(struct pp_component *c);
static void maybe_drained(struct pp_component *c);

/* --- writing --------------------------------------------------------------------------------- */

/* Queue data for k: the stream writes what a turn produced (the replies to the IQs of one read)
 * at its end, in one write. Over MAX_UNSENT the server is not reading: the connection goes. */
static int conn_send(struct conn *k, const char *data, size_t len)
{
	int r;

	if (k->state == CONN_CLOSING)
		return -ESHUTDOWN;
	r = cm_stream_write(k->s, data, len);
	if (r == -ENOBUFS)
		conn_close(k, "the XMPP server does not read our replies");
	return r;
}

static int conn_send_node(struct conn *k, const struct cm_xml_node *n)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = cm_xml_write(&b, n, k->scope);
	if (r == 0)
		r = conn_send(k, b.data, b.len);
	cm_buf_free(&b);
	return r;
}

/* --- replies --------------------------------------------------------------------------------- */

/* An IQ reply: result, or error with a type and a defined condition (and optional text). */
static int build_reply(struct cm_xml_node **out, const char *id, const char *to, const char *from,
                       const char *type, const char *condition, const char *text)
{
	struct cm_xml_node *iq = NULL, *err, *cond;
	int r = cm_xml_node_new(&iq, "iq", CM_XML_NS_COMPONENT);

	r = r ? r : cm_xml_node_set_attr(iq, "type", type ? "error" : "result");
	if (r == 0 && id)
		r = cm_xml_node_set_attr(iq, "id", id);
	if (r == 0 && to)
		r = cm_xml_node_set_attr(iq, "to", to);
	if (r == 0 && from)
		r = cm_xml_node_set_attr(iq, "from", from);
	if (r == 0 && type) {
		r = cm_xml_node_new_child(&err, iq, "error", NULL);
		r = r ? r : cm_xml_node_set_attr(err, "type", type);
		r = r ? r : cm_xml_node_new_child(&cond, err, condition, NS_STANZAS);
		if (r == 0 && text && *text) {
			struct cm_xml_node *t;

			r = cm_xml_node_new_child(&t, err, "text", NS_STANZAS);
			r = r ? r : cm_xml_node_add_text(t, text, strlen(text));
		}
	}
	if (r) {
		cm_xml_node_free(iq);
		return r;
	}
	*out = iq;
	return 0;
}

/* Answer the IQ `req` (to its sender, from its recipient: an address of ours, checked by
 * handle_iq(); the component's domain when the request named none). */
static void reply(struct conn *k, const char *id, const char *req_from, const char *req_to,
                  const char *type, const char *condition, const char *text)
{
	struct cm_xml_node *iq;

	if (!req_to && k->c)
		req_to = k->c->domain;
	if (build_reply(&iq, id, req_from, req_to, type, condition, text) != 0) {
		CM_LOGE("component", "cannot build a reply to IQ %s: out of memory", id ? id : "?");
		return;
	}
	conn_send_node(k, iq);
	cm_xml_node_free(iq);
}

/* --- pending publishes ----------------------------------------------------------------------- */

static void pending_free(struct pending *p)
{
	free(p->id);
	free(p->from);
	free(p->to);
	free(p);
}

static void on_outcome(void *arg, const struct pp_result *r)
{
	struct pending *p = arg;
	struct pp_component *c = p->c;
	const char *type, *condition;

	cm_list_remove(&p->link);
	c->npending--;
	if (c->conn && c->conn->paused && c->npending <= PENDING_HIGH / 2) {
		c->conn->paused = false;
		cm_stream_resume(c->conn->s);
	}
	pp_result_xmpp(r, &type, &condition);
	if (c->conn && c->conn->gen == p->gen && c->conn->state == CONN_READY) {
		reply(c->conn, p->id, p->from, p->to, type, condition, type ? r->reason : NULL);
	} else {
		/* The stream this IQ came on is gone; the XMPP server times the IQ out itself. */
		cm_metrics_inc(c->m.dropped);
		CM_LOGW("component", "IQ %s from %s: %s, but its stream is gone; reply dropped",
		        p->id ? p->id : "?", p->from ? p->from : "?", pp_outcome_name(r->outcome));
	}
	pending_free(p);
	maybe_drained(c);
}

static int dup_attr(char **dst, const struct cm_xml_node *n, const char *name)
{
	const char *v = cm_xml_attr(n, name);

	*dst = NULL;
	if (!v)
		return 0;
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/* --- who may publish ------------------------------------------------------------------------ */

/* The domainpart of jid ([localpart@]domainpart[/resourcepart]): *len bytes at the result. */
static const char *jid_domain(const char *jid, size_t *len)
{
	size_t end = strcspn(jid, "/");
	const char *at = memchr(jid, '@', end);
	const char *d = at ? at + 1 : jid;

	*len = end - (size_t)(d - jid);
	return d;
}

/* Domains compare without regard to ASCII case (RFC 7622 3.2 leaves the rest to IDNA). */
static bool domain_is(const char *d, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(d, want, len) == 0;
}

static bool addressed_to_us(const struct pp_component *c, const char *to)
{
	size_t len;
	const char *d;

	if (!to)
		return true; /* the XMPP server routed it to us */
	d = jid_domain(to, &len);
	return domain_is(d, len, c->domain);
}

/* Why a publish from `from` must be refused, or NULL. XMPP servers publish from their own
 * domain (Prosody) or from the user's bare JID (ejabberd, MongooseIM); a client's stanzas
 * always carry its full JID, stamped by its server (RFC 6120 8.1.2.1), so a publish from a
 * full JID is a user talking to the app server directly. *metric gets the counter to raise. */
static const char *publish_forbidden(struct pp_component *c, const char *from,
                                     struct cm_counter **metric)
{
	const char *d;
	size_t len;

	*metric = c->m.forbidden_domain;
	if (!from || !*from)
		return "a publish must say whom it is from";
	if (strchr(from, '/')) {
		*metric = c->m.forbidden_full_jid;
		return "publishes come from the XMPP server, not from a client's full JID";
	}
	d = jid_domain(from, &len);
	for (size_t i = 0; i < c->nxmpp_domains; i++)
		if (domain_is(d, len, c->xmpp_domains[i]))
			return NULL;
	return "not a domain of the XMPP server this app server serves";
}

/* Refuse a publish with auth/forbidden, count it, and log it (at most once a minute, saying how
 * many went unlogged: a user can send them as fast as her server lets her). */
static void refuse_publish(struct conn *k, const char *id, const char *from, const char *to,
                           struct cm_counter *metric, const char *why)
{
	struct pp_component *c = k->c;
	uint64_t now = uv_now(c->loop->uv);

	cm_metrics_inc(metric);
	if (c->forbidden_logged_at && now - c->forbidden_logged_at < FORBIDDEN_LOG_MS) {
		c->forbidden_quiet++;
		CM_LOGD("component", "IQ %s from %s refused: %s", id ? id : "?", from ? from : "?",
		        why);
	} else {
		char more[160] = "";

		if (c->forbidden_quiet)
			snprintf(more, sizeof(more),
			         "; %u more refused since the last such line (see "
			         "platypus_component_publishes_forbidden_total)",
			         c->forbidden_quiet);
		CM_LOGW("component", "publish %s from %s refused (auth/forbidden): %s%s",
		        id ? id : "?", from ? from : "?", why, more);
		c->forbidden_logged_at = now ? now : 1;
		c->forbidden_quiet = 0;
	}
	reply(k, id, from, to, "auth", "forbidden", why);
}

static void handle_publish(struct conn *k, const struct cm_xml_node *iq)
{
	struct pp_component *c = k->c;
	const char *id = cm_xml_attr(iq, "id"), *from = cm_xml_attr(iq, "from");
	const char *to = cm_xml_attr(iq, "to"), *secret = NULL;
	struct cm_counter *forbidden_metric;
	const char *forbidden;
	struct pp_notif n;
	struct pp_result res;
	struct pending *p;
	char err[256];
	int r;

	cm_metrics_inc(c->m.publish);
	forbidden = publish_forbidden(c, from, &forbidden_metric);
	if (forbidden) {
		refuse_publish(k, id, from, to, forbidden_metric, forbidden);
		return;
	}
	if (c->stopping) {
		reply(k, id, from, to, "wait", "resource-constraint", "platypus is stopping");
		return;
	}
	pp_notif_init(&n);
	r = pp_component__push_parse(iq, &n, &secret, err, sizeof(err));
	if (r == -ENOMEM) {
		reply(k, id, from, to, "wait", "resource-constraint", "out of memory");
		goto out;
	}
	if (r) {
		CM_LOGD("component", "IQ %s from %s refused: %s", id ? id : "?", from ? from : "?",
		        err);
		reply(k, id, from, to, "modify", "bad-request", err);
		goto out;
	}
	if (c->publish_secret.len &&
	    (!secret || strlen(secret) != c->publish_secret.len ||
	     !cm_crypto_equal(secret, c->publish_secret.data, c->publish_secret.len))) {
		refuse_publish(k, id, from, to, c->m.forbidden_secret,
		               "publish-options secret does not match");
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p || dup_attr(&p->id, iq, "id") || dup_attr(&p->from, iq, "from") ||
	    dup_attr(&p->to, iq, "to")) {
		if (p)
			pending_free(p);
		reply(k, id, from, to, "wait", "resource-constraint", "out of memory");
		goto out;
	}
	p->c = c;
	p->gen = k->gen;
	r = pp_dispatch_submit(c->dispatch, &n, on_outcome, p, &res);
	if (r) {
		const char *type, *condition;

		pending_free(p);
		pp_result_xmpp(&res, &type, &condition);
		reply(k, id, from, to, type ? type : "wait",
		      type ? condition : "internal-server-error", res.reason);
		goto out;
	}
	cm_list_insert_tail(&c->pending, &p->link);
	if (++c->npending >= PENDING_HIGH && !k->paused) {
		k->paused = true;
		cm_stream_pause(k->s); /* the rest of this read is still handled */
	}
out:
	pp_notif_free(&n);
}

/* disco#info: what XEP-0357 says an app server is. */
static void handle_disco(struct conn *k, const struct cm_xml_node *iq)
{
	struct cm_xml_node *res, *q, *e;
	int r = build_reply(&res, cm_xml_attr(iq, "id"), cm_xml_attr(iq, "from"),
	                    cm_xml_attr(iq, "to"), NULL, NULL, NULL);

	if (r)
		return;
	r = cm_xml_node_new_child(&q, res, "query", NS_DISCO);
	r = r ? r : cm_xml_node_new_child(&e, q, "identity", NULL);
	r = r ? r : cm_xml_node_set_attr(e, "category", "pubsub");
	r = r ? r : cm_xml_node_set_attr(e, "type", "push");
	r = r ? r : cm_xml_node_set_attr(e, "name", "platypus");
	r = r ? r : cm_xml_node_new_child(&e, q, "feature", NULL);
	r = r ? r : cm_xml_node_set_attr(e, "var", NS_PUSH);
	r = r ? r : cm_xml_node_new_child(&e, q, "feature", NULL);
	r = r ? r : cm_xml_node_set_attr(e, "var", NS_DISCO);
	r = r ? r : cm_xml_node_new_child(&e, q, "feature", NULL);
	r = r ? r : cm_xml_node_set_attr(e, "var", NS_PING);
	if (r == 0)
		conn_send_node(k, res);
	cm_xml_node_free(res);
}

static unsigned element_children(const struct cm_xml_node *n)
{
	unsigned count = 0;

	for (const struct cm_xml_node *ch = n->children; ch; ch = ch->next)
		count += ch->kind == CM_XML_ELEMENT;
	return count;
}

static void handle_iq(struct conn *k, const struct cm_xml_node *iq)
{
	struct pp_component *c = k->c;
	const char *type = cm_xml_attr(iq, "type");
	const char *id = cm_xml_attr(iq, "id"), *from = cm_xml_attr(iq, "from");
	const char *to = cm_xml_attr(iq, "to");

	if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
		return; /* we send no IQs of our own: nothing to match */
	if (!addressed_to_us(c, to)) {
		char text[160];

		/* Not ours to answer for, nor to answer from: the reply comes from our domain, and
		 * a publish here would reach a provider on another app server's behalf. */
		cm_metrics_inc(c->m.misaddressed);
		snprintf(text, sizeof(text), "this app server is %.100s", c->domain);
		reply(k, id, from, NULL, "cancel", "item-not-found", text);
		return;
	}
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		cm_metrics_inc(c->m.other);
		reply(k, id, from, to, "modify", "bad-request",
		      "an IQ's type is get, set, result or error");
		return;
	}
	if (element_children(iq) != 1) {
		/* RFC 6120 8.2.3: exactly one payload, whose namespace says what is asked. */
		cm_metrics_inc(c->m.other);
		reply(k, id, from, to, "modify", "bad-request",
		      "an IQ get or set carries exactly one child element");
		return;
	}
	if (strcmp(type, "set") == 0 && cm_xml_child(iq, "pubsub", NULL)) {
		handle_publish(k, iq);
	} else if (strcmp(type, "get") == 0 && cm_xml_child(iq, "query", NS_DISCO)) {
		cm_metrics_inc(k->c->m.disco);
		handle_disco(k, iq);
	} else if (strcmp(type, "get") == 0 && cm_xml_child(iq, "ping", NS_PING)) {
		cm_metrics_inc(k->c->m.ping);
		reply(k, id, from, to, NULL, NULL, NULL);
	} else {
		cm_metrics_inc(k->c->m.other);
		reply(k, id, from, to, "cancel", "service-unavailable", NULL);
	}
}

/* --- the stream ------------------------------------------------------------------------------ */

/* RFC 6120 4.9: say why before closing: <stream:error> with the condition (and a text), then
 * the end of our stream. conn_close() writes what is queued before it closes. */
static void conn_stream_error(struct conn *k, const char *condition, const char *text)
{
	struct cm_xml_node *e = NULL, *n, *t;
	int r = cm_xml_node_new(&e, "stream:error", CM_XML_NS_STREAM);

	r = r ? r : cm_xml_node_new_child(&n, e, condition, NS_STREAMS);
	if (r == 0 && text && *text && cm_xml_node_new_child(&t, e, "text", NS_STREAMS) == 0 &&
	    cm_xml_node_add_text(t, text, strlen(text)) != 0)
		cm_xml_node_free(t); /* the condition alone says enough */
	if (r == 0)
		r = conn_send_node(k, e);
	cm_xml_node_free(e);
	if (r == 0)
		conn_send(k, "</stream:stream>", 16);
}

static int on_open(void *arg, const struct cm_xml_node *header)
{
	struct conn *k = arg;
	struct pp_component *c = k->c;
	const char *sid = cm_xml_attr(header, "id");
	unsigned char digest[CM_SHA1_LEN];
	struct cm_buf in, out;
	int r;

	if (!sid || !*sid) {
		conn_close(k, "the server's stream header has no id");
		return -EPROTO;
	}
	/* XEP-0114: <handshake>hex(SHA1(stream id + secret))</handshake> */
	cm_buf_init(&in, 0);
	cm_buf_init(&out, 0);
	r = cm_buf_puts(&in, sid);
	r = r ? r : cm_buf_append(&in, c->secret.data, c->secret.len);
	r = r ? r : cm_crypto_sha1(in.data, in.len, digest);
	r = r ? r : cm_buf_puts(&out, "<handshake>");
	r = r ? r : cm_crypto_hex(&out, digest, sizeof(digest));
	r = r ? r : cm_buf_puts(&out, "</handshake>");
	r = r ? r : conn_send(k, out.data, out.len);
	cm_buf_free(&in);
	cm_buf_free(&out);
	if (r)
		return r;
	k->state = CONN_HANDSHAKE;
	return 0;
}

static int on_stanza(void *arg, struct cm_xml_node *st)
{
	struct conn *k = arg;
	struct pp_component *c = k->c;
	int r = 0;

	if (strcmp(st->ns, CM_XML_NS_STREAM) == 0 && strcmp(st->name, "error") == 0) {
		struct cm_xml_node *cond = st->children;

		while (cond && cond->kind != CM_XML_ELEMENT)
			cond = cond->next;
		CM_LOGE("component", "stream error from the XMPP server: %s%s",
		        cond ? cond->name : "(no condition)",
		        k->state == CONN_HANDSHAKE ? " (wrong secret or domain?)" : "");
		conn_close(k, NULL);
		r = -ECONNRESET;
	} else if (k->state == CONN_HANDSHAKE) {
		if (strcmp(st->name, "handshake") != 0) {
			conn_close(k, "expected <handshake/>");
			r = -EPROTO;
		} else {
			k->state = CONN_READY;
			c->backoff = c->backoff_min;
			cm_metrics_inc(c->m.connect_ok);
			cm_metrics_set(c->m.connected, 1);
			CM_LOGI("component", "connected as %s", c->domain);
		}
	} else if (strcmp(st->name, "iq") == 0) {
		handle_iq(k, st);
	} else {
		/* messages and presences to an app server carry nothing for us */
		cm_metrics_inc(c->m.other);
	}
	cm_xml_node_free(st);
	return r;
}

static int on_close(void *arg)
{
	struct conn *k = arg;

	conn_close(k, "the XMPP server closed the stream");
	return -ECONNRESET;
}

/* k is over as the current connection (why == NULL: already logged): count it, and plan the
 * next one unless stopping. */
static void conn_lost(struct conn *k, const char *why)
{
	struct pp_component *c = k->c;

	if (why)
		CM_LOGW("component", "connection to the XMPP server lost: %s", why);
	if (k->state == CONN_READY)
		cm_metrics_set(c->m.connected, 0);
	else
		cm_metrics_inc(c->m.connect_failed);
	k->state = CONN_CLOSING;
	if (c->conn == k) {
		c->conn = NULL;
		if (!c->stopping)
			schedule_reconnect(c);
	}
}

/* Close k: what is queued (a stream error, the end of our stream) still goes out, then the
 * stream ends; its closed event releases k. */
static void conn_close(struct conn *k, const char *why)
{
	if (k->state == CONN_CLOSING)
		return;
	conn_lost(k, why);
	cm_stream_close(k->s, 0);
}

static void on_connected(struct cm_stream *s)
{
	struct conn *k = cm_stream_data(s);
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = cm_buf_puts(&b, "<?xml version='1.0'?>");
	r = r ? r : cm_xml_write_open(&b, k->scope, NULL);
	r = r ? r : conn_send(k, b.data, b.len);
	cm_buf_free(&b);
	if (r && k->state != CONN_CLOSING)
		conn_close(k, "cannot start the stream");
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct conn *k = cm_stream_data(s);
	const char *cond, *detail = NULL;
	int r;

	if (k->state == CONN_CLOSING)
		return;
	r = cm_xml_parser_feed(k->xp, data, len);
	if (r == -EBADMSG || r == -ENOMEM) {
		cond = cm_xml_parser_error(k->xp, &detail);
		CM_LOGE("component", "bad XML from the XMPP server: %s: %s", cond ? cond : "?",
		        detail ? detail : "");
		if (k->state != CONN_CLOSING)
			conn_stream_error(k, cond ? cond : cm_xml_err_internal_server_error,
			                  detail);
		conn_close(k, NULL);
	} else if (r && k->state != CONN_CLOSING) {
		conn_close(k, strerror(r < 0 ? -r : r));
	}
}

static void on_eof(struct cm_stream *s)
{
	conn_close(cm_stream_data(s), "the XMPP server closed the connection");
}

/* The stream is over. When it ended by itself (refused, reset, a failed write), that is the
 * connection lost; either way k goes now. */
static void on_closed(struct cm_stream *s, int err)
{
	struct conn *k = cm_stream_data(s);
	struct pp_component *c = k->c;

	if (k->state != CONN_CLOSING)
		conn_lost(k, strerror(err ? -err : ECONNRESET));
	cm_list_remove(&k->link);
	cm_xml_parser_free(k->xp);
	cm_xml_node_free(k->scope);
	free(k);
	maybe_drained(c);
}

/* Our stream header: <stream:stream xmlns='jabber:component:accept' to='domain'>. */
static int make_scope(struct cm_xml_node **out, const char *domain)
{
	struct cm_xml_node *h = NULL;
	int r = cm_xml_node_new(&h, "stream:stream", CM_XML_NS_STREAM);

	r = r ? r : cm_xml_node_declare_ns(h, NULL, CM_XML_NS_COMPONENT);
	r = r ? r : cm_xml_node_set_attr(h, "to", domain);
	if (r) {
		cm_xml_node_free(h);
		return r;
	}
	*out = h;
	return 0;
}

static void connect_now(struct pp_component *c)
{
	static const struct cm_stream_events sev = {
	    .read = on_read,
	    .eof = on_eof,
	    .connected = on_connected,
	    .closed = on_closed,
	};
	const struct cm_stream_opts so = {
	    .nodelay = true,
	    .high_water = MAX_UNSENT / 4,
	    .max_unsent = MAX_UNSENT,
	    .log_mod = "component",
	};
	struct cm_xml_parser_cfg pc = {
	    .content_ns = CM_XML_NS_COMPONENT,
	    .open_cb = on_open,
	    .stanza_cb = on_stanza,
	    .close_cb = on_close,
	};
	struct conn *k = calloc(1, sizeof(*k));
	int r;

	if (!k) {
		schedule_reconnect(c);
		return;
	}
	k->c = c;
	k->gen = ++c->gen;
	k->state = CONN_CONNECTING;
	pc.arg = k;
	r = cm_xml_parser_alloc(&k->xp, &pc);
	r = r ? r : make_scope(&k->scope, c->domain);
	r = r ? r : cm_stream_connect(&k->s, c->loop, c->host, c->port, &so, &sev, k);
	if (r) {
		CM_LOGW("component", "cannot connect to the XMPP server: %s", strerror(-r));
		cm_metrics_inc(c->m.connect_failed);
		cm_xml_parser_free(k->xp);
		cm_xml_node_free(k->scope);
		free(k);
		schedule_reconnect(c);
		return;
	}
	cm_list_insert_tail(&c->conns, &k->link);
	c->conn = k;
}

static void on_retry(struct cm_loop_timer *t)
{
	connect_now(cm_list_entry(t, struct pp_component, retry));
}

/* Exponential backoff with jitter, so that a restarted XMPP server is not hit by every app
 * server at the same instant. */
static void schedule_reconnect(struct pp_component *c)
{
	uint64_t delay = c->backoff;
	unsigned rnd = 0;

	cm_crypto_random(&rnd, sizeof(rnd));
	delay = delay / 2 + (delay ? rnd % (delay / 2 + 1) : 0);
	c->backoff = c->backoff * 2 > c->backoff_max ? c->backoff_max : c->backoff * 2;
	CM_LOGI("component", "reconnecting in %llu ms", (unsigned long long)delay);
	cm_loop_timer_start(c->loop, &c->retry, delay);
}

/* --- life cycle ------------------------------------------------------------------------------ */

static int copy_secret(struct cm_buf *b, const unsigned char *s, size_t len)
{
	struct cm_buf nb;
	int r;

	cm_buf_init(&nb, 0);
	r = len ? cm_buf_append(&nb, s, len) : 0;
	if (r)
		return r;
	if (b->data)
		memset(b->data, 0, b->cap);
	cm_buf_free(b);
	*b = nb;
	return 0;
}

static void free_domains(struct pp_component *c)
{
	for (size_t i = 0; i < c->nxmpp_domains; i++)
		free(c->xmpp_domains[i]);
	free(c->xmpp_domains);
	c->xmpp_domains = NULL;
	c->nxmpp_domains = 0;
}

/* c->xmpp_domains from the configuration, or the parent of c->domain. 0, -EINVAL, -ENOMEM. */
static int copy_domains(struct pp_component *c, const struct pp_component_config *cfg)
{
	const char *parent = strchr(c->domain, '.');
	size_t n = cfg->xmpp_domains ? cfg->nxmpp_domains : 0;

	if (!n && (!parent || !parent[1]))
		return -EINVAL;
	c->xmpp_domains = calloc(n ? n : 1, sizeof(char *));
	if (!c->xmpp_domains)
		return -ENOMEM;
	for (size_t i = 0; i < (n ? n : 1); i++) {
		c->xmpp_domains[i] = strdup(n ? cfg->xmpp_domains[i] : parent + 1);
		if (!c->xmpp_domains[i])
			return -ENOMEM;
		c->nxmpp_domains++;
	}
	return 0;
}

#define IQS_DEF(member, kind)                                                                      \
	CM_METRIC_COUNTER_DEF(struct component_metrics, member, "platypus_component_iqs_total",    \
	                      "IQs received over XEP-0114 by kind", "kind", kind)
#define CONNECTS_DEF(member, result)                                                               \
	CM_METRIC_COUNTER_DEF(struct component_metrics, member,                                    \
	                      "platypus_component_connects_total",                                 \
	                      "XEP-0114 connection attempts by result", "result", result)
#define FORBIDDEN_DEF(member, why)                                                                 \
	CM_METRIC_COUNTER_DEF(struct component_metrics, member,                                    \
	                      "platypus_component_publishes_forbidden_total",                      \
	                      "publishes refused with auth/forbidden, by reason", "reason", why)

static const struct cm_metric_def component_metric_defs[] = {
    CM_METRIC_GAUGE_DEF(struct component_metrics, connected, "platypus_component_connected",
                        "1 while the XEP-0114 stream is authenticated"),
    CONNECTS_DEF(connect_ok, "ok"),
    CONNECTS_DEF(connect_failed, "failed"),
    IQS_DEF(publish, "publish"),
    IQS_DEF(disco, "disco"),
    IQS_DEF(ping, "ping"),
    IQS_DEF(other, "other"),
    IQS_DEF(misaddressed, "misaddressed"),
    FORBIDDEN_DEF(forbidden_full_jid, "full_jid"),
    FORBIDDEN_DEF(forbidden_domain, "domain"),
    FORBIDDEN_DEF(forbidden_secret, "secret"),
    CM_METRIC_COUNTER_DEF(struct component_metrics, dropped,
                          "platypus_component_replies_dropped_total",
                          "Outcomes whose stream was gone before the reply"),
};

/* The server's address as a literal cm_stream_connect() takes without resolving. */
static int server_literal(struct pp_component *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		c->port = ntohs(a->sin_port);
		return uv_ip4_name(a, c->host, sizeof(c->host)) ? -EINVAL : 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		c->port = ntohs(a->sin6_port);
		return uv_ip6_name(a, c->host, sizeof(c->host)) ? -EINVAL : 0;
	}
	return -EINVAL;
}

static void component_free(struct pp_component *c)
{
	copy_secret(&c->secret, NULL, 0);
	copy_secret(&c->publish_secret, NULL, 0);
	free_domains(c);
	free(c->domain);
	free(c);
}

int pp_component_alloc(struct pp_component **out, struct cm_loop *l, struct pp_dispatch *d,
                       const struct pp_component_config *cfg)
{
	struct pp_component *c;
	char err[CM_ERR_MAX];
	int r = 0;

	*out = NULL;
	if (!cfg->server || !cfg->domain || !*cfg->domain || !cfg->secret_len)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->dispatch = d;
	cm_list_init(&c->conns);
	cm_list_init(&c->pending);
	cm_loop_timer_init(&c->retry, on_retry);
	cm_buf_init(&c->secret, 0);
	cm_buf_init(&c->publish_secret, 0);
	c->backoff_min = cfg->reconnect_min_ms ? cfg->reconnect_min_ms : 500;
	c->backoff_max = cfg->reconnect_max_ms ? cfg->reconnect_max_ms : 30000;
	c->backoff = c->backoff_min;
	c->domain = strdup(cfg->domain);
	r = c->domain ? server_literal(c, cfg->server) : -ENOMEM;
	r = r ? r : copy_domains(c, cfg);
	if (r == 0 && pp_component_set_secrets(c, cfg->secret, cfg->secret_len, cfg->publish_secret,
	                                       cfg->publish_secret_len) != 0)
		r = -ENOMEM;
	if (r == 0 && cfg->metrics) {
		r = cm_metrics_register(cfg->metrics, &c->m, component_metric_defs,
		                        sizeof(component_metric_defs) /
		                            sizeof(component_metric_defs[0]),
		                        err, sizeof(err));
		if (r)
			CM_LOGE("component", "%s", err);
	}
	if (r) {
		component_free(c);
		return r;
	}
	*out = c;
	connect_now(c);
	return 0;
}

int pp_component_set_secrets(struct pp_component *c, const unsigned char *secret, size_t secret_len,
                             const unsigned char *publish_secret, size_t publish_secret_len)
{
	struct cm_buf a, b;

	cm_buf_init(&a, 0);
	cm_buf_init(&b, 0);
	if (copy_secret(&a, secret, secret_len) ||
	    copy_secret(&b, publish_secret, publish_secret_len)) {
		cm_buf_free(&a);
		cm_buf_free(&b);
		return -ENOMEM;
	}
	copy_secret(&c->secret, NULL, 0);
	copy_secret(&c->publish_secret, NULL, 0);
	c->secret = a;
	c->publish_secret = b;
	return 0;
}

int pp_component_connected(const struct pp_component *c)
{
	return c->conn && c->conn->state == CONN_READY;
}

/* When stopping: once every publish is answered, the stream ends politely; once no stream is
 * left, drained (maybe from within a call of this module: the caller keeps away from c). */
static void maybe_drained(struct pp_component *c)
{
	void (*cb)(void *arg) = c->drained;

	if (!c->stopping || (c->npending && !c->closing))
		return;
	if (c->conn) {
		if (c->conn->state == CONN_READY)
			conn_send(c->conn, "</stream:stream>", 16);
		conn_close(c->conn, NULL); /* clears c->conn */
	}
	if (!cm_list_empty(&c->conns) || !cb)
		return;
	c->drained = NULL;
	cb(c->drained_arg);
}

void pp_component_stop(struct pp_component *c, void (*drained)(void *arg), void *arg)
{
	c->stopping = true;
	c->drained = drained;
	c->drained_arg = arg;
	cm_loop_timer_stop(c->loop, &c->retry);
	maybe_drained(c);
}

void pp_component_close(struct pp_component *c, void (*done)(void *arg), void *arg)
{
	struct cm_list *n;

	c->stopping = true;
	c->closing = true;
	c->drained = done;
	c->drained_arg = arg;
	cm_loop_timer_stop(c->loop, &c->retry);
	if (c->conn)
		conn_lost(c->conn, NULL);
	/* Publishes still owed are answered into the void (counted as dropped). */
	cm_list_foreach(n, &c->conns)
	{
		cm_stream_abort(cm_list_entry(n, struct conn, link)->s, -ECANCELED, false);
	}
	if (cm_list_empty(&c->conns) && done) {
		c->drained = NULL;
		done(arg);
	}
}

void pp_component_free(struct pp_component *c)
{
	if (!c)
		return;
	/* Outcomes still owed hold a pointer to c: by contract the dispatcher has drained before
	 * this. Should it not have, keep c alive (a leak) rather than let an outcome reach freed
	 * memory, and say so; the same for a stream still open. */
	if (c->npending || !cm_list_empty(&c->conns)) {
		CM_LOGE("component", "freed with %u outcomes still owed and %s; keeping its memory",
		        c->npending, cm_list_empty(&c->conns) ? "no stream" : "its stream open");
		return;
	}
	cm_loop_timer_stop(c->loop, &c->retry);
	component_free(c);
}
