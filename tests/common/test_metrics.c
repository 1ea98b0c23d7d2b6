/* test_metrics.c - unit tests for the metrics registry and its text exposition (cm/metrics.h). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/metrics.h"
#include "common/src/metrics_int.h"
#include "tests/support/alloc.h"

static char *render(struct cm_metrics *m)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(cm_metrics_render(m, &b), 0);
	if (!b.data)
		return strdup("");
	return cm_buf_steal(&b);
}

static void assert_render(struct cm_metrics *m, const char *want)
{
	char *got = render(m);

	assert_string_equal(got, want);
	free(got);
}

static void test_counter(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c, *c2, *other;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "jobs_total", "Jobs done.", "kind", "a", NULL),
	                 0);
	assert_int_equal(cm_metrics_counter_value(c), 0);
	cm_metrics_inc(c);
	cm_metrics_add(c, 41);
	assert_int_equal(cm_metrics_counter_value(c), 42);
	/* the same labels give the same series, whatever the help says the second time */
	assert_int_equal(cm_metrics_counter(m, &c2, "jobs_total", "ignored", "kind", "a", NULL), 0);
	assert_ptr_equal(c, c2);
	assert_int_equal(
	    cm_metrics_counter(m, &other, "jobs_total", "Jobs done.", "kind", "b", NULL), 0);
	assert_ptr_not_equal(c, other);
	/* finding an existing series allocates nothing: it is done per request in places */
	test_alloc_reset();
	assert_int_equal(cm_metrics_counter(m, &c2, "jobs_total", "Jobs done.", "kind", "b", NULL),
	                 0);
	assert_ptr_equal(c2, other);
	assert_int_equal(test_alloc_count(), 0);
	assert_render(m, "# HELP jobs_total Jobs done.\n"
	                 "# TYPE jobs_total counter\n"
	                 "jobs_total{kind=\"a\"} 42\n"
	                 "jobs_total{kind=\"b\"} 0\n");
	cm_metrics_free(m);
}

static void test_gauge(void **state)
{
	struct cm_metrics *m;
	struct cm_gauge *g;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_gauge(m, &g, "queue_depth", "Items queued.", NULL), 0);
	assert_true(cm_metrics_gauge_value(g) == 0.0);
	cm_metrics_set(g, 10);
	cm_metrics_gauge_add(g, -2.5);
	assert_true(cm_metrics_gauge_value(g) == 7.5);
	cm_metrics_gauge_add(g, -10);
	assert_true(cm_metrics_gauge_value(g) == -2.5);
	assert_render(m, "# HELP queue_depth Items queued.\n"
	                 "# TYPE queue_depth gauge\n"
	                 "queue_depth -2.5\n");
	cm_metrics_free(m);
}

static double answer(void *arg)
{
	return *(double *)arg;
}

static void test_gauge_fn(void **state)
{
	struct cm_metrics *m;
	struct cm_gauge *g;
	double v = 0.005;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_gauge_fn(m, "pool_ratio", "", answer, &v, "pool", "x", NULL),
	                 0);
	assert_render(m, "# TYPE pool_ratio gauge\n"
	                 "pool_ratio{pool=\"x\"} 0.005\n");
	v = 1e300;
	assert_render(m, "# TYPE pool_ratio gauge\n"
	                 "pool_ratio{pool=\"x\"} 1e+300\n");
	/* a computed series cannot be registered twice nor turned into a handle */
	assert_int_equal(cm_metrics_gauge_fn(m, "pool_ratio", "", answer, &v, "pool", "x", NULL),
	                 -EEXIST);
	assert_int_equal(cm_metrics_gauge(m, &g, "pool_ratio", "", "pool", "x", NULL), -EEXIST);
	assert_null(g);
	/* but a handle series beside it is fine */
	assert_int_equal(cm_metrics_gauge(m, &g, "pool_ratio", "", "pool", "y", NULL), 0);
	assert_int_equal(cm_metrics_gauge_fn(m, "pool_ratio", "", answer, &v, "pool", "y", NULL),
	                 -EEXIST);
	assert_int_equal(cm_metrics_gauge_fn(m, "pool_ratio", "", NULL, &v, "pool", "z", NULL),
	                 -EINVAL);
	cm_metrics_free(m);
}

