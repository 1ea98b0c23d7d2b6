/* xc.h - xmpp-core's configuration (private to xmpp-core). */
#ifndef XC_H
#define XC_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/cfg.h"
#include "cm/daemon.h"

enum xc_conflict {
	XC_CONFLICT_KICK_OLD, /* a bind for a resource in use closes the old session (conflict) */
	XC_CONFLICT_REFUSE,   /* ... is refused (conflict) */
	XC_CONFLICT_RENAME,   /* ... gets a server-generated resource instead */
};

struct xc_c2s_config {
	struct cm_cfg_strlist listen;     /* "IP:PORT": STARTTLS listeners */
	struct cm_cfg_strlist tls_listen; /* "IP:PORT": direct TLS listeners (XEP-0368) */
	bool require_tls;                 /* no SASL before STARTTLS */
	bool plain_cleartext;             /* PLAIN allowed without TLS (load tests only) */
	uint64_t max_stanza;              /* bytes */
	long long max_connections;        /* per worker */
	long long connections_per_source; /* per source address, all workers */
	uint64_t login_timeout;           /* ms from connect to a bound session */
	uint64_t idle_timeout;            /* ms without input before a whitespace ping is due */
	uint64_t trim_after;              /* ms without input before buffers are given back */
	uint64_t rate;                    /* bytes/s a client may send (0: no shaper) */
	uint64_t max_queued;              /* bytes waiting for a slow reader before it is cut */
	int resource_conflict;            /* enum xc_conflict */
};

struct xc_websocket_config {
	struct cm_cfg_strlist listen; /* "IP:PORT": XMPP over WebSocket (RFC 7395) */
	char *path;                   /* the HTTP path served ("/xmpp-websocket") */
	bool tls;                     /* TLS on the listener (false: a TLS proxy in front) */
	uint64_t max_message;         /* bytes: the largest WebSocket message taken */
};

struct xc_auth_config {
	long long scram_iterations;
	long long failures_per_ip; /* failed logins from one address per minute */
	long long failures_per_user;
	bool strict_channel_binding; /* refuse "y" when -PLUS was offered (RFC 5802) */
	struct cm_cfg_strlist disabled_mechanisms; /* SASL names neither offered nor taken */
};

struct xc_fast_config {
	bool enabled;            /* XEP-0484 tokens offered with SASL2 */
	uint64_t token_lifetime; /* ms a token is valid after it was issued */
	uint64_t rotate_before;  /* ms: a login with a token this close to expiry gets a new one */
};

struct xc_storage_config {
	char *path;          /* the SQLite database */
	char *backup_dir;    /* backup.h's directory; NULL: "backups" beside path */
	long long linger_ms; /* unanswered writes may wait this long for company (store.h) */
	long long cache_mb;  /* the database's page cache */
};

struct xc_offline_config {
	long long max_per_user;
};

struct xc_archive_config {
	bool enabled;             /* XEP-0313: one-to-one messages archived per user */
	long long retention_days; /* archived messages older than this are removed; 0: kept */
	long long max_page;       /* results in one page at most (and when a query asks none) */
	int default_policy;       /* enum xc_archive_default: for users without preferences */
};

struct xc_sm_config {
	bool enabled;            /* XEP-0198 offered */
	uint64_t resume_timeout; /* ms a session whose connection dropped waits to be resumed */
	long long max_queue;     /* unacknowledged stanzas before the stream is ended */
	long long ack_every;     /* the server asks for an <a/> after this many stanzas */
};

struct xc_csi_config {
	bool enabled;       /* XEP-0352 offered */
	long long max_held; /* stanzas held for an inactive client before they are all sent */
};

struct xc_pep_config {
	bool enabled;         /* XEP-0163 on every account's bare JID */
	long long max_items;  /* items a node keeps at most (what "max" means) */
	uint64_t max_payload; /* bytes of one item's payload (and of a vCard) as XML */
	long long max_nodes;  /* nodes per account */
	int vcard_avatars;    /* enum xc_avatar_mode (avatar.h) */
};

/* HTTP File Upload (XEP-0363): upload.h */
struct xc_upload_config {
	bool enabled;
	struct cm_cfg_strlist
	    listen;              /* "IP:PORT": the HTTPS listener the files go to and come from */
	char *url;               /* the base URL clients reach it at; "": https://HOST:PORT */
	char *path;              /* the files' directory; "": "uploads" beside the store */
	uint64_t max_file_size;  /* bytes of one file */
	uint64_t daily_quota;    /* bytes of slots one user is handed in 24 hours */
	uint64_t min_free_space; /* bytes the files' file system keeps free: slots refused below */
	uint64_t expire_after;   /* ms a file is kept */
	uint64_t slot_ttl;       /* ms a PUT URL stays valid */
	long long max_connections; /* of the listener */
};

