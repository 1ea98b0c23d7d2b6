/* prosody_vcard.c - a user's vcard-temp (XEP-0054) made from what Prosody keeps: the stanza
 * mod_vcard stored (as Prosody's JSON of a preserialized stanza), or, with mod_vcard_legacy
 * (Prosody 0.12's default), the vCard4 (RFC 6351, XEP-0292) and the avatar (XEP-0084) in PEP;
 * and any other element kept in that JSON (mod_private's). prosody.c calls these;
 * prosody_int.h declares them. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/xml.h"
#include "prosody_int.h"
#include "stanza.h"
#include "vcard.h"

#define NS_VCARD4     "urn:ietf:params:xml:ns:vcard-4.0"
#define DEPTH_MAX     16 /* levels of a stored vCard followed; deeper is not a vCard */
#define XML_VCARD_MAX (1u << 20)
/* levels of another stored element followed: the stream parser's, which the import parses it
 * with */
#define DEPTH_MAX_ELEMENT CM_XML_DEFAULT_MAX_DEPTH

/* tree as text (owned, into *out). 0, -EINVAL, -ENOMEM. */
static int written(const struct cm_xml_node *tree, char **out)
{
	struct cm_buf b;
	int rc;

	cm_buf_init(&b, 0);
	rc = cm_xml_write(&b, tree, NULL);
	if (!rc && !(*out = cm_buf_steal(&b)))
		rc = -ENOMEM;
	cm_buf_free(&b);
	return rc;
}

/* --- mod_vcard: {"name": N, "attr": {...}, "__array": [children]} per element ------------- */

static int add_children(struct cm_xml_node *parent, const json_t *children, int depth, int max);

/* el as a new element: under parent, or (parent NULL) as a root into *out. Its namespace is
 * attr's xmlns, else its parent's; depth is its level, max the deepest taken. */
static int add_element(struct cm_xml_node *parent, const json_t *el, int depth, int max,
                       struct cm_xml_node **out)
{
	const char *name = json_string_value(json_object_get(el, "name"));
	const json_t *attr = json_object_get(el, "attr");
	const char *ns = json_string_value(json_object_get(attr, "xmlns"));
	struct cm_xml_node *n;
	const char *k;
	json_t *v;
	int rc;

	if (!name || depth > max)
		return -EINVAL;
	rc = parent ? cm_xml_node_new_child(&n, parent, name, ns) : cm_xml_node_new(&n, name, ns);
	if (rc)
		return rc;
	if (out)
		*out = n;
	json_object_foreach((json_t *)attr, k, v)
	{
		if (strcmp(k, "xmlns") != 0 && json_is_string(v) &&
		    (rc = cm_xml_node_set_attr(n, k, json_string_value(v))) != 0)
			return rc;
	}
	return add_children(n, json_object_get(el, "__array"), depth + 1, max);
}

static int add_children(struct cm_xml_node *parent, const json_t *children, int depth, int max)
{
	int rc = 0;

	for (size_t i = 0; i < json_array_size(children) && !rc; i++) {
		const json_t *c = json_array_get(children, i);

		if (json_is_string(c))
			rc = cm_xml_node_add_text(parent, json_string_value(c),
			                          json_string_length(c));
		else if (json_is_object(c))
			rc = add_element(parent, c, depth, max, NULL);
		else
			rc = -EINVAL;
	}
	return rc;
}

int xc_prosody__vcard_from_table(const json_t *children, char **out)
{
	struct cm_xml_node *root = NULL;
	int rc;

	*out = NULL;
	if (!json_is_array(children))
		return -EINVAL;
	rc = cm_xml_node_new(&root, "vCard", XC_NS_VCARD);
	rc = rc ? rc : add_children(root, children, 1, DEPTH_MAX);
	rc = rc ? rc : written(root, out);
	cm_xml_node_free(root);
	return rc;
}

int xc_prosody__element_from_table(const json_t *el, struct cm_xml_node **out)
{
	struct cm_xml_node *root = NULL;
	int rc;

	*out = NULL;
	/* a root in a namespace: Prosody writes every element's xmlns */
	if (!json_is_string(json_object_get(json_object_get(el, "attr"), "xmlns")))
		return -EINVAL;
	rc = add_element(NULL, el, 1, DEPTH_MAX_ELEMENT, &root);
	if (rc) {
		cm_xml_node_free(root);
		return rc;
	}
	*out = root;
	return 0;
}

/* --- mod_vcard_legacy: vCard4 and the avatar in PEP ---------------------------------------- */

/* The text of vCard4 property prop's value element (text, uri, date...), or NULL. */
static const char *value_of(const struct cm_xml_node *prop)
{
	static const char *const kinds[] = {"text", "uri", "date", "date-and-or-time", "timestamp"};

	for (size_t i = 0; prop && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *t = cm_xml_text(cm_xml_child(prop, kinds[i], NS_VCARD4));

		if (t && *t)
			return t;
	}
	return NULL;
}

/* <name>text</name> under parent (text NULL or empty: nothing). */
static int add_text_el(struct cm_xml_node *parent, const char *name, const char *text)
{
	struct cm_xml_node *n;
	int rc;

	if (!text || !*text)
		return 0;
	rc = cm_xml_node_new_child(&n, parent, name, NULL);
	return rc ? rc : cm_xml_node_add_text(n, text, strlen(text));
}

/* A structured property (n, adr): each vCard4 part into its vcard-temp element. */
static int add_parts(struct cm_xml_node *vc, const struct cm_xml_node *prop, const char *name,
                     const char *const map[][2], size_t nmap)
{
	struct cm_xml_node *n;
	int rc = cm_xml_node_new_child(&n, vc, name, NULL);

	for (size_t i = 0; i < nmap && !rc; i++)
		rc = add_text_el(n, map[i][1],
		                 cm_xml_text(cm_xml_child(prop, map[i][0], NS_VCARD4)));
	return rc;
}

