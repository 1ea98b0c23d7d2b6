/* http_server.c - the HTTP server (cm/http.h): listener, routes, limits, metrics, and the
 * answers the server gives itself (404, 405, 413, 500...). */
#include "http_int.h"

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/listener.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/srclimit.h"

/* --- teardown -------------------------------------------------------------------------------- */

static void server_free(struct cm_http_server *srv)
{
	struct http_route *r;
	struct http_body_limit *bl;

	while ((bl = srv->body_limits) != NULL) {
		srv->body_limits = bl->next;
		free(bl->path);
		free(bl);
	}
	while ((r = srv->routes) != NULL) {
		srv->routes = r->next;
		free(r->path);
		free(r->methods);
		free(r);
	}
	for (size_t i = 0; i < srv->nextra; i++) {
		free((char *)srv->extra[i].name);
		free((char *)srv->extra[i].value);
	}
	free(srv->extra);
	cm_srclimit_free(srv->per_source);
	free(srv->prefix);
	free(srv->m_requests_name);
	free(srv);
}

void cm_http__server_handle_closed(struct cm_http_server *srv)
{
	void (*done)(void *arg);
	void *arg;

	if (--srv->handles > 0 || !srv->closing)
		return;
	done = srv->done;
	arg = srv->done_arg;
	server_free(srv);
	if (done)
		done(arg);
}

static void on_server_handle_closed(uv_handle_t *h)
{
	cm_http__server_handle_closed(h->data);
}

/* --- memory after bursts --------------------------------------------------------------------- */

static void on_trim(uv_timer_t *t)
{
	struct cm_http_server *srv = t->data;

	srv->closed_recent = 0;
	/* glibc returns whole free pages from anywhere in its heaps, not only from the top */
	(void)malloc_trim(0);
	CM_LOGD(srv->mod, "memory of closed connections given back");
}

void cm_http__server_conn_freed(struct cm_http_server *srv)
{
	if (srv->stopping || ++srv->closed_recent < CM_HTTP_TRIM_AFTER ||
	    uv_is_active((uv_handle_t *)&srv->trim))
		return;
	uv_timer_start(&srv->trim, on_trim, CM_HTTP_TRIM_DELAY_MS, 0);
}

/* --- metrics --------------------------------------------------------------------------------- */

static int metrics_init(struct cm_http_server *srv)
{
	char name[128], help[160];
	int r;

	if (!srv->metrics)
		return 0;
	snprintf(name, sizeof(name), "%s_connections", srv->prefix);
	snprintf(help, sizeof(help), "Open connections to the %s HTTP server.", srv->prefix);
	r = cm_metrics_gauge(srv->metrics, &srv->m_conns, name, help, NULL);
	if (r)
		return r;
	snprintf(name, sizeof(name), "%s_connections_rejected_total", srv->prefix);
	snprintf(help, sizeof(help), "%s connections closed at once, by the limit reached.",
	         srv->prefix);
	r = cm_metrics_counter(srv->metrics, &srv->m_rejected, name, help, "limit",
	                       "max_connections", NULL);
	r = r ? r
	      : cm_metrics_counter(srv->metrics, &srv->m_rejected_source, name, help, "limit",
	                           "connections_per_source", NULL);
	if (r)
		return r;
	snprintf(name, sizeof(name), "%s_streams_refused_total", srv->prefix);
	snprintf(help, sizeof(help),
	         "%s HTTP/2 streams refused: their connection held max_receiving_bytes.",
	         srv->prefix);
	r = cm_metrics_counter(srv->metrics, &srv->m_streams_refused, name, help, NULL);
	if (r)
		return r;
	snprintf(name, sizeof(name), "%s_requests_total", srv->prefix);
	srv->m_requests_name = strdup(name);
	return srv->m_requests_name ? 0 : -ENOMEM;
}

/* The path label only ever takes a route's path or "other", so a scanner walking random URLs
 * cannot grow the registry; codes are three digits. */
void cm_http__count(struct cm_http_server *srv, struct http_route *route, int status)
{
	struct http_count_cache *cache;
	struct cm_counter *c;
	char code[8], help[160];
	int i;

	if (!srv || !srv->metrics)
		return;
	cache = route ? &route->counts : &srv->other_counts;
	for (i = 0; i < HTTP_COUNT_CACHE && cache->c[i]; i++) {
		if (cache->status[i] == status) {
			cm_metrics_inc(cache->c[i]);
			return;
		}
	}
	snprintf(code, sizeof(code), "%d", status);
	snprintf(help, sizeof(help), "Requests answered by the %s HTTP server, by path and status.",
	         srv->prefix);
	if (cm_metrics_counter(srv->metrics, &c, srv->m_requests_name, help, "path",
	                       route ? route->path : "other", "code", code, NULL) != 0)
		return;
	cm_metrics_inc(c);
	if (i < HTTP_COUNT_CACHE) {
		cache->status[i] = status;
		cache->c[i] = c;
	}
}

