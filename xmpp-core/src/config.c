/* config.c - xmpp-core's configuration schema (config/xmpp-core.yaml). */
#include "xc.h"

#include <stddef.h>
#include <string.h>

#include "cm/err.h"
#include "jid.h"

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:5280");

static const char *const conflict_values[] = {"kick_old", "refuse", "rename", NULL};

static void check_addrs(struct cm_cfg_check *chk, const char *key, const struct cm_cfg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct cm_cfg_addr a = {0};
		char err[CM_ERR_MAX];

		if (cm_cfg_parse_addr(l->v[i], &a, err, sizeof(err)) != 0)
			cm_cfg_check_error(chk, key, "\"%s\": %s", l->v[i], err);
	}
}

static void c2s_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_c2s_config *c = obj;

	check_addrs(chk, "listen", &c->listen);
	check_addrs(chk, "tls_listen", &c->tls_listen);
}

static const struct cm_cfg_field c2s_fields[] = {
    {.key = "listen",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_c2s_config, listen),
     .def = "[\"127.0.0.1:5222\"]",
     .doc = "client listeners (STARTTLS), IP:PORT each"},
    {.key = "tls_listen",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_c2s_config, tls_listen),
     .def = "[\"127.0.0.1:5223\"]",
     .doc = "client listeners with TLS from the first byte (XEP-0368, ALPN xmpp-client)"},
    {.key = "require_tls",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_c2s_config, require_tls),
     .def = "true",
     .doc = "refuse to authenticate a client before STARTTLS"},
    {.key = "plain_cleartext",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_c2s_config, plain_cleartext),
     .def = "false",
     .doc = "offer SASL PLAIN without TLS (load tests on loopback only: passwords in clear)"},
    {.key = "max_stanza",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_c2s_config, max_stanza),
     .def = "256k",
     .min = 4096,
     .max = 16 << 20,
     .doc = "largest stanza (and stream header) a client may send"},
    {.key = "max_connections",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_c2s_config, max_connections),
     .def = "20000",
     .min = 1,
     .max = 1000000,
     .doc = "client connections per worker"},
    {.key = "connections_per_source",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_c2s_config, connections_per_source),
     .def = "100",
     .min = 0,
     .max = 1000000,
     .doc = "client connections from one source address (an IPv6 /64); 0: no cap"},
    {.key = "login_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_c2s_config, login_timeout),
     .def = "30s",
     .min = 1000,
     .max = 600000,
     .doc = "from connection to a bound session, TLS and authentication included"},
    {.key = "idle_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_c2s_config, idle_timeout),
     .def = "5m",
     .min = 1000,
     .max = 86400000,
     .doc = "a session that sends nothing (not even whitespace) for this long is pinged, "
            "then closed"},
    {.key = "trim_after",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_c2s_config, trim_after),
     .def = "5s",
     .min = 0,
     .max = 86400000,
     .doc =
         "a session quiet for this long gives back what it keeps for parsing and buffering "
         "(in the benchmark 4 KiB per plain and 9 KiB per TLS session; the next stanza costs a few "
         "microseconds more); 0: never"},
    {.key = "rate",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_c2s_config, rate),
     .def = "64k",
     .doc = "bytes per second a client may send, on average (0: unlimited)"},
    {.key = "max_queued",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_c2s_config, max_queued),
     .def = "1M",
     .min = 65536,
     .max = 1 << 30,
     .doc = "bytes waiting for a client that does not read, before its stream is closed"},
    {.key = "resource_conflict",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct xc_c2s_config, resource_conflict),
     .def = "kick_old",
     .values = conflict_values,
     .doc = "a bind for a resource in use: kick_old (the new session wins), refuse, rename"},
};

static const struct cm_cfg_schema c2s_schema = {
    .name = "c2s",
    .size = sizeof(struct xc_c2s_config),
    .fields = c2s_fields,
    .nfields = sizeof(c2s_fields) / sizeof(c2s_fields[0]),
    .validate = c2s_validate,
};

static void websocket_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_websocket_config *w = obj;

	check_addrs(chk, "listen", &w->listen);
	if (w->path && w->path[0] != '/')
		cm_cfg_check_error(chk, "path", "\"%s\" must start with /", w->path);
}

