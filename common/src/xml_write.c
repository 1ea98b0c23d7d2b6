/* xml_write.c - serialisation of stanza trees and stream headers, escaping (see cm/xml.h).
 *
 * Namespace declarations: an element is written with the declarations recorded on it, plus one
 * for its own prefix and for each namespaced attribute's prefix when the binding in scope (from
 * the ancestors as written, then from the scope element and its ancestors) differs. The writer
 * keeps no table: what is bound at an ancestor is recomputed from the ancestor itself, since the
 * writer always makes an element's own name and attributes bound where it writes them. Trees
 * are shallow (the parser caps depth), so the walks up stay short. */
#include "xml_int.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "cm/buf.h"

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The URI element e binds prefix to (NULL prefix: the default namespace), as written by this
 * writer, or NULL if e binds nothing for it. */
static const char *bound_at(const struct cm_xml_node *e, const char *prefix)
{
	for (const struct cm_xml_nsdecl *d = e->nsdecls; d; d = d->next)
		if (same(d->prefix, prefix))
			return d->uri;
	if (same(e->prefix, prefix))
		return e->ns;
	if (prefix)
		for (const struct cm_xml_attr *a = e->attrs; a; a = a->next)
			if (a->ns && !strcmp(a->prefix, prefix))
				return a->ns;
	return NULL;
}

/* The binding of prefix in scope just outside n's start tag. */
static const char *lookup_above(const struct cm_xml_node *n, const struct cm_xml_node *root,
                                const struct cm_xml_node *scope, const char *prefix)
{
	const char *uri;

	if (n != root)
		for (const struct cm_xml_node *e = n->parent; e; e = e == root ? NULL : e->parent)
			if ((uri = bound_at(e, prefix)))
				return uri;
	for (const struct cm_xml_node *e = scope; e; e = e->parent)
		if (e->kind == CM_XML_ELEMENT && (uri = bound_at(e, prefix)))
			return uri;
	return prefix ? NULL : "";
}

/* What a byte becomes in text (bit 1) and in an attribute value (bit 2), when it is not itself:
 * markup, a CR (it would read back as LF), and in attributes quotes and the whitespace that
 * attribute-value normalisation would turn into spaces. */
#define ESC_TEXT 1
#define ESC_ATTR 2
static const unsigned char esc_class[256] = {
    ['&'] = ESC_TEXT | ESC_ATTR, ['<'] = ESC_TEXT | ESC_ATTR,
    ['>'] = ESC_TEXT | ESC_ATTR, ['\r'] = ESC_TEXT | ESC_ATTR,
    ['\''] = ESC_ATTR,           ['"'] = ESC_ATTR,
    ['\t'] = ESC_ATTR,           ['\n'] = ESC_ATTR,
};

static const char *esc_ref(char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '\r':
		return "&#13;";
	case '\'':
		return "&apos;";
	case '"':
		return "&quot;";
	case '\t':
		return "&#9;";
	default: /* '\n' */
		return "&#10;";
	}
}

/* How many bytes at the start of s[0..n) stay as they are under mask. Sixteen bytes at a time
 * where SSE2 is there (every x86-64), the table for the rest. */
static size_t plain_len(const char *s, size_t n, unsigned char mask)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<'), gt = _mm_set1_epi8('>'),
	              cr = _mm_set1_epi8('\r'), apos = _mm_set1_epi8('\''),
	              quot = _mm_set1_epi8('"'), tab = _mm_set1_epi8('\t'),
	              lf = _mm_set1_epi8('\n');

	for (; n - i >= 16; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i hit =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt)),
		                 _mm_or_si128(_mm_cmpeq_epi8(v, gt), _mm_cmpeq_epi8(v, cr)));
		unsigned m;

		if (mask & ESC_ATTR)
			hit = _mm_or_si128(
			    hit, _mm_or_si128(
			             _mm_or_si128(_mm_cmpeq_epi8(v, apos), _mm_cmpeq_epi8(v, quot)),
			             _mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, lf))));
		m = (unsigned)_mm_movemask_epi8(hit);
		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	while (i < n && !(esc_class[(unsigned char)s[i]] & mask))
		i++;
	return i;
}

