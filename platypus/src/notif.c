/* notif.c - the notification model: life cycle, validation with precise errors. */
#include "notif.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"

void pp_notif_init(struct pp_notif *n)
{
	memset(n, 0, sizeof(*n));
	n->ttl = -1;
	n->alert.badge = -1;
}

static void alert_free(struct pp_alert *a)
{
	free(a->title);
	free(a->body);
	free(a->click_action);
	free(a->tag);
	free(a->sound);
}

void pp_notif_free(struct pp_notif *n)
{
	if (!n)
		return;
	free(n->token);
	free(n->collapse_id);
	free(n->topic);
	free(n->app);
	for (size_t i = 0; i < n->ntags; i++)
		free(n->tags[i]);
	free(n->tags);
	alert_free(&n->alert);
	json_decref(n->data);
	pp_notif_init(n);
}

/* strdup that maps NULL to NULL; *failed is set on allocation failure. */
static char *dup_opt(const char *s, int *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = 1;
	return d;
}

int pp_notif_copy(struct pp_notif *dst, const struct pp_notif *src)
{
	int failed = 0;

	pp_notif_init(dst);
	dst->service = src->service;
	dst->mode = src->mode;
	dst->priority = src->priority;
	dst->ttl = src->ttl;
	dst->has_alert = src->has_alert;
	dst->mutable_content = src->mutable_content;
	dst->voip = src->voip;
	dst->alert.badge = src->alert.badge;
	dst->token = dup_opt(src->token, &failed);
	dst->collapse_id = dup_opt(src->collapse_id, &failed);
	dst->topic = dup_opt(src->topic, &failed);
	dst->app = dup_opt(src->app, &failed);
	dst->alert.title = dup_opt(src->alert.title, &failed);
	dst->alert.body = dup_opt(src->alert.body, &failed);
	dst->alert.click_action = dup_opt(src->alert.click_action, &failed);
	dst->alert.tag = dup_opt(src->alert.tag, &failed);
	dst->alert.sound = dup_opt(src->alert.sound, &failed);
	if (src->ntags) {
		dst->tags = calloc(src->ntags, sizeof(*dst->tags));
		if (!dst->tags)
			failed = 1;
		else {
			dst->ntags = src->ntags;
			for (size_t i = 0; i < src->ntags; i++)
				dst->tags[i] = dup_opt(src->tags[i], &failed);
		}
	}
	if (src->data) {
		/* Deep copy: the original may be changed by its owner afterwards. */
		dst->data = json_deep_copy(src->data);
		if (!dst->data)
			failed = 1;
	}
	if (failed) {
		pp_notif_free(dst);
		return -ENOMEM;
	}
	return 0;
}

bool pp_notif_silent(const struct pp_notif *n)
{
	return !n->has_alert && !n->voip;
}

enum pp_prio pp_notif_priority(const struct pp_notif *n)
{
	if (n->priority != PP_PRIO_DEFAULT)
		return n->priority;
	return pp_notif_silent(n) ? PP_PRIO_NORMAL : PP_PRIO_HIGH;
}

const char *pp_service_name(enum pp_service s)
{
	return s == PP_SVC_FCM ? "fcm" : "apns";
}

const char *pp_mode_name(enum pp_mode m)
{
	return m == PP_MODE_DEV ? "dev" : "prod";
}

int pp_quote_len(const char *s)
{
	size_t len = strlen(s);

	if (len <= PP_QUOTE_MAX)
		return (int)len;
	len = PP_QUOTE_MAX;
	/* Back to the start of the character the cut falls in. */
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return (int)len;
}

/* What is wrong with a text, when something is. */
struct text_fault {
	size_t at; /* byte offset */
	long ctrl; /* the control character found there, or -1: the bytes are not UTF-8 */
};

/* Length of s when it is valid UTF-8 without control characters other than tab, line feed
 * and carriage return; else -1 with *f saying what and where. */
