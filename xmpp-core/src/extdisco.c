/* extdisco.c - XEP-0215 external service discovery with TURN REST credentials (extdisco.h). */
#include "extdisco.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "xc.h"

struct extdisco_metrics {
	struct cm_counter *services;    /* <services/> answered */
	struct cm_counter *credentials; /* <credentials/> answered */
	struct cm_counter *refused;     /* refused: not a local session, bad request, no match */
};

struct xc_extdisco {
	const struct xc_extdisco_config *cfg; /* borrowed */
	const unsigned char *secret;          /* borrowed from cfg: the first usable line */
	size_t secretlen;
	struct extdisco_metrics m;
};

#define EXTDISCO_HELP "XEP-0215 requests for STUN/TURN services and credentials, by result."

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct extdisco_metrics, services, "xmpp_extdisco_requests_total",
                          EXTDISCO_HELP, "result", "services"),
    CM_METRIC_COUNTER_DEF(struct extdisco_metrics, credentials, "xmpp_extdisco_requests_total",
                          EXTDISCO_HELP, "result", "credentials"),
    CM_METRIC_COUNTER_DEF(struct extdisco_metrics, refused, "xmpp_extdisco_requests_total",
                          EXTDISCO_HELP, "result", "refused"),
};

/* The first line of the secret file that is neither blank nor a comment, trimmed as icicle
 * trims its lines, so that both read the same secret from the same file. */
static bool first_secret(const unsigned char *text, size_t len, const unsigned char **line,
                         size_t *n)
{
	size_t pos = 0;

	while (pos < len) {
		size_t s = pos, e = pos;

		while (e < len && text[e] != '\n')
			e++;
		pos = e < len ? e + 1 : e;
		while (s < e && (text[s] == ' ' || text[s] == '\t'))
			s++;
		while (e > s && (text[e - 1] == '\r' || text[e - 1] == ' ' || text[e - 1] == '\t'))
			e--;
		if (e > s && text[s] != '#') {
			*line = text + s;
			*n = e - s;
			return true;
		}
	}
	return false;
}

int xc_extdisco_alloc(struct xc_extdisco **out, const struct xc_extdisco_config *cfg,
                      struct cm_metrics *metrics, char *err, size_t errlen)
{
	struct xc_extdisco *x = calloc(1, sizeof(*x));
	int r;

	*out = NULL;
	if (!x)
		return cm_errf(err, errlen, -ENOMEM, "out of memory");
	x->cfg = cfg;
	if (cfg->servers.n &&
	    (!cfg->secret_file.data || !first_secret(cfg->secret_file.data, cfg->secret_file.len,
	                                             &x->secret, &x->secretlen))) {
		r = cm_errf(err, errlen, -ENODATA,
		            "extdisco.secret_file %s: no secret in it (only blank or # lines)",
		            cfg->secret_file.path ? cfg->secret_file.path : "(unset)");
		free(x);
		return r;
	}
	if (metrics) {
		r = cm_metrics_register(metrics, &x->m, metric_defs,
		                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, errlen);
		if (r) {
			free(x);
			return r;
		}
	}
	*out = x;
	return 0;
}

void xc_extdisco_free(struct xc_extdisco *x)
{
	free(x);
}

bool xc_extdisco_enabled(const struct xc_extdisco *x)
{
	return x && x->cfg->servers.n > 0;
}

int xc_extdisco_credentials(const void *secret, size_t secretlen, const char *user, size_t len,
                            int64_t expiry, struct cm_buf *username, struct cm_buf *password)
{
	unsigned char mac[CM_SHA1_LEN];
	size_t start = username->len;
	int r;

	r = cm_buf_printf(username, "%" PRId64 ":", expiry);
	r = r ? r : cm_buf_append(username, user, len);
	r = r ? r
	      : cm_crypto_hmac_sha1(secret, secretlen, username->data + start,
	                            username->len - start, mac);
	r = r ? r : cm_crypto_b64_encode(password, mac, sizeof(mac), CM_B64_STD);
	cm_crypto_wipe(mac, sizeof(mac));
	return r;
}

