/* stream_connect.c - outgoing streams: resolve a name, try its addresses in turn (each with its
 * share of the time left), then run TLS when asked. */
#include "stream_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/tls.h"

#define DEF_CONNECT_MS 10000

static void connect_addr(struct cm_stream *s);

static const char *mod(const struct cm_stream *s)
{
	return s->o.log_mod ? s->o.log_mod : "stream";
}

void cm_stream__connect_free(struct cm_stream *s)
{
	if (!s->conn)
		return;
	if (s->conn->addrs)
		uv_freeaddrinfo(s->conn->addrs);
	free(s->conn);
	s->conn = NULL;
}

/* TCP is up (and TLS too, when asked for): the stream is the protocol's. */
void cm_stream__connected(struct cm_stream *s)
{
	if (s->o.tls && !s->secured)
		return; /* the handshake runs; secured() comes back here */
	cm_stream__sys_timer(s, 0);
	s->started = true;
	if (s->ev->connected)
		s->ev->connected(s);
}

static void on_switch_closed(uv_handle_t *h);

static void on_connect(uv_connect_t *req, int status)
{
	struct cm_stream *s = req->data;
	struct stream_connect *k = s->conn;
	uint64_t now, left;
	int r;

	if (status == UV_ECANCELED || s->st == STREAM_CLOSING)
		return;
	if (status < 0) {
		CM_LOGD(mod(s), "%s: connect to %s: %s", k->host, s->peer_name,
		        uv_strerror(status));
		if (k->addr->ai_next) {
			k->addr = k->addr->ai_next;
			k->switching = true;
			uv_close((uv_handle_t *)&s->tcp, on_switch_closed);
			return;
		}
		CM_LOGW(mod(s), "%s: cannot connect: %s", k->host, uv_strerror(status));
		cm_stream__fail(s, status);
		return;
	}
	s->st = STREAM_OPEN;
	now = uv_now(s->l->uv);
	left = k->deadline > now ? k->deadline - now : 1;
	cm_stream__connect_free(s); /* the other addresses are not needed any more */
	if (s->o.nodelay)
		(void)uv_tcp_nodelay(&s->tcp, 1);
	cm_stream__read_start(s);
	if (s->st != STREAM_OPEN)
		return;
	if (s->o.tls) {
		r = cm_tls_conn_alloc(&s->tls, s->o.tls, s->server_name);
		if (r) {
			cm_stream__fail(s, r);
			return;
		}
		s->handshaking = true;
		/* the connect deadline goes on covering the handshake */
		cm_stream__sys_timer(s, left);
		cm_stream_flush(s); /* the ClientHello */
		return;
	}
	cm_stream__connected(s);
}

/* Start connecting to k->addr with its share of the time left. */
static void connect_addr(struct cm_stream *s)
{
	struct stream_connect *k = s->conn;
	uint64_t now = uv_now(s->l->uv), left = k->deadline > now ? k->deadline - now : 0;
	unsigned n = 0;
	int r;

	for (const struct addrinfo *a = k->addr; a; a = a->ai_next)
		n++;
	memcpy(&s->peer, k->addr->ai_addr, k->addr->ai_addrlen);
	s->peerlen = (socklen_t)k->addr->ai_addrlen;
	cm_stream_addr_format(k->addr->ai_addr, s->peer_name, sizeof(s->peer_name));
	k->addr_deadline = now + left / (n ? n : 1);
	cm_stream__sys_timer(s, k->addr_deadline > now ? k->addr_deadline - now : 1);
	s->st = STREAM_CONNECTING;
	k->req.data = s;
	r = uv_tcp_connect(&k->req, &s->tcp, k->addr->ai_addr, on_connect);
	if (r) {
		if (k->addr->ai_next) {
			k->addr = k->addr->ai_next;
			k->switching = true;
			uv_close((uv_handle_t *)&s->tcp, on_switch_closed);
			return;
		}
		cm_stream__fail(s, r);
	}
}

/* The handle of an address that failed is closed: a fresh one tries the next address (a socket
 * that failed to connect cannot be reused, nor change its address family). */
