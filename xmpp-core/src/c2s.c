/* c2s.c - client streams (c2s.h): header and features, STARTTLS, the SASL elements, the move to
 * the user's home shard, binding, the shaper, keepalive and stream errors. */
#include "c2s_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "cm/ws.h"
#include "csi.h"
#include "iq.h"
#include "router.h"
#include "presence.h"
#include "register.h"
#include "sasl.h"
#include "sasl2.h"
#include "server.h"
#include "session.h"
#include "sm.h"
#include "stanza.h"
#include "ticket.h"

#define NS_TLS        "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL       "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND       "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION    "urn:ietf:params:xml:ns:xmpp-session"
#define NS_PING       "urn:xmpp:ping"
#define STOP          (-EINTR) /* a parser callback asks feed to stop: the rest of the input goes */
#define MOVE_RETRY_MS 50       /* a connection that cannot move yet tries again after this */
#define MOVE_TRIES    100      /* ... this many times at most */

static const struct cm_stream_events events;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const struct xc_config *cfg_of(const struct xc_c2s *c)
{
	return c->sh->srv->cfg;
}

/* --- the transport: a TCP stream (with TLS or not), or a WebSocket connection ------------ */

static bool live(const struct xc_c2s *c)
{
	return c->s || c->ws;
}

struct cm_stream *xc_c2s_stream(const struct xc_c2s *c)
{
	return c->ws ? cm_ws_stream(c->ws) : c->s;
}

const char *xc_c2s_peer(const struct xc_c2s *c)
{
	if (c->ws)
		return cm_ws_peer_name(c->ws);
	return c->s ? cm_stream_peer_name(c->s) : "?";
}

bool xc_c2s_secured(const struct xc_c2s *c)
{
	if (c->ws) /* websocket.tls false: a TLS proxy in front, on loopback */
		return cm_ws_secured(c->ws) || !cfg_of(c)->websocket.tls;
	return c->s && cm_stream_secured(c->s);
}

void xc_c2s_timer(struct xc_c2s *c, uint64_t ms)
{
	if (c->ws)
		cm_ws_timer(c->ws, ms);
	else if (c->s)
		cm_stream_timer(c->s, ms);
}

/* About what an idle session gives back when it is trimmed (expat's state and buffers). */
#define TRIM_FREED (12 * 1024)

void xc_c2s_idle_timer(struct xc_c2s *c)
{
	const struct xc_c2s_config *cc = &cfg_of(c)->c2s;

	c->trim_due = cc->trim_after && cc->trim_after < cc->idle_timeout;
	xc_c2s_timer(c, c->trim_due ? cc->trim_after : cc->idle_timeout);
}

/* Quiet for c2s.trim_after: what the connection keeps for reuse goes back (the parser's expat
 * state, ~10 KB of heap; buffers' capacity; TLS's BIO and buffers). Whatever is not at rest
 * stays. */
static void trim(struct xc_c2s *c)
{
	struct cm_stream *s = c->ws ? cm_ws_stream(c->ws) : c->s;
	bool parked = cm_xml_parser_parked(c->xp);

	(void)cm_xml_parser_park(c->xp); /* -EBUSY: a stanza half read, kept */
	if (s)
		cm_stream_trim(s);
	if (!parked && cm_xml_parser_parked(c->xp)) {
		cm_metrics_inc(c->sh->srv->m.trims);
		cm_loop_freed(c->sh->loop, TRIM_FREED);
	}
}

static void t_pause(struct xc_c2s *c)
{
	if (c->ws)
		cm_ws_pause(c->ws);
	else if (c->s)
		cm_stream_pause(c->s);
}

static void t_resume(struct xc_c2s *c)
{
	if (c->ws)
		cm_ws_resume(c->ws);
	else if (c->s)
		cm_stream_resume(c->s);
}

/* Graceful: what is queued goes out first. */
static void t_close(struct xc_c2s *c)
{
	if (c->ws) {
		if (cm_ws_close(c->ws, CM_WS_NORMAL, NULL) != 0)
			cm_ws_abort(c->ws, -ECONNRESET);
	} else if (c->s) {
		cm_stream_close(c->s, 0);
	}
}

static void t_abort(struct xc_c2s *c, int err)
{
	if (c->ws)
		cm_ws_abort(c->ws, err);
	else if (c->s)
		cm_stream_abort(c->s, err, false);
}

/* --- output ------------------------------------------------------------------------------- */

int xc_c2s_send_raw(struct xc_c2s *c, const char *xml, size_t len)
{
	int r;

	if (!live(c) || c->st == XC_C2S_CLOSING)
		return -ESHUTDOWN;
	/* over WebSocket each call is one message, one whole element (RFC 7395 3.3.3) */
	r = c->ws ? cm_ws_send_text(c->ws, xml, len) : cm_stream_write(c->s, xml, len);
	if (r == -ENOBUFS || r == -EMSGSIZE) {
		/* a client that does not read is cut, not buffered without end */
		cm_metrics_inc(c->sh->srv->m.slow_readers_cut);
		CM_LOGI("c2s", "%s: does not read what it is sent; closing",
		        c->jid.s ? c->jid.s : xc_c2s_peer(c));
		c->st = XC_C2S_CLOSING;
		t_abort(c, -ENOBUFS);
	}
	return r;
}

