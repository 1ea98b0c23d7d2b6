/* fcm_msg.c - the FCM HTTP v1 message for a notification, and the meaning of FCM's answers. */
#include "fcm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cm/buf.h"

static int set_str(json_t *o, const char *k, const char *v)
{
	return v && json_object_set_new(o, k, json_string(v)) ? -ENOMEM : 0;
}

/* FCM data values must be strings: others become their compact JSON text. */
static json_t *stringify(const json_t *data)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;

	if (!out)
		return NULL;
	json_object_foreach((json_t *)data, k, v)
	{
		json_t *s;

		if (json_is_string(v))
			s = json_string(json_string_value(v));
		else {
			char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			s = txt ? json_string(txt) : NULL;
			free(txt);
		}
		if (!s || json_object_set_new(out, k, s)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* The alert's Android display options: {click_action, tag, sound, notification_count}, or NULL
 * when it has none (no empty object: FCM would take it for a wish). -ENOMEM in *r. */
static json_t *android_notification(const struct pp_alert *a, int *r)
{
	json_t *an;

	if (!a->click_action && !a->tag && !a->sound && a->badge < 0)
		return NULL;
	an = json_object();
	if (!an || set_str(an, "click_action", a->click_action) || set_str(an, "tag", a->tag) ||
	    set_str(an, "sound", a->sound) ||
	    (a->badge >= 0 &&
	     json_object_set_new(an, "notification_count", json_integer(a->badge)))) {
		json_decref(an);
		*r = -ENOMEM;
		return NULL;
	}
	return an;
}

/* The apns block, for tokens of iOS apps, only when the notification asks for something FCM
 * does not derive from message.notification: the badge, sound, category (click_action), thread
 * (tag) or mutable-content of an alert; or, for a silent push, a background push (priority 5,
 * content-available), without which iOS does not wake the app. NULL otherwise. -ENOMEM in *r. */
static json_t *apns_block(const struct pp_notif *n, int *r)
{
	const struct pp_alert *a = &n->alert;
	json_t *apns, *payload, *aps, *headers;
	bool silent = pp_notif_silent(n), bad;

	if (!silent && (n->voip || (!a->click_action && !a->tag && !a->sound && a->badge < 0 &&
	                            !n->mutable_content)))
		return NULL;
	/* json_object_set_new() takes the value even when it fails. */
	apns = json_object();
	payload = json_object();
	aps = json_object();
	if (!apns || !payload || !aps) {
		json_decref(apns);
		json_decref(payload);
		json_decref(aps);
		*r = -ENOMEM;
		return NULL;
	}
	bad = json_object_set_new(payload, "aps", aps) != 0;
	if (bad)
		json_decref(payload);
	bad = bad || json_object_set_new(apns, "payload", payload);
	if (!bad && silent) {
		headers = json_object();
		bad = !headers || json_object_set_new(apns, "headers", headers) ||
		      set_str(headers, "apns-push-type", "background") ||
		      set_str(headers, "apns-priority", "5") ||
		      json_object_set_new(aps, "content-available", json_integer(1));
	} else if (!bad) {
		bad =
		    (a->badge >= 0 && json_object_set_new(aps, "badge", json_integer(a->badge))) ||
		    set_str(aps, "sound", a->sound) || set_str(aps, "category", a->click_action) ||
		    set_str(aps, "thread-id", a->tag) ||
		    (n->mutable_content &&
		     json_object_set_new(aps, "mutable-content", json_integer(1)));
	}
	if (bad) {
		json_decref(apns);
		*r = -ENOMEM;
		return NULL;
	}
	return apns;
}

int pp_fcm__message(const struct pp_notif *n, struct cm_buf *out)
{
	json_t *root = json_object(), *msg = json_object(), *android = json_object(), *part;
	const struct pp_alert *a = &n->alert;
	char ttl[32], *txt = NULL;
	int r = -ENOMEM, fail = 0;

	if (!root || !msg || !android)
		goto out;
	if (json_object_set(root, "message", msg) || set_str(msg, "token", n->token))
		goto out;
	/* A call is a data message: the app must run its code, not show a banner. */
	if (n->has_alert && !n->voip) {
		json_t *nn = json_object();

		if (!nn || json_object_set_new(msg, "notification", nn) ||
		    set_str(nn, "title", a->title) || set_str(nn, "body", a->body))
			goto out;
		part = android_notification(a, &fail);
		if (fail || (part && json_object_set_new(android, "notification", part)))
			goto out;
	}
	/* Data for every platform: android.data would reach Android apps only. */
	if (n->data && json_object_size(n->data)) {
		json_t *d = stringify(n->data);

		if (!d || json_object_set_new(msg, "data", d))
			goto out;
	}
	if (set_str(android, "priority", pp_notif_priority(n) == PP_PRIO_HIGH ? "HIGH" : "NORMAL"))
		goto out;
	if (n->ttl >= 0) {
		snprintf(ttl, sizeof(ttl), "%llds", n->ttl);
		if (set_str(android, "ttl", ttl))
			goto out;
	}
	if (set_str(android, "collapse_key", n->collapse_id))
		goto out;
	if (json_object_set(msg, "android", android))
		goto out;
	part = apns_block(n, &fail);
	if (fail || (part && json_object_set_new(msg, "apns", part)))
		goto out;
	txt = json_dumps(root, JSON_COMPACT);
	if (!txt)
		goto out;
	r = cm_buf_puts(out, txt);
out:
	free(txt);
	json_decref(android);
	json_decref(msg);
	json_decref(root);
	return r;
}

/* The FcmError errorCode in error.details[], or NULL. */
static const char *fcm_code(json_t *err)
{
	json_t *details = json_object_get(err, "details"), *d;
	size_t i;

	json_array_foreach(details, i, d)
	{
		const char *type = json_string_value(json_object_get(d, "@type"));
		const char *code = json_string_value(json_object_get(d, "errorCode"));

		if (type && code && strstr(type, "google.firebase.fcm.v1.FcmError"))
			return code;
	}
	return NULL;
}

void pp_fcm__result(struct pp_result *r, int status, const char *body, size_t len)
{
	json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *err = json_object_get(root, "error");
	const char *code = fcm_code(err);
	const char *gstatus = json_string_value(json_object_get(err, "status"));
	enum pp_outcome o;
	enum pp_cause c;

	if (status == 200) {
		pp_result_set(r, PP_OUT_DELIVERED, PP_CAUSE_NONE, status, "");
		snprintf(r->id, sizeof(r->id), "%s",
		         json_string_value(json_object_get(root, "name"))
		             ? json_string_value(json_object_get(root, "name"))
		             : "");
		json_decref(root);
		return;
	}
	if (code && !strcmp(code, "UNREGISTERED")) {
		o = PP_OUT_DEAD;
		c = PP_CAUSE_UNREGISTERED;
	} else if (code && !strcmp(code, "QUOTA_EXCEEDED")) {
		o = PP_OUT_FAILED;
		c = PP_CAUSE_THROTTLED;
	} else if (code && (!strcmp(code, "UNAVAILABLE") || !strcmp(code, "INTERNAL"))) {
		o = PP_OUT_FAILED;
		c = PP_CAUSE_PROVIDER;
	} else if (code && (!strcmp(code, "THIRD_PARTY_AUTH_ERROR") ||
	                    !strcmp(code, "SENDER_ID_MISMATCH"))) {
		/* The app's APNs key at Firebase, or a token of another project than our
		 * credentials': not the registration's fault when every token says so. */
		o = PP_OUT_REJECTED;
		c = PP_CAUSE_AUTH;
	} else if (code) { /* INVALID_ARGUMENT, and unknown codes */
		o = status >= 500 ? PP_OUT_FAILED : PP_OUT_REJECTED;
		c = status >= 500 ? PP_CAUSE_PROVIDER : PP_CAUSE_BAD_NOTIFICATION;
	} else if (status == 401) {
		/* The access token itself: retried once a new one is granted. */
		o = PP_OUT_REJECTED;
		c = PP_CAUSE_AUTH;
		code = "UNAUTHENTICATED";
	} else if (status == 403) {
		o = PP_OUT_REJECTED;
		c = PP_CAUSE_AUTH;
	} else if (status == 429) {
		o = PP_OUT_FAILED;
		c = PP_CAUSE_THROTTLED;
	} else if (status >= 500 || status == 0) {
		o = PP_OUT_FAILED;
		c = PP_CAUSE_PROVIDER;
	} else if (status == 413) {
		o = PP_OUT_REJECTED;
		c = PP_CAUSE_PAYLOAD_TOO_LARGE;
	} else {
		o = PP_OUT_REJECTED;
		c = PP_CAUSE_BAD_NOTIFICATION;
	}
	pp_result_set(r, o, c, status, code ? code : gstatus);
	json_decref(root);
}
