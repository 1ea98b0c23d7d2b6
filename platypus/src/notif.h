/* notif.h - the notification model shared by every front end (REST, XEP-0357 component) and
 * every provider (APNs, FCM): what to push, to which device, how urgently, for how long; and
 * the one outcome each accepted notification ends in, mapped to what the front ends answer. */
#ifndef PP_NOTIF_H
#define PP_NOTIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum pp_service { PP_SVC_APNS, PP_SVC_FCM };
enum pp_mode { PP_MODE_PROD, PP_MODE_DEV };
/* DEFAULT: high for visible alerts and VoIP, normal for silent pushes. */
enum pp_prio { PP_PRIO_DEFAULT, PP_PRIO_NORMAL, PP_PRIO_HIGH };

/* Limits checked by pp_notif_validate(). */
#define PP_APNS_TOKEN_MIN  64   /* hex digits: Apple's tokens are 32 bytes today */
#define PP_APNS_TOKEN_MAX  200  /* room for longer tokens without accepting garbage */
#define PP_FCM_TOKEN_MAX   4096 /* FCM registration tokens are ~150 characters */
#define PP_COLLAPSE_MAX    64   /* apns-collapse-id limit, applied to FCM collapse_key too */
#define PP_TOPIC_MAX       255
#define PP_TTL_MAX         2419200 /* 28 days: FCM's maximum */
#define PP_ALERT_FIELD_MAX 4096
/* Room for a reason: every message platypus composes fits whole (client-supplied names in it
 * are quoted to at most PP_QUOTE_MAX bytes, see pp_quote_len()). */
#define PP_REASON_MAX 256
#define PP_QUOTE_MAX  64

struct pp_alert {
	char *title;        /* owned, may be NULL */
	char *body;         /* owned, may be NULL */
	char *click_action; /* owned, may be NULL: APNs category, FCM click_action */
	char *tag;          /* owned, may be NULL: APNs thread-id, FCM android.notification.tag */
	char *sound;        /* owned, may be NULL */
	long long badge;    /* -1: none */
};

struct pp_notif {
	enum pp_service service;
	enum pp_mode mode;
	char *token; /* owned: APNs device token (hex) or FCM registration token */
	enum pp_prio priority;
	long long ttl;     /* seconds the provider may keep it undelivered; -1: not given */
	char *collapse_id; /* owned, may be NULL: apns-collapse-id / android.collapse_key */
	char *topic;       /* owned, may be NULL: APNs bundle id; NULL = the app's default */
	char *app;         /* owned, may be NULL: name of the app (pool) to use */
	char **tags;       /* owned, each owned: pool selection (MongoosePush "tags") */
	size_t ntags;
	bool has_alert; /* alert below is meaningful; without it the push is silent */
	struct pp_alert alert;
	json_t *data;         /* owned reference, may be NULL: a JSON object of custom keys */
	bool mutable_content; /* APNs mutable-content: 1 */
	bool voip;            /* a call: APNs push type voip (topic .voip), FCM HIGH data */
};

/* Zero n and set the "not given" values (ttl -1, badge -1). */
void pp_notif_init(struct pp_notif *n);

/* Release everything n owns and re-initialise it. Accepts NULL. */
void pp_notif_free(struct pp_notif *n);

/* Deep copy of src into dst (dst is initialised first). 0 or -ENOMEM (dst then empty). */
int pp_notif_copy(struct pp_notif *dst, const struct pp_notif *src);

/* How many bytes of s a message quotes: all of it up to PP_QUOTE_MAX, else the longest prefix
 * that ends on a UTF-8 character boundary. PP_QUOTE(s) gives the arguments of "%.*s%s" for a
 * name a client chose (data keys, form fields): "..." follows a name that was cut. */
int pp_quote_len(const char *s);
#define PP_QUOTE(s) pp_quote_len(s), (s), (strlen(s) > PP_QUOTE_MAX ? "..." : "")

/* Check n against the rules of its service. On failure err (errlen bytes) gets a precise
 * reason naming the field ("token: 63 hex digits, APNs needs 64 to 200") and -EINVAL is
 * returned. */
int pp_notif_validate(const struct pp_notif *n, char *err, size_t errlen);

/* Whether n is a silent (background / data-only) push: no alert and not a call. */
bool pp_notif_silent(const struct pp_notif *n);

/* The effective priority (resolves PP_PRIO_DEFAULT). */
enum pp_prio pp_notif_priority(const struct pp_notif *n);

const char *pp_service_name(enum pp_service s);
const char *pp_mode_name(enum pp_mode m);

/* --- what the front ends hand over -------------------------------------------------------- */

/* Fill n (initialised here) from a MongoosePush v3 request: device_id from the path, json the
 * body ({"service", "mode", "priority", "time_to_live", "mutable_content", "topic", "tags",
 * "data", "alert": {"title", "body", "click_action", "tag", "badge", "sound"}}). A topic ending
 * in ".voip" makes a VoIP push. Unknown members are ignored (clients add their own). The result
 * still goes through pp_notif_validate() at submission. 0, or -EINVAL with err naming the member
 * ("alert.badge: must be an integer"); n is then empty. -ENOMEM. */
