/* integrity.h - MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 14.5) and MESSAGE-INTEGRITY-SHA256
 * (HMAC-SHA256, RFC 8489 14.6): checked in requests, appended to responses. libre 1.1.0 knows
 * only the first, and only for its own encoder; this file is the one place where icicle computes
 * either. */
#ifndef ICICLE_INTEGRITY_H
#define ICICLE_INTEGRITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum icicle_mi_kind {
	ICICLE_MI_SHA1 = 0,   /* MESSAGE-INTEGRITY, 20 bytes */
	ICICLE_MI_SHA256 = 1, /* MESSAGE-INTEGRITY-SHA256, 32 bytes (TURN allows no truncation) */
};

/* Verify the first integrity attribute of kind in msg[0..len) (header already checked) with key,
 * in constant time. The length field of msg is rewritten during the call and restored, so msg
 * must be writable. 0, -ENOENT (no such attribute), -EBADMSG (mismatch or wrong size), -EIO. */
int icicle_mi_check(uint8_t *msg, size_t len, enum icicle_mi_kind kind, const uint8_t *key,
                    size_t keylen);

/* Append an integrity attribute of kind to the message out[0..len) (header included; its length
 * field is updated), room permitting cap. The new length, or -ENOBUFS, -EIO. */
ssize_t icicle_mi_append(uint8_t *out, size_t len, size_t cap, enum icicle_mi_kind kind,
                         const uint8_t *key, size_t keylen);

#endif
