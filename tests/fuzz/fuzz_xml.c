/* fuzz_xml.c - libFuzzer target: the XMPP stream parser (cm_xml) on arbitrary bytes.
 *
 * The input is a stream as a peer would send it, so the seed corpus is plain XML. Each input is
 * parsed twice with default limits and twice with tiny ones (so every limit is reachable in a
 * few hundred bytes): once in one piece and once cut into pieces of pseudo-random sizes derived
 * from the input. Beyond "no crash, no leak", it checks the module's promises, abort()ing
 * otherwise:
 *   - chunking does not change the result: the same events (header, stanzas serialised, end)
 *     and, for a failed stream, a failure too (the one fed in pieces may fail earlier, when the
 *     size limit is checked between pieces before expat reaches a syntax error);
 *   - every error carries a known condition and a detail with the position;
 *   - every stanza serialises, and parses back (inside its stream header) to the same tree;
 *     a copy is equal to the original, and so is a pack (cm_xml_pack) and a copy out of it;
 *   - a stanza named <restart/> resets the parser from its callback, and the rest of the input
 *     is a new stream. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct cm_xml_parser *p;
	struct cm_buf log;
	struct cm_xml_node *header; /* copy of the current header */
	bool roundtrip;
	int errors;
};

static bool tree_equal(const struct cm_xml_node *a, const struct cm_xml_node *b)
{
	const struct cm_xml_attr *x, *y;

	if (a->kind != b->kind)
		return false;
	if (a->kind == CM_XML_TEXT)
		return a->text_len == b->text_len && !memcmp(a->text, b->text, a->text_len) &&
		       strlen(a->text) == a->text_len;
	if (strcmp(a->name, b->name) || strcmp(a->ns, b->ns) ||
	    (a->prefix ? !b->prefix || strcmp(a->prefix, b->prefix) : !!b->prefix))
		return false;
	for (x = a->attrs, y = b->attrs; x && y; x = x->next, y = y->next)
		if (strcmp(x->name, y->name) || strcmp(x->value, y->value) ||
		    (x->ns ? !y->ns || strcmp(x->ns, y->ns) : !!y->ns))
			return false;
	if (x || y)
		return false;
	for (a = a->children, b = b->children; a && b; a = a->next, b = b->next) {
		if (a->prev != (a->parent->children == a ? NULL : a->prev) || a->parent == NULL)
			return false;
		if (!tree_equal(a, b))
			return false;
	}
	return !a && !b;
}

/* --- the reparse used by the round-trip check --------------------------------------------- */

struct back {
	struct cm_xml_node *stanza;
	int n;
};

static int back_open(void *arg, const struct cm_xml_node *h)
{
	(void)arg, (void)h;
	return 0;
}

static int back_stanza(void *arg, struct cm_xml_node *s)
{
	struct back *b = arg;

	b->n++;
	cm_xml_node_free(b->stanza);
	b->stanza = s;
	return 0;
}

static int back_close(void *arg)
{
	(void)arg;
	return 0;
}

static void roundtrip(const struct cm_xml_node *header, const struct cm_xml_node *s)
{
	struct cm_xml_parser_cfg cfg = {
	    .max_stanza = 1 << 24,
	    .max_attrs = 1 << 20,
	    .max_nodes = 1 << 20,
	    .max_depth = 1 << 10,
	    .open_cb = back_open,
	    .stanza_cb = back_stanza,
	    .close_cb = back_close,
	};
	struct back b = {0};
	struct cm_xml_parser *p = NULL;
	struct cm_xml_node *copy = NULL;
	struct cm_buf out;
	int rc;

	cm_buf_init(&out, 0);
	cfg.arg = &b;
	if (cm_xml_write_open(&out, header, NULL) || cm_xml_write(&out, s, header))
		abort();
	if (cm_xml_parser_alloc(&p, &cfg))
		abort();
	rc = cm_xml_parser_feed(p, out.data, out.len);
	if (rc || b.n != 1 || !tree_equal(s, b.stanza)) {
		fprintf(stderr, "round trip failed (%d, %s):\n%s\n", rc,
		        cm_xml_parser_error(p, NULL) ? cm_xml_parser_error(p, NULL) : "", out.data);
		abort();
	}
	if (cm_xml_node_copy(&copy, s) || !tree_equal(s, copy))
		abort();
	cm_xml_node_free(copy);
	/* a pack takes exactly the size it asks for, is equal, and copies out equal */
	{
		size_t size = cm_xml_pack_size(s);
		char *mem = malloc(size);
		const struct cm_xml_node *packed;

		if (!mem)
			abort();
		if (size && cm_xml_pack(s, mem, size - 1))
			abort();
		packed = cm_xml_pack(s, mem, size);
		if (!packed || !tree_equal(s, packed) || cm_xml_node_copy(&copy, packed) ||
		    !tree_equal(s, copy))
			abort();
		free(mem);
		cm_xml_node_free(copy);
	}
	cm_xml_node_free(b.stanza);
	cm_xml_parser_free(p);
	cm_buf_free(&out);
}

/* --- the run under test --------------------------------------------------------------------- */

static int on_open(void *arg, const struct cm_xml_node *h)
{
	struct run *r = arg;

	if (strcmp(h->name, "stream") || strcmp(h->ns, CM_XML_NS_STREAM) || h->children ||
	    h != cm_xml_parser_header(r->p))
		abort();
	cm_xml_node_free(r->header);
	r->header = NULL;
	if (cm_xml_node_copy(&r->header, h))
		abort();
	cm_buf_puts(&r->log, "O:");
	if (cm_xml_write_open(&r->log, h, NULL))
		abort();
	cm_buf_puts(&r->log, "\n");
	return 0;
}