static long utf8_text_len(const char *s, struct text_fault *f)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (p[i]) {
		unsigned char c = p[i];
		size_t n, k;
		unsigned long cp;

		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
				*f = (struct text_fault){i, c};
				return -1;
			}
			i++;
			continue;
		}
		*f = (struct text_fault){i, -1};
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return -1;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values beyond U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return -1;
		i += n + 1;
	}
	return (long)i;
}

/* "field: what is wrong" for a text utf8_text_len() refused. */
static int bad_text(char *err, size_t errlen, const char *field, const struct text_fault *f)
{
	if (f->ctrl < 0)
		return cm_errf(err, errlen, -EINVAL, "%s: not valid UTF-8 (at byte %zu)", field,
		               f->at);
	return cm_errf(err, errlen, -EINVAL,
	               "%s: control character U+%04lX at byte %zu (of the control characters only "
	               "tab, line feed and carriage return are allowed)",
	               field, f->ctrl, f->at);
}

static int check_text(const char *field, const char *s, size_t max, char *err, size_t errlen)
{
	struct text_fault f;
	long len;

	if (!s)
		return 0;
	len = utf8_text_len(s, &f);
	if (len < 0)
		return bad_text(err, errlen, field, &f);
	if ((size_t)len > max)
		return cm_errf(err, errlen, -EINVAL, "%s: %ld bytes, at most %zu allowed", field,
		               len, max);
	return 0;
}

static int check_token(const struct pp_notif *n, char *err, size_t errlen)
{
	size_t len;

	if (!n->token || !*n->token)
		return cm_errf(err, errlen, -EINVAL, "token: missing device token");
	len = strlen(n->token);
	if (n->service == PP_SVC_APNS) {
		for (size_t i = 0; i < len; i++)
			if (!isxdigit((unsigned char)n->token[i]))
				return cm_errf(
				    err, errlen, -EINVAL,
				    "token: APNs device tokens are hex digits, found '%c' at %zu",
				    isprint((unsigned char)n->token[i]) ? n->token[i] : '?', i);
		if (len < PP_APNS_TOKEN_MIN || len > PP_APNS_TOKEN_MAX || len % 2)
			return cm_errf(
			    err, errlen, -EINVAL,
			    "token: %zu hex digits, APNs needs an even number from %d to %d", len,
			    PP_APNS_TOKEN_MIN, PP_APNS_TOKEN_MAX);
		return 0;
	}
	if (len > PP_FCM_TOKEN_MAX)
		return cm_errf(err, errlen, -EINVAL,
		               "token: %zu characters, FCM tokens have at most %d", len,
		               PP_FCM_TOKEN_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)n->token[i];

		if (!isalnum(c) && c != '_' && c != ':' && c != '-')
			return cm_errf(
			    err, errlen, -EINVAL,
			    "token: FCM registration tokens use [A-Za-z0-9_:-], found '%c' at %zu",
			    isprint(c) ? c : '?', i);
	}
	return 0;
}

static int check_topic(const char *topic, char *err, size_t errlen)
{
	size_t len;

	if (!topic)
		return 0;
	len = strlen(topic);
	if (!len || len > PP_TOPIC_MAX)
		return cm_errf(err, errlen, -EINVAL, "topic: %zu characters, must be 1 to %d", len,
		               PP_TOPIC_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)topic[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return cm_errf(err, errlen, -EINVAL,
			               "topic: a bundle id has only [A-Za-z0-9._-], found '%c'",
			               isprint(c) ? c : '?');
	}
	return 0;
}

