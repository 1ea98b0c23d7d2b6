/* config.c - platypus's configuration schema (config/platypus.yaml). */
#include "platypus.h"

#include <stddef.h>

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:9642");

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct platypus_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct platypus_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for the REST API over TLS (port 8443)"},
};

const struct cm_cfg_schema platypus_config_schema = {
    .name = "platypus",
    .size = sizeof(struct platypus_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
};