static const struct cm_cfg_field websocket_fields[] = {
    {.key = "listen",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_websocket_config, listen),
     .def = "[\"127.0.0.1:5443\"]",
     .doc = "XMPP over WebSocket (RFC 7395) listeners, IP:PORT each, for browser clients; "
            "empty: none"},
    {.key = "path",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_websocket_config, path),
     .def = "/xmpp-websocket",
     .doc = "the URL path of the WebSocket endpoint"},
    {.key = "tls",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_websocket_config, tls),
     .def = "true",
     .doc = "TLS on the WebSocket listener with the tls: certificate (wss://); false only for a "
            "loopback listener behind a TLS-terminating proxy, whose connections then count "
            "as encrypted"},
    {.key = "max_message",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_websocket_config, max_message),
     .def = "256k",
     .min = 4096,
     .max = 16 << 20,
     .doc = "largest WebSocket message (one stanza) a client may send"},
};

static const struct cm_cfg_schema websocket_schema = {
    .name = "websocket",
    .size = sizeof(struct xc_websocket_config),
    .fields = websocket_fields,
    .nfields = sizeof(websocket_fields) / sizeof(websocket_fields[0]),
    .validate = websocket_validate,
};

static const struct cm_cfg_field auth_fields[] = {
    {.key = "scram_iterations",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_auth_config, scram_iterations),
     .def = "4096",
     .min = 4096,
     .max = 10000000,
     .doc = "PBKDF2 iterations for new passwords (clients pay them, not the server)"},
    {.key = "failures_per_ip",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_auth_config, failures_per_ip),
     .def = "20",
     .min = 1,
     .max = 100000,
     .doc = "failed logins per minute from one address before it must wait"},
    {.key = "failures_per_user",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_auth_config, failures_per_user),
     .def = "10",
     .min = 1,
     .max = 100000,
     .doc = "failed logins per minute for one account before it must wait"},
    {.key = "strict_channel_binding",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_auth_config, strict_channel_binding),
     .def = "false",
     .doc = "refuse a SCRAM client that says it could bind to the TLS channel but believes the "
            "server cannot (gs2 flag y) while -PLUS is offered, as RFC 5802 asks; off because "
            "clients that only know tls-unique say so on TLS 1.3"},
    {.key = "disabled_mechanisms",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_auth_config, disabled_mechanisms),
     .def = "[]",
     .doc = "SASL mechanisms neither offered nor accepted, of PLAIN, SCRAM-SHA-1, "
            "SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-256-PLUS: after an import from "
            "Prosody (SCRAM-SHA-1 keys only), the SCRAM-SHA-256 pair, until the imported "
            "accounts have logged in with PLAIN (xmppctl stats counts those left)"},
};

static void auth_validate(void *obj, struct cm_cfg_check *chk)
{
	static const char *const known[] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS",
	                                    "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"};
	const struct xc_auth_config *a = obj;
	const struct cm_cfg_strlist *off = &a->disabled_mechanisms;
	size_t n = sizeof(known) / sizeof(known[0]);

	for (size_t i = 0; i < off->n; i++) {
		size_t k = 0;

		while (k < n && strcmp(off->v[i], known[k]) != 0)
			k++;
		if (k == n)
			cm_cfg_check_error(
			    chk, "disabled_mechanisms",
			    "\"%s\" is not one of PLAIN, SCRAM-SHA-1, SCRAM-SHA-1-PLUS, "
			    "SCRAM-SHA-256, SCRAM-SHA-256-PLUS",
			    off->v[i]);
	}
	/* the -PLUS variants need TLS, and PLAIN does unless a listener allows cleartext */
	if (cm_cfg_strlist_has(off, "SCRAM-SHA-1") && cm_cfg_strlist_has(off, "SCRAM-SHA-256"))
		cm_cfg_check_error(chk, "disabled_mechanisms",
		                   "SCRAM-SHA-1 or SCRAM-SHA-256 must stay enabled: the -PLUS "
		                   "variants and PLAIN need TLS");
}

static const struct cm_cfg_schema auth_schema = {
    .name = "auth",
    .size = sizeof(struct xc_auth_config),
    .fields = auth_fields,
    .nfields = sizeof(auth_fields) / sizeof(auth_fields[0]),
    .validate = auth_validate,
};

