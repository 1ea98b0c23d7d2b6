/* sasl.c - SASL on client streams (sasl.h): mechanisms, SCRAM and PLAIN exchanges, throttling. */
#include "sasl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "cm/err.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "scram.h"
#include "plain_cache.h"
#include "server.h"
#include "store.h"
#include "throttle.h"

#define NS_SASL      "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL_CB   "urn:xmpp:sasl-cb:0"
#define MAX_ATTEMPTS 5 /* failed exchanges on one stream before it is closed */

const char *const xc_sasl_mech_names[XC_SASL_NMECH] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256",
                                                       "HT-SHA-256"};

struct xc_sasl {
	struct xc_c2s *c; /* borrowed; NULL once the connection went away */
	enum xc_sasl_mech mech;
	bool started; /* the client's first message arrived */
	struct xc_scram scram;
	struct xc_store_req *pending; /* borrowed: a lookup on its way (its arg is this) */
	char *password;               /* owned, PLAIN: held until the credentials come */
	char *user;                   /* owned: the user name, Nodeprep'd */
	char src[48];                 /* the client's source, for the throttle */
	unsigned failures;            /* on this stream */
	bool cb_refused; /* the client asked for a channel binding type we lack (tls-unique) */
};

static struct xc_server *srv_of(const struct xc_c2s *c)
{
	return c->sh->srv;
}

static bool secure(const struct xc_c2s *c)
{
	return xc_c2s_secured(c);
}

/* What the connection can bind to: the number of types put in cb (0 without TLS). */
static size_t channel_bindings(const struct xc_c2s *c, struct xc_scram_cb cb[XC_SCRAM_CB_MAX])
{
	static const char *const types[XC_SCRAM_CB_MAX] = {"tls-exporter", "tls-server-end-point"};
	struct cm_stream *st = xc_c2s_stream(c);
	struct cm_tls_conn *t = st ? cm_stream_tls(st) : NULL;
	size_t n = 0;

	memset(cb, 0, XC_SCRAM_CB_MAX * sizeof(*cb));
	for (size_t i = 0; t && i < XC_SCRAM_CB_MAX; i++) {
		cb[n].type = types[i];
		if (cm_tls_conn_channel_binding(t, types[i], cb[n].data, &cb[n].len) == 0)
			n++;
	}
	return n;
}

/* The mechanism (by its SASL name) is listed in auth.disabled_mechanisms. */
static bool disabled(const struct xc_c2s *c, const char *name)
{
	return cm_cfg_strlist_has(&srv_of(c)->cfg->auth.disabled_mechanisms, name);
}

static bool plain_allowed(const struct xc_c2s *c)
{
	return secure(c) || srv_of(c)->cfg->c2s.plain_cleartext;
}

size_t xc_sasl_mechanisms(const struct xc_c2s *c, const char *names[XC_SASL_LIST_MAX])
{
	struct xc_scram_cb cb[XC_SCRAM_CB_MAX];
	size_t n = 0;

	static const char *const order[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
	                                    "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"};
	bool plus = channel_bindings(c, cb) > 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if ((i < 2 && !plus) || (i == 4 && !plain_allowed(c)) || disabled(c, order[i]))
			continue;
		names[n++] = order[i];
	}
	return n;
}

int xc_sasl_features(struct xc_c2s *c, struct cm_xml_node *features)
{
	struct xc_scram_cb cb[XC_SCRAM_CB_MAX];
	struct cm_xml_node *mechs, *m, *cbs;
	size_t ncb = channel_bindings(c, cb);
	bool plus = ncb > 0;
	const char *names[XC_SASL_LIST_MAX];
	size_t n = xc_sasl_mechanisms(c, names);
	int r;

	r = cm_xml_node_new_child(&mechs, features, "mechanisms", NS_SASL);
	for (size_t i = 0; i < n && !r; i++) {
		r = cm_xml_node_new_child(&m, mechs, "mechanism", NULL);
		r = r ? r : cm_xml_node_add_text(m, names[i], strlen(names[i]));
	}
	/* XEP-0440: which types, so that a client knows before it tries */
	if (!r && plus)
		r = cm_xml_node_new_child(&cbs, features, "sasl-channel-binding", NS_SASL_CB);
	for (size_t i = 0; i < ncb && !r; i++) {
		r = cm_xml_node_new_child(&m, cbs, "channel-binding", NULL);
		r = r ? r : cm_xml_node_set_attr(m, "type", cb[i].type);
	}
	return r;
}

