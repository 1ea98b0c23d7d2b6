/* sasl2.c - XEP-0388 SASL2 on client streams, with Bind 2, inline resumption and FAST
 * (sasl2.h). */
#include "sasl2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind2.h"
#include "c2s.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "fast.h"
#include "sasl.h"
#include "server.h"
#include "sm.h"
#include "store.h"

#define NS_SASL      "urn:ietf:params:xml:ns:xmpp-sasl"
#define AGENT_ID_MAX 128 /* characters of a user-agent id */
#define MAX_ATTEMPTS 5   /* failed FAST logins on one stream before it is closed (as sasl.c) */

struct xc_sasl2 {
	struct xc_c2s *c; /* borrowed: the connection that owns this */
	/* what <authenticate/> asked for (owned copies) */
	char *agent;                /* the user-agent id; NULL: none given */
	struct cm_xml_node *bind;   /* Bind 2's <bind/>; NULL: no binding asked */
	struct cm_xml_node *resume; /* XEP-0198's <resume/>; NULL */
	char *want_token;           /* FAST <request-token mechanism=.../>; NULL */
	uint32_t count;             /* FAST <fast count=.../>; 0: none */
	bool invalidate;            /* FAST <fast invalidate='true'/> */
	/* the exchange */
	bool finishing;                  /* the mechanism succeeded: <success/> is being prepared */
	char *user;                      /* owned: the local part logging in (FAST) */
	char mech[XC_FAST_MECH_MAX + 1]; /* FAST's mechanism */
	unsigned char cb[XC_FAST_CB_MAX]; /* FAST's channel binding data */
	size_t cblen;
	unsigned char mac[XC_FAST_MAC_LEN]; /* the client's, FAST */
	struct xc_store_req *pending; /* borrowed: a store request on its way (its arg is this) */
	struct cm_buf additional;     /* base64 of the mechanism's additional data */
	struct xc_fast_token fresh;   /* a token to hand over in <success/> (set: there is) */
	char src[48];                 /* the client's address for the throttle */
	unsigned failures;            /* failed FAST attempts on this stream */
};

static struct xc_server *srv_of(const struct xc_c2s *c)
{
	return c->sh->srv;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* --- features ---------------------------------------------------------------------------- */

/* tls-server-end-point data of c's TLS connection into out: its length, 0 when there is none. */
static size_t endpoint_binding(const struct xc_c2s *c, unsigned char out[XC_FAST_CB_MAX])
{
	struct cm_stream *st = xc_c2s_stream(c);
	struct cm_tls_conn *t = st ? cm_stream_tls(st) : NULL;
	size_t len = 0;

	if (!t || cm_tls_conn_channel_binding(t, "tls-server-end-point", out, &len) != 0)
		return 0;
	return len;
}

static bool fast_offered(const struct xc_c2s *c)
{
	return srv_of(c)->cfg->fast.enabled && xc_c2s_secured(c);
}

int xc_sasl2_features(struct xc_c2s *c, struct cm_xml_node *features)
{
	const char *names[XC_SASL_LIST_MAX];
	size_t n = xc_sasl_mechanisms(c, names);
	struct cm_xml_node *a, *m, *in, *f;
	unsigned char cb[XC_FAST_CB_MAX];
	int r = cm_xml_node_new_child(&a, features, "authentication", XC_NS_SASL2);

	for (size_t i = 0; i < n && !r; i++) {
		r = cm_xml_node_new_child(&m, a, "mechanism", NULL);
		r = r ? r : cm_xml_node_add_text(m, names[i], strlen(names[i]));
	}
	r = r ? r : cm_xml_node_new_child(&in, a, "inline", NULL);
	r = r ? r : xc_bind2_features(c, in);
	if (!r && srv_of(c)->cfg->sm.enabled)
		r = cm_xml_node_new_child(NULL, in, "sm", XC_NS_SM);
	if (!r && fast_offered(c)) {
		r = cm_xml_node_new_child(&f, in, "fast", XC_NS_FAST);
		if (!r && endpoint_binding(c, cb) > 0) {
			r = cm_xml_node_new_child(&m, f, "mechanism", NULL);
			r = r ? r : cm_xml_node_add_text(m, "HT-SHA-256-ENDP", 15);
		}
		r = r ? r : cm_xml_node_new_child(&m, f, "mechanism", NULL);
		r = r ? r : cm_xml_node_add_text(m, "HT-SHA-256-NONE", 15);
	}
	return r;
}

/* --- state ------------------------------------------------------------------------------- */

/* Forget what the last <authenticate/> asked (a new one starts over). */
static void clear(struct xc_sasl2 *s)
{
	if (s->pending) {
		s->pending->arg = NULL; /* its answer will find nobody */
		s->pending = NULL;
	}
	free(s->agent);
	s->agent = NULL;
	cm_xml_node_free(s->bind);
	s->bind = NULL;
	cm_xml_node_free(s->resume);
	s->resume = NULL;
	free(s->want_token);
	s->want_token = NULL;
	free(s->user);
	s->user = NULL;
	s->count = 0;
	s->invalidate = false;
	s->finishing = false;
	cm_buf_free(&s->additional);
	cm_crypto_wipe(&s->fresh, sizeof(s->fresh));
	cm_crypto_wipe(s->mac, sizeof(s->mac));
}

void xc_sasl2_free(struct xc_sasl2 *s)
{
	if (!s)
		return;
	clear(s);
	free(s);
}

bool xc_sasl2_finishing(const struct xc_c2s *c)
{
	return c->sasl2 && c->sasl2->finishing;
}

/* --- output ------------------------------------------------------------------------------ */

void xc_sasl2_challenge(struct xc_c2s *c, const void *data, size_t len)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (cm_buf_puts(&b, "<challenge xmlns='" XC_NS_SASL2 "'>") == 0 &&
	    (!len || cm_crypto_b64_encode(&b, data, len, CM_B64_STD) == 0) &&
	    cm_buf_puts(&b, "</challenge>") == 0)
		xc_c2s_send_raw(c, b.data, b.len);
	cm_buf_free(&b);
}