static void test_names(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;
	struct cm_histogram *h;
	double b[] = {1};

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "ok:name_1", "", NULL), 0);
	assert_int_equal(cm_metrics_counter(m, &c, ":ok", "", NULL), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "_ok", "", NULL), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "", "", NULL), -EINVAL);
	assert_null(c);
	assert_int_equal(cm_metrics_counter(m, &c, "1abc", "", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "a-b", "", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "a b", "", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "caf\xc3\xa9", "", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, NULL, "", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(NULL, &c, "x", "", NULL), -EINVAL);

	assert_int_equal(cm_metrics_counter(m, &c, "l_total", "", "a_1", "v", NULL), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "a:b", "v", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "1a", "v", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "__a", "v", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "", "v", NULL), -EINVAL);
	/* duplicate label names, odd lists */
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "a", "1", "a", "2", NULL),
	                 -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "a", NULL), -EINVAL);
	assert_int_equal(cm_metrics_counter(m, &c, "l2_total", "", "a", "1", "b", NULL), -EINVAL);
	/* "le" is the bucket label of histograms, fine elsewhere */
	assert_int_equal(cm_metrics_histogram(m, &h, "h_seconds", "", b, 1, "le", "1", NULL),
	                 -EINVAL);
	assert_null(h);
	assert_int_equal(cm_metrics_counter(m, &c, "le_total", "", "le", "1", NULL), 0);
	/* nothing failed half-way: only the valid families are there */
	assert_render(m, "# TYPE ok:name_1 counter\nok:name_1 0\n"
	                 "# TYPE :ok counter\n:ok 0\n"
	                 "# TYPE _ok counter\n_ok 0\n"
	                 "# TYPE l_total counter\nl_total{a_1=\"v\"} 0\n"
	                 "# TYPE le_total counter\nle_total{le=\"1\"} 0\n");
	cm_metrics_free(m);
}

static void test_too_many_labels(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "x_total", "", "a", "1", "b", "1", "c", "1", "d",
	                                    "1", "e", "1", "f", "1", "g", "1", "h", "1", "i", "1",
	                                    "j", "1", "k", "1", "l", "1", "m", "1", "n", "1", "o",
	                                    "1", "p", "1", NULL),
	                 0);
	assert_int_equal(cm_metrics_counter(m, &c, "y_total", "", "a", "1", "b", "1", "c", "1", "d",
	                                    "1", "e", "1", "f", "1", "g", "1", "h", "1", "i", "1",
	                                    "j", "1", "k", "1", "l", "1", "m", "1", "n", "1", "o",
	                                    "1", "p", "1", "q", "1", NULL),
	                 -EINVAL);
	cm_metrics_free(m);
}

static void test_clashes(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c, *c2;
	struct cm_gauge *g;
	struct cm_histogram *h, *h2;
	const double b1[] = {1, 2}, b2[] = {1, 3}, b3[] = {1};

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "x_total", "", "a", "1", "b", "2", NULL), 0);
	/* another type */
	assert_int_equal(cm_metrics_gauge(m, &g, "x_total", "", "a", "1", "b", "2", NULL), -EEXIST);
	assert_null(g);
	assert_int_equal(cm_metrics_gauge_fn(m, "x_total", "", answer, NULL, NULL), -EEXIST);
	/* other label names, fewer, more */
	assert_int_equal(cm_metrics_counter(m, &c2, "x_total", "", "a", "1", "c", "2", NULL),
	                 -EEXIST);
	assert_int_equal(cm_metrics_counter(m, &c2, "x_total", "", "a", "1", NULL), -EEXIST);
	assert_int_equal(cm_metrics_counter(m, &c2, "x_total", "", NULL), -EEXIST);
	assert_int_equal(
	    cm_metrics_counter(m, &c2, "x_total", "", "a", "1", "b", "2", "c", "3", NULL), -EEXIST);
	/* the same names in another order are the same series */
	assert_int_equal(cm_metrics_counter(m, &c2, "x_total", "", "b", "2", "a", "1", NULL), 0);
	assert_ptr_equal(c, c2);

	assert_int_equal(cm_metrics_histogram(m, &h, "h_seconds", "", b1, 2, NULL), 0);
	assert_int_equal(cm_metrics_histogram(m, &h2, "h_seconds", "", b1, 2, NULL), 0);
	assert_ptr_equal(h, h2);
	assert_int_equal(cm_metrics_histogram(m, &h2, "h_seconds", "", b2, 2, NULL), -EEXIST);
	assert_int_equal(cm_metrics_histogram(m, &h2, "h_seconds", "", b3, 1, NULL), -EEXIST);
	assert_int_equal(cm_metrics_counter(m, &c2, "h_seconds", "", NULL), -EEXIST);
	cm_metrics_free(m);
}

