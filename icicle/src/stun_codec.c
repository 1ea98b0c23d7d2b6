/* stun_codec.c - libre's STUN codec behind icicle's own types (see stun_codec.h). */
#include "stun_codec.h"

#include "cm/crypto.h"
#include "integrity.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* libre is built with IPv6; its headers need to be told so (struct sa's in6 member). */
#define HAVE_INET6 1
#include <re/re_types.h>
#include <re/re_fmt.h>
#include <re/re_mem.h>
#include <re/re_mbuf.h>
#include <re/re_sa.h>
#include <re/re_list.h>
#include <re/re_md5.h>
#include <re/re_stun.h>

#define ICICLE_MAX_USERNAME 513 /* RFC 8489 14.3 */
#define ICICLE_MAX_TEXT     763 /* REALM, NONCE: 763 bytes (128 characters) */

static void sa_to_storage(const struct sa *in, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (in->u.sa.sa_family == AF_INET)
		memcpy(out, &in->u.in, sizeof(in->u.in));
	else if (in->u.sa.sa_family == AF_INET6)
		memcpy(out, &in->u.in6, sizeof(in->u.in6));
}

static void storage_to_sa(const struct sockaddr *in, struct sa *out)
{
	memset(out, 0, sizeof(*out));
	if (in->sa_family == AF_INET) {
		memcpy(&out->u.in, in, sizeof(struct sockaddr_in));
		out->len = sizeof(struct sockaddr_in);
	} else if (in->sa_family == AF_INET6) {
		memcpy(&out->u.in6, in, sizeof(struct sockaddr_in6));
		out->len = sizeof(struct sockaddr_in6);
	}
}

static bool collect_peer(const struct stun_attr *a, void *arg)
{
	struct icicle_req *req = arg;

	if (a->type != STUN_ATTR_XOR_PEER_ADDR)
		return false;
	if (req->npeers == ICICLE_MAX_PEERS) {
		req->too_many_peers = true;
		return true;
	}
	sa_to_storage(&a->v.xor_peer_addr, &req->peers[req->npeers++]);
	return false;
}

static size_t text_len(const char *s, size_t max)
{
	return s ? strnlen(s, max + 1) : 0;
}

/* An XOR-PEER-ADDRESS of another family than IPv4/IPv6 makes libre fail the whole decode; the
 * request is still answerable (443), so look for it before calling libre. */
static bool has_bad_peer_family(const uint8_t *raw, size_t len)
{
	struct icicle_attr_iter it;
	struct icicle_attr a;

	icicle_attr_iter_init(&it, raw, len);
	while (icicle_attr_next(&it, &a))
		if (a.type == ICICLE_A_XOR_PEER && a.len >= 2 && a.val[1] != 1 && a.val[1] != 2)
			return true;
	return false;
}

