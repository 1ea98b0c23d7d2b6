/* cfg_dump.c - the effective configuration as YAML (--print-config) and the key reference
 * as Markdown rows (--config-reference). */
#include "cfg_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* --- YAML ------------------------------------------------------------------------------------ */

static bool reserved_word(const char *s)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on",
	                                    "off",  "null",  "y",   "n"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(s, words[i]) == 0)
			return true;
	}
	return false;
}

/* Whether s can be written without quotes and read back unchanged by any YAML reader: a
 * conservative set of characters, starting with a letter, '/' or '_' (so numbers, indicators
 * and "./x" get quotes), and not a word YAML 1.1 reads as a boolean or null. */
static bool plain_ok(const char *s)
{
	size_t len = strlen(s);

	if (!len ||
	    !(strchr("/_", s[0]) || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_./@+-:", c)))
			return false;
	}
	return s[len - 1] != ':' && !reserved_word(s);
}

/* The code point of the UTF-8 sequence at s (n bytes available) if it is one that YAML does
 * not allow raw in a double-quoted scalar: C1 controls (NEL among them would be folded as a line
 * break), LS, PS, U+FFFE and U+FFFF. *w receives the sequence's length. 0 otherwise. */
static unsigned must_escape(const unsigned char *s, size_t n, size_t *w)
{
	if (n >= 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
		*w = 2;
		return s[1];
	}
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
		*w = 3;
		return 0x2000u + (s[2] & 0x3fu);
	}
	if (n >= 3 && s[0] == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf)) {
		*w = 3;
		return 0xffc0u + (s[2] & 0x3fu);
	}
	return 0;
}

/* The inside of a double-quoted scalar: cm_buf_json_escape() for ASCII, plus the characters
 * above that it copies as they are. */
static int put_escaped(struct cm_buf *b, const char *s, size_t n)
{
	size_t start = 0;
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		size_t w = 0;
		unsigned cp = must_escape((const unsigned char *)s + i, n - i, &w);

		if (!cp)
			continue;
		err = cm_buf_json_escape(b, s + start, i - start);
		if (!err)
			err = cm_buf_printf(b, "\\u%04x", cp);
		i += w - 1;
		start = i + 1;
	}
	return err ? err : cm_buf_json_escape(b, s + start, n - start);
}

/* A string value, quoted when needed. '$' is doubled: the loader expands ${...} again. */
static int put_string(struct cm_buf *b, const char *s)
{
	bool quote = !plain_ok(s);
	int err = quote ? cm_buf_puts(b, "\"") : 0;

	while (!err) {
		const char *d = strchr(s, '$');
		size_t run = d ? (size_t)(d - s) : strlen(s);

		err = quote ? put_escaped(b, s, run) : cm_buf_append(b, s, run);
		if (err || !d)
			break;
		err = cm_buf_puts(b, "$$");
		s = d + 1;
	}
	if (!err && quote)
		err = cm_buf_puts(b, "\"");
	return err;
}

static int put_indent(struct cm_buf *b, unsigned n)
{
	return cm_buf_printf(b, "%*s", (int)n, "");
}

/* The string a string-like field holds, NULL when it is unset (and then not written). */
static const char *text_of(const struct cm_cfg_field *f, const void *dst)
{
	switch (f->type) {
	case CM_CFG_STRING:
	case CM_CFG_PATH:
	case CM_CFG_FILE:
		return *(char *const *)dst;
	case CM_CFG_ADDR:
		return ((const struct cm_cfg_addr *)dst)->text;
	case CM_CFG_SECRET:
		return ((const struct cm_secret *)dst)->path;
	default:
		return "";
	}
}

static bool has_output(const struct cm_cfg_schema *schema, const void *obj)
{
	for (size_t i = 0; i < schema->nfields; i++) {
		const struct cm_cfg_field *f = &schema->fields[i];

		if (text_of(f, (const char *)obj + f->offset))
			return true;
	}
	return false;
}

