/* scram.c - SCRAM server exchanges and stored credentials (scram.h). */
#include "scram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "jid.h"

#define SALT_LEN   16
#define NONCE_RAND 18 /* random bytes in our nonce part: 24 base64 characters */

typedef int (*hmac_fn)(const void *key, size_t keylen, const void *msg, size_t len,
                       unsigned char *out);
typedef int (*digest_fn)(const void *msg, size_t len, unsigned char *out);
typedef int (*pbkdf2_fn)(const void *pass, size_t plen, const void *salt, size_t slen,
                         unsigned iter, unsigned char *out, size_t outlen);

static const struct hashfn {
	const char *mech;
	size_t len;
	hmac_fn hmac;
	digest_fn digest;
	pbkdf2_fn pbkdf2;
} fns[XC_SCRAM_NHASH] = {
    [XC_SCRAM_SHA1] = {"SCRAM-SHA-1", CM_SHA1_LEN, cm_crypto_hmac_sha1, cm_crypto_sha1,
                       cm_crypto_pbkdf2_sha1},
    [XC_SCRAM_SHA256] = {"SCRAM-SHA-256", CM_SHA256_LEN, cm_crypto_hmac_sha256, cm_crypto_sha256,
                         cm_crypto_pbkdf2_sha256},
};

const char *xc_scram_mech_name(enum xc_scram_hash h)
{
	return fns[h].mech;
}

size_t xc_scram_key_len(enum xc_scram_hash h)
{
	return fns[h].len;
}

/* --- credentials ------------------------------------------------------------------------------ */

/* StoredKey and ServerKey from SaltedPassword (RFC 5802 3). */
static int keys_from_salted(const struct hashfn *f, const unsigned char *salted,
                            unsigned char *stored, unsigned char *server)
{
	unsigned char client_key[XC_SCRAM_KEY_MAX];
	int rc = f->hmac(salted, f->len, "Client Key", 10, client_key);

	rc = rc ? rc : f->digest(client_key, f->len, stored);
	rc = rc ? rc : f->hmac(salted, f->len, "Server Key", 10, server);
	return rc;
}

static int salted_password(const struct hashfn *f, const char *password, size_t len,
                           const unsigned char *salt, size_t salt_len, uint32_t iter,
                           unsigned char *out)
{
	char *prepped;
	int rc = xc_jid_saslprep(password, len, &prepped);

	if (rc)
		return rc;
	rc = f->pbkdf2(prepped, strlen(prepped), salt, salt_len, iter, out, f->len);
	free(prepped);
	return rc;
}

