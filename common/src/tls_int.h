/* tls_int.h - what tls_ctx.c shares with tls_conn.c; not part of the API (see cm/tls.h). */
#ifndef CM_TLS_INT_H
#define CM_TLS_INT_H

#include "ossl_int.h"
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <openssl/ssl.h>

#include "cm/tls.h"

struct cm_tls {
	pthread_mutex_t lock; /* guards ctx and not_after: reload may run on another thread */
	SSL_CTX *ctx;         /* owned reference to the current context */
	time_t not_after;     /* of ctx's certificate, 0 when it has none */

	/* Read-only after alloc, so reload and conn_alloc read them without the lock. */
	int server;
	int verify_peer;
	char *cert_file; /* owned copies of the config; NULL when not given */
	char *key_file;
	char *chain_file;
	char *ca_file;
	unsigned char *alpn; /* owned; ALPN wire format (length-prefixed names), NULL when none */
	size_t alpn_len;
};

#endif
