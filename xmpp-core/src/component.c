/* component.c - external components (XEP-0114) on shard 0 (component.h). */
#include "component.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/listener.h"
#include "cm/log.h"
#include "cm/stream.h"
#include "router.h"
#include "server.h"
#include "stanza.h"

#define STOP (-EINTR)

struct xc_comp {
	struct cm_list link; /* in sh->comps */
	struct xc_shard *sh; /* borrowed */
	struct cm_stream *s;
	struct cm_xml_parser *xp;              /* owned */
	const struct xc_component_config *cfg; /* borrowed: the one it claims */
	char id[17];
	bool authed, closing;
};

static const struct xc_component_config *config_for(const struct xc_server *srv, const char *domain,
                                                    size_t len)
{
	const struct cm_cfg_list *l = &srv->cfg->components.list;

	for (size_t i = 0; i < l->n; i++) {
		const struct xc_component_config *c =
		    (const struct xc_component_config *)l->items + i;

		if (strlen(c->domain) == len && strncasecmp(c->domain, domain, len) == 0)
			return c;
	}
	return NULL;
}

bool xc_component_known(const struct xc_server *srv, const char *domain, size_t len)
{
	return config_for(srv, domain, len) != NULL;
}

static void send_raw(struct xc_comp *k, const char *s, size_t n)
{
	if (k->s && !k->closing && cm_stream_write(k->s, s, n) == -ENOBUFS) {
		CM_LOGW("component", "%s does not read what it is sent; closing",
		        k->cfg ? k->cfg->domain : "a component");
		k->closing = true;
		cm_stream_abort(k->s, -ENOBUFS, false);
	}
}

static void comp_error(struct xc_comp *k, const char *cond, const char *text)
{
	char buf[512];
	int n;

	if (k->closing || !k->s)
		return;
	n = snprintf(buf, sizeof(buf),
	             "<stream:error><%s xmlns='" XC_NS_STREAMS "'/></stream:error></stream:stream>",
	             cond);
	send_raw(k, buf, (size_t)n);
	CM_LOGI("component", "%s: stream error %s%s%s", k->cfg ? k->cfg->domain : "?", cond,
	        text ? ": " : "", text ? text : "");
	k->closing = true;
	cm_stream_close(k->s, 0);
}

static int on_open(void *arg, const struct cm_xml_node *h)
{
	struct xc_comp *k = arg;
	const char *to = cm_xml_attr(h, "to");
	char buf[512];
	int n;

	xc_new_id(k->sh->srv, k->id);
	k->cfg = to ? config_for(k->sh->srv, to, strlen(to)) : NULL;
	n = snprintf(buf, sizeof(buf),
	             "<?xml version='1.0'?><stream:stream xmlns='" CM_XML_NS_COMPONENT
	             "' xmlns:stream='" CM_XML_NS_STREAM "' id='%s' from='%s'>",
	             k->id, k->cfg ? k->cfg->domain : "unknown");
	send_raw(k, buf, (size_t)n);
	if (!k->cfg) {
		comp_error(k, "host-unknown", to ? to : "no 'to'");
		return STOP;
	}
	return 0;
}

/* The handshake: hex(SHA-1(stream id || secret)), compared in constant time. */
static bool handshake_ok(const struct xc_comp *k, const char *got)
{
	unsigned char digest[CM_SHA1_LEN];
	struct cm_buf in, hex;
	bool ok;

	cm_buf_init(&in, 0);
	cm_buf_init(&hex, 0);
	ok = got && cm_buf_puts(&in, k->id) == 0 &&
	     cm_buf_append(&in, k->cfg->secret.data, k->cfg->secret.len) == 0 &&
	     cm_crypto_sha1(in.data, in.len, digest) == 0 &&
	     cm_crypto_hex(&hex, digest, sizeof(digest)) == 0 && strlen(got) == hex.len &&
	     cm_crypto_equal(got, hex.data, hex.len);
	if (in.data)
		memset(in.data, 0, in.len);
	cm_buf_free(&in);
	cm_buf_free(&hex);
	return ok;
}

static struct xc_comp *connected(struct xc_shard *sh, const struct xc_component_config *cfg)
{
	struct cm_list *n;

	cm_list_foreach(n, &sh->comps)
	{
		struct xc_comp *k = cm_list_entry(n, struct xc_comp, link);

		if (k->authed && !k->closing && k->cfg == cfg)
			return k;
	}
	return NULL;
}

static int on_stanza(void *arg, struct cm_xml_node *st)
{
	struct xc_comp *k = arg;
	const char *from;
	struct xc_jid fj;

	if (!k->authed) {
		if (strcmp(st->name, "handshake") != 0 || !handshake_ok(k, cm_xml_text(st))) {
			cm_xml_node_free(st);
			comp_error(k, "not-authorized", "bad handshake");
			return STOP;
		}
		cm_xml_node_free(st);
		/* a component reconnecting replaces its old, perhaps half-dead, connection */
		{
			struct xc_comp *old = connected(k->sh, k->cfg);

			if (old)
				comp_error(old, "conflict", "replaced by a new connection");
		}
		k->authed = true;
		send_raw(k, "<handshake/>", 12);
		CM_LOGI("component", "%s connected", k->cfg->domain);
		return 0;
	}
	if (xc_stanza_kind(st) == XC_OTHER) {
		cm_xml_node_free(st);
		comp_error(k, "unsupported-stanza-type", NULL);
		return STOP;
	}
	/* a component speaks for its own domain only */
	from = cm_xml_attr(st, "from");
	if (!from || xc_jid_parse(&fj, from, strlen(from), NULL, 0) != 0) {
		cm_xml_node_free(st);
		comp_error(k, "invalid-from", NULL);
		return STOP;
	}
	if (fj.dlen != strlen(k->cfg->domain) ||
	    strncmp(xc_jid_domain(&fj), k->cfg->domain, fj.dlen) != 0) {
		xc_jid_free(&fj);
		cm_xml_node_free(st);
		comp_error(k, "invalid-from", "not the component's domain");
		return STOP;
	}
	xc_jid_free(&fj);
	/* the component namespace is the client's for whoever receives it */
	cm_xml_node_rename_ns(st, CM_XML_NS_COMPONENT, CM_XML_NS_CLIENT);
	xc_route(k->sh, st);
	return 0;
}

