/* cm/xml.h - XMPP XML streams (RFC 6120 section 11): a push parser that turns a byte stream into
 * a stream header, one tree per top-level stanza and a stream end; the stanza tree with builders,
 * queries and serialisation.
 *
 * The parser (on expat, which only common/src/xml_parser.c sees) is namespace-aware and speaks
 * the restricted XML of RFC 6120 11.1: DOCTYPE, entity declarations, comments and processing
 * instructions are refused with the stream error condition restricted-xml. Every error carries
 * an RFC 6120 stream error condition (one of the cm_xml_err_* constants below, compared by
 * address) and a one-line human detail naming line and column.
 *
 * Trees: struct cm_xml_node is public so that callers can walk it, but its fields are read-only
 * outside this module; build and change trees only through the cm_xml_node_* functions. A node
 * owns its attributes, namespace declarations and children; freeing a node frees its subtree.
 * All strings are NUL-terminated UTF-8 (XML cannot carry a NUL); builders refuse invalid UTF-8
 * and characters XML 1.0 forbids, so whatever a tree holds can be serialised.
 */
#ifndef CM_XML_H
#define CM_XML_H

#include <stdbool.h>
#include <stddef.h>

struct cm_buf;

#define CM_XML_NS_STREAM    "http://etherx.jabber.org/streams"
#define CM_XML_NS_CLIENT    "jabber:client"
#define CM_XML_NS_SERVER    "jabber:server"
#define CM_XML_NS_COMPONENT "jabber:component:accept"
#define CM_XML_NS_XML       "http://www.w3.org/XML/1998/namespace"
#define CM_XML_NS_DATA      "jabber:x:data"

/* RFC 6120 4.9.3 stream error conditions, as reported by the parser. Compare by address. */
extern const char cm_xml_err_bad_format[];            /* "bad-format" */
extern const char cm_xml_err_invalid_namespace[];     /* "invalid-namespace" */
extern const char cm_xml_err_not_well_formed[];       /* "not-well-formed" */
extern const char cm_xml_err_policy_violation[];      /* "policy-violation" (a limit) */
extern const char cm_xml_err_restricted_xml[];        /* "restricted-xml" */
extern const char cm_xml_err_unsupported_encoding[];  /* "unsupported-encoding" */
extern const char cm_xml_err_internal_server_error[]; /* "internal-server-error" (no memory) */

/* ------------------------------------------------------------------------------------------ */
/* Trees                                                                                      */

enum cm_xml_kind {
	CM_XML_ELEMENT,
	CM_XML_TEXT,
};

/* One attribute. All strings are owned by the attribute (one allocation). */
struct cm_xml_attr {
	struct cm_xml_attr *next;
	const char *name;   /* local name */
	const char *ns;     /* namespace URI; NULL for an unqualified attribute (the usual case) */
	const char *prefix; /* the prefix it is written with; NULL exactly when ns is NULL */
	const char *value;
};

/* One namespace declaration written on an element (xmlns='uri' or xmlns:prefix='uri'). The
 * parser records those of the input; the writer adds whatever else a tree needs by itself. */
struct cm_xml_nsdecl {
	struct cm_xml_nsdecl *next;
	const char *prefix; /* NULL for the default namespace */
	const char *uri;    /* "" undeclares the default namespace */
};

struct cm_xml_node {
	enum cm_xml_kind kind;
	struct cm_xml_node *parent;   /* borrowed; NULL for a root (parsed stanzas are roots) */
	struct cm_xml_node *prev;     /* siblings, owned by the parent */
	struct cm_xml_node *next;     /* */
	struct cm_xml_node *children; /* first child, owned; elements only */
	struct cm_xml_node *last;     /* last child */
	/* elements (NULL for text) */
	const char *name;   /* local name */
	const char *ns;     /* namespace URI; "" for no namespace, never NULL */
	const char *prefix; /* prefix written in the input or given to the builder ("stream"), or
	                       NULL: the element is in the default namespace */
	struct cm_xml_attr *attrs;     /* in document order */
	struct cm_xml_nsdecl *nsdecls; /* declarations written on this element */
	/* text nodes (NULL for elements); adjacent text is always merged into one node */
	const char *text;
	size_t text_len;
};

/* Create a root element. name is a local name or "prefix:local" ("stream:features"); ns is its
 * namespace URI (NULL or "" for none; a prefixed name needs one). *out is owned by the caller
 * (cm_xml_node_free). 0, -EINVAL (not an XML name, prefix without namespace, "xmlns" prefix),
 * -ENOMEM. */
int cm_xml_node_new(struct cm_xml_node **out, const char *name, const char *ns);