static int put_scalar(struct cm_buf *b, const struct cm_cfg_field *f, const void *dst)
{
	char tmp[32];

	switch (f->type) {
	case CM_CFG_INT:
		return cm_buf_printf(b, "%lld", *(const long long *)dst);
	case CM_CFG_BOOL:
		return cm_buf_puts(b, *(const bool *)dst ? "true" : "false");
	case CM_CFG_DURATION:
		cm_cfg__format_duration(*(const uint64_t *)dst, tmp);
		return cm_buf_puts(b, tmp);
	case CM_CFG_SIZE:
		cm_cfg__format_size(*(const uint64_t *)dst, tmp);
		return cm_buf_puts(b, tmp);
	case CM_CFG_ENUM: {
		int i = *(const int *)dst;

		return put_string(b, f->values && i >= 0 ? f->values[i] : "?");
	}
	default:
		return put_string(b, text_of(f, dst));
	}
}

static int dump_fields(struct cm_buf *b, const struct cm_cfg_schema *schema, const void *obj,
                       unsigned ind, bool item);

/* The value after "key:", from the space on, including the line end(s). */
static int dump_value(struct cm_buf *b, const struct cm_cfg_field *f, const void *dst, unsigned ind)
{
	int err = 0;

	switch (f->type) {
	case CM_CFG_SECTION:
		if (!has_output(f->sub, dst))
			return cm_buf_puts(b, " {}\n");
		err = cm_buf_puts(b, "\n");
		return err ? err : dump_fields(b, f->sub, dst, ind + 2, false);
	case CM_CFG_LIST: {
		const struct cm_cfg_list *l = dst;

		if (!l->n)
			return cm_buf_puts(b, " []\n");
		err = cm_buf_puts(b, "\n");
		for (size_t i = 0; i < l->n && !err; i++) {
			const char *item = (const char *)l->items + i * f->sub->size;

			if (has_output(f->sub, item)) {
				err = dump_fields(b, f->sub, item, ind + 4, true);
			} else {
				err = put_indent(b, ind + 2);
				err = err ? err : cm_buf_puts(b, "- {}\n");
			}
		}
		return err;
	}
	case CM_CFG_STRLIST: {
		const struct cm_cfg_strlist *l = dst;

		if (!l->n)
			return cm_buf_puts(b, " []\n");
		err = cm_buf_puts(b, "\n");
		for (size_t i = 0; i < l->n && !err; i++) {
			err = put_indent(b, ind + 2);
			err = err ? err : cm_buf_puts(b, "- ");
			err = err ? err : put_string(b, l->v[i] ? l->v[i] : "");
			err = err ? err : cm_buf_puts(b, "\n");
		}
		return err;
	}
	default:
		err = cm_buf_puts(b, " ");
		err = err ? err : put_scalar(b, f, dst);
		return err ? err : cm_buf_puts(b, "\n");
	}
}

/* Fields at indentation ind. For a list item, the first line starts with "- " two columns to
 * the left. Unset strings are left out, so that the output loads back to the same values. */
static int dump_fields(struct cm_buf *b, const struct cm_cfg_schema *schema, const void *obj,
                       unsigned ind, bool item)
{
	bool first = true;
	int err = 0;

	for (size_t i = 0; i < schema->nfields && !err; i++) {
		const struct cm_cfg_field *f = &schema->fields[i];
		const char *dst = (const char *)obj + f->offset;

		if (!text_of(f, dst))
			continue;
		if (item && first)
			err = put_indent(b, ind - 2);
		else
			err = put_indent(b, ind);
		err = err ? err : cm_buf_puts(b, item && first ? "- " : "");
		err = err ? err : cm_buf_printf(b, "%s:", f->key);
		err = err ? err : dump_value(b, f, dst, ind);
		first = false;
	}
	return err;
}

int cm_cfg_dump(const struct cm_cfg_schema *schema, const void *obj, struct cm_buf *out)
{
	size_t start = out->len;
	int err;

	err = has_output(schema, obj) ? dump_fields(out, schema, obj, 0, false)
	                              : cm_buf_puts(out, "{}\n");
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}

/* --- Markdown reference ---------------------------------------------------------------------- */