/* Bytes reserved for one serialised stanza: most chat stanzas fit, and glibc keeps blocks up to
 * this size in its per-thread cache. */
#define WRITE_RESERVE 1000

int xc_c2s__write(struct xc_c2s *c, const struct cm_xml_node *stanza)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	/* room for a usual stanza at once, rather than growing through 64, 128, 256 and 512
	 * bytes; in a stream, in its scope; over WebSocket each element declares its namespaces */
	r = cm_buf_reserve(&b, WRITE_RESERVE);
	if (!r)
		r = cm_xml_write(&b, stanza, c->ws ? NULL : c->sh->srv->scope);
	if (!r)
		r = xc_c2s_send_raw(c, b.data, b.len);
	cm_buf_free(&b);
	return r;
}

int xc_c2s__deliver(struct xc_c2s *c, const struct cm_xml_node *stanza)
{
	/* with stream management, a stanza is kept until the client acknowledges it */
	if (c->sm && xc_stanza_kind(stanza) != XC_OTHER)
		return xc_sm_send(c, stanza);
	return xc_c2s__write(c, stanza);
}

int xc_c2s_send(struct xc_c2s *c, const struct cm_xml_node *stanza)
{
	/* an inactive client (XEP-0352) gets what can wait later; stream management counts a
	 * stanza only when it leaves */
	if (c->csi && xc_stanza_kind(stanza) != XC_OTHER)
		return xc_csi_send(c, stanza);
	return xc_c2s__deliver(c, stanza);
}

/* Our <stream:stream>, once per stream. */
static int send_header(struct xc_c2s *c)
{
	char buf[512];
	int n;

	if (c->header_sent)
		return 0;
	c->header_sent = true;
	xc_new_id(c->sh->srv, c->id);
	if (c->ws)
		return xc_c2s__ws_header(c);
	n = snprintf(buf, sizeof(buf),
	             "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	             "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s' "
	             "version='1.0' xml:lang='en'>",
	             c->id, c->host ? c->host : cfg_of(c)->hosts.v[0]);
	return xc_c2s_send_raw(c, buf, (size_t)n);
}

void xc_c2s__stream_error_extra(struct xc_c2s *c, const char *condition, const char *text,
                                const char *extra)
{
	struct cm_buf b;

	/* a session cut for not answering may come back (XEP-0198); after any other error, not */
	if (strcmp(condition, "connection-timeout") != 0)
		xc_sm_ended(c);
	if (c->st == XC_C2S_CLOSING || !live(c))
		return;
	cm_metrics_inc(c->sh->srv->m.stream_errors);
	CM_LOGD("c2s", "%s: stream error %s%s%s", c->jid.s ? c->jid.s : xc_c2s_peer(c), condition,
	        text ? ": " : "", text ? text : "");
	send_header(c);
	if (c->ws) {
		xc_c2s__ws_error(c, condition, text);
		if (c->st != XC_C2S_CLOSING && live(c)) {
			c->st = XC_C2S_CLOSING;
			t_close(c);
		}
		return;
	}
	cm_buf_init(&b, 0);
	if (text && strcmp(condition, "see-other-host") == 0) {
		/* RFC 6120 4.9.3.19: the element holds where to go */
		if (cm_buf_printf(&b, "<stream:error><see-other-host xmlns='%s'>", XC_NS_STREAMS) ==
		        0 &&
		    cm_xml_escape_text(&b, text, strlen(text)) == 0 &&
		    cm_buf_puts(&b, "</see-other-host></stream:error></stream:stream>") == 0)
			xc_c2s_send_raw(c, b.data, b.len);
	} else if (cm_buf_printf(&b, "<stream:error><%s xmlns='%s'/>", condition, XC_NS_STREAMS) ==
	               0 &&
	           (!text || (cm_buf_printf(&b, "<text xmlns='%s'>", XC_NS_STREAMS) == 0 &&
	                      cm_xml_escape_text(&b, text, strlen(text)) == 0 &&
	                      cm_buf_puts(&b, "</text>") == 0)) &&
	           (!extra || cm_buf_puts(&b, extra) == 0) &&
	           cm_buf_puts(&b, "</stream:error></stream:stream>") == 0) {
		xc_c2s_send_raw(c, b.data, b.len);
	}
	cm_buf_free(&b);
	if (c->st != XC_C2S_CLOSING && live(c)) {
		c->st = XC_C2S_CLOSING;
		t_close(c);
	}
}

