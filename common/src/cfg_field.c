/* cfg_field.c - store one scalar value into a field of its type, with the message when it fails. */
#include "cfg_int.h"
#include "cm/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cm_cfg__type_noun(enum cm_cfg_type t)
{
	switch (t) {
	case CM_CFG_STRING:
		return "a string";
	case CM_CFG_INT:
		return "an integer";
	case CM_CFG_BOOL:
		return "a boolean (true/false, yes/no, on/off)";
	case CM_CFG_DURATION:
		return "a duration such as 250ms, 30s, 5m, 2h or 1d";
	case CM_CFG_SIZE:
		return "a size such as 512, 64k, 16M or 1G";
	case CM_CFG_ENUM:
		return "one of the accepted names";
	case CM_CFG_ADDR:
		return "an address (IP:PORT or [IPv6]:PORT)";
	case CM_CFG_PATH:
		return "a path";
	case CM_CFG_FILE:
		return "a file name";
	case CM_CFG_SECRET:
		return "the name of a file holding the secret";
	case CM_CFG_STRLIST:
		return "a sequence of strings";
	case CM_CFG_SECTION:
		return "a mapping";
	case CM_CFG_LIST:
		return "a sequence of mappings";
	}
	return "a value";
}

const char *cm_cfg__type_name(enum cm_cfg_type t)
{
	static const char *const names[] = {
	    [CM_CFG_STRING] = "string",       [CM_CFG_INT] = "integer",
	    [CM_CFG_BOOL] = "boolean",        [CM_CFG_DURATION] = "duration",
	    [CM_CFG_SIZE] = "size",           [CM_CFG_ENUM] = "enum",
	    [CM_CFG_ADDR] = "address",        [CM_CFG_PATH] = "path",
	    [CM_CFG_FILE] = "file",           [CM_CFG_SECRET] = "secret file",
	    [CM_CFG_STRLIST] = "string list", [CM_CFG_SECTION] = "section",
	    [CM_CFG_LIST] = "list",
	};

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Quote a value as written, for a message: at most 200 bytes, control characters replaced, so
 * that a hostile file cannot forge log lines. */
static const char *show(const char *s, char buf[208])
{
	size_t i;

	for (i = 0; s[i] && i < 200; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

int cm_cfg__scalar_text(struct cfg_loader *ld, const struct cfg_node *val, const char *expected,
                        char **out)
{
	char why[CM_ERR_MAX];
	int err;

	if (val->kind != CFG_SCALAR || cm_cfg__node_is_null(val)) {
		cm_cfg__error(ld, val->line, "expected %s", expected);
		return -1;
	}
	if (strlen(val->text) != val->len) {
		cm_cfg__error(ld, val->line, "NUL characters are not allowed");
		return -1;
	}
	err = cm_cfg__expand(val->text, val->len, out, why, sizeof(why));
	if (err == -ENOMEM)
		ld->err = err;
	else if (err)
		cm_cfg__error(ld, val->line, "%s", why);
	return err ? -1 : 0;
}

/* "a, b, c" for an enum's accepted names. */
static int enum_names(const struct cm_cfg_field *f, struct cm_buf *b)
{
	int err = cm_buf_puts(b, "one of: ");

	for (size_t i = 0; !err && f->values && f->values[i]; i++)
		err = cm_buf_printf(b, "%s%s", i ? ", " : "", f->values[i]);
	return err;
}

static const char *secret_reason(int err)
{
	switch (err) {
	case -EFBIG:
		return "larger than 64 KiB";
	case -ENODATA:
		return "the file is empty";
	case -EINVAL:
		return "not a regular file";
	default:
		return strerror(-err);
	}
}

/* FILE: must name a readable regular file now, so that a typo fails at load and not when the
 * file is first needed (perhaps hours later, on a reload). */
static const char *file_problem(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return strerror(errno);
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	if (access(path, R_OK) != 0)
		return strerror(errno);
	return NULL;
}

static bool out_of_range(const struct cm_cfg_field *f, long long v)
{
	return f->max > f->min && (v < f->min || v > f->max);
}

static void load_int(struct cfg_loader *ld, const struct cm_cfg_field *f, long long *dst,
                     const char *text, unsigned long line)
{
	char shown[208];
	long long v;
	int err = cm_cfg__parse_int(text, &v);

	if (err == -EINVAL)
		cm_cfg__error(ld, line, "expected an integer, got \"%s\"", show(text, shown));
	else if (err && f->max > f->min)
		cm_cfg__error(ld, line, "%s is out of range (%lld..%lld)", show(text, shown),
		              f->min, f->max);
	else if (err)
		cm_cfg__error(ld, line, "%s is too large", show(text, shown));
	else if (out_of_range(f, v))
		cm_cfg__error(ld, line, "%lld is out of range (%lld..%lld)", v, f->min, f->max);
	else
		*dst = v;
}

/* DURATION and SIZE: the same dance with their own syntax and units. */
static void load_amount(struct cfg_loader *ld, const struct cm_cfg_field *f, uint64_t *dst,
                        const char *text, unsigned long line)
{
	bool dur = f->type == CM_CFG_DURATION;
	void (*fmt)(uint64_t, char[32]) = dur ? cm_cfg__format_duration : cm_cfg__format_size;
	char shown[208], lo[32], hi[32];
	uint64_t v;
	int err = dur ? cm_cfg__parse_duration(text, &v) : cm_cfg__parse_size(text, &v);

	if (f->max > f->min) {
		fmt(f->min < 0 ? 0 : (uint64_t)f->min, lo);
		fmt((uint64_t)f->max, hi);
	}
	if (err == -EINVAL)
		cm_cfg__error(ld, line, "expected %s, got \"%s\"", cm_cfg__type_noun(f->type),
		              show(text, shown));
	else if (err && f->max > f->min)
		cm_cfg__error(ld, line, "%s is out of range (%s..%s)", show(text, shown), lo, hi);
	else if (err)
		cm_cfg__error(ld, line, "%s is too large", show(text, shown));
	else if (out_of_range(f, (long long)v))
		cm_cfg__error(ld, line, "%s is out of range (%s..%s)", show(text, shown), lo, hi);
	else
		*dst = v;
}

static void load_enum(struct cfg_loader *ld, const struct cm_cfg_field *f, int *dst,
                      const char *text, const char *names, unsigned long line)
{
	char shown[208];

	for (int i = 0; f->values && f->values[i]; i++) {
		if (strcmp(text, f->values[i]) == 0) {
			*dst = i;
			return;
		}
	}
	cm_cfg__error(ld, line, "expected %s; got \"%s\"", names, show(text, shown));
}

/* Takes text over. */
static void load_addr(struct cfg_loader *ld, struct cm_cfg_addr *dst, char *text,
                      unsigned long line)
{
	struct cm_cfg_addr a = {0};
	char why[CM_ERR_MAX];
	char shown[208];

	if (cm_cfg_parse_addr(text, &a, why, sizeof(why)) != 0) {
		cm_cfg__error(ld, line, "invalid address \"%s\": %s", show(text, shown), why);
		free(text);
		return;
	}
	a.text = text;
	*dst = a;
}

/* Takes text over. */
static void load_secret(struct cfg_loader *ld, struct cm_secret *s, char *text, unsigned long line)
{
	char shown[208];
	int err;

	s->path = text;
	err = cm_secret_load(s);
	if (err == -ENOMEM)
		ld->err = err;
	else if (err)
		cm_cfg__error(ld, line, "cannot read secret %s: %s", show(text, shown),
		              secret_reason(err));
}

void cm_cfg__field_load_scalar(struct cfg_loader *ld, const struct cm_cfg_field *f, void *dst,
                               const struct cfg_node *val)
{
	struct cm_buf names;
	const char *expected = cm_cfg__type_noun(f->type);
	const char *problem;
	char shown[208];
	char *text = NULL;
	bool b;

	cm_buf_init(&names, 0);
	if (f->type == CM_CFG_ENUM) {
		if (enum_names(f, &names)) {
			ld->err = -ENOMEM;
			goto out;
		}
		expected = names.data;
	}
	if (cm_cfg__scalar_text(ld, val, expected, &text))
		goto out;
	switch (f->type) {
	case CM_CFG_STRING:
	case CM_CFG_PATH:
		*(char **)dst = text;
		text = NULL;
		break;
	case CM_CFG_FILE:
		problem = file_problem(text);
		if (problem) {
			cm_cfg__error(ld, val->line, "cannot read %s: %s", show(text, shown),
			              problem);
			break;
		}
		*(char **)dst = text;
		text = NULL;
		break;
	case CM_CFG_SECRET:
		load_secret(ld, dst, text, val->line);
		text = NULL;
		break;
	case CM_CFG_ADDR:
		load_addr(ld, dst, text, val->line);
		text = NULL;
		break;
	case CM_CFG_INT:
		load_int(ld, f, dst, text, val->line);
		break;
	case CM_CFG_BOOL:
		if (cm_cfg__parse_bool(text, &b) == 0)
			*(bool *)dst = b;
		else
			cm_cfg__error(ld, val->line, "expected %s, got \"%s\"", expected,
			              show(text, shown));
		break;
	case CM_CFG_DURATION:
	case CM_CFG_SIZE:
		load_amount(ld, f, dst, text, val->line);
		break;
	case CM_CFG_ENUM:
		load_enum(ld, f, dst, text, expected, val->line);
		break;
	case CM_CFG_STRLIST:
	case CM_CFG_SECTION:
	case CM_CFG_LIST:
		/* Containers are loaded by cfg_load.c; reaching here is a bug in the caller. */
		cm_cfg__error(ld, val->line, "expected %s", expected);
		break;
	}
out:
	free(text);
	cm_buf_free(&names);
}

void cm_cfg__field_free(const struct cm_cfg_field *f, void *dst)
{
	switch (f->type) {
	case CM_CFG_STRING:
	case CM_CFG_PATH:
	case CM_CFG_FILE:
		free(*(char **)dst);
		break;
	case CM_CFG_ADDR:
		free(((struct cm_cfg_addr *)dst)->text);
		break;
	case CM_CFG_SECRET:
		cm_secret_free(dst);
		break;
	case CM_CFG_STRLIST: {
		struct cm_cfg_strlist *l = dst;

		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		break;
	}
	case CM_CFG_SECTION:
		cm_cfg_free(f->sub, dst);
		break;
	case CM_CFG_LIST: {
		struct cm_cfg_list *l = dst;

		for (size_t i = 0; i < l->n; i++)
			cm_cfg_free(f->sub, (char *)l->items + i * f->sub->size);
		free(l->items);
		break;
	}
	case CM_CFG_INT:
	case CM_CFG_BOOL:
	case CM_CFG_DURATION:
	case CM_CFG_SIZE:
	case CM_CFG_ENUM:
		break;
	}
}

bool cm_cfg_strlist_has(const struct cm_cfg_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}
