/* test_component.c - the XEP-0114 component (platypus/src/component.c, component_push.c):
 * handshake, publish IQs mapped to notifications and answered with the outcome, secrets,
 * disco/ping/unknown IQs, stream errors with reconnection, and the drain on stop. The XMPP
 * server is a thread with blocking sockets speaking the component protocol; the provider
 * behind the dispatcher is a fake that answers after a loop turn. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <uv.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/xml.h"
#include "platypus/src/component_int.h"
#include "platypus/src/dispatch.h"
#include "platypus/src/notif.h"

#define TOKEN_OK   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOKEN_DEAD "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define SECRET     "s3cret"
#define DOMAIN     "push.example.com"

/* --- the fake provider ---------------------------------------------------------------------- */

struct attempt {
	uv_timer_t timer;
	pp_attempt_cb cb;
	void *arg;
	int dead;
};

static unsigned sends;

static void attempt_closed(uv_handle_t *h)
{
	free(h->data);
}

static void attempt_fire(uv_timer_t *t)
{
	struct attempt *a = t->data;
	struct pp_result r;

	memset(&r, 0, sizeof(r));
	if (a->dead)
		pp_result_set(&r, PP_OUT_DEAD, PP_CAUSE_UNREGISTERED, 410, "Unregistered");
	else
		pp_result_set(&r, PP_OUT_DELIVERED, PP_CAUSE_NONE, 200, NULL);
	a->cb(a->arg, &r, -1);
	uv_close((uv_handle_t *)t, attempt_closed);
}

static int fake_send(void *provider, const struct pp_notif *n, uint64_t deadline_ms,
                     pp_attempt_cb cb, void *arg, struct pp_result *now)
{
	struct attempt *a = calloc(1, sizeof(*a));

	(void)deadline_ms;
	(void)now;
	if (!a)
		return -ENOMEM;
	sends++;
	a->cb = cb;
	a->arg = arg;
	a->dead = strcmp(n->token, TOKEN_DEAD) == 0;
	uv_timer_init(provider, &a->timer);
	a->timer.data = a;
	uv_timer_start(&a->timer, attempt_fire, 20, 0);
	return 0;
}

/* --- the XMPP server thread ----------------------------------------------------------------- */

struct server {
	int lfd, fd;
	uint16_t port;
	char in[65536];
	size_t inlen;
};

static void server_listen(struct server *s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	getsockname(s->lfd, (struct sockaddr *)&sa, &len);
	s->port = ntohs(sa.sin_port);
	s->fd = -1;
}

static int server_accept(struct server *s)
{
	struct pollfd p = {.fd = s->lfd, .events = POLLIN};

	if (poll(&p, 1, 5000) != 1)
		return -1;
	s->fd = accept(s->lfd, NULL, NULL);
	s->inlen = 0;
	return s->fd >= 0 ? 0 : -1;
}

/* Read until needle has arrived; 0, or -1 on timeout or EOF. Consumes everything up to the end
 * of the needle; what came before it is copied to before (if not NULL). */
static int server_expect(struct server *s, const char *needle, char *before, size_t beforelen)
{
	for (;;) {
		char *hit;
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		ssize_t n;

		s->in[s->inlen] = '\0';
		hit = strstr(s->in, needle);
		if (hit) {
			size_t upto = (size_t)(hit - s->in) + strlen(needle);

			if (before) {
				size_t k = (size_t)(hit - s->in) < beforelen - 1
				               ? (size_t)(hit - s->in)
				               : beforelen - 1;
				memcpy(before, s->in, k);
				before[k] = '\0';
			}
			memmove(s->in, s->in + upto, s->inlen - upto);
			s->inlen -= upto;
			return 0;
		}
		if (poll(&p, 1, 5000) != 1)
			return -1;
		n = read(s->fd, s->in + s->inlen, sizeof(s->in) - 1 - s->inlen);
		if (n <= 0)
			return -1;
		s->inlen += (size_t)n;
	}
}

static void server_send(struct server *s, const char *text)
{
	size_t len = strlen(text);

	assert_int_equal(write(s->fd, text, len), (ssize_t)len);
}

