/* fcm.h - Firebase Cloud Messaging HTTP v1: the service account (fcm_auth.c) and the client on
 * libcurl multi driven by the loop (fcm.c on cm_curl, the only file that includes libcurl). The
 * OAuth2 exchange, the v1 message and the meaning of answers (fcm_msg.c) are the module's own
 * business: fcm_int.h. */
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
