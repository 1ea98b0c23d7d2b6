/* tls_ctx.c - reloadable OpenSSL contexts: files, verification, ALPN, protocol defaults. */
#include "tls_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* The server's ALPN list lives in the SSL_CTX's ex_data, so that it is freed with the last
 * reference to the context: contexts handed out by cm_tls_ctx_get() may outlive the cm_tls.
 * The index is process-wide by OpenSSL's design; it is written once under pthread_once and only
 * read afterwards. */
static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;
static int alpn_index = -1;

struct alpn_list {
	size_t len;
	unsigned char wire[]; /* length-prefixed names, server preference first */
};

static void alpn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void alpn_index_init(void)
{
	alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_ex_free);
}

/* Choose from the client's list in the server's order of preference. No overlap is not fatal
 * (SSL_TLSEXT_ERR_NOACK): the session continues without ALPN and cm_tls_conn_alpn() says "",
 * so the application decides, e.g. falls back to HTTP/1.1 or closes. RFC 7301 allows a server
 * to refuse with no_application_protocol instead, but a fallback is friendlier to clients that
 * offer a list of protocols of which we serve another by default. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct alpn_list *l = arg;

	(void)ssl;
	for (size_t i = 0; i < l->len; i += 1u + l->wire[i]) {
		const unsigned char *name = l->wire + i + 1;
		unsigned char nlen = l->wire[i];

		for (unsigned int j = 0; j < inlen;) {
			unsigned char clen = in[j];

			if (clen == 0 || clen > inlen - j - 1)
				break; /* malformed; OpenSSL has checked it already */
			if (clen == nlen && memcmp(in + j + 1, name, nlen) == 0) {
				*out = in + j + 1;
				*outlen = clen;
				return SSL_TLSEXT_ERR_OK;
			}
			j += 1u + clen;
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* "h2, http/1.1" -> "\x02h2\x08http/1.1". */
static int alpn_parse(struct cm_tls *t, const char *s, char *err, size_t errlen)
{
	size_t slen = strlen(s), n = 0;
	const char *p = s;

	/* The wire form is never longer than the text plus one length byte. */
	t->alpn = malloc(slen + 1);
	if (!t->alpn) {
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		const char *stop = end ? end : s + slen;
		size_t len;

		while (p < stop && (*p == ' ' || *p == '\t'))
			p++;
		while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
			stop--;
		len = (size_t)(stop - p);
		if (len == 0 || len > CM_TLS_ALPN_MAX) {
			cm_ossl__errf(err, errlen, "alpn \"%s\": protocol names are 1 to %d bytes",
			              s, CM_TLS_ALPN_MAX);
			return -EINVAL;
		}
		t->alpn[n++] = (unsigned char)len;
		memcpy(t->alpn + n, p, len);
		n += len;
		if (!end)
			break;
		p = end + 1;
	}
	if (n > 65535) {
		cm_ossl__errf(err, errlen, "alpn: list too long");
		return -EINVAL;
	}
	t->alpn_len = n;
	return 0;
}

