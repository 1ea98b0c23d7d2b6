/* notif_in.c - notifications from what the front ends receive: a MongoosePush v3 JSON body, or
 * the publish-options and summary forms of a XEP-0357 publish. */
#include "notif.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"

/* A string member into *out (owned); absent is fine. */
static int get_str(json_t *obj, const char *key, const char *prefix, char **out, char *err,
                   size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cm_errf(err, errlen, -EINVAL, "%s%s: must be a string", prefix, key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return cm_errf(err, errlen, -EINVAL, "%s%s: contains a NUL character", prefix, key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static bool is_voip_topic(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	return n > 5 && !strcmp(t + n - 5, ".voip");
}

static int parse_alert(struct pp_notif *n, json_t *a, char *err, size_t errlen)
{
	json_t *badge;
	int r;

	if (!json_is_object(a))
		return cm_errf(err, errlen, -EINVAL, "alert: must be an object");
	n->has_alert = true;
	if ((r = get_str(a, "title", "alert.", &n->alert.title, err, errlen)) ||
	    (r = get_str(a, "body", "alert.", &n->alert.body, err, errlen)) ||
	    (r = get_str(a, "click_action", "alert.", &n->alert.click_action, err, errlen)) ||
	    (r = get_str(a, "tag", "alert.", &n->alert.tag, err, errlen)) ||
	    (r = get_str(a, "sound", "alert.", &n->alert.sound, err, errlen)))
		return r;
	badge = json_object_get(a, "badge");
	if (badge && !json_is_null(badge)) {
		if (!json_is_integer(badge) || json_integer_value(badge) < 0)
			return cm_errf(err, errlen, -EINVAL,
			               "alert.badge: must be a non-negative integer");
		n->alert.badge = json_integer_value(badge);
	}
	return 0;
}

static int parse_tags(struct pp_notif *n, json_t *tags, char *err, size_t errlen)
{
	size_t i;
	json_t *t;

	if (!json_is_array(tags))
		return cm_errf(err, errlen, -EINVAL, "tags: must be an array of strings");
	if (json_array_size(tags) > 16)
		return cm_errf(err, errlen, -EINVAL, "tags: at most 16");
	if (!json_array_size(tags))
		return 0;
	n->tags = calloc(json_array_size(tags), sizeof(char *));
	if (!n->tags)
		return -ENOMEM;
	json_array_foreach(tags, i, t)
	{
		if (!json_is_string(t))
			return cm_errf(err, errlen, -EINVAL, "tags[%zu]: must be a string", i);
		n->tags[i] = strdup(json_string_value(t));
		if (!n->tags[i])
			return -ENOMEM;
		n->ntags = i + 1;
	}
	return 0;
}

static int enum_of(json_t *root, const char *key, const char *a, const char *b, int *out, char *err,
                   size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v) && !strcmp(json_string_value(v), a))
		*out = 0;
	else if (json_is_string(v) && !strcmp(json_string_value(v), b))
		*out = 1;
	else
		return cm_errf(err, errlen, -EINVAL, "%s: must be \"%s\" or \"%s\"", key, a, b);
	return 1;
}

static int from_json(struct pp_notif *n, const char *device_id, json_t *root, char *err,
                     size_t errlen)
{
	json_t *v;
	int r, e;

	if (!json_is_object(root))
		return cm_errf(err, errlen, -EINVAL, "the body must be a JSON object");
	n->token = strdup(device_id);
	if (!n->token)
		return -ENOMEM;
	r = enum_of(root, "service", "apns", "fcm", &e, err, errlen);
	if (r < 0)
		return r;
	if (r == 0)
		return cm_errf(err, errlen, -EINVAL, "service: required (\"apns\" or \"fcm\")");
	n->service = e ? PP_SVC_FCM : PP_SVC_APNS;
	r = enum_of(root, "mode", "prod", "dev", &e, err, errlen);
	if (r < 0)
		return r;
	n->mode = r && e ? PP_MODE_DEV : PP_MODE_PROD;
	r = enum_of(root, "priority", "normal", "high", &e, err, errlen);
	if (r < 0)
		return r;
	n->priority = !r ? PP_PRIO_DEFAULT : e ? PP_PRIO_HIGH : PP_PRIO_NORMAL;
	v = json_object_get(root, "time_to_live");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return cm_errf(err, errlen, -EINVAL,
			               "time_to_live: must be a non-negative integer");
		n->ttl =
		    json_integer_value(v) > PP_TTL_MAX ? PP_TTL_MAX + 1 : json_integer_value(v);
	}
	v = json_object_get(root, "mutable_content");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return cm_errf(err, errlen, -EINVAL,
			               "mutable_content: must be true or false");
		n->mutable_content = json_is_true(v);
	}
	if ((r = get_str(root, "topic", "", &n->topic, err, errlen)))
		return r;
	n->voip = is_voip_topic(n->topic);
	v = json_object_get(root, "tags");
	if (v && !json_is_null(v) && (r = parse_tags(n, v, err, errlen)))
		return r;
	v = json_object_get(root, "data");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v))
			return cm_errf(err, errlen, -EINVAL, "data: must be an object");
		n->data = json_incref(v);
	}
	v = json_object_get(root, "alert");
	if (v && !json_is_null(v) && (r = parse_alert(n, v, err, errlen)))
		return r;
	if (!n->has_alert && !n->data)
		return cm_errf(err, errlen, -EINVAL, "alert or data: at least one is required");
	return 0;
}