/* What the server thread saw, checked by the main thread afterwards. */
struct script {
	struct server srv;
	int ok; /* the whole scripted conversation went as expected */
	char failed_at[128];
	int wrong_secret_first; /* answer the first handshake with a stream error */
	char transcript[65536]; /* everything received after the handshake */
	unsigned nreplies;
};

static const char *publish_iq(const char *id, const char *token, const char *extra_opts)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
	         "<iq type='set' id='%s' from='user@example.com' to='" DOMAIN "'>"
	         "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n1'><item>"
	         "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>"
	         "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>"
	         "<field var='message-count'><value>3</value></field>"
	         "<field var='last-message-sender'><value>juliet@example.com</value></field>"
	         "<field var='last-message-body'><value>Hi &amp; bye</value></field>"
	         "</x></notification></item></publish>"
	         "<publish-options><x xmlns='jabber:x:data' type='submit'>"
	         "<field var='FORM_TYPE'><value>"
	         "http://jabber.org/protocol/pubsub#publish-options</value></field>"
	         "%s%s%s"
	         "<field var='service'><value>apns</value></field>%s"
	         "</x></publish-options></pubsub></iq>",
	         id, token ? "<field var='device_id'><value>" : "", token ? token : "",
	         token ? "</value></field>" : "", extra_opts);
	return buf;
}

#define STEP(cond, what)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf(sc->failed_at, sizeof(sc->failed_at), "%s", what);                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void handshake(struct script *sc, const char *sid, int accept)
{
	struct server *s = &sc->srv;
	unsigned char digest[CM_SHA1_LEN];
	struct cm_buf want, in;
	char got[256];
	int r;

	server_send(
	    s, "<?xml version='1.0'?><stream:stream xmlns:stream="
	       "'http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='" DOMAIN
	       "' id='");
	server_send(s, sid);
	server_send(s, "'>");
	if (server_expect(s, "</handshake>", got, sizeof(got)) != 0)
		return;
	cm_buf_init(&want, 0);
	cm_buf_init(&in, 0);
	cm_buf_puts(&in, sid);
	cm_buf_puts(&in, SECRET);
	cm_crypto_sha1(in.data, in.len, digest);
	cm_buf_puts(&want, "<handshake>");
	cm_crypto_hex(&want, digest, sizeof(digest));
	r = strstr(got, want.data) != NULL;
	cm_buf_free(&want);
	cm_buf_free(&in);
	if (!r || !accept) {
		server_send(s, "<stream:error><not-authorized "
		               "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
		               "</stream:stream>");
		close(s->fd);
		s->fd = -1;
		return;
	}
	server_send(s, "<handshake/>");
}

/* Wait until a reply to IQ id arrived (replies may come in any order and may be self-closed),
 * keeping everything read in the transcript. */
static void collect(struct script *sc, const char *id)
{
	char key[32];
	struct server *s = &sc->srv;

	snprintf(key, sizeof(key), "id='%s'", id);
	for (;;) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		size_t have = strlen(sc->transcript);
		ssize_t n;

		if (strstr(sc->transcript, key)) {
			sc->nreplies++;
			return;
		}
		if (poll(&p, 1, 5000) != 1)
			return;
		n = read(s->fd, sc->transcript + have, sizeof(sc->transcript) - 1 - have);
		if (n <= 0)
			return;
		sc->transcript[have + (size_t)n] = '\0';
	}
}

