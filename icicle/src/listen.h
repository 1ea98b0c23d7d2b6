/* listen.h - the client transports of one worker (private to icicle): a UDP socket per listen
 * address, and TCP/TLS listeners whose connections carry STUN messages and ChannelData frames
 * over cm_streams. Every worker opens its own sockets on the same addresses (SO_REUSEPORT), so
 * the kernel spreads clients over the workers.
 *
 * Both kinds hand each message to one handler (icicle_message_fn) together with where it came
 * from (struct icicle_client); answers and relayed data go back through icicle_client_send() and
 * icicle_client_frame(), whatever the transport.
 *
 * A TCP/TLS connection is held to deadlines so that a slow client cannot keep its slot for
 * nothing: the TLS handshake (the stream's handshake deadline), a message once its first bytes
 * are in (only complete messages are progress), and idleness when it has no allocation. The
 * connections of a worker are capped in all and per source address (one cm_srclimit table for
 * every worker). Single-threaded: everything here belongs to its worker's loop. */
#ifndef ICICLE_LISTEN_H
#define ICICLE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cm/list.h"

struct cm_listener;
struct cm_log_limit;
struct cm_loop;
struct cm_srclimit;
struct cm_tls;
struct icicle_alloc;
struct icicle_batch;
struct icicle_conn;
struct icicle_metrics;
struct icicle_udp;

enum icicle_transport {
	ICICLE_UDP = 0,
	ICICLE_TCP = 1,
	ICICLE_TLS = 2,
};

/* Where a message came from and where its answers go. */
struct icicle_client {
	enum icicle_transport tp;
	struct icicle_udp *udp;   /* UDP: the listener socket (borrowed) */
	struct icicle_conn *conn; /* TCP/TLS: the connection (borrowed) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct sockaddr_storage local; /* the server address the client talks to */
	bool has_local;
};

/* A message from a client: a datagram, or one frame of a stream (ChannelData without its
 * padding). msg is writable and borrowed for the call. Returns 0, or -EBADMSG when it is neither
 * STUN nor ChannelData (the handler counts it; a stream is then closed). */
typedef int (*icicle_message_fn)(void *arg, const struct icicle_client *c, uint8_t *msg,
                                 size_t len);

/* --- UDP --------------------------------------------------------------------------------------
 */

/* What a UDP socket is given (copied; pointers borrowed for the socket's life). */
struct icicle_udp_config {
	struct icicle_batch *batch;      /* datagrams are read into its arena */
	const struct icicle_metrics *mt; /* counts datagrams too large to take */
	icicle_message_fn message;
	void *arg;
};

/* Bind a UDP socket to sa (SO_REUSEPORT) on l's loop, handing every datagram to
 * cfg->message. 0, or a negative errno with the reason in err (cm/err.h); nothing is left open
 * on failure. */
int icicle_udp_open(struct icicle_udp **out, struct cm_loop *l, const struct sockaddr *sa,
                    socklen_t len, const struct icicle_udp_config *cfg, char *err, size_t errlen);
/* Close the socket; its memory goes in the close callback. Accepts NULL. */
void icicle_udp_close(struct icicle_udp *u);
int icicle_udp_fd(const struct icicle_udp *u);
/* Bound to 0.0.0.0 / ::: replies need their source address set (IP_PKTINFO). */
bool icicle_udp_wildcard(const struct icicle_udp *u);

/* --- TCP and TLS ------------------------------------------------------------------------------
 */

/* What a worker's stream listeners are given at start (copied; pointers borrowed). */
struct icicle_streams_config {
	unsigned max_conns;             /* connections of the worker, all listeners; 0: no cap */
	struct cm_srclimit *per_source; /* shared by the workers; NULL: no cap per source */
	unsigned max_per_source;        /* per_source's cap, for the log line */
	uint64_t message_ms;            /* a started message must be complete within; 0: never */
	uint64_t handshake_ms;          /* TLS: accept to finished handshake */
	uint64_t idle_ms;               /* without an allocation: after the last message */
	struct cm_tls *tls;             /* for TLS listeners; NULL: none may be opened */
	struct cm_log_limit *log_refused, *log_timeouts; /* shared: one line per interval */
	struct icicle_batch *batch; /* flushed after a read's frames, counts dropped output */
	const struct icicle_metrics *mt;
	icicle_message_fn message;
	void *arg;
};

/* The listeners and connections of one worker. */
struct icicle_streams {
	struct icicle_streams_config cfg;
	struct cm_loop *loop;    /* borrowed */
	struct cm_listener **ln; /* owned array; the listeners close themselves */
	size_t nln, lncap;
	struct cm_list conns; /* struct icicle_conn, owned */
	unsigned nconns;      /* admitted and not yet gone (the per-worker cap) */
	int refusal;          /* why the last connection was not admitted */
	bool closing;
};

void icicle_streams_init(struct icicle_streams *st, struct cm_loop *l,
                         const struct icicle_streams_config *cfg);

/* Listen on sa (SO_REUSEPORT), with TLS from the start when tls. 0, or a negative errno with the
 * reason in err; nothing is left open on failure. */
int icicle_streams_listen(struct icicle_streams *st, const struct sockaddr *sa, socklen_t len,
                          bool tls, char *err, size_t errlen);

/* Close the listeners and every connection (their allocations with them); the memory of the
 * connections goes in their streams' closed events, that of the listeners once their handles
 * are closed. */
void icicle_streams_close(struct icicle_streams *st);

/* Free what the close left (the listener array). */
void icicle_streams_free(struct icicle_streams *st);

/* Connections alive. */
unsigned icicle_streams_count(const struct icicle_streams *st);

/* Close a connection after what is queued for it has been sent (its allocation ends now). */
void icicle_conn_close(struct icicle_conn *c);

/* The connection's allocation (borrowed: an allocation owns itself), or NULL. Setting it moves
 * the idle deadline: a connection with an allocation may be quiet as long as it lives. */
void icicle_conn_set_alloc(struct icicle_conn *c, struct icicle_alloc *a);
struct icicle_alloc *icicle_conn_alloc(const struct icicle_conn *c);

/* --- answers ----------------------------------------------------------------------------------
 */

/* Send a complete message (copied) to a client: queued in b for UDP, on the connection for
 * TCP/TLS. */
void icicle_client_send(struct icicle_batch *b, const struct icicle_client *c, const uint8_t *buf,
                        size_t len);

/* Send hdr, then payload (by reference for UDP: valid until b's next flush), then pad zero
 * bytes, as one datagram or one frame (one TLS record: clients such as coturn's read a record
 * at a time). A frame over the connection's queue limit is dropped whole and counted in b. */
void icicle_client_frame(struct icicle_batch *b, const struct icicle_client *c, const uint8_t *hdr,
                         size_t hlen, const uint8_t *payload, size_t plen, size_t pad);

#endif
