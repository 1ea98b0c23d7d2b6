/* config.c - icicle's configuration schema (config/icicle.yaml) and the checks across keys. */
#include "icicle.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "cm/err.h"

CM_DAEMON_ADMIN_SCHEMA(admin_schema, "127.0.0.1:9641");

static void check_addrs(struct cm_cfg_check *chk, const char *key, const struct cm_cfg_strlist *l)
{
	struct cm_cfg_addr a;
	char why[CM_ERR_MAX];
	size_t i;

	for (i = 0; i < l->n; i++)
		if (cm_cfg_parse_addr(l->v[i], &a, why, sizeof(why)) != 0)
			cm_cfg_check_error(chk, key, "\"%s\": %s", l->v[i], why);
}

static void validate_listen(void *obj, struct cm_cfg_check *chk)
{
	struct icicle_listen_config *c = obj;

	check_addrs(chk, "udp", &c->udp);
	check_addrs(chk, "tcp", &c->tcp);
	check_addrs(chk, "tls", &c->tls);
}

static void check_ip(struct cm_cfg_check *chk, const char *key, const char *v, int af)
{
	unsigned char buf[16];

	if (v && *v && inet_pton(af, v, buf) != 1)
		cm_cfg_check_error(chk, key, "\"%s\" is not an %s address", v,
		                   af == AF_INET ? "IPv4" : "IPv6");
}

static void validate_relay(void *obj, struct cm_cfg_check *chk)
{
	struct icicle_relay_config *c = obj;

	check_ip(chk, "ipv4", c->ipv4, AF_INET);
	check_ip(chk, "ipv6", c->ipv6, AF_INET6);
	check_ip(chk, "external_ipv4", c->external_ipv4, AF_INET);
	check_ip(chk, "external_ipv6", c->external_ipv6, AF_INET6);
	if (c->min_port > c->max_port)
		cm_cfg_check_error(chk, "min_port", "min_port (%lld) is above max_port (%lld)",
		                   c->min_port, c->max_port);
	if ((!c->ipv4 || !*c->ipv4) && (!c->ipv6 || !*c->ipv6))
		cm_cfg_check_error(chk, "ipv4", "ipv4 and ipv6 are both empty: no relay possible");
}

static void check_cidrs(struct cm_cfg_check *chk, const char *key, const struct cm_cfg_strlist *l)
{
	struct icicle_cidr c;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (icicle_cidr_parse(l->v[i], &c) != 0)
			cm_cfg_check_error(chk, key, "\"%s\" is not an address or ADDRESS/BITS",
			                   l->v[i]);
}

static void validate_filter(void *obj, struct cm_cfg_check *chk)
{
	struct icicle_filter_config *c = obj;

	check_cidrs(chk, "deny", &c->deny);
	check_cidrs(chk, "allow", &c->allow);
}

static void validate_lifetimes(void *obj, struct cm_cfg_check *chk)
{
	struct icicle_lifetime_config *c = obj;

	if (c->allocation_default > c->allocation_max)
		cm_cfg_check_error(chk, "allocation_default", "is above allocation_max");
}

static void validate_top(void *obj, struct cm_cfg_check *chk)
{
	struct icicle_config *c = obj;

	if (!c->realm || !*c->realm)
		cm_cfg_check_error(chk, "realm", "must not be empty");
	else if (strlen(c->realm) > 127)
		cm_cfg_check_error(chk, "realm", "longer than 127 bytes");
	if (c->software && strlen(c->software) > 127)
		cm_cfg_check_error(chk, "software", "longer than 127 bytes");
}

static const struct cm_cfg_field listen_fields[] = {
    {.key = "udp",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct icicle_listen_config, udp),
     .def = "[\"0.0.0.0:3478\"]",
     .doc = "STUN/TURN over UDP: IP:PORT or [IPv6]:PORT, one socket per worker thread"},
    {.key = "tcp",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct icicle_listen_config, tcp),
     .def = "[\"0.0.0.0:3478\"]",
     .doc = "STUN/TURN over TCP (client transport; relays are UDP)"},
    {.key = "tls",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct icicle_listen_config, tls),
     .def = "[\"0.0.0.0:5349\"]",
     .doc = "STUN/TURN over TLS; opened only when tls.certificate is set"},
};

static const struct cm_cfg_schema listen_schema = {
    .name = "listen",
    .size = sizeof(struct icicle_listen_config),
    .fields = listen_fields,
    .nfields = sizeof(listen_fields) / sizeof(listen_fields[0]),
    .validate = validate_listen,
};

static const struct cm_cfg_field auth_fields[] = {
    {.key = "secret_file",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct icicle_auth_config, secret_file),
     .flags = CM_CFG_RELOAD,
     .doc = "TURN REST shared secrets, one per line: all are accepted, so a new one can be "
            "added before the old one is removed"},
    {.key = "users_file",
     .type = CM_CFG_SECRET,
     .offset = offsetof(struct icicle_auth_config, users_file),
     .flags = CM_CFG_RELOAD,
     .doc = "static users, one \"name:password\" per line"},
    {.key = "nonce_lifetime",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct icicle_auth_config, nonce_lifetime),
     .def = "10m",
     .min = 1000,
     .max = 86400000,
     .doc = "how long a nonce stays valid before 438 Stale Nonce"},
};

