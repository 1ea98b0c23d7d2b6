/* icicle.h - icicle's configuration, metrics and daemon state (private to icicle).
 *
 * Threads: the daemon's main loop runs the admin port, signals and the expiry of port
 * reservations; each worker (worker.h) runs a loop of the framework's with its own UDP sockets
 * (SO_REUSEPORT), TCP/TLS listeners, allocations and relay sockets. Workers share only read-only
 * configuration, the credentials snapshot (auth.h), the allocation counters (quota.h), the port
 * reservations (rsv.h), the connection counts per source (cm_srclimit) and the metrics registry
 * (atomics). */
#ifndef ICICLE_H
#define ICICLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "cm/daemon.h"
#include "cm/list.h"
#include "cm/log.h"
#include "auth.h"
#include "filter.h"
#include "quota.h"
#include "rsv.h"

struct cm_tls;

struct icicle_listen_config {
	struct cm_cfg_strlist udp; /* "IP:PORT" each */
	struct cm_cfg_strlist tcp;
	struct cm_cfg_strlist tls;
};

struct icicle_auth_config {
	struct cm_secret secret_file; /* REST secrets, one per line */
	struct cm_secret users_file;  /* "name:password" lines */
	uint64_t nonce_lifetime;      /* ms */
};

struct icicle_relay_config {
	char *ipv4;          /* bind address of IPv4 relay sockets; "" disables IPv4 relays */
	char *ipv6;          /* bind address of IPv6 relay sockets; "" disables IPv6 relays */
	char *external_ipv4; /* advertised instead of the bound/local address (NAT) */
	char *external_ipv6;
	long long min_port, max_port;
};

struct icicle_filter_config {
	bool deny_defaults;
	struct cm_cfg_strlist deny;
	struct cm_cfg_strlist allow;
};

struct icicle_quota_config {
	long long allocations_per_user;
	long long allocations_total;
	long long permissions_per_allocation;
	long long channels_per_allocation;
	uint64_t bandwidth_per_allocation; /* bytes/s, 0 = unlimited */
	uint64_t bandwidth_per_user;       /* bytes/s over all of a user's allocations */
	long long unauthenticated_rate;    /* requests/s per source, 0 = unlimited */
	long long unauthenticated_burst;
	long long connections_per_worker; /* TCP/TLS client connections, 0 = unlimited */
	long long connections_per_source; /* the same per source address, all workers together */
	uint64_t message_timeout;         /* ms a started message has to complete (TCP/TLS) */
	uint64_t tls_handshake_timeout;   /* ms from accept to a finished TLS handshake */
};

struct icicle_lifetime_config {
	uint64_t allocation_default; /* ms */
	uint64_t allocation_max;
};

struct icicle_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
	struct icicle_listen_config listen;
	char *realm;
	struct icicle_auth_config auth;
	struct icicle_relay_config relay;
	struct icicle_filter_config filter;
	struct icicle_quota_config quotas;
	struct icicle_lifetime_config lifetimes;
	long long threads;
	char *software;
};

extern const struct cm_cfg_schema icicle_config_schema;

struct icicle_metrics {
	struct cm_gauge *allocations, *permissions, *channels;
	struct cm_counter *pkts_c2p, *pkts_p2c, *bytes_c2p, *bytes_p2c;
	struct cm_counter *auth_fail_unknown_user, *auth_fail_bad_integrity, *auth_fail_expired,
	    *auth_fail_stale_nonce, *auth_fail_missing;
	struct cm_counter *denied_peers;
	struct cm_counter *quota_user, *quota_total, *quota_permissions, *quota_channels,
	    *quota_bandwidth, *quota_user_bandwidth;
	struct cm_counter *rate_limited;
	struct cm_counter *conns_refused, *conns_refused_source;
	struct cm_counter *conns_timeout_message, *conns_timeout_handshake, *conns_timeout_idle;
	struct cm_gauge *conns;
	struct cm_counter *requests_binding, *requests_allocate, *requests_refresh,
	    *requests_createperm, *requests_chanbind, *requests_other;
	struct cm_counter *malformed;
	struct cm_counter *dropped;
};

/* Register every metric in m (NULL: all handles stay NULL, updates are no-ops). 0, or the
 * registry's error with the metric named in err (cm/err.h). */
int icicle_metrics_init(struct icicle_metrics *mt, struct cm_metrics *m, char *err, size_t errlen);

struct cm_srclimit;
struct cm_workers;

struct icicle {
	struct cm_daemon *daemon;        /* borrowed */
	const struct icicle_config *cfg; /* borrowed from the daemon framework */
	struct cm_tls *tls;              /* owned; NULL when no certificate is configured */
	struct icicle_auth auth;
	bool auth_ready;
	struct icicle_quota quota;
	struct icicle_rsv rsv; /* EVEN-PORT R=1 reservations, shared by the workers */
	struct icicle_filter filter;
	struct cm_srclimit *per_source; /* owned: TCP/TLS connections per source, all workers */
	struct cm_log_limit log_refused, log_timeouts; /* lines about refused and cut connections */
	struct icicle_metrics metrics;
	struct cm_workers *workers; /* borrowed: the framework owns the threads and loops */
	struct cm_list worker_list; /* struct icicle_worker (worker.h), owned */
	uv_timer_t rsv_timer;       /* on the main loop: reservations expire on time */
	bool rsv_timer_open;
	void (*close_done)(struct cm_daemon *d);
};

/* Load the credentials named by cfg into a new snapshot. 0, or a negative errno with the reason
 * (the file and line) in err (cm/err.h). */
int icicle_creds_from_config(const struct icicle_config *cfg, struct icicle_creds **out, char *err,
                             size_t errlen);

#endif
