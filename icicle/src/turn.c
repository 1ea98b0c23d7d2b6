/* turn.c - the STUN/TURN control path (see turn.h): Binding, Allocate, Refresh,
 * CreatePermission and ChannelBind requests. Authentication, the unauthenticated rate limit and
 * the encoding of answers are in turn_auth.c; requests are decoded by libre (stun_codec.c). */
#include "turn_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "filter.h"
#include "icicle.h"

int icicle_turn_init(struct icicle_turn *t, struct cm_loop *l, const struct icicle_turn_config *cfg)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	t->loop = l;
	rc = icicle_ratelimit_init(&t->rl, cfg->unauth_rate, cfg->unauth_burst);
	if (rc == 0)
		rc = icicle_ratelimit_init(&t->rl_stream, cfg->unauth_rate, cfg->unauth_burst);
	return rc;
}

void icicle_turn_close(struct icicle_turn *t)
{
	icicle_ratelimit_close(&t->rl);
	icicle_ratelimit_close(&t->rl_stream);
}

/* Seconds of wall-clock time: REST usernames and nonces carry Unix times. */
static uint64_t wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

static uint32_t grant_lifetime(const struct icicle_turn_config *cfg, const struct icicle_req *req,
                               bool allocate)
{
	uint32_t def = cfg->lifetime_default, max = cfg->lifetime_max, v;

	if (!req->has_lifetime)
		return def;
	v = req->lifetime < max ? req->lifetime : max;
	return allocate && v < def ? def : v;
}

static void alloc_success(struct icicle_turn_ctx *x, struct icicle_alloc *a)
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
	r.has_token = a->has_rsv_token;
	r.token = a->rsv_token;
	if (x->v6_refused || (x->req->extra.has_additional_family && a->relay[1].fd < 0)) {
		r.addr_err_family = 0x02;
		r.addr_err_code = 440;
		r.addr_err_reason = "Address Family not Supported";
	}
	icicle_turn__send(x, &r, true);
}

static void do_allocate(struct icicle_turn_ctx *x, struct icicle_alloc *a)
{
	const struct icicle_turn_config *cfg = &x->t->cfg;
	const struct icicle_metrics *mt = cfg->mt;
	struct icicle_req *req = x->req;
	struct icicle_alloc_req rq = {0};
	bool fam4 = true, fam6 = false, rest;
	int rc;

	cm_metrics_inc(mt->requests_allocate);
	if (!icicle_turn__auth(x, a))
		return;
	if (a) {
		if (memcmp(a->tid, req->tid, sizeof(a->tid)) == 0)
			alloc_success(x, a); /* a retransmission */
		else
			icicle_turn__error(x, 437, "Allocation Mismatch", true);
		return;
	}
	if (!req->has_transport) {
		icicle_turn__error(x, 400, "Bad Request", true);
		return;
	}
	if (req->transport != IPPROTO_UDP) {
		icicle_turn__error(x, 442, "Unsupported Transport Protocol", true);
		return;
	}
	if (req->has_token &&
	    (req->has_even_port || req->has_req_family || req->extra.has_additional_family)) {
		icicle_turn__error(x, 400, "Bad Request", true);
		return;
	}
	if (req->has_even_port && req->even_port_r && req->extra.has_additional_family) {
		icicle_turn__error(x, 400, "Bad Request", true); /* RFC 8656 7.2 step 5 */
		return;
	}
	if (req->has_req_family && req->extra.has_additional_family) {
		icicle_turn__error(x, 400, "Bad Request", true);
		return;
	}
	if (req->has_req_family) {
		if (req->req_family == 0x02) {
			fam4 = false;
			fam6 = true;
		} else if (req->req_family != 0x01) {
			icicle_turn__error(x, 440, "Address Family not Supported", true);
			return;
		}
	}
	if (req->extra.has_additional_family) {
		if (req->extra.additional_family != 0x02) {
			icicle_turn__error(x, 400, "Bad Request", true);
			return;
		}
		/* IPv6 too when it is configured; otherwise the IPv4 relay alone, and the
		 * success says why (ADDRESS-ERROR-CODE 440). */
		fam6 = cfg->relay6;
		x->v6_refused = !fam6;
	}
	if (!req->has_token && ((fam4 && !cfg->relay4) || (fam6 && !fam4 && !cfg->relay6))) {
		icicle_turn__error(x, 440, "Address Family not Supported", true);
		return;
	}
	rq.fam4 = fam4;
	rq.fam6 = fam6;
	rq.even = req->has_even_port;
	rq.reserve = req->has_even_port && req->even_port_r;
	rq.dont_fragment = req->dont_fragment;
	rq.has_token = req->has_token;
	rq.token = req->token;
	{
		struct icicle_creds *creds = icicle_auth_get(cfg->auth);

		/* A static user whose name looks like a REST one is neither expired nor counted as
		 * a REST user: without REST secrets, usernames are static ones (auth.c). */
		rest = icicle_auth_rest_expiry(req->username) != 0 && creds &&
		       icicle_creds_nsecrets(creds) > 0;
		icicle_creds_unref(creds);
	}
	rq.quota_key = icicle_quota_key(req->username, rest);
	rq.keys = &x->keys;
	rq.tid = req->tid;
	rq.rest_expiry = rest ? icicle_auth_rest_expiry(req->username) : 0;
	rq.lifetime = grant_lifetime(cfg, req, true);
	rc = icicle_alloc_create(cfg->allocs, x->c, req->username, &rq, &a);
	if (rc != 0) {
		if (rc == -EDQUOT) {
			cm_metrics_inc(mt->quota_user);
			icicle_turn__error(x, 486, "Allocation Quota Reached", true);
		} else {
			if (rc == -EUSERS)
				cm_metrics_inc(mt->quota_total);
			else if (rc == -ENOENT)
				CM_LOGD("turn", "unknown or expired RESERVATION-TOKEN");
			else
				CM_LOGW("turn", "cannot allocate a relay: %s", strerror(-rc));
			icicle_turn__error(x, rc == -EAFNOSUPPORT ? 440 : 508,
			                   rc == -EAFNOSUPPORT ? "Address Family not Supported"
			                                       : "Insufficient Capacity",
			                   true);
		}
		return;
	}
	CM_LOGD("turn", "allocation for \"%s\", lifetime %u s", a->username, a->lifetime);
	alloc_success(x, a);
}