static const struct cm_cfg_schema auth_schema = {
    .name = "auth",
    .size = sizeof(struct icicle_auth_config),
    .fields = auth_fields,
    .nfields = sizeof(auth_fields) / sizeof(auth_fields[0]),
};

static const struct cm_cfg_field relay_fields[] = {
    {.key = "ipv4",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_relay_config, ipv4),
     .def = "0.0.0.0",
     .doc = "bind address of IPv4 relay sockets (\"\" disables IPv4 relays)"},
    {.key = "ipv6",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_relay_config, ipv6),
     .def = "",
     .doc = "bind address of IPv6 relay sockets, e.g. \"::\" (\"\" disables IPv6 relays)"},
    {.key = "external_ipv4",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_relay_config, external_ipv4),
     .def = "",
     .doc = "public IPv4 address advertised in XOR-RELAYED-ADDRESS behind a 1:1 NAT"},
    {.key = "external_ipv6",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_relay_config, external_ipv6),
     .def = "",
     .doc = "public IPv6 address advertised in XOR-RELAYED-ADDRESS"},
    {.key = "min_port",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_relay_config, min_port),
     .def = "49152",
     .min = 1024,
     .max = 65535,
     .doc = "lowest relay port"},
    {.key = "max_port",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_relay_config, max_port),
     .def = "65535",
     .min = 1024,
     .max = 65535,
     .doc = "highest relay port"},
};

static const struct cm_cfg_schema relay_schema = {
    .name = "relay",
    .size = sizeof(struct icicle_relay_config),
    .fields = relay_fields,
    .nfields = sizeof(relay_fields) / sizeof(relay_fields[0]),
    .validate = validate_relay,
};

static const struct cm_cfg_field filter_fields[] = {
    {.key = "deny_defaults",
     .type = CM_CFG_BOOL,
     .offset = offsetof(struct icicle_filter_config, deny_defaults),
     .def = "true",
     .doc = "deny loopback, private, CGNAT, link-local (cloud metadata), multicast, reserved, "
            "documentation and NAT64 ranges (docs/icicle.md lists them)"},
    {.key = "deny",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct icicle_filter_config, deny),
     .def = "[]",
     .doc = "more peer ranges to deny (ADDRESS/BITS)"},
    {.key = "allow",
     .type = CM_CFG_STRLIST,
     .offset = offsetof(struct icicle_filter_config, allow),
     .def = "[]",
     .doc = "peer ranges to allow even when denied above (ADDRESS/BITS)"},
};

static const struct cm_cfg_schema filter_schema = {
    .name = "filter",
    .size = sizeof(struct icicle_filter_config),
    .fields = filter_fields,
    .nfields = sizeof(filter_fields) / sizeof(filter_fields[0]),
    .validate = validate_filter,
};

static const struct cm_cfg_field quota_fields[] = {
    {.key = "allocations_per_user",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, allocations_per_user),
     .def = "10",
     .min = 0,
     .max = 1000000,
     .doc = "allocations one user may hold at once (486 beyond; 0 = no limit); a TURN REST user "
            "counts once for all its credentials (EXPIRY:USER counts as USER)"},
    {.key = "allocations_total",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, allocations_total),
     .def = "20000",
     .min = 0,
     .max = 10000000,
     .doc = "allocations the server holds at once (508 beyond; 0 = no limit)"},
    {.key = "permissions_per_allocation",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, permissions_per_allocation),
     .def = "32",
     .min = 1,
     .max = 1024,
     .doc = "peer addresses one allocation may have permissions for (508 beyond)"},
    {.key = "channels_per_allocation",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, channels_per_allocation),
     .def = "32",
     .min = 1,
     .max = 16384,
     .doc = "channels one allocation may bind (508 beyond)"},
    {.key = "bandwidth_per_allocation",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct icicle_quota_config, bandwidth_per_allocation),
     .def = "0",
     .doc = "bytes per second relayed for one allocation, each direction (0 = no limit)"},
    {.key = "bandwidth_per_user",
     .type = CM_CFG_SIZE,
     .offset = offsetof(struct icicle_quota_config, bandwidth_per_user),
     .def = "0",
     .doc = "bytes per second relayed for all allocations of one user together (counted as "
            "allocations_per_user counts), each direction, on top of bandwidth_per_allocation "
            "(0 = no limit)"},
    {.key = "unauthenticated_rate",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, unauthenticated_rate),
     .def = "20",
     .min = 0,
     .max = 1000000,
     .doc = "requests per second answered without authentication per source address (Binding, "
            "401s), per worker thread, UDP and TCP/TLS apart; 0 = no limit"},
    {.key = "unauthenticated_burst",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, unauthenticated_burst),
     .def = "40",
     .min = 1,
     .max = 1000000,
     .doc = "burst allowed above unauthenticated_rate"},
    {.key = "connections_per_worker",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, connections_per_worker),
     .def = "10000",
     .min = 0,
     .max = 1000000,
     .doc = "TCP and TLS client connections one worker thread holds; connections beyond are "
            "closed as soon as they are accepted (0 = no limit)"},
    {.key = "connections_per_source",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_quota_config, connections_per_source),
     .def = "100",
     .min = 0,
     .max = 1000000,
     .doc = "TCP and TLS client connections one source address (an IPv6 /64) holds, all worker "
            "threads together; connections beyond are closed as soon as they are accepted (0 = "
            "no limit)"},
    {.key = "message_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct icicle_quota_config, message_timeout),
     .def = "10s",
     .min = 1000,
     .max = 300000,
     .doc = "TCP/TLS: once a client has sent part of a STUN message or ChannelData frame, it has "
            "this long to send the rest, or its connection is closed"},
    {.key = "tls_handshake_timeout",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct icicle_quota_config, tls_handshake_timeout),
     .def = "10s",
     .min = 1000,
     .max = 300000,
     .doc = "a TLS client has this long from connecting to finish its handshake, or its "
            "connection is closed"},
};

