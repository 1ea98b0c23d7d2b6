/* turn.c - the STUN/TURN control path: Binding, Allocate, Refresh, CreatePermission and
 * ChannelBind requests, with long-term authentication (RFC 8489 9.2.4) and the unauthenticated
 * rate limit. Requests are decoded by libre (stun_codec.c); the answers are encoded there too. */
#include "server.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "stun_codec.h"

struct ctx {
	struct icicle_worker *w;
	const struct icicle_client *c;
	struct icicle_req *req;
	uint64_t now_ms;
	uint64_t wall;
	bool v6_refused; /* ADDITIONAL-ADDRESS-FAMILY asked for IPv6 relays that are not offered */
};

/* Encode and send; key NULL for unauthenticated answers. */
static void send_resp(struct ctx *x, struct icicle_resp *r)
{
	const struct icicle_config *cfg = x->w->ic->cfg;
	uint8_t buf[1024];
	ssize_t n;

	r->method = x->req->method;
	r->tid = x->req->tid;
	r->software = cfg->software;
	r->fingerprint = x->req->fingerprint;
	n = icicle_codec_encode(r, buf, sizeof(buf));
	if (n < 0) {
		CM_LOGW("turn", "cannot encode a response: %s", strerror((int)-n));
		return;
	}
	icicle_client_send(x->w, x->c, buf, (size_t)n);
}

static void send_error(struct ctx *x, uint16_t code, const char *reason, const uint8_t *key)
{
	struct icicle_resp r = {0};

	CM_LOGD("turn", "method 0x%03x: %u %s", x->req->method, code, reason);
	r.cls = ICICLE_C_ERROR;
	r.code = code;
	r.reason = reason;
	if (key) {
		r.key = key;
		r.keylen = ICICLE_KEY_LEN;
	}
	send_resp(x, &r);
}

/* 401 or 438 with REALM and a fresh NONCE. */
static void send_challenge(struct ctx *x, uint16_t code)
{
	struct icicle_resp r = {0};
	char nonce[ICICLE_NONCE_LEN + 1];

	icicle_nonce_make(&x->w->ic->auth, (const struct sockaddr *)&x->c->addr, x->wall, nonce);
	r.cls = ICICLE_C_ERROR;
	r.code = code;
	r.reason = code == 438 ? "Stale Nonce" : "Unauthorized";
	r.realm = x->w->ic->cfg->realm;
	r.nonce = nonce;
	send_resp(x, &r);
}

/* The unauthenticated budget of this source; false (and counted) when it is spent. */
static bool unauth_ok(struct ctx *x)
{
	/* Only UDP sources can be spoofed; TCP and TLS peers have completed a handshake, and
	 * many clients behind one carrier NAT must not share a budget there. */
	if (x->c->tp != ICICLE_UDP)
		return true;
	if (icicle_ratelimit_take(&x->w->rl, (const struct sockaddr *)&x->c->addr, x->now_ms))
		return true;
	cm_metrics_inc(x->w->ic->metrics.rate_limited);
	return false;
}

/* RFC 8489 9.2.4. On success key receives the long-term key. alloc_key: the key of the
 * client's allocation, checked instead of looking the user up (secrets may have rotated since).
 * Returns true when authenticated; otherwise the answer has been sent (or dropped). */