static void converse(struct script *sc)
{
	struct server *s = &sc->srv;

	STEP(server_accept(s) == 0, "accept");
	STEP(server_expect(s, "jabber:component:accept", NULL, 0) == 0, "stream header");
	STEP(server_expect(s, "to='" DOMAIN "'>", NULL, 0) == 0, "stream header to");
	if (sc->wrong_secret_first) {
		handshake(sc, "first", 0);
		STEP(server_accept(s) == 0, "reconnect accept");
		STEP(server_expect(s, "to='" DOMAIN "'>", NULL, 0) == 0, "second header");
	}
	handshake(sc, "sid-42", 1);
	STEP(s->fd >= 0, "handshake");

	/* 1 delivered, 2 dead token, 3 no device_id, 4 wrong secret, 5 disco, 6 ping, 7 unknown */
	server_send(s,
	            publish_iq("p1", TOKEN_OK, "<field var='secret'><value>pub</value></field>"));
	server_send(s,
	            publish_iq("p2", TOKEN_DEAD, "<field var='secret'><value>pub</value></field>"));
	server_send(s, publish_iq("p3", NULL, "<field var='secret'><value>pub</value></field>"));
	server_send(s,
	            publish_iq("p4", TOKEN_OK, "<field var='secret'><value>nope</value></field>"));
	server_send(s, "<iq type='get' id='d1' from='example.com' to='" DOMAIN "'><query "
	               "xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	server_send(s, "<iq type='get' id='g1' from='example.com' to='" DOMAIN "'><ping "
	               "xmlns='urn:xmpp:ping'/></iq>");
	server_send(s, "<iq type='get' id='u1' from='example.com' to='" DOMAIN "'><vCard "
	               "xmlns='vcard-temp'/></iq>");
	{
		const char *ids[] = {"p1", "p2", "p3", "p4", "d1", "g1", "u1"};

		/* the handshake left nothing unread: replies only come after our IQs */
		memcpy(sc->transcript, s->in, s->inlen);
		sc->transcript[s->inlen] = '\0';
		for (int i = 0; i < 7; i++)
			collect(sc, ids[i]);
	}
	STEP(sc->nreplies == 7, "seven replies");
	/* The stop: a publish in flight is answered before the stream ends. */
	server_send(s,
	            publish_iq("p5", TOKEN_OK, "<field var='secret'><value>pub</value></field>"));
	STEP(server_expect(s, "id='p5'", NULL, 0) == 0, "reply p5");
	STEP(server_expect(s, "</stream:stream>", NULL, 0) == 0, "stream end");
	sc->ok = 1;
	close(s->fd);
}

static void *server_main(void *arg)
{
	converse(arg);
	return NULL;
}

/* --- the test -------------------------------------------------------------------------------- */

struct world {
	uv_loop_t loop;
	struct cm_loop cl; /* the loop's context: the component's stream, the retry timer */
	struct pp_dispatch *d;
	struct pp_component *c;
	uv_timer_t stop_timer, guard;
	int drained;
};

static void on_drained_dispatch(void *arg)
{
	(void)arg;
}

static void on_component_drained(void *arg)
{
	struct world *w = arg;

	w->drained = 1;
	pp_dispatch_stop(w->d, on_drained_dispatch, w);
	uv_close((uv_handle_t *)&w->guard, NULL);
}

/* Stop once p5 was sent: wait for the dispatcher to hold it, then stop the component. */
static void on_stop_timer(uv_timer_t *t)
{
	struct world *w = t->data;

	if (pp_dispatch_depth(w->d) == 0 && sends < 3)
		return;
	if (sends >= 3 && pp_dispatch_depth(w->d) == 1) {
		uv_close((uv_handle_t *)t, NULL);
		pp_component_stop(w->c, on_component_drained, w);
	}
}

static struct script *current;

static void on_guard(uv_timer_t *t)
{
	(void)t;
	fail_msg("the conversation did not finish in time (server: %s, %u replies, %u sends)",
	         current->failed_at[0] ? current->failed_at : "waiting", current->nreplies, sends);
}

/* The reply to IQ id, cut out of the transcript (from its "<iq" to the next "<iq"). */
static const char *find_reply(struct script *sc, const char *id)
{
	static char out[2048];
	char key[32];
	const char *hit, *start, *end;

	snprintf(key, sizeof(key), "id='%s'", id);
	hit = strstr(sc->transcript, key);
	if (!hit)
		return "";
	for (start = hit; start > sc->transcript && strncmp(start, "<iq", 3) != 0; start--)
		;
	end = strstr(hit, "<iq");
	if (!end)
		end = hit + strlen(hit);
	snprintf(out, sizeof(out), "%.*s", (int)(end - start), start);
	return out;
}

