/* xml_parser.c - the XMPP stream parser on expat (see cm/xml.h); the only file that sees expat.
 *
 * Expat runs in namespace mode with triplets ("uri\1local\1prefix"; \1 can never occur in XML
 * 1.0, and expat >= 2.4.5 refuses a separator inside a namespace URI anyway). Handlers build the
 * tree; when a top-level event completes (header, stanza, end of stream) the handler suspends
 * expat (XML_StopParser resumable) and feed() runs the user's callback outside expat, then
 * resumes. So callbacks may reset the parser, and feed() re-checks after every callback.
 *
 * Size: expat buffers an incomplete token without telling anyone, so "bytes since the last
 * complete top-level event" (fed - mark) is checked after each slice of input, and stanza size
 * in the handlers; together they bound both the tree and expat's buffer. */
#include "xml_int.h"

#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"

const char cm_xml_err_bad_format[] = "bad-format";
const char cm_xml_err_invalid_namespace[] = "invalid-namespace";
const char cm_xml_err_not_well_formed[] = "not-well-formed";
const char cm_xml_err_policy_violation[] = "policy-violation";
const char cm_xml_err_restricted_xml[] = "restricted-xml";
const char cm_xml_err_unsupported_encoding[] = "unsupported-encoding";
const char cm_xml_err_internal_server_error[] = "internal-server-error";

#define NS_SEP '\1'

/* Input is handed to expat in slices of at most this, so the size check runs between them
 * even when the caller passes a large buffer. */
#define SLICE (64 * 1024)

/* Character data buffer capacity kept between stanzas. */
#define TEXT_KEEP 4096

enum pending {
	PENDING_NONE = 0,
	PENDING_OPEN = 1,
	PENDING_STANZA = 2,
	PENDING_CLOSE = 4,
};

struct cm_xml_parser {
	XML_Parser xp;
	struct cm_xml_parser_cfg cfg;

	struct cm_xml_node *header;  /* owned; NULL until the header is read */
	struct cm_xml_node *stanza;  /* owned; the stanza being built */
	struct cm_xml_node *cur;     /* borrowed: innermost open element of stanza */
	struct cm_xml_node *done;    /* owned: complete stanza awaiting its callback */
	struct cm_xml_nsdecl *decls; /* owned: declarations for the next start tag */
	unsigned ndecls;
	struct cm_buf text; /* character data not yet made a node */
	unsigned depth;     /* open elements, the header included */
	unsigned nodes;     /* nodes in the current stanza */
	unsigned pending;   /* enum pending bits */
	int closed;         /* </stream:stream> read: expat gets no more input */

	long long fed;       /* bytes given to expat since the last reset */
	long long mark;      /* end of the last complete top-level event, or stanza start */
	long long event_end; /* end of the event that suspended expat */
	int stopped;         /* a callback returned nonzero */
	int in_feed;         /* feed() is running */
	int priming;         /* unparking until the header was read again (nobody is told) */
	unsigned gen;        /* bumped by every reset: a callback reset the parser */

	int err;          /* -EBADMSG / -ENOMEM once failed */
	const char *cond; /* cm_xml_err_* */
	char detail[192];
};

/* --- errors --------------------------------------------------------------------------------- */

static void fail(struct cm_xml_parser *p, int err, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the first error with the current position and stop expat. */
static void fail(struct cm_xml_parser *p, int err, const char *cond, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err)
		return;
	p->err = err;
	p->cond = cond;
	n = snprintf(p->detail, sizeof(p->detail),
	             "line %lu, column %lu: ", (unsigned long)XML_GetCurrentLineNumber(p->xp),
	             (unsigned long)XML_GetCurrentColumnNumber(p->xp) + 1);
	if (n < 0 || (size_t)n >= sizeof(p->detail))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(p->detail + n, sizeof(p->detail) - (size_t)n, fmt, ap);
	va_end(ap);
	XML_StopParser(p->xp, XML_FALSE);
}

static void fail_nomem(struct cm_xml_parser *p)
{
	fail(p, -ENOMEM, cm_xml_err_internal_server_error, "out of memory");
}

