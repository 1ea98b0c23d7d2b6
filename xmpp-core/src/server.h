/* server.h - xmpp-core's runtime: the server (shared, read-only once started) and its shards.
 *
 * How the work is divided. Every worker loop is a shard. A user belongs to one shard, its home,
 * chosen by a keyed hash of the bare JID (xc_home()): every session of the user, its roster and
 * its presence live there, so everything about one user happens on one thread, without locks.
 * A client connects to whichever worker the kernel hands it to (SO_REUSEPORT), runs TLS and SASL
 * there, and once authenticated its connection moves to its home shard (cm_stream_export /
 * import) before it binds a resource. A stanza for another user is posted to that user's home
 * (struct xc_route_msg on the shard's cm_loop mailbox): one hop, and none when both users share
 * a shard. Components (XEP-0114) live on shard 0.
 *
 * What is shared between shards is read-only after start (configuration, hosts, TLS contexts,
 * the keys), thread-safe by construction (the store, cm_srclimit, metrics), or guarded by a
 * mutex on a path that is not hot (login failure counts).
 */
#ifndef XC_SERVER_H
#define XC_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/map.h"
#include "cm/ws.h"
#include "cm/xml.h"
#include "jid.h"
#include "plain_cache.h"
#include "xc.h"

struct cm_daemon;
struct cm_listener;
struct cm_metrics;
struct cm_srclimit;
struct cm_tls;
struct cm_workers;
struct xc_store;
struct xc_throttle;
struct xc_shard;
struct xc_ticket;
struct xc_ticket_scope;
struct xc_c2s;
struct xc_comp;
struct xc_admin_api;
struct xc_mam;
struct xc_avatars;
struct xc_pep;
struct xc_upload;
struct xc_pep_shard;
struct xc_extdisco;
struct xc_push;
struct xc_push_shard;

/* Counters and gauges, registered once from the table in server.c, updated from any shard. */
struct xc_metrics {
	struct cm_gauge *sessions;                        /* bound c2s sessions */
	struct cm_gauge *connections;                     /* c2s connections, bound or not */
	struct cm_gauge *ws_connections;                  /* WebSocket connections */
	struct cm_counter *logins_ok[4], *logins_fail[4]; /* by mechanism (xc_sasl_mech) */
	struct cm_counter *auth_throttled;
	struct cm_counter *sasl2_logins; /* logins over SASL2 (XEP-0388), any mechanism */
	struct cm_counter *bind2_bound;  /* resources bound inline (XEP-0386) */
	struct cm_counter *fast_issued;  /* FAST tokens issued (XEP-0484) */
	struct cm_counter *fast_revoked; /* FAST tokens revoked (admin API, password change) */
	struct cm_counter *in_message, *in_presence, *in_iq;
	struct cm_counter *out_message, *out_presence, *out_iq;
	struct cm_counter *stream_errors;
	struct cm_counter *offline_stored, *offline_refused, *offline_delivered;
	struct cm_counter *slow_readers_cut;
	struct cm_counter *trims; /* quiet streams that gave back their parser (c2s.trim_after) */
	struct cm_gauge *sm_hibernated; /* sessions waiting for their client to resume (XEP-0198) */
	struct cm_counter *sm_resumed_ok, *sm_resumed_failed;
	struct cm_counter *sm_rerouted;     /* unacknowledged stanzas of sessions that ended */
	struct cm_counter *sm_acks_held;    /* <a/> answers that waited for tickets (ticket.h) */
	struct cm_counter *csi_flushed;     /* held for an inactive client, then sent (XEP-0352) */
	struct cm_counter *csi_superseded;  /* held presence replaced by a later one */
	struct cm_histogram *route_latency; /* seconds from a stanza read to its delivery */
	struct cm_histogram *store_latency; /* seconds a store request took, queue included */
	struct cm_histogram *offline_queue; /* messages handed over at once to a user back online */
	struct cm_counter *backups_ok, *backups_failed; /* backup.h */
	struct cm_gauge *backup_last;                   /* Unix time of the last backup written */
};

struct xc_server {
	struct cm_daemon *daemon;    /* borrowed */
	const struct xc_config *cfg; /* borrowed from the framework */
	struct cm_tls *tls;          /* owned; NULL without a certificate (then no TLS at all) */
	struct cm_tls *ws_tls;       /* owned: the WebSocket listeners' (ALPN http/1.1); NULL */
	struct cm_ws_config ws_cfg;  /* the WebSocket listeners' (read-only once started) */
	struct xc_store *store;      /* owned */
	struct cm_workers *workers;  /* borrowed: the framework owns them */
	struct xc_shard **shards;    /* owned array of nshards */
	unsigned nshards;
	uint64_t home_key[2];             /* keys xc_home() */
	unsigned char decoy_secret[32];   /* salts for SCRAM answers about unknown users */
	unsigned char upload_key[32];     /* signs upload slots (upload.h), made at start */
	char *upload_base;                /* owned: the base URL of upload slots, NULL: off */
	struct xc_upload *upload;         /* owned: the files' side of upload.h, NULL: off */
	struct cm_srclimit *per_source;   /* owned: c2s connections per source address */
	struct xc_throttle *throttle;     /* owned: failed logins per address and per account */
	struct xc_throttle *reg_throttle; /* owned: in-band registrations per address, per hour */
	struct cm_xml_node *scope;        /* owned: <stream:stream xmlns='jabber:client'>, the scope
	                                   * stanzas are written in */
	struct xc_admin_api *api;         /* owned: accounts and sessions on the admin port */
	struct xc_mam *mam;               /* owned: the message archive (mam.h) */
	struct xc_pep *pep;               /* owned: personal eventing (pep.h) */
	struct xc_avatars *avatars;       /* owned: avatar conversions' metrics (avatar.h) */
	struct xc_extdisco *extdisco;     /* owned: STUN/TURN services (extdisco.h) */
	struct xc_push *push;             /* owned: push notifications (push.h) */
	char caps_ver[32];                /* XEP-0115 hash of the server's features */
	uint64_t started_ns;              /* uv_hrtime() at start: the uptime (XEP-0012) */
	struct xc_metrics m;
	atomic_uint_fast64_t next_id; /* stream ids and generated resources */
	bool stopping;
	bool backup_running;  /* main loop: backup.h's job is under way */
	double backup_last;   /* main loop: what backup_last says */
	atomic_uint draining; /* the drain (xc_server_stop): shards with connections left */
	/* main loop: once the shards are drained, the stop waits for the store's last answers */
	struct cm_loop_timer settle;
};

