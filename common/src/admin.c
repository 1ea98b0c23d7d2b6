/* admin.c - the admin HTTP server's listener and connections on libuv (cm/admin.h). */
#include "admin_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"

#define READ_SIZE           (16 * 1024)  /* one read: also the most input handled per wakeup */
#define MAX_REQS_PER_WAKEUP 32           /* pipelined requests answered before yielding */
#define WRITE_HIGH          (256 * 1024) /* unsent response bytes before we stop reading */
#define LINGER_MAX_MS       2000         /* how long a closing connection may keep sending to us */
#define ACCEPT_RETRY_MS     100

enum conn_state {
	CONN_OPEN,    /* reading requests */
	CONN_LINGER,  /* last response queued, write side shut down; discarding input until EOF */
	CONN_CLOSING, /* handles closing; freed by the last close callback */
};

struct cm_admin_conn {
	struct cm_admin *a; /* borrowed: the server lives until its last connection is freed */
	struct cm_admin_conn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer; /* idle timeout while open, linger timeout while closing */
	uv_shutdown_t shutdown;
	struct cm_admin_http *parser; /* owned */
	struct cm_buf pending;        /* input read but not yet parsed (paused), owned */
	enum conn_state state;
	unsigned writes;    /* write requests in flight */
	size_t write_bytes; /* their total size */
	int handles;        /* of tcp and timer, those not yet closed */
	unsigned reading : 1;
	unsigned paused : 1;    /* pending holds input; reading resumes when writes drain */
	unsigned eof : 1;       /* the peer closed its side */
	unsigned shut_done : 1; /* our side is shut down: every response was sent */
	char rbuf[READ_SIZE];
};

struct admin_write {
	uv_write_t req;
	struct cm_admin_conn *c;
	char *data; /* owned */
	size_t len;
};

/* A connection over max_connections: accepted only to be closed. */
struct admin_reject {
	uv_tcp_t tcp;
	struct cm_admin *a;
};

static void accept_one(struct cm_admin *a);
static void consume(struct cm_admin_conn *c, const char *data, size_t len);

/* --- teardown -------------------------------------------------------------------------------- */

/* Every handle the server owns counts until its close callback; the last one frees the server. */
static void server_handle_closed(struct cm_admin *a)
{
	void (*done)(void *arg);
	void *arg;

	if (--a->handles > 0 || !a->closing)
		return;
	done = a->done;
	arg = a->done_arg;
	for (size_t i = 0; i < a->nroutes; i++)
		free(a->routes[i].path);
	free(a->routes);
	free(a);
	if (done)
		done(arg);
}

static void on_server_handle_closed(uv_handle_t *h)
{
	server_handle_closed(h->data);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct cm_admin_conn *c = h->data;
	struct cm_admin *a = c->a;

	if (--c->handles == 0) {
		cm_admin__http_free(c->parser);
		cm_buf_free(&c->pending);
		free(c);
	}
	server_handle_closed(a);
}

static void conn_close(struct cm_admin_conn *c)
{
	struct cm_admin *a = c->a;

	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	cm_metrics_gauge_add(a->m_connections, -1);
	/* pending writes and the shutdown get their callbacks with UV_ECANCELED first */
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* --- reading and writing --------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct cm_admin_conn *c = t->data;

	if (c->state == CONN_OPEN)
		CM_LOGD("admin", "closing an idle connection");
	conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct cm_admin_conn *c = h->data;

	(void)suggested;
	/* Each read is parsed before the callback returns, so one buffer per connection does. */
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(struct cm_admin_conn *c)
{
	if (c->reading)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		conn_close(c);
		return;
	}
	c->reading = 1;
}

static void read_stop(struct cm_admin_conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct cm_admin_conn *c = req->data;

	if (c->state == CONN_CLOSING)
		return;
	c->shut_done = 1;
	if (status < 0 || c->eof)
		conn_close(c);
}

/* Close gracefully after the responses already queued: shut our side down once they are sent,
 * and read (discarding) until the peer closes too. Closing at once could make the kernel answer
 * unread input with a reset, and the client would lose the response it is owed (a 413 sent
 * while it is still uploading, say). The linger timer bounds the wait. */
static void linger(struct cm_admin_conn *c)
{
	uint64_t ms = c->a->idle_timeout_ms < LINGER_MAX_MS ? c->a->idle_timeout_ms : LINGER_MAX_MS;

	c->state = CONN_LINGER;
	c->paused = 0;
	cm_buf_free(&c->pending);
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timer, ms, 0);
	if (!c->eof)
		read_start(c);
}

