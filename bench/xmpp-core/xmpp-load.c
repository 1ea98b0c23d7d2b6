/* xmpp-load.c - the XMPP load generator of bench/xmpp-core: many client sessions in one process
 * (one thread, epoll, OpenSSL), driven by commands on stdin, one JSON line of results on stdout
 * per command. Built by bench/xmpp-core/run.sh; not part of the suite's build.
 *
 * A session does what a phone does when it comes online: TCP connect, STARTTLS (or TLS from the
 * first byte, or neither), SASL PLAIN or SCRAM-SHA-1, resource binding (the server picks the
 * resource), the legacy session IQ when the server advertises it, a roster get and an initial
 * presence; it is online once the roster answer is in. Users are named by --user / --password
 * formats with their number (u17@localhost, pw17).
 *
 * Commands (one per line on stdin):
 *   online FIRST COUNT SEC MECH CONC   log users FIRST..FIRST+COUNT-1 in (SEC: plain, starttls,
 *                                      tls; MECH: plain, scram) with at most CONC logins in
 *                                      flight; they stay online (the online set)
 *   logins SECONDS FIRST COUNT SEC MECH CONC
 *                                      for SECONDS, keep CONC logins in flight, users taken in
 *                                      turn from FIRST..FIRST+COUNT-1; each session ends its
 *                                      stream as soon as it is online
 *   chat RATE SECONDS DRAIN            one-to-one chat in the online set: RATE messages/s (open
 *                                      loop, paced every millisecond) for SECONDS, each from the
 *                                      next online session in turn to a random other online user
 *                                      (bare JID); then up to DRAIN s for the last ones to arrive.
 *                                      Latency: from the message's scheduled send time to its
 *                                      arrival, so a client that falls behind is not hidden;
 *                                      and, apart, the wire latency: from the clock read just
 *                                      before the write that carries the message to the
 *                                      moment the kernel queued the server's copy on the
 *                                      recipient's socket (SO_TIMESTAMPNS), which leaves out
 *                                      the client's own delays in sending and reading; and
 *                                      the batch wire latency, which runs from the clock read
 *                                      before the batch of sends that holds the message was
 *                                      built (before 2026-12-07, the only wire latency)
 *   close                              end every online session's stream and wait for the server
 *                                      to close (at most 10 s)
 *   sm                                 every online session enables resumable stream management
 *                                      (XEP-0198) and counts what it receives from then on
 *   drop                               every online session with stream management loses its
 *                                      connection (closed without </stream:stream>), as a phone
 *                                      does in a tunnel; the server keeps the sessions
 *   resume SEC MECH CONC               each dropped session comes back: connect, TLS, SASL and
 *                                      <resume/> with its id and count, at most CONC in flight;
 *                                      timed like logins (a resumed session is online again)
 *   quit
 *
 * The parser is not a general XML parser: it cuts the server's stream into top-level elements by
 * counting tags (quotes respected), which is all a benchmark against known servers needs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#define LOGIN_TIMEOUT_NS (30ull * 1000000000ull)
#define CLOSE_TIMEOUT_NS (5ull * 1000000000ull)
#define MAX_EVENTS       512
#define TICK_NS          100000ull /* chat: the shortest sleep between batches of sends */
#define READ_CHUNK       16384
#define IN_MAX           (1u << 20) /* a server element larger than this is a protocol error */

enum sec { SEC_PLAIN, SEC_STARTTLS, SEC_TLS };
enum mech { MECH_PLAIN, MECH_SCRAM };

enum state {
	ST_CONNECTING, /* TCP connect under way */
	ST_HANDSHAKE,  /* TLS handshake under way */
	ST_FEATURES,   /* header sent, waiting for <stream:features/> */
	ST_PROCEED,    /* <starttls/> sent */
	ST_SASL,       /* <auth/> or <response/> sent */
	ST_BIND,       /* bind IQ sent */
	ST_ROSTER,     /* session IQ, roster get and presence sent: waiting for the roster */
	ST_RESUME,     /* <resume/> sent (a dropped session coming back) */
	ST_ONLINE,     /* a session */
	ST_CLOSING,    /* our </stream:stream> sent: waiting for the server to close */
	ST_DEAD,       /* closed; freed after the current batch of events */
};

enum kind { K_ONLINE, K_CHURN, K_RESUME };

#define SM_ID_MAX 64

struct conn {
	int fd;
	SSL *ssl;
	enum state st;
	enum kind kind;
	enum sec sec;
	enum mech mech;
	int user;
	bool tls_done; /* TLS is on (after the handshake) */
	bool authed;   /* SASL succeeded */
	bool want_out; /* EPOLLOUT armed */
	bool dirty;    /* in the flush list */
	bool session;  /* the server advertised the legacy session */
	bool sm;       /* stream management is on: h counts what arrived */
	uint32_t h;
	char sm_id[SM_ID_MAX + 1];
	uint64_t t0; /* when the login started (ns) */
	uint64_t t_close;
	uint64_t rx_real_ns; /* kernel time (CLOCK_REALTIME) of the newest bytes read, or 0 */
	int online_idx;      /* in the online array, or -1 */
	/* input: plaintext, cut into elements */
	char *in;
	size_t in_len, in_cap, scan, elem;
	int depth;
	/* output: plaintext waiting to be written (or encrypted) */
	char *out;
	size_t out_len, out_cap;
	/* SCRAM */
	char *cfirst_bare; /* n=user,r=nonce */
	struct conn *next_dirty;
	struct conn *prev, *next; /* in the login or closing list */
	struct conn *next_dead;
};

struct list {
	struct conn *head;
	size_t n;
};

struct scram_cache {
	char *salt_b64;
	int iter;
	unsigned char salted[SHA_DIGEST_LENGTH];
};

static struct {
	const char *host;
	int port, tls_port, sources;
	const char *domain;
	const char *user_fmt, *pass_fmt;
	int epfd;
	SSL_CTX *ctx;
	struct conn **online;
	size_t nonline, online_cap;
	struct list logging, closing;
	struct conn *dirty, *dead;
	struct scram_cache *scram;
	size_t nscram;
	unsigned conn_seq;
	/* the command under way */
	int cmd_first, cmd_count, cmd_next, cmd_conc, cmd_inflight;
	enum sec cmd_sec;
	enum mech cmd_mech;
	unsigned long logins_ok, logins_failed, errors_conn, errors_auth, errors_stream,
	    errors_timeout, errors_other;
	uint32_t *login_us;
	size_t nlogin_us, login_us_cap;
	/* chat */
	uint64_t chat_sent, chat_recv, chat_err, chat_late_max;
	uint32_t *lat_us;
	size_t nlat, lat_cap;
	uint32_t *wire_us; /* from the clock read before the write that carries a message to the
	                    * kernel's arrival of the server's copy at the recipient */
	size_t nwire, wire_cap;
	uint32_t *bwire_us; /* the same from the clock read before the message's batch was built */
	size_t nbwire, bwire_cap;
	BIO_METHOD *bio_ts; /* a socket BIO that keeps the kernel's receive timestamps */
	/* stream management: sessions enabled, and those dropped (to be resumed) */
	unsigned long sm_ok, sm_failed;
	struct dropped {
		int user;
		uint32_t h;
		char id[SM_ID_MAX + 1];
	} * dropped, *resuming; /* resuming: what conn_start() is to resume */
	size_t ndropped, dropped_cap;
	char last_error[256];
	bool debug; /* XMPP_LOAD_DEBUG=1: every element in and every write out, on stderr */
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts); /* the clock of the kernel's receive timestamps */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* recv() that also notes when the kernel queued the newest of the bytes it returns (TCP gives
 * the timestamp of the last segment read, so for every byte read it is that byte's arrival or
 * later: a latency computed from it is never too short). */