/* Create an element and append it to parent, which owns it. ns NULL means the parent's
 * namespace (and prefix, unless name has its own). out (may be NULL) receives the borrowed new
 * child. 0, -EINVAL, -ENOMEM; parent unchanged on failure. */
int cm_xml_node_new_child(struct cm_xml_node **out, struct cm_xml_node *parent, const char *name,
                          const char *ns);

/* Append child, a root (parent NULL), to parent: ownership moves to parent. 0, -EINVAL (child
 * is not a root, parent is a text node, child is an ancestor of parent). */
int cm_xml_node_add_child(struct cm_xml_node *parent, struct cm_xml_node *child);

/* Append len bytes of text to parent (merged with a text node already last). 0, -EINVAL (not
 * UTF-8, or characters XML 1.0 forbids: NUL, most C0 controls, U+FFFE/U+FFFF), -ENOMEM. */
int cm_xml_node_add_text(struct cm_xml_node *parent, const char *text, size_t len);

/* Set an unqualified attribute (replacing one of that name), or an xml: attribute when name is
 * "xml:lang" or "xml:space". value must be UTF-8 text XML allows. 0, -EINVAL, -ENOMEM; the
 * node is unchanged on failure. */
int cm_xml_node_set_attr(struct cm_xml_node *n, const char *name, const char *value);

/* Set a namespaced attribute: ns is its namespace URI (NULL: as cm_xml_node_set_attr), name
 * "prefix:local". Replaces an attribute with the same ns and local name. 0, -EINVAL, -ENOMEM. */
int cm_xml_node_set_attr_ns(struct cm_xml_node *n, const char *ns, const char *name,
                            const char *value);

/* Remove an attribute (as named for cm_xml_attr()). 0 or -ENOENT. */
int cm_xml_node_remove_attr(struct cm_xml_node *n, const char *name);

/* Declare a namespace on n (prefix NULL for the default namespace), replacing a declaration of
 * the same prefix. Only needed where a declaration must appear although no element uses it
 * there: the content namespace on a stream header (xmlns='jabber:client'). 0, -EINVAL,
 * -ENOMEM. */
int cm_xml_node_declare_ns(struct cm_xml_node *n, const char *prefix, const char *uri);

/* Remove the declaration of prefix (NULL: the default namespace) written on n, if any: the
 * writer then declares what n needs by itself, and nothing its scope has already (a stanza
 * that came with xmlns='jabber:client' is written without it inside a client stream). */
void cm_xml_node_undeclare_ns(struct cm_xml_node *n, const char *prefix);

/* Move n and every element of its subtree in namespace from into namespace to (declarations of
 * from follow), as a server does between the component and client namespaces (XEP-0114).
 * to must outlive the tree: a string constant. */
void cm_xml_node_rename_ns(struct cm_xml_node *n, const char *from, const char *to);

/* Detach n from its parent; the caller then owns it. Harmless on a root. */
void cm_xml_node_remove(struct cm_xml_node *n);

/* Deep copy of n (a root copy: parent NULL). *out is owned by the caller. 0 or -ENOMEM. */
int cm_xml_node_copy(struct cm_xml_node **out, const struct cm_xml_node *n);

/* A deep copy of n inside one block of memory, to hand a tree to another thread. A tree
 * allocated on one thread and freed on another costs malloc more than both threads' own trees:
 * glibc's per-thread caches take only so many chunks freed by a foreign thread before each free
 * goes to the allocating thread's arena, under its lock. So the sender packs (one block, its own
 * tree freed at home) and the receiver copies out of the pack with cm_xml_node_copy() into its
 * own allocations, then frees the block.
 *
 * cm_xml_pack_size() is the bytes the pack of n needs; cm_xml_pack() builds it in mem (size
 * bytes, aligned as malloc aligns) and returns its root (inside mem), or NULL when size is too
 * small or mem misaligned. The packed tree is read-only: none of its nodes may be changed or
 * freed; it lives as long as mem. */
size_t cm_xml_pack_size(const struct cm_xml_node *n);
const struct cm_xml_node *cm_xml_pack(const struct cm_xml_node *n, void *mem, size_t size);

/* Free n and its subtree, detaching it from its parent first. Accepts NULL. */
void cm_xml_node_free(struct cm_xml_node *n);

/* --- queries (all borrowed results, valid while the node lives and is not changed) ------- */

/* Value of the unqualified attribute name, or of an xml: attribute for "xml:lang"; NULL if
 * absent. */
const char *cm_xml_attr(const struct cm_xml_node *n, const char *name);

/* Value of the attribute with namespace ns (NULL: unqualified) and local name; NULL if absent. */
const char *cm_xml_attr_ns(const struct cm_xml_node *n, const char *ns, const char *name);

