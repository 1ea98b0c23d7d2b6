/* main.c - xmpp-core, the XMPP server that phones connect to: process entry point. */
#include "xc.h"

#include <stddef.h>
#include <stdlib.h>

#include "admin_api.h"
#include "cm/daemon.h"
#include "server.h"
#include "upload.h"

static int xc_start(struct cm_daemon *d, const void *cfg, void **state)
{
	struct xc_server *srv = NULL;
	int r = xc_server_start(&srv, d, cfg);

	*state = srv;
	return r;
}

static int xc_reload(struct cm_daemon *d, void *state, const void *newcfg)
{
	struct xc_server *srv = state;
	const struct xc_config *cfg = newcfg;
	int r = srv->tls ? cm_daemon_tls_reload(d, "c2s", srv->tls) : 0;

	if (srv->ws_tls) {
		int r2 = cm_daemon_tls_reload(d, "websocket", srv->ws_tls);

		r = r ? r : r2;
	}

	if (srv->upload) {
		int r2 = xc_upload_reload(srv->upload);

		r = r ? r : r2;
	}

	/* the certificate paths are those given at start; the API token is read again */
	if (srv->api) {
		int r2 = xc_admin_api_set_token(srv->api, cfg->api_token.data, cfg->api_token.len);

		r = r ? r : r2;
	}
	return r;
}

static void xc_stop(struct cm_daemon *d, void *state)
{
	(void)d;
	xc_server_stop(state);
}

struct close_wait {
	struct cm_daemon *d;
	void (*done)(struct cm_daemon *d);
	struct xc_server *srv;
};

static void api_closed(void *arg)
{
	struct close_wait *w = arg;

	w->done(w->d);
	free(w);
}

/* The upload listener is closed and its file jobs are over: the API next. */
static void upload_closed(void *arg)
{
	struct close_wait *w = arg;

	xc_admin_api_close(w->srv->api, api_closed, w);
}

/* The shards' handles belong to the workers, which close them in their own stop; what is left
 * here is the API's operations in flight, which need the workers still. */
static void xc_close(struct cm_daemon *d, void *state, void (*done)(struct cm_daemon *d))
{
	struct xc_server *srv = state;
	struct close_wait *w = srv ? malloc(sizeof(*w)) : NULL;

	xc_server_close(srv); /* a drain that timed out may have left its wait for the store */
	if (!w) {
		done(d);
		return;
	}
	w->d = d;
	w->done = done;
	w->srv = srv;
	xc_upload_close(srv->upload, upload_closed, w);
}

static void xc_free(void *state)
{
	xc_server_free(state);
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
    .stop = xc_stop,
    .close = xc_close,
    .free = xc_free,
};

int main(int argc, char **argv)
{
	return cm_daemon_main(&xc_spec, argc, argv);
}
