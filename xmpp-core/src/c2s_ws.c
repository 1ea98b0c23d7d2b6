/* c2s_ws.c - XMPP over WebSocket (RFC 7395): a client stream whose transport is a cm_ws
 * connection.
 *
 * Over WebSocket each message is one whole element, and the stream has no open tag of its own:
 * the client sends <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to=... version=.../> and
 * ends with <close/>. Everything else of c2s.c stays as it is: an <open/> becomes the stream
 * header the XML stream parser expects, every other message goes to it as it came (each stanza
 * declares its namespace), and a <close/> becomes the stream's end tag. Going the other way, the
 * server's <open/> answers the stream header, and each element it sends goes as one message.
 * The subprotocol "xmpp" is required.
 */
#include "c2s_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "cm/ws.h"
#include "cm/xml.h"
#include "server.h"
#include "stanza.h"

#define STREAM_HEADER_MAX 1024

/* --- to the client -----------------------------------------------------------------------------
 */

int xc_c2s__ws_header(struct xc_c2s *c)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
	                 "<open xmlns='" XC_NS_FRAMING "' id='%s' from='%s' version='1.0' "
	                 "xml:lang='en'/>",
	                 c->id, c->host ? c->host : c->sh->srv->cfg->hosts.v[0]);

	return xc_c2s_send_raw(c, buf, (size_t)n);
}

