/* retry.c - the retry policy: which failures to repeat, and after how long. */
#include "retry.h"

#include <string.h>

bool pp_retry_retryable(const struct pp_result *r)
{
	if (r->outcome != PP_OUT_FAILED && r->outcome != PP_OUT_REJECTED)
		return false;
	switch (r->cause) {
	case PP_CAUSE_THROTTLED:
		/* Except the token-update rule: another try with the same token is refused
		 * again until the 20 minutes are over. */
		return strcmp(r->reason, "TooManyProviderTokenUpdates") != 0;
	case PP_CAUSE_PROVIDER:
	case PP_CAUSE_CONNECT:
	case PP_CAUSE_CONN_LOST:
	case PP_CAUSE_TIMEOUT:
		return true;
	case PP_CAUSE_AUTH:
		/* A refused token was remade and tried once more by the provider itself (one new
		 * token for all waiting, see creds.h); what comes back here is final. */
	default:
		return false;
	}
}

long long pp_retry_delay(const struct pp_retry_policy *p, const struct pp_result *r,
                         unsigned attempts, long long retry_after_s, uint64_t now_ms,
                         uint64_t deadline_ms, uint32_t rnd)
{
	unsigned max_attempts = p->max_attempts ? p->max_attempts : 5;
	uint64_t base = p->base_ms ? p->base_ms : 250, cap = p->max_ms ? p->max_ms : 30000;
	uint64_t d = base, half;

	if (!pp_retry_retryable(r) || attempts >= max_attempts)
		return -1;
	for (unsigned i = 1; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	half = d / 2;
	d = half + (half ? rnd % (half + 1) : 0);
	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d)
		d = (uint64_t)retry_after_s * 1000;
	if (now_ms + d >= deadline_ms)
		return -1;
	return (long long)d;
}
