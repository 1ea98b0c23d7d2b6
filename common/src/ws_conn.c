/* ws_conn.c - a WebSocket connection (cm/ws.h): the handshake on its stream, then input,
 * back-pressure and closing, and the calls of the API. The request parser is ws_handshake.c's,
 * frames are ws_frame.c's, moving between loops ws_move.c's. */
#include "ws_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/stream.h"
#include "cm/utf8.h"

static void frame_input(struct cm_ws_conn *c, const char *data, size_t len);

/* --- the transport: the stream, or memory ----------------------------------------------------- */

int cm_ws__tx_write(struct cm_ws_conn *c, const void *data, size_t len)
{
	if (c->mem)
		return cm_buf_append(&c->mem_out, data, len);
	return c->s ? cm_stream_write(c->s, data, len) : -ESHUTDOWN;
}

bool cm_ws__tx_full(const struct cm_ws_conn *c)
{
	return c->s && cm_stream_full(c->s);
}

static void tx_timer(struct cm_ws_conn *c, uint64_t ms)
{
	if (c->s)
		cm_stream_timer(c->s, ms);
}

/* End the connection: gracefully (what is queued goes out first, see cm_stream_close()) or at
 * once. err is what the closed event reports when no close frame went either way. */
static void tx_end(struct cm_ws_conn *c, int err, bool now)
{
	if (c->st == CM_WS_MOVED || c->st == CM_WS_GONE || (c->st == CM_WS_DONE && !now))
		return;
	c->st = CM_WS_DONE;
	if (!c->err)
		c->err = err;
	if (!c->s)
		return;
	if (now)
		cm_stream_abort(c->s, err, false);
	else
		cm_stream_close(c->s, err);
}

static bool open_or_closing(const struct cm_ws_conn *c)
{
	return c->st == CM_WS_OPEN || c->st == CM_WS_CLOSING;
}

/* --- life and death --------------------------------------------------------------------------- */

struct cm_ws_conn *cm_ws__conn_new(const struct cm_ws_config *cfg, const struct cm_ws_events *ev,
                                   void *data)
{
	struct cm_ws_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = cfg;
	c->ev = ev;
	c->data = data;
	c->log_mod = cfg->log_mod ? cfg->log_mod : "ws";
	c->max_head = cfg->max_head ? cfg->max_head : CM_WS_DEF_MAX_HEAD;
	c->handshake_ms = cfg->handshake_ms ? cfg->handshake_ms : CM_WS_DEF_HANDSHAKE_MS;
	c->max_message = cfg->max_message ? cfg->max_message : CM_WS_DEF_MAX_MESSAGE;
	c->max_queued = cfg->max_queued ? cfg->max_queued : CM_WS_DEF_MAX_QUEUED;
	c->close_ms = cfg->close_ms ? cfg->close_ms : CM_WS_DEF_CLOSE_MS;
	c->st = CM_WS_HANDSHAKE;
	c->kick.fn = cm_ws__kick;
	cm_buf_init(&c->in, 0);
	cm_buf_init(&c->mem_out, 0);
	snprintf(c->peer, sizeof(c->peer), "-");
	return c;
}

void cm_ws__conn_free(struct cm_ws_conn *c)
{
	if (!c)
		return;
	cm_ws__framer_close(c);
	cm_buf_free(&c->in);
	cm_buf_free(&c->mem_out);
	free(c->protocol);
	free(c);
}

void cm_ws__leave(struct cm_ws_conn *c)
{
	if (--c->depth == 0 && c->st == CM_WS_MOVED && !c->kicking)
		cm_ws__conn_free(c);
}

static bool events_ok(const struct cm_ws_config *cfg, const struct cm_ws_events *ev)
{
	return cfg && ev && ev->message && ev->closed;
}

