/* config.c - platypus's configuration schema (config/platypus.yaml). */
#include "platypus.h"

#include <stddef.h>
#include <string.h>

#include "notif.h"

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:9642");

static const char *const modes[] = {"prod", "dev", NULL};

#define APNS(f) offsetof(struct platypus_apns_config, f)
#define FCM(f)  offsetof(struct platypus_fcm_config, f)
#define DISP(f) offsetof(struct platypus_dispatch_config, f)
#define LOGA(f) offsetof(struct platypus_log_app_config, f)

/* in the order of enum pp_service */
static const char *const services[] = {"apns", "fcm", NULL};

static bool is_apple_id(const char *s)
{
	if (!s || strlen(s) != 10)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void validate_apns(void *obj, struct cm_cfg_check *chk)
{
	struct platypus_apns_config *a = obj;
	bool token = a->key.path != NULL, cert = a->certificate != NULL;

	if (token == cert)
		cm_cfg_check_error(chk, "key",
		                   "give either key (+ key_id, team_id: token auth) or certificate "
		                   "(certificate auth)");
	if (token && !is_apple_id(a->key_id))
		cm_cfg_check_error(chk, "key_id", "token auth needs Apple's 10-character key id");
	if (token && !is_apple_id(a->team_id))
		cm_cfg_check_error(chk, "team_id", "token auth needs Apple's 10-character team id");
	if (token && !a->topic)
		cm_cfg_check_error(chk, "topic", "token auth needs the app's bundle id");
	if (!cert && a->certificate_key)
		cm_cfg_check_error(chk, "certificate_key", "only with certificate");
}

static void validate_fcm(void *obj, struct cm_cfg_check *chk)
{
	struct platypus_fcm_config *f = obj;

	if (f->base_url && strncmp(f->base_url, "https://", 8))
		cm_cfg_check_error(chk, "base_url", "must start with https://");
}

static const struct cm_cfg_field apns_fields[] = {
    {.key = "name",
     .type = CM_CFG_STRING,
     .offset = APNS(name),
     .flags = CM_CFG_REQUIRED,
     .doc = "the app's name: metrics label, pool selection by app"},
    {.key = "mode",
     .type = CM_CFG_ENUM,
     .offset = APNS(mode),
     .def = "prod",
     .values = modes,
     .doc = "prod (api.push.apple.com) or dev (api.sandbox.push.apple.com)"},
    {.key = "topic",
     .type = CM_CFG_STRING,
     .offset = APNS(topic),
     .doc = "bundle id used when a notification names no topic (\".voip\" is added for calls)"},
    {.key = "tags",
     .type = CM_CFG_STRLIST,
     .offset = APNS(tags),
     .def = "[]",
     .doc = "tags a notification may ask for (MongoosePush \"tags\")"},
    {.key = "key",
     .type = CM_CFG_SECRET,
     .offset = APNS(key),
     .flags = CM_CFG_RELOAD,
     .doc = "token auth: the .p8 signing key (re-read on SIGHUP)"},
    {.key = "key_id",
     .type = CM_CFG_STRING,
     .offset = APNS(key_id),
     .doc = "token auth: the key's 10-character id"},
    {.key = "team_id",
     .type = CM_CFG_STRING,
     .offset = APNS(team_id),
     .doc = "token auth: the 10-character team id (one provider token per team and key)"},
    {.key = "certificate",
     .type = CM_CFG_FILE,
     .offset = APNS(certificate),
     .flags = CM_CFG_RELOAD,
     .doc = "certificate auth: client certificate PEM (re-read on SIGHUP)"},
    {.key = "certificate_key",
     .type = CM_CFG_FILE,
     .offset = APNS(certificate_key),
     .flags = CM_CFG_RELOAD,
     .doc = "certificate auth: its key, when not in the certificate file"},
    {.key = "host",
     .type = CM_CFG_STRING,
     .offset = APNS(host),
     .doc = "APNs host; default by mode (tests point it at a local server)"},
    {.key = "port",
     .type = CM_CFG_INT,
     .offset = APNS(port),
     .def = "443",
     .min = 1,
     .max = 65535,
     .doc = "APNs port (443 or 2197)"},
    {.key = "ca_file",
     .type = CM_CFG_FILE,
     .offset = APNS(ca_file),
     .doc = "CA bundle to verify APNs with; default: the system store"},
    {.key = "connections",
     .type = CM_CFG_INT,
     .offset = APNS(connections),
     .def = "2",
     .min = 1,
     .max = 64,
     .doc = "most HTTP/2 connections kept to APNs"},
    {.key = "max_streams",
     .type = CM_CFG_INT,
     .offset = APNS(max_streams),
     .def = "1000",
     .min = 1,
     .max = 10000,
     .doc = "concurrent requests per connection (under APNs' own limit)"},
    {.key = "connect_timeout",
     .type = CM_CFG_DURATION,
     .offset = APNS(connect_timeout),
     .def = "10s",
     .min = 100,
     .max = 300000,
     .doc = "TCP + TLS + HTTP/2 settings"},
    {.key = "request_timeout",
     .type = CM_CFG_DURATION,
     .offset = APNS(request_timeout),
     .def = "10s",
     .min = 100,
     .max = 300000,
     .doc = "an unanswered request is cancelled"},
    {.key = "ping_interval",
     .type = CM_CFG_DURATION,
     .offset = APNS(ping_interval),
     .def = "60s",
     .min = 1000,
     .max = 3600000,
     .doc = "HTTP/2 PING on idle connections"},
    {.key = "token_refresh",
     .type = CM_CFG_DURATION,
     .offset = APNS(token_refresh),
     .def = "50m",
     .min = 1200000,
     .max = 3540000,
     .doc = "age at which the provider token is remade (20 to 59 minutes)"},
};

static const struct cm_cfg_schema apns_schema = {
    .name = "apns",
    .size = sizeof(struct platypus_apns_config),
    .fields = apns_fields,
    .nfields = sizeof(apns_fields) / sizeof(apns_fields[0]),
    .validate = validate_apns,
};

static const struct cm_cfg_field fcm_fields[] = {
    {.key = "name",
     .type = CM_CFG_STRING,
     .offset = FCM(name),
     .flags = CM_CFG_REQUIRED,
     .doc = "the app's name: metrics label, pool selection by app"},
    {.key = "mode",
     .type = CM_CFG_ENUM,
     .offset = FCM(mode),
     .def = "prod",
     .values = modes,
     .doc = "the mode notifications must ask for to use this app"},
    {.key = "tags",
     .type = CM_CFG_STRLIST,
     .offset = FCM(tags),
     .def = "[]",
     .doc = "tags a notification may ask for"},
    {.key = "service_account",
     .type = CM_CFG_SECRET,
     .offset = FCM(service_account),
     .flags = CM_CFG_REQUIRED | CM_CFG_RELOAD,
     .doc = "Google service-account JSON key file (re-read on SIGHUP)"},
    {.key = "base_url",
     .type = CM_CFG_STRING,
     .offset = FCM(base_url),
     .def = "https://fcm.googleapis.com",
     .doc = "FCM endpoint (tests point it at a local server)"},
    {.key = "ca_file",
     .type = CM_CFG_FILE,
     .offset = FCM(ca_file),
     .doc = "CA bundle for FCM and the token endpoint; default: the system store"},
    {.key = "request_timeout",
     .type = CM_CFG_DURATION,
     .offset = FCM(request_timeout),
     .def = "10s",
     .min = 100,
     .max = 300000,
     .doc = "a request without an answer fails"},
    {.key = "max_in_flight",
     .type = CM_CFG_INT,
     .offset = FCM(max_in_flight),
     .def = "1000",
     .min = 1,
     .max = 100000,
     .doc = "requests on the wire at once (HTTP/2 multiplexed)"},
};

static const struct cm_cfg_schema fcm_schema = {
    .name = "fcm",
    .size = sizeof(struct platypus_fcm_config),
    .fields = fcm_fields,
    .nfields = sizeof(fcm_fields) / sizeof(fcm_fields[0]),
    .validate = validate_fcm,
};

static const struct cm_cfg_field dispatch_fields[] = {
    {.key = "queue_max",
     .type = CM_CFG_INT,
     .offset = DISP(queue_max),
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .doc = "notifications in care at once; beyond, callers are told to wait (429)"},
    {.key = "retry_window",
     .type = CM_CFG_DURATION,
     .offset = DISP(retry_window),
     .def = "60s",
     .min = 1000,
     .max = 86400000,
     .doc = "longest a notification without a TTL is retried"},
    {.key = "max_attempts",
     .type = CM_CFG_INT,
     .offset = DISP(max_attempts),
     .def = "5",
     .min = 1,
     .max = 100,
     .doc = "attempts per notification, the first included"},
    {.key = "backoff_min",
     .type = CM_CFG_DURATION,
     .offset = DISP(backoff_min),
     .def = "250ms",
     .min = 1,
     .max = 600000,
     .doc = "first retry delay (doubled each time)"},
    {.key = "backoff_max",
     .type = CM_CFG_DURATION,
     .offset = DISP(backoff_max),
     .def = "30s",
     .min = 1,
     .max = 3600000,
     .doc = "longest retry delay (Retry-After may ask for more)"},
};

static const struct cm_cfg_schema dispatch_schema = {
    .name = "dispatch",
    .size = sizeof(struct platypus_dispatch_config),
    .fields = dispatch_fields,
    .nfields = sizeof(dispatch_fields) / sizeof(dispatch_fields[0]),
};

#define REST(m) offsetof(struct platypus_rest_config, m)
static const struct cm_cfg_field rest_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = REST(enabled),
     .def = "false",
     .doc = "serve the MongoosePush v3 REST API (needs tls.certificate unless tls is false)"},
    {.key = "listen",
     .type = CM_CFG_ADDR,
     .offset = REST(listen),
     .def = "127.0.0.1:8443",
     .doc = "address of the REST API (HTTP/1.1 and HTTP/2)"},
    {.key = "tls",
     .type = CM_CFG_BOOL,
     .offset = REST(tls),
     .def = "true",
     .doc = "serve over TLS with the tls: certificate; false only for a loopback sidecar"},
    {.key = "max_connections",
     .type = CM_CFG_INT,
     .offset = REST(max_connections),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .doc = "open connections at once; more are closed on arrival"},
    {.key = "connections_per_source",
     .type = CM_CFG_INT,
     .offset = REST(connections_per_source),
     .def = "256",
     .min = 1,
     .max = 1000000,
     .doc = "open connections one source address (an IPv6 /64) may hold; more are closed on "
            "arrival, so that one client cannot take every connection"},
    {.key = "max_body",
     .type = CM_CFG_SIZE,
     .offset = REST(max_body),
     .def = "64k",
     .min = 1024,
     .max = 16777216,
     .doc = "largest request body (413 beyond)"},
    {.key = "max_unfinished",
     .type = CM_CFG_SIZE,
     .offset = REST(max_unfinished),
     .def = "1M",
     .min = 65536,
     .max = 1073741824,
     .doc = "request heads and bodies one connection may hold while they still arrive (HTTP/2: "
            "all its streams together); a stream beyond is refused (REFUSED_STREAM, safe to "
            "retry); never less than max_body + 8k"},
};