int pp_notif_from_mongoosepush(struct pp_notif *n, const char *device_id, const char *json,
                               size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	int r;

	pp_notif_init(n);
	if (!device_id || !*device_id)
		return cm_errf(err, errlen, -EINVAL, "device_id: missing in the path");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return cm_errf(err, errlen, -EINVAL, "not JSON: %s (line %d, column %d)", je.text,
		               je.line, je.column);
	r = from_json(n, device_id, root, err, errlen);
	json_decref(root);
	if (r)
		pp_notif_free(n);
	return r;
}

static const char *field(const struct pp_field *f, size_t n, const char *var)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].var && !strcmp(f[i].var, var))
			return f[i].value ? f[i].value : "";
	return NULL;
}

static int dup_to(char **out, const char *v)
{
	if (!v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

static bool truthy(const char *v)
{
	return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

int pp_notif_from_push_form(struct pp_notif *n, const struct pp_field *opts, size_t nopts,
                            const struct pp_field *summary, size_t nsummary, char *err,
                            size_t errlen)
{
	const char *v, *sender, *body;
	int r = -EINVAL;

	pp_notif_init(n);
	v = field(opts, nopts, "service");
	if (!v)
		v = "apns";
	if (!strcmp(v, "apns"))
		n->service = PP_SVC_APNS;
	else if (!strcmp(v, "fcm"))
		n->service = PP_SVC_FCM;
	else {
		cm_errf(err, errlen, -EINVAL, "service: must be apns or fcm");
		goto out;
	}
	v = field(opts, nopts, "device_id");
	if (!v || !*v) {
		cm_errf(err, errlen, -EINVAL, "device_id: missing in the publish-options");
		goto out;
	}
	if ((r = dup_to(&n->token, v)))
		goto out;
	r = -EINVAL;
	v = field(opts, nopts, "mode");
	if (v && strcmp(v, "prod") && strcmp(v, "dev")) {
		cm_errf(err, errlen, -EINVAL, "mode: must be prod or dev");
		goto out;
	}
	n->mode = v && !strcmp(v, "dev") ? PP_MODE_DEV : PP_MODE_PROD;
	v = field(opts, nopts, "priority");
	if (v && strcmp(v, "normal") && strcmp(v, "high")) {
		cm_errf(err, errlen, -EINVAL, "priority: must be normal or high");
		goto out;
	}
	n->priority = !v ? PP_PRIO_DEFAULT : !strcmp(v, "high") ? PP_PRIO_HIGH : PP_PRIO_NORMAL;
	if ((r = dup_to(&n->topic, field(opts, nopts, "topic"))))
		goto out;
	n->voip = truthy(field(opts, nopts, "voip")) || is_voip_topic(n->topic) ||
	          truthy(field(summary, nsummary, "call")) ||
	          field(summary, nsummary, "jingle-message");
	if (n->voip)
		n->priority = PP_PRIO_HIGH;
	sender = field(summary, nsummary, "last-message-sender");
	body = field(summary, nsummary, "last-message-body");
	if (!truthy(field(opts, nopts, "silent"))) {
		n->has_alert = true;
		if ((r = dup_to(&n->alert.title, sender && *sender ? sender : "New message")) ||
		    (r = dup_to(&n->alert.body, body && *body ? body : NULL)))
			goto out;
	}
	/* The summary travels as data too: apps built for MongooseIM read it there. */
	n->data = json_object();
	if (!n->data) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nsummary; i++) {
		json_t *s;

		if (!summary[i].var || !summary[i].value || !strcmp(summary[i].var, "FORM_TYPE"))
			continue;
		s = json_string(summary[i].value);
		if (!s) {
			r = cm_errf(err, errlen, -EINVAL, "%.*s%s: not valid UTF-8",
			            PP_QUOTE(summary[i].var));
			goto out;
		}
		if (json_object_set_new(n->data, summary[i].var, s)) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = 0;
out:
	if (r)
		pp_notif_free(n);
	return r;
}
