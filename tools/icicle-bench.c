/* icicle-bench.c - TURN load generator: creates N allocations with REST (or static) credentials,
 * binds a channel to an echo peer on each, sends ChannelData (or Send indications) at a target
 * rate spread over the allocations and reports allocations/s, delivered packets/s, loss and RTT
 * percentiles.
 *
 * Shape: T worker threads, each owning N/T allocations (one connected UDP socket per allocation,
 * so each has its own 5-tuple) and an epoll set; one echo peer thread (unless --peer names an
 * external one) that sends every datagram back to the relayed address it came from, so a packet
 * goes client -> server -> peer -> server -> client and the client measures the round trip.
 * The main thread walks the workers through the phases (allocate, bind, data, release) with a
 * barrier, which gives exact phase timings.
 *
 * The control path (Allocate, Refresh, CreatePermission, ChannelBind) is encoded and decoded with
 * libre's STUN codec, MESSAGE-INTEGRITY included. libre 1.1.0 needs no libre_init() for the codec;
 * its mem_ objects never leave the thread that made them. The data path is hand-encoded into
 * per-worker buffers: no allocation per packet; RTT goes into a fixed log-linear histogram. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

/* libre is built with IPv6; its headers need to be told so (struct sa's in6 member). */
#define HAVE_INET6 1
#include <re/re_types.h>
#include <re/re_fmt.h>
#include <re/re_mem.h>
#include <re/re_mbuf.h>
#include <re/re_sa.h>
#include <re/re_list.h>
#include <re/re_md5.h>
#include <re/re_stun.h>

#include "cm/buf.h"
#include "cm/crypto.h"

#define PROG "icicle-bench"

#define EXIT_USAGE 2

#define MAGIC         0x49434245u /* "ICBE": marks our payloads */
#define PAYLOAD_MIN   24          /* magic, allocation index, sequence, send time */
#define PAYLOAD_MAX   1400
#define RX_BATCH      64
#define RX_BUF        2048
#define MAX_BURST     2048 /* packets sent per loop turn before looking at the receive side */
#define WINDOW        32   /* control transactions in flight per worker */
#define CHANNEL       0x4000
#define RTO_FIRST_NS  250000000ull
#define RTO_MAX_NS    1000000000ull
#define MAX_TRIES     7
#define MAX_STALE     4
#define LIFETIME      600u
#define REFRESH_EVERY 240000000000ull /* ns: below the 300 s permission lifetime */
#define NS            1000000000ull

/* RTT histogram: exact below 64 us, then 64 buckets per power of two (error < 1.6 %). */
#define H_SUB     64
#define H_OCTAVES 32
#define H_BUCKETS (H_SUB + H_SUB * H_OCTAVES)

enum phase { PH_ALLOCATE, PH_BIND, PH_DATA, PH_RELEASE, PH_QUIT };

enum astate {
	S_IDLE,
	S_ALLOC_NOAUTH, /* first Allocate, expecting 401 with realm and nonce */
	S_ALLOC_AUTH,
	S_ALLOCATED,
	S_PERM,
	S_CHAN,
	S_READY,
	S_REFRESH,
	S_RELEASE,
	S_RELEASED,
	S_FAILED,
};

struct opts {
	const char *server_str;
	struct sockaddr_storage server;
	socklen_t server_len;
	const char *peer_str; /* NULL: our own echo peer on loopback */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	const char *secret_file, *user, *password_file, *realm, *ready_file;
	char secret[512], password[512];
	unsigned allocations, threads, size;
	double rate, duration, hold, drain;
	bool indications, json, verbose;
};

struct alloc {
	int fd;
	uint32_t idx; /* global index, 0-based */
	enum astate state;
	unsigned tries, stale, reopened;
	uint64_t deadline_ns, rto_ns;
	uint8_t tid[STUN_TID_SIZE];
	uint8_t req[640];
	size_t reqlen;
	uint8_t key[16];
	char username[160];
	char pass[48]; /* REST: base64(HMAC-SHA1(secret, username)) */
	char realm[256];
	char nonce[256];
	struct sa relay;
	uint32_t lifetime;
	uint64_t seq;
	size_t tpllen; /* Send indication header (through the DATA attribute header) */
	uint8_t tpl[64];
};

struct bench;

struct worker {
	struct bench *b;
	pthread_t th;
	unsigned id;
	struct alloc *allocs; /* borrowed: a slice of bench.allocs */
	size_t n;
	int ep;
	double rate; /* packets/s this worker sends */
	uint64_t sent, delivered, send_errors, bad_payloads, other_packets;
	uint64_t rtt_max_ns;
	uint32_t hist[H_BUCKETS];
	uint8_t rx[RX_BATCH][RX_BUF];
	struct iovec iov[RX_BATCH];
	struct mmsghdr msgs[RX_BATCH];
	uint8_t tx[PAYLOAD_MAX + 128];
};

struct bench {
	struct opts o;
	struct alloc *allocs; /* owned */
	struct worker *workers;
	pthread_barrier_t start, end;
	_Atomic int phase;
	_Atomic int failed;   /* set once: the first failure's message is in err */
	_Atomic int stop;     /* SIGINT/SIGTERM: end the data phase early */
	pthread_mutex_t lock; /* guards err */
	char err[512];
	int peer_fd;
	pthread_t peer_th;
	_Atomic int peer_stop;
	_Atomic uint64_t echoed;
	struct sa peer_sa;
};

/* The one process-wide flag: set by SIGINT/SIGTERM, read by the main thread and signal_watch. */
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static void set_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first failure; later ones are consequences and are dropped. */
static void set_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&b->lock);
	if (!atomic_load(&b->failed)) {
		va_start(ap, fmt);
		vsnprintf(b->err, sizeof(b->err), fmt, ap);
		va_end(ap);
		atomic_store(&b->failed, 1);
	}
	pthread_mutex_unlock(&b->lock);
}

/* --- RTT histogram ------------------------------------------------------------------------ */