static void test_bounds(void **state)
{
	struct cm_metrics *m;
	struct cm_histogram *h;
	const double equal[] = {1, 1}, down[] = {2, 1}, nan[] = {1, NAN}, inf[] = {1, INFINITY},
	             ok[] = {-1, 0, 1e-9, 5};

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", equal, 2, NULL), -EINVAL);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", down, 2, NULL), -EINVAL);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", nan, 2, NULL), -EINVAL);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", inf, 2, NULL), -EINVAL);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", NULL, 2, NULL), -EINVAL);
	assert_int_equal(cm_metrics_histogram(m, &h, "a", "", ok, 4, NULL), 0);
	/* only the implicit +Inf bucket */
	assert_int_equal(cm_metrics_histogram(m, &h, "b", "", NULL, 0, NULL), 0);
	cm_metrics_observe(h, 3);
	assert_render(m, "# TYPE a histogram\n"
	                 "a_bucket{le=\"-1\"} 0\n"
	                 "a_bucket{le=\"0\"} 0\n"
	                 "a_bucket{le=\"1e-09\"} 0\n"
	                 "a_bucket{le=\"5\"} 0\n"
	                 "a_bucket{le=\"+Inf\"} 0\n"
	                 "a_sum 0\n"
	                 "a_count 0\n"
	                 "# TYPE b histogram\n"
	                 "b_bucket{le=\"+Inf\"} 1\n"
	                 "b_sum 3\n"
	                 "b_count 1\n");
	cm_metrics_free(m);
}

static void test_histogram(void **state)
{
	struct cm_metrics *m;
	struct cm_histogram *h;
	const double b[] = {0.25, 0.5, 1};

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(
	    cm_metrics_histogram(m, &h, "op_seconds", "Time per op.", b, 3, "op", "read", NULL), 0);
	/* an upper bound is inclusive ("le"): 0.25 counts in the first bucket */
	cm_metrics_observe(h, 0.25);
	cm_metrics_observe(h, 0.0);
	cm_metrics_observe(h, -1);
	cm_metrics_observe(h, 0.5);
	cm_metrics_observe(h, 0.75);
	cm_metrics_observe(h, 4);
	cm_metrics_observe(h, 1e9);
	assert_render(m, "# HELP op_seconds Time per op.\n"
	                 "# TYPE op_seconds histogram\n"
	                 "op_seconds_bucket{op=\"read\",le=\"0.25\"} 3\n"
	                 "op_seconds_bucket{op=\"read\",le=\"0.5\"} 4\n"
	                 "op_seconds_bucket{op=\"read\",le=\"1\"} 5\n"
	                 "op_seconds_bucket{op=\"read\",le=\"+Inf\"} 7\n"
	                 "op_seconds_sum{op=\"read\"} 1000000004.5\n"
	                 "op_seconds_count{op=\"read\"} 7\n");
	/* NaN goes to +Inf and poisons the sum, as in the reference clients */
	cm_metrics_observe(h, NAN);
	assert_render(m, "# HELP op_seconds Time per op.\n"
	                 "# TYPE op_seconds histogram\n"
	                 "op_seconds_bucket{op=\"read\",le=\"0.25\"} 3\n"
	                 "op_seconds_bucket{op=\"read\",le=\"0.5\"} 4\n"
	                 "op_seconds_bucket{op=\"read\",le=\"1\"} 5\n"
	                 "op_seconds_bucket{op=\"read\",le=\"+Inf\"} 8\n"
	                 "op_seconds_sum{op=\"read\"} NaN\n"
	                 "op_seconds_count{op=\"read\"} 8\n");
	cm_metrics_free(m);
}

