/* fuzz_b64.c - libFuzzer target: the strict base64 decoder accepts only canonical encodings.
 *
 * Every input is decoded as STD and as URL. Accepted text must come back unchanged when the
 * bytes are encoded again (URL: minus its optional padding), so two different strings can never
 * stand for the same bytes. The input is also encoded and decoded back as raw bytes. Any
 * mismatch abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "cm/buf.h"
#include "cm/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *in, size_t n, enum cm_b64_variant v)
{
	struct cm_buf dec, enc;
	size_t want = n;
	int rc;

	cm_buf_init(&dec, 0);
	cm_buf_init(&enc, 0);
	rc = cm_crypto_b64_decode(&dec, in, n, v);
	if (rc == 0) {
		if (v == CM_B64_URL)
			while (want > 0 && in[want - 1] == '=')
				want--;
		if (dec.len > n || cm_crypto_b64_encode(&enc, dec.data, dec.len, v) != 0)
			abort();
		if (enc.len != want || memcmp(enc.data, in, want) != 0)
			abort();
	} else if (rc != -EINVAL || dec.len != 0) {
		abort();
	}
	cm_buf_free(&dec);
	cm_buf_free(&enc);
}

static void check_bytes(const uint8_t *in, size_t n, enum cm_b64_variant v)
{
	struct cm_buf enc, dec;

	cm_buf_init(&enc, 0);
	cm_buf_init(&dec, 0);
	if (cm_crypto_b64_encode(&enc, in, n, v) != 0 ||
	    cm_crypto_b64_decode(&dec, enc.data, enc.len, v) != 0)
		abort();
	if (dec.len != n || (n && memcmp(dec.data, in, n) != 0))
		abort();
	cm_buf_free(&enc);
	cm_buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_text((const char *)data, size, CM_B64_STD);
	check_text((const char *)data, size, CM_B64_URL);
	check_bytes(data, size, CM_B64_STD);
	check_bytes(data, size, CM_B64_URL);
	return 0;
}
