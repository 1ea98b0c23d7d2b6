/* h2_session.c - the nghttp2 client session of an HTTP/2 connection (see h2.c): its creation
 * and the callbacks that turn frames into stream answers. The callbacks run inside
 * nghttp2_session_mem_recv() (or mem_send()), where h2.c sends nothing itself. */
#include "h2_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "retry.h"

/* --- nghttp2 callbacks -------------------------------------------------------------------- */

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
	struct pp_h2_conn *c = user;
	struct h2_stream *s;

	(void)flags;
	if (c->dead)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
	if (!s)
		return 0;
	if (namelen == 7 && !memcmp(name, ":status", 7)) {
		s->status = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			s->status = s->status * 10 +
			            (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
	} else if (namelen == 7 && !memcmp(name, "apns-id", 7)) {
		snprintf(s->apns_id, sizeof(s->apns_id), "%.*s", (int)valuelen, value);
	} else if (namelen == 11 && !memcmp(name, "retry-after", 11)) {
		s->retry_after = pp_retry_after_parse((const char *)value, valuelen, time(NULL));
	}
	return 0;
}

static int on_data(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user)
{
	struct pp_h2_conn *c = user;
	struct h2_stream *s;

	(void)flags;
	if (c->dead)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s = nghttp2_session_get_stream_user_data(sess, id);
	if (!s)
		return 0;
	/* Past the limit the rest is dropped: error bodies are small, the status says enough. */
	if (!s->oom && s->resp.len + len <= RESP_BODY_MAX && cm_buf_append(&s->resp, data, len))
		s->oom = true;
	return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct pp_h2_conn *c = user;

	(void)sess;
	if (c->dead)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		if (c->st == ST_HANDSHAKE) {
			c->st = ST_READY;
			c->ever_ready = true;
		}
		if (c->ev->writable && pp_h2_capacity(c))
			c->ev->writable(c, c->arg);
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			c->ping_sent = 0;
		break;
	case NGHTTP2_GOAWAY: {
		char dbg[128];

		c->goaway = true;
		c->goaway_last_id = f->goaway.last_stream_id;
		snprintf(dbg, sizeof(dbg), "%.*s", (int)f->goaway.opaque_data_len,
		         f->goaway.opaque_data ? (const char *)f->goaway.opaque_data : "");
		CM_LOGI("h2", "%s: GOAWAY error %u last stream %d %s", c->authority,
		        f->goaway.error_code, f->goaway.last_stream_id, dbg);
		if (c->ev->goaway)
			c->ev->goaway(c, f->goaway.error_code, dbg, c->arg);
		break;
	}
	default:
		break;
	}
	return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct pp_h2_conn *c = user;
	struct h2_stream *s;

	if (c->dead)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS) {
		s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
		if (s)
			s->sent = true;
	}
	return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *user)
{
	struct pp_h2_conn *c = user;
	struct h2_stream *s;
	int err = 0;

	if (c->dead)
		return 0;
	s = nghttp2_session_get_stream_user_data(sess, id);
	if (!s)
		return 0;
	if (!s->status) {
		/* Closed without an answer: refused (not processed) or reset. */
		err = error_code == NGHTTP2_REFUSED_STREAM ? -EAGAIN
		                                           : pp_h2__lost_error(c, s, -ECONNRESET);
	} else if (s->oom) {
		err = -ENOMEM; /* answered, but we could not keep what it said */
	}
	pp_h2__stream_finish(c, s, err);
	if (!c->dead && c->ev->writable && pp_h2_capacity(c))
		c->ev->writable(c, c->arg);
	return 0;
}

/* --- the session ---------------------------------------------------------------------- */

int pp_h2__session_open(struct pp_h2_conn *c)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
	};
	int r;

	if (nghttp2_session_callbacks_new(&cbs))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	if (nghttp2_option_new(&opt)) {
		nghttp2_session_callbacks_del(cbs);
		return -ENOMEM;
	}
	/* Until the server's SETTINGS say otherwise, one stream (APNs starts there anyway). */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
	r = nghttp2_session_client_new2(&c->sess, cbs, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (r)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 2)) {
		nghttp2_session_del(c->sess);
		c->sess = NULL;
		return -ENOMEM;
	}
	return 0;
}