static struct xc_sasl *sasl_new(struct xc_c2s *c)
{
	struct xc_sasl *s = c->sasl;

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->c = c;
	xc_sasl_source(c, s->src, sizeof(s->src));
	c->sasl = s;
	return s;
}

/* Forget the exchange under way (the stream stays for another attempt). */
static void reset(struct xc_sasl *s)
{
	if (s->pending) {
		s->pending->arg = NULL; /* its answer will find nobody */
		s->pending = NULL;
	}
	xc_scram_free(&s->scram);
	if (s->password) {
		memset(s->password, 0, strlen(s->password));
		free(s->password);
		s->password = NULL;
	}
	free(s->user);
	s->user = NULL;
	s->started = false;
}

void xc_sasl_free(struct xc_sasl *s)
{
	if (!s)
		return;
	reset(s);
	free(s);
}

static uint64_t now_ms(const struct xc_c2s *c)
{
	return uv_now(c->sh->loop->uv);
}

void xc_sasl_source(const struct xc_c2s *c, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	out[0] = '\0';
	if (xc_c2s_stream(c) && cm_stream_peer(xc_c2s_stream(c), &ss, &sl) == 0)
		cm_srclimit_format((struct sockaddr *)&ss, out, len);
}

void xc_sasl_count_failure(struct xc_c2s *c, const char *src, const char *user)
{
	struct xc_server *srv = srv_of(c);
	char key[XC_JID_PART_MAX + 16];

	if (src && src[0])
		xc_throttle_fail(srv->throttle, src, now_ms(c));
	if (user) {
		snprintf(key, sizeof(key), "%s@%s", user, c->host);
		xc_throttle_fail(srv->throttle, key, now_ms(c));
	}
}

/* The exchange failed: count it (per mechanism, per source, per account) and tell the client. */
static void fail(struct xc_sasl *s, const char *condition, bool counts)
{
	struct xc_c2s *c = s->c;
	struct xc_server *srv = srv_of(c);

	cm_metrics_inc(srv->m.logins_fail[s->mech]);
	if (counts)
		xc_sasl_count_failure(c, s->src, s->user);
	CM_LOGD("sasl", "%s: %s failed (%s)%s%s", s->src, xc_sasl_mech_names[s->mech], condition,
	        s->user ? " for " : "", s->user ? s->user : "");
	reset(s);
	if (++s->failures >= MAX_ATTEMPTS) {
		xc_c2s__sasl_failure(c, condition, NULL);
		xc_c2s_stream_error(c, "policy-violation",
		                    "too many failed authentication attempts");
		return;
	}
	xc_c2s__sasl_failure(c, condition, NULL);
}

bool xc_sasl_blocked(struct xc_c2s *c, const char *src, const char *user)
{
	struct xc_server *srv = srv_of(c);
	const struct xc_auth_config *a = &srv->cfg->auth;
	char key[XC_JID_PART_MAX + 16];

	if (src && src[0] &&
	    xc_throttle_blocked(srv->throttle, src, (unsigned)a->failures_per_ip, now_ms(c)))
		return true;
	if (user) {
		snprintf(key, sizeof(key), "%s@%s", user, c->host);
		if (xc_throttle_blocked(srv->throttle, key, (unsigned)a->failures_per_user,
		                        now_ms(c)))
			return true;
	}
	return false;
}