/* The xml:lang in effect for n (its own or its nearest ancestor's), or NULL. A parsed stanza is
 * a root: the stream's language is the header's. */
const char *cm_xml_lang(const struct cm_xml_node *n);

/* The namespace URI prefix (NULL: the default namespace) is bound to at n by declarations on
 * n and its ancestors, or NULL if none. On a parsed stream header, cm_xml_ns_lookup(h, NULL) is
 * the content namespace (jabber:client...). */
const char *cm_xml_ns_lookup(const struct cm_xml_node *n, const char *prefix);

/* First child element of n with local name name and namespace ns; NULL for either matches
 * anything. NULL if there is none. */
struct cm_xml_node *cm_xml_child(const struct cm_xml_node *n, const char *name, const char *ns);

/* The next sibling element after child matching name and ns as for cm_xml_child(), to iterate:
 * for (c = cm_xml_child(n, "field", NS); c; c = cm_xml_child_next(c, "field", NS)). */
struct cm_xml_node *cm_xml_child_next(const struct cm_xml_node *child, const char *name,
                                      const char *ns);

/* The text of an element that holds only text: the text itself (borrowed, no copy), "" if it
 * has no children, NULL if it has element children (use cm_xml_text_buf()) or n is NULL. */
const char *cm_xml_text(const struct cm_xml_node *n);

/* Append all text of n's subtree, in document order, to out. 0, -ENOMEM, -ENOBUFS; out is
 * unchanged on failure. */
int cm_xml_text_buf(const struct cm_xml_node *n, struct cm_buf *out);

/* XEP-0004 data forms. form is an <x xmlns='jabber:x:data'/> element. The text of the first
 * <value/> of the field whose var is var ("" for an empty value), or NULL when the field or its
 * value is missing. cm_xml_form_field(form, "FORM_TYPE") gives the form type. */
const char *cm_xml_form_field(const struct cm_xml_node *form, const char *var);

/* Append <field var='var'><value>value</value></field> to form (type: the field's type
 * attribute, e.g. "hidden", or NULL). 0, -EINVAL, -ENOMEM; form unchanged on failure. */
int cm_xml_form_add_field(struct cm_xml_node *form, const char *var, const char *type,
                          const char *value);

/* --- serialisation (append to a cm_buf; all or nothing: out unchanged on failure) -------- */

/* Append n and its subtree. scope (may be NULL) is the element n will appear inside of on the
 * wire, typically the stream header: namespaces it declares are not repeated, so a jabber:client
 * stanza written in the scope of a jabber:client stream carries no xmlns. Declarations are
 * otherwise written exactly where needed (where an element's or attribute's namespace differs
 * from what its parent has in scope). Text escapes & < > (and CR); attribute values, quoted with
 * ', escape & < > ' " and TAB/LF/CR so that they read back unchanged. 0, -ENOMEM, -ENOBUFS,
 * -EINVAL (a tree whose prefixes cannot be declared consistently). */
int cm_xml_write(struct cm_buf *out, const struct cm_xml_node *n, const struct cm_xml_node *scope);

/* Append only n's start tag, left open (for a stream header: "<stream:stream ...>"). The XML
 * declaration, if wanted, is the caller's. Errors as cm_xml_write(). */
int cm_xml_write_open(struct cm_buf *out, const struct cm_xml_node *n,
                      const struct cm_xml_node *scope);

/* Append n's end tag ("</stream:stream>"). 0, -ENOMEM, -ENOBUFS. */
int cm_xml_write_close(struct cm_buf *out, const struct cm_xml_node *n);

/* Append s (n bytes) escaped as character data / as an attribute value (without quotes). The
 * caller passes valid UTF-8. 0, -ENOMEM, -ENOBUFS; out unchanged on failure. */
int cm_xml_escape_text(struct cm_buf *out, const char *s, size_t n);
int cm_xml_escape_attr(struct cm_buf *out, const char *s, size_t n);

/* True when the n bytes of s are valid UTF-8 made only of characters XML 1.0 allows (no C0
 * control but tab, newline and return; no U+FFFE, U+FFFF): text a builder will take. */