void xc_sasl2_failure(struct xc_c2s *c, const char *condition, const char *text)
{
	struct cm_buf b;

	if (c->sasl2)
		clear(c->sasl2);
	cm_buf_init(&b, 0);
	if (cm_buf_printf(&b, "<failure xmlns='" XC_NS_SASL2 "'><%s xmlns='" NS_SASL "'/>",
	                  condition) == 0 &&
	    (!text ||
	     (cm_buf_puts(&b, "<text>") == 0 && cm_xml_escape_text(&b, text, strlen(text)) == 0 &&
	      cm_buf_puts(&b, "</text>") == 0)) &&
	    cm_buf_puts(&b, "</failure>") == 0)
		xc_c2s_send_raw(c, b.data, b.len);
	cm_buf_free(&b);
}

/* A FAST login failed: counted like any failed login, logged for the operator. */
static void fast_fail(struct xc_sasl2 *s, const char *condition, const char *why, bool counts)
{
	struct xc_c2s *c = s->c;

	cm_metrics_inc(srv_of(c)->m.logins_fail[XC_SASL_HT]);
	if (counts)
		xc_sasl_count_failure(c, s->src, s->user);
	CM_LOGI("fast", "%s: FAST login (%s) refused for %s%s%s, client %s: %s", s->src,
	        s->mech[0] ? s->mech : "?", s->user ? s->user : "?", s->user ? "@" : "",
	        s->user ? c->host : "", s->agent ? s->agent : "(no user-agent id)", why);
	xc_sasl2_failure(c, condition, why);
	if (++s->failures >= MAX_ATTEMPTS)
		xc_c2s_stream_error(c, "policy-violation",
		                    "too many failed authentication attempts");
}

/* --- after the mechanism: a token to store, the move home, <success/> -------------------- */

static void proceed(struct xc_sasl2 *s)
{
	struct xc_c2s *c = s->c;
	char *user = s->user;

	s->user = NULL;
	xc_c2s__authed(c, user); /* takes user; xc_sasl2_arrived() once home */
}

