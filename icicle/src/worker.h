/* worker.h - one worker of icicle (private to icicle): a loop of the framework's
 * (cm_daemon_workers()) with its own client sockets, allocations, relay and control path.
 *
 * A worker owns everything a client's 5-tuple leads to, so the relay path takes no lock unless a
 * per-user bandwidth limit is set. Its sockets are opened by icicle_worker_init() on the main
 * thread before the threads start, so that a port in use fails start-up with a clear message;
 * from then on only the worker's thread touches it, until icicle_worker_stop() closes its
 * handles there. Its memory goes in icicle_worker_free(), once the threads have been joined. */
#ifndef ICICLE_WORKER_H
#define ICICLE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc.h"
#include "batch.h"
#include "cm/list.h"
#include "listen.h"
#include "relay.h"
#include "turn.h"

#define ICICLE_CONN_IDLE_MS 30000 /* a connection without allocation lives this long idle */

struct cm_loop;
struct icicle;

struct icicle_worker {
	struct icicle *ic;    /* borrowed: what the workers share */
	struct cm_loop *loop; /* borrowed: the framework's */
	struct cm_list link;  /* in the daemon's list of workers */
	struct icicle_batch batch;
	struct icicle_alloc_table allocs;
	struct icicle_relay relay;
	struct icicle_turn turn;
	struct icicle_streams streams;
	struct icicle_udp **udp; /* owned array of nudp; each socket closes itself */
	size_t nudp;
};

/* The framework's worker callbacks (struct cm_worker_ops), arg being the struct icicle. init
 * makes the worker, links it into the daemon's list and opens its sockets; a failure is logged
 * with its reason. stop closes every handle the worker opened. */
int icicle_worker_init(struct cm_loop *l, void *arg);
void icicle_worker_stop(struct cm_loop *l, void *arg);

/* Free a worker whose loop has run dry. */
void icicle_worker_free(struct icicle_worker *w);

#endif
