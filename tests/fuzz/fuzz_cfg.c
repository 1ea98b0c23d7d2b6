/* fuzz_cfg.c - libFuzzer target: the configuration loader on arbitrary YAML.
 *
 * The input is loaded against a schema with every field type, a nested section, a list of
 * mappings with a section inside, and validate hooks. Beyond "no crash, no leak", it checks the
 * loader's promises: a failed load leaves the struct zeroed and says why; a successful load
 * dumps to YAML that loads back to the same dump. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct f_inner {
	bool on;
	struct cm_cfg_strlist names;
};

struct f_item {
	char *id;
	long long n;
	struct f_inner inner;
	struct cm_secret key;
};

struct f_sec {
	uint64_t wait;
	struct f_inner inner;
	char *file;
};

struct f_cfg {
	char *s;
	long long i;
	bool b;
	uint64_t d;
	uint64_t z;
	int e;
	struct cm_cfg_addr a;
	char *p;
	char *f;
	struct cm_secret k;
	struct cm_cfg_strlist l;
	struct f_sec sec;
	struct cm_cfg_list items;
	long long req;
};

static const char *const colours[] = {"red", "green", "blue", "on", "", NULL};

static const struct cm_cfg_field inner_fields[] = {
    {.key = "on", .type = CM_CFG_BOOL, .offset = offsetof(struct f_inner, on), .def = "off"},
    {.key = "names",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct f_inner, names),
     .def = "[\"x\", y]"},
};

static const struct cm_cfg_schema inner_schema = {
    .name = "inner",
    .size = sizeof(struct f_inner),
    .fields = inner_fields,
    .nfields = sizeof(inner_fields) / sizeof(inner_fields[0]),
};

static void item_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct f_item *it = obj;

	if (it->inner.on && it->n < 0)
		cm_cfg_check_error(chk, "inner.on", "needs n >= 0, not %lld", it->n);
	if (it->key.data && it->key.len < 2)
		cm_cfg_check_error(chk, "key", "too short");
}

static const struct cm_cfg_field item_fields[] = {
    {.key = "id",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct f_item, id),
     .flags = CM_CFG_REQUIRED},
    {.key = "n", .type = CM_CFG_INT, .offset = offsetof(struct f_item, n), .def = "-1"},
    {.key = "inner",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct f_item, inner),
     .sub = &inner_schema},
    {.key = "key", .type = CM_CFG_SECRET, .offset = offsetof(struct f_item, key)},
};

static const struct cm_cfg_schema item_schema = {
    .name = "item",
    .size = sizeof(struct f_item),
    .fields = item_fields,
    .nfields = sizeof(item_fields) / sizeof(item_fields[0]),
    .validate = item_validate,
};

static const struct cm_cfg_field sec_fields[] = {
    {.key = "wait",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct f_sec, wait),
     .def = "1m",
     .min = 0,
     .max = 86400000},
    {.key = "inner",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct f_sec, inner),
     .sub = &inner_schema},
    {.key = "file", .type = CM_CFG_FILE, .offset = offsetof(struct f_sec, file)},
};

static const struct cm_cfg_schema sec_schema = {
    .name = "sec",
    .size = sizeof(struct f_sec),
    .fields = sec_fields,
    .nfields = sizeof(sec_fields) / sizeof(sec_fields[0]),
};

static void top_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct f_cfg *c = obj;

	if (c->b && c->items.n == 0)
		cm_cfg_check_error(chk, "items", "required when b is set");
	if (c->z && c->d && c->z < c->d)
		cm_cfg_check_error(chk, NULL, "z must be at least d (%llu)",
		                   (unsigned long long)c->d);
}

static const struct cm_cfg_field top_fields[] = {
    {.key = "s", .type = CM_CFG_STRING, .offset = offsetof(struct f_cfg, s), .def = "str"},
    {.key = "i",
     .type = CM_CFG_INT,
     .offset = offsetof(struct f_cfg, i),
     .def = "5",
     .min = -1000,
     .max = 1000},
    {.key = "b", .type = CM_CFG_BOOL, .offset = offsetof(struct f_cfg, b)},
    {.key = "d", .type = CM_CFG_DURATION, .offset = offsetof(struct f_cfg, d), .def = "250ms"},
    {.key = "z", .type = CM_CFG_SIZE, .offset = offsetof(struct f_cfg, z), .def = "1k"},
    {.key = "e",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct f_cfg, e),
     .def = "green",
     .values = colours},
    {.key = "a", .type = CM_CFG_ADDR, .offset = offsetof(struct f_cfg, a)},
    {.key = "p", .type = CM_CFG_PATH, .offset = offsetof(struct f_cfg, p), .def = "/tmp"},
    {.key = "f", .type = CM_CFG_FILE, .offset = offsetof(struct f_cfg, f)},
    {.key = "k", .type = CM_CFG_SECRET, .offset = offsetof(struct f_cfg, k)},
    {.key = "l", .type = CM_CFG_STRLIST, .offset = offsetof(struct f_cfg, l)},
    {.key = "sec",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct f_cfg, sec),
     .sub = &sec_schema},
    {.key = "items",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct f_cfg, items),
     .sub = &item_schema},
    {.key = "req",
     .type = CM_CFG_INT,
     .offset = offsetof(struct f_cfg, req),
     .flags = CM_CFG_REQUIRED},
};

static const struct cm_cfg_schema top_schema = {
    .name = "fuzz",
    .size = sizeof(struct f_cfg),
    .fields = top_fields,
    .nfields = sizeof(top_fields) / sizeof(top_fields[0]),
    .validate = top_validate,
};

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *u = p;

	for (size_t i = 0; i < n; i++) {
		if (u[i])
			return false;
	}
	return true;
}

/* Load the dump of c again and compare the dumps: what --print-config shows must be a
 * configuration that means the same. */
