/* ws_int.h - what ws_conn.c, ws_handshake.c, ws_frame.c and ws_move.c share. Private to common/. */
#ifndef CM_WS_INT_H
#define CM_WS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/loop.h"
#include "cm/stream.h"
#include "cm/ws.h"

struct wslay_event_context;

#define CM_WS_DEF_MAX_HEAD     (8 * 1024)
#define CM_WS_DEF_HANDSHAKE_MS 10000
#define CM_WS_DEF_MAX_MESSAGE  (256 * 1024)
#define CM_WS_DEF_MAX_QUEUED   (1024 * 1024)
#define CM_WS_DEF_CLOSE_MS     5000
/* The most handed to cm_stream_write() at once, so that a big message is cut where the stream
 * becomes full instead of landing in it whole. */
#define CM_WS_WRITE_CHUNK (16 * 1024)

enum cm_ws__state {
	CM_WS_HANDSHAKE, /* reading the request head */
	CM_WS_OPEN,
	CM_WS_CLOSING, /* a close frame is queued, ours or the answer to the peer's */
	CM_WS_DONE,    /* the stream is closing: only its closed event is left */
	CM_WS_MOVED,   /* exported: the stream went into a parcel */
	CM_WS_GONE,    /* the closed event ran; freed once the pending cm_msg has run */
};

/* The wslay side of a connection (ws_frame.c). */
struct cm_ws__framer {
	struct wslay_event_context *ctx; /* owned */
	/* input being fed (borrowed for one cm_ws__framer_input() call) */
	const char *rp;
	size_t rn;
	/* Bytes of the current frame not yet given to wslay. Between frames wslay holds nothing
	 * of ours: it is given one frame's bytes at a time, control frames whole. */
	uint64_t frame_left;
	bool msg_open;    /* a fragmented data message is under way */
	bool proto_error; /* a frame header refused here (1002) */
	bool failed;      /* wslay refused the input and queued its close frame */
	int send_err;     /* why writing to the stream failed */
	uint64_t sent;    /* bytes handed to the stream, to see progress */
};

struct cm_ws_conn {
	struct cm_stream *s;            /* owned until its closed event or the export */
	const struct cm_ws_config *cfg; /* borrowed */
	const struct cm_ws_events *ev;  /* borrowed */
	void *data;                     /* the caller's; borrowed */
	const char *log_mod;            /* static */
	/* the configuration with its defaults */
	size_t max_head, max_message, max_queued;
	uint64_t handshake_ms, close_ms;
	enum cm_ws__state st;
	struct cm_ws__framer fr;
	struct cm_buf in;       /* input not handed to wslay yet: the head, then bytes held back */
	char *protocol;         /* owned; NULL: none */
	bool in_paused;         /* input held back while the output is stuck (the stream paused) */
	bool user_paused;       /* input held back because the caller asked (cm_ws_pause()) */
	uint64_t open_timer_ms; /* cm_ws_timer() from the open event: armed once open */
	bool we_closed;         /* cm_ws_close() started the close */
	/* cm_ws_close()'s frame waits for the messages queued before it (wslay would send it
	 * ahead of them and drop them) */
	bool close_pending;
	int close_code;
	size_t close_len;
	char close_reason[124];
	bool secured;  /* TLS underneath, as it was when the stream closed */
	char peer[64]; /* the peer's address, kept for the closed event's logs */
	int err;       /* what closed gets when no close frame went either way (in-memory) */
	int depth;     /* events of ours under way: a moved connection is freed at 0 */
	bool kicking;  /* kick is posted to the loop: memory stays until it runs */
	struct cm_msg kick;
	/* in-memory connections (tests, fuzzing): no stream, output collected in mem_out */
	bool mem;
	struct cm_buf mem_out;
};

/* A connection between two loops. */
struct cm_ws_parcel {
	struct cm_stream_parcel *sp; /* owned */
	struct cm_buf in;            /* input not parsed yet */
	char *protocol;              /* owned */
};

/* --- ws_conn.c: the connection, for the other files ------------------------------------------- */

struct cm_ws_conn *cm_ws__conn_new(const struct cm_ws_config *cfg, const struct cm_ws_events *ev,
                                   void *data);