int xc_c2s__ws_error(struct xc_c2s *c, const char *condition, const char *text)
{
	struct cm_buf b;
	int r;

	cm_buf_init(&b, 0);
	r = cm_buf_puts(&b, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>");
	if (!r && text && strcmp(condition, "see-other-host") == 0)
		r = cm_buf_printf(&b, "<see-other-host xmlns='%s'>", XC_NS_STREAMS) ||
		    cm_xml_escape_text(&b, text, strlen(text)) ||
		    cm_buf_puts(&b, "</see-other-host>");
	else if (!r)
		r = cm_buf_printf(&b, "<%s xmlns='%s'/>", condition, XC_NS_STREAMS) ||
		    (text &&
		     (cm_buf_printf(&b, "<text xmlns='%s'>", XC_NS_STREAMS) ||
		      cm_xml_escape_text(&b, text, strlen(text)) || cm_buf_puts(&b, "</text>")));
	r = r ? r : cm_buf_puts(&b, "</stream:error>");
	if (!r)
		r = xc_c2s_send_raw(c, b.data, b.len);
	cm_buf_free(&b);
	xc_c2s__ws_end(c);
	return r;
}

void xc_c2s__ws_end(struct xc_c2s *c)
{
	static const char end[] = "<close xmlns='" XC_NS_FRAMING "'/>";

	xc_c2s_send_raw(c, end, sizeof(end) - 1);
}

/* --- from the client ---------------------------------------------------------------------------
 */

/* The stream header an <open/> stands for. 0, or -EBADMSG when the message is not an <open/>. */
static int header_for(const char *data, size_t len, char *out, size_t cap)
{
	struct cm_xml_node *open = NULL;
	const char *to, *version, *lang;
	struct cm_buf b;
	int r = xc_stanza_parse(data, len, &open);

	if (r || strcmp(open->name, "open") != 0 || strcmp(open->ns, XC_NS_FRAMING) != 0) {
		cm_xml_node_free(open);
		return -EBADMSG;
	}
	to = cm_xml_attr(open, "to");
	version = cm_xml_attr(open, "version");
	lang = cm_xml_attr_ns(open, CM_XML_NS_XML, "lang");
	cm_buf_init(&b, cap - 1); /* room for the NUL */
	r = cm_buf_puts(&b, "<stream:stream xmlns='jabber:client' "
	                    "xmlns:stream='http://etherx.jabber.org/streams'");
	if (!r && to)
		r = cm_buf_puts(&b, " to='") || cm_xml_escape_attr(&b, to, strlen(to)) ||
		    cm_buf_puts(&b, "'");
	if (!r && version)
		r = cm_buf_puts(&b, " version='") ||
		    cm_xml_escape_attr(&b, version, strlen(version)) || cm_buf_puts(&b, "'");
	if (!r && lang)
		r = cm_buf_puts(&b, " xml:lang='") || cm_xml_escape_attr(&b, lang, strlen(lang)) ||
		    cm_buf_puts(&b, "'");
	r = r ? r : cm_buf_puts(&b, ">");
	if (!r)
		memcpy(out, b.data, b.len + 1);
	cm_buf_free(&b);
	cm_xml_node_free(open);
	return r ? -EBADMSG : 0;
}

/* Whether the message's first element is named name (after whitespace). */
static bool starts_with(const char *data, size_t len, const char *name)
{
	size_t i = 0, n = strlen(name);

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	return len - i > n + 1 && data[i] == '<' && memcmp(data + i + 1, name, n) == 0 &&
	       (data[i + 1 + n] == ' ' || data[i + 1 + n] == '/' || data[i + 1 + n] == '>' ||
	        data[i + 1 + n] == '\t' || data[i + 1 + n] == '\n' || data[i + 1 + n] == '\r');
}

static void on_message(struct cm_ws_conn *w, const char *data, size_t len, bool text)
{
	struct xc_c2s *c = cm_ws_data(w);
	char header[STREAM_HEADER_MAX];

	if (c->st == XC_C2S_CLOSING)
		return;
	if (!text) {
		xc_c2s_stream_error(c, "bad-format", "XMPP over WebSocket is text");
		return;
	}
	if (starts_with(data, len, "open")) {
		if (c->ws_open) {
			xc_c2s_stream_error(c, "bad-format", "an <open/> within an open stream");
			return;
		}
		if (header_for(data, len, header, sizeof(header)) != 0) {
			xc_c2s_stream_error(c, "bad-format", "not an RFC 7395 <open/>");
			return;
		}
		c->ws_open = true;
		xc_c2s__input(c, header, strlen(header));
		return;
	}
	if (!c->ws_open) {
		xc_c2s_stream_error(c, "bad-format", "<open/> first");
		return;
	}
	if (starts_with(data, len, "close")) {
		xc_c2s__input(c, "</stream:stream>", 16);
		return;
	}
	xc_c2s__input(c, data, len);
}

static int on_open(struct cm_ws_conn *w, const char *target, const char *protocol,
                   const char *origin)
{
	struct xc_c2s *c = cm_ws_data(w);

	(void)target;
	/* a browser may come from any page: SASL inside the connection is what authenticates
	 * (cm/ws.h); the subprotocol is required (RFC 7395 3.1) */
	if (!protocol) {
		CM_LOGD("c2s", "%s: WebSocket without the xmpp subprotocol (origin %s)",
		        cm_ws_peer_name(w), origin ? origin : "none");
		return 400;
	}
	cm_ws_timer(w, c->sh->srv->cfg->c2s.login_timeout);
	return 0;
}

static void on_timeout(struct cm_ws_conn *w)
{
	xc_c2s__timeout(cm_ws_data(w));
}

static void on_closed(struct cm_ws_conn *w, int code)
{
	struct xc_c2s *c = cm_ws_data(w);

	c->ws = NULL;
	xc_c2s__closed(c, code < 0 ? code : 0);
}

static const struct cm_ws_events ws_events = {
    .open = on_open,
    .message = on_message,
    .timeout = on_timeout,
    .closed = on_closed,
};

const struct cm_ws_events *xc_c2s__ws_events(void)
{
	return &ws_events;
}

void xc_c2s_accept_ws(struct xc_shard *sh, struct cm_stream *s)
{
	struct xc_c2s *c = xc_c2s__new(sh);
	int r;

	if (!c) {
		cm_stream_abort(s, -ENOMEM, true);
		return;
	}
	c->via_ws = true;
	cm_metrics_gauge_add(sh->srv->m.ws_connections, 1);
	r = cm_ws_accept(&c->ws, s, &sh->srv->ws_cfg, &ws_events, c);
	if (r) {
		c->ws = NULL; /* (the stream was aborted) */
		xc_c2s__closed(c, r);
	}
}