static void on_updated(struct xc_store_req *r)
{
	struct xc_sasl2 *s = r->arg;
	int err = r->err;
	bool used = r->fast && r->fast->used >= 0;

	xc_store_req_free(r);
	if (!s)
		return;
	s->pending = NULL;
	if (used && err == -ESTALE) {
		/* revoked meanwhile, or another login with this count came first */
		s->finishing = false;
		cm_crypto_wipe(&s->fresh, sizeof(s->fresh));
		fast_fail(s, "not-authorized", "the token was revoked or its count used meanwhile",
		          true);
		return;
	}
	if (err) {
		CM_LOGW("fast", "%s@%s: cannot store a FAST token: %s", s->user, s->c->host,
		        strerror(-err));
		if (used) {
			s->finishing = false;
			fast_fail(s, "temporary-auth-failure", "the token store failed", false);
			return;
		}
		/* a password login goes on without its token */
		cm_crypto_wipe(&s->fresh, sizeof(s->fresh));
	}
	if (used)
		cm_metrics_inc(srv_of(s->c)->m.logins_ok[XC_SASL_HT]);
	if (s->fresh.set)
		cm_metrics_inc(srv_of(s->c)->m.fast_issued);
	proceed(s);
}

/* Submit the FAST update (a token used, a fresh token); the login goes on when it is stored. */
static int update(struct xc_sasl2 *s, int used, const char *used_token)
{
	struct xc_c2s *c = s->c;
	struct xc_store_req *r = xc_store_req_new(XC_STORE_FAST_UPDATE, c->sh->loop, on_updated, s);
	char bare[XC_JID_PART_MAX * 2 + 2];
	int rc;

	if (!r)
		return -ENOMEM;
	snprintf(bare, sizeof(bare), "%s@%s", s->user, c->host);
	r->fast = calloc(1, sizeof(*r->fast));
	if (!r->fast || xc_store_req_set(&r->user, bare) != 0 ||
	    xc_store_req_set(&r->key, s->agent) != 0) {
		xc_store_req_free(r);
		return -ENOMEM;
	}
	r->fast->used = used;
	if (used_token)
		snprintf(r->fast->used_token, sizeof(r->fast->used_token), "%s", used_token);
	r->fast->count = s->count;
	r->fast->invalidate = s->invalidate;
	r->fast->fresh = s->fresh;
	rc = xc_store_submit(srv_of(c)->store, r);
	if (rc) {
		xc_store_req_free(r);
		return rc;
	}
	s->pending = r;
	return 0;
}

/* A fresh token for mech into s->fresh. 0 or -EIO. */
static int issue(struct xc_sasl2 *s, const char *mech)
{
	const struct xc_fast_config *fc = &srv_of(s->c)->cfg->fast;

	return xc_fast_token_new(&s->fresh, mech, now_s() + (int64_t)(fc->token_lifetime / 1000));
}

void xc_sasl2_success(struct xc_c2s *c, char *user, const void *data, size_t len)
{
	struct xc_sasl2 *s = c->sasl2;

	/* the password exchange is over (sasl.c's state goes) */
	xc_sasl_free(c->sasl);
	c->sasl = NULL;
	cm_buf_free(&s->additional);
	cm_buf_init(&s->additional, 0);
	if (len && cm_crypto_b64_encode(&s->additional, data, len, CM_B64_STD) != 0) {
		free(user);
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		return;
	}
	free(s->user);
	s->user = user;
	s->finishing = true;
	if (s->want_token && s->agent && fast_offered(c)) {
		if (issue(s, s->want_token) == 0 && update(s, -1, NULL) == 0)
			return; /* on_updated() goes on */
		CM_LOGW("fast", "%s@%s: cannot issue a FAST token", user, c->host);
		cm_crypto_wipe(&s->fresh, sizeof(s->fresh));
	}
	proceed(s);
}

