/* test_cfg.c - cm_cfg: every type, every error class with its exact message, env expansion,
 * defaults, validate hooks, secrets, dump/describe, and allocation failures. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/cfg.h"
#include "cm/err.h"
#include "common/src/cfg_int.h"
#include "tests/support/alloc.h"

/* --- the schema under test: every type, a section, a list with a section-free item --------- */

struct t_tls {
	char *cert;
	struct cm_secret key;
	bool verify;
};

struct t_app {
	char *name;
	struct cm_secret key_file;
	long long weight;
	struct cm_cfg_strlist tags;
};

struct t_cfg {
	char *name;
	long long port;
	bool debug;
	uint64_t timeout;
	uint64_t max_size;
	int level;
	struct cm_cfg_addr listen;
	char *state_dir;
	char *ca_file;
	struct cm_secret token;
	struct cm_cfg_strlist hosts;
	struct t_tls tls;
	struct cm_cfg_list apps;
	long long count;
};

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};

static void tls_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct t_tls *t = obj;

	if (t->verify && !t->cert)
		cm_cfg_check_error(chk, "cert", "required when verify is on");
}

static const struct cm_cfg_field tls_fields[] = {
    {.key = "cert",
     .type = CM_CFG_FILE,
     .offset = offsetof(struct t_tls, cert),
     .flags = CM_CFG_RELOAD,
     .doc = "PEM certificate"},
    {.key = "key",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct t_tls, key),
     .doc = "private key"},
    {.key = "verify",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct t_tls, verify),
     .def = "false",
     .doc = "check peers | strictly"},
};

static const struct cm_cfg_schema tls_schema = {
    .name = "tls",
    .size = sizeof(struct t_tls),
    .fields = tls_fields,
    .nfields = sizeof(tls_fields) / sizeof(tls_fields[0]),
    .validate = tls_validate,
};

static void app_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct t_app *a = obj;

	if (a->weight == 0 && a->tags.n)
		cm_cfg_check_error(chk, "tags", "make no sense with weight %d", 0);
}

static const struct cm_cfg_field app_fields[] = {
    {.key = "name",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct t_app, name),
     .flags = CM_CFG_REQUIRED,
     .doc = "app name"},
    {.key = "key_file",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct t_app, key_file),
     .doc = "signing key"},
    {.key = "weight",
     .type = CM_CFG_INT,
     .offset = offsetof(struct t_app, weight),
     .def = "1",
     .min = 0,
     .max = 100,
     .doc = "share of traffic"},
    {.key = "tags", .type = CM_CFG_STRLIST, .offset = offsetof(struct t_app, tags)},
};

static const struct cm_cfg_schema app_schema = {
    .name = "app",
    .size = sizeof(struct t_app),
    .fields = app_fields,
    .nfields = sizeof(app_fields) / sizeof(app_fields[0]),
    .validate = app_validate,
};

static void top_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct t_cfg *c = obj;

	if (c->debug && c->port < 1024)
		cm_cfg_check_error(chk, "port", "must be 1024 or more when debug is on");
	if (c->tls.verify && c->count < 0)
		cm_cfg_check_error(chk, "tls.verify", "needs a count of 0 or more");
}

static const struct cm_cfg_field top_fields[] = {
    {.key = "name",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct t_cfg, name),
     .flags = CM_CFG_REQUIRED,
     .doc = "instance name"},
    {.key = "port",
     .type = CM_CFG_INT,
     .offset = offsetof(struct t_cfg, port),
     .def = "5222",
     .min = 1,
     .max = 65535,
     .doc = "TCP port"},
    {.key = "debug", .type = CM_CFG_BOOL, .offset = offsetof(struct t_cfg, debug), .def = "no"},
    {.key = "timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct t_cfg, timeout),
     .def = "30s",
     .min = 1,
     .max = 86400000},
    {.key = "max_size",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct t_cfg, max_size),
     .def = "64k",
     .min = 1,
     .max = 1 << 30},
    {.key = "level",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct t_cfg, level),
     .def = "info",
     .flags = CM_CFG_RELOAD,
     .values = levels,
     .doc = "log level"},
    {.key = "listen",
     .type = CM_CFG_ADDR,
     .offset = offsetof(struct t_cfg, listen),
     .def = "127.0.0.1:5222"},
    {.key = "state_dir",
     .type = CM_CFG_PATH,
     .offset = offsetof(struct t_cfg, state_dir),
     .def = "/var/lib/test"},
    {.key = "ca_file", .type = CM_CFG_FILE, .offset = offsetof(struct t_cfg, ca_file)},
    {.key = "token", .type = CM_CFG_SECRET, .offset = offsetof(struct t_cfg, token)},
    {.key = "hosts",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct t_cfg, hosts),
     .def = "[a.example, b.example]"},
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct t_cfg, tls),
     .sub = &tls_schema,
     .doc = "TLS"},
    {.key = "apps",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct t_cfg, apps),
     .sub = &app_schema,
     .doc = "applications"},
    {.key = "count", .type = CM_CFG_INT, .offset = offsetof(struct t_cfg, count)},
};

static const struct cm_cfg_schema top_schema = {
    .name = "test",
    .size = sizeof(struct t_cfg),
    .fields = top_fields,
    .nfields = sizeof(top_fields) / sizeof(top_fields[0]),
    .validate = top_validate,
};

/* --- fixtures -------------------------------------------------------------------------------- */

static char tdir[64]; /* a private directory with ca.pem, token, empty, big; exported as TDIR */

static void write_file(const char *name, const void *data, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	unlink(path);
}

