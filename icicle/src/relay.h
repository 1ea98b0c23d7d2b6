/* relay.h - the relay fast path of one worker (private to icicle): ChannelData and Send
 * indications from clients to peers, peer datagrams to clients as ChannelData or Data
 * indications. Nothing here allocates memory per packet: datagrams are read into the worker's
 * receive arena and queued for sending from there by reference (batch.h). Single-threaded. */
#ifndef ICICLE_RELAY_H
#define ICICLE_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "batch.h"
#include "filter.h"
#include "listen.h"

struct icicle_metrics;

struct icicle_relay {
	struct icicle_batch *batch;         /* borrowed */
	struct icicle_alloc_table *allocs;  /* borrowed */
	const struct icicle_filter *filter; /* borrowed, shared read-only */
	const struct icicle_metrics *mt;    /* borrowed */
	uint32_t rng;                       /* transaction ids of Data indications */
};

/* Pointers are borrowed for the relay's life. */
void icicle_relay_init(struct icicle_relay *r, struct icicle_batch *b,
                       struct icicle_alloc_table *allocs, const struct icicle_filter *filter,
                       const struct icicle_metrics *mt);

/* ChannelData p[0..len) from a's client to the peer bound to its channel. */
void icicle_relay_chdata(struct icicle_relay *r, struct icicle_alloc *a, const uint8_t *p,
                         size_t len);

/* A Send indication from client c to the peer it names. */
void icicle_relay_send_ind(struct icicle_relay *r, const struct icicle_client *c,
                           const uint8_t *msg, size_t len);

/* Relay socket idx of a has datagrams from peers (the allocation table's readable callback; arg
 * is the struct icicle_relay). */
void icicle_relay_readable(struct icicle_alloc *a, int idx, void *arg);

#endif
