/* stream_move.c - handing a stream from one loop to another (cm_stream_export/import). */
#include "stream_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/tls.h"

int cm_stream_export(struct cm_stream *s, struct cm_stream_parcel **out)
{
	struct cm_stream_parcel *p;
	uv_os_fd_t fd;

	*out = NULL;
	if (s->st != STREAM_OPEN || s->handshaking || s->eof)
		return -EINVAL;
	cm_stream_flush(s);
	if (s->st != STREAM_OPEN)
		return -EINVAL; /* the flush failed: the stream is closing */
	if (cm_stream_unsent(s) > 0)
		return -EAGAIN;
	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	/* the handle closes its descriptor; the duplicate keeps the socket for the next loop */
	p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (p->fd < 0) {
		int e = -errno;

		free(p);
		return e;
	}
	p->tls = s->tls;
	p->secured = s->secured;
	p->o = s->o;
	p->server_name = s->server_name;
	memcpy(&p->peer, &s->peer, sizeof(p->peer));
	p->peerlen = s->peerlen;
	memcpy(p->peer_name, s->peer_name, sizeof(p->peer_name));
	p->src_release = s->src_release;
	p->src_arg = s->src_arg;
	/* what moved is no longer this stream's to free or to report */
	s->tls = NULL;
	s->server_name = NULL;
	s->src_release = NULL;
	s->ev = NULL;
	cm_stream_abort(s, 0, false);
	*out = p;
	return 0;
}

void cm_stream_parcel_free(struct cm_stream_parcel *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	cm_tls_conn_free(p->tls);
	if (p->src_release)
		p->src_release(p->src_arg, (const struct sockaddr *)&p->peer);
	free(p->server_name);
	free(p);
}

int cm_stream_import(struct cm_stream **out, struct cm_loop *l, struct cm_stream_parcel *p,
                     const struct cm_stream_events *ev, void *data)
{
	struct cm_stream *s;
	int r;

	*out = NULL;
	p->o.server_name = NULL; /* the parcel's copy is handed over below */
	s = cm_stream__new(l, &p->o);
	if (!s) {
		cm_stream_parcel_free(p);
		return -ENOMEM;
	}
	r = uv_tcp_init(l->uv, &s->tcp);
	if (r) {
		cm_stream__unref(s); /* no handle, no events: freed here */
		cm_stream_parcel_free(p);
		return r;
	}
	s->refs = 1;
	s->st = STREAM_OPEN;
	s->server_name = p->server_name;
	s->o.server_name = s->server_name;
	s->tls = p->tls;
	s->secured = p->secured;
	memcpy(&s->peer, &p->peer, sizeof(s->peer));
	s->peerlen = p->peerlen;
	memcpy(s->peer_name, p->peer_name, sizeof(s->peer_name));
	s->src_release = p->src_release;
	s->src_arg = p->src_arg;
	r = uv_tcp_open(&s->tcp, p->fd);
	if (r) {
		close(p->fd); /* not the handle's */
		free(p);
		cm_stream__fail(s, r); /* closes without events: none were given yet */
		return r;
	}
	free(p);
	s->ev = ev;
	s->data = data;
	s->started = true;
	cm_stream__read_start(s);
	if (s->tls)
		cm_stream__pump_soon(s); /* records TLS took in before the move */
	*out = s;
	return 0;
}