int cm_ws_accept(struct cm_ws_conn **out, struct cm_stream *s, const struct cm_ws_config *cfg,
                 const struct cm_ws_events *ev, void *data)
{
	struct cm_ws_conn *c;

	*out = NULL;
	if (!events_ok(cfg, ev)) {
		cm_stream_abort(s, -EINVAL, false);
		return -EINVAL;
	}
	c = cm_ws__conn_new(cfg, ev, data);
	if (!c) {
		cm_stream_abort(s, -ENOMEM, false);
		return -ENOMEM;
	}
	c->s = s;
	snprintf(c->peer, sizeof(c->peer), "%s", cm_stream_peer_name(s));
	cm_stream_start(s, &cm_ws__stream_events, c);
	cm_stream_timer(s, c->handshake_ms);
	*out = c;
	return 0;
}

/* --- output and closing ----------------------------------------------------------------------- */

/* Hand what wslay holds to the stream; end the connection once the close handshake is over
 * (the server closes the TCP connection first: RFC 6455 section 7.1.1), or once the close frame
 * that fails it went out (section 7.1.7). */
static void progress(struct cm_ws_conn *c)
{
	int r;

	if (!open_or_closing(c))
		return;
	r = cm_ws__framer_send(c);
	if (r == 0 && c->close_pending && !cm_ws__framer_want_write(c)) {
		c->close_pending = false;
		r = cm_ws__framer_queue_close(c, c->close_code, c->close_reason, c->close_len);
		if (r == -ESHUTDOWN)
			r = 0; /* the peer's close frame came first and was answered */
		r = r ? r : cm_ws__framer_send(c);
	}
	if (r) {
		CM_LOGD(c->log_mod, "%s: write failed: %d", c->peer, r);
		tx_end(c, r, true);
		return;
	}
	if (c->st == CM_WS_CLOSING && cm_ws__framer_close_sent(c) &&
	    (cm_ws__framer_close_received(c) || c->fr.failed))
		tx_end(c, 0, false);
}

/* After input: the peer's close frame, or a protocol error, starts closing. */
static void after_input(struct cm_ws_conn *c)
{
	if (!open_or_closing(c))
		return;
	if (c->st == CM_WS_OPEN && (c->fr.failed || cm_ws__framer_close_received(c))) {
		if (c->fr.failed)
			CM_LOGD(c->log_mod, "%s: protocol error: closing", c->peer);
		c->st = CM_WS_CLOSING;
		tx_timer(c, c->close_ms); /* for our close frame to get out */
	}
	progress(c);
}

static int send_msg(struct cm_ws_conn *c, int opcode, const void *data, size_t len)
{
	int r;

	if (c->st == CM_WS_HANDSHAKE)
		return -ENOTCONN;
	if (c->st != CM_WS_OPEN)
		return -ESHUTDOWN;
	if (len > c->max_queued)
		return -EMSGSIZE;
	/* make room first: what is left waiting after this waits for the stream's room */
	progress(c);
	if (c->st != CM_WS_OPEN)
		return -ESHUTDOWN;
	if (cm_ws__framer_queued(c) + len > c->max_queued)
		return -ENOBUFS;
	r = cm_ws__framer_queue(c, opcode, data, len);
	if (r)
		return r;
	progress(c);
	return 0;
}

int cm_ws_send_text(struct cm_ws_conn *c, const char *data, size_t len)
{
	if (!cm_utf8_valid(data, len))
		return -EINVAL;
	return send_msg(c, 1, data, len);
}

int cm_ws_send_binary(struct cm_ws_conn *c, const void *data, size_t len)
{
	return send_msg(c, 2, data, len);
}

int cm_ws_ping(struct cm_ws_conn *c, const void *data, size_t len)
{
	if (len > 125)
		return -EINVAL;
	return send_msg(c, 9, data, len);
}