static int setup(void **state)
{
	(void)state;
	strcpy(tdir, "/tmp/cfgtestXXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 28);
	write_file("token", "s3cret\r\n", 8);
	write_file("empty", "", 0);
	setenv("TDIR", tdir, 1);
	setenv("CFG_T_NAME", "alpha", 1);
	setenv("CFG_T_PORT", "8080", 1);
	unsetenv("CFG_T_UNSET");
	return 0;
}

static int teardown(void **state)
{
	static const char *const names[] = {"ca.pem", "token", "empty", "big", "sec", "noread"};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		remove_file(names[i]);
	rmdir(tdir);
	return 0;
}

/* --- helpers --------------------------------------------------------------------------------- */

static int load(const struct cm_cfg_schema *schema, void *out, const char *yaml,
                struct cm_cfg_errors *e)
{
	cm_cfg_errors_init(e);
	return cm_cfg_load_buffer(schema, out, "t.yaml", yaml, strlen(yaml), e);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *u = p;

	for (size_t i = 0; i < n; i++) {
		if (u[i])
			return false;
	}
	return true;
}

/* Load yaml into a schema and check that it fails with exactly the given messages (NULL-ended),
 * "@" in them standing for the fixture directory. */
static void expect_errors_in(const struct cm_cfg_schema *schema, const char *yaml, ...)
{
	unsigned char obj[1024];
	struct cm_cfg_errors e;
	const char *want;
	size_t i = 0;
	va_list ap;
	int r;

	assert_true(schema->size <= sizeof(obj));
	memset(obj, 0, sizeof(obj));
	r = load(schema, obj, yaml, &e);
	for (size_t j = 0; j < e.n; j++)
		print_message("  got: %s\n", e.msgs[j]);
	assert_int_equal(r, -EINVAL);
	assert_true(all_zero(obj, schema->size));
	va_start(ap, yaml);
	while ((want = va_arg(ap, const char *)) != NULL) {
		struct cm_buf exp;

		cm_buf_init(&exp, 0);
		for (const char *p = want; *p; p++) {
			if (*p == '@')
				assert_int_equal(cm_buf_puts(&exp, tdir), 0);
			else
				assert_int_equal(cm_buf_append(&exp, p, 1), 0);
		}
		assert_true(i < e.n);
		assert_string_equal(e.msgs[i], exp.data);
		cm_buf_free(&exp);
		i++;
	}
	va_end(ap);
	assert_int_equal(e.n, i);
	cm_cfg_errors_free(&e);
}

#define expect_errors(yaml, ...) expect_errors_in(&top_schema, yaml, __VA_ARGS__, NULL)

/* Load "name: x\n" + extra into c, expecting success. */
static void load_ok(struct t_cfg *c, const char *extra)
{
	struct cm_cfg_errors e;
	char yaml[1024];
	int r;

	snprintf(yaml, sizeof(yaml), "name: x\n%s", extra);
	r = load(&top_schema, c, yaml, &e);
	for (size_t j = 0; j < e.n; j++)
		print_message("  unexpected: %s\n", e.msgs[j]);
	assert_int_equal(r, 0);
	assert_int_equal(e.n, 0);
	cm_cfg_errors_free(&e);
}

/* --- loading: values, defaults, sections, lists ------------------------------------------- */

static const char full_yaml[] =
    "# every type\n"
    "name: demo\n"
    "port: 6000\n"
    "debug: true\n"
    "timeout: 90s\n"
    "max_size: 1048576\n"
    "level: debug\n"
    "listen: \"[::1]:5269\"\n"
    "ca_file: ${TDIR}/ca.pem\n"
    "token: ${TDIR}/token\n"
    "hosts: [x.example, \"with space\", \"$$pecial\", \"yes\", \"123\"]\n"
    "tls:\n"
    "  verify: false\n"
    "apps:\n"
    "  - name: a\n"
    "    key_file: ${TDIR}/token\n"
    "    weight: 3\n"
    "    tags: []\n"
    "  - name: b\n"
    "count: -7\n";

static void test_full(void **state)
{
	struct t_cfg c;
	struct cm_cfg_errors e;
	const struct sockaddr_in6 *sin6;
	const struct t_app *apps;
	char path[128];

	(void)state;
	assert_int_equal(load(&top_schema, &c, full_yaml, &e), 0);
	assert_int_equal(e.n, 0);
	assert_string_equal(c.name, "demo");
	assert_int_equal(c.port, 6000);
	assert_true(c.debug);
	assert_int_equal(c.timeout, 90000);
	assert_int_equal(c.max_size, 1048576);
	assert_int_equal(c.level, 3);
	assert_string_equal(c.listen.text, "[::1]:5269");
	assert_int_equal(c.listen.port, 5269);
	assert_int_equal(c.listen.salen, sizeof(struct sockaddr_in6));
	sin6 = (const struct sockaddr_in6 *)&c.listen.sa;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 5269);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_string_equal(c.state_dir, "/var/lib/test");
	snprintf(path, sizeof(path), "%s/ca.pem", tdir);
	assert_string_equal(c.ca_file, path);
	snprintf(path, sizeof(path), "%s/token", tdir);
	assert_string_equal(c.token.path, path);
	assert_string_equal((const char *)c.token.data, "s3cret");
	assert_int_equal(c.token.len, 6);
	assert_int_equal(c.hosts.n, 5);
	assert_string_equal(c.hosts.v[0], "x.example");
	assert_string_equal(c.hosts.v[1], "with space");
	assert_string_equal(c.hosts.v[2], "$pecial");
	assert_string_equal(c.hosts.v[3], "yes");
	assert_string_equal(c.hosts.v[4], "123");
	assert_null(c.tls.cert);
	assert_null(c.tls.key.path);
	assert_false(c.tls.verify);
	assert_int_equal(c.apps.n, 2);
	apps = c.apps.items;
	assert_string_equal(apps[0].name, "a");
	assert_string_equal((const char *)apps[0].key_file.data, "s3cret");
	assert_int_equal(apps[0].weight, 3);
	assert_int_equal(apps[0].tags.n, 0);
	assert_string_equal(apps[1].name, "b");
	assert_null(apps[1].key_file.path);
	assert_int_equal(apps[1].weight, 1); /* default inside a list item */
	assert_int_equal(c.count, -7);
	cm_cfg_free(&top_schema, &c);
	assert_true(all_zero(&c, sizeof(c)));
	cm_cfg_free(&top_schema, &c); /* a freed struct can be freed again */
	cm_cfg_free(&top_schema, NULL);
	cm_cfg_errors_free(&e);
}

static void test_defaults(void **state)
{
	const struct sockaddr_in *sin;
	struct cm_cfg_errors e;
	struct t_cfg c;

	(void)state;
	load_ok(&c, "");
	assert_int_equal(c.port, 5222);
	assert_false(c.debug);
	assert_int_equal(c.timeout, 30000);
	assert_int_equal(c.max_size, 65536);
	assert_int_equal(c.level, 2);
	assert_string_equal(c.listen.text, "127.0.0.1:5222");
	sin = (const struct sockaddr_in *)&c.listen.sa;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(c.listen.salen, sizeof(*sin));
	assert_string_equal(c.state_dir, "/var/lib/test");
	assert_null(c.ca_file);
	assert_null(c.token.path);
	assert_null(c.token.data);
	assert_int_equal(c.hosts.n, 2);
	assert_string_equal(c.hosts.v[1], "b.example");
	assert_int_equal(c.apps.n, 0);
	assert_null(c.apps.items);
	assert_int_equal(c.count, 0);
	cm_cfg_free(&top_schema, &c);

	/* An explicit empty list replaces the default one. */
	load_ok(&c, "hosts: []\n");
	assert_int_equal(c.hosts.n, 0);
	cm_cfg_free(&top_schema, &c);

	/* Embedded defaults only: the tls schema has no required key. */
	{
		struct t_tls t;

		cm_cfg_errors_init(&e);
		assert_int_equal(cm_cfg_load_defaults(&tls_schema, &t, &e), 0);
		assert_false(t.verify);
		assert_null(t.cert);
		cm_cfg_free(&tls_schema, &t);
	}
	/* A required key makes the embedded defaults insufficient. */
	assert_int_equal(cm_cfg_load_defaults(&top_schema, &c, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], "<defaults>:1: name: required");
	assert_true(all_zero(&c, sizeof(c)));
	cm_cfg_errors_free(&e);
}

/* A section whose own field is required, absent or present. */
struct r_sub {
	char *id;
};
struct r_cfg {
	struct r_sub sub;
	long long n;
};
static const struct cm_cfg_field rsub_fields[] = {
    {.key = "id", .type = CM_CFG_STRING, .flags = CM_CFG_REQUIRED},
};
static const struct cm_cfg_schema rsub_schema = {
    .name = "sub", .size = sizeof(struct r_sub), .fields = rsub_fields, .nfields = 1};
static const struct cm_cfg_field r_fields[] = {
    {.key = "n", .type = CM_CFG_INT, .offset = offsetof(struct r_cfg, n)},
    {.key = "sub",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct r_cfg, sub),
     .sub = &rsub_schema},
};
static const struct cm_cfg_schema r_schema = {
    .name = "r", .size = sizeof(struct r_cfg), .fields = r_fields, .nfields = 2};

/* Empty, comment-only, "---" and null documents mean "all defaults". */
static void test_empty_documents(void **state)
{
	static const char *const docs[] = {"", "# nothing\n\n", "---\n", "~\n", "---\n...\n", "{}"};
	struct cm_cfg_errors e;
	struct t_tls t;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		assert_int_equal(load(&tls_schema, &t, docs[i], &e), 0);
		assert_int_equal(e.n, 0);
		assert_false(t.verify);
		cm_cfg_free(&tls_schema, &t);
	}
	/* cm_cfg_load_buffer does not need a NUL-terminated buffer, or any buffer at all. */
	cm_cfg_errors_init(&e);
	assert_int_equal(cm_cfg_load_buffer(&tls_schema, &t, "t", NULL, 0, &e), 0);
	{
		static const char text[] = "sub: {id: a}\nn: 57XXX";
		struct r_cfg r;

		assert_int_equal(cm_cfg_load_buffer(&r_schema, &r, "t", text, sizeof(text) - 4, &e),
		                 0);
		assert_int_equal(r.n, 57);
		cm_cfg_free(&r_schema, &r);
	}
	cm_cfg_errors_free(&e);
}

static void test_sections_and_lists(void **state)
{
	const struct t_app *apps;
	struct t_cfg c;

	(void)state;
	/* A section with all its keys commented out is an empty one. */
	load_ok(&c, "tls:\n#  verify: true\napps:\n");
	assert_false(c.tls.verify);
	assert_int_equal(c.apps.n, 0);
	cm_cfg_free(&top_schema, &c);

	load_ok(&c, "tls: {verify: on, cert: \"${TDIR}/ca.pem\"}\n"
	            "apps: [{name: a, tags: [t1, t2]}, {name: b, weight: 0}]\n");
	assert_true(c.tls.verify);
	assert_non_null(c.tls.cert);
	assert_int_equal(c.apps.n, 2);
	apps = c.apps.items;
	assert_int_equal(apps[0].tags.n, 2);
	assert_string_equal(apps[0].tags.v[1], "t2");
	assert_int_equal(apps[1].weight, 0);
	cm_cfg_free(&top_schema, &c);
}

