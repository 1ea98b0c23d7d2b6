/* crypto_b64.c - strict base64 (RFC 4648 sections 4 and 5) encoder and decoder.
 *
 * Our own codec rather than OpenSSL's EVP_Decode*: that one skips whitespace and tolerates
 * garbage after padding, and a lax decoder lets two different strings stand for the same bytes,
 * which matters for tokens and signatures compared as text. Here every accepted input is the
 * canonical encoding of its output (modulo optional padding in the URL variant). */
#include "cm/crypto.h"
#include "cm/buf.h"

#include <errno.h>
#include <stdint.h>

static const char alpha_std[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alpha_url[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of c in the variant's alphabet, or -1. A table per variant would be faster; the inputs
 * are short (tokens, credentials) and this keeps the two alphabets in one place. */
static int b64_value(unsigned char c, enum cm_b64_variant v)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (v == CM_B64_STD) {
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
	} else {
		if (c == '-')
			return 62;
		if (c == '_')
			return 63;
	}
	return -1;
}

int cm_crypto_b64_encode(struct cm_buf *out, const void *in, size_t n, enum cm_b64_variant v)
{
	const unsigned char *p = in;
	const char *alpha = v == CM_B64_URL ? alpha_url : alpha_std;
	size_t full = n / 3, rest = n % 3, olen;
	char *o;
	int err;

	if (v != CM_B64_STD && v != CM_B64_URL)
		return -EINVAL;
	if (full > (SIZE_MAX - 4) / 4)
		return -ENOMEM;
	olen = full * 4;
	if (rest)
		olen += v == CM_B64_STD ? 4 : rest + 1;
	err = cm_buf_reserve(out, olen);
	if (err)
		return err;
	o = out->data + out->len;
	for (size_t i = 0; i < full; i++, p += 3) {
		uint32_t w = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];

		*o++ = alpha[w >> 18 & 63];
		*o++ = alpha[w >> 12 & 63];
		*o++ = alpha[w >> 6 & 63];
		*o++ = alpha[w & 63];
	}
	if (rest) {
		uint32_t w = (uint32_t)p[0] << 16 | (rest == 2 ? (uint32_t)p[1] << 8 : 0);

		*o++ = alpha[w >> 18 & 63];
		*o++ = alpha[w >> 12 & 63];
		if (rest == 2)
			*o++ = alpha[w >> 6 & 63];
		if (v == CM_B64_STD) {
			if (rest == 1)
				*o++ = '=';
			*o++ = '=';
		}
	}
	out->len += olen;
	out->data[out->len] = '\0';
	return 0;
}

int cm_crypto_b64_decode(struct cm_buf *out, const char *in, size_t n, enum cm_b64_variant v)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t pad = 0, data_len, tail, olen;
	unsigned char *o;
	int err;

	if (v != CM_B64_STD && v != CM_B64_URL)
		return -EINVAL;
	/* Padding, when present, rounds the length to a multiple of 4 and is one or two '='. */
	if (n % 4 == 0) {
		while (pad < 2 && pad < n && p[n - 1 - pad] == '=')
			pad++;
	}
	if (v == CM_B64_STD && n % 4 != 0)
		return -EINVAL;
	data_len = n - pad;
	tail = data_len % 4;
	/* One character carries only 6 bits: never a whole byte. With padding, the padding must be
	 * exactly what the data length calls for ("Zg=" + "=" but not "Zm9v=" or "Zg==="). */
	if (tail == 1 || (pad && pad != 4 - tail))
		return -EINVAL;
	olen = data_len / 4 * 3 + (tail ? tail - 1 : 0);
	err = cm_buf_reserve(out, olen);
	if (err)
		return err;
	/* Decode into the reserved space but commit len only at the end: all or nothing. */
	o = (unsigned char *)out->data + out->len;
	for (size_t i = 0; i < data_len; i += 4) {
		size_t k = data_len - i < 4 ? data_len - i : 4;
		uint32_t w = 0;

		for (size_t j = 0; j < 4; j++) {
			int d = j < k ? b64_value(p[i + j], v) : 0;

			if (d < 0)
				goto bad;
			w = w << 6 | (uint32_t)d;
		}
		if (k == 4) {
			*o++ = (unsigned char)(w >> 16);
			*o++ = (unsigned char)(w >> 8);
			*o++ = (unsigned char)w;
		} else if (k == 3) {
			if (w & 0xff) /* the last character's low 2 bits must be zero */
				goto bad;
			*o++ = (unsigned char)(w >> 16);
			*o++ = (unsigned char)(w >> 8);
		} else {
			if (w & 0xffff) /* the last character's low 4 bits must be zero */
				goto bad;
			*o++ = (unsigned char)(w >> 16);
		}
	}
	out->len += olen;
	out->data[out->len] = '\0';
	return 0;
bad:
	/* the partial output overwrote the terminator; the buffer must read as before the call */
	out->data[out->len] = '\0';
	return -EINVAL;
}
