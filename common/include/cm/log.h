/* cm/log.h - levelled logging to stderr, as text lines or JSON lines.
 *
 * The logger is the one piece of process-wide state in the suite (see docs/architecture.md):
 * it is configured once at start-up, before any thread exists, and afterwards only its level
 * may change (atomically, on SIGHUP). Each line is formatted into a private buffer and written
 * with a single write(2), so lines from several threads never interleave.
 *
 * Under systemd (JOURNAL_STREAM set) text lines carry a "<N>" priority prefix that journald
 * understands, and no timestamp (journald adds its own).
 */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

enum cm_log_level {
	CM_LOG_ERROR = 3, /* values are syslog priorities */
	CM_LOG_WARN = 4,
	CM_LOG_INFO = 6,
	CM_LOG_DEBUG = 7,
};

enum cm_log_format {
	CM_LOG_TEXT,
	CM_LOG_JSON,
};

/* Configure the logger. ident is the daemon name (borrowed; must outlive the process's logging,
 * normally a string literal). fd is where lines go (2 for stderr). Call before starting threads. */
void cm_log_setup(const char *ident, enum cm_log_level level, enum cm_log_format format, int fd);

/* Change the level at run time (thread-safe). */
void cm_log_set_level(enum cm_log_level level);

/* Nonzero when lines of this level would be written. */
int cm_log_enabled(enum cm_log_level level);

/* Parse "error", "warn", "info", "debug". 0 or -EINVAL. */
int cm_log_level_parse(const char *s, enum cm_log_level *out);
const char *cm_log_level_name(enum cm_log_level level);

/* Write one line. module names the subsystem ("admin", "cfg", ...). A trailing newline in fmt
 * is not needed. Never fails visibly: a failed write is counted, not reported. */
void cm_log_write(enum cm_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cm_log_vwrite(enum cm_log_level level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* One place that logs at most one line per interval however often it is reached, so that an
 * attack (a flood of refused connections, say) cannot flood the logs. Zero-initialised; may be
 * shared by threads. */
struct cm_log_limit {
	atomic_uint_least64_t next_ms; /* when the next line may be written */
	atomic_uint_least64_t held;    /* lines held back since the last one written */
};

/* Nonzero when a line may be written at now_ms (any monotonic clock in ms: uv_now() of any
 * loop); *held (may be NULL) then gets how many were held back since the previous line, to be
 * said in this one. Zero when the line is to be held back (it is counted). */
int cm_log_limit_pass(struct cm_log_limit *l, uint64_t now_ms, uint64_t interval_ms,
                      uint64_t *held);

#define CM_LOGE(mod, ...) cm_log_write(CM_LOG_ERROR, (mod), __VA_ARGS__)
#define CM_LOGW(mod, ...) cm_log_write(CM_LOG_WARN, (mod), __VA_ARGS__)
#define CM_LOGI(mod, ...) cm_log_write(CM_LOG_INFO, (mod), __VA_ARGS__)
#define CM_LOGD(mod, ...)                                                                          \
	do {                                                                                       \
		if (cm_log_enabled(CM_LOG_DEBUG))                                                  \
			cm_log_write(CM_LOG_DEBUG, (mod), __VA_ARGS__);                            \
	} while (0)

#endif
