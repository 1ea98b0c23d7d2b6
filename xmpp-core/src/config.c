/* config.c - xmpp-core's configuration schema (config/xmpp-core.yaml). */
#include "xc.h"

#include <stddef.h>

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:5280");

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct xc_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for client connections (STARTTLS on 5222, direct TLS on 5223)"},
};

const struct cm_cfg_schema xc_config_schema = {
    .name = "xmpp-core",
    .size = sizeof(struct xc_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
};
