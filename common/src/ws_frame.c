/* ws_frame.c - WebSocket frames through wslay (the one file that includes it): input fed to
 * wslay a frame at a time, messages handed to the events, output handed to the stream while it
 * has room.
 *
 * wslay reads ahead into a buffer of its own (4 KiB) and would keep the start of the next frame
 * there; then no moment would be free of a partial frame, and a connection could not move to
 * another loop. So it is given the bytes of one frame at a time: between two frames it holds
 * nothing of ours, and the rest of the input stays where the caller can see it. Control frames
 * are given whole, which also keeps wslay's check of a close reason's UTF-8 in one piece.
 *
 * The frame header is read here for that, and the few malformed headers that wslay's frame
 * layer answers with an empty close frame (a fragmented or oversized control frame, a length
 * not in its shortest form) are refused here with 1002, as RFC 6455 section 7.4.1 asks, like
 * the rest of the protocol errors wslay catches itself (unmasked frames, reserved bits and
 * opcodes, continuation out of place). */
#include "ws_int.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <wslay/wslay.h>

static ssize_t would_block(wslay_event_context_ptr ctx)
{
	wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	return -1;
}

static bool reading(const struct cm_ws_conn *c)
{
	return (c->st == CM_WS_OPEN || c->st == CM_WS_CLOSING) && !c->in_paused && !c->user_paused;
}

/* Read the header at the start of f's input and set frame_left to the frame's size. 0, -EAGAIN
 * (more bytes needed: a whole header, or a whole control frame), -EPROTO. */
static int next_frame(struct cm_ws__framer *f)
{
	const unsigned char *p = (const unsigned char *)f->rp;
	unsigned fin, op, len7;
	size_t hlen = 2;
	uint64_t plen;

	if (f->rn < 2)
		return -EAGAIN;
	fin = p[0] >> 7;
	op = p[0] & 0x0f;
	len7 = p[1] & 0x7f;
	hlen += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	hlen += (p[1] & 0x80) ? 4 : 0;
	if (f->rn < hlen)
		return -EAGAIN;
	if (len7 == 126) {
		plen = (uint64_t)p[2] << 8 | p[3];
		if (plen < 126)
			return -EPROTO;
	} else if (len7 == 127) {
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | p[2 + i];
		if (plen < 65536 || plen >> 63)
			return -EPROTO;
	} else {
		plen = len7;
	}
	if (op >= 8) {
		/* a close frame's payload is empty, or a code and maybe a reason */
		if (!fin || plen > 125 || (op == WSLAY_CONNECTION_CLOSE && plen == 1))
			return -EPROTO;
		if (f->rn < hlen + plen)
			return -EAGAIN;
	} else if (op == WSLAY_TEXT_FRAME || op == WSLAY_BINARY_FRAME) {
		f->msg_open = !fin;
	} else if (op == WSLAY_CONTINUATION_FRAME && fin) {
		f->msg_open = false;
	}
	f->frame_left = hlen + plen;
	return 0;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct cm_ws_conn *c = user;
	struct cm_ws__framer *f = &c->fr;
	size_t n;
	int r;

	(void)flags;
	if (!reading(c) || f->rn == 0)
		return would_block(ctx);
	if (f->frame_left == 0) {
		/* Between frames, what the frames before made (a pong) goes to the stream: wslay
		 * sends a close frame ahead of what is queued and drops the rest, so an answer
		 * owed would otherwise be lost or not depending on how the input was cut. */
		if (wslay_event_want_write(ctx) && cm_ws__framer_send(c) != 0) {
			wslay_event_shutdown_read(ctx);
			return would_block(ctx);
		}
		/* Then the output must have room: a peer that does not read gets nothing more
		 * read from it either, so its pings cannot pile up pongs. */
		if (cm_ws__tx_full(c)) {
			c->in_paused = true;
			return would_block(ctx);
		}
		r = next_frame(f);
		if (r == -EAGAIN)
			return would_block(ctx);
		if (r) {
			f->proto_error = true;
			wslay_event_shutdown_read(ctx);
			return would_block(ctx);
		}
	}
	n = len < f->rn ? len : f->rn;
	if (n > f->frame_left)
		n = (size_t)f->frame_left;
	memcpy(buf, f->rp, n);
	f->rp += n;
	f->rn -= n;
	f->frame_left -= n;
	return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
	struct cm_ws_conn *c = user;
	int r;

	(void)flags;
	if (cm_ws__tx_full(c))
		return would_block(ctx);
	if (len > CM_WS_WRITE_CHUNK)
		len = CM_WS_WRITE_CHUNK;
	r = cm_ws__tx_write(c, data, len);
	if (r) {
		c->fr.send_err = r;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	c->fr.sent += len;
	return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
	struct cm_ws_conn *c = user;
	const char *msg = a->msg ? (const char *)a->msg : "";

	(void)ctx;
	if (c->st != CM_WS_OPEN)
		return; /* closing: what still arrives is dropped */
	switch (a->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		c->ev->message(c, msg, a->msg_length, a->opcode == WSLAY_TEXT_FRAME);
		break;
	case WSLAY_PONG:
		if (c->ev->pong)
			c->ev->pong(c, msg, a->msg_length);
		break;
	default:
		break; /* pings are answered by wslay, a close frame is seen by the caller */
	}
}

int cm_ws__framer_init(struct cm_ws_conn *c)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = on_recv,
	    .send_callback = on_send,
	    .on_msg_recv_callback = on_msg,
	};
	wslay_event_context_ptr ctx;

	if (wslay_event_context_server_init(&ctx, &cbs, c) != 0)
		return -ENOMEM;
	wslay_event_config_set_max_recv_msg_length(ctx, c->max_message);
	c->fr.ctx = ctx;
	return 0;
}