/* A table cell: '|' would end it and a newline the row. */
static int put_cell(struct cm_buf *b, const char *s)
{
	int err = 0;

	for (; *s && !err; s++) {
		if (*s == '|')
			err = cm_buf_puts(b, "\\|");
		else
			err = cm_buf_append(b, *s == '\n' ? " " : s, 1);
	}
	return err;
}

static int put_type(struct cm_buf *b, const struct cm_cfg_field *f)
{
	bool bounds = f->max > f->min;
	char lo[32], hi[32];
	int err;

	switch (f->type) {
	case CM_CFG_INT:
		if (bounds)
			return cm_buf_printf(b, "integer (%lld..%lld)", f->min, f->max);
		break;
	case CM_CFG_DURATION:
	case CM_CFG_SIZE:
		if (!bounds)
			break;
		if (f->type == CM_CFG_DURATION) {
			cm_cfg__format_duration(f->min < 0 ? 0 : (uint64_t)f->min, lo);
			cm_cfg__format_duration((uint64_t)f->max, hi);
		} else {
			cm_cfg__format_size(f->min < 0 ? 0 : (uint64_t)f->min, lo);
			cm_cfg__format_size((uint64_t)f->max, hi);
		}
		return cm_buf_printf(b, "%s (%s..%s)", cm_cfg__type_name(f->type), lo, hi);
	case CM_CFG_ENUM:
		err = cm_buf_puts(b, "one of");
		for (size_t i = 0; !err && f->values && f->values[i]; i++) {
			err = cm_buf_puts(b, i ? ", " : " ");
			err = err ? err : put_cell(b, f->values[i]);
		}
		return err;
	default:
		break;
	}
	return cm_buf_puts(b, cm_cfg__type_name(f->type));
}

static int put_default(struct cm_buf *b, const struct cm_cfg_field *f)
{
	int err;

	if (f->flags & CM_CFG_REQUIRED)
		return cm_buf_puts(b, "required");
	if (!f->def || f->type == CM_CFG_SECTION)
		return 0;
	if (!*f->def)
		return cm_buf_puts(b, "`\"\"`");
	err = cm_buf_puts(b, "`");
	err = err ? err : put_cell(b, f->def);
	return err ? err : cm_buf_puts(b, "`");
}

/* Rows for schema's fields, their keys prefixed with path->data (path is restored). */
static int describe(const struct cm_cfg_schema *schema, struct cm_buf *path, struct cm_buf *b)
{
	size_t mark = path->len;
	int err = 0;

	for (size_t i = 0; i < schema->nfields && !err; i++) {
		const struct cm_cfg_field *f = &schema->fields[i];

		err = cm_buf_printf(path, "%s%s", mark ? "." : "", f->key);
		err = err ? err : cm_buf_puts(b, "| `");
		err = err ? err : put_cell(b, path->data);
		err = err ? err : cm_buf_puts(b, "` | ");
		err = err ? err : put_type(b, f);
		err = err ? err : cm_buf_puts(b, " | ");
		err = err ? err : put_default(b, f);
		err = err ? err : cm_buf_puts(b, " | ");
		err = err ? err : put_cell(b, f->doc ? f->doc : "");
		if (!err && (f->flags & CM_CFG_RELOAD))
			err = cm_buf_puts(b, f->doc ? " (reloadable)" : "(reloadable)");
		err = err ? err : cm_buf_puts(b, " |\n");
		if (!err && f->type == CM_CFG_LIST)
			err = cm_buf_puts(path, "[]");
		if (!err && (f->type == CM_CFG_SECTION || f->type == CM_CFG_LIST))
			err = describe(f->sub, path, b);
		path->len = mark;
		if (path->data)
			path->data[mark] = '\0';
	}
	return err;
}

int cm_cfg_describe(const struct cm_cfg_schema *schema, struct cm_buf *out)
{
	size_t start = out->len;
	struct cm_buf path;
	int err;

	cm_buf_init(&path, 0);
	err = describe(schema, &path, out);
	cm_buf_free(&path);
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}
