/* apns-mock.c - a fast mock of the APNs provider API for benchmarks (not the strict mock).
 *
 * HTTP/2 over TLS (ALPN h2) on libuv, one loop per thread, every thread listening on the same
 * port with SO_REUSEPORT. It checks what is cheap and what a client must get right: POST,
 * /3/device/<64 hex>, apns-topic and apns-push-type present, payload size (4096, voip 5120),
 * and the ES256 provider token (kid, iss, iat, signature), verified once per distinct token
 * string and then cached per thread. Everything else (topics, token update window, priorities,
 * JSON shape) is the strict Python mock's job: tests/mock/apns_mock.py.
 *
 * Like Apple, a connection allows one stream until its first 200 with a valid token, then
 * --max-streams. --latency-ms delays every answer (one timer per connection: answers leave in
 * arrival order). SIGTERM/SIGINT: prints the counters on stdout and exits 0.
 *
 * --arrivals FILE appends one line per complete request, when its last frame is read (before
 * any --latency-ms delay): "<wall clock in microseconds> <device token or -> <status>", the
 * status being the answer the request will get. The push benchmark (bench/push) correlates it
 * with what it sent; nothing else is checked differently.
 *
 *   apns-mock [--host 127.0.0.1] [--port 2197] [--threads 2] [--latency-ms 0]
 *             [--cert F] [--key F] [--public-key F] [--key-id ABC123DEFG] [--team-id DEF123GHIJ]
 *             [--max-streams 1000] [--initial-streams 1] [--token-max-age 3600]
 *             [--arrivals FILE] [--verbose]
 *
 * The first line on stdout is "listening HOST:PORT" once every thread accepts connections.
 */
#include "cm/buf.h"
#include "cm/jwt.h"
#include "cm/list.h"
#include "cm/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_THREADS    64
#define TOKEN_CACHE    16
#define IO_BUF         (64 * 1024)
#define WRITE_HIGH     (4 * 1024 * 1024) /* stop reading a client that does not read */
#define STREAM_WINDOW  (1 << 20)
#define SESSION_WINDOW (64 << 20)

/* Read-only after start-up; shared by every thread. */
struct config {
	const char *host;
	int port;
	int threads;
	uint64_t latency_ms;
	const char *cert, *key, *pubkey;
	const char *key_id, *team_id;
	uint32_t max_streams, initial_streams;
	long token_max_age, clock_skew;
	int verbose;
	const char *arrivals_path;
	FILE *arrivals;             /* owned by main; NULL without --arrivals; stdio locks it */
	struct cm_tls *tls;         /* owned by main */
	struct cm_jwt_key *jwt_key; /* owned by main */
};

enum auth_state { AUTH_MISSING, AUTH_VALID, AUTH_INVALID, AUTH_EXPIRED };

struct token_entry {
	char *tok; /* owned; NULL = free slot */
	size_t len;
	int valid; /* signature, kid, iss and iat form checked */
	long iat;
	uint64_t used; /* for replacement: least recently used goes */
};

struct counters {
	uint64_t requests, ok, client_err, connections, refused;
	uint64_t arrivals_lost; /* --arrivals lines that could not be written */
};

/* One per thread. Only that thread touches it until it has been joined. */
struct worker {
	const struct config *cfg;
	int index;
	int fd; /* the listening socket, made by main */
	pthread_t thread;
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_async_t stop;
	int inited; /* the loop exists */
	int stopping;
	struct counters n;
	struct token_entry cache[TOKEN_CACHE];
	uint64_t cache_clock;
	uint64_t id_counter;
	char rbuf[IO_BUF];  /* ciphertext read from a socket */
	char plain[IO_BUF]; /* plaintext out of TLS */
	char out[IO_BUF];   /* ciphertext to write */
};

struct delayed {
	int32_t stream_id;
	uint64_t due; /* uv_now() ms */
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer; /* --latency-ms only */
	struct worker *w;
	struct cm_tls_conn *tls;
	nghttp2_session *h2;
	int handles; /* open libuv handles; the conn is freed when the last one has closed */
	int closing;
	int reading;
	int authenticated; /* the streams limit has been raised */
	struct cm_list
	    streams;       /* owned: freed on close, or with the session (which does not tell) */
	struct delayed *q; /* ring of delayed answers */
	size_t q_cap, q_head, q_len;
};

