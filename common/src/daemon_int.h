/* daemon_int.h - state shared by the daemon framework's files (not for daemons). */
#ifndef CM_DAEMON_INT_H
#define CM_DAEMON_INT_H

#include "cm/daemon.h"
#include "cm/loop.h"

struct cm_counter;
struct cm_gauge;

enum daemon_phase {
	PHASE_STARTING,
	PHASE_RUNNING,
	PHASE_DRAINING,
	PHASE_CLOSING,
};

struct cm_daemon {
	const struct cm_daemon_spec *spec; /* borrowed, static */
	const char *config_path;           /* borrowed from argv; NULL = embedded defaults */
	void *cfg;                         /* owned: the configuration in force */
	void *state;                       /* owned by the spec's start/free */
	uv_loop_t loop;
	struct cm_loop cl; /* the main loop's context */
	bool cl_ready;
	struct cm_workers *workers; /* owned; NULL when the daemon has none */
	struct cm_metrics *metrics; /* owned */
	struct cm_admin *admin;     /* owned; closes asynchronously */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t watchdog;
	uv_timer_t drain;
	uv_timer_t close_guard; /* bounds the spec's close() */
	bool close_done;
	bool close_running; /* the loop runs for the daemon's close() */
	enum daemon_phase phase;
	int exit_status;
	struct cm_counter *reload_ok, *reload_failed;
};

/* The daemon's uv handles are embedded in struct cm_daemon; daemon.c closes them. */
int cm_daemon__run(struct cm_daemon *d);

/* Load the configuration again (SIGHUP): errors are logged. 0 and *out owned by the caller, or a
 * negative errno. */
int cm_daemon__load(const struct cm_daemon_spec *spec, const char *path, void **out);

#endif
