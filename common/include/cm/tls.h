/* cm/tls.h - OpenSSL contexts that can be reloaded, and a transport-neutral TLS engine.
 *
 * struct cm_tls holds an SSL_CTX built from certificate/key/chain/CA files. cm_tls_reload()
 * builds a fresh SSL_CTX from the same files and swaps it in only if it is complete; live
 * connections keep the context they were made with (OpenSSL reference counts it), so a reload
 * never drops a connection. Creating a connection and reloading may happen on different
 * threads.
 *
 * struct cm_tls_conn drives one TLS session over buffers it keeps: the caller feeds bytes read
 * from the network, reads plaintext, writes plaintext, and sends what cm_tls_conn_take() or
 * cm_tls_conn_take_all() returns. It knows nothing of sockets or event loops, so the same code
 * serves libuv streams, STARTTLS upgrades and tests.
 *
 * Defaults: TLS 1.2 minimum, no compression, no renegotiation, server cipher preference.
 */
#ifndef CM_TLS_H
#define CM_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <openssl/ssl.h>

struct cm_tls;
struct cm_tls_conn;

#define CM_TLS_ALPN_MAX 31 /* bytes of one ALPN protocol name */

struct cm_tls_config {
	/* PEM, leaf first, intermediates may follow. Server: required; client: optional (a client
	 * certificate). */
	const char *cert_file;
	/* PEM private key for cert_file, unencrypted (a daemon cannot prompt); NULL: read it from
	 * cert_file. */
	const char *key_file;
	const char *chain_file; /* optional PEM intermediates */
	const char *ca_file; /* optional PEM CAs to verify the peer; client default: system store */
	/* Optional, comma-separated protocols in preference order ("h2,http/1.1"), each at most
	 * CM_TLS_ALPN_MAX bytes (the registered names are all far shorter). Server: picks
	 * the first of its own list that the client offers; when there is none the session goes on
	 * without ALPN (cm_tls_conn_alpn() says "") and the application decides. Client: offers
	 * the list. */
	const char *alpn;
	/* Client only: 1 turns verification of the server's chain and name OFF (tests, never
	 * production). The zero value verifies against ca_file, else the system store. */
	int insecure_no_verify;
	/* Server only: require a client certificate that verifies against ca_file (else the system
	 * store), as APNs-style certificate authentication does. */
	int require_client_cert;
};

/* Build a context. err (errlen bytes; may be NULL) receives a one-line reason naming the file on
 * failure, with OpenSSL's first queued error in parentheses, e.g.
 * "/etc/x/key.pem: key does not match certificate /etc/x/cert.pem (error:...:key values mismatch)".
 * The config's strings are copied. 0, -EINVAL (bad files/mismatch/ALPN list), -ENOMEM. */
int cm_tls_server_alloc(struct cm_tls **out, const struct cm_tls_config *cfg, char *err,
                        size_t errlen);
int cm_tls_client_alloc(struct cm_tls **out, const struct cm_tls_config *cfg, char *err,
                        size_t errlen);

/* Re-read the files. On failure the current context stays in use and err says why. Safe to call
 * while other threads create connections. 0, -EINVAL, -ENOMEM. */
int cm_tls_reload(struct cm_tls *t, char *err, size_t errlen);

/* notAfter of the certificate in use (0 when there is none). */
time_t cm_tls_not_after(struct cm_tls *t);

/* The current SSL_CTX with a reference taken for the caller (SSL_CTX_free() it). It stays valid,
 * ALPN selection included, after a reload or cm_tls_free(). */
SSL_CTX *cm_tls_ctx_get(struct cm_tls *t);

void cm_tls_free(struct cm_tls *t); /* accepts NULL; live connections are not affected */

/* Start a session on the current context. server_name: SNI and the name verified in the
 * server's certificate (client side; may be NULL only with insecure_no_verify;
 * an IP address literal is checked against IP SANs and not sent as SNI). Ignored on servers.
 * A client's ClientHello is pending (cm_tls_conn_take()) as soon as this returns.
 * 0, -EINVAL (no server_name while verifying, bad name), -ENOMEM, -EPROTO. */
