/* c2s_int.h - what c2s.c (the client stream) and c2s_ws.c (its WebSocket framing) share. Not
 * for other modules: they use c2s.h. */
#ifndef XC_C2S_INT_H
#define XC_C2S_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "c2s.h"

#define XC_NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing" /* RFC 7395 */

/* A new connection on sh, in sh->conns and counted; its transport is the caller's to set. NULL
 * without memory. */
struct xc_c2s *xc_c2s__new(struct xc_shard *sh);

/* Bytes from the client, after the transport (a TCP read, or what a WebSocket message became):
 * the shaper counts them and the XML stream parser takes them. */
void xc_c2s__input(struct xc_c2s *c, const char *data, size_t len);

/* The transport's timer expired. */
void xc_c2s__timeout(struct xc_c2s *c);

/* The transport is gone (err: why, 0 for a clean end): the connection goes. */
void xc_c2s__closed(struct xc_c2s *c, int err);

/* c2s_ws.c: the WebSocket events (for a connection imported on its home shard), the <open/>
 * that answers the client's, a stream error as RFC 7395 frames it, and the <close/>. */
struct cm_ws_events;
const struct cm_ws_events *xc_c2s__ws_events(void);
int xc_c2s__ws_header(struct xc_c2s *c);
int xc_c2s__ws_error(struct xc_c2s *c, const char *condition, const char *text);
void xc_c2s__ws_end(struct xc_c2s *c);

#endif