static void check_round_trip(const struct f_cfg *c)
{
	struct cm_cfg_errors errs;
	struct cm_buf d1, d2;
	struct f_cfg c2;

	cm_buf_init(&d1, 0);
	cm_buf_init(&d2, 0);
	cm_cfg_errors_init(&errs);
	if (cm_cfg_dump(&top_schema, c, &d1) != 0)
		abort();
	if (cm_cfg_load_buffer(&top_schema, &c2, "dump", d1.data, d1.len, &errs) != 0) {
		fprintf(stderr, "dump does not load:\n%s\n", d1.data);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "  %s\n", errs.msgs[i]);
		abort();
	}
	if (cm_cfg_dump(&top_schema, &c2, &d2) != 0 || strcmp(d1.data, d2.data) != 0) {
		fprintf(stderr, "dump changed on reload:\n%s\n---\n%s\n", d1.data, d2.data);
		abort();
	}
	cm_cfg_free(&top_schema, &c2);
	cm_cfg_errors_free(&errs);
	cm_buf_free(&d1);
	cm_buf_free(&d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_cfg_errors errs;
	struct f_cfg c;
	int r;

	cm_cfg_errors_init(&errs);
	r = cm_cfg_load_buffer(&top_schema, &c, "fuzz.yaml", (const char *)data, size, &errs);
	if (r == 0) {
		if (errs.n)
			abort();
		check_round_trip(&c);
		cm_cfg_free(&top_schema, &c);
	} else if (r != -EINVAL || errs.n == 0 || !all_zero(&c, sizeof(c))) {
		abort();
	}
	for (size_t i = 0; i < errs.n; i++) {
		/* Every message names the file. */
		if (strncmp(errs.msgs[i], "fuzz.yaml", 9) != 0 &&
		    strncmp(errs.msgs[i], "<default>", 9))
			abort();
	}
	cm_cfg_errors_free(&errs);
	return 0;
}
