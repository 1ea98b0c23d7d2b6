/* devlog.c - the development log provider (devlog.h): notifications written as JSON lines. */
#include "devlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cm/err.h"
#include "cm/log.h"
#include "cm/loop.h"

struct pp_devlog {
	struct cm_loop *loop; /* borrowed */
	char *name;           /* owned */
	enum pp_service service;
	int fd;           /* owned; -1: the daemon's log */
	unsigned pending; /* callbacks posted and not yet run */
	unsigned long long sent;
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
};

/* A delivered result waiting for its turn on the loop. */
struct completion {
	struct pp_devlog *x; /* borrowed: stays until pending is back to 0 */
	pp_attempt_cb cb;
	void *arg;
	unsigned long long seq;
};

int pp_devlog_alloc(struct pp_devlog **out, struct cm_loop *l, const struct pp_devlog_config *cfg,
                    char *err, size_t errlen)
{
	struct pp_devlog *x = calloc(1, sizeof(*x));

	*out = NULL;
	if (!x || !(x->name = strdup(cfg->name))) {
		free(x);
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	}
	x->loop = l;
	x->service = cfg->service;
	x->fd = -1;
	if (cfg->file) {
		x->fd = open(cfg->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
		if (x->fd < 0) {
			int r = -errno;

			free(x->name);
			free(x);
			return cm_errf(err, errlen, r, "%s: %s", cfg->file, strerror(-r));
		}
	}
	*out = x;
	return 0;
}

/* A string member, or null. */
static int set_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static json_t *alert_json(const struct pp_alert *a)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (set_str(o, "title", a->title) || set_str(o, "body", a->body) ||
	    set_str(o, "click_action", a->click_action) || set_str(o, "tag", a->tag) ||
	    set_str(o, "sound", a->sound) ||
	    json_object_set_new(o, "badge", a->badge >= 0 ? json_integer(a->badge) : json_null())) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int pp_devlog_format(struct cm_buf *out, const char *app, const struct pp_notif *n)
{
	json_t *o = json_object(), *tags = json_array();
	struct timeval tv;
	struct tm tm;
	char when[40];
	char *text = NULL;
	int r = -ENOMEM;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ",
	         (long)(tv.tv_usec / 1000));
	if (!o || !tags)
		goto out;
	for (size_t i = 0; i < n->ntags; i++)
		if (json_array_append_new(tags, json_string(n->tags[i])))
			goto out;
	if (set_str(o, "time", when) || set_str(o, "app", app) ||
	    set_str(o, "service", pp_service_name(n->service)) ||
	    set_str(o, "mode", pp_mode_name(n->mode)) || set_str(o, "token", n->token) ||
	    set_str(o, "priority", pp_notif_priority(n) == PP_PRIO_HIGH ? "high" : "normal") ||
	    json_object_set_new(o, "ttl", n->ttl >= 0 ? json_integer(n->ttl) : json_null()) ||
	    set_str(o, "topic", n->topic) || set_str(o, "collapse_id", n->collapse_id) ||
	    json_object_set(o, "tags", tags) ||
	    json_object_set_new(o, "voip", json_boolean(n->voip)) ||
	    json_object_set_new(o, "silent", json_boolean(pp_notif_silent(n))) ||
	    json_object_set_new(o, "mutable_content", json_boolean(n->mutable_content)) ||
	    json_object_set_new(o, "alert", n->has_alert ? alert_json(&n->alert) : json_null()) ||
	    json_object_set(o, "data", n->data ? n->data : json_null()))
		goto out;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text)
		r = cm_buf_puts(out, text);
out:
	free(text);
	json_decref(tags);
	json_decref(o);
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void maybe_done(struct pp_devlog *x)
{
	void (*done)(void *) = x->done;

	if (x->closing && !x->pending && done) {
		x->done = NULL;
		done(x->done_arg);
	}
}

static void complete(void *arg)
{
	struct completion *c = arg;
	struct pp_devlog *x = c->x;
	struct pp_result res;

	pp_result_set(&res, PP_OUT_DELIVERED, PP_CAUSE_NONE, 200, NULL);
	snprintf(res.id, sizeof(res.id), "log-%llu", c->seq);
	res.attempts = 1;
	c->cb(c->arg, &res, -1);
	free(c);
	x->pending--;
	maybe_done(x);
}

int pp_devlog_send(void *devlog, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                   void *arg, struct pp_result *now)
{
	struct pp_devlog *x = devlog;
	struct completion *c;
	struct cm_buf line;
	int r;

	(void)deadline_ms;
	if (x->closing) {
		pp_result_set(now, PP_OUT_BUSY, PP_CAUSE_SHUTDOWN, 0, "shutting down");
		return -ESHUTDOWN;
	}
	c = calloc(1, sizeof(*c));
	cm_buf_init(&line, 0);
	r = c ? pp_devlog_format(&line, x->name, n) : -ENOMEM;
	if (!r && x->fd >= 0)
		r = cm_buf_puts(&line, "\n") ? -ENOMEM : write_all(x->fd, line.data, line.len);
	else if (!r)
		CM_LOGI("devlog", "%s: would send %s", x->name, line.data);
	cm_buf_free(&line);
	if (r) {
		free(c);
		pp_result_set(now, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0,
		              r == -ENOMEM ? "out of memory" : "cannot write the log file");
		return r;
	}
	c->x = x;
	c->cb = cb;
	c->arg = arg;
	c->seq = ++x->sent;
	r = cm_loop_call(x->loop, complete, c);
	if (r) {
		free(c);
		pp_result_set(now, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0, "out of memory");
		return r;
	}
	x->pending++;
	return 0;
}

void pp_devlog_close(struct pp_devlog *x, void (*done)(void *arg), void *arg)
{
	x->closing = true;
	if (done) {
		x->done = done;
		x->done_arg = arg;
	}
	maybe_done(x);
}

void pp_devlog_free(struct pp_devlog *x)
{
	if (!x)
		return;
	if (x->fd >= 0)
		close(x->fd);
	free(x->name);
	free(x);
}
