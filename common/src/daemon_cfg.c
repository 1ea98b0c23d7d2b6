/* daemon_cfg.c - the configuration sections every daemon shares (log:, tls:). */
#include "cm/daemon.h"

#include <stddef.h>

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static const struct cm_cfg_field log_fields[] = {
    {.key = "level",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct cm_daemon_log_config, level),
     .def = "info",
     .flags = CM_CFG_RELOAD,
     .values = log_levels,
     .doc = "least severe level written to stderr"},
    {.key = "format",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct cm_daemon_log_config, format),
     .def = "text",
     .values = log_formats,
     .doc = "text lines (journald-friendly) or JSON lines"},
};

const struct cm_cfg_schema cm_daemon_log_schema = {
    .name = "log",
    .size = sizeof(struct cm_daemon_log_config),
    .fields = log_fields,
    .nfields = sizeof(log_fields) / sizeof(log_fields[0]),
};

static void tls_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct cm_daemon_tls_config *t = obj;

	if (t->certificate && !t->key)
		cm_cfg_check_error(chk, "key", "required when certificate is set");
	if (t->key && !t->certificate)
		cm_cfg_check_error(chk, "certificate", "required when key is set");
	if (t->chain && !t->certificate)
		cm_cfg_check_error(chk, "chain", "makes no sense without certificate");
}

static const struct cm_cfg_field tls_fields[] = {
    {.key = "certificate",
     .type = CM_CFG_FILE,
     .offset = offsetof(struct cm_daemon_tls_config, certificate),
     .flags = CM_CFG_RELOAD,
     .doc = "PEM certificate"},
    {.key = "key",
     .type = CM_CFG_FILE,
     .offset = offsetof(struct cm_daemon_tls_config, key),
     .flags = CM_CFG_RELOAD,
     .doc = "PEM private key of the certificate"},
    {.key = "chain",
     .type = CM_CFG_FILE,
     .offset = offsetof(struct cm_daemon_tls_config, chain),
     .flags = CM_CFG_RELOAD,
     .doc = "optional PEM intermediate certificates"},
};

const struct cm_cfg_schema cm_daemon_tls_schema = {
    .name = "tls",
    .size = sizeof(struct cm_daemon_tls_config),
    .fields = tls_fields,
    .nfields = sizeof(tls_fields) / sizeof(tls_fields[0]),
    .validate = tls_validate,
};
