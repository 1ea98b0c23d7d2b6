/* xml_node.c - the stanza tree: allocation, builders, queries, copy (see cm/xml.h). */
#include "xml_int.h"
#include "cm/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"

/* --- allocation ----------------------------------------------------------------------------- */

/* Every node, attribute and declaration is one allocation with its strings behind it: from
 * malloc, or from a pack (cm_xml_pack) when an arena is given. */
struct arena {
	char *p, *end;
};

#define ALIGN _Alignof(struct cm_xml_node)
_Static_assert(_Alignof(struct cm_xml_attr) <= ALIGN && _Alignof(struct cm_xml_nsdecl) <= ALIGN,
               "a pack aligns every item for a node");

static size_t aligned(size_t n)
{
	return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* size bytes: from malloc when a is NULL, else from the arena (NULL when it has too few left). */
static void *take(struct arena *a, size_t size)
{
	void *m;

	if (!a)
		return malloc(size);
	size = aligned(size);
	if ((size_t)(a->end - a->p) < size)
		return NULL;
	m = a->p;
	a->p += size;
	return m;
}

/* Copy s[0..n) plus a NUL to *pp and advance *pp; returns where the copy starts. */
static char *put(char **pp, const char *s, size_t n)
{
	char *start = *pp;

	if (n)
		memcpy(start, s, n);
	start[n] = '\0';
	*pp += n + 1;
	return start;
}

static size_t elem_size(size_t plen, bool prefixed, size_t nlen, size_t nslen)
{
	return sizeof(struct cm_xml_node) + nlen + 1 + nslen + 1 + (prefixed ? plen + 1 : 0);
}

static struct cm_xml_node *elem_alloc(struct arena *a, const char *prefix, size_t plen,
                                      const char *name, size_t nlen, const char *ns, size_t nslen)
{
	struct cm_xml_node *n = take(a, elem_size(plen, prefix != NULL, nlen, nslen));
	char *p;

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->kind = CM_XML_ELEMENT;
	p = (char *)(n + 1);
	n->name = put(&p, name, nlen);
	n->ns = put(&p, ns, nslen);
	if (prefix)
		n->prefix = put(&p, prefix, plen);
	return n;
}

struct cm_xml_node *cm_xml__elem_alloc(const char *prefix, size_t plen, const char *name,
                                       size_t nlen, const char *ns, size_t nslen)
{
	return elem_alloc(NULL, prefix, plen, name, nlen, ns, nslen);
}

/* A text node holding a followed by b. */
static struct cm_xml_node *text_alloc2(struct arena *ar, const char *a, size_t alen, const char *b,
                                       size_t blen)
{
	struct cm_xml_node *n = take(ar, sizeof(*n) + alen + blen + 1);
	char *p;

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->kind = CM_XML_TEXT;
	p = (char *)(n + 1);
	if (alen)
		memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	p[alen + blen] = '\0';
	n->text = p;
	n->text_len = alen + blen;
	return n;
}

struct cm_xml_node *cm_xml__text_alloc(const char *text, size_t len)
{
	return text_alloc2(NULL, text, len, NULL, 0);
}

static size_t attr_size(size_t plen, size_t nlen, bool qualified, size_t nslen, size_t vlen)
{
	return sizeof(struct cm_xml_attr) + nlen + 1 + vlen + 1 +
	       (qualified ? nslen + 1 + plen + 1 : 0);
}

static struct cm_xml_attr *attr_alloc(struct arena *ar, const char *prefix, size_t plen,
                                      const char *name, size_t nlen, const char *ns, size_t nslen,
                                      const char *value, size_t vlen)
{
	struct cm_xml_attr *a =
	    take(ar, attr_size(prefix ? plen : 0, nlen, ns != NULL, nslen, vlen));
	char *p;

	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	p = (char *)(a + 1);
	a->name = put(&p, name, nlen);
	a->value = put(&p, value, vlen);
	if (ns) {
		a->ns = put(&p, ns, nslen);
		a->prefix = put(&p, prefix ? prefix : "", prefix ? plen : 0);
	}
	return a;
}

struct cm_xml_attr *cm_xml__attr_alloc(const char *prefix, size_t plen, const char *name,
                                       size_t nlen, const char *ns, size_t nslen, const char *value,
                                       size_t vlen)
{
	return attr_alloc(NULL, prefix, plen, name, nlen, ns, nslen, value, vlen);
}

static size_t nsdecl_size(const char *prefix, const char *uri)
{
	return sizeof(struct cm_xml_nsdecl) + strlen(uri) + 1 + (prefix ? strlen(prefix) + 1 : 0);
}

static struct cm_xml_nsdecl *nsdecl_alloc(struct arena *ar, const char *prefix, const char *uri)
{
	size_t plen = prefix ? strlen(prefix) : 0, ulen = strlen(uri);
	struct cm_xml_nsdecl *d = take(ar, nsdecl_size(prefix, uri));
	char *p;

	if (!d)
		return NULL;
	memset(d, 0, sizeof(*d));
	p = (char *)(d + 1);
	d->uri = put(&p, uri, ulen);
	if (prefix)
		d->prefix = put(&p, prefix, plen);
	return d;
}

struct cm_xml_nsdecl *cm_xml__nsdecl_alloc(const char *prefix, const char *uri)
{
	return nsdecl_alloc(NULL, prefix, uri);
}

void cm_xml__append(struct cm_xml_node *parent, struct cm_xml_node *child)
{
	child->parent = parent;
	child->next = NULL;
	child->prev = parent->last;
	if (parent->last)
		parent->last->next = child;
	else
		parent->children = child;
	parent->last = child;
}

void cm_xml__attrs_free(struct cm_xml_attr *a)
{
	while (a) {
		struct cm_xml_attr *next = a->next;

		free(a);
		a = next;
	}
}

void cm_xml__nsdecls_free(struct cm_xml_nsdecl *d)
{
	while (d) {
		struct cm_xml_nsdecl *next = d->next;

		free(d);
		d = next;
	}
}

void cm_xml_node_rename_ns(struct cm_xml_node *n, const char *from, const char *to)
{
	if (!n || n->kind != CM_XML_ELEMENT)
		return;
	if (strcmp(n->ns, from) == 0)
		n->ns = to;
	for (struct cm_xml_nsdecl *d = n->nsdecls; d; d = d->next)
		if (strcmp(d->uri, from) == 0)
			d->uri = to;
	for (struct cm_xml_node *c = n->children; c; c = c->next)
		cm_xml_node_rename_ns(c, from, to);
}

void cm_xml_node_remove(struct cm_xml_node *n)
{
	struct cm_xml_node *parent;

	if (!n || !n->parent)
		return;
	parent = n->parent;
	if (n->prev)
		n->prev->next = n->next;
	else
		parent->children = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		parent->last = n->prev;
	n->parent = n->prev = n->next = NULL;
}

/* Iterative, so that no tree is too deep to free. */
void cm_xml_node_free(struct cm_xml_node *n)
{
	struct cm_xml_node *cur;

	if (!n)
		return;
	cm_xml_node_remove(n);
	cur = n;
	while (cur) {
		struct cm_xml_node *up;

		if (cur->children) {
			cur = cur->children;
			continue;
		}
		/* a leaf: unlink it from its parent's list and free it */
		up = cur->parent;
		if (up) {
			up->children = cur->next;
			if (cur->next)
				cur->next->prev = NULL;
			else
				up->last = NULL;
		}
		cm_xml__attrs_free(cur->attrs);
		cm_xml__nsdecls_free(cur->nsdecls);
		free(cur);
		cur = up;
	}
}

/* --- validation ----------------------------------------------------------------------------- */

bool cm_xml__chars_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t len;

		if (u[i] >= 0x20 && u[i] < 0x80) {
			i++; /* printable ASCII, the bulk of any stanza */
			continue;
		}
		len = cm_utf8_decode(u + i, n - i, &c);
		if (!len)
			return false;
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return false;
		if (c == 0xfffe || c == 0xffff)
			return false;
		i += len;
	}
	return true;
}