static const struct cm_cfg_field storage_fields[] = {
    {.key = "path",
     .type = CM_CFG_PATH,
     .offset = offsetof(struct xc_storage_config, path),
     .def = "/var/lib/xmpp-core/xmpp-core.db",
     .doc = "the SQLite database (accounts, rosters, offline messages, archives)"},
    {.key = "backup_dir",
     .type = CM_CFG_PATH,
     .offset = offsetof(struct xc_storage_config, backup_dir),
     .doc = "where `xmppctl backup` (POST /api/v1/backup) writes copies of the database, made "
            "while the server runs (not set: the directory `backups` beside `path`, made on "
            "the first backup)"},
    {.key = "linger_ms",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_storage_config, linger_ms),
     .def = "25",
     .min = 0,
     .max = 1000,
     .doc = "how long writes nobody waits for (archived copies; the acknowledgement of a "
            "stream-managed client's message may wait for them) may wait for others before "
            "their commit, so that one commit serves many (0: none); a write somebody waits "
            "for ends it"},
    {.key = "cache_mb",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_storage_config, cache_mb),
     .def = "64",
     .min = 1,
     .max = 65536,
     .doc = "MiB of the database's pages kept in memory (SQLite's page cache): the archive's "
            "index pages every user's new messages go to stay there instead of being read "
            "again"},
};

static const struct cm_cfg_schema storage_schema = {
    .name = "storage",
    .size = sizeof(struct xc_storage_config),
    .fields = storage_fields,
    .nfields = sizeof(storage_fields) / sizeof(storage_fields[0]),
};

static const struct cm_cfg_field offline_fields[] = {
    {.key = "max_per_user",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_offline_config, max_per_user),
     .def = "1000",
     .min = 0,
     .max = 1000000,
     .doc = "messages kept for a user who is away; beyond, senders get resource-constraint"},
};

static const struct cm_cfg_schema offline_schema = {
    .name = "offline",
    .size = sizeof(struct xc_offline_config),
    .fields = offline_fields,
    .nfields = 1,
};

/* in the order of enum xc_archive_default */
static const char *const archive_policy_values[] = {"always", "roster", "never", NULL};

static const struct cm_cfg_field archive_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_archive_config, enabled),
     .def = "true",
     .doc = "keep each user's one-to-one messages in an archive its clients can query "
            "(XEP-0313)"},
    {.key = "retention_days",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_archive_config, retention_days),
     .def = "0",
     .min = 0,
     .max = 36500,
     .doc = "archived messages older than this many days are removed (checked hourly); 0: "
            "kept for ever"},
    {.key = "max_page",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_archive_config, max_page),
     .def = "100",
     .min = 1,
     .max = 1000,
     .doc = "messages one archive query returns at most (a client asking for more gets this "
            "many, and pages on)"},
    {.key = "default",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct xc_archive_config, default_policy),
     .def = "always",
     .values = archive_policy_values,
     .doc = "what is archived for a user who has set no preferences: always, roster (peers "
            "in the roster only), never"},
};

static const struct cm_cfg_schema archive_schema = {
    .name = "archive",
    .size = sizeof(struct xc_archive_config),
    .fields = archive_fields,
    .nfields = sizeof(archive_fields) / sizeof(archive_fields[0]),
};

/* enum xc_avatar_mode's names, in its order */
static const char *const vcard_avatar_values[] = {"open", "all", "off", NULL};

static const struct cm_cfg_field pep_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_pep_config, enabled),
     .def = "true",
     .doc = "personal eventing (XEP-0163) on every account's bare JID: OMEMO keys, avatars "
            "(XEP-0084), nicknames and the like, published and pushed to contacts"},
    {.key = "max_items",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_pep_config, max_items),
     .def = "256",
     .min = 1,
     .max = 10000,
     .doc = "items one node keeps at most (a node configured with max_items 'max' keeps this "
            "many; the oldest go first)"},
    {.key = "max_payload",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_pep_config, max_payload),
     .def = "128k",
     .min = 1024,
     .max = 16 << 20,
     .doc = "largest payload of one item, and largest vCard (XEP-0054), as XML; a larger one "
            "is refused"},
    {.key = "max_nodes",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_pep_config, max_nodes),
     .def = "256",
     .min = 1,
     .max = 100000,
     .doc = "nodes one account may have; a publish that would make one more is refused"},
    {.key = "vcard_avatars",
     .type = CM_CFG_ENUM,
     .offset = offsetof(struct xc_pep_config, vcard_avatars),
     .def = "open",
     .values = vcard_avatar_values,
     .doc = "avatars kept the same both ways (XEP-0398): a vCard's PHOTO is published as a PEP "
            "avatar (XEP-0084), a PEP avatar becomes the vCard's PHOTO, which anyone may read, "
            "and presence carries its hash (XEP-0153). open: only an avatar whose PEP data node "
            "is open to all becomes the PHOTO (a private one takes it out); all: every one; "
            "off: the two stay apart and presence is left as sent"},
};

