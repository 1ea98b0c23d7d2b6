/* dispatch.h - the dispatcher: the internal API the front ends (REST, XEP-0357 component) call.
 *
 * A front end hands over a notification with a completion callback. The dispatcher validates
 * it, picks the app (provider pool) by service, mode, app name, topic and tags, sends it, retries
 * transient failures within the notification's TTL and the retry window, and calls back exactly
 * once with the outcome (delivered, dead token, rejected, expired, failed). The number of
 * notifications in its care is bounded: beyond, submit fails at once with a busy outcome
 * (back-pressure: the front end answers 429 / wait resource-constraint).
 *
 * Metrics: platypus_notifications_total{service,app,outcome}, platypus_notification_duration_
 * seconds{service} (accepted to outcome), platypus_retries_total{service,app},
 * platypus_submissions_refused_total{reason}, platypus_queue_depth.
 *
 * Single-threaded: every call from the loop's thread.
 */
#ifndef PP_DISPATCH_H
#define PP_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "notif.h"
#include "retry.h"

struct cm_loop;
struct cm_metrics;
struct pp_dispatch;

/* A provider behind an app: send one attempt (pp_apns_pool_send() and pp_fcm_send() have this
 * shape). Returns 0 and calls cb later exactly once (never from within), or a negative errno
 * with *now filled and no callback. */
typedef int (*pp_send_fn)(void *provider, const struct pp_notif *n, uint64_t deadline_ms,
                          pp_attempt_cb cb, void *arg, struct pp_result *now);

struct pp_app_desc {
	const char *name; /* copied */
	enum pp_service service;
	enum pp_mode mode;
	const char *topic;       /* copied, may be NULL: APNs bundle id; FCM: unused */
	const char *const *tags; /* copied, NULL-terminated, may be NULL */
	pp_send_fn send;
	void *provider; /* borrowed: must outlive the dispatcher's use (see pp_dispatch_stop) */
};

struct pp_dispatch_config {
	unsigned queue_max;       /* notifications in care at once; 0: 10000 */
	uint64_t retry_window_ms; /* longest life of a notification with no TTL; 0: 60 s */
	struct pp_retry_policy retry;
	struct cm_metrics *metrics; /* borrowed, may be NULL */
};

/* Completion: r is borrowed for the call. */
typedef void (*pp_submit_cb)(void *arg, const struct pp_result *r);

/* A dispatcher on loop l (borrowed): its retries wait on l's timer wheel. 0, -ENOMEM, or the
 * metrics registry's error (logged). */
int pp_dispatch_alloc(struct pp_dispatch **out, struct cm_loop *l,
                      const struct pp_dispatch_config *cfg);

/* Register an app. 0, -EINVAL, -ENOMEM, -EEXIST (the name is taken), or the metrics registry's
 * error (logged). */
int pp_dispatch_add_app(struct pp_dispatch *d, const struct pp_app_desc *app);

/* Submit n. On 0 the dispatcher took n's content (n is left initialised and empty) and cb(arg,
 * ...) follows exactly once, never from within this call. On failure (-EBUSY queue full,
 * -ESHUTDOWN stopping, -EINVAL invalid (reason in r->reason), -ENOENT no matching app,
 * -EMSGSIZE payload too large, -ENOMEM) n is untouched, *r says why and there is no
 * callback. */
int pp_dispatch_submit(struct pp_dispatch *d, struct pp_notif *n, pp_submit_cb cb, void *arg,
                       struct pp_result *r);

/* Notifications in care (queued, in flight, waiting to retry). */
unsigned pp_dispatch_depth(const struct pp_dispatch *d);

/* Stop taking notifications; those waiting for a retry end now with their last result; the
 * others finish. drained(arg) is called once nothing is left (maybe from within this call). */
void pp_dispatch_stop(struct pp_dispatch *d, void (*drained)(void *arg), void *arg);

/* Free. Nothing may be in care (after drained, or never started). The dispatcher holds no
 * handle: its retries are timers of the loop's wheel. Accepts NULL. */
void pp_dispatch_free(struct pp_dispatch *d);

#endif
