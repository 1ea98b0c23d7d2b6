/* cm/stream.h - the suite's one TCP stream, with TLS now, later (STARTTLS) or never.
 *
 * A cm_stream carries bytes for a protocol (HTTP, XMPP, STUN, an HTTP/2 client) and does the
 * rest the same way for all of them:
 *   - accepted (cm/listener.h) or outgoing (cm_stream_connect(): a name is resolved and its
 *     addresses tried in turn, sharing the connect timeout);
 *   - TLS through cm_tls_conn: at once, or from cm_stream_starttls() on;
 *   - input: each read is handed over as plaintext and must be consumed (or copied) by the
 *     read event; cm_stream_pause() / cm_stream_resume() stop and restart reading. The read
 *     buffers belong to the loop (cm/loop.h), not to the stream: an idle stream holds none;
 *   - output: cm_stream_write() copies into the stream's queue; the queue goes to the socket
 *     (as TLS records when secured) once per loop turn, after the turn's I/O, or at once with
 *     cm_stream_flush(). Unsent bytes above the high-water mark make the stream report itself
 *     full (the writable event comes once they fall under the low-water mark); above max_unsent
 *     a write is refused with -ENOBUFS and the protocol decides: drop it, or close;
 *   - deadlines on the loop's timer wheel: the TLS handshake, connecting, lingering on close,
 *     and one timer for the protocol (idle, a message that never completes);
 *   - one error policy: a failed read, write, TLS session or connect closes the stream at once,
 *     and the closed event carries the first error. A protocol never sees a half-dead stream.
 *   - closing: cm_stream_close() sends what is queued (and a TLS close_notify), shuts the write
 *     side down and reads until the peer closes too, for at most linger_ms, so that a last
 *     answer is not lost to a reset; cm_stream_abort() drops everything at once.
 *
 * The closed event is the last one and comes exactly once, from a libuv close callback; the
 * stream's memory is freed right after it returns. Every other event may call any function of
 * this module on the stream, including closing it; a function called on a stream that is
 * closing does nothing (writes fail with -ESHUTDOWN).
 *
 * Single-threaded: a stream belongs to the loop it was made on.
 */
#ifndef CM_STREAM_H
#define CM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct cm_loop;
struct cm_stream;
struct cm_tls;

struct cm_stream_events {
	/* Plaintext arrived, borrowed for the call: take it all, copying what cannot be used now.
	 * Required. */
	void (*read)(struct cm_stream *s, const char *data, size_t len);
	/* The peer will send no more (TCP FIN or TLS close_notify); reading has stopped and
	 * writing may go on. NULL: close the stream. */
	void (*eof)(struct cm_stream *s);
	/* An outgoing stream is connected (and secured, when TLS was asked for at once). */
	void (*connected)(struct cm_stream *s);
	/* The TLS handshake completed (a server stream with TLS at once, or after STARTTLS). */
	void (*secured)(struct cm_stream *s);
	/* Unsent output fell under the low-water mark after having reached the high one. */
	void (*writable)(struct cm_stream *s);
	/* The protocol's timer (cm_stream_timer()) expired. NULL: close with -ETIMEDOUT. */
	void (*timeout)(struct cm_stream *s);
	/* The stream is over; err is why: 0 after cm_stream_close() on a healthy stream, else the
	 * first failure (-ECONNRESET when the peer went away, -ETIMEDOUT, -EPROTO for TLS, ...).
	 * The stream is freed when this returns. Required. */
	void (*closed)(struct cm_stream *s, int err);
};

struct cm_stream_opts {
	struct cm_tls *tls;      /* borrowed; TLS from the start (server or client side) */
	const char *server_name; /* client TLS: SNI and the name verified; copied */
	uint64_t connect_ms;     /* outgoing: resolution + TCP + TLS; 0: 10 s */
	uint64_t handshake_ms;   /* TLS handshake (at once or STARTTLS); 0: 10 s */
	uint64_t linger_ms;      /* graceful close; 0: 2 s */
	size_t high_water;       /* unsent bytes that make the stream full; 0: 256 KiB */
	size_t low_water;        /* ...and writable again under; 0: high_water / 4 */
	size_t max_unsent;       /* writes beyond this fail with -ENOBUFS (once what is queued
	                          * was offered to the kernel); 0: 4 * high_water */
	bool nodelay;            /* TCP_NODELAY (default off: set it for request/response) */
	const char *log_mod;     /* borrowed (static string): the log module for this stream */
};

/* Connect to host:port (a name or an address literal): resolve, try each address in turn with
 * its share of the time left, then run TLS when opts->tls is set. The connected or closed event
 * follows, never from within this call. ev, data and opts->tls are borrowed until the closed
 * event. 0, -EINVAL, -ENOMEM. */
int cm_stream_connect(struct cm_stream **out, struct cm_loop *l, const char *host, uint16_t port,
                      const struct cm_stream_opts *opts, const struct cm_stream_events *ev,
                      void *data);

/* Take over an accepted connection from server (a listening uv_tcp_t on l's loop). opts->tls
 * makes it a TLS server stream. Used by cm_listener; 0, -ENOMEM or a libuv error (nothing
 * accepted then: the caller retries later). Events come only once cm_stream_start() is called. */
int cm_stream_accept(struct cm_stream **out, struct cm_loop *l, uv_stream_t *server,
                     const struct cm_stream_opts *opts);

