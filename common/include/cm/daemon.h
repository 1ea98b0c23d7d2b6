/* cm/daemon.h - what every daemon of the suite does the same way: command line, configuration,
 * logging, the libuv loop, the admin listener (/health, /metrics), systemd readiness and
 * watchdog, SIGHUP reload and SIGTERM drain.
 *
 * A daemon describes itself with a struct cm_daemon_spec and hands main() over:
 *
 *     int main(int argc, char **argv) { return cm_daemon_main(&icicle_spec, argc, argv); }
 *
 * Its configuration struct embeds the shared sections (struct cm_daemon_log_config and
 * struct cm_daemon_admin_config) described by cm_daemon_log_schema and by an admin schema of
 * its own made with CM_DAEMON_ADMIN_SCHEMA, whose offsets the spec names.
 *
 * Exit status: 0 after a clean stop, 1 when start-up or running fails, 2 for a usage or
 * configuration error.
 */
#ifndef CM_DAEMON_H
#define CM_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cm/cfg.h"

struct cm_buf;
struct cm_daemon;
struct cm_loop;
struct cm_workers;
struct cm_worker_ops;
struct cm_metrics;
struct cm_admin;
struct cm_tls;

/* The `log:` section. */
struct cm_daemon_log_config {
	int level;  /* index into the level names: error, warn, info, debug */
	int format; /* 0 text, 1 json */
};

/* The `admin:` section. */
struct cm_daemon_admin_config {
	bool enabled;
	struct cm_cfg_addr listen;
	long long connections_per_source;
};

/* A `tls:` section: certificate, key and optional chain; all absent means no TLS context. */
struct cm_daemon_tls_config {
	char *certificate;
	char *key;
	char *chain;
};

extern const struct cm_cfg_schema cm_daemon_log_schema;
/* There is no shared admin schema: each daemon has its own default port, so it defines a
 * static schema with CM_DAEMON_ADMIN_SCHEMA below. */
extern const struct cm_cfg_schema cm_daemon_tls_schema;