/* Input held back while responses were queued: parse it now, then read again. */
static void resume(struct cm_admin_conn *c)
{
	struct cm_buf in = c->pending;

	/* consume() may hold back a new remainder in c->pending */
	cm_buf_init(&c->pending, 0);
	c->paused = 0;
	consume(c, in.data, in.len);
	cm_buf_free(&in);
	if (c->state == CONN_OPEN && !c->paused)
		read_start(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct admin_write *w = req->data;
	struct cm_admin_conn *c = w->c;

	c->writes--;
	c->write_bytes -= w->len;
	free(w->data);
	free(w);
	if (c->state == CONN_CLOSING)
		return;
	if (status < 0) {
		CM_LOGD("admin", "write failed: %s", uv_strerror(status));
		conn_close(c);
		return;
	}
	if (c->state != CONN_OPEN || c->writes > 0)
		return;
	/* Everything answered: the next request gets a full idle period. */
	uv_timer_start(&c->timer, on_timer, c->a->idle_timeout_ms, 0);
	if (c->paused)
		resume(c);
}

/* Queue out's content (taken over). 0, or nonzero when the connection was closed. */
static int send_out(struct cm_admin_conn *c, struct cm_buf *out)
{
	struct admin_write *w = malloc(sizeof(*w));
	uv_buf_t b;
	int r;

	if (!w) {
		conn_close(c);
		return -ENOMEM;
	}
	w->c = c;
	w->len = out->len;
	w->data = cm_buf_steal(out);
	w->req.data = w;
	b = uv_buf_init(w->data, (unsigned)w->len);
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r) {
		free(w->data);
		free(w);
		conn_close(c);
		return r;
	}
	c->writes++;
	c->write_bytes += w->len;
	return 0;
}

/* Parse and answer what arrived. Responses to pipelined requests are gathered into one write.
 * At most MAX_REQS_PER_WAKEUP requests are answered, and none while WRITE_HIGH bytes wait to be
 * sent: the rest is held in c->pending and reading stops until the writes drain. */