/* --- scalar syntax --------------------------------------------------------------------------- */

static void test_parse_int(void **state)
{
	long long v = 0;

	(void)state;
	assert_int_equal(cm_cfg__parse_int("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cm_cfg__parse_int("-12", &v), 0);
	assert_int_equal(v, -12);
	assert_int_equal(cm_cfg__parse_int("+12", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(cm_cfg__parse_int("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(cm_cfg__parse_int("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(cm_cfg__parse_int("9223372036854775808", &v), -ERANGE);
	assert_int_equal(cm_cfg__parse_int("-9223372036854775809", &v), -ERANGE);
	assert_int_equal(cm_cfg__parse_int("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(cm_cfg__parse_int("99999999999999999999999x", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("-", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("12x", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int(" 12", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("12 ", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("0x10", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("0640", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("1e3", &v), -EINVAL);
	assert_int_equal(cm_cfg__parse_int("1_000", &v), -EINVAL);
	assert_true(v == INT64_MIN); /* failures leave the output alone */
}

static void test_parse_bool(void **state)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
	static const char *const no[] = {"false", "False", "no", "NO", "off", "Off"};
	bool b;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(cm_cfg__parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(cm_cfg__parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	assert_int_equal(cm_cfg__parse_bool("1", &b), -EINVAL);
	assert_int_equal(cm_cfg__parse_bool("y", &b), -EINVAL);
	assert_int_equal(cm_cfg__parse_bool("", &b), -EINVAL);
	assert_int_equal(cm_cfg__parse_bool("truex", &b), -EINVAL);
}

static void test_parse_duration(void **state)
{
	static const struct {
		const char *in;
		int err;
		uint64_t ms;
	} cases[] = {
	    {"250ms", 0, 250},
	    {"30s", 0, 30000},
	    {"30", 0, 30000},
	    {"0", 0, 0},
	    {"5m", 0, 300000},
	    {"2h", 0, 7200000},
	    {"1d", 0, 86400000},
	    {"9223372036854775807ms", 0, INT64_MAX},
	    {"9223372036854775808ms", -ERANGE, 0},
	    {"9223372036854775s", 0, 9223372036854775000ULL},
	    {"9223372036854776s", -ERANGE, 0},
	    {"106751991167d", 0, 106751991167ULL * 86400000},
	    {"106751991168d", -ERANGE, 0},
	    {"99999999999999999999999s", -ERANGE, 0},
	    {"", -EINVAL, 0},
	    {"s", -EINVAL, 0},
	    {"-5s", -EINVAL, 0},
	    {"1.5s", -EINVAL, 0},
	    {"5 s", -EINVAL, 0},
	    {"5S", -EINVAL, 0},
	    {"5sec", -EINVAL, 0},
	    {"1h30m", -EINVAL, 0},
	    {"5us", -EINVAL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int err = cm_cfg__parse_duration(cases[i].in, &ms);

		print_message("duration \"%s\"\n", cases[i].in);
		assert_int_equal(err, cases[i].err);
		assert_true(ms == (err ? 12345 : cases[i].ms));
	}
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *in;
		int err;
		uint64_t n;
	} cases[] = {
	    {"512", 0, 512},
	    {"0", 0, 0},
	    {"64k", 0, 65536},
	    {"64K", 0, 65536},
	    {"16M", 0, 16 << 20},
	    {"16m", 0, 16 << 20},
	    {"1G", 0, 1 << 30},
	    {"1g", 0, 1 << 30},
	    {"8589934591G", 0, 8589934591ULL << 30},
	    {"8589934592G", -ERANGE, 0},
	    {"9223372036854775808", -ERANGE, 0},
	    {"1T", -EINVAL, 0},
	    {"1kB", -EINVAL, 0},
	    {"1KiB", -EINVAL, 0},
	    {"k", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {"1.5M", -EINVAL, 0},
	    {" 1", -EINVAL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t n = 7;
		int err = cm_cfg__parse_size(cases[i].in, &n);

		print_message("size \"%s\"\n", cases[i].in);
		assert_int_equal(err, cases[i].err);
		assert_true(n == (err ? 7 : cases[i].n));
	}
}

static void test_parse_addr(void **state)
{
	static const struct {
		const char *in;
		const char *why; /* NULL: valid */
		int family;
		uint16_t port;
	} cases[] = {
	    {"127.0.0.1:80", NULL, AF_INET, 80},
	    {"0.0.0.0:0", NULL, AF_INET, 0},
	    {"10.1.2.3:65535", NULL, AF_INET, 65535},
	    {"[::1]:443", NULL, AF_INET6, 443},
	    {"[::]:0", NULL, AF_INET6, 0},
	    {"[2001:db8::1]:5222", NULL, AF_INET6, 5222},
	    {"[::ffff:1.2.3.4]:1", NULL, AF_INET6, 1},
	    {"127.0.0.1:65536", "the port must be a number from 0 to 65535", 0, 0},
	    {"127.0.0.1:-1", "the port must be a number from 0 to 65535", 0, 0},
	    {"127.0.0.1:", "the port must be a number from 0 to 65535", 0, 0},
	    {"127.0.0.1:8x", "the port must be a number from 0 to 65535", 0, 0},
	    {"127.0.0.1:99999999999999999999", "the port must be a number from 0 to 65535", 0, 0},
	    {"127.0.0.1", "expected IP:PORT or [IPv6]:PORT", 0, 0},
	    {":80", "expected IP:PORT or [IPv6]:PORT", 0, 0},
	    {"", "expected IP:PORT or [IPv6]:PORT", 0, 0},
	    {"localhost:80", "a numeric IP address is required, not a host name", 0, 0},
	    {"example.com:443", "a numeric IP address is required, not a host name", 0, 0},
	    {"1.2.3:80", "not a valid IPv4 address", 0, 0},
	    {"256.1.1.1:80", "not a valid IPv4 address", 0, 0},
	    {"::1:80", "an IPv6 address must be written in brackets, as [::1]:PORT", 0, 0},
	    {"[::1]", "expected [IPv6]:PORT", 0, 0},
	    {"[::1:80", "expected [IPv6]:PORT", 0, 0},
	    {"[::1]80", "expected [IPv6]:PORT", 0, 0},
	    {"[1.2.3.4]:80", "not a valid IPv6 address", 0, 0},
	    {"[fe80::1%eth0]:80", "not a valid IPv6 address", 0, 0},
	    {"[]:80", "expected IP:PORT or [IPv6]:PORT", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cm_cfg_addr a = {0};
		char why[CM_ERR_MAX] = "";
		int err = cm_cfg_parse_addr(cases[i].in, &a, why, sizeof(why));

		print_message("addr \"%s\"\n", cases[i].in);
		if (!cases[i].why) {
			assert_int_equal(err, 0);
			assert_int_equal(a.sa.ss_family, cases[i].family);
			assert_int_equal(a.port, cases[i].port);
			assert_int_equal(a.salen, cases[i].family == AF_INET
			                              ? sizeof(struct sockaddr_in)
			                              : sizeof(struct sockaddr_in6));
		} else {
			assert_int_equal(err, -EINVAL);
			assert_string_equal(why, cases[i].why);
		}
	}
}

static void test_format(void **state)
{
	static const struct {
		uint64_t v;
		const char *dur, *size;
	} cases[] = {
	    {0, "0s", "0"},
	    {1, "1ms", "1"},
	    {1000, "1s", "1000"},
	    {1024, "1024ms", "1k"},
	    {60000, "1m", "60000"},
	    {90000, "90s", "90000"},
	    {86400000, "1d", "84375k"},
	    {86400001, "86400001ms", "86400001"},
	    {1 << 20, "1048576ms", "1M"},
	    {3ULL << 30, "3221225472ms", "3G"},
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cm_cfg__format_duration(cases[i].v, buf);
		assert_string_equal(buf, cases[i].dur);
		cm_cfg__format_size(cases[i].v, buf);
		assert_string_equal(buf, cases[i].size);
	}
}

/* Quoted numbers are fine for numeric types; types check their own syntax. */
static void test_scalar_fields(void **state)
{
	struct t_cfg c;

	(void)state;
	load_ok(&c, "port: \"4200\"\ndebug: 'ON'\ntimeout: 250ms\nmax_size: 16m\nlevel: error\n"
	            "listen: 0.0.0.0:0\ncount: '-5'\n");
	assert_int_equal(c.port, 4200);
	assert_true(c.debug);
	assert_int_equal(c.timeout, 250);
	assert_int_equal(c.max_size, 16 << 20);
	assert_int_equal(c.level, 0);
	assert_int_equal(c.listen.port, 0);
	assert_int_equal(c.count, -5);
	cm_cfg_free(&top_schema, &c);
}

static void test_type_errors(void **state)
{
	(void)state;
	expect_errors("name: x\nport: 70000\n", "t.yaml:2: port: 70000 is out of range (1..65535)");
	expect_errors("name: x\nport: 0\n", "t.yaml:2: port: 0 is out of range (1..65535)");
	expect_errors("name: x\nport: 99999999999999999999\n",
	              "t.yaml:2: port: 99999999999999999999 is out of range (1..65535)");
	expect_errors("name: x\ncount: 99999999999999999999\n",
	              "t.yaml:2: count: 99999999999999999999 is too large");
	expect_errors("name: x\nport: 12abc\n",
	              "t.yaml:2: port: expected an integer, got \"12abc\"");
	expect_errors("name: x\nport: 0x50\n", "t.yaml:2: port: expected an integer, got \"0x50\"");
	expect_errors("name: x\nport: \"\"\n", "t.yaml:2: port: expected an integer, got \"\"");
	expect_errors("name: x\nport:\n", "t.yaml:2: port: expected an integer");
	expect_errors("name: x\ndebug: maybe\n",
	              "t.yaml:2: debug: expected a boolean (true/false, yes/no, on/off), got "
	              "\"maybe\"");
	expect_errors(
	    "name: x\ntimeout: 5x\n",
	    "t.yaml:2: timeout: expected a duration such as 250ms, 30s, 5m, 2h or 1d, got "
	    "\"5x\"");
	expect_errors("name: x\ntimeout: 2d\n", "t.yaml:2: timeout: 2d is out of range (1ms..1d)");
	expect_errors("name: x\ntimeout: 0s\n", "t.yaml:2: timeout: 0s is out of range (1ms..1d)");
	expect_errors("name: x\ntimeout: 999999999999999999d\n",
	              "t.yaml:2: timeout: 999999999999999999d is out of range (1ms..1d)");
	expect_errors("name: x\nmax_size: 2G\n", "t.yaml:2: max_size: 2G is out of range (1..1G)");
	expect_errors(
	    "name: x\nmax_size: 3T\n",
	    "t.yaml:2: max_size: expected a size such as 512, 64k, 16M or 1G, got \"3T\"");
	expect_errors(
	    "name: x\nlevel: verbose\n",
	    "t.yaml:2: level: expected one of: error, warn, info, debug; got \"verbose\"");
	expect_errors("name: x\nlevel: INFO\n",
	              "t.yaml:2: level: expected one of: error, warn, info, debug; got \"INFO\"");
	expect_errors(
	    "name: x\nlisten: localhost:5222\n",
	    "t.yaml:2: listen: invalid address \"localhost:5222\": a numeric IP address is "
	    "required, not a host name");
	expect_errors(
	    "name: x\nlisten: 1.2.3.4:70000\n",
	    "t.yaml:2: listen: invalid address \"1.2.3.4:70000\": the port must be a number "
	    "from 0 to 65535");
	/* Control characters in an echoed value are neutralised; long values are cut. */
	expect_errors("name: x\nport: \"1\\n2\"\n",
	              "t.yaml:2: port: expected an integer, got \"1?2\"");
	expect_errors(
	    "name: x\nport: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.yaml:2: port: expected an integer, got "
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
	expect_errors("name: \"a\\0b\"\n", "t.yaml:1: name: NUL characters are not allowed");
}

static void test_shape_errors(void **state)
{
	(void)state;
	expect_errors(
	    "name: [a, b]\n"
	    "port: {x: 1}\n"
	    "tls: [1]\n"
	    "apps: x\n"
	    "hosts: [a, [b], ~]\n"
	    "listen: ~\n"
	    "state_dir:\n"
	    "ca_file: null\n"
	    "apps: [1]\n",
	    "t.yaml:1: name: expected a string", "t.yaml:2: port: expected an integer",
	    "t.yaml:3: tls: expected a mapping", "t.yaml:4: apps: expected a sequence of mappings",
	    "t.yaml:5: hosts[1]: expected a string", "t.yaml:5: hosts[2]: expected a string",
	    "t.yaml:6: listen: expected an address (IP:PORT or [IPv6]:PORT)",
	    "t.yaml:7: state_dir: expected a path", "t.yaml:8: ca_file: expected a file name",
	    "t.yaml:9: apps: duplicate key");
	expect_errors("name: ~\n", "t.yaml:1: name: expected a string");
	expect_errors("name: Null\n", "t.yaml:1: name: expected a string");
	expect_errors("name: x\nhosts: {a: 1}\n",
	              "t.yaml:2: hosts: expected a sequence of strings");
	expect_errors("name: x\napps:\n  - name: a\n  - b\n  -\n",
	              "t.yaml:4: apps[1]: expected a mapping",
	              "t.yaml:5: apps[2]: expected a mapping");
	expect_errors("name: x\ntls:\n  verify: [yes]\n",
	              "t.yaml:3: tls.verify: expected a boolean (true/false, yes/no, on/off)");
	expect_errors("name: x\nlevel: {}\n",
	              "t.yaml:2: level: expected one of: error, warn, info, debug");
	expect_errors("- a\n- b\n", "t.yaml:1: expected a mapping at the top level");
	expect_errors("\n\nhello\n", "t.yaml:3: expected a mapping at the top level");
	/* A quoted empty string is a string; only plain empties are null. */
	{
		struct t_cfg c;

		load_ok(&c, "state_dir: ''\nhosts: [\"\", '~', \"null\"]\n");
		assert_string_equal(c.state_dir, "");
		assert_string_equal(c.hosts.v[1], "~");
		cm_cfg_free(&top_schema, &c);
	}
}

static void test_unknown_and_duplicate(void **state)
{
	(void)state;
	expect_errors("name: x\nlsiten: 1.2.3.4:80\n",
	              "t.yaml:2: lsiten: unknown key (did you mean \"listen\"?)");
	expect_errors("name: x\nport: 1\nprot: 2\n",
	              "t.yaml:3: prot: unknown key (did you mean \"port\"?)");
	expect_errors("name: x\nbogus: 1\n", "t.yaml:2: bogus: unknown key");
	expect_errors("name: x\nx: 1\n", "t.yaml:2: x: unknown key");
	expect_errors("name: x\n'': 1\n", "t.yaml:2: \"\": unknown key");
	expect_errors("name: x\ntls:\n  cret: a\n",
	              "t.yaml:3: tls.cret: unknown key (did you mean \"cert\"?)");
	expect_errors("name: x\napps:\n  - name: a\n  - nmae: b\n",
	              "t.yaml:4: apps[1].nmae: unknown key (did you mean \"name\"?)",
	              "t.yaml:4: apps[1].name: required");
	/* Keys are compared whole: "port\0x" is not "port". */
	expect_errors("name: x\n\"port\\0x\": 1\n",
	              "t.yaml:2: port?x: unknown key (did you mean \"port\"?)");
	expect_errors("name: x\n\"a\\nb\": 1\n", "t.yaml:2: a?b: unknown key");
	expect_errors("name: a\nport: 1\nname: b\n", "t.yaml:3: name: duplicate key");
	expect_errors("name: a\ntls:\n  verify: yes\n  verify: no\n",
	              "t.yaml:4: tls.verify: duplicate key");
	expect_errors("name: a\ntls: {}\ntls: {}\n", "t.yaml:3: tls: duplicate key");
}

static void test_required(void **state)
{
	(void)state;
	expect_errors("", "t.yaml:1: name: required");
	expect_errors("# comment\n\nport: 5000\n", "t.yaml:1: name: required");
	expect_errors("port: 5000\napps:\n  - weight: 2\n  - name: b\n  - {}\n",
	              "t.yaml:3: apps[0].name: required", "t.yaml:5: apps[2].name: required",
	              "t.yaml:1: name: required");
}

static void test_required_nested(void **state)
{
	struct cm_cfg_field rf[2];
	struct cm_cfg_schema rs = r_schema;

	(void)state;
	/* A required section must be written, even though it could be built from defaults. */
	memcpy(rf, r_fields, sizeof(rf));
	rf[1].flags = CM_CFG_REQUIRED;
	rs.fields = rf;
	expect_errors_in(&rs, "n: 1\n", "t.yaml:1: sub: required", NULL);
	expect_errors_in(&rs, "n: 1\nsub: {}\n", "t.yaml:2: sub.id: required", NULL);
	expect_errors_in(&r_schema, "n: 1\n", "t.yaml:1: sub.id: required", NULL);
	expect_errors_in(&r_schema, "n: 1\n\nsub:\n  # id: x\n", "t.yaml:3: sub.id: required",
	                 NULL);
	expect_errors_in(&r_schema, "n: 1\nsub: {}\n", "t.yaml:2: sub.id: required", NULL);
	expect_errors_in(&r_schema, "n: 1\nsub:\n  other: 1\n", "t.yaml:3: sub.other: unknown key",
	                 "t.yaml:2: sub.id: required", NULL);
}

static void test_collects_all_errors(void **state)
{
	(void)state;
	expect_errors(
	    "name: demo\n"
	    "port: 70000\n"
	    "debug: maybe\n"
	    "timeout: 5x\n"
	    "lsiten: 1.2.3.4:80\n"
	    "tls:\n"
	    "  verfy: true\n"
	    "apps:\n"
	    "  - name: a\n"
	    "    weight: 101\n"
	    "  - weight: 5\n"
	    "    nmae: b\n"
	    "hosts: {a: 1}\n",
	    "t.yaml:2: port: 70000 is out of range (1..65535)",
	    "t.yaml:3: debug: expected a boolean (true/false, yes/no, on/off), got \"maybe\"",
	    "t.yaml:4: timeout: expected a duration such as 250ms, 30s, 5m, 2h or 1d, got "
	    "\"5x\"",
	    "t.yaml:5: lsiten: unknown key (did you mean \"listen\"?)",
	    "t.yaml:7: tls.verfy: unknown key (did you mean \"verify\"?)",
	    "t.yaml:10: apps[0].weight: 101 is out of range (0..100)",
	    "t.yaml:12: apps[1].nmae: unknown key (did you mean \"name\"?)",
	    "t.yaml:11: apps[1].name: required",
	    "t.yaml:13: hosts: expected a sequence of strings");
}

static void test_too_many_errors(void **state)
{
	struct cm_cfg_errors e;
	struct cm_buf y;
	struct t_cfg c;

	(void)state;
	cm_buf_init(&y, 0);
	assert_int_equal(cm_buf_puts(&y, "name: x\n"), 0);
	for (int i = 0; i < 150; i++)
		assert_int_equal(cm_buf_printf(&y, "unknown%d: 1\n", i), 0);
	assert_int_equal(load(&top_schema, &c, y.data, &e), -EINVAL);
	assert_int_equal(e.n, 101);
	assert_string_equal(e.msgs[0], "t.yaml:2: unknown0: unknown key");
	assert_string_equal(e.msgs[99], "t.yaml:101: unknown99: unknown key");
	assert_string_equal(e.msgs[100], "t.yaml: too many errors, giving up");
	cm_cfg_errors_free(&e);
	cm_buf_free(&y);
}

/* --- YAML restrictions ----------------------------------------------------------------------- */

static void test_syntax_errors(void **state)
{
	(void)state;
	/* After a syntax error nothing else is reported (bogus is not flagged). */
	expect_errors("bogus: 1\nname: x\n\tport: 1\n",
	              "t.yaml:3: syntax error: found a tab character that violates indentation");
	expect_errors("name: \"abc\n", "t.yaml:2: syntax error: found unexpected end of stream");
	expect_errors("name: x\nhosts: [a, b\n",
	              "t.yaml:3: syntax error: did not find expected ',' or ']'");
	expect_errors("name: a: b\n",
	              "t.yaml:1: syntax error: mapping values are not allowed in this context");
	expect_errors("name: x\nport: \"\xff\"\n",
	              "t.yaml:2: syntax error: invalid leading UTF-8 octet");
	expect_errors("name: x\n\x01\n",
	              "t.yaml:2: syntax error: control characters are not allowed");
}

static void test_yaml_restrictions(void **state)
{
	char deep[128];

	(void)state;
	expect_errors("name: &n x\nstate_dir: *n\n", "t.yaml:2: aliases are not supported");
	expect_errors("name: !!str x\n", "t.yaml:1: tags are not supported");
	expect_errors("name: x\ntls: !foo {}\n", "t.yaml:2: tags are not supported");
	expect_errors("name: x\n---\nname: y\n", "t.yaml:2: only one document is allowed");
	expect_errors("name: x\n...\n---\nname: y\n", "t.yaml:3: only one document is allowed");
	expect_errors("name: x\n? [a]\n: 1\n", "t.yaml:2: mapping keys must be strings");
	expect_errors("name: x\n{a: 1}: 1\n", "t.yaml:2: mapping keys must be strings");
	strcpy(deep, "name: x\nhosts: ");
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	expect_errors(deep, "t.yaml:2: nesting too deep (limit 32 levels)");
}

static void test_too_many_nodes(void **state)
{
	struct cm_cfg_errors e;
	struct cm_buf y;
	struct t_cfg c;

	(void)state;
	cm_buf_init(&y, 0);
	assert_int_equal(cm_buf_puts(&y, "name: x\nhosts: ["), 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(cm_buf_puts(&y, "a,"), 0);
	assert_int_equal(cm_buf_puts(&y, "]\n"), 0);
	assert_int_equal(load(&top_schema, &c, y.data, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], "t.yaml:2: too many values (limit 100000)");
	cm_cfg_errors_free(&e);
	cm_buf_free(&y);
}

/* --- environment ----------------------------------------------------------------------------- */

static void test_env(void **state)
{
	struct t_cfg c;

	(void)state;
	load_ok(&c, "state_dir: ${CFG_T_NAME}-$$-${CFG_T_NAME}/x\nport: ${CFG_T_PORT}\n"
	            "hosts: [\"${CFG_T_NAME}\", a$b$, $, $$$$]\nlisten: 127.0.0.1:${CFG_T_PORT}\n");
	assert_string_equal(c.state_dir, "alpha-$-alpha/x");
	assert_int_equal(c.port, 8080);
	assert_string_equal(c.hosts.v[0], "alpha");
	assert_string_equal(c.hosts.v[1], "a$b$");
	assert_string_equal(c.hosts.v[2], "$");
	assert_string_equal(c.hosts.v[3], "$$");
	assert_int_equal(c.listen.port, 8080);
	assert_string_equal(c.listen.text, "127.0.0.1:8080");
	cm_cfg_free(&top_schema, &c);

	expect_errors("name: ${CFG_T_UNSET}\n",
	              "t.yaml:1: name: environment variable CFG_T_UNSET is not set");
	expect_errors("name: x\nhosts: [a, \"${CFG_T_UNSET}\"]\n",
	              "t.yaml:2: hosts[1]: environment variable CFG_T_UNSET is not set");
	expect_errors("name: ${CFG_T_NAME\n",
	              "t.yaml:1: name: unterminated ${ (write $$ for a literal $)");
	expect_errors("name: ${1x}\n", "t.yaml:1: name: invalid environment variable name \"1x\"");
	expect_errors("name: ${}\n", "t.yaml:1: name: invalid environment variable name \"\"");
	expect_errors("name: ${A-B}\n",
	              "t.yaml:1: name: invalid environment variable name \"A-B\"");
	expect_errors("name: x\nport: ${CFG_T_NAME}\n",
	              "t.yaml:2: port: expected an integer, got \"alpha\"");
}

/* --- defaults in the schema ------------------------------------------------------------------ */

struct d_cfg {
	long long n;
	struct cm_cfg_strlist l;
	struct cm_cfg_list items;
	char *s;
};
static const struct cm_cfg_field ditem_fields[] = {
    {.key = "id", .type = CM_CFG_STRING, .flags = CM_CFG_REQUIRED},
};
static const struct cm_cfg_schema ditem_schema = {
    .name = "item", .size = sizeof(char *), .fields = ditem_fields, .nfields = 1};

static void test_schema_defaults(void **state)
{
	struct cm_cfg_field f[] = {
	    {.key = "n", .type = CM_CFG_INT, .offset = offsetof(struct d_cfg, n), .def = "abc"},
	    {.key = "l",
	     .type = CM_CFG_STRLIST,
	     .offset = offsetof(struct d_cfg, l),
	     .def = "[a, [b]]"},
	    {.key = "items",
	     .type = CM_CFG_LIST,
	     .offset = offsetof(struct d_cfg, items),
	     .sub = &ditem_schema,
	     .def = "[{id: a}, {id: \"${CFG_T_NAME}\"}]"},
	    {.key = "s", .type = CM_CFG_STRING, .offset = offsetof(struct d_cfg, s), .def = ""},
	};
	struct cm_cfg_schema s = {
	    .name = "d", .size = sizeof(struct d_cfg), .fields = f, .nfields = 4};
	struct cm_cfg_errors e;
	struct d_cfg d;

	(void)state;
	expect_errors_in(&s, "",
	                 "<default>: n: bad default \"abc\": expected an integer, got \"abc\"",
	                 "<default>: l[1]: bad default \"[a, [b]]\": expected a string", NULL);
	f[0].def = "5";
	f[1].def = "[a";
	expect_errors_in(&s, "",
	                 "<default>: l: bad default \"[a\": syntax error: did not find "
	                 "expected ',' or ']'",
	                 NULL);
	/* A value written in the file means the default is never looked at. */
	assert_int_equal(load(&s, &d, "l: [x]\n", &e), 0);
	assert_int_equal(d.n, 5);
	assert_int_equal(d.l.n, 1);
	assert_int_equal(d.items.n, 2);
	assert_string_equal(((char **)d.items.items)[1], "alpha");
	assert_string_equal(d.s, "");
	cm_cfg_free(&s, &d);
	f[1].def = "[x, y]";
	f[2].def = "[{}]";
	expect_errors_in(&s, "", "<default>: items[0].id: bad default \"[{}]\": required", NULL);
	f[2].def = "[{id: \"${CFG_T_UNSET}\"}]";
	expect_errors_in(&s, "",
	                 "<default>: items[0].id: bad default \"[{id: \"${CFG_T_UNSET}\"}]\": "
	                 "environment variable CFG_T_UNSET is not set",
	                 NULL);
	cm_cfg_errors_free(&e);
}

/* Describe and dump for a schema whose list items can be empty and whose default is "". */
static void test_dump_describe_edges(void **state)
{
	static const struct cm_cfg_field item_fields_opt[] = {
	    {.key = "id", .type = CM_CFG_STRING, .doc = "a|b\nc"},
	};
	static const struct cm_cfg_schema item_opt = {
	    .name = "item", .size = sizeof(char *), .fields = item_fields_opt, .nfields = 1};
	static const struct cm_cfg_field f[] = {
	    {.key = "items",
	     .type = CM_CFG_LIST,
	     .offset = offsetof(struct d_cfg, items),
	     .sub = &item_opt},
	    {.key = "s",
	     .type = CM_CFG_STRING,
	     .offset = offsetof(struct d_cfg, s),
	     .def = "",
	     .flags = CM_CFG_RELOAD},
	};
	static const struct cm_cfg_schema s = {
	    .name = "d", .size = sizeof(struct d_cfg), .fields = f, .nfields = 2};
	struct cm_cfg_errors e;
	struct cm_buf out;
	struct d_cfg d, d2;

	(void)state;
	assert_int_equal(load(&s, &d, "items: [{}, {id: a}, {}]\n", &e), 0);
	cm_buf_init(&out, 0);
	assert_int_equal(cm_cfg_dump(&s, &d, &out), 0);
	assert_string_equal(out.data, "items:\n  - {}\n  - id: a\n  - {}\ns: \"\"\n");
	assert_int_equal(cm_cfg_load_buffer(&s, &d2, "dump", out.data, out.len, &e), 0);
	assert_int_equal(d2.items.n, 3);
	cm_cfg_free(&s, &d2);
	cm_cfg_free(&s, &d);
	cm_buf_free(&out);
	assert_int_equal(cm_cfg_describe(&s, &out), 0);
	assert_string_equal(out.data, "| `items` | list |  |  |\n"
	                              "| `items[].id` | string |  | a\\|b c |\n"
	                              "| `s` | string | `\"\"` | (reloadable) |\n");
	cm_buf_free(&out);
	cm_cfg_errors_free(&e);
}

/* --- validate hooks -------------------------------------------------------------------------- */

static void test_validate(void **state)
{
	struct t_cfg c;

	(void)state;
	expect_errors("name: x\ndebug: on\nport: 80\n",
	              "t.yaml:3: port: must be 1024 or more when debug is on");
	/* A key that was not written is reported on the mapping's line. */
	expect_errors("name: x\n\ntls:\n  verify: true\n",
	              "t.yaml:3: tls.cert: required when verify is on");
	expect_errors("name: x\ntls: {verify: true}\n",
	              "t.yaml:2: tls.cert: required when verify is on");
	expect_errors("name: x\napps:\n  - name: a\n  - name: b\n    weight: 0\n    tags: [x]\n",
	              "t.yaml:6: apps[1].tags: make no sense with weight 0");
	expect_errors("name: x\napps:\n  - name: a\n  - {name: b, weight: 0, tags: [x]}\n",
	              "t.yaml:4: apps[1].tags: make no sense with weight 0");
	/* Hooks do not run on a mapping that already has errors... */
	expect_errors("name: x\ntls:\n  verify: true\n  bogus: 1\n",
	              "t.yaml:4: tls.bogus: unknown key");
	/* ...nor on its parents, but do on unrelated siblings. */
	expect_errors("name: x\ndebug: on\nport: 80\ntls:\n  verify: true\n  bogus: 1\n"
	              "apps:\n  - {name: b, weight: 0, tags: [x]}\n",
	              "t.yaml:6: tls.bogus: unknown key",
	              "t.yaml:8: apps[0].tags: make no sense with weight 0");
	/* A dotted key is looked up through the written sections. */
	expect_errors("name: x\ncount: -1\ntls:\n  cert: ${TDIR}/ca.pem\n  verify: true\n",
	              "t.yaml:5: tls.verify: needs a count of 0 or more");
	expect_errors("name: x\ncount: -1\ntls: {cert: \"${TDIR}/ca.pem\", verify: true}\n",
	              "t.yaml:3: tls.verify: needs a count of 0 or more");
	/* Valid combinations pass. */
	load_ok(&c, "debug: on\nport: 2000\n");
	cm_cfg_free(&top_schema, &c);
}

/* --- files and secrets ----------------------------------------------------------------------- */

static void test_file_type(void **state)
{
	struct t_cfg c;

	(void)state;
	load_ok(&c, "ca_file: ${TDIR}/ca.pem\n");
	assert_non_null(c.ca_file);
	cm_cfg_free(&top_schema, &c);
	expect_errors("name: x\nca_file: ${TDIR}/missing\n",
	              "t.yaml:2: ca_file: cannot read @/missing: No such file or directory");
	expect_errors("name: x\nca_file: ${TDIR}\n",
	              "t.yaml:2: ca_file: cannot read @: not a regular file");
	expect_errors("name: x\nca_file: ${TDIR}/ca.pem/x\n",
	              "t.yaml:2: ca_file: cannot read @/ca.pem/x: Not a directory");
	if (geteuid() != 0) {
		char path[128];

		write_file("noread", "x", 1);
		snprintf(path, sizeof(path), "%s/noread", tdir);
		assert_int_equal(chmod(path, 0), 0);
		expect_errors("name: x\nca_file: ${TDIR}/noread\n",
		              "t.yaml:2: ca_file: cannot read @/noread: Permission denied");
		expect_errors("name: x\ntoken: ${TDIR}/noread\n",
		              "t.yaml:2: token: cannot read secret @/noread: Permission denied");
	}
}

static void test_secret_load(void **state)
{
	struct cm_secret s = {0};
	char big[65537];
	char path[128];

	(void)state;
	assert_int_equal(cm_secret_load(&s), -EINVAL); /* no path */
	snprintf(path, sizeof(path), "%s/sec", tdir);
	s.path = strdup(path);
	assert_non_null(s.path);
	assert_int_equal(cm_secret_load(&s), -ENOENT);
	assert_null(s.data);

	write_file("sec", "first\n\r\n", 8);
	assert_int_equal(cm_secret_load(&s), 0);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "first", 6);

	/* A reload replaces the content; failed reloads keep the old one. */
	write_file("sec", "\nsecond\0x\n", 10);
	assert_int_equal(cm_secret_load(&s), 0);
	assert_int_equal(s.len, 9);
	assert_memory_equal(s.data, "\nsecond\0x", 10);
	write_file("sec", "", 0);
	assert_int_equal(cm_secret_load(&s), -ENODATA);
	write_file("sec", "\r\n\n", 3);
	assert_int_equal(cm_secret_load(&s), -ENODATA);
	memset(big, 'k', sizeof(big));
	write_file("sec", big, 65537);
	assert_int_equal(cm_secret_load(&s), -EFBIG);
	remove_file("sec");
	assert_int_equal(cm_secret_load(&s), -ENOENT);
	assert_int_equal(s.len, 9);
	assert_memory_equal(s.data, "\nsecond\0x", 10);

	/* Exactly 64 KiB is accepted. */
	write_file("sec", big, 65536);
	assert_int_equal(cm_secret_load(&s), 0);
	assert_int_equal(s.len, 65536);
	assert_int_equal(s.data[65536], '\0');
	remove_file("sec");

	/* Directories and other non-regular files are refused. */
	free(s.path);
	s.path = strdup(tdir);
	assert_int_equal(cm_secret_load(&s), -EINVAL);
	free(s.path);
	s.path = strdup("/dev/null");
	assert_int_equal(cm_secret_load(&s), -EINVAL);
	assert_int_equal(s.len, 65536);

	cm_secret_free(&s);
	assert_null(s.path);
	assert_null(s.data);
	assert_int_equal(s.len, 0);
	cm_secret_free(&s);
	cm_secret_free(NULL);
}

static void test_secret_fields(void **state)
{
	char big[65537];

	(void)state;
	expect_errors("name: x\ntoken: ${TDIR}/empty\n",
	              "t.yaml:2: token: cannot read secret @/empty: the file is empty");
	expect_errors("name: x\ntoken: ${TDIR}/nope\n",
	              "t.yaml:2: token: cannot read secret @/nope: No such file or directory");
	expect_errors("name: x\ntoken: ${TDIR}\n",
	              "t.yaml:2: token: cannot read secret @: not a regular file");
	memset(big, 'k', sizeof(big));
	write_file("big", big, sizeof(big));
	expect_errors("name: x\napps:\n  - name: a\n    key_file: ${TDIR}/big\n",
	              "t.yaml:4: apps[0].key_file: cannot read secret @/big: larger than 64 KiB");
	remove_file("big");
	expect_errors("name: x\ntoken: [a]\n",
	              "t.yaml:2: token: expected the name of a file holding the secret");
}

/* --- files ----------------------------------------------------------------------------------- */

static void test_load_file(void **state)
{
	struct cm_cfg_errors e;
	struct t_cfg c;

	(void)state;
	cm_cfg_errors_init(&e);
	assert_int_equal(cm_cfg_load_file(&top_schema, &c, "tests/common/cfg/full.yaml", &e), 0);
	assert_int_equal(e.n, 0);
	assert_string_equal(c.name, "full");
	assert_int_equal(c.apps.n, 2);
	cm_cfg_free(&top_schema, &c);

	assert_int_equal(cm_cfg_load_file(&top_schema, &c, "tests/common/cfg/errors.yaml", &e),
	                 -EINVAL);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.msgs[0], "tests/common/cfg/errors.yaml:4: port: 0 is out of range "
	                               "(1..65535)");
	assert_string_equal(e.msgs[1], "tests/common/cfg/errors.yaml:7: tls.cret: unknown key (did "
	                               "you mean \"cert\"?)");
	assert_string_equal(e.msgs[2], "tests/common/cfg/errors.yaml:1: name: required");
	cm_cfg_errors_free(&e);

	assert_int_equal(cm_cfg_load_file(&top_schema, &c, "tests/common/cfg/missing.yaml", &e),
	                 -EINVAL);
	assert_int_equal(e.n, 1);
	assert_string_equal(
	    e.msgs[0], "tests/common/cfg/missing.yaml: cannot read: No such file or directory");
	assert_true(all_zero(&c, sizeof(c)));
	cm_cfg_errors_free(&e);
	assert_int_equal(cm_cfg_load_file(&top_schema, &c, "tests/common/cfg", &e), -EINVAL);
	assert_string_equal(e.msgs[0], "tests/common/cfg: cannot read: Is a directory");
	cm_cfg_errors_free(&e);

	/* Files are read whole, up to 16 MiB. */
	{
		char path[128];
		FILE *f;

		snprintf(path, sizeof(path), "%s/big", tdir);
		f = fopen(path, "w");
		assert_non_null(f);
		assert_true(fputs("name: x\n", f) >= 0);
		for (int i = 0; i < (16 << 20) / 8; i++)
			fputs("#comment", f);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(cm_cfg_load_file(&top_schema, &c, path, &e), -EINVAL);
		assert_int_equal(e.n, 1);
		assert_non_null(strstr(e.msgs[0], ": cannot read: File too large"));
		cm_cfg_errors_free(&e);
		assert_int_equal(truncate(path, 16 << 20), 0);
		assert_int_equal(cm_cfg_load_file(&top_schema, &c, path, &e), 0);
		assert_string_equal(c.name, "x");
		cm_cfg_free(&top_schema, &c);
		remove_file("big");
	}
}

/* --- dump and describe ----------------------------------------------------------------------- */

static void test_dump(void **state)
{
	struct cm_cfg_errors e;
	struct t_cfg c, c2;
	struct cm_buf out, out2, want;

	(void)state;
	assert_int_equal(load(&top_schema, &c, full_yaml, &e), 0);
	cm_buf_init(&out, 0);
	assert_int_equal(cm_buf_puts(&out, "# before\n"), 0);
	assert_int_equal(cm_cfg_dump(&top_schema, &c, &out), 0);
	cm_buf_init(&want, 0);
	assert_int_equal(cm_buf_printf(&want,
	                               "# before\n"
	                               "name: demo\n"
	                               "port: 6000\n"
	                               "debug: true\n"
	                               "timeout: 90s\n"
	                               "max_size: 1M\n"
	                               "level: debug\n"
	                               "listen: \"[::1]:5269\"\n"
	                               "state_dir: /var/lib/test\n"
	                               "ca_file: %s/ca.pem\n"
	                               "token: %s/token\n"
	                               "hosts:\n"
	                               "  - x.example\n"
	                               "  - \"with space\"\n"
	                               "  - \"$$pecial\"\n"
	                               "  - \"yes\"\n"
	                               "  - \"123\"\n"
	                               "tls:\n"
	                               "  verify: false\n"
	                               "apps:\n"
	                               "  - name: a\n"
	                               "    key_file: %s/token\n"
	                               "    weight: 3\n"
	                               "    tags: []\n"
	                               "  - name: b\n"
	                               "    weight: 1\n"
	                               "    tags: []\n"
	                               "count: -7\n",
	                               tdir, tdir, tdir),
	                 0);
	assert_string_equal(out.data, want.data);
	assert_false(strstr(out.data, "s3cret"));

	/* The dump loads back to the same configuration. */
	assert_int_equal(cm_cfg_load_buffer(&top_schema, &c2, "dump", out.data, out.len, &e), 0);
	cm_buf_init(&out2, 0);
	assert_int_equal(cm_buf_puts(&out2, "# before\n"), 0);
	assert_int_equal(cm_cfg_dump(&top_schema, &c2, &out2), 0);
	assert_string_equal(out.data, out2.data);
	cm_cfg_free(&top_schema, &c2);
	cm_cfg_free(&top_schema, &c);
	cm_buf_free(&out);
	cm_buf_free(&out2);
	cm_buf_free(&want);
	cm_cfg_errors_free(&e);
}

/* Strings that need quotes get them, and every one survives the round trip. */
static void test_dump_quoting(void **state)
{
	static const char *const values[] = {
	    "plain/path_1.x",
	    "",
	    " lead",
	    "trail ",
	    "a: b",
	    "a #b",
	    "#c",
	    "-x",
	    "- x",
	    "[x]",
	    "{x}",
	    "*x",
	    "&x",
	    "!x",
	    "|x",
	    ">x",
	    "'q'",
	    "\"dq\"",
	    "%x",
	    "@x",
	    "`x",
	    "x:",
	    "true",
	    "Off",
	    "NULL",
	    "~",
	    "y",
	    "1.5",
	    "0x10",
	    "tab\there",
	    "nl\nhere",
	    "cr\rhere",
	    "back\\slash",
	    "\x7f",
	    "\x01",
	    "utf8 \xc3\xa9t\xc3\xa9",
	    "nel \xc2\x85 ls \xe2\x80\xa8 ps \xe2\x80\xa9",
	    "c1 \xc2\x81 \xc2\x9f nonchars \xef\xbf\xbe \xef\xbf\xbf bom \xef\xbb\xbf",
	    "$",
	    "${CFG_T_NAME}",
	    "$$",
	    "a,b",
	    "?x",
	    "a?b",
	    "very long string with spaces and : colons and # hashes",
	};
	struct cm_cfg_errors e;
	struct cm_buf out;
	struct t_cfg c;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct t_cfg c2;

		load_ok(&c, "");
		free(c.state_dir);
		c.state_dir = strdup(values[i]);
		assert_non_null(c.state_dir);
		cm_buf_init(&out, 0);
		assert_int_equal(cm_cfg_dump(&top_schema, &c, &out), 0);
		cm_cfg_errors_init(&e);
		if (cm_cfg_load_buffer(&top_schema, &c2, "dump", out.data, out.len, &e) != 0) {
			print_message("value %zu did not survive:\n%s\n", i, out.data);
			for (size_t j = 0; j < e.n; j++)
				print_message("  %s\n", e.msgs[j]);
			fail();
		}
		assert_string_equal(c2.state_dir, values[i]);
		cm_cfg_free(&top_schema, &c2);
		cm_cfg_free(&top_schema, &c);
		cm_cfg_errors_free(&e);
		cm_buf_free(&out);
	}
	/* Unset strings are left out, an all-unset section is written {}. */
	{
		struct t_tls t = {0};
		struct r_sub rs = {0};

		cm_buf_init(&out, 0);
		assert_int_equal(cm_cfg_dump(&tls_schema, &t, &out), 0);
		assert_string_equal(out.data, "verify: false\n");
		cm_buf_free(&out);
		assert_int_equal(cm_cfg_dump(&rsub_schema, &rs, &out), 0);
		assert_string_equal(out.data, "{}\n");
		cm_buf_free(&out);
	}
	{
		struct r_cfg r = {0};

		assert_int_equal(cm_cfg_dump(&r_schema, &r, &out), 0);
		assert_string_equal(out.data, "n: 0\nsub: {}\n");
		cm_buf_free(&out);
	}
}

static void test_describe(void **state)
{
	struct cm_buf out;

	(void)state;
	cm_buf_init(&out, 0);
	assert_int_equal(cm_cfg_describe(&top_schema, &out), 0);
	assert_string_equal(out.data,
	                    "| `name` | string | required | instance name |\n"
	                    "| `port` | integer (1..65535) | `5222` | TCP port |\n"
	                    "| `debug` | boolean | `no` |  |\n"
	                    "| `timeout` | duration (1ms..1d) | `30s` |  |\n"
	                    "| `max_size` | size (1..1G) | `64k` |  |\n"
	                    "| `level` | one of error, warn, info, debug | `info` | log level "
	                    "(reloadable) |\n"
	                    "| `listen` | address | `127.0.0.1:5222` |  |\n"
	                    "| `state_dir` | path | `/var/lib/test` |  |\n"
	                    "| `ca_file` | file |  |  |\n"
	                    "| `token` | secret file |  |  |\n"
	                    "| `hosts` | string list | `[a.example, b.example]` |  |\n"
	                    "| `tls` | section |  | TLS |\n"
	                    "| `tls.cert` | file |  | PEM certificate (reloadable) |\n"
	                    "| `tls.key` | secret file |  | private key |\n"
	                    "| `tls.verify` | boolean | `false` | check peers \\| strictly |\n"
	                    "| `apps` | list |  | applications |\n"
	                    "| `apps[].name` | string | required | app name |\n"
	                    "| `apps[].key_file` | secret file |  | signing key |\n"
	                    "| `apps[].weight` | integer (0..100) | `1` | share of traffic |\n"
	                    "| `apps[].tags` | string list |  |  |\n"
	                    "| `count` | integer |  |  |\n");
	cm_buf_free(&out);
}

/* --- allocation failures --------------------------------------------------------------------- */

static int sweep_load(void *arg)
{
	struct cm_cfg_errors e;
	struct t_cfg c;
	struct cm_buf out;
	int r;

	(void)arg;
	cm_cfg_errors_init(&e);
	r = cm_cfg_load_buffer(&top_schema, &c, "t.yaml", full_yaml, strlen(full_yaml), &e);
	if (r == 0) {
		assert_int_equal(e.n, 0);
		assert_string_equal(c.token.data, "s3cret");
		cm_buf_init(&out, 0);
		r = cm_cfg_dump(&top_schema, &c, &out);
		cm_buf_free(&out);
		cm_cfg_free(&top_schema, &c);
	} else {
		assert_int_equal(r, -ENOMEM);
		assert_true(all_zero(&c, sizeof(c)));
	}
	cm_cfg_errors_free(&e);
	return r;
}

static const char bad_yaml[] =
    "name: demo\nport: 70000\nlsiten: x\ntls:\n  verify: true\n"
    "apps:\n  - {weight: 0, tags: [a]}\n  - {name: b, weight: 0, tags: [a]}\n"
    "hosts: [\"${CFG_T_UNSET}\"]\n";

/* A failing load: the errors must all be there, or the load must say -ENOMEM. */
static int sweep_errors(void *arg)
{
	struct cm_cfg_errors e;
	struct t_cfg c;
	int r;

	(void)arg;
	cm_cfg_errors_init(&e);
	r = cm_cfg_load_buffer(&top_schema, &c, "t.yaml", bad_yaml, strlen(bad_yaml), &e);
	assert_true(all_zero(&c, sizeof(c)));
	if (r == -EINVAL) {
		assert_int_equal(e.n, 6);
		assert_string_equal(e.msgs[5], "t.yaml:9: hosts[0]: environment variable "
		                               "CFG_T_UNSET is not set");
		r = 0;
	} else {
		assert_int_equal(r, -ENOMEM);
	}
	cm_cfg_errors_free(&e);
	return r;
}

static int sweep_file(void *arg)
{
	struct cm_cfg_errors e;
	struct t_cfg c;
	int r;

	(void)arg;
	cm_cfg_errors_init(&e);
	r = cm_cfg_load_file(&top_schema, &c, "tests/common/cfg/full.yaml", &e);
	if (r == 0)
		cm_cfg_free(&top_schema, &c);
	else
		assert_int_equal(r, -ENOMEM);
	cm_cfg_errors_free(&e);
	return r;
}

static int sweep_describe(void *arg)
{
	struct cm_buf out;
	int r;

	(void)arg;
	cm_buf_init(&out, 0);
	r = cm_cfg_describe(&top_schema, &out);
	if (r)
		assert_int_equal(out.len, 0);
	cm_buf_free(&out);
	return r;
}

static void test_alloc_failures(void **state)
{
	static const struct {
		const char *name;
		int (*fn)(void *);
		long min;
	} sweeps[] = {
	    {"load+dump", sweep_load, 50},
	    {"errors", sweep_errors, 20},
	    {"file", sweep_file, 50},
	    {"describe", sweep_describe, 5},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(sweeps) / sizeof(sweeps[0]); i++) {
		long runs = test_alloc_sweep(sweeps[i].fn, NULL, 5000);

		print_message("sweep %s: %ld runs\n", sweeps[i].name, runs);
		assert_true(runs > sweeps[i].min);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_empty_documents),
	    cmocka_unit_test(test_sections_and_lists),
	    cmocka_unit_test(test_parse_int),
	    cmocka_unit_test(test_parse_bool),
	    cmocka_unit_test(test_parse_duration),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_parse_addr),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_scalar_fields),
	    cmocka_unit_test(test_type_errors),
	    cmocka_unit_test(test_shape_errors),
	    cmocka_unit_test(test_unknown_and_duplicate),
	    cmocka_unit_test(test_required),
	    cmocka_unit_test(test_required_nested),
	    cmocka_unit_test(test_collects_all_errors),
	    cmocka_unit_test(test_too_many_errors),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_yaml_restrictions),
	    cmocka_unit_test(test_too_many_nodes),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_schema_defaults),
	    cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_file_type),
	    cmocka_unit_test(test_secret_load),
	    cmocka_unit_test(test_secret_fields),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_dump),
	    cmocka_unit_test(test_dump_quoting),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_dump_describe_edges),
	    cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