static int on_close(void *arg)
{
	struct xc_comp *k = arg;

	if (!k->closing && k->s) {
		send_raw(k, "</stream:stream>", 16);
		k->closing = true;
		cm_stream_close(k->s, 0);
	}
	return STOP;
}

static void on_parse_error(void *arg, const char *condition, const char *detail)
{
	comp_error(arg, condition, detail);
}

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct xc_comp *k = cm_stream_data(s);

	if (!k->closing)
		(void)cm_xml_parser_feed(k->xp, data, len);
}

static void on_closed(struct cm_stream *s, int err)
{
	struct xc_comp *k = cm_stream_data(s);
	struct xc_shard *sh = k->sh;

	(void)err;
	if (k->authed)
		CM_LOGI("component", "%s disconnected", k->cfg->domain);
	cm_list_remove(&k->link);
	cm_xml_parser_free(k->xp);
	free(k);
	xc_shard_conn_gone(sh);
}

static void on_timeout(struct cm_stream *s)
{
	struct xc_comp *k = cm_stream_data(s);

	if (!k->authed)
		comp_error(k, "connection-timeout", "no handshake in time");
}

static const struct cm_stream_events events = {
    .read = on_read,
    .timeout = on_timeout,
    .closed = on_closed,
};

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	struct xc_shard *sh = cm_listener_data(ln);
	struct cm_xml_parser_cfg pc = {
	    .max_stanza = sh->srv->cfg->c2s.max_stanza,
	    .content_ns = CM_XML_NS_COMPONENT,
	    .open_cb = on_open,
	    .stanza_cb = on_stanza,
	    .close_cb = on_close,
	    .error_cb = on_parse_error,
	};
	struct xc_comp *k = calloc(1, sizeof(*k));

	if (!k) {
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	pc.arg = k;
	if (cm_xml_parser_alloc(&k->xp, &pc) != 0) {
		free(k);
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	k->sh = sh;
	k->s = s;
	cm_list_insert_tail(&sh->comps, &k->link);
	cm_stream_start(s, &events, k);
	cm_stream_timer(s, 10000);
}

static const struct cm_listener_events lev = {.accept = on_accept};

int xc_component_listen(struct xc_shard *sh)
{
	const struct cm_cfg_strlist *l = &sh->srv->cfg->components.listen;

	if (sh->srv->cfg->components.list.n == 0 || l->n == 0)
		return 0;
	sh->comp_listeners = calloc(l->n, sizeof(*sh->comp_listeners));
	if (!sh->comp_listeners)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		struct cm_cfg_addr a = {0};
		struct cm_listener_config lc = {.max_conns = 64,
		                                .stream = {.nodelay = true,
		                                           .high_water = 1 << 20,
		                                           .max_unsent = 16 << 20,
		                                           .log_mod = "component"}};
		int r;

		if (cm_cfg_parse_addr(l->v[i], &a, NULL, 0) != 0)
			return -EINVAL;
		lc.addr = (struct sockaddr *)&a.sa;
		lc.addrlen = a.salen;
		r = cm_listener_open(&sh->comp_listeners[i], sh->loop, &lc, &lev, sh);
		if (r) {
			CM_LOGE("component", "listen %s: %s", l->v[i], uv_strerror(r));
			return r;
		}
		sh->ncomp_listeners++;
		CM_LOGI("component", "XEP-0114 components on %s", l->v[i]);
	}
	return 0;
}

void xc_component_close_all(struct xc_shard *sh, bool now)
{
	struct cm_list *n, *next;

	for (size_t i = 0; i < sh->ncomp_listeners; i++)
		cm_listener_close(sh->comp_listeners[i], NULL, NULL);
	sh->ncomp_listeners = 0;
	cm_list_foreach_safe(n, next, &sh->comps)
	{
		struct xc_comp *k = cm_list_entry(n, struct xc_comp, link);

		comp_error(k, "system-shutdown", NULL);
		if (now)
			cm_stream_abort(k->s, -ESHUTDOWN, false);
	}
}

void xc_component_deliver(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to)
{
	const struct xc_component_config *cfg =
	    xc_jid_empty(to) ? NULL : config_for(sh->srv, xc_jid_domain(to), to->dlen);
	struct xc_comp *k = cfg ? connected(sh, cfg) : NULL;
	struct cm_buf b;

	if (!k) {
		xc_bounce(sh, st, "cancel", "service-unavailable");
		cm_xml_node_free(st);
		return;
	}
	cm_buf_init(&b, 0);
	cm_xml_node_rename_ns(st, CM_XML_NS_CLIENT, CM_XML_NS_COMPONENT);
	/* in the scope of the component's stream, whose default namespace is its own */
	if (cm_xml_write(&b, st, cm_xml_parser_header(k->xp)) == 0)
		send_raw(k, b.data, b.len);
	cm_buf_free(&b);
	cm_xml_node_free(st);
}