void xc_c2s_stream_error(struct xc_c2s *c, const char *condition, const char *text)
{
	xc_c2s__stream_error_extra(c, condition, text, NULL);
}

/* --- features ------------------------------------------------------------------------------ */

static void send_features(struct xc_c2s *c)
{
	struct cm_xml_node *f = NULL, *n, *x;
	bool secure = xc_c2s_secured(c);
	int r = cm_xml_node_new(&f, "stream:features", CM_XML_NS_STREAM);

	if (!r && c->st == XC_C2S_BOUND) {
		/* after a SASL2 login that bound or resumed (XEP-0388: features, no restart) */
		if (!c->sm && cfg_of(c)->sm.enabled)
			r = cm_xml_node_new_child(NULL, f, "sm", XC_NS_SM);
		if (!r && cfg_of(c)->csi.enabled)
			r = cm_xml_node_new_child(NULL, f, "csi", XC_NS_CSI);
	} else if (!r && c->st == XC_C2S_AUTHED) {
		r = cm_xml_node_new_child(NULL, f, "bind", NS_BIND);
		r = r ? r : cm_xml_node_new_child(&n, f, "session", NS_SESSION);
		r = r ? r : cm_xml_node_new_child(NULL, n, "optional", NULL);
		/* RFC 6121 2.6 and 3.4: roster versions and subscription pre-approval */
		r = r ? r : cm_xml_node_new_child(NULL, f, "ver", "urn:xmpp:features:rosterver");
		r = r ? r : cm_xml_node_new_child(NULL, f, "sub", "urn:xmpp:features:pre-approval");
		/* XEP-0198: <enable/> after binding, or <resume/> instead */
		if (!r && cfg_of(c)->sm.enabled)
			r = cm_xml_node_new_child(NULL, f, "sm", XC_NS_SM);
		/* XEP-0352: <active/> and <inactive/> from now on */
		if (!r && cfg_of(c)->csi.enabled)
			r = cm_xml_node_new_child(NULL, f, "csi", XC_NS_CSI);
	} else if (!r) {
		if (!secure && c->sh->srv->tls && !c->ws) {
			r = cm_xml_node_new_child(&n, f, "starttls", NS_TLS);
			if (!r && cfg_of(c)->c2s.require_tls)
				r = cm_xml_node_new_child(&x, n, "required", NULL);
		}
		if (!r && (secure || !cfg_of(c)->c2s.require_tls || !c->sh->srv->tls)) {
			r = xc_sasl_features(c, f);
			r = r ? r : xc_sasl2_features(c, f);
		}
		if (!r && xc_register_offered(c))
			r = cm_xml_node_new_child(NULL, f, "register", XC_NS_REGISTER_FEAT);
	}
	/* XEP-0115: what the server can do, as a hash a client may have cached */
	if (!r && c->st != XC_C2S_HEADER) {
		r = cm_xml_node_new_child(&n, f, "c", XC_NS_CAPS);
		r = r ? r : cm_xml_node_set_attr(n, "hash", "sha-1");
		r = r ? r : cm_xml_node_set_attr(n, "node", XC_CAPS_NODE);
		r = r ? r : cm_xml_node_set_attr(n, "ver", c->sh->srv->caps_ver);
	}
	if (!r)
		r = xc_c2s_send(c, f);
	cm_xml_node_free(f);
	if (r == -ENOMEM)
		xc_c2s_stream_error(c, "internal-server-error", NULL);
}

void xc_c2s__features(struct xc_c2s *c)
{
	send_features(c);
}

/* --- the stream header ---------------------------------------------------------------------- */

static int on_open(void *arg, const struct cm_xml_node *h)
{
	struct xc_c2s *c = arg;
	const char *to = cm_xml_attr(h, "to"), *version = cm_xml_attr(h, "version");
	const char *host = to ? xc_local_host(c->sh->srv, to, strlen(to)) : NULL;

	if (c->host && host && host != c->host) {
		/* a restarted stream must be for the same host */
		xc_c2s_stream_error(c, "host-unknown", "the stream changed its host");
		return STOP;
	}
	if (!c->host)
		c->host = host;
	if (!host) {
		xc_c2s_stream_error(c, "host-unknown", to ? NULL : "no 'to' in the stream header");
		return STOP;
	}
	if (!version || strncmp(version, "1.", 2) != 0) {
		xc_c2s_stream_error(c, "unsupported-version", "XMPP 1.0 streams only");
		return STOP;
	}
	if (send_header(c) != 0)
		return STOP;
	if (c->st == XC_C2S_HEADER)
		c->st = XC_C2S_OPEN;
	send_features(c);
	return 0;
}

static int on_close(void *arg)
{
	struct xc_c2s *c = arg;

	/* the client ends its stream: end ours, then the connection; the session ends with it */
	xc_sm_ended(c);
	if (c->st != XC_C2S_CLOSING && live(c)) {
		xc_csi_flush(c); /* what was held for it goes before our end */
		if (c->ws)
			xc_c2s__ws_end(c);
		else
			xc_c2s_send_raw(c, "</stream:stream>", 16);
		c->st = XC_C2S_CLOSING;
		t_close(c);
	}
	return STOP;
}