static const struct cm_cfg_schema pep_schema = {
    .name = "pep",
    .size = sizeof(struct xc_pep_config),
    .fields = pep_fields,
    .nfields = sizeof(pep_fields) / sizeof(pep_fields[0]),
};

static void upload_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_upload_config *u = obj;

	check_addrs(chk, "listen", &u->listen);
	if (u->enabled && u->listen.n == 0)
		cm_cfg_check_error(chk, "listen", "is empty: the files need a listener");
	if (u->url && *u->url && strncmp(u->url, "https://", 8) != 0 &&
	    strncmp(u->url, "http://", 7) != 0)
		cm_cfg_check_error(chk, "url", "\"%s\" is not an http:// or https:// URL", u->url);
	if (u->daily_quota < u->max_file_size)
		cm_cfg_check_error(
		    chk, "daily_quota",
		    "is smaller than max_file_size: no file that large could be sent");
}

static const struct cm_cfg_field upload_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_upload_config, enabled),
     .def = "false",
     .doc = "HTTP File Upload (XEP-0363) at upload.HOST for every host: how clients send photos "
            "and files in chats (the bytes go over HTTPS to listen, the message carries a "
            "link)"},
    {.key = "listen",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_upload_config, listen),
     .def = "[\"127.0.0.1:5281\"]",
     .doc = "HTTPS listeners (with the tls: certificate), IP:PORT each, where files are put and "
            "fetched"},
    {.key = "url",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_upload_config, url),
     .def = "",
     .doc = "the base URL clients reach the listener at (a proxy in front, another name or "
            "port); empty: https://HOST:PORT, with the first host and listen's first port"},
    {.key = "path",
     .type = CM_CFG_PATH,
     .offset = offsetof(struct xc_upload_config, path),
     .def = "",
     .doc = "directory of the files (made at start, mode 0700); empty: uploads beside the "
            "store's file"},
    {.key = "max_file_size",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_upload_config, max_file_size),
     .def = "10M",
     .min = 1024,
     .max = 1ULL << 30,
     .doc = "largest file; each connection of the listener may hold one this large in memory "
            "while it arrives"},
    {.key = "daily_quota",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_upload_config, daily_quota),
     .def = "100M",
     .min = 1024,
     .max = 1ULL << 40,
     .doc = "bytes of files one user may be handed slots for in 24 hours"},
    {.key = "min_free_space",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_upload_config, min_free_space),
     .def = "1G",
     .max = 1ULL << 50,
     .doc = "space the files' file system keeps free: a slot whose file would leave less is "
            "refused (resource-constraint), whatever the users' quotas (many accounts cannot "
            "fill the disk)"},
    {.key = "expire_after",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_upload_config, expire_after),
     .def = "7d",
     .min = 1000,
     .max = 3650ULL * 86400000,
     .doc = "how long a file is kept (removed within the hour after)"},
    {.key = "slot_ttl",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_upload_config, slot_ttl),
     .def = "5m",
     .min = 10000,
     .max = 86400000,
     .doc = "how long a slot's PUT URL may be used (a restart also ends it)"},
    {.key = "max_connections",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_upload_config, max_connections),
     .def = "32",
     .min = 1,
     .max = 100000,
     .doc = "connections of the listener at once (a quarter of them per source address)"},
};

static const struct cm_cfg_schema upload_schema = {
    .name = "upload",
    .size = sizeof(struct xc_upload_config),
    .fields = upload_fields,
    .nfields = sizeof(upload_fields) / sizeof(upload_fields[0]),
    .validate = upload_validate,
};

