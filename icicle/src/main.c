/* main.c - icicle, the STUN/TURN server of the suite: process entry point. */
#include "icicle.h"

#include <errno.h>
#include <stdlib.h>

#include "cm/tls.h"

static int icicle_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct icicle_config *cfg = cfgp;
	struct icicle *ic = calloc(1, sizeof(*ic));

	*state = ic;
	if (!ic)
		return -ENOMEM;
	ic->daemon = d;
	ic->cfg = cfg;
	return cm_daemon_tls_open(d, "turns", &cfg->tls, &ic->tls);
}

static int icicle_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct icicle *ic = state;

	(void)newcfg; /* the certificate paths are those given at start */
	return cm_daemon_tls_reload(d, "turns", ic->tls);
}

static void icicle_free(void *state)
{
	struct icicle *ic = state;

	if (!ic)
		return;
	cm_tls_free(ic->tls);
	free(ic);
}

static const struct cm_daemon_spec icicle_spec = {
    .name = "icicle",
    .summary = "STUN/TURN server that relays call media between phones behind NAT.",
    .schema = &icicle_config_schema,
    .log_offset = offsetof(struct icicle_config, log),
    .admin_offset = offsetof(struct icicle_config, admin),
    .drain_offset = offsetof(struct icicle_config, shutdown_timeout),
    .start = icicle_start,
    .reload = icicle_reload,
    .free = icicle_free,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&icicle_spec, argc, argv);
}
