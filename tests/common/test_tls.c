/* test_tls.c - reloadable contexts and the memory-BIO TLS engine (common/src/tls_*.c): full
 * handshakes between two cm_tls_conn in one process, bytes carried by hand. Certificates are in
 * tests/common/tls/ (see its README). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cm/buf.h"
#include "cm/tls.h"
#include "tests/support/alloc.h"

#define DIR "tests/common/tls/"

/* notAfter of the fixtures, from `date -d "$(openssl x509 -noout -enddate ...)" +%s`. */
#define SERVER_NOT_AFTER  ((time_t)4949062687) /* server.pem: Oct 30 19:38:07 2126 GMT */
#define SERVER2_NOT_AFTER ((time_t)4905862687) /* server2.pem: Jun 17 19:38:07 2125 GMT */
#define EXPIRED_NOT_AFTER ((time_t)978307200)  /* expired.pem: Jan 1 00:00:00 2001 GMT */

static const struct cm_tls_config srv_cfg = {
    .cert_file = DIR "server.pem",
    .key_file = DIR "server.key",
};

static const struct cm_tls_config cli_cfg = {
    .ca_file = DIR "ca.pem",
};

static struct cm_tls *server_ctx(const struct cm_tls_config *cfg)
{
	struct cm_tls *t = NULL;
	char err[256];
	int rc = cm_tls_server_alloc(&t, cfg, err, sizeof(err));

	if (rc)
		fail_msg("server_alloc: %d %s", rc, err);
	return t;
}

static struct cm_tls *client_ctx(const struct cm_tls_config *cfg)
{
	struct cm_tls *t = NULL;
	char err[256];
	int rc = cm_tls_client_alloc(&t, cfg, err, sizeof(err));

	if (rc)
		fail_msg("client_alloc: %d %s", rc, err);
	return t;
}

/* Two sessions joined by the test, with the plaintext each has received. */
struct pair {
	struct cm_tls_conn *cli, *srv;
	struct cm_buf cli_got, srv_got;
	int cli_rc, srv_rc; /* last read result: 0, -ECONNRESET, -EPROTO */
};

static void pair_open(struct pair *p, struct cm_tls *srv, struct cm_tls *cli, const char *name)
{
	memset(p, 0, sizeof(*p));
	cm_buf_init(&p->cli_got, 0);
	cm_buf_init(&p->srv_got, 0);
	assert_int_equal(cm_tls_conn_alloc(&p->srv, srv, NULL), 0);
	assert_int_equal(cm_tls_conn_alloc(&p->cli, cli, name), 0);
}

static void pair_close(struct pair *p)
{
	cm_tls_conn_free(p->cli);
	cm_tls_conn_free(p->srv);
	cm_buf_free(&p->cli_got);
	cm_buf_free(&p->srv_got);
}

/* Carry everything from's side has to send over to to. Small reads on purpose: record
 * boundaries must not matter. */
static size_t carry(struct cm_tls_conn *from, struct cm_tls_conn *to)
{
	unsigned char buf[777];
	size_t n, total = 0;

	while ((n = cm_tls_conn_take(from, buf, sizeof(buf))) > 0) {
		assert_int_equal(cm_tls_conn_feed(to, buf, n), 0);
		total += n;
	}
	assert_int_equal(cm_tls_conn_pending(from), 0);
	return total;
}

static int drain(struct cm_tls_conn *c, struct cm_buf *got)
{
	char buf[1000];
	ssize_t n;

	while ((n = cm_tls_conn_read(c, buf, sizeof(buf))) > 0)
		assert_int_equal(cm_buf_append(got, buf, (size_t)n), 0);
	return (int)n;
}