static const struct cm_cfg_field private_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_private_config, enabled),
     .def = "true",
     .doc = "private XML storage (XEP-0049): settings and bookmarks a client keeps on the "
            "server, readable by the account's own sessions only"},
    {.key = "max_bytes",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct xc_private_config, max_bytes),
     .def = "128k",
     .min = 1024,
     .max = 16 << 20,
     .doc = "largest element kept, as XML; a larger one is refused"},
    {.key = "max_namespaces",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_private_config, max_namespaces),
     .def = "64",
     .min = 1,
     .max = 1000,
     .doc = "elements (one per namespace) one account keeps; a set that would keep one more "
            "is refused"},
};

static const struct cm_cfg_schema private_schema = {
    .name = "private_storage",
    .size = sizeof(struct xc_private_config),
    .fields = private_fields,
    .nfields = sizeof(private_fields) / sizeof(private_fields[0]),
};

/* A URI by RFC 3986's shape: a scheme (a letter, then letters, digits, "+", "-", ".") and
 * something after its colon, printable ASCII without spaces. */
static bool uri_like(const char *s)
{
	const char *p = s;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || !p[1])
		return false;
	for (p++; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static void contact_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_contact_config *c = obj;

	for (int k = 0; k < XC_CONTACT_NKINDS; k++)
		for (size_t i = 0; i < c->addrs[k].n; i++)
			if (!uri_like(c->addrs[k].v[i]))
				cm_cfg_check_error(chk, xc_contact_kinds[k],
				                   "\"%s\" is not a URI (mailto:..., xmpp:..., "
				                   "https://...)",
				                   c->addrs[k].v[i]);
}

const char *const xc_contact_kinds[XC_CONTACT_NKINDS] = {
    [XC_CONTACT_ABUSE] = "abuse",       [XC_CONTACT_ADMIN] = "admin",
    [XC_CONTACT_FEEDBACK] = "feedback", [XC_CONTACT_SALES] = "sales",
    [XC_CONTACT_SECURITY] = "security", [XC_CONTACT_STATUS] = "status",
    [XC_CONTACT_SUPPORT] = "support",
};

static const struct cm_cfg_field contact_fields[] = {
    {.key = "abuse",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_ABUSE]),
     .def = "[]",
     .doc = "where to report abuse of the service (spam from its users), as URIs: "
            "mailto:abuse@example.org, xmpp:abuse@example.org"},
    {.key = "admin",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_ADMIN]),
     .def = "[]",
     .doc = "the service's administrators, as URIs"},
    {.key = "feedback",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_FEEDBACK]),
     .def = "[]",
     .doc = "where to send feedback, as URIs"},
    {.key = "sales",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_SALES]),
     .def = "[]",
     .doc = "sales, as URIs"},
    {.key = "security",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_SECURITY]),
     .def = "[]",
     .doc = "where to report security issues, as URIs"},
    {.key = "status",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_STATUS]),
     .def = "[]",
     .doc = "where the service's status is told (a status page), as URIs"},
    {.key = "support",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_contact_config, addrs[XC_CONTACT_SUPPORT]),
     .def = "[]",
     .doc = "where users get help, as URIs"},
};

static const struct cm_cfg_schema contact_schema = {
    .name = "contact",
    .size = sizeof(struct xc_contact_config),
    .fields = contact_fields,
    .nfields = sizeof(contact_fields) / sizeof(contact_fields[0]),
    .validate = contact_validate,
};

static const struct cm_cfg_field fast_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_fast_config, enabled),
     .def = "true",
     .doc = "offer FAST tokens (XEP-0484) with SASL2: a client that logged in with its password "
            "gets a token and logs in with it in one round trip (HT-SHA-256-NONE, -ENDP)"},
    {.key = "token_lifetime",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_fast_config, token_lifetime),
     .def = "14d",
     .min = 1000,
     .max = 31536000000LL,
     .doc = "how long a FAST token is valid after it was issued; a client away longer logs "
            "in with its password again"},
    {.key = "rotate_before",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_fast_config, rotate_before),
     .def = "2d",
     .min = 0,
     .max = 31536000000LL,
     .doc = "a login with a token that expires sooner than this gets a new token (the old one "
            "works until the new one is used); 0: only when the client asks"},
};

static const struct cm_cfg_schema fast_schema = {
    .name = "fast",
    .size = sizeof(struct xc_fast_config),
    .fields = fast_fields,
    .nfields = sizeof(fast_fields) / sizeof(fast_fields[0]),
};