static void test_latency_buckets(void **state)
{
	struct cm_metrics *m;
	struct cm_histogram *h;
	char *text;

	(void)state;
	assert_int_equal(cm_metrics_latency_nbuckets, 16);
	assert_true(cm_metrics_latency_buckets[0] == 0.0001);
	assert_true(cm_metrics_latency_buckets[15] == 10);
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_histogram(m, &h, "lat_seconds", "", cm_metrics_latency_buckets,
	                                      cm_metrics_latency_nbuckets, NULL),
	                 0);
	cm_metrics_observe(h, 0.003);
	text = render(m);
	assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.0001\"} 0\n"
	                             "lat_seconds_bucket{le=\"0.00025\"} 0\n"
	                             "lat_seconds_bucket{le=\"0.0005\"} 0\n"
	                             "lat_seconds_bucket{le=\"0.001\"} 0\n"
	                             "lat_seconds_bucket{le=\"0.0025\"} 0\n"
	                             "lat_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "lat_seconds_bucket{le=\"2.5\"} 1\n"
	                             "lat_seconds_bucket{le=\"5\"} 1\n"
	                             "lat_seconds_bucket{le=\"10\"} 1\n"
	                             "lat_seconds_bucket{le=\"+Inf\"} 1\n"
	                             "lat_seconds_sum 0.003\n"
	                             "lat_seconds_count 1\n"));
	free(text);
	cm_metrics_free(m);
}

static void test_escaping(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "esc_total", "Back\\slash \"quoted\"\nnext line",
	                                    "v", "a\\b\"c\nd", "w", "", NULL),
	                 0);
	assert_render(m, "# HELP esc_total Back\\\\slash \"quoted\"\\nnext line\n"
	                 "# TYPE esc_total counter\n"
	                 "esc_total{v=\"a\\\\b\\\"c\\nd\",w=\"\"} 0\n");
	/* values that escape alike are still told apart: a\"b vs a"b */
	assert_int_equal(cm_metrics_counter(m, &c, "esc_total", "", "v", "a\\\"", "w", "", NULL),
	                 0);
	assert_int_equal(cm_metrics_counter(m, &c, "esc_total", "", "v", "a\"", "w", "", NULL), 0);
	assert_render(m, "# HELP esc_total Back\\\\slash \"quoted\"\\nnext line\n"
	                 "# TYPE esc_total counter\n"
	                 "esc_total{v=\"a\\\\b\\\"c\\nd\",w=\"\"} 0\n"
	                 "esc_total{v=\"a\\\\\\\"\",w=\"\"} 0\n"
	                 "esc_total{v=\"a\\\"\",w=\"\"} 0\n");
	cm_metrics_free(m);
}