static bool throttled(struct xc_sasl *s, const char *user)
{
	return xc_sasl_blocked(s->c, s->src, user);
}

static void succeed(struct xc_sasl *s, const void *data, size_t len)
{
	struct xc_c2s *c = s->c;
	char *user = s->user;

	cm_metrics_inc(srv_of(c)->m.logins_ok[s->mech]);
	s->user = NULL;
	reset(s);
	xc_c2s__sasl_success(c, user, data, len); /* takes user */
}

/* --- credentials from the store ---------------------------------------------------------- */

static void on_account(struct xc_store_req *r);

static int lookup(struct xc_sasl *s)
{
	struct xc_c2s *c = s->c;
	struct xc_server *srv = srv_of(c);
	struct xc_store_req *r = xc_store_req_new(XC_STORE_ACCOUNT_GET, c->sh->loop, on_account, s);
	char *bare;
	int rc;

	if (!r)
		return -ENOMEM;
	bare = malloc(strlen(s->user) + strlen(c->host) + 2);
	if (!bare) {
		xc_store_req_free(r);
		return -ENOMEM;
	}
	strcpy(bare, s->user);
	strcat(bare, "@");
	strcat(bare, c->host);
	r->user = bare;
	rc = xc_store_submit(srv->store, r);
	if (rc) {
		xc_store_req_free(r);
		return rc;
	}
	s->pending = r;
	return 0;
}

static void scram_continue(struct xc_sasl *s, const struct xc_scram_creds *creds)
{
	struct cm_buf out;

	cm_buf_init(&out, 0);
	if (xc_scram_server_first(&s->scram, creds, NULL, &out) != 0) {
		cm_buf_free(&out);
		fail(s, "temporary-auth-failure", false);
		return;
	}
	xc_c2s__sasl_challenge(s->c, out.data, out.len);
	cm_buf_free(&out);
}

/* PLAIN: the password against the stored keys - by one HMAC when this shard saw it right
 * before (plain_cache.h), else by PBKDF2. An unknown user costs the same PBKDF2, against decoy
 * keys, so that the time taken does not tell whether the account exists. 0, -EACCES, or
 * another negative errno. */
static int plain_check(struct xc_sasl *s, const struct xc_store_req *r)
{
	struct xc_shard *sh = s->c->sh;
	struct xc_server *srv = sh->srv;
	struct xc_scram_creds decoy;
	/* an account brought over with SCRAM-SHA-1 keys only is checked against those */
	enum xc_scram_hash h = r->creds[XC_SCRAM_SHA256].iter ? XC_SCRAM_SHA256 : XC_SCRAM_SHA1;
	const struct xc_scram_creds *cr = &r->creds[h];
	unsigned char mac[XC_PLAIN_MAC];
	size_t len = strlen(s->password);
	bool have_mac = false;
	int rc;

	if (!r->found) {
		xc_scram_decoy(XC_SCRAM_SHA256, srv->decoy_secret, sizeof(srv->decoy_secret),
		               s->user, (uint32_t)srv->cfg->auth.scram_iterations, &decoy);
		rc = xc_scram_creds_check(XC_SCRAM_SHA256, &decoy, s->password, len);
		return rc == 0 || rc == -EACCES ? -EACCES : rc;
	}
	have_mac = xc_plain_cache_mac(&sh->plain, r->user, cr, s->password, len, mac) == 0;
	if (have_mac && xc_plain_cache_has(&sh->plain, mac))
		return 0;
	if (cr->iter == 0)
		return -EACCES; /* no keys at all: nothing can match */
	rc = xc_scram_creds_check(h, cr, s->password, len);
	if (rc == 0 && have_mac)
		xc_plain_cache_add(&sh->plain, mac);
	return rc;
}

/* After a PLAIN login, keys for the hashes the account lacks (an account imported with
 * SCRAM-SHA-1 keys only), now that the password is known. The write waits for nobody: a
 * failure is counted and logged by the store, and the next PLAIN login tries again. */