static int setup_alpn(const struct cm_tls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
	struct alpn_list *l;

	if (!t->alpn)
		return 0;
	if (!t->server) {
		/* SSL_CTX_set_alpn_protos returns 0 on success, unlike its neighbours. */
		if (SSL_CTX_set_alpn_protos(ctx, t->alpn, (unsigned int)t->alpn_len) != 0) {
			cm_ossl__errf(err, errlen, "alpn: cannot configure");
			return -ENOMEM;
		}
		return 0;
	}
	pthread_once(&alpn_once, alpn_index_init);
	if (alpn_index < 0) {
		cm_ossl__errf(err, errlen, "alpn: no ex_data index");
		return -ENOMEM;
	}
	l = malloc(sizeof(*l) + t->alpn_len);
	if (!l) {
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->len = t->alpn_len;
	memcpy(l->wire, t->alpn, t->alpn_len);
	if (!SSL_CTX_set_ex_data(ctx, alpn_index, l)) {
		free(l);
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, l);
	return 0;
}

/* Extra chain certificates from a PEM file of one or more certificates. */
static int load_chain(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(file, "r");
	X509 *x;
	int count = 0;

	if (!bio) {
		cm_ossl__errf(err, errlen, "%s: cannot open chain file", file);
		return -EINVAL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, cm_ossl__no_passphrase, NULL)) != NULL) {
		if (!SSL_CTX_add0_chain_cert(ctx, x)) {
			X509_free(x);
			BIO_free(bio);
			cm_ossl__errf(err, errlen, "%s: cannot add chain certificate", file);
			return -EINVAL;
		}
		count++;
	}
	BIO_free(bio);
	if (count == 0) {
		cm_ossl__errf(err, errlen, "%s: no certificate in chain file", file);
		return -EINVAL;
	}
	ERR_clear_error(); /* the end of the file shows up as a "no start line" error */
	return 0;
}

static int load_cert_key(const struct cm_tls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
	const char *keyf = t->key_file ? t->key_file : t->cert_file;
	EVP_PKEY *pkey = NULL;
	X509 *cert;
	BIO *bio;
	int rc = -EINVAL;

	/* The certificate file may carry its intermediates after the leaf. */
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		cm_ossl__errf(err, errlen, "%s: cannot load certificate", t->cert_file);
		return -EINVAL;
	}
	if (t->chain_file && (rc = load_chain(ctx, t->chain_file, err, errlen)) != 0)
		return rc;
	rc = -EINVAL;
	/* The key is read here rather than by SSL_CTX_use_PrivateKey_file so that "cannot read"
	 * and "does not match" get different messages. */
	bio = BIO_new_file(keyf, "r");
	if (!bio) {
		cm_ossl__errf(err, errlen, "%s: cannot open private key", keyf);
		return -EINVAL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, cm_ossl__no_passphrase, NULL);
	BIO_free(bio);
	if (!pkey) {
		cm_ossl__errf(err, errlen, "%s: no unencrypted PEM private key", keyf);
		return -EINVAL;
	}
	cert = SSL_CTX_get0_certificate(ctx);
	if (!cert || X509_check_private_key(cert, pkey) != 1) {
		cm_ossl__errf(err, errlen, "%s: key does not match certificate %s", keyf,
		              t->cert_file);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		cm_ossl__errf(err, errlen, "%s: cannot use private key", keyf);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		cm_ossl__errf(err, errlen, "%s: key does not match certificate %s", keyf,
		              t->cert_file);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	return rc;
}

static int setup_verify(const struct cm_tls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
	if (!t->verify_peer) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (t->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1) {
			cm_ossl__errf(err, errlen, "%s: cannot load CA certificates", t->ca_file);
			return -EINVAL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		cm_ossl__errf(err, errlen, "cannot load the system's CA certificates");
		return -EINVAL;
	}
	if (!t->server) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		return 0;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (t->ca_file) {
		/* Tell clients which CAs we accept, so they pick the right certificate. */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);

		if (!names) {
			cm_ossl__errf(err, errlen, "%s: cannot read CA names", t->ca_file);
			return -EINVAL;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	return 0;
}

static time_t cert_not_after(SSL_CTX *ctx)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	struct tm tm;

	if (!cert || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
		ERR_clear_error();
		return 0;
	}
	return timegm(&tm);
}

/* Build a complete context from t's files. Nothing in t changes, so reload can call it without
 * the lock and swap only on success. */