int icicle_codec_decode(struct icicle_req *req, const uint8_t *raw, size_t len)
{
	struct stun_unknown_attr ua;
	struct stun_msg *msg = NULL;
	struct stun_attr *a;
	struct mbuf *mb;
	size_t i;
	int err;

	memset(req, 0, sizeof(*req));
	req->raw = raw;
	req->rawlen = len;
	req->tid = raw + 8;
	if (has_bad_peer_family(raw, len)) {
		/* Answer from the header alone: method and class, nothing else trusted. */
		uint16_t t = (uint16_t)((raw[0] << 8) | raw[1]);

		req->method = (uint16_t)((t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2));
		req->cls = (uint16_t)(((t & 0x0100) >> 7) | ((t & 0x0010) >> 4));
		req->peer_family_bad = true;
		return 0;
	}
	mb = mbuf_alloc(len);
	if (!mb)
		return -ENOMEM;
	if (mbuf_write_mem(mb, raw, len) != 0) {
		mem_deref(mb);
		return -ENOMEM;
	}
	mb->pos = 0;
	err = stun_msg_decode(&msg, mb, &ua);
	mem_deref(mb); /* the message holds its own reference */
	if (err)
		return err == ENOMEM ? -ENOMEM : -EBADMSG;
	req->msg = msg;
	req->method = stun_msg_method(msg);
	req->cls = stun_msg_class(msg);
	if (stun_msg_attr(msg, STUN_ATTR_FINGERPRINT)) {
		if (stun_msg_chk_fingerprint(msg) != 0)
			goto bad;
		req->fingerprint = true;
	}
	if (icicle_attr_extra_parse(raw, len, &req->extra) != 0)
		goto bad;
	for (i = 0; i < ua.typec && i < ICICLE_MAX_UNKNOWN; i++)
		if (!icicle_attr_known_extra(ua.typev[i]))
			req->unknown[req->nunknown++] = ua.typev[i];

	req->has_mi = stun_msg_attr(msg, STUN_ATTR_MSG_INTEGRITY) != NULL;
	if ((a = stun_msg_attr(msg, STUN_ATTR_USERNAME)) != NULL) {
		if (text_len(a->v.username, ICICLE_MAX_USERNAME) > ICICLE_MAX_USERNAME)
			goto bad;
		req->username = a->v.username;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_REALM)) != NULL) {
		if (text_len(a->v.realm, ICICLE_MAX_TEXT) > ICICLE_MAX_TEXT)
			goto bad;
		req->realm = a->v.realm;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_NONCE)) != NULL) {
		if (text_len(a->v.nonce, ICICLE_MAX_TEXT) > ICICLE_MAX_TEXT)
			goto bad;
		req->nonce = a->v.nonce;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_LIFETIME)) != NULL) {
		req->has_lifetime = true;
		req->lifetime = a->v.lifetime;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_REQ_TRANSPORT)) != NULL) {
		req->has_transport = true;
		req->transport = a->v.req_transport;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_REQ_ADDR_FAMILY)) != NULL) {
		req->has_req_family = true;
		req->req_family = a->v.req_addr_family;
	}
	req->dont_fragment = stun_msg_attr(msg, STUN_ATTR_DONT_FRAGMENT) != NULL;
	if ((a = stun_msg_attr(msg, STUN_ATTR_EVEN_PORT)) != NULL) {
		req->has_even_port = true;
		req->even_port_r = a->v.even_port.r;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_RSV_TOKEN)) != NULL) {
		req->has_token = true;
		req->token = a->v.rsv_token;
	}
	if ((a = stun_msg_attr(msg, STUN_ATTR_CHANNEL_NUMBER)) != NULL) {
		req->has_channel = true;
		req->channel = a->v.channel_number;
	}
	(void)stun_msg_attr_apply(msg, collect_peer, req);
	if ((a = stun_msg_attr(msg, STUN_ATTR_DATA)) != NULL) {
		/* libre's DATA is a view of its own copy; point into raw at the same offset. */
		size_t off = a->v.data.pos, n = mbuf_get_left(&a->v.data);

		if (off > len || n > len - off)
			goto bad;
		req->data = raw + off;
		req->datalen = n;
	}
	return 0;
bad:
	mem_deref(msg);
	memset(req, 0, sizeof(*req));
	return -EBADMSG;
}

void icicle_codec_release(struct icicle_req *req)
{
	if (!req)
		return;
	mem_deref(req->msg);
	req->msg = NULL;
}

/* CRC-32 (IEEE, as zlib's) for FINGERPRINT: libre's crc32() is zlib's, which the suite does not
 * link. Bitwise: it runs only for the responses finish_extra() completes. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Append attribute type with value v[0..n) (padded) at out + *len. -ENOBUFS when cap is short. */
static int put_attr(uint8_t *out, size_t *len, size_t cap, uint16_t type, const uint8_t *v,
                    size_t n)
{
	size_t padded = (n + 3) & ~(size_t)3;

	if (n > 65535 || *len + 4 + padded > cap)
		return -ENOBUFS;
	put16(out + *len, type);
	put16(out + *len + 2, n);
	memcpy(out + *len + 4, v, n);
	memset(out + *len + 4 + n, 0, padded - n);
	*len += 4 + padded;
	return 0;
}

/* Append what libre cannot encode (ADDRESS-ERROR-CODE, PASSWORD-ALGORITHMS), then the integrity
 * attribute and FINGERPRINT as asked, to the message out[0..len) that libre encoded without
 * them. Returns the new length or -ENOBUFS / -EIO. */
static ssize_t finish_extra(const struct icicle_resp *r, uint8_t *out, size_t len, size_t cap)
{
	uint8_t aec[4 + 127];
	ssize_t n;
	uint32_t crc;

	if (r->addr_err_family) {
		const char *reason = r->addr_err_reason ? r->addr_err_reason : "";
		size_t rl = strlen(reason);

		if (rl > 127)
			return -ENOBUFS;
		aec[0] = r->addr_err_family;
		aec[1] = 0;
		aec[2] = (uint8_t)(r->addr_err_code / 100);
		aec[3] = (uint8_t)(r->addr_err_code % 100);
		memcpy(aec + 4, reason, rl);
		if (put_attr(out, &len, cap, ICICLE_A_ADDRESS_ERROR, aec, 4 + rl) != 0)
			return -ENOBUFS;
	}
	if (r->pwalgs &&
	    put_attr(out, &len, cap, ICICLE_A_PASSWORD_ALGS, r->pwalgs, r->pwalgs_len) != 0)
		return -ENOBUFS;
	put16(out + 2, len - ICICLE_STUN_HDR_LEN);
	if (r->key) {
		n = icicle_mi_append(out, len, cap,
		                     r->mi_sha256 ? ICICLE_MI_SHA256 : ICICLE_MI_SHA1, r->key,
		                     r->keylen);
		if (n < 0)
			return n;
		len = (size_t)n;
	}
	if (r->fingerprint) {
		if (len + 8 > cap)
			return -ENOBUFS;
		put16(out + 2, len + 8 - ICICLE_STUN_HDR_LEN);
		crc = crc32_ieee(out, len) ^ 0x5354554eu;
		put16(out + len, ICICLE_A_FINGERPRINT);
		put16(out + len + 2, 4);
		out[len + 4] = (uint8_t)(crc >> 24);
		out[len + 5] = (uint8_t)(crc >> 16);
		out[len + 6] = (uint8_t)(crc >> 8);
		out[len + 7] = (uint8_t)crc;
		len += 8;
	}
	return (ssize_t)len;
}

