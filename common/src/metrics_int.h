/* metrics_int.h - the registry's internal structures, shared by the metrics*.c files only. */
#ifndef CM_METRICS_INT_H
#define CM_METRICS_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/metrics.h"

/* A series carries at most this many labels; more is rejected with -EINVAL rather than bounding
 * the arrays dynamically, since a metric with that many dimensions is a mistake. */
#define CM_METRICS_MAX_LABELS 16

/* Room for any double that cm_metrics__fmt_double() prints ("-1.2345678901234567e-308"). */
#define CM_METRICS_DBL_LEN 32

enum cm_metrics_type {
	CM_METRICS_COUNTER,
	CM_METRICS_GAUGE,
	CM_METRICS_HISTOGRAM,
};

/* The public handle types are the value cells inside a series, so an update is one atomic
 * operation on memory the caller already holds a pointer to. */
struct cm_counter {
	_Atomic uint64_t value;
};

struct cm_gauge {
	_Atomic uint64_t bits; /* a double, stored bit for bit so it can be updated by CAS */
};

struct cm_histogram {
	const double *bounds;      /* borrowed from the family */
	size_t nbounds;            /* upper bounds, without the implicit +Inf */
	_Atomic uint64_t sum_bits; /* a double, as in cm_gauge */
	_Atomic uint64_t *buckets; /* owned; nbounds + 1 non-cumulative counts, the last is +Inf */
};

/* A value computed at scrape time (gauge, or counter for process_cpu_seconds_total). */
struct cm_metrics_fn {
	double (*fn)(void *arg);
	void *arg; /* borrowed */
};

enum cm_metrics_kind {
	CM_METRICS_KIND_VALUE, /* updated through the handle */
	CM_METRICS_KIND_FN,    /* computed by fn at render time */
};

struct cm_metrics_series {
	struct cm_metrics_series *next; /* creation order */
	char *labels; /* owned; rendered and escaped, `a="x",b="y"`, "" without labels; also the
	               * lookup key, since escaping is injective */
	enum cm_metrics_kind kind;
	union {
		struct cm_counter counter;
		struct cm_gauge gauge;
		struct cm_histogram histogram;
		struct cm_metrics_fn fn;
	} u;
};

struct cm_metrics_family {
	struct cm_metrics_family *next; /* registration order */
	char *name;                     /* owned */
	char *help;                     /* owned; the first registration's help wins */
	enum cm_metrics_type type;
	size_t nlabels;
	char *label_names[CM_METRICS_MAX_LABELS]; /* owned; the order series are rendered in */
	double *bounds;                           /* owned; histograms only */
	size_t nbounds;
	struct cm_metrics_series *first, *last;
};

struct cm_metrics {
	pthread_mutex_t lock; /* guards the family and series lists, not the values */
	struct cm_metrics_family *first, *last;
	uint64_t cpu_wait_ns; /* process_cpu_wait_seconds_total's highest reading; under lock */
};

/* Register (or find) a counter series whose value fn(arg) computes at scrape time; the varargs
 * are the label pairs, NULL-terminated. Same errors as cm_metrics_counter(). Used for process
 * CPU time, which is a counter but is read from /proc rather than incremented. */
int cm_metrics__counter_fn(struct cm_metrics *m, const char *name, const char *help,
                           double (*fn)(void *arg), void *arg, ...) __attribute__((sentinel));

/* Format v the way the exposition format wants it: the shortest decimal that reads back as the
 * same double, without exponent for ordinary integers ("42", "0.005"), and "+Inf", "-Inf",
 * "NaN". out must hold CM_METRICS_DBL_LEN bytes. Returns the length. */
size_t cm_metrics__fmt_double(char *out, double v);

/* Read a double stored in an atomic cell (relaxed: values are statistics, not synchronisation). */
double cm_metrics__load_double(const _Atomic uint64_t *cell);

#endif
