/* turn_auth.c - long-term authentication of control requests (RFC 8489 9.2.4): the nonce with
 * its security-feature cookie, PASSWORD-ALGORITHMS / PASSWORD-ALGORITHM (MD5 or SHA-256 keys),
 * MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256, the unauthenticated rate limit, and the
 * encoding of answers signed the way the request was. */
#include "turn_int.h"

#include <errno.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "batch.h"
#include "icicle.h"
#include "integrity.h"

/* PASSWORD-ALGORITHMS offered with every nonce: SHA-256 first (clients take the first they
 * know), then MD5, both without parameters. */
static const uint8_t pwalgs[8] = {0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};

void icicle_turn__send(struct icicle_turn_ctx *x, struct icicle_resp *r, bool integrity)
{
	const struct icicle_turn_config *cfg = &x->t->cfg;
	uint8_t buf[1024];
	ssize_t n;

	r->method = x->req->method;
	r->tid = x->req->tid;
	r->software = cfg->software;
	r->fingerprint = x->req->fingerprint;
	if (integrity && x->key) {
		r->key = x->key;
		r->keylen = x->keylen;
		r->mi_sha256 = x->mi_sha256;
	}
	n = icicle_codec_encode(r, buf, sizeof(buf));
	if (n < 0) {
		CM_LOGW("turn", "cannot encode a response: %s", strerror((int)-n));
		return;
	}
	icicle_client_send(cfg->batch, x->c, buf, (size_t)n);
}

void icicle_turn__error(struct icicle_turn_ctx *x, uint16_t code, const char *reason,
                        bool integrity)
{
	struct icicle_resp r = {0};

	CM_LOGD("turn", "method 0x%03x: %u %s", x->req->method, code, reason);
	r.cls = ICICLE_C_ERROR;
	r.code = code;
	r.reason = reason;
	icicle_turn__send(x, &r, integrity);
}

/* 401 or 438 with REALM, a fresh NONCE and the PASSWORD-ALGORITHMS it stands for. */
static void send_challenge(struct icicle_turn_ctx *x, uint16_t code)
{
	struct icicle_resp r = {0};
	char nonce[ICICLE_NONCE_LEN + 1];

	icicle_nonce_make(x->t->cfg.auth, (const struct sockaddr *)&x->c->addr, x->wall, nonce);
	r.cls = ICICLE_C_ERROR;
	r.code = code;
	r.reason = code == 438 ? "Stale Nonce" : "Unauthorized";
	r.realm = x->t->cfg.realm;
	r.nonce = nonce;
	r.pwalgs = pwalgs;
	r.pwalgs_len = sizeof(pwalgs);
	icicle_turn__send(x, &r, false);
}

bool icicle_turn__unauth_ok(struct icicle_turn_ctx *x)
{
	bool udp = x->c->tp == ICICLE_UDP;

	/* TCP and TLS sources have their own budgets: spoofed UDP in a victim's name must not
	 * spend what the victim's real connections need. */
	if (icicle_ratelimit_take(udp ? &x->t->rl : &x->t->rl_stream,
	                          (const struct sockaddr *)&x->c->addr, x->now_ms))
		return true;
	cm_metrics_inc(x->t->cfg.mt->rate_limited);
	/* A stream client waiting for an answer that never comes would hold its connection:
	 * end it, it cost a handshake to open. */
	if (!udp && x->c->conn)
		icicle_conn_close(x->c->conn);
	return false;
}

/* The password algorithm of the request (RFC 8489 9.2.4, the checks on a nonce whose cookie
 * announces password algorithms): MD5 when the client names none; otherwise it must echo our
 * PASSWORD-ALGORITHMS and pick one of them. 0 when it does not (the 400 has been sent). */
static int password_alg(struct icicle_turn_ctx *x)
{
	const struct icicle_attr_extra *e = &x->req->extra;

	if (strncmp(x->req->nonce, ICICLE_NONCE_COOKIE, ICICLE_NONCE_COOKIE_LEN) != 0)
		return ICICLE_PWALG_MD5; /* not our nonce: 438 follows */
	if (!e->has_pwalg && !e->has_pwalgs)
		return ICICLE_PWALG_MD5;
	if (e->has_pwalg && e->has_pwalgs && e->pwalgs_len == sizeof(pwalgs) &&
	    memcmp(e->pwalgs, pwalgs, sizeof(pwalgs)) == 0 && e->pwalg_params == 0 &&
	    (e->pwalg == ICICLE_PWALG_MD5 || e->pwalg == ICICLE_PWALG_SHA256))
		return e->pwalg;
	if (icicle_turn__unauth_ok(x))
		icicle_turn__error(x, 400, "Bad Request", false);
	return 0;
}