/* Give an accepted stream its events and start reading. */
void cm_stream_start(struct cm_stream *s, const struct cm_stream_events *ev, void *data);

/* Start TLS on a plaintext stream (STARTTLS): output already queued goes out in the clear
 * first; from now on everything is encrypted. Plaintext read after the request that asked for
 * it must not be processed (the protocol forbids it): the stream drops the rest of the current
 * read. A server stream uses tls's server context, a client stream sends its ClientHello
 * (server_name as in the options). The secured event follows. 0, -EALREADY (TLS already),
 * -ENOMEM, -EINVAL. */
int cm_stream_starttls(struct cm_stream *s, struct cm_tls *tls, const char *server_name);

/* Queue len bytes (copied). 0, -ENOBUFS (over max_unsent: nothing queued), -ENOMEM (the stream
 * is being closed), -ESHUTDOWN (closing). */
int cm_stream_write(struct cm_stream *s, const void *data, size_t len);

/* Send what is queued now instead of at the end of the turn. */
void cm_stream_flush(struct cm_stream *s);

/* Bytes queued and not yet written to the socket (plaintext queued, TLS records, libuv queue). */
size_t cm_stream_unsent(const struct cm_stream *s);

/* True once unsent bytes reached the high-water mark, until they fall under the low one. */
bool cm_stream_full(const struct cm_stream *s);

void cm_stream_pause(struct cm_stream *s);
/* Resume reading; plaintext already decrypted and waiting is handed over from the loop's end of
 * turn, never from within this call. */
void cm_stream_resume(struct cm_stream *s);

/* Give back the memory of buffers an idle stream keeps for reuse (its plaintext queue's
 * capacity, TLS's BIO and buffers). For a protocol's idle timer: a connection that stays open for
 * hours without traffic then costs little more than its TLS session. Nothing is lost: a stream
 * with bytes still waiting is left as it is. */
void cm_stream_trim(struct cm_stream *s);

/* Arm the protocol's timer: the timeout event after ms (0 disarms). */
void cm_stream_timer(struct cm_stream *s, uint64_t ms);

/* Graceful close (see above); err is what the closed event will report if nothing fails first. */
void cm_stream_close(struct cm_stream *s, int err);
/* Close at once: queued output is dropped; rst sends a TCP reset (SO_LINGER 0) instead of FIN. */
void cm_stream_abort(struct cm_stream *s, int err, bool rst);

/* --- moving a stream to another loop ---------------------------------------------------------
 * A connection accepted on one loop can be handed to another (xmpp-core moves a client to the
 * loop that owns its user once it has authenticated): the socket, the TLS session and what the
 * peer has sent and TLS holds go over; the protocol's own state is the caller's to send along
 * (in the same cm_msg, typically). The stream must be open, past its TLS handshake, with nothing
 * left to send: export flushes first and answers -EAGAIN while output is still on its way (try
 * again from the writable event). */
struct cm_stream_parcel;

/* On s's loop: take the connection out of s into *out; s is closed without its closed event
 * (and without a TCP close: the socket lives on in the parcel). 0, -EAGAIN (output still
 * unsent), -EINVAL (closing, connecting, or TLS still in its handshake), -EMFILE, -ENOMEM. */
int cm_stream_export(struct cm_stream *s, struct cm_stream_parcel **out);

/* On the destination loop l: a stream carrying the parcel's connection, reading at once (input
 * TLS already holds comes at the end of the turn), with events ev and data. The parcel is
 * consumed, even on failure (the connection is then closed). 0, -ENOMEM, or a libuv error. */
int cm_stream_import(struct cm_stream **out, struct cm_loop *l, struct cm_stream_parcel *p,
                     const struct cm_stream_events *ev, void *data);

/* Drop a parcel that will not be imported: the connection is closed. Accepts NULL. */
void cm_stream_parcel_free(struct cm_stream_parcel *p);

/* --- what a protocol asks of its stream --------------------------------------------------------
 */
void *cm_stream_data(const struct cm_stream *s);
void cm_stream_set_data(struct cm_stream *s, void *data);
struct cm_loop *cm_stream_loop(const struct cm_stream *s);
bool cm_stream_secured(const struct cm_stream *s); /* TLS established */
bool cm_stream_is_tls(const struct cm_stream *s);  /* TLS started (maybe not established) */
bool cm_stream_closing(const struct cm_stream *s);
/* Negotiated ALPN ("" when none or no TLS); borrowed until the stream is freed. */
const char *cm_stream_alpn(const struct cm_stream *s);
/* The TLS session (borrowed; NULL without TLS), for channel binding and the like. */
struct cm_tls_conn *cm_stream_tls(const struct cm_stream *s);
/* Addresses of the two ends (the peer's is kept from accept/connect). 0 or a libuv error. */
int cm_stream_peer(const struct cm_stream *s, struct sockaddr_storage *ss, socklen_t *len);
int cm_stream_local(const struct cm_stream *s, struct sockaddr_storage *ss, socklen_t *len);
/* "192.0.2.1:5222" / "[2001:db8::1]:5222" of the peer, for logs. */
const char *cm_stream_peer_name(const struct cm_stream *s);

/* Format an address as above into out (at least 64 bytes). */
void cm_stream_addr_format(const struct sockaddr *sa, char *out, size_t len);

#endif
