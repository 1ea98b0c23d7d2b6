/* devlog.h - the log provider, for development only: an app whose "provider" writes every
 * notification it would send as one JSON line, to a file or to the daemon's log, and reports it
 * delivered. It lets the whole suite run on a laptop (make run) without Apple's or Google's
 * credentials, and shows exactly what a real provider would have been handed. config.c refuses
 * it in production mode.
 *
 * The line: {"time", "app", "service", "mode", "token", "priority", "ttl", "topic",
 * "collapse_id", "tags", "voip", "silent", "mutable_content", "alert", "data"} (members not set
 * are null). Writes are synchronous (a development tool, not a hot path).
 *
 * Single-threaded: every call on the loop's thread.
 */
#ifndef PP_DEVLOG_H
#define PP_DEVLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/buf.h"
#include "notif.h"

struct cm_loop;
struct pp_devlog;

struct pp_devlog_config {
	const char *name;        /* copied: the app's */
	enum pp_service service; /* what it stands in for */
	const char *file;        /* borrowed during alloc; NULL: the daemon's log */
};

/* A log provider on loop l (borrowed), its file opened for appending (created 0600). 0, or a
 * negative errno with err saying why (the file cannot be opened), or -ENOMEM. */
int pp_devlog_alloc(struct pp_devlog **out, struct cm_loop *l, const struct pp_devlog_config *cfg,
                    char *err, size_t errlen);

/* One attempt, in the dispatcher's pp_send_fn shape: the line written, 0 and cb later (on the
 * loop, never from within) with a delivered result; or a negative errno with *now filled (the
 * write failed, or the provider is closing) and no callback. */
int pp_devlog_send(void *devlog, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                   void *arg, struct pp_result *now);

/* n as the JSON line (no newline) appended to out, app named as given. 0 or -ENOMEM. */
int pp_devlog_format(struct cm_buf *out, const char *app, const struct pp_notif *n);

/* No more sends; done(arg) once every callback owed has run (maybe from within). */
void pp_devlog_close(struct pp_devlog *x, void (*done)(void *arg), void *arg);

/* After close's done. Accepts NULL. */
void pp_devlog_free(struct pp_devlog *x);

#endif