/* Define a static admin schema whose listen default is addr ("127.0.0.1:9641"). */
#define CM_DAEMON_ADMIN_SCHEMA(var, addr)                                                          \
	static const struct cm_cfg_field var##_fields[] = {                                        \
	    {.key = "enabled",                                                                     \
	     .type = CM_CFG_BOOL,                                                                  \
	     .offset = offsetof(struct cm_daemon_admin_config, enabled),                           \
	     .def = "true",                                                                        \
	     .doc = "serve /health and /metrics over HTTP"},                                       \
	    {.key = "listen",                                                                      \
	     .type = CM_CFG_ADDR,                                                                  \
	     .offset = offsetof(struct cm_daemon_admin_config, listen),                            \
	     .def = addr,                                                                          \
	     .doc = "address of the admin HTTP listener (keep it on loopback or a management "     \
	            "network)"},                                                                   \
	    {.key = "connections_per_source",                                                      \
	     .type = CM_CFG_INT,                                                                   \
	     .offset = offsetof(struct cm_daemon_admin_config, connections_per_source),            \
	     .def = "16",                                                                          \
	     .min = 1,                                                                             \
	     .max = 64,                                                                            \
	     .doc = "admin connections one source address (an IPv6 /64) may hold, of the 64 the "  \
	            "listener serves; more are closed on arrival, so that /health stays reachable" \
	            " for the others"},                                                            \
	};                                                                                         \
	static const struct cm_cfg_schema var = {                                                  \
	    .name = "admin",                                                                       \
	    .size = sizeof(struct cm_daemon_admin_config),                                         \
	    .fields = var##_fields,                                                                \
	    .nfields = sizeof(var##_fields) / sizeof(var##_fields[0]),                             \
	}

/* The top-level keys every daemon has: log:, admin: and shutdown_timeout. cfgtype is the daemon's
 * configuration struct, which must have members log, admin and shutdown_timeout (uint64_t ms);
 * admin_schema is the schema made by CM_DAEMON_ADMIN_SCHEMA. */
#define CM_DAEMON_BASE_FIELDS(cfgtype, admin_schema)                                               \
	{.key = "log",                                                                             \
	 .type = CM_CFG_SECTION,                                                                   \
	 .offset = offsetof(cfgtype, log),                                                         \
	 .sub = &cm_daemon_log_schema,                                                             \
	 .doc = "logging to stderr"},                                                              \
	    {.key = "admin",                                                                       \
	     .type = CM_CFG_SECTION,                                                               \
	     .offset = offsetof(cfgtype, admin),                                                   \
	     .sub = &(admin_schema),                                                               \
	     .doc = "admin HTTP listener"},                                                        \
	{                                                                                          \
		.key = "shutdown_timeout", .type = CM_CFG_DURATION,                                \
		.offset = offsetof(cfgtype, shutdown_timeout), .def = "10s", .min = 0,             \
		.max = 3600000, .doc = "how long SIGTERM waits for in-flight work before exiting"  \
	}

struct cm_daemon_spec {
	const char *name;    /* "icicle" */
	const char *summary; /* one line for --help */
	const struct cm_cfg_schema *schema;
	size_t log_offset;   /* offsetof(config, log) */
	size_t admin_offset; /* offsetof(config, admin) */
	size_t
	    drain_offset; /* offsetof(config, shutdown_timeout): a DURATION field (uint64_t ms) */

	/* Start serving. cfg is the loaded configuration, owned by the framework and valid until
	 * after free(). *state receives the daemon's own context. Return 0 or a negative errno
	 * (the daemon has logged why); on failure free() is still called with *state. */
	int (*start)(struct cm_daemon *d, const void *cfg, void **state);

	/* SIGHUP: re-read certificates, secrets and whatever else can change without a restart.
	 * newcfg is a freshly loaded, valid configuration (borrowed for the call only). Return 0 or
	 * a negative errno (what failed was logged; the old material stays in use). May be NULL. */
	int (*reload)(struct cm_daemon *d, void *state, const void *newcfg);

	/* SIGTERM: stop taking new work and finish what is in flight, then call
	 * cm_daemon_stopped(d). The framework gives up waiting after the drain timeout. May be
	 * NULL (stops at once). */
	void (*stop)(struct cm_daemon *d, void *state);

	/* Close every libuv handle that start() and the daemon's work opened (listeners,
	 * connections, timers), then call done(d): from the last close callback, or at once when
	 * nothing was open. The loop runs meanwhile. Called once the drain is over (or timed out),
	 * and after a failed start() when *state was set. Whoever opens a handle closes it: after
	 * done, a handle of the daemon's still open is named in the log as a leak ("... left open
	 * at exit"; the tests fail on that line) and only then closed, so that the process can end.
	 * May be NULL when start() opens no handle. */
	void (*close)(struct cm_daemon *d, void *state, void (*done)(struct cm_daemon *d));

	/* Release the memory of everything start() made; every handle is closed by now. May be
	 * NULL. */
	void (*free)(void *state);

	/* Append JSON members describing health; return nonzero when unhealthy. May be NULL. */
	int (*health)(void *state, struct cm_buf *details);
};

/* Run the daemon: parse argv, load the configuration, start, loop, stop. Returns the exit
 * status. */
int cm_daemon_main(const struct cm_daemon_spec *spec, int argc, char **argv);

/* Accessors for start()/reload()/stop(): borrowed pointers, valid until the daemon frees. */
uv_loop_t *cm_daemon_loop(struct cm_daemon *d);
/* The main loop's context (cm/loop.h): its mailbox, timer wheel and stream machinery. */
struct cm_loop *cm_daemon_main_loop(struct cm_daemon *d);
struct cm_metrics *cm_daemon_metrics(struct cm_daemon *d);
struct cm_admin *cm_daemon_admin(struct cm_daemon *d); /* NULL when admin.enabled is false */

/* stop() is over. */
void cm_daemon_stopped(struct cm_daemon *d);

/* Start n worker loops on their own threads (0: one per online CPU), for start(): ops->init
 * runs here for each, ops->stop on each worker's thread after the spec's close() is done and
 * before free(). The framework owns them (*out is borrowed); a handle a worker leaves open is
 * reported like the main loop's. 0 or what cm_workers_start() returned. Once per daemon. */
int cm_daemon_workers(struct cm_daemon *d, unsigned n, const struct cm_worker_ops *ops,
                      struct cm_workers **out);

/* Build a server TLS context from a `tls:` section and register the metric
 * tls_certificate_expiry_timestamp_seconds{context=name} for it. *out stays NULL (and 0 is
 * returned) when the section names no certificate. alpn (may be NULL) is the server's ALPN list in
 * preference order ("h2,http/1.1"). The context is owned by the caller. */
int cm_daemon_tls_open(struct cm_daemon *d, const char *name, const struct cm_daemon_tls_config *c,
                       const char *alpn, struct cm_tls **out);

/* Re-read the files of a context made by cm_daemon_tls_open(), logging the outcome. */
int cm_daemon_tls_reload(struct cm_daemon *d, const char *name, struct cm_tls *t);

#endif
