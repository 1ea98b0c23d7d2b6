/* push_rest_body.c - a push as the MongoosePush v3 REST API takes it (push.h): the device
 * token for the path and the JSON body, from the registration's publish-options form and the
 * summary. Plain data: nothing here touches a loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "push.h"
#include "stanza.h"
#include "xc.h"

#define NS_DATA     "jabber:x:data"
#define VOIP_SUFFIX ".voip"

static bool truthy(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* form (XML text) parsed; NULL when it is not a form. */
static struct cm_xml_node *parse_form(const char *form, struct cm_xml_node **wrap)
{
	static const char head[] = "<message>", tail[] = "</message>";
	size_t n = strlen(form);
	char *text = malloc(sizeof(head) + n + sizeof(tail));
	int r;

	*wrap = NULL;
	if (!text)
		return NULL;
	memcpy(text, head, sizeof(head) - 1);
	memcpy(text + sizeof(head) - 1, form, n);
	memcpy(text + sizeof(head) - 1 + n, tail, sizeof(tail));
	r = xc_stanza_parse(text, strlen(text), wrap);
	free(text);
	return r ? NULL : cm_xml_child(*wrap, "x", NS_DATA);
}

static int set_str(json_t *o, const char *key, const char *v)
{
	json_t *s = json_string(v);

	return s && json_object_set_new(o, key, s) == 0 ? 0 : -EINVAL;
}

int xc_push_rest_body(const char *form, const struct xc_push_config *cfg, unsigned count,
                      const char *sender, const char *body, bool urgent, char **device_id,
                      char **json, const char **why)
{
	struct cm_xml_node *wrap = NULL;
	const struct cm_xml_node *x;
	const char *v, *topic;
	json_t *root = NULL, *data = NULL, *alert;
	bool with_sender =
	    cfg->privacy == XC_PUSH_PRIVACY_SENDER || cfg->privacy == XC_PUSH_PRIVACY_FULL;
	const char *shown_body = NULL;
	char num[16], cut[XC_PUSH_BODY_MAX + 1] = "", *t = NULL;
	int r = -EINVAL;

	*device_id = *json = NULL;
	*why = "the registration has no publish-options form";
	if (!form || !(x = parse_form(form, &wrap)))
		goto out;
	v = cm_xml_form_field(x, "device_id");
	*why = "the publish-options have no device_id";
	if (!v || !*v)
		goto out;
	*why = "no memory";
	if (!(*device_id = strdup(v)) || !(root = json_object()) || !(data = json_object()))
		goto out;
	*why = "not valid UTF-8";
	v = cm_xml_form_field(x, "service");
	if (set_str(root, "service", v && *v ? v : "apns") != 0)
		goto out;
	if ((v = cm_xml_form_field(x, "mode")) && *v && set_str(root, "mode", v) != 0)
		goto out;
	v = cm_xml_form_field(x, "priority");
	if ((urgent || (v && *v)) && set_str(root, "priority", urgent ? "high" : v) != 0)
		goto out;
	/* a call goes to the VoIP topic: MongoosePush's API has no other way to say so */
	topic = cm_xml_form_field(x, "topic");
	if (topic && *topic && (urgent || truthy(cm_xml_form_field(x, "voip")))) {
		size_t tl = strlen(topic), sl = strlen(VOIP_SUFFIX);

		if (tl < sl || strcmp(topic + tl - sl, VOIP_SUFFIX) != 0) {
			t = malloc(tl + sl + 1);
			if (!t)
				goto out;
			snprintf(t, tl + sl + 1, "%s" VOIP_SUFFIX, topic);
			topic = t;
		}
	}
	if (topic && *topic && set_str(root, "topic", topic) != 0)
		goto out;
	snprintf(num, sizeof(num), "%u", count);
	if (set_str(data, "message-count", num) != 0)
		goto out;
	if (with_sender && sender && *sender && set_str(data, "last-message-sender", sender) != 0)
		goto out;
	if (cfg->privacy == XC_PUSH_PRIVACY_PLACEHOLDER)
		shown_body = cfg->placeholder;
	else if (cfg->privacy == XC_PUSH_PRIVACY_FULL)
		shown_body = body;
	if (shown_body && *shown_body) {
		size_t n = xc_push_utf8_prefix(shown_body, strlen(shown_body), XC_PUSH_BODY_MAX);

		memcpy(cut, shown_body, n);
		cut[n] = '\0';
		if (set_str(data, "last-message-body", cut) != 0)
			goto out;
	}
	/* the alert platypus would make of the summary: the sender (or a neutral title) and the
	 * body the policy lets out */
	if (!truthy(cm_xml_form_field(x, "silent")) &&
	    ((alert = json_object()) == NULL || json_object_set_new(root, "alert", alert) != 0 ||
	     set_str(alert, "title", with_sender && sender && *sender ? sender : "New message") !=
	         0 ||
	     (*cut && set_str(alert, "body", cut) != 0)))
		goto out;
	if (urgent && set_str(data, "jingle-message", "propose") != 0)
		goto out;
	if (json_object_set(root, "data", data) != 0)
		goto out;
	*json = json_dumps(root, JSON_COMPACT);
	r = *json ? 0 : -ENOMEM;
	*why = r ? "no memory" : NULL;
out:
	if (r) {
		free(*device_id);
		*device_id = NULL;
	}
	free(t);
	json_decref(data);
	json_decref(root);
	cm_xml_node_free(wrap);
	return r;
}