static void on_parse_error(void *arg, const char *condition, const char *detail)
{
	xc_c2s_stream_error(arg, condition, detail);
}

/* --- STARTTLS and SASL ----------------------------------------------------------------------- */

static int starttls(struct xc_c2s *c, const struct cm_xml_node *st)
{
	int r;

	static const char failure[] = "<failure xmlns='" NS_TLS "'/></stream:stream>";
	static const char proceed[] = "<proceed xmlns='" NS_TLS "'/>";

	if (c->ws) {
		/* over WebSocket, TLS is the HTTP connection's business (RFC 7395 3.6) */
		xc_c2s_stream_error(c, "policy-violation", "no STARTTLS over WebSocket");
		return STOP;
	}
	if (strcmp(st->name, "starttls") != 0 || cm_stream_is_tls(c->s) || !c->sh->srv->tls) {
		xc_c2s_send_raw(c, failure, sizeof(failure) - 1);
		c->st = XC_C2S_CLOSING;
		cm_stream_close(c->s, 0);
		return STOP;
	}
	xc_c2s_send_raw(c, proceed, sizeof(proceed) - 1);
	r = cm_stream_starttls(c->s, c->sh->srv->tls, NULL);
	if (r) {
		c->st = XC_C2S_CLOSING;
		cm_stream_abort(c->s, r, false);
		return STOP;
	}
	/* a new stream over TLS; what followed <starttls/> in clear is dropped (RFC 6120 5.4.3.3)
	 */
	c->st = XC_C2S_HEADER;
	c->header_sent = false;
	c->starttls_pending = true;
	return STOP;
}

static int sasl_element(struct xc_c2s *c, const struct cm_xml_node *st)
{
	if (cfg_of(c)->c2s.require_tls && c->sh->srv->tls && !xc_c2s_secured(c)) {
		xc_c2s__sasl_failure(c, "encryption-required", NULL);
		return 0;
	}
	if (c->sasl2) { /* back to RFC 6120 SASL after a SASL2 attempt */
		xc_sasl2_free(c->sasl2);
		c->sasl2 = NULL;
	}
	if (strcmp(st->name, "auth") == 0)
		xc_sasl_auth(c, st);
	else if (strcmp(st->name, "response") == 0)
		xc_sasl_response(c, st);
	else if (strcmp(st->name, "abort") == 0)
		xc_sasl_abort(c);
	else
		xc_c2s_stream_error(c, "unsupported-stanza-type", NULL);
	/* after <success/> the stream restarts: nothing more of this input is parsed here */
	return c->st == XC_C2S_OPEN ? 0 : STOP;
}

/* SASL2 (sasl2.c): no restart after success, so the parser goes on */
static int sasl2_element(struct xc_c2s *c, const struct cm_xml_node *st)
{
	if (cfg_of(c)->c2s.require_tls && c->sh->srv->tls && !xc_c2s_secured(c)) {
		xc_sasl2_failure(c, "encryption-required", "STARTTLS first");
		return 0;
	}
	return xc_sasl2_element(c, st) != 0 ? STOP : 0;
}

static void send_sasl(struct xc_c2s *c, const char *name, const void *data, size_t len,
                      bool empty_as_eq)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (cm_buf_printf(&b, "<%s xmlns='%s'>", name, NS_SASL) == 0 &&
	    (len ? cm_crypto_b64_encode(&b, data, len, CM_B64_STD)
	         : (empty_as_eq ? cm_buf_puts(&b, "=") : 0)) == 0 &&
	    cm_buf_printf(&b, "</%s>", name) == 0)
		xc_c2s_send_raw(c, b.data, b.len);
	cm_buf_free(&b);
}

void xc_c2s__sasl_challenge(struct xc_c2s *c, const void *data, size_t len)
{
	if (c->sasl2) {
		xc_sasl2_challenge(c, data, len);
		return;
	}
	send_sasl(c, "challenge", data, len, false);
}

void xc_c2s__sasl_failure(struct xc_c2s *c, const char *condition, const char *text)
{
	char buf[256];
	int n;

	if (c->sasl2) {
		xc_sasl2_failure(c, condition, text);
		return;
	}
	n = snprintf(buf, sizeof(buf), "<failure xmlns='%s'><%s/></failure>", NS_SASL, condition);
	xc_c2s_send_raw(c, buf, (size_t)n);
}

static void post_move(struct xc_c2s *c);

