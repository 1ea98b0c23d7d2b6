/* stun_codec.h - the adapter around libre's STUN codec: decoding requests on the control path
 * into a plain struct, encoding responses. Only stun_codec.c includes libre headers; no libre
 * type or mem_ reference escapes it.
 *
 * libre 1.1.0 needs no libre_init() for the codec, and its mem_ allocator (malloc plus a
 * non-atomic reference count, no global list in the Debian build) is safe as long as each object
 * stays on one thread, which holds here: a request is decoded, handled and released by the
 * worker that received it. */
#ifndef ICICLE_STUN_CODEC_H
#define ICICLE_STUN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "attrs.h"

#define ICICLE_MAX_PEERS   8 /* XOR-PEER-ADDRESS attributes taken from one CreatePermission */
#define ICICLE_MAX_UNKNOWN 8

struct icicle_req {
	uint16_t method, cls;
	const uint8_t *raw; /* borrowed: the message bytes (tid at raw + 8) */
	size_t rawlen;
	const uint8_t *tid;
	bool fingerprint; /* carried a valid FINGERPRINT */
	bool has_mi;
	/* Borrowed from the decoded message until icicle_codec_release(); NULL when absent. */
	const char *username, *realm, *nonce;
	bool has_lifetime;
	uint32_t lifetime;
	bool has_transport;
	uint8_t transport;
	bool has_req_family;
	uint8_t req_family;
	bool dont_fragment;
	bool has_even_port, even_port_r;
	bool has_token;
	uint64_t token;
	bool has_channel;
	uint16_t channel;
	struct sockaddr_storage peers[ICICLE_MAX_PEERS];
	size_t npeers;
	bool peer_family_bad; /* an XOR-PEER-ADDRESS of an unknown family */
	bool too_many_peers;
	const uint8_t *data; /* DATA value, borrowed from raw */
	size_t datalen;
	uint16_t unknown[ICICLE_MAX_UNKNOWN]; /* comprehension-required attributes not understood */
	size_t nunknown;
	struct icicle_attr_extra extra;
	void *msg; /* owned: libre's struct stun_msg */
};

/* Decode the STUN message raw[0..len) (its header already checked with
 * icicle_stun_check_header()). raw must stay valid and unmodified until release (DATA points
 * into it). 0, -EBADMSG (malformed, or a FINGERPRINT that does not match: drop it), -ENOMEM. On
 * failure nothing needs releasing. */
int icicle_codec_decode(struct icicle_req *req, const uint8_t *raw, size_t len);

/* Free what decode allocated. Accepts a zeroed or released request. */
void icicle_codec_release(struct icicle_req *req);

/* A response to encode. Pointers are borrowed for the call; NULL / 0 leaves an attribute out. */
struct icicle_resp {
	uint16_t method;
	uint16_t cls; /* ICICLE_C_SUCCESS or ICICLE_C_ERROR (or INDICATION) */
	const uint8_t *tid;
	uint16_t code; /* error responses */
	const char *reason;
	const struct sockaddr *xor_mapped;
	const struct sockaddr *xor_relayed[2];
	bool has_lifetime;
	uint32_t lifetime;
	bool has_token;
	uint64_t token;
	const char *realm, *nonce, *software;
	const uint16_t *unknown;
	size_t nunknown;
	/* ADDRESS-ERROR-CODE (RFC 8656): the family (0x01/0x02) that could not be allocated; 0 for
	 * none. libre cannot encode it, so the codec appends it itself. */
	uint8_t addr_err_family;
	uint16_t addr_err_code;
	const char *addr_err_reason;
	/* PASSWORD-ALGORITHMS value (RFC 8489 14.11), appended by the codec; NULL for none. */
	const uint8_t *pwalgs;
	size_t pwalgs_len;
	const uint8_t *key; /* MESSAGE-INTEGRITY with this long-term key */
	size_t keylen;
	bool mi_sha256; /* MESSAGE-INTEGRITY-SHA256 instead (the client used it) */
	bool fingerprint;
};

/* Encode r into out (cap bytes). Returns the message length, or -ENOBUFS, -ENOMEM, -EINVAL. */
ssize_t icicle_codec_encode(const struct icicle_resp *r, uint8_t *out, size_t cap);

/* Long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 section 9.2.2).
 * 0, or -EINVAL when the three together exceed 2 KiB. */
int icicle_codec_ltkey(const char *user, const char *realm, const char *pass, size_t passlen,
                       uint8_t key[16]);
/* Both long-term keys from one "username:realm:password": MD5 as above and, unless sha256_key
 * is NULL, SHA-256 (RFC 8489 password algorithm SHA-256, 0x0002). 0, -EINVAL, -EIO. */
int icicle_codec_ltkeys(const char *user, const char *realm, const char *pass, size_t passlen,
                        uint8_t md5_key[16], uint8_t sha256_key[32]);

#endif
