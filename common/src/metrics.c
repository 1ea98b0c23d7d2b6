/* metrics.c - the metrics registry: registration under a lock, lock-free updates (cm/metrics.h). */
#include "metrics_int.h"
#include "cm/err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"

const double cm_metrics_latency_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t cm_metrics_latency_nbuckets =
    sizeof(cm_metrics_latency_buckets) / sizeof(cm_metrics_latency_buckets[0]);

/* What a registration call asks for, gathered before the lock is taken. */
struct reg {
	enum cm_metrics_type type;
	enum cm_metrics_kind kind;
	const char *name;
	const char *help;
	const double *bounds;
	size_t nbounds;
	struct cm_metrics_fn fn;
	size_t nlabels;
	const char *keys[CM_METRICS_MAX_LABELS];
	const char *values[CM_METRICS_MAX_LABELS];
};

int cm_metrics_alloc(struct cm_metrics **out)
{
	struct cm_metrics *m = calloc(1, sizeof(*m));
	int r;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	r = pthread_mutex_init(&m->lock, NULL);
	if (r) {
		free(m);
		return -r;
	}
	*out = m;
	return 0;
}

static void series_free(struct cm_metrics_series *s)
{
	if (!s)
		return;
	free(s->labels);
	if (s->kind == CM_METRICS_KIND_VALUE)
		free(s->u.histogram.buckets); /* NULL unless a histogram */
	free(s);
}

static void family_free(struct cm_metrics_family *f)
{
	struct cm_metrics_series *s, *next;

	if (!f)
		return;
	for (s = f->first; s; s = next) {
		next = s->next;
		series_free(s);
	}
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->label_names[i]);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

