/* cm/metrics.h - a registry of counters, gauges and histograms, exposed in Prometheus text
 * format (version 0.0.4).
 *
 * Registration (rare: at start-up, or the first time a label combination is seen) takes the
 * registry's lock; updates are lock-free atomics on the series pointer that registration returns,
 * so worker threads update metrics without contention. A series lives as long as the registry.
 *
 * Names and label names must match the Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*, labels
 * without ':' and not starting with "__"; "le" is reserved in histograms); label values are
 * escaped on output. Counter names should end in _total (not enforced). Registering a name again
 * with the same type and label names returns the same family (the first help text is kept); with
 * another type, other label names or other histogram bounds it fails with -EEXIST.
 *
 * Labels are passed as NULL-terminated varargs: "key", "value", "key2", "value2", NULL (at most
 * 16 pairs). The names may come in any order; they print in the order of the first registration.
 * Families print in registration order, series in creation order.
 *
 * The update functions accept a NULL handle and do nothing, so code may keep running when a
 * metric failed to register or there is no registry.
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

/* Find or create a series. 0, -EINVAL (bad name/label, odd or duplicate label list), -EEXIST
 * (type, label names or bounds clash; or the series is computed by a _fn), -ENOMEM. *out is
 * borrowed: owned by the registry, valid as long as it; NULL on failure. help may be NULL or ""
 * (then no HELP line is printed). */
int cm_metrics_counter(struct cm_metrics *m, struct cm_counter **out, const char *name,
                       const char *help, ...) __attribute__((sentinel));
int cm_metrics_gauge(struct cm_metrics *m, struct cm_gauge **out, const char *name,
                     const char *help, ...) __attribute__((sentinel));
/* bounds: strictly increasing finite upper bounds (the +Inf bucket is implicit), copied; nbounds
 * may be 0. An upper bound is inclusive: an observation equal to it counts in its bucket. */
int cm_metrics_histogram(struct cm_metrics *m, struct cm_histogram **out, const char *name,
                         const char *help, const double *bounds, size_t nbounds, ...)
    __attribute__((sentinel));

/* A gauge computed at scrape time by fn(arg) (called with the registry lock held, from the
 * thread that renders; it must not register metrics). arg is borrowed and must outlive the
 * registry. -EEXIST if the series already exists. */
int cm_metrics_gauge_fn(struct cm_metrics *m, const char *name, const char *help,
                        double (*fn)(void *arg), void *arg, ...) __attribute__((sentinel));

/* --- registration from a table ----------------------------------------------------------------
 * A module lists its metrics once, in a const table, and registers them all with one call that
 * checks every result. Each entry names the member of the module's struct that receives the
 * series handle:
 *
 *     static const struct cm_metric_def defs[] = {
 *         CM_METRIC_COUNTER_DEF(struct stats, in, "x_stanzas_total", "Stanzas", "dir", "in"),
 *         CM_METRIC_HISTOGRAM_DEF(struct stats, lat, "x_latency_seconds", "Latency",
 *                                 cm_metrics_latency_buckets, 14),
 *     };
 *     r = cm_metrics_register(m, &st, defs, CM_ARRAY_LEN(defs), err, sizeof(err));
 */
#define CM_METRIC_DEF_MAX_LABELS 4

enum cm_metric_def_type { CM_METRIC_COUNTER, CM_METRIC_GAUGE, CM_METRIC_HISTOGRAM };

struct cm_metric_def {
	enum cm_metric_def_type type;
	size_t offset; /* of the struct cm_counter * / cm_gauge * / cm_histogram * to fill */
	const char *name;
	const char *help;
	const char *labels[2 * CM_METRIC_DEF_MAX_LABELS + 1]; /* "key", "value", ..., NULL */
	const double *bounds;                                 /* histograms */
	size_t nbounds;
};

#define CM_METRIC_COUNTER_DEF(type, member, name, help, ...)                                       \
	{                                                                                          \
		CM_METRIC_COUNTER, offsetof(type, member), (name), (help), {__VA_ARGS__}, NULL, 0  \
	}
#define CM_METRIC_GAUGE_DEF(type, member, name, help, ...)                                         \
	{                                                                                          \
		CM_METRIC_GAUGE, offsetof(type, member), (name), (help), {__VA_ARGS__}, NULL, 0    \
	}
#define CM_METRIC_HISTOGRAM_DEF(type, member, name, help, bounds, nbounds, ...)                    \
	{                                                                                          \
		CM_METRIC_HISTOGRAM, offsetof(type, member), (name), (help), {__VA_ARGS__},        \
		    (bounds), (nbounds)                                                            \
	}

/* Register defs[0..n) and store each handle at base + offset. 0, or the first failure (the
 * registry's codes above) with the metric named in err (cm/err.h); the handles of the entries
 * before it are set. */
int cm_metrics_register(struct cm_metrics *m, void *base, const struct cm_metric_def *defs,
                        size_t n, char *err, size_t errlen);

void cm_metrics_inc(struct cm_counter *c);
void cm_metrics_add(struct cm_counter *c, uint64_t n);
uint64_t cm_metrics_counter_value(const struct cm_counter *c);

void cm_metrics_set(struct cm_gauge *g, double v);
void cm_metrics_gauge_add(struct cm_gauge *g, double delta); /* delta may be negative */
double cm_metrics_gauge_value(const struct cm_gauge *g);

void cm_metrics_observe(struct cm_histogram *h, double v);

/* Register the standard process_* metrics (process_cpu_seconds_total, _resident_memory_bytes,
 * _virtual_memory_bytes, _open_fds, _max_fds, _start_time_seconds), read from /proc at scrape
 * time (NaN if /proc cannot be read), and process_cpu_wait_seconds_total, the threads' time
 * runnable but waiting for a CPU, where the kernel keeps schedstats. Once per registry: a
 * second call gives -EEXIST. */
int cm_metrics_add_process(struct cm_metrics *m);

/* Append the whole registry in text exposition format. 0 or -ENOMEM/-ENOBUFS, and then out is
 * left as it was. */
int cm_metrics_render(struct cm_metrics *m, struct cm_buf *out);

/* Common bucket bounds, in seconds, for request latency (0.1 ms .. 10 s). */
extern const double cm_metrics_latency_buckets[];
extern const size_t cm_metrics_latency_nbuckets;

#endif