/* XEP-0082 date and time, UTC, whole seconds. */
static void format_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* What one offered service is; with a username when it needs credentials. */
struct offer {
	const char *type;      /* stun, turn, turns */
	const char *host;      /* borrowed from the configuration */
	long long port;        /* 1..65535 */
	const char *transport; /* udp, tcp */
};

/* Whether o passes a request's filter: a type (services) or a <service/> (credentials). */
static bool wanted(const struct offer *o, const char *type, const char *host, const char *port,
                   const char *transport)
{
	char p[8];

	if (type && strcmp(type, o->type) != 0)
		return false;
	if (host && strcmp(host, o->host) != 0)
		return false;
	snprintf(p, sizeof(p), "%lld", o->port);
	if (port && strcmp(port, p) != 0)
		return false;
	return !transport || strcmp(transport, o->transport) == 0;
}

/* Append <service/> for o to parent, with credentials for user unless it is a STUN one. */
static int add_service(const struct xc_extdisco *x, struct cm_xml_node *parent,
                       const struct offer *o, const char *user, size_t len, int64_t now)
{
	struct cm_xml_node *s;
	struct cm_buf name, pw;
	char port[8], expires[32];
	int64_t expiry = now + (int64_t)(x->cfg->lifetime / 1000);
	int r;

	snprintf(port, sizeof(port), "%lld", o->port);
	r = cm_xml_node_new_child(&s, parent, "service", NULL);
	r = r ? r : cm_xml_node_set_attr(s, "type", o->type);
	r = r ? r : cm_xml_node_set_attr(s, "host", o->host);
	r = r ? r : cm_xml_node_set_attr(s, "port", port);
	r = r ? r : cm_xml_node_set_attr(s, "transport", o->transport);
	if (r || strcmp(o->type, "stun") == 0)
		return r;
	cm_buf_init(&name, 0);
	cm_buf_init(&pw, 0);
	format_time(expiry, expires);
	r = xc_extdisco_credentials(x->secret, x->secretlen, user, len, expiry, &name, &pw);
	r = r ? r : cm_xml_node_set_attr(s, "username", name.data);
	r = r ? r : cm_xml_node_set_attr(s, "password", pw.data);
	r = r ? r : cm_xml_node_set_attr(s, "expires", expires);
	r = r ? r : cm_xml_node_set_attr(s, "restricted", "1");
	if (pw.data)
		cm_crypto_wipe(pw.data, pw.len);
	cm_buf_free(&name);
	cm_buf_free(&pw);
	return r;
}

/* Every service of the configuration that passes the filter, in configuration order; *n how
 * many matched. */
static int add_matching(const struct xc_extdisco *x, struct cm_xml_node *parent, const char *type,
                        const char *host, const char *port, const char *transport, const char *user,
                        size_t len, int64_t now, size_t *n)
{
	const struct xc_turn_server_config *srv = x->cfg->servers.items;
	int r = 0;

	*n = 0;
	for (size_t i = 0; i < x->cfg->servers.n && !r; i++) {
		const struct xc_turn_server_config *t = &srv[i];
		struct offer o[4];
		size_t no = 0;

		if (t->stun)
			o[no++] = (struct offer){"stun", t->host, t->port, "udp"};
		for (size_t k = 0; k < t->transports.n && no < 3; k++)
			o[no++] = (struct offer){"turn", t->host, t->port, t->transports.v[k]};
		if (t->turns_port)
			o[no++] = (struct offer){"turns", t->host, t->turns_port, "tcp"};
		for (size_t k = 0; k < no && !r; k++)
			if (wanted(&o[k], type, host, port, transport)) {
				r = add_service(x, parent, &o[k], user, len, now);
				(*n)++;
			}
	}
	return r;
}

