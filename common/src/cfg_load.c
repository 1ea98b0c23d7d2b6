/* cfg_load.c - walk a parsed document along a schema: keys, sections, lists, defaults, hooks. */
#include "cfg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void load_map(struct cfg_loader *ld, const struct cm_cfg_schema *schema, void *obj,
                     const struct cfg_node *map, unsigned long line);

static bool key_is(const struct cfg_node *key, const char *name)
{
	size_t len = strlen(name);

	return key->len == len && memcmp(key->text, name, len) == 0;
}

static const struct cm_cfg_field *find_field(const struct cm_cfg_schema *schema,
                                             const struct cfg_node *key, size_t *idx)
{
	for (size_t i = 0; i < schema->nfields; i++) {
		if (key_is(key, schema->fields[i].key)) {
			*idx = i;
			return &schema->fields[i];
		}
	}
	return NULL;
}

/* Levenshtein distance, for "did you mean". Long keys are never close to anything. */
static size_t distance(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t row[65];

	if (alen > 64 || blen > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= blen; j++)
		row[j] = j;
	for (size_t i = 1; i <= alen; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[blen];
}

/* The known key closest to an unknown one, if it is a plausible typo of it. */
static const char *suggest(const struct cm_cfg_schema *schema, const struct cfg_node *key)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < schema->nfields; i++) {
		const char *k = schema->fields[i].key;
		size_t klen = strlen(k);
		size_t d = distance(key->text, key->len, k, klen);

		/* "x" is two edits from "ip" but is not a typo of it. */
		if (d < bestd && d < klen) {
			best = k;
			bestd = d;
		}
	}
	return best;
}

static void load_value(struct cfg_loader *ld, const struct cm_cfg_field *f, void *dst,
                       const struct cfg_node *val, unsigned long keyline);

static void load_strlist(struct cfg_loader *ld, struct cm_cfg_strlist *l,
                         const struct cfg_node *val)
{
	if (cm_cfg__node_is_null(val))
		return;
	if (val->kind != CFG_SEQ) {
		cm_cfg__error(ld, val->line, "expected %s", cm_cfg__type_noun(CM_CFG_STRLIST));
		return;
	}
	if (val->n == 0)
		return;
	l->v = calloc(val->n, sizeof(*l->v));
	if (!l->v) {
		ld->err = -ENOMEM;
		return;
	}
	l->n = val->n;
	for (size_t i = 0; i < val->n && !cm_cfg__stop(ld); i++) {
		size_t mark = cm_cfg__path_push_index(ld, i);

		if (!ld->err)
			cm_cfg__scalar_text(ld, val->kids[i], "a string", &l->v[i]);
		cm_cfg__path_pop(ld, mark);
	}
}

static void load_list(struct cfg_loader *ld, const struct cm_cfg_field *f, struct cm_cfg_list *l,
                      const struct cfg_node *val)
{
	size_t size = f->sub->size;

	if (cm_cfg__node_is_null(val))
		return;
	if (val->kind != CFG_SEQ) {
		cm_cfg__error(ld, val->line, "expected %s", cm_cfg__type_noun(CM_CFG_LIST));
		return;
	}
	if (val->n == 0)
		return;
	l->items = calloc(val->n, size ? size : 1);
	if (!l->items) {
		ld->err = -ENOMEM;
		return;
	}
	/* Count the items now: they are zeroed, so cm_cfg_free() copes with a partial load. */
	l->n = val->n;
	for (size_t i = 0; i < val->n && !cm_cfg__stop(ld); i++) {
		const struct cfg_node *item = val->kids[i];
		size_t mark = cm_cfg__path_push_index(ld, i);

		if (ld->err)
			break;
		if (item->kind == CFG_MAP)
			load_map(ld, f->sub, (char *)l->items + i * size, item, item->line);
		else
			cm_cfg__error(ld, item->line, "expected a mapping");
		cm_cfg__path_pop(ld, mark);
	}
}

