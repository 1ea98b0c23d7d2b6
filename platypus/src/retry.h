/* retry.h - when to try a failed attempt again: 429 and 5xx and lost connections, with
 * exponential backoff and jitter, honouring Retry-After, never beyond the deadline (the
 * notification's TTL or the retry window); never for final answers (400, 403, 410, 413), nor
 * for refused credentials (the providers resend once with a new token themselves). */
#ifndef PP_RETRY_H
#define PP_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "notif.h"

struct pp_retry_policy {
	unsigned max_attempts; /* attempts in all, the first included; 0: 5 */
	uint64_t base_ms;      /* first backoff; 0: 250 ms */
	uint64_t max_ms;       /* backoff cap (Retry-After may ask for more); 0: 30 s */
};

/* Whether r is worth another attempt at all. */
bool pp_retry_retryable(const struct pp_result *r);

/* Delay in ms before attempt number attempts+1, or -1 when there must be none: not retryable,
 * attempts used up, or the attempt could not start before deadline_ms (same clock as now_ms).
 * rnd is a random number for the jitter (the delay is drawn in [d/2, d]). */
long long pp_retry_delay(const struct pp_retry_policy *p, const struct pp_result *r,
                         unsigned attempts, long long retry_after_s, uint64_t now_ms,
                         uint64_t deadline_ms, uint32_t rnd);

/* Longest Retry-After taken (s): longer than any notification may live. */
#define PP_RETRY_AFTER_MAX (30LL * 86400)

/* A Retry-After header value (RFC 9110 10.2.3; v need not be NUL-terminated, surrounding
 * blanks are ignored) as seconds from wall time now: delta-seconds, or an HTTP-date in the
 * IMF-fixdate, RFC 850 or asctime form. A date in the past gives 0; anything longer than
 * PP_RETRY_AFTER_MAX gives that. -1 when v is not a Retry-After value. */
long long pp_retry_after_parse(const char *v, size_t len, time_t now);

#endif