static int build_ctx(const struct cm_tls *t, SSL_CTX **out, time_t *not_after, char *err,
                     size_t errlen)
{
	static const unsigned char sid_ctx[] = "cm_tls";
	SSL_CTX *ctx;
	int rc;

	ERR_clear_error();
	ctx = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		cm_ossl__errf(err, errlen, "cannot create an SSL context");
		return -ENOMEM;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		cm_ossl__errf(err, errlen, "cannot set the minimum TLS version");
		rc = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle XMPP and TURN sessions are the common case: give their buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Records come from a buffer already read from the socket: take what is there in one
	 * read instead of a header and then a body, for each record. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_passwd_cb(ctx, cm_ossl__no_passphrase);
	if (t->server && SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		cm_ossl__errf(err, errlen, "cannot set the session id context");
		rc = -ENOMEM;
		goto fail;
	}
	if (t->cert_file && (rc = load_cert_key(t, ctx, err, errlen)) != 0)
		goto fail;
	if ((rc = setup_verify(t, ctx, err, errlen)) != 0)
		goto fail;
	if ((rc = setup_alpn(t, ctx, err, errlen)) != 0)
		goto fail;
	*not_after = cert_not_after(ctx);
	*out = ctx;
	ERR_clear_error();
	return 0;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int dup_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int tls_alloc(struct cm_tls **out, const struct cm_tls_config *cfg, int server, char *err,
                     size_t errlen)
{
	struct cm_tls *t;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out || !cfg) {
		cm_ossl__errf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	*out = NULL;
	if (server && !cfg->cert_file) {
		cm_ossl__errf(err, errlen, "a TLS server needs a certificate (cert_file)");
		return -EINVAL;
	}
	if (!cfg->cert_file && cfg->key_file) {
		cm_ossl__errf(err, errlen, "%s: private key given without a certificate",
		              cfg->key_file);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		cm_ossl__errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		cm_ossl__errf(err, errlen, "cannot create a mutex");
		return -ENOMEM;
	}
	t->server = server;
	/* one internal flag: verify the peer (always for clients unless told not to) */
	t->verify_peer = server ? cfg->require_client_cert : !cfg->insecure_no_verify;
	rc = dup_opt(&t->cert_file, cfg->cert_file);
	if (!rc)
		rc = dup_opt(&t->key_file, cfg->key_file);
	if (!rc)
		rc = dup_opt(&t->chain_file, cfg->chain_file);
	if (!rc)
		rc = dup_opt(&t->ca_file, cfg->ca_file);
	if (rc)
		cm_ossl__errf(err, errlen, "out of memory");
	if (!rc && cfg->alpn)
		rc = alpn_parse(t, cfg->alpn, err, errlen);
	if (!rc)
		rc = build_ctx(t, &t->ctx, &t->not_after, err, errlen);
	if (rc) {
		cm_tls_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int cm_tls_server_alloc(struct cm_tls **out, const struct cm_tls_config *cfg, char *err,
                        size_t errlen)
{
	return tls_alloc(out, cfg, 1, err, errlen);
}

int cm_tls_client_alloc(struct cm_tls **out, const struct cm_tls_config *cfg, char *err,
                        size_t errlen)
{
	return tls_alloc(out, cfg, 0, err, errlen);
}

int cm_tls_reload(struct cm_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL, *old;
	time_t not_after = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!t)
		return -EINVAL;
	rc = build_ctx(t, &ctx, &not_after, err, errlen);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->lock);
	old = t->ctx;
	t->ctx = ctx;
	t->not_after = not_after;
	pthread_mutex_unlock(&t->lock);
	/* Live sessions hold their own references: this frees the old context only when the last
	 * of them is gone. */
	SSL_CTX_free(old);
	return 0;
}

time_t cm_tls_not_after(struct cm_tls *t)
{
	time_t v;

	pthread_mutex_lock(&t->lock);
	v = t->not_after;
	pthread_mutex_unlock(&t->lock);
	return v;
}

SSL_CTX *cm_tls_ctx_get(struct cm_tls *t)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&t->lock);
	ctx = t->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	return ctx;
}

void cm_tls_free(struct cm_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t->cert_file);
	free(t->key_file);
	free(t->chain_file);
	free(t->ca_file);
	free(t->alpn);
	free(t);
}