static ssize_t recv_ts(struct conn *c, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(c->fd, &mh, 0);

	if (n > 0) {
		/* without a timestamp, what these bytes carry is left out of the wire latency */
		c->rx_real_ns = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;

				memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
				c->rx_real_ns =
				    (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
			}
		}
	}
	return n;
}

/* The BIO under each TLS session: a socket BIO whose reads go through recv_ts(). */
static int bio_ts_read(BIO *b, char *out, int len)
{
	ssize_t n = recv_ts(BIO_get_data(b), out, (size_t)len);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static int bio_ts_write(BIO *b, const char *in, int len)
{
	struct conn *c = BIO_get_data(b);
	ssize_t n = send(c->fd, in, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static long bio_ts_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_ts_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "xmpp-load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p && n)
		die("out of memory");
	return p;
}

static void note_error(struct conn *c, const char *what)
{
	snprintf(g.last_error, sizeof(g.last_error), "user %d state %d: %s", c->user, c->st, what);
}

/* --- lists ---------------------------------------------------------------------------------- */

static void list_add(struct list *l, struct conn *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	l->head = c;
	l->n++;
}

static void list_del(struct list *l, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	l->n--;
}

static void u32_push(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*a = xrealloc(*a, *cap * sizeof(**a));
	}
	(*a)[(*n)++] = v;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *a, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return a[i < n ? i : n - 1];
}

/* --- output --------------------------------------------------------------------------------- */

static void arm(struct conn *c, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};

	if (c->want_out == out)
		return;
	c->want_out = out;
	epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_raw(struct conn *c, const char *data, size_t len)
{
	if (g.debug)
		fprintf(stderr, "%d out %.*s\n", c->user, (int)len, data);
	if (c->st == ST_DEAD)
		return;
	if (c->out_len + len > c->out_cap) {
		c->out_cap = (c->out_len + len) * 2;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = g.dirty;
		g.dirty = c;
	}
}

#define SEND_LIT(c, lit) send_raw((c), (lit), sizeof(lit) - 1)

static void sendf(struct conn *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(buf))
		send_raw(c, buf, (size_t)n);
}

static void conn_close(struct conn *c, const char *why);

/* A chat message carries WRITE_MARK in its body until the write that carries it: then the wall
 * clock, read just before that write, takes the mark's digits (zero-padded nanoseconds). */
#define WRITE_MARK "x=zzzzzzzzzzzzzzzzzzz"

static void stamp_writes(struct conn *c)
{
	char *p = c->out, *end = c->out + c->out_len;
	uint64_t now = 0;

	while (p < end && (p = memmem(p, (size_t)(end - p), WRITE_MARK, sizeof(WRITE_MARK) - 1))) {
		char digits[24];

		if (!now)
			now = real_ns();
		snprintf(digits, sizeof(digits), "%019" PRIu64, now);
		memcpy(p + 2, digits, 19);
		p += sizeof(WRITE_MARK) - 1;
	}
}

/* Write what is queued; 0, or -1 when the connection failed (and was closed). */
static int flush(struct conn *c)
{
	size_t off = 0;

	if (c->out_len)
		stamp_writes(c);

	while (off < c->out_len) {
		ssize_t n;

		if (c->tls_done) {
			int r = SSL_write(c->ssl, c->out + off, (int)(c->out_len - off));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				conn_close(c, "TLS write failed");
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				conn_close(c, "write failed");
				return -1;
			}
		}
		off += (size_t)n;
	}
	if (off) {
		memmove(c->out, c->out + off, c->out_len - off);
		c->out_len -= off;
	}
	if (!c->out_len && c->out_cap > 4096) {
		free(c->out); /* an idle session keeps no buffer */
		c->out = NULL;
		c->out_cap = 0;
	}
	arm(c, c->out_len > 0);
	return 0;
}

static void flush_all(void)
{
	while (g.dirty) {
		struct conn *c = g.dirty;

		g.dirty = c->next_dirty;
		c->dirty = false;
		if (c->st != ST_DEAD && c->st != ST_CONNECTING && c->st != ST_HANDSHAKE)
			flush(c);
	}
}

/* --- connections ---------------------------------------------------------------------------- */

static void login_done(struct conn *c, bool ok, const char *why)
{
	if (g.cmd_inflight > 0)
		g.cmd_inflight--;
	if (ok) {
		g.logins_ok++;
		u32_push(&g.login_us, &g.nlogin_us, &g.login_us_cap,
		         (uint32_t)((now_ns() - c->t0) / 1000));
	} else {
		g.logins_failed++;
		if (why)
			note_error(c, why);
	}
}

static void online_remove(struct conn *c)
{
	size_t i = (size_t)c->online_idx;

	if (c->online_idx < 0)
		return;
	g.online[i] = g.online[--g.nonline];
	g.online[i]->online_idx = (int)i;
	c->online_idx = -1;
}

