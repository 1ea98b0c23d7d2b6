/* log.c - levelled logging to stderr (see cm/log.h). */
#include "cm/log.h"
#include "cm/buf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The process-wide logger: written by cm_log_setup() before threads start, then read-only except
 * for the atomic level. This is the documented exception to "no mutable globals". */
static struct {
	const char *ident;
	enum cm_log_format format;
	int fd;
	int journal; /* stderr is connected to journald: use <N> prefixes, no timestamps */
	atomic_int level;
} logger = {"suite", CM_LOG_TEXT, 2, 0, CM_LOG_INFO};

static const struct {
	const char *name;
	enum cm_log_level level;
} level_names[] = {
    {"error", CM_LOG_ERROR},
    {"warn", CM_LOG_WARN},
    {"info", CM_LOG_INFO},
    {"debug", CM_LOG_DEBUG},
};

void cm_log_setup(const char *ident, enum cm_log_level level, enum cm_log_format format, int fd)
{
	logger.ident = ident;
	logger.format = format;
	logger.fd = fd;
	logger.journal = getenv("JOURNAL_STREAM") != NULL;
	atomic_store(&logger.level, (int)level);
}

void cm_log_set_level(enum cm_log_level level)
{
	atomic_store(&logger.level, (int)level);
}

int cm_log_enabled(enum cm_log_level level)
{
	return (int)level <= atomic_load_explicit(&logger.level, memory_order_relaxed);
}

int cm_log_limit_pass(struct cm_log_limit *l, uint64_t now_ms, uint64_t interval_ms, uint64_t *held)
{
	uint_least64_t next = atomic_load_explicit(&l->next_ms, memory_order_relaxed);
	uint64_t n;

	/* of several threads arriving together, the one that moves next_ms on writes the line */
	if (now_ms < next ||
	    !atomic_compare_exchange_strong(&l->next_ms, &next, now_ms + interval_ms)) {
		atomic_fetch_add_explicit(&l->held, 1, memory_order_relaxed);
		return 0;
	}
	n = atomic_exchange_explicit(&l->held, 0, memory_order_relaxed);
	if (held)
		*held = n;
	return 1;
}

int cm_log_level_parse(const char *s, enum cm_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i].name) == 0) {
			*out = level_names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cm_log_level_name(enum cm_log_level level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i].level == level)
			return level_names[i].name;
	return "?";
}

static void format_time(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	size_t k;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		p += w;
		n -= (size_t)w;
	}
}

void cm_log_vwrite(enum cm_log_level level, const char *module, const char *fmt, va_list ap)
{
	char stackbuf[1024];
	char ts[40];
	struct cm_buf msg, line;

	if (!cm_log_enabled(level))
		return;

	/* The message first, so JSON can escape it as a whole. */
	cm_buf_init(&msg, 64 * 1024);
	cm_buf_init(&line, 0);
	if (cm_buf_vprintf(&msg, fmt, ap) != 0) {
		/* Out of memory or a huge message: say so rather than drop the line. */
		cm_buf_free(&msg);
		snprintf(stackbuf, sizeof(stackbuf),
		         "<%d>%s: %s: (log message too long or no memory)\n", (int)level,
		         logger.ident, module);
		write_all(logger.fd, stackbuf, strlen(stackbuf));
		return;
	}

	if (logger.format == CM_LOG_JSON) {
		format_time(ts, sizeof(ts));
		cm_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"daemon\":\"", ts,
		              cm_log_level_name(level));
		cm_buf_json_escape(&line, logger.ident, strlen(logger.ident));
		cm_buf_puts(&line, "\",\"module\":\"");
		cm_buf_json_escape(&line, module, strlen(module));
		cm_buf_puts(&line, "\",\"msg\":\"");
		cm_buf_json_escape(&line, msg.data ? msg.data : "", msg.len);
		cm_buf_puts(&line, "\"}\n");
	} else if (logger.journal) {
		cm_buf_printf(&line, "<%d>%s: %s\n", (int)level, module, msg.data ? msg.data : "");
	} else {
		format_time(ts, sizeof(ts));
		cm_buf_printf(&line, "%s %-5s %s/%s: %s\n", ts, cm_log_level_name(level),
		              logger.ident, module, msg.data ? msg.data : "");
	}
	if (line.data)
		write_all(logger.fd, line.data, line.len);
	cm_buf_free(&line);
	cm_buf_free(&msg);
}

void cm_log_write(enum cm_log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_log_vwrite(level, module, fmt, ap);
	va_end(ap);
}
