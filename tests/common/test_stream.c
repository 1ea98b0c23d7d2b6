/* test_stream.c - cm/stream.h and cm/listener.h over real loopback sockets: echo in the clear and
 * over TLS, STARTTLS, the handshake deadline, the protocol timer, water marks and -ENOBUFS,
 * pausing with TLS plaintext waiting, a graceful close that delivers everything, an abort with a
 * reset, connect failures, the listener's connection cap and per-source hook. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
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

#define DIR "tests/common/tls/"

/* One side of a connection as the tests see it. */
struct side {
	struct cm_stream *s;
	struct cm_buf in;
	int closed, err, eof, connected, secured, writable, timeouts;
	int echo;         /* write back what arrives */
	int starttls_srv; /* server: on "STARTTLS\n" answer "PROCEED\n" and start TLS */
	int starttls_cli; /* client: on "PROCEED\n" start TLS */
	int pause_after;  /* pause once this many bytes arrived (then resumed by the test) */
	int close_on_eof;
};

struct fix {
	uv_loop_t uv;
	struct cm_loop l;
	struct cm_listener *ln;
	struct cm_tls *srv_tls, *cli_tls;
	struct side srv[4], cli[4];
	int nsrv;
	int refused_cap, refused_source;
	int admitted, released;
	unsigned max_per_source;
	uint16_t port;
	uv_timer_t guard;
	int timed_out;
};

static struct fix *F;

static void on_read(struct cm_stream *s, const char *data, size_t len)
{
	struct side *x = cm_stream_data(s);

	assert_int_equal(cm_buf_append(&x->in, data, len), 0);
	if (x->echo)
		assert_int_equal(cm_stream_write(s, data, len), 0);
	if (x->starttls_srv && strstr(x->in.data, "STARTTLS\n")) {
		x->starttls_srv = 0;
		cm_buf_reset(&x->in);
		assert_int_equal(cm_stream_write(s, "PROCEED\n", 8), 0);
		assert_int_equal(cm_stream_starttls(s, F->srv_tls, NULL), 0);
		assert_int_equal(cm_stream_starttls(s, F->srv_tls, NULL), -EALREADY);
	}
	if (x->starttls_cli && strstr(x->in.data, "PROCEED\n")) {
		x->starttls_cli = 0;
		cm_buf_reset(&x->in);
		assert_int_equal(cm_stream_starttls(s, F->cli_tls, "localhost"), 0);
	}
	if (x->pause_after && x->in.len >= (size_t)x->pause_after) {
		x->pause_after = 0;
		cm_stream_pause(s);
	}
}

static void on_eof(struct cm_stream *s)
{
	struct side *x = cm_stream_data(s);

	x->eof++;
	if (x->close_on_eof)
		cm_stream_close(s, 0);
}

static void on_connected(struct cm_stream *s)
{
	((struct side *)cm_stream_data(s))->connected++;
}

static void on_secured(struct cm_stream *s)
{
	((struct side *)cm_stream_data(s))->secured++;
}

static void on_writable(struct cm_stream *s)
{
	((struct side *)cm_stream_data(s))->writable++;
}

static void on_closed(struct cm_stream *s, int err)
{
	struct side *x = cm_stream_data(s);

	x->closed++;
	x->err = err;
	x->s = NULL;
}

static const struct cm_stream_events events = {
    .read = on_read,
    .eof = on_eof,
    .connected = on_connected,
    .secured = on_secured,
    .writable = on_writable,
    .closed = on_closed,
};

static void on_timeout(struct cm_stream *s)
{
	((struct side *)cm_stream_data(s))->timeouts++;
	cm_stream_abort(s, -ETIMEDOUT, false);
}

static const struct cm_stream_events events_timeout = {
    .read = on_read,
    .eof = on_eof,
    .timeout = on_timeout,
    .closed = on_closed,
};

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	struct side *x = &F->srv[F->nsrv++];

	(void)ln;
	x->s = s;
	cm_stream_start(s, &events, x);
}

static void on_refused(struct cm_listener *ln, enum cm_listener_refusal why,
                       const struct sockaddr *peer)
{
	(void)ln;
	assert_int_equal(peer->sa_family, AF_INET);
	if (why == CM_LISTENER_REFUSED_CAP)
		F->refused_cap++;
	else
		F->refused_source++;
}

static const struct cm_listener_events lev = {.accept = on_accept, .refused = on_refused};

