/* fuzz_c2s.c - libFuzzer target: xmpp-core's client stream (c2s.c and all it drives: the XML
 * parser, SASL, binding, the router, rosters, presence, blocking, registration, the store) fed
 * arbitrary bytes from a real client socket over loopback.
 *
 * The first byte of the input picks the stage the bytes arrive at:
 *   0  before anything (the bytes are the whole stream, header included);
 *   1  after a valid stream header, before authentication;
 *   2  in a bound session of fuzz@localhost (PLAIN in cleartext, allowed for the target);
 *   3  authenticated as fuzz@localhost, the stream restarted, before binding (where <resume/>
 *      and an early <enable/> arrive);
 * the rest is written, the client's side is shut, and the loop runs until the server has closed
 * the connection. Nothing may crash, leak or trip the sanitizers, and the server must close
 * every connection once its client has gone (no stream is left behind). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "cm/cfg.h"
#include "cm/list.h"
#include "cm/listener.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "cm/stream.h"
/* relative to the repository root, so that both the replay build (-I.) and the fuzz build find
 * them */
#include "xmpp-core/src/c2s.h"
#include "xmpp-core/src/scram.h"
#include "xmpp-core/src/server.h"
#include "xmpp-core/src/store.h"
#include "xmpp-core/src/xc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER                                                                                     \
	"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' "  \
	"xmlns:stream='http://etherx.jabber.org/streams'>"

static struct {
	uv_loop_t uv;
	struct cm_loop loop;
	struct xc_config cfg;
	struct cm_metrics *metrics;
	struct xc_server *srv;
	struct cm_listener *ln;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char dir[64];
	bool ready;
} F;

static void on_accept(struct cm_listener *ln, struct cm_stream *s)
{
	(void)ln;
	xc_c2s_accept(F.srv->shards[0], s, false);
}

static const struct cm_listener_events events = {.accept = on_accept};

static void on_created(struct xc_store_req *r)
{
	*(int *)r->arg = r->err ? r->err : 1;
	xc_store_req_free(r);
}

static void setup(void)
{
	static char yaml[512];
	struct cm_cfg_errors errs;
	struct cm_listener_config lc = {0};
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct xc_store_req *r;
	int done = 0;

	cm_log_setup("fuzz_c2s", CM_LOG_ERROR, CM_LOG_TEXT, 2);
	snprintf(F.dir, sizeof(F.dir), "/tmp/fuzz_c2s.XXXXXX");
	if (!mkdtemp(F.dir))
		abort();
	/* cleartext PLAIN, so that the target reaches a session without TLS; small limits */
	snprintf(
	    yaml, sizeof(yaml),
	    "hosts: [localhost]\nworkers: 1\nstorage: {path: %s/db}\n"
	    "c2s: {require_tls: false, plain_cleartext: true, max_stanza: 16k, rate: 0, "
	    "login_timeout: 2s, max_queued: 64k}\n"
	    "registration: {enabled: true, per_ip_per_hour: 100000}\n"
	    "auth: {scram_iterations: 4096, failures_per_ip: 100000, failures_per_user: 100000}\n",
	    F.dir);
	cm_cfg_errors_init(&errs);
	if (cm_cfg_load_buffer(&xc_config_schema, &F.cfg, "fuzz", yaml, strlen(yaml), &errs) != 0)
		abort();
	cm_cfg_errors_free(&errs);
	if (uv_loop_init(&F.uv) != 0 || cm_loop_init(&F.loop, &F.uv, 1) != 0 ||
	    cm_metrics_alloc(&F.metrics) != 0 || xc_server_init(&F.srv, &F.cfg, F.metrics, 1) != 0)
		abort();
	xc_shard_attach(F.srv->shards[0], &F.loop);
	lc.addr = (struct sockaddr *)&sin;
	lc.addrlen = sizeof(sin);
	lc.stream.max_unsent = 64 * 1024;
	if (cm_listener_open(&F.ln, &F.loop, &lc, &events, NULL) != 0)
		abort();
	F.addrlen = sizeof(F.addr);
	if (cm_listener_address(F.ln, &F.addr, &F.addrlen) != 0)
		abort();
	/* the account stage 2 logs in to */
	r = xc_store_req_new(XC_STORE_ACCOUNT_CREATE, &F.loop, on_created, &done);
	if (!r || xc_store_req_set(&r->user, "fuzz@localhost") != 0)
		abort();
	for (int h = 0; h < XC_SCRAM_NHASH; h++)
		if (xc_scram_creds_make((enum xc_scram_hash)h, "pw", 2, 4096, NULL, 0,
		                        &r->creds[h]) != 0)
			abort();
	if (xc_store_submit(F.srv->store, r) != 0)
		abort();
	cm_loop_keep_alive(&F.loop, true);
	while (!done)
		uv_run(&F.uv, UV_RUN_ONCE);
	cm_loop_keep_alive(&F.loop, false);
	F.ready = true;
}

