/* main.c - platypus, the push daemon of the suite: process entry point. */
#include "platypus.h"

#include <errno.h>
#include <stdlib.h>

#include "cm/tls.h"

static int platypus_start(struct cm_daemon *d, const void *cfgp, void **state)
{
	const struct platypus_config *cfg = cfgp;
	struct platypus *s = calloc(1, sizeof(*s));

	*state = s;
	if (!s)
		return -ENOMEM;
	s->daemon = d;
	s->cfg = cfg;
	return cm_daemon_tls_open(d, "rest", &cfg->tls, &s->tls);
}

static int platypus_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct platypus *s = state;

	(void)newcfg; /* the certificate paths are those given at start */
	return cm_daemon_tls_reload(d, "rest", s->tls);
}

static void platypus_free(void *state)
{
	struct platypus *s = state;

	if (!s)
		return;
	cm_tls_free(s->tls);
	free(s);
}

static const struct cm_daemon_spec platypus_spec = {
    .name = "platypus",
    .summary =
        "push daemon: XEP-0357 app server and MongoosePush-compatible REST API for APNs and FCM.",
    .schema = &platypus_config_schema,
    .log_offset = offsetof(struct platypus_config, log),
    .admin_offset = offsetof(struct platypus_config, admin),
    .drain_offset = offsetof(struct platypus_config, shutdown_timeout),
    .start = platypus_start,
    .reload = platypus_reload,
    .free = platypus_free,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&platypus_spec, argc, argv);
}