void cm_ws__framer_close(struct cm_ws_conn *c)
{
	if (c->fr.ctx)
		wslay_event_context_free(c->fr.ctx);
	c->fr.ctx = NULL;
}

int cm_ws__framer_input(struct cm_ws_conn *c, const char *data, size_t len, size_t *used)
{
	struct cm_ws__framer *f = &c->fr;
	int r;

	f->rp = data;
	f->rn = len;
	r = wslay_event_recv(f->ctx);
	*used = len - f->rn;
	f->rp = NULL;
	f->rn = 0;
	if (f->send_err)
		return f->send_err;
	if (r == WSLAY_ERR_NOMEM)
		return -ENOMEM;
	if (r)
		return -EPROTO; /* a frame error no check here saw coming */
	if (c->st != CM_WS_OPEN && c->st != CM_WS_CLOSING)
		return 0;
	if (f->proto_error) {
		f->proto_error = false;
		f->failed = true;
		r = cm_ws__framer_queue_close(c, CM_WS_PROTOCOL_ERROR, NULL, 0);
		if (r == -ENOMEM)
			return r; /* -ESHUTDOWN: a close frame is on its way already */
	} else if (!wslay_event_get_read_enabled(f->ctx) &&
	           !wslay_event_get_close_received(f->ctx)) {
		f->failed = true; /* wslay queued the close frame (1002, 1007, 1009) */
	}
	return 0;
}

int cm_ws__framer_send(struct cm_ws_conn *c)
{
	struct cm_ws__framer *f = &c->fr;

	while (wslay_event_want_write(f->ctx) && !cm_ws__tx_full(c)) {
		uint64_t before = f->sent;
		int r = wslay_event_send(f->ctx);

		if (r)
			return f->send_err ? f->send_err : r == WSLAY_ERR_NOMEM ? -ENOMEM : -EIO;
		if (f->sent == before)
			break;
	}
	return 0;
}

static int queue_err(int r)
{
	switch (r) {
	case 0:
		return 0;
	case WSLAY_ERR_NO_MORE_MSG:
		return -ESHUTDOWN;
	case WSLAY_ERR_INVALID_ARGUMENT:
		return -EINVAL;
	case WSLAY_ERR_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

int cm_ws__framer_queue(struct cm_ws_conn *c, int opcode, const void *data, size_t len)
{
	struct wslay_event_msg m = {
	    .opcode = (uint8_t)opcode, .msg = data ? data : "", .msg_length = len};

	return queue_err(wslay_event_queue_msg(c->fr.ctx, &m));
}

int cm_ws__framer_queue_close(struct cm_ws_conn *c, int code, const char *reason, size_t len)
{
	return queue_err(wslay_event_queue_close(c->fr.ctx, (uint16_t)code,
	                                         (const uint8_t *)(reason ? reason : ""), len));
}

size_t cm_ws__framer_queued(const struct cm_ws_conn *c)
{
	return c->fr.ctx ? wslay_event_get_queued_msg_length(c->fr.ctx) : 0;
}

bool cm_ws__framer_want_write(const struct cm_ws_conn *c)
{
	return c->fr.ctx && wslay_event_want_write(c->fr.ctx);
}

bool cm_ws__framer_close_sent(const struct cm_ws_conn *c)
{
	return c->fr.ctx && wslay_event_get_close_sent(c->fr.ctx);
}

bool cm_ws__framer_close_received(const struct cm_ws_conn *c)
{
	return c->fr.ctx && wslay_event_get_close_received(c->fr.ctx);
}

int cm_ws__framer_close_code(const struct cm_ws_conn *c)
{
	bool sent = cm_ws__framer_close_sent(c), received = cm_ws__framer_close_received(c);

	if (sent && (c->we_closed || c->fr.failed || !received))
		return wslay_event_get_status_code_sent(c->fr.ctx);
	if (received)
		return wslay_event_get_status_code_received(c->fr.ctx);
	return 0;
}
