/* apns_int.h - what the files of the APNs module share (apns_payload.c builds requests and reads
 * answers, apns_token.c makes provider tokens, apns_pool.c sends): private to the module and
 * its tests. */
#ifndef PP_APNS_INT_H
#define PP_APNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "apns.h"

#define PP_APNS_PAYLOAD_MAX      4096
#define PP_APNS_PAYLOAD_MAX_VOIP 5120

/* One APNs request, ready for HTTP/2. All strings are inside the struct except body. */
struct pp_apns_msg {
	char *body; /* owned (free()): the JSON payload */
	size_t body_len;
	char path[16 + PP_APNS_TOKEN_MAX + 1]; /* "/3/device/<token>" */
	char topic[PP_TOPIC_MAX + 8];          /* with ".voip" for calls */
	const char *push_type;                 /* static: "alert", "background", "voip" */
	char priority[4];                      /* "10", "5" */
	char expiration[24];                   /* unix seconds; "" = header not sent */
	char collapse_id[PP_COLLAPSE_MAX + 1]; /* "" = header not sent */
	char apns_id[37];                      /* UUID, lower case; set by pp_apns__id_next() */
};

/* apns-id values: UUIDs (version 4 layout) that are unique within the generator, without a
 * trip to the random generator per notification. The first 66 bits are random per generator,
 * the last 56 a counter from a random start: unique for 2^56 notifications; they need not be
 * unpredictable (they only label a request for Apple's logs and ours). */
struct pp_apns_idgen {
	uint64_t hi, lo;
};

/* Seed g from the system's random generator. 0, -EIO. */
int pp_apns__id_seed(struct pp_apns_idgen *g);
/* The next id of g into out. */
void pp_apns__id_next(struct pp_apns_idgen *g, char out[37]);

/* Build the request for n (validated) at wall time now. default_topic (borrowed) is the app's
 * bundle id used when n has none. 0; -EINVAL (no topic at all; err says so); -EMSGSIZE (the
 * payload is over 4096 bytes, 5120 for VoIP; err gives the size); -ENOMEM. On failure msg
 * holds nothing to free. */
int pp_apns__msg_build(struct pp_apns_msg *msg, const struct pp_notif *n, const char *default_topic,
                       time_t now, char *err, size_t errlen);

void pp_apns__msg_free(struct pp_apns_msg *msg); /* accepts NULL */

/* Map an APNs answer (HTTP status and body {"reason": ...}) to a result, without retry policy:
 * 200 delivered; 410 dead; 400/403/404/405/413 rejected; 429/5xx failed (the retry layer decides
 * whether to try again). body may be NULL. */
void pp_apns__result(struct pp_result *r, int status, const char *body, size_t len);

/* --- provider token ------------------------------------------------------------------------ */

/* The token to send at wall time now: made on first use, remade once it is refresh_s old (or
 * stale and at least 20 minutes old, or over 60 minutes old whatever happens). Borrowed until
 * the next call. NULL when signing fails (logged). *refreshed (may be NULL) is set when this
 * call made a new token. */
const char *pp_apns__token_get(struct pp_apns_token *t, time_t now, bool *refreshed);

/* APNs accepted a request made with token number gen: when it is the current one, it is no
 * longer a remade token on probation. */
void pp_apns__token_accepted(struct pp_apns_token *t, uint64_t gen);

#endif
