/* worker.c - the framework's worker callbacks for icicle (see worker.h): a worker's modules
 * are made and wired together here, its sockets opened, and every message a client sends is
 * routed to the relay or the control path. */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "icicle.h"

/* One message from a client, whatever its transport: ChannelData and Send indications go to the
 * relay, everything else that is STUN to the control path. */
static int on_message(void *arg, const struct icicle_client *c, uint8_t *p, size_t len)
{
	struct icicle_worker *w = arg;

	if (len >= 4 && (p[0] & 0xc0) == 0x40) {
		struct icicle_alloc *a = icicle_alloc_find(&w->allocs, c);

		if (a)
			icicle_relay_chdata(&w->relay, a, p, len);
		return 0;
	}
	if (icicle_stun_check_header(p, len) != 0) {
		cm_metrics_inc(w->ic->metrics.malformed);
		return -EBADMSG;
	}
	if (icicle_stun_type(ICICLE_M_SEND, ICICLE_C_INDICATION) == ((p[0] << 8) | p[1])) {
		icicle_relay_send_ind(&w->relay, c, p, len);
		return 0;
	}
	icicle_turn_handle(&w->turn, c, p, len);
	return 0;
}

/* An address of relay.ipv4 / relay.ipv6 / relay.external_* ("" leaves family 0). */
static void relay_addr(const char *text, int af, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return;
	if (af == AF_INET && inet_pton(AF_INET, text, &((struct sockaddr_in *)out)->sin_addr) == 1)
		out->ss_family = AF_INET;
	else if (af == AF_INET6 &&
	         inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)out)->sin6_addr) == 1)
		out->ss_family = AF_INET6;
}

static void alloc_limits(const struct icicle_config *cfg, struct icicle_alloc_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->perms = (size_t)cfg->quotas.permissions_per_allocation;
	lim->chans = (size_t)cfg->quotas.channels_per_allocation;
	lim->bandwidth = cfg->quotas.bandwidth_per_allocation;
	relay_addr(cfg->relay.ipv4, AF_INET, &lim->bind[0]);
	relay_addr(cfg->relay.ipv6, AF_INET6, &lim->bind[1]);
	relay_addr(cfg->relay.external_ipv4, AF_INET, &lim->external[0]);
	relay_addr(cfg->relay.external_ipv6, AF_INET6, &lim->external[1]);
	lim->min_port = (uint16_t)cfg->relay.min_port;
	lim->max_port = (uint16_t)cfg->relay.max_port;
}

/* Open a socket for every address of list l: UDP ("udp"), or TCP/TLS listeners ("tcp",
 * "tls"). What fails is logged. */
static int open_list(struct icicle_worker *w, const struct cm_cfg_strlist *l, const char *kind)
{
	const struct icicle_udp_config uc = {
	    .batch = &w->batch,
	    .mt = &w->ic->metrics,
	    .message = on_message,
	    .arg = w,
	};
	bool udp = strcmp(kind, "udp") == 0;
	char err[CM_ERR_MAX], why[CM_ERR_MAX];
	struct cm_cfg_addr a;
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++) {
		/* checked with the configuration: the address parses */
		rc = cm_cfg_parse_addr(l->v[i], &a, why, sizeof(why));
		if (rc != 0)
			cm_errf(err, sizeof(err), rc, "%s %s: %s", kind, l->v[i], why);
		else if (udp)
			rc = icicle_udp_open(&w->udp[w->nudp], w->loop, (struct sockaddr *)&a.sa,
			                     a.salen, &uc, err, sizeof(err));
		else
			rc = icicle_streams_listen(&w->streams, (struct sockaddr *)&a.sa, a.salen,
			                           strcmp(kind, "tls") == 0, err, sizeof(err));
		if (rc != 0) {
			CM_LOGE("listen", "%s", err);
			return rc;
		}
		if (udp)
			w->nudp++;
	}
	return 0;
}