static int escape(struct cm_buf *out, const char *s, size_t n, bool attr)
{
	const unsigned char mask = attr ? ESC_ATTR : ESC_TEXT;
	size_t i = 0, run;
	int err;

	for (;;) {
		/* the longest run that stays as it is, copied at once */
		run = i + plain_len(s + i, n - i, mask);
		if ((err = cm_buf_append(out, s + i, run - i)) != 0 || run == n)
			return err;
		if ((err = cm_buf_puts(out, esc_ref(s[run]))) != 0)
			return err;
		i = run + 1;
	}
}

static void rollback(struct cm_buf *out, size_t len)
{
	out->len = len;
	if (out->data)
		out->data[len] = '\0';
}

int cm_xml_escape_text(struct cm_buf *out, const char *s, size_t n)
{
	size_t start = out->len;
	int err = escape(out, s, n, false);

	if (err)
		rollback(out, start);
	return err;
}

int cm_xml_escape_attr(struct cm_buf *out, const char *s, size_t n)
{
	size_t start = out->len;
	int err = escape(out, s, n, true);

	if (err)
		rollback(out, start);
	return err;
}

/* lead, then "prefix:name" (or "name"), then trail. Room is made once and the pieces copied into
 * it (a stanza is many such small pieces); put_name() takes lead and trail as string literals. */
static int put_name_(struct cm_buf *out, const char *lead, size_t ll, const char *prefix,
                     const char *name, const char *trail, size_t tl)
{
	size_t pl = prefix ? strlen(prefix) : 0, nl = strlen(name);
	int err = cm_buf_reserve(out, ll + (pl ? pl + 1 : 0) + nl + tl);
	char *p;

	if (err)
		return err;
	p = out->data + out->len;
	memcpy(p, lead, ll);
	p += ll;
	if (pl) {
		memcpy(p, prefix, pl);
		p += pl;
		*p++ = ':';
	}
	memcpy(p, name, nl);
	p += nl;
	memcpy(p, trail, tl);
	p += tl;
	*p = '\0';
	out->len = (size_t)(p - out->data);
	return 0;
}

#define put_name(out, lead, prefix, name, trail)                                                   \
	put_name_(out, lead, sizeof(lead) - 1, prefix, name, trail, sizeof(trail) - 1)

static int put_decl(struct cm_buf *out, const char *prefix, const char *uri)
{
	int err = cm_buf_puts(out, prefix ? " xmlns:" : " xmlns");

	if (!err && prefix)
		err = cm_buf_puts(out, prefix);
	if (!err)
		err = cm_buf_append(out, "='", 2);
	if (!err)
		err = escape(out, uri, strlen(uri), true);
	if (!err)
		err = cm_buf_append(out, "'", 1);
	return err;
}

/* Does e itself bind prefix other than through the attribute stop (or at all, if stop is NULL)?
 * Used to find conflicting bindings on one element. */
static const char *bound_before(const struct cm_xml_node *e, const struct cm_xml_attr *stop,
                                const char *prefix)
{
	for (const struct cm_xml_nsdecl *d = e->nsdecls; d; d = d->next)
		if (same(d->prefix, prefix))
			return d->uri;
	if (same(e->prefix, prefix))
		return e->ns;
	for (const struct cm_xml_attr *a = e->attrs; a && a != stop; a = a->next)
		if (a->ns && !strcmp(a->prefix, prefix))
			return a->ns;
	return NULL;
}