void cm_metrics_free(struct cm_metrics *m)
{
	struct cm_metrics_family *f, *next;

	if (!m)
		return;
	for (f = m->first; f; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* --- validation ------------------------------------------------------------------------------ */

static int is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_metric_name(const char *s)
{
	if (!s || !(is_alpha_(*s) || *s == ':'))
		return 0;
	for (s++; *s; s++)
		if (!(is_alpha_(*s) || is_digit(*s) || *s == ':'))
			return 0;
	return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, and not "__...", which Prometheus reserves for itself. */
static int valid_label_name(const char *s)
{
	if (!s || !is_alpha_(*s) || (s[0] == '_' && s[1] == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(is_alpha_(*s) || is_digit(*s)))
			return 0;
	return 1;
}

static int valid_bounds(const double *bounds, size_t n)
{
	if (n && !bounds)
		return 0;
	for (size_t i = 0; i < n; i++) {
		/* +Inf is implicit; an explicit one would print a duplicate bucket */
		if (!isfinite(bounds[i]))
			return 0;
		if (i > 0 && !(bounds[i] > bounds[i - 1]))
			return 0;
	}
	return 1;
}

/* Check the "key", "value", ..., NULL list kv and take it into r. */
static int collect_labels(struct reg *r, const char *const *kv)
{
	const char *k;

	r->nlabels = 0;
	while ((k = *kv++) != NULL) {
		const char *v = *kv++;

		if (!v || r->nlabels == CM_METRICS_MAX_LABELS)
			return -EINVAL; /* odd list, or too many labels */
		if (!valid_label_name(k))
			return -EINVAL;
		if (r->type == CM_METRICS_HISTOGRAM && strcmp(k, "le") == 0)
			return -EINVAL; /* the bucket label */
		for (size_t i = 0; i < r->nlabels; i++)
			if (strcmp(r->keys[i], k) == 0)
				return -EINVAL;
		r->keys[r->nlabels] = k;
		r->values[r->nlabels] = v;
		r->nlabels++;
	}
	return 0;
}

/* The varargs list as an array for collect_labels(); a list too long to be valid is cut so
 * that collect_labels() refuses it. */
static void va_labels(va_list ap, const char *kv[2 * CM_METRICS_MAX_LABELS + 3])
{
	size_t i = 0;

	while (i < 2 * CM_METRICS_MAX_LABELS + 2 && (kv[i] = va_arg(ap, const char *)) != NULL)
		i++;
	kv[i] = NULL;
}

/* --- lookup and creation --------------------------------------------------------------------- */

static struct cm_metrics_family *find_family(struct cm_metrics *m, const char *name)
{
	for (struct cm_metrics_family *f = m->first; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Does an existing family accept this registration? Label names may come in any order. */
static int family_matches(const struct cm_metrics_family *f, const struct reg *r)
{
	if (f->type != r->type || f->nlabels != r->nlabels)
		return 0;
	for (size_t i = 0; i < r->nlabels; i++) {
		size_t j;

		for (j = 0; j < f->nlabels; j++)
			if (strcmp(f->label_names[j], r->keys[i]) == 0)
				break;
		if (j == f->nlabels)
			return 0;
	}
	if (f->type == CM_METRICS_HISTOGRAM) {
		if (f->nbounds != r->nbounds)
			return 0;
		for (size_t i = 0; i < f->nbounds; i++)
			if (f->bounds[i] != r->bounds[i])
				return 0;
	}
	return 1;
}

static int family_new(const struct reg *r, struct cm_metrics_family **out)
{
	struct cm_metrics_family *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->type = r->type;
	f->name = strdup(r->name);
	f->help = strdup(r->help ? r->help : "");
	if (!f->name || !f->help)
		goto nomem;
	for (size_t i = 0; i < r->nlabels; i++) {
		f->label_names[i] = strdup(r->keys[i]);
		if (!f->label_names[i])
			goto nomem;
		f->nlabels++;
	}
	if (r->type == CM_METRICS_HISTOGRAM && r->nbounds) {
		f->bounds = malloc(r->nbounds * sizeof(double));
		if (!f->bounds)
			goto nomem;
		memcpy(f->bounds, r->bounds, r->nbounds * sizeof(double));
	}
	f->nbounds = r->type == CM_METRICS_HISTOGRAM ? r->nbounds : 0;
	*out = f;
	return 0;
nomem:
	family_free(f);
	return -ENOMEM;
}

/* The value r gives for the label name. */
static const char *value_of(const struct reg *r, const char *name)
{
	for (size_t j = 0; j < r->nlabels; j++)
		if (strcmp(r->keys[j], name) == 0)
			return r->values[j];
	return "";
}

/* Label value escaping for the exposition format: backslash, double quote and newline. */
static int escape_value(struct cm_buf *b, const char *s)
{
	int err = 0;

	for (; *s && !err; s++) {
		switch (*s) {
		case '\\':
			err = cm_buf_append(b, "\\\\", 2);
			break;
		case '"':
			err = cm_buf_append(b, "\\\"", 2);
			break;
		case '\n':
			err = cm_buf_append(b, "\\n", 2);
			break;
		default:
			err = cm_buf_append(b, s, 1);
		}
	}
	return err;
}

/* The series key: labels in the family's order, escaped as they will be printed. */
static int render_labels(const struct cm_metrics_family *f, const struct reg *r, char **out)
{
	struct cm_buf b;
	int err = 0;

	*out = NULL;
	cm_buf_init(&b, 0);
	err = cm_buf_append(&b, "", 0); /* an empty key is still a string */
	for (size_t i = 0; i < f->nlabels && !err; i++) {
		err = cm_buf_printf(&b, "%s%s=\"", i ? "," : "", f->label_names[i]);
		err = err ? err : escape_value(&b, value_of(r, f->label_names[i]));
		err = err ? err : cm_buf_append(&b, "\"", 1);
	}
	if (err) {
		cm_buf_free(&b);
		return err;
	}
	*out = cm_buf_steal(&b);
	return 0;
}

static int series_new(const struct cm_metrics_family *f, const struct reg *r,
                      struct cm_metrics_series **out)
{
	struct cm_metrics_series *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->kind = r->kind;
	err = render_labels(f, r, &s->labels);
	if (err)
		goto fail;
	if (r->kind == CM_METRICS_KIND_FN) {
		s->u.fn = r->fn;
	} else if (f->type == CM_METRICS_COUNTER) {
		atomic_init(&s->u.counter.value, 0);
	} else if (f->type == CM_METRICS_GAUGE) {
		atomic_init(&s->u.gauge.bits, 0); /* all-zero bits are +0.0 */
	} else {
		struct cm_histogram *h = &s->u.histogram;

		h->bounds = f->bounds;
		h->nbounds = f->nbounds;
		atomic_init(&h->sum_bits, 0);
		h->buckets = malloc((f->nbounds + 1) * sizeof(*h->buckets));
		if (!h->buckets) {
			err = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i <= f->nbounds; i++)
			atomic_init(&h->buckets[i], 0);
	}
	*out = s;
	return 0;
fail:
	series_free(s);
	return err;
}

/* Does the stored key say what render_labels() would make of r? Compared in place, so finding an
 * existing series (the common case, e.g. a request counter looked up per request) allocates
 * nothing. */
static int key_matches(const char *k, const struct cm_metrics_family *f, const struct reg *r)
{
	for (size_t i = 0; i < f->nlabels; i++) {
		size_t n = strlen(f->label_names[i]);

		if (i && *k++ != ',')
			return 0;
		if (strncmp(k, f->label_names[i], n) != 0 || k[n] != '=' || k[n + 1] != '"')
			return 0;
		k += n + 2;
		for (const char *v = value_of(r, f->label_names[i]); *v; v++) {
			const char *esc = *v == '\\'   ? "\\\\"
			                  : *v == '"'  ? "\\\""
			                  : *v == '\n' ? "\\n"
			                               : NULL;

			if (!esc) {
				if (*k++ != *v)
					return 0;
				continue;
			}
			/* never reads past the key's NUL: a mismatch stops first */
			if (k[0] != esc[0] || k[1] != esc[1])
				return 0;
			k += 2;
		}
		if (*k++ != '"')
			return 0;
	}
	return *k == '\0';
}

/* Find or create the series r describes. A new family is linked only together with its first
 * series, so a failed registration leaves the registry exactly as it was. */
static int lookup(struct cm_metrics *m, const struct reg *r, struct cm_metrics_series **out)
{
	struct cm_metrics_family *f, *nf = NULL;
	struct cm_metrics_series *s = NULL;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	f = find_family(m, r->name);
	if (f && !family_matches(f, r)) {
		err = -EEXIST;
		goto out;
	}
	if (!f) {
		err = family_new(r, &nf);
		if (err)
			goto out;
		f = nf;
	}
	for (s = f->first; s; s = s->next)
		if (key_matches(s->labels, f, r))
			break;
	if (s) {
		/* A computed series has no handle to share, and a handle cannot become computed. */
		if (s->kind != r->kind || r->kind == CM_METRICS_KIND_FN)
			err = -EEXIST;
		goto out;
	}
	err = series_new(f, r, &s);
	if (err)
		goto out;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	if (nf) {
		if (m->last)
			m->last->next = nf;
		else
			m->first = nf;
		m->last = nf;
		nf = NULL;
	}
out:
	pthread_mutex_unlock(&m->lock);
	family_free(nf);
	*out = err ? NULL : s;
	return err;
}

static int do_register(struct cm_metrics *m, struct reg *r, const char *const *kv,
                       struct cm_metrics_series **out)
{
	int err;

	*out = NULL;
	if (!m || !valid_metric_name(r->name))
		return -EINVAL;
	if (r->type == CM_METRICS_HISTOGRAM && !valid_bounds(r->bounds, r->nbounds))
		return -EINVAL;
	if (r->kind == CM_METRICS_KIND_FN && !r->fn.fn)
		return -EINVAL;
	err = collect_labels(r, kv);
	return err ? err : lookup(m, r, out);
}

static int vregister(struct cm_metrics *m, struct reg *r, va_list ap,
                     struct cm_metrics_series **out)
{
	const char *kv[2 * CM_METRICS_MAX_LABELS + 3];

	va_labels(ap, kv);
	return do_register(m, r, kv, out);
}

int cm_metrics_counter(struct cm_metrics *m, struct cm_counter **out, const char *name,
                       const char *help, ...)
{
	struct reg r = {.type = CM_METRICS_COUNTER, .name = name, .help = help};
	struct cm_metrics_series *s;
	va_list ap;
	int err;

	va_start(ap, help);
	err = vregister(m, &r, ap, &s);
	va_end(ap);
	*out = err ? NULL : &s->u.counter;
	return err;
}

int cm_metrics_gauge(struct cm_metrics *m, struct cm_gauge **out, const char *name,
                     const char *help, ...)
{
	struct reg r = {.type = CM_METRICS_GAUGE, .name = name, .help = help};
	struct cm_metrics_series *s;
	va_list ap;
	int err;

	va_start(ap, help);
	err = vregister(m, &r, ap, &s);
	va_end(ap);
	*out = err ? NULL : &s->u.gauge;
	return err;
}

int cm_metrics_histogram(struct cm_metrics *m, struct cm_histogram **out, const char *name,
                         const char *help, const double *bounds, size_t nbounds, ...)
{
	struct reg r = {.type = CM_METRICS_HISTOGRAM,
	                .name = name,
	                .help = help,
	                .bounds = bounds,
	                .nbounds = nbounds};
	struct cm_metrics_series *s;
	va_list ap;
	int err;

	va_start(ap, nbounds);
	err = vregister(m, &r, ap, &s);
	va_end(ap);
	*out = err ? NULL : &s->u.histogram;
	return err;
}

/* A series computed at scrape time, of either type. */
static int register_fn(struct cm_metrics *m, enum cm_metrics_type type, const char *name,
                       const char *help, double (*fn)(void *arg), void *arg, va_list ap)
{
	struct reg r = {
	    .type = type, .kind = CM_METRICS_KIND_FN, .name = name, .help = help, .fn = {fn, arg}};
	struct cm_metrics_series *s;

	return vregister(m, &r, ap, &s);
}

int cm_metrics_gauge_fn(struct cm_metrics *m, const char *name, const char *help,
                        double (*fn)(void *arg), void *arg, ...)
{
	va_list ap;
	int err;

	va_start(ap, arg);
	err = register_fn(m, CM_METRICS_GAUGE, name, help, fn, arg, ap);
	va_end(ap);
	return err;
}

int cm_metrics__counter_fn(struct cm_metrics *m, const char *name, const char *help,
                           double (*fn)(void *arg), void *arg, ...)
{
	va_list ap;
	int err;

	va_start(ap, arg);
	err = register_fn(m, CM_METRICS_COUNTER, name, help, fn, arg, ap);
	va_end(ap);
	return err;
}

int cm_metrics_register(struct cm_metrics *m, void *base, const struct cm_metric_def *defs,
                        size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct cm_metric_def *d = &defs[i];
		struct reg r = {.name = d->name, .help = d->help};
		struct cm_metrics_series *s;
		void **slot = (void **)((char *)base + d->offset);
		int rc;

		switch (d->type) {
		case CM_METRIC_COUNTER:
			r.type = CM_METRICS_COUNTER;
			break;
		case CM_METRIC_GAUGE:
			r.type = CM_METRICS_GAUGE;
			break;
		case CM_METRIC_HISTOGRAM:
			r.type = CM_METRICS_HISTOGRAM;
			r.bounds = d->bounds;
			r.nbounds = d->nbounds;
			break;
		}
		rc = do_register(m, &r, d->labels, &s);
		if (rc)
			return cm_errf(
			    err, errlen, rc, "metric %s: %s", d->name ? d->name : "(null)",
			    rc == -EEXIST   ? "registered before with another type or labels"
			    : rc == -EINVAL ? "invalid name, labels or bounds"
			                    : strerror(-rc));
		*slot = d->type == CM_METRIC_COUNTER ? (void *)&s->u.counter
		        : d->type == CM_METRIC_GAUGE ? (void *)&s->u.gauge
		                                     : (void *)&s->u.histogram;
	}
	return 0;
}

/* --- updates --------------------------------------------------------------------------------- */

/* Values are statistics read by a scrape, never used to order other memory: relaxed is enough. */

void cm_metrics_inc(struct cm_counter *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

void cm_metrics_add(struct cm_counter *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t cm_metrics_counter_value(const struct cm_counter *c)
{
	return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

static uint64_t dbl_bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

double cm_metrics__load_double(const _Atomic uint64_t *cell)
{
	return bits_dbl(atomic_load_explicit(cell, memory_order_relaxed));
}

/* There is no atomic add for doubles: retry the compare-and-swap until no other thread raced. */
static void add_double(_Atomic uint64_t *cell, double delta)
{
	uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(cell, &old, dbl_bits(bits_dbl(old) + delta),
	                                              memory_order_relaxed, memory_order_relaxed))
		;
}

void cm_metrics_set(struct cm_gauge *g, double v)
{
	if (g)
		atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void cm_metrics_gauge_add(struct cm_gauge *g, double delta)
{
	if (g)
		add_double(&g->bits, delta);
}

double cm_metrics_gauge_value(const struct cm_gauge *g)
{
	return g ? cm_metrics__load_double(&g->bits) : 0;
}

void cm_metrics_observe(struct cm_histogram *h, double v)
{
	size_t lo = 0, hi;

	if (!h)
		return;
	/* First bucket whose upper bound is >= v ("le"); NaN compares false and lands in +Inf. */
	hi = h->nbounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= h->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
	add_double(&h->sum_bits, v);
}
