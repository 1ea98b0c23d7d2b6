/* config.c - icicle's configuration schema (config/icicle.yaml). */
#include "icicle.h"

#include <stddef.h>

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:9641");

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct icicle_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for TURN over TLS (port 5349)"},
};

const struct cm_cfg_schema icicle_config_schema = {
    .name = "icicle",
    .size = sizeof(struct icicle_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
};