static bool authenticate(struct ctx *x, const struct icicle_alloc *a, uint8_t key[ICICLE_KEY_LEN])
{
	struct icicle *ic = x->w->ic;
	struct icicle_req *req = x->req;
	uint8_t keys[ICICLE_MAX_KEYS][ICICLE_KEY_LEN];
	struct icicle_creds *creds;
	int n, i, rc;

	if (!req->has_mi) {
		cm_metrics_inc(ic->metrics.auth_fail_missing);
		if (unauth_ok(x))
			send_challenge(x, 401);
		return false;
	}
	if (!req->username || !req->realm || !req->nonce) {
		if (unauth_ok(x))
			send_error(x, 400, "Bad Request", NULL);
		return false;
	}
	if (a) {
		if (strcmp(a->username, req->username) != 0) {
			/* 441 must carry integrity; use the allocation's key only if it verifies.
			 */
			if (icicle_stun_check_mi((uint8_t *)(uintptr_t)req->raw, req->rawlen,
			                         a->key, ICICLE_KEY_LEN) == 0)
				send_error(x, 441, "Wrong Credentials", NULL);
			else if (unauth_ok(x))
				send_challenge(x, 401);
			return false;
		}
		if (a->rest_expiry && a->rest_expiry < x->wall) {
			cm_metrics_inc(ic->metrics.auth_fail_expired);
			if (unauth_ok(x))
				send_challenge(x, 401);
			return false;
		}
		memcpy(keys[0], a->key, ICICLE_KEY_LEN);
		n = 1;
	} else {
		creds = icicle_auth_get(&ic->auth);
		n = icicle_auth_keys(creds, req->username, ic->cfg->realm, x->wall, keys,
		                     ICICLE_MAX_KEYS);
		icicle_creds_unref(creds);
		if (n < 0) {
			cm_metrics_inc(n == -EKEYEXPIRED ? ic->metrics.auth_fail_expired
			                                 : ic->metrics.auth_fail_unknown_user);
			CM_LOGD("turn", "auth failed for \"%s\": %s", req->username,
			        n == -EKEYEXPIRED ? "expired" : "unknown user");
			if (unauth_ok(x))
				send_challenge(x, 401);
			return false;
		}
	}
	rc = -EBADMSG;
	for (i = 0; i < n; i++) {
		rc = icicle_stun_check_mi((uint8_t *)(uintptr_t)req->raw, req->rawlen, keys[i],
		                          ICICLE_KEY_LEN);
		if (rc == 0) {
			memcpy(key, keys[i], ICICLE_KEY_LEN);
			break;
		}
	}
	memset(keys, 0, sizeof(keys));
	if (rc != 0) {
		cm_metrics_inc(ic->metrics.auth_fail_bad_integrity);
		CM_LOGD("turn", "bad MESSAGE-INTEGRITY from \"%s\"", req->username);
		if (unauth_ok(x))
			send_challenge(x, 401);
		return false;
	}
	rc = icicle_nonce_check(&ic->auth, (const struct sockaddr *)&x->c->addr, req->nonce,
	                        x->wall);
	if (rc != 0) {
		cm_metrics_inc(ic->metrics.auth_fail_stale_nonce);
		if (unauth_ok(x))
			send_challenge(x, 438);
		return false;
	}
	return true;
}

static uint32_t grant_lifetime(const struct icicle_config *cfg, const struct icicle_req *req,
                               bool allocate)
{
	uint32_t def = (uint32_t)(cfg->lifetimes.allocation_default / 1000);
	uint32_t max = (uint32_t)(cfg->lifetimes.allocation_max / 1000);
	uint32_t v;

	if (!req->has_lifetime)
		return def;
	v = req->lifetime < max ? req->lifetime : max;
	return allocate && v < def ? def : v;
}

static void alloc_success(struct ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	size_t k = 0;
	int i;

	r.cls = ICICLE_C_SUCCESS;
	for (i = 0; i < 2; i++)
		if (a->relay[i].fd >= 0)
			r.xor_relayed[k++] = (const struct sockaddr *)&a->relay[i].adv;
	r.has_lifetime = true;
	r.lifetime = a->lifetime;
	r.xor_mapped = (const struct sockaddr *)&x->c->addr;
	r.key = a->key;
	r.keylen = ICICLE_KEY_LEN;
	r.has_token = a->has_rsv_token;
	r.token = a->rsv_token;
	if (x->v6_refused || (x->req->extra.has_additional_family && a->relay[1].fd < 0)) {
		r.addr_err_family = 0x02;
		r.addr_err_code = 440;
		r.addr_err_reason = "Address Family not Supported";
	}
	send_resp(x, &r);
}

