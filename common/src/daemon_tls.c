/* daemon_tls.c - TLS contexts from a `tls:` section, with an expiry metric and reload logging. */
#include "cm/daemon.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/tls.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

/* Certificates closer than this to expiry are logged as warnings at start and on reload. */
#define EXPIRY_WARN_SECONDS (14 * 24 * 3600)

static void report(struct cm_daemon *d, const char *name, struct cm_tls *t)
{
	struct cm_gauge *g;
	time_t na = cm_tls_not_after(t), now = time(NULL);
	char when[32] = "?";
	struct tm tm;

	if (gmtime_r(&na, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
	if (cm_metrics_gauge(cm_daemon_metrics(d), &g, "tls_certificate_expiry_timestamp_seconds",
	                     "notAfter of the certificate in use, Unix time", "context", name,
	                     NULL) == 0)
		cm_metrics_set(g, (double)na);
	if (na <= now)
		CM_LOGE("tls", "%s: the certificate EXPIRED at %s; clients will refuse it", name,
		        when);
	else if (na - now < EXPIRY_WARN_SECONDS)
		CM_LOGW("tls", "%s: the certificate expires soon, at %s", name, when);
	else
		CM_LOGI("tls", "%s: certificate valid until %s", name, when);
}

int cm_daemon_tls_open(struct cm_daemon *d, const char *name, const struct cm_daemon_tls_config *c,
                       const char *alpn, struct cm_tls **out)
{
	struct cm_tls_config tc = {
	    .cert_file = c->certificate,
	    .key_file = c->key,
	    .chain_file = c->chain,
	    .alpn = alpn,
	};
	char err[512];
	int r;

	*out = NULL;
	if (!c->certificate)
		return 0;
	r = cm_tls_server_alloc(out, &tc, err, sizeof(err));
	if (r) {
		CM_LOGE("tls", "%s: %s", name, err);
		return r;
	}
	report(d, name, *out);
	return 0;
}

int cm_daemon_tls_reload(struct cm_daemon *d, const char *name, struct cm_tls *t)
{
	char err[512];
	int r;

	if (!t)
		return 0;
	r = cm_tls_reload(t, err, sizeof(err));
	if (r) {
		CM_LOGE("tls", "%s: reload failed, keeping the previous certificate: %s", name,
		        err);
		return r;
	}
	report(d, name, t);
	return 0;
}
