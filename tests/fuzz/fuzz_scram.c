/* fuzz_scram.c - libFuzzer target: the SCRAM server (xmpp-core/src/scram.c) fed arbitrary
 * client messages.
 *
 * The input's first byte picks the mechanism (hash, -PLUS or not, -PLUS offered or not); the
 * rest is split at its first NUL into client-first and client-final. The exchange must end in
 * DONE or FAILED with one of the documented codes (-EOPNOTSUPP only for a client-first that asks
 * a -PLUS mechanism for a channel binding type other than the one offered); a random proof
 * never succeeds (the keys come from a password the input cannot know). Any breach abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "xmpp-core/src/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct xc_scram_creds creds[XC_SCRAM_NHASH];
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xc_scram_cb cb = {.type = "tls-exporter", .len = 32};
	const char *first, *final;
	size_t flen, clen;
	enum xc_scram_hash h;
	struct xc_scram s;
	struct cm_buf out;
	char err[CM_ERR_MAX];
	const uint8_t *nul;
	uint8_t flags;
	int rc;

	if (!ready) {
		for (int i = 0; i < XC_SCRAM_NHASH; i++)
			if (xc_scram_creds_make((enum xc_scram_hash)i, "unguessable", 11, 2, NULL,
			                        0, &creds[i]) != 0)
				abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	flags = data[0];
	h = (flags & 1) ? XC_SCRAM_SHA256 : XC_SCRAM_SHA1;
	memset(cb.data, 0x5a, sizeof(cb.data));
	xc_scram_init(&s, h, flags & 2, flags & 4, (flags & 8) ? &cb : NULL, 1);
	data++;
	size--;
	nul = memchr(data, 0, size);
	first = (const char *)data;
	flen = nul ? (size_t)(nul - data) : size;
	final = nul ? (const char *)nul + 1 : "";
	clen = nul ? size - flen - 1 : 0;
	cm_buf_init(&out, 0);
	rc = xc_scram_client_first(&s, first, flen, err, sizeof(err));
	if (rc == -EOPNOTSUPP) {
		size_t tl = strlen(cb.type);
		int offered = (flags & 8) && flen > 2 + tl && memcmp(first + 2, cb.type, tl) == 0 &&
		              first[2 + tl] == ',';

		if (!s.plus || flen < 2 || first[0] != 'p' || first[1] != '=' || offered)
			abort();
		rc = -EPROTO; /* checked: from here on, a refusal like the others */
	} else if (rc == 0) {
		if (!s.user || !s.user[0] || s.st != XC_SCRAM_WANT_CREDS)
			abort();
		if (xc_scram_server_first(&s, &creds[h], NULL, &out) != 0)
			abort();
		rc = xc_scram_client_final(&s, final, clen, &out, err, sizeof(err));
		if (rc == 0)
			abort(); /* a proof made without the password */
	}
	if (rc != -EPROTO && rc != -EACCES && rc != -ENOMEM)
		abort();
	if (s.st != XC_SCRAM_FAILED && rc != -ENOMEM)
		abort();
	cm_buf_free(&out);
	xc_scram_free(&s);
	return 0;
}
