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

#define CM_LOGE(mod, ...) cm_log_write(CM_LOG_ERROR, (mod), __VA_ARGS__)
#define CM_LOGW(mod, ...) cm_log_write(CM_LOG_WARN, (mod), __VA_ARGS__)
#define CM_LOGI(mod, ...) cm_log_write(CM_LOG_INFO, (mod), __VA_ARGS__)
#define CM_LOGD(mod, ...)                                                                          \
	do {                                                                                       \
		if (cm_log_enabled(CM_LOG_DEBUG))                                                  \
			cm_log_write(CM_LOG_DEBUG, (mod), __VA_ARGS__);                            \
	} while (0)

#endif