void xc_c2s__sasl_success(struct xc_c2s *c, const char *user, const void *data, size_t len)
{
	if (c->sasl2) {
		xc_sasl2_success(c, (char *)user, data, len);
		return;
	}
	send_sasl(c, "success", data, len, false);
	/* the client restarts its stream (RFC 6120 6.4.6). From inside the parser's stanza callback
	 * (SCRAM's last step) sasl_element() stops the feed and xc_c2s__input() resets the parser
	 * once it has returned; from a store answer (PLAIN) it is reset here. */
	if (!cm_xml_parser_feeding(c->xp) && cm_xml_parser_reset(c->xp) != 0) {
		free((char *)user);
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		return;
	}
	free(c->user);
	c->user = (char *)user;
	xc_sasl_free(c->sasl);
	c->sasl = NULL;
	c->st = XC_C2S_AUTHED;
	c->header_sent = false;
	c->ws_open = false;
	CM_LOGD("c2s", "%s: authenticated as %s@%s", xc_c2s_peer(c), c->user, c->host);
	post_move(c);
}

void xc_c2s__authed(struct xc_c2s *c, char *user)
{
	/* SASL2: the stream goes on without a restart (the parser keeps its state) */
	free(c->user);
	c->user = user;
	c->st = XC_C2S_AUTHED;
	CM_LOGD("c2s", "%s: authenticated as %s@%s (SASL2)", xc_c2s_peer(c), c->user, c->host);
	post_move(c);
}

/* --- moving to the user's home shard -----------------------------------------------------------
 */

struct move_msg {
	struct cm_msg m;
	struct xc_c2s *c;
	struct cm_stream_parcel *parcel; /* a TCP connection */
	struct cm_ws_parcel *ws_parcel;  /* a WebSocket one */
};

static void conn_free(struct xc_c2s *c);

static void on_moved(struct cm_loop *l, struct cm_msg *m)
{
	struct move_msg *mm = cm_list_entry(m, struct move_msg, m);
	struct xc_c2s *c = mm->c;
	struct xc_shard *sh = l->data;
	int r;

	c->sh = sh;
	c->moving = false;
	cm_list_insert_tail(&sh->conns, &c->link);
	if (sh->stopping || cm_loop_stopping(l)) {
		cm_stream_parcel_free(mm->parcel);
		cm_ws_parcel_free(mm->ws_parcel);
		free(mm);
		conn_free(c);
		return;
	}
	r = mm->ws_parcel
	        ? cm_ws_import(&c->ws, l, mm->ws_parcel, &sh->srv->ws_cfg, xc_c2s__ws_events(), c)
	        : cm_stream_import(&c->s, l, mm->parcel, &events, c);
	free(mm);
	if (r) {
		CM_LOGW("c2s", "%s@%s: cannot continue on shard %u: %s", c->user, c->host, sh->idx,
		        strerror(-r));
		conn_free(c);
		return;
	}
	xc_c2s_timer(c, cfg_of(c)->c2s.login_timeout);
	xc_sasl2_arrived(c); /* a SASL2 login finishes at home */
}

/* After <success/>: go home (or stay, when this is home). Reading waits meanwhile: nothing of
 * the restarted stream may be handled on a shard that is not the user's. */
static void post_move(struct xc_c2s *c)
{
	struct xc_server *srv = c->sh->srv;
	char bare[XC_JID_PART_MAX * 2 + 2];
	int n = snprintf(bare, sizeof(bare), "%s@%s", c->user, c->host);
	unsigned home = xc_home(srv, bare, (size_t)n);
	struct move_msg *mm;
	int r;

	if (home == c->sh->idx) {
		if (c->moving) {
			c->moving = false;
			t_resume(c);
		}
		xc_sasl2_arrived(c);
		return;
	}
	if (!c->moving) {
		c->moving = true;
		c->move_tries = 0;
		t_pause(c);
	}
	if (cm_xml_parser_feeding(c->xp)) {
		/* authenticated by a stanza the parser is still delivering (SCRAM's last step,
		 * SASL2): the home shard would feed the parser while this one is still inside it.
		 * The timer moves the connection once this read is over. */
		xc_c2s_timer(c, 1);
		return;
	}
	mm = calloc(1, sizeof(*mm));
	if (!mm) {
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		return;
	}
	r = c->ws ? cm_ws_export(c->ws, &mm->ws_parcel) : cm_stream_export(c->s, &mm->parcel);
	if (r == -EAGAIN && ++c->move_tries < MOVE_TRIES) {
		/* the <success/> is still on its way: the timer tries again */
		free(mm);
		xc_c2s_timer(c, MOVE_RETRY_MS);
		return;
	}
	if (r) {
		free(mm);
		xc_c2s_stream_error(c, "internal-server-error", "the session could not move");
		return;
	}
	c->s = NULL;
	c->ws = NULL;
	cm_list_remove(&c->link);
	mm->c = c;
	mm->m.fn = on_moved;
	if (cm_loop_post(srv->shards[home]->loop, &mm->m) != 0) {
		cm_stream_parcel_free(mm->parcel);
		cm_ws_parcel_free(mm->ws_parcel);
		free(mm);
		cm_list_insert_tail(&c->sh->conns, &c->link);
		conn_free(c);
	}
}