static const struct cm_cfg_field sm_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_sm_config, enabled),
     .def = "true",
     .doc = "offer stream management (XEP-0198): acknowledgements, and sessions that survive "
            "a dropped connection"},
    {.key = "resume_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_sm_config, resume_timeout),
     .def = "5m",
     .min = 1000,
     .max = 86400000,
     .doc = "how long a session whose connection dropped waits for its client to resume it; "
            "then what it did not acknowledge goes to the user's other sessions or offline"},
    {.key = "max_queue",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_sm_config, max_queue),
     .def = "1000",
     .min = 1,
     .max = 100000,
     .doc = "stanzas a client may leave unacknowledged; beyond, its stream ends "
            "(policy-violation) and they are delivered elsewhere"},
    {.key = "ack_every",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_sm_config, ack_every),
     .def = "5",
     .min = 1,
     .max = 1000,
     .doc = "the server asks for an acknowledgement after this many stanzas (and after a "
            "quiet second)"},
};

static const struct cm_cfg_schema sm_schema = {
    .name = "stream_management",
    .size = sizeof(struct xc_sm_config),
    .fields = sm_fields,
    .nfields = sizeof(sm_fields) / sizeof(sm_fields[0]),
};

static const struct cm_cfg_field csi_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_csi_config, enabled),
     .def = "true",
     .doc = "offer client state indication (XEP-0352): while a client says it is inactive, "
            "presence updates and other stanzas that can wait are held"},
    {.key = "max_held",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_csi_config, max_held),
     .def = "100",
     .min = 1,
     .max = 10000,
     .doc = "stanzas held for an inactive client; when there are this many, they are all "
            "sent"},
};

static const struct cm_cfg_schema csi_schema = {
    .name = "csi",
    .size = sizeof(struct xc_csi_config),
    .fields = csi_fields,
    .nfields = sizeof(csi_fields) / sizeof(csi_fields[0]),
};

static const struct cm_cfg_field register_fields[] = {
    {.key = "enabled",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_register_config, enabled),
     .def = "false",
     .doc = "in-band registration (XEP-0077) of new accounts"},
    {.key = "per_ip_per_hour",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_register_config, per_ip_per_hour),
     .def = "5",
     .min = 1,
     .max = 100000,
     .doc = "accounts one address may register per hour"},
};

static const struct cm_cfg_schema register_schema = {
    .name = "registration",
    .size = sizeof(struct xc_register_config),
    .fields = register_fields,
    .nfields = sizeof(register_fields) / sizeof(register_fields[0]),
};

static void component_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_component_config *c = obj;
	char err[CM_ERR_MAX];
	struct xc_jid j;

	if (!c->domain)
		return;
	if (xc_jid_parse(&j, c->domain, strlen(c->domain), err, sizeof(err)) != 0 || j.llen ||
	    j.rlen)
		cm_cfg_check_error(chk, "domain", "\"%s\" is not a domain", c->domain);
	xc_jid_free(&j);
}

static const struct cm_cfg_field component_fields[] = {
    {.key = "domain",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_component_config, domain),
     .flags = CM_CFG_REQUIRED,
     .doc = "the component's domain (push.example.com)"},
    {.key = "secret",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct xc_component_config, secret),
     .flags = CM_CFG_REQUIRED,
     .doc = "file holding the handshake secret shared with the component (read at start: a "
            "new secret needs a restart)"},
};

static const struct cm_cfg_schema component_schema = {
    .name = "component",
    .size = sizeof(struct xc_component_config),
    .fields = component_fields,
    .nfields = sizeof(component_fields) / sizeof(component_fields[0]),
    .validate = component_validate,
};

static void components_validate(void *obj, struct cm_cfg_check *chk)
{
	check_addrs(chk, "listen", &((const struct xc_components_config *)obj)->listen);
}

static const struct cm_cfg_field components_fields[] = {
    {.key = "listen",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_components_config, listen),
     .def = "[\"127.0.0.1:5347\"]",
     .doc = "XEP-0114 component listeners, IP:PORT each (keep them on loopback or a private "
            "network)"},
    {.key = "list",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct xc_components_config, list),
     .sub = &component_schema,
     .doc = "the components allowed to connect"},
};

