/* cm/cfg.h - YAML configuration driven by a schema, with precise errors.
 *
 * A daemon describes its configuration as a table of fields (key, type, offset into its config
 * struct, default, bounds) and loads a YAML file into that struct. Every problem is reported as
 * "FILE:LINE: key.path: what is wrong" and loading goes on to find the others, so an operator
 * fixes a file in one pass. Unknown keys, wrong types, out-of-range values, missing required
 * values and unreadable files are all errors; nothing falls back to a default silently.
 *
 * String-like values may refer to environment variables as ${NAME} ("$$" is a literal "$"), so
 * that a unit can point at ${CREDENTIALS_DIRECTORY} or ${STATE_DIRECTORY}; an unset variable is an
 * error. Secrets are never inline: a CM_CFG_SECRET field names a file whose content is loaded
 * (and can be reloaded on SIGHUP).
 *
 * The loaded struct owns every string and list in it; cm_cfg_free() releases them.
 *
 * Accepted YAML: one document, no aliases, no tags, at most 32 levels of nesting and 100000
 * values. A plain empty value, "~" or "null" is refused where a scalar is expected ("key: ''"
 * is the empty string) and means "empty" for a SECTION, LIST or STRLIST (so a section whose keys
 * are all commented out is valid). Every scalar, quoted or not, goes through ${NAME} expansion
 * (a '$' not followed by '{' or '$' is kept as it is). Inside a flow collection ("[a, b]",
 * "{k: v}") quote it, as "${NAME}": unquoted scalars there cannot contain braces.
 */
#ifndef CM_CFG_H
#define CM_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cm_buf;

enum cm_cfg_type {
	CM_CFG_STRING,   /* char * (owned) */
	CM_CFG_INT,      /* long long; decimal, no leading zeros; bounds min..max when max > min */
	CM_CFG_BOOL,     /* bool; true/false/yes/no/on/off, any case */
	CM_CFG_DURATION, /* uint64_t milliseconds; "250ms", "30s", "5m", "2h", "1d"; bare number = s
	                  */
	CM_CFG_SIZE,     /* uint64_t bytes; "512", "64k", "16M", "1G" (powers of 1024; the suffix
	                  * may be k/K, m/M or g/G: there is no milli-byte to confuse it with) */
	CM_CFG_ENUM,     /* int: index into field.values */
	CM_CFG_ADDR,     /* struct cm_cfg_addr: numeric "IP:PORT", "[IPv6]:PORT"; port 0..65535 */
	CM_CFG_PATH,     /* char * (owned): a path, not checked at load time */
	CM_CFG_FILE,     /* char * (owned): a path that must name a readable regular file */
	CM_CFG_SECRET,   /* struct cm_secret: path of a file whose content is the secret */
	CM_CFG_STRLIST,  /* struct cm_cfg_strlist: a sequence of strings */
	CM_CFG_SECTION,  /* nested mapping described by field.sub, stored inline at offset */
	CM_CFG_LIST,     /* struct cm_cfg_list: sequence of mappings, each described by field.sub */
};

enum {
	CM_CFG_REQUIRED = 1 << 0, /* must be present (a default makes no sense for it) */
	CM_CFG_RELOAD = 1 << 1,   /* takes effect on SIGHUP without a restart (documentation) */
};

struct cm_cfg_addr {
	char *text; /* owned: as written, after expansion */
	struct sockaddr_storage sa;
	socklen_t salen;
	uint16_t port;
};

/* Parse a numeric "IP:PORT" or "[IPv6]:PORT" into a (the CM_CFG_ADDR syntax, for lists of
 * addresses kept as strings); a->text is left alone. 0, or -EINVAL with the reason in err
 * (cm/err.h). */
int cm_cfg_parse_addr(const char *s, struct cm_cfg_addr *a, char *err, size_t errlen);

struct cm_cfg_strlist {
	char **v; /* owned, each owned */
	size_t n;
};

/* Whether s is one of l's strings (compared exactly). */
bool cm_cfg_strlist_has(const struct cm_cfg_strlist *l, const char *s);

struct cm_cfg_list {
	void *items; /* owned: n items of field.sub->size bytes each */
	size_t n;
};

struct cm_secret {
	char *path; /* owned: the file named in the configuration */
	unsigned char
	    *data; /* owned: content, NUL-terminated, trailing newlines removed; wiped on free */
	size_t len;
};

