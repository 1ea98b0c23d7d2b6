/* metrics.c - icicle's Prometheus series, registered once at start; workers update them with
 * atomics (the relay counters once per batch, see relay.c). */
#include "icicle.h"

#include <errno.h>

#include "cm/metrics.h"

int icicle_metrics_init(struct icicle_metrics *mt, struct cm_metrics *m)
{
	static const char *const reqs = "icicle_requests_total";
	static const char *const reqh = "STUN/TURN requests received, by method";
	static const char *const af = "icicle_auth_failures_total";
	static const char *const afh = "requests refused by authentication, by reason";
	static const char *const q = "icicle_quota_rejections_total";
	static const char *const qh = "requests refused by a quota, by quota";
	static const char *const pk = "icicle_relayed_packets_total";
	static const char *const pkh = "datagrams relayed, by direction";
	static const char *const by = "icicle_relayed_bytes_total";
	static const char *const byh = "payload bytes relayed, by direction";
	static const char *const cr = "icicle_connections_refused_total";
	static const char *const crh = "TCP/TLS connections closed on accept, by the limit reached";
	static const char *const to = "icicle_connections_timed_out_total";
	static const char *const toh = "TCP/TLS connections closed for missing a deadline: a "
	                               "message, the TLS handshake, or idle without an allocation";
	int rc = 0;

	if (!m)
		return 0;
	rc |=
	    cm_metrics_gauge(m, &mt->allocations, "icicle_allocations", "allocations alive", NULL);
	rc |= cm_metrics_gauge(m, &mt->permissions, "icicle_permissions",
	                       "permissions installed in live allocations", NULL);
	rc |= cm_metrics_gauge(m, &mt->channels, "icicle_channels", "channels bound", NULL);
	rc |= cm_metrics_counter(m, &mt->pkts_c2p, pk, pkh, "direction", "client_to_peer", NULL);
	rc |= cm_metrics_counter(m, &mt->pkts_p2c, pk, pkh, "direction", "peer_to_client", NULL);
	rc |= cm_metrics_counter(m, &mt->bytes_c2p, by, byh, "direction", "client_to_peer", NULL);
	rc |= cm_metrics_counter(m, &mt->bytes_p2c, by, byh, "direction", "peer_to_client", NULL);
	rc |= cm_metrics_counter(m, &mt->auth_fail_missing, af, afh, "reason", "no_credentials",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->auth_fail_unknown_user, af, afh, "reason", "unknown_user",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->auth_fail_bad_integrity, af, afh, "reason",
	                         "bad_integrity", NULL);
	rc |= cm_metrics_counter(m, &mt->auth_fail_expired, af, afh, "reason", "expired", NULL);
	rc |= cm_metrics_counter(m, &mt->auth_fail_stale_nonce, af, afh, "reason", "stale_nonce",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->denied_peers, "icicle_denied_peers_total",
	                         "relay attempts to a peer address the filter denies (403)", NULL);
	rc |= cm_metrics_counter(m, &mt->quota_user, q, qh, "quota", "allocations_per_user", NULL);
	rc |= cm_metrics_counter(m, &mt->quota_total, q, qh, "quota", "allocations_total", NULL);
	rc |= cm_metrics_counter(m, &mt->quota_permissions, q, qh, "quota",
	                         "permissions_per_allocation", NULL);
	rc |= cm_metrics_counter(m, &mt->quota_channels, q, qh, "quota", "channels_per_allocation",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->quota_bandwidth, q, qh, "quota",
	                         "bandwidth_per_allocation", NULL);
	rc |= cm_metrics_counter(m, &mt->quota_user_bandwidth, q, qh, "quota", "bandwidth_per_user",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->rate_limited, "icicle_rate_limited_total",
	                         "unauthenticated requests dropped by the per-source rate limit "
	                         "(TCP/TLS: and their connection closed)",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->conns_refused, cr, crh, "limit", "connections_per_worker",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->conns_refused_source, cr, crh, "limit",
	                         "connections_per_source", NULL);
	rc |=
	    cm_metrics_counter(m, &mt->conns_timeout_message, to, toh, "deadline", "message", NULL);
	rc |= cm_metrics_counter(m, &mt->conns_timeout_handshake, to, toh, "deadline",
	                         "tls_handshake", NULL);
	rc |= cm_metrics_counter(m, &mt->conns_timeout_idle, to, toh, "deadline", "idle", NULL);
	rc |= cm_metrics_gauge(m, &mt->conns, "icicle_connections",
	                       "TCP/TLS client connections open", NULL);
	rc |= cm_metrics_counter(m, &mt->requests_binding, reqs, reqh, "method", "binding", NULL);
	rc |= cm_metrics_counter(m, &mt->requests_allocate, reqs, reqh, "method", "allocate", NULL);
	rc |= cm_metrics_counter(m, &mt->requests_refresh, reqs, reqh, "method", "refresh", NULL);
	rc |= cm_metrics_counter(m, &mt->requests_createperm, reqs, reqh, "method",
	                         "create_permission", NULL);
	rc |= cm_metrics_counter(m, &mt->requests_chanbind, reqs, reqh, "method", "channel_bind",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->requests_other, reqs, reqh, "method", "other", NULL);
	rc |= cm_metrics_counter(m, &mt->malformed, "icicle_malformed_total",
	                         "datagrams and stream frames that are neither valid STUN nor "
	                         "ChannelData",
	                         NULL);
	rc |= cm_metrics_counter(m, &mt->dropped, "icicle_dropped_total",
	                         "relayed datagrams dropped (no permission or channel, bandwidth "
	                         "limit, full socket buffer)",
	                         NULL);
	return rc ? -EINVAL : 0;
}
