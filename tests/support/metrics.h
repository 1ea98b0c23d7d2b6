/* metrics.h - a test helper: look for a line in a metrics registry's rendering. */
#ifndef TEST_SUPPORT_METRICS_H
#define TEST_SUPPORT_METRICS_H

#include <errno.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/metrics.h"

/* 0 when the Prometheus text of m contains text; -ENOMEM when it cannot be rendered (under an
 * allocation sweep), -ENOENT when it is not there. */
static inline int test_metrics_has(struct cm_metrics *m, const char *text)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	if (cm_metrics_render(m, &b))
		r = -ENOMEM;
	else
		r = strstr(b.data, text) ? 0 : -ENOENT;
	cm_buf_free(&b);
	return r;
}

#endif