int cm_tls_conn_alloc(struct cm_tls_conn **out, struct cm_tls *t, const char *server_name);
void cm_tls_conn_free(struct cm_tls_conn *c); /* accepts NULL */

/* Hand over bytes received from the peer. 0, -ENOMEM. The input is buffered without limit: the
 * caller bounds it (stop reading the socket while plaintext is not being consumed). */
int cm_tls_conn_feed(struct cm_tls_conn *c, const void *data, size_t len);

/* Progress the handshake / read plaintext into buf. Returns bytes read (> 0), 0 when more
 * input is needed, -ECONNRESET when the peer closed the session cleanly, -EPROTO on a TLS failure
 * (cm_tls_conn_error() says why). Call cm_tls_conn_take() afterwards: a read may produce output
 * (handshake messages, alerts; after -EPROTO, send the alert before closing). Call it until it
 * returns <= 0: one call returns at most one record's plaintext. Both errors are sticky. */
ssize_t cm_tls_conn_read(struct cm_tls_conn *c, void *buf, size_t len);

/* Encrypt plaintext (queued until the handshake completes). 0, -EPROTO (the session failed or
 * was shut down), -ENOMEM. Writing after the peer's close_notify is allowed (half close). */
int cm_tls_conn_write(struct cm_tls_conn *c, const void *data, size_t len);

/* Bytes waiting to be sent to the peer. */
size_t cm_tls_conn_pending(struct cm_tls_conn *c);

/* Move up to len pending bytes into buf; returns how many. */
size_t cm_tls_conn_take(struct cm_tls_conn *c, void *buf, size_t len);

/* All pending bytes at once, without a copy: the buffer they are in, which the caller now owns
 * (free() it), and their count in *len; NULL with *len 0 when nothing is pending. */
char *cm_tls_conn_take_all(struct cm_tls_conn *c, size_t *len);

/* Give back the memory of buffers kept for reuse while nothing waits in either direction (an
 * idle connection): the BIO and both buffers go, with the capacity of their largest burst, and
 * come back when the next byte moves (feed, write, shutdown). OpenSSL's own record buffers are
 * released by SSL_MODE_RELEASE_BUFFERS. 0 (also when trimmed already), -EBUSY (bytes waiting,
 * or the handshake not done: nothing changed). */
int cm_tls_conn_trim(struct cm_tls_conn *c);

/* Queue a close_notify alert; a no-op before the handshake completes or after a failure. */
void cm_tls_conn_shutdown(struct cm_tls_conn *c);

int cm_tls_conn_established(const struct cm_tls_conn *c);
/* Negotiated ALPN protocol ("" when none), borrowed until the connection is freed. */
const char *cm_tls_conn_alpn(struct cm_tls_conn *c);
/* Last error text, "" when none. */
const char *cm_tls_conn_error(const struct cm_tls_conn *c);

/* Channel binding data of type for SCRAM-*-PLUS, once the handshake is done: "tls-exporter"
 * (RFC 9266: 32 bytes exported under the label EXPORTER-Channel-Binding; TLS 1.3 only) or
 * "tls-server-end-point" (RFC 5929: the hash of the server's certificate, SHA-256 when its
 * signature used MD5 or SHA-1). out gets *len bytes (at most 64). 0, -EAGAIN (no handshake
 * yet), -ENOTSUP (a type this connection cannot give: tls-exporter before TLS 1.3, no
 * certificate or hash to bind to, an unknown type), -EIO. */
int cm_tls_conn_channel_binding(struct cm_tls_conn *c, const char *type, unsigned char *out,
                                size_t *len);
/* The underlying SSL object (borrowed) for what this API does not cover. */
SSL *cm_tls_conn_ssl(struct cm_tls_conn *c);

#endif
