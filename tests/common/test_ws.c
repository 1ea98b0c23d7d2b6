/* test_ws.c - cm/ws.h over real loopback connections, against a WebSocket client written here
 * from RFC 6455 (not with wslay, so that the two ends are not the same code): the handshake and
 * each way it is refused, messages both ways, fragments, ping and pong, the limits (1009, 1007,
 * 1002), the close handshake from either side, a slow reader, TLS, a move to another loop, and
 * allocation failures on an in-memory connection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/listener.h"
#include "cm/loop.h"
#include "cm/stream.h"
#include "cm/tls.h"
#include "cm/ws.h"
#include "common/src/ws_int.h"
#include "tests/support/alloc.h"

#define DIR "tests/common/tls/"
/* RFC 6455 section 1.3 */
#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define REQ_HEAD(target, extra)                                                                    \
	"GET " target " HTTP/1.1\r\n"                                                              \
	"Host: localhost\r\n"                                                                      \
	"Upgrade: websocket\r\n"                                                                   \
	"Connection: Upgrade\r\n"                                                                  \
	"Sec-WebSocket-Key: " KEY "\r\n"                                                           \
	"Sec-WebSocket-Version: 13\r\n" extra "\r\n"
#define REQ(extra) REQ_HEAD("/xmpp-websocket", extra)

#define NCONN 32

/* The server's side of a connection, as its events saw it. */
struct srv {
	struct cm_ws_conn *c;
	int opened, closed, code, writable, timeouts, pongs, nmsg;
	char target[256], protocol[64], origin[256];
	bool has_protocol, has_origin;
	struct cm_buf msgs; /* every message, each followed by "|" */
	bool last_text;
	struct cm_buf pong;
	int echo;      /* send each message back */
	int export_on; /* export from the event of the message "move" */
};

/* The client: a plain cm_stream speaking WebSocket by hand. */
struct cli {
	struct cm_stream *s;
	struct cm_buf in; /* all received */
	size_t head_len;  /* of the HTTP answer; 0 until it is whole */
	int status;
	size_t off; /* frames parsed up to here */
	int closed, err, eof, connected;
};

struct fix {
	uv_loop_t uv;
	struct cm_loop l;
	struct cm_listener *ln;
	struct cm_listener_config lc;
	struct cm_tls *srv_tls, *cli_tls;
	struct cm_ws_config cfg;
	struct cm_ws_events ev;
	const char *protocols[3];
	struct srv srv[NCONN];
	struct cli cli[NCONN];
	int nsrv;
	int refuse;           /* what open returns */
	int require_protocol; /* open refuses a connection without one (400) */
	uint64_t open_timer;  /* open arms the connection's timer */
	uint16_t port;
	uv_timer_t guard;
	int timed_out;
	/* the second loop of the move test */
	uv_loop_t uv2;
	struct cm_loop l2;
	bool two;
	struct cm_ws_parcel *parcel;
	int export_rc;
};

static struct fix *F;

/* --- the server's events ---------------------------------------------------------------------- */

static int s_open(struct cm_ws_conn *c, const char *target, const char *protocol,
                  const char *origin)
{
	struct srv *x = cm_ws_data(c);

	x->opened++;
	snprintf(x->target, sizeof(x->target), "%s", target);
	x->has_protocol = protocol != NULL;
	snprintf(x->protocol, sizeof(x->protocol), "%s", protocol ? protocol : "");
	x->has_origin = origin != NULL;
	snprintf(x->origin, sizeof(x->origin), "%s", origin ? origin : "");
	/* nothing goes out before the 101 */
	assert_int_equal(cm_ws_send_text(c, "x", 1), -ENOTCONN);
	assert_int_equal(cm_ws_close(c, 1000, NULL), -ENOTCONN);
	if (F->require_protocol && !protocol)
		return 400;
	if (F->open_timer)
		cm_ws_timer(c, F->open_timer); /* armed once open */
	return F->refuse;
}

static void s_message(struct cm_ws_conn *c, const char *data, size_t len, bool text)
{
	struct srv *x = cm_ws_data(c);

	x->nmsg++;
	x->last_text = text;
	assert_int_equal(cm_buf_append(&x->msgs, data, len), 0);
	assert_int_equal(cm_buf_append(&x->msgs, "|", 1), 0);
	if (x->export_on && len == 4 && memcmp(data, "move", 4) == 0) {
		F->export_rc = cm_ws_export(c, &F->parcel);
		if (F->export_rc == 0)
			x->c = NULL;
		return;
	}
	if (x->echo) {
		if (text)
			assert_int_equal(cm_ws_send_text(c, data, len), 0);
		else
			assert_int_equal(cm_ws_send_binary(c, data, len), 0);
	}
}

static void s_pong(struct cm_ws_conn *c, const char *data, size_t len)
{
	struct srv *x = cm_ws_data(c);

	x->pongs++;
	cm_buf_reset(&x->pong);
	assert_int_equal(cm_buf_append(&x->pong, data, len), 0);
}

static void s_writable(struct cm_ws_conn *c)
{
	((struct srv *)cm_ws_data(c))->writable++;
}

static void s_timeout(struct cm_ws_conn *c)
{
	((struct srv *)cm_ws_data(c))->timeouts++;
	cm_ws_abort(c, -ETIMEDOUT);
}

static void s_closed(struct cm_ws_conn *c, int code)
{
	struct srv *x = cm_ws_data(c);

	x->closed++;
	x->code = code;
	x->c = NULL;
}

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	struct srv *x = &F->srv[F->nsrv++];

	(void)ln;
	assert_int_equal(cm_ws_accept(&x->c, s, &F->cfg, &F->ev, x), 0);
	/* not open yet */
	assert_int_equal(cm_ws_close(x->c, 1000, NULL), -ENOTCONN);
	assert_int_equal(cm_ws_export(x->c, &F->parcel), -EINVAL);
}

static const struct cm_listener_events lev = {.accept = on_accept};

/* --- the client ------------------------------------------------------------------------------- */

static void c_read(struct cm_stream *s, const char *data, size_t len)
{
	struct cli *x = cm_stream_data(s);
	const char *e;

	assert_int_equal(cm_buf_append(&x->in, data, len), 0);
	if (!x->head_len && (e = strstr(x->in.data, "\r\n\r\n")) != NULL) {
		x->head_len = (size_t)(e - x->in.data) + 4;
		assert_int_equal(strncmp(x->in.data, "HTTP/1.1 ", 9), 0);
		x->status = atoi(x->in.data + 9);
		x->off = x->head_len;
	}
}

