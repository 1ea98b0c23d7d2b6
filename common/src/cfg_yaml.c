/* cfg_yaml.c - the libyaml adapter: YAML text to a small node tree with line numbers.
 *
 * Only the subset a configuration needs is accepted: one document, no aliases, no tags, scalar
 * mapping keys, bounded depth and size. Everything else stops the parse with one message, since
 * what follows a structural problem cannot be trusted.
 */
#include "cfg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
	struct cfg_node *root;
	struct cfg_node *stack[CFG_MAX_DEPTH]; /* open mappings and sequences, innermost last */
	size_t depth;
	size_t nodes;
	int ndocs;
	struct cfg_yaml_error *err;
};

void cm_cfg__node_free(struct cfg_node *n)
{
	if (!n)
		return;
	/* Recursion is bounded by CFG_MAX_DEPTH. */
	for (size_t i = 0; i < n->n; i++)
		cm_cfg__node_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

bool cm_cfg__node_is_null(const struct cfg_node *n)
{
	if (!n || n->kind != CFG_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

static int fail(struct builder *b, const yaml_mark_t *mark, const char *msg)
{
	b->err->line = mark->line + 1;
	snprintf(b->err->msg, sizeof(b->err->msg), "%s", msg);
	return -EINVAL;
}

static unsigned long line_at(const char *text, size_t len, size_t offset)
{
	unsigned long line = 1;

	if (offset > len)
		offset = len;
	for (size_t i = 0; i < offset; i++)
		line += text[i] == '\n';
	return line;
}

/* Attach a new node to the innermost open container (or make it the root). Takes ownership of
 * node in every case. */
static int attach(struct builder *b, struct cfg_node *node, const yaml_mark_t *mark)
{
	struct cfg_node *parent;

	if (++b->nodes > CFG_MAX_NODES) {
		cm_cfg__node_free(node);
		return fail(b, mark, "too many values (limit 100000)");
	}
	if (b->depth == 0) {
		/* A second root cannot happen: documents after the first are refused. */
		cm_cfg__node_free(b->root);
		b->root = node;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == CFG_MAP && parent->n % 2 == 0 && node->kind != CFG_SCALAR) {
		cm_cfg__node_free(node);
		return fail(b, mark, "mapping keys must be strings");
	}
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 8;
		struct cfg_node **k = realloc(parent->kids, ncap * sizeof(*k));

		if (!k) {
			cm_cfg__node_free(node);
			return -ENOMEM;
		}
		parent->kids = k;
		parent->cap = ncap;
	}
	parent->kids[parent->n++] = node;
	return 0;
}

static struct cfg_node *node_new(enum cfg_kind kind, const yaml_mark_t *mark)
{
	struct cfg_node *n = calloc(1, sizeof(*n));

	if (n) {
		n->kind = kind;
		n->line = mark->line + 1;
	}
	return n;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	struct cfg_node *n;

	if (ev->data.scalar.tag)
		return fail(b, &ev->start_mark, "tags are not supported");
	n = node_new(CFG_SCALAR, &ev->start_mark);
	if (!n)
		return -ENOMEM;
	n->text = malloc(ev->data.scalar.length + 1);
	if (!n->text) {
		free(n);
		return -ENOMEM;
	}
	memcpy(n->text, ev->data.scalar.value, ev->data.scalar.length);
	n->text[ev->data.scalar.length] = '\0';
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return attach(b, n, &ev->start_mark);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum cfg_kind kind)
{
	const yaml_char_t *tag =
	    kind == CFG_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	struct cfg_node *n;
	int err;

	if (tag)
		return fail(b, &ev->start_mark, "tags are not supported");
	if (b->depth == CFG_MAX_DEPTH)
		return fail(b, &ev->start_mark, "nesting too deep (limit 32 levels)");
	n = node_new(kind, &ev->start_mark);
	if (!n)
		return -ENOMEM;
	err = attach(b, n, &ev->start_mark);
	if (err)
		return err;
	b->stack[b->depth++] = n;
	return 0;
}

/* Handle one event; 1 at the end of the stream. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->ndocs++)
			return fail(b, &ev->start_mark, "only one document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return fail(b, &ev->start_mark, "aliases are not supported");
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, CFG_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, CFG_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth)
			b->depth--;
		return 0;
	case YAML_STREAM_END_EVENT:
		return 1;
	default:
		return 0;
	}
}

int cm_cfg__yaml_parse(const char *text, size_t len, struct cfg_node **root,
                       struct cfg_yaml_error *err)
{
	struct builder b = {.err = err};
	yaml_parser_t p;
	int r = 0;

	*root = NULL;
	err->line = 0;
	err->msg[0] = '\0';
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""), text ? len : 0);
	while (r == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				r = -ENOMEM;
				break;
			}
			/* Reader errors (bad UTF-8, control characters) carry only an offset. */
			err->line = p.error == YAML_READER_ERROR
			                ? line_at(text, text ? len : 0, p.problem_offset)
			                : p.problem_mark.line + 1;
			snprintf(err->msg, sizeof(err->msg), "syntax error: %s",
			         p.problem ? p.problem : "invalid YAML");
			r = -EINVAL;
			break;
		}
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (r < 0) {
		cm_cfg__node_free(b.root);
		return r;
	}
	*root = b.root;
	return 0;
}