static unsigned hist_index(uint64_t us)
{
	unsigned e;

	if (us < H_SUB)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
	if (e - 6 >= H_OCTAVES)
		return H_BUCKETS - 1;
	return H_SUB + (e - 6) * H_SUB + (unsigned)((us >> (e - 6)) & (H_SUB - 1));
}

/* The middle of bucket i, in microseconds. */
static double hist_value(unsigned i)
{
	unsigned e, sub;
	double lo, width;

	if (i < H_SUB)
		return i;
	e = (i - H_SUB) / H_SUB + 6;
	sub = (i - H_SUB) % H_SUB;
	width = (double)(1ull << (e - 6));
	lo = (double)(1ull << e) + sub * width;
	return lo + width / 2;
}

static double hist_pct(const uint64_t *h, uint64_t total, double p)
{
	uint64_t want, acc = 0;

	if (total == 0)
		return 0;
	want = (uint64_t)(p * (double)total);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		acc += h[i];
		if (acc >= want)
			return hist_value(i);
	}
	return hist_value(H_BUCKETS - 1);
}

/* --- control path (libre's codec) --------------------------------------------------------- */

static const char *phase_name(enum astate s)
{
	switch (s) {
	case S_ALLOC_NOAUTH:
	case S_ALLOC_AUTH:
		return "allocate";
	case S_PERM:
		return "create-permission";
	case S_CHAN:
		return "channel-bind";
	case S_REFRESH:
		return "refresh";
	case S_RELEASE:
		return "release";
	default:
		return "request";
	}
}

static uint16_t state_method(enum astate s)
{
	switch (s) {
	case S_ALLOC_NOAUTH:
	case S_ALLOC_AUTH:
		return STUN_METHOD_ALLOCATE;
	case S_PERM:
		return STUN_METHOD_CREATEPERM;
	case S_CHAN:
		return STUN_METHOD_CHANBIND;
	default:
		return STUN_METHOD_REFRESH;
	}
}

