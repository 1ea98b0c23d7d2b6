/* caps.c - XEP-0115 verification strings (caps.h). */
#include "caps.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"

#define ITEMS_MAX 1024 /* of each list a verified answer may have */

/* A list of owned strings, sorted before use. */
struct strs {
	char **v;
	size_t n;
};

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Append len bytes of p (copied). */
static int strs_add(struct strs *s, const char *p, size_t len)
{
	char **v;

	if (s->n == ITEMS_MAX)
		return -E2BIG;
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	if (!(v[s->n] = strndup(p, len)))
		return -ENOMEM;
	s->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort; -EINVAL when a string is there twice. */
static int strs_sort_unique(struct strs *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(s->v[i - 1], s->v[i]) == 0)
			return -EINVAL;
	return 0;
}

/* Each string followed by '<'. */
static int strs_put(struct cm_buf *b, const struct strs *s)
{
	int r = 0;

	for (size_t i = 0; i < s->n && !r; i++) {
		r = cm_buf_puts(b, s->v[i]);
		r = r ? r : cm_buf_puts(b, "<");
	}
	return r;
}

/* The text of each <value/> of a field, sorted (values may repeat). */
static int field_values(const struct cm_xml_node *field, struct strs *out)
{
	int r = 0;

	for (const struct cm_xml_node *v = cm_xml_child(field, "value", XC_NS_DATA); v && !r;
	     v = cm_xml_child_next(v, "value", XC_NS_DATA)) {
		const char *t = cm_xml_text(v);

		r = strs_add(out, t ? t : "", t ? strlen(t) : 0);
	}
	if (!r && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return r;
}

/* A field's part of the string: "var<" and its values sorted, each followed by '<', kept as
 * "var\1part" so that sorting the parts sorts them by var. */
static int field_part(const struct cm_xml_node *f, const char *var, struct strs *parts)
{
	struct strs vals = {0};
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = field_values(f, &vals);
	r = r ? r : cm_buf_printf(&b, "%s%c%s<", var, '\1', var);
	r = r ? r : strs_put(&b, &vals);
	r = r ? r : strs_add(parts, b.data, b.len);
	strs_free(&vals);
	cm_buf_free(&b);
	return r;
}

/* Whether two "var\1part" strings are of the same var. */
static bool same_var(const char *a, const char *b)
{
	size_t n = strcspn(a, "\1");

	return strncmp(a, b, n) == 0 && b[n] == '\1';
}

/* One form's part of the string (XEP-0115 5.1 step 7) into *out (owned), keyed by its
 * FORM_TYPE in *type (owned). *out NULL: the form does not count (no hidden FORM_TYPE). */
static int form_part(const struct cm_xml_node *x, char **type, char **out)
{
	struct strs fields = {0}, vals = {0};
	const struct cm_xml_node *ft = NULL;
	struct cm_buf b;
	int r = 0;

	*type = *out = NULL;
	cm_buf_init(&b, 0);
	for (const struct cm_xml_node *f = cm_xml_child(x, "field", XC_NS_DATA); f && !r;
	     f = cm_xml_child_next(f, "field", XC_NS_DATA)) {
		const char *var = cm_xml_attr(f, "var");

		if (!var)
			continue;
		if (strcmp(var, "FORM_TYPE") == 0) {
			if (ft)
				r = -EINVAL;
			ft = f;
		} else {
			r = field_part(f, var, &fields);
		}
	}
	if (r || !ft || !cm_xml_attr(ft, "type") || strcmp(cm_xml_attr(ft, "type"), "hidden") != 0)
		goto out;
	r = field_values(ft, &vals);
	for (size_t i = 1; i < vals.n && !r; i++)
		if (strcmp(vals.v[0], vals.v[i]) != 0)
			r = -EINVAL; /* two different FORM_TYPEs */
	if (r || vals.n == 0)
		goto out;
	if (fields.n > 1)
		qsort(fields.v, fields.n, sizeof(*fields.v), cmp_str);
	for (size_t i = 1; i < fields.n && !r; i++)
		if (same_var(fields.v[i - 1], fields.v[i]))
			r = -EINVAL; /* a field twice */
	r = r ? r : cm_buf_puts(&b, vals.v[0]);
	r = r ? r : cm_buf_puts(&b, "<");
	for (size_t i = 0; i < fields.n && !r; i++)
		r = cm_buf_puts(&b, strchr(fields.v[i], '\1') + 1);
	*type = r ? NULL : strdup(vals.v[0]);
	if (!r && !*type)
		r = -ENOMEM;
	if (!r && !(*out = cm_buf_steal(&b)))
		r = -ENOMEM;
out:
	if (r) {
		free(*type);
		*type = NULL;
	}
	strs_free(&fields);
	strs_free(&vals);
	cm_buf_free(&b);
	return r;
}

/* The forms' parts, sorted by FORM_TYPE, appended to b. */
static int forms_put(struct cm_buf *b, const struct cm_xml_node *query)
{
	struct strs types = {0}, parts = {0};
	int r = 0;

	for (const struct cm_xml_node *x = cm_xml_child(query, "x", XC_NS_DATA); x && !r;
	     x = cm_xml_child_next(x, "x", XC_NS_DATA)) {
		char *type, *part;

		r = form_part(x, &type, &part);
		if (r || !part)
			continue;
		/* "FORM_TYPE\1part", so that sorting the parts sorts them by FORM_TYPE */
		r = strs_add(&types, type, strlen(type));
		if (!r) {
			struct cm_buf k;

			cm_buf_init(&k, 0);
			r = cm_buf_printf(&k, "%s%c%s", type, '\1', part);
			r = r ? r : strs_add(&parts, k.data, k.len);
			cm_buf_free(&k);
		}
		free(type);
		free(part);
	}
	r = r ? r : strs_sort_unique(&types); /* one form per FORM_TYPE */
	if (!r && parts.n > 1)
		qsort(parts.v, parts.n, sizeof(*parts.v), cmp_str);
	for (size_t i = 0; i < parts.n && !r; i++)
		r = cm_buf_puts(b, strchr(parts.v[i], '\1') + 1);
	strs_free(&types);
	strs_free(&parts);
	return r;
}

int xc_caps_ver(const struct cm_xml_node *query, char *out, size_t len)
{
	struct strs ids = {0}, feats = {0};
	unsigned char digest[CM_SHA1_LEN];
	struct cm_buf s, b64;
	int r = 0;

	cm_buf_init(&s, 0);
	cm_buf_init(&b64, 0);
	for (const struct cm_xml_node *c = query->children; c && !r; c = c->next) {
		if (c->kind != CM_XML_ELEMENT || strcmp(c->ns, XC_NS_DISCO_INFO) != 0)
			continue;
		if (strcmp(c->name, "identity") == 0) {
			const char *cat = cm_xml_attr(c, "category"),
			           *type = cm_xml_attr(c, "type");
			const char *lang = cm_xml_lang(c), *name = cm_xml_attr(c, "name");
			struct cm_buf one;

			cm_buf_init(&one, 0);
			r = cm_buf_printf(&one, "%s/%s/%s/%s", cat ? cat : "", type ? type : "",
			                  lang ? lang : "", name ? name : "");
			r = r ? r : strs_add(&ids, one.data, one.len);
			cm_buf_free(&one);
		} else if (strcmp(c->name, "feature") == 0 && cm_xml_attr(c, "var")) {
			r = strs_add(&feats, cm_xml_attr(c, "var"), strlen(cm_xml_attr(c, "var")));
		}
	}
	/* XEP-0115 5.1: identities, then features, each sorted and followed by '<', then the
	 * forms */
	r = r ? r : strs_sort_unique(&ids);
	r = r ? r : strs_sort_unique(&feats);
	r = r ? r : strs_put(&s, &ids);
	r = r ? r : strs_put(&s, &feats);
	r = r ? r : forms_put(&s, query);
	r = r ? r : cm_crypto_sha1(s.data ? s.data : "", s.len, digest);
	r = r ? r : cm_crypto_b64_encode(&b64, digest, sizeof(digest), CM_B64_STD);
	if (!r && b64.len + 1 > len)
		r = -ENOBUFS;
	if (!r)
		memcpy(out, b64.data, b64.len + 1);
	strs_free(&ids);
	strs_free(&feats);
	cm_buf_free(&s);
	cm_buf_free(&b64);
	return r;
}