static const struct cm_cfg_schema rest_schema = {
    .name = "rest",
    .size = sizeof(struct platypus_rest_config),
    .fields = rest_fields,
    .nfields = sizeof(rest_fields) / sizeof(rest_fields[0]),
};

#define COMP(m) offsetof(struct platypus_component_config, m)
static const struct cm_cfg_field component_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = COMP(enabled),
     .def = "false",
     .doc = "connect to an XMPP server as its XEP-0357 app server (XEP-0114)"},
    {.key = "server",
     .type = CM_CFG_ADDR,
     .offset = COMP(server),
     .def = "127.0.0.1:5347",
     .doc = "the XMPP server's component port"},
    {.key = "domain",
     .type = CM_CFG_STRING,
     .offset = COMP(domain),
     .doc = "the component's JID, as configured on the XMPP server (push.example.com)"},
    {.key = "secret",
     .type = CM_CFG_SECRET,
     .offset = COMP(secret),
     .flags = CM_CFG_RELOAD,
     .doc = "file holding the component secret shared with the XMPP server"},
    {.key = "publish_secret",
     .type = CM_CFG_SECRET,
     .offset = COMP(publish_secret),
     .flags = CM_CFG_RELOAD,
     .doc = "optional file: publishes must carry this publish-options secret"},
    {.key = "xmpp_domains",
     .type = CM_CFG_STRLIST,
     .offset = COMP(xmpp_domains),
     .def = "[]",
     .doc = "the XMPP server's domains: only they and their users' bare JIDs may publish; [] = "
            "component.domain without its first label (example.com for push.example.com)"},
    {.key = "reconnect_min",
     .type = CM_CFG_DURATION,
     .offset = COMP(reconnect_min),
     .def = "500ms",
     .min = 10,
     .max = 600000,
     .doc = "first reconnection delay (doubled each time, with jitter)"},
    {.key = "reconnect_max",
     .type = CM_CFG_DURATION,
     .offset = COMP(reconnect_max),
     .def = "30s",
     .min = 10,
     .max = 3600000,
     .doc = "longest reconnection delay"},
};