/* "<qname decls attrs" for element n; the caller closes it with ">" or "/>". */
static int start_tag(struct cm_buf *out, const struct cm_xml_node *n,
                     const struct cm_xml_node *root, const struct cm_xml_node *scope)
{
	const char *own = NULL, *above;
	int err;

	err = put_name(out, "<", n->prefix, n->name, "");
	for (const struct cm_xml_nsdecl *d = n->nsdecls; d && !err; d = d->next)
		err = put_decl(out, d->prefix, d->uri);
	if (err)
		return err;

	/* the element's own name */
	if (n->prefix && !strcmp(n->prefix, "xml")) {
		if (strcmp(n->ns, CM_XML_NS_XML))
			return -EINVAL;
	} else {
		for (const struct cm_xml_nsdecl *d = n->nsdecls; d; d = d->next)
			if (same(d->prefix, n->prefix))
				own = d->uri;
		if (own) {
			if (strcmp(own, n->ns))
				return -EINVAL;
		} else {
			if (n->prefix && !*n->ns)
				return -EINVAL;
			above = lookup_above(n, root, scope, n->prefix);
			if (!above || strcmp(above, n->ns))
				err = put_decl(out, n->prefix, n->ns);
		}
	}

	/* attributes' prefixes, then the attributes */
	for (const struct cm_xml_attr *a = n->attrs; a && !err; a = a->next) {
		const char *here;

		if (!a->ns || !strcmp(a->prefix, "xml"))
			continue;
		here = bound_before(n, a, a->prefix);
		if (here) {
			if (strcmp(here, a->ns))
				return -EINVAL;
			continue;
		}
		above = lookup_above(n, root, scope, a->prefix);
		if (!above || strcmp(above, a->ns))
			err = put_decl(out, a->prefix, a->ns);
	}
	for (const struct cm_xml_attr *a = n->attrs; a && !err; a = a->next) {
		err = put_name(out, " ", a->ns ? a->prefix : NULL, a->name, "='");
		if (!err)
			err = escape(out, a->value, strlen(a->value), true);
		if (!err)
			err = cm_buf_append(out, "'", 1);
	}
	return err;
}

static int end_tag(struct cm_buf *out, const struct cm_xml_node *n)
{
	return put_name(out, "</", n->prefix, n->name, ">");
}

static int write_tree(struct cm_buf *out, const struct cm_xml_node *root,
                      const struct cm_xml_node *scope)
{
	const struct cm_xml_node *n = root;
	int err;

	for (;;) {
		if (n->kind == CM_XML_TEXT) {
			err = escape(out, n->text, n->text_len, false);
		} else {
			err = start_tag(out, n, root, scope);
			if (!err && n->children) {
				err = cm_buf_append(out, ">", 1);
				if (err)
					return err;
				n = n->children;
				continue;
			}
			if (!err)
				err = cm_buf_append(out, "/>", 2);
		}
		if (err)
			return err;
		while (n != root && !n->next) {
			n = n->parent;
			err = end_tag(out, n);
			if (err)
				return err;
		}
		if (n == root)
			return 0;
		n = n->next;
	}
}

int cm_xml_write(struct cm_buf *out, const struct cm_xml_node *n, const struct cm_xml_node *scope)
{
	size_t start = out->len;
	int err;

	if (!n)
		return -EINVAL;
	err = write_tree(out, n, scope);
	if (err)
		rollback(out, start);
	return err;
}

int cm_xml_write_open(struct cm_buf *out, const struct cm_xml_node *n,
                      const struct cm_xml_node *scope)
{
	size_t start = out->len;
	int err;

	if (!n || n->kind != CM_XML_ELEMENT)
		return -EINVAL;
	err = start_tag(out, n, n, scope);
	if (!err)
		err = cm_buf_append(out, ">", 1);
	if (err)
		rollback(out, start);
	return err;
}

int cm_xml_write_close(struct cm_buf *out, const struct cm_xml_node *n)
{
	size_t start = out->len;
	int err;

	if (!n || n->kind != CM_XML_ELEMENT)
		return -EINVAL;
	err = end_tag(out, n);
	if (err)
		rollback(out, start);
	return err;
}