static void do_allocate(struct ctx *x, struct icicle_alloc *a)
{
	struct icicle *ic = x->w->ic;
	struct icicle_req *req = x->req;
	uint8_t key[ICICLE_KEY_LEN];
	struct icicle_alloc_req rq = {0};
	bool fam4 = true, fam6 = false;
	int rc;

	cm_metrics_inc(ic->metrics.requests_allocate);
	if (!authenticate(x, a, key))
		return;
	if (a) {
		if (memcmp(a->tid, req->tid, sizeof(a->tid)) == 0)
			alloc_success(x, a); /* a retransmission */
		else
			send_error(x, 437, "Allocation Mismatch", key);
		return;
	}
	if (!req->has_transport) {
		send_error(x, 400, "Bad Request", key);
		return;
	}
	if (req->transport != IPPROTO_UDP) {
		send_error(x, 442, "Unsupported Transport Protocol", key);
		return;
	}
	if (req->has_token &&
	    (req->has_even_port || req->has_req_family || req->extra.has_additional_family)) {
		send_error(x, 400, "Bad Request", key);
		return;
	}
	if (req->has_even_port && req->even_port_r && req->extra.has_additional_family) {
		send_error(x, 400, "Bad Request", key); /* RFC 8656 7.2 step 5 */
		return;
	}
	if (req->has_req_family && req->extra.has_additional_family) {
		send_error(x, 400, "Bad Request", key);
		return;
	}
	if (req->has_req_family) {
		if (req->req_family == 0x02) {
			fam4 = false;
			fam6 = true;
		} else if (req->req_family != 0x01) {
			send_error(x, 440, "Address Family not Supported", key);
			return;
		}
	}
	if (req->extra.has_additional_family) {
		if (req->extra.additional_family != 0x02) {
			send_error(x, 400, "Bad Request", key);
			return;
		}
		/* IPv6 too when it is configured; otherwise the IPv4 relay alone, and the
		 * success says why (ADDRESS-ERROR-CODE 440). */
		fam6 = ic->cfg->relay.ipv6 && *ic->cfg->relay.ipv6;
		x->v6_refused = !fam6;
	}
	if (!req->has_token &&
	    ((fam4 && (!ic->cfg->relay.ipv4 || !*ic->cfg->relay.ipv4)) ||
	     (fam6 && !fam4 && (!ic->cfg->relay.ipv6 || !*ic->cfg->relay.ipv6)))) {
		send_error(x, 440, "Address Family not Supported", key);
		return;
	}
	rq.fam4 = fam4;
	rq.fam6 = fam6;
	rq.even = req->has_even_port;
	rq.reserve = req->has_even_port && req->even_port_r;
	rq.dont_fragment = req->dont_fragment;
	rq.has_token = req->has_token;
	rq.token = req->token;
	rc = icicle_alloc_create(x->w, x->c, req->username, &rq, &a);
	if (rc != 0) {
		if (rc == -EDQUOT) {
			cm_metrics_inc(ic->metrics.quota_user);
			send_error(x, 486, "Allocation Quota Reached", key);
		} else {
			if (rc == -EUSERS)
				cm_metrics_inc(ic->metrics.quota_total);
			else if (rc == -ENOENT)
				CM_LOGD("turn", "unknown or expired RESERVATION-TOKEN");
			else
				CM_LOGW("turn", "cannot allocate a relay: %s", strerror(-rc));
			send_error(x, rc == -EAFNOSUPPORT ? 440 : 508,
			           rc == -EAFNOSUPPORT ? "Address Family not Supported"
			                               : "Insufficient Capacity",
			           key);
		}
		return;
	}
	memcpy(a->key, key, sizeof(key));
	memcpy(a->tid, req->tid, sizeof(a->tid));
	a->rest_expiry = icicle_auth_rest_expiry(req->username);
	{
		struct icicle_creds *creds = icicle_auth_get(&ic->auth);

		/* A static user whose name looks like a REST one must not expire. */
		if (!creds || icicle_creds_nsecrets(creds) == 0)
			a->rest_expiry = 0;
		icicle_creds_unref(creds);
	}
	icicle_alloc_set_expiry(a, grant_lifetime(ic->cfg, req, true));
	CM_LOGD("turn", "allocation for \"%s\", lifetime %u s", a->username, a->lifetime);
	alloc_success(x, a);
	memset(key, 0, sizeof(key));
}

