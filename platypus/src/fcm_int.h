/* fcm_int.h - what the files of the FCM module share: the OAuth2 access token (fcm_auth.c), the
 * v1 message and the meaning of answers (fcm_msg.c), used by the client (fcm.c). Private to the
 * module and its tests. */
#ifndef PP_FCM_INT_H
#define PP_FCM_INT_H

#include <stddef.h>
#include <time.h>

#include "fcm.h"

struct cm_buf;

#define PP_FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
/* The access token is renewed this long before Google says it expires. */
#define PP_FCM_TOKEN_MARGIN 300

/* Append the form body of a token request at wall time now: grant_type=...&assertion=<JWT
 * RS256 {iss, scope, aud: token_uri, iat, exp: iat + 3600}>. 0 or -errno. */
int pp_fcm__assertion_form(const struct pp_fcm_account *a, time_t now, struct cm_buf *out);

/* Take a token endpoint answer (status, JSON body). 200 with access_token and expires_in
 * caches the token until expires_in - PP_FCM_TOKEN_MARGIN, or for half its life (rounded up)
 * when expires_in is 2 * PP_FCM_TOKEN_MARGIN (600 s) or less: 0.
 * Otherwise -EACCES (Google refused the grant: our key or configuration; err has Google's
 * error and description), -EAGAIN (transient: 5xx, 429), -EBADMSG (malformed), -ENOMEM. */
int pp_fcm__account_grant(struct pp_fcm_account *a, int status, const char *body, size_t len,
                          time_t now, char *err, size_t errlen);

/* The cached access token if still good at now, else NULL. */
const char *pp_fcm__access_token(const struct pp_fcm_account *a, time_t now);

/* Forget the access token (the send endpoint said 401). */
void pp_fcm__account_forget(struct pp_fcm_account *a);

/* The v1 request body for n (validated): {"message": {token, notification {title, body}, data
 * (every value a string), android {priority, ttl, collapse_key, notification (only when the
 * alert has display options)}, apns (only for what iOS apps need beyond that: badge, sound,
 * category, thread-id, mutable-content; a background push for a silent one)}}, data at the
 * top so that the tokens of iOS and web apps get it too. Appended to out. 0, -ENOMEM. */
int pp_fcm__message(const struct pp_notif *n, struct cm_buf *out);

/* Map a send answer (HTTP status, Google's error JSON) to a result: 200 delivered (r->id =
 * message name); UNREGISTERED dead; INVALID_ARGUMENT rejected (bad notification); 401 without
 * an FCM error code rejected with reason UNAUTHENTICATED (the access token: sent again after a
 * new grant); THIRD_PARTY_AUTH_ERROR and SENDER_ID_MISMATCH rejected (auth); QUOTA_EXCEEDED
 * failed (throttled); UNAVAILABLE, INTERNAL and 5xx failed (provider). */
void pp_fcm__result(struct pp_result *r, int status, const char *body, size_t len);

#endif
