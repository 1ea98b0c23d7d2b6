/* fuzz_jwt.c - libFuzzer target: cm_jwt_verify() on arbitrary tokens.
 *
 * The keys are the public halves of tests/common/jwt/ec256.pem and rsa2048.pem, embedded so the
 * target needs no files; the seed corpus holds tokens really signed with them, so mutations
 * reach the signature check and beyond. Results must be one of the documented codes, outputs
 * untouched on failure and JSON objects on success; anything else abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char es256_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOvZIrPNPnO+Gw9aUOAXvb1cT8hX1\n"
                                "KwNE2wpKIWA6xvtnSMuh2cxveQ7kt45rQlyNFaoP+dqmpoQQvXtZi2t5Cw==\n"
                                "-----END PUBLIC KEY-----\n";

static const char rs256_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4hsZhXEha82G9enxdZ8T\n"
                                "2QFrk3dY77Uf7AkzV/tazxq7nwdwvvHHnRiYrGXWkiIdObo2thDWiiu54nA9mYAw\n"
                                "Is2SYRR4pS4HHTJIzSkZd6OgFYRs3HByZxOzo/3ilVtTB9eoBMJJRWY0vWFGr4uv\n"
                                "BtabI4DzgKrJUztXF4i47FfvkcbEP1kqIcWCkhEc1gXf1fNEgf1DyDnwP86AnTXH\n"
                                "RBhwxINoTNvBX85K41eizpeyirxyQ39BnhbU6arcId/tAEB98nMCrhFlLZUpQJ0I\n"
                                "o/a6N/3MXjpaYEN/RY3d7fdePZEB1P08B3sB6SLspL4a+C8U/jXyuNb4PdYW2xvt\n"
                                "sQIDAQAB\n"
                                "-----END PUBLIC KEY-----\n";

/* Loaded once for the process: a fuzz target has no other place to keep them. */
static struct cm_jwt_key *load(enum cm_jwt_alg alg, const char *pem)
{
	struct cm_jwt_key *k = NULL;

	if (cm_jwt_pubkey_load(&k, alg, pem, strlen(pem), NULL, 0) != 0)
		abort();
	return k;
}

static void check(const struct cm_jwt_key *k, const uint8_t *data, size_t size)
{
	struct cm_buf hdr, claims;
	int rc;

	cm_buf_init(&hdr, 0);
	cm_buf_init(&claims, 0);
	rc = cm_jwt_verify(k, (const char *)data, size, &hdr, &claims);
	if (rc == 0) {
		/* both decoded parts were checked to be JSON objects */
		if (hdr.len < 2 || claims.len < 2 || hdr.len > size || claims.len > size)
			abort();
	} else if ((rc != -EINVAL && rc != -EBADMSG) || hdr.len || claims.len) {
		abort();
	}
	cm_buf_free(&hdr);
	cm_buf_free(&claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cm_jwt_key *es, *rs;

	if (!es) {
		es = load(CM_JWT_ES256, es256_pub);
		rs = load(CM_JWT_RS256, rs256_pub);
	}
	check(es, data, size);
	check(rs, data, size);
	return 0;
}
