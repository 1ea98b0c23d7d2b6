/* cm/ws.h - server-side WebSocket connections (RFC 6455) on a cm_stream, for XMPP over WebSocket
 * (RFC 7395) and the like.
 *
 * The caller accepts a cm_stream from its own cm_listener (TLS or not, its limits, its per-source
 * hook) and hands it to cm_ws_accept(); from then on cm_ws owns the stream's events:
 *   - the opening handshake (RFC 6455 section 4.2): one HTTP/1.1 GET request, read by a strict
 *     parser of our own with a bounded head (max_head) and a deadline (handshake_ms, counted
 *     from the accept, TLS included). A request that is not a valid WebSocket handshake for
 *     this server gets a precise HTTP answer and the connection closes: 400 (malformed, no Host,
 *     no "Connection: Upgrade", a bad Sec-WebSocket-Key, a body, a missing
 *     Sec-WebSocket-Version), 404 (another path than cfg->path), 405 (not GET), 426 Upgrade
 *     Required with "Sec-WebSocket-Version: 13" (no "Upgrade: websocket", or another version),
 *     431 (head over max_head), 505 (not HTTP/1.1). A valid one goes to the open event with the
 *     request target, the subprotocol chosen and the Origin header; open accepts (101 Switching
 *     Protocols, with Sec-WebSocket-Accept and Sec-WebSocket-Protocol) or refuses with the HTTP
 *     status it returns. Extensions (permessage-deflate) are never negotiated;
 *   - framing through wslay: text and binary messages, fragments reassembled, pings answered
 *     with pongs, the close handshake with its status codes. Client frames must be masked
 *     (1002 otherwise); a message over max_message closes with 1009, invalid UTF-8 in a text
 *     message with 1007, any other protocol error with 1002;
 *   - output through cm_stream_write(): frames are handed to the stream until it is full (its
 *     high-water mark); what does not fit waits in cm_ws, up to max_queued bytes, beyond which
 *     a send fails with -ENOBUFS and the caller decides (drop, or close). While the stream is
 *     full the peer's input is not read either, so a peer that does not read cannot make the
 *     server queue answers to its pings without bound.
 *
 * Security, for browsers: a browser lets any web page open a WebSocket to any server, with the
 * user's cookies and client certificates. The Origin header names the page that asked; cm_ws
 * hands it to the open event and does not judge it. A server that relies on ambient
 * credentials (cookies, TLS client certificates, IP allow-lists) must refuse unknown origins
 * there (403). XMPP over WebSocket authenticates with SASL inside the connection, which a
 * foreign page cannot do without the user's password, so xmpp-core may accept any origin; it
 * should still refuse a missing subprotocol (RFC 7395 section 3.1).
 *
 * Events: open, message, pong, writable and timeout may call any function of this module on the
 * connection, including closing, aborting or exporting it (after an abort the rest of the input
 * is dropped, an export takes it along). closed comes last and exactly once for every connection
 * cm_ws_accept() or cm_ws_import() returned (also when the handshake failed and open never ran);
 * the connection is freed when it returns. No event comes from within a call of this module.
 *
 * Threading: a connection belongs to the loop of its stream; cm_ws_export() / cm_ws_import()
 * move it to another loop between two messages.
 *
 * Limits (per connection): the request head (max_head) while handshaking, then the message being
 * received (max_message, held once by wslay and once more to hand it over whole), the output
 * waiting for room in the stream (max_queued) plus what the stream holds (its high-water mark
 * and one 16 KiB write: the stream's max_unsent must leave that much above its high-water mark,
 * as cm_stream's defaults do), and at most one read of input kept while the output is stuck.
 */
#ifndef CM_WS_H
#define CM_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_loop;
struct cm_stream;
struct cm_ws_conn;
struct cm_ws_parcel;

/* Close codes (RFC 6455 section 7.4.1) that the suite uses by name. */
#define CM_WS_NORMAL         1000
#define CM_WS_GOING_AWAY     1001
#define CM_WS_PROTOCOL_ERROR 1002
#define CM_WS_NO_STATUS      1005 /* received only: the peer's close frame had no code */
#define CM_WS_INVALID_DATA   1007 /* a text message that is not UTF-8 */
#define CM_WS_POLICY         1008
#define CM_WS_TOO_BIG        1009
#define CM_WS_INTERNAL       1011

