/* push_config.c - the push section of xmpp-core's configuration (xc.h). */
#include <stddef.h>
#include <string.h>

#include "xc.h"

static const char *const privacy_values[] = {"none", "sender", "placeholder", "full", NULL};

static void rest_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_push_rest_config *r = obj;

	if (r->url && strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0)
		cm_cfg_check_error(chk, "url", "\"%s\" is not an http:// or https:// URL", r->url);
}

static const struct cm_cfg_field rest_fields[] = {
    {.key = "host",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_push_rest_config, host),
     .flags = CM_CFG_REQUIRED,
     .doc = "the XMPP host (one of hosts) whose users' pushes go to this API instead of an "
            "IQ to the app server"},
    {.key = "url",
     .type = CM_CFG_STRING,
     .flags = CM_CFG_REQUIRED,
     .offset = offsetof(struct xc_push_rest_config, url),
     .doc = "base URL of a MongoosePush v3 API (platypus's REST front end): pushes are POSTed "
            "to URL/v3/notification/DEVICE_ID"},
    {.key = "ca_file",
     .type = CM_CFG_FILE,
     .offset = offsetof(struct xc_push_rest_config, ca_file),
     .doc = "CA certificates that verify the API's certificate (unset: the system's)"},
    {.key = "verify",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_push_rest_config, verify),
     .def = "true",
     .doc = "verify the API's certificate and name; false only for tests"},
};

static const struct cm_cfg_schema rest_schema = {
    .name = "rest",
    .size = sizeof(struct xc_push_rest_config),
    .fields = rest_fields,
    .nfields = sizeof(rest_fields) / sizeof(rest_fields[0]),
    .validate = rest_validate,
};

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
    {.key = "rest",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct xc_push_config, rest),
     .sub = &rest_schema,
     .doc = "hosts whose pushes are POSTed to a MongoosePush v3 REST API (platypus) instead of "
            "sent as XEP-0357 IQs; the registration's publish-options give the device_id, "
            "service, mode, topic, priority"},
};

const struct cm_cfg_schema xc_push_schema = {
    .name = "push",
    .size = sizeof(struct xc_push_config),
    .fields = push_fields,
    .nfields = sizeof(push_fields) / sizeof(push_fields[0]),
};