int icicle_worker_init(struct cm_loop *l, void *arg)
{
	struct icicle *ic = arg;
	const struct icicle_config *cfg = ic->cfg;
	struct icicle_alloc_table_config ac = {
	    .quota = &ic->quota,
	    .rsv = &ic->rsv,
	    .mt = &ic->metrics,
	    .readable = icicle_relay_readable,
	};
	struct icicle_turn_config tc = {
	    .realm = cfg->realm,
	    .software = cfg->software,
	    .lifetime_default = (uint32_t)(cfg->lifetimes.allocation_default / 1000),
	    .lifetime_max = (uint32_t)(cfg->lifetimes.allocation_max / 1000),
	    .relay4 = cfg->relay.ipv4 && *cfg->relay.ipv4,
	    .relay6 = cfg->relay.ipv6 && *cfg->relay.ipv6,
	    .unauth_rate = (uint64_t)cfg->quotas.unauthenticated_rate,
	    .unauth_burst = (uint64_t)cfg->quotas.unauthenticated_burst,
	    .auth = &ic->auth,
	    .filter = &ic->filter,
	    .mt = &ic->metrics,
	};
	struct icicle_streams_config sc = {
	    .max_conns = (unsigned)cfg->quotas.connections_per_worker,
	    .per_source = ic->per_source,
	    .max_per_source = (unsigned)cfg->quotas.connections_per_source,
	    .message_ms = cfg->quotas.message_timeout,
	    .handshake_ms = cfg->quotas.tls_handshake_timeout,
	    .idle_ms = ICICLE_CONN_IDLE_MS,
	    .tls = ic->tls,
	    .log_refused = &ic->log_refused,
	    .log_timeouts = &ic->log_timeouts,
	    .mt = &ic->metrics,
	    .message = on_message,
	};
	struct icicle_worker *w = calloc(1, sizeof(*w));
	int rc;

	if (!w) {
		CM_LOGE("icicle", "worker %u: out of memory", l->index);
		return -ENOMEM;
	}
	w->ic = ic;
	w->loop = l;
	l->data = w;
	cm_list_insert_tail(&ic->worker_list, &w->link);
	sc.batch = &w->batch;
	sc.arg = w;
	icicle_streams_init(&w->streams, l, &sc);
	w->udp = calloc(cfg->listen.udp.n + 1, sizeof(*w->udp));
	if (!w->udp) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = icicle_batch_init(&w->batch, l->uv, &ic->metrics);
	if (rc != 0)
		goto fail;
	alloc_limits(cfg, &ac.lim);
	ac.arg = &w->relay;
	rc = icicle_alloc_table_init(&w->allocs, l, &ac);
	if (rc != 0)
		goto fail;
	icicle_relay_init(&w->relay, &w->batch, &w->allocs, &ic->filter, &ic->metrics);
	tc.allocs = &w->allocs;
	tc.batch = &w->batch;
	rc = icicle_turn_init(&w->turn, l, &tc);
	if (rc != 0)
		goto fail;
	rc = open_list(w, &cfg->listen.udp, "udp");
	if (rc == 0)
		rc = open_list(w, &cfg->listen.tcp, "tcp");
	if (rc == 0 && ic->tls)
		rc = open_list(w, &cfg->listen.tls, "tls");
	return rc;
fail:
	CM_LOGE("icicle", "worker %u: %s", l->index, uv_strerror(rc));
	return rc;
}

void icicle_worker_stop(struct cm_loop *l, void *arg)
{
	struct icicle_worker *w = l->data;
	size_t i;

	(void)arg;
	if (!w)
		return;
	icicle_batch_close(&w->batch); /* sends what is queued */
	icicle_streams_close(&w->streams);
	icicle_alloc_table_close(&w->allocs);
	for (i = 0; i < w->nudp; i++)
		icicle_udp_close(w->udp[i]);
	w->nudp = 0;
}

void icicle_worker_free(struct icicle_worker *w)
{
	if (!w)
		return;
	cm_list_remove(&w->link);
	icicle_turn_close(&w->turn);
	icicle_streams_free(&w->streams);
	icicle_batch_free(&w->batch);
	free(w->udp);
	free(w);
}