static void load_value(struct cfg_loader *ld, const struct cm_cfg_field *f, void *dst,
                       const struct cfg_node *val, unsigned long keyline)
{
	switch (f->type) {
	case CM_CFG_SECTION:
		/* "section:" with nothing under it (all children commented out) is an empty one. */
		if (cm_cfg__node_is_null(val))
			load_map(ld, f->sub, dst, NULL, keyline);
		else if (val->kind == CFG_MAP)
			load_map(ld, f->sub, dst, val, keyline);
		else
			cm_cfg__error(ld, val->line, "expected %s", cm_cfg__type_noun(f->type));
		break;
	case CM_CFG_LIST:
		load_list(ld, f, dst, val);
		break;
	case CM_CFG_STRLIST:
		load_strlist(ld, dst, val);
		break;
	default:
		cm_cfg__field_load_scalar(ld, f, dst, val);
		break;
	}
}

/* A default is loaded by the same code as a written value. Scalars are taken literally (so ""
 * is an empty string); STRLIST and LIST defaults are YAML flow sequences such as "[a, b]". */
static void load_default(struct cfg_loader *ld, const struct cm_cfg_field *f, void *dst)
{
	const char *saved = ld->def;

	ld->def = f->def;
	if (f->type == CM_CFG_STRLIST || f->type == CM_CFG_LIST) {
		struct cfg_yaml_error yerr;
		struct cfg_node *root = NULL;
		int err = cm_cfg__yaml_parse(f->def, strlen(f->def), &root, &yerr);

		if (err == -ENOMEM)
			ld->err = err;
		else if (err)
			cm_cfg__error(ld, 0, "%s", yerr.msg);
		else if (root)
			load_value(ld, f, dst, root, 0);
		cm_cfg__node_free(root);
	} else if (f->type != CM_CFG_SECTION) {
		struct cfg_node n = {
		    .kind = CFG_SCALAR,
		    .text = (char *)f->def,
		    .len = strlen(f->def),
		};

		cm_cfg__field_load_scalar(ld, f, dst, &n);
	}
	ld->def = saved;
}

/* Load the mapping map (NULL when absent: defaults only) into obj. line is where the mapping is
 * introduced: its key, its list item, or 1 for the top level; missing keys are reported there. */
static void load_map(struct cfg_loader *ld, const struct cm_cfg_schema *schema, void *obj,
                     const struct cfg_node *map, unsigned long line)
{
	const struct cfg_node **seen = NULL;
	size_t before = ld->nerrs;

	if (schema->nfields) {
		seen = calloc(schema->nfields, sizeof(*seen));
		if (!seen) {
			ld->err = -ENOMEM;
			return;
		}
	}
	/* Written keys first, in file order, so that messages follow the file. */
	for (size_t i = 0; map && i + 1 < map->n && !cm_cfg__stop(ld); i += 2) {
		const struct cfg_node *key = map->kids[i], *val = map->kids[i + 1];
		size_t idx = 0;
		const struct cm_cfg_field *f = find_field(schema, key, &idx);
		size_t mark = cm_cfg__path_push_key(ld, key->text, key->len);
		const char *hint;

		if (ld->err)
			break;
		if (!f) {
			hint = suggest(schema, key);
			if (hint)
				cm_cfg__error(ld, key->line, "unknown key (did you mean \"%s\"?)",
				              hint);
			else
				cm_cfg__error(ld, key->line, "unknown key");
		} else if (seen[idx]) {
			cm_cfg__error(ld, key->line, "duplicate key");
		} else {
			seen[idx] = key;
			load_value(ld, f, (char *)obj + f->offset, val, key->line);
		}
		cm_cfg__path_pop(ld, mark);
	}
	for (size_t i = 0; i < schema->nfields && !cm_cfg__stop(ld); i++) {
		const struct cm_cfg_field *f = &schema->fields[i];
		size_t mark;

		if (seen[i])
			continue;
		mark = cm_cfg__path_push_key(ld, f->key, strlen(f->key));
		if (ld->err)
			break;
		if (f->flags & CM_CFG_REQUIRED)
			cm_cfg__error(ld, line, "required");
		else if (f->type == CM_CFG_SECTION)
			load_map(ld, f->sub, (char *)obj + f->offset, NULL, line);
		else if (f->def)
			load_default(ld, f, (char *)obj + f->offset);
		cm_cfg__path_pop(ld, mark);
	}
	/* Cross-field checks only make sense on fields that all loaded. */
	if (!cm_cfg__stop(ld) && ld->nerrs == before && schema->validate) {
		struct cm_cfg_check chk = {.ld = ld, .map = map, .line = line};

		schema->validate(obj, &chk);
	}
	free(seen);
}