struct cm_cfg_schema;

struct cm_cfg_field {
	const char *key;
	enum cm_cfg_type type;
	size_t offset;
	/* Default, NULL for none. Scalars: the value's text, taken literally as if quoted (so "" is
	 * an empty string) but still ${NAME}-expanded. STRLIST, LIST: a YAML flow sequence such as
	 * "[a, b]". SECTION: unused (an absent section always gets its own fields' defaults). A
	 * default that does not load is an error of the schema, reported as
	 * "<default>: key: bad default ...". */
	const char *def;
	unsigned flags;     /* CM_CFG_REQUIRED, CM_CFG_RELOAD */
	long long min, max; /* INT (value), DURATION (ms), SIZE (bytes); checked when max > min */
	const char *const *values;       /* ENUM: NULL-terminated list of accepted names */
	const struct cm_cfg_schema *sub; /* SECTION, LIST */
	const char *doc;                 /* one line for the configuration reference */
};

/* Reporter handed to a schema's validate hook. */
struct cm_cfg_check;

struct cm_cfg_schema {
	const char *name; /* for messages: "icicle", "admin", ... */
	size_t size;      /* sizeof the struct described */
	const struct cm_cfg_field *fields;
	size_t nfields;
	/* Optional cross-field checks, run after the fields of this mapping were loaded (also for
	 * each item of a LIST). Report with cm_cfg_check_error(); the return value is ignored. */
	void (*validate)(void *obj, struct cm_cfg_check *chk);
};

/* Messages are appended (never cleared) by the load functions; after 100 messages from one load,
 * a last "FILE: too many errors, giving up" ends the list. */
struct cm_cfg_errors {
	char **msgs; /* owned: each "FILE:LINE: key: message" */
	size_t n;
};

void cm_cfg_errors_init(struct cm_cfg_errors *e);
void cm_cfg_errors_free(struct cm_cfg_errors *e);

/* Report a problem found by a validate hook. key is relative to the mapping being checked; the
 * line is that of the key if it was written, else that of the mapping. */
void cm_cfg_check_error(struct cm_cfg_check *chk, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Load path into out (a zeroed struct of schema->size bytes). Returns 0, or -EINVAL when any error
 * was recorded in errs (out is then freed and zeroed again), -ENOMEM. A file that cannot be read
 * is reported in errs as "FILE: cannot read: reason". */
int cm_cfg_load_file(const struct cm_cfg_schema *schema, void *out, const char *path,
                     struct cm_cfg_errors *errs);

/* The same from memory; name stands for the file name in messages. */
int cm_cfg_load_buffer(const struct cm_cfg_schema *schema, void *out, const char *name,
                       const char *text, size_t len, struct cm_cfg_errors *errs);

/* Fill out with the embedded defaults only (as if the file were empty). */
int cm_cfg_load_defaults(const struct cm_cfg_schema *schema, void *out, struct cm_cfg_errors *errs);

/* Free everything a load put in obj and zero it. Accepts an already-freed (zeroed) struct. */
void cm_cfg_free(const struct cm_cfg_schema *schema, void *obj);

/* Append the effective configuration as YAML (secrets shown as their path only). Strings are
 * quoted when they need it and '$' is written "$$", so the output loads back to the same values;
 * unset strings are left out. 0 or -ENOMEM (out is then unchanged). */
int cm_cfg_dump(const struct cm_cfg_schema *schema, const void *obj, struct cm_buf *out);

/* Append a reference of every key (type, default, doc) as Markdown rows, one per field and
 * recursively for sections ("tls.key") and lists ("apps[].name"):
 *   | `key.path` | type | `default` or "required" | doc |
 * The caller writes the table header. 0 or -ENOMEM (out is then unchanged). */
int cm_cfg_describe(const struct cm_cfg_schema *schema, struct cm_buf *out);

/* (Re)read a secret from s->path. On failure the old content is kept and -errno returned
 * (-ENOENT, -EACCES, -EFBIG over 64 KiB, -ENODATA empty file, -EINVAL not a regular file or
 * no path, -ENOMEM). Trailing "\r" and "\n" are removed; the old content is wiped. */
int cm_secret_load(struct cm_secret *s);

/* Wipe and free the content and the path. Accepts NULL. */
void cm_secret_free(struct cm_secret *s);

#endif