struct stream {
	struct cm_list link; /* in the connection's open streams */
	int32_t id;
	unsigned method_post : 1, has_path : 1, has_topic : 1, push_type_ok : 1, voip : 1,
	    answered : 1;
	int path_err; /* 0, 404 BadPath, 400 MissingDeviceToken/BadDeviceToken */
	enum auth_state auth;
	size_t body_len;
	size_t body_off;
	char body[64];
	char apns_id[40];
	char device[65]; /* the path's token once it is well formed, else empty */
};

/* --- provider tokens ----------------------------------------------------------------------- */

static const char *json_str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Full check of a token never seen before: signature (cm_jwt_verify), kid, iss, integer iat. */
static int token_check(const struct config *cfg, const char *tok, size_t len, long *iat)
{
	struct cm_buf hb, cb;
	json_t *h = NULL, *c = NULL;
	const char *s;
	int ok = 0;

	cm_buf_init(&hb, 0);
	cm_buf_init(&cb, 0);
	if (cm_jwt_verify(cfg->jwt_key, tok, len, &hb, &cb) != 0)
		goto out;
	h = json_loadb(hb.data, hb.len, 0, NULL);
	c = json_loadb(cb.data, cb.len, 0, NULL);
	if (!h || !c)
		goto out;
	s = json_str(h, "kid");
	if (!s || strcmp(s, cfg->key_id) != 0)
		goto out;
	s = json_str(c, "iss");
	if (!s || strcmp(s, cfg->team_id) != 0)
		goto out;
	if (!json_is_integer(json_object_get(c, "iat")))
		goto out;
	*iat = (long)json_integer_value(json_object_get(c, "iat"));
	ok = 1;
out:
	json_decref(h);
	json_decref(c);
	cm_buf_free(&hb);
	cm_buf_free(&cb);
	return ok;
}

/* The state of an "authorization" header value, from the thread's cache when it can. */
static enum auth_state token_auth(struct worker *w, const uint8_t *value, size_t vlen)
{
	const struct config *cfg = w->cfg;
	struct token_entry *e = NULL, *victim = &w->cache[0];
	const char *tok;
	size_t len;
	long now;

	if (vlen < 7 || strncasecmp((const char *)value, "bearer ", 7) != 0)
		return AUTH_INVALID;
	tok = (const char *)value + 7;
	len = vlen - 7;
	for (int i = 0; i < TOKEN_CACHE; i++) {
		struct token_entry *t = &w->cache[i];

		if (t->tok && t->len == len && memcmp(t->tok, tok, len) == 0) {
			e = t;
			break;
		}
		if (!t->tok || t->used < victim->used)
			victim = t;
	}
	if (!e) {
		char *copy = malloc(len + 1);

		if (!copy)
			return AUTH_INVALID;
		memcpy(copy, tok, len);
		copy[len] = '\0';
		free(victim->tok);
		e = victim;
		e->tok = copy;
		e->len = len;
		e->iat = 0;
		e->valid = token_check(cfg, copy, len, &e->iat);
	}
	e->used = ++w->cache_clock;
	if (!e->valid)
		return AUTH_INVALID;
	now = (long)time(NULL);
	if (e->iat > now + cfg->clock_skew)
		return AUTH_INVALID;
	if (now - e->iat > cfg->token_max_age)
		return AUTH_EXPIRED;
	return AUTH_VALID;
}

/* --- requests -------------------------------------------------------------------------------- */

static int is_hex(uint8_t ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int is_uuid(const uint8_t *v, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? v[i] != '-' : !is_hex(v[i]))
			return 0;
	}
	return 1;
}

static void check_path(struct stream *s, const uint8_t *v, size_t n)
{
	static const char prefix[] = "/3/device/";
	const size_t plen = sizeof(prefix) - 1;

	s->has_path = 1;
	if (n < plen || memcmp(v, prefix, plen) != 0) {
		s->path_err = 404;
		return;
	}
	v += plen;
	n -= plen;
	if (n == 0) {
		s->path_err = 400;
		return;
	}
	if (n != 64) {
		s->path_err = 401; /* BadDeviceToken */
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_hex(v[i])) {
			s->path_err = 401;
			return;
		}
	memcpy(s->device, v, n);
	s->device[n] = '\0';
}

