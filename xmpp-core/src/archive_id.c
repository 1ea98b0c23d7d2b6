/* archive_id.c - archive ids as a keyed permutation of row numbers (archive_id.h). */
#include "archive_id.h"

#include <errno.h>
#include <string.h>

#include "cm/map.h"

#define ROUNDS                                                                                     \
	4 /* a balanced Feistel network: four rounds make a good pseudorandom permutation          \
	   */

/* Round i's function of one half: SipHash under the key, of the round and the half. */
static uint32_t round_fn(const uint64_t key[2], unsigned i, uint32_t half)
{
	unsigned char in[5] = {(unsigned char)i, (unsigned char)half, (unsigned char)(half >> 8),
	                       (unsigned char)(half >> 16), (unsigned char)(half >> 24)};

	return (uint32_t)cm_hash(key, in, sizeof(in));
}

void xc_archive_id_encode(const uint64_t key[2], uint64_t n, char out[XC_ARCHIVE_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint32_t l = (uint32_t)(n >> 32), r = (uint32_t)n, t;
	uint64_t v;

	for (unsigned i = 0; i < ROUNDS; i++) {
		t = l ^ round_fn(key, i, r);
		l = r;
		r = t;
	}
	v = (uint64_t)l << 32 | r;
	for (int i = XC_ARCHIVE_ID_LEN - 1; i >= 0; i--) {
		out[i] = hex[v & 15];
		v >>= 4;
	}
	out[XC_ARCHIVE_ID_LEN] = '\0';
}

int xc_archive_id_decode(const uint64_t key[2], const char *s, uint64_t *n)
{
	uint64_t v = 0;
	uint32_t l, r, t;

	if (strlen(s) != XC_ARCHIVE_ID_LEN)
		return -EINVAL;
	for (int i = 0; i < XC_ARCHIVE_ID_LEN; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -EINVAL;
	}
	l = (uint32_t)(v >> 32);
	r = (uint32_t)v;
	for (unsigned i = ROUNDS; i-- > 0;) {
		t = r ^ round_fn(key, i, l);
		r = l;
		l = t;
	}
	*n = (uint64_t)l << 32 | r;
	return 0;
}