/* Translate an expat error into a stream error condition. */
static void fail_expat(struct cm_xml_parser *p)
{
	enum XML_Error code = XML_GetErrorCode(p->xp);
	const char *cond = cm_xml_err_not_well_formed;

	switch (code) {
	case XML_ERROR_NO_MEMORY:
		fail_nomem(p);
		return;
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_ASYNC_ENTITY:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_ENTITY_DECLARED_IN_PE:
	case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
		cond = cm_xml_err_restricted_xml;
		break;
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		cond = cm_xml_err_unsupported_encoding;
		break;
	default:
		break;
	}
	fail(p, -EBADMSG, cond, "%s", XML_ErrorString(code));
}

/* --- positions and limits ------------------------------------------------------------------- */

static long long event_end(struct cm_xml_parser *p)
{
	return (long long)XML_GetCurrentByteIndex(p->xp) + XML_GetCurrentByteCount(p->xp);
}

/* The stanza (or header) under construction must stay within max_stanza bytes. */
static int check_size(struct cm_xml_parser *p)
{
	if (event_end(p) - p->mark > (long long)p->cfg.max_stanza) {
		fail(p, -EBADMSG, cm_xml_err_policy_violation, "stanza larger than %zu bytes",
		     p->cfg.max_stanza);
		return -1;
	}
	return 0;
}

static int count_node(struct cm_xml_parser *p)
{
	if (++p->nodes > p->cfg.max_nodes) {
		fail(p, -EBADMSG, cm_xml_err_policy_violation, "stanza with more than %u nodes",
		     p->cfg.max_nodes);
		return -1;
	}
	return 0;
}

/* Suspend expat after a top-level event so that feed() runs the callback. */
static void suspend(struct cm_xml_parser *p, enum pending what)
{
	p->pending |= what;
	p->event_end = event_end(p);
	/* fails harmlessly if already suspended (the end of an empty root follows its start) */
	XML_StopParser(p->xp, XML_TRUE);
}

/* --- tree building -------------------------------------------------------------------------- */

/* Split an expat triplet into local name, namespace (or NULL) and prefix (or NULL). */
struct qname {
	const char *ns, *local, *prefix;
	size_t nslen, llen, plen;
};

static void split(const char *s, struct qname *q)
{
	const char *a = strchr(s, NS_SEP), *b;

	memset(q, 0, sizeof(*q));
	if (!a) {
		q->local = s;
		q->llen = strlen(s);
		return;
	}
	q->ns = s;
	q->nslen = (size_t)(a - s);
	q->local = a + 1;
	b = strchr(q->local, NS_SEP);
	if (!b) {
		q->llen = strlen(q->local);
		return;
	}
	q->llen = (size_t)(b - q->local);
	q->prefix = b + 1;
	q->plen = strlen(q->prefix);
}

/* Turn accumulated character data into a text node of the current element. */
static int flush_text(struct cm_xml_parser *p)
{
	struct cm_xml_node *t;

	if (!p->text.len)
		return 0;
	if (p->cur) {
		if (count_node(p))
			return -1;
		t = cm_xml__text_alloc(p->text.data, p->text.len);
		if (!t) {
			fail_nomem(p);
			return -1;
		}
		cm_xml__append(p->cur, t);
	}
	/* one large body must not pin max_stanza bytes per idle connection */
	if (p->text.cap > TEXT_KEEP)
		cm_buf_free(&p->text);
	else
		cm_buf_reset(&p->text);
	return 0;
}

static struct cm_xml_node *build_elem(struct cm_xml_parser *p, const XML_Char *name,
                                      const XML_Char **atts)
{
	struct cm_xml_node *n;
	struct cm_xml_attr **tail;
	struct qname q;
	unsigned nattrs = 0;

	for (const XML_Char **a = atts; *a; a += 2)
		nattrs++;
	if (nattrs + p->ndecls > p->cfg.max_attrs) {
		fail(p, -EBADMSG, cm_xml_err_policy_violation,
		     "element with more than %u attributes", p->cfg.max_attrs);
		return NULL;
	}
	split(name, &q);
	n = cm_xml__elem_alloc(q.prefix, q.plen, q.local, q.llen, q.ns ? q.ns : "", q.nslen);
	if (!n) {
		fail_nomem(p);
		return NULL;
	}
	n->nsdecls = p->decls;
	p->decls = NULL;
	p->ndecls = 0;
	tail = &n->attrs;
	for (const XML_Char **a = atts; *a; a += 2) {
		struct qname aq;

		split(a[0], &aq);
		/* a namespaced attribute always has a prefix: a default namespace does not apply */
		*tail = cm_xml__attr_alloc(aq.prefix, aq.plen, aq.local, aq.llen, aq.ns, aq.nslen,
		                           a[1], strlen(a[1]));
		if (!*tail) {
			cm_xml_node_free(n);
			fail_nomem(p);
			return NULL;
		}
		tail = &(*tail)->next;
	}
	return n;
}