static void consume(struct cm_admin_conn *c, const char *data, size_t len)
{
	struct cm_buf out;
	unsigned nreq = 0;
	int close = 0;

	cm_buf_init(&out, 0);
	while (len > 0) {
		size_t used;
		int r = cm_admin__http_feed(c->parser, data, len, &used);

		if (r == CM_ADMIN_HTTP_MORE)
			break;
		if (r < 0) {
			CM_LOGD("admin", "bad request: %s", strerror(-r));
			close = 1;
			r = cm_admin__respond_error(c->a, c->parser, r, &out);
		} else {
			data += used;
			len -= used;
			r = cm_admin__respond(c->a, c->parser, &out, &close);
			/* the handler may have closed the whole server, and this connection too */
			if (c->state != CONN_OPEN)
				goto out;
			cm_admin__http_next(c->parser);
		}
		if (r) {
			conn_close(c);
			goto out;
		}
		if (close)
			break;
		if (len &&
		    (++nreq >= MAX_REQS_PER_WAKEUP || c->write_bytes + out.len > WRITE_HIGH)) {
			if (cm_buf_append(&c->pending, data, len) != 0) {
				conn_close(c);
				goto out;
			}
			c->paused = 1;
			read_stop(c);
			break;
		}
	}
	if (out.len && send_out(c, &out) != 0)
		goto out;
	if (close)
		linger(c);
out:
	cm_buf_free(&out);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct cm_admin_conn *c = s->data;

	if (nread == 0 || c->state == CONN_CLOSING)
		return;
	if (nread < 0 && nread != UV_EOF) {
		CM_LOGD("admin", "read failed: %s", uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	if (nread < 0) {
		c->eof = 1;
		read_stop(c);
		if (c->state == CONN_LINGER) {
			if (c->shut_done)
				conn_close(c);
		} else {
			/* answer what was asked, then close; a half-sent request is dropped */
			linger(c);
		}
		return;
	}
	if (c->state == CONN_LINGER)
		return; /* the peer is still sending; we no longer care */
	consume(c, buf->base, (size_t)nread);
}

/* --- accepting ------------------------------------------------------------------------------- */

static void on_reject_closed(uv_handle_t *h)
{
	struct admin_reject *rj = h->data;
	struct cm_admin *a = rj->a;

	free(rj);
	server_handle_closed(a);
}

static void on_accept_retry(uv_timer_t *t)
{
	accept_one(t->data);
}

/* libuv stops watching the listener until the pending connection is accepted, so an accept that
 * cannot allocate must be retried later or the server would go deaf. */
static void accept_later(struct cm_admin *a)
{
	if (uv_is_active((uv_handle_t *)&a->accept_retry))
		return;
	CM_LOGW("admin", "out of memory accepting a connection; retrying");
	uv_timer_start(&a->accept_retry, on_accept_retry, ACCEPT_RETRY_MS, 0);
}

static void reject(struct cm_admin *a)
{
	struct admin_reject *rj = malloc(sizeof(*rj));

	if (!rj) {
		accept_later(a);
		return;
	}
	rj->a = a;
	uv_tcp_init(a->loop, &rj->tcp);
	rj->tcp.data = rj;
	a->handles++;
	if (uv_accept((uv_stream_t *)&a->listener, (uv_stream_t *)&rj->tcp) == 0) {
		cm_metrics_inc(a->m_rejected);
		CM_LOGD("admin", "max_connections (%u) reached: connection closed",
		        a->max_connections);
	}
	uv_close((uv_handle_t *)&rj->tcp, on_reject_closed);
}

static void accept_one(struct cm_admin *a)
{
	struct cm_admin_conn *c;

	if (a->closing)
		return;
	if (a->nconns >= a->max_connections) {
		reject(a);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || cm_admin__http_alloc(&c->parser) != 0) {
		free(c);
		accept_later(a);
		return;
	}
	c->a = a;
	cm_buf_init(&c->pending, 0);
	uv_tcp_init(a->loop, &c->tcp);
	uv_timer_init(a->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	a->handles += 2;
	/* linked before accepting, so that conn_close() has a consistent list to unlink from */
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	a->nconns++;
	cm_metrics_gauge_add(a->m_connections, 1);
	if (uv_accept((uv_stream_t *)&a->listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c); /* a retry with nothing waiting */
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, on_timer, a->idle_timeout_ms, 0);
	read_start(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct cm_admin *a = server->data;

	if (status < 0) {
		CM_LOGW("admin", "accept: %s", uv_strerror(status));
		return;
	}
	accept_one(a);
}

/* --- public API ------------------------------------------------------------------------------ */

int cm_admin_alloc(struct cm_admin **out, uv_loop_t *loop, struct cm_metrics *metrics,
                   const struct cm_admin_config *cfg)
{
	struct cm_admin *a;
	int r;

	*out = NULL;
	if (!loop || !cfg)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->metrics = metrics;
	a->daemon = cfg->daemon ? cfg->daemon : "";
	a->version = cfg->version ? cfg->version : "";
	a->max_connections =
	    cfg->max_connections ? cfg->max_connections : CM_ADMIN_DEFAULT_MAX_CONNECTIONS;
	a->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : CM_ADMIN_DEFAULT_IDLE_MS;
	a->started_ns = uv_hrtime();
	r = cm_admin__metrics_init(a);
	if (r) {
		free(a);
		return r;
	}
	/* Neither can fail for a TCP handle without an address family; from here on the server
	 * owns handles and is released through cm_admin_close(). */
	r = uv_tcp_init(loop, &a->listener);
	if (r) {
		free(a);
		return r;
	}
	uv_timer_init(loop, &a->accept_retry);
	a->listener.data = a->accept_retry.data = a;
	a->handles = 2;
	*out = a;
	return 0;
}

int cm_admin_route(struct cm_admin *a, const char *path, cm_admin_handler h, void *arg)
{
	struct cm_admin_route *routes;
	char *copy;

	if (!path || path[0] != '/' || !h)
		return -EINVAL;
	for (size_t i = 0; i < a->nroutes; i++) {
		if (strcmp(a->routes[i].path, path) == 0) {
			a->routes[i].handler = h;
			a->routes[i].arg = arg;
			return 0;
		}
	}
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	routes = realloc(a->routes, (a->nroutes + 1) * sizeof(*routes));
	if (!routes) {
		free(copy);
		return -ENOMEM;
	}
	routes[a->nroutes] = (struct cm_admin_route){copy, h, arg};
	a->routes = routes;
	a->nroutes++;
	return 0;
}

void cm_admin_set_health(struct cm_admin *a, cm_admin_health_fn fn, void *arg)
{
	a->health = fn;
	a->health_arg = arg;
}

int cm_admin_listen(struct cm_admin *a, const struct sockaddr *addr)
{
	int r;

	if (!addr || a->closing)
		return -EINVAL;
	if (a->listening)
		return -EALREADY;
	r = uv_tcp_bind(&a->listener, addr, 0);
	/* some bind errors (EADDRINUSE) only surface at listen */
	r = r ? r : uv_listen((uv_stream_t *)&a->listener, 128, on_connection);
	if (r)
		return r;
	a->listening = 1;
	return 0;
}

int cm_admin_port(const struct cm_admin *a)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (!a->listening || uv_tcp_getsockname(&a->listener, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

void cm_admin_close(struct cm_admin *a, void (*done)(void *arg), void *arg)
{
	if (!a) {
		if (done)
			done(arg);
		return;
	}
	if (a->closing)
		return;
	a->closing = 1;
	a->done = done;
	a->done_arg = arg;
	uv_close((uv_handle_t *)&a->listener, on_server_handle_closed);
	uv_close((uv_handle_t *)&a->accept_retry, on_server_handle_closed);
	while (a->conns)
		conn_close(a->conns);
}