static void do_refresh(struct ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint8_t key[ICICLE_KEY_LEN];
	uint32_t life;

	cm_metrics_inc(x->w->ic->metrics.requests_refresh);
	if (!a) {
		/* Nothing to authenticate against but the user database: do it for the 437. */
		if (!authenticate(x, NULL, key))
			return;
		send_error(x, 437, "Allocation Mismatch", key);
		return;
	}
	if (!authenticate(x, a, key))
		return;
	life = grant_lifetime(x->w->ic->cfg, x->req, false);
	r.cls = ICICLE_C_SUCCESS;
	r.has_lifetime = true;
	r.lifetime = life;
	r.key = key;
	r.keylen = ICICLE_KEY_LEN;
	if (life == 0)
		icicle_alloc_destroy(a);
	else
		icicle_alloc_set_expiry(a, life);
	send_resp(x, &r);
}

/* Common checks on the XOR-PEER-ADDRESS list; sends the error and returns false on failure.
 * with_port: the port matters (ChannelBind) rather than the address alone (CreatePermission). */
static bool check_peers(struct ctx *x, struct icicle_alloc *a, const uint8_t *key, bool with_port)
{
	struct icicle *ic = x->w->ic;
	size_t i;

	if (x->req->npeers == 0 || x->req->too_many_peers) {
		send_error(x, 400, "Bad Request", key);
		return false;
	}
	for (i = 0; i < x->req->npeers; i++) {
		const struct sockaddr *p = (const struct sockaddr *)&x->req->peers[i];
		int idx = p->sa_family == AF_INET ? 0 : 1;

		/* The policy first: a denied address is refused as such whatever its family. */
		if (!(with_port ? icicle_filter_allowed(&ic->filter, p)
		                : icicle_filter_allowed_ip(&ic->filter, p))) {
			cm_metrics_inc(ic->metrics.denied_peers);
			send_error(x, 403, "Forbidden", key);
			return false;
		}
		if (a->relay[idx].fd < 0) {
			send_error(x, 443, "Peer Address Family Mismatch", key);
			return false;
		}
	}
	return true;
}

static void do_createperm(struct ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint8_t key[ICICLE_KEY_LEN], ip[16];
	size_t i;

	cm_metrics_inc(x->w->ic->metrics.requests_createperm);
	if (!authenticate(x, a, key))
		return;
	if (!a) {
		send_error(x, 437, "Allocation Mismatch", key);
		return;
	}
	if (!check_peers(x, a, key, false))
		return;
	for (i = 0; i < x->req->npeers; i++) {
		icicle_ip16((const struct sockaddr *)&x->req->peers[i], ip);
		if (icicle_perm_add(a, ip, x->now_ms) != 0) {
			cm_metrics_inc(x->w->ic->metrics.quota_permissions);
			send_error(x, 508, "Insufficient Capacity", key);
			return;
		}
	}
	icicle_alloc_reschedule(a);
	r.cls = ICICLE_C_SUCCESS;
	r.key = key;
	r.keylen = ICICLE_KEY_LEN;
	send_resp(x, &r);
}