static void validate_component(void *obj, struct cm_cfg_check *chk)
{
	const struct platypus_component_config *c = obj;

	if (!c->enabled)
		return;
	if (!c->domain || !*c->domain)
		cm_cfg_check_error(chk, "domain", "required when the component is enabled");
	if (!c->secret.path)
		cm_cfg_check_error(chk, "secret", "required when the component is enabled");
	if (!c->xmpp_domains.n && c->domain && !strchr(c->domain, '.'))
		cm_cfg_check_error(chk, "xmpp_domains",
		                   "required when component.domain (%s) has no parent domain",
		                   c->domain);
	for (size_t i = 0; i < c->xmpp_domains.n; i++) {
		const char *d = c->xmpp_domains.v[i];

		if (!*d || strpbrk(d, "@/ \t"))
			cm_cfg_check_error(chk, "xmpp_domains",
			                   "\"%s\" is not a domain (no localpart, no resource)", d);
	}
}

static const struct cm_cfg_schema component_schema = {
    .name = "component",
    .size = sizeof(struct platypus_component_config),
    .fields = component_fields,
    .nfields = sizeof(component_fields) / sizeof(component_fields[0]),
    .validate = validate_component,
};

static const struct cm_cfg_field log_app_fields[] = {
    {.key = "name",
     .type = CM_CFG_STRING,
     .offset = LOGA(name),
     .flags = CM_CFG_REQUIRED,
     .doc = "the app's name: metrics label, pool selection by app"},
    {.key = "service",
     .type = CM_CFG_ENUM,
     .offset = LOGA(service),
     .flags = CM_CFG_REQUIRED,
     .values = services,
     .doc = "the notifications it takes in place of a real provider: apns or fcm"},
    {.key = "mode",
     .type = CM_CFG_ENUM,
     .offset = LOGA(mode),
     .def = "dev",
     .values = modes,
     .doc = "the mode notifications must ask for to use this app"},
    {.key = "tags",
     .type = CM_CFG_STRLIST,
     .offset = LOGA(tags),
     .def = "[]",
     .doc = "tags a notification may ask for"},
    {.key = "file",
     .type = CM_CFG_PATH,
     .offset = LOGA(file),
     .doc = "file each notification is appended to as one JSON line (created 0600); unset: "
            "the daemon's log"},
};