/* Exchange bytes until neither side has anything more to say. */
static void pump(struct pair *p)
{
	for (int round = 0; round < 100; round++) {
		size_t moved = carry(p->cli, p->srv);

		p->srv_rc = drain(p->srv, &p->srv_got);
		moved += carry(p->srv, p->cli);
		p->cli_rc = drain(p->cli, &p->cli_got);
		if (!moved && !cm_tls_conn_pending(p->cli) && !cm_tls_conn_pending(p->srv))
			return;
	}
	fail_msg("the sessions never went quiet");
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

static long peer_serial(struct cm_tls_conn *c)
{
	X509 *x = SSL_get0_peer_certificate(cm_tls_conn_ssl(c));

	assert_non_null(x);
	return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

static void test_handshake_and_data(void **state)
{
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	struct pair p;
	struct cm_buf big;
	char buf[64];

	(void)state;
	pair_open(&p, srv, cli, "localhost");
	/* the ClientHello is ready as soon as the session exists */
	assert_true(cm_tls_conn_pending(p.cli) > 0);
	assert_false(cm_tls_conn_established(p.cli));
	/* plaintext written before the handshake waits for it */
	assert_int_equal(cm_tls_conn_write(p.cli, "early ", 6), 0);
	assert_int_equal(cm_tls_conn_write(p.srv, "welcome ", 8), 0);
	pump(&p);
	assert_int_equal(p.cli_rc, 0);
	assert_int_equal(p.srv_rc, 0);
	assert_true(cm_tls_conn_established(p.cli));
	assert_true(cm_tls_conn_established(p.srv));
	assert_string_equal(cm_tls_conn_error(p.cli), "");
	assert_string_equal(cm_tls_conn_alpn(p.cli), "");
	assert_true(SSL_version(cm_tls_conn_ssl(p.cli)) >= TLS1_2_VERSION);
	assert_int_equal(peer_serial(p.cli), 0x1001);
	assert_string_equal(p.srv_got.data, "early ");
	assert_string_equal(p.cli_got.data, "welcome ");

	/* both ways, after the handshake, including more than one record's worth */
	assert_int_equal(cm_tls_conn_write(p.cli, "ping", 4), 0);
	cm_buf_init(&big, 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(cm_buf_append(&big, &"0123456789abcdef"[i % 16], 1), 0);
	assert_int_equal(cm_tls_conn_write(p.srv, big.data, big.len), 0);
	assert_int_equal(cm_tls_conn_write(p.srv, "", 0), 0);
	pump(&p);
	assert_string_equal(p.srv_got.data, "early ping");
	assert_int_equal(p.cli_got.len, 8 + big.len);
	assert_memory_equal(p.cli_got.data + 8, big.data, big.len);

	/* idle: both give back their buffers, and the session goes on as before */
	assert_int_equal(cm_tls_conn_trim(p.cli), 0);
	assert_int_equal(cm_tls_conn_trim(p.srv), 0);
	assert_int_equal(cm_tls_conn_write(p.cli, " again", 6), 0);
	assert_int_equal(cm_tls_conn_trim(p.cli), -EBUSY); /* a record waits to be taken */
	pump(&p);
	assert_string_equal(p.srv_got.data, "early ping again");
	assert_int_equal(cm_tls_conn_write(p.srv, big.data, big.len), 0);
	pump(&p);
	assert_int_equal(p.cli_got.len, 8 + 2 * big.len);
	assert_memory_equal(p.cli_got.data + 8 + big.len, big.data, big.len);
	cm_buf_free(&big);

	/* trimmed, a session keeps no BIOs, has nothing to give and nothing to read, a second
	 * trim is no error, and its close_notify still reaches the peer (through a new pair) */
	assert_int_equal(cm_tls_conn_trim(p.cli), 0);
	assert_int_equal(cm_tls_conn_trim(p.srv), 0);
	assert_null(SSL_get_rbio(cm_tls_conn_ssl(p.srv)));
	assert_null(SSL_get_wbio(cm_tls_conn_ssl(p.srv)));
	assert_int_equal(cm_tls_conn_trim(p.srv), 0);
	assert_int_equal(cm_tls_conn_pending(p.srv), 0);
	assert_int_equal(cm_tls_conn_read(p.srv, buf, sizeof(buf)), 0);
	cm_tls_conn_shutdown(p.srv);
	assert_non_null(SSL_get_wbio(cm_tls_conn_ssl(p.srv)));
	assert_true(cm_tls_conn_pending(p.srv) > 0);
	pump(&p);
	assert_int_equal(p.cli_rc, -ECONNRESET);
	pair_close(&p);

	/* not before the handshake is done */
	pair_open(&p, srv, cli, "localhost");
	assert_int_equal(cm_tls_conn_trim(p.cli), -EBUSY);
	pair_close(&p);

	/* an IP address is checked against the certificate's IP SANs */
	pair_open(&p, srv, cli, "127.0.0.1");
	pump(&p);
	assert_true(cm_tls_conn_established(p.cli));
	pair_close(&p);

	assert_int_equal(cm_tls_not_after(srv), SERVER_NOT_AFTER);
	assert_int_equal(cm_tls_not_after(cli), 0);
	cm_tls_free(srv);
	cm_tls_free(cli);
	cm_tls_free(NULL);
	cm_tls_conn_free(NULL);
}

/* ALPN negotiated with the given client list; returns the client's view, checks both agree. */
/* Output taken whole, without a copy; input fed while earlier input is still half read, and a
 * record fed a byte at a time. */
static void test_take_all_and_partial_input(void **state)
{
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	struct pair p;
	struct cm_buf big, got;
	char buf[1000], *out;
	size_t n, half;
	ssize_t r;

	(void)state;
	pair_open(&p, srv, cli, "localhost");
	pump(&p);
	assert_true(cm_tls_conn_established(p.cli));
	cm_buf_init(&big, 0);
	cm_buf_init(&got, 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(cm_buf_append(&big, &"abcdefghijklmnopq"[i % 17], 1), 0);
	assert_int_equal(cm_tls_conn_write(p.srv, big.data, big.len), 0);
	n = cm_tls_conn_pending(p.srv);
	assert_true(n > big.len); /* several records, each with its header and tag */
	out = cm_tls_conn_take_all(p.srv, &half);
	assert_non_null(out);
	assert_int_equal(half, n);
	/* without the room the buffer's doubling left over */
	assert_true(malloc_usable_size(out) < n + 4096);
	assert_int_equal(cm_tls_conn_pending(p.srv), 0);
	assert_null(cm_tls_conn_take_all(p.srv, &n));
	assert_int_equal(n, 0);

	/* half of it, one read (OpenSSL takes part of what waits), then the rest */
	n = half;
	half = n / 2;
	assert_int_equal(cm_tls_conn_feed(p.cli, out, half), 0);
	r = cm_tls_conn_read(p.cli, buf, sizeof(buf));
	assert_true(r > 0);
	assert_int_equal(cm_buf_append(&got, buf, (size_t)r), 0);
	assert_int_equal(cm_tls_conn_feed(p.cli, out + half, n - half), 0);
	assert_int_equal(drain(p.cli, &got), 0);
	assert_int_equal(got.len, big.len);
	assert_memory_equal(got.data, big.data, big.len);
	free(out);

	/* a record a byte at a time: nothing to read until its last byte */
	assert_int_equal(cm_tls_conn_write(p.srv, "tiny", 4), 0);
	out = cm_tls_conn_take_all(p.srv, &n);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cm_tls_conn_feed(p.cli, out + i, 1), 0);
		r = cm_tls_conn_read(p.cli, buf, sizeof(buf));
		assert_int_equal(r, i + 1 < n ? 0 : 4);
	}
	assert_memory_equal(buf, "tiny", 4);
	free(out);
	cm_buf_free(&big);
	cm_buf_free(&got);
	pair_close(&p);
	cm_tls_free(srv);
	cm_tls_free(cli);
}

static void alpn_case(struct cm_tls *srv, const char *client_alpn, const char *want)
{
	struct cm_tls_config cc = cli_cfg;
	struct cm_tls *cli;
	struct pair p;

	cc.alpn = client_alpn;
	cli = client_ctx(&cc);
	pair_open(&p, srv, cli, "localhost");
	pump(&p);
	if (!cm_tls_conn_established(p.cli))
		fail_msg("client alpn %s: %s / %s", client_alpn ? client_alpn : "(none)",
		         cm_tls_conn_error(p.cli), cm_tls_conn_error(p.srv));
	assert_string_equal(cm_tls_conn_alpn(p.cli), want);
	assert_string_equal(cm_tls_conn_alpn(p.srv), want);
	pair_close(&p);
	cm_tls_free(cli);
}

static void test_alpn(void **state)
{
	struct cm_tls_config sc = srv_cfg;
	struct cm_tls *srv;

	(void)state;
	sc.alpn = "h2,http/1.1";
	srv = server_ctx(&sc);
	alpn_case(srv, "h2", "h2");
	alpn_case(srv, "http/1.1", "http/1.1");
	/* the server's preference wins over the client's order */
	alpn_case(srv, "http/1.1,h2", "h2");
	/* no overlap is not fatal: no protocol, the application decides (see tls_ctx.c) */
	alpn_case(srv, "xmpp-client", "");
	alpn_case(srv, NULL, "");
	cm_tls_free(srv);

	/* names are trimmed; a server without ALPN ignores the client's offer */
	sc.alpn = " xmpp-client , h2 ";
	srv = server_ctx(&sc);
	alpn_case(srv, "h2, xmpp-client", "xmpp-client");
	cm_tls_free(srv);
	srv = server_ctx(&srv_cfg);
	alpn_case(srv, "h2", "");
	cm_tls_free(srv);
}

static void test_alpn_bad_config(void **state)
{
	static const char *const bad[] = {"", "h2,,http/1.1", "h2,", ",h2", " , "};
	char long_name[300];
	struct cm_tls_config sc = srv_cfg;
	struct cm_tls *t = NULL;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sc.alpn = bad[i];
		assert_int_equal(cm_tls_server_alloc(&t, &sc, err, sizeof(err)), -EINVAL);
		assert_null(t);
		assert_contains(err, "alpn");
	}
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	sc.alpn = long_name;
	assert_int_equal(cm_tls_client_alloc(&t, &sc, err, sizeof(err)), -EINVAL);
	long_name[CM_TLS_ALPN_MAX + 1] = '\0';
	assert_int_equal(cm_tls_client_alloc(&t, &sc, err, sizeof(err)), -EINVAL);
	assert_contains(err, "1 to 31 bytes");
	long_name[CM_TLS_ALPN_MAX] = '\0';
	assert_int_equal(cm_tls_client_alloc(&t, &sc, err, sizeof(err)), 0);
	cm_tls_free(t);
}

/* A session the client must refuse: both sides fail with a reason. */
static void refused(struct cm_tls *srv, struct cm_tls *cli, const char *name, const char *why)
{
	struct pair p;

	pair_open(&p, srv, cli, name);
	pump(&p);
	assert_int_equal(p.cli_rc, -EPROTO);
	assert_false(cm_tls_conn_established(p.cli));
	assert_contains(cm_tls_conn_error(p.cli), why);
	assert_null(strchr(cm_tls_conn_error(p.cli), '\n'));
	/* the client's alert reached the server, which fails too */
	assert_int_equal(p.srv_rc, -EPROTO);
	assert_true(cm_tls_conn_error(p.srv)[0] != '\0');
	/* failure is sticky, and leaves nothing on OpenSSL's error queue */
	assert_int_equal(cm_tls_conn_read(p.cli, NULL, 0), -EPROTO);
	assert_int_equal(cm_tls_conn_write(p.cli, "x", 1), -EPROTO);
	assert_int_equal(ERR_peek_error(), 0);
	pair_close(&p);
}

static void test_verify_failures(void **state)
{
	struct cm_tls_config other = cli_cfg;
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg), *cli_other;
	struct cm_tls_conn *c = NULL;

	(void)state;
	other.ca_file = DIR "other-ca.pem";
	cli_other = client_ctx(&other);
	refused(srv, cli_other, "localhost",
	        "certificate verify failed: unable to get local issuer");
	refused(srv, cli, "example.com", "certificate verify failed: hostname mismatch");
	refused(srv, cli, "example.com", "expected example.com");
	refused(srv, cli, "127.0.0.2", "certificate verify failed: IP address mismatch");
	/* verification on without a name to check is refused up front */
	assert_int_equal(cm_tls_conn_alloc(&c, cli, NULL), -EINVAL);
	assert_int_equal(cm_tls_conn_alloc(&c, cli, ""), -EINVAL);
	assert_null(c);
	cm_tls_free(cli_other);

	/* with verification off, the same sessions go through */
	other.insecure_no_verify = 1;
	cli_other = client_ctx(&other);
	{
		struct pair p;

		pair_open(&p, srv, cli_other, NULL);
		pump(&p);
		assert_true(cm_tls_conn_established(p.cli));
		pair_close(&p);
		pair_open(&p, srv, cli_other, "example.com");
		pump(&p);
		assert_true(cm_tls_conn_established(p.cli));
		pair_close(&p);
	}
	cm_tls_free(cli_other);
	cm_tls_free(cli);
	cm_tls_free(srv);
}

