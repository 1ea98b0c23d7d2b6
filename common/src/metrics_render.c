/* metrics_render.c - the Prometheus text exposition format, version 0.0.4. */
#include "metrics_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"

static const char *const type_names[] = {
    [CM_METRICS_COUNTER] = "counter",
    [CM_METRICS_GAUGE] = "gauge",
    [CM_METRICS_HISTOGRAM] = "histogram",
};

size_t cm_metrics__fmt_double(char *out, double v)
{
	int n;

	if (isnan(v))
		return (size_t)snprintf(out, CM_METRICS_DBL_LEN, "NaN");
	if (isinf(v))
		return (size_t)snprintf(out, CM_METRICS_DBL_LEN, "%s", v > 0 ? "+Inf" : "-Inf");
	/* Integers (byte counts, timestamps) read best in full: %g would switch to an exponent
	 * from 1e15 on. Below 1e17 every integral double prints exactly with %.0f. */
	if (v == trunc(v) && fabs(v) < 1e17)
		return (size_t)snprintf(out, CM_METRICS_DBL_LEN, "%.0f", v);
	/* The shortest of 15, 16, 17 significant digits that reads back as v; anything that
	 * round-trips with fewer than 15 digits prints the same at 15 once %g drops the zeros. */
	for (int prec = 15;; prec++) {
		n = snprintf(out, CM_METRICS_DBL_LEN, "%.*g", prec, v);
		if (prec == 17 || strtod(out, NULL) == v)
			return (size_t)n;
	}
}

/* HELP text escaping: only backslash and newline (quotes are literal there). */
static int escape_help(struct cm_buf *b, const char *s)
{
	int err = 0;

	for (; *s && !err; s++) {
		if (*s == '\\')
			err = cm_buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			err = cm_buf_append(b, "\\n", 2);
		else
			err = cm_buf_append(b, s, 1);
	}
	return err;
}

static int put_double(struct cm_buf *b, double v)
{
	char tmp[CM_METRICS_DBL_LEN];
	size_t n = cm_metrics__fmt_double(tmp, v);

	return cm_buf_append(b, tmp, n);
}

/* One sample line's name and labels: name[suffix]{labels[,extra]} */
static int put_sample_name(struct cm_buf *b, const char *name, const char *suffix,
                           const char *labels, const char *extra)
{
	int have = labels[0] != '\0', err;

	err = cm_buf_printf(b, "%s%s", name, suffix);
	if (!err && (have || extra))
		err = cm_buf_printf(b, "{%s%s%s}", labels, have && extra ? "," : "",
		                    extra ? extra : "");
	return err ? err : cm_buf_append(b, " ", 1);
}

static int render_histogram(struct cm_buf *b, const struct cm_metrics_family *f,
                            const struct cm_metrics_series *s)
{
	const struct cm_histogram *h = &s->u.histogram;
	char le[CM_METRICS_DBL_LEN + 8], num[CM_METRICS_DBL_LEN];
	uint64_t cum = 0;
	int err = 0;

	for (size_t i = 0; i <= h->nbounds && !err; i++) {
		/* Updates are not frozen during a scrape: counts are cumulated from one reading of
		 * each bucket, so _count always equals the +Inf bucket. */
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < h->nbounds) {
			cm_metrics__fmt_double(num, h->bounds[i]);
			snprintf(le, sizeof(le), "le=\"%s\"", num);
		} else {
			snprintf(le, sizeof(le), "le=\"+Inf\"");
		}
		err = put_sample_name(b, f->name, "_bucket", s->labels, le);
		err = err ? err : cm_buf_printf(b, "%" PRIu64 "\n", cum);
	}
	err = err ? err : put_sample_name(b, f->name, "_sum", s->labels, NULL);
	err = err ? err : put_double(b, cm_metrics__load_double(&h->sum_bits));
	err = err ? err : cm_buf_append(b, "\n", 1);
	err = err ? err : put_sample_name(b, f->name, "_count", s->labels, NULL);
	return err ? err : cm_buf_printf(b, "%" PRIu64 "\n", cum);
}

static int render_series(struct cm_buf *b, const struct cm_metrics_family *f,
                         const struct cm_metrics_series *s)
{
	int err;

	if (s->kind == CM_METRICS_KIND_VALUE && f->type == CM_METRICS_HISTOGRAM)
		return render_histogram(b, f, s);
	err = put_sample_name(b, f->name, "", s->labels, NULL);
	if (err)
		return err;
	if (s->kind == CM_METRICS_KIND_FN)
		err = put_double(b, s->u.fn.fn(s->u.fn.arg));
	else if (f->type == CM_METRICS_COUNTER)
		err = cm_buf_printf(b, "%" PRIu64, cm_metrics_counter_value(&s->u.counter));
	else
		err = put_double(b, cm_metrics__load_double(&s->u.gauge.bits));
	return err ? err : cm_buf_append(b, "\n", 1);
}

static int render_family(struct cm_buf *b, const struct cm_metrics_family *f)
{
	int err = 0;

	/* An empty HELP line says nothing; leave it out rather than print a trailing space. */
	if (f->help[0]) {
		err = cm_buf_printf(b, "# HELP %s ", f->name);
		err = err ? err : escape_help(b, f->help);
		err = err ? err : cm_buf_append(b, "\n", 1);
	}
	err = err ? err : cm_buf_printf(b, "# TYPE %s %s\n", f->name, type_names[f->type]);
	for (const struct cm_metrics_series *s = f->first; s && !err; s = s->next)
		err = render_series(b, f, s);
	return err;
}

int cm_metrics_render(struct cm_metrics *m, struct cm_buf *out)
{
	size_t start = out->len;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	for (const struct cm_metrics_family *f = m->first; f && !err; f = f->next)
		err = render_family(out, f);
	pthread_mutex_unlock(&m->lock);
	if (err) {
		/* all or nothing, like every cm_buf append */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}
