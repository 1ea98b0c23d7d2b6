/* platypus.h - platypus's configuration and daemon state (private to platypus). */
#ifndef PLATYPUS_H
#define PLATYPUS_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/daemon.h"
#include "cm/loop.h"

struct cm_tls;
struct pp_dispatch;
struct cm_http_server;
struct pp_rest;
struct pp_component;

/* An `apns:` list item: one app (bundle id) with its credentials and pool. */
struct platypus_apns_config {
	char *name;
	int mode; /* enum pp_mode */
	char *topic;
	struct cm_cfg_strlist tags;
	struct cm_secret key; /* token auth: the .p8 */
	char *key_id;
	char *team_id;
	char *certificate; /* certificate auth: PEM (with the key unless certificate_key) */
	char *certificate_key;
	char *host; /* NULL: Apple's host for the mode */
	long long port;
	char *ca_file;
	long long connections;
	long long max_streams;
	uint64_t connect_timeout, request_timeout, ping_interval, token_refresh; /* ms */
};

/* An `fcm:` list item. */
struct platypus_fcm_config {
	char *name;
	int mode;
	struct cm_cfg_strlist tags;
	struct cm_secret service_account; /* Google's JSON key file */
	char *base_url;
	char *ca_file;
	uint64_t request_timeout;
	long long max_in_flight;
};

/* A `log_apps:` list item: a development app whose provider writes each notification it would
 * send as one JSON line (devlog.h) instead of sending it. Refused in production (config.c). */
struct platypus_log_app_config {
	char *name;
	int service; /* enum pp_service: the notifications it takes */
	int mode;    /* enum pp_mode */
	struct cm_cfg_strlist tags;
	char *file; /* NULL: the daemon's own log */
};

struct platypus_dispatch_config {
	long long queue_max;
	uint64_t retry_window;
	long long max_attempts;
	uint64_t backoff_min, backoff_max;
};

/* `rest:` - the MongoosePush v3 compatible API. */
struct platypus_rest_config {
	bool enabled;
	struct cm_cfg_addr listen;
	bool tls; /* serve with the tls: certificate (false: cleartext, for a loopback sidecar) */
	long long max_connections;
	long long connections_per_source;
	uint64_t max_body;       /* bytes */
	uint64_t max_unfinished; /* bytes of requests still arriving on one connection */
};

/* `component:` - the XEP-0357 app server over a XEP-0114 component stream. */
struct platypus_component_config {
	bool enabled;
	struct cm_cfg_addr server;
	char *domain;
	struct cm_secret secret;            /* the component secret shared with the XMPP server */
	struct cm_secret publish_secret;    /* optional: publish-options "secret" must match */
	struct cm_cfg_strlist xmpp_domains; /* publishes come from these; empty: domain's parent */
	uint64_t reconnect_min, reconnect_max; /* ms */
};

struct platypus_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
	struct platypus_dispatch_config dispatch;
	struct cm_cfg_list apns;     /* of struct platypus_apns_config */
	struct cm_cfg_list fcm;      /* of struct platypus_fcm_config */
	struct cm_cfg_list log_apps; /* of struct platypus_log_app_config (development only) */
	bool production; /* production mode: no log_apps (also implied by any prod-mode app) */
	struct platypus_rest_config rest;
	struct platypus_component_config component;
};

extern const struct cm_cfg_schema platypus_config_schema;

struct pp_providers; /* providers.c */

struct platypus {
	struct cm_daemon *daemon;          /* borrowed */
	const struct platypus_config *cfg; /* borrowed from the daemon framework */
	struct cm_tls *tls;                /* owned; NULL when no certificate is configured */
	struct pp_dispatch *dispatch;      /* owned: what the front ends submit to */
	struct pp_providers *prov;         /* owned: APNs pools, FCM clients, their credentials */
	struct cm_http_server *http;       /* owned: the REST listener, NULL when disabled */
	struct pp_rest *rest;              /* owned: its routes */
	struct pp_component *component;    /* owned, NULL when disabled */
	bool stopping;
	bool drained;      /* the dispatcher has nothing in care: one half of a stop */
	bool prov_closed;  /* every provider connection is closed: the other half */
	bool comp_closed;  /* the component's stream is over (drained or closed) */
	bool http_closing; /* cm_http_server_close() was called; http is NULL once it is done */
	struct cm_loop_timer force; /* ends a graceful stop before the framework's drain timeout */
	void (*close_done)(struct cm_daemon *d); /* the framework's, during close */
};

/* providers.c: build every app's provider from the configuration and register it with the
 * dispatcher. 0 or a negative errno (logged). */
int pp_providers_open(struct pp_providers **out, struct cm_daemon *d,
                      const struct platypus_config *cfg, struct pp_dispatch *disp);

/* SIGHUP: reread keys, certificates and service accounts from newcfg (matched by app name). */
int pp_providers_reload(struct pp_providers *p, const struct platypus_config *newcfg);

/* Close every pool and client (gracefully or not); done(arg) once all are closed (maybe from
 * within this call). Called again with graceful false (done NULL keeps the first one), it
 * cancels what a graceful close still waits for. */
void pp_providers_close(struct pp_providers *p, bool graceful, void (*done)(void *arg), void *arg);

/* Free what close left (credentials, TLS contexts), once every pool and client is closed (a
 * provider still open keeps its memory, with an error logged). Accepts NULL. */
void pp_providers_free(struct pp_providers *p);

/* Health: append JSON members describing each pool (connections, pending, credentials "ok" or
 * "refused"); nonzero when no app can deliver (every app's credentials refused). */
int pp_providers_health(struct pp_providers *p, struct cm_buf *out);

#endif
