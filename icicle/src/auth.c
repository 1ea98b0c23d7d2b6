/* auth.c - long-term credentials, REST secrets, static users and stateless nonces (auth.h). */
#include "auth.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "stun_codec.h"

struct icicle_user {
	char *name;     /* owned */
	char *password; /* owned, wiped on free */
};

struct icicle_creds {
	atomic_uint refs;
	char **secrets; /* owned, each owned and wiped on free */
	size_t nsecrets;
	struct icicle_user *users; /* owned, sorted by name */
	size_t nusers;
};

static void wipe_free(char *s)
{
	if (!s)
		return;
	memset(s, 0, strlen(s));
	free(s);
}

static void creds_free(struct icicle_creds *c)
{
	size_t i;

	for (i = 0; i < c->nsecrets; i++)
		wipe_free(c->secrets[i]);
	free(c->secrets);
	for (i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		wipe_free(c->users[i].password);
	}
	free(c->users);
	free(c);
}

/* Next line of text[0..len) from *pos, trimmed of trailing CR and surrounding blanks. */
static bool next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *n)
{
	size_t s, e;

	if (*pos >= len)
		return false;
	s = *pos;
	e = s;
	while (e < len && text[e] != '\n')
		e++;
	*pos = e < len ? e + 1 : e;
	while (s < e && (text[s] == ' ' || text[s] == '\t'))
		s++;
	while (e > s && (text[e - 1] == '\r' || text[e - 1] == ' ' || text[e - 1] == '\t'))
		e--;
	*line = text + s;
	*n = e - s;
	return true;
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct icicle_user *)a)->name, ((const struct icicle_user *)b)->name);
}