/* --- routing --------------------------------------------------------------------------------- */

struct http_route *cm_http__route_find(struct cm_http_server *srv, const char *path,
                                       const char **rest)
{
	struct http_route *best = NULL;

	*rest = "";
	if (!path)
		return NULL;
	for (struct http_route *r = srv->routes; r; r = r->next) {
		if (!(r->flags & CM_HTTP_PREFIX)) {
			if (strcmp(r->path, path) == 0)
				return r;
			continue;
		}
		if (strncmp(r->path, path, r->len) == 0 && (!best || r->len > best->len))
			best = r;
	}
	if (best)
		*rest = path + best->len;
	return best;
}

size_t cm_http__body_max(const struct cm_http_server *srv, const char *path)
{
	for (const struct http_body_limit *bl = srv->body_limits; bl && path; bl = bl->next)
		if (strcmp(bl->path, path) == 0)
			return bl->bytes;
	return srv->lim.max_body_bytes;
}

int cm_http_body_limit(struct cm_http_server *srv, const char *path, size_t bytes)
{
	struct http_body_limit *bl;

	if (!path || path[0] != '/' || bytes == 0 || bytes > SIZE_MAX / 2)
		return -EINVAL;
	for (bl = srv->body_limits; bl && strcmp(bl->path, path) != 0; bl = bl->next)
		;
	if (!bl) {
		if (!(bl = calloc(1, sizeof(*bl))) || !(bl->path = strdup(path))) {
			free(bl);
			return -ENOMEM;
		}
		bl->next = srv->body_limits;
		srv->body_limits = bl;
	}
	bl->bytes = bytes;
	/* a connection may hold a head and the largest body while it arrives */
	if (srv->lim.max_receiving_bytes < srv->lim.max_header_bytes + bytes)
		srv->lim.max_receiving_bytes = srv->lim.max_header_bytes + bytes;
	return 0;
}

/* Is method one of the comma-separated list? */
static int method_allowed(const char *list, const char *method)
{
	size_t n = strlen(method);

	while (*list) {
		size_t k;

		while (*list == ' ' || *list == ',')
			list++;
		k = strcspn(list, ", ");
		if (k == n && strncmp(list, method, n) == 0)
			return 1;
		list += k;
	}
	return 0;
}

static const char *error_text(int status)
{
	switch (status) {
	case 400:
		return "bad request\n";
	case 403:
		return "forbidden\n";
	case 404:
		return "not found\n";
	case 405:
		return "method not allowed\n";
	case 411:
		return "length required\n";
	case 413:
		return "request body too large\n";
	case 431:
		return "request header fields too large\n";
	case 505:
		return "HTTP version not supported\n";
	default:
		return "internal error\n";
	}
}

/* The server's own answer, with an Allow header when allow is set (405). */
static int store_error(struct cm_http_server *srv, struct cm_http_req *req, int status,
                       const char *allow)
{
	const char *text = error_text(status), *type = NULL;
	struct cm_http_header h = {"Allow", allow};
	struct cm_buf body;
	int r;

	cm_buf_init(&body, 0);
	if (srv->error_fn)
		type = srv->error_fn(srv->error_arg, req, status, &body);
	if (type)
		r = cm_http__req_store(req, status, type, &h, allow ? 1 : 0, body.data, body.len);
	else
		r = cm_http__req_store(req, status, CM_HTTP_TEXT, &h, allow ? 1 : 0, text,
		                       strlen(text));
	cm_buf_free(&body);
	return r;
}

int cm_http__answer_error(struct cm_http_server *srv, struct cm_http_req *req, int status)
{
	return store_error(srv, req, status, NULL);
}

void cm_http_server_set_error_body(struct cm_http_server *srv, cm_http_error_fn fn, void *arg)
{
	srv->error_fn = fn;
	srv->error_arg = arg;
}

void cm_http_server_set_head_check(struct cm_http_server *srv, cm_http_head_fn fn, void *arg)
{
	srv->head_fn = fn;
	srv->head_arg = arg;
}

int cm_http__head_check(const struct cm_http_server *srv, const struct cm_http_req *req)
{
	int status;

	if (!srv || !srv->head_fn)
		return 0;
	status = srv->head_fn(srv->head_arg, req);
	return status == 0 || (status >= 400 && status <= 599) ? status : 500;
}

/* Answer req with the server's own response and send it. */
static void answer(struct cm_http_conn *c, struct cm_http_req *req, int status, const char *allow)
{
	store_error(c->srv, req, status, allow);
	cm_http__count(c->srv, req->route, status);
	req->counted = 1;
	cm_http__conn_responded(c, req);
}