/* Line of the (possibly dotted) key under map, or fallback if it was not written. */
static unsigned long key_line(const struct cfg_node *map, const char *key, unsigned long fallback)
{
	unsigned long line = fallback;

	while (map && map->kind == CFG_MAP && *key) {
		const char *dot = strchr(key, '.');
		size_t len = dot ? (size_t)(dot - key) : strlen(key);
		const struct cfg_node *next = NULL;

		for (size_t i = 0; i + 1 < map->n; i += 2) {
			const struct cfg_node *k = map->kids[i];

			if (k->len == len && memcmp(k->text, key, len) == 0) {
				line = k->line;
				next = map->kids[i + 1];
				break;
			}
		}
		if (!next || !dot)
			break;
		map = next;
		key = dot + 1;
	}
	return line;
}

void cm_cfg_check_error(struct cm_cfg_check *chk, const char *key, const char *fmt, ...)
{
	struct cfg_loader *ld = chk->ld;
	unsigned long line = chk->line;
	size_t mark = ld->path.len;
	va_list ap;

	if (key && *key) {
		mark = cm_cfg__path_push_key(ld, key, strlen(key));
		line = key_line(chk->map, key, chk->line);
	}
	va_start(ap, fmt);
	cm_cfg__verror(ld, line, fmt, ap);
	va_end(ap);
	cm_cfg__path_pop(ld, mark);
}

int cm_cfg_load_buffer(const struct cm_cfg_schema *schema, void *out, const char *name,
                       const char *text, size_t len, struct cm_cfg_errors *errs)
{
	struct cfg_loader ld = {.name = name, .errs = errs};
	struct cfg_yaml_error yerr;
	struct cfg_node *root = NULL;
	int err;

	memset(out, 0, schema->size);
	cm_buf_init(&ld.path, 0);
	err = cm_cfg__yaml_parse(text, len, &root, &yerr);
	if (err == -ENOMEM)
		return err;
	if (err)
		cm_cfg__error(&ld, yerr.line, "%s", yerr.msg);
	else if (root && root->kind != CFG_MAP && !cm_cfg__node_is_null(root))
		cm_cfg__error(&ld, root->line, "expected a mapping at the top level");
	else
		load_map(&ld, schema, out, root && root->kind == CFG_MAP ? root : NULL, 1);
	cm_cfg__node_free(root);
	cm_buf_free(&ld.path);
	if (ld.err || ld.nerrs) {
		cm_cfg_free(schema, out);
		return ld.err ? ld.err : -EINVAL;
	}
	return 0;
}

/* Read a whole file (at most CFG_MAX_FILE bytes) into b. 0 or -errno. */
static int read_file(const char *path, struct cm_buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int err = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (b->len > CFG_MAX_FILE) {
			err = -EFBIG;
			break;
		}
		err = cm_buf_reserve(b, 65536);
		if (err)
			break;
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
	close(fd);
	return err;
}

int cm_cfg_load_file(const struct cm_cfg_schema *schema, void *out, const char *path,
                     struct cm_cfg_errors *errs)
{
	struct cm_buf b;
	int err;

	memset(out, 0, schema->size);
	cm_buf_init(&b, 0);
	err = read_file(path, &b);
	if (err == -ENOMEM) {
		cm_buf_free(&b);
		return err;
	}
	if (err) {
		struct cfg_loader ld = {.name = path, .errs = errs};

		cm_buf_free(&b);
		cm_cfg__error_raw(&ld, "cannot read: %s", strerror(-err));
		return ld.err ? ld.err : -EINVAL;
	}
	err = cm_cfg_load_buffer(schema, out, path, b.data, b.len, errs);
	cm_buf_free(&b);
	return err;
}

int cm_cfg_load_defaults(const struct cm_cfg_schema *schema, void *out, struct cm_cfg_errors *errs)
{
	return cm_cfg_load_buffer(schema, out, "<defaults>", "", 0, errs);
}

void cm_cfg_free(const struct cm_cfg_schema *schema, void *obj)
{
	if (!schema || !obj)
		return;
	for (size_t i = 0; i < schema->nfields; i++)
		cm_cfg__field_free(&schema->fields[i], (char *)obj + schema->fields[i].offset);
	memset(obj, 0, schema->size);
}