static void complete_keys(struct xc_sasl *s, const struct xc_store_req *r)
{
	struct xc_server *srv = srv_of(s->c);
	struct xc_store_req *w;
	bool missing = false;
	int rc = 0;

	for (int h = 0; h < XC_SCRAM_NHASH; h++)
		missing = missing || r->creds[h].iter == 0;
	if (!missing)
		return;
	w = xc_store_req_new(XC_STORE_ACCOUNT_ADD_CREDS, NULL, NULL, NULL);
	if (!w || xc_store_req_set(&w->user, r->user) != 0)
		rc = -ENOMEM;
	for (int h = 0; h < XC_SCRAM_NHASH && !rc; h++)
		if (r->creds[h].iter == 0)
			rc = xc_scram_creds_make(
			    (enum xc_scram_hash)h, s->password, strlen(s->password),
			    (uint32_t)srv->cfg->auth.scram_iterations, NULL, 0, &w->creds[h]);
	if (!rc)
		rc = xc_store_submit(srv->store, w);
	if (rc) {
		CM_LOGW("sasl", "cannot complete the keys of %s: %s", r->user, strerror(-rc));
		xc_store_req_free(w);
		return;
	}
	CM_LOGI("sasl", "%s logged in with PLAIN: its missing SCRAM keys are being stored",
	        r->user);
}

static void on_account(struct xc_store_req *r)
{
	struct xc_sasl *s = r->arg;
	struct xc_scram_creds decoy;
	enum xc_scram_hash h;
	int rc;

	if (!s) { /* the connection went away */
		xc_store_req_free(r);
		return;
	}
	s->pending = NULL;
	if (r->err) {
		CM_LOGW("sasl", "cannot look %s up: %s", r->user, strerror(-r->err));
		xc_store_req_free(r);
		fail(s, "temporary-auth-failure", false);
		return;
	}
	if (s->mech == XC_SASL_PLAIN) {
		rc = plain_check(s, r);
		if (rc == 0)
			complete_keys(s, r);
		xc_store_req_free(r);
		if (rc == 0)
			succeed(s, NULL, 0);
		else
			fail(s, rc == -EACCES ? "not-authorized" : "temporary-auth-failure",
			     rc == -EACCES);
		return;
	}
	h = s->mech == XC_SASL_SCRAM_SHA1 ? XC_SCRAM_SHA1 : XC_SCRAM_SHA256;
	if (r->found && r->creds[h].iter == 0)
		CM_LOGI(
		    "sasl",
		    "%s: %s has no %s keys (an account brought over with SCRAM-SHA-1 keys only); "
		    "it gains them at its first PLAIN login or password change: until then "
		    "list %s in auth.disabled_mechanisms",
		    s->src, r->user, xc_scram_mech_name(h), xc_scram_mech_name(h));
	if (!r->found || r->creds[h].iter == 0) {
		struct xc_server *srv = srv_of(s->c);

		xc_scram_decoy(h, srv->decoy_secret, sizeof(srv->decoy_secret), s->user,
		               (uint32_t)srv->cfg->auth.scram_iterations, &decoy);
		scram_continue(s, &decoy);
	} else {
		scram_continue(s, &r->creds[h]);
	}
	xc_store_req_free(r);
}

/* --- the exchange ------------------------------------------------------------------------ */

