/* cm/metrics.h - a registry of counters, gauges and histograms, exposed in Prometheus text
 * format (version 0.0.4).
 *
 * Registration (rare: at start-up, or the first time a label combination is seen) takes the
 * registry's lock; updates are lock-free atomics on the series pointer that registration returns,
 * so worker threads update metrics without contention. A series lives as long as the registry.
 *
 * Names and label names must match the Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*, labels
 * without ':'); label values are escaped on output. Registering a name again with the same type
 * and help returns the same family; with another type it fails with -EEXIST.
 *
 * Labels are passed as NULL-terminated varargs: "key", "value", "key2", "value2", NULL.
 */
#ifndef CM_METRICS_H
#define CM_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct cm_buf;
struct cm_metrics;
struct cm_counter;
struct cm_gauge;
struct cm_histogram;

int cm_metrics_alloc(struct cm_metrics **out);
void cm_metrics_free(struct cm_metrics *m); /* accepts NULL */

/* Find or create a series. 0, -EINVAL (bad name/label, odd label list), -EEXIST (type clash),
 * -ENOMEM. *out is borrowed: owned by the registry. */
int cm_metrics_counter(struct cm_metrics *m, struct cm_counter **out, const char *name,
		       const char *help, ...) __attribute__((sentinel));
int cm_metrics_gauge(struct cm_metrics *m, struct cm_gauge **out, const char *name,
		     const char *help, ...) __attribute__((sentinel));
/* bounds: strictly increasing upper bounds (the +Inf bucket is implicit), copied. */
int cm_metrics_histogram(struct cm_metrics *m, struct cm_histogram **out, const char *name,
			 const char *help, const double *bounds, size_t nbounds, ...)
	__attribute__((sentinel));

/* A gauge computed at scrape time by fn(arg) (called with the registry lock held, from the
 * thread that renders; it must not register metrics). */
int cm_metrics_gauge_fn(struct cm_metrics *m, const char *name, const char *help,
			double (*fn)(void *arg), void *arg, ...) __attribute__((sentinel));

void cm_metrics_inc(struct cm_counter *c);
void cm_metrics_add(struct cm_counter *c, uint64_t n);
uint64_t cm_metrics_counter_value(const struct cm_counter *c);

void cm_metrics_set(struct cm_gauge *g, double v);
void cm_metrics_gauge_add(struct cm_gauge *g, double delta); /* delta may be negative */
double cm_metrics_gauge_value(const struct cm_gauge *g);

void cm_metrics_observe(struct cm_histogram *h, double v);

/* Register the standard process_* metrics (CPU seconds, resident memory, open fds, max fds,
 * start time), read from /proc at scrape time. */
int cm_metrics_add_process(struct cm_metrics *m);

/* Append the whole registry in text exposition format. 0 or -ENOMEM/-ENOBUFS. */
int cm_metrics_render(struct cm_metrics *m, struct cm_buf *out);

/* Common bucket bounds, in seconds, for request latency (0.1 ms .. 10 s). */
extern const double cm_metrics_latency_buckets[];
extern const size_t cm_metrics_latency_nbuckets;

#endif