/* Run the loop, reading what the server sends into out (may be NULL), until want appears in it
 * (want NULL: until the server closes) or the loop has nothing left to wait for. 1 when want
 * was seen or the server closed, 0 otherwise. */
static int pump(int fd, const char *want, char *out, size_t cap)
{
	size_t len = out ? strlen(out) : 0;
	char buf[8192];

	for (int i = 0; i < 20000; i++) {
		ssize_t n;

		uv_run(&F.uv, UV_RUN_NOWAIT);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return want == NULL;
		if (n > 0 && out) {
			size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;

			memcpy(out + len, buf, k);
			len += k;
			out[len] = '\0';
		}
		if (want && out && strstr(out, want))
			return 1;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return want == NULL;
		if (n < 0)
			uv_run(&F.uv, UV_RUN_ONCE); /* wait for the server's next event */
	}
	return 0;
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			uv_run(&F.uv, UV_RUN_NOWAIT); /* the server reads */
			continue;
		}
		if (w <= 0)
			return; /* the server closed: the rest would go nowhere */
		c += w;
		n -= (size_t)w;
	}
}

/* Bring the connection to the input's stage. 0 once there, -1 when the server did not follow. */
static int reach(int fd, int stage)
{
	static char got[16384];

	got[0] = '\0';
	if (stage == 0)
		return 0;
	send_all(fd, HEADER, strlen(HEADER));
	if (!pump(fd, "</stream:features>", got, sizeof(got)))
		return -1;
	if (stage == 1)
		return 0;
	/* "\0fuzz\0pw" */
	send_all(fd,
	         "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAcHc="
	         "</auth>",
	         strlen("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
	                "AGZ1enoAcHc=</auth>"));
	got[0] = '\0';
	if (!pump(fd, "<success", got, sizeof(got)))
		return -1;
	got[0] = '\0';
	send_all(fd, HEADER, strlen(HEADER));
	if (!pump(fd, "</stream:features>", got, sizeof(got)))
		return -1;
	if (stage == 3)
		return 0;
	got[0] = '\0';
	send_all(fd, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
	         strlen("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
	                "</iq>"));
	return pump(fd, "</iq>", got, sizeof(got)) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd, stage;

	if (!F.ready)
		setup();
	if (size < 1)
		return 0;
	stage = data[0] % 4;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&F.addr, F.addrlen) != 0)
		abort();
	if (reach(fd, stage) != 0) {
		fprintf(stderr, "fuzz_c2s: a valid stream could not reach stage %d\n", stage);
		abort();
	}
	send_all(fd, data + 1, size - 1);
	shutdown(fd, SHUT_WR);
	/* the client has said all it will: the server must end the connection */
	if (!pump(fd, NULL, NULL, 0)) {
		fprintf(stderr, "fuzz_c2s: the server did not close the connection\n");
		abort();
	}
	close(fd);
	/* and forget it */
	for (int i = 0; i < 1000 && !cm_list_empty(&F.srv->shards[0]->conns); i++)
		uv_run(&F.uv, UV_RUN_NOWAIT);
	if (!cm_list_empty(&F.srv->shards[0]->conns)) {
		fprintf(stderr, "fuzz_c2s: a closed connection is still held\n");
		abort();
	}
	return 0;
}