static void check_header(struct cm_xml_parser *p, const struct cm_xml_node *h)
{
	const char *content;

	if (strcmp(h->ns, CM_XML_NS_STREAM)) {
		fail(p, -EBADMSG, cm_xml_err_invalid_namespace,
		     "stream header in namespace '%.60s', not " CM_XML_NS_STREAM, h->ns);
		return;
	}
	if (strcmp(h->name, "stream")) {
		fail(p, -EBADMSG, cm_xml_err_bad_format, "root element <%.40s>, not <stream>",
		     h->name);
		return;
	}
	if (p->cfg.content_ns) {
		content = cm_xml_ns_lookup(h, NULL);
		if (!content || strcmp(content, p->cfg.content_ns))
			fail(p, -EBADMSG, cm_xml_err_invalid_namespace,
			     "content namespace '%.60s', not '%.60s'", content ? content : "",
			     p->cfg.content_ns);
	}
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct cm_xml_parser *p = ud;
	struct cm_xml_node *n;

	if (p->err)
		return;
	if (p->priming) {
		/* the header written back by unpark(): already known, already checked */
		cm_xml__nsdecls_free(p->decls);
		p->decls = NULL;
		p->ndecls = 0;
		p->priming = 0; /* done */
		return;
	}
	if (p->depth == 0) {
		if (check_size(p))
			return;
		n = build_elem(p, name, atts);
		if (!n)
			return;
		p->header = n;
		p->depth = 1;
		check_header(p, n);
		if (p->err)
			return;
		p->mark = event_end(p);
		suspend(p, PENDING_OPEN);
		return;
	}
	if (p->depth == 1) {
		/* a new stanza: whitespace before it was dropped */
		cm_buf_reset(&p->text);
		p->mark = XML_GetCurrentByteIndex(p->xp);
		p->nodes = 0;
	} else if (flush_text(p)) {
		return;
	}
	if (check_size(p))
		return;
	if (p->depth > p->cfg.max_depth) {
		fail(p, -EBADMSG, cm_xml_err_policy_violation, "elements nested deeper than %u",
		     p->cfg.max_depth);
		return;
	}
	if (count_node(p))
		return;
	n = build_elem(p, name, atts);
	if (!n)
		return;
	if (p->cur)
		cm_xml__append(p->cur, n);
	else
		p->stanza = n;
	p->cur = n;
	p->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct cm_xml_parser *p = ud;

	(void)name; /* expat has checked that it matches */
	if (p->err)
		return;
	if (p->depth == 1) {
		p->depth = 0;
		p->closed = 1;
		cm_buf_reset(&p->text);
		p->mark = event_end(p);
		suspend(p, PENDING_CLOSE);
		return;
	}
	if (flush_text(p) || check_size(p))
		return;
	p->depth--;
	p->cur = p->cur->parent;
	if (p->depth == 1) {
		p->done = p->stanza;
		p->stanza = NULL;
		p->mark = event_end(p);
		suspend(p, PENDING_STANZA);
	}
}

static int all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct cm_xml_parser *p = ud;

	if (p->err || len <= 0)
		return;
	if (p->depth == 1) {
		/* between stanzas only whitespace (keepalives) may appear */
		if (!all_space(s, (size_t)len)) {
			fail(p, -EBADMSG, cm_xml_err_bad_format, "text between stanzas");
			return;
		}
		p->mark = event_end(p);
		return;
	}
	if (check_size(p))
		return;
	if (cm_buf_append(&p->text, s, (size_t)len))
		fail_nomem(p);
}

static void XMLCALL on_nsdecl(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
	struct cm_xml_parser *p = ud;
	struct cm_xml_nsdecl *d, **tail;

	if (p->err)
		return;
	if (++p->ndecls > p->cfg.max_attrs) {
		fail(p, -EBADMSG, cm_xml_err_policy_violation,
		     "element with more than %u attributes", p->cfg.max_attrs);
		return;
	}
	d = cm_xml__nsdecl_alloc(prefix, uri ? uri : "");
	if (!d) {
		fail_nomem(p);
		return;
	}
	for (tail = &p->decls; *tail; tail = &(*tail)->next)
		;
	*tail = d;
}