ssize_t icicle_codec_encode(const struct icicle_resp *r, uint8_t *out, size_t cap)
{
	struct stun_errcode ec = {0};
	struct stun_unknown_attr ua = {0};
	struct sa mapped, relayed[2];
	struct mbuf *mb;
	bool own_tail;
	ssize_t n;
	size_t i;
	int err;

	if (r->xor_mapped)
		storage_to_sa(r->xor_mapped, &mapped);
	for (i = 0; i < 2; i++)
		if (r->xor_relayed[i])
			storage_to_sa(r->xor_relayed[i], &relayed[i]);
	if (r->nunknown) {
		for (i = 0; i < r->nunknown && i < ICICLE_MAX_UNKNOWN; i++)
			ua.typev[i] = r->unknown[i];
		ua.typec = (uint32_t)i;
	}
	if (r->cls == ICICLE_C_ERROR) {
		ec.code = r->code;
		ec.reason = (char *)(uintptr_t)(r->reason ? r->reason : "");
	}
	mb = mbuf_alloc(512);
	if (!mb)
		return -ENOMEM;
	/* With an attribute libre does not know, integrity and fingerprint are added here after it
	 * (finish_extra()); otherwise libre does everything. */
	own_tail = r->addr_err_family != 0 || r->pwalgs || (r->key && r->mi_sha256);
	err = stun_msg_encode(
	    mb, r->method, (uint8_t)r->cls, r->tid, r->cls == ICICLE_C_ERROR ? &ec : NULL,
	    own_tail ? NULL : r->key, r->keylen, own_tail ? false : r->fingerprint, 0x00, 10u,
	    STUN_ATTR_XOR_MAPPED_ADDR, r->xor_mapped ? &mapped : NULL, STUN_ATTR_XOR_RELAY_ADDR,
	    r->xor_relayed[0] ? &relayed[0] : NULL, STUN_ATTR_XOR_RELAY_ADDR,
	    r->xor_relayed[1] ? &relayed[1] : NULL, STUN_ATTR_LIFETIME,
	    r->has_lifetime ? &r->lifetime : NULL, STUN_ATTR_RSV_TOKEN,
	    r->has_token ? &r->token : NULL, STUN_ATTR_UNKNOWN_ATTR, r->nunknown ? &ua : NULL,
	    STUN_ATTR_REALM, r->realm, STUN_ATTR_NONCE, r->nonce, STUN_ATTR_SOFTWARE,
	    (r->software && *r->software) ? r->software : NULL, STUN_ATTR_USERNAME, NULL);
	if (err) {
		n = err == ENOMEM ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (mb->end > cap) {
		n = -ENOBUFS;
		goto out;
	}
	memcpy(out, mb->buf, mb->end);
	n = (ssize_t)mb->end;
	if (own_tail)
		n = finish_extra(r, out, (size_t)n, cap);
out:
	mem_deref(mb);
	return n;
}

int icicle_codec_ltkeys(const char *user, const char *realm, const char *pass, size_t passlen,
                        uint8_t md5_key[16], uint8_t sha256_key[32])
{
	char buf[2048];
	size_t ul = strlen(user), rl = strlen(realm), n;
	int rc = 0;

	if (ul + rl + passlen + 2 > sizeof(buf))
		return -EINVAL;
	memcpy(buf, user, ul);
	buf[ul] = ':';
	memcpy(buf + ul + 1, realm, rl);
	buf[ul + 1 + rl] = ':';
	memcpy(buf + ul + 2 + rl, pass, passlen);
	n = ul + rl + passlen + 2;
	md5((const uint8_t *)buf, n, md5_key);
	if (sha256_key && cm_crypto_sha256(buf, n, sha256_key) != 0)
		rc = -EIO;
	memset(buf, 0, sizeof(buf));
	return rc;
}

int icicle_codec_ltkey(const char *user, const char *realm, const char *pass, size_t passlen,
                       uint8_t key[16])
{
	return icicle_codec_ltkeys(user, realm, pass, passlen, key, NULL);
}
