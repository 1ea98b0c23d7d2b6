/* fuzz_stun.c - libFuzzer target: icicle's STUN/ChannelData parsing (libre's decoder behind
 * icicle/src/stun_codec.c, icicle's own attribute walker, XOR addresses, MESSAGE-INTEGRITY check)
 * and the TCP/TLS stream framer (icicle/src/frame.c).
 *
 * Every input is handled as one datagram and as a byte stream cut at offsets taken from its
 * first byte. Invariants checked (abort() on violation): the framer's frames lie inside what it
 * was fed and start with valid STUN headers or ChannelData; a decoded request re-encodes into a
 * message whose header passes the checks; the integrity check leaves the message unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "icicle/src/attrs.h"
#include "icicle/src/integrity.h"
#include "icicle/src/frame.h"
#include "icicle/src/stun_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void datagram(const uint8_t *data, size_t size)
{
	struct icicle_attr_iter it;
	struct icicle_attr a;
	struct sockaddr_storage ss;
	struct icicle_req req;
	uint16_t chan;
	size_t dlen;
	uint8_t *copy;

	if (icicle_chdata_parse(data, size, &chan, &dlen) && (dlen > size - 4 || chan < 0x4000))
		abort();
	if (icicle_stun_check_header(data, size) != 0)
		return;
	copy = malloc(size);
	if (!copy)
		return;
	memcpy(copy, data, size);
	icicle_attr_iter_init(&it, copy, size);
	while (icicle_attr_next(&it, &a)) {
		if (a.val < copy || a.val + a.len > copy + size)
			abort();
		if (a.type == ICICLE_A_XOR_PEER || a.type == ICICLE_A_XOR_MAPPED)
			(void)icicle_xaddr_decode(a.val, a.len, copy, &ss);
	}
	(void)icicle_mi_check(copy, size, ICICLE_MI_SHA1, (const uint8_t *)"0123456789abcdef", 16);
	(void)icicle_mi_check(copy, size, ICICLE_MI_SHA256, (const uint8_t *)"0123456789abcdef",
	                      16);
	if (memcmp(copy, data, size) != 0)
		abort();
	if (icicle_codec_decode(&req, copy, size) == 0) {
		struct icicle_resp r = {0};
		uint8_t out[1024];
		ssize_t n;

		if (req.data && (req.data < copy || req.data + req.datalen > copy + size))
			abort();
		r.method = req.method;
		r.cls = ICICLE_C_ERROR;
		r.tid = req.tid;
		r.code = 420;
		r.reason = "Unknown Attribute";
		r.unknown = req.unknown;
		r.nunknown = req.nunknown;
		r.realm = req.realm;
		r.key = (const uint8_t *)"0123456789abcdef";
		r.keylen = 16;
		r.fingerprint = true;
		if (req.npeers)
			r.xor_mapped = (const struct sockaddr *)&req.peers[0];
		n = icicle_codec_encode(&r, out, sizeof(out));
		if (n > 0 && icicle_stun_check_header(out, (size_t)n) != 0)
			abort();
		icicle_codec_release(&req);
	}
	free(copy);
}

static void stream(const uint8_t *data, size_t size)
{
	struct icicle_framer f;
	size_t off = 0, step = size ? (size_t)(data[0] % 17) + 1 : 1;
	uint8_t *p;
	size_t len;
	int rc;

	icicle_framer_init(&f);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		if (icicle_framer_feed(&f, data + off, n) != 0)
			break;
		off += n;
		while ((rc = icicle_framer_next(&f, &p, &len)) == 1) {
			if (p < f.buf || p + len > f.buf + f.len)
				abort();
			if ((p[0] & 0xc0) == 0x40) {
				if (len != 4 + (size_t)((p[2] << 8) | p[3]))
					abort();
			} else if (len < 20 || (p[0] & 0xc0) != 0) {
				abort();
			} else {
				datagram(p, len);
			}
		}
		if (rc < 0)
			break;
	}
	icicle_framer_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	datagram(data, size);
	stream(data, size);
	return 0;
}
