/* integrity.c - MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 (see integrity.h). */
#include "integrity.h"

#include <errno.h>
#include <string.h>

#include "attrs.h"
#include "cm/crypto.h"

static void wr16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int hmac(enum icicle_mi_kind kind, const uint8_t *key, size_t keylen, const uint8_t *msg,
                size_t len, unsigned char *out)
{
	if (kind == ICICLE_MI_SHA256)
		return cm_crypto_hmac_sha256(key, keylen, msg, len, out);
	return cm_crypto_hmac_sha1(key, keylen, msg, len, out);
}

int icicle_mi_check(uint8_t *msg, size_t len, enum icicle_mi_kind kind, const uint8_t *key,
                    size_t keylen)
{
	uint16_t type = kind == ICICLE_MI_SHA256 ? ICICLE_A_MI_SHA256 : ICICLE_A_MI;
	size_t maclen = kind == ICICLE_MI_SHA256 ? CM_SHA256_LEN : CM_SHA1_LEN;
	unsigned char mac[CM_SHA256_LEN];
	struct icicle_attr_iter it;
	struct icicle_attr a;
	uint8_t saved[2];
	int rc;

	icicle_attr_iter_init(&it, msg, len);
	while (icicle_attr_next(&it, &a)) {
		if (a.type != type)
			continue;
		if (a.len != maclen)
			return -EBADMSG;
		/* The length field covers everything up to and including the attribute; what
		 * follows (MESSAGE-INTEGRITY-SHA256 after MESSAGE-INTEGRITY, FINGERPRINT) is not
		 * covered. */
		memcpy(saved, msg + 2, 2);
		wr16(msg + 2, a.off + 4 + maclen - ICICLE_STUN_HDR_LEN);
		rc = hmac(kind, key, keylen, msg, a.off, mac);
		memcpy(msg + 2, saved, 2);
		if (rc != 0)
			return -EIO;
		return cm_crypto_equal(mac, a.val, maclen) ? 0 : -EBADMSG;
	}
	return -ENOENT;
}

ssize_t icicle_mi_append(uint8_t *out, size_t len, size_t cap, enum icicle_mi_kind kind,
                         const uint8_t *key, size_t keylen)
{
	uint16_t type = kind == ICICLE_MI_SHA256 ? ICICLE_A_MI_SHA256 : ICICLE_A_MI;
	size_t maclen = kind == ICICLE_MI_SHA256 ? CM_SHA256_LEN : CM_SHA1_LEN;

	if (len < ICICLE_STUN_HDR_LEN || (len & 3) != 0 || len + 4 + maclen > cap ||
	    len + 4 + maclen - ICICLE_STUN_HDR_LEN > 65535)
		return -ENOBUFS;
	wr16(out + 2, len + 4 + maclen - ICICLE_STUN_HDR_LEN);
	if (hmac(kind, key, keylen, out, len, out + len + 4) != 0)
		return -EIO;
	wr16(out + len, type);
	wr16(out + len + 2, maclen);
	return (ssize_t)(len + 4 + maclen);
}
