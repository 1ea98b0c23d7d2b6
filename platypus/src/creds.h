/* creds.h - whether Apple or Google accept an app's credentials, and what platypus does while
 * they do not. A provider that refuses the credentials themselves (FCM refusing a freshly
 * granted access token, Google refusing the grant, APNs refusing a freshly made provider
 * token) would refuse every notification: sending them all, each with its own new token or
 * grant, only hammers the provider at the rate of incoming traffic. So the app is marked
 * refused: one log line, a gauge at 0, notifications fail at once without a request, and after
 * a backoff (1 s doubling to 60 s, with jitter) one notification is let through as a check
 * (with a new token): the first one accepted ends it.
 *
 * One per app, embedded in its APNs pool or FCM client. Single-threaded. */
#ifndef PP_CREDS_H
#define PP_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "notif.h"

struct cm_gauge;
struct cm_metrics;

#define PP_CREDS_CHECK_MIN_MS 1000  /* first check after the refusal */
#define PP_CREDS_CHECK_MAX_MS 60000 /* checks at most this far apart */

struct pp_creds {
	uv_loop_t *loop;
	const char *app;      /* borrowed for its life: logs */
	const char *provider; /* static: "APNs", "FCM" */
	const char *module;   /* static: the log module, "apns" or "fcm" */
	const char *hint;     /* static: what the operator should check */
	bool refused;
	bool checking;              /* a check is under way */
	unsigned failed;            /* refusals in a row: the first, then one per failed check */
	uint64_t check_at;          /* uv_now time before which no check starts */
	char reason[PP_REASON_MAX]; /* the provider's last refusal */
	struct cm_gauge *m_ok;      /* platypus_app_credentials_ok{service,app}, may be NULL */
};

/* Initialise c (accepted) for app (borrowed) of service "apns" or "fcm"; the gauge goes into m
 * (may be NULL). 0, or the registry's error (logged; c has no gauge but still works). */
int pp_creds_init(struct pp_creds *c, uv_loop_t *loop, const char *service, const char *app,
                  struct cm_metrics *m);

/* The provider refused the credentials (reason: its word for it, copied). The first refusal
 * marks them refused and logs one line; check says the refusal answers the check under way,
 * which then backs off further. Other refusals while refused change nothing. */
void pp_creds_refused(struct pp_creds *c, const char *reason, bool check);

/* The provider accepted a request made with the current credentials: not refused any more
 * (logged once when they were). */
void pp_creds_accepted(struct pp_creds *c);

/* Whether a notification may now go out as the check: refused, no check under way, and the
 * backoff over. When true, the check is under way until pp_creds_refused(..., true),
 * pp_creds_accepted() or pp_creds_check_ended(). */
bool pp_creds_check_due(struct pp_creds *c);

/* The check ended without an answer about the credentials (connection trouble, a 5xx, its
 * deadline): the next one waits the same backoff again. */
void pp_creds_check_ended(struct pp_creds *c);

/* New credentials were loaded (SIGHUP): try them at once. */
void pp_creds_reset(struct pp_creds *c);

/* What a notification failed at once is told, into r (outcome rejected, cause auth). */
void pp_creds_fail_result(const struct pp_creds *c, struct pp_result *r);

/* The delay before check number `failed` (1, 2, ...): PP_CREDS_CHECK_MIN_MS doubling up to
 * PP_CREDS_CHECK_MAX_MS, drawn in [d/2, d] with rnd. */
uint64_t pp_creds_backoff_ms(unsigned failed, uint32_t rnd);

#endif
