/* listener.c - cm_listener (cm/listener.h): bind, accept, limits, accept retry. */
#include "cm/listener.h"
#include "stream_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"

#define DEF_BACKLOG     511
#define ACCEPT_RETRY_MS 100

struct cm_listener {
	struct cm_loop *l; /* borrowed */
	uv_tcp_t tcp;
	uv_timer_t retry; /* accepting again after running out of memory */
	struct cm_listener_config cfg;
	const struct cm_listener_events *ev; /* borrowed */
	void *data;
	unsigned count;   /* accepted streams alive */
	unsigned handles; /* tcp and retry, until their close callbacks */
	bool paused, closing;
	void (*done)(void *arg);
	void *done_arg;
};

static const char *mod(const struct cm_listener *ln)
{
	return ln->cfg.stream.log_mod ? ln->cfg.stream.log_mod : "listener";
}

/* Freed once closed and every stream it accepted is gone (they report back to it). */
static void maybe_free(struct cm_listener *ln)
{
	if (ln->closing && ln->handles == 0 && ln->count == 0)
		free(ln);
}

/* The stream closed, or moved to another loop (its per-source count goes with it). */
static void on_stream_gone(struct cm_stream *s, void *arg)
{
	struct cm_listener *ln = arg;

	(void)s;
	ln->count--;
	maybe_free(ln);
}

static void refuse(struct cm_listener *ln, struct cm_stream *s, enum cm_listener_refusal why)
{
	if (ln->ev->refused)
		ln->ev->refused(ln, why, (const struct sockaddr *)&s->peer);
	cm_stream_abort(s, -ECONNREFUSED, true);
}

static void accept_one(struct cm_listener *ln);

static void on_retry(uv_timer_t *t)
{
	struct cm_listener *ln = t->data;

	if (!ln->closing && !ln->paused)
		accept_one(ln);
}

static void accept_one(struct cm_listener *ln)
{
	struct cm_stream *s;
	int r;

	r = cm_stream_accept(&s, ln->l, (uv_stream_t *)&ln->tcp, &ln->cfg.stream);
	if (r == -ENOMEM) {
		/* libuv stops watching the socket until a connection is taken: try again */
		if (!uv_is_active((uv_handle_t *)&ln->retry)) {
			CM_LOGW(mod(ln), "out of memory accepting a connection; retrying");
			uv_timer_start(&ln->retry, on_retry, ACCEPT_RETRY_MS, 0);
		}
		return;
	}
	if (r)
		return; /* the peer is already gone, or TLS could not start: closed quietly */
	if (ln->cfg.max_conns && ln->count >= ln->cfg.max_conns) {
		refuse(ln, s, CM_LISTENER_REFUSED_CAP);
		return;
	}
	if (ln->cfg.source_admit && s->peerlen &&
	    ln->cfg.source_admit(ln->cfg.source_arg, (const struct sockaddr *)&s->peer) != 0) {
		refuse(ln, s, CM_LISTENER_REFUSED_SOURCE);
		return;
	}
	ln->count++;
	s->release = on_stream_gone;
	s->release_arg = ln;
	if (ln->cfg.source_admit && ln->cfg.source_release && s->peerlen) {
		s->src_release = ln->cfg.source_release;
		s->src_arg = ln->cfg.source_arg;
	}
	ln->ev->accept(ln, s);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct cm_listener *ln = server->data;

	if (status < 0) {
		CM_LOGW(mod(ln), "accept: %s", uv_strerror(status));
		return;
	}
	if (ln->closing || ln->paused)
		return;
	accept_one(ln);
}

static int bind_socket(const struct cm_listener_config *cfg, int *out)
{
	int fd, one = 1, rc;

	*out = -1;
	fd = socket(cfg->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cfg->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (cfg->addr->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, cfg->addr, cfg->addrlen) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct cm_listener *ln = h->data;

	if (--ln->handles > 0)
		return;
	if (ln->done)
		ln->done(ln->done_arg);
	maybe_free(ln);
}

int cm_listener_open(struct cm_listener **out, struct cm_loop *l,
                     const struct cm_listener_config *cfg, const struct cm_listener_events *ev,
                     void *data)
{
	struct cm_listener *ln;
	int fd, rc;

	*out = NULL;
	if (!cfg->addr || !ev || !ev->accept)
		return -EINVAL;
	rc = bind_socket(cfg, &fd);
	if (rc)
		return rc;
	ln = calloc(1, sizeof(*ln));
	if (!ln) {
		close(fd);
		return -ENOMEM;
	}
	ln->l = l;
	ln->cfg = *cfg;
	ln->cfg.addr = NULL; /* borrowed during open only */
	ln->cfg.stream.server_name = NULL;
	ln->ev = ev;
	ln->data = data;
	uv_tcp_init(l->uv, &ln->tcp);
	uv_timer_init(l->uv, &ln->retry);
	ln->tcp.data = ln->retry.data = ln;
	ln->handles = 2;
	rc = uv_tcp_open(&ln->tcp, fd);
	if (rc) {
		close(fd); /* not the handle's yet */
		cm_listener_close(ln, NULL, NULL);
		return rc;
	}
	rc = uv_listen((uv_stream_t *)&ln->tcp, cfg->backlog > 0 ? cfg->backlog : DEF_BACKLOG,
	               on_connection);
	if (rc) {
		cm_listener_close(ln, NULL, NULL);
		return rc;
	}
	*out = ln;
	return 0;
}

void cm_listener_pause(struct cm_listener *ln)
{
	ln->paused = true;
	uv_timer_stop(&ln->retry);
}

void cm_listener_close(struct cm_listener *ln, void (*done)(void *arg), void *arg)
{
	if (!ln || ln->closing)
		return;
	ln->closing = true;
	ln->done = done;
	ln->done_arg = arg;
	uv_close((uv_handle_t *)&ln->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&ln->retry, on_handle_closed);
}

void *cm_listener_data(const struct cm_listener *ln)
{
	return ln->data;
}

unsigned cm_listener_count(const struct cm_listener *ln)
{
	return ln->count;
}

int cm_listener_address(const struct cm_listener *ln, struct sockaddr_storage *ss, socklen_t *len)
{
	int n = sizeof(*ss), r = uv_tcp_getsockname(&ln->tcp, (struct sockaddr *)ss, &n);

	if (r == 0)
		*len = (socklen_t)n;
	return r;
}

int cm_listener_warn_caps(const char *mod, const char *source_key, long long per_source,
                          const char *worker_key, long long per_worker)
{
	if (per_worker <= 0 || (per_source > 0 && per_source < per_worker))
		return 0;
	CM_LOGW(mod,
	        "%s (%lld%s) is not below %s (%lld): one source address can fill a worker, and "
	        "every other client the kernel hands to that worker is refused",
	        source_key, per_source, per_source > 0 ? "" : ", no limit", worker_key, per_worker);
	return 1;
}
