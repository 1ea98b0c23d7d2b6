/* fuzz_platypus_provider.c - libFuzzer target: what platypus parses from the providers and from
 * its credentials files: APNs answers (pp_apns__result), FCM send answers (pp_fcm__result), OAuth2
 * token endpoint answers (pp_fcm__account_grant), service-account JSON (pp_fcm_account_load) and
 * Retry-After values of both (pp_retry_after_parse).
 *
 * Input: byte 0 picks the parser, byte 1 is the HTTP status class/offset (for Retry-After: the
 * wall clock's offset), the rest is the body.
 * Results must be in range and NUL-terminated; anything else abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platypus/src/apns_int.h"
#include "platypus/src/fcm_int.h"
#include "platypus/src/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {200, 400, 401, 403, 404, 405, 410, 413, 429, 500, 502, 503, 0};

static void check(const struct pp_result *r)
{
	if ((unsigned)r->outcome >= PP_OUT_COUNT || (unsigned)r->cause > PP_CAUSE_INTERNAL)
		abort();
	if (!memchr(r->reason, 0, sizeof(r->reason)) || !memchr(r->id, 0, sizeof(r->id)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_result r;
	const char *body;
	size_t len;
	int status;

	if (size < 2)
		return 0;
	status = statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	body = (const char *)data + 2;
	len = size - 2;
	memset(&r, 0, sizeof(r));
	/* % 5: the committed seeds (bytes 0 to 3) keep their meaning. */
	switch (data[0] % 5) {
	case 0:
		pp_apns__result(&r, status, body, len);
		check(&r);
		if (status == 200 && r.outcome != PP_OUT_DELIVERED)
			abort();
		if (status == 410 && r.outcome != PP_OUT_DEAD)
			abort();
		break;
	case 1:
		pp_fcm__result(&r, status, body, len);
		check(&r);
		if (status == 200 && r.outcome != PP_OUT_DELIVERED)
			abort();
		break;
	case 2: {
		struct pp_fcm_account a;
		char err[160];
		int rc;

		memset(&a, 0, sizeof(a));
		rc = pp_fcm__account_grant(&a, status, body, len, 1000, err, sizeof(err));
		if (rc != 0 && rc != -EACCES && rc != -EAGAIN && rc != -EBADMSG && rc != -ENOMEM)
			abort();
		if (rc == 0 &&
		    (!a.access_token || a.expires <= 1000 || !pp_fcm__access_token(&a, 1000)))
			abort();
		if (rc != 0 && a.access_token)
			abort();
		pp_fcm_account_close(&a);
		break;
	}
	case 4: {
		/* Any value: -1 or 0..max, the same answer twice, and a later clock never asks
		 * for a longer wait. */
		time_t now = 1700000000 + (time_t)data[1] * 86400 * 100;
		long long v = pp_retry_after_parse(body, len, now);
		long long later = pp_retry_after_parse(body, len, now + 1);

		if (v < -1 || v > PP_RETRY_AFTER_MAX || v != pp_retry_after_parse(body, len, now))
			abort();
		if ((v < 0) != (later < 0) || later > v)
			abort();
		break;
	}
	case 3: {
		struct pp_fcm_account a;
		char err[256];
		int rc = pp_fcm_account_load(&a, body, len, err, sizeof(err));

		if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
			abort();
		if (rc == 0 && (!a.project_id || !a.client_email || !a.token_uri || !a.key))
			abort();
		if (rc == 0)
			pp_fcm_account_close(&a);
		break;
	}
	}
	return 0;
}