bool cm_xml_text_valid(const char *s, size_t n)
{
	return cm_xml__chars_valid(s, n);
}

/* Builders accept ASCII names only: every name XMPP uses, and a set that every XML parser
 * (expat included, whose name tables predate XML 1.0 5th edition) reads back. */
static bool ncname_valid(const char *s, size_t n)
{
	if (n == 0 ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool str_valid(const char *s)
{
	return s && cm_xml__chars_valid(s, strlen(s));
}

/* Split "prefix:local" (or "local") into its parts; false if either is not an NCName. */
static bool split_qname(const char *qname, const char **prefix, size_t *plen, const char **local,
                        size_t *llen)
{
	const char *colon;

	if (!qname)
		return false;
	colon = strchr(qname, ':');
	if (colon) {
		*prefix = qname;
		*plen = (size_t)(colon - qname);
		*local = colon + 1;
	} else {
		*prefix = NULL;
		*plen = 0;
		*local = qname;
	}
	*llen = strlen(*local);
	return ncname_valid(*local, *llen) && (!*prefix || ncname_valid(*prefix, *plen));
}

static bool prefix_is(const char *prefix, size_t plen, const char *what)
{
	return prefix && plen == strlen(what) && memcmp(prefix, what, plen) == 0;
}

/* --- builders ------------------------------------------------------------------------------- */

static int elem_new(struct cm_xml_node **out, const char *name, const char *ns,
                    const char *inherit_prefix)
{
	const char *prefix, *local;
	size_t plen, llen;
	struct cm_xml_node *n;

	if (!split_qname(name, &prefix, &plen, &local, &llen))
		return -EINVAL;
	if (!ns)
		ns = "";
	if (!str_valid(ns))
		return -EINVAL;
	if (!prefix && inherit_prefix) {
		prefix = inherit_prefix;
		plen = strlen(prefix);
	}
	if (prefix && (!*ns || prefix_is(prefix, plen, "xmlns") ||
	               (prefix_is(prefix, plen, "xml") != !strcmp(ns, CM_XML_NS_XML))))
		return -EINVAL;
	n = cm_xml__elem_alloc(prefix, plen, local, llen, ns, strlen(ns));
	if (!n)
		return -ENOMEM;
	*out = n;
	return 0;
}

int cm_xml_node_new(struct cm_xml_node **out, const char *name, const char *ns)
{
	return elem_new(out, name, ns, NULL);
}

int cm_xml_node_new_child(struct cm_xml_node **out, struct cm_xml_node *parent, const char *name,
                          const char *ns)
{
	struct cm_xml_node *n;
	int err;

	if (!parent || parent->kind != CM_XML_ELEMENT)
		return -EINVAL;
	if (ns)
		err = elem_new(&n, name, ns, NULL);
	else
		err = elem_new(&n, name, parent->ns, parent->prefix);
	if (err)
		return err;
	cm_xml__append(parent, n);
	if (out)
		*out = n;
	return 0;
}

int cm_xml_node_add_child(struct cm_xml_node *parent, struct cm_xml_node *child)
{
	if (!parent || !child || parent->kind != CM_XML_ELEMENT || child->parent)
		return -EINVAL;
	for (const struct cm_xml_node *a = parent; a; a = a->parent)
		if (a == child)
			return -EINVAL;
	cm_xml__append(parent, child);
	return 0;
}

int cm_xml_node_add_text(struct cm_xml_node *parent, const char *text, size_t len)
{
	struct cm_xml_node *old, *t;

	if (!parent || parent->kind != CM_XML_ELEMENT || (len && !text) ||
	    !cm_xml__chars_valid(text, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	old = parent->last;
	if (!old || old->kind != CM_XML_TEXT) {
		t = cm_xml__text_alloc(text, len);
		if (!t)
			return -ENOMEM;
		cm_xml__append(parent, t);
		return 0;
	}
	/* merge: a new node replaces the old one in place */
	if (old->text_len > SIZE_MAX / 2 || len > SIZE_MAX / 2)
		return -ENOMEM;
	t = text_alloc2(NULL, old->text, old->text_len, text, len);
	if (!t)
		return -ENOMEM;
	cm_xml_node_remove(old);
	cm_xml_node_free(old);
	cm_xml__append(parent, t);
	return 0;
}

/* Replace (or append) the attribute matching a's ns and local name. */
static void attr_put(struct cm_xml_node *n, struct cm_xml_attr *a)
{
	struct cm_xml_attr **pp;

	for (pp = &n->attrs; *pp; pp = &(*pp)->next) {
		struct cm_xml_attr *cur = *pp;

		if (!strcmp(cur->name, a->name) &&
		    (cur->ns == a->ns || (cur->ns && a->ns && !strcmp(cur->ns, a->ns)))) {
			a->next = cur->next;
			*pp = a;
			free(cur);
			return;
		}
	}
	*pp = a;
}

int cm_xml_node_set_attr_ns(struct cm_xml_node *n, const char *ns, const char *name,
                            const char *value)
{
	const char *prefix, *local;
	size_t plen, llen;
	struct cm_xml_attr *a;

	if (!n || n->kind != CM_XML_ELEMENT || !split_qname(name, &prefix, &plen, &local, &llen) ||
	    !str_valid(value))
		return -EINVAL;
	if (!ns && prefix_is(prefix, plen, "xml"))
		ns = CM_XML_NS_XML;
	if (ns) {
		/* a namespaced attribute needs a prefix; xml: exactly for the XML namespace */
		if (!prefix || !*ns || !str_valid(ns) || prefix_is(prefix, plen, "xmlns") ||
		    prefix_is(prefix, plen, "xml") != !strcmp(ns, CM_XML_NS_XML))
			return -EINVAL;
	} else if (prefix) {
		return -EINVAL;
	} else if (!strcmp(local, "xmlns")) {
		return -EINVAL; /* declarations go through cm_xml_node_declare_ns() */
	}
	a = cm_xml__attr_alloc(prefix, plen, local, llen, ns, ns ? strlen(ns) : 0, value,
	                       strlen(value));
	if (!a)
		return -ENOMEM;
	attr_put(n, a);
	return 0;
}

int cm_xml_node_set_attr(struct cm_xml_node *n, const char *name, const char *value)
{
	return cm_xml_node_set_attr_ns(n, NULL, name, value);
}

/* "xml:lang" names the XML-namespace attribute, anything else an unqualified one. */
static struct cm_xml_attr **attr_find(const struct cm_xml_node *n, const char *name)
{
	const char *ns = NULL;
	struct cm_xml_attr *const *pp;

	if (!strncmp(name, "xml:", 4)) {
		ns = CM_XML_NS_XML;
		name += 4;
	}
	for (pp = &n->attrs; *pp; pp = &(*pp)->next) {
		const struct cm_xml_attr *a = *pp;

		if (!strcmp(a->name, name) && (ns ? a->ns && !strcmp(a->ns, ns) : !a->ns))
			return (struct cm_xml_attr **)pp;
	}
	return NULL;
}

int cm_xml_node_remove_attr(struct cm_xml_node *n, const char *name)
{
	struct cm_xml_attr **pp, *a;

	if (!n || !name || n->kind != CM_XML_ELEMENT)
		return -ENOENT;
	pp = attr_find(n, name);
	if (!pp)
		return -ENOENT;
	a = *pp;
	*pp = a->next;
	free(a);
	return 0;
}

int cm_xml_node_declare_ns(struct cm_xml_node *n, const char *prefix, const char *uri)
{
	struct cm_xml_nsdecl *d, **pp;

	if (!n || n->kind != CM_XML_ELEMENT || !str_valid(uri))
		return -EINVAL;
	if (prefix && (!ncname_valid(prefix, strlen(prefix)) || !*uri || !strcmp(prefix, "xmlns") ||
	               !strcmp(prefix, "xml")))
		return -EINVAL;
	d = cm_xml__nsdecl_alloc(prefix, uri);
	if (!d)
		return -ENOMEM;
	for (pp = &n->nsdecls; *pp; pp = &(*pp)->next) {
		struct cm_xml_nsdecl *cur = *pp;

		if (prefix ? cur->prefix && !strcmp(cur->prefix, prefix) : !cur->prefix) {
			d->next = cur->next;
			*pp = d;
			free(cur);
			return 0;
		}
	}
	*pp = d;
	return 0;
}

void cm_xml_node_undeclare_ns(struct cm_xml_node *n, const char *prefix)
{
	for (struct cm_xml_nsdecl **pp = n ? &n->nsdecls : NULL; pp && *pp; pp = &(*pp)->next) {
		struct cm_xml_nsdecl *cur = *pp;

		if (prefix ? cur->prefix && !strcmp(cur->prefix, prefix) : !cur->prefix) {
			*pp = cur->next;
			free(cur);
			return;
		}
	}
}

/* --- copy ----------------------------------------------------------------------------------- */

/* A copy of n alone: element with attributes and declarations, or text; no children. From
 * malloc when ar is NULL; in the arena otherwise (where nothing is freed on failure). */
static struct cm_xml_node *copy_one(struct arena *ar, const struct cm_xml_node *n)
{
	struct cm_xml_node *c;
	struct cm_xml_attr **ap;
	struct cm_xml_nsdecl **dp;

	if (n->kind == CM_XML_TEXT)
		return text_alloc2(ar, n->text, n->text_len, NULL, 0);
	c = elem_alloc(ar, n->prefix, n->prefix ? strlen(n->prefix) : 0, n->name, strlen(n->name),
	               n->ns, strlen(n->ns));
	if (!c)
		return NULL;
	ap = &c->attrs;
	for (const struct cm_xml_attr *a = n->attrs; a; a = a->next) {
		*ap = attr_alloc(ar, a->prefix, a->prefix ? strlen(a->prefix) : 0, a->name,
		                 strlen(a->name), a->ns, a->ns ? strlen(a->ns) : 0, a->value,
		                 strlen(a->value));
		if (!*ap)
			goto fail;
		ap = &(*ap)->next;
	}
	dp = &c->nsdecls;
	for (const struct cm_xml_nsdecl *d = n->nsdecls; d; d = d->next) {
		*dp = nsdecl_alloc(ar, d->prefix, d->uri);
		if (!*dp)
			goto fail;
		dp = &(*dp)->next;
	}
	return c;
fail:
	if (!ar)
		cm_xml_node_free(c);
	return NULL;
}

/* Deep copy of n as a root, from malloc or in the arena; NULL when out of memory or room. */
static struct cm_xml_node *copy_tree(struct arena *ar, const struct cm_xml_node *n)
{
	const struct cm_xml_node *src = n;
	struct cm_xml_node *root, *dst, *c;

	root = copy_one(ar, n);
	if (!root)
		return NULL;
	dst = root;
	/* walk the source in document order, mirroring each step in the copy */
	for (;;) {
		if (src->children) {
			if (!(c = copy_one(ar, src->children)))
				goto fail;
			cm_xml__append(dst, c);
			src = src->children;
			dst = c;
			continue;
		}
		while (src != n && !src->next) {
			src = src->parent;
			dst = dst->parent;
		}
		if (src == n)
			break;
		if (!(c = copy_one(ar, src->next)))
			goto fail;
		cm_xml__append(dst->parent, c);
		src = src->next;
		dst = c;
	}
	return root;
fail:
	if (!ar)
		cm_xml_node_free(root);
	return NULL;
}

int cm_xml_node_copy(struct cm_xml_node **out, const struct cm_xml_node *n)
{
	*out = copy_tree(NULL, n);
	return *out ? 0 : -ENOMEM;
}

/* What copy_one() takes from an arena for n. */
static size_t pack_one_size(const struct cm_xml_node *n)
{
	size_t size;

	if (n->kind == CM_XML_TEXT)
		return aligned(sizeof(*n) + n->text_len + 1);
	size = aligned(elem_size(n->prefix ? strlen(n->prefix) : 0, n->prefix != NULL,
	                         strlen(n->name), strlen(n->ns)));
	for (const struct cm_xml_attr *a = n->attrs; a; a = a->next)
		size +=
		    aligned(attr_size(a->prefix ? strlen(a->prefix) : 0, strlen(a->name),
		                      a->ns != NULL, a->ns ? strlen(a->ns) : 0, strlen(a->value)));
	for (const struct cm_xml_nsdecl *d = n->nsdecls; d; d = d->next)
		size += aligned(nsdecl_size(d->prefix, d->uri));
	return size;
}

size_t cm_xml_pack_size(const struct cm_xml_node *n)
{
	const struct cm_xml_node *cur = n;
	size_t size = 0;

	/* the same document order as copy_tree() */
	for (;;) {
		size += pack_one_size(cur);
		if (cur->children) {
			cur = cur->children;
			continue;
		}
		while (cur != n && !cur->next)
			cur = cur->parent;
		if (cur == n)
			return size;
		cur = cur->next;
	}
}

const struct cm_xml_node *cm_xml_pack(const struct cm_xml_node *n, void *mem, size_t size)
{
	struct arena ar = {(char *)mem, (char *)mem + size};

	if ((uintptr_t)mem % ALIGN)
		return NULL;
	return copy_tree(&ar, n);
}

/* --- queries -------------------------------------------------------------------------------- */

const char *cm_xml_attr(const struct cm_xml_node *n, const char *name)
{
	struct cm_xml_attr **pp;

	if (!n || !name || n->kind != CM_XML_ELEMENT)
		return NULL;
	pp = attr_find(n, name);
	return pp ? (*pp)->value : NULL;
}

const char *cm_xml_attr_ns(const struct cm_xml_node *n, const char *ns, const char *name)
{
	if (!n || !name)
		return NULL;
	for (const struct cm_xml_attr *a = n->attrs; a; a = a->next)
		if (!strcmp(a->name, name) && (ns ? a->ns && !strcmp(a->ns, ns) : !a->ns))
			return a->value;
	return NULL;
}

const char *cm_xml_lang(const struct cm_xml_node *n)
{
	for (; n; n = n->parent) {
		const char *l = cm_xml_attr_ns(n, CM_XML_NS_XML, "lang");

		if (l)
			return l;
	}
	return NULL;
}

const char *cm_xml_ns_lookup(const struct cm_xml_node *n, const char *prefix)
{
	if (prefix && !strcmp(prefix, "xml"))
		return CM_XML_NS_XML;
	for (; n; n = n->parent)
		for (const struct cm_xml_nsdecl *d = n->nsdecls; d; d = d->next)
			if (prefix ? d->prefix && !strcmp(d->prefix, prefix) : !d->prefix)
				return d->uri;
	return NULL;
}

static bool matches(const struct cm_xml_node *c, const char *name, const char *ns)
{
	return c->kind == CM_XML_ELEMENT && (!name || !strcmp(c->name, name)) &&
	       (!ns || !strcmp(c->ns, ns));
}

struct cm_xml_node *cm_xml_child(const struct cm_xml_node *n, const char *name, const char *ns)
{
	if (!n)
		return NULL;
	for (struct cm_xml_node *c = n->children; c; c = c->next)
		if (matches(c, name, ns))
			return c;
	return NULL;
}

struct cm_xml_node *cm_xml_child_next(const struct cm_xml_node *child, const char *name,
                                      const char *ns)
{
	if (!child)
		return NULL;
	for (struct cm_xml_node *c = child->next; c; c = c->next)
		if (matches(c, name, ns))
			return c;
	return NULL;
}

const char *cm_xml_text(const struct cm_xml_node *n)
{
	if (!n)
		return NULL;
	if (n->kind == CM_XML_TEXT)
		return n->text;
	if (!n->children)
		return "";
	/* adjacent text is always merged, so text-only content is exactly one node */
	if (n->children == n->last && n->children->kind == CM_XML_TEXT)
		return n->children->text;
	return NULL;
}

int cm_xml_text_buf(const struct cm_xml_node *n, struct cm_buf *out)
{
	size_t start = out->len;
	const struct cm_xml_node *cur = n;
	int err = 0;

	while (cur && !err) {
		if (cur->kind == CM_XML_TEXT)
			err = cm_buf_append(out, cur->text, cur->text_len);
		if (cur->children) {
			cur = cur->children;
			continue;
		}
		while (cur != n && !cur->next)
			cur = cur->parent;
		cur = cur == n ? NULL : cur->next;
	}
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}

/* --- XEP-0004 data forms -------------------------------------------------------------------- */

const char *cm_xml_form_field(const struct cm_xml_node *form, const char *var)
{
	const struct cm_xml_node *f;

	if (!form || !var)
		return NULL;
	for (f = cm_xml_child(form, "field", CM_XML_NS_DATA); f;
	     f = cm_xml_child_next(f, "field", CM_XML_NS_DATA)) {
		const char *v = cm_xml_attr(f, "var");

		if (v && !strcmp(v, var))
			return cm_xml_text(cm_xml_child(f, "value", CM_XML_NS_DATA));
	}
	return NULL;
}

int cm_xml_form_add_field(struct cm_xml_node *form, const char *var, const char *type,
                          const char *value)
{
	struct cm_xml_node *field = NULL, *v;
	int err;

	if (!form || form->kind != CM_XML_ELEMENT || !var || !value)
		return -EINVAL;
	err = cm_xml_node_new(&field, "field", CM_XML_NS_DATA);
	if (!err)
		err = cm_xml_node_set_attr(field, "var", var);
	if (!err && type)
		err = cm_xml_node_set_attr(field, "type", type);
	if (!err)
		err = cm_xml_node_new_child(&v, field, "value", NULL);
	if (!err)
		err = cm_xml_node_add_text(v, value, strlen(value));
	if (!err)
		err = cm_xml_node_add_child(form, field);
	if (err)
		cm_xml_node_free(field);
	return err;
}