static const struct cm_cfg_schema log_app_schema = {
    .name = "log_app",
    .size = sizeof(struct platypus_log_app_config),
    .fields = log_app_fields,
    .nfields = sizeof(log_app_fields) / sizeof(log_app_fields[0]),
};

/* A log app delivers nothing: in production it would swallow real users' notifications. */
static void validate_production(const struct platypus_config *c, struct cm_cfg_check *chk)
{
	const struct platypus_apns_config *a = c->apns.items;
	const struct platypus_fcm_config *f = c->fcm.items;
	const char *prod = NULL;

	if (!c->log_apps.n)
		return;
	for (size_t i = 0; i < c->apns.n && !prod; i++)
		if (a[i].mode == PP_MODE_PROD)
			prod = a[i].name;
	for (size_t i = 0; i < c->fcm.n && !prod; i++)
		if (f[i].mode == PP_MODE_PROD)
			prod = f[i].name;
	if (c->production)
		cm_cfg_check_error(
		    chk, "log_apps",
		    "the log provider is for development only: set production: false "
		    "to use it");
	else if (prod)
		cm_cfg_check_error(chk, "log_apps",
		                   "the log provider is for development only, and app \"%s\" is in "
		                   "mode prod (production)",
		                   prod);
}

static void validate_top(void *obj, struct cm_cfg_check *chk)
{
	struct platypus_config *c = obj;

	if (c->rest.enabled && c->rest.tls && !c->tls.certificate)
		cm_cfg_check_error(chk, "rest",
		                   "tls is on but tls.certificate is not set (set rest.tls: false "
		                   "only for a loopback sidecar)");
	const struct platypus_apns_config *a = c->apns.items;
	const struct platypus_fcm_config *f = c->fcm.items;

	const struct platypus_log_app_config *l = c->log_apps.items;
	size_t n = c->apns.n + c->fcm.n + c->log_apps.n;

	/* App names are unique across every service: they name pools in metrics and requests. */
	for (size_t i = 0; i < n; i++) {
		const char *ni = i < c->apns.n              ? a[i].name
		                 : i < c->apns.n + c->fcm.n ? f[i - c->apns.n].name
		                                            : l[i - c->apns.n - c->fcm.n].name;

		for (size_t k = i + 1; k < n; k++) {
			const char *nk = k < c->apns.n ? a[k].name
			                 : k < c->apns.n + c->fcm.n
			                     ? f[k - c->apns.n].name
			                     : l[k - c->apns.n - c->fcm.n].name;

			if (ni && nk && !strcmp(ni, nk))
				cm_cfg_check_error(chk,
				                   k < c->apns.n              ? "apns"
				                   : k < c->apns.n + c->fcm.n ? "fcm"
				                                              : "log_apps",
				                   "app name \"%s\" is used twice", nk);
		}
	}
	validate_production(c, chk);
}

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct platypus_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct platypus_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for the REST API over TLS (port 8443)"},
    {.key = "dispatch",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct platypus_config, dispatch),
     .sub = &dispatch_schema,
     .doc = "queue bound and retries"},
    {.key = "apns",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct platypus_config, apns),
     .sub = &apns_schema,
     .def = "[]",
     .doc = "APNs apps, each with its credentials and connection pool"},
    {.key = "fcm",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct platypus_config, fcm),
     .sub = &fcm_schema,
     .def = "[]",
     .doc = "FCM apps (HTTP v1), each with its service account"},
    {.key = "log_apps",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct platypus_config, log_apps),
     .sub = &log_app_schema,
     .def = "[]",
     .doc = "DEVELOPMENT ONLY: apps whose provider writes each notification as a JSON line "
            "instead of sending it (refused in production mode)"},
    {.key = "production",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct platypus_config, production),
     .def = "true",
     .doc = "production mode: log_apps are refused; false only on a development machine "
            "(any apns or fcm app in mode prod also counts as production)"},
    {.key = "rest",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct platypus_config, rest),
     .sub = &rest_schema,
     .doc = "MongoosePush v3 compatible REST API"},
    {.key = "component",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct platypus_config, component),
     .sub = &component_schema,
     .doc = "XEP-0357 app server over a XEP-0114 component connection"},
};

const struct cm_cfg_schema platypus_config_schema = {
    .name = "platypus",
    .size = sizeof(struct platypus_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .validate = validate_top,
};