static void on_switch_closed(uv_handle_t *h)
{
	struct cm_stream *s = h->data;
	int r;

	s->conn->switching = false;
	if (s->st == STREAM_CLOSING) {
		cm_stream__unref(s); /* failed meanwhile: this was the handle's reference */
		return;
	}
	r = uv_tcp_init(s->l->uv, &s->tcp);
	if (r) {
		/* no handle any more: end here, as finish() and the close callback would */
		s->err = s->err ? s->err : r;
		s->st = STREAM_CLOSING;
		cm_loop_timer_stop(s->l, &s->t_proto);
		cm_loop_timer_stop(s->l, &s->t_sys);
		cm_list_remove(&s->flush_link);
		cm_stream__unref(s);
		return;
	}
	connect_addr(s);
}

void cm_stream__connect_timeout(struct cm_stream *s)
{
	struct stream_connect *k = s->conn;
	uint64_t now = uv_now(s->l->uv);

	if (!k || now >= k->deadline) {
		CM_LOGW(mod(s), "%s: not connected after %llu ms", k ? k->host : s->peer_name,
		        (unsigned long long)s->o.connect_ms);
		cm_stream__fail(s, -ETIMEDOUT);
		return;
	}
	if (s->st == STREAM_CONNECTING && k->addr && k->addr->ai_next && !k->switching) {
		CM_LOGD(mod(s), "%s: %s does not answer; trying the next address", k->host,
		        s->peer_name);
		k->addr = k->addr->ai_next;
		k->switching = true;
		uv_close((uv_handle_t *)&s->tcp, on_switch_closed);
		return;
	}
	cm_stream__sys_timer(s, k->deadline - now);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct cm_stream *s = req->data;
	struct stream_connect *k = s->conn;

	if (s->st == STREAM_CLOSING) {
		if (res)
			uv_freeaddrinfo(res);
		cm_stream__unref(s); /* the resolution's reference */
		return;
	}
	if (status < 0 || !res) {
		CM_LOGW(mod(s), "%s: cannot resolve: %s", k->host, uv_strerror(status));
		if (res)
			uv_freeaddrinfo(res);
		cm_stream__fail(s, -EHOSTUNREACH);
	} else {
		k->addrs = k->addr = res;
		connect_addr(s);
	}
	cm_stream__unref(s);
}

/* host as an address literal: no resolver round trip. */
static bool literal(struct stream_connect *k, uint16_t port)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&k->literal_sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&k->literal_sa;

	memset(&k->literal, 0, sizeof(k->literal));
	if (inet_pton(AF_INET, k->host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		k->literal.ai_addrlen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, k->host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		k->literal.ai_addrlen = sizeof(*a6);
	} else {
		return false;
	}
	k->literal.ai_family = k->literal_sa.ss_family;
	k->literal.ai_socktype = SOCK_STREAM;
	k->literal.ai_addr = (struct sockaddr *)&k->literal_sa;
	k->addr = &k->literal;
	return true;
}

int cm_stream_connect(struct cm_stream **out, struct cm_loop *l, const char *host, uint16_t port,
                      const struct cm_stream_opts *opts, const struct cm_stream_events *ev,
                      void *data)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct cm_stream *s;
	struct stream_connect *k;
	char portstr[8];
	int r;

	*out = NULL;
	if (!host || !*host || strlen(host) >= sizeof(k->host) || !ev || !ev->read || !ev->closed ||
	    port == 0)
		return -EINVAL;
	s = cm_stream__new(l, opts);
	if (!s)
		return -ENOMEM;
	k = calloc(1, sizeof(*k));
	if (!k) {
		cm_stream__unref(s);
		return -ENOMEM;
	}
	s->conn = k;
	s->client = true;
	s->ev = ev;
	s->data = data;
	if (!s->o.connect_ms)
		s->o.connect_ms = DEF_CONNECT_MS;
	snprintf(k->host, sizeof(k->host), "%s", host);
	k->deadline = uv_now(l->uv) + s->o.connect_ms;
	r = uv_tcp_init(l->uv, &s->tcp);
	if (r) {
		s->ev = NULL; /* nothing happened yet: no events */
		cm_stream__unref(s);
		return r;
	}
	s->refs = 1; /* the handle */
	if (literal(k, port)) {
		connect_addr(s);
		*out = s;
		return 0;
	}
	s->st = STREAM_RESOLVING;
	cm_stream__sys_timer(s, s->o.connect_ms);
	snprintf(portstr, sizeof(portstr), "%u", port);
	k->gai.data = s;
	r = uv_getaddrinfo(l->uv, &k->gai, on_resolved, host, portstr, &hints);
	if (r) {
		s->ev = NULL;
		cm_stream__fail(s, r);
		return r;
	}
	s->refs++; /* the resolution */
	*out = s;
	return 0;
}