/* --- stanzas --------------------------------------------------------------------------------- */

static void bad_iq(struct xc_c2s *c, const struct cm_xml_node *iq, const char *cond)
{
	struct cm_xml_node *e = xc_stanza_error(iq, "modify", cond, NULL, c->host);

	if (e) {
		xc_c2s_send(c, e);
		cm_xml_node_free(e);
	}
}

/* AUTHED: only <iq/> to bind (and the legacy session). */
static int authed_stanza(struct xc_c2s *c, struct cm_xml_node *st)
{
	const char *type = cm_xml_attr(st, "type");
	struct cm_xml_node *q = st->children;

	if (xc_stanza_kind(st) != XC_IQ || !type || strcmp(type, "set") != 0 || !q ||
	    !cm_xml_child(st, "bind", NS_BIND)) {
		if (xc_stanza_kind(st) == XC_IQ && cm_xml_child(st, "session", NS_SESSION)) {
			bad_iq(c, st, "not-allowed"); /* before a resource is bound */
			return 0;
		}
		xc_c2s_stream_error(c, "not-authorized", "bind a resource first");
		return STOP;
	}
	xc_session_bind(c, st);
	return 0;
}

/* BOUND: the stanza goes to the router with the session's full JID stamped on it. */
static int bound_stanza(struct xc_c2s *c, struct cm_xml_node *st, enum xc_kind kind)
{
	const char *from = cm_xml_attr(st, "from");

	if (kind == XC_OTHER) {
		xc_c2s_stream_error(c, "unsupported-stanza-type", st->name);
		cm_xml_node_free(st);
		return STOP;
	}
	/* RFC 6120 8.1.2.1: a 'from' that is not the session's own is a stream error */
	if (from) {
		struct xc_jid f;
		bool ok = xc_jid_parse(&f, from, strlen(from), NULL, 0) == 0 &&
		          (xc_jid_equal(&f, &c->jid) ||
		           (xc_jid_is_bare(&f) && xc_jid_bare_equal(&f, &c->jid)));

		xc_jid_free(&f);
		if (!ok) {
			xc_c2s_stream_error(c, "invalid-from", NULL);
			cm_xml_node_free(st);
			return STOP;
		}
	}
	if (cm_xml_node_set_attr(st, "from", c->jid.s) != 0) {
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		cm_xml_node_free(st);
		return STOP;
	}
	cm_metrics_inc(kind == XC_MESSAGE    ? c->sh->srv->m.in_message
	               : kind == XC_PRESENCE ? c->sh->srv->m.in_presence
	                                     : c->sh->srv->m.in_iq);
	xc_session_from_client(c, st);
	return 0;
}

static int on_stanza(void *arg, struct cm_xml_node *st)
{
	struct xc_c2s *c = arg;
	int r = 0;

	if (xc_sasl2_finishing(c)) {
		/* XEP-0388: nothing from the client until <success/> */
		xc_c2s_stream_error(c, "policy-violation", "wait for the SASL2 outcome");
		cm_xml_node_free(st);
		return STOP;
	}
	if ((c->st == XC_C2S_AUTHED || c->st == XC_C2S_BOUND) && strcmp(st->ns, XC_NS_SM) == 0) {
		r = xc_sm_element(c, st) != 0 ? STOP : 0;
		cm_xml_node_free(st);
		return r;
	}
	/* XEP-0352 nonzas, once authenticated (before, they fall to "authenticate first") */
	if ((c->st == XC_C2S_AUTHED || c->st == XC_C2S_BOUND) && cfg_of(c)->csi.enabled &&
	    strcmp(st->ns, XC_NS_CSI) == 0) {
		r = xc_csi_element(c, st) != 0 ? STOP : 0;
		cm_xml_node_free(st);
		return r;
	}
	switch (c->st) {
	case XC_C2S_OPEN:
		if (strcmp(st->ns, NS_TLS) == 0)
			r = starttls(c, st);
		else if (strcmp(st->ns, NS_SASL) == 0)
			r = sasl_element(c, st);
		else if (strcmp(st->ns, XC_NS_SASL2) == 0)
			r = sasl2_element(c, st);
		else if (xc_stanza_kind(st) == XC_IQ && cm_xml_child(st, "query", XC_NS_REGISTER)) {
			xc_register_preauth(c, st); /* takes st */
			return 0;
		} else {
			xc_c2s_stream_error(c, "not-authorized", "authenticate first");
			r = STOP;
		}
		cm_xml_node_free(st);
		return r;
	case XC_C2S_AUTHED:
		r = authed_stanza(c, st);
		cm_xml_node_free(st);
		return r;
	case XC_C2S_BOUND: {
		enum xc_kind kind = xc_stanza_kind(st);

		if (kind != XC_OTHER)
			xc_sm_handled(c);
		if (c->sm && kind == XC_MESSAGE) {
			/* its <a/> waits until what it causes is safe (ticket.h) */
			struct xc_shard *sh = c->sh;
			struct xc_ticket_scope sc;

			xc_sm_scope(c, &sc);
			r = bound_stanza(c, st, kind); /* takes st; c may be gone after */
			xc_ticket_leave(sh, &sc);
			return r;
		}
		/* an answer to our keepalive ping is only a sign of life */
		if (kind == XC_IQ && cm_xml_attr(st, "id") &&
		    strncmp(cm_xml_attr(st, "id"), "ka-", 3) == 0 && cm_xml_attr(st, "type") &&
		    (strcmp(cm_xml_attr(st, "type"), "result") == 0 ||
		     strcmp(cm_xml_attr(st, "type"), "error") == 0)) {
			cm_xml_node_free(st);
			return 0;
		}
		return bound_stanza(c, st, kind); /* takes st */
	}
	default:
		cm_xml_node_free(st);
		return STOP;
	}
}

