/* cm/listener.h - a listening TCP socket that hands out cm_streams.
 *
 * A listener binds its address (SO_REUSEPORT when asked, so that each worker loop can have its
 * own socket on the same port), accepts, and turns each connection into a cm_stream with the
 * configured options (TLS from the start, deadlines, water marks) for the accept event. It
 * enforces two limits before the protocol sees anything:
 *   - max_conns: connections of this listener alive at once; one over it is accepted only to be
 *     reset (no TIME_WAIT left on our side);
 *   - a per-source hook: the listener asks source_admit() about the peer's address and tells
 *     source_release() when an admitted connection ends, so that one table of counts can serve
 *     every listener of a daemon (cm/srclimit.h is that table).
 * Refusals are reported through the refused event (for metrics and rate-limited logs). When
 * accepting fails for want of memory the listener tries again shortly instead of going deaf;
 * libuv itself copes with running out of descriptors.
 *
 * The listener does not own the streams it accepted: closing it stops accepting, nothing more.
 * Single-threaded, on the loop it was opened with.
 */
#ifndef CM_LISTENER_H
#define CM_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cm/stream.h"

struct cm_listener;
struct cm_loop;

enum cm_listener_refusal {
	CM_LISTENER_REFUSED_CAP = 1, /* max_conns reached */
	CM_LISTENER_REFUSED_SOURCE,  /* source_admit() said no */
};

struct cm_listener_config {
	const struct sockaddr *addr; /* borrowed during open */
	socklen_t addrlen;
	bool reuseport;
	int backlog;                  /* 0: 511 */
	unsigned max_conns;           /* 0: no cap */
	struct cm_stream_opts stream; /* for every accepted stream (tls borrowed) */
	/* Per-source admission (both may be NULL). admit returns 0 to take the connection. */
	int (*source_admit)(void *arg, const struct sockaddr *peer);
	void (*source_release)(void *arg, const struct sockaddr *peer);
	void *source_arg; /* borrowed */
};

struct cm_listener_events {
	/* A new stream: give it its events with cm_stream_start() (or close it). Required. */
	void (*accept)(struct cm_listener *ln, struct cm_stream *s);
	/* A connection was refused (reset at once). May be NULL. */
	void (*refused)(struct cm_listener *ln, enum cm_listener_refusal why,
	                const struct sockaddr *peer);
};

/* Bind and listen on l's loop. cfg is copied, ev and data borrowed. 0, or a negative errno
 * (-EADDRINUSE, -EACCES, ...: nothing is left open). */
int cm_listener_open(struct cm_listener **out, struct cm_loop *l,
                     const struct cm_listener_config *cfg, const struct cm_listener_events *ev,
                     void *data);

/* Stop accepting (connections wait in the kernel's backlog, or are refused once it is full). */
void cm_listener_pause(struct cm_listener *ln);

/* Close the socket; done(arg) (may be NULL) runs from its close callback, after which the
 * listener is freed. Streams already accepted live on. Accepts NULL. */
void cm_listener_close(struct cm_listener *ln, void (*done)(void *arg), void *arg);

void *cm_listener_data(const struct cm_listener *ln);
unsigned cm_listener_count(const struct cm_listener *ln); /* accepted streams alive */
/* The bound address (the port chosen when 0 was asked). 0 or a libuv error. */
int cm_listener_address(const struct cm_listener *ln, struct sockaddr_storage *ss, socklen_t *len);

/* Log a warning (under mod) when one source address may hold as many connections as one
 * worker's listener takes (per_source and per_worker, 0 for no limit, named by their keys): the
 * kernel hands each connection to a worker by a hash of its addresses, and a worker one source
 * has filled refuses every other client it is handed. 1 when warned, else 0. */
int cm_listener_warn_caps(const char *mod, const char *source_key, long long per_source,
                          const char *worker_key, long long per_worker);

#endif