static const struct cm_cfg_schema components_schema = {
    .name = "components",
    .size = sizeof(struct xc_components_config),
    .fields = components_fields,
    .nfields = sizeof(components_fields) / sizeof(components_fields[0]),
    .validate = components_validate,
};

static void turn_server_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_turn_server_config *t = obj;

	if (t->host && (!t->host[0] || strpbrk(t->host, " \t/'\"<>&")))
		cm_cfg_check_error(chk, "host", "\"%s\" is not a host name or address", t->host);
	for (size_t i = 0; i < t->transports.n; i++)
		if (strcmp(t->transports.v[i], "udp") != 0 &&
		    strcmp(t->transports.v[i], "tcp") != 0)
			cm_cfg_check_error(chk, "transports", "\"%s\": expected udp or tcp",
			                   t->transports.v[i]);
	if (t->transports.n == 0 && !t->stun && !t->turns_port)
		cm_cfg_check_error(chk, "transports",
		                   "the server offers nothing (no transport, "
		                   "no stun, no turns_port)");
}

static const struct cm_cfg_field turn_server_fields[] = {
    {.key = "host",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct xc_turn_server_config, host),
     .flags = CM_CFG_REQUIRED,
     .doc = "the name or address clients reach the TURN server at (turn.example.com)"},
    {.key = "port",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_turn_server_config, port),
     .def = "3478",
     .min = 1,
     .max = 65535,
     .doc = "its STUN/TURN port, UDP and TCP"},
    {.key = "transports",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_turn_server_config, transports),
     .def = "[udp, tcp]",
     .doc = "TURN transports offered on port: udp, tcp"},
    {.key = "stun",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_turn_server_config, stun),
     .def = "true",
     .doc = "offer it as a STUN server too (UDP, on port)"},
    {.key = "turns_port",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_turn_server_config, turns_port),
     .def = "0",
     .min = 0,
     .max = 65535,
     .doc = "its TURN over TLS port (5349), offered as type turns; 0: not offered"},
};

static const struct cm_cfg_schema turn_server_schema = {
    .name = "server",
    .size = sizeof(struct xc_turn_server_config),
    .fields = turn_server_fields,
    .nfields = sizeof(turn_server_fields) / sizeof(turn_server_fields[0]),
    .validate = turn_server_validate,
};

static void extdisco_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_extdisco_config *x = obj;

	if (x->servers.n && !x->secret_file.path)
		cm_cfg_check_error(chk, "secret_file",
		                   "needed when servers are listed: the TURN REST secret the "
		                   "servers check credentials with");
}

static const struct cm_cfg_field extdisco_fields[] = {
    {.key = "secret_file",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct xc_extdisco_config, secret_file),
     .doc = "file holding the TURN REST shared secret, the same file as icicle's "
            "auth.secret_file (its first line that is neither empty nor a # comment issues "
            "credentials; read at start)"},
    {.key = "lifetime",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct xc_extdisco_config, lifetime),
     .def = "1d",
     .min = 60000,
     .max = 30LL * 86400000,
     .doc = "how long the TURN credentials handed out stay valid"},
    {.key = "servers",
     .type = CM_CFG_LIST,
     .offset = offsetof(struct xc_extdisco_config, servers),
     .sub = &turn_server_schema,
     .doc = "STUN/TURN servers (icicle) handed to clients by XEP-0215, with credentials; "
            "empty: XEP-0215 is off"},
};

static const struct cm_cfg_schema extdisco_schema = {
    .name = "extdisco",
    .size = sizeof(struct xc_extdisco_config),
    .fields = extdisco_fields,
    .nfields = sizeof(extdisco_fields) / sizeof(extdisco_fields[0]),
    .validate = extdisco_validate,
};

