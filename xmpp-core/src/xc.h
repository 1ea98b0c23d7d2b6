/* xc.h - xmpp-core's configuration and daemon state (private to xmpp-core). */
#ifndef XC_H
#define XC_H

#include <stdint.h>

#include "cm/daemon.h"

struct cm_tls;

struct xc_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
};

extern const struct cm_cfg_schema xc_config_schema;

struct xc {
	struct cm_daemon *daemon;    /* borrowed */
	const struct xc_config *cfg; /* borrowed from the daemon framework */
	struct cm_tls *tls;          /* owned; NULL when no certificate is configured */
};

#endif