/* What a listener's callbacks need to know. */
struct xc_listener_ctx {
	struct xc_shard *sh;
	bool direct_tls;
	bool websocket;
};

/* One worker loop's share of the work. Everything in it belongs to that loop's thread. */
struct xc_shard {
	struct xc_server *srv; /* borrowed */
	struct cm_loop *loop;  /* borrowed: the worker's */
	unsigned idx;
	struct cm_listener **listeners; /* owned: c2s listeners on this loop */
	struct xc_listener_ctx *lctx;   /* owned: one per listener */
	size_t nlisteners;
	struct cm_log_limit log_refused; /* refused connections are logged at most every 10 s */
	struct cm_list conns;            /* of struct xc_c2s (link): every client connection here */
	struct cm_map users;             /* of struct xc_user (node): users whose home this is */
	struct cm_list comps;            /* of struct xc_comp: component connections (shard 0) */
	struct cm_listener **comp_listeners; /* owned (shard 0) */
	size_t ncomp_listeners;
	struct xc_plain_cache plain;  /* PLAIN logins this shard checked (plain_cache.h) */
	struct cm_map sm_ids;         /* of struct xc_sm (sm.c): resumable sessions, by id */
	struct cm_list sm_hibernated; /* of struct xc_sm: sessions waiting for their client */
	struct xc_pep_shard *pep;     /* owned (pep_caps.c): contacts' capabilities; NULL until
	                               * needed */
	struct xc_push_shard *push;   /* owned (push.c): users' push registrations; NULL until
	                               * needed */
	bool stopping; /* draining: no new connections, the open ones are told to go */
	bool drained;  /* every connection of the shard is gone (counted in srv->draining) */
	/* offline writes on their way: a drain waits for them (the sessions it ends hand their
	 * unacknowledged messages over) */
	unsigned storing;
	struct xc_ticket_scope *tk; /* what the shard handles now (ticket.h); NULL outside */
	/* a buffer for the time of one call (reset before use, never kept across a return):
	 * what is serialised only to be copied elsewhere (an archived copy) */
	struct cm_buf scratch;
};

/* The server without a daemon around it: configuration (borrowed), metrics registered in
 * metrics (borrowed), the store opened, nshards shards without loops yet. What the daemon
 * builds on, and what tests and fuzz targets drive on a loop of their own. On failure, what was
 * made is in *out for xc_server_free(). 0 or a negative errno (logged). */
int xc_server_init(struct xc_server **out, const struct xc_config *cfg, struct cm_metrics *metrics,
                   unsigned nshards);

/* Give shard sh its loop l (l->data becomes sh). On l's thread from then on. */
void xc_shard_attach(struct xc_shard *sh, struct cm_loop *l);

/* Start the server: xc_server_init(), the TLS context, the workers with their listeners, the
 * account API. On failure, what was made is in *out for xc_server_free(). 0 or a negative errno
 * (logged). */
int xc_server_start(struct xc_server **out, struct cm_daemon *d, const struct xc_config *cfg);

/* Stop taking connections and end every stream with system-shutdown; cm_daemon_stopped() follows
 * on the main loop once every connection has closed and the store owes no answer (the daemon's
 * drain timeout bounds the wait). */
void xc_server_stop(struct xc_server *srv);

/* The daemon closes (main loop): end a wait for the store that the drain timeout cut short.
 * Accepts NULL. */
void xc_server_close(struct xc_server *srv);

/* A shard's connection (or offline write) went away: when the shard is draining and it was the
 * last, count the shard as drained. On the shard's thread. */
void xc_shard_conn_gone(struct xc_shard *sh);

/* After the workers stopped. Accepts NULL. */
void xc_server_free(struct xc_server *srv);

/* The shard that owns bare (a bare JID's string and length). */
unsigned xc_home(const struct xc_server *srv, const char *bare, size_t len);

/* Whether domain is one the server serves; the server's own spelling of it (borrowed) or NULL. */
const char *xc_local_host(const struct xc_server *srv, const char *domain, size_t len);

/* A fresh identifier (stream ids, generated resources): 16 characters, unique per process. */
void xc_new_id(struct xc_server *srv, char out[17]);

/* A stanza on its way to another shard (router.c): one allocation, with the stanza packed
 * (cm_xml_pack) and the parsed 'to' behind the struct. The receiving shard copies both out into its
 * own allocations and frees the whole; no shard frees what another allocated piece by piece. */
struct xc_route_msg {
	struct cm_msg m;
	const struct cm_xml_node *stanza; /* the pack's root, in this allocation */
	struct xc_jid to;         /* the stanza's 'to', parsed by the sender's shard; its string is
	                             in this allocation (not owned: not to be freed) */
	uint64_t read_ns;         /* when it was read, for the latency metric */
	struct xc_ticket *ticket; /* a reference, or NULL (ticket.h) */
};

#endif