/* One vCard4 property into vc, when vcard-temp has it. */
static int add_property(struct cm_xml_node *vc, const struct cm_xml_node *prop)
{
	static const char *const simple[][2] = {
	    {"fn", "FN"},   {"nickname", "NICKNAME"}, {"bday", "BDAY"}, {"note", "DESC"},
	    {"url", "URL"}, {"title", "TITLE"},       {"role", "ROLE"},
	};
	static const char *const n_map[][2] = {{"surname", "FAMILY"},
	                                       {"given", "GIVEN"},
	                                       {"additional", "MIDDLE"},
	                                       {"prefix", "PREFIX"},
	                                       {"suffix", "SUFFIX"}};
	static const char *const adr_map[][2] = {
	    {"pobox", "POBOX"},   {"ext", "EXTADD"}, {"street", "STREET"}, {"locality", "LOCALITY"},
	    {"region", "REGION"}, {"code", "PCODE"}, {"country", "CTRY"}};
	const char *name = prop->name, *v = value_of(prop);
	struct cm_xml_node *n;
	int rc;

	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (strcmp(name, simple[i][0]) == 0)
			return add_text_el(vc, simple[i][1], v);
	if (strcmp(name, "n") == 0)
		return add_parts(vc, prop, "N", n_map, sizeof(n_map) / sizeof(n_map[0]));
	if (strcmp(name, "adr") == 0)
		return add_parts(vc, prop, "ADR", adr_map, sizeof(adr_map) / sizeof(adr_map[0]));
	if (strcmp(name, "org") == 0 && v) {
		rc = cm_xml_node_new_child(&n, vc, "ORG", NULL);
		return rc ? rc : add_text_el(n, "ORGNAME", v);
	}
	if (strcmp(name, "email") == 0 && v) {
		rc = cm_xml_node_new_child(&n, vc, "EMAIL", NULL);
		rc = rc ? rc : cm_xml_node_new_child(NULL, n, "INTERNET", NULL);
		return rc ? rc : add_text_el(n, "USERID", v);
	}
	if (strcmp(name, "tel") == 0 && v) {
		rc = cm_xml_node_new_child(&n, vc, "TEL", NULL);
		return rc ? rc : add_text_el(n, "NUMBER", strncmp(v, "tel:", 4) ? v : v + 4);
	}
	if (strcmp(name, "impp") == 0 && v && strncmp(v, "xmpp:", 5) == 0)
		return add_text_el(vc, "JABBERID", v + 5);
	return 0; /* a property vcard-temp has no place for */
}

int xc_prosody__vcard_from_vcard4(const char *vcard4, const char *photo_b64, const char *photo_type,
                                  char **out)
{
	struct cm_xml_node *v4 = NULL, *vc = NULL, *photo;
	int rc = 0;

	*out = NULL;
	if (vcard4) {
		if (strlen(vcard4) > XML_VCARD_MAX)
			return -EINVAL;
		if ((rc = xc_stanza_parse(vcard4, strlen(vcard4), &v4)) != 0)
			return rc == -ENOMEM ? rc : -EINVAL;
		if (strcmp(v4->name, "vcard") != 0 || strcmp(v4->ns, NS_VCARD4) != 0)
			rc = -EINVAL;
	}
	rc = rc ? rc : cm_xml_node_new(&vc, "vCard", XC_NS_VCARD);
	for (const struct cm_xml_node *p = v4 ? cm_xml_child(v4, NULL, NS_VCARD4) : NULL; p && !rc;
	     p = cm_xml_child_next(p, NULL, NS_VCARD4))
		rc = add_property(vc, p);
	if (!rc && photo_b64 && *photo_b64) {
		rc = cm_xml_node_new_child(&photo, vc, "PHOTO", NULL);
		rc = rc ? rc : add_text_el(photo, "TYPE", photo_type ? photo_type : "image/png");
		rc = rc ? rc : add_text_el(photo, "BINVAL", photo_b64);
	}
	rc = rc ? rc : written(vc, out);
	cm_xml_node_free(v4);
	cm_xml_node_free(vc);
	return rc;
}

/* The avatar (XEP-0084) as vcard-temp wants it: its data's base64 and its type, or NULLs. */
static int avatar(const char *data, const char *meta, char **b64, char **type)
{
	struct cm_xml_node *x = NULL;
	const char *t;

	*b64 = *type = NULL;
	if (data && xc_stanza_parse(data, strlen(data), &x) == 0 && (t = cm_xml_text(x)) && *t &&
	    !(*b64 = strdup(t))) {
		cm_xml_node_free(x);
		return -ENOMEM;
	}
	cm_xml_node_free(x);
	x = NULL;
	if (*b64 && meta && xc_stanza_parse(meta, strlen(meta), &x) == 0 &&
	    (t = cm_xml_attr(cm_xml_child(x, "info", NULL), "type")) && !(*type = strdup(t))) {
		cm_xml_node_free(x);
		return -ENOMEM;
	}
	cm_xml_node_free(x);
	return 0;
}

int xc_prosody__vcard_from_pep(const char *vcard4, const char *avatar_data, const char *avatar_meta,
                               char **out)
{
	char *b64 = NULL, *type = NULL;
	int rc = avatar(avatar_data, avatar_meta, &b64, &type);

	*out = NULL;
	if (!rc && (vcard4 || b64))
		rc = xc_prosody__vcard_from_vcard4(vcard4, b64, type, out);
	free(b64);
	free(type);
	return rc;
}