/* FCM refuses these data keys; APNs must not see a custom "aps". */
static int check_data(const struct pp_notif *n, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!n->data)
		return 0;
	if (!json_is_object(n->data))
		return cm_errf(err, errlen, -EINVAL, "data: must be a JSON object");
	json_object_foreach(n->data, key, v)
	{
		struct text_fault f;

		if (!*key)
			return cm_errf(err, errlen, -EINVAL, "data: a key is empty");
		if (utf8_text_len(key, &f) < 0)
			return f.ctrl < 0
			           ? cm_errf(err, errlen, -EINVAL, "data: a key is not valid UTF-8")
			           : cm_errf(
			                 err, errlen, -EINVAL,
			                 "data: a key has control character U+%04lX at byte %zu",
			                 f.ctrl, f.at);
		if (n->service == PP_SVC_APNS && !strcmp(key, "aps"))
			return cm_errf(err, errlen, -EINVAL, "data.aps: reserved by APNs");
		if (n->service == PP_SVC_FCM &&
		    (!strcmp(key, "from") || !strcmp(key, "notification") ||
		     !strcmp(key, "message_type") || !strncmp(key, "google.", 7) ||
		     !strncmp(key, "gcm.", 4)))
			return cm_errf(err, errlen, -EINVAL, "data.%.*s%s: reserved by FCM",
			               PP_QUOTE(key));
		if (n->service == PP_SVC_FCM && json_is_null(v))
			return cm_errf(err, errlen, -EINVAL,
			               "data.%.*s%s: FCM data values cannot be null",
			               PP_QUOTE(key));
	}
	return 0;
}

int pp_notif_validate(const struct pp_notif *n, char *err, size_t errlen)
{
	int r;

	if (n->service != PP_SVC_APNS && n->service != PP_SVC_FCM)
		return cm_errf(err, errlen, -EINVAL, "service: must be apns or fcm");
	if (n->mode != PP_MODE_PROD && n->mode != PP_MODE_DEV)
		return cm_errf(err, errlen, -EINVAL, "mode: must be prod or dev");
	if (n->priority != PP_PRIO_DEFAULT && n->priority != PP_PRIO_NORMAL &&
	    n->priority != PP_PRIO_HIGH)
		return cm_errf(err, errlen, -EINVAL, "priority: must be normal or high");
	if ((r = check_token(n, err, errlen)))
		return r;
	if (n->ttl < -1 || n->ttl > PP_TTL_MAX)
		return cm_errf(err, errlen, -EINVAL, "time_to_live: %lld, must be 0 to %d seconds",
		               n->ttl, PP_TTL_MAX);
	if (n->collapse_id && (!*n->collapse_id || strlen(n->collapse_id) > PP_COLLAPSE_MAX))
		return cm_errf(err, errlen, -EINVAL, "collapse_id: must be 1 to %d bytes",
		               PP_COLLAPSE_MAX);
	if ((r = check_text("collapse_id", n->collapse_id, PP_COLLAPSE_MAX, err, errlen)))
		return r;
	if ((r = check_topic(n->topic, err, errlen)))
		return r;
	if (n->has_alert) {
		if ((r = check_text("alert.title", n->alert.title, PP_ALERT_FIELD_MAX, err,
		                    errlen)) ||
		    (r = check_text("alert.body", n->alert.body, PP_ALERT_FIELD_MAX, err,
		                    errlen)) ||
		    (r = check_text("alert.click_action", n->alert.click_action, 256, err,
		                    errlen)) ||
		    (r = check_text("alert.tag", n->alert.tag, 256, err, errlen)) ||
		    (r = check_text("alert.sound", n->alert.sound, 256, err, errlen)))
			return r;
		if (n->alert.badge < -1 || n->alert.badge > 999999)
			return cm_errf(err, errlen, -EINVAL,
			               "alert.badge: %lld, must be 0 to 999999", n->alert.badge);
	}
	if (n->mutable_content && !n->has_alert)
		return cm_errf(err, errlen, -EINVAL, "mutable_content: needs an alert");
	if ((r = check_data(n, err, errlen)))
		return r;
	for (size_t i = 0; i < n->ntags; i++)
		if ((r = check_text("tags", n->tags[i], 256, err, errlen)))
			return r;
	return 0;
}