static void top_validate(void *obj, struct cm_cfg_check *chk)
{
	const struct xc_config *c = obj;
	char err[CM_ERR_MAX];

	if (c->hosts.n == 0)
		cm_cfg_check_error(chk, "hosts", "at least one host is needed");
	for (size_t i = 0; i < c->hosts.n; i++) {
		struct xc_jid j;

		if (xc_jid_parse(&j, c->hosts.v[i], strlen(c->hosts.v[i]), err, sizeof(err)) != 0 ||
		    j.llen || j.rlen || strcmp(j.s, c->hosts.v[i]) != 0)
			cm_cfg_check_error(
			    chk, "hosts",
			    "\"%s\" is not a domain in its normal form (lower case, no "
			    "final dot)",
			    c->hosts.v[i]);
		xc_jid_free(&j);
	}
	for (size_t i = 0; i < c->push.rest.n; i++) {
		const struct xc_push_rest_config *r =
		    (const struct xc_push_rest_config *)c->push.rest.items + i;
		size_t k = 0;

		while (k < c->hosts.n && strcmp(c->hosts.v[k], r->host) != 0)
			k++;
		if (k == c->hosts.n)
			cm_cfg_check_error(chk, "push.rest",
			                   "host \"%s\" is not one of the hosts served", r->host);
	}
}

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct xc_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for client connections (STARTTLS on 5222, direct TLS on 5223)"},
    {.key = "hosts",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct xc_config, hosts),
     .def = "[localhost]",
     .doc = "the domains served (user@HOST)"},
    {.key = "workers",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_config, workers),
     .def = "0",
     .min = 0,
     .max = 256,
     .doc = "event loops serving clients (0: one per CPU)"},
    {.key = "worker_slice_us",
     .type = CM_CFG_INT,
     .offset = offsetof(struct xc_config, worker_slice_us),
     .def = "100",
     .min = 0,
     .max = 100000,
     .doc = "time slice (microseconds) each worker asks of the kernel's scheduler, so that a "
            "loop woken by a client runs before a busy process's longer slice ends (Linux 6.12 "
            "and later; the kernel takes at least 100; 0: the kernel's default)"},
    {.key = "c2s",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, c2s),
     .sub = &c2s_schema,
     .doc = "client connections"},
    {.key = "websocket",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, websocket),
     .sub = &websocket_schema,
     .doc = "XMPP over WebSocket, for browsers"},
    {.key = "auth",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, auth),
     .sub = &auth_schema,
     .doc = "authentication"},
    {.key = "fast",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, fast),
     .sub = &fast_schema,
     .doc = "FAST tokens (XEP-0484) for reconnecting in one round trip"},
    {.key = "storage",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, storage),
     .sub = &storage_schema,
     .doc = "where accounts and messages are kept"},
    {.key = "offline",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, offline),
     .sub = &offline_schema,
     .doc = "messages for users who are away (XEP-0160)"},
    {.key = "archive",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, archive),
     .sub = &archive_schema,
     .doc = "the message archive (XEP-0313)"},
    {.key = "stream_management",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, sm),
     .sub = &sm_schema,
     .doc = "stream management (XEP-0198)"},
    {.key = "csi",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, csi),
     .sub = &csi_schema,
     .doc = "client state indication (XEP-0352)"},
    {.key = "pep",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, pep),
     .sub = &pep_schema,
     .doc = "personal eventing (XEP-0163) and vCards (XEP-0054)"},
    {.key = "upload",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, upload),
     .sub = &upload_schema,
     .doc = "HTTP File Upload (XEP-0363)"},
    {.key = "private_storage",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, private_xml),
     .sub = &private_schema,
     .doc = "private XML storage (XEP-0049)"},
    {.key = "push",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, push),
     .sub = &xc_push_schema,
     .doc = "push notifications (XEP-0357) through an app server such as platypus"},
    {.key = "registration",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, registration),
     .sub = &register_schema,
     .doc = "in-band registration"},
    {.key = "components",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, components),
     .sub = &components_schema,
     .doc = "external components (XEP-0114), platypus among them"},
    {.key = "extdisco",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, extdisco),
     .sub = &extdisco_schema,
     .doc = "external services (XEP-0215): STUN/TURN servers and their credentials for calls"},
    {.key = "contact",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct xc_config, contact),
     .sub = &contact_schema,
     .doc = "the service's contact addresses (XEP-0157), shown by clients in its server "
            "information"},
    {.key = "hide_version",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct xc_config, hide_version),
     .def = "false",
     .doc = "answer XEP-0092 version queries without the version"},
    {.key = "api_token",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct xc_config, api_token),
     .flags = CM_CFG_RELOAD,
     .doc = "file holding the bearer token of the account and session API on the admin port "
            "(what xmppctl uses); unset: that API is off"},
};

const struct cm_cfg_schema xc_config_schema = {
    .name = "xmpp-core",
    .size = sizeof(struct xc_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .validate = top_validate,
};
