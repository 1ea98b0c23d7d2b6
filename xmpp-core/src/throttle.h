/* throttle.h - events (failed logins, registrations) counted per key (a source address, an
 * account) in fixed windows (a minute for logins, an hour for registrations), shared by all
 * shards.
 *
 * A key over its limit in the current window is throttled until the window ends; the table
 * forgets a key when its window is over, so its size follows the failures of the last minute,
 * not the number of keys ever seen. Thread-safe (one mutex; taken on logins only). */
#ifndef XC_THROTTLE_H
#define XC_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct xc_throttle;

/* A table counting in windows of window_ms. 0, -ENOMEM, -EIO. */
int xc_throttle_alloc(struct xc_throttle **out, uint64_t window_ms);
void xc_throttle_free(struct xc_throttle *t); /* accepts NULL */

/* Whether key (a string) has reached limit events in the window now_ms falls in. */
bool xc_throttle_blocked(struct xc_throttle *t, const char *key, unsigned limit, uint64_t now_ms);

/* Count one event for key. Without memory it is not counted. */
void xc_throttle_fail(struct xc_throttle *t, const char *key, uint64_t now_ms);

#endif
