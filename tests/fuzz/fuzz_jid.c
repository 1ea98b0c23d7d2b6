/* fuzz_jid.c - libFuzzer target: JID parsing (xmpp-core/src/jid.c).
 *
 * Whatever the bytes, parsing either fails with -EINVAL and leaves the JID empty, or succeeds
 * with parts inside the limits; a normalised JID parses again to itself (normalisation is
 * idempotent), and its bare form compares equal to it as a bare JID. Any breach abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "xmpp-core/src/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xc_jid j, again, bare;
	char err[CM_ERR_MAX];
	int rc;

	rc = xc_jid_parse(&j, (const char *)data, size, err, sizeof(err));
	if (rc) {
		if (rc != -EINVAL || j.s || !err[0])
			abort();
		return 0;
	}
	if (j.dlen == 0 || j.dlen > XC_JID_PART_MAX || j.llen > XC_JID_PART_MAX ||
	    j.rlen > XC_JID_PART_MAX || strlen(j.s) != xc_jid_len(&j))
		abort();
	if (xc_jid_parse(&again, j.s, strlen(j.s), err, sizeof(err)) != 0)
		abort();
	if (!xc_jid_equal(&j, &again))
		abort();
	if (xc_jid_copy(&bare, &j, true) != 0 || !xc_jid_bare_equal(&bare, &j) ||
	    !xc_jid_is_bare(&bare))
		abort();
	xc_jid_free(&j);
	xc_jid_free(&again);
	xc_jid_free(&bare);
	return 0;
}