/* Zero means "the default" for every number. The struct and what it points to are borrowed
 * until the closed event of every connection given it (keep it with the listener). */
struct cm_ws_config {
	/* The path served ("/xmpp-websocket"), compared byte for byte with the part of the
	 * request target before any '?'. NULL: any path. */
	const char *path;
	/* The subprotocols the server speaks, in its order of preference, ended by NULL ({"xmpp",
	 * NULL}); NULL: none. The first of them the client offers is chosen. */
	const char *const *protocols;
	size_t max_head;       /* request line and headers; 8 KiB */
	uint64_t handshake_ms; /* from the accept to a complete request head; 10 s */
	size_t max_message;    /* a received message, all its fragments together; 256 KiB */
	size_t max_queued;     /* output waiting for room in the stream; 1 MiB */
	uint64_t close_ms;     /* once a close frame is queued, the most the close may take; 5 s */
	const char *log_mod;   /* static string: the log module; "ws" */
};

struct cm_ws_events {
	/* A valid handshake. Return 0 to accept (the 101 answer goes out; messages may be sent
	 * once open has returned), or an HTTP status from 400 to 599 to refuse (403 for a foreign
	 * origin, 400 for a missing subprotocol...; anything else counts as 500): the answer goes
	 * out and the connection closes. target is the request target as sent (path and query),
	 * protocol the subprotocol chosen (NULL: the client offered none of cfg->protocols), origin
	 * the Origin header (NULL when absent; see the security note above). All borrowed for the
	 * call. NULL: accept every valid handshake. */
	int (*open)(struct cm_ws_conn *c, const char *target, const char *protocol,
	            const char *origin);
	/* A whole message (fragments reassembled), borrowed for the call and not NUL-terminated;
	 * text is valid UTF-8. Not called once the server has started closing (cm_ws_close()).
	 * Required. */
	void (*message)(struct cm_ws_conn *c, const char *data, size_t len, bool text);
	/* A pong arrived (the answer to cm_ws_ping(), or unsolicited). May be NULL. */
	void (*pong)(struct cm_ws_conn *c, const char *data, size_t len);
	/* The output was held back (the stream was full, or a send failed with -ENOBUFS) and has
	 * all gone to the stream, which fell under its low-water mark. May be NULL. */
	void (*writable)(struct cm_ws_conn *c);
	/* The timer of cm_ws_timer() expired. NULL: close with 1001 (going away). */
	void (*timeout)(struct cm_ws_conn *c);
	/* The connection is over. code is 1000..4999 when a close frame went either way: the
	 * code of whoever closed first (the peer's, 1005 when its frame had none; the server's,
	 * from cm_ws_close() or a protocol error: 1002, 1007, 1009). Otherwise a negative errno:
	 * -ECONNRESET (the peer went away without a close frame), -ETIMEDOUT (no complete
	 * handshake in time), -EPROTO (the request was not a valid handshake and was answered
	 * with an HTTP error), -ECONNREFUSED (open refused it), what cm_ws_abort() was given, or
	 * the stream's error. The connection is freed when this returns. Required. */
	void (*closed)(struct cm_ws_conn *c, int code);
};

/* Serve a WebSocket handshake, then the connection, on s: a stream just accepted from a
 * cm_listener, not started (or started by the caller with nothing read yet). s is handed over,
 * also on failure (it is then aborted); cfg, ev and data are borrowed until the closed event.
 * *out is the connection, whose events follow (never from within this call). 0, -EINVAL (no
 * message or closed event), -ENOMEM. */
int cm_ws_accept(struct cm_ws_conn **out, struct cm_stream *s, const struct cm_ws_config *cfg,
                 const struct cm_ws_events *ev, void *data);

/* Send a message (copied). Text must be valid UTF-8. 0, -EINVAL (text that is not UTF-8),
 * -EMSGSIZE (len over max_queued: never sendable), -ENOBUFS (the output waiting would pass
 * max_queued: nothing queued; the writable event follows), -ENOTCONN (the handshake is not
 * accepted yet), -ESHUTDOWN (closing), -ENOMEM. */
int cm_ws_send_text(struct cm_ws_conn *c, const char *data, size_t len);
int cm_ws_send_binary(struct cm_ws_conn *c, const void *data, size_t len);

/* Send a ping with up to 125 bytes of data (copied); the pong event brings the answer. Errors
 * as for cm_ws_send_text(), -EINVAL for data over 125 bytes. */