static void conn_close(struct conn *c, const char *why)
{
	if (c->st == ST_DEAD)
		return;
	if (c->st < ST_ONLINE) {
		if (why && strstr(why, "SASL"))
			g.errors_auth++;
		else if (why && strstr(why, "stream error"))
			g.errors_stream++;
		else if (why && strstr(why, "timeout"))
			g.errors_timeout++;
		else if (c->st <= ST_HANDSHAKE)
			g.errors_conn++;
		else
			g.errors_other++;
		login_done(c, false, why);
	} else if (c->st == ST_ONLINE && why) {
		g.errors_other++;
		note_error(c, why);
	}
	if (c->st < ST_ONLINE)
		list_del(&g.logging, c);
	else if (c->st == ST_CLOSING)
		list_del(&g.closing, c);
	online_remove(c);
	c->st = ST_DEAD;
	epoll_ctl(g.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->next_dead = g.dead;
	g.dead = c;
}

static void conn_free(struct conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	free(c->in);
	free(c->out);
	free(c->cfirst_bare);
	free(c);
}

static void reap(void)
{
	while (g.dead) {
		struct conn *c = g.dead;

		g.dead = c->next_dead;
		conn_free(c);
	}
}

static void send_header(struct conn *c)
{
	sendf(c,
	      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	      "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
	      g.domain);
	c->st = ST_FEATURES;
	/* a new stream: the parser starts over */
	c->in_len = c->scan = c->elem = 0;
	c->depth = 0;
}

static int tls_start(struct conn *c)
{
	BIO *bio;

	c->ssl = SSL_new(g.ctx);
	bio = c->ssl ? BIO_new(g.bio_ts) : NULL;
	if (!bio) {
		conn_close(c, "SSL_new failed");
		return -1;
	}
	BIO_set_data(bio, c);
	SSL_set_bio(c->ssl, bio, bio); /* the session owns the BIO */
	SSL_set_tlsext_host_name(c->ssl, g.domain);
	SSL_set_connect_state(c->ssl);
	c->st = ST_HANDSHAKE;
	c->in_len = c->scan = c->elem = 0;
	c->depth = 0;
	return 0;
}

static void handshake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->tls_done = true;
		send_header(c);
		flush(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		arm(c, false);
		break;
	case SSL_ERROR_WANT_WRITE:
		arm(c, true);
		break;
	default:
		conn_close(c, "TLS handshake failed");
	}
}

static void conn_start(enum kind kind, int user, enum sec sec, enum mech mech)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	struct epoll_event ev;
	int one = 1;

	if (!c)
		die("out of memory");
	c->kind = kind;
	c->user = user;
	c->sec = sec;
	c->mech = mech;
	c->online_idx = -1;
	if (kind == K_RESUME) {
		memcpy(c->sm_id, g.resuming->id, sizeof(c->sm_id));
		c->h = g.resuming->h;
		c->sm = true;
	}
	c->t0 = now_ns();
	c->st = ST_CONNECTING;
	list_add(&g.logging, c);
	g.cmd_inflight++;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		note_error(c, strerror(errno));
		g.errors_conn++;
		login_done(c, false, NULL);
		list_del(&g.logging, c);
		free(c);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (g.sources > 1) {
		/* several source addresses: 28k ephemeral ports each towards one server port */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		src.sin_addr.s_addr = htonl(0x7f000001u + (g.conn_seq++ % (unsigned)g.sources));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			die("bind 127.0.0.x: %s", strerror(errno));
	}
	inet_pton(AF_INET, g.host, &dst.sin_addr);
	dst.sin_port = htons((uint16_t)(sec == SEC_TLS ? g.tls_port : g.port));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	c->want_out = true;
	epoll_ctl(g.epfd, EPOLL_CTL_ADD, c->fd, &ev);
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
		conn_close(c, strerror(errno));
		return;
	}
}

static void connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		conn_close(c, strerror(err));
		return;
	}
	if (c->sec == SEC_TLS) {
		if (tls_start(c) == 0)
			handshake(c);
		return;
	}
	send_header(c);
	flush(c);
}

/* End the stream (a session that is done): ours, then wait for the server to close. */
static void conn_end(struct conn *c)
{
	if (c->st == ST_DEAD || c->st == ST_CLOSING)
		return;
	if (c->st < ST_ONLINE)
		list_del(&g.logging, c);
	online_remove(c);
	SEND_LIT(c, "</stream:stream>");
	c->st = ST_CLOSING;
	c->t_close = now_ns();
	list_add(&g.closing, c);
	if (flush(c) != 0)
		return;
	if (c->ssl)
		SSL_shutdown(c->ssl);
	shutdown(c->fd, SHUT_WR);
}

/* --- SASL ----------------------------------------------------------------------------------- */

