/* push_config.c - the push section of xmpp-core's configuration (xc.h). */
#include <stddef.h>

#include "xc.h"

static const char *const privacy_values[] = {"none", "sender", "placeholder", "full", NULL};

static const struct cm_cfg_field push_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_push_config, enabled),
     .def = "true",
     .doc = "offer push notifications (XEP-0357) on every account's bare JID"},
    {.key = "max_registrations",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_push_config, max_registrations),
     .def = "5",
     .min = 1,
     .max = 100,
     .doc = "push registrations (devices) per account; enabling one more removes the oldest"},
    {.key = "privacy",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct xc_push_config, privacy),
     .def = "none",
     .values = privacy_values,
     .doc = "what a push tells the app server (and through it Apple or Google): none (the "
            "message count), sender (and the sender's bare JID), placeholder (the count and "
            "the placeholder text as the body), full (the sender and the body)"},
    {.key = "placeholder",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_push_config, placeholder),
     .def = "New message",
     .doc = "the body a push carries under privacy placeholder"},
    {.key = "coalesce",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_push_config, coalesce),
     .def = "2s",
     .min = 0,
     .max = 3600000,
     .doc = "the first message of a burst is pushed at once; what follows within this time of "
            "the previous message is counted into the next push instead of making its own"},
    {.key = "rewake",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_push_config, rewake),
     .def = "1m",
     .min = 0,
     .max = 86400000,
     .doc = "when no client of the account came back this long after a push, push once more "
            "(once per absence); 0: never"},
    {.key = "timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_push_config, timeout),
     .def = "30s",
     .min = 100,
     .max = 600000,
     .doc = "how long the app server has to answer a push; no answer counts as a transient "
            "failure"},
    {.key = "max_failures",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_push_config, max_failures),
     .def = "16",
     .min = 1,
     .max = 100000,
     .doc = "transient failures (wait errors, timeouts) in a row after which a registration "
            "is removed; an error of any other type removes it at once"},
    {.key = "resume_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_push_config, resume_timeout),
     .def = "24h",
     .min = 1000,
     .max = 259200000,
     .doc = "how long a hibernated session (XEP-0198) of an account with a push registration "
            "stays resumable, so that the woken app finds its session"},
};

const struct cm_cfg_schema xc_push_schema = {
    .name = "push",
    .size = sizeof(struct xc_push_config),
    .fields = push_fields,
    .nfields = sizeof(push_fields) / sizeof(push_fields[0]),
};