/* <success/>: data (additional), the identity, what was done inline. */
static int success_xml(struct xc_sasl2 *s, struct cm_buf *b, const struct cm_buf *inline_xml)
{
	struct xc_c2s *c = s->c;
	char id[XC_JID_PART_MAX * 3 + 3], expiry[40];
	int r;

	if (c->jid.s)
		snprintf(id, sizeof(id), "%s", c->jid.s);
	else
		snprintf(id, sizeof(id), "%s@%s", c->user, c->host);
	r = cm_buf_puts(b, "<success xmlns='" XC_NS_SASL2 "'>");
	if (!r && s->additional.len)
		r = cm_buf_printf(b, "<additional-data>%.*s</additional-data>",
		                  (int)s->additional.len, s->additional.data);
	r = r ? r : cm_buf_puts(b, "<authorization-identifier>");
	r = r ? r : cm_xml_escape_text(b, id, strlen(id));
	r = r ? r : cm_buf_puts(b, "</authorization-identifier>");
	if (!r && inline_xml->len)
		r = cm_buf_printf(b, "%.*s", (int)inline_xml->len, inline_xml->data);
	if (!r && s->fresh.set) {
		xc_fast_format_time(s->fresh.expiry, expiry, sizeof(expiry));
		r = cm_buf_printf(b, "<token xmlns='" XC_NS_FAST "' expiry='%s' token='", expiry);
		r = r ? r : cm_xml_escape_attr(b, s->fresh.token, strlen(s->fresh.token));
		r = r ? r : cm_buf_puts(b, "'/>");
	}
	return r ? r : cm_buf_puts(b, "</success>");
}

void xc_sasl2_arrived(struct xc_c2s *c)
{
	struct xc_sasl2 *s = c->sasl2;
	struct cm_buf in, out;
	int resumed = 0, r = 0;

	if (!s || !s->finishing)
		return;
	if (c->st != XC_C2S_AUTHED) { /* the stream ended on its way home */
		c->sasl2 = NULL;
		xc_sasl2_free(s);
		return;
	}
	cm_buf_init(&in, 0);
	cm_buf_init(&out, 0);
	if (s->resume)
		resumed = xc_sm_resume_inline(c, s->resume, &in);
	if (!resumed && s->bind) {
		r = xc_bind2_bind(c, s->bind, s->agent, &in);
		if (r)
			CM_LOGI("bind2", "%s@%s: cannot bind inline: %s", c->user, c->host,
			        strerror(-r));
	}
	if (r || success_xml(s, &out, &in) != 0) {
		cm_buf_free(&in);
		cm_buf_free(&out);
		xc_c2s_stream_error(c, "internal-server-error",
		                    r ? "the resource could not be bound" : NULL);
		return;
	}
	cm_buf_free(&in);
	cm_metrics_inc(srv_of(c)->m.sasl2_logins);
	xc_c2s_send_raw(c, out.data, out.len);
	cm_buf_free(&out);
	CM_LOGD("sasl2", "%s: authenticated as %s@%s%s%s", xc_c2s_peer(c), c->user, c->host,
	        resumed ? ", resumed" : "", c->st == XC_C2S_BOUND ? ", bound" : "");
	/* no restart: the features of the authenticated stream follow at once */
	xc_c2s__features(c);
	if (s->bind && !resumed)
		xc_bind2_after(c, s->bind);
	c->sasl2 = NULL;
	xc_sasl2_free(s);
	if (resumed)
		xc_sm_resumed(c);
}

/* --- FAST -------------------------------------------------------------------------------- */

static void on_tokens(struct xc_store_req *r)
{
	struct xc_sasl2 *s = r->arg;
	enum xc_fast_refusal why;
	unsigned char resp[XC_FAST_MAC_LEN];
	const struct xc_fast_token *t;
	int slot = -1;
	bool rotate;

	if (!s) {
		xc_store_req_free(r);
		return;
	}
	s->pending = NULL;
	if (r->err) {
		CM_LOGW("fast", "cannot read the FAST tokens of %s: %s", r->user,
		        strerror(-r->err));
		xc_store_req_free(r);
		fast_fail(s, "temporary-auth-failure", "the token store failed", false);
		return;
	}
	why = xc_fast_match(r->fast, s->mech, s->mac, s->cb, s->cblen, now_s(), s->count, &slot);
	if (why != XC_FAST_OK) {
		xc_store_req_free(r);
		fast_fail(s, why == XC_FAST_EXPIRED ? "credentials-expired" : "not-authorized",
		          xc_fast_refusal_text(why), why != XC_FAST_REPLAY);
		return;
	}
	t = &r->fast->slot[slot];
	cm_buf_free(&s->additional);
	cm_buf_init(&s->additional, 0);
	if (xc_fast_mac(t->token, false, s->cb, s->cblen, resp) != 0 ||
	    cm_crypto_b64_encode(&s->additional, resp, sizeof(resp), CM_B64_STD) != 0) {
		xc_store_req_free(r);
		fast_fail(s, "temporary-auth-failure", "internal error", false);
		return;
	}
	/* a new token when asked for, or when this one nears its end (not when logging out) */
	rotate =
	    !s->invalidate &&
	    xc_fast_rotate_due(t, now_s(), (int64_t)(srv_of(s->c)->cfg->fast.rotate_before / 1000));
	if ((s->want_token || rotate) && issue(s, s->want_token ? s->want_token : t->mech) != 0)
		cm_crypto_wipe(&s->fresh, sizeof(s->fresh));
	s->finishing = true;
	if (update(s, slot, t->token) != 0) {
		s->finishing = false;
		xc_store_req_free(r);
		fast_fail(s, "temporary-auth-failure", "the token store failed", false);
		return;
	}
	xc_store_req_free(r);
}