void cm_http__dispatch(struct cm_http_conn *c, struct cm_http_req *req)
{
	struct http_route *route;
	cm_http_handler h;
	void *arg;
	int r;

	cm_http__conn_unhold(c, req); /* arrived */
	route = cm_http__route_find(c->srv, req->path, &req->rest);
	req->route = route;
	if (req->err_status) {
		answer(c, req, req->err_status, NULL);
		return;
	}
	if (!route) {
		answer(c, req, 404, NULL);
		return;
	}
	if (route->methods && !method_allowed(route->methods, req->method)) {
		answer(c, req, 405, route->methods);
		return;
	}
	/* copied: the handler may replace the route */
	h = route->h;
	arg = route->arg;
	req->state = CM_HTTP_REQ_HANDLER;
	r = h(arg, req);
	if (r >= 0)
		return; /* the handler owns req now */
	CM_LOGW(c->srv->mod, "%s %s: handler failed: %d", req->method, route->path, r);
	if (req->state == CM_HTTP_REQ_DETACHED) {
		cm_http__req_free(req); /* the connection went away meanwhile */
		return;
	}
	answer(req->c, req, 500, NULL);
}

/* --- public API ------------------------------------------------------------------------------ */

static int copy_extra(struct cm_http_server *srv, const struct cm_http_config *cfg)
{
	if (cfg->nextra_headers == 0)
		return 0;
	srv->extra = calloc(cfg->nextra_headers, sizeof(*srv->extra));
	if (!srv->extra)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nextra_headers; i++) {
		char *n = strdup(cfg->extra_headers[i].name);
		char *v = strdup(cfg->extra_headers[i].value);

		if (!n || !v) {
			free(n);
			free(v);
			return -ENOMEM;
		}
		for (char *p = n; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		srv->extra[i] = (struct cm_http_header){n, v};
		srv->nextra++;
	}
	return 0;
}

int cm_http_server_alloc(struct cm_http_server **out, uv_loop_t *loop, struct cm_metrics *metrics,
                         const struct cm_http_config *cfg)
{
	struct cm_http_server *srv;
	int r;

	*out = NULL;
	/* connections are cm_streams: the loop must have its context (cm/loop.h) */
	if (!loop || !cfg || !cm_loop_of(loop))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->metrics = metrics;
	srv->tls = cfg->tls;
	srv->lim = cfg->limits;
	if (!srv->lim.max_header_bytes)
		srv->lim.max_header_bytes = CM_HTTP_DEF_HEADER_BYTES;
	if (!srv->lim.max_body_bytes)
		srv->lim.max_body_bytes = CM_HTTP_DEF_BODY_BYTES;
	if (!srv->lim.max_connections)
		srv->lim.max_connections = CM_HTTP_DEF_MAX_CONNS;
	if (!srv->lim.idle_timeout_ms)
		srv->lim.idle_timeout_ms = CM_HTTP_DEF_IDLE_MS;
	if (!srv->lim.max_streams)
		srv->lim.max_streams = CM_HTTP_DEF_MAX_STREAMS;
	if (!srv->lim.max_in_flight)
		srv->lim.max_in_flight = CM_HTTP_DEF_MAX_IN_FLIGHT;
	if (!srv->lim.max_receiving_bytes)
		srv->lim.max_receiving_bytes = CM_HTTP_DEF_RECEIVING;
	if (srv->lim.max_receiving_bytes < srv->lim.max_header_bytes + srv->lim.max_body_bytes)
		srv->lim.max_receiving_bytes = srv->lim.max_header_bytes + srv->lim.max_body_bytes;
	if (!srv->lim.max_connections_per_source)
		srv->lim.max_connections_per_source =
		    srv->lim.max_connections >= 4 ? srv->lim.max_connections / 4 : 1;
	srv->mod = cfg->log_module ? cfg->log_module : "http";
	srv->prefix = strdup(cfg->metrics_prefix ? cfg->metrics_prefix : "http");
	r = srv->prefix ? 0 : -ENOMEM;
	r = r ? r : copy_extra(srv, cfg);
	r = r ? r : cm_srclimit_alloc(&srv->per_source, srv->lim.max_connections_per_source);
	r = r ? r : metrics_init(srv);
	if (r) {
		server_free(srv);
		return r;
	}
	/* from here on the server owns handles and is released through cm_http_server_close() */
	cm_list_init(&srv->conns);
	cm_list_init(&srv->flushq);
	uv_timer_init(loop, &srv->trim);
	uv_idle_init(loop, &srv->flusher);
	srv->flusher.data = srv->trim.data = srv;
	srv->handles = 2;
	*out = srv;
	return 0;
}

