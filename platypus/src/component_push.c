/* component_push.c - find the parts of a XEP-0357 publish IQ (the urn:xmpp:push:summary form and
 * the publish-options form) and hand their fields to the notification model
 * (pp_notif_from_push_form() in notif_in.c), which knows what the keys mean. */
#include "component_int.h"
#include "notif.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/xml.h"

#define NS_PUBSUB    "http://jabber.org/protocol/pubsub"
#define NS_PUSH      "urn:xmpp:push:0"
#define FORM_SUMMARY "urn:xmpp:push:summary"
#define FORM_PUBOPTS "http://jabber.org/protocol/pubsub#publish-options"
/* More fields than any client sends; a form beyond it is refused, not truncated. */
#define MAX_FIELDS 32

/* The data form of type form_type among the <x/> children of parent, or NULL. */
static const struct cm_xml_node *find_form(const struct cm_xml_node *parent, const char *form_type)
{
	const struct cm_xml_node *x;

	for (x = cm_xml_child(parent, "x", CM_XML_NS_DATA); x;
	     x = cm_xml_child_next(x, "x", CM_XML_NS_DATA)) {
		const char *t = cm_xml_form_field(x, "FORM_TYPE");

		if (t && strcmp(t, form_type) == 0)
			return x;
	}
	return NULL;
}

/* The fields of form (borrowed strings) into out[max]; FORM_TYPE is left out. Returns the count,
 * or -E2BIG. */
static int form_fields(const struct cm_xml_node *form, struct pp_field *out, size_t max)
{
	const struct cm_xml_node *f;
	size_t n = 0;

	if (!form)
		return 0;
	for (f = cm_xml_child(form, "field", CM_XML_NS_DATA); f;
	     f = cm_xml_child_next(f, "field", CM_XML_NS_DATA)) {
		const char *var = cm_xml_attr(f, "var");

		if (!var || strcmp(var, "FORM_TYPE") == 0)
			continue;
		if (n == max)
			return -E2BIG;
		out[n].var = var;
		out[n].value = cm_xml_text(cm_xml_child(f, "value", CM_XML_NS_DATA));
		n++;
	}
	return (int)n;
}

int pp_component__push_parse(const struct cm_xml_node *iq, struct pp_notif *n, const char **secret,
                             char *err, size_t errlen)
{
	const struct cm_xml_node *pubsub, *publish, *item, *notification, *opts_el, *opts;
	struct pp_field o[MAX_FIELDS], s[MAX_FIELDS];
	int no, ns, r;

	*secret = NULL;
	pubsub = cm_xml_child(iq, "pubsub", NS_PUBSUB);
	publish = pubsub ? cm_xml_child(pubsub, "publish", NS_PUBSUB) : NULL;
	item = publish ? cm_xml_child(publish, "item", NS_PUBSUB) : NULL;
	notification = item ? cm_xml_child(item, "notification", NS_PUSH) : NULL;
	if (!notification) {
		return cm_errf(err, errlen, -ENOENT, "not a XEP-0357 notification publish");
	}
	opts_el = cm_xml_child(pubsub, "publish-options", NS_PUBSUB);
	opts = opts_el ? find_form(opts_el, FORM_PUBOPTS) : NULL;
	if (!opts) {
		return cm_errf(err, errlen, -EINVAL,
		               "publish-options form missing: platypus needs device_id and "
		               "service there");
	}
	no = form_fields(opts, o, MAX_FIELDS);
	ns = form_fields(find_form(notification, FORM_SUMMARY), s, MAX_FIELDS);
	if (no < 0 || ns < 0) {
		return cm_errf(err, errlen, -EINVAL, "a form has more than %d fields", MAX_FIELDS);
	}
	r = pp_notif_from_push_form(n, o, (size_t)no, s, (size_t)ns, err, errlen);
	if (r == 0)
		*secret = cm_xml_form_field(opts, "secret");
	return r;
}
