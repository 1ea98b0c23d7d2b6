/* icicle.h - icicle's configuration and daemon state (private to icicle). */
#ifndef ICICLE_H
#define ICICLE_H

#include <stdint.h>

#include "cm/daemon.h"

struct cm_tls;

struct icicle_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
};

extern const struct cm_cfg_schema icicle_config_schema;

struct icicle {
	struct cm_daemon *daemon;        /* borrowed */
	const struct icicle_config *cfg; /* borrowed from the daemon framework */
	struct cm_tls *tls;              /* owned; NULL when no certificate is configured */
};

#endif
