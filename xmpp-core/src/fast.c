/* fast.c - XEP-0484 FAST tokens and the HT-SHA-256 mechanisms: the pure parts (fast.h). */
#include "fast.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/buf.h"

int xc_fast_mech(const char *name, enum xc_fast_cb *cb)
{
	if (!name)
		return -ENOENT;
	if (strcmp(name, "HT-SHA-256-NONE") == 0)
		*cb = XC_FAST_CB_NONE;
	else if (strcmp(name, "HT-SHA-256-ENDP") == 0)
		*cb = XC_FAST_CB_ENDP;
	else
		return -ENOENT;
	return 0;
}

int xc_fast_mac(const char *token, bool initiator, const void *cb, size_t cblen,
                unsigned char out[XC_FAST_MAC_LEN])
{
	const char *label = initiator ? "Initiator" : "Responder";
	size_t ll = strlen(label);
	unsigned char msg[16 + XC_FAST_CB_MAX];

	if (cblen > XC_FAST_CB_MAX)
		return -EINVAL;
	memcpy(msg, label, ll);
	if (cblen)
		memcpy(msg + ll, cb, cblen);
	return cm_crypto_hmac_sha256(token, strlen(token), msg, ll + cblen, out) == 0 ? 0 : -EIO;
}

int xc_fast_parse(const char *data, size_t len, const char **user, size_t *user_len,
                  const unsigned char **mac)
{
	const char *nul = len ? memchr(data, '\0', len) : NULL;

	if (!nul || nul == data || (size_t)(data + len - (nul + 1)) != XC_FAST_MAC_LEN)
		return -EINVAL;
	*user = data;
	*user_len = (size_t)(nul - data);
	*mac = (const unsigned char *)nul + 1;
	return 0;
}

const char *xc_fast_refusal_text(enum xc_fast_refusal why)
{
	switch (why) {
	case XC_FAST_OK:
		return "ok";
	case XC_FAST_NO_TOKEN:
		return "no token for this client";
	case XC_FAST_MISMATCH:
		return "no token of this client matches (wrong token or channel binding)";
	case XC_FAST_EXPIRED:
		return "the token has expired";
	case XC_FAST_WRONG_MECH:
		return "the token was issued for another mechanism";
	case XC_FAST_REPLAY:
		return "the count was seen already (a replay)";
	}
	return "?";
}

enum xc_fast_refusal xc_fast_match(const struct xc_fast_req *f, const char *mech,
                                   const unsigned char mac[XC_FAST_MAC_LEN], const void *cb,
                                   size_t cblen, int64_t now, uint32_t count, int *slot)
{
	static const int order[XC_FAST_NSLOT] = {XC_FAST_NEW, XC_FAST_CURRENT};
	unsigned char want[XC_FAST_MAC_LEN];
	bool any = false;

	for (int i = 0; i < XC_FAST_NSLOT; i++) {
		const struct xc_fast_token *t = &f->slot[order[i]];
		int eq;

		if (!t->set)
			continue;
		any = true;
		if (xc_fast_mac(t->token, true, cb, cblen, want) != 0)
			continue;
		eq = cm_crypto_equal(want, mac, XC_FAST_MAC_LEN);
		cm_crypto_wipe(want, sizeof(want));
		if (!eq)
			continue;
		if (strcmp(t->mech, mech) != 0)
			return XC_FAST_WRONG_MECH;
		if (t->expiry <= now)
			return XC_FAST_EXPIRED;
		if (count && count <= t->count)
			return XC_FAST_REPLAY;
		*slot = order[i];
		return XC_FAST_OK;
	}
	return any ? XC_FAST_MISMATCH : XC_FAST_NO_TOKEN;
}

int xc_fast_token_new(struct xc_fast_token *t, const char *mech, int64_t expiry)
{
	unsigned char raw[XC_FAST_RAW];
	struct cm_buf b;
	int r;

	memset(t, 0, sizeof(*t));
	if (cm_crypto_random(raw, sizeof(raw)) != 0)
		return -EIO;
	cm_buf_init(&b, 0);
	r = cm_crypto_b64_encode(&b, raw, sizeof(raw), CM_B64_STD);
	cm_crypto_wipe(raw, sizeof(raw));
	if (r || b.len > XC_FAST_TOKEN_MAX || strlen(mech) > XC_FAST_MECH_MAX) {
		cm_buf_free(&b);
		return r ? r : -EINVAL;
	}
	memcpy(t->token, b.data, b.len);
	t->token[b.len] = '\0';
	cm_crypto_wipe(b.data, b.len);
	cm_buf_free(&b);
	snprintf(t->mech, sizeof(t->mech), "%s", mech);
	t->expiry = expiry;
	t->set = true;
	return 0;
}

bool xc_fast_rotate_due(const struct xc_fast_token *t, int64_t now, int64_t rotate_before)
{
	return t->expiry - now < rotate_before;
}

int xc_fast_parse_count(const char *s, uint32_t *out)
{
	unsigned long long v = 0;

	*out = 0;
	if (!s)
		return 0;
	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

void xc_fast_format_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