int pp_notif_from_mongoosepush(struct pp_notif *n, const char *device_id, const char *json,
                               size_t len, char *err, size_t errlen);

/* One field of a data form (XEP-0004), as the component front end extracts it. */
struct pp_field {
	const char *var;
	const char *value; /* the first <value/>, NULL when none */
};

/* Fill n (initialised here) from a XEP-0357 publish: the publish-options form (the MongooseIM
 * keys device_id, service, mode, topic, priority, silent, voip; "secret" is the front end's to
 * check) and the urn:xmpp:push:summary form (message-count, last-message-sender,
 * last-message-body, and a JMI marker: a summary field "call" or "jingle-message" makes a
 * VoIP push). Not silent: an alert titled by the sender with the body. 0, -EINVAL (err says
 * which field), -ENOMEM. */
int pp_notif_from_push_form(struct pp_notif *n, const struct pp_field *opts, size_t nopts,
                            const struct pp_field *summary, size_t nsummary, char *err,
                            size_t errlen);

/* --- outcome ------------------------------------------------------------------------------- */

/* What every accepted notification ends in, exactly once. */
enum pp_outcome {
	PP_OUT_DELIVERED, /* the provider accepted it */
	PP_OUT_DEAD,      /* the device token is dead (APNs 410, FCM UNREGISTERED) */
	PP_OUT_REJECTED,  /* final refusal: bad input, payload too large, auth/config */
	PP_OUT_EXPIRED,   /* its TTL (or the retry window) passed before a provider took it */
	PP_OUT_FAILED,    /* transient trouble that outlived the retries */
	PP_OUT_BUSY,      /* not accepted: the queue is full or platypus is stopping */
};
#define PP_OUT_COUNT 6

/* Why, in enough detail for the front ends' mapping. */
enum pp_cause {
	PP_CAUSE_NONE,
	PP_CAUSE_INVALID_REQUEST,   /* our validation refused it */
	PP_CAUSE_NO_POOL,           /* no app matches service/mode/topic/tags */
	PP_CAUSE_PAYLOAD_TOO_LARGE, /* over the provider's limit (ours or its 413) */
	PP_CAUSE_BAD_NOTIFICATION,  /* the provider said 400 (bad token, topic, ...) */
	PP_CAUSE_CONFIG,            /* the provider says our request is malformed: our configuration
	                               (an app's topic) or our bug, not the device's */
	PP_CAUSE_UNREGISTERED,      /* dead token */
	PP_CAUSE_AUTH,              /* 401/403: our credentials, or the token's project (FCM) */
	PP_CAUSE_THROTTLED,         /* 429 */
	PP_CAUSE_PROVIDER,          /* 5xx */
	PP_CAUSE_CONNECT,           /* could not connect to the provider */
	PP_CAUSE_CONN_LOST,         /* the connection broke with the request in flight */
	PP_CAUSE_TIMEOUT,           /* no answer in time */
	PP_CAUSE_BUSY,              /* queue full */
	PP_CAUSE_SHUTDOWN,          /* platypus is stopping */
	PP_CAUSE_INTERNAL,          /* anything else (out of memory, ...) */
};

struct pp_result {
	enum pp_outcome outcome;
	enum pp_cause cause;
	int status;                 /* the provider's last HTTP status, 0 when none */
	char reason[PP_REASON_MAX]; /* the provider's reason ("BadDeviceToken"), or ours, whole */
	char id[64];                /* apns-id echoed by APNs, or FCM's message name (truncated) */
	unsigned attempts;          /* requests sent to the provider (a provider sets those of one
	                               attempt: 2 when it resent after a refused token) */
};

/* The end of one attempt at a provider (APNs pool, FCM client): r is borrowed for the call;
 * retry_after_s is the provider's Retry-After in seconds, or -1. */
typedef void (*pp_attempt_cb)(void *arg, const struct pp_result *r, long long retry_after_s);

/* Fill r for an outcome and cause with an optional reason (copied; one longer than r->reason,
 * which only a provider could send, is cut at a UTF-8 character boundary). */
void pp_result_set(struct pp_result *r, enum pp_outcome o, enum pp_cause c, int status,
                   const char *reason);

const char *pp_outcome_name(enum pp_outcome o);

/* MongoosePush v3: HTTP status and the "reason" of the body (NULL for 200), as MongoosePush
 * answers for the same provider refusal (docs/platypus.md lists where platypus differs). */
int pp_result_http(const struct pp_result *r, const char **reason);

/* XEP-0357 IQ reply: *type is NULL for a result, else "cancel", "wait", "modify" or "auth",
 * and *condition the RFC 6120 defined condition. */
void pp_result_xmpp(const struct pp_result *r, const char **type, const char **condition);

#endif
