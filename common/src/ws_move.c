/* ws_move.c - handing a WebSocket connection from one loop to another (cm_ws_export/import). */
#include "ws_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cm/stream.h"

int cm_ws_export(struct cm_ws_conn *c, struct cm_ws_parcel **out)
{
	struct cm_ws_parcel *p;
	const char *rest;
	size_t n;
	int r;

	*out = NULL;
	if (c->st != CM_WS_OPEN || !c->s)
		return -EINVAL;
	if (c->fr.frame_left || c->fr.msg_open)
		return -EAGAIN;
	r = cm_ws__framer_send(c);
	if (r) {
		cm_ws_abort(c, r);
		return r;
	}
	if (cm_ws__framer_want_write(c))
		return -EAGAIN;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	/* the input not parsed yet: the rest of what is being fed (from an event), or what is
	 * kept */
	rest = c->fr.rp ? c->fr.rp : c->in.data;
	n = c->fr.rp ? c->fr.rn : c->in.len;
	cm_buf_init(&p->in, 0);
	if (n && cm_buf_append(&p->in, rest, n) != 0) {
		free(p);
		return -ENOMEM;
	}
	r = cm_stream_export(c->s, &p->sp);
	if (r) {
		cm_buf_free(&p->in);
		free(p);
		return r;
	}
	p->protocol = c->protocol;
	c->protocol = NULL;
	c->s = NULL;
	c->st = CM_WS_MOVED;
	c->fr.rn = 0; /* taken: wslay is not fed again */
	*out = p;
	/* from an event, the connection is freed once it returns (cm_ws__leave) */
	if (c->depth == 0 && !c->kicking)
		cm_ws__conn_free(c);
	return 0;
}

void cm_ws_parcel_free(struct cm_ws_parcel *p)
{
	if (!p)
		return;
	cm_stream_parcel_free(p->sp);
	cm_buf_free(&p->in);
	free(p->protocol);
	free(p);
}

int cm_ws_import(struct cm_ws_conn **out, struct cm_loop *l, struct cm_ws_parcel *p,
                 const struct cm_ws_config *cfg, const struct cm_ws_events *ev, void *data)
{
	struct cm_stream_parcel *sp;
	struct cm_ws_conn *c = NULL;
	int r;

	*out = NULL;
	if (!cfg || !ev || !ev->message || !ev->closed) {
		cm_ws_parcel_free(p);
		return -EINVAL;
	}
	c = cm_ws__conn_new(cfg, ev, data);
	r = c ? cm_ws__framer_init(c) : -ENOMEM;
	if (r) {
		cm_ws__conn_free(c);
		cm_ws_parcel_free(p);
		return r;
	}
	c->st = CM_WS_OPEN;
	c->protocol = p->protocol;
	p->protocol = NULL;
	c->in = p->in;
	cm_buf_init(&p->in, 0);
	/* Input that came along is handed over from the loop, not from within this call; what
	 * the stream reads meanwhile queues up behind it in c->in. */
	if (c->in.len) {
		r = cm_loop_post(l, &c->kick);
		if (r) {
			cm_ws__conn_free(c);
			cm_ws_parcel_free(p);
			return r;
		}
		c->kicking = true;
	}
	sp = p->sp;
	p->sp = NULL;
	cm_ws_parcel_free(p);
	r = cm_stream_import(&c->s, l, sp, &cm_ws__stream_events, c);
	if (r) {
		c->s = NULL;
		c->st = CM_WS_GONE;
		if (!c->kicking)
			cm_ws__conn_free(c); /* else when the kick runs */
		return r;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", cm_stream_peer_name(c->s));
	*out = c;
	return 0;
}