static int is_push_type(const uint8_t *v, size_t n, int *voip)
{
	static const char *const types[] = {"alert",        "background",   "voip",
	                                    "complication", "fileprovider", "mdm",
	                                    "liveactivity", "pushtotalk",   "location"};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == n && memcmp(types[i], v, n) == 0) {
			*voip = i == 2;
			return 1;
		}
	return 0;
}

/* The answer to a complete request, in the strict mock's order of checks. */
static int decide(struct stream *s, const char **reason)
{
	size_t limit = s->voip ? 5120 : 4096;

	*reason = NULL;
	if (!s->method_post) {
		*reason = "MethodNotAllowed";
		return 405;
	}
	if (!s->has_path || s->path_err == 404) {
		*reason = "BadPath";
		return 404;
	}
	if (s->path_err) {
		*reason = s->path_err == 400 ? "MissingDeviceToken" : "BadDeviceToken";
		return 400;
	}
	switch (s->auth) {
	case AUTH_MISSING:
		*reason = "MissingProviderToken";
		return 403;
	case AUTH_INVALID:
		*reason = "InvalidProviderToken";
		return 403;
	case AUTH_EXPIRED:
		*reason = "ExpiredProviderToken";
		return 403;
	case AUTH_VALID:
		break;
	}
	if (!s->has_topic) {
		*reason = "MissingTopic";
		return 400;
	}
	if (!s->push_type_ok) {
		*reason = "InvalidPushType";
		return 400;
	}
	if (s->body_len == 0) {
		*reason = "PayloadEmpty";
		return 400;
	}
	if (s->body_len > limit) {
		*reason = "PayloadTooLarge";
		return 413;
	}
	return 200;
}

static ssize_t body_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user)
{
	struct stream *s = source->ptr;
	size_t left = strlen(s->body) - s->body_off;
	size_t n = left < length ? left : length;

	(void)h2;
	(void)stream_id;
	(void)user;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == strlen(s->body))
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(n, v, vl)                                                                               \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME  \
	}

static void answer(struct conn *c, struct stream *s)
{
	struct worker *w = c->w;
	const char *reason;
	int status = decide(s, &reason);
	char st[4];

	snprintf(st, sizeof(st), "%d", status);
	if (!s->apns_id[0]) {
		uint64_t id = ++w->id_counter;

		snprintf(s->apns_id, sizeof(s->apns_id), "%08X-%04X-4%03X-8%03X-%012llX",
		         (unsigned)(id >> 32), (unsigned)(id >> 16) & 0xffff,
		         (unsigned)w->index & 0xfff, (unsigned)(id >> 48) & 0xfff,
		         (unsigned long long)(id & 0xffffffffffffULL));
	}
	w->n.requests++;
	s->answered = 1;
	if (status == 200) {
		nghttp2_nv hdrs[] = {NV(":status", st, 3), NV("apns-id", s->apns_id, 36)};

		w->n.ok++;
		if (!c->authenticated && w->cfg->max_streams != w->cfg->initial_streams) {
			nghttp2_settings_entry e = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
			                            w->cfg->max_streams};

			c->authenticated = 1;
			nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &e, 1);
		}
		nghttp2_submit_response(c->h2, s->id, hdrs, 2, NULL);
		return;
	}
	w->n.client_err++;
	snprintf(s->body, sizeof(s->body), "{\"reason\":\"%s\"}", reason);
	{
		nghttp2_nv hdrs[] = {NV(":status", st, 3), NV("apns-id", s->apns_id, 36),
		                     NV("content-type", "application/json", 16)};
		nghttp2_data_provider dp = {.source.ptr = s, .read_callback = body_read_cb};

		nghttp2_submit_response(c->h2, s->id, hdrs, 3, &dp);
	}
}

static void answer_id(struct conn *c, int32_t id)
{
	struct stream *s = nghttp2_session_get_stream_user_data(c->h2, id);

	if (s && !s->answered)
		answer(c, s); /* a stream reset meanwhile is gone: nothing to answer */
}

/* --- delayed answers (--latency-ms) ---------------------------------------------------------- */

static void conn_flush(struct conn *c);

