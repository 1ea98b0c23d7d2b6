/* fcm.h - Firebase Cloud Messaging HTTP v1: the service account and its OAuth2 access token
 * (fcm_auth.c), the v1 message and the meaning of answers (fcm_msg.c), and the client on
 * libcurl multi driven by the libuv loop (fcm.c, the only file that includes libcurl). */
#ifndef PP_FCM_H
#define PP_FCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "notif.h"

struct cm_buf;
struct cm_loop;
struct cm_jwt_key;
struct cm_metrics;

#define PP_FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
/* The access token is renewed this long before Google says it expires. */
#define PP_FCM_TOKEN_MARGIN 300

/* A service account (Google's JSON key file) and its cached access token. */
struct pp_fcm_account {
	char *project_id;       /* owned */
	char *client_email;     /* owned */
	char *private_key_id;   /* owned, may be NULL */
	char *token_uri;        /* owned */
	struct cm_jwt_key *key; /* owned: RS256 */
	char *access_token;     /* owned, NULL until granted */
	time_t expires;         /* wall time the access token stops being used */
	uint64_t grants;        /* access tokens obtained */
};

/* Parse the JSON key file (type service_account; project_id, client_email, private_key,
 * token_uri; private_key_id optional). 0, -EINVAL (err says which field), -ENOMEM. */
int pp_fcm_account_load(struct pp_fcm_account *a, const char *json, size_t len, char *err,
                        size_t errlen);
void pp_fcm_account_close(struct pp_fcm_account *a);

/* Append the form body of a token request at wall time now: grant_type=...&assertion=<JWT
 * RS256 {iss, scope, aud: token_uri, iat, exp: iat + 3600}>. 0 or -errno. */
int pp_fcm_assertion_form(const struct pp_fcm_account *a, time_t now, struct cm_buf *out);

/* Take a token endpoint answer (status, JSON body). 200 with access_token and expires_in
 * caches the token until expires_in - PP_FCM_TOKEN_MARGIN, or for half its life (rounded up)
 * when expires_in is 2 * PP_FCM_TOKEN_MARGIN (600 s) or less: 0.
 * Otherwise -EACCES (Google refused the grant: our key or configuration; err has Google's
 * error and description), -EAGAIN (transient: 5xx, 429), -EBADMSG (malformed), -ENOMEM. */
int pp_fcm_account_grant(struct pp_fcm_account *a, int status, const char *body, size_t len,
                         time_t now, char *err, size_t errlen);

/* The cached access token if still good at now, else NULL. */
const char *pp_fcm_access_token(const struct pp_fcm_account *a, time_t now);

/* Forget the access token (the send endpoint said 401). */
void pp_fcm_account_forget(struct pp_fcm_account *a);

/* The v1 request body for n (validated): {"message": {token, notification {title, body}, data
 * (every value a string), android {priority, ttl, collapse_key, notification (only when the
 * alert has display options)}, apns (only for what iOS apps need beyond that: badge, sound,
 * category, thread-id, mutable-content; a background push for a silent one)}}, data at the
 * top so that the tokens of iOS and web apps get it too. Appended to out. 0, -ENOMEM. */
int pp_fcm_message(const struct pp_notif *n, struct cm_buf *out);

/* Map a send answer (HTTP status, Google's error JSON) to a result: 200 delivered (r->id =
 * message name); UNREGISTERED dead; INVALID_ARGUMENT rejected (bad notification); 401 without
 * an FCM error code rejected with reason UNAUTHENTICATED (the access token: sent again after a
 * new grant); THIRD_PARTY_AUTH_ERROR and SENDER_ID_MISMATCH rejected (auth); QUOTA_EXCEEDED
 * failed (throttled); UNAVAILABLE, INTERNAL and 5xx failed (provider). */
void pp_fcm_result(struct pp_result *r, int status, const char *body, size_t len);

/* --- client ------------------------------------------------------------------------------- */

struct pp_fcm;

struct pp_fcm_config {
	const char *name;               /* borrowed for the client's life: the app */
	struct pp_fcm_account *account; /* borrowed for the client's life */
	const char *base_url;        /* borrowed during alloc; NULL: https://fcm.googleapis.com */
	const char *ca_file;         /* borrowed during alloc; NULL: the system store */
	uint64_t request_timeout_ms; /* 0: 30 s */
	unsigned max_in_flight;      /* requests at once; 0: 1000 (beyond: queued) */
	struct cm_metrics *metrics;  /* borrowed, may be NULL */
};

/* A client on loop l (borrowed). 0, -EINVAL, -ENOMEM, or the metrics registry's error
 * (logged). */
int pp_fcm_alloc(struct pp_fcm **out, struct cm_loop *l, const struct pp_fcm_config *cfg);

/* One attempt, in the dispatcher's pp_send_fn shape (provider is the client): 0 and cb later
 * exactly once (never from within), or a negative errno with *now filled. */
int pp_fcm_send(void *fcm, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                void *arg, struct pp_result *now);

unsigned pp_fcm_pending(const struct pp_fcm *f);

/* False while FCM or Google refuse the app's credentials (creds.h): its notifications fail at
 * once. */
bool pp_fcm_credentials_ok(const struct pp_fcm *f);

/* The service account was replaced (SIGHUP): try it at once, refused or not. */
void pp_fcm_credentials_changed(struct pp_fcm *f);

/* Stop: queued attempts end now (shutdown); in flight ones finish (graceful) or are
 * cancelled. done(arg) once everything is released; f is freed right after. Called again with
 * graceful false during a graceful close, it cancels what is in flight. */
void pp_fcm_close(struct pp_fcm *f, bool graceful, void (*done)(void *arg), void *arg);

#endif