static void fast_begin(struct xc_sasl2 *s, const char *mech, enum xc_fast_cb cbk,
                       const char *initial)
{
	struct xc_c2s *c = s->c;
	struct xc_store_req *r;
	const char *authc;
	const unsigned char *mac;
	size_t alen;
	char bare[XC_JID_PART_MAX * 2 + 2];
	struct cm_buf in;

	snprintf(s->mech, sizeof(s->mech), "%s", mech);
	if (!fast_offered(c)) {
		xc_sasl2_failure(c, "invalid-mechanism", "FAST is not offered on this stream");
		return;
	}
	if (!s->agent) {
		fast_fail(s, "malformed-request", "FAST needs the client's <user-agent id=.../>",
		          false);
		return;
	}
	s->cblen = 0;
	if (cbk == XC_FAST_CB_ENDP && (s->cblen = endpoint_binding(c, s->cb)) == 0) {
		xc_sasl2_failure(c, "invalid-mechanism", "no tls-server-end-point on this stream");
		return;
	}
	cm_buf_init(&in, 512);
	if (!initial || !*initial ||
	    cm_crypto_b64_decode(&in, initial, strlen(initial), CM_B64_STD) != 0 ||
	    xc_fast_parse(in.data ? in.data : "", in.len, &authc, &alen, &mac) != 0) {
		cm_buf_free(&in);
		fast_fail(s, "malformed-request", "the initial response is not authcid NUL hmac",
		          false);
		return;
	}
	memcpy(s->mac, mac, sizeof(s->mac));
	/* the authcid is the local part; a bare JID of this host is taken too */
	if (alen > strlen(c->host) + 1 && authc[alen - strlen(c->host) - 1] == '@' &&
	    memcmp(authc + alen - strlen(c->host), c->host, strlen(c->host)) == 0)
		alen -= strlen(c->host) + 1;
	if (xc_jid_nodeprep(authc, alen, &s->user, NULL, 0) != 0) {
		cm_buf_free(&in);
		fast_fail(s, "not-authorized", "the authcid is not a user name", true);
		return;
	}
	cm_buf_free(&in);
	if (xc_sasl_blocked(c, s->src, s->user)) {
		cm_metrics_inc(srv_of(c)->m.auth_throttled);
		fast_fail(s, "temporary-auth-failure", "too many failed logins: try again later",
		          false);
		return;
	}
	snprintf(bare, sizeof(bare), "%s@%s", s->user, c->host);
	r = xc_store_req_new(XC_STORE_FAST_GET, c->sh->loop, on_tokens, s);
	if (r &&
	    (!(r->fast = calloc(1, sizeof(*r->fast))) || xc_store_req_set(&r->user, bare) != 0 ||
	     xc_store_req_set(&r->key, s->agent) != 0 ||
	     xc_store_submit(srv_of(c)->store, r) != 0)) {
		xc_store_req_free(r);
		r = NULL;
	}
	if (!r) {
		fast_fail(s, "temporary-auth-failure", "the token store is not available", false);
		return;
	}
	s->pending = r;
}

/* --- input ------------------------------------------------------------------------------- */