/* A small registry, the whole text compared: order, HELP/TYPE, every value kind. */
static void test_exposition(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *ok, *bad;
	struct cm_gauge *temp;
	struct cm_histogram *h;
	const double b[] = {0.25, 0.5, 1};
	double v = 12;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &ok, "http_requests_total", "Requests served.",
	                                    "code", "200", "method", "GET", NULL),
	                 0);
	assert_int_equal(
	    cm_metrics_gauge(m, &temp, "temperature_celsius", "Current temperature.", NULL), 0);
	assert_int_equal(cm_metrics_counter(m, &bad, "http_requests_total", "Requests served.",
	                                    "method", "POST", "code", "500", NULL),
	                 0);
	assert_int_equal(
	    cm_metrics_histogram(m, &h, "rpc_duration_seconds", "RPC latency.", b, 3, NULL), 0);
	assert_int_equal(cm_metrics_gauge_fn(m, "items", "Computed.", answer, &v, NULL), 0);
	cm_metrics_add(ok, 1027);
	cm_metrics_inc(bad);
	cm_metrics_inc(bad);
	cm_metrics_inc(bad);
	cm_metrics_set(temp, -3.5);
	cm_metrics_observe(h, 0.25);
	cm_metrics_observe(h, 0.5);
	cm_metrics_observe(h, 4);
	assert_render(m, "# HELP http_requests_total Requests served.\n"
	                 "# TYPE http_requests_total counter\n"
	                 "http_requests_total{code=\"200\",method=\"GET\"} 1027\n"
	                 "http_requests_total{code=\"500\",method=\"POST\"} 3\n"
	                 "# HELP temperature_celsius Current temperature.\n"
	                 "# TYPE temperature_celsius gauge\n"
	                 "temperature_celsius -3.5\n"
	                 "# HELP rpc_duration_seconds RPC latency.\n"
	                 "# TYPE rpc_duration_seconds histogram\n"
	                 "rpc_duration_seconds_bucket{le=\"0.25\"} 1\n"
	                 "rpc_duration_seconds_bucket{le=\"0.5\"} 2\n"
	                 "rpc_duration_seconds_bucket{le=\"1\"} 2\n"
	                 "rpc_duration_seconds_bucket{le=\"+Inf\"} 3\n"
	                 "rpc_duration_seconds_sum 4.75\n"
	                 "rpc_duration_seconds_count 3\n"
	                 "# HELP items Computed.\n"
	                 "# TYPE items gauge\n"
	                 "items 12\n");
	cm_metrics_free(m);
}

static void check_fmt(double v, const char *want)
{
	char out[CM_METRICS_DBL_LEN];
	size_t n = cm_metrics__fmt_double(out, v);

	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_fmt_double(void **state)
{
	const double hard[] = {
	    0.1 + 0.2,     1.0 / 3,           5e-324, 1.7976931348623157e308, -2.2e-308,
	    123456.789e-7, 9007199254740993.0};

	(void)state;
	check_fmt(42, "42");
	check_fmt(0, "0");
	check_fmt(-3, "-3");
	check_fmt(0.005, "0.005");
	check_fmt(0.1, "0.1");
	check_fmt(2.5, "2.5");
	check_fmt(1e-9, "1e-09");
	check_fmt(INFINITY, "+Inf");
	check_fmt(-INFINITY, "-Inf");
	check_fmt(NAN, "NaN");
	check_fmt(1234567890123.0, "1234567890123");
	check_fmt(1e16, "10000000000000000");
	check_fmt(1e20, "1e+20");
	check_fmt(0.1 + 0.2, "0.30000000000000004");
	/* every finite value reads back exactly */
	for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++) {
		char out[CM_METRICS_DBL_LEN];

		cm_metrics__fmt_double(out, hard[i]);
		assert_true(strtod(out, NULL) == hard[i]);
	}
}

struct hammer {
	struct cm_counter *c;
	struct cm_gauge *g;
	struct cm_histogram *h;
};

#define HAMMER_THREADS 4
#define HAMMER_ITERS   100000

static void *hammer_run(void *arg)
{
	struct hammer *hm = arg;

	for (int i = 0; i < HAMMER_ITERS; i++) {
		cm_metrics_inc(hm->c);
		cm_metrics_gauge_add(hm->g, 1);
		cm_metrics_observe(hm->h, (i & 1) ? 0.5 : 2);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct cm_metrics *m;
	struct hammer hm;
	pthread_t t[HAMMER_THREADS];
	const double b[] = {1};
	char *text;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &hm.c, "hits_total", "", NULL), 0);
	assert_int_equal(cm_metrics_gauge(m, &hm.g, "level", "", NULL), 0);
	assert_int_equal(cm_metrics_histogram(m, &hm.h, "sizes", "", b, 1, NULL), 0);
	for (int i = 0; i < HAMMER_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &hm), 0);
	for (int i = 0; i < HAMMER_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(cm_metrics_counter_value(hm.c), HAMMER_THREADS * HAMMER_ITERS);
	/* integral sums below 2^53 are exact, so no update may be lost in the CAS loop */
	assert_true(cm_metrics_gauge_value(hm.g) == HAMMER_THREADS * HAMMER_ITERS);
	text = render(m);
	assert_non_null(strstr(text, "sizes_bucket{le=\"1\"} 200000\n"
	                             "sizes_bucket{le=\"+Inf\"} 400000\n"
	                             "sizes_sum 500000\n"
	                             "sizes_count 400000\n"));
	free(text);
	cm_metrics_free(m);
}