/* The client's first message: data, len bytes (decoded). */
static void first_message(struct xc_sasl *s, const char *data, size_t len)
{
	struct xc_c2s *c = s->c;
	char err[CM_ERR_MAX];
	int rc;

	s->started = true;
	if (s->mech == XC_SASL_PLAIN) {
		/* authzid NUL authcid NUL password */
		const char *authz = data, *authc, *pass, *end = data + len;
		char *user = NULL;

		authc = memchr(authz, '\0', len);
		pass = authc ? memchr(authc + 1, '\0', (size_t)(end - authc - 1)) : NULL;
		if (!authc || !pass || memchr(pass + 1, '\0', (size_t)(end - pass - 1))) {
			fail(s, "malformed-request", false);
			return;
		}
		authc++;
		pass++;
		rc = xc_jid_nodeprep(authc, (size_t)(pass - 1 - authc), &user, NULL, 0);
		if (rc == -ENOMEM) {
			fail(s, "temporary-auth-failure", false);
			return;
		}
		if (rc) {
			fail(s, "not-authorized", true);
			return;
		}
		s->user = user;
		if (authc - 1 > authz) {
			/* an authzid other than the account itself is refused */
			char want[XC_JID_PART_MAX * 2 + 2];

			snprintf(want, sizeof(want), "%s@%s", user, c->host);
			if ((size_t)(authc - 1 - authz) != strlen(want) ||
			    memcmp(authz, want, strlen(want)) != 0) {
				fail(s, "invalid-authzid", false);
				return;
			}
		}
		if (throttled(s, user)) {
			cm_metrics_inc(srv_of(c)->m.auth_throttled);
			fail(s, "temporary-auth-failure", false);
			return;
		}
		s->password = malloc((size_t)(end - pass) + 1);
		if (!s->password) {
			fail(s, "temporary-auth-failure", false);
			return;
		}
		memcpy(s->password, pass, (size_t)(end - pass));
		s->password[end - pass] = '\0';
	} else {
		rc = xc_scram_client_first(&s->scram, data, len, err, sizeof(err));
		if (rc == -EOPNOTSUPP)
			s->cb_refused = true;
		if (rc) {
			CM_LOGD("sasl", "%s: %s", s->src, err);
			fail(s, "malformed-request", false);
			return;
		}
		if (s->scram.authzid) {
			char want[XC_JID_PART_MAX * 2 + 2];

			snprintf(want, sizeof(want), "%s@%s", s->scram.user, c->host);
			if (strcmp(s->scram.authzid, want) != 0) {
				fail(s, "invalid-authzid", false);
				return;
			}
		}
		s->user = strdup(s->scram.user);
		if (!s->user) {
			fail(s, "temporary-auth-failure", false);
			return;
		}
		if (throttled(s, s->user)) {
			cm_metrics_inc(srv_of(c)->m.auth_throttled);
			fail(s, "temporary-auth-failure", false);
			return;
		}
	}
	if (lookup(s) != 0)
		fail(s, "temporary-auth-failure", false);
}

/* Base64 text into out ("=" is empty). 0 or -EINVAL. */
static int decode_text(const char *t, struct cm_buf *out)
{
	if (!t)
		return -EINVAL;
	if (strcmp(t, "=") == 0 || !*t)
		return 0;
	return cm_crypto_b64_decode(out, t, strlen(t), CM_B64_STD);
}

/* Base64 text of an element into out. */
static int decode(const struct cm_xml_node *n, struct cm_buf *out)
{
	return decode_text(cm_xml_text(n), out);
}

void xc_sasl_auth(struct xc_c2s *c, const struct cm_xml_node *auth)
{
	xc_sasl_begin(c, cm_xml_attr(auth, "mechanism"), cm_xml_text(auth));
}