static void XMLCALL on_xmldecl(void *ud, const XML_Char *version, const XML_Char *encoding,
                               int standalone)
{
	struct cm_xml_parser *p = ud;

	(void)standalone;
	if (p->err)
		return;
	if (version && strcmp(version, "1.0"))
		fail(p, -EBADMSG, cm_xml_err_bad_format, "XML version %.20s, not 1.0", version);
	else if (encoding && strcasecmp(encoding, "UTF-8"))
		fail(p, -EBADMSG, cm_xml_err_unsupported_encoding, "encoding %.40s, not UTF-8",
		     encoding);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	fail(ud, -EBADMSG, cm_xml_err_restricted_xml, "DOCTYPE declaration");
}

static void XMLCALL on_entitydecl(void *ud, const XML_Char *name, int is_param,
                                  const XML_Char *value, int value_len, const XML_Char *base,
                                  const XML_Char *sysid, const XML_Char *pubid,
                                  const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	fail(ud, -EBADMSG, cm_xml_err_restricted_xml, "entity declaration");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	(void)data;
	fail(ud, -EBADMSG, cm_xml_err_restricted_xml, "processing instruction <?%.40s", target);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
	(void)data;
	fail(ud, -EBADMSG, cm_xml_err_restricted_xml, "comment");
}

/* CDATA sections are allowed (RFC 6120 does not list them); their content arrives as text. */
static void XMLCALL on_cdata(void *ud)
{
	(void)ud;
}