static void do_refresh(struct icicle_turn_ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint32_t life;

	cm_metrics_inc(x->t->cfg.mt->requests_refresh);
	if (!a) {
		/* Nothing to authenticate against but the user database: do it for the 437. */
		if (!icicle_turn__auth(x, NULL))
			return;
		icicle_turn__error(x, 437, "Allocation Mismatch", true);
		return;
	}
	if (!icicle_turn__auth(x, a))
		return;
	life = grant_lifetime(&x->t->cfg, x->req, false);
	r.cls = ICICLE_C_SUCCESS;
	r.has_lifetime = true;
	r.lifetime = life;
	if (life == 0)
		icicle_alloc_destroy(a);
	else
		icicle_alloc_set_expiry(a, life);
	icicle_turn__send(x, &r, true);
}

/* Common checks on the XOR-PEER-ADDRESS list; sends the error and returns false on failure.
 * with_port: the port matters (ChannelBind) rather than the address alone (CreatePermission). */
static bool check_peers(struct icicle_turn_ctx *x, struct icicle_alloc *a, bool with_port)
{
	const struct icicle_turn_config *cfg = &x->t->cfg;
	size_t i;

	if (x->req->npeers == 0 || x->req->too_many_peers) {
		icicle_turn__error(x, 400, "Bad Request", true);
		return false;
	}
	for (i = 0; i < x->req->npeers; i++) {
		const struct sockaddr *p = (const struct sockaddr *)&x->req->peers[i];
		int idx = p->sa_family == AF_INET ? 0 : 1;

		/* The policy first: a denied address is refused as such whatever its family. */
		if (!(with_port ? icicle_filter_allowed(cfg->filter, p)
		                : icicle_filter_allowed_ip(cfg->filter, p))) {
			cm_metrics_inc(cfg->mt->denied_peers);
			icicle_turn__error(x, 403, "Forbidden", true);
			return false;
		}
		if (a->relay[idx].fd < 0) {
			icicle_turn__error(x, 443, "Peer Address Family Mismatch", true);
			return false;
		}
	}
	return true;
}

static void do_createperm(struct icicle_turn_ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint8_t ip[16];
	size_t i;

	cm_metrics_inc(x->t->cfg.mt->requests_createperm);
	if (!icicle_turn__auth(x, a))
		return;
	if (!a) {
		icicle_turn__error(x, 437, "Allocation Mismatch", true);
		return;
	}
	if (!check_peers(x, a, false))
		return;
	for (i = 0; i < x->req->npeers; i++) {
		icicle_ip16((const struct sockaddr *)&x->req->peers[i], ip);
		if (icicle_perm_add(a, ip, x->now_ms) != 0) {
			cm_metrics_inc(x->t->cfg.mt->quota_permissions);
			icicle_turn__error(x, 508, "Insufficient Capacity", true);
			return;
		}
	}
	icicle_alloc_reschedule(a);
	r.cls = ICICLE_C_SUCCESS;
	icicle_turn__send(x, &r, true);
}