void xc_sasl_begin(struct xc_c2s *c, const char *mech, const char *initial)
{
	struct xc_sasl *s = sasl_new(c);
	struct xc_scram_cb cb[XC_SCRAM_CB_MAX];
	size_t ncb;
	bool has_cb, plus = false, strict, off;
	struct cm_buf in;
	const char *t;

	if (!s) {
		xc_c2s_stream_error(c, "internal-server-error", NULL);
		return;
	}
	if (s->started || s->pending) {
		reset(s); /* a new <auth/> aborts the exchange under way */
	}
	if (!mech)
		mech = "";
	ncb = channel_bindings(c, cb);
	has_cb = ncb > 0;
	off = disabled(c, mech);
	if (!off && strcmp(mech, "PLAIN") == 0 && plain_allowed(c)) {
		s->mech = XC_SASL_PLAIN;
	} else if (!off &&
	           (strcmp(mech, "SCRAM-SHA-256") == 0 || strcmp(mech, "SCRAM-SHA-1") == 0 ||
	            (has_cb && (strcmp(mech, "SCRAM-SHA-256-PLUS") == 0 ||
	                        strcmp(mech, "SCRAM-SHA-1-PLUS") == 0)))) {
		plus = strstr(mech, "-PLUS") != NULL;
		s->mech = strncmp(mech, "SCRAM-SHA-256", 13) == 0 ? XC_SASL_SCRAM_SHA256
		                                                  : XC_SASL_SCRAM_SHA1;
		/* "y" (the client could bind but thinks we cannot) after we offered -PLUS: a
		 * downgrade by RFC 5802, but also what clients that know only tls-unique say on
		 * TLS 1.3 (slixmpp), so refused only when auth.strict_channel_binding is on, and
		 * never after the client's -PLUS attempt with a type we lack (its honest fallback)
		 */
		strict = srv_of(c)->cfg->auth.strict_channel_binding && !s->cb_refused;
		xc_scram_init(&s->scram,
		              s->mech == XC_SASL_SCRAM_SHA1 ? XC_SCRAM_SHA1 : XC_SCRAM_SHA256, plus,
		              has_cb && strict, cb, ncb);
	} else {
		s->mech = XC_SASL_PLAIN;
		reset(s);
		xc_c2s__sasl_failure(c,
		                     !off && strcmp(mech, "PLAIN") == 0 ? "encryption-required"
		                                                        : "invalid-mechanism",
		                     NULL);
		return;
	}
	t = initial;
	if (!t || !*t) {
		/* no initial response: ask for it with an empty challenge */
		xc_c2s__sasl_challenge(c, NULL, 0);
		return;
	}
	cm_buf_init(&in, 8192);
	if (decode_text(t, &in) != 0) {
		cm_buf_free(&in);
		fail(s, "incorrect-encoding", false);
		return;
	}
	first_message(s, in.data ? in.data : "", in.len);
	cm_buf_free(&in);
}

void xc_sasl_response(struct xc_c2s *c, const struct cm_xml_node *resp)
{
	struct xc_sasl *s = c->sasl;
	struct cm_buf in, out;
	char err[CM_ERR_MAX];
	int rc;

	if (!s || s->pending) {
		/* a response nobody asked for */
		xc_c2s_stream_error(c, "not-authorized",
		                    "no SASL exchange is waiting for a response");
		return;
	}
	cm_buf_init(&in, 8192);
	if (decode(resp, &in) != 0) {
		cm_buf_free(&in);
		fail(s, "incorrect-encoding", false);
		return;
	}
	if (!s->started) {
		first_message(s, in.data ? in.data : "", in.len);
		cm_buf_free(&in);
		return;
	}
	if (s->mech == XC_SASL_PLAIN || s->scram.st != XC_SCRAM_WANT_FINAL) {
		cm_buf_free(&in);
		fail(s, "malformed-request", false);
		return;
	}
	cm_buf_init(&out, 0);
	rc = xc_scram_client_final(&s->scram, in.data ? in.data : "", in.len, &out, err,
	                           sizeof(err));
	cm_buf_free(&in);
	if (rc == 0) {
		succeed(s, out.data, out.len);
	} else {
		CM_LOGD("sasl", "%s: %s", s->src, err);
		fail(s, rc == -EACCES ? "not-authorized" : "malformed-request", rc == -EACCES);
	}
	cm_buf_free(&out);
}

void xc_sasl_abort(struct xc_c2s *c)
{
	struct xc_sasl *s = c->sasl;

	if (s)
		reset(s);
	xc_c2s__sasl_failure(c, "aborted", NULL);
}
