/* apns_token.c - the APNs provider token (ES256 JWT) of one team: made once, shared by every
 * connection, refreshed between 20 and 60 minutes of age, never per request. */
#include "apns_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/jwt.h"
#include "cm/log.h"

static int id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n != 10)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

int pp_apns_token_init(struct pp_apns_token *t, const char *pem, size_t len, const char *key_id,
                       const char *team_id, unsigned refresh_s, char *err, size_t errlen)
{
	int r;

	memset(t, 0, sizeof(*t));
	if (!id_ok(key_id) || !id_ok(team_id)) {
		return cm_errf(err, errlen, -EINVAL,
		               "key_id and team_id must be Apple's 10-character ids");
	}
	r = cm_jwt_key_load(&t->key, CM_JWT_ES256, pem, len, err, errlen);
	if (r)
		return r;
	if (cm_crypto_sha256(pem, len, t->pem_sha256)) {
		cm_jwt_key_free(t->key);
		t->key = NULL;
		return cm_errf(err, errlen, -EIO, "cannot hash the key");
	}
	snprintf(t->key_id, sizeof(t->key_id), "%s", key_id);
	snprintf(t->team_id, sizeof(t->team_id), "%s", team_id);
	if (refresh_s < PP_APNS_TOKEN_MIN_AGE)
		refresh_s = PP_APNS_TOKEN_MIN_AGE;
	/* A minute of margin under the hour, for clocks that disagree a little. */
	if (refresh_s > PP_APNS_TOKEN_MAX_AGE - 60)
		refresh_s = PP_APNS_TOKEN_MAX_AGE - 60;
	t->refresh_s = refresh_s;
	return 0;
}

void pp_apns_token_close(struct pp_apns_token *t)
{
	cm_jwt_key_free(t->key);
	if (t->jwt) {
		cm_buf_free(t->jwt);
		free(t->jwt);
	}
	memset(t, 0, sizeof(*t));
}

static int make(struct pp_apns_token *t, time_t now)
{
	struct cm_buf *b = malloc(sizeof(*b));
	char claims[64];
	int r;

	if (!b)
		return -ENOMEM;
	cm_buf_init(b, 0);
	snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"iat\":%lld}", t->team_id,
	         (long long)now);
	r = cm_jwt_sign(b, t->key, t->key_id, claims);
	if (r) {
		cm_buf_free(b);
		free(b);
		return r;
	}
	if (t->jwt) {
		cm_buf_free(t->jwt);
		free(t->jwt);
	}
	t->jwt = b;
	t->iat = now;
	t->stale = false;
	t->remade = t->refusal_next;
	t->refusal_next = false;
	t->generated++;
	return 0;
}

const char *pp_apns__token_get(struct pp_apns_token *t, time_t now, bool *refreshed)
{
	time_t age = t->jwt ? now - t->iat : 0;
	bool want;
	int r;

	if (refreshed)
		*refreshed = false;
	/* A clock that went backwards makes a token look young: trust the hour limit anyway. */
	if (age < 0)
		age = PP_APNS_TOKEN_MAX_AGE;
	want = !t->jwt || age >= (time_t)t->refresh_s || (t->stale && age >= PP_APNS_TOKEN_MIN_AGE);
	if (want) {
		r = make(t, now);
		if (r) {
			CM_LOGE("apns", "team %s: cannot sign a provider token: %d", t->team_id, r);
			/* The old token is still usable while it is under the hour. */
			return t->jwt && age < PP_APNS_TOKEN_MAX_AGE ? t->jwt->data : NULL;
		}
		if (refreshed)
			*refreshed = true;
	}
	return t->jwt->data;
}

void pp_apns_token_refused(struct pp_apns_token *t)
{
	/* Forget it: the next get makes a new one whatever the age. */
	if (t->jwt) {
		cm_buf_free(t->jwt);
		free(t->jwt);
		t->jwt = NULL;
	}
	t->refusal_next = true;
}

void pp_apns__token_accepted(struct pp_apns_token *t, uint64_t gen)
{
	if (gen == t->generated)
		t->remade = false;
}

int pp_apns_token_rekey(struct pp_apns_token *t, const char *pem, size_t len, char *err,
                        size_t errlen)
{
	struct cm_jwt_key *k = NULL;
	unsigned char sha[32];
	int r = cm_jwt_key_load(&k, CM_JWT_ES256, pem, len, err, errlen);

	if (r)
		return r;
	if (cm_crypto_sha256(pem, len, sha)) {
		cm_jwt_key_free(k);
		return cm_errf(err, errlen, -EIO, "cannot hash the key");
	}
	if (!memcmp(sha, t->pem_sha256, sizeof(sha))) {
		cm_jwt_key_free(k); /* unchanged: the current token stays */
		return 0;
	}
	cm_jwt_key_free(t->key);
	t->key = k;
	memcpy(t->pem_sha256, sha, sizeof(sha));
	/* Replaced as soon as the 20-minute rule allows: sooner would be refused with
	 * TooManyProviderTokenUpdates, and the old token stays valid until Apple revokes the key.
	 */
	t->stale = true;
	return 0;
}