/* Registration from several threads at once: each gets its own series, none lost. */
static void *register_run(void *arg)
{
	struct cm_metrics *m = arg;

	for (int i = 0; i < 200; i++) {
		struct cm_counter *c;
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(cm_metrics_counter(m, &c, "reg_total", "", "i", v, NULL), 0);
		cm_metrics_inc(c);
	}
	return NULL;
}

static void test_threads_register(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;
	pthread_t t[HAMMER_THREADS];

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	for (int i = 0; i < HAMMER_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, register_run, m), 0);
	for (int i = 0; i < HAMMER_THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 200; i += 37) {
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(cm_metrics_counter(m, &c, "reg_total", "", "i", v, NULL), 0);
		assert_int_equal(cm_metrics_counter_value(c), HAMMER_THREADS);
	}
	cm_metrics_free(m);
}

/* The value on the line "name value\n" of text. */
static double sample(const char *text, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	assert_non_null(p);
	return strtod(p + strlen(key), NULL);
}

static void test_process(void **state)
{
	struct cm_metrics *m;
	char *text;
	double v;
	volatile double spin = 0;

	(void)state;
	/* burn a little CPU so the counter has something to count */
	for (long i = 0; i < 20000000; i++)
		spin += (double)i;
	assert_true(spin > 0);
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_add_process(m), 0);
	assert_int_equal(cm_metrics_add_process(m), -EEXIST);
	text = render(m);
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));
	v = sample(text, "process_cpu_seconds_total");
	assert_true(v > 0 && v < 3600);
	v = sample(text, "process_resident_memory_bytes");
	assert_true(v > 1e5 && v < 1e12);
	assert_true(sample(text, "process_virtual_memory_bytes") >= v);
	v = sample(text, "process_open_fds");
	assert_true(v >= 3 && v < 10000);
	assert_true(sample(text, "process_max_fds") >= v);
	v = sample(text, "process_start_time_seconds");
	/* started within the last hour, and not in the future (tick rounding aside) */
	assert_true(v <= (double)time(NULL) + 2);
	assert_true(v > (double)time(NULL) - 3600);
	assert_null(strstr(text, "NaN"));
	free(text);
	cm_metrics_free(m);
}

/* --- process_cpu_wait_seconds_total: more busy threads than CPUs must wait for one ---------- */

struct spinner {
	pthread_t t;
	atomic_int *spun;
	atomic_bool *release;
};

static void *spin_then_wait(void *arg)
{
	struct spinner *sp = arg;
	struct timespec now, until, nap = {0, 1000000};
	volatile unsigned long x = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += 150000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	do {
		for (int i = 0; i < 10000; i++)
			x = x + (unsigned long)i;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < until.tv_sec ||
	         (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec));
	/* stay alive (asleep) until the scrape: a thread that ends takes its wait with it */
	atomic_fetch_add(sp->spun, 1);
	while (!atomic_load(sp->release))
		nanosleep(&nap, NULL);
	return NULL;
}