static void fail_alloc(struct worker *w, struct alloc *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_alloc(struct worker *w, struct alloc *a, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (a->state != S_RELEASE)
		set_error(w->b, "%s %u/%u failed: %s", phase_name(a->state), a->idx + 1,
		          w->b->o.allocations, why);
	a->state = a->state == S_RELEASE ? S_RELEASED : S_FAILED;
}

/* Encode the request for a->state into a->req and send it. 0 or a negative errno. */
static int send_request(struct worker *w, struct alloc *a, bool fresh)
{
	static const uint8_t udp = 17;
	struct bench *b = w->b;
	struct mbuf *mb;
	uint16_t method = state_method(a->state), chan = CHANNEL;
	uint32_t lifetime = a->state == S_RELEASE ? 0 : LIFETIME;
	bool auth = a->state != S_ALLOC_NOAUTH;
	const struct sa *peer = NULL;
	int err;

	if (a->state == S_PERM || a->state == S_CHAN)
		peer = &b->peer_sa;
	if (fresh) {
		err = cm_crypto_random(a->tid, sizeof(a->tid));
		if (err)
			return err;
		a->tries = 0;
		a->rto_ns = RTO_FIRST_NS;
	}
	mb = mbuf_alloc(sizeof(a->req));
	if (!mb)
		return -ENOMEM;
	err = stun_msg_encode(
	    mb, method, STUN_CLASS_REQUEST, a->tid, NULL, auth ? a->key : NULL, auth ? 16 : 0, true,
	    0, 7, STUN_ATTR_REQ_TRANSPORT, method == STUN_METHOD_ALLOCATE ? &udp : NULL,
	    STUN_ATTR_LIFETIME, method == STUN_METHOD_REFRESH ? &lifetime : NULL,
	    STUN_ATTR_CHANNEL_NUMBER, a->state == S_CHAN ? &chan : NULL, STUN_ATTR_XOR_PEER_ADDR,
	    peer, STUN_ATTR_USERNAME, auth ? a->username : NULL, STUN_ATTR_REALM,
	    auth ? a->realm : NULL, STUN_ATTR_NONCE, auth ? a->nonce : NULL);
	if (err == 0 && mb->end > sizeof(a->req))
		err = EMSGSIZE;
	if (err) {
		mem_deref(mb);
		return -err;
	}
	memcpy(a->req, mb->buf, mb->end);
	a->reqlen = mb->end;
	mem_deref(mb);
	a->tries++;
	a->deadline_ns = now_ns() + a->rto_ns;
	if (send(a->fd, a->req, a->reqlen, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
		return -errno;
	return 0;
}

static void start_request(struct worker *w, struct alloc *a, enum astate s)
{
	int err;

	a->state = s;
	a->stale = 0;
	err = send_request(w, a, true);
	if (err)
		fail_alloc(w, a, "cannot send: %s", strerror(-err));
}

static void copy_text(char *dst, size_t cap, const struct stun_attr *at)
{
	snprintf(dst, cap, "%s", at && at->v.str ? at->v.str : "");
}

/* key = MD5(username ":" realm ":" password), RFC 8489 9.2.2. */
static void make_key(const struct opts *o, struct alloc *a)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "%s:%s:%s", a->username, a->realm,
	             o->secret_file ? a->pass : o->password);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	md5((const uint8_t *)buf, (size_t)n, a->key);
}

static const char *hint(const struct opts *o, uint16_t code)
{
	if (code == 401)
		return o->secret_file ? " (check the secret)" : " (check the user and password)";
	if (code == 403)
		return " (is the peer address allowed? loopback peers need an explicit allow)";
	if (code == 486)
		return " (allocation quota reached)";
	if (code == 508)
		return " (server out of relay ports)";
	return "";
}

/* The next step after a successful response. */
static void advance(struct worker *w, struct alloc *a)
{
	switch (a->state) {
	case S_ALLOC_NOAUTH:
	case S_ALLOC_AUTH:
		a->state = S_ALLOCATED;
		break;
	case S_PERM:
		if (w->b->o.indications)
			a->state = S_READY;
		else
			start_request(w, a, S_CHAN);
		break;
	case S_CHAN:
		a->state = S_READY;
		break;
	case S_REFRESH:
		start_request(w, a, S_PERM);
		break;
	case S_RELEASE:
		a->state = S_RELEASED;
		break;
	default:
		break;
	}
}

/* A new socket (so a new source port) for a, in w's epoll set. 0 or a negative errno. */
static int reopen(struct worker *w, struct alloc *a)
{
	const struct opts *o = &w->b->o;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};
	int size = 1 << 20, fd;

	fd = socket(o->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (connect(fd, (const struct sockaddr *)&o->server, o->server_len) < 0 ||
	    epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (a->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, a->fd, NULL);
		close(a->fd);
	}
	a->fd = fd;
	return 0;
}

/* A STUN message arrived on a's socket. Allocation here is fine: this is the control path. */
static void on_stun(struct worker *w, struct alloc *a, const uint8_t *p, size_t n)
{
	const struct opts *o = &w->b->o;
	struct stun_msg *msg = NULL;
	struct stun_attr *at;
	struct mbuf *mb;
	uint16_t cls, code;
	const char *reason;
	int err;

	if (a->deadline_ns == 0)
		return; /* no transaction in flight: a late retransmission's answer */
	mb = mbuf_alloc(n);
	if (!mb || mbuf_write_mem(mb, p, n) != 0) {
		mem_deref(mb);
		return;
	}
	mb->pos = 0;
	err = stun_msg_decode(&msg, mb, NULL);
	mem_deref(mb);
	if (err)
		return;
	if (memcmp(stun_msg_tid(msg), a->tid, sizeof(a->tid)) != 0 ||
	    stun_msg_method(msg) != state_method(a->state))
		goto out;
	cls = stun_msg_class(msg);
	if (cls == STUN_CLASS_SUCCESS_RESP) {
		if (a->state != S_ALLOC_NOAUTH && stun_msg_attr(msg, STUN_ATTR_MSG_INTEGRITY) &&
		    stun_msg_chk_mi(msg, a->key, sizeof(a->key)) != 0) {
			a->deadline_ns = 0;
			fail_alloc(w, a, "response failed the MESSAGE-INTEGRITY check");
			goto out;
		}
		a->deadline_ns = 0;
		if (state_method(a->state) == STUN_METHOD_ALLOCATE) {
			at = stun_msg_attr(msg, STUN_ATTR_XOR_RELAY_ADDR);
			if (at)
				a->relay = at->v.xor_relay_addr;
			at = stun_msg_attr(msg, STUN_ATTR_LIFETIME);
			a->lifetime = at ? at->v.lifetime : LIFETIME;
		}
		advance(w, a);
		goto out;
	}
	if (cls != STUN_CLASS_ERROR_RESP)
		goto out;
	at = stun_msg_attr(msg, STUN_ATTR_ERR_CODE);
	code = at ? at->v.err_code.code : 0;
	reason = at && at->v.err_code.reason ? at->v.err_code.reason : "";
	a->deadline_ns = 0;
	if (a->state == S_RELEASE) {
		a->state = S_RELEASED; /* 437 and friends: gone either way */
		goto out;
	}
	if ((code == 401 && a->state == S_ALLOC_NOAUTH) || (code == 438 && a->stale < MAX_STALE)) {
		if (!o->realm)
			copy_text(a->realm, sizeof(a->realm), stun_msg_attr(msg, STUN_ATTR_REALM));
		copy_text(a->nonce, sizeof(a->nonce), stun_msg_attr(msg, STUN_ATTR_NONCE));
		if (!a->nonce[0]) {
			fail_alloc(w, a, "%u %s without a NONCE", code, reason);
			goto out;
		}
		make_key(o, a);
		if (a->state == S_ALLOC_NOAUTH)
			a->state = S_ALLOC_AUTH;
		else
			a->stale++;
		err = send_request(w, a, true);
		if (err)
			fail_alloc(w, a, "cannot send: %s", strerror(-err));
		goto out;
	}
	if (code == 437 && state_method(a->state) == STUN_METHOD_ALLOCATE && a->reopened < 3) {
		/* An allocation left by an earlier run holds this 5-tuple: take another port. */
		a->reopened++;
		err = reopen(w, a);
		if (err)
			fail_alloc(w, a, "cannot reopen the socket: %s", strerror(-err));
		else
			start_request(w, a, S_ALLOC_NOAUTH);
		goto out;
	}
	fail_alloc(w, a, "%u %s%s%s", code, reason, hint(o, code),
	           a->tries > 1 ? " (after a retransmission)" : "");
out:
	mem_deref(msg);
}

/* Retransmit or give up on transactions whose time has come. */
static void check_timers(struct worker *w, uint64_t now)
{
	for (size_t i = 0; i < w->n; i++) {
		struct alloc *a = &w->allocs[i];
		int err;

		if (a->deadline_ns == 0 || now < a->deadline_ns)
			continue;
		if (a->tries >= MAX_TRIES) {
			a->deadline_ns = 0;
			fail_alloc(w, a, "no response from %s after %u tries", w->b->o.server_str,
			           a->tries);
			continue;
		}
		a->rto_ns = a->rto_ns * 2 > RTO_MAX_NS ? RTO_MAX_NS : a->rto_ns * 2;
		err = send_request(w, a, false);
		if (err) {
			a->deadline_ns = 0;
			fail_alloc(w, a, "cannot send: %s", strerror(-err));
		}
	}
}

/* --- data path ---------------------------------------------------------------------------- */

static void on_payload(struct worker *w, struct alloc *a, const uint8_t *p, size_t n, uint64_t now)
{
	uint64_t sent_at, rtt;

	if (n < PAYLOAD_MIN || get32(p) != MAGIC || get32(p + 4) != a->idx) {
		w->bad_payloads++;
		return;
	}
	sent_at = get64(p + 16);
	rtt = now > sent_at ? now - sent_at : 0;
	if (rtt > w->rtt_max_ns)
		w->rtt_max_ns = rtt;
	w->hist[hist_index(rtt / 1000)]++;
	w->delivered++;
}

/* A Data indication: find DATA without the codec (this is the data path). */
static void on_data_indication(struct worker *w, struct alloc *a, const uint8_t *p, size_t n,
                               uint64_t now)
{
	size_t off = 20, len = 20 + (size_t)get16(p + 2);

	if (len > n)
		len = n;
	while (off + 4 <= len) {
		uint16_t type = get16(p + off), alen = get16(p + off + 2);

		if (off + 4 + alen > len)
			break;
		if (type == STUN_ATTR_DATA) {
			on_payload(w, a, p + off + 4, alen, now);
			return;
		}
		off += 4 + (((size_t)alen + 3) & ~(size_t)3);
	}
	w->other_packets++;
}

static void on_datagram(struct worker *w, struct alloc *a, const uint8_t *p, size_t n, uint64_t now)
{
	if (n >= 4 && p[0] >= 0x40 && p[0] <= 0x7f) {
		size_t len = get16(p + 2);

		if (4 + len > n) {
			w->bad_payloads++;
			return;
		}
		on_payload(w, a, p + 4, len, now);
		return;
	}
	if (n >= 20 && (p[0] & 0xc0) == 0) {
		if (get16(p) == 0x0017) /* Data indication */
			on_data_indication(w, a, p, n, now);
		else
			on_stun(w, a, p, n);
		return;
	}
	w->other_packets++;
}

/* Drain a's socket with recvmmsg. */
static void drain(struct worker *w, struct alloc *a)
{
	for (;;) {
		int got = recvmmsg(a->fd, w->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		uint64_t now;

		if (got <= 0) {
			if (got < 0 && errno == ECONNREFUSED && a->deadline_ns != 0) {
				a->deadline_ns = 0;
				fail_alloc(w, a,
				           "connection refused by %s (is the server running?)",
				           w->b->o.server_str);
			}
			return;
		}
		now = now_ns();
		for (int i = 0; i < got; i++)
			on_datagram(w, a, w->rx[i], w->msgs[i].msg_len, now);
		if (got < RX_BATCH)
			return;
	}
}

/* Wait up to timeout_ns for readable sockets and drain them. */
static void poll_once(struct worker *w, uint64_t timeout_ns)
{
	struct epoll_event ev[64];
	struct timespec ts = {.tv_sec = (time_t)(timeout_ns / NS),
	                      .tv_nsec = (long)(timeout_ns % NS)};
	int n = epoll_pwait2(w->ep, ev, 64, &ts, NULL);

	for (int i = 0; i < n; i++)
		drain(w, ev[i].data.ptr);
}

/* One ChannelData message or Send indication for a, with sequence number and send time. */
static void send_packet(struct worker *w, struct alloc *a)
{
	const struct opts *o = &w->b->o;
	uint8_t *p, *hdr;
	size_t len, pad;
	uint64_t now = now_ns();

	if (o->indications) {
		hdr = w->tx;
		memcpy(hdr, a->tpl, a->tpllen);
		put64(hdr + 12, a->seq); /* vary the transaction ID */
		p = hdr + a->tpllen;
		pad = (4 - (o->size & 3)) & 3;
		len = a->tpllen + o->size + pad;
		memset(p + o->size, 0, pad);
	} else {
		hdr = w->tx + 64 - 4;
		put16(hdr, CHANNEL);
		put16(hdr + 2, (uint16_t)o->size);
		p = hdr + 4;
		len = 4 + o->size;
	}
	put32(p, MAGIC);
	put32(p + 4, a->idx);
	put64(p + 8, a->seq++);
	put64(p + 16, now);
	if (send(a->fd, hdr, len, 0) < 0) {
		w->send_errors++;
		return;
	}
	w->sent++;
}

/* Send indication header: STUN header, XOR-PEER-ADDRESS, DATA header; length filled in. */
static void build_template(const struct bench *b, struct alloc *a)
{
	const struct sockaddr *sa = &b->peer_sa.u.sa;
	uint8_t *p = a->tpl;
	size_t off = 20, pad = (4 - (b->o.size & 3)) & 3;

	put16(p, 0x0016);
	put32(p + 4, 0x2112A442);
	memset(p + 8, 0, 12);
	put32(p + 8, a->idx);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = &b->peer_sa.u.in;

		put16(p + off, STUN_ATTR_XOR_PEER_ADDR);
		put16(p + off + 2, 8);
		p[off + 4] = 0;
		p[off + 5] = STUN_AF_IPv4;
		put16(p + off + 6, (uint16_t)(ntohs(in->sin_port) ^ 0x2112));
		put32(p + off + 8, ntohl(in->sin_addr.s_addr) ^ 0x2112A442u);
		off += 12;
	} else {
		const struct sockaddr_in6 *in6 = &b->peer_sa.u.in6;

		put16(p + off, STUN_ATTR_XOR_PEER_ADDR);
		put16(p + off + 2, 20);
		p[off + 4] = 0;
		p[off + 5] = STUN_AF_IPv6;
		put16(p + off + 6, (uint16_t)(ntohs(in6->sin6_port) ^ 0x2112));
		/* XOR with cookie + transaction ID; the TID varies per packet, so keep it fixed for
		 * the address by XORing with the template's TID. (Only bytes 8..19 of the header.)
		 */
		for (int i = 0; i < 16; i++)
			p[off + 8 + i] = (uint8_t)(in6->sin6_addr.s6_addr[i] ^ p[4 + i]);
		off += 24;
	}
	put16(p + off, STUN_ATTR_DATA);
	put16(p + off + 2, (uint16_t)b->o.size);
	off += 4;
	put16(p + 2, (uint16_t)(off - 20 + b->o.size + pad));
	a->tpllen = off;
}

static void run_data(struct worker *w)
{
	const struct opts *o = &w->b->o;
	uint64_t start = now_ns(), end = start + (uint64_t)(o->duration * (double)NS);
	uint64_t next_refresh = start + REFRESH_EVERY, next_timers = start, deadline, now;
	double per_ns = w->rate / (double)NS;
	size_t rr = 0;

	if (w->n == 0)
		return;
	if (o->indications)
		for (size_t i = 0; i < w->n; i++)
			build_template(w->b, &w->allocs[i]);
	for (now = start; now < end && !atomic_load(&w->b->stop); now = now_ns()) {
		uint64_t due = (uint64_t)((double)(now - start) * per_ns), burst = 0, wait;

		while (w->sent + w->send_errors < due && burst++ < MAX_BURST) {
			struct alloc *a = &w->allocs[rr];

			rr = rr + 1 == w->n ? 0 : rr + 1;
			if (a->state == S_READY || a->state == S_REFRESH || a->state == S_PERM ||
			    a->state == S_CHAN)
				send_packet(w, a);
			else
				w->send_errors++;
		}
		if (w->sent + w->send_errors < due || per_ns <= 0) {
			wait = per_ns <= 0 ? 1000000 : 0;
		} else {
			/* Until the next packet is due, at most 1 ms. */
			double next =
			    (double)(w->sent + w->send_errors + 1) / per_ns - (double)(now - start);

			wait = next <= 0 ? 0 : next >= 1e6 ? 1000000 : (uint64_t)next;
		}
		poll_once(w, wait);
		if (now >= next_refresh) {
			/* Long runs: keep allocation, permission and channel alive. */
			next_refresh = now + REFRESH_EVERY;
			for (size_t i = 0; i < w->n; i++)
				if (w->allocs[i].state == S_READY)
					start_request(w, &w->allocs[i], S_REFRESH);
		}
		if (now >= next_timers) {
			/* Retransmissions of refreshes: a scan every 10 ms is plenty. */
			next_timers = now + 10000000;
			check_timers(w, now);
		}
	}
	/* Let what is in flight come back. */
	deadline = now_ns() + (uint64_t)(o->drain * (double)NS);
	while ((now = now_ns()) < deadline && w->delivered < w->sent)
		poll_once(w, 10000000);
}

/* Drive every allocation of w from its current state to a terminal one for this phase. */
static void run_control(struct worker *w, enum phase ph)
{
	size_t next = 0, active = 0;

	for (;;) {
		uint64_t now = now_ns(), wait = 50000000;

		active = 0;
		for (size_t i = 0; i < next; i++) {
			enum astate s = w->allocs[i].state;

			if (s != S_ALLOCATED && s != S_READY && s != S_RELEASED && s != S_FAILED &&
			    s != S_IDLE)
				active++;
		}
		while (active < WINDOW && next < w->n &&
		       (ph == PH_RELEASE || !atomic_load(&w->b->failed))) {
			struct alloc *a = &w->allocs[next++];

			if (ph == PH_ALLOCATE) {
				start_request(w, a, S_ALLOC_NOAUTH);
			} else if (ph == PH_BIND) {
				if (a->state != S_ALLOCATED)
					continue;
				start_request(w, a, S_PERM);
			} else {
				if (a->state == S_IDLE || a->state == S_RELEASED ||
				    (a->state == S_FAILED && a->relay.len == 0))
					continue;
				start_request(w, a, S_RELEASE);
			}
			active++;
		}
		if (active == 0 &&
		    (next == w->n || (ph != PH_RELEASE && atomic_load(&w->b->failed))))
			break;
		if (ph != PH_RELEASE && atomic_load(&w->b->failed))
			break;
		for (size_t i = 0; i < next; i++) {
			uint64_t d = w->allocs[i].deadline_ns;

			if (d && d > now && d - now < wait)
				wait = d - now;
		}
		poll_once(w, wait);
		check_timers(w, now_ns());
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	for (;;) {
		int ph;

		pthread_barrier_wait(&b->start);
		ph = atomic_load(&b->phase);
		if (ph == PH_QUIT) {
			pthread_barrier_wait(&b->end);
			break;
		}
		if (ph == PH_DATA)
			run_data(w);
		else
			run_control(w, (enum phase)ph);
		pthread_barrier_wait(&b->end);
	}
	return NULL;
}

/* --- echo peer ---------------------------------------------------------------------------- */

static void *peer_main(void *arg)
{
	struct bench *b = arg;
	uint8_t(*bufs)[RX_BUF] = malloc(RX_BATCH * sizeof(*bufs)); /* owned */
	struct sockaddr_storage from[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct mmsghdr msgs[RX_BATCH];

	if (!bufs) {
		set_error(b, "echo peer: out of memory");
		return NULL;
	}
	while (!atomic_load(&b->peer_stop)) {
		int got, done = 0;

		for (int i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = RX_BUF;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		got = recvmmsg(b->peer_fd, msgs, RX_BATCH, MSG_WAITFORONE, NULL);
		if (got <= 0)
			continue; /* SO_RCVTIMEO: look at peer_stop again */
		for (int i = 0; i < got; i++)
			iov[i].iov_len = msgs[i].msg_len;
		while (done < got) {
			int s = sendmmsg(b->peer_fd, msgs + done, (unsigned)(got - done), 0);

			if (s <= 0)
				break; /* a full buffer drops the rest: that is loss, and it is
				          counted */
			done += s;
		}
		atomic_fetch_add(&b->echoed, (uint64_t)done);
	}
	free(bufs);
	return NULL;
}

static int start_peer(struct bench *b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	int size = 4 << 20, err;

	memset(&ss, 0, sizeof(ss));
	if (b->o.server.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	}
	b->peer_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (b->peer_fd < 0)
		return -errno;
	if (setsockopt(b->peer_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(b->peer_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(b->peer_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(b->peer_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(b->peer_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(b->peer_fd, (struct sockaddr *)&ss, len) < 0 ||
	    getsockname(b->peer_fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	memcpy(&b->o.peer, &ss, len);
	b->o.peer_len = len;
	err = pthread_create(&b->peer_th, NULL, peer_main, b);
	return -err;
}

/* --- setup, options, report --------------------------------------------------------------- */

static int parse_hostport(const char *s, struct sockaddr_storage *out, socklen_t *outlen)
{
	char host[256];
	const char *port;
	struct addrinfo hints, *res = NULL;
	size_t hl;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (!*port || getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -EINVAL;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*outlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The first line of a file, without trailing white space. */
static int read_first_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	if (!fgets(out, (int)cap, f)) {
		fclose(f);
		return -ENODATA;
	}
	fclose(f);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
	                 out[n - 1] == '\t'))
		out[--n] = '\0';
	return n ? 0 : -ENODATA;
}

static int open_alloc(struct bench *b, struct worker *w, struct alloc *a, long expiry)
{
	const struct opts *o = &b->o;
	int err = reopen(w, a);

	if (err)
		return err;
	if (o->secret_file) {
		unsigned char mac[CM_SHA1_LEN];
		struct cm_buf out;

		snprintf(a->username, sizeof(a->username), "%ld:bench%u", expiry, a->idx);
		err = cm_crypto_hmac_sha1(o->secret, strlen(o->secret), a->username,
		                          strlen(a->username), mac);
		if (err)
			return err;
		cm_buf_init(&out, sizeof(a->pass) - 1);
		err = cm_crypto_b64_encode(&out, mac, sizeof(mac), CM_B64_STD);
		if (err == 0)
			snprintf(a->pass, sizeof(a->pass), "%s", out.data);
		cm_buf_free(&out);
		if (err)
			return err;
	} else {
		snprintf(a->username, sizeof(a->username), "%s", o->user);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: " PROG " --server HOST:PORT (--secret-file F | --user U --password-file F)\n"
	    "                    [options]\n"
	    "TURN load generator: creates allocations, binds a channel on each to an echo peer,\n"
	    "sends ChannelData at a target rate and reports allocations/s, delivered packets/s,\n"
	    "loss and round-trip times (client -> server -> peer -> server -> client).\n\n"
	    "  --server HOST:PORT     the TURN server (UDP)\n"
	    "  --secret-file F        TURN REST shared secret (first line of F); usernames are\n"
	    "                         EXPIRY:benchN, passwords base64(HMAC-SHA1(secret, user))\n"
	    "  --user U               static long-term user (with --password-file)\n"
	    "  --password-file F      its password (first line of F)\n"
	    "  --realm R              realm for the key (default: the one from the 401)\n"
	    "  --allocations N        allocations to create (default 10)\n"
	    "  --rate PPS             total packets/s sent, spread over allocations (default "
	    "1000;\n"
	    "                         0: create allocations only)\n"
	    "  --size BYTES           payload bytes per packet, %d..%d (default 160)\n"
	    "  --duration S           seconds of sending (default 5)\n"
	    "  --drain S              seconds to wait for packets in flight (default 1)\n"
	    "  --hold S               keep the allocations idle S seconds before sending\n"
	    "  --ready-file F         create F once every allocation is set up\n"
	    "  --threads T            worker threads (default 1)\n"
	    "  --peer HOST:PORT       an external echo peer (default: our own on loopback)\n"
	    "  --channels             ChannelData (default)\n"
	    "  --send-indications     Send/Data indications instead of channels\n"
	    "  --json                 one JSON object on stdout\n"
	    "  -v, --verbose          progress on stderr\n"
	    "  -h, --help             this text\n\n"
	    "Exit status: 0 the run completed (whatever the loss), 1 a setup or runtime failure,\n"
	    "2 bad usage.\n",
	    PAYLOAD_MIN, PAYLOAD_MAX);
}

static int parse_uint(const char *name, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi || s[0] == '-') {
		fprintf(stderr, PROG ": --%s: expected an integer in %u..%u, got '%s'\n", name, lo,
		        hi, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_double(const char *name, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, PROG ": --%s: expected a number in %g..%g, got '%s'\n", name, lo,
		        hi, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_SERVER = 256,
		O_SECRET,
		O_USER,
		O_PWFILE,
		O_REALM,
		O_ALLOCS,
		O_RATE,
		O_SIZE,
		O_DUR,
		O_THREADS,
		O_PEER,
		O_CHANNELS,
		O_IND,
		O_JSON,
		O_DRAIN,
		O_HOLD,
		O_READY,
	};
	static const struct option lo[] = {
	    {"server", required_argument, NULL, O_SERVER},
	    {"secret-file", required_argument, NULL, O_SECRET},
	    {"user", required_argument, NULL, O_USER},
	    {"password-file", required_argument, NULL, O_PWFILE},
	    {"realm", required_argument, NULL, O_REALM},
	    {"allocations", required_argument, NULL, O_ALLOCS},
	    {"rate", required_argument, NULL, O_RATE},
	    {"size", required_argument, NULL, O_SIZE},
	    {"duration", required_argument, NULL, O_DUR},
	    {"drain", required_argument, NULL, O_DRAIN},
	    {"hold", required_argument, NULL, O_HOLD},
	    {"ready-file", required_argument, NULL, O_READY},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"peer", required_argument, NULL, O_PEER},
	    {"channels", no_argument, NULL, O_CHANNELS},
	    {"send-indications", no_argument, NULL, O_IND},
	    {"json", no_argument, NULL, O_JSON},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, err = 0;

	o->allocations = 10;
	o->threads = 1;
	o->size = 160;
	o->rate = 1000;
	o->duration = 5;
	o->drain = 1;
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			o->server_str = optarg;
			break;
		case O_SECRET:
			o->secret_file = optarg;
			break;
		case O_USER:
			o->user = optarg;
			break;
		case O_PWFILE:
			o->password_file = optarg;
			break;
		case O_REALM:
			o->realm = optarg;
			break;
		case O_ALLOCS:
			err = parse_uint("allocations", optarg, 1, 1000000, &o->allocations);
			break;
		case O_RATE:
			err = parse_double("rate", optarg, 0, 1e8, &o->rate);
			break;
		case O_SIZE:
			err = parse_uint("size", optarg, PAYLOAD_MIN, PAYLOAD_MAX, &o->size);
			break;
		case O_DUR:
			err = parse_double("duration", optarg, 0, 86400, &o->duration);
			break;
		case O_DRAIN:
			err = parse_double("drain", optarg, 0, 60, &o->drain);
			break;
		case O_HOLD:
			err = parse_double("hold", optarg, 0, 86400, &o->hold);
			break;
		case O_READY:
			o->ready_file = optarg;
			break;
		case O_THREADS:
			err = parse_uint("threads", optarg, 1, 256, &o->threads);
			break;
		case O_PEER:
			o->peer_str = optarg;
			break;
		case O_CHANNELS:
			o->indications = false;
			break;
		case O_IND:
			o->indications = true;
			break;
		case O_JSON:
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->server_str) {
		fprintf(stderr, PROG ": --server HOST:PORT is required\n");
		return -EINVAL;
	}
	if (parse_hostport(o->server_str, &o->server, &o->server_len) != 0) {
		fprintf(stderr, PROG ": --server: expected HOST:PORT, got '%s'\n", o->server_str);
		return -EINVAL;
	}
	if (o->peer_str && parse_hostport(o->peer_str, &o->peer, &o->peer_len) != 0) {
		fprintf(stderr, PROG ": --peer: expected HOST:PORT, got '%s'\n", o->peer_str);
		return -EINVAL;
	}
	if (!!o->secret_file == !!o->user) {
		fprintf(stderr,
		        PROG ": give either --secret-file or --user with --password-file\n");
		return -EINVAL;
	}
	if (o->user && !o->password_file) {
		fprintf(stderr, PROG ": --user needs --password-file\n");
		return -EINVAL;
	}
	if (o->threads > o->allocations)
		o->threads = o->allocations;
	return 0;
}

static void report(struct bench *b, double alloc_s, double data_s, double cpu_s, unsigned ready)
{
	const struct opts *o = &b->o;
	uint64_t sent = 0, delivered = 0, send_errors = 0, bad = 0, rtt_max = 0;
	uint64_t hist[H_BUCKETS] = {0};
	double loss, p50, p90, p99, aps;

	for (unsigned t = 0; t < o->threads; t++) {
		const struct worker *w = &b->workers[t];

		sent += w->sent;
		delivered += w->delivered;
		send_errors += w->send_errors;
		bad += w->bad_payloads;
		if (w->rtt_max_ns > rtt_max)
			rtt_max = w->rtt_max_ns;
		for (unsigned i = 0; i < H_BUCKETS; i++)
			hist[i] += w->hist[i];
	}
	loss = sent ? 100.0 * (double)(sent > delivered ? sent - delivered : 0) / (double)sent : 0;
	p50 = hist_pct(hist, delivered, 0.50);
	p90 = hist_pct(hist, delivered, 0.90);
	p99 = hist_pct(hist, delivered, 0.99);
	aps = alloc_s > 0 ? o->allocations / alloc_s : 0;
	if (o->json) {
		printf("{\"server\":\"%s\",\"mode\":\"%s\",\"allocations\":%u,\"ready\":%u,"
		       "\"threads\":%u,\"size\":%u,\"target_pps\":%.0f,\"duration_s\":%.3f,"
		       "\"allocate_s\":%.4f,\"allocations_per_s\":%.1f,\"sent\":%" PRIu64
		       ",\"delivered\":%" PRIu64 ",\"send_errors\":%" PRIu64
		       ",\"bad_payloads\":%" PRIu64
		       ",\"loss_pct\":%.4f,\"sent_pps\":%.1f,\"delivered_pps\":%.1f,"
		       "\"rtt_us\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
		       "\"client_cpu_s\":%.3f}\n",
		       o->server_str, o->indications ? "send-indications" : "channels",
		       o->allocations, ready, o->threads, o->size, o->rate, data_s, alloc_s, aps,
		       sent, delivered, send_errors, bad, loss,
		       data_s > 0 ? (double)sent / data_s : 0,
		       data_s > 0 ? (double)delivered / data_s : 0, p50, p90, p99,
		       (double)rtt_max / 1000.0, cpu_s);
		return;
	}
	printf("server          %s (%s, %u thread%s, %u-byte payloads)\n", o->server_str,
	       o->indications ? "send indications" : "channels", o->threads,
	       o->threads == 1 ? "" : "s", o->size);
	printf("allocations     %u in %.3f s: %.1f allocations/s\n", o->allocations, alloc_s, aps);
	printf("target rate     %.0f packets/s for %.1f s\n", o->rate, data_s);
	printf("sent            %" PRIu64 " (%.1f packets/s)%s\n", sent,
	       data_s > 0 ? (double)sent / data_s : 0,
	       send_errors ? " (some sends failed locally)" : "");
	if (send_errors)
		printf("send errors     %" PRIu64 "\n", send_errors);
	printf("delivered       %" PRIu64 " (%.1f packets/s)\n", delivered,
	       data_s > 0 ? (double)delivered / data_s : 0);
	printf("loss            %.4f %%\n", loss);
	printf("rtt             p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n", p50, p90,
	       p99, (double)rtt_max / 1000.0);
	printf("client cpu      %.2f s during the data phase\n", cpu_s);
	if (bad)
		printf("bad payloads    %" PRIu64 "\n", bad);
}

/* CPU seconds (user + system) of this process so far, every thread included. */
static double process_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Run one phase on every worker; returns its wall time in seconds. */
static double run_phase(struct bench *b, enum phase ph)
{
	uint64_t t0, t1;

	atomic_store(&b->phase, (int)ph);
	pthread_barrier_wait(&b->start);
	t0 = now_ns();
	pthread_barrier_wait(&b->end);
	t1 = now_ns();
	return (double)(t1 - t0) / (double)NS;
}

static unsigned count_state(const struct bench *b, enum astate s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->o.allocations; i++)
		n += b->allocs[i].state == s;
	return n;
}

static void sleep_s(struct bench *b, double s)
{
	uint64_t end = now_ns() + (uint64_t)(s * (double)NS);

	while (now_ns() < end && !got_signal) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50000000};

		nanosleep(&ts, NULL);
	}
	(void)b;
}

/* The workers watch b->stop during the data phase; a signal sets it from here. */
static void *signal_watch(void *arg)
{
	struct bench *b = arg;

	while (!atomic_load(&b->peer_stop)) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50000000};

		if (got_signal)
			atomic_store(&b->stop, 1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench bench = {0};
	struct bench *b = &bench;
	struct opts *o = &b->o;
	struct sigaction sa;
	pthread_t watch;
	double alloc_s = 0, data_s = 0, cpu_s = 0;
	unsigned ready = 0, started = 0;
	long expiry;
	int rc = 1, err;

	if (parse_opts(argc, argv, o) != 0)
		return EXIT_USAGE;
	if (o->secret_file) {
		err = read_first_line(o->secret_file, o->secret, sizeof(o->secret));
		if (err) {
			fprintf(stderr, PROG ": --secret-file %s: %s\n", o->secret_file,
			        err == -ENODATA ? "empty" : strerror(-err));
			return EXIT_USAGE;
		}
	} else {
		err = read_first_line(o->password_file, o->password, sizeof(o->password));
		if (err) {
			fprintf(stderr, PROG ": --password-file %s: %s\n", o->password_file,
			        err == -ENODATA ? "empty" : strerror(-err));
			return EXIT_USAGE;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&b->lock, NULL);
	b->peer_fd = -1;

	if (!o->peer_str) {
		err = start_peer(b);
		if (err) {
			fprintf(stderr, PROG ": cannot start the echo peer: %s\n", strerror(-err));
			return 1;
		}
	}
	sa_set_sa(&b->peer_sa, (const struct sockaddr *)&o->peer);
	pthread_create(&watch, NULL, signal_watch, b);

	b->allocs = calloc(o->allocations, sizeof(*b->allocs));
	b->workers = calloc(o->threads, sizeof(*b->workers));
	if (!b->allocs || !b->workers) {
		fprintf(stderr, PROG ": out of memory for %u allocations\n", o->allocations);
		goto out;
	}
	expiry = (long)time(NULL) + 86400;
	for (unsigned i = 0; i < o->allocations; i++) {
		b->allocs[i].fd = -1;
		b->allocs[i].idx = i;
	}
	pthread_barrier_init(&b->start, NULL, o->threads + 1);
	pthread_barrier_init(&b->end, NULL, o->threads + 1);
	for (unsigned t = 0, first = 0; t < o->threads; t++) {
		struct worker *w = &b->workers[t];
		unsigned n = o->allocations / o->threads + (t < o->allocations % o->threads);

		w->b = b;
		w->id = t;
		w->allocs = b->allocs + first;
		w->n = n;
		w->rate = o->rate / o->threads;
		first += n;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->ep < 0) {
			fprintf(stderr, PROG ": epoll: %s\n", strerror(errno));
			goto out;
		}
		for (unsigned i = 0; i < RX_BATCH; i++) {
			w->iov[i].iov_base = w->rx[i];
			w->iov[i].iov_len = RX_BUF;
			w->msgs[i].msg_hdr.msg_iov = &w->iov[i];
			w->msgs[i].msg_hdr.msg_iovlen = 1;
		}
		for (size_t i = 0; i < n; i++) {
			err = open_alloc(b, w, &w->allocs[i], expiry);
			if (err) {
				fprintf(stderr, PROG ": socket %u/%u: %s%s\n", w->allocs[i].idx + 1,
				        o->allocations, strerror(-err),
				        err == -EMFILE ? " (raise ulimit -n)" : "");
				goto out;
			}
		}
	}
	for (unsigned t = 0; t < o->threads; t++) {
		if (pthread_create(&b->workers[t].th, NULL, worker_main, &b->workers[t]) != 0) {
			fprintf(stderr, PROG ": cannot start thread %u\n", t);
			goto out;
		}
		started++;
	}

	alloc_s = run_phase(b, PH_ALLOCATE);
	if (o->verbose)
		fprintf(stderr, PROG ": %u allocations in %.3f s\n", count_state(b, S_ALLOCATED),
		        alloc_s);
	if (!atomic_load(&b->failed) && !got_signal) {
		run_phase(b, PH_BIND);
		ready = count_state(b, S_READY);
		if (o->verbose)
			fprintf(stderr, PROG ": %u allocations ready\n", ready);
	}
	if (!atomic_load(&b->failed) && !got_signal) {
		if (o->ready_file) {
			FILE *f = fopen(o->ready_file, "w");

			if (f) {
				fprintf(f, "%u\n", ready);
				fclose(f);
			}
		}
		if (o->hold > 0)
			sleep_s(b, o->hold);
		if (o->rate > 0 && o->duration > 0 && !got_signal) {
			uint64_t t0 = now_ns();
			double c0 = process_cpu();

			run_phase(b, PH_DATA);
			cpu_s = process_cpu() - c0;
			/* The sending part of the phase: the drain is not sending time. */
			data_s = (double)(now_ns() - t0) / (double)NS;
			data_s = o->duration < data_s ? o->duration : data_s;
		}
	}
	run_phase(b, PH_RELEASE);
	if (o->verbose)
		fprintf(stderr, PROG ": %u allocations released\n", count_state(b, S_RELEASED));
	if (atomic_load(&b->failed)) {
		fprintf(stderr, PROG ": %s\n", b->err);
		goto out;
	}
	report(b, alloc_s, data_s, cpu_s, ready);
	rc = got_signal ? 1 : 0;
out:
	if (started == o->threads && started > 0)
		run_phase(b, PH_QUIT);
	else
		atomic_store(&b->phase, PH_QUIT); /* threads never started: nothing to join */
	for (unsigned t = 0; t < started && started == o->threads; t++)
		pthread_join(b->workers[t].th, NULL);
	atomic_store(&b->peer_stop, 1);
	if (b->peer_fd >= 0) {
		pthread_join(b->peer_th, NULL);
		close(b->peer_fd);
	}
	pthread_join(watch, NULL);
	if (b->allocs)
		for (unsigned i = 0; i < o->allocations; i++)
			if (b->allocs[i].fd >= 0)
				close(b->allocs[i].fd);
	if (b->workers)
		for (unsigned t = 0; t < o->threads; t++)
			if (b->workers[t].ep > 0)
				close(b->workers[t].ep);
	free(b->allocs);
	free(b->workers);
	return rc;
}