static int add_secret(struct icicle_creds *c, const char *s, size_t n)
{
	char **v = realloc(c->secrets, (c->nsecrets + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->secrets = v;
	v[c->nsecrets] = strndup(s, n);
	if (!v[c->nsecrets])
		return -ENOMEM;
	c->nsecrets++;
	return 0;
}

static int add_user(struct icicle_creds *c, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	struct icicle_user *v, *u;

	if (!colon || colon == s || colon == s + n - 1)
		return -EINVAL;
	v = realloc(c->users, (c->nusers + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->users = v;
	u = &v[c->nusers];
	u->name = strndup(s, (size_t)(colon - s));
	u->password = strndup(colon + 1, n - (size_t)(colon - s) - 1);
	if (!u->name || !u->password) {
		free(u->name);
		wipe_free(u->password);
		return -ENOMEM;
	}
	c->nusers++;
	return 0;
}

int icicle_creds_alloc(struct icicle_creds **out, const char *secrets, size_t secretslen,
                       const char *users, size_t userslen, char *err, size_t errlen)
{
	struct icicle_creds *c;
	const char *line;
	size_t pos = 0, n, lineno = 0;
	int rc = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	atomic_init(&c->refs, 1);
	while (secrets && next_line(secrets, secretslen, &pos, &line, &n))
		if (n > 0 && line[0] != '#' && (rc = add_secret(c, line, n)) != 0) {
			cm_errf(err, errlen, rc, "out of memory");
			goto out;
		}
	pos = 0;
	while (users && next_line(users, userslen, &pos, &line, &n)) {
		lineno++;
		if (n == 0 || line[0] == '#')
			continue;
		rc = add_user(c, line, n);
		if (rc != 0) {
			cm_errf(err, errlen, rc, "line %zu: %s", lineno,
			        rc == -EINVAL ? "expected \"name:password\"" : "out of memory");
			goto out;
		}
	}
	if (c->nusers > 1)
		qsort(c->users, c->nusers, sizeof(*c->users), user_cmp);
out:
	if (rc != 0) {
		creds_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void icicle_creds_ref(struct icicle_creds *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void icicle_creds_unref(struct icicle_creds *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		creds_free(c);
}

size_t icicle_creds_nsecrets(const struct icicle_creds *c)
{
	return c ? c->nsecrets : 0;
}

size_t icicle_creds_nusers(const struct icicle_creds *c)
{
	return c ? c->nusers : 0;
}

int icicle_auth_init(struct icicle_auth *a, const char *realm, uint32_t nonce_lifetime,
                     struct icicle_creds *creds)
{
	memset(a, 0, sizeof(*a));
	a->realm = realm;
	a->nonce_lifetime = nonce_lifetime;
	a->cur = creds;
	pthread_mutex_init(&a->lock, NULL);
	if (cm_crypto_random(a->nonce_key, sizeof(a->nonce_key)) != 0) {
		pthread_mutex_destroy(&a->lock);
		a->cur = NULL;
		return -EIO;
	}
	return 0;
}

void icicle_auth_close(struct icicle_auth *a)
{
	icicle_creds_unref(a->cur);
	a->cur = NULL;
	memset(a->nonce_key, 0, sizeof(a->nonce_key));
	pthread_mutex_destroy(&a->lock);
}

void icicle_auth_swap(struct icicle_auth *a, struct icicle_creds *creds)
{
	struct icicle_creds *old;

	pthread_mutex_lock(&a->lock);
	old = a->cur;
	a->cur = creds;
	pthread_mutex_unlock(&a->lock);
	icicle_creds_unref(old);
}

struct icicle_creds *icicle_auth_get(struct icicle_auth *a)
{
	struct icicle_creds *c;

	pthread_mutex_lock(&a->lock);
	c = a->cur;
	if (c)
		icicle_creds_ref(c);
	pthread_mutex_unlock(&a->lock);
	return c;
}

/* MAC input: 8 bytes of time, family, port and address bytes of the client. */
static void nonce_mac(const struct icicle_auth *a, const struct sockaddr *client, uint32_t t,
                      unsigned char mac[CM_SHA256_LEN])
{
	uint8_t in[4 + 2 + 2 + 16] = {0};
	size_t n = 8;

	in[0] = (uint8_t)(t >> 24);
	in[1] = (uint8_t)(t >> 16);
	in[2] = (uint8_t)(t >> 8);
	in[3] = (uint8_t)t;
	if (client->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)client;

		in[4] = 4;
		memcpy(in + 6, &s->sin_port, 2);
		memcpy(in + 8, &s->sin_addr, 4);
		n = 12;
	} else if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)client;

		in[4] = 6;
		memcpy(in + 6, &s->sin6_port, 2);
		memcpy(in + 8, &s->sin6_addr, 16);
		n = 24;
	}
	if (cm_crypto_hmac_sha256(a->nonce_key, sizeof(a->nonce_key), in, n, mac) != 0)
		memset(mac, 0, CM_SHA256_LEN); /* never matches a nonce we issued... */
}

static const char hexd[] = "0123456789abcdef";

void icicle_nonce_make(const struct icicle_auth *a, const struct sockaddr *client, uint64_t now,
                       char out[ICICLE_NONCE_LEN + 1])
{
	unsigned char mac[CM_SHA256_LEN];
	uint32_t t = (uint32_t)now;
	size_t i;

	nonce_mac(a, client, t, mac);
	memcpy(out, ICICLE_NONCE_COOKIE, ICICLE_NONCE_COOKIE_LEN);
	out += ICICLE_NONCE_COOKIE_LEN;
	for (i = 0; i < 8; i++)
		out[i] = hexd[(t >> (28 - 4 * i)) & 0xf];
	for (i = 0; i < 16; i++) {
		out[8 + 2 * i] = hexd[mac[i] >> 4];
		out[9 + 2 * i] = hexd[mac[i] & 0xf];
	}
	out[ICICLE_NONCE_LEN - ICICLE_NONCE_COOKIE_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int icicle_nonce_check(const struct icicle_auth *a, const struct sockaddr *client,
                       const char *nonce, uint64_t now)
{
	unsigned char mac[CM_SHA256_LEN], got[16];
	uint32_t t = 0;
	size_t i;
	int h, l;

	if (!nonce || strlen(nonce) != ICICLE_NONCE_LEN ||
	    memcmp(nonce, ICICLE_NONCE_COOKIE, ICICLE_NONCE_COOKIE_LEN) != 0)
		return -EINVAL;
	nonce += ICICLE_NONCE_COOKIE_LEN;
	for (i = 0; i < 8; i++) {
		if ((h = hexval(nonce[i])) < 0)
			return -EINVAL;
		t = (t << 4) | (uint32_t)h;
	}
	for (i = 0; i < 16; i++) {
		h = hexval(nonce[8 + 2 * i]);
		l = hexval(nonce[9 + 2 * i]);
		if (h < 0 || l < 0)
			return -EINVAL;
		got[i] = (unsigned char)(h << 4 | l);
	}
	nonce_mac(a, client, t, mac);
	if (!cm_crypto_equal(mac, got, sizeof(got)))
		return -EINVAL;
	/* The time is authenticated now; a nonce from the future is as bad as a forged one. */
	if ((uint64_t)t > now + 5 || now - (uint64_t)t >= a->nonce_lifetime)
		return -ESTALE;
	return 0;
}

uint64_t icicle_auth_rest_expiry(const char *username)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; username[i] >= '0' && username[i] <= '9'; i++) {
		if (i >= 15)
			return 0;
		v = v * 10 + (uint64_t)(username[i] - '0');
	}
	if (i == 0 || (username[i] != ':' && username[i] != '\0'))
		return 0;
	return v;
}

int icicle_auth_ltkey(const char *user, const char *realm, const char *pass, size_t passlen,
                      struct icicle_key *out)
{
	return icicle_codec_ltkeys(user, realm, pass, passlen, out->md5, out->sha256);
}

int icicle_auth_keys(const struct icicle_creds *c, const char *username, const char *realm,
                     uint64_t now, struct icicle_key *keys, size_t maxkeys)
{
	struct icicle_user want, *u;
	uint64_t expiry;
	size_t i, n = 0;

	if (!c)
		return -ENOENT;
	expiry = icicle_auth_rest_expiry(username);
	if (expiry && c->nsecrets > 0) {
		unsigned char mac[CM_SHA1_LEN];
		struct cm_buf pw;

		if (expiry < now)
			return -EKEYEXPIRED;
		cm_buf_init(&pw, 64);
		for (i = 0; i < c->nsecrets && n < maxkeys; i++) {
			if (cm_crypto_hmac_sha1(c->secrets[i], strlen(c->secrets[i]), username,
			                        strlen(username), mac) != 0)
				continue;
			cm_buf_reset(&pw);
			if (cm_crypto_b64_encode(&pw, mac, sizeof(mac), CM_B64_STD) != 0)
				continue;
			if (icicle_auth_ltkey(username, realm, pw.data, pw.len, &keys[n]) == 0)
				n++;
		}
		if (pw.data)
			memset(pw.data, 0, pw.len);
		cm_buf_free(&pw);
		memset(mac, 0, sizeof(mac));
		return n > 0 ? (int)n : -ENOENT;
	}
	if (c->nusers == 0 || maxkeys == 0)
		return -ENOENT;
	want.name = (char *)(uintptr_t)username;
	u = bsearch(&want, c->users, c->nusers, sizeof(*c->users), user_cmp);
	if (!u)
		return -ENOENT;
	if (icicle_auth_ltkey(username, realm, u->password, strlen(u->password), &keys[0]) != 0)
		return -ENOENT;
	return 1;
}
