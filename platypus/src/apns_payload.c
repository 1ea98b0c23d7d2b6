/* apns_payload.c - an APNs request from a notification: JSON payload (jansson), headers, size
 * limits, push-type and priority rules; and the meaning of APNs answers. */
#include "apns_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/crypto.h"

static int set_str(json_t *obj, const char *key, const char *val)
{
	if (!val)
		return 0;
	return json_object_set_new(obj, key, json_string(val)) ? -ENOMEM : 0;
}

static json_t *build_aps(const struct pp_notif *n)
{
	json_t *aps = json_object(), *alert = NULL;
	const struct pp_alert *a = &n->alert;
	int r = 0;

	if (!aps)
		return NULL;
	if (n->has_alert) {
		if (a->title || a->body) {
			alert = json_object();
			if (!alert || json_object_set_new(aps, "alert", alert))
				goto fail;
			r |= set_str(alert, "title", a->title);
			r |= set_str(alert, "body", a->body);
		}
		r |= set_str(aps, "sound", a->sound);
		r |= set_str(aps, "category", a->click_action);
		r |= set_str(aps, "thread-id", a->tag);
		if (a->badge >= 0)
			r |=
			    json_object_set_new(aps, "badge", json_integer(a->badge)) ? -ENOMEM : 0;
		if (n->mutable_content)
			r |= json_object_set_new(aps, "mutable-content", json_integer(1)) ? -ENOMEM
			                                                                  : 0;
	} else if (!n->voip) {
		r |= json_object_set_new(aps, "content-available", json_integer(1)) ? -ENOMEM : 0;
	}
	if (r)
		goto fail;
	return aps;
fail:
	json_decref(aps);
	return NULL;
}

int pp_apns__id_seed(struct pp_apns_idgen *g)
{
	uint64_t r[2];

	if (cm_crypto_random(r, sizeof(r)))
		return -EIO;
	g->hi = r[0];
	g->lo = r[1];
	return 0;
}

void pp_apns__id_next(struct pp_apns_idgen *g, char out[37])
{
	static const char digits[] = "0123456789abcdef";
	uint64_t hi = g->hi, lo;
	unsigned char b[16];
	char *o = out;

	/* the counter keeps the top byte of lo (and only it wraps in 2^56 calls) */
	g->lo = (g->lo & 0xff00000000000000u) | ((g->lo + 1) & 0x00ffffffffffffffu);
	lo = g->lo;
	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(hi >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	/* 8-4-4-4-12 hex digits */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = digits[b[i] >> 4];
		*o++ = digits[b[i] & 0x0f];
	}
	*o = '\0';
}

