/* cfg_int.h - private interfaces shared by the cfg_*.c files of the configuration loader. */
#ifndef CM_CFG_INT_H
#define CM_CFG_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/cfg.h"

/* Limits against hostile or broken input. */
#define CFG_MAX_DEPTH  32         /* nested mappings/sequences */
#define CFG_MAX_NODES  100000     /* scalars, mappings and sequences in one document */
#define CFG_MAX_FILE   (16 << 20) /* bytes read by cm_cfg_load_file */
#define CFG_MAX_ERRORS 100        /* messages recorded before giving up */
#define CFG_WHY_MAX    256        /* room for one reason produced by a value parser */

/* --- parsed document (cfg_yaml.c) ------------------------------------------------------------ */

enum cfg_kind {
	CFG_SCALAR,
	CFG_MAP,
	CFG_SEQ,
};

/* One node of the document. The tree owns everything below its root. */
struct cfg_node {
	enum cfg_kind kind;
	bool plain;             /* SCALAR: written without quotes (only those can mean null) */
	unsigned long line;     /* 1-based line where the node starts */
	char *text;             /* SCALAR: owned, NUL-terminated; may hold NULs ("\0" escapes) */
	size_t len;             /* SCALAR: bytes in text */
	struct cfg_node **kids; /* owned. MAP: key, value, key, value...; SEQ: the items */
	size_t n, cap;
};

/* A problem that stops parsing: syntax error, alias, tag, depth... */
struct cfg_yaml_error {
	unsigned long line; /* 1-based */
	char msg[CFG_WHY_MAX];
};

/* Parse text (len bytes, need not be NUL-terminated) into a tree. *root is NULL for an empty
 * stream. Returns 0, -EINVAL with err filled, or -ENOMEM. */
int cm_cfg__yaml_parse(const char *text, size_t len, struct cfg_node **root,
                       struct cfg_yaml_error *err);

/* Free a tree. Accepts NULL. */
void cm_cfg__node_free(struct cfg_node *n);

/* True for a plain scalar that YAML reads as null: empty, "~", "null", "Null", "NULL". */
bool cm_cfg__node_is_null(const struct cfg_node *n);

/* --- scalar syntax (cfg_value.c) ------------------------------------------------------------- */

/* Each parser returns 0, or -EINVAL (bad syntax) / -ERANGE (too large) and leaves *out alone. */
int cm_cfg__parse_int(const char *s, long long *out);
int cm_cfg__parse_bool(const char *s, bool *out);
int cm_cfg__parse_duration(const char *s, uint64_t *ms);
int cm_cfg__parse_size(const char *s, uint64_t *bytes);

/* Expand ${NAME} and $$ in s (len bytes). *out receives a new string (caller frees). Returns 0,
 * -ENOMEM, or -EINVAL with the reason in err (cm/err.h). */
int cm_cfg__expand(const char *s, size_t len, char **out, char *err, size_t errlen);

/* Write ms / bytes in the shortest exact unit ("90s", "5m", "64k"); buf needs 32 bytes. */
void cm_cfg__format_duration(uint64_t ms, char buf[32]);
void cm_cfg__format_size(uint64_t bytes, char buf[32]);

/* --- loading (cfg_errors.c, cfg_load.c, cfg_field.c) ------------------------------------------ */

/* State of one load. */
struct cfg_loader {
	const char *name;           /* borrowed: file name used in messages */
	struct cm_cfg_errors *errs; /* borrowed: where messages are appended */
	struct cm_buf path;         /* key path of the value being loaded ("apps[2].key") */
	size_t nerrs;               /* messages recorded by this load */
	int err;                    /* sticky -ENOMEM: once set, loading unwinds */
	bool full;                  /* CFG_MAX_ERRORS reached: stop looking for more */
	const char *def;            /* borrowed: while loading a default, its text, else NULL */
};

struct cm_cfg_check {
	struct cfg_loader *ld;
	const struct cfg_node *map; /* the mapping as written, NULL if it was absent */
	unsigned long line;         /* line reported for keys not written in map */
};

/* True when loading should unwind: out of memory or too many errors. */
static inline bool cm_cfg__stop(const struct cfg_loader *ld)
{
	return ld->err || ld->full;
}

/* Record "NAME:LINE: path: message" (or the <default> form while loading a default). */
void cm_cfg__error(struct cfg_loader *ld, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cm_cfg__verror(struct cfg_loader *ld, unsigned long line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Record a message with no key path and no line formatting applied ("NAME: ..."). */
void cm_cfg__error_raw(struct cfg_loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Extend the key path by ".key" (len bytes) or "[i]"; both return the length to restore with
 * cm_cfg__path_pop(). On allocation failure ld->err is set and the path is left as it was. */
size_t cm_cfg__path_push_key(struct cfg_loader *ld, const char *key, size_t len);
size_t cm_cfg__path_push_index(struct cfg_loader *ld, size_t i);
void cm_cfg__path_pop(struct cfg_loader *ld, size_t mark);

/* Store the scalar val into the field at dst (string-like, number, bool, enum, addr, secret),
 * recording an error when it does not fit. val is a SCALAR or not; its line is used. */
void cm_cfg__field_load_scalar(struct cfg_loader *ld, const struct cm_cfg_field *f, void *dst,
                               const struct cfg_node *val);

/* Expand a scalar meant to be a string into *out (owned by the caller). Records "expected a
 * string"-style errors itself; returns 0, or -1 when an error was recorded or memory ran out. */
int cm_cfg__scalar_text(struct cfg_loader *ld, const struct cfg_node *val, const char *expected,
                        char **out);

/* Free what a load stored in the field at dst (not the field's own memory). */
void cm_cfg__field_free(const struct cm_cfg_field *f, void *dst);

/* The words used for a type in messages ("an integer") and in the reference ("integer"). */
const char *cm_cfg__type_noun(enum cm_cfg_type t);
const char *cm_cfg__type_name(enum cm_cfg_type t);

#endif