static void delay_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(&c->w->loop);

	while (c->q_len > 0 && c->q[c->q_head].due <= now) {
		int32_t id = c->q[c->q_head].stream_id;

		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_len--;
		answer_id(c, id);
	}
	if (c->q_len > 0)
		uv_timer_start(&c->timer, delay_timer_cb, c->q[c->q_head].due - now, 0);
	conn_flush(c);
}

static int delay_push(struct conn *c, int32_t id)
{
	uint64_t due = uv_now(&c->w->loop) + c->w->cfg->latency_ms;

	if (c->q_len == c->q_cap) {
		size_t cap = c->q_cap ? c->q_cap * 2 : 64;
		struct delayed *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < c->q_len; i++)
			q[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = q;
		c->q_cap = cap;
		c->q_head = 0;
	}
	c->q[(c->q_head + c->q_len) % c->q_cap] = (struct delayed){id, due};
	if (c->q_len++ == 0)
		uv_timer_start(&c->timer, delay_timer_cb, c->w->cfg->latency_ms, 0);
	return 0;
}

/* --- nghttp2 callbacks ----------------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->id = f->hd.stream_id;
	cm_list_insert_head(&c->streams, &s->link);
	nghttp2_session_set_stream_user_data(h2, s->id, s);
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct conn *c = user;
	struct stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);

	(void)flags;
	if (!s || f->hd.type != NGHTTP2_HEADERS)
		return 0;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (IS(":method"))
		s->method_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
	else if (IS(":path"))
		check_path(s, value, vlen);
	else if (IS("authorization"))
		s->auth = token_auth(c->w, value, vlen);
	else if (IS("apns-topic"))
		s->has_topic = vlen > 0;
	else if (IS("apns-push-type")) {
		int voip = 0;

		s->push_type_ok = is_push_type(value, vlen, &voip) != 0;
		s->voip = voip != 0;
	} else if (IS("apns-id") && is_uuid(value, vlen)) {
		memcpy(s->apns_id, value, vlen);
		s->apns_id[vlen] = '\0';
	}
#undef IS
	return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
	struct stream *s = nghttp2_session_get_stream_user_data(h2, id);

	(void)flags;
	(void)data;
	(void)user;
	if (s)
		s->body_len += len;
	return 0;
}

/* --arrivals: the request's line, stamped now. A line that cannot be written is counted. */
static void log_arrival(struct worker *w, struct stream *s)
{
	struct timespec ts;
	const char *reason;
	int status = decide(s, &reason);

	clock_gettime(CLOCK_REALTIME, &ts);
	if (fprintf(w->cfg->arrivals, "%lld %s %d\n",
	            (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
	            s->device[0] ? s->device : "-", status) < 0)
		w->n.arrivals_lost++;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *s;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!s || s->answered)
		return 0;
	if (c->w->cfg->arrivals)
		log_arrival(c->w, s);
	if (c->w->cfg->latency_ms == 0) {
		answer(c, s);
		return 0;
	}
	return delay_push(c, s->id) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static void stream_free(struct stream *s)
{
	cm_list_remove(&s->link);
	free(s);
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user)
{
	struct stream *s = nghttp2_session_get_stream_user_data(h2, id);

	(void)user;
	(void)code;
	if (s) {
		nghttp2_session_set_stream_user_data(h2, id, NULL);
		stream_free(s);
	}
	return 0;
}

/* Counts the streams refused beyond the limit (before the first success, or a client that
 * ignores SETTINGS): nghttp2 refuses them without opening them. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;

	(void)h2;
	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		c->w->n.refused++;
	return 0;
}

/* --- connections ----------------------------------------------------------------------------- */

static void conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct cm_list *n;

	if (--c->handles > 0)
		return;
	nghttp2_session_del(c->h2);
	while ((n = cm_list_first(&c->streams)) != NULL)
		stream_free(cm_list_entry(n, struct stream, link));
	cm_tls_conn_free(c->tls);
	free(c->q);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

struct wreq {
	uv_write_t req;
	struct conn *c;
	char data[];
};

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *r = (struct wreq *)req;
	struct conn *c = r->c;

	free(r);
	if (status < 0)
		conn_close(c);
	else
		conn_flush(c); /* may resume reading, or close a finished session */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->w->rbuf, sizeof(c->w->rbuf));
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Send what TLS holds; stop reading while the client does not take our bytes. */
static void conn_send_tls(struct conn *c)
{
	struct worker *w = c->w;
	size_t n;

	if (c->closing)
		return;
	while ((n = cm_tls_conn_take(c->tls, w->out, sizeof(w->out))) > 0) {
		uv_buf_t b = uv_buf_init(w->out, (unsigned)n);
		int r = c->tcp.write_queue_size == 0 ? uv_try_write((uv_stream_t *)&c->tcp, &b, 1)
		                                     : UV_EAGAIN;
		size_t done = r > 0 ? (size_t)r : 0;
		struct wreq *q;

		if (r < 0 && r != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		if (done == n)
			continue;
		q = malloc(sizeof(*q) + n - done);
		if (!q) {
			conn_close(c);
			return;
		}
		q->c = c;
		memcpy(q->data, w->out + done, n - done);
		b = uv_buf_init(q->data, (unsigned)(n - done));
		if (uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
			free(q);
			conn_close(c);
			return;
		}
	}
	if (c->tcp.write_queue_size > WRITE_HIGH && c->reading) {
		c->reading = 0;
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else if (!c->reading && c->tcp.write_queue_size < WRITE_HIGH / 2) {
		c->reading = 1;
		uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	}
}

/* nghttp2's output → TLS (in large records) → socket. Closes when HTTP/2 is done. */
static void conn_flush(struct conn *c)
{
	struct worker *w = c->w;
	size_t fill = 0;

	if (c->closing)
		return;
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);

		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0 || fill + (size_t)n > sizeof(w->plain)) {
			if (fill > 0 && cm_tls_conn_write(c->tls, w->plain, fill) != 0) {
				conn_close(c);
				return;
			}
			fill = 0;
		}
		if (n == 0)
			break;
		if ((size_t)n > sizeof(w->plain)) {
			if (cm_tls_conn_write(c->tls, data, (size_t)n) != 0) {
				conn_close(c);
				return;
			}
			continue;
		}
		memcpy(w->plain + fill, data, (size_t)n);
		fill += (size_t)n;
	}
	conn_send_tls(c);
	if (!c->closing && !nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2) && c->tcp.write_queue_size == 0)
		conn_close(c);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	struct worker *w = c->w;
	ssize_t n;

	if (nread == 0)
		return;
	if (nread < 0 || cm_tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
		conn_close(c);
		return;
	}
	while ((n = cm_tls_conn_read(c->tls, w->plain, sizeof(w->plain))) > 0) {
		if (strcmp(cm_tls_conn_alpn(c->tls), "h2") != 0) {
			conn_close(c); /* like Apple: no h2, not a byte */
			return;
		}
		if (nghttp2_session_mem_recv(c->h2, (const uint8_t *)w->plain, (size_t)n) < 0) {
			conn_close(c);
			return;
		}
	}
	if (n < 0) {
		if (w->cfg->verbose && n == -EPROTO)
			fprintf(stderr, "apns-mock: %s\n", cm_tls_conn_error(c->tls));
		conn_send_tls(c); /* the alert, or our close_notify */
		conn_close(c);
		return;
	}
	if (cm_tls_conn_established(c->tls) && strcmp(cm_tls_conn_alpn(c->tls), "h2") != 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static int conn_session(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->initial_streams},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
	};
	int r;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -ENOMEM;
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	/* Closed streams are forgotten at once: thousands of them per second. */
	nghttp2_option_set_no_closed_streams(opt, 1);
	r = nghttp2_session_server_new2(&c->h2, cb, c, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (r != 0)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, SESSION_WINDOW) != 0)
		return -ENOMEM;
	return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;
	struct conn *c;

	if (status < 0 || w->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->w = w;
	cm_list_init(&c->streams);
	uv_tcp_init(&w->loop, &c->tcp);
	uv_timer_init(&w->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    cm_tls_conn_alloc(&c->tls, w->cfg->tls, NULL) != 0 || conn_session(c) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	w->n.connections++;
	c->reading = 1;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
		conn_close(c);
}

/* --- threads --------------------------------------------------------------------------------- */

/* Close every handle of a worker: its own (data == the worker) and each connection's. */
static void close_walk(uv_handle_t *h, void *arg)
{
	if (uv_is_closing(h))
		return;
	if (h->data == arg)
		uv_close(h, NULL);
	else if (h->type == UV_TCP && h->data)
		conn_close(h->data); /* also closes the connection's timer */
}

static void stop_cb(uv_async_t *a)
{
	struct worker *w = a->data;

	w->stopping = 1;
	uv_walk(&w->loop, close_walk, w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* The worker's loop, listener (taking over w->fd) and stop signal. Once the loop exists
 * (w->inited) the caller must run it to close whatever was made, even on failure. */
static int worker_init(struct worker *w)
{
	int r = uv_loop_init(&w->loop);

	if (r != 0) {
		close(w->fd);
		return r;
	}
	w->inited = 1;
	uv_tcp_init(&w->loop, &w->listener);
	w->listener.data = w;
	uv_async_init(&w->loop, &w->stop, stop_cb);
	w->stop.data = w;
	r = uv_tcp_open(&w->listener, w->fd);
	if (r != 0)
		close(w->fd);
	else
		r = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
	return r;
}

/* A listening socket with SO_REUSEPORT on host:port; *port receives the real port. */
static int listen_socket(const char *host, int *port)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa = (struct sockaddr *)&ss;
	socklen_t slen;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(host, *port, (struct sockaddr_in *)&ss) == 0)
		slen = sizeof(struct sockaddr_in);
	else if (uv_ip6_addr(host, *port, (struct sockaddr_in6 *)&ss) == 0)
		slen = sizeof(struct sockaddr_in6);
	else
		return -EINVAL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, sa, slen) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	slen = sizeof(ss);
	if (getsockname(fd, sa, &slen) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*port = ntohs(sa->sa_family == AF_INET ? ((struct sockaddr_in *)sa)->sin_port
	                                       : ((struct sockaddr_in6 *)sa)->sin6_port);
	return fd;
}

/* --- main ------------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: apns-mock [--host H] [--port P] [--threads N] [--latency-ms MS]\n"
	    "                 [--cert F] [--key F] [--public-key F] [--key-id K] [--team-id T]\n"
	    "                 [--max-streams N] [--initial-streams N] [--token-max-age S] "
	    "[--arrivals F] [--verbose]\n");
}

static int parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_args(struct config *cfg, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n = 0;

		if (strcmp(a, "--verbose") == 0) {
			cfg->verbose = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0 || !v)
			return -EINVAL;
		i++;
		if (strcmp(a, "--host") == 0)
			cfg->host = v;
		else if (strcmp(a, "--cert") == 0)
			cfg->cert = v;
		else if (strcmp(a, "--key") == 0)
			cfg->key = v;
		else if (strcmp(a, "--public-key") == 0)
			cfg->pubkey = v;
		else if (strcmp(a, "--key-id") == 0)
			cfg->key_id = v;
		else if (strcmp(a, "--team-id") == 0)
			cfg->team_id = v;
		else if (strcmp(a, "--arrivals") == 0)
			cfg->arrivals_path = v;
		else if (strcmp(a, "--port") == 0 && parse_num(v, 0, 65535, &n) == 0)
			cfg->port = (int)n;
		else if (strcmp(a, "--threads") == 0 && parse_num(v, 1, MAX_THREADS, &n) == 0)
			cfg->threads = (int)n;
		else if (strcmp(a, "--latency-ms") == 0 && parse_num(v, 0, 600000, &n) == 0)
			cfg->latency_ms = (uint64_t)n;
		else if (strcmp(a, "--max-streams") == 0 && parse_num(v, 1, 1 << 20, &n) == 0)
			cfg->max_streams = (uint32_t)n;
		else if (strcmp(a, "--initial-streams") == 0 && parse_num(v, 1, 1 << 20, &n) == 0)
			cfg->initial_streams = (uint32_t)n;
		else if (strcmp(a, "--token-max-age") == 0 &&
		         parse_num(v, 1, LONG_MAX / 2, &n) == 0)
			cfg->token_max_age = n;
		else
			return -EINVAL;
	}
	return 0;
}

static int load_pubkey(struct config *cfg)
{
	char buf[16384], err[256] = "";
	FILE *f = fopen(cfg->pubkey, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "apns-mock: %s: %s\n", cfg->pubkey, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (cm_jwt_pubkey_load(&cfg->jwt_key, CM_JWT_ES256, buf, n, err, sizeof(err)) != 0) {
		fprintf(stderr, "apns-mock: %s: %s\n", cfg->pubkey, err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg = {
	    .host = "127.0.0.1",
	    .port = 2197,
	    .threads = 2,
	    .cert = "tests/mock/keys/server.pem",
	    .key = "tests/mock/keys/server.key",
	    .pubkey = "tests/mock/keys/AuthKey_ABC123DEFG.pub.pem",
	    .key_id = "ABC123DEFG",
	    .team_id = "DEF123GHIJ",
	    .max_streams = 1000,
	    .initial_streams = 1,
	    .token_max_age = 3600,
	    .clock_skew = 300,
	};
	struct cm_tls_config tc = {0};
	struct worker *ws;
	struct counters total = {0};
	char err[512] = "";
	sigset_t sigs;
	int sig, rc = 1, started = 0;

	if (parse_args(&cfg, argc, argv) != 0) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	tc.cert_file = cfg.cert;
	tc.key_file = cfg.key;
	tc.alpn = "h2";
	if (cm_tls_server_alloc(&cfg.tls, &tc, err, sizeof(err)) != 0) {
		fprintf(stderr, "apns-mock: %s\n", err);
		return 1;
	}
	if (load_pubkey(&cfg) != 0) {
		cm_tls_free(cfg.tls);
		return 1;
	}
	if (cfg.arrivals_path && !(cfg.arrivals = fopen(cfg.arrivals_path, "a"))) {
		fprintf(stderr, "apns-mock: %s: %s\n", cfg.arrivals_path, strerror(errno));
		cm_jwt_key_free(cfg.jwt_key);
		cm_tls_free(cfg.tls);
		return 1;
	}
	ws = calloc((size_t)cfg.threads, sizeof(*ws));
	if (!ws)
		goto out;
	/* Signals go to this thread only: block them before any worker exists. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	for (int i = 0; i < cfg.threads; i++) {
		int fd = listen_socket(cfg.host, &cfg.port);

		if (fd < 0) {
			fprintf(stderr, "apns-mock: %s:%d: %s\n", cfg.host, cfg.port,
			        strerror(-fd));
			goto out;
		}
		ws[i].cfg = &cfg;
		ws[i].index = i;
		ws[i].fd = fd;
		if (worker_init(&ws[i]) != 0) {
			fprintf(stderr, "apns-mock: cannot listen on %s:%d\n", cfg.host, cfg.port);
			goto out;
		}
	}
	for (; started < cfg.threads; started++)
		if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0)
			goto out;
	printf("listening %s:%d\n", cfg.host, cfg.port);
	fflush(stdout);
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
out:
	for (int i = 0; ws && i < cfg.threads; i++) {
		if (!ws[i].inited)
			continue;
		if (i < started) {
			uv_async_send(&ws[i].stop);
			pthread_join(ws[i].thread, NULL);
		} else {
			stop_cb(&ws[i].stop);
			uv_run(&ws[i].loop, UV_RUN_DEFAULT);
		}
		uv_loop_close(&ws[i].loop);
		for (int j = 0; j < TOKEN_CACHE; j++)
			free(ws[i].cache[j].tok);
		total.requests += ws[i].n.requests;
		total.ok += ws[i].n.ok;
		total.client_err += ws[i].n.client_err;
		total.connections += ws[i].n.connections;
		total.refused += ws[i].n.refused;
		total.arrivals_lost += ws[i].n.arrivals_lost;
	}
	if (cfg.arrivals && fclose(cfg.arrivals) != 0)
		total.arrivals_lost++;
	if (rc == 0)
		printf("requests %llu 2xx %llu 4xx %llu connections %llu refused %llu\n",
		       (unsigned long long)total.requests, (unsigned long long)total.ok,
		       (unsigned long long)total.client_err, (unsigned long long)total.connections,
		       (unsigned long long)total.refused);
	fflush(stdout);
	if (total.arrivals_lost) {
		fprintf(stderr, "apns-mock: %s: %llu arrival line(s) not written\n",
		        cfg.arrivals_path, (unsigned long long)total.arrivals_lost);
		rc = 1;
	}
	free(ws);
	cm_jwt_key_free(cfg.jwt_key);
	cm_tls_free(cfg.tls);
	return rc;
}