static int on_stanza(void *arg, struct cm_xml_node *s)
{
	struct run *r = arg;
	struct cm_buf text;
	const struct cm_xml_node *x;

	if (s->parent || s->kind != CM_XML_ELEMENT)
		abort();
	cm_buf_puts(&r->log, "S:");
	if (cm_xml_write(&r->log, s, r->header))
		abort();
	cm_buf_puts(&r->log, "\n");
	if (r->roundtrip)
		roundtrip(r->header, s);
	/* the queries must cope with whatever arrives */
	cm_buf_init(&text, 0);
	if (cm_xml_text_buf(s, &text))
		abort();
	cm_buf_free(&text);
	(void)cm_xml_lang(s);
	(void)cm_xml_text(s);
	for (x = cm_xml_child(s, NULL, NULL); x; x = cm_xml_child_next(x, NULL, NULL))
		(void)cm_xml_form_field(cm_xml_child(x, "x", CM_XML_NS_DATA), "FORM_TYPE");
	if (!strcmp(s->name, "restart")) {
		cm_xml_node_free(s);
		cm_buf_puts(&r->log, "R\n");
		return cm_xml_parser_reset(r->p);
	}
	cm_xml_node_free(s);
	return 0;
}

static int on_close(void *arg)
{
	struct run *r = arg;

	cm_buf_puts(&r->log, "C\n");
	return 0;
}

static void on_error(void *arg, const char *cond, const char *detail)
{
	struct run *r = arg;

	r->errors++;
	if (!cond || !detail || strncmp(detail, "line ", 5))
		abort();
}

static const char *const conds[] = {
    cm_xml_err_bad_format,
    cm_xml_err_invalid_namespace,
    cm_xml_err_not_well_formed,
    cm_xml_err_policy_violation,
    cm_xml_err_restricted_xml,
    cm_xml_err_unsupported_encoding,
    cm_xml_err_internal_server_error,
};

/* Parse data with cfg, in one piece (seed 0) or in pieces; returns the feed result. */
static int run(struct run *r, const struct cm_xml_parser_cfg *base, const uint8_t *data,
               size_t size, uint32_t seed, bool rt)
{
	struct cm_xml_parser_cfg cfg = *base;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	cm_buf_init(&r->log, 0);
	r->roundtrip = rt;
	cfg.arg = r;
	if (cm_xml_parser_alloc(&r->p, &cfg))
		abort();
	if (!seed) {
		rc = cm_xml_parser_feed(r->p, data, size);
	} else {
		size_t off = 0;

		while (off < size && !rc) {
			size_t n;

			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 17;
			if (n > size - off)
				n = size - off;
			rc = cm_xml_parser_feed(r->p, data + off, n);
			off += n;
			/* now and then a park between pieces: nothing a caller sees may change */
			if (!rc && (seed >> 8) % 3 == 0) {
				int pr = cm_xml_parser_park(r->p);

				if (pr != 0 && pr != -EBUSY)
					abort();
			}
		}
	}
	if (rc) {
		const char *detail, *cond = cm_xml_parser_error(r->p, &detail);
		bool known = false;

		if (rc != -EBADMSG || r->errors != 1)
			abort();
		for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
			known |= cond == conds[i];
		if (!known || cm_xml_parser_feed(r->p, "<", 1) != rc || r->errors != 1)
			abort();
	} else if (r->errors) {
		abort();
	}
	return rc;
}

static void run_free(struct run *r)
{
	cm_xml_parser_free(r->p);
	cm_xml_node_free(r->header);
	cm_buf_free(&r->log);
}

static void compare(const struct cm_xml_parser_cfg *cfg, const uint8_t *data, size_t size,
                    uint32_t seed)
{
	struct run whole, split;
	int a = run(&whole, cfg, data, size, 0, true);
	int b = run(&split, cfg, data, size, seed | 1, false);
	const char *wl = whole.log.data ? whole.log.data : "";
	const char *sl = split.log.data ? split.log.data : "";

	if (a == 0 && b == 0) {
		if (strcmp(wl, sl))
			goto mismatch;
	} else if (a && b) {
		/* one may have failed earlier (limit between pieces): its events are a prefix */
		size_t n = whole.log.len < split.log.len ? whole.log.len : split.log.len;

		if (memcmp(wl, sl, n))
			goto mismatch;
	} else {
		goto mismatch;
	}
	run_free(&whole);
	run_free(&split);
	return;
mismatch:
	fprintf(stderr, "whole (%d):\n%s\nsplit (%d):\n%s\n", a, wl, b, sl);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cm_xml_parser_cfg defaults = {
	    .open_cb = on_open,
	    .stanza_cb = on_stanza,
	    .close_cb = on_close,
	    .error_cb = on_error,
	};
	struct cm_xml_parser_cfg tiny = defaults;
	uint32_t seed = 2166136261u;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	compare(&defaults, data, size, seed);
	tiny.max_stanza = 300;
	tiny.max_depth = 4;
	tiny.max_attrs = 3;
	tiny.max_nodes = 12;
	tiny.content_ns = CM_XML_NS_CLIENT;
	compare(&tiny, data, size, seed);
	return 0;
}