static void c_eof(struct cm_stream *s)
{
	((struct cli *)cm_stream_data(s))->eof++;
	cm_stream_close(s, 0);
}

static void c_connected(struct cm_stream *s)
{
	((struct cli *)cm_stream_data(s))->connected++;
}

static void c_closed(struct cm_stream *s, int err)
{
	struct cli *x = cm_stream_data(s);

	x->closed++;
	x->err = err;
	x->s = NULL;
}

static const struct cm_stream_events cev = {
    .read = c_read, .eof = c_eof, .connected = c_connected, .closed = c_closed};

static void on_guard(uv_timer_t *t)
{
	F->timed_out = 1;
	uv_stop(t->loop);
}

/* Run the loop(s) until cond holds (fail after 5 s). */
#define RUN_UNTIL(cond)                                                                            \
	do {                                                                                       \
		uv_timer_start(&F->guard, on_guard, 5000, 0);                                      \
		while (!(cond) && !F->timed_out) {                                                 \
			if (F->two) {                                                              \
				uv_run(&F->uv, UV_RUN_NOWAIT);                                     \
				uv_run(&F->uv2, UV_RUN_NOWAIT);                                    \
				usleep(500);                                                       \
			} else {                                                                   \
				uv_run(&F->uv, UV_RUN_ONCE);                                       \
			}                                                                          \
		}                                                                                  \
		uv_timer_stop(&F->guard);                                                          \
		assert_false(F->timed_out);                                                        \
	} while (0)