int xc_extdisco_answer(const struct xc_extdisco *x, const struct cm_xml_node *q, const char *user,
                       size_t len, int64_t now, struct cm_xml_node **out, const char **cond)
{
	struct cm_xml_node *res = NULL;
	size_t n = 0;
	int r;

	*out = NULL;
	*cond = NULL;
	if (strcmp(q->name, "services") == 0) {
		/* XEP-0215 3.1: an optional type narrows the list; an unknown one matches nothing
		 */
		r = cm_xml_node_new(&res, "services", XC_NS_EXTDISCO);
		r = r ? r
		      : add_matching(x, res, cm_xml_attr(q, "type"), NULL, NULL, NULL, user, len,
		                     now, &n);
	} else if (strcmp(q->name, "credentials") == 0) {
		/* XEP-0215 3.3: one <service/> naming host and type (port and transport narrow) */
		const struct cm_xml_node *want = cm_xml_child(q, "service", XC_NS_EXTDISCO);
		const char *host = want ? cm_xml_attr(want, "host") : NULL;
		const char *type = want ? cm_xml_attr(want, "type") : NULL;

		if (!host || !type) {
			*cond = "bad-request";
			return 0;
		}
		r = cm_xml_node_new(&res, "credentials", XC_NS_EXTDISCO);
		r = r ? r
		      : add_matching(x, res, type, host, cm_xml_attr(want, "port"),
		                     cm_xml_attr(want, "transport"), user, len, now, &n);
		if (!r && n == 0) {
			cm_xml_node_free(res);
			*cond = "item-not-found";
			return 0;
		}
	} else {
		*cond = "bad-request";
		return 0;
	}
	if (r) {
		cm_xml_node_free(res);
		return r;
	}
	*out = res;
	return 0;
}

void xc_extdisco_iq(struct xc_shard *sh, const struct xc_c2s *own, struct cm_xml_node *iq)
{
	const struct xc_extdisco *x = sh->srv->extdisco;
	const struct cm_xml_node *q = NULL;
	struct cm_xml_node *res = NULL, *reply;
	const char *cond = NULL, *type = cm_xml_attr(iq, "type");
	struct xc_jid from = {0};
	int r;

	for (const struct cm_xml_node *n = iq->children; n && !q; n = n->next)
		if (n->kind == CM_XML_ELEMENT)
			q = n;
	if (!xc_extdisco_enabled(x)) {
		xc_bounce(sh, iq, "cancel", "service-unavailable");
		goto out;
	}
	if (!own) {
		/* a component, or anyone not logged in here: credentials are for local users */
		cm_metrics_inc(x->m.refused);
		xc_bounce(sh, iq, "auth", "forbidden");
		goto out;
	}
	if (!type || strcmp(type, "get") != 0 || !q) {
		cm_metrics_inc(x->m.refused);
		xc_bounce(sh, iq, "modify", "bad-request");
		goto out;
	}
	r = xc_stanza_jid(iq, "from", &from);
	r = r ? r
	      : xc_extdisco_answer(x, q, from.s, xc_jid_bare_len(&from), (int64_t)time(NULL), &res,
	                           &cond);
	if (r) {
		CM_LOGW("extdisco", "cannot answer %s: %s", from.s ? from.s : "?", strerror(-r));
		xc_bounce(sh, iq, "wait", "internal-server-error");
		goto out;
	}
	if (cond) {
		cm_metrics_inc(x->m.refused);
		xc_bounce(sh, iq, strcmp(cond, "item-not-found") == 0 ? "cancel" : "modify", cond);
		goto out;
	}
	cm_metrics_inc(strcmp(res->name, "services") == 0 ? x->m.services : x->m.credentials);
	reply = xc_iq_result(iq, res); /* takes res */
	if (reply)
		xc_route(sh, reply);
out:
	xc_jid_free(&from);
	cm_xml_node_free(iq);
}