int xc_scram_creds_make(enum xc_scram_hash h, const char *password, size_t len, uint32_t iter,
                        const unsigned char *salt, size_t salt_len, struct xc_scram_creds *out)
{
	const struct hashfn *f = &fns[h];
	unsigned char salted[XC_SCRAM_KEY_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	if (iter == 0 || (salt && (salt_len == 0 || salt_len > XC_SCRAM_SALT_MAX)))
		return -EINVAL;
	if (salt) {
		memcpy(out->salt, salt, salt_len);
		out->salt_len = (uint8_t)salt_len;
	} else {
		rc = cm_crypto_random(out->salt, SALT_LEN);
		if (rc)
			return rc;
		out->salt_len = SALT_LEN;
	}
	out->iter = iter;
	rc = salted_password(f, password, len, out->salt, out->salt_len, iter, salted);
	rc = rc ? rc : keys_from_salted(f, salted, out->stored_key, out->server_key);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int xc_scram_creds_make_all(const char *password, size_t len, uint32_t iter,
                            struct xc_scram_creds out[XC_SCRAM_NHASH])
{
	for (int h = 0; h < XC_SCRAM_NHASH; h++) {
		int r = xc_scram_creds_make((enum xc_scram_hash)h, password, len, iter, NULL, 0,
		                            &out[h]);

		if (r)
			return r;
	}
	return 0;
}

int xc_scram_creds_check(enum xc_scram_hash h, const struct xc_scram_creds *c, const char *password,
                         size_t len)
{
	const struct hashfn *f = &fns[h];
	unsigned char salted[XC_SCRAM_KEY_MAX], stored[XC_SCRAM_KEY_MAX], server[XC_SCRAM_KEY_MAX];
	int rc = salted_password(f, password, len, c->salt, c->salt_len, c->iter, salted);

	if (rc == -EINVAL)
		return -EACCES; /* a password that cannot be prepared matches nothing */
	rc = rc ? rc : keys_from_salted(f, salted, stored, server);
	if (rc)
		return rc;
	return cm_crypto_equal(stored, c->stored_key, f->len) ? 0 : -EACCES;
}

void xc_scram_decoy(enum xc_scram_hash h, const unsigned char *secret, size_t secret_len,
                    const char *user, uint32_t iter, struct xc_scram_creds *out)
{
	unsigned char mac[CM_SHA256_LEN];

	memset(out, 0, sizeof(*out));
	(void)h;
	if (cm_crypto_hmac_sha256(secret, secret_len, user, strlen(user), mac) != 0)
		memset(mac, 0, sizeof(mac));
	memcpy(out->salt, mac, SALT_LEN);
	out->salt_len = SALT_LEN;
	out->iter = iter;
	/* stored_key stays zero: H(ClientKey) is never all zeros in practice, and the proof check
	 * runs all the same */
}

/* --- the exchange ----------------------------------------------------------------------------- */

void xc_scram_init(struct xc_scram *s, enum xc_scram_hash h, bool plus, bool plus_offered,
                   const struct xc_scram_cb *cb, size_t ncb)
{
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->plus = plus;
	s->plus_offered = plus_offered;
	s->ncb = cb ? (ncb < XC_SCRAM_CB_MAX ? ncb : XC_SCRAM_CB_MAX) : 0;
	if (s->ncb)
		memcpy(s->cb, cb, s->ncb * sizeof(*cb));
	s->st = XC_SCRAM_WANT_FIRST;
}

void xc_scram_free(struct xc_scram *s)
{
	free(s->user);
	free(s->authzid);
	free(s->gs2);
	free(s->first_bare);
	free(s->server_first);
	free(s->nonce);
	memset(s, 0, sizeof(*s));
}

static int fail(struct xc_scram *s, char *err, size_t errlen, int code, const char *why)
{
	s->st = XC_SCRAM_FAILED;
	return cm_errf(err, errlen, code, "%s", why);
}

static char *dup_n(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

/* The value of "k=value" at *p (up to the next ',' or end), advancing past it and its comma.
 * NULL when the attribute there is not k. */
static const char *attr(const char **p, const char *end, char k, size_t *vlen)
{
	const char *v, *comma;

	if (end - *p < 2 || (*p)[0] != k || (*p)[1] != '=')
		return NULL;
	v = *p + 2;
	comma = memchr(v, ',', (size_t)(end - v));
	*vlen = (size_t)((comma ? comma : end) - v);
	*p = comma ? comma + 1 : end;
	return v;
}

/* saslname (RFC 5802 5.1): "=2C" is ',' and "=3D" is '='; any other '=' is an error. *out is a
 * new string. 0, -EPROTO, -ENOMEM. */
static int saslname(const char *v, size_t n, char **out)
{
	char *o;

	*out = o = malloc(n + 1);
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (v[i] != '=') {
			*o++ = v[i];
			continue;
		}
		if (i + 2 < n && v[i + 1] == '2' && v[i + 2] == 'C') {
			*o++ = ',';
		} else if (i + 2 < n && v[i + 1] == '3' && v[i + 2] == 'D') {
			*o++ = '=';
		} else {
			free(*out);
			*out = NULL;
			return -EPROTO;
		}
		i += 2;
	}
	*o = '\0';
	return 0;
}

static bool printable_nonce(const char *v, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
			return false;
	return true;
}

int xc_scram_client_first(struct xc_scram *s, const char *msg, size_t len, char *err, size_t errlen)
{
	const char *p = msg, *end = msg + len, *bare, *v;
	size_t n;
	char *raw;
	int rc;

	if (s->st != XC_SCRAM_WANT_FIRST)
		return fail(s, err, errlen, -EPROTO, "unexpected client-first-message");
	if (len == 0 || len > XC_SCRAM_MSG_MAX || memchr(msg, '\0', len))
		return fail(s, err, errlen, -EPROTO, "malformed client-first-message");
	/* gs2-cbind-flag */
	if (end - p >= 2 && p[0] == 'p' && p[1] == '=') {
		const char *comma = memchr(p, ',', (size_t)(end - p));

		if (!comma)
			return fail(s, err, errlen, -EPROTO, "malformed gs2 header");
		if (!s->plus)
			return fail(s, err, errlen, -EPROTO,
			            "channel binding asked for with a mechanism without it");
		for (s->cb_used = 0; s->cb_used < s->ncb; s->cb_used++) {
			const char *t = s->cb[s->cb_used].type;

			if (strlen(t) == (size_t)(comma - p - 2) &&
			    memcmp(p + 2, t, (size_t)(comma - p - 2)) == 0)
				break;
		}
		if (s->cb_used == s->ncb)
			return fail(s, err, errlen, -EOPNOTSUPP,
			            "unsupported channel binding type");
		p = comma + 1;
	} else if (end - p >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
		if (s->plus)
			return fail(s, err, errlen, -EPROTO,
			            "a -PLUS mechanism without channel "
			            "binding");
		if (p[0] == 'y' && s->plus_offered)
			return fail(s, err, errlen, -EPROTO,
			            "the client thinks we cannot bind channels: a downgrade");
		p += 2;
	} else {
		return fail(s, err, errlen, -EPROTO, "malformed gs2 header");
	}
	/* [ "a=" saslname ] "," */
	if ((v = attr(&p, end, 'a', &n)) != NULL) {
		rc = saslname(v, n, &s->authzid);
		if (rc == -ENOMEM)
			return rc;
		if (rc || n == 0 || p[-1] != ',')
			return fail(s, err, errlen, -EPROTO, "malformed authzid");
	} else if (p < end && *p == ',') {
		p++;
	} else {
		return fail(s, err, errlen, -EPROTO, "malformed gs2 header");
	}
	s->gs2 = dup_n(msg, (size_t)(p - msg));
	bare = p;
	if (!s->gs2)
		return -ENOMEM;
	if (end - p >= 2 && p[0] == 'm' && p[1] == '=')
		return fail(s, err, errlen, -EPROTO, "mandatory extension not supported");
	if (!(v = attr(&p, end, 'n', &n)) || n == 0)
		return fail(s, err, errlen, -EPROTO, "no user name");
	rc = saslname(v, n, &raw);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return fail(s, err, errlen, -EPROTO, "malformed user name");
	rc = xc_jid_nodeprep(raw, strlen(raw), &s->user, NULL, 0);
	free(raw);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return fail(s, err, errlen, -EPROTO, "the user name is not a valid local part");
	if (!(v = attr(&p, end, 'r', &n)) || !printable_nonce(v, n))
		return fail(s, err, errlen, -EPROTO, "malformed client nonce");
	s->nonce = dup_n(v, n); /* the server's part is appended later */
	s->first_bare = dup_n(bare, (size_t)(end - bare));
	if (!s->nonce || !s->first_bare)
		return -ENOMEM;
	s->st = XC_SCRAM_WANT_CREDS;
	return 0;
}

int xc_scram_server_first(struct xc_scram *s, const struct xc_scram_creds *creds,
                          const char *snonce, struct cm_buf *out)
{
	struct cm_buf b, tmp;
	unsigned char rnd[NONCE_RAND];
	char *nonce;
	int rc;

	if (s->st != XC_SCRAM_WANT_CREDS)
		return -EPROTO;
	s->creds = *creds;
	cm_buf_init(&tmp, 0);
	if (!snonce) {
		rc = cm_crypto_random(rnd, sizeof(rnd));
		rc = rc ? rc : cm_crypto_b64_encode(&tmp, rnd, sizeof(rnd), CM_B64_STD);
		if (rc) {
			cm_buf_free(&tmp);
			return rc;
		}
		snonce = tmp.data;
	}
	nonce = malloc(strlen(s->nonce) + strlen(snonce) + 1);
	if (!nonce) {
		cm_buf_free(&tmp);
		return -ENOMEM;
	}
	strcpy(nonce, s->nonce);
	strcat(nonce, snonce);
	cm_buf_free(&tmp);
	free(s->nonce);
	s->nonce = nonce;
	cm_buf_init(&b, 0);
	rc = cm_buf_printf(&b, "r=%s,s=", s->nonce);
	rc = rc ? rc : cm_crypto_b64_encode(&b, creds->salt, creds->salt_len, CM_B64_STD);
	rc = rc ? rc : cm_buf_printf(&b, ",i=%u", (unsigned)creds->iter);
	rc = rc ? rc : cm_buf_append(out, b.data, b.len);
	if (rc) {
		cm_buf_free(&b);
		return rc;
	}
	s->server_first = cm_buf_steal(&b);
	s->st = XC_SCRAM_WANT_FINAL;
	return 0;
}

/* c= must be base64(gs2 header || channel-binding data). */
static bool binding_matches(const struct xc_scram *s, const char *v, size_t n)
{
	struct cm_buf want, got;
	bool ok;

	cm_buf_init(&want, 0);
	cm_buf_init(&got, 0);
	ok = cm_buf_puts(&want, s->gs2) == 0 &&
	     (!s->plus ||
	      cm_buf_append(&want, s->cb[s->cb_used].data, s->cb[s->cb_used].len) == 0) &&
	     cm_crypto_b64_decode(&got, v, n, CM_B64_STD) == 0 && got.len == want.len &&
	     cm_crypto_equal(got.data, want.data, want.len);
	cm_buf_free(&want);
	cm_buf_free(&got);
	return ok;
}

int xc_scram_client_final(struct xc_scram *s, const char *msg, size_t len, struct cm_buf *out,
                          char *err, size_t errlen)
{
	const struct hashfn *f = &fns[s->h];
	const char *p = msg, *end = msg + len, *v, *proof_at;
	unsigned char sig[XC_SCRAM_KEY_MAX], key[XC_SCRAM_KEY_MAX], stored[XC_SCRAM_KEY_MAX];
	struct cm_buf auth, proof;
	size_t n;
	int rc;

	if (s->st != XC_SCRAM_WANT_FINAL)
		return fail(s, err, errlen, -EPROTO, "unexpected client-final-message");
	if (len == 0 || len > XC_SCRAM_MSG_MAX || memchr(msg, '\0', len))
		return fail(s, err, errlen, -EPROTO, "malformed client-final-message");
	if (!(v = attr(&p, end, 'c', &n)))
		return fail(s, err, errlen, -EPROTO, "no channel binding attribute");
	if (!binding_matches(s, v, n))
		return fail(s, err, errlen, -EACCES, "channel bindings do not match");
	if (!(v = attr(&p, end, 'r', &n)) || n != strlen(s->nonce) || memcmp(v, s->nonce, n))
		return fail(s, err, errlen, -EPROTO, "the nonce does not match");
	/* extensions may follow; the proof is the last attribute */
	proof_at = p;
	while (p < end && !(end - p >= 2 && p[0] == 'p' && p[1] == '=')) {
		const char *comma = memchr(p, ',', (size_t)(end - p));

		p = comma ? comma + 1 : end;
		proof_at = p;
	}
	if (!(v = attr(&p, end, 'p', &n)) || p != end)
		return fail(s, err, errlen, -EPROTO, "no proof");
	cm_buf_init(&proof, 0);
	cm_buf_init(&auth, 0);
	rc = cm_crypto_b64_decode(&proof, v, n, CM_B64_STD);
	if (rc || proof.len != f->len) {
		cm_buf_free(&proof);
		return fail(s, err, errlen, -EPROTO, "malformed proof");
	}
	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
	rc = cm_buf_printf(&auth, "%s,%s,%.*s", s->first_bare, s->server_first,
	                   (int)(proof_at - msg - 1), msg);
	rc = rc ? rc : f->hmac(s->creds.stored_key, f->len, auth.data, auth.len, sig);
	if (!rc) {
		for (size_t i = 0; i < f->len; i++)
			key[i] = (unsigned char)proof.data[i] ^ sig[i];
		rc = f->digest(key, f->len, stored);
	}
	if (!rc && !cm_crypto_equal(stored, s->creds.stored_key, f->len))
		rc = -EACCES;
	if (!rc)
		rc = f->hmac(s->creds.server_key, f->len, auth.data, auth.len, sig);
	if (!rc) {
		rc = cm_buf_puts(out, "v=");
		rc = rc ? rc : cm_crypto_b64_encode(out, sig, f->len, CM_B64_STD);
	}
	cm_buf_free(&proof);
	cm_buf_free(&auth);
	if (rc == -EACCES)
		return fail(s, err, errlen, -EACCES, "wrong password");
	if (rc) {
		s->st = XC_SCRAM_FAILED;
		return rc;
	}
	s->st = XC_SCRAM_DONE;
	return 0;
}