static int admit(void *arg, const struct sockaddr *peer)
{
	struct fix *f = arg;

	(void)peer;
	if (f->max_per_source && (unsigned)(f->admitted - f->released) >= f->max_per_source)
		return -EUSERS;
	f->admitted++;
	return 0;
}

static void release(void *arg, const struct sockaddr *peer)
{
	(void)peer;
	((struct fix *)arg)->released++;
}

static void on_guard(uv_timer_t *t)
{
	(void)t;
	F->timed_out = 1;
	uv_stop(t->loop);
}

/* Run the loop until cond() holds (fail after 5 s). */
#define RUN_UNTIL(cond)                                                                            \
	do {                                                                                       \
		uv_timer_start(&F->guard, on_guard, 5000, 0);                                      \
		while (!(cond) && !F->timed_out)                                                   \
			uv_run(&F->uv, UV_RUN_ONCE);                                               \
		uv_timer_stop(&F->guard);                                                          \
		assert_false(F->timed_out);                                                        \
	} while (0)

static void fix_open(struct fix *f, struct cm_listener_config *lc)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	socklen_t len;
	struct cm_tls_config sc = {
	    .cert_file = DIR "server.pem", .key_file = DIR "server.key", .alpn = "xmpp-client"};
	struct cm_tls_config cc = {.ca_file = DIR "ca.pem", .alpn = "xmpp-client"};
	char err[256];

	memset(f, 0, sizeof(*f));
	F = f;
	assert_int_equal(uv_loop_init(&f->uv), 0);
	assert_int_equal(cm_loop_init(&f->l, &f->uv, 0), 0);
	uv_timer_init(&f->uv, &f->guard);
	assert_int_equal(cm_tls_server_alloc(&f->srv_tls, &sc, err, sizeof(err)), 0);
	assert_int_equal(cm_tls_client_alloc(&f->cli_tls, &cc, err, sizeof(err)), 0);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	lc->addr = (struct sockaddr *)&sin;
	lc->addrlen = sizeof(sin);
	lc->source_admit = admit;
	lc->source_release = release;
	lc->source_arg = f;
	assert_int_equal(cm_listener_open(&f->ln, &f->l, lc, &lev, f), 0);
	assert_int_equal(cm_listener_address(f->ln, &ss, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	for (int i = 0; i < 4; i++) {
		cm_buf_init(&f->srv[i].in, 0);
		cm_buf_init(&f->cli[i].in, 0);
	}
}

/* Replace the fixture's listener by one with configuration lc (the TLS context exists now). */
static void relisten(struct fix *f, struct cm_listener_config *lc)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	socklen_t len;

	if (f->ln)
		cm_listener_close(f->ln, NULL, NULL);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	lc->addr = (struct sockaddr *)&sin;
	assert_int_equal(cm_listener_open(&f->ln, &f->l, lc, &lev, f), 0);
	assert_int_equal(cm_listener_address(f->ln, &ss, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fix_close(struct fix *f)
{
	for (int i = 0; i < 4; i++) {
		if (f->srv[i].s)
			cm_stream_abort(f->srv[i].s, 0, false);
		if (f->cli[i].s)
			cm_stream_abort(f->cli[i].s, 0, false);
	}
	cm_listener_close(f->ln, NULL, NULL);
	uv_close((uv_handle_t *)&f->guard, NULL);
	cm_loop_close(&f->l, NULL);
	assert_int_equal(uv_run(&f->uv, UV_RUN_DEFAULT), 0);
	assert_int_equal(f->admitted, f->released);
	cm_loop_free(&f->l);
	assert_int_equal(uv_loop_close(&f->uv), 0);
	cm_tls_free(f->srv_tls);
	cm_tls_free(f->cli_tls);
	for (int i = 0; i < 4; i++) {
		cm_buf_free(&f->srv[i].in);
		cm_buf_free(&f->cli[i].in);
	}
}

static void connect_cli(struct fix *f, int i, struct cm_tls *tls)
{
	struct cm_stream_opts o = {
	    .tls = tls, .server_name = tls ? "localhost" : NULL, .nodelay = true};

	assert_int_equal(
	    cm_stream_connect(&f->cli[i].s, &f->l, "127.0.0.1", f->port, &o, &events, &f->cli[i]),
	    0);
}

/* --- the cases ------------------------------------------------------------------------------- */

static const int without_tls = 0, with_tls = 1;

static void echo_roundtrip(int tls)
{
	struct fix f;
	struct cm_listener_config lc = {0};

	fix_open(&f, &lc);
	if (tls) {
		lc.stream.tls = f.srv_tls;
		relisten(&f, &lc);
	}
	connect_cli(&f, 0, tls ? f.cli_tls : NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	f.srv[0].echo = 1;
	f.srv[0].close_on_eof = 1;
	assert_int_equal(cm_stream_is_tls(f.cli[0].s), tls);
	if (tls) {
		assert_true(cm_stream_secured(f.cli[0].s));
		assert_string_equal(cm_stream_alpn(f.cli[0].s), "xmpp-client");
	}
	assert_int_equal(cm_stream_write(f.cli[0].s, "hello ", 6), 0);
	assert_int_equal(cm_stream_write(f.cli[0].s, "world", 5), 0);
	RUN_UNTIL(f.cli[0].in.len == 11);
	assert_string_equal(f.cli[0].in.data, "hello world");
	assert_string_equal(f.srv[0].in.data, "hello world");
	if (tls)
		assert_int_equal(f.srv[0].secured, 1);
	/* idle: both ends give back their buffers, and the echo goes on */
	cm_stream_trim(f.cli[0].s);
	cm_stream_trim(f.srv[0].s);
	assert_int_equal(cm_stream_write(f.cli[0].s, "!", 1), 0);
	cm_stream_trim(f.cli[0].s); /* queued: kept */
	RUN_UNTIL(f.cli[0].in.len == 12);
	assert_string_equal(f.cli[0].in.data, "hello world!");
	assert_string_equal(cm_stream_peer_name(f.srv[0].s), cm_stream_peer_name(f.srv[0].s));
	assert_non_null(strstr(cm_stream_peer_name(f.srv[0].s), "127.0.0.1:"));
	cm_stream_close(f.cli[0].s, 0);
	assert_int_equal(cm_stream_write(f.cli[0].s, "x", 1), -ESHUTDOWN);
	RUN_UNTIL(f.cli[0].closed && f.srv[0].closed);
	assert_int_equal(f.cli[0].err, 0);
	assert_int_equal(f.srv[0].err, 0);
	assert_int_equal(f.srv[0].eof, 1);
	assert_int_equal(cm_listener_count(f.ln), 0);
	fix_close(&f);
}

/* state: &with_tls or &without_tls */
static void test_echo(void **state)
{
	echo_roundtrip(*(const int *)*state);
}

static void test_starttls(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};

	(void)state;
	fix_open(&f, &lc);
	connect_cli(&f, 0, NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	f.srv[0].starttls_srv = 1;
	f.cli[0].starttls_cli = 1;
	assert_int_equal(cm_stream_write(f.cli[0].s, "STARTTLS\n", 9), 0);
	RUN_UNTIL(f.cli[0].secured && f.srv[0].secured);
	assert_true(cm_stream_secured(f.srv[0].s));
	f.srv[0].echo = 1;
	assert_int_equal(cm_stream_write(f.cli[0].s, "secret", 6), 0);
	RUN_UNTIL(f.cli[0].in.len == 6);
	assert_string_equal(f.srv[0].in.data, "secret");
	assert_string_equal(f.cli[0].in.data, "secret");
	fix_close(&f);
}

/* A client that connects and never starts TLS is cut at the handshake deadline. */
static void test_handshake_deadline(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	uint64_t t0;

	(void)state;
	fix_open(&f, &lc);
	lc.stream.tls = f.srv_tls;
	lc.stream.handshake_ms = 200;
	relisten(&f, &lc);
	connect_cli(&f, 0, NULL); /* plain TCP: no ClientHello ever */
	f.cli[0].close_on_eof = 1;
	RUN_UNTIL(f.nsrv == 1);
	t0 = uv_now(&f.uv);
	RUN_UNTIL(f.srv[0].closed);
	assert_int_equal(f.srv[0].err, -ETIMEDOUT);
	assert_true(uv_now(&f.uv) - t0 >= 150);
	RUN_UNTIL(f.cli[0].closed);
	fix_close(&f);
}

static void test_protocol_timer(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};

	(void)state;
	fix_open(&f, &lc);
	connect_cli(&f, 0, NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	cm_stream_timer(f.srv[0].s, 100); /* default: closed with -ETIMEDOUT */
	RUN_UNTIL(f.srv[0].closed);
	assert_int_equal(f.srv[0].err, -ETIMEDOUT);
	/* with a handler */
	connect_cli(&f, 1, NULL);
	RUN_UNTIL(f.cli[1].connected && f.nsrv == 2);
	cm_stream_start(f.srv[1].s, &events_timeout, &f.srv[1]);
	cm_stream_timer(f.srv[1].s, 100);
	cm_stream_timer(f.srv[1].s, 0); /* disarmed */
	cm_stream_timer(f.srv[1].s, 150);
	RUN_UNTIL(f.srv[1].closed);
	assert_int_equal(f.srv[1].timeouts, 1);
	fix_close(&f);
}

/* A reader that stops: the writer fills up to max_unsent, then -ENOBUFS; once the reader goes
 * on, the writer hears it is writable again, and every accepted byte arrives. */
static void water_marks(int tls)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	static char chunk[16384];
	size_t sent = 0;
	int r = 0, w0;

	fix_open(&f, &lc);
	lc.stream.tls = tls ? f.srv_tls : NULL;
	lc.stream.high_water = 64 * 1024;
	lc.stream.low_water = 16 * 1024;
	lc.stream.max_unsent = 256 * 1024;
	relisten(&f, &lc);
	memset(chunk, 'w', sizeof(chunk));
	connect_cli(&f, 0, tls ? f.cli_tls : NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1 && (!tls || f.srv[0].secured));
	cm_stream_pause(f.cli[0].s);
	/* write until refused, letting the loop push to the socket between writes */
	for (int i = 0; i < 4000 && r == 0; i++) {
		r = cm_stream_write(f.srv[0].s, chunk, sizeof(chunk));
		if (r == 0)
			sent += sizeof(chunk);
		if (i % 4 == 3)
			uv_run(&f.uv, UV_RUN_NOWAIT);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(cm_stream_full(f.srv[0].s));
	assert_true(cm_stream_unsent(f.srv[0].s) <= 256 * 1024);
	/* the kernel's buffers took some before they filled up: writable may have come already */
	w0 = f.srv[0].writable;
	for (int i = 0; i < 20; i++)
		uv_run(&f.uv, UV_RUN_NOWAIT);
	assert_int_equal(f.srv[0].writable, w0); /* nothing moves while the reader sleeps */
	cm_stream_resume(f.cli[0].s);
	RUN_UNTIL(f.srv[0].writable == w0 + 1);
	assert_false(cm_stream_full(f.srv[0].s));
	RUN_UNTIL(f.cli[0].in.len == sent);
	fix_close(&f);
}

/* state: &with_tls or &without_tls */
static void test_water_marks(void **state)
{
	water_marks(*(const int *)*state);
}

/* A burst larger than max_unsent in one turn is not refused while the kernel takes it: the limit
 * is on what waits, not on what one turn produces. */
static void test_burst_within_a_turn(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	static char chunk[4096];

	(void)state;
	fix_open(&f, &lc);
	lc.stream.high_water = 8 * 1024;
	lc.stream.max_unsent = 16 * 1024;
	relisten(&f, &lc);
	memset(chunk, 'b', sizeof(chunk));
	connect_cli(&f, 0, NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	for (int i = 0; i < 16; i++) /* 64 KiB without a turn of the loop */
		assert_int_equal(cm_stream_write(f.srv[0].s, chunk, sizeof(chunk)), 0);
	RUN_UNTIL(f.cli[0].in.len == 16 * sizeof(chunk));
	fix_close(&f);
}

/* Over TLS, a reader that pauses mid-read has plaintext left in the session; resuming hands it
 * over, in order, without reading the socket for it. */
static void test_pause_resume_tls(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	static char data[100000];

	(void)state;
	fix_open(&f, &lc);
	lc.stream.tls = f.srv_tls;
	relisten(&f, &lc);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	connect_cli(&f, 0, f.cli_tls);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	f.srv[0].pause_after = 1;
	assert_int_equal(cm_stream_write(f.cli[0].s, data, sizeof(data)), 0);
	RUN_UNTIL(f.srv[0].in.len > 0);
	/* paused: a few more turns bring nothing */
	for (int i = 0; i < 20; i++)
		uv_run(&f.uv, UV_RUN_NOWAIT);
	assert_true(f.srv[0].in.len < sizeof(data));
	cm_stream_resume(f.srv[0].s);
	RUN_UNTIL(f.srv[0].in.len == sizeof(data));
	assert_memory_equal(f.srv[0].in.data, data, sizeof(data));
	fix_close(&f);
}

/* A graceful close right after a large write delivers all of it, then the end - with TLS too,
 * where the close_notify must follow the last of the data. */
static void close_delivers(bool tls)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	static char big[300000];

	fix_open(&f, &lc);
	if (tls) {
		lc.stream.tls = f.srv_tls;
		relisten(&f, &lc);
	}
	memset(big, 'z', sizeof(big));
	connect_cli(&f, 0, tls ? f.cli_tls : NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	if (tls)
		RUN_UNTIL(cm_stream_secured(f.srv[0].s));
	assert_int_equal(cm_stream_write(f.srv[0].s, big, sizeof(big)), 0);
	cm_stream_close(f.srv[0].s, 0);
	f.cli[0].close_on_eof = 1;
	RUN_UNTIL(f.cli[0].closed && f.srv[0].closed);
	assert_int_equal(f.cli[0].in.len, sizeof(big));
	assert_int_equal(f.cli[0].eof, 1);
	assert_int_equal(f.srv[0].err, 0);
	fix_close(&f);
}

static void test_close_delivers(void **state)
{
	(void)state;
	close_delivers(false);
	close_delivers(true);
}

static void test_abort_resets(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};

	(void)state;
	fix_open(&f, &lc);
	connect_cli(&f, 0, NULL);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1);
	cm_stream_abort(f.srv[0].s, -EPERM, true);
	RUN_UNTIL(f.cli[0].closed && f.srv[0].closed);
	assert_int_equal(f.srv[0].err, -EPERM);
	assert_int_equal(f.cli[0].err, -ECONNRESET);
	fix_close(&f);
}

static void test_connect_failures(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	struct cm_stream *s;
	uint16_t closed_port;

	(void)state;
	fix_open(&f, &lc);
	closed_port = f.port;
	cm_listener_close(f.ln, NULL, NULL);
	f.ln = NULL;
	uv_run(&f.uv, UV_RUN_NOWAIT);
	assert_int_equal(cm_stream_connect(&s, &f.l, "", 1, NULL, &events, &f.cli[0]), -EINVAL);
	assert_int_equal(cm_stream_connect(&f.cli[0].s, &f.l, "127.0.0.1", closed_port, NULL,
	                                   &events, &f.cli[0]),
	                 0);
	RUN_UNTIL(f.cli[0].closed);
	assert_int_equal(f.cli[0].err, -ECONNREFUSED);
	assert_int_equal(f.cli[0].connected, 0);
	assert_int_equal(
	    cm_stream_connect(&f.cli[1].s, &f.l, "name.invalid", 80, NULL, &events, &f.cli[1]), 0);
	RUN_UNTIL(f.cli[1].closed);
	assert_int_equal(f.cli[1].err, -EHOSTUNREACH);
	/* closed before the resolver answers: one closed event, nothing else */
	assert_int_equal(
	    cm_stream_connect(&f.cli[2].s, &f.l, "name.invalid", 80, NULL, &events, &f.cli[2]), 0);
	cm_stream_close(f.cli[2].s, 0);
	RUN_UNTIL(f.cli[2].closed);
	assert_int_equal(f.cli[2].err, -ECANCELED);
	relisten(&f, &lc); /* fix_close closes a listener */
	fix_close(&f);
}

static void test_listener_limits(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {.max_conns = 2};

	(void)state;
	fix_open(&f, &lc);
	connect_cli(&f, 0, NULL);
	connect_cli(&f, 1, NULL);
	RUN_UNTIL(f.nsrv == 2);
	connect_cli(&f, 2, NULL);
	RUN_UNTIL(f.refused_cap == 1);
	RUN_UNTIL(f.cli[2].closed); /* reset: while connecting, or right after */
	assert_int_equal(f.cli[2].err, -ECONNRESET);
	assert_int_equal(f.nsrv, 2);
	assert_int_equal(cm_listener_count(f.ln), 2);
	/* one goes: room for another */
	cm_stream_close(f.cli[0].s, 0);
	f.srv[0].close_on_eof = 1;
	RUN_UNTIL(f.srv[0].closed);
	assert_int_equal(cm_listener_count(f.ln), 1);
	/* per source: one connection from this address is the most (the hook counts admitted -
	 * released), and one is open */
	f.max_per_source = 1;
	connect_cli(&f, 3, NULL);
	RUN_UNTIL(f.refused_source == 1 && f.cli[3].closed);
	assert_int_equal(f.admitted - f.released, 1);
	fix_close(&f);
}

/* A warning when one source may fill a worker's listener: at its size or above it, or with no cap
 * of its own; none below it, nor when the worker takes any number. */
static void test_listener_warn_caps(void **state)
{
	(void)state;
	assert_int_equal(cm_listener_warn_caps("t", "source", 100, "worker", 100), 1);
	assert_int_equal(cm_listener_warn_caps("t", "source", 101, "worker", 100), 1);
	assert_int_equal(cm_listener_warn_caps("t", "source", 0, "worker", 100), 1);
	assert_int_equal(cm_listener_warn_caps("t", "source", 99, "worker", 100), 0);
	assert_int_equal(cm_listener_warn_caps("t", "source", 100, "worker", 0), 0);
	assert_int_equal(cm_listener_warn_caps("t", "source", 0, "worker", 0), 0);
}

/* A server stream moves to another loop mid-conversation: TLS goes on where it was, the
 * connection still counts against its source until it closes over there. */
static void test_move_to_another_loop(void **state)
{
	struct fix f;
	struct cm_listener_config lc = {0};
	uv_loop_t uv2;
	struct cm_loop l2;
	struct cm_stream_parcel *parcel;
	struct cm_stream *moved;

	(void)state;
	fix_open(&f, &lc);
	lc.stream.tls = f.srv_tls;
	relisten(&f, &lc);
	assert_int_equal(uv_loop_init(&uv2), 0);
	assert_int_equal(cm_loop_init(&l2, &uv2, 1), 0);
	connect_cli(&f, 0, f.cli_tls);
	RUN_UNTIL(f.cli[0].connected && f.nsrv == 1 && f.srv[0].secured);
	f.srv[0].echo = 1;
	assert_int_equal(cm_stream_write(f.cli[0].s, "one", 3), 0);
	RUN_UNTIL(f.cli[0].in.len == 3);
	/* the client sends on while the server stream travels */
	assert_int_equal(cm_stream_write(f.cli[0].s, "two", 3), 0);
	assert_int_equal(cm_stream_export(f.srv[0].s, &parcel), 0);
	assert_int_equal(f.admitted - f.released, 1);
	f.srv[0].s = NULL;
	assert_int_equal(cm_stream_import(&moved, &l2, parcel, &events, &f.srv[0]), 0);
	f.srv[0].s = moved;
	assert_ptr_equal(cm_stream_loop(moved), &l2);
	assert_true(cm_stream_secured(moved));
	for (int i = 0; i < 2000 && f.cli[0].in.len < 6; i++) {
		uv_run(&f.uv, UV_RUN_NOWAIT);
		uv_run(&uv2, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_string_equal(f.cli[0].in.data, "onetwo");
	assert_string_equal(f.srv[0].in.data, "onetwo");
	assert_int_equal(f.srv[0].closed, 0); /* no closed event for the move */
	cm_stream_close(moved, 0);
	f.cli[0].close_on_eof = 1;
	for (int i = 0; i < 2000 && !(f.srv[0].closed && f.cli[0].closed); i++) {
		uv_run(&f.uv, UV_RUN_NOWAIT);
		uv_run(&uv2, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f.srv[0].closed, 1);
	assert_int_equal(f.srv[0].err, 0);
	assert_int_equal(f.admitted, f.released);
	assert_int_equal(cm_listener_count(f.ln), 0);
	cm_loop_close(&l2, NULL);
	assert_int_equal(uv_run(&uv2, UV_RUN_DEFAULT), 0);
	cm_loop_free(&l2);
	assert_int_equal(uv_loop_close(&uv2), 0);
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate(test_echo, (void *)&without_tls),
	    cmocka_unit_test_prestate(test_echo, (void *)&with_tls),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_handshake_deadline),
	    cmocka_unit_test(test_protocol_timer),
	    cmocka_unit_test_prestate(test_water_marks, (void *)&without_tls),
	    cmocka_unit_test_prestate(test_water_marks, (void *)&with_tls),
	    cmocka_unit_test(test_pause_resume_tls),
	    cmocka_unit_test(test_close_delivers),
	    cmocka_unit_test(test_burst_within_a_turn),
	    cmocka_unit_test(test_abort_resets),
	    cmocka_unit_test(test_connect_failures),
	    cmocka_unit_test(test_listener_limits),
	    cmocka_unit_test(test_listener_warn_caps),
	    cmocka_unit_test(test_move_to_another_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