/* Whatever else expat reports: only whitespace around the root element is acceptable. */
static void XMLCALL on_default(void *ud, const XML_Char *s, int len)
{
	struct cm_xml_parser *p = ud;

	if (p->err || len <= 0 || all_space(s, (size_t)len))
		return;
	fail(p, -EBADMSG, cm_xml_err_restricted_xml, "unexpected markup '%.*s'",
	     len > 32 ? 32 : len, s);
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void setup(struct cm_xml_parser *p)
{
	XML_Parser xp = p->xp;

	XML_SetUserData(xp, p);
	XML_SetReturnNSTriplet(xp, 1);
	XML_SetElementHandler(xp, on_start, on_end);
	XML_SetCharacterDataHandler(xp, on_text);
	XML_SetStartNamespaceDeclHandler(xp, on_nsdecl);
	XML_SetXmlDeclHandler(xp, on_xmldecl);
	XML_SetStartDoctypeDeclHandler(xp, on_doctype);
	XML_SetEntityDeclHandler(xp, on_entitydecl);
	XML_SetProcessingInstructionHandler(xp, on_pi);
	XML_SetCommentHandler(xp, on_comment);
	XML_SetCdataSectionHandler(xp, on_cdata, on_cdata);
	XML_SetDefaultHandler(xp, on_default);
	XML_SetParamEntityParsing(xp, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
	/* Reparse deferral (2.6) would hold back complete stanzas until more input arrives. */
	XML_SetReparseDeferralEnabled(xp, XML_FALSE);
#endif
}

/* Forget everything about the current stream except allocations that can be reused. */
static void clear(struct cm_xml_parser *p)
{
	cm_xml_node_free(p->header);
	cm_xml_node_free(p->stanza);
	cm_xml_node_free(p->done);
	cm_xml__nsdecls_free(p->decls);
	p->header = p->stanza = p->cur = p->done = NULL;
	p->decls = NULL;
	p->ndecls = 0;
	cm_buf_reset(&p->text);
	p->depth = 0;
	p->nodes = 0;
	p->pending = PENDING_NONE;
	p->closed = 0;
	p->fed = p->mark = p->event_end = 0;
	p->stopped = 0;
	p->err = 0;
	p->cond = NULL;
	p->detail[0] = '\0';
}

/* Expat allocates through these, so the tests' fault injection reaches it too. */
static void *xp_malloc(size_t n)
{
	return malloc(n);
}

static void *xp_realloc(void *ptr, size_t n)
{
	return realloc(ptr, n);
}

static void xp_free(void *ptr)
{
	free(ptr);
}

static const XML_Memory_Handling_Suite mem_suite = {xp_malloc, xp_realloc, xp_free};

/* A new expat parser for p. 0 or -ENOMEM (p->xp NULL). */
static int create(struct cm_xml_parser *p)
{
	/* UTF-8 is forced (a declaration of another encoding is refused in on_xmldecl). Set
	 * separately because parser creation ignores a failure to copy the encoding name. */
	p->xp = XML_ParserCreate_MM(NULL, &mem_suite, (XML_Char[]){NS_SEP, '\0'});
	if (!p->xp || XML_SetEncoding(p->xp, "UTF-8") != XML_STATUS_OK) {
		XML_ParserFree(p->xp);
		p->xp = NULL;
		return -ENOMEM;
	}
	setup(p);
	return 0;
}

int cm_xml_parser_alloc(struct cm_xml_parser **out, const struct cm_xml_parser_cfg *cfg)
{
	struct cm_xml_parser *p;

	if (!cfg || !cfg->open_cb || !cfg->stanza_cb || !cfg->close_cb)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	if (!p->cfg.max_stanza)
		p->cfg.max_stanza = CM_XML_DEFAULT_MAX_STANZA;
	if (!p->cfg.max_depth)
		p->cfg.max_depth = CM_XML_DEFAULT_MAX_DEPTH;
	if (!p->cfg.max_attrs)
		p->cfg.max_attrs = CM_XML_DEFAULT_MAX_ATTRS;
	if (!p->cfg.max_nodes)
		p->cfg.max_nodes = CM_XML_DEFAULT_MAX_NODES;
	cm_buf_init(&p->text, 0);
	if (create(p)) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void cm_xml_parser_free(struct cm_xml_parser *p)
{
	if (!p)
		return;
	clear(p);
	cm_buf_free(&p->text);
	XML_ParserFree(p->xp);
	free(p);
}

int cm_xml_parser_reset(struct cm_xml_parser *p)
{
	int ok;

	clear(p);
	p->gen++;
	/* XML_ParserReset ignores a failure to copy an encoding name; XML_SetEncoding reports it */
	if (p->xp)
		ok = XML_ParserReset(p->xp, NULL) &&
		     XML_SetEncoding(p->xp, "UTF-8") == XML_STATUS_OK;
	else
		ok = create(p) == 0; /* parked */
	if (!ok) {
		p->err = -ENOMEM;
		p->cond = cm_xml_err_internal_server_error;
		snprintf(p->detail, sizeof(p->detail), "parser reset failed");
		return -ENOMEM;
	}
	if (p->xp)
		setup(p);
	return 0;
}

int cm_xml_parser_park(struct cm_xml_parser *p)
{
	if (!p->xp)
		return 0;
	/* At rest: inside the stream, no stanza begun, every byte fed part of a complete event
	 * (so expat holds no partial token), no callback owed, no failure. */
	if (p->in_feed || p->err || p->stopped || p->closed || p->depth != 1 || p->pending ||
	    p->stanza || p->fed != p->mark || !p->header)
		return -EBUSY;
	XML_ParserFree(p->xp);
	p->xp = NULL;
	cm_buf_free(&p->text);
	cm_buf_init(&p->text, 0);
	return 0;
}

int cm_xml_parser_parked(const struct cm_xml_parser *p)
{
	return p->xp == NULL;
}

int cm_xml_parser_feeding(const struct cm_xml_parser *p)
{
	return p->in_feed;
}

/* A parked parser gets a new expat parser, which reads the stream header again (written back
 * from p->header, with its namespace declarations) so that it stands where the old one stood:
 * inside the stream, between stanzas. 0 or -ENOMEM. */
static int unpark(struct cm_xml_parser *p)
{
	struct cm_buf hdr;
	int rc = -ENOMEM;

	cm_buf_init(&hdr, 0);
	if (create(p))
		goto out;
	if (cm_xml_write_open(&hdr, p->header, NULL) || hdr.len > INT_MAX)
		goto out;
	p->priming = 1;
	if (XML_Parse(p->xp, (const char *)hdr.data, (int)hdr.len, XML_FALSE) == XML_STATUS_OK &&
	    !p->priming && !p->err)
		rc = 0;
	p->priming = 0;
	/* positions count expat's bytes, the header's included */
	p->fed = p->mark = p->event_end = (long long)hdr.len;
out:
	cm_buf_free(&hdr);
	if (rc) {
		XML_ParserFree(p->xp);
		p->xp = NULL;
		if (!p->err) {
			p->err = -ENOMEM;
			p->cond = cm_xml_err_internal_server_error;
			snprintf(p->detail, sizeof(p->detail),
			         "parser could not resume the stream");
		}
	}
	return rc;
}

const char *cm_xml_parser_error(const struct cm_xml_parser *p, const char **detail)
{
	if (detail)
		*detail = p->cond ? p->detail : NULL;
	return p->cond;
}

const struct cm_xml_node *cm_xml_parser_header(const struct cm_xml_parser *p)
{
	return p->header;
}

/* --- feeding -------------------------------------------------------------------------------- */

/* Run the callbacks for what expat completed, in stream order. 0 to go on, or a callback's
 * nonzero return. Returns early if a callback resets the parser (p->gen changes). */
static int deliver(struct cm_xml_parser *p)
{
	unsigned gen = p->gen;
	int rc = 0;

	if (p->pending & PENDING_OPEN) {
		p->pending &= ~(unsigned)PENDING_OPEN;
		rc = p->cfg.open_cb(p->cfg.arg, p->header);
		if (rc || p->gen != gen)
			return rc;
	}
	if (p->pending & PENDING_STANZA) {
		struct cm_xml_node *s = p->done;

		p->pending &= ~(unsigned)PENDING_STANZA;
		p->done = NULL;
		rc = p->cfg.stanza_cb(p->cfg.arg, s);
		if (rc || p->gen != gen)
			return rc;
	}
	if (p->pending & PENDING_CLOSE) {
		p->pending &= ~(unsigned)PENDING_CLOSE;
		rc = p->cfg.close_cb(p->cfg.arg);
	}
	return rc;
}

static int failed(struct cm_xml_parser *p)
{
	if (p->cfg.error_cb)
		p->cfg.error_cb(p->cfg.arg, p->cond, p->detail);
	return p->err;
}

int cm_xml_parser_feed(struct cm_xml_parser *p, const void *data, size_t len)
{
	const char *s = data;
	int rc = 0;

	if (p->in_feed)
		return -EBUSY;
	if (p->err)
		return p->err;
	if (p->stopped)
		return -EPIPE;
	if (!p->xp && len > 0 && unpark(p))
		return failed(p);
	p->in_feed = 1;
	while (len > 0) {
		size_t slice = len < SLICE ? len : SLICE;
		enum XML_Status st;

		if (p->closed) {
			/* Checked here, not by expat, whose epilog scanner answers differently
			 * depending on how the junk is chunked. */
			if (!all_space(s, len)) {
				fail(p, -EBADMSG, cm_xml_err_not_well_formed,
				     "data after the end of the stream");
				rc = failed(p);
			}
			goto out;
		}

		/* Expat switches to UTF-16 on a BOM or a NUL in a stream's first two bytes, even
		 * with UTF-8 forced; neither byte can start a UTF-8 stream. */
		for (size_t i = 0; p->fed + (long long)i < 2 && i < slice; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == 0 || c == 0xfe || c == 0xff) {
				fail(p, -EBADMSG, cm_xml_err_unsupported_encoding,
				     "not UTF-8 (byte 0x%02x at the start)", c);
				rc = failed(p);
				goto out;
			}
		}
		p->fed += (long long)slice;
		st = XML_Parse(p->xp, s, (int)slice, XML_FALSE);
		s += slice;
		len -= slice;
		for (;;) {
			unsigned gen = p->gen;
			long long rest;

			if (!p->err && st == XML_STATUS_ERROR)
				fail_expat(p);
			if (p->err) {
				rc = failed(p);
				goto out;
			}
			/* bytes of this slice expat has not parsed yet */
			rest = p->fed - p->event_end;
			rc = deliver(p);
			if (rc) {
				p->stopped = p->gen == gen;
				goto out;
			}
			if (p->gen != gen || p->closed) {
				/* reset by a callback: the rest of the slice starts the new stream;
				 * closed: the rest of the slice is checked at the top */
				if (rest < 0 || rest > (long long)slice) {
					rc = -EPROTO; /* expat held back input: cannot happen */
					goto out;
				}
				s -= rest;
				len += (size_t)rest;
				break;
			}
			if (st != XML_STATUS_SUSPENDED)
				break;
			st = XML_ResumeParser(p->xp);
		}
		if (!p->err && !p->closed && p->fed - p->mark > (long long)p->cfg.max_stanza) {
			fail(p, -EBADMSG, cm_xml_err_policy_violation,
			     "more than %zu bytes without a complete stanza", p->cfg.max_stanza);
			rc = failed(p);
			goto out;
		}
	}
out:
	p->in_feed = 0;
	return rc;
}
