/* test_devlog.c - the development log provider (platypus/src/devlog.c): notifications through
 * the dispatcher end delivered, each written as one JSON line with what a real provider would
 * have been handed; the callback comes later, never from within; close waits for what is owed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/loop.h"
#include "platypus/src/devlog.h"
#include "platypus/src/dispatch.h"

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fx {
	uv_loop_t loop;
	struct cm_loop cl;
	struct pp_dispatch *d;
	struct pp_devlog *x;
	char path[64];
	int outcomes;
	struct pp_result last;
	bool closed;
};

static struct fx *fx_open(const char *file)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct pp_dispatch_config dc = {0};
	struct pp_devlog_config lc = {.name = "dev-ios", .service = PP_SVC_APNS};
	struct pp_app_desc app = {
	    .name = "dev-ios", .service = PP_SVC_APNS, .mode = PP_MODE_DEV, .send = pp_devlog_send};
	char err[256];

	assert_non_null(f);
	if (file) {
		snprintf(f->path, sizeof(f->path), "%s", file);
		lc.file = f->path;
	}
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(cm_loop_init(&f->cl, &f->loop, 0), 0);
	assert_int_equal(pp_dispatch_alloc(&f->d, &f->cl, &dc), 0);
	assert_int_equal(pp_devlog_alloc(&f->x, &f->cl, &lc, err, sizeof(err)), 0);
	app.provider = f->x;
	assert_int_equal(pp_dispatch_add_app(f->d, &app), 0);
	return f;
}

static void drained(void *arg)
{
	(void)arg;
}

static void closed(void *arg)
{
	((struct fx *)arg)->closed = true;
}

static void fx_close(struct fx *f)
{
	pp_dispatch_stop(f->d, drained, f);
	pp_dispatch_free(f->d);
	if (!f->closed)
		pp_devlog_close(f->x, closed, f);
	assert_true(f->closed);
	pp_devlog_free(f->x);
	cm_loop_close(&f->cl, NULL);
	while (uv_run(&f->loop, UV_RUN_NOWAIT))
		;
	cm_loop_free(&f->cl);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
}

static void done(void *arg, const struct pp_result *r)
{
	struct fx *f = arg;

	f->outcomes++;
	f->last = *r;
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* The loop's mailbox handle does not keep a loop alive (a daemon's listeners do): a timer
 * stands in for them while the test waits. */
static void run_until(struct fx *f, int want)
{
	uv_timer_t keep;

	uv_timer_init(&f->loop, &keep);
	uv_timer_start(&keep, tick, 10, 10);
	for (int i = 0; i < 1000 && f->outcomes < want; i++)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&keep, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void make_notif(struct pp_notif *n, bool voip)
{
	pp_notif_init(n);
	n->service = PP_SVC_APNS;
	n->mode = PP_MODE_DEV;
	n->token = strdup(TOKEN);
	n->voip = voip;
	n->has_alert = !voip;
	if (!voip) {
		n->alert.title = strdup("alice@localhost");
		n->alert.body = strdup("hi \"there\"");
	}
	n->data = json_pack("{s:s}", "call-id", "call-1");
	assert_non_null(n->token);
	assert_non_null(n->data);
}

static void test_lines_in_file(void **state)
{
	char path[] = "/tmp/test_devlog_XXXXXX";
	int fd = mkstemp(path);
	struct pp_notif n;
	struct pp_result r;
	struct fx *f;
	char buf[4096];
	ssize_t len;
	json_t *line;
	json_error_t je;
	char *nl;

	(void)state;
	assert_true(fd >= 0);
	f = fx_open(path);
	make_notif(&n, false);
	assert_int_equal(pp_dispatch_submit(f->d, &n, done, f, &r), 0);
	pp_notif_free(&n);
	/* never from within */
	assert_int_equal(f->outcomes, 0);
	run_until(f, 1);
	assert_int_equal(f->outcomes, 1);
	assert_int_equal(f->last.outcome, PP_OUT_DELIVERED);
	make_notif(&n, true);
	assert_int_equal(pp_dispatch_submit(f->d, &n, done, f, &r), 0);
	pp_notif_free(&n);
	run_until(f, 2);
	assert_int_equal(f->last.outcome, PP_OUT_DELIVERED);

	len = read(fd, buf, sizeof(buf) - 1);
	assert_true(len > 0);
	buf[len] = '\0';
	/* two lines, each a JSON object */
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	assert_non_null(strchr(nl + 1, '\n'));
	assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
	*nl = '\0';
	line = json_loads(buf, 0, &je);
	assert_non_null(line);
	assert_string_equal(json_string_value(json_object_get(line, "app")), "dev-ios");
	assert_string_equal(json_string_value(json_object_get(line, "service")), "apns");
	assert_string_equal(json_string_value(json_object_get(line, "mode")), "dev");
	assert_string_equal(json_string_value(json_object_get(line, "token")), TOKEN);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(line, "alert"), "body")),
	    "hi \"there\"");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(line, "data"), "call-id")), "call-1");
	assert_true(json_is_false(json_object_get(line, "voip")));
	assert_true(json_is_null(json_object_get(line, "ttl")));
	json_decref(line);
	line = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
	assert_non_null(line);
	assert_true(json_is_true(json_object_get(line, "voip")));
	assert_true(json_is_null(json_object_get(line, "alert")));
	assert_string_equal(json_string_value(json_object_get(line, "priority")), "high");
	json_decref(line);
	close(fd);
	unlink(path);
	fx_close(f);
}

static void test_close_waits_for_callbacks(void **state)
{
	struct pp_notif n;
	struct pp_result now;
	struct fx *f;

	(void)state;
	f = fx_open(NULL); /* the daemon's log */
	make_notif(&n, false);
	assert_int_equal(pp_dispatch_submit(f->d, &n, done, f, &now), 0);
	pp_notif_free(&n);
	/* the dispatcher sends at once: a callback is owed when the provider closes */
	pp_devlog_close(f->x, closed, f);
	assert_false(f->closed);
	run_until(f, 1);
	assert_int_equal(f->last.outcome, PP_OUT_DELIVERED);
	assert_true(f->closed);
	/* closed: nothing more is taken */
	make_notif(&n, false);
	assert_int_equal(pp_devlog_send(f->x, &n, 0, NULL, NULL, &now), -ESHUTDOWN);
	assert_int_equal(now.outcome, PP_OUT_BUSY);
	pp_notif_free(&n);
	fx_close(f);
}

static void test_unwritable_file(void **state)
{
	struct pp_devlog_config lc = {
	    .name = "x", .service = PP_SVC_FCM, .file = "/nonexistent-dir/push.log"};
	struct pp_devlog *x = NULL;
	uv_loop_t loop;
	struct cm_loop cl;
	char err[256] = "";

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(cm_loop_init(&cl, &loop, 0), 0);
	assert_int_equal(pp_devlog_alloc(&x, &cl, &lc, err, sizeof(err)), -ENOENT);
	assert_null(x);
	assert_non_null(strstr(err, "/nonexistent-dir/push.log"));
	cm_loop_close(&cl, NULL);
	while (uv_run(&loop, UV_RUN_NOWAIT))
		;
	cm_loop_free(&cl);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_in_file),
	    cmocka_unit_test(test_close_waits_for_callbacks),
	    cmocka_unit_test(test_unwritable_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
