/* ws_handshake.c - the WebSocket opening handshake (RFC 6455 section 4.2): a strict parser of the
 * request head, and the answers to it.
 *
 * Not http-parser: that library is cm_http's, entered through http1.c alone, and its request
 * model (bodies, pipelining, trailers) is more than a handshake needs. A handshake is one GET
 * head of a few headers, already whole and bounded (max_head) when it gets here, so a parser of
 * our own reads it in one pass and refuses exactly what RFC 9112 lets a server refuse: bare LF
 * or CR, obs-fold, whitespace before a colon, control characters, a second Host. */
#include "ws_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cm/crypto.h"

/* RFC 6455 section 1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

size_t cm_ws__head_end(const char *buf, size_t len, size_t from)
{
	const char *e;

	if (from >= len)
		return 0;
	e = memmem(buf + from, len - from, "\r\n\r\n", 4);
	return e ? (size_t)(e - buf) + 4 : 0;
}

/* RFC 9110 section 5.6.2 */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Call fn for each element of the comma-separated list v (OWS trimmed, empty ones skipped, as
 * RFC 9110 section 5.6.1 asks of recipients); stop early when it returns false. */
static void list_each(const char *v, bool (*fn)(void *arg, const char *el, size_t n), void *arg)
{
	while (*v) {
		const char *e, *t;

		while (is_ows(*v) || *v == ',')
			v++;
		for (e = v; *e && *e != ','; e++)
			;
		for (t = e; t > v && is_ows(t[-1]); t--)
			;
		if (t > v && !fn(arg, v, (size_t)(t - v)))
			return;
		v = e;
	}
}

struct find {
	const char *want;
	bool found;
};

static bool find_ci(void *arg, const char *el, size_t n)
{
	struct find *f = arg;

	if (strlen(f->want) == n && strncasecmp(el, f->want, n) == 0)
		f->found = true;
	return !f->found;
}

static bool list_has(const char *v, const char *want)
{
	struct find f = {.want = want};

	list_each(v, find_ci, &f);
	return f.found;
}

/* The subprotocols offered, against the ones we speak (case-sensitive, RFC 6455 section
 * 11.3.4): the best index so far, or a malformed element. */
struct offer {
	const char *const *ours;
	int best;
	bool bad;
};

static bool offer_el(void *arg, const char *el, size_t n)
{
	struct offer *o = arg;

	if (!is_token(el, n)) {
		o->bad = true;
		return false;
	}
	for (int i = 0; o->ours && o->ours[i]; i++) {
		if (o->best >= 0 && i >= o->best)
			break;
		if (strlen(o->ours[i]) == n && memcmp(o->ours[i], el, n) == 0)
			o->best = i;
	}
	return true;
}

/* What the header fields said. */
struct fields {
	const char *host, *key, *version, *origin, *content_length;
	bool upgrade_seen, upgrade_ws, conn_upgrade, transfer_encoding, duplicate;
	struct offer offer;
};

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* A header field (value NUL-terminated, OWS trimmed) goes into f. */
static void field(struct fields *f, const char *name, size_t n, const char *value)
{
	const char **one = NULL;

	if (name_is(name, n, "host"))
		one = &f->host;
	else if (name_is(name, n, "sec-websocket-key"))
		one = &f->key;
	else if (name_is(name, n, "sec-websocket-version"))
		one = &f->version;
	else if (name_is(name, n, "origin"))
		one = &f->origin;
	else if (name_is(name, n, "content-length"))
		one = &f->content_length;
	else if (name_is(name, n, "transfer-encoding"))
		f->transfer_encoding = true;
	else if (name_is(name, n, "upgrade"))
		f->upgrade_seen = true, f->upgrade_ws |= list_has(value, "websocket");
	else if (name_is(name, n, "connection"))
		f->conn_upgrade |= list_has(value, "upgrade");
	else if (name_is(name, n, "sec-websocket-protocol"))
		list_each(value, offer_el, &f->offer);
	if (one) {
		if (*one)
			f->duplicate = true;
		*one = value;
	}
}