bool cm_xml_text_valid(const char *s, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* The stream parser                                                                          */

struct cm_xml_parser;

#define CM_XML_DEFAULT_MAX_STANZA (256 * 1024)
#define CM_XML_DEFAULT_MAX_DEPTH  32
#define CM_XML_DEFAULT_MAX_ATTRS  64
#define CM_XML_DEFAULT_MAX_NODES  4096

/* Callbacks run from cm_xml_parser_feed(), never from inside expat. Each returns 0 to go on or a
 * negative errno to stop: feed then returns that code at once, the rest of its input is
 * dropped and the parser refuses further input until cm_xml_parser_reset(). A callback may call
 * cm_xml_parser_reset() (stream restart after STARTTLS or SASL): the bytes after the event are
 * then parsed as the start of a new stream. It must not free the parser. */
struct cm_xml_parser_cfg {
	/* Limits; 0 picks the default. max_stanza bounds, in bytes, the stream header, each stanza
	 * (from its '<' to the end of its end tag) and any input not yet complete; max_depth the
	 * nesting inside a stanza (the stanza element is depth 1); max_attrs the attributes plus
	 * namespace declarations of one element; max_nodes the elements and text nodes of one
	 * stanza. A breach is the stream error policy-violation. */
	size_t max_stanza;
	unsigned max_depth;
	unsigned max_attrs;
	unsigned max_nodes;
	/* If not NULL (borrowed, must outlive the parser): the stream header must declare this as
	 * its default namespace (e.g. CM_XML_NS_COMPONENT), else invalid-namespace. */
	const char *content_ns;

	/* <stream:stream ...> was read (local name "stream", namespace CM_XML_NS_STREAM, checked).
	 * header is borrowed: an element without children, valid until reset or free. */
	int (*open_cb)(void *arg, const struct cm_xml_node *header);
	/* A complete top-level element. stanza is handed over: a root the callee must free with
	 * cm_xml_node_free() (it may keep it as long as it likes). */
	int (*stanza_cb)(void *arg, struct cm_xml_node *stanza);
	/* </stream:stream> was read. Nothing but whitespace may follow. */
	int (*close_cb)(void *arg);
	/* Optional: called once when the stream fails, just before feed returns -EBADMSG (or
	 * -ENOMEM); the same is available from cm_xml_parser_error(). */
	void (*error_cb)(void *arg, const char *condition, const char *detail);
	void *arg; /* borrowed, passed to the callbacks */
};

/* Create a parser for a stream that starts with its XML declaration or header. cfg is copied.
 * 0, -EINVAL (a callback missing: open_cb, stanza_cb and close_cb are required), -ENOMEM. */
int cm_xml_parser_alloc(struct cm_xml_parser **out, const struct cm_xml_parser_cfg *cfg);

/* Free the parser, including the header and any stanza still being built. Accepts NULL. Not
 * from inside a callback. */
void cm_xml_parser_free(struct cm_xml_parser *p);

/* Parse len more bytes of the stream, which may split tokens and UTF-8 sequences anywhere,
 * running the callbacks for what they complete. Returns 0 (all consumed; possibly waiting for
 * more), a callback's nonzero return, -EBADMSG (a stream error: condition and detail from
 * cm_xml_parser_error(); every later feed returns it again), -ENOMEM (likewise, condition
 * internal-server-error), -EPIPE (input after a callback stopped the parser), -EBUSY (called
 * from one of its own callbacks), -EPROTO (expat kept input back across a callback's reset:
 * cannot happen with expat's documented behaviour). Whitespace may follow the end of the
 * stream; anything else is not-well-formed. */
int cm_xml_parser_feed(struct cm_xml_parser *p, const void *data, size_t len);

/* Start over for a new stream (after STARTTLS or SASL success, RFC 6120 4.3.3): forgets the
 * header, any partial stanza, any pending error or stop, and keeps the parser's memory. May be
 * called from a callback (see struct cm_xml_parser_cfg). 0 or -ENOMEM. */
int cm_xml_parser_reset(struct cm_xml_parser *p);

/* Give expat's memory back while the stream rests: inside the stream, between stanzas, with every
 * byte fed part of a complete event (a stream idle between stanzas is, almost always). The next
 * feed() starts a new expat parser in the same place, which costs a few microseconds; an idle
 * client connection keeps several KB less (heap profile of a logged-in client: about 10 KB). Error
 * details after that count lines and columns from where the parser resumed. 0 (parked, or already),
 * -EBUSY (not at rest: nothing changed). Not from inside a callback. */
int cm_xml_parser_park(struct cm_xml_parser *p);
/* Whether the parser is parked. */
int cm_xml_parser_parked(const struct cm_xml_parser *p);
/* Whether a feed() is under way (a callback runs inside it): whoever would hand the parser to
 * another thread waits until it has returned. */
int cm_xml_parser_feeding(const struct cm_xml_parser *p);

/* The stream error condition (a cm_xml_err_* constant) or NULL if none; *detail (if detail is
 * not NULL) receives a borrowed one-line explanation with line and column, valid until the next
 * reset. */
const char *cm_xml_parser_error(const struct cm_xml_parser *p, const char **detail);

/* The stream header read so far (NULL before it is complete). Borrowed, valid until reset. */
const struct cm_xml_node *cm_xml_parser_header(const struct cm_xml_parser *p);

#endif