static void test_expired_certificate(void **state)
{
	struct cm_tls_config sc = srv_cfg;
	struct cm_tls *srv, *cli = client_ctx(&cli_cfg);

	(void)state;
	sc.cert_file = DIR "expired.pem";
	sc.key_file = DIR "expired.key";
	/* a server may start with an expired certificate (notAfter tells the operator) */
	srv = server_ctx(&sc);
	assert_int_equal(cm_tls_not_after(srv), EXPIRED_NOT_AFTER);
	refused(srv, cli, "localhost", "certificate verify failed: certificate has expired");
	cm_tls_free(srv);
	cm_tls_free(cli);
}

static void alloc_fails(int server, const struct cm_tls_config *cfg, const char *why)
{
	struct cm_tls *t = (struct cm_tls *)&t;
	char err[512] = "";
	int rc = server ? cm_tls_server_alloc(&t, cfg, err, sizeof(err))
	                : cm_tls_client_alloc(&t, cfg, err, sizeof(err));

	assert_int_equal(rc, -EINVAL);
	assert_null(t);
	assert_contains(err, why);
	assert_null(strchr(err, '\n'));
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_bad_files(void **state)
{
	struct cm_tls_config c = srv_cfg;
	char err[8];
	struct cm_tls *t = NULL;

	(void)state;
	c.key_file = DIR "mismatch.key";
	alloc_fails(1, &c, DIR "mismatch.key: key does not match certificate " DIR "server.pem");
	c.key_file = DIR "missing.key";
	alloc_fails(1, &c, DIR "missing.key: cannot open private key");
	alloc_fails(1, &c, "No such file or directory");
	c.key_file = DIR "server.pem"; /* a certificate where the key belongs */
	alloc_fails(1, &c, DIR "server.pem: no unencrypted PEM private key");
	/* an encrypted key fails without prompting for a passphrase on the terminal */
	c.key_file = "tests/common/jwt/ec256.enc.pem";
	alloc_fails(1, &c, "ec256.enc.pem: no unencrypted PEM private key");
	c = srv_cfg;
	c.cert_file = DIR "missing.pem";
	alloc_fails(1, &c, DIR "missing.pem: cannot load certificate");
	c.cert_file = DIR "server.key"; /* a key where the certificate belongs */
	alloc_fails(1, &c, DIR "server.key: cannot load certificate");
	c = srv_cfg;
	c.chain_file = DIR "missing-chain.pem";
	alloc_fails(1, &c, DIR "missing-chain.pem: cannot open chain file");
	c.chain_file = DIR "server.key";
	alloc_fails(1, &c, DIR "server.key: no certificate in chain file");
	c = srv_cfg;
	c.cert_file = NULL;
	alloc_fails(1, &c, "needs a certificate");
	c = cli_cfg;
	c.ca_file = DIR "missing-ca.pem";
	alloc_fails(0, &c, DIR "missing-ca.pem: cannot load CA certificates");
	c = cli_cfg;
	c.key_file = DIR "server.key";
	alloc_fails(0, &c, "private key given without a certificate");

	/* a short err buffer is still terminated */
	c = srv_cfg;
	c.key_file = DIR "mismatch.key";
	assert_int_equal(cm_tls_server_alloc(&t, &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(cm_tls_server_alloc(&t, &c, NULL, 0), -EINVAL);
	assert_int_equal(cm_tls_server_alloc(&t, NULL, NULL, 0), -EINVAL);

	/* the certificate file may hold the key too, when key_file is left out */
	c = srv_cfg;
	c.key_file = NULL;
	alloc_fails(1, &c, DIR "server.pem: no unencrypted PEM private key");
	/* a chain file of real certificates loads */
	c = srv_cfg;
	c.chain_file = DIR "ca.pem";
	t = server_ctx(&c);
	cm_tls_free(t);
}

/* Client certificates: a server with require_client_cert asks for one and checks it. */
static void test_client_certificate(void **state)
{
	struct cm_tls_config sc = srv_cfg, cc = cli_cfg;
	struct cm_tls *srv, *cli, *anon = client_ctx(&cli_cfg);
	struct pair p;

	(void)state;
	sc.require_client_cert = 1;
	sc.ca_file = DIR "ca.pem";
	srv = server_ctx(&sc);
	cc.cert_file = DIR "server2.pem"; /* has clientAuth in its extended key usage */
	cc.key_file = DIR "server2.key";
	cli = client_ctx(&cc);
	pair_open(&p, srv, cli, "localhost");
	pump(&p);
	assert_true(cm_tls_conn_established(p.srv));
	assert_int_equal(peer_serial(p.srv), 0x1002);
	pair_close(&p);

	pair_open(&p, srv, anon, "localhost");
	pump(&p);
	assert_int_equal(p.srv_rc, -EPROTO);
	assert_contains(cm_tls_conn_error(p.srv), "peer did not return a certificate");
	pair_close(&p);
	cm_tls_free(srv);
	cm_tls_free(cli);
	cm_tls_free(anon);
}

/* --- reload ----------------------------------------------------------------------------- */

struct tmpdir {
	char path[64];
	char cert[96];
	char key[96];
};

static void copy_file(const char *from, const char *to)
{
	char buf[4096];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	assert_non_null(in);
	/* write to a new file and rename: a reload racing the copy sees old or new, not half */
	{
		char tmp[128];

		snprintf(tmp, sizeof(tmp), "%s.tmp", to);
		out = fopen(tmp, "wb");
		assert_non_null(out);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
		assert_int_equal(fclose(out), 0);
		assert_int_equal(rename(tmp, to), 0);
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void tmpdir_make(struct tmpdir *d, const char *cert, const char *key)
{
	snprintf(d->path, sizeof(d->path), "/tmp/cm-test-tls-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->cert, sizeof(d->cert), "%s/cert.pem", d->path);
	snprintf(d->key, sizeof(d->key), "%s/key.pem", d->path);
	copy_file(cert, d->cert);
	copy_file(key, d->key);
}

static void tmpdir_remove(struct tmpdir *d)
{
	unlink(d->cert);
	unlink(d->key);
	rmdir(d->path);
}

static void test_reload(void **state)
{
	struct cm_tls_config sc = srv_cfg;
	struct cm_tls *srv, *cli = client_ctx(&cli_cfg);
	struct tmpdir d;
	struct pair old, fresh, again;
	SSL_CTX *ctx1, *ctx2, *ctx3;
	char err[512];

	(void)state;
	tmpdir_make(&d, DIR "server.pem", DIR "server.key");
	sc.cert_file = d.cert;
	sc.key_file = d.key;
	srv = server_ctx(&sc);
	pair_open(&old, srv, cli, "localhost");
	pump(&old);
	assert_true(cm_tls_conn_established(old.cli));
	assert_int_equal(peer_serial(old.cli), 0x1001);
	assert_int_equal(cm_tls_not_after(srv), SERVER_NOT_AFTER);
	ctx1 = cm_tls_ctx_get(srv);

	/* new files: new sessions see the new certificate */
	copy_file(DIR "server2.pem", d.cert);
	copy_file(DIR "server2.key", d.key);
	assert_int_equal(cm_tls_reload(srv, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(cm_tls_not_after(srv), SERVER2_NOT_AFTER);
	ctx2 = cm_tls_ctx_get(srv);
	assert_ptr_not_equal(ctx1, ctx2);
	pair_open(&fresh, srv, cli, "localhost");
	pump(&fresh);
	assert_true(cm_tls_conn_established(fresh.cli));
	assert_int_equal(peer_serial(fresh.cli), 0x1002);

	/* the session made before the reload goes on, both ways */
	assert_int_equal(cm_tls_conn_write(old.cli, "still", 5), 0);
	assert_int_equal(cm_tls_conn_write(old.srv, "here", 4), 0);
	pump(&old);
	assert_string_equal(old.srv_got.data, "still");
	assert_string_equal(old.cli_got.data, "here");

	/* a key that does not fit: the reload fails, says why, and changes nothing */
	copy_file(DIR "mismatch.key", d.key);
	assert_int_equal(cm_tls_reload(srv, err, sizeof(err)), -EINVAL);
	assert_contains(err, d.key);
	assert_contains(err, "key does not match certificate");
	assert_contains(err, d.cert);
	assert_int_equal(ERR_peek_error(), 0);
	ctx3 = cm_tls_ctx_get(srv);
	assert_ptr_equal(ctx3, ctx2);
	SSL_CTX_free(ctx3);
	assert_int_equal(cm_tls_not_after(srv), SERVER2_NOT_AFTER);
	/* a truncated certificate, the same */
	copy_file(DIR "server2.key", d.key);
	write_text(d.cert, "-----BEGIN CERTIFICATE-----\nMIIB\n");
	assert_int_equal(cm_tls_reload(srv, err, sizeof(err)), -EINVAL);
	assert_contains(err, d.cert);
	assert_contains(err, "cannot load certificate");
	pair_open(&again, srv, cli, "localhost");
	pump(&again);
	assert_true(cm_tls_conn_established(again.cli));
	assert_int_equal(peer_serial(again.cli), 0x1002);
	pair_close(&again);

	/* the old context lives on with its last user */
	assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(SSL_CTX_get0_certificate(ctx1))),
	                 0x1001);
	SSL_CTX_free(ctx1);
	SSL_CTX_free(ctx2);
	pair_close(&old);
	pair_close(&fresh);
	cm_tls_free(srv);
	cm_tls_free(cli);
	tmpdir_remove(&d);
}

/* With no key_file, the key is read from the certificate file. */
static void test_combined_pem(void **state)
{
	struct cm_tls_config sc = srv_cfg;
	struct cm_tls *srv, *cli = client_ctx(&cli_cfg);
	struct tmpdir d;
	struct pair p;
	FILE *f;

	(void)state;
	tmpdir_make(&d, DIR "server.pem", DIR "server.key");
	f = fopen(d.cert, "ab");
	assert_non_null(f);
	{
		char buf[4096];
		FILE *k = fopen(DIR "server.key", "rb");
		size_t n;

		assert_non_null(k);
		n = fread(buf, 1, sizeof(buf), k);
		assert_int_equal(fwrite(buf, 1, n, f), n);
		fclose(k);
	}
	assert_int_equal(fclose(f), 0);
	sc.cert_file = d.cert;
	sc.key_file = NULL;
	srv = server_ctx(&sc);
	pair_open(&p, srv, cli, "localhost");
	pump(&p);
	assert_true(cm_tls_conn_established(p.cli));
	pair_close(&p);
	cm_tls_free(srv);
	cm_tls_free(cli);
	tmpdir_remove(&d);
}

static int alloc_scenario(void *arg)
{
	struct cm_tls_config sc = srv_cfg, cc = cli_cfg;
	struct cm_tls *srv = NULL, *cli = NULL;
	struct cm_tls_conn *a = NULL, *b = NULL;
	int rc;

	(void)arg;
	sc.alpn = "h2,http/1.1";
	sc.chain_file = DIR "ca.pem";
	cc.alpn = "h2";
	rc = cm_tls_server_alloc(&srv, &sc, NULL, 0);
	if (!rc)
		rc = cm_tls_client_alloc(&cli, &cc, NULL, 0);
	if (!rc)
		rc = cm_tls_reload(srv, NULL, 0);
	if (!rc)
		rc = cm_tls_conn_alloc(&a, srv, NULL);
	if (!rc)
		rc = cm_tls_conn_alloc(&b, cli, "localhost");
	if (!rc)
		rc = cm_tls_conn_write(b, "queued until the handshake", 26);
	cm_tls_conn_free(a);
	cm_tls_conn_free(b);
	cm_tls_free(srv);
	cm_tls_free(cli);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	assert_true(test_alloc_sweep(alloc_scenario, NULL, 50) > 1);
}

/* A context handed out keeps working after the cm_tls is gone, ALPN callback included (its list
 * lives with the SSL_CTX, not the cm_tls). */
static void test_ctx_get_references(void **state)
{
	struct cm_tls_config sc = srv_cfg, cc = cli_cfg;
	struct cm_tls *srv, *cli;
	struct cm_tls_conn *c;
	SSL_CTX *ctx;
	SSL *s;
	BIO *in, *out;
	unsigned char buf[4096];
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	size_t n;
	int r = 0;

	(void)state;
	sc.alpn = "h2,http/1.1";
	cc.alpn = "http/1.1,h2";
	srv = server_ctx(&sc);
	cli = client_ctx(&cc);
	ctx = cm_tls_ctx_get(srv);
	assert_non_null(ctx);
	assert_int_equal(cm_tls_reload(srv, NULL, 0), 0);
	cm_tls_free(srv);

	s = SSL_new(ctx);
	assert_non_null(s);
	in = BIO_new(BIO_s_mem());
	out = BIO_new(BIO_s_mem());
	SSL_set_bio(s, in, out);
	SSL_set_accept_state(s);
	assert_int_equal(cm_tls_conn_alloc(&c, cli, "localhost"), 0);
	for (int i = 0; i < 20 && !cm_tls_conn_established(c); i++) {
		while ((n = cm_tls_conn_take(c, buf, sizeof(buf))) > 0)
			assert_int_equal(BIO_write(in, buf, (int)n), (int)n);
		r = SSL_do_handshake(s);
		while ((r = BIO_read(out, buf, sizeof(buf))) > 0)
			assert_int_equal(cm_tls_conn_feed(c, buf, (size_t)r), 0);
		assert_true(cm_tls_conn_read(c, buf, sizeof(buf)) >= 0);
	}
	assert_true(cm_tls_conn_established(c));
	SSL_get0_alpn_selected(s, &proto, &plen);
	assert_int_equal(plen, 2);
	assert_memory_equal(proto, "h2", 2);
	assert_string_equal(cm_tls_conn_alpn(c), "h2");
	SSL_free(s);
	SSL_CTX_free(ctx);
	cm_tls_conn_free(c);
	cm_tls_free(cli);
}

static void test_close_notify(void **state)
{
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p, srv, cli, "localhost");
	pump(&p);
	assert_true(cm_tls_conn_established(p.srv));
	assert_int_equal(cm_tls_conn_write(p.cli, "bye", 3), 0);
	cm_tls_conn_shutdown(p.cli);
	assert_true(cm_tls_conn_pending(p.cli) > 0);
	pump(&p);
	/* data sent before the alert arrives first, then the clean close */
	assert_string_equal(p.srv_got.data, "bye");
	assert_int_equal(p.srv_rc, -ECONNRESET);
	assert_int_equal(cm_tls_conn_read(p.srv, buf, sizeof(buf)), -ECONNRESET);
	assert_string_equal(cm_tls_conn_error(p.srv), "");
	/* the server answers with its own close_notify */
	cm_tls_conn_shutdown(p.srv);
	pump(&p);
	assert_int_equal(p.cli_rc, -ECONNRESET);
	assert_int_equal(ERR_peek_error(), 0);
	pair_close(&p);

	/* shutting down before the handshake sends nothing and is harmless */
	pair_open(&p, srv, cli, "localhost");
	cm_tls_conn_shutdown(p.srv);
	assert_int_equal(cm_tls_conn_pending(p.srv), 0);
	pair_close(&p);
	cm_tls_free(srv);
	cm_tls_free(cli);
}

static void test_garbage(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	struct cm_tls_conn *c;
	char buf[64];
	unsigned char noise[512];

	(void)state;
	assert_int_equal(cm_tls_conn_alloc(&c, srv, NULL), 0);
	assert_int_equal(cm_tls_conn_feed(c, http, strlen(http)), 0);
	assert_int_equal(cm_tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
	assert_contains(cm_tls_conn_error(c), "TLS handshake failed");
	assert_contains(cm_tls_conn_error(c), "http request");
	assert_null(strchr(cm_tls_conn_error(c), '\n'));
	assert_int_equal(cm_tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
	assert_int_equal(cm_tls_conn_write(c, "x", 1), -EPROTO);
	assert_int_equal(ERR_peek_error(), 0);
	cm_tls_conn_free(c);

	/* noise after a valid ClientHello, at the client */
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (unsigned char)(i * 131 + 7);
	assert_int_equal(cm_tls_conn_alloc(&c, cli, "localhost"), 0);
	assert_int_equal(cm_tls_conn_feed(c, noise, sizeof(noise)), 0);
	assert_int_equal(cm_tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
	assert_true(cm_tls_conn_error(c)[0] != '\0');
	cm_tls_conn_free(c);

	/* nothing fed: nothing happens yet */
	assert_int_equal(cm_tls_conn_alloc(&c, srv, NULL), 0);
	assert_int_equal(cm_tls_conn_read(c, buf, sizeof(buf)), 0);
	assert_int_equal(cm_tls_conn_pending(c), 0);
	assert_int_equal(cm_tls_conn_take(c, buf, sizeof(buf)), 0);
	cm_tls_conn_free(c);
	cm_tls_free(srv);
	cm_tls_free(cli);
}

/* Drive a raw OpenSSL client limited to [min, max] against a cm_tls server session. */
static int raw_client(struct cm_tls *srv, int min, int max, struct cm_tls_conn **srv_out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct cm_tls_conn *c;
	unsigned char buf[4096];
	BIO *in, *out;
	SSL *s;
	int r = 0, sent = 0;

	assert_non_null(ctx);
	/* OpenSSL 3 refuses TLS < 1.2 at security level >= 1: lower it for the test only */
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, min), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max), 1);
	s = SSL_new(ctx);
	in = BIO_new(BIO_s_mem());
	out = BIO_new(BIO_s_mem());
	SSL_set_bio(s, in, out);
	SSL_set_connect_state(s);
	assert_int_equal(cm_tls_conn_alloc(&c, srv, NULL), 0);
	for (int i = 0; i < 20; i++) {
		ssize_t rc;
		size_t n;

		r = SSL_do_handshake(s);
		while ((rc = BIO_read(out, buf, sizeof(buf))) > 0) {
			sent += (int)rc;
			assert_int_equal(cm_tls_conn_feed(c, buf, (size_t)rc), 0);
		}
		rc = cm_tls_conn_read(c, buf, sizeof(buf));
		while ((n = cm_tls_conn_take(c, buf, sizeof(buf))) > 0)
			assert_int_equal(BIO_write(in, buf, (int)n), (int)n);
		if (rc < 0 || r == 1)
			break;
	}
	/* the client did offer a handshake: a refusal is the server's doing */
	assert_true(sent > 0);
	if (r == 1)
		r = SSL_version(s);
	else
		r = -1;
	ERR_clear_error();
	SSL_free(s);
	SSL_CTX_free(ctx);
	*srv_out = c;
	return r;
}

static void test_old_protocols_refused(void **state)
{
	struct cm_tls *srv = server_ctx(&srv_cfg);
	struct cm_tls_conn *c;

	(void)state;
	assert_int_equal(raw_client(srv, TLS1_VERSION, TLS1_1_VERSION, &c), -1);
	assert_false(cm_tls_conn_established(c));
	assert_contains(cm_tls_conn_error(c), "unsupported protocol");
	cm_tls_conn_free(c);
	/* TLS 1.2 remains welcome */
	assert_int_equal(raw_client(srv, TLS1_2_VERSION, TLS1_2_VERSION, &c), TLS1_2_VERSION);
	assert_true(cm_tls_conn_established(c));
	cm_tls_conn_free(c);
	cm_tls_free(srv);
}

/* --- threads ---------------------------------------------------------------------------- */

struct reloader {
	struct cm_tls *t;
	int rounds;
	int failures;
};

static void *reload_loop(void *arg)
{
	struct reloader *r = arg;

	for (int i = 0; i < r->rounds; i++) {
		if (cm_tls_reload(r->t, NULL, 0) != 0)
			r->failures++;
		(void)cm_tls_not_after(r->t);
	}
	return NULL;
}

/* One thread reloads while this one makes sessions and completes handshakes. Run under ASan,
 * this catches a context freed while a session is being made on it. */
static void test_reload_while_connecting(void **state)
{
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	struct reloader r = {srv, 150, 0};
	pthread_t th;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, reload_loop, &r), 0);
	for (int i = 0; i < 300; i++) {
		struct pair p;

		pair_open(&p, srv, cli, "localhost");
		if (i % 5 == 0) {
			pump(&p);
			assert_true(cm_tls_conn_established(p.cli));
		}
		SSL_CTX_free(cm_tls_ctx_get(srv));
		pair_close(&p);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.failures, 0);
	cm_tls_free(srv);
	cm_tls_free(cli);
}

/* Channel binding: both ends compute the same data. tls-exporter exists on TLS 1.3 only;
 * tls-server-end-point on both, the SHA-256 of the server's certificate (signed with
 * ECDSA-SHA256). */
static void cb_case(int max_version)
{
	static const char *const types[] = {"tls-exporter", "tls-server-end-point"};
	struct cm_tls *srv = server_ctx(&srv_cfg), *cli = client_ctx(&cli_cfg);
	unsigned char a[64], b[64], digest[32];
	size_t la = 0, lb = 0;
	unsigned int dl = 0;
	struct pair p;

	pair_open(&p, srv, cli, "localhost");
	assert_int_equal(cm_tls_conn_channel_binding(p.srv, "tls-exporter", a, &la), -EAGAIN);
	SSL_set_max_proto_version(cm_tls_conn_ssl(p.srv), max_version); /* before it reads */
	pump(&p);
	assert_true(cm_tls_conn_established(p.srv));
	for (size_t i = 0; i < 2; i++) {
		int want = i == 0 && max_version < TLS1_3_VERSION ? -ENOTSUP : 0;

		assert_int_equal(cm_tls_conn_channel_binding(p.srv, types[i], a, &la), want);
		assert_int_equal(cm_tls_conn_channel_binding(p.cli, types[i], b, &lb), want);
		if (want)
			continue;
		assert_int_equal(la, 32);
		assert_int_equal(lb, la);
		assert_memory_equal(a, b, la);
		if (i == 1) {
			assert_int_equal(X509_digest(SSL_get_certificate(cm_tls_conn_ssl(p.srv)),
			                             EVP_sha256(), digest, &dl),
			                 1);
			assert_memory_equal(a, digest, 32);
		}
	}
	assert_int_equal(cm_tls_conn_channel_binding(p.srv, "tls-unique", a, &la), -ENOTSUP);
	pair_close(&p);
	cm_tls_free(srv);
	cm_tls_free(cli);
}

static void test_channel_binding(void **state)
{
	(void)state;
	cb_case(TLS1_3_VERSION);
	cb_case(TLS1_2_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_and_data),
	    cmocka_unit_test(test_take_all_and_partial_input),
	    cmocka_unit_test(test_alpn),
	    cmocka_unit_test(test_alpn_bad_config),
	    cmocka_unit_test(test_verify_failures),
	    cmocka_unit_test(test_expired_certificate),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_client_certificate),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_combined_pem),
	    cmocka_unit_test(test_ctx_get_references),
	    cmocka_unit_test(test_alloc_failures),
	    cmocka_unit_test(test_close_notify),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_old_protocols_refused),
	    cmocka_unit_test(test_reload_while_connecting),
	    cmocka_unit_test(test_channel_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