int pp_apns__msg_build(struct pp_apns_msg *msg, const struct pp_notif *n, const char *default_topic,
                       time_t now, char *err, size_t errlen)
{
	const char *topic = n->topic ? n->topic : default_topic;
	json_t *root = NULL, *aps;
	size_t limit, tlen;
	int r = 0;

	memset(msg, 0, sizeof(*msg));
	if (!topic || !*topic) {
		return cm_errf(err, errlen, -EINVAL,
		               "topic: none given and the app has no default topic");
	}
	tlen = strlen(topic);
	if (tlen > PP_TOPIC_MAX || strlen(n->token) > PP_APNS_TOKEN_MAX) {
		return cm_errf(err, errlen, -EINVAL, "topic or token too long");
	}
	if (n->voip) {
		msg->push_type = "voip";
		/* VoIP pushes go to "<bundle>.voip"; accept a topic that already says so. */
		if (tlen > 5 && !strcmp(topic + tlen - 5, ".voip"))
			snprintf(msg->topic, sizeof(msg->topic), "%s", topic);
		else
			snprintf(msg->topic, sizeof(msg->topic), "%s.voip", topic);
		snprintf(msg->priority, sizeof(msg->priority), "10");
	} else if (pp_notif_silent(n)) {
		/* APNs refuses background pushes with priority 10. */
		msg->push_type = "background";
		snprintf(msg->topic, sizeof(msg->topic), "%s", topic);
		snprintf(msg->priority, sizeof(msg->priority), "5");
	} else {
		msg->push_type = "alert";
		snprintf(msg->topic, sizeof(msg->topic), "%s", topic);
		snprintf(msg->priority, sizeof(msg->priority), "%s",
		         pp_notif_priority(n) == PP_PRIO_HIGH ? "10" : "5");
	}
	snprintf(msg->path, sizeof(msg->path), "/3/device/%s", n->token);
	if (n->ttl == 0)
		snprintf(msg->expiration, sizeof(msg->expiration), "0");
	else if (n->ttl > 0)
		snprintf(msg->expiration, sizeof(msg->expiration), "%lld", (long long)now + n->ttl);
	if (n->collapse_id)
		snprintf(msg->collapse_id, sizeof(msg->collapse_id), "%s", n->collapse_id);
	/* Custom keys first, then "aps" (validation refused a custom "aps"). */
	root = n->data ? json_deep_copy(n->data) : json_object();
	aps = build_aps(n);
	if (!root || !aps || json_object_set_new(root, "aps", aps)) {
		if (!root)
			json_decref(aps);
		r = -ENOMEM;
		goto out;
	}
	msg->body = json_dumps(root, JSON_COMPACT);
	if (!msg->body) {
		r = -ENOMEM;
		goto out;
	}
	msg->body_len = strlen(msg->body);
	limit = n->voip ? PP_APNS_PAYLOAD_MAX_VOIP : PP_APNS_PAYLOAD_MAX;
	if (msg->body_len > limit) {
		r = cm_errf(err, errlen, -EMSGSIZE,
		            "payload: %zu bytes, over the APNs limit of %zu", msg->body_len, limit);
	}
out:
	json_decref(root);
	if (r)
		pp_apns__msg_free(msg);
	return r;
}

void pp_apns__msg_free(struct pp_apns_msg *msg)
{
	if (!msg)
		return;
	free(msg->body);
	msg->body = NULL;
	msg->body_len = 0;
}

void pp_apns__result(struct pp_result *r, int status, const char *body, size_t len)
{
	const char *reason = NULL;
	json_t *root = NULL;

	if (body && len) {
		root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(root) && json_is_string(json_object_get(root, "reason")))
			reason = json_string_value(json_object_get(root, "reason"));
	}
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
	if (status == 200) {
		r->outcome = PP_OUT_DELIVERED;
		r->cause = PP_CAUSE_NONE;
	} else if (status == 410) {
		r->outcome = PP_OUT_DEAD;
		r->cause = PP_CAUSE_UNREGISTERED;
	} else if (status == 413) {
		r->outcome = PP_OUT_REJECTED;
		r->cause = PP_CAUSE_PAYLOAD_TOO_LARGE;
	} else if (status == 403 || status == 401) {
		r->outcome = PP_OUT_REJECTED;
		r->cause = PP_CAUSE_AUTH;
	} else if (status == 429) {
		r->outcome = PP_OUT_FAILED;
		r->cause = PP_CAUSE_THROTTLED;
	} else if (status >= 500) {
		r->outcome = PP_OUT_FAILED;
		r->cause = PP_CAUSE_PROVIDER;
	} else {
		/* 400 and the rest: final, and unknown 400 reasons too. The reasons that blame our
		 * request rather than the device are our configuration (MongoosePush's
		 * internal_config list). */
		static const char *const config[] = {
		    "BadMessageId",       "BadPriority",      "BadTopic", "DuplicateHeaders",
		    "MissingDeviceToken", "MethodNotAllowed", "BadPath",  "MissingTopic",
		};

		r->outcome = PP_OUT_REJECTED;
		r->cause = PP_CAUSE_BAD_NOTIFICATION;
		for (size_t i = 0; reason && i < sizeof(config) / sizeof(config[0]); i++)
			if (!strcmp(reason, config[i]))
				r->cause = PP_CAUSE_CONFIG;
	}
	json_decref(root);
}
