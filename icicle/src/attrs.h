/* attrs.h - STUN/TURN wire format helpers that need no allocation: header and ChannelData
 * framing, a bounds-checked attribute walker, XOR address coding (integrity: integrity.h).
 *
 * This is the one place where icicle parses STUN bytes itself: the relay fast path (Send and
 * Data indications, ChannelData), the TCP framer, and the RFC 8489 / RFC 8656 attributes libre
 * 1.1.0 does not know (REQUESTED-ADDRESS-FAMILY's sibling ADDITIONAL-ADDRESS-FAMILY,
 * ADDRESS-ERROR-CODE, MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHM(S), USERHASH). Everything
 * else on the control path goes through libre (stun_codec.c). */
#ifndef ICICLE_ATTRS_H
#define ICICLE_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ICICLE_STUN_HDR_LEN 20
#define ICICLE_STUN_COOKIE  0x2112A442u
#define ICICLE_TID_LEN      12
#define ICICLE_CHDATA_HDR   4
#define ICICLE_MAX_MSG      (65535 + 20)

enum icicle_method {
	ICICLE_M_BINDING = 0x001,
	ICICLE_M_ALLOCATE = 0x003,
	ICICLE_M_REFRESH = 0x004,
	ICICLE_M_SEND = 0x006,
	ICICLE_M_DATA = 0x007,
	ICICLE_M_CREATEPERM = 0x008,
	ICICLE_M_CHANBIND = 0x009,
};

enum icicle_class {
	ICICLE_C_REQUEST = 0,
	ICICLE_C_INDICATION = 1,
	ICICLE_C_SUCCESS = 2,
	ICICLE_C_ERROR = 3,
};

enum icicle_attr_type {
	ICICLE_A_USERNAME = 0x0006,
	ICICLE_A_MI = 0x0008,
	ICICLE_A_ERROR_CODE = 0x0009,
	ICICLE_A_CHANNEL_NUMBER = 0x000c,
	ICICLE_A_LIFETIME = 0x000d,
	ICICLE_A_XOR_PEER = 0x0012,
	ICICLE_A_DATA = 0x0013,
	ICICLE_A_REALM = 0x0014,
	ICICLE_A_NONCE = 0x0015,
	ICICLE_A_XOR_RELAYED = 0x0016,
	ICICLE_A_REQ_FAMILY = 0x0017,
	ICICLE_A_EVEN_PORT = 0x0018,
	ICICLE_A_REQ_TRANSPORT = 0x0019,
	ICICLE_A_DONT_FRAGMENT = 0x001a,
	ICICLE_A_MI_SHA256 = 0x001c,
	ICICLE_A_PASSWORD_ALG = 0x001d,
	ICICLE_A_USERHASH = 0x001e,
	ICICLE_A_XOR_MAPPED = 0x0020,
	ICICLE_A_RSV_TOKEN = 0x0022,
	ICICLE_A_ADDITIONAL_FAMILY = 0x8000,
	ICICLE_A_ADDRESS_ERROR = 0x8001,
	ICICLE_A_PASSWORD_ALGS = 0x8002,
	ICICLE_A_SOFTWARE = 0x8022,
	ICICLE_A_FINGERPRINT = 0x8028,
};

/* Message type from method and class (RFC 8489 section 5). */
uint16_t icicle_stun_type(uint16_t method, uint16_t cls);

/* Check the fixed header of a STUN message held whole in p[0..len): top bits 00, magic cookie,
 * length a multiple of 4 that matches len exactly. 0 or -EBADMSG. */
int icicle_stun_check_header(const uint8_t *p, size_t len);

/* The frame at the start of a byte stream (TCP/TLS): how many bytes it occupies, padding of
 * ChannelData included. Returns > 0 when the whole frame size is known (it may not all be there
 * yet: compare with len), 0 when fewer than 4 bytes are available, -EBADMSG when the bytes are
 * neither STUN nor ChannelData (the connection must be closed). */
long icicle_frame_len(const uint8_t *p, size_t len);

/* Is this datagram ChannelData (first two bits 01)? Then *chan and *dlen are set and the payload
 * starts at p + 4. Requires dlen <= len - 4 (trailing padding is allowed). */
bool icicle_chdata_parse(const uint8_t *p, size_t len, uint16_t *chan, size_t *dlen);

struct icicle_attr {
	uint16_t type;
	uint16_t len;
	const uint8_t *val; /* borrowed: points into the message */
	size_t off;         /* offset of the attribute header in the message */
};

struct icicle_attr_iter {
	const uint8_t *msg; /* borrowed */
	size_t off, end;
};

/* Iterate over the attributes of a message whose header passed icicle_stun_check_header(). */
void icicle_attr_iter_init(struct icicle_attr_iter *it, const uint8_t *msg, size_t len);
/* Next attribute; false at the end or when an attribute overruns the message. */
bool icicle_attr_next(struct icicle_attr_iter *it, struct icicle_attr *a);

/* Decode an XOR-*-ADDRESS value (tid from the message header). 0, -EAFNOSUPPORT (unknown
 * family), -EBADMSG (wrong length). */
int icicle_xaddr_decode(const uint8_t *val, size_t len, const uint8_t *msg,
                        struct sockaddr_storage *out);

/* Append an XOR-*-ADDRESS attribute (header included) for sa to out; returns its size (12 or
 * 24) or 0 when cap is too small or the family is unknown. */
size_t icicle_xaddr_encode(uint8_t *out, size_t cap, uint16_t type, const struct sockaddr *sa,
                           const uint8_t *msg);

/* The attributes libre does not know that icicle understands: true for those. Used to take them
 * off the list of unknown comprehension-required attributes libre reports. */
bool icicle_attr_known_extra(uint16_t type);

/* Extras found in a request: what libre cannot decode. */
struct icicle_attr_extra {
	bool has_additional_family;
	uint8_t additional_family;
	bool has_userhash;
	bool has_mi_sha256;
	bool has_pwalg; /* PASSWORD-ALGORITHM */
	uint16_t pwalg, pwalg_params;
	bool has_pwalgs;       /* PASSWORD-ALGORITHMS */
	const uint8_t *pwalgs; /* borrowed: its value in the message */
	size_t pwalgs_len;
};

/* Fill x from the raw message (header already checked). 0 or -EBADMSG (malformed extra). */
int icicle_attr_extra_parse(const uint8_t *msg, size_t len, struct icicle_attr_extra *x);

#endif
