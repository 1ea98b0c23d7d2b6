/* metrics.c - icicle's Prometheus series, registered once at start from one table; workers
 * update them with atomics (the relay counters once per batch, see batch.c). */
#include "icicle.h"

#include "cm/err.h"
#include "cm/metrics.h"

#define REQ  "icicle_requests_total"
#define REQH "STUN/TURN requests received, by method"
#define AF   "icicle_auth_failures_total"
#define AFH  "requests refused by authentication, by reason"
#define QR   "icicle_quota_rejections_total"
#define QRH  "requests refused by a quota, by quota"
#define PK   "icicle_relayed_packets_total"
#define PKH  "datagrams relayed, by direction"
#define BY   "icicle_relayed_bytes_total"
#define BYH  "payload bytes relayed, by direction"
#define CR   "icicle_connections_refused_total"
#define CRH  "TCP/TLS connections closed on accept, by the limit reached"
#define TO   "icicle_connections_timed_out_total"
#define TOH                                                                                        \
	"TCP/TLS connections closed for missing a deadline: a message, the TLS handshake, or "     \
	"idle without an allocation"

#define COUNTER(member, name, help, ...)                                                           \
	CM_METRIC_COUNTER_DEF(struct icicle_metrics, member, name, help, __VA_ARGS__)
#define GAUGE(member, name, help)                                                                  \
	CM_METRIC_GAUGE_DEF(struct icicle_metrics, member, name, help, NULL)

static const struct cm_metric_def defs[] = {
    GAUGE(allocations, "icicle_allocations", "allocations alive"),
    GAUGE(permissions, "icicle_permissions", "permissions installed in live allocations"),
    GAUGE(channels, "icicle_channels", "channels bound"),
    COUNTER(pkts_c2p, PK, PKH, "direction", "client_to_peer", NULL),
    COUNTER(pkts_p2c, PK, PKH, "direction", "peer_to_client", NULL),
    COUNTER(bytes_c2p, BY, BYH, "direction", "client_to_peer", NULL),
    COUNTER(bytes_p2c, BY, BYH, "direction", "peer_to_client", NULL),
    COUNTER(auth_fail_missing, AF, AFH, "reason", "no_credentials", NULL),
    COUNTER(auth_fail_unknown_user, AF, AFH, "reason", "unknown_user", NULL),
    COUNTER(auth_fail_bad_integrity, AF, AFH, "reason", "bad_integrity", NULL),
    COUNTER(auth_fail_expired, AF, AFH, "reason", "expired", NULL),
    COUNTER(auth_fail_stale_nonce, AF, AFH, "reason", "stale_nonce", NULL),
    COUNTER(denied_peers, "icicle_denied_peers_total",
            "relay attempts to a peer address the filter denies (403)", NULL),
    COUNTER(quota_user, QR, QRH, "quota", "allocations_per_user", NULL),
    COUNTER(quota_total, QR, QRH, "quota", "allocations_total", NULL),
    COUNTER(quota_permissions, QR, QRH, "quota", "permissions_per_allocation", NULL),
    COUNTER(quota_channels, QR, QRH, "quota", "channels_per_allocation", NULL),
    COUNTER(quota_bandwidth, QR, QRH, "quota", "bandwidth_per_allocation", NULL),
    COUNTER(quota_user_bandwidth, QR, QRH, "quota", "bandwidth_per_user", NULL),
    COUNTER(rate_limited, "icicle_rate_limited_total",
            "unauthenticated requests dropped by the per-source rate limit (TCP/TLS: and their "
            "connection closed)",
            NULL),
    COUNTER(conns_refused, CR, CRH, "limit", "connections_per_worker", NULL),
    COUNTER(conns_refused_source, CR, CRH, "limit", "connections_per_source", NULL),
    COUNTER(conns_timeout_message, TO, TOH, "deadline", "message", NULL),
    COUNTER(conns_timeout_handshake, TO, TOH, "deadline", "tls_handshake", NULL),
    COUNTER(conns_timeout_idle, TO, TOH, "deadline", "idle", NULL),
    GAUGE(conns, "icicle_connections", "TCP/TLS client connections open"),
    COUNTER(requests_binding, REQ, REQH, "method", "binding", NULL),
    COUNTER(requests_allocate, REQ, REQH, "method", "allocate", NULL),
    COUNTER(requests_refresh, REQ, REQH, "method", "refresh", NULL),
    COUNTER(requests_createperm, REQ, REQH, "method", "create_permission", NULL),
    COUNTER(requests_chanbind, REQ, REQH, "method", "channel_bind", NULL),
    COUNTER(requests_other, REQ, REQH, "method", "other", NULL),
    COUNTER(malformed, "icicle_malformed_total",
            "datagrams and stream frames that are neither valid STUN nor ChannelData", NULL),
    COUNTER(dropped, "icicle_dropped_total",
            "relayed datagrams dropped (no permission or channel, bandwidth limit, full socket "
            "buffer)",
            NULL),
};

int icicle_metrics_init(struct icicle_metrics *mt, struct cm_metrics *m, char *err, size_t errlen)
{
	if (!m)
		return 0;
	return cm_metrics_register(m, mt, defs, sizeof(defs) / sizeof(defs[0]), err, errlen);
}