void cm_ws__conn_free(struct cm_ws_conn *c);
/* The stream's events of a connection. */
extern const struct cm_stream_events cm_ws__stream_events;
/* Hand the input kept in c->in to the framer (after an import). */
void cm_ws__kick(struct cm_loop *l, struct cm_msg *m);
/* Output for the transport: 0 or a negative errno. */
int cm_ws__tx_write(struct cm_ws_conn *c, const void *data, size_t len);
bool cm_ws__tx_full(const struct cm_ws_conn *c);
/* Leave an event: a moved connection is freed when nothing of ours is under way. */
void cm_ws__leave(struct cm_ws_conn *c);

/* In-memory connections: what a peer sends goes in with cm_ws__mem_input(), what the server
 * sends accumulates in c->mem_out. Timers do nothing. cm_ws__mem_free() runs the closed event
 * (once) and frees. */
int cm_ws__mem_alloc(struct cm_ws_conn **out, const struct cm_ws_config *cfg,
                     const struct cm_ws_events *ev, void *data);
void cm_ws__mem_input(struct cm_ws_conn *c, const char *data, size_t len);
void cm_ws__mem_free(struct cm_ws_conn *c);

/* --- ws_handshake.c: the request head and the answers ----------------------------------------- */

/* What a valid handshake request says; the strings point into the head, NUL-terminated there. */
struct cm_ws__req {
	const char *target; /* as sent */
	const char *key;    /* Sec-WebSocket-Key */
	const char *origin; /* NULL when absent */
	int protocol;       /* index in cfg->protocols; -1: none */
	const char *why;    /* a refusal: its reason, for the answer's body and the log */
	bool bad_version;   /* a refusal names the versions we speak */
};

/* Length of the head (through its empty line) in buf, or 0 while incomplete. Searching resumes
 * at from (what was searched before, less 3). */
size_t cm_ws__head_end(const char *buf, size_t len, size_t from);

/* Parse and check the request head (head[0..len), ending with CRLF CRLF; written to, for the
 * NULs). 0 with *req filled in, or the HTTP status of the answer (req->why says why). */
int cm_ws__parse_request(char *head, size_t len, const char *const *protocols, const char *path,
                         struct cm_ws__req *req);

/* Sec-WebSocket-Accept for key: 28 characters and a NUL into out. 0, -EIO, -ENOMEM. */
int cm_ws__accept_key(const char *key, char out[29]);

/* Append the 101 answer to out. 0, -ENOMEM, -EIO. */
int cm_ws__answer_accept(struct cm_buf *out, const char *key, const char *protocol);
/* Append a refusal with status (its body: why; versions: name the one we speak). 0, -ENOMEM. */
int cm_ws__answer_refuse(struct cm_buf *out, int status, const char *why, bool versions);

/* --- ws_frame.c: wslay (its only user) -------------------------------------------------------- */

/* Make c's wslay context (server side, max_message). 0, -ENOMEM. */
int cm_ws__framer_init(struct cm_ws_conn *c);
void cm_ws__framer_close(struct cm_ws_conn *c);
/* Hand input to wslay, up to where it stops (the input ends, the output is stuck, the state
 * changes); *used says how much it took. Events run from here. 0 or a negative errno (the
 * connection must be aborted). */
int cm_ws__framer_input(struct cm_ws_conn *c, const char *data, size_t len, size_t *used);
/* Hand queued frames to the stream while it has room. 0 or a negative errno. */
int cm_ws__framer_send(struct cm_ws_conn *c);
/* Queue a message (opcode 1 text, 2 binary, 9 ping). 0, -ESHUTDOWN, -EINVAL, -ENOMEM. */
int cm_ws__framer_queue(struct cm_ws_conn *c, int opcode, const void *data, size_t len);
int cm_ws__framer_queue_close(struct cm_ws_conn *c, int code, const char *reason, size_t len);
size_t cm_ws__framer_queued(const struct cm_ws_conn *c);
bool cm_ws__framer_want_write(const struct cm_ws_conn *c);
bool cm_ws__framer_close_sent(const struct cm_ws_conn *c);
bool cm_ws__framer_close_received(const struct cm_ws_conn *c);
/* The close code of the connection, or 0 when no close frame went either way. */
int cm_ws__framer_close_code(const struct cm_ws_conn *c);

#endif