/* A few turns of the loop, for what must not happen. */
static void spin(int turns)
{
	for (int i = 0; i < turns; i++) {
		uv_run(&F->uv, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/* Append a client frame: first byte b0 (FIN, RSV, opcode), masked or not. */
static void put_raw(struct cm_buf *b, unsigned b0, bool masked, const void *data, size_t len)
{
	static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
	unsigned char h[14];
	size_t n = 0;
	const unsigned char *p = data;

	h[n++] = (unsigned char)b0;
	if (len < 126) {
		h[n++] = (unsigned char)((masked ? 0x80 : 0) | len);
	} else if (len < 65536) {
		h[n++] = (unsigned char)((masked ? 0x80 : 0) | 126);
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = (unsigned char)((masked ? 0x80 : 0) | 127);
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	if (masked) {
		memcpy(h + n, key, 4);
		n += 4;
	}
	assert_int_equal(cm_buf_append(b, h, n), 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)(p[i] ^ (masked ? key[i % 4] : 0));

		assert_int_equal(cm_buf_append(b, &ch, 1), 0);
	}
}

static void put_frame(struct cm_buf *b, bool fin, int op, const void *data, size_t len)
{
	put_raw(b, (fin ? 0x80u : 0) | (unsigned)op, true, data, len);
}

static void cli_write(int i, const void *data, size_t len)
{
	assert_int_equal(cm_stream_write(F->cli[i].s, data, len), 0);
}

static void cli_frame(int i, bool fin, int op, const void *data, size_t len)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	put_frame(&b, fin, op, data, len);
	cli_write(i, b.data, b.len);
	cm_buf_free(&b);
}

static void cli_close_frame(int i, int code, const char *reason)
{
	char p[128];
	size_t n = 0;

	if (code) {
		p[n++] = (char)(code >> 8);
		p[n++] = (char)code;
		memcpy(p + n, reason, strlen(reason));
		n += strlen(reason);
	}
	cli_frame(i, true, 8, p, n);
}

/* A server frame out of client i's input, if a whole one is there: 1 (advanced past it), or 0. */
static int cli_next(int i, int *op, const char **payload, size_t *len)
{
	struct cli *x = &F->cli[i];
	const unsigned char *p = (const unsigned char *)x->in.data + x->off;
	size_t avail = x->in.len - x->off, h = 2;
	uint64_t n;

	if (!x->head_len || avail < 2)
		return 0;
	assert_int_equal(p[0] & 0x70, 0);    /* no reserved bits */
	assert_int_equal(p[0] & 0x80, 0x80); /* the server does not fragment */
	assert_int_equal(p[1] & 0x80, 0);    /* nor mask */
	n = p[1] & 0x7f;
	if (n == 126) {
		if (avail < 4)
			return 0;
		n = (uint64_t)p[2] << 8 | p[3];
		assert_true(n >= 126);
		h = 4;
	} else if (n == 127) {
		if (avail < 10)
			return 0;
		n = 0;
		for (int k = 0; k < 8; k++)
			n = n << 8 | p[2 + k];
		assert_true(n >= 65536);
		h = 10;
	}
	if (avail < h + n)
		return 0;
	*op = p[0] & 0x0f;
	*payload = (const char *)p + h;
	*len = (size_t)n;
	x->off += h + (size_t)n;
	return 1;
}

/* Wait for client i's next frame and check it. */
static void expect_frame(int i, int op, const void *data, size_t len)
{
	int got_op = -1;
	const char *p = NULL;
	size_t n = 0;

	RUN_UNTIL(cli_next(i, &got_op, &p, &n));
	assert_int_equal(got_op, op);
	assert_int_equal(n, len);
	if (len)
		assert_memory_equal(p, data, len);
}

/* Wait for a close frame with code (and reason, when not NULL). */
static void expect_close(int i, int code, const char *reason)
{
	int op = -1;
	const char *p = NULL;
	size_t n = 0;

	RUN_UNTIL(cli_next(i, &op, &p, &n));
	assert_int_equal(op, 8);
	assert_true(n >= 2);
	assert_int_equal(((unsigned char)p[0] << 8) | (unsigned char)p[1], code);
	if (reason) {
		assert_int_equal(n - 2, strlen(reason));
		assert_memory_equal(p + 2, reason, n - 2);
	}
}

/* --- the fixture ------------------------------------------------------------------------------ */

static void listen_now(struct fix *f)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	socklen_t len;

	if (f->ln)
		cm_listener_close(f->ln, NULL, NULL);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	f->lc.addr = (struct sockaddr *)&sin;
	f->lc.addrlen = sizeof(sin);
	assert_int_equal(cm_listener_open(&f->ln, &f->l, &f->lc, &lev, f), 0);
	assert_int_equal(cm_listener_address(f->ln, &ss, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fix_open(struct fix *f)
{
	struct cm_tls_config sc = {.cert_file = DIR "server.pem", .key_file = DIR "server.key"};
	struct cm_tls_config cc = {.ca_file = DIR "ca.pem"};
	char err[256];

	memset(f, 0, sizeof(*f));
	F = f;
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 0), 0);
	uv_timer_init(&f->uv, &f->guard);
	assert_int_equal(cm_tls_server_alloc(&f->srv_tls, &sc, err, sizeof(err)), 0);
	assert_int_equal(cm_tls_client_alloc(&f->cli_tls, &cc, err, sizeof(err)), 0);
	f->protocols[0] = "xmpp";
	f->protocols[1] = "other";
	f->cfg.path = "/xmpp-websocket";
	f->cfg.protocols = f->protocols;
	f->ev = (struct cm_ws_events){.open = s_open,
	                              .message = s_message,
	                              .pong = s_pong,
	                              .writable = s_writable,
	                              .closed = s_closed};
	for (int i = 0; i < NCONN; i++) {
		cm_buf_init(&f->srv[i].msgs, 0);
		cm_buf_init(&f->srv[i].pong, 0);
		cm_buf_init(&f->cli[i].in, 0);
	}
	listen_now(f);
}

static void fix_close(struct fix *f)
{
	for (int i = 0; i < NCONN; i++) {
		if (f->srv[i].c)
			cm_ws_abort(f->srv[i].c, 0);
		if (f->cli[i].s)
			cm_stream_abort(f->cli[i].s, 0, false);
	}
	cm_ws_parcel_free(f->parcel);
	cm_listener_close(f->ln, NULL, NULL);
	uv_close((uv_handle_t *)&f->guard, NULL);
	cm_loop_close(&f->l, NULL);
	assert_int_equal(uv_run(&f->uv, UV_RUN_DEFAULT), 0);
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	cm_tls_free(f->srv_tls);
	cm_tls_free(f->cli_tls);
	for (int i = 0; i < NCONN; i++) {
		/* every connection accepted was told it closed */
		if (i < f->nsrv)
			assert_int_equal(f->srv[i].closed, 1);
		cm_buf_free(&f->srv[i].msgs);
		cm_buf_free(&f->srv[i].pong);
		cm_buf_free(&f->cli[i].in);
	}
}

/* Client i connects (TLS when tls) and waits for its server side (srv[i]). */
static void cli_connect(int i, bool tls)
{
	struct cm_stream_opts o = {.tls = tls ? F->cli_tls : NULL,
	                           .server_name = tls ? "localhost" : NULL,
	                           .nodelay = true};

	assert_int_equal(F->nsrv, i);
	assert_int_equal(
	    cm_stream_connect(&F->cli[i].s, &F->l, "127.0.0.1", F->port, &o, &cev, &F->cli[i]), 0);
	RUN_UNTIL(F->cli[i].connected && F->nsrv == i + 1);
}

/* Client i connects and completes a handshake asking for "xmpp". */
static void ws_open(int i, bool tls)
{
	static const char req[] = REQ("Sec-WebSocket-Protocol: xmpp\r\n");

	cli_connect(i, tls);
	cli_write(i, req, sizeof(req) - 1);
	RUN_UNTIL(F->cli[i].status && F->srv[i].opened);
	assert_int_equal(F->cli[i].status, 101);
}

/* The server ended connection i: closed with code, and the client saw the end. */
static void expect_end(int i, int code)
{
	RUN_UNTIL(F->srv[i].closed && F->cli[i].closed);
	assert_int_equal(F->srv[i].code, code);
}

/* --- the cases -------------------------------------------------------------------------------- */

static void test_accept_key(void **state)
{
	char out[29];

	(void)state;
	assert_int_equal(cm_ws__accept_key(KEY, out), 0);
	assert_string_equal(out, ACCEPT);
}

static void test_handshake(void **state)
{
	struct fix f;
	static const char req[] =
	    REQ_HEAD("/xmpp-websocket?room=1", "Origin: https://example.com\r\n"
	                                       "Sec-WebSocket-Protocol: chat, other\r\n"
	                                       "sec-websocket-protocol: xmpp\r\n");
	static const char req2[] = REQ("");
	struct cm_buf b;

	(void)state;
	fix_open(&f);
	cli_connect(0, false);
	cli_write(0, req, sizeof(req) - 1);
	RUN_UNTIL(f.cli[0].status);
	assert_int_equal(f.cli[0].status, 101);
	assert_non_null(strstr(f.cli[0].in.data, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strstr(f.cli[0].in.data, "\r\nConnection: Upgrade\r\n"));
	assert_non_null(strstr(f.cli[0].in.data, "\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"));
	/* the server's preference wins over the client's order */
	assert_non_null(strstr(f.cli[0].in.data, "\r\nSec-WebSocket-Protocol: xmpp\r\n"));
	assert_int_equal(f.srv[0].opened, 1);
	assert_string_equal(f.srv[0].target, "/xmpp-websocket?room=1");
	assert_string_equal(f.srv[0].protocol, "xmpp");
	assert_string_equal(f.srv[0].origin, "https://example.com");
	assert_string_equal(cm_ws_protocol(f.srv[0].c), "xmpp");
	assert_false(cm_ws_secured(f.srv[0].c));
	assert_non_null(strstr(cm_ws_peer_name(f.srv[0].c), "127.0.0.1:"));
	assert_ptr_not_equal(cm_ws_stream(f.srv[0].c), NULL);

	/* no subprotocol, no origin; frames sent along with the request are not lost */
	cli_connect(1, false);
	cm_buf_init(&b, 0);
	assert_int_equal(cm_buf_append(&b, req2, sizeof(req2) - 1), 0);
	put_frame(&b, true, 1, "early", 5);
	cli_write(1, b.data, b.len);
	cm_buf_free(&b);
	RUN_UNTIL(f.srv[1].nmsg == 1 && f.cli[1].status);
	assert_int_equal(f.cli[1].status, 101);
	assert_null(strstr(f.cli[1].in.data, "Sec-WebSocket-Protocol"));
	assert_false(f.srv[1].has_protocol);
	assert_false(f.srv[1].has_origin);
	assert_string_equal(cm_ws_protocol(f.srv[1].c), "");
	assert_string_equal(f.srv[1].msgs.data, "early|");
	fix_close(&f);
}

struct refusal {
	const char *req;
	int status;
	const char *header; /* in the answer, or NULL */
};

#define BASE_HEADERS                                                                               \
	"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"              \
	"Sec-WebSocket-Version: 13\r\n"

static const struct refusal refusals[] = {
    {"POST /xmpp-websocket HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 405, "Allow: GET\r\n"},
    {"GET /xmpp-websocket HTTP/1.0\r\nHost: h\r\n" BASE_HEADERS "\r\n", 505, NULL},
    {"GET /xmpp-websocket HTTQ/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /other HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 404, NULL},
    {"GET /xmpp-websocketx HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 404, NULL},
    {"GET http://h/xmpp-websocket HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nHost: i\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
     426, "Upgrade: websocket\r\n"},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
     426, "Sec-WebSocket-Version: 13\r\n"},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
     "Connection: keep-alive\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n",
     426, "Sec-WebSocket-Version: 13\r\n"},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: " KEY "\r\n\r\n",
     400, "Sec-WebSocket-Version: 13\r\n"},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Version: 13\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!\r\nSec-WebSocket-Version: 13\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "Sec-WebSocket-Key: " KEY
     "\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost : h\r\n" BASE_HEADERS "\r\n", 400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nX-A: 1\nX-B: 2\r\n" BASE_HEADERS "\r\n", 400,
     NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n" BASE_HEADERS "\r\nhello",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" BASE_HEADERS
     "\r\n0\r\n\r\n",
     400, NULL},
    {"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Protocol: a b\r\n" BASE_HEADERS
     "\r\n",
     400, NULL},
    {"\r\nGET /xmpp-websocket HTTP/1.1\r\nHost: h\r\n" BASE_HEADERS "\r\n", 400, NULL},
};

/* Connection i sends req and gets status (with header) and the end of the connection. */
static void refused(int i, const char *req, size_t len, int status, const char *header, int code)
{
	cli_connect(i, false);
	cli_write(i, req, len);
	RUN_UNTIL(F->cli[i].status && F->cli[i].closed && F->srv[i].closed);
	assert_int_equal(F->cli[i].status, status);
	assert_int_equal(F->cli[i].eof, 1);
	assert_non_null(strstr(F->cli[i].in.data, "\r\nContent-Length: "));
	if (header)
		assert_non_null(strstr(F->cli[i].in.data, header));
	assert_int_equal(F->srv[i].code, code);
}

static void test_handshake_refused(void **state)
{
	struct fix f;
	size_t n = sizeof(refusals) / sizeof(refusals[0]);
	struct cm_buf big;

	(void)state;
	fix_open(&f);
	assert_true(n + 4 <= NCONN);
	for (size_t i = 0; i < n; i++) {
		refused((int)i, refusals[i].req, strlen(refusals[i].req), refusals[i].status,
		        refusals[i].header, -EPROTO);
		assert_int_equal(f.srv[i].opened, 0);
	}
	/* a head over max_head (8 KiB): 431, without waiting for its end */
	cm_buf_init(&big, 0);
	assert_int_equal(cm_buf_puts(&big, "GET /xmpp-websocket HTTP/1.1\r\nX-Big: "), 0);
	for (int k = 0; k < 9000; k++)
		assert_int_equal(cm_buf_append(&big, "a", 1), 0);
	refused((int)n, big.data, big.len, 431, NULL, -EPROTO);
	cm_buf_free(&big);
	/* open refuses: its status; an impossible one becomes 500 */
	f.refuse = 403;
	refused((int)n + 1, REQ(""), strlen(REQ("")), 403, NULL, -ECONNREFUSED);
	assert_int_equal(f.srv[n + 1].opened, 1);
	f.refuse = 200;
	refused((int)n + 2, REQ(""), strlen(REQ("")), 500, NULL, -ECONNREFUSED);
	/* none of our subprotocols offered: open hears NULL and refuses */
	f.refuse = 0;
	f.require_protocol = 1;
	refused((int)n + 3, REQ("Sec-WebSocket-Protocol: chat\r\n"),
	        strlen(REQ("Sec-WebSocket-Protocol: chat\r\n")), 400, NULL, -ECONNREFUSED);
	assert_false(f.srv[n + 3].has_protocol);
	fix_close(&f);
}

static void test_handshake_deadline(void **state)
{
	struct fix f;
	uint64_t t0;

	(void)state;
	fix_open(&f);
	f.cfg.handshake_ms = 200;
	cli_connect(0, false);
	t0 = uv_now(&f.uv);
	cli_write(0, "GET /xmpp-websocket HTTP/1.1\r\n", 30);
	RUN_UNTIL(f.srv[0].closed && f.cli[0].closed);
	assert_int_equal(f.srv[0].code, -ETIMEDOUT);
	assert_true(uv_now(&f.uv) - t0 >= 150);
	assert_int_equal(f.cli[0].status, 0);
	fix_close(&f);
}

static void test_messages(void **state)
{
	struct fix f;
	static char big[70000];
	static const unsigned char bin[] = {0, 1, 2, 255};
	char mid[300];

	(void)state;
	fix_open(&f);
	memset(big, 'b', sizeof(big));
	memset(mid, 'm', sizeof(mid));
	ws_open(0, false);
	/* client to server: lengths of each size class */
	cli_frame(0, true, 1, "hello", 5);
	cli_frame(0, true, 2, bin, sizeof(bin));
	cli_frame(0, true, 1, "", 0);
	cli_frame(0, true, 1, mid, sizeof(mid));
	cli_frame(0, true, 2, big, sizeof(big));
	RUN_UNTIL(f.srv[0].nmsg == 5);
	assert_false(f.srv[0].last_text);
	assert_int_equal(f.srv[0].msgs.len, 5 + 4 + 0 + 300 + 70000 + 5);
	assert_memory_equal(f.srv[0].msgs.data, "hello|\0\1\2\377||m", 13);
	/* server to client */
	assert_int_equal(cm_ws_send_text(f.srv[0].c, "hi", 2), 0);
	assert_int_equal(cm_ws_send_binary(f.srv[0].c, big, sizeof(big)), 0);
	assert_int_equal(cm_ws_send_binary(f.srv[0].c, NULL, 0), 0);
	assert_int_equal(cm_ws_send_text(f.srv[0].c, mid, sizeof(mid)), 0);
	expect_frame(0, 1, "hi", 2);
	expect_frame(0, 2, big, sizeof(big));
	expect_frame(0, 2, NULL, 0);
	expect_frame(0, 1, mid, sizeof(mid));
	/* what may not be sent */
	assert_int_equal(cm_ws_send_text(f.srv[0].c, "\xc0\xaf", 2), -EINVAL);
	assert_int_equal(cm_ws_ping(f.srv[0].c, big, 126), -EINVAL);
	assert_int_equal(cm_ws_send_binary(f.srv[0].c, big, 2 * 1024 * 1024), -EMSGSIZE);
	fix_close(&f);
}

/* The caller's pause: nothing more is handed over until the resume, and what came meanwhile
 * follows it, in order, from the loop (not from within cm_ws_resume()). */
static void test_pause_resume(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	cli_frame(0, true, 1, "one", 3);
	RUN_UNTIL(f.srv[0].nmsg == 1);
	cm_ws_pause(f.srv[0].c);
	cm_ws_pause(f.srv[0].c); /* twice is once */
	cli_frame(0, true, 1, "two", 3);
	cli_frame(0, true, 1, "three", 5);
	spin(50);
	assert_int_equal(f.srv[0].nmsg, 1);
	cm_ws_resume(f.srv[0].c);
	assert_int_equal(f.srv[0].nmsg, 1);
	RUN_UNTIL(f.srv[0].nmsg == 3);
	assert_int_equal(f.srv[0].msgs.len, strlen("one|two|three|"));
	assert_memory_equal(f.srv[0].msgs.data, "one|two|three|", f.srv[0].msgs.len);
	cm_ws_resume(f.srv[0].c); /* not paused: nothing happens */
	/* output goes on while paused */
	cm_ws_pause(f.srv[0].c);
	assert_int_equal(cm_ws_send_text(f.srv[0].c, "out", 3), 0);
	expect_frame(0, 1, "out", 3);
	cm_ws_resume(f.srv[0].c);
	fix_close(&f);
}

static void test_fragments(void **state)
{
	struct fix f;
	struct cm_buf b;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	/* a text message in three frames, a ping between two of them */
	cli_frame(0, false, 1, "frag", 4);
	cli_frame(0, true, 9, "p", 1);
	cli_frame(0, false, 0, "men", 3);
	cli_frame(0, true, 0, "ted", 3);
	RUN_UNTIL(f.srv[0].nmsg == 1);
	assert_string_equal(f.srv[0].msgs.data, "fragmented|");
	assert_true(f.srv[0].last_text);
	expect_frame(0, 10, "p", 1);
	/* a character cut between two fragments is still one character */
	cli_frame(0, false, 1, "\xe2\x82", 2);
	cli_frame(0, true, 0, "\xac", 1);
	/* binary, the first fragment empty */
	cli_frame(0, false, 2, "", 0);
	cli_frame(0, true, 0, "\0\1", 2);
	RUN_UNTIL(f.srv[0].nmsg == 3);
	assert_memory_equal(f.srv[0].msgs.data, "fragmented|\xe2\x82\xac|\0\1|", 18);
	assert_false(f.srv[0].last_text);
	/* a frame that arrives a byte at a time */
	cm_buf_init(&b, 0);
	put_frame(&b, true, 1, "slowly", 6);
	for (size_t k = 0; k < b.len; k++) {
		cli_write(0, b.data + k, 1);
		spin(2);
	}
	cm_buf_free(&b);
	RUN_UNTIL(f.srv[0].nmsg == 4);
	assert_memory_equal(f.srv[0].msgs.data + 18, "slowly|", 7);
	fix_close(&f);
}

static void test_ping_pong(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	cli_frame(0, true, 9, "abc", 3);
	expect_frame(0, 10, "abc", 3);
	assert_int_equal(cm_ws_ping(f.srv[0].c, "xyz", 3), 0);
	expect_frame(0, 9, "xyz", 3);
	cli_frame(0, true, 10, "xyz", 3);
	RUN_UNTIL(f.srv[0].pongs == 1);
	assert_memory_equal(f.srv[0].pong.data, "xyz", 3);
	assert_int_equal(f.srv[0].nmsg, 0);
	fix_close(&f);
}

static void test_too_big(void **state)
{
	struct fix f;
	static char data[1001];

	(void)state;
	fix_open(&f);
	f.cfg.max_message = 1000;
	memset(data, 't', sizeof(data));
	ws_open(0, false);
	cli_frame(0, true, 1, data, 1000); /* at the limit */
	RUN_UNTIL(f.srv[0].nmsg == 1);
	cli_frame(0, true, 1, data, 1001);
	expect_close(0, 1009, NULL);
	expect_end(0, 1009);
	assert_int_equal(f.srv[0].nmsg, 1);
	/* over the limit in fragments */
	ws_open(1, false);
	cli_frame(1, false, 2, data, 600);
	cli_frame(1, true, 0, data, 600);
	expect_close(1, 1009, NULL);
	expect_end(1, 1009);
	assert_int_equal(f.srv[1].nmsg, 0);
	fix_close(&f);
}

static void test_invalid_utf8(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	cli_frame(0, true, 1, "ab\xff", 3);
	expect_close(0, 1007, NULL);
	expect_end(0, 1007);
	/* a sequence that goes wrong in the next fragment */
	ws_open(1, false);
	cli_frame(1, false, 1, "\xe2\x82", 2);
	cli_frame(1, true, 0, "(", 1);
	expect_close(1, 1007, NULL);
	expect_end(1, 1007);
	/* a close reason is UTF-8 too */
	ws_open(2, false);
	cli_close_frame(2, 1000, "\xff");
	expect_close(2, 1007, NULL);
	expect_end(2, 1007);
	assert_int_equal(f.srv[0].nmsg + f.srv[1].nmsg + f.srv[2].nmsg, 0);
	fix_close(&f);
}

/* Frames a client must not send; each ends its connection with 1002. */
static void test_protocol_errors(void **state)
{
	struct fix f;
	struct cm_buf b;
	static const unsigned char close1[] = {0x03};
	static const unsigned char close1005[] = {0x03, 0xed};
	static char long_ping[126];
	const int n = 11;

	(void)state;
	fix_open(&f);
	for (int i = 0; i < n; i++) {
		ws_open(i, false);
		cm_buf_init(&b, 0);
		switch (i) {
		case 0:
			put_raw(&b, 0x81, false, "unmasked", 8);
			break;
		case 1:
			put_raw(&b, 0xc1, true, "rsv1", 4);
			break;
		case 2:
			put_raw(&b, 0x83, true, "op3", 3);
			break;
		case 3:
			put_frame(&b, true, 0, "cont", 4); /* continuation of nothing */
			break;
		case 4:
			put_frame(&b, false, 1, "a", 1);
			put_frame(&b, true, 1, "b", 1); /* a new message inside the first */
			break;
		case 5:
			put_raw(&b, 0x09, true, "p", 1); /* a fragmented ping */
			break;
		case 6:
			put_frame(&b, true, 9, long_ping, sizeof(long_ping));
			break;
		case 7:
			put_frame(&b, true, 8, close1, sizeof(close1));
			break;
		case 8:
			put_frame(&b, true, 8, close1005, sizeof(close1005));
			break;
		case 9: {
			/* a length of 5 in the 16-bit form */
			static const unsigned char h[] = {0x81, 0xfe, 0, 5, 0, 0, 0, 0};

			assert_int_equal(cm_buf_append(&b, h, sizeof(h)), 0);
			assert_int_equal(cm_buf_append(&b, "hello", 5), 0);
			break;
		}
		case 10: {
			/* a 64-bit length with its top bit set */
			static const unsigned char h[] = {0x82, 0xff, 0x80, 0, 0, 0, 0,
			                                  0,    0,    1,    0, 0, 0, 0};

			assert_int_equal(cm_buf_append(&b, h, sizeof(h)), 0);
			break;
		}
		}
		cli_write(i, b.data, b.len);
		cm_buf_free(&b);
		expect_close(i, 1002, NULL);
		expect_end(i, 1002);
		assert_int_equal(f.srv[i].nmsg, 0);
	}
	fix_close(&f);
}

static void test_close_from_client(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	cli_close_frame(0, 1000, "bye");
	expect_close(0, 1000, "bye");
	expect_end(0, 1000); /* the server closes the TCP connection */
	assert_int_equal(f.cli[0].eof, 1);
	/* a close frame without a code */
	ws_open(1, false);
	cli_frame(1, true, 8, NULL, 0);
	expect_frame(1, 8, NULL, 0);
	expect_end(1, 1005);
	/* a peer that goes away without a close frame */
	ws_open(2, false);
	cm_stream_close(f.cli[2].s, 0);
	expect_end(2, -ECONNRESET);
	fix_close(&f);
}

static void test_close_from_server(void **state)
{
	struct fix f;
	uint64_t t0;
	static char reason[125]; /* 124 bytes and a NUL */

	(void)state;
	fix_open(&f);
	f.cfg.close_ms = 300;
	ws_open(0, false);
	struct cm_ws_conn *c = f.srv[0].c;
	static const int bad[] = {999, 1004, 1005, 1006, 1012, 1015, 2999, 5000};

	memset(reason, 'r', sizeof(reason) - 1);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(cm_ws_close(c, bad[k], NULL), -EINVAL);
	assert_int_equal(cm_ws_close(c, 1000, "\xff"), -EINVAL);
	assert_int_equal(cm_ws_close(c, 0, "why"), -EINVAL);
	assert_int_equal(cm_ws_close(c, 1000, reason), -EINVAL); /* 124 bytes */
	assert_int_equal(cm_ws_close(c, 4000, "done"), 0);
	assert_int_equal(cm_ws_close(c, 4000, "done"), -ESHUTDOWN);
	assert_int_equal(cm_ws_send_text(c, "late", 4), -ESHUTDOWN);
	expect_close(0, 4000, "done");
	/* what the client still sends is dropped; its close frame ends it all */
	cli_frame(0, true, 1, "dropped", 7);
	cli_close_frame(0, 4000, "");
	expect_end(0, 4000);
	assert_int_equal(f.srv[0].nmsg, 0);
	/* a client that never answers: closed at close_ms, still with our code */
	ws_open(1, false);
	t0 = uv_now(&f.uv);
	assert_int_equal(cm_ws_close(f.srv[1].c, 1001, NULL), 0);
	expect_close(1, 1001, "");
	RUN_UNTIL(f.srv[1].closed);
	assert_int_equal(f.srv[1].code, 1001);
	assert_true(uv_now(&f.uv) - t0 >= 250);
	/* a close frame without a code */
	ws_open(2, false);
	assert_int_equal(cm_ws_close(f.srv[2].c, 0, NULL), 0);
	expect_frame(2, 8, NULL, 0);
	cli_frame(2, true, 8, NULL, 0);
	expect_end(2, 1005);
	/* abort: no close frame, the error given */
	ws_open(3, false);
	cm_ws_abort(f.srv[3].c, -EPERM);
	expect_end(3, -EPERM);
	fix_close(&f);
}

static void test_timer(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	ws_open(0, false);
	cm_ws_timer(f.srv[0].c, 100); /* no timeout event: a close with 1001 */
	expect_close(0, 1001, "");
	cli_close_frame(0, 1001, "");
	expect_end(0, 1001);
	f.ev.timeout = s_timeout;
	ws_open(1, false);
	cm_ws_timer(f.srv[1].c, 100);
	cm_ws_timer(f.srv[1].c, 0);
	cm_ws_timer(f.srv[1].c, 150);
	expect_end(1, -ETIMEDOUT);
	assert_int_equal(f.srv[1].timeouts, 1);
	/* armed from the open event: it runs from the 101 on (a deadline for the first message) */
	f.open_timer = 100;
	ws_open(2, false);
	expect_end(2, -ETIMEDOUT);
	assert_int_equal(f.srv[2].timeouts, 1);
	fix_close(&f);
}

/* A client that stops reading: the server's sends fill the stream, then cm_ws, then fail with
 * -ENOBUFS; the client's input is not read meanwhile; once the client reads again, the writable
 * event comes and everything arrives, in order. */
static void test_slow_reader(void **state)
{
	struct fix f;
	static char chunk[16384];
	int sent = 0, r = 0, got = 0, op, w0;
	const char *p;
	size_t n;

	(void)state;
	fix_open(&f);
	f.lc.stream.high_water = 64 * 1024;
	f.lc.stream.low_water = 16 * 1024;
	f.cfg.max_queued = 128 * 1024;
	listen_now(&f);
	ws_open(0, false);
	cm_stream_pause(f.cli[0].s);
	for (int i = 0; i < 20000 && r == 0; i++) {
		memset(chunk, 'a' + sent % 26, sizeof(chunk));
		r = cm_ws_send_binary(f.srv[0].c, chunk, sizeof(chunk));
		if (r == 0)
			sent++;
		if (i % 4 == 3)
			uv_run(&f.uv, UV_RUN_NOWAIT);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(cm_ws_queued(f.srv[0].c) >= 128 * 1024);
	assert_true(cm_stream_full(cm_ws_stream(f.srv[0].c)));
	/* the kernel's buffers took some before they filled up: writable may have come already */
	w0 = f.srv[0].writable;
	/* the client's message waits while the server's output is stuck */
	cli_frame(0, true, 1, "while full", 10);
	spin(50);
	assert_int_equal(f.srv[0].nmsg, 0);
	assert_int_equal(f.srv[0].writable, w0);
	cm_stream_resume(f.cli[0].s);
	RUN_UNTIL(f.srv[0].writable > w0);
	RUN_UNTIL(f.srv[0].nmsg == 1);
	assert_string_equal(f.srv[0].msgs.data, "while full|");
	while (got < sent) {
		RUN_UNTIL(cli_next(0, &op, &p, &n));
		assert_int_equal(op, 2);
		assert_int_equal(n, sizeof(chunk));
		assert_int_equal(p[0], 'a' + got % 26);
		assert_int_equal(p[n - 1], 'a' + got % 26);
		got++;
	}
	/* again, and a close while messages wait: they go out first, then the close frame */
	cm_stream_pause(f.cli[0].s);
	r = 0;
	for (int i = 0; i < 20000 && r == 0; i++) {
		memset(chunk, 'a' + sent % 26, sizeof(chunk));
		r = cm_ws_send_binary(f.srv[0].c, chunk, sizeof(chunk));
		if (r == 0)
			sent++;
		if (i % 4 == 3)
			uv_run(&f.uv, UV_RUN_NOWAIT);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_int_equal(cm_ws_close(f.srv[0].c, 1000, "bye"), 0);
	assert_true(f.srv[0].c->close_pending); /* held back behind the messages */
	assert_int_equal(cm_ws_send_text(f.srv[0].c, "x", 1), -ESHUTDOWN);
	cm_stream_resume(f.cli[0].s);
	while (got < sent) {
		RUN_UNTIL(cli_next(0, &op, &p, &n));
		assert_int_equal(op, 2);
		assert_int_equal(p[0], 'a' + got % 26);
		got++;
	}
	expect_close(0, 1000, "bye");
	cli_close_frame(0, 1000, "");
	expect_end(0, 1000);
	fix_close(&f);
}

static void test_tls(void **state)
{
	struct fix f;

	(void)state;
	fix_open(&f);
	f.lc.stream.tls = f.srv_tls;
	listen_now(&f);
	ws_open(0, true);
	assert_true(cm_ws_secured(f.srv[0].c));
	f.srv[0].echo = 1;
	cli_frame(0, true, 1, "over TLS", 8);
	expect_frame(0, 1, "over TLS", 8);
	cli_close_frame(0, 1000, "");
	expect_close(0, 1000, "");
	expect_end(0, 1000);
	fix_close(&f);
}

/* The parcel goes to the second loop in a message, as xmpp-core would send it. */
struct move_msg {
	struct cm_msg m;
	struct cm_ws_parcel *p;
	struct srv *x;
	int rc;
	int done;
};

static void on_move(struct cm_loop *l, struct cm_msg *m)
{
	struct move_msg *mm = (struct move_msg *)m;

	mm->rc = cm_ws_import(&mm->x->c, l, mm->p, &F->cfg, &F->ev, mm->x);
	mm->done = 1;
}

/* A connection moves to another loop from the event of its message "move"; the message that
 * followed in the same read comes out on the new loop, which goes on talking. */
static void move_to_another_loop(bool tls)
{
	struct fix f;
	struct cm_buf b;
	struct move_msg mm = {.m.fn = on_move};
	struct srv *moved;
	struct cm_ws_parcel *p;

	fix_open(&f);
	if (tls) {
		f.lc.stream.tls = f.srv_tls;
		listen_now(&f);
	}
	assert_int_equal(uv_loop_init(&f.uv2), 0);
	assert_int_equal(cm_loop_init(&f.l2, &f.uv2, 1), 0);
	cm_loop_keep_alive(&f.l2, true); /* its mailbox waits for the parcel */
	f.two = true;
	ws_open(0, tls);
	/* not at a message boundary: a message is part-way in */
	cli_frame(0, false, 1, "par", 3);
	spin(20);
	assert_int_equal(cm_ws_export(f.srv[0].c, &p), -EAGAIN);
	cli_frame(0, true, 0, "t", 1);
	RUN_UNTIL(f.srv[0].nmsg == 1);
	/* "move" and "after" in one write */
	f.srv[0].export_on = 1;
	cm_buf_init(&b, 0);
	put_frame(&b, true, 1, "move", 4);
	put_frame(&b, true, 1, "after", 5);
	cli_write(0, b.data, b.len);
	cm_buf_free(&b);
	RUN_UNTIL(f.parcel || f.export_rc);
	assert_int_equal(f.export_rc, 0);
	assert_int_equal(f.srv[0].closed, 0);          /* no closed event for the move */
	assert_int_equal(f.parcel->in.len, 2 + 4 + 5); /* "after", not parsed yet, goes along */
	moved = &f.srv[1];
	f.nsrv = 2;
	moved->echo = 1;
	mm.p = f.parcel;
	mm.x = moved;
	f.parcel = NULL;
	assert_int_equal(cm_loop_post(&f.l2, &mm.m), 0);
	RUN_UNTIL(mm.done);
	assert_int_equal(mm.rc, 0);
	assert_ptr_equal(cm_stream_loop(cm_ws_stream(moved->c)), &f.l2);
	assert_string_equal(cm_ws_protocol(moved->c), "xmpp");
	assert_int_equal(cm_ws_secured(moved->c), tls);
	RUN_UNTIL(moved->nmsg == 1);
	assert_string_equal(moved->msgs.data, "after|");
	expect_frame(0, 1, "after", 5); /* the echo, from the new loop */
	cli_frame(0, true, 1, "more", 4);
	expect_frame(0, 1, "more", 4);
	cli_close_frame(0, 1000, "");
	expect_close(0, 1000, "");
	RUN_UNTIL(moved->closed && f.cli[0].closed);
	assert_int_equal(moved->code, 1000);
	f.srv[0].closed = 1; /* it moved: fix_close does not wait for it */
	cm_loop_keep_alive(&f.l2, false);
	cm_loop_close(&f.l2, NULL);
	assert_int_equal(uv_run(&f.uv2, UV_RUN_DEFAULT), 0);
	cm_loop_free(&f.l2);
	assert_int_equal(uv_loop_close(&f.uv2), 0);
	f.two = false;
	fix_close(&f);
}

static void test_move(void **state)
{
	(void)state;
	move_to_another_loop(false);
	move_to_another_loop(true);
}

/* --- in-memory connections -------------------------------------------------------------------- */

struct memrun {
	int nmsg, closed, code;
};

static void m_message(struct cm_ws_conn *c, const char *data, size_t len, bool text)
{
	struct memrun *m = cm_ws_data(c);

	m->nmsg++;
	if (text)
		(void)cm_ws_send_text(c, data, len);
	else
		(void)cm_ws_send_binary(c, data, len);
}

static void m_closed(struct cm_ws_conn *c, int code)
{
	struct memrun *m = cm_ws_data(c);

	m->closed++;
	m->code = code;
}

static const struct cm_ws_events mem_events = {.message = m_message, .closed = m_closed};
static const char *const mem_protocols[] = {"xmpp", NULL};
static const struct cm_ws_config mem_cfg = {.path = "/ws", .protocols = mem_protocols};

/* The client's side of an in-memory conversation: the handshake, a text message, a ping, a
 * fragmented binary message, a close. */
static void mem_input(struct cm_buf *b)
{
	static const char req[] = REQ_HEAD("/ws", "Sec-WebSocket-Protocol: xmpp\r\n");

	assert_int_equal(cm_buf_append(b, req, sizeof(req) - 1), 0);
	put_frame(b, true, 1, "one", 3);
	put_frame(b, true, 9, "ping", 4);
	put_frame(b, false, 2, "tw", 2);
	put_frame(b, true, 0, "o", 1);
	put_frame(b, true, 8, "\x03\xe8", 2);
}

/* Feed the conversation in (from mem_input()) in pieces of at most piece bytes; output into out
 * (NULL: not kept). 0 when the whole conversation took place. */
static int mem_run(const struct cm_buf *in, size_t piece, struct cm_buf *out)
{
	struct memrun m = {0};
	struct cm_ws_conn *c;
	int r;

	r = cm_ws__mem_alloc(&c, &mem_cfg, &mem_events, &m);
	if (r)
		return r;
	for (size_t off = 0; off < in->len; off += piece)
		cm_ws__mem_input(c, in->data + off, in->len - off < piece ? in->len - off : piece);
	if (out)
		assert_int_equal(cm_buf_append(out, c->mem_out.data, c->mem_out.len), 0);
	r = c->mem_out.len > 0 && strncmp(c->mem_out.data, "HTTP/1.1 101 ", 13) == 0 ? 0 : -EPROTO;
	cm_ws__mem_free(c);
	assert_int_equal(m.closed, 1);
	if (r == 0 && (m.nmsg != 2 || m.code != 1000))
		r = -EIO;
	return r;
}

/* However the input is cut, the same answers come out. */
static void test_mem_pieces(void **state)
{
	struct cm_buf in, whole, cut;
	static const unsigned char expect_tail[] = {0x81, 3,   'o',  'n', 'e',  0x8a, 4,
	                                            'p',  'i', 'n',  'g', 0x82, 3,    't',
	                                            'w',  'o', 0x88, 2,   0x03, 0xe8};

	(void)state;
	cm_buf_init(&in, 0);
	mem_input(&in);
	cm_buf_init(&whole, 0);
	assert_int_equal(mem_run(&in, SIZE_MAX, &whole), 0);
	assert_true(whole.len > sizeof(expect_tail));
	assert_memory_equal(whole.data + whole.len - sizeof(expect_tail), expect_tail,
	                    sizeof(expect_tail));
	for (size_t piece = 1; piece < 40; piece++) {
		cm_buf_init(&cut, 0);
		assert_int_equal(mem_run(&in, piece, &cut), 0);
		assert_int_equal(cut.len, whole.len);
		assert_memory_equal(cut.data, whole.data, whole.len);
		cm_buf_free(&cut);
	}
	cm_buf_free(&whole);
	cm_buf_free(&in);
}

static int alloc_scenario(void *arg)
{
	return mem_run(arg, SIZE_MAX, NULL);
}

/* An allocation that fails anywhere ends the conversation cleanly (no leak, no crash). */
static void test_alloc_failures(void **state)
{
	struct cm_buf in;

	(void)state;
	cm_buf_init(&in, 0);
	mem_input(&in);
	assert_true(test_alloc_sweep(alloc_scenario, &in, 200) > 1);
	cm_buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_key),
	    cmocka_unit_test(test_handshake),
	    cmocka_unit_test(test_handshake_refused),
	    cmocka_unit_test(test_handshake_deadline),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_pause_resume),
	    cmocka_unit_test(test_fragments),
	    cmocka_unit_test(test_ping_pong),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_protocol_errors),
	    cmocka_unit_test(test_close_from_client),
	    cmocka_unit_test(test_close_from_server),
	    cmocka_unit_test(test_timer),
	    cmocka_unit_test(test_slow_reader),
	    cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_move),
	    cmocka_unit_test(test_mem_pieces),
	    cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