static void do_chanbind(struct ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint8_t key[ICICLE_KEY_LEN], ip[16];
	const struct sockaddr *peer;
	int rc;

	cm_metrics_inc(x->w->ic->metrics.requests_chanbind);
	if (!authenticate(x, a, key))
		return;
	if (!a) {
		send_error(x, 437, "Allocation Mismatch", key);
		return;
	}
	/* RFC 8656 narrowed channels to 0x4000-0x4FFF; RFC 5766 clients (coturn's among them)
	 * still pick from 0x4000-0x7FFF, which the ChannelData framing allows. */
	if (!x->req->has_channel || x->req->channel < 0x4000 || x->req->channel > 0x7fff ||
	    x->req->npeers != 1) {
		CM_LOGD("turn", "ChannelBind: channel %s 0x%04x, %zu peer(s)",
		        x->req->has_channel ? "present" : "absent", x->req->channel,
		        x->req->npeers);
		send_error(x, 400, "Bad Request", key);
		return;
	}
	if (!check_peers(x, a, key, true))
		return;
	peer = (const struct sockaddr *)&x->req->peers[0];
	rc = icicle_chan_bind(a, x->req->channel, peer, x->now_ms);
	if (rc == -EINVAL) {
		CM_LOGD("turn", "ChannelBind: 0x%04x or its peer is bound otherwise",
		        x->req->channel);
		send_error(x, 400, "Bad Request", key);
		return;
	}
	icicle_ip16(peer, ip);
	if (rc == 0 && icicle_perm_add(a, ip, x->now_ms) != 0)
		rc = -EDQUOT;
	if (rc != 0) {
		cm_metrics_inc(x->w->ic->metrics.quota_channels);
		send_error(x, 508, "Insufficient Capacity", key);
		return;
	}
	icicle_alloc_reschedule(a);
	r.cls = ICICLE_C_SUCCESS;
	r.key = key;
	r.keylen = ICICLE_KEY_LEN;
	send_resp(x, &r);
}

static void do_binding(struct ctx *x)
{
	struct icicle_resp r = {0};

	cm_metrics_inc(x->w->ic->metrics.requests_binding);
	if (!unauth_ok(x))
		return;
	r.cls = ICICLE_C_SUCCESS;
	r.xor_mapped = (const struct sockaddr *)&x->c->addr;
	send_resp(x, &r);
}

void icicle_turn_handle(struct icicle_worker *w, const struct icicle_client *c, uint8_t *msg,
                        size_t len)
{
	struct icicle_req req;
	struct ctx x;
	struct icicle_alloc *a;
	int rc;

	rc = icicle_codec_decode(&req, msg, len);
	if (rc != 0) {
		cm_metrics_inc(w->ic->metrics.malformed);
		return;
	}
	x.w = w;
	x.c = c;
	x.req = &req;
	x.now_ms = uv_now(&w->loop);
	x.wall = icicle_wall_now();
	x.v6_refused = false;
	if (req.cls != ICICLE_C_REQUEST)
		goto out; /* indications other than Send, and stray responses */
	if (req.peer_family_bad) {
		if (unauth_ok(&x))
			send_error(&x, 443, "Peer Address Family Mismatch", NULL);
		goto out;
	}
	if (req.nunknown > 0) {
		struct icicle_resp r = {0};

		if (!unauth_ok(&x))
			goto out;
		r.cls = ICICLE_C_ERROR;
		r.code = 420;
		r.reason = "Unknown Attribute";
		r.unknown = req.unknown;
		r.nunknown = req.nunknown;
		send_resp(&x, &r);
		goto out;
	}
	a = req.method == ICICLE_M_BINDING ? NULL : icicle_alloc_find(w, c);
	switch (req.method) {
	case ICICLE_M_BINDING:
		do_binding(&x);
		break;
	case ICICLE_M_ALLOCATE:
		do_allocate(&x, a);
		break;
	case ICICLE_M_REFRESH:
		do_refresh(&x, a);
		break;
	case ICICLE_M_CREATEPERM:
		do_createperm(&x, a);
		break;
	case ICICLE_M_CHANBIND:
		do_chanbind(&x, a);
		break;
	default:
		cm_metrics_inc(w->ic->metrics.requests_other);
		if (unauth_ok(&x))
			send_error(&x, 400, "Bad Request", NULL);
		break;
	}
out:
	icicle_codec_release(&req);
}