static int refuse(struct cm_ws__req *req, int status, const char *why)
{
	req->why = why;
	return status;
}

/* One line of the head: [p, eol) with eol at its CR. Only CRLF ends a line; a CR or LF anywhere
 * else, or another control character than HTAB, makes the request malformed. */
static bool line_ok(const char *p, const char *eol)
{
	for (; p < eol; p++) {
		unsigned char ch = (unsigned char)*p;

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

/* The request line "GET /path HTTP/1.1": method and target NUL-terminated in place. */
static int request_line(char *p, char *eol, struct cm_ws__req *req, const char **method,
                        bool *http11)
{
	char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2;

	if (!sp1 || !is_token(p, (size_t)(sp1 - p)))
		return refuse(req, 400, "malformed request line");
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return refuse(req, 400, "malformed request line");
	for (char *t = sp1 + 1; t < sp2; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return refuse(req, 400, "malformed request target");
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' ||
	    sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return refuse(req, 400, "malformed HTTP version");
	*http11 = memcmp(sp2 + 1, "HTTP/1.1", 8) == 0;
	*sp1 = '\0';
	*sp2 = '\0';
	*method = p;
	req->target = sp1 + 1;
	return 0;
}

/* The header fields up to the empty line. */
static int header_fields(char *p, char *end, struct fields *f, struct cm_ws__req *req)
{
	while (p < end) {
		char *eol = memmem(p, (size_t)(end - p), "\r\n", 2), *colon, *v, *ve;

		if (!eol || !line_ok(p, eol))
			return refuse(req, 400, "malformed header field");
		if (eol == p)
			return 0; /* the empty line */
		if (is_ows(*p))
			return refuse(req, 400, "obsolete line folding");
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || !is_token(p, (size_t)(colon - p)))
			return refuse(req, 400, "malformed header field");
		for (v = colon + 1; v < eol && is_ows(*v); v++)
			;
		for (ve = eol; ve > v && is_ows(ve[-1]); ve--)
			;
		*ve = '\0';
		field(f, p, (size_t)(colon - p), v);
		p = eol + 2;
	}
	return refuse(req, 400, "malformed head");
}

/* A Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 section 4.1). */
static int key_ok(const char *key)
{
	struct cm_buf b;
	int r;

	if (strlen(key) != 24)
		return -EINVAL;
	cm_buf_init(&b, 18);
	r = cm_crypto_b64_decode(&b, key, 24, CM_B64_STD);
	if (r == 0 && b.len != 16)
		r = -EINVAL;
	cm_buf_free(&b);
	return r;
}

int cm_ws__parse_request(char *head, size_t len, const char *const *protocols, const char *path,
                         struct cm_ws__req *req)
{
	char *end = head + len, *eol;
	const char *method = NULL, *q;
	struct fields f = {.offer = {.ours = protocols, .best = -1}};
	bool http11 = false;
	size_t plen;
	int r;

	memset(req, 0, sizeof(*req));
	req->protocol = -1;
	eol = memmem(head, len, "\r\n", 2);
	if (!eol || !line_ok(head, eol))
		return refuse(req, 400, "malformed request line");
	r = request_line(head, eol, req, &method, &http11);
	r = r ? r : header_fields(eol + 2, end, &f, req);
	if (r)
		return r;
	if (strcmp(method, "GET") != 0)
		return refuse(req, 405, "a WebSocket handshake is a GET request");
	if (!http11)
		return refuse(req, 505, "a WebSocket handshake needs HTTP/1.1");
	if (req->target[0] != '/')
		return refuse(req, 400, "the request target must be a path");
	q = strchr(req->target, '?');
	plen = q ? (size_t)(q - req->target) : strlen(req->target);
	if (path && (strlen(path) != plen || memcmp(path, req->target, plen) != 0))
		return refuse(req, 404, "no WebSocket service here");
	if (f.duplicate)
		return refuse(req, 400, "a header field that must be unique is repeated");
	if (!f.host)
		return refuse(req, 400, "no Host header field");
	if (f.transfer_encoding || (f.content_length && strcmp(f.content_length, "0") != 0))
		return refuse(req, 400, "a WebSocket handshake has no body");
	if (!f.upgrade_ws) {
		req->bad_version = true;
		return refuse(req, 426,
		              f.upgrade_seen ? "only the websocket upgrade is served"
		                             : "this is a WebSocket service");
	}
	if (!f.conn_upgrade)
		return refuse(req, 400, "Connection must include Upgrade");
	if (!f.version || strcmp(f.version, "13") != 0) {
		req->bad_version = true;
		return f.version ? refuse(req, 426, "only WebSocket version 13 is served")
		                 : refuse(req, 400, "no Sec-WebSocket-Version header field");
	}
	if (!f.key)
		return refuse(req, 400, "no Sec-WebSocket-Key header field");
	r = key_ok(f.key);
	if (r == -ENOMEM)
		return refuse(req, 500, "out of memory");
	if (r)
		return refuse(req, 400, "Sec-WebSocket-Key is not the base64 of 16 bytes");
	if (f.offer.bad)
		return refuse(req, 400, "malformed Sec-WebSocket-Protocol");
	req->key = f.key;
	req->origin = f.origin;
	req->protocol = f.offer.best;
	return 0;
}

int cm_ws__accept_key(const char *key, char out[29])
{
	unsigned char sha[CM_SHA1_LEN];
	char buf[64];
	struct cm_buf b;
	size_t klen = strlen(key);
	int r;

	if (klen + sizeof(ws_guid) > sizeof(buf))
		return -EINVAL;
	memcpy(buf, key, klen);
	memcpy(buf + klen, ws_guid, sizeof(ws_guid) - 1);
	r = cm_crypto_sha1(buf, klen + sizeof(ws_guid) - 1, sha);
	if (r)
		return r;
	cm_buf_init(&b, 28);
	r = cm_crypto_b64_encode(&b, sha, sizeof(sha), CM_B64_STD);
	if (r == 0)
		memcpy(out, b.data, 29); /* 28 characters and the buffer's NUL */
	cm_buf_free(&b);
	return r;
}

int cm_ws__answer_accept(struct cm_buf *out, const char *key, const char *protocol)
{
	char accept[29];
	int r = cm_ws__accept_key(key, accept);

	if (r)
		return r;
	r = cm_buf_printf(out,
	                  "HTTP/1.1 101 Switching Protocols\r\n"
	                  "Upgrade: websocket\r\n"
	                  "Connection: Upgrade\r\n"
	                  "Sec-WebSocket-Accept: %s\r\n",
	                  accept);
	if (r == 0 && protocol)
		r = cm_buf_printf(out, "Sec-WebSocket-Protocol: %s\r\n", protocol);
	return r ? r : cm_buf_puts(out, "\r\n");
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status < 500 ? "Client Error" : "Server Error";
	}
}

int cm_ws__answer_refuse(struct cm_buf *out, int status, const char *why, bool versions)
{
	int r = cm_buf_printf(out,
	                      "HTTP/1.1 %d %s\r\n"
	                      "Content-Type: text/plain; charset=utf-8\r\n"
	                      "Content-Length: %zu\r\n",
	                      status, reason_phrase(status), strlen(why) + 1);

	/* RFC 9110 section 15.5.22: a 426 names the upgrade, which the Connection field lists */
	if (r == 0)
		r = cm_buf_puts(out, status == 426
		                         ? "Upgrade: websocket\r\nConnection: Upgrade, close\r\n"
		                         : "Connection: close\r\n");
	if (r == 0 && versions)
		r = cm_buf_puts(out, "Sec-WebSocket-Version: 13\r\n");
	if (r == 0 && status == 405)
		r = cm_buf_puts(out, "Allow: GET\r\n");
	return r ? r : cm_buf_printf(out, "\r\n%s\n", why);
}
