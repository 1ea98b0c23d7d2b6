/* apns.h - Apple Push Notification service: the ES256 provider token shared per team, and the
 * pool of HTTP/2 connections per app. Request building (payload, headers, apns-id) and what an
 * answer means are the module's own business: apns_int.h. */
#ifndef PP_APNS_H
#define PP_APNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "notif.h"

struct cm_buf;
struct cm_loop;
struct cm_jwt_key;
struct cm_metrics;

/* --- provider token ------------------------------------------------------------------------ */

#define PP_APNS_TOKEN_MIN_AGE 1200 /* s: refreshing sooner gives TooManyProviderTokenUpdates */
#define PP_APNS_TOKEN_MAX_AGE 3600 /* s: older tokens are ExpiredProviderToken */

/* The provider token of one team and key, shared by every connection of the apps that use it. */
struct pp_apns_token {
	struct cm_jwt_key *key; /* owned */
	unsigned char
	    pem_sha256[32]; /* of the key file's content, to see whether a reload changed it */
	char key_id[11];
	char team_id[11];
	unsigned refresh_s; /* age at which a new token is made: 1200..3540 */
	struct cm_buf *jwt; /* owned: current token, NULL before the first */
	time_t iat;         /* of the current token */
	bool stale;         /* a new token is wanted as soon as the 20-minute rule allows */
	bool refusal_next;  /* the next token replaces one APNs refused */
	bool remade;        /* the current token replaced one APNs refused, and none of its
	                       requests has been accepted yet */
	uint64_t generated; /* tokens made so far: the current one's number */
};

/* Load the .p8 key (PEM). key_id and team_id are Apple's 10-character ids. refresh_s is
 * clamped to 1200..3540. 0, -EINVAL (err says why), -ENOMEM. */
int pp_apns_token_init(struct pp_apns_token *t, const char *pem, size_t len, const char *key_id,
                       const char *team_id, unsigned refresh_s, char *err, size_t errlen);
void pp_apns_token_close(struct pp_apns_token *t);

/* APNs refused the current token (ExpiredProviderToken, InvalidProviderToken): forget it, so
 * that the next get makes a new one whatever the age (a refused token never counted as the
 * connection's token, so the 20-minute rule does not stand in the way); that one is marked
 * remade. */
void pp_apns_token_refused(struct pp_apns_token *t);

/* SIGHUP: a new key (PEM). When it differs, the token is marked stale (replaced as soon as the
 * 20-minute rule allows). 0, -EINVAL (the old key stays), -ENOMEM. */
int pp_apns_token_rekey(struct pp_apns_token *t, const char *pem, size_t len, char *err,
                        size_t errlen);

/* --- connection pool ---------------------------------------------------------------------- */

struct cm_tls;
struct pp_apns_pool;

struct pp_apns_pool_config {
	const char *name;            /* borrowed for the pool's life: the app (logs, metrics) */
	const char *default_topic;   /* borrowed for the pool's life: bundle id, may be NULL */
	struct pp_apns_token *token; /* borrowed for the pool's life; NULL: certificate auth */
	struct cm_tls *tls;          /* borrowed for the pool's life: client context, ALPN h2 */
	const char *host;            /* borrowed for the pool's life */
	uint16_t port;
	unsigned max_connections; /* 0: 1 */
	unsigned max_streams;     /* per connection, under the server's limit; 0: 1000 */
	uint64_t connect_timeout_ms, request_timeout_ms, ping_interval_ms, ping_timeout_ms;
	uint64_t tick_ms;                        /* 0: 1000 (on the loop's timer wheel) */
	uint64_t backoff_min_ms, backoff_max_ms; /* reconnect delays; 0: 1 s, 60 s */
	struct cm_metrics *metrics;              /* borrowed, may be NULL */
};

typedef pp_attempt_cb pp_apns_done_cb;

/* Persistent connections to APNs for one app (topic/team/mode): opened on demand up to
 * max_connections, one stream each until a request has succeeded on it (APNs' rule for new
 * provider tokens), then up to the server's limit; reconnects with exponential backoff and
 * jitter (never more than one connection being opened at a time: no storms). Requests that
 * a connection could not carry (refused, GOAWAY, never sent) move to another connection. */
int pp_apns_pool_alloc(struct pp_apns_pool **out, struct cm_loop *l,
                       const struct pp_apns_pool_config *cfg);

/* Send one notification (validated) as one attempt: built now (payload limits, headers),
 * queued, sent when a connection has room. deadline_ms (uv_now time) bounds the wait in the
 * queue: past it the attempt ends as expired. Returns 0 and cb(arg, ...) follows exactly once,
 * never from within this call; or a negative errno (-EINVAL, -EMSGSIZE, -ESHUTDOWN, -ENOMEM)
 * with *now filled (reason in now->reason) and no callback. */
int pp_apns_pool_send(struct pp_apns_pool *p, const struct pp_notif *n, uint64_t deadline_ms,
                      pp_apns_done_cb cb, void *arg, struct pp_result *now);

/* pp_apns_pool_send() in the dispatcher's pp_send_fn shape (provider is the pool). */
int pp_apns_send(void *pool, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                 void *arg, struct pp_result *now);

/* Attempts queued or in flight. */
unsigned pp_apns_pool_pending(const struct pp_apns_pool *p);

/* False while APNs refuses the app's provider token (creds.h): its notifications fail at once.
 * A refused token is remade once for all the requests waiting, each of which is sent once more;
 * a remade token refused too marks the credentials refused. */
bool pp_apns_pool_credentials_ok(const struct pp_apns_pool *p);

/* The key was replaced (SIGHUP): try it at once, refused or not. */
void pp_apns_pool_credentials_changed(struct pp_apns_pool *p);

/* Live connections, and how many of them can take requests. */
unsigned pp_apns_pool_connections(const struct pp_apns_pool *p, unsigned *usable);

/* Stop: queued attempts end now (failed, shutdown), those in flight are let finish (graceful)
 * or cancelled, connections close; once every connection is gone p is freed and done(arg) is
 * called (never from within this call). Called again with graceful false while a graceful
 * close is under way, it cancels what is still in flight (done and arg of the first call
 * stay). */
void pp_apns_pool_close(struct pp_apns_pool *p, bool graceful, void (*done)(void *arg), void *arg);

#endif