/* --- the connection ----------------------------------------------------------------------------
 */

static void conn_free(struct xc_c2s *c)
{
	struct xc_shard *sh = c->sh;
	struct xc_server *srv = sh->srv;

	cm_list_remove(&c->link);
	if (c->st == XC_C2S_BOUND || c->u)
		xc_session_unbind(c);
	xc_csi_drain(c); /* what was held joins the unacknowledged stanzas */
	xc_sm_free(c);   /* unacknowledged stanzas go elsewhere, the session unbound first */
	xc_sasl_free(c->sasl);
	xc_sasl2_free(c->sasl2);
	xc_register_detach(c);
	cm_xml_parser_free(c->xp);
	cm_xml_node_free(c->presence);
	xc_presence_forget_directed(c);
	xc_jid_free(&c->jid);
	free(c->user);
	if (!c->hibernated) /* a hibernated session's connection was counted gone already */
		cm_metrics_gauge_add(c->via_ws ? srv->m.ws_connections : srv->m.connections, -1);
	free(c);
	xc_shard_conn_gone(sh);
}

void xc_c2s__release(struct xc_c2s *c)
{
	c->st = XC_C2S_CLOSING;
	conn_free(c);
}

void xc_c2s__closed(struct xc_c2s *c, int err)
{
	CM_LOGD("c2s", "%s: closed%s%s", c->jid.s ? c->jid.s : xc_c2s_peer(c), err ? ": " : "",
	        err ? strerror(-err) : "");
	/* held stanzas are stream management's now: kept for a resumption, or routed again; the
	 * next connection starts active */
	xc_csi_drain(c);
	if (xc_sm_hibernate(c)) {
		/* the session stays bound, without a connection, until resumed or timed out */
		struct xc_metrics *m = &c->sh->srv->m;

		cm_metrics_gauge_add(c->via_ws ? m->ws_connections : m->connections, -1);
		c->hibernated = true;
		c->st = XC_C2S_BOUND;
		cm_list_remove(&c->link);
		cm_list_init(&c->link);
		cm_xml_parser_free(c->xp);
		c->xp = NULL;
		xc_shard_conn_gone(c->sh);
		return;
	}
	c->st = XC_C2S_CLOSING;
	conn_free(c);
}

void xc_c2s__input(struct xc_c2s *c, const char *data, size_t len)
{
	const struct xc_c2s_config *cc = &cfg_of(c)->c2s;
	int r;

	if (c->st == XC_C2S_CLOSING)
		return;
	c->pings_out = 0;
	c->read_ns = mono_ns();
	if (c->st == XC_C2S_BOUND)
		xc_c2s_idle_timer(c);
	/* the shaper: a client sending faster than c2s.rate is read more slowly */
	if (cc->rate) {
		uint64_t now = uv_now(c->sh->loop->uv), burst = cc->rate * 2;

		c->tokens += (now - c->tokens_at) * cc->rate / 1000;
		if (c->tokens > burst)
			c->tokens = burst;
		c->tokens_at = now;
		c->tokens = c->tokens > len ? c->tokens - len : 0;
		if (c->tokens == 0 && c->st == XC_C2S_BOUND) {
			c->shaped = true;
			t_pause(c);
			xc_c2s_timer(c, len * 1000 / cc->rate + 1);
		}
	}
	r = cm_xml_parser_feed(c->xp, data, len);
	if (r == STOP && c->st != XC_C2S_CLOSING) {
		/* a restart (STARTTLS, SASL): the next bytes begin a new stream */
		c->ws_open = false;
		if (cm_xml_parser_reset(c->xp) != 0)
			xc_c2s_stream_error(c, "internal-server-error", NULL);
	} else if (r == -EBADMSG || r == -ENOMEM) {
		/* on_parse_error() sent the stream error */
		if (c->st != XC_C2S_CLOSING)
			xc_c2s_stream_error(c, "internal-server-error", NULL);
	} else if (r != 0 && r != STOP && r != -EPIPE && c->st != XC_C2S_CLOSING) {
		/* input the parser did not take (it cannot happen: a feed from inside the parser,
		 * or held back input) is never dropped without the client hearing of it */
		CM_LOGE("c2s", "%s: the parser did not take %zu bytes (%s); closing",
		        xc_c2s_peer(c), len, strerror(-r));
		xc_c2s_stream_error(c, "internal-server-error", NULL);
	}
}

