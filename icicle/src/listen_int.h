/* listen_int.h - what listen.c (sending to any client) needs of listen_tcp.c (private to
 * icicle). */
#ifndef ICICLE_LISTEN_INT_H
#define ICICLE_LISTEN_INT_H

#include "listen.h"

/* Queue hdr, payload and pad zero bytes on the connection as one frame (see
 * icicle_client_frame()). */
void icicle_conn__send(struct icicle_conn *c, struct icicle_batch *b, const uint8_t *hdr,
                       size_t hlen, const uint8_t *payload, size_t plen, size_t pad);

#endif