int cm_http_route(struct cm_http_server *srv, const char *path, unsigned flags, const char *methods,
                  cm_http_handler h, void *arg)
{
	struct http_route *r;
	char *m = NULL;

	if (!path || path[0] != '/' || !h || (flags & ~(unsigned)CM_HTTP_PREFIX))
		return -EINVAL;
	if (methods && !(m = strdup(methods)))
		return -ENOMEM;
	for (r = srv->routes; r; r = r->next) {
		if (r->flags == flags && strcmp(r->path, path) == 0) {
			free(r->methods);
			r->methods = m;
			r->h = h;
			r->arg = arg;
			return 0;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		free(m);
		return -ENOMEM;
	}
	r->len = strlen(path);
	r->flags = flags;
	r->methods = m;
	r->h = h;
	r->arg = arg;
	/* appended: earlier routes keep their order (and their addresses) */
	{
		struct http_route **pp = &srv->routes;

		while (*pp)
			pp = &(*pp)->next;
		*pp = r;
	}
	return 0;
}

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	cm_http__conn_accept(cm_listener_data(ln), s);
}

static void on_refused(struct cm_listener *ln, enum cm_listener_refusal why,
                       const struct sockaddr *peer)
{
	cm_http__conn_refused(cm_listener_data(ln), why == CM_LISTENER_REFUSED_SOURCE, peer);
}

static const struct cm_listener_events listener_events = {
    .accept = on_accept,
    .refused = on_refused,
};

static int admit(void *arg, const struct sockaddr *peer)
{
	return cm_srclimit_take(arg, peer);
}

static void release(void *arg, const struct sockaddr *peer)
{
	cm_srclimit_release(arg, peer);
}

int cm_http_server_listen(struct cm_http_server *srv, const struct sockaddr *addr)
{
	struct cm_listener_config lc = {
	    .addr = addr,
	    .addrlen = addr && addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                   : sizeof(struct sockaddr_in),
	    .backlog = 128,
	    .max_conns = srv->lim.max_connections,
	    .stream =
	        {
	            .tls = srv->tls,
	            .handshake_ms = srv->lim.idle_timeout_ms,
	            .linger_ms = srv->lim.idle_timeout_ms < 2000 ? srv->lim.idle_timeout_ms : 2000,
	            .high_water = CM_HTTP_WRITE_HIGH,
	            .low_water = CM_HTTP_WRITE_HIGH / 4,
	            /* HTTP bounds its own output (the high-water mark stops it producing): no
	             * answer is refused for its size */
	            .max_unsent = (size_t)1 << 30,
	            .nodelay = true,
	            .log_mod = srv->mod,
	        },
	    .source_admit = admit,
	    .source_release = release,
	    .source_arg = srv->per_source,
	};
	int r;

	if (!addr || srv->stopping)
		return -EINVAL;
	if (srv->ln)
		return -EALREADY;
	r = cm_listener_open(&srv->ln, cm_loop_of(srv->loop), &lc, &listener_events, srv);
	if (r)
		return r;
	srv->handles++; /* until the listener's close */
	return 0;
}

int cm_http_server_port(const struct cm_http_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!srv->ln || srv->stopping || cm_listener_address(srv->ln, &ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int cm_http_server_stopping(const struct cm_http_server *srv)
{
	return srv->stopping;
}

static void on_listener_closed(void *arg)
{
	cm_http__server_handle_closed(arg);
}

/* Close the listener and the trim timer (once). */
static void stop_listening(struct cm_http_server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = 1;
	if (srv->ln) {
		cm_listener_close(srv->ln, on_listener_closed, srv);
		srv->ln = NULL;
	}
	uv_close((uv_handle_t *)&srv->trim, on_server_handle_closed);
}

void cm_http_server_stop_accepting(struct cm_http_server *srv)
{
	struct cm_list *n, *next;

	if (srv->stopping)
		return;
	stop_listening(srv);
	/* draining may close a connection (unlinking it), never another one */
	cm_list_foreach_safe(n, next, &srv->conns)
	{
		cm_http__conn_drain(cm_list_entry(n, struct cm_http_conn, link));
	}
}

void cm_http_server_close(struct cm_http_server *srv, void (*done)(void *arg), void *arg)
{
	if (!srv) {
		if (done)
			done(arg);
		return;
	}
	if (srv->closing)
		return;
	stop_listening(srv);
	srv->closing = 1;
	srv->done = done;
	srv->done_arg = arg;
	/* hold a count so a cancel callback's close of the last connection cannot free us here */
	srv->handles++;
	while (!cm_list_empty(&srv->conns))
		cm_http__conn_close(
		    cm_list_entry(cm_list_first(&srv->conns), struct cm_http_conn, link));
	uv_close((uv_handle_t *)&srv->flusher, on_server_handle_closed);
	cm_http__server_handle_closed(srv);
}