static void test_process_cpu_wait(void **state)
{
	struct cm_metrics *m;
	struct spinner sp[3];
	atomic_int spun = 0;
	atomic_bool release = false;
	cpu_set_t mine, one;
	pthread_attr_t attr;
	int n = 3, cpu = 0;
	char *text;
	double before, during, after;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_add_process(m), 0);
	text = render(m);
	if (!strstr(text, "# TYPE process_cpu_wait_seconds_total counter\n")) {
		free(text);
		cm_metrics_free(m);
		skip(); /* a kernel without schedstats: the metric is left out, not NaN */
	}
	before = sample(text, "process_cpu_wait_seconds_total");
	free(text);
	assert_true(before >= 0);
	/* three spinning threads on one CPU, whatever the machine's size: each must wait */
	assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
	while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &mine))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(pthread_attr_init(&attr), 0);
	assert_int_equal(pthread_attr_setaffinity_np(&attr, sizeof(one), &one), 0);
	for (int i = 0; i < n; i++) {
		sp[i].spun = &spun;
		sp[i].release = &release;
		assert_int_equal(pthread_create(&sp[i].t, &attr, spin_then_wait, &sp[i]), 0);
	}
	pthread_attr_destroy(&attr);
	while (atomic_load(&spun) < n) {
		struct timespec nap = {0, 1000000};

		nanosleep(&nap, NULL);
	}
	text = render(m);
	during = sample(text, "process_cpu_wait_seconds_total");
	free(text);
	atomic_store(&release, true);
	for (int i = 0; i < n; i++)
		pthread_join(sp[i].t, NULL);
	/* three threads of 150 ms on one CPU: about 200 ms of waiting in all */
	assert_true(during > before + 0.005);
	/* the spinners are gone, and their share with them: the counter does not go down */
	text = render(m);
	after = sample(text, "process_cpu_wait_seconds_total");
	free(text);
	assert_true(after >= during);
	cm_metrics_free(m);
}

static void test_null_handles(void **state)
{
	(void)state;
	/* updates on a handle that failed to register are no-ops, not crashes */
	cm_metrics_inc(NULL);
	cm_metrics_add(NULL, 3);
	cm_metrics_set(NULL, 1);
	cm_metrics_gauge_add(NULL, 1);
	cm_metrics_observe(NULL, 1);
	assert_int_equal(cm_metrics_counter_value(NULL), 0);
	assert_true(cm_metrics_gauge_value(NULL) == 0);
	cm_metrics_free(NULL);
}

static void test_render_limit(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;
	struct cm_buf b;

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_counter(m, &c, "a_long_enough_name_total", "help", NULL), 0);
	cm_buf_init(&b, 40);
	assert_int_equal(cm_buf_puts(&b, "prefix;"), 0);
	assert_int_equal(cm_metrics_render(m, &b), -ENOBUFS);
	/* the buffer is as it was */
	assert_string_equal(b.data, "prefix;");
	assert_int_equal(b.len, 7);
	cm_buf_free(&b);
	cm_metrics_free(m);
}

/* Everything that allocates, from an empty registry to a rendered page. */
static int scenario_register(void *arg)
{
	struct cm_metrics *m;
	struct cm_counter *c;
	struct cm_gauge *g;
	struct cm_histogram *h;
	struct cm_buf b;
	const double bounds[] = {0.5, 1};
	int r;

	(void)arg;
	cm_buf_init(&b, 0);
	r = cm_metrics_alloc(&m);
	if (r)
		return r;
	r = cm_metrics_counter(m, &c, "a_total", "A.", "x", "1", "y", "2", NULL);
	r = r ? r : cm_metrics_counter(m, &c, "a_total", "A.", "x", "3", "y", "4", NULL);
	r = r ? r : cm_metrics_gauge(m, &g, "b", "B.", NULL);
	r = r ? r : cm_metrics_histogram(m, &h, "c_seconds", "C.", bounds, 2, "k", "v", NULL);
	r = r ? r : cm_metrics_gauge_fn(m, "d", "D.", answer, &(double){1}, NULL);
	r = r ? r : cm_metrics_add_process(m);
	if (r == 0)
		cm_metrics_observe(h, 0.7);
	r = r ? r : cm_metrics_render(m, &b);
	if (r == 0 && !strstr(b.data, "c_seconds_bucket{k=\"v\",le=\"1\"} 1\n"))
		r = -EIO;
	cm_buf_free(&b);
	cm_metrics_free(m);
	return r;
}

