/* main.c - xmpp-core, the XMPP server that phones connect to: process entry point. */
#include "xc.h"

#include <errno.h>
#include <stdlib.h>

#include "cm/tls.h"

static int xc_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct xc_config *cfg = cfgp;
	struct xc *s = calloc(1, sizeof(*s));

	*state = s;
	if (!s)
		return -ENOMEM;
	s->daemon = d;
	s->cfg = cfg;
	return cm_daemon_tls_open(d, "c2s", &cfg->tls, NULL, &s->tls);
}

static int xc_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct xc *s = state;

	(void)newcfg; /* the certificate paths are those given at start */
	return cm_daemon_tls_reload(d, "c2s", s->tls);
}

static void xc_free(void *state)
{
	struct xc *s = state;

	if (!s)
		return;
	cm_tls_free(s->tls);
	free(s);
}

static const struct cm_daemon_spec xc_spec = {
    .name = "xmpp-core",
    .summary = "XMPP server for mobile clients: push, calls and TURN credentials.",
    .schema = &xc_config_schema,
    .log_offset = offsetof(struct xc_config, log),
    .admin_offset = offsetof(struct xc_config, admin),
    .drain_offset = offsetof(struct xc_config, shutdown_timeout),
    .start = xc_start,
    .reload = xc_reload,
    .free = xc_free,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&xc_spec, argc, argv);
}