/* Codes an endpoint may send (RFC 6455 section 7.4); 0 is a close frame without one. */
static bool sendable_code(int code)
{
	return code == 0 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

int cm_ws_close(struct cm_ws_conn *c, int code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;
	int r;

	if (c->st == CM_WS_HANDSHAKE)
		return -ENOTCONN;
	if (c->st != CM_WS_OPEN)
		return -ESHUTDOWN;
	if (!sendable_code(code) || n > 123 || (code == 0 && reason) || !cm_utf8_valid(reason, n))
		return -EINVAL;
	progress(c);
	if (c->st != CM_WS_OPEN)
		return -ESHUTDOWN;
	if (cm_ws__framer_want_write(c)) {
		/* after the messages still waiting for room in the stream */
		c->close_pending = true;
		c->close_code = code;
		c->close_len = n;
		if (n)
			memcpy(c->close_reason, reason, n);
	} else {
		r = cm_ws__framer_queue_close(c, code, reason, n);
		if (r)
			return r;
	}
	c->we_closed = true;
	c->st = CM_WS_CLOSING;
	tx_timer(c, c->close_ms);
	progress(c);
	return 0;
}

void cm_ws_abort(struct cm_ws_conn *c, int err)
{
	tx_end(c, err, true);
}

void cm_ws_timer(struct cm_ws_conn *c, uint64_t ms)
{
	if (c->st == CM_WS_OPEN)
		tx_timer(c, ms);
	else if (c->st == CM_WS_HANDSHAKE)
		c->open_timer_ms = ms; /* from the open event: the handshake's deadline runs now */
}

/* --- the handshake ---------------------------------------------------------------------------- */

static void refuse(struct cm_ws_conn *c, int status, const char *why, bool versions, int err)
{
	struct cm_buf b;

	CM_LOGD(c->log_mod, "%s: handshake refused: %d, %s", c->peer, status, why);
	cm_buf_init(&b, 0);
	if (cm_ws__answer_refuse(&b, status, why, versions) == 0)
		(void)cm_ws__tx_write(c, b.data, b.len);
	cm_buf_free(&b);
	tx_end(c, err, false);
}

/* Drop the first n bytes of c->in; an empty buffer gives its memory back (an idle connection
 * holds none). */
static void in_consume(struct cm_ws_conn *c, size_t n)
{
	if (n >= c->in.len) {
		cm_buf_free(&c->in);
		return;
	}
	memmove(c->in.data, c->in.data + n, c->in.len - n);
	c->in.len -= n;
	c->in.data[c->in.len] = '\0';
}

static void hs_input(struct cm_ws_conn *c, const char *data, size_t len)
{
	size_t from = c->in.len > 3 ? c->in.len - 3 : 0, end;
	struct cm_ws__req req;
	struct cm_buf b;
	int status, r;

	if (cm_buf_append(&c->in, data, len) != 0) {
		tx_end(c, -ENOMEM, true);
		return;
	}
	end = cm_ws__head_end(c->in.data, c->in.len, from);
	if (end > c->max_head || (!end && c->in.len > c->max_head)) {
		refuse(c, 431, "request head too large", false, -EPROTO);
		return;
	}
	if (!end)
		return;
	status = cm_ws__parse_request(c->in.data, end, c->cfg->protocols, c->cfg->path, &req);
	if (status) {
		refuse(c, status, req.why, req.bad_version, -EPROTO);
		return;
	}
	r = cm_ws__framer_init(c);
	if (r == 0 && req.protocol >= 0) {
		c->protocol = strdup(c->cfg->protocols[req.protocol]);
		if (!c->protocol)
			r = -ENOMEM;
	}
	if (r) {
		refuse(c, 500, "out of memory", false, r);
		return;
	}
	if (c->ev->open) {
		status = c->ev->open(c, req.target, c->protocol, req.origin);
		if (c->st != CM_WS_HANDSHAKE)
			return; /* aborted from the event */
		if (status) {
			refuse(c, status >= 400 && status <= 599 ? status : 500, "refused", false,
			       -ECONNREFUSED);
			return;
		}
	}
	cm_buf_init(&b, 0);
	r = cm_ws__answer_accept(&b, req.key, c->protocol);
	r = r ? r : cm_ws__tx_write(c, b.data, b.len);
	cm_buf_free(&b);
	if (r) {
		tx_end(c, r, true);
		return;
	}
	c->st = CM_WS_OPEN;
	tx_timer(c, c->open_timer_ms);
	/* a client need not wait for the 101 before its first frames */
	in_consume(c, end);
	if (c->in.len)
		frame_input(c, NULL, 0);
}

/* --- input ------------------------------------------------------------------------------------ */

/* Hand input to wslay: what c->in holds first, then data (borrowed). What wslay does not take
 * now (the output is stuck, a partial header) is kept in c->in. */
static bool held(const struct cm_ws_conn *c)
{
	return c->in_paused || c->user_paused;
}

static void frame_input(struct cm_ws_conn *c, const char *data, size_t len)
{
	bool own = c->in.len > 0 || held(c);
	size_t used;
	int r;

	if (own && len && cm_buf_append(&c->in, data, len) != 0) {
		tx_end(c, -ENOMEM, true);
		return;
	}
	if (held(c))
		return;
	if (own) {
		data = c->in.data;
		len = c->in.len;
	}
	r = cm_ws__framer_input(c, data, len, &used);
	if (r) {
		tx_end(c, r, true);
		return;
	}
	if (!open_or_closing(c))
		return; /* closed, aborted or moved from an event */
	if (own) {
		in_consume(c, used);
	} else if (used < len && cm_buf_append(&c->in, data + used, len - used) != 0) {
		tx_end(c, -ENOMEM, true);
		return;
	}
	if (held(c) && c->s)
		cm_stream_pause(c->s);
	after_input(c);
}

/* Input kept in c->in is handed over from the loop (after an import). */
void cm_ws__kick(struct cm_loop *l, struct cm_msg *m)
{
	struct cm_ws_conn *c = cm_list_entry(m, struct cm_ws_conn, kick);

	c->kicking = false;
	if (c->st == CM_WS_GONE || c->st == CM_WS_MOVED) {
		cm_ws__conn_free(c);
		return;
	}
	if (cm_loop_stopping(l) || !open_or_closing(c) || held(c) || !c->in.len)
		return;
	c->depth++;
	frame_input(c, NULL, 0);
	cm_ws__leave(c);
}

/* --- the stream's events ---------------------------------------------------------------------- */

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct cm_ws_conn *c = cm_stream_data(s);

	c->depth++;
	if (c->st == CM_WS_HANDSHAKE)
		hs_input(c, data, len);
	else if (open_or_closing(c))
		frame_input(c, data, len);
	cm_ws__leave(c);
}

