/* outcome.c - the one outcome of a notification, mapped to MongoosePush v3 HTTP answers and
 * XEP-0357 IQ replies. */
#include "notif.h"

#include <stdio.h>
#include <string.h>

void pp_result_set(struct pp_result *r, enum pp_outcome o, enum pp_cause c, int status,
                   const char *reason)
{
	size_t len = reason ? strlen(reason) : 0;

	r->outcome = o;
	r->cause = c;
	r->status = status;
	if (len >= sizeof(r->reason)) {
		/* Only a provider's text can be this long: keep whole characters, so that the
		 * reason still goes into JSON and XML. */
		len = sizeof(r->reason) - 1;
		while (len > 0 && ((unsigned char)reason[len] & 0xc0) == 0x80)
			len--;
	}
	if (len)
		memcpy(r->reason, reason, len);
	r->reason[len] = '\0';
}

const char *pp_outcome_name(enum pp_outcome o)
{
	static const char *const names[PP_OUT_COUNT] = {
	    "delivered", "dead_token", "rejected", "expired", "failed", "busy",
	};

	return (unsigned)o < PP_OUT_COUNT ? names[o] : "unknown";
}

int pp_result_http(const struct pp_result *r, const char **reason)
{
	*reason = NULL;
	switch (r->outcome) {
	case PP_OUT_DELIVERED:
		return 200;
	case PP_OUT_DEAD:
		*reason = "unregistered";
		return 410;
	case PP_OUT_BUSY:
		*reason = r->cause == PP_CAUSE_SHUTDOWN ? "service_internal" : "too_many_requests";
		return r->cause == PP_CAUSE_SHUTDOWN ? 503 : 429;
	default:
		break;
	}
	switch (r->cause) {
	case PP_CAUSE_INVALID_REQUEST:
	case PP_CAUSE_BAD_NOTIFICATION:
		/* MongoosePush: our checks and the providers' refusals of the notification alike.
		 */
		*reason = "invalid_request";
		return 400;
	case PP_CAUSE_NO_POOL:
		*reason = "no_matching_pool";
		return 400;
	case PP_CAUSE_CONFIG:
		*reason = "internal_config";
		return 503;
	case PP_CAUSE_PAYLOAD_TOO_LARGE:
		*reason = "payload_too_large";
		return 413;
	case PP_CAUSE_THROTTLED:
		*reason = "too_many_requests";
		return 429;
	case PP_CAUSE_CONNECT:
		*reason = "unable_to_connect";
		return 503;
	case PP_CAUSE_CONN_LOST:
	case PP_CAUSE_TIMEOUT:
		*reason = "connection_lost";
		return 503;
	case PP_CAUSE_AUTH: /* MongoosePush answers its "auth" errors so */
	case PP_CAUSE_PROVIDER:
	case PP_CAUSE_SHUTDOWN:
		*reason = "service_internal";
		return 503;
	default:
		*reason = "unspecified";
		return 500;
	}
}

void pp_result_xmpp(const struct pp_result *r, const char **type, const char **condition)
{
	*type = NULL;
	*condition = NULL;
	switch (r->outcome) {
	case PP_OUT_DELIVERED:
		return;
	case PP_OUT_DEAD:
		/* cancel: the XMPP server disables the registration. */
		*type = "cancel";
		*condition = "item-not-found";
		return;
	case PP_OUT_BUSY:
		*type = "wait";
		*condition = "resource-constraint";
		return;
	default:
		break;
	}
	switch (r->cause) {
	case PP_CAUSE_INVALID_REQUEST:
	case PP_CAUSE_BAD_NOTIFICATION:
	case PP_CAUSE_PAYLOAD_TOO_LARGE:
		*type = "modify";
		*condition = "bad-request";
		return;
	case PP_CAUSE_NO_POOL:
		*type = "cancel";
		*condition = "item-not-found";
		return;
	case PP_CAUSE_THROTTLED:
		*type = "wait";
		*condition = "resource-constraint";
		return;
	case PP_CAUSE_CONNECT:
	case PP_CAUSE_CONN_LOST:
	case PP_CAUSE_TIMEOUT:
		*type = "wait";
		*condition = "remote-server-timeout";
		return;
	default:
		/* Our credentials or configuration (AUTH, CONFIG), the provider's 5xx, expiry:
		 * nothing wrong with the registration, which must survive (wait). */
		*type = "wait";
		*condition = "internal-server-error";
		return;
	}
}
