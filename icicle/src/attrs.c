/* attrs.c - STUN/TURN wire format helpers without allocation (see attrs.h). */
#include "attrs.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "cm/crypto.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint16_t icicle_stun_type(uint16_t method, uint16_t cls)
{
	return (uint16_t)(((method & 0x0f80) << 2) | ((method & 0x0070) << 1) | (method & 0x000f) |
	                  ((cls & 0x2) << 7) | ((cls & 0x1) << 4));
}

int icicle_stun_check_header(const uint8_t *p, size_t len)
{
	size_t mlen;

	if (len < ICICLE_STUN_HDR_LEN || (p[0] & 0xc0) != 0)
		return -EBADMSG;
	mlen = rd16(p + 2);
	if ((mlen & 3) != 0 || mlen + ICICLE_STUN_HDR_LEN != len)
		return -EBADMSG;
	if (rd32(p + 4) != ICICLE_STUN_COOKIE)
		return -EBADMSG;
	return 0;
}

long icicle_frame_len(const uint8_t *p, size_t len)
{
	size_t n;

	if (len < 4)
		return 0;
	switch (p[0] >> 6) {
	case 0: /* STUN: the length excludes the 20-byte header and is a multiple of 4 */
		n = rd16(p + 2);
		if (n & 3)
			return -EBADMSG;
		return (long)(n + ICICLE_STUN_HDR_LEN);
	case 1: /* ChannelData over a stream is padded to a multiple of 4 (RFC 8656 12.5) */
		n = rd16(p + 2);
		return (long)(ICICLE_CHDATA_HDR + ((n + 3) & ~(size_t)3));
	default:
		return -EBADMSG;
	}
}

bool icicle_chdata_parse(const uint8_t *p, size_t len, uint16_t *chan, size_t *dlen)
{
	uint16_t c;
	size_t n;

	if (len < ICICLE_CHDATA_HDR || (p[0] & 0xc0) != 0x40)
		return false;
	c = rd16(p);
	n = rd16(p + 2);
	if (n > len - ICICLE_CHDATA_HDR)
		return false;
	*chan = c;
	*dlen = n;
	return true;
}

void icicle_attr_iter_init(struct icicle_attr_iter *it, const uint8_t *msg, size_t len)
{
	it->msg = msg;
	it->off = ICICLE_STUN_HDR_LEN;
	it->end = len;
}

bool icicle_attr_next(struct icicle_attr_iter *it, struct icicle_attr *a)
{
	size_t alen;

	if (it->off + 4 > it->end)
		return false;
	alen = rd16(it->msg + it->off + 2);
	if (alen > it->end - it->off - 4) {
		it->off = it->end;
		return false;
	}
	a->type = rd16(it->msg + it->off);
	a->len = (uint16_t)alen;
	a->val = it->msg + it->off + 4;
	a->off = it->off;
	it->off += 4 + ((alen + 3) & ~(size_t)3);
	if (it->off > it->end) /* the last attribute's padding may be missing: tolerate */
		it->off = it->end;
	return true;
}

int icicle_xaddr_decode(const uint8_t *val, size_t len, const uint8_t *msg,
                        struct sockaddr_storage *out)
{
	uint16_t port;
	size_t i;

	if (len < 4)
		return -EBADMSG;
	port = (uint16_t)(rd16(val + 2) ^ (ICICLE_STUN_COOKIE >> 16));
	memset(out, 0, sizeof(*out));
	if (val[1] == 0x01) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		uint8_t a[4];

		if (len != 8)
			return -EBADMSG;
		for (i = 0; i < 4; i++)
			a[i] = val[4 + i] ^ msg[4 + i];
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a, 4);
		return 0;
	}
	if (val[1] == 0x02) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		uint8_t a[16];

		if (len != 20)
			return -EBADMSG;
		for (i = 0; i < 16; i++) /* cookie then transaction id: msg[4..20) */
			a[i] = val[4 + i] ^ msg[4 + i];
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, a, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

size_t icicle_xaddr_encode(uint8_t *out, size_t cap, uint16_t type, const struct sockaddr *sa,
                           const uint8_t *msg)
{
	const uint8_t *a;
	size_t alen, i;
	uint16_t port;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		a = (const uint8_t *)&in->sin_addr;
		alen = 4;
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		a = (const uint8_t *)&in6->sin6_addr;
		alen = 16;
		port = ntohs(in6->sin6_port);
	} else {
		return 0;
	}
	if (cap < 8 + alen)
		return 0;
	wr16(out, type);
	wr16(out + 2, (uint16_t)(4 + alen));
	out[4] = 0;
	out[5] = alen == 4 ? 0x01 : 0x02;
	wr16(out + 6, (uint16_t)(port ^ (ICICLE_STUN_COOKIE >> 16)));
	for (i = 0; i < alen; i++)
		out[8 + i] = a[i] ^ msg[4 + i];
	return 8 + alen;
}

bool icicle_attr_known_extra(uint16_t type)
{
	switch (type) {
	case ICICLE_A_ADDITIONAL_FAMILY:
	case ICICLE_A_MI_SHA256:
	case ICICLE_A_USERHASH:
	case ICICLE_A_PASSWORD_ALG:
		return true;
	default:
		return false;
	}
}

int icicle_attr_extra_parse(const uint8_t *msg, size_t len, struct icicle_attr_extra *x)
{
	struct icicle_attr_iter it;
	struct icicle_attr a;

	memset(x, 0, sizeof(*x));
	icicle_attr_iter_init(&it, msg, len);
	while (icicle_attr_next(&it, &a)) {
		switch (a.type) {
		case ICICLE_A_ADDITIONAL_FAMILY:
			if (a.len != 4)
				return -EBADMSG;
			if (!x->has_additional_family) {
				x->has_additional_family = true;
				x->additional_family = a.val[0];
			}
			break;
		case ICICLE_A_USERHASH:
			x->has_userhash = true;
			break;
		case ICICLE_A_MI_SHA256:
			x->has_mi_sha256 = true;
			break;
		case ICICLE_A_PASSWORD_ALG:
			/* algorithm, parameters length, parameters (none for MD5 and SHA-256) */
			if (a.len < 4 || rd16(a.val + 2) != a.len - 4)
				return -EBADMSG;
			if (!x->has_pwalg) {
				x->has_pwalg = true;
				x->pwalg = rd16(a.val);
				x->pwalg_params = rd16(a.val + 2);
			}
			break;
		case ICICLE_A_PASSWORD_ALGS:
			if (!x->has_pwalgs) {
				x->has_pwalgs = true;
				x->pwalgs = a.val;
				x->pwalgs_len = a.len;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}