static void on_eof(struct cm_stream *s)
{
	struct cm_ws_conn *c = cm_stream_data(s);

	c->depth++;
	progress(c); /* the answer to the peer's close frame may still be on its way */
	tx_end(c, -ECONNRESET, false);
	cm_ws__leave(c);
}

static void on_writable(struct cm_stream *s)
{
	struct cm_ws_conn *c = cm_stream_data(s);

	c->depth++;
	progress(c);
	if (open_or_closing(c) && c->in_paused && !cm_ws__tx_full(c)) {
		c->in_paused = false;
		if (c->in.len && !c->user_paused)
			frame_input(c, NULL, 0);
		if (open_or_closing(c) && !held(c))
			cm_stream_resume(c->s);
	}
	if (c->st == CM_WS_OPEN && !cm_ws__framer_want_write(c) && !cm_ws__tx_full(c) &&
	    c->ev->writable)
		c->ev->writable(c);
	cm_ws__leave(c);
}

static void on_timeout(struct cm_stream *s)
{
	struct cm_ws_conn *c = cm_stream_data(s);

	c->depth++;
	switch (c->st) {
	case CM_WS_HANDSHAKE:
		CM_LOGD(c->log_mod, "%s: no handshake in time", c->peer);
		tx_end(c, -ETIMEDOUT, true);
		break;
	case CM_WS_OPEN:
		if (c->ev->timeout)
			c->ev->timeout(c);
		else
			(void)cm_ws_close(c, CM_WS_GOING_AWAY, NULL);
		break;
	case CM_WS_CLOSING:
		CM_LOGD(c->log_mod, "%s: close not done in time", c->peer);
		tx_end(c, -ETIMEDOUT, true);
		break;
	default:
		break;
	}
	cm_ws__leave(c);
}