static void run_conversation(int wrong_secret_first)
{
	static struct script sc;
	struct world w;
	struct pp_app_desc app = {.name = "app",
	                          .service = PP_SVC_APNS,
	                          .mode = PP_MODE_PROD,
	                          .topic = "com.example.app",
	                          .send = fake_send};
	struct pp_dispatch_config dc = {.queue_max = 16};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct pp_component_config cc = {.domain = DOMAIN,
	                                 .secret = (const unsigned char *)SECRET,
	                                 .secret_len = strlen(SECRET),
	                                 .publish_secret = (const unsigned char *)"pub",
	                                 .publish_secret_len = 3,
	                                 .reconnect_min_ms = 20,
	                                 .reconnect_max_ms = 40};
	pthread_t th;

	memset(&sc, 0, sizeof(sc));
	memset(&w, 0, sizeof(w));
	current = &sc;
	sends = 0;
	sc.wrong_secret_first = wrong_secret_first;
	server_listen(&sc.srv);
	sa.sin_port = htons(sc.srv.port);
	cc.server = (const struct sockaddr *)&sa;
	assert_int_equal(pthread_create(&th, NULL, server_main, &sc), 0);

	assert_int_equal(uv_loop_init(&w.loop), 0);
	assert_int_equal(cm_loop_init(&w.cl, &w.loop, 0), 0);
	app.provider = &w.loop;
	assert_int_equal(pp_dispatch_alloc(&w.d, &w.cl, &dc), 0);
	assert_int_equal(pp_dispatch_add_app(w.d, &app), 0);
	assert_int_equal(pp_component_alloc(&w.c, &w.cl, w.d, &cc), 0);
	uv_timer_init(&w.loop, &w.stop_timer);
	w.stop_timer.data = &w;
	uv_timer_start(&w.stop_timer, on_stop_timer, 5, 5);
	uv_timer_init(&w.loop, &w.guard);
	uv_timer_start(&w.guard, on_guard, 15000, 0);
	while (!w.drained && uv_run(&w.loop, UV_RUN_ONCE))
		;
	pthread_join(th, NULL);
	/* Drained: the stream has ended; nothing of the component's is left open. */
	pp_component_free(w.c);
	pp_dispatch_free(w.d);
	cm_loop_close(&w.cl, NULL);
	assert_int_equal(uv_run(&w.loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&w.cl);
	assert_int_equal(uv_loop_close(&w.loop), 0);
	close(sc.srv.lfd);

	if (!sc.ok)
		fail_msg("XMPP server side stopped at: %s", sc.failed_at);
	assert_non_null(strstr(find_reply(&sc, "p1"), "type='result'"));
	assert_non_null(strstr(find_reply(&sc, "p1"), "to='user@example.com'"));
	assert_non_null(strstr(find_reply(&sc, "p2"), "type='cancel'"));
	assert_non_null(strstr(find_reply(&sc, "p2"), "<item-not-found"));
	assert_non_null(strstr(find_reply(&sc, "p3"), "type='modify'"));
	assert_non_null(strstr(find_reply(&sc, "p3"), "<bad-request"));
	assert_non_null(strstr(find_reply(&sc, "p3"), "device_id: missing"));
	assert_non_null(strstr(find_reply(&sc, "p4"), "type='auth'"));
	assert_non_null(strstr(find_reply(&sc, "p4"), "<forbidden"));
	assert_non_null(strstr(find_reply(&sc, "d1"), "type='push'"));
	assert_non_null(strstr(find_reply(&sc, "d1"), "urn:xmpp:push:0"));
	assert_non_null(strstr(find_reply(&sc, "g1"), "type='result'"));
	assert_non_null(strstr(find_reply(&sc, "u1"), "<service-unavailable"));
	/* p1, p2 and p5 reached the provider; p3 and p4 never did */
	assert_int_equal(sends, 3);
}

static void test_conversation(void **state)
{
	(void)state;
	run_conversation(0);
}

static void test_wrong_secret_then_reconnect(void **state)
{
	(void)state;
	run_conversation(1);
}

/* --- back-pressure ------------------------------------------------------------------------- */

/* A provider that holds every attempt until released. */
struct held {
	pp_attempt_cb cb;
	void *arg;
};

static struct held *held;
static unsigned nheld;

static int hold_send(void *provider, const struct pp_notif *n, uint64_t deadline_ms,
                     pp_attempt_cb cb, void *arg, struct pp_result *now)
{
	(void)provider;
	(void)n;
	(void)deadline_ms;
	(void)now;
	held[nheld++] = (struct held){cb, arg};
	return 0;
}

enum { FLOOD = 1500 };

struct flood {
	struct server srv;
	int ok;
	char failed_at[128];
	unsigned results; /* replies of type result read */
};

/* The XMPP server: FLOOD publishes written in one go (the writes block while platypus does not
 * read), then every reply read. */
static void flood_converse(struct flood *fl)
{
	struct script scr;
	struct script *sc = &scr;
	char *all;
	size_t len = 0, cap = (size_t)FLOOD * 2048;

	memset(&scr, 0, sizeof(scr));
	scr.srv = fl->srv;
	STEP(server_accept(&scr.srv) == 0, "accept");
	STEP(server_expect(&scr.srv, "to='" DOMAIN "'>", NULL, 0) == 0, "stream header");
	handshake(sc, "sid-flood", 1);
	STEP(scr.srv.fd >= 0, "handshake");
	all = malloc(cap);
	STEP(all != NULL, "memory");
	for (unsigned i = 0; i < FLOOD; i++) {
		char id[16];
		const char *iq;

		snprintf(id, sizeof(id), "f%u", i);
		iq = publish_iq(id, TOKEN_OK, "<field var='secret'><value>pub</value></field>");
		memcpy(all + len, iq, strlen(iq));
		len += strlen(iq);
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(scr.srv.fd, all + off, len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(all);
	/* replies: count them as they come, a window of the stream at a time */
	for (;;) {
		char buf[65536 + 16];
		struct pollfd pf = {.fd = scr.srv.fd, .events = POLLIN};
		static char tail[16];
		size_t tl = strlen(tail);
		ssize_t n;

		if (fl->results == FLOOD || poll(&pf, 1, 5000) != 1)
			break;
		memcpy(buf, tail, tl);
		n = read(scr.srv.fd, buf + tl, sizeof(buf) - 1 - tl);
		if (n <= 0)
			break;
		buf[tl + (size_t)n] = '\0';
		for (char *q = buf; (q = strstr(q, "type='result'")) != NULL; q++)
			fl->results++;
		/* a marker cut between two reads is found in the next one */
		snprintf(tail, sizeof(tail), "%s", buf + tl + (size_t)n - (n < 12 ? n : 12));
	}
	fl->ok = fl->results == FLOOD;
	close(scr.srv.fd);
	snprintf(fl->failed_at, sizeof(fl->failed_at), "%s", scr.failed_at);
}

static void *flood_main(void *arg)
{
	flood_converse(arg);
	return NULL;
}

/* A server that publishes faster than the providers answer: platypus takes about PENDING_HIGH
 * (1024) publishes into its care, then stops reading the stream, so the rest waits in the
 * sockets, not in its memory; once the outcomes come it reads on, and every publish is
 * answered. */
static void test_backpressure(void **state)
{
	static struct flood fl;
	struct world w;
	struct pp_app_desc app = {.name = "app",
	                          .service = PP_SVC_APNS,
	                          .mode = PP_MODE_PROD,
	                          .topic = "com.example.app",
	                          .send = hold_send};
	struct pp_dispatch_config dc = {.queue_max = 2 * FLOOD};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct pp_component_config cc = {.domain = DOMAIN,
	                                 .secret = (const unsigned char *)SECRET,
	                                 .secret_len = strlen(SECRET),
	                                 .publish_secret = (const unsigned char *)"pub",
	                                 .publish_secret_len = 3,
	                                 .reconnect_min_ms = 20,
	                                 .reconnect_max_ms = 40};
	struct pp_result ok;
	unsigned before;
	pthread_t th;

	(void)state;
	memset(&fl, 0, sizeof(fl));
	memset(&w, 0, sizeof(w));
	held = calloc(FLOOD, sizeof(*held));
	nheld = 0;
	server_listen(&fl.srv);
	sa.sin_port = htons(fl.srv.port);
	cc.server = (const struct sockaddr *)&sa;
	assert_int_equal(pthread_create(&th, NULL, flood_main, &fl), 0);
	assert_int_equal(uv_loop_init(&w.loop), 0);
	assert_int_equal(cm_loop_init(&w.cl, &w.loop, 0), 0);
	assert_int_equal(pp_dispatch_alloc(&w.d, &w.cl, &dc), 0);
	assert_int_equal(pp_dispatch_add_app(w.d, &app), 0);
	assert_int_equal(pp_component_alloc(&w.c, &w.cl, w.d, &cc), 0);
	/* until the care has stopped growing: reading stopped past PENDING_HIGH */
	for (unsigned still = 0; still < 20;) {
		before = pp_dispatch_depth(w.d);
		for (uint64_t end = uv_now(&w.loop) + 20; uv_now(&w.loop) < end;)
			uv_run(&w.loop, UV_RUN_NOWAIT);
		still = pp_dispatch_depth(w.d) == before && before >= 1024 ? still + 1 : 0;
	}
	assert_true(pp_dispatch_depth(w.d) >= 1024);
	assert_true(pp_dispatch_depth(w.d) < FLOOD); /* the rest waits in the sockets */
	/* the outcomes come: reading goes on, and what it brings is answered at once */
	memset(&ok, 0, sizeof(ok));
	pp_result_set(&ok, PP_OUT_DELIVERED, PP_CAUSE_NONE, 200, NULL);
	for (unsigned done = 0; done < FLOOD;) {
		while (done < nheld) {
			done++;
			held[done - 1].cb(held[done - 1].arg, &ok, -1);
		}
		uv_run(&w.loop, UV_RUN_NOWAIT);
		if (fl.ok || fl.failed_at[0])
			break;
	}
	pthread_join(th, NULL);
	assert_int_equal(nheld, FLOOD);
	if (!fl.ok)
		fail_msg("%u of %d replies (server: %s)", fl.results, FLOOD, fl.failed_at);
	pp_component_close(w.c, NULL, NULL);
	while (uv_run(&w.loop, UV_RUN_ONCE))
		;
	pp_component_free(w.c);
	pp_dispatch_stop(w.d, NULL, NULL);
	pp_dispatch_free(w.d);
	cm_loop_close(&w.cl, NULL);
	assert_int_equal(uv_run(&w.loop, UV_RUN_NOWAIT), 0);
	cm_loop_free(&w.cl);
	assert_int_equal(uv_loop_close(&w.loop), 0);
	close(fl.srv.lfd);
	free(held);
}

/* --- the mapping alone ----------------------------------------------------------------------- */

static struct cm_xml_node *parse_one(const char *text);

static struct cm_xml_node *parsed;

static int open_cb(void *arg, const struct cm_xml_node *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int stanza_cb(void *arg, struct cm_xml_node *st)
{
	(void)arg;
	parsed = st;
	return 0;
}

static int close_cb(void *arg)
{
	(void)arg;
	return 0;
}

static struct cm_xml_node *parse_one(const char *text)
{
	struct cm_xml_parser_cfg pc = {
	    .open_cb = open_cb, .stanza_cb = stanza_cb, .close_cb = close_cb};
	struct cm_xml_parser *p;
	const char *hdr = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	                  "xmlns='jabber:component:accept'>";

	parsed = NULL;
	assert_int_equal(cm_xml_parser_alloc(&p, &pc), 0);
	assert_int_equal(cm_xml_parser_feed(p, hdr, strlen(hdr)), 0);
	assert_int_equal(cm_xml_parser_feed(p, text, strlen(text)), 0);
	cm_xml_parser_free(p);
	assert_non_null(parsed);
	return parsed;
}

static void test_mapping(void **state)
{
	struct cm_xml_node *iq;
	struct pp_notif n;
	const char *secret;
	char err[256];

	(void)state;
	iq = parse_one(publish_iq("m1", TOKEN_OK,
	                          "<field var='mode'><value>dev</value></field>"
	                          "<field var='topic'><value>com.example.app</value></field>"
	                          "<field var='priority'><value>high</value></field>"
	                          "<field var='secret'><value>x</value></field>"));
	pp_notif_init(&n);
	assert_int_equal(pp_component__push_parse(iq, &n, &secret, err, sizeof(err)), 0);
	assert_int_equal(n.service, PP_SVC_APNS);
	assert_int_equal(n.mode, PP_MODE_DEV);
	assert_int_equal(n.priority, PP_PRIO_HIGH);
	assert_string_equal(n.token, TOKEN_OK);
	assert_string_equal(n.topic, "com.example.app");
	assert_true(n.has_alert);
	assert_string_equal(n.alert.title, "juliet@example.com");
	assert_string_equal(n.alert.body, "Hi & bye");
	assert_false(n.voip);
	assert_string_equal(json_string_value(json_object_get(n.data, "message-count")), "3");
	assert_string_equal(secret, "x");
	pp_notif_free(&n);
	cm_xml_node_free(iq);

	/* silent: data only; voip flag */
	iq = parse_one(publish_iq("m2", TOKEN_OK,
	                          "<field var='silent'><value>true</value></field>"
	                          "<field var='voip'><value>1</value></field>"));
	pp_notif_init(&n);
	assert_int_equal(pp_component__push_parse(iq, &n, &secret, err, sizeof(err)), 0);
	assert_false(n.has_alert);
	assert_true(n.voip);
	assert_null(secret);
	assert_string_equal(json_string_value(json_object_get(n.data, "last-message-body")),
	                    "Hi & bye");
	pp_notif_free(&n);
	cm_xml_node_free(iq);

	/* precise refusals */
	iq = parse_one(
	    publish_iq("m3", TOKEN_OK, "<field var='mode'><value>staging</value></field>"));
	pp_notif_init(&n);
	assert_int_equal(pp_component__push_parse(iq, &n, &secret, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "mode: must be prod or dev");
	pp_notif_free(&n);
	cm_xml_node_free(iq);

	iq = parse_one("<iq type='set' id='m4'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
	               "<publish node='x'><item><entry xmlns='urn:example'/></item></publish>"
	               "</pubsub></iq>");
	pp_notif_init(&n);
	assert_int_equal(pp_component__push_parse(iq, &n, &secret, err, sizeof(err)), -ENOENT);
	pp_notif_free(&n);
	cm_xml_node_free(iq);
}

/* What Prosody 0.12's mod_cloud_notify really sends (captured from Debian's prosody 0.12.3 with
 * push_notification_with_body and _with_sender): the summary form has type='form', typed fields
 * and a field without a value; the publish-options are the client's form, stored verbatim. */
static void test_prosody_publish(void **state)
{
	struct cm_xml_node *iq;
	struct pp_notif n;
	const char *secret;
	char err[256];

	(void)state;
	iq = parse_one(
	    "<iq id='51ee690aea24a48073c3e23c0275a92bb24020114d62231980eb55cb3302f5da' "
	    "to='push.localhost' type='set' from='localhost'>"
	    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='alice-phone-node'>"
	    "<item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>"
	    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>"
	    "<field var='message-count' type='text-single'><value>1</value></field>"
	    "<field var='pending-subscription-count' type='text-single'/>"
	    "<field var='last-message-sender' type='jid-single'><value>bob@localhost/desk</value>"
	    "</field><field var='last-message-body' type='text-single'><value>hi &lt;&amp;&gt; "
	    "there</value></field></x></notification></item></publish><publish-options>"
	    "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
	    "http://jabber.org/protocol/pubsub#publish-options</value></field>"
	    "<field var='device_id'><value>" TOKEN_OK "</value></field>"
	    "<field var='service'><value>apns</value></field>"
	    "<field var='mode'><value>prod</value></field>"
	    "<field var='topic'><value>com.example.app</value></field></x></publish-options>"
	    "</pubsub></iq>");
	pp_notif_init(&n);
	assert_int_equal(pp_component__push_parse(iq, &n, &secret, err, sizeof(err)), 0);
	assert_int_equal(n.service, PP_SVC_APNS);
	assert_int_equal(n.mode, PP_MODE_PROD);
	assert_string_equal(n.token, TOKEN_OK);
	assert_string_equal(n.topic, "com.example.app");
	assert_true(n.has_alert);
	assert_string_equal(n.alert.title, "bob@localhost/desk");
	assert_string_equal(n.alert.body, "hi <&> there");
	assert_false(n.voip);
	assert_string_equal(json_string_value(json_object_get(n.data, "message-count")), "1");
	/* a field without a value is left out of the data */
	assert_null(json_object_get(n.data, "pending-subscription-count"));
	assert_null(secret);
	pp_notif_free(&n);
	cm_xml_node_free(iq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mapping),      cmocka_unit_test(test_prosody_publish),
	    cmocka_unit_test(test_conversation), cmocka_unit_test(test_wrong_secret_then_reconnect),
	    cmocka_unit_test(test_backpressure),
	};

	cm_log_setup("test", CM_LOG_WARN, CM_LOG_TEXT, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