void xc_c2s__timeout(struct xc_c2s *c)
{
	const struct xc_c2s_config *cc = &cfg_of(c)->c2s;
	char buf[160];
	int n;

	if (c->st == XC_C2S_AUTHED && c->moving) {
		post_move(c); /* the move waits for the <success/> to be on the wire */
		return;
	}
	if (c->st != XC_C2S_BOUND) {
		xc_c2s_stream_error(c, "connection-timeout", "no session in time");
		return;
	}
	if (c->shaped) {
		/* the shaper's pause is over */
		c->shaped = false;
		t_resume(c);
		xc_c2s_idle_timer(c);
		return;
	}
	if (c->trim_due) {
		c->trim_due = false;
		trim(c);
		xc_c2s_timer(c, cc->idle_timeout - cc->trim_after);
		return;
	}
	if (c->pings_out) {
		xc_c2s_stream_error(c, "connection-timeout", "no answer to a ping");
		return;
	}
	/* quiet for idle_timeout: ask (XEP-0199; with stream management, for an <a/>, since the
	 * client counts every stanza it gets); an answer or anything else counts */
	c->pings_out++;
	if (xc_sm_request(c) == 0) {
		xc_c2s_timer(c, cc->idle_timeout);
		return;
	}
	n = snprintf(buf, sizeof(buf),
	             "<iq %stype='get' id='ka-%s' to='%s'><ping xmlns='" NS_PING "'/></iq>",
	             c->ws ? "xmlns='jabber:client' " : "", c->id, c->jid.s);
	xc_c2s_send_raw(c, buf, (size_t)n);
	xc_c2s_timer(c, cc->idle_timeout);
}

/* --- TCP ------------------------------------------------------------------------------------ */

static void on_closed(struct cm_stream *s, int err)
{
	struct xc_c2s *c = cm_stream_data(s);

	c->s = NULL;
	xc_c2s__closed(c, err);
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	xc_c2s__input(cm_stream_data(s), data, len);
}

static void on_eof(struct cm_stream *s)
{
	struct xc_c2s *c = cm_stream_data(s);

	c->st = XC_C2S_CLOSING;
	cm_stream_close(s, -ECONNRESET);
}

static void on_secured(struct cm_stream *s)
{
	struct xc_c2s *c = cm_stream_data(s);

	c->starttls_pending = false;
}

static void on_timeout(struct cm_stream *s)
{
	xc_c2s__timeout(cm_stream_data(s));
}

static const struct cm_stream_events events = {
    .read = on_read,
    .eof = on_eof,
    .secured = on_secured,
    .timeout = on_timeout,
    .closed = on_closed,
};

struct xc_c2s *xc_c2s__new(struct xc_shard *sh)
{
	const struct xc_c2s_config *cc = &sh->srv->cfg->c2s;
	struct cm_xml_parser_cfg pc = {
	    .max_stanza = cc->max_stanza,
	    .content_ns = CM_XML_NS_CLIENT,
	    .open_cb = on_open,
	    .stanza_cb = on_stanza,
	    .close_cb = on_close,
	    .error_cb = on_parse_error,
	};
	struct xc_c2s *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pc.arg = c;
	if (cm_xml_parser_alloc(&c->xp, &pc) != 0) {
		free(c);
		return NULL;
	}
	c->sh = sh;
	c->tokens = cc->rate * 2;
	c->tokens_at = uv_now(sh->loop->uv);
	cm_list_init(&c->user_link);
	cm_list_insert_tail(&sh->conns, &c->link);
	return c;
}

void xc_c2s_accept(struct xc_shard *sh, struct cm_stream *s, bool direct_tls)
{
	struct xc_c2s *c = xc_c2s__new(sh);

	if (!c) {
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	c->s = s;
	c->direct_tls = direct_tls;
	cm_metrics_gauge_add(sh->srv->m.connections, 1);
	cm_stream_start(s, &events, c);
	cm_stream_timer(s, sh->srv->cfg->c2s.login_timeout);
}

void xc_c2s_close_all(struct xc_shard *sh, bool now)
{
	struct cm_list *n, *next;

	xc_sm_close_all(sh);
	cm_list_foreach_safe(n, next, &sh->conns)
	{
		struct xc_c2s *c = cm_list_entry(n, struct xc_c2s, link);

		if (live(c) && c->st != XC_C2S_CLOSING)
			xc_c2s_stream_error(c, "system-shutdown", NULL);
		if (live(c) && now)
			t_abort(c, -ESHUTDOWN);
	}
}