static void do_chanbind(struct icicle_turn_ctx *x, struct icicle_alloc *a)
{
	struct icicle_resp r = {0};
	uint8_t ip[16];
	const struct sockaddr *peer;
	int rc;

	cm_metrics_inc(x->t->cfg.mt->requests_chanbind);
	if (!icicle_turn__auth(x, a))
		return;
	if (!a) {
		icicle_turn__error(x, 437, "Allocation Mismatch", true);
		return;
	}
	/* RFC 8656 narrowed channels to 0x4000-0x4FFF; RFC 5766 clients (coturn's among them)
	 * still pick from 0x4000-0x7FFF, which the ChannelData framing allows. */
	if (!x->req->has_channel || x->req->channel < 0x4000 || x->req->channel > 0x7fff ||
	    x->req->npeers != 1) {
		CM_LOGD("turn", "ChannelBind: channel %s 0x%04x, %zu peer(s)",
		        x->req->has_channel ? "present" : "absent", x->req->channel,
		        x->req->npeers);
		icicle_turn__error(x, 400, "Bad Request", true);
		return;
	}
	if (!check_peers(x, a, true))
		return;
	peer = (const struct sockaddr *)&x->req->peers[0];
	rc = icicle_chan_bind(a, x->req->channel, peer, x->now_ms);
	if (rc == -EINVAL) {
		CM_LOGD("turn", "ChannelBind: 0x%04x or its peer is bound otherwise",
		        x->req->channel);
		icicle_turn__error(x, 400, "Bad Request", true);
		return;
	}
	icicle_ip16(peer, ip);
	if (rc == 0 && icicle_perm_add(a, ip, x->now_ms) != 0)
		rc = -EDQUOT;
	if (rc != 0) {
		cm_metrics_inc(x->t->cfg.mt->quota_channels);
		icicle_turn__error(x, 508, "Insufficient Capacity", true);
		return;
	}
	icicle_alloc_reschedule(a);
	r.cls = ICICLE_C_SUCCESS;
	icicle_turn__send(x, &r, true);
}

static void do_binding(struct icicle_turn_ctx *x)
{
	struct icicle_resp r = {0};

	cm_metrics_inc(x->t->cfg.mt->requests_binding);
	if (!icicle_turn__unauth_ok(x))
		return;
	r.cls = ICICLE_C_SUCCESS;
	r.xor_mapped = (const struct sockaddr *)&x->c->addr;
	icicle_turn__send(x, &r, false);
}

void icicle_turn_handle(struct icicle_turn *t, const struct icicle_client *c, uint8_t *msg,
                        size_t len)
{
	struct icicle_req req;
	struct icicle_turn_ctx x;
	struct icicle_alloc *a;
	int rc;

	rc = icicle_codec_decode(&req, msg, len);
	if (rc != 0) {
		cm_metrics_inc(t->cfg.mt->malformed);
		return;
	}
	memset(&x, 0, sizeof(x));
	x.t = t;
	x.c = c;
	x.req = &req;
	x.now_ms = uv_now(t->loop->uv);
	x.wall = wall_now();
	if (req.cls != ICICLE_C_REQUEST)
		goto out; /* indications other than Send, and stray responses */
	if (req.peer_family_bad) {
		if (icicle_turn__unauth_ok(&x))
			icicle_turn__error(&x, 443, "Peer Address Family Mismatch", false);
		goto out;
	}
	if (req.nunknown > 0) {
		struct icicle_resp r = {0};

		if (!icicle_turn__unauth_ok(&x))
			goto out;
		r.cls = ICICLE_C_ERROR;
		r.code = 420;
		r.reason = "Unknown Attribute";
		r.unknown = req.unknown;
		r.nunknown = req.nunknown;
		icicle_turn__send(&x, &r, false);
		goto out;
	}
	a = req.method == ICICLE_M_BINDING ? NULL : icicle_alloc_find(t->cfg.allocs, c);
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
		cm_metrics_inc(t->cfg.mt->requests_other);
		if (icicle_turn__unauth_ok(&x))
			icicle_turn__error(&x, 400, "Bad Request", false);
		break;
	}
out:
	memset(&x.keys, 0, sizeof(x.keys));
	icicle_codec_release(&req);
}