/* Contact addresses of the service (XEP-0157), by kind: URIs (mailto:, xmpp:, https:...). */
enum xc_contact_kind {
	XC_CONTACT_ABUSE,
	XC_CONTACT_ADMIN,
	XC_CONTACT_FEEDBACK,
	XC_CONTACT_SALES,
	XC_CONTACT_SECURITY,
	XC_CONTACT_STATUS,
	XC_CONTACT_SUPPORT,
	XC_CONTACT_NKINDS,
};

struct xc_contact_config {
	struct cm_cfg_strlist addrs[XC_CONTACT_NKINDS];
};

/* The kinds' names, as the configuration and XEP-0157's fields ("KIND-addresses") have them. */
extern const char *const xc_contact_kinds[XC_CONTACT_NKINDS];

/* Private XML storage (XEP-0049). */
struct xc_private_config {
	bool enabled;
	uint64_t max_bytes;       /* of one element, as XML */
	long long max_namespaces; /* elements (one per namespace) per account */
};

/* What a push notification (XEP-0357) tells the app server, and so Apple or Google. */
enum xc_push_privacy {
	XC_PUSH_PRIVACY_NONE,        /* the message count only */
	XC_PUSH_PRIVACY_SENDER,      /* and the sender's bare JID */
	XC_PUSH_PRIVACY_PLACEHOLDER, /* the count and a fixed text as the body, no sender */
	XC_PUSH_PRIVACY_FULL,        /* the sender and the message's body */
};

/* The REST hand-off of one host's pushes (MongoosePush v3, e.g. platypus's REST front end). */
struct xc_push_rest_config {
	char *host;    /* the XMPP host whose users' pushes go this way */
	char *url;     /* the API's base URL: http(s)://HOST[:PORT][/PREFIX] */
	char *ca_file; /* CA bundle that verifies the API's certificate; NULL: the system's */
	bool verify;   /* verify the API's certificate and name (false: tests only) */
};

struct xc_push_config {
	bool enabled;                /* XEP-0357 offered on every account */
	long long max_registrations; /* per account; enabling one more replaces the oldest */
	int privacy;                 /* enum xc_push_privacy */
	char *placeholder;           /* the body under privacy placeholder */
	uint64_t coalesce;           /* ms: events this close together make one push */
	uint64_t rewake;             /* ms after a push with no client back: push once more; 0 */
	uint64_t timeout;            /* ms the app server has to answer a push */
	long long max_failures;      /* transient failures in a row before a registration goes */
	uint64_t resume_timeout;     /* ms a hibernated session of an account with push waits */
	struct cm_cfg_list rest;     /* of struct xc_push_rest_config: hosts that push by REST */
};

extern const struct cm_cfg_schema xc_push_schema; /* push_config.c */

struct xc_register_config {
	bool enabled;
	long long per_ip_per_hour;
};

struct xc_component_config {
	char *domain;
	struct cm_secret secret;
};

struct xc_components_config {
	struct cm_cfg_strlist listen; /* "IP:PORT" of the XEP-0114 listener; empty: none */
	struct cm_cfg_list list;      /* of struct xc_component_config */
};

/* One STUN/TURN server handed out by XEP-0215 (an icicle). */
struct xc_turn_server_config {
	char *host;                       /* name or address clients reach it at */
	long long port;                   /* STUN and TURN over UDP and TCP */
	struct cm_cfg_strlist transports; /* "udp", "tcp": TURN transports offered */
	bool stun;                        /* offer it as a STUN server too */
	long long turns_port;             /* TURN over TLS; 0: not offered */
};

struct xc_extdisco_config {
	struct cm_secret secret_file; /* the TURN REST secret(s) shared with icicle; first used */
	uint64_t lifetime;            /* ms a credential is valid */
	struct cm_cfg_list servers;   /* of struct xc_turn_server_config; empty: XEP-0215 off */
};

struct xc_config {
	struct cm_daemon_log_config log;
	struct cm_daemon_admin_config admin;
	uint64_t shutdown_timeout; /* ms */
	struct cm_daemon_tls_config tls;
	struct cm_cfg_strlist hosts;
	long long workers;         /* 0: one per CPU */
	long long worker_slice_us; /* asked of the fair scheduler; 0: the kernel's default */
	struct xc_c2s_config c2s;
	struct xc_websocket_config websocket;
	struct xc_auth_config auth;
	struct xc_fast_config fast;
	struct xc_storage_config storage;
	struct xc_offline_config offline;
	struct xc_archive_config archive;
	struct xc_sm_config sm;
	struct xc_csi_config csi;
	struct xc_pep_config pep;
	struct xc_private_config private_xml;
	struct xc_push_config push;
	struct xc_register_config registration;
	struct xc_components_config components;
	struct xc_extdisco_config extdisco;
	struct xc_contact_config contact;
	struct xc_upload_config upload;
	bool hide_version;
	struct cm_secret api_token; /* the admin API's bearer token (xmppctl); unset: API off */
};

extern const struct cm_cfg_schema xc_config_schema;

#endif
