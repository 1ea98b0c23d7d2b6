/* frame.h - cuts a TCP/TLS byte stream into STUN messages and ChannelData frames (RFC 8656
 * 12.5: over streams ChannelData is padded to a multiple of 4 bytes). */
#ifndef ICICLE_FRAME_H
#define ICICLE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define ICICLE_FRAMER_MAX (65535 + 20 + 8) /* the largest frame, with room to spare */

struct icicle_framer {
	uint8_t *buf; /* owned */
	size_t len, cap;
	size_t off; /* start of the next frame */
};

void icicle_framer_init(struct icicle_framer *f);
void icicle_framer_close(struct icicle_framer *f);

/* Append stream bytes (copied). Consumed frames are dropped first. 0, -ENOBUFS (more than one
 * frame's worth of unframed bytes: the peer is misbehaving), -ENOMEM. */
int icicle_framer_feed(struct icicle_framer *f, const void *data, size_t n);

/* Bytes received that are not yet a complete frame. */
size_t icicle_framer_pending(const struct icicle_framer *f);

/* The next complete frame: 1 with *p and *len set (ChannelData without its padding; *p stays valid
 * until the next feed), 0 when more bytes are needed, -EBADMSG when the stream is neither STUN
 * nor ChannelData (close the connection). */
int icicle_framer_next(struct icicle_framer *f, uint8_t **p, size_t *len);

#endif
