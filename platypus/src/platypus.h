/* platypus.h - platypus's configuration and daemon state (private to platypus). */
#ifndef PLATYPUS_H
#define PLATYPUS_H

#include <stdint.h>

#include "cm/daemon.h"

struct cm_tls;

struct platypus_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
};

extern const struct cm_cfg_schema platypus_config_schema;

struct platypus {
	struct cm_daemon *daemon;          /* borrowed */
	const struct platypus_config *cfg; /* borrowed from the daemon framework */
	struct cm_tls *tls;                /* owned; NULL when no certificate is configured */
};

#endif