int cm_ws_ping(struct cm_ws_conn *c, const void *data, size_t len);

/* Start the close handshake: a close frame with code and reason (NULL, or up to 123 bytes of
 * UTF-8), sent after the messages queued before it, then wait for the peer's close frame; the
 * TCP connection closes after it (the server closes first, RFC 6455 section 7.1.1), or after
 * close_ms in all. Messages arriving meanwhile are dropped. code 0 sends a close frame without a
 * code (reason must then be NULL). 0, -EINVAL (a code one may not send: 1004-1006, 1015, under
 * 1000, 1012-2999, over 4999; a reason too long or not UTF-8), -ENOTCONN (handshake not accepted:
 * use cm_ws_abort()), -ESHUTDOWN (closing already), -ENOMEM. */
int cm_ws_close(struct cm_ws_conn *c, int code, const char *reason);

/* Close at once, without a close frame: queued output is dropped. err is what the closed event
 * reports (unless a close frame already went either way). Any state; a no-op once closing has
 * been aborted already. */
void cm_ws_abort(struct cm_ws_conn *c, int err);

/* Arm the connection's timer (an idle timeout, a keep-alive ping): the timeout event after ms
 * (0 disarms). While open; from the open event it is armed once the connection is open (a
 * deadline for the first message). Not while closing: the handshake and the close use the same
 * timer for their own deadlines. */
void cm_ws_timer(struct cm_ws_conn *c, uint64_t ms);

/* Stop reading the peer (a rate limit), and start again: frames already read wait, and are
 * handed over from the loop after the resume, never from within it. Only while open or closing;
 * independent of the pause cm_ws makes itself while its output is stuck. */
void cm_ws_pause(struct cm_ws_conn *c);
void cm_ws_resume(struct cm_ws_conn *c);

/* Output not yet on the wire: what waits in cm_ws and what the stream has not sent. */
size_t cm_ws_queued(const struct cm_ws_conn *c);

void *cm_ws_data(const struct cm_ws_conn *c);
void cm_ws_set_data(struct cm_ws_conn *c, void *data);
/* The stream underneath (borrowed; for its address, TLS session, channel binding). Do not read,
 * write, pause or close it directly. NULL once the stream has closed. */
struct cm_stream *cm_ws_stream(const struct cm_ws_conn *c);
/* The peer's address for logs ("192.0.2.1:443"). */
const char *cm_ws_peer_name(const struct cm_ws_conn *c);
/* TLS established underneath. */
bool cm_ws_secured(const struct cm_ws_conn *c);
/* The subprotocol chosen ("" when none); borrowed until the connection is freed. */
const char *cm_ws_protocol(const struct cm_ws_conn *c);

/* --- moving a connection to another loop ------------------------------------------------------
 * Like cm_stream_export() / cm_stream_import(), at a message boundary: the stream (socket, TLS
 * session) and the subprotocol go over, with the input that arrived after the last whole
 * message and has not been parsed yet; wslay's state does not (a new context is made on the
 * destination, nothing being half-way). The caller's own state goes in its own cm_msg. */

/* On c's loop, typically from the message event that completes authentication: take the
 * connection out of c into *out. On success c is gone (no closed event; do not use it again).
 * 0; -EAGAIN when a frame or a fragmented message is part-way in, or output is not all on the
 * wire yet (try again after the next message or writable event); -EINVAL (not open: still
 * handshaking, closing, or an in-memory test connection); -EMFILE, -ENOMEM. */
int cm_ws_export(struct cm_ws_conn *c, struct cm_ws_parcel **out);

/* On the destination loop l, from its thread: a connection carrying the parcel's, open, with
 * the events ev (cfg and data borrowed as for cm_ws_accept()). Input that came with the parcel
 * is handled from the loop, never from within this call. The parcel is consumed, even on
 * failure (the connection is then closed without a closed event). 0, -ENOMEM, -ESHUTDOWN (l is
 * closing), or a libuv error. */
int cm_ws_import(struct cm_ws_conn **out, struct cm_loop *l, struct cm_ws_parcel *p,
                 const struct cm_ws_config *cfg, const struct cm_ws_events *ev, void *data);

/* Drop a parcel that will not be imported: the connection is closed. Accepts NULL. */
void cm_ws_parcel_free(struct cm_ws_parcel *p);

#endif