static void test_alloc_registration(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(scenario_register, NULL, 500) > 10);
}

/* Render alone, into a fresh buffer, against a registry built beforehand. */
static int scenario_render(void *arg)
{
	struct cm_metrics *m = arg;
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = cm_metrics_render(m, &b);
	if (r == 0 && (!b.data || !strstr(b.data, "# TYPE h histogram\n")))
		r = -EIO;
	cm_buf_free(&b);
	return r;
}

static void test_alloc_render(void **state)
{
	struct cm_metrics *m;
	struct cm_counter *c;
	struct cm_histogram *h;
	char name[32];

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	/* enough text that the buffer has to grow several times */
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "family_%d_total", i);
		assert_int_equal(
		    cm_metrics_counter(m, &c, name, "Some help text.", "label", "value", NULL), 0);
	}
	assert_int_equal(cm_metrics_histogram(m, &h, "h", "", cm_metrics_latency_buckets,
	                                      cm_metrics_latency_nbuckets, NULL),
	                 0);
	assert_true(test_alloc_sweep(scenario_render, m, 100) > 3);
	cm_metrics_free(m);
}

/* A table registers every series, fills each handle, and names the metric that fails. */
struct table_stats {
	struct cm_counter *in, *out;
	struct cm_gauge *open;
	struct cm_histogram *lat;
};

static void test_register_table(void **state)
{
	static const double bounds[] = {0.001, 0.01};
	static const struct cm_metric_def defs[] = {
	    CM_METRIC_COUNTER_DEF(struct table_stats, in, "t_msgs_total", "Messages", "dir", "in"),
	    CM_METRIC_COUNTER_DEF(struct table_stats, out, "t_msgs_total", "Messages", "dir",
	                          "out"),
	    CM_METRIC_GAUGE_DEF(struct table_stats, open, "t_open", "Open things", NULL),
	    CM_METRIC_HISTOGRAM_DEF(struct table_stats, lat, "t_latency_seconds", "Latency", bounds,
	                            2, NULL),
	};
	static const struct cm_metric_def bad[] = {
	    CM_METRIC_GAUGE_DEF(struct table_stats, open, "t_msgs_total", "A clash", "dir", "in"),
	};
	struct table_stats st = {0};
	struct cm_metrics *m;
	struct cm_buf out;
	char err[CM_ERR_MAX] = "";

	(void)state;
	assert_int_equal(cm_metrics_alloc(&m), 0);
	assert_int_equal(cm_metrics_register(m, &st, defs, 4, err, sizeof(err)), 0);
	assert_non_null(st.in);
	assert_non_null(st.out);
	assert_true(st.in != st.out);
	cm_metrics_inc(st.out);
	cm_metrics_set(st.open, 3);
	cm_metrics_observe(st.lat, 0.005);
	cm_buf_init(&out, 0);
	assert_int_equal(cm_metrics_render(m, &out), 0);
	assert_non_null(strstr(out.data, "t_msgs_total{dir=\"out\"} 1\n"));
	assert_non_null(strstr(out.data, "t_open 3\n"));
	assert_non_null(strstr(out.data, "t_latency_seconds_bucket{le=\"0.01\"} 1\n"));
	cm_buf_free(&out);
	assert_int_equal(cm_metrics_register(m, &st, bad, 1, err, sizeof(err)), -EEXIST);
	assert_string_equal(err,
	                    "metric t_msgs_total: registered before with another type or labels");
	cm_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter),
	    cmocka_unit_test(test_gauge),
	    cmocka_unit_test(test_gauge_fn),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_too_many_labels),
	    cmocka_unit_test(test_clashes),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_latency_buckets),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_exposition),
	    cmocka_unit_test(test_fmt_double),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_threads_register),
	    cmocka_unit_test(test_process),
	    cmocka_unit_test(test_process_cpu_wait),
	    cmocka_unit_test(test_null_handles),
	    cmocka_unit_test(test_render_limit),
	    cmocka_unit_test(test_alloc_registration),
	    cmocka_unit_test(test_alloc_render),
	    cmocka_unit_test(test_register_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