/* What <authenticate/> asks besides its mechanism, into s. NULL, or why it is malformed. */
static const char *parse(struct xc_sasl2 *s, const struct cm_xml_node *el)
{
	const struct cm_xml_node *ua = cm_xml_child(el, "user-agent", XC_NS_SASL2);
	const struct cm_xml_node *b = cm_xml_child(el, "bind", XC_NS_BIND2);
	const struct cm_xml_node *rs = cm_xml_child(el, "resume", XC_NS_SM);
	const struct cm_xml_node *rt = cm_xml_child(el, "request-token", XC_NS_FAST);
	const struct cm_xml_node *f = cm_xml_child(el, "fast", XC_NS_FAST);
	enum xc_fast_cb cbk;

	if (ua) {
		const char *id = cm_xml_attr(ua, "id");
		size_t n = id ? strlen(id) : 0;

		if (!id || !n || n > AGENT_ID_MAX)
			return "<user-agent/> needs an id of 1 to 128 characters";
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
				return "the user-agent id must be printable ASCII without spaces";
		if (!(s->agent = strdup(id)))
			return "out of memory";
	}
	if (b) {
		const struct cm_xml_node *tn = cm_xml_child(b, "tag", XC_NS_BIND2);
		char res[XC_BIND2_RES_MAX];

		if (tn && xc_bind2_resource(cm_xml_text(tn), NULL, "x", res, sizeof(res)) != 0)
			return "the Bind 2 tag is longer than 32 characters";
		if (cm_xml_node_copy(&s->bind, b) != 0)
			return "out of memory";
	}
	if (rs && cm_xml_node_copy(&s->resume, rs) != 0)
		return "out of memory";
	if (rt) {
		const char *m = cm_xml_attr(rt, "mechanism");

		if (xc_fast_mech(m, &cbk) != 0)
			return "<request-token/> names no FAST mechanism offered";
		if (!s->agent)
			return "a FAST token needs the client's <user-agent id=.../>";
		if (!(s->want_token = strdup(m)))
			return "out of memory";
	}
	if (f) {
		const char *inv = cm_xml_attr(f, "invalidate");

		if (xc_fast_parse_count(cm_xml_attr(f, "count"), &s->count) != 0)
			return "the FAST count must be a whole number from 1 to 4294967295";
		s->invalidate = inv && (strcmp(inv, "true") == 0 || strcmp(inv, "1") == 0);
	}
	return NULL;
}

static void authenticate(struct xc_c2s *c, const struct cm_xml_node *el)
{
	struct xc_sasl2 *s = c->sasl2;
	const char *mech = cm_xml_attr(el, "mechanism");
	const struct cm_xml_node *ir = cm_xml_child(el, "initial-response", XC_NS_SASL2);
	const char *initial = ir ? cm_xml_text(ir) : NULL, *bad;
	enum xc_fast_cb cbk;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			xc_c2s_stream_error(c, "internal-server-error", NULL);
			return;
		}
		s->c = c;
		cm_buf_init(&s->additional, 0);
		xc_sasl_source(c, s->src, sizeof(s->src));
		c->sasl2 = s;
	}
	clear(s); /* a new <authenticate/> starts over */
	if (!mech || !*mech) {
		xc_sasl2_failure(c, "invalid-mechanism", "<authenticate/> without a mechanism");
		return;
	}
	if ((bad = parse(s, el)) != NULL) {
		xc_sasl2_failure(c, "malformed-request", bad);
		return;
	}
	if (xc_fast_mech(mech, &cbk) == 0) {
		fast_begin(s, mech, cbk, initial);
		return;
	}
	/* SASL's mechanisms; an empty <initial-response/> is an empty message ("=") */
	xc_sasl_begin(c, mech, ir && (!initial || !*initial) ? "=" : initial);
}

int xc_sasl2_element(struct xc_c2s *c, const struct cm_xml_node *el)
{
	if (strcmp(el->name, "authenticate") == 0) {
		authenticate(c, el);
	} else if (strcmp(el->name, "response") == 0 && c->sasl2 && c->sasl) {
		xc_sasl_response(c, el);
	} else if (strcmp(el->name, "abort") == 0 && c->sasl2) {
		xc_sasl_abort(c);
	} else {
		xc_c2s_stream_error(c, "not-authorized",
		                    strcmp(el->name, "response") == 0
		                        ? "no SASL2 exchange is waiting for a response"
		                        : "not a SASL2 element a client sends here");
		return -EPROTO;
	}
	return c->st == XC_C2S_CLOSING ? -EPIPE : 0;
}
