/* c2s.h - a client's connection: the XML stream over a cm_stream, from the stream header through
 * STARTTLS, SASL and resource binding to a session that sends and receives stanzas.
 *
 * States: HEADER (waiting for <stream:stream>) -> OPEN (features sent: STARTTLS or SASL) ->
 * AUTHED (SASL succeeded; the connection moves to its user's home shard, then waits for the
 * restarted stream) -> BOUND (a resource is bound: a session of its user) -> CLOSING.
 * Every protocol error ends in a stream error with its RFC 6120 condition; the connection closes
 * after it, and other connections never notice.
 */
#ifndef XC_C2S_H
#define XC_C2S_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/list.h"
#include "cm/xml.h"
#include "jid.h"

struct cm_stream;
struct cm_ws_conn;
struct cm_xml_parser;
struct xc_csi;
struct xc_shard;
struct xc_sasl;
struct xc_sasl2;
struct xc_register;
struct xc_sm;
struct xc_user;

enum xc_c2s_state {
	XC_C2S_HEADER,
	XC_C2S_OPEN,
	XC_C2S_AUTHED,
	XC_C2S_BOUND,
	XC_C2S_CLOSING,
};

struct xc_c2s {
	struct xc_shard *sh;   /* borrowed: the shard it lives on now */
	struct cm_list link;   /* in sh->conns */
	struct cm_stream *s;   /* the transport: a TCP stream (NULL while moving, or WebSocket) */
	struct cm_ws_conn *ws; /* ... or a WebSocket connection (RFC 7395) */
	bool ws_open;          /* WebSocket: the client's <open/> began the current stream */
	bool via_ws;           /* came over WebSocket (ws is NULL once that connection is gone) */
	bool moving;           /* authenticated, on its way home: reading waits */
	int move_tries;
	struct cm_xml_parser *xp; /* owned */
	enum xc_c2s_state st;
	bool header_sent;             /* our <stream:stream> went out */
	bool direct_tls;              /* accepted on a TLS listener */
	bool starttls_pending;        /* <proceed/> sent, TLS to start */
	const char *host;             /* borrowed from the configuration: the 'to' of the stream */
	char id[17];                  /* the stream id */
	struct xc_sasl *sasl;         /* owned: the exchange under way */
	struct xc_sasl2 *sasl2;       /* owned: a SASL2 login under way (sasl2.c); NULL */
	struct xc_register *reg;      /* borrowed: a registration change on its way (register.c) */
	char *user;                   /* owned: the authenticated local part */
	struct xc_jid jid;            /* owned: the full JID once bound */
	struct xc_user *u;            /* borrowed once bound: its user on the home shard */
	struct cm_list user_link;     /* in u->sessions */
	int64_t since;                /* Unix seconds when the resource was bound */
	int priority;                 /* of the last available presence */
	bool available;               /* sent available presence, not unavailable since */
	bool interested;              /* asked for its roster: gets roster pushes */
	bool blocklist_interested;    /* asked for its block list: gets its pushes */
	bool carbons;                 /* enabled message carbons (XEP-0280, carbons.c) */
	struct cm_xml_node *presence; /* owned: its last available presence, for probes */
	char **directed;              /* owned: where it sent directed presence (RFC 6121 4.6) */
	size_t ndirected;
	/* the shaper: bytes the client may still send now, refilled at c2s.rate */
	uint64_t tokens;
	uint64_t tokens_at; /* loop ms of the last refill */
	bool shaped;        /* reading paused by the shaper */
	uint64_t read_ns;   /* when the current input was read (monotonic), for latency */
	int pings_out;      /* whitespace-keepalive probes unanswered */
	bool trim_due;      /* the idle timer runs to c2s.trim_after, not to the ping */
	struct xc_sm *sm;   /* owned: stream management (sm.c); NULL until <enable/> */
	bool hibernated;    /* the connection is gone and the session waits for its client: out
	                     * of sh->conns, no transport, no parser (sm.c) */
	struct xc_csi *csi; /* owned: what waits while the client is inactive (XEP-0352, csi.c);
	                     * NULL while it is active */
};

/* A bound session's idle timer, from now: to c2s.trim_after first (when it comes before
 * c2s.idle_timeout), when the session gives back its parser and buffers; then to the ping. */
void xc_c2s_idle_timer(struct xc_c2s *c);

/* Take a connection a listener accepted. */
void xc_c2s_accept(struct xc_shard *sh, struct cm_stream *s, bool direct_tls);

/* Take a connection a WebSocket listener accepted: the HTTP handshake comes first (c2s_ws.c). */
void xc_c2s_accept_ws(struct xc_shard *sh, struct cm_stream *s);

/* About the transport, whichever it is: the TCP stream underneath (for its address, TLS session
 * and channel binding; NULL once gone), the peer's address for logs, whether it is encrypted. */
struct cm_stream *xc_c2s_stream(const struct xc_c2s *c);
const char *xc_c2s_peer(const struct xc_c2s *c);
bool xc_c2s_secured(const struct xc_c2s *c);

/* Arm the connection's timer (idle, login) for ms. */
void xc_c2s_timer(struct xc_c2s *c, uint64_t ms);

/* Send a stanza (not consumed) on a bound or authenticated stream. A client that does not read
 * what it is sent beyond c2s.max_queued is cut with a policy-violation stream error. 0, or a
 * negative errno when the connection is closing. */
int xc_c2s_send(struct xc_c2s *c, const struct cm_xml_node *stanza);

/* Write raw XML (a header, a whitespace ping) as it is. */
int xc_c2s_send_raw(struct xc_c2s *c, const char *xml, size_t len);

/* End the stream with an RFC 6120 stream error (condition: "conflict", "policy-violation"...;
 * text may be NULL) and close the connection. For "see-other-host", text is where the client
 * is to reconnect ("host" or "host:port"), as the condition carries it (RFC 6120 4.9.3.19): how
 * a node of a cluster sends its clients to another. */
void xc_c2s_stream_error(struct xc_c2s *c, const char *condition, const char *text);

/* End every stream of the shard with system-shutdown (the daemon stops): gracefully, or at once
 * when now is true. */
void xc_c2s_close_all(struct xc_shard *sh, bool now);

/* sasl.c drives the exchange; these are what it tells the connection. */
void xc_c2s__sasl_success(struct xc_c2s *c, const char *user, const void *data, size_t len);
void xc_c2s__sasl_failure(struct xc_c2s *c, const char *condition, const char *text);
void xc_c2s__sasl_challenge(struct xc_c2s *c, const void *data, size_t len);

/* sasl2.c's: the client is authenticated as user (taken) without a stream restart: the
 * connection moves home, where xc_sasl2_arrived() finishes the login; and the features of the
 * stream as it is now. */
void xc_c2s__authed(struct xc_c2s *c, char *user);
void xc_c2s__features(struct xc_c2s *c);

/* csi.c's: send a stanza (not consumed) as xc_c2s_send() does, but past client state
 * indication: through stream management when it is on. */
int xc_c2s__deliver(struct xc_c2s *c, const struct cm_xml_node *stanza);

/* sm.c's: write a stanza (not consumed) without stream management's queue; end the stream with
 * condition, text (may be NULL) and extra (XML written after the condition, may be NULL); free
 * a connection that is not live (a hibernated session, or one whose session moved on). */
int xc_c2s__write(struct xc_c2s *c, const struct cm_xml_node *stanza);
void xc_c2s__stream_error_extra(struct xc_c2s *c, const char *condition, const char *text,
                                const char *extra);
void xc_c2s__release(struct xc_c2s *c);

#endif