static const uint8_t *alg_key(const struct icicle_key *k, int alg, size_t *len)
{
	*len = alg == ICICLE_PWALG_SHA256 ? sizeof(k->sha256) : sizeof(k->md5);
	return alg == ICICLE_PWALG_SHA256 ? k->sha256 : k->md5;
}

bool icicle_turn__auth(struct icicle_turn_ctx *x, const struct icicle_alloc *a)
{
	const struct icicle_turn_config *cfg = &x->t->cfg;
	const struct icicle_metrics *mt = cfg->mt;
	struct icicle_req *req = x->req;
	uint8_t *raw = (uint8_t *)(uintptr_t)req->raw;
	enum icicle_mi_kind kind = req->extra.has_mi_sha256 ? ICICLE_MI_SHA256 : ICICLE_MI_SHA1;
	struct icicle_key keys[ICICLE_MAX_KEYS];
	struct icicle_creds *creds;
	const uint8_t *k;
	size_t klen;
	int n, i, rc, alg;

	if (!req->has_mi && !req->extra.has_mi_sha256) {
		cm_metrics_inc(mt->auth_fail_missing);
		if (icicle_turn__unauth_ok(x))
			send_challenge(x, 401);
		return false;
	}
	if (!req->username || !req->realm || !req->nonce) {
		if (icicle_turn__unauth_ok(x))
			icicle_turn__error(x, 400, "Bad Request", false);
		return false;
	}
	alg = password_alg(x);
	if (alg == 0)
		return false;
	if (a) {
		if (strcmp(a->username, req->username) != 0) {
			/* 441 must carry integrity; use the allocation's key only if it verifies.
			 */
			k = alg_key(&a->keys, alg, &klen);
			if (icicle_mi_check(raw, req->rawlen, kind, k, klen) == 0) {
				x->keys = a->keys;
				x->key = alg_key(&x->keys, alg, &x->keylen);
				x->mi_sha256 = kind == ICICLE_MI_SHA256;
				icicle_turn__error(x, 441, "Wrong Credentials", true);
			} else if (icicle_turn__unauth_ok(x)) {
				send_challenge(x, 401);
			}
			return false;
		}
		if (a->rest_expiry && a->rest_expiry < x->wall) {
			cm_metrics_inc(mt->auth_fail_expired);
			if (icicle_turn__unauth_ok(x))
				send_challenge(x, 401);
			return false;
		}
		keys[0] = a->keys;
		n = 1;
	} else {
		creds = icicle_auth_get(cfg->auth);
		n = icicle_auth_keys(creds, req->username, cfg->realm, x->wall, keys,
		                     ICICLE_MAX_KEYS);
		icicle_creds_unref(creds);
		if (n < 0) {
			cm_metrics_inc(n == -EKEYEXPIRED ? mt->auth_fail_expired
			                                 : mt->auth_fail_unknown_user);
			CM_LOGD("turn", "auth failed for \"%s\": %s", req->username,
			        n == -EKEYEXPIRED ? "expired" : "unknown user");
			if (icicle_turn__unauth_ok(x))
				send_challenge(x, 401);
			return false;
		}
	}
	/* With both attributes, MESSAGE-INTEGRITY-SHA256 is the one checked (RFC 8489 9.2.4). */
	rc = -EBADMSG;
	for (i = 0; i < n && rc != 0; i++) {
		k = alg_key(&keys[i], alg, &klen);
		rc = icicle_mi_check(raw, req->rawlen, kind, k, klen);
		if (rc == 0)
			x->keys = keys[i];
	}
	memset(keys, 0, sizeof(keys));
	if (rc != 0) {
		cm_metrics_inc(mt->auth_fail_bad_integrity);
		CM_LOGD("turn", "bad MESSAGE-INTEGRITY%s from \"%s\"",
		        kind == ICICLE_MI_SHA256 ? "-SHA256" : "", req->username);
		if (icicle_turn__unauth_ok(x))
			send_challenge(x, 401);
		return false;
	}
	rc = icicle_nonce_check(cfg->auth, (const struct sockaddr *)&x->c->addr, req->nonce,
	                        x->wall);
	if (rc != 0) {
		cm_metrics_inc(mt->auth_fail_stale_nonce);
		if (icicle_turn__unauth_ok(x))
			send_challenge(x, 438);
		return false;
	}
	x->key = alg_key(&x->keys, alg, &x->keylen);
	x->mi_sha256 = kind == ICICLE_MI_SHA256;
	return true;
}