static const struct cm_cfg_schema quota_schema = {
    .name = "quotas",
    .size = sizeof(struct icicle_quota_config),
    .fields = quota_fields,
    .nfields = sizeof(quota_fields) / sizeof(quota_fields[0]),
};

static const struct cm_cfg_field lifetime_fields[] = {
    {.key = "allocation_default",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct icicle_lifetime_config, allocation_default),
     .def = "10m",
     .min = 60000,
     .max = 3600000,
     .doc = "allocation lifetime when the client asks for none or less"},
    {.key = "allocation_max",
     .type = CM_CFG_DURATION,
     .offset = offsetof(struct icicle_lifetime_config, allocation_max),
     .def = "1h",
     .min = 60000,
     .max = 3600000,
     .doc = "longest allocation lifetime granted"},
};

static const struct cm_cfg_schema lifetime_schema = {
    .name = "lifetimes",
    .size = sizeof(struct icicle_lifetime_config),
    .fields = lifetime_fields,
    .nfields = sizeof(lifetime_fields) / sizeof(lifetime_fields[0]),
    .validate = validate_lifetimes,
};

static const struct cm_cfg_field fields[] = {
    CM_DAEMON_BASE_FIELDS(struct icicle_config, admin_schema),
    {.key = "tls",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, tls),
     .sub = &cm_daemon_tls_schema,
     .doc = "certificate for TURN over TLS (port 5349)"},
    {.key = "listen",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, listen),
     .sub = &listen_schema,
     .doc = "client-facing listeners"},
    {.key = "realm",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_config, realm),
     .def = "icicle",
     .doc = "REALM of the long-term credentials (part of every key: changing it needs a "
            "restart)"},
    {.key = "auth",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, auth),
     .sub = &auth_schema,
     .doc = "credentials (re-read on SIGHUP)"},
    {.key = "relay",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, relay),
     .sub = &relay_schema,
     .doc = "relay sockets"},
    {.key = "filter",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, filter),
     .sub = &filter_schema,
     .doc = "which peers clients may relay to"},
    {.key = "quotas",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, quotas),
     .sub = &quota_schema,
     .doc = "limits per user, per allocation, per source and per connection"},
    {.key = "lifetimes",
     .type = CM_CFG_SECTION,
     .offset = offsetof(struct icicle_config, lifetimes),
     .sub = &lifetime_schema,
     .doc = "allocation lifetimes (permissions last 300 s, channels 600 s, per RFC 8656)"},
    {.key = "threads",
     .type = CM_CFG_INT,
     .offset = offsetof(struct icicle_config, threads),
     .def = "0",
     .min = 0,
     .max = 256,
     .doc = "worker threads (0 = one per CPU)"},
    {.key = "software",
     .type = CM_CFG_STRING,
     .offset = offsetof(struct icicle_config, software),
     .def = "",
     .doc = "SOFTWARE attribute sent in responses (\"\" = none, the default: no version "
            "disclosure)"},
};

const struct cm_cfg_schema icicle_config_schema = {
    .name = "icicle",
    .size = sizeof(struct icicle_config),
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .validate = validate_top,
};

int icicle_creds_from_config(const struct icicle_config *cfg, struct icicle_creds **out, char *err,
                             size_t errlen)
{
	const struct cm_secret *s = &cfg->auth.secret_file, *u = &cfg->auth.users_file;
	char why[CM_ERR_MAX];
	int rc;

	rc = icicle_creds_alloc(out, s->data ? (const char *)s->data : NULL, s->len,
	                        u->data ? (const char *)u->data : NULL, u->len, why, sizeof(why));
	if (rc == -EINVAL)
		return cm_errf(err, errlen, rc, "%s: %s", u->path ? u->path : "auth.users_file",
		               why);
	if (rc != 0)
		return cm_errf(err, errlen, rc, "loading credentials: %s", why);
	return 0;
}