static void on_closed(struct cm_stream *s, int err)
{
	struct cm_ws_conn *c = cm_stream_data(s);
	int code = cm_ws__framer_close_code(c);

	c->secured = cm_stream_secured(s);
	c->s = NULL;
	c->st = CM_WS_GONE;
	c->ev->closed(c, code ? code : err ? err : c->err);
	if (!c->kicking)
		cm_ws__conn_free(c);
}

const struct cm_stream_events cm_ws__stream_events = {
    .read = on_read,
    .eof = on_eof,
    .writable = on_writable,
    .timeout = on_timeout,
    .closed = on_closed,
};

/* --- in-memory connections -------------------------------------------------------------------- */

int cm_ws__mem_alloc(struct cm_ws_conn **out, const struct cm_ws_config *cfg,
                     const struct cm_ws_events *ev, void *data)
{
	*out = NULL;
	if (!events_ok(cfg, ev))
		return -EINVAL;
	*out = cm_ws__conn_new(cfg, ev, data);
	if (!*out)
		return -ENOMEM;
	(*out)->mem = true;
	return 0;
}

void cm_ws__mem_input(struct cm_ws_conn *c, const char *data, size_t len)
{
	c->depth++;
	if (c->st == CM_WS_HANDSHAKE)
		hs_input(c, data, len);
	else if (open_or_closing(c))
		frame_input(c, data, len);
	c->depth--;
}

void cm_ws__mem_free(struct cm_ws_conn *c)
{
	int code;

	if (!c)
		return;
	code = cm_ws__framer_close_code(c);
	c->st = CM_WS_GONE;
	c->ev->closed(c, code ? code : c->err);
	cm_ws__conn_free(c);
}

/* --- accessors -------------------------------------------------------------------------------- */

size_t cm_ws_queued(const struct cm_ws_conn *c)
{
	return (c->s ? cm_stream_unsent(c->s) : 0) + cm_ws__framer_queued(c);
}

void *cm_ws_data(const struct cm_ws_conn *c)
{
	return c->data;
}

void cm_ws_set_data(struct cm_ws_conn *c, void *data)
{
	c->data = data;
}

struct cm_stream *cm_ws_stream(const struct cm_ws_conn *c)
{
	return c->s;
}

const char *cm_ws_peer_name(const struct cm_ws_conn *c)
{
	return c->peer;
}

bool cm_ws_secured(const struct cm_ws_conn *c)
{
	return c->s ? cm_stream_secured(c->s) : c->secured;
}

const char *cm_ws_protocol(const struct cm_ws_conn *c)
{
	return c->protocol ? c->protocol : "";
}

/* --- the caller's pause ----------------------------------------------------------------------- */

void cm_ws_pause(struct cm_ws_conn *c)
{
	if (!open_or_closing(c) || c->user_paused)
		return;
	c->user_paused = true;
	if (c->s)
		cm_stream_pause(c->s);
}

void cm_ws_resume(struct cm_ws_conn *c)
{
	if (!c->user_paused)
		return;
	c->user_paused = false;
	if (!open_or_closing(c) || c->in_paused || !c->s)
		return;
	cm_stream_resume(c->s);
	/* what arrived meanwhile is handed over from the loop, never from within this call */
	if (c->in.len && !c->kicking && cm_loop_post(cm_stream_loop(c->s), &c->kick) == 0)
		c->kicking = true;
}