static char *b64(const void *data, size_t len)
{
	char *out = xrealloc(NULL, 4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Decoded length, or -1. */
static int unb64(const char *in, size_t len, unsigned char *out, size_t cap)
{
	int n;
	size_t pad = 0;

	if (len % 4 || len / 4 * 3 > cap)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
		pad++;
	return n - (int)pad;
}

static void send_auth(struct conn *c)
{
	char user[64], pass[64], raw[160], *enc;
	int ul = snprintf(user, sizeof(user), g.user_fmt, c->user);
	int pl = snprintf(pass, sizeof(pass), g.pass_fmt, c->user);

	if (c->mech == MECH_PLAIN) {
		raw[0] = '\0';
		memcpy(raw + 1, user, (size_t)ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, pass, (size_t)pl);
		enc = b64(raw, (size_t)(2 + ul + pl));
		sendf(c,
		      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		      enc);
	} else {
		unsigned char nonce[18];
		char *nb, first[200];

		RAND_bytes(nonce, sizeof(nonce));
		nb = b64(nonce, sizeof(nonce));
		free(c->cfirst_bare);
		c->cfirst_bare = xrealloc(NULL, (size_t)ul + strlen(nb) + 8);
		sprintf(c->cfirst_bare, "n=%s,r=%s", user, nb);
		free(nb);
		snprintf(first, sizeof(first), "n,,%s", c->cfirst_bare);
		enc = b64(first, strlen(first));
		sendf(c,
		      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
		      "mechanism='SCRAM-SHA-1'>%s</auth>",
		      enc);
	}
	free(enc);
	c->st = ST_SASL;
}

static const char *scram_attr(const char *msg, char name, size_t *len)
{
	const char *p = msg;

	while (p && *p) {
		if (p[0] == name && p[1] == '=') {
			const char *e = strchr(p, ',');

			*len = e ? (size_t)(e - p - 2) : strlen(p + 2);
			return p + 2;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

/* The server's first SCRAM message (base64 text of the challenge). */
static void scram_challenge(struct conn *c, const char *text, size_t tlen)
{
	unsigned char sfirst[512], salt[128], ckey[SHA_DIGEST_LENGTH], skey[SHA_DIGEST_LENGTH];
	unsigned char sig[SHA_DIGEST_LENGTH], proof[SHA_DIGEST_LENGTH];
	char pass[64], final_wo[400], auth_msg[1200], *pb, *enc, final[600];
	const char *r, *s, *i;
	size_t rl, sl, il;
	int n, saltlen, iter;
	struct scram_cache *sc;
	unsigned int hl;

	n = unb64(text, tlen, sfirst, sizeof(sfirst) - 1);
	if (n < 0 || !c->cfirst_bare) {
		conn_close(c, "SASL: bad challenge");
		return;
	}
	sfirst[n] = '\0';
	r = scram_attr((char *)sfirst, 'r', &rl);
	s = scram_attr((char *)sfirst, 's', &sl);
	i = scram_attr((char *)sfirst, 'i', &il);
	if (!r || !s || !i || rl > 200 || sl > 160) {
		conn_close(c, "SASL: bad server-first-message");
		return;
	}
	iter = atoi(i);
	if ((size_t)c->user >= g.nscram) {
		size_t nn = (size_t)c->user + 1024;

		g.scram = xrealloc(g.scram, nn * sizeof(*g.scram));
		memset(g.scram + g.nscram, 0, (nn - g.nscram) * sizeof(*g.scram));
		g.nscram = nn;
	}
	sc = &g.scram[c->user];
	/* a client may keep the salted password of its account (RFC 5802 5.1): this one does */
	if (!sc->salt_b64 || sc->iter != iter || strlen(sc->salt_b64) != sl ||
	    memcmp(sc->salt_b64, s, sl) != 0) {
		saltlen = unb64(s, sl, salt, sizeof(salt));
		if (saltlen < 0) {
			conn_close(c, "SASL: bad salt");
			return;
		}
		snprintf(pass, sizeof(pass), g.pass_fmt, c->user);
		PKCS5_PBKDF2_HMAC_SHA1(pass, (int)strlen(pass), salt, saltlen, iter,
		                       SHA_DIGEST_LENGTH, sc->salted);
		free(sc->salt_b64);
		sc->salt_b64 = strndup(s, sl);
		sc->iter = iter;
	}
	HMAC(EVP_sha1(), sc->salted, SHA_DIGEST_LENGTH, (const unsigned char *)"Client Key", 10,
	     ckey, &hl);
	SHA1(ckey, SHA_DIGEST_LENGTH, skey);
	snprintf(final_wo, sizeof(final_wo), "c=biws,r=%.*s", (int)rl, r);
	snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%s", c->cfirst_bare, (char *)sfirst, final_wo);
	HMAC(EVP_sha1(), skey, SHA_DIGEST_LENGTH, (const unsigned char *)auth_msg, strlen(auth_msg),
	     sig, &hl);
	for (int k = 0; k < SHA_DIGEST_LENGTH; k++)
		proof[k] = ckey[k] ^ sig[k];
	pb = b64(proof, sizeof(proof));
	snprintf(final, sizeof(final), "%s,p=%s", final_wo, pb);
	free(pb);
	enc = b64(final, strlen(final));
	sendf(c, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", enc);
	free(enc);
}

/* --- elements from the server ----------------------------------------------------------------- */

static bool starts(const char *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(p, prefix, n) == 0;
}

static const char *find(const char *p, size_t len, const char *what)
{
	return memmem(p, len, what, strlen(what));
}

/* The value of attribute name in the start tag at p (quotes ' or "), or NULL. */
static const char *attr(const char *p, size_t len, const char *name, size_t *vlen)
{
	const char *end = memchr(p, '>', len), *q = p;
	size_t nl = strlen(name);

	if (!end)
		return NULL;
	while ((q = memmem(q, (size_t)(end - q), name, nl)) != NULL) {
		if ((q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n') && q[nl] == '=' &&
		    (q[nl + 1] == '\'' || q[nl + 1] == '"')) {
			const char *v = q + nl + 2, *ve = memchr(v, q[nl + 1], (size_t)(end - v));

			if (!ve)
				return NULL;
			*vlen = (size_t)(ve - v);
			return v;
		}
		q += nl;
	}
	return NULL;
}

static void on_message(struct conn *c, const char *p, size_t len)
{
	size_t tl;
	const char *type = attr(p, len, "type", &tl), *b = find(p, len, "<body");
	const char *t;

	if (type && tl == 5 && memcmp(type, "error", 5) == 0) {
		g.chat_err++;
		return;
	}
	if (!b)
		return;
	t = memchr(b, '>', len - (size_t)(b - p));
	if (!t || (size_t)(t + 3 - p) >= len || t[1] != 't' || t[2] != '=')
		return;
	{
		char *e;
		uint64_t sent = strtoull(t + 3, &e, 10), now = now_ns();

		g.chat_recv++;
		u32_push(&g.lat_us, &g.nlat, &g.lat_cap,
		         (uint32_t)(now > sent ? (now - sent) / 1000 : 0));
		if (e[0] == ' ' && e[1] == 'w' && e[2] == '=' && c->rx_real_ns) {
			uint64_t batch = strtoull(e + 3, &e, 10), written;

			u32_push(
			    &g.bwire_us, &g.nbwire, &g.bwire_cap,
			    (uint32_t)(c->rx_real_ns > batch ? (c->rx_real_ns - batch) / 1000 : 0));
			if (e[0] == ' ' && e[1] == 'x' && e[2] == '=' && e[3] != 'z') {
				written = strtoull(e + 3, NULL, 10);
				u32_push(&g.wire_us, &g.nwire, &g.wire_cap,
				         (uint32_t)(c->rx_real_ns > written
				                        ? (c->rx_real_ns - written) / 1000
				                        : 0));
			}
		}
	}
}

static void on_iq_request(struct conn *c, const char *p, size_t len)
{
	size_t il, fl;
	const char *id = attr(p, len, "id", &il), *from = attr(p, len, "from", &fl);

	/* pings and anything else asked of a client: an empty result is enough */
	if (!id)
		return;
	if (from)
		sendf(c, "<iq type='result' id='%.*s' to='%.*s'/>", (int)il, id, (int)fl, from);
	else
		sendf(c, "<iq type='result' id='%.*s'/>", (int)il, id);
}

static void went_online(struct conn *c)
{
	list_del(&g.logging, c);
	c->st = ST_ONLINE;
	login_done(c, true, NULL);
	if (c->kind == K_CHURN) {
		conn_end(c); /* a login, and nothing more */
		return;
	}
	if (g.nonline == g.online_cap) {
		g.online_cap = g.online_cap ? g.online_cap * 2 : 1024;
		g.online = xrealloc(g.online, g.online_cap * sizeof(*g.online));
	}
	c->online_idx = (int)g.nonline;
	g.online[g.nonline++] = c;
}

static void element(struct conn *c, const char *p, size_t len)
{
	if (g.debug)
		fprintf(stderr, "%d in  %.*s\n", c->user, (int)len, p);
	if (starts(p, len, "<stream:error")) {
		conn_close(c, "stream error");
		return;
	}
	switch (c->st) {
	case ST_FEATURES:
		if (!starts(p, len, "<stream:features"))
			return;
		if (!c->authed && c->sec == SEC_STARTTLS && !c->tls_done) {
			if (!find(p, len, "<starttls")) {
				conn_close(c, "no STARTTLS offered");
				return;
			}
			SEND_LIT(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
			c->st = ST_PROCEED;
		} else if (!c->authed) {
			send_auth(c);
		} else if (c->kind == K_RESUME) {
			sendf(c, "<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%" PRIu32 "'/>",
			      c->sm_id, c->h);
			c->st = ST_RESUME;
		} else {
			c->session = find(p, len, "urn:ietf:params:xml:ns:xmpp-session") != NULL;
			SEND_LIT(c, "<iq type='set' id='bind'><bind "
			            "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
			c->st = ST_BIND;
		}
		return;
	case ST_PROCEED:
		if (!starts(p, len, "<proceed")) {
			conn_close(c, "STARTTLS refused");
			return;
		}
		flush(c);
		if (c->st != ST_DEAD && tls_start(c) == 0)
			handshake(c);
		return;
	case ST_SASL:
		if (starts(p, len, "<success")) {
			c->authed = true;
			send_header(c);
		} else if (starts(p, len, "<challenge")) {
			const char *t = memchr(p, '>', len), *e = find(p, len, "</challenge>");

			if (!t || !e || c->mech != MECH_SCRAM) {
				conn_close(c, "SASL: unexpected challenge");
				return;
			}
			scram_challenge(c, t + 1, (size_t)(e - t - 1));
		} else if (starts(p, len, "<failure")) {
			conn_close(c, "SASL failure");
		}
		return;
	case ST_BIND:
		if (!starts(p, len, "<iq") ||
		    (!find(p, len, "id='bind'") && !find(p, len, "id=\"bind\"")))
			return;
		if (!find(p, len, "type='result'") && !find(p, len, "type=\"result\"")) {
			conn_close(c, "bind refused");
			return;
		}
		if (c->session)
			SEND_LIT(c, "<iq type='set' id='sess'><session "
			            "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
		SEND_LIT(
		    c,
		    "<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq><presence/>");
		c->st = ST_ROSTER;
		return;
	case ST_ROSTER:
		if (starts(p, len, "<iq") &&
		    (find(p, len, "id='roster'") || find(p, len, "id=\"roster\""))) {
			if (!find(p, len, "type='result'") && !find(p, len, "type=\"result\"")) {
				conn_close(c, "roster get refused");
				return;
			}
			went_online(c);
		}
		return;
	case ST_RESUME:
		if (starts(p, len, "<resumed"))
			went_online(c);
		else if (starts(p, len, "<failed"))
			conn_close(c, "resume failed");
		return;
	case ST_ONLINE:
		if (c->sm && (starts(p, len, "<message") || starts(p, len, "<presence") ||
		              starts(p, len, "<iq")))
			c->h++;
		if (starts(p, len, "<r ") || starts(p, len, "<r/")) {
			sendf(c, "<a xmlns='urn:xmpp:sm:3' h='%" PRIu32 "'/>", c->h);
			return;
		}
		if (starts(p, len, "<enabled")) {
			size_t il;
			const char *id = attr(p, len, "id", &il);

			if (id && il <= SM_ID_MAX) {
				memcpy(c->sm_id, id, il);
				c->sm_id[il] = '\0';
				c->sm = true;
				c->h = 0;
				g.sm_ok++;
			} else {
				g.sm_failed++;
			}
			return;
		}
		if (starts(p, len, "<failed")) {
			g.sm_failed++;
			return;
		}
		if (starts(p, len, "<message"))
			on_message(c, p, len);
		else if (starts(p, len, "<iq") &&
		         (find(p, len, "type='get'") || find(p, len, "type=\"get\"") ||
		          find(p, len, "type='set'") || find(p, len, "type=\"set\"")))
			on_iq_request(c, p, len);
		return;
	default:
		return;
	}
}

/* Cut c->in into top-level elements. The stream header opens depth 1; an element of depth 1
 * is complete when its end tag (or a self-closing tag) brings the depth back to 1. */
static void parse(struct conn *c)
{
	while (c->scan < c->in_len && c->st != ST_DEAD) {
		char *lt = memchr(c->in + c->scan, '<', c->in_len - c->scan), *q;
		char quote = 0;
		bool self;

		if (!lt) {
			c->scan = c->in_len;
			break;
		}
		for (q = lt + 1; q < c->in + c->in_len; q++) {
			if (quote) {
				if (*q == quote)
					quote = 0;
			} else if (*q == '\'' || *q == '"') {
				quote = *q;
			} else if (*q == '>') {
				break;
			}
		}
		if (q >= c->in + c->in_len) {
			c->scan = (size_t)(lt - c->in); /* the tag is not complete yet */
			break;
		}
		c->scan = (size_t)(q + 1 - c->in);
		if (lt[1] == '?' || lt[1] == '!')
			continue;
		if (lt[1] == '/') {
			c->depth--;
			if (c->depth == 1) {
				size_t start = c->elem, end = c->scan;
				enum state before = c->st;

				element(c, c->in + start, end - start);
				if (c->st == ST_DEAD)
					return;
				if (c->in_len == 0 ||
				    (before != c->st && c->depth == 0 && c->scan == 0))
					return; /* the stream restarted: the buffer was emptied */
			} else if (c->depth <= 0) {
				/* the server ended its stream */
				if (c->st == ST_CLOSING) {
					conn_close(c, NULL);
				} else {
					conn_close(c, "the server closed the stream");
				}
				return;
			}
			continue;
		}
		self = q[-1] == '/';
		if (c->depth == 0) {
			/* <stream:stream ...> */
			c->depth = 1;
			continue;
		}
		if (c->depth == 1)
			c->elem = (size_t)(lt - c->in);
		if (self) {
			if (c->depth == 1) {
				size_t start = c->elem, end = c->scan;

				element(c, c->in + start, end - start);
				if (c->st == ST_DEAD || c->in_len == 0)
					return;
			}
		} else {
			c->depth++;
		}
	}
	/* keep only what an unfinished element or tag needs */
	{
		size_t keep = c->depth > 1 ? c->elem : c->scan;

		if (keep > 0 && keep <= c->in_len) {
			memmove(c->in, c->in + keep, c->in_len - keep);
			c->in_len -= keep;
			c->scan -= keep;
			c->elem = c->elem >= keep ? c->elem - keep : 0;
		}
		if (c->in_len == 0 && c->in_cap > 4096) {
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
	}
}

static void on_readable(struct conn *c)
{
	char buf[READ_CHUNK];

	if (c->st == ST_CLOSING) {
		/* after our end of stream: read until the server closes, looking at nothing */
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c, NULL);
		return;
	}
	for (;;) {
		ssize_t n;

		if (c->tls_done) {
			int r = SSL_read(c->ssl, buf, sizeof(buf));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				conn_close(c, e == SSL_ERROR_ZERO_RETURN ? "the server closed TLS"
				                                         : "TLS read failed");
				return;
			}
			n = r;
		} else {
			n = recv_ts(c, buf, sizeof(buf));
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				conn_close(c, "read failed");
				return;
			}
			if (n == 0) {
				conn_close(c, c->st == ST_CLOSING ? NULL : "the server closed");
				return;
			}
		}
		if (c->in_len + (size_t)n > c->in_cap) {
			c->in_cap = c->in_len + (size_t)n + 1024;
			if (c->in_cap > IN_MAX) {
				conn_close(c, "element too large");
				return;
			}
			c->in = xrealloc(c->in, c->in_cap);
		}
		memcpy(c->in + c->in_len, buf, (size_t)n);
		c->in_len += (size_t)n;
		parse(c);
		if (c->st == ST_DEAD || c->st == ST_HANDSHAKE || c->st == ST_CLOSING)
			return;
		/* one read per wakeup (level-triggered epoll calls again), unless TLS holds bytes
		 * it already took from the socket */
		if (!c->tls_done || !SSL_has_pending(c->ssl))
			break;
	}
}

static void on_event(struct conn *c, uint32_t ev)
{
	if (c->st == ST_DEAD)
		return;
	if (c->st == ST_CONNECTING) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			connected(c);
		return;
	}
	if (c->st == ST_HANDSHAKE) {
		handshake(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(c);
	if (c->st != ST_DEAD && (ev & EPOLLOUT))
		flush(c);
}

/* --- the loop ------------------------------------------------------------------------------- */

static void expire(uint64_t now)
{
	struct conn *c, *next;

	for (c = g.logging.head; c; c = next) {
		next = c->next;
		if (now - c->t0 > LOGIN_TIMEOUT_NS)
			conn_close(c, "login timeout");
	}
	for (c = g.closing.head; c; c = next) {
		next = c->next;
		if (now - c->t_close > CLOSE_TIMEOUT_NS)
			conn_close(c, NULL);
	}
}

/* Wait for events at most timeout_ns (0: only look), handle them, write what they produced. */
static void poll_ns(uint64_t timeout_ns)
{
	struct epoll_event evs[MAX_EVENTS];
	struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000ull),
	                      .tv_nsec = (long)(timeout_ns % 1000000000ull)};
	int n = epoll_pwait2(g.epfd, evs, MAX_EVENTS, &ts, NULL);

	for (int i = 0; i < n; i++)
		on_event(evs[i].data.ptr, evs[i].events);
	flush_all();
	reap();
}

static void poll_once(int timeout_ms)
{
	poll_ns((uint64_t)timeout_ms * 1000000ull);
}

static void reset_counters(void)
{
	g.logins_ok = g.logins_failed = 0;
	g.errors_conn = g.errors_auth = g.errors_stream = g.errors_timeout = g.errors_other = 0;
	g.nlogin_us = 0;
	g.last_error[0] = '\0';
}

static void print_login_stats(const char *cmd, double secs, double cpu)
{
	qsort(g.login_us, g.nlogin_us, sizeof(*g.login_us), cmp_u32);
	printf("{\"cmd\":\"%s\",\"ok\":%lu,\"failed\":%lu,\"seconds\":%.3f,\"per_s\":%.1f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"client_cpu_s\":%.3f,\"online\":%zu,"
	       "\"errors\":{\"connect\":%lu,\"auth\":%lu,\"stream\":%lu,\"timeout\":%lu,"
	       "\"other\":%lu},\"last_error\":\"",
	       cmd, g.logins_ok, g.logins_failed, secs, secs > 0 ? g.logins_ok / secs : 0,
	       pct(g.login_us, g.nlogin_us, 0.5) / 1000.0,
	       pct(g.login_us, g.nlogin_us, 0.99) / 1000.0, cpu, g.nonline, g.errors_conn,
	       g.errors_auth, g.errors_stream, g.errors_timeout, g.errors_other);
	for (const char *p = g.last_error; *p; p++)
		if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
			putchar(*p);
	printf("\"}\n");
	fflush(stdout);
}

static void cmd_online(int first, int count, enum sec sec, enum mech mech, int conc)
{
	uint64_t t0 = now_ns(), last = t0;
	double cpu0 = cpu_s();

	reset_counters();
	g.cmd_inflight = 0;
	for (int next = first; next < first + count || g.cmd_inflight > 0;) {
		uint64_t now;

		while (next < first + count && g.cmd_inflight < conc)
			conn_start(K_ONLINE, next++, sec, mech);
		flush_all();
		poll_once(10);
		now = now_ns();
		if (now - last > 100000000ull) {
			expire(now);
			last = now;
		}
	}
	print_login_stats("online", (now_ns() - t0) / 1e9, cpu_s() - cpu0);
}

static void cmd_logins(double secs, int first, int count, enum sec sec, enum mech mech, int conc)
{
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), last = t0;
	double cpu0 = cpu_s();
	int next = 0;

	reset_counters();
	g.cmd_inflight = 0;
	while (now_ns() < end) {
		uint64_t now;

		while (g.cmd_inflight < conc) {
			conn_start(K_CHURN, first + next, sec, mech);
			next = (next + 1) % count;
		}
		flush_all();
		poll_once(5);
		now = now_ns();
		if (now - last > 100000000ull) {
			expire(now);
			last = now;
		}
	}
	/* only logins completed within the window count */
	{
		double window = (now_ns() - t0) / 1e9, cpu = cpu_s() - cpu0;
		unsigned long ok = g.logins_ok;

		print_login_stats("logins", window, cpu);
		(void)ok;
	}
	/* let the ones in flight finish or fail, and the closing ones close, before the next
	 * command */
	while (g.logging.n || g.closing.n) {
		poll_once(10);
		expire(now_ns());
	}
}

static void cmd_chat(double rate, double secs, double drain)
{
	uint64_t t0 = now_ns(), total = (uint64_t)(rate * secs), seq = 0;
	uint64_t end_drain, interval_ns = (uint64_t)(1e9 / rate);
	double cpu0 = cpu_s(), cpu_send;
	size_t n = g.nonline;
	char body_pad[26]; /* the stanza keeps the length it had before the write stamp came */

	memset(body_pad, 'x', sizeof(body_pad) - 1);
	body_pad[sizeof(body_pad) - 1] = '\0';
	g.chat_sent = g.chat_recv = g.chat_err = g.chat_late_max = 0;
	g.nlat = g.nwire = g.nbwire = 0;
	if (n < 2) {
		printf("{\"cmd\":\"chat\",\"error\":\"fewer than 2 sessions online\"}\n");
		fflush(stdout);
		return;
	}
	while (seq < total) {
		/* the wall clock for the batch wire latency, read before the batch is built; the
		 * wire latency's own clock is read at each write (stamp_writes()) */
		uint64_t now = now_ns(), due = (now - t0) / interval_ns + 1, wall = real_ns();

		if (due > total)
			due = total;
		for (; seq < due; seq++) {
			struct conn *from;
			size_t fi = seq % g.nonline, ti;
			uint64_t sched = t0 + seq * interval_ns;
			char to[64];

			if (g.nonline < 2)
				break;
			from = g.online[fi];
			ti = (fi + 1 + (size_t)rand() % (g.nonline - 1)) % g.nonline;
			snprintf(to, sizeof(to), g.user_fmt, g.online[ti]->user);
			sendf(from,
			      "<message to='%s@%s' type='chat' id='m%" PRIu64 "'><body>t=%" PRIu64
			      " w=%" PRIu64 " " WRITE_MARK " %s</body></message>",
			      to, g.domain, seq, sched, wall, body_pad);
			if (now - sched > g.chat_late_max)
				g.chat_late_max = now - sched;
			g.chat_sent++;
		}
		flush_all();
		{
			/* wait for input until the next message is due, but at least TICK_NS: sends
			 * go out in batches at most TICK_NS late rather than the client spinning */
			uint64_t next_due = t0 + seq * interval_ns, now2 = now_ns();

			poll_ns(next_due > now2 + TICK_NS ? next_due - now2 : TICK_NS);
		}
	}
	cpu_send = cpu_s() - cpu0;
	end_drain = now_ns() + (uint64_t)(drain * 1e9);
	while (g.chat_recv + g.chat_err < g.chat_sent && now_ns() < end_drain)
		poll_once(5);
	{
		double took = (now_ns() - t0) / 1e9;

		qsort(g.lat_us, g.nlat, sizeof(*g.lat_us), cmp_u32);
		qsort(g.wire_us, g.nwire, sizeof(*g.wire_us), cmp_u32);
		qsort(g.bwire_us, g.nbwire, sizeof(*g.bwire_us), cmp_u32);
		printf("{\"cmd\":\"chat\",\"rate\":%.0f,\"seconds\":%.3f,\"sent\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"sent_per_s\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,"
		       "\"p999_us\":%u,\"max_us\":%u,\"late_max_us\":%" PRIu64
		       ",\"client_cpu_s\":%.3f,\"client_cpu_send_s\":%.3f,\"took_s\":%.3f,"
		       "\"online\":%zu,\"wire_n\":%zu,\"wire_p50_us\":%u,\"wire_p90_us\":%u,"
		       "\"wire_p99_us\":%u,\"wire_max_us\":%u,\"batch_wire_n\":%zu,"
		       "\"batch_wire_p50_us\":%u,\"batch_wire_p90_us\":%u,\"batch_wire_p99_us\":%u,"
		       "\"batch_wire_max_us\":%u}\n",
		       rate, secs, g.chat_sent, g.chat_recv, g.chat_err, g.chat_sent / secs,
		       pct(g.lat_us, g.nlat, 0.5), pct(g.lat_us, g.nlat, 0.9),
		       pct(g.lat_us, g.nlat, 0.99), pct(g.lat_us, g.nlat, 0.999),
		       g.nlat ? g.lat_us[g.nlat - 1] : 0, g.chat_late_max / 1000, cpu_s() - cpu0,
		       cpu_send, took, g.nonline, g.nwire, pct(g.wire_us, g.nwire, 0.5),
		       pct(g.wire_us, g.nwire, 0.9), pct(g.wire_us, g.nwire, 0.99),
		       g.nwire ? g.wire_us[g.nwire - 1] : 0, g.nbwire,
		       pct(g.bwire_us, g.nbwire, 0.5), pct(g.bwire_us, g.nbwire, 0.9),
		       pct(g.bwire_us, g.nbwire, 0.99), g.nbwire ? g.bwire_us[g.nbwire - 1] : 0);
		fflush(stdout);
	}
	(void)n;
}

static void cmd_close(void)
{
	uint64_t t0 = now_ns(), end = t0 + 10ull * 1000000000ull;
	size_t n = g.nonline;

	while (g.nonline)
		conn_end(g.online[g.nonline - 1]);
	flush_all();
	while (g.closing.n && now_ns() < end) {
		poll_once(10);
		expire(now_ns());
	}
	printf("{\"cmd\":\"close\",\"closed\":%zu,\"seconds\":%.3f,\"still_closing\":%zu}\n", n,
	       (now_ns() - t0) / 1e9, g.closing.n);
	fflush(stdout);
}

/* Every online session asks for resumable stream management; wait for the answers, as long as
 * they keep coming (until 10 s pass without one). */
static void cmd_sm(void)
{
	uint64_t t0 = now_ns(), last = t0;
	size_t n = g.nonline;
	unsigned long seen = 0;

	g.sm_ok = g.sm_failed = 0;
	for (size_t i = 0; i < n; i++)
		SEND_LIT(g.online[i], "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
	flush_all();
	while (g.sm_ok + g.sm_failed < n && now_ns() - last < 10ull * 1000000000ull) {
		poll_once(10);
		expire(now_ns());
		if (g.sm_ok + g.sm_failed != seen) {
			seen = g.sm_ok + g.sm_failed;
			last = now_ns();
		}
	}
	printf("{\"cmd\":\"sm\",\"ok\":%lu,\"failed\":%lu,\"seconds\":%.3f}\n", g.sm_ok,
	       g.sm_failed, (now_ns() - t0) / 1e9);
	fflush(stdout);
}

/* Every online session with stream management loses its connection; remember how to resume. */
static void cmd_drop(void)
{
	size_t n = 0;

	g.ndropped = 0;
	for (size_t i = g.nonline; i-- > 0;) {
		struct conn *c = g.online[i];

		if (!c->sm)
			continue;
		if (g.ndropped == g.dropped_cap) {
			g.dropped_cap = g.dropped_cap ? 2 * g.dropped_cap : 1024;
			g.dropped = xrealloc(g.dropped, g.dropped_cap * sizeof(*g.dropped));
		}
		g.dropped[g.ndropped].user = c->user;
		g.dropped[g.ndropped].h = c->h;
		memcpy(g.dropped[g.ndropped].id, c->sm_id, sizeof(c->sm_id));
		g.ndropped++;
		conn_close(c, NULL); /* no </stream:stream>: the server sees the connection go */
		n++;
	}
	reap();
	printf("{\"cmd\":\"drop\",\"dropped\":%zu}\n", n);
	fflush(stdout);
}

/* The dropped sessions come back with <resume/>, at most conc at once. */
static void cmd_resume(enum sec sec, enum mech mech, int conc)
{
	uint64_t t0 = now_ns(), last = t0;
	double cpu0 = cpu_s();
	size_t next = 0;

	reset_counters();
	g.cmd_inflight = 0;
	while (next < g.ndropped || g.cmd_inflight > 0) {
		uint64_t now;

		while (next < g.ndropped && g.cmd_inflight < conc) {
			g.resuming = &g.dropped[next++];
			conn_start(K_RESUME, g.resuming->user, sec, mech);
		}
		flush_all();
		poll_once(10);
		now = now_ns();
		if (now - last > 100000000ull) {
			expire(now);
			last = now;
		}
	}
	g.ndropped = 0;
	print_login_stats("resume", (now_ns() - t0) / 1e9, cpu_s() - cpu0);
}

static int parse_sec(const char *s)
{
	if (strcmp(s, "plain") == 0)
		return SEC_PLAIN;
	if (strcmp(s, "starttls") == 0)
		return SEC_STARTTLS;
	if (strcmp(s, "tls") == 0)
		return SEC_TLS;
	die("unknown security %s", s);
	return 0;
}

static int parse_mech(const char *s)
{
	if (strcmp(s, "plain") == 0)
		return MECH_PLAIN;
	if (strcmp(s, "scram") == 0)
		return MECH_SCRAM;
	die("unknown mechanism %s", s);
	return 0;
}

/* --scram-cache FILE: the salted passwords of earlier runs against the same accounts, one
 * "user iterations salt hex" line each, so that only the first run pays PBKDF2 per user. */
static void scram_cache_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char salt[200], hex[2 * SHA_DIGEST_LENGTH + 1];
	int user, iter;

	if (!f)
		return;
	while (fscanf(f, "%d %d %199s %40s", &user, &iter, salt, hex) == 4) {
		struct scram_cache *sc;

		if (user < 0 || user > 10000000 || strlen(hex) != 2 * SHA_DIGEST_LENGTH)
			continue;
		if ((size_t)user >= g.nscram) {
			size_t nn = (size_t)user + 1024;

			g.scram = xrealloc(g.scram, nn * sizeof(*g.scram));
			memset(g.scram + g.nscram, 0, (nn - g.nscram) * sizeof(*g.scram));
			g.nscram = nn;
		}
		sc = &g.scram[user];
		free(sc->salt_b64);
		sc->salt_b64 = strdup(salt);
		sc->iter = iter;
		for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
			sscanf(hex + 2 * i, "%2hhx", &sc->salted[i]);
	}
	fclose(f);
}

static void scram_cache_save(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	for (size_t u = 0; u < g.nscram; u++) {
		if (!g.scram[u].salt_b64)
			continue;
		fprintf(f, "%zu %d %s ", u, g.scram[u].iter, g.scram[u].salt_b64);
		for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
			fprintf(f, "%02x", g.scram[u].salted[i]);
		fputc('\n', f);
	}
	if (fclose(f) == 0)
		rename(tmp, path);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: xmpp-load --port N [--tls-port N] [--host IP] [--domain D] [--sources K]\n"
	        "                 [--user FMT] [--password FMT] [--scram-cache FILE]\n"
	        "                 (commands on stdin: see the top of xmpp-load.c)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"host", required_argument, NULL, 'h'},
	                                     {"port", required_argument, NULL, 'p'},
	                                     {"tls-port", required_argument, NULL, 't'},
	                                     {"domain", required_argument, NULL, 'd'},
	                                     {"sources", required_argument, NULL, 's'},
	                                     {"user", required_argument, NULL, 'u'},
	                                     {"password", required_argument, NULL, 'w'},
	                                     {"scram-cache", required_argument, NULL, 'c'},
	                                     {NULL, 0, NULL, 0}};
	const char *cache = NULL;
	char line[512];
	struct rlimit rl;
	int o;

	g.host = "127.0.0.1";
	g.domain = "localhost";
	g.user_fmt = "u%d";
	g.pass_fmt = "pw%d";
	g.sources = 1;
	g.debug = getenv("XMPP_LOAD_DEBUG") && strcmp(getenv("XMPP_LOAD_DEBUG"), "1") == 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h':
			g.host = optarg;
			break;
		case 'p':
			g.port = atoi(optarg);
			break;
		case 't':
			g.tls_port = atoi(optarg);
			break;
		case 'd':
			g.domain = optarg;
			break;
		case 's':
			g.sources = atoi(optarg);
			break;
		case 'u':
			g.user_fmt = optarg;
			break;
		case 'w':
			g.pass_fmt = optarg;
			break;
		case 'c':
			cache = optarg;
			break;
		default:
			usage();
		}
	}
	if (!g.port || g.sources < 1 || g.sources > 250)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid());
	g.ctx = SSL_CTX_new(TLS_client_method());
	if (!g.ctx)
		die("SSL_CTX_new failed");
	g.bio_ts = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "socket-ts");
	if (!g.bio_ts || !BIO_meth_set_read(g.bio_ts, bio_ts_read) ||
	    !BIO_meth_set_write(g.bio_ts, bio_ts_write) ||
	    !BIO_meth_set_ctrl(g.bio_ts, bio_ts_ctrl) ||
	    !BIO_meth_set_create(g.bio_ts, bio_ts_create))
		die("BIO_meth_new failed");
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
	/* idle sessions by the ten thousand: no buffers held between records */
	SSL_CTX_set_mode(g.ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(g.ctx,
	                               SSL_SESS_CACHE_OFF); /* every login: a full handshake */
	SSL_CTX_set_read_ahead(g.ctx, 1);
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	if (cache)
		scram_cache_load(cache);
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	while (fgets(line, sizeof(line), stdin)) {
		char a[5][32];
		int n = sscanf(line, "%31s %31s %31s %31s %31s", a[0], a[1], a[2], a[3], a[4]);
		int i1, i2, i3, i4;
		double d1;
		char s1[32], s2[32];

		if (n < 1)
			continue;
		if (strcmp(a[0], "online") == 0 &&
		    sscanf(line, "online %d %d %31s %31s %d", &i1, &i2, s1, s2, &i3) == 5)
			cmd_online(i1, i2, parse_sec(s1), parse_mech(s2), i3);
		else if (strcmp(a[0], "logins") == 0 &&
		         sscanf(line, "logins %lf %d %d %31s %31s %d", &d1, &i1, &i2, s1, s2,
		                &i4) == 6)
			cmd_logins(d1, i1, i2, parse_sec(s1), parse_mech(s2), i4);
		else if (strcmp(a[0], "chat") == 0) {
			double r, s, dr;

			if (sscanf(line, "chat %lf %lf %lf", &r, &s, &dr) != 3 || r <= 0)
				die("chat RATE SECONDS DRAIN");
			cmd_chat(r, s, dr);
		} else if (strcmp(a[0], "close") == 0)
			cmd_close();
		else if (strcmp(a[0], "sm") == 0)
			cmd_sm();
		else if (strcmp(a[0], "drop") == 0)
			cmd_drop();
		else if (strcmp(a[0], "resume") == 0 &&
		         sscanf(line, "resume %31s %31s %d", s1, s2, &i3) == 3)
			cmd_resume(parse_sec(s1), parse_mech(s2), i3);
		else if (strcmp(a[0], "quit") == 0)
			break;
		else
			die("unknown command: %s", line);
		(void)i3;
	}
	if (cache)
		scram_cache_save(cache);
	return 0;
}
